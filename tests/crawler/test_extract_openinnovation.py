"""The Open Innovation Lombardia extractor, built on the real fragments of one proposal page
(``tests/data/crawler/openinnovation``, provenance in its README) and synthetic pages in their shape."""

from __future__ import annotations

from datetime import datetime

import pytest

from crawler.extract import ShapeError
from crawler.extract.openinnovation import extract_call_page, extract_proposal, parse_proposals
from storage.records import ROME, CallStatus, Precision
from tests.crawler.expected_cases import OI_2024_URL, OPENINNOVATION, Golden, golden_params, oi_real_fragments

NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)


@pytest.mark.parametrize("case", golden_params("openinnovation"))
def test_regeneration_produces_what_the_tests_check(case: Golden) -> None:
    assert case.produce() == case.expected()


def test_the_real_page_gives_type_reference_expiry_and_abstract() -> None:
    record = extract_proposal(oi_real_fragments(), OI_2024_URL, NOW)
    assert record.kind == "partner_search"
    assert record.keywords == ("Technology request", "TRLT20260720004")
    assert (record.closes, record.closes_precision) == (datetime(2027, 8, 19, tzinfo=ROME), Precision.DATE)
    assert record.status == CallStatus.OPEN
    assert record.summary.startswith("Una delle principali PMI industriali della Lituania")
    assert "L’obiettivo è prevenire" in record.summary  # entities decoded
    assert record.links == ("https://forms.microsoft.com/e/JA5EQsfTLY",)
    # Past its expiry it is closed.
    later = datetime(2027, 8, 20, 9, 0, tzinfo=ROME)
    assert extract_proposal(oi_real_fragments(), OI_2024_URL, later).status == CallStatus.CLOSED


def test_the_real_card_gives_the_proposal_it_links() -> None:
    body = (OPENINNOVATION / "openinnovation_collab2090_related_card_FRAGMENT.html").read_bytes()
    [card] = parse_proposals(body, OI_2024_URL, NOW)
    assert (card.id, card.type, card.expires, card.een_id) == (
        "2090",
        "R&D Partner search",
        "15 settembre 2026",
        "RDRPT20260714038",
    )


def test_bare_links_still_list_proposals_and_a_page_without_a_title_is_refused() -> None:
    page = (
        b'<html><body><a href="/it/collaborations/collaboration-proposals/77/x" title="T">T</a></body></html>'
    )
    [card] = parse_proposals(page, "https://oi.example/it/x", NOW)
    assert (card.id, card.title, card.type) == ("77", "T", "")
    with pytest.raises(ShapeError):
        extract_proposal(
            b"<html><body></body></html>",
            "https://oi.example/en/collaborations/collaboration-proposals/77/x",
            NOW,
        )


def test_a_call_page_without_a_bandi_e_servizi_link_is_not_a_call() -> None:
    url = "https://oi.example/it/bandi-e-sperimentazioni/open-challenge-materiali-circolari"
    assert (
        extract_call_page((OPENINNOVATION / "call_open_challenge_synthetic.html").read_bytes(), url, NOW)
        is None
    )
