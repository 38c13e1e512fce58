"""What an official act or document does to a call, read from its title or file name.

One set of rules for every source of acts: the BURL's decree subjects and the names of the PDFs
on a call's page (Unioncamere's "determinazioni"). The kinds are :data:`storage.acts.ACT_KINDS`.
"""

from __future__ import annotations

import re

_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("proroga", re.compile(r"\bprorog|\bdifferiment|\bposticip", re.I)),
    ("riapertura", re.compile(r"\briapertur|\briapre\b|\briaperto\b", re.I)),
    (
        "graduatoria",
        re.compile(
            r"\bgraduatori|\besiti\b|\besito\b|\belenc\w*\s+(?:\w+\s+){0,3}ammess|\bammess\w*\s+e\s+non"
            r"|\bimprese\s+ammesse|\bbeneficiari\s+ammessi|\bdomande\s+ammesse|\bammissibil",
            re.I,
        ),
    ),
    ("rettifica", re.compile(r"\brettific|\bmodific|\bintegrazion|\berrata\s+corrige", re.I)),
)


def classify(text: str, *, default: str = "altro") -> str:
    """The kind of act ``text`` (a title, a file name with ``_`` for spaces) describes:
    proroga, riapertura, graduatoria, rettifica, else ``default``."""
    words = text.replace("_", " ")
    for kind, pattern in _KINDS:
        if pattern.search(words):
            return kind
    return default
