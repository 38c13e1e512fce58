"""Not every feed item is a call: news, results, info days and rate updates are stored as notices;
they never become a "Nuovo bando" alert, are not listed as open calls, and reach the staff digest
under their own heading. Titles are those of the feed recordings (tests/data/crawler/feeds)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from crawler.parsing import notice_or_call
from notifier.config import DigestConfig, MatchingConfig
from notifier.messages.digest import render_digest
from notifier.planning.alerts import plan_alerts
from notifier.planning.digest import build_digest
from storage.calls import list_calls
from storage.db import Database
from storage.records import CallStatus
from tests.fakes.planning_data import add_member, keys, outbox_rows, packaging_call, store


@pytest.mark.parametrize(
    ("title", "kind"),
    [
        ("Innovation Fund: results of the 2025 call", "notice"),
        ("EIC Pathfinder Open results published", "notice"),
        ("Info day on the Single Market Programme calls", "notice"),
        ("Nuova Sabatini: aggiornato il tasso di riferimento", "notice"),
        ("Accordi per l'innovazione: proroga dei termini", "notice"),
        ("LIFE 2026 call for proposals: Circular Economy and Quality of Life", "call"),
        ("SMP-COSME-2026-CLUSTER: Euro-Cluster Excellence call now open", "call"),
        ("EIC Accelerator 2026: next cut-off date", "call"),
        ("Transizione 5.0, dal 10 settembre 2026 riapre la piattaforma per le prenotazioni", "call"),
        ("Bando digitalizzazione PMI", "call"),
        ("Voucher export & fiere 2026", "call"),
    ],
)
def test_a_feed_title_says_call_or_notice(title: str, kind: str) -> None:
    assert notice_or_call(title) == kind


def test_a_notice_alerts_nobody_is_not_open_and_is_in_the_digest(db: Database, now: datetime) -> None:
    add_member(db, now=now, chat_id=101, profile={"keywords": ["imballaggi"], "channels": ["telegram"]})
    call = packaging_call(
        "feeds:call-1", now=now, source="feeds", status=CallStatus.UNKNOWN, url="https://example.org/call-1"
    )
    notice = packaging_call(
        "feeds:news-1",
        now=now,
        source="feeds",
        url="https://example.org/news-1",
        status=CallStatus.UNKNOWN,
        title="Imballaggi sostenibili: pubblicati gli esiti del bando 2025",
        kind=notice_or_call("Imballaggi sostenibili: pubblicati gli esiti del bando 2025"),
    )
    assert notice.kind == "notice"
    stored_call, stored_notice = store(db, [call, notice], now=now)

    plan_alerts(db, now=now, config=MatchingConfig())
    alerted = {group for (_member, group, _reason, _channel) in keys(outbox_rows(db))}
    assert alerted == {stored_call.group_id}
    assert stored_notice.group_id not in alerted

    open_titles = {c.title for c in list_calls(db, open_only=True, now=now)}
    assert notice.title not in open_titles

    digest = build_digest(db, now=now + timedelta(hours=1), config=DigestConfig(), matching=MatchingConfig())
    text, html = render_digest(digest, language="it")
    assert "Avvisi, esiti e atti non collegati a un bando" in text
    heading = text.index("Avvisi, esiti e atti non collegati a un bando")
    assert text.index(notice.title) > heading
    assert "Avvisi, esiti e atti non collegati a un bando" in html
