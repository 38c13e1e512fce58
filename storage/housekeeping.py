"""Pruning what is only history: old crawl runs, settled outbox rows and expired sign-in links.

Calls and their events are never deleted (nothing is lost). A settled (sent or dead) outbox row
of a change or a reminder older than the horizon goes: the events and deadlines it stood for are
older still, so its uniqueness protects nothing any more. Rows of reason ``new`` stay: they
record who was alerted about a call, which decides who hears of its later changes (measures
can run for years).
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete

from storage.db import Database
from storage.models import AlertOutbox, CrawlRun, WebLink

_runs = cast(Table, CrawlRun.__table__)
_outbox = cast(Table, AlertOutbox.__table__)
_links = cast(Table, WebLink.__table__)


def prune(db: Database, *, before: datetime) -> dict[str, int]:
    """Delete crawl runs finished, outbox rows settled and sign-in links expired before
    ``before``; return the counts."""
    with db.engine.begin() as conn:
        runs = conn.execute(
            delete(_runs).where(_runs.c.finished_at.is_not(None), _runs.c.finished_at < before)
        ).rowcount
        rows = conn.execute(
            delete(_outbox).where(
                _outbox.c.state.in_(("sent", "dead")),
                _outbox.c.reason != "new",
                _outbox.c.created_at < before,
            )
        ).rowcount
        links = conn.execute(delete(_links).where(_links.c.expires_at < before)).rowcount
    return {"crawl_runs": int(runs), "outbox_rows": int(rows), "signin_links": int(links)}
