"""SEDIA search API (EU Funding & Tenders Portal): the request body and the pure extractors.

Request side (pure, shared by the spider, the replay server of the tests and the benchmark):
:func:`build_query` and :func:`multipart_body` build the multipart POST the API demands — every
part (``query``, ``languages``, ``sort``, ``displayFields``) a *file* part typed
``application/json``. Any other encoding is silently answered with the wrong data (the whole
unfiltered index) or HTTP 500, so the body is written by hand, byte for byte.

Response side:

* :func:`parse_listing` reads a *light* listing page (sent with ``displayFields``): one
  :class:`ListingRow` per topic with what tells whether it changed (``checksum``, status, deadlines).
* :func:`extract_topics` reads a page with full metadata into :class:`CallRecord` objects.

Both keep only ``DATASOURCE == "SEDIA"`` rows (``SEDIA_PRD_CENTRICITY`` rows are stale copies from
2023 that still say Open/Forthcoming) and one row per ``identifier`` (the first, in the
identifier-ascending order we ask for). Both raise :class:`ExtractionError` when the response is
not the filtered one we asked for: rows of a ``type`` we did not ask for mean the API ignored the
query (that is what a wrongly encoded request gets back: the default relevance page of the whole
index, tenders and stubs included).

Mapping decisions:

* ``deadlineDate`` holds one value per stage; every value is kept (``deadlines``) and the last one
  is ``closes``. Values are read as **dates** (``T00:00:00.000+0000`` is an index artefact; the
  real cut-off, usually 17:00 Brussels time, is only in the call text), i.e. local midnight in
  Europe/Rome (same offset as Brussels) with ``Precision.DATE``.
* A topic is open only if its last deadline is not past at ``fetched_at`` — the API keeps "Open"
  on some topics whose deadline passed; such a topic is recorded as closed.
* ``actions`` and ``budgetOverview`` are JSON inside strings. ``budgetOverview`` covers the whole
  call: only the entries whose ``action`` starts with this topic's identifier are used. A string
  cut short (the recorded samples are) is salvaged entry by entry, with an error noted.
  ``budget_total`` is the sum of the topic's ``budgetYearMap`` values (for joint-undertaking calls
  the portal repeats the call's budget on every topic: it is what the source says);
  ``contribution_min``/``max`` are the smallest ``minContribution`` and largest ``maxContribution``.
* Codes become labels through ``data/sedia_codes.json``, extracted from the real facet response by
  ``build_sedia_codes.py`` (provenance inside the file). An unknown code is kept as the code.
  ``programme`` is the framework programme's label. The *type* label ("Grant", "Call for
  proposals", "Cascade funding calls") is the form of support, so it leads ``support_forms``,
  followed by the topic's ``typesOfAction``. The source's *status* label ("Forthcoming", "Open
  for submission") is appended to ``keywords``, as the source states it, even when the record's
  ``status`` says closed because the last deadline passed (the rule below).
* ``raw`` is the search result exactly as received (the API's JSON numbers stay what they were:
  the envelope is read with plain JSON numbers; only the JSON inside strings is read with
  ``Decimal`` for the money).

Known limits: a topic that closes leaves the open/forthcoming listing, so its stored call keeps
its last status; its passed deadline is what tells it is closed (``CallView.is_open``). The
meaning of ``checksum`` is not documented; we assume it changes when the topic
changes (a change it missed would be caught only with ``full_refresh_days`` set, off by default:
an unchanged topic's metadata is never fetched again). The
light listing relies on ``displayFields`` keeping ``checksum`` and the fields we name (seen in
third-party code, not in a recorded response).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from crawler.extract import ExtractionError, note
from crawler.parsing import html_to_text, http_url, one_line
from storage.records import ROME, CallRecord, CallStatus, Deadline, Precision, local_midnight

SOURCE = "sedia"
DEFAULT_TYPES: tuple[str, ...] = ("1", "2", "8")
DEFAULT_STATUSES: tuple[str, ...] = ("31094501", "31094502")
DEFAULT_TOPIC_URL = (
    "https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/opportunities/topic-details/"
)
#: Fields asked for in the light listing: what identifies a topic and tells whether it changed.
LIGHT_FIELDS: tuple[str, ...] = ("identifier", "type", "status", "deadlineDate", "DATASOURCE")
KEPT_DATASOURCE = "SEDIA"

STATUS_CODES: dict[str, CallStatus] = {
    "31094501": CallStatus.FORTHCOMING,
    "31094502": CallStatus.OPEN,
    "31094503": CallStatus.CLOSED,
}

SUMMARY_CHARS = 600


# --- request side -------------------------------------------------------------------------------


def build_query(
    types: Sequence[str] = DEFAULT_TYPES,
    statuses: Sequence[str] = DEFAULT_STATUSES,
    *,
    identifiers: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The Elasticsearch-like query: ``terms`` only (``wildcard``/``match`` are refused by the API)."""
    must: list[dict[str, Any]] = [
        {"terms": {"type": list(types)}},
        {"terms": {"status": list(statuses)}},
        {"terms": {"DATASOURCE": [KEPT_DATASOURCE]}},
    ]
    if identifiers is not None:
        must.append({"terms": {"identifier": list(identifiers)}})
    return {"bool": {"must": must}}


SORT = {"field": "identifier", "order": "ASC"}


def search_parts(
    query: Mapping[str, Any],
    *,
    languages: Sequence[str] = ("en",),
    display_fields: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The JSON parts of one search request, in the order they are sent."""
    parts: dict[str, Any] = {"query": query, "languages": list(languages), "sort": SORT}
    if display_fields is not None:
        parts["displayFields"] = list(display_fields)
    return parts


def multipart_body(parts: Mapping[str, Any], *, boundary: str) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body whose parts are JSON files typed ``application/json``.

    The browser sends ``FormData`` with ``Blob`` parts (file name ``blob``); the API answers HTTP
    500 to a part without ``Content-Type: application/json`` and ignores a plain form field.
    Returns the body and the request's Content-Type header.
    """
    if not re.fullmatch(r"[0-9A-Za-z'()+_,\-./:=?]{1,70}", boundary):
        raise ValueError("invalid multipart boundary")
    chunks: list[bytes] = []
    for name, value in parts.items():
        payload = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if f"--{boundary}".encode() in payload:
            raise ValueError("multipart boundary occurs in a part")
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="blob"\r\n'
            f"Content-Type: application/json\r\n\r\n".encode()
            + payload
            + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def search_url(base: str, *, api_key: str, page_number: int, page_size: int) -> str:
    """The search URL: ``apiKey`` names the index, ``text=***`` means "any text"."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}apiKey={api_key}&text=***&pageSize={page_size}&pageNumber={page_number}"


# --- codes ------------------------------------------------------------------------------------


@cache
def codes() -> Mapping[str, Mapping[str, str]]:
    """The code → label tables shipped with the package (see ``build_sedia_codes.py``)."""
    text = resources.files("crawler.extract").joinpath("data/sedia_codes.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return {k: v for k, v in data.items() if not k.startswith("_")}


def label(facet: str, code: str) -> str:
    return codes().get(facet, {}).get(code, code)


# --- response side ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListingRow:
    """One topic as the light listing shows it."""

    identifier: str
    checksum: str
    status: str
    deadlines: tuple[str, ...]

    @property
    def fingerprint(self) -> str:
        return f"{self.checksum}|{self.status}|{','.join(self.deadlines)}"


@dataclass(frozen=True, slots=True)
class ListingPage:
    rows: tuple[ListingRow, ...]
    total_results: int | None
    #: Rows in the response before any filtering: a page with fewer than the page size is the last.
    result_count: int
    dropped_stale: int
    dropped_duplicates: int


def _envelope(body: bytes) -> tuple[dict[str, Any], list[Any]]:
    try:
        # Plain JSON numbers: the results become the records' ``raw`` as received (``weight: 4.0``
        # stays 4.0); the money is inside JSON strings, read with Decimal on its own.
        data = json.loads(body)
    except ValueError as exc:
        raise ExtractionError(f"SEDIA response is not JSON ({exc}); {len(body)} bytes") from exc
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ExtractionError("SEDIA response has no results list")
    return data, data["results"]


def _values(metadata: Mapping[str, Any], key: str) -> list[str]:
    """A metadata value as a list of strings (the API wraps every value in an array)."""
    value = metadata.get(key)
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v is not None and str(v) != ""]
    return [str(value)]


def _first(metadata: Mapping[str, Any], key: str) -> str:
    values = _values(metadata, key)
    return values[0].strip() if values else ""


def _check_filtered(results: Sequence[Any], types: Sequence[str]) -> None:
    wanted = set(types)
    foreign: dict[str, int] = {}
    for result in results:
        metadata = result.get("metadata") if isinstance(result, dict) else None
        kind = _first(metadata, "type") if isinstance(metadata, dict) else ""
        # A row without a type is a defect of that row (skipped later), not a sign of a lost query.
        if kind and kind not in wanted:
            foreign[kind] = foreign.get(kind, 0) + 1
    if foreign:
        found = ", ".join(f"type {k}: {n}" for k, n in sorted(foreign.items()))
        raise ExtractionError(
            f"SEDIA answered rows we did not ask for ({found}): the query was ignored, "
            "probably sent in the wrong encoding (it must be a multipart file part typed "
            "application/json); nothing from this response is used"
        )


def _kept_rows(
    results: Sequence[Any], *, errors: list[str] | None
) -> tuple[list[tuple[str, dict[str, Any]]], int, int]:
    """(identifier, result) for SEDIA rows, first per identifier; counts of stale and duplicate rows."""
    kept: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    stale = duplicates = 0
    for index, result in enumerate(results):
        metadata = result.get("metadata") if isinstance(result, dict) else None
        if not isinstance(metadata, dict):
            note(errors, f"SEDIA result {index} has no metadata; skipped")
            continue
        if _first(metadata, "DATASOURCE") != KEPT_DATASOURCE:
            stale += 1
            continue
        identifier = _first(metadata, "identifier")
        if not identifier:
            note(errors, f"SEDIA result {index} has no identifier; skipped")
            continue
        if identifier in seen:
            duplicates += 1
            continue
        seen.add(identifier)
        kept.append((identifier, result))
    return kept, stale, duplicates


def _day(text: str) -> date | None:
    """The date a SEDIA timestamp names, read as written (``2027-04-08T00:00:00.000+0000``)."""
    match = re.match(r"\s*(\d{4})-(\d{2})-(\d{2})", text)
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def parse_listing(
    body: bytes,
    url: str,
    fetched_at: datetime,
    *,
    types: Sequence[str] = DEFAULT_TYPES,
    errors: list[str] | None = None,
) -> ListingPage:
    """One light listing page: the SEDIA topics it names and whether more pages follow."""
    data, results = _envelope(body)
    _check_filtered(results, types)
    kept, stale, duplicates = _kept_rows(results, errors=errors)
    rows = []
    for identifier, result in kept:
        metadata = result["metadata"]
        deadlines = tuple(
            sorted({d.isoformat() for v in _values(metadata, "deadlineDate") if (d := _day(v))})
        )
        rows.append(
            ListingRow(
                identifier=identifier,
                checksum=str(result.get("checksum") or ""),
                status=_first(metadata, "status"),
                deadlines=deadlines,
            )
        )
    total = data.get("totalResults")
    return ListingPage(
        rows=tuple(rows),
        total_results=int(total) if isinstance(total, int) else None,
        result_count=len(results),
        dropped_stale=stale,
        dropped_duplicates=duplicates,
    )


def extract_topics(
    body: bytes,
    url: str,
    fetched_at: datetime,
    *,
    types: Sequence[str] = DEFAULT_TYPES,
    topic_url: str = DEFAULT_TOPIC_URL,
    errors: list[str] | None = None,
) -> list[CallRecord]:
    """Every SEDIA topic of a full-metadata search response, as records (stale/duplicate rows dropped)."""
    _data, results = _envelope(body)
    _check_filtered(results, types)
    kept, _stale, _duplicates = _kept_rows(results, errors=errors)
    records = []
    for identifier, result in kept:
        try:
            records.append(topic_record(result, fetched_at, topic_url=topic_url, errors=errors))
        except (ValueError, TypeError, KeyError) as exc:
            note(errors, f"SEDIA topic {identifier}: {exc}; skipped")
    return records


# --- one topic ----------------------------------------------------------------------------------


def _json_in_string(text: str, what: str, identifier: str, errors: list[str] | None) -> Any:
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError:
        note(errors, f"SEDIA topic {identifier}: {what} is not valid JSON ({len(text)} chars)")
        return None


def _salvage_objects(text: str, start_key: str) -> list[dict[str, Any]]:
    """Every complete JSON object starting with ``{"<start_key>":`` in a cut-short JSON text."""
    decoder = json.JSONDecoder(parse_float=Decimal)
    found = []
    for match in re.finditer(r'\{\s*"' + re.escape(start_key) + r'"\s*:', text):
        try:
            obj, _end = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(obj, dict):
            found.append(obj)
    return found


def _budget_entries(
    metadata: Mapping[str, Any], identifier: str, errors: list[str] | None
) -> list[dict[str, Any]]:
    text = _first(metadata, "budgetOverview")
    if not text:
        return []
    entries: list[dict[str, Any]] = []
    try:
        data = json.loads(text, parse_float=Decimal)
    except ValueError:
        entries = _salvage_objects(text, "action")
        note(
            errors,
            f"SEDIA topic {identifier}: budgetOverview is cut short or invalid JSON "
            f"({len(text)} chars); {len(entries)} complete entries salvaged",
        )
    else:
        action_map = data.get("budgetTopicActionMap") if isinstance(data, dict) else None
        if isinstance(action_map, dict):
            for value in action_map.values():
                if isinstance(value, list):
                    entries.extend(e for e in value if isinstance(e, dict))
    prefix = identifier + " "
    return [
        e
        for e in entries
        if isinstance(e.get("action"), str) and (e["action"] == identifier or e["action"].startswith(prefix))
    ]


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        return None
    if not number.is_finite():
        return None
    return number.quantize(Decimal(1)) if number == number.to_integral_value() else number


def _budget(entries: Iterable[Mapping[str, Any]]) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    total: Decimal | None = None
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    for entry in entries:
        year_map = entry.get("budgetYearMap")
        if isinstance(year_map, dict):
            for amount in year_map.values():
                value = _decimal(amount)
                if value is not None:
                    total = value if total is None else total + value
        low, high = _decimal(entry.get("minContribution")), _decimal(entry.get("maxContribution"))
        if low is not None:
            minimum = low if minimum is None else min(minimum, low)
        if high is not None:
            maximum = high if maximum is None else max(maximum, high)
    return total, minimum, maximum


def _string_list(metadata: Mapping[str, Any], key: str) -> list[str]:
    """A list field; old rows carry the list JSON-encoded in one string."""
    values = _values(metadata, key)
    if len(values) == 1 and values[0].lstrip().startswith("["):
        try:
            decoded = json.loads(values[0])
        except ValueError:
            return values
        if isinstance(decoded, list):
            return [str(v) for v in decoded if v]
    return values


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    seen: set[str] = set()
    for value in values:
        clean = one_line(value)
        if clean and clean.casefold() not in seen:
            seen.add(clean.casefold())
            out.append(clean)
    return tuple(out)


def _deadline_labels(model: str, count: int) -> list[str]:
    if count <= 1:
        return [""] * count
    if "two-stage" in model.lower() and count == 2:
        return ["first stage", "second stage"]
    return [f"cut-off {i}" for i in range(1, count + 1)]


def _summary(text: str) -> str:
    if len(text) <= SUMMARY_CHARS:
        return text
    cut = text[:SUMMARY_CHARS].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + " …"


def topic_record(
    result: Mapping[str, Any],
    fetched_at: datetime,
    *,
    topic_url: str = DEFAULT_TOPIC_URL,
    errors: list[str] | None = None,
) -> CallRecord:
    """One full-metadata search result as a record. Raises ValueError when it has no identifier/title."""
    metadata = result.get("metadata")
    if not isinstance(metadata, dict):
        raise ValueError("no metadata")
    identifier = _first(metadata, "identifier")
    if not identifier:
        raise ValueError("no identifier")
    title = _first(metadata, "title") or str(result.get("summary") or "").strip()
    if not title:
        raise ValueError("no title")

    today = fetched_at.astimezone(ROME).date()
    actions = (
        _json_in_string(_first(metadata, "actions"), "actions", identifier, errors)
        if _first(metadata, "actions")
        else None
    )
    action_list = [a for a in actions if isinstance(a, dict)] if isinstance(actions, list) else []

    days = sorted({d for v in _values(metadata, "deadlineDate") if (d := _day(v))})
    if not days:
        days = sorted({d for a in action_list for v in a.get("deadlineDates") or [] if (d := _day(str(v)))})
    model = _first(metadata, "deadlineModel") or next(
        (
            str(a["submissionProcedure"].get("abbreviation", ""))
            for a in action_list
            if isinstance(a.get("submissionProcedure"), dict)
        ),
        "",
    )
    labels = _deadline_labels(model, len(days))
    deadlines = tuple(
        Deadline(at=local_midnight(d, ROME), precision=Precision.DATE, label=lab)
        for d, lab in zip(days, labels, strict=True)
    )
    start = _day(_first(metadata, "startDate")) or next(
        (d for a in action_list if (d := _day(str(a.get("plannedOpeningDate") or "")))), None
    )

    status_code = _first(metadata, "status")
    status = STATUS_CODES.get(status_code, CallStatus.UNKNOWN)
    if days and days[-1] < today:
        # The portal leaves some topics "Open" after their last deadline; the date decides.
        status = CallStatus.CLOSED

    total, minimum, maximum = _budget(_budget_entries(metadata, identifier, errors))

    # Only an absolute http(s) URL is the topic's page; anything else gives the portal's own.
    url = http_url(_first(metadata, "url") or str(result.get("url") or ""), "") or topic_url + identifier

    # A description cut mid-tag (``<a href="https://environme``) would leak the tag as text.
    description = html_to_text(re.sub(r"<[^>]*\Z", "", _first(metadata, "descriptionByte")))
    programme_code = _first(metadata, "frameworkProgramme")
    type_code = _first(metadata, "type")
    actions_types = [one_line(t) for t in _values(metadata, "typesOfAction")]
    keywords = _unique([*_string_list(metadata, "keywords"), *_string_list(metadata, "tags")])
    type_label = [label("type", type_code)] if type_code else []
    status_label = [label("status", status_code)] if status_code else []

    return CallRecord(
        source=SOURCE,
        source_id=identifier,
        url=url,
        title=title,
        summary=_summary(description),
        description=description,
        language=_first(metadata, "language") or "en",
        status=status,
        opens=local_midnight(start, ROME) if start else None,
        opens_precision=Precision.DATE if start else None,
        closes=deadlines[-1].at if deadlines else None,
        closes_precision=Precision.DATE if deadlines else None,
        deadlines=deadlines,
        budget_total=total,
        contribution_min=minimum,
        contribution_max=maximum,
        programme=label("frameworkProgramme", programme_code) if programme_code else "",
        keywords=_unique([*keywords, *status_label]),
        support_forms=_unique([*type_label, *actions_types]),
        links=(url,),
        raw=result,
    )
