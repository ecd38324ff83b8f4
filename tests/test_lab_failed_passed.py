"""A lab's 不合格 on an item qrisk judges 合格 or not applicable (judgement.lab_failed_passed).

A standards expert's review found that when the lab failed an item qrisk passes — free chlorine at 0.05 mg/L, the
limit itself (the lab rounded), pH of a 纯净饮用水 whose name the scope fragments miss (not_applicable), water's total
plate count that GB 19298-2014 no longer limits — the sample counted 合格 (counts, pass rate, grading, KPIs) and only
a low disagreement alert was raised.  What counts is the report's conclusion: the lab issued 不合格, so the sample
counts 不合格 and the lab's failure alerts high, qrisk's figure beside it (the mirror of ``unconfirmed``)."""
from __future__ import annotations

from processors.step import replay
from processors.warnings import ALERT_KIND, AlertDecision
from tests.test_risk import E, ev, registered

KIND = "judgement.lab_failed_passed"
AT = "2026-03-12T15:20:00+08:00"

CHLORINE_AT_LIMIT = {"item_code": "free_chlorine", "item_name": "余氯(游离氯)", "values": [0.05], "unit": "mg/L",
                     "standard_ref": "GB 19298-2014", "lab_verdict": "不合格"}
LEAD = {"item_code": "lead", "item_name": "铅", "values": [0.002], "unit": "mg/L", "lab_verdict": "合格"}
PH = {"item_code": "ph", "item_name": "pH", "values": [4.5], "unit": "pH", "lab_verdict": "不合格"}
WATER_PLATE_COUNT = {"item_code": "aerobic_plate_count", "item_name": "菌落总数", "values": [120], "unit": "CFU/mL",
                     "lab_verdict": "不合格"}


def of(effects, kind: str = KIND):
    return [e for e in effects if e.kind == kind]


def decisions(effects, rule: str) -> list[AlertDecision]:
    return [d for d in (AlertDecision.model_validate(e.data) for e in effects if e.kind == ALERT_KIND) if d.rule == rule]


def sample(items, sample_no: str, **payload):
    return ev("sampling.result", AT, items=items, sample_no=sample_no, **payload)


def test_a_value_at_the_limit_the_lab_fails_counts_as_the_reports_failure_and_alerts_high(rules):
    state, effects = replay([registered(), sample([CHLORINE_AT_LIMIT, LEAD], "LP-1")], rules)
    file = state.files[E]
    j = file.samples[0].judgement
    assert j.verdict == "pass" and j.counted == "fail"  # qrisk's figure kept, the report's conclusion counted
    assert [i.item_code for i in j.lab_failures_passed()] == ["free_chlorine"]
    c = file.counts
    assert (c.samples, c.samples_passed, c.samples_failed, c.samples_undetermined, c.samples_unconfirmed) == (1, 0, 1, 0, 0)
    assert file.pass_rate == 0

    [eff] = of(effects)
    [item] = eff.data["items"]
    assert (item["item_code"], item["values"], item["unit"], item["verdict"], item["lab_verdict"]) == (
        "free_chlorine", [0.05], "mg/L", "pass", "fail")
    [alert] = decisions(effects, KIND)
    assert alert.severity == "high" and alert.title_zh == "检验机构判定不合格、系统复核为合格或不适用"
    assert alert.dedup_key == f"{E}:{KIND}:LP-1"
    m = alert.message_zh
    assert "判定余氯（游离氯）不合格，系统复核为合格（" in m
    assert "0.05 mg/L" in m and "≤0.05" in m and "GB 19298-2014" in m  # value, limit, standard
    assert "按检验机构结论计为不合格" in m and "按检验机构不合格结论启动核查处置" in m
    # one finding, one alert: no low disagreement beside it
    assert not decisions(effects, "judgement.disagrees")
    assert not decisions(effects, "sampling.unqualified")  # qrisk does not fail it: the lab's failure alerts


def test_an_item_out_of_scope_by_the_products_name_the_lab_fails_counts_as_a_failure(rules):
    # 纯净饮用水: neither 纯净水 nor 纯水 in its name, so GB 17323's pH is out of scope for qrisk
    state, effects = replay([registered(), sample([PH, LEAD], "LP-2", product="纯净饮用水")], rules)
    file = state.files[E]
    j = file.samples[0].judgement
    [ph] = [i for i in j.items if i.item_code == "ph"]
    assert (ph.verdict, ph.reason) == ("not_applicable", "out_of_scope")
    assert j.counted == "fail" and (file.counts.samples_passed, file.counts.samples_failed) == (0, 1)
    [alert] = decisions(effects, KIND)
    assert "系统复核为不适用（" in alert.message_zh
    assert not decisions(effects, "judgement.disagrees")


def test_an_item_the_standard_no_longer_limits_the_lab_fails_counts_as_a_failure(rules):
    state, effects = replay([registered(), sample([WATER_PLATE_COUNT, LEAD], "LP-3")], rules)
    file = state.files[E]
    [apc] = [i for i in file.samples[0].judgement.items if i.item_code == "aerobic_plate_count"]
    assert (apc.verdict, apc.reason) == ("not_applicable", "no_longer_limited")
    assert file.counts.samples_failed == 1 and file.counts.samples_passed == 0
    [alert] = decisions(effects, KIND)
    assert "菌落总数" in alert.message_zh and "系统复核为不适用" in alert.message_zh


def test_a_sample_with_only_such_an_item_counts_as_the_reports_failure_not_undetermined(rules):
    state, effects = replay([registered(), sample([PH], "LP-4", product="纯净饮用水")], rules)
    file = state.files[E]
    assert file.samples[0].judgement.verdict == "undetermined"
    assert (file.counts.samples_failed, file.counts.samples_undetermined) == (1, 0)
    assert len(decisions(effects, KIND)) == 1 and not decisions(effects, "judgement.lab_failed_unjudged")


def test_the_failure_counts_in_grading_and_the_charts(rules):
    failing, _ = replay([registered(), sample([CHLORINE_AT_LIMIT, LEAD], "LP-5")], rules)
    passing, _ = replay([registered(), sample([{**CHLORINE_AT_LIMIT, "lab_verdict": "合格"}, LEAD], "LP-5")], rules)
    assert failing.files[E].risk.score > passing.files[E].risk.score
    assert passing.files[E].counts.samples_passed == 1


def test_a_lab_pass_or_a_failure_qrisk_shares_raises_no_such_alert(rules):
    _, effects = replay([registered(), sample([{**CHLORINE_AT_LIMIT, "lab_verdict": "合格"}, LEAD], "LP-6")], rules)
    assert not of(effects) and not decisions(effects, KIND)
    over = {**CHLORINE_AT_LIMIT, "values": [0.08]}
    state, effects = replay([registered(), sample([over, LEAD], "LP-7")], rules)
    assert not of(effects) and len(decisions(effects, "sampling.unqualified")) == 1
    assert state.files[E].counts.samples_failed == 1


def test_a_retraction_closes_the_alert(rules):
    retract = ev("sampling.retracted", "2026-03-20T09:00:00+08:00", sample_no="LP-8", reason="报告错发")
    state, effects = replay([registered(), sample([CHLORINE_AT_LIMIT, LEAD], "LP-8"), retract], rules)
    assert state.files[E].counts.samples_failed == 0
    resolved = [e for e in effects if e.kind == "warning.resolved" and e.data.get("rule") == KIND]
    assert len(resolved) == 1


def test_the_credit_reports_row_says_the_reports_failure_and_names_the_item(rules):
    from qrisk.credit_report import sample_row

    state, _ = replay([registered(), sample([CHLORINE_AT_LIMIT, LEAD], "LP-9")], rules)
    row = sample_row(state.files[E].samples[0])
    assert row["verdict_zh"].startswith("不合格（检验报告结论；系统复核为合格或不适用") and row["failed_zh"] == "余氯（游离氯）"


def test_the_paretos_count_the_item_the_lab_failed(rules):
    state, _ = replay([registered(), sample([CHLORINE_AT_LIMIT, LEAD], "LP-10")], rules)
    assert state.files[E].fluctuation.failing_items == {"free_chlorine": 1}
    assert state.categories["packaged_water"].failing_items == {"free_chlorine": 1}


RETEST_LAB = "市食品药品检验研究院"


def test_a_passing_retest_overturns_the_reports_failure_and_closes_its_alert(rules_listing_retest_lab):
    retest = ev("sampling.result", "2026-03-20T10:00:00+08:00", sample_no="LP-11", retest=True, lab=RETEST_LAB,
                items=[{**CHLORINE_AT_LIMIT, "values": [0.03], "lab_verdict": "合格"}, LEAD])
    state, effects = replay([registered(), sample([CHLORINE_AT_LIMIT, LEAD], "LP-11"), retest], rules_listing_retest_lab)
    file = state.files[E]
    assert (file.counts.samples, file.counts.samples_passed, file.counts.samples_failed) == (1, 1, 0)
    assert [e for e in effects if e.kind == "sampling.overturned"]
    assert not [e for e in file.risk.entries if e[1] == "sampling_failed"]
    assert [e for e in effects if e.kind == "warning.resolved" and e.data.get("rule") == KIND]


def test_a_correction_that_passes_the_item_overturns_the_reports_failure(rules):
    corrected = ev("sampling.result", "2026-03-14T10:00:00+08:00", sample_no="LP-12",
                   items=[{**CHLORINE_AT_LIMIT, "lab_verdict": "合格"}, LEAD])
    state, effects = replay([registered(), sample([CHLORINE_AT_LIMIT, LEAD], "LP-12"), corrected], rules)
    file = state.files[E]
    assert (file.counts.samples, file.counts.samples_passed, file.counts.samples_failed) == (1, 1, 0)
    assert not [e for e in file.risk.entries if e[1] == "sampling_failed"]
    assert [e for e in effects if e.kind == "warning.resolved" and e.data.get("rule") == KIND]


def test_a_retest_of_the_labs_microbial_failure_is_not_admitted(rules_listing_retest_lab):
    # the lab failed 铜绿假单胞菌 that qrisk reads as within the plan: a microbial 不合格 admits no re-test all the same
    pa = {"item_code": "pseudomonas_aeruginosa", "item_name": "铜绿假单胞菌", "values": [0, 0, 0, 0, 0], "unit": "CFU/250mL",
          "lab_verdict": "不合格"}
    retest = ev("sampling.result", "2026-03-20T10:00:00+08:00", sample_no="LP-13", retest=True, lab=RETEST_LAB,
                items=[{**pa, "lab_verdict": "合格"}])
    state, effects = replay([registered(), sample([pa], "LP-13"), retest], rules_listing_retest_lab)
    assert [e.data.get("reason") for e in effects if e.kind == "sampling.retest_inadmissible"] == ["microbial"]
    assert state.files[E].counts.samples_failed == 1
