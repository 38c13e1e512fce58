"""BURL, Unioncamere Lombardia and Open Innovation Lombardia end to end: replay server on loopback →
crawl process → database → alert planning.

The acts of the BURL and the PDFs of Unioncamere change calls Sentinella already holds, so most
tests crawl Regione Lombardia's replay first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from crawler.config import CrawlConfig, SourcesConfig
from crawler.replay.venues import (
    BURL_API,
    UNIONCAMERE_DETAIL,
    BurlSearch,
    install_burl,
    install_openinnovation,
    install_unioncamere,
    serve_unioncamere_ranking,
)
from crawler.run import SourceSummary, run_crawl
from notifier.config import DigestConfig, MatchingConfig
from notifier.messages.alerts import Alert, render_text
from notifier.planning.alerts import plan_alerts
from notifier.planning.digest import build_digest
from storage.calls import CallView, call_events, get_call, list_calls
from storage.db import Database
from storage.outbox import Recipient
from storage.records import ROME, Precision
from storage.sources import get_source
from tests.fakes.planning_data import add_member, outbox_rows
from tests.fakes.replay import ReplayServer, Reply
from tests.fakes.replay_regional import install_lombardia

pytestmark = pytest.mark.integration

NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)
FILIERE = "RLO12026055023"
EXPORT = "RLP12026058888"
BURL_DATA = Path(__file__).resolve().parents[1] / "data" / "crawler" / "burl"


def payload_lines(payload: dict) -> list[str]:
    """The change lines an alert with this payload shows (Italian)."""
    from notifier.messages.alerts import change_facts
    from notifier.messages.changes import change_line

    return [change_line(f, "it") for f in change_facts(payload, now=datetime(2026, 1, 1, tzinfo=UTC))]


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as replay:
        yield replay


@pytest.fixture
def sources(server: ReplayServer) -> SourcesConfig:
    lombardia, _dataset, _portal = install_lombardia(server)
    return SourcesConfig(
        lombardia=lombardia,
        unioncamere=install_unioncamere(server),
        openinnovation=install_openinnovation(server),
        burl=install_burl(server),
    )


def crawl(
    db: Database, tmp_path: Path, source: str, sources: SourcesConfig, now: datetime = NOW
) -> SourceSummary:
    config = CrawlConfig(
        download_delay=0, max_retries=0, retry_backoff=0, lock_dir=str(tmp_path / "locks"), run_timeout=120
    )
    [summary] = run_crawl(db.url, [source], crawl=config, sources_config=sources, now=now)
    return summary


def plan(db: Database, now: datetime) -> Any:
    return plan_alerts(db, now=now, config=MatchingConfig())


def by_id(db: Database, source: str, kinds: list[str] | None = None) -> dict[str, CallView]:
    return {c.source_id: c for c in list_calls(db, source=source, kinds=kinds)}


def acts(db: Database) -> dict[str, dict[str, Any]]:
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT act_id, kind, call_id, confidence, rule, event_id FROM call_acts"))
        return {r.act_id: dict(r._mapping) for r in rows}


# --- BURL ----------------------------------------------------------------------------------------


def test_a_proroga_moves_the_deadline_with_the_act_as_evidence_and_alerts_the_alerted(
    db: Database, tmp_path: Path, sources: SourcesConfig
) -> None:
    assert crawl(db, tmp_path, "lombardia", sources).outcome == "ok"
    laura = add_member(
        db, now=NOW, chat_id=101, profile={"keywords": ["filiere sostenibili"], "channels": ["telegram"]}
    )
    first = plan(db, NOW)
    filiere = by_id(db, "lombardia")[FILIERE]
    assert [(r.member_id, r.call_id, r.reason) for r in outbox_rows(db)] == [(laura, filiere.id, "new")]
    assert first.new == 1

    later = NOW + timedelta(hours=1)
    summary = crawl(db, tmp_path, "burl", sources, now=later)
    assert summary.outcome == "ok", summary.reason
    assert summary.new == 5  # every act is kept as a notice row (searchable, counted in the yield)

    moved = get_call(db, filiere.id)
    assert moved is not None
    assert moved.closes == datetime(2027, 1, 30, 12, 0, tzinfo=ROME)
    assert moved.closes_precision == Precision.DATETIME
    assert moved.content_hash == filiere.content_hash  # the portal's version: a re-crawl keeps the act
    [event] = [e for e in call_events(db, filiere.id) if e.kind != "new"]
    assert event.kind == "changed"
    assert event.changes["closes"] == {"old": "2026-12-15T16:00:00+01:00", "new": "2027-01-30T12:00:00+01:00"}
    evidence = event.changes["act"]
    assert evidence["act_id"] == "458100001" and evidence["kind"] == "proroga"
    assert (evidence["confidence"], evidence["rule"]) == ("certo", "code")
    assert evidence["url"] == f"{sources.burl.api_url}/download?id=458100001"

    report = plan(db, later)
    assert report.changed == 1 and report.notices == 5 and report.new == 0
    [change] = [r for r in outbox_rows(db) if r.reason.startswith("changed:")]
    assert change.member_id == laura and change.call_id == filiere.id
    assert (
        payload_lines(change.payload)[0]
        == "Scadenza spostata: 15 dicembre 2026, ore 16:00 → 30 gennaio 2027, ore 12:00"
    )
    assert payload_lines(change.payload)[1].startswith("Proroga: Proroga dei termini")
    assert "collegamento certo: codice del bando" in payload_lines(change.payload)[1]

    # Acts are recorded once: a second crawl carries them and changes nothing.
    again = crawl(db, tmp_path, "burl", sources, now=later + timedelta(hours=1))
    assert (again.outcome, again.new, again.unchanged) == ("ok", 0, 5)
    assert len(acts(db)) == 5
    # The portal, crawled again unchanged, does not put the old date back.
    crawl(db, tmp_path, "lombardia", sources, now=later + timedelta(hours=2))
    still = get_call(db, filiere.id)
    assert still is not None and still.closes == datetime(2027, 1, 30, 12, 0, tzinfo=ROME)


def test_acts_are_linked_with_their_confidence_or_kept_as_notices_for_the_digest(
    db: Database, tmp_path: Path, sources: SourcesConfig
) -> None:
    crawl(db, tmp_path, "lombardia", sources)
    later = NOW + timedelta(hours=1)
    assert crawl(db, tmp_path, "burl", sources, now=later).outcome == "ok"
    lombardia = by_id(db, "lombardia")
    found = acts(db)
    assert {k: (v["kind"], v["confidence"], v["rule"]) for k, v in found.items()} == {
        "458100001": ("proroga", "certo", "code"),
        "458100002": ("graduatoria", "probabile", "title"),
        "458100005": ("riapertura", "probabile", "title"),
        "458100004": ("rettifica", "", ""),
        "458090158": ("altro", "", ""),
    }
    assert found["458100002"]["call_id"] == lombardia["RLP12026049999"].id
    # A reopening whose date cannot be read is an event on the call, not a change of its dates.
    linea = lombardia["RLAI2026053804"]
    [event] = [e for e in call_events(db, linea.id) if e.kind != "new"]
    assert event.kind == "act" and set(event.changes) == {"act"}
    # The staff digest lists the two acts linked to nothing, and the ranking as a change.
    digest = build_digest(
        db, now=later + timedelta(hours=1), since=later - timedelta(minutes=1), config=DigestConfig()
    )
    assert sorted(c.title[:20] for c in digest.notices) == ["Bando per l'assegnaz", "Rettifica del decret"]
    changed = {c.call.title for c in digest.changes}
    assert "Bando Fiere 2026 - prima finestra" in changed
    # Notices are not calls: listings and searches leave them out.
    assert list_calls(db, source="burl") == []


def test_an_answer_in_an_unknown_shape_is_a_degraded_run_with_the_body_kept(
    db: Database, tmp_path: Path, server: ReplayServer, sources: SourcesConfig
) -> None:
    crawl(db, tmp_path, "lombardia", sources)
    body = (BURL_DATA / "search_unknown_shape_synthetic.json").read_bytes()
    server.route("PUT", BURL_API + "/ricercaAvanzata", Reply(200, body, {"Content-Type": "application/json"}))
    summary = crawl(db, tmp_path, "burl", sources)
    assert summary.outcome == "degraded"
    assert "answer not understood" in summary.reason and "conteggioTotale" in summary.reason
    assert by_id(db, "burl", ["notice"]) == {} and acts(db) == {}
    filiere = by_id(db, "lombardia")[FILIERE]
    assert filiere.closes == datetime(2026, 12, 15, 16, 0, tzinfo=ROME)  # no wrong change
    with db.engine.connect() as conn:
        report = conn.execute(text("SELECT report FROM crawl_runs WHERE source = 'burl'")).scalar_one()
    report = json.loads(report) if isinstance(report, str) else report
    kept = report["notes"]["kept_bodies"]
    assert kept and kept[0]["body"] == body.decode() and report["not_understood"]


def test_the_search_is_sent_as_the_working_client_sent_it_and_paged(
    db: Database, tmp_path: Path, server: ReplayServer, sources: SourcesConfig
) -> None:
    hits = BurlSearch.bundled().hits
    many = [
        {**hit, "idBurl": 900000 + n, "titolo": f"Bando n. {n} {hit['titolo']}"}
        for n, hit in enumerate(hits * 3)
    ]
    server.route("PUT", BURL_API + "/ricercaAvanzata", BurlSearch(many))
    config = sources.model_copy(
        update={"burl": sources.burl.model_copy(update={"subjects": ["bando"], "page_size": 4})}
    )
    summary = crawl(db, tmp_path, "burl", config)
    assert summary.outcome == "ok" and summary.new == 15
    requests = server.requests_to(BURL_API + "/ricercaAvanzata", "PUT")
    assert [r.query["offset"] for r in requests] == [["0"], ["4"], ["8"], ["12"]]
    body = json.loads(requests[0].body)
    assert body["intervalloAnniPubblicazione"] == {"numeroMinimo": "2026", "numeroMassimo": "2026"}
    assert body["intervalloDateNumerazione"] == {"dataMinina": None, "dataMassima": None}
    assert all(r.status == 200 for r in requests)
    assert "\x00" not in "".join(c.title for c in by_id(db, "burl", ["notice"]).values())


# --- Unioncamere Lombardia -----------------------------------------------------------------------


def test_a_new_ranking_pdf_is_an_event_for_the_alerted_members(
    db: Database, tmp_path: Path, server: ReplayServer, sources: SourcesConfig
) -> None:
    crawl(db, tmp_path, "lombardia", sources)
    first = crawl(db, tmp_path, "unioncamere", sources)
    assert (first.outcome, first.new) == ("ok", 3)
    calls = by_id(db, "unioncamere")
    export = calls["bando-export-digitale-2026"]
    assert export.group_id == by_id(db, "lombardia")[EXPORT].group_id  # joined Bandi e Servizi's call
    assert [a.name for a in export.attachments] == ["Testo del bando (PDF)", "Modulo di domanda"]
    laura = add_member(
        db, now=NOW, chat_id=101, profile={"keywords": ["export digitale"], "channels": ["telegram"]}
    )
    plan(db, NOW)
    assert [r.reason for r in outbox_rows(db) if r.member_id == laura] == ["new"]

    # Nothing changed: every page answers 304.
    quiet = crawl(db, tmp_path, "unioncamere", sources, now=NOW + timedelta(hours=1))
    assert (quiet.outcome, quiet.unchanged, quiet.kinds["detail"]["bytes"]) == ("ok", 3, 0)

    later = NOW + timedelta(days=1)
    serve_unioncamere_ranking(server, at=later)
    summary = crawl(db, tmp_path, "unioncamere", sources, now=later)
    assert summary.outcome == "ok", summary.reason
    [act] = acts(db).values()
    assert (act["kind"], act["confidence"], act["rule"], act["call_id"]) == (
        "graduatoria",
        "certo",
        "page",
        export.id,
    )
    [event] = [e for e in call_events(db, export.id) if e.kind == "act"]
    assert event.changes["act"]["title"] == "Determinazione n. 45/2026 – elenco delle imprese ammesse"
    plan(db, later)
    [change] = [r for r in outbox_rows(db) if r.reason.startswith("changed:")]
    assert change.member_id == laura and change.call_id == export.id
    assert payload_lines(change.payload) == [
        "Graduatoria o esiti pubblicati: Determinazione n. 45/2026 – elenco delle imprese ammesse "
        "(UNIONCAMERE; collegamento certo: pagina del bando)"
    ]


def test_a_listing_in_an_unknown_shape_is_degraded_not_empty(
    db: Database, tmp_path: Path, server: ReplayServer, sources: SourcesConfig
) -> None:
    page = b"<html><body><div class='news'><a href='/notizie/1'>Una notizia</a></div></body></html>"
    server.route("GET", "/bandi-e-incentivi-alle-imprese", Reply(200, page, {"Content-Type": "text/html"}))
    summary = crawl(db, tmp_path, "unioncamere", sources)
    assert summary.outcome == "degraded" and "dettaglio-bando" in summary.reason
    assert by_id(db, "unioncamere") == {}


def test_a_detail_page_that_fails_keeps_the_stored_call(
    db: Database, tmp_path: Path, server: ReplayServer, sources: SourcesConfig
) -> None:
    crawl(db, tmp_path, "unioncamere", sources)
    server.route("GET", UNIONCAMERE_DETAIL + "voucher-ai-2026", Reply(500))
    summary = crawl(db, tmp_path, "unioncamere", sources, now=NOW + timedelta(hours=1))
    assert summary.outcome == "ok" and summary.errors == 1
    assert "voucher-ai-2026" in by_id(db, "unioncamere")
    assert get_source(db, "unioncamere").state["pages"]["bando-export-digitale-2026"]["pdfs"]


# --- Open Innovation Lombardia -------------------------------------------------------------------


def test_a_partner_search_reaches_the_member_who_opted_in_with_the_reason(
    db: Database, tmp_path: Path, sources: SourcesConfig
) -> None:
    summary = crawl(db, tmp_path, "openinnovation", sources)
    assert summary.outcome == "ok", summary.reason
    partners = by_id(db, "openinnovation", ["partner_search"])
    assert sorted(partners) == ["proposal:2024", "proposal:2090", "proposal:2101"]
    cosmetics = {"keywords": ["cosmetici"], "channels": ["telegram"]}
    opted = add_member(db, now=NOW, chat_id=101, profile={**cosmetics, "alerts": ["new", "partners"]})
    add_member(db, now=NOW, name="Default", chat_id=102, profile=cosmetics)  # partners off by default
    report = plan(db, NOW)
    rows = outbox_rows(db)
    assert {(r.member_id, r.reason) for r in rows} == {(opted, "partner")}
    assert report.partners == 2
    wanted = {partners["proposal:2090"].id, partners["proposal:2101"].id}
    assert {r.call_id for r in rows} == wanted
    row = next(r for r in rows if r.call_id == partners["proposal:2090"].id)
    assert any("cosmetici" in line for line in row.payload["reasons"])
    call = get_call(db, row.call_id)
    assert call is not None
    message = render_text(
        Alert(
            1,
            row.reason,
            "telegram",
            Recipient(opted, "Laura", "it", 101, None, True, False, True),
            call,
            row.payload,
            NOW,
        )
    )
    assert message.startswith("🤝 Ricerca partner")
    assert "cosmetici" in message.split("Perché:")[1]


def test_call_pages_join_the_call_known_from_bandi_e_servizi(
    db: Database, tmp_path: Path, server: ReplayServer, sources: SourcesConfig
) -> None:
    crawl(db, tmp_path, "lombardia", sources)
    crawl(db, tmp_path, "openinnovation", sources)
    page = by_id(db, "openinnovation")["bando:bando-filiere-sostenibili-2026"]
    filiere = by_id(db, "lombardia")[FILIERE]
    assert page.group_id == filiere.group_id
    assert page.budget_total is not None and int(page.budget_total) == 10_000_000
    assert page.summary.startswith("Sostiene progetti di ricerca industriale")
    # A no-change re-crawl fetches no page again (the challenge page, not a call, is remembered).
    server.clear()
    again = crawl(db, tmp_path, "openinnovation", sources, now=NOW + timedelta(hours=1))
    assert again.outcome == "ok" and again.kinds["detail"]["requests"] == 0
