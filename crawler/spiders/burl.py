"""The BURL spider: the regional bulletin's search API, for acts that change calls."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from scrapy.http import Request, Response

from crawler.base import JsonApiSpider
from crawler.config import BurlConfig
from crawler.extract import ShapeError
from crawler.extract.burl import act_of, act_record, read_search, request_body
from storage.records import ROME

_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class Burl(JsonApiSpider):
    """
    Domain
      The BURL (Bollettino Ufficiale della Regione Lombardia), where the Region publishes the
      decrees that approve, extend ("proroga"), reopen, amend and rank its calls. Sentinella reads
      it for change: an act about a call it holds becomes an event on that call (a proroga moves
      the deadline, with the act as evidence); an act linked to no call is a notice for the staff
      digest (``storage.acts``). The calls themselves are found on Bandi e Servizi.
    Access
      The consultation site's JSON search API: ``PUT <api_url>/ricercaAvanzata?offset=K&limit=N``
      with the body the working client sent (``oggetto`` = one subject word, the publication year
      as strings, ``dataMinina`` sic), once per subject in ``subjects`` and per year (the current
      one, and the previous one in the first ``previous_year_days`` days of January), paged with
      offset/limit until ``conteggioTotale`` is reached or ``max_pages``. Hits are deduplicated
      on ``idBurl``. No conditional requests (none known for the API); incremental all the same:
      an act already read with the same title and date is carried over, not handed to ingest
      again. Each act's link is ``<api_url>/download?id=<idBurl>``.
    Caveats
      No response was ever recorded: the answer's assumed shape is written once
      (``crawler.extract.burl.ASSUMPTIONS``), and an answer that differs makes the run degraded
      with the body kept in the run's report, never a crash or a wrong change. NUL escapes in the
      body are removed. The download is the whole issue as base64 in JSON (hundreds of pages),
      so acts are read from their subject only; an act whose subject names no code, decree or
      title of a stored call stays a notice. Linked only to calls of ``link_sources``.
    Settings
      ``sources.burl.api_url``, ``subjects``, ``page_size``, ``max_pages``, ``previous_year_days``,
      ``link_sources``.
    """

    name = "burl"
    required_fields = ("title", "url", "published")

    config: BurlConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.act_call_sources = tuple(self.config.link_sources)
        self._seen: set[str] = set()

    def years(self) -> list[int]:
        today = self.now.astimezone(ROME).date()
        years = [today.year]
        if today - today.replace(month=1, day=1) < timedelta(days=self.config.previous_year_days):
            years.insert(0, today.year - 1)
        return years

    def first_requests(self) -> Iterator[Request]:
        for subject in self.config.subjects:
            for year in self.years():
                yield self._search(subject, year, 0)

    def _search(self, subject: str, year: int, offset: int) -> Request:
        query = urlencode({"offset": offset, "limit": self.config.page_size})
        return self.request(
            f"{self.config.api_url}/ricercaAvanzata?{query}",
            self.parse_search,
            kind="listing",
            method="PUT",
            headers=_HEADERS,
            body=request_body(subject, year),
            cb_kwargs={"subject": subject, "year": year, "offset": offset},
        )

    def parse_search(self, response: Response, subject: str, year: int, offset: int) -> Iterator[Any]:
        try:
            page = read_search(response.body, response.url, self.now, errors=self.errors)
        except ShapeError as exc:
            self.degrade(f"search {subject!r} {year} at {offset}: {exc}", response)
            return
        for hit in page.hits:
            if hit.id_burl in self._seen:
                continue
            self._seen.add(hit.id_burl)
            fingerprint = hashlib.sha256(f"{hit.title}\x1f{hit.published}".encode()).hexdigest()[:24]
            if self.unchanged(hit.id_burl, fingerprint):
                continue
            act = act_of(hit, url=f"{self.config.api_url}/download?id={hit.id_burl}")
            self.remember(hit.id_burl, fingerprint)
            self.acts.append(act)
            yield act_record(hit, act)
        following = offset + self.config.page_size
        if page.hits and following < page.total:
            if following // self.config.page_size >= self.config.max_pages:
                self.record_error(f"search {subject!r} {year}: stopped after {self.config.max_pages} pages")
                return
            yield self._search(subject, year, following)

    def parse_page(self, response: Response, data: Any, **kwargs: Any) -> Iterator[Any]:
        # The answer is read by parse_search (NUL escapes, assumptions); never through parse_json.
        return iter(())
