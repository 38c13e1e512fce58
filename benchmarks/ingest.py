"""Ingest benchmark: 20,000 calls into a fresh SQLite file, then again unchanged, then 5 % changed.

The calls are generated from the real recorded responses kept with the tests in
``tests/data/crawler`` (or the directory given with ``--samples``, laid out the same way): the Bandi e Servizi row of Bando Tertium, the six
incentivi.gov.it Solr documents and the SEDIA topics, each copied with a distinct id, title,
URL and dates, keeping the real field shapes, the long texts and the raw payloads. One
incentivi call in ten points at a generated Bandi e Servizi page, so duplicate groups are
exercised too.

Targets on a 2-core machine: first ingest >= 3,000 calls/s, unchanged re-ingest >= 10,000
calls/s, peak RSS < 300 MB. Run: ``python benchmarks/ingest.py [--calls N] [--keep PATH]``.
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import re
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from storage.db import Database
from storage.ingest import ingest
from storage.records import ROME, CallRecord, CallStatus, Deadline, Precision

DEFAULT_SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "crawler"
NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)
_TAG = re.compile(r"<[^>]+>")


@functools.cache
def _text(markup: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(_TAG.sub(" ", markup))).strip()


def _dt(value: str | None) -> datetime | None:
    if not value or value == "None":
        return None
    value = value.replace("Z", "+00:00").replace(".000+0000", "+00:00")
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ROME)


def load_shapes(samples: Path) -> list[tuple[str, dict[str, Any]]]:
    """(kind, payload) pairs taken verbatim from the recordings."""
    shapes: list[tuple[str, dict[str, Any]]] = []
    lombardia = json.loads((samples / "lombardia" / "dataset_row_and_detail_fragments_2026.json").read_text())
    shapes.append(("lombardia", lombardia))
    incentivi = json.loads((samples / "incentivi" / "solr_docs_2026_FRAGMENT.json").read_text())
    for key, value in incentivi.items():
        if key == "today":
            continue
        for doc in value if isinstance(value, list) else [value]:
            shapes.append(("incentivi", doc))
    sedia = json.loads((samples / "sedia" / "search_open_topics_2026.json").read_text())
    for result in sedia["results"]:
        if result["metadata"].get("DATASOURCE") == ["SEDIA"]:
            shapes.append(("sedia", result["metadata"]))
    return shapes


def _lombardia(payload: dict[str, Any], i: int) -> CallRecord:
    row = payload["socrata_row"]
    fragments = payload["detail_fragments"]
    closes = datetime(2026, 9, 7, 12, 0, tzinfo=ROME) + timedelta(days=i % 400)
    return CallRecord(
        source="lombardia",
        source_id=f"{row['codice_bando']}{i}",
        url=f"{payload['_source']['detail_url']}-{i}",
        title=f"{row['titolo_bando']} {i}",
        summary=_text(fragments["eligibility_body"])[:300],
        description=_text(fragments["eligibility_body"]),
        status=CallStatus.OPEN,
        published=datetime(2026, 5, 14, 9, 16, tzinfo=ROME),
        published_precision=Precision.DATETIME,
        opens=datetime(2026, 6, 16, 10, 0, tzinfo=ROME),
        opens_precision=Precision.DATETIME,
        closes=closes,
        closes_precision=Precision.DATETIME,
        deadlines=(Deadline(closes, Precision.DATETIME, "Scade il"),),
        budget_total=Decimal(1_000_000 + i * 100),
        programme="PR Lombardia FESR 2021-2027",
        funding_source=_text(fragments["fonti_finanziamento"]),
        granting_body=f"{row['ente']} - {row['direzione_generale']}",
        regions=("Lombardia",),
        beneficiaries=("PMI",),
        raw=row,
    )


@functools.cache
def _ateco(text: str) -> tuple[str, ...]:
    # Shared between the copies of one document: the input then weighs what a real crawl's
    # would, not 20,000 private copies of the same 600 codes.
    return tuple(c.strip() for c in text.split(";") if c.strip())


def _incentivi(doc: dict[str, Any], i: int) -> CallRecord:
    closes = _dt(doc.get("zs_field_close_date"))
    links = [doc["zs_field_link"]] if doc.get("zs_field_link") else []
    if i % 10 == 0:
        links.append(f"https://www.bandi.regione.lombardia.it/servizi/bandi/dettaglio/generato-{i}")
    return CallRecord(
        source="incentivi",
        source_id=f"{doc['zs_nid']}-{i}",
        url=f"https://www.incentivi.gov.it{doc['zs_url']}-{i}",
        title=f"{doc['zs_title']} {i}",
        summary=(doc.get("zs_body") or "")[:300],
        description=doc.get("zs_body") or "",
        status=CallStatus.OPEN,
        opens=_dt(doc.get("zs_field_open_date")),
        opens_precision=Precision.DATE,
        closes=None if closes is None else closes + timedelta(days=i % 400),
        closes_precision=None if closes is None else Precision.DATE,
        sportello="sportello" in str(doc.get("zs_field_close_date_descriptor") or ""),
        granting_body=doc.get("zs_field_subject_grant") or "",
        regions=tuple(doc.get("zm_field_regions_value") or ()),
        beneficiaries=tuple(doc.get("zm_field_subject_type_value") or ()),
        support_forms=tuple(doc.get("zm_field_support_form_value") or ()),
        keywords=tuple(doc.get("zm_field_scopes_value") or ()),
        ateco_codes=_ateco(doc.get("zs_field_ateco") or ""),
        links=tuple(links),
        raw=doc,
    )


def _sedia(meta: dict[str, Any], i: int) -> CallRecord:
    deadlines = tuple(
        Deadline(d + timedelta(days=i % 300), Precision.DATETIME)
        for d in (_dt(v) for v in meta.get("deadlineDate", []))
        if d is not None
    )
    identifier = meta["identifier"][0]
    return CallRecord(
        source="sedia",
        source_id=f"{identifier}-{i}",
        url=f"{meta['url'][0]}-{i}",
        title=f"{meta['title'][0]} {i}",
        description=_text((meta.get("descriptionByte") or [""])[0]),
        language="en",
        status=CallStatus.FORTHCOMING if meta.get("status") == ["31094501"] else CallStatus.OPEN,
        closes=deadlines[-1].at if deadlines else None,
        closes_precision=Precision.DATETIME if deadlines else None,
        deadlines=deadlines,
        programme=(meta.get("callTitle") or [""])[0],
        funding_source="Horizon Europe",
        granting_body="European Commission",
        keywords=tuple(meta.get("keywords") or ()) + tuple(meta.get("tags") or ()),
        raw=meta,
    )


BUILDERS = {"lombardia": _lombardia, "incentivi": _incentivi, "sedia": _sedia}


def generate(
    shapes: list[tuple[str, dict[str, Any]]], count: int, *, changed_every: int = 0
) -> Iterator[CallRecord]:
    """``count`` calls, lazily; with ``changed_every`` = n, every n-th call has a moved deadline
    and a new title (a change members are told about)."""
    for i in range(count):
        kind, payload = shapes[i % len(shapes)]
        record = BUILDERS[kind](payload, i)
        if changed_every and i % changed_every == 0:
            closes = (record.closes or NOW) + timedelta(days=14)
            record = replace(
                record, title=record.title + " (proroga)", closes=closes, closes_precision=Precision.DATE
            )
        yield record


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1_000_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    parser.add_argument("--keep", type=Path, help="write the database here instead of a temporary file")
    args = parser.parse_args(argv)

    shapes = load_shapes(args.samples)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench.db"
        path.unlink(missing_ok=True)
        db = Database(f"sqlite:///{path}")
        db.upgrade()
        print(f"{args.calls} calls from {len(shapes)} real sample shapes into {path}")
        phases = [
            ("first ingest", 0, NOW, 3_000),
            ("unchanged re-ingest", 0, NOW + timedelta(hours=6), 10_000),
            ("5% changed re-ingest", 20, NOW + timedelta(hours=12), None),
        ]
        ok = True
        for name, changed_every, now, target in phases:
            # Built before the clock starts: the benchmark measures ingest, not the generator
            # (a crawler hands over a run's records the same way).
            records = list(generate(shapes, args.calls, changed_every=changed_every))
            started, cpu_started = time.perf_counter(), time.process_time()
            result = ingest(db, records, now=now)
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            del records
            rate = args.calls / seconds
            verdict = "" if target is None else (" ok" if rate >= target else f" BELOW TARGET {target}")
            ok &= not verdict.startswith(" BELOW")
            print(
                f"{name:22} {rate:9,.0f} calls/s  ({seconds:.2f} s; new {result.new},"
                f" changed {result.changed}, unchanged {result.unchanged},"
                f" errors {len(result.errors)}){verdict}"
            )
            # CPU time tells this program's cost apart from other load on a shared machine.
            print(f"{'':22} {args.calls / cpu:9,.0f} calls per CPU second")
            if result.errors:
                print("  first error:", result.errors[0])
        rss = peak_rss_mb()
        print(f"peak RSS {rss:.0f} MB{' ok' if rss < 300 else ' ABOVE TARGET 300 MB'}")
        print(f"database file {path.stat().st_size / 1_000_000:.0f} MB")
        db.dispose()
    return 0 if ok and rss < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
