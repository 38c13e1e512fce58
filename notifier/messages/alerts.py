"""Alert messages: Telegram HTML (with its inline keyboard), plain text and e-mail, Italian or English.

Everything a message shows is first gathered as plain strings (:class:`AlertFacts`); each format
then escapes them its own way: ``html.escape`` for Telegram HTML, an autoescaping Jinja2
environment (templates in ``notifier/messages/templates/``) for e-mail, nothing for plain text. Scraped
values are never pasted into markup unescaped, and single-line fields (the title) have their
newlines folded, so a title such as ``</a><b>x`` shows as those characters.

What an alert says, in this order (changes and reminders leave out the summary, who may apply
and "Perché": the member knows the call already):

* the headline (a change alert's headline is not repeated in its change lines);
* what changed, old → new (change alerts);
* the title, cut at a word boundary with "…" after :data:`TITLE_LIMIT` characters;
* who publishes it: the granting body (the call's, else one another portal of its duplicate
  group gives), else the portal; for a call added by hand with no granting body, the host name
  of its link ("Inserito a mano" is an internal label, never shown); and the status;
* who may apply, in one line: the call's beneficiaries field, else what
  :func:`notifier.matching.eligibility.applicants_of` read (the payload's ``applicants``);
* one or two sentences of summary (the call's, else another portal's of its group);
* the opening date, only while it lies ahead; the deadline with its countdown; the budget (the
  call's, else the first portal of its group that gives one, named);
* "Perché": at most :data:`MAX_WHY` plain reasons;
* one link: the "open the call" button (Telegram's inline keyboard; the e-mail's button; the
  plain-text console message, which has no button, shows the URL once).

What the outbox payload may carry (written by the planners; every key optional):

* ``matched`` — why the call matched, as data (``[{"kind", "term", "field", "topic"}]``, see
  ``notifier.matching.engine.Reason``), worded here;
* ``reasons`` — the same as plain strings (a list, or ``{"it": [...], "en": [...]}``): read when
  ``matched`` is absent (rows planned before it existed);
* ``applicants`` — ``{"admits": [beneficiary ids], "sectors": [applicant sector ids]}``;
* ``group`` — ``{"budget_total" | "summary" | "granting_body": {"value", "source"}}``: what
  another portal of the call's duplicate group gives and the call lacks
  (:func:`notifier.planning.alerts.call_context`);
* ``changes`` — for ``changed:<event>`` alerts: the facts of :func:`notifier.planning.changes.changes_json`
  (``[{"kind", "old", "new"}]``) or a raw event diff ``{field: {"old", "new"}}`` (read with
  :func:`notifier.planning.changes.significant_changes`, ``event_kind`` giving the event kind);
* ``deadline`` / ``deadline_label`` — for reminders: the (stage) deadline the reminder is about.

Telegram caps a message at :attr:`telegram.constants.MessageLimit.MAX_TEXT_LENGTH` characters
(counted in UTF-16 units). The cap is applied to the markup itself, which is stricter than
Telegram's count after parsing; when a message is too long the longest untrusted field is cut
(before escaping, so an entity or a tag is never split) and ends with "…".

Known limits: dates are shown in Europe/Rome; the English texts use the same layout as the
Italian ones.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import InlineKeyboardButtonLimit, MessageLimit

from notifier import catalogue
from notifier.config import EmailConfig
from notifier.matching.eligibility import COMPANY_TYPES
from notifier.matching.engine import FIELD_NAMES, Reason, field_words
from notifier.matching.vocabulary import default_vocabulary
from notifier.messages.changes import change_line
from notifier.messages.formats import (
    CONTROL,
    countdown,
    fmt_day,
    fmt_money,
    one_line,
    pick_lang,
    safe_url,
    sentences,
    shorten,
    source_label,
    tg_len,
)
from notifier.messages.unsubscribe import Links, Scope
from notifier.messages.unsubscribe import links as unsubscribe_links
from notifier.planning.changes import ChangeFact, parse_datetime, significant_changes
from storage.outbox import Recipient
from storage.records import Precision, effective_deadline

TELEGRAM_LIMIT: int = MessageLimit.MAX_TEXT_LENGTH
#: A subject longer than this is cut (RFC 5322 recommends lines under 78 characters; clients
#: show about this much anyway).
SUBJECT_LIMIT = 150
#: Callback data of the feedback buttons: ``fb:i:<group id>`` (interested), ``fb:n:<group id>``.
FEEDBACK_PREFIX = "fb"
FEEDBACK_KINDS = {"i": "interested", "n": "not_for_us"}
#: Longest title shown (longer ones end with "…" at a word boundary).
TITLE_LIMIT = 300
#: Longest summary (one or two sentences) and "who may apply" line.
SUMMARY_LIMIT = 320
APPLICANTS_LIMIT = 200
#: Most reasons shown after "Perché", and the longest term quoted in one.
MAX_WHY = 3
MAX_TERM = 60
#: Sources that are no portal ("manual", like any source name an import file gives, is an
#: internal label): their calls show the host name of their link instead.
_NOT_A_PORTAL = frozenset({"manual"})

_TEXT = catalogue.section("alert")

_STATUS = catalogue.section("status")

_ICONS = {
    "new": "🆕",
    "changed": "✏️",
    "reopened": "🔓",
    "closed_early": "⛔",
    "deadline": "📅",
    "act": "📄",
    "ranking": "📋",
    "partner": "🤝",
    "reminder-open": "⏰",
    "reminder-close": "⏰",
    "reminder": "⏰",
}


class CallLike(Protocol):
    """What a message needs of a call (``storage.calls.CallView`` has it all)."""

    @property
    def id(self) -> int: ...
    @property
    def group_id(self) -> int | None: ...
    @property
    def source(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def opens(self) -> datetime | None: ...
    @property
    def opens_precision(self) -> Precision | None: ...
    @property
    def closes(self) -> datetime | None: ...
    @property
    def closes_precision(self) -> Precision | None: ...
    @property
    def sportello(self) -> bool: ...
    @property
    def budget_total(self) -> Decimal | None: ...


@dataclass(frozen=True, slots=True)
class Alert:
    """One outbox row ready to send: who, which call, why, and the moment it is sent."""

    outbox_id: int
    reason: str
    channel: str
    recipient: Recipient
    call: CallLike
    payload: Mapping[str, Any]
    now: datetime
    #: The group the feedback buttons refer to (defaults to the call's group).
    group_id: int | None = None

    @property
    def lang(self) -> str:
        return pick_lang(self.recipient.language)

    @property
    def feedback_group(self) -> int:
        group = self.group_id if self.group_id is not None else self.call.group_id
        return group if group is not None else 0


@dataclass(slots=True)
class AlertFacts:
    """Everything an alert says, as plain (unescaped) strings."""

    lang: str
    kind: str
    headline: str
    icon: str
    title: str
    changes: str
    publisher: str
    status: str
    applicants: str
    summary: str
    opens: str
    closes: str
    budget: str
    why: str
    url: str | None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TelegramMessage:
    html: str
    text: str
    keyboard: InlineKeyboardMarkup


# --- small formatting helpers ---------------------------------------------------------------


def _fact_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "budget":
        try:
            return Decimal(str(value))
        except (InvalidOperation, ValueError):
            return str(value)
    if isinstance(value, list):
        return [_fact_value(kind, v) for v in value]
    parsed = parse_datetime(value)
    return parsed if parsed is not None else value


def change_facts(payload: Mapping[str, Any], *, now: datetime) -> list[ChangeFact]:
    """The change facts a ``changed:`` alert carries (see the module docstring for the forms)."""
    raw = payload.get("changes")
    if isinstance(raw, list):
        facts = []
        for item in raw:
            if isinstance(item, Mapping) and isinstance(item.get("kind"), str):
                kind = item["kind"]
                old, new = _fact_value(kind, item.get("old")), _fact_value(kind, item.get("new"))
                facts.append(ChangeFact(kind, old, new))
        return facts
    if isinstance(raw, Mapping):
        kind = str(payload.get("event_kind") or "changed")
        return significant_changes(kind, raw, at=now)
    return []


def _group_value(payload: Mapping[str, Any], name: str) -> tuple[str, str] | None:
    """``(value, source)`` another portal of the group gives for ``name`` (payload ``group``)."""
    group = payload.get("group")
    item = group.get(name) if isinstance(group, Mapping) else None
    if not isinstance(item, Mapping) or not str(item.get("value") or "").strip():
        return None
    return str(item["value"]), str(item.get("source") or "")


def reasons_line(payload: Mapping[str, Any], lang: str) -> str:
    """The "why it matched" line: at most :data:`MAX_WHY` plain reasons, one per topic, from the
    payload's ``matched`` data (else its plain-string ``reasons``, rows planned before)."""
    t = _TEXT[lang]
    lines: list[str] = []
    matched = payload.get("matched")
    if isinstance(matched, list) and matched:
        vocab = default_vocabulary()
        topics: set[str] = set()
        for item in matched:
            if not isinstance(item, Mapping):
                continue
            kind, topic = str(item.get("kind") or ""), item.get("topic")
            term = catalogue.text(lang, "format.quoted", words=shorten(str(item.get("term") or ""), MAX_TERM))
            field = str(item.get("field") or "")
            where = field_words(field, lang) if field in FIELD_NAMES else ""
            if kind == "topic" and isinstance(topic, str):
                if topic in topics:
                    continue
                topics.add(topic)
                text = t["topic_reason"].format(topic=vocab.topic_label(topic, lang), term=term, where=where)
            elif kind == "keyword":
                text = t["keyword_reason"].format(term=term, where=where)
            else:
                text = Reason(kind, str(item.get("term") or ""), str(item.get("field") or "")).line(lang)
            text = one_line(text)
            if text and text not in lines:
                lines.append(text)
            if len(lines) >= MAX_WHY:
                break
        return "; ".join(lines)
    raw: Any = payload.get("reasons") or payload.get("why") or ()
    if isinstance(raw, Mapping):
        raw = raw.get(lang) or raw.get("it") or next(iter(raw.values()), ())
    if isinstance(raw, str):
        raw = [raw]
    for item in raw if isinstance(raw, Sequence) else ():
        if isinstance(item, Mapping):
            item = item.get(lang) or item.get("it") or ""
        text = one_line(str(item))
        if text and text not in lines:
            lines.append(text)
        if len(lines) >= MAX_WHY:
            break
    return "; ".join(lines)


def publisher(call: CallLike, payload: Mapping[str, Any], lang: str) -> str:
    """Who publishes the call: its granting body (else one another portal of its group gives),
    else the portal; a call added by hand (or imported under a source name of its own) with
    neither shows its link's host name, or nothing."""
    body = one_line(str(getattr(call, "granting_body", "") or ""))
    if not body:
        found = _group_value(payload, "granting_body")
        body = one_line(found[0]) if found else ""
    if body:
        return shorten(body, 120)
    if f"source.{call.source}" in catalogue.message_ids(lang) and call.source not in _NOT_A_PORTAL:
        return one_line(source_label(call.source, lang))
    url = safe_url(call.url)
    host = (urlsplit(url).hostname or "") if url else ""
    return host.removeprefix("www.")


def applicants_line(call: CallLike, payload: Mapping[str, Any], lang: str) -> str:
    """Who may apply, in one line: the call's beneficiaries field as written; else the applicant
    types eligibility read (payload ``applicants``) in the fewest vocabulary labels; "" when the
    call does not say."""
    written = "; ".join(p for p in (one_line(str(b)) for b in getattr(call, "beneficiaries", ()) or ()) if p)
    if written:
        return shorten(written, APPLICANTS_LIMIT)
    data = payload.get("applicants")
    if not isinstance(data, Mapping):
        return ""
    admits = {str(a) for a in data.get("admits") or ()}
    sectors = [str(s) for s in data.get("sectors") or ()]
    vocab = default_vocabulary()
    words: list[str] = []
    covered: set[str] = set()
    if admits >= COMPANY_TYPES:
        words.append(_TEXT[lang]["any_company"])
        covered |= COMPANY_TYPES
    # The widest labels first ("PMI" says micro, small and medium firms and start-ups at once).
    chosen = []
    for entry in sorted(vocab.beneficiaries.values(), key=lambda b: -len(b.admits)):
        if entry.admits <= admits and entry.admits - covered:
            chosen.append(entry)
            covered |= entry.admits
    order = list(vocab.beneficiaries)
    words.extend(b.label(lang) for b in sorted(chosen, key=lambda b: order.index(b.id)))
    words.extend(sorted(admits - covered - set(vocab.beneficiaries)))
    if not words and not sectors:
        return ""
    line = ", ".join(words)
    labels = [vocab.applicant_sectors[s].label(lang) if s in vocab.applicant_sectors else s for s in sectors]
    if labels:
        only = _TEXT[lang]["sectors"].format(sectors=", ".join(labels))
        line = f"{line} ({only})" if line else only[:1].upper() + only[1:]
    return shorten(line, APPLICANTS_LIMIT)


def summary_text(call: CallLike, payload: Mapping[str, Any]) -> str:
    """One or two sentences: a plain-language summary another portal of its group wrote, else
    the call's own, else another portal's."""
    group = payload.get("group")
    plain = (
        isinstance(group, Mapping)
        and isinstance(group.get("summary"), Mapping)
        and group["summary"].get("plain")
    )
    own = str(getattr(call, "summary", "") or "")
    if plain or not one_line(own):
        found = _group_value(payload, "summary")
        own = found[0] if found else own
    return sentences(own, SUMMARY_LIMIT)


def budget_text(call: CallLike, payload: Mapping[str, Any], lang: str) -> str:
    """The call's budget; else the first figure another portal of its group gives, naming it."""
    if call.budget_total is not None:
        return fmt_money(call.budget_total, lang)
    found = _group_value(payload, "budget_total")
    if found is None:
        return ""
    try:
        amount = Decimal(found[0])
    except (InvalidOperation, ValueError):
        return ""
    text = fmt_money(amount, lang)
    if found[1] and found[1] != call.source:
        text += f" ({_TEXT[lang]['according_to'].format(source=source_label(found[1], lang))})"
    return text


def alert_kind(reason: str) -> str:
    """``new``, ``changed``, ``reminder-open``, ``reminder-close`` or ``reminder`` from a reason."""
    if reason.startswith("changed"):
        return "changed"
    if reason.startswith("reminder-open"):
        return "reminder-open"
    if reason.startswith("reminder-close"):
        return "reminder-close"
    if reason.startswith("reminder"):
        return "reminder"
    return "new"


def facts(alert: Alert) -> AlertFacts:
    """Gather what the alert says, in the member's language, as plain strings."""
    lang, call, now, payload = alert.lang, alert.call, alert.now, alert.payload
    t = _TEXT[lang]
    kind = alert_kind(alert.reason)
    headline_key = kind
    change_lines = ""
    if kind == "changed":
        found = change_facts(payload, now=now)
        kinds = [f.kind for f in found]
        for special in ("reopened", "closed_early", "deadline"):
            if special in kinds:
                headline_key = special
                break
        else:
            acts = [f.new for f in found if f.kind == "act" and isinstance(f.new, Mapping)]
            if acts:
                headline_key = "ranking" if acts[0].get("kind") == "graduatoria" else "act"
        # Each change is said without the words of the headline it stands under.
        change_lines = "\n".join(one_line(change_line(f, lang, under=headline_key)) for f in found)
    elif kind == "new" and getattr(call, "kind", "call") == "partner_search":
        headline_key = "partner"
        t = {**t, "open": t["open_partner"], "closes": t["expires"]}
    status = _STATUS[lang].get(str(call.status), "")
    opens = ""
    if call.opens is not None and call.opens > now:
        # Only while it lies ahead: a past opening tells the member nothing to act on.
        opens = f"{t['opens']}: {fmt_day(call.opens, lang, call.opens_precision)}"
        opens += f" ({countdown(call.opens, now, lang, verb='opens', precision=call.opens_precision)})"
    closes = ""
    deadline = parse_datetime(payload.get("deadline"))
    if kind.startswith("reminder") and deadline is not None and deadline != call.closes:
        label = one_line(str(payload.get("deadline_label") or ""))
        closes = f"{t['next_deadline']}: {fmt_day(deadline, lang)}"
        closes += f" ({countdown(deadline, now, lang, verb='closes', precision=None)})"
        if label:
            closes += f" — {label}"
    elif call.closes is not None:
        final = effective_deadline(call.closes, call.closes_precision) or call.closes
        closes = f"{t['closes']}: {fmt_day(call.closes, lang, call.closes_precision)}"
        closes += f" ({countdown(final, now, lang, verb='closes', precision=call.closes_precision)})"
    elif call.sportello:
        closes = t["sportello"]
    # A new alert tells the call; a change or a reminder is about a call the member knows.
    first = kind == "new"
    return AlertFacts(
        lang=lang,
        kind=kind,
        headline=t[headline_key],
        icon=_ICONS[headline_key],
        title=shorten(call.title, TITLE_LIMIT) or "—",
        changes=change_lines,
        publisher=publisher(call, payload, lang),
        status=status,
        applicants=applicants_line(call, payload, lang) if first else "",
        summary=summary_text(call, payload) if first else "",
        opens=opens,
        closes=closes,
        budget=budget_text(call, payload, lang),
        why=reasons_line(payload, lang) if first else "",
        url=safe_url(call.url),
        labels=t,
    )


# --- Telegram ---------------------------------------------------------------------------------

#: Fields cut, longest first, when a message is over the limit (all of them scraped or derived
#: from scraped text; the fixed labels are short).
_CUTTABLE = ("title", "summary", "why", "changes", "applicants", "publisher", "closes")


def _compose(f: AlertFacts, *, markup: bool, link: bool) -> str:
    """The message: ``markup`` for Telegram HTML; ``link`` writes the URL in the text (only for
    the console, which has no button: on Telegram the button is the one link)."""
    esc: Callable[[str], str] = html.escape if markup else (lambda s: s)

    def bold(s: str) -> str:
        return f"<b>{s}</b>" if markup else s

    t = f.labels
    blocks: list[list[str]] = [[f"{f.icon} {bold(esc(f.headline))}"]]
    if f.changes:
        blocks[0].append(esc(f.changes))
    about = [bold(esc(f.title))]
    who = f"{esc(t['publisher'])}: {esc(f.publisher)}" if f.publisher else ""
    if f.status:
        who += (" · " if who else "") + f"{esc(t['status'])}: {esc(f.status)}"
    if who:
        about.append(who)
    if f.applicants:
        about.append(f"{esc(t['applicants'])}: {esc(f.applicants)}")
    blocks.append(about)
    if f.summary:
        blocks.append([esc(f.summary)])
    dates = [esc(x) for x in (f.opens, f.closes) if x]
    if f.budget:
        dates.append(f"{esc(t['budget'])}: {esc(f.budget)}")
    if f.why:
        dates.append(f"{esc(t['why'])}: {esc(f.why)}")
    if dates:
        blocks.append(dates)
    if link and f.url:
        blocks.append([f"🔗 {esc(t['open'])}: {esc(f.url)}"])
    return "\n\n".join("\n".join(block) for block in blocks)


def _fit(f: AlertFacts, *, markup: bool, link: bool, limit: int) -> str:
    """Compose, cutting the longest untrusted field (at a word boundary, with "…") until the
    message fits ``limit``. ``f`` is not changed."""
    esc: Callable[[str], str] = html.escape if markup else (lambda s: s)
    for _ in range(len(_CUTTABLE) * 4):
        out = _compose(f, markup=markup, link=link)
        over = tg_len(out) - limit
        if over <= 0:
            return out
        name = max(_CUTTABLE, key=lambda n: tg_len(esc(getattr(f, n))))
        raw: str = getattr(f, name)
        if not raw or raw == "…":
            break
        # Cut the raw value (before escaping, so no entity or tag is ever split) to the longest
        # prefix whose escaped form is ``over`` units shorter, "…" included.
        target = tg_len(esc(raw)) - over - 1
        lo, hi = 0, len(raw)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if tg_len(esc(raw[:mid])) <= target:
                lo = mid
            else:
                hi = mid - 1
        # The changes keep their lines (only their end is cut); the rest end at a word boundary.
        cut = raw[:lo].rstrip() + "…" if name == "changes" else shorten(raw, lo + 1)
        shorter: dict[str, Any] = {name: cut if cut and cut != raw else "…"}
        f = replace(f, **shorter)
    if f.url and link and tg_len(_compose(f, markup=markup, link=link)) > limit:
        f = replace(f, url=None)
    out = _compose(f, markup=markup, link=link)
    if tg_len(out) > limit:  # only with absurd limits; never split markup
        out = _compose(f, markup=False, link=False)[: limit // 2]
    return out


def keyboard(alert: Alert, url: str | None) -> InlineKeyboardMarkup:
    """The feedback buttons (and "open the call" when the link is safe)."""
    t = _TEXT[alert.lang]
    group = alert.feedback_group
    rows = [
        [
            InlineKeyboardButton(t["interested"], callback_data=feedback_data("i", group)),
            InlineKeyboardButton(t["not_for_us"], callback_data=feedback_data("n", group)),
        ]
    ]
    if url:
        rows.append([InlineKeyboardButton(t["open"], url=url)])
    return InlineKeyboardMarkup(rows)


def feedback_data(kind: str, group_id: int) -> str:
    data = f"{FEEDBACK_PREFIX}:{kind}:{group_id}"
    assert len(data.encode()) <= InlineKeyboardButtonLimit.MAX_CALLBACK_DATA
    return data


def parse_feedback(data: str | None) -> tuple[str, int] | None:
    """``"fb:i:42"`` → ``("interested", 42)``; None for anything else (forged data included)."""
    if not data:
        return None
    match = re.fullmatch(r"fb:([in]):(\d{1,18})", data)
    if not match:
        return None
    return FEEDBACK_KINDS[match.group(1)], int(match.group(2))


def render_telegram(alert: Alert, *, limit: int = TELEGRAM_LIMIT) -> TelegramMessage:
    """The alert as Telegram HTML, its plain-text twin (the fallback) and the inline keyboard."""
    f = facts(alert)
    # The button is the one link: the text does not repeat it.
    html_text = _fit(f, markup=True, link=False, limit=limit)
    text = _fit(f, markup=False, link=False, limit=limit)
    return TelegramMessage(html=html_text, text=text, keyboard=keyboard(alert, f.url))


def render_text(alert: Alert, *, limit: int = TELEGRAM_LIMIT) -> str:
    """The alert as plain text for the console channel, which has no button: the link is written
    once at the end."""
    return _fit(facts(alert), markup=False, link=True, limit=limit)


# --- e-mail ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def email_environment() -> Environment:
    """Jinja2 over ``notifier/messages/templates``: ``*.html.j2`` autoescaped, ``*.txt.j2`` not."""
    return Environment(
        loader=PackageLoader("notifier.messages", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def clean_subject(text: str, *, limit: int = SUBJECT_LIMIT) -> str:
    """One line, no control characters (so no header injection), at most ``limit`` characters."""
    return shorten(text, limit)


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1] or "localhost"


def message_id(alert: Alert, config: EmailConfig) -> str:
    """Stable per outbox row, so a re-sent alert carries the same Message-ID (clients dedupe)."""
    return f"<alert-{alert.outbox_id}.sentinella@{_domain(config.from_address)}>"


def render_email(alert: Alert, config: EmailConfig) -> EmailMessage:
    """A multipart/alternative message (text + HTML) addressed to the member."""
    f = facts(alert)
    to = alert.recipient.email or ""
    if not to or CONTROL.search(to) or "\n" in to or "\r" in to:
        raise ValueError("the member has no usable e-mail address")
    env = email_environment()
    personal = recipient_links(config, alert.recipient.member_id, "alerts")
    context = {"f": f, "t": f.labels, "unsubscribe": _unsubscribe_text(config, personal)}
    return compose_email(
        config,
        subject=f"[{config.subject_prefix}] {f.headline}: {f.title}",
        to=to,
        name=alert.recipient.name,
        at=alert.now,
        lang=f.lang,
        text_part=env.get_template("alert.txt.j2").render(context),
        html_part=env.get_template("alert.html.j2").render(context),
        msgid=message_id(alert, config) if alert.outbox_id else None,
        unsubscribe=personal,
    )


def compose_email(
    config: EmailConfig,
    *,
    subject: str,
    to: str,
    name: str,
    at: datetime,
    lang: str,
    text_part: str,
    html_part: str,
    msgid: str | None = None,
    unsubscribe: Links | None = None,
) -> EmailMessage:
    """A multipart/alternative message (text + HTML) with the headers every e-mail of ours
    carries (alerts and the digest): sender, date, Message-ID (a fresh one unless given),
    Auto-Submitted, List-Unsubscribe and Content-Language. ``to`` must be checked already;
    ``unsubscribe`` are the recipient's own links (:func:`recipient_links`), when there are."""
    msg = EmailMessage()
    msg["Subject"] = clean_subject(subject)
    msg["From"] = formataddr((config.from_name, config.from_address))
    msg["To"] = formataddr((one_line(name)[:80], to))
    msg["Date"] = format_datetime(at)
    msg["Message-ID"] = msgid or make_msgid(domain=_domain(config.from_address))
    msg["Auto-Submitted"] = "auto-generated"
    set_unsubscribe_headers(msg, config, unsubscribe)
    msg.set_content(text_part)
    msg.add_alternative(html_part, subtype="html")
    # After the parts: set_content() clears every Content-* header set before it.
    msg["Content-Language"] = lang
    return msg


def recipient_links(config: EmailConfig, member_id: int, scope: Scope) -> Links | None:
    """The recipient's own unsubscribe links (:mod:`notifier.messages.unsubscribe`) when the web app
    serves them (``unsubscribe_base_url`` and ``unsubscribe_secret`` set); else None."""
    if not config.unsubscribe_base_url or config.unsubscribe_secret is None:
        return None
    secret = config.unsubscribe_secret.get_secret_value()
    mailto = config.list_unsubscribe_mailto or config.from_address
    return unsubscribe_links(config.unsubscribe_base_url, secret, member_id, scope, mailto)


def list_unsubscribe(config: EmailConfig, personal: Links | None = None) -> str:
    """The List-Unsubscribe value (RFC 2369): the recipient's own https and mailto: links when
    given; else the configured URL and/or ``mailto:``, else a ``mailto:`` to the sender with
    subject "unsubscribe", so every message says how to stop."""
    if personal is not None:
        return f"<{personal.url}>, <{personal.mailto}>"
    parts = []
    if config.list_unsubscribe_url:
        parts.append(f"<{config.list_unsubscribe_url}>")
    if config.list_unsubscribe_mailto:
        parts.append(f"<mailto:{config.list_unsubscribe_mailto}?subject=unsubscribe>")
    if not parts:
        parts.append(f"<mailto:{config.from_address}?subject=unsubscribe>")
    return ", ".join(parts)


def one_click_unsubscribe(config: EmailConfig, personal: Links | None = None) -> bool:
    """Whether one-click unsubscription (RFC 8058) is offered: it needs an https URL that
    unsubscribes on a POST; a ``mailto:`` or plain http link cannot."""
    url = personal.url if personal is not None else config.list_unsubscribe_url
    return bool(url) and urlsplit(url or "").scheme.lower() == "https"


def set_unsubscribe_headers(msg: EmailMessage, config: EmailConfig, personal: Links | None = None) -> None:
    """Put List-Unsubscribe (and List-Unsubscribe-Post when one click works) on an alert or a
    digest: the one place both kinds of e-mail get them from."""
    msg["List-Unsubscribe"] = list_unsubscribe(config, personal)
    if one_click_unsubscribe(config, personal):
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"


def _unsubscribe_text(config: EmailConfig, personal: Links | None = None) -> str:
    """The link of the footer: the recipient's page, else the configured URL, else the first
    ``mailto:``."""
    if personal is not None:
        return personal.url
    if config.list_unsubscribe_url:
        return config.list_unsubscribe_url
    return f"mailto:{config.list_unsubscribe_mailto or config.from_address}?subject=unsubscribe"
