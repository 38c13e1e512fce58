"""Fixtures of the bot tests: the fake Bot API server, a pinned clock, the running bot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import pytest

from notifier.bot import BotServices, build_application
from storage.db import Database
from tests.bot.harness import Clock, FakeCrawler, Harness, make_config
from tests.fakes.telegram_server import FakeBotAPI


@pytest.fixture
def server() -> Iterator[FakeBotAPI]:
    with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
def clock(now: datetime) -> Clock:
    return Clock(now)


@pytest.fixture
def crawler() -> FakeCrawler:
    return FakeCrawler()


@pytest.fixture
def status() -> dict[str, Any]:
    return {"next crawl sedia": "2026-09-02 12:00", "jobs": 6}


@pytest.fixture
async def bot(
    sqlite_db: Database, server: FakeBotAPI, clock: Clock, crawler: FakeCrawler, status: dict[str, Any]
) -> AsyncIterator[Harness]:
    services = BotServices(start_crawl=crawler, status=lambda: status)
    app = build_application(db=sqlite_db, config=make_config(server), clock=clock, services=services)
    async with app:
        await app.start()
        try:
            yield Harness(app, server, sqlite_db, clock, crawler)
        finally:
            await app.stop()


@pytest.fixture
async def bot_on_each_engine(
    db: Database, server: FakeBotAPI, clock: Clock, crawler: FakeCrawler
) -> AsyncIterator[Harness]:
    """The bot on SQLite and on PostgreSQL (when configured): for the paths that write."""
    app = build_application(
        db=db, config=make_config(server), clock=clock, services=BotServices(start_crawl=crawler)
    )
    async with app:
        await app.start()
        try:
            yield Harness(app, server, db, clock, crawler)
        finally:
            await app.stop()
