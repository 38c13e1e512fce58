"""Admin notices: told once when raised, once when cleared."""

from __future__ import annotations

from datetime import datetime, timedelta

from storage.db import Database
from storage.notices import clear_notice, mark_notified, pending_notices, raise_notice


def test_raise_tell_clear_tell(db: Database, now: datetime) -> None:
    assert raise_notice(db, "source:lombardia", "3 failed runs", now=now)
    assert [(n.key, n.active, n.message) for n in pending_notices(db)] == [
        ("source:lombardia", True, "3 failed runs")
    ]
    mark_notified(db, ["source:lombardia"], now=now)
    assert pending_notices(db) == []

    assert not raise_notice(db, "source:lombardia", "4 failed runs", now=now + timedelta(hours=1))
    assert pending_notices(db) == []  # already told

    assert clear_notice(db, "source:lombardia", now=now + timedelta(hours=2))
    (cleared,) = pending_notices(db)
    assert (cleared.active, cleared.message, cleared.cleared_at) == (
        False,
        "4 failed runs",
        now + timedelta(hours=2),
    )
    mark_notified(db, ["source:lombardia"], now=now + timedelta(hours=2))
    assert pending_notices(db) == []
    assert not clear_notice(db, "source:lombardia", now=now + timedelta(hours=3))

    assert raise_notice(db, "source:lombardia", "again", now=now + timedelta(hours=4))
    assert [n.active for n in pending_notices(db)] == [True]


def test_cleared_before_told_is_forgotten(db: Database, now: datetime) -> None:
    raise_notice(db, "outbox:dead", "12 dead alerts", now=now)
    assert not clear_notice(db, "outbox:dead", now=now + timedelta(minutes=5))
    assert pending_notices(db) == []


def test_unknown_keys_are_harmless(db: Database, now: datetime) -> None:
    assert not clear_notice(db, "nothing", now=now)
    mark_notified(db, [], now=now)
    mark_notified(db, ["nothing"], now=now)
    assert pending_notices(db) == []
