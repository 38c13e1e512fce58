"""The staff digest as a message: HTML and plain text e-mail parts, a short Telegram version.

:func:`render_digest` makes the HTML (autoescaping Jinja2, ``templates/digest.html.j2``) and the
plain text (``templates/digest.txt.j2``), Italian or English; :func:`render_digest_telegram` a
short Telegram HTML version (escaped with ``html.escape``, within Telegram's 4096 characters);
:func:`digest_email` the e-mail to one staff member. The digest itself is built as data by
:mod:`notifier.planning.digest`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from notifier.config import EmailConfig
from notifier.messages.alerts import (
    TELEGRAM_LIMIT,
    clean_subject,
    compose_email,
    email_environment,
    recipient_links,
)
from notifier.messages.changes import change_line
from notifier.messages.formats import (
    countdown,
    fmt_day,
    fmt_money,
    one_line,
    pick_lang,
    safe_url,
    source_label,
    tg_len,
)
from notifier.planning.changes import ChangeFact
from notifier.planning.digest import _KIND_ORDER, Digest, DigestCall, _sort_by_relevance, health_state
from storage.records import Precision
from storage.sources import SourceHealth

#: Longest title shown (titles are capped at 1,000 characters in storage already).
MAX_TITLE = 300

_TEXT = {
    "it": {
        "title": "Sentinella — digest del {day}",
        "period": "Dal {start} al {end}",
        "summary": (
            "Nuovi bandi: {new} · aggiornamenti: {changed} · scadenze nei prossimi {days} giorni: {deadlines}"
        ),
        "new": "Nuovi bandi",
        "new_partner_search": "🤝 Nuove ricerche partner (EEN)",
        "new_notice": "Avvisi, esiti e atti non collegati a un bando (non sono bandi)",
        "changes": "Aggiornamenti",
        "none_new": "Nessun nuovo bando né aggiornamento rilevante in questo periodo.",
        "more": "… e altri {n}",
        "minor": "{n} modifiche minori (testi, allegati) non elencate.",
        "deadlines": "Scadenze dei prossimi {days} giorni",
        "none_deadlines": "Nessuna scadenza nei prossimi {days} giorni.",
        "health": "Stato delle fonti",
        "none_health": "Nessuna fonte ancora interrogata.",
        "closes": "Scadenza",
        "opens": "Apertura",
        "sportello": "a sportello",
        "closed": "chiuso",
        "budget": "Dotazione",
        "why": "Pertinenza",
        "also_on": "anche su",
        "open": "Apri",
        "footer": (
            "Digest giornaliero per lo staff del cluster. "
            "Per non riceverlo più: /digest off nel bot o chiedi a un amministratore."
        ),
        "subject": "Digest del {day} — nuovi: {new}, aggiornamenti: {changed}",
        "state_ok": "ok",
        "state_degraded": "degradata",
        "state_failing": "in errore",
        "state_never": "mai interrogata",
        "last_ok": "ultimo successo {at}",
        "never_ok": "mai riuscita",
        "failures": "{n} errori consecutivi",
        "yield": "{n} bandi nell'ultima lettura",
        "stored": "{n} in archivio",
    },
    "en": {
        "title": "Sentinella — digest of {day}",
        "period": "From {start} to {end}",
        "summary": "New calls: {new} · updates: {changed} · deadlines in the next {days} days: {deadlines}",
        "new": "New calls",
        "new_partner_search": "🤝 New partner searches (EEN)",
        "new_notice": "Notices, results and acts linked to no call (not calls)",
        "changes": "Updates",
        "none_new": "No new call or relevant update in this period.",
        "more": "… and {n} more",
        "minor": "{n} minor changes (texts, attachments) not listed.",
        "deadlines": "Deadlines in the next {days} days",
        "none_deadlines": "No deadline in the next {days} days.",
        "health": "Sources",
        "none_health": "No source crawled yet.",
        "closes": "Deadline",
        "opens": "Opens",
        "sportello": "first come, first served",
        "closed": "closed",
        "budget": "Budget",
        "why": "Relevance",
        "also_on": "also on",
        "open": "Open",
        "footer": "Daily digest for the cluster staff. To stop it: /digest off in the bot, or ask an admin.",
        "subject": "Digest of {day} — new: {new}, updates: {changed}",
        "state_ok": "ok",
        "state_degraded": "degraded",
        "state_failing": "failing",
        "state_never": "never crawled",
        "last_ok": "last success {at}",
        "never_ok": "never succeeded",
        "failures": "{n} failures in a row",
        "yield": "{n} calls in the last run",
        "stored": "{n} stored",
    },
}


def health_line(h: SourceHealth, lang: str = "it", *, now: datetime | None = None) -> str:
    """One plain line about a source: state, last success, failures, yield."""
    t = _TEXT[pick_lang(lang)]
    label = source_label(h.name, lang)
    state = health_state(h)
    parts = [t[f"state_{state}"]]
    if state != "never":
        if h.last_success_at is not None:
            parts.append(t["last_ok"].format(at=fmt_day(h.last_success_at, lang)))
        else:
            parts.append(t["never_ok"])
        if h.consecutive_failures:
            parts.append(t["failures"].format(n=h.consecutive_failures))
        if h.last_yield is not None:
            parts.append(t["yield"].format(n=h.last_yield))
    parts.append(t["stored"].format(n=h.calls))
    return one_line(f"{label}: " + ", ".join(parts))


@dataclass(slots=True)
class _Entry:
    """A call as plain strings, the same for the HTML and the text version."""

    title: str
    url: str | None
    source: str
    closes: str
    budget: str
    why: str
    also_on: str
    changes: list[str]


def _entry(item: DigestCall, lang: str, now: datetime, facts: Sequence[ChangeFact] = ()) -> _Entry:
    t = _TEXT[lang]
    title = one_line(item.title) or "—"
    if len(title) > MAX_TITLE:
        title = title[: MAX_TITLE - 1].rstrip() + "…"
    closes = ""
    if item.closes is not None and item.deadline is not None:
        closes = f"{t['closes']}: {fmt_day(item.closes, lang, item.closes_precision)}"
        if item.status == "closed":
            closes += f" ({t['closed']})"
        elif item.deadline > now:
            closes += (
                f" ({countdown(item.deadline, now, lang, verb='closes', precision=item.closes_precision)})"
            )
    elif item.sportello:
        closes = t["sportello"]
        if item.opens is not None:
            closes += f", {t['opens'].lower()}: {fmt_day(item.opens, lang, item.opens_precision)}"
    reasons = item.reasons.get(lang) or item.reasons.get("it") or ()
    also = ", ".join(source_label(s, lang) for s in item.also_on)
    return _Entry(
        title=title,
        url=safe_url(item.url),
        source=one_line(source_label(item.source, lang)),
        closes=closes,
        budget=f"{t['budget']}: {fmt_money(item.budget_total, lang)}"
        if item.budget_total is not None
        else "",
        why=one_line("; ".join(reasons)),
        also_on=f"{t['also_on']} {one_line(also)}" if also else "",
        changes=[one_line(change_line(f, lang)) for f in facts],
    )


def _context(digest: Digest, lang: str) -> dict[str, Any]:
    t = _TEXT[lang]
    now = digest.made_at
    day = fmt_day(digest.period_end, lang, Precision.DATE)
    sections = []
    for s in digest.sections:
        sections.append(
            {
                "label": one_line(source_label(s.source, lang)),
                "new_title": t["new" if s.kind == "call" else f"new_{s.kind}"],
                "new": [_entry(i, lang, now) for i in s.new],
                "changes": [_entry(c.call, lang, now, c.facts) for c in s.changes],
                "more_new": t["more"].format(n=s.more_new) if s.more_new else "",
                "more_changes": t["more"].format(n=s.more_changes) if s.more_changes else "",
            }
        )
    return {
        "lang": lang,
        "t": t,
        "title": t["title"].format(day=day),
        "period": t["period"].format(
            start=fmt_day(digest.period_start, lang), end=fmt_day(digest.period_end, lang)
        ),
        "summary": t["summary"].format(
            new=digest.new_count,
            changed=digest.changed_count,
            deadlines=len(digest.deadlines),
            days=digest.deadline_days,
        ),
        "sections": sections,
        "minor": t["minor"].format(n=digest.minor_changes) if digest.minor_changes else "",
        "deadlines_title": t["deadlines"].format(days=digest.deadline_days),
        "none_deadlines": t["none_deadlines"].format(days=digest.deadline_days),
        "deadlines": [_entry(i, lang, now) for i in digest.deadlines],
        "health": [health_line(h, lang) for h in digest.health],
    }


def render_digest(digest: Digest, *, language: str = "it") -> tuple[str, str]:
    """The digest as ``(html, text)`` in Italian (default) or English."""
    lang = pick_lang(language)
    env = email_environment()
    context = _context(digest, lang)
    return (
        env.get_template("digest.html.j2").render(context),
        env.get_template("digest.txt.j2").render(context),
    )


def digest_subject(digest: Digest, *, language: str = "it", prefix: str = "Sentinella") -> str:
    lang = pick_lang(language)
    day = fmt_day(digest.period_end, lang, Precision.DATE)
    text = _TEXT[lang]["subject"].format(day=day, new=digest.new_count, changed=digest.changed_count)
    return clean_subject(f"[{prefix}] {text}")


def render_digest_telegram(digest: Digest, *, language: str = "it", limit: int = TELEGRAM_LIMIT) -> str:
    """A short Telegram HTML digest: counts, the most relevant new calls, deadlines, problems.

    Every scraped value is escaped; entries are added while the message stays within ``limit``
    (the rest are counted), so markup is never cut.
    """
    lang = pick_lang(language)
    t = _TEXT[lang]
    ctx = _context(digest, lang)
    head = [f"<b>{html.escape(ctx['title'])}</b>", html.escape(ctx["summary"])]
    body: list[str] = []

    def link(e: _Entry) -> str:
        title = html.escape(e.title)
        if e.url:
            return f'<a href="{html.escape(e.url, quote=True)}">{title}</a>'
        return title

    for kind in _KIND_ORDER:
        new = _sort_by_relevance(i for s in digest.sections if s.kind == kind for i in s.new)
        if new:
            body.append(f"\n<b>{html.escape(t['new' if kind == 'call' else f'new_{kind}'])}</b>")
            body.extend(f"• {link(_entry(i, lang, digest.made_at))}" for i in new)
    changes = [c for s in digest.sections for c in s.changes]
    if changes:
        body.append(f"\n<b>{html.escape(t['changes'])}</b>")
        for c in changes:
            e = _entry(c.call, lang, digest.made_at, c.facts)
            body.append(f"• {link(e)}: {html.escape('; '.join(e.changes))}")
    if digest.deadlines:
        body.append(f"\n<b>{html.escape(ctx['deadlines_title'])}</b>")
        for i in digest.deadlines:
            e = _entry(i, lang, digest.made_at)
            body.append(f"• {link(e)} — {html.escape(e.closes)}")
    bad = [h for h in digest.health if health_state(h) in ("failing", "degraded")]
    if bad:
        body.append(f"\n<b>{html.escape(t['health'])}</b>")
        body.extend(f"• {html.escape(health_line(h, lang))}" for h in bad)

    out = "\n".join(head)
    for n, line in enumerate(body):
        more = len(body) - n
        tail = "\n" + html.escape(t["more"].format(n=more))
        if tg_len(out + "\n" + line) + tg_len(tail) > limit:
            return out + tail
        out += "\n" + line
    return out


def digest_email(
    digest: Digest,
    *,
    to: str,
    name: str = "",
    language: str = "it",
    email: EmailConfig,
    prefix: str | None = None,
    member_id: int | None = None,
) -> EmailMessage:
    """The digest as a multipart (text + HTML) e-mail to one staff member (``member_id`` gives
    the message that member's own unsubscribe links, when the web app serves them)."""
    if not to or any(c in to for c in "\r\n<>") or "@" not in to:
        raise ValueError("no usable e-mail address")
    html_part, text_part = render_digest(digest, language=language)
    return compose_email(
        email,
        subject=digest_subject(digest, language=language, prefix=prefix or email.subject_prefix),
        to=to,
        name=name,
        at=digest.made_at,
        lang=pick_lang(language),
        text_part=text_part,
        html_part=html_part,
        unsubscribe=None if member_id is None else recipient_links(email, member_id, "digest"),
    )
