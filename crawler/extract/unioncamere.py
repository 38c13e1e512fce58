"""Unioncamere Lombardia (TYPO3, extension "modellobando"): listing and detail pages → calls.

No page of the site was ever recorded: the URL patterns are known (``shared/SOURCES-MORE.md`` §3),
the markup is not. So the parser leans on the URL patterns and on labelled text, not on class
names, and every assumption is written once, in :data:`ASSUMPTIONS`; a page that breaks one
raises :class:`~crawler.extract.burl.ShapeError` (the run is degraded, the body kept) instead of
giving an empty or wrong listing. What would confirm them: one recorded listing page
(``?stato=2``) and one ``dettaglio-bando`` page, kept in ``tests/data/crawler/unioncamere``.

* :func:`parse_listing` — the entries of one listing page and the next page's URL;
* :func:`extract_detail` — one call from its detail page, with every PDF linked there as an
  attachment (a new PDF, e.g. a "determinazione" with the ranking, is an act on the call:
  :func:`pdf_acts`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from crawler.extract import ShapeError, note
from crawler.extract.acts import classify
from crawler.parsing import (
    find_deadline,
    html_lines,
    http_url,
    one_line,
    page_selector,
    parse_amount,
    parse_it_datetime,
    status_from_dates,
)
from storage.acts import Act
from storage.records import ROME, Attachment, CallRecord, CallStatus, Precision

SOURCE = "unioncamere"
GRANTING_BODY = "Unioncamere Lombardia"

#: Every assumption about the site's pages, in one place (confirm with one recorded page of each).
ASSUMPTIONS = {
    "detail_link": 'each call of a listing links its page at ".../dettaglio-bando/<slug>" (SOURCES-MORE §3)',
    "empty": 'a listing without calls says so in words ("nessun bando", "nessun risultato")',
    "next": 'a further listing page, if any, is linked by rel="next" or a ".next a" / ".pagination" link',
    "title": "the call's page has its title in the first <h1>",
    "dates": 'dates are written after labels "apertura" and "chiusura"/"scadenza" (dd/mm/yyyy, maybe a time)',
    "budget": 'the budget follows a label "dotazione" or "risorse"',
    "pdf": 'documents are <a href> links ending in ".pdf" (rankings, amendments under /fileadmin/bandi/)',
}

#: ``stato`` filter value → the status the listing gives its calls.
STATUSES = {1: CallStatus.FORTHCOMING, 2: CallStatus.OPEN}

_DETAIL = re.compile(r"/dettaglio-bando/([a-z0-9][a-z0-9_\-]{0,200})/?$", re.I)
_EMPTY = re.compile(r"nessun\w*\s+(?:bando|bandi|risultat)", re.I)
_LABELS = {
    "opens": re.compile(r"^(?:data\s+(?:di\s+)?)?apertura\b", re.I),
    "closes": re.compile(r"^(?:data\s+(?:di\s+)?)?(?:chiusura|scadenza)\b|^scade\b", re.I),
    "budget": re.compile(r"^(?:dotazione|risorse)\b", re.I),
    "beneficiaries": re.compile(r"^(?:beneficiari|destinatari|chi\s+pu)", re.I),
}


@dataclass(frozen=True, slots=True)
class Entry:
    slug: str
    url: str
    title: str


@dataclass(frozen=True, slots=True)
class Listing:
    entries: tuple[Entry, ...]
    next_url: str | None


def slug_of(url: str) -> str | None:
    match = _DETAIL.search(urlsplit(url).path)
    return match.group(1).lower() if match else None


def parse_listing(body: bytes, url: str, fetched_at: datetime) -> Listing:
    """The calls one listing page links (by the detail-page URL pattern) and the next page."""
    page = page_selector(body)
    entries: dict[str, Entry] = {}
    for link in page.css("a[href]"):
        href = http_url(link.attrib.get("href"), url)
        slug = slug_of(href) if href else None
        if href is None or slug is None or slug in entries:
            continue
        title = one_line(" ".join(link.css("::text").getall())) or one_line(link.attrib.get("title"))
        if title:
            entries[slug] = Entry(slug=slug, url=href.split("#")[0], title=title)
    if not entries and not _EMPTY.search(" ".join(page.css("body ::text").getall())):
        raise ShapeError(f"{ASSUMPTIONS['detail_link']}; {ASSUMPTIONS['empty']}: neither on {url}")
    nxt = page.css('a[rel="next"]::attr(href), .next a::attr(href), .pagination a.next::attr(href)').get()
    next_url = http_url(nxt, url) if nxt else None
    return Listing(tuple(entries.values()), next_url if next_url != url else None)


def _labelled(lines: Sequence[str]) -> dict[str, str]:
    """Label → value: "Label: value" on one line, or the label alone and the value next."""
    out: dict[str, str] = {}
    for i, line in enumerate(lines):
        for name, label in _LABELS.items():
            if name in out or not label.match(line):
                continue
            _label, sep, tail = line.partition(":")
            value = tail.strip() if sep and tail.strip() else (lines[i + 1] if i + 1 < len(lines) else "")
            if value:
                out[name] = value
    return out


def extract_detail(
    body: bytes,
    url: str,
    fetched_at: datetime,
    *,
    listed_status: CallStatus = CallStatus.UNKNOWN,
    errors: list[str] | None = None,
) -> CallRecord:
    """One call from its ``dettaglio-bando`` page (status from the listing's filter, then dates)."""
    page = page_selector(body)
    slug = slug_of(url)
    if slug is None:
        raise ShapeError(f"{ASSUMPTIONS['detail_link']}: {url} is not a call page")
    title = one_line(" ".join(page.css("h1 ::text").getall()[:20]))
    if not title:
        raise ShapeError(f"{ASSUMPTIONS['title']}: no <h1> on {url}")
    main = page.css("main").get() or page.css("#content").get() or page.css("body").get() or ""
    lines = html_lines(main)
    fields = _labelled(lines)
    opened = parse_it_datetime(fields.get("opens"), tz=ROME)
    closed = parse_it_datetime(fields.get("closes"), tz=ROME) or find_deadline("\n".join(lines), tz=ROME)
    if not closed:
        note(errors, f"unioncamere {slug}: {ASSUMPTIONS['dates']}: no closing date found")
    budget = parse_amount(fields.get("budget"))
    abstract = page.css(".bando-abstract").get()
    summary_lines = html_lines(abstract) if abstract else [line for line in lines if len(line) >= 80][:1]
    attachments: list[Attachment] = []
    links: list[str] = []
    host = urlsplit(url).hostname
    for link in page.css("main a[href], #content a[href]") or page.css("a[href]"):
        href = http_url(link.attrib.get("href"), url)
        if href is None:
            continue
        name = one_line(" ".join(link.css("::text").getall())) or href.rsplit("/", 1)[-1]
        if urlsplit(href).path.lower().endswith(".pdf"):
            if all(a.url != href for a in attachments):
                attachments.append(Attachment(name=name[:300], url=href))
        elif urlsplit(href).hostname != host and href not in links:
            links.append(href)
    opens = opened[0] if opened else None
    closes = closed[0] if closed else None
    closes_precision = closed[1] if closed else None
    return CallRecord(
        source=SOURCE,
        source_id=slug,
        url=url,
        title=title,
        summary=" ".join(summary_lines)[:2000],
        description="\n".join(lines),
        status=_status(listed_status, opens, closes, closes_precision, fetched_at),
        opens=opens,
        opens_precision=opened[1] if opened else None,
        closes=closes,
        closes_precision=closes_precision,
        budget_total=budget,
        beneficiaries=(fields["beneficiaries"],) if fields.get("beneficiaries") else (),
        granting_body=GRANTING_BODY,
        regions=("Lombardia",),
        attachments=tuple(attachments),
        links=tuple(links),
        raw={"listed_status": listed_status.value, "fields": fields},
    )


def _status(
    listed: CallStatus,
    opens: datetime | None,
    closes: datetime | None,
    precision: Precision | None,
    now: datetime,
) -> CallStatus:
    """The dates' word (:func:`crawler.parsing.status_from_dates`) when they say it is closed or
    give an opening; else the listing's filter (``?stato=``) the call was found under."""
    status = status_from_dates(opens=opens, closes=closes, closes_precision=precision, now=now)
    return status if status is CallStatus.CLOSED or opens is not None else listed


def _act_id(url: str) -> str:
    """The PDF's URL, or its hash when too long for the key."""
    return url if len(url) <= 255 else "sha256:" + hashlib.sha256(url.encode("utf-8")).hexdigest()


def pdf_acts(record: CallRecord, known: Sequence[str]) -> list[Act]:
    """The PDFs of ``record`` not among the ``known`` URLs, each as an act on that call."""
    seen = set(known)
    return [
        Act(
            source=SOURCE,
            act_id=_act_id(attachment.url),
            kind=classify(f"{attachment.name} {attachment.url.rsplit('/', 1)[-1]}", default="documento"),
            title=attachment.name,
            url=attachment.url,
            target=(record.source, record.source_id),
        )
        for attachment in record.attachments
        if attachment.url not in seen
    ]
