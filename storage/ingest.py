"""The one ingest entry point: every crawler and importer stores calls through :func:`ingest`.

What it does with each :class:`~storage.records.CallRecord`, in batches of ``batch_size``, one
transaction per batch:

* cleans its text (control characters, terminal escapes, bidi controls, user-info in URLs:
  :mod:`storage.sanitise`), caps it (:meth:`CallRecord.capped`) and hashes it (:meth:`CallRecord.content_hash`);
* fetches the stored ``(source, source_id, content_hash)`` of the whole batch in one query and
  sorts the batch into new, unchanged and changed calls;
* **unchanged** calls: one ``UPDATE … SET last_seen`` for the batch, nothing else;
* **new** calls: ``INSERT … ON CONFLICT (source, source_id) DO NOTHING`` (SQLite and PostgreSQL
  dialect inserts); a row another writer inserted first is then treated as already stored. Each
  new call gets a ``new`` event and a duplicate group (:mod:`storage.groups`);
* **changed** calls: the row is rewritten and, when a field members care about changed
  (:data:`DIFF_FIELDS`), a ``changed`` event records ``{field: {"old": v, "new": v}}`` with
  JSON-safe values (ISO datetimes in Europe/Rome, Decimal money as strings, lists). The event
  is ``reopened`` instead when the status went from closed to open/forthcoming, or when the
  final deadline had passed and now lies in the future. A change confined to other fields
  (description, keywords, links, attachments, language, publication date) rewrites the row
  quietly: no event, ``last_changed`` kept, counted as unchanged.

A call is never deleted or closed because a crawl did not see it.

:func:`touch_seen` is the other half of "seen": an incremental crawl does not hand over the calls
its source still lists unchanged (it did not fetch them again), so the crawler reports their ids
after a good run and only their ``last_seen`` moves — one bulk ``UPDATE`` per chunk, no hashing,
no events.

A record that cannot be stored becomes one line in ``IngestResult.errors`` and the rest of the
batch is kept (a batch the database refuses is retried record by record to find the culprit).
Database failures (unreachable, locked past the busy timeout) are raised, not blamed on records.
``seen`` counts the records compared or stored (``new + changed + unchanged``).
A call given twice in one batch is stored in two steps, in order, like two crawls.

Concurrency: each batch first takes the write lock (``BEGIN IMMEDIATE`` on SQLite, a
transaction-scoped advisory lock on PostgreSQL), so ingests from several processes are
serialised batch by batch: the same call ingested by two processes at once ends as one row
with one ``new`` event, duplicate groups see every committed call, and event ids are committed
in increasing order (the alert planner reads them with a cursor).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, select, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from storage._bulk import bulk_insert, chunks, conflict_insert
from storage._rows import capped, record_to_row, row_to_record
from storage.db import Database
from storage.groups import DEFAULT_SOURCE_PRIORITY, NewCall, assign_groups, call_link_keys, fold, title_key
from storage.models import Call, CallEvent, CallLink
from storage.records import ROME, CallRecord, CallStatus, final_deadline, json_value
from storage.sanitise import clean_record

#: The fields whose change members are told about (the ``changed`` event's diff).
DIFF_FIELDS: tuple[str, ...] = (
    "title",
    "status",
    "opens",
    "opens_precision",
    "closes",
    "closes_precision",
    "deadlines",
    "sportello",
    "budget_total",
    "contribution_min",
    "contribution_max",
    "url",
    "summary",
    "beneficiaries",
    "programme",
    "funding_source",
    "granting_body",
    "regions",
    "ateco_codes",
    "support_forms",
)

#: An arbitrary constant naming the ingest lock among PostgreSQL advisory locks.
_PG_INGEST_LOCK = 0x5E7711E1

_calls = cast(Table, Call.__table__)
_events = cast(Table, CallEvent.__table__)
_links = cast(Table, CallLink.__table__)


@dataclass
class IngestResult:
    """What one ingest did. ``seen = new + changed + unchanged``; ``changed`` counts calls given
    a ``changed`` or ``reopened`` event (quiet rewrites count as unchanged); ``errors`` has one
    line per record that could not be stored."""

    seen: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)
    new_ids: list[int] = field(default_factory=list)
    changed_ids: list[int] = field(default_factory=list)

    def merge(self, other: IngestResult) -> None:
        self.seen += other.seen
        self.new += other.new
        self.changed += other.changed
        self.unchanged += other.unchanged
        self.errors.extend(other.errors)
        self.new_ids.extend(other.new_ids)
        self.changed_ids.extend(other.changed_ids)


@dataclass(slots=True)
class _Item:
    record: CallRecord
    hash: str
    _title_key: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.record.source, self.record.source_id)

    @property
    def title_key(self) -> str:
        if self._title_key is None:
            self._title_key = title_key(self.record.title)
        return self._title_key


class _Conflict(Exception):
    """A row changed between our read and our write (only possible for a writer that bypasses
    the ingest lock); the batch is retried."""


def ingest(
    db: Database,
    records: Iterable[CallRecord],
    *,
    now: datetime,
    batch_size: int = 500,
    priority: Sequence[str] = DEFAULT_SOURCE_PRIORITY,
) -> IngestResult:
    """Store ``records`` (see the module docstring); ``priority`` orders sources for the
    canonical record of a duplicate group."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    result = IngestResult()
    iterator = iter(records)
    position = 0
    while chunk := list(islice(iterator, batch_size)):
        batch: dict[tuple[str, str], _Item] = {}
        for record in chunk:
            position += 1
            try:
                item = _prepare(record)
            except Exception as exc:  # any defect of one record must not cost the others
                result.errors.append(_describe(record, position, exc))
                continue
            if item.key in batch:
                result.merge(_store_safely(db, list(batch.values()), now, priority))
                batch = {}
            batch[item.key] = item
        if batch:
            result.merge(_store_safely(db, list(batch.values()), now, priority))
    return result


def touch_seen(
    db: Database, source: str, source_ids: Iterable[str], *, now: datetime, chunk_size: int = 500
) -> int:
    """Set ``last_seen = now`` on the stored calls of ``source`` among ``source_ids``.

    For the calls a crawl saw listed but skipped as unchanged. Ids not stored are ignored and
    ``last_seen`` never moves backwards; returns how many calls were moved. One transaction, one
    ``UPDATE … WHERE source_id IN (…)`` per ``chunk_size`` ids (bound parameters are limited).
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    ids = sorted(set(source_ids))
    touched = 0
    if not ids:
        return 0
    with db.engine.begin() as conn:
        for chunk in chunks(ids, chunk_size):
            outcome = conn.execute(
                update(_calls)
                .where(_calls.c.source == source, _calls.c.source_id.in_(chunk), _calls.c.last_seen < now)
                .values(last_seen=now)
            )
            touched += max(outcome.rowcount, 0)
    return touched


def _describe(record: object, position: int, exc: BaseException) -> str:
    # The reason first, the ids cut: a hostile id must not push the reason off the line.
    reason = f"{type(exc).__name__}: {exc}"[:500]
    if isinstance(record, CallRecord):
        return f"{reason} ({record.source[:64]}/{record.source_id[:80]})"
    return f"{reason} (record {position})"


#: Money the database stores (integer cents in 64 bits).
_MAX_CENTS = 2**63 - 1


def _check_ranges(record: CallRecord) -> None:
    """Values the database cannot store are this record's error, not the batch's."""
    moments = [record.published, record.opens, record.closes, *(d.at for d in record.deadlines)]
    for moment in moments:
        if moment is not None and not 1 < moment.astimezone(UTC).year < 9999:
            raise ValueError(f"date out of range: {moment.isoformat()[:40]}")
    for amount in (record.budget_total, record.contribution_min, record.contribution_max):
        if amount is not None and (not amount.is_finite() or abs(amount) * 100 > _MAX_CENTS):
            raise ValueError(f"amount out of range: {str(amount)[:40]}")


def _prepare(record: CallRecord) -> _Item:
    if not isinstance(record, CallRecord):
        raise TypeError(f"not a CallRecord but {type(record).__name__}")
    if len(record.source) > 64 or len(record.source_id) > 255:
        raise ValueError("source (64) or source id (255) too long")
    _check_ranges(record)
    # Untrusted text is cleaned once, here, for every crawler and importer (storage.sanitise).
    record = capped(clean_record(record))
    return _Item(record, record.content_hash())


def _store_safely(db: Database, items: list[_Item], now: datetime, priority: Sequence[str]) -> IngestResult:
    try:
        return _store_retrying(db, items, now, priority)
    except Exception as exc:
        if not _is_record_fault(exc):
            raise
        if len(items) == 1:
            return IngestResult(errors=[_describe(items[0].record, 0, _short(exc))])
    # Find the record the database refused; store the others.
    result = IngestResult()
    for item in items:
        result.merge(_store_safely(db, [item], now, priority))
    return result


def _is_record_fault(exc: Exception) -> bool:
    """Whether ``exc`` may come from one record's values (a value the database refuses, raw
    data that is not JSON) rather than from the database itself (unreachable, locked, a bug in
    our SQL), which must fail the whole ingest instead of being blamed on every record."""
    if isinstance(exc, (IntegrityError, DataError, ValueError, TypeError, ArithmeticError)):
        return True
    # A bind-parameter conversion error wrapped by SQLAlchemy (not a database error).
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


def _short(exc: Exception) -> Exception:
    if isinstance(exc, SQLAlchemyError) and getattr(exc, "orig", None) is not None:
        return Exception(str(exc.orig).strip().splitlines()[0])  # type: ignore[attr-defined]
    return exc


def _store_retrying(db: Database, items: list[_Item], now: datetime, priority: Sequence[str]) -> IngestResult:
    for _attempt in range(3):
        try:
            with db.engine.begin() as conn:
                return _store(conn, items, now, priority)
        except _Conflict:
            continue
    raise ValueError("the calls kept changing under this ingest; giving up on the batch")


def write_lock(conn: Connection) -> None:
    """Serialise writers of calls and events (see the module docstring: event ids commit in order)."""
    if conn.dialect.name == "sqlite":
        # Take the write lock before reading the hashes: read and write are then one atomic step.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_INGEST_LOCK})")


def _stored(conn: Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, str]]:
    """``(source, source_id) -> (id, content_hash)`` for the stored ones among ``keys``."""
    by_source: dict[str, list[str]] = {}
    for source, source_id in keys:
        by_source.setdefault(source, []).append(source_id)
    found: dict[tuple[str, str], tuple[int, str]] = {}
    for source, ids in by_source.items():
        for chunk in chunks(ids):
            query = select(_calls.c.id, _calls.c.source_id, _calls.c.content_hash).where(
                _calls.c.source == source, _calls.c.source_id.in_(chunk)
            )
            for cid, sid, chash in conn.execute(query):
                found[(source, sid)] = (cid, chash)
    return found


def _store(conn: Connection, items: list[_Item], now: datetime, priority: Sequence[str]) -> IngestResult:
    result = IngestResult(seen=len(items))
    write_lock(conn)
    stored = _stored(conn, [item.key for item in items])
    new_items = [item for item in items if item.key not in stored]
    inserted: dict[tuple[str, str], int] = {}
    if new_items:
        inserted = _insert_new(conn, new_items, now)
        losers = [item.key for item in new_items if item.key not in inserted]
        if losers:
            # Another writer stored these between our read and our insert: compare with theirs.
            stored.update(_stored(conn, losers))

    unchanged_ids: list[int] = []
    changed: list[tuple[int, str, _Item]] = []
    for item in items:
        if item.key in inserted:
            continue
        cid, chash = stored[item.key]
        if chash == item.hash:
            unchanged_ids.append(cid)
        else:
            changed.append((cid, chash, item))

    for chunk in chunks(unchanged_ids):
        conn.execute(update(_calls).where(_calls.c.id.in_(chunk)).values(last_seen=now))
    events: list[dict[str, Any]] = []
    quiet = _update_changed(conn, changed, now, events, result)
    result.unchanged = len(unchanged_ids) + quiet

    if inserted:
        by_key = {item.key: item for item in new_items}
        new_calls = [
            NewCall(
                id=cid,
                source=key[0],
                link_keys=call_link_keys(by_key[key].record.url, by_key[key].record.links),
                title_key=by_key[key].title_key,
                granting_body=by_key[key].record.granting_body,
                closes=by_key[key].record.closes,
            )
            for key, cid in inserted.items()
        ]
        _insert_links(conn, [(n.id, n.link_keys) for n in new_calls])
        assign_groups(conn, new_calls, now=now, priority=priority)
        new_ids = sorted(inserted.values())
        events[:0] = [{"call_id": cid, "kind": "new", "at": now, "changes": {}} for cid in new_ids]
        result.new = len(new_ids)
        result.new_ids = new_ids
    bulk_insert(conn, _events, events)
    return result


def _full_row(item: _Item, now: datetime) -> dict[str, Any]:
    record = item.record
    row = record_to_row(record)
    row["content_hash"] = item.hash
    row["title_key"] = item.title_key
    row["search_text"] = search_text(record)
    row["last_seen"] = now
    return row


def search_text(record: CallRecord) -> str:
    parts = (record.title, record.summary, record.programme, record.granting_body, record.description)
    return fold("\n".join(p for p in parts if p))


def _insert_new(conn: Connection, items: list[_Item], now: datetime) -> dict[tuple[str, str], int]:
    rows = []
    for item in items:
        row = _full_row(item, now)
        row["first_seen"] = row["last_changed"] = now
        row["group_id"] = None
        rows.append(row)
    if conn.dialect.name == "sqlite":
        # The batch holds SQLite's write lock since its first read: every call not stored then
        # is ours to insert, and the ids are read back in one query (SQLite's executemany
        # cannot return them).
        bulk_insert(conn, _calls, rows, ignore_conflict_on=("source", "source_id"))
        stored = _stored(conn, [item.key for item in items])
        return {key: cid for key, (cid, chash) in stored.items()}
    statement = (
        conflict_insert(conn.dialect.name, _calls)
        .on_conflict_do_nothing(index_elements=["source", "source_id"])
        .returning(_calls.c.id, _calls.c.source, _calls.c.source_id)
    )
    return {(source, sid): cid for cid, source, sid in conn.execute(statement, rows)}


def _insert_links(conn: Connection, calls: Sequence[tuple[int, dict[str, bool] | Any]]) -> None:
    rows = [{"call_id": cid, "key": key, "own": own} for cid, keys in calls for key, own in keys.items()]
    bulk_insert(conn, _links, rows)


def _update_changed(
    conn: Connection,
    changed: list[tuple[int, str, _Item]],
    now: datetime,
    events: list[dict[str, Any]],
    result: IngestResult,
) -> int:
    """Rewrite changed rows; append their events; return how many changed only quietly."""
    if not changed:
        return 0
    old_rows: dict[int, Any] = {}
    for chunk in chunks([cid for cid, _, _ in changed]):
        for row in conn.execute(select(_calls).where(_calls.c.id.in_(chunk))).mappings():
            old_rows[row["id"]] = row
    quiet = 0
    relinked: list[tuple[int, dict[str, bool]]] = []
    for cid, old_hash, item in changed:
        old_row = old_rows[cid]
        old = row_to_record(old_row)
        changes = diff(old, item.record)
        values = _full_row(item, now)
        if changes:
            values["last_changed"] = now
        outcome = conn.execute(
            update(_calls).where(_calls.c.id == cid, _calls.c.content_hash == old_hash).values(**values)
        )
        if outcome.rowcount != 1:
            raise _Conflict
        if (old.url, old.links) != (item.record.url, item.record.links):
            relinked.append((cid, call_link_keys(item.record.url, item.record.links)))
        if not changes:
            quiet += 1
            continue
        kind = "reopened" if is_reopened(old, item.record, now) else "changed"
        events.append({"call_id": cid, "kind": kind, "at": now, "changes": changes})
        result.changed += 1
        result.changed_ids.append(cid)
    if relinked:
        conn.execute(delete(_links).where(_links.c.call_id.in_([cid for cid, _ in relinked])))
        _insert_links(conn, relinked)
    return quiet


# --- the rules, pure ---------------------------------------------------------------------------


def json_safe(value: Any) -> Any:
    """A value of a CallRecord field as JSON, moments in Europe/Rome (:func:`json_value`)."""
    return json_value(value, tz=ROME)


def diff(old: CallRecord, new: CallRecord) -> dict[str, dict[str, Any]]:
    """``{field: {"old": v, "new": v}}`` over :data:`DIFF_FIELDS` (datetimes compared as instants)."""
    changes: dict[str, dict[str, Any]] = {}
    for name in DIFF_FIELDS:
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            changes[name] = {"old": json_safe(before), "new": json_safe(after)}
    return changes


def is_reopened(old: CallRecord, new: CallRecord, now: datetime) -> bool:
    if old.status == CallStatus.CLOSED and new.status in (CallStatus.OPEN, CallStatus.FORTHCOMING):
        return True
    before = final_deadline(old.closes, old.closes_precision, old.deadlines)
    after = final_deadline(new.closes, new.closes_precision, new.deadlines)
    return before is not None and before < now and after is not None and after > now


__all__ = [
    "DIFF_FIELDS",
    "IngestResult",
    "diff",
    "ingest",
    "is_reopened",
    "json_safe",
    "touch_seen",
]
