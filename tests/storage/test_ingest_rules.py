"""The ingest rules on SQLite and PostgreSQL: new, unchanged, changed, reopened, caps, errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from storage.calls import call_events, get_call, list_calls
from storage.db import Database
from storage.ingest import DIFF_FIELDS, ingest
from storage.models import Call, CallEvent
from storage.records import (
    MAX_ITEM,
    MAX_LIST_ITEMS,
    MAX_TITLE,
    ROME,
    CallRecord,
    CallStatus,
    Deadline,
    Precision,
)

MakeRecord = Callable[..., CallRecord]


def _rows(db: Database) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(Call.__table__).order_by(Call.id)).mappings()]


def _event_count(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(CallEvent.__table__)).scalar_one())


def test_new_call_is_stored_with_a_new_event(db: Database, now: datetime, make_tertium: MakeRecord) -> None:
    result = ingest(db, [make_tertium()], now=now)

    assert (result.seen, result.new, result.changed, result.unchanged, result.errors) == (1, 1, 0, 0, [])
    view = get_call(db, result.new_ids[0])
    assert view is not None
    assert view.title == "Bando Tertium"
    assert view.group_id is not None
    assert view.first_seen == view.last_seen == view.last_changed == now
    assert view.content_hash == make_tertium().content_hash()
    events = call_events(db, view.id)
    assert [(e.kind, e.changes, e.group_id) for e in events] == [("new", {}, view.group_id)]


def test_unchanged_reingest_moves_only_last_seen(
    db: Database, now: datetime, make_tertium: MakeRecord
) -> None:
    ingest(db, [make_tertium()], now=now)
    before = _rows(db)
    later = now + timedelta(hours=6)

    result = ingest(db, [make_tertium()], now=later)

    assert (result.new, result.changed, result.unchanged, result.new_ids, result.changed_ids) == (
        0,
        0,
        1,
        [],
        [],
    )
    after = _rows(db)
    assert [r["last_seen"] for r in after] == [later]
    for row in before + after:
        row.pop("last_seen")
    assert after == before
    assert _event_count(db) == 1


def test_changed_fields_are_diffed(db: Database, now: datetime, make_tertium: MakeRecord) -> None:
    first = ingest(db, [make_tertium()], now=now).new_ids[0]
    later = now + timedelta(days=1)
    changed = make_tertium(
        closes=datetime(2026, 9, 30, 12, 0, tzinfo=ROME),
        budget_total=Decimal("2000000.00"),
        title="Bando Tertium 2026",
        description="new long text",  # not a field members are told about
        beneficiaries=("PMI", "Liberi professionisti"),
    )

    result = ingest(db, [changed], now=later)

    assert (result.changed, result.changed_ids, result.new, result.unchanged) == (1, [first], 0, 0)
    events = call_events(db, first)
    assert [e.kind for e in events] == ["new", "changed"]
    assert events[1].changes == {
        "title": {"old": "Bando Tertium", "new": "Bando Tertium 2026"},
        "closes": {"old": "2026-09-07T12:00:00+02:00", "new": "2026-09-30T12:00:00+02:00"},
        "budget_total": {"old": "1500000.00", "new": "2000000.00"},
        "beneficiaries": {"old": ["PMI"], "new": ["PMI", "Liberi professionisti"]},
    }
    view = get_call(db, first)
    assert view is not None
    assert (view.title, view.description, view.budget_total) == (
        "Bando Tertium 2026",
        "new long text",
        Decimal("2e6"),
    )
    assert view.last_changed == later
    assert view.first_seen == now
    assert view.content_hash == changed.content_hash()


def test_change_outside_the_diff_fields_is_quiet(
    db: Database, now: datetime, make_tertium: MakeRecord
) -> None:
    call_id = ingest(db, [make_tertium()], now=now).new_ids[0]
    later = now + timedelta(days=1)

    result = ingest(db, [make_tertium(description="riformulato", keywords=("moda",))], now=later)

    assert (result.changed, result.unchanged) == (0, 1)
    view = get_call(db, call_id)
    assert view is not None
    assert (view.description, view.keywords, view.last_changed, view.last_seen) == (
        "riformulato",
        ("moda",),
        now,
        later,
    )
    assert [e.kind for e in call_events(db, call_id)] == ["new"]
    assert "description" not in DIFF_FIELDS


def test_closed_then_open_is_reopened(db: Database, now: datetime, make_tertium: MakeRecord) -> None:
    call_id = ingest(db, [make_tertium(status=CallStatus.CLOSED)], now=now).new_ids[0]

    result = ingest(db, [make_tertium(status=CallStatus.OPEN)], now=now + timedelta(hours=1))

    assert result.changed_ids == [call_id]
    last = call_events(db, call_id)[-1]
    assert last.kind == "reopened"
    assert last.changes == {"status": {"old": "closed", "new": "open"}}


def test_deadline_moved_from_past_to_future_is_reopened(
    db: Database, now: datetime, make_tertium: MakeRecord
) -> None:
    past = datetime(2026, 8, 31, tzinfo=ROME)
    call_id = ingest(db, [make_tertium(closes=past, closes_precision=Precision.DATE)], now=now).new_ids[0]
    future = datetime(2026, 10, 15, tzinfo=ROME)

    ingest(db, [make_tertium(closes=future, closes_precision=Precision.DATE)], now=now + timedelta(hours=1))

    last = call_events(db, call_id)[-1]
    assert last.kind == "reopened"
    assert last.changes["closes"] == {"old": "2026-08-31T00:00:00+02:00", "new": "2026-10-15T00:00:00+02:00"}


def test_deadline_moved_within_the_future_is_a_plain_change(
    db: Database, now: datetime, make_tertium: MakeRecord
) -> None:
    call_id = ingest(db, [make_tertium()], now=now).new_ids[0]
    ingest(db, [make_tertium(closes=datetime(2026, 9, 21, 12, 0, tzinfo=ROME))], now=now)
    assert [e.kind for e in call_events(db, call_id)] == ["new", "changed"]


def test_aware_datetimes_round_trip(db: Database, now: datetime, make_tertium: MakeRecord) -> None:
    utc_close = datetime(2026, 9, 7, 8, 0, tzinfo=UTC)  # read back as 10:00 in Europe/Rome
    record = make_tertium(
        closes=utc_close,
        deadlines=(
            Deadline(datetime(2026, 7, 1, 17, 0, tzinfo=ROME), Precision.DATETIME, "first stage"),
            Deadline(datetime(2026, 9, 7, 10, 0, tzinfo=ROME), Precision.DATETIME, "second stage"),
        ),
        published=datetime(2026, 1, 31, 23, 30, 15, 123456, tzinfo=ROME),  # winter time, microseconds
    )
    view = get_call(db, ingest(db, [record], now=now).new_ids[0])
    assert view is not None
    for name in ("published", "opens", "closes"):
        value = getattr(view, name)
        assert value.tzinfo is not None and value.utcoffset() is not None
        assert value == getattr(record, name)
        assert value.tzinfo == ROME
    assert view.deadlines == record.deadlines
    assert all(d.at.tzinfo is not None for d in view.deadlines)
    assert view.first_seen.tzinfo is not None


def test_money_is_exact(db: Database, now: datetime, make_tertium: MakeRecord) -> None:
    record = make_tertium(
        budget_total=Decimal("12345678901234.56"),
        contribution_min=Decimal("0.01"),
        contribution_max=Decimal("99999.99"),
    )
    call_id = ingest(db, [record], now=now).new_ids[0]
    view = get_call(db, call_id)
    assert view is not None
    assert (view.budget_total, view.contribution_min, view.contribution_max) == (
        Decimal("12345678901234.56"),
        Decimal("0.01"),
        Decimal("99999.99"),
    )
    assert isinstance(view.budget_total, Decimal)
    with db.engine.connect() as conn:
        cents = conn.execute(select(Call.budget_total_cents)).scalar_one()
    assert cents == 1234567890123456
    # Same value written another way: same hash is not required, but no money event either.
    again = ingest(db, [replace(record, budget_total=Decimal("12345678901234.560"))], now=now)
    assert again.unchanged == 1
    assert _event_count(db) == 1


def test_records_are_capped(db: Database, now: datetime, make_tertium: MakeRecord) -> None:
    record = make_tertium(
        title="  " + "T" * (MAX_TITLE + 500),
        beneficiaries=tuple(f"b{i}" for i in range(MAX_LIST_ITEMS + 50)),
        keywords=("k" * (MAX_ITEM + 10),),
    )
    call_id = ingest(db, [record], now=now).new_ids[0]
    view = get_call(db, call_id)
    assert view is not None
    assert view.title == "T" * MAX_TITLE
    assert len(view.beneficiaries) == MAX_LIST_ITEMS
    assert view.keywords == ("k" * MAX_ITEM,)
    assert view.content_hash == record.capped().content_hash()
    # The uncapped record again is the same call, unchanged.
    assert ingest(db, [record], now=now).unchanged == 1


def test_a_bad_record_is_reported_and_the_rest_kept(
    db: Database, now: datetime, make_tertium: MakeRecord, make_incentivi: MakeRecord
) -> None:
    too_long_id = make_incentivi(nid="9" * 300)
    unserialisable = make_incentivi(nid="2", raw={"when": now})  # a datetime is not JSON
    good = [make_tertium(), make_incentivi(nid="1")]

    result = ingest(db, [good[0], too_long_id, "not a record", unserialisable, good[1]], now=now)  # type: ignore[list-item]

    assert (result.new, result.seen) == (2, 2)
    assert len(result.errors) == 3
    # The reason first, then whose it is (an id cut short, so a long one cannot hide the reason).
    assert any(e.endswith("(incentivi/2)") for e in result.errors)
    assert any(
        e.startswith("TypeError: not a CallRecord") and e.endswith("(record 3)") for e in result.errors
    )
    assert any(e.startswith("ValueError: source (64) or source id (255) too long") for e in result.errors)
    assert sorted(v.source_id for v in list_calls(db)) == ["1", "RLP12026052483"]


def test_a_call_twice_in_one_batch_is_stored_in_order(
    db: Database, now: datetime, make_tertium: MakeRecord
) -> None:
    moved = make_tertium(closes=datetime(2026, 9, 30, 12, 0, tzinfo=ROME))
    result = ingest(db, [make_tertium(), moved], now=now)
    assert (result.seen, result.new, result.changed) == (2, 1, 1)
    assert len(list_calls(db)) == 1
    assert [e.kind for e in call_events(db, result.new_ids[0])] == ["new", "changed"]


def test_unseen_calls_are_never_deleted_or_closed(
    db: Database, now: datetime, make_tertium: MakeRecord, make_incentivi: MakeRecord
) -> None:
    ingest(db, [make_tertium(), make_incentivi()], now=now)
    ingest(db, [make_incentivi()], now=now + timedelta(days=3))
    views = {v.source: v for v in list_calls(db)}
    assert set(views) == {"lombardia", "incentivi"}
    assert views["lombardia"].status == CallStatus.OPEN
    assert views["lombardia"].last_seen == now
    assert _event_count(db) == 2


def test_small_batches_give_the_same_result(db: Database, now: datetime, make_incentivi: MakeRecord) -> None:
    records = [make_incentivi(nid=str(i), title=f"Misura numero {i}") for i in range(23)]
    first = ingest(db, records, now=now, batch_size=5)
    assert (first.new, len(first.new_ids), len(set(first.new_ids))) == (23, 23, 23)
    changed = [replace(r, title=r.title + " bis") if i % 4 == 0 else r for i, r in enumerate(records)]
    second = ingest(db, changed, now=now, batch_size=5)
    assert (second.changed, second.unchanged) == (6, 17)


def test_naive_now_is_refused(sqlite_db: Database, make_tertium: MakeRecord) -> None:
    with pytest.raises(ValueError, match="aware"):
        ingest(sqlite_db, [make_tertium()], now=datetime(2026, 9, 2, 9, 0))


def test_a_database_failure_is_raised_not_blamed_on_records(
    sqlite_db: Database, now: datetime, make_tertium: MakeRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    import storage.ingest as ingest_module

    def locked(*_args: object) -> None:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(ingest_module, "_store", locked)
    with pytest.raises(OperationalError):
        ingest(sqlite_db, [make_tertium()], now=now)


def test_the_cheap_cap_check_agrees_with_capped(make_tertium: MakeRecord) -> None:
    from storage._rows import capped

    records = [
        make_tertium(),
        make_tertium(title=" Bando Tertium"),
        make_tertium(summary="s" * 6_000),
        make_tertium(description="d" * 100_001),
        make_tertium(regions=("r" * (MAX_ITEM + 1),)),
        make_tertium(links=tuple(f"https://x.example/{i}" for i in range(MAX_LIST_ITEMS + 1))),
        make_tertium(deadlines=make_tertium().deadlines * (MAX_LIST_ITEMS + 1)),
    ]
    for record in records:
        assert capped(record) == record.capped()
        assert capped(record).content_hash() == record.capped().content_hash()
    assert capped(records[0]) is records[0]
