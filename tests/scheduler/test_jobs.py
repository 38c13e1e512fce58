"""Schedules and the start-up catch-up rule, on a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from scheduler.jobs import (
    digest_missed,
    digest_trigger,
    last_digest_slot,
    missed_while_down,
    next_fire_after,
    trigger_for,
)
from storage.records import ROME


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=ROME)


def test_interval_and_cron_next_fire() -> None:
    assert next_fire_after("6h", at(2026, 9, 2, 9), ROME) == at(2026, 9, 2, 15)
    assert next_fire_after("0 */6 * * *", at(2026, 9, 2, 9), ROME) == at(2026, 9, 2, 12)
    assert next_fire_after("0 */6 * * *", at(2026, 9, 2, 12), ROME) == at(2026, 9, 2, 18)


def test_runs_missed_while_down_are_coalesced_into_one() -> None:
    # Down for two days with a 6 h schedule: one catch-up run at start, not eight.
    assert missed_while_down(at(2026, 9, 1, 9), "6h", at(2026, 9, 3, 9), ROME) is True
    assert missed_while_down(at(2026, 9, 3, 8), "6h", at(2026, 9, 3, 9), ROME) is False
    assert missed_while_down(None, "6h", at(2026, 9, 3, 9), ROME) is True
    assert missed_while_down(at(2026, 9, 3, 5), "0 */6 * * *", at(2026, 9, 3, 6, 1), ROME) is True
    assert missed_while_down(at(2026, 9, 3, 6, 1), "0 */6 * * *", at(2026, 9, 3, 11), ROME) is False


def test_digest_stays_at_eight_across_dst() -> None:
    trigger = digest_trigger(time(8, 0), ROME)
    # Summer time ends on 2026-10-25 at 03:00 CEST.
    first = trigger.get_next_fire_time(None, at(2026, 10, 24, 9, 0))
    assert first == at(2026, 10, 25, 8, 0)
    assert first.utcoffset() == timedelta(hours=1)
    before = trigger.get_next_fire_time(None, at(2026, 10, 24, 7, 0))
    assert before is not None and before.utcoffset() == timedelta(hours=2)
    # One wall-clock day, 25 real hours (same-zone subtraction is wall-clock: compare in UTC).
    assert first.astimezone(UTC) - before.astimezone(UTC) == timedelta(hours=25)
    # Summer time starts on 2027-03-28.
    spring = trigger.get_next_fire_time(None, at(2027, 3, 27, 9, 0))
    assert spring == at(2027, 3, 28, 8, 0) and spring.utcoffset() == timedelta(hours=2)


def test_digest_missed_only_after_a_slot_passed() -> None:
    eight = time(8, 0)
    assert last_digest_slot(at(2026, 9, 2, 7, 59), eight, ROME) == at(2026, 9, 1, 8, 0)
    assert last_digest_slot(at(2026, 9, 2, 8, 0), eight, ROME) == at(2026, 9, 2, 8, 0)
    assert digest_missed(at(2026, 9, 1, 8, 0), at(2026, 9, 2, 10, 0), eight, ROME) is True
    assert digest_missed(at(2026, 9, 2, 8, 0), at(2026, 9, 2, 10, 0), eight, ROME) is False
    assert digest_missed(None, at(2026, 9, 2, 10, 0), eight, ROME) is False


def test_trigger_kinds() -> None:
    assert type(trigger_for("90m", ROME)).__name__ == "IntervalTrigger"
    assert type(trigger_for("0 7 * * 1-5", ROME)).__name__ == "CronTrigger"
