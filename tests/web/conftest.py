"""Fixtures of the web tests: a populated board database, the app, an HTTP client, the bot with
the web app's links, and signing in the way a browser does (link → confirmation page → POST)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from notifier.bot import BotServices, build_application
from storage import access
from storage.db import Database
from tests.bot.harness import Clock, FakeCrawler, Harness, make_config
from tests.fakes.telegram_server import FakeBotAPI
from tests.fakes.web_data import SECRET, Board, populate
from web.access import WebAccess
from web.app import create_app
from web.config import WebConfig

BASE = "http://testserver"


def web_config(**overrides: Any) -> WebConfig:
    values: dict[str, Any] = {"enabled": True, "base_url": BASE, "secret_key": SecretStr(SECRET)}
    values.update(overrides)
    return WebConfig(**values)


@pytest.fixture
def clock(now: datetime) -> Clock:
    return Clock(now)


@pytest.fixture
def board(sqlite_db: Database, now: datetime) -> Board:
    return populate(sqlite_db, now)


@pytest.fixture
def config() -> WebConfig:
    return web_config()


@pytest.fixture
def app(sqlite_db: Database, board: Board, config: WebConfig, clock: Clock) -> Starlette:
    return create_app(sqlite_db, config, clock=clock)


@pytest.fixture
async def client(app: Starlette, config: WebConfig) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=config.base_url) as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def new_link(db: Database, member_id: int, now: datetime, ttl: timedelta = timedelta(minutes=15)) -> str:
    return access.create_signin_link(db, member_id, now=now, ttl=ttl)


async def sign_in(client: httpx.AsyncClient, db: Database, member_id: int, now: datetime) -> httpx.Response:
    token = new_link(db, member_id, now)
    page = await client.get(f"/accesso/{token}")
    assert page.status_code == 200
    return await client.post(f"/accesso/{token}", data={"csrf": csrf_of(page.text)})


@pytest.fixture
async def web_bot(
    sqlite_db: Database, board: Board, config: WebConfig, clock: Clock
) -> AsyncIterator[Harness]:
    """The bot, with the web app's links (as the daemon wires it), on the fake Bot API."""
    with FakeBotAPI() as server:
        services = BotServices(web=WebAccess(sqlite_db, config, clock))
        app = build_application(db=sqlite_db, config=make_config(server), clock=clock, services=services)
        async with app:
            await app.start()
            try:
                yield Harness(app, server, sqlite_db, clock, FakeCrawler())
            finally:
                await app.stop()
