"""Member profiles: what each member wants to hear about, validated; and the members import.

:class:`Profile` is the one shape of a profile, whoever writes it (the bot's keyboards, the
``members import`` file, the CLI): known topic and beneficiary ids, keywords and exclusions that
the matcher can compile, capped counts and lengths, a known region and province. Storage keeps
``Profile.model_dump(mode="json")`` as a JSON document (``storage.members.set_profile``).

:func:`import_members` takes the parsed import document (the CLI reads the TOML or JSON file)::

    [[member]]
    name = "Laura Bianchi"
    organisation = "Example Packaging srl"
    role = "member"            # member | staff | admin
    email = "laura@example.com"
    telegram_chat_id = 123456789
    language = "it"
    [member.profile]
    topics = ["packaging", "sostenibilita-circolare"]
    keywords = ["flaconi riciclabili", "airless"]
    province = "BG"

Every entry is validated before anything is written; bad entries are reported with their
position and key and skipped, good ones are stored. Importing the same file again changes
nothing: a member is recognised by e-mail or by chat id.

Updating a member already stored changes only what the entry gives: a key left out
(``organisation``, ``role``, ``language``, ``active``, the e-mail or the chat id) keeps the
stored value, so a short file (names and e-mails) does not reset what was set elsewhere. A new
member gets the defaults (no organisation, role "member", language "it"). The profile is the
exception in the other direction: an entry without ``[member.profile]`` leaves the stored
profile untouched, but a given ``[member.profile]`` *replaces* the stored one whole (keys it
leaves out take their defaults), because a profile is one document edited as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from notifier.matching.eligibility import COMPANY_TYPES
from notifier.matching.text import TermError, compile_term
from notifier.matching.vocabulary import default_vocabulary
from storage import members as store
from storage.audit import audit
from storage.db import Database

MAX_TERMS = 30
TERM_MIN, TERM_MAX = 2, 60
MAX_SOURCES = 20
MAX_ATECO = 30
MAX_BUDGET = 10**12
_TERM_CHARS = re.compile(r"[\w\s'’.,&/+*()-]+")
_SOURCE = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,63}")
_ATECO = re.compile(r"\d{2}(\.\d{1,2}){0,2}")
_EMAIL = re.compile(r"[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+")


Channel = Literal["telegram", "email"]
#: ``partners``: EEN partner searches ("🤝 Ricerca partner"), off unless the member opts in.
AlertKind = Literal["new", "changes", "reminders", "partners"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)
#: The alerts a profile has unless it says otherwise (partner searches are opt-in).
DEFAULT_ALERTS: tuple[AlertKind, ...] = ("new", "changes", "reminders")


def _dedupe(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        key = value.casefold()
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out


def _known_ids(value: Iterable[str], known: Mapping[str, Any], what: str) -> list[str]:
    """Vocabulary ids trimmed and deduplicated; ValueError naming the first unknown one."""
    ids = list(dict.fromkeys(v.strip() for v in value))
    unknown = [v for v in ids if v not in known]
    if unknown:
        raise ValueError(f"unknown {what} {unknown[0]!r} (known: {', '.join(known)})")
    return ids


def clean_term(raw: str) -> str:
    """A keyword or exclusion as stored: one line, inner spaces collapsed, trimmed.

    Raises ValueError saying what is wrong (length, characters, nothing matchable).
    """
    term = " ".join(str(raw).split())
    if not TERM_MIN <= len(term) <= TERM_MAX:
        raise ValueError(f"{term[:TERM_MAX]!r} must be {TERM_MIN} to {TERM_MAX} characters long")
    if not _TERM_CHARS.fullmatch(term):
        raise ValueError(f"{term!r} contains characters a phrase cannot have")
    try:
        compile_term(term)
    except TermError as exc:
        raise ValueError(str(exc)) from exc
    return term


def normalise_ateco(code: str) -> str:
    """``"20.42.00"`` → ``"20.42"``, ``"2042"`` → ``"20.42"``, ``"13.00"`` → ``"13"``."""
    code = code.strip().rstrip(";").strip()
    if re.fullmatch(r"\d{4,6}", code):
        code = ".".join(code[i : i + 2] for i in range(0, len(code), 2))
    if not _ATECO.fullmatch(code):
        raise ValueError(f"{code!r} is not an ATECO code (like 20.42)")
    parts = code.split(".")
    while len(parts) > 1 and int(parts[-1]) == 0:
        parts.pop()
    return ".".join(parts)


class Profile(BaseModel):
    """What a member wants to hear about. Empty lists mean "no preference" except for
    ``topics``/``keywords`` (nothing to match), ``channels`` and ``alerts`` (nothing sent)."""

    model_config = ConfigDict(extra="forbid")

    topics: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    #: Beneficiary types the member is (``pmi``, ``ricerca`` ...); none = a company of any size.
    beneficiaries: list[str] = Field(default_factory=list)
    #: Sources to follow (``lombardia``, ``sedia`` ...); none = all.
    sources: list[str] = Field(default_factory=list)
    #: Calls offering less (largest contribution, else total budget) are left out; None = any.
    min_budget_eur: int | None = Field(default=None, ge=0, le=MAX_BUDGET)
    channels: list[Channel] = Field(default_factory=lambda: list(CHANNELS))
    alerts: list[AlertKind] = Field(default_factory=lambda: list(DEFAULT_ALERTS))
    #: Language of the alerts; None = the member's.
    language: Literal["it", "en"] | None = None
    #: Region of the member's seat; None = the cluster's (``MatchingConfig.region``).
    region: str | None = None
    #: Province code (``BG``) of the member's seat, for calls of one province or chamber.
    province: str | None = None
    #: ATECO codes of the member's activities, for calls reserved to some sectors.
    ateco: list[str] = Field(default_factory=list)

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: list[str]) -> list[str]:
        return _known_ids(value, default_vocabulary().topics, "topic")

    @field_validator("beneficiaries")
    @classmethod
    def _beneficiaries(cls, value: list[str]) -> list[str]:
        return _known_ids(value, default_vocabulary().beneficiaries, "beneficiary type")

    @field_validator("keywords", "exclude")
    @classmethod
    def _terms(cls, value: list[str]) -> list[str]:
        cleaned = _dedupe(clean_term(v) for v in value)
        if len(cleaned) > MAX_TERMS:
            raise ValueError(f"at most {MAX_TERMS} phrases ({len(cleaned)} given)")
        return cleaned

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        cleaned = list(dict.fromkeys(v.strip().lower() for v in value))
        for v in cleaned:
            if not _SOURCE.fullmatch(v):
                raise ValueError(f"{v!r} is not a source name")
        if len(cleaned) > MAX_SOURCES:
            raise ValueError(f"at most {MAX_SOURCES} sources")
        return cleaned

    @field_validator("channels", "alerts")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        region = default_vocabulary().region_named(value)
        if region is None:
            raise ValueError(f"unknown region {value!r}")
        return region

    @field_validator("province")
    @classmethod
    def _province(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        code = default_vocabulary().province_named(value)
        if code is None:
            raise ValueError(f"unknown province {value!r} (a code like BG or a name like Bergamo)")
        return code

    @field_validator("ateco")
    @classmethod
    def _ateco(cls, value: list[str]) -> list[str]:
        cleaned = list(dict.fromkeys(normalise_ateco(v) for v in value))
        if len(cleaned) > MAX_ATECO:
            raise ValueError(f"at most {MAX_ATECO} ATECO codes")
        return cleaned

    @model_validator(mode="after")
    def _province_in_region(self) -> Profile:
        if self.province and self.region:
            province = default_vocabulary().provinces[self.province]
            if province.region != self.region:
                raise ValueError(f"province {self.province} is not in {self.region}")
        return self

    def member_region(self, default: str) -> str:
        """The region used for territorial rules: the profile's, its province's, or ``default``."""
        if self.region:
            return self.region
        if self.province:
            return default_vocabulary().provinces[self.province].region
        return default

    def to_data(self) -> dict[str, Any]:
        """The JSON document storage keeps."""
        return self.model_dump(mode="json")


def parse_profile(data: Mapping[str, Any] | None) -> Profile:
    """A stored profile document as a :class:`Profile` (defaults for a missing one).

    Raises ValidationError like :meth:`Profile.model_validate`.
    """
    return Profile.model_validate(dict(data or {}))


#: Roles that speak for the cluster organisation itself, which applies to calls for clusters and
#: business associations (RULES B5).
CLUSTER_ROLES = frozenset({"staff", "admin"})


def member_profile(role: str, data: Mapping[str, Any] | None) -> Profile:
    """A member's stored profile as matching reads it: staff and admins also count as the
    cluster organisation (applicant type ``cluster``). Raises ValidationError like
    :func:`parse_profile`."""
    profile = parse_profile(data)
    if role in CLUSTER_ROLES and "cluster" not in profile.beneficiaries:
        types = list(profile.beneficiaries or sorted(COMPANY_TYPES))
        profile = profile.model_copy(update={"beneficiaries": [*types, "cluster"]})
    return profile


def describe_errors(exc: ValidationError, *, prefix: str = "") -> list[str]:
    """One readable line per problem: ``profile.topics: unknown topic 'x' (known: ...)``."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        where = ".".join(p for p in (prefix, loc) if p)
        lines.append(f"{where}: {msg}" if where else msg)
    return lines


# --- members import ---------------------------------------------------------------------------


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=store.MAX_NAME)]


class MemberEntry(BaseModel):
    """One ``[[member]]`` of an import file."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    organisation: str = Field(default="", max_length=store.MAX_ORGANISATION)
    role: Literal["member", "staff", "admin"] = "member"
    email: str | None = None
    #: Telegram chat ids fit in 52 bits; anything longer is a typo (and overflows the column).
    telegram_chat_id: int | None = Field(default=None, ge=-store.MAX_CHAT_ID, le=store.MAX_CHAT_ID)
    language: Literal["it", "en"] = "it"
    active: bool | None = None
    profile: Profile | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if not _EMAIL.fullmatch(value) or len(value) > store.MAX_EMAIL:
            raise ValueError(f"{value!r} is not an e-mail address")
        return value

    @field_validator("telegram_chat_id", mode="before")
    @classmethod
    def _chat_id(cls, value: Any) -> Any:
        # TOML integers arrive as int; a JSON file may quote them. Booleans are not ids.
        if isinstance(value, bool):
            raise ValueError("must be an integer chat id")
        if isinstance(value, str) and re.fullmatch(r"-?\d{1,20}", value.strip()):
            return int(value.strip())
        return value

    @model_validator(mode="after")
    def _identity(self) -> MemberEntry:
        if self.email is None and self.telegram_chat_id is None:
            raise ValueError("give an email or a telegram_chat_id (a member is recognised by them)")
        return self


@dataclass
class ImportReport:
    """What an import did: counts, the member ids touched, and one line per problem."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    member_ids: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _label(index: int, entry: Mapping[str, Any] | Any) -> str:
    who = ""
    if isinstance(entry, Mapping):
        who = str(entry.get("email") or entry.get("name") or "")[:60]
    return f"member {index}" + (f" ({who})" if who else "")


def _position(line: str) -> int:
    """Errors in file order: document-level ones first, then by entry."""
    found = re.match(r"member (\d+)", line)
    return int(found.group(1)) if found else 0


def validate_members(data: Mapping[str, Any]) -> tuple[list[tuple[int, MemberEntry]], list[str]]:
    """Check an import document: ``(good entries with their 1-based position, errors)``.

    Errors name the entry by position (and e-mail or name) and the key:
    ``member 3 (laura@example.com): profile.topics: unknown topic 'foo' ...``.
    """
    errors: list[str] = []
    if not isinstance(data, Mapping):
        return [], ["the file must be a table with a list of [[member]] entries"]
    extra = sorted(set(data) - {"member", "members"})
    if extra:
        errors.append(f"unknown top-level key(s): {', '.join(extra)} (expected [[member]] entries)")
    entries = data.get("member", data.get("members"))
    if entries is None:
        errors.append("no [[member]] entries")
        return [], errors
    if not isinstance(entries, Sequence) or isinstance(entries, (str, bytes)):
        errors.append("'member' must be a list of tables ([[member]])")
        return [], errors
    good: list[tuple[int, MemberEntry]] = []
    seen_email: dict[str, int] = {}
    seen_chat: dict[int, int] = {}
    for index, raw in enumerate(entries, 1):
        label = _label(index, raw)
        if not isinstance(raw, Mapping):
            errors.append(f"{label}: must be a table")
            continue
        try:
            entry = MemberEntry.model_validate(raw)
        except ValidationError as exc:
            errors.extend(f"{label}: {line}" for line in describe_errors(exc))
            continue
        duplicate = (entry.email is not None and entry.email in seen_email and seen_email[entry.email]) or (
            entry.telegram_chat_id is not None and seen_chat.get(entry.telegram_chat_id)
        )
        if duplicate:
            errors.append(f"{label}: the same person as member {duplicate} (same email or telegram_chat_id)")
            continue
        if entry.email is not None:
            seen_email[entry.email] = index
        if entry.telegram_chat_id is not None:
            seen_chat[entry.telegram_chat_id] = index
        good.append((index, entry))
    return good, errors


def import_members(
    db: Database, data: Mapping[str, Any], *, now: datetime, actor: str = "import"
) -> ImportReport:
    """Validate every entry, then create or update the good ones (see the module docstring).

    Each member is written in its own transaction: a conflict on one (its e-mail and chat id
    belong to two stored members) is reported and does not stop the others.
    """
    report = ImportReport()
    good, report.errors = validate_members(data)
    for index, entry in good:
        label = _label(index, {"email": entry.email, "name": entry.name})
        before = None
        if entry.email is not None:
            before = store.find_member(db, email=entry.email)
        if before is None and entry.telegram_chat_id is not None:
            before = store.find_member(db, chat_id=entry.telegram_chat_id)
        # Only the keys the entry gives: the others keep the stored values (module docstring).
        given: dict[str, Any] = {
            key: getattr(entry, key)
            for key in ("organisation", "role", "language")
            if key in entry.model_fields_set
        }
        try:
            member = store.upsert_member(
                db,
                now=now,
                name=entry.name,
                email=entry.email,
                telegram_chat_id=entry.telegram_chat_id,
                active=entry.active,
                **given,
            )
        except (store.MemberConflict, ValueError) as exc:
            report.errors.append(f"{label}: {exc}")
            continue
        changed = before is None or member != before
        if entry.profile is not None:
            data_new = entry.profile.to_data()
            if store.get_profile(db, member.id) != data_new:
                store.set_profile(db, member.id, data_new, now=now)
                changed = True
        if before is None:
            report.created += 1
        elif changed:
            report.updated += 1
        else:
            report.unchanged += 1
        report.member_ids.append(member.id)
    report.errors.sort(key=_position)
    if report.created or report.updated:
        audit(
            db, actor, "members.import",
            {"created": report.created, "updated": report.updated, "errors": len(report.errors)}, now=now,
        )  # fmt: skip
    return report
