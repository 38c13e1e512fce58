"""Measuring the matcher against a labelled relevance set (calls × profiles → should alert?).

The set lives in a directory (the project's is ``tests/data/relevance``, described by its
README): ``calls_real.json`` (records as ``storage.records.record_to_json`` writes them),
``calls_synthetic.toml`` (the same fields in TOML), ``profiles.toml`` (a ``members import``
file; the part of each e-mail before "@" is the profile's key) and ``labels.toml``.

:func:`evaluate` runs the real :class:`~notifier.matching.Matcher` over every pair and returns
precision, recall and the pairs it got wrong, each with :func:`~notifier.matching.explain`, so a
change of vocabulary or weights can be judged by what it fixes and what it breaks.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from notifier.config import MatchingConfig
from notifier.matching.engine import Explanation, Matcher, reasons_line
from notifier.matching.profiles import Profile, validate_members
from storage.calls import CallView
from storage.records import CallRecord, CallStatus, Deadline, Precision, record_from_json

_DECIMALS = ("budget_total", "contribution_min", "contribution_max")


class RelevanceSetError(ValueError):
    """The set is malformed (the message names the file and the entry)."""


@dataclass(frozen=True, slots=True)
class LabelledCall:
    key: str
    synthetic: bool
    call: CallView


@dataclass
class RelevanceSet:
    calls: list[LabelledCall]
    #: profile key → (member id, profile)
    profiles: dict[str, tuple[int, Profile]]
    #: (call key, profile key) → should alert
    labels: dict[tuple[str, str], bool]


def view_of(record: CallRecord, *, call_id: int, now: datetime) -> CallView:
    """A stored-call view of a record (what matching sees after ingest)."""
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    return CallView(
        id=call_id,
        group_id=call_id,
        content_hash=record.content_hash(),
        first_seen=now,
        last_seen=now,
        last_changed=now,
        **values,
    )


def _record_from_toml(entry: Mapping[str, Any]) -> CallRecord:
    data = {k: v for k, v in entry.items() if k not in ("id", "synthetic", "note")}
    for name in ("opens", "closes", "published"):
        value = data.get(name)
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise RelevanceSetError(f"call {entry.get('id')}: {name} needs a UTC offset")
            if f"{name}_precision" not in data:
                data[f"{name}_precision"] = (
                    Precision.DATE.value
                    if value.timetz().replace(tzinfo=None) == time(0, 0)
                    else Precision.DATETIME.value
                )
            data[name] = value.isoformat()
    for name in _DECIMALS:
        if name in data:
            data[name] = str(Decimal(str(data[name])))
    if "closes" in data and "deadlines" not in data:
        data["deadlines"] = [
            {"at": data["closes"], "precision": data["closes_precision"], "label": "chiusura"}
        ]
    record = record_from_json(data)
    if record.status == CallStatus.UNKNOWN and "status" in entry:
        raise RelevanceSetError(f"call {entry.get('id')}: unknown status {entry['status']!r}")
    assert all(isinstance(d, Deadline) for d in record.deadlines)
    return record


def load_relevance_set(directory: Path, *, now: datetime) -> RelevanceSet:
    calls: list[LabelledCall] = []
    real = json.loads((directory / "calls_real.json").read_text("utf-8"))
    for entry in real:
        record = record_from_json(entry["record"])
        calls.append(
            LabelledCall(
                entry["id"],
                bool(entry.get("synthetic", False)),
                view_of(record, call_id=len(calls) + 1, now=now),
            )
        )
    synthetic = tomllib.loads((directory / "calls_synthetic.toml").read_text("utf-8"))
    for entry in synthetic.get("call", []):
        try:
            record = _record_from_toml(entry)
        except (KeyError, ValueError, TypeError) as exc:
            raise RelevanceSetError(f"calls_synthetic.toml, call {entry.get('id')}: {exc}") from exc
        calls.append(
            LabelledCall(
                entry["id"],
                bool(entry.get("synthetic", True)),
                view_of(record, call_id=len(calls) + 1, now=now),
            )
        )
    keys = [c.key for c in calls]
    if len(set(keys)) != len(keys):
        raise RelevanceSetError("a call id is used twice")

    members, errors = validate_members(tomllib.loads((directory / "profiles.toml").read_text("utf-8")))
    if errors:
        raise RelevanceSetError("profiles.toml: " + "; ".join(errors))
    profiles: dict[str, tuple[int, Profile]] = {}
    for index, entry in members:
        if entry.email is None or entry.profile is None:
            raise RelevanceSetError(f"profiles.toml: member {index} needs an email and a profile")
        profiles[entry.email.split("@")[0]] = (index, entry.profile)

    raw_labels = tomllib.loads((directory / "labels.toml").read_text("utf-8")).get("labels", {})
    labels: dict[tuple[str, str], bool] = {}
    for call_key in keys:
        row = raw_labels.get(call_key)
        if row is None:
            raise RelevanceSetError(f"labels.toml: no labels for call {call_key}")
        if set(row) != set(profiles):
            raise RelevanceSetError(f"labels.toml: call {call_key} must label exactly {sorted(profiles)}")
        for profile_key, value in row.items():
            if value not in (0, 1):
                raise RelevanceSetError(f"labels.toml: {call_key}.{profile_key} must be 0 or 1")
            labels[(call_key, profile_key)] = bool(value)
    unknown = set(raw_labels) - set(keys)
    if unknown:
        raise RelevanceSetError(f"labels.toml: labels for unknown calls {sorted(unknown)}")
    return RelevanceSet(calls, profiles, labels)


@dataclass(frozen=True, slots=True)
class Mistake:
    call_key: str
    profile_key: str
    expected: bool
    explanation: Explanation

    def line(self) -> str:
        kind = "missed" if self.expected else "wrong "
        ex = self.explanation
        why = ex.detail("en") if ex.excluded_by else reasons_line(ex.reasons, "en", limit=3)
        rule = f" [{ex.excluded_by}]" if ex.excluded_by else ""
        return f"{kind} {self.call_key} → {self.profile_key}: score {ex.score:g}{rule} {why}"


@dataclass
class Evaluation:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    mistakes: list[Mistake] = field(default_factory=list)
    #: profile key → [tp, fp, fn, tn]
    per_profile: dict[str, list[int]] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def pairs(self) -> int:
        return self.tp + self.fp + self.fn + self.tn


def evaluate(rs: RelevanceSet, *, now: datetime, config: MatchingConfig | None = None) -> Evaluation:
    """Run the matcher over every labelled pair (one matcher over all profiles, as in production)."""
    config = config or MatchingConfig()
    key_of = {member_id: key for key, (member_id, _p) in rs.profiles.items()}
    matcher = Matcher([(mid, p) for mid, p in rs.profiles.values()], config=config)
    result = Evaluation(per_profile={key: [0, 0, 0, 0] for key in rs.profiles})
    for labelled in rs.calls:
        matched = {key_of[m.member_id] for m in matcher.match(labelled.call, now=now)}
        for profile_key, (member_id, _profile) in rs.profiles.items():
            expected = rs.labels[(labelled.key, profile_key)]
            got = profile_key in matched
            counts = result.per_profile[profile_key]
            if got and expected:
                result.tp += 1
                counts[0] += 1
            elif got:
                result.fp += 1
                counts[1] += 1
            elif expected:
                result.fn += 1
                counts[2] += 1
            else:
                result.tn += 1
                counts[3] += 1
            if got != expected:
                explanation = matcher.explain(labelled.call, member_id, now=now)
                result.mistakes.append(Mistake(labelled.key, profile_key, expected, explanation))
    return result
