"""The application as the daemon runs it: building, long polling, rate limiting, errors, texts."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest
from telegram.ext import AIORateLimiter

from notifier.bot import BotServices, build_application, publish_commands
from notifier.bot.common import split_message
from notifier.config import TelegramConfig
from notifier.messages.formats import tg_len
from notifier.messages.i18n import Html, bot_keys, language_from_telegram, normalise_language, t
from storage import members
from storage.db import Database
from storage.invitations import create_invitation
from tests.bot.harness import Clock, Harness, make_config
from tests.fakes.telegram_server import Answer, FakeBotAPI

CHAT = 8181


def test_a_token_is_required(sqlite_db: Database, now: datetime) -> None:
    with pytest.raises(ValueError, match="token"):
        build_application(db=sqlite_db, config=TelegramConfig(), clock=lambda: now, services=BotServices())


def test_built_with_the_rate_limiter_and_base_url(
    sqlite_db: Database, server: FakeBotAPI, now: datetime
) -> None:
    app = build_application(
        db=sqlite_db, config=make_config(server), clock=lambda: now, services=BotServices()
    )
    assert isinstance(app.bot.rate_limiter, AIORateLimiter)
    assert app.bot.base_url == f"{server.base_url}{server.token}"


@pytest.mark.integration
async def test_long_polling_as_the_daemon_runs_it(
    sqlite_db: Database, server: FakeBotAPI, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code = create_invitation(sqlite_db, role="member", now=clock(), ttl=timedelta(days=1), created_by="t")
    app = build_application(db=sqlite_db, config=make_config(server), clock=clock, services=BotServices())
    await app.initialize()
    await publish_commands(app.bot)
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    try:
        server.push_update(
            {
                "message": {
                    "message_id": 1,
                    "date": 1,
                    "chat": {"id": CHAT, "type": "private"},
                    "from": {"id": CHAT, "is_bot": False, "first_name": "Marta", "language_code": "it"},
                    "text": f"/start {code}",
                    "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
                }
            }
        )
        harness = Harness(app, server, sqlite_db, clock, None)  # type: ignore[arg-type]
        await harness.until(lambda: any("Benvenuto/a" in r.text for r in server.sent_messages()))
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert members.find_member(sqlite_db, chat_id=CHAT) is not None
    [it, en] = server.calls("setMyCommands")
    assert "language_code" not in it.params and en.params["language_code"] == "en"
    assert {c["command"] for c in it.params["commands"]} >= {"bandi", "cerca", "profilo", "cancellami"}
    # The token is in every Bot API URL: it must not reach the logs.
    assert server.token not in caplog.text


@pytest.mark.integration
async def test_a_429_is_waited_out_and_retried(bot: Harness) -> None:
    bot.add_member(CHAT)
    bot.server.script("sendMessage", Answer.retry_after(1), chat_id=CHAT)
    replies = await bot.send(CHAT, "/pausa")
    assert [r.status for r in replies.of("sendMessage")] == [429, 200]
    assert "Avvisi in pausa" in replies.texts[-1]


@pytest.mark.integration
async def test_an_error_is_logged_and_answered_politely(
    bot: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bot.add_member(CHAT)

    def broken(*args: object, **kwargs: object) -> list:
        raise RuntimeError(f"database on fire at /bot{bot.server.token}/sendMessage")

    monkeypatch.setattr("notifier.bot.member.search_calls", broken)
    replies = await bot.send(CHAT, "/cerca packaging")
    assert replies.texts == [t("it", "error.generic")]
    assert "fire" not in replies.text and "Traceback" not in replies.text
    assert "failed: RuntimeError" in caplog.text
    assert "database on fire at /bot***/sendMessage" in caplog.text  # details kept, token not
    assert bot.server.token not in caplog.text

    monkeypatch.setattr("notifier.bot.member.group_calls", broken)
    pressed = await bot.press(CHAT, "fb:i:1", language_code="en")
    assert len(pressed.answers) == 1
    assert pressed.texts == [t("it", "error.generic")]  # the member's language, not the client's


@pytest.mark.integration
async def test_a_reply_that_telegram_refuses_does_not_escape(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    bot.add_member(CHAT)
    bot.server.script("sendMessage", Answer.bad_request(), Answer.bad_request(), chat_id=CHAT)
    replies = await bot.send(CHAT, "/pausa")
    assert [r.status for r in replies.of("sendMessage")] == [400, 400]
    assert "could not tell a chat about the failure" in caplog.text
    assert "8181" not in caplog.text  # chat ids are personal data: DEBUG only


# --- texts ---------------------------------------------------------------------------------------------


def test_every_text_the_bot_names_is_in_the_catalogue() -> None:
    # Every ``t(lang, "key")`` written in the bot's code (the catalogue test checks both
    # languages and their placeholders).
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "notifier" / "bot"
    used = {
        m.group(1)
        for path in root.glob("*.py")
        for m in re.finditer(r"\bt\(\s*[\w.]+\s*,\s*\"([\w.\-]+)\"", path.read_text(encoding="utf-8"))
    }
    assert len(used) > 50
    assert used <= bot_keys(), sorted(used - bot_keys())


def test_values_are_escaped_but_markup_passes() -> None:
    assert (
        t("it", "start.already", name="<b>&")
        == "Sei già registrato/a come <b>&lt;b&gt;&amp;</b>. Scrivi /aiuto per i comandi."
    )
    assert t("en", "call.why", reasons=Html("<i>ok</i>")) == "Why: <i>ok</i>"
    assert t("xx", "cancel.yes") == "Sì, cancella tutto"


@pytest.mark.parametrize(
    ("code", "lang"),
    [(None, "it"), ("it", "it"), ("it-CH", "it"), ("en", "en"), ("en-GB", "en"), ("de", "en")],
)
def test_language_from_telegram(code: str | None, lang: str) -> None:
    assert language_from_telegram(code) == lang


def test_normalise_language() -> None:
    assert normalise_language("EN_us") == "en"
    assert normalise_language("fr") == "it"
    assert normalise_language("") == "it"


def test_split_message_respects_the_limit_and_lines() -> None:
    lines = [f"<b>{i}</b> " + "è" * 90 for i in range(200)]
    chunks = split_message("\n".join(lines))
    assert len(chunks) > 1
    assert all(tg_len(c) <= 4096 for c in chunks)
    assert "\n".join(chunks).split("\n") == lines
    # Characters outside the BMP count twice for Telegram.
    emoji = split_message("😀" * 3000)
    assert all(tg_len(c) <= 4096 for c in emoji) and "".join(emoji) == "😀" * 3000
    assert split_message("short") == ["short"]
