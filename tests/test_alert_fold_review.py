"""The alert fold after a security review: an enterprise's alerts move with it to its new town, manual
escalations are spaced an hour apart, and ``acknowledged_at`` is set whenever the bureau's response moves
an alert out of 待处置.  Pure: events in, alerts and notifications out (tests/test_alerts.py's harness)."""
from __future__ import annotations

import datetime as dt

import pytest

from alerts.lifecycle import AlertActionError
from tests.test_alerts import TOWN, County, act, failing, policy, unqualified
from tests.test_risk import E, ev, registered


@pytest.fixture
def county(rules):
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    return c


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# --------------------------------------------------------------------------- the enterprise's town


def test_an_enterprise_moving_takes_its_alerts_and_their_routes_to_its_new_town(county):
    alert = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    assert alert.town == TOWN and "liangzhu" in alert.receivers
    mine = [a for a in county.book.alerts.values() if a.enterprise_id == E and a.town == TOWN]
    changes = county.feed(ev("enterprise.updated", "2026-02-11T10:00:00+08:00", town="东溪镇", campaign_tier=None, scale=None))
    moved = {c.alert.alert_id: c for c in changes if c.step.action == "comment"}
    assert set(moved) == {a.alert_id for a in mine}
    assert all(a.town == "东溪镇" for a in mine)
    change = moved[alert.alert_id]
    assert change.step.actor == "qrisk" and "良渚街道变更为东溪镇" in change.step.note
    # the town's route no longer takes it; a town the routes leave out goes to the county's fallback
    assert "liangzhu" not in alert.receivers and "chief" in alert.receivers
    # who gains it is told it was handed over (移交); the duty desk had it already
    assert [(n.receiver, n.reason) for n in change.notifications] == [("chief", "transferred")]
    # an update that leaves the town as it is touches no alert
    assert [c for c in county.feed(ev("enterprise.updated", "2026-02-12T10:00:00+08:00", town="东溪镇", campaign_tier=None, scale=None))
            if c.step.action == "comment"] == []


def test_a_book_replayed_gives_the_moved_town_too(rules):
    events = [registered("2026-01-05T09:00:00+08:00"), failing("2026-02-10T10:00:00+08:00"),
              ev("enterprise.updated", "2026-02-11T10:00:00+08:00", town="东溪镇", campaign_tier=None, scale=None)]
    first, second = County(rules, policy()), County(rules, policy())
    first.feed(*events)
    second.feed(*events)
    assert {a.alert_id: a.town for a in first.book.alerts.values()} == {a.alert_id: a.town for a in second.book.alerts.values()}
    assert {a.town for a in first.book.alerts.values() if a.enterprise_id == E and a.evidence.get("scope") != "category"} == {"东溪镇"}


# --------------------------------------------------------------------------- manual escalation, spaced


def test_a_manual_escalation_within_an_hour_of_the_last_is_refused_and_tells_nobody_if_logged(county):
    alert = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    county.feed(act(alert.alert_id, "acknowledge", "2026-02-10T11:00:00+08:00"))
    (first,) = county.feed(act(alert.alert_id, "escalate", "2026-02-10T12:00:00+08:00", note="企业拒不配合"))
    assert first.notifications and alert.escalated_at == at("2026-02-10T12:00:00+08:00")
    with pytest.raises(AlertActionError, match="1 小时内不能再次手动升级"):
        county.book.check(alert.alert_id, "escalate", "再次升级", at=at("2026-02-10T12:30:00+08:00"))
    # in the log anyway (a Kafka API reading a view seconds old): recorded, nobody told again
    (again,) = county.feed(act(alert.alert_id, "escalate", "2026-02-10T12:30:00+08:00", note="再次升级"))
    assert again.step.action == "escalate" and again.notifications == [] and "1 小时内不重复通知" in again.step.note
    assert alert.escalated_at == at("2026-02-10T12:00:00+08:00")
    # an hour after the last one told: told again
    county.book.check(alert.alert_id, "escalate", "第三次", at=at("2026-02-10T13:00:00+08:00"))
    (later,) = county.feed(act(alert.alert_id, "escalate", "2026-02-10T13:00:00+08:00", note="第三次"))
    assert later.notifications


def test_a_manual_escalation_right_after_the_deadlines_is_refused_too(county):
    alert = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    county.feed(ev("clock.tick", "2026-02-12T00:00:00+08:00", enterprise_id="*"))
    assert alert.escalated and alert.escalated_at == at("2026-02-12T00:00:00+08:00")
    with pytest.raises(AlertActionError, match="分钟前已升级通报"):
        county.book.check(alert.alert_id, "escalate", "再升级", at=at("2026-02-12T00:20:00+08:00"))


# --------------------------------------------------------------------------- acknowledged_at


def test_an_interview_answering_an_open_alert_sets_acknowledged_at(county):
    failed = failing("2026-02-10T10:00:00+08:00")
    alert = unqualified(county.feed(failed))[0].alert
    county.feed(ev("interview.held", "2026-02-10T15:00:00+08:00", interview_id="YT-1", held_on="2026-02-10",
                   reason="监督抽检铜绿假单胞菌不合格", related_event_ids=[str(failed.event_id)], follow_up_by=None))
    assert alert.state == "acknowledged" and alert.acknowledged_at == at("2026-02-10T15:00:00+08:00")


def test_a_rectification_order_on_an_open_alert_sets_acknowledged_at_and_a_later_step_keeps_it(county):
    from tests.test_alerts import _order

    alert = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    sample_no = alert.refs[0]
    county.feed(_order("ZG-1", f"抽样编号 {sample_no} 不合格", "2026-02-10T16:00:00+08:00"))
    assert alert.state == "rectifying" and alert.acknowledged_at == at("2026-02-10T16:00:00+08:00")


@pytest.mark.parametrize("action, note", [("start_rectification", ""), ("close", "已核实处置")])
def test_a_supervisors_step_out_of_open_sets_acknowledged_at(county, action, note):
    alert = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    county.feed(act(alert.alert_id, action, "2026-02-10T13:00:00+08:00", note=note))
    assert alert.state != "open" and alert.acknowledged_at == at("2026-02-10T13:00:00+08:00")


def test_acknowledged_at_is_the_first_response_and_a_reopening_clears_it(county):
    alert = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    county.feed(act(alert.alert_id, "acknowledge", "2026-02-10T11:00:00+08:00"))
    county.feed(act(alert.alert_id, "start_rectification", "2026-02-10T12:00:00+08:00"))
    assert alert.acknowledged_at == at("2026-02-10T11:00:00+08:00")
    county.feed(act(alert.alert_id, "close", "2026-02-10T13:00:00+08:00", note="已处置"))
    county.feed(act(alert.alert_id, "reopen", "2026-02-10T14:00:00+08:00", note="复发"))
    assert alert.state == "open" and alert.acknowledged_at is None
