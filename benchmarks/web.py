"""Web board speed with 20,000 calls, and the size of a member's calendar with 200 matches.

    python benchmarks/web.py [--calls 20000] [--matches 200] [--seconds 5]

Ingests synthetic calls (spread over four sources, half open, a quarter forthcoming, a quarter
closed) into a temporary SQLite database, signs a staff member in, and requests each page in a
loop through the ASGI app in process (no sockets: the figure is the app and the database, not
the network). Target: at least 50 pages/s for the filtered call list. Then enqueues 200 "new"
alerts for one member and prints the size of their iCalendar feed and the time to build it.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from pydantic import SecretStr

from storage import access, members, outbox
from storage.calls import list_calls
from storage.db import Database
from storage.ingest import ingest
from storage.records import ROME, CallRecord, CallStatus, Precision
from web.access import WebAccess
from web.app import create_app
from web.config import WebConfig

NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)
SOURCES = ("lombardia", "incentivi", "sedia", "feeds")
WORDS = ("imballaggi", "ricerca", "digitale", "export", "energia", "formazione", "fiere", "credito")


def synthetic(n: int) -> CallRecord:
    kind = n % 4
    closes = NOW + timedelta(days=(n % 180) + 1, hours=n % 9)
    status = CallStatus.OPEN
    opens = NOW - timedelta(days=10)
    if kind == 2:
        status, opens = CallStatus.FORTHCOMING, NOW + timedelta(days=(n % 30) + 1)
    elif kind == 3:
        status, closes = CallStatus.CLOSED, NOW - timedelta(days=(n % 300) + 1)
    word = WORDS[n % len(WORDS)]
    return CallRecord(
        source=SOURCES[n % len(SOURCES)],
        source_id=f"BENCH-{n}",
        url=f"https://example.org/bandi/sintetico-{n}",
        title=f"Bando sintetico {n} per {word} delle imprese cosmetiche",
        summary=f"Contributi sintetici per progetti di {word} (numero {n}).",
        status=status,
        opens=opens,
        opens_precision=Precision.DATE,
        closes=closes,
        closes_precision=Precision.DATETIME if n % 2 else Precision.DATE,
        granting_body="Ente sintetico",
    )


async def pages_per_second(client: httpx.AsyncClient, path: str, seconds: float) -> tuple[float, int]:
    response = await client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        assert (await client.get(path)).status_code == 200
        count += 1
    return count / (time.perf_counter() - started), len(response.content)


async def new_searches(client: httpx.AsyncClient, seconds: float) -> float:
    """Pages of a search never asked before (the text scan is not remembered yet)."""
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        word = WORDS[count % len(WORDS)][: 3 + count % 5] + f" {count % 997}"
        assert (await client.get(f"/bandi?q={word}&stato=all")).status_code == 200
        count += 1
    return count / (time.perf_counter() - started)


async def run(calls: int, matches: int, seconds: float, tmp: Path) -> int:
    db = Database(f"sqlite:///{tmp / 'web.db'}")
    db.upgrade()
    started = time.perf_counter()
    ingest(db, (synthetic(n) for n in range(calls)), now=NOW - timedelta(days=1))
    print(f"{calls} calls ingested in {time.perf_counter() - started:.1f} s")
    staff = members.upsert_member(db, now=NOW, name="Staff", role="staff", telegram_chat_id=1)
    config = WebConfig(enabled=True, base_url="https://bandi.example.org", secret_key=SecretStr("b" * 40))
    app = create_app(db, config, clock=lambda: NOW)
    transport = httpx.ASGITransport(app=app)
    failed = 0
    async with httpx.AsyncClient(transport=transport, base_url=config.base_url) as client:
        token = access.create_signin_link(db, staff.id, now=NOW, ttl=timedelta(minutes=5))
        page = await client.get(f"/accesso/{token}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        assert (await client.post(f"/accesso/{token}", data={"csrf": csrf.group(1)})).status_code == 303
        one = list_calls(db, limit=1)[0].id
        cases = [
            (
                "filtered list (source + deadline window)",
                "/bandi?fonte=lombardia&dal=2026-09-10&al=2026-11-30",
                50.0,
            ),
            ("filtered list (text search, repeated or paged)", "/bandi?q=imballaggi", None),
            ("default list (open and forthcoming, page 1)", "/bandi", None),
            ("list, page 100", "/bandi?pagina=100", None),
            ("topic filter (warm cache)", "/bandi?tema=packaging", None),
            ("a call", f"/bandi/{one}", None),
            ("source health", "/fonti", None),
        ]
        print(f"\nBoard pages with {calls} calls (SQLite, in process, {seconds:.0f} s each):")
        for label, path, target in cases:
            rate, size = await pages_per_second(client, path, seconds)
            if label.startswith("a call"):
                rate_new = await new_searches(client, seconds)
                print(f"  {'filtered list (text search, a new word each time)':48s} {rate_new:8.1f} pages/s")
            verdict = ""
            if target is not None:
                ok = rate >= target
                failed += not ok
                verdict = f"  (target >= {target:.0f}: {'ok' if ok else 'MISSED'})"
            print(f"  {label:48s} {rate:8.1f} pages/s  {size / 1024:6.1f} KiB{verdict}")

    member = members.upsert_member(db, now=NOW, name="Socio", telegram_chat_id=2)
    open_calls = [c for c in list_calls(db, open_only=True, now=NOW) if c.group_id is not None][:matches]
    items = [
        outbox.OutboxItem(member.id, c.group_id, c.id, "new", "telegram", {"reasons": ["tema Packaging"]})  # type: ignore[arg-type]
        for c in open_calls
    ]
    outbox.enqueue(db, items, now=NOW)
    url = WebAccess(db, config, lambda: NOW).calendar_link(member.id)
    async with httpx.AsyncClient(transport=transport, base_url=config.base_url) as client:
        started = time.perf_counter()
        body = (await client.get(url.removeprefix(config.base_url))).content
        elapsed = time.perf_counter() - started
    events = body.count(b"BEGIN:VEVENT")
    print(f"\nCalendar of a member with {len(items)} matches: {events} events, {len(body) / 1024:.1f} KiB "
          f"({len(body) / max(events, 1):.0f} bytes an event), built in {elapsed * 1000:.0f} ms")  # fmt: skip
    db.dispose()
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--matches", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(run(args.calls, args.matches, args.seconds, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
