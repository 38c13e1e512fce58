"""The normalised call record every crawler produces and storage ingests.

A ``CallRecord`` is frozen and holds only plain values (str, aware datetimes, Decimal,
tuples), so it can be built in a pure extractor, compared in a test and serialised to the
reviewable JSON kept beside each recorded response (``record_to_json`` / ``record_from_json``).

Conventions (they are relied on by ingest, matching and reminders):

* Datetimes are aware. When the source gives only a date, the datetime is local midnight
  (Europe/Rome unless the source says otherwise) of that date and the precision is
  ``Precision.DATE``; :func:`effective_deadline` turns such a closing date into the end of that
  day, the moment it really passes.
* Money is ``Decimal`` euros (storage keeps integer cents); never float.
* ``deadlines`` lists every stage deadline in time order; ``closes`` is the final one.
* ``sportello`` marks a first-come call (closes when funds run out): ``closes`` may be empty.
* ``raw`` keeps the payload as received (JSON-serialisable), so a better parser can re-read it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any
from zoneinfo import ZoneInfo

ROME = ZoneInfo("Europe/Rome")

#: Caps applied at the storage boundary: scraped text is untrusted and can be huge.
MAX_TITLE = 1_000
MAX_SUMMARY = 5_000
MAX_DESCRIPTION = 100_000
MAX_LIST_ITEMS = 200
MAX_ITEM = 1_000


class CallStatus(StrEnum):
    FORTHCOMING = "forthcoming"
    OPEN = "open"
    CLOSED = "closed"
    UNKNOWN = "unknown"


#: What a stored record is: a funding call (the default), an official notice about calls (a BURL act
#: nobody's call could be linked to, for the staff digest) or an EEN partner search (matched and
#: sent as "Ricerca partner", never as a call).
KINDS: tuple[str, ...] = ("call", "notice", "partner_search")


class Precision(StrEnum):
    DATE = "date"
    DATETIME = "datetime"


@dataclass(frozen=True, slots=True)
class Deadline:
    """One stage deadline (EU two-stage calls have two, cut-off calls several)."""

    at: datetime
    precision: Precision = Precision.DATE
    label: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    url: str


@dataclass(frozen=True, slots=True)
class CallRecord:
    source: str
    source_id: str
    url: str
    title: str
    summary: str = ""
    description: str = ""
    language: str = "it"
    status: CallStatus = CallStatus.UNKNOWN
    published: datetime | None = None
    published_precision: Precision | None = None
    opens: datetime | None = None
    opens_precision: Precision | None = None
    closes: datetime | None = None
    closes_precision: Precision | None = None
    deadlines: tuple[Deadline, ...] = ()
    sportello: bool = False
    budget_total: Decimal | None = None
    contribution_min: Decimal | None = None
    contribution_max: Decimal | None = None
    beneficiaries: tuple[str, ...] = ()
    programme: str = ""
    funding_source: str = ""
    granting_body: str = ""
    regions: tuple[str, ...] = ()
    ateco_codes: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    support_forms: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    links: tuple[str, ...] = ()
    raw: Mapping[str, Any] | None = field(default=None, compare=False)
    #: One of :data:`KINDS`.
    kind: str = "call"

    def __post_init__(self) -> None:
        if not self.source or not self.source_id:
            raise ValueError("a call needs a source and a source id")
        if self.kind not in KINDS:
            raise ValueError(f"call {self.source}/{self.source_id}: unknown kind {self.kind!r}")
        if not self.title.strip():
            raise ValueError(f"call {self.source}/{self.source_id} has no title")
        for name in ("published", "opens", "closes"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"call {self.source}/{self.source_id}: {name} is a naive datetime")
        for d in self.deadlines:
            if d.at.tzinfo is None:
                raise ValueError(f"call {self.source}/{self.source_id}: a deadline is naive")

    def capped(self) -> CallRecord:
        """The same record with every text and list cut to the storage caps."""

        def cap_list(values: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(v[:MAX_ITEM] for v in values[:MAX_LIST_ITEMS])

        return replace(
            self,
            title=self.title.strip()[:MAX_TITLE],
            summary=self.summary[:MAX_SUMMARY],
            description=self.description[:MAX_DESCRIPTION],
            beneficiaries=cap_list(self.beneficiaries),
            regions=cap_list(self.regions),
            ateco_codes=cap_list(self.ateco_codes),
            keywords=cap_list(self.keywords),
            support_forms=cap_list(self.support_forms),
            links=cap_list(self.links),
            attachments=self.attachments[:MAX_LIST_ITEMS],
            deadlines=self.deadlines[:MAX_LIST_ITEMS],
        )

    def content_hash(self) -> str:
        """A hash of everything that describes the call (not ``raw``, not fetch times)."""
        payload = record_to_json(self, include_raw=False)
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def local_midnight(day: date, tz: ZoneInfo = ROME) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=tz)


def effective_deadline(at: datetime | None, precision: Precision | str | None) -> datetime | None:
    """The instant a closing date really passes: the end of the day in Rome for a date-only value
    (a call "closing on 30 September" takes applications all that day), the moment itself
    otherwise. With :func:`final_deadline`, the one deadline rule of the project."""
    if at is None:
        return None
    if precision == Precision.DATE:
        local = at.astimezone(ROME)
        return datetime.combine(local.date() + timedelta(days=1), time(0, 0), tzinfo=ROME) - timedelta(
            microseconds=1
        )
    return at


def final_deadline(
    closes: datetime | None, closes_precision: Precision | None, deadlines: tuple[Deadline, ...]
) -> datetime | None:
    """The instant a call really closes: ``closes`` (end of day when date-only), else the last
    stage deadline; None for open-ended calls."""
    if closes is not None:
        return effective_deadline(closes, closes_precision)
    if deadlines:
        last = deadlines[-1]
        return effective_deadline(last.at, last.precision)
    return None


# --- JSON form (expected-output files, import files, the raw column) -----------------------


_PLAIN = frozenset({str, int, bool, type(None)})


def json_value(value: Any, *, tz: ZoneInfo | None = None) -> Any:
    """Any value of ours as plain JSON: the one encoder of the project (records and their
    hashes, event diffs, outbox payloads, the command line's ``--json``).

    Datetimes and dates become ISO text (a datetime moved to ``tz`` first when given), Decimals
    text, enums their value, dataclasses and pydantic models objects, mappings objects with text
    keys, tuples, lists and sets lists; anything else is returned as it is.
    """
    # Plain values and tuples of strings first: they are most of a record, and ingest hashes
    # every record it sees (the unchanged re-ingest is mostly this function).
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is tuple and all(type(v) is str for v in value):
        return list(value)
    if isinstance(value, datetime):
        return (value.astimezone(tz) if tz is not None else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_value(getattr(value, f.name), tz=tz) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): json_value(v, tz=tz) for k, v in value.items()}
    if isinstance(value, (tuple, list, set, frozenset)):
        return [json_value(v, tz=tz) for v in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return json_value(dump(), tz=tz)
    return value


_encode = json_value


_RECORD_FIELDS = tuple(f.name for f in fields(CallRecord))


def record_to_json(record: CallRecord, *, include_raw: bool = False) -> dict[str, Any]:
    """The record as JSON. ``kind`` is written only when it is not "call": the hashes of the calls
    stored before kinds existed, and the expected files, stay what they were."""
    out: dict[str, Any] = {}
    for name in _RECORD_FIELDS:
        if name == "raw" and not include_raw:
            continue
        if name == "kind" and record.kind == "call":
            continue
        out[name] = _encode(getattr(record, name))
    return out


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _dec(value: str | int | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def record_from_json(data: Mapping[str, Any]) -> CallRecord:
    """Inverse of :func:`record_to_json`."""

    def prec(value: str | None) -> Precision | None:
        return None if value is None else Precision(value)

    return CallRecord(
        source=data["source"],
        source_id=data["source_id"],
        url=data["url"],
        title=data["title"],
        summary=data.get("summary", ""),
        description=data.get("description", ""),
        language=data.get("language", "it"),
        status=CallStatus(data.get("status", "unknown")),
        published=_dt(data.get("published")),
        published_precision=prec(data.get("published_precision")),
        opens=_dt(data.get("opens")),
        opens_precision=prec(data.get("opens_precision")),
        closes=_dt(data.get("closes")),
        closes_precision=prec(data.get("closes_precision")),
        deadlines=tuple(
            Deadline(
                at=datetime.fromisoformat(d["at"]),
                precision=Precision(d["precision"]),
                label=d.get("label", ""),
            )
            for d in data.get("deadlines", ())
        ),
        sportello=bool(data.get("sportello", False)),
        budget_total=_dec(data.get("budget_total")),
        contribution_min=_dec(data.get("contribution_min")),
        contribution_max=_dec(data.get("contribution_max")),
        beneficiaries=tuple(data.get("beneficiaries", ())),
        programme=data.get("programme", ""),
        funding_source=data.get("funding_source", ""),
        granting_body=data.get("granting_body", ""),
        regions=tuple(data.get("regions", ())),
        ateco_codes=tuple(data.get("ateco_codes", ())),
        keywords=tuple(data.get("keywords", ())),
        support_forms=tuple(data.get("support_forms", ())),
        attachments=tuple(Attachment(a["name"], a["url"]) for a in data.get("attachments", ())),
        links=tuple(data.get("links", ())),
        raw=data.get("raw"),
        kind=data.get("kind", "call"),
    )
