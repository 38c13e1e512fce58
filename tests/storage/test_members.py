"""Members, profiles, invitations, feedback and the audit log (storage.members), on both engines."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from storage import members
from storage.audit import DELETED_ACTOR, MAX_AUDIT_TEXT, audit, audit_log, chat_actor, member_actor
from storage.db import Database
from storage.feedback import clear_feedback, get_feedback, list_feedback, set_feedback
from storage.ingest import ingest
from storage.invitations import InvitationError, create_invitation, list_invitations, redeem_invitation
from storage.models import Invitation
from storage.records import CallRecord


def _member(db: Database, now: datetime, **kw: object) -> members.MemberView:
    values: dict[str, object] = {"name": "Laura Bianchi", "email": "laura@example.com"}
    values.update(kw)
    return members.upsert_member(db, now=now, **values)  # type: ignore[arg-type]


def _group(db: Database, now: datetime, source_id: str = "1") -> int:
    record = CallRecord(
        source="manual", source_id=source_id, url=f"https://example.org/{source_id}", title="Bando"
    )
    result = ingest(db, [record], now=now)
    from storage.calls import get_call

    call = get_call(db, result.new_ids[0])
    assert call is not None and call.group_id is not None
    return call.group_id


# --- members ----------------------------------------------------------------------------------


def test_upsert_creates_then_updates_by_email_or_chat_id(db: Database, now: datetime) -> None:
    created = _member(db, now, email="Laura@Example.com ", organisation="Example srl")
    assert created.email == "laura@example.com"  # stored lower-cased and trimmed
    assert created.active and created.role == "member" and created.created_at == now

    later = now + timedelta(hours=1)
    by_email = members.upsert_member(
        db, now=later, name="Laura B.", email="LAURA@example.com", telegram_chat_id=42
    )
    assert by_email.id == created.id
    assert by_email.name == "Laura B." and by_email.telegram_chat_id == 42 and by_email.updated_at == later

    by_chat = members.upsert_member(db, now=later, name="Laura B.", telegram_chat_id=42, role="staff")
    assert by_chat.id == created.id and by_chat.role == "staff"
    assert by_chat.email == "laura@example.com"  # not given: kept
    assert len(members.list_members(db)) == 1


def test_upsert_keeps_what_it_is_not_given(db: Database, now: datetime) -> None:
    first = _member(db, now, organisation="Example srl", role="admin", language="en")
    again = members.upsert_member(
        db, now=now + timedelta(hours=1), name="Laura Bianchi", email="laura@example.com"
    )
    assert (again.organisation, again.role, again.language) == ("Example srl", "admin", "en")
    assert again.updated_at == first.updated_at
    reset = members.upsert_member(
        db, now=now, name="Laura Bianchi", email="laura@example.com", organisation="", language="it"
    )
    assert (reset.organisation, reset.role, reset.language) == ("", "admin", "it")


def test_upsert_unchanged_keeps_updated_at(db: Database, now: datetime) -> None:
    first = _member(db, now)
    again = _member(db, now + timedelta(days=1))
    assert again.updated_at == first.updated_at


def test_upsert_refuses_to_merge_two_people(db: Database, now: datetime) -> None:
    _member(db, now, email="a@example.com", telegram_chat_id=1)
    _member(db, now, email="b@example.com", telegram_chat_id=2)
    with pytest.raises(members.MemberConflict):
        members.upsert_member(db, now=now, name="X", email="a@example.com", telegram_chat_id=2)


def test_upsert_needs_an_identity_and_a_known_role(db: Database, now: datetime) -> None:
    with pytest.raises(ValueError, match="e-mail or a Telegram chat id"):
        members.upsert_member(db, now=now, name="Nobody")
    with pytest.raises(ValueError, match="unknown role"):
        members.upsert_member(db, now=now, name="X", email="x@example.com", role="owner")


def test_find_list_update_and_delete(db: Database, now: datetime) -> None:
    a = _member(db, now, email="a@example.com", telegram_chat_id=10)
    b = _member(db, now, email="b@example.com", role="staff")
    assert members.find_member(db, email="A@EXAMPLE.COM") == a
    assert members.find_member(db, chat_id=10) == a
    assert members.find_member(db, chat_id=99) is None
    with pytest.raises(ValueError):
        members.find_member(db)
    assert [m.id for m in members.list_members(db, role="staff")] == [b.id]

    paused = members.update_member(db, a.id, now=now, paused=True, telegram_ok=False, language="en")
    assert paused is not None and paused.paused and not paused.telegram_ok and paused.language == "en"
    members.update_member(db, b.id, now=now, active=False)
    assert [m.id for m in members.list_members(db, active=True)] == [a.id]
    with pytest.raises(members.MemberConflict):
        members.update_member(db, b.id, now=now, telegram_chat_id=10)
    assert members.update_member(db, 999, now=now, paused=True) is None

    members.set_profile(db, a.id, {"topics": ["packaging"]}, now=now)
    assert members.delete_member(db, a.id) is True
    assert members.get_member(db, a.id) is None
    assert members.get_profile(db, a.id) is None  # cascaded
    assert members.delete_member(db, a.id) is False


# --- profiles ---------------------------------------------------------------------------------


def test_profiles_are_stored_replaced_and_listed(db: Database, now: datetime) -> None:
    a = _member(db, now, email="a@example.com")
    b = _member(db, now, email="b@example.com")
    _member(db, now, email="c@example.com")  # no profile: not listed
    members.set_profile(db, a.id, {"topics": ["packaging"], "keywords": ["airless"]}, now=now)
    members.set_profile(db, b.id, {"topics": ["energia"]}, now=now)
    members.set_profile(db, a.id, {"topics": ["digitale"]}, now=now + timedelta(minutes=1))
    assert members.get_profile(db, a.id) == {"topics": ["digitale"]}
    listed = members.all_profiles(db)
    assert [(m.id, p) for m, p in listed] == [
        (a.id, {"topics": ["digitale"]}),
        (b.id, {"topics": ["energia"]}),
    ]
    members.update_member(db, b.id, now=now, active=False)
    assert [m.id for m, _ in members.all_profiles(db, active=True)] == [a.id]


def test_profile_of_an_unknown_member_is_refused(db: Database, now: datetime) -> None:
    with pytest.raises(ValueError, match="no member"):
        members.set_profile(db, 12345, {}, now=now)


# --- invitations ------------------------------------------------------------------------------


def test_invitation_creates_a_member_and_works_once(db: Database, now: datetime) -> None:
    code = create_invitation(db, role="staff", now=now, ttl=timedelta(days=2), created_by="admin:1")
    assert len(code) >= 20 and code.replace("-", "").replace("_", "").isalnum()  # fits a /start deep link
    member = redeem_invitation(
        db, code, chat_id=555, now=now + timedelta(hours=1), name="Paolo", language="en"
    )
    assert member.role == "staff" and member.telegram_chat_id == 555 and member.language == "en"
    with pytest.raises(InvitationError) as used:
        redeem_invitation(db, code, chat_id=556, now=now + timedelta(hours=2), name="Other")
    assert used.value.kind == "used"
    [entry] = audit_log(db)
    assert entry.action == "invitation.redeem"
    # Named by member id: the chat id never reaches the audit log.
    assert entry.actor == f"staff:{member.id}" and "555" not in repr(entry)


def test_only_the_hash_of_a_code_is_stored(db: Database, now: datetime) -> None:
    code = create_invitation(db, role="member", now=now, ttl=timedelta(hours=1), created_by="cli")
    with db.session() as session:
        stored = session.scalars(select(Invitation.code_hash)).all()
    assert stored == [hashlib.sha256(code.encode()).hexdigest()]
    assert code not in stored


def test_unknown_and_expired_codes(db: Database, now: datetime) -> None:
    with pytest.raises(InvitationError) as unknown:
        redeem_invitation(db, "forged-code", chat_id=1, now=now, name="X")
    assert unknown.value.kind == "unknown"
    code = create_invitation(db, role="member", now=now, ttl=timedelta(hours=1), created_by="cli")
    with pytest.raises(InvitationError) as expired:
        redeem_invitation(db, code, chat_id=1, now=now + timedelta(hours=1), name="X")
    assert expired.value.kind == "expired"
    assert members.list_members(db) == []  # nothing created


def test_code_for_a_known_member_binds_the_chat(db: Database, now: datetime) -> None:
    known = _member(db, now, email="laura@example.com")
    code = create_invitation(
        db, role="member", now=now, ttl=timedelta(days=1), created_by="admin", member_id=known.id
    )
    bound = redeem_invitation(db, code, chat_id=777, now=now, name="ignored")
    assert bound.id == known.id and bound.telegram_chat_id == 777 and bound.name == "Laura Bianchi"


def test_code_for_a_member_cannot_steal_another_members_chat(db: Database, now: datetime) -> None:
    known = _member(db, now, email="laura@example.com")
    _member(db, now, email="other@example.com", telegram_chat_id=777)
    code = create_invitation(
        db, role="member", now=now, ttl=timedelta(days=1), created_by="admin", member_id=known.id
    )
    with pytest.raises(InvitationError) as conflict:
        redeem_invitation(db, code, chat_id=777, now=now, name="X")
    assert conflict.value.kind == "conflict"
    assert list_invitations(db, now=now)  # not consumed


def test_a_bound_chat_redeeming_a_code_gets_its_role(db: Database, now: datetime) -> None:
    existing = _member(db, now, telegram_chat_id=900)
    code = create_invitation(db, role="admin", now=now, ttl=timedelta(days=1), created_by="admin")
    again = redeem_invitation(db, code, chat_id=900, now=now, name="X")
    assert again.id == existing.id and again.role == "admin"


def test_list_invitations(db: Database, now: datetime) -> None:
    create_invitation(db, role="member", now=now, ttl=timedelta(hours=1), created_by="a")
    used = create_invitation(db, role="member", now=now, ttl=timedelta(hours=1), created_by="b")
    redeem_invitation(db, used, chat_id=3, now=now, name="X")
    assert [i.created_by for i in list_invitations(db, now=now)] == ["a"]
    assert len(list_invitations(db, now=now, include_spent=True)) == 2
    assert list_invitations(db, now=now + timedelta(hours=2)) == []
    with pytest.raises(ValueError):
        create_invitation(db, role="member", now=now, ttl=timedelta(0), created_by="a")


# --- feedback and audit -----------------------------------------------------------------------


def test_feedback_latest_answer_wins(db: Database, now: datetime) -> None:
    member = _member(db, now)
    group = _group(db, now)
    assert get_feedback(db, member.id, group) is None
    set_feedback(db, member.id, group, "interested", now=now)
    set_feedback(db, member.id, group, "not_for_us", now=now + timedelta(minutes=1))
    assert get_feedback(db, member.id, group) == "not_for_us"
    assert [(f.group_id, f.kind) for f in list_feedback(db, member_id=member.id)] == [(group, "not_for_us")]
    assert list_feedback(db, kind="interested") == []
    assert clear_feedback(db, member.id, group) is True
    with pytest.raises(ValueError):
        set_feedback(db, member.id, group, "maybe", now=now)


def test_audit_actors_carry_no_chat_id() -> None:
    assert member_actor(12) == "member:12"
    assert member_actor(12, "admin") == "admin:12"
    hashed = chat_actor(123456789)
    assert hashed.startswith("chat:") and len(hashed) == len("chat:") + 12 and "123456789" not in hashed
    assert hashed == chat_actor(123456789) != chat_actor(123456780)


def test_deleting_a_member_anonymises_their_audit_entries(db: Database, now: datetime) -> None:
    other = _member(db, now, email="other@example.com", telegram_chat_id=4242)
    code = create_invitation(db, role="admin", now=now, ttl=timedelta(days=1), created_by="cli")
    laura = redeem_invitation(db, code, chat_id=555, now=now, name="Laura")
    admin = member_actor(laura.id, "admin")
    # What the bot writes for her (before she joined, as member, as admin), and older forms.
    audit(db, chat_actor(555), "crawl", {"refused": True, "args": ["Laura Bianchi"]}, now=now)
    audit(db, admin, "invite", {"role": "member", "note": "per Laura Bianchi"}, now=now)
    audit(db, f"telegram:555:member:{laura.id}", "status", {}, now=now)
    audit(db, "chat:555", "invitation.redeem", {"member_id": laura.id}, now=now)
    create_invitation(db, role="member", now=now, ttl=timedelta(days=1), created_by=admin)
    # Someone else's entries stay as they are.
    audit(db, member_actor(other.id), "digest", {"telegram": True}, now=now)
    audit(db, "cli", "members.disable", {"member": other.id}, now=now)

    assert members.delete_member(db, laura.id) is True

    log = audit_log(db, limit=100)
    mine = [e for e in log if e.actor == DELETED_ACTOR]
    assert sorted(e.action for e in mine) == [
        "crawl",
        "invitation.redeem",
        "invitation.redeem",
        "invite",
        "status",
    ]
    assert all(e.detail == {} for e in mine)
    for entry in log:
        assert "555" not in entry.actor and "Laura" not in repr(entry.detail)
        assert entry.actor not in (admin, f"member:{laura.id}")
    assert {(e.actor, e.action) for e in log if e.actor != DELETED_ACTOR} == {
        (f"member:{other.id}", "digest"),
        ("cli", "members.disable"),
    }
    creators = {i.created_by for i in list_invitations(db, now=now, include_spent=True)}
    assert creators == {"cli", DELETED_ACTOR}
    assert members.delete_member(db, laura.id) is False


def test_audit_log_newest_first_and_capped(db: Database, now: datetime) -> None:
    audit(db, "admin:1", "crawl.start", {"source": "sedia"}, now=now)
    audit(db, "admin:1", "members.invite", {"note": "x" * 10_000}, now=now + timedelta(seconds=1))
    log = audit_log(db)
    assert [e.action for e in log] == ["members.invite", "crawl.start"]
    assert len(log[0].detail["note"]) == MAX_AUDIT_TEXT
    assert [e.action for e in audit_log(db, action="crawl.start")] == ["crawl.start"]
