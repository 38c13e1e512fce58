"""BURL (Bollettino Ufficiale della Regione Lombardia): the search API's answer → acts.

No response of the API was ever recorded. What is known comes from third-party code run live on
9 Oct 2026 (``shared/SOURCES-MORE.md`` §1), so every assumption about the answer is written once,
in :data:`ASSUMPTIONS`, and checked on every page: an answer that breaks one raises
:class:`ShapeError` and the run is degraded with the body kept for inspection, never read into
wrong acts. What would confirm them: one recorded answer of ``PUT .../api/ricercaAvanzata``
(and one of ``api/download``), kept in ``tests/data/crawler/burl`` beside the synthetic ones.

Two pure steps:

* :func:`read_search` — a body in, a :class:`SearchPage` out (the total and the acts);
* :func:`act_of` — one act's title read for what it does (:func:`classify`) and what it names
  (call codes, decrees, a quoted call title, the new closing date), as a
  :class:`storage.acts.Act`; :func:`act_record` — the act as a ``notice`` record (what the crawl
  hands to ingest; it counts in the run's yield and keeps the act searchable).

Titles are read as the regional acts write them ("Proroga dei termini di presentazione delle
domande del «Bando X» di cui al d.d.u.o. n. 1234 del 12 marzo 2026 al 30 gennaio 2027"); a title
read wrongly can only give a wrong *kind* or *reference*, and :mod:`storage.acts` moves a
deadline only on a link it is sure of.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from crawler.extract import ShapeError, note
from crawler.extract.acts import classify
from crawler.parsing import iter_dates, one_line, parse_it_datetime, parse_time
from storage.acts import Act
from storage.records import ROME, CallRecord, Precision, local_midnight

SOURCE = "burl"

#: Every assumption about the API's answer, in one place (confirm with one recorded answer).
ASSUMPTIONS = {
    "body": 'a JSON object; "\\u0000" escapes may occur anywhere in the raw body and are removed',
    "total": '"conteggioTotale": the number of hits of the whole search (int or numeric string)',
    "list": '"lista": an array of hit objects (may be empty); absent only when the search found nothing'
    " and conteggioTotale is 0",
    "id": '"idBurl": an integer (or digits) identifying the published item',
    "title": '"titolo": the act\'s subject as text (NUL characters stripped)',
    "published": '"dataPubblicazione": a date, ISO ("2026-04-01", optionally with a time), '
    '"01/04/2026", or epoch milliseconds; the client that used it printed 2026-04-01',
    "optional": '"numero" (bulletin number) and "serie" (e.g. "Serie Ordinaria") may be absent',
}

#: More than this share of hits with an unreadable publication date = the date format changed.
MAX_BAD_DATES = 0.5
MAX_TITLE = 2_000

_CODE = re.compile(r"\bRL[A-Z][A-Z0-9]\d{10}\b")
_DECREE = re.compile(
    r"(?:\bdecret\w*|\bd\.\s*d\.\s*(?:u\.\s*o\.|s\.|g\.)?|\bd\.\s*g\.\s*r\.|\bdgr|\bddg|\bdduo|\bdds)"
    r"[^0-9]{0,40}?\bn(?:\.|r\.|umero)?\s*(?P<num>\d{2,6})\s*(?:del|/)\s*(?P<rest>.{0,25})",
    re.I,
)
#: The bulletin's own form: "D.d.s. 12 marzo 2026 - n. 3456" (date first, then the number).
_DECREE_DATED = re.compile(
    r"(?:\bdecret\w*|\bd\.\s*d\.\s*(?:u\.\s*o\.|s\.|g\.)?|\bd\.\s*g\.\s*r\.|\bdgr|\bddg|\bdduo|\bdds)\s*"
    r"(?P<date>\d{1,2}\s+[a-zà-ù]+\s+\d{4}|\d{1,2}[./-]\d{1,2}[./-]\d{4})\s*[-–—,]?\s*n(?:\.|r\.|umero)?\s*(?P<num>\d{2,6})\b",
    re.I,
)
_QUOTED = re.compile(r"«\s*([^»]{6,300}?)\s*»|“\s*([^”]{6,300}?)\s*”|\"\s*([^\"]{6,300}?)\s*\"")
#: Words that introduce the new closing date in a proroga or reopening.
_NEW_DATE = re.compile(
    r"\b(?:(?:fino|sino)\s+al(?:le)?|entro\s+il|al|(?:entro\s+le\s+|alle\s+)?ore\s+[\d.:]+\s+del)\s+$", re.I
)


@dataclass(frozen=True, slots=True)
class Hit:
    """One search hit as the API gives it."""

    id_burl: str
    title: str
    published: datetime | None
    number: str = ""
    series: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SearchPage:
    total: int
    hits: tuple[Hit, ...]


def read_json(body: bytes) -> Any:
    """The answer's JSON with the NULs the API puts in its strings removed: raw NUL bytes before
    parsing (JSON forbids them), ``\\u0000`` escapes after (removing them from the bytes would
    also eat an escaped backslash's ``\\\\u0000``, turning a literal text into a control code)."""
    return _without_nul(json.loads(body.replace(b"\x00", b"").decode("utf-8")))


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    return value


def read_search(
    body: bytes, url: str, fetched_at: datetime, *, errors: list[str] | None = None
) -> SearchPage:
    """A ``ricercaAvanzata`` answer → its total and hits. Raises :class:`ShapeError` when the
    answer is not what :data:`ASSUMPTIONS` describe; a single unreadable hit is noted and skipped."""
    try:
        data = read_json(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ShapeError(f"{ASSUMPTIONS['body']}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ShapeError(f"{ASSUMPTIONS['body']}: got a JSON {type(data).__name__}")
    total = _int(data.get("conteggioTotale"))
    if total is None:
        raise ShapeError(
            f"{ASSUMPTIONS['total']}: got {str(data.get('conteggioTotale'))[:80]!r}"
            f" (keys: {', '.join(sorted(map(str, data))[:20])})"
        )
    items = data.get("lista")
    if items is None and total == 0:
        items = []
    if not isinstance(items, list):
        raise ShapeError(f"{ASSUMPTIONS['list']}: got {type(items).__name__}")
    hits: list[Hit] = []
    bad_dates = 0
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise ShapeError(f"{ASSUMPTIONS['list']}: item {position} is a {type(item).__name__}")
        id_burl = _int(item.get("idBurl"))
        title = one_line(str(item.get("titolo") or "").replace("\x00", ""))[:MAX_TITLE]
        if id_burl is None or not title:
            note(errors, f"BURL hit {position} at {url}: no idBurl or titolo ({sorted(item)[:10]})")
            continue
        raw_date = item.get("dataPubblicazione")
        published = _published(raw_date)
        if published is None:
            bad_dates += 1
            note(errors, f"BURL {id_burl}: publication date {str(raw_date)[:40]!r} not understood")
        hits.append(
            Hit(
                id_burl=str(id_burl),
                title=title,
                published=published,
                number=one_line(item.get("numero") or ""),
                series=one_line(item.get("serie") or ""),
                raw={
                    k: item[k]
                    for k in ("idBurl", "titolo", "dataPubblicazione", "numero", "serie")
                    if k in item
                },
            )
        )
    if items and not hits:
        raise ShapeError(f"{ASSUMPTIONS['id']} / {ASSUMPTIONS['title']}: no hit has both")
    if hits and bad_dates > MAX_BAD_DATES * len(hits):
        raise ShapeError(f"{ASSUMPTIONS['published']}: {bad_dates} of {len(hits)} dates unreadable")
    return SearchPage(total=total, hits=tuple(hits))


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _published(value: Any) -> datetime | None:
    """A publication date in one of the forms :data:`ASSUMPTIONS` allow, as Rome midnight."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 10**11:
        return local_midnight(datetime.fromtimestamp(value / 1000, tz=ROME).date())
    if not isinstance(value, str):
        return None
    text = value.strip()
    iso = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?", text)
    if iso:
        try:
            return local_midnight(date(int(iso[1]), int(iso[2]), int(iso[3])))
        except ValueError:
            return None
    numeric = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text)
    if numeric:
        try:
            return local_midnight(date(int(numeric[3]), int(numeric[2]), int(numeric[1])))
        except ValueError:
            return None
    return None


# --- what an act says ----------------------------------------------------------------------------


def decrees(title: str) -> tuple[str, ...]:
    """Decrees named in the title, as ``"<number>/<year>"`` (year "" when not written)."""
    out: list[str] = []
    for m in _DECREE.finditer(title):
        rest = m.group("rest")
        first = next(iter_dates(rest), None)
        year = str(first.value.year) if first and first.start < 3 else ""
        if not year:
            y = re.match(r"\s*(\d{4})\b", rest)
            year = y.group(1) if y else ""
        ref = f"{int(m.group('num'))}/{year}"
        if ref not in out:
            out.append(ref)
    for m in _DECREE_DATED.finditer(title):
        day = next(iter_dates(m.group("date")), None)
        ref = f"{int(m.group('num'))}/{day.value.year if day else ''}"
        if ref not in out:
            out.append(ref)
    return tuple(out)


def quoted_title(title: str) -> str:
    """The first quoted text of two words or more (the call's title, as acts quote it)."""
    for m in _QUOTED.finditer(title):
        text = one_line(next(g for g in m.groups() if g))
        if len(text.split()) >= 2:
            return text
    return ""


def new_deadline(title: str, kind: str) -> tuple[datetime, Precision] | None:
    """The closing date a proroga or reopening states ("… al 30 gennaio 2027", "… entro le ore
    12:00 del 30/01/2027"), or None: only dates introduced by those words count, never the date
    of a decree the title cites."""
    if kind not in ("proroga", "riapertura"):
        return None
    chosen = None
    for match in iter_dates(title):
        if _NEW_DATE.search(title[max(0, match.start - 40) : match.start]):
            chosen = match
    if chosen is None:
        return None
    before = re.search(r"ore\s+(\d{1,2}[.:]\d{2})\s+del\s+$", title[max(0, chosen.start - 30) : chosen.start])
    clock = parse_time(before.group(1)) if before else None
    if clock is not None:
        return datetime.combine(chosen.value, clock, tzinfo=ROME), Precision.DATETIME
    # A time written after the date ("30 gennaio 2027 ore 12:00") belongs to it.
    return parse_it_datetime(title[chosen.start :], tz=ROME)


def act_of(hit: Hit, *, url: str) -> Act:
    """What one hit says, as an act to link (:mod:`storage.acts`)."""
    kind = classify(hit.title)
    deadline = new_deadline(hit.title, kind)
    return Act(
        source=SOURCE,
        act_id=hit.id_burl,
        kind=kind,
        title=hit.title,
        url=url,
        published=hit.published,
        codes=tuple(dict.fromkeys(_CODE.findall(hit.title))),
        decrees=decrees(hit.title),
        quoted_title=quoted_title(hit.title),
        new_deadline=deadline[0] if deadline else None,
        new_deadline_precision=deadline[1] if deadline else None,
    )


def act_record(hit: Hit, act: Act) -> CallRecord:
    """The act as a ``notice`` record: stored once, searchable, counted in the run's yield."""
    summary = " · ".join(p for p in (hit.series, f"n. {hit.number}" if hit.number else "") if p)
    return CallRecord(
        source=SOURCE,
        source_id=hit.id_burl,
        url=act.url,
        title=hit.title,
        summary=summary,
        published=hit.published,
        published_precision=Precision.DATE if hit.published else None,
        granting_body="Regione Lombardia",
        regions=("Lombardia",),
        keywords=(act.kind,),
        raw={"hit": dict(hit.raw), "act": _act_json(act)},
        kind="notice",
    )


def _act_json(act: Act) -> dict[str, Any]:
    return {
        "kind": act.kind,
        "codes": list(act.codes),
        "decrees": list(act.decrees),
        "quoted_title": act.quoted_title,
        "new_deadline": act.new_deadline.isoformat() if act.new_deadline else None,
        "new_deadline_precision": act.new_deadline_precision.value if act.new_deadline_precision else None,
    }


def act_from_record(record: CallRecord) -> Act:
    """The act a notice record stands for (inverse of :func:`act_record`, for the crawl's hook)."""
    data = dict((record.raw or {}).get("act") or {})
    deadline = data.get("new_deadline")
    precision = data.get("new_deadline_precision")
    return Act(
        source=record.source,
        act_id=record.source_id,
        kind=str(data.get("kind") or "altro"),
        title=record.title,
        url=record.url,
        published=record.published,
        codes=tuple(data.get("codes") or ()),
        decrees=tuple(data.get("decrees") or ()),
        quoted_title=str(data.get("quoted_title") or ""),
        new_deadline=datetime.fromisoformat(deadline) if deadline else None,
        new_deadline_precision=Precision(precision) if precision else None,
    )


def request_body(subject: str, year: int) -> bytes:
    """The search body exactly as the working client sent it (``dataMinina`` sic, years as strings)."""
    body = {
        "oggetto": subject,
        "intervalloAnniPubblicazione": {"numeroMinimo": str(year), "numeroMassimo": str(year)},
        "intervalloDateRichiestaPubblicazione": {"dataMinina": None, "dataMassima": None},
        "intervalloDateNumerazione": {"dataMinina": None, "dataMassima": None},
    }
    return json.dumps(body).encode("utf-8")


__all__ = [
    "ASSUMPTIONS",
    "Hit",
    "SearchPage",
    "ShapeError",
    "act_from_record",
    "act_of",
    "act_record",
    "classify",
    "read_search",
    "request_body",
]
