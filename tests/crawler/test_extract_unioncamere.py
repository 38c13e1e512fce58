"""The Unioncamere Lombardia extractor on its synthetic pages (no page of the site was ever
recorded): listings by status, detail pages, the PDFs that become acts."""

from __future__ import annotations

from datetime import datetime

import pytest

from crawler.extract import ShapeError
from crawler.extract.unioncamere import ASSUMPTIONS, extract_detail, parse_listing, pdf_acts
from storage.records import ROME, CallStatus
from tests.crawler.expected_cases import UNIONCAMERE, UNIONCAMERE_DETAIL, Golden, golden_params

NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)


@pytest.mark.parametrize("case", golden_params("unioncamere"))
def test_regeneration_produces_what_the_tests_check(case: Golden) -> None:
    assert case.produce() == case.expected()


def test_the_new_pdf_of_a_page_is_a_ranking_act_on_that_call() -> None:
    url = UNIONCAMERE_DETAIL + "bando-export-digitale-2026"
    before = extract_detail((UNIONCAMERE / "detail_export_digitale_synthetic.html").read_bytes(), url, NOW)
    after = extract_detail(
        (UNIONCAMERE / "detail_export_digitale_ranking_synthetic.html").read_bytes(), url, NOW
    )
    [act] = pdf_acts(after, [a.url for a in before.attachments])
    assert act.kind == "graduatoria" and act.target == ("unioncamere", "bando-export-digitale-2026")
    assert act.act_id == act.url and act.url.endswith("imprese_ammesse.pdf")
    assert pdf_acts(after, [a.url for a in after.attachments]) == []


def test_status_comes_from_the_dates_then_from_the_listing_filter() -> None:
    page = b"<html><body><main><h1>Bando senza date</h1><p>Testo.</p></main></body></html>"
    url = UNIONCAMERE_DETAIL + "bando-senza-date"
    errors: list[str] = []
    record = extract_detail(page, url, NOW, listed_status=CallStatus.FORTHCOMING, errors=errors)
    assert record.status == CallStatus.FORTHCOMING and record.closes is None
    assert errors and ASSUMPTIONS["dates"] in errors[0]
    closed = page.replace(b"<p>Testo.</p>", b"<p>Scadenza: 31/08/2026</p>")
    assert extract_detail(closed, url, NOW, listed_status=CallStatus.OPEN).status == CallStatus.CLOSED


def test_an_empty_listing_says_so_and_a_foreign_page_is_refused() -> None:
    url = "https://www.unioncamerelombardia.it/bandi-e-incentivi-alle-imprese?stato=1"
    empty = b"<html><body><main><p>Nessun bando in apertura.</p></main></body></html>"
    assert parse_listing(empty, url, NOW).entries == ()
    with pytest.raises(ShapeError, match="dettaglio-bando"):
        parse_listing(b"<html><body><p>Manutenzione</p></body></html>", url, NOW)
    with pytest.raises(ShapeError, match="<h1>"):
        extract_detail(b"<html><body><p>x</p></body></html>", UNIONCAMERE_DETAIL + "x", NOW)
