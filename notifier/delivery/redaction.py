"""Secrets out of every text that leaves the process: log lines, error lines, admin notices.

One :class:`Redactor` is built from the settings in the entry point (``scheduler.cli``) and
every path that shows an error goes through it: the CLI's one-line errors and ``--debug``
tracebacks, every log record (a filter on the root handlers, so the daemon, the bot's error
handler and library loggers alike), the Telegram channel's failure texts and admin notices.

What is masked: each configured secret (bot token, webhook secret, SMTP and database
passwords), also percent-encoded as it appears in URLs; and anything shaped like a Telegram bot
token or a Bot API URL path (``/bot<id>:<secret>/``), configured or not, because a token may
reach the process by another route (an old setting, a test double) and the shape is unambiguous.

Known limits: a secret shorter than :data:`MIN_SECRET` characters is not masked (it would mask
ordinary words); a secret split across two log records is not recognised.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"
MIN_SECRET = 4
#: A Telegram bot token: the bot's numeric id, a colon, 30 or more URL-safe characters.
TOKEN_SHAPE = re.compile(r"\b\d{4,}:[A-Za-z0-9_-]{30,}")
#: The token inside a Bot API URL (``https://api.telegram.org/bot<token>/getMe``), any length.
BOT_URL = re.compile(r"(/bot)\d+(?::|%3[Aa])[A-Za-z0-9_-]+")


class Redactor:
    """Replaces secrets by :data:`MASK`; calling it on a text returns the masked text."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        found: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET:
                found.update({secret, quote(secret, safe=""), quote(secret)})
        # Longest first: a secret containing another is masked whole. Case is ignored:
        # python-telegram-bot rewrites the case of error descriptions it quotes.
        alternatives = "|".join(re.escape(s) for s in sorted(found, key=len, reverse=True))
        self._secrets = re.compile(alternatives, re.IGNORECASE) if alternatives else None

    def __call__(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub(MASK, text)
        text = BOT_URL.sub(rf"\g<1>{MASK}", text)
        return TOKEN_SHAPE.sub(MASK, text)

    def exception(self, exc: BaseException) -> str:
        """The traceback of ``exc``, masked."""
        return self("".join(traceback.format_exception(exc)))

    def log_filter(self) -> logging.Filter:
        return _RedactingFilter(self)


class _RedactingFilter(logging.Filter):
    """Masks the formatted message and the traceback of every record a handler emits."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the logging module reports it itself
            return True
        record.msg, record.args = self.redactor(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redactor.exception(record.exc_info[1]).rstrip("\n")
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        return True


def install(redactor: Redactor) -> None:
    """Mask every record the root logger's handlers emit (replacing an earlier redactor)."""
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, _RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(redactor.log_filter())
