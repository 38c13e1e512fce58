"""Text normalisation for matching: tokens, light Italian/English stemming, phrase search.

Calls and profiles meet on *token sequences*. A text is split into word tokens (offsets into the
cleaned text are kept, so a match can quote what the call really says); each token is folded
(case, accents) and lightly stemmed, stop words are dropped and punctuation that ends a sentence
becomes a boundary no phrase may cross. A term such as "plastica riciclata" or "ricicl*" is
compiled the same way into a sequence of *matchers*: a stem that must be equal, or a prefix
(a trailing ``*``) that the folded word must start with.

:class:`PhraseIndex` finds every compiled term in a token sequence in one pass: terms are indexed
by their first matcher, so the cost grows with the text, not with the number of terms. Overlaps
are resolved leftmost-longest, so "credito d'imposta" hides the "credito" inside it.

Known limits: stemming is deliberately light (plural and gender endings, English plural ``-s``);
verb forms are not conflated ("riciclare" ≠ "riciclato": the vocabulary uses prefixes for that).
There is no translation: Italian and English terms are listed side by side in the vocabulary.
Boundaries are put at ``. ; : ! ? |`` and line breaks, not at commas (lists of places or
beneficiaries are written with commas).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Any, NamedTuple

#: Marks a sentence boundary in a token sequence; no term can match across it.
BOUNDARY = "\x00"

_TAG = re.compile(r"<[^>]{0,2000}>")
#: Numbers with separators stay whole ("4.0", "20.42", "1.500.000,00"); words may be joined by
#: "-" or "&" ("e-commerce", "R&S"); the rest of the pattern are sentence boundaries.
_WORD = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+(?:[-&][^\W_]+)*|[.;:!?|\n]", re.UNICODE)
_BOUNDARY_CHARS = frozenset(".;:!?|\n")
#: The same words, captured: ``split`` gives gap, word, gap, word ... gap.
_SPLIT = re.compile(f"({_WORD.pattern})", re.UNICODE)


def _raw_words(text: str) -> Iterable[tuple[str, int, int]]:
    """``(raw word, start, end)`` of each word, ``(BOUNDARY, start, end)`` at a boundary.

    A compound with "&" is one word ("R&S" → "RS"); a hyphenated one is one word when a part
    is a single letter or two ("e-commerce", "make-up", "start-up"), else its parts
    ("Cremona-Mantova-Pavia", "bio-based").
    """
    for m in _WORD.finditer(text):
        raw = m.group()
        if raw in _BOUNDARY_CHARS:
            yield BOUNDARY, m.start(), m.end()
        elif "&" in raw:
            yield raw.replace("&", "").replace("-", ""), m.start(), m.end()
        elif "-" in raw:
            parts = raw.split("-")
            if any(len(p) <= 2 for p in parts):
                yield "".join(parts), m.start(), m.end()
            else:
                pos = m.start()
                for part in parts:
                    yield part, pos, pos + len(part)
                    pos += len(part) + 1
        else:
            yield raw, m.start(), m.end()


#: Function words of Italian and English; they carry no topic and break phrase matching
#: ("piccole e medie imprese" vs "piccole medie imprese"), so they are dropped on both sides.
#: Negations ("non", "not", "no") are kept: eligibility rules read them.
STOPWORDS = frozenset(
    [
        "il",
        "lo",
        "la",
        "i",
        "gli",
        "le",
        "l",
        "un",
        "uno",
        "una",
        "un",
        "d",
        "di",
        "a",
        "da",
        "in",
        "con",
        "su",
        "per",
        "tra",
        "fra",
        "e",
        "ed",
        "o",
        "od",
        "ne",
        "del",
        "dello",
        "della",
        "dei",
        "degli",
        "delle",
        "dell",
        "al",
        "allo",
        "alla",
        "ai",
        "agli",
        "alle",
        "all",
        "dal",
        "dallo",
        "dalla",
        "dai",
        "dagli",
        "dalle",
        "dall",
        "nel",
        "nello",
        "nella",
        "nei",
        "negli",
        "nelle",
        "nell",
        "sul",
        "sullo",
        "sulla",
        "sui",
        "sugli",
        "sulle",
        "sull",
        "col",
        "coi",
        "che",
        "cui",
        "chi",
        "quale",
        "quali",
        "come",
        "anche",
        "piu",
        "o",
        "oppure",
        "sia",
        "ovvero",
        "ossia",
        "nonche",
        "questo",
        "questa",
        "questi",
        "queste",
        "quello",
        "quella",
        "quelli",
        "quelle",
        "quest",
        "quell",
        "essere",
        "e",
        "sono",
        "stato",
        "stata",
        "stati",
        "state",
        "ha",
        "hanno",
        "sara",
        "suo",
        "sua",
        "suoi",
        "sue",
        "loro",
        "proprio",
        "propria",
        "propri",
        "proprie",
        "ogni",
        "tutto",
        "tutti",
        "tutte",
        "tutta",
        "altro",
        "altri",
        "altre",
        "altra",
        "the",
        "a",
        "an",
        "of",
        "and",
        "or",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "be",
        "been",
        "was",
        "were",
        "this",
        "that",
        "these",
        "those",
        "its",
        "their",
        "it",
        "into",
        "than",
        "such",
        "which",
        "who",
        "whom",
        "whose",
        "nor",
        "also",
        "via",
        "per",
    ]
)


@lru_cache(maxsize=100_000)
def fold(text: str) -> str:
    """Lower case without accents: ``"Attività"`` → ``"attivita"``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def clean(text: str) -> str:
    """Markup removed and entities decoded (scraped fields may still carry HTML)."""
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return text


_VOWELS = frozenset("aeiouy")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """A light stem of one folded word, shared by Italian and English.

    English plural ``-s``/``-ies`` goes first, then one final vowel (Italian gender and number:
    imballaggio/imballaggi → imballagg, cosmetici/cosmetics → cosmetic); ``-chi/-che`` and
    ``-ghi/-ghe`` keep their hard sound (bianchi → bianc, like bianco). Short words and
    numbers are kept whole.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 4:
        if word.endswith(("che", "chi", "ghe", "ghi")):
            return word[:-2]
        if word[-1] in _VOWELS:
            word = word[:-1]
            # "-io/-ia": "ingredient" stays, but "energia" → "energ" like "energie"/"energy".
            if word.endswith("i") and len(word) > 4:
                word = word[:-1]
    return word


class Token(NamedTuple):
    """One word of a text: its stem, its folded form and where it stands in the cleaned text.

    A named tuple, not a dataclass: millions are made per matching run and tuples are built
    several times faster than frozen dataclasses."""

    stem: str
    word: str
    start: int
    end: int


@lru_cache(maxsize=200_000)
def _analyse_word(raw: str) -> tuple[str, str] | None:
    word = fold(raw)
    if word in STOPWORDS:
        return None
    # Italian elisions ("dell'", "l'") are split off by the tokenizer and dropped as stop words;
    # the same for stray single letters except digits ("4.0" → "4", "0").
    if len(word) == 1 and not word.isdigit():
        return None
    return stem(word), word


#: raw match of ``_WORD`` → its parts as ``(stem, word, start offset, end offset)``, or None
#: for a boundary. Words repeat a lot; a plain dict beats re-analysing each occurrence.
_RAW_CACHE: dict[str, tuple[tuple[str, str, int, int], ...] | None] = {}


_MISSING: Any = object()


def _parts(raw: str) -> tuple[tuple[str, str, int, int], ...] | None:
    parts: list[tuple[str, str, int, int]] = []
    result: tuple[tuple[str, str, int, int], ...] | None
    if raw in _BOUNDARY_CHARS:
        result = None
    else:
        for word, start, end in _raw_words(raw):
            analysed = _analyse_word(word)
            if analysed is not None:
                parts.append((analysed[0], analysed[1], start, end))
        result = tuple(parts)
    if len(_RAW_CACHE) > 200_000:
        _RAW_CACHE.clear()
        _SIMPLE.clear()
    _RAW_CACHE[raw] = result
    if result == ():
        _SIMPLE[raw] = ()
    elif result is not None and len(result) == 1 and result[0][2:] == (0, len(raw)):
        _SIMPLE[raw] = (result[0][0], result[0][1], len(raw))
    return result


#: The usual raw words, told apart at one probe: a word that is one token as a whole →
#: ``(stem, word, length)``; a stop word → ``()``. Others (boundaries, compounds) are absent.
_SIMPLE: dict[str, tuple[str, str, int] | tuple[()]] = {}


def tokens(text: str, *, limit: int | None = None) -> Tokens:
    """The token sequence of ``text`` (already :func:`clean`), at most ``limit`` characters read."""
    if limit is not None and len(text) > limit:
        text = text[:limit]
    # One split gives the words and the gaps between them, so offsets are running lengths.
    pieces = _SPLIT.split(text)
    words = pieces[1::2]
    starts = list(accumulate(map(len, pieces)))[:-1:2]
    out = Tokens()
    append = out.append
    new = tuple.__new__
    last_boundary = True
    cache_get = _RAW_CACHE.get
    missing = _MISSING
    for raw, simple, base in zip(words, map(_SIMPLE.get, words), starts, strict=True):
        if simple:
            append(new(Token, (simple[0], simple[1], base, base + simple[2])))
            last_boundary = False
            continue
        if simple is not None:
            continue  # a stop word
        parts = cache_get(raw, missing)
        if parts is missing:
            parts = _parts(raw)
        if parts is None:
            if not last_boundary:
                append(new(Token, (BOUNDARY, BOUNDARY, base, base + len(raw))))
                last_boundary = True
            continue
        if parts:
            for stem_, word, start, end in parts:
                append(new(Token, (stem_, word, base + start, base + end)))
            last_boundary = False
    return out


def analyse(text: str, *, limit: int | None = None) -> tuple[str, Tokens]:
    """``(cleaned text, tokens)``: the cleaned text is what token offsets point into."""
    cleaned = clean(text)
    return cleaned, tokens(cleaned, limit=limit)


# --- compiled terms and the phrase index ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Matcher:
    """One position of a term: an exact stem, or a prefix of the folded word (``ricicl*``)."""

    value: str
    prefix: bool = False

    def accepts(self, token: Token) -> bool:
        if token.stem == BOUNDARY:
            return False
        if self.prefix:
            return token.word.startswith(self.value)
        return token.stem == self.value


Term = tuple[Matcher, ...]


class TermError(ValueError):
    """A term that cannot be matched (empty after normalisation, a prefix too short)."""


def compile_term(text: str) -> Term:
    """Compile a vocabulary term or a member's keyword into matchers.

    Words are normalised like call text; a trailing ``*`` makes a word a prefix (at least three
    letters, or it would match half the dictionary). Stop words inside a phrase are dropped on
    both sides, so "piccole e medie imprese" matches "piccole medie imprese".
    """
    out: list[Matcher] = []
    text = clean(text)
    for raw, _start, end in _raw_words(text):
        if raw == BOUNDARY:
            continue
        if text[end : end + 1] == "*":
            word = fold(raw)
            if len(word) < 3:
                raise TermError(f"prefix {raw + '*'!r} is too short (three letters at least)")
            out.append(Matcher(word, prefix=True))
            continue
        analysed = _analyse_word(raw)
        if analysed is None:
            continue
        out.append(Matcher(analysed[0]))
    if not out:
        raise TermError(f"{text!r} has no word that can be matched")
    return tuple(out)


class Hit(NamedTuple):
    """A term found in a token sequence: token positions ``[start, end)`` and the payload."""

    payload: Hashable
    start: int
    end: int

    def surface(self, text: str, toks: Sequence[Token]) -> str:
        """What the text really says there (original case and accents)."""
        return text[toks[self.start].start : toks[self.end - 1].end]


#: A term as a phrase index keeps it: payload, number of words, and the matchers after the
#: first as ``(value, is a prefix)``.
_Entry = tuple[Hashable, int, tuple[tuple[str, bool], ...]]


class Tokens(list[Token]):
    """A token sequence (:func:`tokens`) that keeps what each phrase index found in it, so
    every index reads a text once however many times it is asked (:meth:`PhraseIndex.find`
    with a window filters the whole text's hits), and :func:`search` reads it once for
    several indexes."""

    __slots__ = ("found",)

    def __init__(self, items: Iterable[Token] = ()) -> None:
        super().__init__(items)
        self.found: dict[PhraseIndex, list[Hit]] = {}


class PhraseIndex:
    """Many terms, each with a payload, found in a token sequence in one pass.

    Terms are keyed by their first matcher: exact stems in a dict, prefixes in a dict by length,
    so a lookup per token costs a few dict probes whatever the number of terms. The same term
    may carry several payloads (a word in two topics).
    """

    def __init__(self) -> None:
        self._exact: dict[str, list[_Entry]] = {}
        self._prefix: dict[int, dict[str, list[_Entry]]] = {}
        self._seen: set[tuple[Term, Hashable]] = set()
        self._size = 0
        #: Changes with every term added: searches over several indexes (:func:`search`)
        #: forget what they memoised.
        self.version = 0
        #: folded word → candidate terms (the stem is a function of the word): words repeat a
        #: lot, so the dict and prefix probes are paid once per word, not once per occurrence.
        self._memo: dict[str, tuple[_Entry, ...]] = {}

    def __len__(self) -> int:
        return self._size

    def add(self, term: Term, payload: Hashable) -> None:
        """Index ``term`` with ``payload``; adding the same pair twice is a no-op."""
        if (term, payload) in self._seen:
            return
        self._seen.add((term, payload))
        self._memo.clear()
        self.version += 1
        first = term[0]
        entry = (payload, len(term), tuple((m.value, m.prefix) for m in term[1:]))
        if first.prefix:
            bucket = self._prefix.setdefault(len(first.value), {})
            bucket.setdefault(first.value, []).append(entry)
        else:
            self._exact.setdefault(first.value, []).append(entry)
        self._size += 1

    def _candidates(self, token: Token) -> tuple[_Entry, ...]:
        key = token.word
        found = self._memo.get(key)
        if found is not None:
            return found
        out: list[_Entry] = []
        if token.stem != BOUNDARY:
            out.extend(self._exact.get(token.stem, ()))
            word = token.word
            for length, bucket in self._prefix.items():
                if len(word) >= length:
                    more = bucket.get(word[:length])
                    if more:
                        out.extend(more)
        if len(self._memo) > 100_000:
            self._memo.clear()
        result = self._memo[key] = tuple(out)
        return result

    def _scan(self, toks: Sequence[Token]) -> list[Hit]:
        hits: list[Hit] = []
        memo = self._memo
        for i, token in enumerate(toks):
            found = memo.get(token.word)
            if found is None:
                found = self._candidates(token)
            if found:
                _check(found, toks, i, hits)
        return hits

    def find_all(self, toks: Sequence[Token], start: int = 0, end: int | None = None) -> list[Hit]:
        """Every occurrence of every term, overlapping ones included; with ``start``/``end``,
        those in ``toks[start:end]``, at positions in that window."""
        found = getattr(toks, "found", None)
        if found is None:
            return self._scan(toks[start:end] if start or end is not None else toks)
        hits = found.get(self)
        if hits is None:
            hits = found[self] = self._scan(toks)
        if not start and end is None:
            return list(hits)
        stop = len(toks) if end is None else end
        new = tuple.__new__
        return [new(Hit, (h[0], h[1] - start, h[2] - start)) for h in hits if h[1] >= start and h[2] <= stop]

    def find(self, toks: Sequence[Token], start: int = 0, end: int | None = None) -> list[Hit]:
        """Occurrences resolved leftmost-longest: a hit inside a longer hit is dropped.

        Every payload of the winning term is kept (one term may belong to several topics).
        ``start``/``end`` as for :meth:`find_all`.
        """
        hits = self.find_all(toks, start, end)
        if not hits:
            return hits
        hits.sort(key=lambda h: (h.start, -(h.end - h.start)))
        kept: list[Hit] = []
        covered_until = -1
        span: tuple[int, int] | None = None
        for hit in hits:
            if span is not None and (hit.start, hit.end) == span:
                kept.append(hit)
                continue
            if hit.start < covered_until:
                continue
            kept.append(hit)
            span = (hit.start, hit.end)
            covered_until = hit.end
        return kept


def _check(entries: tuple[_Entry, ...], toks: Sequence[Token], i: int, hits: list[Hit]) -> None:
    """Append to ``hits`` the terms of ``entries`` that start at ``toks[i]`` (their first word
    matches there) and whose further words follow."""
    n = len(toks)
    new = tuple.__new__
    for payload, size, tail in entries:
        if size > 1:
            if i + size > n:
                continue
            k = i
            for value, prefix in tail:
                k += 1
                # A boundary's stem and word ("\x00") match no term.
                if not (toks[k][1].startswith(value) if prefix else toks[k][0] == value):
                    break
            else:
                hits.append(new(Hit, (payload, i, i + size)))
        else:
            hits.append(new(Hit, (payload, i, i + 1)))


#: indexes searched together → (their versions, folded word → ``(index number, *entry)`` ...).
_SEARCH_MEMO: dict[tuple[PhraseIndex, ...], tuple[tuple[int, ...], dict[str, Any]]] = {}


def search(toks: Sequence[Token], indexes: Sequence[PhraseIndex]) -> None:
    """Read ``toks`` once for all ``indexes``: what :meth:`PhraseIndex.find` then gives for
    each is kept in the token sequence (a :class:`Tokens`; other sequences are left alone)."""
    found = getattr(toks, "found", None)
    if found is None:
        return
    todo = tuple(dict.fromkeys(index for index in indexes if index not in found))
    if len(todo) < 2:
        return
    versions = tuple(index.version for index in todo)
    cached = _SEARCH_MEMO.get(todo)
    if cached is None or cached[0] != versions or len(cached[1]) > 100_000:
        if len(_SEARCH_MEMO) > 64:
            _SEARCH_MEMO.clear()
        cached = _SEARCH_MEMO[todo] = (versions, {})
    memo = cached[1]
    out: list[list[Hit]] = [[] for _ in todo]
    n = len(toks)
    new = tuple.__new__
    # What _check does, for the terms of every index at once.
    for i, token in enumerate(toks):
        entries = memo.get(token.word)
        if entries is None:
            entries = memo[token.word] = tuple(
                (k, *entry) for k, index in enumerate(todo) for entry in index._candidates(token)
            )
        for k, payload, size, tail in entries:
            if size > 1:
                if i + size > n:
                    continue
                j = i
                for value, prefix in tail:
                    j += 1
                    if not (toks[j][1].startswith(value) if prefix else toks[j][0] == value):
                        break
                else:
                    out[k].append(new(Hit, (payload, i, i + size)))
            else:
                out[k].append(new(Hit, (payload, i, i + 1)))
    for index, hits in zip(todo, out, strict=True):
        found[index] = hits


def find_in(index: PhraseIndex, text: str, *, limit: int | None = None) -> list[tuple[Hashable, str]]:
    """Convenience for tests and one-off checks: ``(payload, surface)`` of each resolved hit."""
    cleaned, toks = analyse(text, limit=limit)
    return [(h.payload, h.surface(cleaned, toks)) for h in index.find(toks)]
