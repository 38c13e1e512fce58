"""Reading ``sentinella calls import`` files: JSON lines of calls learnt outside the crawled portals.

One JSON object a line with at least ``title`` and ``url``; optional ``source`` (default
``manual``), ``source_id`` (default: derived from the URL, so importing the same line twice
updates one call), ``summary``, ``language``, ``beneficiaries`` (text), ``programme``,
``granting_body``, ``opens``, ``closes`` (ISO dates or datetimes; a date means that day in the
configured time zone, a naive datetime is read in it too), ``budget_eur``. The status follows
from the dates and "now". Every bad line is reported with its number; good lines are kept.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from crawler.config import SOURCE_NAMES
from storage.records import CallRecord, CallStatus, Precision, effective_deadline, local_midnight

ALLOWED = {
    "title",
    "url",
    "source",
    "source_id",
    "summary",
    "language",
    "beneficiaries",
    "programme",
    "granting_body",
    "opens",
    "closes",
    "budget_eur",
}
MAX_LINE = 1_000_000
#: Record sources written by the crawlers (the four source names).
CRAWLED_SOURCES = frozenset(SOURCE_NAMES)


class LineError(ValueError):
    pass


@dataclass
class ImportBatch:
    records: list[CallRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _text(item: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = item.get(key)
    if value is None:
        if required:
            raise LineError(f"missing {key!r}")
        return ""
    if not isinstance(value, str):
        raise LineError(f"{key!r} must be text")
    value = value.strip()
    if required and not value:
        raise LineError(f"{key!r} is empty")
    return value


def parse_when(value: Any, key: str, tz: ZoneInfo) -> tuple[datetime, Precision] | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise LineError(f"{key!r} must be an ISO date or datetime")
    try:
        if len(value) == 10:
            return local_midnight(date.fromisoformat(value), tz), Precision.DATE
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise LineError(f"{key!r}: bad date {value!r} (expected YYYY-MM-DD or an ISO datetime)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment, Precision.DATETIME


def _budget(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise LineError("'budget_eur' must be a number")
    try:
        amount = Decimal(str(value).replace("_", "").strip())
    except InvalidOperation:
        raise LineError(f"'budget_eur': not a number: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise LineError(f"'budget_eur': not a valid amount: {value!r}")
    return amount.quantize(Decimal("0.01"))


def parse_line(item: Any, *, now: datetime, tz: ZoneInfo) -> CallRecord:
    if not isinstance(item, dict):
        raise LineError("not a JSON object")
    unknown = sorted(set(item) - ALLOWED)
    if unknown:
        raise LineError(f"unknown field(s): {', '.join(unknown)}")
    title = _text(item, "title", required=True)
    url = _text(item, "url", required=True)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LineError(f"'url' must be an http(s) address: {url!r}")
    source = _text(item, "source") or "manual"
    if source in CRAWLED_SOURCES:
        # A crawl would rewrite the imported row and back again, each time a "change".
        raise LineError(f"'source' {source!r} is a crawled source; use another name (e.g. 'manual')")
    source_id = _text(item, "source_id") or hashlib.sha256(url.encode()).hexdigest()[:16]
    opens = parse_when(item.get("opens"), "opens", tz)
    closes = parse_when(item.get("closes"), "closes", tz)
    if opens and closes and closes[0] < opens[0]:
        raise LineError("'closes' is before 'opens'")
    status = CallStatus.OPEN
    if closes and (effective_deadline(*closes) or closes[0]) < now:
        status = CallStatus.CLOSED
    elif opens and opens[0] > now:
        status = CallStatus.FORTHCOMING
    language = _text(item, "language") or "it"
    if language not in ("it", "en"):
        raise LineError(f"'language' must be 'it' or 'en', not {language!r}")
    beneficiaries = _text(item, "beneficiaries")
    return CallRecord(
        source=source,
        source_id=source_id,
        url=url,
        title=title,
        summary=_text(item, "summary"),
        language=language,
        status=status,
        opens=opens[0] if opens else None,
        opens_precision=opens[1] if opens else None,
        closes=closes[0] if closes else None,
        closes_precision=closes[1] if closes else None,
        beneficiaries=(beneficiaries,) if beneficiaries else (),
        programme=_text(item, "programme"),
        granting_body=_text(item, "granting_body"),
        budget_total=_budget(item.get("budget_eur")),
    )


def read_import_lines(lines: Iterable[str], *, now: datetime, tz: ZoneInfo) -> ImportBatch:
    batch = ImportBatch()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE:
            batch.errors.append(f"line {number}: longer than {MAX_LINE} characters")
            continue
        try:
            item = json.loads(line, parse_float=Decimal)
            record = parse_line(item, now=now, tz=tz)
            # The raw column keeps the line as given (plain JSON: no Decimal).
            batch.records.append(replace(record, raw={"import": json.loads(line)}))
        except json.JSONDecodeError as exc:
            batch.errors.append(f"line {number}: not valid JSON ({exc.msg})")
        except (LineError, ValueError) as exc:
            batch.errors.append(f"line {number}: {exc}")
    return batch
