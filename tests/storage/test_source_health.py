"""Source state, crawl runs and the health verdicts: degraded on 0 or < half, told once, recovered once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from storage.db import Database
from storage.ingest import ingest
from storage.records import CallRecord
from storage.sources import (
    RunVerdict,
    finish_run,
    get_source,
    judge,
    recent_runs,
    save_source,
    shrink_settled,
    source_health,
    start_run,
)


def _run(db: Database, now: datetime, *, seen: int, outcome: str = "ok", **kw: Any) -> RunVerdict:
    run_id = start_run(db, "lombardia", now=now)
    return finish_run(db, run_id, now=now + timedelta(minutes=2), outcome=outcome, seen=seen, **kw)  # type: ignore[arg-type]


def test_state_is_created_and_saved(db: Database) -> None:
    state = get_source(db, "sedia")
    assert (state.name, state.etag, state.consecutive_failures, state.state) == ("sedia", None, 0, {})
    save_source(db, "sedia", etag='"abc"', state={"checksums": {"T1": "x"}})
    save_source(db, "sedia", last_modified="Wed, 02 Sep 2026 07:00:00 GMT")  # keeps the rest
    state = get_source(db, "sedia")
    assert (state.etag, state.last_modified, state.state) == (
        '"abc"',
        "Wed, 02 Sep 2026 07:00:00 GMT",
        {"checksums": {"T1": "x"}},
    )
    save_source(db, "sedia", etag=None)
    assert get_source(db, "sedia").etag is None


def test_run_is_recorded(db: Database, now: datetime) -> None:
    run_id = start_run(db, "lombardia", now=now)
    assert recent_runs(db)[0].outcome == "running"
    verdict = finish_run(
        db,
        run_id,
        now=now + timedelta(minutes=3),
        outcome="ok",
        seen=40,
        new=2,
        changed=1,
        unchanged=37,
        errors=1,
        requests=45,
        bytes=123_456_789_012,
        report={"field_shares": {"closes": 0.97}},
    )
    assert verdict.outcome == "ok" and verdict.notify is None
    (run,) = recent_runs(db, "lombardia")
    assert (run.seen, run.new, run.changed, run.unchanged, run.errors, run.requests, run.bytes) == (
        40,
        2,
        1,
        37,
        1,
        45,
        123_456_789_012,
    )
    assert run.finished_at == now + timedelta(minutes=3)
    state = get_source(db, "lombardia")
    assert (state.last_yield, state.last_good_yield, state.last_success_at, state.last_run_at) == (
        40,
        40,
        now + timedelta(minutes=3),
        now,
    )


def test_zero_or_less_than_half_is_degraded(db: Database, now: datetime) -> None:
    assert _run(db, now, seen=40).outcome == "ok"
    zero = _run(db, now + timedelta(hours=1), seen=0)
    assert (zero.outcome, zero.reason) == ("degraded", "no calls found")
    half = _run(db, now + timedelta(hours=2), seen=19)
    assert half.outcome == "degraded" and "half" in half.reason
    assert _run(db, now + timedelta(hours=3), seen=20).outcome == "ok"  # exactly half is fine
    state = get_source(db, "lombardia")
    assert (state.last_good_yield, state.degraded, state.consecutive_failures) == (20, False, 0)


def test_low_field_share_is_degraded_when_asked() -> None:
    outcome, reason = judge(
        outcome="ok",
        seen=10,
        last_good_yield=10,
        report={"field_shares": {"closes": 0.3}},
        min_field_share=0.5,
    )
    assert outcome == "degraded" and "closes 30%" in reason
    assert judge(outcome="ok", seen=10, last_good_yield=10, report={}, min_field_share=0.5)[0] == "ok"


def test_failing_is_told_once_and_recovery_once(db: Database, now: datetime) -> None:
    assert _run(db, now, seen=40).notify is None
    notes = []
    for hour in range(1, 6):
        verdict = _run(
            db, now + timedelta(hours=hour), seen=0, outcome="failed", report={"reason": "HTTP 503"}
        )
        notes.append((verdict.outcome, verdict.notify))
    assert notes == [
        ("failed", None),
        ("failed", None),
        ("failed", "failing"),
        ("failed", None),
        ("failed", None),
    ]
    assert get_source(db, "lombardia").consecutive_failures == 5
    assert _run(db, now + timedelta(hours=7), seen=39).notify == "recovered"
    assert _run(db, now + timedelta(hours=8), seen=39).notify is None
    assert get_source(db, "lombardia").failure_reported is False


def test_degraded_runs_count_towards_the_threshold(db: Database, now: datetime) -> None:
    _run(db, now, seen=40)
    verdicts = [_run(db, now + timedelta(hours=h), seen=5, failure_threshold=2) for h in (1, 2, 3)]
    assert [v.notify for v in verdicts] == [None, "failing", None]


def test_recovery_before_the_threshold_is_silent(db: Database, now: datetime) -> None:
    _run(db, now, seen=40)
    _run(db, now + timedelta(hours=1), seen=0, outcome="failed")
    assert _run(db, now + timedelta(hours=2), seen=40).notify is None


def test_finish_run_refuses_unknown_run_and_outcome(db: Database, now: datetime) -> None:
    with pytest.raises(LookupError):
        finish_run(db, 424242, now=now, outcome="ok")
    run_id = start_run(db, "x", now=now)
    with pytest.raises(ValueError):
        finish_run(db, run_id, now=now, outcome="degraded")  # type: ignore[arg-type]


def test_source_health_lists_crawled_and_stored_sources(db: Database, now: datetime) -> None:
    _run(db, now, seen=40)
    ingest(
        db,
        [CallRecord(source="manual", source_id="1", url="https://x.example/1", title="Bando del cluster")],
        now=now,
    )
    health = {h.name: h for h in source_health(db)}
    assert set(health) == {"lombardia", "manual"}
    assert (health["lombardia"].last_outcome, health["lombardia"].calls) == ("ok", 0)
    assert (health["manual"].last_outcome, health["manual"].calls) == (None, 1)


def test_recent_runs_newest_first_and_limited(db: Database, now: datetime) -> None:
    for hour in range(4):
        _run(db, now + timedelta(hours=hour), seen=10)
    start_run(db, "sedia", now=now + timedelta(hours=9))
    runs = recent_runs(db, limit=3)
    assert [r.source for r in runs] == ["sedia", "lombardia", "lombardia"]
    assert [r.started_at for r in recent_runs(db, "lombardia")] == [
        now + timedelta(hours=h) for h in (3, 2, 1, 0)
    ]


def test_a_failed_run_marks_the_source_degraded(db: Database, now: datetime) -> None:
    _run(db, now, seen=40)
    assert get_source(db, "lombardia").degraded is False
    failed = _run(db, now + timedelta(hours=1), seen=0, outcome="failed", report={"reason": "HTTP 503"})
    assert failed.outcome == "failed"
    assert get_source(db, "lombardia").degraded is True
    assert {h.name: h.degraded for h in source_health(db)}["lombardia"] is True
    _run(db, now + timedelta(hours=2), seen=40)
    assert get_source(db, "lombardia").degraded is False


def _shrunk(db: Database, at: datetime, seen: int) -> RunVerdict:
    return _run(db, at, seen=seen, report={"shrunk": True})


def test_a_settled_shrink_becomes_the_new_baseline(db: Database, now: datetime) -> None:
    _run(db, now, seen=100)
    verdicts = [_shrunk(db, now + timedelta(hours=h), seen) for h, seen in ((1, 40), (2, 42), (3, 41))]
    assert [v.outcome for v in verdicts] == ["degraded"] * 3
    assert [v.notify for v in verdicts] == [None, None, "failing"]
    assert shrink_settled(db, "lombardia", seen=43, runs=3)  # 40..43: within 10 %
    assert not shrink_settled(db, "lombardia", seen=47, runs=3)  # 40..47: not
    assert not shrink_settled(db, "lombardia", seen=43, runs=4)  # only three shrunken runs
    assert not shrink_settled(db, "lombardia", seen=0, runs=3)

    run_id = start_run(db, "lombardia", now=now + timedelta(hours=4))
    assert shrink_settled(db, "lombardia", seen=43, runs=3, current_run=run_id)  # the running one ignored
    accepted = finish_run(
        db, run_id, now=now + timedelta(hours=4, minutes=2), outcome="ok", seen=43, new_baseline=True
    )
    assert (accepted.outcome, accepted.notify) == ("ok", "recovered")
    state = get_source(db, "lombardia")
    assert (state.last_good_yield, state.degraded, state.consecutive_failures) == (43, False, 0)


def test_a_run_in_between_breaks_the_shrink_sequence(db: Database, now: datetime) -> None:
    _run(db, now, seen=100)
    _shrunk(db, now + timedelta(hours=1), 40)
    _run(db, now + timedelta(hours=2), seen=0, outcome="failed")
    _shrunk(db, now + timedelta(hours=3), 40)
    assert not shrink_settled(db, "lombardia", seen=40, runs=3)
    assert shrink_settled(db, "lombardia", seen=40, runs=1)


def test_source_health_carries_the_last_finished_runs_errors(db: Database, now: datetime) -> None:
    _run(db, now, seen=40, errors=5)
    assert {h.name: h.last_errors for h in source_health(db)} == {"lombardia": 5}
    start_run(db, "lombardia", now=now + timedelta(hours=1))  # still running: not counted yet
    assert {h.name: h.last_errors for h in source_health(db)} == {"lombardia": 5}
    _run(db, now + timedelta(hours=2), seen=40)
    assert {h.name: h.last_errors for h in source_health(db)} == {"lombardia": 0}
