"""Crawls as the rest of the program starts them: the CLI, the daemon's jobs and the bot's /crawl.

Wraps :func:`crawler.run.run_crawl` (which isolates each source in its own process) with what
follows a crawl: a source that keeps failing raises an admin notice, told once; its recovery
clears it, told once too (the notifier delivers pending notices to admins).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from datetime import datetime

from crawler.run import Progress, SourceSummary, run_crawl
from notifier import catalogue
from scheduler.settings import ENV_PREFIX, Settings
from storage import notices
from storage.db import Database


def source_notice_key(name: str) -> str:
    return f"source:{name}"


def record_notices(db: Database, summaries: Sequence[SourceSummary], *, now: datetime) -> None:
    for s in summaries:
        key = source_notice_key(s.name)
        if s.notify == "failing":
            reason = f": {s.reason}" if s.reason else ""
            message = catalogue.notice(
                "notice.source_failing", source=s.name, outcome=s.outcome, reason=reason
            )
            notices.raise_notice(db, key, message, now=now)
        elif s.notify == "recovered":
            notices.clear_notice(
                db,
                key,
                now=now,
                message=catalogue.notice(
                    "notice.source_recovered", source=s.name, outcome=s.outcome, new=s.new, changed=s.changed
                ),
            )


def crawl_environment() -> dict[str, str]:
    """This process's environment without Sentinella's settings: a crawl process gets its
    whole configuration in its job, and no secret (bot token, SMTP password) has to reach it."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith(ENV_PREFIX)}


def crawl(
    settings: Settings,
    db: Database,
    sources: Sequence[str],
    *,
    now: datetime,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> list[SourceSummary]:
    """Crawl the named sources (all enabled ones when empty) and record admin notices.

    Blocking (each source runs in a child process); ``stop``, set from another thread, ends the
    running source's crawl and skips the rest (see :func:`crawler.run.run_crawl`).
    """
    summaries = run_crawl(
        db.url,
        list(sources),
        crawl=settings.crawl,
        sources_config=settings.sources,
        now=now,
        progress=progress,
        stop=stop,
        child_env=crawl_environment(),
    )
    record_notices(db, summaries, now=now)
    return summaries
