"""The web application (Starlette): the staff board, calendars, public feeds and unsubscribe pages.

Pages and who may see them:

* staff and admins, signed in: ``/bandi`` (calls, with filters), ``/bandi/{id}`` (a call, its
  events, duplicates, matches and feedback), ``/fonti`` (source health), ``/membri`` (members,
  read-only);
* anyone: ``/accesso`` (how to sign in), ``/accesso/{token}`` (the bot's one-time link: a
  confirmation page whose button signs in, so a link preview cannot use the link up),
  ``/calendario/{token}.ics`` (a member's own feed), ``/feed/bandi.{ics,rss,atom}`` (open
  calls, when ``public_feeds``), ``/disiscrizione/{token}`` (unsubscribe), ``/salute``.

Everything else answers 303 to ``/accesso`` without a session, 403 to a signed-in member who is
not staff. Database calls are synchronous and run in Starlette's thread pool (plain ``def``
endpoints would too; these are ``async`` only to await ``request.form()``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from email.utils import format_datetime
from functools import partial
from pathlib import Path
from time import monotonic as time_now
from typing import Any, TypeVar
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from notifier.config import MatchingConfig
from notifier.matching.profiles import parse_profile
from notifier.messages.formats import (
    countdown,
    fmt_day,
    fmt_money,
    one_line,
    pick_lang,
    safe_url,
    source_label,
)
from notifier.messages.unsubscribe import read_token
from notifier.planning.subscriptions import unsubscribe_member
from storage import access, board, members
from storage.audit import audit, member_actor
from storage.calls import CallView, call_events, get_call, get_calls, group_calls, phase
from storage.db import Database
from storage.members import MemberView
from storage.records import ROME, Precision
from storage.sources import recent_runs, source_health
from web.calendar import Entry, build_calendar, group_entries
from web.config import WebConfig
from web.i18n import LANGUAGES, text
from web.security import RateLimit, Session, SessionMiddleware, Sessions, csrf_ok
from web.topics import TopicIndex

log = logging.getLogger("web")
T = TypeVar("T")

STATIC = Path(__file__).parent / "static"
#: Runs shown per source on the health page.
RUNS_SHOWN = 5
#: Calls in the public feeds.
FEED_SIZE = 200
#: Longest the board's call index is kept without a look at the database's calls.
INDEX_MAX_AGE = 300.0
#: Text searches remembered with the index.
SEARCHES_KEPT = 64
#: Longest text search accepted.
MAX_QUERY = 200


@dataclass
class WebDeps:
    db: Database
    config: WebConfig
    clock: Callable[[], datetime]
    topics: TopicIndex
    index: CallIndex
    sessions: Sessions
    env: Environment
    secret: str
    #: Sign-in attempts and token pages per client address.
    signin_limit: RateLimit
    #: Unsubscribe and calendar requests per client address (they take a token from the URL).
    token_limit: RateLimit

    def now(self) -> datetime:
        return self.clock()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(partial(fn, *args, **kwargs))


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("web", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "xml"), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates ship with the package: no file check on every page.
        auto_reload=False,
    )
    env.globals.update(source_label=source_label, one_line=one_line, safe_url=safe_url)
    env.filters["rfc822"] = format_datetime
    return env


def _deps(request: Request) -> WebDeps:
    deps: WebDeps = request.app.state.deps
    return deps


def _session(request: Request) -> Session:
    session: Session = request.state.session
    return session


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _lang(request: Request, member: MemberView | None = None) -> str:
    session = _session(request)
    if session.lang:
        return session.lang
    if member is not None:
        return pick_lang(member.language)
    return pick_lang(request.headers.get("accept-language", ""))


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    deps = _deps(request)
    lang = context.pop("lang", None) or _lang(request, context.get("me"))
    session = _session(request)
    if session.fresh:
        # The page's forms carry this session's token: the browser must get the cookie.
        session.changed = True
    base = {
        "lang": lang,
        "t": partial(text, lang),
        "csrf": _session(request).csrf,
        "me": None,
        "path": request.url.path,
        "day": partial(_day, lang=lang),
        "languages": LANGUAGES,
    }
    base.update(context)
    body = deps.env.get_template(template).render(base)
    return HTMLResponse(body, status_code=status)


def _day(value: datetime | None, precision: Any = None, *, lang: str) -> str:
    return "—" if value is None else fmt_day(value, lang, precision)


def _error(request: Request, status: int, key: str, **context: Any) -> HTMLResponse:
    return render(
        request, "message.html", status=status, title_key=f"{key}.title", body_key=f"{key}.body", **context
    )


async def _staff(request: Request) -> MemberView | Response:
    """The signed-in staff member or admin, or the response that refuses the page."""
    deps = _deps(request)
    session = _session(request)
    if session.member_id is None:
        return RedirectResponse("/accesso", status_code=303)
    member = await deps.run(members.get_member, deps.db, session.member_id)
    if member is None or not member.active:
        request.state.clear_session = True
        return RedirectResponse("/accesso", status_code=303)
    if not member.is_staff:
        return _error(request, 403, "refused", me=None)
    return member


StaffEndpoint = Callable[[Request, MemberView, WebDeps, str], Awaitable[Response]]


def staff_page(fn: StaffEndpoint) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint for staff and admins only (:func:`_staff`), given the member, the app's
    dependencies and the page's language."""

    @functools.wraps(fn)
    async def endpoint(request: Request) -> Response:
        me = await _staff(request)
        if not isinstance(me, MemberView):
            return me
        return await fn(request, me, _deps(request), _lang(request, me))

    return endpoint


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def _checked_form(request: Request) -> dict[str, str] | Response:
    form = await _form(request)
    if not csrf_ok(_session(request), form.get("csrf")):
        return _error(request, 403, "csrf")
    return form


# --- sign-in ------------------------------------------------------------------------------------


async def home(request: Request) -> Response:
    target = "/bandi" if _session(request).member_id is not None else "/accesso"
    return RedirectResponse(target, status_code=303)


async def signin_help(request: Request) -> Response:
    return render(request, "signin.html", state="help", logged_out=request.query_params.get("uscito") == "1")


async def signin_page(request: Request) -> Response:
    deps = _deps(request)
    if not deps.signin_limit.allow(_client(request)):
        return _error(request, 429, "slow_down")
    token = request.path_params["token"]
    link = await deps.run(access.peek_signin_link, deps.db, token)
    if link is None:
        return render(request, "signin.html", status=404, state="unknown")
    if link.used:
        return render(request, "signin.html", status=410, state="used")
    if link.expires_at <= deps.now():
        return render(request, "signin.html", status=410, state="expired")
    return render(request, "signin.html", state="confirm", token=token)


async def signin(request: Request) -> Response:
    deps = _deps(request)
    if not deps.signin_limit.allow(_client(request)):
        return _error(request, 429, "slow_down")
    form = await _checked_form(request)
    if isinstance(form, Response):
        return form
    try:
        member_id = await deps.run(
            access.redeem_signin_link, deps.db, request.path_params["token"], now=deps.now()
        )
    except access.LinkError as exc:
        return render(request, "signin.html", status=404 if exc.kind == "unknown" else 410, state=exc.kind)
    member = await deps.run(members.get_member, deps.db, member_id)
    if member is None or not member.active or not member.is_staff:
        await deps.run(
            audit,
            deps.db,
            member_actor(member_id),
            "web-signin",
            {"refused": True},
            now=deps.now(),
        )
        return _error(request, 403, "refused")
    session = _session(request)
    deps.sessions.sign_in(session, member.id)
    await deps.run(audit, deps.db, member_actor(member.id, member.role), "web-signin", {}, now=deps.now())
    return RedirectResponse("/bandi", status_code=303)


async def logout(request: Request) -> Response:
    form = await _checked_form(request)
    if isinstance(form, Response):
        return form
    request.state.clear_session = True
    return RedirectResponse("/accesso?uscito=1", status_code=303)


async def set_language(request: Request) -> Response:
    form = await _checked_form(request)
    if isinstance(form, Response):
        return form
    session = _session(request)
    if form.get("lang") in LANGUAGES:
        session.lang = form["lang"]
        session.changed = True
    back = form.get("next", "/")
    # Only a path of this site: never an open redirect.
    if not back.startswith("/") or back.startswith("//") or "\\" in back:
        back = "/"
    return RedirectResponse(back, status_code=303)


# --- the board ----------------------------------------------------------------------------------


def _parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


class CallIndex:
    """The board's rows of every call (:class:`storage.board.RowIndex`), rebuilt when a call is
    added or changes (:func:`storage.board.calls_version`, two index lookups a page) and at
    least every :data:`INDEX_MAX_AGE` seconds (quiet rewrites do not change the version)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._version: tuple[Any, ...] | None = None
        self._built = 0.0
        self._index = board.RowIndex([])
        self._searches: dict[str, set[int]] = {}
        self._lock = threading.Lock()

    def get(self) -> board.RowIndex:
        version = board.calls_version(self.db)
        with self._lock:
            if version != self._version or time_now() - self._built > INDEX_MAX_AGE:
                self._index = board.RowIndex(board.board_rows(self.db))
                self._version, self._built = version, time_now()
                self._searches.clear()
            return self._index

    def search(self, text: str) -> set[int]:
        """The text search's ids (:func:`storage.board.search_ids`, a scan of every call's text),
        remembered for the index's lifetime: paging through results asks once."""
        key = text.strip().casefold()
        with self._lock:
            found = self._searches.get(key)
        if found is None:
            found = board.search_ids(self.db, text)
            with self._lock:
                if len(self._searches) >= SEARCHES_KEPT:
                    self._searches.pop(next(iter(self._searches)))
                self._searches[key] = found
        return found


@dataclass(frozen=True, slots=True)
class Line:
    """One call of the list, its texts ready to print."""

    id: int
    title: str
    body: str
    source: str
    phase: str
    phase_label: str
    end: str
    countdown: str


@dataclass
class Listing:
    rows: list[board.BoardRow]
    total: int | None
    has_next: bool


def _listing(deps: WebDeps, query: board.BoardQuery, topic: str | None, page: int) -> Listing:
    size = deps.config.page_size
    index = deps.index.get()
    by_id = index.by_id
    matching = deps.index.search(query.text) if query.text.strip() else None
    ids = board.select_ids(index, query, now=deps.now(), matching=matching)
    if not topic:
        start = (page - 1) * size
        return Listing([by_id[i] for i in ids[start : start + size]], len(ids), start + size < len(ids))
    # Topics are computed per call (cached): walk in order until the page and one more are found.
    wanted = page * size + 1
    kept: list[int] = []
    for start in range(0, len(ids), 200):
        kept += [c.id for c in get_calls(deps.db, ids[start : start + 200]) if topic in deps.topics.topics(c)]
        if len(kept) >= wanted:
            break
    first = (page - 1) * size
    done = len(kept) < wanted
    return Listing([by_id[i] for i in kept[first : first + size]], len(kept) if done else None, not done)


@staff_page
async def calls_page(request: Request, me: MemberView, deps: WebDeps, lang: str) -> Response:
    params = request.query_params
    stato = params.get("stato", "active")
    if stato not in board.PHASE_FILTERS:
        stato = "active"
    sources = (await deps.run(deps.index.get)).sources
    source = params.get("fonte") or None
    if source not in sources:
        source = None
    topics = deps.topics.choices(lang)
    topic = params.get("tema") or None
    if topic not in {t for t, _ in topics}:
        topic = None
    q = (params.get("q") or "")[:MAX_QUERY]
    start, end = _parse_day(params.get("dal")), _parse_day(params.get("al"))
    try:
        page = max(1, min(10_000, int(params.get("pagina", "1"))))
    except ValueError:
        page = 1
    query = board.BoardQuery(
        phase=stato,  # type: ignore[arg-type]
        source=source,
        text=q,
        closes_from=datetime.combine(start, time(0, 0), tzinfo=ROME) if start else None,
        closes_until=datetime.combine(end, time(23, 59, 59), tzinfo=ROME) if end else None,
    )
    listing = await deps.run(_listing, deps, query, topic, page)
    now = deps.now()
    kept = {"q": q, "fonte": source or "", "tema": topic or "", "stato": stato,
            "dal": start.isoformat() if start else "", "al": end.isoformat() if end else ""}  # fmt: skip
    base = {k: v for k, v in kept.items() if v}

    def page_url(n: int) -> str:
        return "/bandi?" + urlencode({**base, "pagina": n})

    # Each line's texts made here, not in the template: a page of 50 lines is mostly this.
    rows = []
    for r in listing.rows:
        where = phase(r.status, r.opens, r.end, now)
        rows.append(Line(
            id=r.id,
            title=one_line(r.title),
            body=one_line(r.granting_body),
            source=source_label(r.source, lang),
            phase=where,
            phase_label=text(lang, f"phase.{where}"),
            end=fmt_day(r.end, lang, r.closes_precision) if r.end else "",
            countdown=countdown(r.end, now, lang, verb="closes", precision=_precision(r.closes_precision))
            if r.end and r.end >= now
            else "",
        ))  # fmt: skip
    return render(
        request, "calls.html", me=me, lang=lang, rows=rows, total=listing.total, page=page,
        prev_url=page_url(page - 1) if page > 1 else None,
        next_url=page_url(page + 1) if listing.has_next else None,
        sources=sources, topics=topics, filters=kept, phases=board.PHASE_FILTERS,
        no_deadline=text(lang, "calls.no_deadline"),
    )  # fmt: skip


def _precision(value: str | None) -> Precision | None:
    return Precision(value) if value else None


def _money(value: Any, lang: str) -> str:
    return "—" if value is None else fmt_money(value, lang)


def _call_detail(deps: WebDeps, call_id: int) -> dict[str, Any] | None:
    call = get_call(deps.db, call_id)
    if call is None:
        return None
    group = group_calls(deps.db, call.group_id) if call.group_id is not None else [call]
    alerts = board.group_alerts(deps.db, call.group_id) if call.group_id is not None else []
    return {"call": call, "events": call_events(deps.db, call.id), "group": group, "alerts": alerts}


@staff_page
async def call_page(request: Request, me: MemberView, deps: WebDeps, lang: str) -> Response:
    try:
        call_id = int(request.path_params["call_id"])
    except ValueError:
        call_id = -1
    detail = await deps.run(_call_detail, deps, call_id)
    if detail is None:
        return _error(request, 404, "not_found", me=me)
    call: CallView = detail["call"]
    topics = [deps.topics.label(t, lang) for t in sorted(await deps.run(deps.topics.topics, call))]
    now = deps.now()
    return render(
        request, "call.html", me=me, lang=lang, topics=topics, phase=call.phase(now),
        money=partial(_money, lang=lang), **detail,
    )  # fmt: skip


@staff_page
async def sources_page(request: Request, me: MemberView, deps: WebDeps, lang: str) -> Response:

    def read() -> list[tuple[Any, list[Any]]]:
        return [(h, recent_runs(deps.db, h.name, RUNS_SHOWN)) for h in source_health(deps.db)]

    return render(request, "sources.html", me=me, health=await deps.run(read))


def _profile_summary(data: dict[str, Any] | None, lang: str) -> dict[str, Any]:
    try:
        profile = parse_profile(data)
    except ValueError:
        return {"invalid": True}
    return {
        "invalid": False,
        "topics": [TopicIndex.label(t, lang) for t in profile.topics],
        "keywords": profile.keywords,
        "exclude": profile.exclude,
        "channels": profile.channels,
        "alerts": profile.alerts,
        "sources": profile.sources,
        "province": profile.province,
        "configured": data is not None,
    }


@staff_page
async def members_page(request: Request, me: MemberView, deps: WebDeps, lang: str) -> Response:

    def read() -> list[dict[str, Any]]:
        everyone = members.list_members(deps.db)
        profiles = {m.id: p for m, p in members.all_profiles(deps.db)}
        states = board.delivery_states(deps.db)
        return [
            {"m": m, "profile": _profile_summary(profiles.get(m.id), lang), "delivery": states.get(m.id)}
            for m in everyone
        ]

    return render(request, "members.html", me=me, lang=lang, rows=await deps.run(read))


# --- calendars and feeds ------------------------------------------------------------------------

ICAL = "text/calendar; charset=utf-8"


def _member_calendar(deps: WebDeps, member_id: int) -> bytes | None:
    member = members.get_member(deps.db, member_id)
    if member is None:
        return None
    lang = pick_lang(member.language)
    matched = board.matched_groups(deps.db, member_id)
    entries = group_entries(deps.db, [(m.group_id, m.reasons) for m in matched])
    return build_calendar(
        entries, name=text(lang, "ical.member_name"), base_url=deps.config.base_url, now=deps.now(),
        lang=lang, past_days=deps.config.calendar_past_days,
    )  # fmt: skip


async def member_calendar(request: Request) -> Response:
    deps = _deps(request)
    if not deps.token_limit.allow(_client(request)):
        return PlainTextResponse("Too many requests", status_code=429)
    member_id = await deps.run(access.calendar_member, deps.db, request.path_params["token"])
    body = None if member_id is None else await deps.run(_member_calendar, deps, member_id)
    if body is None:
        return PlainTextResponse("Not found", status_code=404)
    return Response(body, media_type=ICAL, headers={"Cache-Control": "private, max-age=900"})


def _open_calls(deps: WebDeps) -> list[CallView]:
    """Open and forthcoming calls, one per duplicate group, soonest deadline first."""
    ids = board.board_ids(deps.db, board.BoardQuery(phase="active"), now=deps.now())
    seen: set[int | None] = set()
    out = []
    for start in range(0, len(ids), 500):
        for call in get_calls(deps.db, ids[start : start + 500]):
            key = call.group_id if call.group_id is not None else -call.id
            if key not in seen:
                seen.add(key)
                out.append(call)
    return out


async def public_feed(request: Request) -> Response:
    deps = _deps(request)
    if not deps.config.public_feeds:
        raise HTTPException(404)
    kind = request.path_params["kind"]
    if kind not in ("ics", "rss", "atom"):
        raise HTTPException(404)
    lang = request.query_params.get("lang", "it")
    lang = lang if lang in LANGUAGES else "it"
    calls = await deps.run(_open_calls, deps)
    now = deps.now()
    headers = {"Cache-Control": "public, max-age=900"}
    if kind == "ics":
        entries = [Entry(c.group_id if c.group_id is not None else -c.id, c) for c in calls]
        body = await deps.run(
            build_calendar, entries, name=text(lang, "ical.public_name"), base_url=deps.config.base_url,
            now=now, lang=lang, past_days=0, public=True,
        )  # fmt: skip
        return Response(body, media_type=ICAL, headers=headers)
    newest = sorted(calls, key=lambda c: (c.first_seen, c.id), reverse=True)[:FEED_SIZE]
    template = deps.env.get_template(f"feed.{kind}.xml")
    body_text = template.render(
        calls=newest, lang=lang, t=partial(text, lang), base_url=deps.config.base_url, now=now,
        updated=max((c.last_changed for c in newest), default=now), day=partial(_day, lang=lang),
    )  # fmt: skip
    media = "application/atom+xml" if kind == "atom" else "application/rss+xml"
    return Response(body_text, media_type=f"{media}; charset=utf-8", headers=headers)


# --- unsubscribe --------------------------------------------------------------------------------


async def unsubscribe_page(request: Request) -> Response:
    deps = _deps(request)
    if not deps.token_limit.allow(_client(request)):
        return _error(request, 429, "slow_down")
    found = read_token(deps.secret, request.path_params["token"])
    member = None if found is None else await deps.run(members.get_member, deps.db, found[0])
    if found is None or member is None:
        return render(request, "unsubscribe.html", status=404, state="unknown")
    lang = pick_lang(member.language)
    # Opening the page changes nothing, but it is recorded (a mail scanner's visit shows here too).
    await deps.run(
        audit, deps.db, member_actor(member.id, member.role), "unsubscribe-page",
        {"scope": found[1]}, now=deps.now(),
    )  # fmt: skip
    return render(request, "unsubscribe.html", lang=_session(request).lang or lang, state="confirm",
                  scope=found[1], token=request.path_params["token"])  # fmt: skip


async def unsubscribe(request: Request) -> Response:
    deps = _deps(request)
    if not deps.token_limit.allow(_client(request)):
        return _error(request, 429, "slow_down")
    form = await _form(request)
    one_click = form.get("List-Unsubscribe") == "One-Click"
    if not one_click and not csrf_ok(_session(request), form.get("csrf")):
        return _error(request, 403, "csrf")
    found = read_token(deps.secret, request.path_params["token"])
    if found is None:
        return render(request, "unsubscribe.html", status=404, state="unknown")
    member_id, scope = found
    done = await deps.run(
        unsubscribe_member,
        deps.db,
        member_id,
        scope,
        now=deps.now(),
        via="one-click" if one_click else "page",
    )
    if not done:
        return render(request, "unsubscribe.html", status=404, state="unknown")
    if one_click:
        return PlainTextResponse("OK")
    return render(request, "unsubscribe.html", state="done", scope=scope)


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return _error(request, 404, "not_found")
    if status == 405:
        return PlainTextResponse("Method not allowed", status_code=405)
    return _error(request, status, "generic")


def create_app(
    db: Database,
    config: WebConfig,
    *,
    clock: Callable[[], datetime],
    matching: MatchingConfig | None = None,
) -> Starlette:
    """The web application over ``db``; ``clock`` is the program's one clock."""
    if config.secret_key is None:
        raise ValueError("the web app needs web.secret_key")
    secret = config.secret_key.get_secret_value()
    sessions = Sessions(secret, lifetime_s=config.session_hours * 3600, secure=config.secure)
    deps = WebDeps(
        db=db,
        config=config,
        clock=clock,
        topics=TopicIndex(matching or MatchingConfig(), clock),
        index=CallIndex(db),
        sessions=sessions,
        env=environment(),
        secret=secret,
        signin_limit=RateLimit(20, 600),
        # Generous: one calendar service (Google, Microsoft) fetches many members' feeds from
        # a few addresses; the limit is against guessing tokens, which 256-bit ones defeat anyway.
        token_limit=RateLimit(600, 60),
    )
    routes = [
        Route("/", home),
        Route("/salute", health),
        Route("/accesso", signin_help),
        Route("/accesso/{token}", signin_page, methods=["GET"]),
        Route("/accesso/{token}", signin, methods=["POST"]),
        Route("/esci", logout, methods=["POST"]),
        Route("/lingua", set_language, methods=["POST"]),
        Route("/bandi", calls_page),
        Route("/bandi/{call_id}", call_page),
        Route("/fonti", sources_page),
        Route("/membri", members_page),
        Route("/calendario/{token}.ics", member_calendar),
        Route("/feed/bandi.{kind}", public_feed),
        Route("/disiscrizione/{token}", unsubscribe_page, methods=["GET"]),
        Route("/disiscrizione/{token}", unsubscribe, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SessionMiddleware, sessions=sessions)],
        exception_handlers={HTTPException: not_found},
    )
    app.state.deps = deps
    return app
