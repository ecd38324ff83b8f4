"""Early-warning rules: each fires on its scenario and stays quiet on a clean one."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from pydantic import ValidationError

from processors.step import Rules, replay, step
from processors.warnings import ALERT_KIND, RULES, AlertDecision
from schemas.policy import Policy
from tests.test_fluctuation import BASELINE, drifting_log, water_sample
from schemas.upcast import parse_event
from tests.conftest import golden
from tests.test_risk import E, ev, pa_sample, registered


def decisions(effects, rule: str | None = None) -> list[AlertDecision]:
    out = [AlertDecision.model_validate(e.data) for e in effects if e.kind == ALERT_KIND]
    return [d for d in out if rule is None or d.rule == rule]


def clean_year() -> list:
    """A registered plant sampled (clean) every month and inspected twice: nothing to warn about."""
    events = [registered("2025-01-02T09:00:00+08:00")]
    for m in range(1, 13):
        events.append(pa_sample(f"2025-{m:02d}-10T10:00:00+08:00", values=(0, 0, 0, 0, 0)))
    events += [ev("inspection.completed", f"2025-{m:02d}-15T10:00:00+08:00", inspection_id=f"I{m}", result="符合", findings=[]) for m in (3, 9)]
    events += [ev("complaint.received", "2025-06-01T10:00:00+08:00", complaint_id="Q1", verified=False, text="桶装水有异味。")]
    # (concluded within its time limits: one left open for months is the bureau's own lateness, complaint.overdue)
    events += [ev("complaint.resolved", "2025-06-06T16:00:00+08:00", complaint_id="Q1", verified=False)]
    events += [ev("rectification.ordered", "2025-07-01T10:00:00+08:00", rectification_id="R1", deadline="2025-07-31"),
               ev("rectification.completed", "2025-07-20T10:00:00+08:00", rectification_id="R1"),
               ev("rectification.verified", "2025-07-25T10:00:00+08:00", rectification_id="R1", accepted=True)]
    events.append(ev("clock.tick", "2026-01-01T00:00:00+08:00", enterprise_id="*"))
    return events


def test_a_clean_enterprise_raises_no_warning(rules):
    state, effects = replay(clean_year(), rules)
    assert decisions(effects) == []
    assert state.files[E].warnings == []
    assert state.files[E].risk.grade == "B"


def test_unqualified_sample_severity_by_item_class(rules):
    state, effects = replay([registered(), pa_sample("2026-03-12T15:20:00+08:00", sample_no="DC26-1")], rules)
    [d] = decisions(effects, "sampling.unqualified")
    assert d.severity == "critical" and d.rasff_class == "alert" and d.respond_within_hours == 24  # pathogen
    assert d.dedup_key == f"{E}:sampling.failed:DC26-1"
    assert d.evidence["event_ids"] == [state.files[E].samples[0].event_id] and d.evidence["item_class"] == "pathogen"
    assert "清源桶装水厂" in d.message_zh and "铜绿假单胞菌" in d.message_zh and "抽检不合格" in d.message_zh
    assert d.message_en.startswith("清源桶装水厂: 饮用纯净水")
    # 铜绿假单胞菌 is a conditional pathogen (GB 19298's 微生物限量, not GB 29921): its class reads as such,
    # while it weighs as a pathogen and admits no re-test
    labelled = Rules(rules.catalogue, Policy.model_validate({"warnings": {"sampling_unqualified": {"template_zh": "【{item_class}】{items}"}}}))
    _, effects = replay([registered(), pa_sample("2026-03-12T15:20:00+08:00", sample_no="DC26-1")], labelled)
    [d] = decisions(effects, "sampling.unqualified")
    assert d.message_zh == "【致病菌（含条件致病菌）】铜绿假单胞菌" and d.severity == "critical"
    assert "pathogen" in rules.policy.retest.inadmissible_item_classes
    # a quality index (conductivity) over its limit is medium
    doc_items = [{"item_code": "conductivity", "item_name": "电导率", "values": [25.0], "unit": "µS/cm"}]
    _, effects = replay([registered(), ev("sampling.result", "2026-03-12T15:20:00+08:00", items=doc_items, sample_no="DC26-2")], rules)
    [d] = decisions(effects, "sampling.unqualified")
    assert d.severity == "medium" and d.evidence["item_class"] == "quality_index"


def test_a_non_permitted_additive_is_critical_whatever_its_catalogue_class(rules):
    # 脱氢乙酸 (catalogue class: additive) in a pastry made in 2026, not permitted under GB 2760-2024: as 苯甲酸
    from tests.test_risk import pastry_sample

    for code in ("dehydroacetic_acid", "benzoic_acid"):
        _, effects = replay([registered(category="pastry"), pastry_sample("2026-03-12T10:00:00+08:00", "2026-03-01", code, 0.2, "S9")], rules)
        [d] = decisions(effects, "sampling.unqualified")
        assert d.severity == "critical", code
        assert d.evidence["item_class"] == "additive_not_permitted" and d.evidence["failed"][0]["item_class"] == "additive_not_permitted"

    # the legal term: 超范围使用食品添加剂 (食品安全法 第一百二十四条), not 非法添加 (non-food substances, 第一百二十三条)
    custom = Rules(rules.catalogue, Policy.model_validate({"warnings": {"sampling_unqualified": {"template_zh": "【{item_class}】{sample_no}"}}}))
    _, effects = replay([registered(category="pastry"), pastry_sample("2026-03-12T10:00:00+08:00", "2026-03-01", "benzoic_acid", 0.2, "S9")], custom)
    [d] = decisions(effects, "sampling.unqualified")
    assert d.message_zh == "【超范围使用食品添加剂（不得使用）】S9" and "非法添加" not in d.message_zh


def test_fluctuation_signal_warns_before_failure(rules):
    _, effects = replay(drifting_log(), rules)
    found = decisions(effects, "fluctuation.signal")
    assert found and all(d.dedup_key.startswith(f"{E}:fluctuation:") for d in found)
    assert not decisions(effects, "sampling.unqualified")  # the charts spoke, nothing failed yet
    assert all(d.evidence["event_ids"] and d.evidence["chart"] for d in found)
    days = [dt.date(2025, 1, 5) + dt.timedelta(days=14 * i) for i in range(len(BASELINE) + 3)]
    steady = [registered()] + [water_sample(d, v) for d, v in zip(days, BASELINE + [0.81, 0.80, 0.82])]
    _, effects = replay(steady, rules)
    assert not decisions(effects, "fluctuation.signal")


def test_grade_worsening_warns_with_the_reasons(rules):
    events = [registered(), pa_sample("2026-03-12T15:20:00+08:00")]
    _, effects = replay(events, rules)
    [d] = decisions(effects, "risk.grade_worsened")
    assert d.evidence["from"] == "B" and d.evidence["to"] == "C" and d.severity == "medium"
    assert d.dedup_key == f"{E}:grade.worsened:C"
    assert "风险上升，风险等级由 B 级变为 C 级" in d.message_zh and "抽检不合格" in d.message_zh
    # what moved it, saying by how much since the last evaluation, and the score before and after; what the
    # enterprise always was (its food category, its campaign tier) is no reason for a rise
    reasons, next_step = d.message_zh.split("主要原因：")[1].split("。下一步：")
    assert next_step == "请按 C 级企业的监管频次调整检查和抽检计划。"
    assert reasons.startswith("抽检不合格 +15（") and "较上次评定 +15" in reasons
    assert reasons.endswith(f"风险分 {d.evidence['score'] - 15:g} → {d.evidence['score']:g}（静态 {d.evidence['static']:g} + "
                            f"动态 {d.evidence['dynamic']:g} + 信用 {d.evidence['credit']:g}）")
    assert "食品类别" not in reasons and "提档升级分档" not in reasons
    assert d.evidence["event_ids"]  # the events behind the dynamic and credit terms
    # improving is no warning
    state, _ = replay(events, rules)
    _, effects = step(state, ev("clock.tick", "2027-04-01T00:00:00+08:00", enterprise_id="*"), rules)
    assert state.files[E].risk.grade == "B" and not decisions(effects, "risk.grade_worsened")


def test_complaint_cluster(rules):
    spread = [registered()] + [ev("complaint.received", f"2026-0{m}-10T10:00:00+08:00", complaint_id=f"C{m}", verified=True) for m in (2, 4, 6)]
    _, effects = replay(spread, rules)
    assert not decisions(effects, "complaint.cluster")
    cluster = [registered()] + [ev("complaint.received", f"2026-03-{d:02d}T10:00:00+08:00", complaint_id=f"K{d}", verified=True) for d in (1, 9, 20, 25)]
    _, effects = replay(cluster, rules)
    found = decisions(effects, "complaint.cluster")
    assert len(found) == 2 and {d.dedup_key for d in found} == {f"{E}:complaint.cluster:2026-03-01"}  # one problem, grouped
    assert found[0].severity == "high" and "30 天内经核实的投诉达 3 件" in found[0].message_zh
    assert len(found[0].evidence["event_ids"]) == 3


def illness(at: str, cid: str, verified: bool, **changes):
    payload = {"complaint_id": cid, "channel": "hotline", "category": "illness", "verified": verified, "product": "饮用纯净水",
               "text": "孩子喝了这桶水以后上吐下泻，去医院看了急诊，医生说是急性胃肠炎。", **changes}
    return ev("complaint.received", at, **payload)


def test_one_verified_illness_complaint_alerts_on_its_own(rules):
    # received unverified: an early warning, 待核实 (medium); verified on investigation: the same alert, high, at once —
    # not only in a cluster of 3
    state, effects = replay([registered(), illness("2026-03-20T11:02:00+08:00", "TS1", verified=False)], rules)
    [early] = decisions(effects, "complaint.illness")
    assert (early.severity, early.title_zh, early.evidence["verified"]) == ("medium", "食用后不适投诉（待核实）", False)
    assert "尚待核实" in early.message_zh and "经核实属实" not in early.message_zh and "请尽快核实" in early.message_zh
    state, effects = step(state, ev("complaint.resolved", "2026-03-22T16:00:00+08:00", complaint_id="TS1", verified=True, outcome="属实"), rules)
    [d] = decisions(effects, "complaint.illness")
    assert d.dedup_key == early.dedup_key and d.evidence["verified"] is True
    assert not decisions(effects, "complaint.cluster")
    assert d.severity == "high" and d.rasff_class == "alert" and d.title_zh == "食用后不适投诉"
    assert d.dedup_key == f"{E}:complaint.illness:TS1"
    assert d.message_zh == ("清源桶装水厂：2026-03-20 通过热线渠道收到投诉（编号 TS1），反映饮用纯净水后身体不适，经核实属实。"
                            "投诉内容：“孩子喝了这桶水以后上吐下泻，去医院看了急诊，医生说是急性胃肠炎”。请立即核查同批次产品并采取控制措施。")
    assert d.evidence["event_ids"][0] == state.files[E].complaints[0].event_id and d.evidence["channel"] == "hotline"
    # a water named otherwise is drunk, a pastry eaten
    _, spring = replay([registered(), illness("2026-03-20T11:02:00+08:00", "TS9", verified=True, product="桶装山泉水")], rules)
    assert "反映饮用桶装山泉水后身体不适" in decisions(spring, "complaint.illness")[0].message_zh
    # found untrue, then true again: the same problem, the same key
    state, _ = step(state, ev("complaint.resolved", "2026-03-23T10:00:00+08:00", complaint_id="TS1", verified=False), rules)
    state, effects = step(state, ev("complaint.resolved", "2026-03-24T10:00:00+08:00", complaint_id="TS1", verified=True), rules)
    assert [x.dedup_key for x in decisions(effects, "complaint.illness")] == [f"{E}:complaint.illness:TS1"]
    # received verified: at once; a long text is quoted in part; another category does not alert on its own
    long_text = "饮用后腹痛" * 40
    _, effects = replay([registered(), illness("2026-03-20T11:02:00+08:00", "TS2", verified=True, text=long_text),
                         ev("complaint.received", "2026-03-21T10:00:00+08:00", complaint_id="TS3", verified=True, text="桶装水有异味。")], rules)
    [d] = decisions(effects, "complaint.illness")
    assert d.evidence["complaint_id"] == "TS2" and d.evidence["excerpt"] == long_text[:80] + "…"


def test_an_illness_told_in_the_text_alerts_whatever_the_category(rules):
    """Callers file “饮用后腹泻” under taste_odour as often as under illness: the text decides too; a
    negated word (“未就医”, “无腹泻”) does not."""
    said = lambda cid, text: ev("complaint.received", "2026-03-20T11:02:00+08:00", complaint_id=cid, category="taste_odour",  # noqa: E731
                                 verified=True, text=text)
    _, effects = replay([registered(), said("TS6", "有异味，三人饮用后腹泻、腹部不适，已就医。")], rules)
    [d] = decisions(effects, "complaint.illness")
    assert d.evidence["illness_words"] == ["腹泻", "腹部不适", "就医"] and d.evidence["category"] == "taste_odour"
    _, effects = replay([registered(), said("TS7", "有异味，饮用后无腹泻，未就医。")], rules)
    assert not decisions(effects, "complaint.illness")
    # the golden example: 饮用后腹部不适
    _, effects = replay([registered(), said("TS8", "桶装水有异味，饮用后腹部不适。")], rules)
    assert decisions(effects, "complaint.illness")


def test_the_illness_complaint_rule_is_policy_data(rules):
    custom = Rules(rules.catalogue, Policy.model_validate({"warnings": {"complaint_illness": {
        "severity": "critical", "categories": ["illness", "spoilage"], "template_zh": "{name} {complaint_id} {channel_zh} {category_zh}"}}}))
    _, effects = replay([registered(), ev("complaint.received", "2026-03-20T11:02:00+08:00", complaint_id="TS4", category="spoilage",
                                          channel="12315", verified=True)], custom)
    [d] = decisions(effects, "complaint.illness")
    assert d.severity == "critical" and d.message_zh == "清源桶装水厂 TS4 12315 变质"
    off = Rules(rules.catalogue, Policy.model_validate({"warnings": {"complaint_illness": {"enabled": False}}}))
    _, effects = replay([registered(), illness("2026-03-20T11:02:00+08:00", "TS5", verified=True)], off)
    assert not decisions(effects, "complaint.illness")
    with pytest.raises(ValidationError, match="unknown"):
        Policy.model_validate({"warnings": {"complaint_illness": {"categories": ["food_poisoning"]}}})


def test_rectification_past_its_deadline(rules):
    ordered = [registered(), ev("rectification.ordered", "2026-03-25T11:00:00+08:00", rectification_id="R1", deadline="2026-04-24")]
    on_time = ordered + [ev("rectification.completed", "2026-04-20T10:00:00+08:00", rectification_id="R1"),
                         ev("clock.tick", "2026-05-01T00:00:00+08:00", enterprise_id="*")]
    _, effects = replay(on_time, rules)
    assert not decisions(effects, "rectification.overdue")
    late = ordered + [ev("clock.tick", "2026-05-01T00:00:00+08:00", enterprise_id="*")]
    state, effects = replay(late, rules)
    [d] = decisions(effects, "rectification.overdue")
    assert d.dedup_key == f"{E}:rectification.overdue:R1" and "逾期 7 天" in d.message_zh
    assert state.files[E].rectifications[0].event_id in d.evidence["event_ids"]


def test_expected_data_that_did_not_come(rules):
    # B: a sample at least every 180 days, an inspection every 365 days
    events = [registered("2025-01-02T09:00:00+08:00"), pa_sample("2025-01-20T10:00:00+08:00", values=(0, 0, 0, 0, 0)),
              ev("clock.tick", "2025-07-15T00:00:00+08:00", enterprise_id="*")]
    state, effects = replay(events, rules)
    assert not decisions(effects, "data.missing")  # 176 days: not yet
    state, effects = step(state, ev("clock.tick", "2025-07-20T00:00:00+08:00", enterprise_id="*"), rules)
    [d] = decisions(effects, "data.missing")
    assert d.evidence["what"] == "sampling" and d.evidence["last"] == "2025-01-20" and d.evidence["due"] == "2025-07-19"
    assert d.dedup_key == f"{E}:data.missing:sampling:2025-01-20"
    # dated ("as of", not "until now": the text stays true when read later), and the requirement as the policy states it
    assert d.message_zh == ("清源桶装水厂：按本县风险分级监管要求，B 级企业每 180 天至少一次监督抽检，最近一次抽检为 2025-01-20，"
                            "应于 2025-07-19 前完成，截至 2025-07-20 仍无监督抽检记录。")
    # raised once per gap, not on every tick
    state, effects = step(state, ev("clock.tick", "2025-08-20T00:00:00+08:00", enterprise_id="*"), rules)
    assert not decisions(effects, "data.missing")
    # the inspection, never done, is due a year after registration; an event of the enterprise is enough to notice
    state, effects = step(state, ev("complaint.received", "2026-01-03T10:00:00+08:00", complaint_id="Q2"), rules)
    # (the sampling gap since 2025-01-20 was raised already: once per gap)
    [d] = decisions(effects, "data.missing")
    assert d.evidence["what"] == "inspection"
    assert "按本县风险分级监管要求，B 级企业每年至少 1 次现场检查（本局按两次间隔不超过 365 天掌握），自 2025-01-02 登记以来未检查，" in d.message_zh
    assert "无记录" not in d.message_zh and "至今" not in d.message_zh
    # a new sample closes the gap: quiet again, and the gap's alert is told which record filled it
    state, effects = step(state, pa_sample("2026-01-10T10:00:00+08:00", values=(0, 0, 0, 0, 0), sample_no="S-GAP"), rules)
    assert not decisions(effects, "data.missing")
    [r] = [e.data for e in effects if e.kind == "warning.resolved"]
    assert r["dedup_key"] == f"{E}:data.missing:sampling:2025-01-20"
    assert r["note_zh"] == "已有监督抽检（抽样编号 S-GAP，抽样日期 2026-01-10）记录，预警自动关闭"
    assert state.files[E].risk.missing == {"inspection": "2025-01-02"}
    # a second sample fills nothing more; the inspection does
    state, effects = step(state, pa_sample("2026-01-11T10:00:00+08:00", values=(0, 0, 0, 0, 0)), rules)
    assert not [e for e in effects if e.kind == "warning.resolved"]
    state, effects = step(state, ev("inspection.completed", "2026-01-12T10:00:00+08:00", inspection_id="JC-1", result="符合", findings=[]), rules)
    [r] = [e.data for e in effects if e.kind == "warning.resolved"]
    assert r["dedup_key"] == f"{E}:data.missing:inspection:2025-01-02" and r["note_zh"] == "已有现场检查 JC-1（2026-01-12）记录，预警自动关闭"


def test_a_worse_grade_gives_time_to_inspect_instead_of_a_back_dated_overdue(rules):
    # B, inspected 2025-04-15 (B: next within 365 days); a pathogen failure on 2025-10-31 makes it C (182 days):
    # last + 182 = 2025-10-14 is already past, so the inspection is due 30 days (regrade_grace_days) after the change
    events = [registered("2025-01-02T09:00:00+08:00"),
              ev("inspection.completed", "2025-04-15T10:00:00+08:00", inspection_id="I1", result="符合", findings=[]),
              pa_sample("2025-10-31T10:00:00+08:00")]
    state, effects = replay(events, rules)
    f = state.files[E]
    assert f.risk.grade == "C" and f.risk.next_inspection_due == dt.date(2025, 11, 30)
    assert not [d for d in decisions(effects, "data.missing") if d.evidence["what"] == "inspection"]
    state, effects = step(state, ev("clock.tick", "2025-11-30T12:00:00+08:00", enterprise_id="*"), rules)
    assert not [d for d in decisions(effects, "data.missing") if d.evidence["what"] == "inspection"]
    state, effects = step(state, ev("clock.tick", "2025-12-01T12:00:00+08:00", enterprise_id="*"), rules)
    [d] = [d for d in decisions(effects, "data.missing") if d.evidence["what"] == "inspection"]
    assert d.evidence["due"] == "2025-11-30" and d.evidence["regraded_on"] == "2025-10-31" and d.evidence["grace_days"] == 30
    assert "最近一次检查为 2025-04-15，2025-10-31 风险等级调整为 C 级后给予 30 天检查期限，应于 2025-11-30 前完成" in d.message_zh
    # an inspection after the change: the grade's interval runs from it again
    state, _ = step(state, ev("inspection.completed", "2025-12-05T10:00:00+08:00", inspection_id="I2", result="符合", findings=[]), rules)
    assert f.risk.next_inspection_due == dt.date(2025, 12, 5) + dt.timedelta(days=182)


def test_the_inspection_requirement_reads_as_the_policy_states_it(rules):
    from processors.warnings import _requirement

    assert _requirement("inspection", "D", 122, rules)[0] == "每年至少 3 次现场检查（本局按两次间隔不超过 122 天掌握）"
    assert _requirement("inspection", "A", 730, rules)[0] == "每 2 年至少 1 次现场检查（本局按两次间隔不超过 730 天掌握）"
    assert _requirement("inspection", "A", 730, rules)[1] == "at least 1 inspection every 2 years (applied as at most 730 days apart)"
    # any fractional rate over whole years
    from processors.risk import inspection_frequency
    assert [inspection_frequency(r)[0] for r in (0.5, 0.4, 1.5, 2)] == ["每 2 年至少 1 次", "每 5 年至少 2 次", "每 2 年至少 3 次", "每年至少 2 次"]
    assert _requirement("sampling", "C", 120, rules)[0] == "每 120 天至少一次监督抽检"


def test_inspection_rejection_and_disagreement_rules(rules):
    events = [registered(),
              ev("inspection.completed", "2026-03-25T10:30:00+08:00", inspection_id="I1", result="不符合",
                 findings=[{"code": "3.2", "description": "消毒记录不全", "severity": "major"}]),
              ev("rectification.ordered", "2026-03-26T11:00:00+08:00", rectification_id="R1", deadline="2026-04-24"),
              ev("rectification.completed", "2026-04-10T09:00:00+08:00", rectification_id="R1"),
              ev("rectification.verified", "2026-04-12T09:00:00+08:00", rectification_id="R1", accepted=False, note="消毒记录仍不全")]
    _, effects = replay(events, rules)
    [i] = decisions(effects, "inspection.nonconforming")
    assert i.severity == "high" and "3.2 消毒记录不全" in i.message_zh
    # what the supervisor does next (《食品生产经营监督检查管理办法》), after the findings' own full stop
    assert "问题：3.2 消毒记录不全（主要）。下一步：请责令企业对发现的问题限期整改并复查；" in i.message_zh
    assert "应责令其立即停止食品生产经营活动" in i.message_zh
    [r] = decisions(effects, "rectification.rejected")
    assert "消毒记录仍不全" in r.message_zh and "重新整改期限" not in r.message_zh
    # a rejection that sets a new deadline (重新限期): the notice says by when
    again = events[:-1] + [ev("rectification.verified", "2026-04-12T09:00:00+08:00", rectification_id="R1", accepted=False,
                              note="消毒记录仍不全", new_deadline="2026-05-12")]
    _, effects = replay(again, rules)
    [r] = decisions(effects, "rectification.rejected")
    assert "消毒记录仍不全。重新整改期限：2026-05-12。下一步：" in r.message_zh and r.evidence["due"] == "2026-05-12"
    items = [{"item_code": "pseudomonas_aeruginosa", "values": [0, 0, 0, 0, 0], "unit": "CFU/250mL", "lab_verdict": "不合格"}]
    _, effects = replay([registered(), ev("sampling.result", "2026-03-12T15:20:00+08:00", items=items, sample_no="S-X")], rules)
    # the lab's 不合格 on an item qrisk passes is the report's failure: it alerts high, as such, not as a disagreement
    assert not decisions(effects, "judgement.disagrees")
    [d] = decisions(effects, "judgement.lab_failed_passed")
    assert d.severity == "high" and "系统复核为合格" in d.message_zh
    # with that rule turned off, the disagreement says it
    quiet = Rules(rules.catalogue, Policy.model_validate({"warnings": {"lab_failed_passed": {"enabled": False}}}))
    _, effects = replay([registered(), ev("sampling.result", "2026-03-12T15:20:00+08:00", items=items, sample_no="S-X")], quiet)
    [d] = decisions(effects, "judgement.disagrees")
    assert d.severity == "low" and d.dedup_key == f"{E}:judgement.disagrees:S-X"
    # who decided what, and with whom to check it
    assert "S-X：铜绿假单胞菌（检验报告：不合格；系统判定：合格），系统判定与检验机构（县食品检验检测中心）结论不一致。下一步：请与检验机构核对" in d.message_zh


def test_rules_are_policy_data(rules):
    custom = Rules(rules.catalogue, Policy.model_validate({"warnings": {
        "sampling_unqualified": {"severity_by_class": {"pathogen": "high"}, "template_zh": "【{item_class}】{name} {sample_no}"},
        "grade_worsened": {"enabled": False},
    }}))
    _, effects = replay([registered(), pa_sample("2026-03-12T15:20:00+08:00", sample_no="S-1")], custom)
    [d] = decisions(effects)
    assert d.rule == "sampling.unqualified" and d.severity == "high" and d.message_zh == "【致病菌（含条件致病菌）】清源桶装水厂 S-1"
    with pytest.raises(ValidationError, match="unknown placeholder"):
        Policy.model_validate({"warnings": {"fluctuation": {"template_zh": "{nmae}"}}})


def test_decisions_are_kept_in_the_credit_file_and_bounded(rules):
    few = Rules(rules.catalogue, Policy.model_validate({"risk": {"warnings_kept": 2}}))
    events = [registered()] + [pa_sample(f"2026-0{m}-12T15:20:00+08:00", sample_no=f"S{m}") for m in (3, 4, 5)]
    state, effects = replay(events, few)
    kept = state.files[E].warnings
    assert len(kept) == 2 and kept[-1] == decisions(effects)[-1]
    assert set(RULES) >= {d.rule for d in decisions(effects)}


def test_a_gap_is_raised_again_after_the_data_that_filled_the_last_one(rules):
    # no sample and no inspection for a year: both gaps raised, nothing due ahead any more
    events = [registered("2025-01-02T09:00:00+08:00"), pa_sample("2025-01-20T10:00:00+08:00", values=(0, 0, 0, 0, 0)),
              ev("clock.tick", "2026-02-01T00:00:00+08:00", enterprise_id="*")]
    state, effects = replay(events, rules)
    assert {d.dedup_key.split(":")[2] for d in decisions(effects, "data.missing")} == {"sampling", "inspection"}
    # both filled: the alerts close (warning.resolved), and the watch must go on from the new data
    state, _ = step(state, pa_sample("2026-02-10T10:00:00+08:00", values=(0, 0, 0, 0, 0), sample_no="S2"), rules)
    state, _ = step(state, ev("inspection.completed", "2026-02-12T10:00:00+08:00", inspection_id="JC-1", result="符合", findings=[]), rules)
    assert state.files[E].risk.missing == {}
    state, effects = step(state, ev("clock.tick", "2028-03-01T00:00:00+08:00", enterprise_id="*"), rules)
    assert {d.dedup_key.split(":")[2] for d in decisions(effects, "data.missing")} == {"sampling", "inspection"}


def _undetermined_retest(microbial: bool):
    """An original that failed (bromate, or with ``microbial`` 铜绿假单胞菌) and a re-test whose
    bromate result is in a unit the catalogue does not read: the re-test is undetermined."""
    from schemas.upcast import parse_event
    from tests.conftest import golden
    from tests.test_fold import _sample

    doc = _sample("2026-03-25T09:00:00+08:00", True, True).model_dump(mode="json")
    for item in doc["payload"]["items"]:
        if item["item_code"] == "bromate":
            item["unit"] = "mg/dL"
    return [parse_event(golden("enterprise.registered")), _sample("2026-03-10T09:00:00+08:00", False, False, microbial=microbial),
            parse_event(doc)]


@pytest.mark.parametrize("microbial", [False, True])
def test_an_undetermined_re_test_is_named_as_the_credit_file_names_it(rules, microbial):
    """One term for the verdict a supervisor reads: 无法判定 (the credit file's), never 待定 beside it."""
    from qrisk.credit_report import VERDICT_ZH

    state, effects = replay(_undetermined_retest(microbial), rules)
    assert [s.judgement.verdict for s in state.files[E].samples][-1] == "undetermined"
    # 不予复检, or a re-test nobody could judge: neither overturns the failure, and the warning names
    # what the re-test said
    (d,) = decisions(effects, "retest.inadmissible")
    text = d.message_zh
    assert "收到的复检结果（无法判定）" in text and d.evidence["retest_verdict"] == "undetermined"
    assert d.evidence["reason"] == ("microbial" if microbial else "undetermined")
    assert not [e for e in effects if e.kind == "sampling.overturned"]
    assert VERDICT_ZH["undetermined"] in text and "待定" not in text


def test_a_late_re_test_names_every_step_its_window_allows_for(rules):
    """The window covers the request, the bureau's acceptance, the choice of the re-test lab, the
    backup sample's transfer and the re-test itself: the refusal says so, not only ask + test."""
    from schemas.upcast import parse_event
    from tests.conftest import golden
    from tests.test_fold import _sample

    window = rules.policy.retest.result_within_days
    late = dt.date(2026, 3, 10) + dt.timedelta(days=window + 5)
    log = [parse_event(golden("enterprise.registered")), _sample("2026-03-10T09:00:00+08:00", False, False),
           _sample(f"{late.isoformat()}T09:00:00+08:00", True, True)]
    _, effects = replay(log, rules)
    (d,) = decisions(effects, "retest.inadmissible")
    assert d.evidence["reason"] == "late"
    assert "受理、确定复检机构、移交备份样品和复检检验的常规时限" in d.message_zh and f"按 {window} 个自然日近似" in d.message_zh
    # only the data's arrival is known here: a doubt for the supervisor to check, not a ruling against a lawful re-test
    assert "系统暂未采信" in d.message_zh and "确属依法按期申请的复检，复检结论为最终结论" in d.message_zh


def test_a_failed_sample_names_its_batch_and_the_next_step_the_rules_require(rules):
    """The batch is what a supervisor seals or recalls: the notice names it (and the production date),
    says what to do next (核查处置, control measures) and whether the enterprise may still ask for a re-test."""
    from tests.test_fold import _sample

    # bromate (chemical): a re-test may be asked for within 7 working days
    _, effects = replay([registered(), _sample("2026-03-10T09:00:00+08:00", False, False, sample_no="DC-B1")], rules)
    [d] = decisions(effects, "sampling.unqualified")
    assert "（抽样编号 DC-B1，抽样日期 2026-03-05）抽检不合格，不合格项目：溴酸盐。涉及批次：批号 20260301，生产日期 2026-03-01。" in d.message_zh
    assert (d.evidence["batch"], d.evidence["production_date"]) == ("20260301", "2026-03-01")
    assert "判定不合格。检验机构：县食品检验检测中心（任务来源：县市场监督管理局）。下一步：请依法启动核查处置" in d.message_zh
    assert "召回" in d.message_zh and "封存" in d.message_zh and d.evidence["lab"] == "县食品检验检测中心"
    assert "可自收到检验结论之日起 7 个工作日内向实施监督抽检的市场监督管理部门或者其上一级市场监督管理部门提出书面复检申请" in d.message_zh and "不予复检" not in d.message_zh
    assert "Lot: batch 20260301, made 2026-03-01." in d.message_en
    # 铜绿假单胞菌 (microbiological): no re-test is offered
    _, effects = replay([registered(), pa_sample("2026-03-12T15:20:00+08:00", sample_no="DC-B2")], rules)
    [d] = decisions(effects, "sampling.unqualified")
    assert "不合格项目“铜绿假单胞菌”为微生物指标，依法不予复检" in d.message_zh and "申请复检" not in d.message_zh
    # a sample without batch or production date says nothing of them (no empty "批号 ，")
    _, effects = replay([registered(), _sample("2026-03-10T09:00:00+08:00", False, False, sample_no="DC-B3", batch=None,
                                                 production_date=None)], rules)
    [d] = decisions(effects, "sampling.unqualified")
    assert "不合格项目：溴酸盐。溴酸盐" in d.message_zh and "批号" not in d.message_zh and "涉及批次" not in d.message_zh
    assert "batch" not in d.evidence and "production_date" not in d.evidence


def test_brand_and_spec_are_named_when_the_sample_record_keeps_them():
    from processors.warnings import _lot

    class Kept:  # a SampleRecord that keeps the lab's 商标 and 规格型号 too
        batch, production_date, brand, spec = "B7", dt.date(2026, 3, 1), "清源", "18.9L/桶"

    assert _lot(Kept()) == {"batch": "B7", "production_date": "2026-03-01", "brand": "清源", "spec": "18.9L/桶"}
    assert _lot(None) == {}


def test_a_rise_partly_taken_back_by_a_cap_says_so_and_its_reasons_add_up(rules):
    """A cap that holds the dynamic terms (dynamic.max) is a line of its own: the points listed add up."""
    from processors.warnings import score_reasons_zh

    capped = Rules(rules.catalogue, Policy.model_validate({"risk": {"dynamic": {"max": 10}}}))
    state, effects = replay([registered(), pa_sample("2026-03-12T15:20:00+08:00")], capped)
    [d] = decisions(effects, "risk.grade_worsened")
    reasons = d.message_zh.split("主要原因：")[1].split("。下一步：")[0]
    assert reasons.startswith("抽检不合格 +15（") and "较上次评定 +15）；动态因素上限 -5（合计 15 分，按上限 10 分计；较上次评定 -5）；风险分 " in reasons
    assert "动态 10 + " in reasons.rsplit("；", 1)[1]
    # the credit file's reasons: every term, each group's cap after it, adding up to the score
    lines = score_reasons_zh(state.files[E].risk.current)
    points = [float(re.search(r" ([+-]\d+(?:\.\d+)?)（", line).group(1)) for line in lines]
    assert sum(points) == pytest.approx(state.files[E].risk.score)
    assert lines.index("动态因素上限 -5（合计 15 分，按上限 10 分计）") == 1


def test_a_sum_of_ratios_failure_the_lab_reported_as_a_pass_is_a_disagreement(rules):
    """Sorbic acid 0.6/1.0 and propionic acid 1.2/2.5 each within its limit, the lab's report 合格 on both:
    qrisk fails the sample on their sum (1.08).  The lab's report reads 合格 where qrisk fails — what a
    penalty resting on the sum must check with the lab — so it is a disagreement, named in Chinese."""
    import copy

    from schemas.upcast import parse_event
    from tests.conftest import golden

    reg = golden("enterprise.registered")
    reg["payload"]["category"] = "pastry"
    doc = golden("sampling.result")
    doc["payload"].update(product="蛋糕", items=[
        {"item_code": "sorbic_acid", "values": [0.6], "unit": "g/kg", "lab_verdict": "合格"},
        {"item_code": "propionic_acid", "values": [1.2], "unit": "g/kg", "lab_verdict": "合格"}])
    state, effects = replay([parse_event(reg), parse_event(doc)], rules)
    judgement = state.files[E].samples[0].judgement
    assert judgement.verdict == "fail" and [c.group for c in judgement.sum_checks if c.verdict == "fail"] == ["preservative"]
    assert judgement.disagreements == ("sum_of_ratios:preservative",)
    # the failure is qrisk's alone: its own alert (系统复核不合格) says the disagreement, named in Chinese, and no
    # second alert repeats it (one finding, one alert)
    assert not decisions(effects, "judgement.disagrees")
    [d] = decisions(effects, "sampling.unqualified")
    assert d.title_zh == "系统复核不合格（检验报告结论为合格）"
    assert "防腐剂" in d.message_zh and "sum_of_ratios" not in d.message_zh and "sorbic" not in d.message_zh
    # a lab that gave no verdict on the items has nothing to disagree with
    agreeing = copy.deepcopy(doc)
    agreeing["event_id"] = "5b1c2d3e-4f50-4a6b-8c7d-8e9f0a1b2c3d"
    for item in agreeing["payload"]["items"]:
        del item["lab_verdict"]
    state, effects = replay([parse_event(reg), parse_event(agreeing)], rules)
    assert state.files[E].samples[0].judgement.disagreements == () and not decisions(effects, "judgement.disagrees")


def test_a_sum_of_ratios_creeping_towards_one_warns_before_it_fails(rules):
    """The planted pastry problem: preservatives creeping 0.87, 0.92 … towards the GB 2760 sum of 1, each
    additive within its own limit.  No chart holds the sum; without this the first word was the failure."""
    from schemas.upcast import parse_event
    from tests.conftest import golden

    reg = golden("enterprise.registered")
    reg["payload"]["category"] = "pastry"

    def cake(eid: str, sorbic: float, propionic: float, day: str):
        doc = golden("sampling.result")
        doc["event_id"], doc["occurred_at"] = eid, f"{day}T10:00:00+08:00"
        doc["payload"].update(product="蛋糕", sample_no=f"DC{eid[:8]}", sampled_on=day, production_date=day, items=[
            {"item_code": "sorbic_acid", "values": [sorbic], "unit": "g/kg", "lab_verdict": "合格"},
            {"item_code": "propionic_acid", "values": [propionic], "unit": "g/kg", "lab_verdict": "合格"}])
        return parse_event(doc)

    low = cake("11111111-1111-4111-8111-111111111111", 0.3, 0.5, "2026-02-07")     # 0.50: nothing to say
    near = cake("22222222-2222-4222-8222-222222222222", 0.5, 0.9, "2026-03-04")    # 0.86
    nearer = cake("33333333-3333-4333-8333-333333333333", 0.6, 0.8, "2026-04-04")  # 0.92
    _, effects = replay([parse_event(reg), low, near, nearer], rules)
    found = decisions(effects, "sampling.near_limit")
    assert [d.evidence["event_ids"][0] for d in found] == [str(near.event_id), str(nearer.event_id)]
    assert len({d.dedup_key for d in found}) == 1  # one problem: the alerts stage groups its repeats
    assert "比例之和为 0.86（限值 1）" in found[0].message_zh and found[0].severity == "low"
    off = Rules(rules.catalogue, Policy.model_validate({"warnings": {"near_limit": {"fraction": 0.9}}}))
    _, effects = replay([parse_event(reg), low, near, nearer], off)
    assert [d.evidence["event_ids"][0] for d in decisions(effects, "sampling.near_limit")] == [str(nearer.event_id)]


def test_a_failure_on_an_item_failed_before_is_said_as_repeated_and_more_severe(rules):
    """W03 of the demo failed on 铜绿假单胞菌 eight times in a row, each rectification 复查合格: the
    supervisor needs 屡次不合格 said, with the earlier samples, and the alert raised a level."""
    from tests.test_fold import _sample

    first = pa_sample("2026-01-12T15:20:00+08:00", sample_no="DC-R1")
    second = pa_sample("2026-04-12T15:20:00+08:00", sample_no="DC-R2")
    third = pa_sample("2026-07-12T15:20:00+08:00", sample_no="DC-R3")
    _, effects = replay([registered(), first, second, third], rules)
    found = decisions(effects, "sampling.unqualified")
    assert [d.severity for d in found] == ["critical", "critical", "critical"]  # a pathogen: critical already
    assert "屡次不合格" not in found[0].message_zh
    assert "同一项目第 3 次抽检不合格（此前：2026-01-12 抽样编号 DC-R1、2026-04-12 抽样编号 DC-R2）" in found[2].message_zh
    assert found[2].evidence["repeat_of"] == [str(first.event_id), str(second.event_id)]
    # nothing was ordered between them: no word of a rectification that did not work
    assert "属屡次不合格：建议约谈企业负责人" in found[2].message_zh and "整改未见成效" not in found[2].message_zh
    # a rectification ordered after the first failure and completed before the next sampling did not work: said, by its id
    ordered = ev("rectification.ordered", "2026-02-01T09:00:00+08:00", rectification_id="ZG-R1", what="排查水处理工艺", deadline="2026-03-01",
                 cause="抽样编号 DC-R1 铜绿假单胞菌不合格")
    completed = ev("rectification.completed", "2026-02-25T09:00:00+08:00", rectification_id="ZG-R1", evidence="整改报告")
    _, effects = replay([registered(), first, ordered, completed, second], rules)
    assert "此前责令的整改（ZG-R1）完成后再次不合格，整改未见成效：" in decisions(effects, "sampling.unqualified")[1].message_zh
    # an order about something else, or a completion the bureau rejected, is not that rectification
    label = ev("rectification.ordered", "2026-02-01T09:00:00+08:00", rectification_id="ZG-LABEL", what="规范标签标识", deadline="2026-03-01",
               cause="现场检查 JC-9")
    label_done = ev("rectification.completed", "2026-02-25T09:00:00+08:00", rectification_id="ZG-LABEL", evidence="新标签")
    rejected = ev("rectification.verified", "2026-02-27T09:00:00+08:00", rectification_id="ZG-R1", accepted=False, note="复查未通过")
    for log in ([registered(), first, label, label_done, second], [registered(), first, ordered, completed, rejected, second]):
        _, effects = replay(log, rules)
        assert "属屡次不合格：" in decisions(effects, "sampling.unqualified")[1].message_zh and "未见成效" not in decisions(effects, "sampling.unqualified")[1].message_zh
    # more than three before: how many, and the latest three
    more = [pa_sample(f"2026-0{m}-12T15:20:00+08:00", sample_no=f"DC-M{m}") for m in range(1, 6)]
    _, effects = replay([registered(), *more], rules)
    assert "第 5 次抽检不合格（此前 4 批，最近 3 批：2026-02-12 抽样编号 DC-M2、" in decisions(effects, "sampling.unqualified")[4].message_zh
    # a bromate failure (a contaminant: high) failed again is critical; outside the window it is not a repeat
    b1 = _sample("2026-01-10T09:00:00+08:00", False, False, sample_no="DC-B10", sampled_on="2026-01-05", production_date="2026-01-01")
    b2 = _sample("2026-06-10T09:00:00+08:00", False, False, sample_no="DC-B11", sampled_on="2026-06-05", production_date="2026-06-01")
    _, effects = replay([registered(), b1, b2], rules)
    assert [d.severity for d in decisions(effects, "sampling.unqualified")] == ["high", "critical"]
    short = Rules(rules.catalogue, Policy.model_validate({"warnings": {"sampling_unqualified": {"repeat_within_days": 30}}}))
    _, effects = replay([registered(), b1, b2], short)
    assert [d.severity for d in decisions(effects, "sampling.unqualified")] == ["high", "high"]


def test_negated_illness_words_and_same_day_samples_raise_nothing_extra(rules):
    from processors.warnings import _illness_words
    from tests.test_fold import _sample

    words = rules.policy.warnings.complaint_illness.keywords
    for text in ("没有腹泻", "未出现腹泻、呕吐等症状", "无明显腹泻", "并无不适，未就医", "面包里吃出苍蝇，太恶心了"):
        assert _illness_words(text, words) == [], text
    assert _illness_words("饮用后腹泻、呕吐，已就医", words) == ["腹泻", "呕吐", "就医"]
    # two samples of one sampling day: the second is no 屡次不合格 (nobody had the first result to act on)
    a = _sample("2026-01-10T09:00:00+08:00", False, False, sample_no="DC-S1", sampled_on="2026-01-05", production_date="2026-01-01")
    b = _sample("2026-01-10T10:00:00+08:00", False, False, sample_no="DC-S2", sampled_on="2026-01-05", production_date="2026-01-01")
    _, effects = replay([registered(), a, b], rules)
    assert [d.severity for d in decisions(effects, "sampling.unqualified")] == ["high", "high"]


def test_a_lab_that_reported_the_failing_sum_itself_agrees(rules):
    from schemas.upcast import parse_event
    from tests.conftest import golden

    reg = golden("enterprise.registered")
    reg["payload"]["category"] = "pastry"
    doc = golden("sampling.result")
    doc["payload"].update(product="蛋糕", items=[
        {"item_code": "sorbic_acid", "values": [0.6], "unit": "g/kg", "lab_verdict": "合格"},
        {"item_code": "propionic_acid", "values": [1.2], "unit": "g/kg", "lab_verdict": "合格"},
        {"item_code": "preservative_ratio_sum", "values": [1.08], "unit": "无量纲", "lab_verdict": "不合格"}])
    state, effects = replay([parse_event(reg), parse_event(doc)], rules)
    assert state.files[E].samples[0].judgement.disagreements == ()
    [d] = decisions(effects, "sampling.unqualified")
    assert d.message_zh.count("防腐剂混合使用时各自用量占其最大使用量的比例之和、") == 0  # named once in 不合格项目


@pytest.mark.parametrize("code, value", [("bromate", 0.02), ("cyanide", 0.08), ("chloroform", 0.05), ("carbon_tetrachloride", 0.005)])
def test_toxic_water_chemistry_alerts_as_a_contaminant_not_as_ph(rules, code, value):
    """A regulator's finding: 氰化物 0.08 mg/L (limit 0.05) alerted as medium (168 h), as pH 4.8 does, while 铝 over
    its limit in a pastry was high.  溴酸盐, 氰化物, 三氯甲烷 and 四氯化碳 are toxic or carcinogenic safety limits of
    GB 19298: contaminants (high, 12 risk points), not quality indicators (medium, 6)."""
    assert rules.catalogue.item("packaged_water", code).item_class == "contaminant"
    assert rules.catalogue.item("packaged_water", "free_chlorine").item_class == "chemical"  # (a process indicator stays one)
    doc = golden("sampling.result")
    items = [i for i in doc["payload"]["items"] if i["item_code"] not in ("bromate", code)]
    for i in items:
        if i["item_code"] == "pseudomonas_aeruginosa":
            i["values"], i["lab_verdict"] = [0, 0, 0, 0, 0], "合格"
    items.append({"item_code": code, "item_name": code, "values": [value], "unit": "mg/L", "lab_verdict": "不合格"})
    doc["payload"].update(items=items, product="饮用纯净水")
    _, effects = replay([registered(), parse_event(doc)], rules)
    (d,) = decisions(effects, "sampling.unqualified")
    assert d.severity == "high" and d.evidence["item_class"] == "contaminant"


def test_a_better_grade_gives_no_grace_to_an_inspection_already_overdue(rules):
    """D (an inspection every ~4 months) overdue since June; in September a failure is retracted and the grade
    improves to C (every 6 months), whose interval ran out in August too: the 30 days' grace after a change is
    for a grade that shortens the interval, so the inspection stays overdue — it read 'due 10-01, not overdue'."""
    from tests.test_retraction import retraction

    events = [registered("2025-01-02T09:00:00+08:00"),
              ev("inspection.completed", "2025-02-01T10:00:00+08:00", inspection_id="I1", result="符合", findings=[]),
              pa_sample("2025-03-10T10:00:00+08:00", sample_no="S-1"), pa_sample("2025-03-20T10:00:00+08:00", sample_no="S-2")]
    state, _ = replay(events, rules)
    f = state.files[E]
    assert f.risk.grade == "D" and f.risk.next_inspection_due == dt.date(2025, 2, 1) + dt.timedelta(days=121)  # D: 365 / 3 rounded down
    state, _ = step(state, retraction("S-2", at="2025-09-01T09:00:00+08:00"), rules)
    f = state.files[E]
    assert f.risk.grade == "C"
    assert f.risk.next_inspection_due == dt.date(2025, 2, 1) + dt.timedelta(days=182)  # 2025-08-02: overdue still
    state, effects = step(state, ev("clock.tick", "2025-09-02T12:00:00+08:00", enterprise_id="*"), rules)
    assert state.files[E].risk.next_inspection_due == dt.date(2025, 8, 2)


def test_an_illness_complaint_found_unfounded_before_it_was_verified_closes_its_early_warning(rules):
    """The 待核实 alert of a complaint the inspector found 不属实 closes, as a verified one's does."""
    state, effects = replay([registered(), illness("2026-03-20T11:02:00+08:00", "TS5", verified=False)], rules)
    [early] = decisions(effects, "complaint.illness")
    state, effects = step(state, ev("complaint.resolved", "2026-03-22T16:00:00+08:00", complaint_id="TS5", verified=False, outcome="不属实"), rules)
    [closed] = [e.data for e in effects if e.kind == "warning.resolved"]
    assert closed["dedup_key"] == early.dedup_key and "不属实" in closed["note_zh"]
    assert state.files[E].risk.entries == [] and state.files[E].counts.complaints_verified == 0
    # a complaint of something else, unverified: no early warning
    _, effects = replay([registered(), ev("complaint.received", "2026-03-20T11:02:00+08:00", complaint_id="TS6", verified=False,
                                          category="foreign_matter", text="水中有异物。")], rules)
    assert not decisions(effects, "complaint.illness")
    # the policy may keep it for verified complaints only
    only_verified = Rules(rules.catalogue, Policy.model_validate({"warnings": {"complaint_illness": {"severity_unverified": None}}}))
    _, effects = replay([registered(), illness("2026-03-20T11:02:00+08:00", "TS7", verified=False)], only_verified)
    assert not decisions(effects, "complaint.illness")


def test_a_rise_lists_the_terms_that_fell_or_left_so_the_changes_add_up():
    """P02 read 抽检不合格 +15 beside 风险分 26 → 39: a term that had run out or fallen was not said, and the
    reader's sum did not come out.  Here a good inspection's −2 runs out and a complaint's +2 leaves."""
    import datetime as dt
    import re

    from processors.risk import Contribution, GradeEntry
    from processors.warnings import rise_reasons_zh

    at = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)

    def entry(score, *terms):
        return GradeEntry(as_of=at, cause_event_id="e", score=score, static=26, dynamic=score - 26, credit=0, band="B", grade="B",
                          contributions=[Contribution(f, label, p, p, 1, detail) for f, label, p, detail in terms])

    static = ("static.category", "食品类别", 26.0, "包装饮用水")
    before = entry(26.0, static, ("dynamic.inspection_good", "现场检查符合", -2.0, "2025-02-01 检查符合"),
                   ("dynamic.complaints", "核实投诉", 2.0, "1 件"))
    after = entry(41.0, static, ("dynamic.sampling_failed", "抽检不合格", 15.0, "DC-1 铜绿假单胞菌"))
    said = rise_reasons_zh(after, before)
    assert said[0] == "抽检不合格 +15（DC-1 铜绿假单胞菌；较上次评定 +15）"
    assert "现场检查符合 不再计入（此前 -2：2025-02-01 检查符合；较上次评定 +2）" in said
    assert "核实投诉 不再计入（此前 +2：1 件；较上次评定 -2）" in said
    assert said[-1].startswith("风险分 26 → 41")
    # the changes listed add up to the difference
    deltas = [float(m) for s in said[:-1] for m in re.findall(r"较上次评定 ([+-]\d+(?:\.\d+)?)", s)]
    assert sum(deltas) == 41 - 26


def test_a_cap_that_loosened_is_said_beside_the_term_that_fell():
    """A dynamic term fell 10 → 8 under a cap that loosened −5 → −3, and the credit grew +10: the cap's +2 was not
    said, and the changes listed came to 8 where the score rose 10."""
    import datetime as dt
    import re

    from processors.risk import Contribution, GradeEntry
    from processors.warnings import rise_reasons_zh

    at = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)

    def entry(score, *terms):
        return GradeEntry(as_of=at, cause_event_id="e", score=score, static=20, dynamic=0, credit=0, band="B", grade="B",
                          contributions=[Contribution(f, label, p, p, 1, detail) for f, label, p, detail in terms])

    before = entry(45.0, ("static.category", "食品类别", 20.0, "糕点"), ("dynamic.complaints", "核实投诉", 10.0, "5 件"),
                   ("dynamic.cap", "动态因素上限", -5.0, "上限 5"), ("credit.x", "信用", 20.0, "x"))
    after = entry(55.0, ("static.category", "食品类别", 20.0, "糕点"), ("dynamic.complaints", "核实投诉", 8.0, "4 件"),
                  ("dynamic.cap", "动态因素上限", -3.0, "上限 5"), ("credit.x", "信用", 30.0, "x"))
    said = rise_reasons_zh(after, before)
    assert any(s.startswith("动态因素上限 -3（上限 5；较上次评定 +2）") for s in said), said
    deltas = [float(m) for s in said[:-1] for m in re.findall(r"较上次评定 ([+-]\d+(?:\.\d+)?)", s)]
    assert sum(deltas) == 55 - 45
