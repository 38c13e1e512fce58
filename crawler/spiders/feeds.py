"""The RSS/Atom feeds spider: every feed configured in ``[sources.feeds]``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from scrapy.http import Response

from crawler.base import FeedSpider
from crawler.config import FeedConfig, FeedsConfig
from crawler.extract.feeds import extract_feed
from storage.records import CallRecord


class Feeds(FeedSpider):
    """
    Domain
      News feeds of funding bodies: MIMIT "incentivi - aggiornamenti" (decrees, sportello openings,
      extensions), and the calls pages of the EU agencies EISMEA, EIC and CINEA; any other RSS or
      Atom feed can be added in the settings.
    Access
      One GET per feed with ``If-None-Match``/``If-Modified-Since`` from the feed's last good read
      (kept per feed in the source state); a 304 costs that request only and its entries count as
      unchanged. feedparser reads the bytes with the response headers, never a URL.
    Caveats
      Entries are news about calls, not call records: status is unknown, the deadline is read from
      the text when it is stated. A feed answering something that is not a feed (an HTML error
      page) is an error for that feed only; a malformed but readable feed still yields its
      entries. The run fails only when every feed fails.
    Settings
      ``sources.feeds.feeds`` (``name``, ``url``, ``language``, ``publisher``, ``enabled``).
    """

    name = "feeds"

    config: FeedsConfig

    def feeds(self) -> Sequence[FeedConfig]:
        return [feed for feed in self.config.feeds if feed.enabled]

    def parse_feed(self, response: Response, feed: FeedConfig) -> Iterable[CallRecord]:
        headers = {
            key.decode("latin-1"): b", ".join(values).decode("latin-1")
            for key, values in response.headers.items()
        }
        return extract_feed(
            response.body,
            response.url,
            self.now,
            feed_name=feed.name,
            headers=headers,
            language=feed.language,
            publisher=feed.publisher,
            errors=self.errors,
        )
