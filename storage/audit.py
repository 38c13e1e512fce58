"""The audit log: who did what (invitations, role changes, deletions, sign-in links), capped.

The audit log names people by member id (:func:`member_actor`), never by chat id or e-mail; a
chat bound to no member is named by a hash prefix of its id (:func:`chat_actor`). Known limit:
chat ids are short numbers, so that hash can be reversed by trying them all; it keeps ids out of
sight, it is not a guarantee of anonymity for chats that never joined. Deleting a member
(:func:`storage.members.delete_member`) rewrites their entries' actor to :data:`DELETED_ACTOR`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select

from storage.db import Database
from storage.models import ROLES, AuditLog

_audit = cast(Table, AuditLog.__table__)

#: Caps on what the audit log keeps: admins type free text into it.
MAX_AUDIT_ACTOR = 200
MAX_AUDIT_TEXT = 2_000
#: The actor of audit entries whose member deleted their data.
DELETED_ACTOR = "deleted-member"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


def _cap(value: Any) -> Any:
    if isinstance(value, str):
        return value[:MAX_AUDIT_TEXT]
    if isinstance(value, Mapping):
        return {str(k)[:200]: _cap(v) for k, v in list(value.items())[:100]}
    if isinstance(value, (list, tuple)):
        return [_cap(v) for v in value[:100]]
    return value


def member_actor(member_id: int, role: str = "member") -> str:
    """How the audit log names a member: ``member:12``, ``staff:12`` or ``admin:12``."""
    return f"{role if role in ROLES else 'member'}:{member_id}"


def chat_actor(chat_id: int) -> str:
    """How the audit log names a chat bound to no member: ``chat:`` and 12 hex digits of the
    SHA-256 of its id (entries can be told apart without writing the id down)."""
    return "chat:" + hashlib.sha256(str(chat_id).encode()).hexdigest()[:12]


def audit(db: Database, actor: str, action: str, detail: Mapping[str, Any], *, now: datetime) -> None:
    """Append one entry to the audit log (``detail`` JSON-safe; long texts are cut).

    ``actor`` names who did it without personal data: :func:`member_actor`, :func:`chat_actor`,
    ``"cli"`` and the like; never a chat id or an e-mail address."""
    with db.engine.begin() as conn:
        conn.execute(
            insert(_audit).values(
                at=now, actor=actor[:MAX_AUDIT_ACTOR], action=action[:64], detail=_cap(detail)
            )
        )


def audit_log(db: Database, *, limit: int = 50, action: str | None = None) -> list[AuditEntry]:
    """The latest entries, newest first."""
    query = select(_audit).order_by(_audit.c.id.desc()).limit(limit)
    if action is not None:
        query = query.where(_audit.c.action == action)
    with db.engine.connect() as conn:
        return [
            AuditEntry(row["id"], row["at"], row["actor"], row["action"], dict(row["detail"]))
            for row in conn.execute(query).mappings()
        ]
