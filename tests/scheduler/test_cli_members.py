"""Members, matching dry run, dispatch and digest through the command line (console delivery)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scheduler.cli import app

MEMBERS = """
[[member]]
name = "Laura Bianchi"
organisation = "Example Packaging srl"
role = "member"
email = "laura@example.com"
telegram_chat_id = 123456789
language = "it"
[member.profile]
topics = ["packaging", "sostenibilita-circolare"]
keywords = ["flaconi riciclabili", "airless"]
exclude = ["agricoltura"]
beneficiaries = ["pmi"]
min_budget_eur = 0

[[member]]
name = "Giulia Staff"
role = "staff"
email = "giulia@example.org"

[[member]]
name = "Broken"
email = "not-an-email"
[member.profile]
topics = ["nope"]
"""

CALLS = [
    {
        "title": "Bando imballaggi sostenibili: flaconi riciclabili per PMI lombarde <b>2026</b>",
        "url": "https://example.org/imb",
        "closes": "2026-12-01",
        "summary": "Contributi a fondo perduto per PMI con sede operativa in Lombardia",
        "budget_eur": 2000000,
    },
    {
        "title": "Contributi per imprese agricole",
        "url": "https://example.org/agri",
        "closes": "2026-12-01",
        "summary": "Riservato alle imprese agricole: packaging dei prodotti",
    },
]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in list(os.environ):
        if var.startswith("SENTINELLA_") and var != "SENTINELLA_TEST_POSTGRES_URL":
            monkeypatch.delenv(var)
    monkeypatch.setenv("SENTINELLA_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SENTINELLA_NOW", "2026-09-02T09:00:00")
    (tmp_path / "members.toml").write_text(MEMBERS, encoding="utf-8")
    (tmp_path / "calls.jsonl").write_text("\n".join(json.dumps(c) for c in CALLS) + "\n", encoding="utf-8")
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_members_import_is_idempotent_and_reports_bad_entries(env: Path) -> None:
    code, out, _ = run("members", "import", "members.toml")
    assert code == 1
    assert "member 3 (not-an-email): email" in out and "unknown topic 'nope'" in out
    assert "2 created" in out
    code, out, _ = run("members", "import", "members.toml")
    assert "0 created" in out and "2 unchanged" in out
    code, out, _ = run("members", "list", "--json")
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["Laura Bianchi", "Giulia Staff"]
    code, out, _ = run("members", "show", "laura@example.com", "--json")
    shown = json.loads(out)
    assert shown["profile"]["keywords"] == ["flaconi riciclabili", "airless"]


def test_add_disable_invite_digest(env: Path) -> None:
    code, out, err = run(
        "members",
        "add",
        "--name",
        "Marco Rossi",
        "--email",
        "marco@example.org",
        "--topics",
        "packaging,energia",
    )
    assert code == 0, err
    assert "Added member #1" in out
    code, out, _ = run(
        "members",
        "add",
        "--name",
        "Marco Rossi",
        "--email",
        "marco@example.org",
        "--organisation",
        "Acme srl",
    )
    code, out, _ = run(
        "members", "add", "--name", "Marco Rossi", "--email", "marco@example.org", "--language", "en"
    )
    code, out, _ = run("members", "show", "1", "--json")
    shown = json.loads(out)["member"]
    assert shown["organisation"] == "Acme srl" and shown["language"] == "en"  # updates keep what they omit
    code, _, err = run("members", "add", "--name", "X", "--email", "x@example.org", "--topics", "astrology")
    assert code == 1 and "unknown topic 'astrology'" in err
    code, _, err = run("members", "digest", "1")
    assert code == 1 and "for staff and admins" in err
    code, out, _ = run("members", "invite", "--role", "staff", "--days", "3")
    assert code == 0 and "https://t.me/" in out and "2026-09-05 09:00" in out
    code, _, err = run("members", "invite", "--role", "king")
    assert code == 1 and "--role" in err
    code, out, _ = run("members", "disable", "marco@example.org")
    assert code == 0 and "disabled" in out
    code, out, _ = run("members", "list", "--json")
    assert json.loads(out) == []
    code, _, err = run("members", "show", "999")
    assert code == 1 and "no member '999'" in err


def test_match_dispatch_and_digest(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run("members", "import", "members.toml")
    code, out, err = run("calls", "import", "calls.jsonl")
    assert code == 0, err

    code, out, _ = run("match", "--explain", "--json")
    rows = json.loads(out)
    laura = [r for r in rows if r["member_id"] == 1]
    matched = [r for r in laura if r["matched"]]
    assert [r["title"] for r in matched] == [CALLS[0]["title"]]
    excluded = [r for r in laura if not r["matched"]]
    assert excluded and excluded[0]["excluded_by"]

    code, out, _ = run("dispatch")
    assert code == 0
    assert "Planned 2 alert(s)" in out  # Laura on Telegram and on e-mail (console stands in for both)
    assert "<b>" in out and "&lt;" not in out  # printed as text, neither interpreted nor escaped
    code, out, _ = run("dispatch")
    assert "Planned 0 alert(s)" in out and "claimed 0" in out  # nothing is sent twice

    code, out, _ = run("members", "digest", "giulia@example.org")
    assert code == 0
    # Every command starts its pinned clock at the same instant: the digest looks from later on.
    monkeypatch.setenv("SENTINELLA_NOW", "2026-09-02T10:00:00")
    code, out, _ = run("digest", "--out", "digest.html")
    assert code == 0
    html = (env / "digest.html").read_text(encoding="utf-8")
    assert "&lt;b&gt;2026&lt;/b&gt;" in html and "<b>2026</b>" not in html
    code, out, _ = run("digest", "--send")
    assert code == 0 and "Digest sent to 1 recipient(s)" in out


def test_an_unsubscribe_request_by_mail_is_carried_out(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The List-Unsubscribe mailto: carries the recipient's signed token in its subject; staff
    # paste the request and Sentinella does what the one-click link would.
    from urllib.parse import unquote, urlsplit

    from notifier.messages.unsubscribe import links
    from scheduler.settings import load_settings
    from storage import members
    from storage.db import Database

    secret = "k" * 40
    monkeypatch.setenv("SENTINELLA_WEB__SECRET_KEY", secret)
    assert run("members", "import", "members.toml")[0] == 1  # one bad entry, two imported
    db = Database(load_settings(read_file=False).database_url)
    laura = members.find_member(db, email="laura@example.com")
    giulia = members.find_member(db, email="giulia@example.org")
    assert laura is not None and giulia is not None
    members.update_member(db, giulia.id, now=laura.created_at, digest_email=True)

    mailto = links("https://bandi.example.org", secret, laura.id, "alerts", "avvisi@example.org").mailto
    subject = unquote(urlsplit(mailto).query.removeprefix("subject="))
    code, out, err = run("members", "unsubscribe", subject)
    assert code == 0, err
    assert "e-mail alerts turned off" in out
    assert "email" not in (members.get_profile(db, laura.id) or {}).get("channels", [])

    digest = links("https://bandi.example.org", secret, giulia.id, "digest", "avvisi@example.org").mailto
    code, out, _ = run("members", "unsubscribe", "Re:", urlsplit(digest).query.removeprefix("subject="))
    assert code == 0 and "e-mail digest turned off" in out
    after = members.get_member(db, giulia.id)
    assert after is not None and not after.digest_email

    forged = links("https://bandi.example.org", "x" * 40, laura.id, "digest", "a@example.org").mailto
    code, out, err = run("members", "unsubscribe", unquote(forged))
    assert code == 1 and "no valid unsubscribe token" in out + err
    monkeypatch.delenv("SENTINELLA_WEB__SECRET_KEY")
    code, out, err = run("members", "unsubscribe", subject)
    assert code == 1 and "web.secret_key" in out + err
