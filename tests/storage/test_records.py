"""The record rules every room shares: one deadline rule, one JSON encoder."""

from __future__ import annotations

from datetime import datetime


def test_one_deadline_rule_a_date_only_closing_lasts_the_whole_rome_day() -> None:
    from datetime import UTC

    from storage.records import ROME, Deadline, Precision, effective_deadline, final_deadline

    # The same day however it is given: Rome midnight, or that instant in UTC (as SQLite returns it).
    rome = datetime(2026, 9, 30, tzinfo=ROME)
    for given in (rome, rome.astimezone(UTC)):
        end = effective_deadline(given, Precision.DATE)
        assert end == datetime(2026, 9, 30, 23, 59, 59, 999999, tzinfo=ROME)
    at_noon = datetime(2026, 9, 30, 12, 0, tzinfo=ROME)
    assert effective_deadline(at_noon, Precision.DATETIME) == at_noon
    assert effective_deadline(None, Precision.DATE) is None
    # No final closing: the last stage deadline; neither: open-ended.
    stages = (
        Deadline(at=datetime(2026, 10, 1, tzinfo=ROME)),
        Deadline(at=at_noon, precision=Precision.DATETIME),
    )
    assert final_deadline(None, None, stages) == at_noon
    assert final_deadline(None, None, ()) is None
    assert final_deadline(rome, Precision.DATE, stages) == datetime(
        2026, 9, 30, 23, 59, 59, 999999, tzinfo=ROME
    )


def test_one_json_encoder_for_every_value_of_ours() -> None:
    from dataclasses import dataclass
    from datetime import date
    from decimal import Decimal

    from storage.records import ROME, Deadline, Precision, json_value

    @dataclass
    class View:
        at: datetime
        amount: Decimal
        tags: tuple[str, ...]

    moment = datetime(2026, 9, 30, 10, 0, tzinfo=ROME)
    value = {
        "view": View(moment, Decimal("1500000.50"), ("a", "b")),
        "deadline": Deadline(at=moment, precision=Precision.DATETIME, label="step"),
        "day": date(2026, 9, 30),
        "set": frozenset({1}),
        1: None,
    }
    assert json_value(value) == {
        "view": {"at": "2026-09-30T10:00:00+02:00", "amount": "1500000.50", "tags": ["a", "b"]},
        "deadline": {"at": "2026-09-30T10:00:00+02:00", "precision": "datetime", "label": "step"},
        "day": "2026-09-30",
        "set": [1],
        "1": None,
    }
    from datetime import UTC

    assert json_value(moment.astimezone(UTC), tz=ROME) == "2026-09-30T10:00:00+02:00"
