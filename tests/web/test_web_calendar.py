"""Calendar feeds (RFC 5545, parsed back with ``icalendar``) and the public RSS/Atom feeds."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import feedparser
import httpx
from icalendar import Calendar

from storage import members
from storage.db import Database
from storage.feedback import set_feedback
from storage.ingest import ingest
from storage.records import ROME
from tests.bot.harness import Clock
from tests.fakes.web_data import Board, records
from tests.web.conftest import BASE
from web.access import WebAccess
from web.config import WebConfig


def _path(url: str) -> str:
    assert url.startswith(BASE + "/calendario/") and url.endswith(".ics")
    return url.removeprefix(BASE)


def events(body: bytes) -> dict[str, dict[str, object]]:
    cal = Calendar.from_ical(body)
    out = {}
    for ev in cal.walk("VEVENT"):
        out[str(ev["UID"])] = {
            "summary": str(ev["SUMMARY"]),
            "start": ev.decoded("DTSTART"),
            "tzid": ev["DTSTART"].params.get("TZID"),
            "stamp": ev.decoded("DTSTAMP"),
            "sequence": int(ev["SEQUENCE"]),
            "alarms": len(ev.subcomponents),
        }
    return out


def check_rfc5545(body: bytes) -> Calendar:
    """The rules a strict importer checks: CRLF lines of at most 75 octets, VERSION and PRODID,
    every event with a unique UID, a UTC DTSTAMP and a DTSTART whose zone is defined."""
    text = body.decode("utf-8")
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    for line in text.split("\r\n"):
        assert len(line.encode("utf-8")) <= 75, line
        assert "\n" not in line
    cal = Calendar.from_ical(body)
    assert str(cal["VERSION"]) == "2.0" and str(cal["PRODID"])
    zones = {str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")}
    uids = []
    for ev in cal.walk("VEVENT"):
        uids.append(str(ev["UID"]))
        stamp = ev.decoded("DTSTAMP")
        assert stamp.utcoffset() == timedelta(0) and ev.to_ical().count(b"DTSTAMP:") == 1
        assert b"DTSTAMP:" + stamp.strftime("%Y%m%dT%H%M%SZ").encode() in ev.to_ical()
        start = ev["DTSTART"]
        if isinstance(ev.decoded("DTSTART"), datetime):
            assert start.params["TZID"] in zones
    assert len(uids) == len(set(uids)) and uids
    assert zones <= {"Europe/Rome"}
    return cal


async def test_member_calendar_holds_matched_deadlines_in_rome_time(
    client: httpx.AsyncClient, sqlite_db: Database, board: Board, config: WebConfig, clock: Clock
) -> None:
    url = WebAccess(sqlite_db, config, clock).calendar_link(board.member.id)
    response = await client.get(_path(url))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    assert "set-cookie" not in response.headers
    cal = check_rfc5545(response.content)
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/Rome"]
    found = events(response.content)
    packaging = board.calls["SYN1"]
    research = board.calls["SYN2"]
    sportello = board.calls["9002"]
    deadline = found[f"{packaging.group_id}-deadline@testserver"]
    assert deadline["start"] == packaging.closes
    assert deadline["tzid"] == "Europe/Rome"
    assert str(deadline["summary"]).startswith("Scadenza: Bando sintetico Imballaggi")
    assert deadline["alarms"] == 1
    assert f"{research.group_id}-deadline@testserver" in found
    opening = found[f"{sportello.group_id}-opening@testserver"]
    assert opening["start"] == sportello.opens and str(opening["summary"]).startswith("Apertura:")
    # Calls the member was not alerted of are not in their calendar.
    assert len(found) == 3


async def test_a_moved_deadline_moves_the_event_and_not_for_us_removes_it(
    client: httpx.AsyncClient,
    sqlite_db: Database,
    board: Board,
    config: WebConfig,
    clock: Clock,
    now: datetime,
) -> None:
    path = _path(WebAccess(sqlite_db, config, clock).calendar_link(board.member.id))
    before = events((await client.get(path)).content)
    uid = f"{board.calls['SYN1'].group_id}-deadline@testserver"

    moved = board.calls["SYN1"].closes + timedelta(days=14)  # type: ignore[operator]
    original = next(r for r in records(now) if r.source_id == "SYN1")
    clock.advance(timedelta(hours=2))
    ingest(sqlite_db, [replace(original, closes=moved, deadlines=())], now=clock())
    after_body = (await client.get(path)).content
    check_rfc5545(after_body)
    after = events(after_body)
    assert set(after) == set(before)  # the same event, not a copy
    assert after[uid]["start"] == moved and before[uid]["start"] != moved
    assert after[uid]["sequence"] > before[uid]["sequence"]  # type: ignore[operator]

    research = board.calls["SYN2"].group_id
    assert research is not None
    set_feedback(sqlite_db, board.member.id, research, "not_for_us", now=clock())
    remaining = events((await client.get(path)).content)
    assert f"{research}-deadline@testserver" not in remaining and uid in remaining


async def test_calendar_tokens_rotate_and_refuse_strangers(
    client: httpx.AsyncClient, sqlite_db: Database, board: Board, config: WebConfig, clock: Clock
) -> None:
    links = WebAccess(sqlite_db, config, clock)
    first = links.calendar_link(board.member.id)
    assert links.calendar_link(board.member.id) == first  # given again, unchanged
    other = links.calendar_link(board.other.id)
    assert other != first
    rotated = links.calendar_link(board.member.id, rotate=True)
    assert rotated != first
    assert (await client.get(_path(first))).status_code == 404
    assert (await client.get(_path(rotated))).status_code == 200
    assert (await client.get("/calendario/made-up-token.ics")).status_code == 404
    # Marco answered "Non per noi" to the only call he was alerted of: an empty, valid calendar.
    empty = await client.get(_path(other))
    assert empty.status_code == 200 and b"BEGIN:VEVENT" not in empty.content
    members.update_member(sqlite_db, board.member.id, now=clock(), active=False)
    assert (await client.get(_path(rotated))).status_code == 404


async def test_public_feeds_list_open_calls_once_per_group(client: httpx.AsyncClient, board: Board) -> None:
    ics = await client.get("/feed/bandi.ics")
    assert ics.status_code == 200
    found = events(check_rfc5545(ics.content).to_ical())
    assert all(uid.startswith("public-") for uid in found)
    titles = " ".join(str(e["summary"]) for e in found.values())
    assert "chiuso" not in titles
    # The regional call and its national copy are one group: one deadline event.
    assert sum("Imballaggi" in str(e["summary"]) for e in found.values()) == 1

    rss = await client.get("/feed/bandi.rss")
    assert rss.headers["content-type"].startswith("application/rss+xml")
    parsed = feedparser.parse(rss.content)
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.feed.title == "Sentinella: bandi aperti"
    assert len(parsed.entries) == 4 and all(e.link.startswith("https://") for e in parsed.entries)
    atom = feedparser.parse((await client.get("/feed/bandi.atom?lang=en")).content)
    assert not atom.bozo and atom.version == "atom10"
    assert atom.feed.title == "Sentinella: open calls"
    assert {e.title for e in atom.entries} == {e.title for e in parsed.entries}
    assert atom.feed.links[0].href == BASE + "/feed/bandi.atom"


async def test_public_feeds_can_be_switched_off(sqlite_db: Database, board: Board, clock: Clock) -> None:
    from tests.web.conftest import web_config
    from web.app import create_app

    app = create_app(sqlite_db, web_config(public_feeds=False), clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        for kind in ("ics", "rss", "atom"):
            assert (await c.get(f"/feed/bandi.{kind}")).status_code == 404


def test_date_only_deadlines_are_all_day_events(sqlite_db: Database, board: Board, now: datetime) -> None:
    from web.calendar import Entry, build_calendar

    national = board.calls["9001"]
    body = build_calendar([Entry(7, national)], name="x", base_url=BASE, now=now, lang="it", past_days=30)
    ev = next(iter(Calendar.from_ical(body).walk("VEVENT")))
    assert ev.decoded("DTSTART") == national.closes.astimezone(ROME).date()  # type: ignore[union-attr]
    assert ev.decoded("DTEND") - ev.decoded("DTSTART") == timedelta(days=1)
    assert isinstance(ev.decoded("DTSTART"), date) and not isinstance(ev.decoded("DTSTART"), datetime)
