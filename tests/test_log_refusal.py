"""While the event log refuses writes (a full disk), /healthz and /readyz say so, stderr says it once, and
recovery is said: an operator's review saw 118 of 600 batches answered 503 while /healthz said only that
dashboards lagged ("the event log is not affected") and /readyz stayed 200.

The pipeline and the API are the real ones over a real chdb store whose ``event_log`` inserts are made to fail
while ``full`` is set (a full disk cannot be made here without mounting a file system); requests go through
the ASGI app in process."""
from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from qrisk.api import create_app
from qrisk.auth import KeyStore
from qrisk.pipeline import Pipeline
from qrisk.store import ChdbStore, StoreError
from tests.conftest import golden


class FillingStore(ChdbStore):
    full = False

    def insert(self, table, rows, *a, **kw):
        if self.full and table == "event_log":
            # (as chdb answers an insert on a full disk: the store's error, which the API answers 503)
            raise StoreError("Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE)")
        return super().insert(table, rows, *a, **kw)


def test_health_and_readiness_say_the_log_refuses_writes(tmp_path, rules, capsys):
    store = FillingStore(tmp_path / "data")
    now = [dt.datetime.now(dt.timezone.utc)]
    pipeline = Pipeline(store, rules, clock=lambda: now[0], snapshot_every=dt.timedelta(days=1))
    pipeline.recover()
    keys = KeyStore(tmp_path / "keys.json")
    _, admin = keys.create("admin", "ops", actor="tests")
    app = create_app(pipeline, keys=keys)
    auth = {"authorization": f"Bearer {admin}"}
    try:
        client = TestClient(app)
        assert client.post("/v1/events", json=golden("enterprise.registered"), headers=auth).status_code == 200
        assert client.get("/readyz").status_code == 200 and client.get("/healthz").json()["status"] == "ok"
        store.full = True
        sample = golden("sampling.result")
        refused = client.post("/v1/events", json=sample, headers=auth)
        assert refused.status_code == 503
        rows = store.query("SELECT outcome, detail FROM audit_log WHERE action = 'events.posted' AND outcome = 'unavailable'")
        assert [refused.json()["request_id"] in r["detail"] for r in rows] == [True]
        health = client.get("/healthz", headers=auth).json()
        assert health["status"] == "degraded" and "NOT_ENOUGH_SPACE" in health["problems"]["event_log"]
        assert "1 events refused" in health["problems"]["event_log"]
        assert "事件日志拒绝写入" in client.get("/healthz").json()["problems"]["event_log"]  # (public: that it is, not what)
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
        # a balancer heeding it sends nothing more, and only a write would say the log takes them again: ready again
        # 30 s after the last refusal (the next batch tries), while /healthz still names the problem
        now[0] += dt.timedelta(seconds=31)
        assert client.get("/readyz").status_code == 200 and "event_log" in client.get("/healthz").json()["problems"]
        assert client.post("/v1/events", json=sample, headers=auth).status_code == 503
        assert client.get("/readyz").status_code == 503
        store.full = False
        assert client.post("/v1/events", json=sample, headers=auth).status_code == 200  # the sender's resend lands
        assert client.get("/readyz").status_code == 200 and "event_log" not in client.get("/healthz").json().get("problems", {})
    finally:
        app.state.committer.close()
        app.state.audit.close()
        pipeline.close()
        store.close()
    err = capsys.readouterr().err
    assert err.count("the event log refuses writes") == 1 and "takes writes again (2 events refused" in err
