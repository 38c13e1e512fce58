"""Reading ``sentinella calls import`` files: JSON lines of calls learnt outside the crawled portals.

One JSON object a line with at least ``title`` and ``url``; optional ``source`` (default
``manual``), ``source_id`` (default: derived from the URL, so importing the same line twice
updates one call), ``summary``, ``language``, ``beneficiaries`` (text), ``programme``,
``granting_body``, ``opens``, ``closes`` (ISO dates or datetimes; a date means that day in the
configured time zone, a naive datetime is read in it too), ``budget_eur``. The status follows
from the dates and "now". Every bad line is reported with its number; good lines are kept.

Hostile or careless files: every defect of one line is that line's error, reason first and
any quoted value cut (:func:`_quote`): not JSON, not UTF-8, nested too deeply, numbers or dates
out of what the database stores, URLs with user-info (``https://trusted@evil/``), over-long
ids. Text is cleaned of control characters by ingest (``storage.sanitise``). Lines are split on
``\n`` only (a raw U+2028 inside a JSON string stays in its line).

:func:`import_calls` streams: lines are read, parsed and ingested batch by batch, so memory
stays flat however long the file; only the first :data:`MAX_ERRORS_SHOWN` error lines are kept,
the rest counted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from crawler.config import SOURCE_NAMES
from storage.db import Database
from storage.ingest import ingest
from storage.records import CallRecord, CallStatus, Precision, final_deadline, local_midnight
from storage.sanitise import url_userinfo

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
#: Error lines kept (and printed); the others are only counted.
MAX_ERRORS_SHOWN = 100
#: Longest ``source`` / ``source_id`` (the database columns' sizes).
MAX_SOURCE, MAX_SOURCE_ID = 64, 255
#: The largest amount accepted (the database keeps integer cents in 64 bits; no call is larger).
MAX_BUDGET = Decimal("1e13")
#: Years a date may have: the database engines store 1..9999 in UTC, a margin on each side.
YEARS = range(1900, 9000)
#: Record sources written by the crawlers (the four source names).
CRAWLED_SOURCES = frozenset(SOURCE_NAMES)


class LineError(ValueError):
    pass


def _quote(value: object, limit: int = 60) -> str:
    """A value quoted in an error message, cut so the reason stays readable."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class ImportReport:
    """What an import did: counts, and the first :data:`MAX_ERRORS_SHOWN` error lines."""

    read: int = 0
    imported: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)
    error_count: int = 0

    def error(self, line: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_SHOWN:
            self.errors.append(line)

    @property
    def errors_not_shown(self) -> int:
        return self.error_count - len(self.errors)


def _text(item: dict[str, Any], key: str, *, required: bool = False, limit: int | None = None) -> str:
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
    if limit is not None and len(value) > limit:
        raise LineError(f"{key!r} longer than {limit} characters: {_quote(value)}")
    return value


def parse_when(value: Any, key: str, tz: ZoneInfo) -> tuple[datetime, Precision] | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise LineError(f"{key!r} must be an ISO date or datetime")
    try:
        if len(value) == 10:
            moment, precision = local_midnight(date.fromisoformat(value), tz), Precision.DATE
        else:
            moment, precision = datetime.fromisoformat(value), Precision.DATETIME
    except ValueError:
        raise LineError(
            f"{key!r}: bad date {_quote(value)} (expected YYYY-MM-DD or an ISO datetime)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    try:
        in_range = moment.astimezone(UTC).year in YEARS
    except OverflowError:
        in_range = False
    if not in_range:
        raise LineError(f"{key!r}: date out of range {_quote(value)} (years {YEARS.start}-{YEARS.stop - 1})")
    return moment, precision


def _budget(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise LineError("'budget_eur' must be a number")
    try:
        amount = Decimal(str(value).replace("_", "").strip())
    except InvalidOperation:
        raise LineError(f"'budget_eur': not a number: {_quote(value)}") from None
    if not amount.is_finite() or amount < 0:
        raise LineError(f"'budget_eur': not a valid amount: {_quote(value)}")
    if amount > MAX_BUDGET:
        raise LineError(f"'budget_eur': out of range (at most {MAX_BUDGET:,f}): {_quote(value)}")
    return amount.quantize(Decimal("0.01"))


def parse_line(item: Any, *, now: datetime, tz: ZoneInfo) -> CallRecord:
    if not isinstance(item, dict):
        raise LineError("not a JSON object")
    unknown = sorted(set(item) - ALLOWED)
    if unknown:
        raise LineError(f"unknown field(s): {', '.join(unknown)}")
    title = _text(item, "title", required=True)
    url = _text(item, "url", required=True, limit=2000)
    try:
        parts = urlsplit(url)
    except ValueError:
        raise LineError(f"'url' is not an address: {_quote(url)}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LineError(f"'url' must be an http(s) address: {_quote(url)}")
    if url_userinfo(url):
        # "https://trusted.example@evil.example/" reads as one host and reaches another.
        raise LineError(f"'url' must not contain a user name or password (user@host): {_quote(url)}")
    source = _text(item, "source", limit=MAX_SOURCE) or "manual"
    if source in CRAWLED_SOURCES:
        # A crawl would rewrite the imported row and back again, each time a "change".
        raise LineError(f"'source' {source!r} is a crawled source; use another name (e.g. 'manual')")
    source_id = _text(item, "source_id", limit=MAX_SOURCE_ID) or hashlib.sha256(url.encode()).hexdigest()[:16]
    opens = parse_when(item.get("opens"), "opens", tz)
    closes = parse_when(item.get("closes"), "closes", tz)
    if opens and closes and closes[0] < opens[0]:
        raise LineError("'closes' is before 'opens'")
    status = CallStatus.OPEN
    if closes and (final_deadline(closes[0], closes[1], ()) or closes[0]) < now:
        status = CallStatus.CLOSED
    elif opens and opens[0] > now:
        status = CallStatus.FORTHCOMING
    language = _text(item, "language") or "it"
    if language not in ("it", "en"):
        raise LineError(f"'language' must be 'it' or 'en', not {_quote(language)}")
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


def parse_import_line(raw: bytes | str, *, now: datetime, tz: ZoneInfo) -> CallRecord | None:
    """One line of an import file as a record (None for a blank line); raises :class:`LineError`."""
    if len(raw) > MAX_LINE:
        raise LineError(f"longer than {MAX_LINE} characters")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LineError(f"not UTF-8 text (byte {exc.start + 1})") from None
    if not raw.strip():
        return None
    try:
        item = json.loads(raw, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise LineError(f"not valid JSON ({exc.msg}, column {exc.colno})") from None
    except RecursionError:
        raise LineError("not valid JSON (nested too deeply)") from None
    record = parse_line(item, now=now, tz=tz)
    # The raw column keeps the line as given, in plain JSON: a validated line is one flat object,
    # so its Decimals (parsed exactly for the budget) become the floats json.loads would give.
    plain = {k: float(v) if isinstance(v, Decimal) else v for k, v in item.items()}
    return replace(record, raw={"import": plain})


def read_import_lines(
    lines: Iterable[bytes | str], report: ImportReport, *, now: datetime, tz: ZoneInfo
) -> Iterator[CallRecord]:
    """The good records of ``lines``, lazily; each bad line is counted in ``report``."""
    for number, raw in enumerate(lines, start=1):
        try:
            record = parse_import_line(raw, now=now, tz=tz)
        except (LineError, ValueError, ArithmeticError) as exc:
            report.read += 1
            report.error(f"line {number}: {exc}")
            continue
        if record is not None:
            report.read += 1
            report.imported += 1
            yield record


def import_calls(
    db: Database, lines: Iterable[bytes | str], *, now: datetime, tz: ZoneInfo, batch_size: int = 500
) -> ImportReport:
    """Parse and ingest ``lines`` as they are read (constant memory); see the module docstring."""
    report = ImportReport()
    result = ingest(db, read_import_lines(lines, report, now=now, tz=tz), now=now, batch_size=batch_size)
    report.new, report.changed, report.unchanged = result.new, result.changed, result.unchanged
    report.imported -= len(result.errors)
    for line in result.errors:
        report.error(line)
    return report
