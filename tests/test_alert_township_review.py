"""The alert notices after a township supervisor's review, each section one finding: what a step tells whom, and
in what words.  The fold first (tests/test_alerts.py's harness), then a real `qrisk run` with a real SMTP server
(aiosmtpd) and a real webhook receiver."""
from __future__ import annotations

import email
import email.policy

import pytest
import yaml

from alerts.lifecycle import AlertBook
from tests.test_alerts import TOWN, County, _Eff, _info, _tick, act, failing, policy, unqualified
from tests.test_risk import E, ev, registered


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
