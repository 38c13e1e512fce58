"""storage.leases and owned outbox claims: heartbeats, one holder per lease, one run per due time,
rows of a dead owner back in the queue (both engines; the PostgreSQL half runs on the server's
clock, ``clock_timestamp()``)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from storage import leases, outbox
from storage.db import Database
from tests.fakes.delivery_data import add_calls, add_members, alert_items, call_record

TTL = 1.0


def test_a_lease_has_one_holder_until_it_expires(db: Database) -> None:
    assert leases.acquire(db, "sender", "a", ttl=TTL)
    assert not leases.acquire(db, "sender", "b", ttl=TTL)
    first = leases.holder(db, "sender")
    assert first is not None and first.owner == "a"
    # Renewing keeps the time it was first taken and pushes the expiry.
    assert leases.acquire(db, "sender", "a", ttl=TTL)
    renewed = leases.holder(db, "sender")
    assert renewed is not None and renewed.acquired_at == first.acquired_at
    assert renewed.expires_at > first.expires_at
    time.sleep(TTL + 0.2)
    assert leases.holder(db, "sender") is None  # expired: nobody holds it
    assert leases.acquire(db, "sender", "b", ttl=TTL)
    assert not leases.acquire(db, "sender", "a", ttl=TTL)  # a lost it for good
    taken = leases.holder(db, "sender")
    assert taken is not None and taken.owner == "b" and taken.acquired_at > first.acquired_at


def test_release_frees_the_lease_only_for_its_holder(db: Database) -> None:
    assert leases.acquire(db, "sender", "a", ttl=60)
    assert not leases.release(db, "sender", "b")
    assert leases.release(db, "sender", "a")
    assert leases.acquire(db, "sender", "b", ttl=60)


def test_racing_for_an_expired_lease_makes_one_winner(db: Database) -> None:
    assert leases.acquire(db, "sender", "dead", ttl=0.2)
    time.sleep(0.4)
    winners: list[str] = []
    barrier = threading.Barrier(6)

    def contender(name: str) -> None:
        other = Database(db.url)
        try:
            barrier.wait()
            if leases.acquire(other, "sender", name, ttl=60):
                winners.append(name)
        finally:
            other.dispose()

    threads = [threading.Thread(target=contender, args=(f"p{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(winners) == 1
    held = leases.holder(db, "sender")
    assert held is not None and held.owner == winners[0]


def test_workers_live_by_their_heartbeat(db: Database) -> None:
    leases.heartbeat(db, "host-a:101:abc", kind="run", ttl=TTL)
    leases.heartbeat(db, "host-b:202:def", kind="dispatch", ttl=60)
    by_id = {w.id: w for w in leases.list_workers(db)}
    assert by_id["host-a:101:abc"].host == "host-a" and by_id["host-a:101:abc"].pid == 101
    assert all(w.alive for w in by_id.values())
    time.sleep(TTL + 0.2)
    assert [w.id for w in leases.live_workers(db)] == ["host-b:202:def"]
    leases.heartbeat(db, "host-a:101:abc", kind="run", ttl=TTL)  # a renewal revives it
    assert {w.id for w in leases.live_workers(db, kind="run")} == {"host-a:101:abc"}
    assert leases.acquire(db, "sender", "host-b:202:def", ttl=60)
    leases.unregister(db, "host-b:202:def")  # a clean exit frees its leases at once
    assert leases.holder(db, "sender") is None
    assert "host-b:202:def" not in {w.id for w in leases.list_workers(db)}


def test_one_run_per_job_and_due_time(db: Database) -> None:
    due = datetime(2026, 9, 2, 7, 0, tzinfo=UTC)
    now = due + timedelta(seconds=1)
    assert leases.claim_run(db, "crawl:sedia", due, "a", now=now)
    assert not leases.claim_run(db, "crawl:sedia", due, "b", now=now)
    assert leases.claim_run(db, "crawl:sedia", due + timedelta(hours=6), "b", now=now)
    assert leases.claim_run(db, "digest", due, "b", now=now)
    leases.finish_run(db, "crawl:sedia", due, "a", now=now, outcome="ok")
    runs = {(r.job, r.due_at): r for r in leases.list_runs(db)}
    assert runs[("crawl:sedia", due)].owner == "a" and runs[("crawl:sedia", due)].outcome == "ok"
    assert runs[("digest", due)].finished_at is None


def test_rows_of_a_dead_owner_go_back_and_live_owners_keep_theirs(db: Database, now: datetime) -> None:
    members = add_members(db, now=now, chat_ids=[1, 2, 3])
    calls = add_calls(db, [call_record(n, now=now) for n in range(2)], now=now)
    outbox.enqueue(db, alert_items([(m, c) for m in members for c in calls]), now=now)  # 6 rows
    leases.heartbeat(db, "h:1:dead", kind="run", ttl=TTL)
    leases.heartbeat(db, "h:2:live", kind="run", ttl=60)
    dead_rows = outbox.claim_due(db, now=now, limit=2, owner="h:1:dead")
    live_rows = outbox.claim_due(db, now=now, limit=3, owner="h:2:live")
    assert {r.claimed_by for r in dead_rows} == {"h:1:dead"}
    assert outbox.held_by_others(db, "h:2:live") == {"h:1:dead": 2}
    assert outbox.held_by_others(db, None) == {"h:1:dead": 2, "h:2:live": 3}
    # While its heartbeat lasts, the owner's claims stand, however old (no timeout involved).
    long_after = now + timedelta(days=1)
    assert outbox.release_orphans(db, now=long_after, older_than=timedelta(minutes=15)) == 0
    time.sleep(TTL + 0.2)
    assert outbox.release_orphans(db, now=now, older_than=timedelta(minutes=15)) == 2
    for row in dead_rows:
        back = outbox.get_row(db, row.id)
        assert back is not None and back.state == "pending" and back.claimed_by is None
        assert back.attempts == 1 and back.last_error == "claim expired"
    assert all((r2 := outbox.get_row(db, r.id)) and r2.state == "sending" for r in live_rows)
    # An owner that vanished altogether (its worker row removed) is dead too.
    leases.unregister(db, "h:2:live")
    assert outbox.release_orphans(db, now=now, older_than=timedelta(minutes=15)) == 3
    assert outbox.held_by_others(db, None) == {}
