"""The EU Funding & Tenders Portal spider (SEDIA search API)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from scrapy.http import Request, Response

from crawler.base import JsonApiSpider
from crawler.config import SediaConfig
from crawler.extract import ExtractionError
from crawler.extract.sedia import (
    LIGHT_FIELDS,
    build_query,
    extract_topics,
    multipart_body,
    parse_listing,
    search_parts,
    search_url,
)


class Sedia(JsonApiSpider):
    """
    Domain
      EU Funding & Tenders Portal: open and forthcoming grant topics (types 1 grant, 2 call for
      proposals, 8 cascade funding) of every EU programme, as indexed by the SEDIA search API.
    Access
      ``POST <search_url>?apiKey=SEDIA&text=***&pageSize=N&pageNumber=N`` with a multipart body
      whose parts ``query``, ``languages``, ``sort`` (and ``displayFields``) are JSON *file* parts
      typed ``application/json``; sorted by identifier ascending (relevance order drifts between
      runs), paged until a short page or ``pageNumber * pageSize >= totalResults``.
      Two passes keep polling cheap: a light listing (``displayFields``: identifier, type,
      status, deadlines, DATASOURCE, plus the row ``checksum``), then full metadata only for
      topics that are new or whose checksum, status or deadlines changed (or, when
      ``full_refresh_days`` is set, were last fetched longer ago than that; by default never),
      asked for in batches by ``terms`` on ``identifier``.
      The API has no conditional requests: a no-change run costs the light listing only.
    Caveats
      A wrongly encoded query is not refused: the API answers the whole unfiltered index. Such a
      response (rows of types we did not ask for) fails the run instead of being ingested.
      ``DATASOURCE=SEDIA_PRD_CENTRICITY`` rows are stale copies and are dropped, as are repeated
      identifiers. "Open" is not trusted alone: a topic whose last deadline passed is closed.
      ``displayFields`` drops ``topicConditions`` from rows, which is why full metadata is asked
      for without it.
    Settings
      ``sources.sedia.search_url``, ``api_key``, ``topic_url``, ``page_size``,
      ``detail_batch_size``, ``types``, ``statuses``, ``languages``, ``full_refresh_days``,
      ``max_pages``.
    """

    name = "sedia"

    config: SediaConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: identifier → fingerprint of the topics whose full metadata must be fetched.
        self._pending: dict[str, str] = {}
        self.listed = 0
        self.dropped_stale = 0
        self.dropped_duplicates = 0

    # requests

    def _search(
        self,
        page_number: int,
        page_size: int,
        *,
        callback: Any,
        kind: str,
        identifiers: Sequence[str] | None = None,
        display_fields: Sequence[str] | None = None,
        cb_kwargs: dict[str, Any] | None = None,
    ) -> Request:
        query = build_query(self.config.types, self.config.statuses, identifiers=identifiers)
        parts = search_parts(query, languages=self.config.languages, display_fields=display_fields)
        # A boundary derived from the parts: deterministic (replayable) and never inside them.
        digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]
        body, content_type = multipart_body(parts, boundary=f"sentinella-{digest}")
        url = search_url(
            self.config.search_url, api_key=self.config.api_key, page_number=page_number, page_size=page_size
        )
        return self.request(
            url,
            callback,
            kind=kind,
            method="POST",
            headers={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            cb_kwargs={"page_number": page_number, **(cb_kwargs or {})},
        )

    def first_requests(self) -> Iterator[Request]:
        yield self._listing_request(1)

    def _listing_request(self, page_number: int) -> Request:
        return self._search(
            page_number,
            self.config.page_size,
            callback=self.parse_json,
            kind="listing",
            display_fields=LIGHT_FIELDS,
        )

    # the light listing

    def parse_page(self, response: Response, data: Any, **kwargs: Any) -> Iterator[Any]:
        page_number: int = kwargs["page_number"]
        try:
            page = parse_listing(
                response.body, response.url, self.now, types=self.config.types, errors=self.errors
            )
        except ExtractionError as exc:
            self.fail(f"listing page {page_number}: {exc}")
            return
        self.dropped_stale += page.dropped_stale
        self.dropped_duplicates += page.dropped_duplicates
        refresh = timedelta(days=self.config.full_refresh_days) if self.config.full_refresh_days else None
        for row in page.rows:
            if row.identifier in self._pending or self._was_listed(row.identifier):
                self.dropped_duplicates += 1
                continue
            self.listed += 1
            if not self.unchanged(row.identifier, row.fingerprint, refresh_after=refresh):
                self._pending[row.identifier] = row.fingerprint

        size = self.config.page_size
        more = page.result_count >= size and (
            page.total_results is None or page_number * size < page.total_results
        )
        if more and page_number < self.config.max_pages:
            yield self._listing_request(page_number + 1)
            return
        if more:
            self.record_error(f"listing stopped at max_pages={self.config.max_pages}; later topics not seen")
        self.notes.update(
            listed=self.listed,
            listing_pages=page_number,
            dropped_stale=self.dropped_stale,
            dropped_duplicates=self.dropped_duplicates,
            to_fetch=len(self._pending),
        )
        yield from self._detail_requests()

    def _was_listed(self, identifier: str) -> bool:
        return identifier in self._fingerprints

    # full metadata of new/changed topics

    def _detail_requests(self) -> Iterator[Request]:
        pending = sorted(self._pending)
        batch = self.config.detail_batch_size
        for start in range(0, len(pending), batch):
            identifiers = pending[start : start + batch]
            yield self._search(
                1,
                len(identifiers),
                callback=self.parse_topics,
                kind="detail",
                identifiers=identifiers,
                cb_kwargs={"identifiers": tuple(identifiers)},
            )

    def parse_topics(
        self, response: Response, page_number: int, identifiers: tuple[str, ...]
    ) -> Iterator[Any]:
        try:
            records = extract_topics(
                response.body,
                response.url,
                self.now,
                types=self.config.types,
                topic_url=self.config.topic_url,
                errors=self.errors,
            )
        except ExtractionError as exc:
            # Full metadata that is not what we asked for means the API misread the query: nothing
            # of this run can be trusted.
            self.fail(f"full metadata of {len(identifiers)} topics: {exc}")
            return
        wanted = set(identifiers)
        got: set[str] = set()
        for record in records:
            if record.source_id not in wanted:
                self.record_error(f"topic {record.source_id} returned but not asked for; ignored")
                continue
            got.add(record.source_id)
            self.remember(record.source_id, self._pending[record.source_id])
            yield record
        for missing in sorted(wanted - got):
            self.record_error(f"topic {missing} listed but absent from its full metadata")
