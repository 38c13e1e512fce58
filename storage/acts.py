"""Official acts about calls: linked to a stored call, turned into an event on it, or kept as notices.

An :class:`Act` is something published *about* a call rather than a call: a BURL decree that
extends a deadline ("proroga"), reopens, amends or publishes a ranking, or a new PDF on a call's
own page (a Unioncamere "determinazione"). :func:`apply_acts` records each act once (the unique
key is ``(source, act_id)``, so a re-crawl or a replay after a crash changes nothing) and:

1. **links** it to a stored call, saying how sure the link is:

   * ``certo`` / ``page`` — the act was found on the call's own page (``Act.target``);
   * ``certo`` / ``code`` — the act names the call's code (a Bandi e Servizi ``RLO1…`` code);
   * ``probabile`` / ``decree`` — the act names a decree (``n. 1234 del …``) that a stored call's
     text names too;
   * ``probabile`` / ``title`` — the act quotes a title equal to a stored call's title;
   * ``possibile`` / ``title`` — a stored call's whole title (four words or more) occurs in the
     act's title.

   The rules are tried in that order and only among calls (``kind = "call"``) of
   ``call_sources``; a rule that finds calls of more than one duplicate group links nothing
   (ambiguous), and the next rule is not tried: a wrong link is worse than none.
2. **acts** on the call: a proroga or reopening that states its new closing date, linked
   ``certo`` or ``probabile``, moves the call's closing date (``closes_at`` and the last stage
   deadline equal to it), sets it open again when the new date is ahead, and records a
   ``changed`` (or ``reopened``) event whose diff holds the deadline change *and* the act as
   evidence (``changes["act"]``). Any other linked act (a ranking, an amendment, a document, a
   proroga whose date could not be read or whose link is only ``possibile``) records an ``act``
   event on the call with the act alone. Either event reaches the members alerted of the call
   (``notifier.planning.alerts``).
3. an act linked to nothing stays a **notice** (``call_id`` NULL) for the staff digest
   (:func:`linked_notices` tells the digest which notice rows were linked).

The deadline moved by an act is written on the row without touching its ``content_hash``, which
stays the hash of what the call's own source last said: a re-crawl that finds the portal
unchanged is still "unchanged" and does not put the old date back. Known limit: if the portal
later changes something else of that call but still shows the old date, ingest records the old
date again as a change (the portal is the call's own voice); the act stays in ``call_acts``.

Events are written under the ingest's write lock, so their ids commit in order (the alert
planner's cursor relies on it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, select, update

from storage._bulk import chunks, conflict_insert
from storage._rows import deadline_json, row_to_record
from storage.db import Database
from storage.groups import fold, title_key
from storage.ingest import json_safe, write_lock
from storage.models import Call, CallAct, CallEvent
from storage.records import CallStatus, Deadline, Precision, final_deadline

_calls = cast(Table, Call.__table__)
_acts = cast(Table, CallAct.__table__)
_events = cast(Table, CallEvent.__table__)

#: Act kinds, in the words of the acts themselves.
ACT_KINDS: tuple[str, ...] = ("proroga", "riapertura", "rettifica", "graduatoria", "documento", "altro")
#: Kinds whose stated date becomes the call's new closing date.
DEADLINE_KINDS = frozenset({"proroga", "riapertura"})
#: Confidence levels, surest first.
CONFIDENCE = ("certo", "probabile", "possibile")
#: Shortest stored title (in words) trusted to be found inside an act's title.
MIN_TITLE_WORDS = 4
MAX_TEXT = 1_000


@dataclass(frozen=True, slots=True)
class Act:
    """An act as a crawler read it (plain values: built by pure code, compared in tests)."""

    source: str
    act_id: str
    kind: str
    title: str
    url: str
    published: datetime | None = None
    #: The call whose own page lists the act, as ``(source, source_id)``: the link is certain.
    target: tuple[str, str] | None = None
    #: Call codes the act names (``RLO12026055023``).
    codes: tuple[str, ...] = ()
    #: Decrees the act names, as ``"<number>/<year>"``.
    decrees: tuple[str, ...] = ()
    #: A call title the act quotes («…», "…").
    quoted_title: str = ""
    #: The closing date the act states (proroga, riapertura), when it could be read.
    new_deadline: datetime | None = None
    new_deadline_precision: Precision | None = None

    def __post_init__(self) -> None:
        if self.kind not in ACT_KINDS:
            raise ValueError(f"act {self.source}/{self.act_id}: unknown kind {self.kind!r}")
        if self.new_deadline is not None and self.new_deadline.tzinfo is None:
            raise ValueError(f"act {self.source}/{self.act_id}: naive deadline")

    def evidence(self, confidence: str, rule: str) -> dict[str, Any]:
        """What the event on the call keeps of the act (``changes["act"]``)."""
        return {
            "source": self.source,
            "act_id": self.act_id,
            "kind": self.kind,
            "title": self.title[:MAX_TEXT],
            "url": self.url[:MAX_TEXT],
            "published": json_safe(self.published),
            "confidence": confidence,
            "rule": rule,
        }


@dataclass
class ActsReport:
    """What one :func:`apply_acts` did."""

    recorded: int = 0
    linked: int = 0
    unlinked: int = 0
    deadlines_moved: int = 0
    events: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Link:
    call_id: int
    confidence: str
    rule: str


def apply_acts(
    db: Database, acts: Iterable[Act], *, now: datetime, call_sources: Sequence[str] = ("lombardia",)
) -> ActsReport:
    """Record each act not recorded before, link it and act on its call (module docstring)."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    report = ActsReport()
    for act in acts:
        with db.engine.begin() as conn:
            write_lock(conn)
            _apply_one(conn, act, now=now, call_sources=call_sources, report=report)
    return report


def _apply_one(
    conn: Connection, act: Act, *, now: datetime, call_sources: Sequence[str], report: ActsReport
) -> None:
    known = conn.execute(
        select(_acts.c.id).where(_acts.c.source == act.source, _acts.c.act_id == act.act_id)
    ).first()
    if known is not None:
        return
    link, candidates = find_call(conn, act, call_sources)
    details: dict[str, Any] = {
        "codes": list(act.codes),
        "decrees": list(act.decrees),
        "quoted_title": act.quoted_title[:MAX_TEXT],
        "new_deadline": json_safe(act.new_deadline),
    }
    if candidates:
        details["ambiguous"] = candidates
    event_id: int | None = None
    if link is not None:
        event_id, moved = _act_on_call(conn, act, link, now=now)
        details["deadline_moved"] = moved
        report.linked += 1
        report.deadlines_moved += int(moved)
        report.events.append(event_id)
    else:
        report.unlinked += 1
    conn.execute(
        conflict_insert(conn.dialect.name, _acts)
        .values(
            source=act.source,
            act_id=act.act_id,
            kind=act.kind,
            title=act.title[:MAX_TEXT],
            url=act.url[:MAX_TEXT],
            published_at=act.published,
            call_id=link.call_id if link else None,
            confidence=link.confidence if link else "",
            rule=link.rule if link else "",
            event_id=event_id,
            details=details,
            recorded_at=now,
        )
        .on_conflict_do_nothing(index_elements=["source", "act_id"])
    )
    report.recorded += 1


# --- linking -------------------------------------------------------------------------------------

_DECREE_CONTEXT = re.compile(r"(?:decret\w*|d\s?d\s?(?:u\s?o|s|g)?|ddg|dduo|dds)\s+(?:[a-z]+\s+){0,4}n\s+$")


def find_call(conn: Connection, act: Act, call_sources: Sequence[str]) -> tuple[Link | None, list[int]]:
    """The call ``act`` is about and how sure that is, or (None, ambiguous candidates)."""
    if act.target is not None:
        row = conn.execute(
            select(_calls.c.id).where(_calls.c.source == act.target[0], _calls.c.source_id == act.target[1])
        ).first()
        return (Link(row.id, "certo", "page"), []) if row is not None else (None, [])
    base = select(_calls.c.id, _calls.c.group_id, _calls.c.title, _calls.c.search_text).where(
        _calls.c.kind == "call", _calls.c.source.in_(list(call_sources))
    )
    rules: list[tuple[str, str, list[Any]]] = []
    if act.codes:
        rows = list(conn.execute(base.where(_calls.c.source_id.in_(list(act.codes)))))
        rules.append(("certo", "code", rows))
    for decree in act.decrees:
        number, _, year = decree.partition("/")
        pattern = f"%n {number} del%"
        rows = [
            r
            for r in conn.execute(base.where(_calls.c.search_text.like(pattern)))
            if _names_decree(r.search_text, number, year)
        ]
        rules.append(("probabile", "decree", rows))
    quoted = title_key(act.quoted_title) if act.quoted_title else ""
    if quoted:
        rows = list(conn.execute(base.where(_calls.c.title_key == quoted)))
        rules.append(("probabile", "title", rows))
    folded = f" {fold(act.title)} "
    contained = [
        r
        for r in conn.execute(base.where(_calls.c.title_key != ""))
        if len(fold(r.title).split()) >= MIN_TITLE_WORDS and f" {fold(r.title)} " in folded
    ]
    rules.append(("possibile", "title", contained))
    for confidence, rule, rows in rules:
        if not rows:
            continue
        groups = {r.group_id if r.group_id is not None else -r.id for r in rows}
        if len(groups) > 1:
            return None, sorted(r.id for r in rows)
        return Link(min(r.id for r in rows), confidence, rule), []
    return None, []


def _names_decree(text: str, number: str, year: str) -> bool:
    """Whether folded ``text`` names decree ``number`` of ``year`` ("decreto n 1234 del … 2026")."""
    for match in re.finditer(rf"\bn {re.escape(number)} del\b", text):
        before = text[max(0, match.start() - 40) : match.start() + 2]
        after = text[match.end() : match.end() + 40]
        if _DECREE_CONTEXT.search(before) and (not year or year in after):
            return True
    return False


# --- acting on the call --------------------------------------------------------------------------


def _act_on_call(conn: Connection, act: Act, link: Link, *, now: datetime) -> tuple[int, bool]:
    """Record the act's event on the linked call (moving its deadline when the act says so)."""
    row = conn.execute(select(_calls).where(_calls.c.id == link.call_id)).mappings().one()
    evidence = act.evidence(link.confidence, link.rule)
    old = row_to_record(row)
    new_closes = act.new_deadline
    movable = (
        act.kind in DEADLINE_KINDS
        and new_closes is not None
        and link.confidence in ("certo", "probabile")
        and (new_closes != old.closes or act.new_deadline_precision != old.closes_precision)
    )
    if not movable or new_closes is None:
        event_id = _event(conn, link.call_id, "act", {"act": evidence}, now)
        return event_id, False
    precision = act.new_deadline_precision or Precision.DATE
    deadlines = list(old.deadlines)
    if deadlines and deadlines[-1].at == old.closes:
        deadlines[-1] = Deadline(at=new_closes, precision=precision, label=deadlines[-1].label)
    changes: dict[str, Any] = {
        "closes": {"old": json_safe(old.closes), "new": json_safe(new_closes)},
    }
    if precision != old.closes_precision:
        changes["closes_precision"] = {"old": json_safe(old.closes_precision), "new": precision.value}
    values: dict[str, Any] = {
        "closes_at": new_closes,
        "closes_precision": precision.value,
        "deadlines": [deadline_json(d) for d in deadlines],
        "last_changed": now,
    }
    after = final_deadline(new_closes, precision, tuple(deadlines))
    before = final_deadline(old.closes, old.closes_precision, old.deadlines)
    reopened = (
        after is not None
        and after > now
        and (old.status == CallStatus.CLOSED or (before is not None and before < now))
    )
    if after is not None and after > now and old.status == CallStatus.CLOSED:
        values["status"] = CallStatus.OPEN.value
        changes["status"] = {"old": old.status.value, "new": CallStatus.OPEN.value}
    conn.execute(update(_calls).where(_calls.c.id == link.call_id).values(**values))
    changes["act"] = evidence
    event_id = _event(conn, link.call_id, "reopened" if reopened else "changed", changes, now)
    return event_id, True


def _event(conn: Connection, call_id: int, kind: str, changes: dict[str, Any], now: datetime) -> int:
    row = conn.execute(
        _events.insert().values(call_id=call_id, kind=kind, at=now, changes=changes).returning(_events.c.id)
    ).one()
    return int(row.id)


# --- reading -------------------------------------------------------------------------------------


def linked_notices(db: Database, call_ids: Iterable[int]) -> set[int]:
    """Among ``call_ids``, the notice rows whose act was linked to a call (the others are the
    digest's notices: acts linked to nothing)."""
    ids = sorted(set(call_ids))
    found: set[int] = set()
    with db.engine.connect() as conn:
        for chunk in chunks(ids):
            query = (
                select(_calls.c.id)
                .join(_acts, (_acts.c.source == _calls.c.source) & (_acts.c.act_id == _calls.c.source_id))
                .where(_calls.c.id.in_(chunk), _acts.c.call_id.is_not(None))
            )
            found.update(int(row.id) for row in conn.execute(query))
    return found


__all__ = ["ACT_KINDS", "Act", "ActsReport", "apply_acts", "find_call", "linked_notices"]
