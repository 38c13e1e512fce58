"""Child process of the crash test: dispatch everything due, as the daemon would, until killed.

Usage: python delivery_crash_child.py DB_URL BASE_URL TOKEN NOW_ISO
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

from pydantic import SecretStr

from notifier.config import DeliveryConfig, TelegramConfig
from notifier.delivery.channels import TelegramChannel
from notifier.delivery.dispatch import dispatch
from storage.db import Database


async def main(db_url: str, base_url: str, token: str, now: datetime) -> None:
    db = Database(db_url)
    channel = TelegramChannel(
        TelegramConfig(token=SecretStr(token), base_url=base_url, per_chat_interval=0, read_timeout=30)
    )
    await dispatch(db, {"telegram": channel}, now=now, limit=1000, config=DeliveryConfig(concurrency=4))
    print("finished", flush=True)  # the test kills us before this


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], datetime.fromisoformat(sys.argv[4])))
