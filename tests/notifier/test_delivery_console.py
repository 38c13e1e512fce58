"""With no Telegram token and no SMTP host, alerts are printed (console channel) and marked sent."""

from __future__ import annotations

import io
from datetime import datetime

from pydantic import SecretStr
from rich.console import Console

from notifier.config import EmailConfig, TelegramConfig
from notifier.delivery.channels import ConsoleChannel, EmailChannel, TelegramChannel, build_channels
from notifier.delivery.dispatch import dispatch
from storage import outbox
from storage.db import Database
from tests.fakes.delivery_data import add_calls, add_member, alert_items, call_record


def test_build_channels_from_config() -> None:
    bare = build_channels(TelegramConfig(), EmailConfig())
    assert all(isinstance(c, ConsoleChannel) for c in bare.values())
    assert set(bare) == {"telegram", "email", "console"}
    only_mail = build_channels(TelegramConfig(token=SecretStr("  ")), EmailConfig(host="smtp.example.com"))
    assert isinstance(only_mail["email"], EmailChannel) and "telegram" not in only_mail
    both = build_channels(TelegramConfig(token=SecretStr("1:x")), EmailConfig(host="smtp.example.com"))
    assert isinstance(both["telegram"], TelegramChannel)


async def test_console_dispatch_prints_scraped_text_verbatim(sqlite_db: Database, now: datetime) -> None:
    db = sqlite_db
    member = add_member(db, now=now, name="Laura", chat_id=5, email="laura@example.com")
    [call] = add_calls(db, [call_record(1, now=now, title="Bando [bold red]finto[/] <b>x</b>")], now=now)
    outbox.enqueue(db, alert_items([(member, call)], channel="telegram"), now=now)
    outbox.enqueue(db, alert_items([(member, call)], channel="email"), now=now)
    buffer = io.StringIO()
    channels = build_channels(TelegramConfig(), EmailConfig(), console=Console(file=buffer, width=200))
    report = await dispatch(db, channels, now=now, limit=10)
    assert report.sent == 2
    printed = buffer.getvalue()
    assert printed.count("Bando [bold red]finto[/] <b>x</b>") == 2
    assert "telegram → Laura" in printed and "email → Laura" in printed
    assert {r.receipt for r in outbox.list_rows(db)} == {f"console:{r.id}" for r in outbox.list_rows(db)}


async def test_not_for_us_silences_alerts_already_queued(sqlite_db: Database, now: datetime) -> None:
    from storage.feedback import set_feedback

    db = sqlite_db
    member = add_member(db, now=now, name="Laura", chat_id=5, email="laura@example.com")
    [call] = add_calls(db, [call_record(1, now=now, title="Bando packaging")], now=now)
    outbox.enqueue(db, alert_items([(member, call)], channel="email"), now=now)
    [row] = outbox.list_rows(db)
    set_feedback(db, member, row.group_id, "not_for_us", now=now)
    buffer = io.StringIO()
    channels = build_channels(TelegramConfig(), EmailConfig(), console=Console(file=buffer, width=200))
    report = await dispatch(db, channels, now=now, limit=10)
    assert report.sent == 0 and report.dead == 1
    assert "Bando packaging" not in buffer.getvalue()
    [row] = outbox.list_rows(db)
    assert row.state == "dead" and "not for us" in (row.last_error or "")
