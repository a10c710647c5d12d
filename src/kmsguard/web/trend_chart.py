"""The trend chart as inline SVG (no JavaScript, no external assets): score and failing findings per scan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class TrendPoint:
    at: datetime
    score: float
    failing: int


def trend_svg(points: list[TrendPoint], width: int = 640, height: int = 160) -> str:
    if not points:
        return '<p class="muted">No scans yet.</p>'
    pad = 30
    n = len(points)
    max_fail = max(p.failing for p in points) or 1

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * (i / (n - 1) if n > 1 else 0.5)

    def y_score(v: float) -> float:
        return height - pad - (height - 2 * pad) * v / 100

    def y_fail(v: int) -> float:
        return height - pad - (height - 2 * pad) * v / max_fail

    score = " ".join(f"{x(i):.1f},{y_score(p.score):.1f}" for i, p in enumerate(points))
    fail = " ".join(f"{x(i):.1f},{y_fail(p.failing):.1f}" for i, p in enumerate(points))
    dots = "".join(
        f'<circle cx="{x(i):.1f}" cy="{y_score(p.score):.1f}" r="3" class="s"><title>'
        f"{p.at:%Y-%m-%d %H:%M} score {p.score} / failing {p.failing}</title></circle>"
        for i, p in enumerate(points)
    )
    first, last = points[0].at, points[-1].at
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="Posture score and failing '
        f'findings over time">'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" class="axis"/>'
        f'<text x="{pad}" y="{height - 8}" class="lbl">{first:%Y-%m-%d %H:%M}</text>'
        f'<text x="{width - pad}" y="{height - 8}" class="lbl" text-anchor="end">{last:%Y-%m-%d %H:%M}</text>'
        f'<text x="4" y="{pad}" class="lbl">100</text>'
        f'<polyline points="{fail}" class="f"/><polyline points="{score}" class="s"/>{dots}'
        f'<text x="{width - pad}" y="14" class="lbl" text-anchor="end">'
        f'<tspan class="s">&#9632; score</tspan> <tspan class="f">&#9632; failing (max {max_fail})</tspan></text>'
        "</svg>"
    )
