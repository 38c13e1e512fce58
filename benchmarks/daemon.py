"""Memory of the daemon: ``sentinella run`` through a full crawl of every source and about 1,000
alerts, against local servers only; prints the peak RSS of the daemon and its children.

    python benchmarks/daemon.py [--members 68] [--timeout 600]

The daemon is a real process started as ``python -m scheduler run`` with its settings in the
environment: every source on the replay server (``crawler.replay.site``, the bundled
recordings), the bot and the Telegram channel on the fake Bot API server (Telegram's flood
limits enforced), e-mail on an aiosmtpd server, the clock pinned to the recordings' date, a
temporary SQLite database holding ``--members`` members with a broad profile (half reached by
Telegram, half by e-mail; about 15 alerts each). No source has run yet, so the daemon crawls all
of them at start-up (the catch-up), then plans and sends the alerts (one dispatch round: the
claim limit is raised above the alert count).

Memory is sampled every 50 ms over the daemon's process tree (``/proc``: the daemon, each crawl's
``python -m scheduler crawl`` process and its Scrapy worker). Printed: each process's own peak
(``VmHWM``), and the peak of the tree's sum — the figure for the target, under 250 MB. Also the
time to ready, to the end of the crawl and to the last alert, and the exit code after SIGTERM.
Exit code 1 when a target is missed or the run is incomplete. Stops by itself: at the end, or
after ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiosmtpd.controller import Controller

from crawler.config import SOURCE_NAMES, CrawlConfig
from crawler.replay.server import ReplayServer
from crawler.replay.site import RECORDED_AT, install_site
from notifier.matching.profiles import import_members
from notifier.matching.vocabulary import default_vocabulary
from storage import outbox, planning, sources
from storage.calls import events_after, list_calls
from storage.db import Database
from tests.fakes.daemon import Mailbox, daemon_env, free_port
from tests.fakes.telegram_server import FakeBotAPI, FloodLimits

TOKEN = "123:BENCHMARK"
TARGET_MB = 250
TARGET_ALERTS = 1000
SAMPLE_SECONDS = 0.05


# --- memory sampling ----------------------------------------------------------------------------


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            out.extend(int(c) for c in text)
    except OSError:
        pass
    return out


def process_tree(root: int) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(_children(pid))
    return found


def _label(pid: int) -> str:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(a.decode("utf-8", "replace") for a in args if a)
    if "crawler.worker" in text:
        return "crawl worker (Scrapy)"
    if " crawl " in f"{text} ":
        return "crawl command (python -m scheduler crawl)"
    if text.endswith(" run"):
        return "daemon (python -m scheduler run)"
    return text[:60]


@dataclass
class MemorySampler:
    """Samples the RSS of a process tree in a thread: per-process peaks and the tree's peak sum."""

    root: int
    peak_tree_kb: int = 0
    peak_tree_at: float = 0.0
    peaks: dict[int, tuple[str, int]] = field(default_factory=dict)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()

    def start(self) -> MemorySampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for pid in process_tree(self.root):
                rss = _status_kb(pid, "VmRSS")
                total += rss
                hwm = _status_kb(pid, "VmHWM")
                label, best = self.peaks.get(pid, ("", 0))
                if hwm > best or not label:
                    self.peaks[pid] = (label or _label(pid), max(hwm, best))
            self.samples += 1
            if total > self.peak_tree_kb:
                self.peak_tree_kb = total
                self.peak_tree_at = time.monotonic() - self._started
            self._stop.wait(SAMPLE_SECONDS)


# --- the run ------------------------------------------------------------------------------------


def members(count: int) -> dict[str, Any]:
    topics = list(default_vocabulary().topics)
    entries = []
    for n in range(count):
        channel = "telegram" if n % 2 == 0 else "email"
        entry: dict[str, Any] = {
            "name": f"Membro {n}",
            "organisation": f"Impresa Esempio {n} srl",
            "profile": {"topics": topics, "channels": [channel]},
        }
        if channel == "telegram":
            entry["telegram_chat_id"] = 800_000 + n
        else:
            entry["email"] = f"membro{n}@example.org"
        entries.append(entry)
    return {"member": entries}


def wait_for(predicate: Callable[[], bool], until: float, alive: Callable[[], bool]) -> bool:
    while not predicate():
        if time.monotonic() > until or not alive():
            return predicate()
        time.sleep(0.1)
    return True


def crawls_finished(db: Database) -> bool:
    runs = sources.recent_runs(db, limit=50)
    done = {r.source for r in runs if r.finished_at is not None}
    return done >= set(SOURCE_NAMES)


def run(member_count: int, timeout: float, tmp: Path) -> int:
    db = Database(f"sqlite:///{tmp / 'daemon.db'}")
    db.upgrade()
    imported = import_members(db, members(member_count), now=RECORDED_AT)
    assert not imported.errors, imported.errors
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    log_path = tmp / "daemon.log"
    try:
        with (
            ReplayServer() as replay,
            FakeBotAPI(token=TOKEN, limits=FloodLimits(overall_per_second=30, per_chat_interval=1.0)) as bot,
            log_path.open("wb") as log,
        ):
            site = install_site(replay)
            crawl = CrawlConfig(download_delay=0, retry_backoff=0.01, lock_dir=str(tmp / "locks"))
            env = daemon_env(
                db_url=db.url,
                now=RECORDED_AT,
                site=site,
                crawl=crawl,
                token=TOKEN,
                bot_url=bot.base_url,
                smtp_port=smtp.port,
                # Every alert in one dispatch round (the default claims 500 a minute).
                SENTINELLA_DELIVERY__BATCH_LIMIT="5000",
            )
            started = time.monotonic()
            until = started + timeout
            daemon = subprocess.Popen(
                [sys.executable, "-m", "scheduler", "run"],
                cwd=tmp,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            sampler = MemorySampler(daemon.pid).start()

            def alive() -> bool:
                return daemon.poll() is None

            def all_sent() -> bool:
                # Every call event planned, and nothing planned left to send.
                if events_after(db, planning.get_cursor(db, planning.ALERTS_CURSOR), limit=1):
                    return False
                counts = outbox.backlog(db)
                return counts["sent"] > 0 and not (counts["pending"] or counts["sending"] or counts["failed"])

            ready = wait_for(lambda: bool(bot.calls("getUpdates")), until, alive)
            ready_s = time.monotonic() - started
            crawled = ready and wait_for(lambda: crawls_finished(db), until, alive)
            crawled_s = time.monotonic() - started
            sent = crawled and wait_for(all_sent, until, alive)
            sent_s = time.monotonic() - started
            daemon_hwm = _status_kb(daemon.pid, "VmHWM")
            stop_at = time.monotonic()
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
            try:
                code: int | None = daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
                code = None
            stop_s = time.monotonic() - stop_at
            sampler.stop()
            telegram_sent = len(bot.sent_messages())
            flood = bot.flood_429s
    finally:
        smtp.stop()

    calls = list_calls(db)
    counts = outbox.backlog(db)
    runs = {r.source: r for r in reversed(sources.recent_runs(db, limit=50))}
    db.dispose()

    print(f"members: {member_count} (broad profiles; half Telegram, half e-mail)")
    print(f"ready (bot polling) after {ready_s:.1f} s")
    print(
        f"crawl of every source (catch-up at start): {'done' if crawled else 'NOT DONE'} after {crawled_s:.1f} s; "
        f"{len(calls)} calls stored ("
        + ", ".join(f"{name} {runs[name].outcome}" if name in runs else f"{name} -" for name in SOURCE_NAMES)
        + ")"
    )
    alerts = counts["sent"] + counts["dead"]
    print(
        f"alerts: {alerts} planned, {counts['sent']} sent ({telegram_sent} Telegram messages, "
        f"{mailbox.count} e-mails; {flood} flood 429s) after {sent_s:.1f} s (target >= {TARGET_ALERTS})"
    )
    print(f"stopped by SIGTERM: exit code {code} in {stop_s:.1f} s (target 0 within 10 s)")
    print(f"\npeak RSS ({sampler.samples} samples, every {SAMPLE_SECONDS * 1000:.0f} ms):")
    by_kind: dict[str, list[int]] = {}
    for pid, (label, kb) in sampler.peaks.items():
        by_kind.setdefault(label, []).append(kb if pid != daemon.pid else max(kb, daemon_hwm))
    for label, values in sorted(by_kind.items()):
        print(
            f"  {label:<45} {max(values) / 1024:7.1f} MB"
            + (f"  ({len(values)} processes)" if len(values) > 1 else "")
        )
    tree_mb = sampler.peak_tree_kb / 1024
    print(
        f"  {'whole tree at once':<45} {tree_mb:7.1f} MB  at {sampler.peak_tree_at:.1f} s (target < {TARGET_MB} MB)"
    )
    ok = bool(crawled and sent and alerts >= TARGET_ALERTS and code == 0 and tree_mb < TARGET_MB)
    if not ok:
        print(f"\ndaemon log: {log_path} (kept below)")
        print(log_path.read_text(encoding="utf-8", errors="replace")[-3000:])
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=68, help="members to alert (about 15 alerts each)")
    parser.add_argument("--timeout", type=float, default=600, help="give up after this many seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        return run(args.members, args.timeout, Path(tmp))


if __name__ == "__main__":
    raise SystemExit(main())
