"""Alert delivery across a dispatcher restart and under retries that go on for hours:

- a restart keeps which receivers were failing and when each notification is due, both derived from the attempts on
  record: a receiver still down is not tried again before its back-off ends, /healthz names it at once, and when it
  comes back its waiting retries are due in the pass it answers — an alert's 新预警 backing off used to wait up to
  10 minutes after a restart, behind news it came before (the dispatcher had forgotten the receiver was failing);
- a restart (or the minute's re-read of the tables) after a receiver came back does not put its remaining backlog
  back into back-off;
- notices that keep failing (a receiver down for hours, a permanently bad address, one refused for now for ever) do not
  starve fresh notices to other receivers, nor a fresh notice to the same receiver once it is back (a guard: this
  held before these changes too).

Real receivers (HTTP webhooks, an aiosmtpd SMTP server); the store is chdb, closed and opened again over the same data
directory for a restart; the dispatcher's clock is the test's, so hours of outage take seconds."""
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
from tests.test_alert_receivers import Recorder, smtp_server
from tests.test_notify_give_up import Clock

OPENED = "【紧急·抽检不合格】清源桶装水厂"
CLOSED = "【紧急·抽检不合格】清源桶装水厂（预警自动关闭）"
GOOD, GONE, FULL = "zhang.wei@bureau.example", "li.na@old-bureau.example", "duty-desk@bureau.example"


class Webhook:
    """A webhook answering 503 until ``is_up``; ``calls`` counts every request, ``got`` the (reason, alert, id) it took."""

    def __init__(self, up: bool = True) -> None:
        self.is_up, self.calls = up, 0
        self.got: list[tuple[str, str, str]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.calls += 1
                code = 200 if hook.is_up else 503
                if code == 200:
                    hook.got.append((body["reason"], body["alert_id"], body["delivery_id"]))
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


class Data:
    """A chdb data directory that a test closes and opens again, as a restart of `qrisk run` does."""

    def __init__(self, path) -> None:
        self.path = path
        self.store = open_store(path)
        migrate(self.store)

    def restart(self):
        self.store.close()
        self.store = open_store(self.path)
        return self.store

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def data(tmp_path):
    d = Data(tmp_path / "d")
    yield d
    d.close()


def _queue(store, delivery_id: str, alert_id: str, receiver: str, at: dt.datetime, reason: str = "opened",
           subject: str = OPENED, channel: str = "webhook") -> None:
    note = Notification(delivery_id=delivery_id, alert_id=alert_id, enterprise_id="E1", receiver=receiver, channel=channel,
                        reason=reason, subject_zh=subject, text_zh="正文")
    store.insert("outbox", [{"delivery_id": delivery_id, "alert_id": alert_id, "enterprise_id": "E1", "receiver": receiver,
                             "channel": channel, "reason": reason, "created_at": int(at.timestamp()), "created_ms": 0,
                             "body": note.to_json()}])


def _town(hook: Webhook) -> AlertsPolicy:
    return AlertsPolicy.model_validate({"receivers": [{"name": "town", "kind": "webhook", "url": hook.url}]})


def _down_for_40_minutes(store, hook: Webhook, clock: Clock, ids=("d-open",)) -> Dispatcher:
    """The town's receiver answers 503 for 40 minutes, a pass every 4: each alert's opening backs off (default delays)."""
    for i, did in enumerate(ids):
        _queue(store, did, f"AL-{i + 1}", "town", clock.now + dt.timedelta(seconds=i))
    d = Dispatcher(store, _town(hook), clock=clock)
    for _ in range(10):
        d.run_once()
        clock.now += dt.timedelta(minutes=4)
    assert "town" in d.failing and hook.got == []
    assert all(d.tried[did].due > clock.now for did in ids)  # backing off for minutes yet
    return d


def test_a_restart_keeps_a_failing_receiver_failing_and_sends_its_waiting_opening_the_pass_it_comes_back(data, hooks, capsys):
    hook, clock = hooks(up=False), Clock()
    _down_for_40_minutes(data.store, hook, clock)
    store = data.restart()
    d = Dispatcher(store, _town(hook), clock=clock)
    calls = hook.calls
    # still down and the opening still backing off: the first pass after the restart does not try it again ...
    assert d.run_once() == [] and hook.calls == calls
    # ... and says at once that the town's receiver gets nothing through, as before the restart
    assert "town" in d.failing and d.failing["town"].attempts >= 5 and d.failing["town"].retrying
    problem = d.receivers_problem()
    assert problem is not None and "未能送达接收方 town" in problem and "HTTP 503" in problem
    assert "receiver town has been failing since" in capsys.readouterr().err
    # back: a fresh alert's notice gets through, and the waiting opening goes in that pass, then its closing
    _queue(store, "d-close", "AL-1", "town", clock.now, reason="closed_by_system", subject=CLOSED)
    _queue(store, "d-other", "AL-2", "town", clock.now + dt.timedelta(seconds=1))
    clock.now += dt.timedelta(seconds=1)
    hook.is_up = True
    sent = d.run_once()
    assert [(a.delivery_id, a.status) for a in sent] == [("d-other", "sent"), ("d-open", "sent"), ("d-close", "sent")]
    assert [(reason, alert) for reason, alert, _ in hook.got] == [("opened", "AL-2"), ("opened", "AL-1"), ("closed_by_system", "AL-1")]
    assert "town" not in d.failing and d.receivers_problem() is None and d.run_once() == []


@pytest.mark.parametrize("how", ["restart", "re-read"])
def test_a_receiver_back_before_a_restart_has_its_remaining_backlog_sent_at_once_after_it(data, hooks, how):
    hook, clock = hooks(up=False), Clock()
    _down_for_40_minutes(data.store, hook, clock, ids=("d-open1", "d-open2", "d-open3"))
    store = data.restart()
    # back; a pass of one send (a batch's end, or the process stopped right after it) takes a fresh alert's notice
    _queue(store, "d-fresh", "AL-9", "town", clock.now)
    hook.is_up = True
    d = Dispatcher(store, _town(hook), clock=clock, batch=1, refresh_seconds=0)
    assert [(a.delivery_id, a.status) for a in d.run_once()] == [("d-fresh", "sent")]
    clock.now += dt.timedelta(seconds=1)
    if how == "restart":
        d = Dispatcher(data.restart(), _town(hook), clock=clock)
    else:
        d.batch = 200  # (refresh_seconds=0: this pass reads the attempts on record again, as every minute does)
    # the town is back: what waited for it goes now, in the order it was made, not after up to 10 minutes' back-off
    assert [(a.delivery_id, a.status) for a in d.run_once()] == [("d-open1", "sent"), ("d-open2", "sent"), ("d-open3", "sent")]
    assert [did for _, _, did in hook.got] == ["d-fresh", "d-open1", "d-open2", "d-open3"]


def test_a_restart_waits_for_what_backs_off_and_sends_what_is_due_at_once(data, hooks):
    """The retry schedule survives: one notification due at the restart goes in the first pass, one still backing
    off is not tried until its time, and the receiver (still down) is not hammered meanwhile, nor tried before a
    receiver that works (it goes last in each turn, as before the restart)."""
    hook, desk, clock = hooks(up=False), hooks(), Clock()
    _queue(data.store, "d-early", "AL-1", "town", clock.now)
    d = Dispatcher(data.store, _town(hook), clock=clock)
    for _ in range(8):  # 2, 4, … 128 s apart: d-early's eighth attempt, due again 256 s after it
        d.run_once()
        clock.now = d.tried["d-early"].due
    clock.now -= dt.timedelta(minutes=1)
    _queue(data.store, "d-late", "AL-2", "town", clock.now)
    assert [a.delivery_id for a in d.run_once()] == ["d-late"]  # (its first retry due 2 s later)
    due = {did: r.due for did, r in d.tried.items()}
    both = AlertsPolicy.model_validate({"receivers": [{"name": "town", "kind": "webhook", "url": hook.url},
                                                      {"name": "desk", "kind": "webhook", "url": desk.url}]})
    d = Dispatcher(data.restart(), both, clock=clock)
    clock.now = due["d-late"]
    _queue(d.store, "desk-new", "AL-3", "desk", clock.now)
    calls = hook.calls
    assert [(a.delivery_id, a.status) for a in d.run_once()] == [("desk-new", "sent"), ("d-late", "retry")]  # due: at once
    assert hook.calls == calls + 1  # d-early, not due for 4 minutes yet, was left alone
    assert due["d-late"] < due["d-early"] - dt.timedelta(seconds=30)
    clock.now = due["d-early"] - dt.timedelta(seconds=1)
    assert "d-early" not in [a.delivery_id for a in d.run_once()]
    clock.now = due["d-early"]
    assert "d-early" in [a.delivery_id for a in d.run_once()]


# --------------------------------------------------------------------------- retries do not starve fresh notices


class Mail(Recorder):
    """An SMTP server refusing one address for good (550) and one for now, every time (452)."""

    def __init__(self) -> None:
        super().__init__(rcpt_reply={GONE: "550 5.1.1 User unknown", FULL: "452 4.2.2 Mailbox full"})

    def got(self, address: str) -> list[str]:
        return [e.content.decode("ascii", "replace") for e in self.envelopes if address in e.rcpt_tos]


def test_notices_failing_for_hours_starve_neither_other_receivers_nor_the_same_receiver_once_back(data, hooks):
    """A guard (no starvation was found: the pass goes round the receivers, those that work first, and takes every
    receiver's due notices in created order, a batch at most): a gateway down for six hours with a backlog three
    batches long, retried every pass (no back-off: the worst case), a mailbox that is gone (550) and one full for good
    (452) hold back neither a fresh notice to the duty desk nor the town's mail, and the gateway, once back, takes its
    fresh notice right after the backlog that came before it, oldest first, a batch a pass."""
    gateway, desk, box, clock = hooks(up=False), hooks(), Mail(), Clock()
    pol = AlertsPolicy.model_validate({"receivers": [
        {"name": "gateway", "kind": "webhook", "url": gateway.url},
        {"name": "desk", "kind": "webhook", "url": desk.url},
        {"name": "gone", "kind": "email", "to": [GONE]},
        {"name": "full", "kind": "email", "to": [FULL]},
        {"name": "town", "kind": "email", "to": [GOOD]}]})
    store, batch = data.store, 10
    start = clock.now - dt.timedelta(hours=6)
    for i in range(3 * batch):
        _queue(store, f"g{i:02d}", f"AL-G{i:02d}", "gateway", start + dt.timedelta(seconds=i))
    for i in range(3):
        _queue(store, f"gone{i}", f"AL-X{i}", "gone", start + dt.timedelta(seconds=100 + i), channel="email")
        _queue(store, f"full{i}", f"AL-F{i}", "full", start + dt.timedelta(seconds=100 + i), channel="email")
    with smtp_server(box) as smtp:
        clock.now = start + dt.timedelta(minutes=1)
        d = Dispatcher(store, pol, smtp=smtp, clock=clock, batch=batch, base_delay=0)  # every retry due every pass
        for _ in range(12):  # six hours, a pass every half hour
            made = d.run_once()
            assert len(made) == batch and {a.status for a in made} <= {"retry", "failed"}
            clock.now += dt.timedelta(minutes=30)
        assert {"gateway", "gone", "full"} <= set(d.failing)
        # fresh news for the duty desk and the town: in the first turn of the next pass, ahead of every retry
        _queue(store, "desk-new", "AL-D", "desk", clock.now)
        _queue(store, "town-new", "AL-T", "town", clock.now, channel="email")
        made = [a.delivery_id for a in d.run_once()]
        assert {"desk-new", "town-new"} <= set(made[:2]), made
        assert desk.got == [("opened", "AL-D", "desk-new")] and len(box.got(GOOD)) == 1
        # a restart after six hours changes none of it
        d = Dispatcher(data.restart(), pol, smtp=smtp, clock=clock, batch=batch, base_delay=0)
        store = d.store
        _queue(store, "desk-next", "AL-D2", "desk", clock.now)
        assert "desk-next" in [a.delivery_id for a in d.run_once()][:1]
        # the gateway is back, with a fresh notice newer than its whole backlog: the backlog goes at once, oldest first,
        # a batch a pass shared round the receivers with retries still failing (the full mailbox), then the fresh one
        _queue(store, "g-new", "AL-GN", "gateway", clock.now)
        gateway.is_up = True
        for _ in range(8):
            d.run_once()
            if any(did == "g-new" for _, _, did in gateway.got):
                break
            clock.now += dt.timedelta(seconds=1)
        ids = [did for _, _, did in gateway.got]
        assert "g-new" in ids and ids == [f"g{i:02d}" for i in range(3 * batch)] + ["g-new"], ids
        # the mailbox that is gone was given up at once, the full one is still retried, and the town got its mail once
        assert box.got(GONE) == [] and box.got(FULL) == [] and len(box.got(GOOD)) == 1
        final = {r["delivery_id"]: r["s"] for r in store.query(
            "SELECT delivery_id, argMax(status, attempt) AS s FROM deliveries GROUP BY delivery_id")}
        assert {final[f"gone{i}"] for i in range(3)} == {"failed"} and {final[f"full{i}"] for i in range(3)} == {"retry"}


# --------------------------------------------------------------------------- a real `qrisk run`, killed and started again


def test_a_killed_qrisk_run_names_the_failing_desk_at_once_and_sends_its_waiting_opening_the_pass_the_desk_is_back(
        tmp_path, monkeypatch):
    """A real `qrisk run` on chdb, kill -9 and started again over the same data directory: the desk's webhook is down
    (nothing listens), the first alert's notice backs off for a minute; after the restart /healthz names the desk at
    once, and when the desk is back a second plant's alert goes out with the first one's notice in the same pass —
    not a minute after the first attempt, when its back-off ends."""
    import yaml

    from tests.conftest import Server
    from tests.test_alert_delivery import event, failing_sample, recent, wait_for
    from tests.test_notify_give_up import Receiver

    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # loopback receivers must not be reached through a proxy
    desk = Receiver()
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"alerts": {"receivers": [{"name": "desk", "kind": "webhook", "url": desk.url}],
                                               "routes": [{"receivers": ["desk"], "min_severity": "high"}]}}, allow_unicode=True),
                    encoding="utf-8")
    monkeypatch.setenv("QRISK_OUTBOX_INTERVAL", "0.1")
    monkeypatch.setenv("QRISK_OUTBOX_BASE_DELAY", "60")  # the first retry a minute after the first attempt
    srv = Server(tmp_path / "data", args=("--policy", str(path))).start()
    try:
        srv.post("/v1/events", json=[event("enterprise.registered", recent(48)), failing_sample(recent(1), "DC-0001")]).raise_for_status()
        first = wait_for(lambda: [a for a in srv.get("/v1/alerts?state=open").json() if a["rule"] == "sampling.unqualified"])[0]["alert_id"]
        wait_for(lambda: [d for d in srv.get(f"/v1/alerts/{first}").json()["deliveries"] if d["status"] == "retry"])
        tried_at = time.monotonic()
        srv.kill9()
        srv.start()

        def desk_named():
            return "desk" in srv.get("/healthz").json().get("problems", {}).get("alert_receivers", "")

        wait_for(desk_named, timeout=10)  # (the next attempt, which would say it, is not due for most of a minute)
        assert "receiver desk has been failing since" in srv.log_path.read_text(errors="replace")
        desk.up()
        plant = event("enterprise.registered", recent(48), licence_no="SC10633011000099", name="清泉桶装水厂")
        plant["enterprise_id"] = "E-330110-002"
        sample = failing_sample(recent(1), "DC-0002")
        sample["enterprise_id"] = "E-330110-002"
        srv.post("/v1/events", json=[plant, sample]).raise_for_status()
        wait_for(lambda: len(desk.keys) >= 2, timeout=20)
        assert time.monotonic() - tried_at < 55, "the first alert's notice waited out its back-off"
        (opening,) = [d["delivery_id"] for d in srv.get(f"/v1/alerts/{first}").json()["deliveries"] if d["status"] == "sent"]
        assert len(desk.keys) == 2 and desk.keys[1] == opening  # the fresh one got through, then the waiting one
        wait_for(lambda: srv.get("/healthz").json()["status"] == "ok" or None, timeout=10)
    finally:
        srv.stop()
        desk.down()
