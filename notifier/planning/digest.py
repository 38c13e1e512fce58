"""The daily staff digest as data: what closes soon, what came in, what changed, how the sources are.

:func:`build_digest` gathers, for the window since the last digest sent (``storage.planning``),
in the order staff read it:

* **closing** — open calls whose final deadline falls in the next ``deadline_days`` (14), soonest
  first; a call new in the window is listed here (marked new) and not again below;
* **new calls by theme** — duplicate groups first seen in the window, one entry per group (its
  canonical call, with the other portals it was seen on). A call's *theme* is its best topic
  against the cluster profile (the topic of its strongest reason), else ``other``; themes follow
  the vocabulary's order, ``other`` last; within a theme, the most relevant first;
* **changes** — the changes that matter (:mod:`notifier.planning.changes`) of calls already known
  before the window, one entry per group, and the calls first seen already closed (a closed
  call is never listed as new); smaller edits are only counted;
* **notices** — BURL acts linked to no call Sentinella holds (an act linked to a call shows as
  that call's change instead); **partner searches** (EEN proposals) in a section of their own;
* **source health** — one entry per source (``storage.sources.source_health``), judged by
  :func:`health_state`: a source with errors in its last run, failures or a degraded run is
  never "ok".

Each call carries its **reach**: the members its alerts went to or wait to go to (the outbox,
``storage.planning.alert_reach``) and their feedback ("Mi interessa", "Non per noi").

*Relevance to the cluster* is the score of each call against a "cluster profile": the union of
the topics and keywords of every active member's profile (what the members actually asked for),
with no exclusions, filters or minimum budget (staff see everything; relevance only orders it).
With no member profile yet, it is every topic of the vocabulary. Calls that do not match score 0
and come after, by deadline.

Rendering is :mod:`notifier.messages.digest`; sending and the scheduled job
:mod:`notifier.delivery.digest`.

Known limits: the digest window is read by event time; the first digest, or one after a long
gap, covers at most ``max_window_days``. A call seen on a second portal during the window but
first stored before it is not listed as new. Deadlines list only final closing dates, not the
stage deadlines of multi-stage calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from notifier.config import DigestConfig, MatchingConfig
from notifier.matching.eligibility import COMPANY_TYPES
from notifier.matching.engine import reason_lines
from notifier.matching.profiles import Profile, parse_profile
from notifier.planning.alerts import MatcherFactory, MatcherLike, default_matcher
from notifier.planning.changes import ChangeFact, changes_json, significant_changes
from storage import planning
from storage.acts import linked_notices
from storage.calls import CallView, EventView, events_after, get_calls, group_calls
from storage.db import Database
from storage.members import all_profiles, list_members
from storage.records import Precision
from storage.sources import SourceHealth, source_health

log = logging.getLogger(__name__)

#: Reason lines shown per call.
MAX_DIGEST_REASONS = 3

# --- the digest as data ----------------------------------------------------------------------


#: The theme of a call that matches none of the cluster's topics.
OTHER = "other"
#: Member names shown per call (the rest are counted).
MAX_REACH_NAMES = 6


@dataclass(frozen=True, slots=True)
class Reach:
    """Who a call's alerts went to, and what they said of it (feedback buttons)."""

    #: Members (organisation, else name) whose alert went out, and whose alert waits to be sent.
    sent: tuple[str, ...] = ()
    queued: tuple[str, ...] = ()
    #: Members whose alert was given up on (blocked bot, refused address).
    undelivered: int = 0
    interested: int = 0
    not_for_us: int = 0

    @property
    def members(self) -> int:
        return len(self.sent) + len(self.queued)


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
    #: The best topic against the cluster profile (a topic id), else :data:`OTHER`.
    theme: str = OTHER
    #: First seen in the digest's window.
    new: bool = False
    reach: Reach = field(default_factory=Reach)

    def closed(self, now: datetime) -> bool:
        return self.status == "closed" or (self.deadline is not None and self.deadline <= now)


@dataclass(frozen=True, slots=True)
class DigestChange:
    call: DigestCall
    event_ids: tuple[int, ...]
    facts: tuple[ChangeFact, ...]


@dataclass(frozen=True, slots=True)
class ThemeSection:
    """The new calls of one theme, the most relevant first."""

    theme: str
    calls: tuple[DigestCall, ...]
    #: Entries beyond ``max_items_per_section``, counted but not listed.
    more: int = 0


@dataclass(frozen=True, slots=True)
class Digest:
    made_at: datetime
    period_start: datetime
    period_end: datetime
    #: Open calls closing within ``deadline_days``, soonest first.
    closing: tuple[DigestCall, ...]
    themes: tuple[ThemeSection, ...]
    changes: tuple[DigestChange, ...]
    notices: tuple[DigestCall, ...]
    partner_searches: tuple[DigestCall, ...]
    health: tuple[SourceHealth, ...]
    #: Changes that did not matter enough to list (reworded texts and the like).
    minor_changes: int = 0
    deadline_days: int = 14
    more_closing: int = 0
    more_changes: int = 0
    more_notices: int = 0
    more_partner_searches: int = 0

    @property
    def new_calls(self) -> tuple[DigestCall, ...]:
        """Every new call listed: those closing soon, then those by theme."""
        return tuple(c for c in self.closing if c.new) + tuple(c for t in self.themes for c in t.calls)

    @property
    def new_count(self) -> int:
        return len(self.new_calls) + sum(t.more for t in self.themes)

    @property
    def changed_count(self) -> int:
        return len(self.changes) + self.more_changes

    @property
    def notice_count(self) -> int:
        return len(self.notices) + self.more_notices

    @property
    def partner_search_count(self) -> int:
        return len(self.partner_searches) + self.more_partner_searches

    @property
    def closing_count(self) -> int:
        return len(self.closing) + self.more_closing

    @property
    def unhealthy(self) -> tuple[SourceHealth, ...]:
        return tuple(h for h in self.health if health_state(h) not in ("ok", "never"))

    @property
    def empty(self) -> bool:
        return not (self.closing or self.themes or self.changes or self.notices or self.partner_searches)

    def summary(self) -> dict[str, Any]:
        """A JSON-safe summary (kept on the ``digests`` row)."""
        return {
            "new": self.new_count,
            "notices": self.notice_count,
            "partner_searches": self.partner_search_count,
            "changed": self.changed_count,
            "minor_changes": self.minor_changes,
            "deadlines": self.closing_count,
            "themes": {t.theme: len(t.calls) + t.more for t in self.themes},
            "new_groups": [c.group_id for c in self.new_calls]
            + [c.group_id for c in (*self.notices, *self.partner_searches)],
            "changes": [
                {
                    "group_id": ch.call.group_id,
                    "events": list(ch.event_ids),
                    "facts": changes_json(list(ch.facts)),
                }
                for ch in self.changes
            ],
            "unhealthy_sources": [h.name for h in self.unhealthy],
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
        new_items.append(builder.item(calls, new=True))
    linked = linked_notices(db, notices)
    new_items.extend(builder.item(calls, new=True) for cid, calls in notices.items() if cid not in linked)

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

    # A call first seen already closed is news of a change, not a new call.
    for item in [i for i in new_items if i.kind != "notice" and i.closed(now)]:
        new_items.remove(item)
        change_items.append(DigestChange(item, (), (ChangeFact(FOUND_CLOSED),)))

    limit = config.max_items_per_section
    closing = _deadlines(db, now=now, days=config.deadline_days, builder=builder, new=new_ids)
    listed = {c.group_id for c in closing[:limit]}
    calls_new = [i for i in new_items if i.kind == "call" and i.group_id not in listed]
    by_kind = {
        kind: _sort_by_relevance(i for i in new_items if i.kind == kind)
        for kind in ("notice", "partner_search")
    }
    order = {id(i): n for n, i in enumerate(_sort_by_relevance(c.call for c in change_items))}
    changes = sorted(change_items, key=lambda c: order[id(c.call)])
    reach = _reach(
        db,
        [c.group_id for c in closing[:limit]]
        + [c.group_id for c in calls_new]
        + [c.call.group_id for c in changes[:limit]]
        + [c.group_id for kind in by_kind.values() for c in kind[:limit]],
    )

    def reached(items: Iterable[DigestCall]) -> tuple[DigestCall, ...]:
        return tuple(
            replace(i, reach=reach.get(i.group_id, _NO_REACH) if i.group_id is not None else _NO_REACH)
            for i in items
        )

    return Digest(
        made_at=now,
        period_start=start,
        period_end=end,
        closing=reached(closing[:limit]),
        themes=_themes(reached(calls_new), limit),
        changes=tuple(replace(c, call=reached([c.call])[0]) for c in changes[:limit]),
        notices=reached(by_kind["notice"][:limit]),
        partner_searches=reached(by_kind["partner_search"][:limit]),
        health=tuple(source_health(db)),
        minor_changes=minor,
        deadline_days=config.deadline_days,
        more_closing=max(0, len(closing) - limit),
        more_changes=max(0, len(changes) - limit),
        more_notices=max(0, len(by_kind["notice"]) - limit),
        more_partner_searches=max(0, len(by_kind["partner_search"]) - limit),
    )


#: The fact of a call first seen already closed (said by the digest only).
FOUND_CLOSED = "found_closed"
_NO_REACH = Reach()


def _reach(db: Database, group_ids: Iterable[int | None]) -> dict[int, Reach]:
    """Each group's :class:`Reach`: members by how far their alerts got, and their feedback."""
    ids = sorted({g for g in group_ids if g is not None})
    alerts = planning.alert_reach(db, ids)
    feedback = planning.feedback_for_groups(db, ids)
    wanted = {m for by_member in alerts.values() for m in by_member}
    names = {m.id: one_name(m.organisation, m.name) for m in list_members(db) if m.id in wanted}
    out: dict[int, Reach] = {}
    for group_id in ids:
        by_member = alerts.get(group_id, {})

        def who(state: str, by_member: Mapping[int, str] = by_member) -> tuple[str, ...]:
            return tuple(sorted(names.get(m, f"#{m}") for m, s in by_member.items() if s == state))

        kinds = [kind for (_member, group), kind in feedback.items() if group == group_id]
        out[group_id] = Reach(
            sent=who("sent"),
            queued=who("queued"),
            undelivered=sum(1 for s in by_member.values() if s == "undelivered"),
            interested=kinds.count("interested"),
            not_for_us=kinds.count("not_for_us"),
        )
    return out


def one_name(organisation: str, name: str) -> str:
    """How staff know a member: the organisation, else the person's name."""
    return " ".join((organisation or name or "").split())


def _themes(items: Sequence[DigestCall], limit: int) -> tuple[ThemeSection, ...]:
    order = {t: n for n, t in enumerate(_all_topic_ids())}
    themes = sorted({i.theme for i in items}, key=lambda t: (t == OTHER, order.get(t, len(order)), t))
    out = []
    for theme in themes:
        mine = _sort_by_relevance(i for i in items if i.theme == theme)
        out.append(ThemeSection(theme, tuple(mine[:limit]), max(0, len(mine) - limit)))
    return tuple(out)


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

    def item(self, calls: Sequence[CallView], *, new: bool = False) -> DigestCall:
        call = calls[0]
        score = 0.0
        reasons: dict[str, tuple[str, ...]] = {}
        best = None
        for candidate in calls:
            for match in self.matcher.match(candidate, now=self.now):
                if best is None or match.score > best.score:
                    best = match
        theme = OTHER
        if best is not None:
            theme = _theme(best.reasons)
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
            theme=theme,
            new=new,
        )


def _sort_by_relevance(items: Iterable[DigestCall]) -> list[DigestCall]:
    def key(item: DigestCall) -> tuple[bool, float, float, str, int]:
        # Closed calls last, then the most relevant, then the soonest deadline.
        deadline = item.deadline.timestamp() if item.deadline else float("inf")
        return (item.status == "closed", -item.score, deadline, item.title.casefold(), item.call_id)

    return sorted(items, key=key)


def _theme(reasons: Iterable[object]) -> str:
    """The topic of the strongest topic reason (reasons come strongest first), else OTHER."""
    for reason in reasons:
        topic = getattr(reason, "topic", None)
        if getattr(reason, "kind", None) == "topic" and isinstance(topic, str) and topic:
            return topic
    return OTHER


def _deadlines(
    db: Database, *, now: datetime, days: int, builder: _Builder, new: set[int | None]
) -> list[DigestCall]:
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
        items.append(builder.item([call, *(c for c in group if c.id != call.id)], new=call.group_id in new))
    return sorted(items, key=lambda i: (i.deadline or horizon, i.call_id))


#: Source states, worst first (:func:`health_state`).
HEALTH_STATES = ("failing", "degraded", "errors", "never", "ok")


def health_state(h: SourceHealth) -> str:
    """``failing`` (its last run failed, or failures not yet made good), ``degraded`` (the
    last run read too little, or an answer it did not understand), ``errors`` (the last run
    succeeded but counted errors), ``never`` (not crawled yet), ``ok``: nothing else."""
    if h.last_run_at is None:
        return "never"
    if h.last_outcome == "failed":
        return "failing"
    if h.degraded or h.last_outcome == "degraded":
        return "degraded"
    if h.consecutive_failures > 0:
        return "failing"
    if h.last_errors > 0:
        return "errors"
    return "ok"
