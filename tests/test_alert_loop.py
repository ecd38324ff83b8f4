"""The alert loop as a supervisor lives it: an alert opens, is handled or goes away by itself, and what
each step tells whom — in the embedded pipeline and in a Kafka worker's fold alike."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from alerts.lifecycle import AlertActionError
from processors.step import Rules
from tests.test_alerts import County, act, failing, policy, unqualified
from tests.test_risk import E, ev, registered

# --------------------------------------------------------------------------- a withdrawn complaint-chart signal


def _unfounded_month():
    """Four complaints in March signal on the complaint chart (its exact Poisson limit at 0.3 a month is 3);
    all are found 不属实 in the next days."""
    return [registered("2026-01-05T09:00:00+08:00"),
            *[ev("complaint.received", f"2026-03-0{d}T10:00:00+08:00", complaint_id=f"K{i}") for i, d in enumerate((2, 3, 4, 9), 1)],
            *[ev("complaint.resolved", f"2026-03-1{i}T10:00:00+08:00", complaint_id=f"K{i}", verified=False, outcome="核查不属实")
              for i in (1, 2, 3)],
            ev("complaint.resolved", "2026-03-14T10:00:00+08:00", complaint_id="K4", verified=False, outcome="核查不属实"),
            # past the medium alert's 168 h: it would have escalated to the chief had it stayed open
            ev("clock.tick", "2026-03-30T00:00:00+08:00", enterprise_id="*")]


def test_a_signal_whose_complaints_were_all_unfounded_closes_its_alert_and_never_escalates(rules):
    c = County(rules, policy())
    log = _unfounded_month()
    c.feed(*log[:5])
    [alert] = [a for a in c.book.alerts.values() if a.rule == "fluctuation.signal"]
    assert alert.dedup_key == f"{E}:fluctuation:c:2026-03" and alert.state == "open"
    c.feed(*log[5:8])
    assert alert.state == "open", "one complaint is still to be investigated"
    [closing] = [ch for ch in c.feed(log[8]) if ch.alert.alert_id == alert.alert_id]
    assert (closing.step.action, closing.step.to_state) == ("close", "closed")
    # the town was told of the signal: it is told the signal was withdrawn
    assert [(n.receiver, n.reason) for n in closing.notifications] == [("liangzhu", "closed_by_system")]
    assert closing.step.note.startswith("经核查投诉均不属实，信号撤销：2026年3月投诉 4 件（投诉编号 K1、K2、K3、K4）均不属实")
    assert alert.dedup_key not in c.book.active_by_key
    later = c.feed(log[9])
    assert not [ch for ch in later if ch.alert.alert_id == alert.alert_id] and not alert.escalated
    assert [s.action for s in alert.steps] == ["opened", "close"]


def test_a_signal_with_one_complaint_substantiated_keeps_its_alert(rules):
    c = County(rules, policy())
    log = _unfounded_month()
    log[8] = ev("complaint.resolved", "2026-03-14T10:00:00+08:00", complaint_id="K4", verified=True, outcome="属实")
    c.feed(*log)
    [alert] = [a for a in c.book.alerts.values() if a.rule == "fluctuation.signal"]
    assert alert.state == "open" and alert.escalated


def test_a_kafka_workers_fold_closes_the_withdrawn_signals_alert_as_the_embedded_pipeline_does(rules):
    from qrisk.worker import BatchOutput, Fold

    pol = policy()
    fold = Fold(Rules(catalogue=rules.catalogue, policy=pol), "log")
    c = County(rules, pol)
    for offset, event in enumerate(_unfounded_month()):
        doc = {**event.model_dump(mode="json"), "received_at": event.occurred_at.isoformat()}
        fold.apply(0, offset, json.dumps(doc, ensure_ascii=False).encode(), None, BatchOutput())
        c.feed(event)
    worker = {a.alert_id: (a.state, a.escalated, [s.action for s in a.steps]) for a in fold.files[E].alerts.alerts.values()}
    embedded = {a.alert_id: (a.state, a.escalated, [s.action for s in a.steps]) for a in c.book.alerts.values()}
    assert worker == embedded
    assert any(v == ("closed", False, ["opened", "close"]) for v in worker.values())


# --------------------------------------------------------------------------- closing needs a reason


@pytest.fixture
def county(rules):
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    return c


def test_closing_a_critical_alert_without_a_reason_is_refused_at_the_door_in_chinese(county):
    from alerts.lifecycle import AlertNoteRequired

    alert = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    assert alert.severity == "critical"
    pol = county.rules.policy.alerts
    for blank in ("", "   ", None):
        with pytest.raises(AlertNoteRequired, match=f"关闭紧急级预警 {alert.alert_id} 须填写关闭理由"):
            county.book.check(alert.alert_id, "close", blank, pol)
    assert isinstance(AlertNoteRequired("x"), AlertActionError)  # a caller that knows only AlertActionError still refuses it
    assert county.book.check(alert.alert_id, "close", "企业已召回该批次产品，复查合格", pol) is alert
    assert county.book.check(alert.alert_id, "acknowledge", "", pol) is alert  # only closing needs one
    assert county.book.check(alert.alert_id, "close") is alert  # no note given to check: the state alone


def test_a_medium_alert_closes_without_a_reason_and_the_floor_is_policy(county, rules):
    county.feed(ev("clock.tick", "2026-07-10T00:00:00+08:00", enterprise_id="*"))
    gap = next(a for a in county.book.alerts.values() if a.rule == "data.missing")
    assert gap.severity == "medium" and county.book.check(gap.alert_id, "close", "", county.rules.policy.alerts) is gap
    from alerts.lifecycle import AlertNoteRequired

    strict = policy(close_note_min_severity="low").alerts
    with pytest.raises(AlertNoteRequired, match="关闭中级预警"):
        county.book.check(gap.alert_id, "close", "", strict)
    assert policy(close_note_min_severity=None).alerts.close_note_min_severity is None


def test_a_close_without_a_reason_already_in_the_log_is_kept_and_marked(county):
    alert = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    [change] = county.feed(act(alert.alert_id, "close", "2026-02-11T09:00:00+08:00"))
    assert alert.state == "closed" and change.step.note == "关闭（未填写关闭理由）"


def test_a_reopened_alert_tells_who_reopened_it_and_why(county):
    alert = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    county.feed(act(alert.alert_id, "close", "2026-02-11T09:00:00+08:00", note="企业已召回"))
    [change] = county.feed(act(alert.alert_id, "reopen", "2026-02-12T09:30:00+08:00", actor="王科长", note="回访发现仍在销售该批次"))
    [note] = [n for n in change.notifications if n.receiver == "liangzhu"]
    assert note.reason == "reopened" and note.subject_zh.endswith("（预警重新打开）")
    assert "重新打开：王科长（2026-02-12 09:30），说明：回访发现仍在销售该批次" in note.text_zh.splitlines()
    county.feed(act(alert.alert_id, "close", "2026-02-13T09:00:00+08:00", note="已下架"))
    [change] = county.feed(act(alert.alert_id, "reopen", "2026-02-14T09:30:00+08:00", actor="王科长"))
    assert "重新打开：王科长（2026-02-14 09:30），未填写说明" in change.notifications[0].text_zh.splitlines()


# --------------------------------------------------------------------------- a town no route names


def test_a_town_no_route_names_is_told_to_the_fallback_at_once_not_at_escalation(rules):
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00", town="瓶窑镇"))
    opened = c.feed(ev("clock.tick", "2026-07-10T00:00:00+08:00", enterprise_id="*"))
    [gap] = [ch for ch in opened if ch.alert.rule == "data.missing"]
    assert gap.alert.severity == "medium" and gap.alert.receivers == ["chief"]  # escalate_to, as county alerts
    assert [n.receiver for n in gap.notifications] == ["chief"]
    assert gap.step.note.endswith("（预警路由未覆盖瓶窑镇，已通知 分管局长）")  # (the receiver's supervisor, not its policy name)
    # a policy default receiver for such towns, when the bureau names one
    c = County(rules, policy(unrouted_to=["desk"]))
    c.feed(registered("2026-01-05T09:00:00+08:00", town="瓶窑镇"))
    [gap] = [ch for ch in c.feed(ev("clock.tick", "2026-07-10T00:00:00+08:00", enterprise_id="*")) if ch.alert.rule == "data.missing"]
    assert gap.alert.receivers == ["desk"]


def test_a_critical_alert_of_a_town_no_route_names_reaches_the_fallback_beside_the_duty_desk(rules):
    """The duty desk's route (high and worse, no town) is by severity: it does not stand in for the
    town's supervisor.  The start-up warning says such towns' alerts go to the fallback, so all do."""
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00", town="瓶窑镇"))
    [opened] = unqualified(c.feed(failing("2026-02-10T10:00:00+08:00")))
    assert opened.alert.severity == "critical" and opened.alert.receivers == ["desk", "chief"]
    assert [n.receiver for n in opened.notifications] == ["desk", "chief"]
    assert opened.step.note.endswith("（预警路由未覆盖瓶窑镇，已通知 分管局长）")  # (the receiver's supervisor, not its policy name)
    # a routed town keeps its routes only: the fallback is for the towns the routes leave out
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    [opened] = unqualified(c.feed(failing("2026-02-10T10:00:00+08:00")))
    assert opened.alert.receivers == ["liangzhu", "desk"] and "路由未覆盖" not in opened.step.note


def test_a_routed_town_below_its_routes_severity_stays_as_the_bureau_chose(rules):
    pol = policy(routes=[{"receivers": ["liangzhu"], "towns": ["良渚街道"], "min_severity": "high"}])
    c = County(rules, pol)
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    [gap] = [ch for ch in c.feed(ev("clock.tick", "2026-07-10T00:00:00+08:00", enterprise_id="*")) if ch.alert.rule == "data.missing"]
    assert gap.alert.receivers == [] and "路由未覆盖" not in gap.step.note


def test_the_policy_says_which_enterprises_towns_no_route_names():
    alerts = policy().alerts
    assert alerts.unrouted_towns(["良渚街道", "瓶窑镇", None, "瓶窑镇"]) == ["瓶窑镇", "（未登记乡镇）"]
    assert alerts.unrouted_warning(["良渚街道"]) is None
    assert alerts.unrouted_warning(["瓶窑镇"]) == ("预警路由未覆盖以下乡镇/街道：瓶窑镇；这些企业的预警改为通知 chief（alerts.escalate_to）。"
                                                 "请在 alerts.routes 中为其指定接收人")
    bare = policy(routes=[], escalate_to=[]).alerts
    assert bare.unrouted_towns(["瓶窑镇"]) == []  # no route names a town: nothing is left out by town
    with pytest.raises(Exception, match="unknown receivers: nobody"):
        policy(unrouted_to=["nobody"])


def test_qrisk_run_says_at_start_which_towns_no_route_names(rules, capsys):
    from types import SimpleNamespace

    from qrisk.cli import _say_recovered

    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00", town="瓶窑镇"))
    # the county the start-up replay rebuilt, as `qrisk run` reports it
    _say_recovered(SimpleNamespace(migrations_applied=[], recovery={}, state=c.state, rules=c.rules))
    assert "预警路由未覆盖以下乡镇/街道：瓶窑镇" in capsys.readouterr().err
    routed = County(rules, policy())
    routed.feed(registered("2026-01-05T09:00:00+08:00"))
    _say_recovered(SimpleNamespace(migrations_applied=[], recovery={}, state=routed.state, rules=routed.rules))
    assert "路由未覆盖" not in capsys.readouterr().err


def _water_only_in_liangzhu():
    """良渚's only route is its water plants' (categories: packaged_water); 瓶窑镇's takes every category."""
    return policy(routes=[{"receivers": ["liangzhu"], "towns": ["良渚街道"], "categories": ["packaged_water"]},
                          {"receivers": ["pastry-team"], "towns": ["瓶窑镇"]},
                          {"receivers": ["desk"], "min_severity": "high"}])


def test_a_town_routed_only_for_another_category_sends_its_other_enterprises_alerts_to_the_fallback(rules):
    from alerts.lifecycle import AlertBook, Enterprise, _town_receivers
    from tests.test_alerts import _Eff, _tick

    pol = _water_only_in_liangzhu()
    assert pol.alerts.covers("良渚街道", "packaged_water") and not pol.alerts.covers("良渚街道", "pastry")
    assert pol.alerts.covers("瓶窑镇", "pastry") and not pol.alerts.covers("余杭街道", "pastry")
    book = AlertBook()
    pastry = lambda _e: Enterprise("良渚糕点厂", "良渚街道", "pastry")  # noqa: E731
    for severity in ("medium", "low"):
        (opened,) = book.apply(_tick("2026-03-01T10:00:00+08:00"), [_Eff(f"k-{severity}", severity, "2026-03-01T10:00:00+08:00")],
                               pol, pastry)
        # told at once, not after 7 days (medium) or never (low)
        assert opened.alert.receivers == ["chief"] and [n.receiver for n in opened.notifications] == ["chief"]
        assert opened.step.note.endswith("（预警路由未覆盖良渚街道糕点类，已通知 分管局长）")
    # the town's water plant keeps its route alone, as before
    water = lambda _e: Enterprise("清源桶装水厂", "良渚街道", "packaged_water")  # noqa: E731
    (opened,) = book.apply(_tick("2026-03-01T11:00:00+08:00"), [_Eff("k-water", "medium", "2026-03-01T11:00:00+08:00")], pol, water)
    assert opened.alert.receivers == ["liangzhu"] and "路由未覆盖" not in opened.step.note
    # and an alert that moves to the town with its enterprise is routed the same way
    moved = book.alerts[opened.alert.alert_id].model_copy(update={"category": "pastry"})
    assert _town_receivers(moved, pol.alerts) == ["chief"]


def test_the_start_up_warning_names_the_towns_categories_no_route_covers(rules, capsys):
    from types import SimpleNamespace

    from qrisk.cli import _say_recovered

    alerts = _water_only_in_liangzhu().alerts
    pairs = [("良渚街道", "packaged_water"), ("良渚街道", "pastry"), ("瓶窑镇", "pastry"), ("余杭街道", "packaged_water")]
    assert alerts.unrouted_towns(pairs) == ["余杭街道", "良渚街道（糕点类）"]
    assert alerts.unrouted_warning(pairs[:1] + pairs[2:3]) is None
    c = County(rules, _water_only_in_liangzhu())
    c.feed(registered("2026-01-05T09:00:00+08:00"), registered("2026-01-05T09:00:00+08:00", "E-PASTRY-1", name="良渚糕点厂", category="pastry"))
    _say_recovered(SimpleNamespace(migrations_applied=[], recovery={}, state=c.state, rules=c.rules))
    assert "预警路由未覆盖以下乡镇/街道：良渚街道（糕点类）；这些企业的预警改为通知 chief" in capsys.readouterr().err


# --------------------------------------------------------------------------- smaller: subjects, escalations, next steps


def test_two_missing_data_alerts_of_one_enterprise_say_which_data(county):
    county.feed(ev("clock.tick", "2027-03-10T00:00:00+08:00", enterprise_id="*"))
    gaps = {a.evidence["what"]: a for a in county.book.alerts.values() if a.rule == "data.missing"}
    assert set(gaps) == {"sampling", "inspection"}
    told = {what: next(ch.notifications[0] for ch in county.changes if ch.alert is a and ch.notifications) for what, a in gaps.items()}
    assert told["sampling"].subject_zh == "【中·检查或抽检逾期未开展（监督抽检）】清源桶装水厂"
    assert told["inspection"].subject_zh == "【中·检查或抽检逾期未开展（现场检查）】清源桶装水厂"
    assert told["inspection"].text_zh.splitlines()[0] == "新预警：检查或抽检逾期未开展（现场检查）"


def test_a_long_unacknowledged_alert_escalates_in_days_and_says_when_nobody_was_told(rules):
    from tests.test_alerts import policy as pol

    c = County(rules, pol(routes=[], escalate_to=["chief"]))  # no route: nobody told at opening
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    alert = unqualified(c.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    assert alert.receivers == [] and alert.notified_at is None
    [step] = [ch.step for ch in c.feed(ev("clock.tick", "2026-04-01T10:00:00+08:00", enterprise_id="*"))
              if ch.step.action == "escalated" and ch.alert is alert]
    assert step.note.startswith("生成后 50 天仍未确认（应于 2026-02-11 10:00 前确认），升级通报")
    assert step.note.endswith("；此前未通知任何人（无路由接收人）")
    c = County(rules, pol())
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    alert = unqualified(c.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    [step] = [ch.step for ch in c.feed(ev("clock.tick", "2026-02-11T11:00:00+08:00", enterprise_id="*"))
              if ch.step.action == "escalated" and ch.alert is alert]
    assert step.note.startswith("生成后 25 小时仍未确认") and "未通知" not in step.note


def test_a_notice_made_after_the_response_deadline_says_it_has_passed_instead_of_asking_to_act_before_it(rules):
    """A repeat sent in 2026-11 said 请于 2025-06-27 09:59 前确认处置, an escalation 请于 <a past day> 前确认处置:
    no notice asks for something before a time already past when it is made (the step's time)."""
    from alerts.lifecycle import AlertBook
    from tests.test_alerts import _Eff, _info, _tick

    book, pol = AlertBook(), policy()  # (the decisions' times in UTC, as the fold has them: 10:00 in Beijing)
    (opened,) = book.apply(_tick("2026-03-01T10:00:00+08:00"), [_Eff("k-late", "medium", "2026-03-01T02:00:00+00:00")], pol, _info)
    assert "请于 2026-03-08 10:00 前确认处置" in opened.notifications[0].text_zh  # a fresh alert: its deadline ahead
    repeat, escalation = book.apply(_tick("2026-03-10T10:00:00+08:00"), [_Eff("k-late", "medium", "2026-03-10T02:00:00+00:00")], pol, _info)
    assert (repeat.step.action, escalation.step.action) == ("repeated", "escalated")
    for change in (repeat, escalation):
        text = change.notifications[0].text_zh
        assert "确认处置期限 2026-03-08 10:00 已过，请立即确认处置" in text and "请于" not in text
    # acknowledged, it is not asked to be acknowledged again (a repeat of an alert being handled)
    book.apply(ev("alert.action", "2026-03-11T09:00:00+08:00", E, alert_id=opened.alert.alert_id, action="acknowledge", actor="li", note=""), [], pol, _info)
    (again,) = book.apply(_tick("2026-03-12T10:00:00+08:00"), [_Eff("k-late", "medium", "2026-03-12T02:00:00+00:00")], pol, _info)
    assert again.step.action == "repeated" and "确认处置" not in again.notifications[0].text_zh


def test_overdue_and_rejected_rectifications_say_what_to_do_next(rules):
    from processors.step import replay
    from tests.test_warnings import decisions

    log = [registered("2026-01-05T09:00:00+08:00"),
           ev("rectification.ordered", "2026-02-01T10:00:00+08:00", rectification_id="ZG-1", deadline="2026-02-20"),
           ev("rectification.completed", "2026-02-25T10:00:00+08:00", rectification_id="ZG-1"),
           ev("rectification.verified", "2026-02-27T10:00:00+08:00", rectification_id="ZG-1", accepted=False, note="消毒记录仍不全")]
    _, effects = replay(log, rules)
    [overdue] = decisions(effects, "rectification.overdue")
    assert "下一步：请核实整改进展，督促企业限期完成" in overdue.message_zh and "约谈" in overdue.message_zh
    [rejected] = decisions(effects, "rectification.rejected")
    assert "复查未通过。消毒记录仍不全。下一步：请责令企业针对未通过的问题限期重新整改并再次复查" in rejected.message_zh
