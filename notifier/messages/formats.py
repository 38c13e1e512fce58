"""One way to write each kind of value, in Italian and English, through Babel.

Every message, the digest, the bot and the web board write values with these functions, and
only these:

* a day: ``30 settembre 2026`` / ``30 September 2026`` (:func:`fmt_date`);
* a moment: ``30 settembre 2026, ore 12:00`` / ``30 September 2026, 12:00`` (:func:`fmt_day`,
  which writes only the day for a date-only value or local midnight);
* money: ``€ 1.500.000`` / ``€1,500,000``, cents only when there are any (:func:`fmt_money`);
* a time to come: ``chiude tra 5 giorni`` / ``closes in 5 days``, ``domani``, ``oggi alle 12:00``
  (:func:`countdown`), days counted on the Rome calendar.

Dates are shown in Europe/Rome. English follows British usage (day before month), as the
cluster's partners in EU projects read it. Scraped text is folded to one line
(:func:`one_line`) and cut at a word boundary with "…" (:func:`shorten`) or after its first
sentences (:func:`sentences`); links are made safe to
put in markup (:func:`safe_url`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

from babel import Locale
from babel.dates import format_date, format_time, format_timedelta
from babel.numbers import format_decimal

from notifier import catalogue
from storage.records import ROME, Precision

LANGUAGES = catalogue.LANGUAGES
DEFAULT_LANGUAGE = catalogue.DEFAULT_LANGUAGE
#: The Babel locale of each language.
LOCALES: Mapping[str, Locale] = {"it": Locale.parse("it_IT"), "en": Locale.parse("en_GB")}

#: Longer URLs are not linked (Telegram refuses overlong button URLs; they are junk anyway).
URL_LIMIT = 2_000

#: Control characters, C1 controls and bidi overrides/isolates: ingest removes them
#: (``storage.sanitise``); rows stored before that are folded here too.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def pick_lang(language: str | None) -> str:
    """The language a message is written in: ``it`` or ``en`` from a stored or requested tag
    (``en-GB`` → ``en``, ``IT`` → ``it``); Italian for anything else or nothing."""
    return catalogue.language(language)


def _word(key: str, lang: str) -> str:
    return catalogue.text(lang, f"format.{key}")


# --- text -------------------------------------------------------------------------------------


def one_line(text: str) -> str:
    """Fold newlines, tabs and control characters of a scraped value into single spaces."""
    return " ".join(CONTROL.sub(" ", text).split())


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters: cut at the last word boundary that
    fits and ended with "…" (mid-word only when a single word is longer than the limit)."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    head = text[: limit - 1]
    cut = head.rstrip()
    if not text[limit - 1].isspace():
        space = cut.rfind(" ")
        if space >= limit // 2:
            cut = cut[:space]
    return cut.rstrip(" ,;:.-–") + "…"


#: A sentence ends at ".", "!" or "?" followed by a space and a capital; not after an
#: abbreviation ("art.", "n.", "D.G.R.": a single letter, a short word not in capitals, or a word
#: with a dot inside; "PMI." ends a sentence).
_SENTENCE_END = re.compile(r"[.!?](?=\s+[«\"“(]?[A-ZÀ-Ý])")


def sentences(text: str, limit: int, *, count: int = 2) -> str:
    """The first ``count`` sentences of ``text`` (on one line) that fit in ``limit`` characters;
    when even the first does not fit, the text cut at a word boundary (:func:`shorten`)."""
    text = one_line(text)
    if not text:
        return ""
    ends = []
    for match in _SENTENCE_END.finditer(text):
        word = text[: match.start()].rsplit(" ", 1)[-1]
        if "." not in word and (len(word) > 3 or (len(word) > 1 and word.isupper())):
            ends.append(match.end())
    ends.append(len(text))
    best = ""
    for end in ends[:count]:
        if end > limit:
            break
        best = text[:end].strip()
    return best or shorten(text, limit)


def tg_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


#: Characters a URL may carry as they are; everything else is percent-encoded.
_URL_SAFE = "/:?#[]@!$&'()*+,;=%-._~"


def safe_url(url: str | None) -> str | None:
    """The URL fit to put in an href or a button: a plain http(s) link, with characters that are
    unsafe in markup or invalid in a URL (``<``, ``>``, ``"``, spaces inside, non-ASCII)
    percent-encoded. None when it is no such link: another scheme, no host, user-info (see
    :mod:`storage.sanitise`: the reader would see one host and reach another), control
    characters, or longer than :data:`URL_LIMIT`."""
    if not url:
        return None
    url = url.strip()
    if CONTROL.search(url) or "\n" in url or "\r" in url or "\t" in url:
        return None
    url = quote(url, safe=_URL_SAFE)
    if len(url) > URL_LIMIT:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if "@" in parts.netloc:
        return None
    return url


def source_label(name: str, lang: str = "it") -> str:
    """The human label of a source (``"feeds"`` → ``"Feed RSS (MIMIT, agenzie UE)"``, from the
    catalogue's ``source.*`` texts); a source the catalogue does not name shows its own name."""
    key = f"source.{name}"
    return catalogue.text(lang, key) if key in catalogue.message_ids(pick_lang(lang)) else name


# --- dates, money, relative times -------------------------------------------------------------


def fmt_date(value: date | datetime, lang: str) -> str:
    """``30 settembre 2026`` / ``30 September 2026`` (a datetime is read in Rome time)."""
    day = value.astimezone(ROME).date() if isinstance(value, datetime) else value
    return format_date(day, "long", locale=LOCALES[pick_lang(lang)])


def _date_only(local: datetime) -> bool:
    # Local midnight is how a date-only value is stored; the last instant of a day is how a
    # date-only deadline passes (storage.records.effective_deadline).
    return local.time() in (time(0, 0), time(23, 59, 59, 999999))


def fmt_day(value: datetime, lang: str, precision: Precision | str | None = Precision.DATETIME) -> str:
    """``30 settembre 2026, ore 12:00`` / ``30 September 2026, 12:00``; the day alone for a
    date-only value (``precision`` DATE, or local midnight)."""
    lang = pick_lang(lang)
    local = value.astimezone(ROME)
    day = fmt_date(local, lang)
    if precision == Precision.DATE or _date_only(local):
        return day
    return _word("at", lang).format(day=day, time=format_time(local.time(), "HH:mm", locale=LOCALES[lang]))


def fmt_money(value: Decimal, lang: str = "it") -> str:
    """``€ 1.500.000`` (it) or ``€1,500,000`` (en); cents shown only when there are any."""
    lang = pick_lang(lang)
    pattern = "#,##0" if value == value.to_integral_value() else "#,##0.00"
    text = format_decimal(value, format=pattern, locale=LOCALES[lang])
    return f"€{text}" if lang == "en" else f"€ {text}"


def fmt_value(value: Any, lang: str = "it") -> str:
    """A changed value as words: a moment, an amount, a list of them, or the text received."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return fmt_day(value, lang)
    if isinstance(value, Decimal):
        return fmt_money(value, lang)
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt_value(v, lang) for v in value) or "—"
    return str(value)


def countdown(at: datetime, now: datetime, lang: str, *, verb: str, precision: Precision | None) -> str:
    """``chiude tra 5 giorni`` / ``closes in 5 days``; ``verb`` is "closes" or "opens".

    Days are counted on the Rome calendar, so a call closing tomorrow at 09:00 "closes tomorrow"
    even when fewer than 24 hours remain.
    """
    lang = pick_lang(lang)
    if at <= now:
        return _word("closed" if verb == "closes" else "open", lang)
    local = at.astimezone(ROME)
    days = (local.date() - now.astimezone(ROME).date()).days
    word = _word(verb, lang)
    if days <= 0:
        if precision == Precision.DATE or _date_only(local):
            return f"{word} {_word('today', lang)}"
        hour = format_time(local.time(), "HH:mm", locale=LOCALES[lang])
        return f"{word} {_word('today_at', lang).format(time=hour)}"
    if days == 1:
        return f"{word} {_word('tomorrow', lang)}"
    delta = format_timedelta(
        timedelta(days=days), granularity="day", threshold=100_000, add_direction=True, locale=LOCALES[lang]
    )
    return f"{word} {delta}"
