"""Pure extractors: a source's response body in, normalised :class:`~storage.records.CallRecord` out.

Every extractor has the shape ``(body: bytes, url: str, fetched_at: datetime, ...) -> CallRecord |
list[CallRecord]`` and knows nothing of Scrapy or the network, so the same code runs in a crawl,
a test and a REPL. Conventions:

* ``fetched_at`` is the injected "now" (aware); it decides e.g. whether a deadline is past.
* A body that cannot be used at all (not JSON, not a feed, the wrong kind of response) raises
  :class:`ExtractionError`; the spider records it and the run fails. An extractor whose input
  was never recorded raises :class:`ShapeError` when a body breaks one of its written
  assumptions: the run is degraded and the body kept (``SentinellaSpider.degrade``).
* An item that cannot be read is skipped with one line appended to ``errors`` (an optional
  ``errors: list[str] | None`` keyword argument): one bad item never loses the others.
"""

from __future__ import annotations


class ExtractionError(ValueError):
    """The whole body is unusable: the message says why, fit for a run's error list."""


class ShapeError(ExtractionError):
    """The body is not in the shape the extractor assumes (a source never recorded, or changed):
    the spider degrades the run and keeps the body for inspection, rather than read it wrongly."""


def note(errors: list[str] | None, message: str) -> None:
    """Append ``message`` to ``errors`` when the caller collects them."""
    if errors is not None:
        errors.append(message)
