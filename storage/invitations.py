"""Invitations: single-use codes that bind a Telegram chat to a member, or create one.

Invitations: the code is 128 random bits (``secrets``, URL-safe so it fits a Telegram
``/start`` deep link) and only its SHA-256 is stored, so a database dump does not leak usable
codes. A code works once, until it expires; redeeming is one conditional ``UPDATE … WHERE
used_at IS NULL``, so two chats racing on one code cannot both win. A code made for a known
member binds the redeeming chat to that member; otherwise it creates a member with the code's
role, or gives that role to the member already bound to the chat.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, cast

from sqlalchemy import Table, delete, func, insert, select, update

from storage.audit import MAX_AUDIT_ACTOR, _audit, chat_actor, member_actor
from storage.db import Database
from storage.members import MAX_NAME, MemberView, _check_role, _clean, _member, _members
from storage.models import Invitation, InvitationFailure

_invitations = cast(Table, Invitation.__table__)
_failures = cast(Table, InvitationFailure.__table__)


class InvitationError(ValueError):
    """An invitation code cannot be redeemed. ``kind``: unknown, used, expired or conflict
    (the code binds a member but the chat already belongs to another one)."""

    def __init__(self, kind: Literal["unknown", "used", "expired", "conflict"], message: str = "") -> None:
        super().__init__(message or f"invitation {kind}")
        self.kind = kind


@dataclass(frozen=True, slots=True)
class InvitationView:
    id: int
    role: str
    member_id: int | None
    created_by: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    used_by_member_id: int | None


def token_hash(token: str) -> str:
    """What storage keeps of a secret code or token (invitations, sign-in links, calendar feeds)."""
    return hashlib.sha256(token.strip().encode("utf-8")).hexdigest()


def create_invitation(
    db: Database,
    *,
    role: str,
    now: datetime,
    ttl: timedelta,
    created_by: str,
    member_id: int | None = None,
) -> str:
    """Make a one-time code valid for ``ttl``; returns the code (only its hash is stored)."""
    _check_role(role)
    if ttl <= timedelta(0):
        raise ValueError("an invitation needs a positive lifetime")
    code = secrets.token_urlsafe(16)
    with db.engine.begin() as conn:
        conn.execute(
            insert(_invitations).values(
                code_hash=token_hash(code),
                role=role,
                member_id=member_id,
                created_by=created_by[:MAX_AUDIT_ACTOR],
                created_at=now,
                expires_at=now + ttl,
            )
        )
    return code


def redeem_invitation(
    db: Database, code: str, *, chat_id: int, now: datetime, name: str, language: str = "it"
) -> MemberView:
    """Use a code for a Telegram chat: returns the member now bound to that chat.

    Raises :class:`InvitationError` with kind ``unknown``, ``used``, ``expired`` or ``conflict``;
    only a successful redemption consumes the code.
    """
    with db.engine.begin() as conn:
        inv = (
            conn.execute(select(_invitations).where(_invitations.c.code_hash == token_hash(code)))
            .mappings()
            .first()
        )
        if inv is None:
            raise InvitationError("unknown")
        if inv["used_at"] is not None:
            raise InvitationError("used")
        if inv["expires_at"] <= now:
            raise InvitationError("expired")
        by_chat = (
            conn.execute(select(_members).where(_members.c.telegram_chat_id == chat_id)).mappings().first()
        )
        target_id = inv["member_id"]
        if target_id is not None and by_chat is not None and by_chat["id"] != target_id:
            raise InvitationError(
                "conflict",
                f"chat {chat_id} already belongs to member {by_chat['id']}, the code to {target_id}",
            )
        claimed = conn.execute(
            update(_invitations)
            .where(_invitations.c.id == inv["id"], _invitations.c.used_at.is_(None))
            .values(used_at=now)
        ).rowcount
        if not claimed:
            raise InvitationError("used")
        if target_id is not None:
            conn.execute(
                update(_members)
                .where(_members.c.id == target_id)
                .values(
                    telegram_chat_id=chat_id, role=inv["role"], active=True, telegram_ok=True, updated_at=now
                )
            )
            member_id = target_id
        elif by_chat is not None:
            conn.execute(
                update(_members)
                .where(_members.c.id == by_chat["id"])
                .values(role=inv["role"], active=True, telegram_ok=True, updated_at=now)
            )
            member_id = by_chat["id"]
        else:
            member_id = conn.execute(
                insert(_members)
                .values(
                    name=_clean(name, MAX_NAME) or f"Telegram {chat_id}",
                    role=inv["role"],
                    telegram_chat_id=chat_id,
                    language=language,
                    created_at=now,
                    updated_at=now,
                )
                .returning(_members.c.id)
            ).scalar_one()
        conn.execute(
            update(_invitations).where(_invitations.c.id == inv["id"]).values(used_by_member_id=member_id)
        )
        conn.execute(
            insert(_audit).values(
                at=now,
                actor=member_actor(member_id, inv["role"]),
                action="invitation.redeem",
                detail={"invitation_id": inv["id"], "member_id": member_id, "role": inv["role"]},
            )
        )
        return _member(conn.execute(select(_members).where(_members.c.id == member_id)).mappings().one())


def invitation_brake(
    db: Database, chat_id: int, *, now: datetime, window: timedelta, per_chat: int, overall: int
) -> Literal["chat", "overall"] | None:
    """Whether invitation codes from ``chat_id`` must wait: ``"chat"`` after ``per_chat`` failed
    codes from it within ``window``, ``"overall"`` after ``overall`` failed codes from anyone
    (guessing spread over many chats); None when the code may be tried."""
    since = now - window
    with db.engine.connect() as conn:
        mine = conn.execute(
            select(func.count())
            .select_from(_failures)
            .where(_failures.c.chat == chat_actor(chat_id), _failures.c.at > since)
        ).scalar_one()
        if mine >= per_chat:
            return "chat"
        everyone = conn.execute(
            select(func.count()).select_from(_failures).where(_failures.c.at > since)
        ).scalar_one()
    return "overall" if everyone >= overall else None


def record_invitation_failure(db: Database, chat_id: int, *, now: datetime, keep: timedelta) -> None:
    """Count one failed code from ``chat_id``; failures older than ``keep`` are dropped."""
    with db.engine.begin() as conn:
        conn.execute(delete(_failures).where(_failures.c.at <= now - keep))
        conn.execute(insert(_failures).values(chat=chat_actor(chat_id), at=now))


def clear_invitation_failures(db: Database, chat_id: int) -> None:
    """Forget the failed codes of a chat that has just joined."""
    with db.engine.begin() as conn:
        conn.execute(delete(_failures).where(_failures.c.chat == chat_actor(chat_id)))


def list_invitations(db: Database, *, now: datetime, include_spent: bool = False) -> list[InvitationView]:
    """Invitations still usable at ``now`` (or all of them with ``include_spent``), newest first."""
    query = select(_invitations).order_by(_invitations.c.id.desc())
    if not include_spent:
        query = query.where(_invitations.c.used_at.is_(None), _invitations.c.expires_at > now)
    with db.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        InvitationView(**{name: row[name] for name in InvitationView.__dataclass_fields__}) for row in rows
    ]
