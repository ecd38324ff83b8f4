"""Fluctuation detection inside the fold: which signals, and the evidence with each."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from processors.credit_file import CountyState
from processors.step import Rules, replay, step
from schemas.policy import Policy
from schemas.upcast import parse_event
from tests.conftest import golden

_n = 0


def _id() -> str:
    global _n
    _n += 1
    return str(uuid.UUID(int=10_000 + _n, version=4))


def water_sample(day: dt.date, oxygen: float, pa=(0, 0, 0, 0, 0), chlorine: float = 0.01, lab: str = "县食品检验检测中心",
                 product: str | None = None, ph: float | None = None):
    doc = golden("sampling.result")
    doc["event_id"] = _id()
    doc["occurred_at"] = f"{day.isoformat()}T10:00:00+08:00"
    p = doc["payload"]
    p["sample_no"] = f"S{_n}"
    p["sampled_on"] = p["production_date"] = day.isoformat()
    p["lab"] = lab
    p["items"] = [
        {"item_code": "oxygen_consumption", "values": [oxygen], "unit": "mg/L"},
        {"item_code": "free_chlorine", "values": [chlorine], "unit": "mg/L"},
        {"item_code": "pseudomonas_aeruginosa", "values": list(pa), "unit": "CFU/250mL"},
    ]
    if ph is not None:
        p["items"].append({"item_code": "ph", "values": [ph], "unit": "pH"})
    if product is not None:
        p["product"] = product
    return parse_event(doc)


def complaint(day: dt.date):
    doc = golden("complaint.received")
    doc["event_id"] = _id()
    doc["occurred_at"] = f"{day.isoformat()}T10:00:00+08:00"
    doc["payload"]["complaint_id"] = f"C{_n}"
    return parse_event(doc)


OTHER = "E-330110-009"


def other_producer_failure(day: dt.date = dt.date(2025, 1, 6)):
    """Another water producer registered and failing once on ``day``: the county's chart of a category
    speaks only when its failures come from two producers (spc.category_min_enterprises)."""
    registered = parse_event({**golden("enterprise.registered"), "enterprise_id": OTHER, "event_id": "5a1d3c9e-0000-4000-8000-000000000009",
                              "occurred_at": "2025-01-02T09:00:00+08:00"})
    failed = water_sample(day, 0.8, pa=(0, 2, 0, 0, 0)).model_copy(update={"enterprise_id": OTHER})
    return [registered, failed]


def signals(effects, **match):
    return [e for e in effects if e.kind == "fluctuation.signal" and all(e.data.get(k) == v for k, v in match.items())]


BASELINE = [0.80, 0.85, 0.78, 0.82, 0.79, 0.83, 0.81, 0.80]


def drifting_log(rising=(1.0, 1.3, 1.6)):
    days = [dt.date(2025, 1, 5) + dt.timedelta(days=14 * i) for i in range(len(BASELINE) + len(rising))]
    events = [parse_event(golden("enterprise.registered"))]
    events += [water_sample(d, v) for d, v in zip(days, list(BASELINE) + list(rising))]
    return events


def test_a_plan_that_tolerates_nothing_is_not_charted(rules):
    """铜绿假单胞菌 in water is n=5, c=0, m=0: its first count fails the sample, so a chart
    signal on it would be the same failure counted again (as a fluctuation, in the risk score)."""
    days = [dt.date(2025, 1, 5) + dt.timedelta(days=14 * i) for i in range(12)]
    log = [parse_event(golden("enterprise.registered"))]
    log += [water_sample(d, 0.8, pa=(0, 0, 0, 0, 0) if i < 11 else (0, 45, 0, 0, 0)) for i, d in enumerate(days)]
    state, effects = replay(log, rules)
    assert [e.data["failed_items"] for e in effects if e.kind == "sampling.failed"] == [["pseudomonas_aeruginosa"]]
    assert not signals(effects, item_code="pseudomonas_aeruginosa")
    series = state.files["E-330110-001"].fluctuation.series
    assert {s.item_code for s in series.values()} == {"oxygen_consumption", "free_chlorine"}


def test_an_item_not_applicable_to_the_product_is_not_charted(rules):
    """A spring water's pH is outside GB 17323's 5.0–7.0 by nature and is not judged on it;
    a chart against that range would raise alarms on a limit that is not the product's."""
    days = [dt.date(2025, 1, 5) + dt.timedelta(days=14 * i) for i in range(12)]
    log = [parse_event(golden("enterprise.registered"))]
    log += [water_sample(d, 0.8, product="饮用天然泉水", ph=7.2 if i < 10 else 8.4) for i, d in enumerate(days)]
    state, effects = replay(log, rules)
    assert not [e for e in effects if e.kind == "sampling.failed"]
    assert not signals(effects, item_code="ph")
    series = state.files["E-330110-001"].fluctuation.series
    assert "ph" not in {s.item_code for s in series.values()}


def test_a_drift_towards_the_legal_maximum_signals_before_any_failure(rules):
    state, effects = replay(drifting_log(), rules)
    found = signals(effects, item_code="oxygen_consumption")
    assert found, "no signal on a rising series"
    first = found[0]
    assert first.data["index"] == 9 and first.data["rule"] == "rule1" and first.data["chart"] == "i"
    assert not [e for e in effects if e.kind == "sampling.failed"]  # 早发现: nothing has failed yet
    assert first.data["usl"] == 2.0 and "耗氧量" in first.data["text_zh"]
    evidence = first.data["evidence"]
    assert [p["value"] for p in evidence["points"]] == BASELINE + [1.0]
    assert evidence["limits"]["ucl"] < 1.0 < evidence["limits"]["usl"]


def test_quiet_series_gives_no_signal(rules):
    _, effects = replay(drifting_log(rising=(0.82, 0.79, 0.81)), rules)
    assert not signals(effects)


def test_a_drop_under_a_legal_maximum_is_not_a_hazard(rules):
    _, effects = replay(drifting_log(rising=(0.3, 0.2, 0.1)), rules)
    assert not signals(effects, item_code="oxygen_consumption")


def test_evidence_lists_nearby_events_and_lab_change(rules):
    events = drifting_log(rising=())
    events.append(complaint(dt.date(2025, 4, 20)))
    events.append(water_sample(dt.date(2025, 5, 1), 1.4, lab="另一检测公司"))
    _, effects = replay(events, rules)
    sig = signals(effects, item_code="oxygen_consumption")[0]
    assert [n["kind"] for n in sig.data["evidence"]["nearby"]] == ["complaint"]
    assert sig.data["evidence"]["changes"][0]["what"] == "lab"


def test_recurring_failures_signal_on_the_enterprise_p_chart(rules):
    events = [parse_event(golden("enterprise.registered"))]
    events += [water_sample(dt.date(2025, 1, 10), 0.8, pa=(0, 3, 0, 0, 0))]
    _, effects = replay(events, rules)
    assert not signals(effects, chart="p")  # one failure is a failure warning, not yet a chart signal
    events += [water_sample(dt.date(2025, 2, 10), 0.8, pa=(0, 0, 9, 0, 0))]
    _, effects = replay(events, rules)
    p = signals(effects, chart="p", scope="enterprise")
    assert len(p) == 1 and p[0].data["period"] == "2025Q1" and p[0].data["failed"] == 2
    assert p[0].data["evidence"]["pareto_enterprise"] == [{"item_code": "pseudomonas_aeruginosa", "count": 2}]
    # one producer's failures are its own chart's signal, not the county's (本县…类): that waits for another producer
    assert not signals(effects, chart="p", scope="category")
    other = parse_event({**golden("enterprise.registered"), "enterprise_id": "E-330110-009",
                         "event_id": "5a1d3c9e-0000-4000-8000-000000000009"})
    late = water_sample(dt.date(2025, 3, 10), 0.8, pa=(0, 2, 0, 0, 0)).model_copy(update={"enterprise_id": "E-330110-009"})
    _, effects = replay(events + [other, late], rules)
    (county,) = signals(effects, chart="p", scope="category")
    assert county.data["failed"] == 3 and county.enterprise_id == "E-330110-009"
    assert [f["enterprise_id"] for f in county.data["evidence"]["failures"]] == ["E-330110-001", "E-330110-001", "E-330110-009"]
    assert "不合格批次来自 2 家企业（E-330110-001 2 批、E-330110-009 1 批）" in county.data["text_zh"]


def test_a_rate_at_the_limit_is_not_above_it(rules):
    """2 of 16 at the pastries' 2 % reference is 12.5 %, the 3σ limit exactly; floating point made the limit
    0.12499999999999999 and the chart said "12.500% above 12.500%".  The chart compares counts since (exact
    binomial limits): 2 of 16 (P = 4 %) and 3 of 17 (0.5 %) are within them, a fourth failure is above."""
    from processors.fluctuation import p_count_limit
    from tests.test_retest_scope import SORBIC, _item
    from tests.test_risk import ev, registered

    assert (p_count_limit(0.02, 16), p_count_limit(0.02, 17), p_count_limit(0.02, 18)) == (3, 3, 3)

    def cake(i: int, fails: bool):
        day = dt.date(2026, 1, 5) + dt.timedelta(days=5 * i)
        item = _item(SORBIC[0], [1.5 if fails else 0.2], "g/kg", "不合格" if fails else "合格", SORBIC[1])
        return ev("sampling.result", f"{day.isoformat()}T10:00:00+08:00", items=[item], product="蛋糕", sample_no=f"DC-P-{i}",
                  sampled_on=day.isoformat(), production_date=day.isoformat())

    log = [registered(category="pastry")] + [cake(i, fails=i in (14, 15)) for i in range(16)]
    state, effects = replay(log, rules)
    (quarter,) = state.files["E-330110-001"].fluctuation.pass_rate.values()
    assert (quarter.n, quarter.failed) == (16, 2) and not signals(effects, chart="p", scope="enterprise")
    _, effects = replay(log + [cake(16, fails=True)], rules)  # 3 of 17: within
    assert not signals(effects, chart="p", scope="enterprise")
    _, effects = replay(log + [cake(16, fails=True), cake(17, fails=True)], rules)  # 4 of 18: P = 0.05 %
    assert signals(effects, chart="p", scope="enterprise")


def test_the_chance_of_so_many_failures_is_the_binomial_tail():
    from math import comb

    from processors.fluctuation import binomial_at_least, chance_zh

    assert binomial_at_least(2, 2, 0.019) == pytest.approx(0.019 ** 2)
    assert binomial_at_least(2, 6, 0.019) == pytest.approx(1 - 0.981 ** 6 - 6 * 0.019 * 0.981 ** 5)
    assert binomial_at_least(3, 20, 0.019) == pytest.approx(sum(comb(20, i) * 0.019 ** i * 0.981 ** (20 - i) for i in range(3, 21)))
    assert binomial_at_least(0, 5, 0.3) == pytest.approx(1.0)
    # per cent, two significant figures, never an exponent a supervisor cannot read
    assert [chance_zh(p) for p in (0.019 ** 2, 0.0051, 0.035, 0.5, 1e-9)] == ["0.036%", "0.51%", "3.5%", "50%", "不足 0.01%"]


def test_the_reference_failure_rate_is_the_category_s(rules):
    events = [parse_event(golden("enterprise.registered"))]
    events += [water_sample(dt.date(2025, 1, 10), 0.8, pa=(0, 3, 0, 0, 0)), water_sample(dt.date(2025, 2, 10), 0.8, pa=(0, 0, 9, 0, 0))]
    _, effects = replay(events, rules)
    (p,) = signals(effects, chart="p", scope="enterprise")
    # packaged water is a beverage: ~1.9 % (domain.md, SAMR 2019 H2), not the national overall 2.96 %
    assert p.data["center"] == 0.019 and "参考不合格率 1.90%" in p.data["text_zh"]
    policy = Policy()
    assert [policy.spc.reference_failure(c) for c in ("packaged_water", "pastry", "other", "spirits", None)] == [0.019, 0.020, 0.0296, 0.0296, 0.0296]
    assert policy.campaign.provincial_average("pastry") == pytest.approx(0.98)
    # an older policy file's single number is every category's; a mapping without other keeps the national figure
    old = Policy.model_validate({"spc": {"reference_failure_rate": 0.0296}})
    assert old.spc.reference_failure_rate == {"packaged_water": 0.0296, "pastry": 0.0296, "other": 0.0296}
    assert Policy.model_validate({"spc": {"reference_failure_rate": {"pastry": 0.03}}}).spc.reference_failure("spirits") == 0.0296
    with pytest.raises(ValueError):
        Policy.model_validate({"spc": {"reference_failure_rate": {"beverages": 0.02}}})
    _, effects = replay(events, Rules(rules.catalogue, old))
    (p,) = signals(effects, chart="p", scope="enterprise")
    assert p.data["center"] == 0.0296


def _with_items(event, *items):
    doc = event.model_dump(mode="json")
    doc["payload"]["items"] += list(items)
    return parse_event(doc)


def test_not_detected_is_charted_at_half_the_detection_limit_and_the_text_says_so(rules):
    # one non-detect in the baseline: substitution is fine for a small share (a baseline mostly
    # not detected has no control limits: tests/test_fluctuation_nd.py)
    bromate = ["ND", 0.003, 0.004, 0.0035, 0.0042, 0.0031, 0.0038, 0.0036, 0.009]
    days = [dt.date(2025, 1, 5) + dt.timedelta(days=14 * i) for i in range(len(bromate))]
    events = [parse_event(golden("enterprise.registered"))]
    events += [_with_items(water_sample(d, 0.8), {"item_code": "bromate", "values": [b], "unit": "mg/L", "detection_limit": 0.002},
                           {"item_code": "lead", "values": ["ND"], "unit": "mg/L"},  # no detection limit: cannot be charted
                           {"item_code": "chloroform", "values": [0.001], "unit": "mg/L", "detection_limit": 0.002})  # below it: ND
               for d, b in zip(days, bromate)]
    state, effects = replay(events, rules)
    series = state.files["E-330110-001"].fluctuation.series
    b = series["饮用纯净水|bromate"]
    assert b.nd_points == 1 and b.monitor.center == pytest.approx((0.001 + 0.0252) / 8)  # not 0.00315
    assert not b.censored
    assert "饮用纯净水|lead" not in series
    assert [p[2] for p in series["饮用纯净水|chloroform"].recent] == [0.001] * 9 and series["饮用纯净水|chloroform"].nd_points == 9
    (sig,) = signals(effects, item_code="bromate")
    assert "以往均值 0.003275 mg/L，标准限值 0.01 mg/L；未检出按检出限的一半计）" in sig.data["text_zh"]
    # a series with no non-detect says nothing of the kind
    _, effects = replay(drifting_log(), rules)
    assert all("未检出" not in e.data["text_zh"] for e in signals(effects))


def test_complaints_above_the_expected_rate_signal_on_the_c_chart(rules):
    # exact Poisson limits at 0.3 a month: 3 complaints are within them, a 4th signals
    events = [parse_event(golden("enterprise.registered"))] + [complaint(dt.date(2025, 3, d)) for d in (2, 9, 16)]
    _, effects = replay(events, rules)
    assert not signals(effects, chart="c")
    _, effects = replay(events + [complaint(dt.date(2025, 3, 20))], rules)
    c = signals(effects, chart="c")
    assert len(c) == 1 and c[0].data["period"] == "2025-03"


def _complaint(day: dt.date, category: str, verified: bool):
    doc = golden("complaint.received")
    doc["event_id"] = _id()
    doc["occurred_at"] = f"{day.isoformat()}T10:00:00+08:00"
    doc["payload"].update(complaint_id=f"C{_n}", category=category, verified=verified, text="送水不及时，态度差" if category == "other" else "水中有异物")
    return parse_event(doc)


def test_the_complaint_chart_counts_quality_complaints_and_says_which_are_substantiated(rules):
    """A regulator's finding: two unverified complaints about delivery and service (送水不及时，态度差) raised a
    质量波动 alert and two risk points, and the message did not say they were unverified."""
    reg = parse_event(golden("enterprise.registered"))
    # (4 complaints in a month signal at 0.3 a month: the exact Poisson limit is 3)
    service = [_complaint(dt.date(2025, 3, d), "other", False) for d in (2, 9, 16, 23)]
    _, effects = replay([reg, *service], rules)
    assert not signals(effects, chart="c")
    # quality complaints (异物) still signal, saying how many are substantiated so far
    quality = [_complaint(dt.date(2025, 3, d), "foreign_matter", v) for d, v in ((2, False), (9, True), (16, False), (23, False))]
    _, effects = replay([reg, *quality], rules)
    (c,) = signals(effects, chart="c")
    assert "投诉 4 件（其中 1 件核实属实，3 件尚未核实或不属实）" in c.data["text_zh"]
    _, effects = replay([reg, quality[0], *quality[2:], _complaint(dt.date(2025, 3, 9), "hygiene", False)], rules)
    (c,) = signals(effects, chart="c")
    assert "（均尚未核实属实）" in c.data["text_zh"]
    # a service complaint among them does not make a fourth
    _, effects = replay([reg, quality[0], *quality[2:], service[0]], rules)
    assert not signals(effects, chart="c")
    # the policy may chart every category, as before
    every = Rules(rules.catalogue, Policy.model_validate({"spc": {"complaint_chart_categories": [
        "foreign_matter", "spoilage", "illness", "labelling", "taste_odour", "hygiene", "other"]}}))
    _, effects = replay([reg, *service], every)
    assert len(signals(effects, chart="c")) == 1


def test_rules_come_from_the_policy(rules):
    only_ewma = Rules(rules.catalogue, Policy.model_validate({"spc": {"rules": {"i": [4], "p": [1], "c": [1]}}}))
    _, effects = replay(drifting_log(rising=(1.0,)), only_ewma)
    assert not signals(effects, rule="rule1")


def test_credit_file_view_summarises_series(rules):
    state, _ = replay(drifting_log(), rules)
    view = state.files["E-330110-001"].view()
    oxygen = next(s for s in view["series"] if s["item_code"] == "oxygen_consumption")
    assert oxygen["phase"] == "II" and oxygen["signals"] >= 1 and oxygen["limits"]["usl"] == 2.0
    assert "fluctuation" not in view


def test_monitors_survive_a_snapshot(rules):
    events = drifting_log()
    full, _ = replay(events, rules)
    head, _ = replay(events[:6], rules)
    resumed, _ = replay(events[6:], rules, state=CountyState.restore(head.snapshot()))
    assert resumed.snapshot() == full.snapshot()


def test_a_series_counts_the_batches_that_signalled_not_the_rules(rules):
    # the credit file, the warnings and the demo summary must agree on "how many signals"
    state, effects = replay(drifting_log(rising=(1.0, 1.3, 1.6, 1.8, 1.9)), rules)
    found = signals(effects, item_code="oxygen_consumption")
    assert sum(len(e.data["signals"]) for e in found) > len(found)  # several rules fired on some points
    (series,) = [s for s in state.files["E-330110-001"].fluctuation.series.values() if s.item_code == "oxygen_consumption"]
    assert series.signals == len(found)


def test_a_complaint_chart_signal_whose_complaints_were_all_unfounded_no_longer_counts_in_the_risk(rules):
    """Four complaints in a month signal on the complaint chart (+2 risk points); found 不属实, all, the
    signal rested on nothing and leaves the score — the alert it raised stays on record."""
    from processors.step import replay as fold
    from tests.test_risk import E, ev, registered

    def month(resolutions):
        events = [registered()] + [ev("complaint.received", f"2026-03-0{d}T10:00:00+08:00", complaint_id=f"K{i}")
                                   for i, d in enumerate((2, 3, 4, 9), 1)]
        events += [ev("complaint.resolved", f"2026-03-2{i}T10:00:00+08:00", complaint_id=cid, verified=verified, outcome="核查")
                   for i, (cid, verified) in enumerate(resolutions)]
        state, effects = fold(events, rules)
        signal = [c for c in state.files[E].risk.current.contributions if c.factor == "dynamic.fluctuation_signal"]
        return signal, [e for e in effects if e.kind == "fluctuation.signal_withdrawn"]

    signal, withdrawn = month([])
    assert signal and not withdrawn  # not yet investigated: the signal counts
    unfounded = [("K1", False), ("K2", False), ("K3", False)]
    signal, withdrawn = month(unfounded)
    assert signal and not withdrawn  # one left to investigate
    signal, [w] = month(unfounded + [("K4", False)])
    assert not signal and w.data["period"] == "2026-03" and w.data["complaint_ids"] == ["K1", "K2", "K3", "K4"]
    assert w.data["text_zh"] == "2026年3月投诉 4 件经核查均不属实，该月投诉数信号不再计入风险分"
    signal, withdrawn = month(unfounded + [("K4", True)])
    assert signal and not withdrawn  # one was substantiated
