"""Profile editing: toggles on inline keyboards, keywords and budget by message, invalid input."""

from __future__ import annotations

from datetime import timedelta

import pytest

from notifier.bot.profile import InputError, apply_terms, parse_budget
from notifier.matching.profiles import parse_profile
from storage import members
from tests.bot.harness import Harness, keyboard_of, labels

pytestmark = pytest.mark.integration

CHAT = 5151


@pytest.fixture
def member_id(bot: Harness) -> int:
    return bot.add_member(CHAT, email="laura@example.com")


def profile(bot: Harness, member_id: int) -> dict:
    return members.get_profile(bot.db, member_id) or {}


async def test_profilo_shows_everything_with_a_menu(bot: Harness, member_id: int) -> None:
    members.set_profile(
        bot.db,
        member_id,
        {"topics": ["packaging"], "keywords": ["airless"], "province": "BG"},
        now=bot.clock(),
    )
    replies = await bot.send(CHAT, "/profilo")
    text = replies.text
    assert "<b>Il tuo profilo</b>" in text
    assert "<b>Argomenti</b>: Packaging" in text
    assert "<b>Parole chiave</b>: airless" in text
    assert "BG" in text
    assert {"pf:t", "pf:b", "pf:s", "pf:c", "pf:a", "pf:k", "pf:e", "pf:u", "pf:x"} <= set(
        labels(replies.last_keyboard)
    )


async def test_topic_toggles(bot: Harness, member_id: int) -> None:
    opened = await bot.press(CHAT, "pf:t")
    [edited] = opened.of("editMessageText")
    keyboard = keyboard_of(edited)
    assert labels(keyboard)["pf:t:packaging"].startswith("▫️")

    on = await bot.press(CHAT, "pf:t:packaging", keyboard=keyboard)
    assert profile(bot, member_id)["topics"] == ["packaging"]
    [answer] = on.answers
    assert answer.params["text"].startswith("Attivato")
    [redraw] = on.of("editMessageReplyMarkup")
    assert labels(keyboard_of(redraw))["pf:t:packaging"].startswith("✅")

    await bot.press(CHAT, "pf:t:energia", keyboard=keyboard_of(redraw))
    off = await bot.press(CHAT, "pf:t:packaging", keyboard=keyboard_of(redraw))
    assert profile(bot, member_id)["topics"] == ["energia"]
    assert off.answers[0].params["text"].startswith("Disattivato")


async def test_other_toggles(bot: Harness, member_id: int) -> None:
    await bot.press(CHAT, "pf:b:pmi")
    await bot.press(CHAT, "pf:s:sedia")
    await bot.press(CHAT, "pf:a:changes")
    await bot.press(CHAT, "pf:c:email")
    stored = profile(bot, member_id)
    assert stored["beneficiaries"] == ["pmi"]
    assert stored["sources"] == ["sedia"]
    assert stored["alerts"] == ["new", "reminders"]
    assert stored["channels"] == ["telegram"]


async def test_partner_searches_are_a_switch_off_by_default(bot: Harness, member_id: int) -> None:
    assert "partners" not in parse_profile(profile(bot, member_id)).alerts
    on = await bot.press(CHAT, "pf:a:partners")
    assert profile(bot, member_id)["alerts"] == ["new", "changes", "reminders", "partners"]
    [redraw] = on.of("editMessageReplyMarkup")
    assert labels(keyboard_of(redraw))["pf:a:partners"].startswith("✅ 🤝 Ricerche partner")


async def test_unknown_values_are_refused(bot: Harness, member_id: int) -> None:
    replies = await bot.press(CHAT, "pf:t:cosmetica-lunare")
    [answer] = replies.answers
    assert "Valore sconosciuto" in answer.params["text"] and answer.params["show_alert"] is True
    replies = await bot.press(CHAT, "pf:s:nowhere")
    assert "Valore sconosciuto" in replies.answers[0].params["text"]
    replies = await bot.press(CHAT, "pf:zz")
    assert "non è più valido" in replies.answers[0].params["text"]
    assert members.get_profile(bot.db, member_id) is None


async def test_email_channel_needs_an_address(bot: Harness) -> None:
    member_id = bot.add_member(CHAT + 1, name="Senza Email")
    await bot.press(CHAT + 1, "pf:c:email")  # on by default: switching off is fine
    replies = await bot.press(CHAT + 1, "pf:c:email")
    assert "indirizzo e-mail" in replies.answers[0].params["text"]
    assert profile(bot, member_id)["channels"] == ["telegram"]


async def test_keywords_by_message(bot: Harness, member_id: int) -> None:
    asked = await bot.press(CHAT, "pf:k")
    assert "parole chiave" in asked.text
    saved = await bot.send(CHAT, "flaconi riciclabili, airless\nricicl*")
    assert profile(bot, member_id)["keywords"] == ["flaconi riciclabili", "airless", "ricicl*"]
    assert "Profilo aggiornato" in saved.text
    assert "flaconi riciclabili, airless, ricicl*" in saved.text

    # The chat stops waiting once saved: the next text is not taken as keywords.
    stray = await bot.send(CHAT, "ciao")
    assert "Non ho capito" in stray.text

    await bot.press(CHAT, "pf:k")
    await bot.send(CHAT, "-AIRLESS, packaging, Packaging")
    assert profile(bot, member_id)["keywords"] == ["flaconi riciclabili", "ricicl*", "packaging"]

    await bot.press(CHAT, "pf:k")
    await bot.send(CHAT, "nessuna")
    assert profile(bot, member_id)["keywords"] == []


async def test_exclusions_by_message(bot: Harness, member_id: int) -> None:
    await bot.press(CHAT, "pf:e")
    await bot.send(CHAT, "agricoltura, turismo")
    assert profile(bot, member_id)["exclude"] == ["agricoltura", "turismo"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x", "da 2 a 60 caratteri"),
        ("a" * 61, "da 2 a 60 caratteri"),
        ("<b>bold</b>", "caratteri non ammessi"),
        (", ".join(f"parola{i}" for i in range(31)), "al massimo 30"),
        ("x" * 2000, "troppo lungo"),
    ],
)
async def test_invalid_keywords_get_a_helpful_reply(
    bot: Harness, member_id: int, text: str, expected: str
) -> None:
    await bot.press(CHAT, "pf:k")
    replies = await bot.send(CHAT, text)
    assert expected in replies.text
    assert "<b>bold</b>" not in replies.text
    assert members.get_profile(bot.db, member_id) is None
    # Still waiting: a corrected message is accepted.
    await bot.send(CHAT, "airless")
    assert profile(bot, member_id)["keywords"] == ["airless"]


async def test_budget_by_message(bot: Harness, member_id: int) -> None:
    await bot.press(CHAT, "pf:u")
    bad = await bot.send(CHAT, "tanti")
    assert "numero intero di euro" in bad.text
    await bot.send(CHAT, "€ 50.000")
    assert profile(bot, member_id)["min_budget_eur"] == 50_000
    await bot.press(CHAT, "pf:u")
    await bot.send(CHAT, "0")
    assert profile(bot, member_id)["min_budget_eur"] is None


async def test_annulla_and_expiry(bot: Harness, member_id: int) -> None:
    await bot.press(CHAT, "pf:k")
    cancelled = await bot.send(CHAT, "/annulla")
    assert "nessuna modifica" in cancelled.text
    assert "Non ho capito" in (await bot.send(CHAT, "airless")).text
    assert "nulla da annullare" in (await bot.send(CHAT, "/annulla")).text

    await bot.press(CHAT, "pf:k")
    bot.clock.advance(timedelta(minutes=16))
    assert "Non ho capito" in (await bot.send(CHAT, "airless")).text
    assert members.get_profile(bot.db, member_id) is None


async def test_menu_navigation_and_done(bot: Harness, member_id: int) -> None:
    back = await bot.press(CHAT, "pf:m")
    assert "<b>Il tuo profilo</b>" in back.text and "Cosa vuoi modificare?" in back.text
    done = await bot.press(CHAT, "pf:x")
    [edited] = done.of("editMessageText")
    assert "reply_markup" not in edited.params


async def test_a_stored_profile_that_no_longer_validates(bot: Harness, member_id: int) -> None:
    members.set_profile(bot.db, member_id, {"topics": ["retired-topic"]}, now=bot.clock())
    replies = await bot.send(CHAT, "/profilo")
    assert "non è più valido" in replies.text
    assert "retired-topic" in replies.text


def test_apply_terms_rules() -> None:
    assert apply_terms(["a1"], "b2, -a1") == ["b2"]
    assert apply_terms(["airless"], "AIRLESS") == ["airless"]
    assert apply_terms(["x1"], " - ") == []
    with pytest.raises(InputError) as info:
        apply_terms([], "ok, <x>")
    assert info.value.key == "profile.err.chars"


@pytest.mark.parametrize(
    ("text", "value"),
    [("50000", 50000), ("50.000", 50000), ("€ 1 500 000", 1500000), ("200000 euro", 200000), ("0", None)],
)
def test_parse_budget(text: str, value: int | None) -> None:
    assert parse_budget(text) == value


@pytest.mark.parametrize("text", ["-5", "1,5", "12e3", "9" * 14, ""])
def test_parse_budget_refuses(text: str) -> None:
    with pytest.raises(InputError):
        parse_budget(text)


def test_the_minimum_budget_is_written_in_the_members_language() -> None:
    from notifier.bot.profile import _budget_text

    assert _budget_text(50_000, "it") == "€ 50.000"
    assert _budget_text(50_000, "en") == "€50,000"
