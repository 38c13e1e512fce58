"""``sentinella calls …`` and ``sentinella sources``: look at what has been collected."""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from scheduler.cli.common import (
    CliError,
    context,
    error_line,
    fmt_dt,
    fmt_money,
    handles_errors,
    out,
    parse_date_option,
    print_json,
    read_lines_arg,
    short,
)
from scheduler.imports import import_calls as import_call_lines
from storage import calls as calls_store
from storage import sources as sources_store
from storage.records import KINDS

calls_app = typer.Typer(no_args_is_help=True, help="List, show, search and import calls.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _calls_table(rows: list[calls_store.CallView], tz: object, now: datetime) -> Table:
    table = Table(show_lines=False)
    table.add_column("id", justify="right")
    table.add_column("source")
    table.add_column("status")
    table.add_column("closes")
    table.add_column("title")
    for call in rows:
        closes = (
            "sportello"
            if call.sportello and call.closes is None
            else fmt_dt(call.closes, tz, precision=call.closes_precision)
        )
        status = call.status.value if hasattr(call.status, "value") else str(call.status)
        if call.status == "open" and not call.is_open(now):
            status = "open (past)"
        table.add_row(str(call.id), call.source, status, closes, short(call.title, 90))
    return table


@calls_app.command("list")
@handles_errors
def list_calls(
    ctx: typer.Context,
    open_only: Annotated[bool, typer.Option("--open", help="Only calls accepting applications now.")] = False,
    source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Changed on or after DATE (YYYY-MM-DD).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 200,
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="call (default), notice (BURL acts linked to no call and the others), "
            "partner_search (EEN proposals) or all.",
        ),
    ] = "call",
    as_json: JsonOpt = False,
) -> None:
    """List stored calls, most recently changed first."""
    app = context(ctx)
    if kind != "all" and kind not in KINDS:
        raise CliError(f"--kind must be one of {', '.join(KINDS)} or all, not {kind!r}")
    since_day = parse_date_option(since, "--since")
    tz = app.settings.tz
    since_dt = datetime.combine(since_day, time(0), tzinfo=tz) if since_day else None
    now = app.now()
    rows = calls_store.list_calls(
        app.db,
        open_only=open_only,
        now=now,
        source=source,
        since=since_dt,
        limit=limit,
        newest_first=True,
        kinds=None if kind == "all" else [kind],
    )
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("No calls.")
        return
    out.print(_calls_table(rows, tz, now))


@calls_app.command("show")
@handles_errors
def show_call(
    ctx: typer.Context,
    call_id: Annotated[int, typer.Argument(help="The call's id (see `calls list`).")],
    as_json: JsonOpt = False,
) -> None:
    """Show one call with its events and its duplicate group."""
    app = context(ctx)
    call = calls_store.get_call(app.db, call_id)
    if call is None:
        raise CliError(f"no call with id {call_id}")
    events = calls_store.call_events(app.db, call_id)
    group = calls_store.group_calls(app.db, call.group_id) if call.group_id is not None else []
    if as_json:
        print_json({"call": call, "events": events, "group": [c.id for c in group]})
        return
    tz = app.settings.tz
    out.print(call.title, style="bold")
    lines = [
        ("id", str(call.id)),
        ("source", f"{call.source} / {call.source_id}"),
        ("url", call.url),
        ("status", str(call.status)),
        ("published", fmt_dt(call.published, tz, precision=call.published_precision)),
        ("opens", fmt_dt(call.opens, tz, precision=call.opens_precision)),
        (
            "closes",
            "until funds run out (sportello)"
            if call.sportello and call.closes is None
            else fmt_dt(call.closes, tz, precision=call.closes_precision),
        ),
        ("budget", fmt_money(call.budget_total)),
        ("contribution", f"{fmt_money(call.contribution_min)} – {fmt_money(call.contribution_max)}"),
        ("programme", call.programme or "—"),
        ("funding source", call.funding_source or "—"),
        ("granting body", call.granting_body or "—"),
        ("regions", ", ".join(call.regions) or "—"),
        ("beneficiaries", short("; ".join(call.beneficiaries), 300) or "—"),
        ("first seen", fmt_dt(call.first_seen, tz)),
        ("last changed", fmt_dt(call.last_changed, tz)),
    ]
    if len(call.deadlines) > 1:
        lines.append(
            ("deadlines", ", ".join(fmt_dt(d.at, tz, precision=d.precision) for d in call.deadlines))
        )
    for key, value in lines:
        out.print(f"  {key:<15} {value}")
    if call.summary:
        out.print()
        out.print(short(call.summary, 1000))
    out.print()
    others = [c for c in group if c.id != call.id]
    if others:
        out.print("Same call elsewhere:")
        for other in others:
            out.print(f"  #{other.id} {other.source} {other.url}")
        out.print()
    out.print("Events:")
    for event in events:
        change = ", ".join(
            f"{name}: {diff.get('old')!s} → {diff.get('new')!s}" for name, diff in event.changes.items()
        )
        out.print(f"  {fmt_dt(event.at, tz)}  {event.kind:<9} {short(change, 200)}")


@calls_app.command("search")
@handles_errors
def search(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="Words to look for in title, summary, description.")],
    open_only: Annotated[bool, typer.Option("--open", help="Only calls accepting applications now.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Search stored calls (case and accent insensitive)."""
    app = context(ctx)
    if not text.strip():
        raise CliError("give some text to search for")
    now = app.now()
    try:
        rows = calls_store.search_calls(app.db, text, open_only=open_only, now=now, limit=limit)
    except calls_store.SearchTooLong as exc:
        raise CliError(str(exc)) from None
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print(f"No calls match {text!r}.")
        return
    out.print(_calls_table(rows, app.settings.tz, now))


@calls_app.command("import")
@handles_errors
def import_calls(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON lines file ('-' for standard input).")],
    as_json: JsonOpt = False,
) -> None:
    """Import calls learnt elsewhere (newsletter, PDF, the cluster's own) through the normal ingest."""
    app = context(ctx)
    if str(file) != "-" and not file.is_file():
        raise CliError(f"no such file: {file}")
    report = import_call_lines(app.db, read_lines_arg(file), now=app.now(), tz=app.settings.tz)
    more = report.errors_not_shown
    if as_json:
        print_json(
            {
                "read": report.read,
                "imported": report.imported,
                "new": report.new,
                "changed": report.changed,
                "unchanged": report.unchanged,
                "errors": report.errors,
                "error_count": report.error_count,
            }
        )
    else:
        for line in report.errors:
            error_line(line)
        if more:
            error_line(f"… and {more} more error(s) not shown")
        out.print(
            f"Imported {report.imported} call(s): {report.new} new, {report.changed} changed, "
            f"{report.unchanged} unchanged; {report.error_count} error(s)."
        )
    if report.error_count:
        raise typer.Exit(1)


def sources_command(
    ctx: typer.Context,
    as_json: JsonOpt = False,
) -> None:
    """Source health: last run, outcome, yield, consecutive failures."""
    app = context(ctx)
    rows = sources_store.source_health(app.db)
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("No crawl has run yet. Try `sentinella crawl`.")
        return
    tz = app.settings.tz
    table = Table()
    for column in ("source", "last run", "outcome", "yield", "failures", "last success", "degraded"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.name,
            fmt_dt(row.last_run_at, tz),
            row.last_outcome or "—",
            "—" if row.last_yield is None else str(row.last_yield),
            str(row.consecutive_failures),
            fmt_dt(row.last_success_at, tz),
            "yes" if row.degraded else "no",
        )
    out.print(table)


sources_command = handles_errors(sources_command)
