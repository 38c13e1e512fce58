"""``sentinella status``: who shares the database and who holds what.

Lists the processes (daemons and ``dispatch`` runs) with their heartbeats, the leases and their
holders (``sender``: the process polling the bot and delivering), the outbox by state with the
rows each process is sending now, and the latest scheduled runs with the process that ran them.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Annotated

import typer
from rich.table import Table

from scheduler.cli.common import context, handles_errors, out, print_json
from storage import leases, outbox


def _when(value: datetime | None, tz: tzinfo) -> str:
    """To the second: heartbeats and leases move every few seconds."""
    return "—" if value is None else value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


@handles_errors
def status_command(
    ctx: typer.Context,
    runs: Annotated[int, typer.Option("--runs", min=0, help="How many recent job runs to list.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print everything as JSON.")] = False,
) -> None:
    """Processes sharing the database, the leases they hold, rows being sent, recent job runs."""
    app = context(ctx)
    db, tz = app.db, app.settings.tz
    workers = leases.list_workers(db)
    held = leases.list_leases(db)
    backlog = outbox.backlog(db)
    sending = outbox.held_by_others(db, None)
    recent = leases.list_runs(db, limit=runs) if runs else []
    if as_json:
        print_json(
            {"workers": workers, "leases": held, "outbox": backlog, "sending_by": sending, "runs": recent}
        )
        return
    roles = {lease.owner: lease.name for lease in held if lease.alive}
    table = Table(title="Processes")
    for column in ("process", "kind", "role", "started", "last heartbeat", "state", "sending"):
        table.add_column(column)
    for w in workers:
        state = "alive" if w.alive else f"dead since {_when(w.expires_at, tz)}"
        table.add_row(
            w.id,
            w.kind,
            roles.get(w.id, "standby" if w.kind == "run" else "—"),
            _when(w.started_at, tz),
            _when(w.heartbeat_at, tz),
            state,
            str(sending.get(w.id, 0)),
        )
    if workers:
        out.print(table)
    else:
        out.print("No process is running on this database.")
    for lease in held:
        verb = "held by" if lease.alive else "expired, last held by"
        out.print(
            f"Lease {lease.name}: {verb} {lease.owner} since {_when(lease.acquired_at, tz)}, "
            f"until {_when(lease.expires_at, tz)}"
        )
    if not any(lease.alive for lease in held):
        out.print("Lease sender: free (nobody polls the bot or delivers now)")
    out.print(
        "Outbox: "
        + ", ".join(f"{n} {state}" for state, n in backlog.items())
        + (f"; rows claimed without an owner: {sending['']}" if sending.get("") else "")
    )
    gone = {owner: n for owner, n in sending.items() if owner and owner not in {w.id for w in workers}}
    for owner, n in sorted(gone.items()):
        out.print(f"  {n} row(s) held by {owner}, which no longer exists: back at the next dispatch")
    if recent:
        runs_table = Table(title="Latest scheduled runs")
        for column in ("job", "due", "process", "started", "finished", "outcome"):
            runs_table.add_column(column)
        for r in recent:
            runs_table.add_row(
                r.job,
                _when(r.due_at, tz),
                r.owner,
                _when(r.started_at, tz),
                _when(r.finished_at, tz),
                r.outcome or "running",
            )
        out.print(runs_table)
