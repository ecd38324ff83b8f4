"""A receiver that keeps failing is said at once, not after the last of its attempts: one stderr line
when it starts failing and one when it works again, and /healthz "degraded" naming it meanwhile.
Its errors are stored and printed without the credentials in its URL, however the remote answer
echoes them.

The store is an in-memory stand-in for the two tables the dispatcher reads; the receivers are real
HTTP servers."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from alerts.notification import Notification
from alerts.outbox import Dispatcher
from alerts.receivers import redact_error
from schemas.policy import AlertsPolicy, Receiver

TOKEN = "d1n9t4lk5ecretAccessToken0123456789"


class Tables:
    exclusive = True  # (no lease: this process alone sends)

    def __init__(self) -> None:
        self.outbox: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if "FROM outbox" in sql and params and "ids" in params:  # the bodies of those about to be sent
            return [r for r in self.outbox if r["delivery_id"] in params["ids"]]
        if "FROM outbox" in sql:  # the pending ones, without bodies
            final = {d["delivery_id"] for d in self.deliveries if d["status"] in ("sent", "failed")}
            return [{k: v for k, v in r.items() if k != "body"} for r in self.outbox if r["delivery_id"] not in final]
        return []  # (nothing tried before this dispatcher)

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        getattr(self, table).extend(rows)

    def queue(self, delivery_id: str, receiver: str) -> None:
        # (an alert each: an alert's later notices to a receiver wait while its first is retried)
        note = Notification(delivery_id=delivery_id, alert_id=f"AL-{delivery_id}-0123456789abcdef", enterprise_id="E-1", receiver=receiver,
                            channel="webhook", reason="opened", subject_zh="主题", text_zh="正文")
        self.outbox.append({"delivery_id": delivery_id, "alert_id": note.alert_id, "enterprise_id": "E-1", "receiver": receiver,
                            "channel": "webhook", "body": note.to_json()})


@pytest.fixture
def robot():
    """A robot that answers as the gateway before one did: 503, its body quoting the address it was called at."""
    state = {"status": 503}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = (b'{"errcode":0}' if state["status"] == 200 else
                    f"upstream busy for POST {self.path} (token {TOKEN})".encode())
            self.send_response(state["status"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/robot/send?access_token={TOKEN}"
    yield state
    server.shutdown()


def test_a_failing_receiver_is_said_once_named_by_health_and_said_again_when_it_works(robot, capsys):
    tables = Tables()
    policy = AlertsPolicy.model_validate({"receivers": [{"name": "desk", "kind": "dingtalk", "url": robot["url"]}]})
    dispatcher = Dispatcher(tables, policy, base_delay=0, max_attempts=50, journal=False)
    for i in range(3):
        tables.queue(f"d{i}", "desk")
    assert dispatcher.receivers_problem() is None
    for _ in range(4):
        dispatcher.run_once()
    assert dispatcher.retried == 12 and dispatcher.sent == 0
    err = capsys.readouterr().err
    assert err.count("receiver desk is failing") == 1
    problem = dispatcher.receivers_problem()
    assert problem is not None and "desk" in problem and "12 failed attempt(s)" in problem
    # the remote answer quoted the token, in the query and on its own: stored and printed without it
    assert TOKEN not in err and TOKEN not in problem
    assert all(TOKEN not in d["error"] for d in tables.deliveries)
    assert any("access_token=***" in d["error"] for d in tables.deliveries)

    robot["status"] = 200
    dispatcher.run_once()
    assert dispatcher.sent == 3
    assert dispatcher.receivers_problem() is None
    assert capsys.readouterr().err.count("receiver desk works again") == 1


def test_errors_lose_the_receivers_secrets_and_every_query_value(monkeypatch):
    monkeypatch.setenv("QRISK_TEST_DING_SECRET", "SEC0123456789abcdef")
    receiver = Receiver(name="ding", kind="dingtalk", url=f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}",
                        secret_env="QRISK_TEST_DING_SECRET")
    said = redact_error(f"errmsg: token {TOKEN} / sign of SEC0123456789abcdef refused at https://x/y?key=abc&sign=zz%2B", receiver)
    assert TOKEN not in said and "SEC0123456789abcdef" not in said
    assert "?key=***&sign=***" in said
    wecom = Receiver(name="wx", kind="wecom", url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa")
    assert "693a91f6" not in redact_error("invalid webhook url, hint: key 693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa", wecom)


FEISHU_TOKEN = "2b6f3c1e-8a4d-4f7b-9c2e-5d1a0e7f3b94"


@pytest.fixture
def path_hook():
    """A webhook whose token is its path (Feishu's /open-apis/bot/v2/hook/<token>), failing with a 500
    whose body quotes the path it was called at."""
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = f'{{"code": 19001, "msg": "param invalid: incoming webhook access token invalid", "path": "{self.path}"}}'.encode()
            self.send_response(500)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", f"/open-apis/bot/v2/hook/{FEISHU_TOKEN}"
    server.shutdown()


def test_a_token_in_the_path_is_neither_stored_nor_printed_nor_shown_by_health(path_hook, capsys):
    origin, path = path_hook
    tables = Tables()
    policy = AlertsPolicy.model_validate({"receivers": [{"name": "feishu-duty", "kind": "webhook", "url": origin + path}]})
    dispatcher = Dispatcher(tables, policy, base_delay=0, max_attempts=2, journal=False)
    tables.queue("d0", "feishu-duty")
    dispatcher.run_once()
    dispatcher.run_once()
    assert [d["status"] for d in tables.deliveries] == ["retry", "failed"]
    err = capsys.readouterr().err
    problem = dispatcher.receivers_problem()
    assert problem is not None and "feishu-duty" in problem
    for said in [d["error"] for d in tables.deliveries] + [err, problem]:
        assert FEISHU_TOKEN not in said and path not in said and "8a4d" not in said, said
    # what the operator needs is still there: which receiver, which host, the status and the remote's own words
    assert all(d["error"].startswith(f"webhook receiver feishu-duty ({origin}/…): HTTP 500 ") and
               "incoming webhook access token invalid" in d["error"] for d in tables.deliveries)


def test_health_is_degraded_while_a_receiver_gets_nothing_through(robot, tmp_path):
    from fastapi.testclient import TestClient

    from qrisk.api import create_app
    from qrisk.auth import KeyStore, utc_now
    from qrisk.runtime import default_rules

    class AuditRows:  # the audit trail of the keys made below, kept in a list (this test's app has no store)
        rows: list = []

        def insert(self, table, rows):
            self.rows += rows

    class Pipeline:  # what /healthz reads of the embedded pipeline
        store = AuditRows()
        clock = staticmethod(utc_now)
        rules = default_rules()  # (the working-day calendar's missing years)
        _sink = writer_lease = None
        seq = derived_seq = events = 0

        class state:
            files: dict = {}

        def start_background_sink(self):
            pass

    tables = Tables()
    policy = AlertsPolicy.model_validate({"receivers": [{"name": "desk", "kind": "dingtalk", "url": robot["url"]}]})
    dispatcher = Dispatcher(tables, policy, base_delay=0, journal=False)
    keys = KeyStore(tmp_path / "keys.json")
    _, monitor = keys.create("monitor", "prometheus", actor="tests")
    _, lab = keys.create("lab", "lab-0451", actor="tests", source_id="CMA-0451")
    app = create_app(Pipeline(), keys=keys, dispatcher=dispatcher)  # (no lifespan: nothing started)
    try:
        client = TestClient(app)
        assert client.get("/healthz").json()["status"] == "ok"
        tables.queue("d0", "desk")
        dispatcher.run_once()
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "degraded"
        # anyone learns that the receivers fail; what they are and what they answered, only a monitor or an admin
        for who in ({}, {"authorization": f"Bearer {lab}"}, {"authorization": "Bearer qrisk_000000000000_x"}):
            public = client.get("/healthz", headers=who)
            assert public.json()["status"] == "degraded" and "预警通知接收端连续发送失败" in public.json()["problems"]["alert_receivers"]
            assert "desk" not in public.text and "127.0.0.1" not in public.text
        health = client.get("/healthz", headers={"authorization": f"Bearer {monitor}"})
        assert "desk" in health.json()["problems"]["alert_receivers"] and TOKEN not in health.text
        robot["status"] = 200
        dispatcher.run_once()
        assert client.get("/healthz").json()["status"] == "ok"
    finally:
        app.state.committer.close()
        app.state.audit.close()
