"""Changes of a call in words: one plain line per change (:class:`ChangeFact`), one per act.

Lines are plain text (no markup): each channel escapes them for its own format. Values are
written by :mod:`notifier.messages.formats` (dates, money), as everywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from notifier.messages.formats import fmt_day, fmt_value
from notifier.planning.changes import ChangeFact, parse_datetime


def change_line(fact: ChangeFact, lang: str = "it") -> str:
    """One change in one plain line (no markup: each channel escapes it for its own format)."""
    en = lang == "en"
    old, new = fmt_value(fact.old, lang), fmt_value(fact.new, lang)
    if fact.kind == "reopened":
        if fact.new is not None:
            return f"Reopened, closes {new}" if en else f"Riaperto, scade {new}"
        return "Reopened" if en else "Riaperto"
    if fact.kind == "deadline":
        if fact.old is None:
            return f"Deadline set: {new}" if en else f"Scadenza fissata: {new}"
        if fact.new is None:
            return f"Deadline removed (was {old})" if en else f"Scadenza tolta (era {old})"
        return f"Deadline moved: {old} → {new}" if en else f"Scadenza spostata: {old} → {new}"
    if fact.kind == "stages":
        return f"Stage deadlines changed: {new}" if en else f"Scadenze intermedie cambiate: {new}"
    if fact.kind == "opening":
        if fact.old is None:
            return f"Opening set: {new}" if en else f"Apertura fissata: {new}"
        return f"Opening moved: {old} → {new}" if en else f"Apertura spostata: {old} → {new}"
    if fact.kind == "closed_early":
        if fact.old is not None:
            return f"Closed before the deadline ({old})" if en else f"Chiuso prima della scadenza ({old})"
        return "Closed (funds exhausted or withdrawn)" if en else "Chiuso (fondi esauriti o ritirato)"
    if fact.kind == "budget":
        return f"Budget changed: {old} → {new}" if en else f"Dotazione cambiata: {old} → {new}"
    if fact.kind == "act" and isinstance(fact.new, Mapping):
        return act_line(fact.new, lang)
    return f"{fact.kind}: {old} → {new}"


#: Act kinds (``storage.acts.ACT_KINDS``) in words: (Italian, English).
ACT_WORDS = {
    "proroga": ("Proroga", "Deadline extension"),
    "riapertura": ("Riapertura", "Reopening"),
    "rettifica": ("Rettifica o modifica", "Amendment"),
    "graduatoria": ("Graduatoria o esiti pubblicati", "Ranking or results published"),
    "documento": ("Nuovo documento", "New document"),
    "altro": ("Atto pubblicato", "Act published"),
}
_CONFIDENCE = {"certo": "certain", "probabile": "likely", "possibile": "possible"}
_RULES = {
    "page": ("pagina del bando", "the call's page"),
    "code": ("codice del bando", "the call's code"),
    "decree": ("numero del decreto", "the decree number"),
    "title": ("titolo del bando", "the call's title"),
}


def act_line(act: Mapping[str, Any], lang: str = "it") -> str:
    """One line on an act: what it is, where and when it was published, how sure its link is
    ("Graduatoria o esiti pubblicati: <title> (BURL 01/09/2026; collegamento certo: codice del
    bando)")."""
    en = lang == "en"
    words = ACT_WORDS.get(str(act.get("kind")), ACT_WORDS["altro"])
    title = " ".join(str(act.get("title") or "").split())[:300]
    published = parse_datetime(act.get("published"))
    where = str(act.get("source") or "").upper()
    if published is not None:
        where = f"{where} {fmt_day(published, lang)}".strip()
    confidence = str(act.get("confidence") or "")
    rule = _RULES.get(str(act.get("rule") or ""))
    if en:
        link = f"link {_CONFIDENCE.get(confidence, confidence)}" + (f": {rule[1]}" if rule else "")
    else:
        link = f"collegamento {confidence}" + (f": {rule[0]}" if rule else "")
    details = "; ".join(p for p in (where, link if confidence else "") if p)
    return f"{words[1] if en else words[0]}: {title}" + (f" ({details})" if details else "")
