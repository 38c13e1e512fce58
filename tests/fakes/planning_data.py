"""Synthetic members, profiles, feedback and calls for the alert, reminder and digest tests.

Calls go in through the real ``storage.ingest``, profiles and feedback through ``storage.members``;
members are written straight into their table, so a test can set any flag (paused, telegram_ok,
digest subscriptions) in one step.
The call records are shaped on the real samples (Bando Tertium from Bandi e Servizi, a measure
on incentivi.gov.it) but their values are synthetic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from notifier.matching.profiles import Profile
from storage import members
from storage.calls import CallView, list_calls
from storage.db import Database
from storage.feedback import set_feedback  # noqa: F401 (the tests' helper)
from storage.ingest import ingest
from storage.models import AlertOutbox, Member
from storage.records import ROME, CallRecord, CallStatus, Precision

PACKAGING_URL = (
    "https://www.bandi.regione.lombardia.it/servizi/servizio/bandi/dettaglio/packaging-sostenibile-2026"
)


def add_member(
    db: Database,
    *,
    now: datetime,
    name: str = "Laura Bianchi",
    chat_id: int | None = None,
    email: str | None = None,
    language: str = "it",
    role: str = "member",
    paused: bool = False,
    active: bool = True,
    telegram_ok: bool = True,
    digest_email: bool = False,
    digest_telegram: bool = False,
    profile: dict[str, Any] | None = None,
) -> int:
    with db.transaction() as session:
        member = Member(
            name=name,
            organisation="Example srl",
            role=role,
            telegram_chat_id=chat_id,
            email=email,
            language=language,
            active=active,
            paused=paused,
            telegram_ok=telegram_ok,
            digest_email=digest_email,
            digest_telegram=digest_telegram,
            created_at=now,
            updated_at=now,
        )
        session.add(member)
        session.flush()
        member_id = int(member.id)
    if profile is not None:
        members.set_profile(db, member_id, Profile.model_validate(profile).model_dump(mode="json"), now=now)
    return member_id


def packaging_call(
    source_id: str = "RLP12026060001",
    *,
    now: datetime,
    source: str = "lombardia",
    title: str = "Bando Packaging sostenibile 2026: imballaggi riciclabili per le PMI lombarde",
    url: str = PACKAGING_URL,
    **fields: Any,
) -> CallRecord:
    values: dict[str, Any] = {
        "source": source,
        "source_id": source_id,
        "url": url,
        "title": title,
        "summary": "Contributi a fondo perduto alle PMI per packaging riciclabile e plastica riciclata.",
        "status": CallStatus.OPEN,
        "opens": now - timedelta(days=3),
        "opens_precision": Precision.DATETIME,
        "closes": datetime(2026, 10, 30, 12, 0, tzinfo=ROME),
        "closes_precision": Precision.DATETIME,
        "budget_total": Decimal("2000000"),
        "beneficiaries": ("PMI",),
        "granting_body": "Regione Lombardia",
        "regions": ("Lombardia",),
    }
    values.update(fields)
    return CallRecord(**values)


def other_call(source_id: str = "RLP12026060099", *, now: datetime, **fields: Any) -> CallRecord:
    """A call no cosmetics member wants: agriculture."""
    values: dict[str, Any] = {
        "title": "Contributi per la meccanizzazione delle aziende agricole di montagna",
        "summary": "Trattori e attrezzature per imprese agricole.",
        "url": f"https://www.bandi.regione.lombardia.it/servizi/servizio/bandi/dettaglio/{source_id}",
    }
    values.update(fields)
    return packaging_call(source_id, now=now, **values)


def store(db: Database, records: Iterable[CallRecord], *, now: datetime) -> list[CallView]:
    """Ingest the records; return their views in the order given."""
    records = list(records)
    result = ingest(db, records, now=now)
    assert not result.errors, result.errors
    by_key = {(c.source, c.source_id): c for c in list_calls(db, kinds=None)}
    return [by_key[(r.source, r.source_id)] for r in records]


@dataclass
class Row:
    member_id: int
    group_id: int
    call_id: int
    reason: str
    channel: str
    payload: dict[str, Any] = field(default_factory=dict)


def outbox_rows(db: Database) -> list[Row]:
    with db.session() as session:
        rows = session.scalars(select(AlertOutbox).order_by(AlertOutbox.id))
        return [Row(r.member_id, r.group_id, r.call_id, r.reason, r.channel, dict(r.payload)) for r in rows]


def keys(rows: Sequence[Row]) -> set[tuple[int, int, str, str]]:
    return {(r.member_id, r.group_id, r.reason, r.channel) for r in rows}
