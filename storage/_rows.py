"""Conversions between :class:`~storage.records.CallRecord` values and ``calls`` rows.

Private to ``storage``: ingest writes rows with :func:`record_to_row`, the query module reads
them back with :func:`row_to_fields`. Money goes to integer cents and back to ``Decimal``;
datetimes stay aware (the column type refuses naive ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from storage.records import (
    MAX_DESCRIPTION,
    MAX_ITEM,
    MAX_LIST_ITEMS,
    MAX_SUMMARY,
    MAX_TITLE,
    ROME,
    Attachment,
    CallRecord,
    CallStatus,
    Deadline,
    Precision,
)

_CENT = Decimal("0.01")


def to_cents(value: Decimal | None) -> int | None:
    if value is None:
        return None
    # Sources quote whole euros or cents; a sub-cent fraction can only be noise.
    return int(value.quantize(_CENT, rounding=ROUND_HALF_EVEN) * 100)


def from_cents(value: int | None) -> Decimal | None:
    return None if value is None else Decimal(value).scaleb(-2)


def is_capped(record: CallRecord) -> bool:
    """True when :meth:`CallRecord.capped` would return an equal record (cheap check)."""
    if (
        len(record.title) > MAX_TITLE
        or record.title != record.title.strip()
        or len(record.summary) > MAX_SUMMARY
        or len(record.description) > MAX_DESCRIPTION
        or len(record.attachments) > MAX_LIST_ITEMS
        or len(record.deadlines) > MAX_LIST_ITEMS
    ):
        return False
    for values in (
        record.beneficiaries,
        record.regions,
        record.ateco_codes,
        record.keywords,
        record.support_forms,
        record.links,
    ):
        if len(values) > MAX_LIST_ITEMS or any(len(v) > MAX_ITEM for v in values):
            return False
    return True


def capped(record: CallRecord) -> CallRecord:
    return record if is_capped(record) else record.capped()


def deadline_json(d: Deadline) -> dict[str, Any]:
    return {"at": d.at.isoformat(), "precision": d.precision.value, "label": d.label}


def record_to_row(record: CallRecord) -> dict[str, Any]:
    """The ``calls`` columns that come from the record (not ids, hashes, keys or times)."""
    return {
        "source": record.source,
        "source_id": record.source_id,
        "url": record.url,
        "title": record.title,
        "summary": record.summary,
        "description": record.description,
        "language": record.language,
        "status": record.status.value,
        "published_at": record.published,
        "published_precision": _enum(record.published_precision),
        "opens_at": record.opens,
        "opens_precision": _enum(record.opens_precision),
        "closes_at": record.closes,
        "closes_precision": _enum(record.closes_precision),
        "deadlines": [deadline_json(d) for d in record.deadlines],
        "sportello": record.sportello,
        "budget_total_cents": to_cents(record.budget_total),
        "contribution_min_cents": to_cents(record.contribution_min),
        "contribution_max_cents": to_cents(record.contribution_max),
        "beneficiaries": list(record.beneficiaries),
        "programme": record.programme,
        "funding_source": record.funding_source,
        "granting_body": record.granting_body,
        "regions": list(record.regions),
        "ateco_codes": list(record.ateco_codes),
        "keywords": list(record.keywords),
        "support_forms": list(record.support_forms),
        "attachments": [{"name": a.name, "url": a.url} for a in record.attachments],
        "links": list(record.links),
        "raw": dict(record.raw) if record.raw is not None else None,
        "kind": record.kind,
    }


def _enum(value: Precision | None) -> str | None:
    return None if value is None else value.value


def _prec(value: str | None) -> Precision | None:
    return None if value is None else Precision(value)


def _aware(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    # Stored deadlines always carry an offset; guard against a hand-edited row all the same.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=ROME)


def local(value: datetime | None) -> datetime | None:
    """An instant read back from the database (UTC) shown in Europe/Rome, as records are."""
    return None if value is None else value.astimezone(ROME)


def row_to_fields(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The CallRecord fields (same names and types) of a ``calls`` row; datetimes in Europe/Rome."""
    return {
        "source": row["source"],
        "source_id": row["source_id"],
        "url": row["url"],
        "title": row["title"],
        "summary": row["summary"],
        "description": row["description"],
        "language": row["language"],
        "status": CallStatus(row["status"]),
        "published": local(row["published_at"]),
        "published_precision": _prec(row["published_precision"]),
        "opens": local(row["opens_at"]),
        "opens_precision": _prec(row["opens_precision"]),
        "closes": local(row["closes_at"]),
        "closes_precision": _prec(row["closes_precision"]),
        "deadlines": tuple(
            Deadline(at=_aware(d["at"]), precision=Precision(d["precision"]), label=d.get("label", ""))
            for d in row["deadlines"] or ()
        ),
        "sportello": bool(row["sportello"]),
        "budget_total": from_cents(row["budget_total_cents"]),
        "contribution_min": from_cents(row["contribution_min_cents"]),
        "contribution_max": from_cents(row["contribution_max_cents"]),
        "beneficiaries": tuple(row["beneficiaries"] or ()),
        "programme": row["programme"],
        "funding_source": row["funding_source"],
        "granting_body": row["granting_body"],
        "regions": tuple(row["regions"] or ()),
        "ateco_codes": tuple(row["ateco_codes"] or ()),
        "keywords": tuple(row["keywords"] or ()),
        "support_forms": tuple(row["support_forms"] or ()),
        "attachments": tuple(Attachment(a["name"], a["url"]) for a in row["attachments"] or ()),
        "links": tuple(row["links"] or ()),
        "raw": row["raw"],
        "kind": row["kind"],
    }


def row_to_record(row: Mapping[Any, Any]) -> CallRecord:
    return CallRecord(**row_to_fields(row))
