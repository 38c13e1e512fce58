"""The Unioncamere Lombardia spider: the calls listing by status, detail pages and their PDFs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

from scrapy.http import Request, Response

from crawler.base import ListingDetailSpider, ListingEntry
from crawler.config import UnioncamereConfig
from crawler.extract import ExtractionError, ShapeError
from crawler.extract.unioncamere import STATUSES, Entry, Listing, extract_detail, parse_listing, pdf_acts
from storage.records import CallRecord, CallStatus


class Unioncamere(ListingDetailSpider):
    """
    Domain
      Unioncamere Lombardia, the union of the Lombard chambers of commerce: the calls it runs
      with the Region (fiere internazionali, Export su Misura, SI4.0, Voucher AI, doppia
      transizione…), each with a page and its documents. A joint call also on Bandi e Servizi or
      incentivi.gov.it joins that call's duplicate group (its page links the Bandi e Servizi page,
      or title, body and closing date agree). The chambers' own sites are not crawled (HTML
      without feeds, Milan behind a bot wall): their calls reach incentivi.gov.it.
    Access
      The TYPO3 listing ``GET <base_url><listing_path>?stato=N`` for each status in ``statuses``
      (1 in apertura, 2 aperti), following a "next" link up to ``max_listing_pages``, each page
      asked with the validators of its last read when the server gave any (its entries kept in
      the source state, so a 304 lists them again); then each
      listed call's page ``.../dettaglio-bando/<slug>``, asked every run with
      ``If-None-Match``/``If-Modified-Since`` from its last read (validators kept per slug in
      the source state): a 304 carries the call over. The PDFs linked on a page are its
      attachments; a PDF not there at the last read (a ranking, an amendment) is an act on the
      call (``storage.acts``: an event that reaches the members alerted of it).
    Caveats
      No page of the site was ever recorded: the parser relies on the URL patterns and labelled
      text, its assumptions written once (``crawler.extract.unioncamere.ASSUMPTIONS``); a listing
      with no call link and no "nessun bando" makes the run degraded with the body kept. Whether
      the server answers conditional requests is not known: without validators every page is
      fetched in full each run. The first read of a call records its PDFs without events.
    Settings
      ``sources.unioncamere.base_url``, ``listing_path``, ``statuses``, ``max_listing_pages``.
    """

    name = "unioncamere"

    config: UnioncamereConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        pages = self.previous_state.get("pages")
        self._pages: Mapping[str, Any] = pages if isinstance(pages, dict) else {}
        self.state["pages"] = {}
        self.act_call_sources = (self.name,)
        self._listed: set[str] = set()

    def first_requests(self) -> Iterator[Request]:
        for status in self.config.statuses:
            query = urlencode({"stato": status})
            yield self.listing_request(
                f"{self.config.base_url}{self.config.listing_path}?{query}",
                self.parse_listing_page,
                cb_kwargs={"status": status, "page": 1},
            )

    def parse_listing_page(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        # Every listed call's page is asked (conditionally): its PDFs change behind the listing.
        for obj in self.parse_listing(response, **kwargs):
            yield self.detail_request(obj) if isinstance(obj, ListingEntry) else obj

    def parse_listing(self, response: Response, **kwargs: Any) -> Iterable[Any]:
        status, page = kwargs["status"], kwargs["page"]
        if response.status == 304:
            kept = self.kept_listing(response)
            if kept is None:
                return
            listing = Listing(tuple(Entry(*e) for e in kept["entries"]), kept.get("next_url"))
        else:
            try:
                listing = parse_listing(response.body, response.url, self.now)
            except ShapeError as exc:
                self.degrade(f"listing stato={status} page {page}: {exc}", response)
                return
            entries = [[e.slug, e.url, e.title] for e in listing.entries]
            self.keep_listing(response, entries, next_url=listing.next_url)
        for entry in listing.entries:
            if entry.slug in self._listed:
                continue
            self._listed.add(entry.slug)
            yield ListingEntry(
                key=entry.slug,
                fingerprint=entry.title,
                detail_url=entry.url,
                data={"status": STATUSES.get(status, CallStatus.UNKNOWN)},
            )
        if listing.next_url and page < self.config.max_listing_pages:
            yield self.listing_request(
                listing.next_url, self.parse_listing_page, cb_kwargs={"status": status, "page": page + 1}
            )

    def detail_request(self, entry: ListingEntry) -> Request:
        known = self._pages.get(entry.key)
        known = known if isinstance(known, dict) else {}
        return self.conditional_request(
            entry.detail_url,
            self._parse_detail,
            etag=known.get("etag"),
            last_modified=known.get("last_modified"),
            kind="detail",
            cb_kwargs={"entry": entry},
        )

    def _parse_detail(self, response: Response, entry: ListingEntry) -> Iterator[Any]:
        known = self._pages.get(entry.key)
        if response.status == 304:
            if isinstance(known, dict):
                self.state["pages"][entry.key] = known
                self.carry(entry.key)
            else:
                self.record_error(f"call {entry.key}: 304 to a request that was not conditional")
            return
        try:
            record = self.parse_detail(response, entry)
        except ExtractionError as exc:
            if isinstance(exc, ShapeError):
                self.degrade(f"call {entry.key}: {exc}", response)
            else:
                self.record_error(f"call {entry.key}: {exc}")
            if isinstance(known, dict):
                self.state["pages"][entry.key] = known
                self.carry(entry.key)  # still listed; its stored version stays
            return
        if record is None:
            return
        etag, last_modified = self.validators(response)
        pdfs = [a.url for a in record.attachments]
        if isinstance(known, dict) and isinstance(known.get("pdfs"), list):
            self.acts.extend(pdf_acts(record, [str(u) for u in known["pdfs"]]))
        self.state["pages"][entry.key] = {"etag": etag, "last_modified": last_modified, "pdfs": pdfs}
        yield record

    def parse_detail(self, response: Response, entry: ListingEntry) -> CallRecord | None:
        return extract_detail(
            response.body, response.url, self.now, listed_status=entry.data["status"], errors=self.errors
        )
