"""Matching calls to member profiles, with the reasons of every match.

A call matches a profile when

1. members should hear of it at all: not closed, final deadline not passed (a call announced
   but not open yet does match: members want to know before a "sportello" opens);
2. no **hard rule** excludes it (:meth:`Matcher._rule`, each rule written once): the profile's
   sources, minimum budget and exclusion words (in the title and tags only), and the
   eligibility read by :mod:`notifier.matching.eligibility`: territory, applicant type,
   applicant sector, ATECO codes;
3. its **score** reaches ``MatchingConfig.threshold``. The call's title, summary, tags and
   description are normalised (:mod:`notifier.matching.text`) and searched for the terms of the
   profile's topics (:mod:`notifier.matching.vocabulary`) and for the member's own keywords.
   Each distinct term adds the weight of the best field it was found in (title 3, tags 2.5,
   summary 2, description 1; the programme's name 0: it says where the money comes from) and
   half the weight of every further field; weak terms count a fraction, the member's keywords a
   multiple; a topic adds at most ``topic_cap``, the description at most ``description_cap``.
   Three rules say what the call is *for* before its words count (RULES B2, B3 of the labelled
   set): ``purpose`` — when the title names a topic in strong words, a member none of whose
   topics it is gets no score from cross-cutting themes the summary mentions on the way;
   ``thematic`` — a topic of a thematic EU research programme counts only through the chain's
   own terms and the member's keywords; ``other-sector`` — likewise for a call whose title is
   about another sector;
4. or the profile speaks for the cluster (applicant type ``cluster``: staff and admins) and a
   member got the call (RULES B5).

Every match carries :class:`Reason` objects, one per topic or keyword, three at most;
:meth:`Matcher.explain` / :func:`explain` say for one call and one profile why it matched or
which rule (:data:`RULES`) excluded it. :meth:`Matcher.match` is the fast path of the same
computation: the same rule methods, and a test checks on the relevance sets that both agree.

Speed: a call's fields are tokenised once and each field is read once for every phrase index
searched in it, the vocabulary's and the members' keywords and exclusions together
(:func:`~notifier.matching.text.search`). Profiles with the same topics form a group; a call's
topic scores are added per group in arrays (numpy) in the order :meth:`Matcher._explain_own`
adds them, each hard rule is asked once per distinct value of what it reads (territory, types,
sectors, ATECO codes, sources and budget), the profiles of the groups that reach the threshold
are picked out as arrays, and only profiles whose own keywords were found are scored one by one.
The collector is paused while a call is matched (:meth:`Matcher.match`).
``benchmarks/matching.py`` prints the time for 5,000 profiles against 2,000 calls beside an
estimate of the pair-by-pair time; ``tests/notifier/test_matching_fast_path.py`` checks that
both give the same matches, scores and reasons.

A :class:`Matcher` holds no per-call state and may be shared; the phrase indexes memoise words
in plain dicts (safe under the GIL).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from itertools import repeat
from operator import itemgetter
from typing import Any, NamedTuple, Protocol, cast

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from notifier import catalogue
from notifier.config import MatchingConfig
from notifier.matching.eligibility import (
    COMPANY_TYPES,
    FIELDS,
    CallFacts,
    ateco_agrees,
    call_facts,
    describe_territory,
    member_sectors,
    restricted_to,
    said,
    territory_ok,
)
from notifier.matching.profiles import Profile, member_profile
from notifier.matching.text import PhraseIndex, TermError, compile_term, find_in
from notifier.matching.vocabulary import Vocabulary, default_vocabulary
from storage.calls import CallView
from storage.db import Database

log = logging.getLogger(__name__)

#: Where a term was found, said in words (catalogue ``field.*``): title, summary, …
FIELD_NAMES = ("title", "summary", "description", "keywords", "programme")


def field_words(name: str, lang: str) -> str:
    """``nel titolo`` / ``in the title``; an unknown field as ``in <name>``."""
    if name in FIELD_NAMES:
        return catalogue.text(lang, f"field.{name}")
    return catalogue.text(lang, "field.other", name=name)


#: The rules a match can be refused by, in the order they are checked.
RULES = (
    "closed",
    "deadline-passed",
    "source",
    "budget",
    "exclusion",
    "territory",
    "beneficiary",
    "applicant-sector",
    "ateco",
    "thematic",
    "purpose",
    "other-sector",
    "threshold",
)
_MAX_TERM_CHARS = 60
_weight = itemgetter(0)
_MISSING: Any = object()
_reason = itemgetter(1)
_member = itemgetter(0)
_score = itemgetter(1)


class Reason(NamedTuple):
    """Why a call matched: ``kind`` is ``topic`` or ``keyword``; ``term`` what the call says;
    ``field`` where; ``topic`` the topic id (None for a member's keyword). For the cluster's
    staff, ``members``: ``term`` is how many members the call matched.

    A named tuple, like :class:`Match` and :class:`~notifier.matching.text.Token`: a run makes
    many, and tuples are built faster than frozen dataclasses."""

    kind: str
    term: str
    field: str
    topic: str | None = None

    def line(self, lang: str = "it") -> str:
        """One line for an alert: ``argomento Packaging: «imballaggi» nel titolo``."""
        term = " ".join(self.term.split())
        if len(term) > _MAX_TERM_CHARS:
            term = term[: _MAX_TERM_CHARS - 1] + "…"
        if self.kind == "members":
            return catalogue.text(lang, "reason.member" if term == "1" else "reason.members", n=term)
        where = field_words(self.field, lang)
        quoted = catalogue.text(lang, "format.quoted", words=term)
        if self.kind == "topic" and self.topic:
            label = default_vocabulary().topic_label(self.topic, lang)
            return catalogue.text(lang, "reason.topic", topic=label, words=quoted, where=where)
        return catalogue.text(lang, "reason.keyword", words=quoted, where=where)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "term": self.term, "field": self.field, "topic": self.topic}


#: A rule's refusal: ``(rule, detail_it, detail_en)``.
Refusal = tuple[str, str, str]


def both(key: str, **values: str | tuple[str, str]) -> tuple[str, str]:
    """A refusal's detail, the catalogue text ``explain.<key>`` in Italian and in English; a value
    given as an ``(it, en)`` pair is said in each language."""

    def said_in(i: int) -> dict[str, str]:
        return {name: (v[i] if isinstance(v, tuple) else v) for name, v in values.items()}

    return catalogue.text("it", f"explain.{key}", **said_in(0)), catalogue.text(
        "en", f"explain.{key}", **said_in(1)
    )


class Match(NamedTuple):
    """One profile a call matches (a named tuple: a run makes many of them)."""

    member_id: int
    score: float
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why one call matched one profile, or which rule excluded it (``excluded_by``, one of
    :data:`RULES`). ``score`` and ``reasons`` are given even for an excluded call."""

    matched: bool
    score: float
    reasons: tuple[Reason, ...]
    excluded_by: str | None
    detail_it: str = ""
    detail_en: str = ""
    #: What the call was read to say (territory, applicants, sector), for tuning a profile.
    notes: tuple[str, ...] = ()

    def detail(self, lang: str = "it") -> str:
        return self.detail_en if lang == "en" else self.detail_it

    def lines(self, lang: str = "it") -> list[str]:
        out = [r.line(lang) for r in self.reasons]
        if self.excluded_by:
            out.append(
                catalogue.text(lang, "explain.excluded_by", rule=self.excluded_by, detail=self.detail(lang))
            )
        return out


# --- compiled profiles ------------------------------------------------------------------------


@dataclass(slots=True)
class _Compiled:
    member_id: int
    profile: Profile
    topics: frozenset[str]
    keyword_ids: tuple[int, ...]
    exclude_ids: tuple[int, ...]
    sources: frozenset[str]
    min_budget: Decimal | None
    types: frozenset[str]
    sectors: frozenset[str]
    region: str
    province: str | None
    ateco: tuple[str, ...]


@dataclass(slots=True)
class _Part:
    """Score evidence kept apart by field: the description's share is capped when totalled."""

    text: float = 0.0
    description: float = 0.0
    evidence: list[tuple[float, Reason]] = field(default_factory=list)

    def add(self, weight: float, reason: Reason) -> None:
        if reason.field == "description":
            self.description += weight
        else:
            self.text += weight
        self.evidence.append((weight, reason))

    def merge(self, other: _Part) -> None:
        self.text += other.text
        self.description += other.description
        self.evidence.extend(other.evidence)


def _compile_terms(
    terms: Iterable[str], registry: dict[str, int], index: PhraseIndex, owner: int
) -> tuple[int, ...]:
    ids: list[int] = []
    for term in terms:
        key = term.casefold()
        term_id = registry.get(key)
        if term_id is None:
            try:
                compiled = compile_term(term)
            except TermError:
                log.warning("member %s: cannot match %r; ignored", owner, term)
                continue
            term_id = len(registry)
            registry[key] = term_id
            index.add(compiled, term_id)
        ids.append(term_id)
    return tuple(dict.fromkeys(ids))


def best_reasons(evidence: Iterable[tuple[float, Reason]], limit: int) -> list[tuple[float, Reason]]:
    """The strongest evidence, one item per subject (a topic once, with its best words; each
    keyword once), at most ``limit``: what a person reads in "Perché"."""
    out: list[tuple[float, Reason]] = []
    seen: set[tuple[str, str]] = set()
    for weight, reason in sorted(evidence, key=_weight, reverse=True):
        subject = (
            reason.kind,
            reason.topic if reason.kind == "topic" and reason.topic else reason.term.casefold(),
        )
        if subject in seen:
            continue
        seen.add(subject)
        out.append((weight, reason))
        if len(out) >= limit:
            break
    return out


def applicant_types(profile: Profile) -> frozenset[str]:
    """The applicant types a member counts as: those of its profile (any company when it names
    none); a PMI of unknown size may be a micro-enterprise, so micro-only calls reach it too
    (RULES A1, A4)."""
    types = frozenset(profile.beneficiaries) or COMPANY_TYPES
    if "pmi" in types:
        types |= {"micro"}
    return types


def _alike(
    profiles: Sequence[_Compiled], read: Callable[[_Compiled], Hashable]
) -> list[tuple[int, npt.NDArray[np.intp]]]:
    """Profiles grouped by what ``read`` gives: ``(first profile, every profile)`` per value."""
    by_value: dict[Hashable, list[int]] = {}
    for n, c in enumerate(profiles):
        by_value.setdefault(read(c), []).append(n)
    return [(members[0], np.array(members, dtype=np.intp)) for members in by_value.values()]


class Matcher:
    """Profiles compiled for matching many calls (build once, call :meth:`match` per call)."""

    def __init__(
        self,
        profiles: Sequence[tuple[int, Profile]],
        *,
        config: MatchingConfig | None = None,
        vocabulary: Vocabulary | None = None,
    ) -> None:
        self.config = config or MatchingConfig()
        self.vocab = vocabulary or default_vocabulary()
        self.weights = self.config.field_weights.model_dump()
        region = self.vocab.region_named(self.config.region)
        if region is None:
            raise ValueError(f"matching: unknown region {self.config.region!r}")
        self.default_region = region
        self._keyword_index = PhraseIndex()
        self._exclude_index = PhraseIndex()
        self._keyword_terms: dict[str, int] = {}
        self._exclude_terms: dict[str, int] = {}
        self.profiles: list[_Compiled] = []
        for member_id, profile in profiles:
            types = applicant_types(profile)
            c = _Compiled(
                member_id=member_id,
                profile=profile,
                topics=frozenset(t for t in profile.topics if t in self.vocab.topics),
                keyword_ids=_compile_terms(
                    profile.keywords, self._keyword_terms, self._keyword_index, member_id
                ),
                exclude_ids=_compile_terms(
                    profile.exclude, self._exclude_terms, self._exclude_index, member_id
                ),
                sources=frozenset(profile.sources),
                min_budget=Decimal(profile.min_budget_eur) if profile.min_budget_eur else None,
                types=types,
                sectors=member_sectors(profile.ateco, profile.keywords, self.vocab),
                region=profile.member_region(self.default_region),
                province=profile.province,
                ateco=tuple(profile.ateco),
            )
            self.profiles.append(c)
        # Staff and admins speak for the cluster: a call reserved to the sector of any member
        # (artisans, packaging makers by ATECO) is theirs to know of too (RULES B5).
        every_sector = frozenset().union(*(c.sectors for c in self.profiles))
        for c in self.profiles:
            if "cluster" in c.types:
                c.sectors = every_sector
        #: The eligibility rules in the order :meth:`_eligibility` asks them. Each reads one
        #: dimension of a profile (territory, applicant types, sectors, ATECO codes), and the
        #: profile's own filters read its sources and minimum budget: profiles that share what a
        #: rule reads share its verdict, so the fast path asks each rule once per distinct value,
        #: of one profile that stands for the others (``(that profile, all of them)``).
        self._rules = (self._territory_rule, self._applicant_rule, self._sector_rule, self._ateco_rule)
        readers: tuple[Callable[[_Compiled], Hashable], ...] = (
            lambda c: (c.region, c.province),
            lambda c: c.types,
            lambda c: c.sectors,
            lambda c: c.ateco,
        )
        self._rule_values = [_alike(self.profiles, read) for read in readers]
        self._filter_values = [
            (n, members)
            for n, members in _alike(self.profiles, lambda c: (c.sources, c.min_budget))
            if self.profiles[n].sources or self.profiles[n].min_budget is not None
        ]
        # Profiles with the same topics share their topic score: one addition per group.
        groups: dict[frozenset[str], int] = {}
        self._group_members: list[list[int]] = []
        self._group_topics: list[frozenset[str]] = []
        self._profile_group: list[int] = []
        for n, c in enumerate(self.profiles):
            g = groups.get(c.topics)
            if g is None:
                g = groups[c.topics] = len(self._group_members)
                self._group_members.append([])
                self._group_topics.append(c.topics)
            self._group_members[g].append(n)
            self._profile_group.append(g)
        self._groups_of_topic: dict[str, list[int]] = {}
        for g, topics in enumerate(self._group_topics):
            for t in topics:
                self._groups_of_topic.setdefault(t, []).append(g)
        # The fast path's arrays: which groups have each topic, each profile's group and member
        # id; a topic set as bits (vocabulary order) names a group's share of a call's topics.
        n_groups = len(self._group_topics)
        self._topic_bit = {t: 1 << i for i, t in enumerate(self.vocab.topics)}
        self._group_bits = [sum(self._topic_bit[t] for t in topics) for topics in self._group_topics]
        self._group_bits_array = np.array(
            self._group_bits, dtype=np.int64 if len(self._topic_bit) < 63 else np.object_
        )
        self._topic_groups = {
            t: np.isin(np.arange(n_groups), groups) for t, groups in self._groups_of_topic.items()
        }
        self._profile_groups = np.array(self._profile_group, dtype=np.intp)
        self._member_ids = np.array([c.member_id for c in self.profiles], dtype=np.int64)
        #: Keywords that are the name of a programme or instrument ("Horizon Europe", "EIC").
        self._programme_keywords = {
            term_id
            for term, term_id in self._keyword_terms.items()
            if any(surface.casefold() == term for _p, surface in find_in(self.vocab.purpose_index, term))
        }
        #: The members' keywords and exclusions, read in the same pass over a field as the
        #: vocabulary (the fields :meth:`_term_hits` searches).
        self._field_indexes: dict[str, tuple[PhraseIndex, ...]] = {}
        for index, fields in (
            (self._keyword_index, FIELDS),
            (self._exclude_index, self.config.exclusion_fields),
        ):
            for name in fields:
                if len(index) and self.weights[name]:
                    self._field_indexes[name] = (*self._field_indexes.get(name, ()), index)
        #: Profiles that speak for the cluster: they hear of every call a member hears of (B5).
        self._staff = [n for n, c in enumerate(self.profiles) if "cluster" in c.types]
        self._profiles_of_keyword: dict[int, list[int]] = {}
        profiles_of_exclusion: dict[int, list[int]] = {}
        for n, c in enumerate(self.profiles):
            for k in c.keyword_ids:
                self._profiles_of_keyword.setdefault(k, []).append(n)
            for k in c.exclude_ids:
                profiles_of_exclusion.setdefault(k, []).append(n)
        self._profiles_of_exclusion = {
            k: np.array(members, dtype=np.intp) for k, members in profiles_of_exclusion.items()
        }

    # --- per call ---------------------------------------------------------------------------

    def facts(self, call: CallView, *, now: datetime) -> CallFacts:
        return call_facts(
            call,
            now=now,
            vocab=self.vocab,
            weights=self.weights,
            weak_weight=self.config.weak_term_weight,
            max_description=self.config.max_description_chars,
            repeat_weight=self.config.repeat_weight,
            indexes=self._field_indexes,
        )

    def _topic_scores(self, facts: CallFacts) -> tuple[dict[str, _Part], set[str], dict[str, str]]:
        """Topic → its capped score (split into text and description parts) and reasons, after
        the other-sector and thematic rules; the topics those rules silenced (they would have
        scored); and the call's purpose: topic → the strong words its title says it with."""
        off = self.config.sector_rule and (facts.other_sector is not None or facts.thematic is not None)
        cap = self.config.topic_cap
        out: dict[str, _Part] = {}
        silenced: set[str] = set()
        for topic, evidence in facts.topics.items():
            kind = self.vocab.topics[topic].kind
            part = _Part()
            for ev in evidence:
                if off and (kind == "theme" or ev.strength != "anchor"):
                    silenced.add(topic)
                    continue
                part.add(ev.weight, Reason("topic", ev.surface, ev.field, topic))
            if part.text + part.description > 0:
                part.text = min(part.text, cap)
                part.description = min(part.description, cap - part.text)
                out[topic] = part
        purpose: dict[str, str] = {}
        if self.config.purpose_rule:
            for topic in out:
                for ev in facts.topics[topic]:
                    if ev.field == "title" and ev.strength != "weak":
                        purpose.setdefault(topic, ev.surface)
        return out, silenced - set(out), purpose

    def _keyword_hits(self, facts: CallFacts) -> dict[int, tuple[float, Reason]]:
        """The members' keywords found in the call. In a thematic research topic a keyword that
        names a programme ("Horizon Europe") says nothing of the domain (RULES B3): left out."""
        hits = self._term_hits(facts, self._keyword_index, FIELDS)
        if facts.thematic is not None and self.config.sector_rule and self._programme_keywords:
            return {k: v for k, v in hits.items() if k not in self._programme_keywords}
        return hits

    def _term_hits(
        self, facts: CallFacts, index: PhraseIndex, fields: Iterable[str]
    ) -> dict[int, tuple[float, Reason]]:
        """Member term id → (weight, reason) for keywords or exclusions: the best field's weight
        plus ``repeat_weight`` of every further field the term appears in."""
        per_term: dict[int, list[tuple[float, Reason]]] = {}
        if not len(index):
            return {}
        for name in fields:
            w = self.weights[name]
            if not w:
                continue
            f = facts.fields[name]
            seen: set[int] = set()
            for hit in index.find(f.tokens):
                term_id = cast(int, hit.payload)
                if term_id in seen:
                    continue
                seen.add(term_id)
                surface = f.text[f.tokens[hit.start].start : f.tokens[hit.end - 1].end]
                per_term.setdefault(term_id, []).append((w, Reason("keyword", surface, name)))
        out: dict[int, tuple[float, Reason]] = {}
        for term_id, found in per_term.items():
            found.sort(key=lambda e: -e[0])
            weight = found[0][0] + self.config.repeat_weight * sum(w for w, _ in found[1:])
            out[term_id] = (weight, found[0][1])
        return out

    def _total(self, text: float, description: float) -> float:
        return text + min(self.config.description_cap, description)

    def _rule(self, facts: CallFacts, c: _Compiled, call_source: str) -> Refusal | None:
        """The first hard rule (after availability and exclusions) that refuses the call to this
        profile: ``(rule, detail_it, detail_en)``; None when it passes. Each rule is written
        here once; the fast path (:meth:`_refused`) asks the same methods."""
        refusal = self._own_filters(c, call_source, facts.budget)
        if refusal is not None or not self.config.eligibility_rules:
            return refusal
        return self._eligibility(facts, c)

    def _eligibility(self, facts: CallFacts, c: _Compiled) -> Refusal | None:
        """The eligibility rules, in order: territory, applicant type, sector, ATECO codes."""
        for rule in self._rules:
            refusal = rule(facts, c)
            if refusal is not None:
                return refusal
        return None

    def _refused(self, facts: CallFacts, source: str) -> npt.NDArray[np.bool_]:
        """Per profile, whether a hard rule refuses it the call, whatever its score: its own
        filters, its exclusions, the eligibility rules (:meth:`_rule`'s rules, each asked once
        per distinct value of what it reads)."""
        refused = np.zeros(len(self.profiles), dtype=np.bool_)
        profiles = self.profiles
        budget = facts.budget
        for n, members in self._filter_values:
            if self._own_filters(profiles[n], source, budget) is not None:
                refused[members] = True
        if len(self._exclude_index):
            for term_id in self._term_hits(facts, self._exclude_index, self.config.exclusion_fields):
                excluded = self._profiles_of_exclusion.get(term_id)
                if excluded is not None:
                    refused[excluded] = True
        if self.config.eligibility_rules:
            for rule, values in zip(self._rules, self._rule_values, strict=True):
                for n, members in values:
                    if rule(facts, profiles[n]) is not None:
                        refused[members] = True
        return refused

    def _staff_reasons(self, members: int, best: Sequence[Reason]) -> tuple[Reason, ...]:
        """Why staff get a call members got: how many members, then the best member's reasons."""
        return (Reason("members", str(members), "members"), *best[: self.config.max_reasons - 1])

    @staticmethod
    def _own_filters(c: _Compiled, source: str, budget: Decimal | None) -> Refusal | None:
        """The profile's own filters, whatever the call says: its sources, its minimum budget."""
        if c.sources and source not in c.sources:
            return "source", *both("source", source=source)
        if c.min_budget is not None and budget is not None and budget < c.min_budget:
            whole = f"{budget:,.0f}"  # as notifier.messages.formats.fmt_money writes whole euros
            amount = ("€ " + whole.replace(",", "."), "€" + whole)
            return "budget", *both("budget", amount=amount)
        return None

    def _territory_rule(self, facts: CallFacts, c: _Compiled) -> Refusal | None:
        territory = facts.territory
        if not territory.restricted or territory_ok(territory, c.region, c.province, self.vocab):
            return None
        where = c.province or c.region
        places = (restricted_to(territory, self.vocab, "it"), restricted_to(territory, self.vocab, "en"))
        return "territory", *both("territory", places=places, where=where)

    def _applicant_rule(self, facts: CallFacts, c: _Compiled) -> Refusal | None:
        applicants = facts.applicants
        if not applicants.admits or applicants.admits & c.types:
            return None
        admitted = [
            self.vocab.beneficiaries[t] for t in sorted(applicants.admits) if t in self.vocab.beneficiaries
        ]
        words = next(
            (applicants.evidence[t] for t in sorted(applicants.admits) if applicants.evidence.get(t)), ""
        )
        who = tuple(", ".join(b.label(lang) for b in admitted) + said(words, lang) for lang in ("it", "en"))
        return "beneficiary", *both("beneficiary", who=(who[0], who[1]))

    def _sector_rule(self, facts: CallFacts, c: _Compiled) -> Refusal | None:
        applicants = facts.applicants
        if not applicants.sectors or applicants.sectors & c.sectors:
            return None
        sectors = sorted(applicants.sectors)
        words = next((applicants.evidence[s] for s in sectors if applicants.evidence.get(s)), "")
        labels = {
            lang: ", ".join(self.vocab.applicant_sectors[s].label(lang) for s in sectors)
            for lang in ("it", "en")
        }
        who = (labels["it"] + said(words, "it"), labels["en"] + said(words, "en"))
        return "applicant-sector", *both("applicant_sector", who=who)

    def _ateco_rule(self, facts: CallFacts, c: _Compiled) -> Refusal | None:
        if not (facts.ateco and c.ateco) or any(ateco_agrees(a, b) for a in facts.ateco for b in c.ateco):
            return None
        shown = ", ".join(facts.ateco[:6]) + ("…" if len(facts.ateco) > 6 else "")
        return "ateco", *both("ateco", shown=shown, own=", ".join(c.ateco))

    def match(self, call: CallView, *, now: datetime) -> list[Match]:
        """The profiles this call matches, best score first.

        Same outcome as :meth:`explain` for every profile, computed the fast way: topic scores
        are added once per group of profiles with the same topics (arrays over the groups, in
        the call's topic order as :meth:`_explain_own` adds them), the hard rules are asked once
        per distinct value of what they read (:meth:`_refused`), the profiles of the groups that
        reach the threshold are picked out as arrays, and only profiles whose own keywords were
        found are scored one by one.
        """
        # The collector is paused while the call is matched: it makes thousands of short-lived
        # objects that form no cycles (tokens, hits, matches); a collection in the middle would
        # move the live ones to the old generation, and every few dozen calls that triggers a
        # pass over the whole heap (most of the time a run spent, with 5,000 profiles). Paused,
        # they are freed by reference counting; the collector runs as usual between calls. Only
        # the thread that paused it resumes it, so another thread's pause never leaves it off.
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            return self._matches(self.facts(call, now=now), call)
        finally:
            if paused:
                gc.enable()

    def _matches(self, facts: CallFacts, call: CallView) -> list[Match]:
        if facts.unavailable or not self.profiles:
            return []
        config = self.config
        threshold = config.threshold
        desc_cap = config.description_cap
        max_reasons = config.max_reasons
        topic_scores, _silenced, purpose = self._topic_scores(facts)
        topic_bit = self._topic_bit
        n_groups = len(self._group_topics)

        # When the title says the call's purpose, a cross-cutting theme counts only for groups
        # with a purpose topic; what a member makes (a chain topic) always counts.
        purpose_bits = sum(topic_bit[t] for t in purpose)
        on_purpose: npt.NDArray[np.bool_] | None = None
        if purpose:
            on_purpose = np.zeros(n_groups, dtype=np.bool_)
            for said in purpose:
                if said in self._topic_groups:
                    on_purpose |= self._topic_groups[said]
        text = np.zeros(n_groups)
        description = np.zeros(n_groups)
        scored = np.zeros(n_groups, dtype=np.bool_)
        scored_bits = theme_bits = 0
        for topic, part in topic_scores.items():
            groups = self._topic_groups.get(topic)
            scored_bits |= topic_bit[topic]
            if self.vocab.topics[topic].kind == "theme":
                theme_bits |= topic_bit[topic]
                if groups is not None and on_purpose is not None:
                    groups = groups & on_purpose
            if groups is not None:
                np.add(text, part.text, out=text, where=groups)
                np.add(description, part.description, out=description, where=groups)
                scored |= groups
        # Profiles whose own keywords were found: their (weight, reason) in the order found.
        extra: dict[int, list[tuple[float, Reason]]] = {}
        if len(self._keyword_index):
            kw_weight = config.keyword_weight
            for term_id, (w, reason) in self._keyword_hits(facts).items():
                item = (w * kw_weight, reason)
                for n in self._profiles_of_keyword.get(term_id, ()):
                    own = extra.get(n)
                    if own is None:
                        extra[n] = [item]
                    else:
                        own.append(item)
        # A score is rounded before the threshold, as explain does; rounding moves it by 0.005 at
        # most, so only groups at most 0.01 under the threshold are rounded, each distinct total once.
        total = text + np.minimum(description, desc_cap)
        near = np.flatnonzero(scored & (total >= threshold - 0.01))
        if not len(near) and not extra:
            return []
        group_score = np.full(n_groups, -1.0)
        if len(near):
            distinct, which = np.unique(total[near], return_inverse=True)
            group_score[near] = np.array([round(x, 2) for x in distinct.tolist()])[which]
        refused = self._refused(facts, call.source)

        # A topic shows once, with its best words: one candidate per topic, chosen once per call.
        # Which of a group's topics count (as bits) decides its reasons: once per distinct set.
        topic_best = [(topic_bit[t], max(part.evidence, key=_weight)) for t, part in topic_scores.items()]
        top_of_bits: dict[int, list[tuple[float, Reason]]] = {}

        def top_of(bits: int) -> list[tuple[float, Reason]]:
            top = top_of_bits.get(bits)
            if top is None:
                top = [ev for bit, ev in topic_best if bit & bits]
                top.sort(key=_weight, reverse=True)
                top = top_of_bits[bits] = top[:max_reasons]
            return top

        def counted(bits: Any) -> Any:
            """The bits of the topics that count for groups with these topic bits."""
            bits = bits & scored_bits
            if purpose:
                return np.where(bits & purpose_bits, bits, bits & ~theme_bits)
            return bits

        # Profiles of the groups over the threshold, but those refused and those with keywords
        # found (scored below); every array operation is over all profiles at once.
        passing = np.flatnonzero(group_score >= threshold)
        picked = (group_score >= threshold)[self._profile_groups] & ~refused
        if extra:
            picked[list(extra)] = False
        chosen = np.flatnonzero(picked)
        sets, set_of_passing = np.unique(counted(self._group_bits_array[passing]), return_inverse=True)
        set_of_group = np.zeros(n_groups, dtype=np.intp)
        set_of_group[passing] = set_of_passing
        reasons_of_set = [tuple(map(_reason, top_of(bits))) for bits in sets.tolist()]
        groups_chosen = self._profile_groups[chosen]
        ids = self._member_ids[chosen].tolist()
        scores = group_score[groups_chosen].tolist()
        reasons = list(map(reasons_of_set.__getitem__, set_of_group[groups_chosen].tolist()))
        profiles = self.profiles
        texts: list[float] = text.tolist() if extra else []
        descriptions: list[float] = description.tolist() if extra else []
        has: list[bool] = scored.tolist() if extra else []
        # Profiles with the same topics and the same keywords found score alike, and those whose
        # counted topics are the same show the same reasons: each worked out once.
        own_memo: dict[tuple[int, tuple[int, ...]], tuple[float, tuple[Reason, ...]] | None] = {}
        why_memo: dict[tuple[int, tuple[int, ...]], tuple[Reason, ...]] = {}
        for n, own in extra.items():
            if refused[n]:
                continue
            g = self._profile_group[n]
            own_key = tuple(map(id, own))
            key = (g, own_key)
            found = own_memo.get(key, _MISSING)
            if found is _MISSING:
                found = own_memo[key] = None
                t, d = (texts[g], descriptions[g]) if has[g] else (0.0, 0.0)
                for w, reason in own:
                    if reason.field == "description":
                        d += w
                    else:
                        t += w
                score = round(t + (d if d < desc_cap else desc_cap), 2)
                if score >= threshold:
                    bits = self._group_bits[g] & scored_bits
                    if purpose and not bits & purpose_bits:
                        bits &= ~theme_bits
                    why = why_memo.get((bits, own_key))
                    if why is None:
                        why = tuple(map(_reason, best_reasons(top_of(bits) + own, max_reasons)))
                        why_memo[bits, own_key] = why
                    found = own_memo[key] = (score, why)
            if found is not None:
                ids.append(profiles[n].member_id)
                scores.append(found[0])
                reasons.append(found[1])
        out = list(map(tuple.__new__, repeat(Match), zip(ids, scores, reasons, strict=True)))
        if self._staff and out:
            out = self._with_staff(out, call.source, facts.budget)
        # Best score first, then member id: two sorts with C-level keys (stable).
        out.sort(key=_member)
        out.sort(key=_score, reverse=True)
        return out

    def _with_staff(self, out: list[Match], source: str, budget: Decimal | None) -> list[Match]:
        """Staff profiles get the call when a member got it, as :meth:`_explain` says: with the
        best member match's score (the first member's among equals), the number of members and
        its first reasons, unless their own match scores as much."""
        staff = {self.profiles[n].member_id: n for n in self._staff}
        members = [m for m in out if m.member_id not in staff]
        if not members:
            return out
        order = {c.member_id: n for n, c in reversed(list(enumerate(self.profiles)))}
        best = max(members, key=lambda m: (m.score, -order[m.member_id]))
        why = self._staff_reasons(len(members), best.reasons)
        kept = [m for m in out if m.member_id not in staff or m.score >= best.score]
        have = {m.member_id for m in kept}
        for n in self._staff:
            c = self.profiles[n]
            if c.member_id in have or self._own_filters(c, source, budget) is not None:
                continue
            kept.append(Match(c.member_id, best.score, why))
        return kept

    def explain(self, call: CallView, member_id: int, *, now: datetime) -> Explanation:
        """Why this call matched the member's profile, or the first rule that excluded it."""
        found = [n for n, c in enumerate(self.profiles) if c.member_id == member_id]
        if not found:
            raise KeyError(f"no profile for member {member_id}")
        return self._explain(self.facts(call, now=now), call, found[0])

    def explain_all(self, call: CallView, *, now: datetime) -> list[tuple[int, Explanation]]:
        """An explanation for every profile the call says something to (a topic or keyword
        found), matched or not; none when the call is closed."""
        facts = self.facts(call, now=now)
        if facts.unavailable:
            return []
        touched: set[int] = set()
        for topic in facts.topics:
            for g in self._groups_of_topic.get(topic, ()):
                touched.update(self._group_members[g])
        for term_id in self._keyword_hits(facts):
            touched.update(self._profiles_of_keyword.get(term_id, ()))
        return [(self.profiles[n].member_id, self._explain(facts, call, n)) for n in sorted(touched)]

    def _explain(self, facts: CallFacts, call: CallView, n: int) -> Explanation:
        own = self._explain_own(facts, call, n)
        if n not in self._staff or own.excluded_by in ("closed", "deadline-passed"):
            return own
        c = self.profiles[n]
        if self._own_filters(c, call.source, facts.budget) is not None:
            return own
        staff = set(self._staff)
        members = [
            ex for m in range(len(self.profiles)) if m not in staff
            for ex in (self._explain_own(facts, call, m),) if ex.matched
        ]  # fmt: skip
        if not members:
            return own
        best = max(members, key=lambda ex: ex.score)
        if own.matched and own.score >= best.score:
            return own
        why = self._staff_reasons(len(members), best.reasons)
        return Explanation(True, best.score, why, None, "", "", own.notes)

    def _explain_own(self, facts: CallFacts, call: CallView, n: int) -> Explanation:
        """The explanation from this profile's own topics and keywords alone."""
        c = self.profiles[n]
        topic_scores, silenced, purpose = self._topic_scores(facts)
        off_purpose = bool(purpose) and purpose.keys().isdisjoint(c.topics)
        total = _Part()
        #: Evidence the purpose rule set aside: shown when the call is refused, never scored.
        aside: list[tuple[float, Reason]] = []
        # In the call's topic order, so that scores and ties come out the same in the fast path.
        for topic, part in topic_scores.items():
            if topic in c.topics:
                if off_purpose and self.vocab.topics[topic].kind == "theme":
                    silenced.add(topic)
                    aside.extend(part.evidence)
                else:
                    total.merge(part)
        kw_weight = self.config.keyword_weight
        for term_id, (w, reason) in self._keyword_hits(facts).items():
            if term_id in c.keyword_ids:
                total.add(w * kw_weight, reason)
        reasons = tuple(r for _w, r in best_reasons(total.evidence, self.config.max_reasons))
        score = round(self._total(total.text, total.description), 2)
        notes = self._notes(facts)

        def refuse(rule: str, it: str, en: str) -> Explanation:  # the detail in both languages
            shown = best_reasons(total.evidence + aside, self.config.max_reasons)
            return Explanation(False, score, tuple(r for _w, r in shown), rule, it, en, notes)

        if facts.unavailable == "closed":
            return refuse("closed", *both("closed"))
        if facts.unavailable == "deadline-passed":
            return refuse("deadline-passed", *both("deadline_passed"))
        rule = self._rule(facts, c, call.source)
        if rule is not None and rule[0] in ("source", "budget"):
            return refuse(*rule)
        for term_id, (_w, reason) in self._term_hits(
            facts, self._exclude_index, self.config.exclusion_fields
        ).items():
            if term_id in c.exclude_ids:
                words = tuple(
                    catalogue.text(lang, "format.quoted", words=reason.term) for lang in ("it", "en")
                )
                where = (field_words(reason.field, "it"), field_words(reason.field, "en"))
                return refuse("exclusion", *both("exclusion", words=(words[0], words[1]), where=where))
        if rule is not None:
            return refuse(*rule)
        threshold = self.config.threshold
        if score < threshold:
            lost = silenced & c.topics
            if lost and facts.thematic is not None and self.config.sector_rule:
                quoted = (said(facts.thematic, "it"), said(facts.thematic, "en"))
                return refuse("thematic", *both("thematic", said=quoted))
            if lost and off_purpose:
                title_words = next(iter(purpose.values()))
                topics = tuple(
                    ", ".join(self.vocab.topic_label(t, lang) for t in sorted(purpose))
                    + said(title_words, lang)
                    for lang in ("it", "en")
                )
                return refuse("purpose", *both("purpose", topics=(topics[0], topics[1])))
            if lost and facts.other_sector is not None:
                sector_id, sector_words = facts.other_sector
                sector = self.vocab.sectors[sector_id]
                about = (
                    sector.label("it") + said(sector_words, "it"),
                    sector.label("en") + said(sector_words, "en"),
                )
                return refuse("other-sector", *both("other_sector", about=about))
            return refuse("threshold", *both("threshold", score=f"{score:g}", threshold=f"{threshold:g}"))
        return Explanation(True, score, reasons, None, "", "", notes)

    def _notes(self, facts: CallFacts) -> tuple[str, ...]:
        notes = [f"territory: {describe_territory(facts.territory, self.vocab, 'en')}"]
        if facts.applicants.admits:
            notes.append("applicants: " + ", ".join(sorted(facts.applicants.admits)))
        if facts.applicants.sectors:
            notes.append("reserved to sectors: " + ", ".join(sorted(facts.applicants.sectors)))
        if facts.ateco:
            notes.append("ATECO: " + ", ".join(facts.ateco[:8]) + ("…" if len(facts.ateco) > 8 else ""))
        if facts.thematic:
            notes.append(f"thematic R&I topic (“{facts.thematic}”)")
        if facts.other_sector:
            notes.append(f"about another sector: {facts.other_sector[0]} (“{facts.other_sector[1]}”)")
        return tuple(notes)


def explain(
    call: CallView, profile: Profile, *, now: datetime, config: MatchingConfig | None = None
) -> Explanation:
    """Why ``call`` matches ``profile``, or which rule excludes it (see :data:`RULES`)."""
    return Matcher([(0, profile)], config=config).explain(call, 0, now=now)


#: Reason lines kept (in an outbox payload, the digest), and their length: a message shows them
#: on one line anyway.
MAX_REASONS = 8
MAX_REASON_CHARS = 200


class ReasonLike(Protocol):
    """A reason as messages use it (:class:`Reason`, or a stand-in matcher's)."""

    def line(self, lang: str) -> str: ...


def reason_lines(reasons: Iterable[ReasonLike], lang: str, *, limit: int = MAX_REASONS) -> list[str]:
    """The reasons as distinct plain lines in ``lang``, at most ``limit``, each capped."""
    lines: list[str] = []
    for reason in reasons:
        text = " ".join(reason.line(lang).split())[:MAX_REASON_CHARS]
        if text and text not in lines:
            lines.append(text)
        if len(lines) >= limit:
            break
    return lines


def reasons_line(reasons: Sequence[Reason], lang: str = "it", *, limit: int = 2) -> str:
    """The first reasons joined for one line of an alert."""
    return "; ".join(reason_lines(reasons, lang, limit=limit))


# --- dry run (``sentinella match``) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MatchRow:
    """One (member, call) line of a dry run; with ``explain``, also the near misses."""

    member_id: int
    member_name: str
    call_id: int
    group_id: int | None
    source: str
    title: str
    url: str
    status: str
    opens: datetime | None
    deadline: datetime | None
    score: float
    matched: bool
    reasons: tuple[Reason, ...]
    excluded_by: str | None = None
    detail: str = ""
    notes: tuple[str, ...] = ()
    member_email: str | None = None
    #: The member's language: the one ``detail`` is written in and reasons are shown in.
    member_language: str = "it"
    source_id: str = ""

    def reason_line(self, lang: str | None = None, *, limit: int = 2) -> str:
        return reasons_line(self.reasons, lang or self.member_language, limit=limit)

    def to_json(self, lang: str | None = None) -> dict[str, Any]:
        lang = lang or self.member_language
        return {
            "member_id": self.member_id,
            "member_name": self.member_name,
            "member_email": self.member_email,
            "member_language": self.member_language,
            "call_id": self.call_id,
            "group_id": self.group_id,
            "source": self.source,
            "source_id": self.source_id,
            "title": self.title,
            "url": self.url,
            "status": self.status,
            "opens": self.opens.isoformat() if self.opens else None,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "score": self.score,
            "matched": self.matched,
            "reasons": [r.line(lang) for r in self.reasons],
            "reason_details": [r.to_json() for r in self.reasons],
            "excluded_by": self.excluded_by,
            "detail": self.detail,
            "notes": list(self.notes),
        }


def _as_datetime(value: date | datetime | None) -> datetime | None:
    from storage.records import ROME, local_midnight

    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=ROME)
        return value
    return local_midnight(value)


def dry_run(
    db: Database,
    *,
    now: datetime,
    member_id: int | None = None,
    since: date | datetime | None = None,
    config: MatchingConfig | None = None,
    explain: bool = False,
    lang: str | None = None,
) -> list[MatchRow]:
    """Match the stored calls members can still apply to (changed since ``since``) against the
    profiles (of active members, or of ``member_id`` whatever its state); send nothing.

    One row per member and duplicate group (its best call). With ``explain``, rows for calls
    that said something to a profile but did not match are included, with the rule that
    excluded them (``detail`` in ``lang``, or in each member's own language when None). Rows:
    by member, matches first, soonest deadline.
    """
    from storage.calls import list_calls
    from storage.members import all_profiles

    config = config or MatchingConfig()
    names: dict[int, str] = {}
    who: dict[int, tuple[str | None, str]] = {}
    profiles: list[tuple[int, Profile]] = []
    for member, data in all_profiles(db, active=None if member_id is not None else True):
        if member_id is not None and member.id != member_id:
            continue
        try:
            profile = member_profile(member.role, data)
        except ValidationError:
            log.warning("member %s has a profile that does not validate; skipped", member.id)
            continue
        names[member.id] = member.name
        who[member.id] = (member.email, lang or profile.language or member.language or "it")
        profiles.append((member.id, profile))
    if not profiles:
        return []
    matcher = Matcher(profiles, config=config)
    calls = [
        c for c in list_calls(db, since=_as_datetime(since)) if not (c.status == "closed" or _past(c, now))
    ]
    best: dict[tuple[int, int], MatchRow] = {}
    for call in calls:
        group = call.group_id if call.group_id is not None else -call.id
        rows: list[MatchRow] = []
        if explain:
            for mid, ex in matcher.explain_all(call, now=now):
                rows.append(
                    _row(
                        call,
                        mid,
                        names[mid],
                        ex.score,
                        ex.matched,
                        ex.reasons,
                        ex.excluded_by,
                        ex.detail(who[mid][1]),
                        ex.notes,
                        who[mid],
                    )
                )
        else:
            for m in matcher.match(call, now=now):
                rows.append(
                    _row(
                        call,
                        m.member_id,
                        names[m.member_id],
                        m.score,
                        True,
                        m.reasons,
                        None,
                        "",
                        (),
                        who[m.member_id],
                    )
                )
        for row in rows:
            key = (row.member_id, group)
            current = best.get(key)
            if current is None or (row.matched, row.score, -row.call_id) > (
                current.matched,
                current.score,
                -current.call_id,
            ):
                best[key] = row
    far = datetime.max.replace(tzinfo=now.tzinfo)
    return sorted(
        best.values(),
        key=lambda r: (r.member_id, not r.matched, r.deadline or far, -r.score, r.call_id),
    )


def _past(call: Any, now: datetime) -> bool:
    end = call.final_deadline
    return end is not None and end < now


def _row(
    call: Any,
    member_id: int,
    name: str,
    score: float,
    matched: bool,
    reasons: tuple[Reason, ...],
    excluded_by: str | None,
    detail: str,
    notes: tuple[str, ...],
    member: tuple[str | None, str],
) -> MatchRow:
    return MatchRow(
        member_id=member_id,
        member_name=name,
        call_id=call.id,
        group_id=call.group_id,
        source=call.source,
        title=call.title,
        url=call.url,
        status=str(getattr(call.status, "value", call.status)),
        opens=call.opens,
        deadline=call.final_deadline,
        score=score,
        matched=matched,
        reasons=reasons,
        excluded_by=excluded_by,
        detail=detail,
        notes=notes,
        member_email=member[0],
        member_language=member[1],
        source_id=call.source_id,
    )


__all__ = [
    "RULES",
    "Explanation",
    "Match",
    "MatchRow",
    "Matcher",
    "Reason",
    "dry_run",
    "explain",
    "reasons_line",
]
