"""The bot's /web and /calendario, through the fake Bot API, and the links they give."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import httpx

from notifier.bot import BotServices, build_application
from storage.audit import audit_log
from storage.db import Database
from tests.bot.harness import ADMIN_CHAT, Clock, FakeCrawler, Harness, make_config
from tests.fakes.telegram_server import FakeBotAPI
from tests.fakes.web_data import Board
from tests.web.conftest import BASE, csrf_of


def link_in(text: str, path: str) -> str:
    found = re.search(re.escape(BASE + path) + r"[A-Za-z0-9_.\-]+", text)
    assert found, text
    return found.group(0)


async def test_web_gives_staff_a_link_that_signs_in_once(
    web_bot: Harness, client: httpx.AsyncClient, sqlite_db: Database, board: Board
) -> None:
    replies = await web_bot.send(1002, "/web")
    url = link_in(replies.text, "/accesso/")
    assert "un solo accesso" in replies.text
    path = url.removeprefix(BASE)
    page = await client.get(path)
    assert (await client.post(path, data={"csrf": csrf_of(page.text)})).status_code == 303
    assert "Stefano Staff" in (await client.get("/bandi")).text
    entry = audit_log(sqlite_db, action="web-link")[0]
    assert entry.actor == f"staff:{board.staff.id}" and "expires" in entry.detail


async def test_web_is_refused_to_members_and_to_admin_chats_without_an_account(web_bot: Harness) -> None:
    refused = await web_bot.send(2001, "/web")
    assert "riservato allo staff" in refused.text and BASE not in refused.text
    no_account = await web_bot.send(ADMIN_CHAT, "/web")
    assert BASE not in no_account.text and "/invita staff" in no_account.text


async def test_sign_in_links_are_rate_limited_per_member(
    web_bot: Harness, sqlite_db: Database, board: Board
) -> None:
    for _ in range(5):
        assert BASE in (await web_bot.send(1001, "/web")).text
    refused = await web_bot.send(1001, "/web", language_code="en")
    assert "troppi link" in refused.text and BASE not in refused.text
    # An hour on, the allowance is back (counted in the database, not in memory).
    web_bot.clock.advance(timedelta(hours=1, minutes=1))
    assert BASE in (await web_bot.send(1001, "/web")).text
    # Others are not affected by one member's count.
    assert BASE in (await web_bot.send(1002, "/web")).text


async def test_calendario_gives_and_rotates_the_members_feed(
    web_bot: Harness, client: httpx.AsyncClient, sqlite_db: Database, board: Board, now: datetime
) -> None:
    first = link_in((await web_bot.send(2001, "/calendario")).text, "/calendario/")
    again = link_in((await web_bot.send(2001, "/calendario")).text, "/calendario/")
    assert first == again
    assert (await client.get(first.removeprefix(BASE))).status_code == 200
    rotated_reply = await web_bot.send(2001, "/calendario nuovo")
    rotated = link_in(rotated_reply.text, "/calendario/")
    assert rotated != first and "non funziona più" in rotated_reply.text
    assert (await client.get(first.removeprefix(BASE))).status_code == 404
    assert (await client.get(rotated.removeprefix(BASE))).status_code == 200
    assert audit_log(sqlite_db, action="calendar-rotate")[0].actor == f"member:{board.member.id}"
    usage = await web_bot.send(2001, "/calendario boh")
    assert "/calendario nuovo" in usage.text and BASE not in usage.text
    stranger = await web_bot.send(777, "/calendario")
    assert BASE not in stranger.text


async def test_without_the_web_app_the_commands_say_so(sqlite_db: Database, clock: Clock) -> None:
    with FakeBotAPI() as server:
        app = build_application(db=sqlite_db, config=make_config(server), clock=clock, services=BotServices())
        async with app:
            bot = Harness(app, server, sqlite_db, clock, FakeCrawler())
            bot.add_member(4242, role="staff", name="Sara Staff")
            assert "non è attiva" in (await bot.send(4242, "/web")).text
            assert "non è attiva" in (await bot.send(4242, "/calendario")).text
