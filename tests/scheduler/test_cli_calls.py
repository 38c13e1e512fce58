"""The command line through Typer's runner, on a real SQLite file and a pinned clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scheduler.cli import app

NOW = "2026-09-02T09:00:00"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    for var in list(__import__("os").environ):
        if var.startswith("SENTINELLA_") and var != "SENTINELLA_TEST_POSTGRES_URL":
            monkeypatch.delenv(var)
    values = {"SENTINELLA_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "SENTINELLA_NOW": NOW}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


LINES = [
    {
        "title": "Voucher fiere internazionali 2026",
        "url": "https://example.org/fiere",
        "closes": "2026-10-31",
        "budget_eur": 500000,
        "granting_body": "Camera di Commercio di Cremona",
    },
    {
        "title": "Bando packaging sostenibile",
        "url": "https://example.org/packaging",
        "source": "newsletter",
        "source_id": "nl-7",
        "opens": "2026-09-15T10:00",
        "closes": "2026-12-01T12:00:00+01:00",
        "summary": "Contributi per imballaggi riciclabili",
        "budget_eur": "1250000.50",
    },
    {"title": "Bando già chiuso", "url": "https://example.org/chiuso", "closes": "2026-08-01"},
]


def write_lines(path: Path, rows: list[object], extra: list[str] = ()) -> Path:  # type: ignore[assignment]
    path.write_text("\n".join([json.dumps(r) for r in rows] + list(extra)) + "\n", encoding="utf-8")
    return path


def test_import_then_list_show_search(env: dict[str, str], tmp_path: Path) -> None:
    file = write_lines(tmp_path / "calls.jsonl", LINES)
    code, out, err = run("calls", "import", str(file))
    assert code == 0, err
    assert "3 new" in out

    code, out, _ = run("calls", "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert {r["title"] for r in rows} == {line["title"] for line in LINES}
    packaging = next(r for r in rows if r["source"] == "newsletter")
    assert packaging["status"] == "forthcoming"
    assert packaging["budget_total"] == "1250000.50"
    assert packaging["opens"].startswith("2026-09-15T10:00:00+02:00") or packaging["opens"].startswith(
        "2026-09-15T08:00:00+00:00"
    )

    code, out, _ = run("calls", "list", "--open", "--json")
    # Open means accepting applications now: the forthcoming and the closed call are left out.
    assert {r["title"] for r in json.loads(out)} == {LINES[0]["title"]}

    code, out, _ = run("calls", "list", "--source", "newsletter")
    assert code == 0 and "packaging" in out and "fiere" not in out

    code, out, _ = run("calls", "search", "IMBALLAGGI", "--json")
    assert [r["title"] for r in json.loads(out)] == [LINES[1]["title"]]

    call_id = packaging["id"]
    code, out, _ = run("calls", "show", str(call_id))
    assert code == 0
    assert "Bando packaging sostenibile" in out and "new" in out and "€ 1.250.000,50" in out
    code, out, _ = run("calls", "show", str(call_id), "--json")
    data = json.loads(out)
    assert data["call"]["id"] == call_id and data["events"][0]["kind"] == "new"

    # Same file again: nothing new, nothing changed.
    code, out, _ = run("calls", "import", str(file))
    assert code == 0 and "0 new, 0 changed, 3 unchanged" in out


def test_import_reports_each_bad_line_and_keeps_good_ones(env: dict[str, str], tmp_path: Path) -> None:
    file = write_lines(
        tmp_path / "mixed.jsonl",
        [
            LINES[0],
            {"url": "https://example.org/x"},
            {"title": "x", "url": "ftp://x"},
            {"title": "x", "url": "https://e.org/y", "closes": "31/12/2026"},
            {"title": "x", "url": "https://e.org/z", "colour": 1},
            {"title": "x", "url": "https://e.org/w", "source": "sedia"},
        ],
        extra=["{not json", ""],
    )
    code, out, err = run("calls", "import", str(file))
    assert code == 1
    assert "line 2: missing 'title'" in err
    assert "line 3:" in err and "http" in err
    assert "line 4:" in err and "bad date" in err
    assert "line 5: unknown field(s): colour" in err
    assert "line 6: 'source' 'sedia' is a crawled source" in err
    assert "line 7: not valid JSON" in err
    assert "Imported 1 call(s)" in out
    code, out, _ = run("calls", "list", "--json")
    assert len(json.loads(out)) == 1


def test_clear_errors(env: dict[str, str], tmp_path: Path) -> None:
    code, _, err = run("calls", "show", "999")
    assert code == 1 and "no call with id 999" in err and "Traceback" not in err
    code, _, err = run("calls", "list", "--since", "yesterday")
    assert code == 1 and "bad date" in err
    code, _, err = run("calls", "import", str(tmp_path / "missing.jsonl"))
    assert code == 1 and "no such file" in err


def test_unreachable_database_is_one_line(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINELLA_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    code, _, err = run("calls", "list")
    assert code == 1
    assert "cannot reach the database" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_bad_setting_is_reported_with_key(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[crawl]\nconcurrency = 9\n", encoding="utf-8")
    code, _, err = run("--config", str(config), "sources")
    assert code == 1 and "crawl.concurrency" in err and str(config) in err


def test_sources_and_db_upgrade(env: dict[str, str]) -> None:
    code, out, _ = run("db", "upgrade")
    assert code == 0 and "up to date" in out
    code, out, _ = run("sources", "--json")
    assert code == 0 and json.loads(out) == []


def test_list_by_kind(env: dict[str, str], tmp_path: Path) -> None:
    from datetime import datetime

    from storage.db import Database
    from storage.ingest import ingest
    from storage.records import ROME, CallRecord

    db = Database(env["SENTINELLA_DATABASE_URL"])
    db.upgrade()
    records = [
        CallRecord(
            source="burl", source_id="1", url="https://burl.example/1", title="Proroga", kind="notice"
        ),
        CallRecord(
            source="openinnovation",
            source_id="proposal:1",
            url="https://oi.example/1",
            title="Ricerca partner",
            kind="partner_search",
        ),
        CallRecord(source="manual", source_id="x", url="https://example.org/x", title="Un bando"),
    ]
    ingest(db, records, now=datetime(2026, 9, 2, 9, 0, tzinfo=ROME))
    db.dispose()
    titles = {}
    for kind in ("call", "notice", "partner_search", "all"):
        code, out, err = run("calls", "list", "--kind", kind, "--json")
        assert code == 0, err
        titles[kind] = sorted(r["title"] for r in json.loads(out))
    assert titles == {
        "call": ["Un bando"],
        "notice": ["Proroga"],
        "partner_search": ["Ricerca partner"],
        "all": ["Proroga", "Ricerca partner", "Un bando"],
    }
    code, _out, err = run("calls", "list", "--kind", "bandi")
    assert code != 0 and "--kind" in err
