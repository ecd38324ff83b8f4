"""Findings of a security review of a running server, each against a real `qrisk run` over HTTP:
alert steps' texts held to what other input is, a dead-letter page far past the end, a body refused
whole kept as its head, alert access following the enterprise's town, and manual escalations spaced."""
from __future__ import annotations

import pytest

from qrisk.auth import KeyStore
from tests.conftest import Server, golden


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("review") / "data").start()
    answer = server.post("/v1/events", json=[golden("enterprise.registered"), golden("sampling.result")])
    assert answer.status_code == 200, answer.text
    server.alert_id = next(a for a in server.get("/v1/alerts").json() if a["rule"] == "sampling.unqualified")["alert_id"]
    yield server
    server.stop()


# --------------------------------------------------------------------------- alert steps' texts


@pytest.mark.parametrize("body, field", [
    ({"action": "assign", "assignee": "bob\u0000x"}, "body.assignee"),
    ({"action": "assign", "assignee": "bob\nx"}, "body.assignee"),
    ({"action": "assign", "assignee": "x" * 201}, "body.assignee"),
    ({"action": "comment", "note": "ok\u0000"}, "body.note"),
    ({"action": "comment", "note": "\u001b[31mred\u001b[0m"}, "body.note"),
    ({"action": "comment", "note": "overwritten\rshown"}, "body.note"),
    ({"action": "comment", "note": "C1\u0085"}, "body.note"),
])
def test_an_alert_steps_text_with_control_characters_is_refused_naming_the_field(srv, body, field):
    before = srv.get(f"/v1/alerts/{srv.alert_id}").json()["steps"]
    answer = srv.post(f"/v1/alerts/{srv.alert_id}/actions", json=body)
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["errors"]
    assert error["field"] == field, error
    if "x" * 201 not in str(body):
        assert "控制字符" in error["reason_zh"] and "control character" in error["reason"]
    assert srv.get(f"/v1/alerts/{srv.alert_id}").json()["steps"] == before  # nothing went into the log


def test_a_notes_line_breaks_and_tabs_are_its_own_and_an_assignee_is_trimmed(srv):
    note = "第一行\n第二行\r\n\t缩进"
    answer = srv.post(f"/v1/alerts/{srv.alert_id}/actions", json={"action": "comment", "note": note})
    assert answer.status_code == 200, answer.text
    assert any(step["action"] == "comment" and step["note"] == note for step in answer.json()["alert"]["steps"])
    answer = srv.post(f"/v1/alerts/{srv.alert_id}/actions", json={"action": "assign", "assignee": "  张三  "})
    assert answer.status_code == 200, answer.text
    assert answer.json()["alert"]["assignee"] == "张三"


# --------------------------------------------------------------------------- dead letters


@pytest.mark.parametrize("offset", [2**64 - 1, 2**64 - 50, 2**63, 2**53, 2**53 + 1, 10**30, 10**6])
def test_a_dead_letter_page_far_past_the_end_is_empty(srv, offset):
    # (several letters on file: an offset that wrapped to -1 showed all but the last)
    for i in range(3):
        assert srv.post("/v1/events", content=b"not json %d" % i).status_code == 422
    assert srv.get("/v1/dead-letters", params={"limit": 100}).json()
    answer = srv.get("/v1/dead-letters", params={"offset": offset, "limit": 100})
    assert answer.status_code == 200, answer.text
    assert answer.json() == []


def _letter(srv, answer) -> dict:
    letter_id = answer.json()["errors"][0]["dead_letter_id"]
    letter = srv.get(f"/v1/dead-letters/{letter_id}")
    assert letter.status_code == 200, letter.text
    return letter.json()


@pytest.mark.parametrize("body", [b"x" * (6 * 1024 * 1024), b"\xff\xfe" + "不是UTF-8".encode("gbk") * 40_000,
                                  b"\x1f\x8b" + b"\x00" * 200_000])
def test_a_large_body_refused_whole_is_kept_as_its_head_size_and_digest(srv, body):
    import hashlib

    answer = srv.post("/v1/events", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text[:300]
    letter = _letter(srv, answer)
    import base64

    kept = base64.b64decode(letter["raw"]) if letter["raw_encoding"] == "base64" else letter["raw"].encode("utf-8")
    assert len(kept) <= 64 * 1024 and body.startswith(kept[:1000])
    digest = hashlib.sha256(body).hexdigest()
    assert "truncated" in letter["reason"] and digest in letter["reason"] and str(len(body)) in letter["reason"]
    note = next(e for e in letter["errors"] if e["type"] == "letter_truncated")
    assert note["raw_bytes"] == len(body) and note["sha256"] == digest and "拒收记录已截断" in note["reason_zh"]


def test_a_compressed_body_is_kept_as_its_head_too(srv):
    body = b"\x1f\x8b" + bytes(range(256)) * 1000
    answer = srv.post("/v1/events", content=body, headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert answer.status_code == 415, answer.text[:300]
    letter = _letter(srv, answer)
    assert "truncated" in letter["reason"] and any(e["type"] == "letter_truncated" for e in letter["errors"])


def test_a_batchs_element_refused_on_its_own_is_kept_whole(srv):
    big = golden("complaint.received")
    big["payload"]["unknown_field"] = "x" * 100_000
    answer = srv.post("/v1/events", json=[golden("enterprise.registered"), big])
    assert answer.status_code == 422, answer.text[:300]
    letter = _letter(srv, answer)
    assert "x" * 100_000 in letter["raw"] and "truncated" not in letter["reason"]


# --------------------------------------------------------------------------- alerts follow the enterprise's town


def test_an_enterprises_alerts_move_with_it_to_its_new_town(tmp_path):
    srv = Server(tmp_path / "data").start()
    try:
        store = KeyStore(srv.data_dir / "keys.json")
        _, old_town = store.create("supervisor", "liangzhu", towns=["良渚街道"])
        _, new_town = store.create("supervisor", "dongxi", towns=["东溪镇"])
        assert srv.post("/v1/events", json=[golden("enterprise.registered"), golden("sampling.result")]).status_code == 200
        enterprise = golden("enterprise.registered")["enterprise_id"]
        alert = next(a for a in srv.get("/v1/alerts").json() if a["rule"] == "sampling.unqualified")
        assert alert["town"] == "良渚街道"
        theirs = {a["alert_id"] for a in srv.get("/v1/alerts").json() if a["town"] == "良渚街道"}
        assert {a["alert_id"] for a in srv.get("/v1/alerts", headers=bearer(old_town)).json()} == theirs
        assert srv.get("/v1/alerts", headers=bearer(new_town)).json() == []

        moved = golden("enterprise.updated")
        moved["payload"] = {"town": "东溪镇"}
        assert srv.post("/v1/events", json=moved).status_code == 200, "the enterprise moves"

        # the old town's key: the enterprise and its alerts alike are another town's now
        assert srv.get(f"/v1/enterprises/{enterprise}", headers=bearer(old_town)).status_code == 404
        assert srv.get("/v1/alerts", headers=bearer(old_town)).json() == []
        assert srv.get(f"/v1/alerts/{alert['alert_id']}", headers=bearer(old_town)).status_code == 404
        refused = srv.post(f"/v1/alerts/{alert['alert_id']}/actions", json={"action": "acknowledge"}, headers=bearer(old_town))
        assert refused.status_code == 404, refused.text
        # the new town's key: sees them and acts on them
        assert srv.get(f"/v1/enterprises/{enterprise}", headers=bearer(new_town)).status_code == 200
        listed = srv.get("/v1/alerts", headers=bearer(new_town)).json()
        assert {a["alert_id"] for a in listed} == theirs and {a["town"] for a in listed} == {"东溪镇"}
        steps = srv.get(f"/v1/alerts/{alert['alert_id']}", headers=bearer(new_town)).json()["steps"]
        assert any("变更为东溪镇" in s["note"] for s in steps), steps
        taken = srv.post(f"/v1/alerts/{alert['alert_id']}/actions", json={"action": "acknowledge"}, headers=bearer(new_town))
        assert taken.status_code == 200, taken.text
        # and so after a restart, replaying the log (the fold decides it, as a Kafka worker's does)
        srv.stop()
        srv.start()
        assert {a["alert_id"] for a in srv.get("/v1/alerts", headers=bearer(new_town)).json()} == theirs
        assert srv.get("/v1/alerts", headers=bearer(old_town)).json() == []
    finally:
        srv.stop()


# --------------------------------------------------------------------------- manual escalation, spaced


def test_five_manual_escalations_in_a_row_tell_the_receivers_once(tmp_path, monkeypatch):
    import time

    import yaml

    from tests.test_alert_delivery import Hook, event, failing_sample, recent, wait_for

    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QRISK_OUTBOX_INTERVAL", "0.1")
    hook = Hook()
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"alerts": {"receivers": [{"name": "desk", "kind": "webhook", "url": hook.url}],
                                               "routes": [{"receivers": ["desk"], "min_severity": "high"}],
                                               "escalate_to": ["desk"]}}), encoding="utf-8")
    srv = Server(tmp_path / "data", args=("--policy", str(path))).start()
    try:
        srv.post("/v1/events", json=[event("enterprise.registered", recent(2)), failing_sample(recent(1), "DC-R-1")]).raise_for_status()
        alert = wait_for(lambda: [a for a in srv.get("/v1/alerts").json() if a["rule"] == "sampling.unqualified"])[0]
        wait_for(lambda: hook.calls)
        opened = len(hook.calls)
        answers = [srv.post(f"/v1/alerts/{alert['alert_id']}/actions", json={"action": "escalate", "note": f"第 {n} 次升级"})
                   for n in range(1, 6)]
        assert [a.status_code for a in answers] == [200, 409, 409, 409, 409], [a.text for a in answers]
        assert all("1 小时内不能再次手动升级" in a.json()["detail"] for a in answers[1:])
        assert answers[0].json()["alert"]["escalated_at"]
        wait_for(lambda: len(hook.calls) > opened)
        time.sleep(1.5)  # (the outbox had its chances to send any more)
        assert len(hook.calls) == opened + 1
        steps = srv.get(f"/v1/alerts/{alert['alert_id']}").json()["steps"]
        assert [s["action"] for s in steps].count("escalate") == 1
    finally:
        srv.stop()
