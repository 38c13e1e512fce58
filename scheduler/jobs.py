"""Schedules as APScheduler 3 triggers, and the start-up catch-up rule.

Every job has a stable id (``crawl:<source>``, ``dispatch`` — which also plans alerts and
reminders and tells admins — ``digest``, ``checks``, ``housekeeping``) and is added with ``replace_existing=True``, ``coalesce=True``,
``max_instances=1`` and a chosen ``misfire_grace_time``: a restart neither duplicates nor drops a
job, and one source never runs twice at once.

The job store is in memory: what the daemon must remember across restarts is already in the
database (each source's last run, the last digest). At start-up :func:`missed_while_down` reads
that state and runs, once, whatever fell due while the daemon was down — the coalescing that a
persistent job store would give, without pickling jobs.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from crawler.config import interval_seconds

#: Seconds a job may start late (daemon busy, machine asleep) and still run; later it is
#: coalesced into the next run.
MISFIRE_GRACE = {"crawl": 1800, "dispatch": 50, "checks": 600, "digest": 6 * 3600, "housekeeping": 3600}


def trigger_for(schedule: str, tz: ZoneInfo) -> BaseTrigger:
    """``"6h"``-style intervals and five-field cron strings (validated by the crawler config)."""
    seconds = interval_seconds(schedule)
    if seconds is not None:
        return IntervalTrigger(seconds=seconds, timezone=tz)
    return CronTrigger.from_crontab(schedule, timezone=tz)


def next_fire_after(schedule: str, after: datetime, tz: ZoneInfo) -> datetime:
    """When the schedule would next fire after ``after`` (intervals count from ``after``)."""
    seconds = interval_seconds(schedule)
    if seconds is not None:
        return after + timedelta(seconds=seconds)
    trigger = CronTrigger.from_crontab(schedule, timezone=tz)
    fire = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    assert fire is not None  # a five-field cron always fires again
    return fire


def missed_while_down(last_run_at: datetime | None, schedule: str, now: datetime, tz: ZoneInfo) -> bool:
    """Whether a run fell due since ``last_run_at`` (never run counts as due): run it once now."""
    if last_run_at is None:
        return True
    return next_fire_after(schedule, last_run_at, tz) <= now


def digest_trigger(at: time, tz: ZoneInfo) -> CronTrigger:
    """Daily at a wall-clock time in ``tz``: 08:00 stays 08:00 across the DST changes."""
    return CronTrigger(hour=at.hour, minute=at.minute, timezone=tz)


def last_digest_slot(now: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The latest scheduled digest time at or before ``now``."""
    local = now.astimezone(tz)
    slot = datetime.combine(local.date(), at, tzinfo=tz)
    if slot > local:
        slot = datetime.combine(local.date() - timedelta(days=1), at, tzinfo=tz)
    return slot


def digest_missed(last_digest_at: datetime | None, now: datetime, at: time, tz: ZoneInfo) -> bool:
    """A digest slot passed while the daemon was down (only once a first digest exists)."""
    if last_digest_at is None:
        return False
    return last_digest_at < last_digest_slot(now, at, tz)
