"""Reads for the staff board and the members' calendars: listings by deadline, who was told of a
call and what they answered, what each member was matched with, delivery state per member.

The call list: :func:`board_rows` reads every call's few listing columns once, with its final
deadline (:func:`storage.records.final_deadline`), sorted by it; :func:`select_ids` filters those
rows by source, deadline window and phase at a given instant (:func:`storage.calls.phase`, the
rule every other reader uses), and :func:`search_ids` answers the text search in SQL. A caller
may keep the rows while :func:`calls_version` stays the same (the web board does), so a page
costs one small query, a pass over the rows and the page's own calls.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

from sqlalchemy import Select, String, Table, case, func, select, type_coerce

from storage._bulk import chunks
from storage._rows import local
from storage.calls import CallView, canonical_call, escape_like, get_calls, phase
from storage.db import Database
from storage.groups import fold
from storage.models import AlertOutbox, Call, DuplicateGroup, Feedback, Member
from storage.records import ROME, Deadline, Precision, final_deadline

_calls = cast(Table, Call.__table__)
_outbox = cast(Table, AlertOutbox.__table__)
_feedback = cast(Table, Feedback.__table__)
_members = cast(Table, Member.__table__)
_groups = cast(Table, DuplicateGroup.__table__)

#: Phases a listing can ask for: one phase, ``active`` (open or forthcoming) or ``all``.
PhaseFilter = Literal["active", "open", "forthcoming", "closed", "all"]
PHASE_FILTERS: tuple[PhaseFilter, ...] = ("active", "open", "forthcoming", "closed", "all")
#: What a :class:`BoardRow` keeps of a title and a granting body (a list line shows less).
MAX_TITLE = 300
MAX_BODY = 120


@dataclass(frozen=True, slots=True)
class BoardQuery:
    """What the board's call list shows. ``closes_from``/``closes_until`` keep calls whose final
    deadline falls in the window (calls without one are left out when either is given)."""

    phase: PhaseFilter = "active"
    source: str | None = None
    text: str = ""
    closes_from: datetime | None = None
    closes_until: datetime | None = None


def _instant(value: Any) -> datetime | None:
    """A raw ``AwareDateTime`` value: naive UTC text on SQLite, an aware datetime on PostgreSQL."""
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _final(closes: datetime | None, precision: str | None, deadlines: Any) -> datetime | None:
    """:func:`storage.records.final_deadline` of raw column values (JSON text on SQLite)."""
    if isinstance(deadlines, str):
        deadlines = json.loads(deadlines)
    stages = tuple(
        Deadline(at=datetime.fromisoformat(d["at"]), precision=Precision(d["precision"]))
        for d in deadlines or ()
    )
    return final_deadline(closes, Precision(precision) if precision else None, stages)


@dataclass(frozen=True, slots=True)
class BoardRow:
    """What the call list needs of a call: enough to filter, sort and show a line."""

    id: int
    source: str
    status: str
    opens: datetime | None
    #: The final deadline (:func:`storage.records.final_deadline`); None when open-ended.
    end: datetime | None
    closes_precision: str | None
    title: str
    granting_body: str


def board_rows(db: Database) -> list[BoardRow]:
    """Every call as a :class:`BoardRow`, soonest final deadline first (open-ended calls last,
    then by id): the list :func:`select_ids` filters."""
    # Plain columns, converted here: this reads every call, and the generic per-value type
    # processing would be most of its cost.
    stmt: Select[Any] = select(
        _calls.c.id,
        _calls.c.source,
        _calls.c.status,
        type_coerce(_calls.c.opens_at, String).label("opens_at"),
        type_coerce(_calls.c.closes_at, String).label("closes_at"),
        _calls.c.closes_precision,
        # Stage deadlines matter only without a closing date: read them only then.
        type_coerce(case((_calls.c.closes_at.is_(None), _calls.c.deadlines)), String).label("deadlines"),
        func.substr(_calls.c.title, 1, MAX_TITLE).label("title"),
        func.substr(_calls.c.granting_body, 1, MAX_BODY).label("granting_body"),
    )
    with db.engine.connect() as conn:
        raw = conn.execute(stmt).all()
    rows = []
    for id_, source, status, opens, closes, precision, deadlines, title, body in raw:
        end = _final(_instant(closes), precision, deadlines)
        opened = _instant(opens)
        rows.append(BoardRow(id_, source, status, opened and opened.astimezone(ROME),
                             end and end.astimezone(ROME), precision, title, body))  # fmt: skip
    far = datetime.max.replace(tzinfo=UTC)
    rows.sort(key=lambda r: (r.end is None, r.end or far, r.id))
    return rows


def calls_version(db: Database) -> tuple[Any, ...]:
    """Changes when a call is added or changes in a way that makes an event (two index lookups,
    no scan). A quiet rewrite (``storage.ingest``: description, links …) does not change it, so
    a cache of :func:`board_rows` should also expire with time."""
    with db.engine.connect() as conn:
        return tuple(conn.execute(select(func.max(_calls.c.id), func.max(_calls.c.last_changed))).one())


def search_ids(db: Database, text: str) -> set[int]:
    """Ids of the calls whose folded text contains ``text`` (see :mod:`storage.calls`)."""
    needle = fold(text)
    if not needle:
        return set()
    with db.engine.connect() as conn:
        return set(
            conn.execute(
                select(_calls.c.id).where(_calls.c.search_text.like(f"%{escape_like(needle)}%", escape="\\"))
            ).scalars()
        )


class RowIndex:
    """:func:`board_rows` arranged for :func:`select_ids`: by source, and the final deadlines in
    order so a deadline window or "not closed yet" is a bisection, not a pass over every call."""

    def __init__(self, rows: list[BoardRow]) -> None:
        self.rows = rows
        self.by_id = {r.id: r for r in rows}
        self.sources = sorted({r.source for r in rows})
        self._parts: dict[str | None, tuple[list[BoardRow], list[datetime]]] = {}
        for key in (None, *self.sources):
            part = [r for r in rows if key is None or r.source == key]
            self._parts[key] = (part, [r.end for r in part if r.end is not None])

    def candidates(
        self, source: str | None, low: datetime | None, high: datetime | None, open_ended: bool
    ) -> list[BoardRow]:
        """Rows of ``source`` (all when None) whose deadline is in [low, high]; with
        ``open_ended`` also those without a deadline (they sort last)."""
        part, ends = self._parts.get(source, ([], []))
        start = bisect_left(ends, low) if low is not None else 0
        stop = bisect_right(ends, high) if high is not None else len(ends)
        found = part[start:stop]
        if open_ended:
            found += part[len(ends) :]
        return found


def select_ids(
    index: RowIndex, query: BoardQuery, *, now: datetime, matching: set[int] | None = None
) -> list[int]:
    """The ids of the calls ``query`` keeps at ``now``, in deadline order; ``matching`` are the
    ids of the text search (:func:`search_ids`), needed when ``query.text`` is set."""
    if fold(query.text) and matching is None:
        raise ValueError("a text query needs the ids of its search")
    wanted = query.phase
    low, high = query.closes_from, query.closes_until
    if wanted in ("active", "open", "forthcoming"):
        # A call whose final deadline passed is closed whatever else it says.
        low = now if low is None else max(low, now)
    window = query.closes_from is not None or query.closes_until is not None
    out = []
    for row in index.candidates(query.source or None, low, high, open_ended=not window):
        if matching is not None and row.id not in matching:
            continue
        if wanted == "active":
            # Deadlines before ``now`` were cut off above: only the status can close it.
            if row.status == "closed":
                continue
        elif wanted != "all" and phase(row.status, row.opens, row.end, now) != wanted:
            continue
        out.append(row.id)
    return out


def board_ids(db: Database, query: BoardQuery, *, now: datetime) -> list[int]:
    """Ids of the calls the query keeps, soonest final deadline first (open-ended calls last)."""
    matching = search_ids(db, query.text) if fold(query.text) else None
    return select_ids(RowIndex(board_rows(db)), query, now=now, matching=matching)


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
        for answer in answers:
            alert = entry(answer)
            alert.feedback, alert.feedback_at = answer.kind, local(answer.at)
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
        for star in starred_rows:
            if star.group_id not in found:
                found[star.group_id] = MatchedGroup(star.group_id, local(star.at), (), True)  # type: ignore[arg-type]
    return sorted(found.values(), key=lambda m: (m.since, m.group_id))


def canonical_calls(db: Database, group_ids: Iterable[int]) -> dict[int, CallView]:
    """Each group's canonical call (:func:`storage.calls.canonical_call`), read in a few queries
    for many groups; groups that no longer exist or have no call are absent."""
    ids = sorted(set(group_ids))
    chosen: dict[int, int] = {}
    with db.engine.connect() as conn:
        for chunk in chunks(ids):
            query = select(_groups.c.id, _groups.c.canonical_call_id).where(_groups.c.id.in_(chunk))
            chosen.update({g: c for g, c in conn.execute(query) if c is not None})
    calls = {c.id: c for c in get_calls(db, chosen.values())}
    out = {g: calls[c] for g, c in chosen.items() if c in calls and calls[c].group_id == g}
    for group_id in ids:
        if group_id not in out:
            try:
                out[group_id] = canonical_call(db, group_id)
            except LookupError:
                continue
    return out


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
            for member_id, state, count, sent in conn.execute(
                counts.group_by(_outbox.c.member_id, _outbox.c.state)
            ):
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
    "BoardRow",
    "DeliveryState",
    "GroupAlert",
    "MatchedGroup",
    "PhaseFilter",
    "RowIndex",
    "board_ids",
    "board_rows",
    "calls_version",
    "canonical_calls",
    "delivery_states",
    "group_alerts",
    "matched_groups",
    "search_ids",
    "select_ids",
]
