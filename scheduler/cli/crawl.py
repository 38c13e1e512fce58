"""``sentinella crawl``: run sources now, with a progress display and a summary table."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from crawler.config import SOURCE_NAMES
from crawler.report import CrawlProgress, summary_table
from crawler.run import resolve_sources
from scheduler.cli.common import CliError, context, handles_errors, print_json
from scheduler.crawling import crawl


@handles_errors
def crawl_command(
    ctx: typer.Context,
    sources: Annotated[
        list[str] | None,
        typer.Argument(help=f"Sources to crawl ({', '.join(SOURCE_NAMES)}); all enabled ones by default."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summaries as JSON.")] = False,
) -> None:
    """Crawl sources now (each in its own process); exit code 1 if any source failed."""
    app = context(ctx)
    settings = app.settings
    try:
        names = resolve_sources(sources or [], settings.sources)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if not names:
        raise CliError("no source is enabled (see [sources.<name>] enabled in the settings)")
    db = app.db
    # The summary table carries rich markup of its own (untrusted parts escaped there).
    console = Console(stderr=as_json, highlight=False)
    if as_json:
        summaries = crawl(settings, db, names, now=app.now())
        print_json(summaries)
    else:
        with CrawlProgress(console, names) as progress:
            summaries = crawl(settings, db, names, now=app.now(), progress=progress)
        console.print(summary_table(summaries))
    if any(s.failed for s in summaries):
        raise typer.Exit(1)
