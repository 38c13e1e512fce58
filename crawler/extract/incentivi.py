"""incentivi.gov.it (MIMIT's national catalogue of incentives): its Solr index, read in one response.

:func:`parse_solr` turns the Solr ``select`` response into :class:`CallRecord` s for the measures
that matter to the cluster: open to companies (a subject type naming "Impresa", or none stated),
available in Lombardy (``Lombardia`` among the regions; national measures list all 20 regions)
and not closed at ``fetched_at``. :func:`read_solr` does the same and also says what was left
out and whether the response was complete (``numFound == len(docs)``).

Field rules (shared/SOURCES.md §3):

* Dates (``zs_field_open_date`` / ``zs_field_close_date``) carry no zone and mean a day. Most are
  written ``YYYY-MM-DDT00:00:00``, but some are Rome midnight stored in UTC
  (``2019-12-31T23:00:00`` for 1 January 2020): a value with a time of day is read as UTC and
  converted to Rome before its date is taken. Result: Rome midnight, ``Precision.DATE``.
* "Until funds run out": a closing date in 2029 or later is the catalogue's placeholder for an
  open-ended measure, so the record gets ``sportello=True`` and **no** ``closes`` (a fake
  deadline would drive reminders; the stated date stays in ``raw``). A
  ``zs_field_close_date_descriptor`` saying "sportello" also sets ``sportello``, but a real
  closing date before 2029 is kept. A measure with no closing date at all is open-ended too
  (``sportello=True``, ``closes=None``). A descriptor that states a date is read when the date
  field is empty.
* ``zs_field_ateco``: "20.42; 22.22; ..." is split into codes; "Tutti i settori economici" (all
  sectors) gives no codes, which means "no sector restriction" (noted in ``raw``).
* ``zs_field_subject_grant`` is the granting body; ``zs_field_link`` (the body's own page, maybe a
  PDF or a shortener) goes into ``links`` for cross-portal dedup when it is an http(s) URL; the
  record's URL is the catalogue page (``zs_url``, a path resolved against the configured base
  URL). A ``zs_url`` that is not http(s) once resolved (``javascript:``…) is not used: the
  record gets the catalogue's root URL and an error is recorded.
* ``zs_body``: HTML (the recorded sample holds it cut and flattened to text) with sections
  "A chi si rivolge", "Cosa prevede", ...; the text becomes the description, the "A chi si
  rivolge" section the beneficiaries (after the subject types), and an amount written after
  "dotazione" the budget.

Known limits: the catalogue's "open" is judged from its dates; a measure closed early without the
date being updated stays open here. Publication dates are not in the index (``ds_last_update``
is an edit time, not a publication).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from crawler.extract import ExtractionError, note
from crawler.parsing import find_deadline, html_to_text, http_url, iter_amounts, one_line
from storage.records import (
    ROME,
    CallRecord,
    CallStatus,
    Deadline,
    Precision,
    effective_deadline,
    local_midnight,
)

SOURCE = "incentivi"
SOLR_PATH = "/solr/coredrupal/select"

#: The Solr fields read (``fl``); every other stored field is left on the server.
FIELDS = (
    "zs_nid",
    "zs_title",
    "zs_url",
    "zs_field_link",
    "zs_field_open_date",
    "zs_field_close_date",
    "zs_field_close_date_descriptor",
    "zs_field_multibando",
    "zs_field_subject_grant",
    "zm_field_regions_value",
    "zm_field_subject_type_value",
    "zm_field_scopes_value",
    "zm_field_support_form_value",
    "zs_field_ateco",
    "ds_last_update",
    "zs_body",
)

#: A closing date in this year or later is the catalogue's "until funds run out".
OPEN_ENDED_FROM_YEAR = 2029
REGION = "Lombardia"
ALL_SECTORS = "tutti i settori economici"
_SPORTELLO = re.compile(r"sportello|esaurimento\s+(?:delle\s+)?(?:risorse|fondi)", re.IGNORECASE)
_SECTIONS = (
    "A chi si rivolge",
    "Cosa prevede",
    "Come funziona",
    "Obiettivi",
    "Dotazione finanziaria",
    "Normativa",
    "Scadenza",
    "Per informazioni",
    "Modalità di presentazione",
)
_SECTION_RE = re.compile("|".join(re.escape(s) for s in _SECTIONS), re.IGNORECASE)
_BUDGET = re.compile(
    r"dotazion\w*\s+(?:finanziari\w+\s+)?(?:complessiv\w+\s+)?(?:di|pari\s+a|:)?(.{0,80})", re.I
)


def solr_query(rows: int) -> dict[str, str]:
    """The query string of the one request: every incentive, most recently updated first."""
    return {
        "wt": "json",
        "q": "index_id:incentivi",
        "rows": str(rows),
        "sort": "ds_last_update desc",
        "fl": ",".join(FIELDS),
    }


def solr_url(base_url: str, rows: int) -> str:
    return base_url.rstrip("/") + SOLR_PATH + "?" + urlencode(solr_query(rows))


@dataclass(slots=True)
class SolrRead:
    """What :func:`read_solr` found: the records and what the response held."""

    records: list[CallRecord] = field(default_factory=list)
    num_found: int = 0
    docs: int = 0
    #: ``numFound`` > docs received: the catalogue was cut (``rows`` too small, or a proxy).
    truncated: bool = False
    #: Documents left out, by reason ("region", "subject", "closed").
    skipped: dict[str, int] = field(default_factory=dict)


def _solr_docs(body: bytes) -> tuple[list[Any], int]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ExtractionError(f"Solr response is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ExtractionError(f"Solr response is a {type(data).__name__}, not an object")
    if "error" in data and "response" not in data:
        error = data["error"]
        message = error.get("msg") if isinstance(error, dict) else error
        raise ExtractionError(f"Solr error: {str(message)[:300]}")
    response = data.get("response")
    if not isinstance(response, dict) or not isinstance(response.get("docs"), list):
        raise ExtractionError("Solr response without response.docs")
    try:
        num_found = int(response.get("numFound", len(response["docs"])))
    except (TypeError, ValueError) as exc:
        raise ExtractionError(f"Solr numFound is not a number: {response.get('numFound')!r}") from exc
    return response["docs"], num_found


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        text = one_line(item)
        if text and text not in out:
            out.append(text)
    return tuple(out)


def catalogue_date(value: Any) -> date | None:
    """The day a catalogue date names (see the module docstring for the UTC-midnight quirk)."""
    text = one_line(value)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not a date: {text!r}") from exc
    if parsed.tzinfo is None:
        if (parsed.hour, parsed.minute, parsed.second) == (0, 0, 0):
            return parsed.date()
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(ROME).date()


def ateco_codes(value: Any) -> tuple[str, ...]:
    """ "20.42; 22.22;" → ("20.42", "22.22"); "all sectors" → ()."""
    text = one_line(value)
    if not text or text.lower() == ALL_SECTORS:
        return ()
    codes: list[str] = []
    for part in re.split(r"[;,]", text):
        code = part.strip()
        if code and code not in codes:
            codes.append(code)
    return tuple(codes)


def body_sections(body_text: str) -> tuple[str, dict[str, str]]:
    """The text before the first known heading, and each heading's section text."""
    matches = list(_SECTION_RE.finditer(body_text))
    if not matches:
        return body_text.strip(), {}
    intro = body_text[: matches[0].start()].strip()
    sections: dict[str, str] = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(body_text)
        title = next(s for s in _SECTIONS if s.lower() == m.group(0).lower())
        content = body_text[m.end() : end].strip(" \n:–-")
        if content and title not in sections:
            sections[title] = content
    return intro, sections


def doc_to_record(
    doc: Mapping[str, Any],
    *,
    fetched_at: datetime,
    base_url: str,
    skipped: dict[str, int] | None = None,
    errors: list[str] | None = None,
) -> CallRecord | None:
    """One catalogue document as a call, or None when it is not for Lombardy companies or is closed.

    Raises ValueError for a document that cannot be read; ``errors`` gets a line for a catalogue
    link that is not http(s).
    """

    def skip(reason: str) -> None:
        if skipped is not None:
            skipped[reason] = skipped.get(reason, 0) + 1

    nid = one_line(doc.get("zs_nid"))
    if not nid:
        raise ValueError("document without zs_nid")
    title = one_line(doc.get("zs_title"))
    if not title:
        raise ValueError(f"{nid}: document without zs_title")

    regions = _strings(doc.get("zm_field_regions_value"))
    if REGION.lower() not in {r.lower() for r in regions}:
        skip("region")
        return None
    subjects = _strings(doc.get("zm_field_subject_type_value"))
    if subjects and not any("impres" in s.lower() for s in subjects):
        skip("subject")
        return None

    opens_day = catalogue_date(doc.get("zs_field_open_date"))
    close_day = catalogue_date(doc.get("zs_field_close_date"))
    descriptor = one_line(doc.get("zs_field_close_date_descriptor"))
    sportello = bool(descriptor and _SPORTELLO.search(descriptor))
    raw_notes: dict[str, Any] = {}
    closes: datetime | None = None
    closes_precision: Precision | None = None
    if close_day is not None and close_day.year >= OPEN_ENDED_FROM_YEAR:
        sportello = True
        raw_notes["placeholder_close_date"] = close_day.isoformat()
    elif close_day is not None:
        closes, closes_precision = local_midnight(close_day, ROME), Precision.DATE
    elif descriptor:
        stated = find_deadline(descriptor, tz=ROME)
        if stated is not None:
            closes, closes_precision = stated
    if closes is None:
        sportello = True

    end = effective_deadline(closes, closes_precision)
    if end is not None and end < fetched_at:
        skip("closed")
        return None
    opens = local_midnight(opens_day, ROME) if opens_day else None
    status = CallStatus.FORTHCOMING if opens is not None and opens > fetched_at else CallStatus.OPEN

    body_text = html_to_text(str(doc.get("zs_body") or ""))
    intro, sections = body_sections(body_text)
    who = one_line(sections.get("A chi si rivolge", ""))
    description = body_text
    if descriptor:
        description = f"{description}\n\nScadenza: {descriptor}".strip()
    budget = None
    budget_text = sections.get("Dotazione finanziaria") or body_text
    m = _BUDGET.search(budget_text)
    if m:
        budget = next(iter_amounts(m.group(0)), None)

    codes = ateco_codes(doc.get("zs_field_ateco"))
    if not codes and one_line(doc.get("zs_field_ateco")):
        raw_notes["ateco"] = "all sectors"
    url = _catalogue_url(one_line(doc.get("zs_url")), base_url)
    if url is None:
        note(
            errors, f"Solr document {nid}: zs_url {one_line(doc.get('zs_url'))[:100]!r} is not an http(s) URL"
        )
        raw_notes["bad_url"] = True
        url = base_url
    # The body's own page is elsewhere: only an absolute http(s) link means something.
    official = http_url(one_line(doc.get("zs_field_link")), "") or ""
    return CallRecord(
        source=SOURCE,
        source_id=nid,
        url=url,
        title=title,
        summary=one_line(intro)[:1000],
        description=description,
        language="it",
        status=status,
        opens=opens,
        opens_precision=Precision.DATE if opens else None,
        closes=closes,
        closes_precision=closes_precision,
        deadlines=(Deadline(at=closes, precision=closes_precision or Precision.DATE, label="chiusura"),)
        if closes
        else (),
        sportello=sportello,
        budget_total=budget,
        beneficiaries=subjects + ((who,) if who else ()),
        granting_body=one_line(doc.get("zs_field_subject_grant")),
        regions=regions,
        ateco_codes=codes,
        keywords=_strings(doc.get("zm_field_scopes_value")),
        support_forms=_strings(doc.get("zm_field_support_form_value")),
        links=(official,) if official else (),
        raw={"doc": dict(doc), **raw_notes},
    )


_SCHEME_OR_HOST = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.\-]*:|//)")


def _catalogue_url(value: str, base_url: str) -> str | None:
    """``zs_url`` as an absolute http(s) URL (the base URL itself when empty), else None.

    A site path (``/it/catalogo/...``) is joined *under* the base URL, which may carry a path
    prefix (a mirror, a replay server); an absolute URL is taken as it is if it is http(s).
    """
    if not value:
        return base_url
    relative = not _SCHEME_OR_HOST.match(value)
    return http_url(value.lstrip("/") if relative else value, base_url.rstrip("/") + "/")


def read_solr(
    body: bytes, url: str, fetched_at: datetime, *, base_url: str, errors: list[str] | None = None
) -> SolrRead:
    """Records and completeness of one Solr response (see :func:`parse_solr`)."""
    docs, num_found = _solr_docs(body)
    result = SolrRead(num_found=num_found, docs=len(docs))
    if num_found > len(docs):
        result.truncated = True
        note(errors, f"{url}: Solr found {num_found} documents but returned {len(docs)} (truncated)")
    for index, doc in enumerate(docs):
        if not isinstance(doc, dict):
            note(errors, f"Solr document {index}: not an object")
            continue
        try:
            record = doc_to_record(
                doc, fetched_at=fetched_at, base_url=base_url, skipped=result.skipped, errors=errors
            )
        except ValueError as exc:
            note(errors, f"Solr document {index} ({doc.get('zs_nid', 'no id')}): {exc}")
            continue
        if record is not None:
            result.records.append(record)
    return result


def parse_solr(
    body: bytes, url: str, fetched_at: datetime, *, base_url: str, errors: list[str] | None = None
) -> list[CallRecord]:
    """The calls of one Solr response open to companies in Lombardy and not closed at ``fetched_at``."""
    return read_solr(body, url, fetched_at, base_url=base_url, errors=errors).records


def wrap_docs(docs: Sequence[Mapping[str, Any]], *, num_found: int | None = None) -> dict[str, Any]:
    """A Solr ``select`` envelope around ``docs`` (for fixtures built from recorded documents)."""
    return {
        "responseHeader": {"status": 0, "QTime": 1, "params": solr_query(len(docs))},
        "response": {
            "numFound": len(docs) if num_found is None else num_found,
            "start": 0,
            "numFoundExact": True,
            "docs": list(docs),
        },
    }
