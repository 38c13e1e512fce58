"""The member's profile in the bot: ``/profilo`` shows it, inline keyboards edit it.

Toggles (one tap switches a value on or off, the keyboard is redrawn with ✅ marks): topics,
beneficiary types, sources, channels, alert kinds. Free keywords, exclusions and the minimum
budget are typed as a message after pressing their button: the chat then waits for that message
for :data:`AWAIT_FOR` (``/annulla`` stops waiting).

Callback data (well under Telegram's 64 bytes): ``pf:m`` the summary and menu, ``pf:x`` done,
``pf:<section>`` a toggle page (``t`` topics, ``b`` beneficiaries, ``s`` sources, ``c`` channels,
``a`` alerts), ``pf:<section>:<value>`` a toggle, ``pf:k`` / ``pf:e`` / ``pf:u`` ask for keywords,
exclusions, budget. Values are checked against the vocabulary, so forged data changes nothing.

Every change is validated by :class:`notifier.matching.profiles.Profile` before it is stored; invalid
input gets a reply saying what is wrong, and the stored profile is left as it was.

Known limits: region, province and ATECO codes are shown but edited through the staff (CLI);
two edits of one profile from two devices at the same instant: the last one wins.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest

from notifier.bot.common import (
    Actor,
    BotDeps,
    Ctx,
    answer,
    answer_stale,
    deps,
    edit,
    log,
    member_only,
    reply,
    resolve,
)
from notifier.matching.profiles import (
    ALERT_KINDS,
    CHANNELS,
    MAX_BUDGET,
    MAX_TERMS,
    TERM_MAX,
    TERM_MIN,
    Profile,
    clean_term,
    describe_errors,
    parse_profile,
)
from notifier.matching.vocabulary import default_vocabulary
from notifier.messages.formats import fmt_money, one_line, source_label
from notifier.messages.i18n import esc, t
from storage import members
from storage.db import Database

AWAIT_KEY = "awaiting"
AWAIT_FOR = timedelta(minutes=15)
#: The longest message read as keywords or a budget.
MESSAGE_MAX = 1_500
#: Letters (any script), digits, spaces and the punctuation real phrases use; ``*`` is the
#: matching prefix mark ("ricicl*"). The profile model checks the same (its message is English).
TERM_RE = re.compile(r"[\w\s'’.&/+*()-]+")
CLEAR_WORDS = {"nessuna", "nessuno", "niente", "none", "nothing", "-"}
FIELD_OF = {"t": "topics", "b": "beneficiaries", "s": "sources", "c": "channels", "a": "alerts"}
TOGGLE_SECTIONS = tuple(FIELD_OF)
TEXT_FIELDS = {"k": "keywords", "e": "exclude", "u": "min_budget_eur"}
ASK_KEY = {
    "keywords": "profile.ask.keywords",
    "exclude": "profile.ask.exclude",
    "min_budget_eur": "profile.ask.budget",
}
ON = "✅ "
OFF = "▫️ "


class InputError(Exception):
    """Something the member typed cannot be used; ``key`` and ``values`` make the reply."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


def first_error(exc: ValidationError) -> str:
    """A short, readable reason from a pydantic error (for the member, no internals)."""
    lines = describe_errors(exc)
    return lines[0][:200] if lines else "?"


# --- choices and labels -------------------------------------------------------------------------------


def choices(section: str, lang: str, sources: Sequence[str]) -> list[tuple[str, str]]:
    """(value, label) pairs a toggle page offers."""
    vocab = default_vocabulary()
    if section == "t":
        return [(tid, topic.label(lang)) for tid, topic in vocab.topics.items()]
    if section == "b":
        return [(bid, ben.label(lang)) for bid, ben in vocab.beneficiaries.items()]
    if section == "s":
        return [(name, source_label(name, lang)) for name in sources]
    if section == "c":
        return [(c, t(lang, f"channel.{c}")) for c in CHANNELS]
    if section == "a":
        return [(a, t(lang, f"alert.{a}")) for a in ALERT_KINDS]
    raise KeyError(section)


def _labels(section: str, values: Sequence[str], lang: str, sources: Sequence[str]) -> str:
    known = dict(choices(section, lang, [*sources, *values] if section == "s" else sources))
    return ", ".join(known.get(v, v) for v in values)


def _budget_text(value: int | None, lang: str) -> str:
    # Money as members read it in their language: "€ 50.000", "€50,000".
    return fmt_money(Decimal(value), lang) if value else t(lang, "profile.any")


def summary(profile: Profile, lang: str, *, sources: Sequence[str], region: str, paused: bool = False) -> str:
    """The whole profile as HTML, every value escaped. ``region`` is the cluster's, the
    territory of a profile that names none."""
    none = t(lang, "profile.none")

    def line(key: str, value: str) -> str:
        return f"<b>{t(lang, key)}</b>: {esc(value) if value else none}"

    territory = ", ".join(
        p for p in (profile.member_region(region), profile.province or "", " ".join(profile.ateco)) if p
    )
    lines = [
        t(lang, "profile.title"),
        line("profile.topics", _labels("t", profile.topics, lang, sources)),
        line("profile.keywords", ", ".join(profile.keywords)),
        line("profile.exclude", ", ".join(profile.exclude)),
        line(
            "profile.beneficiaries",
            _labels("b", profile.beneficiaries, lang, sources) or t(lang, "profile.any"),
        ),
        line("profile.sources", _labels("s", profile.sources, lang, sources) or t(lang, "profile.all")),
        line("profile.min_budget", _budget_text(profile.min_budget_eur, lang)),
        line("profile.channels", _labels("c", profile.channels, lang, sources)),
        line("profile.alerts", _labels("a", profile.alerts, lang, sources)),
        line("profile.territory", territory),
    ]
    if not profile.channels:
        lines.append(t(lang, "profile.no_channel"))
    if paused:
        lines.append(t(lang, "profile.paused"))
    lines.append(t(lang, "profile.territory_note"))
    return "\n".join(lines)


def menu_keyboard(lang: str) -> InlineKeyboardMarkup:
    def b(key: str, data: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(t(lang, key), callback_data=data)

    return InlineKeyboardMarkup(
        [
            [b("profile.topics", "pf:t"), b("profile.beneficiaries", "pf:b")],
            [b("profile.sources", "pf:s"), b("profile.channels", "pf:c")],
            [b("profile.alerts", "pf:a"), b("profile.btn.budget", "pf:u")],
            [b("profile.btn.keywords", "pf:k"), b("profile.btn.exclude", "pf:e")],
            [b("profile.btn.done", "pf:x")],
        ]
    )


def toggle_keyboard(
    section: str, profile: Profile, lang: str, sources: Sequence[str]
) -> InlineKeyboardMarkup:
    selected = set(getattr(profile, FIELD_OF[section]))
    rows = [
        [
            InlineKeyboardButton(
                (ON if value in selected else OFF) + label, callback_data=f"pf:{section}:{value}"
            )
        ]
        for value, label in choices(section, lang, sources)
    ]
    rows.append([InlineKeyboardButton(t(lang, "profile.btn.back"), callback_data="pf:m")])
    return InlineKeyboardMarkup(rows)


# --- loading and saving ------------------------------------------------------------------------------------


def load_profile(db: Database, member_id: int) -> Profile:
    """The stored profile (defaults when none). Raises ValidationError when the stored one is bad."""
    return parse_profile(members.get_profile(db, member_id))


def save_profile(db: Database, member_id: int, profile: Profile, *, now: datetime) -> Profile:
    """Validate again (assignment is not validated) and store; return what was stored."""
    checked = Profile.model_validate(profile.to_data())
    members.set_profile(db, member_id, checked.to_data(), now=now)
    return checked


def toggle(profile: Profile, section: str, value: str) -> tuple[Profile, bool]:
    """The profile with ``value`` switched in the section's list; and whether it is now on."""
    field_name = FIELD_OF[section]
    current: list[str] = list(getattr(profile, field_name))
    on = value not in current
    if on:
        current.append(value)
    else:
        current.remove(value)
    return _with(profile, field_name, current), on


def apply_terms(current: Sequence[str], text: str) -> list[str]:
    """Add (``a, b``) or remove (``-a``) comma-separated phrases; a clear word empties the list.

    Raises :class:`InputError` for anything that cannot be stored.
    """
    if len(text) > MESSAGE_MAX:
        raise InputError("profile.err.message", max=MESSAGE_MAX)
    if text.strip().casefold() in CLEAR_WORDS:
        return []
    result = list(current)
    for raw in re.split(r"[,;\n]", text):
        item = one_line(raw)
        if not item:
            continue
        remove = item.startswith("-")
        term = item[1:].strip() if remove else item
        if not TERM_MIN <= len(term) <= TERM_MAX:
            raise InputError("profile.err.length", item=term[:TERM_MAX] or item, min=TERM_MIN, max=TERM_MAX)
        if not TERM_RE.fullmatch(term):
            raise InputError("profile.err.chars", item=term)
        try:
            term = clean_term(term)
        except ValueError as exc:
            raise InputError("profile.err.chars", item=term) from exc
        folded = [r.casefold() for r in result]
        if remove:
            if term.casefold() in folded:
                del result[folded.index(term.casefold())]
        elif term.casefold() not in folded:
            result.append(term)
    if len(result) > MAX_TERMS:
        raise InputError("profile.err.too_many", max=MAX_TERMS, count=len(result))
    return result


def parse_budget(text: str) -> int | None:
    """``"50.000"``, ``"€ 50 000"``, ``"50000 euro"`` → 50000; ``"0"`` → None (no minimum)."""
    cleaned = text.strip().casefold()
    if cleaned in CLEAR_WORDS:
        return None
    cleaned = re.sub(r"(€|eur(o)?)", "", cleaned)
    cleaned = re.sub(r"[\s.'’_]", "", cleaned)
    if not re.fullmatch(r"\d{1,13}", cleaned):
        raise InputError("profile.err.budget", value=text.strip()[:40])
    value = int(cleaned)
    if value > MAX_BUDGET:
        raise InputError("profile.err.budget", value=text.strip()[:40])
    return value or None


def _with(profile: Profile, field_name: str, value: Any) -> Profile:
    data = profile.to_data()
    data[field_name] = value
    return Profile.model_validate(data)


# --- handlers ----------------------------------------------------------------------------------------


def _summary_of(d: BotDeps, actor: Actor, profile: Profile) -> str:
    """:func:`summary` of the actor's profile with the daemon's sources and region."""
    assert actor.member is not None
    return summary(
        profile,
        actor.lang,
        sources=d.services.sources,
        region=d.services.matching.region,
        paused=actor.member.paused,
    )


async def _profile_or_explain(update: Update, context: Ctx, actor: Actor) -> Profile | None:
    d = deps(context)
    assert actor.member is not None
    try:
        return await d.run(load_profile, d.db, actor.member.id)
    except ValidationError as exc:
        log.warning("member %s has a stored profile that does not validate", actor.member.id)
        await answer(update)
        await reply(update, t(actor.lang, "bandi.bad_profile", detail=first_error(exc)))
        return None


async def open_section(
    update: Update, context: Ctx, actor: Actor, section: str, *, new_message: bool = False
) -> None:
    """Show the summary and menu (``m``) or a toggle page, editing the button's message."""
    d = deps(context)
    profile = await _profile_or_explain(update, context, actor)
    if profile is None:
        return
    if section == "m":
        text = _summary_of(d, actor, profile) + "\n\n" + t(actor.lang, "profile.menu_hint")
        keyboard = menu_keyboard(actor.lang)
    else:
        text = t(actor.lang, f"profile.pick.{section}")
        keyboard = toggle_keyboard(section, profile, actor.lang, d.services.sources)
    if new_message:
        await reply(update, text, keyboard=keyboard)
    else:
        await edit(update, text, keyboard=keyboard)


@member_only
async def profilo(update: Update, context: Ctx, actor: Actor) -> None:
    """/profilo — the profile and the menu to edit it."""
    _stop_waiting(context)
    await open_section(update, context, actor, "m", new_message=True)


@member_only
async def on_button(update: Update, context: Ctx, actor: Actor) -> None:
    """Every ``pf:`` button."""
    d = deps(context)
    query = update.callback_query
    assert query is not None and actor.member is not None
    parts = (query.data or "").split(":")
    if len(parts) == 2 and parts[1] in ("m", *TOGGLE_SECTIONS):
        await answer(update)
        await open_section(update, context, actor, parts[1])
        return
    if len(parts) == 2 and parts[1] == "x":
        await answer(update)
        profile = await _profile_or_explain(update, context, actor)
        if profile is not None:
            await edit(update, _summary_of(d, actor, profile))
        return
    if len(parts) == 2 and parts[1] in TEXT_FIELDS:
        await answer(update)
        await _ask_text(update, context, actor, TEXT_FIELDS[parts[1]])
        return
    if len(parts) == 3 and parts[1] in TOGGLE_SECTIONS:
        await _toggle(update, context, actor, parts[1], parts[2])
        return
    await answer_stale(update, actor.lang)


async def _toggle(update: Update, context: Ctx, actor: Actor, section: str, value: str) -> None:
    d = deps(context)
    assert actor.member is not None
    sources = d.services.sources
    labels = dict(choices(section, actor.lang, sources))
    if value not in labels:
        await answer(update, t(actor.lang, "profile.err.unknown", value=value[:40]), alert=True)
        return
    profile = await _profile_or_explain(update, context, actor)
    if profile is None:
        return
    if section == "c" and value == "email" and "email" not in profile.channels and not actor.member.email:
        # Switching it off is always allowed; on, only with an address to send to.
        await answer(update, t(actor.lang, "profile.err.no_email"), alert=True)
        return
    try:
        changed, on = toggle(profile, section, value)
        await d.run(save_profile, d.db, actor.member.id, changed, now=d.now())
    except ValidationError as exc:
        await answer(update, t(actor.lang, "profile.err.invalid", detail=first_error(exc)), alert=True)
        return
    await answer(
        update, t(actor.lang, "profile.toggled_on" if on else "profile.toggled_off", label=labels[value])
    )
    query = update.callback_query
    if query is not None and isinstance(query.message, Message):
        try:
            await query.edit_message_reply_markup(
                reply_markup=toggle_keyboard(section, changed, actor.lang, sources)
            )
        except BadRequest as exc:
            log.info("could not redraw the profile keyboard: %s", exc.message)


async def _ask_text(update: Update, context: Ctx, actor: Actor, field_name: str) -> None:
    d = deps(context)
    profile = await _profile_or_explain(update, context, actor)
    if profile is None:
        return
    current: Any = getattr(profile, field_name)
    if field_name == "min_budget_eur":
        shown = _budget_text(current, actor.lang)
    else:
        shown = ", ".join(current) or t(actor.lang, "profile.none")
    if context.chat_data is not None:
        context.chat_data[AWAIT_KEY] = (field_name, d.now() + AWAIT_FOR)
    await reply(update, t(actor.lang, ASK_KEY[field_name], current=shown))


def _stop_waiting(context: Ctx) -> str | None:
    if context.chat_data is None:
        return None
    waiting = context.chat_data.pop(AWAIT_KEY, None)
    return waiting[0] if waiting else None


def _waiting_for(context: Ctx, now: datetime) -> str | None:
    if context.chat_data is None:
        return None
    waiting = context.chat_data.get(AWAIT_KEY)
    if not waiting:
        return None
    field_name, until = waiting
    if now > until:
        context.chat_data.pop(AWAIT_KEY, None)
        return None
    return str(field_name)


async def on_text(update: Update, context: Ctx) -> None:
    """A plain message: the keywords, exclusions or budget the chat was asked for, else a hint."""
    from notifier.bot.member import unknown_message

    d = deps(context)
    field_name = _waiting_for(context, d.now())
    if field_name is None:
        await unknown_message(update, context)
        return
    actor = await resolve(update, context)
    if actor is None:
        return
    if not actor.is_member or actor.member is None:
        _stop_waiting(context)
        await unknown_message(update, context)
        return
    message = update.effective_message
    text = message.text if message is not None and message.text else ""
    profile = await _profile_or_explain(update, context, actor)
    if profile is None:
        return
    try:
        if field_name == "min_budget_eur":
            changed = _with(profile, field_name, parse_budget(text))
        else:
            changed = _with(profile, field_name, apply_terms(getattr(profile, field_name), text))
        saved = await d.run(save_profile, d.db, actor.member.id, changed, now=d.now())
    except InputError as exc:
        # The chat keeps waiting: the member can send a corrected message or /annulla.
        await reply(update, t(actor.lang, exc.key, **exc.values))
        return
    except ValidationError as exc:
        await reply(update, t(actor.lang, "profile.err.invalid", detail=first_error(exc)))
        return
    _stop_waiting(context)
    text = t(actor.lang, "profile.saved") + "\n\n" + _summary_of(d, actor, saved)
    await reply(update, text, keyboard=menu_keyboard(actor.lang))


@member_only
async def annulla(update: Update, context: Ctx, actor: Actor) -> None:
    """/annulla — stop waiting for a typed value."""
    was = _stop_waiting(context)
    await reply(update, t(actor.lang, "profile.cancelled" if was else "profile.nothing_pending"))
