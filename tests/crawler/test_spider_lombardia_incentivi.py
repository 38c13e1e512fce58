"""The Lombardia and incentivi spiders end to end: replay server on loopback → crawl process → database.

Each test runs :func:`crawler.run.run_crawl` (a real child process with Scrapy) against the routes of
:mod:`tests.fakes.replay_regional`, then reads the stored calls and the run's accounting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from crawler.config import CrawlConfig, SourcesConfig
from crawler.run import SourceSummary, run_crawl
from storage.calls import CallView, call_events, list_calls
from storage.db import Database
from storage.records import ROME, CallStatus, Precision
from storage.sources import get_source
from tests.fakes.replay import RecordedRequest, ReplayServer, Reply
from tests.fakes.replay_regional import (
    DATASET_PATH,
    DETAIL_PREFIX,
    LOMBARDIA,
    SEARCH_PATH,
    SOLR_PATH,
    SocrataDataset,
    install_incentivi,
    install_lombardia,
    lombardia_portal,
    lombardia_rows,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)
TERTIUM = "RLP12026052483"
TERTIUM_PATH = (
    "/servizi/servizio/bandi/dettaglio/attivita-produttive-imprese/imprese-moda-design/"
    "bando-tertium-RLP12026052483"
)


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as replay:
        yield replay


def crawl_config(tmp_path: Path) -> CrawlConfig:
    return CrawlConfig(
        download_delay=0,
        max_retries=0,
        retry_backoff=0,
        download_timeout=20,
        lock_dir=str(tmp_path / "locks"),
        run_timeout=120,
    )


def crawl(
    db: Database, tmp_path: Path, source: str, sources: SourcesConfig, now: datetime = NOW
) -> SourceSummary:
    [summary] = run_crawl(db.url, [source], crawl=crawl_config(tmp_path), sources_config=sources, now=now)
    return summary


def portal_page(code: str) -> bytes:
    return (LOMBARDIA / f"detail_{code}_synthetic.html").read_bytes()


def calls_by_id(db: Database, source: str) -> dict[str, CallView]:
    return {c.source_id: c for c in list_calls(db, source=source)}


def detail_requests(server: ReplayServer) -> list[str]:
    return [r.path for r in server.requests if r.path.startswith(DETAIL_PREFIX)]


# --- Lombardia ----------------------------------------------------------------------------


def test_lombardia_full_crawl_then_a_no_change_crawl(
    server: ReplayServer, db: Database, tmp_path: Path
) -> None:
    section, dataset, portal = install_lombardia(server)
    sources = SourcesConfig(lombardia=section)

    first = crawl(db, tmp_path, "lombardia", sources)
    assert first.outcome == "ok", first
    assert first.new == 5 and first.errors == 0, first.error_messages
    calls = calls_by_id(db, "lombardia")
    assert set(calls) == {TERTIUM, "RLO12026055023", "RLAI2026053804", "RLP12026049999", "RLP12026058888"}

    tertium = calls[TERTIUM]
    assert tertium.url == server.url(TERTIUM_PATH)  # canonical, on the host crawled
    assert tertium.opens == datetime(2026, 6, 16, 10, 0, tzinfo=ROME)
    assert tertium.closes == datetime(2026, 9, 7, 12, 0, tzinfo=ROME)
    assert tertium.closes_precision == Precision.DATETIME
    assert tertium.published == datetime(2026, 5, 14, 9, 16, tzinfo=ROME)
    assert tertium.status == CallStatus.OPEN
    assert tertium.funding_source == "PR Lombardia FESR 2021-2027"
    assert tertium.budget_total == Decimal("5000000")
    assert len(tertium.beneficiaries) == 4 and len(tertium.attachments) == 2
    assert calls["RLO12026055023"].status == CallStatus.FORTHCOMING
    sportello = calls["RLAI2026053804"]
    assert (
        sportello.sportello and sportello.closes is None and sportello.granting_body == "Finlombarda S.p.A."
    )
    assert calls["RLP12026049999"].status == CallStatus.CLOSED
    listing_only = calls["RLP12026058888"]  # not in the registry yet: found through the portal listing
    assert listing_only.closes == datetime(2026, 10, 30, 12, 0, tzinfo=ROME)
    assert listing_only.budget_total == Decimal("1500000")

    # registry read in pages of 2 (5 rows pass the $where: 2 + 2 + 1), two listing pages, and the
    # detail pages of the four calls not closed (never the closed one)
    assert dataset.pages == 3
    assert len(server.requests_to(SEARCH_PATH, "POST")) == 2
    assert sorted(detail_requests(server)) == sorted(portal.paths[c] for c in portal.paths)
    assert first.kinds["detail"]["requests"] == 4

    server.clear()
    dataset.pages = 0
    second = crawl(db, tmp_path, "lombardia", sources, now=NOW + timedelta(hours=6))
    assert second.outcome == "ok", second
    assert (second.new, second.changed, second.unchanged) == (0, 0, 5)
    assert detail_requests(server) == []
    assert second.kinds["detail"]["requests"] == 0
    # every registry page answered 304 (the rows kept from the first crawl are used)
    assert [r.status for r in server.requests_to(DATASET_PATH)] == [304, 304, 304]
    assert second.bytes < first.bytes


def test_lombardia_refetches_only_what_changed(
    server: ReplayServer, sqlite_db: Database, tmp_path: Path
) -> None:
    section, dataset, portal = install_lombardia(server)
    sources = SourcesConfig(lombardia=section)
    assert crawl(sqlite_db, tmp_path, "lombardia", sources).outcome == "ok"

    for row in dataset.rows:
        if row["codice_bando"] == "RLAI2026053804":
            row["presentato"] = "999"  # the application counter moves every day: not a change
        if row["codice_bando"] == "RLO12026055023":
            row["titolo_bando"] = "Bando Filiere Sostenibili 2026 - rettifica"
    server.clear()
    again = crawl(sqlite_db, tmp_path, "lombardia", sources, now=NOW + timedelta(hours=1))
    assert again.outcome == "ok", again
    assert detail_requests(server) == [portal.paths["RLO12026055023"]]
    assert again.changed == 1
    assert calls_by_id(sqlite_db, "lombardia")["RLO12026055023"].title.endswith("rettifica")


def test_lombardia_opening_hour_passing_refetches_the_call(
    server: ReplayServer, sqlite_db: Database, tmp_path: Path
) -> None:
    # Registry only: it knows the opening day (1 October), the detail page the hour (10:00).
    section, _dataset, portal = install_lombardia(server, use_portal_listing=False)
    sources = SourcesConfig(lombardia=section)
    rlo = "RLO12026055023"
    assert crawl(sqlite_db, tmp_path, "lombardia", sources).outcome == "ok"
    server.clear()
    # On its opening day, before the hour the page gave: nothing to fetch, the call still forthcoming.
    early = crawl(sqlite_db, tmp_path, "lombardia", sources, now=datetime(2026, 10, 1, 0, 30, tzinfo=ROME))
    assert early.outcome == "ok", early
    assert detail_requests(server) == []
    assert calls_by_id(sqlite_db, "lombardia")[rlo].status == CallStatus.FORTHCOMING
    server.clear()
    # Nothing in the registry moved, but the opening hour the page gave has passed: that call only.
    later = crawl(sqlite_db, tmp_path, "lombardia", sources, now=datetime(2026, 10, 1, 10, 30, tzinfo=ROME))
    assert later.outcome == "ok", later
    assert detail_requests(server) == [portal.paths[rlo]]  # the canonical URL learnt before
    assert calls_by_id(sqlite_db, "lombardia")[rlo].status == CallStatus.OPEN


def test_lombardia_unchanged_details_are_never_refetched_by_default(
    server: ReplayServer, sqlite_db: Database, tmp_path: Path
) -> None:
    section, _dataset, portal = install_lombardia(server)
    assert section.detail_refresh_days == 0
    assert crawl(sqlite_db, tmp_path, "lombardia", SourcesConfig(lombardia=section)).outcome == "ok"
    server.clear()
    # Eight days later nothing the listings show changed for the calls still open or forthcoming:
    # only Tertium, closed meanwhile, is read (a change; see the closing-call test below).
    later = NOW + timedelta(days=8)
    quiet = crawl(sqlite_db, tmp_path, "lombardia", SourcesConfig(lombardia=section), now=later)
    assert quiet.outcome == "ok", quiet
    assert detail_requests(server) == [TERTIUM_PATH]

    refreshing = section.model_copy(update={"detail_refresh_days": 7})
    server.clear()
    refreshed = crawl(sqlite_db, tmp_path, "lombardia", SourcesConfig(lombardia=refreshing), now=later)
    assert refreshed.outcome == "ok", refreshed
    still_open = ("RLO12026055023", "RLAI2026053804", "RLP12026058888")
    assert sorted(detail_requests(server)) == sorted(portal.paths[c] for c in still_open)


#: The page details a call keeps once it closes (its registry row and card know none of them).
PAGE_FIELDS = (
    "opens",
    "closes",
    "closes_precision",
    "published",
    "summary",
    "description",
    "beneficiaries",
    "funding_source",
    "granting_body",
    "attachments",
    "budget_total",
    "url",
)


def test_lombardia_closing_call_is_refetched_and_keeps_its_details(
    server: ReplayServer, sqlite_db: Database, tmp_path: Path
) -> None:
    section, _dataset, _portal = install_lombardia(server)
    sources = SourcesConfig(lombardia=section)
    assert crawl(sqlite_db, tmp_path, "lombardia", sources).outcome == "ok"
    before = calls_by_id(sqlite_db, "lombardia")[TERTIUM]
    assert before.status == CallStatus.OPEN and before.beneficiaries and before.funding_source

    # Eight days on Tertium (closing 7 September, 12:00) is closed by the dates of its registry row
    # and card alone. It changed, so its page is read once more and the stored call only closes.
    server.clear()
    closing = crawl(sqlite_db, tmp_path, "lombardia", sources, now=NOW + timedelta(days=8))
    assert (closing.outcome, closing.errors, closing.changed) == ("ok", 0, 1), closing.error_messages
    assert detail_requests(server) == [TERTIUM_PATH]
    after = calls_by_id(sqlite_db, "lombardia")[TERTIUM]
    assert after.status == CallStatus.CLOSED
    assert after.closes == datetime(2026, 9, 7, 12, 0, tzinfo=ROME)
    assert after.opens == datetime(2026, 6, 16, 10, 0, tzinfo=ROME)
    assert after.funding_source == "PR Lombardia FESR 2021-2027"
    assert len(after.beneficiaries) == 4 and len(after.attachments) == 2
    assert {name: getattr(after, name) for name in PAGE_FIELDS} == {
        name: getattr(before, name) for name in PAGE_FIELDS
    }
    kinds_and_changes = [(e.kind, set(e.changes)) for e in call_events(sqlite_db, after.id)]
    assert kinds_and_changes == [("new", set()), ("changed", {"status"})]
    assert call_events(sqlite_db, after.id)[-1].changes["status"] == {"old": "open", "new": "closed"}

    # Closed and unchanged since: never fetched again.
    server.clear()
    quiet = crawl(sqlite_db, tmp_path, "lombardia", sources, now=NOW + timedelta(days=9))
    assert (quiet.outcome, quiet.changed) == ("ok", 0), quiet
    assert detail_requests(server) == []


def test_lombardia_closing_call_whose_page_fails_keeps_its_stored_version(
    server: ReplayServer, sqlite_db: Database, tmp_path: Path
) -> None:
    section, _dataset, portal = install_lombardia(server)
    sources = SourcesConfig(lombardia=section)
    assert crawl(sqlite_db, tmp_path, "lombardia", sources).outcome == "ok"
    before = calls_by_id(sqlite_db, "lombardia")[TERTIUM]

    server.route("GET", TERTIUM_PATH, Reply(500, b"oops", {"Content-Type": "text/plain"}))
    # Twice: a call carried over once is still known as enriched the run after.
    for hours in (0, 6):
        server.clear()
        failing = crawl(sqlite_db, tmp_path, "lombardia", sources, now=NOW + timedelta(days=8, hours=hours))
        assert (failing.outcome, failing.errors, failing.changed) == ("ok", 1, 0), failing
        assert TERTIUM in failing.error_messages[0]
        assert detail_requests(server) == [TERTIUM_PATH]
        stored = calls_by_id(sqlite_db, "lombardia")[TERTIUM]
        assert stored.content_hash == before.content_hash  # no poorer record over the stored one
        assert [e.kind for e in call_events(sqlite_db, stored.id)] == ["new"]

    server.route("GET", TERTIUM_PATH, lambda _r: portal.detail(TERTIUM))
    server.clear()
    retry = crawl(sqlite_db, tmp_path, "lombardia", sources, now=NOW + timedelta(days=8, hours=12))
    assert (retry.outcome, retry.errors, retry.changed) == ("ok", 0, 1), retry.error_messages
    after = calls_by_id(sqlite_db, "lombardia")[TERTIUM]
    assert after.status == CallStatus.CLOSED and after.beneficiaries == before.beneficiaries
    assert set(call_events(sqlite_db, after.id)[-1].changes) == {"status"}


def registry_get(dataset: SocrataDataset, offset: int = 0, **headers: str) -> Reply:
    query = {"$order": ["codice_bando"], "$limit": ["2"], "$offset": [str(offset)]}
    return dataset(
        RecordedRequest("GET", DATASET_PATH, query, {k.replace("_", "-"): v for k, v in headers.items()}, b"")
    )


def test_the_registry_emulator_answers_conditional_requests_as_socrata() -> None:
    dataset = SocrataDataset(lombardia_rows())
    first = registry_get(dataset)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert first.status == 200 and json.loads(first.body)
    assert etag.endswith('--gzip"') and modified == "Tue, 01 Sep 2026 04:00:00 GMT"
    other_page = registry_get(dataset, offset=2)
    assert other_page.headers["ETag"] != etag  # one per page
    assert other_page.headers["Last-Modified"] == modified  # the dataset's

    assert registry_get(dataset, if_none_match=etag).status == 304
    assert registry_get(dataset, if_none_match=f'"other", W/{etag}').status == 304
    assert registry_get(dataset, if_modified_since=modified).status == 304
    # If-None-Match decides when sent; a date the server cannot read is ignored.
    assert registry_get(dataset, if_none_match='"other"', if_modified_since=modified).status == 200
    assert registry_get(dataset, if_modified_since="yesterday").status == 200
    assert (dataset.pages, dataset.not_modified) == (7, 3)

    first_row = min(dataset.rows, key=lambda row: str(row["codice_bando"]))  # on the first page
    first_row["titolo_bando"] = "Rettifica"
    changed = registry_get(dataset, if_none_match=etag, if_modified_since=modified)
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert registry_get(dataset, if_modified_since=modified).status == 200
    assert registry_get(dataset, if_modified_since=changed.headers["Last-Modified"]).status == 304
    assert registry_get(dataset, offset=2, if_none_match=other_page.headers["ETag"]).status == 304

    error = dataset(RecordedRequest("GET", DATASET_PATH, {"$where": ["1 = 1"]}, {"if-none-match": "*"}, b""))
    assert error.status == 400 and "ETag" not in error.headers


def test_lombardia_registry_pages_are_asked_conditionally(
    server: ReplayServer, db: Database, tmp_path: Path
) -> None:
    section, dataset, portal = install_lombardia(server)
    sources = SourcesConfig(lombardia=section)
    first = crawl(db, tmp_path, "lombardia", sources)
    assert (first.outcome, first.new) == ("ok", 5), first
    assert [r.status for r in server.requests_to(DATASET_PATH)] == [200, 200, 200]
    kept = get_source(db, "lombardia").state["registry"]
    assert len(kept) == 3 and all(page["etag"] and page["rows"] for page in kept.values())

    server.clear()
    second = crawl(db, tmp_path, "lombardia", sources, now=NOW + timedelta(hours=6))
    assert (second.outcome, second.new, second.changed, second.unchanged) == ("ok", 0, 0, 5), second
    registry = server.requests_to(DATASET_PATH)
    assert [r.status for r in registry] == [304, 304, 304]
    assert all(r.headers.get("if-none-match", "").endswith('--gzip"') for r in registry)

    # A card changes while the registry answers 304: the call is rebuilt from the rows kept.
    portal.listing_pages[0] = portal.listing_pages[0].replace(
        b'data-content="Bando Filiere Sostenibili 2026"',
        b'data-content="Bando Filiere Sostenibili 2026 (v2)"',
    )
    server.clear()
    third = crawl(db, tmp_path, "lombardia", sources, now=NOW + timedelta(hours=7))
    assert third.outcome == "ok" and third.unchanged == 5, third
    assert [r.status for r in server.requests_to(DATASET_PATH)] == [304, 304, 304]
    assert detail_requests(server) == [portal.paths["RLO12026055023"]]
    rlo = calls_by_id(db, "lombardia")["RLO12026055023"]
    assert rlo.title == "Bando Filiere Sostenibili 2026" and rlo.status == CallStatus.FORTHCOMING

    # A registry row changes: its page answers 200 with a new ETag, the others still 304.
    for row in dataset.rows:
        if row["codice_bando"] == "RLO12026055023":
            row["titolo_bando"] = "Bando Filiere Sostenibili 2026 - rettifica"
    server.clear()
    fourth = crawl(db, tmp_path, "lombardia", sources, now=NOW + timedelta(hours=8))
    assert (fourth.outcome, fourth.changed) == ("ok", 1), fourth
    assert sorted(r.status for r in server.requests_to(DATASET_PATH)) == [200, 304, 304]
    assert calls_by_id(db, "lombardia")["RLO12026055023"].title.endswith("rettifica")


def _rlo_page_in(charset: str, *, declared: str) -> bytes:
    page = portal_page("RLO12026055023").decode("utf-8")
    page = page.replace('<meta charset="utf-8">', f'<meta charset="{declared}">')
    page = page.replace(
        "Progetti di ricerca industriale e sviluppo sperimentale",
        "Più filiere: attività di ricerca industriale e sviluppo sperimentale",
    )
    return page.encode(charset)


def test_lombardia_pages_are_decoded_by_their_charset(
    server: ReplayServer, sqlite_db: Database, tmp_path: Path
) -> None:
    section, _dataset, portal = install_lombardia(server)
    header = {"Content-Type": "text/html; charset=windows-1252"}
    server.route(
        "GET",
        portal.paths["RLO12026055023"],
        Reply(200, _rlo_page_in("cp1252", declared="windows-1252"), header),
    )
    summary = crawl(sqlite_db, tmp_path, "lombardia", SourcesConfig(lombardia=section))
    assert (summary.outcome, summary.errors) == ("ok", 0), summary.error_messages
    rlo = calls_by_id(sqlite_db, "lombardia")["RLO12026055023"]
    assert rlo.summary.startswith("Più filiere: attività di ricerca")


def test_lombardia_undecodable_bytes_are_an_error(
    server: ReplayServer, sqlite_db: Database, tmp_path: Path
) -> None:
    section, _dataset, portal = install_lombardia(server)
    # Latin-1 bytes served as UTF-8 (header and meta both say so).
    body = _rlo_page_in("latin-1", declared="utf-8")
    server.route(
        "GET", portal.paths["RLO12026055023"], Reply(200, body, {"Content-Type": "text/html;charset=UTF-8"})
    )
    summary = crawl(sqlite_db, tmp_path, "lombardia", SourcesConfig(lombardia=section))
    assert (summary.outcome, summary.errors) == ("ok", 1), summary.error_messages
    assert "RLO12026055023" in summary.error_messages[0] and "utf" in summary.error_messages[0].lower()
    assert calls_by_id(sqlite_db, "lombardia")["RLO12026055023"].summary.startswith("Pi\ufffd filiere")


def test_lombardia_bare_urls_fall_back_to_a_search_by_code(
    server: ReplayServer, sqlite_db: Database, tmp_path: Path
) -> None:
    portal = lombardia_portal(bare_404=[TERTIUM], bare_error=["RLO12026055023"])
    section, _dataset, _portal = install_lombardia(server, portal=portal, use_portal_listing=False)
    summary = crawl(sqlite_db, tmp_path, "lombardia", SourcesConfig(lombardia=section))
    assert summary.outcome == "ok", summary
    assert summary.errors == 0, summary.error_messages
    calls = calls_by_id(sqlite_db, "lombardia")
    assert "RLP12026058888" not in calls  # only the portal listing knows it
    assert calls[TERTIUM].url == server.url(TERTIUM_PATH)
    assert calls[TERTIUM].closes == datetime(2026, 9, 7, 12, 0, tzinfo=ROME)
    assert calls["RLO12026055023"].url == server.url(portal.paths["RLO12026055023"])
    # served at its bare URL: the canonical link of the page gives the canonical URL
    assert calls["RLAI2026053804"].url == server.url(portal.paths["RLAI2026053804"])
    searched = [json.dumps(s) for s in portal.searches]
    assert len(searched) == 2 and any(TERTIUM in s for s in searched)
    state = get_source(sqlite_db, "lombardia").state
    assert state["urls"][TERTIUM] == server.url(TERTIUM_PATH)


def test_lombardia_detail_failure_costs_that_call_only(
    server: ReplayServer, sqlite_db: Database, tmp_path: Path
) -> None:
    section, _dataset, portal = install_lombardia(server)
    server.route("GET", portal.paths["RLO12026055023"], Reply(500, b"oops", {"Content-Type": "text/plain"}))
    summary = crawl(sqlite_db, tmp_path, "lombardia", SourcesConfig(lombardia=section))
    assert summary.outcome == "ok", summary
    assert summary.errors == 1 and "RLO12026055023" in summary.error_messages[0]
    calls = calls_by_id(sqlite_db, "lombardia")
    # never fetched before: stored from its registry row and listing card, retried next run
    assert calls["RLO12026055023"].status == CallStatus.FORTHCOMING
    assert calls["RLO12026055023"].closes == datetime(2026, 12, 15, 16, 0, tzinfo=ROME)
    assert calls["RLO12026055023"].published is None
    assert calls[TERTIUM].published is not None

    server.route("GET", portal.paths["RLO12026055023"], lambda _r: portal.detail("RLO12026055023"))
    server.clear()
    retry = crawl(
        sqlite_db, tmp_path, "lombardia", SourcesConfig(lombardia=section), now=NOW + timedelta(hours=1)
    )
    assert detail_requests(server) == [portal.paths["RLO12026055023"]]
    assert retry.changed == 1
    assert calls_by_id(sqlite_db, "lombardia")["RLO12026055023"].published is not None


def test_lombardia_listing_error_page_fails_the_run(
    server: ReplayServer, sqlite_db: Database, tmp_path: Path
) -> None:
    section, _dataset, portal = install_lombardia(server)
    server.route("POST", SEARCH_PATH, Reply(200, portal.error_page, {"Content-Type": "text/html"}))
    summary = crawl(sqlite_db, tmp_path, "lombardia", SourcesConfig(lombardia=section))
    assert summary.outcome == "failed"
    assert "error page" in summary.reason
    assert list_calls(sqlite_db, source="lombardia") == []
    assert detail_requests(server) == []


def test_lombardia_registry_error_fails_the_run(
    server: ReplayServer, sqlite_db: Database, tmp_path: Path
) -> None:
    section, _dataset, _portal = install_lombardia(server)
    server.route("GET", DATASET_PATH, Reply(200, b"<html>maintenance</html>", {"Content-Type": "text/html"}))
    summary = crawl(sqlite_db, tmp_path, "lombardia", SourcesConfig(lombardia=section))
    assert summary.outcome == "failed"
    assert list_calls(sqlite_db, source="lombardia") == []


def test_lombardia_registry_pages_until_a_short_page(
    server: ReplayServer, sqlite_db: Database, tmp_path: Path
) -> None:
    rows = lombardia_rows()
    extra = [
        dict(
            rows[0],
            codice_bando=f"RLP1202609{n:04d}",
            titolo_bando=f"Bando {n}",
            chiusura_adesione="2026-08-28T00:00:00.000",
        )
        for n in range(6)
    ]
    section, dataset, _portal = install_lombardia(
        server, rows=rows + extra, page_size=3, use_portal_listing=False
    )
    summary = crawl(sqlite_db, tmp_path, "lombardia", SourcesConfig(lombardia=section))
    assert summary.outcome == "ok", summary
    # 11 rows pass the $where: pages of 3, 3, 3, 2
    assert dataset.pages == 4
    assert len(calls_by_id(sqlite_db, "lombardia")) == 10  # the personnel competition excluded


# --- incentivi ----------------------------------------------------------------------------


def test_incentivi_crawl_then_a_304(server: ReplayServer, db: Database, tmp_path: Path) -> None:
    section = install_incentivi(server)
    sources = SourcesConfig(incentivi=section)
    first = crawl(db, tmp_path, "incentivi", sources)
    assert first.outcome == "ok", first
    assert first.errors == 2  # the two unreadable synthetic documents
    calls = calls_by_id(db, "incentivi")
    assert set(calls) == {"143", "1426", "90001", "90002", "90005"}
    assert calls["90001"].url == server.url("/it/catalogo/bando-digitalizzazione-pmi-2026-cciaa-milomb")
    assert calls["90001"].ateco_codes == ("20.42", "22.22", "17.21")
    assert calls["143"].sportello and calls["143"].closes is None
    [request] = server.requests_to(SOLR_PATH)
    assert request.query["q"] == ["index_id:incentivi"] and request.query["wt"] == ["json"]
    assert get_source(db, "incentivi").etag == '"solr-2026-09-02"'

    server.clear()
    second = crawl(db, tmp_path, "incentivi", sources, now=NOW + timedelta(hours=6))
    assert second.outcome == "ok", second
    [conditional] = server.requests_to(SOLR_PATH)
    assert conditional.headers.get("if-none-match") == '"solr-2026-09-02"'
    assert conditional.status == 304
    assert (second.new, second.changed, second.unchanged) == (0, 0, 5)


def test_incentivi_without_validators_skips_unchanged_measures(
    server: ReplayServer, sqlite_db: Database, tmp_path: Path
) -> None:
    section = install_incentivi(server, etag=None)
    sources = SourcesConfig(incentivi=section)
    assert crawl(sqlite_db, tmp_path, "incentivi", sources).new == 5
    second = crawl(sqlite_db, tmp_path, "incentivi", sources, now=NOW + timedelta(hours=6))
    assert second.outcome == "ok", second
    assert (second.new, second.changed, second.unchanged) == (0, 0, 5)
    # the forthcoming measure opens on 15 October: its status moves, so it is handed over again
    later = crawl(sqlite_db, tmp_path, "incentivi", sources, now=datetime(2026, 10, 15, 9, 0, tzinfo=ROME))
    assert later.changed == 1
    assert calls_by_id(sqlite_db, "incentivi")["90005"].status == CallStatus.OPEN


def test_incentivi_broken_response_fails_the_run(
    server: ReplayServer, sqlite_db: Database, tmp_path: Path
) -> None:
    section = install_incentivi(server, body=b'{"response": {"numFound": 5800, "docs": [')
    summary = crawl(sqlite_db, tmp_path, "incentivi", SourcesConfig(incentivi=section))
    assert summary.outcome == "failed"
    assert list_calls(sqlite_db, source="incentivi") == []
