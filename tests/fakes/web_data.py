"""Synthetic board data for the web tests and the web benchmark (names say "sintetico").

Calls go in through the real ``storage.ingest``, shaped like the recorded Lombardia and
incentivi.gov.it rows (Europe/Rome deadlines, date-only and timed closes, a sportello call, the
same call on two portals); members, alerts, feedback and crawl runs through storage's public
functions, as the bot, the planner and the crawler write them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from storage import members, outbox, sources
from storage.calls import CallView, list_calls
from storage.db import Database
from storage.feedback import set_feedback
from storage.ingest import ingest
from storage.records import CallRecord, CallStatus, Precision

SECRET = "test-secret-key-of-the-web-board-0123456789"

#: A shared link joins the regional call and its incentivi.gov.it copy into one group.
SHARED = "https://www.bandi.regione.lombardia.it/servizi/servizio/bandi/dettaglio/imballaggi-sostenibili-SYN1"


def records(now: datetime) -> list[CallRecord]:
    day = timedelta(days=1)
    return [
        CallRecord(
            source="lombardia", source_id="SYN1", url=SHARED,
            title="Bando sintetico Imballaggi sostenibili per la cosmetica",
            summary="Contributi alle PMI lombarde per packaging riciclabile e ricaricabile.",
            status=CallStatus.OPEN, opens=now - 10 * day, opens_precision=Precision.DATE,
            closes=(now + 6 * day).replace(hour=12, minute=0, second=0, microsecond=0),
            closes_precision=Precision.DATETIME, budget_total=Decimal("2000000"),
            contribution_max=Decimal("150000"), beneficiaries=("PMI",),
            programme="PR Lombardia FESR 2021-2027", granting_body="Regione Lombardia",
            regions=("Lombardia",),
        ),
        CallRecord(
            source="incentivi", source_id="9001",
            url="https://www.incentivi.gov.it/it/catalogo/imballaggi-sostenibili-sintetico",
            title="Imballaggi sostenibili per la cosmetica (sintetico)",
            summary="Scheda del catalogo nazionale sul bando regionale.",
            status=CallStatus.OPEN, opens=now - 10 * day, opens_precision=Precision.DATE,
            closes=(now + 6 * day).replace(hour=0, minute=0, second=0, microsecond=0),
            closes_precision=Precision.DATE, links=(SHARED,), granting_body="Regione Lombardia",
        ),
        CallRecord(
            source="lombardia", source_id="SYN2",
            url="https://www.bandi.regione.lombardia.it/servizi/servizio/bandi/dettaglio/ricerca-SYN2",
            title="Bando sintetico Ricerca e sviluppo di principi attivi naturali",
            summary="Progetti di ricerca industriale su ingredienti cosmetici da fonti vegetali.",
            status=CallStatus.OPEN, opens=now - 30 * day, opens_precision=Precision.DATE,
            closes=(now + 20 * day).replace(hour=17, minute=0, second=0, microsecond=0),
            closes_precision=Precision.DATETIME, budget_total=Decimal("5000000"),
            granting_body="Regione Lombardia - DG Sviluppo economico", regions=("Lombardia",),
        ),
        CallRecord(
            source="sedia", source_id="HORIZON-SYN-3",
            url="https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/opportunities/topic-details/horizon-syn-3",
            title="Synthetic Horizon call on green chemistry for personal care",
            summary="Research and innovation actions on sustainable chemistry.",
            status=CallStatus.FORTHCOMING, opens=now + 15 * day, opens_precision=Precision.DATE,
            closes=(now + 90 * day).replace(hour=17, minute=0, second=0, microsecond=0),
            closes_precision=Precision.DATETIME, language="en", granting_body="European Commission",
        ),
        CallRecord(
            source="incentivi", source_id="9002",
            url="https://www.incentivi.gov.it/it/catalogo/sportello-digitale-sintetico",
            title="Sportello sintetico per la digitalizzazione delle imprese",
            summary="Contributi a sportello fino a esaurimento delle risorse.",
            status=CallStatus.FORTHCOMING, opens=(now + 3 * day).replace(hour=10, minute=0, second=0, microsecond=0),
            opens_precision=Precision.DATETIME, sportello=True, granting_body="Camera di commercio",
        ),
        CallRecord(
            source="lombardia", source_id="SYN0",
            url="https://www.bandi.regione.lombardia.it/servizi/servizio/bandi/dettaglio/chiuso-SYN0",
            title="Bando sintetico chiuso sulle fiere internazionali",
            status=CallStatus.CLOSED, opens=now - 90 * day, opens_precision=Precision.DATE,
            closes=now - 5 * day, closes_precision=Precision.DATETIME,
        ),
    ]  # fmt: skip


@dataclass
class Board:
    """What :func:`populate` made: ids by role, calls by source id."""

    admin: members.MemberView
    staff: members.MemberView
    member: members.MemberView
    other: members.MemberView
    calls: dict[str, CallView] = field(default_factory=dict)


def populate(db: Database, now: datetime) -> Board:
    ingest(db, records(now), now=now - timedelta(days=2))
    calls = {c.source_id: c for c in list_calls(db)}
    admin = members.upsert_member(db, now=now, name="Anna Amministratrice", role="admin",
                                  telegram_chat_id=1001, email="anna@example.org")  # fmt: skip
    staff = members.upsert_member(db, now=now, name="Stefano Staff", role="staff", organisation="Cluster",
                                  telegram_chat_id=1002, email="stefano@example.org")  # fmt: skip
    member = members.upsert_member(db, now=now, name="Laura Bianchi", organisation="Example Packaging srl",
                                   telegram_chat_id=2001, email="laura@example.com")  # fmt: skip
    other = members.upsert_member(db, now=now, name="Marco Verdi", organisation="Verdi Cosmetici spa",
                                  telegram_chat_id=2002, email="marco@example.com", language="en")  # fmt: skip
    members.set_profile(db, member.id, {"topics": ["packaging"], "keywords": ["ricaricabile"],
                                        "channels": ["telegram", "email"]}, now=now)  # fmt: skip
    packaging, research, sportello = calls["SYN1"], calls["SYN2"], calls["9002"]
    items = []
    for who, call, reasons in (
        (member, packaging, ["tema Packaging: «packaging riciclabile»", "parola chiave «ricaricabile»"]),
        (other, packaging, ["tema Packaging: «packaging»"]),
        (member, research, ["tema Ricerca: «ricerca industriale»"]),
        (member, sportello, ["tema Digitale: «digitalizzazione»"]),
    ):
        assert call.group_id is not None
        for channel in ("telegram", "email"):
            items.append(outbox.OutboxItem(who.id, call.group_id, call.id, "new", channel,
                                           {"reasons": reasons, "score": 0.8}))  # fmt: skip
    outbox.enqueue(db, items, now=now - timedelta(days=1))
    for row in outbox.list_rows(db):
        if row.channel == "telegram":
            outbox.mark_sent(db, row.id, now=now - timedelta(hours=20), receipt=f"{row.member_id}:1")
    assert packaging.group_id is not None and research.group_id is not None
    set_feedback(db, member.id, packaging.group_id, "interested", now=now - timedelta(hours=10))
    set_feedback(db, other.id, packaging.group_id, "not_for_us", now=now - timedelta(hours=9))
    for name, outcome, report in (
        ("lombardia", "ok", {}),
        ("sedia", "failed", {"reason": "HTTP 503 dal portale SEDIA (sintetico)"}),
    ):
        run = sources.start_run(db, name, now=now - timedelta(hours=3))
        sources.finish_run(db, run, now=now - timedelta(hours=3) + timedelta(minutes=2), outcome=outcome,  # type: ignore[arg-type]
                           seen=3, new=1, errors=0 if outcome == "ok" else 1, report=report)  # fmt: skip
    return Board(admin=admin, staff=staff, member=member, other=other, calls=calls)
