"""Every text Sentinella says to people, in one gettext catalogue: Italian first, English.

The catalogue is two ``.po`` files, ``notifier/locale/<lang>/LC_MESSAGES/sentinella.po`` for
``it`` and ``en``. A message id is a dotted key naming where the text is used (``bot.start.need_code``,
``alert.new``, ``digest.title``, ``change.deadline_moved``, ``web.nav.calls``, ``notice.source_failing``);
the translation is the text, with ``{name}`` placeholders (python-brace-format). The ``.po``
files are the source: they are compiled with Babel into gettext catalogues at first use (no build
step, nothing compiled is committed), and ``pybabel compile -d notifier/locale -D sentinella``
compiles them the usual way for tools that want ``.mo`` files.

:func:`text` gives a text in a language with its placeholders filled (plain text: each format
escapes it its own way); an unknown key is an error, never the key shown to a member.
:func:`section` gives a table view (``section("alert")["it"]["new"]``) for code that reads a
block of texts of one place.

Admin notices are stored before anyone knows which admin reads them: :func:`notice` keeps a
key and its values as the stored message, and :func:`notice_text` says it in each admin's
language (a message stored as plain text is shown as it is).

This module imports nothing of the notifier, so every room (and the web board) uses it.
"""

from __future__ import annotations

import gettext
import json
import string
from collections.abc import Iterator, Mapping
from functools import lru_cache
from importlib import resources
from io import BytesIO
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("it", "en")
DEFAULT_LANGUAGE = "it"
DOMAIN = "sentinella"


def language(code: str | None) -> str:
    """``it`` or ``en`` from a stored or requested tag (``en-GB`` → ``en``); Italian otherwise."""
    if not code:
        return DEFAULT_LANGUAGE
    head = code.strip().lower().replace("_", "-").split("-", 1)[0]
    return head if head in LANGUAGES else DEFAULT_LANGUAGE


def po_text(lang: str) -> str:
    """The ``.po`` source of ``lang`` (``it`` or ``en``)."""
    path = resources.files("notifier") / "locale" / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    return path.read_text(encoding="utf-8")


@lru_cache(maxsize=len(LANGUAGES))
def translations(lang: str) -> gettext.GNUTranslations:
    """The compiled catalogue of ``lang``, compiled from its ``.po`` at first use."""
    catalog = read_po(BytesIO(po_text(lang).encode("utf-8")), locale=lang, domain=DOMAIN)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@lru_cache(maxsize=len(LANGUAGES))
def _messages(lang: str) -> Mapping[str, str]:
    compiled = translations(lang)
    table: dict[Any, str] = compiled._catalog  # type: ignore[attr-defined]
    return {key: value for key, value in table.items() if isinstance(key, str) and key and value}


def message_ids(lang: str = DEFAULT_LANGUAGE) -> frozenset[str]:
    """Every message id translated in ``lang``."""
    return frozenset(_messages(lang))


def template(lang: str, key: str) -> str:
    """The text of ``key`` in ``lang`` with its placeholders unfilled; KeyError if unknown."""
    try:
        return _messages(language(lang))[key]
    except KeyError:
        raise KeyError(f"no text {key!r} in the catalogue") from None


def text(lang: str, key: str, /, **values: object) -> str:
    """The text of ``key`` in ``lang`` (Italian for an unknown language) with its placeholders
    filled. Plain text: the caller escapes it for its format."""
    found = template(lang, key)
    return found.format(**values) if values else found


def placeholders(value: str) -> set[str]:
    """The placeholder names of a text (both languages must use the same)."""
    return {name for _, name, _, _ in string.Formatter().parse(value) if name}


class _Section(Mapping[str, str]):
    """The texts of one place in one language, by their short key."""

    __slots__ = ("lang", "prefix")

    def __init__(self, lang: str, prefix: str) -> None:
        self.lang = lang
        self.prefix = prefix

    def __getitem__(self, key: str) -> str:
        return template(self.lang, f"{self.prefix}.{key}")

    def __iter__(self) -> Iterator[str]:
        head = f"{self.prefix}."
        return iter(sorted(k[len(head) :] for k in message_ids(self.lang) if k.startswith(head)))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Sections(Mapping[str, Mapping[str, str]]):
    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __getitem__(self, lang: str) -> Mapping[str, str]:
        return _Section(language(lang), self.prefix)

    def __iter__(self) -> Iterator[str]:
        return iter(LANGUAGES)

    def __len__(self) -> int:
        return len(LANGUAGES)


def section(prefix: str) -> Mapping[str, Mapping[str, str]]:
    """The texts under ``prefix.`` by language then short key: ``section("alert")["en"]["new"]``."""
    return _Sections(prefix)


# --- admin notices ------------------------------------------------------------------------------

_NOTICE_MARK = "sentinella-text:"
#: A value longer than this is cut (stored notices are capped, and must stay readable JSON).
MAX_NOTICE_VALUE = 300


def notice(key: str, /, **values: object) -> str:
    """A stored admin notice message: the key of its text and its values, said later in each
    admin's language by :func:`notice_text`."""
    template(DEFAULT_LANGUAGE, key)  # an unknown key fails here, where it is written
    kept = {k: str(v)[:MAX_NOTICE_VALUE] for k, v in values.items()}
    return _NOTICE_MARK + json.dumps({"key": key, "values": kept}, ensure_ascii=False)


def notice_text(message: str, lang: str) -> str:
    """A stored notice message in ``lang``; a message stored as plain text is shown as it is."""
    if not message.startswith(_NOTICE_MARK):
        return message
    try:
        data = json.loads(message[len(_NOTICE_MARK) :])
        return text(lang, str(data["key"]), **{str(k): v for k, v in dict(data["values"]).items()})
    except (ValueError, KeyError, TypeError, IndexError):
        return message
