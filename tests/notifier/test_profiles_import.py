"""The Profile model and the `members import` document."""

from __future__ import annotations

import tomllib
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from notifier.matching.profiles import MAX_TERMS, Profile, describe_errors, import_members, validate_members
from storage import members
from storage.audit import audit_log
from storage.db import Database

RELEVANCE = Path(__file__).resolve().parents[1] / "data" / "relevance"

ISSUE_EXAMPLE = """
[[member]]
name = "Laura Bianchi"
organisation = "Example Packaging srl"
role = "member"
email = "laura@example.com"
telegram_chat_id = 123456789
language = "it"
[member.profile]
topics = ["packaging", "sostenibilita-circolare"]
keywords = ["flaconi riciclabili", "airless"]
exclude = ["agricoltura"]
beneficiaries = ["pmi"]
min_budget_eur = 0
"""


def test_defaults_need_no_data() -> None:
    profile = Profile.model_validate({})
    assert profile.topics == [] and profile.channels == ["telegram", "email"]
    assert profile.alerts == ["new", "changes", "reminders"]
    assert profile.language is None and profile.member_region("Lombardia") == "Lombardia"


def test_values_are_cleaned() -> None:
    profile = Profile.model_validate(
        {
            "topics": ["packaging", "packaging"],
            "keywords": ["  flaconi \n riciclabili ", "Airless", "airless"],
            "sources": ["SEDIA", "sedia"],
            "province": "Bergamo",
            "region": "lombardy",
            "ateco": ["20.42.00", "2222", "13.00"],
        }
    )
    assert profile.topics == ["packaging"]
    assert profile.keywords == ["flaconi riciclabili", "Airless"]
    assert profile.sources == ["sedia"]
    assert (profile.province, profile.region) == ("BG", "Lombardia")
    assert profile.ateco == ["20.42", "22.22", "13"]
    assert Profile.model_validate(profile.to_data()) == profile


def test_province_gives_the_region() -> None:
    assert Profile.model_validate({"province": "Verona"}).member_region("Lombardia") == "Veneto"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"topics": ["cosmesi-spaziale"]}, "unknown topic 'cosmesi-spaziale'"),
        ({"beneficiaries": ["multinazionale"]}, "unknown beneficiary type"),
        ({"keywords": ["x"]}, "2 to 60 characters"),
        ({"keywords": ["a" * 61]}, "2 to 60 characters"),
        ({"keywords": ["<script>"]}, "characters a phrase cannot have"),
        ({"keywords": [f"parola {i}" for i in range(MAX_TERMS + 1)]}, f"at most {MAX_TERMS}"),
        ({"exclude": ["di la"]}, "no word that can be matched"),
        ({"channels": ["fax"]}, "channels"),
        ({"province": "Atlantide"}, "unknown province"),
        ({"province": "TO", "region": "Lombardia"}, "not in Lombardia"),
        ({"ateco": ["cosmetici"]}, "not an ATECO code"),
        ({"min_budget_eur": -1}, "min_budget_eur"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_profiles_say_what_is_wrong(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Profile.model_validate(data)
    assert message in "\n".join(describe_errors(exc.value))


def test_the_issue_example_validates() -> None:
    good, errors = validate_members(tomllib.loads(ISSUE_EXAMPLE))
    assert errors == []
    [(index, entry)] = good
    assert (
        index == 1
        and entry.profile is not None
        and entry.profile.keywords == ["flaconi riciclabili", "airless"]
    )


def test_every_bad_entry_is_reported_with_its_position_and_key() -> None:
    data = {
        "member": [
            {"name": "Ok", "email": "ok@example.com"},
            {"name": "Bad topic", "email": "bad@example.com", "profile": {"topics": ["nope"]}},
            {"name": "No identity"},
            {"name": "Bad email", "email": "not-an-address"},
            {"name": "Dup", "email": "OK@example.com"},
            {"name": "Extra", "email": "x@example.com", "phone": "123"},
            "not a table",
        ],
        "settings": {},
    }
    good, errors = validate_members(data)
    assert [i for i, _ in good] == [1]
    text = "\n".join(errors)
    assert "unknown top-level key(s): settings" in text
    assert "member 2 (bad@example.com): profile.topics: unknown topic 'nope'" in text
    assert "member 3 (No identity): give an email or a telegram_chat_id" in text
    assert "member 4 (not-an-address): email:" in text
    assert "member 5 (OK@example.com): the same person as member 1" in text
    assert "member 6 (x@example.com): phone:" in text
    assert "member 7: must be a table" in text


def test_a_document_without_members() -> None:
    assert validate_members({})[1] == ["no [[member]] entries"]
    assert validate_members({"member": "x"})[1] == ["'member' must be a list of tables ([[member]])"]


def test_import_is_idempotent_and_updates_by_email_or_chat_id(db: Database, now: datetime) -> None:
    data = tomllib.loads(ISSUE_EXAMPLE)
    first = import_members(db, data, now=now)
    assert (first.created, first.updated, first.unchanged, first.errors) == (1, 0, 0, [])
    again = import_members(db, data, now=now + timedelta(hours=1))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)

    # Same chat id, new e-mail and profile: the member is updated, not duplicated.
    entry = dict(data["member"][0])
    entry["email"] = "laura.bianchi@example.com"
    entry["profile"] = {"topics": ["energia"]}
    third = import_members(db, {"member": [entry]}, now=now + timedelta(hours=2))
    assert (third.created, third.updated) == (0, 1)
    [member] = members.list_members(db)
    assert member.email == "laura.bianchi@example.com"
    assert members.get_profile(db, member.id)["topics"] == ["energia"]  # type: ignore[index]
    assert [e.action for e in audit_log(db)] == ["members.import", "members.import"]


def test_import_keeps_good_entries_and_reports_conflicts(db: Database, now: datetime) -> None:
    members.upsert_member(db, now=now, name="A", email="a@example.com")
    members.upsert_member(db, now=now, name="B", email="b@example.com", telegram_chat_id=2)
    report = import_members(
        db,
        {
            "member": [
                {"name": "A", "email": "a@example.com", "telegram_chat_id": 2},  # two people
                {"name": "C", "email": "c@example.com", "profile": {"topics": ["digitale"]}},
                {"name": "D", "email": "d@example.com", "profile": {"topics": ["??"]}},
            ]
        },
        now=now,
    )
    assert report.created == 1 and len(report.member_ids) == 1
    assert len(report.errors) == 2 and report.errors[0].startswith("member 1 (a@example.com):")
    assert not report.ok


def test_an_entry_without_profile_keeps_the_stored_one(db: Database, now: datetime) -> None:
    import_members(
        db, {"member": [{"name": "A", "email": "a@example.com", "profile": {"topics": ["energia"]}}]}, now=now
    )
    import_members(db, {"member": [{"name": "A", "email": "a@example.com"}]}, now=now)
    member = members.find_member(db, email="a@example.com")
    assert member is not None and members.get_profile(db, member.id)["topics"] == ["energia"]  # type: ignore[index]


def test_keys_left_out_keep_the_stored_values(db: Database, now: datetime) -> None:
    import_members(db, tomllib.loads(ISSUE_EXAMPLE), now=now)
    laura = members.find_member(db, email="laura@example.com")
    assert laura is not None
    members.update_member(db, laura.id, now=now, role="admin", language="en")
    stored_profile = members.get_profile(db, laura.id)

    # A short file: name and e-mail only.
    short = import_members(
        db,
        {"member": [{"name": "Laura Bianchi", "email": "laura@example.com"}]},
        now=now + timedelta(hours=1),
    )
    assert (short.updated, short.unchanged, short.errors) == (0, 1, [])
    kept = members.find_member(db, email="laura@example.com")
    assert kept is not None
    assert (kept.organisation, kept.role, kept.language) == ("Example Packaging srl", "admin", "en")
    assert kept.telegram_chat_id == 123456789
    assert members.get_profile(db, laura.id) == stored_profile

    # Keys given are applied, even when they say the default; a given profile replaces the stored one.
    entry = {
        "name": "Laura Bianchi",
        "email": "laura@example.com",
        "organisation": "",
        "language": "it",
        "profile": {"keywords": ["airless"]},
    }
    changed = import_members(db, {"member": [entry]}, now=now + timedelta(hours=2))
    assert changed.updated == 1
    after = members.find_member(db, email="laura@example.com")
    assert after is not None
    assert (after.organisation, after.role, after.language) == ("", "admin", "it")
    profile = members.get_profile(db, laura.id)
    assert profile is not None and profile["keywords"] == ["airless"] and profile["topics"] == []


def test_a_new_member_gets_the_defaults(db: Database, now: datetime) -> None:
    import_members(db, {"member": [{"name": "Nuovo", "email": "nuovo@example.com"}]}, now=now)
    new = members.find_member(db, email="nuovo@example.com")
    assert new is not None and (new.organisation, new.role, new.language, new.active) == (
        "",
        "member",
        "it",
        True,
    )


def test_the_relevance_profiles_are_a_valid_import_file() -> None:
    good, errors = validate_members(tomllib.loads((RELEVANCE / "profiles.toml").read_text("utf-8")))
    assert errors == [] and len(good) == 5
