"""The incremental FluctuationMonitor: baseline, signals, determinism, and
snapshot + tail = full run."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.spc import (
    FluctuationMonitor,
    MonitorConfig,
    SpecLimitCheck,
    cpk_upper,
    d2,
    run_chart,
    spec_limit_check,
)


def gauss_series(n, mu=10.0, sd=1.0, seed=7):
    rng = random.Random(seed)
    return [mu + sd * rng.gauss(0.0, 1.0) for _ in range(n)]


def feed(mon, values):
    out = []
    for v in values:
        out.extend(mon.update(v))
    return out


def test_baseline_freezes_individuals_limits():
    """Hand-computed: after 20 kept points, centre = mean, σ = MR̄/d2(2)."""
    vals = gauss_series(20)
    mon = FluctuationMonitor()
    for v in vals[:-1]:
        assert mon.update(v) == []
    assert mon.phase == "I" and mon.limits is None and mon.baseline_remaining == 1
    mon.update(vals[-1])
    assert mon.phase == "II"
    mr = sum(abs(b - a) for a, b in zip(vals, vals[1:])) / 19
    assert mon.center == pytest.approx(sum(vals) / 20, abs=1e-12)
    assert mon.sigma == pytest.approx(mr / d2(2), abs=1e-12)
    lim = mon.limits
    assert lim["ucl"] == pytest.approx(mon.center + 3 * mon.sigma)
    assert lim["ewma_ucl"] == pytest.approx(mon.center + 3 * mon.sigma * math.sqrt(0.2 / 1.8))
    assert lim["cusum_h"] == pytest.approx(5 * mon.sigma)


def test_revised_baseline_drops_an_outlier_and_excluded_points():
    vals = gauss_series(20)
    spiked = vals[:10] + [vals[10] + 40.0] + vals[11:]
    plain = FluctuationMonitor(revise_baseline=False)
    feed(plain, spiked)
    revised = FluctuationMonitor()
    feed(revised, spiked)
    assert revised.sigma < plain.sigma / 3
    # excluding the spike by hand gives the same estimate
    ex = FluctuationMonitor(baseline=19, revise_baseline=False)
    for i, v in enumerate(spiked):
        ex.update(v, exclude=(i == 10))
    assert ex.center == pytest.approx(revised.center, abs=1e-12)
    assert ex.sigma == pytest.approx(revised.sigma, abs=1e-12)
    assert ex.count == 20


def test_shift_is_detected_by_each_chart():
    base = gauss_series(20, seed=3)
    mon = FluctuationMonitor(rules=(1, 2, 4))
    feed(mon, base)
    sigs = feed(mon, [mon.center + 1.2 * mon.sigma] * 12)
    kinds = {(s.chart, s.rule) for s in sigs}
    assert ("i", "rule4") in kinds
    assert ("ewma", "ewma") in kinds
    assert ("cusum", "cusum_upper") in kinds
    first = min(s.index for s in sigs if s.chart == "cusum")
    assert first > 20
    s = next(s for s in sigs if s.rule == "rule4")
    assert s.text_zh.startswith("连续8点位于中心线同侧") and "8 points" in s.text_en
    assert s.to_dict()["index"] == s.index
    spike = mon.update(mon.center - 10 * mon.sigma)
    assert any(s.rule == "rule1" and s.side == "lower" for s in spike)


def test_cusum_restarts_after_signal():
    mon = FluctuationMonitor(target=0.0, sigma=1.0, baseline=0, rules=())
    sigs = feed(mon, [2.0] * 12)
    idx = [s.index for s in sigs if s.chart == "cusum"]
    # C+ grows by 1.5 a point: 6.0 > 5 at point 4, then restarts: 8, 12
    assert idx == [4, 8, 12]
    noreset = FluctuationMonitor(target=0.0, sigma=1.0, baseline=0, rules=(), cusum_reset=False)
    assert [s.index for s in feed(noreset, [2.0] * 6) if s.chart == "cusum"] == [4, 5, 6]


def test_spec_limit_signals_fire_once_per_episode():
    """Edge-triggered with hysteresis: one signal when the EWMA crosses 0.8·USL,
    none while it stays there, another only after it fell back and rose again."""
    mon = FluctuationMonitor(target=5.0, sigma=0.5, baseline=0, usl=10.0, rules=())
    quiet = feed(mon, [5.0] * 5)
    assert quiet == []
    up = feed(mon, [8.6] * 30)
    near = [s for s in up if s.rule == "ewma_near_limit"]
    low = [s for s in up if s.rule == "cpk_low"]
    assert len(near) == 1 and len(low) == 1
    assert near[0].value >= 8.0 and near[0].detail["threshold"] == 8.0
    assert low[0].detail["cpk"] < 1.0
    assert low[0].text_zh == "过程能力指数Cpk低于阈值"
    again = feed(mon, [5.0] * 30) + feed(mon, [8.6] * 30)
    assert sorted(s.rule for s in again if s.chart == "spec") == ["cpk_low", "ewma_near_limit"]


def test_baseline_capability_signal_at_freeze():
    mon = FluctuationMonitor(baseline=5, usl=1.0)
    sigs = feed(mon, [0.9, 0.7, 0.95, 0.8, 0.85])
    assert [s.rule for s in sigs] == ["cpk_low", "ewma_near_limit"]
    assert all(s.index == 5 for s in sigs)


def test_cpk_function_and_stateless_check():
    assert cpk_upper(4.0, 1.0, 10.0) == 2.0
    assert cpk_upper(4.0, 0.0, 10.0) == math.inf
    assert cpk_upper(11.0, 0.0, 10.0) == -math.inf
    sigs = spec_limit_check(8.0, 1.0, 10.0, ewma=8.5)
    assert [s.rule for s in sigs] == ["cpk_low", "ewma_near_limit"]
    assert spec_limit_check(4.0, 1.0, 10.0, ewma=5.0) == []
    assert SpecLimitCheck(10.0, ewma_fraction=0.5).ewma_threshold == 5.0
    with pytest.raises(ValueError):
        SpecLimitCheck(10.0, ewma_fraction=1.5)


def test_zero_sigma_baseline_defines_no_limits():
    """A baseline with no spread defines no control limits: a departure from the constant is
    "beyond 3σ" of nothing, so no chart signal; the check against the legal maximum still runs."""
    mon = FluctuationMonitor(baseline=5, usl=0.05)
    feed(mon, [0.0] * 5)
    assert mon.sigma == 0.0
    assert feed(mon, [0.0] * 3) == []
    assert mon.update(0.01) == []
    assert mon.limits["cpk"] is None  # no capability judgement without spread
    near = feed(mon, [0.05] * 12)
    assert [s.rule for s in near] == ["ewma_near_limit"]
    floored = FluctuationMonitor(baseline=5, min_sigma=0.01)
    feed(floored, [0.0] * 5)
    assert floored.sigma == 0.01


def test_the_revision_keeps_the_spread_of_a_mostly_not_detected_baseline():
    """溴酸盐 not detected (charted at half the detection limit, 0.001) in 6 of 8 results, detected
    at 0.0022 and 0.0046 in two: the moving ranges are mostly 0, so 0.0046 lies beyond 3σ; dropping
    it left σ = 0 and a centre line at 0.001171 "mg/L" every later detection crossed.  The
    detections are the process's own variation: the revision stops before it removes all spread."""
    mon = FluctuationMonitor(baseline=8, usl=0.01)
    feed(mon, [0.0022, 0.0046] + [0.001] * 6)
    assert mon.sigma > 0
    assert mon.center == pytest.approx((0.0022 + 0.0046 + 6 * 0.001) / 8)
    # a real outlier among values with spread is still revised away
    vals = gauss_series(20)
    revised = FluctuationMonitor()
    feed(revised, vals[:10] + [vals[10] + 40.0] + vals[11:])
    assert revised.sigma < 2.0


def test_capability_is_judged_only_on_enough_points():
    """Cpk from 8 results (standard error ~0.4) is no judgement: with cpk_min_points 20 the
    baseline's alternating values raise nothing at freeze; Cpk is judged once 20 in-control
    points stand behind σ, and then says which mean and how many points."""
    alternating = [1.5, 5.8, 1.6, 5.9, 1.5, 6.0, 1.7, 5.8]
    early = FluctuationMonitor(baseline=8, usl=10.0)
    sigs = feed(early, alternating)
    (cpk,) = [s for s in sigs if s.rule == "cpk_low"]
    assert cpk.detail["points"] == 8 and cpk.detail["basis"] == "baseline"
    assert cpk.detail["mean"] == pytest.approx(sum(alternating) / 8)

    mon = FluctuationMonitor(baseline=8, usl=10.0, cpk_min_points=20)
    assert feed(mon, alternating) == []
    assert mon.limits["cpk"] is None and mon.limits["cpk_points"] == 8
    # the same process goes on: judged at the 20th in-control point
    later = feed(mon, alternating + alternating[:6])
    (sig,) = [s for s in later if s.rule == "cpk_low"]
    assert sig.index == 20 and sig.detail["points"] == 20 and sig.detail["basis"] == "ewma"
    mrs = [abs(b - a) for a, b in zip(alternating * 3, (alternating * 3)[1:20])]
    assert sig.detail["sigma"] == pytest.approx(sum(mrs) / len(mrs) / d2(2))
    assert sig.detail["cpk"] == pytest.approx((10.0 - sig.detail["mean"]) / (3 * sig.detail["sigma"])) and sig.detail["cpk"] < 1.0
    # known σ (target and sigma given) needs no points
    known = FluctuationMonitor(target=5.0, sigma=2.0, baseline=0, usl=10.0, cpk_min_points=20, rules=())
    assert [s.rule for s in feed(known, [5.0] * 3)] == ["cpk_low"]


def test_excluded_values_in_phase_two_are_skipped():
    mon = FluctuationMonitor(target=0.0, sigma=1.0, baseline=0)
    assert mon.update(100.0, exclude=True) == []
    assert mon.count == 1 and mon.ewma == 0.0
    assert mon.update(0.0) == []


def test_bad_input_and_config():
    mon = FluctuationMonitor()
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            mon.update(bad)
    with pytest.raises(ValueError):
        MonitorConfig(baseline=1)
    with pytest.raises(ValueError):
        MonitorConfig(ewma_lambda=0.0)
    with pytest.raises(ValueError):
        MonitorConfig(rules=(9,))
    with pytest.raises(ValueError, match="unknown monitor settings"):
        MonitorConfig.from_dict({"baseline": 20, "colour": "red"})
    with pytest.raises(ValueError):
        FluctuationMonitor.from_dict({"version": 99})
    assert MonitorConfig.from_dict(MonitorConfig(rules="we").to_dict()).rules == (1, 2, 3, 4)


def test_restart_collects_a_new_baseline():
    mon = FluctuationMonitor(baseline=5)
    feed(mon, [1.0, 2.0, 1.5, 1.2, 1.8])
    assert mon.phase == "II"
    mon.restart()
    assert mon.phase == "I" and mon.count == 5
    feed(mon, [11.0, 12.0, 11.5, 11.2, 11.8])
    assert mon.center == pytest.approx(11.5)


def test_matches_batch_charts():
    """With known limits the monitor's I/EWMA/CUSUM signals equal the batch charts'."""
    vals = gauss_series(400, mu=0.3, seed=11)
    mon = FluctuationMonitor(target=0.0, sigma=1.0, baseline=0, rules=(1, 2, 3, 4, 5, 6, 7, 8))
    got = sorted((s.chart, s.rule, s.index, s.value) for s in feed(mon, vals))
    want = []
    for kind in ("i", "ewma", "cusum"):
        r = run_chart(kind, values=vals, target=0.0, sigma=1.0, rules="nelson", cusum_reset=True)
        want += [(s.chart, s.rule, s.index, s.value) for s in r.signals]
    assert got == sorted(want)
    assert got   # the shifted series does signal


# ---------------------------------------------------------------- properties

values_st = st.lists(
    st.one_of(st.floats(-50, 50, allow_nan=False, allow_infinity=False),
              st.sampled_from([0.0, 1.0, 2.5])),
    min_size=0, max_size=70)

config_st = st.builds(
    MonitorConfig,
    baseline=st.integers(2, 12),
    rules=st.sampled_from([(1, 2, 4), (1, 2, 3, 4), (1, 2, 3, 4, 5, 6, 7, 8), (5, 6)]),
    usl=st.one_of(st.none(), st.floats(-10, 60)),
    mr_chart=st.booleans(),
    cusum_reset=st.booleans(),
    ewma_steady_state=st.booleans(),
    revise_baseline=st.booleans(),
    cpk_min_points=st.sampled_from([0, 5, 20]),
)


def run_all(mon, values, excl):
    out = []
    for i, v in enumerate(values):
        out.extend(s.to_dict() for s in mon.update(v, exclude=i in excl))
    return out


@settings(max_examples=120, deadline=None)
@given(config_st, values_st, st.integers(0, 70), st.sets(st.integers(0, 69), max_size=5))
def test_snapshot_plus_tail_equals_full_run(config, values, cut, excl):
    cut = min(cut, len(values))
    full = FluctuationMonitor(config)
    want = run_all(full, values, excl)

    head = FluctuationMonitor(config)
    got = []
    for i, v in enumerate(values[:cut]):
        got.extend(s.to_dict() for s in head.update(v, exclude=i in excl))
    snap = json.loads(json.dumps(head.to_dict()))
    tail = FluctuationMonitor.from_dict(snap)
    for i, v in enumerate(values[cut:], cut):
        got.extend(s.to_dict() for s in tail.update(v, exclude=i in excl))

    assert got == want
    assert tail.to_dict() == full.to_dict()


@settings(max_examples=40, deadline=None)
@given(config_st, values_st)
def test_deterministic(config, values):
    a, b = FluctuationMonitor(config), FluctuationMonitor(config)
    assert run_all(a, values, set()) == run_all(b, values, set())
    assert json.dumps(a.to_dict()) == json.dumps(b.to_dict())
