"""Typed configuration of the notifier: matching, delivery channels, reminders and the staff digest.

Plain pydantic v2 models with defaults that run with no configuration file; ``scheduler/settings.py``
nests them (``[matching]``, ``[telegram]``, ``[email]``, ``[delivery]``, ``[reminders]``,
``[digest]`` in sentinella.toml) and is the only code that reads files or the environment.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

# --- reminders and the staff digest ---------------------------------------------------------

#: An offset before an opening or a closing: "24h" (elapsed hours) or "7d" (calendar days).
_OFFSET = re.compile(r"^([1-9]\d{0,2})([hd])$")


def parse_offset(spec: str) -> tuple[int, str]:
    """``"7d"`` → ``(7, "d")``; raise ValueError for anything else."""
    match = _OFFSET.match(spec.strip())
    if not match:
        raise ValueError(f"offset {spec!r} must look like '24h' or '7d'")
    return int(match.group(1)), match.group(2)


class RemindersConfig(BaseModel):
    """When members are reminded of calls they marked interesting ("Mi interessa").

    Offsets are ``"<n>h"`` (elapsed hours) or ``"<n>d"`` (calendar days on the wall clock of
    ``timezone``, so "7d" before a 12:00 closing is 12:00 a week earlier, also across a DST
    change). Each offset gives its own reason (``reminder-close-7d``), sent once per deadline.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    #: Before a "sportello" opening (first come, first served: the opening hour is what counts).
    before_opening: list[str] = Field(default_factory=lambda: ["24h"])
    #: Before the closing (the next stage deadline, or the final one).
    before_closing: list[str] = Field(default_factory=lambda: ["7d", "1d"])
    #: A date-only opening or closing is taken at this local time when counting back, so the
    #: "1d" reminder of a call closing on 30 October arrives on the morning of the 29th.
    date_only_at: dt.time = dt.time(9, 0)
    timezone: str = "Europe/Rome"

    @field_validator("before_opening", "before_closing")
    @classmethod
    def _offsets(cls, value: list[str]) -> list[str]:
        cleaned = [v.strip() for v in value]
        for spec in cleaned:
            parse_offset(spec)
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("an offset is listed twice")
        return cleaned

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _known_zone(value)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class DigestConfig(BaseModel):
    """The daily staff digest: when it goes out, what it covers, and whether Telegram gets it."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    #: Local time of day the digest is sent (the scheduler's trigger; ``--date D`` uses it too).
    time: dt.time = dt.time(8, 0)
    timezone: str = "Europe/Rome"
    #: Send the short Telegram digest to staff who turned it on (``/digest on``); False keeps the
    #: digest to e-mail whatever they chose.
    telegram: bool = True
    #: Deadlines listed: those falling within this many days.
    deadline_days: int = Field(default=14, ge=1, le=90)
    #: The first digest, or one after a long gap, covers at most this many days back.
    max_window_days: int = Field(default=7, ge=1, le=60)
    #: At most this many entries listed per section (a theme, the changes, the notices...; the rest
    #: are counted). ``max_items_per_source`` is read as the same setting.
    max_items_per_section: int = Field(
        default=50,
        ge=1,
        le=1000,
        validation_alias=AliasChoices("max_items_per_section", "max_items_per_source"),
    )
    #: Subject line prefix of the e-mail.
    subject_prefix: str = Field(default="Sentinella", max_length=40)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _known_zone(value)

    @field_validator("subject_prefix")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if any(c in value for c in "\r\n"):
            raise ValueError("must be one line")
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


# --- delivery: Telegram, e-mail and the outbox dispatcher -------------------------------------

#: Telegram's public Bot API; tests and the demo point ``base_url`` at a fake server on loopback.
TELEGRAM_API = "https://api.telegram.org/bot"


class TelegramConfig(BaseModel):
    """The Telegram bot. With no ``token`` there is no Telegram channel (alerts go to the console).

    ``base_url`` follows python-telegram-bot: the token is appended to it (or put where
    ``{token}`` stands), so ``http://127.0.0.1:8081/bot`` reaches a local Bot API server.
    """

    model_config = ConfigDict(extra="forbid")

    token: SecretStr | None = None
    base_url: str = TELEGRAM_API
    #: The bot's @username without "@", for invitation links made offline by the CLI
    #: (``sentinella members invite``); the bot's own /invita asks Telegram instead.
    bot_username: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
    #: Chats that get admin commands and notices whatever their member role.
    admin_chat_ids: list[int] = Field(default_factory=list)
    #: Retries of one request after a 429 (``AIORateLimiter`` waits ``retry_after`` between them).
    max_retries: int = Field(default=3, ge=1, le=10)
    #: Sending pace for the whole bot; Telegram allows about 30 messages a second, so keep a margin.
    messages_per_second: float = Field(default=28.0, gt=0, le=30)
    #: Minimum seconds between two messages to one chat (Telegram: about one a second).
    per_chat_interval: float = Field(default=1.05, ge=0, le=60)
    #: Minimum seconds between two messages to one group (Telegram: 20 a minute, so 3 s apart
    #: keeps every sliding minute at 20 or fewer).
    per_group_interval: float = Field(default=3.05, ge=0, le=600)
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=20.0, gt=0)
    #: Waiting for a free connection is not an error: sends queue behind the rate limiter anyway.
    pool_timeout: float = Field(default=60.0, gt=0)
    connection_pool_size: int = Field(default=32, ge=1, le=256)
    #: Webhook mode (optional; long polling when ``webhook_url`` is empty).
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_secret_token: SecretStr | None = None

    @property
    def enabled(self) -> bool:
        return self.token is not None and bool(self.token.get_secret_value().strip())


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` names this machine: ``localhost`` (and ``*.localhost``) or a loopback
    address (127.0.0.0/8, ::1). Only there may SMTP credentials travel without TLS."""
    name = (host or "").strip().strip("[]").rstrip(".").lower()
    if not name:
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class EmailConfig(BaseModel):
    """SMTP for alerts and the staff digest. With no ``host`` there is no e-mail channel.

    A login (``username``) needs ``security`` "starttls" or "tls": with "none" the password
    would cross the network in clear, so that is refused unless the host is this machine (a
    local relay).
    """

    model_config = ConfigDict(extra="forbid")

    host: str | None = None
    port: int = Field(default=587, ge=1, le=65535)
    #: "starttls" (port 587), "tls" (implicit TLS, port 465) or "none" (a local relay only).
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_address: str = "sentinella@localhost"
    from_name: str = Field(default="Sentinella", max_length=80)
    #: Where a member asks to stop e-mails: ``mailto:`` address and/or https URL (List-Unsubscribe).
    list_unsubscribe_mailto: str | None = None
    list_unsubscribe_url: str | None = None
    #: Per-recipient one-click links (RFC 8058) to the web app: set by the settings from
    #: ``[web] base_url`` and ``secret_key`` when the web app is enabled; they take the place of
    #: ``list_unsubscribe_url`` (see ``notifier.messages.unsubscribe``).
    unsubscribe_base_url: str | None = None
    unsubscribe_secret: SecretStr | None = None
    #: Messages sent over one SMTP connection before it is closed and a new one opened.
    batch_size: int = Field(default=50, ge=1, le=1000)
    timeout: float = Field(default=30.0, gt=0)
    subject_prefix: str = Field(default="Sentinella", max_length=40)

    @field_validator("from_address", "list_unsubscribe_mailto")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().removeprefix("mailto:")
        if not re.fullmatch(r"[^@\s<>\"]+@[^@\s<>\"]+", value):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value

    @field_validator("list_unsubscribe_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^\s<>\"]+", value.strip()):
            raise ValueError("must be an http(s) URL")
        return None if value is None else value.strip()

    @field_validator("subject_prefix", "from_name")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if any(c in value for c in "\r\n"):
            raise ValueError("must be one line")
        return value

    @model_validator(mode="after")
    def _no_clear_text_login(self) -> EmailConfig:
        if self.plaintext_login_refused:
            raise ValueError(
                f'security = "none" with a username would send the SMTP password to {self.host} in '
                'clear: use security = "starttls" or "tls", or a relay on this machine (localhost)'
            )
        return self

    @property
    def plaintext_login_refused(self) -> bool:
        """A login asked for over an unencrypted connection to another machine."""
        return (
            self.enabled
            and self.security == "none"
            and bool(self.username)
            and not is_loopback_host(self.host)
        )

    @property
    def enabled(self) -> bool:
        return bool(self.host and self.host.strip())


class DeliveryConfig(BaseModel):
    """How the outbox dispatcher retries, gives up and recovers from a crash."""

    model_config = ConfigDict(extra="forbid")

    #: Wait before retry n (seconds); the last value repeats. A channel's own ``retry_after``
    #: (Telegram's flood control) replaces it: the message is retried when told.
    backoff_seconds: list[int] = Field(default_factory=lambda: [60, 300, 900, 3600, 10800], min_length=1)
    #: Attempts (claims) before a row is declared dead and admins are told.
    max_attempts: int = Field(default=6, ge=1, le=100)
    #: A row claimed ("sending") without an owner longer ago than this belongs to a dispatcher
    #: that died: it goes back to pending. Rows with an owner (every daemon and ``dispatch``
    #: records one) go back as soon as the owner's heartbeat expires (``lease_seconds``).
    stale_claim_seconds: int = Field(default=900, ge=30)
    #: Failed sends in a row (across messages, none confirmed in between) before a channel counts
    #: as down for the run: one read error or timeout is that message's retry, not an outage.
    down_after_failures: int = Field(default=5, ge=1, le=1000)
    #: Rows claimed by one dispatch run.
    batch_limit: int = Field(default=500, ge=1, le=10_000)
    #: Recipients served at once (each recipient's alerts go one after another, in order).
    concurrency: int = Field(default=64, ge=1, le=1000)
    #: On shutdown, how long in-flight sends may take before they are cancelled and returned.
    stop_grace_seconds: float = Field(default=5.0, ge=0, le=60)
    #: With neither a bot token nor an SMTP host, print alerts on the console and count them
    #: sent (a first run, the demo). Set false in production: a token or SMTP host missing after
    #: a mistaken restart then leaves every alert queued, to go out once it is configured again.
    console_fallback: bool = True
    #: How long a process's heartbeat and the sender lease last without renewal: a process killed
    #: is taken for dead, its claimed rows released and its lease taken over within this (plus
    #: ``renew_seconds``, how often they are renewed and free leases sought).
    lease_seconds: float = Field(default=20.0, ge=5, le=300)
    renew_seconds: float = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _renewed_in_time(self) -> DeliveryConfig:
        # Two renewals fit in a lease, so one slow database round does not lose it.
        if self.renew_seconds * 2 > self.lease_seconds:
            raise ValueError("renew_seconds must be at most half of lease_seconds")
        return self

    @field_validator("backoff_seconds")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(v <= 0 for v in value):
            raise ValueError("every backoff must be positive")
        return value

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1-based)."""
        index = min(max(attempts, 1), len(self.backoff_seconds)) - 1
        return float(self.backoff_seconds[index])


# --- matching: which calls reach which member ---------------------------------------------------


MatchField = Literal["title", "summary", "keywords", "programme", "description"]


def _exclusion_fields() -> list[MatchField]:
    # An exclusion means "calls whose subject is that sector" (RULES B4): the title and the
    # source's own tags say the subject; a summary mentions sectors in passing ("tutti i
    # settori, inclusa l'agricoltura"). Calls *reserved* to a sector are the applicant-sector rule's.
    return ["title", "keywords"]


class FieldWeights(BaseModel):
    """How much a term found in each field of a call counts (the best field of a term is kept)."""

    model_config = ConfigDict(extra="forbid")

    title: float = Field(default=3.0, ge=0, le=10)
    keywords: float = Field(default=2.5, ge=0, le=10)
    summary: float = Field(default=2.0, ge=0, le=10)
    #: The programme names where the money comes from ("Horizon Europe — Cluster 5", "PR FESR"),
    #: not what the call funds (RULES B2): by default it scores nothing.
    programme: float = Field(default=0.0, ge=0, le=10)
    description: float = Field(default=1.0, ge=0, le=10)


class MatchingConfig(BaseModel):
    """Matching of calls to member profiles (``[matching]`` in sentinella.toml).

    A call matches a profile when its score reaches ``threshold`` and no hard rule excludes it.
    The score adds, for each term of the profile's topics and keywords found in the call, the
    weight of the best field it was found in (plus ``repeat_weight`` of each further field), times
    ``weak_term_weight`` for weak terms and ``keyword_weight`` for the member's own keywords; a
    topic adds at most ``topic_cap``, the description alone at most ``description_cap``.
    """

    model_config = ConfigDict(extra="forbid")

    #: The cluster's region: the region of every member whose profile names none.
    region: str = Field(default="Lombardia", min_length=2, max_length=40)
    #: One strong term in a title (3) is enough: a short call titled "Imballaggi sostenibili"
    #: must reach a packaging maker. benchmarks/relevance.py fits the threshold per fold on the
    #: labelled real calls (3 to 4.5) and prints what it gives.
    threshold: float = Field(default=3.0, gt=0, le=100)
    field_weights: FieldWeights = Field(default_factory=FieldWeights)
    weak_term_weight: float = Field(default=0.35, ge=0, le=1)
    keyword_weight: float = Field(default=1.5, ge=0, le=10)
    topic_cap: float = Field(default=6.0, gt=0, le=100)
    #: A term found in several fields adds this share of each further field's weight: a call
    #: that names packaging in its summary *and* its text is more about packaging.
    repeat_weight: float = Field(default=0.5, ge=0, le=1)
    #: What the description alone can add to a score: the subject of a call is in its title,
    #: summary and keywords; a long text mentions everything once ("acquisto di macchinari").
    description_cap: float = Field(default=1.5, ge=0, le=100)
    #: Exclusion terms of a profile are looked for in these fields only: a long description
    #: mentions everything in passing ("esclusi i settori agricoltura e pesca").
    exclusion_fields: list[MatchField] = Field(default_factory=_exclusion_fields)
    #: Characters of a description read for matching (EU topic texts run to tens of thousands).
    max_description_chars: int = Field(default=20_000, ge=1_000, le=200_000)
    #: Eligibility rules (territory, applicant type and sector, ATECO) and the "other sector"
    #: rule. Switch off only to see what plain keyword matching would do.
    eligibility_rules: bool = True
    sector_rule: bool = True
    #: Purpose before words (RULES B2): when a call's title names a topic in strong words
    #: ("voucher formativo", "internazionalizzazione"), a member none of whose topics it is
    #: is matched by its own keywords only, not by what the summary mentions on the way.
    purpose_rule: bool = True
    #: Reasons kept per match, one per topic or keyword, strongest first ("Perché" shows them).
    max_reasons: int = Field(default=3, ge=1, le=50)

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        from notifier.matching.vocabulary import default_vocabulary

        region = default_vocabulary().region_named(value)
        if region is None:
            raise ValueError(f"unknown Italian region {value!r}")
        return region
