"""The order a pass sends in (a review of alert delivery):

- a receiver back after an outage gets an alert's 新预警 before its 预警自动关闭, both in the pass it comes back: the
  opening was backing off (up to 10 minutes) while the closing, never tried, went out the moment it answered;
- a slow but working receiver does not hold back another receiver's critical alert: the pass goes round the
  receivers, one notification each per turn, instead of one at a time in created order (20 low notices to a
  webhook taking 1.5 s each kept the duty desk's critical 30 s).

Real HTTP receivers; the store is chdb; the dispatcher's clock is the test's, so an outage takes no time."""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alerts.notification import Notification
from alerts.outbox import Dispatcher
from qrisk.store import migrate, open_store
from schemas.policy import AlertsPolicy
from tests.test_notify_give_up import Clock

OPENED = "【紧急·抽检不合格】清源桶装水厂"
CLOSED = "【紧急·抽检不合格】清源桶装水厂（预警自动关闭）"


class Webhook:
    """A webhook answering 503 until ``up``, then 200 after ``delay`` seconds; records (reason, alert) of what it took."""

    def __init__(self, delay: float = 0.0, up: bool = True) -> None:
        self.delay, self.is_up = delay, up
        self.got: list[tuple[str, str]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(hook.delay)
                code = 200 if hook.is_up else 503
                if code == 200:
                    hook.got.append((body["reason"], body["alert_id"]))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # loopback receivers must not be reached through a proxy
    made: list[Webhook] = []

    def make(**kw) -> Webhook:
        made.append(Webhook(**kw))
        return made[-1]

    yield make
    for h in made:
        h.close()


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path / "d")
    migrate(s)
    yield s
    s.close()


def _queue(store, delivery_id: str, alert_id: str, receiver: str, reason: str, subject: str, at: dt.datetime) -> None:
    note = Notification(delivery_id=delivery_id, alert_id=alert_id, enterprise_id="E1", receiver=receiver, channel="webhook",
                        reason=reason, subject_zh=subject, text_zh="正文")
    store.insert("outbox", [{"delivery_id": delivery_id, "alert_id": alert_id, "enterprise_id": "E1", "receiver": receiver,
                             "channel": "webhook", "reason": reason, "created_at": int(at.timestamp()), "created_ms": 0,
                             "body": note.to_json()}])


def _down_for_40_minutes(store, hook: Webhook, clock: Clock) -> Dispatcher:
    """The town's receiver answers 503 for 40 minutes, a pass every 4: the alert's opening backs off (default delays)."""
    _queue(store, "d-open", "AL-1", "town", "opened", OPENED, clock.now)
    d = Dispatcher(store, AlertsPolicy.model_validate({"receivers": [{"name": "town", "kind": "webhook", "url": hook.url}]}),
                   clock=clock)
    for _ in range(10):
        d.run_once()
        clock.now += dt.timedelta(minutes=4)
    assert "town" in d.failing and hook.got == []
    assert d.tried["d-open"].due > clock.now  # the opening backs off for minutes yet
    return d


def test_a_receiver_back_after_an_outage_gets_the_opening_before_the_closing_in_the_pass_it_answers(store, hooks):
    hook, clock = hooks(up=False), Clock()
    d = _down_for_40_minutes(store, hook, clock)
    _queue(store, "d-close", "AL-1", "town", "closed_by_system", CLOSED, clock.now)
    hook.is_up = True
    passes = []
    for _ in range(15):
        passes.append([(a.delivery_id, a.status) for a in d.run_once()])
        clock.now += dt.timedelta(minutes=1)
    assert hook.got == [("opened", "AL-1"), ("closed_by_system", "AL-1")]
    # the closing waited for the opening, and went in the same pass, not a backoff later
    assert [p for p in passes if p] == [[("d-open", "sent"), ("d-close", "sent")]]


def test_a_receiver_coming_back_has_its_waiting_retries_due_at_once_each_alert_in_order(store, hooks):
    hook, clock = hooks(up=False), Clock()
    d = _down_for_40_minutes(store, hook, clock)
    _queue(store, "d-close", "AL-1", "town", "closed_by_system", CLOSED, clock.now)
    _queue(store, "d-other", "AL-2", "town", "opened", "【高·抽检不合格】良渚糕点厂", clock.now + dt.timedelta(seconds=1))
    clock.now += dt.timedelta(seconds=1)
    hook.is_up = True
    # another alert's notice gets through: the receiver is back, so the opening is due in this pass, before the closing
    sent = d.run_once()
    assert [(a.delivery_id, a.status) for a in sent] == [("d-other", "sent"), ("d-open", "sent"), ("d-close", "sent")]
    assert hook.got == [("opened", "AL-2"), ("opened", "AL-1"), ("closed_by_system", "AL-1")]
    assert "town" not in d.failing and d.run_once() == []


def test_an_alerts_later_notice_waits_while_its_opening_backs_off_and_other_alerts_go(store, hooks):
    town, clock = hooks(up=False), Clock()
    d = _down_for_40_minutes(store, town, clock)
    # the receiver answers again, but only the closing is due: it is not sent ahead of the opening
    _queue(store, "d-close", "AL-1", "town", "closed_by_system", CLOSED, clock.now)
    town.is_up = True
    assert d.run_once() == [] and town.got == []


def test_a_slow_receivers_backlog_does_not_hold_back_the_duty_desks_critical_alert(store, hooks):
    slow, desk = hooks(delay=0.1), hooks()
    pol = AlertsPolicy.model_validate({"receivers": [{"name": "town-mail-gateway", "kind": "webhook", "url": slow.url},
                                                     {"name": "duty-desk", "kind": "webhook", "url": desk.url}]})
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    for i in range(20):
        _queue(store, f"low{i:02d}", f"AL-L{i:02d}", "town-mail-gateway", "opened", f"【低·检查或抽检逾期未开展】企业{i}",
               now - dt.timedelta(seconds=60 - i))
    _queue(store, "crit", "AL-C", "duty-desk", "opened", OPENED, now)
    attempts = Dispatcher(store, pol, journal=False).run_once()
    order = [a.delivery_id for a in attempts]
    assert {a.status for a in attempts} == {"sent"} and len(order) == 21
    assert order.index("crit") < 2  # one slow send at most before it, not twenty
    assert [x for x in order if x != "crit"] == [f"low{i:02d}" for i in range(20)]  # a receiver's own in created order
    assert [alert for _, alert in slow.got] == [f"AL-L{i:02d}" for i in range(20)] and desk.got == [("opened", "AL-C")]


def test_each_turn_gives_every_receiver_one_notification_those_that_work_first(store, hooks):
    a, b, c = hooks(), hooks(), hooks(up=False)
    pol = AlertsPolicy.model_validate({"receivers": [{"name": n, "kind": "webhook", "url": h.url}
                                                     for n, h in (("a", a), ("b", b), ("c", c))]})
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    for i in range(3):
        for j, name in enumerate(("c", "a", "b")):
            _queue(store, f"{name}{i}", f"AL-{name}{i}", name, "opened", "预警", now - dt.timedelta(seconds=60 - 3 * i - j))
    clock = Clock()
    d = Dispatcher(store, pol, clock=clock, journal=False, base_delay=0)
    first = [(x.delivery_id, x.status) for x in d.run_once()]
    # c (oldest) first while it is not known to fail; once failing, it goes last in each turn
    assert first == [("c0", "retry"), ("a0", "sent"), ("b0", "sent"),
                     ("a1", "sent"), ("b1", "sent"), ("c1", "retry"),
                     ("a2", "sent"), ("b2", "sent"), ("c2", "retry")]
