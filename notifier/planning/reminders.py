"""Reminders for calls a member marked interesting ("Mi interessa"): opening and closing soon.

:func:`plan_reminders` looks at every (member, group) with feedback ``interested`` and, for the
group's canonical call, enqueues an outbox row when a reminder is due:

* ``reminder-open-<offset>:<date>`` — a "sportello" call (first come, first served) opens within
  the offset (default 24 h): the opening hour is what counts for those calls;
* ``reminder-close-<offset>:<date>`` — the next deadline (a stage deadline of a multi-stage call,
  or the final one) falls within the offset (defaults 7 days and 1 day).

``<date>`` is the local date of the opening or deadline the reminder is about, so each reminder
is sent once per date (the outbox's unique key) and a deadline moved by a proroga gets its
reminders again. When several offsets are due at once (interest marked three days before the
closing), only the closest one is sent: a member never gets "7 days" and "1 day" together.

Offsets in days are counted on the wall clock of ``RemindersConfig.timezone`` (a week before a
12:00 closing is 12:00, also across a DST change); offsets in hours are elapsed time. A date-only
opening or closing is counted back from ``RemindersConfig.date_only_at`` on that date.

Nothing is sent for a call whose status is closed or whose deadline has passed, to inactive or
paused members, to members whose profile does not ask for ``reminders``, or to members who later
answered "Non per noi" (a member has one feedback per group). The clock is injected.

The payload carries the opening or deadline it is about and, as every alert's, what
:func:`notifier.planning.alerts.call_context` reads of the call and its duplicate group (data:
the message is written at send time).

Known limits: a reminder is due from its moment on, so how close to that moment it goes out
depends on how often the scheduler runs this (hourly or more often is right); a reminder whose
moment passed while the planner did not run is still sent, with the countdown it has by then.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from notifier.config import RemindersConfig, parse_offset
from notifier.planning.alerts import call_context, load_recipients
from storage import planning
from storage.calls import CallView, group_calls
from storage.db import Database
from storage.outbox import OutboxItem, enqueue
from storage.records import Precision, effective_deadline

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DueReminder:
    """A reminder due now for one call."""

    #: "open" or "close".
    kind: str
    #: The configured offset, e.g. "7d".
    offset: str
    #: The opening or deadline it is about, and that deadline's label (stage name).
    at: datetime
    label: str
    #: When it fell due.
    due_at: datetime
    #: The local date of ``at`` (ISO), which makes the reminder once per date.
    day: str

    @property
    def reason(self) -> str:
        return f"reminder-{self.kind}-{self.offset}:{self.day}"

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reminder": self.kind, "offset": self.offset}
        if self.kind == "close":
            out["deadline"] = self.at.isoformat()
            if self.label:
                out["deadline_label"] = self.label[:200]
        else:
            out["opens"] = self.at.isoformat()
        return out


def fire_time(
    at: datetime, precision: Precision | str | None, offset: str, config: RemindersConfig
) -> datetime:
    """The moment a reminder ``offset`` before ``at`` falls due."""
    tz = config.tz
    anchor = at.astimezone(tz)
    if precision == Precision.DATE:
        anchor = datetime.combine(anchor.date(), config.date_only_at, tzinfo=tz)
    amount, unit = parse_offset(offset)
    if unit == "d":
        # Aware arithmetic keeps the wall clock: the result is the same local time N days earlier.
        return anchor - timedelta(days=amount)
    return (anchor.astimezone(ZoneInfo("UTC")) - timedelta(hours=amount)).astimezone(tz)


def _closest_due(
    kind: str,
    at: datetime,
    precision: Precision | str | None,
    label: str,
    offsets: list[str],
    *,
    now: datetime,
    config: RemindersConfig,
) -> DueReminder | None:
    due = [(fire_time(at, precision, o, config), o) for o in offsets]
    due = [(t, o) for t, o in due if t <= now]
    if not due:
        return None
    fired, offset = max(due)
    return DueReminder(kind, offset, at, label, fired, at.astimezone(config.tz).date().isoformat())


def next_deadline(call: CallView, *, now: datetime) -> tuple[datetime, Precision | None, str] | None:
    """The first deadline (stage or final) that has not passed: (at, precision, label)."""
    candidates: list[tuple[datetime, Precision | None, str]] = [
        (d.at, d.precision, d.label) for d in call.deadlines
    ]
    if call.closes is not None:
        candidates.append((call.closes, call.closes_precision, ""))
    upcoming = []
    for at, precision, label in candidates:
        end = effective_deadline(at, Precision(precision) if precision else None)
        if end is not None and end > now:
            upcoming.append((end, at, precision, label))
    if not upcoming:
        return None
    _, at, precision, label = min(upcoming, key=lambda u: (u[0], u[3] != ""))
    # The final deadline repeated in the stage list carries no label there; prefer the labelled one.
    return at, precision, label


def due_reminders(call: CallView, *, now: datetime, config: RemindersConfig) -> list[DueReminder]:
    """The reminders due now for ``call`` (at most one opening and one closing)."""
    if str(call.status) == "closed":
        return []
    final = call.final_deadline
    if final is not None and final <= now:
        return []
    out: list[DueReminder] = []
    if call.sportello and call.opens is not None and call.opens > now and config.before_opening:
        found = _closest_due(
            "open", call.opens, call.opens_precision, "", config.before_opening, now=now, config=config
        )
        if found:
            out.append(found)
    deadline = next_deadline(call, now=now)
    if deadline is not None and config.before_closing:
        at, precision, label = deadline
        found = _closest_due("close", at, precision, label, config.before_closing, now=now, config=config)
        if found:
            out.append(found)
    return out


def plan_reminders(db: Database, *, now: datetime, config: RemindersConfig) -> int:
    """Enqueue the reminders due now; return how many outbox rows were inserted."""
    if not config.enabled:
        return 0
    pairs = planning.interested(db)
    if not pairs:
        return 0
    recipients = load_recipients(db)
    calls: dict[int, CallView | None] = {}
    contexts: dict[int, dict[str, Any]] = {}
    items: list[OutboxItem] = []
    for member_id, group_id in pairs:
        recipient = recipients.get(member_id)
        if recipient is None or "reminders" not in recipient.profile.alerts or not recipient.channels:
            continue
        if group_id not in calls:
            group = group_calls(db, group_id)
            calls[group_id] = group[0] if group else None
            if group:
                contexts[group_id] = call_context(group[0], group)
        call = calls[group_id]
        if call is None:
            continue
        for due in due_reminders(call, now=now, config=config):
            payload = {**due.payload(), **contexts[group_id]}
            for channel in recipient.channels:
                items.append(OutboxItem(member_id, group_id, call.id, due.reason, channel, payload))
    inserted = enqueue(db, items, now=now) if items else 0
    log.info("planned reminders: %d due, %d new outbox rows", len(items), inserted)
    return inserted
