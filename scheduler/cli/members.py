"""``sentinella members …`` and ``sentinella match``: who gets what, and why."""

from __future__ import annotations

import json
import re
import tomllib
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote

import typer
from rich.table import Table

from notifier.matching.engine import dry_run
from notifier.matching.profiles import import_members
from notifier.messages.unsubscribe import read_token
from notifier.planning.subscriptions import unsubscribe_member
from scheduler.cli.common import (
    CliError,
    context,
    fmt_dt,
    handles_errors,
    out,
    parse_date_option,
    print_json,
    short,
)
from storage import members as store
from storage.audit import audit
from storage.invitations import create_invitation

members_app = typer.Typer(no_args_is_help=True, help="Members, their profiles and invitations.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ROLES = ("member", "staff", "admin")


def _read_document(path: Path, as_json: bool) -> Any:
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"{path} is not UTF-8 text: {exc}") from None
    if as_json or path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(f"{path} is not valid JSON: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CliError(f"{path} is not valid TOML: {exc}") from None


@members_app.command("import")
@handles_errors
def import_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="TOML file of [[member]] entries (or JSON with --json).")],
    as_json: Annotated[bool, typer.Option("--json", help="The file is JSON of the same shape.")] = False,
) -> None:
    """Create or update members (same e-mail or chat id updates); every bad entry is reported."""
    app = context(ctx)
    data = _read_document(file, as_json)
    report = import_members(app.db, data, now=app.now(), actor="cli")
    for line in report.errors:
        out.print(f"error: {line}")
    out.print(
        f"Members: {report.created} created, {report.updated} updated, {report.unchanged} unchanged; "
        f"{len(report.errors)} error(s)."
    )
    if report.errors:
        raise typer.Exit(1)


@members_app.command("add")
@handles_errors
def add_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Full name.")],
    email: Annotated[str | None, typer.Option("--email")] = None,
    chat_id: Annotated[int | None, typer.Option("--chat-id", help="Telegram chat id.")] = None,
    organisation: Annotated[str | None, typer.Option("--organisation")] = None,
    role: Annotated[str | None, typer.Option("--role", help="member (new members), staff or admin.")] = None,
    language: Annotated[str | None, typer.Option("--language", help="it (new members) or en.")] = None,
    topics: Annotated[str, typer.Option("--topics", help="Comma-separated topic ids.")] = "",
    keywords: Annotated[str, typer.Option("--keywords", help="Comma-separated keywords.")] = "",
) -> None:
    """Add (or update) one member, with an optional starting profile."""
    app = context(ctx)
    # Options not given leave an existing member's values as they are.
    given = {"organisation": organisation, "role": role, "language": language}
    entry: dict[str, Any] = {"name": name, **{k: v for k, v in given.items() if v is not None}}
    if email:
        entry["email"] = email
    if chat_id is not None:
        entry["telegram_chat_id"] = chat_id
    profile = {
        key: [v.strip() for v in value.split(",") if v.strip()]
        for key, value in (("topics", topics), ("keywords", keywords))
        if value.strip()
    }
    if profile:
        entry["profile"] = profile
    report = import_members(app.db, {"member": [entry]}, now=app.now(), actor="cli")
    if report.errors:
        raise CliError("\n".join(line.removeprefix("member 1").lstrip(" :") for line in report.errors))
    member = store.get_member(app.db, report.member_ids[0])
    assert member is not None
    verb = "Added" if report.created else "Updated"
    out.print(f"{verb} member #{member.id} {member.name} ({member.role}).")


def _member_or_fail(db: Any, key: str) -> store.MemberView:
    member = None
    if key.isdigit():
        member = store.get_member(db, int(key))
    if member is None and "@" in key:
        member = store.find_member(db, email=key)
    if member is None:
        raise CliError(f"no member {key!r} (give an id or an e-mail)")
    return member


@members_app.command("list")
@handles_errors
def list_command(
    ctx: typer.Context,
    role: Annotated[str | None, typer.Option("--role", help="Only this role.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include disabled members.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List members."""
    app = context(ctx)
    if role is not None and role not in ROLES:
        raise CliError(f"--role must be one of {', '.join(ROLES)}")
    rows = store.list_members(app.db, role=role, active=None if all_ else True)
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("No members. Import some with `sentinella members import FILE`.")
        return
    table = Table()
    for column in ("id", "name", "organisation", "role", "telegram", "e-mail", "lang", "state"):
        table.add_column(column)
    for m in rows:
        state = "disabled" if not m.active else ("paused" if m.paused else "active")
        table.add_row(
            str(m.id),
            short(m.name, 40),
            short(m.organisation, 40),
            m.role,
            "—" if m.telegram_chat_id is None else ("on" if m.telegram_ok else "blocked"),
            m.email or "—",
            m.language,
            state,
        )
    out.print(table)


@members_app.command("show")
@handles_errors
def show_command(
    ctx: typer.Context,
    member: Annotated[str, typer.Argument(help="Member id or e-mail.")],
    as_json: JsonOpt = False,
) -> None:
    """Show a member and their profile."""
    app = context(ctx)
    m = _member_or_fail(app.db, member)
    profile = store.get_profile(app.db, m.id) or {}
    if as_json:
        print_json({"member": m, "profile": profile})
        return
    tz = app.settings.tz
    out.print(f"#{m.id} {m.name} — {m.organisation or 'no organisation'}", style="bold")
    for key, value in (
        ("role", m.role),
        ("e-mail", m.email or "—"),
        (
            "telegram",
            "—"
            if m.telegram_chat_id is None
            else f"{m.telegram_chat_id} ({'on' if m.telegram_ok else 'blocked'})",
        ),
        ("language", m.language),
        ("state", "disabled" if not m.active else ("paused" if m.paused else "active")),
        (
            "digest",
            ", ".join(c for c, on in (("e-mail", m.digest_email), ("telegram", m.digest_telegram)) if on)
            or "—",
        ),
        ("since", fmt_dt(m.created_at, tz)),
    ):
        out.print(f"  {key:<10} {value}")
    if profile:
        out.print("Profile:")
        for key, value in profile.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            out.print(f"  {key:<14} {shown or '—'}")
    else:
        out.print("No profile yet.")


@members_app.command("disable")
@handles_errors
def disable_command(
    ctx: typer.Context,
    member: Annotated[str, typer.Argument(help="Member id or e-mail.")],
    enable: Annotated[bool, typer.Option("--enable", help="Enable again instead.")] = False,
) -> None:
    """Disable a member (no alerts, no bot); --enable turns them back on."""
    app = context(ctx)
    m = _member_or_fail(app.db, member)
    store.update_member(app.db, m.id, now=app.now(), active=enable)
    audit(app.db, "cli", "members.enable" if enable else "members.disable", {"member": m.id}, now=app.now())
    out.print(f"Member #{m.id} {m.name} {'enabled' if enable else 'disabled'}.")


@members_app.command("digest")
@handles_errors
def digest_subscription(
    ctx: typer.Context,
    member: Annotated[str, typer.Argument(help="Member id or e-mail (staff or admin).")],
    email: Annotated[bool, typer.Option("--email/--no-email", help="Subscribe to the e-mail digest.")] = True,
) -> None:
    """Subscribe a staff member to the daily e-mail digest (or unsubscribe with --no-email)."""
    app = context(ctx)
    m = _member_or_fail(app.db, member)
    if m.role not in ("staff", "admin"):
        raise CliError(f"member #{m.id} is a {m.role}: the digest is for staff and admins")
    if email and not m.email:
        raise CliError(f"member #{m.id} has no e-mail address")
    store.update_member(app.db, m.id, now=app.now(), digest_email=email)
    audit(app.db, "cli", "digest.email", {"member": m.id, "on": email}, now=app.now())
    out.print(f"E-mail digest {'on' if email else 'off'} for #{m.id} {m.name}.")


@members_app.command("unsubscribe")
@handles_errors
def unsubscribe_command(
    ctx: typer.Context,
    request: Annotated[
        list[str], typer.Argument(help='The request as received, e.g. its subject "unsubscribe <token>".')
    ],
) -> None:
    """Carry out an unsubscribe request that arrived by e-mail (the List-Unsubscribe mailto:).

    The request's subject carries the recipient's signed token: it names the member and what
    they stop (e-mail alerts or the e-mail digest), exactly as the one-click link would.
    """
    app = context(ctx)
    secret = app.settings.web.secret_key
    if secret is None:
        raise CliError("no web.secret_key is set: unsubscribe tokens are signed with it")
    text = " ".join(request)
    found = None
    for candidate in re.findall(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", unquote(text)):
        found = read_token(secret.get_secret_value(), candidate)
        if found is not None:
            break
    if found is None:
        raise CliError("no valid unsubscribe token in the request (signed with another key, or altered)")
    member_id, scope = found
    if not unsubscribe_member(app.db, member_id, scope, now=app.now(), via="mailto"):
        raise CliError(f"member #{member_id} no longer exists")
    what = "e-mail alerts" if scope == "alerts" else "the e-mail digest"
    out.print(f"Member #{member_id}: {what} turned off.")


@members_app.command("invite")
@handles_errors
def invite_command(
    ctx: typer.Context,
    role: Annotated[str, typer.Option("--role", help="member, staff or admin.")] = "member",
    days: Annotated[int, typer.Option("--days", min=1, max=90, help="Days the code stays valid.")] = 7,
    member: Annotated[
        str | None, typer.Option("--member", help="Bind the code to this known member.")
    ] = None,
) -> None:
    """Make a one-time invitation code for the Telegram bot (t.me/<bot>?start=<code>)."""
    app = context(ctx)
    if role not in ROLES:
        raise CliError(f"--role must be one of {', '.join(ROLES)}")
    member_id = _member_or_fail(app.db, member).id if member else None
    now = app.now()
    code = create_invitation(
        app.db, role=role, now=now, ttl=timedelta(days=days), created_by="cli", member_id=member_id
    )
    audit(app.db, "cli", "invite", {"role": role, "days": days, "member": member_id}, now=now)
    username = app.settings.telegram.bot_username
    link = f"https://t.me/{username}?start={code}" if username else f"https://t.me/<bot>?start={code}"
    out.print(f"Invitation for a {role}, valid until {fmt_dt(now + timedelta(days=days), app.settings.tz)}:")
    out.print(link)
    if not username:
        out.print("(set telegram.bot_username to get the full link; the code alone also works: /start CODE)")


@handles_errors
def match_command(
    ctx: typer.Context,
    member: Annotated[str | None, typer.Option("--member", help="Only this member (id or e-mail).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Calls new or changed since DATE.")] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Also show near misses and the rule that excluded them.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Dry run: which stored calls match which members, and why. Sends nothing."""
    app = context(ctx)
    member_id = _member_or_fail(app.db, member).id if member else None
    day = parse_date_option(since, "--since")
    since_dt = datetime.combine(day, time(0), tzinfo=app.settings.tz) if day else None
    # Each row in its member's language (detail and reasons), as the member would read it.
    lang = None
    rows = dry_run(
        app.db,
        now=app.now(),
        member_id=member_id,
        since=since_dt,
        config=app.settings.matching,
        explain=explain,
        lang=lang,
    )
    if as_json:
        print_json([row.to_json() for row in rows])
        return
    if not rows:
        out.print("No matches.")
        return
    tz = app.settings.tz
    table = Table()
    for column in ("member", "call", "deadline", "score", "why"):
        table.add_column(column)
    for row in rows:
        why = row.reason_line() if row.matched else f"excluded: {row.detail or row.excluded_by}"
        table.add_row(
            short(row.member_name, 24),
            f"#{row.call_id} {short(row.title, 60)}",
            fmt_dt(row.deadline, tz),
            f"{row.score:.1f}" if row.matched else "—",
            short(why, 90),
        )
    out.print(table)
