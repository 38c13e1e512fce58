"""The digest e-mail's HTML in a real browser: the system's headless Chromium (Debian
``chromium``) driven by Playwright, at a phone's width (375 px) and a desktop's (1200 px), in
both languages. Nothing may overflow horizontally (no sideways scrolling on a phone).

Screenshots are written to ``$SENTINELLA_SCREENSHOTS`` when set (else the test's temporary
directory). Skipped where no Chromium is installed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from notifier.messages.digest import render_digest
from tests.fakes.browser import NEEDS_CHROMIUM, overflows
from tests.fakes.digest_data import sample_digest

pytest.importorskip("playwright.async_api")
pytestmark = NEEDS_CHROMIUM

WIDTHS = (375, 1200)


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
    overflow = overflows({f"digest_{lang}": path for lang, path in files.items()}, WIDTHS, shots)
    assert overflow == {key: 0 for key in overflow} and len(overflow) == 4, overflow
