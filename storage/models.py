"""The database schema: SQLAlchemy 2.0 typed models for every table Sentinella keeps.

The schema is the same on SQLite and PostgreSQL. Two portable types make that true:

* ``AwareDateTime`` stores instants in UTC (``timestamptz`` on PostgreSQL, ISO text on SQLite)
  and always hands back aware datetimes, so nothing downstream ever sees a naive one.
* Money is stored as integer euro cents (``BigInteger``), never as float.

Lists and small documents (deadlines, beneficiaries, profile data, the raw payload) are JSON.
Migrations live in ``storage/migrations`` and are generated from these models; a test checks
that the migrations and the models agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import JSON, TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class AwareDateTime(TypeDecorator[datetime]):
    """An instant: stored in UTC, returned aware (UTC). Naive input is refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: JSON on SQLite, JSONB on PostgreSQL.
Json = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: AwareDateTime(),
        dict[str, Any]: Json,
        list[Any]: Json,
    }


class DuplicateGroup(Base):
    """Calls that are the same call published on several portals. Every call has a group."""

    __tablename__ = "duplicate_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    canonical_call_id: Mapped[int | None] = mapped_column(
        ForeignKey("calls.id", use_alter=True, ondelete="SET NULL")
    )
    created_at: Mapped[datetime]
    #: Why members were joined: e.g. {"rule": "shared-link", "value": "..."}; empty for singletons.
    reason: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        Index("ix_calls_closes_at", "closes_at"),
        Index("ix_calls_status", "status"),
        Index("ix_calls_group_id", "group_id"),
        Index("ix_calls_title_key", "title_key"),
        Index("ix_calls_last_changed", "last_changed"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(8), default="it")
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    published_at: Mapped[datetime | None]
    published_precision: Mapped[str | None] = mapped_column(String(8))
    opens_at: Mapped[datetime | None]
    opens_precision: Mapped[str | None] = mapped_column(String(8))
    closes_at: Mapped[datetime | None]
    closes_precision: Mapped[str | None] = mapped_column(String(8))
    #: Every stage deadline: [{"at": iso, "precision": "date"|"datetime", "label": str}].
    deadlines: Mapped[list[Any]] = mapped_column(Json, default=list)
    sportello: Mapped[bool] = mapped_column(Boolean, default=False)
    budget_total_cents: Mapped[int | None] = mapped_column(BigInteger)
    contribution_min_cents: Mapped[int | None] = mapped_column(BigInteger)
    contribution_max_cents: Mapped[int | None] = mapped_column(BigInteger)
    beneficiaries: Mapped[list[Any]] = mapped_column(Json, default=list)
    programme: Mapped[str] = mapped_column(Text, default="")
    funding_source: Mapped[str] = mapped_column(Text, default="")
    granting_body: Mapped[str] = mapped_column(Text, default="")
    regions: Mapped[list[Any]] = mapped_column(Json, default=list)
    ateco_codes: Mapped[list[Any]] = mapped_column(Json, default=list)
    keywords: Mapped[list[Any]] = mapped_column(Json, default=list)
    support_forms: Mapped[list[Any]] = mapped_column(Json, default=list)
    attachments: Mapped[list[Any]] = mapped_column(Json, default=list)
    links: Mapped[list[Any]] = mapped_column(Json, default=list)
    raw: Mapped[dict[str, Any] | None] = mapped_column(Json)
    content_hash: Mapped[str] = mapped_column(String(64))
    #: Normalised title used to find the same call on another portal.
    title_key: Mapped[str] = mapped_column(String(255), default="")
    #: Lower-case, accent-free text of title, summary, programme, granting body and description:
    #: the same substring search on SQLite and PostgreSQL (neither folds accents by itself).
    search_text: Mapped[str] = mapped_column(Text, default="")
    group_id: Mapped[int | None] = mapped_column(ForeignKey("duplicate_groups.id", ondelete="SET NULL"))
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    last_changed: Mapped[datetime]
    #: call | notice | partner_search (:data:`storage.records.KINDS`): only calls are matched as
    #: calls; notices go to the staff digest, partner searches to members who asked for them.
    kind: Mapped[str] = mapped_column(String(16), default="call", server_default="call")


class CallEvent(Base):
    """Something that happened to a call: new, changed (with the field diff), reopened, closed."""

    __tablename__ = "call_events"
    __table_args__ = (Index("ix_call_events_call_id", "call_id"), Index("ix_call_events_at", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    #: {"field": {"old": ..., "new": ...}} for "changed"/"reopened"/"closed"; {} for "new".
    changes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class CallAct(Base):
    """An official act or document about a call (a BURL decree, a PDF on a call's page), once.

    ``call_id`` is the call it was linked to (None: linked to nothing, a notice for the staff
    digest); ``confidence`` says how sure the link is and ``rule`` how it was made; ``event_id`` is
    the event it caused on that call. See ``storage.acts``.
    """

    __tablename__ = "call_acts"
    __table_args__ = (
        UniqueConstraint("source", "act_id"),
        Index("ix_call_acts_call_id", "call_id"),
        Index("ix_call_acts_recorded_at", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    act_id: Mapped[str] = mapped_column(String(255))
    #: proroga | riapertura | rettifica | graduatoria | documento | altro
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime | None]
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    #: certo | probabile | possibile, or "" when not linked
    confidence: Mapped[str] = mapped_column(String(16), default="")
    #: code | decree | title | page, or "" when not linked
    rule: Mapped[str] = mapped_column(String(16), default="")
    event_id: Mapped[int | None] = mapped_column(ForeignKey("call_events.id", ondelete="SET NULL"))
    #: What was read from the act (references, the new deadline) and what was done with it.
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    recorded_at: Mapped[datetime]


class CallLink(Base):
    """A normalised link of a call (its own page, ``own``, or one it points to): the shared-link
    rule of duplicate detection looks calls up here (see ``storage.groups``)."""

    __tablename__ = "call_links"
    __table_args__ = (Index("ix_call_links_key", "key"),)

    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(500), primary_key=True)
    own: Mapped[bool] = mapped_column(Boolean, default=False)


class Source(Base):
    """Per-source crawl state (urlwatch style): validators, failures, health."""

    __tablename__ = "sources"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_run_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_outcome: Mapped[str | None] = mapped_column(String(16))
    last_yield: Mapped[int | None] = mapped_column(Integer)
    #: Yield of the last run that was not degraded: the baseline for the "half of last" rule.
    last_good_yield: Mapped[int | None] = mapped_column(Integer)
    degraded: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Whether admins have been told of the current failure streak (told once, again on recovery).
    failure_reported: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Source-specific memory, e.g. per-URL validators or SEDIA checksums by identifier.
    state: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class CrawlRun(Base):
    __tablename__ = "crawl_runs"
    __table_args__ = (Index("ix_crawl_runs_source_started", "source", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    #: running | ok | degraded | failed
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    seen: Mapped[int] = mapped_column(Integer, default=0)
    new: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Per-field validation shares, error samples, the reason for a degraded outcome.
    report: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


#: What a member may be: a member of the cluster, its staff, or an admin of Sentinella.
ROLES = ("member", "staff", "admin")


class Member(Base):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    organisation: Mapped[str] = mapped_column(Text, default="")
    #: member | staff | admin
    role: Mapped[str] = mapped_column(String(16), default="member")
    telegram_chat_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    language: Mapped[str] = mapped_column(String(8), default="it")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Switched off when Telegram answers 403 (bot blocked, chat gone).
    telegram_ok: Mapped[bool] = mapped_column(Boolean, default=True)
    digest_email: Mapped[bool] = mapped_column(Boolean, default=False)
    digest_telegram: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Profile(Base):
    """A member's matching profile, kept as one validated JSON document (see notifier)."""

    __tablename__ = "profiles"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    updated_at: Mapped[datetime]


class Invitation(Base):
    """A one-time onboarding code (only its hash is stored)."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="member")
    #: The member the code binds, when the admin invited a known member.
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    created_by: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))


class InvitationFailure(Base):
    """One failed invitation code (unknown, used, expired): the brake on guessing counts these,
    per chat and overall, so neither a restart nor a new chat resets it. The chat is kept as
    the audit log's hash (``storage.members.chat_actor``), never its id."""

    __tablename__ = "invitation_failures"
    __table_args__ = (
        Index("ix_invitation_failures_at", "at"),
        Index("ix_invitation_failures_chat", "chat", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime]


class AlertOutbox(Base):
    """One row per (member, call group, reason, channel): the unit of "exactly once"."""

    __tablename__ = "alert_outbox"
    __table_args__ = (
        UniqueConstraint("member_id", "group_id", "reason", "channel"),
        Index("ix_alert_outbox_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(ForeignKey("duplicate_groups.id", ondelete="CASCADE"))
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    #: new | changed:<event id> | reminder-open-24h | reminder-close-7d | reminder-close-1d ...
    reason: Mapped[str] = mapped_column(String(64))
    #: telegram | email | console
    channel: Mapped[str] = mapped_column(String(16))
    #: pending | sending | sent | failed | dead
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    #: Why it matched, the event diff: what the message needs besides the call.
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    #: The channel's receipt (Telegram message id, SMTP Message-ID).
    receipt: Mapped[str | None] = mapped_column(Text)
    #: The worker (``workers.id``) holding the row while it is ``sending``; its heartbeat keeps
    #: the claim alive (no foreign key: the worker row goes when the process ends).
    claimed_by: Mapped[str | None] = mapped_column(String(128))


class Feedback(Base):
    """A member's answer to an alert: interested (reminders on) or not_for_us (silence)."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("member_id", "group_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(ForeignKey("duplicate_groups.id", ondelete="CASCADE"))
    #: interested | not_for_us
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class AdminNotice(Base):
    """A condition admins are told about once when raised and once when cleared."""

    __tablename__ = "admin_notices"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    message: Mapped[str] = mapped_column(Text, default="")
    raised_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None]
    #: When admins were last told (raise or recovery); None = still to tell.
    notified_at: Mapped[datetime | None]


class Digest(Base):
    """One staff digest produced: its window, so the next covers what came after."""

    __tablename__ = "digests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    made_at: Mapped[datetime]
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    sent: Mapped[bool] = mapped_column(Boolean, default=False)
    summary: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class Cursor(Base):
    """A named position in an append-only stream, kept durably between runs.

    The alert planner keeps here the id of the last call event it turned into outbox rows
    (``name="alerts"``), so each event is planned once even across restarts.
    """

    __tablename__ = "cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


class WebLink(Base):
    """A one-time sign-in link to the web board (only the token's hash is stored)."""

    __tablename__ = "web_links"
    __table_args__ = (Index("ix_web_links_member_created", "member_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class CalendarFeed(Base):
    """A member's calendar feed: the hash of its secret URL token and the token's version
    (rotating the link bumps the version, so the old URL stops working)."""

    __tablename__ = "calendar_feeds"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]


class Worker(Base):
    """A live Sentinella process that takes part in shared work (a daemon, a ``dispatch``).

    It renews ``expires_at`` while it lives (its heartbeat); a row past ``expires_at`` is a
    process that died: its leases lapse and the outbox rows it claimed go back to the queue.
    """

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    #: run (a daemon) | dispatch (the CLI command)
    kind: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Lease(Base):
    """A role only one process may hold at a time (``sender``: the bot and the deliveries),
    held until ``expires_at`` and renewed by its holder; anyone may take an expired one."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class JobRun(Base):
    """One scheduled job at one due time: the row is the right to run it, taken by one process."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(128))
    due_at: Mapped[datetime]
    owner: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    #: ok | failed <error type> | stopped; None while running.
    outcome: Mapped[str | None] = mapped_column(String(128))
