"""The member's commands: /bandi, /cerca, /scadenze, alert buttons, /pausa, /riprendi, /lingua,
/aiuto, /cancellami, and what happens with anything else."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from notifier.messages.alerts import Alert, render_telegram
from storage import members
from storage.audit import DELETED_ACTOR, audit_log, chat_actor
from storage.calls import CallView
from storage.feedback import get_feedback, list_feedback, set_feedback
from storage.outbox import Recipient
from storage.records import ROME, Deadline, Precision
from tests.bot.harness import Harness, keyboard_of, labels
from tests.fakes.planning_data import other_call, packaging_call, store
from tests.fakes.telegram_server import Answer

pytestmark = pytest.mark.integration

CHAT = 6161
PACKAGING = {"topics": ["packaging"], "channels": ["telegram"]}


@pytest.fixture
def member_id(bot: Harness) -> int:
    member_id = bot.add_member(CHAT)
    members.set_profile(bot.db, member_id, PACKAGING, now=bot.clock())
    return member_id


def packaging_calls(bot: Harness, n: int) -> list[CallView]:
    """``n`` open packaging calls closing on successive days (the last first in id order)."""
    now = bot.clock()
    records = [
        packaging_call(
            f"RLP1202606{i:04d}",
            now=now,
            title=f"Imballaggi riciclabili e packaging sostenibile — misura {i}",
            url=f"https://www.bandi.regione.lombardia.it/servizi/servizio/bandi/dettaglio/pack-{i}",
            closes=datetime(2026, 10, 30, 12, 0, tzinfo=ROME) - timedelta(days=i),
        )
        for i in range(n)
    ]
    return store(bot.db, records, now=now)


# --- /bandi ----------------------------------------------------------------------------------------


async def test_bandi_lists_matching_open_calls_by_deadline(bot: Harness, member_id: int) -> None:
    calls = packaging_calls(bot, 3)
    [agri] = store(bot.db, [other_call(now=bot.clock())], now=bot.clock())
    [closed] = store(
        bot.db,
        [packaging_call("RLP-CLOSED", now=bot.clock(), closes=bot.clock() - timedelta(days=1))],
        now=bot.clock(),
    )
    replies = await bot.send(CHAT, "/bandi")
    text = replies.text
    assert "Bandi aperti per te</b> — 3 in tutto, pagina 1 di 1" in text
    # Soonest deadline first: misura 2 closes on 28 October, misura 0 on the 30th.
    assert text.index("misura 2") < text.index("misura 1") < text.index("misura 0")
    assert "28 ottobre 2026, ore 12:00 — chiude tra 56 giorni" in text
    assert "Perché: argomento Packaging" in text
    assert agri.title not in text and closed.url not in text
    assert f'href="{calls[0].url}"' in text
    stars = labels(replies.last_keyboard)
    assert stars == {
        f"fb:i:{calls[2].group_id}": "⭐ 1",
        f"fb:i:{calls[1].group_id}": "⭐ 2",
        f"fb:i:{calls[0].group_id}": "⭐ 3",
    }


async def test_bandi_pages(bot: Harness, member_id: int) -> None:
    packaging_calls(bot, 7)
    first = await bot.send(CHAT, "/bandi")
    assert "pagina 1 di 2" in first.text
    assert "bandi:1" in labels(first.last_keyboard)
    assert "bandi:0" not in labels(first.last_keyboard)
    second = await bot.press(CHAT, "bandi:1", keyboard=first.last_keyboard)
    [edited] = second.of("editMessageText")
    assert "pagina 2 di 2" in edited.text
    assert "<b>6. " in edited.text and "<b>7. " in edited.text and "<b>5. " not in edited.text
    nav = labels(keyboard_of(edited))
    assert "bandi:0" in nav and "bandi:2" not in nav
    # A page past the end (an old keyboard after calls closed) shows the last page.
    late = await bot.press(CHAT, "bandi:9")
    assert "pagina 2 di 2" in late.text
    assert "non è più valido" in (await bot.press(CHAT, "bandi:x")).answers[0].params["text"]


async def test_bandi_escapes_scraped_text(bot: Harness, member_id: int) -> None:
    now = bot.clock()
    store(
        bot.db,
        [packaging_call("RLP-X", now=now, title='Packaging <b>riciclabile</b> & "co" </a><script>')],
        now=now,
    )
    replies = await bot.send(CHAT, "/bandi")
    assert (
        "Packaging &lt;b&gt;riciclabile&lt;/b&gt; &amp; &quot;co&quot; &lt;/a&gt;&lt;script&gt;"
        in replies.text
    )
    assert "<script>" not in replies.text


async def test_bandi_leaves_out_calls_marked_not_for_us(bot: Harness, member_id: int) -> None:
    calls = packaging_calls(bot, 2)
    assert calls[0].group_id is not None
    set_feedback(bot.db, member_id, calls[0].group_id, "not_for_us", now=bot.clock())
    replies = await bot.send(CHAT, "/bandi")
    assert "1 in tutto" in replies.text and "misura 0" not in replies.text


async def test_bandi_with_nothing_to_show(bot: Harness, member_id: int) -> None:
    assert "nessun bando aperto corrisponde" in (await bot.send(CHAT, "/bandi")).text
    members.set_profile(bot.db, member_id, {}, now=bot.clock())
    assert "profilo è vuoto" in (await bot.send(CHAT, "/bandi")).text


# --- /cerca ------------------------------------------------------------------------------------------


async def test_cerca(bot: Harness, member_id: int) -> None:
    packaging_calls(bot, 12)
    store(bot.db, [other_call(now=bot.clock())], now=bot.clock())
    assert "Scrivi cosa cercare" in (await bot.send(CHAT, "/cerca")).text
    assert "troppo corto" in (await bot.send(CHAT, "/cerca ab")).text
    assert "troppo lungo" in (await bot.send(CHAT, "/cerca " + "x" * 101)).text
    none = await bot.send(CHAT, "/cerca <vernici>")
    assert "Nessun bando aperto contiene «&lt;vernici&gt;»" in none.text

    found = await bot.send(CHAT, "/cerca meccanizzazione")
    assert "</b> — 1\n" in found.text and "aziende agricole" in found.text
    many = await bot.send(CHAT, "/cerca imballaggi riciclabili")
    assert "</b> — 12\n" in many.text
    assert "<b>10. " in many.text and "<b>11. " not in many.text
    assert "…e altri 2" in many.text


# --- feedback buttons and /scadenze -----------------------------------------------------------------------


def alert_keyboard(call: CallView, now: datetime) -> dict:
    """The keyboard the Telegram channel puts under an alert (rendered by notifier.messages.alerts)."""
    alert = Alert(
        outbox_id=1,
        reason="new",
        channel="telegram",
        recipient=Recipient(1, "Laura", "it", CHAT, None, True, False, True),
        call=call,
        payload={},
        now=now,
    )
    return render_telegram(alert).keyboard.to_dict()


async def test_alert_buttons(bot: Harness, member_id: int) -> None:
    [call] = packaging_calls(bot, 1)
    group = call.group_id
    assert group is not None
    keyboard = alert_keyboard(call, bot.clock())
    assert set(labels(keyboard)) == {f"fb:i:{group}", f"fb:n:{group}"}

    yes = await bot.press(CHAT, f"fb:i:{group}", keyboard=keyboard)
    assert get_feedback(bot.db, member_id, group) == "interested"
    assert "promemoria" in yes.answers[0].params["text"]
    [redraw] = yes.of("editMessageReplyMarkup")
    marked = keyboard_of(redraw)
    assert labels(marked) == {f"fb:i:{group}": "✅ Mi interessa", f"fb:n:{group}": "Non per noi"}
    # The "open the call" link button survives the redraw.
    assert any(b.get("url") == call.url for row in marked["inline_keyboard"] for b in row)

    no = await bot.press(CHAT, f"fb:n:{group}", keyboard=marked)
    assert get_feedback(bot.db, member_id, group) == "not_for_us"
    assert "non riceverai altri messaggi" in no.answers[0].params["text"]
    assert labels(keyboard_of(no.of("editMessageReplyMarkup")[0])) == {
        f"fb:i:{group}": "Mi interessa",
        f"fb:n:{group}": "✅ Non per noi",
    }


async def test_feedback_on_a_call_that_is_gone_or_forged(bot: Harness, member_id: int) -> None:
    gone = await bot.press(CHAT, "fb:i:999")
    assert "non è più disponibile" in gone.answers[0].params["text"]
    forged = await bot.press(CHAT, "fb:x:1")
    assert "non è più valido" in forged.answers[0].params["text"]
    assert list_feedback(bot.db) == []


async def test_scadenze(bot: Harness, member_id: int) -> None:
    none = await bot.send(CHAT, "/scadenze")
    assert "Non hai bandi segnati" in none.text
    now = bot.clock()
    [single, staged] = store(
        bot.db,
        [
            packaging_call("RLP-A", now=now, title="Packaging A"),
            packaging_call(
                "RLP-B",
                now=now,
                title="Packaging B <i>",
                closes=datetime(2026, 12, 1, 17, 0, tzinfo=ROME),
                deadlines=(
                    Deadline(datetime(2026, 8, 1, 17, 0, tzinfo=ROME), Precision.DATETIME, "Fase 0"),
                    Deadline(datetime(2026, 9, 15, tzinfo=ROME), Precision.DATE, "Fase 1"),
                    Deadline(datetime(2026, 12, 1, 17, 0, tzinfo=ROME), Precision.DATETIME, "Fase 2"),
                ),
            ),
        ],
        now=now,
    )
    await bot.press(CHAT, f"fb:i:{single.group_id}")
    await bot.press(CHAT, f"fb:i:{staged.group_id}")
    replies = await bot.send(CHAT, "/scadenze")
    text = replies.text
    assert "I tuoi promemoria</b> — 2 bandi" in text
    assert text.index("Packaging A") < text.index("Packaging B &lt;i&gt;")
    assert "Scadenza: 30 ottobre 2026, ore 12:00 — chiude tra 58 giorni" in text
    assert "Fase 0" not in text  # passed
    assert "Fase 1: 15 settembre 2026 — chiude tra 13 giorni" in text
    assert "Fase 2: 1 dicembre 2026, ore 17:00" in text
    assert "Ti ricordo le scadenze 7 giorni e 1 giorno prima." in text

    await bot.send(CHAT, "/pausa")
    assert "in pausa" in (await bot.send(CHAT, "/scadenze")).text


# --- pause, language, help, delete ---------------------------------------------------------------------


async def test_pausa_and_riprendi(bot: Harness, member_id: int) -> None:
    assert "Avvisi in pausa" in (await bot.send(CHAT, "/pausa")).text
    assert members.get_member(bot.db, member_id).paused  # type: ignore[union-attr]
    assert "già in pausa" in (await bot.send(CHAT, "/pausa")).text
    assert "Avvisi riattivati" in (await bot.send(CHAT, "/riprendi")).text
    assert not members.get_member(bot.db, member_id).paused  # type: ignore[union-attr]
    assert "già attivi" in (await bot.send(CHAT, "/riprendi")).text


async def test_lingua(bot: Harness, member_id: int) -> None:
    choose = await bot.send(CHAT, "/lingua")
    assert set(labels(choose.last_keyboard)) == {"lang:it", "lang:en"}
    switched = await bot.press(CHAT, "lang:en", keyboard=choose.last_keyboard)
    assert "I will write in English" in switched.text
    assert members.get_member(bot.db, member_id).language == "en"  # type: ignore[union-attr]
    assert (members.get_profile(bot.db, member_id) or {}).get("language") in (None, "en")
    assert "open calls that fit your profile" in (await bot.send(CHAT, "/aiuto")).text
    assert "Language not available" in (await bot.send(CHAT, "/lingua fr")).text
    back = await bot.send(CHAT, "/lingua it")
    assert "ti scrivo in italiano" in back.text
    assert members.get_member(bot.db, member_id).language == "it"  # type: ignore[union-attr]


async def test_lingua_keeps_the_profile_language_in_step(bot: Harness, member_id: int) -> None:
    members.set_profile(bot.db, member_id, {**PACKAGING, "language": "it"}, now=bot.clock())
    await bot.send(CHAT, "/lingua en")
    assert (members.get_profile(bot.db, member_id) or {})["language"] == "en"


async def test_aiuto_shows_what_the_chat_may_do(bot: Harness, member_id: int) -> None:
    text = (await bot.send(CHAT, "/aiuto")).text
    assert "/bandi" in text and "/crawl" not in text and "/digest" not in text
    bot.add_member(CHAT + 1, role="staff", name="Staff")
    text = (await bot.send(CHAT + 1, "/help")).text
    assert "/digest" in text and "/crawl" not in text
    bot.add_member(CHAT + 2, role="admin", name="Admin")
    text = (await bot.send(CHAT + 2, "/aiuto")).text
    assert "/digest" in text and "/crawl" in text and "/invita" in text


async def test_cancellami(bot: Harness, member_id: int) -> None:
    [call] = packaging_calls(bot, 1)
    assert call.group_id is not None
    set_feedback(bot.db, member_id, call.group_id, "interested", now=bot.clock())
    await bot.send(CHAT, "/crawl tutto")  # refused, and written to the audit log
    assert [e.actor for e in audit_log(bot.db)] == [f"member:{member_id}"]
    confirm = await bot.send(CHAT, "/cancellami")
    assert "non si può annullare" in confirm.text
    assert set(labels(confirm.last_keyboard)) == {"del:yes", "del:no"}

    kept = await bot.press(CHAT, "del:no", keyboard=confirm.last_keyboard)
    assert "non ho cancellato nulla" in kept.text
    assert bot.member(CHAT) is not None

    gone = await bot.press(CHAT, "del:yes", keyboard=confirm.last_keyboard)
    assert "sono stati cancellati" in gone.text
    assert bot.member(CHAT) is None
    assert members.get_profile(bot.db, member_id) is None
    assert list_feedback(bot.db) == []
    [entry] = [e for e in audit_log(bot.db) if e.action == "member.delete_self"]
    assert (entry.actor, entry.detail) == (DELETED_ACTOR, {})
    [refused] = [e for e in audit_log(bot.db) if e.action == "crawl"]
    assert (refused.actor, refused.detail) == (DELETED_ACTOR, {})
    # Nothing in the audit log leads back to the chat or the member any more.
    for logged in audit_log(bot.db, limit=100):
        assert str(CHAT) not in logged.actor + repr(logged.detail)
        assert logged.actor not in (f"member:{member_id}", chat_actor(CHAT))
    # From now on the chat is a stranger.
    assert "non è collegata a nessun socio" in (await bot.send(CHAT, "/bandi")).text


# --- anything else --------------------------------------------------------------------------------------


async def test_unknown_command_text_and_buttons(bot: Harness, member_id: int) -> None:
    assert "Non conosco questo comando" in (await bot.send(CHAT, "/boh")).text
    assert "Non ho capito" in (await bot.send(CHAT, "buongiorno")).text
    stale = await bot.press(CHAT, "something:old")
    assert "non è più valido" in stale.answers[0].params["text"]


async def test_edited_commands_do_not_run_again(bot: Harness, member_id: int) -> None:
    from telegram import Update

    before = len(bot.server.requests)
    update = Update.de_json(
        {
            "update_id": 10_000,
            "edited_message": {
                "message_id": 1,
                "date": 1,
                "edit_date": 2,
                "chat": {"id": CHAT, "type": "private"},
                "from": {"id": CHAT, "is_bot": False, "first_name": "Laura"},
                "text": "/pausa",
                "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
            },
        },
        bot.app.bot,
    )
    await bot.app.process_update(update)
    assert len(bot.server.requests) == before
    assert not members.get_member(bot.db, member_id).paused  # type: ignore[union-attr]


async def test_a_second_tap_on_the_same_page_is_quiet(bot: Harness, member_id: int) -> None:
    packaging_calls(bot, 7)
    bot.server.script(
        "editMessageText", Answer.bad_request("Bad Request: message is not modified: same content")
    )
    replies = await bot.press(CHAT, "bandi:1")
    assert [r.status for r in replies.of("editMessageText")] == [400]
    assert replies.of("sendMessage") == []
    assert len(replies.answers) == 1
