"""Commands for the cluster's staff and Sentinella's admins.

Admins are members with role ``admin`` and the chats listed in ``TelegramConfig.admin_chat_ids``
(which need not be members). Everyone else gets a polite refusal; every admin command, allowed
or refused, is written to the audit log (``storage.audit``) with who, what and the
arguments (never an invitation code: only its hash is stored anywhere).

* ``/crawl [SOURCE ...]`` — asks the daemon (``BotServices.start_crawl``, run off the event loop)
  to crawl now; the reply comes at once, the summary when the crawl ends. A second ``/crawl`` of a
  source whose crawl is still running is refused.
* ``/stato`` — source health, the outbox backlog, the last digest, and whatever the daemon adds
  (``BotServices.status``).
* ``/invita [member|staff|admin]`` — a one-time invitation link (``t.me/<bot>?start=<code>``).
* ``/membri`` — the members, with their role and flags.
* Staff (and admins): ``/digest on|off`` — the daily digest by Telegram (``Member.digest_telegram``).

Notices to admins (a source degraded, deliveries failing) are sent by ``notifier.delivery.admin``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from telegram import Bot, Update
from telegram.helpers import create_deep_linked_url

from notifier.bot.common import (
    Actor,
    BotDeps,
    CrawlSummary,
    Ctx,
    admin_only,
    deps,
    log,
    reply,
    send,
    staff_only,
    web_links,
)
from notifier.messages.formats import fmt_day, one_line
from notifier.messages.i18n import esc, t
from notifier.planning.digest import health_state
from storage import members
from storage.db import Database
from storage.invitations import create_invitation
from storage.outbox import backlog
from storage.planning import last_digest
from storage.sources import source_health

ROLES = ("member", "staff", "admin")
#: /membri lists at most this many (split over several messages when long).
MEMBERS_SHOWN = 300


def _when(value: datetime | None, lang: str) -> str:
    return fmt_day(value, lang) if value is not None else t(lang, "stato.never")


def summary_text(summaries: Sequence[CrawlSummary], sources: Sequence[str], lang: str) -> str:
    head = t(lang, "crawl.done", sources=", ".join(sources))
    if not summaries:
        return head + "\n" + t(lang, "crawl.none")
    lines = [
        t(
            lang,
            "crawl.line",
            name=s.name,
            outcome=s.outcome,
            new=s.new,
            changed=s.changed,
            unchanged=s.unchanged,
            errors=s.errors,
            requests=s.requests,
            seconds=f"{float(s.seconds):.0f}",
        )
        + (f" — {esc(one_line(s.reason)[:300])}" if s.reason else "")
        for s in summaries
    ]
    return "\n".join([head, *lines])


@admin_only("crawl")
async def crawl(update: Update, context: Ctx, actor: Actor) -> None:
    """/crawl [SOURCE ...] — start a crawl now; the summary follows when it ends."""
    d = deps(context)
    known = d.services.sources
    args = [a.strip().lower() for a in (context.args or []) if a.strip()]
    if len(args) > len(known):
        await reply(update, t(actor.lang, "crawl.usage", sources=", ".join(known)))
        return
    for name in args:
        if name not in known:
            await reply(
                update, t(actor.lang, "crawl.unknown_source", source=name[:40], sources=", ".join(known))
            )
            return
    sources = list(dict.fromkeys(args)) or list(known)
    start = d.services.start_crawl
    if start is None:
        await reply(update, t(actor.lang, "crawl.unavailable"))
        return
    busy = [s for s in sources if s in d.crawls_running]
    if busy:
        await reply(update, t(actor.lang, "crawl.busy", sources=", ".join(busy)))
        return
    d.crawls_running.update(sources)
    await d.audit(actor, "crawl", {"sources": sources})
    await reply(update, t(actor.lang, "crawl.started", sources=", ".join(sources)))
    # The application routes an exception of the task to the error handler; the daemon cancels
    # a crawl still running at shutdown (``cancel_background``) rather than wait for it.
    task = context.application.create_task(_run_crawl(context.bot, d, actor, sources), update=update)
    d.tasks.add(task)
    task.add_done_callback(d.tasks.discard)


async def _run_crawl(bot: Bot, d: BotDeps, actor: Actor, sources: list[str]) -> None:
    start = d.services.start_crawl
    assert start is not None
    try:
        summaries = await start(sources)
        text = summary_text(summaries, sources, actor.lang)
    except Exception as exc:
        # The daemon keeps running; the admin hears it failed, the log has the traceback.
        log.exception("crawl of %s started from Telegram failed", ", ".join(sources))
        text = t(actor.lang, "crawl.failed", sources=", ".join(sources), error=type(exc).__name__)
    finally:
        d.crawls_running.difference_update(sources)
    await send(bot, actor.chat_id, text)


def _status_text(db: Database, lang: str, extra: Mapping[str, Any]) -> str:
    parts = [t(lang, "stato.title"), t(lang, "stato.sources")]
    health = source_health(db)
    if not health:
        parts.append(t(lang, "stato.no_sources"))
    for h in health:
        # The digest's rule: failures, a degraded run or errors in the last run are not "ok".
        bad = health_state(h) not in ("ok", "never")
        parts.append(
            t(
                lang,
                "stato.source",
                flag="⚠️" if bad else "✅",
                name=h.name,
                outcome=h.last_outcome or "—",
                last_run=_when(h.last_run_at, lang),
                last_success=_when(h.last_success_at, lang),
                yield_=h.last_yield if h.last_yield is not None else "—",
                failures=h.consecutive_failures,
            )
        )
    counts = backlog(db)
    parts.append("")
    parts.append(
        t(
            lang,
            "stato.outbox",
            **{k: counts.get(k, 0) for k in ("pending", "sending", "failed", "dead", "sent")},
        )
    )
    digest = last_digest(db)
    parts.append(
        t(lang, "stato.digest", when=fmt_day(digest.made_at, lang))
        if digest
        else t(lang, "stato.digest_none")
    )
    if extra:
        parts.append("")
        parts.append(t(lang, "stato.daemon"))
        for key, value in list(extra.items())[:40]:
            parts.append(f"{esc(one_line(str(key))[:80])}: {esc(one_line(str(value))[:300])}")
    return "\n".join(parts)


@admin_only("status")
async def stato(update: Update, context: Ctx, actor: Actor) -> None:
    """/stato — source health, outbox backlog, last digest, daemon status."""
    d = deps(context)
    extra: Mapping[str, Any] = {}
    if d.services.status is not None:
        try:
            result = d.services.status()
            extra = await result if inspect.isawaitable(result) else result
        except Exception:
            # The status page still shows what storage knows.
            log.exception("the daemon status could not be read")
            extra = {"status": "?"}
    await d.audit(actor, "status", {})
    text = await d.run(_status_text, d.db, actor.lang, extra)
    await reply(update, text)


@admin_only("invite")
async def invita(update: Update, context: Ctx, actor: Actor) -> None:
    """/invita [member|staff|admin] — a one-time invitation link."""
    d = deps(context)
    args = context.args or []
    role = args[0].strip().lower() if args else "member"
    if len(args) > 1 or role not in ROLES:
        await reply(update, t(actor.lang, "invita.usage"))
        return
    now = d.now()
    ttl = d.services.invitation_ttl
    code = await d.run(create_invitation, d.db, role=role, now=now, ttl=ttl, created_by=actor.label)
    await d.audit(actor, "invite", {"role": role, "expires": (now + ttl).isoformat()})
    username = context.bot.username
    link = create_deep_linked_url(username, code)
    await reply(
        update, t(actor.lang, "invita.done", role=role, expires=fmt_day(now + ttl, actor.lang), link=link)
    )


def _member_lines(all_members: Iterable[members.MemberView], lang: str) -> list[str]:
    lines = []
    for m in all_members:
        flags = []
        if m.telegram_chat_id is None:
            flags.append(t(lang, "flag.no_chat"))
        elif not m.telegram_ok:
            flags.append(t(lang, "flag.blocked"))
        if m.paused:
            flags.append(t(lang, "flag.paused"))
        if not m.active:
            flags.append(t(lang, "flag.inactive"))
        if m.digest_telegram or m.digest_email:
            flags.append(t(lang, "flag.digest"))
        organisation = one_line(m.organisation or "")[:80]
        lines.append(
            t(
                lang,
                "membri.line",
                id=m.id,
                name=one_line(m.name)[:80],
                organisation=f" ({organisation})" if organisation else "",
                role=m.role,
                flags=(" · " + ", ".join(flags)) if flags else "",
            )
        )
    return lines


@admin_only("members")
async def membri(update: Update, context: Ctx, actor: Actor) -> None:
    """/membri — every member with role and flags."""
    d = deps(context)
    await d.audit(actor, "members", {})
    everyone = await d.run(members.list_members, d.db)
    if not everyone:
        await reply(update, t(actor.lang, "membri.none"))
        return
    lines = [t(actor.lang, "membri.header", total=len(everyone))]
    lines += _member_lines(everyone[:MEMBERS_SHOWN], actor.lang)
    if len(everyone) > MEMBERS_SHOWN:
        lines.append(t(actor.lang, "membri.more", more=len(everyone) - MEMBERS_SHOWN))
    await reply(update, "\n".join(lines))


@staff_only
async def digest(update: Update, context: Ctx, actor: Actor) -> None:
    """/digest on|off — the daily staff digest by Telegram."""
    d = deps(context)
    if actor.member is None:
        await reply(update, t(actor.lang, "digest.no_member"))
        return
    args = [a.lower() for a in (context.args or [])]
    wanted = (
        {"on": True, "si": True, "sì": True, "off": False, "no": False}.get(args[0])
        if len(args) == 1
        else None
    )
    if wanted is None:
        state = t(actor.lang, "digest.state_on" if actor.member.digest_telegram else "digest.state_off")
        await reply(update, t(actor.lang, "digest.usage", state=state))
        return
    await d.run(members.update_member, d.db, actor.member.id, now=d.now(), digest_telegram=wanted)
    await d.audit(actor, "digest", {"telegram": wanted})
    await reply(update, t(actor.lang, "digest.on" if wanted else "digest.off"))


@staff_only
async def web(update: Update, context: Ctx, actor: Actor) -> None:
    """/web — a one-time link to sign in to the web board (staff and admins)."""
    d = deps(context)
    links = await web_links(update, context, actor)
    if links is None:
        return
    if actor.member is None or not actor.member.is_staff:
        # An admin chat that is not a staff member has no account to sign in to.
        await reply(update, t(actor.lang, "web.no_member"))
        return
    link = await d.run(links.signin_link, actor.member.id)
    if link is None:
        await d.audit(actor, "web-link", {"refused": "rate"})
        await reply(update, t(actor.lang, "web.too_many"))
        return
    await d.audit(actor, "web-link", {"expires": link.expires_at.isoformat()})
    await reply(
        update, t(actor.lang, "web.link", link=link.url, expires=fmt_day(link.expires_at, actor.lang))
    )
