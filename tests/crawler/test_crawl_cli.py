"""End to end through the command line: replay server → ``sentinella crawl`` → calls in the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.calls import list_calls
from storage.db import Database
from tests.crawler.expected_cases import DATA
from tests.fakes.replay import ReplayServer, Reply, SediaSearch, static

pytestmark = pytest.mark.integration

SEARCH = "/search-api/prod/rest/search"
SENTINELLA = [sys.executable, "-c", "from scheduler.cli import main; main()"]


def _env() -> dict[str, str]:
    # The settings must come from the file only, whatever the caller's environment says.
    return {k: v for k, v in os.environ.items() if not k.startswith("SENTINELLA_")}


@pytest.fixture(scope="module")
def crawl_command() -> None:
    done = subprocess.run([*SENTINELLA, "crawl", "--help"], capture_output=True, env=_env(), timeout=60)
    if done.returncode != 0:
        pytest.skip("the `sentinella crawl` command is not there yet")


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as replay:
        rows = json.loads((DATA / "sedia" / "search_open_topics_2026.json").read_bytes())["results"]
        replay.route("POST", SEARCH, SediaSearch(rows))
        body = (DATA / "feeds" / "eismea_calls_synthetic.xml").read_bytes()
        replay.route(
            "GET", "/feeds/eismea.xml", static(body, content_type="application/rss+xml", etag='"e1"')
        )
        yield replay


def _config(tmp_path: Path, server: ReplayServer, db: Database) -> Path:
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
""",
        encoding="utf-8",
    )
    return path


def test_sentinella_crawl_stores_the_calls(
    crawl_command: None, server: ReplayServer, sqlite_db: Database, tmp_path: Path
) -> None:
    config = _config(tmp_path, server, sqlite_db)
    done = subprocess.run(
        [*SENTINELLA, "--config", str(config), "crawl", "sedia", "feeds"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(list_calls(sqlite_db, source="sedia")) == 6
    assert len(list_calls(sqlite_db, source="feeds")) == 3
    assert "sedia" in done.stdout and "feeds" in done.stdout


def test_sentinella_crawl_exits_non_zero_when_a_source_fails(
    crawl_command: None, server: ReplayServer, sqlite_db: Database, tmp_path: Path
) -> None:
    server.route("POST", SEARCH, Reply(500))
    config = _config(tmp_path, server, sqlite_db)
    done = subprocess.run(
        [*SENTINELLA, "--config", str(config), "crawl", "sedia"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert done.returncode != 0
    assert list_calls(sqlite_db, source="sedia") == []
