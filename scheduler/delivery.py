"""Delivery as the CLI and the daemon run it: plan alerts and reminders, send what is due,
tell admins what they must know. ``sentinella dispatch`` runs one round; the daemon one a minute.

Only the holder of the ``sender`` lease (:mod:`storage.leases`) delivers, so Telegram's limits
hold for every process on the database together; ``sentinella dispatch`` takes the lease for
its round (:func:`sender_lease`) and, when a daemon holds it, leaves the sending to it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from notifier.delivery.admin import notify_admins
from notifier.delivery.channels import Channel, build_channels
from notifier.delivery.dispatch import DispatchReport, dispatch
from notifier.planning.alerts import PlanReport, plan_alerts
from notifier.planning.reminders import plan_reminders
from scheduler.settings import Settings
from storage import leases
from storage.db import Database


@dataclass
class DeliveryRound:
    plan: PlanReport
    reminders: int
    dispatch: DispatchReport
    notices_told: int


def make_channels(settings: Settings, console: Any = None) -> dict[str, Channel]:
    """The configured channels; the console stands in for the others only when allowed."""
    channels = build_channels(settings.telegram, settings.email, console=console)
    if not settings.delivery.console_fallback:
        stand_in = channels.get("console")
        channels = {name: ch for name, ch in channels.items() if name == "console" or ch is not stand_in}
    return channels


async def delivery_round(
    settings: Settings,
    db: Database,
    channels: dict[str, Channel],
    *,
    now: datetime,
    stop: asyncio.Event | None = None,
    limit: int | None = None,
    owner: str | None = None,
) -> DeliveryRound:
    """One round: new events → outbox, due reminders → outbox, due rows → channels, notices → admins."""
    # Planning is synchronous database work: keep it off the event loop (the bot shares it).
    plan = await asyncio.to_thread(plan_alerts, db, now=now, config=settings.matching)
    reminders = 0
    if settings.reminders.enabled:
        reminders = await asyncio.to_thread(plan_reminders, db, now=now, config=settings.reminders)
    report = await dispatch(
        db, channels, now=now, limit=limit, stop=stop, config=settings.delivery, owner=owner
    )
    told = await notify_admins(db, channels, telegram=settings.telegram, email=settings.email, now=now)
    return DeliveryRound(plan=plan, reminders=reminders, dispatch=report, notices_told=told)


async def close_channels(channels: dict[str, Channel]) -> None:
    seen: set[int] = set()
    for channel in channels.values():
        if id(channel) in seen:
            continue
        seen.add(id(channel))
        await channel.aclose()


@dataclass
class SenderLease:
    """The outcome of asking for the sender lease: ``held`` by this process (``worker``), or
    by ``holder``. ``lost`` is set if a renewal fails while it was held."""

    worker: str
    held: bool
    holder: leases.LeaseView | None = None
    lost: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def sender_lease(db: Database, settings: Settings, *, kind: str) -> AsyncIterator[SenderLease]:
    """Register this process as a worker and try the sender lease; while inside, both are
    renewed every ``delivery.renew_seconds``; on leaving, both are given up."""
    ttl = settings.delivery.lease_seconds
    worker = leases.new_worker_id()
    await asyncio.to_thread(leases.heartbeat, db, worker, kind=kind, ttl=ttl)
    try:
        held = await asyncio.to_thread(leases.acquire, db, leases.SENDER, worker, ttl=ttl)
        lease = SenderLease(
            worker, held, None if held else await asyncio.to_thread(leases.holder, db, leases.SENDER)
        )

        async def renew() -> None:
            while True:
                await asyncio.sleep(settings.delivery.renew_seconds)
                try:
                    await asyncio.to_thread(leases.heartbeat, db, worker, kind=kind, ttl=ttl)
                    still = await asyncio.to_thread(leases.acquire, db, leases.SENDER, worker, ttl=ttl)
                except Exception:
                    still = False
                if not still:
                    lease.lost.set()
                    return

        keeper = asyncio.create_task(renew()) if held else None
        try:
            yield lease
        finally:
            if keeper is not None:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(leases.unregister, db, worker)
