"""Charts of key usage as PNG (matplotlib, Agg backend: no display needed) and an HTML page embedding them,
for `kmsguard trail analyze --charts DIR`.

``usage_over_time``: hourly cryptographic calls of the busiest keys; ``top_keys`` and ``top_principals``:
horizontal bars. ``png_data_uri`` embeds a chart in a page without a file. The HTML report and the dashboard
draw the same views as inline SVG from the scan's ``model.usage.TrailUsage`` instead (report/svg_charts.py).
"""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kmsguard.trail.analyze import TrailReport


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1] if "/" in arn else arn


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def usage_over_time(report: TrailReport, top: int = 6) -> bytes:
    plt = _plt()
    series: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for h in report.hourly:
        series[h["key_arn"]].append((h["hour"], h["calls"]))
    busiest = sorted(series, key=lambda k: -sum(c for _, c in series[k]))[:top]
    fig, ax = plt.subplots(figsize=(10, 4))
    for k in busiest:
        pts = sorted(series[k])
        ax.plot(
            [datetime.fromtimestamp(t, UTC) for t, _ in pts], [c for _, c in pts], marker=".", lw=1, label=_short(k)
        )
    ax.set_title("Cryptographic calls per hour, busiest keys")
    ax.set_ylabel("calls / hour")
    if busiest:
        ax.legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    return _png(fig)


def _bars(labels: list[str], values: list[int], title: str) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.4 * max(3, len(labels)) + 1))
    ax.barh(list(reversed(labels)), list(reversed(values)), color="#3b6ea5")
    ax.set_title(title)
    ax.set_xlabel("calls")
    return _png(fig)


def top_keys(report: TrailReport, top: int = 10) -> bytes:
    keys = report.keys[:top]
    return _bars([_short(k.key_arn) for k in keys], [k.calls for k in keys], "Top keys by calls")


def top_principals(report: TrailReport, top: int = 10) -> bytes:
    totals = sorted(((sum(v.values()), p) for p, v in report.principals.items()), reverse=True)[:top]
    return _bars([p.rsplit(":", 1)[-1] for _, p in totals], [n for n, _ in totals], "Top principals by calls")


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


CHARTS: dict[str, Callable[[TrailReport], bytes]] = {
    "usage_over_time": usage_over_time,
    "top_keys": top_keys,
    "top_principals": top_principals,
}


def write_charts(report: TrailReport, out_dir: Path) -> tuple[Path, list[str]]:
    """usage_over_time.png, top_keys.png, top_principals.png and index.html (which embeds them); and what could
    not be drawn or written. Charts are an extra: one that fails is left out, said why (on the page too), and
    never fails the analysis."""
    charts: dict[str, bytes] = {}
    problems: list[str] = []
    for name, draw in CHARTS.items():
        try:
            charts[name] = draw(report)
        except Exception as e:  # matplotlib refuses some data (dates outside its years 1-9999, ...)
            _plt().close("all")
            problems.append(f"chart {name} not drawn ({type(e).__name__}: {e})")
    imgs = "\n".join(
        f'<figure><img alt="{html.escape(n)}" src="{png_data_uri(p)}">'
        f"<figcaption>{html.escape(n)}</figcaption></figure>"
        for n, p in charts.items()
    )
    notes = "".join(f"<p>{html.escape(p)}</p>" for p in problems)
    page = out_dir / "index.html"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, png in charts.items():
            (out_dir / f"{name}.png").write_bytes(png)
        page.write_text(
            f"<!doctype html><html><head><meta charset='utf-8'><title>kmsguard trail</title></head><body>"
            f"<h1>kmsguard trail: key usage</h1><p>{report.events} events, {html.escape(str(report.window))}</p>"
            f"{notes}{imgs}</body></html>",
            encoding="utf-8",
        )
    except OSError as e:
        problems.append(f"charts not written to {out_dir} ({e.strerror or e})")
    return page, problems
