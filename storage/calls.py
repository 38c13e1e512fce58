"""The read side of calls: frozen views, listings, search, events and duplicate groups.

Views carry every :class:`~storage.records.CallRecord` field under the same name and type
(Decimal money, aware datetimes, tuples), so code written against records works on views.

Search (:func:`search_calls`) is a case- and accent-insensitive substring match over title,
summary, description, programme and granting body. Neither SQLite's ``LIKE`` nor PostgreSQL's
``ILIKE`` folds accents (PostgreSQL's ``unaccent`` is an extension we cannot count on), so ingest
stores ``calls.search_text``, the folded text of those fields (:func:`storage.groups.fold`), and
the query is folded the same way and matched with ``LIKE`` on both engines. It scans the table:
fine for the tens of thousands of calls Sentinella keeps; a trigram index would be the next step.
Punctuation is folded to spaces on both sides, so "l'accesso" finds "l’accesso".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, cast

from sqlalchemy import Select, Table, case, or_, select

from storage._bulk import chunks
from storage._rows import row_to_fields
from storage.db import Database
from storage.groups import DEFAULT_SOURCE_PRIORITY, fold, source_rank
from storage.models import Call, CallEvent, DuplicateGroup
from storage.records import ROME, Attachment, CallStatus, Deadline, Precision, final_deadline

#: What listings and searches show unless asked otherwise: calls, not notices or partner searches.
CALLS_ONLY: tuple[str, ...] = ("call",)

_calls = cast(Table, Call.__table__)
_events = cast(Table, CallEvent.__table__)
_groups = cast(Table, DuplicateGroup.__table__)


Phase = Literal["open", "forthcoming", "closed"]


def phase(status: str, opens: datetime | None, final: datetime | None, now: datetime) -> Phase:
    """Where a call stands at ``now``: ``closed`` by status or by a passed final deadline;
    ``forthcoming`` before a known opening (or announced without one); else ``open`` (an
    open-ended "sportello" call stays open). ``final`` is the call's final deadline."""
    if status == CallStatus.CLOSED or (final is not None and final < now):
        return "closed"
    if opens is not None:
        return "open" if opens <= now else "forthcoming"
    return "forthcoming" if status == CallStatus.FORTHCOMING else "open"


@dataclass(frozen=True, slots=True)
class CallView:
    id: int
    group_id: int | None
    source: str
    source_id: str
    url: str
    title: str
    summary: str
    description: str
    language: str
    status: CallStatus
    published: datetime | None
    published_precision: Precision | None
    opens: datetime | None
    opens_precision: Precision | None
    closes: datetime | None
    closes_precision: Precision | None
    deadlines: tuple[Deadline, ...]
    sportello: bool
    budget_total: Decimal | None
    contribution_min: Decimal | None
    contribution_max: Decimal | None
    beneficiaries: tuple[str, ...]
    programme: str
    funding_source: str
    granting_body: str
    regions: tuple[str, ...]
    ateco_codes: tuple[str, ...]
    keywords: tuple[str, ...]
    support_forms: tuple[str, ...]
    attachments: tuple[Attachment, ...]
    links: tuple[str, ...]
    raw: Mapping[str, Any] | None
    content_hash: str
    first_seen: datetime
    last_seen: datetime
    last_changed: datetime
    #: call | notice | partner_search (:data:`storage.records.KINDS`).
    kind: str = "call"

    @property
    def final_deadline(self) -> datetime | None:
        """The instant the call really closes (:func:`storage.records.final_deadline`)."""
        return final_deadline(self.closes, self.closes_precision, self.deadlines)

    def is_open(self, now: datetime) -> bool:
        """Whether applications are accepted at ``now`` (see :func:`phase`)."""
        return self.phase(now) == "open"

    def phase(self, now: datetime) -> Phase:
        """``open``, ``forthcoming`` or ``closed`` at ``now`` (see :func:`phase`)."""
        return phase(self.status, self.opens, self.final_deadline, now)


@dataclass(frozen=True, slots=True)
class EventView:
    id: int
    call_id: int
    group_id: int | None
    kind: str
    at: datetime
    changes: dict[str, Any]


def _view(row: Mapping[Any, Any]) -> CallView:
    return CallView(
        id=row["id"],
        group_id=row["group_id"],
        content_hash=row["content_hash"],
        first_seen=row["first_seen"].astimezone(ROME),
        last_seen=row["last_seen"].astimezone(ROME),
        last_changed=row["last_changed"].astimezone(ROME),
        **row_to_fields(row),
    )


def _fetch(db: Database, query: Select[Any]) -> list[CallView]:
    with db.engine.connect() as conn:
        return [_view(row) for row in conn.execute(query).mappings()]


def get_call(db: Database, call_id: int) -> CallView | None:
    found = _fetch(db, select(_calls).where(_calls.c.id == call_id))
    return found[0] if found else None


def get_calls(db: Database, ids: Iterable[int]) -> list[CallView]:
    """The calls with these ids, in the order given (unknown ids left out)."""
    wanted = list(dict.fromkeys(ids))
    by_id: dict[int, CallView] = {}
    for chunk in chunks(wanted):
        by_id.update((v.id, v) for v in _fetch(db, select(_calls).where(_calls.c.id.in_(chunk))))
    return [by_id[i] for i in wanted if i in by_id]


def _open_at(open_only: bool, now: datetime | None) -> datetime | None:
    """The instant a listing keeps the calls open at; None when it keeps every call."""
    if not open_only:
        return None
    if now is None:
        raise ValueError("open_only needs now")
    return now


def _listing(db: Database, query: Select[Any], open_at: datetime | None, limit: int | None) -> list[CallView]:
    """Run a listing query, keeping only the calls open at ``open_at`` when it is given."""
    if open_at is None:
        return _fetch(db, query if limit is None else query.limit(limit))
    # A cheap superset of the open calls in SQL (a date-only deadline lasts until the end of its
    # day); CallView.is_open decides exactly, so the limit can only be applied afterwards.
    query = query.where(
        _calls.c.status != CallStatus.CLOSED.value,
        or_(_calls.c.closes_at.is_(None), _calls.c.closes_at >= open_at - timedelta(days=2)),
    )
    views = [v for v in _fetch(db, query) if v.is_open(open_at)]
    return views if limit is None else views[:limit]


def list_calls(
    db: Database,
    *,
    open_only: bool = False,
    now: datetime | None = None,
    source: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    newest_first: bool = False,
    kinds: Sequence[str] | None = CALLS_ONLY,
) -> list[CallView]:
    """Calls by id, or most recently changed first with ``newest_first``. ``since`` keeps calls
    new or changed (``last_changed``) at or after it; ``open_only`` needs ``now``. ``kinds``
    keeps rows of those kinds (calls only by default; None = notices and partner searches too)."""
    open_at = _open_at(open_only, now)
    order = (_calls.c.last_changed.desc(), _calls.c.id.desc()) if newest_first else (_calls.c.id,)
    query = _of_kinds(select(_calls).order_by(*order), kinds)
    if source is not None:
        query = query.where(_calls.c.source == source)
    if since is not None:
        query = query.where(_calls.c.last_changed >= since)
    return _listing(db, query, open_at, limit)


def _of_kinds(query: Select[Any], kinds: Sequence[str] | None) -> Select[Any]:
    return query if kinds is None else query.where(_calls.c.kind.in_(list(kinds)))


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


#: Longest search text accepted: no one types more, and SQLite refuses LIKE patterns past
#: 50,000 bytes ("pattern too complex"); the same cap holds on PostgreSQL.
MAX_SEARCH = 200


class SearchTooLong(ValueError):
    """The search text is longer than :data:`MAX_SEARCH`."""


def search_calls(
    db: Database,
    text: str,
    *,
    open_only: bool = False,
    now: datetime | None = None,
    limit: int = 50,
    kinds: Sequence[str] | None = CALLS_ONLY,
) -> list[CallView]:
    """Calls whose title, summary, description, programme or granting body contain ``text``
    (case and accents ignored); title matches first, then the newest. ``kinds`` as in
    :func:`list_calls`. Raises :class:`SearchTooLong` past :data:`MAX_SEARCH` characters."""
    if len(text) > MAX_SEARCH:
        raise SearchTooLong(f"search text too long: {len(text)} characters (at most {MAX_SEARCH})")
    open_at = _open_at(open_only, now)
    needle = fold(text)
    if not needle:
        return []
    pattern = f"%{escape_like(needle)}%"
    in_title = case((_calls.c.title_key.like(pattern, escape="\\"), 0), else_=1)
    query = (
        select(_calls)
        .where(_calls.c.search_text.like(pattern, escape="\\"))
        .order_by(in_title, _calls.c.id.desc())
    )
    return _listing(db, _of_kinds(query, kinds), open_at, limit)


# --- events ------------------------------------------------------------------------------------


def _event_query() -> Select[Any]:
    return select(
        _events.c.id, _events.c.call_id, _calls.c.group_id, _events.c.kind, _events.c.at, _events.c.changes
    ).join(_calls, _calls.c.id == _events.c.call_id)


def _event_views(db: Database, query: Select[Any]) -> list[EventView]:
    with db.engine.connect() as conn:
        return [
            EventView(
                id=r.id,
                call_id=r.call_id,
                group_id=r.group_id,
                kind=r.kind,
                at=r.at.astimezone(ROME),
                changes=r.changes or {},
            )
            for r in conn.execute(query)
        ]


def call_events(db: Database, call_id: int) -> list[EventView]:
    """The events of one call, oldest first."""
    return _event_views(db, _event_query().where(_events.c.call_id == call_id).order_by(_events.c.id))


def events_after(db: Database, after_id: int, *, limit: int = 1000) -> list[EventView]:
    """Events with an id above ``after_id``, in id order: a cursor for consumers (ingest commits
    event ids in increasing order, so none is skipped)."""
    query = _event_query().where(_events.c.id > after_id).order_by(_events.c.id).limit(limit)
    return _event_views(db, query)


def last_event_id(db: Database) -> int:
    """The newest event id (0 when none): where a fresh consumer starts."""
    with db.engine.connect() as conn:
        return int(conn.execute(select(_events.c.id).order_by(_events.c.id.desc()).limit(1)).scalar() or 0)


# --- groups ------------------------------------------------------------------------------------


def group_calls(
    db: Database, group_id: int, *, priority: Sequence[str] = DEFAULT_SOURCE_PRIORITY
) -> list[CallView]:
    """The calls of a group, canonical first, then by source priority and age."""
    with db.engine.connect() as conn:
        canonical = conn.execute(select(_groups.c.canonical_call_id).where(_groups.c.id == group_id)).scalar()
    views = _fetch(db, select(_calls).where(_calls.c.group_id == group_id).order_by(_calls.c.id))
    return sorted(views, key=lambda v: (v.id != canonical, source_rank(v.source, priority), v.id))


def canonical_call(db: Database, group_id: int) -> CallView:
    """The group's canonical call; ``LookupError`` when the group does not exist or is empty."""
    members = group_calls(db, group_id)
    if not members:
        raise LookupError(f"no call in group {group_id}")
    return members[0]


__all__ = [
    "CallView",
    "EventView",
    "Phase",
    "call_events",
    "canonical_call",
    "events_after",
    "get_call",
    "get_calls",
    "group_calls",
    "last_event_id",
    "list_calls",
    "phase",
    "search_calls",
]
