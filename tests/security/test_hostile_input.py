"""Probes: hostile and careless files through ``sentinella calls import`` / ``members import``.

Each probe runs the installed console script on SQLite and on PostgreSQL (when configured):
every bad record is one short line error (reason first, the value cut), the good records around
it are all stored, control characters and terminal escapes never reach the database or the
terminal, and search text is capped. The lines are synthetic, in the import format's real shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.calls import list_calls
from storage.db import Database
from storage.ingest import ingest
from storage.records import ROME, CallRecord, CallStatus
from tests.conftest import POSTGRES_URL, _reset_postgres
from tests.security.cli import Result, Sentinella

pytestmark = pytest.mark.integration

#: What must never reach a terminal raw: ESC, BEL, the C1 CSI, bidi overrides and isolates.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
CLIPBOARD = "\x1b]52;c;ZWNobyBwd25lZA==\x07"
CLEAR = "\x1b[2J\x1b[H"
RLO = "\u202e"


def good(n: int, **extra: object) -> str:
    line = {"title": f"Bando prova {n}", "url": f"https://example.org/bando/{n}", "closes": "2026-12-01"}
    line.update(extra)
    return json.dumps(line, ensure_ascii=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sentinella]:
    if request.param == "postgres":
        if not POSTGRES_URL:
            pytest.skip("PostgreSQL not configured (set SENTINELLA_TEST_POSTGRES_URL)")
        _reset_postgres(POSTGRES_URL)
        yield Sentinella(tmp_path, SENTINELLA_DATABASE_URL=POSTGRES_URL)
    else:
        yield Sentinella(tmp_path)


def import_file(run: Sentinella, name: str, lines: list[bytes | str]) -> Result:
    path = run.cwd / name
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode("utf-8") for x in lines) + b"\n")
    return run("calls", "import", name)


def error_lines(result: Result) -> list[str]:
    return [line for line in result.err.splitlines() if line.startswith("error:")]


def test_every_bad_record_is_one_line_and_the_good_ones_are_stored(cli: Sentinella) -> None:
    huge_id = "x" * 10_000
    lines: list[bytes | str] = [
        good(1),
        '{"title": "a", "url": "https://e.org/a", "budget_eur": 1e400}',  # Decimal overflow
        good(3, budget_eur="100000000000000000"),  # 1e17 €: past any real call and the cents column
        good(4, closes="9999-12-31T23:59:59"),  # a year the engines cannot store in UTC
        good(5, closes="0001-01-01"),
        "[" * 100_000 + "]" * 100_000,  # JSON nested 100,000 deep
        good(6, source_id=huge_id),
        good(7, url="https://trusted.example@evil.example/a"),  # user-info: shows one host, reaches another
        b'{"title": "caf\xe9", "url": "https://e.org/latin1"}',  # Latin-1, not UTF-8
        '{"title": "incompleto"',
        good(8, title="Nul\u0000 nel titolo"),  # NUL: PostgreSQL refuses it in text and JSON
        good(9, title="Riga\u2028separata"),  # a raw U+2028 stays inside its line
        good(10, title=f"Appunti{CLIPBOARD}{CLEAR} e {RLO}fdp.exe", summary="ok\x9b31mrosso\ttab"),
        good(11),
    ]
    result = import_file(cli, "calls.jsonl", lines)
    assert result.code == 1
    errors = error_lines(result)
    numbers = [int(re.match(r"error: line (\d+):", e).group(1)) for e in errors]  # type: ignore[union-attr]
    assert numbers == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert all(len(e) < 300 for e in errors), "a hostile value filled the error line"
    reasons = dict(zip(numbers, errors, strict=True))
    assert "budget_eur" in reasons[2] and "budget_eur" in reasons[3] and "out of range" in reasons[3]
    assert "date out of range" in reasons[4] and "date out of range" in reasons[5]
    assert "nested too deeply" in reasons[6]
    assert reasons[7].startswith("error: line 7: 'source_id' longer than 255")
    assert "user name or password" in reasons[8]
    assert "not UTF-8" in reasons[9] and "not valid JSON" in reasons[10]
    assert "Imported 5 call(s): 5 new" in result.out and "9 error(s)" in result.out

    listing = cli("calls", "list", "--json")
    titles = {c["title"] for c in json.loads(listing.out)}
    assert titles == {
        "Bando prova 1",
        "Nul nel titolo",
        "Riga\u2028separata",
        "Appunti e fdp.exe",
        "Bando prova 11",
    }
    [tainted] = [c for c in json.loads(listing.out) if c["title"].startswith("Appunti")]
    assert tainted["summary"] == "okrosso\ttab"  # the whole C1 escape sequence went
    for args in (["calls", "list"], ["calls", "search", "appunti"], ["calls", "show", str(tainted["id"])]):
        shown = cli(*args)
        assert shown.code == 0, shown.err
        assert not RAW_CONTROL.search(shown.out.replace("\n", "").replace("\t", "")), args


def test_values_the_engine_cannot_store_fail_their_record_only(cli: Sentinella, tmp_path: Path) -> None:
    """The same limits hold for records that do not come from an import (a crawler's)."""
    db = Database(cli.env["SENTINELLA_DATABASE_URL"])
    db.upgrade()
    now = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)
    from decimal import Decimal

    def record(n: int, **fields: object) -> CallRecord:
        values: dict[str, object] = {
            "source": "feeds",
            "source_id": str(n),
            "url": f"https://example.org/{n}",
            "title": f"Bando {n}",
            "status": CallStatus.OPEN,
        }
        values.update(fields)
        return CallRecord(**values)  # type: ignore[arg-type]

    far = datetime(9999, 12, 31, 23, 59, tzinfo=ROME)
    result = ingest(
        db,
        [
            record(1),
            record(2, budget_total=Decimal("1e17")),
            record(3, closes=far),
            record(4, title="Titolo\x00con NUL", raw={"t": "\x00\x1b[2J"}),
            record(5, url="https://trusted.example@evil.example/x", links=("https://u:p@h.example/",)),
        ],
        now=now,
    )
    assert result.new == 3 and len(result.errors) == 2
    stored = {c.source_id: c for c in list_calls(db)}
    assert stored["4"].title == "Titolocon NUL"
    assert stored["5"].url == "https://evil.example/x"  # the real host, shown as it is
    db.dispose()


def test_import_errors_are_capped_and_counted(cli: Sentinella) -> None:
    result = import_file(cli, "junk.jsonl", [good(1)] + ["junk"] * 250 + [good(2)])
    errors = error_lines(result)
    assert len(errors) == 101
    assert errors[-1] == "error: … and 150 more error(s) not shown"
    assert "Imported 2 call(s)" in result.out and "250 error(s)" in result.out
    as_json = json.loads(cli("calls", "import", "junk.jsonl", "--json").out)
    assert len(as_json["errors"]) == 100 and as_json["error_count"] == 250


def test_search_text_is_capped(cli: Sentinella) -> None:
    import_file(cli, "one.jsonl", [good(1)])
    result = cli("calls", "search", "a" * 100_000)
    assert result.code == 1
    assert "search text too long" in result.err and "pattern too complex" not in result.err
    assert cli("calls", "search", "prova " * 33).code in (0, 1)  # just under the cap: a search


def test_members_import_bad_entries_fail_alone(cli: Sentinella) -> None:
    members = f"""
[[member]]
name = "Laura{CLEAR} Bianchi"
organisation = "Acme{CLIPBOARD} srl"
telegram_chat_id = 111

[[member]]
name = "Chat troppo lunga"
telegram_chat_id = 12345678901234567890

[[member]]
name = "Giulia"
email = "giulia@example.org"
"""
    (cli.cwd / "members.toml").write_text(
        members.replace("\x1b", "\\u001b").replace("\x07", "\\u0007"), "utf-8"
    )
    result = cli("members", "import", "members.toml")
    assert result.code == 1
    assert "member 2" in result.out and "telegram_chat_id" in result.out
    assert "2 created" in result.out
    listing = cli("members", "list", "--json")
    names = {m["name"]: m for m in json.loads(listing.out)}
    assert set(names) == {"Laura Bianchi", "Giulia"}
    assert names["Laura Bianchi"]["organisation"] == "Acme srl"


def test_terminal_escapes_already_stored_are_shown_not_obeyed(tmp_path: Path) -> None:
    """Rows written before the sanitiser (or by hand) still cannot drive the terminal."""
    cli = Sentinella(tmp_path)
    import_file(cli, "one.jsonl", [good(1)])
    db = Database(cli.env["SENTINELLA_DATABASE_URL"])
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE calls SET title = :t, summary = :s"), {"t": f"Vecchio{CLIPBOARD}{RLO}", "s": CLEAR}
        )
    db.dispose()
    for args in (["calls", "list"], ["calls", "show", "1"], ["calls", "search", "prova"]):
        shown = cli(*args)
        assert shown.code == 0, shown.err
        assert not RAW_CONTROL.search(shown.out.replace("\n", "")), args
        assert "␛" in shown.out, args
    as_json = cli("calls", "list", "--json").out
    assert not RAW_CONTROL.search(as_json.replace("\n", "")) and "\\u001b" in as_json and "\\u202e" in as_json
