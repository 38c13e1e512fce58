"""The SEDIA extractor against the real recordings (tests/data/crawler/sedia, see its README)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from crawler.extract import ExtractionError, sedia
from crawler.extract.build_sedia_codes import build
from storage.records import ROME, CallStatus, Precision, record_to_json
from tests.crawler.expected_cases import DATA, NOW, params
from tests.fakes.replay import multipart_parts

SEDIA = DATA / "sedia"
OPEN_TOPICS = SEDIA / "search_open_topics_2026.json"
UNFILTERED = SEDIA / "search_unfiltered_2023.json"


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_bytes())
    return data


def _body(results: list[dict[str, Any]]) -> bytes:
    return json.dumps({"totalResults": len(results), "results": results}).encode()


@pytest.mark.parametrize("case", params("sedia"))
def test_recording_gives_the_expected_records_field_by_field(case: Any) -> None:
    case.check()


def test_stale_centricity_rows_and_duplicates_are_dropped() -> None:
    raw = _load(OPEN_TOPICS)["results"]
    assert len(raw) == 9
    records = sedia.extract_topics(OPEN_TOPICS.read_bytes(), "u", NOW)
    ids = [r.source_id for r in records]
    assert len(ids) == len(set(ids)) == 6
    assert "HORIZON-INFRA-2024-EOSC-01-03" not in ids  # stale, and twice in the recording
    assert "HORIZON-CL2-2024-TRANSFORMATIONS-01-08" not in ids
    page = sedia.parse_listing(OPEN_TOPICS.read_bytes(), "u", NOW)
    assert (page.result_count, page.dropped_stale, len(page.rows)) == (9, 3, 6)


def test_a_repeated_sedia_identifier_keeps_the_first_row() -> None:
    rows = _load(OPEN_TOPICS)["results"]
    first = next(r for r in rows if r["metadata"]["DATASOURCE"] == ["SEDIA"])
    second = json.loads(json.dumps(first))
    second["metadata"]["title"] = ["A later copy"]
    page = sedia.parse_listing(_body([first, second]), "u", NOW)
    assert len(page.rows) == 1 and page.dropped_duplicates == 1
    records = sedia.extract_topics(_body([first, second]), "u", NOW)
    assert [r.title for r in records] == [first["metadata"]["title"][0]]


def test_the_unfiltered_2023_response_is_an_error_not_calls() -> None:
    with pytest.raises(ExtractionError, match="query was ignored"):
        sedia.extract_topics(UNFILTERED.read_bytes(), "u", NOW)
    with pytest.raises(ExtractionError, match="type 0: 1, type 6: 9"):
        sedia.parse_listing(UNFILTERED.read_bytes(), "u", NOW)


def test_open_topic_whose_last_deadline_passed_is_closed() -> None:
    records = {r.source_id: r for r in sedia.extract_topics(OPEN_TOPICS.read_bytes(), "u", NOW)}
    assert records["HORIZON-CL3-2026-02-CS-ECCC-01"].status == CallStatus.OPEN
    # Deadline 2026-09-15: still open on that day, closed the day after.
    on_the_day = datetime(2026, 9, 15, 23, 0, tzinfo=ROME)
    after = datetime(2026, 9, 16, 0, 5, tzinfo=ROME)
    assert {r.source_id: r.status for r in sedia.extract_topics(OPEN_TOPICS.read_bytes(), "u", on_the_day)}[
        "HORIZON-CL3-2026-02-CS-ECCC-01"
    ] == CallStatus.OPEN
    assert {r.source_id: r.status for r in sedia.extract_topics(OPEN_TOPICS.read_bytes(), "u", after)}[
        "HORIZON-CL3-2026-02-CS-ECCC-01"
    ] == CallStatus.CLOSED


def test_two_stage_deadlines_are_all_kept_and_the_last_is_final() -> None:
    records = {r.source_id: r for r in sedia.extract_topics(OPEN_TOPICS.read_bytes(), "u", NOW)}
    topic = records["HORIZON-MISS-2027-05-SOIL-01-two-stage"]
    assert [(d.at.date().isoformat(), d.label, d.precision) for d in topic.deadlines] == [
        ("2027-04-08", "first stage", Precision.DATE),
        ("2027-09-14", "second stage", Precision.DATE),
    ]
    assert topic.closes == topic.deadlines[-1].at and topic.closes_precision == Precision.DATE
    assert topic.closes.tzinfo is not None


def test_budget_takes_only_this_topics_entries_of_the_call_map() -> None:
    row = next(
        r
        for r in _load(OPEN_TOPICS)["results"]
        if r["metadata"]["identifier"] == ["HORIZON-CL6-2026-04-GOVERNANCE-01"]
    )
    other = {
        "action": "HORIZON-CL6-2026-04-GOVERNANCE-011 - HORIZON-CSA",  # a prefix of ours, not ours
        "minContribution": 1,
        "maxContribution": 99000000,
        "budgetYearMap": {"2026": "1"},
    }
    overview = json.loads(row["metadata"]["budgetOverview"][0])
    overview["budgetTopicActionMap"]["999"] = [other]
    row["metadata"]["budgetOverview"] = [json.dumps(overview)]
    record = sedia.topic_record(row, NOW)
    assert record.budget_total == Decimal("60000000")  # 23,000,000 (2026) + 37,000,000 (2027)
    assert (record.contribution_min, record.contribution_max) == (Decimal("60000000"), Decimal("60000000"))


def test_a_cut_short_budget_overview_is_salvaged_entry_by_entry() -> None:
    row = next(
        r
        for r in _load(OPEN_TOPICS)["results"]
        if r["metadata"]["identifier"] == ["HORIZON-CL3-2026-02-CS-ECCC-01"]
    )
    text = row["metadata"]["budgetOverview"][0]
    # The recorder cut this string after the second entry began; put a complete entry of ours first.
    ours = (
        '{"action":"HORIZON-CL3-2026-02-CS-ECCC-01 - HORIZON-RIA","expectedGrants":5,'
        '"minContribution":3000000,"maxContribution":4000000,"budgetYearMap":{"2026":"20000000"}}'
    )
    row["metadata"]["budgetOverview"] = [text.replace('"113179":[', '"113179":[' + ours + ",", 1)]
    errors: list[str] = []
    record = sedia.topic_record(row, NOW, errors=errors)
    assert record.budget_total == Decimal("20000000")
    assert record.contribution_max == Decimal("4000000")
    assert errors and "salvaged" in errors[0]


def test_codes_become_labels_from_the_facet_reference() -> None:
    assert sedia.label("frameworkProgramme", "43108390") == "Horizon Europe (HORIZON)"
    assert sedia.label("status", "31094502") == "Open for submission"
    assert sedia.label("type", "8") == "Cascade funding calls"
    assert sedia.label("type", "2") == "Call for proposals"  # supplemented, with its provenance
    assert sedia.label("frameworkProgramme", "0000") == "0000"


def test_shipped_code_table_is_what_the_build_script_makes_of_the_facet_recording() -> None:
    import hashlib

    facet = SEDIA / "facet_reference_2023.json"
    blob = facet.read_bytes()
    built = build(json.loads(blob), source_name=facet.name, source_sha256=hashlib.sha256(blob).hexdigest())
    shipped = json.loads(
        Path(sedia.__file__).with_name("data").joinpath("sedia_codes.json").read_text("utf-8")
    )
    assert built == shipped


def test_one_bad_row_never_loses_the_others() -> None:
    rows = _load(OPEN_TOPICS)["results"]
    broken = json.loads(json.dumps(rows[0]))
    broken["metadata"]["title"] = []
    broken["summary"] = ""
    no_metadata = {"reference": "x"}
    errors: list[str] = []
    records = sedia.extract_topics(_body([broken, no_metadata, *rows[2:]]), "u", NOW, errors=errors)
    assert len(records) == 5
    assert any("no title" in e for e in errors) and any("no metadata" in e for e in errors)


@pytest.mark.parametrize(
    "body",
    [b"", b"<html>Service Unavailable</html>", OPEN_TOPICS.read_bytes()[:5000], b'{"results": "x"}', b"[]"],
    ids=["empty", "html", "truncated", "results-not-a-list", "array"],
)
def test_a_body_that_is_not_a_search_response_raises(body: bytes) -> None:
    with pytest.raises(ExtractionError):
        sedia.extract_topics(body, "u", NOW)


def test_multipart_body_has_json_file_parts() -> None:
    parts = sedia.search_parts(sedia.build_query(), display_fields=sedia.LIGHT_FIELDS)
    body, content_type = sedia.multipart_body(parts, boundary="sentinella-test")
    decoded = multipart_parts(content_type, body)
    assert [(name, ctype) for name, ctype, _ in decoded] == [
        ("query", "application/json"),
        ("languages", "application/json"),
        ("sort", "application/json"),
        ("displayFields", "application/json"),
    ]
    assert b'filename="blob"' in body
    query = json.loads(decoded[0][2])
    assert {"terms": {"DATASOURCE": ["SEDIA"]}} in query["bool"]["must"]
    assert {"terms": {"type": ["1", "2", "8"]}} in query["bool"]["must"]
    assert {"terms": {"status": ["31094501", "31094502"]}} in query["bool"]["must"]
    assert json.loads(decoded[2][2]) == {"field": "identifier", "order": "ASC"}


def test_records_serialise_and_carry_the_raw_row() -> None:
    record = sedia.extract_topics(OPEN_TOPICS.read_bytes(), "u", NOW)[0]
    assert record.raw is not None and record.raw["checksum"]
    json.dumps(record_to_json(record, include_raw=True))
    assert record.description and "<" not in record.description.split("\n")[-1][-30:]


def test_raw_is_the_row_as_received() -> None:
    received = {r["metadata"]["identifier"][0]: r for r in _load(OPEN_TOPICS)["results"]}
    records = sedia.extract_topics(OPEN_TOPICS.read_bytes(), "u", NOW)
    for record in records:
        assert record.raw == received[record.source_id]
        # JSON numbers as written: "weight": 4.0 stays 4.0, not 4 (nor a Decimal the column refuses)
        assert json.dumps(record.raw) == json.dumps(received[record.source_id])
    assert '"weight": 4.0' in json.dumps(records[0].raw)


def test_type_and_status_labels_are_kept() -> None:
    rows = _load(OPEN_TOPICS)["results"]
    cascade = json.loads(json.dumps(next(r for r in rows if r["metadata"]["DATASOURCE"] == ["SEDIA"])))
    cascade["metadata"]["type"] = ["8"]
    cascade["metadata"]["status"] = ["31094502"]
    [record] = sedia.extract_topics(_body([cascade]), "u", NOW)
    # The type is the form of support, before the topic's types of action.
    assert record.support_forms[0] == "Cascade funding calls"
    assert record.support_forms[1:] == tuple(
        " ".join(t.split()) for t in cascade["metadata"]["typesOfAction"]
    )
    assert record.keywords[-1] == "Open for submission"
    forthcoming = sedia.extract_topics(OPEN_TOPICS.read_bytes(), "u", NOW)[0]
    assert (forthcoming.support_forms[0], forthcoming.keywords[-1]) == ("Grant", "Forthcoming")


def test_a_topic_url_that_is_not_http_is_replaced_by_the_portal_page() -> None:
    row = json.loads(
        json.dumps(next(r for r in _load(OPEN_TOPICS)["results"] if r["metadata"]["DATASOURCE"] == ["SEDIA"]))
    )
    row["metadata"]["url"] = ["javascript:alert(1)"]
    row["url"] = "https:no-host"
    [record] = sedia.extract_topics(_body([row]), "u", NOW, topic_url="https://portal.example/topic/")
    assert record.url == "https://portal.example/topic/" + record.source_id
    assert record.links == (record.url,)
