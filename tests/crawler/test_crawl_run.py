"""End to end: a replay server on loopback → run_crawl (real crawl processes) → the database.

The SEDIA rows are the real recording; the feeds are the synthetic fixtures. Each run starts a
crawl process, so these tests take about a second a run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from crawler.config import CrawlConfig, FeedConfig, FeedsConfig, SediaConfig, SourcesConfig
from crawler.run import ProgressEvent, SourceSummary, run_crawl, source_lock
from storage.calls import events_after, list_calls
from storage.db import Database
from storage.sources import get_source, recent_runs
from tests.crawler.expected_cases import DATA, NOW
from tests.fakes.replay import ReplayServer, Reply, Scripted, SediaSearch, multipart_parts, static
from tests.fakes.replay_regional import DETAIL_PREFIX, install_incentivi, install_lombardia

pytestmark = pytest.mark.integration

SEARCH = "/search-api/prod/rest/search"
RECORDING = DATA / "sedia" / "search_open_topics_2026.json"
UNFILTERED = (DATA / "sedia" / "search_unfiltered_2023.json").read_bytes()
FEEDS = {
    "mimit-incentivi-aggiornamenti": "mimit_incentivi_aggiornamenti_synthetic.xml",
    "eismea": "eismea_calls_synthetic.xml",
    "eic": "eic_calls_synthetic.xml",
    "cinea": "cinea_calls_synthetic.xml",
}


def recorded_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(RECORDING.read_bytes())["results"]
    return rows


@dataclass
class Site:
    server: ReplayServer
    sedia: SediaSearch
    crawl: CrawlConfig
    sources: SourcesConfig

    def run(self, db: Database, names: list[str], **kwargs: Any) -> dict[str, SourceSummary]:
        summaries = run_crawl(db.url, names, crawl=self.crawl, sources_config=self.sources, now=NOW, **kwargs)
        return {s.name: s for s in summaries}

    def detail_identifiers(self) -> list[list[str]]:
        """The identifiers asked for in each full-metadata (no displayFields) SEDIA request."""
        asked = []
        for request in self.server.requests_to(SEARCH, "POST"):
            parts = {
                n: json.loads(p)
                for n, _t, p in multipart_parts(request.headers["content-type"], request.body)
            }
            if "displayFields" not in parts:
                terms = [c["terms"] for c in parts["query"]["bool"]["must"] if "identifier" in c["terms"]]
                asked.append(terms[0]["identifier"] if terms else [])
        return asked


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with ReplayServer() as server:
        search = SediaSearch(recorded_rows(), unfiltered=UNFILTERED)
        server.route("POST", SEARCH, search)
        feeds = []
        for name, file in FEEDS.items():
            body = (DATA / "feeds" / file).read_bytes()
            path = f"/feeds/{name}.xml"
            server.route("GET", path, static(body, content_type="application/rss+xml", etag=f'"{name}-v1"'))
            feeds.append(FeedConfig(name=name, url=server.url(path)))
        crawl = CrawlConfig(
            download_delay=0,
            download_timeout=5,
            retry_backoff=0.01,
            max_retries=2,
            lock_dir=str(tmp_path / "locks"),
            failure_threshold=2,
        )
        # The Lombardy registry/portal and incentivi.gov.it routes (synthetic pages around the real
        # fragments, the real Solr documents): see tests/fakes/replay_regional.py.
        lombardia, _dataset, _portal = install_lombardia(server)
        incentivi = install_incentivi(server)
        sources = SourcesConfig(
            # Page size 4 over 9 recorded rows: three listing pages.
            sedia=SediaConfig(search_url=server.url(SEARCH), page_size=4),
            feeds=FeedsConfig(feeds=feeds),
            lombardia=lombardia,
            incentivi=incentivi,
        )
        yield Site(server, search, crawl, sources)


def test_full_crawl_then_a_no_change_recrawl(db: Database, site: Site) -> None:
    first = site.run(db, ["sedia", "feeds"])
    assert (first["sedia"].outcome, first["sedia"].new) == ("ok", 6)
    assert (first["feeds"].outcome, first["feeds"].new) == ("ok", 12)
    assert len(list_calls(db, source="sedia")) == 6
    assert len(list_calls(db, source="feeds")) == 12
    assert site.sedia.light_requests == 3 and site.sedia.full_requests == 1
    runs = {r.source: r for r in recent_runs(db)}
    assert runs["sedia"].outcome == "ok" and runs["sedia"].requests >= 4 and runs["sedia"].bytes > 0
    assert runs["sedia"].report["field_shares"] == {"title": 1.0, "url": 1.0, "status": 1.0, "deadline": 1.0}
    events = len(events_after(db, 0))
    assert events == 18

    second = site.run(db, ["sedia", "feeds"])
    assert (second["sedia"].outcome, second["sedia"].new, second["sedia"].unchanged) == ("ok", 0, 6)
    assert (second["feeds"].outcome, second["feeds"].unchanged) == ("ok", 12)
    assert site.sedia.full_requests == 1, "no full metadata fetched for unchanged topics"
    assert second["sedia"].kinds["detail"]["requests"] == 0
    feed_statuses = [r.status for r in site.server.requests if r.path.startswith("/feeds/")]
    assert feed_statuses == [200] * 4 + [304] * 4
    assert second["sedia"].bytes + second["feeds"].bytes < first["sedia"].bytes + first["feeds"].bytes
    assert len(events_after(db, 0)) == events


def test_a_changed_checksum_refetches_that_topic_only(sqlite_db: Database, site: Site) -> None:
    site.run(sqlite_db, ["sedia"])
    row = next(r for r in site.sedia.rows if r["metadata"]["identifier"] == ["HORIZON-CL5-2027-03-D5-05"])
    row["checksum"] = "CHANGED"
    row["metadata"]["deadlineDate"] = ["2027-05-20T00:00:00.000+0000"]
    summary = site.run(sqlite_db, ["sedia"])["sedia"]
    assert (summary.outcome, summary.changed, summary.unchanged) == ("ok", 1, 5)
    assert site.detail_identifiers()[-1] == ["HORIZON-CL5-2027-03-D5-05"]
    call = next(
        c for c in list_calls(sqlite_db, source="sedia") if c.source_id == "HORIZON-CL5-2027-03-D5-05"
    )
    assert call.closes is not None and call.closes.date().isoformat() == "2027-05-20"


def test_the_refresh_period_refetches_unchanged_topics(sqlite_db: Database, site: Site) -> None:
    site.run(sqlite_db, ["sedia"])
    later = NOW + timedelta(days=8)
    run_crawl(sqlite_db.url, ["sedia"], crawl=site.crawl, sources_config=site.sources, now=later)
    assert site.sedia.full_requests == 2


def test_a_failing_listing_fails_the_run_and_keeps_the_stored_calls(sqlite_db: Database, site: Site) -> None:
    site.run(sqlite_db, ["sedia"])
    before = {c.source_id: c.content_hash for c in list_calls(sqlite_db, source="sedia")}
    events = len(events_after(sqlite_db, 0))
    site.server.clear()
    site.server.route("POST", SEARCH, Reply(500, b'{"type":"throwable"}'))
    summary = site.run(sqlite_db, ["sedia"])["sedia"]
    assert summary.outcome == "failed" and "HTTP 500" in summary.reason
    assert len(site.server.requests_to(SEARCH)) == 1 + site.crawl.max_retries
    assert {c.source_id: c.content_hash for c in list_calls(sqlite_db, source="sedia")} == before
    assert len(events_after(sqlite_db, 0)) == events
    assert get_source(sqlite_db, "sedia").consecutive_failures == 1
    # The state of the last good run is kept: once the API is back, nothing is refetched.
    site.server.route("POST", SEARCH, site.sedia)
    assert site.run(sqlite_db, ["sedia"])["sedia"].unchanged == 6


def test_a_500_is_retried_with_backoff(sqlite_db: Database, site: Site) -> None:
    site.server.route("POST", SEARCH, Scripted([Reply(500), site.sedia]))
    summary = site.run(sqlite_db, ["sedia"])["sedia"]
    assert (summary.outcome, summary.new) == ("ok", 6)
    assert [r.status for r in site.server.requests_to(SEARCH)][:2] == [500, 200]


def test_a_timeout_fails_the_run(sqlite_db: Database, site: Site) -> None:
    site.crawl = site.crawl.model_copy(update={"download_timeout": 1.0, "max_retries": 0})
    site.server.route("POST", SEARCH, Reply(200, b"{}", delay=3))
    summary = site.run(sqlite_db, ["sedia"])["sedia"]
    assert summary.outcome == "failed"
    assert "Timeout" in summary.reason or "timeout" in summary.reason.lower()
    assert list_calls(sqlite_db, source="sedia") == []


def test_the_unfiltered_answer_of_a_wrongly_encoded_query_is_not_ingested(
    sqlite_db: Database, site: Site
) -> None:
    site.server.route("POST", SEARCH, Reply(200, UNFILTERED, {"Content-Type": "application/json"}))
    summary = site.run(sqlite_db, ["sedia"])["sedia"]
    assert summary.outcome == "failed" and "query was ignored" in summary.reason
    assert list_calls(sqlite_db, source="sedia") == []


def test_a_truncated_listing_fails_the_run(sqlite_db: Database, site: Site) -> None:
    site.server.route("POST", SEARCH, Reply(200, RECORDING.read_bytes()[:20_000]))
    summary = site.run(sqlite_db, ["sedia"])["sedia"]
    assert summary.outcome == "failed" and "not JSON" in summary.reason


def test_validation_below_threshold_is_degraded_and_ingests_nothing(sqlite_db: Database, site: Site) -> None:
    kept = 0
    for row in site.sedia.rows:
        if row["metadata"].get("DATASOURCE") == ["SEDIA"]:
            if kept >= 2:
                row["metadata"]["deadlineDate"] = []
                row["metadata"]["actions"] = []
            kept += 1
    summary = site.run(sqlite_db, ["sedia"])["sedia"]
    assert summary.outcome == "degraded" and "deadline" in summary.reason
    assert list_calls(sqlite_db, source="sedia") == []
    run = recent_runs(sqlite_db, "sedia")[0]
    assert run.report["below"] == ["deadline"] and run.report["ingested"] is False


def test_admins_are_told_once_after_the_threshold_and_again_on_recovery(
    sqlite_db: Database, site: Site
) -> None:
    site.server.route("POST", SEARCH, Reply(503))
    site.crawl = site.crawl.model_copy(update={"max_retries": 0})
    notes = [site.run(sqlite_db, ["sedia"])["sedia"].notify for _ in range(3)]
    assert notes == [None, "failing", None]
    site.server.route("POST", SEARCH, site.sedia)
    recovered = site.run(sqlite_db, ["sedia"])["sedia"]
    assert (recovered.outcome, recovered.notify) == ("ok", "recovered")


def test_bad_feeds_are_errors_and_the_good_ones_are_stored(sqlite_db: Database, site: Site) -> None:
    site.server.route(
        "GET",
        "/feeds/eic.xml",
        static((DATA / "feeds" / "not_a_feed_synthetic.html").read_bytes(), content_type="text/html"),
    )
    site.server.route("GET", "/feeds/cinea.xml", Reply(500))
    huge = b"<rss version='2.0'><channel>" + b" " * (11 * 1024 * 1024) + b"</channel></rss>"
    site.server.route("GET", "/feeds/eismea.xml", Reply(200, huge, {"Content-Type": "application/rss+xml"}))
    summary = site.run(sqlite_db, ["feeds"])["feeds"]
    assert summary.outcome == "ok"
    assert summary.errors == 3
    assert len(list_calls(sqlite_db, source="feeds")) == 3  # the MIMIT entries
    joined = " | ".join(summary.error_messages)
    assert "eic" in joined and "not an RSS/Atom feed" in joined
    assert "cinea" in joined and "HTTP 500" in joined
    assert "eismea" in joined


def test_every_feed_failing_fails_the_run(sqlite_db: Database, site: Site) -> None:
    for name in FEEDS:
        site.server.route("GET", f"/feeds/{name}.xml", Reply(404))
    summary = site.run(sqlite_db, ["feeds"])["feeds"]
    assert summary.outcome == "failed" and "every feed failed" in summary.reason


def test_a_second_crawl_of_a_running_source_is_skipped(sqlite_db: Database, site: Site) -> None:
    with source_lock(site.crawl, sqlite_db.url, "sedia") as held:
        assert held
        summary = site.run(sqlite_db, ["sedia"])["sedia"]
    assert summary.outcome == "skipped"
    assert site.server.requests == []


def test_a_hung_crawl_process_is_stopped_and_recorded(sqlite_db: Database, site: Site) -> None:
    site.crawl = site.crawl.model_copy(update={"run_timeout": 3.0, "download_timeout": 60.0})
    site.server.route("POST", SEARCH, Reply(200, b"{}", delay=30))
    summary = site.run(sqlite_db, ["sedia"])["sedia"]
    assert summary.outcome == "failed" and "longer than" in summary.reason
    assert recent_runs(sqlite_db, "sedia")[0].outcome == "failed"


def test_progress_is_reported_per_source(sqlite_db: Database, site: Site) -> None:
    events: list[ProgressEvent] = []
    site.run(sqlite_db, ["feeds", "sedia"], progress=events.append)
    stages = [(e.source, e.stage) for e in events if e.stage in ("starting", "done")]
    assert stages == [("feeds", "starting"), ("feeds", "done"), ("sedia", "starting"), ("sedia", "done")]
    done = [e for e in events if e.stage == "done"]
    assert all(e.summary is not None for e in done)
    assert any(e.stage == "crawling" and e.requests > 0 for e in events)


def test_unknown_source_names_are_refused(sqlite_db: Database, site: Site) -> None:
    with pytest.raises(ValueError, match="unknown source"):
        site.run(sqlite_db, ["nope"])


def test_every_source_end_to_end(sqlite_db: Database, site: Site) -> None:
    first = site.run(sqlite_db, [])  # every enabled source
    assert {name: s.outcome for name, s in first.items()} == {
        "lombardia": "ok",
        "sedia": "ok",
        "incentivi": "ok",
        "feeds": "ok",
    }
    assert (first["lombardia"].new, first["incentivi"].new) == (5, 5)
    assert first["lombardia"].kinds["detail"]["requests"] == 4
    assert {c.source for c in list_calls(sqlite_db)} == {"lombardia", "sedia", "incentivi", "feeds"}

    site.server.clear()
    second = site.run(sqlite_db, [])
    assert all(s.outcome == "ok" and s.new == 0 and s.changed == 0 for s in second.values()), second
    assert (second["lombardia"].unchanged, second["incentivi"].unchanged) == (5, 5)
    assert not [r for r in site.server.requests if r.path.startswith(DETAIL_PREFIX)]
    assert sum(s.bytes for s in second.values()) < sum(s.bytes for s in first.values()) * 0.2
