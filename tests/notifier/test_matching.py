"""Matching: scores, reasons, hard filters, explain, the fast path agreeing with explain, dry run."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from notifier.config import MatchingConfig
from notifier.matching.engine import Matcher, Reason, dry_run, explain, reasons_line
from notifier.matching.evaluation import load_relevance_set
from storage import members
from storage.db import Database
from storage.ingest import ingest
from storage.records import CallRecord, CallStatus, Deadline, Precision
from tests.fakes.matching_data import NOW, call, profile

PACKAGING = profile(topics=["packaging"], province="BG")


def test_a_title_term_matches_with_its_reason() -> None:
    c = call("Contributi per imballaggi riciclabili")
    [m] = Matcher([(7, PACKAGING)]).match(c, now=NOW)
    assert m.member_id == 7 and m.score >= 3
    assert m.reasons[0] == Reason("topic", "imballaggi", "title", "packaging")
    assert m.reasons[0].line("it") == "argomento Packaging: «imballaggi» nel titolo"
    assert m.reasons[0].line("en") == "topic Packaging: “imballaggi” in the title"


def test_a_passing_mention_in_the_description_does_not_match() -> None:
    c = call(
        "Bando per la formazione continua",
        description="Tra le spese ammissibili anche il confezionamento dei materiali didattici.",
    )
    assert Matcher([(1, PACKAGING)]).match(c, now=NOW) == []
    ex = explain(c, PACKAGING, now=NOW)
    assert not ex.matched and ex.excluded_by == "threshold" and ex.score > 0
    assert ex.reasons[0].field == "description"


def test_weak_terms_alone_do_not_match_but_strong_ones_do() -> None:
    research = profile(topics=["ricerca-innovazione"])
    assert Matcher([(1, research)]).match(call("Premio innovazione 2026"), now=NOW) == []
    assert Matcher([(1, research)]).match(call("Bando ricerca e sviluppo per le PMI"), now=NOW)


def test_the_members_own_keywords_count_more_and_show() -> None:
    p = profile(keywords=["flaconi airless"])
    [m] = Matcher([(1, p)]).match(
        call("Avviso", summary="Nuove linee di flaconi airless per la cosmetica"), now=NOW
    )
    assert m.reasons == (Reason("keyword", "flaconi airless", "summary"),)
    assert m.reasons[0].line("it") == "parola chiave «flaconi airless» nella sintesi"
    assert m.reasons[0].line("en") == "keyword “flaconi airless” in the summary"


def test_reasons_line_for_an_alert() -> None:
    reasons = (Reason("topic", "imballaggi", "title", "packaging"), Reason("keyword", "airless", "keywords"))
    assert (
        reasons_line(reasons, "it")
        == "argomento Packaging: «imballaggi» nel titolo; parola chiave «airless» nelle parole chiave"
    )
    long = Reason("keyword", "x" * 200, "title")
    assert len(long.line("en")) < 100


def test_exclusions_apply_to_title_summary_keywords_programme_only() -> None:
    p = profile(topics=["packaging"], exclude=["agricoltura"])
    in_title = call("Imballaggi per l'agricoltura")
    in_text = call("Imballaggi riciclabili", description="Sono esclusi i settori agricoltura e pesca.")
    m = Matcher([(1, p)])
    assert m.match(in_title, now=NOW) == []
    assert m.match(in_text, now=NOW)
    ex = explain(in_title, p, now=NOW)
    assert ex.excluded_by == "exclusion" and "agricoltura" in ex.detail("it")


def test_sources_and_minimum_budget() -> None:
    p = profile(topics=["packaging"], sources=["lombardia"], min_budget_eur=50_000)
    small = call("Imballaggi sostenibili", source="lombardia", contribution_max=Decimal("10000"))
    other = call("Imballaggi sostenibili", source="sedia")
    big_total = call("Imballaggi sostenibili", source="lombardia", budget_total=Decimal("2000000"))
    unknown = call("Imballaggi sostenibili", source="lombardia")
    m = Matcher([(1, p)])
    assert m.match(small, now=NOW) == [] and explain(small, p, now=NOW).excluded_by == "budget"
    assert m.match(other, now=NOW) == [] and explain(other, p, now=NOW).excluded_by == "source"
    assert m.match(big_total, now=NOW) and m.match(unknown, now=NOW)  # the budget rule needs an amount


def test_closed_and_past_calls_never_match_but_announced_ones_do() -> None:
    closed = call("Imballaggi", status=CallStatus.CLOSED, closes=NOW + timedelta(days=3))
    past = call("Imballaggi", closes=NOW - timedelta(minutes=1))
    date_only_today = call(
        "Imballaggi",
        closes=NOW.replace(hour=0),
        closes_precision=Precision.DATE,
        deadlines=(Deadline(NOW.replace(hour=0), Precision.DATE),),
    )
    announced = call("Imballaggi", status=CallStatus.FORTHCOMING, opens=NOW + timedelta(days=20))
    m = Matcher([(1, PACKAGING)])
    assert m.match(closed, now=NOW) == [] and explain(closed, PACKAGING, now=NOW).excluded_by == "closed"
    assert m.match(past, now=NOW) == [] and explain(past, PACKAGING, now=NOW).excluded_by == "deadline-passed"
    assert m.match(date_only_today, now=NOW)  # a date-only deadline lasts the whole day
    assert m.match(announced, now=NOW)


def test_a_profile_with_nothing_to_look_for_matches_nothing() -> None:
    assert Matcher([(1, profile())]).match(call("Imballaggi e packaging"), now=NOW) == []


def test_best_score_first_then_member_id() -> None:
    strong = profile(topics=["packaging"], keywords=["airless"])
    c = call("Imballaggi airless", summary="Packaging per la cosmetica")
    out = Matcher([(3, PACKAGING), (2, PACKAGING), (1, strong)]).match(c, now=NOW)
    assert [m.member_id for m in out] == [1, 2, 3]
    assert out[0].score > out[1].score == out[2].score


def test_threshold_is_configurable() -> None:
    c = call("Avviso", summary="Contributi per il confezionamento")
    assert Matcher([(1, PACKAGING)]).match(c, now=NOW) == []
    assert Matcher([(1, PACKAGING)], config=MatchingConfig(threshold=1.5)).match(c, now=NOW)


def test_explain_all_covers_every_profile_the_call_speaks_to() -> None:
    c = call("Imballaggi riciclabili per le PMI", summary="Per le imprese con sede operativa in Lombardia.")
    m = Matcher(
        [(1, PACKAGING), (2, profile(topics=["energia"])), (3, profile(topics=["packaging"], province="TO"))]
    )
    found = dict(m.explain_all(c, now=NOW))
    assert set(found) == {1, 3}
    assert found[1].matched and found[3].excluded_by == "territory"


def test_the_fast_path_agrees_with_explain_on_the_relevance_set() -> None:
    rs = load_relevance_set(Path(__file__).resolve().parents[1] / "data" / "relevance", now=NOW)
    m = Matcher(list(rs.profiles.values()))
    for labelled in rs.calls:
        fast = {x.member_id: x for x in m.match(labelled.call, now=NOW)}
        for member_id, _p in rs.profiles.values():
            ex = m.explain(labelled.call, member_id, now=NOW)
            assert ex.matched == (member_id in fast), (labelled.key, member_id, ex.excluded_by)
            if ex.matched:
                assert ex.score == fast[member_id].score
                assert ex.reasons == fast[member_id].reasons


def test_dry_run_over_stored_calls(db: Database, now: datetime) -> None:
    records = [
        CallRecord(source="manual", source_id="a", url="https://e.org/a", title="Contributi per imballaggi riciclabili",
                   closes=now + timedelta(days=10), closes_precision=Precision.DATETIME, status=CallStatus.OPEN),
        CallRecord(source="manual", source_id="b", url="https://e.org/b", title="Imballaggi: bando chiuso",
                   closes=now - timedelta(days=1), closes_precision=Precision.DATETIME, status=CallStatus.CLOSED),
        CallRecord(source="manual", source_id="c", url="https://e.org/c", title="Imballaggi per le imprese venete",
                   summary="Riservato alle PMI con sede operativa in Veneto.", status=CallStatus.OPEN),
    ]  # fmt: skip
    ingest(db, records, now=now)
    laura = members.upsert_member(db, now=now, name="Laura", email="laura@example.com")
    members.set_profile(db, laura.id, PACKAGING.to_data(), now=now)
    paused = members.upsert_member(db, now=now, name="Off", email="off@example.com", active=False)
    members.set_profile(db, paused.id, PACKAGING.to_data(), now=now)

    rows = dry_run(db, now=now, config=MatchingConfig())
    assert [(r.member_name, r.title) for r in rows] == [("Laura", "Contributi per imballaggi riciclabili")]
    row = rows[0]
    assert row.matched and row.reason_line("it").startswith("argomento Packaging")
    assert row.to_json("en")["reasons"][0].startswith("topic Packaging")

    explained = dry_run(db, now=now, config=MatchingConfig(), explain=True, lang="en")
    assert [(r.title, r.matched, r.excluded_by) for r in explained] == [
        ("Contributi per imballaggi riciclabili", True, None),
        ("Imballaggi per le imprese venete", False, "territory"),
    ]
    assert "Veneto" in explained[1].detail

    # An inactive member is dry-run when asked for by id (staff tune profiles before enabling).
    assert [r.member_id for r in dry_run(db, now=now, member_id=paused.id)] == [paused.id]
    assert dry_run(db, now=now, since=now + timedelta(days=1)) == []
