"""Telling admins about notices: a source degraded, deliveries failing, reminders unsent.

Conditions are raised and cleared by whoever finds them (crawl runs, the dispatcher, the
daemon's checks) through :mod:`storage.notices`; :func:`notify_admins` delivers what is pending,
once per raise and once per recovery, to every admin: the chats in
``TelegramConfig.admin_chat_ids`` and the active members with role ``admin`` (Telegram if they
have a working chat, else e-mail). With no channel configured the console stands in.

A notice is marked told when at least one admin got it, or when there is nobody to tell (then
the log line is the report, so it is not repeated every minute). When every attempt failed it
stays pending and the next run tries again.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from telegram.error import BadRequest, TelegramError

from notifier import catalogue
from notifier.config import EmailConfig, TelegramConfig
from notifier.delivery.channels import ConsoleChannel, DeliveryError, EmailChannel, TelegramChannel
from notifier.delivery.redaction import Redactor
from storage import notices
from storage.db import Database
from storage.members import list_members
from storage.notices import NoticeView

log = logging.getLogger(__name__)

#: Telegram's limit is 4096 characters: one message carries whole notices up to this size.
MAX_TEXT = 3500
#: One notice's message is cut to this (plain text, before escaping).
MAX_ITEM = 1000


def _item(n: NoticeView, lang: str, *, as_html: bool) -> str:
    head = catalogue.text(lang, "admin.problem" if n.active else "admin.recovered")
    message = catalogue.notice_text(n.message, lang)
    message = message if len(message) <= MAX_ITEM else message[: MAX_ITEM - 1] + "…"
    if as_html:
        return f"<b>{head}</b>\n{html.escape(message)}"
    return f"{head}\n{message}"


def notice_batch(
    items: list[NoticeView], lang: str = "it", *, as_html: bool = False
) -> tuple[str, list[NoticeView]]:
    """The text of as many whole notices as fit in one message, and which ones they are.

    Notices are never cut in the middle (a cut could split an HTML entity or tag); those that do
    not fit wait for the next message.
    """
    parts: list[str] = []
    included: list[NoticeView] = []
    size = 0
    for n in items:
        part = _item(n, lang, as_html=as_html)
        if included and size + len(part) + 2 > MAX_TEXT:
            break
        parts.append(part)
        included.append(n)
        size += len(part) + 2
    return "\n\n".join(parts), included


async def _telegram_ready(channel: TelegramChannel) -> bool:
    """Whether the channel's bot answers; a rejected token or an unreachable API is logged (its
    text masked: the library quotes the token) and the notices wait for another route."""
    try:
        await channel.bot.initialize()
    except TelegramError as exc:
        log.warning("admin notices not sent by Telegram: %s", channel.redact(f"{type(exc).__name__}: {exc}"))
        return False
    return True


async def notify_admins(
    db: Database,
    channels: Mapping[str, Any],
    *,
    telegram: TelegramConfig,
    email: EmailConfig,
    now: datetime,
) -> int:
    """Deliver pending notices to admins; returns how many notices were marked told."""
    pending = notices.pending_notices(db)
    if not pending:
        return 0
    admins = [m for m in list_members(db, active=True) if m.role == "admin"]
    chats: dict[int, str] = {chat: "it" for chat in telegram.admin_chat_ids}
    mails: dict[str, str] = {}
    for admin in admins:
        if admin.telegram_chat_id is not None and admin.telegram_ok:
            chats[admin.telegram_chat_id] = admin.language
        elif admin.email:
            mails[admin.email] = admin.language

    # A notice may quote a failure's text: whatever secret it carries is masked here too.
    secrets = [v.get_secret_value() for v in (telegram.token, email.password) if v is not None]
    redact = Redactor(secrets)
    # One message at a time: as many whole notices as fit; the rest go in the next round.
    _, batch = notice_batch(pending, "it", as_html=True)
    delivered = 0
    attempted = 0
    tg = channels.get("telegram")
    if isinstance(tg, TelegramChannel) and chats and await _telegram_ready(tg):
        bot = tg.bot
        for chat, lang in chats.items():
            attempted += 1
            try:
                try:
                    text, _ = notice_batch(batch, lang, as_html=True)
                    await bot.send_message(chat_id=chat, text=redact(text), parse_mode="HTML")
                except BadRequest:
                    # Whatever Telegram could not parse, the plain text still says it.
                    text, _ = notice_batch(batch, lang)
                    await bot.send_message(chat_id=chat, text=redact(text))
                delivered += 1
            except Exception as exc:  # one unreachable admin must not stop the others
                log.warning("could not tell an admin chat: %s", type(exc).__name__)
                log.debug("admin chat %s not told: %s", chat, tg.redact(str(exc)))
    mail = channels.get("email")
    if isinstance(mail, EmailChannel) and mails:
        for address, lang in mails.items():
            attempted += 1
            message = EmailMessage()
            message["Subject"] = catalogue.text(lang, "admin.subject")
            message["From"] = email.from_address
            message["To"] = address
            message["Date"] = formatdate(now.timestamp(), localtime=False)
            message["Message-ID"] = make_msgid(domain=email.from_address.rsplit("@", 1)[-1] or "localhost")
            message["Auto-Submitted"] = "auto-generated"
            message.set_content(redact(notice_batch(batch, lang)[0]))
            message["Content-Language"] = catalogue.language(lang)
            try:
                await mail.send_message(message, address)
                delivered += 1
            except DeliveryError as exc:
                # An SMTP reply may quote the address: personal data, DEBUG only.
                log.warning("could not e-mail admin notices: %s", type(exc).__name__)
                log.debug("admin notices to %s not sent: %s", address, exc)
        await mail.end_batch()
    if attempted == 0:
        console = next((c for c in channels.values() if isinstance(c, ConsoleChannel)), None)
        if console is not None and not isinstance(tg, TelegramChannel) and not isinstance(mail, EmailChannel):
            console.console.print(redact(notice_batch(batch, "it")[0]), markup=False)
        for n in batch:
            log.warning("admin notice (%s): %s", "problem" if n.active else "recovered", redact(n.message))
        delivered = 1
    if delivered:
        notices.mark_notified(db, [n.key for n in batch], now=now)
        return len(batch)
    return 0
