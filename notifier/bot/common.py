"""What every handler of the bot shares: its dependencies, who is writing, replies and formatting.

The daemon builds the application once (:func:`notifier.bot.app.build_application`) and the
dependencies live in ``application.bot_data`` under :data:`DEPS_KEY`; :func:`deps` reads them
back typed. Handlers are wrapped by :func:`member_only`, :func:`staff_only` or
:func:`admin_only`, which find the member bound to the chat and answer for them when the chat
may not use the command, so a handler body only runs for someone allowed to.

Private chats only: the caller is the Telegram user of a private chat (whose chat id is the
user's id). In a group or supergroup nobody is a member, staff or admin, whatever was once
bound to that chat id: anyone there could type the command. A group gets one polite refusal
(:func:`refuse_group`, then silence for :data:`GROUP_REFUSAL_EVERY`), never data.

Database calls are synchronous (SQLAlchemy); :meth:`BotDeps.run` runs them in a worker thread,
so a slow query never stalls the event loop the scheduler and the dispatcher share.

Known limits: the state of a half-finished edit (waiting for keywords typed by the member) lives
in memory and is forgotten on restart (failed invitation codes are counted in the database).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ParamSpec, Protocol, TypeVar

from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions, Message, Update
from telegram.constants import CallbackQueryLimit, ChatType, MessageLimit, ParseMode
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from notifier.config import MatchingConfig, RemindersConfig, TelegramConfig
from notifier.messages.formats import tg_len
from notifier.messages.i18n import language_from_telegram, normalise_language, t
from storage import members
from storage.audit import audit, chat_actor, member_actor
from storage.db import Database
from storage.members import MemberView

log = logging.getLogger("notifier.bot")

DEPS_KEY = "sentinella"
MAX_MESSAGE: int = MessageLimit.MAX_TEXT_LENGTH
MAX_ANSWER: int = CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH
#: The sources the crawler knows; the daemon passes the enabled ones in :class:`BotServices`.
DEFAULT_SOURCES = ("lombardia", "sedia", "incentivi", "feeds", "unioncamere", "openinnovation", "burl")

Ctx = ContextTypes.DEFAULT_TYPE
P = ParamSpec("P")
R = TypeVar("R")


class CrawlSummary(Protocol):
    """What the bot reads of one source's crawl summary (``crawler.run.SourceSummary``)."""

    @property
    def name(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def new(self) -> int: ...
    @property
    def changed(self) -> int: ...
    @property
    def unchanged(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def requests(self) -> int: ...
    @property
    def seconds(self) -> float: ...
    @property
    def reason(self) -> str: ...


#: ``start_crawl(["sedia"])`` → the summaries when every source has finished.
StartCrawl = Callable[[list[str]], Awaitable[Sequence[CrawlSummary]]]
#: ``status()`` → extra lines for /stato (``{"next crawl sedia": "12:00", ...}``); may be async.
Status = Callable[[], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]


class SigninLink(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def expires_at(self) -> datetime: ...


class WebLinks(Protocol):
    """What the bot asks of the web app (``web.access.WebAccess``): blocking calls, run off the loop."""

    def signin_link(self, member_id: int) -> SigninLink | None:
        """A one-time sign-in link; None when the member asked for too many this hour."""
        ...

    def calendar_link(self, member_id: int, *, rotate: bool = False) -> str: ...


@dataclass(frozen=True)
class BotServices:
    """What the daemon lends the bot, so the bot never imports the crawler or the scheduler.

    ``start_crawl`` must run the crawl off the event loop (a child process or a thread) and
    return its summaries; ``None`` means crawls cannot be started from this process. ``sources``
    are the names ``/crawl`` accepts (and the profile's source choices); ``matching`` and
    ``reminders`` are the same settings the alert planner uses, so ``/bandi`` agrees with alerts.
    """

    start_crawl: StartCrawl | None = None
    status: Status | None = None
    sources: tuple[str, ...] = DEFAULT_SOURCES
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    reminders: RemindersConfig = field(default_factory=RemindersConfig)
    #: How long an invitation made with /invita stays valid.
    invitation_ttl: timedelta = timedelta(days=7)
    #: The web app's links (/web, /calendario); None when the web app is not enabled.
    web: WebLinks | None = None


@dataclass
class BotDeps:
    db: Database
    config: TelegramConfig
    clock: Callable[[], datetime]
    services: BotServices
    #: Sources with a crawl started by /crawl still running.
    crawls_running: set[str] = field(default_factory=set)
    #: Background work started by handlers (crawls), cancelled by ``cancel_background``.
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def now(self) -> datetime:
        return self.clock()

    async def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a blocking (database) call in a worker thread."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def is_admin_chat(self, chat_id: int) -> bool:
        return chat_id in self.config.admin_chat_ids

    async def audit(self, actor: Actor | str, action: str, detail: Mapping[str, Any]) -> None:
        label = actor if isinstance(actor, str) else actor.label
        await self.run(audit, self.db, label, action, dict(detail), now=self.now())


def deps(context: Ctx) -> BotDeps:
    value = context.application.bot_data.get(DEPS_KEY)
    if not isinstance(value, BotDeps):
        raise RuntimeError("the bot was not built with build_application()")
    return value


@dataclass(frozen=True)
class Actor:
    """Who wrote: the chat, the member bound to it (if any) and what they may do."""

    chat_id: int
    member: MemberView | None
    lang: str
    is_admin: bool
    is_staff: bool
    #: A private chat with the user; anything else (group, supergroup, channel) has no powers.
    private: bool = True

    @property
    def is_member(self) -> bool:
        """Bound to a member whose access is not suspended."""
        return self.member is not None and self.member.active

    @property
    def label(self) -> str:
        """How the audit log names them: ``member:12`` / ``staff:12`` / ``admin:12``, or a hash
        of the chat id for a chat bound to no member. Never the chat id itself: the log
        outlives a member who deletes their data (``storage.members.delete_member``)."""
        if self.member is not None:
            role = "admin" if self.is_admin else "staff" if self.is_staff else "member"
            return member_actor(self.member.id, role)
        return chat_actor(self.chat_id)


async def resolve(update: Update, context: Ctx) -> Actor | None:
    """The actor of an update (None for updates without a chat, which the bot ignores)."""
    chat = update.effective_chat
    if chat is None:
        return None
    d = deps(context)
    user = update.effective_user
    if chat.type != ChatType.PRIVATE:
        # Whoever writes in a group is not the chat: no member, no role, whatever is bound to it.
        lang = language_from_telegram(user.language_code if user else None)
        return Actor(chat_id=chat.id, member=None, lang=lang, is_admin=False, is_staff=False, private=False)
    member = await d.run(members.find_member, d.db, chat_id=chat.id)
    if member is not None:
        lang = normalise_language(member.language)
    else:
        lang = language_from_telegram(user.language_code if user else None)
    active = member is not None and member.active
    is_admin = d.is_admin_chat(chat.id) or (active and member is not None and member.role == "admin")
    is_staff = is_admin or (active and member is not None and member.role == "staff")
    return Actor(chat_id=chat.id, member=member, lang=lang, is_admin=is_admin, is_staff=is_staff)


Handler = Callable[[Update, Ctx, Actor], Coroutine[Any, Any, None]]
Callback = Callable[[Update, Ctx], Coroutine[Any, Any, None]]


#: A group that keeps sending commands gets the refusal again only after this long.
GROUP_REFUSAL_EVERY = timedelta(hours=24)
_REFUSED_AT = "group_refused_at"


async def refuse_group(update: Update, context: Ctx, actor: Actor) -> None:
    """The one polite refusal a group or supergroup gets: use a private chat. Buttons are
    answered every time (the client waits for it); the message is sent once a day at most."""
    await answer(update, t(actor.lang, "private_only") if update.callback_query else None)
    chat_data = context.chat_data
    now = deps(context).now()
    if chat_data is not None:
        last = chat_data.get(_REFUSED_AT)
        if isinstance(last, datetime) and now - last < GROUP_REFUSAL_EVERY:
            return
        chat_data[_REFUSED_AT] = now
    if update.callback_query is None:
        await reply(update, t(actor.lang, "private_only"))


async def _refuse_unknown(update: Update, actor: Actor) -> None:
    key = "inactive" if actor.member is not None and not actor.member.active else "unknown_chat"
    await answer(update, t(actor.lang, "button.stale") if update.callback_query else None)
    await reply(update, t(actor.lang, key))


async def _refuse(update: Update, actor: Actor, key: str) -> None:
    """A member gets the refusal ``key``; strangers and suspended members learn how to get in."""
    if actor.is_member:
        await reply(update, t(actor.lang, key))
    else:
        await _refuse_unknown(update, actor)


def member_only(fn: Handler) -> Callback:
    """Run ``fn`` only for a chat bound to an active member; explain to anyone else."""

    @functools.wraps(fn)
    async def wrapper(update: Update, context: Ctx) -> None:
        actor = await resolve(update, context)
        if actor is None:
            return
        if not actor.private:
            await refuse_group(update, context, actor)
            return
        if not actor.is_member:
            await _refuse_unknown(update, actor)
            return
        await fn(update, context, actor)

    return wrapper


def staff_only(fn: Handler) -> Callback:
    """Run ``fn`` for staff and admins; members get a polite refusal, strangers the invitation text."""

    @functools.wraps(fn)
    async def wrapper(update: Update, context: Ctx) -> None:
        actor = await resolve(update, context)
        if actor is None:
            return
        if not actor.private:
            await refuse_group(update, context, actor)
            return
        if not actor.is_staff:
            await _refuse(update, actor, "staff.refused")
            return
        await fn(update, context, actor)

    return wrapper


def admin_only(action: str) -> Callable[[Handler], Callback]:
    """Run the handler for admins only; every attempt, allowed or refused, is audited."""

    def decorate(fn: Handler) -> Callback:
        @functools.wraps(fn)
        async def wrapper(update: Update, context: Ctx) -> None:
            actor = await resolve(update, context)
            if actor is None:
                return
            d = deps(context)
            if not actor.is_admin:
                detail: dict[str, Any] = {"refused": True, "args": list(context.args or [])[:5]}
                if not actor.private:
                    detail["group"] = True
                await d.audit(actor, action, detail)
                if actor.private:
                    await _refuse(update, actor, "admin.refused")
                else:
                    await refuse_group(update, context, actor)
                return
            await fn(update, context, actor)

        return wrapper

    return decorate


async def web_links(update: Update, context: Ctx, actor: Actor) -> WebLinks | None:
    """The web app's links (:class:`WebLinks`); None, after telling the chat, when the web app
    is not enabled."""
    links = deps(context).services.web
    if links is None:
        await reply(update, t(actor.lang, "web.unavailable"))
    return links


# --- replies -----------------------------------------------------------------------------------


def split_message(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Cut a long HTML text into messages at line ends (the bot never opens a tag across lines).

    A single line longer than the limit (which the bot's own texts never produce) is cut hard.
    """
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        while tg_len(line) > limit:
            cut = limit
            while tg_len(line[:cut]) > limit:
                cut -= 1
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:cut])
            line = line[cut:]
        candidate = f"{current}\n{line}" if current else line
        if tg_len(candidate) > limit:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current or not chunks:
        chunks.append(current)
    return [c for c in chunks if c.strip()] or [text[:limit]]


async def send(bot: Bot, chat_id: int, text: str, *, keyboard: InlineKeyboardMarkup | None = None) -> None:
    """Send HTML ``text`` to a chat, in as many messages as needed (keyboard on the last)."""
    chunks = split_message(text)
    for i, chunk in enumerate(chunks):
        await bot.send_message(
            chat_id,
            chunk,
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard if i == len(chunks) - 1 else None,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )


async def reply(update: Update, text: str, *, keyboard: InlineKeyboardMarkup | None = None) -> None:
    """Send HTML ``text`` to the update's chat (see :func:`send`)."""
    chat = update.effective_chat
    if chat is None:
        return
    await send(chat.get_bot(), chat.id, text, keyboard=keyboard)


async def answer(update: Update, text: str | None = None, *, alert: bool = False) -> None:
    """Answer the update's callback query (if any), so the member's client stops waiting."""
    query = update.callback_query
    if query is None:
        return
    if text is not None and len(text) > MAX_ANSWER:
        text = text[: MAX_ANSWER - 1] + "…"
    await query.answer(text, show_alert=alert)


async def answer_stale(update: Update, lang: str) -> None:
    """Answer a button whose data is not (or no longer) understood."""
    await answer(update, t(lang, "button.stale"))


async def edit(update: Update, text: str, *, keyboard: InlineKeyboardMarkup | None = None) -> None:
    """Replace the text (and keyboard) of the message a button belongs to; send a new message when
    it cannot be edited (too old, inaccessible, or the text needs more than one message)."""
    query = update.callback_query
    chunks = split_message(text)
    if query is None or not isinstance(query.message, Message) or len(chunks) > 1:
        await reply(update, text, keyboard=keyboard)
        return
    try:
        await query.edit_message_text(
            chunks[0],
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )
    except BadRequest as exc:
        if "not modified" in exc.message.lower():
            # A second tap on the same button: the message already shows this.
            return
        log.info("could not edit a message, sending a new one: %s", exc.message)
        await reply(update, text, keyboard=keyboard)
