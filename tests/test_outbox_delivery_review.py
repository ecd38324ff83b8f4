"""Alert delivery after a review of the path from a warning to a supervisor:

- an e-mail one of whose recipients refuses it for now (452 mailbox full) is retried to that recipient alone: the
  others had it once, not once per retry (some 150 times over the 24 h window); given up, it says who has it;
- a receiver that accepts the connection and never answers costs one timeout a pass, not one per notification due
  to it, and a town's fresh mail goes before the retries;
- after a Kafka refold, a live event dated days back (a correction closing an alert) is news: judged by when it was
  received, not by its date.

Real receivers: an aiosmtpd SMTP server, a socket that accepts and never answers, an HTTP webhook; the store is chdb
or tests/test_outbox_failing.py's stand-in."""
from __future__ import annotations

import datetime as dt
import socket
import threading

import pytest

from alerts.notification import Notification
from alerts.outbox import Dispatcher, requeue
from qrisk.store import migrate, open_store
from schemas.policy import AlertsPolicy
from tests.test_alert_receivers import Recorder, smtp_server
from tests.test_notify_give_up import Clock, E, policy, receiver  # noqa: F401 - fixture
from tests.test_outbox_failing import Tables

A1, A2 = "zhang.wei@bureau.example", "duty-desk@bureau.example"
FULL = "452 4.2.2 Mailbox full"


class Mailbox(Recorder):
    """A recipient's mailbox that is full until ``empty()``: each message's recipients are read back."""

    def __init__(self) -> None:
        super().__init__(rcpt_reply={A2: FULL})

    def empty(self) -> None:
        self.rcpt_reply = {}

    def got(self, address: str) -> int:
        return sum(address in e.rcpt_tos for e in self.envelopes)


def _mail_policy(**extra) -> AlertsPolicy:
    return AlertsPolicy.model_validate({"receivers": [
        {"name": "town", "kind": "email", "supervisor": "良渚所 李所长", "to": [A1, A2]}, *extra.get("receivers", [])]})


def _queue_mail(store, delivery_id: str, at: dt.datetime, receiver: str = "town", channel: str = "email") -> None:
    note = Notification(delivery_id=delivery_id, alert_id="AL-0123456789abcdef", enterprise_id=E, receiver=receiver, channel=channel,
                        reason="opened", subject_zh="【紧急】抽检不合格", text_zh="正文")
    store.insert("outbox", [{"delivery_id": delivery_id, "alert_id": note.alert_id, "enterprise_id": E, "receiver": receiver,
                             "channel": channel, "reason": "opened", "created_at": int(at.timestamp()), "created_ms": 0,
                             "body": note.to_json()}])


# --------------------------------------------------------------------------- 1. partly accepted e-mail


def test_a_partly_accepted_email_is_retried_to_the_refused_recipient_alone_and_given_up_saying_who_has_it(tmp_path):
    box = Mailbox()
    store = open_store(tmp_path / "d")
    migrate(store)
    clock = Clock()
    try:
        with smtp_server(box) as cfg:
            _queue_mail(store, "d-mail", clock.now)
            d = Dispatcher(store, _mail_policy(), smtp=cfg, clock=clock, base_delay=0)
            for _ in range(5):
                [attempt] = d.run_once()
                assert attempt.status == "retry"
                clock.now += dt.timedelta(minutes=10)
            # a restart reads who has it from the table
            d = Dispatcher(store, _mail_policy(), smtp=cfg, clock=clock, base_delay=0, give_up_after=3600)
            clock.now += dt.timedelta(hours=1)
            [last] = d.run_once()
            assert last.status == "failed"
            assert box.got(A1) == 1 and box.got(A2) == 0  # the first one had it once, not at every retry
            (row,) = store.query("SELECT error FROM deliveries FINAL WHERE delivery_id = 'd-mail' AND status = 'failed'")
            error = row["error"]
            assert "均未送达" not in error
            assert "尝试 6 次，收件人 #1 已收到，收件人 #2 未收到，已放弃" in error and "@" not in error
            # re-queued once the mailbox has room: the one who did not get it gets it, the other not again
            box.empty()
            assert [r.delivery_id for r in requeue(store, clock=clock)] == ["d-mail"]
            d.requeued()
            [again] = d.run_once()
            assert again.status == "sent"
            assert box.got(A1) == 1 and box.got(A2) == 1
    finally:
        store.close()


def test_a_partly_accepted_email_whose_other_recipient_is_refused_for_good_says_who_has_it():
    box = Recorder(rcpt_reply={A2: "550 5.1.1 no such user"})
    tables = Tables()
    with smtp_server(box) as cfg:
        _queue_mail(tables, "d-mail", dt.datetime.now(dt.timezone.utc))
        [attempt] = Dispatcher(tables, _mail_policy(), smtp=cfg, journal=False).run_once()
    assert attempt.status == "failed" and "recipient #2 550" in attempt.error
    assert "收件人 #1 已收到，收件人 #2 未收到" in attempt.error
    assert [r["accepted"] for r in tables.deliveries] == [[A1]]


# --------------------------------------------------------------------------- 3. a hung receiver


@pytest.fixture
def hung():
    """A webhook that accepts every connection and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.05)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}/hook", held
    stop.set()
    t.join()
    for c in held:
        c.close()
    srv.close()


def test_a_hung_receiver_costs_one_timeout_a_pass_and_a_towns_fresh_mail_goes_first(hung, monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    url, held = hung
    box = Recorder()
    tables = Tables()
    pol = _mail_policy(receivers=[{"name": "desk", "kind": "webhook", "url": url}])
    for i in range(4):
        tables.queue(f"d-desk-{i}", "desk")  # older: sorted first
    _queue_mail(tables, "d-town-1", dt.datetime.now(dt.timezone.utc))
    with smtp_server(box) as cfg:
        d = Dispatcher(tables, pol, smtp=cfg, journal=False, base_delay=0, timeout=0.3)
        first = d.run_once()
        # one timeout for the hung desk, its other three deferred without an attempt; the town's mail went out
        assert [(a.delivery_id, a.status) for a in first] == [("d-desk-0", "retry"), ("d-town-1", "sent")]
        assert "no answer within 0.3 s" in first[0].error and "desk" in d.failing
        assert len(box.envelopes) == 1
        # the next pass: the desk's four are due retries; a town mail queued since is never tried, so it goes first
        _queue_mail(tables, "d-town-2", dt.datetime.now(dt.timezone.utc))
        second = d.run_once()
        assert [a.delivery_id for a in second] == ["d-town-2", "d-desk-0"]
    assert len(box.envelopes) == 2
    assert len(held) == 2  # two connections in two passes, not five
    assert [r["delivery_id"] for r in tables.deliveries if r["receiver"] == "desk"] == ["d-desk-0", "d-desk-0"]


# --------------------------------------------------------------------------- 4. a live notice after a refold


def _queue_note(store, delivery_id: str, step_at: dt.datetime, received_at: dt.datetime | None, reason: str) -> None:
    note = Notification(delivery_id=delivery_id, alert_id="AL-0123456789abcdef", enterprise_id=E, receiver="desk", channel="webhook",
                        reason=reason, subject_zh="预警自动关闭", text_zh="正文")
    row = {"delivery_id": delivery_id, "alert_id": note.alert_id, "enterprise_id": E, "receiver": "desk", "channel": "webhook",
           "reason": reason, "created_at": int(step_at.timestamp()), "created_ms": 0, "body": note.to_json()}
    if received_at is not None:
        row["received_at"] = int(received_at.timestamp())
    store.insert("outbox", [row])


def test_a_live_notice_dated_before_a_refold_is_sent_not_withheld_as_history(tmp_path, receiver):
    receiver.up()
    store = open_store(tmp_path / "d")
    migrate(store)
    clock = Clock()
    try:
        refolded = clock.now - dt.timedelta(hours=1)
        store.insert("refolds", [{"refolded_at": refolded.replace(tzinfo=None), "refolded_ms": 0,
                                  "history_before": (refolded - dt.timedelta(hours=720)).replace(tzinfo=None),
                                  "live_within_hours": 720, "log_records": 10, "by": "test"}])
        two_days_back = clock.now - dt.timedelta(days=2)
        # a correction received now, dated two days back, closes an alert: live news
        _queue_note(store, "d-live", two_days_back, clock.now, "closed_by_system")
        # the same kind of step the refold derived again from an event received back then: history still
        _queue_note(store, "d-refolded", two_days_back, two_days_back + dt.timedelta(minutes=5), "closed_by_system")
        d = Dispatcher(store, policy(receiver), clock=clock, journal=False)
        sent = d.run_once()
        assert [(a.delivery_id, a.status) for a in sent] == [("d-live", "sent")]
        assert receiver.keys == ["d-live"] and d.withheld == 1
        (kept,) = store.query("SELECT status, error FROM deliveries FINAL WHERE delivery_id = 'd-refolded'")
        assert kept["status"] == "failed" and "属历史数据，未发送" in kept["error"]
    finally:
        store.close()


def test_a_kafka_workers_outbox_rows_keep_when_their_event_was_received(rules):
    from qrisk.pipeline import OUTBOX_COLUMNS, alert_rows
    from tests.test_alerts import County, failing, policy as county_policy, unqualified
    from tests.test_risk import registered

    c = County(rules, county_policy())
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    changes = unqualified(c.feed(failing("2026-02-10T10:00:00+08:00")))
    received = dt.datetime(2026, 4, 1, 8, 0, tzinfo=dt.timezone.utc)
    rows = [dict(zip(OUTBOX_COLUMNS, o)) for r in alert_rows(changes, received) for o in r.outbox]
    assert rows and {r["received_at"] for r in rows} == {int(received.timestamp())}
    assert {r["created_at"] for r in rows} == {int(dt.datetime.fromisoformat("2026-02-10T10:00:00+08:00").timestamp())}
