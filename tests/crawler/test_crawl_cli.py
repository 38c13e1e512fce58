"""End to end through the command line: replay server → ``sentinella crawl`` → calls in the database.

Every source is crawled, its base URLs pointing at one replay server (SEDIA's real rows, a
synthetic feed, the Lombardy registry and portal, the incentivi.gov.it Solr documents). A command
line that does not start fails these tests: nothing is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crawler.config import (
    BurlConfig,
    IncentiviConfig,
    LombardiaConfig,
    OpeninnovationConfig,
    UnioncamereConfig,
)
from crawler.replay.venues import BURL_API, install_burl, install_openinnovation, install_unioncamere
from storage.calls import list_calls
from storage.db import Database
from tests.crawler.expected_cases import DATA
from tests.fakes.replay import ReplayServer, Reply, SediaSearch, static
from tests.fakes.replay_regional import DETAIL_PREFIX, SOLR_PATH, install_incentivi, install_lombardia

pytestmark = pytest.mark.integration

SEARCH = "/search-api/prod/rest/search"
SENTINELLA = [sys.executable, "-c", "from scheduler.cli import main; main()"]


def _env() -> dict[str, str]:
    # The settings must come from the file only, whatever the caller's environment says.
    return {k: v for k, v in os.environ.items() if not k.startswith("SENTINELLA_")}


@dataclass
class Site:
    server: ReplayServer
    lombardia: LombardiaConfig
    incentivi: IncentiviConfig
    unioncamere: UnioncamereConfig
    openinnovation: OpeninnovationConfig
    burl: BurlConfig


@pytest.fixture
def site() -> Iterator[Site]:
    with ReplayServer() as replay:
        rows = json.loads((DATA / "sedia" / "search_open_topics_2026.json").read_bytes())["results"]
        replay.route("POST", SEARCH, SediaSearch(rows))
        body = (DATA / "feeds" / "eismea_calls_synthetic.xml").read_bytes()
        replay.route(
            "GET", "/feeds/eismea.xml", static(body, content_type="application/rss+xml", etag='"e1"')
        )
        lombardia, _dataset, _portal = install_lombardia(replay)
        incentivi = install_incentivi(replay)
        yield Site(
            replay,
            lombardia,
            incentivi,
            install_unioncamere(replay),
            install_openinnovation(replay),
            install_burl(replay),
        )


def test_the_command_line_starts() -> None:
    done = subprocess.run(
        [*SENTINELLA, "crawl", "--help"], capture_output=True, text=True, env=_env(), timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "crawl" in done.stdout


def _config(tmp_path: Path, site: Site, db: Database) -> Path:
    server = site.server
    path = tmp_path / "sentinella.toml"
    path.write_text(
        f"""
database_url = "{db.url}"
now = "2026-09-02T09:00:00+02:00"

[crawl]
download_delay = 0
retry_backoff = 0.01
max_retries = 0
lock_dir = "{tmp_path / "locks"}"

[sources.sedia]
search_url = "{server.url(SEARCH)}"
page_size = 4

[[sources.feeds.feeds]]
name = "eismea"
url = "{server.url("/feeds/eismea.xml")}"
language = "en"

[sources.lombardia]
dataset_url = "{site.lombardia.dataset_url}"
portal_url = "{site.lombardia.portal_url}"
page_size = {site.lombardia.page_size}

[sources.incentivi]
base_url = "{site.incentivi.base_url}"

[sources.unioncamere]
base_url = "{site.unioncamere.base_url}"

[sources.openinnovation]
base_url = "{site.openinnovation.base_url}"

[sources.burl]
api_url = "{site.burl.api_url}"
""",
        encoding="utf-8",
    )
    return path


def test_sentinella_crawl_stores_the_calls_of_every_source(
    site: Site, sqlite_db: Database, tmp_path: Path
) -> None:
    config = _config(tmp_path, site, sqlite_db)
    done = subprocess.run(
        [*SENTINELLA, "--config", str(config), "crawl"],  # every enabled source
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    counts = {
        s: len(list_calls(sqlite_db, source=s, kinds=None))
        for s in ("sedia", "feeds", "lombardia", "incentivi")
    }
    assert counts == {"sedia": 6, "feeds": 3, "lombardia": 5, "incentivi": 5}
    # One feed entry is news, not a call (an info day): stored as a notice.
    notices = [c for c in list_calls(sqlite_db, source="feeds", kinds=("notice",))]
    assert [c.title for c in notices] == ["Info day on the Single Market Programme calls"]
    for source in counts:
        assert source in done.stdout
    assert site.server.requests_to(DETAIL_PREFIX + "RLP12026052483") == []  # canonical URLs from the listing
    assert site.server.requests_to(SOLR_PATH)


def test_sentinella_crawl_of_the_decree_venues(site: Site, sqlite_db: Database, tmp_path: Path) -> None:
    config = _config(tmp_path, site, sqlite_db)
    for names in (["lombardia"], ["burl", "unioncamere", "openinnovation"]):
        done = subprocess.run(
            [*SENTINELLA, "--config", str(config), "crawl", *names],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    for name in ("burl", "unioncamere", "openinnovation"):
        assert name in done.stdout
    assert len(list_calls(sqlite_db, source="unioncamere")) == 3
    assert len(list_calls(sqlite_db, source="openinnovation", kinds=["partner_search"])) == 3
    assert len(list_calls(sqlite_db, source="burl", kinds=["notice"])) == 5
    assert site.server.requests_to(BURL_API + "/ricercaAvanzata", "PUT")


def test_sentinella_crawl_exits_non_zero_when_a_source_fails(
    site: Site, sqlite_db: Database, tmp_path: Path
) -> None:
    site.server.route("POST", SEARCH, Reply(500))
    config = _config(tmp_path, site, sqlite_db)
    done = subprocess.run(
        [*SENTINELLA, "--config", str(config), "crawl", "sedia"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert done.returncode != 0
    assert list_calls(sqlite_db, source="sedia") == []
    assert "failed" in done.stdout
