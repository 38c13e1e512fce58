"""Several daemons on one database: the sender lease passes on when its holder dies, each
scheduled run happens once, rows of a dead sender go out again, a second daemon on an SQLite
file is refused, first starts race-free, and ``dispatch`` leaves the sending to the holder.

The daemons are real :class:`Daemon` objects driven step by step (their renewal round, their
job wrappers) on both engines; the PostgreSQL half judges expiry on the server's clock.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import text
from typer.testing import CliRunner

from notifier.config import DeliveryConfig
from scheduler.cli import app
from scheduler.daemon import Daemon
from scheduler.delivery import make_channels
from scheduler.settings import Settings
from storage import leases, outbox
from storage.db import Database, DatabaseError
from storage.records import ROME
from tests.conftest import POSTGRES_URL
from tests.fakes.delivery_data import add_calls, add_members, alert_items, call_record
from tests.fakes.telegram_server import Answer, FakeBotAPI

ROOT = Path(__file__).resolve().parents[2]
LEASE = 5.0  # the shortest the settings allow: the tests wait for it to expire
NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)


class Wall:
    """The machine's clock of a daemon, moved by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def settings(db: Database) -> Settings:
    return Settings(
        database_url=db.url,
        now=NOW,
        delivery=DeliveryConfig(lease_seconds=LEASE, renew_seconds=1, console_fallback=True),
    )


def daemon(settings: Settings, db: Database, wall: Wall | None = None) -> Daemon:
    d = Daemon(settings, db, clock=lambda: NOW, wall_clock=wall or Wall(NOW))
    d.console = Console(file=io.StringIO(), width=100)
    return d


async def test_the_sender_lease_passes_on_when_its_holder_dies(settings: Settings, db: Database) -> None:
    first, second = daemon(settings, db), daemon(settings, db)
    await first._coordinate_once()
    await second._coordinate_once()
    assert first.holds_sender() and not second.holds_sender()
    holder = leases.holder(db, leases.SENDER)
    assert holder is not None and holder.owner == first.worker_id
    # The sender claims rows and dies (it renews nothing any more).
    members = add_members(db, now=NOW, chat_ids=[1, 2, 3])
    [call] = add_calls(db, [call_record(1, now=NOW)], now=NOW)
    outbox.enqueue(db, alert_items([(m, call) for m in members]), now=NOW)
    claimed = outbox.claim_due(db, now=NOW, limit=2, owner=first.worker_id)
    assert len(claimed) == 2
    died = time.monotonic()
    # While its lease lasts, the others wait and report the rows as held.
    await second._coordinate_once()
    assert not second.holds_sender()
    assert outbox.held_by_others(db, second.worker_id) == {first.worker_id: 2}
    while not second.holds_sender():
        assert time.monotonic() - died < LEASE + 3, "no take-over"
        await asyncio.sleep(0.5)
        await second._coordinate_once()
    assert LEASE - 1 <= time.monotonic() - died < LEASE + 3
    # The new sender sends what was due, the dead one's rows included; the alerts go once.
    second.channels = make_channels(settings, console=second.console)
    await second._dispatch_job()
    assert outbox.backlog(db)["sent"] == 3
    assert {r.claimed_by for r in outbox.list_rows(db)} == {None}
    # The old one, back from a long pause, finds the lease gone and stops sending.
    assert first.sender
    await first._coordinate_once()
    assert not first.sender and first._send_stop.is_set()


async def test_each_scheduled_run_happens_once_across_daemons(settings: Settings, db: Database) -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    wall = Wall(datetime(2026, 11, 22, 10, 15, 0, 300_000, tzinfo=ROME))
    ran: list[str] = []
    daemons = [daemon(settings, db, wall) for _ in range(3)]
    jobs = []
    for n, d in enumerate(daemons):

        async def checks(n: int = n) -> None:
            ran.append(f"daemon {n}")

        d._checks_job = checks  # type: ignore[method-assign]
        scheduler = AsyncIOScheduler(timezone=ROME)
        d.scheduler = scheduler
        d.schedule_jobs(scheduler, NOW, fire_now=wall())
        jobs.append(scheduler.get_job("checks"))
    for job in jobs:  # fired by every daemon at 10:15
        await job.func()
    assert len(ran) == 1
    assert sum(d.state.skipped["checks"] for d in daemons) == 2
    wall.at += timedelta(minutes=15, seconds=2)  # 10:30, a new due time
    await asyncio.gather(*(job.func() for job in jobs))
    assert len(ran) == 2
    runs = leases.list_runs(db, job="checks")
    assert [r.due_at.astimezone(ROME).strftime("%H:%M:%S") for r in runs] == ["10:30:00", "10:15:00"]
    assert all(r.outcome == "ok" for r in runs)


def test_a_second_daemon_on_an_sqlite_file_says_so(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'one.db'}")
    db.upgrade()
    settings = Settings(database_url=db.url, now=NOW)
    try:
        with db.file_lock("daemon", wait=False) as mine:  # a daemon running on the file
            assert mine
            with pytest.raises(DatabaseError, match="SQLite serves one daemon"):
                asyncio.run(daemon(settings, db).run())
    finally:
        db.dispose()


def _upgrade_together(url: str, cwd: Path, processes: int = 3) -> list[tuple[int, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINELLA_")}
    env.update(SENTINELLA_DATABASE_URL=url, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "scheduler", "db", "upgrade"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        results.append((p.returncode, (out + err).decode(errors="replace")))
    return results


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_first_starts_at_once_are_race_free(engine: str, tmp_path: Path) -> None:
    for attempt in range(3):
        if engine == "postgres":
            if not POSTGRES_URL:
                pytest.skip("PostgreSQL not configured (set SENTINELLA_TEST_POSTGRES_URL)")
            fresh = Database(POSTGRES_URL)
            with fresh.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            fresh.dispose()
            url = POSTGRES_URL
        else:
            url = f"sqlite:///{tmp_path / f'new-{attempt}.db'}"
        results = _upgrade_together(url, tmp_path)
        assert all(code == 0 for code, _ in results), results


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBotAPI]:
    monkeypatch.chdir(tmp_path)
    for var in list(os.environ):
        if var.startswith("SENTINELLA_") and var != "SENTINELLA_TEST_POSTGRES_URL":
            monkeypatch.delenv(var)
    with FakeBotAPI() as server:
        monkeypatch.setenv("SENTINELLA_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
        monkeypatch.setenv("SENTINELLA_NOW", NOW.isoformat())
        monkeypatch.setenv("SENTINELLA_TELEGRAM__TOKEN", server.token)
        monkeypatch.setenv("SENTINELLA_TELEGRAM__BASE_URL", server.base_url)
        monkeypatch.setenv("SENTINELLA_TELEGRAM__PER_CHAT_INTERVAL", "0")
        yield server


@pytest.mark.integration
def test_dispatch_exit_codes_and_the_sender_held_elsewhere(cli_env: FakeBotAPI, tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'cli.db'}")
    db.upgrade()
    members = add_members(db, now=NOW, chat_ids=[11, 12])
    [call] = add_calls(db, [call_record(1, now=NOW)], now=NOW)
    outbox.enqueue(db, alert_items([(m, call) for m in members]), now=NOW)
    runner = CliRunner()

    # A daemon holds the sender lease: dispatch leaves the sending to it.
    leases.heartbeat(db, "other-host:999:abcdef", kind="run", ttl=60)
    assert leases.acquire(db, leases.SENDER, "other-host:999:abcdef", ttl=60)
    result = runner.invoke(app, ["dispatch"])
    assert result.exit_code == 0, result.stdout
    assert "Nothing sent from here: other-host:999:abcdef (until" in result.stdout
    assert "holds the sender lease" in result.stdout
    assert "2 pending" in result.stdout and not cli_env.sent_messages()
    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0 and "Lease sender: held by other-host:999:abcdef" in status.stdout

    # The daemon stopped cleanly: dispatch sends; a blocked chat is reported, not a failure.
    leases.unregister(db, "other-host:999:abcdef")
    cli_env.script("sendMessage", Answer.forbidden(), chat_id=12)
    result = runner.invoke(app, ["dispatch"])
    assert result.exit_code == 0, result.stdout
    assert "sent 1" in result.stdout and "1 blocked chats" in result.stdout
    assert "the member blocked the bot" in result.stdout
    assert leases.list_workers(db) == []  # the dispatch process unregistered itself

    # A failed send (retried later) is a failure of the run: exit 1.
    more = add_members(db, now=NOW, chat_ids=[13])
    outbox.enqueue(db, alert_items([(more[0], call)]), now=NOW)
    cli_env.script("sendMessage", Answer.bad_request("Bad Request: message text is empty"), chat_id=13)
    result = runner.invoke(app, ["dispatch"])
    assert result.exit_code == 1 and "1 given up" in result.stdout
    db.dispose()
