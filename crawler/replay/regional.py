"""Replay routes of the Regione Lombardia and incentivi.gov.it sources, for :class:`ReplayServer`.

* :func:`install_lombardia` — the Socrata registry ``/resource/bukx-h2uy.json`` (SoQL ``$where``
  checked and applied, ``$order``/``$limit``/``$offset`` paging, an ETag per page and the
  dataset's Last-Modified, 304 on a match, as Socrata answers), the portal's
  ``POST /servizi/servizio/bandi/ricerca`` (status-filtered pages by ``pageNum``, or a search by
  code) and the detail pages at their canonical paths; the bare-code paths answer as the real
  portal does for some codes (a 404, or the HTTP-200 error page) or serve the page.
* :func:`install_incentivi` — the Solr ``select`` endpoint, with an ETag (304 on a match).

Both return the source's config section (pydantic model) pointing at the server. The bodies are
the bundled files under ``crawler/replay/recordings/lombardia`` and ``.../incentivi``, copies of
the crawler's test inputs in ``tests/data/crawler`` (``recordings/README.md`` says what is real
and what is synthetic).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from parsel import Selector

from crawler.config import IncentiviConfig, LombardiaConfig
from crawler.replay.server import RecordedRequest, ReplayServer, Reply, static

#: The bundled recordings (see its README for what each file is and where it comes from).
RECORDINGS = Path(__file__).resolve().parent / "recordings"
LOMBARDIA = RECORDINGS / "lombardia"
INCENTIVI = RECORDINGS / "incentivi"

DATASET_PATH = "/resource/bukx-h2uy.json"
SEARCH_PATH = "/servizi/servizio/bandi/ricerca"
DETAIL_PREFIX = "/servizi/servizio/bandi/dettaglio/"
SOLR_PATH = "/solr/coredrupal/select"

#: When the bundled registry rows were last updated, as the emulator's Last-Modified says.
DATASET_UPDATED = datetime(2026, 9, 1, 4, 0, tzinfo=UTC)

_JSON = {"Content-Type": "application/json;charset=utf-8"}
_HTML = {"Content-Type": "text/html;charset=UTF-8"}
_WHERE = re.compile(
    r"^chiusura_adesione >= '(?P<since>[\d\-T:]+)' OR "
    r"\(chiusura_adesione IS NULL AND apertura_adesione >= '(?P<sportello>[\d\-T:]+)'\)$"
)


class SocrataDataset:
    """``GET /resource/<id>.json`` over a list of rows (strings only, NULL columns missing).

    Only the ``$where`` the spider sends is understood; any other answers HTTP 400 with Socrata's
    error object, so a changed query cannot pass unnoticed.

    Validators as Socrata sends them: an ETag per answer (a hash of the page's body, in
    Socrata's ``"...--gzip"`` form) and a Last-Modified for the whole dataset (``updated``, the
    same on every page). A page asked with a matching ``If-None-Match``, or with no
    ``If-None-Match`` and an ``If-Modified-Since`` not before ``updated``, gets a 304. When
    ``rows`` is changed in place, ``updated`` moves on by a minute at the next request (no
    clock is read), so a client that sends only ``If-Modified-Since`` sees the change too.
    """

    def __init__(self, rows: Sequence[Mapping[str, Any]], *, updated: datetime = DATASET_UPDATED) -> None:
        self.rows = [dict(r) for r in rows]
        self.updated = updated
        #: Page requests answered (304s included) and, of them, the 304s.
        self.pages = 0
        self.not_modified = 0
        self._digest = self._rows_digest()

    def _rows_digest(self) -> str:
        return hashlib.sha256(json.dumps(self.rows, sort_keys=True).encode()).hexdigest()

    def __call__(self, request: RecordedRequest) -> Reply:
        q = {k: v[0] for k, v in request.query.items()}
        rows = self.rows
        where = q.get("$where")
        if where is not None:
            m = _WHERE.match(where)
            if not m:
                error = {"error": True, "message": f"Could not parse SoQL query: {where}"}
                return Reply(400, json.dumps(error).encode(), _JSON)
            since, sportello = m.group("since"), m.group("sportello")
            rows = [
                r
                for r in rows
                if (r.get("chiusura_adesione") or "") >= since
                or ("chiusura_adesione" not in r and (r.get("apertura_adesione") or "") >= sportello)
            ]
        order = q.get("$order")
        if order:
            rows = sorted(rows, key=lambda r: str(r.get(order.split()[0], "")))
        offset, limit = int(q.get("$offset", "0")), int(q.get("$limit", "1000"))
        self.pages += 1
        digest = self._rows_digest()
        if digest != self._digest:
            self._digest = digest
            self.updated += timedelta(minutes=1)
        body = json.dumps(rows[offset : offset + limit]).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:24] + '--gzip"'
        headers = {**_JSON, "ETag": etag, "Last-Modified": format_datetime(self.updated, usegmt=True)}
        if _not_modified(request, etag, self.updated):
            self.not_modified += 1
            return Reply(304, b"", headers)
        return Reply(200, body, headers)


def _not_modified(request: RecordedRequest, etag: str, updated: datetime) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when sent (weak comparison), else If-Modified-Since."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = [tag.strip().removeprefix("W/") for tag in inm.split(",")]
        return "*" in tags or etag in tags
    ims = request.headers.get("if-modified-since")
    if ims is None:
        return False
    try:
        since = parsedate_to_datetime(ims)
    except (TypeError, ValueError):
        return False  # an unreadable date is ignored, as servers do
    return since.tzinfo is not None and updated.replace(microsecond=0) <= since


@dataclass
class BandiPortal:
    """The Bandi e Servizi search (``POST /ricerca``) and detail pages."""

    listing_pages: list[bytes]
    #: code → detail page body
    details: dict[str, bytes]
    #: code → canonical path (from the listing cards)
    paths: dict[str, str] = field(default_factory=dict)
    #: code → card HTML (for a search by code)
    cards: dict[str, str] = field(default_factory=dict)
    #: codes whose bare-code URL answers 404 / the 200 error page, as the real portal does for some
    bare_404: set[str] = field(default_factory=set)
    bare_error: set[str] = field(default_factory=set)
    error_page: bytes = b""
    searches: list[dict[str, list[str]]] = field(default_factory=list)

    def search(self, request: RecordedRequest) -> Reply:
        if request.method != "POST":
            return Reply(405, b"", _HTML)
        form = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
        self.searches.append(form)
        code = (form.get("titolo") or [""])[0].strip()
        if code:
            card = self.cards.get(code, "")
            return Reply(200, _results_page([card] if card else [], 1), _HTML)
        if form.get("stato[0]") != ["APERTO"] or form.get("stato[1]") != ["IN APERTURA"]:
            return Reply(400, b"stato filters missing", _HTML)
        page = int((form.get("pageNum") or ["1"])[0])
        if 1 <= page <= len(self.listing_pages):
            return Reply(200, self.listing_pages[page - 1], _HTML)
        return Reply(200, _results_page([], len(self.listing_pages)), _HTML)

    def detail(self, code: str) -> Reply:
        return Reply(200, self.details[code], _HTML)

    def bare(self, code: str) -> Reply:
        if code in self.bare_404:
            return Reply(404, b"<html><title>404</title></html>", _HTML)
        if code in self.bare_error or code not in self.details:
            return Reply(200, self.error_page, _HTML)
        return Reply(200, self.details[code], _HTML)


def _results_page(cards: Sequence[str], max_page: int) -> bytes:
    return (
        f'<html><body><div class="container" data-max-page-num="{max_page}">'
        f'<div class="results-block row">{"".join(cards)}</div></div></body></html>'
    ).encode()


def lombardia_portal(*, bare_404: Sequence[str] = (), bare_error: Sequence[str] = ()) -> BandiPortal:
    """The portal built from the synthetic listing and detail pages."""
    pages = [(LOMBARDIA / f"listing_page{n}_synthetic.html").read_bytes() for n in (1, 2)]
    paths: dict[str, str] = {}
    cards: dict[str, str] = {}
    for body in pages:
        for card in Selector(text=body.decode("utf-8")).css("div.card.card-big"):
            code = (card.css("strong.code::text").get() or "").strip()
            href = card.css("a.text-decoration-none::attr(href)").get() or ""
            paths[code] = href
            cards[code] = card.get()
    details = {}
    for path in LOMBARDIA.glob("detail_*_synthetic.html"):
        stem = path.name[len("detail_") : -len("_synthetic.html")]
        details["RLP12026052483" if stem == "tertium" else stem] = path.read_bytes()
    return BandiPortal(
        listing_pages=pages,
        details=details,
        paths=paths,
        cards=cards,
        bare_404=set(bare_404),
        bare_error=set(bare_error),
        error_page=(LOMBARDIA / "error_page_synthetic.html").read_bytes(),
    )


def lombardia_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((LOMBARDIA / "dataset_page_synthetic.json").read_text("utf-8"))
    return rows


def _answer(reply: Callable[[str], Reply], code: str) -> Callable[[RecordedRequest], Reply]:
    def handle(_request: RecordedRequest) -> Reply:
        return reply(code)

    return handle


def install_lombardia(
    server: ReplayServer,
    *,
    rows: Sequence[Mapping[str, Any]] | None = None,
    portal: BandiPortal | None = None,
    page_size: int = 2,
    **config: Any,
) -> tuple[LombardiaConfig, SocrataDataset, BandiPortal]:
    """Route the registry, the portal search and every detail page; return the config section.

    ``page_size`` is small by default so the registry is read over several pages.
    """
    dataset = SocrataDataset(lombardia_rows() if rows is None else rows)
    portal = portal or lombardia_portal()
    server.route("GET", DATASET_PATH, dataset)
    server.route("POST", SEARCH_PATH, portal.search)
    for code, path in portal.paths.items():
        if code in portal.details:
            server.route("GET", path, _answer(portal.detail, code))
    for code in {*portal.details, *(str(r.get("codice_bando")) for r in dataset.rows)}:
        server.route("GET", DETAIL_PREFIX + code, _answer(portal.bare, code))
    section = LombardiaConfig(
        dataset_url=server.url(DATASET_PATH), portal_url=server.base_url, page_size=page_size, **config
    )
    return section, dataset, portal


def incentivi_body() -> bytes:
    """The real documents in a synthetic envelope, plus the synthetic Lombardy documents."""
    real = json.loads((INCENTIVI / "solr_fragment_docs_in_synthetic_envelope.json").read_text("utf-8"))
    synthetic = json.loads((INCENTIVI / "solr_lombardia_synthetic.json").read_text("utf-8"))
    docs = real["response"]["docs"] + synthetic["response"]["docs"]
    real["response"]["docs"] = docs
    real["response"]["numFound"] = len(docs)
    return json.dumps(real, ensure_ascii=False).encode("utf-8")


def install_incentivi(
    server: ReplayServer, *, body: bytes | None = None, etag: str | None = '"solr-2026-09-02"', **config: Any
) -> IncentiviConfig:
    """Route the Solr endpoint (with an ETag, so a re-crawl gets a 304); return the config section."""
    server.route(
        "GET",
        SOLR_PATH,
        static(incentivi_body() if body is None else body, content_type="application/json", etag=etag),
    )
    return IncentiviConfig(base_url=server.base_url, **config)
