"""iCalendar feeds (RFC 5545, built with the ``icalendar`` library): a member's own deadlines and
the public list of open calls.

One event per call *group* and kind: the deadline (``UID: <group>-deadline@<host>``) and, for a
*sportello* call that opens later, the opening (``<group>-opening@<host>``). The UID never changes,
so when a deadline moves the calendar application moves the event instead of adding a copy;
``SEQUENCE`` and ``LAST-MODIFIED`` grow with the call's last change so clients know which
version is newer. A group the member answered "Non per noi" leaves their feed, so the event
disappears at the next refresh. Times are in Europe/Rome with its ``VTIMEZONE``; a date-only
deadline is an all-day event. Each deadline has a reminder (``VALARM``) a day before.

Known limit: a calendar application refreshes a subscribed feed on its own schedule (Google
Calendar can take a day), so a moved deadline reaches it late; the alert and the board do not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from icalendar import Alarm, Calendar, Event

from notifier.messages.formats import one_line, safe_url, source_label
from storage.board import canonical_calls
from storage.calls import CallView
from storage.db import Database
from storage.records import ROME, Precision
from web.i18n import text

PRODID = "-//Sentinella//Bandi//IT"
#: SEQUENCE counts minutes from here to the call's last change.
SEQUENCE_EPOCH = datetime(2024, 1, 1, tzinfo=ROME)
#: Longest description put in an event (clients show a few lines anyway).
MAX_DESCRIPTION = 1_500


@dataclass(frozen=True, slots=True)
class Entry:
    """A call to put in a calendar, with why (the reason lines of a member's match)."""

    group_id: int
    call: CallView
    reasons: tuple[str, ...] = ()


def _calendar(name: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", "Europe/Rome")
    # Clients re-read a subscribed feed about this often (when they honour it).
    cal.add("refresh-interval", timedelta(hours=6), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT6H")
    return cal


def _description(entry: Entry, lang: str) -> str:
    call = entry.call
    lines = [one_line(call.title)]
    if call.summary:
        lines.append(one_line(call.summary)[:600])
    lines.append(f"{text(lang, 'field.source')}: {source_label(call.source, lang)}")
    if call.granting_body:
        lines.append(f"{text(lang, 'field.granting_body')}: {one_line(call.granting_body)[:200]}")
    if entry.reasons:
        lines.append(f"{text(lang, 'call.reasons')}: " + "; ".join(one_line(r) for r in entry.reasons[:4]))
    url = safe_url(call.url)
    if url:
        lines.append(url)
    return "\n".join(lines)[:MAX_DESCRIPTION]


def _event(
    entry: Entry, kind: str, at: datetime, precision: Precision | None, *, uid: str, now: datetime, lang: str
) -> Event:
    call = entry.call
    event = Event()
    event.add("uid", uid.format(group=entry.group_id, kind=kind))
    event.add("dtstamp", now.astimezone(ROME))
    label = text(lang, f"ical.{kind}")
    event.add("summary", f"{label}: {one_line(call.title)[:180]}")
    local = at.astimezone(ROME)
    if precision == Precision.DATE or (kind == "opening" and (local.hour, local.minute) == (0, 0)):
        event.add("dtstart", local.date())
        event.add("dtend", local.date() + timedelta(days=1))
        event.add("transp", "TRANSPARENT")
    else:
        event.add("dtstart", local)
        event.add("dtend", local)
    event.add("description", _description(entry, lang))
    url = safe_url(call.url)
    if url:
        event.add("url", url)
    event.add("categories", [source_label(call.source, lang)])
    event.add("last-modified", call.last_changed.astimezone(ROME))
    # Grows with every change of the call, so a client knows this version replaces its copy.
    event.add("sequence", max(0, int((call.last_changed - SEQUENCE_EPOCH).total_seconds() // 60)))
    if kind == "deadline":
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", event["summary"])
        alarm.add("trigger", timedelta(days=-1))
        event.add_component(alarm)
    return event


def build_calendar(
    entries: Iterable[Entry],
    *,
    name: str,
    base_url: str,
    now: datetime,
    lang: str,
    past_days: int,
    public: bool = False,
) -> bytes:
    """The calendar of these calls as RFC 5545 bytes (deadlines that passed more than
    ``past_days`` ago are left out). The public feed's UIDs differ from the members' ones, so
    someone subscribed to both sees two calendars, not one event fought over."""
    host = urlsplit(base_url).hostname or "sentinella"
    uid = ("public-" if public else "") + "{group}-{kind}@" + host
    cal = _calendar(name)
    oldest = now - timedelta(days=past_days)
    for entry in entries:
        call = entry.call
        end = call.final_deadline
        if end is not None and end >= oldest:
            precision = (
                call.closes_precision
                if call.closes is not None
                else (call.deadlines[-1].precision if call.deadlines else None)
            )
            cal.add_component(_event(entry, "deadline", end, precision, uid=uid, now=now, lang=lang))
        if call.sportello and call.opens is not None and call.opens >= oldest:
            cal.add_component(
                _event(entry, "opening", call.opens, call.opens_precision, uid=uid, now=now, lang=lang)
            )
    # The zone's rules from a year back to ten years on: enough for every event a feed holds,
    # and a few hundred bytes instead of the library's default 1970-2038 table.
    cal.add_missing_timezones(first_date=date(now.year - 1, 1, 1), last_date=date(now.year + 10, 1, 1))
    return bytes(cal.to_ical())


def group_entries(db: Database, groups: Iterable[tuple[int, tuple[str, ...]]]) -> list[Entry]:
    """Each group's canonical call (what alerts describe), with its reason lines."""
    groups = list(groups)
    calls = canonical_calls(db, [g for g, _ in groups])
    return [Entry(g, calls[g], reasons) for g, reasons in groups if g in calls]
