"""Reads for the staff board and the members' calendars: listings by deadline, who was told of a
call and what they answered, what each member was matched with, delivery state per member.

:func:`board_ids` sorts and filters in two steps: SQL narrows by source, text and a superset
of the wanted phase (reading only the few columns a deadline needs), then the exact phase and
final deadline (:func:`storage.calls.phase`, :func:`storage.records.final_deadline`) are
computed in Python on those light rows, the same rule every other reader uses. Only the ids
come back: the caller fetches the one page it shows (:func:`storage.calls.get_calls`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import Select, Table, func, or_, select

from storage._bulk import chunks
from storage._rows import local
from storage.calls import phase
from storage.db import Database
from storage.groups import fold
from storage.models import AlertOutbox, Call, Feedback, Member
from storage.records import Deadline, Precision, final_deadline

_calls = cast(Table, Call.__table__)
_outbox = cast(Table, AlertOutbox.__table__)
_feedback = cast(Table, Feedback.__table__)
_members = cast(Table, Member.__table__)

#: Phases a listing can ask for: one phase, ``active`` (open or forthcoming) or ``all``.
PhaseFilter = Literal["active", "open", "forthcoming", "closed", "all"]
PHASE_FILTERS: tuple[PhaseFilter, ...] = ("active", "open", "forthcoming", "closed", "all")


@dataclass(frozen=True, slots=True)
class BoardQuery:
    """What the board's call list shows. ``closes_from``/``closes_until`` keep calls whose final
    deadline falls in the window (calls without one are left out when either is given)."""

    phase: PhaseFilter = "active"
    source: str | None = None
    text: str = ""
    closes_from: datetime | None = None
    closes_until: datetime | None = None


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _final(row: Any) -> datetime | None:
    if row.closes_at is not None:
        return final_deadline(local(row.closes_at), Precision(row.closes_precision or "datetime"), ())
    if not row.deadlines:
        return None
    last = row.deadlines[-1]
    at = datetime.fromisoformat(last["at"])
    return final_deadline(None, None, (Deadline(at, Precision(last["precision"]), ""),))


def board_ids(db: Database, query: BoardQuery, *, now: datetime) -> list[int]:
    """Ids of the calls the query keeps, soonest final deadline first (open-ended calls last,
    then by id)."""
    stmt: Select[Any] = select(
        _calls.c.id,
        _calls.c.status,
        _calls.c.opens_at,
        _calls.c.closes_at,
        _calls.c.closes_precision,
        _calls.c.deadlines,
    )
    if query.source:
        stmt = stmt.where(_calls.c.source == query.source)
    needle = fold(query.text)
    if needle:
        stmt = stmt.where(_calls.c.search_text.like(_like(needle), escape="\\"))
    if query.phase in ("active", "open", "forthcoming"):
        # A superset: a date-only deadline lasts to the end of its day; the exact rule is below.
        stmt = stmt.where(
            _calls.c.status != "closed",
            or_(_calls.c.closes_at.is_(None), _calls.c.closes_at >= now - timedelta(days=2)),
        )
    if query.closes_from is not None:
        stmt = stmt.where(
            or_(_calls.c.closes_at.is_(None), _calls.c.closes_at >= query.closes_from - timedelta(days=2))
        )
    if query.closes_until is not None:
        stmt = stmt.where(or_(_calls.c.closes_at.is_(None), _calls.c.closes_at <= query.closes_until))
    window = query.closes_from is not None or query.closes_until is not None
    kept: list[tuple[bool, datetime | None, int]] = []
    with db.engine.connect() as conn:
        for row in conn.execute(stmt):
            end = _final(row)
            if window and (
                end is None
                or (query.closes_from is not None and end < query.closes_from)
                or (query.closes_until is not None and end > query.closes_until)
            ):
                continue
            if query.phase != "all":
                where = phase(row.status, local(row.opens_at), end, now)
                if where != query.phase and not (query.phase == "active" and where != "closed"):
                    continue
            kept.append((end is None, end, row.id))
    # Open-ended calls (no deadline) sort last; the sentinel keeps the tuple comparable.
    kept.sort(key=lambda k: (k[0], k[1] or now, k[2]))
    return [k[2] for k in kept]


def board_sources(db: Database) -> list[str]:
    """The sources with at least one call, by name (the board's source filter)."""
    with db.engine.connect() as conn:
        return [r[0] for r in conn.execute(select(_calls.c.source).distinct().order_by(_calls.c.source))]


# --- who was told, what they said ---------------------------------------------------------------


@dataclass
class GroupAlert:
    """One member's side of a call group: the alerts planned for them and their answer."""

    member_id: int
    name: str
    organisation: str
    #: Why it matched (the first "new" alert's reason lines); empty for a member only starred it.
    reasons: list[str] = field(default_factory=list)
    score: float | None = None
    #: Every outbox row for the group: (reason, channel, state, sent_at).
    deliveries: list[tuple[str, str, str, datetime | None]] = field(default_factory=list)
    first_at: datetime | None = None
    feedback: str | None = None
    feedback_at: datetime | None = None


def group_alerts(db: Database, group_id: int) -> list[GroupAlert]:
    """The members alerted of a group or who answered about it, by name."""
    out: dict[int, GroupAlert] = {}

    def entry(row: Any) -> GroupAlert:
        if row.member_id not in out:
            out[row.member_id] = GroupAlert(row.member_id, row.name, row.organisation)
        return out[row.member_id]

    with db.engine.connect() as conn:
        rows = conn.execute(
            select(
                _outbox.c.member_id, _members.c.name, _members.c.organisation, _outbox.c.reason,
                _outbox.c.channel, _outbox.c.state, _outbox.c.sent_at, _outbox.c.created_at, _outbox.c.payload,
            )
            .join(_members, _members.c.id == _outbox.c.member_id)
            .where(_outbox.c.group_id == group_id)
            .order_by(_outbox.c.id)
        )  # fmt: skip
        for row in rows:
            alert = entry(row)
            alert.deliveries.append((row.reason, row.channel, row.state, local(row.sent_at)))
            if alert.first_at is None:
                alert.first_at = local(row.created_at)
            payload = row.payload or {}
            if row.reason == "new" and not alert.reasons:
                alert.reasons = [str(r) for r in payload.get("reasons", [])]
                score = payload.get("score")
                alert.score = float(score) if isinstance(score, int | float) else None
        answers = conn.execute(
            select(_feedback.c.member_id, _members.c.name, _members.c.organisation, _feedback.c.kind, _feedback.c.at)
            .join(_members, _members.c.id == _feedback.c.member_id)
            .where(_feedback.c.group_id == group_id)
        )  # fmt: skip
        for row in answers:
            alert = entry(row)
            alert.feedback, alert.feedback_at = row.kind, local(row.at)
    return sorted(out.values(), key=lambda a: (a.name.casefold(), a.member_id))


@dataclass(frozen=True, slots=True)
class MatchedGroup:
    """A call group a member was matched with (or starred): since when, and the reason lines."""

    group_id: int
    since: datetime
    reasons: tuple[str, ...]
    interested: bool


def matched_groups(db: Database, member_id: int) -> list[MatchedGroup]:
    """Groups the member was alerted of (a "new" alert not given up on) or marked "Mi interessa",
    without those they answered "Non per noi"; oldest first."""
    found: dict[int, MatchedGroup] = {}
    with db.engine.connect() as conn:
        answers = {
            r.group_id: r.kind
            for r in conn.execute(
                select(_feedback.c.group_id, _feedback.c.kind).where(_feedback.c.member_id == member_id)
            )
        }
        rows = conn.execute(
            select(_outbox.c.group_id, _outbox.c.created_at, _outbox.c.payload)
            .where(_outbox.c.member_id == member_id, _outbox.c.reason == "new", _outbox.c.state != "dead")
            .order_by(_outbox.c.id)
        )
        for row in rows:
            if row.group_id in found or answers.get(row.group_id) == "not_for_us":
                continue
            reasons = tuple(str(r) for r in (row.payload or {}).get("reasons", []))
            starred = answers.get(row.group_id) == "interested"
            found[row.group_id] = MatchedGroup(row.group_id, local(row.created_at), reasons, starred)  # type: ignore[arg-type]
        starred_rows = conn.execute(
            select(_feedback.c.group_id, _feedback.c.at).where(
                _feedback.c.member_id == member_id, _feedback.c.kind == "interested"
            )
        )
        for row in starred_rows:
            if row.group_id not in found:
                found[row.group_id] = MatchedGroup(row.group_id, local(row.at), (), True)  # type: ignore[arg-type]
    return sorted(found.values(), key=lambda m: (m.since, m.group_id))


# --- delivery state per member ------------------------------------------------------------------


@dataclass
class DeliveryState:
    """A member's outbox at a glance: rows per state, the last sent and the last error."""

    counts: dict[str, int] = field(default_factory=dict)
    last_sent_at: datetime | None = None
    last_error: str | None = None


def delivery_states(db: Database, member_ids: Iterable[int] | None = None) -> dict[int, DeliveryState]:
    """Delivery state by member id (members without outbox rows are absent)."""
    out: dict[int, DeliveryState] = {}
    ids = None if member_ids is None else sorted(set(member_ids))
    parts: Iterable[Any] = [None] if ids is None else chunks(ids)
    with db.engine.connect() as conn:
        for part in parts:
            counts = select(_outbox.c.member_id, _outbox.c.state, func.count(), func.max(_outbox.c.sent_at))
            errors = select(_outbox.c.member_id, _outbox.c.last_error).where(
                _outbox.c.last_error.is_not(None), _outbox.c.state.in_(("failed", "dead"))
            )
            if part is not None:
                counts = counts.where(_outbox.c.member_id.in_(part))
                errors = errors.where(_outbox.c.member_id.in_(part))
            for member_id, state, count, sent in conn.execute(counts.group_by(_outbox.c.member_id, _outbox.c.state)):
                entry = out.setdefault(member_id, DeliveryState())
                entry.counts[state] = int(count)
                sent_at = local(sent)
                if sent_at is not None and (entry.last_sent_at is None or sent_at > entry.last_sent_at):
                    entry.last_sent_at = sent_at
            for member_id, error in conn.execute(errors.order_by(_outbox.c.id)):
                out.setdefault(member_id, DeliveryState()).last_error = error
    return out


__all__ = [
    "PHASE_FILTERS",
    "BoardQuery",
    "DeliveryState",
    "GroupAlert",
    "MatchedGroup",
    "PhaseFilter",
    "board_ids",
    "board_sources",
    "delivery_states",
    "group_alerts",
    "matched_groups",
]
