"""Probes: the bot token never leaves the process, whatever the Bot API answers.

Through the installed console script, against the fake Bot API on loopback: a token the API
rejects (401, and python-telegram-bot quotes the token in its ``InvalidToken``), a 400 whose
description echoes the token, a 500 that puts it in its body; with and without ``--debug``.
Nothing printed, nothing stored in the database, carries it. Also ``sentinella config``: a
secret is never written as a value, and a masked placeholder read back is refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from scheduler.cli.common import AppContext, CliError, handles_errors
from tests.fakes.telegram_server import Answer, FakeBotAPI
from tests.security.cli import Sentinella

pytestmark = pytest.mark.integration

#: Shaped like a real token (bot id, colon, 35 characters), so nothing passes by being odd.
TOKEN = "7012345678:AAHsecretSECRETsecret0123456789abcde"
WEBHOOK_SECRET = "webhook-secret-value-42"

MEMBERS = """
[[member]]
name = "Laura Bianchi"
role = "admin"
telegram_chat_id = 123456789
language = "it"
[member.profile]
topics = ["packaging"]
keywords = ["flaconi riciclabili"]
"""

CALL = {
    "title": "Bando imballaggi: flaconi riciclabili per PMI",
    "url": "https://example.org/imb",
    "closes": "2026-12-01",
    "summary": "Contributi per PMI in Lombardia: packaging",
}


def _leaks(where: Path) -> list[str]:
    """Files under ``where`` (the database and its journals) that contain the token."""
    return [p.name for p in where.iterdir() if p.is_file() and _has_token(p.read_bytes().decode("latin-1"))]


def _has_token(text: str) -> bool:
    """Whether the token's secret part is in ``text``, in any case (python-telegram-bot
    rewrites the case of the error descriptions it quotes)."""
    return TOKEN.split(":")[1].lower() in text.lower()


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[tuple[Sentinella, FakeBotAPI]]:
    (tmp_path / "members.toml").write_text(MEMBERS, encoding="utf-8")
    (tmp_path / "calls.jsonl").write_text(json.dumps(CALL) + "\n", encoding="utf-8")
    with FakeBotAPI(token=TOKEN) as server:
        run = Sentinella(
            tmp_path,
            SENTINELLA_TELEGRAM__TOKEN=TOKEN,
            SENTINELLA_TELEGRAM__BASE_URL=server.base_url,
            SENTINELLA_TELEGRAM__ADMIN_CHAT_IDS="[9001]",
            SENTINELLA_TELEGRAM__MAX_RETRIES="1",
            SENTINELLA_TELEGRAM__WEBHOOK_SECRET_TOKEN=WEBHOOK_SECRET,
        )
        assert run("members", "import", "members.toml").code == 0
        assert run("calls", "import", "calls.jsonl").code == 0
        yield run, server


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_rejected_token_is_never_printed(
    cli: tuple[Sentinella, FakeBotAPI], debug: bool, tmp_path: Path
) -> None:
    run, server = cli
    # The API rejects the token: python-telegram-bot raises InvalidToken quoting it, on the
    # alert channel and on the admin notice path alike.
    server.script("getMe", *[Answer.error(401, "Unauthorized")] * 10)
    result = run(*(["--debug"] if debug else []), "dispatch")
    assert not _has_token(result.both)
    assert "rejected" in result.both  # the reason is still told
    result = run(*(["--debug"] if debug else []), "dispatch")
    assert not _has_token(result.both)
    assert _leaks(tmp_path) == []


@pytest.mark.parametrize(
    "answer",
    [
        Answer.error(400, f"Bad Request: wrong parameter for bot{TOKEN}"),
        Answer.error(500, f"Internal Server Error at /bot{TOKEN}/sendMessage"),
        Answer.error(502, f"Bad Gateway {TOKEN}"),
    ],
    ids=["400-echo", "500-body", "502-bare"],
)
def test_token_echoed_by_the_api_is_masked(
    cli: tuple[Sentinella, FakeBotAPI], answer: Answer, tmp_path: Path
) -> None:
    run, server = cli
    server.script("sendMessage", *[answer] * 10)
    for args in (["dispatch"], ["--debug", "dispatch"], ["digest", "--send"]):
        result = run(*args)
        assert not _has_token(result.both), args
    assert server.calls("sendMessage"), "the probe never reached the API"
    assert _leaks(tmp_path) == []


def test_daemon_with_rejected_token_says_so_without_the_token(tmp_path: Path) -> None:
    with FakeBotAPI() as server:  # another token: ours is answered 401
        run = Sentinella(
            tmp_path, SENTINELLA_TELEGRAM__TOKEN=TOKEN, SENTINELLA_TELEGRAM__BASE_URL=server.base_url
        )
        result = run("run", timeout=60)
    assert result.code != 0
    assert "token" in result.err and not _has_token(result.both)


# --- the error path of every command ---------------------------------------------------------


def _probe_app() -> typer.Typer:
    """A command wired like every real one (root callback, ``handles_errors``) that fails with
    the configured token in its message, as a library quoting a URL would."""
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = AppContext()

    @app.command()
    @handles_errors
    def boom(ctx: typer.Context, known: bool = False) -> None:
        from scheduler.cli.common import context

        settings = context(ctx).settings  # loads the token from the environment
        secret = settings.telegram.token.get_secret_value() if settings.telegram.token else ""
        if known:
            raise CliError(f"refused by https://api.telegram.org/bot{secret}/getMe")
        raise RuntimeError(f"request to https://api.telegram.org/bot{secret}/getMe failed, token {secret}")

    return app


@pytest.mark.parametrize("args", [["boom"], ["boom", "--known"]])
def test_every_command_error_is_redacted(
    args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SENTINELLA_TELEGRAM__TOKEN", "42:short")  # no token shape: only the setting masks it
    result = CliRunner().invoke(_probe_app(), args)
    assert result.exit_code == 1
    assert "42:short" not in result.output and "short" not in result.stderr
    assert "***" in result.stderr


# --- sentinella config ----------------------------------------------------------------------------


def test_config_never_writes_a_masked_secret_and_refuses_one_read_back(tmp_path: Path) -> None:
    run = Sentinella(tmp_path, SENTINELLA_TELEGRAM__TOKEN=TOKEN, SENTINELLA_EMAIL__PASSWORD="smtp-pass-123")
    result = run("config")
    assert result.code == 0, result.err
    assert TOKEN not in result.out and "smtp-pass-123" not in result.out
    assert "*****" not in result.out  # no masked value a reader could take for the secret
    # The README's suggested start: the file it writes loads, and with no token there is none.
    (tmp_path / "sentinella.toml").write_text(result.out, encoding="utf-8")
    plain = Sentinella(tmp_path)
    result = plain("config")
    assert result.code == 0, result.err
    # A placeholder someone copied from an older output is refused, clearly.
    (tmp_path / "sentinella.toml").write_text('[telegram]\ntoken = "**********"\n', encoding="utf-8")
    result = plain("config")
    assert result.code == 1
    assert "telegram.token" in result.err and "placeholder" in result.err
    # A database password too: never printed, a masked one refused.
    (tmp_path / "sentinella.toml").unlink()
    with_password = Sentinella(
        tmp_path, SENTINELLA_DATABASE_URL="postgresql://sentinella:db-pass-99@127.0.0.1:1/x"
    )
    result = with_password("config")
    assert result.code == 0 and "db-pass-99" not in result.out and "***" not in result.out
    masked = Sentinella(tmp_path, SENTINELLA_DATABASE_URL="postgresql://sentinella:***@127.0.0.1:1/x")
    result = masked("config")
    assert result.code == 1 and "database_url" in result.err and "placeholder" in result.err


def test_admin_notices_quoting_the_token_are_masked(
    cli: tuple[Sentinella, FakeBotAPI], tmp_path: Path
) -> None:
    """A notice raised from a failure's text (a crawl error quoting a Bot API URL, say)."""
    from datetime import datetime

    from storage import notices
    from storage.db import Database
    from storage.records import ROME

    run, server = cli
    db = Database(run.env["SENTINELLA_DATABASE_URL"])
    notices.raise_notice(
        db, "probe", f"request to https://api.telegram.org/bot{TOKEN}/getMe failed", now=datetime.now(ROME)
    )
    db.dispose()
    result = run("dispatch")
    to_admins = [m for m in server.sent_messages() if m.chat_id == 9001]
    assert to_admins, "the admin notice was not sent"
    assert not any(_has_token(str(m.params)) for m in to_admins)
    assert not _has_token(result.both)
