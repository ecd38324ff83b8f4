"""Series mostly not detected (溴酸盐 in most water plants): no control limits below what the
method can detect, a detection after a run of non-detects as a note, a result near the legal
maximum still said."""
from __future__ import annotations

import datetime as dt

from processors.step import Rules, replay
from schemas.policy import Policy
from schemas.upcast import parse_event
from tests.conftest import golden
from tests.test_fluctuation import _with_items, signals, water_sample

DL = 0.002  # mg/L, the bromate method's detection limit; a non-detect is charted at 0.001
KEY = "饮用纯净水|bromate"


def bromate_log(results: list, dl: float = DL) -> list:
    days = [dt.date(2025, 1, 5) + dt.timedelta(days=14 * i) for i in range(len(results))]
    events = [parse_event(golden("enterprise.registered"))]
    events += [_with_items(water_sample(d, 0.8), {"item_code": "bromate", "values": [b], "unit": "mg/L", "detection_limit": dl})
               for d, b in zip(days, results)]
    return events


def test_a_baseline_mostly_not_detected_has_no_control_limits_to_cross(rules):
    """W03 of the demo: detected at 0.0022 and 0.0046 in January, not detected six times since.
    The revision dropped 0.0046 (the moving ranges are mostly 0), then 0.0022 with it, and froze
    σ = 0 and an "upper control limit" of 0.001171 mg/L, below the detection limit 0.002: every
    later detection was "明显高于以往水平", although the same file had 0.0046 in January."""
    state, effects = replay(bromate_log([0.0022, 0.0046] + ["ND"] * 6 + [0.0028, 0.0026, "ND", 0.0046, 0.0031]), rules)
    series = state.files["E-330110-001"].fluctuation.series[KEY]
    assert series.censored and series.baseline_nd == 6 and series.monitor.sigma > 0
    assert not signals(effects, item_code="bromate")
    assert series.signals == 0


def test_a_detection_after_a_run_of_non_detects_is_a_low_key_note(rules):
    state, effects = replay(bromate_log(["ND"] * 8 + [0.0028, 0.0031] + ["ND"] * 7 + [0.0025]), rules)
    (note,) = signals(effects, item_code="bromate")
    d = note.data
    assert d["note"] is True and d["rule"] == "nd_detected" and d["value"] == 0.0028 and d["index"] == 9
    assert d["text_zh"] == ("饮用纯净水·溴酸盐：以往连续 8 批均未检出（检出限 0.002 mg/L），本批检出 0.0028 mg/L，"
                            "标准限值 0.01 mg/L；仅作提示，请留意后续批次")
    assert "明显高于以往水平" not in d["text_zh"] and "判异依据" not in d["text_zh"]
    assert "after 8 results in a row not detected" in d["text_en"]
    # the next detection follows a detection, and 7 non-detects are fewer than a baseline: nothing
    assert state.files["E-330110-001"].fluctuation.series[KEY].signals == 0  # and a note is no signalled batch
    # a bureau that wants no such notes turns them off
    quiet = Rules(rules.catalogue, Policy.model_validate({"spc": {"nd_detection_note": False}}))
    _, effects = replay(bromate_log(["ND"] * 8 + [0.0028]), quiet)
    assert not signals(effects, item_code="bromate")


def test_a_result_near_the_legal_maximum_is_still_said(rules):
    """No control limits, but the legal maximum is a yardstick: 0.009 mg/L is 90 % of 0.01, not yet
    a failure.  A failure (0.011) alerts as a failure, not twice."""
    _, effects = replay(bromate_log(["ND", "ND", "ND", 0.003, "ND", "ND", 0.004, "ND", 0.009]), rules)
    (sig,) = signals(effects, item_code="bromate")
    assert sig.data["rule"] == "result_near_limit" and "note" not in sig.data
    assert sig.data["text_zh"].startswith("饮用纯净水·溴酸盐：本批 0.009 mg/L 已达标准限值 0.01 mg/L 的 90%，尚未超标")
    assert "明显高于以往水平" not in sig.data["text_zh"] and "以往均值" not in sig.data["text_zh"]
    _, effects = replay(bromate_log(["ND"] * 8 + [0.011]), rules)
    assert not signals(effects, item_code="bromate")
    assert [e.data["failed_items"] for e in effects if e.kind == "sampling.failed"] == [["bromate"]]


def test_a_control_limit_below_the_detection_limit_is_no_limit(rules):
    """Half the baseline not detected (not more: charted), the other half detected at exactly the
    detection limit: σ from one moving range of 0.001 puts the upper control limit at 0.00188 mg/L,
    under the 0.002 the method can detect.  A detection of 0.0021 crosses it and means nothing.
    (3σ̂ limits, as if centre and σ were known: the default widens them for the 8-point estimate, to
    4.8σ̂ = 0.0029 mg/L, and then 0.0021 crosses nothing.)"""
    from processors.step import Rules
    from schemas.policy import Policy

    three_sigma = Rules(rules.catalogue, Policy.model_validate({"spc": {"estimated_limits": False}}))
    # (detections written to 0.00001 mg/L: at 0.002, 0.001, σ would be floored at the reporting step's 0.001/√12)
    for r in (three_sigma, rules):
        state, effects = replay(bromate_log([0.00205, 0.00201, 0.00203, 0.00202] + ["ND"] * 4 + [0.0021]), r)
        series = state.files["E-330110-001"].fluctuation.series[KEY]
        assert not series.censored
        assert (series.monitor.limits["ucl"] < DL) is (r is three_sigma)
        assert not signals(effects, item_code="bromate")


def test_replay_of_a_mostly_not_detected_series_survives_a_snapshot(rules):
    from processors.credit_file import CountyState

    events = bromate_log(["ND"] * 8 + [0.0028, "ND"] + ["ND"] * 8 + [0.0031, 0.009])
    full, full_effects = replay(events, rules)
    head, _ = replay(events[:7], rules)
    resumed, tail_effects = replay(events[7:], rules, state=CountyState.restore(head.snapshot()))
    assert resumed.snapshot() == full.snapshot()
    assert [e.data["rule"] for e in signals(full_effects)] == [e.data["rule"] for e in signals(tail_effects)] == [
        "nd_detected", "nd_detected", "result_near_limit"]


def test_a_result_exactly_at_the_legal_maximum_is_near_the_limit_not_a_failure(rules):
    """0.01 mg/L is the legal maximum itself: a pass (test_judgement.py: equal to the maximum passes),
    so no failure warning says it; the near-limit note must, at 100 % of the limit."""
    _, effects = replay(bromate_log(["ND", "ND", "ND", 0.003, "ND", "ND", 0.004, "ND", 0.01]), rules)
    assert not [e for e in effects if e.kind == "sampling.failed"]
    (sig,) = signals(effects, item_code="bromate")
    assert sig.data["rule"] == "result_near_limit" and "note" not in sig.data
    assert sig.data["value"] == 0.01 == sig.data["usl"]
    (detail,) = [s["detail"] for s in sig.data["signals"] if s["rule"] == "result_near_limit"]
    assert detail["fraction"] == 1.0
    assert "已达标准限值 0.01 mg/L 的 100%，尚未超标" in sig.data["text_zh"]
