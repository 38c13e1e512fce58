"""The matching vocabulary: topics, beneficiary types, sectors and places, shipped as package data.

``notifier/matching/data/topics.toml`` holds the topics (Italian and English labels and terms), the
beneficiary types with the words calls use for them, the sectors a call may be about and the
headings of "who can apply" sections; ``notifier/matching/data/places.toml`` the Italian regions,
provinces and chamber-of-commerce areas. Both are read once, validated (unique ids, every term
compilable) and compiled into :class:`~notifier.matching.text.PhraseIndex` objects on first use.

Profiles store topic and beneficiary *ids*; labels may be reworded freely, ids may not.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from typing import Any, Literal, cast

from notifier.matching.text import PhraseIndex, Term, TermError, compile_term, find_in

Lang = Literal["it", "en"]
Strength = Literal["anchor", "term", "weak"]


class VocabularyError(ValueError):
    """The vocabulary data is malformed; the message names the entry."""


class _Labelled:
    """The Italian and English labels of a vocabulary entry, and the one rule choosing between them."""

    __slots__ = ()
    label_it: str
    label_en: str

    def label(self, lang: str) -> str:
        return self.label_en if lang == "en" else self.label_it


@dataclass(frozen=True, slots=True)
class Topic(_Labelled):
    id: str
    kind: Literal["chain", "theme"]
    label_it: str
    label_en: str
    anchors: tuple[str, ...]
    terms: tuple[str, ...]
    weak: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Beneficiary(_Labelled):
    id: str
    label_it: str
    label_en: str
    admits: frozenset[str]
    cues: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ApplicantSector(_Labelled):
    id: str
    label_it: str
    label_en: str
    ateco: tuple[str, ...]
    cues: tuple[str, ...]
    #: Prefixes of the words by which a member says it belongs here ("artigian*"), for sectors
    #: no ATECO code tells apart.
    self_cues: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Sector(_Labelled):
    id: str
    label_it: str
    label_en: str
    cues: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Region:
    name: str
    aliases: tuple[str, ...]
    adjectives: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Province:
    code: str
    name: str
    region: str
    aliases: tuple[str, ...]
    adjectives: tuple[str, ...]
    ambiguous: bool


# Payloads of the compiled indexes (hashable tuples, compared by value).
TopicPayload = tuple[str, str, str]  # ("topic", topic id, strength) or ("neutral", "", "")
PlacePayload = tuple[
    str, str
]  # ("region"|"region-adj"|"province"|"province-adj", key), ("chamber", "MI,MB,LO") or ("area", "Puglia,…")


def _strings(entry: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> tuple[str, ...]:
    value = entry.get(key, [])
    if required and not value:
        raise VocabularyError(f"{where}: '{key}' is missing or empty")
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise VocabularyError(f"{where}: '{key}' must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise VocabularyError(f"{where}: '{key}' must be a non-empty string")
    return value.strip()


class Vocabulary:
    """Everything matching needs to know about words, built from the two TOML documents."""

    def __init__(self, topics_doc: Mapping[str, Any], places_doc: Mapping[str, Any]) -> None:
        #: Region names as sources write them → the canonical region (sources repeat a few).
        self._regions_named: dict[str, str | None] = {}
        self.topics: dict[str, Topic] = {}
        for i, entry in enumerate(topics_doc.get("topic", []), 1):
            where = f"topic #{i}"
            topic_id = _text(entry, "id", where)
            where = f"topic {topic_id!r}"
            kind = entry.get("kind")
            if kind not in ("chain", "theme"):
                raise VocabularyError(f"{where}: kind must be 'chain' or 'theme'")
            anchors = _strings(entry, "anchors_it", where) + _strings(entry, "anchors_en", where)
            terms = _strings(entry, "terms_it", where) + _strings(entry, "terms_en", where)
            weak = _strings(entry, "weak_it", where) + _strings(entry, "weak_en", where)
            if not anchors and not terms:
                raise VocabularyError(f"{where}: no terms")
            if topic_id in self.topics:
                raise VocabularyError(f"topic {topic_id!r} is defined twice")
            self.topics[topic_id] = Topic(
                topic_id,
                kind,
                _text(entry, "label_it", where),
                _text(entry, "label_en", where),
                anchors,
                terms,
                weak,
            )
        chain = topics_doc.get("chain", {})
        self.chain_anchors = _strings(chain, "anchors", "[chain]", required=True)
        self.neutral = _strings(topics_doc.get("neutral", {}), "phrases", "[neutral]")

        self.sectors: dict[str, Sector] = {}
        for i, entry in enumerate(topics_doc.get("sector", []), 1):
            where = f"sector #{i}"
            sid = _text(entry, "id", where)
            if sid in self.sectors:
                raise VocabularyError(f"sector {sid!r} is defined twice")
            self.sectors[sid] = Sector(
                sid, _text(entry, "label_it", where), _text(entry, "label_en", where),
                _strings(entry, "cues", where, required=True),
            )  # fmt: skip

        self.beneficiaries: dict[str, Beneficiary] = {}
        for i, entry in enumerate(topics_doc.get("beneficiary", []), 1):
            where = f"beneficiary #{i}"
            bid = _text(entry, "id", where)
            if bid in self.beneficiaries:
                raise VocabularyError(f"beneficiary {bid!r} is defined twice")
            self.beneficiaries[bid] = Beneficiary(
                bid, _text(entry, "label_it", where), _text(entry, "label_en", where),
                frozenset(_strings(entry, "admits", where, required=True)),
                _strings(entry, "cues_it", where) + _strings(entry, "cues_en", where),
            )  # fmt: skip
        self.applicant_cues: list[tuple[frozenset[str], tuple[str, ...], bool]] = [
            (
                frozenset(_strings(e, "admits", "[[applicant]]", required=True)),
                _strings(e, "cues", "[[applicant]]"),
                bool(e.get("specific", False)),
            )
            for e in topics_doc.get("applicant", [])
        ]
        known = set(self.beneficiaries)
        for admits in [b.admits for b in self.beneficiaries.values()] + [
            a for a, _c, _s in self.applicant_cues
        ]:
            if not admits <= known:
                raise VocabularyError(f"'admits' names unknown beneficiary types: {sorted(admits - known)}")

        self.applicant_sectors: dict[str, ApplicantSector] = {}
        for i, entry in enumerate(topics_doc.get("applicant_sector", []), 1):
            where = f"applicant_sector #{i}"
            aid = _text(entry, "id", where)
            if aid in self.applicant_sectors:
                raise VocabularyError(f"applicant sector {aid!r} is defined twice")
            self.applicant_sectors[aid] = ApplicantSector(
                aid, _text(entry, "label_it", where), _text(entry, "label_en", where),
                _strings(entry, "ateco", where),
                _strings(entry, "cues_it", where) + _strings(entry, "cues_en", where),
                tuple(c.rstrip("*").casefold() for c in _strings(entry, "self", where)),
            )  # fmt: skip
            if not self.applicant_sectors[aid].ateco and not self.applicant_sectors[aid].self_cues:
                raise VocabularyError(f"{where}: needs 'ateco' codes or 'self' words")

        purpose = topics_doc.get("purpose", {})
        self.thematic_cues = _strings(purpose, "thematic", "[purpose]", required=True)
        self.open_field_cues = _strings(purpose, "open_field", "[purpose]")
        self.career_cues = _strings(purpose, "research_careers", "[purpose]")
        self.for_firms_cues = _strings(purpose, "for_firms", "[purpose]")

        elig = topics_doc.get("eligibility", {})
        self.eligibility_headings = _strings(elig, "headings", "[eligibility]", required=True)
        self.eligibility_inline = _strings(elig, "inline", "[eligibility]")
        self.eligibility_stops = _strings(elig, "stops", "[eligibility]")
        self.open_sector_cues = _strings(elig, "open_sectors", "[eligibility]")
        self.section_tokens = int(elig.get("section_tokens", 80))
        self.inline_tokens = int(elig.get("inline_tokens", 25))

        self.regions: dict[str, Region] = {}
        for i, entry in enumerate(places_doc.get("region", []), 1):
            where = f"region #{i}"
            name = _text(entry, "name", where)
            self.regions[name] = Region(
                name, _strings(entry, "aliases", where), _strings(entry, "adjectives", where)
            )
        self.provinces: dict[str, Province] = {}
        for i, entry in enumerate(places_doc.get("province", []), 1):
            where = f"province #{i}"
            code = _text(entry, "code", where).upper()
            region = _text(entry, "region", where)
            if region not in self.regions:
                raise VocabularyError(f"province {code}: unknown region {region!r}")
            if code in self.provinces:
                raise VocabularyError(f"province {code} is defined twice")
            self.provinces[code] = Province(
                code, _text(entry, "name", where), region, _strings(entry, "aliases", where),
                _strings(entry, "adjectives", where), bool(entry.get("ambiguous", False)),
            )  # fmt: skip
        self.chambers: list[tuple[str, tuple[str, ...]]] = []
        for i, entry in enumerate(places_doc.get("chamber", []), 1):
            where = f"chamber #{i}"
            codes = tuple(c.upper() for c in _strings(entry, "provinces", where, required=True))
            unknown = [c for c in codes if c not in self.provinces]
            if unknown:
                raise VocabularyError(f"{where}: unknown provinces {unknown}")
            self.chambers.append((_text(entry, "name", where), codes))
        #: Areas made of whole regions ("Mezzogiorno"): name → (aliases, regions).
        self.areas: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
        for i, entry in enumerate(places_doc.get("area", []), 1):
            where = f"area #{i}"
            regions = _strings(entry, "regions", where, required=True)
            unknown = [r for r in regions if r not in self.regions]
            if unknown:
                raise VocabularyError(f"{where}: unknown regions {unknown}")
            self.areas.append((_strings(entry, "aliases", where, required=True), regions))
        # Every index is built now, so a bad term fails at load time, not at the first match.
        for index in (
            self.topic_index, self.anchor_index, self.sector_index, self.applicant_index,
            self.heading_index, self.place_index, self.purpose_index,
        ):  # fmt: skip
            assert len(index) > 0

    # --- lookups ------------------------------------------------------------------------------

    def topic_label(self, topic_id: str, lang: str) -> str:
        topic = self.topics.get(topic_id)
        return topic.label(lang) if topic else topic_id

    def region_named(self, text: str) -> str | None:
        """The canonical region for a name as sources write it ("Trentino-Alto Adige/Südtirol")."""
        if text in self._regions_named:
            return self._regions_named[text]
        hits = self._places(text, "region")
        if len(self._regions_named) > 10_000:
            self._regions_named.clear()
        found = self._regions_named[text] = hits[0] if hits else None
        return found

    def province_named(self, text: str) -> str | None:
        """The province code for a code ("BG") or a name ("Bergamo", "Monza e Brianza")."""
        value = text.strip()
        if value.upper() in self.provinces:
            return value.upper()
        hits = self._places(value, "province")
        return hits[0] if hits else None

    def _places(self, text: str, kind: str) -> list[str]:
        """The keys of the places of ``kind`` ("region", "province") named in ``text``."""
        payloads = [cast(PlacePayload, p) for p, _s in find_in(self.place_index, text)]
        return [key for k, key in payloads if k == kind]

    def provinces_of(self, region: str) -> frozenset[str]:
        return frozenset(p.code for p in self.provinces.values() if p.region == region)

    # --- compiled indexes ---------------------------------------------------------------------

    @cached_property
    def topic_index(self) -> PhraseIndex:
        index = PhraseIndex()
        for topic in self.topics.values():
            for strength, terms in (("anchor", topic.anchors), ("term", topic.terms), ("weak", topic.weak)):
                for term in terms:
                    index.add(_compile(term, f"topic {topic.id}"), ("topic", topic.id, strength))
        for phrase in self.neutral:
            index.add(_compile(phrase, "[neutral]"), ("neutral", "", ""))
        return index

    @cached_property
    def anchor_index(self) -> PhraseIndex:
        index = PhraseIndex()
        for term in self.chain_anchors:
            index.add(_compile(term, "[chain]"), "chain")
        return index

    @cached_property
    def sector_index(self) -> PhraseIndex:
        index = PhraseIndex()
        for sector in self.sectors.values():
            for cue in sector.cues:
                index.add(_compile(cue, f"sector {sector.id}"), sector.id)
        return index

    @cached_property
    def applicant_index(self) -> PhraseIndex:
        """Payloads: ("admits", "micro,pmi,...", beneficiary id, "*" for a specific [[applicant]]
        or "" for words naming firms in general), ("sector", id, "") and ("open-sector", "", "")."""
        index = PhraseIndex()
        for b in self.beneficiaries.values():
            for cue in b.cues:
                index.add(_compile(cue, f"beneficiary {b.id}"), ("admits", ",".join(sorted(b.admits)), b.id))
        for admits, cues, specific in self.applicant_cues:
            for cue in cues:
                index.add(
                    _compile(cue, "[[applicant]]"),
                    ("admits", ",".join(sorted(admits)), "*" if specific else ""),
                )
        for s in self.applicant_sectors.values():
            for cue in s.cues:
                index.add(_compile(cue, f"applicant_sector {s.id}"), ("sector", s.id, ""))
        for cue in self.open_sector_cues:
            index.add(_compile(cue, "[eligibility] open_sectors"), ("open-sector", "", ""))
        return index

    @cached_property
    def heading_index(self) -> PhraseIndex:
        index = PhraseIndex()
        for kind, terms in (
            ("heading", self.eligibility_headings),
            ("inline", self.eligibility_inline),
            ("stop", self.eligibility_stops),
        ):
            for term in terms:
                index.add(_compile(term, "[eligibility]"), kind)
        return index

    @cached_property
    def purpose_index(self) -> PhraseIndex:
        """Payloads "thematic" (a thematic R&I work programme), "open" (an instrument open to
        any field), "firms" (an instrument open to any field that funds firms too) and "careers"
        (research careers: open to any field, for research bodies)."""
        index = PhraseIndex()
        for kind, cues in (
            ("thematic", self.thematic_cues),
            ("open", self.open_field_cues),
            ("careers", self.career_cues),
            ("firms", self.for_firms_cues),
        ):
            for cue in cues:
                index.add(_compile(cue, "[purpose]"), kind)
        return index

    @cached_property
    def place_index(self) -> PhraseIndex:
        index = PhraseIndex()
        for region in self.regions.values():
            for name in {region.name, *region.aliases}:
                index.add(_compile(name, f"region {region.name}"), ("region", region.name))
            for adj in region.adjectives:
                index.add(_compile(adj, f"region {region.name}"), ("region-adj", region.name))
        for p in self.provinces.values():
            for name in {p.name, *p.aliases}:
                index.add(_compile(name, f"province {p.code}"), ("province", p.code))
            for adj in p.adjectives:
                index.add(_compile(adj, f"province {p.code}"), ("province-adj", p.code))
        for name, codes in self.chambers:
            index.add(_compile(name, f"chamber {name}"), ("chamber", ",".join(codes)))
        for aliases, regions in self.areas:
            for alias in aliases:
                index.add(_compile(alias, f"area {alias}"), ("area", ",".join(regions)))
        return index


def _compile(term: str, where: str) -> Term:
    try:
        return compile_term(term)
    except TermError as exc:
        raise VocabularyError(f"{where}: {exc}") from exc


def _read(name: str) -> dict[str, Any]:
    data = resources.files("notifier.matching").joinpath("data", name).read_bytes()
    return tomllib.loads(data.decode("utf-8"))


@lru_cache(maxsize=1)
def default_vocabulary() -> Vocabulary:
    """The vocabulary shipped with the package (read and compiled once per process)."""
    return Vocabulary(_read("topics.toml"), _read("places.toml"))
