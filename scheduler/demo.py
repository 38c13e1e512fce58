"""``sentinella demo``: the whole of Sentinella on the bundled recordings, offline, with no secrets.

:func:`run_demo` composes the real parts, in order:

1. a replay server on a loopback port serves the recordings shipped in ``crawler/replay``
   (:func:`crawler.replay.site.install_site`), and the sources configuration points at it;
2. a fresh SQLite file (in a temporary directory, or ``keep``) is migrated;
3. the clock is pinned to the recordings' date (:data:`crawler.replay.site.RECORDED_AT`,
   through the ``now`` setting and :func:`scheduler.settings.make_clock`), so their calls are
   open as they were when recorded;
4. the demo members (``scheduler/demo_members.toml``, a ``members import`` file of fictitious
   cluster members) are imported;
5. every source is crawled with :func:`scheduler.crawling.crawl` — real crawl processes,
   Scrapy and the spiders, talking to the replay server only;
6. alerts are planned (:func:`notifier.planning.alerts.plan_alerts`) and dispatched through the console
   channel, which prints each alert as the member would get it;
7. the staff digest is built and written as HTML.

No setting from a file is read, and the parts that decide where requests go (sources,
database, channels, clock) are the demo's own whatever the environment says; ``SENTINELLA_*``
variables may still tune matching and the digest. Nothing is sent anywhere: the channels are
the console.

Known limits: the recordings are a handful of calls per source, so the alerts are few; a call
that opens or closes after 2026-09-02 in the recordings stays as it was then. The links of the
Lombardy and incentivi.gov.it calls point at the replay server (their URLs are built from the
base URL crawled), so they lead nowhere once the demo has ended; SEDIA and feed links are real.
"""

from __future__ import annotations

import asyncio
import tempfile
import tomllib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console

from crawler.config import SOURCE_NAMES, CrawlConfig
from crawler.replay.server import ReplayServer
from crawler.replay.site import RECORDED_AT, install_site
from crawler.report import CrawlProgress
from crawler.run import SourceSummary
from notifier.config import DeliveryConfig, EmailConfig, TelegramConfig
from notifier.delivery.channels import Channel, ConsoleChannel
from notifier.delivery.dispatch import dispatch
from notifier.matching.profiles import import_members
from notifier.messages.alerts import Alert
from notifier.messages.digest import render_digest
from notifier.planning.alerts import PlanReport, plan_alerts
from notifier.planning.digest import build_digest
from scheduler.crawling import crawl
from scheduler.settings import Settings, make_clock
from storage import members as members_store
from storage.calls import list_calls
from storage.db import Database

DEMO_MEMBERS = "demo_members.toml"
DATABASE_NAME = "sentinella-demo.db"
DIGEST_NAME = "sentinella-demo-digest.html"


class DemoError(Exception):
    """The demo cannot run (a file it must write is not writable); the message says why."""


@dataclass(frozen=True)
class MemberAlerts:
    member_id: int
    name: str
    organisation: str
    role: str
    #: Alerts printed, by channel (``telegram``, ``email``).
    by_channel: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_channel.values())


@dataclass
class DemoReport:
    """What the demo did (the CLI prints it; the tests read it)."""

    digest: Path
    replay_url: str
    summaries: list[SourceSummary]
    #: Calls stored per source after the crawl.
    calls: dict[str, int]
    plan: PlanReport
    members: list[MemberAlerts]
    #: Requests the replay server answered, and requests the crawls made: equal when every
    #: request of the crawl went to the replay server.
    replay_requests: int
    crawl_requests: int
    #: Every URL the crawls could request (from the sources configuration they ran with).
    source_urls: list[str] = field(default_factory=list)
    #: The SQLite file; it survives the demo only with ``keep`` (then ``kept``).
    database: Path | None = None
    kept: bool = False

    @property
    def alerts(self) -> int:
        return sum(m.total for m in self.members)


class _CountingChannel:
    """The console channel, counting what it prints per member and outbox channel."""

    def __init__(self, console: ConsoleChannel, counts: Counter[tuple[int, str]]) -> None:
        self.name = console.name
        self._console = console
        self._counts = counts

    async def send(self, alert: Alert) -> str:
        receipt = await self._console.send(alert)
        self._counts[(alert.recipient.member_id, alert.channel)] += 1
        return receipt

    async def end_batch(self) -> None:
        await self._console.end_batch()

    async def aclose(self) -> None:
        await self._console.aclose()


def demo_members() -> dict[str, Any]:
    """The bundled members file, parsed (a ``members import`` document)."""
    text = resources.files("scheduler").joinpath(DEMO_MEMBERS).read_text(encoding="utf-8")
    return tomllib.loads(text)


def demo_settings(database_url: str, sources: Any, *, lock_dir: str, language: str) -> Settings:
    """Settings for the demo: the replay sources, the database, the pinned clock, no channels.

    Built from keyword arguments, which take precedence over ``SENTINELLA_*`` variables.
    """
    return Settings(
        database_url=database_url,
        now=RECORDED_AT,
        language=language,
        # No pause between requests: the replay server is ours, on loopback.
        crawl=CrawlConfig(download_delay=0, retry_backoff=0.01, lock_dir=lock_dir),
        sources=sources,
        telegram=TelegramConfig(),
        email=EmailConfig(),
        # One recipient at a time, so the printed alerts come grouped by member.
        delivery=DeliveryConfig(concurrency=1),
    )


#: Settings that only build the links shown in calls; nothing is fetched from them.
LINK_ONLY = frozenset({"topic_url"})


def _fetch_urls(sources: Any) -> list[str]:
    """Every URL in the sources configuration a crawl may request."""
    urls: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, v in value.items():
                if key not in LINK_ONLY:
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and value.startswith(("http://", "https://")):
            urls.append(value)

    walk(sources.model_dump(mode="json"))
    return urls


def run_demo(
    *,
    console: Console,
    out: Path | None = None,
    keep: Path | None = None,
    language: str = "it",
) -> DemoReport:
    """Run the demo (see the module docstring); print as it goes; return what it did.

    ``out``: the digest's HTML file (default :data:`DIGEST_NAME` in ``keep`` or the current
    directory). ``keep``: a directory for the database, kept after the demo (an earlier demo
    database there is replaced); without it the database is temporary.
    """
    if keep is not None:
        try:
            keep.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DemoError(f"cannot create {keep}: {exc.strerror}") from None
    digest_path = out if out is not None else (keep or Path.cwd()) / DIGEST_NAME
    with tempfile.TemporaryDirectory(prefix="sentinella-demo-") as scratch:
        directory = keep if keep is not None else Path(scratch)
        database_path = directory / DATABASE_NAME
        database_path.unlink(missing_ok=True)
        with ReplayServer() as server:
            sources = install_site(server)
            settings = demo_settings(
                f"sqlite:///{database_path}",
                sources,
                lock_dir=str(Path(scratch) / "locks"),
                language=language,
            )
            clock = make_clock(settings)
            db = Database(settings.database_url)
            try:
                db.upgrade()
                report = _run(settings, db, clock, server=server, console=console, digest_path=digest_path)
            finally:
                db.dispose()
    report.database = database_path
    report.kept = keep is not None
    return report


def _run(
    settings: Settings,
    db: Database,
    clock: Callable[[], datetime],
    *,
    server: ReplayServer,
    console: Console,
    digest_path: Path,
) -> DemoReport:
    tz = settings.tz
    start = clock()
    console.print(
        f"Sentinella demo: offline, on the recordings of {start:%d/%m/%Y}; the clock starts at "
        f"{start.astimezone(tz):%Y-%m-%d %H:%M} {tz.key}.",
        style="bold",
    )
    console.print(f"Recordings served by {server.base_url} (loopback): no request leaves this machine.")
    console.print()

    imported = import_members(db, demo_members(), now=clock(), actor="demo")
    if imported.errors:  # the bundled file is checked by the tests; never expected
        raise DemoError("the demo members do not import: " + "; ".join(imported.errors))
    roles = Counter(m.role for m in members_store.list_members(db))
    console.print(
        f"1. Members: {imported.created} imported ("
        + ", ".join(
            f"{n} {role}{'s' if n != 1 and role != 'staff' else ''}" for role, n in sorted(roles.items())
        )
        + ") from the bundled demo file.",
        style="bold",
    )
    for member in members_store.list_members(db):
        console.print(f"   {member.name} — {member.organisation} [{member.role}]")
    console.print()

    console.print(
        "2. Crawl of every source against the replay server (each in its own process):", style="bold"
    )
    names = settings.sources.enabled()
    with CrawlProgress(console, names) as progress:
        summaries = crawl(settings, db, names, now=clock(), progress=progress)
    for s in summaries:
        if s.error_messages:
            first = " ".join(s.error_messages[0].split())
            first = first if len(first) <= 110 else first[:109] + "…"
            console.print(f"   {s.name}: {s.errors} error(s) reported and worked around, e.g. {first}")
    calls = {name: len(list_calls(db, source=name, kinds=None)) for name in SOURCE_NAMES}
    console.print()

    plan = plan_alerts(db, now=clock(), config=settings.matching)
    console.print(
        f"3. Alerts: {plan.enqueued} planned from {plan.events} call events; each printed as it "
        "would be sent (Telegram or e-mail, after the arrow):",
        style="bold",
    )
    counts: Counter[tuple[int, str]] = Counter()
    # Wrapping on (the CLI's console crops long lines), so every line of an alert shows whole.
    wrapping = Console(file=console.file, highlight=False, markup=False, soft_wrap=False)
    asyncio.run(_dispatch_all(settings, db, clock, ConsoleChannel(wrapping), counts))
    console.print()

    digest = build_digest(db, now=clock(), config=settings.digest, matching=settings.matching)
    html, _text = render_digest(digest, language=settings.language)
    try:
        digest_path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise DemoError(f"cannot write the digest to {digest_path}: {exc.strerror}") from None
    console.print(
        f"4. Staff digest: {digest.new_count} new call(s), {digest.changed_count} changed, "
        f"{digest.closing_count} deadline(s) in the next {digest.deadline_days} days.",
        style="bold",
    )
    console.print()

    people = [
        MemberAlerts(
            m.id,
            m.name,
            m.organisation,
            m.role,
            {channel: n for (member_id, channel), n in sorted(counts.items()) if member_id == m.id},
        )
        for m in members_store.list_members(db)
    ]
    return DemoReport(
        digest=digest_path,
        replay_url=server.base_url,
        summaries=summaries,
        calls=calls,
        plan=plan,
        members=people,
        replay_requests=len(server.requests),
        crawl_requests=sum(s.requests for s in summaries),
        source_urls=_fetch_urls(settings.sources),
    )


async def _dispatch_all(
    settings: Settings,
    db: Database,
    clock: Callable[[], datetime],
    console: ConsoleChannel,
    counts: Counter[tuple[int, str]],
) -> None:
    counting = _CountingChannel(console, counts)
    # The console stands in for both channels, as it does when neither is configured.
    channels: dict[str, Channel] = {"telegram": counting, "email": counting, "console": counting}
    while True:
        report = await dispatch(db, channels, now=clock(), config=settings.delivery)
        if not report.claimed:
            break


def print_summary(report: DemoReport, console: Console) -> None:
    """The closing summary: calls per source, alerts per member, where the files are."""
    console.print("Summary", style="bold")
    console.print(
        "  calls stored:  "
        + ", ".join(f"{name} {n}" for name, n in report.calls.items())
        + f" ({sum(report.calls.values())} in all)"
    )
    console.print(f"  alerts sent:   {report.alerts} (to the console)")
    width = max((len(m.name) for m in report.members), default=0)
    for m in report.members:
        if m.role != "member" and not m.total:
            detail = f"no alerts ({m.role}: reads the digest)"
        elif not m.total:
            detail = "no alerts"
        elif len(m.by_channel) == 1:
            detail = f"{m.total} by {next(iter(m.by_channel))}"
        else:
            detail = f"{m.total} (" + ", ".join(f"{n} by {c}" for c, n in m.by_channel.items()) + ")"
        console.print(f"    {m.name:<{width}}  {detail}")
    console.print(f"  staff digest:  {report.digest.resolve()}")
    if report.kept and report.database is not None:
        database = report.database.resolve()
        console.print(f"  database:      {database} (kept); look inside with")
        console.print(
            f"    SENTINELLA_DATABASE_URL=sqlite:///{database} "
            f"SENTINELLA_NOW={RECORDED_AT.isoformat()} sentinella calls list --open"
        )
    else:
        console.print("  database:      temporary, deleted (use --keep DIR to keep it)")
