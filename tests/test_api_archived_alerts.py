"""An alert closed long ago, read through the API's credit report: the fold's book lets it go after
``alerts.closed_kept_days``, the alerts table keeps it without its steps, and the report said only
that it was closed — where ``qrisk credit-file``, replaying the log, says by whom and why.  The
steps are the ``alert_events`` rows; the two reports now read alike."""
from __future__ import annotations

import pytest

from tests.conftest import Server
from tests.test_risk import E, ev, pa_sample, registered


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("archived") / "data").start()
    server.events = [
        registered("2026-01-05T09:00:00+08:00"),
        pa_sample("2026-03-12T15:20:00+08:00", values=(0, 45, 0, 0, 0), sample_no="DC26330110000123"),
        ev("rectification.ordered", "2026-03-20T10:00:00+08:00"),  # (its cause names DC26330110000123)
        ev("rectification.completed", "2026-04-10T10:00:00+08:00"),
        ev("rectification.verified", "2026-04-20T10:00:00+08:00"),
    ]
    answer = server.post("/v1/events", json=[e.model_dump(mode="json") for e in server.events])
    assert answer.status_code == 200, answer.text
    yield server
    server.stop()


def _handling(srv) -> dict[str, str]:
    answer = srv.get(f"/v1/enterprises/{E}", params={"view": "report"})
    assert answer.status_code == 200, answer.text
    return {w["dedup_key"]: w["handling_zh"] for w in answer.json()["warnings"]}


def test_a_long_closed_alert_still_says_who_closed_it_and_why(srv, rules):
    from qrisk.backtest import state_as_of
    from qrisk.credit_report import build_report

    before = _handling(srv)
    closed = {k: v for k, v in before.items() if "复查通过" in v}
    assert closed, before  # the failure's alert, closed by the verified rectification, with the verifier's words
    assert all("王检查员" in v for v in closed.values()), closed
    # months later the fold's book lets the closed alert go (alerts.closed_kept_days): read from the tables now
    tick = ev("clock.tick", "2026-09-01T00:00:00+08:00", enterprise_id="*")
    assert srv.post("/v1/events", json=[tick.model_dump(mode="json")]).status_code == 200
    after = _handling(srv)
    assert {k: after[k] for k in closed} == closed
    # and as `qrisk credit-file` says it, replaying the log
    alerts: dict = {}
    state = state_as_of([*srv.events, tick], None, rules, alerts=alerts)
    views = [a.view() for a in alerts.values() if a.enterprise_id == E]
    replayed = {w["dedup_key"]: w["handling_zh"] for w in build_report(state.files[E], rules, alerts=views)["warnings"]}
    assert {k: replayed[k] for k in closed} == closed


def test_acting_on_an_archived_alert_is_refused_naming_when_it_ended_in_the_bureaus_time(srv):
    tick = ev("clock.tick", "2026-09-01T00:00:00+08:00", enterprise_id="*")
    assert srv.post("/v1/events", json=[tick.model_dump(mode="json")]).status_code == 200
    [gone] = [a for a in srv.get("/v1/alerts", params={"state": "verified"}, headers=srv.headers).json()
              if a["rule"] == "sampling.unqualified"]
    refused = srv.post(f"/v1/alerts/{gone['alert_id']}/actions", json={"action": "comment", "note": "回访"}, headers=srv.headers)
    assert refused.status_code == 409, refused.text
    # verified on 2026-04-20 at 10:00 local (02:00 UTC): said as the bureau's clock reads, not as raw UTC text
    assert f"预警 {gone['alert_id']} 已于 2026-04-20 10:00 结束并归档" in refused.json()["detail"], refused.json()["detail"]
