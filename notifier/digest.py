"""The daily staff digest: what came in, what changed, what closes soon, how the sources are.

:func:`build_digest` gathers, for the window since the last digest sent (``storage.planning``):

* **new calls** — duplicate groups first seen in the window, one entry per group (its canonical
  call, with the other portals it was seen on), grouped by source and, within a source, ordered
  by relevance to the cluster; in sections of their own, the new **partner searches** (EEN
  proposals: staff always see them, members only when they opted in) and the new **notices**
  (BURL acts linked to no call Sentinella holds: an act linked to a call shows as that call's
  change instead);
* **changes** — the changes that matter (:mod:`notifier.changes`) of calls already known before
  the window, one entry per group; smaller edits are only counted;
* **deadlines** — open calls whose final deadline falls in the next ``deadline_days`` (14);
* **source health** — one line per source (``storage.sources.source_health``).

*Relevance to the cluster* is the score of each call against a "cluster profile": the union of
the topics and keywords of every active member's profile (what the members actually asked for),
with no exclusions, filters or minimum budget (staff see everything; relevance only orders it).
With no member profile yet, it is every topic of the vocabulary. Calls that do not match score 0
and come after, by deadline; calls already closed come last.

:func:`render_digest` makes the HTML (autoescaping Jinja2, ``templates/digest.html.j2``) and the
plain text (``templates/digest.txt.j2``), Italian or English; :func:`render_digest_telegram` a
short Telegram HTML version (escaped with ``html.escape``, within Telegram's 4096 characters).
:func:`send_digest` delivers it to the staff who subscribed (``Member.digest_email``,
``Member.digest_telegram`` when ``DigestConfig.telegram`` is on) through :class:`DigestSender` s,
and records the digest only once at least one recipient got it, so a digest nobody received is
covered again by the next one. :func:`run_digest` is the scheduled job: window, build, send,
record, and nothing when the digest of the current slot was already sent.

Known limits: the digest window is read by event time; the first digest, or one after a long
gap, covers at most ``max_window_days``. A call seen on a second portal during the window but
first stored before it is not listed as new. Deadlines list only final closing dates, not the
stage deadlines of multi-stage calls.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from typing import Any, Protocol

from pydantic import ValidationError
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from notifier.alerts import MatcherFactory, MatcherLike, default_matcher, reason_lines
from notifier.changes import ChangeFact, changes_json, fmt_money, significant_changes
from notifier.config import DigestConfig, EmailConfig, MatchingConfig
from notifier.matching.eligibility import COMPANY_TYPES
from notifier.profiles import Profile, parse_profile
from notifier.render import (
    TELEGRAM_LIMIT,
    clean_subject,
    compose_email,
    countdown,
    email_environment,
    fmt_day,
    one_line,
    pick_lang,
    recipient_links,
    safe_url,
    source_label,
    tg_len,
)
from storage import planning
from storage.acts import linked_notices
from storage.calls import CallView, EventView, events_after, get_calls, group_calls
from storage.db import Database
from storage.members import all_profiles, list_members
from storage.records import Precision
from storage.sources import SourceHealth, source_health

log = logging.getLogger(__name__)

#: Longest title shown (titles are capped at 1,000 characters in storage already).
MAX_TITLE = 300
#: Reason lines shown per call.
MAX_DIGEST_REASONS = 3

# --- the digest as data ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestCall:
    """One call group as the digest shows it (the canonical call's values)."""

    call_id: int
    group_id: int | None
    source: str
    title: str
    url: str
    status: str
    opens: datetime | None
    opens_precision: Precision | None
    closes: datetime | None
    closes_precision: Precision | None
    #: The effective final deadline (end of day for a date-only closing).
    deadline: datetime | None
    sportello: bool
    budget_total: Decimal | None
    #: Relevance to the cluster (0 = no match) and why, by language ("it", "en").
    score: float = 0.0
    reasons: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Other sources the same call was seen on.
    also_on: tuple[str, ...] = ()
    #: call | notice | partner_search
    kind: str = "call"


@dataclass(frozen=True, slots=True)
class DigestChange:
    call: DigestCall
    event_ids: tuple[int, ...]
    facts: tuple[ChangeFact, ...]


@dataclass(frozen=True, slots=True)
class SourceSection:
    source: str
    new: tuple[DigestCall, ...]
    changes: tuple[DigestChange, ...]
    #: Entries beyond ``max_items_per_source``, counted but not listed.
    more_new: int = 0
    more_changes: int = 0
    #: What the section's new entries are: call | notice | partner_search.
    kind: str = "call"

    @property
    def key(self) -> str:
        return self.source if self.kind == "call" else f"{self.source}:{self.kind}"


@dataclass(frozen=True, slots=True)
class Digest:
    made_at: datetime
    period_start: datetime
    period_end: datetime
    sections: tuple[SourceSection, ...]
    deadlines: tuple[DigestCall, ...]
    health: tuple[SourceHealth, ...]
    #: Changes that did not matter enough to list (reworded texts and the like).
    minor_changes: int = 0
    deadline_days: int = 14

    @property
    def new_count(self) -> int:
        return self.count_new("call")

    def count_new(self, kind: str) -> int:
        return sum(len(s.new) + s.more_new for s in self.sections if s.kind == kind)

    @property
    def changed_count(self) -> int:
        return sum(len(s.changes) + s.more_changes for s in self.sections)

    def summary(self) -> dict[str, Any]:
        """A JSON-safe summary (kept on the ``digests`` row)."""
        return {
            "new": self.new_count,
            "notices": self.count_new("notice"),
            "partner_searches": self.count_new("partner_search"),
            "changed": self.changed_count,
            "minor_changes": self.minor_changes,
            "deadlines": len(self.deadlines),
            "sources": {
                s.key: {"new": len(s.new) + s.more_new, "changed": len(s.changes) + s.more_changes}
                for s in self.sections
            },
            "new_groups": [c.group_id for s in self.sections for c in s.new],
            "changes": [
                {
                    "group_id": ch.call.group_id,
                    "events": list(ch.event_ids),
                    "facts": changes_json(list(ch.facts)),
                }
                for s in self.sections
                for ch in s.changes
            ],
            "unhealthy_sources": [h.name for h in self.health if _health_state(h) not in ("ok", "never")],
        }


# --- relevance ------------------------------------------------------------------------------


def _all_topic_ids() -> list[str]:
    from notifier.matching import topics

    return list(topics.topic_ids())


def cluster_profile(
    profiles: Iterable[Profile], *, all_topics: Callable[[], list[str]] = _all_topic_ids
) -> Profile:
    """The union of the members' topics, keywords and beneficiary types; every topic when there
    is no profile. No exclusions, sources or minimum budget: those are one member's choices."""
    topic_ids: list[str] = []
    keywords: list[str] = []
    beneficiaries: set[str] = set()
    for profile in profiles:
        topic_ids.extend(t for t in profile.topics if t not in topic_ids)
        keywords.extend(k for k in profile.keywords if k not in keywords)
        # No type means "a company of any size": keep that when another member is a university.
        beneficiaries.update(profile.beneficiaries or COMPANY_TYPES)
    if not topic_ids and not keywords:
        topic_ids = all_topics()
    # Not validated again: every term was validated in its own profile, and the union may hold
    # more terms than one member's profile is allowed.
    return Profile.model_construct(
        topics=topic_ids,
        keywords=keywords,
        beneficiaries=sorted(beneficiaries),
        channels=[],
        alerts=[],
    )


def _member_profiles(db: Database) -> list[Profile]:
    out = []
    for _member, data in all_profiles(db, active=True):
        try:
            out.append(parse_profile(data))
        except ValidationError:
            continue
    return out


# --- building -------------------------------------------------------------------------------


def scheduled_at(day: date, config: DigestConfig) -> datetime:
    """The moment the digest of ``day`` is due (``config.time`` on that day, local time)."""
    return datetime.combine(day, config.time, tzinfo=config.tz)


def current_slot(now: datetime, config: DigestConfig) -> datetime:
    """The latest scheduled digest moment at or before ``now``."""
    local = now.astimezone(config.tz)
    slot = scheduled_at(local.date(), config)
    return slot if slot <= now else scheduled_at(local.date() - timedelta(days=1), config)


def digest_for_date(
    db: Database,
    day: date,
    *,
    config: DigestConfig,
    matching: MatchingConfig | None = None,
    matcher_factory: MatcherFactory | None = None,
) -> Digest:
    """The digest of ``day`` as its slot saw it: from the previous day's slot to that day's
    (``sentinella digest --date D``). Calls are shown as they are now; events by their time."""
    end = scheduled_at(day, config)
    start = scheduled_at(day - timedelta(days=1), config)
    return build_digest(
        db, now=end, since=start, config=config, matching=matching, matcher_factory=matcher_factory
    )


def digest_window(
    db: Database, *, now: datetime, since: datetime | None, config: DigestConfig
) -> tuple[datetime, datetime]:
    """``(start, end]`` of the next digest: from ``since``, else the last digest sent, else a day
    back; never more than ``max_window_days``."""
    start = since or planning.last_digest_end(db) or now - timedelta(days=1)
    if since is None:
        start = max(start, now - timedelta(days=config.max_window_days))
    return start, now


def build_digest(
    db: Database,
    *,
    now: datetime,
    since: datetime | None = None,
    config: DigestConfig,
    matching: MatchingConfig | None = None,
    matcher_factory: MatcherFactory | None = None,
) -> Digest:
    """Gather the digest for the window ending at ``now`` (see the module docstring)."""
    start, end = digest_window(db, now=now, since=since, config=config)
    events = _events_between(db, start, end)
    profile = cluster_profile(_member_profiles(db))
    matcher = (matcher_factory or default_matcher)([(0, profile)], matching or MatchingConfig())
    builder = _Builder(db, now=now, matcher=matcher)

    new_groups: dict[int, list[EventView]] = {}
    change_groups: dict[int, list[EventView]] = {}
    for event in events:
        if event.group_id is None:
            continue
        (new_groups if event.kind == "new" else change_groups).setdefault(event.group_id, []).append(event)

    new_items: list[DigestCall] = []
    notices: dict[int, list[CallView]] = {}
    for group_id in sorted(new_groups):
        calls = builder.group(group_id)
        if not calls or min(c.first_seen for c in calls) <= start:
            continue  # a known call seen on one more portal: not new
        if calls[0].kind == "notice":
            notices[calls[0].id] = calls
            continue
        new_items.append(builder.item(calls))
    linked = linked_notices(db, notices)
    new_items.extend(builder.item(calls) for cid, calls in notices.items() if cid not in linked)

    minor = 0
    change_items: list[DigestChange] = []
    new_ids = {i.group_id for i in new_items}
    for group_id, group_events in sorted(change_groups.items()):
        if group_id in new_ids:
            continue  # the new entry already shows the call as it is now
        calls = builder.group(group_id)
        if not calls:
            continue
        by_id = {c.id: c for c in calls}
        facts: list[ChangeFact] = []
        used: list[int] = []
        for event in group_events:
            call = by_id.get(event.call_id)
            found = significant_changes(
                event.kind, event.changes, at=event.at, deadline=call.final_deadline if call else None
            )
            if not found:
                minor += 1
                continue
            used.append(event.id)
            facts.extend(f for f in found if f not in facts)
        if facts:
            change_items.append(DigestChange(builder.item(calls), tuple(used), tuple(facts)))

    sections = _sections(new_items, change_items, config.max_items_per_source)
    deadlines = _deadlines(db, now=now, days=config.deadline_days, builder=builder)
    return Digest(
        made_at=now,
        period_start=start,
        period_end=end,
        sections=sections,
        deadlines=deadlines,
        health=tuple(source_health(db)),
        minor_changes=minor,
        deadline_days=config.deadline_days,
    )


def _events_between(db: Database, start: datetime, end: datetime) -> list[EventView]:
    ids = planning.event_ids_between(db, start, end)
    if not ids:
        return []
    wanted = set(ids)
    out: list[EventView] = []
    cursor = ids[0] - 1
    while cursor < ids[-1]:
        batch = events_after(db, cursor, limit=1000)
        if not batch:
            break
        out.extend(e for e in batch if e.id in wanted)
        cursor = batch[-1].id
    return out


class _Builder:
    def __init__(self, db: Database, *, now: datetime, matcher: MatcherLike) -> None:
        self.db = db
        self.now = now
        self.matcher = matcher
        self._groups: dict[int, list[CallView]] = {}

    def group(self, group_id: int) -> list[CallView]:
        """The group's calls, canonical first."""
        if group_id not in self._groups:
            self._groups[group_id] = group_calls(self.db, group_id)
        return self._groups[group_id]

    def item(self, calls: Sequence[CallView]) -> DigestCall:
        call = calls[0]
        score = 0.0
        reasons: dict[str, tuple[str, ...]] = {}
        best = None
        for candidate in calls:
            for match in self.matcher.match(candidate, now=self.now):
                if best is None or match.score > best.score:
                    best = match
        if best is not None:
            score = float(best.score)
            reasons = {
                lang: tuple(reason_lines(best.reasons, lang)[:MAX_DIGEST_REASONS]) for lang in ("it", "en")
            }
        also = tuple(dict.fromkeys(c.source for c in calls[1:] if c.source != call.source))
        return DigestCall(
            call_id=call.id,
            group_id=call.group_id,
            source=call.source,
            title=call.title,
            url=call.url,
            status=str(call.status),
            opens=call.opens,
            opens_precision=call.opens_precision,
            closes=call.closes,
            closes_precision=call.closes_precision,
            deadline=call.final_deadline,
            sportello=call.sportello,
            # The canonical portal's figure; else another portal's (Open Innovation's page of a
            # Bandi e Servizi call gives the allocation the call's own page may lack).
            budget_total=next((c.budget_total for c in calls if c.budget_total is not None), None),
            score=score,
            reasons=reasons,
            also_on=also,
            kind=call.kind,
        )


def _sort_by_relevance(items: Iterable[DigestCall]) -> list[DigestCall]:
    def key(item: DigestCall) -> tuple[bool, float, float, str, int]:
        # Closed calls last, then the most relevant, then the soonest deadline.
        deadline = item.deadline.timestamp() if item.deadline else float("inf")
        return (item.status == "closed", -item.score, deadline, item.title.casefold(), item.call_id)

    return sorted(items, key=key)


def _sections(
    new_items: Sequence[DigestCall], change_items: Sequence[DigestChange], limit: int
) -> tuple[SourceSection, ...]:
    keys = sorted(
        {(i.source, i.kind) for i in new_items} | {(c.call.source, c.call.kind) for c in change_items}
    )
    # Calls first, then partner searches, then notices; by source within each.
    keys.sort(key=lambda k: (_KIND_ORDER.get(k[1], 9), k[0]))
    out = []
    for source, kind in keys:
        new = _sort_by_relevance(i for i in new_items if (i.source, i.kind) == (source, kind))
        mine = [c for c in change_items if (c.call.source, c.call.kind) == (source, kind)]
        order = {id(i): n for n, i in enumerate(_sort_by_relevance(c.call for c in mine))}
        changes = sorted(mine, key=lambda c: order[id(c.call)])
        out.append(
            SourceSection(
                source=source,
                new=tuple(new[:limit]),
                changes=tuple(changes[:limit]),
                more_new=max(0, len(new) - limit),
                more_changes=max(0, len(changes) - limit),
                kind=kind,
            )
        )
    return tuple(out)


_KIND_ORDER = {"call": 0, "partner_search": 1, "notice": 2}


def _deadlines(db: Database, *, now: datetime, days: int, builder: _Builder) -> tuple[DigestCall, ...]:
    horizon = now + timedelta(days=days)
    # A date-only closing is stored at local midnight and lasts the whole day: look a day back.
    ids = planning.calls_closing_between(db, now - timedelta(days=1), horizon)
    seen_groups: set[int] = set()
    items: list[DigestCall] = []
    calls = sorted(get_calls(db, ids), key=lambda c: (c.final_deadline or horizon, c.id))
    for call in calls:
        deadline = call.final_deadline
        if deadline is None or not (now < deadline <= horizon):
            continue
        if not call.is_open(now) and call.status != "forthcoming":
            continue
        if call.kind != "call":
            continue  # a partner search's expiry is not a call's deadline
        key = call.group_id if call.group_id is not None else -call.id
        if key in seen_groups:
            continue
        seen_groups.add(key)
        group = builder.group(call.group_id) if call.group_id is not None else []
        # The call whose deadline put it on the list, with the group's other portals.
        items.append(builder.item([call, *(c for c in group if c.id != call.id)]))
    return tuple(sorted(items, key=lambda i: (i.deadline or horizon, i.call_id)))


# --- rendering ------------------------------------------------------------------------------

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


def _health_state(h: SourceHealth) -> str:
    if h.last_run_at is None:
        return "never"
    if h.consecutive_failures > 0 and h.last_outcome == "failed":
        return "failing"
    if h.degraded:
        return "degraded"
    return "ok"


def health_line(h: SourceHealth, lang: str = "it", *, now: datetime | None = None) -> str:
    """One plain line about a source: state, last success, failures, yield."""
    t = _TEXT[pick_lang(lang)]
    label = source_label(h.name, lang)
    state = _health_state(h)
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
        changes=[one_line(f.line(lang)) for f in facts],
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
    bad = [h for h in digest.health if _health_state(h) in ("failing", "degraded")]
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


# --- sending --------------------------------------------------------------------------------


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

    def __init__(self, channel: Any, config: EmailConfig, *, prefix: str | None = None) -> None:
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
    """The short digest by Telegram, with the Telegram channel's bot (rate limiter included)."""

    name = "telegram"

    def __init__(self, channel: Any) -> None:
        self.channel = channel

    async def send_digest(self, digest: Digest, recipient: DigestRecipient) -> str:
        from telegram import LinkPreviewOptions
        from telegram.constants import ParseMode

        if recipient.telegram_chat_id is None:
            raise ValueError("no Telegram chat")
        from telegram.error import TelegramError

        bot = self.channel.bot
        try:
            await bot.initialize()  # idempotent
            sent = await bot.send_message(
                chat_id=recipient.telegram_chat_id,
                text=render_digest_telegram(digest, language=recipient.language),
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        except TelegramError as exc:
            # The failure is reported and logged: its text must not quote the token.
            raise RuntimeError(self.channel.redact(f"{type(exc).__name__}: {exc}")) from None
        return f"{recipient.telegram_chat_id}:{sent.message_id}"


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
    """Digest senders over the notifier's channels (``notifier.channels.build_channels``).

    E-mail goes through an e-mail channel that can send a prepared message; Telegram through a
    channel with a ``bot`` (only when ``config.telegram``); a console stand-in prints the digest.
    """
    from notifier.channels import ConsoleChannel, EmailChannel, TelegramChannel

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
