"""`kmsguard report --format pdf`: the HTML report printed to PDF by headless Chromium.

The HTML is written to a temporary directory and printed from a ``file://`` URL with a fresh profile
(``--user-data-dir`` in the same directory) and every background service off, so printing neither reads the
user's browser state nor touches the network. Chromium is found as ``chromium`` (Debian's package),
``chromium-browser`` or ``google-chrome`` on PATH, or ``KMSGUARD_CHROMIUM``; when none is there the error says
which package to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",  # running as root (CI, containers) refuses the sandbox
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
)


class PdfUnavailable(Exception):
    """Chromium is not installed or could not print."""


def find_chromium() -> str:
    env = os.environ.get("KMSGUARD_CHROMIUM")
    if env:
        return env
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise PdfUnavailable(
        "--format pdf needs headless Chromium: install it (Debian/Ubuntu: apt-get install chromium) "
        "or set KMSGUARD_CHROMIUM to its path; --format html gives the same report without it"
    )


def run_chromium(args: list[str], work: Path, timeout: float = 120) -> None:
    """Run Chromium headless with ``args`` and a fresh profile under ``work``."""
    cmd = [find_chromium(), *FLAGS, f"--user-data-dir={work / 'profile'}", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise PdfUnavailable(f"chromium did not finish within {timeout:.0f}s") from None
    except OSError as e:
        raise PdfUnavailable(f"cannot run chromium: {e.strerror or e}") from None
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-3:]
        raise PdfUnavailable(f"chromium failed (exit {proc.returncode}): {' | '.join(tail)}")


def html_to_pdf(html: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="kmsguard-pdf-") as tmp:
        work = Path(tmp)
        src = work / "report.html"
        out = work / "report.pdf"
        src.write_text(html, encoding="utf-8")
        run_chromium(["--no-pdf-header-footer", f"--print-to-pdf={out}", src.as_uri()], work)
        if not out.exists() or out.stat().st_size == 0:
            raise PdfUnavailable("chromium wrote no PDF")
        return out.read_bytes()


def screenshot(html: str, png: Path, width: int = 1200, height: int = 1600) -> None:
    """A PNG of the HTML as a browser shows it (tests look at it)."""
    with tempfile.TemporaryDirectory(prefix="kmsguard-shot-") as tmp:
        work = Path(tmp)
        src = work / "report.html"
        src.write_text(html, encoding="utf-8")
        run_chromium(
            ["--hide-scrollbars", f"--window-size={width},{height}", f"--screenshot={png}", src.as_uri()], work
        )
        if not png.exists():
            raise PdfUnavailable("chromium wrote no screenshot")
