"""A whole replay "site": every source's routes on one :class:`ReplayServer`, from the bundled
recordings, and the sources configuration that points every spider at it.

    with ReplayServer() as server:
        sources = install_site(server)
        run_crawl(db_url, [], crawl=crawl, sources_config=sources, now=RECORDED_AT)

What is served (``recordings/README.md`` says which files are real and which synthetic):

* ``sedia`` — the SEDIA search API rebuilt over the real 2026 search page (9 grant topics, 6 of
  them current); ``scale`` > 1 adds copies with suffixed identifiers and checksums, for
  benchmarks that want a larger index;
* ``feeds`` — four RSS feeds (MIMIT and three EU agencies), each with an ETag;
* ``lombardia`` — the open-data registry, the Bandi e Servizi search and detail pages;
* ``incentivi`` — the incentivi.gov.it Solr endpoint, with an ETag;
* ``unioncamere``, ``openinnovation``, ``burl`` — Unioncamere Lombardia's listing and call pages,
  Open Innovation Lombardia's partner searches and call pages, the BURL search API
  (:mod:`crawler.replay.venues`).

The recordings describe the portals as they were on :data:`RECORDED_AT`: run anything that reads
them on a clock pinned there (``SENTINELLA_NOW``), or their open calls look closed.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

from crawler.config import FeedConfig, FeedsConfig, SediaConfig, SourcesConfig
from crawler.replay.regional import RECORDINGS, install_incentivi, install_lombardia
from crawler.replay.server import ReplayServer, SediaSearch, static
from crawler.replay.venues import install_burl, install_openinnovation, install_unioncamere
from storage.records import ROME

#: The moment the recordings describe (the date their calls were open on).
RECORDED_AT = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)

SEDIA_SEARCH_PATH = "/search-api/prod/rest/search"
#: Feed name (as in the default configuration) → bundled body.
FEEDS = {
    "mimit-incentivi-aggiornamenti": "mimit_incentivi_aggiornamenti_synthetic.xml",
    "eismea": "eismea_calls_synthetic.xml",
    "eic": "eic_calls_synthetic.xml",
    "cinea": "cinea_calls_synthetic.xml",
}
FEED_PUBLISHERS = {
    "mimit-incentivi-aggiornamenti": "Ministero delle Imprese e del Made in Italy",
    "eismea": "European Innovation Council and SMEs Executive Agency (EISMEA)",
    "eic": "European Innovation Council (EIC)",
    "cinea": "European Climate, Infrastructure and Environment Executive Agency (CINEA)",
}
FEED_LANGUAGES = {"mimit-incentivi-aggiornamenti": "it"}


def sedia_rows(scale: int = 1) -> list[dict[str, Any]]:
    """The recorded SEDIA result rows, ``scale`` times (copies get suffixed ids and checksums)."""
    if scale < 1:
        raise ValueError("scale must be at least 1")
    path = RECORDINGS / "sedia" / "search_open_topics_2026.json"
    rows: list[dict[str, Any]] = json.loads(path.read_bytes())["results"]
    out = list(rows)
    for copy_number in range(1, scale):
        for row in rows:
            twin = copy.deepcopy(row)
            metadata = twin["metadata"]
            metadata["identifier"] = [f"{metadata['identifier'][0]}-X{copy_number}"]
            twin["checksum"] = f"{twin.get('checksum')}-{copy_number}"
            out.append(twin)
    return out


def install_site(server: ReplayServer, *, scale: int = 1) -> SourcesConfig:
    """Route every source on ``server``; return the sources configuration pointing at it.

    The schedules and every setting not about where a source lives keep their defaults.
    """
    server.route("POST", SEDIA_SEARCH_PATH, SediaSearch(sedia_rows(scale)))
    feeds = []
    for name, file in FEEDS.items():
        path = f"/feeds/{name}.xml"
        body = (RECORDINGS / "feeds" / file).read_bytes()
        server.route("GET", path, static(body, content_type="application/rss+xml", etag=f'"{name}-1"'))
        feeds.append(
            FeedConfig(
                name=name,
                url=server.url(path),
                language=FEED_LANGUAGES.get(name, "en"),
                publisher=FEED_PUBLISHERS[name],
            )
        )
    lombardia, _dataset, _portal = install_lombardia(server)
    incentivi = install_incentivi(server)
    return SourcesConfig(
        lombardia=lombardia,
        sedia=SediaConfig(search_url=server.url(SEDIA_SEARCH_PATH), page_size=100),
        incentivi=incentivi,
        feeds=FeedsConfig(feeds=feeds),
        unioncamere=install_unioncamere(server),
        openinnovation=install_openinnovation(server),
        burl=install_burl(server),
    )
