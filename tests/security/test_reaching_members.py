"""Probes: hostile call text and disguised links never reach a member.

A feed title with terminal escapes and a bidi override, and a link whose user-info names a
trusted host (``https://trusted.example@evil.example/``), go through the real paths: ingest (as
a crawler hands records over), then the bot's ``/cerca`` against the fake Bot API, and
``sentinella dispatch`` through the console script (the Telegram alert). Rows written before the sanitiser existed are covered too: the renderers refuse a
link with user-info whatever the database holds.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.calls import list_calls
from storage.db import Database
from storage.ingest import ingest
from storage.records import ROME, CallRecord, CallStatus
from tests.bot.harness import Harness
from tests.fakes.telegram_server import FakeBotAPI
from tests.security.cli import Sentinella

pytestmark = pytest.mark.integration

HOSTILE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
TITLE = "Bando packaging\x1b]52;c;cm0gLXJmIH4=\x07 flaconi \u202eexe.fdp\u202c riciclabili\x1b[2J"
DISGUISED = "https://trusted.example@evil.example/bando"


def hostile_record(now_open: bool = True) -> CallRecord:
    return CallRecord(
        source="feeds",
        source_id="hostile-1",
        url=DISGUISED,
        title=TITLE,
        summary="Contributi per PMI\x9b2J lombarde: packaging e flaconi riciclabili",
        status=CallStatus.OPEN if now_open else CallStatus.CLOSED,
        links=("https://user:pass@evil.example/allegato.pdf",),
    )


async def test_bot_shows_clean_titles_and_no_disguised_link(bot: Harness) -> None:
    bot.add_member(4242)
    result = ingest(bot.db, [hostile_record()], now=bot.clock())
    assert result.new == 1
    [call] = list_calls(bot.db)
    assert not HOSTILE.search(call.title) and call.url == "https://evil.example/bando"
    replies = await bot.send(4242, "/cerca flaconi")
    assert "flaconi" in replies.text
    assert not HOSTILE.search(replies.text)
    assert "trusted.example" not in replies.text


async def test_hostile_text_and_links_stored_earlier_are_not_shown(bot: Harness) -> None:
    bot.add_member(4242)
    ingest(bot.db, [hostile_record()], now=bot.clock())
    with bot.db.engine.begin() as conn:  # a row from before the sanitiser
        conn.execute(text("UPDATE calls SET url = :u, title = :t"), {"u": DISGUISED, "t": TITLE})
    replies = await bot.send(4242, "/cerca flaconi")
    assert "flaconi" in replies.text and "evil.example" not in replies.text and "href" not in replies.text
    assert not HOSTILE.search(replies.text)


MEMBERS = """
[[member]]
name = "Laura Bianchi"
email = "laura@example.com"
telegram_chat_id = 123456789
[member.profile]
topics = ["packaging"]
keywords = ["flaconi riciclabili"]
"""


def test_alerts_carry_no_escape_and_no_disguised_link(tmp_path: Path) -> None:
    (tmp_path / "members.toml").write_text(MEMBERS, encoding="utf-8")
    with FakeBotAPI() as server:
        run = Sentinella(
            tmp_path, SENTINELLA_TELEGRAM__TOKEN=server.token, SENTINELLA_TELEGRAM__BASE_URL=server.base_url
        )
        assert run("members", "import", "members.toml").code == 0
        db = Database(run.env["SENTINELLA_DATABASE_URL"])
        now = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)
        ingest(db, [replace(hostile_record(), closes=now + timedelta(days=30))], now=now)
        db.dispose()
        result = run("dispatch")
        assert result.code == 0, result.err
        sent = server.sent_messages()
        assert sent, "no alert reached the fake Bot API"
    for message in sent:
        assert not HOSTILE.search(message.text)
        assert "trusted.example" not in str(message.params)
    assert not HOSTILE.search(result.out.replace("\n", ""))
