"""The incentivi.gov.it spider: the national catalogue's Solr index in one request."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from scrapy.http import Request, Response

from crawler.base import JsonApiSpider
from crawler.config import IncentiviConfig
from crawler.extract import ExtractionError
from crawler.extract.incentivi import read_solr, solr_url
from storage.records import CallRecord, record_to_json


class Incentivi(JsonApiSpider):
    """
    Domain
      incentivi.gov.it, the Ministry of Enterprises' catalogue of every Italian incentive:
      national measures, every region's (Lombardy included) and the chambers of commerce's (the
      Milan chamber's own site cannot be crawled, its calls are here). Kept: measures open to
      companies in Lombardy (regional or national) and not closed.
    Access
      One ``GET <base_url>/solr/coredrupal/select?wt=json&q=index_id:incentivi&rows=<rows>&sort=
      ds_last_update desc&fl=<fields>``: the Solr index behind the site answers the whole
      catalogue (about 5,800 documents) to an anonymous request. Conditional (``If-None-Match`` /
      ``If-Modified-Since``) when the server gave validators; a 304 costs that request only. The
      response is checked for completeness (``numFound`` against the documents received).
      A measure whose record did not change since the last ingested run is not handed to ingest
      again (per-measure fingerprints in the source state).
    Caveats
      Datacenter IPs often see connect timeouts and resets: ``download_timeout`` (default 120 s)
      replaces the crawl-wide timeout for this source, and retries back off. Closing dates of
      2029 or later are placeholders for "until funds run out" (recorded as sportello without a
      closing date); some dates are Rome midnight stored in UTC. A truncated response is an error
      but its documents are kept (the yield check then judges the run).
    Settings
      ``sources.incentivi.base_url``, ``rows``, ``download_timeout``, ``max_response_bytes``.
    """

    name = "incentivi"

    config: IncentiviConfig

    def first_requests(self) -> Iterator[Request]:
        yield self.conditional_request(
            solr_url(self.config.base_url, self.config.rows),
            self.parse_solr,
            etag=self.etag,
            last_modified=self.last_modified,
            kind="listing",
            headers={"Accept": "application/json"},
            # The whole catalogue in one body: this source's own limits, not the crawl-wide ones.
            meta={
                "download_timeout": self.config.download_timeout,
                "download_maxsize": self.config.max_response_bytes,
            },
        )

    def parse_solr(self, response: Response) -> Iterator[Any]:
        previous = self.previous_state.get("fingerprints")
        if response.status == 304:
            # Nothing changed: every measure of the last good read is still current.
            for key, value in previous.items() if isinstance(previous, dict) else ():
                self._fingerprints[key] = value
                self.carry(key)
            return
        try:
            read = read_solr(
                response.body, response.url, self.now, base_url=self.config.base_url, errors=self.errors
            )
        except ExtractionError as exc:
            self.fail(f"Solr response: {exc}")
            return
        self.etag, self.last_modified = self.validators(response)
        self.state["solr"] = {
            "num_found": read.num_found,
            "docs": read.docs,
            "truncated": read.truncated,
            "kept": len(read.records),
            "skipped": read.skipped,
        }
        for record in read.records:
            fingerprint = _fingerprint(record)
            if self.unchanged(record.source_id, fingerprint):
                continue
            self.remember(record.source_id, fingerprint)
            yield record

    def parse_page(self, response: Response, data: Any, **kwargs: Any) -> Iterator[Any]:
        # One response, read by parse_solr (which also handles the 304); never paged.
        return iter(())


def _fingerprint(record: CallRecord) -> str:
    """Everything the stored call holds (its status included, which moves with time)."""
    blob = json.dumps(record_to_json(record), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]
