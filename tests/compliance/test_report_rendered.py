"""The HTML report and its PDF, rendered by real headless Chromium and looked at (text and pixels).

Chromium comes from the Debian package that scripts/test installs; without it these tests fail (they must
not skip silently and leave the PDF path untested).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kmsguard.compliance.assess import assess
from kmsguard.model.result import ScanResult
from kmsguard.model.snapshot import Snapshot
from kmsguard.report.html import render_report_html
from kmsguard.report.pdf import html_to_pdf, screenshot

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(autouse=True)
def _need_chromium() -> None:
    if not CHROMIUM.exists() or shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None:
        pytest.fail("headless Chromium and poppler-utils are needed: run ./scripts/test (it installs them)")


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_pdf_shows_the_framework_controls_and_statuses(
    demo_result: ScanResult, demo_snapshot: Snapshot, tmp_path: Path
) -> None:
    rep = assess(demo_result, "cmmc-l2", demo_snapshot)
    pdf = tmp_path / "cmmc.pdf"
    pdf.write_bytes(html_to_pdf(render_report_html(rep)))
    assert pdf.read_bytes()[:5] == b"%PDF-"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "CMMC (2.0 Level 2)" in text
    flat = re.sub(r"\s+", " ", text)
    for a in rep.controls:
        assert a.control.id in flat, a.control.id
    assert "not met" in flat and "partly met" in flat
    assert f"Score: {rep.score()}%" in flat
    # Each failing key's fix command is printed (wrapped lines joined back).
    joined = re.sub(r"\s+", "", text)
    rot = next(a for a in rep.controls if a.control.id == "SC.L2-3.13.10")
    for e in rot.failing:
        if e.finding.check_id == "key_rotation_disabled":
            assert re.sub(r"\s+", "", e.fix_command) in joined
    # Rendered to pixels: the first page is a real A4-shaped image with ink on it.
    subprocess.run(["pdftoppm", "-r", "40", "-f", "1", "-l", "1", "-png", str(pdf), str(tmp_path / "p")], check=True)
    [page] = list(tmp_path.glob("p*.png"))
    w, h = _png_size(page)
    assert 1.3 < h / w < 1.5  # A4 portrait
    assert page.stat().st_size > 5_000  # not a blank page


def test_html_screenshot_renders_the_summary(demo_result: ScanResult, demo_snapshot: Snapshot, tmp_path: Path) -> None:
    html = render_report_html(assess(demo_result, "pci-dss", demo_snapshot))
    png = tmp_path / "shot.png"
    screenshot(html, png, width=1200, height=1600)
    assert _png_size(png) == (1200, 1600)
    assert png.stat().st_size > 30_000  # charts, badges and tables drawn, not an empty page


def test_html_is_self_contained(demo_result: ScanResult) -> None:
    html = render_report_html(assess(demo_result, "nist-800-171"))
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html, re.I)
    assert "url(" not in html and "@import" not in html
    assert "default-src 'none'" in html
    assert html.count("<svg") == 4  # the four charts, inline


def test_pdf_shows_the_key_usage(demo_result: ScanResult, demo_snapshot: Snapshot, tmp_path: Path) -> None:
    """`report --trail`: the usage section prints, its SVG chart text included."""
    from datetime import UTC, datetime, timedelta

    from kmsguard.trail.analyze import TrailOptions, analyze
    from kmsguard.trail.synth import event, write_trail_files
    from kmsguard.trail.usage import summarise

    key = next(k for k in demo_snapshot.all_keys() if k.aliases and k.key_manager == "CUSTOMER")
    role = f"arn:aws:sts::{key.account}:assumed-role/app/s1"
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    write_trail_files(tmp_path / "logs", [event("Decrypt", key.arn, role, t0 + timedelta(hours=h)) for h in range(72)])
    report = analyze([str(tmp_path / "logs")], demo_snapshot, TrailOptions(cache_dir=tmp_path / "c", workers=1))
    result = demo_result.model_copy(update={"trail_usage": summarise(report, demo_snapshot)})
    html = render_report_html(assess(result, "cmmc-l2", demo_snapshot))
    pdf = tmp_path / "usage.pdf"
    pdf.write_bytes(html_to_pdf(html))
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    flat = re.sub(r"\s+", " ", text)
    assert "Key usage (CloudTrail)" in flat and "72 KMS event(s) analysed" in flat
    assert key.aliases[0] in flat  # the chart labels the key by its alias, as text
    assert "peak 24/day" in flat
