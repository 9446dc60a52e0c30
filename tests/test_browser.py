"""The HTML report in a real browser: headless Chromium (Debian's) driven by playwright.

``make test`` installs Chromium first (``scripts/ensure-chromium.sh``); without it, or without
playwright, the test skips and says why. The screenshot is kept in out/test-artifacts/.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mixedbayes as mb

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("MIXEDBAYES_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "out" / "test-artifacts"

DECODE_IMAGES = """
async () => {
  const images = Array.from(document.images);
  const sizes = await Promise.all(images.map(async (img) => {
    try { await img.decode(); } catch (e) { return [img.alt, 0, String(e)]; }
    return [img.alt, img.naturalWidth, ""];
  }));
  return sizes;
}
"""


def _sync_playwright():  # type: ignore[no-untyped-def]
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -c constraints.txt -e '.[dev]').")
    if not CHROMIUM.is_file():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: run scripts/ensure-chromium.sh (Debian's chromium)."
        )
    return sync_playwright


@pytest.mark.slow
def test_report_renders_in_chromium(sleep_fit: mb.Fit, tmp_path: Path) -> None:
    sync_playwright = _sync_playwright()
    path = sleep_fit.report(tmp_path / "report.html", n_groups=4)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    screenshot.unlink(missing_ok=True)

    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on(
                "console",
                lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None,
            )
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.on("request", lambda req: requests.append(req.url))
            page.goto(path.resolve().as_uri(), wait_until="load")
            sizes = page.evaluate(DECODE_IMAGES)
            title = page.title()
            toc = page.eval_on_selector_all("nav#contents a", "links => links.length")
            sections = page.eval_on_selector_all("main > section", "s => s.length")
            badge = page.eval_on_selector(
                ".badge.pass", "el => getComputedStyle(el).backgroundColor"
            )
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    assert errors == []
    # nothing is fetched but the page itself: images and styles are inside it
    assert requests == [path.resolve().as_uri()]
    assert title == "sleepstudy: posterior report"
    assert len(sizes) == 5
    assert all(width > 0 for _, width, _ in sizes), sizes
    assert toc == sections == 11
    assert badge == "rgb(26, 127, 55)"
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000
