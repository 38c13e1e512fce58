"""Unit tests of the crawler's shared machinery: config, base-spider state, validation, lock, report."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError
from rich.console import Console

from crawler.base import MAX_ERRORS_KEPT, CollectPipeline, ErrorList, SpiderContext, validation_report
from crawler.config import (
    CrawlConfig,
    FeedConfig,
    FeedsConfig,
    LombardiaConfig,
    SediaConfig,
    SourcesConfig,
    interval_seconds,
)
from crawler.report import CrawlProgress, human_bytes, summary_table
from crawler.run import ProgressEvent, SourceSummary, resolve_sources, source_lock
from crawler.spiders.lombardia import Lombardia
from crawler.spiders.sedia import Sedia
from storage.records import CallRecord, CallStatus, Precision
from tests.crawler.expected_cases import NOW


def spider(state: dict[str, Any] | None = None, now: Any = NOW) -> Sedia:
    return Sedia(
        context=SpiderContext(source_config=SediaConfig(), crawl=CrawlConfig(), now=now, state=state or {})
    )


def record(source_id: str, **fields: Any) -> CallRecord:
    return CallRecord(
        source="sedia", source_id=source_id, url="https://e.example/" + source_id, title="T", **fields
    )


# --- config ---------------------------------------------------------------------------------------


def test_defaults_are_the_real_endpoints_and_run_without_a_file() -> None:
    sources = SourcesConfig()
    assert sources.sedia.search_url == "https://api.tech.ec.europa.eu/search-api/prod/rest/search"
    assert sources.lombardia.dataset_url.endswith("/resource/bukx-h2uy.json")
    assert sources.incentivi.base_url == "https://www.incentivi.gov.it"
    assert [f.name for f in sources.feeds.feeds] == [
        "mimit-incentivi-aggiornamenti",
        "eismea",
        "eic",
        "cinea",
    ]
    assert sources.unioncamere.base_url == "https://www.unioncamerelombardia.it"
    assert sources.openinnovation.base_url == "https://www.openinnovation.regione.lombardia.it"
    assert sources.burl.api_url == "https://www.consultazioniburl.servizirl.it/ConsultazioneBurl/api"
    assert sources.enabled() == [
        "lombardia",
        "sedia",
        "incentivi",
        "feeds",
        "unioncamere",
        "openinnovation",
        "burl",
    ]
    assert "Sentinella" in CrawlConfig().full_user_agent and "+https://" in CrawlConfig().full_user_agent


@pytest.mark.parametrize("schedule", ["6h", "90m", "1d", "0 */6 * * *", "30 7 * * mon-fri"])
def test_schedules_accepted(schedule: str) -> None:
    assert SediaConfig(schedule=schedule).schedule == schedule


@pytest.mark.parametrize("schedule", ["", "6 hours", "* * *", "every day"])
def test_schedules_refused(schedule: str) -> None:
    with pytest.raises(ValidationError):
        SediaConfig(schedule=schedule)


def test_interval_seconds() -> None:
    assert interval_seconds("6h") == 21600 and interval_seconds("90m") == 5400
    assert interval_seconds("0 */6 * * *") is None


def test_unknown_keys_and_duplicate_feed_names_are_refused() -> None:
    with pytest.raises(ValidationError):
        CrawlConfig.model_validate({"user_agnet": "x"})
    feed = FeedConfig(name="a", url="https://a.example/rss")
    with pytest.raises(ValidationError, match="unique"):
        FeedsConfig(feeds=[feed, feed])
    with pytest.raises(ValidationError):
        FeedConfig(name="Bad Name", url="https://a.example/rss")


def test_resolve_sources() -> None:
    config = SourcesConfig.model_validate({"lombardia": {"enabled": False}})
    assert resolve_sources([], config) == [
        "sedia",
        "incentivi",
        "feeds",
        "unioncamere",
        "openinnovation",
        "burl",
    ]
    assert resolve_sources(["feeds", "lombardia", "feeds"], config) == ["feeds", "lombardia"]
    with pytest.raises(ValueError, match="unknown source"):
        resolve_sources(["ted"], config)


# --- spider state ---------------------------------------------------------------------------------


def test_error_list_counts_everything_and_keeps_the_first() -> None:
    errors = ErrorList()
    for i in range(MAX_ERRORS_KEPT + 7):
        errors.append(f"e{i}")
    assert errors.total == MAX_ERRORS_KEPT + 7 and len(errors) == MAX_ERRORS_KEPT and errors[0] == "e0"


def test_unchanged_compares_fingerprints_and_carries_them_over() -> None:
    first = spider()
    assert not first.unchanged("A", "fp1")
    first.remember("A", "fp1")
    state = first.final_state()
    assert state["fingerprints"]["A"]["fp"] == "fp1"

    second = spider(state)
    assert second.unchanged("A", "fp1") and second.unchanged_skipped == 1
    assert not second.unchanged("A", "fp2")
    # Keys not listed this run are forgotten, so a topic that comes back is fetched again.
    third = spider(
        {"fingerprints": {"A": state["fingerprints"]["A"], "B": {"fp": "x", "at": NOW.isoformat()}}}
    )
    third.unchanged("A", "fp1")
    assert set(third.final_state()["fingerprints"]) == {"A"}


def test_unchanged_expires_after_the_refresh_period() -> None:
    first = spider()
    first.remember("A", "fp")
    later = spider(first.final_state(), now=NOW + timedelta(days=8))
    assert not later.unchanged("A", "fp", refresh_after=timedelta(days=7))
    assert later.unchanged("A", "fp", refresh_after=timedelta(days=9))


def test_a_fatal_error_is_kept_with_the_others() -> None:
    s = spider()
    s.record_error("a detail page failed")
    s.fail("the listing failed")
    s.fail("and again")
    assert s.run_failure() == "the listing failed" and s.errors.total == 3


# --- validation and collection --------------------------------------------------------------------


def test_validation_report_judges_required_fields_only() -> None:
    records = [
        record("1", status=CallStatus.OPEN, closes=NOW, closes_precision=Precision.DATE),
        record("2", status=CallStatus.OPEN, sportello=True),
        record("3"),
        record("4"),
    ]
    report = validation_report(records, ("title", "status", "deadline"), min_share=0.6)
    assert report["field_shares"] == {"title": 1.0, "status": 0.5, "deadline": 0.5}
    assert report["below"] == ["status", "deadline"]
    assert report["fields"]["budget"] == 0.0  # reported, not judged
    assert validation_report([], ("title",), min_share=0.5)["field_shares"] == {}


def test_carried_calls_count_as_passing_so_one_odd_change_does_not_sink_the_run() -> None:
    # One changed topic without a deadline, five carried over unchanged (they had one when stored).
    odd = [record("1", status=CallStatus.OPEN)]
    alone = validation_report(odd, ("title", "status", "deadline"), min_share=0.5)
    assert alone["below"] == ["deadline"]  # what every later run got before carried calls counted
    report = validation_report(odd, ("title", "status", "deadline"), min_share=0.5, carried=5)
    assert report["field_shares"] == {"title": 1.0, "status": 1.0, "deadline": round(5 / 6, 4)}
    assert report["below"] == []
    assert (report["items"], report["fresh_items"], report["carried_items"]) == (6, 1, 5)
    assert report["fresh_fields"]["deadline"] == 0.0  # still visible in the run's report
    # A broken parser still shows when the changed calls outnumber the unchanged ones.
    broken = [record(str(n), status=CallStatus.OPEN) for n in range(6)]
    assert validation_report(broken, ("deadline",), min_share=0.5, carried=5)["below"] == ["deadline"]


def test_validation_is_judged_only_on_enough_calls() -> None:
    records = [record("1", status=CallStatus.OPEN), record("2"), record("3")]
    small = validation_report(records, ("status",), min_share=0.5, min_items=20)
    assert (small["judged"], small["field_shares"], small["below"]) == (False, {}, [])
    assert small["fields"]["status"] == round(1 / 3, 4)  # reported all the same
    enough = validation_report(records, ("status",), min_share=0.5, carried=17, min_items=20)
    assert (enough["judged"], enough["below"]) == (True, [])
    assert validation_report(records, ("status",), min_share=0.5, min_items=3)["below"] == ["status"]
    assert CrawlConfig().min_validation_items == 20


def test_a_record_without_an_http_url_is_dropped_with_an_error() -> None:
    s = spider()
    pipeline = CollectPipeline(SimpleNamespace(spider=s))  # type: ignore[arg-type]
    bad = CallRecord(source="sedia", source_id="X", url="javascript:alert(1)", title="T")
    s.remember("X", "fp")
    pipeline.process_item(bad)
    assert "X" not in s.final_state().get("fingerprints", {})  # fetched again next run
    pipeline.process_item(record("A", status=CallStatus.OPEN, sportello=True))
    pipeline.close_spider()
    assert [r.source_id for r in pipeline.records] == ["A"]
    assert s.errors.total == 1 and "'X' dropped: no url" in s.errors[0]
    assert pipeline.report["fields"]["url"] == 1.0


def test_carried_keys_are_counted_and_named() -> None:
    first = spider()
    first.remember("A", "fp")
    first.remember("B", "fp")
    second = spider(first.final_state())
    assert second.unchanged("A", "fp") and not second.unchanged("B", "changed")
    second.carry("C")
    assert (second.unchanged_skipped, second.carried_ids) == (2, ["A", "C"])


def test_detail_refresh_is_a_per_source_setting_off_by_default() -> None:
    def lombardia(**config: Any) -> Lombardia:
        context = SpiderContext(source_config=LombardiaConfig(**config), crawl=CrawlConfig(), now=NOW)
        return Lombardia(context=context)

    assert lombardia().detail_refresh() is None
    assert lombardia(detail_refresh_days=7).detail_refresh() == timedelta(days=7)
    assert SediaConfig().full_refresh_days == 0


def test_collect_pipeline_drops_duplicates_and_foreign_items() -> None:
    s = spider()
    pipeline = CollectPipeline(SimpleNamespace(spider=s))  # type: ignore[arg-type]
    pipeline.process_item(record("A"))
    pipeline.process_item(record("A"))
    pipeline.process_item({"title": "a dict"})
    pipeline.close_spider()
    assert [r.source_id for r in pipeline.records] == ["A"]
    assert s.errors.total == 2
    assert pipeline.report["items"] == 1


# --- lock and report ------------------------------------------------------------------------------


def test_the_source_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    crawl = CrawlConfig(lock_dir=str(tmp_path))
    with source_lock(crawl, "sqlite:///x.db", "sedia") as first:
        assert first
        with source_lock(crawl, "sqlite:///x.db", "sedia") as second:
            assert not second
        with source_lock(crawl, "sqlite:///x.db", "feeds") as other_source:
            assert other_source
        with source_lock(crawl, "sqlite:///y.db", "sedia") as other_database:
            assert other_database
    with source_lock(crawl, "sqlite:///x.db", "sedia") as again:
        assert again


def test_summary_table_and_progress_render() -> None:
    summaries = [
        SourceSummary("sedia", "ok", new=6, requests=5, bytes=52_242, seconds=1.5),
        SourceSummary("feeds", "failed", errors=4, reason="every feed failed [boom]", notify="failing"),
    ]
    console = Console(record=True, width=160)
    with CrawlProgress(console, ["sedia", "feeds"]) as show:
        show(ProgressEvent("sedia", "starting"))
        show(ProgressEvent("sedia", "crawling", requests=3, bytes=2048, items=6))
        show(ProgressEvent("sedia", "done", summary=summaries[0]))
        show(ProgressEvent("other", "starting"))
    console.print(summary_table(summaries))
    text = console.export_text()
    assert "sedia" in text and "51.0 KB" in text and "failed" in text
    assert "every feed failed [boom]" in text  # scraped-looking text is printed, not read as markup
    assert "admins told: failing" in text and "total" in text
    assert human_bytes(512) == "512 B" and human_bytes(3 * 1024 * 1024) == "3.0 MB"
