"""Text parsing shared by every source: Italian and English dates, deadlines, amounts, HTML text.

Pure functions on ``str``; nothing here fetches or knows a source.

* :func:`parse_it_date` — the first date in a text: ``07/09/2026``, ``07/09/2026 ,``, ``7-9-2026``,
  ``7 settembre 2026``, ``1° ottobre 2026``, ``7 set. 2026``, ``15 October 2026``,
  ``October 15, 2026``, ``15th Oct 2026``, ISO ``2026-09-07`` (also ``2026-09-07T00:00:00.000``).
* :func:`parse_it_datetime` — the same with a time of day when one is written beside the date
  (``14/05/2026 , ore 09:16``, ``2026-09-07 12:00``, ``entro le ore 12.00 del 30/09/2026``,
  ``15 October 2026 17:00``, ``5 pm``): an aware datetime plus its :class:`Precision`.
* :func:`find_deadline` — the deadline a free text states ("scadenza", "scade il", "entro il",
  "termine", "deadline", "closing date" ...), for feeds and descriptions.
* :func:`parse_amount` / :func:`iter_amounts` — euro amounts as ``Decimal``.
* :func:`html_to_text` / :func:`html_lines` — readable text from scraped HTML fragments.
* :func:`one_line` — a scraped value (a string, a number, None) as one line of plain text.
* :func:`http_url` — a scraped link as an absolute http(s) URL, or None (``javascript:``,
  ``mailto:``, ``data:`` … are not links a member should be sent to).

Known limits:

* Numeric dates are read day-first (Italian and European usage); ``09/07/2026`` is 9 July,
  never September 7. Two-digit years and dates without a year are not read (the year would be a
  guess).
* "ore 24:00" (used in Italian calls for "end of the day") becomes 23:59:59 of that day.
* :func:`find_deadline` takes the first keyword-anchored date (strong keywords first, the vaguer
  "termine"/"fino al"/"until" only as a fallback); a text naming several deadlines yields the
  first one. When the anchored sentence says the deadline was extended ("prorogata",
  "extended"), the last date of that window is taken.
* Amounts in other currencies ($, USD, £, CHF) are ignored; see :func:`parse_amount` for the
  comma/dot rule and its one ambiguity.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from parsel import Selector

from storage.records import ROME, CallStatus, Precision, effective_deadline

__all__ = [
    "DateMatch",
    "find_deadline",
    "html_lines",
    "html_to_text",
    "http_url",
    "iter_amounts",
    "iter_dates",
    "one_line",
    "parse_amount",
    "parse_it_date",
    "parse_it_datetime",
    "parse_time",
]

# --- dates --------------------------------------------------------------------------------

_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        ("gennaio", "gen", "january", "jan"),
        ("febbraio", "feb", "february"),
        ("marzo", "mar", "march"),
        ("aprile", "apr", "april"),
        ("maggio", "mag", "may"),
        ("giugno", "giu", "june", "jun"),
        ("luglio", "lug", "july", "jul"),
        ("agosto", "ago", "august", "aug"),
        ("settembre", "set", "sett", "september", "sep", "sept"),
        ("ottobre", "ott", "october", "oct"),
        ("novembre", "nov", "november"),
        ("dicembre", "dic", "december", "dec"),
    ),
    start=1,
):
    for _name in _names:
        _MONTHS[_name] = _number

# Longest names first so "settembre" wins over "set" and "sett".
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))

_NUMERIC_DATE = re.compile(r"(?<![\d.,/])(\d{1,2})([/.\-])(\d{1,2})\2(\d{4})(?!\d)")
_ISO_DATE = re.compile(r"(?<![\d.,/])(\d{4})-(\d{2})-(\d{2})(?!\d)")
# "7 settembre 2026", "1° ottobre 2026", "15th October 2026", "7 set. 2026", "7-set-2026"
_DAY_MONTH_YEAR = re.compile(
    rf"(?<![\d\w])(\d{{1,2}})\s*(?:°|º|st|nd|rd|th)?[\s\-]*({_MONTH_RE})\.?[\s\-,]*(\d{{4}})(?!\d)",
    re.IGNORECASE,
)
# "October 15, 2026", "Oct. 15th 2026"
_MONTH_DAY_YEAR = re.compile(
    rf"(?<![\w])({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})(?!\d)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class DateMatch:
    """A date found in a text, with where it was written (``text[start:end]``)."""

    start: int
    end: int
    value: date


def _make_date(year: int, month: int, day: int) -> date | None:
    if not 1900 <= year <= 2200:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def iter_dates(text: str) -> Iterator[DateMatch]:
    """Every valid date written in ``text``, in reading order (overlaps resolved left-first)."""
    found: list[DateMatch] = []
    for m in _NUMERIC_DATE.finditer(text):
        d = _make_date(int(m.group(4)), int(m.group(3)), int(m.group(1)))
        if d:
            found.append(DateMatch(m.start(), m.end(), d))
    for m in _ISO_DATE.finditer(text):
        d = _make_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if d:
            found.append(DateMatch(m.start(), m.end(), d))
    for m in _DAY_MONTH_YEAR.finditer(text):
        d = _make_date(int(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1)))
        if d:
            found.append(DateMatch(m.start(), m.end(), d))
    for m in _MONTH_DAY_YEAR.finditer(text):
        d = _make_date(int(m.group(3)), _MONTHS[m.group(1).lower()], int(m.group(2)))
        if d:
            found.append(DateMatch(m.start(), m.end(), d))
    found.sort(key=lambda m: (m.start, -m.end))
    last_end = -1
    for match in found:
        if match.start >= last_end:
            last_end = match.end
            yield match


def parse_it_date(text: str | None) -> date | None:
    """The first date written in ``text`` (Italian, English or ISO form), or None."""
    if not text:
        return None
    return next((m.value for m in iter_dates(text)), None)


# --- times --------------------------------------------------------------------------------

# Right after a date: "07/09/2026 , ore 12:00", "2026-09-07 12:00", "2026-09-07T12:00:00",
# "15 October 2026, 17:00 CET", "30/09/2026 alle ore 12.00", "30 Sept 2026 at 5 pm".
_TIME_AFTER = re.compile(
    r"""\A[\s,;\-–—(]*
        (?:T|(?:alle\s+)?ore|alle|h\.?|hrs?\.?|at|,)?\s*
        (?P<h>\d{1,2})(?:\s*[:.]\s*(?P<m>\d{2})(?::\d{2}(?:\.\d+)?)?)?(?![\d:/]|[.,]\d)
        \s*(?P<ampm>[ap]\.?\s?m\.?)?(?!\w)""",
    re.IGNORECASE | re.VERBOSE,
)
# Before a date, only with an explicit marker: "entro le ore 12:00 del 30/09/2026".
_TIME_BEFORE = re.compile(
    r"(?:\bore|\bh\.?|\bat)\s*(?P<h>\d{1,2})(?:\s*[:.]\s*(?P<m>\d{2}))?(?![\d.,:/])"
    r"\s*(?P<ampm>[ap]\.?\s?m\.?)?(?!\w)",
    re.IGNORECASE,
)
_TIME_MARKER = re.compile(r"\A[\s,;\-–—(]*(?:T|ore|alle|h\.?|hrs?\.?|at)", re.IGNORECASE)


def _clock(hour_text: str, minute_text: str | None, ampm: str | None) -> time | None:
    hour = int(hour_text)
    minute = int(minute_text) if minute_text is not None else 0
    if ampm:
        if not 1 <= hour <= 12:
            return None
        if ampm.lower().startswith("p") and hour != 12:
            hour += 12
        elif ampm.lower().startswith("a") and hour == 12:
            hour = 0
    if hour == 24 and minute == 0:
        # Italian calls say "entro le ore 24:00" for the end of the day.
        return time(23, 59, 59)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return time(hour, minute)


def _time_after(text: str, pos: int) -> tuple[time, int] | None:
    """The time written at ``text[pos:]`` (right after a date) and where it ends."""
    rest = text[pos : pos + 30]
    m = _TIME_AFTER.match(rest)
    if not m:
        return None
    marked = bool(_TIME_MARKER.match(rest))
    # A bare number after a date ("2026 10 imprese") is not a time: need minutes, am/pm or a marker.
    if m.group("m") is None and not m.group("ampm") and not marked:
        return None
    clock = _clock(m.group("h"), m.group("m"), m.group("ampm"))
    return None if clock is None else (clock, pos + m.end())


def parse_time(text: str) -> time | None:
    """A time of day at the start of ``text`` (after a date): "ore 12:00", "12.00", "at 5 pm"."""
    found = _time_after(text, 0)
    return None if found is None else found[0]


def _time_near(text: str, match: DateMatch, *, before_from: int) -> time | None:
    """The time written right after the date or, with "ore"/"h"/"at", shortly before it."""
    after = _time_after(text, match.end)
    if after is not None:
        return after[0]
    before = text[max(before_from, match.start - 40) : match.start]
    found = None
    for m in _TIME_BEFORE.finditer(before):
        found = m
    if found is not None:
        return _clock(found.group("h"), found.group("m"), found.group("ampm"))
    return None


def _at(day: date, clock: time | None, tz: tzinfo) -> tuple[datetime, Precision]:
    if clock is None:
        return datetime.combine(day, time(0, 0), tzinfo=tz), Precision.DATE
    return datetime.combine(day, clock, tzinfo=tz), Precision.DATETIME


def parse_it_datetime(text: str | None, *, tz: tzinfo = ROME) -> tuple[datetime, Precision] | None:
    """The first date in ``text`` with the time written beside it, as an aware datetime in ``tz``.

    Without a time the result is local midnight with ``Precision.DATE``.
    """
    if not text:
        return None
    match = next(iter_dates(text), None)
    if match is None:
        return None
    return _at(match.value, _time_near(text, match, before_from=0), tz)


# --- deadlines ----------------------------------------------------------------------------

_STRONG_KEYWORDS = re.compile(
    r"""\b(?:scadenz[ae]|scade(?:nte|va)?|entro(?:\s+e\s+non\s+oltre)?|chiusura|
        deadlines?|closing\s+date|closes?|closing|due\s+date|apply\s+by|submission\s+date|
        cut-?off(?:\s+date)?)\b""",
    re.IGNORECASE | re.VERBOSE,
)
_WEAK_KEYWORDS = re.compile(r"\b(?:termine|termini|fino\s+al(?:le)?|until|till)\b", re.IGNORECASE)
_EXTENDED = re.compile(r"prorogat|posticipat|differit|extended|postponed|rinviat", re.IGNORECASE)
#: How far after its keyword a deadline date may be written.
_WINDOW = 90


def find_deadline(text: str | None, *, tz: tzinfo) -> tuple[datetime, Precision] | None:
    """The deadline stated in a free text, as (aware datetime in ``tz``, precision), or None.

    Reads "Scadenza: 30/09/2026 ore 12:00", "entro le ore 12.00 del 30 settembre 2026",
    "Deadline: 15 October 2026 17:00 CET", "Closing date: October 15, 2026".
    """
    if not text:
        return None
    dates = list(iter_dates(text))
    if not dates:
        return None
    for keywords in (_STRONG_KEYWORDS, _WEAK_KEYWORDS):
        for kw in keywords.finditer(text):
            window_end = kw.end() + _WINDOW
            in_window = [d for d in dates if kw.end() <= d.start < window_end]
            if not in_window:
                continue
            chosen = in_window[0]
            if _EXTENDED.search(text[kw.start() : window_end]) and len(in_window) > 1:
                chosen = in_window[-1]
            # A time before the date belongs to it only if it does not belong to an earlier date.
            before_from = kw.end()
            for earlier in dates:
                if earlier.end <= chosen.start:
                    own_time = _time_after(text, earlier.end)
                    before_from = max(before_from, own_time[1] if own_time else earlier.end)
            return _at(chosen.value, _time_near(text, chosen, before_from=before_from), tz)
    return None


# --- amounts ------------------------------------------------------------------------------

_NUMBER = re.compile(
    r"(?<![\w.,])"
    # grouped thousands ("1.500.000,00", "150,000.00", "1 500 000", "1'500'000") or plain ("2,5")
    r"(\d{1,3}(?:(?:[.,'’]|[ \u00a0\u202f](?=\d{3}(?!\d)))\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)"
    r"(?!\d)"
)
_MULTIPLIERS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"\A\s*(?:mila|k)(?![^\W\d_])", re.IGNORECASE), 1_000),
    (
        re.compile(r"\A\s*(?:milion[ei]|millions?|mln|mio|mil|m)\b\.?", re.IGNORECASE),
        1_000_000,
    ),
    (
        re.compile(r"\A\s*(?:miliard[oi]|billions?|bn|mld|mrd)\b\.?", re.IGNORECASE),
        1_000_000_000,
    ),
)
_CURRENCY_AFTER = re.compile(r"\A\s*(?:di\s+|of\s+)?(?:€|eur\b|euro\b|euros\b)", re.IGNORECASE)
_CURRENCY_BEFORE = re.compile(r"(?:€|\beur|\beuro)\s*\.?\s*\Z", re.IGNORECASE)
_OTHER_CURRENCY_BEFORE = re.compile(r"(?:\$|£|\busd|\bgbp|\bchf|\bdollar[is]?)\s*\Z", re.IGNORECASE)
_PERCENT_AFTER = re.compile(r"\A\s*(?:%|per\s*cento|percent)", re.IGNORECASE)
#: Larger values are a misread (a phone number, an id), not a funding amount.
_MAX_AMOUNT = Decimal(10) ** 13


def _number_value(token: str) -> Decimal | None:
    """The value of one written number, deciding which of ``.`` and ``,`` is the decimal mark.

    * Both present: the last one is the decimal mark ("1.500.000,00", "150,000.00").
    * One kind, several times: grouping ("1.500.000", "1,500,000").
    * One kind, once: decimal mark unless exactly three digits follow it and the integer part is
      not 0 ("2,5", "2.5", "0,500" are decimals; "1.500" and "1,500" are 1500). This is the
      ambiguous case: "1,500" in an Italian text meaning 1.5 is read as 1500 — Italian amounts
      are written with two decimals or none, so three decimals are taken for thousands.
    * Spaces and apostrophes between groups of three digits are grouping ("1 500 000", "1'500'000").
    """
    token = re.sub(r"[ \u00a0\u202f'’]", "", token)
    dots, commas = token.count("."), token.count(",")
    if dots and commas:
        decimal_mark = "." if token.rfind(".") > token.rfind(",") else ","
    elif dots + commas == 0:
        decimal_mark = ""
    else:
        mark = "." if dots else ","
        if token.count(mark) > 1:
            decimal_mark = ""
        else:
            integer, fraction = token.split(mark)
            decimal_mark = "" if len(fraction) == 3 and integer.strip("0") != "" else mark
    grouping = {".", ","} - {decimal_mark}
    for sep in grouping:
        token = token.replace(sep, "")
    if decimal_mark:
        token = token.replace(decimal_mark, ".")
    try:
        return Decimal(token)
    except InvalidOperation:
        return None


def _tidy(value: Decimal) -> Decimal:
    """Whole euros without a fractional part ("1500000" for "1.500.000,00"), else as written."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value


def iter_amounts(text: str | None) -> Iterator[Decimal]:
    """Every euro amount written in ``text``, in order.

    A number counts as an amount when a euro marker (``€``, ``EUR``, ``euro``) stands right before
    or after it or a scale word follows it ("mila", "k", "milioni", "million", "mln", "m",
    "miliardi", "billion", "bn"); numbers marked with another currency or followed by ``%`` are
    skipped.
    """
    if not text:
        return
    for m in _NUMBER.finditer(text):
        before = text[max(0, m.start() - 8) : m.start()]
        if _OTHER_CURRENCY_BEFORE.search(before):
            continue
        rest = text[m.end() : m.end() + 40]
        if _PERCENT_AFTER.match(rest):
            continue
        value = _number_value(m.group(1))
        if value is None:
            continue
        scale = 1
        for pattern, factor in _MULTIPLIERS:
            mult = pattern.match(rest)
            if mult:
                scale = factor
                rest = rest[mult.end() :]
                break
        marked = bool(_CURRENCY_BEFORE.search(before)) or bool(_CURRENCY_AFTER.match(rest))
        if not marked and scale == 1:
            continue
        if _OTHER_CURRENCY_BEFORE.search(before) or re.match(r"\A\s*(?:\$|usd|dollar|£|gbp|chf)", rest, re.I):
            continue
        amount = value * scale
        if amount > _MAX_AMOUNT:
            continue
        yield _tidy(amount)


def parse_amount(text: str | None) -> Decimal | None:
    """The first euro amount in ``text`` as Decimal euros, or None.

    "€ 1.500.000,00", "1.500.000 euro", "EUR 150,000.00", "EUR 2 million", "€2.5m",
    "2 milioni di euro", "6 mln", "500 mila euro". A text that is a bare number ("1.500.000")
    is read as euros too; a bare number inside a sentence is not (it could be anything).
    """
    if not text:
        return None
    first = next(iter_amounts(text), None)
    if first is not None:
        return first
    bare = text.strip()
    m = _NUMBER.fullmatch(bare)
    if m:
        value = _number_value(bare)
        if value is not None and value <= _MAX_AMOUNT:
            return _tidy(value)
    return None


# --- text ---------------------------------------------------------------------------------


def one_line(value: Any) -> str:
    """``value`` as text on one line: runs of whitespace (newlines, tabs, NBSP) become one space,
    the ends are stripped; None is the empty string."""
    return " ".join(str(value).split()) if value is not None else ""


# --- HTML to text -------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul",
    }
)  # fmt: skip
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "head"})


class _TextCollector(HTMLParser):
    def __init__(self, *, keep_breaks: bool = True) -> None:
        super().__init__(convert_charrefs=True)
        self.keep_breaks = keep_breaks
        self.lines: list[tuple[bool, str]] = []
        self._current: list[str] = []
        self._skip = 0
        self._bullet = False

    def _flush(self) -> None:
        line = " ".join("".join(self._current).split())
        if line:
            self.lines.append((self._bullet, line))
        self._current = []
        self._bullet = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag == "br":
            self._break()
        elif tag in _BLOCK_TAGS or tag in {"td", "th"}:
            if tag in {"td", "th"}:
                self._current.append(" ")
                return
            self._flush()
            if tag == "li":
                self._bullet = True

    def _break(self) -> None:
        if self.keep_breaks:
            # The rest of a list item after a <br> is a plain line (no second bullet).
            self._flush()
        else:
            self._current.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._break()
        elif tag in _BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._current.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def html_lines(fragment: str | None, *, bullets: bool = False, keep_breaks: bool = True) -> list[str]:
    """The visible text of an HTML fragment as lines: one per paragraph, list item or ``<br>``.

    Entities (``&ograve;``, ``&rsquo;``, ``&nbsp;``) are decoded and runs of whitespace collapsed.
    List items start with "- " when ``bullets`` is true; ``keep_breaks=False`` reads ``<br>`` as a
    space (a line broken inside a sentence stays one item). Broken markup is read as far as it goes.
    """
    if not fragment:
        return []
    collector = _TextCollector(keep_breaks=keep_breaks)
    collector.feed(fragment)
    collector.close()
    return [("- " + line) if (bullets and bullet) else line for bullet, line in collector.lines]


def html_to_text(fragment: str | None) -> str:
    """Readable plain text of an HTML fragment: paragraphs and list items on their own lines."""
    return "\n".join(html_lines(fragment, bullets=True))


# --- URLs ---------------------------------------------------------------------------------

_URL_EDGE = "".join(chr(c) for c in range(0x21))
_URL_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def http_url(href: str | None, base: str) -> str | None:
    """``href`` resolved against ``base`` when relative; None unless the result is http(s) with a host.

    Cleaned as browsers do before the scheme is judged (WHATWG URL): leading and trailing spaces
    and control characters stripped, tabs and newlines removed anywhere (``java\tscript:`` is
    ``javascript:``); an inner space becomes ``%20``, any other control character refuses the URL.
    """
    text = (href or "").strip(_URL_EDGE)
    text = re.sub(r"[\t\n\r]", "", text)
    if not text or _URL_CONTROL.search(text):
        return None
    try:
        url = urljoin(base, text.replace(" ", "%20"))
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an invalid IPv6 host
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return url


# --- calls and notices --------------------------------------------------------------------------

#: Words by which a feed entry's title says it is news about calls, not a call: results and
#: rankings, events, rate and platform updates, clarifications (RULES of the relevance set:
#: "not every feed item is a call").
_NOTICE_WORDS = re.compile(
    r"\b(?:results?|risultat[oi]|esit[oi]|graduatori[ae]|vincitor[ie]|winners?|awarded|beneficiari\s+ammessi|"
    r"elenc[oh]i?\s+(?:dei\s+|degli\s+)?(?:ammessi|beneficiari|finanziati)|ammessi\s+a\s+finanziamento|"
    r"info\s*-?\s*days?|webinars?|convegn[oi]|workshops?|eventi?|events?|conferences?|"
    r"aggiornat[oaie]|aggiornament[oi]|tass[oi]\s+di\s+riferimento|reference\s+rates?|faq|chiariment[oi]|"
    r"comunicat[oi]|newsletter|statistic(?:s|he)|proroga|prorogat[oaie]|rettifica|signed|firmat[oaie])\b",
    re.IGNORECASE,
)
#: Words by which a title announces a call opening, which wins over the words above ("call
#: now open", "riapre lo sportello", "nuovo bando").
_OPENING_WORDS = re.compile(
    r"\b(?:call\s+for\s+proposals|calls?\s+(?:now\s+)?open(?:s|ed)?|now\s+open|opens|"
    r"(?:ri)?apre|(?:ri)?aperto|(?:ri)?aperta|(?:ri)?apertura|nuovo\s+bando|avviso\s+pubblico|"
    r"invito\s+a\s+presentare|cut-?off)\b",
    re.IGNORECASE,
)


def notice_or_call(title: str) -> str:
    """``"notice"`` when a feed entry's title says it is news about calls (results, an info day,
    an updated rate, an extension) rather than a call; else ``"call"``. A title that announces
    an opening is a call whatever else it says. Only titles are read: a summary of a call
    mentions past results and events on the way."""
    if _NOTICE_WORDS.search(title) and not _OPENING_WORDS.search(title):
        return "notice"
    return "call"


def page_selector(body: bytes) -> Selector:
    """A page's HTML for CSS queries: UTF-8, else Windows-1252 (what Italian public sites send
    when they do not say), never an error on a stray byte."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("windows-1252", "replace")
    return Selector(text=text)


def status_from_dates(
    *,
    opens: datetime | None,
    closes: datetime | None,
    closes_precision: Precision | None,
    now: datetime,
) -> CallStatus:
    """Open / forthcoming / closed from the dates alone (UNKNOWN when there are none)."""
    end = effective_deadline(closes, closes_precision)
    if end is not None and end < now:
        return CallStatus.CLOSED
    if opens is not None and opens > now:
        return CallStatus.FORTHCOMING
    if opens is not None or closes is not None:
        return CallStatus.OPEN
    return CallStatus.UNKNOWN
