"""Statements over many rows, and the dialect-specific pieces the storage modules share.

:func:`chunks` cuts a list of keys into pieces a bound-parameter list can hold;
:func:`conflict_insert` is the ``INSERT`` with ``ON CONFLICT`` clauses of the engine in use.

:func:`bulk_insert` inserts at the speed of the driver. SQLAlchemy's ``executemany`` spends most
of its time in generic per-row machinery; on SQLite (the benchmark's engine and the default
install) it applies the columns' own bind processors (the same conversions SQLAlchemy would
apply: aware datetimes to UTC text, JSON to text) in one tight loop and hands plain tuples to
``cursor.executemany``. On PostgreSQL it uses an ordinary SQLAlchemy insert (psycopg already
batches ``executemany``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, insert
from sqlalchemy.dialects import postgresql, sqlite

_T = TypeVar("_T")

#: Keys per ``IN (…)`` list: well below every engine's limit on bound parameters.
CHUNK = 500


def chunks(values: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    """``values`` in consecutive slices of at most ``size``."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def conflict_insert(dialect: str, table: Any) -> postgresql.Insert | sqlite.Insert:
    """``INSERT`` into ``table`` (a Table or a mapped class) offering ``on_conflict_do_nothing``
    and ``on_conflict_do_update``: PostgreSQL's on PostgreSQL, SQLite's otherwise."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def bulk_insert(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], *, ignore_conflict_on: Sequence[str] = ()
) -> None:
    """Insert ``rows`` (all with the same keys); with ``ignore_conflict_on``, rows clashing on
    that unique key are skipped (``ON CONFLICT (...) DO NOTHING``)."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        statement: Any = insert(table)
        if ignore_conflict_on:
            statement = postgresql.insert(table).on_conflict_do_nothing(
                index_elements=list(ignore_conflict_on)
            )
        conn.execute(statement, list(rows))
        return
    dialect = conn.dialect
    names = list(rows[0])
    processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]
    quote = dialect.identifier_preparer.quote
    # Identifiers come from the table definition and are quoted; values are bound parameters.
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "  # noqa: S608
        f"VALUES ({', '.join('?' for _ in names)})"
    )
    if ignore_conflict_on:
        sql += f" ON CONFLICT ({', '.join(quote(n) for n in ignore_conflict_on)}) DO NOTHING"
    columns = [_Column(name, processor) for name, processor in zip(names, processors, strict=True)]
    params = [tuple(column.value(row[column.name]) for column in columns) for row in rows]
    conn.exec_driver_sql(sql, params)


class _Column:
    """One column's conversion, remembering the last value: ingest passes the same ``now``
    object for first_seen, last_seen and last_changed of every row."""

    __slots__ = ("_last_in", "_last_out", "name", "processor")

    def __init__(self, name: str, processor: Any) -> None:
        self.name = name
        self.processor = processor
        self._last_in: Any = _Column
        self._last_out: Any = None

    def value(self, value: Any) -> Any:
        if self.processor is None or value is None:
            return value
        if value is not self._last_in:
            self._last_in, self._last_out = value, self.processor(value)
        return self._last_out


def upsert(
    conn: Connection, table: Table, values: dict[str, Any], keys: list[str], update_cols: list[str]
) -> None:
    """Insert a row, or update ``update_cols`` of the row with the same ``keys``."""
    stmt = conflict_insert(conn.dialect.name, table).values(**values)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=keys, set_={c: getattr(stmt.excluded, c) for c in update_cols}
        )
    )
