"""A corrected report that still fails moves its alert's evidence, and a lab's 不合格 the failure alert names raises
no low disagreement beside it.

1. A lab corrects a failing report so that the sample still fails, on other items or values.  The open 抽检不合格
   alert kept the withdrawn items and figures in its message and evidence (only the grade was weighed again), so a
   supervisor acted on a figure the lab withdrew.  Now the alert keeps its id and state, takes the corrected report's
   evidence, message and severity, records a step 报告更正：… and its receivers are told (预警证据更正).
2. A sample qrisk fails on one item while the lab fails another qrisk passes: the failure alert lists the lab's item
   (检验机构判定…不合格，系统复核为合格), and a low 判定与检验机构结论不一致 alert for that same item was opened beside it,
   for a supervisor to close by hand.  The disagreement stays in the judgement; the alert is the failure's."""
from __future__ import annotations

import copy
import uuid

from processors.warnings import ALERT_KIND, AlertDecision
from schemas.upcast import parse_event
from tests.conftest import golden, lab_source
from tests.test_alerts import County, act, policy
from tests.test_risk import E, registered

_n = 0

PA_FAIL = [45, 59, 8, 61, 10]
PA_PASS = [0, 0, 0, 0, 0]


def report(at: str, pa=PA_FAIL, bromate=0.02, chlorine=0.01, chlorine_verdict: str = "合格", sample_no: str = "EV-1",
           bromate_verdict: str | None = None):
    """The golden water sample, 铜绿假单胞菌 (a pathogen) and 溴酸盐 (a contaminant) as given."""
    global _n
    _n += 1
    doc = golden("sampling.result")
    doc["event_id"], doc["occurred_at"] = str(uuid.UUID(int=0x5E00_0000 + _n, version=4)), at
    items = copy.deepcopy(doc["payload"]["items"])
    items[0].update(values=list(pa), lab_verdict="不合格" if max(pa) > 0 else "合格")
    items[1].update(values=[chlorine], lab_verdict=chlorine_verdict)
    items[2].update(values=[bromate], lab_verdict=bromate_verdict or ("不合格" if bromate != "ND" and bromate > 0.01 else "合格"))
    doc["payload"].update(items=items, sample_no=sample_no)
    doc["source"] = lab_source(doc["payload"]["lab"])
    return parse_event(doc)


def county(rules) -> County:
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    return c


def failure_alerts(c: County):
    return [a for a in c.book.alerts.values() if a.rule == "sampling.unqualified"]


def decisions(changes_or_effects, rule: str) -> list[AlertDecision]:
    return [d for d in (AlertDecision.model_validate(e.data) for e in changes_or_effects if e.kind == ALERT_KIND) if d.rule == rule]


# --------------------------------------------------------------------------- 1. fail → fail corrections


def test_a_correction_withdrawing_one_failed_item_moves_the_alerts_evidence_and_tells_its_receivers(rules):
    c = county(rules)
    first = report("2026-03-12T15:20:00+08:00", pa=PA_FAIL, bromate=0.02)
    c.feed(first)
    (alert,) = failure_alerts(c)
    assert alert.evidence["failed_items"] == ["pseudomonas_aeruginosa", "bromate"] and "0.02 mg/L" in alert.message_zh
    c.feed(act(alert.alert_id, "acknowledge", "2026-03-12T17:00:00+08:00"))
    # the lab's correction: 溴酸盐 was a transcription error (not detected); 铜绿假单胞菌 still fails
    fixed = report("2026-03-13T10:00:00+08:00", pa=PA_FAIL, bromate="ND")
    changes = c.feed(fixed)

    (same,) = failure_alerts(c)
    assert same.alert_id == alert.alert_id and same.state == "acknowledged" and same.occurrences == 1
    assert not [ch for ch in changes if ch.step.action == "opened"]  # no second opening notice
    assert same.evidence["failed_items"] == ["pseudomonas_aeruginosa"]
    assert same.evidence["event_ids"] == [str(fixed.event_id)] and same.evidence["corrected_from"] == str(first.event_id)
    assert [f["item_code"] for f in same.evidence["failed"]] == ["pseudomonas_aeruginosa"]
    assert "溴酸盐" not in same.message_zh and "0.02" not in same.message_zh and "铜绿假单胞菌" in same.message_zh
    assert str(fixed.event_id) in same.event_ids
    # the step says what changed
    step = same.steps[-1]
    assert step.action == "comment" and step.actor == "qrisk" and step.event_id == str(fixed.event_id)
    assert step.note.startswith("报告更正：") and "溴酸盐由 0.02 mg/L 改为 未检出" in step.note and "结论仍为不合格" in step.note
    # the receivers are told, with the alert as it reads now
    (change,) = [ch for ch in changes if ch.alert.alert_id == alert.alert_id]
    assert [(n.receiver, n.reason) for n in change.notifications] == [("liangzhu", "evidence_corrected"), ("desk", "evidence_corrected")]
    note = change.notifications[0]
    assert "（预警证据更正）" in note.subject_zh
    assert "报告更正：" in note.text_zh and "请核对此前据原报告采取的措施" in note.text_zh
    assert "溴酸盐 检测值" not in note.text_zh and "铜绿假单胞菌 检测值" in note.text_zh


def test_a_corrected_value_is_the_alerts_value(rules):
    c = county(rules)
    c.feed(report("2026-03-12T15:20:00+08:00", pa=PA_PASS, bromate=0.02))
    (alert,) = failure_alerts(c)
    c.feed(report("2026-03-13T10:00:00+08:00", pa=PA_PASS, bromate=0.03))
    (same,) = failure_alerts(c)
    assert same.alert_id == alert.alert_id and same.occurrences == 1
    (bromate,) = same.evidence["failed"]
    assert bromate["values"] == [0.03] and "0.03 mg/L" in same.message_zh and "0.02 mg/L" not in same.message_zh
    assert "溴酸盐由 0.02 mg/L 改为 0.03 mg/L" in same.steps[-1].note


def test_the_severity_follows_the_corrected_report(rules):
    c = county(rules)
    c.feed(report("2026-03-12T15:20:00+08:00", pa=PA_FAIL, bromate=0.02))
    (alert,) = failure_alerts(c)
    assert alert.severity == "critical"  # the pathogen
    c.feed(report("2026-03-13T10:00:00+08:00", pa=PA_PASS, bromate=0.02))  # the pathogen's counts were another sample's
    (same,) = failure_alerts(c)
    assert same.alert_id == alert.alert_id and same.severity == "high"  # the contaminant left
    assert "预警级别由紧急改为高" in same.steps[-1].note
    assert same.evidence["failed_items"] == ["bromate"]


def test_a_settled_alert_takes_the_corrected_evidence_and_tells_nobody(rules):
    c = county(rules)
    c.feed(report("2026-03-12T15:20:00+08:00", pa=PA_PASS, bromate=0.02))
    (alert,) = failure_alerts(c)
    c.feed(act(alert.alert_id, "close", "2026-03-12T18:00:00+08:00", note="已责令下架并立案"))
    changes = c.feed(report("2026-03-13T10:00:00+08:00", pa=PA_PASS, bromate=0.03))
    (same,) = failure_alerts(c)
    assert same.state == "closed" and same.evidence["failed"][0]["values"] == [0.03]
    assert same.steps[-1].note.startswith("报告更正：")
    assert not [n for ch in changes for n in ch.notifications]


def test_the_effect_says_the_failure_is_the_same_samples_on_its_corrected_report(rules):
    from alerts.messages import effect_title_zh, message_zh
    from processors.step import replay

    first = report("2026-03-12T15:20:00+08:00", pa=PA_PASS, bromate=0.02)
    fixed = report("2026-03-13T10:00:00+08:00", pa=PA_PASS, bromate=0.03)
    state, effects = replay([registered(), first, fixed], rules)
    (failed,) = [e for e in effects if e.event_id == str(fixed.event_id) and e.kind == "sampling.failed"]
    assert failed.data["corrects_event_id"] == str(first.event_id)
    assert effect_title_zh(failed) == "抽检不合格（报告更正）" and "检验报告更正后仍不合格" in message_zh(failed)
    assert [x[1] for x in state.files[E].risk.entries].count("sampling_failed") == 1  # still one failure in the grade
    (raised,) = [d for d in decisions([e for e in effects if e.event_id == str(fixed.event_id)], "sampling.unqualified")]
    assert raised.evidence["corrected_from"] == str(first.event_id)


def test_the_labs_failure_of_an_item_qrisk_passes_corrected_moves_its_alert(rules):
    c = county(rules)
    # 余氯 at the limit the lab failed (rounded): the lab's 不合格 holds the sample (judgement.lab_failed_passed)
    c.feed(report("2026-03-12T15:20:00+08:00", pa=PA_PASS, bromate="ND", chlorine=0.05, chlorine_verdict="不合格"))
    (alert,) = [a for a in c.book.alerts.values() if a.rule == "judgement.lab_failed_passed"]
    assert alert.evidence["items"][0]["values"] == [0.05]
    c.feed(report("2026-03-13T10:00:00+08:00", pa=PA_PASS, bromate="ND", chlorine=0.048, chlorine_verdict="不合格"))
    (same,) = [a for a in c.book.alerts.values() if a.rule == "judgement.lab_failed_passed"]
    assert same.alert_id == alert.alert_id and same.occurrences == 1
    assert same.evidence["items"][0]["values"] == [0.048] and "0.048 mg/L" in same.message_zh
    assert same.steps[-1].note.startswith("报告更正：") and "0.048" in same.steps[-1].note


# --------------------------------------------------------------------------- 2. no low disagreement beside the failure


def test_a_labs_failure_qrisk_passes_beside_qrisks_own_failure_raises_no_disagreement_alert(rules):
    from processors.step import replay

    s = report("2026-03-12T15:20:00+08:00", pa=PA_PASS, bromate=0.02, chlorine=0.05, chlorine_verdict="不合格")
    state, effects = replay([registered(), s], rules)
    j = state.files[E].samples[0].judgement
    assert j.verdict == "fail" and j.disagreements == ("free_chlorine",)  # the judgement keeps the disagreement
    assert [e.data["items"] for e in effects if e.kind == "judgement.disagrees_with_lab"] == [["free_chlorine"]]
    assert not decisions(effects, "judgement.disagrees")
    (failure,) = decisions(effects, "sampling.unqualified")
    assert failure.evidence["failed_items"] == ["bromate", "free_chlorine"]
    (chlorine,) = [f for f in failure.evidence["failed"] if f["item_code"] == "free_chlorine"]
    assert (chlorine["lab_verdict"], chlorine["verdict"]) == ("fail", "pass")
    assert "检验机构判定余氯（游离氯）不合格，系统复核为合格" in failure.message_zh


def test_a_disagreement_the_failure_alert_does_not_cover_still_alerts(rules):
    from processors.step import replay

    # the lab passes 溴酸盐 at 0.02 mg/L (qrisk fails it) and fails 铜绿假单胞菌 (as qrisk does): the failure alert
    # does not say the lab passed 溴酸盐, so the disagreement about it stays an alert
    s = report("2026-03-12T15:20:00+08:00", pa=PA_FAIL, bromate=0.02, bromate_verdict="合格")
    _, effects = replay([registered(), s], rules)
    (low,) = decisions(effects, "judgement.disagrees")
    assert low.evidence["items"] == ["bromate"]


# --------------------------------------------------------------------------- 3. the correction's alert, in every case


def test_a_second_correction_of_a_failure_the_labs_item_carries_stays_on_its_alert(rules):
    c = county(rules)
    # qrisk and the lab fail 溴酸盐; the lab also fails 余氯 0.05, which qrisk passes: one 抽检不合格 alert
    c.feed(report("2026-03-12T15:20:00+08:00", pa=PA_PASS, bromate=0.02, chlorine=0.05, chlorine_verdict="不合格"))
    (alert,) = failure_alerts(c)
    # 溴酸盐 corrected to not detected: the lab's 余氯 failure carries the alert on
    c.feed(report("2026-03-13T10:00:00+08:00", pa=PA_PASS, bromate="ND", chlorine=0.05, chlorine_verdict="不合格"))
    # 余氯 corrected to 0.048, the lab failing it still: the same alert takes the figure, no second one opens
    changes = c.feed(report("2026-03-14T10:00:00+08:00", pa=PA_PASS, bromate="ND", chlorine=0.048, chlorine_verdict="不合格"))
    assert not [ch for ch in changes if ch.step.action == "opened"]
    assert not [a for a in c.book.alerts.values() if a.rule == "judgement.lab_failed_passed"]
    active = [a for a in c.book.alerts.values() if a.state not in ("closed", "verified")]
    assert [a.alert_id for a in active] == [alert.alert_id]
    assert "检测值0.048 mg/L" in alert.message_zh and "检测值0.05 mg/L" not in alert.message_zh
    assert alert.steps[-1].note.startswith("报告更正：") and "0.048" in alert.steps[-1].note
    assert [f["values"] for f in alert.evidence["failed"]] == [[0.048]]


def test_correcting_the_retest_that_upheld_a_repeat_failure_keeps_it_urgent(rules):
    from tests.test_corrections import sample

    c = county(rules)
    c.feed(sample("2026-02-10T09:00:00+08:00", passes=False, sample_no="RP-0", sampled_on="2026-02-05"),
           sample("2026-03-10T09:00:00+08:00", passes=False, sample_no="RP-1", sampled_on="2026-03-05"))
    (alert,) = [a for a in failure_alerts(c) if a.evidence.get("sample_no") == "RP-1"]
    assert alert.severity == "critical" and "屡次不合格" in alert.message_zh  # 溴酸盐 (high) again within the window
    c.feed(sample("2026-03-25T09:00:00+08:00", passes=False, retest=True, sample_no="RP-1", sampled_on="2026-03-05"))
    c.feed(sample("2026-03-27T09:00:00+08:00", passes=False, retest=True, bromate=0.03, sample_no="RP-1", sampled_on="2026-03-05"))
    assert alert.steps[-1].note.startswith("报告更正：") and "0.03 mg/L" in alert.message_zh
    assert alert.severity == "critical" and "屡次不合格" in alert.message_zh and "预警级别" not in alert.steps[-1].note
    assert alert.evidence["repeat_of"]


def test_a_correction_raising_an_acknowledged_alerts_severity_shortens_its_time_to_handle(rules):
    import datetime as dt

    from tests.test_risk import ev

    c = county(rules)
    c.feed(report("2026-03-12T15:20:00+08:00", pa=PA_PASS, bromate=0.02))  # 溴酸盐 only: high, 168 h to handle
    (alert,) = failure_alerts(c)
    c.feed(act(alert.alert_id, "acknowledge", "2026-03-12T17:00:00+08:00"))
    # the lab corrects: the pathogen was missed — critical, handled within 72 h of when it could be seen
    c.feed(report("2026-03-13T10:00:00+08:00", pa=PA_FAIL, bromate=0.02))
    assert alert.severity == "critical"
    assert alert.handle_by <= dt.datetime.fromisoformat("2026-03-13T10:00:00+08:00") + dt.timedelta(hours=72)
    [up] = [ch for ch in c.feed(ev("clock.tick", "2026-03-16T11:00:00+08:00", enterprise_id="*")) if ch.alert is alert]
    assert up.step.action == "handling_overdue" and alert.handling_escalated


def test_a_correction_of_a_sample_whose_alert_left_the_book_long_settled_opens_nothing(rules):
    from tests.test_risk import ev

    c = county(rules)
    c.feed(report("2026-03-12T15:20:00+08:00", pa=PA_PASS, bromate=0.02))
    (alert,) = failure_alerts(c)
    c.feed(act(alert.alert_id, "close", "2026-03-12T18:00:00+08:00", note="已责令下架并立案"))
    c.feed(ev("clock.tick", "2026-06-15T09:00:00+08:00", enterprise_id="*"))  # 95 days on: closed_kept_days (90) pruned it
    assert not failure_alerts(c)
    changes = c.feed(report("2026-06-15T10:00:00+08:00", pa=PA_PASS, bromate=0.03))
    assert not [ch for ch in changes if ch.alert.rule == "sampling.unqualified"]
    assert not failure_alerts(c) and not [n for ch in changes for n in ch.notifications]
