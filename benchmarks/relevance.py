"""Precision and recall of the matcher on the labelled relevance set (tests/data/relevance).

python benchmarks/relevance.py [--mistakes] [--no-rules]

Targets: recall >= 0.90, precision >= 0.80. ``--mistakes`` lists every wrong pair with the
matcher's explanation; ``--no-rules`` switches the eligibility and other-sector rules off, to see
what plain keyword matching would give on the same set.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from notifier.config import MatchingConfig
from notifier.matching.evaluation import evaluate, load_relevance_set
from storage.records import ROME

SET = Path(__file__).resolve().parents[1] / "tests" / "data" / "relevance"
NOW = datetime(2026, 9, 2, 9, 0, tzinfo=ROME)
RECALL_TARGET = 0.90
PRECISION_TARGET = 0.80


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mistakes", action="store_true", help="list every wrong pair with its explanation")
    parser.add_argument("--no-rules", action="store_true", help="switch the eligibility and sector rules off")
    args = parser.parse_args()
    config = MatchingConfig(eligibility_rules=not args.no_rules, sector_rule=not args.no_rules)
    rs = load_relevance_set(SET, now=NOW)
    result = evaluate(rs, now=NOW, config=config)
    real = sum(1 for c in rs.calls if not c.synthetic)
    print(
        f"relevance set: {len(rs.calls)} calls ({real} real, {len(rs.calls) - real} synthetic), "
        f"{len(rs.profiles)} profiles, {result.pairs} labelled pairs, {result.tp + result.fn} relevant"
    )
    if args.no_rules:
        print("eligibility and other-sector rules OFF (plain keyword matching)")
    print(
        f"precision {result.precision:.3f} (target >= {PRECISION_TARGET})   "
        f"recall {result.recall:.3f} (target >= {RECALL_TARGET})   tp {result.tp} fp {result.fp} fn {result.fn}"
    )
    print(f"{'profile':<12} {'precision':>9} {'recall':>7} {'tp':>4} {'fp':>4} {'fn':>4}")
    for key, (tp, fp, fn, _tn) in result.per_profile.items():
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        print(f"{key:<12} {p:>9.3f} {r:>7.3f} {tp:>4} {fp:>4} {fn:>4}")
    if args.mistakes:
        for mistake in result.mistakes:
            print(" ", mistake.line())
    ok = result.recall >= RECALL_TARGET and result.precision >= PRECISION_TARGET
    print("targets met" if ok else "targets NOT met")
    return 0 if ok or args.no_rules else 1


if __name__ == "__main__":
    sys.exit(main())
