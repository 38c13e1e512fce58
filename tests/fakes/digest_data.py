"""A staff digest with every section filled, as data (no database): for the snapshot tests and
the look of the e-mail in a browser.

It holds what a real morning looks like: a new call closing in three days and a known one in
ten; new calls on two themes and one on none; a deadline moved, a call closed early and a call
first seen already closed; a notice and a partner search; members reached (sent, queued, given
up) with their feedback; sources ok, with errors, degraded, failing and never crawled. Titles
include markup characters and an overlong word, URLs a long query.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from notifier.planning.changes import ChangeFact
from notifier.planning.digest import (
    FOUND_CLOSED,
    OTHER,
    Digest,
    DigestCall,
    DigestChange,
    Reach,
    ThemeSection,
)
from storage.records import ROME, Precision
from storage.sources import SourceHealth

NOW = datetime(2026, 9, 2, 8, 0, tzinfo=ROME)


def _call(n: int, title: str, **fields: object) -> DigestCall:
    values: dict[str, object] = {
        "call_id": n,
        "group_id": n,
        "source": "lombardia",
        "title": title,
        "url": f"https://www.bandi.regione.lombardia.it/servizi/servizio/bandi/dettaglio/bando-{n}",
        "status": "open",
        "opens": None,
        "opens_precision": None,
        "closes": None,
        "closes_precision": None,
        "deadline": None,
        "sportello": False,
        "budget_total": None,
    }
    values.update(fields)
    return DigestCall(**values)  # type: ignore[arg-type]


def _closes(days: int, hour: int = 12) -> dict[str, object]:
    at = (NOW + timedelta(days=days)).replace(hour=hour, minute=0)
    return {"closes": at, "closes_precision": Precision.DATETIME, "deadline": at}


def _reasons(it: str, en: str) -> dict[str, tuple[str, ...]]:
    return {"it": (it,), "en": (en,)}


def _health(name: str, **fields: object) -> SourceHealth:
    values: dict[str, object] = {
        "name": name,
        "last_run_at": NOW - timedelta(hours=2),
        "last_success_at": NOW - timedelta(hours=2),
        "last_outcome": "ok",
        "last_yield": 40,
        "last_good_yield": 40,
        "consecutive_failures": 0,
        "degraded": False,
        "failure_reported": False,
        "calls": 120,
        "last_errors": 0,
    }
    values.update(fields)
    return SourceHealth(**values)  # type: ignore[arg-type]


def sample_digest() -> Digest:
    members = ("Cosmetica Brianza Srl", "Laboratori Riva SpA", "Natura & Co. <Milano>")
    airless = _call(
        1,
        "Packaging airless riciclabile per la cosmesi: contributi alle PMI lombarde",
        budget_total=Decimal("3500000"),
        score=9.5,
        reasons=_reasons(
            "argomento Packaging: «packaging» nel titolo", "topic Packaging: “packaging” in the title"
        ),
        theme="packaging",
        new=True,
        reach=Reach(sent=members[:2], queued=members[2:], interested=2),
        **_closes(3),
    )
    fiere = _call(
        2,
        "Bando Fiere 2026 – seconda finestra",
        budget_total=Decimal("1200000"),
        score=4.0,
        theme="fiere-promozione",
        also_on=("openinnovation",),
        reach=Reach(sent=members, interested=1, not_for_us=1),
        **_closes(10),
    )
    horizon = _call(
        3,
        "Horizon Europe: Safe and sustainable by design chemicals <SSbD> & cosmetics "
        "(HORIZON-CL4-2026-RESILIENCE-01-TWIN-TRANSITION-SUPERLONGIDENTIFIERWITHOUTSPACESORHYPHENS0123456789)",
        source="sedia",
        url="https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/opportunities/"
        "topic-details/horizon-cl4-2026?order=DESC&pageNumber=1&pageSize=50&sortBy=startDate&x=<y>",
        score=6.0,
        reasons=_reasons(
            "argomento Ingredienti, chimica verde e biotech: «chemicals» nel titolo",
            "topic Ingredients, green chemistry and biotech: “chemicals” in the title",
        ),
        theme="ingredienti-biotech",
        new=True,
        reach=Reach(sent=("Laboratori Riva SpA",)),
        budget_total=Decimal("25000000"),
        **_closes(45, 17),
    )
    digitale = _call(
        4,
        "Voucher per imballaggi compostabili 2026",
        source="unioncamere",
        score=3.0,
        theme="packaging",
        new=True,
        sportello=True,
        opens=NOW + timedelta(days=6),
        opens_precision=Precision.DATE,
        budget_total=Decimal("800000.50"),
    )
    agricoltura = _call(
        5,
        "Contributi per la meccanizzazione agricola",
        new=True,
        theme=OTHER,
        **_closes(60),
    )
    moved = _call(
        6,
        "Bando Innovazione di filiera",
        score=5.0,
        theme="ricerca-innovazione",
        reach=Reach(sent=members[:1], undelivered=1, interested=1),
        **_closes(30),
    )
    early = _call(
        7,
        "Credito agevolato per investimenti produttivi",
        status="closed",
        theme="credito-liquidita",
        reach=Reach(sent=members[1:], not_for_us=1),
        **_closes(20),
    )
    found_closed = _call(8, "Bando export 2025 (chiuso)", status="closed", new=True, **_closes(-5))
    notice = _call(
        9,
        "Decreto n. 12345: approvazione della graduatoria del bando Filiere Lombarde",
        source="burl",
        kind="notice",
        new=True,
    )
    partner = _call(
        10,
        "Italian SME seeks partner for biodegradable cosmetic packaging (Eureka)",
        source="feeds",
        kind="partner_search",
        new=True,
        reach=Reach(sent=members[:1]),
        **_closes(25),
    )
    return Digest(
        made_at=NOW,
        period_start=NOW - timedelta(days=1),
        period_end=NOW,
        closing=(airless, fiere),
        themes=(
            ThemeSection("packaging", (replace(digitale),)),
            ThemeSection("ingredienti-biotech", (horizon,)),
            ThemeSection(OTHER, (agricoltura,), more=2),
        ),
        changes=(
            DigestChange(
                moved,
                (101,),
                (ChangeFact("deadline", NOW + timedelta(days=15), NOW + timedelta(days=30)),),
            ),
            DigestChange(early, (102,), (ChangeFact("closed_early", NOW + timedelta(days=20), None),)),
            DigestChange(found_closed, (), (ChangeFact(FOUND_CLOSED),)),
        ),
        notices=(notice,),
        partner_searches=(partner,),
        health=(
            _health("burl"),
            _health("incentivi", last_run_at=None, last_success_at=None, last_outcome=None, calls=0),
            _health("lombardia", last_errors=5),
            _health("openinnovation", last_outcome="degraded", degraded=True, consecutive_failures=1),
            _health(
                "sedia",
                last_outcome="failed",
                degraded=True,
                consecutive_failures=3,
                last_success_at=NOW - timedelta(days=3),
            ),
            _health("unioncamere"),
        ),
        minor_changes=4,
    )
