"""The alerts stage acting on what the credit file made of a verification or a record sent again.

The credit file keeps every verification of a rectification: a rejection after an acceptance reverses it
(rectification.verification_reversed), and an earlier-dated one arriving after the one in force changes nothing
(rectification.verification_outdated).  An interview or inspection id sent again is one record (…repeated, …outdated).
The alerts stage reacted to the events themselves: the alert the reversed acceptance verified stayed 整改复查通过, a
late earlier-dated acceptance verified the alerts of a rectification the re-check in force had rejected, and an
interview resent added another 约谈 step to the alerts it cited.  The fold first (tests/test_alerts.py's harness),
then a real `qrisk run` with a real mail server and webhook."""
from __future__ import annotations

import uuid

import pytest

from processors.step import step
from schemas.upcast import parse_event
from tests.test_alerts import County, act, failing, policy
from tests.test_alert_township_review import _mails, served  # noqa: F401 - fixture (real mail server, webhook)
from tests.test_risk import ev, registered

R = "ZG-T01-01"
JC = "JC-T01-0410"
MAJOR = [{"code": "3.2", "description": "灌装车间空气消毒记录不全", "severity": "major"}]


@pytest.fixture
def county(rules):
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    return c


def inspected(at: str = "2026-04-10T10:00:00+08:00", findings=MAJOR, result: str = "不符合"):
    return ev("inspection.completed", at, inspection_id=JC, result=result, findings=findings)


def ordered(deadline: str = "2026-04-30"):
    return ev("rectification.ordered", "2026-04-10T11:00:00+08:00", rectification_id=R, deadline=deadline, cause=f"检查 {JC}")


def completed(at: str = "2026-04-28T09:00:00+08:00"):
    return ev("rectification.completed", at, rectification_id=R)


def accepted(at: str = "2026-05-05T14:00:00+08:00"):
    return ev("rectification.verified", at, rectification_id=R, accepted=True, verifier="王检查员", note="复查合格")


def rejected(at: str = "2026-05-20T14:00:00+08:00", new_deadline: str | None = "2026-06-20"):
    return ev("rectification.verified", at, rectification_id=R, accepted=False, verifier="李科长", note="抽查发现消毒记录系补填",
              **({"new_deadline": new_deadline} if new_deadline else {}))


def again(event):
    """The same event under a new event id: a send attempt made anew."""
    return parse_event({**event.model_dump(mode="json", exclude_unset=True), "event_id": str(uuid.uuid4())})


def the(county, rule: str):
    [alert] = [a for a in county.book.alerts.values() if a.rule == rule]
    return alert


REVERSED = "整改 ZG-T01-01 于 2026-05-05 经王检查员复查通过，该结论已被 2026-05-20 的复查撤销（李科长复查未通过；复查意见：抽查发现消毒记录系补填）"


# --------------------------------------------------------------------------- 1. an acceptance taken back


def test_an_acceptance_taken_back_puts_the_alert_it_verified_back_under_rectification(county):
    county.feed(inspected(), ordered(), completed(), accepted())
    alert = the(county, "inspection.nonconforming")
    assert alert.state == "verified" and alert.dedup_key not in county.book.active_by_key
    answered = alert.acknowledged_at
    no = rejected()
    [change] = [c for c in county.feed(no) if c.alert is alert]
    # 整改中: what a rejected re-check leaves an alert under rectification in, not 待处置 (the bureau has answered it)
    assert (alert.state, change.step.action, change.step.from_state, change.step.to_state) == (
        "rectifying", "verification_reversed", "verified", "rectifying")
    assert change.step.note == REVERSED + "，重新限期 2026-06-20" and change.step.event_id == str(no.event_id)
    assert county.book.active_by_key[alert.dedup_key] == alert.alert_id, "being handled again: a repeat joins it"
    assert alert.acknowledged_at == answered and alert.closed_at is None
    assert alert.view()["steps"][-1]["action_zh"] == "复查通过被撤销"
    # its receivers had it as settled: told as a reopening tells them, by the re-check, not by the system that sent it
    assert [(n.receiver, n.reason) for n in change.notifications] == [("liangzhu", "reopened"), ("desk", "reopened")]
    note = change.notifications[0]
    assert note.subject_zh == "【高·现场检查发现问题】清源桶装水厂（预警重新打开）"
    lines = note.text_zh.splitlines()
    assert lines[0] == "预警重新打开：现场检查发现问题"
    assert f"重新打开：{REVERSED}，重新限期 2026-06-20（2026-05-20 14:00）" in lines and "状态：整改中" in lines
    assert not any("确认处置" in line for line in lines), "under rectification: nobody is asked to acknowledge it"
    # the rejection's own alert is raised beside it, as before
    assert the(county, "rectification.rejected").state == "open"
    # under rectification it does not escalate for want of a response; the redo's acceptance verifies it again
    county.feed(ev("clock.tick", "2026-06-10T00:00:00+08:00", enterprise_id="*"))
    assert alert.state == "rectifying" and not any(s.action == "escalated" for s in alert.steps)
    county.feed(completed("2026-06-15T09:00:00+08:00"), accepted("2026-06-18T10:00:00+08:00"))
    assert alert.state == "verified" and alert.steps[-1].action == "verify"


def test_the_overdue_warning_an_acceptance_closed_is_taken_up_again_and_what_a_supervisor_settled_since_stands(county):
    county.feed(inspected(), ordered(), ev("clock.tick", "2026-05-02T01:00:00+08:00", enterprise_id="*"),
                completed("2026-05-03T09:00:00+08:00"), accepted())
    overdue, found = the(county, "rectification.overdue"), the(county, "inspection.nonconforming")
    assert (overdue.state, found.state) == ("closed", "verified")
    # the town reopened the inspection's alert and closed it again: that closing is the town's, not the acceptance's
    county.feed(act(found.alert_id, "reopen", "2026-05-10T09:00:00+08:00", note="回访发现记录补填"),
                act(found.alert_id, "close", "2026-05-12T09:00:00+08:00", note="已立案调查，另案处理"))
    changes = [c for c in county.feed(rejected(new_deadline=None)) if c.step.action == "verification_reversed"]
    assert [c.alert for c in changes] == [overdue]
    assert overdue.state == "rectifying" and overdue.closed_at is None and changes[0].step.note == REVERSED
    assert [n.reason for n in changes[0].notifications] == ["reopened"] * len(overdue.receivers) and overdue.receivers
    assert found.state == "closed" and found.steps[-1].action == "close"


def test_an_alert_whose_problem_a_newer_alert_handles_is_told_of_the_reversal_and_left(county):
    county.feed(inspected(), ordered(), completed(), accepted())
    old = the(county, "inspection.nonconforming")
    # the inspection's record corrected with a critical finding more: its problem raised again, a new alert
    county.feed(inspected("2026-04-10T12:00:00+08:00", MAJOR + [{"code": "4.1", "description": "生产用水未经消毒", "severity": "critical"}]))
    [newer] = [a for a in county.book.alerts.values() if a.rule == "inspection.nonconforming" and a is not old]
    [change] = [c for c in county.feed(rejected()) if c.alert is old]
    assert old.state == "verified" and change.step.action == "comment" and change.notifications == []
    assert change.step.note.endswith(f"；该问题已有新的预警 {newer.alert_id} 在处置") and REVERSED in change.step.note
    assert county.book.active_by_key[old.dedup_key] == newer.alert_id


def test_a_replay_reverses_the_same_alerts_and_tells_the_same_receivers(rules):
    log = [registered("2026-01-05T09:00:00+08:00"), inspected(), ordered(), ev("clock.tick", "2026-05-02T01:00:00+08:00", enterprise_id="*"),
           completed("2026-05-03T09:00:00+08:00"), accepted(), rejected(), ev("clock.tick", "2026-06-21T01:00:00+08:00", enterprise_id="*")]
    runs = []
    for _ in range(2):
        c = County(rules, policy())
        changes = c.feed(*log)
        runs.append((c.book.model_dump(mode="json"), [(ch.alert.alert_id, ch.step.version, [n.delivery_id for n in ch.notifications])
                                                      for ch in changes]))
    assert runs[0] == runs[1]
    reversed_ = {a["rule"] for a in runs[0][0]["alerts"].values() if any(s["action"] == "verification_reversed" for s in a["steps"])}
    assert reversed_ == {"inspection.nonconforming", "rectification.overdue"}


# --------------------------------------------------------------------------- 2. an earlier verification arriving late


def test_an_earlier_acceptance_arriving_after_the_rejection_in_force_moves_no_alert(county):
    county.feed(inspected(), ordered(), completed())
    alert = the(county, "inspection.nonconforming")
    county.feed(rejected())
    assert alert.state == "rectifying"
    steps = len(alert.steps)
    late = accepted()  # dated 05-05, before the rejection of 05-20, sent after it
    changes = county.feed(late)
    assert not [c for c in changes if c.step.event_id == str(late.event_id)]
    assert alert.state == "rectifying" and len(alert.steps) == steps and county.book.active_by_key[alert.dedup_key] == alert.alert_id
    assert the(county, "rectification.rejected").state == "open"
    assert county.state.files[alert.enterprise_id].rectification(R).status == "rejected"


def test_an_earlier_rejection_arriving_after_the_acceptance_in_force_moves_no_alert(county):
    county.feed(inspected(), ordered(), completed(), accepted())
    alert = the(county, "inspection.nonconforming")
    late = rejected("2026-05-01T10:00:00+08:00", new_deadline=None)
    changes = county.feed(late)
    assert not [c for c in changes if c.step.event_id == str(late.event_id)] and alert.state == "verified"


# --------------------------------------------------------------------------- 3. a record sent again


def _interviewed(county):
    failed = failing("2026-02-10T10:00:00+08:00")
    county.feed(failed)
    alert = the(county, "sampling.unqualified")
    held = ev("interview.held", "2026-02-13T10:00:00+08:00", interview_id="YT-1", held_on="2026-02-13",
              reason="监督抽检铜绿假单胞菌不合格", related_event_ids=[str(failed.event_id)], follow_up_by="2026-03-13")
    county.feed(held)
    assert alert.state == "acknowledged" and alert.steps[-1].event_id == str(held.event_id)
    return alert, held


def test_an_interview_sent_again_adds_nothing_to_the_alerts_it_answered(county):
    alert, held = _interviewed(county)
    steps = len(alert.steps)
    resent = again(held)
    assert county.feed(resent) == []
    assert len(alert.steps) == steps and not any(s.event_id == str(resent.event_id) for a in county.book.alerts.values() for s in a.steps)


def test_an_interview_record_dated_before_the_one_on_file_adds_nothing(county):
    alert, held = _interviewed(county)
    steps = len(alert.steps)
    # held and recorded before the record on file, sent after it: outdated whether the newer record is told by its
    # held_on or by when it was recorded
    older = ev("interview.held", "2026-02-12T18:00:00+08:00", interview_id="YT-1", held_on="2026-02-12",
               reason="监督抽检铜绿假单胞菌不合格（初稿）", related_event_ids=[str(alert.event_ids[0])], follow_up_by="2026-03-12")
    county.state, effects = step(county.state, older, county.rules)
    assert "interview.outdated" in [e.kind for e in effects]
    assert [c for c in county.book.apply(older, effects, county.rules.policy, county.info) if c.step.event_id == str(older.event_id)] == []
    assert len(alert.steps) == steps


def test_an_inspection_sent_again_or_outdated_moves_no_alert(county):
    """The alerts stage takes inspections only by the credit file's effects, which say a repeat and an outdated record
    raise nothing: checked here, so that it stays so."""
    first = inspected()
    county.feed(first)
    alert = the(county, "inspection.nonconforming")
    version = alert.version
    assert county.feed(again(first)) == []
    outdated = inspected("2026-04-10T08:00:00+08:00", result="基本符合", findings=[])
    assert county.feed(outdated) == []
    assert alert.version == version and alert.state == "open"
    assert [i.superseded_as for i in county.state.files[alert.enterprise_id].inspections] == [None, "repeated", "outdated"]


# --------------------------------------------------------------------------- end to end: real mail, a real webhook


def test_served_a_reversed_acceptance_reopens_the_alert_by_mail_and_a_late_acceptance_changes_nothing(served):
    from tests.test_alert_delivery import event, failing_sample, recent, wait_for

    srv, mail, hook = served
    sample_at, accepted_at, late_at, rejected_at = recent(10), recent(6), recent(5), recent(4)
    srv.post("/v1/events", json=[event("enterprise.registered", recent(48)), failing_sample(sample_at, "DC-REV-1")]).raise_for_status()
    aid = wait_for(lambda: [a for a in srv.get("/v1/alerts").json() if a["rule"] == "sampling.unqualified"])[0]["alert_id"]
    wait_for(lambda: _mails(mail, aid, "li@bureau.example"))
    srv.post("/v1/events", json=[
        event("rectification.ordered", recent(9), rectification_id="ZG-REV-1", deadline="2099-01-01", cause="抽样编号 DC-REV-1 不合格"),
        event("rectification.completed", recent(8), rectification_id="ZG-REV-1"),
        event("rectification.verified", accepted_at, rectification_id="ZG-REV-1", accepted=True, verifier="王检查员", note="复查合格"),
    ]).raise_for_status()
    wait_for(lambda: srv.get(f"/v1/alerts/{aid}").json()["state"] == "verified")
    srv.post("/v1/events", json=[event("rectification.verified", rejected_at, rectification_id="ZG-REV-1", accepted=False,
                                       verifier="李科长", note="抽查发现消毒记录系补填")]).raise_for_status()
    [reopened] = wait_for(lambda: [m for m in _mails(mail, aid, "li@bureau.example") if "预警重新打开" in m["Subject"]])
    body = reopened.get_content()
    said = (f"整改 ZG-REV-1 于 {accepted_at[:10]} 经王检查员复查通过，该结论已被 {rejected_at[:10]} 的复查撤销"
            "（李科长复查未通过；复查意见：抽查发现消毒记录系补填）")
    assert reopened["Subject"] == "【紧急·抽检不合格】清源桶装水厂（预警重新打开）"
    assert f"重新打开：{said}（" in body and "状态：整改中" in body
    [call] = wait_for(lambda: [c["body"] for c in hook.calls if c["body"]["alert_id"] == aid and c["body"]["reason"] == "reopened"])
    assert call["alert"]["state"] == "rectifying"
    view = srv.get(f"/v1/alerts/{aid}").json()
    assert view["state"] == "rectifying" and view["steps"][-1]["action"] == "verification_reversed" and view["steps"][-1]["note"] == said
    # an acceptance dated before the rejection, sent after it: kept by the credit file, no step on the alert
    late = event("rectification.verified", late_at, rectification_id="ZG-REV-1", accepted=True, verifier="王检查员", note="补录")
    srv.post("/v1/events", json=[late]).raise_for_status()
    wait_for(lambda: srv.get(f"/v1/events/{late['event_id']}").status_code == 200)
    marker = event("rectification.completed", recent(0.01), rectification_id="ZG-REV-1", evidence="重新整改材料")
    srv.post("/v1/events", json=[marker]).raise_for_status()  # folded after the late one: when its step shows, the late one was folded
    wait_for(lambda: any(s["note"].startswith("企业报告整改 ZG-REV-1 已完成：重新整改材料") for s in srv.get(f"/v1/alerts/{aid}").json()["steps"]))
    view = srv.get(f"/v1/alerts/{aid}").json()
    assert view["state"] == "rectifying" and not [s for s in view["steps"] if "补录" in s["note"]]


def test_a_completion_reported_again_is_said_and_noted_on_its_alert_once(rules):
    """A rectification reported done twice (the enterprise's app resent it, a re-import): the credit file says so
    (rectification.completion_repeated) and keeps the first completion; its alert has one 企业报告整改已完成."""
    from alerts.lifecycle import AlertBook, Enterprise
    from processors.credit_file import CountyState
    from processors.step import step
    from tests.test_risk import E as RE, ev as rev, pa_sample, registered

    state, book = CountyState(), AlertBook()

    def feed(event):
        nonlocal state
        state, effects = step(state, event, rules)
        book.apply(event, effects, rules.policy, lambda eid: Enterprise(name="清源", town="良渚街道", category="packaged_water"))
        return effects

    feed(registered())
    failed = pa_sample("2026-03-01T10:00:00+08:00", sample_no="S-DONE")
    feed(failed)
    (alert,) = [a for a in book.alerts.values() if a.rule == "sampling.unqualified"]
    feed(rev("rectification.ordered", "2026-03-02T10:00:00+08:00", rectification_id="ZG-DONE", deadline="2026-03-20", cause="S-DONE"))
    done = rev("rectification.completed", "2026-03-10T10:00:00+08:00", rectification_id="ZG-DONE", evidence="消毒记录")
    feed(done)
    again = rev("rectification.completed", "2026-03-11T10:00:00+08:00", rectification_id="ZG-DONE", evidence="消毒记录（重发）")
    effects = feed(again)
    assert [e.kind for e in effects if e.event_id == str(again.event_id)] == ["rectification.completion_repeated"]
    record = state.files[RE].rectification("ZG-DONE")
    assert record.completed_at == done.occurred_at and record.evidence == "消毒记录"
    assert sum("企业报告整改 ZG-DONE 已完成" in s.note for s in alert.steps) == 1
