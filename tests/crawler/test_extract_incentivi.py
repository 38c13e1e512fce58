"""incentivi.gov.it extractor against the real Solr documents and a synthetic Lombardy response.

Expected outputs live beside the inputs in tests/data/crawler/incentivi/ (``*.expected.json``);
``python tests/crawler/regen_expected.py`` rewrites them after a deliberate change (review the diff);
the tests only compare.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from crawler.extract import ExtractionError
from crawler.extract.incentivi import (
    FIELDS,
    ateco_codes,
    body_sections,
    catalogue_date,
    doc_to_record,
    parse_solr,
    read_solr,
    solr_url,
    wrap_docs,
)
from storage.records import ROME, CallStatus, Precision, record_from_json, record_to_json
from tests.crawler.expected_cases import (
    INCENTIVI,
    INCENTIVI_BASE,
    NOW,
    Golden,
    assert_expected,
    golden_params,
)

DATA = INCENTIVI
BASE = INCENTIVI_BASE
FRAGMENT = json.loads((DATA / "solr_docs_2026_FRAGMENT.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", golden_params("incentivi"))
def test_regeneration_produces_what_the_tests_check(case: Golden) -> None:
    # regen_expected.py writes what ``produce`` returns: it must be what the tests compare.
    assert case.produce() == case.expected()


def test_the_real_documents_in_an_envelope() -> None:
    errors: list[str] = []
    body = (DATA / "solr_fragment_docs_in_synthetic_envelope.json").read_bytes()
    read = read_solr(body, solr_url(BASE, 8000), NOW, base_url=BASE, errors=errors)
    assert errors == []
    assert (read.num_found, read.docs, read.truncated) == (6, 6, False)
    # Liguria, Friuli-Venezia Giulia and the two Bolzano measures are not available in Lombardy
    assert read.skipped == {"region": 4}
    assert_expected(
        "solr_fragment_docs_in_synthetic_envelope.expected.json", [record_to_json(r) for r in read.records]
    )
    by_id = {r.source_id: r for r in read.records}
    assert set(by_id) == {"143", "1426"}
    national = by_id["1426"]
    assert national.status == CallStatus.OPEN
    assert national.closes == datetime(2026, 12, 31, tzinfo=ROME)
    assert national.closes_precision == Precision.DATE
    assert national.sportello is False
    assert national.ateco_codes == ("90.00", "90.01", "90.02", "90.03", "90.04")
    assert national.granting_body == "Ministero della Cultura - Direzione Generale Spettacolo"
    assert national.support_forms == ("Contributo/Fondo perduto",)
    assert national.links[0].startswith("https://spettacolo.cultura.gov.it/")
    assert national.url == BASE + FRAGMENT["national"]["zs_url"]
    assert len(national.regions) == 20
    assert national.beneficiaries[1].startswith("Possono presentare domanda di contributo")
    rolling = by_id["143"]
    # "2019-12-31T23:00:00" is Rome midnight of 1 January 2020 stored in UTC
    assert rolling.opens == datetime(2020, 1, 1, tzinfo=ROME)
    assert rolling.closes is None and rolling.sportello is True
    assert rolling.ateco_codes == ()  # "Tutti i settori economici"
    assert rolling.raw is not None and rolling.raw["ateco"] == "all sectors"
    for record in read.records:
        assert record_from_json(record_to_json(record)) == record


def test_far_future_close_date_means_until_funds_run_out() -> None:
    doc = dict(FRAGMENT["far_future_sportello"], zm_field_regions_value=["Lombardia"])
    record = doc_to_record(doc, fetched_at=NOW, base_url=BASE)
    assert record is not None
    assert record.sportello is True
    assert record.closes is None and record.deadlines == ()
    assert record.raw is not None and record.raw["placeholder_close_date"] == "2030-12-31"
    assert "Si tratta di una procedura a sportello." in record.description


def test_synthetic_lombardy_response() -> None:
    errors: list[str] = []
    read = read_solr(
        (DATA / "solr_lombardia_synthetic.json").read_bytes(), "u", NOW, base_url=BASE, errors=errors
    )
    assert_expected("solr_lombardia_synthetic.expected.json", [record_to_json(r) for r in read.records])
    assert read.skipped == {"closed": 1, "subject": 1}
    assert len(errors) == 2  # no id; an unreadable date: noted, the others kept
    by_id = {r.source_id: r for r in read.records}
    chamber = by_id["90001"]
    assert chamber.opens == datetime(2026, 6, 1, tzinfo=ROME)  # 2026-05-31T22:00:00 UTC
    assert chamber.closes == datetime(2026, 10, 31, tzinfo=ROME)  # 2026-10-30T23:00:00 UTC
    assert chamber.budget_total == Decimal("2500000")
    assert chamber.ateco_codes == ("20.42", "22.22", "17.21")
    assert chamber.beneficiaries == (
        "Impresa",
        "Micro, piccole e medie imprese con sede legale o unità locale nelle province di Milano, "
        "Monza Brianza e Lodi.",
    )
    assert "- fino a € 10.000 per impresa" in chamber.description
    sportello = by_id["90002"]
    assert sportello.sportello and sportello.closes == datetime(2026, 10, 30, tzinfo=ROME)
    assert by_id["90005"].status == CallStatus.FORTHCOMING and by_id["90005"].sportello


def test_truncation_is_reported() -> None:
    docs = [FRAGMENT["national"]]
    body = json.dumps(wrap_docs(docs, num_found=5800)).encode()
    errors: list[str] = []
    read = read_solr(body, "u", NOW, base_url=BASE, errors=errors)
    assert read.truncated
    assert len(read.records) == 1
    assert "5800" in errors[0] and "truncated" in errors[0]


def test_closed_measures_are_left_out_the_day_after() -> None:
    doc = dict(FRAGMENT["national"], zs_field_close_date="2026-09-02T00:00:00")
    assert doc_to_record(doc, fetched_at=NOW, base_url=BASE) is not None  # closes at the end of the day
    later = datetime(2026, 9, 3, 0, 0, 1, tzinfo=ROME)
    assert doc_to_record(doc, fetched_at=later, base_url=BASE) is None


@pytest.mark.parametrize(
    "body",
    [b"", b"<html>502 Bad Gateway</html>", b"[]", b'{"responseHeader": {}}', b'{"response": {"docs": 3}}',
     b'{"error": {"msg": "undefined field", "code": 400}}', b'{"response": {"numFound": "x", "docs": []}}'],
)  # fmt: skip
def test_unusable_bodies_raise(body: bytes) -> None:
    with pytest.raises(ExtractionError):
        parse_solr(body, "u", NOW, base_url=BASE)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-01T00:00:00", date(2024, 3, 1)),
        ("2019-12-31T23:00:00", date(2020, 1, 1)),
        ("2026-05-31T22:00:00", date(2026, 6, 1)),  # summer time: UTC+2
        ("2026-09-07T00:00:00Z", date(2026, 9, 7)),
        ("2024-04-17T11:13:13Z", date(2024, 4, 17)),
        (None, None),
        ("", None),
    ],
)
def test_catalogue_date(value: str | None, expected: date | None) -> None:
    assert catalogue_date(value) == expected


def test_ateco_codes() -> None:
    assert ateco_codes("20.42; 22.22") == ("20.42", "22.22")
    assert ateco_codes("20.42; 22.22;  ;20.42") == ("20.42", "22.22")
    assert ateco_codes("Tutti i settori economici") == ()
    assert ateco_codes(None) == ()


def test_body_sections_read_headings_glued_to_the_text() -> None:
    intro, sections = body_sections(FRAGMENT["specific"]["zs_body"])
    assert intro.endswith("con una dotazione di 6 milioni.")
    assert sections["A chi si rivolge"].startswith("l'intervento agevolativo si rivolge")
    assert sections["Cosa prevede"].startswith("Lo strumento opera")


def test_the_request_url() -> None:
    url = solr_url(BASE + "/", 8000)
    parts = urlsplit(url)
    assert parts.path == "/solr/coredrupal/select"
    query = parse_qs(parts.query)
    assert query["q"] == ["index_id:incentivi"]
    assert query["rows"] == ["8000"]
    assert query["sort"] == ["ds_last_update desc"]
    assert query["fl"] == [",".join(FIELDS)]


@pytest.mark.parametrize(
    ("zs_url", "expected"),
    [
        ("/it/catalogo/misura-x", BASE + "/it/catalogo/misura-x"),
        ("it/catalogo/misura-x", BASE + "/it/catalogo/misura-x"),
        ("https://www.incentivi.gov.it/it/catalogo/misura-x", BASE + "/it/catalogo/misura-x"),
        ("javascript:alert(1)", None),
        ("JavaScript:alert(1)", None),
        ("data:text/html,<script>x</script>", None),
        ("mailto:info@example.org", None),
    ],
)
def test_only_http_catalogue_links_become_the_url(zs_url: str, expected: str | None) -> None:
    doc = dict(FRAGMENT["national"], zs_url=zs_url, zs_field_link="javascript:void(0)")
    errors: list[str] = []
    record = doc_to_record(doc, fetched_at=NOW, base_url=BASE, errors=errors)
    assert record is not None
    assert record.links == ()  # the official link was not http(s) either
    if expected is None:
        assert record.url == BASE  # the catalogue itself, never the script
        assert len(errors) == 1 and "not an http(s) URL" in errors[0]
        assert record.raw is not None and record.raw["bad_url"] is True
    else:
        assert (record.url, errors) == (expected, [])


def test_a_catalogue_link_resolves_under_a_base_url_with_a_path() -> None:
    doc = dict(FRAGMENT["national"], zs_url="/it/catalogo/misura-x")
    record = doc_to_record(doc, fetched_at=NOW, base_url="http://127.0.0.1:8080/mirror/")
    assert record is not None and record.url == "http://127.0.0.1:8080/mirror/it/catalogo/misura-x"
