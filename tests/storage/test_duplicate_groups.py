"""Duplicate groups: the same call on two portals is one group with the primary portal canonical."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from storage.calls import canonical_call, get_call, group_calls, list_calls
from storage.db import Database
from storage.groups import bodies_compatible, choose_canonical, link_key, title_key
from storage.ingest import ingest
from storage.records import ROME, CallRecord, Precision

MakeRecord = Callable[..., CallRecord]


def _tertium_on_incentivi(make_incentivi: MakeRecord, **changes: object) -> CallRecord:
    """The Tertium measure as incentivi.gov.it lists it: its link is the regional page."""
    fields: dict[str, object] = {
        "nid": "2001",
        "title": "Lombardia - Bando Tertium",
        "granting_body": "Regione Lombardia",
        "closes": datetime(2026, 9, 7, tzinfo=ROME),
        "closes_precision": Precision.DATE,
        "links": (
            "http://bandi.regione.lombardia.it/servizi/servizio/bandi/dettaglio/attivita-produttive-imprese/"
            "imprese-moda-design/bando-tertium-RLP12026052483/?utm_source=incentivi&utm_medium=link",
        ),
    }
    fields.update(changes)
    return make_incentivi(**fields)


def _groups(db: Database) -> dict[str, int | None]:
    return {f"{v.source}/{v.source_id}": v.group_id for v in list_calls(db)}


def test_shared_link_across_sources_makes_one_group(
    db: Database, now: datetime, make_tertium: MakeRecord, make_incentivi: MakeRecord
) -> None:
    # The aggregator first, the primary portal later: the primary becomes canonical.
    aggregator = ingest(db, [_tertium_on_incentivi(make_incentivi)], now=now).new_ids[0]
    primary = ingest(db, [make_tertium()], now=now).new_ids[0]

    a, p = get_call(db, aggregator), get_call(db, primary)
    assert a is not None and p is not None
    assert a.group_id == p.group_id is not None
    assert canonical_call(db, p.group_id).id == primary
    assert [v.id for v in group_calls(db, p.group_id)] == [primary, aggregator]


def test_same_title_body_and_closing_day_makes_one_group(
    db: Database, now: datetime, make_tertium: MakeRecord, make_incentivi: MakeRecord
) -> None:
    # No shared link: the title (region prefix dropped), the body and the closing day decide.
    primary = ingest(db, [make_tertium()], now=now).new_ids[0]
    other = ingest(db, [_tertium_on_incentivi(make_incentivi, links=())], now=now).new_ids[0]
    p, o = get_call(db, primary), get_call(db, other)
    assert p is not None and o is not None
    assert o.group_id == p.group_id
    assert canonical_call(db, o.group_id).source == "lombardia"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"closes": datetime(2026, 10, 7, tzinfo=ROME)},  # another closing day
        {"closes": None, "closes_precision": None},  # open-ended against a dated call
        {"granting_body": "Camera di Commercio di Brescia"},  # another body
        {"title": "Bando Tertium bis"},  # another title
    ],
)
def test_title_rule_needs_every_condition(
    sqlite_db: Database, now: datetime, make_tertium: MakeRecord, make_incentivi: MakeRecord, changes: dict
) -> None:
    ingest(sqlite_db, [make_tertium()], now=now)
    ingest(sqlite_db, [_tertium_on_incentivi(make_incentivi, links=(), **changes)], now=now)
    groups = _groups(sqlite_db)
    assert groups["lombardia/RLP12026052483"] != groups["incentivi/2001"]


def test_open_ended_calls_with_the_same_title_match(
    sqlite_db: Database, now: datetime, make_incentivi: MakeRecord
) -> None:
    manual = make_incentivi(
        nid="m1",
        title="Credito d’imposta R&S, innovazione tecnologica",
        links=(),
        closes=None,
        closes_precision=None,
    )
    from dataclasses import replace

    ingest(sqlite_db, [replace(manual, source="manual", url="https://cluster.example/credito")], now=now)
    ingest(
        sqlite_db,
        [replace(manual, source_id="143", title="Credito d'imposta R&S - innovazione tecnologica")],
        now=now,
    )
    groups = _groups(sqlite_db)
    assert groups["manual/m1"] == groups["incentivi/143"]


def test_a_shared_landing_page_is_not_a_match(
    sqlite_db: Database, now: datetime, make_incentivi: MakeRecord, make_tertium: MakeRecord
) -> None:
    # The real Bolzano pair of the incentivi sample: two measures, one landing page.
    landing = ("https://www.provincia.bz.it/turismo-mobilita/turismo/default.asp",)
    ingest(
        sqlite_db,
        [
            make_incentivi(nid="1433", title="Contributi per esercizi ricettivi", links=landing),
            make_incentivi(nid="1434", title="Contributi per esercizi di somministrazione", links=landing),
            make_tertium(
                source_id="X1", title="Altra misura", links=landing
            ),  # another source, same landing page
        ],
        now=now,
    )
    assert len(set(_groups(sqlite_db).values())) == 3


def test_a_group_holds_one_call_per_source(
    sqlite_db: Database, now: datetime, make_tertium: MakeRecord, make_incentivi: MakeRecord
) -> None:
    ingest(sqlite_db, [make_tertium()], now=now)
    ingest(sqlite_db, [_tertium_on_incentivi(make_incentivi)], now=now)
    ingest(sqlite_db, [_tertium_on_incentivi(make_incentivi, nid="2002")], now=now)
    groups = _groups(sqlite_db)
    assert groups["incentivi/2001"] == groups["lombardia/RLP12026052483"] != groups["incentivi/2002"]


def test_a_pair_in_one_batch_is_grouped(
    db: Database, now: datetime, make_tertium: MakeRecord, make_incentivi: MakeRecord
) -> None:
    result = ingest(db, [_tertium_on_incentivi(make_incentivi), make_tertium()], now=now)
    views = [get_call(db, i) for i in result.new_ids]
    assert len({v.group_id for v in views if v is not None}) == 1
    group = views[0].group_id  # type: ignore[union-attr]
    assert group is not None
    assert canonical_call(db, group).source == "lombardia"


def test_source_priority_is_settable(
    sqlite_db: Database, now: datetime, make_tertium: MakeRecord, make_incentivi: MakeRecord
) -> None:
    order = ("incentivi", "lombardia")
    ingest(sqlite_db, [make_tertium()], now=now, priority=order)
    ingest(sqlite_db, [_tertium_on_incentivi(make_incentivi)], now=now, priority=order)
    group = list_calls(sqlite_db)[0].group_id
    assert group is not None
    assert canonical_call(sqlite_db, group).source == "incentivi"


def test_every_call_has_a_group_with_itself_canonical(
    sqlite_db: Database, now: datetime, make_incentivi: MakeRecord
) -> None:
    ingest(
        sqlite_db, [make_incentivi(nid=str(i), title=f"Misura {i} per le imprese") for i in range(5)], now=now
    )
    for view in list_calls(sqlite_db):
        assert view.group_id is not None
        assert canonical_call(sqlite_db, view.group_id).id == view.id


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://www.example.it/bandi/x/", "http://example.it/bandi/x"),
        ("https://example.it/bandi/x?utm_source=n&id=3&fbclid=zz", "example.it/bandi/x?id=3"),
        ("https://EXAMPLE.it/bandi/x#top", "https://example.it/bandi/x"),
        ("https://example.it/bandi?b=2&a=1", "https://example.it/bandi?a=1&b=2"),
    ],
)
def test_link_key_normalises(a: str, b: str) -> None:
    assert link_key(a) == link_key(b) != ""


def test_link_key_keeps_what_identifies_a_page() -> None:
    assert link_key("https://example.it/bandi?id=3") != link_key("https://example.it/bandi?id=4")
    assert link_key("https://example.it/Bando-X") != link_key("https://example.it/bando-y")
    assert link_key("") == link_key("   ") == ""


def test_title_key() -> None:
    assert title_key("Bando  TERTIUM") == title_key("Lombardia - Bando Tertium") == "bando tertium"
    assert title_key("Bando Tertium - Regione Lombardia") == "bando tertium"
    assert title_key("Sostegno all’accesso al credito") == title_key("Sostegno all'accesso al crédito")
    assert title_key("PR FESR Liguria 2021-2027 - Sostegno") == "pr fesr liguria 2021 2027 sostegno"
    assert title_key("Bando") == ""  # one word is too little to trust


def test_bodies_compatible() -> None:
    assert bodies_compatible("Regione Lombardia", "Regione Lombardia - DG Sviluppo economico")
    assert bodies_compatible("", "Ministero della Cultura")
    assert bodies_compatible("Unioncamere Lombardia", "Regione Lombardia e Unioncamere Lombardia")
    assert not bodies_compatible("Camera di Commercio di Milano", "Camera di Commercio di Brescia")
    assert not bodies_compatible("Regione Lombardia", "Regione Liguria")


def test_choose_canonical() -> None:
    assert choose_canonical([(5, "incentivi"), (9, "lombardia")]) == 9
    assert choose_canonical([(5, "feed:cosmetica"), (3, "feed:other")]) == 3
    assert choose_canonical([(5, "incentivi"), (9, "feed:x")]) == 5


def test_home_pages_and_mail_links_are_not_keys() -> None:
    from storage.groups import call_link_keys

    keys = call_link_keys(
        "https://www.regione.lombardia.it/",
        [
            "mailto:bandi@regione.lombardia.it",
            "https://www.incentivi.gov.it",
            "https://x.example/bando/7?utm_medium=rss",
        ],
    )
    assert keys == {"x.example/bando/7": False}
