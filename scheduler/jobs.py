"""Schedules as APScheduler 3 triggers, and the start-up catch-up rule.

Every job has a stable id (``crawl:<source>``, ``dispatch`` — which also plans alerts and
reminders and tells admins — ``digest``, ``checks``, ``housekeeping``) and is added with ``replace_existing=True``, ``coalesce=True``,
``max_instances=1`` and a chosen ``misfire_grace_time``: a restart neither duplicates nor drops a
job, and one source never runs twice at once.

The job store is in memory: what the daemon must remember across restarts is already in the
database (each source's last run, the last digest). At start-up :func:`missed_while_down` reads
that state and runs, once, whatever fell due while the daemon was down — the coalescing that a
persistent job store would give, without pickling jobs.

Several daemons on one database fire the same jobs at the same times; each run is named by its
due time (:func:`previous_fire`: the latest time the trigger fires at or before now, the same in
every process), and only the process that records that run first runs it
(:func:`storage.leases.claim_run`). Intervals count from one fixed instant (:data:`ANCHOR`), not
from each daemon's start, so every daemon's "every 6 hours" falls on the same times.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from crawler.config import interval_seconds

#: Where every interval schedule starts counting: daemons started at different times share
#: their due times. UTC, so an interval is a duration, whatever the clocks of Rome do.
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)

#: Seconds a job may start late (daemon busy, machine asleep) and still run; later it is
#: coalesced into the next run.
MISFIRE_GRACE = {"crawl": 1800, "dispatch": 50, "checks": 600, "digest": 6 * 3600, "housekeeping": 3600}


def trigger_for(schedule: str, tz: ZoneInfo) -> BaseTrigger:
    """``"6h"``-style intervals and five-field cron strings (validated by the crawler config)."""
    seconds = interval_seconds(schedule)
    if seconds is not None:
        return every(seconds)
    return CronTrigger.from_crontab(schedule, timezone=tz)


def every(seconds: float) -> IntervalTrigger:
    """An interval counted from :data:`ANCHOR`."""
    return IntervalTrigger(seconds=seconds, start_date=ANCHOR, timezone=UTC)


def previous_fire(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """The latest time ``trigger`` fires at or before ``now`` (None if it never has): the due
    time a run at ``now`` stands for."""
    if isinstance(trigger, IntervalTrigger):
        start = trigger.start_date.astimezone(UTC)
        now = now.astimezone(UTC)
        if now < start:
            return None
        return start + ((now - start) // trigger.interval) * trigger.interval
    # Cron: look back over growing windows for a fire time, then walk forward to the last one.
    for lookback in (timedelta(minutes=2), timedelta(hours=2), timedelta(days=2), timedelta(days=400)):
        fire = trigger.get_next_fire_time(None, now - lookback)
        if fire is None or fire > now:
            continue
        while True:
            after = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
            if after is None or after > now:
                return fire
            fire = after
    return None


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
