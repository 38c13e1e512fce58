"""Probes: member, staff and admin powers live in private chats only; invitations are braked.

The bot is the daemon's application against the fake Bot API on loopback; the updates are the
JSON Telegram delivers for a private chat, a group and a supergroup (synthetic, real shapes).
Whatever is bound to a group's chat id (an invitation redeemed there before this rule, or an id
an admin typed), nobody in the group gets data or powers: one polite refusal, then silence.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from notifier.bot.member import MAX_BAD_CODES, MAX_BAD_CODES_OVERALL
from storage.audit import audit_log
from storage.invitations import list_invitations
from tests.bot.harness import Harness

pytestmark = pytest.mark.integration

GROUP = -1001234567890
STRANGER = 5551  # a user of the group who is nobody to Sentinella
ADMIN_USER = 5552  # the admin's own user id (the group's member binding is the danger)
REFUSAL = "solo in una chat privata"

MEMBER_COMMANDS = ["/bandi", "/cerca packaging", "/scadenze", "/profilo", "/pausa", "/lingua", "/cancellami"]
STAFF_ADMIN_COMMANDS = ["/membri", "/invita admin", "/stato", "/crawl sedia", "/digest on"]


@pytest.fixture(params=["group", "supergroup"])
def chat_type(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_admin_bound_to_a_group_gives_nobody_there_admin_powers(bot: Harness, chat_type: str) -> None:
    # The dangerous state the old code produced: an admin invitation redeemed in a group.
    bot.add_member(GROUP, role="admin", name="Gruppo del cluster")
    bot.add_member(1234, name="Laura Bianchi", organisation="Segreto srl")
    seen: list[str] = []
    for command in STAFF_ADMIN_COMMANDS + MEMBER_COMMANDS:
        replies = await bot.send(GROUP, command, chat_type=chat_type, user_id=STRANGER)
        seen += replies.texts
    # One refusal for the whole burst; nothing else said, no member data, no invitation link.
    assert len(seen) == 1 and REFUSAL in seen[0]
    assert not list_invitations(bot.db, now=bot.clock(), include_spent=True)
    assert bot.crawler.calls == []
    member = bot.member(GROUP)
    assert member is not None and member.active and not member.paused  # /pausa did nothing
    # Each refused admin command is audited, marked as coming from a group.
    refused = [e for e in audit_log(bot.db) if e.detail.get("refused")]
    assert refused and all(e.detail.get("group") for e in refused)
    # A day later the group is told once more, not at every message.
    bot.clock.advance(timedelta(hours=25))
    assert REFUSAL in (await bot.send(GROUP, "/membri", chat_type=chat_type, user_id=STRANGER)).text


async def test_buttons_in_a_group_do_nothing(bot: Harness, chat_type: str) -> None:
    bot.add_member(GROUP, role="member")
    for data in ("del:yes", "bandi:1", "lang:en", "pf:m"):
        replies = await bot.press(GROUP, data, chat_type=chat_type, user_id=STRANGER)
        assert len(replies.answers) == 1  # the client stops waiting
        assert not replies.of("editMessageText")
    assert bot.member(GROUP) is not None  # "del:yes" erased nothing


async def test_invitations_are_not_redeemed_in_groups(bot: Harness, chat_type: str) -> None:
    code = bot.invitation("admin")
    replies = await bot.send(GROUP, f"/start {code}", chat_type=chat_type, user_id=ADMIN_USER)
    assert REFUSAL in replies.text
    assert bot.member(GROUP) is None and bot.member(ADMIN_USER) is None
    # The code is still good, in the private chat of the person it was meant for.
    replies = await bot.send(ADMIN_USER, f"/start {code}")
    admin = bot.member(ADMIN_USER)
    assert admin is not None and admin.role == "admin"
    # And that admin's powers stay in the private chat: in the group they are nobody.
    replies = await bot.send(GROUP, "/membri", chat_type=chat_type, user_id=ADMIN_USER)
    assert "Laura" not in replies.text and "Segreto" not in replies.text


async def test_group_small_talk_gets_no_answer(bot: Harness, chat_type: str) -> None:
    bot.add_member(GROUP)
    replies = await bot.send(GROUP, "buongiorno a tutti", chat_type=chat_type, user_id=STRANGER)
    assert replies.texts == []


async def test_private_chat_keeps_its_powers(bot: Harness) -> None:
    bot.add_member(1234, name="Laura Bianchi", organisation="Segreto srl")
    bot.add_member(ADMIN_USER, role="admin", name="Admin")
    assert "Laura Bianchi" in (await bot.send(ADMIN_USER, "/membri")).text


# --- the brake on guessing invitation codes, in the database ----------------------------------


async def test_guessing_brake_is_per_chat_and_survives_a_restart(bot: Harness) -> None:
    for _ in range(MAX_BAD_CODES):
        await bot.send(4242, "/start AAAAAAAAAAAAAAAAAAAAAA")
    good = bot.invitation()
    # A restart forgets everything in memory: the brake is in the database.
    await bot.app.stop()
    bot.app.bot_data.clear()
    from notifier.bot import BotServices
    from notifier.bot.common import DEPS_KEY, BotDeps
    from tests.bot.harness import make_config

    bot.app.bot_data[DEPS_KEY] = BotDeps(
        db=bot.db, config=make_config(bot.server), clock=bot.clock, services=BotServices()
    )
    await bot.app.start()
    assert "Troppi tentativi" in (await bot.send(4242, f"/start {good}")).text
    assert bot.member(4242) is None
    # Another chat is not braked by this one.
    await bot.send(4343, f"/start {good}")
    assert bot.member(4343) is not None


async def test_guessing_from_many_chats_brakes_everyone(bot: Harness) -> None:
    for i in range(MAX_BAD_CODES_OVERALL):
        await bot.send(10_000 + i, "/start AAAAAAAAAAAAAAAAAAAAAA")
    good = bot.invitation()
    replies = await bot.send(99, f"/start {good}")
    assert "in questo momento" in replies.text and bot.member(99) is None
    bot.clock.advance(timedelta(hours=1, minutes=1))
    await bot.send(99, f"/start {good}")
    assert bot.member(99) is not None
