"""Per-source crawl state, crawl runs and the health verdict of each run (urlwatch style).

A source keeps its HTTP validators (ETag / Last-Modified), a free ``state`` dict for
source-specific memory, and its health: consecutive bad runs, last success, last yield.

Verdict of a finished run (:func:`finish_run`):

* ``failed`` when the crawler says so (an exception, the portal unreachable);
* ``degraded`` when it ran but yielded 0 calls, fewer than half of the last good run's yield,
  or (when ``min_field_share`` is given) a field filled in fewer than that share of the calls,
  according to ``report["field_shares"]`` (``{field: share 0..1}``, the crawler's validation);
* ``ok`` otherwise.

Failed and degraded runs are *bad* and leave the source marked ``degraded``. Admins are told
once: ``notify="failing"`` on the run that brings the consecutive bad runs to
``failure_threshold``, and ``notify="recovered"`` on the first good run after that, never in
between (``Source.failure_reported`` remembers it).

The yield (``seen``) is the number of calls the source listed in the run, those carried over
unchanged by an incremental crawl included; ``last_good_yield`` is the baseline the "half" rule
compares with, and it only moves on good runs.

A source that really shrank: a crawler does not ingest a run yielding less than half of the
baseline (the worker's rule, so a broken listing never rewrites good data), which keeps the
baseline where it was. To let such a source recover, :func:`shrink_settled` tells when the last
``failure_threshold`` finished runs were all shrunken (``report["shrunk"]``) and their yields and
the current one agree within 10 %: the current run is then ingested and closed with
``new_baseline=True``, which judges it without the "half" rule, so it is good and its yield
becomes the baseline. Admins hear of it as a failing source (after the threshold) that
recovered. Known limit: a source shrinking slowly, run after run, by less than half each time
is never noticed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Connection, Table, func, insert, select, update

from storage._bulk import conflict_insert
from storage._rows import local
from storage.db import Database
from storage.models import Call, CrawlRun, Source
from storage.records import ROME

_sources = cast(Table, Source.__table__)
_runs = cast(Table, CrawlRun.__table__)
_calls = cast(Table, Call.__table__)

Outcome = Literal["ok", "degraded", "failed"]
Notify = Literal["failing", "recovered"]


class _Keep:
    """Marker: leave this attribute as it is."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


@dataclass
class SourceState:
    name: str
    etag: str | None = None
    last_modified: str | None = None
    consecutive_failures: int = 0
    last_run_at: datetime | None = None
    last_success_at: datetime | None = None
    last_outcome: str | None = None
    last_yield: int | None = None
    last_good_yield: int | None = None
    degraded: bool = False
    failure_reported: bool = False
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunVerdict:
    outcome: Outcome
    reason: str
    notify: Notify | None


@dataclass(frozen=True)
class SourceHealth:
    name: str
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_outcome: str | None
    last_yield: int | None
    last_good_yield: int | None
    consecutive_failures: int
    degraded: bool
    failure_reported: bool
    calls: int
    #: Errors counted by the latest finished run (pages or items it could not read).
    last_errors: int = 0


@dataclass(frozen=True)
class RunView:
    id: int
    source: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    seen: int
    new: int
    changed: int
    unchanged: int
    errors: int
    requests: int
    bytes: int
    report: dict[str, Any]


def _ensure(conn: Connection, name: str) -> None:
    conn.execute(
        conflict_insert(conn.dialect.name, _sources)
        .values(name=name, consecutive_failures=0, degraded=False, failure_reported=False, state={})
        .on_conflict_do_nothing(index_elements=["name"])
    )


def _state(row: Any) -> SourceState:
    return SourceState(
        name=row.name,
        etag=row.etag,
        last_modified=row.last_modified,
        consecutive_failures=row.consecutive_failures,
        last_run_at=local(row.last_run_at),
        last_success_at=local(row.last_success_at),
        last_outcome=row.last_outcome,
        last_yield=row.last_yield,
        last_good_yield=row.last_good_yield,
        degraded=bool(row.degraded),
        failure_reported=bool(row.failure_reported),
        state=dict(row.state or {}),
    )


def get_source(db: Database, name: str) -> SourceState:
    """The state of a source, created empty on first use."""
    with db.engine.begin() as conn:
        _ensure(conn, name)
        row = conn.execute(select(_sources).where(_sources.c.name == name)).one()
    return _state(row)


def save_source(
    db: Database,
    name: str,
    *,
    etag: str | None = KEEP,
    last_modified: str | None = KEEP,
    state: dict[str, Any] = KEEP,
) -> None:
    """Store the validators and/or the source's own state; arguments not given are kept."""
    values: dict[str, Any] = {}
    if etag is not KEEP:
        values["etag"] = etag
    if last_modified is not KEEP:
        values["last_modified"] = last_modified
    if state is not KEEP:
        values["state"] = dict(state)
    with db.engine.begin() as conn:
        _ensure(conn, name)
        if values:
            conn.execute(update(_sources).where(_sources.c.name == name).values(**values))


def start_run(db: Database, source: str, *, now: datetime) -> int:
    """Record the start of a crawl run; returns its id for :func:`finish_run`."""
    with db.engine.begin() as conn:
        _ensure(conn, source)
        conn.execute(update(_sources).where(_sources.c.name == source).values(last_run_at=now))
        run_id = conn.execute(
            insert(_runs)
            .values(
                source=source,
                started_at=now,
                outcome="running",
                seen=0,
                new=0,
                changed=0,
                unchanged=0,
                errors=0,
                requests=0,
                bytes=0,
                report={},
            )
            .returning(_runs.c.id)
        ).scalar_one()
    return int(run_id)


def judge(
    *,
    outcome: Literal["ok", "failed"],
    seen: int,
    last_good_yield: int | None,
    report: dict[str, Any],
    min_field_share: float | None,
    new_baseline: bool = False,
) -> tuple[Outcome, str]:
    """The verdict rules alone (see the module docstring); ``new_baseline`` skips the "half" rule."""
    if outcome == "failed":
        return "failed", str(report.get("reason") or report.get("error") or "the crawl failed")
    if report.get("not_understood"):
        # The source answered in a shape its parser does not know: nothing was read into calls.
        return "degraded", f"answer not understood: {report['not_understood']}"
    if seen == 0:
        return "degraded", "no calls found"
    if not new_baseline and last_good_yield and seen * 2 < last_good_yield:
        return "degraded", f"{seen} calls, fewer than half of the last good run ({last_good_yield})"
    if min_field_share is not None:
        shares = report.get("field_shares") or {}
        low = sorted((name, share) for name, share in shares.items() if share < min_field_share)
        if low:
            listed = ", ".join(f"{name} {share:.0%}" for name, share in low)
            return "degraded", f"fields filled in too few calls: {listed}"
    return "ok", ""


def finish_run(
    db: Database,
    run_id: int,
    *,
    now: datetime,
    outcome: Literal["ok", "failed"],
    seen: int = 0,
    new: int = 0,
    changed: int = 0,
    unchanged: int = 0,
    errors: int = 0,
    requests: int = 0,
    bytes: int = 0,
    report: dict[str, Any] | None = None,
    failure_threshold: int = 3,
    min_field_share: float | None = None,
    new_baseline: bool = False,
) -> RunVerdict:
    """Close a run, update its source's health and say whether admins must be told.

    ``new_baseline=True`` accepts a shrunken yield as the new baseline (see :func:`shrink_settled`).
    """
    if outcome not in ("ok", "failed"):
        raise ValueError(f"outcome must be 'ok' or 'failed', not {outcome!r}")
    report = dict(report or {})
    with db.engine.begin() as conn:
        source = conn.execute(select(_runs.c.source).where(_runs.c.id == run_id)).scalar_one_or_none()
        if source is None:
            raise LookupError(f"no crawl run {run_id}")
        _ensure(conn, source)
        current = conn.execute(select(_sources).where(_sources.c.name == source).with_for_update()).one()
        verdict_outcome, reason = judge(
            outcome=outcome,
            seen=seen,
            last_good_yield=current.last_good_yield,
            report=report,
            min_field_share=min_field_share,
            new_baseline=new_baseline,
        )
        notify: Notify | None = None
        values: dict[str, Any] = {
            "last_outcome": verdict_outcome,
            "last_yield": seen,
            # A failed run is as bad as a degraded one: the source is not read as it should be.
            "degraded": verdict_outcome != "ok",
        }
        if verdict_outcome == "ok":
            if current.failure_reported:
                notify = "recovered"
            values.update(
                consecutive_failures=0, failure_reported=False, last_success_at=now, last_good_yield=seen
            )
        else:
            failures = current.consecutive_failures + 1
            values["consecutive_failures"] = failures
            if failures >= failure_threshold and not current.failure_reported:
                notify = "failing"
                values["failure_reported"] = True
        conn.execute(update(_sources).where(_sources.c.name == source).values(**values))
        if reason:
            report["verdict"] = reason
        conn.execute(
            update(_runs)
            .where(_runs.c.id == run_id)
            .values(
                finished_at=now,
                outcome=verdict_outcome,
                seen=seen,
                new=new,
                changed=changed,
                unchanged=unchanged,
                errors=errors,
                requests=requests,
                bytes=bytes,
                report=report,
            )
        )
    return RunVerdict(outcome=verdict_outcome, reason=reason, notify=notify)


#: Yields of consecutive shrunken runs agreeing within this share are taken as the source's new size.
SHRINK_TOLERANCE = 0.10


def shrink_settled(
    db: Database,
    source: str,
    *,
    seen: int,
    runs: int,
    current_run: int | None = None,
    tolerance: float = SHRINK_TOLERANCE,
) -> bool:
    """Whether a shrunken yield ``seen`` is the source's new size (see the module docstring).

    True when the last ``runs`` finished runs of ``source`` (``current_run`` and unfinished runs
    left out) were all marked ``report["shrunk"]`` and their yields and ``seen`` differ by at most
    ``tolerance`` of the largest. A run in between that failed or was good breaks the sequence.
    """
    if seen <= 0 or runs < 1:
        return False
    query = (
        select(_runs.c.seen, _runs.c.report)
        .where(_runs.c.source == source, _runs.c.outcome != "running")
        # Ids follow the order runs were started in, whatever clock readings they were given.
        .order_by(_runs.c.id.desc())
        .limit(runs)
    )
    if current_run is not None:
        query = query.where(_runs.c.id != current_run)
    with db.engine.connect() as conn:
        rows = conn.execute(query).all()
    if len(rows) < runs or not all((row.report or {}).get("shrunk") is True for row in rows):
        return False
    yields = [int(row.seen) for row in rows] + [seen]
    return max(yields) - min(yields) <= tolerance * max(yields)


def source_health(db: Database) -> list[SourceHealth]:
    """Every known source (crawled or with stored calls), by name."""
    with db.engine.connect() as conn:
        counts: dict[str, int] = {
            source: int(n)
            for source, n in conn.execute(select(_calls.c.source, func.count()).group_by(_calls.c.source))
        }
        rows = {row.name: row for row in conn.execute(select(_sources))}
        latest = select(func.max(_runs.c.id)).where(_runs.c.outcome != "running").group_by(_runs.c.source)
        errors: dict[str, int] = {
            source: int(n or 0)
            for source, n in conn.execute(
                select(_runs.c.source, _runs.c.errors).where(_runs.c.id.in_(latest))
            )
        }
    health = []
    for name in sorted(set(rows) | set(counts)):
        row = rows.get(name)
        state = _state(row) if row is not None else SourceState(name=name)
        health.append(
            SourceHealth(
                name=name,
                last_run_at=state.last_run_at,
                last_success_at=state.last_success_at,
                last_outcome=state.last_outcome,
                last_yield=state.last_yield,
                last_good_yield=state.last_good_yield,
                consecutive_failures=state.consecutive_failures,
                degraded=state.degraded,
                failure_reported=state.failure_reported,
                calls=int(counts.get(name, 0)),
                last_errors=errors.get(name, 0),
            )
        )
    return health


def recent_runs(db: Database, source: str | None = None, limit: int = 20) -> list[RunView]:
    """The newest runs first."""
    query = select(_runs).order_by(_runs.c.started_at.desc(), _runs.c.id.desc()).limit(limit)
    if source is not None:
        query = query.where(_runs.c.source == source)
    with db.engine.connect() as conn:
        return [
            RunView(
                id=r.id,
                source=r.source,
                started_at=r.started_at.astimezone(ROME),
                finished_at=local(r.finished_at),
                outcome=r.outcome,
                seen=r.seen,
                new=r.new,
                changed=r.changed,
                unchanged=r.unchanged,
                errors=r.errors,
                requests=r.requests,
                bytes=r.bytes,
                report=dict(r.report or {}),
            )
            for r in conn.execute(query)
        ]
