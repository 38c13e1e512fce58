"""Members' feedback on the calls they were alerted about ("Mi interessa", "Non per noi"), one per
member and duplicate group."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, select

from storage._bulk import upsert
from storage.db import Database
from storage.models import Feedback

_feedback = cast(Table, Feedback.__table__)

FEEDBACK_KINDS = ("interested", "not_for_us")


@dataclass(frozen=True, slots=True)
class FeedbackView:
    member_id: int
    group_id: int
    kind: str
    at: datetime


def set_feedback(db: Database, member_id: int, group_id: int, kind: str, *, now: datetime) -> None:
    """Record a member's answer about a call group (the latest answer wins)."""
    if kind not in FEEDBACK_KINDS:
        raise ValueError(f"unknown feedback {kind!r} (one of {', '.join(FEEDBACK_KINDS)})")
    with db.engine.begin() as conn:
        upsert(
            conn, _feedback, {"member_id": member_id, "group_id": group_id, "kind": kind, "at": now},
            ["member_id", "group_id"], ["kind", "at"],
        )  # fmt: skip


def clear_feedback(db: Database, member_id: int, group_id: int) -> bool:
    with db.engine.begin() as conn:
        return bool(
            conn.execute(
                delete(_feedback).where(_feedback.c.member_id == member_id, _feedback.c.group_id == group_id)
            ).rowcount
        )


def get_feedback(db: Database, member_id: int, group_id: int) -> str | None:
    """``interested``, ``not_for_us`` or None."""
    with db.engine.connect() as conn:
        return conn.execute(
            select(_feedback.c.kind).where(
                _feedback.c.member_id == member_id, _feedback.c.group_id == group_id
            )
        ).scalar_one_or_none()


def list_feedback(
    db: Database, *, member_id: int | None = None, kind: str | None = None
) -> list[FeedbackView]:
    """Feedback rows, by member then group (for reminders: ``kind="interested"``)."""
    query = select(_feedback).order_by(_feedback.c.member_id, _feedback.c.group_id)
    if member_id is not None:
        query = query.where(_feedback.c.member_id == member_id)
    if kind is not None:
        query = query.where(_feedback.c.kind == kind)
    with db.engine.connect() as conn:
        return [
            FeedbackView(row["member_id"], row["group_id"], row["kind"], row["at"])
            for row in conn.execute(query).mappings()
        ]
