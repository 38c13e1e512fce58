"""The staff digest as a message: HTML and plain text e-mail parts, a short Telegram version.

:func:`render_digest` makes the HTML (autoescaping Jinja2, ``templates/digest.html.j2``: one
column that reads on a phone) and the plain text (``templates/digest.txt.j2``), Italian or
English, in the order of :mod:`notifier.planning.digest`: closing soon, new calls by theme,
changes, notices, partner searches, sources. Each call says where it comes from, its deadline
with a countdown, its budget, why it is relevant, the members its alerts went to and their
feedback. :func:`digest_telegram` is the short Telegram version (HTML escaped with
``html.escape``, and its plain-text twin for the channel's fallback, within Telegram's 4096
characters); :func:`digest_email` the e-mail to one staff member, whose unsubscribe link turns
that member's digest off. The digest itself is built as data by :mod:`notifier.planning.digest`.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from notifier import catalogue
from notifier.config import EmailConfig
from notifier.matching.topics import topic_label
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
    shorten,
    source_label,
    tg_len,
)
from notifier.planning.changes import ChangeFact
from notifier.planning.digest import (
    FOUND_CLOSED,
    HEALTH_STATES,
    MAX_REACH_NAMES,
    OTHER,
    Digest,
    DigestCall,
    Reach,
    health_state,
)
from storage.records import Precision
from storage.sources import SourceHealth

#: Longest title shown (titles are capped at 1,000 characters in storage already).
MAX_TITLE = 300
#: Longest title in the Telegram digest.
MAX_TELEGRAM_TITLE = 120

_TEXT = catalogue.section("digest")


def health_line(h: SourceHealth, lang: str = "it", *, now: datetime | None = None) -> str:
    """One plain line about a source: state, last success, failures, errors, yield."""
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
            key = "failures_one" if h.consecutive_failures == 1 else "failures"
            parts.append(t[key].format(n=h.consecutive_failures))
        if h.last_errors:
            parts.append(t["run_errors_one" if h.last_errors == 1 else "run_errors"].format(n=h.last_errors))
        if h.last_yield is not None:
            parts.append(t["yield"].format(n=h.last_yield))
    parts.append(t["stored"].format(n=h.calls))
    return one_line(f"{label}: " + ", ".join(parts))


def theme_label(theme: str, lang: str) -> str:
    t = _TEXT[lang]
    return t["theme_other"] if theme == OTHER else one_line(topic_label(theme, lang))


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
    reach: str
    feedback: str
    new: bool
    closed: bool


def _names(names: Sequence[str], lang: str) -> str:
    """Members by name, several of one organisation once ("Example srl ×2"), the first few only."""
    counts = Counter(one_line(n) for n in names)
    labels = [f"{n} ×{k}" if k > 1 else n for n, k in counts.items()]
    shown = ", ".join(labels[:MAX_REACH_NAMES])
    if len(labels) > MAX_REACH_NAMES:
        shown += " " + _TEXT[lang]["more_names"].format(n=len(labels) - MAX_REACH_NAMES)
    return shown


def reach_lines(reach: Reach, lang: str, *, alerted: bool = True) -> tuple[str, str]:
    """Who the call went to, and their feedback: two plain lines (either may be empty).
    ``alerted=False`` (notices) says nothing when nobody was sent it."""
    t = _TEXT[lang]
    parts = []
    if reach.sent:
        parts.append(t["sent_to"].format(n=len(reach.sent), names=_names(reach.sent, lang)))
    if reach.queued:
        queued = t["queued_for"].format(n=len(reach.queued), names=_names(reach.queued, lang))
        parts.append(queued if parts else queued[:1].upper() + queued[1:])
    if reach.undelivered:
        undelivered = t["undelivered"].format(n=reach.undelivered)
        parts.append(undelivered if parts else undelivered[:1].upper() + undelivered[1:])
    if not parts and alerted:
        parts.append(t["nobody"])
    feedback = []
    if reach.interested:
        feedback.append(t["interested"].format(n=reach.interested))
    if reach.not_for_us:
        feedback.append(t["not_for_us"].format(n=reach.not_for_us))
    return "; ".join(parts), " · ".join(feedback)


def _fact_line(fact: ChangeFact, lang: str) -> str:
    if fact.kind == FOUND_CLOSED:
        return _TEXT[lang]["found_closed"]
    return one_line(change_line(fact, lang))


def _entry(
    item: DigestCall, lang: str, now: datetime, facts: Sequence[ChangeFact] = (), *, badge: bool = False
) -> _Entry:
    """``badge``: mark a new call "NUOVO" (in the closing list; every other section says it)."""
    t = _TEXT[lang]
    closes = ""
    closed = item.closed(now)
    if item.closes is not None and item.deadline is not None:
        closes = f"{t['closes']}: {fmt_day(item.closes, lang, item.closes_precision)}"
        if closed:
            closes += f" ({t['closed']})"
        else:
            closes += (
                f" ({countdown(item.deadline, now, lang, verb='closes', precision=item.closes_precision)})"
            )
    elif item.sportello:
        closes = t["sportello"]
        if item.opens is not None:
            closes += f", {t['opens'].lower()}: {fmt_day(item.opens, lang, item.opens_precision)}"
    elif closed:
        closes = t["closed"]
    reasons = item.reasons.get(lang) or item.reasons.get("it") or ()
    also = ", ".join(source_label(s, lang) for s in item.also_on)
    reach, feedback = reach_lines(item.reach, lang, alerted=item.kind != "notice")
    return _Entry(
        title=shorten(item.title, MAX_TITLE) or "—",
        url=safe_url(item.url),
        source=one_line(source_label(item.source, lang)),
        closes=closes,
        budget=f"{t['budget']}: {fmt_money(item.budget_total, lang)}"
        if item.budget_total is not None
        else "",
        why=one_line("; ".join(reasons)),
        also_on=f"{t['also_on']} {one_line(also)}" if also else "",
        changes=[_fact_line(f, lang) for f in facts],
        reach=reach,
        feedback=feedback,
        new=badge and item.new and not closed,
        closed=closed,
    )


def _counts(digest: Digest, lang: str) -> list[str]:
    """The digest at a glance: one short item per non-empty section (closing and new always)."""
    t = _TEXT[lang]
    out = [
        t["count_closing"].format(days=digest.deadline_days, n=digest.closing_count),
        t["count_new"].format(n=digest.new_count),
        t["count_changed"].format(n=digest.changed_count),
    ]
    if digest.notice_count:
        out.append(t["count_notices"].format(n=digest.notice_count))
    if digest.partner_search_count:
        out.append(t["count_partner_searches"].format(n=digest.partner_search_count))
    if digest.unhealthy:
        out.append(t["count_sources"].format(n=len(digest.unhealthy)))
    return [c[:1].upper() + c[1:] for c in out]


def _more(t: Mapping[str, str], n: int) -> str:
    return t["more"].format(n=n) if n else ""


def _context(digest: Digest, lang: str, unsubscribe_url: str | None = None) -> dict[str, Any]:
    t = _TEXT[lang]
    now = digest.made_at
    day = fmt_day(digest.period_end, lang, Precision.DATE)
    themes = [
        {
            "label": theme_label(s.theme, lang),
            "entries": [_entry(i, lang, now) for i in s.calls],
            "more": _more(t, s.more),
        }
        for s in digest.themes
    ]
    worst = {state: n for n, state in enumerate(HEALTH_STATES)}
    problems = sorted(digest.unhealthy, key=lambda h: (worst[health_state(h)], h.name))
    fine = [h for h in digest.health if health_state(h) == "ok"]
    never = [h for h in digest.health if health_state(h) == "never"]
    return {
        "lang": lang,
        "t": t,
        "title": t["title"].format(day=day),
        "period": t["period"].format(
            start=fmt_day(digest.period_start, lang), end=fmt_day(digest.period_end, lang)
        ),
        "counts": _counts(digest, lang),
        "empty": digest.empty,
        "closing_title": t["closing"].format(days=digest.deadline_days),
        "closing": [_entry(i, lang, now, badge=True) for i in digest.closing],
        "more_closing": _more(t, digest.more_closing),
        "themes": themes,
        "changes": [_entry(c.call, lang, now, c.facts) for c in digest.changes],
        "more_changes": _more(t, digest.more_changes),
        "minor": t["minor"].format(n=digest.minor_changes) if digest.minor_changes else "",
        "notices": [_entry(i, lang, now) for i in digest.notices],
        "more_notices": _more(t, digest.more_notices),
        "partner_searches": [_entry(i, lang, now) for i in digest.partner_searches],
        "more_partner_searches": _more(t, digest.more_partner_searches),
        "problems": [{"state": health_state(h), "line": health_line(h, lang)} for h in problems],
        "health_ok": ", ".join(one_line(source_label(h.name, lang)) for h in fine),
        "health_never": ", ".join(one_line(source_label(h.name, lang)) for h in never),
        "has_health": bool(digest.health),
        "unsubscribe_url": safe_url(unsubscribe_url) if unsubscribe_url else None,
    }


def render_digest(
    digest: Digest, *, language: str = "it", unsubscribe_url: str | None = None
) -> tuple[str, str]:
    """The digest as ``(html, text)`` in Italian (default) or English. ``unsubscribe_url`` is
    the recipient's own link that turns their digest off (else the footer names ``/digest off``)."""
    lang = pick_lang(language)
    env = email_environment()
    context = _context(digest, lang, unsubscribe_url)
    return (
        env.get_template("digest.html.j2").render(context),
        env.get_template("digest.txt.j2").render(context),
    )


def digest_subject(digest: Digest, *, language: str = "it", prefix: str = "Sentinella") -> str:
    lang = pick_lang(language)
    day = fmt_day(digest.period_end, lang, Precision.DATE)
    text = _TEXT[lang]["subject"].format(
        day=day, new=digest.new_count, changed=digest.changed_count, closing=digest.closing_count
    )
    return clean_subject(f"[{prefix}] {text}")


@dataclass(frozen=True, slots=True)
class TelegramDigest:
    """The short digest for Telegram: HTML, and the same in plain text (the channel sends that
    when Telegram refuses the HTML)."""

    html: str
    text: str


def digest_telegram(digest: Digest, *, language: str = "it", limit: int = TELEGRAM_LIMIT) -> TelegramDigest:
    """A short Telegram digest: counts, what closes soon, new calls by theme (with their
    "Mi interessa" count), changes, problem sources; notices and partner searches counted.

    Every scraped value is escaped; entries are added while both versions stay within ``limit``
    (the rest are counted), so markup is never cut.
    """
    lang = pick_lang(language)
    t = _TEXT[lang]
    ctx = _context(digest, lang)
    now = digest.made_at
    esc = html.escape
    head_html = [f"<b>{esc(ctx['title'])}</b>", esc(" · ".join(ctx["counts"]))]
    head_text = [ctx["title"], " · ".join(ctx["counts"])]
    body: list[tuple[str, str]] = []

    def heading(text: str) -> None:
        body.append((f"\n<b>{esc(text)}</b>", f"\n{text}"))

    def line(item: DigestCall, extra: str = "", facts: Sequence[ChangeFact] = ()) -> None:
        e = _entry(item, lang, now, facts)
        title = shorten(e.title, MAX_TELEGRAM_TITLE)
        link = f'<a href="{esc(e.url, quote=True)}">{esc(title)}</a>' if e.url else esc(title)
        tail = " — ".join(p for p in (extra, "; ".join(e.changes), e.feedback) if p)
        body.append(
            (
                f"• {link}" + (f" — {esc(tail)}" if tail else ""),
                f"• {title}" + (f" — {tail}" if tail else "") + (f"\n  {e.url}" if e.url else ""),
            )
        )

    if digest.closing:
        heading(ctx["closing_title"])
        for item in digest.closing:
            when = ""
            if item.deadline is not None:
                when = countdown(item.deadline, now, lang, verb="closes", precision=item.closes_precision)
            line(item, ", ".join(p for p in (t["badge_new"] if item.new else "", when) if p))
    if digest.themes:
        heading(t["new"])
    for section in digest.themes:
        label = theme_label(section.theme, lang)
        body.append((f"<i>{esc(label)}</i>", label))
        for item in section.calls:
            line(item)
    if digest.changes:
        heading(t["changes"])
        for change in digest.changes:
            line(change.call, facts=change.facts)
    if ctx["problems"]:
        heading(t["health"])
        for problem in ctx["problems"]:
            text = problem["line"]
            body.append((f"• {esc(text)}", f"• {text}"))

    out_html, out_text = "\n".join(head_html), "\n".join(head_text)
    for n, (line_html, line_text) in enumerate(body):
        more = t["more"].format(n=len(body) - n)
        if (
            tg_len(out_html + "\n" + line_html) + tg_len(more) + 1 > limit
            or tg_len(out_text + "\n" + line_text) + tg_len(more) + 1 > limit
        ):
            return TelegramDigest(out_html + "\n" + esc(more), out_text + "\n" + more)
        out_html += "\n" + line_html
        out_text += "\n" + line_text
    return TelegramDigest(out_html, out_text)


def render_digest_telegram(digest: Digest, *, language: str = "it", limit: int = TELEGRAM_LIMIT) -> str:
    """The Telegram digest's HTML (:func:`digest_telegram`)."""
    return digest_telegram(digest, language=language, limit=limit).html


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
    """The digest as a multipart (text + HTML) e-mail to one staff member. ``member_id`` gives
    the message that member's own unsubscribe links (scope ``digest``: they turn the digest off,
    not the member's alerts), in List-Unsubscribe and in the footer, when the web app serves them."""
    if not to or any(c in to for c in "\r\n<>") or "@" not in to:
        raise ValueError("no usable e-mail address")
    links = None if member_id is None else recipient_links(email, member_id, "digest")
    html_part, text_part = render_digest(
        digest, language=language, unsubscribe_url=links.url if links is not None else None
    )
    return compose_email(
        email,
        subject=digest_subject(digest, language=language, prefix=prefix or email.subject_prefix),
        to=to,
        name=name,
        at=digest.made_at,
        lang=pick_lang(language),
        text_part=text_part,
        html_part=html_part,
        unsubscribe=links,
    )
