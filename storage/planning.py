"""Storage for the notifier's planners: the alert cursor, who was alerted, feedback, digests.

The alert planner reads call events in id order and keeps the id of the last one it handled in the
``cursors`` table (:func:`get_cursor`, :func:`advance_cursor`). The cursor only moves forward, so
two planners running at once cannot move it back; they may plan the same events twice, which the
outbox's unique key makes harmless.

The staff digest keeps one ``digests`` row per digest sent; the next digest starts where the last
*sent* one ended (:func:`last_digest_end`). A digest only rendered (``--out``) is not recorded.

Known limits: event ids are assumed to grow with time (they are assigned at insert), which is what
lets a digest window be read by time and the alert cursor by id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from storage._bulk import chunks, conflict_insert
from storage.db import Database
from storage.models import AlertOutbox, Call, CallEvent, Cursor, Digest, Feedback

#: The cursor of :func:`notifier.planning.alerts.plan_alerts`.
ALERTS_CURSOR = "alerts"

# --- cursors -------------------------------------------------------------------------------------


def get_cursor(db: Database, name: str) -> int:
    """The stored position of cursor ``name``; 0 (before every id) when never advanced."""
    with db.session() as session:
        value = session.scalar(select(Cursor.position).where(Cursor.name == name))
    return int(value or 0)


def advance_cursor(db: Database, name: str, position: int, *, now: datetime) -> int:
    """Move cursor ``name`` forward to ``position`` (never back); return the stored position."""
    with db.transaction() as session:
        stmt = conflict_insert(db.dialect, Cursor).values(name=name, position=position, updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=[Cursor.name],
            set_={"position": stmt.excluded.position, "updated_at": stmt.excluded.updated_at},
            where=Cursor.position < stmt.excluded.position,
        )
        session.execute(stmt)
        stored = session.scalar(select(Cursor.position).where(Cursor.name == name))
    return int(stored or 0)


# --- who was told what ----------------------------------------------------------------------------


def alerted_members(
    db: Database, group_ids: Iterable[int], *, reason: str = "new", interested: bool = True
) -> dict[int, dict[int, datetime]]:
    """For each group, the members who know of it, and since when: ``{group_id: {member_id: at}}``.

    A member knows of a group when it has an outbox row of ``reason`` not given up on ("dead"),
    since that row was planned; or (with ``interested``) when it marked the group "Mi
    interessa", since that answer, which also covers calls found with /bandi or /cerca and
    never alerted. The earlier of the two counts."""
    ids = sorted(set(group_ids))
    out: dict[int, dict[int, datetime]] = {}
    if not ids:
        return out

    def keep(group_id: int, member_id: int, at: datetime) -> None:
        known = out.setdefault(group_id, {})
        if member_id not in known or at < known[member_id]:
            known[member_id] = at

    with db.session() as session:
        for chunk in chunks(ids):
            rows = session.execute(
                select(AlertOutbox.group_id, AlertOutbox.member_id, func.min(AlertOutbox.created_at))
                .where(
                    AlertOutbox.group_id.in_(chunk),
                    AlertOutbox.reason == reason,
                    AlertOutbox.state != "dead",
                )
                .group_by(AlertOutbox.group_id, AlertOutbox.member_id)
            )
            for group_id, member_id, created in rows:
                keep(group_id, member_id, _aware(created))
            if not interested:
                continue
            starred = session.execute(
                select(Feedback.group_id, Feedback.member_id, Feedback.at).where(
                    Feedback.group_id.in_(chunk), Feedback.kind == "interested"
                )
            )
            for group_id, member_id, at in starred:
                keep(group_id, member_id, _aware(at))
    return out


#: How far a member's alerts of a group got, best first (``alert_reach``).
_REACH = {"sent": 0, "pending": 1, "sending": 1, "failed": 1, "dead": 2}
_REACH_WORD = ("sent", "queued", "undelivered")


def alert_reach(db: Database, group_ids: Iterable[int]) -> dict[int, dict[int, str]]:
    """For each group, the members an alert of it (any reason) was planned for, and how far it
    got: ``{group_id: {member_id: "sent" | "queued" | "undelivered"}}``. One member's best row
    counts (sent, else still to send or to retry, else given up)."""
    ids = sorted(set(group_ids))
    out: dict[int, dict[int, str]] = {}
    if not ids:
        return out
    best: dict[tuple[int, int], int] = {}
    with db.session() as session:
        for chunk in chunks(ids):
            rows = session.execute(
                select(AlertOutbox.group_id, AlertOutbox.member_id, AlertOutbox.state)
                .where(AlertOutbox.group_id.in_(chunk))
                .distinct()
            )
            for group_id, member_id, state in rows:
                rank = _REACH.get(state, 1)
                key = (group_id, member_id)
                if key not in best or rank < best[key]:
                    best[key] = rank
    for (group_id, member_id), rank in sorted(best.items()):
        out.setdefault(group_id, {})[member_id] = _REACH_WORD[rank]
    return out


def feedback_for_groups(db: Database, group_ids: Iterable[int]) -> dict[tuple[int, int], str]:
    """Every member's feedback on these groups: ``{(member_id, group_id): kind}``."""
    ids = sorted(set(group_ids))
    out: dict[tuple[int, int], str] = {}
    if not ids:
        return out
    with db.session() as session:
        for chunk in chunks(ids):
            rows = session.execute(
                select(Feedback.member_id, Feedback.group_id, Feedback.kind).where(
                    Feedback.group_id.in_(chunk)
                )
            )
            for member_id, group_id, kind in rows:
                out[(member_id, group_id)] = kind
    return out


def interested(db: Database) -> list[tuple[int, int]]:
    """Every (member_id, group_id) a member marked "interested", in a stable order."""
    with db.session() as session:
        rows = session.execute(
            select(Feedback.member_id, Feedback.group_id)
            .where(Feedback.kind == "interested")
            .order_by(Feedback.member_id, Feedback.group_id)
        )
        return [(m, g) for m, g in rows]


# --- digest windows -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestRecord:
    id: int
    made_at: datetime
    period_start: datetime
    period_end: datetime
    sent: bool
    summary: dict[str, Any]


def last_digest(db: Database, *, sent_only: bool = True) -> DigestRecord | None:
    """The digest with the latest period end (only sent ones unless ``sent_only=False``)."""
    with db.session() as session:
        stmt = select(Digest).order_by(Digest.period_end.desc(), Digest.id.desc()).limit(1)
        if sent_only:
            stmt = stmt.where(Digest.sent.is_(True))
        row = session.scalar(stmt)
        if row is None:
            return None
        return DigestRecord(
            id=row.id,
            made_at=row.made_at,
            period_start=row.period_start,
            period_end=row.period_end,
            sent=row.sent,
            summary=dict(row.summary or {}),
        )


def last_digest_end(db: Database) -> datetime | None:
    """Where the last sent digest's window ended: the next one starts there."""
    record = last_digest(db)
    return record.period_end if record else None


def record_digest(
    db: Database,
    *,
    made_at: datetime,
    period_start: datetime,
    period_end: datetime,
    sent: bool,
    summary: dict[str, Any],
) -> int:
    """Store one digest; return its id."""
    with db.transaction() as session:
        row = Digest(
            made_at=made_at, period_start=period_start, period_end=period_end, sent=sent, summary=summary
        )
        session.add(row)
        session.flush()
        return row.id


def event_ids_between(db: Database, start: datetime, end: datetime) -> list[int]:
    """Ids of the call events with ``start < at <= end``, in id order."""
    with db.session() as session:
        rows = session.scalars(
            select(CallEvent.id).where(CallEvent.at > start, CallEvent.at <= end).order_by(CallEvent.id)
        )
        return list(rows)


def calls_closing_between(db: Database, start: datetime, end: datetime) -> list[int]:
    """Ids of calls not marked closed whose stored closing instant lies in ``[start, end]``.

    A date-only closing is stored as local midnight of its day: callers wanting every call still
    open at ``start`` pass a ``start`` one day earlier and filter on the effective deadline.
    """
    with db.session() as session:
        rows = session.scalars(
            select(Call.id)
            .where(Call.closes_at.is_not(None), Call.closes_at >= start, Call.closes_at <= end)
            .where(Call.status != "closed")
            .order_by(Call.closes_at, Call.id)
        )
        return list(rows)


def _aware(value: datetime) -> datetime:
    # func.min() bypasses the column type on some engines and hands back the raw value.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
