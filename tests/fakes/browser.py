"""Headless Chromium for the tests that look at what people read (e-mails, the web board).

Debian's ``chromium`` (or ``SENTINELLA_CHROMIUM``) driven by Playwright, which downloads no
browser of its own; tests using it are skipped cleanly where none is installed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("SENTINELLA_CHROMIUM") or next(
    (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None
)

#: Marks for a test module that needs the browser.
NEEDS_CHROMIUM = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium)"),
]

LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu"]


def overflows(
    pages: Mapping[str, Path], widths: Iterable[int], shots: Path | None = None
) -> dict[tuple[str, int], int]:
    """How many CSS pixels each page is wider than each window width (0: it fits), with a
    full-page screenshot of each in ``shots`` when given."""
    playwright_api = pytest.importorskip("playwright.async_api")

    async def measure() -> dict[tuple[str, int], int]:
        out: dict[tuple[str, int], int] = {}
        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
            try:
                page = await browser.new_page()
                for name, path in pages.items():
                    for width in widths:
                        await page.set_viewport_size({"width": width, "height": 900})
                        await page.goto(path.as_uri())
                        out[(name, width)] = await page.evaluate(
                            "() => Math.max(document.documentElement.scrollWidth,"
                            " document.body.scrollWidth) - window.innerWidth"
                        )
                        if shots is not None:
                            await page.screenshot(path=str(shots / f"{name}_{width}.png"), full_page=True)
            finally:
                await browser.close()
        return out

    return asyncio.run(measure())
