"""The migrations build exactly the schema the models describe, on both engines."""

from __future__ import annotations

import re

from sqlalchemy import inspect

from storage.db import Database
from storage.migrations import current_revision, schema_differences, upgrade
from storage.migrations.__main__ import _SEQUENCE, VERSIONS, next_revision_id
from storage.models import Base


def test_migrated_schema_equals_models(db: Database) -> None:
    assert schema_differences(db) == []
    assert set(inspect(db.engine).get_table_names()) >= set(Base.metadata.tables)


def test_upgrade_is_idempotent(db: Database) -> None:
    head = current_revision(db)
    assert head is not None
    upgrade(db)
    assert current_revision(db) == head


def test_circular_foreign_key_exists(db: Database) -> None:
    fks = inspect(db.engine).get_foreign_keys("duplicate_groups")
    assert [(fk["referred_table"], fk["constrained_columns"]) for fk in fks] == [
        ("calls", ["canonical_call_id"])
    ]


def test_revision_files_are_dated_and_numbered() -> None:
    names = sorted(p.name for p in VERSIONS.glob("*.py") if p.name != "__init__.py")
    # Numbered (``…_0001_initial.py``) or named after the branch that wrote them
    # (``2026_12_04_daemons.py``), every file starts with its date.
    assert names and all(re.match(r"^\d{4}_\d{2}_\d{2}_\w+\.py$", n) for n in names)
    numbered = [n for n in names if _SEQUENCE.match(n)]
    assert int(next_revision_id()) == len(numbered) + 1
