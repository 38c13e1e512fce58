"""The Regione Lombardia spider: open-data registry + Bandi e Servizi listing, detail pages."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from scrapy.http import Request, Response
from twisted.python.failure import Failure

from crawler.base import ListingDetailSpider, ListingEntry, header
from crawler.config import LombardiaConfig
from crawler.extract import ExtractionError
from crawler.extract.lombardia import (
    ListingCard,
    PortalErrorPage,
    card_to_record,
    dataset_rows,
    enrich,
    is_canonical_detail_url,
    merge_card,
    parse_detail,
    parse_listing,
    row_fingerprint,
    row_to_record,
    search_form,
    search_url,
)
from crawler.parsing import one_line, status_from_dates
from storage.records import ROME, CallRecord, CallStatus, Precision

#: Registry rows closed less than this long before this week's Monday (7 to 13 days ago) are still
#: read, so a call's closing is recorded.
RECENTLY_CLOSED = timedelta(days=7)
#: A sportello (no closing date) opened longer ago than this (before this week's Monday) is taken
#: as over.
SPORTELLO_LOOKBACK = timedelta(days=3 * 365)
#: Hard stop on registry pages (1,912 rows in the whole registry in 2026).
MAX_DATASET_PAGES = 50

_FORM_HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
    # The portal's own page sends the search as XHR; the server answers the results fragment.
    "X-Requested-With": "XMLHttpRequest",
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class Lombardia(ListingDetailSpider):
    """
    Domain
      Regione Lombardia's calls for funding ("bandi") as published on Bandi e Servizi
      (www.bandi.regione.lombardia.it): regional calls, FESR/FSE+ programme calls, Finlombarda
      measures. Personnel competitions are not funding calls and are left out.
    Access
      Discovery from two listings, merged by call code: (1) the open-data registry
      ``bukx-h2uy`` on dati.lombardia.it (Socrata SODA, ``GET <dataset_url>?$where=...&$order=
      codice_bando&$limit=N&$offset=K``, paged until a short page), asking for calls closing from
      a week before this week's Monday on, and sportelli opened in the three years before it (the
      dates move once a week, so a page's URL stays the same all week); each page is asked with
      ``If-None-Match``/``If-Modified-Since`` from its last read (validators and rows kept per page
      URL in the source state), and a 304 reuses the rows kept; (2) the portal's own search
      (``POST <portal_url>/servizi/servizio/bandi/ricerca``, form fields ``stato[0]=APERTO``,
      ``stato[1]=IN APERTURA``, ``pageNum``; the number of pages from ``data-max-page-num``), because
      the registry lags the portal. Then the canonical detail page of every call that is not
      closed, for the status chip, the opening and closing hour, publication, funding source,
      "Chi può partecipare", granting body, attachments and budget; a call closed since its page
      was read gets its page read once more (its row and card alone would blank those details in
      storage), a call closed before it was ever read never does. Incremental: a fingerprint
      per code of what the registry row and the listing card show (the registry's
      application counter excluded) and of the status the dates give; the detail page is fetched
      only when it changed (or, when ``detail_refresh_days`` is set, once it is that old).
      Canonical URLs learnt are kept per code in the source state.
    Caveats
      The registry has no link and no status; a code the listing does not show gets the bare-code
      URL ``.../dettaglio/<CODE>`` (404 for about 2 % of codes, and the portal answers unknown
      codes with a 200 error page), so on a 404 or error page the spider searches the portal for
      the code and follows the result's canonical link. A detail page that cannot be read costs
      that call only: a call never fetched before is then stored from its registry row/card, one
      fetched before keeps its stored version (a call that closed meanwhile stays stored with its
      old status, its passed deadline telling it is over, until its page is read). A failing
      listing (registry or portal) fails the run. No whole page of the portal has been recorded:
      selectors follow shared/SOURCES.md §1b.
      Pages are decoded by their declared charset (header, then ``<meta>``), an undeclared one
      read as UTF-8 or else windows-1252. The registry rows kept for conditional requests make
      the source state grow with the registry (a few hundred short rows).
    Settings
      ``sources.lombardia.dataset_url``, ``portal_url``, ``page_size``, ``use_portal_listing``,
      ``max_listing_pages``, ``detail_refresh_days``.
    """

    name = "lombardia"

    config: LombardiaConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rows: dict[str, Mapping[str, Any]] = {}
        self._cards: dict[str, ListingCard] = {}
        self._open_listings = 0
        self._dataset_pages = 0
        previous_urls = self.previous_state.get("urls")
        self._known_urls: dict[str, str] = dict(previous_urls) if isinstance(previous_urls, dict) else {}
        previous_dates = self.previous_state.get("dates")
        self._known_dates: dict[str, Any] = dict(previous_dates) if isinstance(previous_dates, dict) else {}
        known = self.previous_state.get("fingerprints")
        self._fetched_before: set[str] = set(known) if isinstance(known, dict) else set()
        previous_pages = self.previous_state.get("registry")
        self._registry_pages: dict[str, Any] = (
            dict(previous_pages) if isinstance(previous_pages, dict) else {}
        )
        self.state["urls"] = {}
        self.state["dates"] = {}
        self.state["registry"] = {}

    def detail_refresh(self) -> timedelta | None:
        days = self.config.detail_refresh_days
        return timedelta(days=days) if days else None

    # --- the two listings ------------------------------------------------------------------

    def first_requests(self) -> Iterator[Request]:
        yield self._dataset_request(0)
        if self.config.use_portal_listing:
            yield self._portal_request(1)

    def _dataset_request(self, offset: int) -> Request:
        today = self.now.astimezone(ROME).date()
        # From this week's Monday: the query, hence each page's URL and validators, stays the same
        # for a week (a daily date would make every conditional request miss the next day).
        monday = today - timedelta(days=today.weekday())
        since = (monday - RECENTLY_CLOSED).isoformat()
        sportello_since = (monday - SPORTELLO_LOOKBACK).isoformat()
        where = (
            f"chiusura_adesione >= '{since}T00:00:00' OR "
            f"(chiusura_adesione IS NULL AND apertura_adesione >= '{sportello_since}T00:00:00')"
        )
        query = {
            "$where": where,
            # A unique, stable order: pages do not shift between requests.
            "$order": "codice_bando",
            "$limit": str(self.config.page_size),
            "$offset": str(offset),
        }
        # "$" left as is: SoQL parameter names as Socrata documents them.
        url = self.config.dataset_url + "?" + urlencode(query, safe="$")
        known = self._registry_pages.get(url)
        # Validators are sent only with the rows they stand for: a 304 must have something to reuse.
        if not (isinstance(known, dict) and isinstance(known.get("rows"), list)):
            known = {}
        self._open_listings += 1
        return self.conditional_request(
            url,
            self.parse_listing_page,
            etag=known.get("etag"),
            last_modified=known.get("last_modified"),
            kind="listing",
            headers={"Accept": "application/json"},
            cb_kwargs={"what": "dataset", "offset": offset, "page_url": url},
        )

    def _portal_request(self, page: int) -> Request:
        self._open_listings += 1
        return self.request(
            search_url(self.config.portal_url),
            self.parse_listing_page,
            kind="listing",
            method="POST",
            headers=_FORM_HEADERS,
            body=urlencode(search_form(page=page)),
            cb_kwargs={"what": "portal", "page": page},
        )

    def parse_listing(self, response: Response, **kwargs: Any) -> Iterable[Any]:
        self._open_listings -= 1
        if kwargs["what"] == "dataset":
            yield from self._read_dataset(response, kwargs["offset"], kwargs["page_url"])
        else:
            yield from self._read_portal(response, kwargs["page"])
        if self._open_listings == 0 and self.fatal is None:
            yield from self._merge()

    def _read_dataset(self, response: Response, offset: int, page_url: str) -> Iterator[Request]:
        if response.status == 304:
            known = self._registry_pages.get(page_url)
            if not isinstance(known, dict) or not isinstance(known.get("rows"), list):
                self.fail(f"registry page at offset {offset}: 304 to a request that was not conditional")
                return
            rows = [row for row in known["rows"] if isinstance(row, dict)]
            etag, last_modified = known.get("etag"), known.get("last_modified")
        else:
            try:
                rows = dataset_rows(response.body)
            except ExtractionError as exc:
                self.fail(f"registry page at offset {offset}: {exc}")
                return
            etag, last_modified = self.validators(response)
        if etag or last_modified:
            # The rows are kept with the validators: a 304 next time reuses them, so every call
            # of the page is still merged, fingerprinted and, when its card changed, refetched.
            self.state["registry"][page_url] = {"etag": etag, "last_modified": last_modified, "rows": rows}
        self._dataset_pages += 1
        for row in rows:
            code = one_line(row.get("codice_bando") or "")
            if code and code not in self._rows:
                self._rows[code] = row
            elif not code:
                self.record_error(f"registry row without codice_bando at offset {offset}")
        if len(rows) >= self.config.page_size:
            if self._dataset_pages >= MAX_DATASET_PAGES:
                self.record_error(f"registry paging stopped at {MAX_DATASET_PAGES} pages")
                return
            yield self._dataset_request(offset + len(rows))

    def _read_portal(self, response: Response, page: int) -> Iterator[Request]:
        try:
            listing = parse_listing(
                response.body,
                response.url,
                self.now,
                errors=self.errors,
                content_type=header(response, "Content-Type"),
            )
        except ExtractionError as exc:
            self.fail(f"portal listing page {page}: {exc}")
            return
        for card in listing.cards:
            self._cards.setdefault(card.code, card)
        if page == 1 and listing.max_page:
            last = min(listing.max_page, self.config.max_listing_pages)
            if listing.max_page > last:
                self.record_error(
                    f"portal listing has {listing.max_page} pages; read {last} (max_listing_pages)"
                )
            for number in range(2, last + 1):
                yield self._portal_request(number)

    # --- merge and decide what to fetch ----------------------------------------------------

    def _fingerprint(self, code: str, record: CallRecord, card: ListingCard | None) -> str:
        row = self._rows.get(code)
        payload = {
            "row": row_fingerprint(row) if row is not None else None,
            "card": card.fingerprint() if card is not None else None,
            "status": self._expected_status(code, record).value,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]

    def _expected_status(self, code: str, record: CallRecord) -> CallStatus:
        """The status the best dates known give now (the detail page's hours, when fetched before),
        so a call whose opening or closing hour passes is fetched again."""
        known = self._known_dates.get(code)
        if isinstance(known, dict):
            try:
                opens = datetime.fromisoformat(known["opens"]) if known.get("opens") else None
                closes = datetime.fromisoformat(known["closes"]) if known.get("closes") else None
                precision = Precision(known["closes_precision"]) if known.get("closes_precision") else None
            except (KeyError, ValueError):
                pass
            else:
                if opens or closes:
                    return status_from_dates(
                        opens=opens, closes=closes, closes_precision=precision, now=self.now
                    )
        return record.status

    def _base_record(self, code: str) -> CallRecord | None:
        row, card = self._rows.get(code), self._cards.get(code)
        detail_url = card.url if card is not None else self._known_urls.get(code)
        if row is not None:
            record = row_to_record(
                row, fetched_at=self.now, portal_url=self.config.portal_url, detail_url=detail_url
            )
            if record is None:
                return None  # an excluded type (personnel competitions)
            if card is not None:
                record = merge_card(record, card, fetched_at=self.now)
            return record
        if card is not None:
            return card_to_record(card, fetched_at=self.now)
        return None

    def _merge(self) -> Iterator[Any]:
        for code in sorted(set(self._rows) | set(self._cards)):
            try:
                record = self._base_record(code)
            except ValueError as exc:
                self.record_error(f"call {code}: {exc}")
                continue
            if record is None:
                continue
            if is_canonical_detail_url(record.url, code):
                self.state["urls"][code] = record.url
            if code in self._known_dates:
                self.state["dates"][code] = self._known_dates[code]
            fingerprint = self._fingerprint(code, record, self._cards.get(code))
            if record.status == CallStatus.CLOSED:
                if self.unchanged(code, fingerprint):
                    continue
                if not self._enriched_before(code):
                    # Closed by its dates, never read from its page: the page adds nothing we need.
                    self.remember(code, fingerprint)
                    yield record
                    continue
                # Closed since its page was read (or changed after closing): the row and card alone
                # would blank the page's details in storage, so the page is read once more.
            yield ListingEntry(
                key=code, fingerprint=fingerprint, detail_url=record.url, data={"record": record}
            )

    # --- detail pages ----------------------------------------------------------------------

    def detail_request(self, entry: ListingEntry) -> Request:
        bare = not is_canonical_detail_url(entry.detail_url, entry.key)
        return self.request(
            entry.detail_url,
            self._on_detail,
            kind="detail",
            # The bare-code URL 404s for some codes: that answer leads to a search, not an error.
            meta={"handle_httpstatus_list": [404]} if bare else None,
            cb_kwargs={"entry": entry, "searched": False},
        ).replace(errback=self._on_detail_error)

    def parse_detail(self, response: Response, entry: ListingEntry) -> CallRecord | None:
        record: CallRecord = entry.data["record"]
        detail = parse_detail(
            response.body,
            response.url,
            self.now,
            content_type=header(response, "Content-Type"),
            errors=self.errors,
        )
        return enrich(record, detail, fetched_at=self.now)

    def _on_detail(self, response: Response, entry: ListingEntry, searched: bool) -> Iterator[Any]:
        try:
            if response.status == 404:
                raise PortalErrorPage(f"detail {response.url}: HTTP 404")
            record = self.parse_detail(response, entry)
        except PortalErrorPage as exc:
            if not searched:
                yield self._code_search(entry)
                return
            yield from self._detail_failed(entry, str(exc))
            return
        except ExtractionError as exc:
            yield from self._detail_failed(entry, str(exc))
            return
        if record is None:
            return
        self._learn(entry.key, record)
        self.remember(entry.key, entry.fingerprint)
        yield record

    def _on_detail_error(self, failure: Failure) -> Iterator[Any]:
        request: Request | None = getattr(failure, "request", None)
        entry = request.cb_kwargs.get("entry") if request is not None else None
        self.on_request_error(failure)  # records the error (a detail failure is not fatal)
        if isinstance(entry, ListingEntry):
            yield from self._fallback_record(entry)

    def _code_search(self, entry: ListingEntry) -> Request:
        return self.request(
            search_url(self.config.portal_url),
            self._on_code_search,
            kind="detail",
            method="POST",
            headers=_FORM_HEADERS,
            body=urlencode(search_form(code=entry.key, statuses=())),
            cb_kwargs={"entry": entry},
        ).replace(errback=self._on_detail_error)

    def _on_code_search(self, response: Response, entry: ListingEntry) -> Iterator[Any]:
        try:
            listing = parse_listing(
                response.body, response.url, self.now, content_type=header(response, "Content-Type")
            )
        except ExtractionError as exc:
            yield from self._detail_failed(entry, f"search for {entry.key}: {exc}")
            return
        card = next((c for c in listing.cards if c.code == entry.key), None)
        if card is None or not is_canonical_detail_url(card.url, entry.key):
            yield from self._detail_failed(entry, f"search for {entry.key}: no detail page found")
            return
        record: CallRecord = merge_card(entry.data["record"], card, fetched_at=self.now)
        found = ListingEntry(
            key=entry.key, fingerprint=entry.fingerprint, detail_url=card.url, data={"record": record}
        )
        yield self.request(
            card.url, self._on_detail, kind="detail", cb_kwargs={"entry": found, "searched": True}
        ).replace(errback=self._on_detail_error)

    def _detail_failed(self, entry: ListingEntry, message: str) -> Iterator[CallRecord]:
        self.record_error(f"call {entry.key}: {message}")
        yield from self._fallback_record(entry)

    def _enriched_before(self, code: str) -> bool:
        """Whether the stored call holds what its detail page said (the page's dates are kept
        from the first good read for as long as the call is listed, failed runs included)."""
        return code in self._known_dates

    def _fallback_record(self, entry: ListingEntry) -> Iterator[CallRecord]:
        """A call never fetched before is stored from its registry row/card; one fetched before
        keeps its stored version and is carried over (still listed: part of the yield), since the
        row and card would blank the page's details. Either way its fingerprint is not
        remembered, so the next run tries the page again."""
        if entry.key in self._fetched_before or self._enriched_before(entry.key):
            self.carry(entry.key)
        else:
            yield entry.data["record"]

    def _learn(self, code: str, record: CallRecord) -> None:
        if is_canonical_detail_url(record.url, code):
            self.state["urls"][code] = record.url
        self.state["dates"][code] = {
            "opens": _iso(record.opens),
            "closes": _iso(record.closes),
            "closes_precision": record.closes_precision.value if record.closes_precision else None,
        }
