"""``sentinella dispatch`` and ``sentinella digest``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from notifier.delivery.digest import DigestSendReport, digest_senders, send_digest
from notifier.messages.digest import render_digest
from notifier.planning.digest import build_digest, digest_for_date
from scheduler.cli.common import (
    CliError,
    console_for_delivery,
    context,
    fmt_dt,
    handles_errors,
    out,
    parse_date_option,
    print_json,
)
from scheduler.delivery import (
    DeliveryRound,
    SenderLease,
    close_channels,
    delivery_round,
    make_channels,
    sender_lease,
)
from storage import leases, outbox


@handles_errors
def dispatch_command(
    ctx: typer.Context,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Send at most this many alerts.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the round's figures as JSON.")] = False,
) -> None:
    """Plan alerts and reminders from new events, then send what is due now.

    Exit code 0 when everything deliverable was delivered (chats that blocked the bot, skipped
    rows and rows another process is sending are reported, not failures); 1 when a send failed
    (it is retried later) or was given up. When a daemon holds the sender lease, it does the
    sending: this command says so and sends nothing.
    """
    app = context(ctx)
    settings, db = app.settings, app.db

    async def run() -> tuple[SenderLease, DeliveryRound | None]:
        async with sender_lease(db, settings, kind="dispatch") as lease:
            if not lease.held:
                return lease, None
            channels = make_channels(settings, console=console_for_delivery())
            try:
                result = await delivery_round(
                    settings, db, channels, now=app.now(), limit=limit, stop=lease.lost, owner=lease.worker
                )
            finally:
                await close_channels(channels)
            return lease, result

    lease, result = asyncio.run(run())
    if result is None:
        holder = lease.holder
        due = outbox.backlog(db)
        if as_json:
            print_json({"sender": holder, "sent_here": 0, "backlog": due})
            return
        who = (
            f"{holder.owner} (until {fmt_dt(holder.expires_at, settings.tz)})"
            if holder
            else "another process"
        )
        out.print(
            f"Nothing sent from here: {who} holds the sender lease and does the sending. "
            f"Outbox: {due['pending']} pending, {due['failed']} to retry, {due['sending']} being sent."
        )
        return
    if as_json:
        print_json(result)
        if not result.dispatch.all_delivered:
            raise typer.Exit(1)
        return
    plan, report = result.plan, result.dispatch
    out.print(
        f"Planned {plan.enqueued} alert(s) ({plan.new} new, {plan.changed} changes) and "
        f"{result.reminders} reminder(s); {report.summary()}."
    )
    if report.held_by_others:
        live = {w.id: w for w in leases.list_workers(db)}
        for owner, count in sorted(report.held_by_others.items()):
            worker = live.get(owner)
            if not owner:
                back = f"back to the queue {settings.delivery.stale_claim_seconds} s after their claim"
            elif worker is not None and worker.alive:
                back = f"alive; back to the queue if it stops ({fmt_dt(worker.expires_at, settings.tz)} at the latest)"
            else:
                back = "dead; back to the queue at the next dispatch"
            out.print(f"  {count} row(s) held by {owner or 'a dispatcher without owner'}: {back}")
    if report.blocked:
        out.print(
            f"  {report.blocked} alert(s) not sent: the member blocked the bot ({len(report.gone)} newly)"
        )
    for line in report.errors[:20]:
        out.print(f"  {line}")
    if not report.all_delivered:
        raise typer.Exit(1)


@handles_errors
def digest_command(
    ctx: typer.Context,
    day: Annotated[
        str | None, typer.Option("--date", help="The digest of that day's slot (YYYY-MM-DD); default: now.")
    ] = None,
    send: Annotated[bool, typer.Option("--send", help="Send it to the staff who subscribed.")] = False,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the HTML digest to this file.")
    ] = None,
    language: Annotated[str, typer.Option("--language", help="it or en (for --out and the printout).")] = "",
) -> None:
    """Render the staff digest (new calls and changes, deadlines of the next days, source health)."""
    app = context(ctx)
    settings, db = app.settings, app.db
    lang = language or settings.language
    if lang not in ("it", "en"):
        raise CliError("--language must be 'it' or 'en'")
    chosen = parse_date_option(day, "--date")
    now = app.now()
    if chosen is not None:
        digest = digest_for_date(db, chosen, config=settings.digest, matching=settings.matching)
    else:
        digest = build_digest(db, now=now, config=settings.digest, matching=settings.matching)
    html, text = render_digest(digest, language=lang)
    if out_file is not None:
        try:
            out_file.write_text(html, encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot write {out_file}: {exc.strerror}") from None
        out.print(f"Digest written to {out_file}.")
    if send:

        async def run() -> DigestSendReport:
            channels = make_channels(settings, console=console_for_delivery())
            try:
                senders = digest_senders(channels, email=settings.email, config=settings.digest)
                return await send_digest(db, digest, now=now, senders=senders, config=settings.digest)
            finally:
                await close_channels(channels)

        sent_report = asyncio.run(run())
        sent = len(sent_report.sent)
        failed = len(sent_report.failed)
        out.print(f"Digest sent to {sent} recipient(s), {failed} failed.")
        if failed:
            raise typer.Exit(1)
    elif out_file is None:
        out.print(text)
