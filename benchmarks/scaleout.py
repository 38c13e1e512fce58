"""Several daemons on one PostgreSQL database: every alert once, one Telegram budget, take-over.

    python benchmarks/scaleout.py --database-url postgresql://postgres@127.0.0.1:5432/bench \
        [--daemons 3] [--alerts 3000] [--chats 300] [--kills 10]

The URL may also come from ``$SENTINELLA_BENCH_POSTGRES_URL``. **The database is emptied**
(``DROP SCHEMA public CASCADE``): give it one of its own.

Real ``sentinella run`` processes (``python -m scheduler run``) share the database, the fake
Bot API on loopback (Telegram's limits strictly enforced: 30 messages in any second, one a
second per chat, 20 a minute per group, 429 with ``retry_after`` beyond; two ``getUpdates`` at
once answered 409) and the replay server (one source, ``feeds``, crawled every minute so the
scheduled jobs have due times to share). The clock is the machine's.

1. **Throughput**: ``--alerts`` alerts to ``--chats`` chats are queued; the daemons start at
   once. Printed: each alert delivered exactly once (by chat and call), the 429s the server
   answered (target 0), the aggregate rate from first to last message (target >= 27/s), the
   conflicting ``getUpdates``, and each scheduled job's runs per due time, from the daemons' own
   logs ("running here") and, for crawls, from the crawl runs recorded (target: one per due time).
2. **Take-over**, ``--kills`` times: a batch of one alert per chat is queued; mid-batch the
   process holding the sender lease (bot polling and sending) is killed with SIGKILL. Printed per
   round: seconds until another process held the lease, until the bot polled again and until
   messages flowed again (target < 60 s), alerts lost (target 0), alerts delivered twice and the
   rows in flight at the kill (sent to the server but not yet recorded as sent: the most that may
   repeat). A fresh daemon replaces the killed one before the next round.

Exit code 1 when a target is missed. Daemon logs are kept in a temporary directory, printed on
failure.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select

from crawler.config import CrawlConfig
from crawler.replay.server import ReplayServer
from crawler.replay.site import install_site
from storage import leases, outbox, planning, sources
from storage.db import Database
from storage.models import CallEvent
from tests.conftest import _reset_postgres
from tests.fakes.daemon import daemon_env, free_port
from tests.fakes.delivery_data import add_calls, add_members, alert_items, call_record
from tests.fakes.telegram_server import FakeBotAPI, FloodLimits, RecordedRequest

TOKEN = "123:SCALEOUT"
TARGET_RATE = 27.0
TARGET_TAKEOVER = 60.0
RUN_LINE = re.compile(r"job (\S+) due (\S+): (running here|another daemon runs it)")


def reset(url: str) -> Database:
    _reset_postgres(url)
    db = Database(url)
    db.upgrade()
    return db


def planned_up_to_date(db: Database, now: datetime) -> None:
    """The alerts are queued directly: the planner has nothing left to plan from the calls."""
    with db.session() as session:
        last = session.scalar(select(func.max(CallEvent.id))) or 0
    planning.advance_cursor(db, planning.ALERTS_CURSOR, int(last), now=now)


def title_key(text: str) -> str:
    found = re.search(r"SCALE-(\d+)-(\d+)", text)
    return found.group(0) if found else text[:40]


@dataclass
class Daemons:
    """The daemon processes, their logs and how to start one more."""

    env: dict[str, str]
    cwd: Path
    procs: list[subprocess.Popen[bytes]]
    logs: list[Path]

    def start(self) -> subprocess.Popen[bytes]:
        log = self.cwd / f"daemon-{len(self.logs) + 1}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "scheduler", "run"],
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def by_pid(self, pid: int) -> subprocess.Popen[bytes] | None:
        return next((p for p in self.procs if p.pid == pid and p.poll() is None), None)

    def stop_all(self) -> list[int | None]:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for p in self.procs:
            try:
                codes.append(p.wait(timeout=20))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(None)
        return codes

    def job_lines(self) -> list[tuple[int, str, str, str]]:
        found = []
        for n, log in enumerate(self.logs, start=1):
            for match in RUN_LINE.finditer(log.read_text(encoding="utf-8", errors="replace")):
                found.append((n, match.group(1), match.group(2), match.group(3)))
        return found


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.5) -> bool:
    # Not too often: the fake Bot API serves from a thread of this process, and every look at
    # what it received competes with it for the interpreter.
    until = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > until:
            return False
        time.sleep(step)
    return True


def queue(
    db: Database, members: list[int], calls_per_member: int, tag: int, now: datetime
) -> tuple[int, dict[int, str]]:
    """Queue alerts about new calls to every member; their count, and each call's key."""
    calls = add_calls(
        db,
        [
            call_record(tag * 1000 + n, now=now, title=f"Bando SCALE-{tag}-{n} per imprese del packaging")
            for n in range(calls_per_member)
        ],
        now=now,
    )
    planned_up_to_date(db, now)
    count = outbox.enqueue(db, alert_items([(m, c) for m in members for c in calls]), now=now)
    return count, {c.id: title_key(c.title) for c in calls}


def delivered(bot: FakeBotAPI, tag: int, since: int = 0) -> Counter[tuple[int | None, str]]:
    prefix = f"SCALE-{tag}-"
    return Counter((r.chat_id, title_key(r.text)) for r in bot.sent_messages()[since:] if prefix in r.text)


def sends_after(bot: FakeBotAPI, moment: float, method: str = "sendMessage") -> list[RecordedRequest]:
    return [r for r in bot.calls(method) if r.at > moment]


def run(url: str, daemons_n: int, alerts: int, chats: int, kills: int, tmp: Path) -> int:
    now = datetime.now(UTC)
    db = reset(url)
    chat_ids = [20_000 + i for i in range(chats)]
    members = add_members(db, now=now, chat_ids=chat_ids)
    chat_of = dict(zip(members, chat_ids, strict=True))
    per_chat = -(-alerts // chats)
    ok = True
    with (
        ReplayServer() as replay,
        FakeBotAPI(token=TOKEN, limits=FloodLimits(30, 1.0, 20)) as bot,
    ):
        site = install_site(replay)
        # One source, every minute: due times for the daemons to share, at little cost.
        site = site.model_copy(
            update={
                name: getattr(site, name).model_copy(update={"enabled": name == "feeds", "schedule": "1m"})
                for name in ("lombardia", "sedia", "incentivi", "feeds")
            }
        )
        crawl = CrawlConfig(download_delay=0, retry_backoff=0.01, lock_dir=str(tmp / "locks"))
        env = daemon_env(
            db_url=url,
            now=now,
            site=site,
            crawl=crawl,
            token=TOKEN,
            bot_url=bot.base_url,
            smtp_port=free_port(),
        )
        # The machine's clock, not a pinned one; e-mail is not used here.
        for key in ("SENTINELLA_NOW", "SENTINELLA_EMAIL__HOST"):
            env.pop(key, None)
        env["SENTINELLA_DIGEST__ENABLED"] = "false"
        daemons = Daemons(env, tmp, [], [])

        try:
            # --- 1. throughput, exactly once, one run per due time ---------------------------------
            queued, _ = queue(db, members, per_chat, 0, now)
            print(f"{daemons_n} daemons on {db.safe_url}; {queued} alerts queued for {chats} chats")
            started = time.monotonic()
            for _ in range(daemons_n):
                daemons.start()
            done = wait_for(lambda: len(bot.sent_messages()) >= queued, timeout=queued / 15 + 120, step=1.0)
            done = wait_for(lambda: len(delivered(bot, 0)) >= queued, timeout=60, step=1.0)
            counts = delivered(bot, 0)
            sent = [r for r in bot.sent_messages() if "SCALE-0-" in r.text]
            window = (sent[-1].at - sent[0].at) if len(sent) > 1 else 0.0
            rate = len(sent) / window if window > 0 else 0.0
            twice = sum(1 for n in counts.values() if n > 1)
            missing = queued - len(counts)
            print(
                f"delivered {len(counts)} of {queued} alerts in {time.monotonic() - started:.1f} s after start "
                f"({'all' if done else 'NOT ALL'}); {twice} twice, {missing} missing"
            )
            print(f"aggregate rate: {rate:.1f} messages/s over {window:.1f} s (target >= {TARGET_RATE})")
            print(
                f"429 answered by the server: {bot.flood_429s} (target 0); getUpdates conflicts: {bot.poll_conflicts}"
            )
            holder = leases.holder(db, leases.SENDER)
            print(
                f"sender: {holder.owner if holder else 'nobody'}; processes: {len(leases.live_workers(db))} alive"
            )
            # Let a few minutes' jobs fall due while the daemons idle.
            time.sleep(65)
            ok &= done and twice == 0 and missing == 0 and bot.flood_429s == 0 and rate >= TARGET_RATE
            ok &= bot.poll_conflicts == 0
            ok &= report_job_runs(db, daemons)

            # --- 2. take-over after kill -9 ---------------------------------------------------------
            print(f"\nkill -9 of the sender mid-batch, {kills} times ({chats} alerts a batch):")
            print("round  lease(s)  polling(s)  sending(s)  in flight  twice  lost")
            takeovers: list[float] = []
            for round_ in range(1, kills + 1):
                outcome = takeover_round(round_, db, bot, daemons, members, chat_of)
                if outcome is None:
                    ok = False
                    break
                takeovers.append(outcome[0])
                ok &= outcome[1]
                daemons.start()
                wait_for(lambda: len(leases.live_workers(db, kind="run")) >= daemons_n, timeout=60)
            if takeovers:
                print(
                    f"take-over: {min(takeovers):.1f}–{max(takeovers):.1f} s, mean "
                    f"{sum(takeovers) / len(takeovers):.1f} s (target < {TARGET_TAKEOVER:.0f} s)"
                )
            print(f"429 answered by the server over the whole run: {bot.flood_429s} (target 0)")
            ok &= bot.flood_429s == 0
            codes = daemons.stop_all()
            alive_codes = [c for c in codes if c != -signal.SIGKILL]
            print(f"daemons stopped by SIGTERM: exit codes {alive_codes}")
        finally:
            # Interrupted (Ctrl-C, an error): no daemon outlives the benchmark.
            for proc in daemons.procs:
                if proc.poll() is None:
                    proc.kill()
    if not ok:
        for log in daemons.logs[-3:]:
            print(f"\n--- {log.name} (end) ---")
            print(log.read_text(encoding="utf-8", errors="replace")[-2500:])
    db.dispose()
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def takeover_round(
    round_: int, db: Database, bot: FakeBotAPI, daemons: Daemons, members: list[int], chat_of: dict[int, int]
) -> tuple[float, bool] | None:
    """Queue a batch, kill the sender mid-batch, time the take-over; (seconds, targets met)."""
    tag = round_
    queued, keys = queue(db, members, 1, tag, datetime.now(UTC))
    if not wait_for(lambda: len(delivered(bot, tag)) >= len(members) // 5, timeout=90):
        print(f"{round_:>5}  the batch never started")
        return None
    holder = leases.holder(db, leases.SENDER)
    victim = daemons.by_pid(int(holder.owner.rsplit(":", 2)[1])) if holder else None
    if holder is None or victim is None:
        print(f"{round_:>5}  the sender ({holder.owner if holder else 'nobody'}) is not one of ours")
        return None
    os.kill(victim.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    victim.wait(10)
    # Requests the dead process wrote just before it died may reach the server a moment later;
    # nobody else sends for seconds (the lease lasts), so everything received now is its.
    time.sleep(1.0)
    # In flight at the kill: alerts the server had received that the database did not record
    # as sent (the dead process writes nothing more). Only these may be delivered twice.
    received = {(r.chat_id, title_key(r.text)) for r in bot.calls("sendMessage") if f"SCALE-{tag}-" in r.text}
    recorded = {
        (chat_of[r.member_id], keys[r.call_id])
        for r in outbox.list_rows(db, state="sent")
        if r.call_id in keys
    }
    in_flight = received - recorded
    got_lease = wait_for(
        lambda: (h := leases.holder(db, leases.SENDER)) is not None and h.owner != holder.owner,
        timeout=TARGET_TAKEOVER + 30,
    )
    lease_s = time.monotonic() - killed_at
    wait_for(lambda: bool(sends_after(bot, killed_at, "getUpdates")), timeout=30)
    polling = sends_after(bot, killed_at, "getUpdates")
    poll_s = (polling[0].at - killed_at) if polling else float("nan")
    resumed_after = killed_at + 1.0
    wait_for(lambda: bool(sends_after(bot, resumed_after)), timeout=30)
    resumed = sends_after(bot, resumed_after)
    send_s = (resumed[0].at - killed_at) if resumed else float("nan")
    finished = wait_for(lambda: len(delivered(bot, tag)) >= queued, timeout=120)
    counts = delivered(bot, tag)
    repeated = {key for key, n in counts.items() if n > 1}
    twice = sum(counts[key] - 1 for key in repeated)
    lost = queued - len(counts)
    print(
        f"{round_:>5}  {lease_s:8.1f}  {poll_s:10.1f}  {send_s:10.1f}  {len(in_flight):9d}  "
        f"{twice:5d}  {lost:4d}" + ("" if finished else "  (batch not finished)")
    )
    met = got_lease and finished and lost == 0 and repeated <= in_flight and send_s < TARGET_TAKEOVER
    return lease_s, met


def report_job_runs(db: Database, daemons: Daemons) -> bool:
    """Each (job, due time) run by exactly one daemon, per the daemons' logs and the crawl runs."""
    ran: dict[tuple[str, str], list[int]] = defaultdict(list)
    skipped: Counter[tuple[str, str]] = Counter()
    for n, job, due, what in daemons.job_lines():
        if what == "running here":
            ran[(job, due)].append(n)
        else:
            skipped[(job, due)] += 1
    by_job: dict[str, list[tuple[str, list[int]]]] = defaultdict(list)
    for (job, due), who in sorted(ran.items()):
        by_job[job].append((due, who))
    ok = True
    print("scheduled runs (from the daemons' logs):")
    for job, dues in sorted(by_job.items()):
        doubled = [due for due, who in dues if len(who) > 1]
        per_daemon = Counter(n for _, who in dues for n in who)
        skips = sum(skipped[(job, due)] for due, _ in dues)
        print(
            f"  {job}: {len(dues)} due times, runs per due time "
            f"{sorted({len(who) for _, who in dues})}, skipped by the others {skips}, "
            f"ran by daemon {dict(sorted(per_daemon.items()))}"
        )
        ok &= not doubled
    crawls = [r for r in sources.recent_runs(db, limit=1000) if r.source == "feeds"]
    starts = Counter(r.started_at.replace(second=0, microsecond=0) for r in crawls)
    print(
        f"  crawl runs recorded for feeds: {len(crawls)}, in {len(starts)} distinct minutes "
        f"(most in one minute: {max(starts.values(), default=0)})"
    )
    ok &= bool(by_job) and len(crawls) == len(by_job.get("crawl:feeds", []))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("SENTINELLA_BENCH_POSTGRES_URL", ""))
    parser.add_argument("--daemons", type=int, default=3)
    parser.add_argument("--alerts", type=int, default=3000)
    parser.add_argument("--chats", type=int, default=300)
    parser.add_argument("--kills", type=int, default=10)
    args = parser.parse_args()
    if not args.database_url.startswith(("postgresql://", "postgres://")):
        parser.error("give a PostgreSQL URL (--database-url or $SENTINELLA_BENCH_POSTGRES_URL)")
    with tempfile.TemporaryDirectory() as tmp:
        return run(args.database_url, args.daemons, args.alerts, args.chats, args.kills, Path(tmp))


if __name__ == "__main__":
    raise SystemExit(main())
