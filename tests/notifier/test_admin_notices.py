"""Admin notices reach admins once when raised and once on recovery (fake Bot API, real PTB)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from notifier.config import EmailConfig, TelegramConfig
from notifier.delivery.admin import notify_admins
from notifier.delivery.channels import ConsoleChannel, TelegramChannel
from storage import members, notices
from storage.db import Database
from tests.fakes.telegram_server import Answer, FakeBotAPI

pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Iterator[FakeBotAPI]:
    with FakeBotAPI() as fake:
        yield fake


async def tell(db: Database, channels: dict[str, Any], config: TelegramConfig, now: datetime) -> int:
    return await notify_admins(db, channels, telegram=config, email=EmailConfig(), now=now)


async def test_raised_once_recovered_once(sqlite_db: Database, server: FakeBotAPI, now: datetime) -> None:
    config = TelegramConfig(token=SecretStr(server.token), base_url=server.base_url, admin_chat_ids=[900])
    members.upsert_member(sqlite_db, now=now, name="Ada Admin", role="admin", telegram_chat_id=901)
    members.upsert_member(sqlite_db, now=now, name="Mario Member", role="member", telegram_chat_id=902)
    channels = {"telegram": TelegramChannel(config)}

    notices.raise_notice(sqlite_db, "source:sedia", "Source sedia keeps failing: <HTTP 500> & more", now=now)
    assert await tell(sqlite_db, channels, config, now) == 1
    sent = server.sent_messages()
    assert sorted(m.chat_id for m in sent) == [900, 901]  # never the plain member
    assert "&lt;HTTP 500&gt; &amp; more" in sent[0].text
    assert "problema" in sent[0].text

    # Raised again while active: nobody is told twice.
    notices.raise_notice(sqlite_db, "source:sedia", "still failing", now=now + timedelta(hours=1))
    assert await tell(sqlite_db, channels, config, now + timedelta(hours=1)) == 0
    assert len(server.sent_messages()) == 2

    notices.clear_notice(sqlite_db, "source:sedia", now=now + timedelta(hours=2))
    assert await tell(sqlite_db, channels, config, now + timedelta(hours=2)) == 1
    recovered = server.sent_messages()[2:]
    assert len(recovered) == 2 and all("risolto" in m.text for m in recovered)
    assert await tell(sqlite_db, channels, config, now + timedelta(hours=3)) == 0
    await channels["telegram"].aclose()


async def test_kept_pending_when_every_admin_is_unreachable(
    sqlite_db: Database, server: FakeBotAPI, now: datetime
) -> None:
    config = TelegramConfig(
        token=SecretStr(server.token), base_url=server.base_url, admin_chat_ids=[900], max_retries=1
    )
    channels = {"telegram": TelegramChannel(config)}
    server.script("sendMessage", Answer.server_error())
    notices.raise_notice(sqlite_db, "overdue:alerts", "3 alerts late", now=now)
    try:
        assert await tell(sqlite_db, channels, config, now) == 0
        assert [n.key for n in notices.pending_notices(sqlite_db)] == ["overdue:alerts"]
        assert await tell(sqlite_db, channels, config, now) == 1
        assert notices.pending_notices(sqlite_db) == []
    finally:
        await channels["telegram"].aclose()


async def test_console_when_nothing_is_configured(
    sqlite_db: Database, now: datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    notices.raise_notice(sqlite_db, "source:feeds", "Source feeds keeps failing", now=now)
    assert await tell(sqlite_db, {"console": ConsoleChannel()}, TelegramConfig(), now) == 1
    assert "Source feeds keeps failing" in capsys.readouterr().out
    assert notices.pending_notices(sqlite_db) == []


async def test_many_notices_go_whole_over_several_messages(
    sqlite_db: Database, server: FakeBotAPI, now: datetime
) -> None:
    config = TelegramConfig(token=SecretStr(server.token), base_url=server.base_url, admin_chat_ids=[900])
    channels: dict[str, Any] = {"telegram": TelegramChannel(config)}
    for i in range(12):
        notices.raise_notice(sqlite_db, f"source:s{i}", f"Source s{i} & co: " + "x" * 600, now=now)
    try:
        told = [await tell(sqlite_db, channels, config, now) for _ in range(6)]
    finally:
        await channels["telegram"].aclose()
    assert sum(told) == 12 and told[0] < 12  # more than one message, nothing dropped
    texts = [m.text for m in server.sent_messages()]
    assert all(len(t) <= 4096 for t in texts)
    assert all(t.count("&amp;") == t.count("Source s") for t in texts)  # no entity cut in half
    assert notices.pending_notices(sqlite_db) == []


async def test_html_refused_is_resent_as_plain_text(
    sqlite_db: Database, server: FakeBotAPI, now: datetime
) -> None:
    config = TelegramConfig(token=SecretStr(server.token), base_url=server.base_url, admin_chat_ids=[900])
    channels: dict[str, Any] = {"telegram": TelegramChannel(config)}
    server.script("sendMessage", Answer.parse_error())
    notices.raise_notice(sqlite_db, "source:x", "Source x <b>broken", now=now)
    try:
        assert await tell(sqlite_db, channels, config, now) == 1
    finally:
        await channels["telegram"].aclose()
    last = server.sent_messages()[-1]
    assert "parse_mode" not in last.params and "Source x <b>broken" in last.text


async def test_each_admin_reads_notices_in_their_language(
    sqlite_db: Database, server: FakeBotAPI, now: datetime
) -> None:
    from notifier import catalogue

    config = TelegramConfig(token=SecretStr(server.token), base_url=server.base_url)
    members.upsert_member(sqlite_db, now=now, name="Ada", role="admin", telegram_chat_id=901, language="it")
    members.upsert_member(sqlite_db, now=now, name="Bob", role="admin", telegram_chat_id=902, language="en")
    channels = {"telegram": TelegramChannel(config)}
    message = catalogue.notice(
        "notice.source_failing", source="sedia", outcome="failed", reason=": <HTTP 503>"
    )
    notices.raise_notice(sqlite_db, "source:sedia", message, now=now)
    assert await tell(sqlite_db, channels, config, now) == 1
    by_chat = {m.chat_id: m.text for m in server.sent_messages()}
    assert "La fonte sedia continua a non funzionare (failed): &lt;HTTP 503&gt;" in by_chat[901]
    assert "problema" in by_chat[901]
    assert "Source sedia keeps failing (failed): &lt;HTTP 503&gt;" in by_chat[902]
    assert "problem" in by_chat[902] and "problema" not in by_chat[902]
    await channels["telegram"].aclose()
