"""``sentinella demo``: Sentinella end to end on the bundled recordings, offline (see :mod:`scheduler.demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scheduler.cli.common import CliError, configure_logging, context, handles_errors, out


@handles_errors
def demo_command(
    ctx: typer.Context,
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write the staff digest (HTML) here (default: sentinella-demo-digest.html)."
        ),
    ] = None,
    keep: Annotated[
        Path | None,
        typer.Option(
            "--keep",
            help="Keep the demo database (and the digest, unless --out) in this directory.",
            file_okay=False,
        ),
    ] = None,
    language: Annotated[str, typer.Option("--language", help="Language of the digest: it or en.")] = "it",
) -> None:
    """Try Sentinella with no network and no secrets: crawl the bundled recordings from a local
    server, match them to demo members, print each alert and write the staff digest."""
    # Imported here: the replay site's parsers are the demo's alone, and every other command
    # (the daemon among them) is lighter without them.
    from scheduler.demo import DemoError, print_summary, run_demo

    if language not in ("it", "en"):
        raise CliError("--language must be 'it' or 'en'")
    # The demo reads no settings file: it brings its own sources, database, clock and channels.
    configure_logging("WARNING", debug=context(ctx).debug)
    try:
        report = run_demo(console=out, out=out_file, keep=keep, language=language)
    except DemoError as exc:
        raise CliError(str(exc)) from None
    out.print()
    print_summary(report, out)
