"""Synthetic members, calls and outbox rows for delivery tests and the delivery benchmark.

Calls go in through the real ``storage.ingest``; members are written straight into the table
(the members module is not needed to test delivery, and a test must not depend on its details).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from storage.calls import CallView, list_calls
from storage.db import Database
from storage.ingest import ingest
from storage.models import Member
from storage.outbox import OutboxItem
from storage.records import ROME, CallRecord, CallStatus, Precision


def add_member(
    db: Database,
    *,
    now: datetime,
    name: str = "Laura Bianchi",
    chat_id: int | None = None,
    email: str | None = None,
    language: str = "it",
    paused: bool = False,
    active: bool = True,
) -> int:
    with db.transaction() as session:
        member = Member(
            name=name,
            organisation="Example srl",
            role="member",
            telegram_chat_id=chat_id,
            email=email,
            language=language,
            active=active,
            paused=paused,
            telegram_ok=True,
            created_at=now,
            updated_at=now,
        )
        session.add(member)
        session.flush()
        return int(member.id)


def add_members(db: Database, *, now: datetime, chat_ids: Sequence[int], language: str = "it") -> list[int]:
    with db.transaction() as session:
        members = [
            Member(
                name=f"Membro {chat}",
                organisation="",
                role="member",
                telegram_chat_id=chat,
                language=language,
                created_at=now,
                updated_at=now,
            )
            for chat in chat_ids
        ]
        session.add_all(members)
        session.flush()
        return [int(m.id) for m in members]


def call_record(n: int, *, now: datetime, title: str | None = None, **fields: Any) -> CallRecord:
    values: dict[str, Any] = {
        "source": "lombardia",
        "source_id": f"SYN-{n}",
        "url": f"https://www.bandi.regione.lombardia.it/servizi/servizio/bandi/dettaglio/syn-{n}",
        "title": title or f"Bando sintetico numero {n} per imprese del packaging",
        "status": CallStatus.OPEN,
        "opens": now - timedelta(days=1),
        "opens_precision": Precision.DATE,
        "closes": now + timedelta(days=5),
        "closes_precision": Precision.DATETIME,
        "budget_total": Decimal("1500000"),
    }
    values.update(fields)
    return CallRecord(**values)


def add_calls(db: Database, records: Iterable[CallRecord], *, now: datetime) -> list[CallView]:
    records = list(records)
    ingest(db, records, now=now)
    wanted = {(r.source, r.source_id) for r in records}
    return [c for c in list_calls(db) if (c.source, c.source_id) in wanted]


def alert_items(
    pairs: Iterable[tuple[int, CallView]],
    *,
    channel: str = "telegram",
    reason: str = "new",
    payload: dict[str, Any] | None = None,
) -> list[OutboxItem]:
    items = []
    for member_id, call in pairs:
        assert call.group_id is not None
        items.append(
            OutboxItem(
                member_id=member_id,
                group_id=call.group_id,
                call_id=call.id,
                reason=reason,
                channel=channel,
                payload=payload if payload is not None else {"reasons": ["packaging (titolo)"]},
            )
        )
    return items


@dataclass(frozen=True)
class FakeCall:
    """A call for rendering tests that need no database (``notifier.messages.alerts.CallLike``)."""

    id: int = 1
    group_id: int | None = 7
    source: str = "lombardia"
    url: str = "https://www.bandi.regione.lombardia.it/bando?id=1&lang=it"
    title: str = "Bando Innovazione"
    status: str = CallStatus.OPEN
    opens: datetime | None = datetime(2026, 9, 1, 10, 0, tzinfo=ROME)
    opens_precision: Precision | None = Precision.DATETIME
    closes: datetime | None = datetime(2026, 9, 7, 12, 0, tzinfo=ROME)
    closes_precision: Precision | None = Precision.DATETIME
    sportello: bool = False
    budget_total: Decimal | None = Decimal("1500000")
    summary: str = ""
    beneficiaries: tuple[str, ...] = ()
    granting_body: str = ""
    kind: str = "call"
