"""Replay routes of the BURL, Unioncamere Lombardia and Open Innovation Lombardia, for :class:`ReplayServer`.

* :class:`BurlSearch` — ``PUT /ConsultazioneBurl/api/ricercaAvanzata``: demands the body the
  working client sends (``oggetto``, the years as strings, ``dataMinina`` sic; HTTP 400
  otherwise), keeps the hits whose ``titolo`` holds the ``oggetto`` word and whose publication
  year is in the range, pages with ``offset``/``limit`` and answers ``{"conteggioTotale",
  "lista"}`` with the NUL escapes of the recording. The shape is the one ``SOURCES-MORE.md``
  documents from third-party code: no answer was ever recorded.
* :func:`install_unioncamere` — the listing by ``stato`` and the detail pages, each with a
  Last-Modified (304 on a match; every HTML page of the two sites is served so); :func:`serve_unioncamere_ranking` swaps in the page of the
  export call with a ranking PDF added.
* :func:`install_openinnovation` — the proposals listing (``?page=1`` the cards, any other page
  the empty listing), three proposal pages (one built around the real fragments), the
  "bandi e sperimentazioni" listing and two call pages.

Links to Bandi e Servizi in the served pages point at the same server (as the Lombardy calls'
own URLs do in a replay), so duplicate groups form as they would live. Bodies are the bundled
files under ``recordings/burl``, ``recordings/unioncamere`` and ``recordings/openinnovation``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crawler.config import BurlConfig, OpeninnovationConfig, UnioncamereConfig
from crawler.replay.regional import RECORDINGS
from crawler.replay.server import Handler, RecordedRequest, ReplayServer, Reply, static

BURL = RECORDINGS / "burl"
UNIONCAMERE = RECORDINGS / "unioncamere"
OPENINNOVATION = RECORDINGS / "openinnovation"

BURL_API = "/ConsultazioneBurl/api"
UNIONCAMERE_LISTING = "/bandi-e-incentivi-alle-imprese"
UNIONCAMERE_DETAIL = UNIONCAMERE_LISTING + "/dettaglio-bando/"
PROPOSALS = "/en/collaborations/collaboration-proposals"
CALLS = "/it/bandi-e-sperimentazioni"
#: The real portal's root as the pages write it; served as the replay server's own root.
PORTAL = "https://www.bandi.regione.lombardia.it"
#: When the bundled pages were last changed, as their Last-Modified says.
PAGES_UPDATED = datetime(2026, 9, 1, 6, 0, tzinfo=UTC)

UNIONCAMERE_PAGES = {
    "bando-export-digitale-2026": "detail_export_digitale_synthetic.html",
    "voucher-ai-2026": "detail_voucher_ai_synthetic.html",
    "bando-si40-2026": "detail_si40_synthetic.html",
}
UNIONCAMERE_LISTINGS = {"1": "listing_stato1_synthetic.html", "2": "listing_stato2_synthetic.html"}
PROPOSAL_PAGES = {
    "/2024/gruppo-industriale-lituano-cerca-tecnologie-per-gestione-sostenibile-d": "proposal_2024_synthetic.html",
    "/2090/pmi-richiesta-per-validazione-di-ingredienti-bio-based-in-cosmetici-e": "proposal_2090_synthetic.html",
    "/2101/universita-spagnola-offre-packaging-compostabile-per-cosmetici": "proposal_2101_synthetic.html",
}
CALL_PAGES = {
    "bando-filiere-sostenibili-2026": "call_filiere_sostenibili_synthetic.html",
    "open-challenge-materiali-circolari": "call_open_challenge_synthetic.html",
}

_HTML = "text/html; charset=utf-8"
_JSON = {"Content-Type": "application/json;charset=UTF-8"}


def _page(server: ReplayServer, path: Path) -> bytes:
    return path.read_bytes().replace(PORTAL.encode(), server.base_url.encode())


def _html(server: ReplayServer, path: Path) -> Handler:
    """A page with a Last-Modified (304 on a match). Whether the real servers send validators is
    not known; the spiders use them only when given, and work without."""
    return static(_page(server, path), content_type=_HTML, last_modified=PAGES_UPDATED)


class BurlSearch:
    """The BURL search API over a list of hits (see the module docstring)."""

    def __init__(self, hits: list[dict[str, Any]]) -> None:
        self.hits = hits

    @classmethod
    def bundled(cls) -> BurlSearch:
        data = json.loads((BURL / "search_page_synthetic.json").read_bytes())
        return cls(list(data["lista"]))

    def __call__(self, request: RecordedRequest) -> Reply:
        try:
            body = json.loads(request.body)
            word = str(body["oggetto"]).casefold()
            years = body["intervalloAnniPubblicazione"]
            low, high = years["numeroMinimo"], years["numeroMassimo"]
            for key in ("intervalloDateRichiestaPubblicazione", "intervalloDateNumerazione"):
                if set(body[key]) != {"dataMinina", "dataMassima"}:
                    raise KeyError(key)
            if not (isinstance(low, str) and isinstance(high, str)):
                raise TypeError("years must be strings")
            offset = int(request.query.get("offset", ["0"])[0])
            limit = int(request.query.get("limit", ["100"])[0])
        except (ValueError, KeyError, TypeError) as exc:
            return Reply(400, json.dumps({"errore": f"richiesta non valida: {exc}"}).encode(), _JSON)
        found = [
            hit
            for hit in self.hits
            if word in str(hit.get("titolo", "")).casefold() and low <= _year(hit) <= high
        ]
        page = {"conteggioTotale": len(found), "lista": found[offset : offset + limit]}
        return Reply(200, json.dumps(page, ensure_ascii=False).encode("utf-8"), _JSON)


def _year(hit: dict[str, Any]) -> str:
    text = str(hit.get("dataPubblicazione", ""))
    return text[:4] if text[:4].isdigit() else text[-4:]


def install_burl(server: ReplayServer, *, search: BurlSearch | None = None, **config: Any) -> BurlConfig:
    server.route("PUT", BURL_API + "/ricercaAvanzata", search or BurlSearch.bundled())
    return BurlConfig(api_url=server.url(BURL_API), **config)


def install_unioncamere(server: ReplayServer, **config: Any) -> UnioncamereConfig:
    listings = {status: _html(server, UNIONCAMERE / file) for status, file in UNIONCAMERE_LISTINGS.items()}

    def listing(request: RecordedRequest) -> Reply:
        status = request.query.get("stato", [""])[0]
        if status not in listings:
            return Reply(404, b"not found", {"Content-Type": "text/plain"})
        return listings[status](request)

    server.route("GET", UNIONCAMERE_LISTING, listing)
    for slug, file in UNIONCAMERE_PAGES.items():
        server.route("GET", UNIONCAMERE_DETAIL + slug, _html(server, UNIONCAMERE / file))
    return UnioncamereConfig(base_url=server.base_url, **config)


def serve_unioncamere_ranking(server: ReplayServer, *, at: datetime) -> None:
    """Serve the export call's page with a ranking PDF added, changed at ``at``."""
    body = _page(server, UNIONCAMERE / "detail_export_digitale_ranking_synthetic.html")
    server.route(
        "GET",
        UNIONCAMERE_DETAIL + "bando-export-digitale-2026",
        static(body, content_type=_HTML, last_modified=at),
    )


def install_openinnovation(server: ReplayServer, **config: Any) -> OpeninnovationConfig:
    first = _html(server, OPENINNOVATION / "proposals_page1_synthetic.html")
    empty = _html(server, OPENINNOVATION / "proposals_page2_synthetic.html")

    def proposals(request: RecordedRequest) -> Reply:
        page = request.query.get("page", ["1"])[0]
        return (first if page == "1" else empty)(request)

    server.route("GET", PROPOSALS, proposals)
    for path, file in PROPOSAL_PAGES.items():
        server.route("GET", PROPOSALS + path, _html(server, OPENINNOVATION / file))
    server.route("GET", CALLS, _html(server, OPENINNOVATION / "calls_listing_synthetic.html"))
    for slug, file in CALL_PAGES.items():
        server.route("GET", f"{CALLS}/{slug}", _html(server, OPENINNOVATION / file))
    return OpeninnovationConfig(base_url=server.base_url, **config)
