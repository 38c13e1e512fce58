"""Stopping what a member asked to stop: e-mail alerts or the e-mail digest, from an unsubscribe
link (the web app's one-click endpoint and page) or from the token a "mailto:" unsubscribe
request carries (``sentinella members unsubscribe``).
"""

from __future__ import annotations

from datetime import datetime

from notifier.matching.profiles import parse_profile
from storage import members, outbox
from storage.audit import audit, member_actor
from storage.db import Database


def unsubscribe_member(db: Database, member_id: int, scope: str, *, now: datetime, via: str) -> bool:
    """Stop the member's e-mail alerts (``alerts``: e-mail leaves the profile's channels, and
    alerts already queued for e-mail are not sent) or e-mail digest (``digest``); audited with
    ``via`` (one-click, page, mailto). False when the member no longer exists."""
    member = members.get_member(db, member_id)
    if member is None:
        return False
    changed = False
    if scope == "alerts":
        profile = parse_profile(members.get_profile(db, member_id))
        if "email" in profile.channels:
            profile.channels = [c for c in profile.channels if c != "email"]
            members.set_profile(db, member_id, profile.model_dump(mode="json"), now=now)
            changed = True
        # Alerts planned before the request are not sent either (RFC 8058: stop, not later).
        outbox.give_up(db, member_id, "email", now=now, reason="the member unsubscribed from e-mail alerts")
    elif member.digest_email:
        members.update_member(db, member_id, now=now, digest_email=False)
        changed = True
    audit(
        db,
        member_actor(member_id, member.role),
        "unsubscribe",
        {"scope": scope, "via": via, "changed": changed},
        now=now,
    )
    return True
