"""A statistician's review of the fluctuation charts: signals an in-control process must not raise,
each folded through the real ``replay()`` (one test per finding; the figures are in the review's
repro scripts)."""
from __future__ import annotations

import datetime as dt
import math
import random
import uuid

import pytest

from processors.step import Rules, replay
from schemas.policy import Policy
from schemas.upcast import parse_event
from tests.conftest import golden

_n = [0]


def _id() -> str:
    _n[0] += 1
    return str(uuid.UUID(int=700_000 + _n[0], version=4))


def registered(eid: str = "E-330110-001", category: str = "packaged_water", day: dt.date = dt.date(2025, 1, 2)):
    doc = golden("enterprise.registered")
    doc["event_id"] = _id()
    doc["enterprise_id"] = eid
    doc["occurred_at"] = f"{day.isoformat()}T09:00:00+08:00"
    doc["payload"]["category"] = category
    doc["payload"]["licence_no"] = "SC1063301100%04d" % (_n[0] % 10000)
    return parse_event(doc)


def complaint(day: dt.date, eid: str = "E-330110-001", category: str = "taste_odour"):
    doc = golden("complaint.received")
    doc["event_id"] = _id()
    doc["enterprise_id"] = eid
    doc["occurred_at"] = f"{day.isoformat()}T10:00:00+08:00"
    doc["payload"]["complaint_id"] = f"C{_n[0]}"
    doc["payload"]["category"] = category
    doc["payload"]["text"] = "桶装水有异味。"
    return parse_event(doc)


def sample(day: dt.date, items: list[dict], eid: str = "E-330110-001", product: str | None = None, lab: str | None = None):
    doc = golden("sampling.result")
    doc["event_id"] = _id()
    doc["enterprise_id"] = eid
    doc["occurred_at"] = f"{day.isoformat()}T10:00:00+08:00"
    p = doc["payload"]
    p["sample_no"] = f"S{_n[0]}"
    p["sampled_on"] = p["production_date"] = day.isoformat()
    if lab is not None:
        from tests.conftest import lab_source
        p["lab"] = lab
        doc["source"] = lab_source(lab)
    if product is not None:
        p["product"] = product
    p["items"] = items
    return parse_event(doc)


def monthly(i: int) -> dt.date:
    return dt.date(2025, 1, 6) + dt.timedelta(days=30 * i)


def signals(effects, **match):
    return [e for e in effects if e.kind == "fluctuation.signal" and all(e.data.get(k) == v for k, v in match.items())]


# --------------------------------------------------------------------------- 1. plan items: less is better


def test_a_fall_in_colony_counts_is_no_hazard(rules):
    """A bakery's 菌落总数 fell from ~3000 to ~300 CFU/g after it fixed its hygiene: four medium warnings
    said 明显低于以往水平 and 结果累积偏低, as if that were a risk (plan items are judged from above)."""
    vals = [3000, 3400, 2800, 3100, 2900, 3300, 3050, 2950] + [300, 280, 320, 310]
    log = [registered(category="pastry")]
    log += [sample(monthly(i), [{"item_code": "aerobic_plate_count", "values": [v, v // 2, v // 3, v // 4, v // 5],
                                 "unit": "CFU/g"}], product="蛋糕") for i, v in enumerate(vals)]
    state, effects = replay(log, rules)
    assert not signals(effects)
    assert not [e for e in effects if e.kind == "warning.raised" and e.data.get("rule") == "fluctuation.signal"]
    assert not [x for x in state.files["E-330110-001"].risk.entries if x[1] == "fluctuation_signal"]


# --------------------------------------------------------------------------- 2. complaints: exact Poisson limits


def test_the_complaint_chart_has_exact_poisson_limits(rules):
    """c̄ = 0.3 a month: the normal limit 0.3 + 3√0.3 = 1.94 made 2 complaints in a month a signal,
    P(X ≥ 2) = 3.7 %, 27 times the nominal 0.135 %.  Exactly: P(X ≥ 4) = 0.027 % < 0.135 % ≤ P(X ≥ 3)."""
    from processors.fluctuation import c_limits, poisson_at_least

    assert c_limits(0.3) == (0.0, 3.0)
    assert poisson_at_least(3, 0.3) >= 0.00135 > poisson_at_least(4, 0.3)
    days = [dt.date(2025, 3, d) for d in (3, 10, 17, 24)]
    log = [registered()]
    _, effects = replay(log + [complaint(d) for d in days[:3]], rules)
    assert not signals(effects, chart="c")
    _, effects = replay(log + [complaint(d) for d in days], rules)
    (c,) = signals(effects, chart="c")
    assert c.data["value"] == 4 and c.data["ucl"] == 3.0
    assert "投诉 4 件（均尚未核实属实），超出控制上限 3 件（预期每月 0.3 件；按此，一个月投诉 4 件及以上的概率约为 0.027%）" in c.data["text_zh"]


# --------------------------------------------------------------------------- 6. p chart: one precision


def test_the_p_chart_text_says_rate_and_limit_at_one_precision(rules):
    """'不合格 3 批（9%），明显高于…（控制上限 9.1%）': 3/32 = 9.4 % rounded to 9 % beside a limit at 0.1 %.
    (Exact binomial limits since: 3 of 32 is within them, 4 of 32 the most that is, and 5 signal.)"""
    log = []
    for i in range(32):
        eid = f"E-330110-{600 + i:03d}"
        oxygen = 3.0 if i >= 27 else 0.8  # the last five fail (legal maximum 2.0 mg/L)
        log += [registered(eid), sample(dt.date(2025, 1, 6) + dt.timedelta(days=i), [
            {"item_code": "oxygen_consumption", "values": [oxygen], "unit": "mg/L"}], eid=eid)]
    _, effects = replay(log, rules)
    (county,) = signals(effects, chart="p", scope="category")
    assert county.data["n"] == 32 and county.data["failed"] == 5
    assert "抽检 32 批、不合格 5 批（15.6%），明显高于参考不合格率 1.90%（控制上限 12.5%）" in county.data["text_zh"]


# --------------------------------------------------------------------------- 3. ties from coarse reporting


def _ph_log(values: list[float]) -> list:
    return [registered()] + [sample(monthly(i), [{"item_code": "ph", "values": [v], "unit": "pH"}]) for i, v in enumerate(values)]


def test_results_rounded_to_the_reporting_step_are_not_beyond_a_limit_inside_their_rounding(rules):
    """pH reported to 0.1 (σ 0.05): the ties made MR̄ tiny, σ̂ 0.025, and '本批 6.6 明显高于以往水平（正常波动上限
    6.588）' while a reported 6.6 is anything in 6.55-6.65; a baseline of eight 6.5 had σ = 0 and no limits."""
    baseline = [6.5, 6.5, 6.5, 6.5, 6.5, 6.5, 6.6, 6.5]
    state, effects = replay(_ph_log(baseline + [6.6, 6.5, 6.6]), rules)
    assert not signals(effects)
    monitor = state.files["E-330110-001"].fluctuation.series["饮用纯净水|ph"].monitor
    assert monitor.resolution == pytest.approx(0.1) and monitor.sigma >= 0.1 / math.sqrt(12)
    # eight results all 6.5: σ floored at the step's 0.029, so the chart has limits; 6.6 is inside them, 6.8 not
    state, effects = replay(_ph_log([6.5] * 8 + [6.6, 6.8]), rules)
    (sig,) = signals(effects)
    assert sig.data["value"] == 6.8 and sig.data["rule"] == "rule1"
    # the step is part of the monitor's state: a snapshot taken mid-baseline resumes to the same
    from processors.credit_file import CountyState
    events = _ph_log([6.5] * 4 + [6.45] + [6.5] * 3 + [6.6, 6.8])
    full, full_effects = replay(events, rules)
    head, _ = replay(events[:4], rules)
    resumed, tail_effects = replay(events[4:], rules, state=CountyState.restore(head.snapshot()))
    assert resumed.snapshot() == full.snapshot()
    assert [e.data for e in signals(full_effects)] == [e.data for e in signals(tail_effects)]


def test_the_reporting_step_is_the_last_decimal_written():
    from processors.spc.monitor import step_of

    assert [step_of(x) for x in (6.5, 0.004933, 1.5e-05, 3000.0, 0.0, 12.25)] == [0.1, 1e-06, 1e-06, 1.0, 0.0, 0.01]


# --------------------------------------------------------------------------- 5. short baselines, few detectors

_ITEMS = {"oxygen_consumption": (0.8, 0.08, "mg/L"), "conductivity": (3.0, 0.3, "µS/cm"),
          "chloroform": (0.004, 0.0005, "mg/L"), "anionic_detergents": (0.05, 0.006, "mg/L")}


def test_in_control_plants_seldom_signal_from_an_8_point_baseline(rules):
    """Limits from 8 results at 3σ̂ with rules 1, 2, 4, the EWMA and the CUSUM all on: 70 of 100 in-control
    water plants signalled within 20 months.  Widened for the estimate, rule 1 and the EWMA: 11."""
    rng = random.Random(21)
    log = []
    for e in range(40):
        eid = f"E-330110-{e + 500:03d}"
        log.append(registered(eid))
        for i in range(20):
            items = [{"item_code": k, "values": [round(rng.gauss(mu, sd), 6)], "unit": u} for k, (mu, sd, u) in _ITEMS.items()]
            log.append(sample(dt.date(2024, 1, 10) + dt.timedelta(days=30 * i), items, eid=eid))
    _, effects = replay(log, rules)
    assert not [x for x in effects if x.kind == "sampling.failed"]
    plants = {e.enterprise_id for e in signals(effects, scope="series")}
    assert len(plants) <= 4  # 40 plants × 4 items × 12 results: 1 (3σ̂ and five detectors: 21 of the 40)
    assert all(g["rule"] in ("rule1", "ewma", "baseline_outlier") for e in signals(effects) for g in e.data["signals"])


def test_the_limits_are_widened_for_the_baseline_s_estimates_and_the_policy_can_restore_the_detectors(rules):
    from processors.spc.monitor import mr_df, t_quantile

    assert t_quantile(10**6) == pytest.approx(3.0, abs=1e-3) and t_quantile(7) == pytest.approx(4.53, abs=0.01)
    baseline = [0.80, 0.85, 0.78, 0.82, 0.79, 0.83, 0.81, 0.80]
    state, _ = replay([registered()] + [sample(monthly(i), [{"item_code": "oxygen_consumption", "values": [v], "unit": "mg/L"}])
                                        for i, v in enumerate(baseline)], rules)
    limits = state.files["E-330110-001"].fluctuation.series["饮用纯净水|oxygen_consumption"].monitor.limits
    k = t_quantile(mr_df(7)) * math.sqrt(1 + 1 / 8)
    assert limits["ucl"] == pytest.approx(limits["center"] + k * limits["sigma"]) and limits["limit_factor"] == pytest.approx(k)
    # a clear jump still signals, and says its limit is not 3σ
    jump = [registered()] + [sample(monthly(i), [{"item_code": "oxygen_consumption", "values": [v], "unit": "mg/L"}])
                             for i, v in enumerate(baseline + [1.2])]
    _, effects = replay(jump, rules)
    (sig,) = signals(effects)
    assert "1点超出上控制限（按 8 批基线估计，放宽至 5.4σ）" in sig.data["text_zh"]
    # the policy can run the old set
    old = Rules(rules.catalogue, Policy.model_validate({"spc": {"rules": {"i": [1, 2, 4], "p": [1], "c": [1]},
                                                                "detectors": ["ewma", "cusum"], "estimated_limits": False}}))
    _, effects = replay(jump, old)
    (sig,) = signals(effects)
    assert {g["rule"] for g in sig.data["signals"]} >= {"rule1", "cusum_upper"} and "1点超出上控制限（3σ）" in sig.data["text_zh"]


# --------------------------------------------------------------------------- 7. non-detects after a detection-limit change


def test_non_detects_above_the_centre_after_a_detection_limit_change_are_not_a_rising_run(rules):
    """Lab B's detection limit 0.008 mg/L: every later 溴酸盐 not detected, charted at 0.004 above the centre
    0.00275 — '近几批多次偏高' (rule 4) on results nobody detected.  A non-detect is [0, DL]: on neither side."""
    def item(v, dl):
        return [{"item_code": "bromate", "values": [v], "unit": "mg/L", "detection_limit": dl}]
    base = [0.004, "ND", 0.005, 0.003, "ND", 0.004, "ND", 0.003]
    log = [registered()] + [sample(monthly(i), item(v, 0.002)) for i, v in enumerate(base)]
    log += [sample(monthly(8 + i), item("ND", 0.008), lab="另一检测公司") for i in range(10)]
    for r in (rules, Rules(rules.catalogue, Policy.model_validate({"spc": {"rules": {"i": [1, 2, 4], "p": [1], "c": [1]},
                                                                           "detectors": ["ewma", "cusum"]}}))):
        _, effects = replay(log, r)
        assert not signals(effects)


# --------------------------------------------------------------------------- 4. colony counts on a log scale


def _apc(values: list[int]) -> list[dict]:
    return [{"item_code": "aerobic_plate_count", "values": values, "unit": "CFU/g"}]


def test_colony_counts_are_charted_as_log10_and_said_in_cfu(rules):
    """菌落总数 of in-control bakeries (log-normal, the largest of 5 units): charted raw on a normal-theory
    chart, 57 % of them signalled within 20 months.  On log10, few; a real rise still signals, in CFU/g."""
    rng = random.Random(11)
    log = []
    for e in range(30):
        eid = f"E-330110-{e + 100:03d}"
        log.append(registered(eid, "pastry"))
        for i in range(20):
            vals = [round(10 ** rng.gauss(math.log10(300), 0.4)) for _ in range(5)]
            log.append(sample(dt.date(2024, 1, 10) + dt.timedelta(days=30 * i), _apc(vals), eid=eid, product="蛋糕"))
    _, effects = replay(log, rules)
    assert len({e.enterprise_id for e in signals(effects, item_code="aerobic_plate_count")}) <= 3  # raw: 16 of the 30 (11 with limits widened)
    # a bakery whose counts rise tenfold
    base = [300, 450, 250, 380, 320, 500, 280, 350]
    log = [registered(category="pastry")] + [sample(monthly(i), _apc([v, v // 2, v // 3, 0, 10]), product="蛋糕")
                                             for i, v in enumerate(base + [6000])]
    state, effects = replay(log, rules)
    (sig,) = signals(effects)
    series = state.files["E-330110-001"].fluctuation.series["蛋糕|aerobic_plate_count"]
    limits = series.monitor.limits
    assert limits["scale"] == "log10"
    geo = 10 ** (sum(math.log10(v) for v in base) / len(base))
    assert limits["center"] == pytest.approx(geo) and sig.data["value"] == 6000 and sig.data["ucl"] == pytest.approx(limits["ucl"])
    text = sig.data["text_zh"]
    assert text.startswith("蛋糕·菌落总数：本批 5 个样品单元中最大值 6000 CFU/g 明显高于以往水平（正常波动上限 ")
    assert f"以往各批最大值的几何均值 {geo:.0f} CFU/g" in text and "e+" not in text
    assert sig.data["evidence"]["limits"]["ucl"] == pytest.approx(limits["ucl"]) and limits["ucl"] < 6000


def test_a_count_of_zero_is_charted_below_one_colony(rules):
    log = [registered(category="pastry")] + [sample(monthly(i), _apc([v, 0, 0, 0, 0]), product="蛋糕")
                                             for i, v in enumerate([0, 0, 10, 0, 20, 0, 0, 10, 0, 0, 30])]
    state, effects = replay(log, rules)
    series = state.files["E-330110-001"].fluctuation.series["蛋糕|aerobic_plate_count"]
    assert [p[2] for p in series.recent][:3] == [0, 0, 10]  # the points keep the counts as reported
    assert not signals(effects)


# --------------------------------------------------------------------------- 8. a baseline point left out is said


def test_a_baseline_point_left_out_of_the_estimate_is_said(rules):
    """The same 9 耗氧量 results: the lot at 1.75 mg/L (88 % of the legal maximum) signalled as the 9th
    result, and as the 4th — in the baseline — the revision dropped it without a word."""
    vals = [0.80, 0.85, 0.78, 0.82, 0.79, 0.83, 0.81, 0.80]
    log = [registered()] + [sample(monthly(i), [{"item_code": "oxygen_consumption", "values": [v], "unit": "mg/L"}])
                            for i, v in enumerate(vals[:3] + [1.75] + vals[3:])]
    state, effects = replay(log, rules)
    (sig,) = signals(effects)
    assert sig.data["rule"] == "baseline_outlier" and sig.data["index"] == 4 and sig.data["value"] == 1.75 and sig.data["side"] == "upper"
    assert "以往第 4 批（2025-04-06，抽样编号 " in sig.data["text_zh"] and "结果 1.75 mg/L 明显高于其余各批" in sig.data["text_zh"]
    points = {p["index"]: p["rules"] for p in sig.data["evidence"]["points"]}
    assert points[4] == ["baseline_outlier"] and points[8] == []
    # a baseline of in-control results drops nothing, says nothing
    log = [registered()] + [sample(monthly(i), [{"item_code": "oxygen_consumption", "values": [v], "unit": "mg/L"}])
                            for i, v in enumerate(vals)]
    _, effects = replay(log, rules)
    assert not signals(effects)


def test_capability_is_not_said_to_fall_on_the_ewma_s_own_noise(rules):
    """耗氧量 of plants at Cpk 1.33 (mean 1.40, sd 0.15, legal maximum 2.0): the EWMA's Cpk fell below 1
    within 60 results for 5 plants of these 20.  Judged with the EWMA's own noise allowed for: seldom."""
    rng = random.Random(2)
    log = []
    for e in range(20):
        eid = f"E-330110-{e + 800:03d}"
        log.append(registered(eid))
        log += [sample(dt.date(2020, 1, 10) + dt.timedelta(days=30 * i),
                       [{"item_code": "oxygen_consumption", "values": [round(rng.gauss(1.401, 0.15), 2)], "unit": "mg/L"}], eid=eid)
                for i in range(60)]
    _, effects = replay(log, rules)
    said = {e.enterprise_id for e in signals(effects) if any(g["rule"] == "cpk_low" for g in e.data["signals"])}
    assert len(said) <= 1, said


def test_in_control_baselines_seldom_report_a_point():
    """Every point of a baseline is looked at when the limits freeze: at the chart's own limits one
    in-control baseline in two hundred reported a point; over all of them (Bonferroni), about one in a thousand."""
    from processors.fluctuation import _monitor_config
    from processors.spc import FluctuationMonitor

    config = _monitor_config(Policy().spc, None)
    rng = random.Random(3)
    reported = 0
    for _ in range(4000):
        monitor = FluctuationMonitor(config)
        said = [sg for _ in range(8) for sg in monitor.update(round(rng.gauss(0.8, 0.05), 4))]
        reported += any(sg.rule == "baseline_outlier" for sg in said)
    assert reported <= 12  # 0.3 %
