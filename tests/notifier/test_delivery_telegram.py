"""The Telegram channel and the dispatcher against the fake Bot API on loopback (real PTB, real HTTP)."""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from notifier.config import DeliveryConfig, TelegramConfig
from notifier.delivery.channels import Permanent, RecipientGone, Retryable, TelegramChannel
from notifier.delivery.dispatch import dispatch
from notifier.messages.alerts import Alert
from storage import outbox
from storage.db import Database
from storage.models import AdminNotice
from storage.outbox import Recipient
from tests.fakes.delivery_data import FakeCall, add_calls, add_member, add_members, alert_items, call_record
from tests.fakes.telegram_server import Answer, FakeBotAPI

pytestmark = pytest.mark.integration


def config_for(server: FakeBotAPI, **overrides: object) -> TelegramConfig:
    values: dict[str, object] = {
        "token": SecretStr(server.token),
        "base_url": server.base_url,
        "max_retries": 1,
        "per_chat_interval": 0,
        "read_timeout": 5,
    }
    values.update(overrides)
    return TelegramConfig(**values)  # type: ignore[arg-type]


def alert(now: datetime, *, chat_id: int = 42, title: str = "Bando <b>Innovazione</b> & co") -> Alert:
    return Alert(
        outbox_id=1,
        reason="new",
        channel="telegram",
        recipient=Recipient(1, "Laura", "it", chat_id, None, True, False, True),
        call=FakeCall(title=title),
        payload={"reasons": ["packaging (titolo)"]},
        now=now,
        group_id=7,
    )


# --- the channel --------------------------------------------------------------------------------


async def test_sends_html_with_buttons(server: FakeBotAPI, now: datetime) -> None:
    channel = TelegramChannel(config_for(server))
    try:
        receipt = await channel.send(alert(now))
    finally:
        await channel.aclose()
    [sent] = server.sent_messages()
    assert receipt == "42:1"
    assert sent.params["chat_id"] == 42
    assert sent.params["parse_mode"] == "HTML"
    assert "Bando &lt;b&gt;Innovazione&lt;/b&gt; &amp; co" in sent.text
    buttons = sent.params["reply_markup"]["inline_keyboard"]
    assert [b["callback_data"] for b in buttons[0]] == ["fb:i:7", "fb:n:7"]
    assert sent.params["link_preview_options"] == {"is_disabled": True}
    assert [r.method for r in server.calls()] == ["getMe", "sendMessage"]


async def test_retry_after_is_waited_by_the_rate_limiter(server: FakeBotAPI, now: datetime) -> None:
    server.script("sendMessage", Answer.retry_after(1))
    channel = TelegramChannel(config_for(server))
    try:
        await channel.send(alert(now))
    finally:
        await channel.aclose()
    first, second = server.calls("sendMessage")
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 1.0  # the limiter waited retry_after before retrying


async def test_too_many_429s_become_retryable(server: FakeBotAPI, now: datetime) -> None:
    server.script("sendMessage", Answer.retry_after(1), Answer.retry_after(7))
    channel = TelegramChannel(config_for(server))
    try:
        with pytest.raises(Retryable) as info:
            await channel.send(alert(now))
    finally:
        await channel.aclose()
    assert info.value.after == 7
    assert not info.value.channel_down


async def test_403_means_recipient_gone(server: FakeBotAPI, now: datetime) -> None:
    server.script("sendMessage", Answer.forbidden())
    channel = TelegramChannel(config_for(server))
    try:
        with pytest.raises(RecipientGone, match="blocked"):
            await channel.send(alert(now))
    finally:
        await channel.aclose()


async def test_parse_error_resends_plain_text(server: FakeBotAPI, now: datetime) -> None:
    server.script("sendMessage", Answer.parse_error())
    channel = TelegramChannel(config_for(server))
    try:
        receipt = await channel.send(alert(now))
    finally:
        await channel.aclose()
    html_try, plain = server.calls("sendMessage")
    assert html_try.status == 400 and plain.status == 200
    assert "parse_mode" not in plain.params
    assert "Bando <b>Innovazione</b> & co" in plain.text
    assert plain.params["reply_markup"] == html_try.params["reply_markup"]
    assert receipt == "42:1 plain"
    assert channel.plain_fallbacks == 1


async def test_other_400s_are_permanent_and_5xx_retryable(server: FakeBotAPI, now: datetime) -> None:
    server.script("sendMessage", Answer.bad_request(), Answer.server_error(500), Answer.server_error(502))
    channel = TelegramChannel(config_for(server))
    try:
        with pytest.raises(Permanent):
            await channel.send(alert(now))
        with pytest.raises(Retryable):
            await channel.send(alert(now))
        with pytest.raises(Retryable):
            await channel.send(alert(now))
    finally:
        await channel.aclose()


async def test_slow_server_times_out_as_retryable(server: FakeBotAPI, now: datetime) -> None:
    channel = TelegramChannel(config_for(server, read_timeout=0.2))
    await channel._ensure_ready()
    server.script("sendMessage", Answer.ok(delay=1.0))
    try:
        with pytest.raises(Retryable) as info:
            await channel.send(alert(now))
    finally:
        await channel.aclose()
    assert not info.value.channel_down


async def test_unreachable_api_is_channel_down(now: datetime) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = TelegramConfig(
        token=SecretStr("1:x"), base_url=f"http://127.0.0.1:{port}/bot", connect_timeout=2
    )
    channel = TelegramChannel(config)
    try:
        with pytest.raises(Retryable) as info:
            await channel.send(alert(now))
    finally:
        await channel.aclose()
    # One refused connection is a retry of that message; the dispatcher decides when the
    # channel is down (several in a row).
    assert info.value.transport and not info.value.channel_down


async def test_messages_to_one_chat_are_spaced(server: FakeBotAPI, now: datetime) -> None:
    channel = TelegramChannel(config_for(server, per_chat_interval=0.3))
    try:
        await asyncio.gather(
            channel.send(alert(now)), channel.send(alert(now)), channel.send(alert(now, chat_id=43))
        )
    finally:
        await channel.aclose()
    to_42 = [r for r in server.sent_messages() if r.chat_id == 42]
    assert len(to_42) == 2
    assert to_42[1].at - to_42[0].answered_at >= 0.3  # type: ignore[operator]


async def test_token_never_reaches_the_logs(
    server: FakeBotAPI, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script("sendMessage", Answer.server_error())
    channel = TelegramChannel(config_for(server))
    try:
        with pytest.raises(Retryable) as info:
            await channel.send(alert(now))
    finally:
        await channel.aclose()
    assert server.token not in caplog.text
    assert server.token not in info.value.reason
    bad = TelegramChannel(config_for(server, token=SecretStr("999:wrong-token")))
    try:
        with pytest.raises(Retryable) as rejected:
            await bad.send(alert(now))
    finally:
        await bad.aclose()
    assert "999:wrong-token" not in rejected.value.reason and "999:wrong-token" not in caplog.text
    assert rejected.value.channel_down


# --- the dispatcher ------------------------------------------------------------------------------


def _rows(db: Database) -> dict[int, outbox.OutboxRow]:
    return {r.id: r for r in outbox.list_rows(db)}


def _notices(db: Database) -> dict[str, AdminNotice]:
    with db.session() as session:
        return {n.key: n for n in session.scalars(select(AdminNotice))}


async def test_dispatch_sends_everything_in_order(db: Database, server: FakeBotAPI, now: datetime) -> None:
    members = add_members(db, now=now, chat_ids=[101, 102, 103])
    calls = add_calls(db, [call_record(n, now=now) for n in range(4)], now=now)
    outbox.enqueue(db, alert_items([(m, c) for m in members for c in calls]), now=now)
    channel = TelegramChannel(config_for(server))
    try:
        report = await dispatch(db, {"telegram": channel}, now=now, limit=100)
    finally:
        await channel.aclose()
    assert (report.claimed, report.sent, report.failed, report.dead) == (12, 12, 0, 0)
    rows = _rows(db)
    assert all(r.state == "sent" and r.sent_at == now and r.receipt for r in rows.values())
    for chat in (101, 102, 103):
        titles = [r.text for r in server.sent_messages() if r.chat_id == chat]
        order = [next(i for i, c in enumerate(calls) if c.title in t) for t in titles]
        assert order == [0, 1, 2, 3]  # outbox order within a chat
    again = await dispatch(db, {"telegram": TelegramChannel(config_for(server))}, now=now, limit=100)
    assert again.claimed == 0


async def test_dispatch_403_switches_telegram_off(db: Database, server: FakeBotAPI, now: datetime) -> None:
    gone = add_member(db, now=now, name="Bloccato", chat_id=201)
    fine = add_member(db, now=now, name="Attivo", chat_id=202)
    calls = add_calls(db, [call_record(n, now=now) for n in range(2)], now=now)
    outbox.enqueue(db, alert_items([(m, c) for m in (gone, fine) for c in calls]), now=now)
    server.script("sendMessage", Answer.forbidden(), chat_id=201)
    channel = TelegramChannel(config_for(server))
    try:
        report = await dispatch(db, {"telegram": channel}, now=now, limit=100)
    finally:
        await channel.aclose()
    assert report.gone == [gone]
    assert (report.sent, report.dead) == (2, 2)
    assert len([r for r in server.calls("sendMessage") if r.chat_id == 201]) == 1  # the second is not tried
    assert not outbox.recipients(db, [gone])[gone].telegram_ok
    states = {(r.member_id, r.state) for r in _rows(db).values()}
    assert states == {(gone, "dead"), (fine, "sent")}
    notice = _notices(db)[f"telegram-gone:{gone}"]
    assert notice.active and "Bloccato" in notice.message


async def test_dispatch_retries_with_backoff_and_keeps_order(
    db: Database, server: FakeBotAPI, now: datetime
) -> None:
    member = add_member(db, now=now, chat_id=301)
    calls = add_calls(db, [call_record(n, now=now) for n in range(3)], now=now)
    outbox.enqueue(db, alert_items([(member, c) for c in calls]), now=now)
    server.script("sendMessage", Answer.retry_after(1), Answer.retry_after(120))
    config = DeliveryConfig(backoff_seconds=[60, 300])
    channel = TelegramChannel(config_for(server))
    try:
        report = await dispatch(db, {"telegram": channel}, now=now, limit=100, config=config)
        first, second, third = sorted(_rows(db).values(), key=lambda r: r.id)
        assert (report.failed, report.returned) == (1, 2)
        # retry_after (120 s) is longer than the first backoff (60 s): it wins.
        assert first.state == "failed" and first.next_attempt_at == now + timedelta(seconds=120)
        # The later alerts wait behind the failed one, and the wait costs them no attempt.
        assert [(r.state, r.attempts, r.next_attempt_at) for r in (second, third)] == [
            ("pending", 0, now + timedelta(seconds=120)),
        ] * 2
        assert (
            await dispatch(db, {"telegram": channel}, now=now + timedelta(seconds=60), limit=9)
        ).claimed == 0
        later = await dispatch(
            db, {"telegram": channel}, now=now + timedelta(seconds=120), limit=100, config=config
        )
    finally:
        await channel.aclose()
    assert later.sent == 3
    texts = [r.text for r in server.sent_messages()]
    assert [next(i for i, c in enumerate(calls) if c.title in t) for t in texts] == [0, 1, 2]


async def test_dispatch_gives_up_after_max_attempts(db: Database, server: FakeBotAPI, now: datetime) -> None:
    member = add_member(db, now=now, chat_id=401)
    [call] = add_calls(db, [call_record(1, now=now)], now=now)
    outbox.enqueue(db, alert_items([(member, call)]), now=now)
    server.script("sendMessage", *[Answer.server_error()] * 3)
    config = DeliveryConfig(backoff_seconds=[60], max_attempts=3)
    channel = TelegramChannel(config_for(server))
    try:
        at = now
        for _ in range(3):
            report = await dispatch(db, {"telegram": channel}, now=at, limit=10, config=config)
            at += timedelta(seconds=60)
    finally:
        await channel.aclose()
    [row] = _rows(db).values()
    assert row.state == "dead" and row.attempts == 3
    assert row.last_error is not None and "gave up after 3 attempts" in row.last_error
    assert report.dead == 1
    assert _notices(db)["delivery-dead:telegram"].active


async def test_dispatch_plain_text_fallback_and_permanent(
    db: Database, server: FakeBotAPI, now: datetime
) -> None:
    member = add_member(db, now=now, chat_id=501)
    calls = add_calls(db, [call_record(n, now=now) for n in range(2)], now=now)
    outbox.enqueue(db, alert_items([(member, c) for c in calls]), now=now)
    server.script(
        "sendMessage",
        Answer.parse_error(),
        Answer.ok(),
        Answer.bad_request("Bad Request: message is too long"),
    )
    channel = TelegramChannel(config_for(server))
    try:
        report = await dispatch(db, {"telegram": channel}, now=now, limit=10)
    finally:
        await channel.aclose()
    assert (report.sent, report.dead) == (1, 1)
    first, second = sorted(_rows(db).values(), key=lambda r: r.id)
    assert first.state == "sent" and second.state == "dead"
    assert second.last_error is not None and "too long" in second.last_error


async def test_dispatch_when_the_api_is_down(db: Database, now: datetime) -> None:
    members = add_members(db, now=now, chat_ids=[601, 602, 603])
    [call] = add_calls(db, [call_record(1, now=now)], now=now)
    outbox.enqueue(db, alert_items([(m, call) for m in members]), now=now)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = TelegramConfig(token=SecretStr("1:x"), base_url=f"http://127.0.0.1:{port}/bot")
    channel = TelegramChannel(config)
    try:
        report = await dispatch(
            db,
            {"telegram": channel},
            now=now,
            limit=10,
            config=DeliveryConfig(concurrency=1, down_after_failures=2),
        )
    finally:
        await channel.aclose()
    # Two refused sends in a row, to two members: down; the third is not tried.
    assert report.down == ["telegram"]
    assert (report.failed, report.returned) == (2, 1)
    assert outbox.backlog(db)["sent"] == 0
    assert all(r.attempts <= 1 for r in _rows(db).values())
    assert _notices(db)["delivery-down:telegram"].active
    # Back up: everything goes, and admins hear it recovered.
    with FakeBotAPI(token="1:x") as fake:
        up = TelegramChannel(config_for(fake))
        try:
            later = await dispatch(db, {"telegram": up}, now=now + timedelta(hours=1), limit=10)
        finally:
            await up.aclose()
    assert later.sent == 3
    # Raised and cleared before admins were told: nothing left to tell.
    assert "delivery-down:telegram" not in _notices(db)


async def test_dispatch_skips_who_cannot_be_reached(db: Database, server: FakeBotAPI, now: datetime) -> None:
    paused = add_member(db, now=now, chat_id=701, paused=True)
    no_chat = add_member(db, now=now, email="x@example.com")
    [call] = add_calls(db, [call_record(1, now=now)], now=now)
    outbox.enqueue(db, alert_items([(paused, call), (no_chat, call)]), now=now)
    outbox.enqueue(db, alert_items([(no_chat, call)], channel="email"), now=now)
    channel = TelegramChannel(config_for(server))
    try:
        report = await dispatch(db, {"telegram": channel}, now=now, limit=10)
    finally:
        await channel.aclose()
    assert report.dead == 2 and server.calls("sendMessage") == []
    assert outbox.backlog(db)["pending"] == 1  # the e-mail row: no e-mail channel here
    assert "delivery-dead:telegram" not in _notices(db)  # skips are not delivery failures


async def test_stop_finishes_in_flight_and_returns_the_rest(db: Database, now: datetime) -> None:
    members = add_members(db, now=now, chat_ids=[801, 802])
    calls = add_calls(db, [call_record(n, now=now) for n in range(3)], now=now)
    outbox.enqueue(db, alert_items([(m, c) for m in members for c in calls]), now=now)
    with FakeBotAPI(default_delay=0.3) as slow:
        channel = TelegramChannel(config_for(slow))
        await channel._ensure_ready()
        stop = asyncio.Event()
        task = asyncio.create_task(dispatch(db, {"telegram": channel}, now=now, limit=10, stop=stop))
        await asyncio.to_thread(slow.wait_for, lambda s: len(s.calls("sendMessage")) >= 2)
        stop.set()
        report = await task
        await channel.aclose()
    assert report.stopped
    assert report.sent == 2 and report.returned == 4  # the two in flight finished
    rows = _rows(db).values()
    assert sorted(r.state for r in rows) == ["pending"] * 4 + ["sent"] * 2
    assert all(r.attempts == 0 for r in rows if r.state == "pending")


async def test_stop_grace_cancels_slow_sends_and_returns_them(db: Database, now: datetime) -> None:
    member = add_member(db, now=now, chat_id=901)
    [call] = add_calls(db, [call_record(1, now=now)], now=now)
    outbox.enqueue(db, alert_items([(member, call)]), now=now)
    with FakeBotAPI(default_delay=5) as slow:
        channel = TelegramChannel(config_for(slow))
        await channel._ensure_ready()
        stop = asyncio.Event()
        config = DeliveryConfig(stop_grace_seconds=0.1)
        task = asyncio.create_task(
            dispatch(db, {"telegram": channel}, now=now, limit=10, stop=stop, config=config)
        )
        await asyncio.to_thread(slow.wait_for, lambda s: len(s.calls("sendMessage")) >= 1)
        stop.set()
        report = await task
        await channel.aclose()
    assert report.returned == 1 and report.sent == 0
    [row] = _rows(db).values()
    assert row.state == "pending"
