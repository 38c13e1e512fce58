"""Run crawls: each source in its own process, one at a time per source, every run recorded.

:func:`run_crawl` is what the CLI (``sentinella crawl``) and the daemon's jobs call. For each
source it takes the source's lock, records the start of a run, starts ``python -m
crawler.worker`` (a fresh process, because Twisted's reactor cannot be restarted), relays its
progress lines to the ``progress`` callback and returns one :class:`SourceSummary` per source.
The child crawls, ingests and closes the run itself (see :mod:`crawler.worker` for why); the parent
closes the run as failed only when the child died, hung past ``crawl.run_timeout``, never
reported, or was killed because the caller asked to ``stop`` (a daemon shutting down). A plain
subprocess rather than ``multiprocessing``: the child never re-imports the caller's ``__main__``
(the CLI, the daemon, a benchmark script), it can be killed cleanly, and the JSON-lines protocol
on its stdout is all the two sides share.

The lock is a ``flock`` on a file named after the database and the source (in
``crawl.lock_dir`` or the system temp dir): a second crawl of the same source against the same
database while one runs is skipped with outcome ``"skipped"``. The kernel releases the lock when
the holder dies, so a crash never leaves a stale lock. Known limit: the lock is per host; two
hosts crawling into one PostgreSQL database are not kept apart.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal

from crawler.config import SOURCE_NAMES, CrawlConfig, SourcesConfig

Stage = Literal["starting", "crawling", "ingesting", "done"]


@dataclass(frozen=True)
class SourceSummary:
    """How one source's crawl went (what the CLI's summary table shows)."""

    name: str
    #: ok | degraded | failed (the run's verdict), or skipped (another crawl of it was running)
    outcome: str
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    errors: int = 0
    requests: int = 0
    bytes: int = 0
    seconds: float = 0.0
    #: None, "failing" (tell admins: the source keeps failing) or "recovered".
    notify: str | None = None
    seen: int = 0
    reason: str = ""
    error_messages: tuple[str, ...] = ()
    #: Requests and bytes per request kind: {"listing": {"requests": n, "bytes": n}, "detail": …}.
    kinds: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a source's crawl, for a progress display."""

    source: str
    stage: Stage
    requests: int = 0
    bytes: int = 0
    items: int = 0
    #: Set on the "done" event.
    summary: SourceSummary | None = None


Progress = Callable[[ProgressEvent], None]


def _lock_path(crawl: CrawlConfig, db_url: str, source: str) -> Path:
    directory = Path(crawl.lock_dir) if crawl.lock_dir else Path(tempfile.gettempdir()) / "sentinella-locks"
    directory.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(db_url.encode("utf-8")).hexdigest()[:16]
    return directory / f"{key}-{source}.lock"


@contextmanager
def source_lock(crawl: CrawlConfig, db_url: str, source: str) -> Iterator[bool]:
    """Hold the source's crawl lock; yields False (without waiting) when another holder has it."""
    from storage.db import file_lock

    with file_lock(_lock_path(crawl, db_url, source), wait=False) as held:
        yield held


def resolve_sources(names: Sequence[str], sources_config: SourcesConfig) -> list[str]:
    """The sources to crawl: the named ones (in the given order), or every enabled one."""
    if not names:
        return sources_config.enabled()
    unknown = [n for n in names if n not in SOURCE_NAMES]
    if unknown:
        raise ValueError(f"unknown source(s): {', '.join(unknown)}; known: {', '.join(SOURCE_NAMES)}")
    return list(dict.fromkeys(names))


def run_crawl(
    db_url: str,
    sources: list[str],
    *,
    crawl: CrawlConfig,
    sources_config: SourcesConfig,
    now: datetime,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    child_env: Mapping[str, str] | None = None,
) -> list[SourceSummary]:
    """Crawl ``sources`` (all enabled ones when empty), one after the other; never raises for a
    source's failure — it is in that source's summary (``outcome="failed"``).

    ``child_env`` is the environment of the crawl processes (None: this process's). The caller
    passes one without secrets: a crawl needs no bot token or SMTP password.

    ``stop`` (set from another thread, e.g. a daemon shutting down) kills the running crawl
    process within about a second, records its run as failed and starts no further source.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    names = resolve_sources(sources, sources_config)
    summaries = []
    started = time.monotonic()
    for name in names:
        if stop is not None and stop.is_set():
            break
        # Each source's run starts at the injected time plus the time the earlier sources took.
        source_now = now + timedelta(seconds=time.monotonic() - started)
        summary = _run_source(
            db_url,
            name,
            crawl=crawl,
            sources_config=sources_config,
            now=source_now,
            progress=progress,
            stop=stop,
            child_env=child_env,
        )
        if progress is not None:
            progress(ProgressEvent(name, "done", summary.requests, summary.bytes, summary.seen, summary))
        summaries.append(summary)
    return summaries


def _run_source(
    db_url: str,
    name: str,
    *,
    crawl: CrawlConfig,
    sources_config: SourcesConfig,
    now: datetime,
    progress: Progress | None,
    stop: threading.Event | None = None,
    child_env: Mapping[str, str] | None = None,
) -> SourceSummary:
    from storage.db import Database
    from storage.sources import finish_run, start_run

    started = time.monotonic()
    with source_lock(crawl, db_url, name) as acquired:
        if not acquired:
            return SourceSummary(
                name=name, outcome="skipped", reason="another crawl of this source is running"
            )
        if progress is not None:
            progress(ProgressEvent(name, "starting"))
        db = Database(db_url)
        try:
            run_id = start_run(db, name, now=now)
            job = {
                "source": name,
                "run_id": run_id,
                "db_url": db_url,
                "now": now.isoformat(),
                "crawl": crawl.model_dump(mode="json"),
                "sources": sources_config.model_dump(mode="json"),
            }
            result, problem = _run_child(
                job, timeout=crawl.run_timeout, name=name, progress=progress, stop=stop, env=child_env
            )
            seconds = time.monotonic() - started
            if result is not None and result.get("finished"):
                return _summary(name, result, seconds)
            reason = problem or (result or {}).get("reason") or "the crawl process ended without a result"
            verdict = finish_run(
                db,
                run_id,
                now=now + timedelta(seconds=seconds),
                outcome="failed",
                errors=1,
                report={"reason": reason, "errors": [reason]},
                failure_threshold=crawl.failure_threshold,
                min_field_share=crawl.min_field_share,
            )
            return SourceSummary(
                name=name,
                outcome=verdict.outcome,
                errors=1,
                seconds=seconds,
                notify=verdict.notify,
                reason=reason,
                error_messages=(reason,),
            )
        except Exception as exc:  # the database is unreachable: report, do not crash the caller
            return SourceSummary(
                name=name,
                outcome="failed",
                errors=1,
                seconds=time.monotonic() - started,
                reason=f"{type(exc).__name__}: {exc}",
                error_messages=(f"{type(exc).__name__}: {exc}",),
            )
        finally:
            db.dispose()


def _summary(name: str, result: dict[str, Any], seconds: float) -> SourceSummary:
    return SourceSummary(
        name=name,
        outcome=str(result.get("outcome", "failed")),
        new=int(result.get("new", 0)),
        changed=int(result.get("changed", 0)),
        unchanged=int(result.get("unchanged", 0)),
        errors=int(result.get("errors", 0)),
        requests=int(result.get("requests", 0)),
        bytes=int(result.get("bytes", 0)),
        seconds=seconds,
        notify=result.get("notify"),
        seen=int(result.get("seen", 0)),
        reason=str(result.get("reason") or ""),
        error_messages=tuple(str(m) for m in result.get("error_messages") or ()),
        kinds=dict(result.get("kinds") or {}),
    )


def _tail(stream: IO[bytes], limit: int = 2000) -> str:
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(max(0, size - limit))
    return stream.read().decode("utf-8", "replace").strip()


def _run_child(
    job: dict[str, Any],
    *,
    timeout: float,
    name: str,
    progress: Progress | None,
    stop: threading.Event | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any] | None, str | None]:
    """Run the worker; returns (its result line or None, a problem description or None)."""
    with tempfile.TemporaryFile() as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "crawler.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=None if env is None else dict(env),
        )
        assert child.stdin is not None and child.stdout is not None
        lines: queue.Queue[bytes | None] = queue.Queue()

        def pump(stdout: IO[bytes]) -> None:
            for line in stdout:
                lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=pump, args=(child.stdout,), daemon=True)
        reader.start()
        child.stdin.write(json.dumps(job).encode("utf-8"))
        child.stdin.close()

        deadline = time.monotonic() + timeout
        result: dict[str, Any] | None = None
        problem: str | None = None
        while True:
            if stop is not None and stop.is_set():
                problem = "the crawl was stopped (shutdown)"
                child.kill()
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                problem = f"the crawl took longer than {timeout:g} s and was stopped"
                child.kill()
                break
            try:
                line = lines.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if line is None:
                break
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            if event.get("event") == "result":
                result = event
            elif event.get("event") == "progress" and progress is not None:
                progress(
                    ProgressEvent(
                        name,
                        event.get("stage", "crawling"),
                        int(event.get("requests", 0)),
                        int(event.get("bytes", 0)),
                        int(event.get("items", 0)),
                    )
                )
        try:
            code = child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            code = child.wait()
        reader.join(timeout=5)
        child.stdout.close()
        if result is None and problem is None:
            problem = f"the crawl process exited with code {code} without a result: {_tail(stderr)[-500:]}"
        return result, problem
