"""The matcher holds its figures on the shared set of real calls (../shared/relevance: 100 real
calls × 8 member profiles, labelled by its RULES.md), read as `calls import` reads it: the
cross-validated targets of benchmarks/relevance.py, and the whole set with the shipped settings.
Skipped where the set is not beside the repository."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from notifier.config import MatchingConfig

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "relevance"


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("relevance_benchmark", ROOT / "benchmarks" / "relevance.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (SHARED / "labels.csv").exists(), reason="../shared/relevance is not there")
def test_cross_validated_targets_hold_on_real_calls() -> None:
    bench = _benchmark()
    calls, members, labels = bench.load_shared(SHARED)
    assert len(calls) == 100 and len(labels) == 800
    pairs = bench.pairs_of(calls, members, labels, MatchingConfig())
    cv = bench.cross_validate(pairs, 5)
    precision, recall = bench.pr(*cv.total)
    assert precision >= bench.TARGET_P and recall >= bench.TARGET_R, (precision, recall)
    assert cv.worst_member_recall >= bench.TARGET_MEMBER_R
    whole = bench.pr(*bench.counts(pairs, bench.at(MatchingConfig().threshold)))
    assert whole[0] >= 0.85 and whole[1] >= 0.95, whole
