"""Every text of the web pages and feeds, Italian first, English available: the catalogue's
``web.*`` texts (:mod:`notifier.catalogue`).

Texts are plain: templates autoescape them like any other value.
"""

from __future__ import annotations

from notifier import catalogue

LANGUAGES = catalogue.LANGUAGES


def text(lang: str, key: str, **values: object) -> str:
    """The text ``key`` (catalogue id ``web.<key>``) in ``lang`` (Italian for anything but
    ``en``), placeholders filled."""
    return catalogue.text(lang, f"web.{key}", **values)


def web_keys() -> frozenset[str]:
    """The web board's text keys (catalogue ids ``web.*`` without the prefix)."""
    return frozenset(k.removeprefix("web.") for k in catalogue.message_ids() if k.startswith("web."))
