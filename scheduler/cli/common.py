"""What every command shares: the lazily built application context, errors, and output helpers.

Commands never print tracebacks: a known error (bad setting, unreachable database, unknown id,
bad date) is one line on stderr and exit code 1; anything unexpected is one line too, with the
traceback only under ``--debug``.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.segment import Segment
from rich.text import Text
from sqlalchemy.engine import make_url

from notifier.delivery.redaction import Redactor, install
from scheduler.settings import SECRET_SETTINGS, Settings, SettingsError, load_settings, make_clock
from storage.db import Database, DatabaseError, normalise_url
from storage.records import json_value
from storage.sanitise import visible

P = ParamSpec("P")
R = TypeVar("R")


class SafeConsole(Console):
    """A console that shows control characters instead of sending them to the terminal.

    Text is cleaned when it is stored (``storage.sanitise``), but rows stored before that, or
    by hand, may still hold an escape sequence (``ESC]52`` writes the clipboard, ``ESC[2J``
    clears the screen) or a bidi override. Every piece of text printed, in tables and panels
    too, has them replaced by visible stand-ins of the same width; the console's own styles
    are untouched. Rich has no public hook where every printed segment passes: this overrides
    ``Console._render_buffer``, and the probe suite (``tests/security``) fails if an upgrade of
    Rich stops calling it.
    """

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            segment if segment.control else Segment(visible(segment.text), segment.style, segment.control)
            for segment in buffer
        )


# Markup off: scraped titles may contain "[...]", which must print as text. Soft wrap: a path or
# a one-line error stays on one line, however long. (Console delivery prints panels, which soft
# wrap would crop: it gets a console of its own, see console_for_delivery.)
out = SafeConsole(highlight=False, soft_wrap=True, markup=False)
err = SafeConsole(stderr=True, highlight=False, soft_wrap=True, markup=False)


def console_for_delivery() -> Console:
    """A console for alerts and digests printed as they would be sent: wraps, never crops."""
    return SafeConsole(highlight=False, markup=False)


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


class AppContext:
    """Settings, clock and database for one command, built on first use."""

    def __init__(self, config: Path | None = None, debug: bool = False) -> None:
        self.config_path = config
        self.debug = debug
        self._settings: Settings | None = None
        self._db: Database | None = None
        self._clock: Callable[[], datetime] | None = None
        #: Masks secrets in error lines and logs; knows the configured ones once settings load.
        self.redact = Redactor()

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            self.redact = Redactor(secrets_of(self._settings))
            configure_logging(self._settings.log_level, debug=self.debug, redact=self.redact)
        return self._settings

    @property
    def clock(self) -> Callable[[], datetime]:
        if self._clock is None:
            self._clock = make_clock(self.settings)
        return self._clock

    def now(self) -> datetime:
        return self.clock()

    @property
    def db(self) -> Database:
        """The database, migrated to the latest schema (migrations run implicitly on start)."""
        if self._db is None:
            db = Database(self.settings.database_url)
            db.upgrade()
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()
            self._db = None


def configure_logging(level: str, *, debug: bool = False, redact: Redactor | None = None) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Every record, whoever logs it (the daemon, the bot, a library), has its secrets masked.
    install(redact or Redactor())
    # httpx logs every request URL at INFO, and every Bot API URL contains the bot token.
    for noisy in ("httpx", "httpcore", "telegram.request", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def context(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):
        obj = AppContext()
        ctx.find_root().obj = obj
    return obj


def _app_of(values: Iterable[object]) -> AppContext | None:
    """The application context among a command's arguments.

    Typer hands commands its own click context class, which is not ``typer.Context``: the
    context is recognised by what it does (``find_root``), not by its class.
    """
    for value in values:
        find_root = getattr(value, "find_root", None)
        if callable(find_root):
            obj = find_root().obj
            if isinstance(obj, AppContext):
                return obj
    return None


def handles_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn known failures into a one-line message and exit code 1 (traceback only with --debug).

    Every line printed here, the ``--debug`` traceback included, goes through the redactor of
    the command's context: a secret in an exception's text (a library quoting the bot token)
    never reaches the terminal.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        app = _app_of([*args, *kwargs.values()])
        debug = "--debug" in sys.argv or (app is not None and app.debug)

        def redact(text: str) -> str:
            return app.redact(text) if app is not None else Redactor()(text)

        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            if debug:
                sys.stderr.write(redact("".join(traceback.format_exception(exc))))
                raise typer.Exit(1) from None
            if isinstance(exc, (SettingsError, DatabaseError, CliError)):
                for line in str(exc).splitlines() or [type(exc).__name__]:
                    error_line(redact(line))
                raise typer.Exit(1) from None
            text = str(exc).strip().splitlines()
            first = redact(text[0]) if text else ""
            error_line(f"{type(exc).__name__}: {first} (run with --debug for details)")
            raise typer.Exit(1) from None

    return wrapper


def error_line(line: str) -> None:
    """One ``error: …`` line on stderr."""
    # Text, not markup: the message may quote scraped or user text.
    err.print(Text.assemble(("error:", "red"), " ", line))


def secrets_of(settings: Settings) -> list[str]:
    values = [getattr(getattr(settings, section), name) for section, name in SECRET_SETTINGS]
    found = [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]
    password = make_url(normalise_url(settings.database_url)).password
    if password:
        found.append(str(password))
    return found


def parse_date_option(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CliError(f"{name}: bad date {value!r} (expected YYYY-MM-DD)") from None


def jsonable(value: Any) -> Any:
    """Turn views (dataclasses, datetimes, Decimals, enums, tuples) into plain JSON values."""
    return json_value(value)


#: Characters JSON leaves raw that a terminal may obey: DEL, C1 controls, bidi controls.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def print_json(value: Any) -> None:
    """``value`` as JSON on stdout; control characters are escaped (``\\u001b``), never raw."""
    text = json.dumps(jsonable(value), ensure_ascii=False, indent=2)
    sys.stdout.write(_JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")


def fmt_dt(value: datetime | None, tz: Any, *, precision: str | None = None) -> str:
    if value is None:
        return "—"
    local = value.astimezone(tz)
    if precision == "date":
        return local.strftime("%Y-%m-%d")
    return local.strftime("%Y-%m-%d %H:%M")


def fmt_money(value: Decimal | None) -> str:
    if value is None:
        return "—"
    whole = f"{value:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")
    if whole.endswith(",00"):
        whole = whole[:-3]
    return f"€ {whole}"


def short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def read_lines_arg(path: Path) -> Iterator[bytes]:
    """The lines of a file, or of standard input for ``-``, as bytes, read as they are needed.

    Lines end at ``\n`` only: a U+2028 or a stray carriage return inside a line keeps it whole.
    Decoding is the caller's, line by line, so one line that is not UTF-8 is that line's error.
    """
    if str(path) == "-":
        yield from sys.stdin.buffer
        return
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    try:
        with path.open("rb") as handle:
            yield from handle
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
