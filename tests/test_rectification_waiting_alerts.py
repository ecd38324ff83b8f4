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


def test_an_acceptance_and_a_later_rejection_both_before_the_order_leave_it_rejected(county):  # noqa: F811
    """The alert stage read the rejecting 复查 off the order's payload (AttributeError: the event is an order), failed the
    event as processing.failed and left the alert 待处置."""
    county.feed(inspection())
    accepted = verified(at="2026-04-05T09:00:00+08:00")
    county.feed(accepted)
    county.feed(verified(at="2026-04-08T09:00:00+08:00", accepted=False))
    county.feed(order(at="2026-04-09T09:00:00+08:00"))
    assert county.state.files[E].rectification("ZG-X1").status == "rejected"
    assert county.book.orders[E]["ZG-X1"].status == "rejected" and county.book.orders[E]["ZG-X1"].verification is None
    alert = inspection_alert(county)
    assert alert.state == "rectifying", "verified by the acceptance, opened again by the re-check that took it back"
    steps = [s for s in alert.steps if s.action != "escalated"]
    assert [s.action for s in steps][-2:] == ["verify", "verification_reversed"]
    assert steps[-2].event_id == str(accepted.event_id)
    assert "仍有原料落地" in steps[-1].note and "复查通过，该结论已被 2026-04-08 的复查撤销" in steps[-1].note


def test_an_outdated_verification_waiting_with_the_order_does_not_stop_it_linking(county):  # noqa: F811
    """The earlier-dated rejection arriving after the acceptance is history; the order carrying both still links."""
    county.feed(inspection())
    county.feed(verified(at="2026-04-08T09:00:00+08:00"))
    county.feed(verified(at="2026-04-05T09:00:00+08:00", accepted=False))  # dated earlier, arrives later
    county.feed(order(at="2026-04-09T09:00:00+08:00"))
    assert county.state.files[E].rectification("ZG-X1").status == "verified"
    alert = inspection_alert(county)
    assert alert.rectifications == ["ZG-X1"] and alert.state == "verified"
    assert county.book.orders[E]["ZG-X1"].status == "verified"


def test_a_rejection_then_the_redos_completion_before_the_order_leave_it_completed(county):  # noqa: F811
    county.feed(verified(at="2026-03-20T09:00:00+08:00", accepted=False))
    county.feed(completed(at="2026-03-22T09:00:00+08:00"))
    county.feed(order(at="2026-03-25T09:00:00+08:00"))
    assert county.state.files[E].rectification("ZG-X1").status == "completed"
    assert county.book.orders[E]["ZG-X1"].status == "completed"
