"""An e-mail receiver one of whose recipients refuses for now (452 mailbox full): an alert's later notices keep their
order per recipient, not per receiver.

Held per receiver, the alert's 升级 and 关闭 waited the whole 24 h window its 新预警 was retried to the full mailbox,
for the colleague who had the 新预警 too (two hours of passes: the good recipient got the opening only).  Now a later
notice goes at once to the recipients that hold every earlier one of the alert, and to the refusing recipient after its
earlier ones — when it accepts, or once they are given up — each recipient getting each notice once, in order.

Real receivers: an aiosmtpd SMTP server; the store is chdb, closed and opened again over the same data directory for a
restart; the dispatcher's clock is the test's, so hours take seconds."""
from __future__ import annotations

import datetime as dt
import email
import email.policy

from alerts.notification import Notification
from alerts.outbox import Dispatcher
from qrisk.store import migrate, open_store
from schemas.policy import AlertsPolicy
from tests.test_alert_receivers import Recorder, smtp_server
from tests.test_notify_give_up import Clock

GOOD, FULL = "zhang.wei@bureau.example", "li.na@bureau.example"
OPENED = "【紧急·抽检不合格】清源桶装水厂"
ESCALATED = "【紧急·抽检不合格】清源桶装水厂（逾期未处置，已升级）"
CLOSED = "【紧急·抽检不合格】清源桶装水厂（预警自动关闭）"
ALERT = "AL-0123456789abcdef"


class Mailbox(Recorder):
    """The town's SMTP server: ``FULL``'s mailbox refuses with 452 until ``empty()``."""

    def __init__(self) -> None:
        super().__init__(rcpt_reply={FULL: "452 4.2.2 Mailbox full"})

    def empty(self) -> None:
        self.rcpt_reply = {}

    def got(self, address: str) -> list[str]:
        """The subjects ``address`` received, in the order they arrived."""
        return [email.message_from_bytes(e.content, policy=email.policy.default)["Subject"]
                for e in self.envelopes if address in e.rcpt_tos]


def _policy() -> AlertsPolicy:
    return AlertsPolicy.model_validate({"receivers": [
        {"name": "town", "kind": "email", "supervisor": "良渚所 李所长", "to": [GOOD, FULL]}]})


def _queue(store, delivery_id: str, reason: str, subject: str, at: dt.datetime) -> None:
    """The fold's notice of the alert to the town, stored as the step that made it is (qrisk.pipeline)."""
    note = Notification(delivery_id=delivery_id, alert_id=ALERT, enterprise_id="E1", receiver="town", channel="email",
                        reason=reason, subject_zh=subject, text_zh="正文")
    store.insert("outbox", [{"delivery_id": delivery_id, "alert_id": ALERT, "enterprise_id": "E1", "receiver": "town",
                             "channel": "email", "reason": reason, "created_at": int(at.timestamp()), "created_ms": 0,
                             "body": note.to_json()}])


def _last(store) -> dict[str, str]:
    return {r["delivery_id"]: r["s"] for r in store.query(
        "SELECT delivery_id, argMax(status, attempt) AS s FROM deliveries GROUP BY delivery_id")}


def _passes(d: Dispatcher, clock: Clock, minutes: int, every: int = 5) -> None:
    for _ in range(minutes // every):
        d.run_once()
        clock.now += dt.timedelta(minutes=every)


def test_a_full_mailbox_holds_back_no_later_notice_from_the_colleague_and_gets_them_all_in_order_once_it_accepts(tmp_path):
    box, clock = Mailbox(), Clock()
    path = tmp_path / "d"
    store = open_store(path)
    migrate(store)
    try:
        with smtp_server(box) as smtp:
            d = Dispatcher(store, _policy(), smtp=smtp, clock=clock)
            _queue(store, "d-open", "opened", OPENED, clock.now)
            [first] = d.run_once()
            assert first.status == "retry" and first.accepted == (GOOD,) and "town" in d.failing
            _passes(d, clock, 30)
            # the escalation, half an hour on: the colleague has it in the pass it is made, the full mailbox not yet
            _queue(store, "d-esc", "escalated", ESCALATED, clock.now)
            retried = d.retried
            made = {a.delivery_id: a for a in d.run_once()}
            assert box.got(GOOD) == [OPENED, ESCALATED] and box.got(FULL) == []
            esc = made["d-esc"]
            assert (esc.status, esc.code, esc.accepted, esc.waiting) == ("retry", 250, (GOOD,), True)
            assert "收件人 #1 已收到；收件人 #2 尚未收到本预警此前的通知" in esc.error and "@" not in esc.error
            # nobody refused the escalation: no retry counted for it (the opening's own retry, if due, is)
            assert d.retried == retried + ("d-open" in made)
            clock.now += dt.timedelta(minutes=5)
            _passes(d, clock, 30)
            # a restart reads the same from the table: the town is failing by the opening's refusals alone (the
            # escalation's attempt and the closing's were refused by nobody)
            store.close()
            store = open_store(path)
            d = Dispatcher(store, _policy(), smtp=smtp, clock=clock)
            _queue(store, "d-close", "closed_by_system", CLOSED, clock.now)
            d.run_once()
            refused = store.query("SELECT count() AS n FROM deliveries WHERE delivery_id = 'd-open' AND status = 'retry'")[0]["n"]
            assert d.failing["town"].attempts == refused
            assert box.got(GOOD) == [OPENED, ESCALATED, CLOSED] and box.got(FULL) == []
            _passes(d, clock, 60)  # two hours in all: still nothing twice to the colleague, nothing out of order
            assert box.got(GOOD) == [OPENED, ESCALATED, CLOSED] and box.got(FULL) == []
            assert _last(store) == {"d-open": "retry", "d-esc": "retry", "d-close": "retry"}
            # the mailbox has room: in the pass its opening is retried, it gets the three in order, the colleague none again
            box.empty()
            for _ in range(3):
                clock.now += dt.timedelta(minutes=5)
                d.run_once()
                if box.got(FULL):
                    break
            assert box.got(FULL) == [OPENED, ESCALATED, CLOSED]
            assert box.got(GOOD) == [OPENED, ESCALATED, CLOSED]
            assert _last(store) == {"d-open": "sent", "d-esc": "sent", "d-close": "sent"}
            assert "town" not in d.failing and d.receivers_problem() is None
            assert d.run_once() == []
    finally:
        store.close()


def test_once_the_opening_is_given_up_for_the_full_mailbox_its_later_notices_go_to_it_in_order(tmp_path):
    box, clock = Mailbox(), Clock()
    store = open_store(tmp_path / "d")
    migrate(store)
    try:
        with smtp_server(box) as smtp:
            d = Dispatcher(store, _policy(), smtp=smtp, clock=clock, give_up_after=3600)
            start = clock.now
            _queue(store, "d-open", "opened", OPENED, start)
            d.run_once()
            clock.now += dt.timedelta(minutes=5)
            _queue(store, "d-esc", "escalated", ESCALATED, clock.now)
            d.run_once()
            assert box.got(GOOD) == [OPENED, ESCALATED] and box.got(FULL) == []
            # the opening's hour runs out: it is given up saying who has it, and the escalation is tried to the full
            # mailbox next, in the same pass (refused again: retried, in its own window)
            while _last(store)["d-open"] != "failed":
                clock.now += dt.timedelta(minutes=5)
                d.run_once()
            assert clock.now - start >= dt.timedelta(hours=1)
            (gave_up,) = store.query("SELECT error FROM deliveries WHERE delivery_id = 'd-open' AND status = 'failed'")
            assert "收件人 #1 已收到，收件人 #2 未收到，已放弃" in gave_up["error"]
            (tried,) = store.query("SELECT max(attempt) AS n, argMax(error, attempt) AS error FROM deliveries WHERE delivery_id = 'd-esc'")
            assert tried["n"] == 2 and "recipient #2 452" in tried["error"]
            # room at last: the escalation reaches it, then the closing, each once; the opening stays given up
            box.empty()
            _queue(store, "d-close", "closed_by_system", CLOSED, clock.now)
            for _ in range(3):
                clock.now += dt.timedelta(minutes=5)
                d.run_once()
            assert box.got(FULL) == [ESCALATED, CLOSED]
            assert box.got(GOOD) == [OPENED, ESCALATED, CLOSED]
            assert _last(store) == {"d-open": "failed", "d-esc": "sent", "d-close": "sent"}
    finally:
        store.close()
