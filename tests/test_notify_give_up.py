"""A receiver outage does not lose alert notifications (an operator's review): the dispatcher gives up by
time (24 h), not after 8 attempts (254 s); what it gave up is read from the deliveries table, so
/healthz and the failed counter still say so after a restart; `qrisk alerts redeliver` puts them back
under the same delivery id (the receiver's Idempotency-Key); a store outage is said once a minute.

The receivers are real HTTP servers, really down (nothing listens) and then up on the same port; the
store is chdb; the dispatcher's clock is the test's, so a day of retries takes seconds."""
from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from alerts.notification import Notification
from alerts.outbox import Dispatcher
from qrisk.store import migrate, open_store
from schemas.policy import AlertsPolicy
from tests.conftest import Server
from tests.test_alert_delivery import event, failing_sample, recent, wait_for

ROOT = Path(__file__).resolve().parents[1]
E = "E-330110-001"


class Receiver:
    """A webhook on a fixed loopback port: ``up()`` serves (recording each call's Idempotency-Key),
    ``down()`` closes the port (connection refused, as a stopped proxy)."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.keys: list[str] = []
        self.server: ThreadingHTTPServer | None = None

    def up(self) -> "Receiver":
        calls = self.keys

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                calls.append(self.headers.get("Idempotency-Key", ""))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def receiver(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # loopback receivers must not be reached through a proxy
    r = Receiver()
    yield r
    r.down()


def queue(store, delivery_id: str = "d-critical") -> None:
    note = Notification(delivery_id=delivery_id, alert_id="AL-0123456789abcdef", enterprise_id=E, receiver="desk", channel="webhook",
                        reason="opened", subject_zh="紧急预警", text_zh="正文")
    store.insert("outbox", [{"delivery_id": delivery_id, "alert_id": note.alert_id, "enterprise_id": E, "receiver": "desk",
                             "channel": "webhook", "reason": "opened", "created_at": 1_770_000_000, "created_ms": 0, "body": note.to_json()}])


def policy(receiver: Receiver) -> AlertsPolicy:
    return AlertsPolicy.model_validate({"receivers": [{"name": "desk", "kind": "webhook", "url": receiver.url}]})


def step(d: Dispatcher, clock: Clock, until: float, every: float) -> list:
    """A pass every ``every`` seconds of the dispatcher's clock, for ``until`` seconds."""
    end = clock.now + dt.timedelta(seconds=until)
    made = []
    while clock.now < end:
        made += d.run_once()
        clock.now = min(clock.now + dt.timedelta(seconds=every), end)
    return made


def rows(store) -> list[dict]:
    kept = store.query("SELECT attempt, status, at, error FROM deliveries FINAL ORDER BY attempt")
    return [{**r, "at": dt.datetime.fromisoformat(str(r["at"]))} for r in kept]


def test_a_ten_minute_outage_delays_a_notification_and_loses_nothing(tmp_path, receiver):
    store = open_store(tmp_path / "d")
    migrate(store)
    try:
        queue(store)
        clock = Clock()
        d = Dispatcher(store, policy(receiver), clock=clock, journal=False)  # the defaults: 2 s doubling, up to 10 min
        made = step(d, clock, 600, every=2)  # down for 10 minutes (8 attempts used to end at 254 s)
        assert [a.status for a in made] == ["retry"] * len(made) and len(made) >= 8
        receiver.up()
        made = step(d, clock, 602, every=2)  # back: the next retry (at most 10 minutes later) gets through
        assert [a.status for a in made] == ["sent"]
        assert receiver.keys == ["d-critical"]  # its Idempotency-Key
        assert [r["status"] for r in rows(store)][-1] == "sent" and "failed" not in {r["status"] for r in rows(store)}
        assert d.receivers_problem() is None and d.given_up_count() == 0
    finally:
        store.close()


def test_a_notification_failing_for_a_day_is_given_up_and_health_says_so_truly(tmp_path, receiver):
    store = open_store(tmp_path / "d")
    migrate(store)
    try:
        queue(store)
        clock = Clock()
        d = Dispatcher(store, policy(receiver), clock=clock, journal=False)
        made = step(d, clock, 23 * 3600, every=600)
        assert {a.status for a in made} == {"retry"}  # still trying after 23 hours
        made = step(d, clock, 2 * 3600, every=600)
        assert [a.status for a in made][-1] == "failed" and made.count(made[-1]) == 1
        kept = rows(store)
        first, last = kept[0]["at"], kept[-1]["at"]
        assert kept[-1]["status"] == "failed" and dt.timedelta(hours=24) <= last - first <= dt.timedelta(hours=24, minutes=11)
        assert "gave up after" in kept[-1]["error"] and "qrisk alerts redeliver" in kept[-1]["error"]
        # the delays double up to the cap: 10 minutes apart at the end, as the README says
        assert kept[-1]["at"] - kept[-2]["at"] == dt.timedelta(minutes=10)
        problem = d.receivers_problem()
        assert "将自动重试" not in problem and "given up" in problem and "1 alert notification(s) given up" in problem
        assert "qrisk alerts redeliver" in problem and "desk" in problem
        assert d.given_up_count() == 1 and d.failed == 1
        assert step(d, clock, 3600, every=600) == []  # given up: not sent again
        # a new dispatcher (a restart) reads the give-up from the table
        again = Dispatcher(store, policy(receiver), clock=clock, journal=False)
        assert again.run_once() == []
        assert again.given_up_count() == 1 and again.failed == 1 and "given up" in again.receivers_problem()
    finally:
        store.close()


def test_an_explicit_max_attempts_still_gives_up_at_that_count(tmp_path, receiver):
    store = open_store(tmp_path / "d")
    migrate(store)
    try:
        queue(store)
        clock = Clock()
        d = Dispatcher(store, policy(receiver), clock=clock, journal=False, max_attempts=3)
        made = step(d, clock, 60, every=2)
        assert [a.status for a in made] == ["retry", "retry", "failed"] and "gave up after 3 attempts" in made[-1].error
    finally:
        store.close()


def redeliver(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "qrisk", "alerts", "redeliver", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_redeliver_sends_a_given_up_notification_again_under_its_delivery_id(tmp_path, receiver):
    data = tmp_path / "d"
    store = open_store(data)
    migrate(store)
    clock = Clock()
    try:
        queue(store)
        d = Dispatcher(store, policy(receiver), clock=clock, journal=False, give_up_after=60)
        assert [a.status for a in step(d, clock, 600, every=10)][-1] == "failed"
        # the running service holds the directory: refused, saying what to do
        held = redeliver("--all", "--data-dir", str(data))
        assert held.returncode == 2 and "qrisk run" in held.stderr and "stop it" in held.stderr
    finally:
        store.close()
    dry = redeliver("--since", "7d", "--data-dir", str(data), "--dry-run")
    assert dry.returncode == 0 and "d-critical" in dry.stdout and "would re-queue 1" in dry.stderr
    other = redeliver("--all", "--receiver", "mail", "--data-dir", str(data))
    assert other.returncode == 0 and "re-queued 0" in other.stderr
    done = redeliver("--all", "--data-dir", str(data))
    assert done.returncode == 0 and "d-critical" in done.stdout and "re-queued 1" in done.stderr, done.stderr
    assert "re-queued 0" in redeliver("--all", "--data-dir", str(data)).stderr  # (twice: nothing more)
    receiver.up()
    store = open_store(data)
    try:
        clock.now = dt.datetime.now(dt.timezone.utc)
        d = Dispatcher(store, policy(receiver), clock=clock, journal=False, give_up_after=60)
        assert [(a.delivery_id, a.status) for a in d.run_once()] == [("d-critical", "sent")]
        assert receiver.keys == ["d-critical"]  # the same Idempotency-Key as the attempts that failed
        kept = rows(store)
        requeued = [r for r in kept if r["status"] == "requeued"]
        assert len(requeued) == 1 and "re-queued by cli:" in requeued[0]["error"]  # the operator's action, on record
        assert kept[-1]["status"] == "sent" and len({r["attempt"] for r in kept}) == len(kept)  # (no attempt overwritten)
        assert d.given_up_count() == 0 and d.receivers_problem() is None and d.run_once() == []
    finally:
        store.close()


def test_a_failing_store_is_said_once_then_once_a_minute_and_when_it_works(receiver, capsys):
    class Down:
        exclusive = True
        broken = True

        def query(self, sql, params=None):
            if self.broken:
                raise ConnectionError("store down")
            return []

        def insert(self, table, rows):
            pass

    store = Down()
    mono = {"t": 0.0}
    d = Dispatcher(store, policy(receiver), journal=False, monotonic=lambda: mono["t"])
    for _ in range(360):  # six minutes of one pass a second
        d.pass_once()
        mono["t"] += 1
    assert d.last_error is not None
    store.broken = False
    d.pass_once()
    lines = [line for line in capsys.readouterr().err.splitlines() if "outbox pass" in line]
    assert len(lines) == 1 + 5 + 1, lines  # the first, one a minute with a count, the recovery
    assert "retrying" in lines[0] and "still failing (61 in a row over 60 s" in lines[1] and "work again (after 360 failed" in lines[-1]
    assert d.last_error is None


def _serve_giving_up_in_a_second(tmp_path: Path, receiver: Receiver, monkeypatch) -> Server:
    """A real `qrisk run` routing high alerts to the webhook, which it gives up after a second of failures."""
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"alerts": {"receivers": [{"name": "desk", "kind": "webhook", "url": receiver.url}],
                                               "routes": [{"receivers": ["desk"], "min_severity": "high"}]}}, allow_unicode=True),
                    encoding="utf-8")
    monkeypatch.setenv("QRISK_OUTBOX_INTERVAL", "0.1")
    monkeypatch.setenv("QRISK_OUTBOX_BASE_DELAY", "0.2")
    monkeypatch.setenv("QRISK_OUTBOX_GIVE_UP_AFTER_SECONDS", "1")
    return Server(tmp_path / "data", args=("--policy", str(path))).start()


def test_health_and_metrics_report_a_give_up_and_still_do_after_a_restart(tmp_path, receiver, monkeypatch):
    """A real `qrisk run`: the receiver down, the notification given up; /healthz says so truly (not
    "retrying"), and a restart neither makes it "ok" nor the failed counter 0."""
    srv = _serve_giving_up_in_a_second(tmp_path, receiver, monkeypatch)
    try:
        srv.post("/v1/events", json=[event("enterprise.registered", recent(48)), failing_sample(recent(1), "DC-0001")]).raise_for_status()

        def given_up():
            problem = srv.get("/healthz").json().get("problems", {}).get("alert_receivers", "")
            return problem if "given up" in problem else None

        problem = wait_for(given_up)
        assert "将自动重试" not in problem and "qrisk alerts redeliver" in problem and "desk" in problem
        metrics = srv.get("/metrics").text
        assert "qrisk_alert_deliveries_failed_total 1" in metrics.replace(".0", "")
        srv.stop()
        srv.start()
        health = wait_for(lambda: srv.get("/healthz").json() if given_up() else None)
        assert health["status"] == "degraded"
        assert "qrisk_alert_deliveries_failed_total 1" in srv.get("/metrics").text.replace(".0", "")
        public = srv.get("/healthz", headers={"authorization": ""}).json()
        assert public["status"] == "degraded"  # anyone sees that something is wrong
        # what the health line says to do: fix the receiver, stop, redeliver, start
        srv.stop()
        receiver.up()
        done = redeliver("--since", "1h", "--data-dir", str(tmp_path / "data"))
        assert done.returncode == 0 and "re-queued 1" in done.stderr, done.stderr
        srv.start()
        wait_for(lambda: receiver.keys)
        health = wait_for(lambda: (lambda h: h if h["status"] == "ok" else None)(srv.get("/healthz").json()))
        assert len(receiver.keys) == 1 and receiver.keys[0]  # its delivery id as the Idempotency-Key
        srv.stop()
        store = open_store(tmp_path / "data")
        try:
            kept = store.query("SELECT delivery_id, status, error FROM deliveries FINAL ORDER BY attempt")
        finally:
            store.close()
        assert {k["delivery_id"] for k in kept} == {receiver.keys[0]}
        assert [k["status"] for k in kept][-3:] == ["failed", "requeued", "sent"] and "re-queued by cli:" in kept[-2]["error"]
    finally:
        srv.stop()


def test_a_running_service_redelivers_on_request_without_a_stop(tmp_path, receiver, monkeypatch):
    """An operator's review: `qrisk alerts redeliver` cannot open a data directory `qrisk run` holds, so a
    given-up critical alert could be re-sent only by stopping the service.  POST /v1/alerts/redeliver (admin)
    re-queues it in the running service, whose dispatcher sends it at once under the same delivery id."""
    from qrisk.auth import KeyStore

    srv = _serve_giving_up_in_a_second(tmp_path, receiver, monkeypatch)
    _, supervisor = KeyStore(tmp_path / "data" / "keys.json").create("supervisor", "desk-officer", actor="tests")
    try:
        srv.post("/v1/events", json=[event("enterprise.registered", recent(48)), failing_sample(recent(1), "DC-0001")]).raise_for_status()
        wait_for(lambda: "given up" in srv.get("/healthz").json().get("problems", {}).get("alert_receivers", ""))
        assert "POST /v1/alerts/redeliver" in srv.get("/healthz").json()["problems"]["alert_receivers"]
        held = redeliver("--all", "--data-dir", str(tmp_path / "data"))
        assert held.returncode == 2 and "POST /v1/alerts/redeliver" in held.stderr
        # a supervisor may act on alerts, not re-send the outbox; a request must say which ones
        assert srv.post("/v1/alerts/redeliver?all=true", headers={"authorization": f"Bearer {supervisor}"}).status_code == 403
        for query, said in (("", "since"), ("?since=12h&all=true", "since"), ("?since=soon", "时长无效")):
            bad = srv.post(f"/v1/alerts/redeliver{query}")
            assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.since" and said in bad.json()["detail"], bad.text
        dry = srv.post("/v1/alerts/redeliver?since=1h&dry_run=true").json()
        assert dry["requeued"] == 1 and dry["dry_run"] and receiver.keys == []
        receiver.up()
        done = srv.post("/v1/alerts/redeliver?since=1h").json()
        assert done["requeued"] == 1 and "re-queued 1" in done["message"]
        (note,) = done["notifications"]
        assert note["queued"] and note["receiver"] == "desk" and note["given_up_at"].endswith("Z")
        wait_for(lambda: receiver.keys)  # sent without a restart
        assert receiver.keys == [note["delivery_id"]]  # its delivery id, the Idempotency-Key of the failed attempts
        wait_for(lambda: srv.get("/healthz").json()["status"] == "ok" or None)
        assert srv.post("/v1/alerts/redeliver?all=true").json()["requeued"] == 0  # twice: nothing more
        trail = srv.get("/v1/audit?action=alerts.redeliver").json()
        # every call is audited: the dry run, the re-queue, and the second that found nothing to re-queue
        by = {(t["detail"]["dry_run"], t["detail"]["requeued"], t["detail"]["all"]): t for t in trail}
        assert len(trail) == 3 and set(by) == {(True, 0, False), (False, 1, False), (False, 0, True)}, trail
        assert by[(False, 1, False)]["detail"]["delivery_ids"] == [note["delivery_id"]] and by[(False, 1, False)]["role"] == "admin"
        assert by[(True, 0, False)]["detail"]["found"] == 1 and by[(False, 0, True)]["detail"]["delivery_ids"] == []
        status = srv.get(f"/v1/alerts/{note['alert_id']}").json()
        requeued = [d for d in status.get("deliveries", []) if d["status"] == "requeued"]
        assert requeued and "POST /v1/alerts/redeliver" in requeued[0]["error"] and "test-admin" in requeued[0]["error"]
    finally:
        srv.stop()
