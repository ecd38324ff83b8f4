"""The alert notices after a township supervisor's review, each section one finding: what a step tells whom, and
in what words.  The fold first (tests/test_alerts.py's harness), then a real `qrisk run` with a real SMTP server
(aiosmtpd) and a real webhook receiver."""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import uuid

import pytest
import yaml

from alerts.lifecycle import AlertActionError, AlertBook
from tests.test_alerts import RECEIVERS, TOWN, County, _Eff, _info, _tick, act, failing, listing_retest_labs, policy, unqualified
from tests.test_risk import E, ev, registered

from tests.kafka_service import kafka_bootstrap, kafka_prefix  # noqa: F401 - fixtures (the Kafka mode's door)
from tests.services import clickhouse_url  # noqa: F401 - fixture
from tests.test_kafka_api import kafka_api  # noqa: F401 - fixture


@pytest.fixture
def county(rules):
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    return c


def lines_of(note) -> list[str]:
    return note.text_zh.splitlines()


# --------------------------------------------------------------------------- 1. a manual escalation is not a missed deadline


def test_a_manual_escalation_says_who_asked_and_why_not_that_a_deadline_passed(county):
    """An acknowledged alert escalated by hand reached the chief as 超时未确认，升级通报 with reason "escalated",
    and did not say who asked for help or why."""
    alert = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    county.feed(act(alert.alert_id, "acknowledge", "2026-02-10T11:00:00+08:00", actor="瓶窑所 王某"))
    (change,) = county.feed(act(alert.alert_id, "escalate", "2026-02-10T12:00:00+08:00", actor="瓶窑所 王某",
                                note="企业拒不配合封存，请县局支持"))
    assert [(n.receiver, n.reason) for n in change.notifications] == [
        ("chief", "escalated_by_hand"), ("liangzhu", "escalated_by_hand"), ("desk", "escalated_by_hand")]
    note = change.notifications[0]
    assert note.subject_zh == f"【紧急·抽检不合格】{alert.enterprise_name}（手动升级通报，瓶窑所 王某 提请）"
    text = lines_of(note)
    assert text[0] == "手动升级通报：抽检不合格"
    assert "手动升级：瓶窑所 王某（2026-02-10 12:00），理由：企业拒不配合封存，请县局支持" in text
    assert "状态：已确认，负责人 瓶窑所 王某" in text
    assert "超时" not in note.subject_zh + note.text_zh and "仍未确认" not in note.text_zh
    # a deadline missed is still said as such, under its own reason
    other = unqualified(county.feed(failing("2026-02-20T10:00:00+08:00")))[0].alert
    [late] = [c for c in county.feed(ev("clock.tick", "2026-02-21T11:00:00+08:00", enterprise_id="*"))
              if c.alert is other and c.step.action == "escalated"]
    assert {n.reason for n in late.notifications} == {"escalated"}
    assert late.notifications[0].subject_zh.endswith("（超时未确认，升级通报）")
    assert lines_of(late.notifications[0])[0] == "超时未确认，升级通报：抽检不合格"


def test_the_webhook_says_a_manual_escalation_apart_from_a_missed_deadline():
    from alerts.notification import REASONS_ZH
    from alerts.receivers import _webhook_payload

    book, pol = AlertBook(), policy()
    (opened,) = book.apply(_tick("2026-03-01T10:00:00+08:00"), [_Eff("k-hand", "high", "2026-03-01T10:00:00+08:00")], pol, _info)
    (change,) = book.apply(ev("alert.action", "2026-03-01T11:00:00+08:00", E, alert_id=opened.alert.alert_id, action="escalate",
                              actor="良渚所 李所长", note="企业拒不整改"), [], pol, _info)
    body = _webhook_payload(change.notifications[0])
    assert (body["reason"], body["reason_zh"]) == ("escalated_by_hand", "手动升级通报") and REASONS_ZH["escalated"] == "超时未确认，升级通报"


# --------------------------------------------------------------------------- 2. closed by the system: those told are told


def _corrected_failure(county, acknowledge: bool = True, received: str | None = None):
    """A bromate failure (a re-test is admitted), acknowledged by the town, then its lab's corrected report: 合格."""
    from tests.test_fold import RETEST_LAB, _sample

    listing_retest_labs(county, RETEST_LAB)
    alert = unqualified(county.feed(_sample("2026-02-10T09:00:00+08:00", False, False, sample_no="DC-OT-9")))[0].alert
    if acknowledge:
        county.feed(act(alert.alert_id, "acknowledge", "2026-02-10T11:00:00+08:00", actor="良渚所 李所长", note="已封存该批次"))
    fixed = _sample("2026-02-11T09:00:00+08:00", False, True, sample_no="DC-OT-9")
    if received is not None:
        fixed = fixed.model_copy(update={"received_at": dt.datetime.fromisoformat(received)})
    [closing] = [c for c in county.feed(fixed) if c.alert is alert]
    return alert, closing, fixed


def test_an_alert_a_correction_closes_tells_those_who_were_told_why_it_closed(county):
    alert, closing, fixed = _corrected_failure(county)
    assert alert.state == "closed" and closing.step.actor == "qrisk"
    assert [(n.receiver, n.reason) for n in closing.notifications] == [("liangzhu", "closed_by_system"), ("desk", "closed_by_system")]
    note = closing.notifications[0]
    assert note.subject_zh == f"【高·抽检不合格】{alert.enterprise_name}（预警自动关闭）"
    text = lines_of(note)
    assert text[0] == "预警自动关闭：抽检不合格"
    [why] = [line for line in text if line.startswith("关闭原因：")]
    assert "抽样编号 DC-OT-9" in why and "更正" in why and "已采取的控制措施是否解除，请依据复检或更正后的检验结论决定" in why
    assert why.endswith("（关闭前状态：已确认）")
    assert "状态：已关闭，负责人 良渚所 李所长" in text and text[-1].endswith("（已关闭；如仍须处置，可在系统中重新打开）")
    # the evidence of the closing beside the alert's own: the corrected report's event and the sample
    assert str(fixed.event_id) in alert.closing_evidence["event_ids"] and alert.closing_evidence["sample_no"] == "DC-OT-9"
    assert note.alert["closing_evidence"] == alert.closing_evidence


def test_an_escalated_alert_closed_by_the_system_tells_the_escalation_receivers_too(county):
    from tests.test_fold import RETEST_LAB, _sample

    listing_retest_labs(county, RETEST_LAB)
    alert = unqualified(county.feed(_sample("2026-02-10T09:00:00+08:00", False, False, sample_no="DC-OT-8")))[0].alert
    county.feed(ev("clock.tick", "2026-02-12T10:00:00+08:00", enterprise_id="*"))  # past its 48 h: escalated to the chief
    assert alert.escalated and alert.escalated_at is not None
    [closing] = [c for c in county.feed(_sample("2026-02-13T09:00:00+08:00", False, True, sample_no="DC-OT-8")) if c.alert is alert]
    assert [n.receiver for n in closing.notifications] == ["liangzhu", "desk", "chief"]


def test_an_alert_nobody_was_told_of_closes_quietly_and_history_stays_history(rules):
    from tests.test_fold import RETEST_LAB, _sample

    quiet = County(rules, policy(routes=[], escalate_to=[]))  # no receiver: nobody told at opening
    quiet.feed(registered("2026-01-05T09:00:00+08:00"))
    listing_retest_labs(quiet, RETEST_LAB)
    alert = unqualified(quiet.feed(_sample("2026-02-10T09:00:00+08:00", False, False, sample_no="DC-OT-7")))[0].alert
    [closing] = [c for c in quiet.feed(_sample("2026-02-11T09:00:00+08:00", False, True, sample_no="DC-OT-7")) if c.alert is alert]
    assert alert.state == "closed" and closing.notifications == []
    # a correction received months after it was made (a back-fill): recorded, nobody told, and the step says so
    late = County(rules, policy())
    late.feed(registered("2026-01-05T09:00:00+08:00"))
    alert, closing, _ = _corrected_failure(late, received="2026-06-11T09:00:00+08:00")
    assert alert.state == "closed" and closing.notifications == []
    assert "属历史数据，未通知 liangzhu、desk" in closing.step.note


# --------------------------------------------------------------------------- 3. escalation after a reopening


def test_an_escalation_after_a_reopening_counts_the_wait_from_the_reopening(county):
    alert = unqualified(county.feed(failing("2026-01-01T10:00:00+08:00")))[0].alert
    county.feed(act(alert.alert_id, "acknowledge", "2026-01-01T12:00:00+08:00"),
                act(alert.alert_id, "close", "2026-01-02T09:00:00+08:00", note="企业已召回"))
    county.feed(act(alert.alert_id, "reopen", "2026-02-10T10:00:00+08:00", actor="王科长", note="复核发现当时未召回，重新处置"))
    [change] = [c for c in county.feed(ev("clock.tick", "2026-02-11T10:30:00+08:00", enterprise_id="*"))
                if c.alert is alert and c.step.action == "escalated"]
    assert change.step.note.startswith("重新打开后 24 小时仍未确认（应于 2026-02-11 10:00 前确认），升级通报"), change.step.note
    assert "升级原因：重新打开后 24 小时仍未确认（应于 2026-02-11 10:00 前确认），升级通报" in lines_of(change.notifications[0])
    assert "40 天" not in change.step.note
    assert alert.reopened_at == dt.datetime.fromisoformat("2026-02-10T10:00:00+08:00")


def test_a_reopened_alert_with_a_short_deadline_says_minutes_not_the_days_since_it_opened(rules):
    """As reproduced: a deadline of 0.01 h (36 s) after a reopening of a 40-day-old failure."""
    from schemas.policy import Policy

    c = County(rules, Policy.model_validate({"alerts": policy().alerts.model_dump(), "warnings": {"respond_within_hours": {"critical": 0.01}}}))
    c.feed(registered("2026-01-01T09:00:00+08:00"))
    alert = unqualified(c.feed(failing("2026-01-01T10:00:00+08:00")))[0].alert
    c.feed(act(alert.alert_id, "acknowledge", "2026-01-01T10:00:10+08:00"), act(alert.alert_id, "close", "2026-01-02T09:00:00+08:00", note="已召回"),
           act(alert.alert_id, "reopen", "2026-02-10T10:00:00+08:00", note="复核发现当时未召回，重新处置"))
    [change] = [ch for ch in c.feed(ev("clock.tick", "2026-02-10T10:00:37+08:00", enterprise_id="*"))
                if ch.alert is alert and ch.step.action == "escalated"]
    assert change.step.note.startswith("重新打开后 不足 1 分钟仍未确认"), change.step.note


# --------------------------------------------------------------------------- 5. a reopening a newer alert handles


def _closed_with_a_newer():
    book, pol = AlertBook(), policy()
    (old,) = book.apply(_tick("2026-03-01T10:00:00+08:00"), [_Eff("k-again", "medium", "2026-03-01T10:00:00+08:00")], pol, _info)
    book.apply(ev("alert.action", "2026-03-02T10:00:00+08:00", E, alert_id=old.alert.alert_id, action="close", actor="li", note="已处置"),
               [], pol, _info)
    (new,) = book.apply(_tick("2026-03-05T10:00:00+08:00"), [_Eff("k-again", "medium", "2026-03-05T10:00:00+08:00")], pol, _info)
    assert new.step.action == "opened" and new.alert.alert_id != old.alert.alert_id
    return book, pol, old.alert, new.alert


def test_a_reopening_of_a_problem_a_newer_alert_handles_is_refused_at_the_door_with_that_reason():
    book, pol, old, new = _closed_with_a_newer()
    with pytest.raises(AlertActionError) as refused:
        book.check(old.alert_id, "reopen", "前次处置不到位", pol.alerts)
    assert f"预警 {old.alert_id} 的问题已有新的预警 {new.alert_id} 在处置，不能重新打开" in str(refused.value)
    # the fold refuses it with the same words when it is in the log anyway
    with pytest.raises(AlertActionError, match=f"已有新的预警 {new.alert_id} 在处置"):
        book.apply(ev("alert.action", "2026-03-06T10:00:00+08:00", E, alert_id=old.alert_id, action="reopen", actor="li",
                      note="前次处置不到位"), [], pol, _info)
    assert old.state == "closed" and old.steps[-1].action == "close"
    # a comment on the old one is still taken
    assert book.check(old.alert_id, "comment", "补充说明", pol.alerts) is old


# --------------------------------------------------------------------------- 4. an enterprise's move hands its alerts over


def test_an_enterprise_moving_tells_the_new_towns_receivers_of_each_alert_handed_to_them(rules):
    pol = policy(routes=[{"receivers": ["liangzhu"], "towns": [TOWN]}, {"receivers": ["pastry-team"], "towns": ["东溪镇"]},
                         {"receivers": ["desk"], "min_severity": "high"}])
    c = County(rules, pol)
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    alert = unqualified(c.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    grade = next(a for a in c.book.alerts.values() if a.rule == "risk.grade_worsened")
    c.feed(act(grade.alert_id, "close", "2026-02-10T12:00:00+08:00", note="已约谈"))
    changes = c.feed(ev("enterprise.updated", "2026-02-11T10:00:00+08:00", town="东溪镇", campaign_tier=None, scale=None))
    [moved] = [ch for ch in changes if ch.alert is alert]
    # the new town's receiver, once; the duty desk had it already; the old town's is no longer its
    assert [(n.receiver, n.reason) for n in moved.notifications] == [("pastry-team", "transferred")]
    note = moved.notifications[0]
    assert note.subject_zh == f"【紧急·抽检不合格】{alert.enterprise_name}（预警移交）"
    text = lines_of(note)
    assert text[0] == "预警移交：抽检不合格" and f"企业：{alert.enterprise_name}（{E}，东溪镇）" in text
    assert "移交：企业所在乡镇/街道由良渚街道变更为东溪镇，预警随企业转由东溪镇处置（2026-02-11 10:00）" in text
    # its deadline is its own still: said as it stands
    assert "确认处置期限 2026-02-11 10:00 已过，请立即确认处置" in text[2]
    # a closed alert moves with the enterprise but is nobody's work: nobody told
    assert [ch.notifications for ch in changes if ch.alert is grade] == [[]]
    # moving back and forth within the log's history (a back-fill) tells nobody
    back = ev("enterprise.updated", "2026-02-12T10:00:00+08:00", town=TOWN, campaign_tier=None, scale=None)
    back = back.model_copy(update={"received_at": dt.datetime.fromisoformat("2026-06-12T10:00:00+08:00")})
    [returned] = [ch for ch in c.feed(back) if ch.alert is alert and ch.step.action == "comment"]
    assert returned.notifications == [] and "属历史数据" in returned.step.note


# --------------------------------------------------------------------------- 6. the fallback named as people know it


def test_a_move_tells_nobody_who_had_the_alert_s_escalation_already(rules):
    """(The round's diff review) an escalated alert's enterprise moves to a town no route covers: its receivers fall back
    to the escalation's (chief), who had it already — no 预警移交 for them."""
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    alert = unqualified(c.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    escalated = [x for x in c.feed(ev("clock.tick", "2026-02-12T00:00:00+08:00", enterprise_id="*")) if x.alert is alert]
    assert "chief" in [n.receiver for x in escalated for n in x.notifications]
    moved = [x for x in c.feed(ev("enterprise.updated", "2026-02-13T10:00:00+08:00", town="东溪镇", campaign_tier=None, scale=None))
             if x.alert is alert]
    assert "chief" in alert.receivers and [n for x in moved for n in x.notifications] == []


def test_an_unrouted_towns_note_names_the_fallback_by_who_reads_it(rules):
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00", town="瓶窑镇"))
    [opened] = unqualified(c.feed(failing("2026-02-10T10:00:00+08:00")))
    assert opened.step.note.endswith("（预警路由未覆盖瓶窑镇，已通知 分管局长）")  # RECEIVERS: chief's supervisor
    # a receiver without one is named as the policy names it
    bare = [{**r, "supervisor": ""} if r["name"] == "chief" else r for r in RECEIVERS]
    c = County(rules, policy(receivers=bare))
    c.feed(registered("2026-01-05T09:00:00+08:00", town="瓶窑镇"))
    [opened] = unqualified(c.feed(failing("2026-02-10T10:00:00+08:00")))
    assert opened.step.note.endswith("（预警路由未覆盖瓶窑镇，已通知 chief）")


# --------------------------------------------------------------------------- end to end: real mail, a real webhook


@pytest.fixture
def served(tmp_path, monkeypatch):
    """`qrisk run` with the town's supervisor by e-mail (aiosmtpd), the duty desk by webhook, the chief by e-mail."""
    from qrisk.auth import KeyStore
    from tests.conftest import Server
    from tests.test_alert_delivery import Hook
    from tests.test_alert_receivers import Recorder, smtp_server

    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    mail, hook = Recorder(), Hook()
    with smtp_server(mail) as smtp:
        path = tmp_path / "policy.yaml"
        path.write_text(yaml.safe_dump({"alerts": {
            "receivers": [{"name": "liangzhu", "kind": "email", "supervisor": "良渚所 李所长", "to": ["li@bureau.example"]},
                          {"name": "desk", "kind": "webhook", "supervisor": "县局值班室", "url": hook.url},
                          {"name": "chief", "kind": "email", "supervisor": "分管局长", "to": ["chief@bureau.example"]}],
            "routes": [{"receivers": ["liangzhu"], "towns": [TOWN]}, {"receivers": ["desk"], "min_severity": "high"}],
            "escalate_to": ["chief"]}}, allow_unicode=True), encoding="utf-8")
        monkeypatch.setenv("QRISK_SMTP_PORT", str(smtp.port))
        monkeypatch.setenv("QRISK_SMTP_SENDER", "qrisk@bureau.example")
        monkeypatch.setenv("QRISK_OUTBOX_INTERVAL", "0.1")
        data = tmp_path / "data"
        _, supervisor = KeyStore(data / "keys.json").create("supervisor", "li.liangzhu", towns=[TOWN], actor="tests")
        srv = Server(data, args=("--policy", str(path))).start()
        srv.town = {"authorization": f"Bearer {supervisor}"}  # type: ignore[attr-defined]
        try:
            yield srv, mail, hook
        finally:
            srv.stop()
            hook.close()


def _mails(mail, alert_id: str, to: str) -> list:
    msgs = [(e.rcpt_tos, email.message_from_bytes(e.content, policy=email.policy.default)) for e in mail.envelopes]
    return [m for rcpt, m in msgs if m["X-Qrisk-Alert-Id"] == alert_id and rcpt == [to]]


def test_served_a_manual_escalation_reaches_the_chief_as_one_by_hand(served):
    from tests.test_alert_delivery import event, failing_sample, recent, wait_for

    srv, mail, hook = served
    srv.post("/v1/events", json=[event("enterprise.registered", recent(48)), failing_sample(recent(1), "DC-HAND-1")]).raise_for_status()
    aid = wait_for(lambda: [a for a in srv.get("/v1/alerts").json() if a["rule"] == "sampling.unqualified"])[0]["alert_id"]
    url = f"/v1/alerts/{aid}/actions"
    assert srv.post(url, json={"action": "acknowledge", "note": "已到厂"}, headers=srv.town).status_code == 200
    answer = srv.post(url, json={"action": "escalate", "note": "企业拒不配合封存，请县局支持"}, headers=srv.town)
    assert answer.status_code == 200, answer.text
    [chief] = wait_for(lambda: _mails(mail, aid, "chief@bureau.example"))
    assert chief["Subject"] == "【紧急·抽检不合格】清源桶装水厂（手动升级通报，li.liangzhu 提请）"
    body = chief.get_content()
    assert body.splitlines()[0] == "手动升级通报：抽检不合格" and "超时未确认" not in body
    assert "，理由：企业拒不配合封存，请县局支持" in body and "手动升级：li.liangzhu（" in body and "状态：已确认" in body
    [call] = wait_for(lambda: [c["body"] for c in hook.calls if c["body"]["alert_id"] == aid and c["body"]["reason"] != "opened"])
    assert (call["reason"], call["reason_zh"]) == ("escalated_by_hand", "手动升级通报")


def _bromate_report(at: str, sample_no: str, passes: bool) -> dict:
    from tests.test_alert_delivery import event

    doc = event("sampling.result", at, sample_no=sample_no, sampled_on=at[:10], production_date=at[:10])
    germ = next(i for i in doc["payload"]["items"] if i["item_code"] == "pseudomonas_aeruginosa")
    germ.update(values=[0, 0, 0, 0, 0], lab_verdict="合格")  # (a microbial failure admits no correction closing it unseen)
    bromate = next(i for i in doc["payload"]["items"] if i["item_code"] == "bromate")
    bromate.update(values=[0.005 if passes else 0.02], lab_verdict="合格" if passes else "不合格")
    return doc


def test_served_a_correction_closing_an_acknowledged_alert_tells_those_who_were_told(served):
    from tests.test_alert_delivery import event, recent, wait_for

    srv, mail, hook = served
    srv.post("/v1/events", json=[event("enterprise.registered", recent(48)),
                                 _bromate_report(recent(3), "DC-FIX-1", passes=False)]).raise_for_status()
    aid = wait_for(lambda: [a for a in srv.get("/v1/alerts").json() if a["rule"] == "sampling.unqualified"])[0]["alert_id"]
    assert srv.post(f"/v1/alerts/{aid}/actions", json={"action": "acknowledge", "note": "已封存该批次"}, headers=srv.town).status_code == 200
    # the lab corrects its report: 合格.  The alert closes by itself, and the town and the desk hear why
    srv.post("/v1/events", json=[_bromate_report(recent(2), "DC-FIX-1", passes=True)]).raise_for_status()
    wait_for(lambda: srv.get(f"/v1/alerts/{aid}").json()["state"] == "closed")
    [closed] = wait_for(lambda: [m for m in _mails(mail, aid, "li@bureau.example") if "预警自动关闭" in m["Subject"]])
    assert closed["Subject"] == "【高·抽检不合格】清源桶装水厂（预警自动关闭）"
    body = closed.get_content()
    assert body.splitlines()[0] == "预警自动关闭：抽检不合格" and "请依据复检或更正后的检验结论决定" in body and "关闭前状态：已确认" in body
    [call] = wait_for(lambda: [c["body"] for c in hook.calls if c["body"]["alert_id"] == aid and c["body"]["reason"] == "closed_by_system"])
    assert call["reason_zh"] == "预警自动关闭" and call["alert"]["closing_evidence"]["sample_no"] == "DC-FIX-1"
    assert not _mails(mail, aid, "chief@bureau.example"), "the chief never had it: not told it closed"


def test_served_a_reopening_a_newer_alert_handles_is_refused_with_that_reason_and_not_logged(served):
    """An old closed alert whose problem has a newer open alert: the reopening was logged, rejected by the fold,
    audited as rejected and answered 已被其他操作改变（当前状态“已关闭”） — the reason lost."""
    from tests.test_alert_delivery import event, recent, wait_for

    srv, _, _ = served
    srv.post("/v1/events", json=[event("enterprise.registered", recent(48)),
                                 _bromate_report(recent(3), "DC-FIX-2", passes=False)]).raise_for_status()
    first = wait_for(lambda: [a for a in srv.get("/v1/alerts").json() if a["rule"] == "sampling.unqualified"])[0]
    aid = first["alert_id"]
    # corrected to 合格 (the alert closes), then again to 不合格: the same problem, a new alert
    srv.post("/v1/events", json=[_bromate_report(recent(2), "DC-FIX-2", passes=True)]).raise_for_status()
    wait_for(lambda: srv.get(f"/v1/alerts/{aid}").json()["state"] == "closed")
    srv.post("/v1/events", json=[_bromate_report(recent(1), "DC-FIX-2", passes=False)]).raise_for_status()
    newer = wait_for(lambda: [a for a in srv.get("/v1/alerts?state=open").json() if a["dedup_key"] == first["dedup_key"]])[0]["alert_id"]
    step_id = str(uuid.uuid4())
    refused = srv.post(f"/v1/alerts/{aid}/actions", json={"action": "reopen", "note": "前次处置不到位", "event_id": step_id}, headers=srv.town)
    assert refused.status_code == 409, refused.text
    assert f"的问题已有新的预警 {newer} 在处置，不能重新打开" in refused.json()["detail"] and "已被其他操作改变" not in refused.json()["detail"]
    assert srv.get(f"/v1/events/{step_id}").status_code == 404, "a refused step is not in the log"
    [audit] = [a for a in srv.get("/v1/audit", params={"action": "alert.action"}).json() if a["detail"].get("action") == "reopen"]
    assert audit["outcome"] == "refused" and newer in audit["detail"]["reason"]
    assert srv.get(f"/v1/alerts/{aid}").json()["steps"][-1]["action"] == "close"


def test_kafka_mode_refuses_a_reopening_a_newer_alert_handles_before_publishing(kafka_api, kafka_bootstrap):
    """With the Kafka log the door reads the alerts table the sink writes: the same rule, asked of it, so the
    step is not published for the worker to reject seconds later with the reason nobody sees."""
    from alerts.lifecycle import AlertChange
    from qrisk.pipeline import ALERT_STEP_COLUMNS, alert_step_rows, store_rows
    from tests.kafka_service import read_topic

    srv, store = kafka_api["server"], kafka_api["store"]
    _, _, old, new = _closed_with_a_newer()
    changes = [AlertChange(a, s) for a in (old, new) for s in a.steps]
    store_rows(store, "alert_steps_in", ALERT_STEP_COLUMNS, alert_step_rows(changes))  # as the sink writes a worker's steps
    step_id = str(uuid.uuid4())
    refused = srv.post(f"/v1/alerts/{old.alert_id}/actions", json={"action": "reopen", "note": "前次处置不到位", "event_id": step_id})
    assert refused.status_code == 409, refused.text
    assert f"已有新的预警 {new.alert_id} 在处置，不能重新打开" in refused.json()["detail"]
    published = [m for m in read_topic(kafka_bootstrap, kafka_api["settings"].topics().events.name) if step_id.encode() in m.value]
    assert published == [], "refused at the door: nothing for the worker to reject"


def test_served_an_enterprise_moving_hands_its_alert_to_the_new_towns_receiver_by_mail(served):
    from tests.test_alert_delivery import event, failing_sample, recent, wait_for

    srv, mail, hook = served
    srv.post("/v1/events", json=[event("enterprise.registered", recent(48)), failing_sample(recent(2), "DC-MOVE-1")]).raise_for_status()
    aid = wait_for(lambda: [a for a in srv.get("/v1/alerts").json() if a["rule"] == "sampling.unqualified"])[0]["alert_id"]
    wait_for(lambda: _mails(mail, aid, "li@bureau.example"))
    # to 瓶窑镇, which no route names: the county's fallback (escalate_to, the chief) takes its alerts
    srv.post("/v1/events", json=[event("enterprise.updated", recent(1), town="瓶窑镇", campaign_tier=None, scale=None)]).raise_for_status()
    [handed] = wait_for(lambda: _mails(mail, aid, "chief@bureau.example"))
    assert handed["Subject"] == "【紧急·抽检不合格】清源桶装水厂（预警移交）"
    body = handed.get_content()
    assert body.splitlines()[0] == "预警移交：抽检不合格" and "移交：企业所在乡镇/街道由良渚街道变更为瓶窑镇，预警随企业转由瓶窑镇处置" in body
    assert len(_mails(mail, aid, "li@bureau.example")) == 1, "the old town is not told again"
    assert not [c for c in hook.calls if c["body"]["alert_id"] == aid and c["body"]["reason"] == "transferred"], "the desk had it already"
