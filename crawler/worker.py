"""The crawl process: one source's crawl, ingest and run record, in a process of its own.

Started by :func:`crawler.run.run_crawl` as ``python -m crawler.worker`` with a JSON job on stdin;
it writes JSON lines on stdout — ``{"event": "progress", ...}`` while crawling and one
``{"event": "result", ...}`` at the end — and Scrapy's log on stderr. A fresh process per crawl
because Twisted's reactor cannot be restarted within a process.

The child ingests the records itself rather than sending them to the parent: the records (and
their raw payloads) can be many megabytes, the database is reachable from here, and the parent
stays a thin supervisor that only has to record a failure when this process dies or hangs.

What a run does, in order:

1. read the source's state (validators, fingerprints) and crawl with the source's spider;
2. count the run's *yield*: the calls the source listed, i.e. the records parsed plus the calls
   carried over unchanged (not fetched again, or behind a 304) — a no-change re-crawl yields
   as much as the full crawl before it;
3. decide: a failed crawl (a listing unreachable, the API answering nonsense, every feed down),
   an answer in a shape the parser does not know (``not_understood``: the run is degraded and
   the body kept in its report), a
   per-field validation below ``crawl.min_field_share``, a yield of 0, or a yield of less than
   half of the last good run's ingests **nothing**, so every stored call stays as it was (a
   broken listing or parser must not rewrite good data); otherwise ingest the records — ingest
   never deletes or closes calls that were not seen, so a partial run is harmless — and move
   ``last_seen`` of the carried calls (:func:`storage.ingest.touch_seen`), then apply the acts
   the spider found (:func:`storage.acts.apply_acts`: a proroga moves its call's deadline, a
   ranking becomes an event, an act linked to nothing a notice);
4. a source that really shrank is let back in: a shrunken run is marked ``shrunk`` in its report,
   and once the last ``crawl.failure_threshold`` runs were all shrunken and their yields and
   this run's agree within 10 % (:func:`storage.sources.shrink_settled`), this run is ingested
   and its yield becomes the new baseline (``new_baseline``). Admins have then been told the
   source was failing (after the threshold) and hear that it recovered;
5. save the new validators and state only after a successful ingest (a run not ingested is
   repeated in full next time, against the state of the last ingested one);
6. close the run with :func:`storage.sources.finish_run`, which gives the verdict (ok / degraded /
   failed) and whether admins must be told.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from crawler.config import CrawlConfig, SourcesConfig

Emit = Callable[[dict[str, Any]], None]

#: Seconds between two progress lines.
PROGRESS_EVERY = 0.5


@dataclass
class CrawlOutcome:
    """What a finished crawl produced, before ingest."""

    records: list[Any]
    errors: list[str]
    error_count: int
    failure: str | None
    report: dict[str, Any]
    requests: int
    bytes: int
    unchanged_skipped: int
    notes: dict[str, Any]
    etag: str | None
    last_modified: str | None
    state: dict[str, Any]
    kinds: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Ids of the calls carried over unchanged (their ``last_seen`` is moved after ingest).
    carried_ids: list[str] = field(default_factory=list)
    #: Why the source's answer was not understood (the run is degraded, nothing ingested).
    not_understood: str | None = None
    #: Acts about calls found this run, applied after ingest (``storage.acts``).
    acts: list[Any] = field(default_factory=list)
    act_call_sources: tuple[str, ...] = ()


def scrapy_settings(crawl: CrawlConfig, source_config: Any) -> dict[str, Any]:
    """The crawl settings, with the per-source overrides a source section may carry."""
    from crawler.base import crawl_settings

    settings = crawl_settings(crawl)
    # incentivi.gov.it answers slowly and in one big response: its section may raise both limits.
    timeout = getattr(source_config, "download_timeout", None)
    if timeout:
        settings["DOWNLOAD_TIMEOUT"] = timeout
    max_bytes = getattr(source_config, "max_response_bytes", None)
    if max_bytes:
        settings["DOWNLOAD_MAXSIZE"] = max_bytes
        settings["DOWNLOAD_WARNSIZE"] = max_bytes // 2
    return settings


def crawl_source(
    source: str,
    *,
    crawl: CrawlConfig,
    sources: SourcesConfig,
    now: datetime,
    etag: str | None = None,
    last_modified: str | None = None,
    state: dict[str, Any] | None = None,
    emit: Emit | None = None,
) -> CrawlOutcome:
    """Run the source's spider to the end in this process (once per process: the reactor)."""
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess

    from crawler.base import KINDS, CollectPipeline, SentinellaSpider, SpiderContext
    from crawler.spiders import spider_class

    source_config = sources.get(source)
    context = SpiderContext(
        source_config=source_config,
        crawl=crawl,
        now=now,
        etag=etag,
        last_modified=last_modified,
        state=dict(state or {}),
    )
    process = CrawlerProcess(settings=scrapy_settings(crawl, source_config), install_root_handler=True)
    crawler = process.create_crawler(spider_class(source))

    counters = {"requests": 0, "bytes": 0, "items": 0}
    last = [0.0]

    def tick(force: bool = False) -> None:
        if emit is None:
            return
        moment = time.monotonic()
        if force or moment - last[0] >= PROGRESS_EVERY:
            last[0] = moment
            emit({"event": "progress", "stage": "crawling", **counters})

    def on_response(response: Any, request: Any, spider: Any) -> None:
        counters["requests"] += 1
        counters["bytes"] += len(response.body)
        tick()

    def on_item(item: Any, response: Any, spider: Any) -> None:
        counters["items"] += 1
        tick()

    crawler.signals.connect(on_response, signal=signals.response_received)
    crawler.signals.connect(on_item, signal=signals.item_scraped)
    process.crawl(crawler, context=context)
    process.start(install_signal_handlers=False)
    tick(force=True)

    spider = crawler.spider
    if not isinstance(spider, SentinellaSpider):
        raise RuntimeError("the spider did not start")
    pipeline = crawler.get_item_pipeline(CollectPipeline)
    records = list(pipeline.records) if pipeline else []
    report = dict(pipeline.report) if pipeline else {}
    stats = crawler.stats.get_stats() if crawler.stats else {}
    failure = spider.run_failure()
    if failure is None and stats.get("finish_reason") not in (None, "finished"):
        failure = f"crawl ended early: {stats.get('finish_reason')}"
    kinds = {
        kind: {
            "requests": int(stats.get(f"sentinella/{kind}/requests", 0)),
            "bytes": int(stats.get(f"sentinella/{kind}/bytes", 0)),
            "not_modified": int(stats.get(f"sentinella/{kind}/not_modified", 0)),
        }
        for kind in KINDS
    }
    return CrawlOutcome(
        records=records,
        errors=list(spider.errors),
        error_count=spider.errors.total,
        failure=failure,
        report=report,
        requests=int(stats.get("downloader/request_count", 0)),
        bytes=int(stats.get("downloader/response_bytes", 0)),
        unchanged_skipped=spider.unchanged_skipped,
        notes=dict(spider.notes),
        etag=spider.etag,
        last_modified=spider.last_modified,
        state=spider.final_state(),
        kinds=kinds,
        carried_ids=list(spider.carried_ids),
        not_understood=spider.not_understood,
        acts=list(spider.acts),
        act_call_sources=spider.act_call_sources,
    )


def run_job(job: dict[str, Any], emit: Emit) -> dict[str, Any]:
    """Crawl, ingest and record one run; returns the result line (always, even on errors)."""
    from storage.acts import apply_acts
    from storage.db import Database
    from storage.ingest import ingest, touch_seen
    from storage.sources import finish_run, get_source, save_source, shrink_settled

    started = time.monotonic()
    source: str = job["source"]
    run_id: int = job["run_id"]
    now = datetime.fromisoformat(job["now"])
    crawl = CrawlConfig.model_validate(job["crawl"])
    sources = SourcesConfig.model_validate(job["sources"])
    result: dict[str, Any] = {
        "event": "result",
        "source": source,
        "finished": False,
        "outcome": "failed",
        "reason": "",
        "notify": None,
        "seen": 0,
        "new": 0,
        "changed": 0,
        "unchanged": 0,
        "errors": 0,
        "requests": 0,
        "bytes": 0,
        "error_messages": [],
        "kinds": {},
    }
    db = Database(job["db_url"])
    try:
        previous = get_source(db, source)
        emit({"event": "progress", "stage": "crawling", "requests": 0, "bytes": 0, "items": 0})
        try:
            outcome = crawl_source(
                source,
                crawl=crawl,
                sources=sources,
                now=now,
                etag=previous.etag,
                last_modified=previous.last_modified,
                state=previous.state,
                emit=emit,
            )
        except Exception as exc:  # a crash of the crawl is a failed run, recorded below
            outcome = CrawlOutcome(
                records=[],
                errors=[f"crawl crashed: {type(exc).__name__}: {exc}"],
                error_count=1,
                failure=f"crawl crashed: {type(exc).__name__}: {exc}",
                report={},
                requests=0,
                bytes=0,
                unchanged_skipped=0,
                notes={},
                etag=None,
                last_modified=None,
                state={},
            )
            traceback.print_exc(file=sys.stderr)

        errors = list(outcome.errors)
        error_count = outcome.error_count
        below = outcome.report.get("below") or []
        ingested = False
        acted = None
        new = changed = unchanged = touched = 0
        crawl_outcome: Literal["ok", "failed"] = "failed" if outcome.failure else "ok"
        reason = outcome.failure or ""
        # The yield: every call the source listed, the ones carried over unchanged included.
        seen = len(outcome.records) + outcome.unchanged_skipped
        baseline = previous.last_good_yield or 0
        shrunk = outcome.failure is None and seen > 0 and seen * 2 < baseline
        new_baseline = shrunk and shrink_settled(
            db, source, seen=seen, runs=crawl.failure_threshold, current_run=run_id
        )
        # A run that cannot be trusted ingests nothing: every stored call stays as it was.
        if outcome.failure is None:
            if outcome.not_understood:
                reason = f"answer not understood: {outcome.not_understood}"
            elif below:
                reason = "validation below threshold: " + ", ".join(below)
            elif seen == 0:
                reason = "no calls found; nothing ingested"
            elif shrunk and not new_baseline:
                reason = f"{seen} calls, fewer than half of the last good run ({baseline}); nothing ingested"
        if outcome.failure is None and not reason:
            emit({"event": "progress", "stage": "ingesting", "items": len(outcome.records)})
            try:
                stored = ingest(db, outcome.records, now=now)
                touched = touch_seen(db, source, outcome.carried_ids, now=now)
                # After the ingest (an act may be about a call of this very run) and before the
                # state is saved: acts that fail are found again next run (each is applied once).
                acted = (
                    apply_acts(db, outcome.acts, now=now, call_sources=outcome.act_call_sources)
                    if outcome.acts
                    else None
                )
            except Exception as exc:  # the database refused the batch: nothing is half-stored
                crawl_outcome = "failed"
                reason = f"ingest failed: {type(exc).__name__}: {exc}"
                errors.append(reason)
                error_count += 1
            else:
                ingested = True
                new, changed, unchanged = stored.new, stored.changed, stored.unchanged
                errors.extend(stored.errors[:20])
                error_count += len(stored.errors)
                save_source(
                    db, source, etag=outcome.etag, last_modified=outcome.last_modified, state=outcome.state
                )

        # Calls ingest found unchanged plus the ones carried over without a record.
        unchanged += outcome.unchanged_skipped
        report = {
            **outcome.report,
            "reason": reason,
            "ingested": ingested,
            "unchanged_skipped": outcome.unchanged_skipped,
            "last_seen_moved": touched,
            "shrunk": shrunk,
            "not_understood": outcome.not_understood,
            "acts": _acts_summary(acted) if ingested else None,
            "kinds": outcome.kinds,
            "notes": outcome.notes,
            "errors": errors[:50],
        }
        if new_baseline and ingested:
            report["new_baseline"] = {"from": baseline, "to": seen}
        finished_at = now + timedelta(seconds=time.monotonic() - started)
        verdict = finish_run(
            db,
            run_id,
            now=finished_at,
            outcome=crawl_outcome,
            seen=seen,
            new=new,
            changed=changed,
            unchanged=unchanged,
            errors=error_count,
            requests=outcome.requests,
            bytes=outcome.bytes,
            report=report,
            failure_threshold=crawl.failure_threshold,
            min_field_share=crawl.min_field_share,
            new_baseline=new_baseline and ingested,
        )
        result.update(
            finished=True,
            outcome=verdict.outcome,
            reason=verdict.reason or reason,
            notify=verdict.notify,
            seen=seen,
            new=new,
            changed=changed,
            unchanged=unchanged,
            errors=error_count,
            requests=outcome.requests,
            bytes=outcome.bytes,
            error_messages=errors[:20],
            kinds=outcome.kinds,
        )
    except Exception as exc:  # the parent records the failure when "finished" is false
        result["reason"] = f"{type(exc).__name__}: {exc}"
        result["error_messages"] = [result["reason"]]
        result["errors"] = max(1, int(result["errors"]))
        traceback.print_exc(file=sys.stderr)
    finally:
        db.dispose()
    return result


def _acts_summary(acted: Any) -> dict[str, int] | None:
    if acted is None:
        return None
    return {
        "recorded": acted.recorded,
        "linked": acted.linked,
        "unlinked": acted.unlinked,
        "deadlines_moved": acted.deadlines_moved,
    }


def main() -> int:
    job = json.loads(sys.stdin.read())
    # The protocol owns the real stdout; anything else printed (a library, a stray print) goes to
    # stderr with Scrapy's log instead of corrupting the JSON lines.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def emit(event: dict[str, Any]) -> None:
        out.write(json.dumps(event, default=str) + "\n")
        out.flush()

    emit(run_job(job, emit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
