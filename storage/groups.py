"""Duplicate groups: the same call published on several portals is one group with one canonical
record, so a member gets one alert per group, not one per portal.

Every call belongs to a group; ingest gives a new call its own group unless the rule below
says it is a call already stored from ANOTHER source, in which case it joins that call's group.

The rule (evaluated when a call is first stored, in this order):

1. **Shared link.** Links are normalised by :func:`link_key` (no scheme, no ``www.``, lower-case
   host, no fragment, no trailing slash, tracking parameters such as ``utm_*`` dropped, other
   query parameters sorted). Two calls match when one's *own* page (its ``url``) is the other's
   own page or one of the other's ``links``: incentivi.gov.it links to the regional page of the
   measure, and that page is the Bandi e Servizi call's own URL. Two calls that merely point to
   the same third page do NOT match (aggregators often point many measures at one landing page:
   the sample's two Bolzano measures share ``.../turismo/default.asp``). Bare host names (a
   body's home page) and non-web links (``mailto:``) are never keys.
2. **Same title, body and closing date.** Equal :func:`title_key` (accents, case, punctuation
   and a leading or trailing region name such as "- Regione Lombardia" removed; at least two
   words), compatible granting bodies (:func:`bodies_compatible`: one empty, or one's words
   contained in the other's, or a distinctive word shared) and the same closing day in
   Europe/Rome (one day of slack absorbs a date-only value stored as UTC midnight), or both
   open-ended.

A group holds at most one call per source: two records of one portal are two calls, even when
they look alike (they are distinct entries there). Its canonical record is the member from the
most primary source, ordered by ``priority`` (default :data:`DEFAULT_SOURCE_PRIORITY`: the
granting body's own portal before aggregators; sources not listed come after, ties go to the
first stored).

Known failure modes:

* Titles reworded between portals (a programme prefix, an abbreviation, a typo) with no shared
  link are not joined: two alerts for one call. Members can answer "not for us" to one.
* Generic titles ("Bando 2026") of the same body closing the same day would be joined wrongly;
  the two-word minimum and the body check make this rare, not impossible.
* A call whose *own* URL is a page shared by several measures (a feed item pointing at a
  programme page) joins whichever other-source call links that page first.
* Links differing only in percent-encoding or in path case are different keys.
* Groups are formed when a call is first stored and never split or merged later: a call whose
  title or link changes afterwards keeps its group; a call matching two groups joins the first
  (link before title) without merging them.
* Two processes storing the two halves of a pair at the same moment are serialised (SQLite's
  write lock, a PostgreSQL advisory lock in ingest), so this race is closed as long as every
  writer goes through :func:`storage.ingest.ingest`.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from storage._bulk import chunks
from storage.models import Call, CallLink, DuplicateGroup
from storage.records import ROME

#: Primary portals first (the granting body's own), aggregators last.
DEFAULT_SOURCE_PRIORITY: tuple[str, ...] = ("lombardia", "sedia", "manual", "incentivi")

MAX_KEY = 500

_NON_WORD = re.compile(r"[\W_]+")
#: Combining marks (the accents NFKD splits off letters).
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_URL = re.compile(
    r"(?:[A-Za-z][A-Za-z0-9+.\-]*:)?//(?:[^@/?#]*@)?([^/?#:]*)(?::(\d*))?([^?#]*)(?:\?([^#]*))?"
)
_SLASHES = re.compile(r"/{2,}")
_NOT_WEB = re.compile(r"(?i)(mailto|tel|javascript|data|urn|news|file):")
_TRACKING = re.compile(r"^(utm_.*|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|_ga|_gl|yclid|igshid|ref|source)$")

_REGIONS = (
    "abruzzo basilicata calabria campania emilia romagna friuli venezia giulia fvg lazio liguria "
    "lombardia marche molise piemonte puglia sardegna sicilia toscana trentino alto adige "
    "umbria valle d aosta veneto bolzano trento"
)
_REGION_WORDS = frozenset(_REGIONS.split())
_DASH = re.compile(r"\s+[-–—]\s+")
_REGION_TITLES = frozenset({"regione", "provincia", "autonoma", "di", "della", "pa"})

#: Words too common in Italian public bodies' names to tell two bodies apart.
_GENERIC_BODY_WORDS = frozenset(
    [
        "regione",
        "provincia",
        "autonoma",
        "comune",
        "ministero",
        "direzione",
        "generale",
        "dipartimento",
        "servizio",
        "area",
        "funzionale",
        "agenzia",
        "camera",
        "commercio",
        "industria",
        "artigianato",
        "agricoltura",
        "ente",
        "nazionale",
        "italiana",
        "italia",
        "della",
        "delle",
        "dello",
        "degli",
        "dell",
        "del",
        "di",
        "da",
        "per",
        "e",
        "ed",
        "la",
        "il",
        "lo",
        "le",
        "gli",
        "spa",
        "srl",
        "sviluppo",
        "economico",
        "ufficio",
        "settore",
        "unita",
        "organizzativa",
        "struttura",
    ]
)


def fold(text: str) -> str:
    """Lower case, accents removed, every run of non-word characters one space."""
    if text.isascii():
        return _NON_WORD.sub(" ", text.lower()).strip()
    # Regular expressions rather than a per-character loop: descriptions run to 100,000 characters.
    stripped = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    return _NON_WORD.sub(" ", stripped.casefold()).strip()


def _strip_region_affix(folded_with_dashes: str) -> str:
    parts = _DASH.split(folded_with_dashes)
    if len(parts) < 2:
        return folded_with_dashes

    def is_region(part: str) -> bool:
        words = _NON_WORD.sub(" ", part).split()
        if len(words) > 6:
            return False
        named = [w for w in words if w not in _REGION_TITLES]
        return bool(named) and all(w in _REGION_WORDS for w in named)

    if is_region(parts[-1]):
        parts = parts[:-1]
    elif is_region(parts[0]):
        parts = parts[1:]
    return " - ".join(parts)


def title_key(title: str) -> str:
    """The normalised title used by rule 2 (empty when too short to be trusted)."""
    text = title.casefold()
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    text = _strip_region_affix(text.strip())
    key = _NON_WORD.sub(" ", text).strip()
    return key[:255] if len(key.split()) >= 2 else ""


def link_key(url: str) -> str:
    """A link normalised so that the same page written two ways gives the same key ("" if none)."""
    url = url.strip()
    if _NOT_WEB.match(url):
        return ""
    match = _URL.match(url if "//" in url else "//" + url)
    if match is None:
        return ""
    host, port, path, query = match.groups()
    host = host.lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    if not host:
        return ""
    key = (
        host
        + (f":{port}" if port and port not in ("80", "443") else "")
        + _SLASHES.sub("/", path).rstrip("/")
    )
    if query:
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if not _TRACKING.match(k.lower())]
        if kept:
            key += "?" + urlencode(sorted(kept))
    return key[:MAX_KEY]


def call_link_keys(url: str, links: Iterable[str]) -> dict[str, bool]:
    """Every link key of a call mapped to whether it is the call's own page. Bare host names
    (a body's home page) are left out: they say nothing about which call a page is."""
    keys: dict[str, bool] = {}
    for link in links:
        key = link_key(link)
        if "/" in key:
            keys[key] = False
    own = link_key(url)
    if "/" in own:
        keys[own] = True
    return keys


def bodies_compatible(a: str, b: str) -> bool:
    """Whether two granting bodies may be the same (rule 2): lenient, because portals name the
    same office differently ("Regione Lombardia" vs "Regione Lombardia - DG Sviluppo economico")."""
    wa, wb = set(fold(a).split()), set(fold(b).split())
    if not wa or not wb or wa <= wb or wb <= wa:
        return True
    distinctive = (wa & wb) - _GENERIC_BODY_WORDS
    return any(len(w) >= 3 for w in distinctive)


def same_closing(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a.astimezone(ROME).date() - b.astimezone(ROME).date()) <= timedelta(days=1)


def source_rank(source: str, priority: Sequence[str] = DEFAULT_SOURCE_PRIORITY) -> int:
    try:
        return priority.index(source)
    except ValueError:
        return len(priority)


def choose_canonical(
    members: Iterable[tuple[int, str]], priority: Sequence[str] = DEFAULT_SOURCE_PRIORITY
) -> int:
    """The canonical call id among ``(call_id, source)`` pairs: most primary source, then oldest."""
    return min(members, key=lambda m: (source_rank(m[1], priority), m[0]))[0]


# --- assignment at ingest ---------------------------------------------------------------------


_CALLS = cast(Table, Call.__table__)
_LINKS = cast(Table, CallLink.__table__)
_GROUPS = cast(Table, DuplicateGroup.__table__)


@dataclass(frozen=True, slots=True)
class NewCall:
    """What the rule needs of a call just inserted (in the same transaction)."""

    id: int
    source: str
    link_keys: Mapping[str, bool]
    title_key: str
    granting_body: str
    closes: datetime | None


@dataclass(slots=True)
class _Candidate:
    """A stored call of another source that a new call may join."""

    id: int
    group_id: int | None


def assign_groups(
    conn: Connection,
    calls: Sequence[NewCall],
    *,
    now: datetime,
    priority: Sequence[str] = DEFAULT_SOURCE_PRIORITY,
) -> dict[int, int]:
    """Put every call of ``calls`` (inserted, group still empty) into a group; returns call → group.

    Runs inside the ingest transaction, after the calls and their links are inserted, so calls
    of the same batch can find each other.
    """
    calls_t, links_t, groups_t = _CALLS, _LINKS, _GROUPS

    # Candidates are looked up per source of the batch (usually one), among OTHER sources only:
    # a call's own rows and its source's look-alikes never come back.
    by_key: dict[tuple[str, str], list[tuple[_Candidate, bool]]] = defaultdict(list)
    by_title: dict[tuple[str, str], list[tuple[_Candidate, str, datetime | None]]] = defaultdict(list)
    for source in sorted({n.source for n in calls}):
        mine = [n for n in calls if n.source == source]
        own_keys = sorted({k for n in mine for k, own in n.link_keys.items() if own})
        other_keys = sorted({k for n in mine for k, own in n.link_keys.items() if not own})
        # A key that is our own page matches any call listing it; a key we merely point to
        # matches only the call whose own page it is (landing pages shared by many measures).
        for keys, own_only in ((own_keys, False), (other_keys, True)):
            for chunk in chunks(keys):
                query = (
                    select(links_t.c.key, links_t.c.own, calls_t.c.id, calls_t.c.group_id)
                    .join(calls_t, calls_t.c.id == links_t.c.call_id)
                    .where(links_t.c.key.in_(chunk), calls_t.c.source != source)
                )
                if own_only:
                    query = query.where(links_t.c.own.is_(True))
                for key, own, cid, gid in conn.execute(query):
                    by_key[(source, key)].append((_Candidate(cid, gid), bool(own)))
        for chunk in chunks(sorted({n.title_key for n in mine if n.title_key})):
            query = select(
                calls_t.c.title_key,
                calls_t.c.id,
                calls_t.c.group_id,
                calls_t.c.granting_body,
                calls_t.c.closes_at,
            ).where(calls_t.c.title_key.in_(chunk), calls_t.c.source != source)
            for row in conn.execute(query):
                by_title[(source, row.title_key)].append(
                    (_Candidate(row.id, row.group_id), row.granting_body, row.closes_at)
                )

    candidate_groups = sorted(
        {c.group_id for rows in by_key.values() for c, _ in rows if c.group_id is not None}
        | {c.group_id for rows in by_title.values() for c, _, _ in rows if c.group_id is not None}
    )
    sources_of: dict[tuple[str, int], set[str]] = defaultdict(set)
    for group_chunk in chunks(candidate_groups):
        for gid, source in conn.execute(
            select(calls_t.c.group_id, calls_t.c.source).where(calls_t.c.group_id.in_(group_chunk))
        ):
            sources_of[("db", gid)].add(source)

    # Group references: ("db", id) for stored groups, ("new", n) for groups made in this batch.
    assigned: dict[int, tuple[str, int]] = {}
    pending: list[list[tuple[int, str]]] = []
    pending_reason: dict[int, dict[str, Any]] = {}
    joined: dict[int, dict[str, Any]] = {}

    def group_of(candidate: _Candidate) -> tuple[str, int] | None:
        if candidate.group_id is not None:
            return ("db", candidate.group_id)
        return assigned.get(candidate.id)

    for call in calls:
        target: tuple[str, int] | None = None
        reason: dict[str, Any] = {}
        for key, own in call.link_keys.items():
            for candidate, cand_own in by_key.get((call.source, key), ()):
                if not (own or cand_own):
                    continue
                ref = group_of(candidate)
                if ref is not None and call.source not in sources_of[ref]:
                    target, reason = ref, {"rule": "shared-link", "value": key}
                    break
            if target is not None:
                break
        if target is None and call.title_key:
            for candidate, body, closes in by_title.get((call.source, call.title_key), ()):
                if not (bodies_compatible(call.granting_body, body) and same_closing(call.closes, closes)):
                    continue
                ref = group_of(candidate)
                if ref is not None and call.source not in sources_of[ref]:
                    target, reason = ref, {"rule": "same-title", "value": call.title_key}
                    break
        if target is None:
            target = ("new", len(pending))
            pending.append([])
        elif target[0] == "new":
            pending_reason.setdefault(target[1], reason)
        else:
            joined.setdefault(target[1], reason)
        if target[0] == "new":
            pending[target[1]].append((call.id, call.source))
        sources_of[target].add(call.source)
        assigned[call.id] = target

    group_ids: dict[tuple[str, int], int] = {("db", gid): gid for gid in joined}
    if pending:
        rows = [
            {
                "created_at": now,
                "canonical_call_id": choose_canonical(members, priority),
                "reason": pending_reason.get(n, {}),
            }
            for n, members in enumerate(pending)
        ]
        by_canonical = {row["canonical_call_id"]: n for n, row in enumerate(rows)}
        result = conn.execute(insert(groups_t).returning(groups_t.c.id, groups_t.c.canonical_call_id), rows)
        for gid, canonical in result:
            group_ids[("new", by_canonical[canonical])] = gid

    mapping = {call_id: group_ids[ref] for call_id, ref in assigned.items()}
    if mapping and conn.dialect.name == "sqlite":
        # Plain executemany: SQLAlchemy's per-row machinery costs more than SQLite's update.
        conn.exec_driver_sql(
            "UPDATE calls SET group_id = ? WHERE id = ?", [(gid, cid) for cid, gid in mapping.items()]
        )
    elif mapping:
        conn.execute(
            update(calls_t).where(calls_t.c.id == bindparam("_id")).values(group_id=bindparam("_group")),
            [{"_id": cid, "_group": gid} for cid, gid in mapping.items()],
        )
    if joined:
        refresh_canonical(conn, list(joined), priority=priority, reasons=joined)
    return mapping


def refresh_canonical(
    conn: Connection,
    group_ids: Sequence[int],
    *,
    priority: Sequence[str] = DEFAULT_SOURCE_PRIORITY,
    reasons: Mapping[int, dict[str, Any]] | None = None,
) -> None:
    """Choose again the canonical call of each group (after members joined, or a new order)."""
    calls_t, groups_t = _CALLS, _GROUPS
    members: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for chunk in chunks(list(group_ids)):
        for cid, source, gid in conn.execute(
            select(calls_t.c.id, calls_t.c.source, calls_t.c.group_id).where(calls_t.c.group_id.in_(chunk))
        ):
            members[gid].append((cid, source))
    for gid, group_members in members.items():
        values: dict[str, Any] = {"canonical_call_id": choose_canonical(group_members, priority)}
        if reasons and reasons.get(gid):
            values["reason"] = reasons[gid]
        conn.execute(update(groups_t).where(groups_t.c.id == gid).values(**values))
