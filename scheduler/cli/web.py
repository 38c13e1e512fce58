"""``sentinella web``: the web board, calendars, feeds and unsubscribe pages on their own."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
import uvicorn

from scheduler.cli.common import context, handles_errors, out
from scheduler.settings import SettingsError
from web.app import create_app
from web.server import server_config


@handles_errors
def web_command(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default web.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default web.port).")] = None,
) -> None:
    """Serve the web app (staff board, calendar feeds, public feeds, one-click unsubscribe).

    ``sentinella run`` serves it too when ``[web] enabled = true``; this command serves it alone,
    e.g. on another machine than the daemon, over the same database. Stops on Ctrl-C or SIGTERM.
    """
    app_ctx = context(ctx)
    settings = app_ctx.settings
    if settings.web.secret_key is None:
        raise SettingsError(
            "setting 'web.secret_key' (required): the web app signs sessions and links with it"
        )
    app = create_app(app_ctx.db, settings.web, clock=app_ctx.clock, matching=settings.matching)
    config = server_config(app, settings.web, host=host, port=port)
    out.print(f"Sentinella web on http://{config.host}:{config.port} (links use {settings.web.base_url})")
    # uvicorn's own signal handlers: Ctrl-C and SIGTERM stop it cleanly.
    asyncio.run(uvicorn.Server(config).serve())
