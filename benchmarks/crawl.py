"""Full crawl, then a no-change re-crawl, of every source against the replay server on loopback.

    python benchmarks/crawl.py [--scale N] [--keep DIR]

Prints requests, bytes and seconds per source for both crawls, and checks the targets of the
crawler issue: the re-crawl makes no detail or full-metadata request, and moves less than 20 % of
the full crawl's bytes. Exit code 1 when a target is missed or a source did not end "ok".

The bodies are the recordings and fixtures of the tests (``tests/data/crawler``): SEDIA's real
search page, the synthetic feeds, the Lombardy registry/portal and the incentivi.gov.it Solr
documents (see each README). ``--scale N`` multiplies the SEDIA topics N times (copies with
suffixed identifiers and checksums) to see the listing/full-metadata ratio at a more realistic
size; the real API answers ~170 KB per 100 light rows and ~1.9 MB per 100 full rows.

Bytes are Scrapy's ``downloader/response_bytes`` (bodies and headers as received, robots.txt
included); seconds include the start of each crawl process (about one second each).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crawler.config import CrawlConfig, FeedConfig, FeedsConfig, SediaConfig, SourcesConfig  # noqa: E402
from crawler.run import SourceSummary, run_crawl  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.records import ROME  # noqa: E402
from tests.fakes.replay import ReplayServer, SediaSearch, static  # noqa: E402
from tests.fakes.replay_regional import install_incentivi, install_lombardia  # noqa: E402

DATA = ROOT / "tests" / "data" / "crawler"
NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)
SEARCH = "/search-api/prod/rest/search"
FEEDS = {
    "mimit-incentivi-aggiornamenti": "mimit_incentivi_aggiornamenti_synthetic.xml",
    "eismea": "eismea_calls_synthetic.xml",
    "eic": "eic_calls_synthetic.xml",
    "cinea": "cinea_calls_synthetic.xml",
}
MAX_RATIO = 0.20


def sedia_rows(scale: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((DATA / "sedia" / "search_open_topics_2026.json").read_bytes())[
        "results"
    ]
    out = list(rows)
    for copy_number in range(1, scale):
        for row in rows:
            twin = copy.deepcopy(row)
            metadata = twin["metadata"]
            metadata["identifier"] = [f"{metadata['identifier'][0]}-X{copy_number}"]
            twin["checksum"] = f"{twin.get('checksum')}-{copy_number}"
            out.append(twin)
    return out


def build_site(server: ReplayServer, scale: int) -> SourcesConfig:
    server.route("POST", SEARCH, SediaSearch(sedia_rows(scale)))
    feeds = []
    for name, file in FEEDS.items():
        path = f"/feeds/{name}.xml"
        body = (DATA / "feeds" / file).read_bytes()
        server.route("GET", path, static(body, content_type="application/rss+xml", etag=f'"{name}-1"'))
        feeds.append(FeedConfig(name=name, url=server.url(path)))
    lombardia, _dataset, _portal = install_lombardia(server)
    incentivi = install_incentivi(server)
    return SourcesConfig(
        lombardia=lombardia,
        sedia=SediaConfig(search_url=server.url(SEARCH), page_size=100),
        incentivi=incentivi,
        feeds=FeedsConfig(feeds=feeds),
    )


def table(title: str, summaries: list[SourceSummary], seconds: float) -> None:
    print(f"\n{title} ({seconds:.1f} s)")
    print(
        f"  {'source':<10} {'outcome':<9} {'new':>4} {'chg':>4} {'same':>5} {'err':>4} "
        f"{'requests':>8} {'detail':>6} {'bytes':>10} {'seconds':>8}"
    )
    for s in summaries:
        detail = s.kinds.get("detail", {}).get("requests", 0)
        print(
            f"  {s.name:<10} {s.outcome:<9} {s.new:>4} {s.changed:>4} {s.unchanged:>5} {s.errors:>4} "
            f"{s.requests:>8} {detail:>6} {s.bytes:>10} {s.seconds:>8.2f}"
        )
    print(
        f"  {'total':<10} {'':<9} {'':>4} {'':>4} {'':>5} {'':>4} {sum(s.requests for s in summaries):>8} "
        f"{'':>6} {sum(s.bytes for s in summaries):>10}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1, help="multiply the SEDIA topics (default 1)")
    parser.add_argument("--keep", type=Path, help="keep the SQLite database in this directory")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        directory = args.keep or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        db_path = directory / "benchmark.db"
        db_path.unlink(missing_ok=True)
        url = f"sqlite:///{db_path}"
        database = Database(url)
        database.upgrade()
        database.dispose()
        crawl = CrawlConfig(download_delay=0, retry_backoff=0.01, lock_dir=str(Path(tmp) / "locks"))
        with ReplayServer() as server:
            sources = build_site(server, args.scale)
            started = time.monotonic()
            full = run_crawl(url, [], crawl=crawl, sources_config=sources, now=NOW)
            full_seconds = time.monotonic() - started
            started = time.monotonic()
            again = run_crawl(url, [], crawl=crawl, sources_config=sources, now=NOW)
            again_seconds = time.monotonic() - started

    table("Full crawl", full, full_seconds)
    table("No-change re-crawl", again, again_seconds)
    full_bytes = sum(s.bytes for s in full)
    again_bytes = sum(s.bytes for s in again)
    ratio = again_bytes / full_bytes if full_bytes else 0.0
    detail_requests = sum(s.kinds.get("detail", {}).get("requests", 0) for s in again)
    not_ok = [s.name for s in [*full, *again] if s.outcome != "ok"]
    print(f"\nre-crawl bytes: {again_bytes} of {full_bytes} = {ratio:.1%} (target < {MAX_RATIO:.0%})")
    print(f"re-crawl detail/full-metadata requests: {detail_requests} (target 0)")
    failed = ratio >= MAX_RATIO or detail_requests > 0 or bool(not_ok)
    if not_ok:
        print(f"sources not ok: {', '.join(not_ok)}")
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
