"""storage.acts: linking an act to a stored call (and how sure), acting on it once, never wrongly."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import text

from storage.acts import Act, apply_acts, linked_notices
from storage.calls import CallView, call_events, list_calls
from storage.db import Database
from storage.ingest import ingest
from storage.records import ROME, CallRecord, CallStatus, Precision

NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)
CLOSES = datetime(2026, 12, 15, 16, 0, tzinfo=ROME)
NEW_DATE = datetime(2027, 1, 30, 12, 0, tzinfo=ROME)


def call(source_id: str, title: str, *, source: str = "lombardia", **fields: object) -> CallRecord:
    values: dict[str, object] = {
        "url": f"https://portal.example/{source_id}",
        "status": CallStatus.OPEN,
        "closes": CLOSES,
        "closes_precision": Precision.DATETIME,
        **fields,
    }
    return CallRecord(source=source, source_id=source_id, title=title, **values)  # type: ignore[arg-type]


def proroga(act_id: str, **fields: object) -> Act:
    values: dict[str, object] = {
        "kind": "proroga",
        "title": "Proroga dei termini",
        "url": f"https://burl.example/{act_id}",
        "new_deadline": NEW_DATE,
        "new_deadline_precision": Precision.DATETIME,
        **fields,
    }
    return Act(source="burl", act_id=act_id, **values)  # type: ignore[arg-type]


def stored(db: Database) -> dict[str, CallView]:
    return {c.source_id: c for c in list_calls(db)}


def links(db: Database) -> dict[str, tuple[object, ...]]:
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT act_id, call_id, confidence, rule, details FROM call_acts"))
        return {r.act_id: (r.call_id, r.confidence, r.rule) for r in rows}


def test_a_decree_named_by_a_stored_call_links_it_as_likely(db: Database) -> None:
    ingest(
        db,
        [
            call("A1", "Bando Alfa", description="Approvato con decreto n. 11234 del 12 marzo 2026."),
            call("B1", "Bando Beta", description="Regolamento (UE) n. 11234 del 2014"),
        ],
        now=NOW,
    )
    report = apply_acts(db, [proroga("1", decrees=("11234/2026",))], now=NOW)
    a1 = stored(db)["A1"]
    assert links(db) == {"1": (a1.id, "probabile", "decree")}
    assert report.deadlines_moved == 1
    assert stored(db)["A1"].closes == NEW_DATE


def test_ambiguous_links_and_title_only_links_change_no_date(db: Database) -> None:
    ingest(
        db,
        [
            call("A1", "Bando Voucher Fiere 2026", source="lombardia"),
            call("A2", "Bando Voucher Fiere 2026", source="lombardia", url="https://portal.example/other"),
            call("C1", "Contributi per la digitalizzazione delle imprese artigiane"),
        ],
        now=NOW,
    )
    ambiguous = proroga("1", quoted_title="Bando Voucher Fiere 2026")
    loose = proroga(
        "2", title="Proroga: contributi per la digitalizzazione delle imprese artigiane, al 30 gennaio 2027"
    )
    report = apply_acts(db, [ambiguous, loose], now=NOW)
    c1 = stored(db)["C1"]
    assert links(db) == {"1": (None, "", ""), "2": (c1.id, "possibile", "title")}
    assert (report.linked, report.unlinked, report.deadlines_moved) == (1, 1, 0)
    assert all(c.closes == CLOSES for c in list_calls(db))
    [event] = [e for e in call_events(db, c1.id) if e.kind != "new"]
    assert event.kind == "act" and event.changes["act"]["confidence"] == "possibile"


def test_an_act_is_applied_once_and_a_closed_call_reopens(db: Database) -> None:
    ingest(db, [call("A1", "Bando Alfa", status=CallStatus.CLOSED, closes=NOW - timedelta(days=2))], now=NOW)
    act = proroga("1", codes=("A1",))
    first = apply_acts(db, [act], now=NOW)
    again = apply_acts(db, [act], now=NOW + timedelta(hours=1))
    assert (first.recorded, again.recorded) == (1, 0)
    a1 = stored(db)["A1"]
    assert a1.status == CallStatus.OPEN and a1.closes == NEW_DATE
    events = [e for e in call_events(db, a1.id) if e.kind != "new"]
    assert [e.kind for e in events] == ["reopened"]
    assert events[0].changes["status"] == {"old": "closed", "new": "open"}


def test_notices_linked_or_not(db: Database) -> None:
    ingest(db, [call("A1", "Bando Alfa")], now=NOW)
    notices = [
        CallRecord(
            source="burl", source_id=n, url=f"https://burl.example/{n}", title=f"Atto {n}", kind="notice"
        )
        for n in ("1", "2")
    ]
    ingest(db, notices, now=NOW)
    apply_acts(db, [proroga("1", codes=("A1",)), proroga("2", codes=("Z9",))], now=NOW)
    rows = {c.source_id: c.id for c in list_calls(db, kinds=["notice"])}
    assert linked_notices(db, rows.values()) == {rows["1"]}
