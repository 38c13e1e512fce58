"""What a call says about itself, read once per call: its text as tokens, the topics it is
about, whom it admits, where, and whether it is about another sector; and the rules that
exclude a member from a call whatever its words.

Plain keyword matching finds calls that *talk about* packaging or energy; most of them are not
for a Lombard cosmetics firm. Precision comes from these rules, each with a name that
``explain`` reports:

``territory``
    The call is restricted to another territory. Read from the source's ``regions`` field (all
    twenty regions = national, no restriction), the granting body and the text: "Regione
    Veneto", "sede operativa in Lombardia", "imprese con sede in provincia di Brescia",
    "Camera di Commercio di Bergamo" (a chamber funds firms of its own area), "PMI lombarde".
    Calls of the Bandi e Servizi portal are Lombard unless they say more. A member's region is
    the profile's (or its province's) or the cluster's; a member with no province passes a
    province restriction inside their region (benefit of the doubt).
``beneficiary``
    The call admits only applicant types the member is not: public bodies only ("Comuni"),
    research bodies only, non-profits, individuals, large firms, start-ups. Read from the
    beneficiary field, the title, the summary and, in the description, the "who can apply"
    parts only (the section under a heading, or a sentence with a cue such as "riservato alle",
    "possono presentare domanda", "esclusivamente", "may apply"), so a passing mention elsewhere
    does not restrict. Denied or subordinate applicants do not count ("non sono ammesse
    imprese", "SMEs are not eligible", "le PMI solo come fornitrici"; "esclusivamente" restricts,
    it does not deny), and a specific company type ("PMI", "startup innovative", "grandi
    imprese") wins over words for firms in general ("imprese", a source's coarse "Impresa" tag,
    "Registro delle imprese"). A call naming no type admits everyone; a profile declaring no
    type is taken for a company of any size.
``applicant-sector``
    The call is reserved to firms of one sector (agriculture and agri-food, tourism and
    catering, retail, culture, transport, construction): "imprese agricole", "strutture
    ricettive", "settore turistico-ricettivo", "hospitality businesses", or ATECO codes all in
    that sector. A member belongs to a sector through its ATECO codes. A call that also names
    firms in general ("PMI e imprese agricole") is open.
``ateco``
    The call lists admitted ATECO codes and none agrees with the member's (when the member
    gave codes; "Tutti i settori economici" means no list).
``other-sector``
    The call is about another sector (its title, or two cues in the source's tags: soil,
    vehicles, health care, ICT research ...) and names nothing of the cosmetics chain: then only
    chain topics' anchor words and the member's own keywords count, not cross-cutting themes
    ("research", "digital") that every such call mentions. A sector named in the summary is a
    mention, not the subject (RULES B4).
``thematic``
    The call is a topic of a thematic EU research programme (Horizon Europe or 2020, a Joint
    Undertaking, LIFE, Digital Europe, EMFAF: :func:`programme_kind`), not an instrument open to
    any field (EIC, Eurostars, cascade open calls) nor a research-career one (MSCA, ERC, COST,
    PRIN, Widening: for research bodies only). Its domain must be the member's: the same rule
    as ``other-sector``, whatever the chain words (RULES B3).

Applicants are read from eligibility text first (the beneficiary field, the "who can apply"
parts of a description), as :func:`applicants_of` says: examples restrict nothing, a list of
kinds of organisation is no size limit, the funder's name is no applicant, a sentence that opens
with "sono esclusi" denies, a list of activities that includes manufacturing reserves nothing.

Known limits: restrictions written only in attachments are not seen; a territory named in an
unusual phrasing ("per le aziende del territorio orobico") is missed (the call then matches:
the rules err towards recall); a city call ("Comune di Milano") is taken for its province.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import cast

from notifier import catalogue
from notifier.matching.text import BOUNDARY, Hit, PhraseIndex, Token, analyse, fold, search
from notifier.matching.vocabulary import Vocabulary
from storage.calls import CallView

FIELDS = ("title", "keywords", "summary", "programme", "description")
COMPANY_TYPES = frozenset({"micro", "pmi", "grande-impresa", "startup"})
#: Kinds of organisation that are not companies: a list naming one of them beside "enterprises"
#: lists kinds, not company sizes.
NON_COMPANY_KINDS = frozenset({"ricerca", "ente-pubblico", "terzo-settore"})
#: With this many regions or more in the source's field a call is national.
NATIONAL_REGIONS = 15
#: Sources whose calls are all for their own region unless they say more.
SOURCE_REGIONS = {"lombardia": "Lombardia"}

_TRIGGER_PROVINCE = ("provinc",)
_TRIGGER_SEAT = ("sed", "operativ", "ubicat", "localizzat", "insediat", "territor", "legal")
_TRIGGER_REGION = ("region", "fesr", "fse", "psr", "por")
_FIRM_WORDS = (
    "impres",
    "aziend",
    "pmi",
    "mpmi",
    "imprenditor",
    "operator",
    "realta",
    "soggett",
    "comun",
    "societ",
    "commerc",
)
_FILLERS = ("autonom", "metropolitan", "industri", "artigian", "agricoltur", "territorial", "citta")
_NEGATIONS = ("esclus", "eccett", "eccezion", "tranne", "except", "exclud", "salvo")
#: Words that share a negation's stem but restrict instead: "esclusivamente le imprese
#: turistiche" admits only them, "escluse le imprese turistiche" denies them.
_RESTRICTIVE = ("esclusiv", "exclusiv")
_NOT = frozenset({"non", "not", "no"})
#: Nouns that start a kind of applicant of their own ("imprese agricole", "aziende ricettive").
_FIRM_NOUNS = ("impres", "aziend", "pmi", "imprenditor", "cooperativ", "societ", "agricoltor")
_ELIGIBLE = ("eligib", "ammess", "ammissib", "ammiss", "posson", "can", "may")
#: After an applicant: it takes part only in a minor role ("solo come partner").
_ONLY = frozenset({"solo", "soltanto", "unicamente", "esclusivamente", "only"})


@dataclass(frozen=True, slots=True)
class FieldText:
    text: str
    tokens: list[Token]


@dataclass(frozen=True, slots=True)
class TopicEvidence:
    """One term of a topic found in a call: where (best field), how strong, what it says."""

    topic: str
    strength: str
    field: str
    surface: str
    weight: float


@dataclass(frozen=True, slots=True)
class Territory:
    regions: frozenset[str] | None = None
    provinces: frozenset[str] | None = None
    evidence: str = ""

    @property
    def restricted(self) -> bool:
        return self.regions is not None or self.provinces is not None


@dataclass(frozen=True, slots=True)
class Applicants:
    #: Beneficiary types the call admits; empty = it does not say (everyone).
    admits: frozenset[str] = frozenset()
    #: Applicant sectors the call is reserved to; empty = any sector.
    sectors: frozenset[str] = frozenset()
    #: Evidence per beneficiary type or sector id: the words the call used.
    evidence: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallFacts:
    """Everything about one call that does not depend on who is matched against it."""

    fields: Mapping[str, FieldText]
    #: "closed", "deadline-passed" or None (open, or not open yet: members hear of it early).
    unavailable: str | None
    budget: Decimal | None
    territory: Territory
    applicants: Applicants
    ateco: tuple[str, ...]
    #: Sector id and the words when the call is about another sector (see the module docstring).
    other_sector: tuple[str, str] | None
    #: The programme words when the call is a thematic R&I topic (see the module docstring).
    thematic: str | None
    #: Topic id → its evidence (best field per distinct term), all strengths.
    topics: Mapping[str, tuple[TopicEvidence, ...]]


def availability(call: CallView, now: datetime) -> str | None:
    """None when members should hear of the call (open, or announced and not yet open);
    else the rule that says why not: ``closed`` or ``deadline-passed``."""
    if call.is_open(now):
        return None
    end = call.final_deadline
    if end is not None and end < now:
        return "deadline-passed"
    if str(getattr(call.status, "value", call.status)) == "closed":
        return "closed"
    return None


def field_texts(
    call: CallView,
    *,
    max_description: int,
    vocab: Vocabulary | None = None,
    indexes: Mapping[str, Sequence[PhraseIndex]] | None = None,
) -> dict[str, FieldText]:
    """The call's fields as text and tokens. With ``vocab``, each field is read once for all
    the vocabulary's indexes the rules search it with (and ``indexes``, more per field)."""
    values = {
        "title": call.title,
        "summary": call.summary,
        "keywords": " ; ".join(call.keywords),
        "programme": " ; ".join(p for p in (call.programme, call.funding_source) if p),
        "description": call.description,
    }
    # Read by the eligibility rules only (never scored): analysed once here.
    values["_beneficiaries"] = " ; ".join(call.beneficiaries)
    values["_granting_body"] = call.granting_body or ""
    read = _indexes_of_fields(vocab) if vocab is not None else {}
    more = indexes or {}
    out: dict[str, FieldText] = {}
    for name, value in values.items():
        text, toks = analyse(value or "", limit=max_description if name == "description" else None)
        search(toks, (*read.get(name, ()), *more.get(name, ())))
        out[name] = FieldText(text, toks)
    return out


def _indexes_of_fields(vocab: Vocabulary) -> dict[str, tuple[PhraseIndex, ...]]:
    """The vocabulary's indexes each field is searched with below (an index asked of a field not
    listed here still finds the same, reading the field once more)."""
    v = vocab
    return {
        "title": (
            v.topic_index, v.anchor_index, v.sector_index, v.applicant_index, v.place_index, v.purpose_index
        ),
        "summary": (v.topic_index, v.anchor_index, v.applicant_index, v.place_index),
        "keywords": (v.topic_index, v.anchor_index, v.sector_index),
        "programme": (v.anchor_index, v.purpose_index),
        "description": (v.topic_index, v.anchor_index, v.heading_index, v.applicant_index, v.place_index),
        "_beneficiaries": (v.applicant_index, v.place_index, v.purpose_index),
        "_granting_body": (v.place_index,),
    }  # fmt: skip


# --- helpers on token sequences ---------------------------------------------------------------


def _starts(token: Token, prefixes: Sequence[str]) -> bool:
    return token.stem != BOUNDARY and token.word.startswith(tuple(prefixes))


def _span(text: str, toks: Sequence[Token], start: int, end: int, *, limit: int = 90) -> str:
    surface = " ".join(text[toks[start].start : toks[end - 1].end].split())
    return surface if len(surface) <= limit else surface[: limit - 1] + "…"


def _negated(toks: Sequence[Token], start: int, window: int = 3) -> bool:
    for k in range(start - 1, max(-1, start - 1 - window), -1):
        if toks[k].stem == BOUNDARY:
            return False
        if _starts(toks[k], _NEGATIONS) and not _starts(toks[k], _RESTRICTIVE):
            return True
    return False


# --- territory ---------------------------------------------------------------------------------


def _place_hits(vocab: Vocabulary, text: str, toks: list[Token]) -> list[tuple[str, frozenset[str], str]]:
    """Places named as a restriction in one text: ``(kind, keys, evidence)`` with kind
    ``region`` (keys = region names) or ``province`` (keys = province codes)."""
    out: list[tuple[str, frozenset[str], str]] = []
    hits = vocab.place_index.find(toks)
    accepted_end = -1
    accepted_kind = ""
    for hit in hits:
        kind, key = cast(tuple[str, str], hit.payload)
        keys = frozenset(key.split(",")) if kind in ("chamber", "area") else frozenset([key])
        is_region = kind in ("region", "region-adj", "area")
        ambiguous = kind == "province" and any(vocab.provinces[k].ambiguous for k in keys)
        # Walk back over fillers ("Provincia *autonoma* di", "Camera di Commercio *Industria
        # Artigianato e Agricoltura* di") to the word that says what the name is.
        i = hit.start - 1
        while i >= 0 and _starts(toks[i], _FILLERS):
            i -= 1
        prev = toks[i] if i >= 0 else None
        trigger_at = i
        accept = False
        firm_before = any(_starts(toks[k], _FIRM_WORDS) for k in range(max(0, hit.start - 2), hit.start))
        j = accepted_end
        while 0 <= j < hit.start and _starts(toks[j], _FILLERS):
            j += 1
        if accepted_end >= 0 and j == hit.start:
            # A list right after an accepted name: "province di Bergamo, Brescia e Cremona".
            accept = kind == "chamber" or accepted_kind == ("region" if is_region else "province")
            trigger_at = hit.start
        elif prev is None or prev.stem == BOUNDARY:
            accept = False
        elif kind in ("region-adj", "province-adj") or (kind == "area" and firm_before):
            accept = firm_before  # "PMI lombarde", "imprese del Mezzogiorno"
        elif _starts(prev, _TRIGGER_PROVINCE) or prev.word in ("cciaa", "comune", "comuni"):
            accept = True
        elif prev.stem == "commerc" and i >= 1 and toks[i - 1].stem.startswith("camer"):
            trigger_at = i - 1
            accept = True
        elif is_region and _starts(prev, _TRIGGER_REGION):
            accept = True
        elif not ambiguous:
            # "sede operativa [...] in Lombardia": a seat word shortly before, same sentence.
            for k in range(hit.start - 1, max(-1, hit.start - 7), -1):
                if toks[k].stem == BOUNDARY:
                    break
                if _starts(toks[k], _TRIGGER_SEAT) or (is_region and _starts(toks[k], _TRIGGER_REGION)):
                    accept = True
                    trigger_at = k
                    break
        if not accept:
            continue
        start = trigger_at if 0 <= trigger_at < hit.start and hit.start - trigger_at <= 8 else hit.start
        evidence = _span(text, toks, start, hit.end)
        if is_region:
            out.append(("region", keys, evidence))
            accepted_kind = "region"
        else:
            out.append(("province", keys, evidence))
            accepted_kind = "province"
        accepted_end = hit.end
    return out


def territory_of(call: CallView, fields: Mapping[str, FieldText], vocab: Vocabulary) -> Territory:
    field_regions = {r for r in (vocab.region_named(v) for v in call.regions) if r is not None}
    national = len(field_regions) >= NATIONAL_REGIONS
    text_regions: set[str] = set()
    provinces: set[str] = set()
    evidence = ""
    segments = [
        (fields[name].text, fields[name].tokens)
        for name in ("_granting_body", "title", "summary", "description", "_beneficiaries")
    ]
    for text, toks in segments:
        for kind, keys, said in _place_hits(vocab, text, toks):
            if kind == "region":
                text_regions |= keys
            else:
                provinces |= keys
            evidence = evidence or said
    if national:
        regions: set[str] | None = None
    elif field_regions:
        regions = field_regions
        if not evidence:
            evidence = ", ".join(sorted(field_regions))
    elif text_regions:
        regions = text_regions
    elif call.source in SOURCE_REGIONS:
        regions = {SOURCE_REGIONS[call.source]}
        evidence = evidence or SOURCE_REGIONS[call.source]
    else:
        regions = None
    if provinces and regions is not None:
        # A province outside the call's regions is a mention, not a restriction.
        inside = {p for p in provinces if vocab.provinces[p].region in regions}
        provinces = inside
    return Territory(
        regions=frozenset(regions) if regions else None,
        provinces=frozenset(provinces) if provinces else None,
        evidence=evidence,
    )


def territory_ok(territory: Territory, region: str, province: str | None, vocab: Vocabulary) -> bool:
    if territory.provinces:
        if province:
            return province in territory.provinces
        return any(vocab.provinces[p].region == region for p in territory.provinces)
    if territory.regions:
        return region in territory.regions
    return True


def describe_territory(territory: Territory, vocab: Vocabulary, lang: str) -> str:
    """``provincia di Brescia («Camera di Commercio di Brescia»)`` / ``regione Veneto (…)``."""
    places = _territory_words(territory, vocab, lang)
    if places is None:
        return catalogue.text(lang, "explain.anywhere")
    return places + said(territory.evidence, lang)


def restricted_to(territory: Territory, vocab: Vocabulary, lang: str) -> str:
    """``riservato alla provincia di Brescia (…)`` / ``riservato alle province di …`` /
    ``restricted to the regions …``: the article agrees with the number of places."""
    places = _territory_words(territory, vocab, lang)
    if places is None:
        return catalogue.text(lang, "explain.no_territory")
    plural = len(territory.provinces or territory.regions or ()) > 1
    key = "explain.restricted_many" if plural else "explain.restricted_one"
    return catalogue.text(lang, key, places=places) + said(territory.evidence, lang)


def _territory_words(territory: Territory, vocab: Vocabulary, lang: str) -> str | None:
    """``province di Cremona, Mantova``; None when the call is not restricted."""
    if territory.provinces:
        names = sorted(vocab.provinces[p].name for p in territory.provinces)
        key = "explain.provinces" if len(names) > 1 else "explain.province"
        return catalogue.text(lang, key, names=", ".join(names))
    if territory.regions:
        names = sorted(territory.regions)
        key = "explain.regions" if len(names) > 1 else "explain.region"
        return catalogue.text(lang, key, names=", ".join(names))
    return None


def said(evidence: str, lang: str) -> str:
    """`` («what the call says»)`` in Italian, `` (“…”)`` in English; nothing without words."""
    evidence = evidence.strip()
    if not evidence:
        return ""
    return " (" + catalogue.text(lang, "format.quoted", words=evidence) + ")"


# --- applicants ---------------------------------------------------------------------------------


def _eligibility_sections(vocab: Vocabulary, toks: list[Token]) -> list[tuple[int, int]]:
    """Token ranges of the "who can apply" parts of a description.

    A heading opens a section after it. An inline cue ("riservato alle", "esclusivamente",
    "may apply") marks its sentence, both sides of the cue: the applicant comes after it in
    "è rivolto alle PMI" and before it in "only tourism operators may apply"."""
    marks = sorted(vocab.heading_index.find(toks), key=lambda h: h.start)
    ranges: list[tuple[int, int]] = []
    for n, hit in enumerate(marks):
        if hit.payload == "stop":
            continue
        window = vocab.section_tokens if hit.payload == "heading" else vocab.inline_tokens
        start = hit.end
        end = min(len(toks), hit.end + window)
        for later in marks[n + 1 :]:
            if later.payload in ("stop", "heading") and later.start >= hit.end:
                end = min(end, later.start)
                break
        if hit.payload == "inline":
            for k in range(hit.end, end):
                if toks[k].stem == BOUNDARY:
                    end = k
                    break
            start = hit.start
            while start > 0 and hit.start - start < window and toks[start - 1].stem != BOUNDARY:
                start -= 1
        if end > hit.end or start < hit.start:
            ranges.append((start, end))
    return ranges


def _applicant_hits(
    vocab: Vocabulary, text: str, toks: list[Token], start: int = 0, end: int | None = None
) -> list[tuple[Hit, str, list[Token]]]:
    """Applicant cues in ``toks[start:end]``; denial is judged on the whole text around them
    (a section may start right after "non sono ammesse")."""
    window = toks[start:end]
    out = []
    for h in vocab.applicant_index.find(toks, start, end):
        if _denied(toks, Hit(h.payload, h.start + start, h.end + start)):
            continue
        if _example(text, toks, h.start + start):
            continue
        out.append((h, _span(text, window, h.start, h.end, limit=60), window))
    return out


#: Words that introduce examples of applicants, not a closed list of them: "applicants such as
#: SMEs, start-ups, universities", "gruppi di imprese (tra cui almeno una PMI)". Stop words drop
#: out of token sequences, so these are looked for in the text itself.
_EXAMPLES = re.compile(
    r"\b(?:such as|for example|for instance|e\.\s?g\.|including|in particular|tra cui|tra le quali|"
    r"ad esempio|per esempio|come ad esempio|quali ad esempio|inclus[ei]|compres[ei])\b",
    re.IGNORECASE,
)


def _example(text: str, toks: Sequence[Token], start: int, window: int = 8) -> bool:
    """Whether the applicant at ``toks[start]`` is named as an example, within ``window`` words
    after an example cue in the same sentence."""
    first = start
    while first > 0 and start - first < window and toks[first - 1].stem != BOUNDARY:
        first -= 1
    lead = text[toks[first].start if first < start else toks[start].start : toks[start].start]
    return bool(_EXAMPLES.search(lead))


def _denied(toks: Sequence[Token], hit: Hit) -> bool:
    """Whether the sentence denies or subordinates the applicant it names: "non sono ammesse
    imprese", "escluse le grandi imprese", "SMEs are not eligible", "PMI … solo come fornitrici",
    "sono esclusi i soggetti che operano nel settore alloggio come alberghi"."""
    if _negated(toks, hit.start):
        return True
    k = hit.start - 1
    while k >= 0 and toks[k].stem != BOUNDARY:
        k -= 1
    for j in range(k + 1, min(k + 4, hit.start)):
        # The sentence opens with "(sono invece) esclusi", "are excluded", "except": it denies.
        if _starts(toks[j], _NEGATIONS) and not _starts(toks[j], _RESTRICTIVE):
            return True
    before: list[str] = []
    for k in range(hit.start - 1, max(-1, hit.start - 4), -1):
        if toks[k].stem == BOUNDARY:
            break
        before.append(toks[k].word)
    if any(w in _NOT for w in before):
        return True
    after: list[str] = []
    for token in toks[hit.end : hit.end + 4]:
        if token.stem == BOUNDARY:
            break
        after.append(token.word)
    if any(w in _NOT for w in after[:2]) and any(w.startswith(_ELIGIBLE) for w in after):
        return True
    return any(w in _ONLY for w in after)


#: First words of a sector cue that names a field of activity ("settore turistico"), not a kind
#: of firm ("imprese agricole", "strutture ricettive").
_FIELD_HEADS = (
    "settor", "compart", "filier", "attivit", "commerci", "produzion", "trasformazion", "ristorazion",
    "somministrazion", "ricettivit", "sistem", "sector", "industr",
)  # fmt: skip


def _sector_form(window: Sequence[Token], hit: Hit) -> str:
    return "field" if _starts(window[hit.start], _FIELD_HEADS) else "noun"


def applicants_of(
    call: CallView,
    fields: Mapping[str, FieldText],
    vocab: Vocabulary,
    ateco: tuple[str, ...] | None = None,
    kinds: Mapping[str, str] | None = None,
) -> Applicants:
    """Whom the call admits. Specific company types ("PMI", "startup innovative", "grandi
    imprese") win over words naming firms in general ("imprese", or a source's coarse "Impresa"
    tag), which only count when nothing more specific is said, except in a beneficiary field
    that lists kinds of organisation ("SMEs, startups and enterprises; public-sector
    organisations; research institutions"): there "enterprises" names a kind, every size.
    Applicants named as examples ("such as SMEs", "tra cui almeno una PMI") restrict nothing.

    Eligibility text is read as eligibility, apart from purpose text: the beneficiary field and
    the "who can apply" parts of the description decide when they name applicants; the title
    and summary only when they do not (a summary's "businesses" is often whom a measure helps,
    not who applies), and never for an EU research programme, open to any legal entity unless
    its eligibility text restricts it. The granting body's own name ("Fondazione Cariplo" in
    a title) is not an applicant. Research-career instruments (MSCA, ERC, COST, PRIN) are for
    research bodies (RULES H10)."""
    kinds = kinds if kinds is not None else programme_kind(fields, vocab)
    listed: set[str] = set()
    others: set[str] = set()
    specific: set[str] = set()
    generic: set[str] = set()
    text_sectors: set[str] = set()
    title_sectors: set[str] = set()
    #: In eligibility text, per form ("noun": "imprese agricole"; "field": "settore turistico"):
    #: the reserved sectors named, and whether an open one (manufacturing) is named beside them.
    listed_sectors: dict[str, set[str]] = {"noun": set(), "field": set()}
    listed_open: set[str] = set()
    open_sector = False
    evidence: dict[str, str] = {}

    def collect(hits: list[tuple[Hit, str, list[Token]]], *, structured: bool) -> None:
        nonlocal open_sector
        for n, (hit, said, window) in enumerate(hits):
            kind, value, ben = cast(tuple[str, str, str], hit.payload)
            if kind == "open-sector":
                if structured:
                    listed_open.add(_sector_form(window, hit))
                else:
                    open_sector = True
                continue
            if kind == "sector":
                if structured:
                    listed_sectors[_sector_form(window, hit)].add(value)
                text_sectors.add(value)
                generic.update(COMPANY_TYPES)
                evidence.setdefault(value, said)
                continue
            types = set(value.split(","))
            if structured:
                listed.update(types - COMPANY_TYPES)
                if not ben and types & COMPANY_TYPES:
                    listed.add("*")  # a word for firms in general
            others.update(types - COMPANY_TYPES)
            (specific if ben else generic).update(types & COMPANY_TYPES)
            for t in types:
                evidence.setdefault(t, said)
            if not types & COMPANY_TYPES:
                continue
            if ben == "*" and types >= COMPANY_TYPES:
                open_sector = True  # "imprese di qualsiasi dimensione": every size, every sector
                continue
            if structured:
                continue  # eligibility text: a sector named anywhere in it qualifies its firms
            # "imprese del settore turistico", "PMI operanti nel comparto agricolo": a generic
            # word qualified by a sector right after it is not open to every sector.
            qualified = False
            for later, _, window in hits[n + 1 : n + 3]:
                if later.start - hit.end > 4:
                    break
                # "PMI e imprese agricole" lists two kinds; "PMI del settore agricolo" qualifies.
                if cast(tuple[str, str, str], later.payload)[0] == "sector" and not _starts(
                    window[later.start], _FIRM_NOUNS
                ):
                    qualified = True
                    break
            if not qualified:
                open_sector = True

    funders = [fold(p).strip() for p in re.split(r"[,;/]| e | and ", fields["_granting_body"].text)]

    def hits(f: FieldText, start: int = 0, end: int | None = None) -> list[tuple[Hit, str, list[Token]]]:
        found = _applicant_hits(vocab, f.text, f.tokens, start, end)
        # "Fondazione" of "Fondazione Cariplo" names the funder; "imprese" of "Ministero delle
        # Imprese" does not: only a name the funder's begins with is taken for it.
        return [h for h in found if not any(p and p.startswith(fold(h[1])) for p in funders)]

    ben = fields["_beneficiaries"]
    collect(hits(ben), structured=True)
    desc = fields["description"]
    for start, end in _eligibility_sections(vocab, desc.tokens):
        collect(hits(desc, start, end), structured=False)
    if not (others or specific or generic) and not kinds:
        for name in ("title", "summary"):
            collect(hits(fields[name]), structured=False)
    else:
        # The title still says whom a call targets by sector ("meccanizzazione delle aziende
        # agricole") when the beneficiary field names only a size ("PMI").
        for hit, said, _window in hits(fields["title"]):
            kind, value, _ben = cast(tuple[str, str, str], hit.payload)
            if kind == "sector":
                title_sectors.add(value)
                evidence.setdefault(value, said)
    by_kind = "*" in listed and bool(listed & NON_COMPANY_KINDS)
    admits = others | (specific | generic if by_kind else specific or generic)
    if "careers" in kinds and "firms" not in kinds:
        admits = {"ricerca"}
        evidence["ricerca"] = kinds["careers"]

    if ateco is None:
        ateco = call_ateco(call, fields)
    ateco_sectors = sectors_of_ateco(ateco, vocab) if ateco else frozenset()
    if ateco and not ateco_sectors_cover(ateco, ateco_sectors, vocab):
        ateco_sectors = frozenset()
    if ateco_sectors:
        sectors = ateco_sectors
        for s in ateco_sectors:
            evidence.setdefault(s, "ATECO " + ", ".join(ateco[:4]) + ("…" if len(ateco) > 4 else ""))
    else:
        # A list of admitted activities that includes manufacturing is no reservation: "settore
        # manifatturiero e/o turistico" (fields), "impresa artigiana / manifatturiera / edile"
        # (kinds of firm); "imprese artigiane attive nei settori manifatturiero …" still is.
        if any(listed_sectors.values()) and not open_sector:
            reserved = {s for form, found in listed_sectors.items() if form not in listed_open for s in found}
        else:
            reserved = set() if open_sector else text_sectors
        sectors = frozenset(title_sectors or reserved)
    return Applicants(admits=frozenset(admits), sectors=sectors, evidence=evidence)


# --- ATECO ------------------------------------------------------------------------------------


def normalised_ateco(codes: Iterable[str]) -> tuple[str, ...]:
    """The call's codes as ``"20.42"`` / ``"13"`` (``"13.00"`` is the whole division); empty
    when the source says every sector. Splits "20.42; 22.22" lists."""
    out: list[str] = []
    for raw in codes:
        for part in str(raw).replace(",", ";").split(";"):
            part = part.strip()
            if not part:
                continue
            if not part[0].isdigit():
                return ()  # "Tutti i settori economici"
            pieces = [p for p in part.split(".") if p]
            if not all(p.isdigit() for p in pieces):
                continue
            while len(pieces) > 1 and int(pieces[-1]) == 0:
                pieces.pop()
            code = ".".join(pieces)
            if code not in out:
                out.append(code)
    return tuple(out)


_ATECO_CONTEXT = re.compile(r"\b(?:ateco|codic[ei])\b(.{0,400}?)(?:\.\s|\n|$)", re.IGNORECASE | re.DOTALL)
_ATECO_CODE = re.compile(r"(?<![\d.,])(?:[A-U][\s-]?)?(\d{2}(?:\.\d{1,2}){0,2})(?![\d,])")


def ateco_in_text(text: str) -> tuple[str, ...]:
    """ATECO codes an eligibility text lists ("codici ATECO C-10 e C-11", "(ATECO 56.29;
    55.90)"), as :func:`normalised_ateco` gives them; section letters alone ("C, F, H") are not
    codes. Only the words after "ATECO" or "codici" in one sentence are read."""
    codes: list[str] = []
    for m in _ATECO_CONTEXT.finditer(text):
        codes.extend(c.group(1) for c in _ATECO_CODE.finditer(m.group(1)))
    return normalised_ateco(codes)


def call_ateco(call: CallView, fields: Mapping[str, FieldText]) -> tuple[str, ...]:
    """The call's admitted ATECO codes: the source's field, else those its eligibility text lists."""
    return _normalised_field(tuple(call.ateco_codes)) or ateco_in_text(fields["_beneficiaries"].text)


@lru_cache(maxsize=4096)
def _normalised_field(codes: tuple[str, ...]) -> tuple[str, ...]:
    """:func:`normalised_ateco` of a source's field: sources repeat the same lists."""
    return normalised_ateco(codes)


@lru_cache(maxsize=65_536)
def ateco_agrees(a: str, b: str) -> bool:
    """Codes agree when one contains the other ("20" and "20.42", "20.4" and "20.42")."""
    pa, pb = a.split("."), b.split(".")
    n = min(len(pa), len(pb))
    return pa[:n] == pb[:n]


def member_sectors(ateco: Iterable[str], words: Iterable[str], vocab: Vocabulary) -> frozenset[str]:
    """The applicant sectors a member belongs to: by its ATECO codes, and by its own words for
    sectors no code tells apart ("impresa artigiana")."""
    folded = [fold(w) for w in words]
    own = {
        s.id
        for s in vocab.applicant_sectors.values()
        if s.self_cues and any(cue in w for cue in s.self_cues for w in folded)
    }
    return sectors_of_ateco(ateco, vocab) | own


def sectors_of_ateco(codes: Iterable[str], vocab: Vocabulary) -> frozenset[str]:
    out = set()
    for code in codes:
        division = code.split(".")[0]
        for sector in vocab.applicant_sectors.values():
            if division in sector.ateco:
                out.add(sector.id)
    return frozenset(out)


def ateco_sectors_cover(codes: Sequence[str], sectors: frozenset[str], vocab: Vocabulary) -> bool:
    """Whether every code falls in one of ``sectors`` (then the list reserves the call)."""
    divisions = {a for s in sectors for a in vocab.applicant_sectors[s].ateco}
    return bool(codes) and all(code.split(".")[0] in divisions for code in codes)


# --- other sector -----------------------------------------------------------------------------


def other_sector_of(fields: Mapping[str, FieldText], vocab: Vocabulary) -> tuple[str, str] | None:
    """The sector a call is about when it is not the cosmetics chain: named in its title or,
    twice, in the source's own tags; a sector mentioned in the summary is a mention, not the
    subject ("tutti i settori, inclusa l'agricoltura"; RULES B4)."""
    for name in FIELDS:
        f = fields[name]
        if vocab.anchor_index.find_all(f.tokens):
            return None
    title = fields["title"]
    for hit in vocab.sector_index.find(title.tokens):
        if not _negated(title.tokens, hit.start):
            return str(hit.payload), _span(title.text, title.tokens, hit.start, hit.end)
    tags = fields["keywords"]
    seen: dict[str, str] = {}
    count: dict[str, int] = {}
    for hit in vocab.sector_index.find(tags.tokens):
        if _negated(tags.tokens, hit.start):
            continue
        sid = str(hit.payload)
        seen.setdefault(sid, _span(tags.text, tags.tokens, hit.start, hit.end))
        count[sid] = count.get(sid, 0) + 1
    if sum(count.values()) >= 2:
        best = max(count, key=lambda s: count[s])
        return best, seen[best]
    return None


def programme_kind(fields: Mapping[str, FieldText], vocab: Vocabulary) -> dict[str, str]:
    """What the programme, title and beneficiary field say of the kind of call: the words
    for "thematic" (a thematic R&I work programme), "open" (open to any field), "firms" (an
    instrument open to any field that funds firms), "careers" (research careers), when said."""
    found: dict[str, str] = {}
    for name in ("programme", "title", "_beneficiaries"):
        f = fields[name]
        for hit in vocab.purpose_index.find(f.tokens):
            found.setdefault(str(hit.payload), _span(f.text, f.tokens, hit.start, hit.end))
    return found


def thematic_of(kinds: Mapping[str, str]) -> str | None:
    """The words that make the call a topic of a thematic R&I work programme (RULES B3), or
    None: for an instrument open to any field, or a call of no such programme."""
    if kinds.keys() & {"open", "careers", "firms"}:
        return None
    return kinds.get("thematic")


# --- topics -----------------------------------------------------------------------------------


def topic_evidence(
    fields: Mapping[str, FieldText],
    vocab: Vocabulary,
    weights: Mapping[str, float],
    weak_weight: float,
    repeat_weight: float = 0.0,
) -> dict[str, tuple[TopicEvidence, ...]]:
    """Per topic, each distinct term found (identified by its words): its best field, and a
    weight of that field's plus ``repeat_weight`` of every further field it appears in."""
    found: dict[tuple[str, tuple[str, ...]], dict[str, tuple[str, str]]] = {}
    for name in FIELDS:
        if not weights[name]:
            continue  # a field that says nothing of the call's purpose (the programme's name)
        f = fields[name]
        for hit in vocab.topic_index.find(f.tokens):
            kind, topic, strength = cast(tuple[str, str, str], hit.payload)
            if kind != "topic":
                continue
            key = (topic, tuple(t.stem for t in f.tokens[hit.start : hit.end]))
            per_field = found.setdefault(key, {})
            if name not in per_field or (per_field[name][0] == "weak" and strength != "weak"):
                per_field[name] = (strength, _span(f.text, f.tokens, hit.start, hit.end, limit=60))
    out: dict[str, list[TopicEvidence]] = {}
    for (topic, _words), per_field in found.items():
        scored = sorted(
            (weights[name] * (weak_weight if strength == "weak" else 1.0), name, strength, said)
            for name, (strength, said) in per_field.items()
        )
        best_weight, best_field, best_strength, best_said = scored[-1]
        weight = best_weight + repeat_weight * sum(w for w, *_ in scored[:-1])
        out.setdefault(topic, []).append(TopicEvidence(topic, best_strength, best_field, best_said, weight))
    return {t: tuple(sorted(evs, key=lambda e: -e.weight)) for t, evs in out.items()}


def call_facts(
    call: CallView,
    *,
    now: datetime,
    vocab: Vocabulary,
    weights: Mapping[str, float],
    weak_weight: float,
    max_description: int,
    repeat_weight: float = 0.0,
    indexes: Mapping[str, Sequence[PhraseIndex]] | None = None,
) -> CallFacts:
    """What ``call`` says of itself; ``indexes``: more phrase indexes to read each field with
    in the same pass (a matcher's keywords and exclusions)."""
    fields = field_texts(call, max_description=max_description, vocab=vocab, indexes=indexes)
    kinds = programme_kind(fields, vocab)
    budget = call.contribution_max if call.contribution_max is not None else call.budget_total
    ateco = call_ateco(call, fields)
    return CallFacts(
        fields=fields,
        unavailable=availability(call, now),
        budget=budget,
        territory=territory_of(call, fields, vocab),
        applicants=applicants_of(call, fields, vocab, ateco, kinds),
        ateco=ateco,
        other_sector=other_sector_of(fields, vocab),
        thematic=thematic_of(kinds),
        topics=topic_evidence(fields, vocab, weights, weak_weight, repeat_weight),
    )
