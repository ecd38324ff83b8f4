"""早处置: an alert acknowledged (确认) and then left — not put under rectification, verified or closed within
``warnings.handle_within_hours`` of its acknowledgement — escalates once, by the log's clock, to the escalation
receivers and its own, saying who acknowledged it, when, how long it has waited and the step still missing.  The API
and the dashboards show the wait; the dashboards also show why a supervisor closed an alert (the close step's note,
which only the alert's steps held, and the Grafana reader is not granted those)."""
from __future__ import annotations

import json

import pytest
from services import clickhouse_url, store  # noqa: F401 - fixtures

from alerts.lifecycle import AlertBook
from schemas.policy import Policy
from tests.test_alerts import County, _Eff, _info, _tick, act, failing, policy, unqualified
from tests.test_risk import ev, registered

OPENED = "2026-02-10T10:00:00+08:00"


def _ticked(c: County, at: str) -> list:
    return c.feed(ev("clock.tick", at, enterprise_id="*"))


def _overdue(changes) -> list:
    return [c for c in changes if c.step.action == "handling_overdue"]


@pytest.fixture
def acknowledged(rules):
    """A critical failure (72 h to handle by default), acknowledged by 张三 five hours after it opened."""
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    alert = unqualified(c.feed(failing(OPENED)))[0].alert
    c.feed(act(alert.alert_id, "acknowledge", "2026-02-10T15:00:00+08:00", actor="张三"))
    return c, alert


def test_an_acknowledged_alert_left_unhandled_escalates_once_naming_who_acknowledged_it_and_what_is_missing(acknowledged):
    c, alert = acknowledged
    assert _overdue(_ticked(c, "2026-02-13T14:59:00+08:00")) == [], "72 h from the acknowledgement, not from the opening"
    (overdue,) = _overdue(_ticked(c, "2026-02-13T15:01:00+08:00"))
    assert alert.handle_by.isoformat() == "2026-02-13T07:00:00+00:00"
    assert overdue.step.note == ("已确认 3 天仍未责令整改或关闭（张三 于 2026-02-10 15:00 确认，应于 2026-02-13 15:00 前责令整改或关闭），"
                                 "升级通报")
    assert overdue.step.at.isoformat() == "2026-02-13T07:01:00+00:00", "by the log's clock (the tick), not the wall clock"
    assert [n.receiver for n in overdue.notifications] == ["chief", "liangzhu", "desk"]  # escalate_to first, then its own
    note = overdue.notifications[0]
    assert note.reason == "handling_overdue" and note.subject_zh.endswith("（已确认超时未处置，升级通报）")
    lines = note.text_zh.splitlines()
    assert lines[0].startswith("已确认超时未处置，升级通报：")
    assert "，已确认，处置期限 2026-02-13 15:00 已过，请立即责令整改或关闭" in note.text_zh
    assert f"升级原因：{overdue.step.note}" in lines and "状态：已确认，负责人 张三" in lines
    assert alert.handling_overdue and alert.view()["handling_zh"] == "已确认超时未处置" and alert.state == "acknowledged"
    assert not alert.escalated, "its response was in time: 超时未确认 stays false"
    assert _overdue(_ticked(c, "2026-02-20T10:00:00+08:00")) == [], "escalated once"


@pytest.mark.parametrize("action", ["start_rectification", "close"])
def test_a_rectification_ordered_or_a_closing_in_time_ends_the_wait(acknowledged, action):
    c, alert = acknowledged
    c.feed(act(alert.alert_id, action, "2026-02-12T09:00:00+08:00", actor="张三", note="已责令企业停产整改"))
    assert _overdue(_ticked(c, "2026-03-30T10:00:00+08:00")) == [] and not alert.handling_overdue


def test_the_inspection_systems_rectification_order_ends_the_wait(acknowledged):
    from tests.test_alerts import _order

    c, alert = acknowledged
    c.feed(_order("R-HANDLE-1", f"预警 {alert.alert_id} 所涉抽检不合格", "2026-02-11T09:00:00+08:00"))
    assert alert.state == "rectifying"
    assert _overdue(_ticked(c, "2026-03-30T10:00:00+08:00")) == []


def test_an_assignment_or_a_comment_does_not_restart_the_wait_and_the_notice_names_the_new_owner(acknowledged):
    """A hand-over is no handling: restarting the wait on each would keep the county from ever hearing of it."""
    c, alert = acknowledged
    c.feed(act(alert.alert_id, "assign", "2026-02-12T09:00:00+08:00", actor="张三", assignee="王五"))
    c.feed(act(alert.alert_id, "comment", "2026-02-13T09:00:00+08:00", actor="王五", note="已电话联系企业"))
    (overdue,) = _overdue(_ticked(c, "2026-02-13T16:00:00+08:00"))
    assert "（张三 于 2026-02-10 15:00 确认，现由 王五 负责，应于 2026-02-13 15:00 前责令整改或关闭）" in overdue.step.note


def test_a_reopening_starts_the_clocks_again(acknowledged):
    c, alert = acknowledged
    c.feed(act(alert.alert_id, "close", "2026-02-11T09:00:00+08:00", note="企业已召回该批次"))
    c.feed(act(alert.alert_id, "reopen", "2026-02-20T09:00:00+08:00", note="召回不彻底"))
    assert (alert.handle_by, alert.acknowledged_by, alert.handling_escalated) == (None, None, False)
    c.feed(act(alert.alert_id, "acknowledge", "2026-02-20T11:00:00+08:00", actor="李四"))
    assert _overdue(_ticked(c, "2026-02-23T10:00:00+08:00")) == [], "72 h from the new acknowledgement"
    (overdue,) = _overdue(_ticked(c, "2026-02-23T11:30:00+08:00"))
    assert "李四 于 2026-02-20 11:00 确认" in overdue.step.note


def test_an_interview_that_answers_an_alert_starts_the_wait_as_an_acknowledgement_does(rules):
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    alert = unqualified(c.feed(failing(OPENED)))[0].alert
    sample_no = alert.evidence["sample_no"]
    c.feed(ev("interview.held", "2026-02-10T16:00:00+08:00", interview_id="IV-H1", held_on="2026-02-10", held_by="良渚所",
              reason=f"抽检 {sample_no} 不合格"))
    assert alert.state == "acknowledged" and alert.handle_by is not None
    (overdue,) = _overdue(_ticked(c, "2026-02-14T10:00:00+08:00"))
    assert "于 2026-02-10 16:00 确认" in overdue.step.note


@pytest.mark.parametrize("hours", [None, 0])
def test_off_for_a_severity_never_escalates(rules, hours):
    pol = policy().model_copy(deep=True)
    pol.warnings.handle_within_hours["critical"] = hours
    c = County(rules, pol)
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    alert = unqualified(c.feed(failing(OPENED)))[0].alert
    c.feed(act(alert.alert_id, "acknowledge", "2026-02-10T15:00:00+08:00"))
    assert alert.handle_by is None and _overdue(_ticked(c, "2026-06-01T10:00:00+08:00")) == []


def test_the_default_policy_documents_and_keeps_low_off():
    wp = Policy().warnings
    assert wp.handle_within_hours == {"critical": 72, "high": 168, "medium": 360, "low": None}
    assert "早处置" in type(wp).model_fields["handle_within_hours"].description
    with pytest.raises(ValueError, match="handle_within_hours"):
        Policy.model_validate({"warnings": {"handle_within_hours": {"critical": -1}}})


def test_a_severity_raised_while_acknowledged_shortens_the_wait(rules):
    book, pol = AlertBook(), policy()
    (opened,) = book.apply(_tick("2026-03-01T10:00:00+08:00"), [_Eff("kh", "medium", "2026-03-01T10:00:00+08:00")], pol, _info)
    aid = opened.alert.alert_id
    book.apply(act(aid, "acknowledge", "2026-03-01T12:00:00+08:00"), [], pol, _info)
    assert opened.alert.handle_by == _at("2026-03-16T12:00:00+08:00")  # medium: 15 days
    book.apply(_tick("2026-03-02T10:00:00+08:00"), [_Eff("kh", "critical", "2026-03-02T10:00:00+08:00")], pol, _info)
    assert opened.alert.handle_by == _at("2026-03-05T10:00:00+08:00")  # critical: 72 h from the rise
    assert [c.step.action for c in book.apply(_tick("2026-03-05T11:00:00+08:00"), [], pol, _info)] == ["handling_overdue"]


def _at(text: str):
    import datetime as dt

    return dt.datetime.fromisoformat(text)


def _log(c: County) -> list:
    return [(ch.alert.alert_id, ch.step.version, ch.step.action, ch.step.note, [(n.delivery_id, n.receiver, n.text_zh)
                                                                                 for n in ch.notifications]) for ch in c.changes]


def test_a_replay_and_a_restored_book_escalate_the_same_with_the_same_delivery_ids(rules):
    events = [registered("2026-01-05T09:00:00+08:00"), failing(OPENED)]
    first = County(rules, policy())
    first.feed(*events)
    aid = unqualified(first.changes)[0].alert.alert_id
    later = [act(aid, "acknowledge", "2026-02-10T15:00:00+08:00", actor="张三"),
             ev("clock.tick", "2026-02-12T10:00:00+08:00", enterprise_id="*"),
             ev("clock.tick", "2026-02-14T10:00:00+08:00", enterprise_id="*")]
    first.feed(*later)
    again = County(rules, policy())
    again.feed(*events, *later)
    assert _log(first) == _log(again) and any(a == "handling_overdue" for _, _, a, _, _ in _log(first))
    # a book written out after the acknowledgement and read back (a snapshot) escalates the same
    cut = County(rules, policy())
    cut.feed(*events, later[0])
    cut.book = AlertBook.model_validate_json(cut.book.model_dump_json())
    tail = cut.feed(*later[1:])
    assert [(c.step.action, [n.delivery_id for n in c.notifications]) for c in _overdue(tail)] == \
        [(c.step.action, [n.delivery_id for n in c.notifications]) for c in _overdue(first.changes)]


# --------------------------------------------------------------------------- the rows and the dashboards


def test_the_dashboards_show_a_supervisors_closing_reason_and_an_alert_left_unhandled(store, rules):  # noqa: F811 - fixture
    from tests.test_dashboards import _fold_into, _panels

    events = [registered("2026-01-05T09:00:00+08:00"), failing(OPENED)]
    pipeline = _fold_into(store, rules, events)
    try:
        ids = {r["kind"]: r["alert_id"] for r in store.query("SELECT alert_id, kind FROM alerts FINAL")}
        failure, grade = ids["sampling.unqualified"], ids["risk.grade_worsened"]
        pipeline.submit([act(failure, "acknowledge", "2026-02-10T15:00:00+08:00", actor="张三"),
                         act(grade, "close", "2026-02-11T09:00:00+08:00", actor="李四", note="经核查已整改到位"),
                         ev("clock.tick", "2026-02-14T10:00:00+08:00", enterprise_id="*")])
        assert pipeline.wait_derived(60)
        got = _panels(store, variables={"enterprise": "E-330110-001", "item": "p_aeruginosa"})
        rows = {r["alert_id"]: r for r in store.query("SELECT * FROM alerts FINAL")}
    finally:
        pipeline.close()
    for table in (("county.json", "最新预警"), ("enterprise.json", "预警记录")):
        shown = {r["预警编号"]: r for r in got[table]}
        assert shown[grade]["关闭原因"] == "由 李四 关闭：经核查已整改到位"
        assert shown[failure]["状态"] == "已确认超时未处置" and shown[failure]["关闭原因"] == ""
    unsettled = {r["预警编号"]: r["状态"] for r in got[("county.json", "未办结预警（当前）")]}
    assert unsettled[failure] == "已确认超时未处置" and grade not in unsettled
    # (the columns the Grafana reader is granted: the reason and the overdue mark are on the row, not only in its JSON)
    assert (rows[grade]["closing_note"], rows[grade]["closed_by"]) == ("经核查已整改到位", "李四")
    assert rows[failure]["handling_overdue"] == 1 and rows[failure]["state"] == "acknowledged"


def test_the_kafka_workers_rows_carry_the_same_columns(rules):
    """The Kafka worker's rows (alert_rows, written by the sink) name the new columns, as the embedded rows do."""
    from qrisk.pipeline import ALERT_COLUMNS, alert_rows

    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    alert = unqualified(c.feed(failing(OPENED)))[0].alert
    (closed,) = c.feed(act(alert.alert_id, "close", "2026-02-11T09:00:00+08:00", note="复检合格，误报"))
    row = dict(zip(ALERT_COLUMNS, alert_rows([closed])[0].alert))
    assert (row["closing_note"], row["closed_by"], row["handling_overdue"]) == ("复检合格，误报", "li", 0)
    view = json.loads(row["evidence"])
    assert "handle_by" in view and view["handling_overdue"] is False and view["handling_zh"] == ""


# --------------------------------------------------------------------------- the API


def test_the_api_shows_the_handling_deadline_and_the_overdue_state(tmp_path):
    """Over real HTTP, with a policy whose critical alerts are to be handled within 0.001 h (3.6 s)."""
    import time

    from tests.conftest import Server
    import datetime as dt

    from tests.test_risk import pa_sample

    pol = tmp_path / "policy.yaml"
    pol.write_text("warnings:\n  handle_within_hours: {critical: 0.001, high: 168, medium: 360, low: null}\n", encoding="utf-8")
    srv = Server(tmp_path / "data", args=("--policy", str(pol))).start()
    try:
        now = dt.datetime.now(dt.timezone.utc)
        events = [registered((now - dt.timedelta(days=2)).isoformat()),
                  pa_sample((now - dt.timedelta(hours=3)).isoformat(), values=(0, 3, 0, 0, 0))]
        assert srv.post("/v1/events", json=[e.model_dump(mode="json") for e in events]).status_code == 200
        (failure,) = [a for a in srv.get("/v1/alerts").json() if a["rule"] == "sampling.unqualified"]
        answer = srv.post(f"/v1/alerts/{failure['alert_id']}/actions", json={"action": "acknowledge"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["alert"]["handle_by"] is not None and answer.json()["alert"]["handling_overdue"] is False
        time.sleep(4)
        # any later event moves the log's clock past the deadline (qrisk run's own tick comes every 600 s)
        later = pa_sample(dt.datetime.now(dt.timezone.utc).isoformat(), values=(0, 0, 0, 0, 0))
        assert srv.post("/v1/events", json=[later.model_dump(mode="json")]).status_code == 200
        view = srv.get(f"/v1/alerts/{failure['alert_id']}").json()
        assert (view["state"], view["handling_overdue"], view["handling_zh"]) == ("acknowledged", True, "已确认超时未处置")
        assert view["steps"][-1]["action"] == "handling_overdue" and view["steps"][-1]["action_zh"] == "已确认超时未处置，升级"
        (listed,) = [a for a in srv.get("/v1/alerts", params={"state": "active"}).json() if a["alert_id"] == failure["alert_id"]]
        assert listed["handling_overdue"] is True and listed["handle_by"] == view["handle_by"]
        csv = srv.get("/v1/alerts", params={"format": "csv"}).text
        assert "handle_by" in csv.splitlines()[0] and "handling_overdue" in csv.splitlines()[0]
    finally:
        srv.stop()
