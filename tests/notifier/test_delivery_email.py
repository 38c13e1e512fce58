"""The e-mail channel against a real SMTP server (aiosmtpd) on loopback: batches, failures, STARTTLS."""

from __future__ import annotations

import email
import email.policy
import smtplib
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from pydantic import SecretStr, ValidationError

from notifier.config import DeliveryConfig, EmailConfig
from notifier.delivery.channels import EmailChannel, Permanent
from notifier.delivery.dispatch import dispatch
from storage import outbox
from storage.db import Database
from tests.fakes.delivery_data import add_calls, add_member, alert_items, call_record

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps every message and can refuse recipients on demand."""

    messages: list[bytes] = field(default_factory=list)
    connections: int = 0
    tls_sessions: int = 0
    rcpt_answers: list[str] = field(default_factory=list)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if session.ssl is None:
            self.connections += 1
        else:
            self.tls_sessions += 1
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_answers:
            return self.rcpt_answers.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, Recorder]]:
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def email_config(port: int, **overrides: Any) -> EmailConfig:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from_address": "avvisi@cluster.example",
        "list_unsubscribe_mailto": "unsubscribe@cluster.example",
        "timeout": 5,
    }
    values.update(overrides)
    return EmailConfig(**values)


def setup_rows(db: Database, now: datetime, count: int) -> list[int]:
    members = [
        add_member(db, now=now, name=f"Socio {i}", email=f"socio{i}@example.com") for i in range(count)
    ]
    calls = add_calls(
        db, [call_record(i, now=now, title=f"Bando <b>{i}</b> & co") for i in range(count)], now=now
    )
    outbox.enqueue(db, alert_items(list(zip(members, calls, strict=True)), channel="email"), now=now)
    return members


async def test_batch_is_sent_over_one_connection(
    db: Database, smtp: tuple[Controller, Recorder], now: datetime
) -> None:
    controller, handler = smtp
    setup_rows(db, now, 3)
    channel = EmailChannel(email_config(controller.port))
    report = await dispatch(db, {"email": channel}, now=now, limit=10)
    assert report.sent == 3
    assert handler.connections == 1
    assert len(handler.messages) == 3
    parsed = email.message_from_bytes(handler.messages[0], policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert str(parsed["Subject"]) == "[Sentinella] Nuovo bando: Bando <b>0</b> & co"
    assert parsed["List-Unsubscribe"] == "<mailto:unsubscribe@cluster.example?subject=unsubscribe>"
    rows = outbox.list_rows(db)
    assert {r.receipt for r in rows} == {f"<alert-{r.id}.sentinella@cluster.example>" for r in rows}
    html_part = parsed.get_body(("html",))
    assert html_part is not None and "Bando &lt;b&gt;0&lt;/b&gt; &amp; co" in html_part.get_content()


async def test_connection_renewed_after_batch_size(
    db: Database, smtp: tuple[Controller, Recorder], now: datetime
) -> None:
    controller, handler = smtp
    setup_rows(db, now, 3)
    report = await dispatch(
        db, {"email": EmailChannel(email_config(controller.port, batch_size=2))}, now=now, limit=10
    )
    assert report.sent == 3
    assert handler.connections == 2


async def test_temporary_and_permanent_refusals(
    db: Database, smtp: tuple[Controller, Recorder], now: datetime
) -> None:
    controller, handler = smtp
    setup_rows(db, now, 3)
    handler.rcpt_answers = ["451 4.3.0 Try again later", "550 5.1.1 No such user"]
    report = await dispatch(db, {"email": EmailChannel(email_config(controller.port))}, now=now, limit=10)
    assert (report.failed, report.dead, report.sent) == (1, 1, 1)
    first, second, third = outbox.list_rows(db)
    assert first.state == "failed" and first.last_error is not None and "451" in first.last_error
    assert second.state == "dead" and second.last_error is not None and "550" in second.last_error
    assert third.state == "sent"
    retry = await dispatch(
        db, {"email": EmailChannel(email_config(controller.port))}, now=now + timedelta(hours=1), limit=10
    )
    assert retry.sent == 1
    assert len(handler.messages) == 2


async def test_smtp_outage_then_recovery(db: Database, now: datetime) -> None:
    setup_rows(db, now, 3)
    port = free_port()
    config = DeliveryConfig(concurrency=1, backoff_seconds=[60], down_after_failures=2)
    down = await dispatch(db, {"email": EmailChannel(email_config(port))}, now=now, limit=10, config=config)
    # Two refused connections in a row, for two messages: the channel is down, the third waits.
    assert down.down == ["email"]
    assert (down.failed, down.returned, down.sent) == (2, 1, 0)
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        up = await dispatch(
            db, {"email": EmailChannel(email_config(port))}, now=now + timedelta(minutes=1), limit=10
        )
    finally:
        controller.stop()
    assert up.sent == 3
    assert outbox.backlog(db)["sent"] == 3


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_starttls(db: Database, now: datetime, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    handler = Recorder()
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), tls_context=server_context, require_starttls=True
    )
    controller.start()
    try:
        setup_rows(db, now, 2)
        client_context = ssl.create_default_context(cafile=str(cert))
        channel = EmailChannel(email_config(controller.port, security="starttls"), ssl_context=client_context)
        report = await dispatch(db, {"email": channel}, now=now, limit=10)
    finally:
        controller.stop()
    assert report.sent == 2
    assert handler.tls_sessions == 1 and len(handler.messages) == 2


# --- no password in clear ---------------------------------------------------------------------


@pytest.mark.parametrize("host", ["smtp.example.com", "192.0.2.10", "localhost.example.com"])
def test_config_refuses_a_login_without_tls_to_another_machine(host: str) -> None:
    with pytest.raises(ValidationError, match="starttls"):
        EmailConfig(host=host, security="none", username="sentinella", password=SecretStr("s3cret"))
    # The same login over TLS, or no login at all, is fine.
    assert EmailConfig(host=host, security="starttls", username="sentinella").enabled
    assert EmailConfig(host=host, security="tls", username="sentinella").enabled
    assert EmailConfig(host=host, security="none").enabled


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.0.1.1", "::1", "[::1]", "mail.localhost"])
def test_a_local_relay_may_take_a_login_without_tls(host: str) -> None:
    assert EmailConfig(host=host, security="none", username="sentinella").enabled


async def test_channel_refuses_a_clear_text_login_before_connecting(
    now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A config that skipped validation: the channel must still not send the password.
    opened: list[tuple[Any, ...]] = []

    class NoSMTP:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            opened.append(args)

    monkeypatch.setattr(smtplib, "SMTP", NoSMTP)
    config = EmailConfig.model_construct(
        host="smtp.example.com", security="none", username="sentinella", password=SecretStr("s3cret")
    )
    message = EmailMessage()
    message["Message-ID"] = "<x@cluster.example>"
    with pytest.raises(Permanent, match="without TLS"):
        await EmailChannel(config).send_message(message, "socio@example.com")
    assert opened == []


async def test_login_without_tls_to_a_local_relay(db: Database, now: datetime) -> None:
    logins: list[tuple[str, str]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=True)

    handler = Recorder()
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), authenticator=authenticator, auth_require_tls=False
    )
    controller.start()
    try:
        setup_rows(db, now, 1)
        config = email_config(controller.port, username="relay", password="local")
        report = await dispatch(db, {"email": EmailChannel(config)}, now=now, limit=10)
    finally:
        controller.stop()
    assert report.sent == 1 and logins == [("relay", "local")]


async def test_admin_notices_by_email_in_each_admins_language(
    db: Database, smtp: tuple[Controller, Recorder], now: datetime
) -> None:
    from notifier import catalogue
    from notifier.config import TelegramConfig
    from notifier.delivery.admin import notify_admins
    from storage import members, notices

    controller, handler = smtp
    members.upsert_member(db, now=now, name="Ada", role="admin", email="ada@cluster.example", language="it")
    members.upsert_member(db, now=now, name="Bob", role="admin", email="bob@cluster.example", language="en")
    notices.raise_notice(
        db,
        "source:sedia",
        catalogue.notice("notice.source_failing", source="sedia", outcome="failed", reason=""),
        now=now,
    )
    config = email_config(controller.port)
    channel = EmailChannel(config)
    assert await notify_admins(db, {"email": channel}, telegram=TelegramConfig(), email=config, now=now) == 1
    by_to = {}
    for raw in handler.messages:
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        by_to[str(parsed["To"])] = parsed
    ada, bob = by_to["ada@cluster.example"], by_to["bob@cluster.example"]
    assert str(ada["Subject"]) == "Sentinella: avvisi per gli amministratori"
    assert ada["Content-Language"] == "it" and ada["Auto-Submitted"] == "auto-generated"
    assert "La fonte sedia continua a non funzionare (failed)" in ada.get_content()
    assert str(bob["Subject"]) == "Sentinella: admin notices"
    assert bob["Content-Language"] == "en"
    assert "Source sedia keeps failing (failed)" in bob.get_content()
    assert bob["Message-ID"].endswith("@cluster.example>")
