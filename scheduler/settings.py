"""Sentinella's one settings object: the only code that reads configuration files or the environment.

Where values come from, strongest first:

1. ``SENTINELLA_*`` environment variables; nested keys use ``__``
   (``SENTINELLA_TELEGRAM__TOKEN``, ``SENTINELLA_SOURCES__SEDIA__ENABLED=false``);
2. the TOML file: ``--config PATH``, else ``$SENTINELLA_CONFIG``, else ``./sentinella.toml`` if present;
3. defaults, which run with no file at all (SQLite ``./sentinella.db``, Europe/Rome, Italian,
   console delivery).

A wrong or unknown key fails at start-up with :class:`SettingsError`, whose message names the key
and where it came from (the file, or the environment variable). Secrets are ``SecretStr``: they
print as ``**********``, and a value that is only asterisks (a masked printout copied into the
file) is refused.

Every other package receives the typed sections it needs (``settings.crawl``, ``settings.sources``,
``settings.telegram`` …); none of them reads the environment.
"""

from __future__ import annotations

import os
import re
import time
import tomllib
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings.sources.utils import parse_env_vars

from crawler.config import SOURCE_NAMES, CrawlConfig, SourcesConfig
from notifier.config import (
    DeliveryConfig,
    DigestConfig,
    EmailConfig,
    MatchingConfig,
    RemindersConfig,
    TelegramConfig,
)
from web.config import WebConfig

ENV_PREFIX = "SENTINELLA_"
DEFAULT_CONFIG = Path("sentinella.toml")
#: The settings that hold secrets (section, name): masked in every printout of the settings.
SECRET_SETTINGS = (("telegram", "token"), ("telegram", "webhook_secret_token"), ("email", "password"))
#: Environment variables with our prefix that are not settings.
NOT_SETTINGS = {"SENTINELLA_CONFIG", "SENTINELLA_TEST_POSTGRES_URL"}

_toml_path: ContextVar[Path | None] = ContextVar("sentinella_toml_path", default=None)
_environ: ContextVar[Mapping[str, str] | None] = ContextVar("sentinella_environ", default=None)


class _MappingEnvSource(EnvSettingsSource):
    """The environment source, reading the mapping given to :func:`load_settings` (tests pass
    their own) instead of ``os.environ``; never touches the process environment."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _environ.get()
        if environ is None:
            return super()._load_env_vars()
        return parse_env_vars(environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class SettingsError(Exception):
    """Configuration that cannot be used; the message is meant for the user, one line a problem."""


class HousekeepingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Crawl runs and sent outbox rows older than this are pruned; calls and events never are.
    keep_days: int = Field(default=180, ge=7)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    #: SQLAlchemy URL; ``postgresql://user@host/db`` for production.
    database_url: str = "sqlite:///./sentinella.db"
    timezone: str = "Europe/Rome"
    #: Default language of user-facing text: "it" or "en".
    language: str = "it"
    #: Pins "now" for the whole program (tests, the offline demo); unset = the real clock.
    now: datetime | None = None
    log_level: str = "INFO"

    crawl: CrawlConfig = Field(default_factory=CrawlConfig)
    sources: SourcesConfig = Field(default_factory=SourcesConfig)
    telegram: TelegramConfig = Field(default_factory=TelegramConfig)
    email: EmailConfig = Field(default_factory=EmailConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    matching: MatchingConfig = Field(default_factory=MatchingConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    reminders: RemindersConfig = Field(default_factory=RemindersConfig)
    housekeeping: HousekeepingConfig = Field(default_factory=HousekeepingConfig)
    web: WebConfig = Field(default_factory=WebConfig)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in ("it", "en"):
            raise ValueError("must be 'it' or 'en'")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.upper()
        if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value

    @model_validator(mode="after")
    def _web_unsubscribe(self) -> Settings:
        """With the web app on, every e-mail carries its recipient's own one-click links."""
        if self.web.enabled and self.web.secret_key is not None:
            self.email = self.email.model_copy(
                update={"unsubscribe_base_url": self.web.base_url, "unsubscribe_secret": self.web.secret_key}
            )
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def pinned_now(self) -> datetime | None:
        """The pinned instant, aware (a naive ``now`` is read in the configured time zone)."""
        if self.now is None:
            return None
        return self.now if self.now.tzinfo else self.now.replace(tzinfo=self.tz)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _toml_path.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, _MappingEnvSource(settings_cls)]
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def config_path(explicit: str | Path | None, environ: Mapping[str, str]) -> tuple[Path | None, bool]:
    """The TOML file to read and whether the user named it (a named file must exist)."""
    if explicit:
        return Path(explicit), True
    if environ.get("SENTINELLA_CONFIG"):
        return Path(environ["SENTINELLA_CONFIG"]), True
    return (DEFAULT_CONFIG, False) if DEFAULT_CONFIG.exists() else (None, False)


def _has_path(data: Mapping[str, Any], loc: tuple[Any, ...]) -> bool:
    node: Any = data
    for part in loc:
        if (isinstance(node, Mapping) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
        else:
            return False
    return True


def _where(
    loc: tuple[Any, ...], file_data: Mapping[str, Any], path: Path | None, environ: Mapping[str, str]
) -> str:
    """Where the value at ``loc`` came from: an environment variable wins over the file."""
    upper = {k.upper() for k in environ}
    for depth in range(len(loc), 0, -1):
        var = ENV_PREFIX + "__".join(str(p) for p in loc[:depth]).upper()
        if var in upper:
            return f"from ${var}"
    if path is not None and _has_path(file_data, loc):
        return f"in {path}"
    return "(default)"


def _describe(
    exc: ValidationError, file_data: Mapping[str, Any], path: Path | None, environ: Mapping[str, str]
) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc)
        where = "(required)" if err["type"] == "missing" else _where(loc, file_data, path, environ)
        message = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"setting {key!r} {where}: {message}")
    return "\n".join(lines)


def _check_schedules(
    settings: Settings, file_data: Mapping[str, Any], path: Path | None, env: Mapping[str, str]
) -> None:
    """Each schedule must make a real trigger (a cron string can look right and still be out of range)."""
    from scheduler.jobs import trigger_for

    problems = []
    for name in SOURCE_NAMES:
        schedule = getattr(settings.sources, name).schedule
        try:
            trigger_for(schedule, settings.tz)
        except ValueError as exc:
            loc = ("sources", name, "schedule")
            problems.append(f"setting 'sources.{name}.schedule' {_where(loc, file_data, path, env)}: {exc}")
    if problems:
        raise SettingsError("\n".join(problems))


def _url_password(url: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(url).password
    except ArgumentError:
        return None
    return None if password is None else str(password)


def _unknown_env(environ: Mapping[str, str]) -> list[str]:
    known = {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields}
    problems = []
    for var in environ:
        if not var.startswith(ENV_PREFIX) or var in NOT_SETTINGS:
            continue
        head = var.split("__", 1)[0]
        if head not in known:
            problems.append(f"setting ${var} from the environment: unknown setting")
    return problems


def load_settings(
    config: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    read_file: bool = True,
    **overrides: Any,
) -> Settings:
    """Build the settings from file, environment and defaults, or raise :class:`SettingsError`.

    ``read_file=False`` ignores every configuration file (``sentinella config --defaults``)."""
    env = os.environ if environ is None else environ
    path, named = config_path(config, env) if read_file else (None, False)
    file_data: dict[str, Any] = {}
    if path is not None:
        if not path.is_file():
            if named:
                raise SettingsError(f"configuration file {path} does not exist")
            path = None
        else:
            try:
                file_data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise SettingsError(f"configuration file {path} is not valid TOML: {exc}") from exc
    problems = _unknown_env(env)
    if problems:
        raise SettingsError("\n".join(problems))
    path_token = _toml_path.set(path)
    env_token = _environ.set(environ)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, file_data, path, env)) from None
    finally:
        _toml_path.reset(path_token)
        _environ.reset(env_token)
    _check_schedules(settings, file_data, path, env)
    _check_placeholders(settings, file_data, path, env)
    return settings


#: What a secret looks like when it was copied from a masked printout: only asterisks.
MASKED = re.compile(r"\*{3,}")


def _check_placeholders(
    settings: Settings, file_data: Mapping[str, Any], path: Path | None, env: Mapping[str, str]
) -> None:
    """A secret that reads like a mask (``"**********"``) is a copied printout, not a secret:
    refused, so the daemon never tries it on the network and reports a misleading failure."""
    problems = []
    for section, name in SECRET_SETTINGS:
        value = getattr(getattr(settings, section), name)
        if isinstance(value, SecretStr) and MASKED.fullmatch(value.get_secret_value().strip()):
            loc = (section, name)
            problems.append(
                f"setting '{section}.{name}' {_where(loc, file_data, path, env)}: a masked placeholder, "
                "not a secret; set the real value (or remove the line)"
            )
    password = _url_password(settings.database_url)
    if password is not None and MASKED.fullmatch(password):
        where = _where(("database_url",), file_data, path, env)
        problems.append(
            f"setting 'database_url' {where}: the password is a masked placeholder; set the real one"
        )
    if problems:
        raise SettingsError("\n".join(problems))


def make_clock(settings: Settings) -> Callable[[], datetime]:
    """The program's one clock: the real time in the configured zone, or, when ``now`` is set,
    a clock that starts at that instant and runs on from there.

    A pinned clock still moves, so a daemon started on the recordings' date still sees retries
    and reminders fall due; a one-shot command sees the pinned instant (to the millisecond).
    Every "now" in crawler, matching, reminders and the scheduler comes from this callable.
    """
    tz = settings.tz
    pinned = settings.pinned_now()
    if pinned is not None:
        start = pinned.astimezone(tz)
        origin = time.monotonic()
        return lambda: start + timedelta(seconds=time.monotonic() - origin)
    return lambda: datetime.now(tz)


def make_wall_clock(settings: Settings) -> Callable[[], datetime]:
    """The machine's time, whatever ``now`` pins: what APScheduler's run times are measured in.

    Only the daemon needs it (a pinned program clock may be months behind the machine, and
    APScheduler would take runs set at program time for missed ones); every business decision
    uses :func:`make_clock`.
    """
    tz = settings.tz
    return lambda: datetime.now(tz)
