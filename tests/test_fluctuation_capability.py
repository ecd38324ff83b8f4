"""Capability (Cpk) against the legal maximum in the fold: judged on enough results, said with
the mean it rests on, below a failure's severity; lower limits of a result never below 0."""
from __future__ import annotations

import datetime as dt

import pytest

from processors.step import Rules, replay
from schemas.policy import Policy
from schemas.upcast import parse_event
from tests.conftest import golden
from tests.test_fluctuation import _with_items, signals, water_sample
from tests.test_warnings import decisions

# W04 of the demo: conductivity (purified water, at most 10 µS/cm) between 1.5 and 6.0, which
# happened to alternate in the first eight samples: MR-based σ 3.8, Cpk 0.55 from 8 results
ALTERNATING = [1.5, 5.8, 1.6, 5.9, 1.5, 6.0, 1.7, 5.8]
KEY = "饮用纯净水|conductivity"


def conductivity_log(results: list[float]) -> list:
    days = [dt.date(2025, 1, 5) + dt.timedelta(days=14 * i) for i in range(len(results))]
    events = [parse_event(golden("enterprise.registered"))]
    events += [_with_items(water_sample(d, 0.8), {"item_code": "conductivity", "values": [v], "unit": "µS/cm"})
               for d, v in zip(days, results)]
    return events


def test_capability_is_not_judged_on_eight_results(rules):
    """Cpk from 8 results has a standard error near 0.4: the demo raised seven 高/须处置 alerts
    "近期均值 3.05 µS/cm 已接近标准限值 10 µS/cm" (30 % of the limit) with nothing over it."""
    assert Policy().spc.cpk_min_points == 25
    state, effects = replay(conductivity_log(ALTERNATING + ALTERNATING[:4]), rules)
    assert not signals(effects, item_code="conductivity")
    limits = state.files["E-330110-001"].view()["series"][0]["limits"]
    assert limits["cpk"] is None and limits["cpk_points"] == 12


def test_the_capability_text_says_which_mean_and_how_many_results(rules):
    eight = Rules(rules.catalogue, Policy.model_validate({"spc": {"cpk_min_points": 8}}))
    _, effects = replay(conductivity_log(ALTERNATING), eight)
    (sig,) = signals(effects, item_code="conductivity")
    d = sig.data
    assert d["rule"] == "cpk_low" and d["signals"][0]["detail"]["points"] == 8
    assert d["text_zh"].startswith("饮用纯净水·电导率（25℃）：过程能力不足：按以往 8 批结果的均值 3.725 µS/cm 与标准差 3.811 µS/cm 估算，"
                                   "过程能力指数 Cpk=0.55，低于 1，存在超出标准限值 10 µS/cm 的风险")
    assert "近期均值" not in d["text_zh"] and "已接近标准限值" not in d["text_zh"]
    assert "Cpk 0.55 < 1 from the mean 3.725 µS/cm and the standard deviation 3.811 µS/cm of the last 8 results" in d["text_en"]


def test_capability_is_judged_once_enough_in_control_results_stand_behind_it(rules):
    twenty = Rules(rules.catalogue, Policy.model_validate({"spc": {"cpk_min_points": 20}}))
    _, effects = replay(conductivity_log(ALTERNATING * 2 + ALTERNATING[:3]), twenty)
    assert not signals(effects, item_code="conductivity")
    _, effects = replay(conductivity_log(ALTERNATING * 2 + ALTERNATING[:4]), twenty)
    (sig,) = signals(effects, item_code="conductivity")
    assert sig.data["index"] == 20
    assert "按近几批的加权平均值" in sig.data["text_zh"] and "与以往 20 批结果的标准差" in sig.data["text_zh"]


def test_a_capability_signal_is_less_severe_than_a_failure(rules):
    """A forecast while every result passes: medium (information for follow-up) by default, as a
    conductivity failure itself is; a bureau may raise it (warnings.fluctuation.severity_near_limit)."""
    eight = Rules(rules.catalogue, Policy.model_validate({"spc": {"cpk_min_points": 8}}))
    _, effects = replay(conductivity_log(ALTERNATING), eight)
    (d,) = decisions(effects, "fluctuation.signal")
    assert d.severity == "medium" and d.rasff_class == "information_follow_up"
    assert Policy().warnings.sampling_unqualified.severity_by_class["contaminant"] == "high"
    strict = Rules(rules.catalogue, Policy.model_validate({"spc": {"cpk_min_points": 8},
                                                           "warnings": {"fluctuation": {"severity_near_limit": "high"}}}))
    _, effects = replay(conductivity_log(ALTERNATING), strict)
    assert [d.severity for d in decisions(effects, "fluctuation.signal")] == ["high"]


def test_lower_limits_of_a_result_are_never_below_zero(rules):
    """centre 3.725 − 3 × 3.811 is −7.7 µS/cm: a conductivity cannot be negative."""
    eight = Rules(rules.catalogue, Policy.model_validate({"spc": {"cpk_min_points": 8}}))
    state, effects = replay(conductivity_log(ALTERNATING + [16.5]), eight)
    series = state.files["E-330110-001"].fluctuation.series[KEY]
    assert series.monitor.center - 3 * series.monitor.sigma < 0  # the estimate itself is kept
    limits = state.files["E-330110-001"].view()["series"][0]["limits"]
    assert limits["lcl"] == 0.0 and limits["ewma_lcl"] >= 0.0
    for e in signals(effects, item_code="conductivity"):
        assert e.data["evidence"]["limits"]["lcl"] == 0.0
        assert all(s["lcl"] is None or s["lcl"] >= 0.0 for s in e.data["signals"])
    from processors.fluctuation import finite_limits
    assert finite_limits({"lcl": -4.2, "ewma_lcl": -1.0, "center": 3.05, "cpk": float("inf")}) == {
        "lcl": 0.0, "ewma_lcl": 0.0, "center": 3.05, "cpk": None}
    assert finite_limits({"lcl": 0.5}) == {"lcl": pytest.approx(0.5)}
