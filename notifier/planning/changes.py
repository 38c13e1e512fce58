"""Which changes to a call matter to members, as data (:mod:`notifier.messages.changes` says them).

Storage records every change of a call as an event with a field diff
(``{field: {"old": v, "new": v}}``, JSON-safe values). Most diffs are noise for a member (a
reworded summary, a new attachment); these matter and are told (alerts for members already
alerted, and the staff digest):

* ``reopened`` — the call reopened (an event of that kind, or a status back from "closed");
* ``deadline`` — the final closing moved, appeared or disappeared (proroga, rettifica);
* ``stages`` — a stage deadline of a multi-stage call changed while the final one did not;
* ``opening`` — the opening moved (what counts for a "sportello" call);
* ``closed_early`` — the status became "closed" before the deadline passed (chiusura anticipata,
  esaurimento fondi), or with no deadline at all;
* ``budget`` — the total budget (dotazione) changed;
* ``act`` — an official act or document about the call (a BURL decree, a new PDF on its page:
  ``storage.acts``): a ranking, an amendment, a proroga, with how sure the link to the call is.
  A deadline moved by an act gives both the ``deadline`` fact and the ``act`` fact (its evidence).

The diff may name fields as in :class:`storage.records.CallRecord` (``closes``, ``budget_total``)
or as stored (``closes_at``, ``budget_total_cents``); both are read. Values that cannot be read
are shown as received rather than dropped.

"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from storage.records import ROME, json_value

#: Diff field names → the names used here.
_ALIASES = {
    "closes": "closes",
    "closes_at": "closes",
    "opens": "opens",
    "opens_at": "opens",
    "budget_total": "budget",
    "budget_total_cents": "budget_cents",
    "deadlines": "deadlines",
    "status": "status",
}


@dataclass(frozen=True, slots=True)
class ChangeFact:
    """One change that matters. ``old``/``new`` are datetimes, Decimals, strings, lists or None."""

    kind: str
    old: Any = None
    new: Any = None


def significant_changes(
    kind: str,
    changes: Mapping[str, Any],
    *,
    at: datetime,
    deadline: datetime | None = None,
) -> list[ChangeFact]:
    """The changes of one event that matter, in a fixed order (empty: nothing worth telling).

    ``kind`` is the event kind (``changed``, ``reopened``; ``new`` gives nothing), ``at`` when the
    event happened and ``deadline`` the call's effective final deadline before this change, used to
    tell an early closure from a call closing because its deadline passed.
    """
    if kind == "new":
        return []
    act = changes.get("act")
    diff = {_ALIASES[k]: v for k, v in changes.items() if k in _ALIASES and isinstance(v, Mapping)}
    facts: list[ChangeFact] = []
    status = diff.get("status")
    old_status = status.get("old") if status else None
    new_status = status.get("new") if status else None
    closes = diff.get("closes")
    new_closes = parse_datetime(closes.get("new")) if closes else None
    if kind == "reopened" or (old_status == "closed" and new_status in ("open", "forthcoming", "unknown")):
        facts.append(ChangeFact("reopened", None, new_closes))
    elif new_status == "closed" and old_status != "closed":
        before = parse_datetime(closes.get("old")) if closes else deadline
        if before is None or at < _end_of_day_if_date(before):
            facts.append(ChangeFact("closed_early", before, None))
    if closes and not any(f.kind == "reopened" and f.new is not None for f in facts):
        old_c = parse_datetime(closes.get("old"))
        if old_c != new_closes:
            facts.append(ChangeFact("deadline", old_c, new_closes))
    stages = diff.get("deadlines")
    if stages and not closes and _stage_list(stages.get("old")) != _stage_list(stages.get("new")):
        facts.append(ChangeFact("stages", _stage_list(stages.get("old")), _stage_list(stages.get("new"))))
    opens = diff.get("opens")
    if opens:
        old_o, new_o = parse_datetime(opens.get("old")), parse_datetime(opens.get("new"))
        if old_o != new_o and new_o is not None:
            facts.append(ChangeFact("opening", old_o, new_o))
    budget = diff.get("budget") or diff.get("budget_cents")
    if budget:
        cents = "budget_cents" in diff and "budget" not in diff
        old_b, new_b = _money(budget.get("old"), cents), _money(budget.get("new"), cents)
        if old_b != new_b:
            facts.append(ChangeFact("budget", old_b, new_b))
    if isinstance(act, Mapping):
        facts.append(ChangeFact("act", None, dict(act)))
    return facts


def changes_json(facts: list[ChangeFact]) -> list[dict[str, Any]]:
    """The facts as JSON-safe dicts (for outbox payloads and digest summaries)."""
    return [{"kind": f.kind, "old": json_value(f.old), "new": json_value(f.new)} for f in facts]


# --- reading payload values ------------------------------------------------------------------


def parse_datetime(value: Any) -> datetime | None:
    """A datetime from a payload value (datetime or ISO text; naive text is Rome time), or None."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=ROME)
    return None


def _end_of_day_if_date(value: datetime) -> datetime:
    # A date-only deadline is stored as local midnight and passes at the end of that day.
    local = value.astimezone(ROME)
    if local.time() == time(0, 0):
        return local.replace(hour=23, minute=59, second=59, microsecond=999999)
    return value


def _money(value: Any, cents: bool) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount / 100 if cents else amount


def _stage_list(value: Any) -> list[datetime]:
    out: list[datetime] = []
    for item in value or ():
        raw = item.get("at") if isinstance(item, Mapping) else item
        parsed = parse_datetime(raw)
        if parsed is not None:
            out.append(parsed)
    return out
