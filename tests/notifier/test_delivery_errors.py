"""Errors classified by what they mean (both engines for the dispatcher's bookkeeping):

* one read timeout is a retry of that message, not a channel outage; several in a row are;
* admin notices say what failed and, on recovery, what recovered (not the problem again);
* a blocked chat (403) is reported, not a failure, and its text is not "Forbidden: Forbidden:";
* 429s that still happen are honoured and counted; groups are paced to 20 messages a minute.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime, timedelta

import httpx
import pytest
from telegram.error import BadRequest, Forbidden, NetworkError, TimedOut

from notifier.config import DeliveryConfig
from notifier.delivery.channels import TelegramChannel, describe_telegram_error
from notifier.delivery.dispatch import DispatchReport, dispatch
from storage import notices, outbox
from storage.db import Database
from tests.fakes.delivery_data import add_calls, add_members, alert_items, call_record
from tests.fakes.telegram_server import Answer, FakeBotAPI, FloodLimits
from tests.notifier.test_delivery_telegram import alert, config_for

pytestmark = pytest.mark.integration


def said(message: str) -> str:
    """A stored admin notice as Italian admins read it."""
    from notifier import catalogue

    return catalogue.notice_text(message, "it")


def channel_for(server: FakeBotAPI, **overrides: object) -> TelegramChannel:
    return TelegramChannel(config_for(server, **overrides))


def queue(db: Database, now: datetime, chats: list[int]) -> list[int]:
    members = add_members(db, now=now, chat_ids=chats)
    [call] = add_calls(db, [call_record(1, now=now)], now=now)
    outbox.enqueue(db, alert_items([(m, call) for m in members]), now=now)
    return members


async def send_all(db: Database, channel: TelegramChannel, now: datetime, **delivery: int) -> DispatchReport:
    """One dispatch round, one recipient at a time (so "in a row" is well defined)."""
    try:
        return await dispatch(
            db, {"telegram": channel}, now=now, limit=10, config=DeliveryConfig(concurrency=1, **delivery)
        )
    finally:
        await channel.aclose()


def test_error_texts_name_the_type_once() -> None:
    assert describe_telegram_error(Forbidden("Forbidden: bot was blocked by the user")) == (
        "Forbidden: bot was blocked by the user"
    )
    assert describe_telegram_error(BadRequest("Chat not found")) == "BadRequest: Chat not found"
    assert describe_telegram_error(TimedOut()) == "TimedOut: Timed out"
    assert describe_telegram_error(NetworkError("httpx.ReadError: ")) == "NetworkError: httpx.ReadError:"


async def test_one_timeout_is_that_messages_retry_not_an_outage(
    db: Database, server: FakeBotAPI, now: datetime
) -> None:
    queue(db, now, [301, 302, 303, 304, 305, 306])
    # The answer to chat 303 comes after the read timeout: that send failed, maybe delivered.
    server.script("sendMessage", Answer.ok(delay=1.5), chat_id=303)
    report = await send_all(db, channel_for(server, read_timeout=0.5), now, down_after_failures=2)
    assert report.down == []
    assert (report.sent, report.failed, report.returned) == (5, 1, 0)
    [failed] = outbox.list_rows(db, state="failed")
    assert "TimedOut" in (failed.last_error or "")
    assert failed.next_attempt_at == now + timedelta(seconds=60)  # its own backoff, nobody else's
    assert not report.all_delivered
    assert "delivery-down:telegram" not in {n.key for n in notices.pending_notices(db)}


async def test_failures_in_a_row_make_the_channel_down_and_its_recovery_is_told(
    db: Database, server: FakeBotAPI, now: datetime
) -> None:
    queue(db, now, [401, 402, 403, 404, 405])
    server.script("sendMessage", *[Answer.server_error(502) for _ in range(3)])
    report = await send_all(db, channel_for(server), now, down_after_failures=3)
    assert report.down == ["telegram"]
    assert (report.failed, report.returned, report.sent) == (3, 2, 0)
    [down] = notices.pending_notices(db)
    assert (
        down.active
        and "3 invii di fila falliti" in said(down.message)
        and "Internal Server Error" in said(down.message)
    )
    notices.mark_notified(db, [down.key], now=now)

    later = await send_all(db, channel_for(server), now + timedelta(hours=1))
    assert later.sent == 5 and later.all_delivered
    recovered = {n.key: n for n in notices.pending_notices(db)}["delivery-down:telegram"]
    assert not recovered.active
    assert "consegna di nuovo" in said(recovered.message) and "5 avvisi" in said(recovered.message)
    assert "falliti" not in said(recovered.message)  # what recovered, not the problem again


async def test_a_blocked_chat_is_reported_not_a_failure(
    db: Database, server: FakeBotAPI, now: datetime
) -> None:
    queue(db, now, [501, 502])
    server.script("sendMessage", Answer.forbidden(), chat_id=501)
    report = await send_all(db, channel_for(server), now)
    assert (report.sent, report.blocked, report.given_up, report.failed) == (1, 1, 0, 0)
    assert report.all_delivered
    [dead] = outbox.list_rows(db, state="dead")
    assert dead.last_error == "recipient gone: Forbidden: bot was blocked by the user"
    [gone] = notices.pending_notices(db)
    assert "Forbidden: Forbidden" not in said(gone.message) and "Forbidden: bot was blocked" in said(
        gone.message
    )


async def test_429s_are_honoured_and_counted(db: Database, server: FakeBotAPI, now: datetime) -> None:
    queue(db, now, [601, 602])
    server.script("sendMessage", Answer.retry_after(1), chat_id=601)
    report = await send_all(db, channel_for(server, max_retries=2), now)
    assert (report.sent, report.failed, report.throttled) == (2, 0, 1)
    assert "429 honoured 1" in report.summary()
    to_601 = [r for r in server.calls("sendMessage") if r.chat_id == 601]
    assert len(to_601) == 2 and to_601[1].at - to_601[0].at >= 1.0


async def test_groups_are_paced_and_the_fake_enforces_the_group_limit(now: datetime) -> None:
    with FakeBotAPI(
        limits=FloodLimits(overall_per_second=30, per_chat_interval=0.0, group_per_minute=3)
    ) as fake:
        # The fake: the 4th message in a minute to one group is refused, other chats are not.
        url = f"{fake.base_url}{fake.token}/sendMessage"
        codes = [httpx.post(url, json={"chat_id": -100, "text": "x"}).status_code for _ in range(4)]
        codes.append(httpx.post(url, json={"chat_id": -101, "text": "x"}).status_code)
    assert codes == [200, 200, 200, 429, 200] and fake.flood_429s == 1
    with FakeBotAPI() as fake:
        paced = channel_for(fake, per_group_interval=0.3)
        try:
            started = time.monotonic()
            await asyncio.gather(*(paced.send(alert(now, chat_id=-200)) for _ in range(3)))
            elapsed = time.monotonic() - started
        finally:
            await paced.aclose()
    times = [r.at for r in fake.sent_messages()]
    assert len(times) == 3 and elapsed >= 0.6
    assert all(b - a >= 0.29 for a, b in itertools.pairwise(times))
