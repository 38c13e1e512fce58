"""notifier.planning.digest: content, order, escaping, languages, sending and recording, on real storage."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from typing import Any, ClassVar

import pytest

from notifier.config import DigestConfig, EmailConfig, MatchingConfig, TelegramConfig
from notifier.delivery.digest import (
    ConsoleDigestSender,
    DigestRecipient,
    EmailDigestSender,
    digest_senders,
    run_digest,
    send_digest,
)
from notifier.matching.eligibility import COMPANY_TYPES
from notifier.matching.profiles import Profile
from notifier.messages.digest import digest_email, render_digest, render_digest_telegram
from notifier.planning.digest import (
    OTHER,
    Digest,
    DigestCall,
    ThemeSection,
    build_digest,
    cluster_profile,
    current_slot,
    digest_for_date,
    scheduled_at,
)
from storage import planning
from storage.calls import CallView
from storage.db import Database
from storage.records import ROME, CallRecord, CallStatus
from storage.sources import finish_run, start_run
from tests.fakes.planning_data import add_member, packaging_call, store

CONFIG = DigestConfig()
NASTY = "Imballaggi <b>green</b> & </a><script>alert(1)</script> per la cosmesi"


@dataclass(frozen=True)
class Why:
    term: str

    def line(self, lang: str) -> str:
        return f"term «{self.term}»" if lang == "en" else f"termine «{self.term}»"


@dataclass(frozen=True)
class Hit:
    member_id: int
    score: float
    reasons: tuple[Why, ...]


class CountingMatcher:
    """Scores a call by how many of the cluster profile's keywords its title contains."""

    profiles: ClassVar[list[Profile]] = []

    def __init__(self, profiles: Sequence[tuple[int, Profile]], config: MatchingConfig) -> None:
        self.keywords = [k for _, p in profiles for k in p.keywords]
        CountingMatcher.profiles = [p for _, p in profiles]

    def match(self, call: CallView, *, now: datetime) -> list[Hit]:
        terms = [k for k in self.keywords if k.lower() in call.title.lower()]
        return [Hit(0, float(len(terms)), tuple(Why(t) for t in terms))] if terms else []


def lombardia(n: int, title: str, *, now: datetime, **fields: Any) -> CallRecord:
    return packaging_call(
        f"RLP1202607{n:04d}",
        now=now,
        title=title,
        url=f"https://www.bandi.regione.lombardia.it/servizi/servizio/bandi/dettaglio/bando-{n}",
        **fields,
    )


def build(db: Database, now: datetime, **kwargs: object) -> Digest:
    return build_digest(db, now=now, config=CONFIG, matcher_factory=CountingMatcher, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def scene(db: Database, now: datetime) -> dict[str, object]:
    """Yesterday's digest was sent; since then: new calls on two sources, one change, runs."""
    yesterday = now - timedelta(days=1)
    add_member(db, now=yesterday, chat_id=1, profile={"keywords": ["packaging", "cosmesi", "airless"]})
    known = lombardia(1, "Bando storico per il packaging", now=yesterday, closes=now + timedelta(days=20))
    store(db, [known], now=yesterday - timedelta(hours=1))
    planning.record_digest(
        db,
        made_at=yesterday,
        period_start=yesterday - timedelta(days=1),
        period_end=yesterday,
        sent=True,
        summary={},
    )
    later = yesterday + timedelta(hours=3)
    calls = store(
        db,
        [
            lombardia(2, "Contributi per l'efficienza energetica", now=now, closes=now + timedelta(days=40)),
            lombardia(3, "Packaging airless per la cosmesi", now=now, closes=now + timedelta(days=5)),
            lombardia(4, NASTY, now=now, closes=now + timedelta(days=60)),
            packaging_call(
                "SEDIA-1",
                now=now,
                source="sedia",
                title="Horizon cluster packaging call",
                url="https://ec.europa.eu/info/funding-tenders/opportunities/portal/topic-details/x",
                closes=now + timedelta(days=13),
            ),
            lombardia(
                5, "Bando chiuso da tempo", now=now, status=CallStatus.CLOSED, closes=now + timedelta(days=3)
            ),
        ],
        now=later,
    )
    store(db, [replace(known, closes=now + timedelta(days=30))], now=later)
    run = start_run(db, "lombardia", now=later)
    finish_run(db, run, now=later, outcome="ok", seen=6, new=5)
    for _ in range(3):
        run = start_run(db, "sedia", now=later)
        finish_run(db, run, now=later, outcome="failed", errors=1)
    return {"calls": calls, "yesterday": yesterday}


def test_digest_content_grouping_and_order(db: Database, now: datetime, scene: dict[str, object]) -> None:
    digest = build(db, now)
    assert digest.period_start == scene["yesterday"] and digest.period_end == now
    # First what closes within 14 days, open calls only, soonest first (new ones marked new).
    assert [(c.title, c.new) for c in digest.closing] == [
        ("Packaging airless per la cosmesi", True),
        ("Horizon cluster packaging call", True),
    ]
    # Then the other new calls by theme (this matcher gives no topic: all "other"), by relevance;
    # the closing ones are not listed twice.
    assert [(t.theme, [c.title for c in t.calls]) for t in digest.themes] == [
        (OTHER, [NASTY, "Contributi per l'efficienza energetica"])
    ]
    # A call first seen already closed is a change, never a new call.
    assert [(c.call.title, [f.kind for f in c.facts]) for c in digest.changes] == [
        ("Bando storico per il packaging", ["deadline"]),
        ("Bando chiuso da tempo", ["found_closed"]),
    ]
    assert digest.new_count == 4 and digest.changed_count == 2 and digest.closing_count == 2
    assert {h.name for h in digest.health} == {"lombardia", "sedia"}
    assert [h.name for h in digest.unhealthy] == ["sedia"]
    # The cluster profile is the members' union.
    assert CountingMatcher.profiles[0].keywords == ["packaging", "cosmesi", "airless"]


def test_digest_html_escapes_and_text_keeps_titles(
    db: Database, now: datetime, scene: dict[str, object]
) -> None:
    html, text = render_digest(build(db, now))
    assert "Imballaggi &lt;b&gt;green&lt;/b&gt; &amp; &lt;/a&gt;&lt;script&gt;" in html
    assert "<script>" not in html and "<b>green" not in html
    assert NASTY in text
    assert text.index("In scadenza nei prossimi 14 giorni") < text.index("Nuovi bandi per tema")
    assert text.index("Nuovi bandi per tema") < text.index("== Aggiornamenti ==")
    assert "Scadenza spostata" in html and "Scadenza spostata" in text
    assert "Trovato già chiuso" in text
    assert re.search(r"Regolari: Regione Lombardia – Bandi e Servizi", text)
    assert re.search(r"! EU Funding & Tenders Portal: in errore, mai riuscita, 3 errori consecutivi", text)
    assert "- In scadenza entro 14 giorni: 2\n- Nuovi bandi: 4\n- Aggiornamenti: 2\n" in text
    assert "Scadenza: 5 settembre 2026, ore 09:00 (chiuso)" in text  # no countdown for a closed call
    assert 'href="https://www.bandi.regione.lombardia.it/' in html
    assert "Non inviato a nessun membro" in text


def test_themes_and_labels(now: datetime) -> None:
    def item(n: int, source: str, theme: str = OTHER) -> DigestCall:
        return DigestCall(
            call_id=n, group_id=n, source=source, title=f"Bando {n}", url=f"https://example.org/{n}",
            status="open", opens=None, opens_precision=None, closes=None, closes_precision=None,
            deadline=None, sportello=False, budget_total=None, theme=theme,
            also_on=("feeds",) if source == "manual" else (),
        )  # fmt: skip

    digest = Digest(
        made_at=now,
        period_start=now - timedelta(days=1),
        period_end=now,
        closing=(),
        themes=(
            ThemeSection("packaging", (item(1, "feeds", "packaging"),)),
            ThemeSection(OTHER, (item(2, "manual"), item(3, "altro"))),
        ),
        changes=(),
        notices=(),
        partner_searches=(),
        health=(),
    )
    html, text = render_digest(digest)
    assert "-- Packaging --" in text and "-- Altri temi --" in text
    assert "Feed RSS (MIMIT, agenzie UE)" in text and "Inserito a mano" in text and "  altro" in text
    assert "anche su Feed RSS (MIMIT, agenzie UE)" in text
    assert ">Altri temi</h3>" in html
    _html_en, text_en = render_digest(digest, language="en")
    assert "-- Other themes --" in text_en and "Added by hand" in text_en


def test_english_variant(db: Database, now: datetime, scene: dict[str, object]) -> None:
    html, text = render_digest(build(db, now), language="en")
    assert "New calls by theme" in text and "Closing in the next 14 days" in text and "Deadline moved" in text
    assert '<html lang="en">' in html
    assert "Nuovi bandi" not in text


def test_telegram_digest_is_escaped_and_within_the_limit(
    db: Database, now: datetime, scene: dict[str, object]
) -> None:
    message = render_digest_telegram(build(db, now))
    assert "&lt;script&gt;" in message and "<script>" not in message
    short = render_digest_telegram(build(db, now), limit=400)
    assert len(short) <= 400 and "altri" in short
    assert short.count("<b>") == short.count("</b>") and short.count("<a ") == short.count("</a>")


def test_window_defaults_and_empty_digest(db: Database, now: datetime) -> None:
    digest = build(db, now)
    assert digest.period_start == now - timedelta(days=1)
    assert digest.empty and digest.closing == () and digest.themes == ()
    html, text = render_digest(digest)
    assert "Nessun nuovo bando" in text and "Nessuna fonte" in html
    explicit = build(db, now, since=now - timedelta(days=30))
    assert explicit.period_start == now - timedelta(days=30)
    of_day = digest_for_date(db, now.date(), config=CONFIG, matcher_factory=CountingMatcher)
    assert of_day.period_start == datetime(2026, 9, 1, 8, 0, tzinfo=ROME)
    assert of_day.period_end == datetime(2026, 9, 2, 8, 0, tzinfo=ROME)


def test_cluster_profile_falls_back_to_every_topic() -> None:
    assert cluster_profile([], all_topics=lambda: ["packaging", "energia"]).topics == ["packaging", "energia"]
    union = cluster_profile(
        [
            Profile(topics=["packaging"], keywords=["airless"]),
            Profile(topics=["energia", "packaging"], beneficiaries=["ricerca"]),
        ]
    )
    assert union.topics == ["packaging", "energia"] and union.keywords == ["airless"]
    assert union.beneficiaries == ["grande-impresa", "micro", "pmi", "ricerca", "startup"]
    assert cluster_profile([Profile(topics=["packaging"])]).beneficiaries == sorted(COMPANY_TYPES)


class FakeSender:
    def __init__(self, name: str, *, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.got: list[tuple[int, str]] = []

    async def send_digest(self, digest: Digest, recipient: DigestRecipient) -> str:
        if self.fail:
            raise ConnectionError("SMTP down")
        _, text = render_digest(digest, language=recipient.language)
        self.got.append((recipient.member_id, text))
        return f"{self.name}:{recipient.member_id}"


def test_send_digest_to_subscribed_staff_and_record_it(
    db: Database, now: datetime, scene: dict[str, object]
) -> None:
    staff = add_member(db, now=now, name="Staff", role="staff", email="s@example.com", digest_email=True)
    admin = add_member(
        db,
        now=now,
        name="Admin",
        role="admin",
        chat_id=9,
        language="en",
        digest_telegram=True,
        digest_email=True,
    )
    add_member(db, now=now, name="Member", email="m@example.com", digest_email=True)  # not staff
    add_member(db, now=now, name="Quiet", role="staff", email="q@example.com")  # not subscribed
    email, telegram = FakeSender("email"), FakeSender("telegram")
    digest = build(db, now)
    no_telegram = DigestConfig(telegram=False)
    report = asyncio.run(
        send_digest(db, digest, now=now, senders={"email": email, "telegram": telegram}, config=no_telegram)
    )
    assert [m for m, _ in email.got] == [staff]
    assert telegram.got == []  # switched off for the whole deployment
    assert report.unsendable == [] and report.failed == []
    assert report.recorded
    record = planning.last_digest(db)
    assert record is not None and record.period_end == now and record.summary["new"] == 4
    # The next digest starts where this one ended.
    assert build(db, now + timedelta(days=1)).period_start == now

    report2 = asyncio.run(
        send_digest(db, digest, now=now, senders={"email": email, "telegram": telegram}, config=CONFIG)
    )
    assert [m for m, _ in telegram.got] == [admin] and "New calls" in telegram.got[0][1]
    assert report2.recorded


def test_nothing_recorded_when_nobody_got_it(db: Database, now: datetime, scene: dict[str, object]) -> None:
    add_member(db, now=now, name="Staff", role="staff", email="s@example.com", digest_email=True)
    digest = build(db, now)
    before = planning.last_digest(db)
    report = asyncio.run(
        send_digest(db, digest, now=now, senders={"email": FakeSender("email", fail=True)}, config=CONFIG)
    )
    assert not report.recorded and report.failed and report.failed[0][2].startswith("ConnectionError")
    assert planning.last_digest(db) == before
    # The window is not consumed: the next digest covers it again.
    assert build(db, now + timedelta(hours=1)).period_start == scene["yesterday"]


def test_run_digest_once_per_slot(db: Database, now: datetime) -> None:
    add_member(db, now=now, name="Staff", role="staff", email="s@example.com", digest_email=True)
    sender = FakeSender("email")
    at_eight = scheduled_at(now.date(), CONFIG)
    assert current_slot(now, CONFIG) == at_eight  # now is 09:00
    assert current_slot(at_eight - timedelta(seconds=1), CONFIG) == at_eight - timedelta(days=1)

    def run(when: datetime, **kw: bool) -> object:
        return asyncio.run(
            run_digest(
                db, now=when, config=CONFIG, senders={"email": sender}, matching=MatchingConfig(), **kw
            )
        )

    first = run(now)
    assert first.recorded  # type: ignore[attr-defined]
    assert run(now + timedelta(minutes=5)).skipped == "already sent for this slot"  # type: ignore[attr-defined]
    assert run(now + timedelta(minutes=6), force=True).recorded  # type: ignore[attr-defined]
    assert run(now + timedelta(days=1)).recorded  # type: ignore[attr-defined]
    assert len(sender.got) == 3


def test_scheduled_time_is_local_across_dst() -> None:
    # 08:00 in Rome is 06:00 UTC in summer and 07:00 UTC in winter.
    summer = scheduled_at(datetime(2026, 10, 24).date(), CONFIG)
    winter = scheduled_at(datetime(2026, 10, 26).date(), CONFIG)
    assert summer.utcoffset() == timedelta(hours=2) and winter.utcoffset() == timedelta(hours=1)
    assert summer.hour == winter.hour == 8


class FakeEmailChannel:
    def __init__(self) -> None:
        self.sent: list[tuple[EmailMessage, str]] = []

    async def send_message(self, message: EmailMessage, to: str) -> str:
        self.sent.append((message, to))
        return str(message["Message-ID"])


def test_email_digest_message(db: Database, now: datetime, scene: dict[str, object]) -> None:
    channel = FakeEmailChannel()
    config = EmailConfig(host="127.0.0.1", from_address="sentinella@cluster.example")
    sender = EmailDigestSender(channel, config)
    recipient = DigestRecipient(1, "Staff\nBcc: evil@example.com", "it", "staff@example.com", None)
    receipt = asyncio.run(sender.send_digest(build(db, now), recipient))
    ((message, to),) = channel.sent
    assert to == "staff@example.com" and receipt == message["Message-ID"]
    assert message["Subject"] == (
        "[Sentinella] Digest del 2 settembre 2026 — nuovi: 4, aggiornamenti: 2, in scadenza: 2"
    )
    assert message["Content-Language"] == "it"
    assert "\n" not in message["To"] and message["Bcc"] is None
    assert message.get_content_type() == "multipart/alternative"
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    assert html_part is not None and "&lt;script&gt;" in html_part.get_content()
    assert text_part is not None and NASTY in text_part.get_content()
    with pytest.raises(ValueError):
        digest_email(build(db, now), to="a@b.c\r\nBcc: x@y.z", email=config)


def test_console_sender_prints_text(db: Database, now: datetime, scene: dict[str, object]) -> None:
    from io import StringIO

    from rich.console import Console

    out = StringIO()
    sender = ConsoleDigestSender(Console(file=out, width=200, highlight=False))
    asyncio.run(sender.send_digest(build(db, now), DigestRecipient(7, "Staff", "it", None, None)))
    assert "<script>alert(1)</script>" in out.getvalue() and "digest → Staff (#7)" in out.getvalue()


def test_rome_dates_in_the_digest(db: Database, now: datetime, scene: dict[str, object]) -> None:
    _, text = render_digest(build(db, now))
    closes = (now + timedelta(days=5)).astimezone(ROME)
    assert f"{closes.day} settembre 2026" in text


class Inbox:
    """An aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


@pytest.mark.integration
def test_digest_by_real_smtp_through_the_email_channel(
    db: Database, now: datetime, scene: dict[str, object]
) -> None:
    import email
    import email.policy
    import socket

    from aiosmtpd.controller import Controller

    from notifier.delivery.channels import build_channels

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = EmailConfig(host="127.0.0.1", port=port, security="none", from_address="s@cluster.example")
        channels = build_channels(TelegramConfig(), config)
        senders = digest_senders(channels, email=config, config=CONFIG)
        assert isinstance(senders["email"], EmailDigestSender) and "telegram" not in senders
        staff = add_member(
            db, now=now, name="Staff", role="staff", email="staff@example.com", digest_email=True
        )
        report = asyncio.run(send_digest(db, build(db, now), now=now, senders=senders, config=CONFIG))
    finally:
        controller.stop()
    assert [(m, c) for m, c, _ in report.sent] == [(staff, "email")] and report.recorded
    (raw,) = inbox.messages
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["To"] == "Staff <staff@example.com>"
    body = message.get_body(("html",))
    assert body is not None and "&lt;script&gt;" in body.get_content()


def test_senders_fall_back_to_the_console() -> None:
    from notifier.delivery.channels import build_channels

    senders = digest_senders(
        build_channels(TelegramConfig(), EmailConfig()), email=EmailConfig(), config=CONFIG
    )
    assert {name: type(s).__name__ for name, s in senders.items()} == {
        "email": "ConsoleDigestSender",
        "telegram": "ConsoleDigestSender",
    }


def test_relevance_with_the_real_matcher(db: Database, now: datetime, scene: dict[str, object]) -> None:
    add_member(db, now=now, chat_id=2, profile={"topics": ["packaging"]})
    digest = build_digest(db, now=now, config=CONFIG)
    first = digest.closing[0]
    assert first.title == "Packaging airless per la cosmesi" and first.score > 0
    assert first.reasons["it"] and first.reasons["en"]
    # A theme is the best topic of the cluster profile (every summary here speaks of packaging).
    assert [(t.theme, len(t.calls)) for t in digest.themes] == [("packaging", 2)]
    _, text = render_digest(digest)
    assert "Pertinenza:" in text


def test_a_call_page_of_another_portal_gives_the_allocation_the_canonical_lacks(
    db: Database, now: datetime
) -> None:
    regional = packaging_call("RLO1", now=now, budget_total=None)
    page = CallRecord(
        source="openinnovation",
        source_id="bando:packaging",
        url="https://openinnovation.example/it/bandi-e-sperimentazioni/packaging",
        title="Packaging sostenibile: la misura in breve",
        summary="Sostiene imballaggi riciclabili.",
        budget_total=Decimal("6000000"),
        links=(regional.url,),
    )
    first, second = store(db, [regional, page], now=now - timedelta(hours=1))
    assert first.group_id == second.group_id  # the page links the call: one group
    [item] = build(db, now).new_calls
    assert (item.source, item.budget_total) == ("lombardia", Decimal("6000000"))


def test_each_call_says_who_it_went_to_and_their_feedback(
    db: Database, now: datetime, scene: dict[str, object]
) -> None:
    from storage import feedback, outbox

    calls = scene["calls"]
    airless = calls[1]  # type: ignore[index]
    first = add_member(db, now=now, name="Anna", chat_id=11)
    second = add_member(db, now=now, name="Bruno", chat_id=12)
    third = add_member(db, now=now, name="Carla", chat_id=13)
    items = [
        outbox.OutboxItem(m, airless.group_id, airless.id, "new", channel)
        for m, channel in ((first, "telegram"), (first, "email"), (second, "telegram"), (third, "telegram"))
    ]
    outbox.enqueue(db, items, now=now)
    rows = {(r.member_id, r.channel): r.id for r in outbox.list_rows(db)}
    outbox.mark_sent(db, rows[(first, "telegram")], now=now, receipt="11:1")
    outbox.mark_dead(db, rows[(third, "telegram")], now=now, error="blocked")
    feedback.set_feedback(db, first, airless.group_id, "interested", now=now)
    feedback.set_feedback(db, second, airless.group_id, "not_for_us", now=now)

    digest = build(db, now)
    [item] = [c for c in digest.closing if c.call_id == airless.id]
    # Every test member is of "Example srl": one organisation, counted per member.
    assert item.reach.sent == ("Example srl",) and item.reach.queued == ("Example srl",)
    assert (item.reach.undelivered, item.reach.interested, item.reach.not_for_us) == (1, 1, 1)
    _, text = render_digest(digest)
    assert "Inviato a 1: Example srl; in coda per 1: Example srl; non consegnato a 1" in text
    assert "Mi interessa: 1 · Non per noi: 1" in text
    telegram = render_digest_telegram(digest)
    assert "Mi interessa: 1" in telegram


def test_a_source_with_errors_is_not_ok(db: Database, now: datetime) -> None:
    from notifier.planning.digest import health_state
    from storage.sources import source_health

    run = start_run(db, "lombardia", now=now)
    finish_run(db, run, now=now, outcome="ok", seen=40, errors=5)
    run = start_run(db, "sedia", now=now)
    finish_run(db, run, now=now, outcome="ok", seen=40)
    run = start_run(db, "sedia", now=now + timedelta(hours=1))
    finish_run(db, run, now=now + timedelta(hours=1), outcome="ok", seen=0)  # nothing read: degraded
    run = start_run(db, "unioncamere", now=now)
    finish_run(db, run, now=now, outcome="ok", seen=12)
    states = {h.name: health_state(h) for h in source_health(db)}
    assert states == {"lombardia": "errors", "sedia": "degraded", "unioncamere": "ok"}
    digest = build(db, now + timedelta(hours=2))
    assert [h.name for h in digest.unhealthy] == ["lombardia", "sedia"]
    assert digest.summary()["unhealthy_sources"] == ["lombardia", "sedia"]
    _, text = render_digest(digest)
    assert (
        "! Regione Lombardia – Bandi e Servizi: con errori" in text and "5 errori nell'ultima lettura" in text
    )
    assert "Regolari: Unioncamere Lombardia" in text


class FakeTelegramChannel:
    """Stands for TelegramChannel.send_prepared: records, or raises what the channel would."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.sent: list[tuple[int, str, str]] = []

    async def send_prepared(self, chat_id: int, html: str, text: str, **_: object) -> str:
        if self.error is not None:
            raise self.error
        self.sent.append((chat_id, html, text))
        return f"{chat_id}:1"


def test_the_telegram_digest_goes_through_the_channel(
    db: Database, now: datetime, scene: dict[str, object]
) -> None:
    from notifier.delivery.channels import RecipientGone
    from notifier.delivery.digest import TelegramDigestSender
    from storage import members

    admin = add_member(db, now=now, name="Admin", role="admin", chat_id=9, digest_telegram=True)
    channel = FakeTelegramChannel()
    digest = build(db, now)
    report = asyncio.run(
        send_digest(db, digest, now=now, senders={"telegram": TelegramDigestSender(channel)}, config=CONFIG)
    )
    assert report.recorded and [(m, c) for m, c, _ in report.sent] == [(admin, "telegram")]
    [(chat, html, text)] = channel.sent
    assert chat == 9 and "&lt;script&gt;" in html and "<script>" in text  # the plain-text twin
    # A 403: as for alerts, the member's Telegram is switched off.
    gone = FakeTelegramChannel(RecipientGone("Forbidden: bot was blocked by the user"))
    report = asyncio.run(
        send_digest(db, digest, now=now, senders={"telegram": TelegramDigestSender(gone)}, config=CONFIG)
    )
    assert not report.recorded and report.failed[0][2].startswith("recipient gone")
    member = members.get_member(db, admin)
    assert member is not None and not member.telegram_ok


@pytest.mark.integration
def test_the_telegram_digest_falls_back_to_plain_text_like_alerts(
    server: Any, now: datetime, db: Database, scene: dict[str, object]
) -> None:
    from pydantic import SecretStr

    from notifier.delivery.channels import TelegramChannel
    from notifier.delivery.digest import TelegramDigestSender
    from tests.fakes.telegram_server import Answer

    server.script("sendMessage", Answer.parse_error())
    config = TelegramConfig(token=SecretStr(server.token), base_url=server.base_url, per_chat_interval=0)
    channel = TelegramChannel(config)
    recipient = DigestRecipient(1, "Admin", "it", None, 42)

    async def go() -> str:
        try:
            return await TelegramDigestSender(channel).send_digest(build(db, now), recipient)
        finally:
            await channel.aclose()

    receipt = asyncio.run(go())
    html_try, plain = server.calls("sendMessage")
    assert html_try.status == 400 and plain.status == 200 and "parse_mode" not in plain.params
    assert "<script>alert(1)</script>" in plain.text and receipt == "42:1 plain"
    assert channel.plain_fallbacks == 1
