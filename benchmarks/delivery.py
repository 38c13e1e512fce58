"""Delivery throughput: 2,000 alerts through the real dispatcher to the fake Bot API on loopback.

The fake server enforces Telegram's flood limits (30 messages in any second overall, one message
a second per chat) and answers 429 to anything over them. Target: at least 25 messages/s
sustained with no 429 received.

    python benchmarks/delivery.py [--alerts 2000] [--chats 200] [--batch 500]

Prints messages/s (first send to last confirmation), the 429s the server answered, and the
outbox backlog at the end. Uses a temporary SQLite database; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr

from notifier.config import DeliveryConfig, TelegramConfig
from notifier.delivery.channels import TelegramChannel
from notifier.delivery.dispatch import dispatch
from storage import outbox
from storage.db import Database
from storage.records import ROME
from tests.fakes.delivery_data import add_calls, add_members, alert_items, call_record
from tests.fakes.telegram_server import FakeBotAPI, FloodLimits

NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)


async def run(alerts: int, chats: int, batch: int, tmp: Path) -> int:
    db = Database(f"sqlite:///{tmp / 'delivery.db'}")
    db.upgrade()
    per_chat = -(-alerts // chats)
    members = add_members(db, now=NOW, chat_ids=[10_000 + i for i in range(chats)])
    calls = add_calls(db, [call_record(n, now=NOW) for n in range(per_chat)], now=NOW)
    pairs = [(m, c) for m in members for c in calls][:alerts]
    enqueued = outbox.enqueue(db, alert_items(pairs), now=NOW)
    print(f"{enqueued} alerts for {chats} chats ({per_chat} each), claimed {batch} per dispatch run")

    with FakeBotAPI(limits=FloodLimits(overall_per_second=30, per_chat_interval=1.0)) as server:
        config = TelegramConfig(token=SecretStr(server.token), base_url=server.base_url)
        channel = TelegramChannel(config)
        await channel._ensure_ready()
        delivery = DeliveryConfig()
        runs = 0
        started = time.monotonic()
        try:
            while True:
                report = await dispatch(db, {"telegram": channel}, now=NOW, limit=batch, config=delivery)
                runs += 1
                if report.claimed == 0:
                    break
        finally:
            await channel.aclose()
        elapsed = time.monotonic() - started
        sent = server.sent_messages()
        window = (sent[-1].answered_at or sent[-1].at) - sent[0].at if len(sent) > 1 else elapsed
        rate = len(sent) / window if window > 0 else float("inf")
        print(f"sent {len(sent)} messages in {window:.1f} s over {runs - 1} dispatch runs")
        print(f"messages/s: {rate:.1f} (target >= 25)")
        print(f"429 answered by the server: {server.flood_429s} (target 0)")
        print(f"backlog: {outbox.backlog(db)}")
        ok = rate >= 25 and server.flood_429s == 0 and len(sent) == enqueued
    db.dispose()
    print("OK" if ok else "BELOW TARGET")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(run(args.alerts, args.chats, args.batch, Path(tmp)))


if __name__ == "__main__":
    raise SystemExit(main())
