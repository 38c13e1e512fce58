"""The read side: views, listings, search, events and their cursor."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from storage.calls import (
    call_events,
    events_after,
    get_call,
    get_calls,
    last_event_id,
    list_calls,
    search_calls,
)
from storage.db import Database
from storage.ingest import ingest
from storage.records import ROME, CallRecord, CallStatus, Deadline, Precision

MakeRecord = Callable[..., CallRecord]


@pytest.fixture
def stored(
    db: Database, now: datetime, make_tertium: MakeRecord, make_incentivi: MakeRecord
) -> dict[str, int]:
    records = {
        "tertium": make_tertium(),
        "liguria": make_incentivi(
            nid="1556", description="Sostegno all’accesso al credito per l'artigianato"
        ),
        "closed": make_incentivi(
            nid="9",
            title="Misura chiusa da tempo",
            status=CallStatus.CLOSED,
            closes=datetime(2025, 1, 1, tzinfo=ROME),
        ),
        "past": make_incentivi(
            nid="10",
            title="Scaduta ieri, stato non aggiornato",
            closes=datetime(2026, 9, 1, tzinfo=ROME),
            closes_precision=Precision.DATE,
        ),
        "today": make_incentivi(
            nid="11",
            title="Scade oggi a fine giornata",
            closes=datetime(2026, 9, 2, tzinfo=ROME),
            closes_precision=Precision.DATE,
        ),
        "forthcoming": make_incentivi(
            nid="12",
            title="Apre il mese prossimo",
            status=CallStatus.FORTHCOMING,
            opens=datetime(2026, 10, 1, tzinfo=ROME),
        ),
        "sportello": make_incentivi(
            nid="13", title="Sportello sempre aperto", closes=None, closes_precision=None, sportello=True
        ),
        "staged": make_incentivi(
            nid="14",
            title="Due fasi, la seconda a novembre",
            closes=None,
            closes_precision=None,
            deadlines=(Deadline(datetime(2026, 11, 5, 17, 0, tzinfo=ROME), Precision.DATETIME),),
        ),
    }
    result = ingest(db, records.values(), now=now)
    return dict(zip(records, result.new_ids, strict=True))


def test_get_call_and_get_calls(db: Database, stored: dict[str, int]) -> None:
    view = get_call(db, stored["tertium"])
    assert view is not None and view.source_id == "RLP12026052483"
    assert get_call(db, 999_999) is None
    ids = [stored["sportello"], 999_999, stored["tertium"], stored["sportello"]]
    assert [v.id for v in get_calls(db, ids)] == [stored["sportello"], stored["tertium"]]


def test_is_open_and_final_deadline(db: Database, now: datetime, stored: dict[str, int]) -> None:
    views = {name: get_call(db, cid) for name, cid in stored.items()}
    is_open = {name: v.is_open(now) for name, v in views.items() if v is not None}
    assert is_open == {
        "tertium": True,
        "liguria": True,
        "closed": False,
        "past": False,
        "today": True,
        "forthcoming": False,
        "sportello": True,
        "staged": True,
    }
    today = views["today"]
    assert today is not None and today.final_deadline == datetime(2026, 9, 2, 23, 59, 59, 999999, tzinfo=ROME)
    staged = views["staged"]
    assert staged is not None and staged.final_deadline == datetime(2026, 11, 5, 17, 0, tzinfo=ROME)
    assert views["forthcoming"].is_open(datetime(2026, 10, 1, 0, 0, tzinfo=ROME))  # type: ignore[union-attr]


def test_list_calls_filters(
    db: Database, now: datetime, stored: dict[str, int], make_tertium: MakeRecord
) -> None:
    assert [v.id for v in list_calls(db)] == sorted(stored.values())
    assert {v.id for v in list_calls(db, open_only=True, now=now)} == {
        stored[n] for n in ("tertium", "liguria", "today", "sportello", "staged")
    }
    assert [v.source for v in list_calls(db, source="lombardia")] == ["lombardia"]
    assert len(list_calls(db, limit=3)) == 3
    assert len(list_calls(db, open_only=True, now=now, limit=2)) == 2
    later = now + timedelta(days=1)
    ingest(db, [make_tertium(title="Bando Tertium, riaperto")], now=later)
    assert [v.id for v in list_calls(db, since=later)] == [stored["tertium"]]
    with pytest.raises(ValueError):
        list_calls(db, open_only=True)


def test_search_ignores_case_accents_and_punctuation(
    db: Database, now: datetime, stored: dict[str, int]
) -> None:
    assert [v.id for v in search_calls(db, "TERTIUM")] == [stored["tertium"]]
    assert [v.id for v in search_calls(db, "accesso al crèdito")] == [stored["liguria"]]
    assert [v.id for v in search_calls(db, "l'accesso")] == [stored["liguria"]]  # ’ in the text
    assert [v.id for v in search_calls(db, "dg turismo")] == [stored["tertium"]]  # granting body
    assert [v.id for v in search_calls(db, "per l artigianato")] == [stored["liguria"]]  # description
    assert [v.id for v in search_calls(db, "lombardia fesr 2021")] == [stored["tertium"]]  # programme
    assert search_calls(db, "100%") == []  # LIKE wildcards are literal
    assert search_calls(db, "  ") == []
    assert {v.id for v in search_calls(db, "misura")} >= {stored["closed"]}
    assert stored["closed"] not in {v.id for v in search_calls(db, "misura", open_only=True, now=now)}


def test_search_puts_title_matches_first(db: Database, now: datetime, make_incentivi: MakeRecord) -> None:
    ingest(
        db,
        [
            make_incentivi(nid="1", title="Altro bando", summary="per la cosmetica e la detergenza"),
            make_incentivi(nid="2", title="Voucher cosmetica sostenibile"),
        ],
        now=now,
    )
    assert [v.source_id for v in search_calls(db, "cosmetica")] == ["2", "1"]


def test_events_after_is_a_cursor(
    db: Database, now: datetime, stored: dict[str, int], make_tertium: MakeRecord
) -> None:
    first = events_after(db, 0)
    assert [e.kind for e in first] == ["new"] * len(stored)
    assert [e.id for e in first] == sorted(e.id for e in first)
    assert events_after(db, 0, limit=2) == first[:2]
    cursor = last_event_id(db)
    assert cursor == first[-1].id
    assert events_after(db, cursor) == []
    ingest(db, [make_tertium(status=CallStatus.CLOSED)], now=now)
    (changed,) = events_after(db, cursor)
    assert (changed.kind, changed.call_id, changed.changes["status"]) == (
        "changed",
        stored["tertium"],
        {"old": "open", "new": "closed"},
    )
    assert changed.group_id == get_call(db, stored["tertium"]).group_id  # type: ignore[union-attr]
    assert changed.at == now and changed.at.tzinfo is not None
    assert [e.id for e in call_events(db, stored["tertium"])] == [first[0].id, changed.id]
