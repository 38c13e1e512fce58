"""Two processes ingesting the same calls at once leave one row and one ``new`` event per call."""

from __future__ import annotations

import multiprocessing
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from storage.db import Database
from storage.ingest import ingest
from storage.models import Call, CallEvent, DuplicateGroup
from storage.records import ROME, CallRecord, CallStatus

CALLS = 120


def _records() -> list[CallRecord]:
    return [
        CallRecord(
            source="incentivi",
            source_id=str(1000 + i),
            url=f"https://www.incentivi.gov.it/it/catalogo/misura-{i}",
            title=f"Contributi per la misura numero {i}",
            status=CallStatus.OPEN,
            closes=datetime(2026, 12, 31, tzinfo=ROME),
        )
        for i in range(CALLS)
    ]


def _worker(url: str, barrier: Any, results: Any) -> None:
    db = Database(url)
    records = _records()
    now = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)
    barrier.wait(timeout=60)
    result = ingest(db, records, now=now, batch_size=10)
    db.dispose()
    results.put((result.new, result.unchanged, result.errors))


def test_concurrent_ingest_of_the_same_calls(db: Database) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(db.url, barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0

    assert [errors for _, _, errors in outcomes] == [[], []]
    assert sum(new for new, _, _ in outcomes) == CALLS
    assert sum(unchanged for _, unchanged, _ in outcomes) == CALLS
    with db.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(Call.__table__)).scalar_one()
        new_events = conn.execute(
            select(CallEvent.call_id, func.count()).where(CallEvent.kind == "new").group_by(CallEvent.call_id)
        ).all()
        groups = conn.execute(select(func.count()).select_from(DuplicateGroup.__table__)).scalar_one()
        ungrouped = conn.execute(select(func.count()).where(Call.group_id.is_(None))).scalar_one()
        other_events = conn.execute(select(func.count()).where(CallEvent.kind != "new")).scalar_one()
    assert rows == CALLS
    assert len(new_events) == CALLS and all(n == 1 for _, n in new_events)
    assert (groups, ungrouped, other_events) == (CALLS, 0, 0)
