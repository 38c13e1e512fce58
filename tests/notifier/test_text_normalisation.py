"""Text normalisation for matching: folding, light stemming, compounds, phrases, prefixes."""

from __future__ import annotations

import pytest

from notifier.matching.text import (
    BOUNDARY,
    PhraseIndex,
    TermError,
    analyse,
    compile_term,
    find_in,
    fold,
    stem,
    tokens,
)


def stems(text: str) -> list[str]:
    return [t.stem for t in tokens(text)]


def test_case_and_accents_are_folded() -> None:
    assert fold("Attività SOSTENIBILITÀ perché Südtirol") == "attivita sostenibilita perche sudtirol"


@pytest.mark.parametrize(
    ("words", "same"),
    [
        (["imballaggio", "imballaggi"], True),
        (["cosmetici", "cosmetico", "cosmetica", "cosmetics", "cosmetic"], True),
        (["energia", "energie", "energy"], True),
        (["tecnologia", "tecnologie", "technologies", "technology"], False),  # it/en roots differ
        (["technologies", "technology"], True),
        (["bianchi", "bianco", "bianche"], True),  # -chi/-che keep the hard sound
        (["flacone", "flaconi"], True),
        (["process", "processes"], True),  # "-ss" is not a plural ending, "-es" is
        (["business", "businesses"], True),
    ],
)
def test_light_stemming(words: list[str], same: bool) -> None:
    assert (len({stem(fold(w)) for w in words}) == 1) is same


def test_short_words_and_numbers_are_kept() -> None:
    assert stem("pmi") == "pmi"
    assert stem("2026") == "2026"


def test_stop_words_and_elisions_are_dropped() -> None:
    assert stems("dell'impresa e delle imprese") == ["impres", "impres"]
    assert stems("the research and the innovation") == ["research", "innovation"]


def test_negations_are_kept_for_the_rules() -> None:
    assert "non" in stems("Non sono ammesse imprese")
    assert "not" in stems("SMEs are not eligible")


def test_compounds_numbers_and_boundaries() -> None:
    words = [t.word for t in tokens("Industria 4.0, e-commerce e R&S; make-up. Cremona-Mantova-Pavia")]
    assert words == [
        "industria",
        "4.0",
        "ecommerce",
        "rs",
        BOUNDARY,
        "makeup",
        BOUNDARY,
        "cremona",
        "mantova",
        "pavia",
    ]


def test_markup_and_entities_are_cleaned_and_offsets_point_into_the_clean_text() -> None:
    text, toks = analyse("<p>Chi pu&ograve; partecipare: <b>PMI</b> lombarde</p>")
    assert "<" not in text and "può" in text
    # "Chi" is a stop word; what is kept points at the original spelling.
    assert [text[t.start : t.end] for t in toks if t.stem != BOUNDARY] == [
        "può",
        "partecipare",
        "PMI",
        "lombarde",
    ]


def test_a_description_is_read_up_to_a_limit() -> None:
    assert len(tokens("parola " * 1000, limit=70)) == 10


def test_phrases_match_across_stop_words_but_not_across_sentences() -> None:
    index = PhraseIndex()
    index.add(compile_term("piccole e medie imprese"), "pmi")
    index.add(compile_term("economia circolare"), "circ")
    assert find_in(index, "alle piccole medie imprese lombarde") == [("pmi", "piccole medie imprese")]
    assert find_in(index, "Per l'economia. Circolare n. 3") == []


def test_prefix_terms() -> None:
    index = PhraseIndex()
    index.add(compile_term("ricicl*"), "r")
    index.add(compile_term("plastica ricicl*"), "pr")
    found = find_in(index, "Plastica riciclata e materiali riciclabili")
    assert found == [("pr", "Plastica riciclata"), ("r", "riciclabili")]
    with pytest.raises(TermError):
        compile_term("ri*")


def test_leftmost_longest_wins_and_payloads_of_one_term_are_kept() -> None:
    index = PhraseIndex()
    index.add(compile_term("credito"), "credit")
    index.add(compile_term("credito d'imposta"), "neutral")
    index.add(compile_term("fiere"), "fairs")
    index.add(compile_term("fiera"), "promo")  # same stem, another payload
    assert find_in(index, "un credito d'imposta per le fiere") == [
        ("neutral", "credito d'imposta"),
        ("fairs", "fiere"),
        ("promo", "fiere"),
    ]
    assert len(index.find_all(tokens("credito d'imposta"))) == 2  # overlapping hits, unresolved


def test_a_term_with_nothing_to_match_is_refused() -> None:
    with pytest.raises(TermError):
        compile_term("di e la")
