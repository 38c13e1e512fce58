"""One member's whole life in the bot, on SQLite and on PostgreSQL: every path that writes."""

from __future__ import annotations

import pytest

from storage import members
from storage.audit import audit_log
from storage.feedback import get_feedback
from tests.bot.harness import ADMIN_CHAT, Harness
from tests.fakes.planning_data import packaging_call, store

pytestmark = pytest.mark.integration

CHAT = 3131


async def test_a_member_from_invitation_to_deletion(bot_on_each_engine: Harness) -> None:
    bot = bot_on_each_engine
    invited = await bot.send(ADMIN_CHAT, "/invita")
    code = invited.text.split("?start=", 1)[1].split()[0]
    await bot.send(CHAT, f"/start {code}")
    member = bot.member(CHAT)
    assert member is not None

    await bot.press(CHAT, "pf:t:packaging")
    await bot.press(CHAT, "pf:k")
    await bot.send(CHAT, "airless, flaconi")
    stored = members.get_profile(bot.db, member.id) or {}
    assert stored["topics"] == ["packaging"] and stored["keywords"] == ["airless", "flaconi"]

    [call] = store(bot.db, [packaging_call(now=bot.clock())], now=bot.clock())
    assert call.group_id is not None
    assert "1 in tutto" in (await bot.send(CHAT, "/bandi")).text
    await bot.press(CHAT, f"fb:i:{call.group_id}")
    assert get_feedback(bot.db, member.id, call.group_id) == "interested"
    assert "Packaging sostenibile" in (await bot.send(CHAT, "/scadenze")).text

    await bot.send(CHAT, "/pausa")
    await bot.send(CHAT, "/lingua en")
    member = bot.member(CHAT)
    assert member is not None and member.paused and member.language == "en"

    await bot.press(CHAT, "del:yes")
    assert bot.member(CHAT) is None
    assert [e.action for e in audit_log(bot.db)][:2] == ["member.delete_self", "invitation.redeem"]
