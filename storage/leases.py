"""Several processes on one database: who is alive, who holds a role, who ran a job.

Three tables, one idea each:

* ``workers`` — every process that takes part in shared work (a daemon, a ``dispatch``)
  registers under an id (``host:pid:random``) and renews ``expires_at`` while it lives
  (:func:`heartbeat`). A worker past ``expires_at`` is dead: the outbox rows it claimed go back
  to the queue (:func:`storage.outbox.release_orphans`), and its leases lapse.
* ``leases`` — a role one process holds at a time (``sender``: the bot's long polling and every
  delivery). :func:`acquire` takes a free or expired lease, or renews one's own, in one
  ``INSERT … ON CONFLICT DO UPDATE … WHERE`` statement: two processes racing for an expired
  lease cannot both win. The holder renews it more often than it expires; a holder that stops
  (``kill -9``, a lost network) loses it within ``ttl`` seconds.
* ``job_runs`` — one row per (job, due time), unique: the process that inserts it runs the job,
  the others skip it (:func:`claim_run`). So each scheduled run happens once across daemons,
  however many fire it.

Time: expiry is judged on one clock, the database server's (``clock_timestamp()``) on
PostgreSQL, so processes on machines whose clocks disagree by a few seconds still agree on who
is alive; on SQLite (one machine) the machine's clock. Never the program's pinned clock.

Known limits: a process stalled longer than ``ttl`` (a frozen VM) is taken for dead while it
lives; when it wakes it notices at its next renewal that it lost its lease and stops the role,
but a send it had in flight may then be repeated by the new holder (the outbox's "duplicates at
most the rows in flight"). A job run whose process dies mid-run is not redone until its next
due time.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import Table, case, delete, select, text, update

from storage._bulk import conflict_insert
from storage.db import Database
from storage.models import JobRun, Lease, Worker

_workers = cast(Table, Worker.__table__)
_leases = cast(Table, Lease.__table__)
_runs = cast(Table, JobRun.__table__)

#: The lease of the process that polls the bot and sends every alert and notice.
SENDER = "sender"


@dataclass(frozen=True, slots=True)
class WorkerView:
    id: str
    host: str
    pid: int
    kind: str
    started_at: datetime
    heartbeat_at: datetime
    expires_at: datetime
    alive: bool


@dataclass(frozen=True, slots=True)
class LeaseView:
    name: str
    owner: str
    acquired_at: datetime
    expires_at: datetime
    alive: bool


@dataclass(frozen=True, slots=True)
class JobRunView:
    job: str
    due_at: datetime
    owner: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None


def new_worker_id() -> str:
    """This process's id: readable (host and pid) and unique (a pid is reused after a restart)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(3)}"


def db_now(db: Database) -> datetime:
    """The clock leases are judged on: the PostgreSQL server's, or this machine's (SQLite)."""
    if db.dialect == "postgresql":
        with db.engine.connect() as conn:
            value = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
        return cast(datetime, value).astimezone(UTC)
    return datetime.now(UTC)


# --- workers ----------------------------------------------------------------------------------


def heartbeat(db: Database, worker: str, *, kind: str, ttl: float) -> datetime:
    """Register ``worker`` or renew it for ``ttl`` seconds; returns the database's "now"."""
    now = db_now(db)
    # The id is host:pid:random (new_worker_id); the parts are kept as columns for ``status``.
    parts = worker.rsplit(":", 2)
    pid = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else 0
    expires = now + timedelta(seconds=ttl)
    with db.engine.begin() as conn:
        conn.execute(
            conflict_insert(db.dialect, _workers)
            .values(
                id=worker,
                host=parts[0],
                pid=pid,
                kind=kind,
                started_at=now,
                heartbeat_at=now,
                expires_at=expires,
            )
            .on_conflict_do_update(index_elements=["id"], set_={"heartbeat_at": now, "expires_at": expires})
        )
    return now


def unregister(db: Database, worker: str) -> None:
    """A clean exit: the worker and its leases go at once (nobody waits for them to expire)."""
    with db.engine.begin() as conn:
        conn.execute(delete(_leases).where(_leases.c.owner == worker))
        conn.execute(delete(_workers).where(_workers.c.id == worker))


def list_workers(db: Database) -> list[WorkerView]:
    now = db_now(db)
    with db.engine.connect() as conn:
        rows = conn.execute(select(_workers).order_by(_workers.c.started_at, _workers.c.id)).all()
    return [
        WorkerView(
            id=r.id,
            host=r.host,
            pid=r.pid,
            kind=r.kind,
            started_at=r.started_at,
            heartbeat_at=r.heartbeat_at,
            expires_at=r.expires_at,
            alive=r.expires_at > now,
        )
        for r in rows
    ]


def live_workers(db: Database, *, kind: str | None = None) -> list[WorkerView]:
    return [w for w in list_workers(db) if w.alive and (kind is None or w.kind == kind)]


def forget_dead(db: Database, *, older_than: timedelta = timedelta(hours=1)) -> int:
    """Drop worker rows expired for longer than ``older_than`` (kept a while for ``status``)."""
    cutoff = db_now(db) - older_than
    with db.engine.begin() as conn:
        return int(conn.execute(delete(_workers).where(_workers.c.expires_at < cutoff)).rowcount)


# --- leases -----------------------------------------------------------------------------------


def acquire(db: Database, name: str, owner: str, *, ttl: float) -> bool:
    """Take the lease ``name`` for ``ttl`` seconds if it is free, expired or already ``owner``'s
    (then it is renewed). True when ``owner`` holds it afterwards."""
    now = db_now(db)
    insert = conflict_insert(db.dialect, _leases).values(
        name=name, owner=owner, acquired_at=now, expires_at=now + timedelta(seconds=ttl)
    )
    excluded = insert.excluded
    mine = _leases.c.owner == excluded.owner
    stmt = insert.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "owner": excluded.owner,
            # A renewal keeps the time the holder first took it.
            "acquired_at": case((mine, _leases.c.acquired_at), else_=excluded.acquired_at),
            "expires_at": excluded.expires_at,
        },
        where=mine | (_leases.c.expires_at <= excluded.acquired_at),
    ).returning(_leases.c.owner)
    with db.engine.begin() as conn:
        held = conn.execute(stmt).first()
    return held is not None and held.owner == owner


def release(db: Database, name: str, owner: str) -> bool:
    """Give the lease up (only its holder can); True if it was held by ``owner``."""
    with db.engine.begin() as conn:
        result = conn.execute(delete(_leases).where(_leases.c.name == name, _leases.c.owner == owner))
    return bool(result.rowcount)


def holder(db: Database, name: str) -> LeaseView | None:
    """Who holds ``name`` now (None when nobody does, or the lease has expired)."""
    view = next((lease for lease in list_leases(db) if lease.name == name), None)
    return view if view is not None and view.alive else None


def list_leases(db: Database) -> list[LeaseView]:
    now = db_now(db)
    with db.engine.connect() as conn:
        rows = conn.execute(select(_leases).order_by(_leases.c.name)).all()
    return [LeaseView(r.name, r.owner, r.acquired_at, r.expires_at, alive=r.expires_at > now) for r in rows]


# --- job runs ---------------------------------------------------------------------------------


def claim_run(db: Database, job: str, due_at: datetime, owner: str, *, now: datetime) -> bool:
    """The right to run ``job`` for its due time ``due_at``: True for exactly one caller."""
    stmt = (
        conflict_insert(db.dialect, _runs)
        .values(job=job, due_at=due_at, owner=owner, started_at=now)
        .on_conflict_do_nothing(index_elements=["job", "due_at"])
        .returning(_runs.c.id)
    )
    with db.engine.begin() as conn:
        return conn.execute(stmt).first() is not None


def finish_run(db: Database, job: str, due_at: datetime, owner: str, *, now: datetime, outcome: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(
            update(_runs)
            .where(_runs.c.job == job, _runs.c.due_at == due_at, _runs.c.owner == owner)
            .values(finished_at=now, outcome=outcome[:128])
        )


def list_runs(db: Database, *, limit: int | None = None, job: str | None = None) -> list[JobRunView]:
    """Job runs, newest due time first."""
    stmt = select(_runs).order_by(_runs.c.due_at.desc(), _runs.c.job)
    if job is not None:
        stmt = stmt.where(_runs.c.job == job)
    if limit is not None:
        stmt = stmt.limit(limit)
    with db.engine.connect() as conn:
        return [
            JobRunView(r.job, r.due_at, r.owner, r.started_at, r.finished_at, r.outcome)
            for r in conn.execute(stmt)
        ]


def prune_runs(db: Database, *, before: datetime) -> int:
    with db.engine.begin() as conn:
        return int(conn.execute(delete(_runs).where(_runs.c.due_at < before)).rowcount)
