"""The feed extractor on synthetic fixtures shaped like the real feeds (tests/data/crawler/feeds)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from crawler.extract import ExtractionError
from crawler.extract.feeds import extract_feed
from storage.records import ROME, CallStatus
from tests.crawler.expected_cases import DATA, NOW, params

FEEDS = DATA / "feeds"


def _extract(body: bytes, **kwargs: Any) -> tuple[list[Any], list[str]]:
    errors: list[str] = []
    records = extract_feed(
        body, "https://feeds.example/feed.xml", NOW, feed_name="t", errors=errors, **kwargs
    )
    return records, errors


@pytest.mark.parametrize("case", params("feeds"))
def test_fixture_gives_the_expected_records_field_by_field(case: Any) -> None:
    case.check()


def test_entries_are_calls_with_status_unknown_and_deadlines_from_the_text() -> None:
    records, errors = _extract((FEEDS / "eismea_calls_synthetic.xml").read_bytes())
    assert errors == []
    assert {r.status for r in records} == {CallStatus.UNKNOWN}
    first = records[0]
    assert first.closes == datetime(2026, 10, 15, 17, 0, tzinfo=ROME)
    assert first.budget_total == Decimal("12000000")
    assert first.published == datetime(2026, 8, 26, 10, 0, tzinfo=ROME)
    assert first.source_id == "t:101 at https://eismea.ec.europa.eu"
    # An info-day announcement states no deadline: none is invented.
    assert records[2].closes is None and records[2].deadlines == ()


def test_a_body_that_is_not_a_feed_is_an_error() -> None:
    with pytest.raises(ExtractionError, match="not an RSS/Atom feed"):
        _extract((FEEDS / "not_a_feed_synthetic.html").read_bytes(), headers={"Content-Type": "text/html"})
    with pytest.raises(ExtractionError):
        _extract(b"")
    with pytest.raises(ExtractionError):
        _extract(b'{"items": []}', headers={"Content-Type": "application/json"})


def test_a_malformed_but_readable_feed_still_yields_its_entries_with_an_error() -> None:
    records, errors = _extract((FEEDS / "bozo_recoverable_synthetic.xml").read_bytes())
    assert [r.title for r in records] == ["Voucher export & fiere 2026", "Bando digitalizzazione PMI"]
    assert len(errors) == 1 and "malformed" in errors[0]


def test_odd_encodings_are_decoded() -> None:
    records, errors = _extract((FEEDS / "latin1_encoded_synthetic.xml").read_bytes())
    assert records[0].title == "Contributi per la qualità e la sostenibilità delle filiere"
    assert errors == []
    # The declared charset of the response wins over a missing XML declaration.
    body = "<rss version='2.0'><channel><title>x</title><item><title>Perché sì</title><link>https://a.example/1</link></item></channel></rss>"
    records, _ = _extract(
        body.encode("cp1252"), headers={"Content-Type": "application/rss+xml; charset=windows-1252"}
    )
    assert records[0].title == "Perché sì"


def test_one_bad_entry_never_loses_the_others() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>x</title>
      <item><link>https://a.example/no-title</link></item>
      <item><title>Kept</title><link>https://a.example/kept</link></item>
      <item><title>Kept again</title><link>https://a.example/kept</link></item>
      <item><title>No link, no guid</title></item>
    </channel></rss>"""
    records, errors = _extract(body)
    assert [r.title for r in records] == ["Kept"]
    assert len(errors) == 3


def test_feedparser_never_fetches_a_url_given_as_body() -> None:
    with pytest.raises(ExtractionError):
        _extract(b"http://127.0.0.1:9/feed.xml")


def test_only_http_entry_links_are_kept() -> None:
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
      <link>https://feeds.example/</link>
      <item><title>Script</title><link>javascript:alert(1)</link><guid>a</guid></item>
      <item><title>Tabbed</title><link>java&#9;script:alert(1)</link><guid>b</guid></item>
      <item><title>Relative</title><link>/bandi/c</link><guid>c</guid></item>
    </channel></rss>"""
    records, _errors = _extract(body)
    by_title = {r.title: r for r in records}
    assert by_title["Script"].url == "https://feeds.example/feed.xml" and by_title["Script"].links == ()
    assert by_title["Tabbed"].url == "https://feeds.example/feed.xml"
    assert by_title["Relative"].url == "https://feeds.example/bandi/c"
