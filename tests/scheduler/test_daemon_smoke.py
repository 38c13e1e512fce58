"""A smoke test of the whole daemon: ``sentinella run`` as a process, against local servers only.

The daemon's settings come from the environment: every source points at the replay server
(the bundled recordings), the bot at the fake Bot API server (token ``123:TEST``), e-mail at an
aiosmtpd server, the clock at the recordings' date. The database holds an admin and members.
An admin's ``/crawl`` arrives through ``getUpdates``; the test waits (bounded) for the crawl's
summary in the admin's chat and for the alerts in the members' chats and mailbox, then sends
SIGTERM and expects exit code 0 within 10 seconds.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from crawler.config import SOURCE_NAMES, CrawlConfig
from crawler.replay.server import ReplayServer
from crawler.replay.site import RECORDED_AT, install_site
from notifier.matching.profiles import import_members
from storage import outbox, sources
from storage.calls import list_calls
from storage.db import Database
from tests.fakes.daemon import Mailbox, daemon_env, free_port
from tests.fakes.telegram_server import FakeBotAPI

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "123:TEST"
ADMIN_CHAT = 9001
PACKAGING_CHAT = 700001
UNIVERSITY_CHAT = 700005
LAB_EMAIL = "laboratorio@example.org"
#: Bounds of the waits (generous: two cores are shared; the crawl alone takes some seconds).
READY_TIMEOUT = 60.0
CRAWL_TIMEOUT = 180.0

MEMBERS: dict[str, Any] = {
    "member": [
        {"name": "Anna Admin", "role": "admin", "telegram_chat_id": ADMIN_CHAT, "language": "it"},
        {
            "name": "Chiara Demo",
            "organisation": "Flaconi Esempio srl",
            "telegram_chat_id": PACKAGING_CHAT,
            "profile": {
                "topics": ["packaging", "sostenibilita-circolare", "investimenti-produttivi", "energia"],
                "keywords": ["flaconi riciclabili", "airless"],
                "beneficiaries": ["pmi"],
                "channels": ["telegram"],
                "province": "BG",
            },
        },
        {
            "name": "Franco Saggio",
            "organisation": "Laboratorio Prove Esempio srl",
            "email": LAB_EMAIL,
            "profile": {
                "topics": ["qualita-regolatorio", "ricerca-innovazione", "digitale"],
                "beneficiaries": ["pmi"],
                "channels": ["email"],
                "province": "LO",
            },
        },
        {
            "name": "Prof. Giorgia Ricerca",
            "organisation": "Università di Esempio",
            "telegram_chat_id": UNIVERSITY_CHAT,
            "email": "dipartimento@example.org",
            "language": "en",
            "profile": {
                "topics": ["ricerca-innovazione", "sostenibilita-circolare"],
                "beneficiaries": ["ricerca"],
                "channels": ["telegram", "email"],
            },
        },
    ]
}


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    handler = Mailbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def prepare_database(path: Path) -> Database:
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    report = import_members(db, MEMBERS, now=RECORDED_AT)
    assert report.errors == [] and report.created == len(MEMBERS["member"])
    # Every source ran an hour ago: the daemon has nothing to catch up at start, so the crawl
    # is the admin's /crawl.
    for name in SOURCE_NAMES:
        when = RECORDED_AT - timedelta(hours=1)
        run_id = sources.start_run(db, name, now=when)
        sources.finish_run(db, run_id, now=when + timedelta(minutes=1), outcome="ok", seen=1)
    return db


def command_update(chat_id: int, text: str) -> dict[str, Any]:
    return {
        "message": {
            "message_id": 1,
            "date": 1_788_332_400,
            "chat": {"id": chat_id, "type": "private", "first_name": "Anna"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Anna", "language_code": "it"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        }
    }


def texts_to(bot: FakeBotAPI, chat_id: int) -> list[str]:
    return [r.text for r in bot.sent_messages() if r.chat_id == chat_id]


@dataclass
class Running:
    """The daemon process and the local servers it talks to."""

    process: subprocess.Popen[bytes]
    bot: FakeBotAPI
    replay: ReplayServer
    smtp: Mailbox
    db: Database
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def terminate(self) -> int | None:
        """SIGTERM; the exit code, or None when it did not exit within 10 s (then killed)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None


@pytest.fixture
def running(tmp_path: Path, mailbox: tuple[Mailbox, int]) -> Iterator[Running]:
    smtp, smtp_port = mailbox
    db = prepare_database(tmp_path / "sentinella.db")
    log_path = tmp_path / "daemon.log"
    with ReplayServer() as replay, FakeBotAPI(token=TOKEN) as bot, log_path.open("wb") as log:
        site = install_site(replay)
        crawl = CrawlConfig(download_delay=0, retry_backoff=0.01, lock_dir=str(tmp_path / "locks"))
        env = daemon_env(
            db_url=db.url,
            now=RECORDED_AT,
            site=site,
            crawl=crawl,
            token=TOKEN,
            bot_url=bot.base_url,
            smtp_port=smtp_port,
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "scheduler", "run"],
            cwd=tmp_path,  # no ./sentinella.toml of the developer's is read
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        daemon = Running(process, bot, replay, smtp, db, log_path)
        try:
            # Up: the bot polls for updates.
            assert bot.wait_for(lambda s: bool(s.calls("getUpdates")), READY_TIMEOUT), daemon.log
            assert process.poll() is None, daemon.log
            yield daemon
        finally:
            daemon.terminate()
            db.dispose()


def test_daemon_crawls_on_admin_command_alerts_members_and_stops_cleanly(running: Running) -> None:
    bot, smtp, db = running.bot, running.smtp, running.db
    bot.push_update(command_update(ADMIN_CHAT, "/crawl"))

    def done(server: FakeBotAPI) -> bool:
        admin = texts_to(server, ADMIN_CHAT)
        if not (
            any("Raccolta finita" in t for t in admin)
            and texts_to(server, PACKAGING_CHAT)
            and texts_to(server, UNIVERSITY_CHAT)
            and smtp.to(LAB_EMAIL)
        ):
            return False
        # Alerts are planned before the first one is sent: once some arrived, the outbox says
        # when all of them have.
        counts = outbox.backlog(db)
        return counts["sent"] > 0 and not (counts["pending"] or counts["sending"] or counts["failed"])

    finished = bot.wait_for(lambda s: done(s) or running.process.poll() is not None, CRAWL_TIMEOUT)
    assert finished and running.process.poll() is None, running.log
    assert done(bot), running.log

    assert running.terminate() == 0, running.log
    output = running.log

    # The admin heard the crawl start and end, with every source's line.
    admin = texts_to(bot, ADMIN_CHAT)
    assert any("Raccolta avviata" in t for t in admin)
    summary = next(t for t in admin if "Raccolta finita" in t)
    for name in SOURCE_NAMES:
        assert f"{name}: <b>ok</b>" in summary, summary
    # Every crawl request went to the replay server.
    assert running.replay.requests

    # The crawl stored calls of every source; the alerts were sent and recorded as sent.
    assert {c.source for c in list_calls(db, kinds=None)} == set(SOURCE_NAMES)
    sent = outbox.list_rows(db, state="sent")
    assert {r.channel for r in sent} == {"telegram", "email"}
    packaging = member_id(db, PACKAGING_CHAT)
    assert len(texts_to(bot, PACKAGING_CHAT)) == sum(
        1 for r in sent if r.channel == "telegram" and r.member_id == packaging
    )
    mail = message_from_bytes(smtp.to(LAB_EMAIL)[0], policy=policy.default)
    assert LAB_EMAIL in str(mail["To"])
    # Nothing reached anyone else, and the token never reached the log.
    assert {r.chat_id for r in bot.sent_messages()} <= {ADMIN_CHAT, PACKAGING_CHAT, UNIVERSITY_CHAT}
    assert TOKEN not in output
    assert "Traceback" not in output, output


def test_sigterm_during_a_crawl_ends_the_daemon_and_its_crawl(running: Running) -> None:
    running.bot.push_update(command_update(ADMIN_CHAT, "/crawl"))
    # The crawl is under way once the daemon has a crawl process and the replay server is asked.
    workers: list[int] = []

    def crawling(_server: FakeBotAPI) -> bool:
        workers[:] = crawl_processes(running.process.pid)
        return bool(workers) and bool(running.replay.requests)

    assert running.bot.wait_for(crawling, CRAWL_TIMEOUT), running.log

    assert running.terminate() == 0, running.log
    # The crawl process is gone too, and its run is closed (failed, as stopped, unless it had
    # just finished); later sources never started.
    assert wait_until(lambda: not [p for p in workers if alive(p)], 10.0), workers
    runs = [r for r in sources.recent_runs(running.db) if r.started_at >= RECORDED_AT]
    assert len(runs) == 1, runs
    assert runs[0].outcome != "running", runs
    if runs[0].outcome == "failed":
        assert "stopped" in str(runs[0].report.get("reason")), runs
    assert "Traceback" not in running.log, running.log


def crawl_processes(pid: int) -> list[int]:
    """The crawl processes (``crawler.worker``) among the descendants of ``pid``."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                for child in (task / "children").read_text().split():
                    todo.append(int(child))
                    cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                    if b"crawler.worker" in cmdline:
                        found.append(int(child))
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped by its new parent counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def member_id(db: Database, chat_id: int) -> int:
    from storage.members import find_member

    member = find_member(db, chat_id=chat_id)
    assert member is not None
    return member.id
