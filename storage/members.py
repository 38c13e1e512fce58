"""Members and their profiles (invitations, feedback and the audit log have modules of their own:
:mod:`storage.invitations`, :mod:`storage.feedback`, :mod:`storage.audit`).

The people Sentinella serves and what they told it. Profiles are kept as one JSON document per
member: their shape and validation belong to ``notifier.matching.profiles`` (storage only stores dicts).

Identity: a member is found by e-mail (stored lower-cased) or by Telegram chat id, both unique.
:func:`upsert_member` updates the member either one names, so importing the same file twice
changes nothing; when the e-mail names one member and the chat id another it refuses
(:class:`MemberConflict`) rather than merge two people. Two concurrent upserts of a new member
race on the unique constraints: the loser retries once and then updates the winner's row.

Deleting a member removes their profile, feedback, outbox rows and pending invitations
(foreign keys cascade) and anonymises what the audit log kept of them: their earlier entries
lose the actor (it becomes :data:`DELETED_ACTOR`) and their detail, invitations they made lose
their author. The audit log names people by member id (:func:`member_actor`), never by chat id or
e-mail; a chat bound to no member is named by a hash prefix of its id (:func:`chat_actor`).
Known limit: chat ids are short numbers, so that hash can be reversed by trying them all; it
keeps ids out of sight, it is not a guarantee of anonymity for chats that never joined.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from storage._bulk import upsert
from storage.audit import DELETED_ACTOR, _audit, chat_actor, member_actor
from storage.db import Database
from storage.models import ROLES, Invitation, Member, Profile
from storage.records import ROME
from storage.sanitise import clean_text

_members = cast(Table, Member.__table__)
_profiles = cast(Table, Profile.__table__)
_invitations = cast(Table, Invitation.__table__)

MAX_NAME = 200
MAX_ORGANISATION = 200
MAX_EMAIL = 320

_UNSET: Any = object()


class MemberConflict(ValueError):
    """The e-mail and the chat id given belong to two different members."""


@dataclass(frozen=True, slots=True)
class MemberView:
    id: int
    name: str
    organisation: str
    role: str
    telegram_chat_id: int | None
    email: str | None
    language: str
    active: bool
    paused: bool
    telegram_ok: bool
    digest_email: bool
    digest_telegram: bool
    created_at: datetime
    updated_at: datetime

    @property
    def is_staff(self) -> bool:
        return self.role in ("staff", "admin")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _member(row: Mapping[Any, Any]) -> MemberView:
    values = {name: row[name] for name in MemberView.__dataclass_fields__}
    values["created_at"] = values["created_at"].astimezone(ROME)
    values["updated_at"] = values["updated_at"].astimezone(ROME)
    return MemberView(**values)


def normalise_email(email: str | None) -> str | None:
    """E-mail addresses are compared case-insensitively: stored stripped and lower-cased."""
    if email is None:
        return None
    email = email.strip().lower()
    return email or None


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (one of {', '.join(ROLES)})")


# --- members ----------------------------------------------------------------------------------


#: Telegram chat ids fit in 52 bits (the Bot API says so); the column is a 64-bit integer.
MAX_CHAT_ID = 2**52


def _check_chat_id(chat_id: int | None) -> None:
    if chat_id is not None and not -MAX_CHAT_ID <= chat_id <= MAX_CHAT_ID:
        raise ValueError(f"telegram chat id out of range: {str(chat_id)[:24]}")


def _clean(text: str, cap: int) -> str:
    """A name or organisation as stored: no control characters, trimmed, capped."""
    return clean_text(text).strip()[:cap]


def _find(conn: Connection, *, email: str | None, chat_id: int | None) -> list[Mapping[Any, Any]]:
    conditions = []
    if email is not None:
        conditions.append(_members.c.email == email)
    if chat_id is not None:
        conditions.append(_members.c.telegram_chat_id == chat_id)
    if not conditions:
        return []
    return list(conn.execute(select(_members).where(or_(*conditions)).order_by(_members.c.id)).mappings())


def upsert_member(
    db: Database,
    *,
    now: datetime,
    name: str,
    organisation: str = _UNSET,
    role: str = _UNSET,
    email: str | None = None,
    telegram_chat_id: int | None = None,
    language: str = _UNSET,
    active: bool | None = None,
) -> MemberView:
    """Create the member, or update the one with this e-mail or chat id (idempotent).

    What is not given keeps an existing member's value: ``organisation``, ``role`` and
    ``language`` (a new member gets "", "member" and "it"), ``active=None`` (new members are
    active), a chat id or e-mail. Raises :class:`MemberConflict` when the e-mail and the chat id
    belong to two different members, ValueError for a bad role or no identity at all.
    """
    if role is not _UNSET:
        _check_role(role)
    email = normalise_email(email)
    if email is None and telegram_chat_id is None:
        raise ValueError("a member needs an e-mail or a Telegram chat id")
    _check_chat_id(telegram_chat_id)
    values: dict[str, Any] = {"name": _clean(name, MAX_NAME)}
    if organisation is not _UNSET:
        values["organisation"] = _clean(organisation, MAX_ORGANISATION)
    if role is not _UNSET:
        values["role"] = role
    if language is not _UNSET:
        values["language"] = language
    defaults = {"organisation": "", "role": "member", "language": "it"}
    if email is not None:
        values["email"] = email[:MAX_EMAIL]
    if telegram_chat_id is not None:
        values["telegram_chat_id"] = telegram_chat_id
    for attempt in (1, 2):
        try:
            with db.engine.begin() as conn:
                found = _find(conn, email=email, chat_id=telegram_chat_id)
                if len(found) > 1:
                    raise MemberConflict(
                        f"e-mail {email} belongs to member {found[0]['id']} and chat id "
                        f"{telegram_chat_id} to member {found[1]['id']}"
                    )
                if found:
                    row = found[0]
                    changes = {k: v for k, v in values.items() if row[k] != v}
                    if active is not None and row["active"] != active:
                        changes["active"] = active
                    if changes:
                        changes["updated_at"] = now
                        conn.execute(update(_members).where(_members.c.id == row["id"]).values(**changes))
                    member_id = row["id"]
                else:
                    member_id = conn.execute(
                        insert(_members)
                        .values(
                            **(defaults | values),
                            active=True if active is None else active,
                            created_at=now,
                            updated_at=now,
                        )
                        .returning(_members.c.id)
                    ).scalar_one()
                return _member(
                    conn.execute(select(_members).where(_members.c.id == member_id)).mappings().one()
                )
        except IntegrityError:
            # Another writer inserted the same e-mail or chat id between our read and our
            # insert: the second pass finds and updates their row.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def update_member(
    db: Database,
    member_id: int,
    *,
    now: datetime,
    name: str = _UNSET,
    organisation: str = _UNSET,
    role: str = _UNSET,
    email: str | None = _UNSET,
    telegram_chat_id: int | None = _UNSET,
    language: str = _UNSET,
    active: bool = _UNSET,
    paused: bool = _UNSET,
    telegram_ok: bool = _UNSET,
    digest_email: bool = _UNSET,
    digest_telegram: bool = _UNSET,
) -> MemberView | None:
    """Change some attributes of a member (those passed); None when there is no such member.

    Raises :class:`MemberConflict` when the new e-mail or chat id belongs to someone else.
    """
    changes: dict[str, Any] = {
        key: value
        for key, value in {
            "name": name if name is _UNSET else _clean(name, MAX_NAME),
            "organisation": organisation
            if organisation is _UNSET
            else _clean(organisation, MAX_ORGANISATION),
            "role": role,
            "email": email if email is _UNSET else normalise_email(email),
            "telegram_chat_id": telegram_chat_id,
            "language": language,
            "active": active,
            "paused": paused,
            "telegram_ok": telegram_ok,
            "digest_email": digest_email,
            "digest_telegram": digest_telegram,
        }.items()
        if value is not _UNSET
    }
    if "role" in changes:
        _check_role(changes["role"])
    if telegram_chat_id is not _UNSET:
        _check_chat_id(telegram_chat_id)
    try:
        with db.engine.begin() as conn:
            if changes:
                changes["updated_at"] = now
                conn.execute(update(_members).where(_members.c.id == member_id).values(**changes))
            row = conn.execute(select(_members).where(_members.c.id == member_id)).mappings().first()
            return None if row is None else _member(row)
    except IntegrityError as exc:
        raise MemberConflict(
            f"the e-mail or chat id given to member {member_id} belongs to another member"
        ) from exc


def get_member(db: Database, member_id: int) -> MemberView | None:
    with db.engine.connect() as conn:
        row = conn.execute(select(_members).where(_members.c.id == member_id)).mappings().first()
    return None if row is None else _member(row)


def find_member(db: Database, *, email: str | None = None, chat_id: int | None = None) -> MemberView | None:
    """The member with this e-mail (case-insensitive) or this Telegram chat id."""
    if (email is None) == (chat_id is None):
        raise ValueError("give exactly one of email= or chat_id=")
    with db.engine.connect() as conn:
        found = _find(conn, email=normalise_email(email), chat_id=chat_id)
    return _member(found[0]) if found else None


def list_members(db: Database, *, role: str | None = None, active: bool | None = None) -> list[MemberView]:
    query = select(_members).order_by(_members.c.id)
    if role is not None:
        query = query.where(_members.c.role == role)
    if active is not None:
        query = query.where(_members.c.active == active)
    with db.engine.connect() as conn:
        return [_member(row) for row in conn.execute(query).mappings()]


def delete_member(db: Database, member_id: int) -> bool:
    """Delete a member and everything that hangs on them, and anonymise the audit entries they
    wrote (actor :data:`DELETED_ACTOR`, detail emptied); False when there was no such member."""
    with db.engine.begin() as conn:
        row = conn.execute(select(_members).where(_members.c.id == member_id)).mappings().first()
        if row is None:
            return False
        actors = _actors_of(member_id, row["telegram_chat_id"])
        conn.execute(update(_audit).where(_audit.c.actor.in_(actors)).values(actor=DELETED_ACTOR, detail={}))
        conn.execute(
            update(_invitations).where(_invitations.c.created_by.in_(actors)).values(created_by=DELETED_ACTOR)
        )
        return bool(conn.execute(delete(_members).where(_members.c.id == member_id)).rowcount)


def _actors_of(member_id: int, chat_id: int | None) -> list[str]:
    """Every name the audit log may have used for this member, the older forms included."""
    actors = [member_actor(member_id, role) for role in ROLES]
    if chat_id is not None:
        actors += [
            chat_actor(chat_id),
            f"chat:{chat_id}",
            f"telegram:{chat_id}",
            f"telegram:{chat_id}:member:{member_id}",
        ]
    return actors


# --- profiles ---------------------------------------------------------------------------------


def set_profile(db: Database, member_id: int, data: Mapping[str, Any], *, now: datetime) -> None:
    """Store (replace) a member's profile document. ``data`` must be JSON-safe and validated
    by the caller (``notifier.matching.profiles.Profile``). Raises ValueError for an unknown member."""
    try:
        with db.engine.begin() as conn:
            upsert(
                conn, _profiles, {"member_id": member_id, "data": dict(data), "updated_at": now},
                ["member_id"], ["data", "updated_at"],
            )  # fmt: skip
    except IntegrityError as exc:
        raise ValueError(f"no member {member_id}") from exc


def get_profile(db: Database, member_id: int) -> dict[str, Any] | None:
    with db.engine.connect() as conn:
        data = conn.execute(
            select(_profiles.c.data).where(_profiles.c.member_id == member_id)
        ).scalar_one_or_none()
    return None if data is None else dict(data)


def all_profiles(db: Database, *, active: bool | None = None) -> list[tuple[MemberView, dict[str, Any]]]:
    """Every member that has a profile, with it, by member id (``active`` filters if given)."""
    query = select(_members, _profiles.c.data.label("profile_data")).join(
        _profiles, _profiles.c.member_id == _members.c.id
    )
    if active is not None:
        query = query.where(_members.c.active == active)
    with db.engine.connect() as conn:
        rows = conn.execute(query.order_by(_members.c.id)).mappings().all()
    return [(_member(row), dict(row["profile_data"])) for row in rows]
