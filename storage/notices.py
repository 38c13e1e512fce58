"""Admin notices: a condition (a failing source, a dead outbox, a full disk) that admins are told
about once when it is raised and once when it clears, however often it is re-raised meanwhile.

``raise_notice`` on an active notice only refreshes its message; ``clear_notice`` on a notice
nobody was told about yet drops it silently (nothing to take back). :func:`pending_notices`
lists what still has to be told; whoever tells calls :func:`mark_notified`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, select, update

from storage._bulk import conflict_insert
from storage._rows import local
from storage.db import Database
from storage.models import AdminNotice
from storage.records import ROME

_notices = cast(Table, AdminNotice.__table__)

MAX_MESSAGE = 2_000


@dataclass(frozen=True)
class NoticeView:
    key: str
    active: bool
    """True: raised (tell "problem"); False: cleared (tell "recovered")."""
    message: str
    raised_at: datetime
    cleared_at: datetime | None


def raise_notice(db: Database, key: str, message: str, *, now: datetime) -> bool:
    """Raise ``key``; returns True when it was not already active (admins will be told)."""
    message = message[:MAX_MESSAGE]
    with db.engine.begin() as conn:
        inserted = conn.execute(
            conflict_insert(conn.dialect.name, _notices)
            .values(key=key, active=True, message=message, raised_at=now, cleared_at=None, notified_at=None)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(_notices.c.key)
        ).first()
        if inserted is not None:
            return True
        reraised = conn.execute(
            update(_notices)
            .where(_notices.c.key == key, _notices.c.active.is_(False))
            .values(active=True, message=message, raised_at=now, cleared_at=None, notified_at=None)
        ).rowcount
        if not reraised:
            conn.execute(update(_notices).where(_notices.c.key == key).values(message=message))
        return bool(reraised)


def clear_notice(db: Database, key: str, *, now: datetime, message: str | None = None) -> bool:
    """Clear ``key``; returns True when admins will be told it recovered.

    ``message`` says what recovered; it replaces the problem's text, which admins were told
    already (without one, the recovery repeats it).
    """
    with db.engine.begin() as conn:
        # Raised and cleared before anyone was told: forget it.
        conn.execute(
            delete(_notices).where(
                _notices.c.key == key, _notices.c.active.is_(True), _notices.c.notified_at.is_(None)
            )
        )
        cleared = conn.execute(
            update(_notices)
            .where(_notices.c.key == key, _notices.c.active.is_(True))
            .values(
                active=False,
                cleared_at=now,
                notified_at=None,
                **({} if message is None else {"message": message[:MAX_MESSAGE]}),
            )
        ).rowcount
    return bool(cleared)


def pending_notices(db: Database) -> list[NoticeView]:
    """Notices raised or cleared and not yet told, oldest first."""
    query = (
        select(_notices)
        .where(_notices.c.notified_at.is_(None))
        .order_by(_notices.c.raised_at, _notices.c.key)
    )
    with db.engine.connect() as conn:
        return [
            NoticeView(
                key=r.key,
                active=bool(r.active),
                message=r.message,
                raised_at=r.raised_at.astimezone(ROME),
                cleared_at=local(r.cleared_at),
            )
            for r in conn.execute(query)
        ]


def mark_notified(db: Database, keys: Iterable[str], *, now: datetime) -> None:
    keys = list(keys)
    if not keys:
        return
    with db.engine.begin() as conn:
        conn.execute(update(_notices).where(_notices.c.key.in_(keys)).values(notified_at=now))
