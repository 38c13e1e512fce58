"""``sentinella demo`` end to end through the command line: bundled recordings on a loopback
replay server, real crawl processes, matching, console alerts, the digest file."""

from __future__ import annotations

import html
import socket
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import scheduler.demo as demo_module
from crawler.replay.regional import RECORDINGS
from notifier.matching.profiles import validate_members
from scheduler.cli import app
from scheduler.demo import DATABASE_NAME, DIGEST_NAME, DemoReport, demo_members, run_demo
from storage.calls import list_calls
from storage.db import Database

pytestmark = pytest.mark.integration

TESTS_DATA = Path(__file__).resolve().parents[1] / "data" / "crawler"
PACKAGING_MAKER = "Chiara Demo"


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags.add(tag)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def test_demo_runs_offline_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Any connection this process opens must go to loopback (the crawls' child processes are
    # checked below by counting what the replay server answered).
    elsewhere: list[Any] = []
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else ""
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            elsewhere.append(address)
            raise OSError("the demo must not touch the network")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    # Settings from the environment must not redirect the demo's sources or channels.
    monkeypatch.setenv("SENTINELLA_TELEGRAM__TOKEN", "123:MUST-NOT-BE-USED")
    monkeypatch.setenv("SENTINELLA_EMAIL__HOST", "smtp.invalid")
    reports: list[DemoReport] = []

    def keep_report(**kwargs: Any) -> DemoReport:
        report = run_demo(**kwargs)
        reports.append(report)
        return report

    monkeypatch.setattr(demo_module, "run_demo", keep_report)  # the command imports it when run
    keep = tmp_path / "kept"
    result = CliRunner().invoke(app, ["demo", "--keep", str(keep)])

    assert result.exit_code == 0, result.output
    assert not elsewhere
    (report,) = reports
    output = result.output

    # Every source was crawled into the database, and only the replay server was asked.
    assert set(report.calls) == {
        "lombardia",
        "sedia",
        "incentivi",
        "feeds",
        "unioncamere",
        "openinnovation",
        "burl",
    }
    assert all(n > 0 for n in report.calls.values()), report.calls
    assert all(s.outcome == "ok" for s in report.summaries), report.summaries
    assert report.crawl_requests > 0
    assert report.replay_requests == report.crawl_requests
    assert report.source_urls
    assert all(u == report.replay_url or u.startswith(report.replay_url + "/") for u in report.source_urls)
    db = Database(f"sqlite:///{keep / DATABASE_NAME}")
    try:
        assert len(list_calls(db, kinds=None)) == sum(report.calls.values())
    finally:
        db.dispose()

    # Alerts were printed as sent, and the packaging maker got at least one.
    by_name = {m.name: m for m in report.members}
    assert by_name[PACKAGING_MAKER].total >= 1
    assert report.alerts == report.plan.enqueued > 0
    assert f"telegram → {PACKAGING_MAKER}" in output
    for line in ("Summary", "calls stored:", "alerts sent:", str(keep / DIGEST_NAME)):
        assert line in output

    # The digest is written (next to the kept database) and scraped text is escaped in it.
    assert report.digest == keep / DIGEST_NAME
    page = report.digest.read_text(encoding="utf-8")
    assert "Credito d’imposta R&amp;S" in page
    assert "R&amp;amp;S" not in page
    parsed = _Text()
    parsed.feed(page)
    assert "script" not in parsed.tags
    assert "Credito d’imposta R&S" in html.unescape("".join(parsed.parts))


def test_demo_temporary_database_and_out_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "digest.html"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--language", "en"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "<html" in out.read_text(encoding="utf-8").lower()
    # Nothing else is left behind: the database was temporary.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digest.html"]
    assert "temporary, deleted" in result.output


def test_demo_refuses_an_unknown_language() -> None:
    result = CliRunner().invoke(app, ["demo", "--language", "de"])
    assert result.exit_code == 1
    assert "--language" in result.output


def test_demo_members_are_the_cluster_kinds_and_import_cleanly() -> None:
    data = demo_members()
    good, errors = validate_members(data)
    assert errors == []
    assert len(good) == 6
    assert [e.role for _, e in good].count("staff") == 1
    assert all((e.email or "").endswith("@example.org") for _, e in good)


def test_bundled_recordings_are_the_crawler_test_inputs() -> None:
    # One copy: the crawler tests read the bundled files through links beside their expected output.
    files = sorted(p for p in RECORDINGS.rglob("*") if p.is_file() and p.name != "README.md")
    assert files
    for path in files:
        linked = TESTS_DATA / path.relative_to(RECORDINGS)
        assert linked.is_symlink(), f"{linked} should link to {path}"
        assert linked.resolve() == path.resolve()
