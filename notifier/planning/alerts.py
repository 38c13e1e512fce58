"""Alert planning: call events → outbox rows, one per (member, duplicate group, reason, channel).

:func:`plan_alerts` reads the call events stored after the last one it handled (a durable
cursor, ``storage.planning``), decides who must hear about each, and enqueues outbox rows;
delivery (``notifier.delivery.dispatch``) sends them later. The rules:

* **new** — a new call that matches a member's profile (``notifier.matching.Matcher`` over the
  profiles of active, unpaused members who want ``new`` alerts) gives that member a row with
  reason ``new`` for the call's duplicate group, per channel. The row points at the group's
  canonical call, and the unique key (member, group, reason, channel) means the same call seen
  on a second portal alerts nobody twice. A call that *reopens* is matched again too: members
  who never heard of it (it was closed when first seen) get it as ``new``. A member who marked
  the group "Mi interessa" knows it already and gets no ``new`` row for it (its changes reach
  them as below).
* **changed:<event id>** — a change that matters (:mod:`notifier.planning.changes`: deadline moved,
  reopened, closed early, opening moved, budget changed) goes to the members who already know
  of the group: a ``new`` row planned at or before the change happened and not given up on, or
  a "Mi interessa" given at or before it (a call starred from /bandi or /cerca that was never
  alerted). Members who want no ``changes`` alerts are skipped. The row points at the call
  that changed (its portal is the one whose diff is shown). Within one run, the same change
  reported by two portals of a group is told once.
* **partner** — a new EEN partner search (a call row of kind ``partner_search``) is matched by
  the same matcher, over the profiles of the members who switched on ``partners`` alerts (off
  by default), and gives reason ``partner`` rows (sent as "🤝 Ricerca partner"). Notices (kind
  ``notice``: acts linked to no call) are for the staff digest only and alert nobody.
* **Non per noi** — a member whose feedback on a group is ``not_for_us`` gets nothing more
  about it, of any reason.
* **Paused members** get nothing planned while paused: events that happen during a pause are not
  kept for later (after ``/riprendi`` the member finds open calls with ``/bandi``). Rows already
  in the outbox when the member paused are the dispatcher's business.
* **Channels** are the profile's ``channels`` the member can be reached on: ``telegram`` needs a
  chat id that Telegram has not refused (403), ``email`` an address.

Payloads (what the message needs besides the call; see ``notifier.messages.alerts``), data only,
rendered at send time: ``matched`` (the match reasons as data, :meth:`Reason.to_json`, at most
:data:`MAX_MATCHED`), ``reasons`` (the same as plain lines in the member's language, for the web
board), ``score``; for changes ``event_id``, ``event_kind``, ``changes``
(:func:`notifier.planning.changes.changes_json`) and ``diff`` (the raw event diff). Every alert
(and reminder) also carries what :func:`call_context` reads of the call and its duplicate group:
``applicants`` (whom the call admits, as eligibility reads it) and ``group`` (the budget, summary
and granting body another portal of the group gives when the call itself lacks them: an Open
Innovation Lombardia page of a Bandi e Servizi call adds the allocation and a plain summary).

Crash safety: the rows of each batch of events are enqueued first and *then* the cursor is
advanced (in its own transaction). A crash in between replans the batch on the next run; the
outbox's unique key turns the replay into a no-op, so an event is planned at least once and its
rows exist exactly once. Replay is deterministic because "already alerted" compares the
``new`` row's creation time (or the "Mi interessa" time) with the event's time, not with the
moment of planning. A member who answers again moves the time of the answer, so a replay after
that may differ.

Known limits: the cursor relies on storage committing event ids in increasing order (ingest
serialises its writers), so no event can appear below the cursor later. The first run on a
database plans every stored event (the offline demo relies on it): open calls that match are
all alerted once, closed ones never. A member who joins or edits a profile is matched only
against events from then on, never against calls already stored (``sentinella match`` shows
those). Two portals reporting the same change in different runs are told twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from notifier.config import MatchingConfig
from notifier.matching.eligibility import applicants_of, field_texts
from notifier.matching.engine import MAX_REASON_CHARS, Matcher, ReasonLike, reason_lines
from notifier.matching.profiles import Profile, member_profile
from notifier.matching.vocabulary import default_vocabulary
from notifier.planning.changes import ChangeFact, changes_json, significant_changes
from storage import planning
from storage.calls import CallView, EventView, events_after, get_calls, group_calls
from storage.db import Database
from storage.members import all_profiles
from storage.outbox import OutboxItem, enqueue

log = logging.getLogger(__name__)

#: The outbox reason of a partner search alert.
PARTNER = "partner"

#: Match reasons kept as data for the message (it shows at most three distinct ones).
MAX_MATCHED = 8
#: Longest summary taken from another portal of the group (the message shows two sentences).
MAX_GROUP_SUMMARY = 1_000


class MatchLike(Protocol):
    @property
    def member_id(self) -> int: ...
    @property
    def score(self) -> float: ...
    @property
    def reasons(self) -> Sequence[ReasonLike]: ...


class MatcherLike(Protocol):
    # ``call`` is a CallView; typed loosely because each matcher declares its own call protocol.
    def match(self, call: Any, *, now: datetime) -> Sequence[MatchLike]: ...


#: Builds a matcher over (member id, profile) pairs; the default is ``notifier.matching.Matcher``.
MatcherFactory = Callable[[Sequence[tuple[int, Profile]], MatchingConfig], MatcherLike]


@dataclass
class PlanReport:
    """What one :func:`plan_alerts` run did."""

    #: Events read (including replays of events after a gap in the ids).
    events: int = 0
    #: The cursor before and after the run.
    cursor_before: int = 0
    cursor_after: int = 0
    #: Outbox rows inserted, by kind (rows already present are not counted).
    new: int = 0
    changed: int = 0
    #: Events that changed nothing a member needs to hear about.
    insignificant: int = 0
    #: (member, group) pairs left silent because the member answered "Non per noi".
    silenced: int = 0
    #: Members matched who have no channel they can be reached on.
    unreachable: int = 0
    #: Members skipped because their stored profile does not validate.
    bad_profiles: list[int] = field(default_factory=list)
    #: Outbox rows inserted for partner searches.
    partners: int = 0
    #: New notices read (they alert nobody).
    notices: int = 0

    @property
    def enqueued(self) -> int:
        return self.new + self.changed + self.partners


@dataclass(frozen=True, slots=True)
class Recipient:
    """A member who may be alerted: profile validated, channels resolved."""

    member_id: int
    language: str
    profile: Profile
    channels: tuple[str, ...]


def member_channels(member: Any, profile: Profile) -> tuple[str, ...]:
    """The profile's channels this member can actually be reached on, in the profile's order."""
    out: list[str] = []
    for channel in profile.channels:
        if channel == "telegram":
            if getattr(member, "telegram_chat_id", None) is not None and getattr(member, "telegram_ok", True):
                out.append(channel)
        elif channel == "email":
            if getattr(member, "email", None):
                out.append(channel)
        else:
            out.append(channel)
    return tuple(dict.fromkeys(out))


def load_recipients(db: Database, report: PlanReport | None = None) -> dict[int, Recipient]:
    """Active, unpaused members with a valid profile, by id (shared with the reminders)."""
    out: dict[int, Recipient] = {}
    for member, data in all_profiles(db, active=True):
        if member.paused:
            continue
        try:
            profile = member_profile(member.role, data)
        except ValidationError:
            log.warning("member %s has a profile that does not validate; no alerts for it", member.id)
            if report is not None:
                report.bad_profiles.append(member.id)
            continue
        language = profile.language or member.language or "it"
        out[member.id] = Recipient(member.id, language, profile, member_channels(member, profile))
    return out


def default_matcher(profiles: Sequence[tuple[int, Profile]], config: MatchingConfig) -> MatcherLike:
    """The :data:`MatcherFactory` used unless a test passes another: the real matcher."""
    return Matcher(profiles, config=config)


def plan_alerts(
    db: Database,
    *,
    now: datetime,
    config: MatchingConfig,
    matcher_factory: MatcherFactory | None = None,
    batch_size: int = 1000,
) -> PlanReport:
    """Turn the call events after the cursor into outbox rows; advance the cursor.

    Safe to run at any time and concurrently with itself (rows are unique; the cursor only moves
    forward). Returns what was done; ``report.enqueued`` is the number of rows inserted.
    """
    start = planning.get_cursor(db, planning.ALERTS_CURSOR)
    report = PlanReport(cursor_before=start, cursor_after=start)
    planner = _Planner(db, now=now, config=config, factory=matcher_factory or default_matcher, report=report)
    cursor = start
    while True:
        events = events_after(db, cursor, limit=batch_size)
        if not events:
            break
        report.events += len(events)
        items = planner.plan(events)
        new_rows = [i for i in items if i.reason == "new"]
        report.new += enqueue(db, new_rows, now=now) if new_rows else 0
        partner_rows = [i for i in items if i.reason == PARTNER]
        report.partners += enqueue(db, partner_rows, now=now) if partner_rows else 0
        changed_rows = [i for i in items if i.reason not in ("new", PARTNER)]
        report.changed += enqueue(db, changed_rows, now=now) if changed_rows else 0
        # After the enqueue, never before: a crash in between replans the batch (harmless).
        cursor = planning.advance_cursor(db, planning.ALERTS_CURSOR, events[-1].id, now=now)
        if len(events) < batch_size:
            break
    report.cursor_after = cursor
    log.info(
        "planned alerts: %d events, %d new and %d change rows, cursor %d → %d",
        report.events,
        report.new,
        report.changed,
        report.cursor_before,
        report.cursor_after,
    )
    return report


class _Planner:
    def __init__(
        self,
        db: Database,
        *,
        now: datetime,
        config: MatchingConfig,
        factory: MatcherFactory,
        report: PlanReport,
    ) -> None:
        self.db = db
        self.now = now
        self.config = config
        self.factory = factory
        self.report = report
        self.recipients = load_recipients(db, report)
        self._matchers: dict[str, MatcherLike] = {}
        self._groups: dict[int, list[CallView]] = {}
        self._contexts: dict[int, dict[str, Any]] = {}

    def group(self, group_id: int) -> list[CallView]:
        """The group's calls, canonical first (read once per run)."""
        if group_id not in self._groups:
            self._groups[group_id] = group_calls(self.db, group_id)
        return self._groups[group_id]

    def context(self, call: CallView, group: Sequence[CallView]) -> dict[str, Any]:
        """:func:`call_context` of ``call``, once per call and run."""
        if call.id not in self._contexts:
            self._contexts[call.id] = call_context(
                call, group, max_description=self.config.max_description_chars
            )
        return self._contexts[call.id]

    def matcher(self, alert: str) -> MatcherLike:
        """The matcher over the profiles of the members who want ``alert`` ("new", "partners")."""
        if alert not in self._matchers:
            wanted = [r for r in self.recipients.values() if alert in r.profile.alerts]
            profiles = [(r.member_id, r.profile) for r in wanted]
            self._matchers[alert] = self.factory(profiles, self.config)
        return self._matchers[alert]

    def plan(self, events: Sequence[EventView]) -> list[OutboxItem]:
        calls = {c.id: c for c in get_calls(self.db, sorted({e.call_id for e in events}))}
        group_of = {e.id: e.group_id for e in events}
        groups = {g for g in group_of.values() if g is not None}
        feedback = planning.feedback_for_groups(self.db, groups)
        items: dict[tuple[int, int, str, str], OutboxItem] = {}

        changes: list[tuple[EventView, CallView, int, list[ChangeFact]]] = []
        to_match: list[tuple[CallView, int]] = []
        partners: list[tuple[CallView, int]] = []
        for event in events:
            call = calls.get(event.call_id)
            group_id = group_of[event.id]
            if call is None or group_id is None:
                continue  # the call was deleted since
            if event.kind == "new":
                if call.kind == "notice":
                    self.report.notices += 1
                elif call.kind == "partner_search":
                    partners.append((call, group_id))
                else:
                    to_match.append((call, group_id))
                continue
            facts = significant_changes(event.kind, event.changes, at=event.at, deadline=call.final_deadline)
            if not facts:
                self.report.insignificant += 1
                continue
            changes.append((event, call, group_id, facts))
            if any(f.kind == "reopened" for f in facts) and call.kind == "call":
                to_match.append((call, group_id))

        self._plan_new(to_match, feedback, items)
        self._plan_new(partners, feedback, items, alert="partners", reason=PARTNER)
        self._plan_changes(changes, feedback, items)
        return list(items.values())

    def _plan_new(
        self,
        calls: Iterable[tuple[CallView, int]],
        feedback: Mapping[tuple[int, int], str],
        items: dict[tuple[int, int, str, str], OutboxItem],
        *,
        alert: str = "new",
        reason: str = "new",
    ) -> None:
        best: dict[tuple[int, int], MatchLike] = {}
        for call, group_id in calls:
            if not self.recipients:
                return
            for match in self.matcher(alert).match(call, now=self.now):
                key = (match.member_id, group_id)
                if key not in best or match.score > best[key].score:
                    best[key] = match
        if not best:
            return
        for (member_id, group_id), match in sorted(best.items()):
            recipient = self.recipients.get(member_id)
            if recipient is None:
                continue
            answer = feedback.get((member_id, group_id))
            if answer == "not_for_us":
                self.report.silenced += 1
                continue
            if answer == "interested":
                continue  # starred from /bandi or /cerca: known, and told its changes instead
            if not recipient.channels:
                self.report.unreachable += 1
                continue
            group = self.group(group_id)
            if not group:
                continue
            payload = {
                "reasons": reason_lines(match.reasons, recipient.language),
                "matched": reason_data(match.reasons),
                "score": round(float(match.score), 4),
                **self.context(group[0], group),
            }
            for channel in recipient.channels:
                item = OutboxItem(member_id, group_id, group[0].id, reason, channel, payload)
                items.setdefault((member_id, group_id, reason, channel), item)

    def _plan_changes(
        self,
        changes: Sequence[tuple[EventView, CallView, int, list[ChangeFact]]],
        feedback: Mapping[tuple[int, int], str],
        items: dict[tuple[int, int, str, str], OutboxItem],
    ) -> None:
        if not changes:
            return
        alerted = planning.alerted_members(self.db, {g for _, _, g, _ in changes})
        told: set[tuple[int, str]] = set()
        for event, call, group_id, facts in changes:
            facts_json = changes_json(facts)
            # The same change reported by two portals of one group is told once per run.
            fingerprint = (group_id, repr(facts_json))
            if fingerprint in told:
                continue
            told.add(fingerprint)
            reason = f"changed:{event.id}"
            for member_id, first_alert in sorted(alerted.get(group_id, {}).items()):
                recipient = self.recipients.get(member_id)
                if recipient is None or "changes" not in recipient.profile.alerts:
                    continue
                if first_alert > event.at:
                    continue  # alerted after the change: that alert already showed it
                if feedback.get((member_id, group_id)) == "not_for_us":
                    self.report.silenced += 1
                    continue
                payload = {
                    "event_id": event.id,
                    "event_kind": event.kind,
                    "changes": facts_json,
                    "diff": dict(event.changes),
                    **self.context(call, self.group(group_id)),
                }
                for channel in recipient.channels:
                    item = OutboxItem(member_id, group_id, call.id, reason, channel, payload)
                    items.setdefault((member_id, group_id, reason, channel), item)


def reason_data(reasons: Iterable[Any]) -> list[dict[str, Any]]:
    """The match reasons as data (``{"kind", "term", "field", "topic"}``) for the message to word."""
    out: list[dict[str, Any]] = []
    for reason in reasons:
        to_json = getattr(reason, "to_json", None)
        if to_json is None:
            continue
        data = dict(to_json())
        data["term"] = " ".join(str(data.get("term") or "").split())[:MAX_REASON_CHARS]
        if data not in out:
            out.append(data)
        if len(out) >= MAX_MATCHED:
            break
    return out


#: Portals whose summaries are written in plain language for firms: an alert prefers theirs to
#: the call's own (Open Innovation Lombardia's "bandi e sperimentazioni" pages).
PLAIN_SUMMARY_SOURCES = frozenset({"openinnovation"})


def call_context(
    call: CallView, group: Sequence[CallView], *, max_description: int = 20_000
) -> dict[str, Any]:
    """What an alert about ``call`` needs besides the call row, as data:

    * ``applicants`` — ``{"admits": [beneficiary ids], "sectors": [applicant sector ids]}``, whom
      the call admits as :func:`notifier.matching.eligibility.applicants_of` reads it (empty lists:
      the call does not say);
    * ``group`` — for each of ``budget_total``, ``summary``, ``granting_body`` the call lacks,
      ``{"value", "source"}`` from the first other call of its duplicate group (canonical first,
      then by source priority) that gives it, as the digest picks the budget; the summary of a
      portal in :data:`PLAIN_SUMMARY_SOURCES` even when the call has one (marked ``"plain"``).
    """
    fields = field_texts(call, max_description=max_description)
    found = applicants_of(call, fields, default_vocabulary())
    fill: dict[str, dict[str, str]] = {}
    others = [c for c in group if c.id != call.id]
    if call.budget_total is None:
        other = next((c for c in others if c.budget_total is not None), None)
        if other is not None:
            fill["budget_total"] = {"value": str(other.budget_total), "source": other.source}
    # A portal that writes its summaries for readers (Open Innovation Lombardia's call pages) is
    # told first; else another portal's summary stands in for a call that has none.
    plain = next((c for c in others if c.source in PLAIN_SUMMARY_SOURCES and c.summary.strip()), None)
    if plain is not None and call.source not in PLAIN_SUMMARY_SOURCES:
        fill["summary"] = {
            "value": plain.summary.strip()[:MAX_GROUP_SUMMARY],
            "source": plain.source,
            "plain": "1",
        }
    elif not call.summary.strip():
        other = next((c for c in others if c.summary.strip()), None)
        if other is not None:
            fill["summary"] = {"value": other.summary.strip()[:MAX_GROUP_SUMMARY], "source": other.source}
    if not call.granting_body.strip():
        other = next((c for c in others if c.granting_body.strip()), None)
        if other is not None:
            fill["granting_body"] = {"value": other.granting_body.strip()[:300], "source": other.source}
    return {
        "applicants": {"admits": sorted(found.admits), "sectors": sorted(found.sectors)},
        "group": fill,
    }
