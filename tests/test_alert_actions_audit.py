"""A supervisor's step refused before it reaches the log (409: not from this state; 422: a note
it needs) is still in the audit: who tried what on which alert, and why it was refused."""
from __future__ import annotations

from tests.conftest import Server, golden


def test_refused_alert_steps_are_audited_with_their_reason(tmp_path):
    srv = Server(tmp_path / "data").start()
    try:
        assert srv.post("/v1/events", json=[golden("enterprise.registered"), golden("sampling.result")]).status_code == 200
        alert = next(a for a in srv.get("/v1/alerts").json() if a["rule"] == "sampling.unqualified")
        assert alert["state"] == "open"
        wrong = srv.post(f"/v1/alerts/{alert['alert_id']}/actions", json={"action": "verify"})
        assert wrong.status_code == 409, wrong.text
        bare = srv.post(f"/v1/alerts/{alert['alert_id']}/actions", json={"action": "close"})  # a 紧急 alert closed without a note
        assert bare.status_code == 422, bare.text
        audit = srv.get("/v1/audit?action=alert.action").json()
        assert [(a["outcome"], a["detail"]["status"], a["detail"]["action"]) for a in audit] == [("refused", 422, "close"), ("refused", 409, "verify")]
        assert audit[1]["detail"]["reason"] == wrong.json()["detail"] and audit[1]["detail"]["alert_id"] == alert["alert_id"]
    finally:
        srv.stop()
