"""Full crawl, then a no-change re-crawl, of every source against the replay server on loopback.

    python benchmarks/crawl.py [--scale N] [--keep DIR]

Prints requests, bytes and seconds per source for both crawls, and checks the targets of the
crawler issue: the re-crawl makes no detail or full-metadata request, and moves less than 20 % of
the full crawl's bytes. Exit code 1 when a target is missed or a source did not end "ok".

The site is :func:`crawler.replay.site.install_site` over the bundled recordings
(``crawler/replay/recordings``, copies of the crawler's test inputs): SEDIA's real search page,
the synthetic feeds, the Lombardy registry/portal, the incentivi.gov.it Solr documents, and
the synthetic Unioncamere pages, Open Innovation pages (one around real fragments) and BURL
search answers (see its README). ``--scale N`` multiplies the SEDIA topics N times (copies with
suffixed identifiers and checksums) to see the listing/full-metadata ratio at a more realistic
size; the real API answers ~170 KB per 100 light rows and ~1.9 MB per 100 full rows.

Bytes are Scrapy's ``downloader/response_bytes`` (bodies and headers as received, robots.txt
included); seconds include the start of each crawl process (about one second each).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crawler.config import CrawlConfig  # noqa: E402
from crawler.replay.server import ReplayServer  # noqa: E402
from crawler.replay.site import RECORDED_AT, install_site  # noqa: E402
from crawler.run import SourceSummary, run_crawl  # noqa: E402
from storage.db import Database  # noqa: E402

NOW = RECORDED_AT
MAX_RATIO = 0.20


def fetched_details(summary: SourceSummary) -> int:
    """Detail pages fetched (304 answers to conditional requests not counted)."""
    detail = summary.kinds.get("detail", {})
    return detail.get("requests", 0) - detail.get("not_modified", 0)


def table(title: str, summaries: list[SourceSummary], seconds: float) -> None:
    print(f"\n{title} ({seconds:.1f} s)")
    print(
        f"  {'source':<14} {'outcome':<9} {'new':>4} {'chg':>4} {'same':>5} {'err':>4} "
        f"{'requests':>8} {'detail':>6} {'bytes':>10} {'seconds':>8}"
    )
    for s in summaries:
        detail = fetched_details(s)
        print(
            f"  {s.name:<14} {s.outcome:<9} {s.new:>4} {s.changed:>4} {s.unchanged:>5} {s.errors:>4} "
            f"{s.requests:>8} {detail:>6} {s.bytes:>10} {s.seconds:>8.2f}"
        )
    print(
        f"  {'total':<14} {'':<9} {'':>4} {'':>4} {'':>5} {'':>4} {sum(s.requests for s in summaries):>8} "
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
            sources = install_site(server, scale=args.scale)
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
    # A detail page asked conditionally and answered 304 (Unioncamere's) is checked, not fetched.
    detail_requests = sum(fetched_details(s) for s in again)
    not_ok = [s.name for s in [*full, *again] if s.outcome != "ok"]
    print(f"\nre-crawl bytes: {again_bytes} of {full_bytes} = {ratio:.1%} (target < {MAX_RATIO:.0%})")
    print(f"re-crawl detail/full-metadata pages fetched: {detail_requests} (target 0; 304s not counted)")
    failed = ratio >= MAX_RATIO or detail_requests > 0 or bool(not_ok)
    if not_ok:
        print(f"sources not ok: {', '.join(not_ok)}")
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
