"""The bot's texts: Italian (the default) and English, from the catalogue (``bot.*`` ids).

:func:`t` picks a text by key and language and fills its placeholders. Templates are Telegram
HTML written in the catalogue (:mod:`notifier.catalogue`); the values put into them are escaped with ``html.escape`` unless they are
wrapped in :class:`Html` (markup already built from escaped parts). So a call title, a member's
name or a keyword typed by a member can never inject markup.

A member's language is the one stored on the member (``/lingua`` changes it). A chat that is not
a member yet is answered in the language its Telegram client reports: Italian for ``it`` or no
code, English for any other code (someone whose phone is set to another language reads English
more easily than Italian).

Known limits: only two languages; plural forms are chosen with two keys where needed.
"""

from __future__ import annotations

import html

from notifier import catalogue

LANGUAGES = catalogue.LANGUAGES
DEFAULT_LANGUAGE = catalogue.DEFAULT_LANGUAGE


class Html(str):
    """Markup already escaped (built by the bot from escaped parts): inserted as it is."""

    __slots__ = ()


def esc(value: object) -> str:
    """A value as Telegram HTML text (``<``, ``>``, ``&`` and quotes escaped)."""
    if isinstance(value, Html):
        return value
    return html.escape(str(value), quote=True)


def normalise_language(code: str | None) -> str:
    """A stored or requested language: ``it``/``en`` (``en-GB`` → ``en``); default Italian."""
    return catalogue.language(code)


def language_from_telegram(code: str | None) -> str:
    """The language for a chat that is not a member yet, from Telegram's ``language_code``."""
    if not code:
        return DEFAULT_LANGUAGE
    return "it" if code.strip().lower().startswith("it") else "en"


def t(lang: str, key: str, /, **values: object) -> str:
    """The bot's text ``key`` (catalogue id ``bot.<key>``) in ``lang`` (Italian if unknown) with
    its placeholders filled and escaped."""
    template = catalogue.template(normalise_language(lang), f"bot.{key}")
    if not values:
        return template
    return template.format(**{name: esc(value) for name, value in values.items()})


def bot_keys() -> frozenset[str]:
    """The bot's text keys (catalogue ids ``bot.*`` without the prefix)."""
    return frozenset(k.removeprefix("bot.") for k in catalogue.message_ids() if k.startswith("bot."))
