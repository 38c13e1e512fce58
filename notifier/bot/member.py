"""The member's side of the bot: onboarding by invitation and the everyday commands.

* ``/start <code>`` — the deep link ``t.me/<bot>?start=<code>`` an admin hands out binds this chat
  to a member; a used, expired or unknown (forged, mistyped) code each get their own answer, and
  a chat that keeps sending bad codes is told to wait (:data:`MAX_BAD_CODES` an hour), and so
  is everyone when bad codes come from many chats (:data:`MAX_BAD_CODES_OVERALL` an hour); the
  failures are counted in the database, so a restart or a new chat does not reset the brake.
  Invitations are redeemed in private chats only: in a group, anyone there would become the
  member.
* ``/bandi`` — the open calls that match the member's profile, by deadline, paged with buttons;
  ``/cerca TESTO`` — the open calls containing a text; ``/scadenze`` — the calls the member
  marked "Mi interessa" with their upcoming deadlines (what reminders are about).
* ``/pausa``, ``/riprendi``, ``/lingua``, ``/aiuto``, ``/cancellami`` (after a confirmation).
* The buttons under alerts: ``fb:i:<group>`` ("Mi interessa") and ``fb:n:<group>`` ("Non per
  noi") record the member's feedback, answer the button and mark the choice on the keyboard.

A chat not bound to a member gets the same explanation whatever it sends: how to get an
invitation. Known limits: ``/bandi`` matches the member's profile against every open call at each
page turn (a few thousand calls: well under a second); ``/cerca`` shows the first
:data:`SEARCH_SHOWN` results and says how many more there are.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest

from notifier.bot import profile as profile_ui
from notifier.bot.common import (
    Actor,
    Ctx,
    answer,
    answer_stale,
    deps,
    edit,
    log,
    member_only,
    refuse_group,
    reply,
    resolve,
    web_links,
)
from notifier.config import MatchingConfig, parse_offset
from notifier.delivery.dispatch import telegram_back
from notifier.matching.engine import Match, Matcher, reasons_line
from notifier.matching.profiles import Profile
from notifier.messages.alerts import feedback_data, parse_feedback
from notifier.messages.formats import countdown, fmt_day, one_line, safe_url, source_label
from notifier.messages.i18n import esc, normalise_language, t
from storage import members
from storage.audit import DELETED_ACTOR
from storage.calls import CallView, canonical_call, group_calls, list_calls, search_calls
from storage.db import Database
from storage.feedback import list_feedback, set_feedback
from storage.invitations import (
    InvitationError,
    clear_invitation_failures,
    invitation_brake,
    record_invitation_failure,
    redeem_invitation,
)
from storage.records import Deadline, Precision, effective_deadline

#: Invitation codes are URL-safe tokens; Telegram allows 1-64 such characters in a start parameter.
CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: Failed codes a chat may send in :data:`BAD_CODE_WINDOW` before it is told to wait.
MAX_BAD_CODES = 5
#: Failed codes from all chats together in :data:`BAD_CODE_WINDOW` before everyone waits.
MAX_BAD_CODES_OVERALL = 50
BAD_CODE_WINDOW = timedelta(hours=1)
PAGE_SIZE = 5
SEARCH_MIN, SEARCH_MAX = 3, 100
SEARCH_SHOWN = 10
#: Titles longer than this are cut in listings (the alert itself shows more).
TITLE_CAP = 220
#: Names taken from Telegram are capped before they are stored.
NAME_CAP = 120
CHECK = "✅ "


# --- listing calls -------------------------------------------------------------------------------


def _closing(call: CallView) -> tuple[datetime | None, Precision | None]:
    if call.closes is not None:
        return call.closes, call.closes_precision
    if call.deadlines:
        last = call.deadlines[-1]
        return last.at, last.precision
    return None, None


def deadline_line(call: CallView, now: datetime, lang: str) -> str:
    """One line about when a call closes (or opens, for a call not open yet), escaped."""
    if call.opens is not None and call.opens > now:
        return t(
            lang,
            "call.opens",
            date=fmt_day(call.opens, lang, call.opens_precision),
            countdown=countdown(call.opens, now, lang, verb="opens", precision=call.opens_precision),
        )
    at, precision = _closing(call)
    end = call.final_deadline
    if at is not None and end is not None:
        return t(
            lang,
            "call.closes",
            date=fmt_day(at, lang, precision),
            countdown=countdown(end, now, lang, verb="closes", precision=precision),
        )
    return t(lang, "call.sportello" if call.sportello else "call.no_deadline")


def _link_line(call: CallView, lang: str) -> list[str]:
    """The "open the call" link, or nothing when the call's URL is not a safe http(s) link."""
    url = safe_url(call.url)
    return [f'<a href="{esc(url)}">{t(lang, "call.link")}</a>'] if url else []


def call_item(n: int, call: CallView, now: datetime, lang: str, *, match: Match | None = None) -> str:
    """A numbered entry of a listing: title, source and deadline, why it matched, link.
    Every scraped value is escaped."""
    title = one_line(call.title)
    if len(title) > TITLE_CAP:
        title = title[: TITLE_CAP - 1].rstrip() + "…"
    source = source_label(call.source, lang)
    lines = [f"<b>{n}. {esc(title)}</b>", f"{esc(source)} · {deadline_line(call, now, lang)}"]
    if match is not None and match.reasons:
        lines.append(t(lang, "call.why", reasons=reasons_line(match.reasons, lang)))
    return "\n".join(lines + _link_line(call, lang))


def _group_key(call: CallView) -> int:
    """One key per duplicate group (the same call from two portals); a call in no group is its own."""
    return call.group_id if call.group_id is not None else -call.id


def _by_deadline(call: CallView) -> tuple[bool, datetime | None, int]:
    end = call.final_deadline
    return (end is None, end, call.id)


def matching_calls(
    db: Database, member_id: int, profile: Profile, *, now: datetime, config: MatchingConfig
) -> list[tuple[CallView, Match]]:
    """Open calls matching one member's profile, one per duplicate group, soonest deadline first,
    each with its match (the reasons). Groups the member answered "Non per noi" are left out."""
    calls = list_calls(db, open_only=True, now=now)
    silenced = {f.group_id for f in list_feedback(db, member_id=member_id, kind="not_for_us")}
    matcher = Matcher([(member_id, profile)], config=config)
    seen: set[int] = set()
    out: list[tuple[CallView, Match]] = []
    for call in calls:
        key = _group_key(call)
        if key in seen or key in silenced:
            continue
        found = matcher.match(call, now=now)
        if found:
            seen.add(key)
            out.append((call, found[0]))
    out.sort(key=lambda pair: _by_deadline(pair[0]))
    return out


def _interested_groups(db: Database, member_id: int) -> set[int]:
    return {f.group_id for f in list_feedback(db, member_id=member_id, kind="interested")}


def _star_row(calls: Sequence[CallView], first: int, marked: set[int]) -> list[InlineKeyboardButton]:
    row = []
    for i, call in enumerate(calls, start=first):
        if call.group_id is None:
            continue
        label = t("it", "star", n=i)
        if call.group_id in marked:
            label = CHECK + label
        row.append(InlineKeyboardButton(label, callback_data=feedback_data("i", call.group_id)))
    return row


@dataclass(frozen=True)
class _Page:
    text: str
    keyboard: InlineKeyboardMarkup | None


def _bandi_page(
    db: Database,
    member_id: int,
    profile: Profile,
    page: int,
    *,
    now: datetime,
    lang: str,
    config: MatchingConfig,
) -> _Page:
    calls = matching_calls(db, member_id, profile, now=now, config=config)
    if not calls:
        return _Page(t(lang, "bandi.none"), None)
    pages = (len(calls) + PAGE_SIZE - 1) // PAGE_SIZE
    page = min(max(page, 0), pages - 1)
    first = page * PAGE_SIZE
    shown = calls[first : first + PAGE_SIZE]
    items = [call_item(first + i + 1, call, now, lang, match=m) for i, (call, m) in enumerate(shown)]
    text = "\n\n".join(
        [
            t(lang, "bandi.header", total=len(calls), page=page + 1, pages=pages),
            *items,
            t(lang, "bandi.mark_hint"),
        ]
    )
    rows = []
    stars = _star_row([call for call, _ in shown], first + 1, _interested_groups(db, member_id))
    if stars:
        rows.append(stars)
    nav = []
    if page > 0:
        nav.append(InlineKeyboardButton(t(lang, "nav.prev"), callback_data=f"bandi:{page - 1}"))
    if page < pages - 1:
        nav.append(InlineKeyboardButton(t(lang, "nav.next"), callback_data=f"bandi:{page + 1}"))
    if nav:
        rows.append(nav)
    return _Page(text, InlineKeyboardMarkup(rows) if rows else None)


async def _listing(update: Update, context: Ctx, actor: Actor, page: int) -> _Page | None:
    d = deps(context)
    assert actor.member is not None
    data = await d.run(members.get_profile, d.db, actor.member.id)
    try:
        profile = Profile.model_validate(data or {})
    except ValidationError as exc:
        await reply(update, t(actor.lang, "bandi.bad_profile", detail=profile_ui.first_error(exc)))
        return None
    if not profile.topics and not profile.keywords:
        await reply(update, t(actor.lang, "bandi.no_profile"))
        return None
    return await d.run(
        _bandi_page,
        d.db,
        actor.member.id,
        profile,
        page,
        now=d.now(),
        lang=actor.lang,
        config=d.services.matching,
    )


@member_only
async def bandi(update: Update, context: Ctx, actor: Actor) -> None:
    """/bandi — the open calls matching my profile, first page."""
    result = await _listing(update, context, actor, 0)
    if result is not None:
        await reply(update, result.text, keyboard=result.keyboard)


@member_only
async def on_bandi_page(update: Update, context: Ctx, actor: Actor) -> None:
    """The ◀/▶ buttons of /bandi (``bandi:<page>``)."""
    query = update.callback_query
    assert query is not None
    match = re.fullmatch(r"bandi:(\d{1,4})", query.data or "")
    if not match:
        await answer_stale(update, actor.lang)
        return
    await answer(update)
    result = await _listing(update, context, actor, int(match.group(1)))
    if result is not None:
        await edit(update, result.text, keyboard=result.keyboard)


@member_only
async def cerca(update: Update, context: Ctx, actor: Actor) -> None:
    """/cerca TESTO — open calls containing the text."""
    d = deps(context)
    text = " ".join(context.args or []).strip()
    if not text:
        await reply(update, t(actor.lang, "cerca.usage"))
        return
    if len(text) < SEARCH_MIN:
        await reply(update, t(actor.lang, "cerca.too_short", min=SEARCH_MIN))
        return
    if len(text) > SEARCH_MAX:
        await reply(update, t(actor.lang, "cerca.too_long", max=SEARCH_MAX))
        return
    now = d.now()
    found = await d.run(search_calls, d.db, text, open_only=True, now=now, limit=500)
    # One entry per duplicate group: the same call from two portals is one result.
    seen: set[int] = set()
    calls = []
    for call in found:
        key = _group_key(call)
        if key not in seen:
            seen.add(key)
            calls.append(call)
    if not calls:
        await reply(update, t(actor.lang, "cerca.none", query=text))
        return
    shown = calls[:SEARCH_SHOWN]
    assert actor.member is not None
    marked = await d.run(_interested_groups, d.db, actor.member.id)
    parts = [t(actor.lang, "cerca.header", query=text, total=len(calls))]
    parts += [call_item(i + 1, call, now, actor.lang) for i, call in enumerate(shown)]
    if len(calls) > len(shown):
        parts.append(t(actor.lang, "cerca.more", more=len(calls) - len(shown)))
    parts.append(t(actor.lang, "bandi.mark_hint"))
    stars = _star_row(shown[:8], 1, marked)
    await reply(update, "\n\n".join(parts), keyboard=InlineKeyboardMarkup([stars]) if stars else None)


def _offsets_text(specs: Sequence[str], lang: str) -> str:
    """``["7d", "1d"]`` → "7 giorni e 1 giorno" / "7 days and 1 day"."""
    parts = []
    for spec in specs:
        n, unit = parse_offset(spec)
        parts.append(t(lang, f"offset.{unit}{'1' if n == 1 else 'n'}", n=n))
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + t(lang, "list.and") + parts[-1]


def _upcoming(call: CallView, now: datetime, lang: str) -> list[str]:
    """Upcoming opening and stage deadlines of a call, one escaped line each."""
    lines = []
    if call.opens is not None and call.opens > now:
        lines.append(deadline_line(call, now, lang))
        return lines
    stages = list(call.deadlines)
    if call.closes is not None and all(d.at != call.closes for d in stages):
        stages.append(Deadline(call.closes, call.closes_precision or Precision.DATE))
    for stage in sorted(stages, key=lambda d: d.at):
        end = effective_deadline(stage.at, stage.precision)
        if end is None or end < now:
            continue
        label = one_line(stage.label)[:80] or t(lang, "profile.none")
        date = fmt_day(stage.at, lang, stage.precision)
        when = countdown(end, now, lang, verb="closes", precision=stage.precision)
        if len(stages) == 1 or not stage.label:
            lines.append(t(lang, "call.closes", date=date, countdown=when))
        else:
            lines.append(t(lang, "scadenze.stage", label=label, date=date, countdown=when))
    if not lines:
        lines.append(
            t(lang, "call.sportello") if call.sportello and call.is_open(now) else t(lang, "scadenze.passed")
        )
    return lines


def _reminder_calls(db: Database, member_id: int) -> list[CallView]:
    calls = []
    for group in sorted(_interested_groups(db, member_id)):
        try:
            calls.append(canonical_call(db, group))
        except LookupError:
            continue
    return calls


@member_only
async def scadenze(update: Update, context: Ctx, actor: Actor) -> None:
    """/scadenze — the calls I marked interesting and their upcoming deadlines."""
    d = deps(context)
    member = actor.member
    assert member is not None
    now = d.now()
    calls = await d.run(_reminder_calls, d.db, member.id)
    if not calls:
        await reply(update, t(actor.lang, "scadenze.none"))
        return
    calls.sort(key=lambda c: (not c.is_open(now), *_by_deadline(c)))
    parts = [t(actor.lang, "scadenze.header", total=len(calls))]
    for i, call in enumerate(calls, start=1):
        title = one_line(call.title)[:TITLE_CAP]
        lines = [
            f"<b>{i}. {esc(title)}</b>",
            *_upcoming(call, now, actor.lang),
            *_link_line(call, actor.lang),
        ]
        parts.append("\n".join(lines))
    data = await d.run(members.get_profile, d.db, member.id)
    alerts = (data or {}).get("alerts")
    reminders = d.services.reminders
    if (isinstance(alerts, list) and "reminders" not in alerts) or not reminders.enabled:
        parts.append(t(actor.lang, "scadenze.off"))
    else:
        offsets = _offsets_text(reminders.before_closing, actor.lang)
        if offsets:
            parts.append(t(actor.lang, "scadenze.when", offsets=offsets))
    if member.paused:
        parts.append(t(actor.lang, "scadenze.paused"))
    await reply(update, "\n\n".join(parts))


# --- feedback buttons ------------------------------------------------------------------------------


def marked_keyboard(
    markup: InlineKeyboardMarkup | None, group_id: int, chosen: str
) -> InlineKeyboardMarkup | None:
    """The same keyboard with the chosen feedback button of this group ticked and its sibling
    unticked (other buttons, URL buttons included, are kept as they are)."""
    if markup is None:
        return None
    rows = []
    for row in markup.inline_keyboard:
        new_row = []
        for button in row:
            data = button.callback_data if isinstance(button.callback_data, str) else None
            parsed = parse_feedback(data)
            if parsed is None or parsed[1] != group_id:
                new_row.append(button)
                continue
            label = button.text.removeprefix(CHECK)
            if parsed[0] == chosen:
                label = CHECK + label
            new_row.append(InlineKeyboardButton(label, callback_data=data))
        rows.append(new_row)
    return InlineKeyboardMarkup(rows)


@member_only
async def on_feedback(update: Update, context: Ctx, actor: Actor) -> None:
    """ "Mi interessa" (``fb:i:<group>``) and "Non per noi" (``fb:n:<group>``) under an alert."""
    d = deps(context)
    query = update.callback_query
    assert query is not None and actor.member is not None
    parsed = parse_feedback(query.data)
    if parsed is None:
        await answer_stale(update, actor.lang)
        return
    kind, group_id = parsed
    exists = await d.run(group_calls, d.db, group_id)
    if not exists:
        await answer(update, t(actor.lang, "fb.gone"), alert=True)
        return
    await d.run(set_feedback, d.db, actor.member.id, group_id, kind, now=d.now())
    await answer(update, t(actor.lang, "fb.interested" if kind == "interested" else "fb.not_for_us"))
    message = query.message
    if isinstance(message, Message):
        keyboard = marked_keyboard(message.reply_markup, group_id, kind)
        if keyboard is not None and keyboard != message.reply_markup:
            try:
                await query.edit_message_reply_markup(reply_markup=keyboard)
            except BadRequest as exc:
                # "message is not modified" (a double tap) or a message too old to edit: the
                # feedback is saved and the member was answered; only the tick is missing.
                log.info("could not mark the feedback keyboard: %s", exc.message)


# --- pause, language, help, delete -------------------------------------------------------------------


@member_only
async def pausa(update: Update, context: Ctx, actor: Actor) -> None:
    await _set_paused(update, context, actor, True)


@member_only
async def riprendi(update: Update, context: Ctx, actor: Actor) -> None:
    await _set_paused(update, context, actor, False)


async def _set_paused(update: Update, context: Ctx, actor: Actor, paused: bool) -> None:
    d = deps(context)
    assert actor.member is not None
    if actor.member.paused == paused:
        await reply(update, t(actor.lang, "pausa.already" if paused else "riprendi.already"))
        return
    await d.run(members.update_member, d.db, actor.member.id, now=d.now(), paused=paused)
    await reply(update, t(actor.lang, "pausa.done" if paused else "riprendi.done"))


def _language_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(t("it", "lang.it"), callback_data="lang:it"),
                InlineKeyboardButton(t("en", "lang.en"), callback_data="lang:en"),
            ]
        ]
    )


@member_only
async def lingua(update: Update, context: Ctx, actor: Actor) -> None:
    """/lingua [it|en] — without an argument, buttons to choose."""
    args = context.args or []
    if not args:
        await reply(update, t(actor.lang, "lingua.choose"), keyboard=_language_keyboard())
        return
    wanted = args[0].strip().lower()
    if len(args) > 1 or wanted not in ("it", "en", "italiano", "english", "inglese"):
        await reply(update, t(actor.lang, "lingua.unknown", value=" ".join(args)[:40]))
        return
    await _set_language(update, context, actor, "en" if wanted in ("en", "english", "inglese") else "it")


@member_only
async def on_language(update: Update, context: Ctx, actor: Actor) -> None:
    query = update.callback_query
    assert query is not None
    wanted = (query.data or "").removeprefix("lang:")
    if wanted not in ("it", "en"):
        await answer_stale(update, actor.lang)
        return
    await answer(update)
    await _set_language(update, context, actor, wanted, edit_message=True)


async def _set_language(
    update: Update, context: Ctx, actor: Actor, lang: str, *, edit_message: bool = False
) -> None:
    d = deps(context)
    assert actor.member is not None
    await d.run(_store_language, d.db, actor.member.id, lang, d.now())
    text = t(lang, "lingua.done")
    if edit_message:
        await edit(update, text)
    else:
        await reply(update, text)


def _store_language(db: Database, member_id: int, lang: str, now: datetime) -> None:
    members.update_member(db, member_id, now=now, language=lang)
    data = members.get_profile(db, member_id)
    if data is not None and data.get("language") not in (None, lang):
        members.set_profile(db, member_id, {**data, "language": lang}, now=now)


async def aiuto(update: Update, context: Ctx) -> None:
    """/aiuto (and /help) — the commands this chat may use."""
    actor = await resolve(update, context)
    if actor is None:
        return
    if not actor.private:
        await refuse_group(update, context, actor)
        return
    if not actor.is_member and not actor.is_admin:
        await reply(update, t(actor.lang, "start.need_code"))
        return
    text = t(actor.lang, "help.member")
    if actor.is_staff:
        text += t(actor.lang, "help.staff")
    if actor.is_admin:
        text += t(actor.lang, "help.admin")
    await reply(update, text)


@member_only
async def cancellami(update: Update, context: Ctx, actor: Actor) -> None:
    """/cancellami — asks for a confirmation; the buttons do the rest."""
    keyboard = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(t(actor.lang, "cancel.yes"), callback_data="del:yes")],
            [InlineKeyboardButton(t(actor.lang, "cancel.no"), callback_data="del:no")],
        ]
    )
    await reply(update, t(actor.lang, "cancel.confirm"), keyboard=keyboard)


@member_only
async def on_delete(update: Update, context: Ctx, actor: Actor) -> None:
    d = deps(context)
    query = update.callback_query
    assert query is not None and actor.member is not None
    if query.data == "del:no":
        await answer(update)
        await edit(update, t(actor.lang, "cancel.kept"))
        return
    if query.data != "del:yes":
        await answer_stale(update, actor.lang)
        return
    member_id = actor.member.id
    await d.run(members.delete_member, d.db, member_id)
    # The audit keeps that it happened, not who it was.
    await d.audit(DELETED_ACTOR, "member.delete_self", {})
    if context.chat_data is not None:
        context.chat_data.clear()
    await answer(update)
    await edit(update, t(actor.lang, "cancel.done"))


# --- onboarding -------------------------------------------------------------------------------------


async def start(update: Update, context: Ctx) -> None:
    """/start [code] — the deep link of an invitation, or a first hello (private chats only)."""
    actor = await resolve(update, context)
    if actor is None:
        return
    if not actor.private:
        await refuse_group(update, context, actor)
        return
    d = deps(context)
    args = context.args or []
    if actor.is_member and actor.member is not None:
        if not actor.member.telegram_ok:
            # They had blocked the bot (Telegram answered 403) and wrote again: they unblocked it.
            await d.run(telegram_back, d.db, actor.member.id, actor.member.name, now=d.now())
            await d.audit(actor, "member.telegram_back", {})
            await reply(update, t(actor.lang, "start.back", name=actor.member.name))
            return
        await reply(update, t(actor.lang, "start.already", name=actor.member.name))
        return
    if not args:
        # A suspended member may come back with a new invitation, which reactivates them.
        await reply(update, t(actor.lang, "inactive" if actor.member is not None else "start.need_code"))
        return
    now = d.now()
    brake = await d.run(
        invitation_brake,
        d.db,
        actor.chat_id,
        now=now,
        window=BAD_CODE_WINDOW,
        per_chat=MAX_BAD_CODES,
        overall=MAX_BAD_CODES_OVERALL,
    )
    if brake is not None:
        await reply(update, t(actor.lang, "start.too_many" if brake == "chat" else "start.busy"))
        return
    code = args[0]
    kind = "unknown"
    member = None
    if len(args) == 1 and CODE_RE.fullmatch(code):
        user = update.effective_user
        name = one_line(user.full_name if user else "")[:NAME_CAP] or f"Telegram {actor.chat_id}"
        try:
            member = await d.run(
                redeem_invitation,
                d.db,
                code,
                chat_id=actor.chat_id,
                now=now,
                name=name,
                language=actor.lang,
            )
        except InvitationError as exc:
            kind = exc.kind
    if member is None:
        await d.run(record_invitation_failure, d.db, actor.chat_id, now=now, keep=BAD_CODE_WINDOW)
        log.info("an invitation code was refused: %s", kind)
        key = {
            "used": "start.code_used",
            "expired": "start.code_expired",
            "conflict": "start.code_conflict",
        }.get(kind, "start.code_unknown")
        await reply(update, t(actor.lang, key))
        return
    await d.run(clear_invitation_failures, d.db, actor.chat_id)
    lang = normalise_language(member.language)
    log.info("member %s joined by invitation", member.id)
    log.debug("member %s is bound to chat %s", member.id, actor.chat_id)
    await reply(update, t(lang, "start.welcome", name=member.name))
    bound = Actor(
        actor.chat_id,
        member,
        lang,
        actor.is_admin or member.role == "admin",
        member.role in ("staff", "admin"),
    )
    await profile_ui.open_section(update, context, bound, "t", new_message=True)


# --- anything else ------------------------------------------------------------------------------------


async def _not_understood(update: Update, context: Ctx, key: str) -> None:
    """Reply ``key`` to a chat that may use the bot; anyone else learns how to get in."""
    actor = await resolve(update, context)
    if actor is None:
        return
    if not actor.private:
        # Commands get the refusal; ordinary group talk is none of the bot's business.
        if key == "unknown_command":
            await refuse_group(update, context, actor)
        return
    allowed = actor.is_member or actor.is_admin
    await reply(update, t(actor.lang, key if allowed else "unknown_chat"))


async def unknown_command(update: Update, context: Ctx) -> None:
    await _not_understood(update, context, "unknown_command")


async def unknown_message(update: Update, context: Ctx) -> None:
    await _not_understood(update, context, "unknown_text")


async def stale_button(update: Update, context: Ctx) -> None:
    """A button whose data nothing understands (an old keyboard, or forged data)."""
    actor = await resolve(update, context)
    await answer_stale(update, actor.lang if actor else "it")


__all__ = [
    "aiuto",
    "bandi",
    "call_item",
    "cancellami",
    "cerca",
    "lingua",
    "marked_keyboard",
    "matching_calls",
    "on_bandi_page",
    "on_delete",
    "on_feedback",
    "on_language",
    "pausa",
    "riprendi",
    "scadenze",
    "start",
]


@member_only
async def calendario(update: Update, context: Ctx, actor: Actor) -> None:
    """/calendario [nuovo] — the member's calendar feed link (``nuovo`` replaces it)."""
    d = deps(context)
    links = await web_links(update, context, actor)
    if links is None:
        return
    assert actor.member is not None  # member_only
    args = [a.strip().lower() for a in (context.args or []) if a.strip()]
    if len(args) > 1 or (args and args[0] not in ("nuovo", "new")):
        await reply(update, t(actor.lang, "calendario.usage"))
        return
    rotate = bool(args)
    link = await d.run(links.calendar_link, actor.member.id, rotate=rotate)
    if rotate:
        await d.audit(actor, "calendar-rotate", {})
        await reply(update, t(actor.lang, "calendario.rotated", link=link))
    else:
        await reply(update, t(actor.lang, "calendario.link", link=link))
