"""The shipped vocabulary: the agreed ids, labels in both languages, data errors reported."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

import pytest

from notifier.matching import topics
from notifier.matching.vocabulary import Vocabulary, VocabularyError, default_vocabulary

TOPICS = {
    "ricerca-innovazione", "sostenibilita-circolare", "packaging", "energia", "digitale",
    "internazionalizzazione", "fiere-promozione", "formazione-lavoro", "investimenti-produttivi",
    "credito-liquidita", "startup", "ingredienti-biotech", "qualita-regolatorio",
}  # fmt: skip
BENEFICIARIES = {
    "cluster",
    "intermediario",
    "micro",
    "pmi",
    "grande-impresa",
    "startup",
    "ricerca",
    "ente-pubblico",
    "terzo-settore",
    "persona",
}


def _doc(name: str) -> dict[str, Any]:
    return tomllib.loads(resources.files("notifier.matching").joinpath("data", name).read_text("utf-8"))


def test_the_agreed_ids_are_there_with_both_labels() -> None:
    vocab = default_vocabulary()
    assert set(vocab.topics) >= TOPICS
    assert set(vocab.beneficiaries) == BENEFICIARIES
    for topic in vocab.topics.values():
        assert topic.label("it") and topic.label("en")
        assert topic.anchors or topic.terms
    assert topics.topic_label("packaging", "en") == "Packaging"
    assert topics.topic_label("no-such-topic") == "no-such-topic"
    assert set(topics.beneficiary_ids()) == BENEFICIARIES


def test_places_cover_every_region_and_lombardy_province() -> None:
    vocab = default_vocabulary()
    assert len(vocab.regions) == 20
    assert vocab.provinces_of("Lombardia") == {
        "BG",
        "BS",
        "CO",
        "CR",
        "LC",
        "LO",
        "MN",
        "MI",
        "MB",
        "PV",
        "SO",
        "VA",
    }
    assert vocab.region_named("Valle d'Aosta/Vallée d'Aoste") == "Valle d'Aosta"
    assert vocab.province_named("Monza e Brianza") == "MB"
    assert vocab.province_named("bs") == "BS"
    assert vocab.province_named("Atlantide") is None


def test_a_duplicate_topic_is_reported() -> None:
    doc = _doc("topics.toml")
    doc["topic"].append(dict(doc["topic"][0]))
    with pytest.raises(VocabularyError, match="defined twice"):
        Vocabulary(doc, _doc("places.toml"))


def test_an_unmatchable_term_is_reported_with_its_topic() -> None:
    doc = _doc("topics.toml")
    doc["topic"][0] = {**doc["topic"][0], "terms_it": ["di la"]}
    with pytest.raises(VocabularyError, match="ricerca-innovazione"):
        Vocabulary(doc, _doc("places.toml"))


def test_a_province_of_an_unknown_region_is_reported() -> None:
    places = _doc("places.toml")
    places["province"].append({"code": "XX", "name": "Nowhere", "region": "Atlantide"})
    with pytest.raises(VocabularyError, match="unknown region"):
        Vocabulary(_doc("topics.toml"), places)
