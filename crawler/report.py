"""Rendering of crawl progress and results with rich, for ``sentinella crawl``.

* :func:`summary_table` — one row per source: outcome, new / changed / unchanged / errors,
  requests, bytes, time, and the reason of a bad outcome.
* :class:`CrawlProgress` — a progress display, one line per source, fed by
  :func:`crawler.run.run_crawl`'s ``progress`` callback::

      with CrawlProgress(console, names) as show:
          summaries = run_crawl(url, names, ..., progress=show)
      console.print(summary_table(summaries))

Scraped text never reaches these tables except the reason strings, which rich prints as text
(markup is escaped).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from crawler.run import ProgressEvent, SourceSummary

OUTCOME_STYLE = {"ok": "green", "degraded": "yellow", "failed": "bold red", "skipped": "dim"}


def human_bytes(count: int) -> str:
    """``1536`` → ``"1.5 KB"`` (powers of 1024)."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover - loop always returns


def summary_table(summaries: Iterable[SourceSummary]) -> Table:
    """The table printed after a crawl, with a total row when there are several sources."""
    rows = list(summaries)
    table = Table(title="Crawl summary", show_footer=len(rows) > 1)
    table.add_column("Source", footer="total")
    table.add_column("Outcome")
    numeric = ("New", "Changed", "Unchanged", "Errors", "Requests")
    totals = {
        "New": sum(s.new for s in rows),
        "Changed": sum(s.changed for s in rows),
        "Unchanged": sum(s.unchanged for s in rows),
        "Errors": sum(s.errors for s in rows),
        "Requests": sum(s.requests for s in rows),
    }
    for column in numeric:
        table.add_column(column, justify="right", footer=str(totals[column]))
    table.add_column("Bytes", justify="right", footer=human_bytes(sum(s.bytes for s in rows)))
    table.add_column("Time", justify="right", footer=f"{sum(s.seconds for s in rows):.1f} s")
    table.add_column("Note")
    for s in rows:
        style = OUTCOME_STYLE.get(s.outcome, "")
        note = s.reason
        if s.notify == "failing":
            note = f"admins told: failing. {note}"
        elif s.notify == "recovered":
            note = f"admins told: recovered. {note}"
        table.add_row(
            s.name,
            f"[{style}]{escape(s.outcome)}[/]" if style else escape(s.outcome),
            str(s.new),
            str(s.changed),
            str(s.unchanged),
            str(s.errors),
            str(s.requests),
            human_bytes(s.bytes),
            f"{s.seconds:.1f} s",
            escape(note[:200]),
        )
    return table


class CrawlProgress:
    """A rich progress display driven by :class:`~crawler.run.ProgressEvent` callbacks."""

    def __init__(self, console: Console | None, sources: Sequence[str]) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[source]}"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {
            name: self._progress.add_task("waiting", total=None, source=name) for name in sources
        }

    def __enter__(self) -> CrawlProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def __call__(self, event: ProgressEvent) -> None:
        task = self._tasks.get(event.source)
        if task is None:
            task = self._progress.add_task("", total=None, source=event.source)
            self._tasks[event.source] = task
        if event.stage == "done" and event.summary is not None:
            s = event.summary
            style = OUTCOME_STYLE.get(s.outcome, "")
            text = (
                f"[{style}]{escape(s.outcome)}[/] · {s.new} new, {s.changed} changed, "
                f"{s.unchanged} unchanged, {s.errors} errors"
            )
            self._progress.update(task, description=text, total=1, completed=1)
            return
        if event.stage == "starting":
            description = "starting"
        elif event.stage == "ingesting":
            description = f"storing {event.items} calls"
        else:
            description = f"{event.requests} requests · {human_bytes(event.bytes)} · {event.items} calls"
        self._progress.update(task, description=description)
