"""Rebuild ``calls_real.json``: the calls of the real recordings, as the crawler's extractors read them.

python tests/data/relevance/build_real_calls.py

Inputs are the real recordings kept (with their provenance) under ``tests/data/crawler``:
SEDIA search results, the two-result SEDIA fragment, the incentivi.gov.it Solr documents and the
Bandi e Servizi row and detail fragments of "Bando Tertium". Each goes through the extractor the
crawler uses. The incentivi.gov.it spider keeps only measures open to Lombard companies; the
four regional measures of other regions it drops are mapped here with the same field rules
(``map_incentivi_doc``) so that the territory and applicant rules meet real texts too.
Review the diff of ``calls_real.json`` after running it: labels in ``labels.toml`` refer to the
ids written here.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from crawler.extract.incentivi import (  # noqa: E402
    ateco_codes,
    body_sections,
    catalogue_date,
    doc_to_record,
)
from crawler.extract.lombardia import extract_detail, row_to_record  # noqa: E402
from crawler.extract.sedia import extract_topics  # noqa: E402
from crawler.parsing import html_to_text  # noqa: E402
from storage.records import ROME, CallRecord, CallStatus, Deadline, Precision, local_midnight, record_to_json  # noqa: E402

CRAWLER_DATA = ROOT / "tests" / "data" / "crawler"
OUT = Path(__file__).with_name("calls_real.json")
NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)
INCENTIVI = "https://www.incentivi.gov.it"
PORTAL = "https://www.bandi.regione.lombardia.it"


def map_incentivi_doc(doc: dict[str, Any]) -> CallRecord:
    """A Solr document as a call, with the field rules of ``crawler.extract.incentivi``,
    without its Lombardy filter."""
    body = html_to_text(str(doc.get("zs_body") or ""))
    intro, sections = body_sections(body)
    who = " ".join(sections.get("A chi si rivolge", "").split())
    subjects = tuple(doc.get("zm_field_subject_type_value") or ())
    close_day = catalogue_date(doc.get("zs_field_close_date"))
    open_day = catalogue_date(doc.get("zs_field_open_date"))
    closes = local_midnight(close_day, ROME) if close_day and close_day.year < 2029 else None
    return CallRecord(
        source="incentivi",
        source_id=str(doc["zs_nid"]),
        url=INCENTIVI + str(doc.get("zs_url") or ""),
        title=str(doc["zs_title"]),
        summary=" ".join(intro.split())[:1000],
        description=body,
        status=CallStatus.OPEN,
        opens=local_midnight(open_day, ROME) if open_day else None,
        opens_precision=Precision.DATE if open_day else None,
        closes=closes,
        closes_precision=Precision.DATE if closes else None,
        deadlines=(Deadline(closes, Precision.DATE, "chiusura"),) if closes else (),
        sportello=closes is None,
        beneficiaries=subjects + ((who,) if who else ()),
        granting_body=str(doc.get("zs_field_subject_grant") or ""),
        regions=tuple(doc.get("zm_field_regions_value") or ()),
        ateco_codes=ateco_codes(doc.get("zs_field_ateco")),
        keywords=tuple(doc.get("zm_field_scopes_value") or ()),
        support_forms=tuple(doc.get("zm_field_support_form_value") or ()),
    )


def entry(call_id: str, record: CallRecord, provenance: str) -> dict[str, Any]:
    return {"id": call_id, "synthetic": False, "provenance": provenance, "record": record_to_json(record)}


def main() -> None:
    out: list[dict[str, Any]] = []
    sedia = CRAWLER_DATA / "sedia"
    for record in extract_topics((sedia / "search_open_topics_2026.json").read_bytes(), "https://api", NOW):
        out.append(
            entry(
                f"real-sedia-{record.source_id}",
                record,
                "sedia/search_open_topics_2026.json via crawler.extract.sedia.extract_topics",
            )
        )
    fragment = json.loads((sedia / "two_results_2026_FRAGMENT.json").read_bytes())
    results = [{"url": fragment[k]["url"], **fragment[k]} for k in ("open", "closed")]
    envelope = json.dumps({"apiVersion": "2.151", "totalResults": 2, "results": results}).encode()
    for record in extract_topics(envelope, "https://api", NOW):
        out.append(
            entry(
                f"real-sedia-{record.source_id}",
                record,
                "sedia/two_results_2026_FRAGMENT.json via crawler.extract.sedia.extract_topics",
            )
        )

    docs = json.loads((CRAWLER_DATA / "incentivi" / "solr_docs_2026_FRAGMENT.json").read_bytes())
    flat: list[dict[str, Any]] = []
    for value in docs.values():
        if isinstance(value, dict):
            flat.append(value)
        elif isinstance(value, list):
            flat.extend(v for v in value if isinstance(v, dict))
    for doc in flat:
        record = doc_to_record(doc, fetched_at=NOW, base_url=INCENTIVI)
        how = "via crawler.extract.incentivi.doc_to_record"
        if record is None:
            record = map_incentivi_doc(doc)
            how = "mapped with the same field rules (the spider drops non-Lombard measures)"
        out.append(
            entry(
                f"real-incentivi-{record.source_id}", record, f"incentivi/solr_docs_2026_FRAGMENT.json {how}"
            )
        )

    lombardia = json.loads(
        (CRAWLER_DATA / "lombardia" / "dataset_row_and_detail_fragments_2026.json").read_bytes()
    )
    row = row_to_record(lombardia["socrata_row"], fetched_at=NOW, portal_url=PORTAL)
    assert row is not None
    html = "\n".join(lombardia["detail_fragments"].values()).encode()
    record = extract_detail(html, lombardia["_source"]["detail_url"], NOW, record=row)
    out.append(
        entry(
            "real-lombardia-RLP12026052483",
            record,
            "lombardia/dataset_row_and_detail_fragments_2026.json via crawler.extract.lombardia (row + detail fragments)",
        )
    )

    OUT.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(out)} calls to {OUT}")


if __name__ == "__main__":
    main()
