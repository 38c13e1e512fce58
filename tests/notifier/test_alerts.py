"""notifier.planning.alerts: call events → outbox rows (new, changed, silence), on real storage.

Most tests use a tiny keyword matcher (``KeywordMatcher``) so they test the planning rules, not
the matching; ``test_real_matcher_end_to_end`` runs the real ``notifier.matching.Matcher``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import ClassVar

import pytest

from notifier.config import MatchingConfig
from notifier.matching.profiles import Profile
from notifier.messages.changes import change_line
from notifier.planning import alerts
from notifier.planning.alerts import plan_alerts
from notifier.planning.changes import ChangeFact, significant_changes
from storage import planning
from storage.calls import CallView
from storage.db import Database
from storage.records import ROME, CallStatus
from tests.fakes.planning_data import (
    add_member,
    keys,
    other_call,
    outbox_rows,
    packaging_call,
    set_feedback,
    store,
)

PACKAGING = {"keywords": ["packaging"], "channels": ["telegram", "email"]}


def payload_lines(payload: dict) -> list[str]:
    """The change lines an alert with this payload shows (Italian)."""
    from notifier.messages.alerts import change_facts
    from notifier.messages.changes import change_line

    return [change_line(f, "it") for f in change_facts(payload, now=datetime(2026, 1, 1, tzinfo=UTC))]


@dataclass(frozen=True)
class FakeReason:
    term: str

    def line(self, lang: str) -> str:
        return f"keyword «{self.term}» in the title" if lang == "en" else f"parola «{self.term}» nel titolo"


@dataclass(frozen=True)
class FakeMatch:
    member_id: int
    score: float
    reasons: tuple[FakeReason, ...]


class KeywordMatcher:
    """Matches a profile keyword in the title of an open call."""

    built: ClassVar[list[list[int]]] = []

    def __init__(self, profiles: Sequence[tuple[int, Profile]], config: MatchingConfig) -> None:
        self.profiles = list(profiles)
        KeywordMatcher.built.append([m for m, _ in profiles])

    def match(self, call: CallView, *, now: datetime) -> list[FakeMatch]:
        if not call.is_open(now):
            return []
        out = []
        for member_id, profile in self.profiles:
            terms = [k for k in profile.keywords if k.lower() in call.title.lower()]
            if terms:
                out.append(FakeMatch(member_id, float(len(terms)), tuple(FakeReason(t) for t in terms)))
        return out


def plan(db: Database, now: datetime) -> alerts.PlanReport:
    return plan_alerts(db, now=now, config=MatchingConfig(), matcher_factory=KeywordMatcher)


def test_new_call_that_matches_gives_one_row_per_channel(db: Database, now: datetime) -> None:
    laura = add_member(db, now=now, chat_id=101, email="laura@example.com", profile=PACKAGING)
    john = add_member(
        db, now=now, name="John", chat_id=102, language="en", profile={**PACKAGING, "channels": ["telegram"]}
    )
    add_member(db, now=now, name="Agri", chat_id=103, profile={"keywords": ["trattori"]})
    call, _ = store(db, [packaging_call(now=now), other_call(now=now)], now=now)

    report = plan(db, now)

    rows = outbox_rows(db)
    assert keys(rows) == {
        (laura, call.group_id, "new", "telegram"),
        (laura, call.group_id, "new", "email"),
        (john, call.group_id, "new", "telegram"),
    }
    assert report.new == 3 and report.changed == 0 and report.events == 2
    assert all(r.call_id == call.id for r in rows)
    by_member = {r.member_id: r.payload for r in rows}
    assert by_member[laura]["reasons"] == ["parola «packaging» nel titolo"]
    assert by_member[john]["reasons"] == ["keyword «packaging» in the title"]
    assert planning.get_cursor(db, planning.ALERTS_CURSOR) == report.cursor_after > 0

    # Nothing new: a second run reads nothing and inserts nothing.
    again = plan(db, now + timedelta(minutes=1))
    assert again.events == 0 and again.enqueued == 0
    assert len(outbox_rows(db)) == 3


def test_same_call_on_two_portals_alerts_once(db: Database, now: datetime) -> None:
    laura = add_member(db, now=now, chat_id=101, profile={**PACKAGING, "channels": ["telegram"]})
    lombardia = packaging_call(now=now)
    # incentivi.gov.it republishes the measure and links to the regional page: same group.
    copy = packaging_call(
        "9001",
        now=now,
        source="incentivi",
        url="https://www.incentivi.gov.it/it/catalogo/packaging-sostenibile-2026",
        links=(lombardia.url,),
    )
    first, second = store(db, [lombardia, copy], now=now)
    assert first.group_id == second.group_id

    plan(db, now)
    rows = outbox_rows(db)
    assert keys(rows) == {(laura, first.group_id, "new", "telegram")}
    assert rows[0].call_id == first.id  # the canonical call, the region's own page

    # A third portal (a news feed) publishing it later changes nothing.
    later = now + timedelta(hours=6)
    feed_item = replace(
        copy, source="feeds", source_id="feed-1", url="https://example.org/news/packaging-2026"
    )
    (third,) = store(db, [feed_item], now=later)
    assert third.group_id == first.group_id
    plan(db, later)
    assert len(outbox_rows(db)) == 1


def test_deadline_moved_alerts_only_those_already_alerted(db: Database, now: datetime) -> None:
    laura = add_member(db, now=now, chat_id=101, profile={**PACKAGING, "channels": ["telegram"]})
    record = packaging_call(now=now)
    (call,) = store(db, [record], now=now)
    plan(db, now)

    # Joined after the call was planned: matches it, was never alerted about it.
    add_member(db, now=now, name="Late", chat_id=102, profile={**PACKAGING, "channels": ["telegram"]})
    later = now + timedelta(days=1)
    new_close = datetime(2026, 11, 16, 12, 0, tzinfo=ROME)
    store(db, [replace(record, closes=new_close)], now=later)
    report = plan(db, later)

    changed = [r for r in outbox_rows(db) if r.reason.startswith("changed:")]
    assert [(r.member_id, r.channel) for r in changed] == [(laura, "telegram")]
    assert report.changed == 1
    payload = changed[0].payload
    assert payload["changes"][0]["kind"] == "deadline"
    assert payload_lines(payload) == [
        "Scadenza spostata: 30 ottobre 2026, ore 12:00 → 16 novembre 2026, ore 12:00"
    ]
    assert payload["diff"]["closes"]["new"].startswith("2026-11-16T12:00")
    assert changed[0].call_id == call.id

    # A reworded summary is not worth a message.
    store(db, [replace(record, closes=new_close, summary="Testo riscritto.")], now=later + timedelta(hours=1))
    quiet = plan(db, later + timedelta(hours=1))
    assert quiet.changed == 0 and quiet.insignificant == 1


def test_not_for_us_silences_every_further_message(db: Database, now: datetime) -> None:
    laura = add_member(db, now=now, chat_id=101, profile={**PACKAGING, "channels": ["telegram"]})
    marco = add_member(
        db, now=now, name="Marco", chat_id=102, profile={**PACKAGING, "channels": ["telegram"]}
    )
    record = packaging_call(now=now)
    (call,) = store(db, [record], now=now)
    plan(db, now)
    assert call.group_id is not None
    set_feedback(db, marco, call.group_id, "not_for_us", now=now)

    later = now + timedelta(days=1)
    store(db, [replace(record, budget_total=Decimal("3000000"))], now=later)
    report = plan(db, later)

    changed = [r for r in outbox_rows(db) if r.reason.startswith("changed:")]
    assert [r.member_id for r in changed] == [laura]
    assert payload_lines(changed[0].payload) == ["Dotazione cambiata: € 2.000.000 → € 3.000.000"]
    assert report.silenced == 1


def test_not_for_us_before_the_alert_means_no_alert(db: Database, now: datetime) -> None:
    marco = add_member(db, now=now, chat_id=102, profile=PACKAGING)
    (call,) = store(db, [packaging_call(now=now)], now=now)
    assert call.group_id is not None
    set_feedback(db, marco, call.group_id, "not_for_us", now=now)
    report = plan(db, now)
    assert outbox_rows(db) == [] and report.silenced == 1


def test_paused_inactive_and_unreachable_members_get_nothing(db: Database, now: datetime) -> None:
    add_member(db, now=now, chat_id=101, paused=True, profile=PACKAGING)
    add_member(db, now=now, name="Gone", chat_id=102, active=False, profile=PACKAGING)
    add_member(db, now=now, name="No chat", email=None, profile={**PACKAGING, "channels": ["telegram"]})
    blocked = add_member(
        db, now=now, name="Blocked", chat_id=104, email="b@example.com", telegram_ok=False, profile=PACKAGING
    )
    (call,) = store(db, [packaging_call(now=now)], now=now)
    report = plan(db, now)
    assert keys(outbox_rows(db)) == {(blocked, call.group_id, "new", "email")}
    assert report.unreachable == 1
    # The matcher was built over active, unpaused members only.
    assert len(KeywordMatcher.built[-1]) == 2


def test_alert_kinds_are_honoured(db: Database, now: datetime) -> None:
    only_changes = add_member(
        db, now=now, chat_id=101, profile={**PACKAGING, "channels": ["telegram"], "alerts": ["changes"]}
    )
    only_new = add_member(
        db, now=now, name="B", chat_id=102, profile={**PACKAGING, "channels": ["telegram"], "alerts": ["new"]}
    )
    record = packaging_call(now=now)
    (call,) = store(db, [record], now=now)
    plan(db, now)
    assert keys(outbox_rows(db)) == {(only_new, call.group_id, "new", "telegram")}

    later = now + timedelta(days=1)
    store(db, [replace(record, closes=datetime(2026, 11, 30, 12, 0, tzinfo=ROME))], now=later)
    plan(db, later)
    # only_new does not want changes; only_changes was never alerted, so has no change to hear.
    assert [r.reason for r in outbox_rows(db)] == ["new"]
    assert only_changes not in {r.member_id for r in outbox_rows(db)}


def test_closed_early_is_told_closing_at_deadline_is_not(db: Database, now: datetime) -> None:
    laura = add_member(db, now=now, chat_id=101, profile={**PACKAGING, "channels": ["telegram"]})
    early = packaging_call(now=now)
    natural = packaging_call(
        "RLP12026060002",
        now=now,
        title="Packaging per la cosmesi: bando voucher",
        url="https://www.bandi.regione.lombardia.it/servizi/servizio/bandi/dettaglio/voucher-packaging",
        closes=now + timedelta(days=2),
    )
    store(db, [early, natural], now=now)
    plan(db, now)
    assert len(outbox_rows(db)) == 2

    # Funds exhausted a month before the deadline; the other simply reached its deadline.
    store(db, [replace(early, status=CallStatus.CLOSED)], now=now + timedelta(days=1))
    store(db, [replace(natural, status=CallStatus.CLOSED)], now=now + timedelta(days=3))
    plan(db, now + timedelta(days=3))

    changed = [r for r in outbox_rows(db) if r.reason.startswith("changed:")]
    assert len(changed) == 1 and changed[0].member_id == laura
    assert changed[0].payload["changes"][0]["kind"] == "closed_early"
    assert payload_lines(changed[0].payload) == ["Chiuso prima della scadenza (30 ottobre 2026, ore 12:00)"]


def test_reopened_call_reaches_members_never_alerted(db: Database, now: datetime) -> None:
    laura = add_member(db, now=now, chat_id=101, profile={**PACKAGING, "channels": ["telegram"]})
    closed = packaging_call(now=now, status=CallStatus.CLOSED, closes=now - timedelta(days=10))
    (call,) = store(db, [closed], now=now)
    plan(db, now)
    assert outbox_rows(db) == []  # closed when first seen: nobody alerted

    later = now + timedelta(days=1)
    store(db, [replace(closed, status=CallStatus.OPEN, closes=now + timedelta(days=30))], now=later)
    plan(db, later)
    assert keys(outbox_rows(db)) == {(laura, call.group_id, "new", "telegram")}


def test_a_call_starred_outside_an_alert_gets_its_changes(db: Database, now: datetime) -> None:
    # Laura's profile does not match the call: she found it with /cerca and pressed "Mi interessa".
    laura = add_member(db, now=now, chat_id=101, profile={"keywords": ["airless"], "channels": ["telegram"]})
    record = packaging_call(now=now)
    (call,) = store(db, [record], now=now)
    plan(db, now)
    assert outbox_rows(db) == []
    assert call.group_id is not None
    set_feedback(db, laura, call.group_id, "interested", now=now + timedelta(hours=1))

    later = now + timedelta(days=1)
    store(db, [replace(record, closes=datetime(2026, 11, 16, 12, 0, tzinfo=ROME))], now=later)
    report = plan(db, later)
    changed = [r for r in outbox_rows(db) if r.reason.startswith("changed:")]
    assert [(r.member_id, r.channel) for r in changed] == [(laura, "telegram")]
    assert changed[0].payload["changes"][0]["kind"] == "deadline" and report.changed == 1


def test_a_starred_call_that_reopens_is_told_once(db: Database, now: datetime) -> None:
    record = packaging_call(now=now)
    (call,) = store(db, [record], now=now)
    plan(db, now)
    # Joined later, with a profile that matches: found the call with /bandi and starred it.
    late = add_member(db, now=now, name="Late", chat_id=102, profile={**PACKAGING, "channels": ["telegram"]})
    assert call.group_id is not None
    set_feedback(db, late, call.group_id, "interested", now=now + timedelta(hours=1))

    closed_at = now + timedelta(days=1)
    store(db, [replace(record, status=CallStatus.CLOSED)], now=closed_at)
    plan(db, closed_at)
    reopened_at = now + timedelta(days=2)
    store(db, [replace(record, closes=now + timedelta(days=60))], now=reopened_at)
    plan(db, reopened_at)

    mine = [r for r in outbox_rows(db) if r.member_id == late]
    kinds = [[f["kind"] for f in r.payload.get("changes", [])] for r in mine]
    # Closed early, then reopened: each told as a change, and no "new call" besides.
    assert [r.reason.split(":")[0] for r in mine] == ["changed", "changed"]
    assert any("closed_early" in k for k in kinds) and any("reopened" in k for k in kinds)


def test_a_star_given_after_the_change_is_not_told_that_change(db: Database, now: datetime) -> None:
    laura = add_member(db, now=now, chat_id=101, profile={"keywords": ["airless"], "channels": ["telegram"]})
    record = packaging_call(now=now)
    (call,) = store(db, [record], now=now)
    plan(db, now)
    later = now + timedelta(days=1)
    store(db, [replace(record, closes=datetime(2026, 11, 16, 12, 0, tzinfo=ROME))], now=later)
    assert call.group_id is not None
    # She starred it after the deadline moved (she saw the new one): no message about it.
    set_feedback(db, laura, call.group_id, "interested", now=later + timedelta(hours=1))
    plan(db, later + timedelta(hours=2))
    assert outbox_rows(db) == []


def test_alerted_members_counts_interest_from_its_time(db: Database, now: datetime) -> None:
    laura = add_member(db, now=now, chat_id=101, profile={**PACKAGING, "channels": ["telegram"]})
    marco = add_member(db, now=now, name="Marco", chat_id=102, profile={"keywords": ["airless"]})
    (call,) = store(db, [packaging_call(now=now)], now=now)
    plan(db, now)
    assert call.group_id is not None
    set_feedback(db, laura, call.group_id, "interested", now=now + timedelta(days=2))
    set_feedback(db, marco, call.group_id, "interested", now=now + timedelta(days=1))
    known = planning.alerted_members(db, [call.group_id])[call.group_id]
    assert known[laura] <= now + timedelta(seconds=1)  # the earlier alert counts
    assert known[marco] == now + timedelta(days=1)
    assert planning.alerted_members(db, [call.group_id], interested=False)[call.group_id].keys() == {laura}


def test_crash_between_enqueue_and_cursor_loses_and_duplicates_nothing(
    db: Database, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_member(db, now=now, chat_id=101, email="l@example.com", profile=PACKAGING)
    store(db, [packaging_call(now=now)], now=now)

    def crash(*args: object, **kwargs: object) -> int:
        raise RuntimeError("power cut")

    monkeypatch.setattr(planning, "advance_cursor", crash)
    with pytest.raises(RuntimeError):
        plan(db, now)
    assert len(outbox_rows(db)) == 2
    assert planning.get_cursor(db, planning.ALERTS_CURSOR) == 0
    monkeypatch.undo()

    report = plan(db, now + timedelta(minutes=1))
    assert report.events == 1 and report.enqueued == 0  # replayed, nothing doubled
    assert len(outbox_rows(db)) == 2
    assert planning.get_cursor(db, planning.ALERTS_CURSOR) == report.cursor_after > 0


def test_cursor_survives_restarts_and_batches(db: Database, now: datetime) -> None:
    laura = add_member(db, now=now, chat_id=101, profile={**PACKAGING, "channels": ["telegram"]})
    records = [
        packaging_call(
            f"RLP1202606{n:04d}",
            now=now,
            title=f"Packaging per la filiera cosmetica, linea {n}",
            url=f"https://www.bandi.regione.lombardia.it/servizi/servizio/bandi/dettaglio/linea-{n}",
        )
        for n in range(7)
    ]
    store(db, records, now=now)
    report = plan_alerts(db, now=now, config=MatchingConfig(), matcher_factory=KeywordMatcher, batch_size=3)
    assert report.events == 7 and report.new == 7
    assert {r.member_id for r in outbox_rows(db)} == {laura}
    assert (
        planning.advance_cursor(db, planning.ALERTS_CURSOR, 1, now=now) == report.cursor_after
    )  # never back


def test_real_matcher_end_to_end(db: Database, now: datetime) -> None:
    laura = add_member(
        db,
        now=now,
        chat_id=101,
        profile={"topics": ["packaging"], "keywords": ["imballaggi riciclabili"], "channels": ["telegram"]},
    )
    add_member(
        db, now=now, name="Agri", chat_id=102, profile={"keywords": ["trattori"], "channels": ["telegram"]}
    )
    (call, _) = store(db, [packaging_call(now=now), other_call(now=now)], now=now)
    report = plan_alerts(db, now=now, config=MatchingConfig())
    rows = outbox_rows(db)
    assert keys(rows) == {(laura, call.group_id, "new", "telegram")}
    assert rows[0].payload["reasons"] and all(isinstance(x, str) for x in rows[0].payload["reasons"])
    assert report.new == 1


# --- which changes matter (pure) -----------------------------------------------------------------


def test_significant_changes_rules(now: datetime) -> None:
    deadline = datetime(2026, 10, 30, 12, 0, tzinfo=ROME)
    moved = significant_changes(
        "changed",
        {
            "closes": {"old": deadline.isoformat(), "new": "2026-11-16T12:00:00+01:00"},
            "summary": {"old": "a", "new": "b"},
        },
        at=now,
        deadline=deadline,
    )
    assert [f.kind for f in moved] == ["deadline"]
    assert change_line(moved[0], "en") == "Deadline moved: 30 October 2026, 12:00 → 16 November 2026, 12:00"
    assert (
        significant_changes("changed", {"summary": {"old": "a", "new": "b"}}, at=now, deadline=deadline) == []
    )
    reopened = significant_changes(
        "reopened", {"status": {"old": "closed", "new": "open"}}, at=now, deadline=None
    )
    assert [f.kind for f in reopened] == ["reopened"]
    # Closed with no deadline at all (a sportello running out of funds) counts as early.
    assert significant_changes(
        "changed", {"status": {"old": "open", "new": "closed"}}, at=now, deadline=None
    ) == [ChangeFact("closed_early", None, None)]
    # Closed on the last day of a date-only deadline is not early; the day after is natural.
    day_only = datetime(2026, 9, 2, tzinfo=ROME)
    assert significant_changes(
        "changed", {"status": {"old": "open", "new": "closed"}}, at=now, deadline=day_only
    ) == [ChangeFact("closed_early", day_only, None)]
    assert (
        significant_changes(
            "changed",
            {"status": {"old": "open", "new": "closed"}},
            at=now + timedelta(days=1),
            deadline=day_only,
        )
        == []
    )
    budget = significant_changes(
        "changed", {"budget_total_cents": {"old": 100_000_00, "new": 150_000_050}}, at=now
    )
    assert change_line(budget[0], "it") == "Dotazione cambiata: € 100.000 → € 1.500.000,50"
    assert change_line(budget[0], "en") == "Budget changed: €100,000 → €1,500,000.50"
    opening = significant_changes(
        "changed", {"opens": {"old": None, "new": "2026-10-15T10:00:00+02:00"}}, at=now
    )
    assert change_line(opening[0], "it") == "Apertura fissata: 15 ottobre 2026, ore 10:00"
