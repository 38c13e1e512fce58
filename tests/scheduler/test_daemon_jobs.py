"""The daemon's schedule (:meth:`Daemon.schedule_jobs`): stable ids, replacement without duplicates,
the start-up catch-up, no overlap of one job, and what a crashed job does. No daemon process:
APScheduler's ``AsyncIOScheduler`` on the test's event loop, with a pinned program clock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from crawler.config import SOURCE_NAMES, FeedsConfig, SediaConfig, SourcesConfig
from notifier.config import DigestConfig
from scheduler.daemon import Daemon
from scheduler.jobs import MISFIRE_GRACE
from scheduler.settings import Settings
from storage import planning, sources
from storage.db import Database
from storage.records import ROME

#: The program's clock (pinned to the recordings' date) ...
NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)
#: ... and the machine's, on which APScheduler fires jobs: months apart on purpose.
WALL = datetime(2026, 11, 22, 10, 30, tzinfo=ROME)
CRAWLS = [f"crawl:{name}" for name in SOURCE_NAMES]
ALL_IDS = {*CRAWLS, "dispatch", "digest", "checks", "housekeeping"}


@pytest.fixture
def settings(sqlite_db: Database) -> Settings:
    return Settings(database_url=sqlite_db.url, now=NOW)


def as_sender(d: Daemon) -> Daemon:
    """The only daemon on its database holds the sender lease (as its first renewal would)."""
    d.sender, d._sender_until = True, float("inf")
    d._send_stop.clear()
    return d


@pytest.fixture
def daemon(settings: Settings, sqlite_db: Database) -> Iterator[Daemon]:
    yield as_sender(Daemon(settings, sqlite_db, clock=lambda: NOW, wall_clock=lambda: WALL))


def ran_at(db: Database, source: str, when: datetime) -> None:
    run_id = sources.start_run(db, source, now=when)
    sources.finish_run(db, run_id, now=when + timedelta(minutes=1), outcome="ok", seen=10)


def next_run(job: Any) -> datetime | None:
    # A job added to a scheduler not started yet has a next run time only when one was given;
    # otherwise APScheduler computes it from the trigger when it starts.
    return getattr(job, "next_run_time", None)


def test_jobs_have_stable_ids_and_the_agreed_policies(daemon: Daemon) -> None:
    scheduler = AsyncIOScheduler(timezone=ROME)
    daemon.schedule_jobs(scheduler, NOW)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == ALL_IDS
    for job in jobs.values():
        assert job.name == job.id
        assert job.max_instances == 1
        assert job.coalesce is True
    assert jobs["crawl:sedia"].misfire_grace_time == MISFIRE_GRACE["crawl"]
    assert jobs["digest"].misfire_grace_time == MISFIRE_GRACE["digest"]
    assert jobs["crawl:sedia"].args == ("sedia",)


def test_disabled_sources_and_digest_get_no_job(sqlite_db: Database) -> None:
    settings = Settings(
        database_url=sqlite_db.url,
        sources=SourcesConfig(feeds=FeedsConfig(enabled=False), sedia=SediaConfig(enabled=False)),
        digest=DigestConfig(enabled=False),
    )
    scheduler = AsyncIOScheduler(timezone=ROME)
    Daemon(settings, sqlite_db, clock=lambda: NOW, wall_clock=lambda: WALL).schedule_jobs(scheduler, NOW)
    assert {job.id for job in scheduler.get_jobs()} == {
        "crawl:lombardia",
        "crawl:incentivi",
        "crawl:unioncamere",
        "crawl:openinnovation",
        "crawl:burl",
        "dispatch",
        "checks",
        "housekeeping",
    }


def test_runs_missed_while_down_run_once_at_start_on_the_machine_clock(
    daemon: Daemon, sqlite_db: Database
) -> None:
    ran_at(sqlite_db, "lombardia", NOW - timedelta(hours=1))  # 6 h schedule: not due yet
    ran_at(sqlite_db, "sedia", NOW - timedelta(days=2))  # missed eight runs: one catch-up
    ran_at(sqlite_db, "incentivi", NOW - timedelta(hours=6, minutes=1))  # just due
    # feeds and the three sources after it never ran: due.
    planning.record_digest(
        sqlite_db,
        made_at=NOW - timedelta(days=2),
        period_start=NOW - timedelta(days=3),
        period_end=NOW - timedelta(days=2),
        sent=True,
        summary={},
    )
    scheduler = AsyncIOScheduler(timezone=ROME)

    catch_up = daemon.schedule_jobs(scheduler, NOW)

    assert catch_up == [
        "crawl:sedia",
        "crawl:incentivi",
        "crawl:feeds",
        "crawl:unioncamere",
        "crawl:openinnovation",
        "crawl:burl",
        "digest",
    ]
    jobs = {job.id: job for job in scheduler.get_jobs()}
    # Catch-up runs (and the first dispatch) are due now on the machine's clock: the program's
    # clock is pinned months earlier, which APScheduler would count as a run missed long ago.
    for job_id in [*catch_up, "dispatch"]:
        assert next_run(jobs[job_id]) == WALL, job_id
    for job_id in ("crawl:lombardia", "checks", "housekeeping"):
        assert next_run(jobs[job_id]) is None, job_id


def test_no_digest_catch_up_before_the_first_digest(daemon: Daemon) -> None:
    scheduler = AsyncIOScheduler(timezone=ROME)
    assert "digest" not in daemon.schedule_jobs(scheduler, NOW)


async def test_adding_again_replaces_the_jobs_without_duplicates(daemon: Daemon) -> None:
    scheduler = AsyncIOScheduler(timezone=ROME)
    daemon.schedule_jobs(scheduler, NOW)
    daemon.schedule_jobs(scheduler, NOW)  # before start: the later ones win when it starts
    scheduler.start(paused=True)
    try:
        first = {job.id: job.func for job in scheduler.get_jobs()}
        assert len(first) == len(scheduler.get_jobs()) == len(ALL_IDS)
        daemon.schedule_jobs(scheduler, NOW)  # running: replaced in place
        jobs = scheduler.get_jobs()
        assert sorted(job.id for job in jobs) == sorted(ALL_IDS)
        assert all(job.func is not first[job.id] for job in jobs)
    finally:
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)


async def test_one_job_never_runs_twice_at_once(settings: Settings, sqlite_db: Database) -> None:
    # The machine's real clock here: the scheduler really runs the job.
    daemon = Daemon(settings, sqlite_db, clock=lambda: NOW)
    started: list[str] = []
    release = asyncio.Event()

    async def slow_crawl(name: str) -> None:
        started.append(name)
        await release.wait()

    daemon._crawl_job = slow_crawl  # type: ignore[method-assign]
    refused: list[JobEvent] = []
    scheduler = AsyncIOScheduler(timezone=ROME)
    scheduler.add_listener(refused.append, EVENT_JOB_MAX_INSTANCES)
    daemon.scheduler = scheduler
    daemon.schedule_jobs(scheduler, NOW)
    for job in scheduler.get_jobs():
        if job.id != "crawl:sedia":
            scheduler.remove_job(job.id)
    scheduler.start()
    try:
        await until(lambda: started == ["sedia"])
        # Due again while the first run is still going: refused, not started twice.
        scheduler.modify_job("crawl:sedia", next_run_time=datetime.now(ROME))
        await until(lambda: bool(refused))
        assert started == ["sedia"]
        assert refused[0].job_id == "crawl:sedia"
    finally:
        release.set()
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)


async def test_a_crashed_job_is_logged_and_the_next_runs(daemon: Daemon) -> None:
    calls = 0

    async def crash() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    job = daemon._tracked("dispatch", crash)
    await job()
    await job()
    assert calls == 2
    assert daemon.state.last_jobs["dispatch"] == "failed RuntimeError"
    daemon.stop.set()
    await job()  # stopping: no new work starts
    assert calls == 2


async def test_a_crawl_that_found_something_brings_the_dispatch_forward(daemon: Daemon) -> None:
    scheduler = AsyncIOScheduler(timezone=ROME)
    daemon.scheduler = scheduler
    daemon.schedule_jobs(scheduler, NOW, fire_now=WALL + timedelta(minutes=5))
    scheduler.start(paused=True)
    try:
        assert scheduler.get_job("dispatch").next_run_time == WALL + timedelta(minutes=5)
        daemon.dispatch_soon()
        assert scheduler.get_job("dispatch").next_run_time == WALL
        daemon.stop.set()
        scheduler.modify_job("dispatch", next_run_time=WALL + timedelta(minutes=9))
        daemon.dispatch_soon()  # stopping: left alone
        assert scheduler.get_job("dispatch").next_run_time == WALL + timedelta(minutes=9)
    finally:
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)


async def until(predicate: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


async def test_a_dispatch_asked_for_while_one_runs_runs_once_more(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler = AsyncIOScheduler(timezone=ROME)
    daemon.scheduler = scheduler
    daemon.schedule_jobs(scheduler, NOW)
    scheduler.start(paused=True)
    rounds = 0

    async def delivery_round(*args: Any, **kwargs: Any) -> Any:
        nonlocal rounds
        rounds += 1
        if rounds == 1:
            daemon.dispatch_soon()  # a crawl ends while this round is sending
        plan = SimpleNamespace(enqueued=0)
        return SimpleNamespace(plan=plan, reminders=0, dispatch=SimpleNamespace(claimed=0))

    monkeypatch.setattr("scheduler.daemon.delivery_round", delivery_round)
    try:
        await daemon._dispatch_job()
        assert rounds == 2
        await daemon._dispatch_job()
        assert rounds == 3
    finally:
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)


async def test_crawls_run_one_at_a_time_and_queued_ones_are_dropped_at_shutdown(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    running: list[list[str]] = []
    most = 0
    release = threading.Event()

    def crawl(settings: Any, db: Any, names: list[str], *, now: datetime, stop: threading.Event) -> list[Any]:
        nonlocal most
        calls.append(names)
        running.append(names)
        most = max(most, len(running))
        try:
            release.wait(10)
        finally:
            running.remove(names)
        return []

    monkeypatch.setattr("scheduler.daemon.crawl", crawl)
    first = asyncio.create_task(daemon.run_crawl(["sedia"]))
    second = asyncio.create_task(daemon.run_crawl(["feeds"]))
    await until(lambda: running == [["sedia"]])
    await asyncio.sleep(0.05)
    assert running == [["sedia"]]  # the second waits its turn
    release.set()
    await asyncio.wait_for(asyncio.gather(first, second), 10)
    assert calls == [["sedia"], ["feeds"]] and most == 1

    release.clear()
    third = asyncio.create_task(daemon.run_crawl(["lombardia"]))
    queued = asyncio.create_task(daemon.run_crawl(["incentivi"]))
    await until(lambda: running == [["lombardia"]])
    daemon._crawl_stop.set()  # shutting down: the queued crawl never starts
    release.set()
    assert await asyncio.wait_for(queued, 10) == []
    await third
    assert calls == [["sedia"], ["feeds"], ["lombardia"]]


async def test_shutdown_lets_a_running_job_finish_and_cuts_a_stuck_one_short(
    settings: Settings, sqlite_db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The machine's real clock here: the scheduler really runs the jobs.
    daemon = as_sender(Daemon(settings, sqlite_db, clock=lambda: NOW))
    started: set[str] = set()
    finished: set[str] = set()

    async def dispatch() -> None:  # a send in flight: finishes once told to stop
        started.add("dispatch")
        await daemon.stop.wait()
        await asyncio.sleep(0.05)
        finished.add("dispatch")

    async def stuck(name: str) -> None:  # ignores the stop
        started.add(name)
        await asyncio.Event().wait()
        finished.add(name)

    daemon._dispatch_job = dispatch  # type: ignore[method-assign]
    daemon._crawl_job = stuck  # type: ignore[method-assign]
    monkeypatch.setattr("scheduler.daemon.SHUTDOWN_SECONDS", 2.6)  # 0.6 s of grace
    scheduler = AsyncIOScheduler(timezone=ROME)
    daemon.scheduler = scheduler
    daemon.schedule_jobs(scheduler, NOW)  # no source ever ran: every crawl catches up now
    for job in scheduler.get_jobs():
        if job.id not in ("dispatch", "crawl:sedia"):
            scheduler.remove_job(job.id)
    scheduler.start()
    await until(lambda: started == {"dispatch", "sedia"})

    daemon.stop.set()
    await daemon._shutdown(None)
    await asyncio.sleep(0)

    assert finished == {"dispatch"}
    assert daemon.state.last_jobs["crawl:sedia"] == "stopped"
    assert daemon.state.last_jobs["dispatch"].startswith("ok")
    assert not [r for r in caplog.records if r.exc_info]
