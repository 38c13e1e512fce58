"""Storage for the web board on both engines: sign-in links, calendar tokens, the deadline index."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from storage import access, board, housekeeping, members
from storage.calls import get_call, list_calls
from storage.db import Database
from storage.ingest import ingest
from storage.records import ROME, Deadline, Precision
from tests.fakes.web_data import populate, records


def test_signin_links_work_once_until_they_expire(db: Database, now: datetime) -> None:
    m = members.upsert_member(db, now=now, name="Staff", role="staff", telegram_chat_id=5)
    token = access.create_signin_link(db, m.id, now=now, ttl=timedelta(minutes=15))
    assert access.peek_signin_link(db, token) == access.LinkView(m.id, now + timedelta(minutes=15), False)
    assert access.redeem_signin_link(db, token, now=now) == m.id
    with pytest.raises(access.LinkError) as used:
        access.redeem_signin_link(db, token, now=now)
    assert used.value.kind == "used"
    late = access.create_signin_link(db, m.id, now=now, ttl=timedelta(minutes=15))
    with pytest.raises(access.LinkError) as expired:
        access.redeem_signin_link(db, late, now=now + timedelta(minutes=15))
    assert expired.value.kind == "expired"
    with pytest.raises(access.LinkError) as unknown:
        access.redeem_signin_link(db, "nope", now=now)
    assert unknown.value.kind == "unknown"
    assert access.links_made_since(db, m.id, now - timedelta(hours=1)) == 2
    assert housekeeping.prune(db, before=now + timedelta(hours=1))["signin_links"] == 2
    members.delete_member(db, m.id)  # links and feeds go with the member
    assert access.peek_signin_link(db, token) is None


def test_calendar_tokens_are_stored_as_hashes_and_replaced(db: Database, now: datetime) -> None:
    m = members.upsert_member(db, now=now, name="Socio", telegram_chat_id=6)
    assert access.calendar_version(db, m.id) is None
    access.set_calendar_token(db, m.id, version=1, token="first-token", now=now)
    assert access.calendar_member(db, "first-token") == m.id
    access.set_calendar_token(db, m.id, version=2, token="second-token", now=now)
    assert access.calendar_version(db, m.id) == 2
    assert access.calendar_member(db, "first-token") is None
    assert access.calendar_member(db, "second-token") == m.id
    members.update_member(db, m.id, now=now, active=False)
    assert access.calendar_member(db, "second-token") is None


def test_the_deadline_index_agrees_with_the_call_views(db: Database, now: datetime) -> None:
    made = populate(db, now)
    staged = replace(
        next(r for r in records(now) if r.source_id == "SYN2"),
        source_id="SYN9",
        url="https://www.bandi.regione.lombardia.it/servizi/servizio/bandi/dettaglio/tappe-SYN9",
        title="Bando sintetico a tappe",
        closes=None,
        closes_precision=None,
        deadlines=(
            Deadline(now + timedelta(days=3), Precision.DATE, "prima finestra"),
            Deadline(now + timedelta(days=40), Precision.DATE, "seconda finestra"),
        ),
    )
    ingest(db, [staged], now=now)
    rows = board.board_rows(db)
    views = {c.id: c for c in list_calls(db)}
    assert len(rows) == len(views)
    for row in rows:
        view = views[row.id]
        assert row.end == view.final_deadline and row.opens == view.opens
        assert (row.source, row.status, row.title) == (view.source, view.status, view.title)
    ends = [r.end for r in rows if r.end is not None]
    assert ends == sorted(ends) and rows[-1].end is None  # the sportello call, open-ended, last
    index = board.RowIndex(rows)
    for query in (board.BoardQuery(), board.BoardQuery(phase="open"), board.BoardQuery(phase="closed"),
                  board.BoardQuery(phase="forthcoming"), board.BoardQuery(phase="all", source="lombardia")):  # fmt: skip
        expected = [r.id for r in rows if (query.source in (None, r.source)) and (
            query.phase == "all" or views[r.id].phase(now) == query.phase
            or (query.phase == "active" and views[r.id].phase(now) != "closed"))]  # fmt: skip
        assert board.select_ids(index, query, now=now) == expected, query
    window = board.BoardQuery(closes_from=now + timedelta(days=5), closes_until=now + timedelta(days=45))
    kept = board.select_ids(index, window, now=now)
    assert made.calls["SYN1"].id in kept and views[kept[-1]].title == "Bando sintetico a tappe"
    assert made.calls["9002"].id not in kept  # no deadline: out of any window
    assert board.board_ids(db, board.BoardQuery(phase="all", text="IMBALLAGGI"), now=now) == [
        made.calls["SYN1"].id, made.calls["9001"].id,
    ]  # fmt: skip


def test_board_reads_of_alerts_feedback_and_delivery(db: Database, now: datetime) -> None:
    made = populate(db, now)
    group = made.calls["SYN1"].group_id
    assert group is not None
    alerts = {a.name: a for a in board.group_alerts(db, group)}
    assert alerts["Laura Bianchi"].feedback == "interested"
    assert alerts["Marco Verdi"].feedback == "not_for_us"
    assert alerts["Laura Bianchi"].reasons[1] == "parola chiave «ricaricabile»"
    assert {d[1:3] for d in alerts["Laura Bianchi"].deliveries} == {
        ("telegram", "sent"),
        ("email", "pending"),
    }
    laura = board.matched_groups(db, made.member.id)
    expected = sorted(made.calls[s].group_id or 0 for s in ("SYN1", "SYN2", "9002"))
    assert [m.group_id for m in laura] == expected  # alerted at once: by group
    assert [m.interested for m in laura if m.group_id == group] == [True]
    assert board.matched_groups(db, made.other.id) == []  # "Non per noi"
    states = board.delivery_states(db)
    assert states[made.member.id].counts == {"sent": 3, "pending": 3}
    assert states[made.member.id].last_sent_at == (now - timedelta(hours=20)).astimezone(ROME)
    assert get_call(db, made.calls["SYN0"].id) is not None
