"""A lab's 不合格 on an item qrisk cannot judge (judgement.lab_failed_unjudged).

A food-safety regulator's review found that when the lab failed an item qrisk cannot judge — an unknown item
code, a unit that does not convert, a product whose standard the catalogue lacks (饮用天然矿泉水, GB 8537-2018),
an undated sample whose edition is uncertain — the sample was only counted undetermined: no alert, nobody
told.  Under 《食品安全抽样检验管理办法》 the lab's 不合格 conclusion starts the follow-up (核查处置) whether or
not a system can judge it again.  The sample stays undetermined (counts and pass rate unchanged)."""
from __future__ import annotations

from processors.step import Rules, replay
from processors.warnings import ALERT_KIND, AlertDecision
from schemas.policy import Policy
from tests.test_risk import E, ev, registered

KIND = "judgement.lab_failed_unjudged"
RULE = "judgement.lab_failed_unjudged"
AT = "2026-03-12T15:20:00+08:00"

# the regulator's case: a natural mineral water (GB 8537-2018, not catalogued) failed by the lab on 铜绿假单胞菌
MINERAL_PA = {"item_code": "pseudomonas_aeruginosa", "item_name": "铜绿假单胞菌", "values": [0, 12, 3, 0, 0], "unit": "CFU/250mL",
              "standard_ref": "GB 8537-2018", "lab_verdict": "不合格"}
UNKNOWN = {"item_code": "no_such_item", "item_name": "某未收录项目", "values": [3.0], "unit": "mg/L", "lab_verdict": "不合格"}
# 溴酸盐 in a unit that does not convert to mg/L
BAD_UNIT = {"item_code": "bromate", "item_name": "溴酸盐", "values": [0.02], "unit": "CFU/mL", "lab_verdict": "不合格"}


def of(effects, kind: str = KIND):
    return [e for e in effects if e.kind == kind]


def decisions(effects, rule: str = RULE) -> list[AlertDecision]:
    return [d for d in (AlertDecision.model_validate(e.data) for e in effects if e.kind == ALERT_KIND) if d.rule == rule]


def sample(items, sample_no: str, at: str = AT, **payload):
    return ev("sampling.result", at, items=items, sample_no=sample_no, **payload)


def test_mineral_water_the_lab_fails_on_pseudomonas_alerts_and_stays_undetermined(rules):
    state, effects = replay([registered(), sample([MINERAL_PA], "KS-1", product="饮用天然矿泉水")], rules)
    file = state.files[E]
    record = file.samples[0]
    # the sample is still undetermined: not a failure, not in the pass rate
    assert record.judgement.verdict == "undetermined"
    assert (file.counts.samples, file.counts.samples_failed, file.counts.samples_passed, file.counts.samples_undetermined) == (1, 0, 0, 1)
    assert not of(effects, "sampling.failed") and not decisions(effects, "sampling.unqualified")

    [eff] = of(effects)
    d = eff.data
    assert (d["sample_no"], d["product"], d["sampled_on"], d["sample_event_id"]) == ("KS-1", "饮用天然矿泉水", "2026-03-05", record.event_id)
    assert d["lab"] == "县食品检验检测中心" and d["task_source"] == "县市场监督管理局"
    [item] = d["items"]
    assert (item["item_code"], item["item_name"], item["values"], item["unit"], item["lab_verdict"], item["reason"]) == (
        "pseudomonas_aeruginosa", "铜绿假单胞菌", [0.0, 12.0, 3.0, 0.0, 0.0], "CFU/250mL", "fail", "uncatalogued_standard")
    assert "GB 8537-2018" in item["message_zh"]  # why qrisk cannot judge it
    assert "计为无法判定" in d["message_zh"] and "启动核查处置" in d["message_zh"]

    [alert] = decisions(effects)
    assert alert.severity == "high" and alert.rasff_class == "alert" and alert.title_zh == "检验机构判定不合格、系统无法判定"
    assert alert.dedup_key == f"{E}:judgement.lab_failed_unjudged:KS-1"
    assert alert.evidence["event_ids"] == [record.event_id] and alert.evidence["sample_no"] == "KS-1"
    assert [i["item_code"] for i in alert.evidence["items"]] == ["pseudomonas_aeruginosa"]
    m = alert.message_zh
    assert m.startswith("清源桶装水厂：饮用天然矿泉水（抽样编号 KS-1")
    assert "铜绿假单胞菌" in m and "县食品检验检测中心" in m and "县市场监督管理局" in m and "GB 8537-2018" in m
    assert "请核实检验报告与适用标准，按检验机构不合格结论启动核查处置" in m and "不计入合格率" in m
    assert "start the follow-up" in alert.message_en


def test_an_unknown_item_code_the_lab_fails_alerts(rules):
    state, effects = replay([registered(), sample([UNKNOWN], "KS-2")], rules)
    assert state.files[E].counts.samples_undetermined == 1 and state.files[E].counts.samples_failed == 0
    [eff] = of(effects)
    assert [(i["item_code"], i["reason"]) for i in eff.data["items"]] == [("no_such_item", "unknown_item")]
    [alert] = decisions(effects)
    assert "某未收录项目" in alert.message_zh


def test_a_unit_that_does_not_convert_the_lab_fails_alerts(rules):
    _, effects = replay([registered(), sample([BAD_UNIT], "KS-3")], rules)
    [eff] = of(effects)
    [item] = eff.data["items"]
    assert (item["item_code"], item["unit"], item["reason"]) == ("bromate", "CFU/mL", "unit_mismatch")
    [alert] = decisions(effects)
    assert "溴酸盐" in alert.message_zh and item["message_zh"] in alert.message_zh


def test_an_undated_sample_whose_edition_is_uncertain_the_lab_fails_alerts(rules):
    # 脱氢乙酸 0.1 g/kg in a pastry without production date, sampled 2025-03-01: GB 2760-2014 passes it, GB 2760-2024
    # fails it, so qrisk cannot judge it; the lab failed it
    dha = {"item_code": "dehydroacetic_acid", "item_name": "脱氢乙酸及其钠盐", "values": [0.1], "unit": "g/kg", "lab_verdict": "不合格"}
    events = [registered("2025-01-02T09:00:00+08:00", category="pastry"),
              sample([dha], "KS-4", at="2025-03-12T10:00:00+08:00", product="月饼", production_date=None, sampled_on="2025-03-01")]
    state, effects = replay(events, rules)
    assert state.files[E].samples[0].judgement.verdict == "undetermined"
    [eff] = of(effects)
    assert [i["reason"] for i in eff.data["items"]] == ["edition_uncertain"]
    [alert] = decisions(effects)
    assert "核实生产日期" in alert.message_zh


def test_only_the_labs_failure_alerts_not_an_item_it_passed_or_gave_no_verdict_on(rules):
    _, effects = replay([registered(), sample([UNKNOWN], "KS-5")], rules)
    assert len(of(effects)) == 1 and len(decisions(effects)) == 1
    for verdict in ("合格", None):
        line = {**UNKNOWN, "lab_verdict": verdict} if verdict else {k: v for k, v in UNKNOWN.items() if k != "lab_verdict"}
        state, effects = replay([registered(), sample([line], "KS-5")], rules)
        assert state.files[E].counts.samples_undetermined == 1
        assert not of(effects) and not decisions(effects), verdict
    # only the items the lab failed are named: one it passed beside one it failed is not
    _, effects = replay([registered(), sample([{**BAD_UNIT, "lab_verdict": "合格"}, UNKNOWN], "KS-5")], rules)
    [eff] = of(effects)
    assert [i["item_code"] for i in eff.data["items"]] == ["no_such_item"]


def test_a_sample_qrisk_fails_anyway_raises_its_failure_alert_only(rules):
    _, effects = replay([registered(), sample([UNKNOWN], "KS-6")], rules)
    assert len(decisions(effects)) == 1
    # the same unjudged lab failure beside 铜绿假单胞菌 qrisk fails (GB 19298): the failure's alert starts the follow-up
    failing = {"item_code": "pseudomonas_aeruginosa", "item_name": "铜绿假单胞菌", "values": [45, 59, 8, 61, 10], "unit": "CFU/250mL",
               "lab_verdict": "不合格"}
    state, effects = replay([registered(), sample([failing, UNKNOWN], "KS-6")], rules)
    assert state.files[E].samples[0].judgement.verdict == "fail"
    assert len(decisions(effects, "sampling.unqualified")) == 1
    assert not of(effects) and not decisions(effects)


def test_a_correction_that_brings_an_unjudged_lab_failure_alerts_once(rules):
    clean = {"item_code": "pseudomonas_aeruginosa", "item_name": "铜绿假单胞菌", "values": [0, 0, 0, 0, 0], "unit": "CFU/250mL",
             "lab_verdict": "合格"}
    first = sample([clean], "KS-7")
    corrected = sample([clean, BAD_UNIT], "KS-7", at="2026-03-13T09:00:00+08:00")
    again = sample([clean, BAD_UNIT], "KS-7", at="2026-03-14T09:00:00+08:00", batch="20260302")  # corrected again, same failure
    state, effects = replay([registered(), first, corrected, again], rules)
    assert [e.data["sample_event_id"] for e in of(effects, "sampling.corrected")] == [str(corrected.event_id), str(again.event_id)]
    [eff] = of(effects)  # the second correction repeats the lab failure on file: its alert stands, no second one
    assert eff.data["sample_event_id"] == str(corrected.event_id) and [i["item_code"] for i in eff.data["items"]] == ["bromate"]
    [alert] = decisions(effects)
    assert alert.dedup_key == f"{E}:judgement.lab_failed_unjudged:KS-7"
    counts = state.files[E].counts
    assert (counts.samples, counts.samples_passed, counts.samples_undetermined, counts.samples_failed) == (1, 0, 1, 0)


def test_the_rule_is_policy_data(rules):
    off = Rules(rules.catalogue, Policy.model_validate({"warnings": {"lab_failed_unjudged": {"enabled": False}}}))
    _, effects = replay([registered(), sample([UNKNOWN], "KS-8")], off)
    assert len(of(effects)) == 1 and not decisions(effects)  # the fold still says so; no alert
    custom = Rules(rules.catalogue, Policy.model_validate({"warnings": {"lab_failed_unjudged": {
        "severity": "critical", "template_zh": "【{lab}】{sample_no} {items}"}}}))
    _, effects = replay([registered(), sample([UNKNOWN], "KS-8")], custom)
    [alert] = decisions(effects)
    assert alert.severity == "critical" and alert.message_zh == "【县食品检验检测中心】KS-8 某未收录项目"


def test_the_alerts_stage_opens_an_alert_a_supervisor_can_act_on(rules):
    from alerts.messages import RULE_ZH, effect_title_zh, message_zh, title_en
    from tests.test_alerts import County, policy

    county = County(rules, policy())
    county.feed(registered("2026-01-05T09:00:00+08:00"))
    changes = county.feed(sample([MINERAL_PA], "KS-9", product="饮用天然矿泉水"))
    [opened] = [c for c in changes if c.step.action == "opened" and c.alert.rule == RULE]
    alert = opened.alert
    assert alert.severity == "high" and alert.refs == ["KS-9"]
    assert [n.receiver for n in opened.notifications] == ["liangzhu", "desk"]  # the town, and the desk for high
    text = opened.notifications[0].text_zh
    assert "检验机构判定不合格、系统无法判定" in opened.notifications[0].subject_zh
    assert "抽样编号 KS-9" in text and "铜绿假单胞菌 检测值 0、12、3、0、0 CFU/250mL（检验机构判定不合格，判定依据 GB 8537-2018）" in text
    assert RULE_ZH[RULE] == "检验机构判定不合格、系统无法判定"
    _, effects = replay([registered(), sample([MINERAL_PA], "KS-9", product="饮用天然矿泉水")], rules)
    [eff] = of(effects)
    assert effect_title_zh(eff) == "检验机构判定不合格、系统无法判定" and title_en(KIND) != KIND
    assert message_zh(eff, "清源桶装水厂").startswith("清源桶装水厂：抽样编号 KS-9（饮用天然矿泉水）检验机构（县食品检验检测中心）判定铜绿假单胞菌不合格")
    # a rectification ordered citing the sample is the follow-up this alert asked for
    county.feed(ev("rectification.ordered", "2026-03-14T10:00:00+08:00", rectification_id="ZG-9", cause="抽检 KS-9 核查处置",
                   deadline="2026-04-14"))
    assert alert.state == "rectifying" and alert.rectifications == ["ZG-9"]


def test_replay_is_deterministic(rules):
    events = [registered(), sample([MINERAL_PA], "KS-10", product="饮用天然矿泉水"), sample([UNKNOWN, BAD_UNIT], "KS-11")]
    _, a = replay(events, rules)
    _, b = replay(events, rules)
    assert [(e.kind, e.data) for e in a] == [(e.kind, e.data) for e in b]
    assert len(of(a)) == 2
