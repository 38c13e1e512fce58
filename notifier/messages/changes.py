"""Changes of a call in words: one plain line per change (:class:`ChangeFact`), one per act.

Lines are plain text (no markup): each channel escapes them for its own format. Texts come from
the catalogue (``change.*``, ``act.*``); values are written by :mod:`notifier.messages.formats`
(dates, money), as everywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from notifier import catalogue
from notifier.messages.formats import fmt_day, fmt_value
from notifier.planning.changes import ChangeFact, parse_datetime

#: Longest act title quoted in a line.
MAX_ACT_TITLE = 300
ACT_KINDS = ("proroga", "riapertura", "rettifica", "graduatoria", "documento", "altro")
_CONFIDENCES = ("certo", "probabile", "possibile")
_RULES = ("page", "code", "decree", "title")


def change_line(fact: ChangeFact, lang: str = "it", *, under: str | None = None) -> str:
    """One change in one plain line: ``Scadenza spostata: 30 ottobre 2026, ore 12:00 → …``.

    ``under`` is the headline the line is shown under (an alert's: ``deadline``, ``reopened``,
    ``ranking``): the change it names is then said without the headline's words (``30 ottobre
    2026, ore 12:00 → …`` under "Scadenza spostata")."""
    old, new = fmt_value(fact.old, lang), fmt_value(fact.new, lang)

    def say(key: str) -> str:
        return catalogue.text(lang, f"change.{key}", old=old, new=new)

    if fact.kind == "reopened":
        if fact.new is None:
            return say("reopened")
        return say("reopened_closes_under" if under == "reopened" else "reopened_closes")
    if fact.kind == "deadline":
        if fact.old is None:
            return say("deadline_set")
        if fact.new is None:
            return say("deadline_removed")
        return say("deadline_moved_under" if under == "deadline" else "deadline_moved")
    if fact.kind == "stages":
        return say("stages")
    if fact.kind == "opening":
        return say("opening_set" if fact.old is None else "opening_moved")
    if fact.kind == "closed_early":
        return say("closed_before" if fact.old is not None else "closed")
    if fact.kind == "budget":
        return say("budget")
    if fact.kind == "act" and isinstance(fact.new, Mapping):
        return act_line(fact.new, lang, bare=under == "ranking" and fact.new.get("kind") == "graduatoria")
    return catalogue.text(lang, "change.other", kind=fact.kind, old=old, new=new)


def act_line(act: Mapping[str, Any], lang: str = "it", *, bare: bool = False) -> str:
    """One line on an act: what it is, where and when it was published, how sure its link is
    ("Graduatoria o esiti pubblicati: <title> (BURL 1 settembre 2026; collegamento certo: codice
    del bando)"); ``bare``: without what it is, which the headline above it says already."""
    kind = str(act.get("kind"))
    words = catalogue.text(lang, f"act.kind.{kind if kind in ACT_KINDS else 'altro'}")
    title = " ".join(str(act.get("title") or "").split())[:MAX_ACT_TITLE]
    published = parse_datetime(act.get("published"))
    where = str(act.get("source") or "").upper()
    if published is not None:
        where = f"{where} {fmt_day(published, lang)}".strip()
    confidence = str(act.get("confidence") or "")
    link = ""
    if confidence:
        said = (
            catalogue.text(lang, f"act.confidence.{confidence}") if confidence in _CONFIDENCES else confidence
        )
        rule = str(act.get("rule") or "")
        if rule in _RULES:
            link = catalogue.text(
                lang, "act.link_rule", confidence=said, rule=catalogue.text(lang, f"act.rule.{rule}")
            )
        else:
            link = catalogue.text(lang, "act.link", confidence=said)
    details = "; ".join(p for p in (where, link) if p)
    if bare:
        title = title[:1].upper() + title[1:]
    key = ("act.line_details" if details else "act.line") + ("_bare" if bare else "")
    return catalogue.text(lang, key, kind=words, title=title, details=details)
