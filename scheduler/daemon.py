"""``sentinella run``: the daemon. One asyncio loop runs the APScheduler 3 jobs and the Telegram bot.

Jobs (stable ids, ``replace_existing``, ``coalesce``, ``max_instances=1``; see
:mod:`scheduler.jobs`):

* ``crawl:<source>`` — each enabled source on its own schedule. The crawl itself runs in a child
  process (``crawler.run.run_crawl`` starts one ``crawler.worker`` per source: Scrapy's reactor
  cannot restart, and a crash or hang of a crawl never touches the daemon); the daemon only
  supervises it from a worker thread. One crawl at a time: crawls due together (the start-up
  catch-up, equal schedules, an admin's ``/crawl``) queue behind one another, so the daemon and
  one crawl process are all there is — each crawl process takes about 110 MB, and four at once
  would take the daemon past its memory budget. The crawler's per-source lock keeps a CLI crawl
  and a scheduled one apart too. A crawl that stored something brings the next dispatch forward.
* ``dispatch`` — every minute: plan alerts and reminders, send what is due, tell admins.
* ``digest`` — daily at ``digest.time`` in ``digest.timezone`` (08:00 Europe/Rome by default).
* ``checks`` — every 15 minutes: deliveries or reminders overdue by more than an hour raise an
  admin notice (told once, and once on recovery).
* ``housekeeping`` — daily: old crawl runs and settled change/reminder rows are pruned.

At start-up, runs missed while the daemon was down are coalesced into one run now (a source
whose schedule fell due since its last run; the digest if a slot passed since the last one).

**Several daemons on one PostgreSQL database** (failover, or more hands for crawling) cooperate
through :mod:`storage.leases`:

* every daemon is a *worker* renewing a heartbeat every ``delivery.renew_seconds``; one that
  misses it for ``delivery.lease_seconds`` is dead;
* one daemon holds the ``sender`` lease (elected: whoever takes it first when it is free): it
  alone polls the bot (two ``getUpdates`` at once conflict) and runs ``dispatch`` and the digest,
  so Telegram's limits (30 messages a second, one a second per chat, 20 a minute per group)
  are kept by one rate limiter in one process. When it dies another takes the lease within
  ``lease_seconds + renew_seconds``, starts polling, releases the dead one's claimed rows and
  sends them;
* ``crawl:<source>``, ``checks`` and ``housekeeping`` fire in every daemon, and the one that
  records the run for that due time first runs it (:func:`scheduler.jobs.previous_fire`);
  the others skip it.

On SQLite the daemon holds a lock file beside the database; a second daemon on the same file
stops at once, saying so (SQLite serves one daemon; run several on PostgreSQL).

The scheduler fires jobs on the machine's clock; what is due is decided on the program's clock
(:func:`scheduler.settings.make_clock`, which may be pinned by the ``now`` setting).

SIGTERM/SIGINT: the scheduler stops taking work; the dispatcher's ``stop`` event makes in-flight
sends finish or go back to the outbox; a running crawl process is killed and its run recorded as
failed, and crawls still queued do not start; the bot stops polling. The process exits 0 within
``SHUTDOWN_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from telegram.error import InvalidToken, NetworkError, TimedOut

from crawler.run import SourceSummary
from notifier import catalogue
from notifier.bot.app import build_application, cancel_background, publish_commands
from notifier.bot.common import BotServices
from notifier.delivery.channels import Channel, EmailChannel, TelegramChannel
from notifier.delivery.digest import digest_senders, run_digest
from scheduler.crawling import crawl
from scheduler.delivery import close_channels, delivery_round, make_channels
from scheduler.jobs import (
    MISFIRE_GRACE,
    digest_missed,
    digest_trigger,
    every,
    missed_while_down,
    previous_fire,
    trigger_for,
)
from scheduler.settings import Settings, SettingsError, make_wall_clock
from storage import housekeeping, leases, notices, outbox, planning, sources
from storage.calls import events_after
from storage.db import Database, DatabaseError
from web.access import WebAccess
from web.app import create_app
from web.server import EmbeddedServer, server_config

log = logging.getLogger("sentinella.daemon")

#: The whole shutdown (sends finishing, crawls terminated, bot stopped) fits in this.
SHUTDOWN_SECONDS = 8.0
#: Retrying a bot start-up while the Bot API is unreachable: first wait, doubled up to the ceiling.
BOT_RETRY_FIRST = 30.0
BOT_RETRY_MAX = 600.0
#: Deliveries due longer ago than this and still unsent make an admin notice.
OVERDUE_AFTER = timedelta(hours=1)


@dataclass
class DaemonState:
    """What /stato and the logs show of the running daemon."""

    started_at: datetime
    last_jobs: dict[str, str] = field(default_factory=dict)
    crawls_running: set[str] = field(default_factory=set)
    #: Jobs run here, and due runs skipped because another daemon had them, by job id.
    ran: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)


class Daemon:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Callable[[], datetime],
        *,
        config_path: str | None = None,
        console: Any = None,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        # APScheduler fires jobs on the machine's clock, whatever the program's clock says (it
        # may be pinned to the recordings' date): a job that must run at once is given the
        # machine's "now", while what is due (catch-up) is decided on the program's clock.
        self.wall_clock = wall_clock or make_wall_clock(settings)
        self.config_path = config_path
        self.console = console
        self.stop = asyncio.Event()
        self.state = DaemonState(started_at=clock())
        self._tasks: set[asyncio.Task[Any]] = set()
        self._bot_task: asyncio.Task[None] | None = None
        #: One crawl at a time (see the module docstring).
        self._crawl_lock = asyncio.Lock()
        #: Set at shutdown: the crawl running in its thread kills its process and returns.
        self._crawl_stop = threading.Event()
        #: A dispatch round is running; another was asked for meanwhile (see dispatch_soon).
        self._dispatching = False
        self._dispatch_again = False
        self.channels: dict[str, Channel] = {}
        self.scheduler: AsyncIOScheduler | None = None
        self._web: EmbeddedServer | None = None
        self._web_task: asyncio.Task[None] | None = None

        #: This process among the daemons sharing the database (see the module docstring).
        self.worker_id = leases.new_worker_id()
        self.sender = False
        #: ``time.monotonic()`` until which the sender lease is surely ours (renewed in time).
        self._sender_until = 0.0
        #: Set when sending must stop: shutdown, or the sender lease lost.
        self._send_stop = asyncio.Event()
        self._send_stop.set()
        self._app: Any = None
        self._bot_ready = False
        self._polling = False
        self._coordinator: asyncio.Task[None] | None = None

    def holds_sender(self) -> bool:
        return self.sender and time.monotonic() < self._sender_until

    # --- jobs ---------------------------------------------------------------------------------

    def _tracked(
        self,
        name: str,
        fn: Callable[..., Coroutine[Any, Any, Any]],
        *,
        once: bool = False,
        sender_only: bool = False,
    ) -> Callable[..., Any]:
        """Wrap a job: registered for shutdown, never raising into the scheduler.

        ``once``: the job runs once per due time across every daemon on the database; this
        process runs it only if it records the run first (see :meth:`_claim_run`).
        ``sender_only``: only the holder of the sender lease runs it (it sends messages).
        """

        async def job(*args: Any) -> None:
            if self.stop.is_set() or (sender_only and not self.holds_sender()):
                return
            due = await self._claim_run(name) if once else None
            if once and due is None:
                return
            task = asyncio.current_task()
            if task is not None:
                self._tasks.add(task)
            outcome = "ok"
            try:
                await fn(*args)
                self.state.ran[name] += 1
                self.state.last_jobs[name] = f"ok {self.clock().isoformat(timespec='seconds')}"
            except asyncio.CancelledError:
                if not self.stop.is_set():
                    raise
                # Cut short at shutdown after its grace time: said once, without a traceback
                # (the job's own clean-up, e.g. rows back to the outbox, has run).
                log.warning("job %s was stopped at shutdown", name)
                self.state.last_jobs[name] = outcome = "stopped"
            except Exception as exc:
                # A crashed job is logged and retried on its next run; the daemon goes on.
                log.exception("job %s failed", name)
                self.state.last_jobs[name] = outcome = f"failed {type(exc).__name__}"
            finally:
                if task is not None:
                    self._tasks.discard(task)
                if due is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.to_thread(
                            leases.finish_run,
                            self.db,
                            name,
                            due,
                            self.worker_id,
                            now=self.wall_clock(),
                            outcome=outcome,
                        )

        job.__name__ = f"job_{name}"
        return job

    async def _claim_run(self, name: str) -> datetime | None:
        """The due time this run of ``name`` stands for, if this process got it; else None."""
        scheduler = self.scheduler
        job = scheduler.get_job(name) if scheduler is not None else None
        now = self.wall_clock()
        due = previous_fire(job.trigger, now) if job is not None else None
        # A catch-up before the trigger's first time stands for "now".
        due = due or now.replace(microsecond=0)
        try:
            mine = await asyncio.to_thread(leases.claim_run, self.db, name, due, self.worker_id, now=now)
        except Exception:
            log.exception("job %s: could not record its run; skipped", name)
            return None
        if not mine:
            self.state.skipped[name] += 1
            self.state.last_jobs[name] = f"run elsewhere (due {due.isoformat(timespec='seconds')})"
            log.info("job %s due %s: another daemon runs it", name, due.isoformat(timespec="seconds"))
            return None
        log.info("job %s due %s: running here", name, due.isoformat(timespec="seconds"))
        return due

    async def run_crawl(self, names: Sequence[str]) -> list[SourceSummary]:
        """Crawl the named sources (all enabled ones when empty), after any crawl running now;
        their summaries (never raises for a source's failure: it is in its summary)."""
        key = ",".join(names) or "all"
        async with self._crawl_lock:
            if self._crawl_stop.is_set():
                return []
            self.state.crawls_running.add(key)
            try:
                # Blocking (it supervises the crawl process): a worker thread, off the loop the
                # bot and the dispatcher share.
                summaries = await asyncio.to_thread(
                    crawl, self.settings, self.db, list(names), now=self.clock(), stop=self._crawl_stop
                )
            finally:
                self.state.crawls_running.discard(key)
        for s in summaries:
            log.info(
                "crawl %s: %s, %d new, %d changed, %d errors", s.name, s.outcome, s.new, s.changed, s.errors
            )
        if any(s.new or s.changed or s.notify for s in summaries):
            self.dispatch_soon()
        return summaries

    def dispatch_soon(self) -> None:
        """Bring the next dispatch forward to now: what a crawl found goes out at once, not up
        to a minute later. A dispatch running now is not doubled (``max_instances=1``): it runs
        one more round when it ends. (Only the sender dispatches; another daemon's crawl
        results go out at the sender's next minute.)"""
        scheduler = self.scheduler
        if scheduler is None or not scheduler.running or self.stop.is_set() or not self.sender:
            return
        if self._dispatching:
            self._dispatch_again = True
            return
        with contextlib.suppress(JobLookupError):
            scheduler.modify_job("dispatch", next_run_time=self.wall_clock())

    async def _crawl_job(self, name: str) -> None:
        await self.run_crawl([name])

    async def _dispatch_job(self) -> None:
        self._dispatching = True
        try:
            while True:
                self._dispatch_again = False
                result = await delivery_round(
                    self.settings,
                    self.db,
                    self.channels,
                    now=self.clock(),
                    stop=self._send_stop,
                    owner=self.worker_id,
                )
                if result.dispatch.claimed or result.plan.enqueued:
                    log.info(
                        "delivery: planned %d, reminders %d; %s",
                        result.plan.enqueued,
                        result.reminders,
                        result.dispatch.summary(),
                    )
                # A full batch means more is due: go on at once rather than a minute later.
                more = self._dispatch_again or result.dispatch.claimed >= self.settings.delivery.batch_limit
                if not more or self._send_stop.is_set() or not self.holds_sender():
                    break
        finally:
            self._dispatching = False

    async def _digest_job(self) -> None:
        senders = digest_senders(self.channels, email=self.settings.email, config=self.settings.digest)
        report = await run_digest(
            self.db,
            now=self.clock(),
            config=self.settings.digest,
            senders=senders,
            matching=self.settings.matching,
        )
        log.info("digest: %s sent, %s failed %s", len(report.sent), len(report.failed), report.skipped)

    async def _checks_job(self) -> None:
        now = self.clock()
        # Only channels that can send: rows of an unconfigured channel wait for it, not late
        # (with nothing configured the console stands in for every channel).
        real = {n for n, ch in self.channels.items() if isinstance(ch, (TelegramChannel, EmailChannel))}
        live = sorted(real | {"console"}) if real else list(self.channels)
        counts = await asyncio.to_thread(outbox.overdue, self.db, before=now - OVERDUE_AFTER, channels=live)
        for kind in ("alerts", "reminders"):
            key = f"overdue:{kind}"
            if counts[kind]:
                message = catalogue.notice(f"notice.overdue_{kind}", n=counts[kind])
                await asyncio.to_thread(notices.raise_notice, self.db, key, message, now=now)
            else:
                recovered = catalogue.notice(f"notice.overdue_{kind}_cleared")
                await asyncio.to_thread(notices.clear_notice, self.db, key, now=now, message=recovered)

    async def _housekeeping_job(self) -> None:
        before = self.clock() - timedelta(days=self.settings.housekeeping.keep_days)
        pruned = await asyncio.to_thread(housekeeping.prune, self.db, before=before)
        pruned["job runs"] = await asyncio.to_thread(leases.prune_runs, self.db, before=before)
        pruned["dead workers"] = await asyncio.to_thread(leases.forget_dead, self.db)
        log.info("housekeeping: pruned %s", pruned)

    # --- status for /stato ---------------------------------------------------------------------

    def status(self) -> Mapping[str, Any]:
        return {
            "started": self.state.started_at.isoformat(timespec="seconds"),
            "process": self.worker_id,
            "role": "sender (bot and deliveries)" if self.holds_sender() else "standby (scheduled jobs)",
            "crawls running": ", ".join(sorted(self.state.crawls_running)) or "-",
            "settings": self.config_path or "environment and defaults",
            **{f"job {k}": v for k, v in sorted(self.state.last_jobs.items())},
        }

    # --- set-up --------------------------------------------------------------------------------

    def schedule_jobs(
        self, scheduler: AsyncIOScheduler, now: datetime, *, fire_now: datetime | None = None
    ) -> list[str]:
        """Add every job; returns the ids of the jobs that run now to catch up.

        ``now`` is the program's clock (what fell due while the daemon was down); ``fire_now``
        the scheduler's (the machine's) time at which those jobs and the first dispatch run.
        Adding again replaces the jobs of the same ids.
        """
        tz = self.settings.tz
        fire_now = fire_now if fire_now is not None else self.wall_clock()
        catch_up: list[str] = []
        common: dict[str, Any] = {"replace_existing": True, "coalesce": True, "max_instances": 1}
        for name in self.settings.sources.enabled():
            config = getattr(self.settings.sources, name)
            state = sources.get_source(self.db, name)
            extra: dict[str, Any] = {}
            if missed_while_down(state.last_run_at, config.schedule, now, tz):
                extra["next_run_time"] = fire_now
                catch_up.append(f"crawl:{name}")
            scheduler.add_job(
                self._tracked(f"crawl:{name}", self._crawl_job, once=True),
                trigger_for(config.schedule, tz),
                args=[name],
                id=f"crawl:{name}",
                name=f"crawl:{name}",
                misfire_grace_time=MISFIRE_GRACE["crawl"],
                **common,
                **extra,
            )
        scheduler.add_job(
            self._tracked("dispatch", self._dispatch_job, sender_only=True),
            IntervalTrigger(seconds=60, timezone=tz),
            id="dispatch",
            name="dispatch",
            next_run_time=fire_now,
            misfire_grace_time=MISFIRE_GRACE["dispatch"],
            **common,
        )
        digest = self.settings.digest
        if digest.enabled:
            extra = {}
            if digest_missed(planning.last_digest_end(self.db), now, digest.time, digest.tz):
                extra["next_run_time"] = fire_now
                catch_up.append("digest")
            scheduler.add_job(
                # It may go out on Telegram: only the sender sends. A digest missed while no daemon
                # was the sender is caught up by the next one (see _become_sender).
                self._tracked("digest", self._digest_job, once=True, sender_only=True),
                digest_trigger(digest.time, digest.tz),
                id="digest",
                name="digest",
                misfire_grace_time=MISFIRE_GRACE["digest"],
                **common,
                **extra,
            )
        scheduler.add_job(
            self._tracked("checks", self._checks_job, once=True),
            every(15 * 60),
            id="checks",
            name="checks",
            misfire_grace_time=MISFIRE_GRACE["checks"],
            **common,
        )
        scheduler.add_job(
            self._tracked("housekeeping", self._housekeeping_job, once=True),
            CronTrigger(hour=3, minute=30, timezone=tz),
            id="housekeeping",
            name="housekeeping",
            misfire_grace_time=MISFIRE_GRACE["housekeeping"],
            **common,
        )
        return catch_up

    def _warn_unconfigured(self) -> None:
        if not self.settings.telegram.enabled:
            log.warning(
                "no Telegram bot token set (telegram.token): the bot is off and alerts go to the console"
            )
        if not self.settings.email.enabled:
            log.warning(
                "no SMTP server set (email.host): e-mail alerts and the e-mail digest go to the console"
            )

    async def run(self) -> int:
        # SQLite serves one daemon: a second one on the same file says so and stops.
        with self.db.file_lock("daemon", wait=False) as alone:
            if not alone:
                raise DatabaseError(
                    f"another `sentinella run` is using {self.db.safe_url}: SQLite serves one daemon "
                    "(run several on PostgreSQL; see the README, 'Running more than one daemon')"
                )
            return await self._run()

    async def _run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._request_stop)
        self._warn_unconfigured()
        app = None
        if self.settings.telegram.enabled:
            services = BotServices(
                start_crawl=self.run_crawl,
                status=self.status,
                sources=tuple(self.settings.sources.enabled()),
                matching=self.settings.matching,
                reminders=self.settings.reminders,
                web=self._web_access(),
            )
            app = build_application(
                db=self.db, config=self.settings.telegram, clock=self.clock, services=services
            )
        self._app = app
        self.channels = make_channels(self.settings, console=self.console)
        if app is not None:
            # Alerts and bot replies share one bot, so one rate limiter paces them all.
            superseded = self.channels.get("telegram")
            self.channels["telegram"] = TelegramChannel(self.settings.telegram, bot=app.bot)
            if superseded is not None:
                await superseded.aclose()
            try:
                started = await self._start_bot(app)
            except SettingsError:
                with contextlib.suppress(Exception):
                    await app.shutdown()
                await close_channels(self.channels)
                raise
            if not started:
                # The Bot API cannot be reached now: crawls and e-mail go on, the bot follows.
                self._bot_task = asyncio.create_task(self._keep_starting_bot(app))
        self._start_web()

        others = await asyncio.to_thread(leases.live_workers, self.db, kind="run")
        if others:
            log.info(
                "%d other daemon(s) share this database: %s", len(others), ", ".join(w.id for w in others)
            )
        scheduler = AsyncIOScheduler(timezone=self.settings.tz)
        self.scheduler = scheduler
        catch_up = self.schedule_jobs(scheduler, self.clock())
        scheduler.start()
        log.info(
            "Sentinella is running as %s: %d job(s)%s",
            self.worker_id,
            len(scheduler.get_jobs()),
            f"; catching up: {', '.join(catch_up)}" if catch_up else "",
        )
        # The first round (heartbeat, sender lease) before anything else is decided.
        await self._coordinate_once()
        self._coordinator = asyncio.create_task(self._coordinate())
        await self.stop.wait()
        log.info("stopping")
        await self._shutdown(app)
        return 0

    def _web_access(self) -> WebAccess | None:
        web = self.settings.web
        return WebAccess(self.db, web, self.clock) if web.enabled else None

    def _start_web(self) -> None:
        """Serve the web app in this event loop when ``[web] enabled`` (a port already taken is
        logged and the daemon goes on without it)."""
        web = self.settings.web
        if not web.enabled:
            return
        app = create_app(self.db, web, clock=self.clock, matching=self.settings.matching)
        self._web = EmbeddedServer(server_config(app, web))

        async def serve() -> None:
            assert self._web is not None
            try:
                await self._web.serve()
            except (OSError, SystemExit) as exc:
                # uvicorn exits (SystemExit) when it cannot bind.
                log.error("the web app could not start on %s:%s: %s", web.host, web.port, exc)

        self._web_task = asyncio.create_task(serve())
        log.info("the web app is served on %s:%s (links use %s)", web.host, web.port, web.base_url)

    def _request_stop(self) -> None:
        self.stop.set()
        self._send_stop.set()

    # --- several daemons: heartbeat and the sender lease ------------------------------------

    async def _coordinate(self) -> None:
        every_s = self.settings.delivery.renew_seconds
        while not self.stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=every_s)
            if self.stop.is_set():
                return
            await self._coordinate_once()

    async def _coordinate_once(self) -> None:
        """Renew this process's heartbeat; take or renew the sender lease; act on a change."""
        ttl = self.settings.delivery.lease_seconds
        started = time.monotonic()
        try:
            await asyncio.to_thread(leases.heartbeat, self.db, self.worker_id, kind="run", ttl=ttl)
            held = await asyncio.to_thread(leases.acquire, self.db, leases.SENDER, self.worker_id, ttl=ttl)
        except Exception as exc:
            # The database is unreachable: the lease may lapse meanwhile, so the role is kept
            # only as long as it surely lasts.
            log.warning("could not renew the heartbeat and the sender lease: %s", type(exc).__name__)
            if self.sender and not self.holds_sender():
                await self._lose_sender("its lease could not be renewed in time")
            return
        if held:
            # Measured from before the renewal: the lease surely lasts this long.
            self._sender_until = started + ttl
            if not self.sender:
                await self._become_sender()
            elif not self._dispatching and await asyncio.to_thread(self._work_waiting):
                # Rows or events another process added (a crawl on a standby daemon, a
                # `members` command) go out within seconds, not at the next minute.
                self.dispatch_soon()
        elif self.sender:
            await self._lose_sender("another process holds the sender lease")

    def _work_waiting(self) -> bool:
        try:
            cursor = planning.get_cursor(self.db, planning.ALERTS_CURSOR)
            return bool(events_after(self.db, cursor, limit=1)) or outbox.any_due(self.db, now=self.clock())
        except Exception:
            return False

    async def _become_sender(self) -> None:
        self.sender = True
        self._send_stop.clear()
        log.info("%s is now the sender: it polls the bot and sends alerts and notices", self.worker_id)
        if self._app is not None and self._bot_ready and not self._polling:
            try:
                await self._start_polling(self._app)
            except Exception:
                log.exception("the bot could not start polling; the next renewal tries again")
                await self._lose_sender("the bot could not start", release=True)
                return
        scheduler = self.scheduler
        if scheduler is not None and scheduler.running:
            digest = self.settings.digest
            last = await asyncio.to_thread(planning.last_digest_end, self.db)
            if digest.enabled and digest_missed(last, self.clock(), digest.time, digest.tz):
                with contextlib.suppress(JobLookupError):
                    scheduler.modify_job("digest", next_run_time=self.wall_clock())
        # Rows the previous sender left claimed go back and out now (dispatch releases them).
        self.dispatch_soon()

    async def _lose_sender(self, why: str, *, release: bool = False) -> None:
        self.sender = False
        self._send_stop.set()
        log.warning("%s is no longer the sender: %s", self.worker_id, why)
        if release:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(leases.release, self.db, leases.SENDER, self.worker_id)
        if self._app is not None and self._polling:
            await self._stop_polling(self._app)

    # --- the bot ---------------------------------------------------------------------------

    async def _start_bot(self, app: Any) -> bool:
        """Initialise the bot (and start polling, if this process is the sender); False when
        the Bot API cannot be reached now.

        A token the Bot API rejects stops the daemon with a message that does not quote it
        (python-telegram-bot's own message does).
        """
        try:
            await app.initialize()
        except InvalidToken:
            raise SettingsError(
                "setting 'telegram.token': the Telegram Bot API rejected the bot token"
            ) from None
        except (NetworkError, TimedOut) as exc:
            log.warning(
                "the Telegram Bot API cannot be reached (%s); the bot will start when it can",
                type(exc).__name__,
            )
            return False
        self._bot_ready = True
        if self.holds_sender() and not self._polling:
            await self._start_polling(app)
        return True

    async def _start_polling(self, app: Any) -> None:
        """Start taking updates (long polling, or the webhook): the sender alone does it."""
        await publish_commands(app.bot)
        await app.start()
        assert app.updater is not None
        tg = self.settings.telegram
        if tg.webhook_url:
            await app.updater.start_webhook(
                listen=tg.webhook_listen,
                port=tg.webhook_port,
                url_path=urlsplit(tg.webhook_url).path.lstrip("/"),
                webhook_url=tg.webhook_url,
                secret_token=tg.webhook_secret_token.get_secret_value() if tg.webhook_secret_token else None,
            )
        else:
            await app.updater.start_polling(drop_pending_updates=False)
        self._polling = True
        log.info("the Telegram bot is running")

    async def _stop_polling(self, app: Any) -> None:
        self._polling = False
        with contextlib.suppress(Exception):
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
        log.info("the Telegram bot stopped taking updates here")

    async def _keep_starting_bot(self, app: Any) -> None:
        delay = BOT_RETRY_FIRST
        while not self.stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=delay)
            if self.stop.is_set():
                return
            try:
                if await self._start_bot(app):
                    return
            except SettingsError as exc:
                log.error("%s; the bot stays off", exc)
                return
            delay = min(delay * 2, BOT_RETRY_MAX)

    async def _shutdown(self, app: Any) -> None:
        self._send_stop.set()
        # Pause, not shut down, first: APScheduler's shutdown cancels the jobs running on the
        # loop at once, and in-flight sends must get their chance to finish.
        if self.scheduler is not None:
            self.scheduler.pause()
        deadline = asyncio.get_running_loop().time() + SHUTDOWN_SECONDS
        # The crawl thread notices within a second, kills its process and records the run as
        # failed; the thread is waited for when the loop closes.
        self._crawl_stop.set()
        for helper in (self._bot_task, self._coordinator):
            if helper is not None:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
        if app is not None:
            await cancel_background(app)
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            remaining = max(0.5, deadline - asyncio.get_running_loop().time() - 2.0)
            _, still = await asyncio.wait(pending, timeout=remaining)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=1.0)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        if app is not None:
            with contextlib.suppress(Exception):
                if self._polling:
                    await self._stop_polling(app)
                await app.shutdown()
        if self._web is not None and self._web_task is not None:
            self._web.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self._web_task, timeout=max(0.5, deadline - asyncio.get_running_loop().time())
                )
        await close_channels(self.channels)
        # Gone cleanly: the lease is free at once for another daemon, not after it expires.
        try:
            await asyncio.to_thread(leases.unregister, self.db, self.worker_id)
        except Exception:
            log.warning("could not unregister %s; its lease expires by itself", self.worker_id)


def run_daemon(settings: Settings, db: Database, clock: Callable[[], datetime], **kwargs: Any) -> int:
    return asyncio.run(Daemon(settings, db, clock, **kwargs).run())
