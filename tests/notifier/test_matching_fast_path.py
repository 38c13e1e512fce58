"""The fast path (:meth:`Matcher.match`) against the pair-by-pair one (:meth:`Matcher.explain`,
every profile asked on its own): the same matches, scores and reasons, in the same order, on the
relevance sets and on profiles generated like the matching benchmark's (with staff profiles and
with the rules switched off)."""

from __future__ import annotations

import gc
import importlib.util
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

from notifier.config import MatchingConfig
from notifier.matching.engine import Match, Matcher
from notifier.matching.evaluation import load_relevance_set
from notifier.matching.profiles import Profile, member_profile, validate_members
from storage.calls import CallView
from tests.fakes.matching_data import NOW

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "relevance"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", ROOT / "benchmarks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def pair_by_pair(matcher: Matcher, call: CallView) -> list[Match]:
    """What :meth:`Matcher.explain` says of every profile, as the fast path hands it back."""
    facts = matcher.facts(call, now=NOW)
    out = []
    for n, c in enumerate(matcher.profiles):
        ex = matcher._explain(facts, call, n)
        if ex.matched:
            out.append(Match(c.member_id, ex.score, ex.reasons))
    return sorted(out, key=lambda m: (-m.score, m.member_id))


def assert_agree(matcher: Matcher, calls: Sequence[CallView]) -> int:
    matched = 0
    for call in calls:
        fast = matcher.match(call, now=NOW)
        assert fast == pair_by_pair(matcher, call), call.title
        matched += len(fast)
    return matched


def test_on_the_relevance_set() -> None:
    rs = load_relevance_set(ROOT / "tests" / "data" / "relevance", now=NOW)
    calls = [labelled.call for labelled in rs.calls]
    assert assert_agree(Matcher(list(rs.profiles.values())), calls) > 50
    for member_id, profile in rs.profiles.values():  # one profile alone, as the bot matches
        assert_agree(Matcher([(member_id, profile)]), calls)


@pytest.mark.skipif(not (SHARED / "labels.csv").exists(), reason="../shared/relevance is not there")
def test_on_the_shared_real_set_with_the_clusters_staff() -> None:
    bench = _load("relevance")
    calls, members, _labels = bench.load_shared(SHARED)
    entries, errors = validate_members({"member": members})
    assert not errors
    profiles: list[tuple[int, Profile]] = []
    for n, (_i, entry) in enumerate(entries, 1):
        data = entry.profile.to_data() if entry.profile else {}
        profiles.append((n, member_profile(entry.role, data)))
        # The same profile as the cluster's staff: it hears of what members hear of (B5).
        profiles.append((100 + n, member_profile("staff", data)))
    matcher = Matcher(profiles)
    assert assert_agree(matcher, [call for _key, call in calls]) > 100


@pytest.mark.parametrize(
    "config",
    [
        MatchingConfig(),
        MatchingConfig(threshold=4.5, repeat_weight=0.3),
        MatchingConfig(eligibility_rules=False, sector_rule=False, purpose_rule=False),
    ],
    ids=["shipped", "stricter", "no-rules"],
)
def test_on_generated_profiles(config: MatchingConfig) -> None:
    bench = _load("matching")
    rng = random.Random(20261204)
    profiles = bench.make_profiles(160, rng)
    staff = {"topics": ["ricerca-innovazione"], "keywords": ["cosmetici"], "exclude": ["turismo"]}
    profiles += [
        (1001, member_profile("staff", staff)),
        (1002, member_profile("admin", {"topics": [], "sources": ["lombardia"]})),
    ]
    calls = bench.make_calls(50, rng)
    assert assert_agree(Matcher(profiles, config=config), calls) > 500


def test_the_collector_is_left_as_it_was() -> None:
    rs = load_relevance_set(ROOT / "tests" / "data" / "relevance", now=NOW)
    matcher = Matcher(list(rs.profiles.values()))
    call = rs.calls[0].call
    assert gc.isenabled()
    matcher.match(call, now=NOW)
    assert gc.isenabled()
    gc.disable()
    try:
        matcher.match(call, now=NOW)
        assert not gc.isenabled()
    finally:
        gc.enable()
