"""Web access: one-time sign-in links to the staff board and members' calendar feeds.

Sign-in links work like invitations (:mod:`storage.members`): the token is 256 random bits and
only its SHA-256 is stored, so a database dump holds no usable link. A link works once, until it
expires; redeeming is one conditional ``UPDATE … WHERE used_at IS NULL``, so two browsers racing
on one link cannot both sign in. :func:`links_made_since` lets the caller brake how many links
one member asks for. Expired links are deleted by :func:`storage.housekeeping.prune`.

Calendar feeds: the secret token of a member's feed URL is made by the web package (from its
signing key, the member and a version) and only its hash is stored here, with the version, so
the same link can be given again and rotating it (a new version) retires the old URL at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, cast

from sqlalchemy import Table, func, insert, select, update

from storage._bulk import conflict_insert
from storage.db import Database
from storage.invitations import token_hash
from storage.models import CalendarFeed, Member, WebLink

_links = cast(Table, WebLink.__table__)
_feeds = cast(Table, CalendarFeed.__table__)
_members = cast(Table, Member.__table__)


class LinkError(ValueError):
    """A sign-in link cannot be used. ``kind``: unknown, used or expired."""

    def __init__(self, kind: Literal["unknown", "used", "expired"]) -> None:
        super().__init__(f"sign-in link {kind}")
        self.kind = kind


@dataclass(frozen=True, slots=True)
class LinkView:
    """What a sign-in link is, without consuming it (the confirmation page shows it)."""

    member_id: int
    expires_at: datetime
    used: bool


def create_signin_link(db: Database, member_id: int, *, now: datetime, ttl: timedelta) -> str:
    """Make a one-time sign-in token valid for ``ttl``; returns it (only its hash is stored)."""
    if ttl <= timedelta(0):
        raise ValueError("a sign-in link needs a positive lifetime")
    token = secrets.token_urlsafe(32)
    with db.engine.begin() as conn:
        conn.execute(
            insert(_links).values(
                token_hash=token_hash(token), member_id=member_id, created_at=now, expires_at=now + ttl
            )
        )
    return token


def links_made_since(db: Database, member_id: int, since: datetime) -> int:
    """How many sign-in links the member was given at or after ``since``."""
    with db.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(_links)
                .where(_links.c.member_id == member_id, _links.c.created_at >= since)
            ).scalar_one()
        )


def peek_signin_link(db: Database, token: str) -> LinkView | None:
    """The link a token names, unchanged (None when unknown)."""
    with db.engine.connect() as conn:
        row = conn.execute(select(_links).where(_links.c.token_hash == token_hash(token))).mappings().first()
    if row is None:
        return None
    return LinkView(row["member_id"], row["expires_at"], row["used_at"] is not None)


def redeem_signin_link(db: Database, token: str, *, now: datetime) -> int:
    """Use a sign-in token: returns the member id. Raises :class:`LinkError` (unknown, used,
    expired); only a successful redemption consumes it."""
    digest = token_hash(token)
    with db.engine.begin() as conn:
        row = conn.execute(select(_links).where(_links.c.token_hash == digest)).mappings().first()
        if row is None:
            raise LinkError("unknown")
        if row["used_at"] is not None:
            raise LinkError("used")
        if row["expires_at"] <= now:
            raise LinkError("expired")
        claimed = conn.execute(
            update(_links).where(_links.c.id == row["id"], _links.c.used_at.is_(None)).values(used_at=now)
        ).rowcount
        if not claimed:
            raise LinkError("used")
        return int(row["member_id"])


# --- calendar feeds -----------------------------------------------------------------------------


def calendar_version(db: Database, member_id: int) -> int | None:
    """The version of the member's feed token; None when the member never had a feed."""
    with db.engine.connect() as conn:
        value = conn.execute(select(_feeds.c.version).where(_feeds.c.member_id == member_id)).scalar()
    return None if value is None else int(value)


def set_calendar_token(db: Database, member_id: int, *, version: int, token: str, now: datetime) -> None:
    """Store the hash of the member's feed token at ``version`` (replacing the previous one)."""
    with db.engine.begin() as conn:
        stmt = conflict_insert(db.dialect, _feeds).values(
            member_id=member_id, token_hash=token_hash(token), version=version, created_at=now
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[_feeds.c.member_id],
                set_={"token_hash": stmt.excluded.token_hash, "version": stmt.excluded.version,
                      "created_at": stmt.excluded.created_at},
            )
        )  # fmt: skip


def calendar_member(db: Database, token: str) -> int | None:
    """The active member whose current feed token this is; None otherwise."""
    with db.engine.connect() as conn:
        value = conn.execute(
            select(_feeds.c.member_id)
            .join(_members, _members.c.id == _feeds.c.member_id)
            .where(_feeds.c.token_hash == token_hash(token), _members.c.active.is_(True))
        ).scalar()
    return None if value is None else int(value)


__all__ = [
    "LinkError",
    "LinkView",
    "calendar_member",
    "calendar_version",
    "create_signin_link",
    "links_made_since",
    "peek_signin_link",
    "redeem_signin_link",
    "set_calendar_token",
]
