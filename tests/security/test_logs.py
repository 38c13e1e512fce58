"""Probe: chat ids and e-mail addresses stay out of INFO (and louder) logs.

The bot against the fake Bot API: an invitation redeemed, a bad code, a group refusal, a reply
Telegram refuses. The ids may appear at DEBUG (for whoever debugs), never above it.
"""

from __future__ import annotations

import logging

import pytest

from tests.bot.harness import Harness
from tests.fakes.telegram_server import Answer

pytestmark = pytest.mark.integration

CHAT = 734_512_998
OTHER = 734_512_999
GROUP = -1_001_734_512_990


async def test_chat_ids_are_not_logged_at_info(bot: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    code = bot.invitation()
    await bot.send(CHAT, f"/start {code}")
    await bot.send(OTHER, "/start AAAAAAAAAAAAAAAAAAAAAA")
    await bot.send(GROUP, "/bandi", chat_type="supergroup", user_id=OTHER)
    bot.server.script("sendMessage", Answer.error(400, "Bad Request: chat not found"), chat_id=CHAT)
    await bot.send(CHAT, "/aiuto")
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert loud, "the probe logged nothing at all"
    for ident in (CHAT, OTHER, GROUP):
        assert not [m for m in loud if str(abs(ident)) in m], ident
    # The information is still there for debugging.
    assert any(str(CHAT) in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
