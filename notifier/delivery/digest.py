"""Sending the staff digest through the notifier's channels, and the scheduled digest job.

:func:`send_digest` delivers it to the staff who subscribed (``Member.digest_email``,
``Member.digest_telegram`` when ``DigestConfig.telegram`` is on) through :class:`DigestSender` s,
and records the digest only once at least one recipient got it, so a digest nobody received is
covered again by the next one. E-mail goes over the e-mail channel's SMTP connection; Telegram
through :meth:`TelegramChannel.send_prepared <notifier.delivery.channels.TelegramChannel.send_prepared>`,
as alerts do (pacing, plain-text fallback, classified errors): a recipient Telegram no longer
reaches (403, chat gone) has their Telegram switched off, as for alerts. :func:`run_digest` is
the scheduled job: window, build, send, record, and nothing when the digest of the current slot
was already sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from notifier.config import DigestConfig, EmailConfig, MatchingConfig
from notifier.delivery.channels import ConsoleChannel, EmailChannel, RecipientGone, TelegramChannel
from notifier.messages.digest import digest_email, digest_telegram, render_digest
from notifier.planning.digest import Digest, build_digest, current_slot
from storage import outbox, planning
from storage.db import Database
from storage.members import list_members

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DigestRecipient:
    member_id: int
    name: str
    language: str
    email: str | None
    telegram_chat_id: int | None


class DigestSender(Protocol):
    """Delivers a digest to one staff member on one channel; returns a receipt or raises.

    ``name`` is the channel ("email", "telegram"). The notifier's channels send alerts (outbox
    rows); these adapters (:func:`digest_senders`) reuse their connections for the digest.
    """

    name: str

    async def send_digest(self, digest: Digest, recipient: DigestRecipient) -> str: ...


class EmailDigestSender:
    """The digest by e-mail, over the e-mail channel's SMTP connection."""

    name = "email"

    def __init__(self, channel: EmailChannel, config: EmailConfig, *, prefix: str | None = None) -> None:
        self.channel = channel
        self.config = config
        self.prefix = prefix

    async def send_digest(self, digest: Digest, recipient: DigestRecipient) -> str:
        if not recipient.email:
            raise ValueError("no e-mail address")
        message = digest_email(
            digest,
            to=recipient.email,
            name=recipient.name,
            language=recipient.language,
            email=self.config,
            prefix=self.prefix,
            member_id=recipient.member_id,
        )
        receipt: str = await self.channel.send_message(message, recipient.email)
        return receipt


class TelegramDigestSender:
    """The short digest by Telegram, through the Telegram channel as alerts go: the same bot
    (rate limiter and 429 retries), per-chat pacing, plain-text fallback and classified errors
    (:class:`~notifier.delivery.channels.RecipientGone` for a 403 or a chat that is gone)."""

    name = "telegram"

    def __init__(self, channel: TelegramChannel) -> None:
        self.channel = channel

    async def send_digest(self, digest: Digest, recipient: DigestRecipient) -> str:
        if recipient.telegram_chat_id is None:
            raise ValueError("no Telegram chat")
        message = digest_telegram(digest, language=recipient.language)
        receipt: str = await self.channel.send_prepared(
            recipient.telegram_chat_id,
            message.html,
            message.text,
            what=f"the digest to member {recipient.member_id}",
        )
        return receipt


class ConsoleDigestSender:
    """Prints the text digest (no channel configured, or the demo)."""

    def __init__(self, console: Console | None = None, *, name: str = "console") -> None:
        self.console = console or Console(highlight=False)
        self.name = name

    async def send_digest(self, digest: Digest, recipient: DigestRecipient) -> str:
        _, text = render_digest(digest, language=recipient.language)
        title = Text(f"digest → {recipient.name} (#{recipient.member_id})")
        self.console.print(Panel(Text(text), title=title, expand=False))
        return f"console:digest:{recipient.member_id}"


def digest_senders(
    channels: Mapping[str, Any], *, email: EmailConfig, config: DigestConfig
) -> dict[str, DigestSender]:
    """Digest senders over the notifier's channels (``notifier.delivery.channels.build_channels``).

    E-mail goes through an e-mail channel that can send a prepared message; Telegram through a
    channel with a ``bot`` (only when ``config.telegram``); a console stand-in prints the digest.
    """

    senders: dict[str, DigestSender] = {}
    for name in ("email", "telegram"):
        channel = channels.get(name)
        if channel is None or (name == "telegram" and not config.telegram):
            continue
        if isinstance(channel, EmailChannel):
            senders[name] = EmailDigestSender(channel, email, prefix=config.subject_prefix)
        elif isinstance(channel, TelegramChannel):
            senders[name] = TelegramDigestSender(channel)
        elif isinstance(channel, ConsoleChannel):
            senders[name] = ConsoleDigestSender(channel.console, name=name)
    return senders


def subscribers(db: Database, *, telegram: bool) -> list[tuple[DigestRecipient, list[str]]]:
    """Active staff and admins who subscribed, with the channels they get the digest on."""
    out = []
    for m in list_members(db, active=True):
        if m.role not in ("staff", "admin"):
            continue
        channels = []
        if m.digest_email and m.email:
            channels.append("email")
        if telegram and m.digest_telegram and m.telegram_chat_id is not None and m.telegram_ok:
            channels.append("telegram")
        if channels:
            out.append(
                (DigestRecipient(m.id, m.name, m.language or "it", m.email, m.telegram_chat_id), channels)
            )
    return out


@dataclass
class DigestSendReport:
    digest_id: int | None = None
    sent: list[tuple[int, str, str]] = field(default_factory=list)
    failed: list[tuple[int, str, str]] = field(default_factory=list)
    #: Subscribed recipients on a channel nobody can send on.
    unsendable: list[tuple[int, str]] = field(default_factory=list)
    skipped: str = ""

    @property
    def recorded(self) -> bool:
        return self.digest_id is not None


async def send_digest(
    db: Database,
    digest: Digest,
    *,
    now: datetime,
    senders: Mapping[str, DigestSender],
    config: DigestConfig,
) -> DigestSendReport:
    """Send ``digest`` to every subscribed staff member; record it once someone got it.

    A failure for one recipient does not stop the others. When nobody got it (no subscriber,
    no channel, every send failed) nothing is recorded, so the next digest covers the window.
    """
    report = DigestSendReport()
    for recipient, channels in subscribers(db, telegram=config.telegram):
        for channel in channels:
            sender = senders.get(channel)
            if sender is None:
                report.unsendable.append((recipient.member_id, channel))
                continue
            try:
                receipt = await sender.send_digest(digest, recipient)
            except asyncio.CancelledError:
                raise
            except RecipientGone as exc:
                # As for alerts: Telegram no longer reaches the member (bot blocked, chat gone).
                if channel == "telegram":
                    outbox.switch_off_telegram(db, recipient.member_id, now=now)
                report.failed.append((recipient.member_id, channel, f"recipient gone: {exc.reason}"[:300]))
                continue
            except Exception as exc:  # one recipient's failure must not stop the digest
                # The reason may quote an address or a chat id: DEBUG only.
                log.warning(
                    "digest to member %s by %s failed: %s", recipient.member_id, channel, type(exc).__name__
                )
                log.debug("digest to member %s by %s failed: %s", recipient.member_id, channel, exc)
                report.failed.append((recipient.member_id, channel, f"{type(exc).__name__}: {exc}"[:300]))
                continue
            report.sent.append((recipient.member_id, channel, receipt))
    for sender in senders.values():
        end_batch = getattr(getattr(sender, "channel", None), "end_batch", None)
        if end_batch is not None:
            await end_batch()
    if report.sent:
        summary = digest.summary() | {
            "sent": [[m, c] for m, c, _ in report.sent],
            "failed": [[m, c, e] for m, c, e in report.failed],
        }
        report.digest_id = planning.record_digest(
            db,
            made_at=now,
            period_start=digest.period_start,
            period_end=digest.period_end,
            sent=True,
            summary=summary,
        )
    else:
        report.skipped = "nobody received it" if (report.failed or report.unsendable) else "no subscriber"
    return report


async def run_digest(
    db: Database,
    *,
    now: datetime,
    config: DigestConfig,
    senders: Mapping[str, DigestSender],
    matching: MatchingConfig | None = None,
    force: bool = False,
) -> DigestSendReport:
    """The scheduled job: build and send the digest unless this slot's digest was already sent."""
    if not config.enabled and not force:
        return DigestSendReport(skipped="digest disabled")
    last = planning.last_digest_end(db)
    if not force and last is not None and last >= current_slot(now, config):
        return DigestSendReport(skipped="already sent for this slot")
    digest = build_digest(db, now=now, config=config, matching=matching)
    return await send_digest(db, digest, now=now, senders=senders, config=config)
