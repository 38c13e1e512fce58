"""The ``sentinella`` command line (Typer + rich). Every listing also prints ``--json``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scheduler.cli.calls import calls_app, sources_command
from scheduler.cli.common import AppContext, context, handles_errors, out
from scheduler.cli.config import config_command
from scheduler.cli.crawl import crawl_command
from scheduler.cli.daemon import run_command
from scheduler.cli.deliver import digest_command, dispatch_command
from scheduler.cli.demo import demo_command
from scheduler.cli.members import match_command, members_app
from scheduler.cli.status import status_command
from scheduler.cli.web import web_command

app = typer.Typer(
    name="sentinella",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Sentinella: funding calls for the Lombardy cosmetics cluster, collected, matched and delivered.",
)
db_app = typer.Typer(no_args_is_help=True, help="Database maintenance.")


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="TOML settings file (default $SENTINELLA_CONFIG or ./sentinella.toml)."
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
) -> None:
    ctx.obj = AppContext(config=config, debug=debug)
    ctx.call_on_close(ctx.obj.close)


@db_app.command("upgrade")
@handles_errors
def db_upgrade(ctx: typer.Context) -> None:
    """Apply pending schema migrations (every command also does this on start)."""
    app_ctx = context(ctx)
    app_ctx.db  # noqa: B018 - building the handle runs the migrations
    out.print(f"Database {app_ctx.db.safe_url} is up to date.")


app.add_typer(db_app, name="db")
app.add_typer(calls_app, name="calls")
app.command("sources")(sources_command)
app.command("crawl")(crawl_command)
app.command("dispatch")(dispatch_command)
app.command("digest")(digest_command)
app.command("run")(run_command)
app.command("status")(status_command)
app.command("demo")(demo_command)
app.add_typer(members_app, name="members")
app.command("match")(match_command)
app.command("config")(config_command)
app.command("web")(web_command)


def main() -> None:
    app(prog_name="sentinella")
