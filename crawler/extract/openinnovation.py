"""Open Innovation Lombardia: EEN partner searches (listing cards, detail pages) and call pages.

Built on a real page (``tests/data/crawler/openinnovation``: four verbatim fragments of the page of
proposal 2024, recorded 2026-09-07): the detail selectors below were all seen there. Unverified,
and written once in :data:`ASSUMPTIONS`: that the listing uses the same card partial as the
"other proposals" box of a detail page (only its links are relied on when it does not), and the
markup of the "bandi e sperimentazioni" pages (never recorded: read by their labels).

* :func:`parse_proposals` — the proposals one listing page links (id, URL, and the card's title,
  type, expiry and EEN reference when the card partial is there);
* :func:`extract_proposal` — one partner search (``kind="partner_search"``) from its page: type,
  EEN reference, expiry (the closing date), abstract, the "express interest" link;
* :func:`parse_call_links` / :func:`extract_call_page` — a call page's allocation and
  plain-language summary, as a record that links the Bandi e Servizi page it names (so it joins
  that call's duplicate group); a page naming no Bandi e Servizi call gives nothing.

Dates are Italian even on the ``/en/`` pages ("19 agosto 2027"); an expiry is a date (Rome).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from parsel import Selector

from crawler.extract import ShapeError, note
from crawler.parsing import (
    html_lines,
    html_to_text,
    http_url,
    one_line,
    page_selector,
    parse_amount,
    parse_it_date,
    status_from_dates,
)
from storage.records import CallRecord, Precision, local_midnight

SOURCE = "openinnovation"
EEN = "Enterprise Europe Network"

#: Every assumption about the pages, in one place (what would confirm each is said beside it).
ASSUMPTIONS = {
    "proposal_link": "a proposal's page is /<lang>/collaborations/collaboration-proposals/<id>/<slug> "
    "(seen on the real page; a recorded listing page would confirm the listing links the same way)",
    "card": "listing cards are the .collaborations-card partial of the real detail page's related box "
    "(confirm with a recorded listing page; without cards only the links are used)",
    "detail": "h1.collaborations-detail-title, span.collaborations-detail-type, "
    ".collaborations-info-value.lead (EEN id), the info item labelled EXPIRATION DATE, "
    "div.collaborations-abstract-text, a.collaborations-approfondisci (all seen on the real page)",
    "call_page": 'a "bandi e sperimentazioni" page has its title in <h1> and labelled blocks "Misura", '
    '"Dotazione finanziaria", "Destinatari" (labels from a stored copy of a real page; markup invented)',
    "call_link": "a call page links its Bandi e Servizi page (/servizi/servizio/bandi/dettaglio/...)",
}

#: CSS class number → type, as on the real page (``collaborations-type-<n>``).
TYPES = {"1": "Technology offer", "2": "Technology request", "5": "R&D Partner search"}

_PROPOSAL = re.compile(r"/(?:[a-z]{2}/)?collaborations/collaboration-proposals/(\d+)(?:/[^?#]*)?$")
_CALL_PAGE = re.compile(r"/(?:[a-z]{2}/)?bandi-e-sperimentazioni/([a-z0-9][a-z0-9\-]{0,200})/?$")
_BANDI_E_SERVIZI = re.compile(r"/servizi/servizio/bandi/dettaglio/")
_TYPE_CLASS = re.compile(r"collaborations-type-(\d+)")
_EEN_ID = re.compile(r"\b([A-Z]{4,5}\d{11})\b")
_LABELS = {
    "measure": re.compile(r"^misura$", re.I),
    "budget": re.compile(r"^dotazione(?:\s+finanziaria)?$", re.I),
    "recipients": re.compile(r"^destinatari$", re.I),
}


@dataclass(frozen=True, slots=True)
class Card:
    """A proposal as a listing shows it (what the card partial holds, when it is there)."""

    id: str
    url: str
    title: str = ""
    type: str = ""
    expires: str = ""
    een_id: str = ""

    def as_json(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in self.__slots__}

    def fingerprint(self) -> str:
        blob = "\x1f".join((self.title, self.type, self.expires, self.een_id))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def proposal_id(url: str) -> str | None:
    match = _PROPOSAL.search(urlsplit(url).path)
    return match.group(1) if match else None


def _type_of(node: Selector) -> str:
    label = one_line(" ".join(node.css("::text").getall()))
    number = _TYPE_CLASS.search(node.attrib.get("class", ""))
    return label or (TYPES.get(number.group(1), "") if number else "")


def parse_proposals(body: bytes, url: str, fetched_at: datetime) -> list[Card]:
    """The proposals a listing page links, in page order (cards when present, else bare links)."""
    page = page_selector(body)
    cards: dict[str, Card] = {}
    for node in page.css(".collaborations-card"):
        href = http_url(node.css(".collaborations-card-title a::attr(href), a::attr(href)").get(), url)
        pid = proposal_id(href) if href else None
        if href is None or pid is None or pid in cards:
            continue
        een = _EEN_ID.search(one_line(" ".join(node.css(".collaborations-card-een ::text").getall())))
        type_node = node.css(".collaborations-card-type")
        cards[pid] = Card(
            id=pid,
            url=href,
            title=one_line(" ".join(node.css(".collaborations-card-title a ::text").getall())),
            type=_type_of(type_node[0]) if type_node else "",
            expires=one_line(node.css(".collaborations-card-scadenza strong::text").get()),
            een_id=een.group(1) if een else "",
        )
    for link in page.css("a[href]"):
        href = http_url(link.attrib.get("href"), url)
        pid = proposal_id(href) if href else None
        if href is not None and pid is not None and pid not in cards:
            cards[pid] = Card(id=pid, url=href, title=one_line(link.attrib.get("title")))
    return list(cards.values())


def extract_proposal(
    body: bytes, url: str, fetched_at: datetime, *, card: Card | None = None, errors: list[str] | None = None
) -> CallRecord:
    """One partner search from its page (the listing's card fills what the page lacks)."""
    page = page_selector(body)
    pid = proposal_id(url) or (card.id if card else None)
    if pid is None:
        raise ShapeError(f"{ASSUMPTIONS['proposal_link']}: {url} is not a proposal page")
    title = one_line(" ".join(page.css("h1.collaborations-detail-title ::text").getall()))
    title = (
        title
        or one_line(page.css('meta[property="og:title"]::attr(content)').get())
        or (card.title if card else "")
    )
    if not title:
        raise ShapeError(f"{ASSUMPTIONS['detail']}: no title on {url}")
    type_nodes = page.css(".collaborations-detail-type")
    kind = _type_of(type_nodes[0]) if type_nodes else (card.type if card else "")
    een = one_line(page.css(".collaborations-info-card .collaborations-info-value.lead::text").get())
    een = een or (card.een_id if card else "")
    expiry_text = ""
    items = page.css(".collaborations-info-item")
    for item in items:
        label = one_line(" ".join(item.css(".collaborations-info-label ::text").getall())).casefold()
        if "expir" in label or "scadenz" in label:
            expiry_text = one_line(" ".join(item.css(".collaborations-info-value ::text").getall()))
    if not expiry_text and len(items) > 1:
        expiry_text = one_line(" ".join(items[1].css(".collaborations-info-value ::text").getall()))
    expiry_day = parse_it_date(expiry_text) or parse_it_date(card.expires if card else "")
    if expiry_day is None:
        note(errors, f"openinnovation {pid}: no expiry date ({expiry_text[:60]!r})")
    abstract_html = page.css("div.collaborations-abstract-text").get()
    abstract = html_to_text(abstract_html) if abstract_html else ""
    abstract = abstract or one_line(page.css('meta[property="og:description"]::attr(content)').get())
    cta = http_url(page.css("a.collaborations-approfondisci::attr(href)").get(), url)
    canonical = http_url(page.css('link[rel="canonical"]::attr(href)').get(), url)
    closes = local_midnight(expiry_day) if expiry_day else None
    return CallRecord(
        source=SOURCE,
        source_id=f"proposal:{pid}",
        url=canonical if canonical and proposal_id(canonical) == pid else url,
        title=title,
        summary=abstract[:1000],
        description=abstract,
        language="it",
        status=status_from_dates(opens=None, closes=closes, closes_precision=Precision.DATE, now=fetched_at),
        closes=closes,
        closes_precision=Precision.DATE if closes else None,
        programme=EEN,
        granting_body=EEN,
        # Type and EEN reference stay out of the matched text: "Technology request" would make
        # every proposal speak of research to the matcher.
        links=(cta,) if cta else (),
        raw={"type": kind, "een_id": een, "expires": expiry_text, "cta": cta},
        kind="partner_search",
    )


# --- "bandi e sperimentazioni" -------------------------------------------------------------------


def call_page_slug(url: str) -> str | None:
    match = _CALL_PAGE.search(urlsplit(url).path)
    return match.group(1) if match else None


def parse_call_links(body: bytes, url: str, fetched_at: datetime) -> list[tuple[str, str, str]]:
    """``(slug, url, link text)`` of each call page the listing links."""
    out: dict[str, tuple[str, str, str]] = {}
    for link in page_selector(body).css("a[href]"):
        href = http_url(link.attrib.get("href"), url)
        slug = call_page_slug(href) if href else None
        if href is not None and slug is not None and slug not in out:
            out[slug] = (slug, href, one_line(" ".join(link.css("::text").getall())))
    return list(out.values())


def extract_call_page(body: bytes, url: str, fetched_at: datetime) -> CallRecord | None:
    """The allocation and plain-language summary of a call page, linked to the Bandi e Servizi
    page it names; None when it names none (a challenge, a consultation: not a call we follow)."""
    page = page_selector(body)
    slug = call_page_slug(url)
    if slug is None:
        raise ShapeError(f"{ASSUMPTIONS['call_page']}: {url} is not a call page")
    target = next(
        (
            href
            for href in (http_url(h, url) for h in page.css("a::attr(href)").getall())
            if href and _BANDI_E_SERVIZI.search(urlsplit(href).path)
        ),
        None,
    )
    if target is None:
        return None
    title = one_line(" ".join(page.css("h1 ::text").getall()))
    if not title:
        raise ShapeError(f"{ASSUMPTIONS['call_page']}: no <h1> on {url}")
    lines = html_lines(page.css("body").get() or "")
    fields: dict[str, str] = {}
    for i, line in enumerate(lines[:-1]):
        for name, label in _LABELS.items():
            if name not in fields and label.match(line):
                fields[name] = lines[i + 1]
    summary = " ".join(p for p in (fields.get("measure", ""), fields.get("recipients", "")) if p)
    return CallRecord(
        source=SOURCE,
        source_id=f"bando:{slug}",
        url=url,
        title=title,
        summary=summary,
        budget_total=parse_amount(fields.get("budget")),
        granting_body="Regione Lombardia",
        regions=("Lombardia",),
        links=(target,),
        raw={"fields": fields},
    )
