"""Look at a report the way a person does: headless Chromium through Playwright.

Playwright drives the system's ``chromium`` (Debian's package: ``make browser`` installs it),
not a browser of its own, so nothing is downloaded. Used by the browser tests and by
``tools/report_screenshots.py`` (the README's pictures).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["chromium_path", "launch_chromium", "screenshot_report"]


def chromium_path() -> str | None:
    """The system Chromium, or ``None``."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def launch_chromium() -> Iterator[Any]:
    """A headless Chromium ``Browser`` (Playwright), closed on exit.

    Raises:
        RuntimeError: No system Chromium (``apt-get install chromium``).
    """
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    if exe is None:
        raise RuntimeError("no chromium on PATH: apt-get install chromium (or make browser)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=exe, args=["--autoplay-policy=no-user-gesture-required"]
        )
        try:
            yield browser
        finally:
            browser.close()


def screenshot_report(
    browser: Any, run_dir: str | Path, out_dir: str | Path, *, at_s: float = 1.0, width: int = 1100
) -> list[Path]:
    """PNGs of a folder run's index (``report_run.png``) and its first video page
    (``report_video.png``, the player half a second into the first segment, else at
    ``at_s`` seconds).

    Returns:
        The two paths.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    video_pages = sorted(p for p in run_dir.rglob("*.html") if p.name != "index.html")
    if not video_pages:
        raise FileNotFoundError(f"{run_dir}: no video page (build the report first)")
    shots = []
    for page_path, name in (
        (run_dir / "index.html", "report_run.png"),
        (video_pages[0], "report_video.png"),
    ):
        page = browser.new_page(viewport={"width": width, "height": 800})
        page.goto(page_path.resolve().as_uri())
        page.wait_for_load_state("load")
        if page.query_selector("#player"):
            first = page.query_selector(".timeline .seg")
            t = at_s if first is None else float(first.get_attribute("data-seek")) + 0.5
            page.evaluate(f"document.getElementById('player').currentTime = {t}")
            page.wait_for_function(
                "(() => { const v = document.getElementById('player');"
                " return v.readyState >= 4 && !v.seeking; })()"
            )
            page.wait_for_timeout(500)  # the player's loading spinner fades out
        # The run page whole; the video page's top (player, timeline, curve, segments, clips).
        page.set_viewport_size({"width": width, "height": 1250})
        page.screenshot(path=str(out_dir / name), full_page=name == "report_run.png")
        page.close()
        shots.append(out_dir / name)
    return shots
