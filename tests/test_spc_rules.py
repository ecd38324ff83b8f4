"""Run rules: each fires on a constructed pattern, stays quiet on its near miss,
and the incremental tracker agrees with a brute-force reading of the rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.spc import (
    ALL_RULES,
    DEFAULT_RULES,
    RunRuleTracker,
    apply_rules,
    parse_rules,
    rules_for_chart,
    run_chart,
)
from processors.spc.rules import standardise

# Centre 0, σ 1: the plotted values are their own z-scores.
SCENARIOS = {
    # rule: (series that completes the pattern at its last point, near miss)
    1: ([0.5, -0.2, 3.2], [0.5, -0.2, 3.0]),
    2: ([0.3, 2.5, 0.1, 2.2], [0.3, 2.5, 0.1, 0.4, 2.2]),
    3: ([0.2, 1.5, 1.2, 0.5, 1.1, 1.3], [0.2, 1.5, 1.2, 0.5, 0.4, 1.3]),
    4: ([0.1, 0.4, 0.2, 0.6, 0.3, 0.5, 0.2, 0.1], [0.1, 0.4, 0.2, 0.6, 0.3, 0.5, 0.2, -0.1]),
    5: ([-1.0, -0.6, -0.2, 0.1, 0.5, 0.9], [-1.0, -0.6, -0.2, 0.1, 0.5, 0.5]),
    6: ([0.5, -0.5] * 7, [0.5, -0.5] * 6 + [0.5, 0.6]),
    7: ([0.5, -0.5, 0.3, -0.2, 0.1, 0.7, -0.6, 0.2, -0.1, 0.4, -0.3, 0.6, -0.4, 0.2, 0.1],
        [0.5, -0.5, 0.3, -0.2, 0.1, 0.7, -0.6, 0.2, -0.1, 0.4, -0.3, 0.6, -0.4, 0.2, 1.1]),
    8: ([1.5, -1.2, 1.3, -1.8, 1.1, -1.4, 1.6, -1.2], [1.5, -1.2, 1.3, -1.8, 1.1, -1.4, 1.6, 0.9]),
}


def fired(series, rule):
    hits = apply_rules(series, [0.0] * len(series), [1.0] * len(series), (rule,))
    return [i for i, h in enumerate(hits, 1) if h]


@pytest.mark.parametrize("rule", ALL_RULES)
def test_rule_fires_on_its_pattern_and_not_on_near_miss(rule):
    hit, miss = SCENARIOS[rule]
    assert fired(hit, rule) == [len(hit)]
    assert fired(miss, rule) == []


@pytest.mark.parametrize("rule", ALL_RULES)
def test_other_rules_quiet_on_a_clean_series(rule):
    """A 'clean' series: no pattern of any rule (hand-designed: short runs,
    points spread across zones, no trends, no long alternation)."""
    clean = [0.3, 1.2, -0.4, -1.1, 0.8, 0.2, -0.5, 1.4, 0.9, -0.3, -1.5, -0.2,
             0.6, 0.6, -0.8, 1.6, 0.1, -1.2, 0.4, 0.5, -0.1, 2.1, -0.6, 0.7]
    assert fired(clean, rule) == []


def test_signal_sides_and_trends():
    res = apply_rules([-0.1 * i for i in range(1, 9)], [0.0] * 8, [1.0] * 8, ALL_RULES)
    assert (4, "lower", None) in res[7]
    assert (5, None, "decreasing") in res[5]
    res = apply_rules([0.0, 3.5], [0.0, 0.0], [1.0, 1.0], (1,))
    assert res[1] == [(1, "upper", None)]


def test_runs_keep_firing_and_centre_breaks_runs():
    series = [0.5] * 10
    assert fired(series, 4) == [8, 9, 10]
    assert fired([0.5] * 7 + [0.0] + [0.5] * 7, 4) == []


def test_parse_rules():
    assert parse_rules(None) == DEFAULT_RULES == (1, 2, 4)
    assert parse_rules("we") == (1, 2, 3, 4)
    assert parse_rules("nelson") == ALL_RULES
    assert parse_rules("4, 1,2") == (1, 2, 4)
    assert parse_rules([8, 8, 5]) == (5, 8)
    with pytest.raises(ValueError, match="9"):
        parse_rules("1,9")
    with pytest.raises(ValueError):
        parse_rules("x")


def test_rules_per_chart_kind():
    assert rules_for_chart("i") == DEFAULT_RULES
    assert rules_for_chart("r", "nelson") == (1,)
    assert rules_for_chart("mr", (2, 4)) == (1,)
    assert rules_for_chart("ewma", "nelson") == ()
    cfg = {"p": "we", "default": (1,)}
    assert rules_for_chart("p", cfg) == (1, 2, 3, 4)
    assert rules_for_chart("xbar", cfg) == (1,)
    r = run_chart("i", values=[0.1] * 3 + [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
                  target=0.0, sigma=1.0, rules={"i": (5,)})
    assert r.params["rules"] == [5] and r.flagged("rule5")


def test_zero_sigma_standardises_to_infinity():
    assert standardise(1.0, 1.0, 0.0) == 0.0
    assert standardise(2.0, 1.0, 0.0) == float("inf")
    assert standardise(0.0, 1.0, 0.0) == float("-inf")


def brute_force(z, rule):
    """Direct reading of each rule on the full history (the oracle)."""
    out = []
    for i in range(len(z)):
        w = lambda k: z[max(0, i - k + 1): i + 1]  # noqa: E731
        zi = z[i]
        if rule == 1:
            hit = abs(zi) > 3
        elif rule == 2:
            hit = (zi > 2 and sum(v > 2 for v in w(3)) >= 2) or \
                  (zi < -2 and sum(v < -2 for v in w(3)) >= 2)
        elif rule == 3:
            hit = (zi > 1 and sum(v > 1 for v in w(5)) >= 4) or \
                  (zi < -1 and sum(v < -1 for v in w(5)) >= 4)
        elif rule == 4:
            hit = i >= 7 and (all(v > 0 for v in w(8)) or all(v < 0 for v in w(8)))
        elif rule == 5:
            s = w(6)
            hit = i >= 5 and (all(a < b for a, b in zip(s, s[1:]))
                              or all(a > b for a, b in zip(s, s[1:])))
        elif rule == 6:
            s = w(14)
            d = [b - a for a, b in zip(s, s[1:])]
            hit = i >= 13 and all(x != 0 for x in d) and \
                all((a > 0) != (b > 0) for a, b in zip(d, d[1:]))
        elif rule == 7:
            hit = i >= 14 and all(abs(v) < 1 for v in w(15))
        else:
            hit = i >= 7 and all(abs(v) > 1 for v in w(8))
        if hit:
            out.append(i + 1)
    return out


ZONES = st.sampled_from([-3.5, -2.5, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.5, 3.5])


@settings(max_examples=150, deadline=None)
@given(st.lists(ZONES, min_size=1, max_size=60),
       st.lists(st.sampled_from([-1, 1]), min_size=0, max_size=20))
def test_tracker_matches_brute_force(zs, alt):
    # append a sign-alternating tail so rule 6 is exercised too
    zs = zs + [0.5 * s for s in alt]
    for rule in ALL_RULES:
        assert fired(zs, rule) == brute_force(zs, rule), rule


@settings(max_examples=60, deadline=None)
@given(st.lists(ZONES, min_size=2, max_size=40), st.integers(0, 40))
def test_tracker_state_round_trip(zs, cut):
    cut = min(cut, len(zs))
    full = RunRuleTracker(ALL_RULES)
    want = [full.push(z, z) for z in zs]
    a = RunRuleTracker(ALL_RULES)
    got = [a.push(z, z) for z in zs[:cut]]
    b = RunRuleTracker.from_dict(a.to_dict())
    got += [b.push(z, z) for z in zs[cut:]]
    assert got == want
    assert b.to_dict() == full.to_dict()
