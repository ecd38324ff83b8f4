"""A lab's 不合格 on an item qrisk judges 合格 or not applicable (judgement.lab_failed_passed).

A standards expert's review found that when the lab failed an item qrisk passes — free chlorine at 0.05 mg/L, the
limit itself (the lab rounded), pH of a 纯净饮用水 whose name the scope fragments miss (not_applicable), water's total
plate count that GB 19298-2014 no longer limits — the sample counted 合格 (counts, pass rate, grading, KPIs) and only
a low disagreement alert was raised.  What counts is the report's conclusion: the lab issued 不合格, so the sample
counts 不合格 and the lab's failure alerts high, qrisk's figure beside it (the mirror of ``unconfirmed``)."""
from __future__ import annotations

from processors.step import replay, step
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


# --------------------------------------------------------------------------- the report's conclusion through re-tests and corrections
# (a review of the merge: places that tested qrisk's verdict where they meant the conclusion the sample counts with)

PA = {"item_code": "pseudomonas_aeruginosa", "item_name": "铜绿假单胞菌", "values": [0, 0, 0, 0, 0], "unit": "CFU/250mL",
      "lab_verdict": "不合格"}
LEAD_OVER = {**LEAD, "values": [0.05], "lab_verdict": "不合格"}


def _county(rules):
    from tests.test_alerts import County, policy

    c = County(rules, policy())
    c.feed(registered())
    return c


def _alerts_of(c, no: str) -> dict[str, str]:
    """The sample's alerts: rule -> state (one alert per rule and sample here)."""
    return {a.rule: a.state for a in c.book.alerts.values() if a.dedup_key.endswith(f":{no}")}


def _open(c, no: str) -> list[str]:
    return sorted(r for r, s in _alerts_of(c, no).items() if s not in ("closed", "verified"))


def test_a_retest_arriving_before_the_original_it_does_not_overturn_leaves_the_labs_failure_as_after(rules_listing_retest_lab):
    # the lab failed 铜绿假单胞菌 that qrisk reads as within the plan; the re-test (microbial: not admitted) came first
    original = sample([PA], "LP-20")
    retest = ev("sampling.result", "2026-03-20T10:00:00+08:00", sample_no="LP-20", retest=True, lab=RETEST_LAB,
                items=[{**PA, "lab_verdict": "合格"}])

    def run(order):
        c = _county(rules_listing_retest_lab)
        effects = []
        for e in ([original, retest] if order == "original first" else [retest, original]):
            c.state, eff = step(c.state, e, c.rules)
            c.book.apply(e, eff, c.rules.policy, c.info)
            effects += eff
        f = c.state.files[E]
        counts = (f.counts.samples, f.counts.samples_passed, f.counts.samples_failed)
        risk = [(e[1], e[2], e[3], e[4]) for e in f.risk.entries if e[1] == "sampling_failed"]
        return counts, risk, _open(c, "LP-20"), f.fluctuation.failing_items, [e.kind for e in effects if e.kind == KIND]

    after, before = run("original first"), run("re-test first")
    assert after[0] == before[0] == (1, 0, 1)
    assert after[1] == before[1] == [("sampling_failed", 15.0, str(original.event_id), "LP-20")]  # microbial weight, the original's
    assert after[2] == before[2] and KIND in before[2]
    assert after[3] == before[3] == {"pseudomonas_aeruginosa": 1}
    assert before[4] == [KIND]


def test_a_correction_clearing_qrisks_failure_while_the_lab_fails_an_item_qrisk_passes_keeps_the_failure_and_its_alert(rules):
    from tests.test_alerts import act

    c = _county(rules)
    c.feed(sample([CHLORINE_AT_LIMIT, LEAD_OVER], "LP-21"))
    [alert] = [a for a in c.book.alerts.values() if a.rule == "sampling.unqualified"]
    c.feed(act(alert.alert_id, "acknowledge", "2026-03-13T09:00:00+08:00", note="已控制在售产品"))
    corrected = ev("sampling.result", "2026-03-14T10:00:00+08:00", items=[CHLORINE_AT_LIMIT, LEAD], sample_no="LP-21")
    changes = c.feed(corrected)
    file = c.state.files[E]
    current = file.sample_by_event(str(corrected.event_id)).judgement
    assert (current.verdict, current.counted) == ("pass", "fail")
    assert (file.counts.samples_passed, file.counts.samples_failed) == (0, 1)
    # no overturn: the report's 不合格 stands (its risk entry now rests on the corrected report, by what the lab failed)
    assert not [w for w in file.warnings if w.rule == KIND]
    [entry] = [e for e in file.risk.entries if e[1] == "sampling_failed"]
    assert entry[3] == str(corrected.event_id)
    # the alert the supervisor acknowledged carries on, saying why the sample still fails; no second alert opens
    assert _open(c, "LP-21") == ["sampling.unqualified"]  # (the lab's 余氯 is on it: no low disagreement beside it)
    assert alert.state == "acknowledged" and [s.action for s in alert.steps][:2] == ["opened", "acknowledge"]
    assert "更正" in alert.steps[-1].note and "检验机构判定的不合格仍在" in alert.steps[-1].note
    assert "余氯" in alert.message_zh and [f["item_code"] for f in alert.evidence["failed"]] == ["free_chlorine"]
    assert not [ch for ch in changes if ch.alert.rule == KIND]


def test_the_correction_says_the_conclusion_stands_and_raises_no_overturn(rules):
    corrected = ev("sampling.result", "2026-03-14T10:00:00+08:00", items=[CHLORINE_AT_LIMIT, LEAD], sample_no="LP-22")
    _, effects = replay([registered(), sample([CHLORINE_AT_LIMIT, LEAD_OVER], "LP-22"), corrected], rules)
    assert not of(effects, "sampling.overturned")
    [said] = of(effects, "sampling.corrected")
    assert "结论仍为不合格（系统复核由不合格改为合格）" in said.data["message_zh"]
    [carried] = [d for d in decisions(effects, "sampling.unqualified") if d.event_id == str(corrected.event_id)]
    assert carried.dedup_key == f"{E}:sampling.failed:LP-22" and carried.severity == "high"


def test_a_correction_making_qrisk_fail_a_sample_the_lab_failed_hands_the_labs_alert_over(rules):
    c = _county(rules)
    c.feed(sample([CHLORINE_AT_LIMIT, LEAD], "LP-23"))
    assert _open(c, "LP-23") == [KIND]
    c.feed(ev("sampling.result", "2026-03-14T10:00:00+08:00", items=[CHLORINE_AT_LIMIT, LEAD_OVER], sample_no="LP-23"))
    assert _open(c, "LP-23") == ["sampling.unqualified"]  # one sample, one failure, one alert
    [lab] = [a for a in c.book.alerts.values() if a.rule == KIND]
    assert "由该样品的“抽检不合格”预警接续处置" in lab.steps[-1].note
    assert c.state.files[E].counts.samples_failed == 1


def test_a_failing_retest_of_the_labs_failure_confirms_it_on_one_alert(rules_listing_retest_lab):
    c = _county(rules_listing_retest_lab)
    c.feed(sample([CHLORINE_AT_LIMIT, LEAD], "LP-24"))
    retest = ev("sampling.result", "2026-03-20T10:00:00+08:00", sample_no="LP-24", retest=True, lab=RETEST_LAB,
                items=[{**CHLORINE_AT_LIMIT, "values": [0.09]}, LEAD])
    state, effects = replay([registered(), sample([CHLORINE_AT_LIMIT, LEAD], "LP-24"), retest], rules_listing_retest_lab)
    [failed] = of(effects, "sampling.failed")
    assert failed.data["confirms_event_id"] == state.files[E].samples[0].event_id
    c.feed(retest)
    assert _open(c, "LP-24") == ["sampling.unqualified"]
    assert state.files[E].counts.samples_failed == 1
    assert len([e for e in state.files[E].risk.entries if e[1] == "sampling_failed"]) == 1


def test_a_retest_whose_lab_fails_an_item_qrisk_passes_upholds_the_failure_on_its_alert(rules_listing_retest_lab):
    # qrisk and the lab failed lead; the re-test passes lead and its lab fails chlorine at the limit: still 不合格
    c = _county(rules_listing_retest_lab)
    c.feed(sample([CHLORINE_AT_LIMIT, LEAD_OVER], "LP-25"))
    [alert] = [a for a in c.book.alerts.values() if a.rule == "sampling.unqualified"]
    retest = ev("sampling.result", "2026-03-20T10:00:00+08:00", sample_no="LP-25", retest=True, lab=RETEST_LAB,
                items=[CHLORINE_AT_LIMIT, LEAD])
    c.feed(retest)
    file = c.state.files[E]
    assert (file.counts.samples_passed, file.counts.samples_failed) == (0, 1)
    assert [e for e in file.risk.entries if e[1] == "sampling_failed"]
    assert _open(c, "LP-25") == ["sampling.unqualified"] and alert.state == "open"
    [upheld] = [s for s in alert.steps if "复检结论仍为不合格" in s.note]
    assert upheld.action == "comment" and upheld.event_id == str(retest.event_id)
    _, effects = replay([registered(), sample([CHLORINE_AT_LIMIT, LEAD_OVER], "LP-25"), retest], rules_listing_retest_lab)
    assert not of(effects, "sampling.overturned")


def test_an_original_corrected_under_its_retest_keeps_the_labs_failure(rules_listing_retest_lab):
    # re-tested on lead only (passes); chlorine over the limit, not re-tested, kept it 不合格; the original's
    # correction brings chlorine to the limit the lab still fails: qrisk passes the sample, its conclusion stays 不合格
    chlorine_over = {**CHLORINE_AT_LIMIT, "values": [0.08]}
    c = _county(rules_listing_retest_lab)
    c.feed(sample([chlorine_over, LEAD_OVER], "LP-26"))
    c.feed(ev("sampling.result", "2026-03-20T10:00:00+08:00", sample_no="LP-26", retest=True, lab=RETEST_LAB, items=[LEAD]))
    [alert] = [a for a in c.book.alerts.values() if a.rule == "sampling.unqualified"]
    correction = ev("sampling.result", "2026-03-22T10:00:00+08:00", items=[CHLORINE_AT_LIMIT, LEAD_OVER], sample_no="LP-26")
    changes = c.feed(correction)
    file = c.state.files[E]
    assert file.counts.samples_failed == 1
    assert [e for e in file.risk.entries if e[1] == "sampling_failed"]
    assert alert.state not in ("closed", "verified")
    assert KIND not in _open(c, "LP-26")
    assert not [ch for ch in changes if ch.step.action == "close" and ch.alert is alert]


def test_an_item_the_lab_failed_before_makes_a_later_failure_of_it_a_repeat(rules):
    """屡次不合格 read the earlier samples' failures as qrisk judged them: 余氯 the lab failed at its limit (counted 不合格)
    and qrisk failing it over the limit two months later was a first failure, its alert not raised a level."""
    over = {**CHLORINE_AT_LIMIT, "values": [0.12]}
    _, effects = replay([registered(), sample([CHLORINE_AT_LIMIT, LEAD], "LP-1"),
                         ev("sampling.result", "2026-05-12T15:20:00+08:00", items=[over, LEAD], sample_no="LP-2", sampled_on="2026-05-10")], rules)
    [failure] = decisions(effects, "sampling.unqualified")
    assert "同一项目第 2 次抽检不合格" in failure.message_zh and "抽样编号 LP-1" in failure.message_zh
    assert "属屡次不合格" in failure.message_zh
