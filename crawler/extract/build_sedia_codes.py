"""Rebuild ``crawler/extract/data/sedia_codes.json`` from a saved SEDIA facet response.

Usage::

    python -m crawler.extract.build_sedia_codes path/to/facet_reference.json

The facet API (``POST .../search-api/prod/rest/facet?apiKey=SEDIA``) answers with
``{"facets": [{"name", "values": [{"rawValue", "value"}]}]}``; we keep the code → label tables
the SEDIA extractor needs (``type``, ``status``, ``frameworkProgramme``, ``programmeDivision``,
``crossCuttingPriorities``, ``destination``, ``mission``) and drop entries whose label is just
the code again. The few codes the 2023 facet leaves unlabelled but other sources name are added
from :data:`SUPPLEMENTS`, each with where it comes from. The output records its provenance.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

FACETS = (
    "type",
    "status",
    "frameworkProgramme",
    "programmeDivision",
    "crossCuttingPriorities",
    "destination",
    "mission",
)

#: Labels missing from the 2023 facet, with their source (see shared/SOURCES.md, section 2a).
SUPPLEMENTS: dict[str, dict[str, tuple[str, str]]] = {
    "type": {
        "2": (
            "Call for proposals",
            "portal API page quoted by R17 (external-action / PROSPECTS grants)",
        ),
    },
    "frameworkProgramme": {
        "45532249": ("EU Bodies and Agencies (EUBA)", "SenseFoundItaly/LaunchPad-v2 sedia.ts (R4)"),
    },
}

OUTPUT = Path(__file__).with_name("data") / "sedia_codes.json"


def build(facet_response: dict[str, Any], *, source_name: str, source_sha256: str) -> dict[str, Any]:
    tables: dict[str, dict[str, str]] = {}
    for facet in facet_response.get("facets") or []:
        name = facet.get("name")
        if name not in FACETS:
            continue
        table: dict[str, str] = {}
        for value in facet.get("values") or []:
            code = str(value.get("rawValue", "")).strip()
            label = " ".join(str(value.get("value", "")).split())
            if code and label and label != code:
                table[code] = label
        tables[name] = dict(sorted(table.items()))
    supplemented: dict[str, dict[str, str]] = {}
    for facet_name, extra in SUPPLEMENTS.items():
        table = tables.setdefault(facet_name, {})
        for code, (label, origin) in extra.items():
            if code not in table:
                table[code] = label
                supplemented.setdefault(facet_name, {})[code] = origin
        tables[facet_name] = dict(sorted(table.items()))
    return {
        "_provenance": {
            "generated_by": "python -m crawler.extract.build_sedia_codes",
            "from": source_name,
            "from_sha256": source_sha256,
            "recorded_by": "Psychless/fiverr-API-1 Facet_API_JSON_output.txt, commit ac5e0ec5 (2023-01-18)",
            "api_version": facet_response.get("apiVersion"),
            "supplemented": supplemented,
        },
        **{name: tables.get(name, {}) for name in FACETS},
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[0])
    blob = path.read_bytes()
    data = build(json.loads(blob), source_name=path.name, source_sha256=hashlib.sha256(blob).hexdigest())
    OUTPUT.write_text(
        json.dumps(data, indent=1, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8"
    )
    counts = ", ".join(f"{name} {len(data[name])}" for name in FACETS)
    print(f"wrote {OUTPUT} ({counts})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
