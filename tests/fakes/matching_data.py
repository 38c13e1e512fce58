"""Synthetic calls and profiles for the matching tests (values invented, field shapes real)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from notifier.matching.evaluation import view_of
from notifier.matching.profiles import Profile
from storage.calls import CallView
from storage.records import ROME, CallRecord, CallStatus, Deadline, Precision

NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)
_counter = iter(range(1, 10**9))


def call(title: str = "Bando", **fields: Any) -> CallView:
    """An open call closing in a month unless ``closes``/``status`` say otherwise."""
    n = next(_counter)
    closes = fields.pop("closes", NOW + timedelta(days=30))
    values: dict[str, Any] = {
        "source": "manual",
        "source_id": f"test-{n}",
        "url": f"https://example.org/bandi/{n}",
        "title": title,
        "status": CallStatus.OPEN,
        "closes": closes,
        "closes_precision": Precision.DATETIME if closes else None,
        "deadlines": (Deadline(closes, Precision.DATETIME),) if closes else (),
    }
    values.update(fields)
    return view_of(CallRecord(**values), call_id=n, now=NOW)


def profile(**data: Any) -> Profile:
    return Profile.model_validate(data)
