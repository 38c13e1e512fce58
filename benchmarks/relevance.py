"""Precision and recall of the matcher on labelled relevance sets, measured the honest way.

python benchmarks/relevance.py [--set DIR] [--mistakes] [--folds 5]

The set (default ``../shared/relevance``: real calls × the cluster's typical member profiles,
labelled by its RULES.md) is read exactly as ``sentinella calls import`` and ``members import``
read it, with dates left out (the labels ignore them). Printed:

* the whole set, with the shipped settings;
* **5-fold cross-validation by call**: the folds are fixed by call id (a hash of it, so a call
  never changes fold). What is fitted — the score threshold — is fitted on four folds (the
  highest threshold whose recall there is at least 0.95, else the one with the best F2) and the
  fifth is scored with it; each fold is printed, then the micro figures over all five and the
  recall per member;
* the keyword baseline beside it: a member is alerted when any of its keywords or topic labels
  is a substring of the call's title or summary;
* the project's earlier set (tests/data/relevance), kept as a regression test.

Targets (cross-validated): precision >= 0.85, recall >= 0.95, recall per member >= 0.85.
The term vocabulary and the rules are not fitted here: they are written once from the labelling
rules and used on every fold alike; ``--mistakes`` lists every wrong pair with its explanation.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tomllib
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from notifier.config import MatchingConfig
from notifier.matching.engine import Matcher
from notifier.matching.evaluation import evaluate, load_relevance_set, view_of
from notifier.matching.profiles import member_profile, validate_members
from notifier.matching.topics import topic_label
from scheduler.imports import ImportReport, read_import_lines
from storage.calls import CallView
from storage.records import ROME
from storage.sanitise import clean_record

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "relevance"
EARLIER = ROOT / "tests" / "data" / "relevance"
NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)
TARGET_P, TARGET_R, TARGET_MEMBER_R = 0.85, 0.95, 0.85
GRID = [round(1.0 + 0.25 * i, 2) for i in range(29)]  # thresholds 1.0 … 8.0


@dataclass(frozen=True)
class Pair:
    call: str
    member: str
    label: bool
    #: The score when no rule but the threshold refuses it; None when a rule excludes it.
    score: float | None
    why: str


def load_shared(base: Path) -> tuple[list[tuple[str, CallView]], list[dict], dict[tuple[str, str], bool]]:
    """Calls as `calls import` reads them (score.py's lines), members, labels."""
    raw = [
        json.loads(line) for line in (base / "calls.jsonl").read_text("utf-8").splitlines() if line.strip()
    ]
    lines = []
    for c in raw:
        rec = {
            "source": "manual",
            "source_id": c["id"],
            "url": c["url"],
            "title": c["title"],
            "summary": c["summary"],
            "language": c["language"],
            "beneficiaries": c.get("beneficiaries") or "",
            "programme": c.get("programme") or "",
            "granting_body": c.get("granting_body") or "",
        }
        if c.get("budget_eur"):
            rec["budget_eur"] = c["budget_eur"]
        lines.append(json.dumps(rec, ensure_ascii=False))
    report = ImportReport()
    records = list(read_import_lines(lines, report, now=NOW, tz=ZoneInfo("Europe/Rome")))
    if report.errors:
        raise SystemExit(f"the set does not import: {report.errors[:3]}")
    # What ingest stores: the same sanitised text.
    calls = [(r.source_id, view_of(clean_record(r), call_id=n, now=NOW)) for n, r in enumerate(records, 1)]
    members = tomllib.loads((base / "profiles.toml").read_text("utf-8"))["member"]
    with open(base / "labels.csv", encoding="utf-8") as f:
        labels = {(r["call_id"], r["member_email"]): r["relevant"] == "1" for r in csv.DictReader(f)}
    return calls, members, labels


def pairs_of(calls, members, labels, config: MatchingConfig) -> list[Pair]:
    entries, errors = validate_members({"member": members})
    if errors:
        raise SystemExit(f"the profiles do not import: {errors[:3]}")
    profiles = []
    emails = {}
    for n, (_i, entry) in enumerate(entries, 1):
        data = entry.profile.to_data() if entry.profile else {}
        profiles.append((n, member_profile(entry.role, data)))
        emails[n] = entry.email
    # Everything but the threshold decides once; the threshold is what folds fit.
    matcher = Matcher(profiles, config=config.model_copy(update={"threshold": 0.01}))
    out = []
    for key, call in calls:
        for member_id, email in emails.items():
            ex = matcher.explain(call, member_id, now=NOW)
            score = ex.score if ex.matched else None
            out.append(Pair(key, email, labels[(key, email)], score, "; ".join(ex.lines("en"))))
    return out


def counts(pairs: Sequence[Pair], decide: Callable[[Pair], bool]) -> tuple[int, int, int]:
    tp = sum(1 for p in pairs if p.label and decide(p))
    fp = sum(1 for p in pairs if not p.label and decide(p))
    fn = sum(1 for p in pairs if p.label and not decide(p))
    return tp, fp, fn


def pr(tp: int, fp: int, fn: int) -> tuple[float, float]:
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)


def at(threshold: float) -> Callable[[Pair], bool]:
    return lambda p: p.score is not None and p.score >= threshold


def fit_threshold(train: Sequence[Pair]) -> float:
    """The highest threshold whose recall on ``train`` reaches the target; else the best F2."""
    reaching = [t for t in GRID if pr(*counts(train, at(t)))[1] >= TARGET_R]
    if reaching:
        return max(reaching)

    def f2(t: float) -> float:
        p, r = pr(*counts(train, at(t)))
        return 5 * p * r / (4 * p + r) if p + r else 0.0

    return max(GRID, key=f2)


def fold_of(call_id: str, folds: int) -> int:
    return zlib.crc32(call_id.encode("utf-8")) % folds


@dataclass
class CrossValidation:
    #: Per fold: the fitted threshold and (tp, fp, fn, calls) on the held-out calls.
    folds: list[tuple[float, tuple[int, int, int, int]]]
    total: tuple[int, int, int]
    #: Per member e-mail: (tp, fp, fn) over every held-out fold.
    per_member: dict[str, tuple[int, int, int]]

    @property
    def worst_member_recall(self) -> float:
        return min(pr(*row)[1] for row in self.per_member.values())


def cross_validate(pairs: Sequence[Pair], folds: int = 5) -> CrossValidation:
    """Fit the threshold on all folds but one, score that one; every fold in turn."""
    out: list[tuple[float, tuple[int, int, int, int]]] = []
    total = (0, 0, 0)
    members: dict[str, tuple[int, int, int]] = {}
    for k in range(folds):
        test = [q for q in pairs if fold_of(q.call, folds) == k]
        threshold = fit_threshold([q for q in pairs if fold_of(q.call, folds) != k])
        decide = at(threshold)
        c = counts(test, decide)
        out.append((threshold, (*c, len({q.call for q in test}))))
        total = (total[0] + c[0], total[1] + c[1], total[2] + c[2])
        for q in test:
            tp, fp, fn = members.get(q.member, (0, 0, 0))
            got = decide(q)
            members[q.member] = (
                tp + (q.label and got),
                fp + (not q.label and got),
                fn + (q.label and not got),
            )
    return CrossValidation(out, total, members)


def keyword_baseline(calls, members, labels) -> tuple[float, float]:
    tp = fp = fn = 0
    for key, call in calls:
        text = f"{call.title} {call.summary}".casefold()
        for m in members:
            prof = m.get("profile", {})
            words = [k.casefold() for k in prof.get("keywords", [])]
            words += [topic_label(t, "it").casefold() for t in prof.get("topics", [])]
            got = any(w and w in text for w in words)
            want = labels[(key, m["email"])]
            tp += got and want
            fp += got and not want
            fn += want and not got
    return pr(tp, fp, fn)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=SHARED, help="a labelled set in the shared layout")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--mistakes", action="store_true", help="list every wrong pair (whole set)")
    args = parser.parse_args()
    if not (args.set / "labels.csv").exists():
        print(f"no labelled set at {args.set}")
        return 2
    config = MatchingConfig()
    calls, members, labels = load_shared(args.set)
    pairs = pairs_of(calls, members, labels, config)
    positives = sum(p.label for p in pairs)
    print(
        f"set {args.set}: {len(calls)} calls × {len(members)} members = {len(pairs)} pairs, {positives} relevant"
    )

    tp, fp, fn = counts(pairs, at(config.threshold))
    p, r = pr(tp, fp, fn)
    print(
        f"whole set, shipped settings (threshold {config.threshold:g}, nothing fitted here): precision {p:.3f} recall {r:.3f} (tp {tp} fp {fp} fn {fn})"
    )
    bp, br = keyword_baseline(calls, members, labels)
    print(f"keyword baseline (keyword or topic label in title + summary): precision {bp:.3f} recall {br:.3f}")

    print(f"\n{args.folds}-fold cross-validation by call (threshold fitted on the other folds):")
    cv = cross_validate(pairs, args.folds)
    for k, (t, c) in enumerate(cv.folds, 1):
        fp_, fr_ = pr(*c[:3])
        print(
            f"  fold {k}: {c[3]:3d} calls, threshold {t:<5g} precision {fp_:.3f} recall {fr_:.3f}"
            f"  (tp {c[0]} fp {c[1]} fn {c[2]})"
        )
    cp, cr = pr(*cv.total)
    print(
        f"  cross-validated: precision {cp:.3f} (target >= {TARGET_P}) recall {cr:.3f} (target >= {TARGET_R})"
        f"  (tp {cv.total[0]} fp {cv.total[1]} fn {cv.total[2]})"
    )
    for email, (mtp, mfp, mfn) in cv.per_member.items():
        mp, mr = pr(mtp, mfp, mfn)
        print(f"    {email:36s} precision {mp:.2f} recall {mr:.2f} (tp {mtp} fp {mfp} fn {mfn})")
    worst = cv.worst_member_recall
    print(
        f"  the same fit on the whole set picks {fit_threshold(pairs):g}; the shipped threshold stays "
        f"{config.threshold:g} so that one strong term in a title reaches a member"
    )

    rs = load_relevance_set(EARLIER, now=NOW)
    old = evaluate(rs, now=NOW, config=config)
    print(
        f"\nearlier set ({EARLIER.relative_to(ROOT)}, {len(rs.calls)} calls): precision {old.precision:.3f} recall {old.recall:.3f}"
    )

    if args.mistakes:
        print("\nwrong pairs on the whole set:")
        for q in pairs:
            if at(config.threshold)(q) != q.label:
                print(f"  {'missed' if q.label else 'wrong '} {q.call} → {q.member}: {q.why}")
    ok = cp >= TARGET_P and cr >= TARGET_R and worst >= TARGET_MEMBER_R
    print("\ntargets met" if ok else "\ntargets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
