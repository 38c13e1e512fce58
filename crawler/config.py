"""Typed configuration of the crawler: politeness and health policy, and one section per source.

The models are plain pydantic v2 objects with defaults that crawl the real sources with no
configuration file at all; ``scheduler/settings.py`` nests them (``[crawl]`` and
``[sources.<name>]`` in sentinella.toml) and is the only code that reads files or the environment.

Every URL a spider requests is built from a base URL held here, never from a literal in the
spider, so a whole crawl can be pointed at a local replay server (the tests and the benchmark do
exactly that). The defaults are the real endpoints documented in ``shared/SOURCES.md``.

``schedule`` is either a cron expression of five fields (``"0 */6 * * *"``) or an interval such as
``"90m"``, ``"6h"``, ``"1d"``; the scheduler turns it into a trigger, the crawler only validates
its shape.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

_INTERVAL = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z?]+$")

#: Names of the sources, in the order a crawl of "all" runs them.
#: ``burl`` comes last: its acts are linked to the calls the others stored.
SOURCE_NAMES: tuple[str, ...] = (
    "lombardia",
    "sedia",
    "incentivi",
    "feeds",
    "unioncamere",
    "openinnovation",
    "burl",
)


def validate_schedule(value: str) -> str:
    """Accept ``"6h"``-style intervals and five-field cron strings; raise ValueError otherwise."""
    text = value.strip()
    if _INTERVAL.match(text):
        return text
    parts = text.split()
    if len(parts) == 5 and all(_CRON_FIELD.match(p) for p in parts):
        return text
    raise ValueError(f"schedule {value!r} is neither an interval like '6h' nor a 5-field cron string")


def interval_seconds(schedule: str) -> int | None:
    """The interval in seconds of an interval schedule (``"6h"`` → 21600), None for cron strings."""
    match = _INTERVAL.match(schedule)
    if not match:
        return None
    number, unit = int(match.group(1)), match.group(2)
    return number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


HttpUrl = Annotated[str, Field(pattern=r"^https?://[^\s]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CrawlConfig(_Model):
    """Politeness, limits and health policy shared by every source."""

    #: Product token of the User-Agent; the contact URL is appended (``Sentinella/0.1 (+URL)``).
    user_agent: str = "Sentinella/0.1"
    #: A page saying who runs the crawler and how to reach them; sent in every User-Agent.
    contact_url: HttpUrl = "https://github.com/sentinella-bandi/sentinella"
    #: Requests in flight per host. The issue caps it at 2: these are small public-sector servers.
    concurrency: int = Field(default=2, ge=1, le=2)
    #: Requests in flight overall (several hosts can be crawled by the feeds source at once).
    total_concurrency: int = Field(default=8, ge=1, le=32)
    #: Minimum pause between two requests to the same host, in seconds (AutoThrottle adapts above).
    download_delay: float = Field(default=0.5, ge=0)
    #: AutoThrottle's ceiling for the adaptive delay, in seconds.
    autothrottle_max_delay: float = Field(default=30.0, gt=0)
    #: Whole-response timeout in seconds. incentivi.gov.it needs >= 30 s from datacenter IPs.
    download_timeout: float = Field(default=60.0, gt=0)
    #: Retries of a request after a 5xx, 408, 429 or a network error/timeout.
    max_retries: int = Field(default=3, ge=0, le=10)
    #: First retry waits this many seconds, each further retry twice as long (capped).
    retry_backoff: float = Field(default=2.0, ge=0)
    retry_backoff_max: float = Field(default=60.0, ge=0)
    #: A response larger than this is abandoned and recorded as an error (Scrapy's default is 1 GB).
    max_response_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    #: Obey robots.txt. Only a test against a server without one would turn it off.
    obey_robots: bool = True
    #: Kill a source's crawl process after this many seconds; the run is recorded as failed.
    run_timeout: float = Field(default=1800.0, gt=0)
    #: Consecutive bad runs before admins are told (once), and told again on recovery.
    #: Also how a source that really shrank is let back in: a run yielding less than half of the
    #: last good one is not ingested (a broken listing looks the same), but after this many such
    #: runs in a row whose yields agree within 10 %, the next one that agrees is ingested and its
    #: yield becomes the new baseline (see ``crawler.worker`` and ``storage.sources``).
    failure_threshold: int = Field(default=3, ge=1)
    #: A required field (deadline, status …) present in fewer items than this share makes the run
    #: degraded, and its records are not ingested (a broken parser must not rewrite good stored
    #: calls). Calls carried over unchanged count as having it: they had it when stored.
    min_field_share: float = Field(default=0.5, ge=0, le=1)
    #: The field shares are judged only over at least this many calls (fresh and carried over):
    #: on a handful of calls one odd item would decide the run.
    min_validation_items: int = Field(default=20, ge=1)
    #: Directory of the per-source lock files; None = a directory in the system temp dir.
    lock_dir: str | None = None
    #: Scrapy log level inside the crawl process (its log goes to the process's stderr).
    log_level: str = "WARNING"

    @property
    def full_user_agent(self) -> str:
        return f"{self.user_agent} (+{self.contact_url})"


class SourceConfig(_Model):
    """What every source section has."""

    enabled: bool = True
    schedule: str = "6h"

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        return validate_schedule(value)


class LombardiaConfig(SourceConfig):
    """Regione Lombardia: the open-data registry (discovery) and Bandi e Servizi (detail pages)."""

    #: Socrata SODA endpoint of dataset bukx-h2uy "Anagrafica dei bandi regionali".
    dataset_url: HttpUrl = "https://www.dati.lombardia.it/resource/bukx-h2uy.json"
    #: Root of the Bandi e Servizi portal; listing, search (POST /ricerca) and detail paths hang off it.
    portal_url: HttpUrl = "https://www.bandi.regione.lombardia.it"
    #: SoQL ``$limit`` per registry page (a page of exactly this many rows means "ask for more").
    page_size: int = Field(default=1000, ge=1, le=50_000)
    #: Also walk the portal's own listing (status Aperto / In apertura): the registry can lag it.
    use_portal_listing: bool = True
    #: Ceiling on listing pages walked on the portal (about 6 cards a page).
    max_listing_pages: int = Field(default=60, ge=1)
    #: Refetch the detail page of a call whose registry row and listing card did not change once
    #: it is this many days old. 0 = never: a page is fetched only when what the listings show
    #: changed (the issue's rule). Turn it on if the portal is seen editing pages (attachments,
    #: a rectified text) without touching the registry or the card.
    detail_refresh_days: int = Field(default=0, ge=0)


class SediaConfig(SourceConfig):
    """EU Funding & Tenders Portal, SEDIA search API."""

    #: The search endpoint; ``apiKey``, ``text``, ``pageSize`` and ``pageNumber`` go in the query string.
    search_url: HttpUrl = "https://api.tech.ec.europa.eu/search-api/prod/rest/search"
    #: Names the index (echoed back as DATASOURCE); a wrong value gets HTTP 500.
    api_key: str = "SEDIA"
    #: Where a topic's page lives; the identifier is appended.
    topic_url: HttpUrl = (
        "https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/opportunities/topic-details/"
    )
    page_size: int = Field(default=100, ge=1, le=100)
    #: Topics whose full metadata is asked for in one search request (terms on ``identifier``).
    detail_batch_size: int = Field(default=50, ge=1, le=100)
    #: 1 grant topic, 2 call for proposals (external action), 8 cascade funding.
    types: list[str] = Field(default_factory=lambda: ["1", "2", "8"])
    #: 31094501 forthcoming, 31094502 open for submission.
    statuses: list[str] = Field(default_factory=lambda: ["31094501", "31094502"])
    languages: list[str] = Field(default_factory=lambda: ["en"])
    #: Refetch the full metadata of a listed topic this many days after it was last fetched, even
    #: when its checksum, status and deadlines did not change. 0 = never: the no-change crawl costs
    #: the light listing only (the issue's rule). Turn it on if ``checksum`` (undocumented) turns
    #: out to miss changes, e.g. a budget or description edited in place.
    full_refresh_days: int = Field(default=0, ge=0)
    #: Hard stop on pages walked, so a misbehaving API cannot loop forever.
    max_pages: int = Field(default=50, ge=1)


class IncentiviConfig(SourceConfig):
    """incentivi.gov.it, the national catalogue (its Solr index, one GET)."""

    #: Root of the site; the spider appends the Solr path (``/solr/coredrupal/select``).
    base_url: HttpUrl = "https://www.incentivi.gov.it"
    #: Solr ``rows``: large enough for the whole catalogue in one response (~5,800 in 2026).
    rows: int = Field(default=8000, ge=1)
    #: The site answers slowly to datacenter IPs; this overrides ``crawl.download_timeout``.
    download_timeout: float = Field(default=120.0, gt=0)
    #: The whole catalogue is larger than the usual per-response cap.
    max_response_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)


class FeedConfig(_Model):
    """One RSS/Atom feed."""

    #: Short stable name, used in the call's source id and the report ("mimit-aggiornamenti").
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$")
    url: HttpUrl
    #: Language of the entries ("it", "en"); deadlines in the text are read in both languages.
    language: str = "it"
    #: Who publishes the feed, recorded as the calls' granting body.
    publisher: str = ""
    enabled: bool = True


def _default_feeds() -> list[FeedConfig]:
    return [
        FeedConfig(
            name="mimit-incentivi-aggiornamenti",
            url="https://www.mimit.gov.it/it/incentivi-aggiornamenti?format=feed&type=rss",
            language="it",
            publisher="Ministero delle Imprese e del Made in Italy",
        ),
        FeedConfig(
            name="eismea",
            url="https://eismea.ec.europa.eu/node/7/rss_en",
            language="en",
            publisher="European Innovation Council and SMEs Executive Agency (EISMEA)",
        ),
        FeedConfig(
            name="eic",
            url="https://eic.ec.europa.eu/node/21/rss_en",
            language="en",
            publisher="European Innovation Council (EIC)",
        ),
        FeedConfig(
            name="cinea",
            url="https://cinea.ec.europa.eu/node/161/rss_en",
            language="en",
            publisher="European Climate, Infrastructure and Environment Executive Agency (CINEA)",
        ),
    ]


class FeedsConfig(SourceConfig):
    """Any number of RSS/Atom feeds, read with conditional GET."""

    schedule: str = "2h"
    feeds: list[FeedConfig] = Field(default_factory=_default_feeds)

    @field_validator("feeds")
    @classmethod
    def _unique_names(cls, value: list[FeedConfig]) -> list[FeedConfig]:
        names = [f.name for f in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"feed names must be unique: {', '.join(duplicates)}")
        return value


def _burl_subjects() -> list[str]:
    return [
        "proroga",
        "riapertura",
        "graduatoria",
        "esiti",
        "ammessi",
        "rettifica",
        "bando",
        "contributi",
    ]


class BurlConfig(SourceConfig):
    """BURL, the regional bulletin: acts that change calls (proroghe, rankings, reopenings)."""

    #: Working days at 7:30: the bulletin is published on working days.
    schedule: str = "30 7 * * 1-5"
    #: Root of the bulletin's API (the consultation site's SPA back end);
    #: ``/ricercaAvanzata`` and ``/download`` hang off it.
    api_url: HttpUrl = "https://www.consultazioniburl.servizirl.it/ConsultazioneBurl/api"
    #: Words searched in the acts' subjects (``oggetto``), one search each.
    subjects: list[str] = Field(default_factory=_burl_subjects, min_length=1)
    #: Hits per page (``limit``); the only value seen working is 100.
    page_size: int = Field(default=100, ge=1, le=500)
    #: Hard stop on pages per subject and year.
    max_pages: int = Field(default=10, ge=1)
    #: In the first days of a year the previous year is searched too (acts published late in
    #: December are read on the first working day of January).
    previous_year_days: int = Field(default=15, ge=0, le=366)
    #: Sources whose calls the acts are linked to (the Region's calls live on Bandi e Servizi).
    link_sources: list[str] = Field(default_factory=lambda: ["lombardia"])


class UnioncamereConfig(SourceConfig):
    """Unioncamere Lombardia: the joint Regione/chambers calls (listing, detail pages, PDFs)."""

    schedule: str = "1d"
    #: Root of the site; the listing path and the detail pages hang off it.
    base_url: HttpUrl = "https://www.unioncamerelombardia.it"
    listing_path: str = Field(default="/bandi-e-incentivi-alle-imprese", pattern=r"^/[\w\-/]*$")
    #: Values of the ``stato`` filter read: 1 = in apertura (forthcoming), 2 = aperti (open).
    statuses: list[int] = Field(default_factory=lambda: [1, 2], min_length=1)
    #: Ceiling on listing pages per status.
    max_listing_pages: int = Field(default=10, ge=1)


class OpeninnovationConfig(SourceConfig):
    """Open Innovation Lombardia: EEN partner searches, and its pages of regional calls."""

    #: Partner searches last months; a weekly read is enough (and polite).
    schedule: str = "7d"
    base_url: HttpUrl = "https://www.openinnovation.regione.lombardia.it"
    #: Listing of the collaboration proposals (paged with ``?page=N``).
    proposals_path: str = Field(default="/en/collaborations/collaboration-proposals", pattern=r"^/[\w\-/]*$")
    #: Listing of "bandi e sperimentazioni"; empty = not read.
    calls_path: str = Field(default="/it/bandi-e-sperimentazioni", pattern=r"^(/[\w\-/]*)?$")
    #: Ceiling on proposal listing pages walked (about 389 proposals in 2026).
    max_listing_pages: int = Field(default=40, ge=1)


class SourcesConfig(_Model):
    """One section per source; the attribute name is the source's name in the database."""

    lombardia: LombardiaConfig = Field(default_factory=LombardiaConfig)
    sedia: SediaConfig = Field(default_factory=SediaConfig)
    incentivi: IncentiviConfig = Field(default_factory=IncentiviConfig)
    feeds: FeedsConfig = Field(default_factory=FeedsConfig)
    unioncamere: UnioncamereConfig = Field(default_factory=UnioncamereConfig)
    openinnovation: OpeninnovationConfig = Field(default_factory=OpeninnovationConfig)
    burl: BurlConfig = Field(default_factory=BurlConfig)

    def get(self, name: str) -> SourceConfig:
        if name not in SOURCE_NAMES:
            raise KeyError(f"unknown source {name!r}; known: {', '.join(SOURCE_NAMES)}")
        section: SourceConfig = getattr(self, name)
        return section

    def enabled(self) -> list[str]:
        return [name for name in SOURCE_NAMES if self.get(name).enabled]
