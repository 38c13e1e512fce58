"""Delivery channels: Telegram, e-mail (SMTP) and the console, behind one small protocol.

A channel sends one :class:`~notifier.messages.alerts.Alert` and returns a receipt (Telegram
``<chat id>:<message id>``, the e-mail's Message-ID, ``console:<row id>``), or raises one of
the classified errors the dispatcher acts on:

* :class:`Retryable` — try again later (``after`` seconds at least, when the other side said so).
  ``transport`` marks a failure of the way there (connection refused, read error, timeout, 5xx):
  one is that message's retry; the dispatcher declares the channel down only after several in a
  row across messages (``DeliveryConfig.down_after_failures``). ``channel_down`` marks what is
  certain at once (the bot token or the SMTP login refused): the rest of the batch waits too;
* :class:`Permanent` — this message will never go through (the dispatcher gives up on the row);
* :class:`RecipientGone` — Telegram answered 403 (bot blocked, user deactivated) or "chat not
  found": the member's Telegram channel is switched off.

Telegram (python-telegram-bot 22): an ``ExtBot`` with ``AIORateLimiter`` pacing the whole bot
(``messages_per_second``) and retrying a 429 ``max_retries`` times after ``retry_after``
(the limiter pauses every request meanwhile, and counts the 429s: :attr:`TelegramChannel.throttled`);
the limiter paces private chats only as a whole, so this channel also keeps
``per_chat_interval`` between two messages to one chat and ``per_group_interval`` to one group.
The budget is one process's: when several daemons share a database only the holder of the
``sender`` lease sends (see :mod:`scheduler.daemon`). A 400 "can't parse entities" is resent
once as plain text; network errors and 5xx are retryable. A send that timed out may have been
delivered: retrying it is the at-least-once side of the guarantee.

The bot token is part of every Bot API URL: httpx's request log and python-telegram-bot's debug
log would print it, so they are raised to WARNING, and error texts kept on outbox rows have the
token replaced by ``***``.

E-mail: ``smtplib`` in a worker thread, one connection reused for up to ``batch_size`` messages
(closed by :meth:`Channel.end_batch`), STARTTLS or implicit TLS from settings. SMTP 4xx and lost
connections are retryable, 5xx permanent (authentication failures excepted: they are a
configuration problem, not the message's, so they retry and the channel counts as down).

The console channel prints the plain-text alert with rich; it stands in for both channels when
neither is configured, so everything runs without secrets.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Coroutine
from email.message import EmailMessage
from typing import Any, Protocol, runtime_checkable

from rich.console import Console
from rich.panel import Panel
from rich.text import Text
from telegram import InlineKeyboardMarkup, LinkPreviewOptions, Message
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import AIORateLimiter, ExtBot
from telegram.request import HTTPXRequest

from notifier.config import EmailConfig, TelegramConfig
from notifier.delivery.redaction import Redactor
from notifier.messages.alerts import Alert, render_email, render_telegram, render_text

log = logging.getLogger(__name__)

#: Loggers that would print Bot API URLs, and so the token.
TOKEN_LEAKING_LOGGERS = ("httpx", "httpcore", "telegram", "telegram.request", "telegram._bot", "telegram.ext")


class DeliveryError(Exception):
    """A send failed; the subclass says what the dispatcher should do."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Retryable(DeliveryError):
    def __init__(
        self,
        after: float | None = None,
        reason: str = "",
        *,
        channel_down: bool = False,
        transport: bool = False,
    ) -> None:
        super().__init__(reason or "temporary failure")
        self.after = after
        self.channel_down = channel_down
        self.transport = transport or channel_down


class Permanent(DeliveryError):
    pass


class RecipientGone(DeliveryError):
    pass


@runtime_checkable
class Channel(Protocol):
    """Sends alerts one at a time. ``end_batch`` ends a dispatch run; ``aclose`` at shutdown."""

    name: str

    async def send(self, alert: Alert) -> str: ...

    async def end_batch(self) -> None: ...

    async def aclose(self) -> None: ...


def quiet_token_logs() -> None:
    """Keep Bot API URLs (which contain the token) out of the logs."""
    for name in TOKEN_LEAKING_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)


# --- Telegram -------------------------------------------------------------------------------


class TelegramChannel:
    """Alerts as Telegram HTML messages with feedback buttons."""

    name = "telegram"

    def __init__(
        self,
        config: TelegramConfig,
        *,
        bot: ExtBot[int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        quiet_token_logs()
        self.config = config
        self._token = config.token.get_secret_value() if config.token else ""
        self.redact = Redactor([self._token])
        if bot is None:
            if not self._token:
                raise ValueError("the Telegram channel needs a bot token")
            bot = make_bot(config)
        self.bot = bot
        self._clock = clock
        self._ready = False
        self._init_lock = asyncio.Lock()
        self._chat_locks: dict[int, asyncio.Lock] = {}
        self._last_sent: dict[int, float] = {}
        #: How many sends fell back to plain text after a 400 "can't parse entities".
        self.plain_fallbacks = 0

    async def _ensure_ready(self) -> None:
        if self._ready:
            return
        async with self._init_lock:
            if not self._ready:
                try:
                    await self.bot.initialize()
                except TelegramError as exc:
                    raise self._classify(exc) from exc
                self._ready = True

    async def _pace(self, chat_id: int) -> None:
        last = self._last_sent.get(chat_id)
        if last is not None:
            # Negative ids are groups and channels, which Telegram limits per minute.
            interval = self.config.per_group_interval if chat_id < 0 else self.config.per_chat_interval
            wait = last + interval - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)

    async def send(self, alert: Alert) -> str:
        chat_id = alert.recipient.telegram_chat_id
        if chat_id is None:
            raise Permanent("the member has no Telegram chat")
        message = render_telegram(alert)
        return await self.send_prepared(
            chat_id,
            message.html,
            message.text,
            keyboard=message.keyboard,
            what=f"outbox row {alert.outbox_id}",
        )

    async def send_prepared(
        self,
        chat_id: int,
        html: str,
        text: str,
        *,
        keyboard: InlineKeyboardMarkup | None = None,
        what: str = "a message",
    ) -> str:
        """Send a prepared message (an alert's, the staff digest's) with this channel's pacing,
        plain-text fallback and error classification; ``text`` is sent when Telegram refuses
        the HTML. ``what`` names the message in the log."""
        await self._ensure_ready()
        lock = self._chat_locks.setdefault(chat_id, asyncio.Lock())
        async with lock:
            await self._pace(chat_id)
            plain = False
            try:
                sent = await self._send(chat_id, html, keyboard)
            except BadRequest as exc:
                if "can't parse entities" not in str(exc).lower():
                    raise self._classify(exc) from exc
                self.plain_fallbacks += 1
                plain = True
                log.warning("Telegram refused the HTML of %s; sending plain text", what)
                try:
                    sent = await self._send(chat_id, text, keyboard, plain=True)
                except TelegramError as exc2:
                    raise self._classify(exc2) from exc2
            except TelegramError as exc:
                raise self._classify(exc) from exc
            finally:
                # Measured from the answer: the next message to this chat reaches Telegram at
                # least ``per_chat_interval`` after Telegram had this one.
                self._last_sent[chat_id] = self._clock()
        # The receipt records how it went out: Telegram's message id, and whether as plain text.
        return f"{chat_id}:{sent.message_id}" + (" plain" if plain else "")

    async def _send(
        self, chat_id: int, body: str, keyboard: InlineKeyboardMarkup | None, *, plain: bool = False
    ) -> Message:
        return await self.bot.send_message(
            chat_id=chat_id,
            text=body,
            parse_mode=None if plain else ParseMode.HTML,
            reply_markup=keyboard,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )

    def _classify(self, exc: TelegramError) -> DeliveryError:
        text = self.redact(describe_telegram_error(exc))
        if isinstance(exc, Forbidden):
            return RecipientGone(text)
        if isinstance(exc, RetryAfter):
            after = exc.retry_after
            return Retryable(float(after if isinstance(after, int) else after.total_seconds()), text)
        if isinstance(exc, ChatMigrated):
            return Permanent(f"{text} (chat migrated to {exc.new_chat_id})")
        if isinstance(exc, BadRequest):
            lowered = text.lower()
            if "chat not found" in lowered or "user is deactivated" in lowered:
                return RecipientGone(text)
            return Permanent(text)
        if isinstance(exc, InvalidToken):
            # A fixed text: the library's message quotes the token.
            return Retryable(None, "the bot token was rejected", channel_down=True)
        if isinstance(exc, NetworkError):
            # Timeouts, read errors, refused connections and 5xx answers (TimedOut is a
            # NetworkError): each is a retry of this message; several in a row make the channel
            # down (the dispatcher counts them).
            return Retryable(None, text, transport=True)
        return Retryable(None, text)

    @property
    def throttled(self) -> int:
        """429 answers the bot received (each retried after ``retry_after``, or given up)."""
        limiter = self.bot.rate_limiter
        return limiter.throttled if isinstance(limiter, CountingRateLimiter) else 0

    async def end_batch(self) -> None:
        return None

    async def aclose(self) -> None:
        # Also after a failed start: the HTTP client may hold connections.
        self._ready = False
        await self.bot.shutdown()


def bot_request(config: TelegramConfig, *, pool_size: int | None = None) -> HTTPXRequest:
    """The HTTP client of the bot, with the configured timeouts."""
    return HTTPXRequest(
        connection_pool_size=pool_size or config.connection_pool_size,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        write_timeout=config.read_timeout,
        pool_timeout=config.pool_timeout,
    )


def describe_telegram_error(exc: TelegramError) -> str:
    """``Forbidden: bot was blocked by the user``, not ``Forbidden: Forbidden: …``: the error's
    type is named only when Telegram's own description does not start with it already."""
    name = type(exc).__name__
    message = str(exc.message or "").strip()
    if not message:
        return name
    head = message.split(":", 1)[0].strip().lower()
    if head in (name.lower(), "bad request", "forbidden", "conflict", "too many requests"):
        return message
    return f"{name}: {message}"


#: The overall rate limiter's bucket, in messages (see :func:`bot_rate_limiter`).
BUCKET = 1.05


class CountingRateLimiter(AIORateLimiter):
    """``AIORateLimiter`` that counts the 429 answers it honours (:attr:`throttled`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.throttled = 0

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        async def counted(*a: Any, **k: Any) -> Any:
            try:
                return await callback(*a, **k)
            except RetryAfter:
                self.throttled += 1
                raise

        return await super().process_request(counted, args, kwargs, endpoint, data, rate_limit_args)


def bot_rate_limiter(config: TelegramConfig) -> AIORateLimiter:
    """Paces every send of the bot and retries a 429 after ``retry_after``."""
    return CountingRateLimiter(
        # A bucket of about one message leaking at the configured rate spaces messages evenly:
        # a burst of 30 followed by 30 more would exceed Telegram's per-second limit. The extra
        # 5 % makes up the millisecond or two an event-loop timer wakes late, which a bucket of
        # exactly one loses at every message (about 4 % of the rate, measured). No more than
        # that: a bucket of two, measured against a strict server in another process, drew
        # 429s, as network and scheduling jitter bunch requests up on arrival; even spacing is
        # the margin against that. Any second holds at most 29 messages either way.
        overall_max_rate=BUCKET,
        overall_time_period=BUCKET / config.messages_per_second,
        max_retries=config.max_retries,
    )


def make_bot(config: TelegramConfig) -> ExtBot[int]:
    """An ``ExtBot`` for sending: rate limited, retrying 429s, pointed at ``config.base_url``."""
    if not config.token:
        raise ValueError("no bot token configured")
    quiet_token_logs()
    return ExtBot[int](
        token=config.token.get_secret_value(),
        base_url=config.base_url,
        request=bot_request(config),
        rate_limiter=bot_rate_limiter(config),
    )


# --- e-mail ---------------------------------------------------------------------------------


class EmailChannel:
    """Alerts by SMTP: one connection per batch, sends one at a time in a worker thread."""

    name = "email"

    def __init__(self, config: EmailConfig, *, ssl_context: ssl.SSLContext | None = None) -> None:
        if not config.enabled:
            raise ValueError("the e-mail channel needs an SMTP host")
        self.config = config
        self._ssl = ssl_context
        self._smtp: smtplib.SMTP | None = None
        self._sent_on_connection = 0
        self._lock = asyncio.Lock()

    async def send(self, alert: Alert) -> str:
        try:
            message = render_email(alert, self.config)
        except ValueError as exc:
            raise Permanent(str(exc)) from exc
        return await self.send_message(message, alert.recipient.email or "")

    async def send_message(self, message: EmailMessage, to: str) -> str:
        """Send a prepared message (the staff digest uses this) over the batch's connection.

        Returns its Message-ID; raises the same classified errors as :meth:`send`.
        """
        if not to or any(c in to for c in "\r\n"):
            raise Permanent("no usable e-mail address")
        async with self._lock:
            await asyncio.to_thread(self._send_sync, message, to)
        return str(message["Message-ID"])

    def _context(self) -> ssl.SSLContext:
        return self._ssl or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        host = cfg.host or ""
        # EmailConfig refuses this already; a config built without validation must not leak
        # the password either, so check before any connection is opened.
        if cfg.plaintext_login_refused:
            raise Permanent(f"refusing to log in to {host} without TLS: set security to starttls or tls")
        smtp: smtplib.SMTP
        if cfg.security == "tls":
            smtp = smtplib.SMTP_SSL(host, cfg.port, timeout=cfg.timeout, context=self._context())
        else:
            smtp = smtplib.SMTP(host, cfg.port, timeout=cfg.timeout)
            if cfg.security == "starttls":
                smtp.starttls(context=self._context())
        if cfg.username:
            smtp.login(cfg.username, cfg.password.get_secret_value() if cfg.password else "")
        return smtp

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        self._sent_on_connection = 0
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def _send_sync(self, message: EmailMessage, to: str) -> None:
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            self._smtp.send_message(message, from_addr=self.config.from_address, to_addrs=[to])
            self._sent_on_connection += 1
            if self._sent_on_connection >= self.config.batch_size:
                self._drop()
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (550, b""))
            raise _by_code(code, f"recipient refused: {code} {_decode(reply)}") from exc
        except smtplib.SMTPAuthenticationError as exc:
            self._drop()
            raise Retryable(None, f"SMTP login refused: {exc.smtp_code}", channel_down=True) from exc
        except smtplib.SMTPServerDisconnected as exc:
            self._smtp = None
            self._sent_on_connection = 0
            raise Retryable(None, f"SMTP connection lost: {exc}", transport=True) from exc
        except smtplib.SMTPConnectError as exc:
            self._drop()
            reason = f"SMTP server refused the connection: {exc.smtp_code}"
            raise Retryable(None, reason, transport=True) from exc
        except smtplib.SMTPResponseException as exc:
            # After RSET the connection is usable again, but a clean one costs little.
            self._drop()
            raise _by_code(exc.smtp_code, f"SMTP {exc.smtp_code} {_decode(exc.smtp_error)}") from exc
        except smtplib.SMTPException as exc:
            self._drop()
            raise Retryable(None, f"SMTP error: {exc}") from exc
        except (OSError, ssl.SSLError) as exc:
            self._smtp = None
            self._sent_on_connection = 0
            raise Retryable(None, f"SMTP server unreachable: {exc}", transport=True) from exc

    async def end_batch(self) -> None:
        async with self._lock:
            if self._smtp is not None:
                await asyncio.to_thread(self._drop)

    async def aclose(self) -> None:
        await self.end_batch()


def _decode(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _by_code(code: int, text: str) -> DeliveryError:
    return Retryable(None, text) if 400 <= code < 500 else Permanent(text)


# --- console --------------------------------------------------------------------------------


class ConsoleChannel:
    """Prints each alert as plain text (demo, or no channel configured)."""

    name = "console"

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)

    async def send(self, alert: Alert) -> str:
        r = alert.recipient
        target = f"{alert.channel} → {r.name} (#{r.member_id})"
        # Text, not markup: scraped values may contain rich's square brackets.
        self.console.print(Panel(Text(render_text(alert)), title=Text(target), expand=False))
        return f"console:{alert.outbox_id}"

    async def end_batch(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def build_channels(
    telegram: TelegramConfig,
    email: EmailConfig,
    *,
    console: Console | None = None,
) -> dict[str, Channel]:
    """The channels the configuration allows, by outbox channel name.

    With neither Telegram nor SMTP configured, the console stands in for both (so the demo and
    a first run show what would be sent); with one configured, rows of the other stay pending.
    """
    channels: dict[str, Channel] = {}
    if telegram.enabled:
        channels["telegram"] = TelegramChannel(telegram)
    if email.enabled:
        channels["email"] = EmailChannel(email)
    stand_in = ConsoleChannel(console)
    channels["console"] = stand_in
    if not telegram.enabled and not email.enabled:
        channels["telegram"] = stand_in
        channels["email"] = stand_in
    return channels
