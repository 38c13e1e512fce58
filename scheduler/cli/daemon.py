"""``sentinella run``: the daemon (scheduled crawls, delivery, digest, the Telegram bot)."""

from __future__ import annotations

import typer

from scheduler.cli.common import console_for_delivery, context, handles_errors
from scheduler.daemon import run_daemon


@handles_errors
def run_command(ctx: typer.Context) -> None:
    """Run Sentinella: every source on its schedule, alerts every minute, the daily digest, the bot.

    Stops cleanly on SIGTERM or Ctrl-C. Runs with no configuration at all (SQLite, console
    delivery), warning about what is not set.
    """
    app = context(ctx)
    settings, db = app.settings, app.db
    config = app.config_path
    code = run_daemon(
        settings, db, app.clock, config_path=str(config) if config else None, console=console_for_delivery()
    )
    raise typer.Exit(code)
