"""After a Kafka refold (`qrisk rebuild --kafka`), the workers derive every alert step again, and an outbox
row for every receiver the policy names now: an operator's review added a webhook to the policy, refolded,
and the new receiver was sent alerts 46 days old as news.  The refold is on record (``refolds``), and the
dispatcher records a notification never tried whose step is older than the refold's ``history_before`` as
not sent — a decision, as an embedded rebuild's: not given up, not re-queued by `qrisk alerts redeliver` —
while a recent one, and one tried or re-queued before the refold, go out.

The receiver is a real HTTP server; the store is chdb."""
from __future__ import annotations

import datetime as dt

from alerts.notification import Notification
from alerts.outbox import Dispatcher
from qrisk.store import migrate, open_store
from tests.test_notify_give_up import Clock, E, policy, receiver  # noqa: F401 - fixture


def _queue(store, delivery_id: str, step_at: dt.datetime, reason: str = "opened") -> None:
    note = Notification(delivery_id=delivery_id, alert_id="AL-0123456789abcdef", enterprise_id=E, receiver="desk", channel="webhook",
                        reason=reason, subject_zh="紧急预警", text_zh="正文")
    store.insert("outbox", [{"delivery_id": delivery_id, "alert_id": note.alert_id, "enterprise_id": E, "receiver": "desk",
                             "channel": "webhook", "reason": reason, "created_at": int(step_at.timestamp()), "created_ms": 0,
                             "body": note.to_json()}])


def test_a_refold_sends_no_history_as_news(tmp_path, receiver):
    receiver.up()
    store = open_store(tmp_path / "d")
    migrate(store)
    clock = Clock()
    try:
        old, recent = clock.now - dt.timedelta(days=46), clock.now - dt.timedelta(hours=2)
        _queue(store, "d-before", old)
        d = Dispatcher(store, policy(receiver), clock=clock, journal=False)
        assert [a.status for a in d.run_once()] == ["sent"]  # no refold on record: an old step's notification goes out as ever
        # the refold, then its outbox: an old step for a new receiver, a recent step, an old one re-queued by an operator
        store.insert("refolds", [{"refolded_at": clock.now.replace(tzinfo=None), "refolded_ms": 0,
                                  "history_before": (clock.now - dt.timedelta(hours=720)).replace(tzinfo=None),
                                  "live_within_hours": 720, "log_records": 10, "by": "test"}])
        _queue(store, "d-old", old)
        _queue(store, "d-recent", recent)
        # a closing or a hand-over three days before the refold (an upgrade that first makes such notices): history
        _queue(store, "d-closed", clock.now - dt.timedelta(days=3), reason="closed_by_system")
        _queue(store, "d-moved", clock.now - dt.timedelta(days=3), reason="transferred")
        _queue(store, "d-requeued", old)
        store.insert("deliveries", [{"delivery_id": "d-requeued", "alert_id": "AL-0123456789abcdef", "enterprise_id": E, "receiver": "desk",
                                     "channel": "webhook", "attempt": 1, "status": "requeued", "at": clock.now.replace(microsecond=0),
                                     "at_ms": 0, "response_code": 0, "error": ""}])
        sent = d.run_once()
        assert sorted(a.delivery_id for a in sent) == ["d-recent", "d-requeued"] and {a.status for a in sent} == {"sent"}
        assert sorted(receiver.keys) == ["d-before", "d-recent", "d-requeued"]
        (kept,) = store.query("SELECT status, error FROM deliveries FINAL WHERE delivery_id = 'd-old'")
        assert kept["status"] == "failed" and kept["error"].startswith("重建派生表（重新折叠 Kafka 日志）时由 ") and "属历史数据，未发送" in kept["error"]
        # a decision, not a receiver's failure: nothing given up, nothing sent on the next pass
        assert d.given_up_count() == 0 and d.receivers_problem() is None and d.withheld == 3
        assert d.run_once() == [] and sorted(receiver.keys) == ["d-before", "d-recent", "d-requeued"]
        # a decision, as an embedded rebuild's withheld notification: `qrisk alerts redeliver` does not put it back
        from alerts.outbox import requeue

        assert "d-old" not in [r.delivery_id for r in requeue(store, dry_run=True, clock=clock)]
    finally:
        store.close()
