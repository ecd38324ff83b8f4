"""A rectification's records arriving out of order, as the alert fold sees them: a completion or 复查 sent before its
order waits on the credit file and takes effect with the order — its alerts follow it then (they stayed 整改中 under a
rectification the credit file called verified), and an alert opened later finds the order verified; an order corrected
under its id is linked by what it says now.  Pure: events in, alerts out (tests/test_alerts.py's harness)."""
from __future__ import annotations

from tests.test_inspection_alert_review import completed, county, inspection, inspection_alert, order, verified  # noqa: F401 - fixture

E = "E-330110-001"


def test_a_verification_sent_before_its_order_settles_the_alert_the_order_takes(county):  # noqa: F811
    county.feed(inspection())  # the alert first
    early = verified(at="2026-04-08T09:00:00+08:00")
    county.feed(completed(at="2026-04-05T09:00:00+08:00"))
    county.feed(early)  # both before the order: kept, waiting
    assert inspection_alert(county).state == "open"
    county.feed(order(at="2026-04-09T09:00:00+08:00"))
    alert = inspection_alert(county)
    assert alert.rectifications == ["ZG-X1"] and alert.state == "verified"
    steps = [s for s in alert.steps if s.action != "escalated"]  # (two weeks unanswered before the order came)
    assert [s.action for s in steps] == ["opened", "start_rectification", "comment", "verify"]
    assert "已加装货架" in steps[2].note and "复查通过" in steps[3].note
    # the verify step is the acceptance's own: a re-check taking it back finds it
    assert alert.steps[-1].event_id == str(early.event_id)
    book_order = county.book.orders[E]["ZG-X1"]
    assert book_order.status == "verified" and book_order.verification["event_id"] == str(early.event_id)


def test_an_alert_opened_after_an_order_whose_acceptance_waited_for_it_is_verified(county):  # noqa: F811
    county.feed(verified(at="2026-03-24T15:00:00+08:00"))  # the acceptance before its order (mistyped, resent)
    county.feed(order(at="2026-03-25T09:40:00+08:00"))
    assert county.book.orders[E]["ZG-X1"].status == "verified"
    county.feed(inspection())
    alert = inspection_alert(county)
    assert alert.rectifications == ["ZG-X1"] and alert.state == "verified"


def test_an_order_corrected_to_cite_the_inspection_takes_its_alert(county):  # noqa: F811
    county.feed(order(at="2026-03-25T09:40:00+08:00", cause="日常检查发现问题"))  # cites nothing of the alert's
    county.feed(order(at="2026-03-25T09:50:00+08:00"))  # corrected: 现场检查 JC-2 …
    assert county.book.orders[E]["ZG-X1"].cause.startswith("现场检查 JC-2")
    county.feed(inspection())
    alert = inspection_alert(county)
    assert alert.rectifications == ["ZG-X1"] and alert.state == "rectifying"
