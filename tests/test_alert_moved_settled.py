"""An enterprise that moves takes its settled alerts' receivers along too: reopened later, the 重新打开 notice and
the escalation reach the new town's supervisor, not the old one's.  Pure: tests/test_alerts.py's harness."""
from __future__ import annotations

from tests.test_alerts import TOWN, County, act, failing, policy, unqualified
from tests.test_risk import E, ev, registered

ROUTES = [{"receivers": ["liangzhu"], "towns": [TOWN]}, {"receivers": ["pastry-team"], "towns": ["东溪镇"]},
          {"receivers": ["desk"], "min_severity": "high"}]


def _closed_then_moved(rules):
    c = County(rules, policy(routes=ROUTES))
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    alert = unqualified(c.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    assert "liangzhu" in alert.receivers
    c.feed(act(alert.alert_id, "close", "2026-02-10T12:00:00+08:00", note="已责令召回，处置完毕"))
    moved = [x for x in c.feed(ev("enterprise.updated", "2026-02-11T10:00:00+08:00", town="东溪镇", campaign_tier=None, scale=None))
             if x.alert is alert]
    return c, alert, moved


def test_a_closed_alert_moves_with_its_receivers_and_tells_nobody(rules):
    _, alert, moved = _closed_then_moved(rules)
    assert alert.state == "closed" and alert.town == "东溪镇"
    assert "pastry-team" in alert.receivers and "liangzhu" not in alert.receivers
    assert [n for x in moved for n in x.notifications] == []  # settled: nobody's work, no 移交


def test_a_closed_alert_reopened_after_its_enterprise_moved_tells_the_new_town_and_escalates_there(rules):
    c, alert, _ = _closed_then_moved(rules)
    [reopened] = [x for x in c.feed(act(alert.alert_id, "reopen", "2026-02-12T09:00:00+08:00", note="复查发现仍在销售"))
                  if x.alert is alert]
    told = [n.receiver for n in reopened.notifications]
    assert "pastry-team" in told and "liangzhu" not in told
    escalated = [n.receiver for x in c.feed(ev("clock.tick", "2026-02-14T00:00:00+08:00", enterprise_id="*"))
                 if x.alert is alert for n in x.notifications]
    assert "pastry-team" in escalated and "liangzhu" not in escalated
