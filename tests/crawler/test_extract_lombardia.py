"""Regione Lombardia extractors against the real registry row and detail fragments, and synthetic pages.

Expected outputs live beside the inputs in tests/data/crawler/lombardia/ (``*.expected.json``);
``python tests/crawler/regen_expected.py`` rewrites them after a deliberate change (review the diff);
the tests only compare.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from crawler.extract import ExtractionError
from crawler.extract.lombardia import (
    PortalErrorPage,
    bare_detail_url,
    card_to_record,
    code_from_url,
    dataset_rows,
    enrich,
    extract_detail,
    is_canonical_detail_url,
    merge_card,
    parse_dataset,
    parse_detail,
    parse_listing,
    row_fingerprint,
    row_to_record,
    search_form,
)
from crawler.parsing import status_from_dates
from storage.records import ROME, CallRecord, CallStatus, Precision, record_from_json, record_to_json
from tests.crawler.expected_cases import (
    LOMBARDIA,
    NOW,
    PORTAL,
    SEARCH,
    Golden,
    assert_expected,
    golden_params,
    lombardia_real,
    real_fragments_html,
    tertium_url,
)

DATA = LOMBARDIA
REAL = lombardia_real()
TERTIUM_URL = tertium_url()


@pytest.mark.parametrize("case", golden_params("lombardia"))
def test_regeneration_produces_what_the_tests_check(case: Golden) -> None:
    # regen_expected.py writes what ``produce`` returns: it must be what the tests compare.
    assert case.produce() == case.expected()


# --- the real registry row ----------------------------------------------------------------


def test_real_row_gives_the_expected_record() -> None:
    record = row_to_record(REAL["socrata_row"], fetched_at=NOW, portal_url=PORTAL)
    assert record is not None
    assert_expected("dataset_row_2026.expected.json", record_to_json(record))
    assert record.source_id == "RLP12026052483"
    assert record.title == "Bando Tertium"
    # date-only floating timestamps are Rome dates, not UTC instants
    assert record.opens == datetime(2026, 6, 16, tzinfo=ROME)
    assert record.opens_precision == Precision.DATE
    assert record.closes == datetime(2026, 9, 7, tzinfo=ROME)
    assert record.closes_precision == Precision.DATE
    assert record.status == CallStatus.OPEN
    assert record.sportello is False
    # the registry has no link: the bare-code URL is built and flagged as such
    assert record.url == PORTAL + "/servizi/servizio/bandi/dettaglio/RLP12026052483"
    assert record.raw is not None and record.raw["url_kind"] == "bare"
    assert record.granting_body == "Regione Lombardia – TURISMO, MARKETING TERRITORIALE E MODA"


def test_real_row_with_a_known_canonical_url() -> None:
    record = row_to_record(REAL["socrata_row"], fetched_at=NOW, portal_url=PORTAL, detail_url=TERTIUM_URL)
    assert record is not None
    assert record.url == TERTIUM_URL
    assert record.raw is not None and record.raw["url_kind"] == "canonical"


def test_real_fragments_give_the_hours_in_rome_time() -> None:
    detail = parse_detail(real_fragments_html().encode(), TERTIUM_URL, NOW)
    assert detail.status == CallStatus.OPEN
    assert detail.status_label == "Aperto"
    assert detail.published == datetime(2026, 5, 14, 9, 16, tzinfo=ROME)
    assert detail.opens == datetime(2026, 6, 16, 10, 0, tzinfo=ROME)
    assert detail.closes == datetime(2026, 9, 7, 12, 0, tzinfo=ROME)
    assert (
        detail.published_precision == detail.opens_precision == detail.closes_precision == Precision.DATETIME
    )
    assert detail.closes is not None and detail.closes.utcoffset() is not None
    assert detail.closes.isoformat() == "2026-09-07T12:00:00+02:00"
    assert detail.funding_source == "PR Lombardia FESR 2021-2027"
    assert detail.beneficiaries[0].startswith("possono presentare domanda di partecipazione le PMI")
    assert "dell’allegato I" in detail.beneficiaries[0]  # &rsquo; and &nbsp; decoded
    assert "17 giugno 2014" in detail.beneficiaries[0]  # the <br /> inside the sentence is a space
    assert detail.beneficiaries[2].startswith("che abbiano una Sede operativa")
    assert "attività" in detail.beneficiaries[2]
    assert len(detail.beneficiaries) == 4


def test_real_row_enriched_by_the_real_fragments() -> None:
    record = row_to_record(REAL["socrata_row"], fetched_at=NOW, portal_url=PORTAL)
    assert record is not None
    enriched = extract_detail(real_fragments_html().encode(), TERTIUM_URL, NOW, record=record)
    assert_expected("detail_fragments_2026.expected.json", record_to_json(enriched))
    assert enriched.url == TERTIUM_URL
    assert enriched.closes == datetime(2026, 9, 7, 12, 0, tzinfo=ROME)
    assert enriched.deadlines[0].at == enriched.closes
    assert record_from_json(record_to_json(enriched)) == enriched


# --- status -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opens", "closes", "precision", "now", "expected"),
    [
        (datetime(2026, 6, 16, tzinfo=ROME), datetime(2026, 9, 7, tzinfo=ROME), Precision.DATE, NOW,
         CallStatus.OPEN),
        # a date-only closing day lasts until its end
        (None, datetime(2026, 9, 2, tzinfo=ROME), Precision.DATE, datetime(2026, 9, 2, 23, 59, tzinfo=ROME),
         CallStatus.OPEN),
        (None, datetime(2026, 9, 1, tzinfo=ROME), Precision.DATE, NOW, CallStatus.CLOSED),
        # with an hour it passes at that hour
        (None, datetime(2026, 9, 2, 8, 0, tzinfo=ROME), Precision.DATETIME, NOW, CallStatus.CLOSED),
        (datetime(2026, 9, 2, 10, 0, tzinfo=ROME), None, None, NOW, CallStatus.FORTHCOMING),
        (datetime(2026, 3, 2, tzinfo=ROME), None, None, NOW, CallStatus.OPEN),  # sportello
        (None, None, None, NOW, CallStatus.UNKNOWN),
    ],
)  # fmt: skip
def test_status_from_dates(
    opens: datetime | None,
    closes: datetime | None,
    precision: Precision | None,
    now: datetime,
    expected: CallStatus,
) -> None:
    assert status_from_dates(opens=opens, closes=closes, closes_precision=precision, now=now) == expected


# --- the registry page --------------------------------------------------------------------


def test_synthetic_registry_page() -> None:
    errors: list[str] = []
    body = (DATA / "dataset_page_synthetic.json").read_bytes()
    records = parse_dataset(body, "https://www.dati.lombardia.it/resource/bukx-h2uy.json", NOW,
                            portal_url=PORTAL, errors=errors)  # fmt: skip
    assert errors == []
    assert_expected("dataset_page_synthetic.expected.json", [record_to_json(r) for r in records])
    by_id = {r.source_id: r for r in records}
    assert "RLR12026050001" not in by_id  # personnel competition excluded
    assert by_id["RLO12026055023"].status == CallStatus.FORTHCOMING
    assert by_id["RLP12026049999"].status == CallStatus.CLOSED
    sportello = by_id["RLAI2026053804"]
    assert sportello.sportello and sportello.closes is None and sportello.status == CallStatus.OPEN


def test_registry_rows_that_cannot_be_read_are_noted_and_skipped() -> None:
    rows = [
        {"titolo_bando": "senza codice"},
        {"codice_bando": "RLX1", "titolo_bando": "data rotta", "chiusura_adesione": "31/09/2026"},
        {"codice_bando": "RLX2", "titolo_bando": "  "},
        REAL["socrata_row"],
        "not an object",
    ]
    errors: list[str] = []
    records = parse_dataset(json.dumps(rows).encode(), "u", NOW, portal_url=PORTAL, errors=errors)
    assert [r.source_id for r in records] == ["RLP12026052483"]
    assert len(errors) == 3
    assert "no code" in errors[0] and "RLX1" in errors[1] and "RLX2" in errors[2]


@pytest.mark.parametrize(
    "body",
    [b"", b"<html>Service Unavailable</html>", b'{"error": true, "message": "Invalid SoQL"}', b'{"a": 1}',
     b'[{"codice_bando": "RL'],
)  # fmt: skip
def test_unusable_registry_bodies_raise(body: bytes) -> None:
    with pytest.raises(ExtractionError):
        dataset_rows(body)


def test_row_fingerprint_ignores_the_application_counter() -> None:
    row = dict(REAL["socrata_row"])
    changed = {**row, "presentato": "45"}
    assert row_fingerprint(row) == row_fingerprint(changed)
    assert row_fingerprint(row) != row_fingerprint({**row, "chiusura_adesione": "2026-09-30T00:00:00.000"})


# --- URLs ---------------------------------------------------------------------------------


def test_urls() -> None:
    assert code_from_url(TERTIUM_URL) == "RLP12026052483"
    assert code_from_url(bare_detail_url(PORTAL, "RLAI2026053804")) == "RLAI2026053804"
    assert is_canonical_detail_url(TERTIUM_URL, "RLP12026052483")
    assert not is_canonical_detail_url(TERTIUM_URL, "RLO12026055023")
    assert not is_canonical_detail_url(bare_detail_url(PORTAL, "RLP12026052483"))
    assert not is_canonical_detail_url(PORTAL + "/servizi/servizio/bandi")
    form = search_form(page=3)
    assert form["pageNum"] == "3" and form["stato[0]"] == "APERTO" and form["stato[1]"] == "IN APERTURA"
    assert search_form(code="RLP12026052483")["titolo"] == "RLP12026052483"


# --- the listing --------------------------------------------------------------------------


def card_json(card: Any) -> dict[str, Any]:
    return card.as_json()


def test_synthetic_listing_pages() -> None:
    page1 = parse_listing((DATA / "listing_page1_synthetic.html").read_bytes(), SEARCH, NOW)
    page2 = parse_listing((DATA / "listing_page2_synthetic.html").read_bytes(), SEARCH, NOW)
    assert page1.max_page == 2 and page2.max_page == 2
    assert_expected(
        "listing_pages_synthetic.expected.json",
        {"page1": [card_json(c) for c in page1.cards], "page2": [card_json(c) for c in page2.cards]},
    )
    tertium = page1.cards[0]
    assert tertium.url == TERTIUM_URL
    assert tertium.status == CallStatus.OPEN  # the "Imprese" chip is not a status
    assert tertium.closes == datetime(2026, 9, 7, 12, 0, tzinfo=ROME)
    assert page1.cards[1].status == CallStatus.FORTHCOMING
    assert page2.cards[0].closes is None  # sportello: empty checkCloseDate


def test_listing_cards_that_cannot_be_read_are_noted() -> None:
    html = """<div class="results-block">
      <div class="card card-bg card-big"><h4 class="card-title">Senza codice</h4></div>
      <div class="card card-bg card-big"><strong class="code">RLP12026000001</strong>
        <h4 class="card-title" data-content="Senza link">Senza link</h4></div>
      <div class="card card-bg card-big"><strong class="code">RLP12026000002</strong>
        <h4 class="card-title" data-content="Buono">Buono</h4>
        <a class="text-decoration-none"
           href="/servizi/servizio/bandi/dettaglio/a/b/buono-RLP12026000002">x</a>
      </div></div>"""
    errors: list[str] = []
    page = parse_listing(html.encode(), SEARCH, NOW, errors=errors)
    assert [c.code for c in page.cards] == ["RLP12026000002"]
    assert len(errors) == 2
    assert page.max_page is None


def test_empty_listing_is_valid_and_the_error_page_is_not() -> None:
    assert (
        parse_listing(b"<html><body><div class='results-block'></div></body></html>", SEARCH, NOW).cards == ()
    )
    with pytest.raises(PortalErrorPage):
        parse_listing((DATA / "error_page_synthetic.html").read_bytes(), SEARCH, NOW)


# --- the detail page ----------------------------------------------------------------------


def tertium_from_row_and_card() -> CallRecord:
    record = row_to_record(REAL["socrata_row"], fetched_at=NOW, portal_url=PORTAL)
    assert record is not None
    card = parse_listing((DATA / "listing_page1_synthetic.html").read_bytes(), SEARCH, NOW).cards[0]
    return merge_card(record, card, fetched_at=NOW)


def test_merge_card_brings_the_canonical_url_and_the_hour() -> None:
    merged = tertium_from_row_and_card()
    assert merged.url == TERTIUM_URL
    assert merged.closes == datetime(2026, 9, 7, 12, 0, tzinfo=ROME)
    assert merged.closes_precision == Precision.DATETIME
    assert merged.opens == datetime(2026, 6, 16, 10, 0, tzinfo=ROME)


def test_synthetic_whole_detail_page() -> None:
    body = (DATA / "detail_tertium_synthetic.html").read_bytes()
    record = extract_detail(body, TERTIUM_URL, NOW, record=tertium_from_row_and_card())
    assert_expected("detail_tertium_synthetic.expected.json", record_to_json(record))
    assert record.status == CallStatus.OPEN
    # the related (closed) call's checkCloseDate and the script's value are not this call's
    assert record.closes == datetime(2026, 9, 7, 12, 0, tzinfo=ROME)
    assert record.published == datetime(2026, 5, 14, 9, 16, tzinfo=ROME)
    assert record.budget_total == Decimal("5000000")
    assert record.granting_body == "Regione Lombardia - DG Turismo, Marketing territoriale e Moda"
    assert record.funding_source == "PR Lombardia FESR 2021-2027"
    assert record.summary.startswith("Contributi a fondo perduto")
    assert [a.name for a in record.attachments] == ["Allegato A bando.pdf", "Allegato B modulistica.docx"]
    assert (
        record.attachments[0].url
        == PORTAL + "/servizi/servizio/bandi/download/101?fileName=Allegato%20A%20bando.pdf"
    )


def test_detail_reached_by_the_bare_url_reports_the_canonical_one() -> None:
    body = (DATA / "detail_tertium_synthetic.html").read_bytes()
    detail = parse_detail(body, bare_detail_url(PORTAL, "RLP12026052483"), NOW)
    assert detail.url == TERTIUM_URL  # from <link rel=canonical>


def test_closed_chip_wins_over_open_dates() -> None:
    html = (
        real_fragments_html().replace("bg-success-state", "bg-danger-state").replace(">Aperto<", ">Chiuso<")
    )
    record = tertium_from_row_and_card()
    closed = extract_detail(html.encode(), TERTIUM_URL, NOW, record=record)
    assert closed.status == CallStatus.CLOSED


def test_open_chip_does_not_hide_a_passed_deadline() -> None:
    later = datetime(2026, 9, 7, 12, 30, tzinfo=ROME)
    record = tertium_from_row_and_card()
    enriched = extract_detail(real_fragments_html().encode(), TERTIUM_URL, later, record=record)
    assert enriched.status == CallStatus.CLOSED


def test_detail_errors() -> None:
    record = tertium_from_row_and_card()
    with pytest.raises(PortalErrorPage):
        parse_detail((DATA / "error_page_synthetic.html").read_bytes(), TERTIUM_URL, NOW)
    with pytest.raises(ExtractionError):
        parse_detail(b"  ", TERTIUM_URL, NOW)
    other = (DATA / "detail_RLO12026055023_synthetic.html").read_bytes()
    with pytest.raises(ExtractionError, match="RLO12026055023"):
        enrich(record, parse_detail(other, TERTIUM_URL, NOW), fetched_at=NOW)


def test_broken_and_oddly_encoded_detail_pages_are_survived() -> None:
    body = (DATA / "detail_tertium_synthetic.html").read_bytes()
    truncated = body[: len(body) // 2]
    detail = parse_detail(truncated, TERTIUM_URL, NOW)
    assert detail.closes == datetime(2026, 9, 7, 12, 0, tzinfo=ROME)
    latin1 = (
        "<html><body><h1>Bando \xe0 sportello</h1>"
        "<p>Scade il: <strong data-entity='chiusura'>01/10/2026 ,</strong> ore 12:00</p></body></html>"
    ).encode("latin-1")
    errors: list[str] = []
    detail = parse_detail(latin1, TERTIUM_URL, NOW, errors=errors)  # no charset declared anywhere
    assert detail.closes == datetime(2026, 10, 1, 12, 0, tzinfo=ROME)
    assert detail.title == "Bando \xe0 sportello"
    assert errors == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        # declared by the response header
        ("<html><body><h1>Bando \xe0 sportello \u2013 2026</h1></body></html>", "text/html; charset=windows-1252"),
        ("<html><body><h1>Bando \xe0 sportello \u2013 2026</h1></body></html>", "text/html; charset=cp1252"),
        # declared by the page
        ("<html><head><meta charset='windows-1252'></head><body><h1>Bando \xe0 sportello \u2013 2026</h1>", None),
        ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
         "</head><body><h1>Bando \xe0 sportello \u2013 2026</h1>", "text/html"),
    ],
)  # fmt: skip
def test_declared_charsets_are_honoured(body: str, content_type: str | None) -> None:
    errors: list[str] = []
    detail = parse_detail(body.encode("cp1252"), TERTIUM_URL, NOW, content_type=content_type, errors=errors)
    assert detail.title == "Bando \xe0 sportello \u2013 2026"
    assert errors == []


def test_utf8_pages_and_undecodable_bytes() -> None:
    page = "<html><body><h1>Bando \xe0 sportello \u20ac</h1></body></html>"
    errors: list[str] = []
    detail = parse_detail(page.encode("utf-8"), TERTIUM_URL, NOW, content_type="text/html", errors=errors)
    assert (detail.title, errors) == ("Bando \xe0 sportello \u20ac", [])
    # Latin-1 bytes under a UTF-8 declaration: replaced, and said.
    wrong = parse_detail(
        page.replace("\u20ac", "").encode("latin-1"),
        TERTIUM_URL,
        NOW,
        content_type="text/html; charset=UTF-8",
        errors=errors,
    )
    assert wrong.title == "Bando \ufffd sportello"
    assert len(errors) == 1 and "utf" in errors[0].lower() and TERTIUM_URL in errors[0]
    listing_errors: list[str] = []
    parse_listing(
        b"<html><body><div class='results-block'>\xe0</div></body></html>",
        SEARCH,
        NOW,
        errors=listing_errors,
        content_type="text/html; charset=utf-8",
    )
    assert len(listing_errors) == 1


# --- sportello ----------------------------------------------------------------------------


def test_a_closing_date_from_the_card_or_the_page_ends_the_sportello() -> None:
    row = {k: v for k, v in REAL["socrata_row"].items() if k != "chiusura_adesione"}
    registry_only = row_to_record(row, fetched_at=NOW, portal_url=PORTAL)
    assert registry_only is not None
    assert registry_only.sportello and registry_only.closes is None
    card = parse_listing((DATA / "listing_page1_synthetic.html").read_bytes(), SEARCH, NOW).cards[0]
    merged = merge_card(registry_only, card, fetched_at=NOW)
    assert merged.closes == datetime(2026, 9, 7, 12, 0, tzinfo=ROME)
    assert merged.sportello is False
    enriched = extract_detail(real_fragments_html().encode(), TERTIUM_URL, NOW, record=registry_only)
    assert enriched.closes == datetime(2026, 9, 7, 12, 0, tzinfo=ROME)
    assert enriched.sportello is False
    # a card without a closing date leaves a sportello as it is
    sportello_card = parse_listing((DATA / "listing_page2_synthetic.html").read_bytes(), SEARCH, NOW).cards[0]
    assert sportello_card.closes is None
    assert card_to_record(sportello_card, fetched_at=NOW).sportello is True


# --- links --------------------------------------------------------------------------------


def test_card_links_must_be_http() -> None:
    def card(href: str) -> str:
        return (
            '<div class="card card-bg card-big"><strong class="code">RLP12026000002</strong>'
            '<h4 class="card-title" data-content="Buono">Buono</h4>'
            f'<a class="text-decoration-none" href="{href}">x</a></div>'
        )

    html = "<div class='results-block'>" + card("javascript:alert(1)") + "</div>"
    errors: list[str] = []
    assert parse_listing(html.encode(), SEARCH, NOW, errors=errors).cards == ()
    assert len(errors) == 1 and "not an http(s) URL" in errors[0]
    relative = "/servizi/servizio/bandi/dettaglio/a/b/buono-RLP12026000002"
    [good] = parse_listing(card(relative).encode(), SEARCH, NOW).cards
    assert good.url == PORTAL + relative  # resolved against the portal the page came from
    [spaced] = parse_listing(card(" \t" + relative).encode(), SEARCH, NOW).cards
    assert spaced.url == PORTAL + relative


def test_attachment_links_must_be_http() -> None:
    page = (
        "<html><body><h1>Bando</h1>"
        '<a href="javascript:alert(1)//servizi/servizio/bandi/download/1">bad</a>'
        '<a href="/servizi/servizio/bandi/download/2?fileName=ok.pdf">ok</a></body></html>'
    )
    errors: list[str] = []
    detail = parse_detail(page.encode(), TERTIUM_URL, NOW, errors=errors)
    assert [a.url for a in detail.attachments] == [
        PORTAL + "/servizi/servizio/bandi/download/2?fileName=ok.pdf"
    ]
    assert len(errors) == 1 and "attachment" in errors[0]
