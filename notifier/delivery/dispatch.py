"""The outbox dispatcher: send what is due, record each outcome, lose nothing.

``sentinella dispatch`` and the daemon (every minute) call :func:`dispatch`. One run:

1. returns rows left ``sending`` by a dead dispatcher to ``pending``: rows whose owner's heartbeat
   has expired (:mod:`storage.leases`), and rows without an owner claimed longer ago than
   ``DeliveryConfig.stale_claim_seconds``; rows held by live owners are counted in the report;
2. claims due rows (``pending``, or ``failed`` whose ``next_attempt_at`` has come) of the
   channels it can send on, under its ``owner`` — atomically, so two dispatchers never share a row;
3. loads each row's member and call, renders and sends through the row's channel;
4. records the outcome of each send as soon as it is known: ``sent`` (with the channel's
   receipt) only after the channel confirmed it; a temporary failure → ``failed`` with the next
   attempt after the backoff (or after the channel's ``retry_after``, when it gave one); a permanent one, or
   the last allowed attempt → ``dead`` and an admin notice; Telegram's 403 → the member's
   Telegram channel switched off, an admin notice, the row ``dead`` (reported as a blocked chat,
   not a failure: the member can come back with /start).

Ordering: the rows of one recipient (member and channel) go one after another in outbox order;
when one fails temporarily, that recipient's later rows in the run go back to the outbox (due at
the same time, no attempt counted) instead of overtaking it. Different recipients are served
concurrently (``DeliveryConfig.concurrency``). A transport failure (refused connection, read
error, timeout, 5xx) is a retry of that message only; ``DeliveryConfig.down_after_failures`` of
them in a row, across messages with none confirmed between, make the channel down (so does a
rejected bot token or SMTP login, at once): it gets no more sends in the run, its remaining rows
are returned unsent, and admins are told what failed. The first run that sends on it again
without failure tells them what recovered.

Stopping: when ``stop`` is set, no further send starts; sends in flight get
``DeliveryConfig.stop_grace_seconds`` to finish and are then cancelled. Every claimed row not
settled by then goes back to ``pending`` (also when the run itself is cancelled or fails).

**Delivery guarantee.** At least once at the channel boundary, exactly once per planned alert:

* planning cannot duplicate: the outbox holds one row per (member, call group, reason, channel)
  (a unique constraint; enqueueing again is a no-op);
* a row is marked ``sent`` only after the channel confirmed (Telegram returned the message,
  the SMTP server accepted the DATA); so a crash at any point leaves every unconfirmed row
  ``pending``/``failed``/``sending``, and nothing is lost;
* after a crash the rows left ``sending`` are released once stale and sent again: these — the
  rows that were in flight — are the only ones a member can receive twice. The same holds for
  a send whose confirmation was lost (a timeout after Telegram had the message), and for rows
  cancelled at shutdown after their request left. The e-mail Message-ID is stable per row, so a
  mail client can recognise such a repeat.

Known limits: per-recipient order holds within one run and one process; two dispatchers at
once (the claims allow it, though the daemon and ``sentinella dispatch`` only dispatch while
holding the sender lease) may interleave one member's alerts. ``now`` is the run's single clock reading:
``sent_at`` and retry times are computed from it, however long the run takes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from notifier import catalogue
from notifier.config import DeliveryConfig
from notifier.delivery.channels import Channel, Permanent, RecipientGone, Retryable
from notifier.messages.alerts import Alert, CallLike
from storage import notices, outbox, planning
from storage.db import Database
from storage.outbox import OutboxRow, Recipient

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DispatchReport:
    """What one run did. ``returned`` rows went back to the outbox unsent (stop, ordering)."""

    released_stale: int = 0
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    #: Rows settled without a send: ``given_up`` on an error (permanent, or attempts exhausted),
    #: ``blocked`` (the member's chat is gone, 403) or ``skipped`` (member paused, disabled …).
    dead: int = 0
    given_up: int = 0
    blocked: int = 0
    skipped: int = 0
    returned: int = 0
    #: Rows being sent by other live processes now, by owner (``""``: rows without an owner).
    held_by_others: dict[str, int] = field(default_factory=dict)
    #: 429 answers received (and honoured) during the run.
    throttled: int = 0
    #: Members whose Telegram channel was switched off (403).
    gone: list[int] = field(default_factory=list)
    #: Channels found unreachable in this run.
    down: list[str] = field(default_factory=list)
    by_channel: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    #: One line per failure, for logs and the CLI (no secrets: channels redact them).
    errors: list[str] = field(default_factory=list)
    stopped: bool = False

    def count(self, channel: str, outcome: str) -> None:
        self.by_channel[channel][outcome] += 1

    @property
    def all_delivered(self) -> bool:
        """Everything deliverable went out: nothing failed or was given up on an error (blocked
        chats, skipped rows and rows other processes hold do not count against it)."""
        return not self.failed and not self.given_up

    def summary(self) -> str:
        text = (
            f"claimed {self.claimed}, sent {self.sent}, failed {self.failed}, dead {self.dead}"
            f" ({self.given_up} given up, {self.blocked} blocked chats, {self.skipped} skipped), "
            f"returned {self.returned}, stale released {self.released_stale}"
        )
        if self.throttled:
            text += f", 429 honoured {self.throttled}"
        held = sum(self.held_by_others.values())
        if held:
            text += f", {held} being sent by other processes"
        return text


class _Run:
    """State of one dispatch run, shared by the per-recipient tasks."""

    def __init__(
        self,
        db: Database,
        channels: Mapping[str, Channel],
        *,
        now: datetime,
        config: DeliveryConfig,
        stop: asyncio.Event | None,
    ) -> None:
        self.db = db
        self.channels = channels
        self.now = now
        self.config = config
        self.stop = stop
        self.report = DispatchReport()
        self.unsettled: dict[int, OutboxRow] = {}
        self.down: dict[str, datetime] = {}
        self.recipients: dict[int, Recipient] = {}
        self.calls: dict[int, CallLike] = {}
        self.feedback: dict[tuple[int, int], str] = {}
        #: Transport failures in a row per channel (reset by a confirmed send), the last error.
        self.failures_in_row: Counter[str] = Counter()
        self.last_failure: dict[str, str] = {}

    def stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    # --- outcomes ---------------------------------------------------------------------------

    async def settle_sent(self, row: OutboxRow, receipt: str) -> None:
        # In a worker thread: a send is confirmed some 28 times a second, and the event loop
        # must not stop for each write, or the rate limiter's next slot comes late and is lost.
        await asyncio.to_thread(outbox.mark_sent, self.db, row.id, now=self.now, receipt=receipt)
        self.unsettled.pop(row.id, None)
        self.failures_in_row[row.channel] = 0
        self.report.sent += 1
        self.report.count(row.channel, "sent")

    def settle_failed(self, row: OutboxRow, error: str, after: float | None) -> datetime:
        self.unsettled.pop(row.id, None)
        if row.attempts >= self.config.max_attempts:
            self.settle_dead(
                row, f"gave up after {row.attempts} attempts: {error}", kind="given_up", popped=True
            )
            return self.now
        # Told when to come back (Telegram's retry_after): then, not the backoff meant for
        # failures of the message itself.
        wait = after if after is not None else self.config.backoff(row.attempts)
        retry_at = self.now + timedelta(seconds=wait)
        outbox.mark_failed(self.db, row.id, now=self.now, error=error, retry_at=retry_at)
        self.report.failed += 1
        self.report.count(row.channel, "failed")
        self.report.errors.append(f"row {row.id} ({row.channel}): {error}")
        return retry_at

    def settle_dead(self, row: OutboxRow, error: str, *, kind: str, popped: bool = False) -> None:
        """``kind``: ``given_up`` (an error: admins are told), ``blocked`` or ``skipped``."""
        if not popped:
            self.unsettled.pop(row.id, None)
        outbox.mark_dead(self.db, row.id, now=self.now, error=error)
        self.report.dead += 1
        setattr(self.report, kind, getattr(self.report, kind) + 1)
        self.report.count(row.channel, "dead" if kind == "given_up" else kind)
        self.report.errors.append(f"row {row.id} ({row.channel}): {error}")
        if kind == "given_up":
            _raise_notice(
                self.db,
                f"delivery-dead:{row.channel}",
                catalogue.notice(
                    "notice.delivery_dead",
                    channel=row.channel,
                    row=row.id,
                    member=row.member_id,
                    call=row.call_id,
                    error=error,
                ),
                now=self.now,
            )

    def give_back(self, rows: Sequence[OutboxRow], not_before: datetime | None = None) -> None:
        ids = [r.id for r in rows if r.id in self.unsettled]
        if not ids:
            return
        self.report.returned += outbox.release(self.db, ids, now=self.now, not_before=not_before)
        for id_ in ids:
            self.unsettled.pop(id_, None)

    def recipient_gone(self, row: OutboxRow, recipient: Recipient, error: str) -> None:
        if outbox.switch_off_telegram(self.db, recipient.member_id, now=self.now):
            self.report.gone.append(recipient.member_id)
            _raise_notice(
                self.db,
                _gone_key(recipient.member_id),
                catalogue.notice(
                    "notice.telegram_gone", name=recipient.name, member=recipient.member_id, error=error[:200]
                ),
                now=self.now,
            )
        self.settle_dead(row, f"recipient gone: {error}", kind="blocked")

    def channel_down(self, name: str, until: datetime) -> None:
        if name not in self.down:
            self.report.down.append(name)
            failures = self.failures_in_row[name]
            _raise_notice(
                self.db,
                f"delivery-down:{name}",
                catalogue.notice(
                    "notice.channel_down",
                    channel=name,
                    failures=failures,
                    error=self.last_failure.get(name, "?"),
                ),
                now=self.now,
            )
        self.down[name] = max(until, self.down.get(name, until))

    # --- sending ------------------------------------------------------------------------------

    def skip_reason(self, row: OutboxRow) -> str | None:
        """Why a row cannot be sent at all (then it is given up without a send), or None."""
        recipient = self.recipients.get(row.member_id)
        if recipient is None:
            return "skipped: the member no longer exists"
        if not recipient.active:
            return "skipped: the member is disabled"
        if recipient.paused:
            return "skipped: the member paused alerts"
        if row.call_id not in self.calls:
            return "skipped: the call no longer exists"
        if self.feedback.get((row.member_id, row.group_id)) == "not_for_us":
            # "Non per noi" stops every further message about the call, queued ones included.
            return 'skipped: the member answered "not for us"'
        if row.channel == "telegram" and (recipient.telegram_chat_id is None or not recipient.telegram_ok):
            return "skipped: the member's Telegram channel is off"
        if row.channel == "email" and not recipient.email:
            return "skipped: the member has no e-mail address"
        return None

    async def serve(self, rows: list[OutboxRow], semaphore: asyncio.Semaphore) -> None:
        """Send one recipient's rows in order."""
        async with semaphore:
            for index, row in enumerate(rows):
                if self.stopping():
                    return
                if row.channel in self.down:
                    self.give_back(rows[index:], self.down[row.channel])
                    return
                held_until = await self.send_one(row)
                if held_until is not None:
                    self.give_back(rows[index + 1 :], held_until)
                    return

    async def send_one(self, row: OutboxRow) -> datetime | None:
        """Send a row and record the outcome; a datetime means "hold this recipient until then"."""
        skip = self.skip_reason(row)
        if skip is not None:
            self.settle_dead(row, skip, kind="skipped")
            return None
        recipient = self.recipients[row.member_id]
        channel = self.channels[row.channel]
        alert = Alert(
            outbox_id=row.id,
            reason=row.reason,
            channel=row.channel,
            recipient=recipient,
            call=self.calls[row.call_id],
            payload=row.payload,
            now=self.now,
            group_id=row.group_id,
        )
        try:
            receipt = await channel.send(alert)
        except RecipientGone as exc:
            if row.channel == "telegram":
                self.recipient_gone(row, recipient, exc.reason)
                # The recipient's later rows are given up on their turn (see skip_reason).
                self.recipients[row.member_id] = replace(recipient, telegram_ok=False)
            else:
                self.settle_dead(row, f"recipient gone: {exc.reason}", kind="blocked")
            return None
        except Permanent as exc:
            self.settle_dead(row, exc.reason, kind="given_up")
            return None
        except Retryable as exc:
            retry_at = self.settle_failed(row, exc.reason, exc.after)
            if exc.transport:
                self.failures_in_row[row.channel] += 1
                self.last_failure[row.channel] = exc.reason
            if exc.channel_down or self.failures_in_row[row.channel] >= self.config.down_after_failures:
                self.channel_down(row.channel, retry_at)
            return retry_at
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug (rendering, a channel) must not stop the run or lose the row: retry later.
            log.exception("unexpected error sending outbox row %s", row.id)
            return self.settle_failed(row, f"unexpected error: {type(exc).__name__}: {exc}", None)
        await self.settle_sent(row, receipt)
        return None


def _gone_key(member_id: int) -> str:
    return f"telegram-gone:{member_id}"


def telegram_back(db: Database, member_id: int, name: str, *, now: datetime) -> bool:
    """A member whose chat was switched off (403) wrote to the bot again: Telegram is on again,
    and admins are told it recovered. True if it was off."""
    if not outbox.switch_on_telegram(db, member_id, now=now):
        return False
    try:
        notices.clear_notice(
            db,
            _gone_key(member_id),
            now=now,
            message=catalogue.notice("notice.telegram_back", name=name, member=member_id),
        )
    except Exception:
        log.exception("could not clear the admin notice %s", _gone_key(member_id))
    return True


def _raise_notice(db: Database, key: str, message: str, *, now: datetime) -> None:
    # A notice that cannot be written must not cost the bookkeeping of the sends around it.
    try:
        notices.raise_notice(db, key, message, now=now)
    except Exception:
        log.exception("could not raise the admin notice %s", key)


def _clear_notices(db: Database, report: DispatchReport, *, now: datetime) -> None:
    """A channel that sent in this run with no failure has recovered: tell admins once, saying
    what recovered."""
    for name, counts in report.by_channel.items():
        if counts["sent"] and not counts["failed"] and not counts["dead"] and name not in report.down:
            recovered = {
                f"delivery-down:{name}": catalogue.notice(
                    "notice.channel_up", channel=name, sent=counts["sent"]
                ),
                f"delivery-dead:{name}": catalogue.notice(
                    "notice.channel_clean", channel=name, sent=counts["sent"]
                ),
            }
            for key, message in recovered.items():
                try:
                    notices.clear_notice(db, key, now=now, message=message)
                except Exception:
                    log.exception("could not clear the admin notice %s", key)


def _load(run: _Run, rows: Sequence[OutboxRow]) -> None:
    from storage.calls import get_calls

    run.recipients = outbox.recipients(run.db, {r.member_id for r in rows})
    run.calls = {c.id: c for c in get_calls(run.db, sorted({r.call_id for r in rows}))}
    run.feedback = planning.feedback_for_groups(run.db, {r.group_id for r in rows})


async def dispatch(
    db: Database,
    channels: Mapping[str, Channel],
    *,
    now: datetime,
    limit: int | None = None,
    stop: asyncio.Event | None = None,
    config: DeliveryConfig | None = None,
    owner: str | None = None,
) -> DispatchReport:
    """Send up to ``limit`` due alerts through ``channels`` (keyed by outbox channel name).

    ``owner`` is this process's worker id (:mod:`storage.leases`), whose heartbeat the caller
    keeps renewing during the run; without one, claims fall back to the stale-claim timeout.
    """
    config = config or DeliveryConfig()
    limit = config.batch_limit if limit is None else limit
    run = _Run(db, channels, now=now, config=config, stop=stop)
    report = run.report
    report.released_stale = outbox.release_orphans(
        db, now=now, older_than=timedelta(seconds=config.stale_claim_seconds)
    )
    report.held_by_others = outbox.held_by_others(db, owner)
    if run.stopping() or not channels:
        report.stopped = run.stopping()
        return report
    rows = outbox.claim_due(db, now=now, limit=limit, channel=sorted(channels), owner=owner)
    report.claimed = len(rows)
    if not rows:
        return report
    throttled_before = _throttled(channels)
    run.unsettled = {r.id: r for r in rows}
    tasks: list[asyncio.Task[None]] = []
    try:
        _load(run, rows)
        by_recipient: dict[tuple[str, int], list[OutboxRow]] = defaultdict(list)
        for row in sorted(rows, key=lambda r: r.id):
            by_recipient[(row.channel, row.member_id)].append(row)
        semaphore = asyncio.Semaphore(config.concurrency)
        tasks = [asyncio.create_task(run.serve(group, semaphore)) for group in by_recipient.values()]
        await _wait(tasks, stop, config.stop_grace_seconds)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        # Whatever was claimed and not settled (stop, cancellation, an error) goes back.
        leftover = list(run.unsettled.values())
        if leftover:
            report.returned += outbox.release(db, [r.id for r in leftover], now=now)
            run.unsettled.clear()
        report.stopped = run.stopping()
        report.throttled = _throttled(channels) - throttled_before
        for name in {r.channel for r in rows}:
            channel = channels.get(name)
            if channel is not None:
                try:
                    await channel.end_batch()
                except Exception:
                    log.exception("closing the %s batch failed", name)
    _clear_notices(db, report, now=now)
    if report.sent or report.failed or report.dead:
        log.info("dispatch: %s", report.summary())
    return report


def _throttled(channels: Mapping[str, Channel]) -> int:
    """429s the channels have honoured so far (only Telegram's count them)."""
    unique = {id(ch): ch for ch in channels.values()}
    return sum(int(getattr(ch, "throttled", 0)) for ch in unique.values())


async def _wait(tasks: list[asyncio.Task[None]], stop: asyncio.Event | None, grace: float) -> None:
    """Wait for the tasks; once ``stop`` is set, give them ``grace`` seconds, then cancel them."""
    if not tasks:
        return
    if stop is None:
        await asyncio.gather(*tasks)
        return
    stopper = asyncio.create_task(stop.wait())
    try:
        pending: set[asyncio.Task[Any]] = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending | {stopper}, return_when=asyncio.FIRST_COMPLETED)
            pending.discard(stopper)
            for task in done:
                if task is not stopper and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if stopper in done:
                break
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
    finally:
        stopper.cancel()
        await asyncio.gather(stopper, return_exceptions=True)
