"""The daemon and a Bot API that rejects the token or cannot be reached (in process, no network)."""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import datetime

import pytest
from pydantic import SecretStr

from notifier.config import TelegramConfig
from scheduler.daemon import Daemon
from scheduler.settings import Settings, SettingsError
from storage.db import Database
from storage.records import ROME
from tests.fakes.telegram_server import FakeBotAPI

NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)


def quiet_settings(db: Database, telegram: TelegramConfig) -> Settings:
    settings = Settings(database_url=db.url, now=NOW, telegram=telegram)
    for name in settings.sources.enabled():
        getattr(settings.sources, name).enabled = False
    return settings


async def test_a_rejected_token_stops_the_daemon_without_quoting_it(sqlite_db: Database) -> None:
    with FakeBotAPI() as server:
        telegram = TelegramConfig(token=SecretStr("999:WRONG-TOKEN-VALUE"), base_url=server.base_url)
        daemon = Daemon(quiet_settings(sqlite_db, telegram), sqlite_db, clock=lambda: NOW)
        with pytest.raises(SettingsError) as info:
            await asyncio.wait_for(daemon.run(), timeout=20)
    assert "telegram.token" in str(info.value)
    assert "WRONG-TOKEN-VALUE" not in str(info.value)


async def test_an_unreachable_bot_api_does_not_stop_the_daemon(
    sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    telegram = TelegramConfig(
        token=SecretStr("123:TEST"), base_url=f"http://127.0.0.1:{port}/bot", connect_timeout=1
    )
    daemon = Daemon(quiet_settings(sqlite_db, telegram), sqlite_db, clock=lambda: NOW)
    caplog.set_level(logging.INFO, logger="sentinella.daemon")
    running = asyncio.create_task(daemon.run())
    for _ in range(200):
        if "dispatch" in daemon.state.last_jobs:
            break
        await asyncio.sleep(0.05)
    assert not running.done(), "the daemon stopped"
    assert daemon.state.last_jobs["dispatch"].startswith("ok")  # delivery runs without the bot
    assert any("cannot be reached" in r.getMessage() for r in caplog.records)
    daemon.stop.set()
    assert await asyncio.wait_for(running, timeout=10) == 0
