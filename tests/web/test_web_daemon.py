"""`sentinella run` with `[web] enabled`: the daemon serves the board in its own loop, the bot
hands out links from it, and both stop together."""

from __future__ import annotations

import asyncio
import re
import socket
from datetime import datetime

import httpx
from pydantic import SecretStr

from notifier.config import TelegramConfig
from scheduler.daemon import Daemon
from scheduler.settings import Settings
from storage import members
from storage.db import Database
from storage.records import ROME
from tests.fakes.telegram_server import FakeBotAPI
from tests.fakes.web_data import SECRET
from web.config import WebConfig

NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_daemon_serves_the_web_app_and_the_bot_links_to_it(sqlite_db: Database) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    staff = members.upsert_member(
        sqlite_db, now=NOW, name="Stefano Staff", role="staff", telegram_chat_id=1002
    )
    with FakeBotAPI() as server:
        settings = Settings(
            database_url=sqlite_db.url,
            now=NOW,
            telegram=TelegramConfig(token=SecretStr(server.token), base_url=server.base_url),
            web=WebConfig(enabled=True, port=port, base_url=base, secret_key=SecretStr(SECRET)),
        )
        for name in settings.sources.enabled():
            getattr(settings.sources, name).enabled = False
        daemon = Daemon(settings, sqlite_db, clock=lambda: NOW)
        running = asyncio.create_task(daemon.run())
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(200):
                try:
                    if (await client.get("/salute")).text == "ok":
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the web app did not answer")
            assert (await client.get("/bandi")).status_code == 303
            # The e-mail channel got the per-recipient unsubscribe links from [web].
            assert settings.email.unsubscribe_base_url == base
            assert daemon._web_access() is not None
            link = daemon._web_access().signin_link(staff.id)  # type: ignore[union-attr]
            assert link is not None and link.url.startswith(base + "/accesso/")
            page = await client.get(link.url.removeprefix(base))
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None
            signed = await client.post(link.url.removeprefix(base), data={"csrf": csrf.group(1)})
            assert signed.status_code == 303
            assert "Stefano Staff" in (await client.get("/bandi")).text
        daemon.stop.set()
        assert await asyncio.wait_for(running, timeout=15) == 0
    with socket.socket() as again:  # the port was released
        again.bind(("127.0.0.1", port))
