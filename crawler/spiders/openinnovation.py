"""The Open Innovation Lombardia spider: EEN partner searches, and the calls' plain-language pages."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlencode

from scrapy.http import Request, Response

from crawler.base import ListingDetailSpider, ListingEntry
from crawler.config import OpeninnovationConfig
from crawler.extract import ShapeError
from crawler.extract.openinnovation import (
    Card,
    extract_call_page,
    extract_proposal,
    parse_call_links,
    parse_proposals,
)
from storage.records import CallRecord


class Openinnovation(ListingDetailSpider):
    """
    Domain
      Open Innovation Lombardia, the Region's innovation platform. Two things are read: the
      Enterprise Europe Network collaboration proposals (technology offers and requests, R&D
      partner searches), stored as their own kind ``partner_search`` (not calls: matched to
      members who asked for them and sent as "Ricerca partner"); and the "bandi e
      sperimentazioni" pages of regional calls, whose allocation and plain-language summary join
      the call known from Bandi e Servizi (the page links it: the shared-link rule of duplicate
      groups). A page that links no Bandi e Servizi call (a challenge) is skipped.
    Access
      Server-rendered HTML (Yii2). Proposals: ``GET <base_url><proposals_path>?page=N`` from 1
      until a page brings no proposal not seen on earlier pages (or ``max_listing_pages``), then
      each proposal's page ``/<id>/<slug>``, only when what its card shows (title, type, expiry,
      EEN id) changed since the last read. Calls: ``GET <base_url><calls_path>`` and each linked
      ``/bandi-e-sperimentazioni/<slug>`` page once (fingerprint: its link text). No validators
      were ever seen on this server: listing pages are asked with those of their last read only
      if it gave some (their entries kept in the source state, so a 304 lists them again).
    Caveats
      The only real recording is four fragments of one proposal page (``tests/data/crawler/
      openinnovation``): detail selectors are real; that the listing uses the same card partial
      is an assumption (without cards, bare links still list the proposals), and the call pages'
      markup was never recorded (read by labels). A first listing page with no proposal makes the
      run degraded with the body kept. Dates are Italian even on ``/en/`` pages.
    Settings
      ``sources.openinnovation.base_url``, ``proposals_path``, ``calls_path``, ``max_listing_pages``.
    """

    name = "openinnovation"
    required_fields = ("title", "url", "deadline")

    config: OpeninnovationConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._proposals: set[str] = set()
        skipped = self.previous_state.get("not_calls")
        #: Call pages read before that link no Bandi e Servizi call, by fingerprint: not read again.
        self._not_calls: dict[str, Any] = dict(skipped) if isinstance(skipped, dict) else {}
        self.state["not_calls"] = {}

    def first_requests(self) -> Iterator[Request]:
        yield self._proposals_page(1)
        if self.config.calls_path:
            yield self.listing_request(
                self.config.base_url + self.config.calls_path,
                self.parse_listing_page,
                cb_kwargs={"what": "calls"},
            )

    def _proposals_page(self, page: int) -> Request:
        query = urlencode({"page": page})
        return self.listing_request(
            f"{self.config.base_url}{self.config.proposals_path}?{query}",
            self.parse_listing_page,
            cb_kwargs={"what": "proposals", "page": page},
        )

    def parse_listing(self, response: Response, **kwargs: Any) -> Iterable[Any]:
        kept = self.kept_listing(response) if response.status == 304 else None
        if response.status == 304 and kept is None:
            return
        if kwargs["what"] == "calls":
            if kept is not None:
                links = [tuple(e) for e in kept["entries"]]
            else:
                links = parse_call_links(response.body, response.url, self.now)
                self.keep_listing(response, [list(e) for e in links])
            for slug, url, text in links:
                key = f"bando:{slug}"
                if self._not_calls.get(key) == text:
                    self.state["not_calls"][key] = text
                    continue
                yield ListingEntry(key=key, fingerprint=text, detail_url=url, data={"what": "call"})
            return
        page: int = kwargs["page"]
        if kept is not None:
            cards = [Card(**e) for e in kept["entries"]]
        else:
            cards = parse_proposals(response.body, response.url, self.now)
            self.keep_listing(response, [card.as_json() for card in cards])
        fresh = [card for card in cards if card.id not in self._proposals]
        if not fresh:
            if page == 1:
                self.degrade(
                    "the first listing page links no proposal (assumption 'proposal_link')", response
                )
            return
        for card in fresh:
            self._proposals.add(card.id)
            yield ListingEntry(
                key=f"proposal:{card.id}",
                fingerprint=card.fingerprint(),
                detail_url=card.url,
                data={"what": "proposal", "card": card},
            )
        if page < self.config.max_listing_pages:
            yield self._proposals_page(page + 1)
        else:
            self.record_error(f"proposals listing read up to page {page} (max_listing_pages)")

    def parse_detail(self, response: Response, entry: ListingEntry) -> CallRecord | None:
        try:
            if entry.data["what"] == "call":
                record = extract_call_page(response.body, response.url, self.now)
                if record is None:
                    self.state["not_calls"][entry.key] = entry.fingerprint
                return record
            card: Card = entry.data["card"]
            return extract_proposal(response.body, response.url, self.now, card=card, errors=self.errors)
        except ShapeError as exc:
            self.degrade(f"{entry.key}: {exc}", response)
            return None
