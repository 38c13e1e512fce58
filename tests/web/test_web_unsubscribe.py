"""One-click unsubscribe (RFC 8058) from the e-mail actually sent to the web page that acts on it."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime
from email.message import EmailMessage

import httpx
import pytest
from aiosmtpd.controller import Controller

from notifier.delivery.channels import EmailChannel
from notifier.delivery.dispatch import dispatch
from notifier.messages.digest import digest_email
from notifier.messages.unsubscribe import make_token, read_token
from scheduler.settings import load_settings
from storage import members
from storage.audit import audit_log
from storage.db import Database
from tests.bot.harness import Clock
from tests.fakes.web_data import SECRET, Board
from tests.notifier.test_delivery_email import Recorder, smtp  # noqa: F401 - the SMTP fixture
from tests.web.conftest import csrf_of, web_config
from web.app import create_app

BASE = "https://bandi.example.org"


def _settings(port: int) -> object:
    return load_settings(
        read_file=False,
        environ={
            "SENTINELLA_WEB__ENABLED": "true",
            "SENTINELLA_WEB__BASE_URL": BASE,
            "SENTINELLA_WEB__SECRET_KEY": SECRET,
            "SENTINELLA_EMAIL__HOST": "127.0.0.1",
            "SENTINELLA_EMAIL__PORT": str(port),
            "SENTINELLA_EMAIL__SECURITY": "none",
            "SENTINELLA_EMAIL__FROM_ADDRESS": "avvisi@cluster.example",
            "SENTINELLA_EMAIL__LIST_UNSUBSCRIBE_MAILTO": "unsubscribe@cluster.example",
        },
    )


@pytest.fixture
async def tls_client(sqlite_db: Database, board: Board, clock: Clock) -> httpx.AsyncClient:
    app = create_app(sqlite_db, web_config(base_url=BASE), clock=clock)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


def _links(message: EmailMessage) -> tuple[str, str]:
    header = str(message["List-Unsubscribe"])
    found = re.fullmatch(r"<(https://[^>]+)>, <(mailto:[^>]+)>", header)
    assert found, header
    return found.group(1), found.group(2)


@pytest.mark.integration
async def test_one_click_from_a_sent_alert_turns_off_that_recipients_email_alerts(
    sqlite_db: Database,
    board: Board,
    now: datetime,
    smtp: tuple[Controller, Recorder],  # noqa: F811
    tls_client: httpx.AsyncClient,
) -> None:
    controller, handler = smtp
    settings = _settings(controller.port)
    channel = EmailChannel(settings.email)  # type: ignore[attr-defined]
    report = await dispatch(sqlite_db, {"email": channel}, now=now, limit=10)
    await channel.aclose()
    # Laura's three alerts; Marco's was held back by his "Non per noi".
    assert report.sent == 3
    sent = [email.message_from_bytes(m, policy=email.policy.default) for m in handler.messages]
    laura = [m for m in sent if "laura@example.com" in str(m["To"])]
    assert len(laura) == 3
    url, mailto = _links(laura[0])  # type: ignore[arg-type]
    assert url.startswith(BASE + "/disiscrizione/")
    assert laura[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mailto.startswith("mailto:unsubscribe@cluster.example?subject=unsubscribe%20")
    # Per recipient: every alert to Laura carries her own link.
    assert {_links(m)[0] for m in laura} == {url}  # type: ignore[arg-type]
    body = laura[0].get_body(("html",))
    assert body is not None and url in body.get_content()
    token = url.rsplit("/", 1)[1]
    assert read_token(SECRET, token) == (board.member.id, "alerts")

    # Marco gets e-mail too: the click must leave him alone.
    members.set_profile(sqlite_db, board.other.id, {"channels": ["telegram", "email"]}, now=now)
    # What a mail provider does on "Unsubscribe": a POST with no cookie and no page.
    async with tls_client as client:
        done = await client.post(url.removeprefix(BASE), data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    profile = members.get_profile(sqlite_db, board.member.id)
    assert profile is not None and profile["channels"] == ["telegram"]
    assert profile["topics"] == ["packaging"]  # nothing else changed
    entry = audit_log(sqlite_db, action="unsubscribe")[0]
    assert entry.actor == f"member:{board.member.id}"
    assert entry.detail == {"scope": "alerts", "via": "one-click", "changed": True}
    other = members.get_profile(sqlite_db, board.other.id)
    assert other is not None and "email" in other["channels"]


async def test_alerts_already_planned_are_not_sent_after_the_click(
    sqlite_db: Database, board: Board, tls_client: httpx.AsyncClient
) -> None:
    from storage import outbox

    pending = [r for r in outbox.list_rows(sqlite_db, member_id=board.member.id) if r.channel == "email"]
    assert pending and {r.state for r in pending} == {"pending"}
    path = "/disiscrizione/" + make_token(SECRET, board.member.id, "alerts")
    async with tls_client as client:
        assert (await client.post(path, data={"List-Unsubscribe": "One-Click"})).status_code == 200
    rows = outbox.list_rows(sqlite_db, member_id=board.member.id)
    assert {r.state for r in rows if r.channel == "email"} == {"dead"}
    assert {r.state for r in rows if r.channel == "telegram"} == {"sent"}
    others = outbox.list_rows(sqlite_db, member_id=board.other.id)
    assert {r.state for r in others if r.channel == "email"} == {"pending"}


async def test_the_page_asks_first_and_the_form_needs_its_token(
    sqlite_db: Database, board: Board, tls_client: httpx.AsyncClient
) -> None:
    path = "/disiscrizione/" + make_token(SECRET, board.member.id, "alerts")
    async with tls_client as client:
        page = await client.get(path)
        assert page.status_code == 200 and "Disiscrivimi" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
        # Opening the page (a link scanner does) changes nothing, and is recorded.
        assert "email" in (members.get_profile(sqlite_db, board.member.id) or {})["channels"]
        seen = audit_log(sqlite_db, action="unsubscribe-page")[0]
        assert seen.actor == f"member:{board.member.id}" and seen.detail == {"scope": "alerts"}
        assert (await client.post(path, data={})).status_code == 403
        assert (await client.post(path, data={"csrf": "forged"})).status_code == 403
        assert "email" in (members.get_profile(sqlite_db, board.member.id) or {})["channels"]
        done = await client.post(path, data={"csrf": csrf_of(page.text)})
    assert done.status_code == 200 and "non riceverai più segnalazioni" in done.text
    assert (members.get_profile(sqlite_db, board.member.id) or {})["channels"] == ["telegram"]
    assert audit_log(sqlite_db, action="unsubscribe")[0].detail["via"] == "page"


async def test_forged_and_foreign_tokens_do_nothing(
    sqlite_db: Database, board: Board, tls_client: httpx.AsyncClient
) -> None:
    genuine = make_token(SECRET, board.member.id, "alerts")
    head, mac = genuine.split(".")
    forged_for_other = make_token(SECRET, board.other.id, "alerts").split(".")[0] + "." + mac
    other_key = make_token("another-secret-key-entirely-0123456789", board.member.id, "alerts")
    async with tls_client as client:
        for token in (head + "." + mac[::-1], forged_for_other, other_key, "garbage", genuine + "x"):
            page = await client.get(f"/disiscrizione/{token}")
            assert page.status_code == 404, token
            post = await client.post(f"/disiscrizione/{token}", data={"List-Unsubscribe": "One-Click"})
            assert post.status_code == 404, token
    assert audit_log(sqlite_db, action="unsubscribe") == []


async def test_the_digest_link_turns_off_only_the_email_digest(
    sqlite_db: Database, board: Board, now: datetime, tls_client: httpx.AsyncClient
) -> None:
    from notifier.planning.digest import build_digest

    members.update_member(sqlite_db, board.staff.id, now=now, digest_email=True, digest_telegram=True)
    members.set_profile(sqlite_db, board.staff.id, {"topics": ["packaging"], "channels": ["email"]}, now=now)
    settings = _settings(25)
    digest = build_digest(sqlite_db, now=now, config=settings.digest, matching=settings.matching)  # type: ignore[attr-defined]
    message = digest_email(digest, to="stefano@example.org", email=settings.email, member_id=board.staff.id)  # type: ignore[attr-defined]
    url, mailto = _links(message)
    assert read_token(SECRET, url.rsplit("/", 1)[1]) == (board.staff.id, "digest")
    token = url.rsplit("/", 1)[1]
    assert mailto.endswith(f"?subject=unsubscribe%20{token}")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Content-Language"] == "it"
    # The footer of both parts carries the same personal link.
    for kind in ("plain", "html"):
        part = message.get_body((kind,))
        assert part is not None and url in part.get_content()
    async with tls_client as client:
        page = await client.get(url.removeprefix(BASE))
        assert "riepilogo" in page.text
        assert (
            await client.post(url.removeprefix(BASE), data={"List-Unsubscribe": "One-Click"})
        ).status_code == 200
    staff = members.get_member(sqlite_db, board.staff.id)
    assert staff is not None and not staff.digest_email and staff.digest_telegram
    # The member's e-mail alerts are not touched.
    assert (members.get_profile(sqlite_db, board.staff.id) or {}).get("channels") == ["email"]


def test_without_the_web_app_messages_keep_the_configured_links() -> None:
    settings = load_settings(read_file=False, environ={"SENTINELLA_WEB__BASE_URL": BASE})
    assert settings.email.unsubscribe_base_url is None and settings.email.unsubscribe_secret is None
