"""The alert outbox: one row per (member, call group, reason, channel), the unit of "exactly once".

Planning (``notifier.planning.alerts``, ``notifier.planning.reminders``) writes rows with :func:`enqueue`; the
dispatcher (``notifier.delivery.dispatch``) moves them along::

    pending ──claim_due──▶ sending ──mark_sent──▶ sent
       ▲                     │ ├────mark_failed──▶ failed (due again at next_attempt_at) ──▶ claim_due
       └──release/orphans────┘ └────mark_dead────▶ dead (attempts exhausted or permanent error)

Guarantees and their limits:

* The unique constraint makes planning idempotent: enqueueing the same alert twice inserts one
  row (``INSERT … ON CONFLICT DO NOTHING``), so replanning never duplicates a message.
* :func:`claim_due` is atomic: two dispatchers never claim the same row. On PostgreSQL the due
  rows are selected ``FOR UPDATE SKIP LOCKED`` (a second dispatcher takes the next rows instead of
  waiting); on SQLite one ``UPDATE … WHERE id IN (…) AND state IN ('pending', 'failed')
  RETURNING`` does it (SQLite serialises writers).
* A claim counts as an attempt (``attempts + 1`` at claim time), so a row whose send crashes
  the dispatcher every time still ends ``dead`` after the configured number of attempts.
* A claim records its owner (``claimed_by``, a worker of :mod:`storage.leases`), and lives as
  long as the owner's heartbeat: a dispatcher that dies leaves its rows in ``sending``, and
  :func:`release_orphans` returns them to ``pending`` once its heartbeat has expired (seconds,
  not minutes). Rows claimed without an owner (a bare :func:`claim_due`, or claimed before
  owners existed) go back after the stale-claim timeout instead. Released rows may have reached
  the recipient already; they are the only ones that can be sent twice.
  :func:`held_by_others` says which live owners hold rows now.

This module also holds the two reads and writes delivery needs outside the outbox table:
the recipients' delivery addresses (:func:`recipients`) and switching a member's Telegram
channel off after Telegram answered 403 (:func:`switch_off_telegram`), and on again when the
member writes to the bot from that chat (:func:`switch_on_telegram`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping, Table, func, select, update

from storage._bulk import chunks, conflict_insert
from storage.db import Database
from storage.leases import db_now
from storage.models import AlertOutbox, Member, Worker

STATES = ("pending", "sending", "sent", "failed", "dead")
#: States a row can be claimed from (when due).
CLAIMABLE = ("pending", "failed")
#: The longest error text kept on a row.
MAX_ERROR = 2_000

_table: Table = AlertOutbox.__table__  # type: ignore[assignment]
_workers: Table = Worker.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An alert to deliver, as planning produces it.

    ``reason`` is ``new``, ``changed:<event id>`` or ``reminder-…``; ``payload`` is JSON-safe and
    carries what the message needs besides the call (the match reasons, the event diff).
    ``not_before`` delays the first attempt (default: due at once).
    """

    member_id: int
    group_id: int
    call_id: int
    reason: str
    channel: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    not_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    member_id: int
    group_id: int
    call_id: int
    reason: str
    channel: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    payload: dict[str, Any]
    created_at: datetime
    claimed_at: datetime | None
    sent_at: datetime | None
    receipt: str | None
    claimed_by: str | None


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where and how a member is reached: what the dispatcher needs, read in one query."""

    member_id: int
    name: str
    language: str
    telegram_chat_id: int | None
    email: str | None
    active: bool
    paused: bool
    telegram_ok: bool


def _row(mapping: Mapping[str, Any] | RowMapping) -> OutboxRow:
    return OutboxRow(**{name: mapping[name] for name in OutboxRow.__slots__})


def _cut(text: str) -> str:
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


def enqueue(db: Database, items: Iterable[OutboxItem], *, now: datetime) -> int:
    """Insert the items, skipping those already in the outbox; return how many rows were inserted."""
    values = [
        {
            "member_id": item.member_id,
            "group_id": item.group_id,
            "call_id": item.call_id,
            "reason": item.reason,
            "channel": item.channel,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": item.not_before or now,
            "payload": dict(item.payload),
            "created_at": now,
        }
        for item in items
    ]
    if not values:
        return 0
    inserted = 0
    with db.transaction() as session:
        for chunk in chunks(values):
            stmt = (
                conflict_insert(db.dialect, _table)
                .values(list(chunk))
                .on_conflict_do_nothing(index_elements=["member_id", "group_id", "reason", "channel"])
                .returning(_table.c.id)
            )
            inserted += len(session.execute(stmt).all())
    return inserted


def claim_due(
    db: Database,
    *,
    now: datetime,
    limit: int,
    channel: str | Collection[str] | None = None,
    owner: str | None = None,
) -> list[OutboxRow]:
    """Claim up to ``limit`` due rows (pending, or failed and due): they become ``sending``.

    ``owner`` is the claiming worker (see :func:`release_orphans`). ``channel`` restricts the claim to one channel or a collection of channels (rows of a channel
    nobody can send on stay pending). Rows come back oldest due first, then by id.
    """
    if limit <= 0:
        return []
    conditions = [_table.c.state.in_(CLAIMABLE), _table.c.next_attempt_at <= now]
    if isinstance(channel, str):
        conditions.append(_table.c.channel == channel)
    elif channel is not None:
        if not channel:
            return []
        conditions.append(_table.c.channel.in_(list(channel)))
    due = select(_table.c.id).where(*conditions).order_by(_table.c.next_attempt_at, _table.c.id).limit(limit)
    claim = {"state": "sending", "attempts": _table.c.attempts + 1, "claimed_at": now, "claimed_by": owner}
    with db.transaction() as session:
        if db.dialect == "postgresql":
            # Lock the chosen rows; a concurrent dispatcher skips them and takes the next ones.
            ids = list(session.scalars(due.with_for_update(skip_locked=True)))
            if not ids:
                return []
            stmt = update(_table).where(_table.c.id.in_(ids)).values(**claim)
        else:
            # One statement: SQLite runs writers one at a time, and the state test in the outer
            # WHERE keeps the claim correct even if the subquery saw an older snapshot.
            stmt = (
                update(_table)
                .where(_table.c.id.in_(due.scalar_subquery()), _table.c.state.in_(CLAIMABLE))
                .values(**claim)
            )
        rows = [_row(m) for m in session.execute(stmt.returning(*_table.c)).mappings()]
    rows.sort(key=lambda r: (r.next_attempt_at, r.id))
    return rows


def mark_sent(db: Database, id: int, *, now: datetime, receipt: str) -> bool:
    """The channel confirmed the send. False if the row was already sent (or is dead, or gone).

    A row released as stale while its send was in fact confirmed is still marked sent, so
    nobody sends it again.
    """
    with db.transaction() as session:
        result = session.execute(
            update(_table)
            .where(_table.c.id == id, _table.c.state.in_(("sending", *CLAIMABLE)))
            .values(
                state="sent", sent_at=now, receipt=receipt, last_error=None, claimed_at=None, claimed_by=None
            )
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_failed(db: Database, id: int, *, now: datetime, error: str, retry_at: datetime) -> bool:
    """A temporary failure: the row is due again at ``retry_at``. False if it was not being sent."""
    with db.transaction() as session:
        result = session.execute(
            update(_table)
            .where(_table.c.id == id, _table.c.state == "sending")
            .values(
                state="failed",
                next_attempt_at=retry_at,
                last_error=_cut(error),
                claimed_at=None,
                claimed_by=None,
            )
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_dead(db: Database, id: int, *, now: datetime, error: str) -> bool:
    """Give up on the row (permanent error, recipient gone, attempts exhausted)."""
    with db.transaction() as session:
        result = session.execute(
            update(_table)
            .where(_table.c.id == id, _table.c.state.in_(("sending", *CLAIMABLE)))
            .values(state="dead", last_error=_cut(error), claimed_at=None, claimed_by=None)
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release(db: Database, ids: Collection[int], *, now: datetime, not_before: datetime | None = None) -> int:
    """Give claimed rows back unsent (shutdown, or held behind a recipient's earlier failure).

    The claim is not counted as an attempt. ``not_before`` delays them (default: due now).
    """
    if not ids:
        return 0
    with db.transaction() as session:
        result = session.execute(
            update(_table)
            .where(_table.c.id.in_(list(ids)), _table.c.state == "sending")
            .values(
                state="pending",
                attempts=func.max(_table.c.attempts - 1, 0)
                if db.dialect == "sqlite"
                else func.greatest(_table.c.attempts - 1, 0),
                next_attempt_at=not_before or now,
                claimed_at=None,
                claimed_by=None,
            )
        )
    return int(result.rowcount)  # type: ignore[attr-defined]


def release_orphans(db: Database, *, now: datetime, older_than: timedelta) -> int:
    """Rows left ``sending`` by a dispatcher that died go back to ``pending`` (attempt kept).

    A row with an owner is orphaned once its owner's heartbeat has expired (or the owner is
    gone); a row without one once it was claimed longer ago than ``older_than``.
    """
    live = select(_workers.c.id).where(_workers.c.expires_at > db_now(db))
    orphaned = (_table.c.claimed_by.is_not(None) & _table.c.claimed_by.not_in(live.scalar_subquery())) | (
        _table.c.claimed_by.is_(None) & (_table.c.claimed_at < now - older_than)
    )
    with db.transaction() as session:
        result = session.execute(
            update(_table)
            .where(_table.c.state == "sending", orphaned)
            .values(
                state="pending",
                next_attempt_at=now,
                claimed_at=None,
                claimed_by=None,
                last_error="claim expired",
            )
        )
    return int(result.rowcount)  # type: ignore[attr-defined]


def held_by_others(db: Database, owner: str | None) -> dict[str, int]:
    """Rows being sent now by owners other than ``owner`` (live or not yet found dead), by owner.

    Rows without an owner are counted under ``""``.
    """
    stmt = (
        select(_table.c.claimed_by, func.count())
        .where(_table.c.state == "sending")
        .group_by(_table.c.claimed_by)
    )
    with db.session() as session:
        counts = {str(who or ""): int(n) for who, n in session.execute(stmt)}
    if owner:
        counts.pop(owner, None)
    return counts


def any_due(db: Database, *, now: datetime) -> bool:
    """Whether some row can be claimed now (a cheap look, by the due index)."""
    stmt = select(_table.c.id).where(_table.c.state.in_(CLAIMABLE), _table.c.next_attempt_at <= now).limit(1)
    with db.session() as session:
        return session.execute(stmt).first() is not None


def backlog(db: Database) -> dict[str, int]:
    """Rows per state (every state present, zero when empty)."""
    counts = dict.fromkeys(STATES, 0)
    with db.session() as session:
        for state, count in session.execute(select(_table.c.state, func.count()).group_by(_table.c.state)):
            counts[state] = int(count)
    return counts


def get_row(db: Database, id: int) -> OutboxRow | None:
    with db.session() as session:
        mapping = session.execute(select(*_table.c).where(_table.c.id == id)).mappings().first()
    return None if mapping is None else _row(mapping)


def list_rows(
    db: Database,
    *,
    state: str | None = None,
    member_id: int | None = None,
    limit: int | None = None,
) -> list[OutboxRow]:
    """Rows by id, optionally of one state or member (for the CLI, admin status and tests)."""
    stmt = select(*_table.c).order_by(_table.c.id)
    if state is not None:
        stmt = stmt.where(_table.c.state == state)
    if member_id is not None:
        stmt = stmt.where(_table.c.member_id == member_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    with db.session() as session:
        return [_row(m) for m in session.execute(stmt).mappings()]


def recipients(db: Database, member_ids: Iterable[int]) -> dict[int, Recipient]:
    """Delivery addresses of these members, by id (members that no longer exist are absent)."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    out: dict[int, Recipient] = {}
    with db.session() as session:
        for m in session.scalars(select(Member).where(Member.id.in_(ids))):
            out[m.id] = Recipient(
                member_id=m.id,
                name=m.name,
                language=m.language,
                telegram_chat_id=m.telegram_chat_id,
                email=m.email,
                active=m.active,
                paused=m.paused,
                telegram_ok=m.telegram_ok,
            )
    return out


def switch_off_telegram(db: Database, member_id: int, *, now: datetime) -> bool:
    """Telegram said the chat is gone (403): stop sending there. True if it was on."""
    with db.transaction() as session:
        result = session.execute(
            update(Member)
            .where(Member.id == member_id, Member.telegram_ok.is_(True))
            .values(telegram_ok=False, updated_at=now)
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def give_up(db: Database, member_id: int, channel: str, *, now: datetime, reason: str) -> int:
    """Stop the member's alerts still to send on ``channel`` (pending or to retry): they become
    ``dead`` with ``reason`` (the member unsubscribed). Returns how many."""
    with db.transaction() as session:
        result = session.execute(
            update(AlertOutbox)
            .where(
                AlertOutbox.member_id == member_id,
                AlertOutbox.channel == channel,
                AlertOutbox.state.in_(CLAIMABLE),
            )
            .values(state="dead", last_error=_cut(reason), next_attempt_at=now)
        )
    return int(result.rowcount)  # type: ignore[attr-defined]


def switch_on_telegram(db: Database, member_id: int, *, now: datetime) -> bool:
    """The member wrote to the bot again (unblocked it): Telegram is back. True if it was off."""
    with db.transaction() as session:
        result = session.execute(
            update(Member)
            .where(
                Member.id == member_id, Member.telegram_ok.is_(False), Member.telegram_chat_id.is_not(None)
            )
            .values(telegram_ok=True, updated_at=now)
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def overdue(db: Database, *, before: datetime, channels: Collection[str] | None = None) -> dict[str, int]:
    """Rows still to send that were due before ``before``, counted as ``alerts`` and
    ``reminders`` (the daemon tells admins when deliveries or reminders fall behind).
    ``channels`` limits the count to channels that can send (rows of an unconfigured channel
    wait for it without being late)."""
    is_reminder = _table.c.reason.like("reminder-%")
    stmt = (
        select(is_reminder.label("reminder"), func.count())
        .where(_table.c.state.in_(("pending", "failed", "sending")), _table.c.next_attempt_at < before)
        .group_by(is_reminder)
    )
    if channels is not None:
        stmt = stmt.where(_table.c.channel.in_(list(channels)))
    counts = {"alerts": 0, "reminders": 0}
    with db.session() as session:
        for reminder, count in session.execute(stmt):
            counts["reminders" if reminder else "alerts"] += int(count)
    return counts
