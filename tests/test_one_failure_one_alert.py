"""One failed batch is one finding.  A result far over the limit also lands beyond its series' control limits:
the series signal is the failure itself, which its own alert and score entry say already.  It raised a second
alert (质量波动) and scored again (质量波动信号 +2 beside 抽检不合格) — a supervisor's finding.  A shift the
chart sees over several batches says more than the failure, and still alerts."""
from __future__ import annotations

import uuid

from processors.step import replay
from schemas.upcast import parse_event
from tests.conftest import golden
from tests.test_corrections import E, REG

BASELINE = [0.010, 0.012, 0.011, 0.013, 0.010, 0.012, 0.011, 0.010, 0.012, 0.011]


def chlorine(month: int, value: float, sample_no: str, year: int = 2025):
    """A water sample whose 余氯（游离氯）is ``value`` mg/L (GB 19298: ≤ 0.05), its other items passing."""
    doc = golden("sampling.result")
    doc["event_id"], doc["occurred_at"] = str(uuid.uuid4()), f"{year}-{month:02d}-05T10:00:00+08:00"
    doc["payload"].update(sample_no=sample_no, sampled_on=f"{year}-{month:02d}-03", batch=f"{year}{month:02d}01",
                          production_date=f"{year}-{month:02d}-01")
    items = doc["payload"]["items"]
    items[0]["values"], items[0]["lab_verdict"] = [0, 0, 0, 0, 0], "合格"
    items[1]["values"], items[1]["lab_verdict"] = [value], "不合格" if value > 0.05 else "合格"
    return parse_event(doc)


def _of(effects, event):
    return [e for e in effects if e.event_id == str(event.event_id)]


def test_a_failed_result_beyond_the_control_limits_is_one_alert_and_one_score_entry(rules):
    bad = chlorine(12, 0.5, "S-BAD")
    state, effects = replay([REG, *[chlorine(m + 1, v, f"S{m}") for m, v in enumerate(BASELINE)], bad], rules)
    mine = _of(effects, bad)
    (signal,) = [e.data for e in mine if e.kind == "fluctuation.signal"]  # (the chart still marks the point)
    assert signal["item_code"] == "free_chlorine" and "rule1" in {s["rule"] for s in signal["signals"]}
    assert [e.data["rule"] for e in mine if e.kind == "warning.raised" and e.data["rule"].startswith(("sampling", "fluctuation"))] == [
        "sampling.unqualified"]
    assert [x[1] for x in state.files[E].risk.entries] == ["sampling_failed"]


def test_a_passing_result_beyond_the_control_limits_still_alerts(rules):
    high = chlorine(12, 0.04, "S-HIGH")  # within the legal limit, far above its own history: the chart's to say
    state, effects = replay([REG, *[chlorine(m + 1, v, f"S{m}") for m, v in enumerate(BASELINE)], high], rules)
    assert [e.data["rule"] for e in _of(effects, high) if e.kind == "warning.raised"] == ["fluctuation.signal"]
    assert [x[1] for x in state.files[E].risk.entries] == ["fluctuation_signal"]


def _corrected(event, value: float, at: str):
    """The lab's corrected report of ``event``'s sample (a new event id, the same sample number)."""
    doc = event.model_dump(mode="json", exclude_unset=True)
    doc["event_id"], doc["occurred_at"] = str(uuid.uuid4()), at
    doc["payload"]["items"][1]["values"] = [value]
    doc["payload"]["remarks"] = "更正：原报告余氯小数点录入错误"
    return parse_event(doc)


def test_a_corrected_value_takes_its_signal_alert_and_points_with_it(rules):
    """余氯 0.04 (a typo for 0.011) signalled 质量波动 and scored +2; the lab's correction rebuilt the series, yet the
    alert stayed 待处置 and the points stayed in the grade.  Those only the replaced report raised go with it."""
    from processors.warnings import ALERT_KIND, RESOLVED_KIND

    high = chlorine(12, 0.04, "S-HIGH")
    state, effects = replay([REG, *[chlorine(m + 1, v, f"S{m}") for m, v in enumerate(BASELINE)], high], rules)
    (raised,) = [e.data for e in _of(effects, high) if e.kind == ALERT_KIND]
    assert [x[1] for x in state.files[E].risk.entries] == ["fluctuation_signal"]
    fixed = _corrected(high, 0.011, "2025-12-09T10:00:00+08:00")
    from processors.step import step

    state, effects = step(state, fixed, rules)
    (closed,) = [e.data for e in effects if e.kind == RESOLVED_KIND]
    assert closed["dedup_key"] == raised["dedup_key"] and "已更正" in closed["note_zh"] and closed["evidence"]["corrected"] is True
    assert not [e for e in effects if e.kind == ALERT_KIND and e.data["rule"] == "fluctuation.signal"]
    assert state.files[E].risk.entries == []
    # corrected to a value that still lies out: it signals in its own right, and its alert stands
    state, _ = replay([REG, *[chlorine(m + 1, v, f"S{m}") for m, v in enumerate(BASELINE)], high], rules)
    state, effects = step(state, _corrected(high, 0.045, "2025-12-09T10:00:00+08:00"), rules)
    assert not [e for e in effects if e.kind == RESOLVED_KIND and e.data["rule"] == "fluctuation.signal"]
    assert [x[1] for x in state.files[E].risk.entries] == ["fluctuation_signal"]


def test_one_average_is_said_once(rules):
    """The EWMA over its control limit and near the legal limit read 近几批的加权平均值 0.1127mg/L，持续偏高；近几批的加权
    平均值 0.1127mg/L 已达标准限值…: one average, said once, a space before its unit."""
    bad = chlorine(12, 0.5, "S-BAD")
    _, effects = replay([REG, *[chlorine(m + 1, v, f"S{m}") for m, v in enumerate(BASELINE)], bad], rules)
    (signal,) = [e.data for e in _of(effects, bad) if e.kind == "fluctuation.signal"]
    assert {"ewma", "ewma_near_limit"} <= {s["rule"] for s in signal["signals"]}
    text = signal["text_zh"]
    # (one result beyond the limits dragged the average over: said so, not 持续偏高)
    assert text.count("加权平均值") == 1 and "受本批拉高，超出其控制上限 " in text and "，已达标准限值 0.05 mg/L 的" in text
    assert "本批 0.5 mg/L" in text and "持续偏高" not in text


def test_a_labs_failure_under_an_unregistered_enterprise_alerts_and_hands_over_once_judged(rules):
    """A lab's 不合格 posted under a mistyped enterprise id (W99 for W09) waited for a registration that never
    comes, and reached nobody.  It alerts as the lab's failure qrisk cannot judge yet, saying why; registered
    later and judged, that alert hands over to the judgement's own."""
    from processors.step import step
    from processors.warnings import ALERT_KIND, RESOLVED_KIND

    doc = golden("sampling.result")
    doc.update(event_id=str(uuid.uuid4()), enterprise_id=E)
    state, effects = replay([parse_event(doc)], rules)
    (raised,) = [e.data for e in effects if e.kind == ALERT_KIND]
    assert raised["rule"] == "judgement.lab_failed_unjudged" and raised["severity"] == "high"
    assert f"企业 {E} 尚未登记" in raised["message_zh"] and "请核对企业编号是否填错" in raised["message_zh"]
    assert raised["evidence"]["items"][0]["item_code"] == "pseudomonas_aeruginosa"
    state, effects = step(state, REG, rules)
    (closed,) = [e.data for e in effects if e.kind == RESOLVED_KIND and e.data["rule"] == "judgement.lab_failed_unjudged"]
    assert closed["dedup_key"] == raised["dedup_key"] and "已按标准判定（结论：不合格）" in closed["note_zh"]
    assert "sampling.unqualified" in [e.data["rule"] for e in effects if e.kind == ALERT_KIND]
    # a sample the lab passed, unregistered: waits quietly, as before
    ok = golden("sampling.result")
    ok.update(event_id=str(uuid.uuid4()), enterprise_id="E-NEW")
    ok["payload"]["items"][0]["values"], ok["payload"]["items"][0]["lab_verdict"] = [0, 0, 0, 0, 0], "合格"
    _, effects = replay([parse_event(ok)], rules)
    assert not [e for e in effects if e.kind == ALERT_KIND]
