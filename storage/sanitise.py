"""Untrusted text made safe to store, once, at the boundary (ingest, imports, member data).

What goes: terminal escape sequences (ANSI CSI ``ESC[…``, OSC ``ESC]…`` such as the clipboard
write ``ESC]52;c;…``, and any other ``ESC`` pair), every other C0 and C1 control character
(tab and newline are kept, a carriage return becomes a newline) and the bidirectional
embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069) that make a title read
differently from what it is. What stays: everything else, letters of every script included.

URLs lose a user-info part (``https://trusted.example@evil.example/``): shown as a link it
names a host that is not the one reached; :func:`url_userinfo` tells an importer so it can
refuse the line instead.

:func:`visible` is for output of data stored before this rule (or by hand): it replaces each
control character by a visible stand-in of the same length, so a terminal shows it instead of
obeying it.

Cost: a clean record is returned as the same object after one regular-expression scan of its
texts joined and one of its ``raw`` JSON (about 6 % of an import's CPU time); only a record with
something to remove is rebuilt. Known limits: JSON kept in ``raw`` is cleaned string by string,
keys included; homoglyphs (a Cyrillic "а" in a host name) are not this module's business.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from storage.records import Attachment, CallRecord, Deadline

#: Any character the cleaning removes or rewrites (a fast test for "already clean").
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: Escape sequences, whole: CSI (ESC [ or the C1 CSI), OSC / DCS / APC / PM / SOS strings up to
#: their terminator (BEL or ST), and two-character escapes.
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]P_^X]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
)


def clean_text(text: str) -> str:
    """``text`` without escape sequences, control characters (tab, newline kept) and bidi
    controls; carriage returns become newlines."""
    if not _UNSAFE.search(text):
        return text
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _UNSAFE.sub("", _SEQUENCE.sub("", text))


def url_userinfo(url: str) -> bool:
    """Whether ``url`` carries a user-info part (``user@host`` or ``user:pass@host``)."""
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return False


def clean_url(url: str) -> str:
    """``url`` cleaned as text and without a user-info part."""
    url = clean_text(url).strip()
    if not url_userinfo(url):
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def clean_json(value: Any) -> Any:
    """JSON-like data with every string cleaned (for the ``raw`` column)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    return value


_TEXT_FIELDS = (
    "source",
    "source_id",
    "title",
    "summary",
    "description",
    "programme",
    "funding_source",
    "granting_body",
)
_LIST_FIELDS = ("beneficiaries", "regions", "ateco_codes", "keywords", "support_forms")


#: What ``json.dumps`` makes of a C0 control character or DEL (it escapes them).
_ESCAPED_CONTROL = re.compile(r"\\u00[01][0-9a-fA-F]|\\u007[fF]")


def _raw_is_clean(value: Any) -> bool:
    try:
        dumped = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return False  # not plain JSON: let the cleaning walk it (ingest reports the rest)
    return not (_UNSAFE.search(dumped) or _ESCAPED_CONTROL.search(dumped))


def _record_is_clean(record: CallRecord) -> bool:
    texts = [getattr(record, name) for name in _TEXT_FIELDS]
    for name in _LIST_FIELDS:
        texts.extend(getattr(record, name))
    urls = [record.url, *record.links, *(a.url for a in record.attachments)]
    texts.extend(urls)
    texts.extend(a.name for a in record.attachments)
    texts.extend(d.label for d in record.deadlines)
    if _UNSAFE.search("".join(texts)):
        return False
    if any("@" in url and url_userinfo(url) for url in urls):
        return False
    return record.raw is None or _raw_is_clean(record.raw)


def clean_record(record: CallRecord) -> CallRecord:
    """The record with every text cleaned and every URL stripped of user-info; a clean record
    is returned as is."""
    if _record_is_clean(record):
        return record
    changes: dict[str, Any] = {name: clean_text(getattr(record, name)) for name in _TEXT_FIELDS}
    changes.update({name: tuple(clean_text(v) for v in getattr(record, name)) for name in _LIST_FIELDS})
    changes["url"] = clean_url(record.url)
    changes["links"] = tuple(clean_url(link) for link in record.links)
    changes["attachments"] = tuple(
        Attachment(clean_text(a.name), clean_url(a.url)) for a in record.attachments
    )
    changes["deadlines"] = tuple(Deadline(d.at, d.precision, clean_text(d.label)) for d in record.deadlines)
    if record.raw is not None:
        changes["raw"] = clean_json(record.raw)
    return replace(record, **changes)


# --- output of what is already stored ---------------------------------------------------------------

_PICTURES = {code: chr(0x2400 + code) for code in range(0x20)} | {0x7F: "\u2421"}


def _stand_in(match: re.Match[str]) -> str:
    char = match.group()
    return _PICTURES.get(ord(char), "\ufffd")


def visible(text: str) -> str:
    """``text`` with each control character (tab and newline excepted) replaced by a visible
    stand-in of the same length: ``␛`` for ESC, ``�`` for C1 and bidi controls."""
    return _UNSAFE.sub(_stand_in, text)
