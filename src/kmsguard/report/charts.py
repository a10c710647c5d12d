"""Inline SVG bar charts for the HTML report: no JavaScript, no fonts or images to fetch, print as vectors.

Every bar carries its number as text and every series is named in a legend, so a chart reads in greyscale
print and to a screen reader (``role="img"`` with a ``<title>``); colour is never the only carrier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
                parts.append(
                    f'<text x="{x0 + w / 2:.1f}" y="{y + 15}" text-anchor="middle" class="in">{n}</text>'
                )
            x0 += w
            total += n
        parts.append(f'<text x="{x0 + 5:.1f}" y="{y + 15}" class="total">{total}</text>')
    parts.append("</svg>")
    return "".join(parts)
