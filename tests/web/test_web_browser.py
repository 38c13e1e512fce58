"""The board in a real browser: the system's headless Chromium (Debian ``chromium``) driven by
Playwright, against uvicorn on a loopback port, signed in through a link the bot sent to the fake
Bot API. Skipped where no Chromium is installed (``.ci/run`` installs it).

Screenshots at 1280 and 375 px are written to ``$SENTINELLA_SCREENSHOTS`` (the README's ones
under docs/ are made this way) or to the test's temporary directory; every page is checked for
horizontal overflow at both widths.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from notifier.bot import BotServices, build_application
from storage.db import Database
from tests.bot.harness import Clock, FakeCrawler, Harness, make_config
from tests.fakes.browser import CHROMIUM, NEEDS_CHROMIUM
from tests.fakes.telegram_server import FakeBotAPI
from tests.fakes.web_data import Board
from tests.web.conftest import web_config
from web.access import WebAccess
from web.app import create_app
from web.config import WebConfig
from web.server import EmbeddedServer, server_config

playwright_api = pytest.importorskip("playwright.async_api")

pytestmark = NEEDS_CHROMIUM

WIDTHS = (1280, 375)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (``port`` 0: any free port; read it from ``getsockname()``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@dataclass
class Served:
    config: WebConfig
    base: str


@pytest.fixture
def served(sqlite_db: Database, board: Board, clock: Clock) -> Iterator[Served]:
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = web_config(base_url=f"http://127.0.0.1:{port}")
    app = create_app(sqlite_db, config, clock=clock)
    server = EmbeddedServer(server_config(app, config))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield Served(config, config.base_url)
    finally:
        server.stop()
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
async def bot(sqlite_db: Database, served: Served, clock: Clock) -> AsyncIterator[Harness]:
    with FakeBotAPI() as api:
        services = BotServices(web=WebAccess(sqlite_db, served.config, clock))
        app = build_application(db=sqlite_db, config=make_config(api), clock=clock, services=services)
        async with app:
            yield Harness(app, api, sqlite_db, clock, FakeCrawler())


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("SENTINELLA_SCREENSHOTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


async def overflow(page: object) -> int:
    """How many CSS pixels the page is wider than the window (0 when nothing sticks out)."""
    width: int = await page.evaluate(  # type: ignore[attr-defined]
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth"
    )
    return width


async def capture(page: object, shots: Path, name: str) -> None:
    """A screenshot of the current page at each width, each checked for overflow."""
    for width in WIDTHS:
        await page.set_viewport_size({"width": width, "height": 900})  # type: ignore[attr-defined]
        assert await overflow(page) <= 0, f"{name} overflows at {width} px"
        path = shots / f"{name}-{width}.png"
        await page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        assert path.stat().st_size > 5_000
    await page.set_viewport_size({"width": 1280, "height": 900})  # type: ignore[attr-defined]


async def test_staff_signs_in_filters_opens_a_call_and_signs_out(
    served: Served, bot: Harness, board: Board, shots: Path
) -> None:
    replies = await bot.send(1002, "/web")
    link = re.search(re.escape(served.base) + r"/accesso/[A-Za-z0-9_\-]+", replies.text)
    assert link, replies.text

    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="it-IT")
            page = await context.new_page()
            errors: list[str] = []
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

            await page.goto(link.group(0))
            await page.click("#signin")
            await page.wait_for_url(served.base + "/bandi")
            assert await page.inner_text("#count") == "5 bandi"
            await capture(page, shots, "board")

            # Filter: the text search and a source narrow the list to the packaging call.
            await page.fill("#q", "imballaggi")
            await page.select_option("#fonte", "lombardia")
            await page.click("#apply")
            await page.wait_for_url(re.compile(r".*/bandi\?.*q=imballaggi.*"))
            titles = await page.locator("#calls .title").all_inner_texts()
            assert titles == ["Bando sintetico Imballaggi sostenibili per la cosmetica"]
            # Forthcoming only.
            await page.goto(served.base + "/bandi")
            await page.select_option("#stato", "forthcoming")
            await page.click("#apply")
            forthcoming = await page.locator("#calls .title").all_inner_texts()
            assert len(forthcoming) == 2 and all("Sportello" in t or "Horizon" in t for t in forthcoming)

            # Open the call: fields, history, the duplicate on incentivi.gov.it, matches and answers.
            await page.goto(served.base + "/bandi?q=imballaggi&fonte=lombardia")
            await page.click("#calls .title")
            await page.wait_for_url(re.compile(r".*/bandi/\d+$"))
            assert "8 settembre 2026, ore 12:00" in await page.inner_text("#fields")
            assert "incentivi.gov.it" in await page.inner_text("#group")
            matches = await page.inner_text("#matches")
            assert "Laura Bianchi" in matches and "Mi interessa" in matches
            assert "Marco Verdi" in matches and "Non per noi" in matches
            assert "parola chiave «ricaricabile»" in matches
            await capture(page, shots, "call")

            await page.goto(served.base + "/fonti")
            assert "HTTP 503 dal portale SEDIA (sintetico)" in await page.inner_text("#source-sedia")
            await capture(page, shots, "sources")
            await page.goto(served.base + "/membri")
            assert "Example Packaging srl" in await page.inner_text(f"#member-{board.member.id}")
            await capture(page, shots, "members")

            # English, then sign out: the board is closed again.
            await page.click("button[name=lang]")
            assert await page.inner_text("h1") == "Members"
            await page.click("#logout")
            await page.wait_for_url(re.compile(r".*/accesso\?uscito=1$"))
            await page.goto(served.base + "/bandi")
            assert page.url == served.base + "/accesso"
            assert not errors, errors  # no CSP violation, no broken resource
        finally:
            await browser.close()
