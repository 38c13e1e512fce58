"""The recorded (or synthetic) inputs of the extractors and their expected outputs.

* :func:`cases` — SEDIA and feeds: each case is an input file under ``tests/data/crawler`` and
  ``<stem>.expected.json`` beside it: the list of records the extractor produces, as
  :func:`storage.records.record_to_json` writes them (without ``raw``), plus the error lines it
  reports.
* :func:`goldens` — Regione Lombardia and incentivi.gov.it: each expected file with the function
  producing what it must hold (records, listing cards).

The tests only compare. ``regen_expected.py`` is the one thing that rewrites the files, run by
hand after a deliberate change (then review the diff); it never runs inside a test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from crawler.extract import burl, openinnovation, unioncamere
from crawler.extract.feeds import extract_feed
from crawler.extract.incentivi import read_solr, solr_url
from crawler.extract.lombardia import extract_detail, merge_card, parse_dataset, parse_listing, row_to_record
from crawler.extract.sedia import extract_topics
from storage.acts import Act
from storage.records import ROME, CallRecord, CallStatus, record_to_json

DATA = Path(__file__).resolve().parents[1] / "data" / "crawler"
#: The moment the samples describe (tests/conftest.py ``SAMPLES_NOW``).
NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)


def _fragment_as_response(path: Path) -> bytes:
    """The two-results fragment wrapped in a search envelope (its rows are real, the envelope not)."""
    data = json.loads(path.read_bytes())
    results = [{"url": data[key]["url"], **data[key]} for key in ("open", "closed")]
    return json.dumps({"apiVersion": "2.151", "totalResults": 2, "results": results}).encode()


@dataclass(frozen=True)
class Case:
    path: Path
    run: Callable[[list[str]], list[CallRecord]]
    #: A known defect elsewhere that makes today's output differ from the (correct) expected file.
    known_bug: str | None = None

    @property
    def expected_path(self) -> Path:
        return self.path.with_name(self.path.name.rsplit(".", 1)[0] + ".expected.json")

    def produce(self) -> dict[str, Any]:
        errors: list[str] = []
        records = self.run(errors)
        return {"records": [record_to_json(r) for r in records], "errors": errors}

    def expected(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.expected_path.read_text("utf-8"))
        return data

    def check(self) -> None:
        """The extractor gives the expected records (each field the file holds) and error lines."""
        got = self.produce()
        want = self.expected()
        assert [r["source_id"] for r in got["records"]] == [r["source_id"] for r in want["records"]]
        for mine, theirs in zip(got["records"], want["records"], strict=True):
            for name in theirs:
                assert mine[name] == theirs[name], f"{theirs['source_id']}: field {name}"
        assert got["errors"] == want["errors"]


def _sedia(path: Path, body: Callable[[], bytes]) -> Case:
    return Case(path, lambda errors: extract_topics(body(), "https://api.example/search", NOW, errors=errors))


def _feed(path: Path, name: str, language: str, publisher: str, known_bug: str | None = None) -> Case:
    url = f"https://feeds.example/{path.name}"
    return Case(
        path,
        lambda errors: extract_feed(
            path.read_bytes(),
            url,
            NOW,
            feed_name=name,
            headers={"Content-Type": "application/rss+xml"},
            language=language,
            publisher=publisher,
            errors=errors,
        ),
        known_bug,
    )


def params(directory: str) -> list[Any]:
    """The cases of one data directory as pytest params; a known bug is a strict xfail, so the
    marker must go once the bug is fixed."""
    import pytest

    out = []
    for case in cases():
        if case.path.parent.name != directory:
            continue
        marks = [pytest.mark.xfail(strict=True, reason=case.known_bug)] if case.known_bug else []
        out.append(pytest.param(case, id=case.path.name, marks=marks))
    return out


def cases() -> list[Case]:
    sedia = DATA / "sedia"
    feeds = DATA / "feeds"
    open_topics = sedia / "search_open_topics_2026.json"
    fragment = sedia / "two_results_2026_FRAGMENT.json"
    return [
        _sedia(open_topics, open_topics.read_bytes),
        _sedia(fragment, lambda: _fragment_as_response(fragment)),
        _feed(
            feeds / "mimit_incentivi_aggiornamenti_synthetic.xml",
            "mimit-incentivi-aggiornamenti",
            "it",
            "MIMIT",
        ),
        _feed(feeds / "eismea_calls_synthetic.xml", "eismea", "en", "EISMEA"),
        _feed(feeds / "eic_calls_synthetic.xml", "eic", "en", "EIC"),
        _feed(feeds / "cinea_calls_synthetic.xml", "cinea", "en", "CINEA"),
        _feed(feeds / "atom_calls_synthetic.xml", "atom", "en", ""),
        _feed(feeds / "bozo_recoverable_synthetic.xml", "bozo", "it", ""),
        _feed(feeds / "latin1_encoded_synthetic.xml", "latin1", "it", ""),
    ]


# --- Regione Lombardia and incentivi.gov.it -----------------------------------------------------

LOMBARDIA = DATA / "lombardia"
INCENTIVI = DATA / "incentivi"
PORTAL = "https://www.bandi.regione.lombardia.it"
SEARCH = PORTAL + "/servizi/servizio/bandi/ricerca"
INCENTIVI_BASE = "https://www.incentivi.gov.it"


def lombardia_real() -> dict[str, Any]:
    """The real registry row and detail fragments (one file, provenance inside)."""
    data: dict[str, Any] = json.loads(
        (LOMBARDIA / "dataset_row_and_detail_fragments_2026.json").read_text(encoding="utf-8")
    )
    return data


def tertium_url() -> str:
    return str(lombardia_real()["_source"]["detail_url"])


def real_fragments_html() -> str:
    """The real fragments in page order (they are consecutive pieces of one page)."""
    return "\n".join(lombardia_real()["detail_fragments"].values())


def tertium_row_record() -> CallRecord:
    record = row_to_record(lombardia_real()["socrata_row"], fetched_at=NOW, portal_url=PORTAL)
    assert record is not None
    return record


def tertium_from_row_and_card() -> CallRecord:
    card = parse_listing((LOMBARDIA / "listing_page1_synthetic.html").read_bytes(), SEARCH, NOW).cards[0]
    return merge_card(tertium_row_record(), card, fetched_at=NOW)


def _listing_cards() -> dict[str, Any]:
    pages = {
        f"page{n}": parse_listing((LOMBARDIA / f"listing_page{n}_synthetic.html").read_bytes(), SEARCH, NOW)
        for n in (1, 2)
    }
    return {name: [card.as_json() for card in page.cards] for name, page in pages.items()}


def _records(records: list[CallRecord]) -> list[dict[str, Any]]:
    return [record_to_json(r) for r in records]


@dataclass(frozen=True)
class Golden:
    """An expected-output file and the function producing what it must hold."""

    path: Path
    produce: Callable[[], Any]

    @property
    def name(self) -> str:
        return self.path.name

    def expected(self) -> Any:
        return json.loads(self.path.read_text(encoding="utf-8"))

    def text(self) -> str:
        """What the file holds once regenerated."""
        return json.dumps(self.produce(), ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def goldens() -> list[Golden]:
    dataset_page = LOMBARDIA / "dataset_page_synthetic.json"
    registry_url = "https://www.dati.lombardia.it/resource/bukx-h2uy.json"
    envelope = INCENTIVI / "solr_fragment_docs_in_synthetic_envelope.json"
    lombardy_solr = INCENTIVI / "solr_lombardia_synthetic.json"
    return [
        Golden(LOMBARDIA / "dataset_row_2026.expected.json", lambda: record_to_json(tertium_row_record())),
        Golden(
            LOMBARDIA / "detail_fragments_2026.expected.json",
            lambda: record_to_json(
                extract_detail(
                    real_fragments_html().encode(), tertium_url(), NOW, record=tertium_row_record()
                )
            ),
        ),
        Golden(
            LOMBARDIA / "dataset_page_synthetic.expected.json",
            lambda: _records(parse_dataset(dataset_page.read_bytes(), registry_url, NOW, portal_url=PORTAL)),
        ),
        Golden(LOMBARDIA / "listing_pages_synthetic.expected.json", _listing_cards),
        Golden(
            LOMBARDIA / "detail_tertium_synthetic.expected.json",
            lambda: record_to_json(
                extract_detail(
                    (LOMBARDIA / "detail_tertium_synthetic.html").read_bytes(),
                    tertium_url(),
                    NOW,
                    record=tertium_from_row_and_card(),
                )
            ),
        ),
        Golden(
            INCENTIVI / "solr_fragment_docs_in_synthetic_envelope.expected.json",
            lambda: _records(
                read_solr(
                    envelope.read_bytes(), solr_url(INCENTIVI_BASE, 8000), NOW, base_url=INCENTIVI_BASE
                ).records
            ),
        ),
        Golden(
            INCENTIVI / "solr_lombardia_synthetic.expected.json",
            lambda: _records(
                read_solr(lombardy_solr.read_bytes(), "u", NOW, base_url=INCENTIVI_BASE).records
            ),
        ),
    ]


# --- BURL, Unioncamere Lombardia, Open Innovation Lombardia ---------------------------------------

BURL = DATA / "burl"
UNIONCAMERE = DATA / "unioncamere"
OPENINNOVATION = DATA / "openinnovation"
BURL_API = "https://www.consultazioniburl.servizirl.it/ConsultazioneBurl/api"
UNIONCAMERE_BASE = "https://www.unioncamerelombardia.it"
UNIONCAMERE_DETAIL = UNIONCAMERE_BASE + "/bandi-e-incentivi-alle-imprese/dettaglio-bando/"
OI_BASE = "https://www.openinnovation.regione.lombardia.it"
OI_PROPOSALS = OI_BASE + "/en/collaborations/collaboration-proposals"
#: The real page the Open Innovation fragments come from (samples/more/PROVENANCE.md).
OI_2024_URL = OI_PROPOSALS + "/2024/gruppo-industriale-lituano-cerca-tecnologie-per-gestione-sostenibile-d"
#: Unioncamere detail pages: file → (slug, the status its listing gives it).
UNIONCAMERE_DETAILS = {
    "detail_export_digitale_synthetic.html": ("bando-export-digitale-2026", CallStatus.OPEN),
    "detail_export_digitale_ranking_synthetic.html": ("bando-export-digitale-2026", CallStatus.OPEN),
    "detail_voucher_ai_synthetic.html": ("voucher-ai-2026", CallStatus.OPEN),
    "detail_si40_synthetic.html": ("bando-si40-2026", CallStatus.FORTHCOMING),
}


def act_json(act: Act) -> dict[str, Any]:
    return {
        "source": act.source,
        "act_id": act.act_id,
        "kind": act.kind,
        "title": act.title,
        "url": act.url,
        "published": act.published.isoformat() if act.published else None,
        "target": list(act.target) if act.target else None,
        "codes": list(act.codes),
        "decrees": list(act.decrees),
        "quoted_title": act.quoted_title,
        "new_deadline": act.new_deadline.isoformat() if act.new_deadline else None,
        "new_deadline_precision": act.new_deadline_precision.value if act.new_deadline_precision else None,
    }


def burl_page() -> dict[str, Any]:
    page = burl.read_search(
        (BURL / "search_page_synthetic.json").read_bytes(), BURL_API + "/ricercaAvanzata", NOW
    )
    acts = [burl.act_of(hit, url=f"{BURL_API}/download?id={hit.id_burl}") for hit in page.hits]
    return {
        "total": page.total,
        "acts": [act_json(a) for a in acts],
        "records": [record_to_json(burl.act_record(h, a)) for h, a in zip(page.hits, acts, strict=True)],
    }


def unioncamere_listings() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status in ("1", "2"):
        listing = unioncamere.parse_listing(
            (UNIONCAMERE / f"listing_stato{status}_synthetic.html").read_bytes(),
            f"{UNIONCAMERE_BASE}/bandi-e-incentivi-alle-imprese?stato={status}",
            NOW,
        )
        out[f"stato{status}"] = {
            "entries": [{"slug": e.slug, "url": e.url, "title": e.title} for e in listing.entries],
            "next_url": listing.next_url,
        }
    return out


def unioncamere_detail(file: str) -> dict[str, Any]:
    slug, status = UNIONCAMERE_DETAILS[file]
    errors: list[str] = []
    record = unioncamere.extract_detail(
        (UNIONCAMERE / file).read_bytes(), UNIONCAMERE_DETAIL + slug, NOW, listed_status=status, errors=errors
    )
    return {"record": record_to_json(record), "errors": errors}


def oi_real_fragments() -> bytes:
    """The three fragments of the real page of proposal 2024, in page order."""
    names = ("head", "breadcrumb", "detail")
    return "\n".join(
        (OPENINNOVATION / f"openinnovation_collab2024_{n}_FRAGMENT.html").read_text("utf-8") for n in names
    ).encode("utf-8")


def oi_proposal(body: bytes, url: str, card: openinnovation.Card | None = None) -> dict[str, Any]:
    errors: list[str] = []
    record = openinnovation.extract_proposal(body, url, NOW, card=card, errors=errors)
    return {"record": record_to_json(record), "errors": errors}


def oi_listing_cards() -> dict[str, Any]:
    page1 = OPENINNOVATION / "proposals_page1_synthetic.html"
    card = OPENINNOVATION / "openinnovation_collab2090_related_card_FRAGMENT.html"
    return {
        "proposals_page1": [
            c.as_json()
            for c in openinnovation.parse_proposals(page1.read_bytes(), OI_PROPOSALS + "?page=1", NOW)
        ],
        "related_card_FRAGMENT": [
            c.as_json() for c in openinnovation.parse_proposals(card.read_bytes(), OI_2024_URL, NOW)
        ],
    }


def oi_call_page() -> dict[str, Any]:
    url = OI_BASE + "/it/bandi-e-sperimentazioni/bando-filiere-sostenibili-2026"
    page = OPENINNOVATION / "call_filiere_sostenibili_synthetic.html"
    record = openinnovation.extract_call_page(page.read_bytes(), url, NOW)
    return {"record": record_to_json(record) if record else None}


def venue_goldens() -> list[Golden]:
    out = [
        Golden(BURL / "search_page_synthetic.expected.json", burl_page),
        Golden(UNIONCAMERE / "listings_synthetic.expected.json", unioncamere_listings),
        Golden(
            OPENINNOVATION / "openinnovation_collab2024_fragments.expected.json",
            lambda: oi_proposal(oi_real_fragments(), OI_2024_URL),
        ),
        Golden(OPENINNOVATION / "listing_cards.expected.json", oi_listing_cards),
        Golden(OPENINNOVATION / "call_filiere_sostenibili_synthetic.expected.json", oi_call_page),
    ]
    for file in UNIONCAMERE_DETAILS:
        out.append(
            Golden(
                UNIONCAMERE / file.replace(".html", ".expected.json"), lambda f=file: unioncamere_detail(f)
            )
        )
    cards = {
        c.id: c
        for c in openinnovation.parse_proposals(
            (OPENINNOVATION / "proposals_page1_synthetic.html").read_bytes(), OI_PROPOSALS + "?page=1", NOW
        )
    }
    for pid in ("2024", "2090", "2101"):
        page = OPENINNOVATION / f"proposal_{pid}_synthetic.html"
        out.append(
            Golden(
                page.with_name(page.stem + ".expected.json"),
                lambda p=page, c=cards[pid]: oi_proposal(p.read_bytes(), c.url, c),
            )
        )
    return out


def all_goldens() -> list[Golden]:
    return goldens() + venue_goldens()


def golden(name: str) -> Golden:
    return next(g for g in all_goldens() if g.name == name)


def assert_expected(name: str, actual: Any) -> None:
    """``actual`` equals the expected file ``name`` (rewritten only by regen_expected.py)."""
    assert actual == golden(name).expected()


def golden_params(directory: str) -> list[Any]:
    import pytest

    return [pytest.param(g, id=g.name) for g in all_goldens() if g.path.parent.name == directory]
