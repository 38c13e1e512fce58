"""storage.outbox: idempotent enqueue, atomic claims, the state machine, stale claims (both engines)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from storage import outbox
from storage.db import Database
from storage.outbox import OutboxItem
from tests.fakes.delivery_data import add_calls, add_member, add_members, alert_items, call_record


def _setup(db: Database, now: datetime, *, members: int = 2, calls: int = 3) -> list[OutboxItem]:
    member_ids = add_members(db, now=now, chat_ids=[1000 + i for i in range(members)])
    views = add_calls(db, [call_record(n, now=now) for n in range(calls)], now=now)
    return alert_items([(m, c) for m in member_ids for c in views])


def test_enqueue_is_idempotent(db: Database, now: datetime) -> None:
    items = _setup(db, now)
    assert outbox.enqueue(db, items, now=now) == 6
    assert outbox.enqueue(db, items, now=now) == 0
    # The same alert twice in one batch, and a new reason for a known pair: one row each.
    extra = [items[0], items[0]]
    again = OutboxItem(items[0].member_id, items[0].group_id, items[0].call_id, "changed:7", "telegram")
    assert outbox.enqueue(db, [*extra, again], now=now) == 1
    assert outbox.backlog(db)["pending"] == 7
    assert outbox.enqueue(db, [], now=now) == 0


def test_claim_due_moves_rows_to_sending(db: Database, now: datetime) -> None:
    items = _setup(db, now)
    later = OutboxItem(
        items[0].member_id,
        items[0].group_id,
        items[0].call_id,
        "reminder-close-1d",
        "telegram",
        {},
        now + timedelta(hours=1),
    )
    outbox.enqueue(db, [*items, later], now=now)
    first = outbox.claim_due(db, now=now, limit=4)
    assert len(first) == 4
    assert all(r.state == "sending" and r.attempts == 1 and r.claimed_at == now for r in first)
    second = outbox.claim_due(db, now=now, limit=10)
    assert len(second) == 2  # the delayed row is not due
    assert {r.id for r in first}.isdisjoint(r.id for r in second)
    assert outbox.claim_due(db, now=now, limit=10) == []
    due_later = outbox.claim_due(db, now=now + timedelta(hours=1), limit=10)
    assert [r.reason for r in due_later] == ["reminder-close-1d"]
    assert outbox.backlog(db) == {"pending": 0, "sending": 7, "sent": 0, "failed": 0, "dead": 0}


def test_claim_filters_by_channel(db: Database, now: datetime) -> None:
    member = add_member(db, now=now, chat_id=1, email="a@example.com")
    views = add_calls(db, [call_record(1, now=now)], now=now)
    outbox.enqueue(db, alert_items([(member, views[0])], channel="telegram"), now=now)
    outbox.enqueue(db, alert_items([(member, views[0])], channel="email"), now=now)
    assert outbox.claim_due(db, now=now, limit=10, channel=[]) == []
    assert [r.channel for r in outbox.claim_due(db, now=now, limit=10, channel="email")] == ["email"]
    assert [r.channel for r in outbox.claim_due(db, now=now, limit=10, channel=["telegram", "x"])] == [
        "telegram"
    ]


def test_state_machine(db: Database, now: datetime) -> None:
    outbox.enqueue(db, _setup(db, now, members=1, calls=3), now=now)
    a, b, c = outbox.claim_due(db, now=now, limit=3)
    assert outbox.mark_sent(db, a.id, now=now, receipt="1:10")
    assert not outbox.mark_sent(db, a.id, now=now, receipt="1:11")  # already sent: no change
    retry_at = now + timedelta(minutes=5)
    assert outbox.mark_failed(db, b.id, now=now, error="boom" * 1000, retry_at=retry_at)
    assert outbox.mark_dead(db, c.id, now=now, error="permanent")
    sent = outbox.get_row(db, a.id)
    assert sent is not None and sent.state == "sent" and sent.receipt == "1:10" and sent.sent_at == now
    failed = outbox.get_row(db, b.id)
    assert failed is not None and failed.state == "failed" and failed.next_attempt_at == retry_at
    assert failed.last_error is not None and len(failed.last_error) <= outbox.MAX_ERROR
    assert outbox.claim_due(db, now=now, limit=10) == []  # failed, not due yet; dead never
    again = outbox.claim_due(db, now=retry_at, limit=10)
    assert [(r.id, r.attempts) for r in again] == [(b.id, 2)]
    assert not outbox.mark_failed(db, a.id, now=now, error="x", retry_at=now)  # a sent row stays sent
    assert outbox.backlog(db) == {"pending": 0, "sending": 1, "sent": 1, "failed": 0, "dead": 1}


def test_release_gives_claims_back_without_counting_an_attempt(db: Database, now: datetime) -> None:
    outbox.enqueue(db, _setup(db, now, members=1, calls=2), now=now)
    rows = outbox.claim_due(db, now=now, limit=2)
    later = now + timedelta(minutes=3)
    assert outbox.release(db, [r.id for r in rows], now=now, not_before=later) == 2
    assert outbox.release(db, [], now=now) == 0
    back = outbox.list_rows(db)
    assert all(r.state == "pending" and r.attempts == 0 and r.next_attempt_at == later for r in back)


def test_release_orphans_recovers_unowned_rows_after_the_timeout(db: Database, now: datetime) -> None:
    outbox.enqueue(db, _setup(db, now, members=1, calls=2), now=now)
    old = outbox.claim_due(db, now=now, limit=1)
    fresh = outbox.claim_due(db, now=now + timedelta(minutes=14), limit=1)
    later = now + timedelta(minutes=15, seconds=1)
    assert outbox.release_orphans(db, now=later, older_than=timedelta(minutes=15)) == 1
    row = outbox.get_row(db, old[0].id)
    assert row is not None and row.state == "pending" and row.attempts == 1  # the attempt counts
    assert row.last_error == "claim expired"
    still = outbox.get_row(db, fresh[0].id)
    assert still is not None and still.state == "sending"


def test_two_dispatchers_never_claim_the_same_row(db: Database, now: datetime) -> None:
    member_ids = add_members(db, now=now, chat_ids=list(range(1, 21)))
    views = add_calls(db, [call_record(n, now=now) for n in range(10)], now=now)
    assert outbox.enqueue(db, alert_items([(m, c) for m in member_ids for c in views]), now=now) == 200
    claimed: list[list[int]] = [[], [], [], []]
    barrier = threading.Barrier(4)

    def worker(slot: int) -> None:
        other = Database(db.url)  # its own engine and connections, like another process
        try:
            barrier.wait()
            while rows := outbox.claim_due(other, now=now, limit=7):
                claimed[slot].extend(r.id for r in rows)
        finally:
            other.dispose()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    everything = [i for ids in claimed for i in ids]
    assert len(everything) == 200
    assert len(set(everything)) == 200
    assert outbox.backlog(db)["sending"] == 200


def test_recipients_and_switching_telegram_off(db: Database, now: datetime) -> None:
    a = add_member(db, now=now, name="A", chat_id=11, language="en")
    b = add_member(db, now=now, name="B", email="b@example.com")
    found = outbox.recipients(db, [a, b, 999])
    assert set(found) == {a, b}
    assert found[a].telegram_chat_id == 11 and found[a].language == "en" and found[a].telegram_ok
    assert found[b].email == "b@example.com"
    assert outbox.switch_off_telegram(db, a, now=now)
    assert not outbox.switch_off_telegram(db, a, now=now)
    assert not outbox.recipients(db, [a])[a].telegram_ok
