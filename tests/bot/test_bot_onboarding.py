"""Onboarding by invitation: good, used, expired and forged codes; chats that are not members."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage.audit import audit_log
from storage.invitations import list_invitations
from tests.bot.harness import Harness

pytestmark = pytest.mark.integration

CHAT = 4242


def said(message: str) -> str:
    """A stored admin notice as Italian admins read it."""
    from notifier import catalogue

    return catalogue.notice_text(message, "it")


async def test_good_code_binds_the_chat_and_opens_the_topics(bot: Harness) -> None:
    code = bot.invitation()
    replies = await bot.send(CHAT, f"/start {code}", first_name="Laura")
    member = bot.member(CHAT)
    assert member is not None and member.active and member.role == "member"
    assert member.name == "Laura"
    assert member.language == "it"
    assert "Benvenuto/a, <b>Laura</b>" in replies.texts[0]
    # The second message is the topic picker: one toggle per topic of the vocabulary.
    data = [d for _, d in replies.buttons()]
    assert "pf:t:packaging" in data and data[-1] == "pf:m"
    [entry] = [e for e in audit_log(bot.db) if e.action == "invitation.redeem"]
    assert entry.detail["member_id"] == member.id


async def test_english_client_gets_english(bot: Harness) -> None:
    code = bot.invitation()
    replies = await bot.send(CHAT, f"/start {code}", language_code="en-GB", first_name="Anne")
    member = bot.member(CHAT)
    assert member is not None and member.language == "en"
    assert "Welcome, <b>Anne</b>!" in replies.texts[0]


async def test_used_code(bot: Harness) -> None:
    code = bot.invitation()
    await bot.send(CHAT, f"/start {code}")
    replies = await bot.send(CHAT + 1, f"/start {code}")
    assert "già stato usato" in replies.text
    assert bot.member(CHAT + 1) is None


async def test_expired_code(bot: Harness) -> None:
    code = bot.invitation(ttl=timedelta(hours=1))
    bot.clock.advance(timedelta(hours=2))
    replies = await bot.send(CHAT, f"/start {code}")
    assert "scaduto" in replies.text
    assert bot.member(CHAT) is None
    # An expired code stays unused: nothing was consumed.
    [invitation] = list_invitations(bot.db, now=bot.clock(), include_spent=True)
    assert invitation.used_at is None


@pytest.mark.parametrize(
    "text",
    [
        "/start AAAAAAAAAAAAAAAAAAAAAA",  # well formed, never issued
        "/start <script>alert(1)</script>",  # not even a possible code
        "/start " + "x" * 65,  # longer than Telegram allows
        "/start two words",
    ],
)
async def test_forged_code(bot: Harness, text: str) -> None:
    bot.invitation()
    replies = await bot.send(CHAT, text)
    assert len(replies.texts) == 1
    assert "non è valido" in replies.text
    assert "<script>" not in replies.text
    assert bot.member(CHAT) is None


async def test_guessing_is_slowed_down(bot: Harness) -> None:
    for _ in range(5):
        await bot.send(CHAT, "/start AAAAAAAAAAAAAAAAAAAAAA")
    good = bot.invitation()
    replies = await bot.send(CHAT, f"/start {good}")
    assert "Troppi tentativi" in replies.text
    assert bot.member(CHAT) is None
    bot.clock.advance(timedelta(hours=1, minutes=1))
    replies = await bot.send(CHAT, f"/start {good}")
    assert bot.member(CHAT) is not None


async def test_start_without_code_explains_how_to_get_one(bot: Harness) -> None:
    replies = await bot.send(CHAT, "/start")
    assert "solo su invito" in replies.text
    replies = await bot.send(CHAT, "/start", language_code="en")
    assert "by invitation only" in replies.text


async def test_registered_member_is_greeted_again(bot: Harness) -> None:
    bot.add_member(CHAT, name="Laura <Bianchi>")
    code = bot.invitation()
    replies = await bot.send(CHAT, f"/start {code}")
    assert "Sei già registrato/a come <b>Laura &lt;Bianchi&gt;</b>" in replies.text
    # The code was not spent on a chat that needed none.
    assert list_invitations(bot.db, now=bot.clock())


async def test_suspended_member_comes_back_with_a_new_code(bot: Harness) -> None:
    member_id = bot.add_member(CHAT, active=False)
    replies = await bot.send(CHAT, "/bandi")
    assert "sospeso" in replies.text
    replies = await bot.send(CHAT, f"/start {bot.invitation()}")
    member = bot.member(CHAT)
    assert member is not None and member.id == member_id and member.active


@pytest.mark.parametrize(
    "text",
    [
        "/bandi",
        "/profilo",
        "/cerca bando",
        "/scadenze",
        "/pausa",
        "/cancellami",
        "/digest on",
        "ciao",
        "/boh",
    ],
)
async def test_nothing_works_for_unknown_chats(bot: Harness, text: str) -> None:
    replies = await bot.send(CHAT, text)
    assert len(replies.texts) == 1
    assert "non è collegata a nessun socio" in replies.text
    assert bot.member(CHAT) is None


async def test_unknown_chat_pressing_a_button(bot: Harness) -> None:
    replies = await bot.press(CHAT, "fb:i:1")
    assert len(replies.answers) == 1
    assert "non è collegata a nessun socio" in replies.text


async def test_help_for_unknown_chat_is_the_invitation_text(bot: Harness) -> None:
    replies = await bot.send(CHAT, "/aiuto")
    assert "solo su invito" in replies.text


async def test_a_member_who_blocked_the_bot_and_comes_back_gets_telegram_again(bot: Harness) -> None:
    from notifier.delivery.dispatch import _gone_key
    from storage import notices, outbox

    member_id = bot.add_member(CHAT, name="Laura")
    # Telegram answered 403 to an alert: the dispatcher switched the chat off and told admins.
    assert outbox.switch_off_telegram(bot.db, member_id, now=bot.clock())
    notices.raise_notice(bot.db, _gone_key(member_id), "Telegram non raggiunge più Laura", now=bot.clock())
    notices.mark_notified(bot.db, [_gone_key(member_id)], now=bot.clock())

    replies = await bot.send(CHAT, "/start")
    assert "Bentornato/a, <b>Laura</b>" in replies.text and "già registrato" not in replies.text
    member = bot.member(CHAT)
    assert member is not None and member.telegram_ok
    # Admins hear what recovered, not the problem again.
    [told] = notices.pending_notices(bot.db)
    assert not told.active and "ha riattivato il bot" in said(told.message)
    assert any(e.action == "member.telegram_back" for e in audit_log(bot.db))
    # Once back, /start is the usual answer.
    again = await bot.send(CHAT, "/start")
    assert "già registrato" in again.text
