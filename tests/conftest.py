"""Shared fixtures: a fresh database per test, on SQLite and (when configured) PostgreSQL.

PostgreSQL runs only when ``SENTINELLA_TEST_POSTGRES_URL`` is set (``.ci/run`` sets it); without
it the PostgreSQL half of every storage test is skipped, cleanly and visibly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.db import Database
from storage.records import ROME

POSTGRES_URL = os.environ.get("SENTINELLA_TEST_POSTGRES_URL", "")

#: The moment the recorded samples describe: tests run on this clock, never the system's.
SAMPLES_NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)


def _reset_postgres(url: str) -> None:
    db = Database(url)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.dispose()


def make_database(kind: str, tmp_path: Path) -> Database:
    if kind == "postgres":
        if not POSTGRES_URL:
            pytest.skip("PostgreSQL not configured (set SENTINELLA_TEST_POSTGRES_URL)")
        _reset_postgres(POSTGRES_URL)
        db = Database(POSTGRES_URL)
    else:
        db = Database(f"sqlite:///{tmp_path / 'sentinella.db'}")
    db.upgrade()
    return db


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database: once on SQLite, once on PostgreSQL."""
    database = make_database(request.param, tmp_path)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty SQLite database, for tests whose logic does not depend on the engine."""
    database = make_database("sqlite", tmp_path)
    yield database
    database.dispose()


@pytest.fixture
def now() -> datetime:
    return SAMPLES_NOW
