"""Regione Lombardia, "Bandi e Servizi": the open-data registry, the portal listing and detail pages.

Three pure readers and the rules that combine them into one :class:`CallRecord` per call code:

* :func:`parse_dataset` — a page of the Socrata dataset ``bukx-h2uy`` on dati.lombardia.it (a JSON
  array of flat objects whose values are all strings; a NULL column is simply missing). Dates are
  date-only floating timestamps (``2026-06-16T00:00:00.000``) read as Europe/Rome dates; an empty
  closing date means a first-come "sportello" call. Personnel competitions (``tipo_strumento``
  "Concorsi Pubblici e Avvisi sul Personale") are not funding calls and are dropped.
* :func:`parse_listing` — a page of the portal's search results (HTML cards: code, title, detail
  link, dates, status chip) and the number of pages.
* :func:`parse_detail` — the canonical detail page: status chip, opening/closing date *and hour*,
  publication, funding source, "Chi può partecipare", summary, granting body, attachments and the
  financial allocation when the page states one. The portal answers an unknown code with HTTP 200
  and ``<title>Errore | Bandi e Servizi</title>``: that raises :class:`PortalErrorPage`.

:func:`merge_card` and :func:`enrich` layer the listing and the detail page over the registry
record; the portal wins where they disagree (the registry lags it and has no hours).

Status without a detail page comes from the dates and ``fetched_at``
(:func:`crawler.parsing.status_from_dates`); the detail page's chip only wins when it says "Chiuso" (a call can
close early when its funds run out) or when the dates cannot tell.

Known limits:

* The registry has no link. The canonical detail URL (``.../dettaglio/<cat>/<subcat>/<slug>-<CODE>``)
  comes from the listing or a detail page; until then :func:`bare_detail_url` builds
  ``.../dettaglio/<CODE>``, which 404s for about 2 % of codes, and ``raw["url_kind"]`` says
  ``"bare"`` (``"canonical"`` otherwise).
* No whole listing or detail page has been recorded: the selectors follow the real detail fragments
  and the markup two independent scrapers use (shared/SOURCES.md §1b). The markup of the granting
  body, the attachment list and the financial allocation is unconfirmed; each is read
  defensively and simply missing when not found.
* A closed sportello may keep an empty closing date in the registry: without a detail page it is
  reported open. ``sportello`` follows the best closing date known (registry, card, page): a
  call is a sportello exactly when none of them states one.
* Pages are decoded by the charset the response header declares, else the page's ``<meta>``,
  else UTF-8 if the bytes are valid UTF-8, else windows-1252 (the superset of Latin-1 Italian
  pages use). Bytes the chosen charset cannot decode become U+FFFD and an error is recorded.
* Links are kept only when they are http(s) (relative ones resolved against the page's URL, on
  the configured portal); a card whose link is anything else (``javascript:``…) is skipped with
  an error, as is such an attachment link.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

from parsel import Selector
from w3lib.encoding import html_to_unicode

from crawler.extract import ExtractionError, note
from crawler.parsing import (
    html_lines,
    html_to_text,
    http_url,
    iter_amounts,
    one_line,
    parse_it_datetime,
    status_from_dates,
)
from storage.records import (
    ROME,
    Attachment,
    CallRecord,
    CallStatus,
    Deadline,
    Precision,
    local_midnight,
)

SOURCE = "lombardia"

#: Paths of the portal, joined to the configured portal root.
DETAIL_PATH = "/servizi/servizio/bandi/dettaglio/"
SEARCH_PATH = "/servizi/servizio/bandi/ricerca"
DOWNLOAD_PATH = "/servizi/servizio/bandi/download/"

#: ``tipo_strumento`` values that are not funding calls.
EXCLUDED_TYPES = frozenset({"concorsi pubblici e avvisi sul personale"})

#: Registry columns that change without the call changing (``presentato`` counts applications).
VOLATILE_COLUMNS = frozenset({"presentato"})

_CODE_AT_END = re.compile(r"[-/]([A-Z]{2}[A-Z0-9]{1,4}\d{6,})/?$")
_STATUS_LABELS = {
    "aperto": CallStatus.OPEN,
    "in apertura": CallStatus.FORTHCOMING,
    "chiuso": CallStatus.CLOSED,
}
_STATUS_CLASSES = {
    "bg-success-state": CallStatus.OPEN,
    "bg-warning-state": CallStatus.FORTHCOMING,
    "bg-danger-state": CallStatus.CLOSED,
}


class PortalErrorPage(ExtractionError):
    """The portal's error page (served with HTTP 200), e.g. for an unknown or withdrawn code."""


# --- URLs ---------------------------------------------------------------------------------


def bare_detail_url(portal_url: str, code: str) -> str:
    """``<portal>/servizi/servizio/bandi/dettaglio/<CODE>``: works for most codes, not all."""
    return portal_url.rstrip("/") + DETAIL_PATH + code


def search_url(portal_url: str) -> str:
    return portal_url.rstrip("/") + SEARCH_PATH


def code_from_url(url: str) -> str | None:
    """The call code a detail URL ends with (``...-RLP12026052483`` → ``RLP12026052483``)."""
    path = urlsplit(url).path
    m = _CODE_AT_END.search(path)
    return m.group(1) if m else None


def is_canonical_detail_url(url: str, code: str | None = None) -> bool:
    """True for ``.../dettaglio/<cat>/.../<slug>-<CODE>`` (not the bare-code form)."""
    path = urlsplit(url).path
    if DETAIL_PATH not in path:
        return False
    tail = path.split(DETAIL_PATH, 1)[1].strip("/")
    if "/" not in tail or "-" not in tail.rsplit("/", 1)[1]:
        return False
    found = code_from_url(url)
    return found is not None and (code is None or found == code)


def search_form(
    *, page: int = 1, code: str = "", statuses: Iterable[str] = ("APERTO", "IN APERTURA")
) -> dict[str, str]:
    """Form fields of ``POST /ricerca``: the status-filtered listing, or a search for one code."""
    form = {
        "titolo": code,
        "descrizione": code,
        "ricercaAvanzata": "false",
        "pageNum": str(page),
        "targetStr": "ALL",
        "partitaIva": "",
    }
    for i, status in enumerate(statuses):
        form[f"stato[{i}]"] = status
    return form


# --- status -------------------------------------------------------------------------------


def status_from_label(label: str) -> CallStatus:
    return _STATUS_LABELS.get(one_line(label).lower(), CallStatus.UNKNOWN)


def _restatus(
    record: CallRecord, now: datetime, *, label_status: CallStatus = CallStatus.UNKNOWN
) -> CallRecord:
    status = status_from_dates(
        opens=record.opens, closes=record.closes, closes_precision=record.closes_precision, now=now
    )
    if label_status == CallStatus.CLOSED or status == CallStatus.UNKNOWN:
        status = label_status if label_status != CallStatus.UNKNOWN else status
    deadlines = (
        (Deadline(at=record.closes, precision=record.closes_precision or Precision.DATE, label="chiusura"),)
        if record.closes is not None
        else ()
    )
    # The one place sportello is decided: registry, card and page are layered over each other, and
    # a closing date any of them states ends the "first come, no closing date" reading.
    return replace(record, status=status, deadlines=deadlines, sportello=record.closes is None)


# --- the open-data registry ---------------------------------------------------------------


def dataset_rows(body: bytes) -> list[dict[str, Any]]:
    """The rows of a SODA JSON response; ExtractionError when it is not a JSON array of objects."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ExtractionError(f"registry page is not JSON: {exc}") from exc
    if isinstance(data, dict) and data.get("error"):
        # SODA reports a bad query as an object with "error" and "message".
        raise ExtractionError(f"registry error: {str(data.get('message') or data)[:300]}")
    if not isinstance(data, list):
        raise ExtractionError(f"registry page is a {type(data).__name__}, not a JSON array")
    return [row for row in data if isinstance(row, dict)]


def _floating_date(value: Any) -> datetime | None:
    """A Socrata floating timestamp read as the Rome date it names (the time part is always 00:00)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        day = date.fromisoformat(value.strip()[:10])
    except ValueError as exc:
        raise ValueError(f"not a date: {value!r}") from exc
    return local_midnight(day, ROME)


def is_excluded(row: Mapping[str, Any]) -> bool:
    return one_line(row.get("tipo_strumento")).lower() in EXCLUDED_TYPES


def row_to_record(
    row: Mapping[str, Any], *, fetched_at: datetime, portal_url: str, detail_url: str | None = None
) -> CallRecord | None:
    """One registry row as a call (None for an excluded type). Raises ValueError for an unusable row."""
    if is_excluded(row):
        return None
    code = one_line(row.get("codice_bando"))
    if not code:
        raise ValueError("row without codice_bando")
    title = one_line(row.get("titolo_bando"))
    if not title:
        raise ValueError(f"{code}: row without titolo_bando")
    opens = _floating_date(row.get("apertura_adesione"))
    closes = _floating_date(row.get("chiusura_adesione"))
    canonical = detail_url is not None and is_canonical_detail_url(detail_url, code)
    url = detail_url if detail_url and canonical else bare_detail_url(portal_url, code)
    ente, direzione = one_line(row.get("ente")), one_line(row.get("direzione_generale"))
    granting = " – ".join(part for part in (ente, direzione) if part)
    instrument = one_line(row.get("tipo_strumento"))
    record = CallRecord(
        source=SOURCE,
        source_id=code,
        url=url,
        title=title,
        language="it",
        opens=opens,
        opens_precision=Precision.DATE if opens else None,
        closes=closes,
        closes_precision=Precision.DATE if closes else None,
        granting_body=granting,
        regions=("Lombardia",),
        keywords=(instrument,) if instrument else (),
        raw={"dataset": dict(row), "url_kind": "canonical" if canonical else "bare"},
    )
    return _restatus(record, fetched_at)


def parse_dataset(
    body: bytes,
    url: str,
    fetched_at: datetime,
    *,
    portal_url: str,
    detail_urls: Mapping[str, str] | None = None,
    errors: list[str] | None = None,
) -> list[CallRecord]:
    """A page of the registry as calls (excluded types dropped, unreadable rows noted in ``errors``).

    ``detail_urls`` maps codes to canonical detail URLs learnt elsewhere (listing, earlier runs).
    """
    records: list[CallRecord] = []
    for index, row in enumerate(dataset_rows(body)):
        code = one_line(row.get("codice_bando"))
        try:
            record = row_to_record(
                row, fetched_at=fetched_at, portal_url=portal_url, detail_url=(detail_urls or {}).get(code)
            )
        except ValueError as exc:
            note(errors, f"registry row {index} ({code or 'no code'}) in {url}: {exc}")
            continue
        if record is not None:
            records.append(record)
    return records


def row_fingerprint(row: Mapping[str, Any]) -> str:
    """What of a registry row describes the call (the application counter is left out)."""
    stable = {k: v for k, v in sorted(row.items()) if k not in VOLATILE_COLUMNS}
    return hashlib.sha256(json.dumps(stable, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:16]


# --- the portal listing -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListingCard:
    """One result card of the portal's listing/search."""

    code: str
    title: str
    url: str
    summary: str = ""
    status_label: str = ""
    opens: datetime | None = None
    opens_precision: Precision | None = None
    closes: datetime | None = None
    closes_precision: Precision | None = None

    @property
    def status(self) -> CallStatus:
        return status_from_label(self.status_label)

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.as_json(), sort_keys=True).encode()).hexdigest()[:16]

    def as_json(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class ListingPage:
    cards: tuple[ListingCard, ...]
    #: The last page number the page announces (``data-max-page-num`` or the pager), if any.
    max_page: int | None


def _utf8_or_cp1252(body: bytes) -> str:
    """The charset of a page that declares none: UTF-8 when the bytes are valid UTF-8, else
    windows-1252 (what browsers assume for Italian pages, a superset of Latin-1)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def decode_page(
    body: bytes, url: str, *, content_type: str | None = None, errors: list[str] | None = None
) -> str:
    """A page's text by its declared charset (BOM, header, ``<meta>``, see the module docstring).

    Bytes the charset cannot decode become U+FFFD and one error line says so.
    """
    encoding, text = html_to_unicode(content_type, body, auto_detect_fun=_utf8_or_cp1252)
    if "\ufffd" in text:
        note(errors, f"{url}: bytes not valid in its charset ({encoding}) replaced; some text is garbled")
    return text


def _sel(
    body: bytes | str, url: str = "", *, content_type: str | None = None, errors: list[str] | None = None
) -> Selector:
    text = (
        decode_page(body, url, content_type=content_type, errors=errors) if isinstance(body, bytes) else body
    )
    return Selector(text=text or "<html></html>", type="html")


def _closing_input(value: str | None) -> tuple[datetime, Precision] | None:
    value = one_line(value)
    if not value:
        return None
    return parse_it_datetime(value, tz=ROME)


def _labelled_datetime(text: str, label: str) -> tuple[datetime, Precision] | None:
    """The date (and hour) written after ``label`` in ``text`` ("Domande dal: 16/06/2026 , ore 10:00")."""
    m = re.search(re.escape(label) + r"\s*:?\s*(.{0,60})", text, re.IGNORECASE)
    if not m:
        return None
    return parse_it_datetime(m.group(1), tz=ROME)


def is_error_page(sel: Selector) -> bool:
    title = one_line(sel.xpath("//title/text()").get())
    return title.lower().startswith("errore") and "bandi" in title.lower()


def parse_listing(
    body: bytes,
    url: str,
    fetched_at: datetime,
    *,
    errors: list[str] | None = None,
    content_type: str | None = None,
) -> ListingPage:
    """The cards of a listing or search page, and how many pages there are.

    An HTML page with no card is a valid empty result; the portal's error page raises.
    ``content_type`` is the response's header (its charset decodes the page).
    """
    del fetched_at  # cards carry no relative dates; kept for the extractor signature
    sel = _sel(body, url, content_type=content_type, errors=errors)
    if is_error_page(sel):
        raise PortalErrorPage(f"listing {url}: the portal answered with its error page")
    cards: list[ListingCard] = []
    seen: set[str] = set()
    for index, card in enumerate(sel.css("div.card.card-big, div.card.card-bg")):
        try:
            parsed = _parse_card(card, url)
        except ValueError as exc:
            note(errors, f"listing card {index} in {url}: {exc}")
            continue
        if parsed.code in seen:
            continue
        seen.add(parsed.code)
        cards.append(parsed)
    max_page: int | None = None
    announced = sel.xpath("//@data-max-page-num").get()
    numbers = [int(n) for n in sel.css("a.page-num::attr(data-page-num)").getall() if n.strip().isdigit()]
    if announced and announced.strip().isdigit():
        max_page = int(announced.strip())
    elif numbers:
        max_page = max(numbers)
    return ListingPage(cards=tuple(cards), max_page=max_page)


def _parse_card(card: Selector, page_url: str) -> ListingCard:
    href = (
        card.css("a.text-decoration-none::attr(href)").get()
        or card.xpath(f".//a[contains(@href, '{DETAIL_PATH}')]/@href").get()
    )
    link = http_url(href, page_url) if href else None
    code = one_line(card.css("strong.code::text").get()) or (code_from_url(link) if link else None) or ""
    if not code:
        raise ValueError("card without a code")
    if href and not link:
        raise ValueError(f"{code}: card link is not an http(s) URL: {one_line(href)[:100]!r}")
    title = one_line(
        card.css("h4.card-title::attr(data-content)").get()
        or " ".join(card.css("h4.card-title ::text").getall())
        or card.css("img::attr(alt)").get()
    )
    if not title:
        raise ValueError(f"{code}: card without a title")
    if not link:
        raise ValueError(f"{code}: card without a detail link")
    summary = one_line(
        card.css("p.card-text svg.icon-popover::attr(data-content)").get()
        or " ".join(card.css("p.card-text ::text").getall())
    )
    text = one_line(" ".join(card.xpath(".//text()").getall()))
    closes = _closing_input(card.css("input.checkCloseDate::attr(value)").get()) or _labelled_datetime(
        text, "Scade il"
    )
    opens = _labelled_datetime(text, "Domande dal")
    labels = [one_line(" ".join(c.xpath(".//text()").getall())) for c in card.css(".chip-label")]
    label = next((lab for lab in labels if status_from_label(lab) != CallStatus.UNKNOWN), "")
    return ListingCard(
        code=code,
        title=title,
        url=link,
        summary=summary,
        status_label=label,
        opens=opens[0] if opens else None,
        opens_precision=opens[1] if opens else None,
        closes=closes[0] if closes else None,
        closes_precision=closes[1] if closes else None,
    )


def card_to_record(card: ListingCard, *, fetched_at: datetime) -> CallRecord:
    """A call known only from the listing (the registry has not caught up with it yet)."""
    canonical = is_canonical_detail_url(card.url, card.code)
    record = CallRecord(
        source=SOURCE,
        source_id=card.code,
        url=card.url,
        title=card.title,
        summary=card.summary,
        language="it",
        opens=card.opens,
        opens_precision=card.opens_precision,
        closes=card.closes,
        closes_precision=card.closes_precision,
        granting_body="Regione Lombardia",
        regions=("Lombardia",),
        raw={"listing": card.as_json(), "url_kind": "canonical" if canonical else "bare"},
    )
    return _restatus(record, fetched_at, label_status=card.status)


def merge_card(record: CallRecord, card: ListingCard, *, fetched_at: datetime) -> CallRecord:
    """The registry record with what the listing card adds: canonical URL, hours, summary."""
    changes: dict[str, Any] = {}
    raw = dict(record.raw or {})
    raw["listing"] = card.as_json()
    if is_canonical_detail_url(card.url, record.source_id):
        changes["url"] = card.url
        raw["url_kind"] = "canonical"
    if card.closes is not None:
        changes.update(closes=card.closes, closes_precision=card.closes_precision)
    if card.opens is not None and (record.opens is None or card.opens_precision == Precision.DATETIME):
        changes.update(opens=card.opens, opens_precision=card.opens_precision)
    if card.summary and not record.summary:
        changes["summary"] = card.summary
    merged = replace(record, **changes, raw=raw)
    return _restatus(merged, fetched_at, label_status=card.status)


# --- the detail page ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DetailPage:
    """What a Bandi e Servizi detail page says about one call."""

    url: str
    code: str | None = None
    title: str = ""
    status_label: str = ""
    status: CallStatus = CallStatus.UNKNOWN
    published: datetime | None = None
    published_precision: Precision | None = None
    opens: datetime | None = None
    opens_precision: Precision | None = None
    closes: datetime | None = None
    closes_precision: Precision | None = None
    funding_source: str = ""
    beneficiaries: tuple[str, ...] = ()
    summary: str = ""
    description: str = ""
    granting_body: str = ""
    attachments: tuple[Attachment, ...] = ()
    budget_total: Decimal | None = None


def _values_after_label(sel: Selector, label: str, target: str) -> list[str]:
    """Texts (or ``@title``) of the ``target`` elements in the block that follows a ``<small>`` label.

    The real markup is ``<p><small>Fonti di finanziamento</small></p><div class="row">...<span>``:
    the values sit in the element right after the label's parent. Only that block is read, so a
    missing value never borrows the next field's.
    """
    labels = sel.xpath(f"//small[contains(normalize-space(.), '{label}')]")
    if not labels:
        return []
    small = labels[0]
    blocks = small.xpath("following-sibling::*[1]") or small.xpath("../following-sibling::*[1]")
    values: list[str] = []
    for block in blocks[:1]:
        if block.xpath("boolean(self::small or .//small)").get() == "1":
            continue  # the next label: this one has no value
        for node in block.xpath(f"descendant-or-self::{target}"):
            text = one_line(node.attrib.get("title")) if target == "a" else ""
            text = text or one_line(" ".join(node.xpath(".//text()").getall()))
            if text and text not in values:
                values.append(text)
    return values


def _status_chip(sel: Selector) -> tuple[Selector | None, str, CallStatus]:
    """The chip that states the call's status (a page can show other chips: tags, targets)."""
    for chip in sel.css("div.chip"):
        label = one_line(" ".join(chip.css(".chip-label ::text").getall()))
        status = status_from_label(label)
        if status == CallStatus.UNKNOWN:
            classes = (chip.attrib.get("class") or "").split()
            status = next((s for c, s in _STATUS_CLASSES.items() if c in classes), CallStatus.UNKNOWN)
        if status != CallStatus.UNKNOWN:
            return chip, label, status
    return None, "", CallStatus.UNKNOWN


_SAFE_ID = re.compile(r"^[\w-]{1,100}$")


def _accordion_sections(sel: Selector) -> list[tuple[str, str, str]]:
    """(heading, body id, body HTML) of each collapsible section of the page."""
    sections: list[tuple[str, str, str]] = []
    for header in sel.css("div.collapse-header"):
        heading = one_line(
            " ".join(header.css(".head-text ::text").getall()) or " ".join(header.xpath(".//text()").getall())
        )
        target = (header.css("[data-target]::attr(data-target)").get() or "").lstrip("#")
        header_id = header.attrib.get("id", "")
        target = target if _SAFE_ID.match(target) else ""
        header_id = header_id if _SAFE_ID.match(header_id) else ""
        body = None
        if target:
            body = sel.xpath(f"//div[@id='{target}']")
        if not body and header_id:
            body = sel.xpath(f"//div[@aria-labelledby='{header_id}']")
        if body:
            inner = body[0].css("div.collapse-body") or body
            sections.append((heading, target, inner[0].get()))
    return sections


def parse_detail(
    body: bytes,
    url: str,
    fetched_at: datetime,
    *,
    content_type: str | None = None,
    errors: list[str] | None = None,
) -> DetailPage:
    """Read a detail page. Raises :class:`PortalErrorPage` for the portal's error page.

    ``content_type`` is the response's header (its charset decodes the page); ``errors`` gets a
    line for undecodable bytes and for links that are not http(s).
    """
    del fetched_at  # the page's dates are absolute
    if not body or not body.strip():
        raise ExtractionError(f"detail {url}: empty body")
    sel = _sel(body, url, content_type=content_type, errors=errors)
    if is_error_page(sel):
        raise PortalErrorPage(f"detail {url}: the portal answered with its error page")

    # Only the canonical link's path is taken, on the host the page came from: the record must
    # point where the crawl really reads (a mirror or a replay server), not elsewhere.
    canonical = one_line(sel.css("link[rel=canonical]::attr(href)").get())
    canonical_path = urlsplit(canonical).path if canonical else ""
    page_url = (
        urljoin(url, canonical_path)
        if canonical_path and is_canonical_detail_url(urljoin(url, canonical_path))
        else url
    )
    code = code_from_url(page_url) or one_line(sel.css("strong.code::text").get()) or None

    title = one_line(" ".join(sel.css("h1 ::text").getall()))
    if not title:
        og = sel.css("meta[property='og:title']::attr(content)").get()
        page_title = one_line(sel.xpath("//title/text()").get())
        title = one_line(og) or page_title.split("|")[0].strip()

    chip, label, status = _status_chip(sel)

    def entity_datetime(entity: str, label_text: str) -> tuple[datetime, Precision] | None:
        strong = sel.xpath(f"//strong[@data-entity='{entity}']")
        if strong:
            # The hour follows the <strong>: "<strong>16/06/2026 ,</strong> ore 10:00".
            parent_text = one_line(" ".join(strong[0].xpath("..//text()").getall()))
            found = _labelled_datetime(parent_text, label_text) or parse_it_datetime(parent_text, tz=ROME)
            if found:
                return found
        return None

    published = entity_datetime("pubblicazione", "Pubblicato il")
    opens = entity_datetime("apertura", "Domande dal")
    # The machine-readable closing moment sits right after the status chip; other cards on the
    # page (related calls) may carry their own.
    close_input = (
        chip.xpath("following::input[contains(@class, 'checkCloseDate')][1]/@value").get() if chip else None
    )
    closes = _closing_input(close_input or sel.css("input.checkCloseDate::attr(value)").get())
    scade = entity_datetime("chiusura", "Scade il")
    if closes is None or (
        scade is not None and closes[1] == Precision.DATE and scade[1] == Precision.DATETIME
    ):
        closes = scade or closes

    funding = _values_after_label(sel, "Fonti di finanziamento", "span")
    granting = _values_after_label(sel, "Ente responsabile", "a") or _values_after_label(
        sel, "Ente responsabile", "span"
    )

    sections = _accordion_sections(sel)
    beneficiaries: tuple[str, ...] = ()
    description_parts: list[str] = []
    budget = None
    for heading, body_id, html in sections:
        text = html_to_text(html)
        if body_id == "partecipanti" or "partecipare" in heading.lower():
            beneficiaries = tuple(html_lines(html, keep_breaks=False))
        if budget is None and "dotazione" in heading.lower():
            budget = next(iter_amounts(text), None)
        if text:
            description_parts.append(f"{heading}\n{text}" if heading else text)
    if budget is None:
        page_text = one_line(
            " ".join(sel.xpath("//body//text()[not(ancestor::script) and not(ancestor::style)]").getall())
        )
        m = re.search(r"dotazione\s+finanziaria\s*:?(.{0,200})", page_text, re.IGNORECASE)
        if m:
            budget = next(iter_amounts(m.group(1)), None)

    attachments: list[Attachment] = []
    seen: set[str] = set()
    for link in sel.xpath(f"//a[contains(@href, '{DOWNLOAD_PATH}')]"):
        href = http_url(link.attrib.get("href"), page_url)
        if href is None:
            note(errors, f"detail {url}: attachment link is not an http(s) URL; skipped")
            continue
        if href in seen:
            continue
        seen.add(href)
        file_name = parse_qs(urlsplit(href).query).get("fileName", [""])[0]
        name = one_line(unquote(file_name)) or one_line(" ".join(link.xpath(".//text()").getall())) or href
        attachments.append(Attachment(name=name, url=href))

    return DetailPage(
        url=page_url,
        code=code,
        title=title,
        status_label=label,
        status=status,
        published=published[0] if published else None,
        published_precision=published[1] if published else None,
        opens=opens[0] if opens else None,
        opens_precision=opens[1] if opens else None,
        closes=closes[0] if closes else None,
        closes_precision=closes[1] if closes else None,
        funding_source="; ".join(funding),
        beneficiaries=beneficiaries,
        summary=one_line(sel.css("meta[name=description]::attr(content)").get()),
        description="\n\n".join(description_parts),
        granting_body=granting[0] if granting else "",
        attachments=tuple(attachments),
        budget_total=budget,
    )


def enrich(record: CallRecord, detail: DetailPage, *, fetched_at: datetime) -> CallRecord:
    """The record with everything the detail page states (the page wins over registry and listing)."""
    if detail.code and detail.code != record.source_id:
        raise ExtractionError(f"detail {detail.url} is call {detail.code}, expected {record.source_id}")
    changes: dict[str, Any] = {}
    raw = dict(record.raw or {})
    if is_canonical_detail_url(detail.url, record.source_id):
        changes["url"] = detail.url
        raw["url_kind"] = "canonical"
    for name in ("published", "opens", "closes"):
        value = getattr(detail, name)
        if value is not None:
            changes[name] = value
            changes[f"{name}_precision"] = getattr(detail, f"{name}_precision")
    for name in ("summary", "description", "funding_source", "granting_body"):
        value = getattr(detail, name)
        if value:
            changes[name] = value
    if detail.beneficiaries:
        changes["beneficiaries"] = detail.beneficiaries
    if detail.attachments:
        changes["attachments"] = detail.attachments
    if detail.budget_total is not None:
        changes["budget_total"] = detail.budget_total
    raw["detail"] = {"url": detail.url, "status_label": detail.status_label}
    merged = replace(record, **changes, raw=raw)
    return _restatus(merged, fetched_at, label_status=detail.status)


def extract_detail(
    body: bytes,
    url: str,
    fetched_at: datetime,
    *,
    record: CallRecord,
    content_type: str | None = None,
    errors: list[str] | None = None,
) -> CallRecord:
    """Pure extractor of a detail page: ``record`` (from registry/listing) enriched by the page."""
    detail = parse_detail(body, url, fetched_at, content_type=content_type, errors=errors)
    return enrich(record, detail, fetched_at=fetched_at)
