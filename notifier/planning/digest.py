"""The daily staff digest: what came in, what changed, what closes soon, how the sources are.

:func:`build_digest` gathers, for the window since the last digest sent (``storage.planning``):

* **new calls** — duplicate groups first seen in the window, one entry per group (its canonical
  call, with the other portals it was seen on), grouped by source and, within a source, ordered
  by relevance to the cluster; in sections of their own, the new **partner searches** (EEN
  proposals: staff always see them, members only when they opted in) and the new **notices**
  (BURL acts linked to no call Sentinella holds: an act linked to a call shows as that call's
  change instead);
* **changes** — the changes that matter (:mod:`notifier.planning.changes`) of calls already known before
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

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from notifier.config import DigestConfig, MatchingConfig
from notifier.matching.eligibility import COMPANY_TYPES
from notifier.matching.profiles import Profile, parse_profile
from notifier.planning.alerts import MatcherFactory, MatcherLike, default_matcher, reason_lines
from notifier.planning.changes import ChangeFact, changes_json, significant_changes
from storage import planning
from storage.acts import linked_notices
from storage.calls import CallView, EventView, events_after, get_calls, group_calls
from storage.db import Database
from storage.members import all_profiles
from storage.records import Precision
from storage.sources import SourceHealth, source_health

log = logging.getLogger(__name__)

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
            "unhealthy_sources": [h.name for h in self.health if health_state(h) not in ("ok", "never")],
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


def health_state(h: SourceHealth) -> str:
    if h.last_run_at is None:
        return "never"
    if h.consecutive_failures > 0 and h.last_outcome == "failed":
        return "failing"
    if h.degraded:
        return "degraded"
    return "ok"
