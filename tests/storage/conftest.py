"""Record factories for the storage tests, shaped on the real samples (Bando Tertium from Bandi e
Servizi, a regional measure on incentivi.gov.it); see tests/data/crawler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from storage.records import ROME, CallRecord, CallStatus, Deadline, Precision

TERTIUM_URL = (
    "https://www.bandi.regione.lombardia.it/servizi/servizio/bandi/dettaglio/"
    "attivita-produttive-imprese/imprese-moda-design/bando-tertium-RLP12026052483"
)

MakeRecord = Callable[..., CallRecord]


def tertium(**changes: Any) -> CallRecord:
    """The real Bando Tertium row (dati.lombardia.it + detail page fragments)."""
    record = CallRecord(
        source="lombardia",
        source_id="RLP12026052483",
        url=TERTIUM_URL,
        title="Bando Tertium",
        summary="Contributi alle PMI lombarde della moda e del design.",
        status=CallStatus.OPEN,
        published=datetime(2026, 5, 14, 9, 16, tzinfo=ROME),
        published_precision=Precision.DATETIME,
        opens=datetime(2026, 6, 16, 10, 0, tzinfo=ROME),
        opens_precision=Precision.DATETIME,
        closes=datetime(2026, 9, 7, 12, 0, tzinfo=ROME),
        closes_precision=Precision.DATETIME,
        deadlines=(Deadline(datetime(2026, 9, 7, 12, 0, tzinfo=ROME), Precision.DATETIME, "Scade il"),),
        budget_total=Decimal("1500000.00"),
        contribution_max=Decimal("100000"),
        beneficiaries=("PMI",),
        programme="PR Lombardia FESR 2021-2027",
        funding_source="PR Lombardia FESR 2021-2027",
        granting_body="Regione Lombardia - DG Turismo, Marketing territoriale e Moda",
        regions=("Lombardia",),
        raw={"codice_bando": "RLP12026052483", "presentato": "44"},
    )
    return replace(record, **changes)


def incentivi(nid: str = "1556", **changes: Any) -> CallRecord:
    """Shaped on the incentivi.gov.it Solr document of the sample (date-only close, links)."""
    record = CallRecord(
        source="incentivi",
        source_id=nid,
        url=f"https://www.incentivi.gov.it/it/catalogo/misura-{nid}",
        title="PR FESR Liguria 2021-2027 - Sostegno all’accesso al credito a favore del comparto artigianato",
        status=CallStatus.OPEN,
        opens=datetime(2024, 3, 1, tzinfo=ROME),
        opens_precision=Precision.DATE,
        closes=datetime(2026, 12, 14, tzinfo=ROME),
        closes_precision=Precision.DATE,
        granting_body="Artigiancassa - Istituto di credito",
        regions=("Liguria",),
        support_forms=("Contributo/Fondo perduto", "Interventi a garanzia"),
        links=("https://www.regione.liguria.it/homepage-fondi-europei/bandi-por-fesr-2021-2027/3836.html",),
    )
    return replace(record, **changes)


@pytest.fixture
def make_tertium() -> MakeRecord:
    return tertium


@pytest.fixture
def make_incentivi() -> MakeRecord:
    return incentivi
