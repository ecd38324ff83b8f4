"""Against a real `qrisk run`: every timestamp of every answer written one way (ISO 8601, UTC,
milliseconds, ``Z``)."""
from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest

from tests.conftest import Server, golden

INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
LOOKS_LIKE_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d")


def fresh(event_type: str) -> dict:
    doc = golden(event_type)
    doc["event_id"] = str(uuid.uuid4())
    return doc


def bad_sample(**changes) -> dict:
    doc = fresh("sampling.result")
    doc["payload"]["items"][0]["values"][1] = "59"  # a quoted number: 422
    doc.update(changes)
    return doc


def every_time_text(doc, where="") -> list[tuple[str, str]]:
    """(path, text) of every string in an answer that looks like a date and a time."""
    if isinstance(doc, dict):
        return [hit for k, v in doc.items() for hit in every_time_text(v, f"{where}.{k}")]
    if isinstance(doc, list):
        return [hit for i, v in enumerate(doc) for hit in every_time_text(v, f"{where}[{i}]")]
    return [(where, doc)] if isinstance(doc, str) and LOOKS_LIKE_TIME.match(doc) else []


def assert_times_canonical(doc) -> int:
    found = every_time_text(doc)
    wrong = [(path, text) for path, text in found if not INSTANT.fullmatch(text)]
    assert not wrong, wrong[:5]
    return len(found)


# --------------------------------------------------------------------------- one way to write a time


def test_utc_text_writes_every_form_alike():
    from qrisk.api import utc_text, zoned

    assert utc_text("2026-11-26 21:25:17", 77) == "2026-11-26T21:25:17.077Z"  # the store's DateTime and _ms
    assert utc_text("2026-11-26T21:25:42.077398Z") == "2026-11-26T21:25:42.077Z"
    assert utc_text("2026-11-26T21:25:16Z") == "2026-11-26T21:25:16.000Z"
    assert utc_text("2026-11-27T05:25:16+08:00") == "2026-11-26T21:25:16.000Z"
    assert utc_text(dt.datetime(2026, 11, 26, 21, 25, 16)) == "2026-11-26T21:25:16.000Z"  # naive: the store's UTC
    doc = {"a": ["2026-11-26T21:25:16Z", "2026-11-26"], "note": "2026-11-26 21:25 local", "n": 3}
    assert zoned(doc) == {"a": ["2026-11-26T21:25:16.000Z", "2026-11-26"], "note": "2026-11-26 21:25 local", "n": 3}
    assert doc["a"][0] == "2026-11-26T21:25:16Z"  # a copy: the fold's objects are not touched


@pytest.fixture
def alerting(tmp_path, monkeypatch):
    """A server whose policy sends alerts to a local webhook: deliveries and outbox rows to read."""
    import yaml

    from tests.test_alert_delivery import Hook

    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QRISK_OUTBOX_INTERVAL", "0.1")
    hook = Hook(down=1)  # a retry, then sent: two attempts
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"alerts": {"receivers": [{"name": "desk", "kind": "webhook", "url": hook.url}],
                                                 "routes": [{"receivers": ["desk"], "min_severity": "high"}]}}), encoding="utf-8")
    monkeypatch.setenv("QRISK_OUTBOX_BASE_DELAY", "0.2")
    server = Server(tmp_path / "data", args=("--policy", str(policy))).start()
    try:
        yield server
    finally:
        server.stop()
        hook.close()


def test_every_timestamp_of_every_answer_is_iso_utc_to_the_millisecond(alerting):
    """GET /v1/alerts/{id} gave deliveries[].at and outbox[].created_at as "2026-11-26 21:25:17" (no
    zone), and the alert's own times as "…42.077398Z" beside "…16Z"."""
    from tests.test_alert_delivery import event, failing_sample, recent, wait_for

    srv = alerting
    sample = failing_sample(recent(1), "DC-T-1")
    assert srv.post("/v1/events", json=[event("enterprise.registered", recent(48)), sample]).status_code == 200
    (alert,) = wait_for(lambda: [a for a in srv.get("/v1/alerts").json() if a["rule"] == "sampling.unqualified"])
    detail = wait_for(lambda: (d := srv.get(f"/v1/alerts/{alert['alert_id']}").json()) and
                      [x["status"] for x in d["deliveries"]] == ["retry", "sent"] and d)
    assert detail["outbox"] and all(INSTANT.fullmatch(d["at"]) for d in detail["deliveries"])
    assert all(INSTANT.fullmatch(o["created_at"]) for o in detail["outbox"])
    assert all("at_ms" not in d for d in detail["deliveries"]) and all("created_ms" not in o for o in detail["outbox"])
    acted = srv.post(f"/v1/alerts/{alert['alert_id']}/actions", json={"action": "acknowledge", "note": "已到厂"})
    assert acted.status_code == 200, acted.text
    answers = [detail, acted.json(), srv.get("/v1/alerts").json(), srv.get("/v1/alerts?state=active").json(),
               srv.get(f"/v1/enterprises/{sample['enterprise_id']}").json(), srv.get("/v1/enterprises").json(),
               srv.get("/v1/campaign").json(), srv.get("/v1/audit").json()]
    bad = bad_sample()
    letter = srv.post("/v1/events", json=bad).json()["errors"][0]["dead_letter_id"]
    answers += [srv.get("/v1/dead-letters").json(), srv.get(f"/v1/dead-letters/{letter}").json()]
    assert sum(assert_times_canonical(a) for a in answers) > 20
    assert INSTANT.fullmatch(acted.json()["alert"]["opened_at"])
    # the CSV (machine format) says the same instants
    csv = srv.get("/v1/alerts?format=csv").text
    assert alert["opened_at"] in csv and INSTANT.fullmatch(alert["opened_at"])
