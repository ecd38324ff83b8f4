"""The 现场检查发现问题 alert after a supervisor's review: a rectification order posted before the inspection record it
cites (the on-site 责令改正, the record typed in later that day) takes the alert when it opens, as one posted after it
does; and the alert names the inspection's date, its inspector and its 一般 findings.  Pure: events in, alerts out
(tests/test_alerts.py's harness)."""
from __future__ import annotations

import pytest

from alerts.lifecycle import AlertBook, evidence_zh
from tests.test_alerts import County, policy
from tests.test_risk import ev, registered

MINOR = {"code": "3.4", "description": "原料未离地存放", "severity": "minor"}
MAJOR = {"code": "3.2", "description": "灌装车间空气消毒记录不全", "severity": "major"}


@pytest.fixture
def county(rules):
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    return c


def inspection(at: str = "2026-03-25T10:30:00+08:00", findings=(MINOR,), result: str = "不符合", iid: str = "JC-2"):
    return ev("inspection.completed", at, inspection_id=iid, inspector="王检查员", result=result, findings=list(findings))


def order(at: str = "2026-03-25T09:40:00+08:00", rid: str = "ZG-X1", cause: str = "现场检查 JC-2 发现原料未离地存放"):
    return ev("rectification.ordered", at, rectification_id=rid, cause=cause, deadline="2026-04-10", what="原料离地离墙存放")


def completed(at: str = "2026-04-05T09:00:00+08:00", rid: str = "ZG-X1"):
    return ev("rectification.completed", at, rectification_id=rid, evidence="已加装货架，原料离地存放")


def verified(at: str = "2026-04-08T09:00:00+08:00", rid: str = "ZG-X1", accepted: bool = True):
    return ev("rectification.verified", at, rectification_id=rid, accepted=accepted, note="现场复查合格" if accepted else "仍有原料落地")


def inspection_alert(c: County):
    (alert,) = [a for a in c.book.alerts.values() if a.rule == "inspection.nonconforming"]
    return alert


# --------------------------------------------------------------------------- an order before the alert it cites


def test_an_order_posted_before_the_inspection_it_cites_takes_its_alert_when_it_opens(county):
    """The reviewer's case: order first, inspection record an hour later.  The alert stayed 待处置 with no
    rectification, escalated as unanswered, and the order's accepted verification never settled it."""
    county.feed(order())
    changes = county.feed(inspection())
    alert = inspection_alert(county)
    assert [(c.alert.alert_id, c.step.action, c.step.to_state) for c in changes if c.alert is alert] == [
        (alert.alert_id, "opened", "open"), (alert.alert_id, "start_rectification", "rectifying")]
    assert alert.state == "rectifying" and alert.rectifications == ["ZG-X1"]
    step = alert.steps[-1]
    assert step.actor == "insp-017" and step.note.startswith("责令整改 ZG-X1（期限 2026-04-10）：原料离地离墙存放")
    assert "先于本预警下达" in step.note and step.event_id == str(county.book.orders["E-330110-001"]["ZG-X1"].event_id)
    assert alert.acknowledged_at == alert.opened_at, "the order is the bureau's response: answered when the alert opened"
    # its receivers are told of the problem as it stands: under rectification, not asked to acknowledge by a deadline
    opened = next(c for c in changes if c.alert is alert and c.step.action == "opened")
    assert opened.notifications and all("状态：整改中" in n.text_zh and "确认处置" not in n.text_zh for n in opened.notifications)
    county.feed(ev("clock.tick", "2026-04-04T00:00:00+08:00", enterprise_id="*"))
    county.feed(completed(), verified())
    assert alert.state == "verified" and not alert.escalated
    assert [s.action for s in alert.steps] == ["opened", "start_rectification", "comment", "verify"]
    assert alert.dedup_key not in county.book.active_by_key


def test_the_inspection_first_case_is_as_it_was(county):
    county.feed(inspection(), order("2026-03-25T11:00:00+08:00"), completed(), verified())
    alert = inspection_alert(county)
    assert alert.state == "verified" and alert.rectifications == ["ZG-X1"] and not alert.escalated
    assert [s.action for s in alert.steps] == ["opened", "start_rectification", "comment", "verify"]
    assert "先于本预警下达" not in alert.steps[1].note


def test_an_order_verified_before_the_alert_opens_verifies_it_and_a_reversal_takes_it_back(county):
    """The whole rectification on file before the inspection record came (a record typed in weeks late): the alert
    opens settled, by the acceptance's event, so that a re-check taking the acceptance back puts it under rectification."""
    county.feed(order(), completed(), verified())
    changes = county.feed(inspection("2026-04-09T10:30:00+08:00"))
    alert = inspection_alert(county)
    assert [c.step.action for c in changes if c.alert is alert] == ["opened", "start_rectification", "verify"]
    assert alert.state == "verified" and alert.dedup_key not in county.book.active_by_key
    assert alert.steps[-1].note == "整改 ZG-X1 经王检查员复查通过（复查意见：现场复查合格）"
    county.feed(ev("clock.tick", "2026-04-30T00:00:00+08:00", enterprise_id="*"))
    assert not alert.escalated
    reversal = verified("2026-05-05T09:00:00+08:00", accepted=False)
    county.feed(reversal)
    assert alert.state == "rectifying" and alert.steps[-1].action == "verification_reversed"


def test_an_order_completed_or_rejected_before_the_alert_says_so_when_it_links(county):
    county.feed(order(), completed(), verified("2026-04-06T09:00:00+08:00", accepted=False))
    county.feed(inspection("2026-04-07T10:30:00+08:00"))
    alert = inspection_alert(county)
    assert alert.state == "rectifying" and "最近一次复查未通过，待重新整改" in alert.steps[-1].note
    county.feed(verified("2026-04-20T09:00:00+08:00"))
    assert alert.state == "verified"


def test_an_order_for_another_problem_or_another_enterprise_links_nothing(county):
    county.feed(registered("2026-01-05T09:00:00+08:00", enterprise_id="E-OTHER"))
    county.feed(order(cause="现场检查 JC-22 发现问题"), order(rid="ZG-Y", cause="检查 JC-2").model_copy(update={"enterprise_id": "E-OTHER"}))
    county.feed(inspection())
    alert = inspection_alert(county)
    assert alert.state == "open" and alert.rectifications == []


def test_a_later_alert_about_what_an_order_answered_already_is_not_that_orders(county):
    """An order linked to the alert of JC-2 and verified it; a correction of the record adding a major finding opens a new
    alert of JC-2: the old order's acceptance does not settle the new finding."""
    county.feed(inspection(), order("2026-03-25T11:00:00+08:00"), completed(), verified())
    first = inspection_alert(county)
    assert first.state == "verified"
    county.feed(inspection("2026-03-25T10:45:00+08:00", findings=(MINOR, MAJOR)))
    newer = [a for a in county.book.alerts.values() if a.rule == "inspection.nonconforming" and a is not first]
    assert len(newer) == 1 and newer[0].state == "open" and newer[0].rectifications == []


def test_orders_come_back_with_a_restored_book_and_a_replay_folds_the_same(rules):
    events = [registered("2026-01-05T09:00:00+08:00"), order(), inspection(), completed(), verified()]
    whole = County(rules, policy())
    whole.feed(*events)
    part = County(rules, policy())
    part.feed(*events[:2])
    assert part.book.orders and AlertBook.model_validate_json(part.book.model_dump_json()) == part.book
    part.book = AlertBook.model_validate_json(part.book.model_dump_json())
    part.feed(*events[2:])
    assert part.book.model_dump_json() == whole.book.model_dump_json()
    assert inspection_alert(part).state == "verified"


def test_orders_verified_long_ago_leave_the_book(county):
    county.feed(order(), completed(), verified())
    assert "ZG-X1" in county.book.orders["E-330110-001"]
    county.feed(ev("clock.tick", "2027-06-01T00:00:00+08:00", enterprise_id="*"))
    assert county.book.orders == {}


# --------------------------------------------------------------------------- what the alert says


def test_a_nonconforming_inspection_of_general_findings_alone_names_them_its_date_and_inspector(county):
    county.feed(inspection())
    alert = inspection_alert(county)
    assert alert.message_zh.startswith("清源桶装水厂：现场检查 JC-2（2026-03-25，王检查员）结论为“不符合”。问题：3.4 原料未离地存放（一般）。下一步：")
    assert "inspection JC-2 (2026-03-25, 王检查员) found the enterprise 不符合" in alert.message_en
    assert evidence_zh(alert) == "现场检查 JC-2，结论“不符合”，一般问题条款 3.4"


def test_serious_findings_come_first_then_the_general_ones_counted(county):
    county.feed(inspection(findings=(MINOR, MAJOR, {"code": "5.1", "description": "出厂检验记录未按批次留存", "severity": "minor"})))
    message = inspection_alert(county).message_zh
    assert "问题：3.2 灌装车间空气消毒记录不全（主要）；另有一般问题 2 项：3.4 原料未离地存放；5.1 出厂检验记录未按批次留存。下一步" in message


def test_a_long_list_of_findings_is_cut_and_counted(county):
    many = [{"code": f"9.{i}", "description": "记录" * 1000, "severity": "minor"} for i in range(30)]
    county.feed(inspection(findings=many))
    message = inspection_alert(county).message_zh
    assert "9.9 " in message and "9.10 " not in message and "等共 30 项。" in message and message.endswith("依法立案调查。")
    assert len(message.encode("utf-8")) < 4096 // 2, "well within what a WeCom robot takes, beside the notice's other lines"
