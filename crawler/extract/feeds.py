"""RSS/Atom feeds: entries as calls, with feedparser on bytes (never on a URL).

:func:`extract_feed` hands feedparser the body as a stream plus the response headers (so the
declared charset and the base URL are honoured) and never lets it fetch anything. feedparser's
loose dictionaries become frozen :class:`CallRecord` objects here, at the boundary.

``bozo`` is handled on purpose:

* a body that is not a feed at all (an HTML error page, JSON, an empty body) raises
  :class:`ExtractionError` — the spider records it for that feed, the other feeds go on;
* a feed that is malformed but readable (an unescaped ``&``, an undefined entity, a wrong declared
  encoding) still yields its entries, and one error line says what was wrong.

Mapping: ``status`` is always ``unknown`` (a feed entry is news about a call, not its record);
``kind`` is ``notice`` when the title says the entry is results, an info day, an update or an
extension rather than a call (:func:`crawler.parsing.notice_or_call`): notices alert nobody and
appear in the staff digest under their own heading;
the deadline is read from the title, summary and content with :func:`crawler.parsing.find_deadline`
(Italian and English forms, Europe/Rome unless the text says otherwise); ``budget_total`` is the
first euro amount the text states (:func:`crawler.parsing.parse_amount`), which may be a figure of
the measure rather than of the call. ``source_id`` is ``<feed name>:<guid or link>`` so two feeds
can never collide.

Known limits: an entry whose guid changes at every publication (some CMSs do that) is seen as a
new call each time; entries without a title and without a link are skipped with an error.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import feedparser

from crawler.extract import ExtractionError, note
from crawler.parsing import find_deadline, html_to_text, http_url, notice_or_call, one_line, parse_amount
from storage.records import MAX_ITEM, ROME, CallRecord, CallStatus, Deadline, Precision

SOURCE = "feeds"
SUMMARY_CHARS = 1_000

#: Bozo exceptions that are not worth an error line: the body was read exactly as intended
#: (a declared charset corrected by the real one; a feed served as text/html or without a type).
_BENIGN_BOZO = ("CharacterEncodingOverride", "NonXMLContentType")
#: A "budget" under this is a misread ("EUR 10 to 30 million" gives 10), not a call's budget.
_MIN_BUDGET = Decimal(1000)


def _parsed_time(value: Any) -> datetime | None:
    """feedparser's ``*_parsed`` (a UTC struct_time) as an aware datetime in Europe/Rome."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC).astimezone(ROME)
    except (OverflowError, ValueError, OSError):
        return None


def _text(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return html_to_text(value) if "<" in value or "&" in value else one_line(value)


def parse_feed(body: bytes, url: str, *, headers: Mapping[str, str] | None = None) -> Any:
    """feedparser's result for a body, never fetching; raises ExtractionError if it is not a feed."""
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    # Relative links in the feed resolve against the URL it was fetched from.
    response_headers.setdefault("content-location", url)
    if not body.strip():
        raise ExtractionError("empty body, not a feed")
    parsed = feedparser.parse(
        io.BytesIO(body),
        response_headers=response_headers,
        # We render our own text from the HTML; feedparser's sanitiser would only cost time.
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    if not parsed.get("version") and not parsed.get("entries"):
        reason = parsed.get("bozo_exception")
        raise ExtractionError(
            f"not an RSS/Atom feed ({type(reason).__name__ if reason else 'no feed element'})"
        )
    return parsed


def extract_feed(
    body: bytes,
    url: str,
    fetched_at: datetime,
    *,
    feed_name: str,
    headers: Mapping[str, str] | None = None,
    language: str = "it",
    publisher: str = "",
    errors: list[str] | None = None,
) -> list[CallRecord]:
    """The entries of one feed as call records (status unknown, deadline read from the text)."""
    parsed = parse_feed(body, url, headers=headers)
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        name = type(exc).__name__ if exc else "unknown"
        if name not in _BENIGN_BOZO:
            note(
                errors,
                f"feed {feed_name}: malformed ({name}: {str(exc)[:120]}); "
                f"{len(parsed.entries)} entries read anyway",
            )
    base = parsed.feed.get("link") if isinstance(parsed.get("feed"), dict) else None
    records: list[CallRecord] = []
    seen: set[str] = set()
    for index, entry in enumerate(parsed.entries):
        try:
            record = _entry_record(
                entry,
                url=url,
                base=base or url,
                fetched_at=fetched_at,
                feed_name=feed_name,
                language=language,
                publisher=publisher,
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            note(errors, f"feed {feed_name}: entry {index}: {exc}; skipped")
            continue
        if record.source_id in seen:
            note(errors, f"feed {feed_name}: entry {index} repeats {record.source_id}; skipped")
            continue
        seen.add(record.source_id)
        records.append(record)
    return records


def _entry_record(
    entry: Mapping[str, Any],
    *,
    url: str,
    base: str,
    fetched_at: datetime,
    feed_name: str,
    language: str,
    publisher: str,
) -> CallRecord:
    title = _text(entry.get("title"))
    # Relative links resolve against the feed; only http(s) ones are kept (no javascript:, mailto:).
    link = http_url(str(entry.get("link") or ""), base) or ""
    guid = str(entry.get("id") or "").strip()
    if not title:
        raise ValueError("no title")
    if not (link or guid):
        raise ValueError("neither link nor guid")
    key = guid or link
    if len(key) > 200:
        key = hashlib.sha256(key.encode("utf-8")).hexdigest()
    summary_html = str(entry.get("summary") or "")
    contents = entry.get("content") or []
    content_html = "\n".join(str(c.get("value") or "") for c in contents if isinstance(c, Mapping))
    summary = _text(summary_html)
    description = _text(content_html) if content_html else ""
    if description == summary:
        description = ""
    text = "\n".join(part for part in (title, summary, description) if part)

    deadline = find_deadline(text, tz=ROME)
    deadlines = (Deadline(at=deadline[0], precision=deadline[1], label=""),) if deadline else ()
    published = _parsed_time(entry.get("published_parsed")) or _parsed_time(entry.get("updated_parsed"))
    tags = tuple(
        one_line(t.get("term"))[:MAX_ITEM]
        for t in entry.get("tags") or []
        if isinstance(t, Mapping) and t.get("term")
    )
    budget = parse_amount(f"{summary}\n{description}")
    if budget is not None and budget < _MIN_BUDGET:
        budget = None

    return CallRecord(
        source=SOURCE,
        source_id=f"{feed_name}:{key}",
        url=link or url,
        title=title,
        summary=summary[:SUMMARY_CHARS],
        description=description,
        language=str(entry.get("language") or language or "it")[:8],
        status=CallStatus.UNKNOWN,
        kind=notice_or_call(title),
        published=published,
        published_precision=Precision.DATETIME if published else None,
        closes=deadline[0] if deadline else None,
        closes_precision=deadline[1] if deadline else None,
        deadlines=deadlines,
        budget_total=budget,
        granting_body=publisher,
        keywords=tuple(t for t in tags if t),
        links=(link,) if link else (),
        raw={
            "feed": feed_name,
            "id": guid,
            "link": link,
            "title": str(entry.get("title") or ""),
            "published": str(entry.get("published") or entry.get("updated") or ""),
            "summary": summary_html[:20_000],
        },
    )
