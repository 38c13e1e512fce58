"""``touch_seen``: the calls a crawl saw listed but skipped as unchanged get their ``last_seen`` moved."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from storage.calls import list_calls
from storage.db import Database
from storage.ingest import ingest, touch_seen
from storage.records import CallRecord


def _record(source: str, source_id: str) -> CallRecord:
    return CallRecord(
        source=source,
        source_id=source_id,
        url=f"https://{source}.example/{source_id}",
        title=f"Bando {source_id}",
    )


def _last_seen(db: Database, source: str) -> dict[str, datetime]:
    return {c.source_id: c.last_seen for c in list_calls(db, source=source)}


def test_touch_seen_moves_only_the_named_calls_of_the_source(db: Database, now: datetime) -> None:
    ingest(db, [_record("sedia", i) for i in ("A", "B", "C")] + [_record("feeds", "A")], now=now)
    later = now + timedelta(hours=6)

    moved = touch_seen(db, "sedia", ["A", "B", "B", "not-stored"], now=later)

    assert moved == 2
    assert _last_seen(db, "sedia") == {"A": later, "B": later, "C": now}
    assert _last_seen(db, "feeds") == {"A": now}  # same id, other source: untouched
    first_seen = {c.source_id: c.first_seen for c in list_calls(db, source="sedia")}
    assert set(first_seen.values()) == {now}


def test_touch_seen_chunks_and_never_moves_backwards(db: Database, now: datetime) -> None:
    ids = [f"T{n:04d}" for n in range(1_203)]
    ingest(db, [_record("sedia", i) for i in ids], now=now)
    later = now + timedelta(days=1)

    assert touch_seen(db, "sedia", ids, now=later, chunk_size=500) == len(ids)
    assert set(_last_seen(db, "sedia").values()) == {later}
    assert touch_seen(db, "sedia", ids, now=now) == 0  # an older clock reading moves nothing
    assert set(_last_seen(db, "sedia").values()) == {later}
    assert touch_seen(db, "sedia", [], now=later) == 0


def test_touch_seen_refuses_a_naive_now(db: Database) -> None:
    with pytest.raises(ValueError):
        touch_seen(db, "sedia", ["A"], now=datetime(2026, 9, 2, 9, 0))
