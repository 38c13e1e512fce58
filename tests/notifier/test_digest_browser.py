"""The digest e-mail's HTML in a real browser: the system's headless Chromium (Debian
``chromium``) driven by Playwright, at a phone's width (375 px) and a desktop's (1200 px), in
both languages. Nothing may overflow horizontally (no sideways scrolling on a phone).

Screenshots are written to ``$SENTINELLA_SCREENSHOTS`` when set (else the test's temporary
directory). Skipped where no Chromium is installed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from notifier.messages.digest import render_digest
from tests.fakes.digest_data import sample_digest

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = os.environ.get("SENTINELLA_CHROMIUM") or next(
    (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None
)
pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium)"),
]

WIDTHS = (375, 1200)


async def _overflows(files: dict[str, Path], shots: Path) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page()
            for lang, path in files.items():
                for width in WIDTHS:
                    await page.set_viewport_size({"width": width, "height": 900})
                    await page.goto(path.as_uri())
                    out[(lang, width)] = await page.evaluate(
                        "() => Math.max(document.documentElement.scrollWidth,"
                        " document.body.scrollWidth) - window.innerWidth"
                    )
                    await page.screenshot(path=str(shots / f"digest_{lang}_{width}.png"), full_page=True)
        finally:
            await browser.close()
    return out


def test_the_digest_fits_a_phone_and_a_desktop(tmp_path: Path) -> None:
    shots = Path(os.environ.get("SENTINELLA_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    files = {}
    for lang in ("it", "en"):
        html, _text = render_digest(
            sample_digest(), language=lang, unsubscribe_url="https://sentinella.example/disiscrizione/T"
        )
        files[lang] = tmp_path / f"digest.{lang}.html"
        files[lang].write_text(html, encoding="utf-8")
    overflow = asyncio.run(_overflows(files, shots))
    assert overflow == {key: 0 for key in overflow} and len(overflow) == 4, overflow
