"""HTTP-level tests of the board's doors: sign-in links, sessions, roles, CSRF, headers, rate limits."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from storage import members
from storage.audit import audit_log
from storage.db import Database
from tests.bot.harness import Clock
from tests.fakes.web_data import Board
from tests.web.conftest import csrf_of, new_link, sign_in, web_config
from web.app import create_app
from web.security import COOKIE

BOARD_PAGES = ["/bandi", "/bandi?stato=all&q=imballaggi", "/fonti", "/membri"]


async def test_without_a_session_every_board_page_sends_to_sign_in(
    client: httpx.AsyncClient, board: Board
) -> None:
    for path in [*BOARD_PAGES, f"/bandi/{board.calls['SYN1'].id}"]:
        response = await client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/accesso"
        assert "Bando sintetico" not in response.text


async def test_staff_and_admin_see_every_page(
    client: httpx.AsyncClient, sqlite_db: Database, board: Board, now: datetime
) -> None:
    for who in (board.staff, board.admin):
        client.cookies.clear()
        signed = await sign_in(client, sqlite_db, who.id, now)
        assert signed.status_code == 303 and signed.headers["location"] == "/bandi"
        for path in [*BOARD_PAGES, f"/bandi/{board.calls['SYN1'].id}"]:
            response = await client.get(path)
            assert response.status_code == 200, (who.role, path)
            assert who.name in response.text


async def test_a_member_link_signs_nobody_in(
    client: httpx.AsyncClient, sqlite_db: Database, board: Board, now: datetime
) -> None:
    response = await sign_in(client, sqlite_db, board.member.id, now)
    assert response.status_code == 403
    for path in BOARD_PAGES:
        assert (await client.get(path)).status_code == 303
    entry = audit_log(sqlite_db, action="web-signin")[0]
    assert entry.detail == {"refused": True}


async def test_a_member_demoted_after_signing_in_is_refused_at_the_next_page(
    client: httpx.AsyncClient, sqlite_db: Database, board: Board, now: datetime
) -> None:
    await sign_in(client, sqlite_db, board.staff.id, now)
    assert (await client.get("/bandi")).status_code == 200
    members.update_member(sqlite_db, board.staff.id, now=now, role="member")
    for path in BOARD_PAGES:
        refused = await client.get(path)
        assert refused.status_code == 403, path
        assert "Bando sintetico" not in refused.text
    members.update_member(sqlite_db, board.staff.id, now=now, role="staff", active=False)
    gone = await client.get("/bandi")
    assert gone.status_code == 303 and gone.headers["location"] == "/accesso"


async def test_links_are_one_time_expire_and_unknown_ones_say_so(
    client: httpx.AsyncClient, sqlite_db: Database, board: Board, now: datetime, clock: Clock
) -> None:
    token = new_link(sqlite_db, board.staff.id, now)
    page = await client.get(f"/accesso/{token}")
    # Opening the link (a link preview does) does not use it up.
    assert (await client.get(f"/accesso/{token}")).status_code == 200
    assert (await client.post(f"/accesso/{token}", data={"csrf": csrf_of(page.text)})).status_code == 303
    # Signing in changed the session's CSRF token: take the one the browser has now.
    fresh = csrf_of((await client.get("/bandi")).text)
    used = await client.post(f"/accesso/{token}", data={"csrf": fresh})
    assert used.status_code == 410 and "già stato usato" in used.text
    assert (await client.get(f"/accesso/{token}")).status_code == 410

    client.cookies.clear()
    late = new_link(sqlite_db, board.staff.id, now, ttl=timedelta(minutes=15))
    page = await client.get(f"/accesso/{late}")
    clock.advance(timedelta(minutes=16))
    expired = await client.post(f"/accesso/{late}", data={"csrf": csrf_of(page.text)})
    assert expired.status_code == 410 and "scaduto" in expired.text
    assert (await client.get(f"/accesso/{late}")).status_code == 410
    assert (await client.get("/bandi")).status_code == 303

    unknown = await client.get("/accesso/not-a-real-token")
    assert unknown.status_code == 404 and "non esiste" in unknown.text


async def test_every_form_needs_the_session_csrf_token(
    client: httpx.AsyncClient, sqlite_db: Database, board: Board, now: datetime
) -> None:
    token = new_link(sqlite_db, board.staff.id, now)
    await client.get(f"/accesso/{token}")
    for data in ({}, {"csrf": "forged"}):
        refused = await client.post(f"/accesso/{token}", data=data)
        assert refused.status_code == 403
    # The refused attempts did not use the link up.
    page = await client.get(f"/accesso/{token}")
    assert page.status_code == 200
    assert (await client.post(f"/accesso/{token}", data={"csrf": csrf_of(page.text)})).status_code == 303

    board_page = await client.get("/bandi")
    for path, data in (("/esci", {}), ("/esci", {"csrf": "x"}), ("/lingua", {"lang": "en"})):
        assert (await client.post(path, data=data)).status_code == 403, path
    assert (await client.get("/bandi")).status_code == 200  # still signed in

    # A token from another browser's session is no good either.
    async with httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url)) as other:
        other_page = await other.get("/accesso")
        assert (await client.post("/esci", data={"csrf": csrf_of(other_page.text)})).status_code == 403

    out = await client.post("/esci", data={"csrf": csrf_of(board_page.text)})
    assert out.status_code == 303 and out.headers["location"].startswith("/accesso")
    assert (await client.get("/bandi")).status_code == 303


async def test_language_switch_and_safe_return(
    client: httpx.AsyncClient, sqlite_db: Database, board: Board, now: datetime
) -> None:
    await sign_in(client, sqlite_db, board.staff.id, now)
    page = await client.get("/fonti")
    assert "Stato delle fonti" in page.text
    switched = await client.post("/lingua", data={"csrf": csrf_of(page.text), "lang": "en", "next": "/fonti"})
    assert switched.headers["location"] == "/fonti"
    assert "Source health" in (await client.get("/fonti")).text
    page = await client.get("/fonti")
    away = await client.post(
        "/lingua", data={"csrf": csrf_of(page.text), "lang": "it", "next": "//evil.example"}
    )
    assert away.headers["location"] == "/"


async def test_security_headers_and_cookie_flags(
    client: httpx.AsyncClient, sqlite_db: Database, board: Board, now: datetime
) -> None:
    response = await sign_in(client, sqlite_db, board.staff.id, now)
    cookie = response.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http base URL (tests, a private network)
    page = await client.get("/bandi")
    csp = page.headers["content-security-policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "<script" not in page.text and " style=" not in page.text and "onclick" not in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"


async def test_cookies_are_secure_when_served_over_tls(
    sqlite_db: Database, board: Board, now: datetime, clock: Clock
) -> None:
    config = web_config(base_url="https://bandi.example.org")
    app = create_app(sqlite_db, config, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=config.base_url) as c:
        response = await sign_in(c, sqlite_db, board.staff.id, now)
        assert "Secure" in response.headers["set-cookie"]


async def test_a_tampered_cookie_is_no_session(
    client: httpx.AsyncClient, sqlite_db: Database, board: Board, now: datetime
) -> None:
    await sign_in(client, sqlite_db, board.staff.id, now)
    value = client.cookies[COOKIE]
    head, mac = value.split(".")
    client.cookies.clear()
    client.cookies.set(COOKIE, head + "." + mac[::-1])
    assert (await client.get("/bandi")).status_code == 303


async def test_sign_in_attempts_are_rate_limited_per_client(client: httpx.AsyncClient, board: Board) -> None:
    statuses = [(await client.get(f"/accesso/guess-{n}")).status_code for n in range(25)]
    assert statuses[:20] == [404] * 20
    assert set(statuses[20:]) == {429}


@pytest.mark.parametrize("path", ["/", "/accesso", "/salute", "/feed/bandi.rss"])
async def test_public_pages_need_no_session(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code in (200, 303)
    assert "Laura Bianchi" not in response.text


def test_every_text_the_board_names_is_in_the_catalogue() -> None:
    # Every ``text(lang, "key")`` in the web app and every ``t("key")`` in its templates.
    import re
    from pathlib import Path

    from web.i18n import web_keys

    root = Path(__file__).resolve().parents[2] / "web"
    used: set[str] = set()
    for path in [*root.glob("*.py"), *root.glob("templates/*")]:
        source = path.read_text(encoding="utf-8")
        used |= {m.group(1) for m in re.finditer(r"\btext\(\s*[\w.]+\s*,\s*[\"']([\w.\-]+)[\"']", source)}
        used |= {m.group(1) for m in re.finditer(r"\bt\(\s*[\"']([\w.\-]+)[\"']", source)}
    used = {key for key in used if not key.endswith((".", "_"))}  # f"phase.{where}": a family
    assert len(used) > 20
    assert used <= web_keys(), sorted(used - web_keys())
