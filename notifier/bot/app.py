"""The Telegram bot application: every handler registered in one place.

:func:`build_application` returns a python-telegram-bot ``Application`` that is built but not
started: the daemon initialises and starts it in its own event loop, next to the scheduler (see
the function's docstring). Requests go to ``config.base_url`` (a fake Bot API server on loopback
in tests and the demo) through ``AIORateLimiter``, which paces sends and retries a 429 after
``retry_after`` up to ``config.max_retries`` times.

Updates are processed one at a time (python-telegram-bot's default): a member tapping two
toggles quickly gets both applied in order. Slow work never blocks that queue: database calls
run in worker threads and ``/crawl`` runs as a task that replies when it ends.

Any exception escaping a handler reaches :func:`on_error`, which logs it (without the update's
content, and the token never appears: httpx's request log is silenced) and tells the chat
politely that something went wrong; a member never sees a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from telegram import Bot, BotCommand, BotCommandScopeDefault, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from notifier.bot import admin, member, profile
from notifier.bot.common import DEPS_KEY, BotDeps, BotServices, Ctx, answer, log, reply
from notifier.config import TelegramConfig
from notifier.delivery.channels import bot_rate_limiter, bot_request, quiet_token_logs
from notifier.delivery.redaction import Redactor
from notifier.messages.i18n import language_from_telegram, t
from storage import members
from storage.db import Database

#: Commands in the Telegram menu (their descriptions are ``menu.<command>`` texts); staff and
#: admin commands stay out of it and are listed by /aiuto to those who may use them.
#: The bot's application (python-telegram-bot's generics, left open).
App = Application[Any, Any, Any, Any, Any, Any]

MENU = (
    "bandi", "cerca", "scadenze", "profilo", "calendario", "pausa", "riprendi", "lingua", "aiuto", "cancellami",
)  # fmt: skip


def handlers() -> list[BaseHandler[Update, Ctx, None]]:
    """Every handler, in the order they are tried (the first that matches an update runs)."""
    # Edited messages never re-run a command: a corrected "/cancellami" typo is not a new request.
    new = filters.UpdateType.MESSAGE
    commands: list[tuple[str | tuple[str, ...], Callable[..., object]]] = [
        ("start", member.start),
        (("aiuto", "help"), member.aiuto),
        ("bandi", member.bandi),
        ("cerca", member.cerca),
        ("scadenze", member.scadenze),
        ("pausa", member.pausa),
        ("riprendi", member.riprendi),
        ("lingua", member.lingua),
        ("calendario", member.calendario),
        ("cancellami", member.cancellami),
        ("profilo", profile.profilo),
        ("annulla", profile.annulla),
        ("crawl", admin.crawl),
        ("stato", admin.stato),
        ("invita", admin.invita),
        ("membri", admin.membri),
        ("digest", admin.digest),
        ("web", admin.web),
    ]
    out: list[BaseHandler[Update, Ctx, None]] = [
        CommandHandler(names, callback, filters=new)  # type: ignore[arg-type]
        for names, callback in commands
    ]
    out += [
        CallbackQueryHandler(member.on_feedback, pattern=r"^fb:"),
        CallbackQueryHandler(member.on_bandi_page, pattern=r"^bandi:"),
        CallbackQueryHandler(member.on_language, pattern=r"^lang:"),
        CallbackQueryHandler(member.on_delete, pattern=r"^del:"),
        CallbackQueryHandler(profile.on_button, pattern=r"^pf:"),
        CallbackQueryHandler(member.stale_button),
        MessageHandler(new & filters.COMMAND, member.unknown_command),
        MessageHandler(new & filters.TEXT, profile.on_text),
        MessageHandler(new, member.unknown_message),
    ]
    return out


async def on_error(update: object, context: Ctx) -> None:
    """Log the failure and tell the chat, politely; never raise."""
    error = context.error
    update_id = update.update_id if isinstance(update, Update) else None
    # A network error's chain may quote the request URL, and the token is part of it.
    trace = Redactor([context.bot.token]).exception(error) if error is not None else ""
    log.error("update %s failed: %s\n%s", update_id, type(error).__name__, trace)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    user = update.effective_user
    lang = language_from_telegram(user.language_code if user else None)
    deps_ = context.application.bot_data.get(DEPS_KEY)
    if isinstance(deps_, BotDeps):
        try:
            found = await deps_.run(members.find_member, deps_.db, chat_id=update.effective_chat.id)
            if found is not None:
                lang = found.language
        except Exception:
            log.debug("language of chat %s not read", update.effective_chat.id, exc_info=True)
    with contextlib.suppress(TelegramError):
        await answer(update)
    try:
        await reply(update, t(lang, "error.generic"))
    except TelegramError as exc:
        # Chat ids are personal data: DEBUG only.
        log.warning("could not tell a chat about the failure: %s", exc.message)
        log.debug("chat %s was not told about the failure", update.effective_chat.id)


def build_application(
    *,
    db: Database,
    config: TelegramConfig,
    clock: Callable[[], datetime],
    services: BotServices,
) -> App:
    """The bot, built and wired, not started.

    The daemon, in its event loop::

        app = build_application(db=db, config=settings.telegram, clock=clock, services=services)
        await app.initialize()              # getMe: fails fast on a bad token
        await publish_commands(app.bot)     # optional: the command menu
        await app.start()
        await app.updater.start_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)
        ...
        await app.updater.stop(); await app.stop(); await app.shutdown()

    (or ``app.updater.start_webhook(...)`` in webhook mode). ``app.bot`` is rate limited and may
    be shared with the Telegram alert channel so both respect one pace.
    """
    if not config.enabled or config.token is None:
        raise ValueError("the Telegram bot needs a token (telegram.token)")
    quiet_token_logs()
    request = bot_request(config)
    # Long polling holds one connection open; it gets its own small pool so sends never wait.
    updates_request = bot_request(config, pool_size=1)
    # The same pace as the alert channel's bot (they may be one bot; see notifier.delivery.channels).
    limiter = bot_rate_limiter(config)
    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = (
        Application.builder()
        .token(config.token.get_secret_value())
        .base_url(config.base_url)
        .request(request)
        .get_updates_request(updates_request)
        .rate_limiter(limiter)
    )
    app = builder.build()
    app.bot_data[DEPS_KEY] = BotDeps(db=db, config=config, clock=clock, services=services)
    for handler in handlers():
        app.add_handler(handler)
    app.add_error_handler(on_error)
    return app


async def cancel_background(app: App) -> int:
    """Cancel work handlers started in the background (a /crawl still running) and wait for it
    to end; call before ``app.stop()``, which would otherwise wait for a crawl to finish.
    Returns how many tasks were cancelled."""
    deps_ = app.bot_data.get(DEPS_KEY)
    if not isinstance(deps_, BotDeps):
        return 0
    pending = [task for task in deps_.tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    return len(pending)


async def publish_commands(bot: Bot) -> None:
    """Set the command menu in Italian (default) and English. Failure is logged, not raised."""
    try:
        await bot.set_my_commands(
            [BotCommand(c, t("it", f"menu.{c}")) for c in MENU], scope=BotCommandScopeDefault()
        )
        await bot.set_my_commands(
            [BotCommand(c, t("en", f"menu.{c}")) for c in MENU],
            scope=BotCommandScopeDefault(),
            language_code="en",
        )
    except TelegramError as exc:
        log.warning("the command menu could not be set: %s", exc.message)
