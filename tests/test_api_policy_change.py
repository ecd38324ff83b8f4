"""A rule turned off: after the replay under the new policy its alerts are gone from the API
(README, design notes), though the alerts table keeps their rows until `qrisk rebuild`."""
from __future__ import annotations

import yaml

from qrisk.settings import DEFAULT_POLICY
from tests.conftest import Server, golden


def test_the_alerts_of_a_rule_turned_off_are_gone_and_say_why(tmp_path):
    data = tmp_path / "data"
    srv = Server(data).start()
    try:
        # (without the goldens' rectification, which would see the failure's alert verified: on record)
        assert srv.post("/v1/events", json=[golden("enterprise.registered"), golden("sampling.result")]).status_code == 200
        failed = [a for a in srv.get("/v1/alerts").json() if a["rule"] == "sampling.unqualified"]
        assert failed and failed[0]["state"] in ("open", "acknowledged", "rectifying")
        alert_id = failed[0]["alert_id"]
        srv.stop()
        policy = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
        policy["warnings"]["sampling_unqualified"]["enabled"] = False
        path = tmp_path / "policy.yaml"
        path.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
        srv.args = ("--policy", str(path))
        srv.start()
        assert all(a["rule"] != "sampling.unqualified" for a in srv.get("/v1/alerts").json())
        # the start's warning says what a newcomer found: the API follows the new policy at once, the tables do not
        said = srv.log_path.read_text(encoding="utf-8")
        assert "API 的诚信档案与预警已按新策略重放全部日志" in said and "the API's credit files and alerts follow it already" in said
        assert "qrisk rebuild" in said
        one = srv.get(f"/v1/alerts/{alert_id}")
        assert one.status_code == 404 and "由此前的预警策略产生" in one.json()["detail"]
        step = srv.post(f"/v1/alerts/{alert_id}/actions", json={"action": "acknowledge"})
        assert step.status_code == 404, step.text
    finally:
        srv.stop()


def test_a_handled_alert_of_a_rule_turned_off_is_gone_too(tmp_path):
    """Verified moments ago under the old policy is not "archived over 90 days ago": the book never pruned it."""
    from tests.conftest import all_goldens

    data = tmp_path / "data"
    srv = Server(data).start()
    try:
        assert srv.post("/v1/events", json=all_goldens()).status_code == 200
        [handled] = [a for a in srv.get("/v1/alerts").json() if a["rule"] == "sampling.unqualified"]
        assert handled["state"] == "verified"
        srv.stop()
        policy = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
        policy["warnings"]["sampling_unqualified"]["enabled"] = False
        path = tmp_path / "policy.yaml"
        path.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
        srv.args = ("--policy", str(path))
        srv.start()
        assert all(a["rule"] != "sampling.unqualified" for a in srv.get("/v1/alerts").json())
        step = srv.post(f"/v1/alerts/{handled['alert_id']}/actions", json={"action": "reopen", "note": "复查"})
        assert step.status_code == 404 and "由此前的预警策略产生" in step.json()["detail"]
    finally:
        srv.stop()
