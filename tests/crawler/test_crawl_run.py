"""End to end: a replay server on loopback → run_crawl (real crawl processes) → the database.

The SEDIA rows are the real recording; the feeds are the synthetic fixtures. Each run starts a
crawl process, so these tests take about a second a run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crawler.config import CrawlConfig, FeedConfig, FeedsConfig, SediaConfig, SourcesConfig
from crawler.replay.venues import install_burl, install_openinnovation, install_unioncamere
from crawler.run import ProgressEvent, SourceSummary, run_crawl, source_lock
from storage.calls import events_after, list_calls
from storage.db import Database
from storage.sources import RunView, get_source, recent_runs
from tests.crawler.expected_cases import DATA, NOW
from tests.fakes.replay import ReplayServer, Reply, Scripted, SediaSearch, multipart_parts, static
from tests.fakes.replay_regional import DATASET_PATH, DETAIL_PREFIX, install_incentivi, install_lombardia

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
            # The recordings hold a few calls a source: judge the field shares on them all the same.
            min_validation_items=1,
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
            unioncamere=install_unioncamere(server),
            openinnovation=install_openinnovation(server),
            burl=install_burl(server),
        )
        yield Site(server, search, crawl, sources)


def test_full_crawl_then_a_no_change_recrawl(db: Database, site: Site) -> None:
    first = site.run(db, ["sedia", "feeds"])
    assert (first["sedia"].outcome, first["sedia"].new) == ("ok", 6)
    assert (first["feeds"].outcome, first["feeds"].new) == ("ok", 12)
    assert len(list_calls(db, source="sedia")) == 6
    assert len(list_calls(db, source="feeds", kinds=None)) == 12
    assert len(list_calls(db, source="feeds")) == 7  # five entries are news: notices, not listed as calls
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


def test_unchanged_topics_are_never_refetched_by_default(sqlite_db: Database, site: Site) -> None:
    assert site.sources.sedia.full_refresh_days == 0
    site.run(sqlite_db, ["sedia"])
    later = NOW + timedelta(days=60)
    [summary] = run_crawl(sqlite_db.url, ["sedia"], crawl=site.crawl, sources_config=site.sources, now=later)
    assert (summary.outcome, summary.unchanged) == ("ok", 6)
    assert site.sedia.full_requests == 1


def test_the_refresh_period_when_set_refetches_unchanged_topics(sqlite_db: Database, site: Site) -> None:
    sources = site.sources.model_copy(
        update={"sedia": site.sources.sedia.model_copy(update={"full_refresh_days": 7})}
    )
    run_crawl(sqlite_db.url, ["sedia"], crawl=site.crawl, sources_config=sources, now=NOW)
    later = NOW + timedelta(days=8)
    run_crawl(sqlite_db.url, ["sedia"], crawl=site.crawl, sources_config=sources, now=later)
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
    stored = list_calls(sqlite_db, source="feeds", kinds=None)
    assert len(stored) == 3  # the MIMIT entries: one call, two news items (an extension, a rate update)
    assert sorted(c.kind for c in stored) == ["call", "notice", "notice"]
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
        "unioncamere": "ok",
        "openinnovation": "ok",
        "burl": "ok",
    }
    assert (first["lombardia"].new, first["incentivi"].new) == (5, 5)
    assert (first["unioncamere"].new, first["openinnovation"].new, first["burl"].new) == (3, 4, 5)
    assert first["lombardia"].kinds["detail"]["requests"] == 4
    assert {c.source for c in list_calls(sqlite_db)} == {
        "lombardia",
        "sedia",
        "incentivi",
        "feeds",
        "unioncamere",
        "openinnovation",
    }

    site.server.clear()
    second = site.run(sqlite_db, [])
    assert all(s.outcome == "ok" and s.new == 0 and s.changed == 0 for s in second.values()), second
    assert (second["lombardia"].unchanged, second["incentivi"].unchanged) == (5, 5)
    assert not [r for r in site.server.requests if r.path.startswith(DETAIL_PREFIX)]
    assert {r.status for r in site.server.requests_to(DATASET_PATH)} == {304}  # the registry too
    older = ("lombardia", "sedia", "incentivi", "feeds")
    assert sum(second[n].bytes for n in older) < sum(first[n].bytes for n in older) * 0.2
    # The new sources: Unioncamere's pages answer 304, no proposal page is fetched again, the
    # BURL's acts are carried (its API has no validators: only the searches are repeated).
    assert second["unioncamere"].kinds["detail"] == {"requests": 3, "bytes": 0, "not_modified": 3}
    assert second["openinnovation"].kinds["detail"]["requests"] == 0
    assert (second["burl"].unchanged, second["burl"].kinds["detail"]["requests"]) == (5, 0)


def latest_run(db: Database, source: str) -> RunView:
    """The last run started (the tests give every run the same clock reading)."""
    return max(recent_runs(db, source), key=lambda r: r.id)


def sedia_row(site: Site, identifier: str) -> dict[str, Any]:
    return next(
        r
        for r in site.sedia.rows
        if r["metadata"]["identifier"] == [identifier] and r["metadata"].get("DATASOURCE") == ["SEDIA"]
    )


def test_one_changed_topic_without_a_deadline_does_not_block_the_source(
    sqlite_db: Database, site: Site
) -> None:
    assert site.run(sqlite_db, ["sedia"])["sedia"].outcome == "ok"
    odd = sedia_row(site, "HORIZON-CL5-2027-03-D5-05")
    odd["checksum"] = "CHANGED"
    odd["metadata"]["deadlineDate"] = []
    odd["metadata"]["actions"] = []
    second = site.run(sqlite_db, ["sedia"])["sedia"]
    # Judged over the six listed topics, the five unchanged ones having a deadline: 83 %.
    assert (second.outcome, second.changed, second.unchanged) == ("ok", 1, 5), second.reason
    run = latest_run(sqlite_db, "sedia")
    assert run.report["ingested"] is True and run.report["fresh_fields"]["deadline"] == 0.0
    stored = {c.source_id: c for c in list_calls(sqlite_db, source="sedia")}
    assert stored["HORIZON-CL5-2027-03-D5-05"].closes is None

    # ... and the changes after it still get in.
    other = sedia_row(site, sorted(set(stored) - {"HORIZON-CL5-2027-03-D5-05"})[0])
    other["checksum"] = "CHANGED-TOO"
    other["metadata"]["title"] = ["A retitled topic"]
    third = site.run(sqlite_db, ["sedia"])["sedia"]
    assert (third.outcome, third.changed, third.unchanged) == ("ok", 1, 5), third.reason
    assert "A retitled topic" in {c.title for c in list_calls(sqlite_db, source="sedia")}


def test_a_shrunken_run_is_not_ingested_until_the_new_size_settles(sqlite_db: Database, site: Site) -> None:
    assert site.run(sqlite_db, ["sedia"])["sedia"].new == 6
    identifiers = sorted(c.source_id for c in list_calls(sqlite_db, source="sedia"))
    kept = identifiers[:2]
    site.sedia.rows = [r for r in site.sedia.rows if r["metadata"]["identifier"][0] in kept]
    renamed = sedia_row(site, kept[0])
    renamed["checksum"] = "CHANGED"
    renamed["metadata"]["title"] = ["A renamed topic"]
    before = {c.source_id: c.content_hash for c in list_calls(sqlite_db, source="sedia")}

    # failure_threshold is 2: two shrunken runs are refused (admins told on the second) ...
    shrunk = [site.run(sqlite_db, ["sedia"])["sedia"] for _ in range(2)]
    assert [(s.outcome, s.seen, s.changed, s.notify) for s in shrunk] == [
        ("degraded", 2, 0, None),
        ("degraded", 2, 0, "failing"),
    ]
    assert "fewer than half" in shrunk[0].reason
    assert {c.source_id: c.content_hash for c in list_calls(sqlite_db, source="sedia")} == before
    report = latest_run(sqlite_db, "sedia").report
    assert (report["ingested"], report["shrunk"]) == (False, True)
    assert get_source(sqlite_db, "sedia").last_good_yield == 6

    # ... and the next one agreeing with them is the source's new size: ingested, and recovered.
    settled = site.run(sqlite_db, ["sedia"])["sedia"]
    assert (settled.outcome, settled.seen, settled.changed, settled.notify) == ("ok", 2, 1, "recovered")
    assert latest_run(sqlite_db, "sedia").report["new_baseline"] == {"from": 6, "to": 2}
    assert get_source(sqlite_db, "sedia").last_good_yield == 2
    calls = {c.source_id: c for c in list_calls(sqlite_db, source="sedia")}
    assert calls[kept[0]].title == "A renamed topic"
    assert len(calls) == 6  # the calls no longer listed are kept, never deleted


def test_a_no_change_recrawl_moves_last_seen_of_every_call(sqlite_db: Database, site: Site) -> None:
    first = site.run(sqlite_db, [])
    assert all(s.outcome == "ok" for s in first.values()), first
    later = NOW + timedelta(hours=6)
    second = run_crawl(sqlite_db.url, [], crawl=site.crawl, sources_config=site.sources, now=later)
    assert all(s.outcome == "ok" and s.new == s.changed == 0 for s in second), second
    seen: dict[str, set[datetime]] = {}
    for call in list_calls(sqlite_db):
        assert call.first_seen < later, call  # first seen by the first crawl
        seen.setdefault(call.source, set()).add(call.last_seen)
    # Every call of a source seen at that source's run (carried over unchanged, 304s included).
    assert set(seen) == {"lombardia", "sedia", "incentivi", "feeds", "unioncamere", "openinnovation"}
    assert all(len(moments) == 1 and min(moments) >= later for moments in seen.values()), seen
    moved = {r.source: r.report["last_seen_moved"] for r in recent_runs(sqlite_db, limit=7)}
    assert moved == {
        "lombardia": 5,
        "sedia": 6,
        "incentivi": 5,
        "feeds": 12,
        "unioncamere": 3,
        "openinnovation": 4,
        "burl": 5,
    }


def test_robots_txt_disallow_is_obeyed(sqlite_db: Database, site: Site) -> None:
    robots = b"User-agent: Sentinella\nDisallow: /feeds/eic.xml\nDisallow: /search-api/\n\nUser-agent: *\nDisallow:\n"
    site.server.route("GET", "/robots.txt", Reply(200, robots, {"Content-Type": "text/plain"}))
    summaries = site.run(sqlite_db, ["feeds", "sedia"])
    assert site.server.requests_to("/robots.txt"), "robots.txt was not read"
    assert site.server.requests_to("/feeds/eic.xml") == []
    assert site.server.requests_to(SEARCH) == []
    feeds = summaries["feeds"]
    assert (feeds.outcome, feeds.errors) == ("ok", 1)
    assert "eic" in feeds.error_messages[0] and "robots.txt" in feeds.error_messages[0]
    assert len(site.server.requests_to("/feeds/eismea.xml")) == 1  # the other feeds are allowed
    sedia = summaries["sedia"]
    assert sedia.outcome == "failed" and "robots.txt" in sedia.reason
    assert list_calls(sqlite_db, source="sedia") == []
