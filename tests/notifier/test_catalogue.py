"""The catalogue: every text in Italian and English, the same placeholders, compiled at first use."""

from __future__ import annotations

import re
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from notifier import catalogue

ROOT = Path(__file__).resolve().parents[2]


def po(lang: str):  # type: ignore[no-untyped-def]
    return read_po(BytesIO(catalogue.po_text(lang).encode("utf-8")), locale=lang)


def test_both_languages_hold_the_same_texts_with_the_same_placeholders() -> None:
    it, en = po("it"), po("en")
    it_ids = {m.id for m in it if m.id}
    en_ids = {m.id for m in en if m.id}
    assert it_ids == en_ids, sorted(it_ids ^ en_ids)
    assert len(it_ids) > 300
    for message in it:
        if not message.id:
            continue
        other = en[message.id]
        assert message.string and message.string.strip(), message.id
        assert other.string and other.string.strip(), message.id
        assert not message.fuzzy and not other.fuzzy, message.id
        assert catalogue.placeholders(message.string) == catalogue.placeholders(other.string), message.id
        # Each text can be filled: a stray brace would fail at a member's message instead.
        values = dict.fromkeys(catalogue.placeholders(message.string), "x")
        message.string.format(**values)
        other.string.format(**values)


def test_every_text_named_in_code_exists() -> None:
    """Every ``catalogue.text(lang, "id")`` and ``catalogue.template(lang, "id")`` written in the code."""
    patterns = (
        re.compile(r"catalogue\.(?:text|template)\(\s*(?:[\w.]+|\"[a-z]{2}\")\s*,\s*f?[\"']([\w.\-]+)[\"']"),
        re.compile(r"catalogue\.notice\(\s*f?[\"']([\w.\-]+)[\"']"),
    )
    used = set()
    for path in [*ROOT.glob("notifier/**/*.py"), *ROOT.glob("scheduler/**/*.py"), *ROOT.glob("web/**/*.py")]:
        source = path.read_text(encoding="utf-8")
        for pattern in patterns:
            for m in pattern.finditer(source):
                if not m.group(1).endswith((".", "_")):  # f"field.{name}": a family
                    used.add(m.group(1))
    assert used, "no catalogue use found"
    known = catalogue.message_ids()
    assert used <= known, sorted(used - known)


def test_texts_are_filled_and_languages_picked() -> None:
    assert catalogue.text("it", "change.deadline_moved", old="1", new="2") == "Scadenza spostata: 1 → 2"
    assert catalogue.text("en-GB", "change.deadline_moved", old="1", new="2") == "Deadline moved: 1 → 2"
    assert catalogue.text("fr", "change.reopened") == "Riaperto"  # Italian for anything else
    with pytest.raises(KeyError, match="no text"):
        catalogue.text("it", "no.such.text")


def test_sections_read_a_block_of_texts() -> None:
    sources = catalogue.section("source")
    assert sources["en"]["feeds"] == "RSS feeds (MIMIT, EU agencies)"
    assert sources["it"]["feeds"] == "Feed RSS (MIMIT, agenzie UE)"
    assert "lombardia" in set(sources["it"])


def test_notices_are_said_in_each_admins_language() -> None:
    stored = catalogue.notice("notice.source_failing", source="sedia", outcome="failed", reason=": HTTP 503")
    assert (
        catalogue.notice_text(stored, "it") == "La fonte sedia continua a non funzionare (failed): HTTP 503"
    )
    assert catalogue.notice_text(stored, "en") == "Source sedia keeps failing (failed): HTTP 503"
    # A message stored as plain text (older rows) is shown as it is; so is a damaged one.
    assert catalogue.notice_text("Qualcosa non va", "en") == "Qualcosa non va"
    assert catalogue.notice_text(stored[:40], "en") == stored[:40]
    with pytest.raises(KeyError):
        catalogue.notice("notice.nonexistent")
    long = catalogue.notice("notice.source_failing", source="s", outcome="o", reason="x" * 5000)
    assert len(long) < 1000


def test_the_po_files_compile_with_babels_own_tool(tmp_path: Path) -> None:
    from babel.messages.mofile import read_mo, write_mo

    for lang in catalogue.LANGUAGES:
        buffer = BytesIO()
        write_mo(buffer, po(lang))
        buffer.seek(0)
        compiled = read_mo(buffer)
        assert len(compiled) == len(po(lang))
