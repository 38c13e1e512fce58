"""notifier.planning.reminders: opening and closing reminders for calls marked interesting, on real storage.

2026-10-25 is the end of summer time in Europe/Rome (03:00 CEST → 02:00 CET): the tests around
it check that "7 days before" is on the wall clock and "24 h before" is elapsed time.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from notifier.config import RemindersConfig
from notifier.planning.reminders import fire_time, plan_reminders
from storage.db import Database
from storage.records import ROME, CallStatus, Deadline, Precision
from tests.fakes.planning_data import add_member, outbox_rows, packaging_call, set_feedback, store

CONFIG = RemindersConfig()
TELEGRAM = {"keywords": ["packaging"], "channels": ["telegram"]}
#: The closing of the test call: after the DST change, so a week earlier is summer time.
CLOSES = datetime(2026, 10, 30, 12, 0, tzinfo=ROME)


def interested_member(db: Database, now: datetime, group_id: int | None, **kwargs: object) -> int:
    assert group_id is not None
    profile = kwargs.pop("profile", TELEGRAM)
    member = add_member(db, now=now, chat_id=101, profile=profile, **kwargs)  # type: ignore[arg-type]
    set_feedback(db, member, group_id, "interested", now=now)
    return member


def reasons(db: Database) -> list[str]:
    return [r.reason for r in outbox_rows(db)]


def test_closing_reminders_at_7_days_and_1_day_across_dst(db: Database, now: datetime) -> None:
    (call,) = store(db, [packaging_call(now=now, closes=CLOSES)], now=now)
    interested_member(db, now, call.group_id)

    week_before = datetime(2026, 10, 23, 12, 0, tzinfo=ROME)  # CEST, 169 hours before a CET closing
    # Same-zone subtraction in Python is wall-clock; in UTC it is the real 169 hours.
    assert CLOSES.astimezone(UTC) - week_before.astimezone(UTC) == timedelta(hours=169)
    assert plan_reminders(db, now=now, config=CONFIG) == 0
    assert plan_reminders(db, now=week_before - timedelta(minutes=1), config=CONFIG) == 0
    assert plan_reminders(db, now=week_before, config=CONFIG) == 1
    assert reasons(db) == ["reminder-close-7d:2026-10-30"]
    # Once only, however often the planner runs.
    assert plan_reminders(db, now=week_before + timedelta(hours=1), config=CONFIG) == 0
    day_before = datetime(2026, 10, 29, 12, 0, tzinfo=ROME)
    assert plan_reminders(db, now=day_before - timedelta(minutes=1), config=CONFIG) == 0
    assert plan_reminders(db, now=day_before, config=CONFIG) == 1
    assert reasons(db) == ["reminder-close-7d:2026-10-30", "reminder-close-1d:2026-10-30"]
    # After the deadline: nothing, ever.
    assert plan_reminders(db, now=CLOSES + timedelta(minutes=1), config=CONFIG) == 0
    row = outbox_rows(db)[-1]
    assert row.call_id == call.id and row.channel == "telegram"
    assert datetime.fromisoformat(row.payload["deadline"]) == CLOSES


def test_opening_reminder_24_hours_is_elapsed_time_across_dst(db: Database, now: datetime) -> None:
    opens = datetime(2026, 10, 25, 10, 0, tzinfo=ROME)  # CET, the first morning of winter time
    record = packaging_call(
        now=now,
        sportello=True,
        status=CallStatus.FORTHCOMING,
        opens=opens,
        closes=None,
        closes_precision=None,
    )
    (call,) = store(db, [record], now=now)
    interested_member(db, now, call.group_id)
    due = datetime(2026, 10, 24, 11, 0, tzinfo=ROME)  # 24 real hours before: 11:00 summer time
    assert fire_time(opens, Precision.DATETIME, "24h", CONFIG) == due
    assert plan_reminders(db, now=due - timedelta(minutes=30), config=CONFIG) == 0
    assert plan_reminders(db, now=due, config=CONFIG) == 1
    assert reasons(db) == ["reminder-open-24h:2026-10-25"]
    assert outbox_rows(db)[0].payload["opens"].startswith("2026-10-25T10:00")
    assert plan_reminders(db, now=opens + timedelta(minutes=1), config=CONFIG) == 0


def test_opening_reminders_only_for_sportello_calls(db: Database, now: datetime) -> None:
    opens = now + timedelta(hours=12)
    record = packaging_call(now=now, status=CallStatus.FORTHCOMING, opens=opens)
    (call,) = store(db, [record], now=now)
    interested_member(db, now, call.group_id)
    assert plan_reminders(db, now=now, config=CONFIG) == 0


def test_only_the_closest_due_offset_is_sent(db: Database, now: datetime) -> None:
    # Interest marked three days before the closing: "7 days" is due, "1 day" not yet.
    closes = now + timedelta(days=3)
    (call,) = store(db, [packaging_call(now=now, closes=closes)], now=now)
    interested_member(db, now, call.group_id)
    assert plan_reminders(db, now=now, config=CONFIG) == 1
    # Marked twelve hours before: only "1 day", never both at once.
    (late,) = store(
        db,
        [
            packaging_call(
                "RLP12026060077",
                now=now,
                title="Packaging: secondo bando",
                url="https://www.bandi.regione.lombardia.it/servizi/servizio/bandi/dettaglio/secondo",
                closes=now + timedelta(hours=12),
            )
        ],
        now=now,
    )
    assert late.group_id is not None
    set_feedback(db, outbox_rows(db)[0].member_id, late.group_id, "interested", now=now)
    assert plan_reminders(db, now=now, config=CONFIG) == 1
    assert sorted(reasons(db)) == [
        f"reminder-close-1d:{(now + timedelta(hours=12)).date()}",
        f"reminder-close-7d:{closes.date()}",
    ]


def test_date_only_deadline_counts_back_from_the_configured_hour(db: Database, now: datetime) -> None:
    closes = datetime(2026, 10, 30, tzinfo=ROME)
    (call,) = store(db, [packaging_call(now=now, closes=closes, closes_precision=Precision.DATE)], now=now)
    interested_member(db, now, call.group_id)
    eve = datetime(2026, 10, 29, 9, 0, tzinfo=ROME)
    assert plan_reminders(db, now=eve - timedelta(minutes=1), config=CONFIG) == 1  # the 7-day one
    assert plan_reminders(db, now=eve, config=CONFIG) == 1
    assert reasons(db)[-1] == "reminder-close-1d:2026-10-30"
    # Still open all of the 30th: a reminder can still be planned that day, not the next.
    custom = RemindersConfig(before_closing=["12h"])
    assert plan_reminders(db, now=datetime(2026, 10, 30, 20, 0, tzinfo=ROME), config=custom) == 1
    assert plan_reminders(db, now=datetime(2026, 10, 31, 0, 1, tzinfo=ROME), config=custom) == 0


def test_a_moved_deadline_gets_its_reminders_again(db: Database, now: datetime) -> None:
    record = packaging_call(now=now, closes=CLOSES)
    (call,) = store(db, [record], now=now)
    interested_member(db, now, call.group_id)
    week_before = datetime(2026, 10, 23, 12, 0, tzinfo=ROME)
    assert plan_reminders(db, now=week_before, config=CONFIG) == 1
    extended = datetime(2026, 11, 30, 12, 0, tzinfo=ROME)
    store(db, [replace(record, closes=extended)], now=week_before + timedelta(hours=1))
    assert plan_reminders(db, now=datetime(2026, 11, 23, 12, 0, tzinfo=ROME), config=CONFIG) == 1
    assert reasons(db) == ["reminder-close-7d:2026-10-30", "reminder-close-7d:2026-11-30"]


def test_stage_deadlines_are_reminded_with_their_label(db: Database, now: datetime) -> None:
    stage = datetime(2026, 9, 20, 17, 0, tzinfo=ROME)
    record = packaging_call(
        now=now,
        deadlines=(
            Deadline(stage, Precision.DATETIME, "Prima fase"),
            Deadline(CLOSES, Precision.DATETIME, "Seconda fase"),
        ),
    )
    (call,) = store(db, [record], now=now)
    interested_member(db, now, call.group_id)
    assert plan_reminders(db, now=stage - timedelta(days=7), config=CONFIG) == 1
    row = outbox_rows(db)[0]
    assert row.reason == "reminder-close-7d:2026-09-20"
    assert row.payload["deadline_label"] == "Prima fase"
    assert datetime.fromisoformat(row.payload["deadline"]) == stage


@pytest.mark.parametrize(
    "case",
    ["closed", "not_interested", "not_for_us", "paused", "no_reminders", "disabled"],
)
def test_no_reminder(db: Database, now: datetime, case: str) -> None:
    record = packaging_call(now=now, closes=now + timedelta(days=2))
    if case == "closed":
        record = replace(record, status=CallStatus.CLOSED)
    (call,) = store(db, [record], now=now)
    assert call.group_id is not None
    profile = {**TELEGRAM, "alerts": ["new", "changes"]} if case == "no_reminders" else TELEGRAM
    member = add_member(db, now=now, chat_id=101, paused=case == "paused", profile=profile)
    if case != "not_interested":
        set_feedback(db, member, call.group_id, "interested", now=now)
    if case == "not_for_us":
        set_feedback(db, member, call.group_id, "not_for_us", now=now)
    config = RemindersConfig(enabled=False) if case == "disabled" else CONFIG
    assert plan_reminders(db, now=now, config=config) == 0
    assert outbox_rows(db) == []


def test_one_row_per_channel_and_configurable_offsets(db: Database, now: datetime) -> None:
    (call,) = store(db, [packaging_call(now=now, closes=now + timedelta(days=3, hours=1))], now=now)
    interested_member(
        db, now, call.group_id, email="laura@example.com", profile={"channels": ["telegram", "email"]}
    )
    config = RemindersConfig(before_closing=["3d"])
    assert plan_reminders(db, now=now, config=config) == 0
    assert plan_reminders(db, now=now + timedelta(hours=1), config=config) == 2
    assert {(r.reason, r.channel) for r in outbox_rows(db)} == {
        ("reminder-close-3d:2026-09-05", "telegram"),
        ("reminder-close-3d:2026-09-05", "email"),
    }


def test_offsets_are_validated() -> None:
    with pytest.raises(ValueError):
        RemindersConfig(before_closing=["7 days"])
    with pytest.raises(ValueError):
        RemindersConfig(before_closing=["1d", "1d"])
