"""The recorded (or synthetic) inputs of the SEDIA and feed extractors and their expected outputs.

Each case is an input file under ``tests/data/crawler`` and ``<stem>.expected.json`` beside it:
the list of records the extractor produces, as :func:`storage.records.record_to_json` writes
them (without ``raw``), plus the error lines it reports. ``regen_expected.py`` rewrites them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from crawler.extract.feeds import extract_feed
from crawler.extract.sedia import extract_topics
from storage.records import ROME, CallRecord, record_to_json

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


def _sedia(path: Path, body: Callable[[], bytes]) -> Case:
    return Case(path, lambda errors: extract_topics(body(), "https://api.example/search", NOW, errors=errors))


#: crawler.parsing reads no time written right before "," or "." ("ore 17:00, nei limiti"): the
#: lookahead after the minutes refuses any following comma or dot, not only a decimal part.


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
