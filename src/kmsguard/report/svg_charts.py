"""Inline SVG charts for the HTML report and the dashboard: no JavaScript, no fonts or images to fetch, print
as vectors.

Every bar carries its number as text and every series is named in a legend, so a chart reads in greyscale
print and to a screen reader (``role="img"`` with a ``<title>``); colour is never the only carrier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from html import escape

ROW_H = 22
LABEL_W = 230
BAR_W = 380
PAD = 8


def stacked_bars(
    title: str,
    rows: Sequence[tuple[str, Mapping[str, int]]],
    colors: Mapping[str, str],
) -> str:
    """Horizontal stacked bars: one row per label, one segment per series (in ``colors`` order)."""
    series = list(colors)
    total_max = max((sum(v.get(s, 0) for s in series) for _, v in rows), default=0) or 1
    legend_h = ROW_H
    height = PAD * 2 + legend_h + ROW_H * max(len(rows), 1)
    width = LABEL_W + BAR_W + 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    x = LABEL_W
    for s in series:  # legend
        parts.append(f'<rect x="{x}" y="{PAD}" width="10" height="10" fill="{colors[s]}"/>')
        parts.append(f'<text x="{x + 14}" y="{PAD + 9}" class="legend">{escape(s)}</text>')
        x += 14 + 7 * len(s) + 18
    if not rows:
        parts.append(f'<text x="{LABEL_W}" y="{PAD + legend_h + 15}">nothing to show</text>')
    for i, (label, values) in enumerate(rows):
        y = PAD + legend_h + i * ROW_H
        short = label if len(label) <= 34 else label[:33] + "…"
        parts.append(f'<text x="{LABEL_W - 6}" y="{y + 15}" text-anchor="end">{escape(short)}</text>')
        x0 = float(LABEL_W)
        total = 0
        for s in series:
            n = values.get(s, 0)
            if not n:
                continue
            w = BAR_W * n / total_max
            parts.append(
                f'<rect x="{x0:.1f}" y="{y + 3}" width="{w:.1f}" height="{ROW_H - 6}" fill="{colors[s]}">'
                f"<title>{escape(label)}: {n} {escape(s)}</title></rect>"
            )
            if w >= 18:
                parts.append(f'<text x="{x0 + w / 2:.1f}" y="{y + 15}" text-anchor="middle" class="in">{n}</text>')
            x0 += w
            total += n
        parts.append(f'<text x="{x0 + 5:.1f}" y="{y + 15}" class="total">{total}</text>')
    parts.append("</svg>")
    return "".join(parts)


STRIP_H = 36
USAGE_COLOUR = "#3b6ea5"


def daily_strips(
    title: str,
    days: Sequence[date],
    rows: Sequence[tuple[str, Sequence[int]]],
    *,
    strip_h: int = STRIP_H,
    label_w: int = LABEL_W,
    plot_w: int = BAR_W,
) -> str:
    """Calls per day as small multiples: one strip of columns per row, all on the same day axis.

    Each strip is scaled to its own peak (written at its end, with the total), so a quiet key's pattern shows
    as clearly as the busiest key's: on one shared scale every key but the first would be a flat line. Every
    column carries its day and count as a ``<title>``; the first and last day label the axis.
    """
    n = len(days)
    axis_h = 16
    height = PAD * 2 + strip_h * max(len(rows), 1) + axis_h
    width = label_w + plot_w + 150
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart usage" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    if not rows or not n:
        parts.append(f'<text x="{label_w}" y="{PAD + 15}">nothing to show</text></svg>')
        return "".join(parts)
    col = plot_w / n
    for r, (label, calls) in enumerate(rows):
        top = PAD + r * strip_h
        base = top + strip_h - 4
        peak = max(calls, default=0) or 1
        short = label if len(label) <= 34 else label[:33] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{base - 4}" text-anchor="end">{escape(short)}</text>')
        parts.append(
            f'<line x1="{label_w}" y1="{base}" x2="{label_w + plot_w}" y2="{base}" stroke="#9e9e9e" stroke-width="1"/>'
        )
        for i, c in enumerate(calls):
            if not c:
                continue
            h = max((strip_h - 8) * c / peak, 1.0)
            parts.append(
                f'<rect x="{label_w + i * col:.1f}" y="{base - h:.1f}" width="{max(col - 1, 1):.1f}" height="{h:.1f}" '
                f'fill="{USAGE_COLOUR}"><title>{escape(label)}: {c} calls on {days[i].isoformat()}</title></rect>'
            )
        parts.append(
            f'<text x="{label_w + plot_w + 6}" y="{base - 4}" class="total">peak {max(calls, default=0)}/day · '
            f"{sum(calls)} in all</text>"
        )
    y = PAD + strip_h * len(rows) + 12
    parts.append(f'<text x="{label_w}" y="{y}">{days[0].isoformat()}</text>')
    parts.append(f'<text x="{label_w + plot_w}" y="{y}" text-anchor="end">{days[-1].isoformat()}</text>')
    parts.append("</svg>")
    return "".join(parts)
