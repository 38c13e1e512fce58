"""The staff digest as staff read it, compared with reviewed files, in Italian and English.

The digest is :func:`tests.fakes.digest_data.sample_digest` (every section filled); each
rendering is compared with its file under ``tests/data/notifier/snapshots/``:
``digest.<lang>.txt`` (text part), ``digest.<lang>.html`` (HTML part) and
``digest.<lang>.telegram.html`` / ``.telegram.txt`` (the Telegram digest and its plain fallback).

To regenerate after a deliberate change, run

    SENTINELLA_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/notifier/test_digest_snapshots.py

and read the diff (``git diff tests/data/notifier/snapshots``) before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from notifier.messages.digest import digest_telegram, render_digest
from tests.fakes.digest_data import sample_digest

SNAPSHOTS = Path(__file__).resolve().parents[1] / "data" / "notifier" / "snapshots"
UPDATE = os.environ.get("SENTINELLA_UPDATE_SNAPSHOTS") == "1"
UNSUBSCRIBE = "https://sentinella.example/disiscrizione/TOKEN"


def renderings(lang: str) -> dict[str, str]:
    digest = sample_digest()
    html, text = render_digest(digest, language=lang, unsubscribe_url=UNSUBSCRIBE)
    telegram = digest_telegram(digest, language=lang)
    return {
        f"digest.{lang}.html": html,
        f"digest.{lang}.txt": text,
        f"digest.{lang}.telegram.html": telegram.html + "\n",
        f"digest.{lang}.telegram.txt": telegram.text + "\n",
    }


@pytest.mark.parametrize("lang", ["it", "en"])
def test_digest_snapshots(lang: str) -> None:
    for name, rendered in renderings(lang).items():
        path = SNAPSHOTS / name
        if UPDATE:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rendered, encoding="utf-8")
            continue
        assert path.exists(), f"{name} missing: run with SENTINELLA_UPDATE_SNAPSHOTS=1 to write it"
        assert rendered == path.read_text(encoding="utf-8"), (
            f"{name} differs from its snapshot: if the change is deliberate, regenerate with "
            "SENTINELLA_UPDATE_SNAPSHOTS=1 and review the diff"
        )


@pytest.mark.parametrize("lang", ["it", "en"])
def test_what_the_snapshots_show(lang: str) -> None:
    """The points the digest is reviewed for, checked on the same renderings."""
    out = renderings(lang)
    text, html = out[f"digest.{lang}.txt"], out[f"digest.{lang}.html"]
    en = lang == "en"
    sections = (
        ["Closing in the next 14 days", "New calls by theme", "Updates", "Notices", "Partner searches", "Sources"]
        if en
        else ["In scadenza nei prossimi 14 giorni", "Nuovi bandi per tema", "Aggiornamenti", "Avvisi,",
              "Ricerche partner", "Stato delle fonti"]
    )  # fmt: skip
    at = [text.index(f"== {s}") for s in sections]
    assert at == sorted(at), "sections out of order"
    # Themes in the vocabulary's order, "other" last.
    themes = ["Packaging", "Ingredients" if en else "Ingredienti", "Other themes" if en else "Altri temi"]
    at = [text.index(f"-- {t}") for t in themes]
    assert at == sorted(at)
    # Closed calls only under changes.
    changes = text.index("== Updates" if en else "== Aggiornamenti")
    notices = text.index("== Notices" if en else "== Avvisi")
    assert text.index("Bando export 2025 (chiuso)") > changes
    assert text.index("Credito agevolato") > changes
    assert all(
        text.index(t) < changes for t in ("Contributi per la meccanizzazione", "Voucher per imballaggi")
    )
    assert "[NEW] Bando export" not in text and "[NUOVO] Bando export" not in text
    assert text.index("Bando export") < notices
    # Reach and feedback.
    assert (
        "Sent to 2: Cosmetica Brianza Srl, Laboratori Riva SpA" if en else "Inviato a 2: Cosmetica"
    ) in text
    assert ("Interested: 2" if en else "Mi interessa: 2") in text
    # Honest health: the source with errors in its last run is not "ok".
    assert (
        "Regione Lombardia – Bandi e Servizi: with errors" if en else "Bandi e Servizi: con errori"
    ) in text
    assert "Natura &amp; Co. &lt;Milano&gt;" in html and "<Milano>" not in html
    assert UNSUBSCRIBE in html and UNSUBSCRIBE in text
    assert f'<html lang="{lang}">' in html
