"""Scrapy base classes of Sentinella's spiders, one per access pattern, and the shared machinery.

How a source spider is written
==============================

1. One source = one spider = one module ``crawler/spiders/<source>.py`` whose class is the
   CamelCase of the file name and whose ``name`` is the file name, which is also the source's name
   in the database and its section in :class:`crawler.config.SourcesConfig` (``sedia.py`` →
   ``class Sedia`` → ``name = "sedia"`` → ``[sources.sedia]``). A test enforces the rule.
2. Subclass the base of the source's access pattern:

   * :class:`JsonApiSpider` — a JSON API walked page by page (SEDIA, the Socrata registry, Solr);
   * :class:`ListingDetailSpider` — an HTML (or JSON) listing whose entries lead to detail pages
     (Bandi e Servizi): the base fetches a detail page only when the listing shows the entry as
     new or changed;
   * :class:`FeedSpider` — RSS/Atom feeds fetched with conditional GET.

3. Give the class a structured docstring with the sections ``Domain`` (what the source is),
   ``Access`` (how it is reached: endpoints, parameters, paging, conditional requests),
   ``Caveats`` (what bites) and ``Settings`` (the config fields it reads). A test checks them.
4. Never write a URL literal in a spider: build every URL from ``self.config`` (the source's
   section of :class:`~crawler.config.SourcesConfig`), so a crawl can run against a replay server.
5. Parse with a **pure extractor** in ``crawler/extract/<source>.py``
   (``(body: bytes, url: str, fetched_at: datetime, ...) -> CallRecord | list[CallRecord]``,
   see :mod:`crawler.extract`); the spider only fetches and yields the extractor's records.
   Pass ``errors=self.errors`` so an item that cannot be read is reported and skipped, never
   losing the others; raise :class:`~crawler.extract.ExtractionError` when the whole body is
   unusable.
6. Build requests with :meth:`SentinellaSpider.request` and say what they are: ``kind="listing"``
   (a failure fails the run: we do not know what the source holds) or ``kind="detail"`` (a failure
   is one error; the other calls survive). Kinds are counted in the stats, which is how the
   benchmark proves that a no-change crawl fetches no detail.
7. Incremental crawling: for each listed call, ask :meth:`SentinellaSpider.unchanged` with a
   *fingerprint* of what the listing shows (checksum, status, deadline …). ``True`` means the
   stored call is current: count it and fetch nothing more. Otherwise fetch the detail and call
   :meth:`SentinellaSpider.remember` once the record is built. Validators of a whole resource go in
   :attr:`SentinellaSpider.etag` / :attr:`SentinellaSpider.last_modified` (use
   :meth:`SentinellaSpider.conditional_request`); any other memory goes in
   :attr:`SentinellaSpider.state` (a JSON dict kept between runs). The state is saved only when the
   run's records were ingested, so a failed run is simply repeated in full next time. When a 304
   answers for a whole resource, :meth:`SentinellaSpider.carry` the ids the previous run read
   there (keep them, or the fingerprints, in the state). The run's *yield* is the records yielded
   plus the ids carried: a run that "found nothing" or less than half of the last good one is not
   ingested and judged degraded, so a normal no-change crawl must carry every call it still lists.
   The carried ids also get their ``last_seen`` moved (:func:`storage.ingest.touch_seen`).
8. ``required_fields`` names the fields the per-field validation report must find in at least
   ``crawl.min_field_share`` of the items (City Scrapers style), the carried calls counting as
   having them (they had them when stored) and only once there are ``crawl.min_validation_items``
   calls; otherwise the run is degraded and its records are not ingested. A record without a
   title or an http(s) URL is dropped with an error instead (:class:`CollectPipeline`).
9. A source never recorded (its extractor's assumptions written in one place): when a body
   breaks one, the extractor raises :class:`~crawler.extract.ShapeError` and the spider calls
   :meth:`SentinellaSpider.degrade` — the run is degraded, nothing is ingested, the body is kept
   in the run's report. Listing pages whose entries are kept in the state can be asked
   conditionally with :meth:`SentinellaSpider.listing_request` (a 304 gives the kept entries
   back). Acts about stored calls (a decree, a new PDF on a call's page) go in
   :attr:`SentinellaSpider.acts`; they are applied after the run's records are ingested
   (:func:`storage.acts.apply_acts`), linked only to calls of ``act_call_sources``.

A minimal spider::

    class Example(JsonApiSpider):
        \"\"\"
        Domain
          ...
        Access
          ...
        Caveats
          ...
        Settings
          ``sources.example.base_url``
        \"\"\"

        name = "example"

        def first_requests(self):
            yield self.request(self.config.base_url + "/api?page=1", self.parse_json, kind="listing")

        def parse_page(self, response, data, **kwargs):  # data: the decoded JSON
            yield from extract_example(response.body, response.url, self.now, errors=self.errors)
            if data.get("next"):
                yield self.request(self.config.base_url + data["next"], self.parse_json, kind="listing")

Known limits: spiders run inside a crawl process started by :mod:`crawler.worker`; they are not
meant to be run with ``scrapy crawl``. The retry backoff sleeps on the asyncio event loop, so the
asyncio Twisted reactor (Scrapy's default) must be the installed one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

import scrapy
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.http import Request, Response
from scrapy.robotstxt import RobotParser
from scrapy.settings import BaseSettings, default_settings
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from crawler.config import CrawlConfig, FeedConfig, SourceConfig
from crawler.extract import ExtractionError
from storage.acts import Act
from storage.records import CallRecord, CallStatus

logger = logging.getLogger(__name__)

#: Request kinds counted in the stats (``sentinella/<kind>/requests`` and ``.../bytes``).
KINDS = ("listing", "detail", "feed")

#: Errors kept in a run's report; the count is always exact.
MAX_ERRORS_KEPT = 50
#: Bodies not understood kept in a run's report (see :meth:`SentinellaSpider.degrade`), and their size.
MAX_KEPT_BODIES = 3
MAX_KEPT_BODY = 20_000


class ErrorList(list[str]):
    """A run's error messages: every append is counted, the first :data:`MAX_ERRORS_KEPT` are kept.

    Extractors append to it (their ``errors`` argument) exactly as to a plain list.
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def append(self, message: str) -> None:
        self.total += 1
        if len(self) < MAX_ERRORS_KEPT:
            super().append(str(message)[:500])
        logger.warning("%s", message)


@dataclass(slots=True)
class SpiderContext:
    """Everything a spider is given: its config, the clock reading and the state of the last run.

    It is built by the crawl process from the database and passed to the spider's constructor;
    it is plain data (picklable), so tests build it by hand.
    """

    source_config: SourceConfig
    crawl: CrawlConfig
    now: datetime
    etag: str | None = None
    last_modified: str | None = None
    state: dict[str, Any] = field(default_factory=dict)


def crawl_settings(crawl: CrawlConfig) -> dict[str, Any]:
    """The Scrapy settings of every crawl. Each value that differs from Scrapy's default says why."""
    return {
        # Politeness: the portals publish robots.txt and we honour it (SEDIA's API host has none: 404
        # means "allowed").
        "ROBOTSTXT_OBEY": crawl.obey_robots,
        # Site owners must be able to tell who we are and how to reach us.
        "USER_AGENT": crawl.full_user_agent,
        # Small public-sector servers: at most two requests in flight per host (issue rule).
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.concurrency,
        "CONCURRENT_REQUESTS": crawl.total_concurrency,
        # A floor between requests to one host; AutoThrottle raises it when the server slows down.
        "DOWNLOAD_DELAY": crawl.download_delay,
        "AUTOTHROTTLE_ENABLED": True,
        # Start at the floor, not Scrapy's 5 s: our crawls are a handful of requests per host.
        "AUTOTHROTTLE_START_DELAY": max(crawl.download_delay, 0.1),
        "AUTOTHROTTLE_MAX_DELAY": crawl.autothrottle_max_delay,
        # Aim at one request in flight per host on average: polite and still fast enough.
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        # A stuck server must not hold a run for Scrapy's 3 minutes per attempt (incentivi.gov.it's
        # section raises it for that slow site).
        "DOWNLOAD_TIMEOUT": crawl.download_timeout,
        # A call page is tens of KB; anything over the cap is broken or hostile: abandon it (and record
        # the error) instead of Scrapy's 1 GB default.
        "DOWNLOAD_MAXSIZE": crawl.max_response_bytes,
        "DOWNLOAD_WARNSIZE": crawl.max_response_bytes // 2,
        # Our backoff retry replaces Scrapy's immediate one; 429 added because rate limits are
        # transient, 408/5xx/timeouts as usual.
        "RETRY_ENABLED": True,
        "RETRY_TIMES": crawl.max_retries,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        # Our own keys, read by BackoffRetryMiddleware: the pause before the first retry, doubled
        # at each further retry, and its ceiling.
        "SENTINELLA_RETRY_BACKOFF": crawl.retry_backoff,
        "SENTINELLA_RETRY_BACKOFF_MAX": crawl.retry_backoff_max,
        "DOWNLOADER_MIDDLEWARES": {
            # Replaced by the subclass that gives the parser to every request waiting for robots.txt,
            # at the same position.
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
            "crawler.base.ObeyRobotsTxtMiddleware": 100,
            # Replaced by the subclass with backoff, at the same position.
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "crawler.base.BackoffRetryMiddleware": 550,
            # At 950 its process_response runs first after the download, so it counts bodies as they
            # arrived (before decompression at 590): the figure the benchmark compares.
            "crawler.base.RequestKindStatsMiddleware": 950,
        },
        "SPIDER_MIDDLEWARES": {
            # Turns an exception in a callback into a recorded error instead of a log line only.
            "crawler.base.ErrorCaptureMiddleware": 50,
        },
        # Collects the records for ingest and computes the per-field validation report.
        "ITEM_PIPELINES": {"crawler.base.CollectPipeline": 100},
        # Sessions are not needed by any source and cookies would make runs depend on each other;
        # the cookies middleware is not even loaded (it imports tldextract and requests).
        "COOKIES_ENABLED": False,
        "DOWNLOADER_MIDDLEWARES_BASE": {
            path: order
            for path, order in default_settings.DOWNLOADER_MIDDLEWARES_BASE.items()
            if not path.endswith(".CookiesMiddleware")
        },
        # No interactive console in an unattended child process (and no port to bind).
        "TELNETCONSOLE_ENABLED": False,
        # Nor Scrapy's remote control (2.19 and later: an HTTP server that runs code sent to it),
        # and not even loaded: Scrapy imports every listed extension, even one set to None, and
        # this one would bring aiohttp (about 10 MB) to stay idle.
        "REMOTE_CONTROL_ENABLED": False,
        "EXTENSIONS_BASE": {
            path: order
            for path, order in default_settings.EXTENSIONS_BASE.items()
            if not path.endswith(".RemoteControl")
        },
        # The crawl process's stderr is captured by the parent; keep it to warnings and errors.
        "LOG_LEVEL": crawl.log_level,
        # The run record and the summary carry the figures; no stats dump in the log.
        "STATS_DUMP": False,
    }


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retry policy with an exponential pause before each retry.

    Scrapy retries at once; a server answering 503 because it is overloaded deserves a pause.
    The pause is ``backoff * 2**(n-1)`` seconds before the n-th retry, capped.
    """

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.backoff = settings.getfloat("SENTINELLA_RETRY_BACKOFF", 2.0)
        self.backoff_max = settings.getfloat("SENTINELLA_RETRY_BACKOFF_MAX", 60.0)

    async def _pause(self, result: Any) -> Any:
        if isinstance(result, Request):
            attempt = int(result.meta.get("retry_times", 1))
            delay = min(self.backoff * 2 ** (attempt - 1), self.backoff_max)
            if delay > 0:
                await asyncio.sleep(delay)
        return result

    async def process_response(self, request: Request, response: Response) -> Request | Response:  # type: ignore[override]
        return await self._pause(super().process_response(request, response))

    async def process_exception(self, request: Request, exception: Exception) -> Request | Response | None:  # type: ignore[override]
        return await self._pause(super().process_exception(request, exception))


class ObeyRobotsTxtMiddleware(RobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, with every request that waits for a robots.txt obeying it.

    While a host's robots.txt is being downloaded, Scrapy (2.19) makes the other requests to that
    host await the one shared Deferred through ``Deferred.asFuture``, whose callback returns None:
    the first waiter gets the parser, every later one gets None, which means "no robots.txt,
    everything allowed", so a disallowed URL goes out (three feeds of one host started together
    are enough). Here each waiter gets a Deferred of its own, fed by a callback that passes the
    result on, so the shared one keeps it.
    """

    async def robot_parser(self, request: Request) -> RobotParser | None:
        pending = self._parsers.get(urlparse_cached(request).netloc)
        if not isinstance(pending, Deferred):
            return await super().robot_parser(request)
        own: Deferred[RobotParser | None] = Deferred()

        def relay(result: Any) -> Any:
            if isinstance(result, Failure):
                own.errback(result)
            else:
                own.callback(result)
            return result

        pending.addBoth(relay)
        return await maybe_deferred_to_future(own)


class RequestKindStatsMiddleware:
    """Counts requests, body bytes and 304 answers per request kind (listing / detail / feed)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RequestKindStatsMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        kind = request.meta.get("kind")
        if kind and self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"sentinella/{kind}/requests")
            self.crawler.stats.inc_value(f"sentinella/{kind}/bytes", len(response.body))
            if response.status == 304:
                # A conditional request answered "not modified": asked, but nothing fetched.
                self.crawler.stats.inc_value(f"sentinella/{kind}/not_modified")
        return response


class ErrorCaptureMiddleware:
    """An exception raised while parsing a response becomes a recorded error on the spider.

    A listing that cannot be parsed fails the run (we do not know what the source holds); a detail
    page that cannot be parsed costs that call only.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ErrorCaptureMiddleware:
        return cls(crawler)

    def process_spider_exception(self, response: Response, exception: Exception) -> Iterable[Any]:
        spider = self.crawler.spider
        if not isinstance(spider, SentinellaSpider):
            return []
        kind = response.meta.get("kind", "listing")
        spider.kind_error(kind, f"{kind} {response.url}: {type(exception).__name__}: {exception}")
        return []


def header(response: Response, name: str) -> str | None:
    """A response header's (first) value as text, or None when absent."""
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def failure_reason(failure: Failure) -> str:
    """Why a request failed, for the run's errors: the HTTP status, else the exception."""
    value = failure.value
    response = getattr(value, "response", None)
    return f"HTTP {response.status}" if response is not None else f"{type(value).__name__}: {value}"


# --- validation (City Scrapers style) ------------------------------------------------------------

#: Field checks of the validation report: name → "is it there" for one record.
FIELD_CHECKS: dict[str, Callable[[CallRecord], bool]] = {
    "title": lambda r: bool(r.title.strip()),
    "url": lambda r: r.url.startswith(("http://", "https://")),
    "status": lambda r: r.status != CallStatus.UNKNOWN,
    "deadline": lambda r: r.closes is not None or r.sportello,
    "opens": lambda r: r.opens is not None,
    "published": lambda r: r.published is not None,
    "summary": lambda r: bool(r.summary.strip() or r.description.strip()),
    "budget": lambda r: r.budget_total is not None or r.contribution_max is not None,
    "beneficiaries": lambda r: bool(r.beneficiaries),
    "programme": lambda r: bool(r.programme or r.funding_source),
    "granting_body": lambda r: bool(r.granting_body),
}


#: Fields every single record must have; a record without one is dropped with an error.
ITEM_REQUIRED: tuple[str, ...] = ("title", "url")


def validation_report(
    records: Sequence[CallRecord],
    required: Sequence[str],
    *,
    min_share: float,
    carried: int = 0,
    min_items: int = 1,
) -> dict[str, Any]:
    """Share of calls having each field, and which required fields fall below ``min_share``.

    The calls are the ``records`` parsed this run plus the ``carried`` ones an incremental crawl
    did not fetch again because they did not change: those count as having every field (they
    were stored after passing this very check), so one odd changed call among many unchanged
    ones cannot sink every later run. Below ``min_items`` calls nothing is judged: on a handful
    of calls one item would decide. ``fresh_fields`` holds the shares over ``records`` alone.

    ``field_shares`` holds the *required* fields only, and only when judged: it is what
    ``storage.sources.finish_run`` judges. ``fields`` holds every field, for the record. A run
    that parsed no record and carried none has no shares to judge: the yield rule handles it.
    """
    fresh = len(records)
    total = fresh + max(carried, 0)
    shares: dict[str, float] = {}
    fresh_shares: dict[str, float] = {}
    for name, check in FIELD_CHECKS.items():
        passing = sum(1 for r in records if check(r))
        if total:
            shares[name] = round((passing + total - fresh) / total, 4)
        if fresh:
            fresh_shares[name] = round(passing / fresh, 4)
    judged = total > 0 and total >= min_items
    required_shares = {name: shares.get(name, 0.0) for name in required} if judged else {}
    below = [name for name, share in required_shares.items() if share < min_share]
    return {
        "items": total,
        "fresh_items": fresh,
        "carried_items": total - fresh,
        "judged": judged,
        "field_shares": required_shares,
        "fields": shares,
        "fresh_fields": fresh_shares,
        "min_share": min_share,
        "min_items": min_items,
        "below": below,
    }


class CollectPipeline:
    """Collects the records a spider yields (one per ``source_id``) for the crawl process to ingest.

    Anything that is not a :class:`CallRecord` is refused with an error; so is a record without a
    title or without an http(s) URL (a call nobody could read or open: one such item must not
    sink the run's validation); a second record with the same ``source_id`` is dropped (the
    first wins) with an error, since ingesting both would make the call flap between them.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.records: list[CallRecord] = []
        self._ids: set[str] = set()
        self.report: dict[str, Any] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CollectPipeline:
        return cls(crawler)

    def _spider(self) -> SentinellaSpider | None:
        spider = self.crawler.spider
        return spider if isinstance(spider, SentinellaSpider) else None

    def process_item(self, item: Any) -> Any:
        spider = self._spider()
        if not isinstance(item, CallRecord):
            if spider:
                spider.record_error(f"spider yielded a {type(item).__name__}, not a CallRecord")
            return item
        missing = [name for name in ITEM_REQUIRED if not FIELD_CHECKS[name](item)]
        if missing:
            if spider:
                # Not stored, so not fetched as far as the next run is concerned.
                spider.forget(item.source_id)
                spider.record_error(
                    f"call {item.source_id!r} dropped: no {' and no '.join(missing)} ({item.url[:200]!r})"
                )
            return item
        if item.source_id in self._ids:
            if spider:
                spider.record_error(f"duplicate source_id {item.source_id!r} dropped")
            return item
        self._ids.add(item.source_id)
        self.records.append(item)
        return item

    def close_spider(self) -> None:
        spider = self._spider()
        if spider is None:
            return
        self.report = validation_report(
            self.records,
            spider.required_fields,
            min_share=spider.crawl_config.min_field_share,
            carried=spider.unchanged_skipped,
            min_items=spider.crawl_config.min_validation_items,
        )


# --- spiders -------------------------------------------------------------------------------------


class SentinellaSpider(scrapy.Spider):
    """Common ground of every source spider (see the module docstring for how to write one)."""

    #: Fields the validation report requires (see :data:`FIELD_CHECKS` for the names).
    required_fields: ClassVar[tuple[str, ...]] = ("title", "url", "status", "deadline")

    def __init__(self, *, context: SpiderContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context = context
        self.config: Any = context.source_config
        self.crawl_config = context.crawl
        self.now = context.now
        #: Validators of the source's main resource, saved in the source row when the run is ingested.
        self.etag: str | None = context.etag
        self.last_modified: str | None = context.last_modified
        #: The previous run's memory (read-only by convention) and the one this run writes.
        self.previous_state: Mapping[str, Any] = context.state
        self.state: dict[str, Any] = {k: v for k, v in context.state.items() if k != "fingerprints"}
        self._fingerprints: dict[str, Any] = {}
        #: Errors of this run (pass it as an extractor's ``errors``); ``errors.total`` counts them all.
        self.errors = ErrorList()
        #: Set when the run cannot be trusted (a listing failed, the API answered nonsense).
        self.fatal: str | None = None
        #: Calls the source still lists but that were not refetched because they did not change:
        #: their count (part of the run's yield) and their ids (their ``last_seen`` is moved).
        self.unchanged_skipped = 0
        self.carried_ids: list[str] = []
        #: Source-specific figures for the run's report (rows listed, rows dropped as stale …).
        self.notes: dict[str, Any] = {}
        #: Set when the source answered in a shape the parser does not know (see :meth:`degrade`).
        self.not_understood: str | None = None
        #: Acts about stored calls found this run (a decree, a new PDF on a call's page), applied
        #: after the run's records are ingested (:func:`storage.acts.apply_acts`).
        self.acts: list[Act] = []
        #: Sources whose calls this source's acts may be linked to.
        self.act_call_sources: tuple[str, ...] = ()

    # errors

    def record_error(self, message: str) -> None:
        self.errors.append(f"{self.name}: {message}")

    def fail(self, message: str) -> None:
        """Record an error that makes the whole run failed (nothing is ingested)."""
        self.record_error(message)
        if self.fatal is None:
            self.fatal = message[:500]

    def degrade(self, message: str, response: Response) -> None:
        """The answer's shape is not the one the parser assumes: the run is degraded (nothing
        ingested, no wrong change) and the body is kept in the run's report for inspection."""
        self.record_error(f"answer not understood: {message}")
        if self.not_understood is None:
            self.not_understood = message[:500]
        kept = self.notes.setdefault("kept_bodies", [])
        if len(kept) < MAX_KEPT_BODIES:
            kept.append(
                {
                    "url": response.url[:500],
                    "status": response.status,
                    "bytes": len(response.body),
                    "body": response.body[:MAX_KEPT_BODY].decode("utf-8", "replace"),
                }
            )

    def kind_error(self, kind: str, message: str) -> None:
        """Record the error of a request of ``kind``: a detail costs that call only, any other
        kind fails the run (we do not know what the source holds)."""
        if kind == "detail":
            self.record_error(message)
        else:
            self.fail(message)

    def on_request_error(self, failure: Failure) -> None:
        request: Request | None = getattr(failure, "request", None)
        kind = request.meta.get("kind", "listing") if request is not None else "listing"
        url = request.url if request is not None else "?"
        self.kind_error(kind, f"{kind} {url}: {failure_reason(failure)}")

    def run_failure(self) -> str | None:
        """Why this run must count as failed (nothing ingested), or None. Called after the crawl."""
        return self.fatal

    # requests

    def request(
        self,
        url: str,
        callback: Callable[..., Any],
        *,
        kind: str = "listing",
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        meta: Mapping[str, Any] | None = None,
        cb_kwargs: Mapping[str, Any] | None = None,
        dont_filter: bool = True,
    ) -> Request:
        """A request with the error handling, kind accounting and time limits of every source."""
        if kind not in KINDS:
            raise ValueError(f"unknown request kind {kind!r}")
        full_meta = {"kind": kind, **(meta or {})}
        return Request(
            url,
            callback=callback,
            errback=self.on_request_error,
            method=method,
            headers=dict(headers or {}),
            body=body,
            meta=full_meta,
            cb_kwargs=dict(cb_kwargs or {}),
            # Paged APIs reuse URLs with different bodies and re-crawls repeat URLs by design.
            dont_filter=dont_filter,
        )

    def conditional_request(
        self,
        url: str,
        callback: Callable[..., Any],
        *,
        etag: str | None,
        last_modified: str | None,
        kind: str = "listing",
        **kwargs: Any,
    ) -> Request:
        """A GET with ``If-None-Match``/``If-Modified-Since``; the callback also receives 304s."""
        headers = dict(kwargs.pop("headers", None) or {})
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        meta = dict(kwargs.pop("meta", None) or {})
        # 304 is how "no change" arrives; without this Scrapy would drop it as an HTTP error.
        meta["handle_httpstatus_list"] = [304]
        return self.request(url, callback, kind=kind, headers=headers, meta=meta, **kwargs)

    def listing_request(self, url: str, callback: Callable[..., Any], **kwargs: Any) -> Request:
        """A listing page asked with the validators of its last read, when that read's entries
        were kept (:meth:`keep_listing`): a 304 then gives them back (:meth:`kept_listing`).
        A server that sends no validators gets plain GETs."""
        known = self._kept_listing(url)
        return self.conditional_request(
            url,
            callback,
            etag=known.get("etag") if known else None,
            last_modified=known.get("last_modified") if known else None,
            kind="listing",
            **kwargs,
        )

    def _kept_listing(self, url: str) -> dict[str, Any] | None:
        known = (self.previous_state.get("listings") or {}).get(url)
        return known if isinstance(known, dict) and isinstance(known.get("entries"), list) else None

    def keep_listing(self, response: Response, entries: list[Any], **extra: Any) -> None:
        """Keep what a listing page gave (JSON-safe ``entries``) with its validators, if any."""
        etag, last_modified = self.validators(response)
        if etag or last_modified:
            listings = self.state.setdefault("listings", {})
            listings[response.url] = {
                "etag": etag,
                "last_modified": last_modified,
                "entries": entries,
                **extra,
            }

    def kept_listing(self, response: Response) -> dict[str, Any] | None:
        """For a 304 answer: what the page gave last time (kept again for the next run)."""
        known = self._kept_listing(response.url)
        if known is None:
            self.fail(f"listing {response.url}: 304 to a request that was not conditional")
            return None
        self.state.setdefault("listings", {})[response.url] = known
        return known

    @staticmethod
    def validators(response: Response) -> tuple[str | None, str | None]:
        """The ETag and Last-Modified a response carries (None when absent)."""
        return header(response, "ETag"), header(response, "Last-Modified")

    # incremental crawling

    def unchanged(self, key: str, fingerprint: str, *, refresh_after: timedelta | None = None) -> bool:
        """True when ``key`` was fully fetched before with the same fingerprint (and not too long ago).

        An unchanged key is carried into this run's state and counted in ``unchanged_skipped``.
        """
        old = (self.previous_state.get("fingerprints") or {}).get(key)
        if not isinstance(old, dict) or old.get("fp") != fingerprint:
            return False
        if refresh_after is not None:
            try:
                fetched = datetime.fromisoformat(str(old.get("at")))
            except ValueError:
                return False
            if fetched.tzinfo is None or self.now - fetched >= refresh_after:
                return False
        self._fingerprints[key] = old
        self.carry(key)
        return True

    def forget(self, key: str) -> None:
        """Undo :meth:`remember`: the next run fetches ``key`` again (its record was refused)."""
        self._fingerprints.pop(key, None)

    def carry(self, key: str) -> None:
        """Count ``key`` as listed by the source and current in storage, without a record this run."""
        self.unchanged_skipped += 1
        self.carried_ids.append(key)

    def remember(self, key: str, fingerprint: str) -> None:
        """Note that ``key`` was fully fetched now with this fingerprint."""
        self._fingerprints[key] = {"fp": fingerprint, "at": self.now.isoformat()}

    def final_state(self) -> dict[str, Any]:
        """The state to save: this run's memory plus the fingerprints of the keys listed this run."""
        out = dict(self.state)
        if self._fingerprints or "fingerprints" in self.previous_state:
            out["fingerprints"] = dict(self._fingerprints)
        return out

    # helpers for subclasses

    def decode_json(self, response: Response) -> Any:
        """The JSON body, or raise ExtractionError naming the URL (recorded by ErrorCaptureMiddleware)."""
        try:
            return json.loads(response.body)
        except ValueError as exc:
            raise ExtractionError(f"not JSON ({exc}); {len(response.body)} bytes") from exc

    async def start(self) -> AsyncIterator[Any]:
        for request in self.first_requests():
            yield request

    def first_requests(self) -> Iterator[Request]:
        raise NotImplementedError

    def parse(self, response: Response, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must pass callbacks explicitly")


class JsonApiSpider(SentinellaSpider):
    """A JSON API walked page by page.

    Subclasses yield the first page's request from :meth:`first_requests` with
    ``callback=self.parse_json`` and implement :meth:`parse_page`, which receives the decoded JSON
    and yields records and the next page's request (or nothing, to stop).
    """

    def parse_json(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        data = self.decode_json(response)
        yield from self.parse_page(response, data, **kwargs)

    def parse_page(self, response: Response, data: Any, **kwargs: Any) -> Iterator[Any]:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class ListingEntry:
    """One call as a listing shows it.

    ``key`` is the call's source id; ``fingerprint`` is what the listing shows that would change
    when the call changes (status, deadline, title…); ``detail_url`` is where the full call is;
    ``data`` is anything the detail parser wants from the listing.
    """

    key: str
    fingerprint: str
    detail_url: str
    data: Mapping[str, Any] = field(default_factory=dict)


class ListingDetailSpider(SentinellaSpider):
    """A listing (HTML or JSON) whose entries lead to detail pages.

    Subclasses implement :meth:`first_requests` (listing pages, ``callback=self.parse_listing_page``),
    :meth:`parse_listing` (yield :class:`ListingEntry` objects and requests for further listing
    pages) and :meth:`parse_detail` (one record or None from a detail page). The base fetches the
    detail only for entries new or changed since the last ingested run.
    """

    def detail_refresh(self) -> timedelta | None:
        """Refetch an unchanged entry's detail once it is this old (None = never, the default:
        a source whose pages change behind its listing says so with a setting of its own)."""
        return None

    def parse_listing_page(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        for obj in self.parse_listing(response, **kwargs):
            if isinstance(obj, ListingEntry):
                if self.unchanged(obj.key, obj.fingerprint, refresh_after=self.detail_refresh()):
                    continue
                yield self.detail_request(obj)
            else:
                yield obj

    def detail_request(self, entry: ListingEntry) -> Request:
        return self.request(entry.detail_url, self._parse_detail, kind="detail", cb_kwargs={"entry": entry})

    def _parse_detail(self, response: Response, entry: ListingEntry) -> Iterator[Any]:
        record = self.parse_detail(response, entry)
        if record is not None:
            self.remember(entry.key, entry.fingerprint)
            yield record

    def parse_listing(self, response: Response, **kwargs: Any) -> Iterable[Any]:
        raise NotImplementedError

    def parse_detail(self, response: Response, entry: ListingEntry) -> CallRecord | None:
        raise NotImplementedError


class FeedSpider(SentinellaSpider):
    """RSS/Atom feeds, each fetched with its own ETag/Last-Modified (kept in ``state["feeds"]``).

    A 304 costs the request only; its entries are carried over unchanged (the ids of the last
    good read, kept in the state; a state saved before ids were kept gives their count only).
    Subclasses implement :meth:`parse_feed` (records from a 200 body) and list the feeds in
    :meth:`feeds`.
    """

    required_fields: ClassVar[tuple[str, ...]] = ("title", "url")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.failed_feeds: list[str] = []

    def feeds(self) -> Sequence[FeedConfig]:
        raise NotImplementedError

    def first_requests(self) -> Iterator[Request]:
        known: Mapping[str, Any] = self.previous_state.get("feeds") or {}
        self.state["feeds"] = {}
        for feed in self.feeds():
            old = known.get(feed.name) or {}
            same_url = old.get("url") == feed.url
            yield self.conditional_request(
                feed.url,
                self._parse_feed_response,
                etag=old.get("etag") if same_url else None,
                last_modified=old.get("last_modified") if same_url else None,
                kind="feed",
                cb_kwargs={"feed": feed},
            )

    def _parse_feed_response(self, response: Response, feed: FeedConfig) -> Iterator[Any]:
        known: Mapping[str, Any] = self.previous_state.get("feeds") or {}
        old = dict(known.get(feed.name) or {})
        if response.status == 304:
            ids = old.get("ids")
            if isinstance(ids, list):
                for key in ids:
                    self.carry(str(key))
            else:
                self.unchanged_skipped += int(old.get("entries", 0))
            self.state["feeds"][feed.name] = old
            return
        try:
            records = list(self.parse_feed(response, feed))
        except ExtractionError as exc:
            # Keep the last good validators: the next run asks again instead of trusting this body.
            self._feed_failed(feed, str(exc))
            return
        etag, last_modified = self.validators(response)
        self.state["feeds"][feed.name] = {
            "url": feed.url,
            "etag": etag,
            "last_modified": last_modified,
            "entries": len(records),
            "ids": [r.source_id for r in records],
        }
        yield from records

    def _feed_failed(self, feed: FeedConfig, reason: str) -> None:
        old = (self.previous_state.get("feeds") or {}).get(feed.name)
        if old:
            self.state.setdefault("feeds", {})[feed.name] = old
        self.failed_feeds.append(feed.name)
        self.record_error(f"feed {feed.name} {feed.url}: {reason}")

    def run_failure(self) -> str | None:
        failure = super().run_failure()
        feeds = list(self.feeds())
        if failure is None and feeds and len(set(self.failed_feeds)) >= len(feeds):
            return f"every feed failed ({len(feeds)})"
        return failure

    def parse_feed(self, response: Response, feed: FeedConfig) -> Iterable[CallRecord]:
        raise NotImplementedError

    def on_request_error(self, failure: Failure) -> None:
        # One feed down must not fail the others.
        request: Request | None = getattr(failure, "request", None)
        feed = request.cb_kwargs.get("feed") if request is not None else None
        if isinstance(feed, FeedConfig):
            self._feed_failed(feed, failure_reason(failure))
            return
        super().on_request_error(failure)
