"""A dispatcher killed (SIGKILL) mid-batch loses no alert and re-sends at most the rows in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from notifier.config import DeliveryConfig, TelegramConfig
from notifier.delivery.channels import TelegramChannel
from notifier.delivery.dispatch import dispatch
from storage import outbox
from storage.db import Database
from tests.fakes.delivery_data import add_calls, add_members, alert_items, call_record
from tests.fakes.telegram_server import FakeBotAPI

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHILD = Path(__file__).with_name("delivery_crash_child.py")
ROOT = Path(__file__).resolve().parents[2]
CONCURRENCY = 4  # the child's DeliveryConfig.concurrency


async def test_kill_mid_batch_loses_nothing(db: Database, now: datetime) -> None:
    chats = [1001 + i for i in range(8)]
    members = add_members(db, now=now, chat_ids=chats)
    calls = add_calls(db, [call_record(n, now=now, title=f"Bando crash #{n:02d}") for n in range(3)], now=now)
    outbox.enqueue(db, alert_items([(m, c) for m in members for c in calls]), now=now)  # 24 rows
    rows = {r.id: r for r in outbox.list_rows(db)}
    chat_of = dict(zip(members, chats, strict=True))
    title_of = {c.id: c.title for c in calls}
    key_of = {(chat_of[r.member_id], title_of[r.call_id]): r.id for r in rows.values()}

    def row_of(text: str, chat: int | None) -> int:
        [rid] = [rid for (c, title), rid in key_of.items() if c == chat and title in text]
        return rid

    with FakeBotAPI(default_delay=0.4) as server:
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        child = subprocess.Popen(
            [sys.executable, str(CHILD), db.url, server.base_url, server.token, now.isoformat()],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            # Kill once some sends were answered and others are still in flight.
            ok = server.wait_for(
                lambda s: len(s.sent_messages()) >= 5 and len(s.in_flight()) >= 2, timeout=60
            )
            assert ok, (
                child.stderr.read().decode() if child.poll() is not None and child.stderr else "timeout"
            )
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)
            if child.stdout:
                child.stdout.close()
            if child.stderr:
                child.stderr.close()
        assert child.returncode == -signal.SIGKILL
        received_before_kill = {row_of(r.text, r.chat_id) for r in server.calls("sendMessage")}
        states = Counter(r.state for r in outbox.list_rows(db))
        marked_sent = {r.id for r in outbox.list_rows(db, state="sent")}
        assert states["sending"] > 0 and states["sent"] > 0  # killed mid-batch, really
        n_before = len(server.calls("sendMessage"))

        # The daemon restarts later; rows claimed by the dead dispatcher are stale by then.
        later = now + timedelta(seconds=DeliveryConfig().stale_claim_seconds + 1)
        channel = TelegramChannel(
            TelegramConfig(token=SecretStr(server.token), base_url=server.base_url, per_chat_interval=0)
        )
        server.default_delay = 0
        try:
            report = await dispatch(db, {"telegram": channel}, now=later, limit=1000)
        finally:
            await channel.aclose()
        assert report.released_stale == states["sending"]
        deliveries = Counter(row_of(r.text, r.chat_id) for r in server.calls("sendMessage"))
        resent = {rid for rid, n in deliveries.items() if n > 1}
        after_restart = [row_of(r.text, r.chat_id) for r in server.calls("sendMessage")[n_before:]]

    # Nothing lost: every row sent, every alert reached its chat.
    assert outbox.backlog(db) == {"pending": 0, "sending": 0, "sent": 24, "failed": 0, "dead": 0}
    assert set(deliveries) == set(rows)
    # Rows confirmed before the crash were not sent again.
    assert marked_sent.isdisjoint(after_restart)
    # At most the in-flight rows were re-sent: those whose request had reached Telegram but whose
    # confirmation was not recorded — never more than the dispatcher's concurrency.
    assert resent <= received_before_kill - marked_sent
    assert len(resent) <= CONCURRENCY
    assert max(deliveries.values()) <= 2
    # Per-chat order survives the crash for the alerts sent after it.
    for chat in chats:
        ids = [rid for rid in after_restart if chat_of[rows[rid].member_id] == chat]
        assert ids == sorted(ids)
