"""A failure qrisk finds too weighs and alerts on every item the sample counts as failing on, the lab's among them.

A sample counts 不合格 on the items qrisk fails and on those the lab failed that qrisk passes or finds not applicable
(SampleJudgement.counted_failed_codes).  Where qrisk failed another item too, three places still read qrisk's items
alone: the grade weighed the failure by them (the lab's 铜绿假单胞菌 beside qrisk's 电导率 weighed as a quality index,
4 points, not a pathogen's 15); the 抽检不合格 alert named them only (and no judgement.lab_failed_passed alert is raised
when qrisk fails the sample, so the lab's item was in no failure alert), its severity by them; and a re-test merged
with the first test's items, gaining the lab's 余氯 qrisk passes, was the same failure to the Paretos and the alert,
so the order in which the re-test and its first test arrived decided what the sample failed on."""
from __future__ import annotations

from processors.step import replay
from tests.test_lab_failed_passed import CHLORINE_AT_LIMIT, LEAD_OVER, PA, PH, RETEST_LAB, _county, decisions, of, sample
from tests.test_risk import E, ev, registered

PURIFIED = "饮用纯净水"  # (GB 17323's conductivity applies to it)
CONDUCTIVITY_OVER = {"item_code": "conductivity", "item_name": "电导率", "values": [25], "unit": "µS/cm", "lab_verdict": "不合格"}
PA_ZH, CONDUCTIVITY_ZH = "铜绿假单胞菌", "电导率（25℃）"


def _failed_entry(state):
    [entry] = [e for e in state.files[E].risk.entries if e[1] == "sampling_failed"]
    return entry


def test_the_grade_weighs_the_labs_microbial_failure_beside_qrisks_physical_one(rules):
    # the lab failed 铜绿假单胞菌 that qrisk reads as within the plan (0 of 5 over m); qrisk fails 电导率 with the lab
    state, _ = replay([registered(), sample([PA, CONDUCTIVITY_OVER], "CG-1", product=PURIFIED)], rules)
    j = state.files[E].samples[0].judgement
    assert (j.verdict, j.counted, j.counted_failed_codes()) == ("fail", "fail", ["conductivity", "pseudomonas_aeruginosa"])
    by_class = rules.policy.risk.dynamic.sampling_failed.by_class
    assert _failed_entry(state)[2] == by_class["pathogen"] == 15.0  # not the quality index's 4
    # qrisk's own item alone weighs as before
    alone, _ = replay([registered(), sample([{**PA, "lab_verdict": "合格"}, CONDUCTIVITY_OVER], "CG-1", product=PURIFIED)], rules)
    assert _failed_entry(alone)[2] == by_class["quality_index"]
    assert state.files[E].risk.score > alone.files[E].risk.score


def test_the_failure_alert_names_the_labs_item_and_takes_its_severity(rules):
    state, effects = replay([registered(), sample([PA, CONDUCTIVITY_OVER], "CG-2", product=PURIFIED)], rules)
    [failed] = of(effects, "sampling.failed")
    assert failed.data["failed_items"] == ["conductivity", "pseudomonas_aeruginosa"]
    said = "；".join(failed.data["messages_zh"])
    assert f"检验机构判定{PA_ZH}不合格，系统复核为合格（" in said and "n=5,c=0,m=0" in said and "GB 19298-2014" in said
    assert not of(effects)  # qrisk fails the sample: no judgement.lab_failed_passed alert beside the failure's

    [alert] = decisions(effects, "sampling.unqualified")
    assert alert.severity == "critical"  # a pathogen's, not the quality index's medium
    m = alert.message_zh
    assert f"不合格项目：{CONDUCTIVITY_ZH}、{PA_ZH}。" in m
    assert f"检验机构判定{PA_ZH}不合格，系统复核为合格（" in m and "0;0;0;0;0 CFU/250mL" in m and "以检验机构结论为准" in m
    assert f"不合格项目“{PA_ZH}”为微生物指标，依法不予复检" in m  # the lab's microbial 不合格 admits no re-test
    ev_ = alert.evidence
    assert ev_["failed_items"] == ["conductivity", "pseudomonas_aeruginosa"] and ev_["item_class"] == "pathogen"
    lab = next(f for f in ev_["failed"] if f["item_code"] == "pseudomonas_aeruginosa")
    assert (lab["item_class"], lab["lab_verdict"], lab["verdict"], lab["standard"]) == ("pathogen", "fail", "pass", "GB 19298-2014")
    assert lab["limit"] and lab["values"] == [0, 0, 0, 0, 0]


def test_a_value_at_the_limit_and_an_item_out_of_scope_are_named_with_qrisks_reading(rules):
    # the brief's case: the lab failed 余氯 at 0.05 mg/L (qrisk passes it against ≤ 0.05) beside lead qrisk fails too
    _, effects = replay([registered(), sample([CHLORINE_AT_LIMIT, LEAD_OVER], "CG-3")], rules)
    [alert] = decisions(effects, "sampling.unqualified")
    m = alert.message_zh
    assert "不合格项目：铅（以Pb计）、余氯（游离氯）。" in m
    assert "检验机构判定余氯（游离氯）不合格，系统复核为合格（" in m and "0.05 mg/L" in m and "≤0.05" in m
    assert alert.evidence["failed_items"] == ["lead", "free_chlorine"] and alert.severity == "high"
    # pH of a 纯净饮用水 the scope fragments miss (not applicable to qrisk): said so
    _, effects = replay([registered(), sample([PH, LEAD_OVER], "CG-4", product="纯净饮用水")], rules)
    [alert] = decisions(effects, "sampling.unqualified")
    assert "检验机构判定pH值不合格，系统复核为不适用（" in alert.message_zh
    assert alert.evidence["failed_items"] == ["lead", "ph"]


def test_the_failure_effects_own_message_names_the_labs_item(rules):
    from alerts.messages import message_zh

    _, effects = replay([registered(), sample([CHLORINE_AT_LIMIT, LEAD_OVER], "CG-5")], rules)
    [failed] = of(effects, "sampling.failed")
    assert "检验机构判定余氯（游离氯）不合格，系统复核为合格（" in message_zh(failed)


def test_a_retest_merged_with_the_labs_item_fails_on_it_whichever_arrives_first(rules_listing_retest_lab):
    # qrisk and the lab fail lead; the lab fails 余氯 at its limit too (qrisk passes it).  The re-test covers lead only
    # and fails it again: the sample fails on lead and, from the first test, the lab's 余氯 — in either order
    original = sample([CHLORINE_AT_LIMIT, LEAD_OVER], "CG-6")
    retest = ev("sampling.result", "2026-03-20T10:00:00+08:00", sample_no="CG-6", retest=True, lab=RETEST_LAB, items=[LEAD_OVER])

    def run(events):
        state, effects = replay([registered(), *events], rules_listing_retest_lab)
        c = _county(rules_listing_retest_lab)
        c.feed(*events)
        [alert] = [a for a in c.book.alerts.values() if a.rule == "sampling.unqualified"]
        return (state.files[E].fluctuation.failing_items, state.categories["packaged_water"].failing_items,
                decisions(effects, "sampling.unqualified")[-1].evidence["failed_items"],
                alert.message_zh + "".join(s.note for s in alert.steps))

    after, before = run([original, retest]), run([retest, original])
    assert after[0] == before[0] == {"lead": 1, "free_chlorine": 1}
    assert after[1] == before[1]
    # the original arriving after its re-test is the sample's failure on more items: noted on the alert (its
    # decision confirms the re-test's, so the alert the supervisor has carries on), naming the lab's 余氯
    assert after[2] == before[2] == ["lead", "free_chlorine"]
    assert "检验机构判定余氯（游离氯）不合格" in after[3] and "检验机构判定余氯（游离氯）不合格" in before[3]


def test_a_correction_under_the_retest_bringing_the_labs_item_is_said_on_the_failure(rules_listing_retest_lab):
    # re-tested on lead only (fails again); the first test's 余氯 at its limit the lab passed, then corrected to 不合格:
    # the sample fails on lead and the lab's 余氯 — the failure's alert says so (before, the same qrisk items: nothing)
    passed = {**CHLORINE_AT_LIMIT, "lab_verdict": "合格"}
    retest = ev("sampling.result", "2026-03-20T10:00:00+08:00", sample_no="CG-7", retest=True, lab=RETEST_LAB, items=[LEAD_OVER])
    correction = ev("sampling.result", "2026-03-22T10:00:00+08:00", items=[CHLORINE_AT_LIMIT, LEAD_OVER], sample_no="CG-7")
    c = _county(rules_listing_retest_lab)
    c.feed(sample([passed, LEAD_OVER], "CG-7"), retest)
    [alert] = [a for a in c.book.alerts.values() if a.rule == "sampling.unqualified"]
    c.feed(correction)
    # (the alert takes the corrected evidence; its step says what the correction changed: 报告更正)
    assert "检验机构判定余氯（游离氯）不合格" in alert.message_zh and alert.state == "open" and alert.occurrences == 1
    assert alert.steps[-1].note.startswith("报告更正：") and "余氯（游离氯）的检验机构判定由合格改为不合格" in alert.steps[-1].note
    assert [f["item_code"] for f in alert.evidence["failed"]] == ["lead", "free_chlorine"]
    state, effects = replay([registered(), sample([passed, LEAD_OVER], "CG-7"), retest, correction], rules_listing_retest_lab)
    assert [e.data["failed_items"] for e in of(effects, "sampling.failed")][-1] == ["lead", "free_chlorine"]
    assert state.files[E].fluctuation.failing_items == {"lead": 1, "free_chlorine": 1}


def test_a_retest_is_not_admitted_when_the_lab_failed_a_microbial_item_beside_qrisks_physical_one(rules_listing_retest_lab):
    # the alert says 依法不予复检 for the lab's 铜绿假单胞菌; the re-test it names must be refused the same way
    original = sample([PA, CONDUCTIVITY_OVER], "CG-9", product=PURIFIED)
    retest = ev("sampling.result", "2026-03-20T10:00:00+08:00", sample_no="CG-9", retest=True, lab=RETEST_LAB, product=PURIFIED,
                items=[{**CONDUCTIVITY_OVER, "values": [5], "lab_verdict": "合格"}])
    state, effects = replay([registered(), original, retest], rules_listing_retest_lab)
    [refused] = of(effects, "sampling.retest_inadmissible")
    assert refused.data["reason"] == "microbial" and "pseudomonas_aeruginosa" in refused.data["items"]
    assert not of(effects, "sampling.overturned")
    assert [s.event_id for s in state.files[E].final_samples()] == [str(original.event_id)]
