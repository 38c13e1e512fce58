"""The source spiders: one module per source, named by one rule (see :mod:`crawler.base`).

``crawler/spiders/<name>.py`` defines ``class <CamelCase name>`` with ``name = "<name>"``, where
``<name>`` is the source's name in the database and its section of the sources config.
"""

from __future__ import annotations

import importlib
import pkgutil

from crawler.base import SentinellaSpider


def class_name(name: str) -> str:
    """``"sedia"`` → ``"Sedia"``, ``"open_innovation"`` → ``"OpenInnovation"``."""
    return "".join(part.capitalize() for part in name.split("_"))


def spider_names() -> list[str]:
    """Names of every spider module in this package."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def spider_class(name: str) -> type[SentinellaSpider]:
    """The spider class of source ``name`` (imports its module)."""
    if name not in spider_names():
        raise KeyError(f"no spider for source {name!r}")
    module = importlib.import_module(f"{__name__}.{name}")
    cls = getattr(module, class_name(name))
    if not (isinstance(cls, type) and issubclass(cls, SentinellaSpider)):
        raise TypeError(f"{module.__name__}.{class_name(name)} is not a SentinellaSpider")
    return cls
