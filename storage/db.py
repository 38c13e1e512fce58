"""The database handle: engine, sessions and schema upgrades, identical on SQLite and PostgreSQL.

SQLite runs in WAL mode with foreign keys on and a busy timeout, so a crawl in a child process
and the daemon can write to the same file. ``postgresql://`` URLs are served by psycopg 3.

:meth:`Database.file_lock` is an exclusive lock on a file beside an SQLite database (``fcntl``;
the kernel drops it when the process dies, ``kill -9`` included): migrations take it, so two
commands started together on a new file do not both create the tables, and the daemon takes
one of its own, so a second daemon on the same file says so instead of starting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")


class DatabaseError(RuntimeError):
    """The database cannot be reached or used; the message is fit for a one-line CLI error."""


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3; anything else passes as given."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _json_dumps(value: Any) -> str:
    """The JSON columns' serializer: compact and UTF-8 (smaller rows), with a shortcut for the
    empty lists most list columns hold (ingest writes a dozen JSON values per call)."""
    if not value and isinstance(value, (list, dict)):
        return "[]" if isinstance(value, list) else "{}"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@contextmanager
def file_lock(path: Path | str, *, wait: bool = True) -> Iterator[bool]:
    """An exclusive ``flock`` on ``path`` (created if missing), released on exit or when the
    process dies. Yields True when held; with ``wait=False``, False at once if another holds it."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class Database:
    """One database: an engine and a session factory. Cheap to pass around, one per process."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "future": True, "json_serializer": _json_dumps}
        if self.dialect == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            if database and database != ":memory:":
                # WAL is a property of the file: set once, kept by every later connection.
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def sqlite_file(self) -> Path | None:
        """The database file of an SQLite URL (None for PostgreSQL and in-memory databases)."""
        database = make_url(self.url).database
        if self.dialect != "sqlite" or not database or database == ":memory:":
            return None
        return Path(database).expanduser()

    @contextmanager
    def file_lock(self, purpose: str, *, wait: bool = True) -> Iterator[bool]:
        """Hold an exclusive lock on ``<database file>.<purpose>.lock`` (SQLite files only;
        elsewhere nothing to lock, and it yields True). With ``wait=False`` it yields False at
        once, holding nothing, when another process holds the lock."""
        path = self.sqlite_file
        if path is None:
            yield True
            return
        with file_lock(path.with_name(f"{path.name}.{purpose}.lock"), wait=wait) as held:
            yield held

    def session(self) -> Session:
        return self._sessions()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self._sessions.begin() as session:
            yield session

    def check(self) -> None:
        """Raise :class:`DatabaseError` with a clear message when the database cannot be reached."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise DatabaseError(f"cannot reach the database {self.safe_url}: {reason}") from exc

    def upgrade(self) -> None:
        """Apply every pending migration (idempotent; run at every start)."""
        from storage.migrations import upgrade

        self.check()
        upgrade(self)

    def dispose(self) -> None:
        self.engine.dispose()
