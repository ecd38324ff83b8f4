"""The answers of POST /v1/events match what /openapi.json says they are, for every status a
client can get: a real `qrisk run`, its own published document, jsonschema to compare."""
from __future__ import annotations

import copy
import uuid

import httpx
import jsonschema
import pytest

from qrisk.auth import KeyStore
from tests.conftest import Server, golden

LAB = "CMA-330100-0451"  # the lab of the golden sampling.result


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("answers") / "data").start()
    store = KeyStore(server.data_dir / "keys.json")
    _, server.lab_key = store.create("lab", "lab-1", source_id=LAB)
    _, server.viewer_key = store.create("supervisor", "sup-1")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def answer_schemas(srv) -> dict[str, dict]:
    doc = srv.get("/openapi.json").json()
    responses = doc["paths"]["/v1/events"]["post"]["responses"]
    schemas = {}
    for status, response in responses.items():
        schema = response["content"]["application/json"]["schema"]
        # (each answer's schema with the document's components, so that its $refs resolve)
        schemas[status] = {**schema, "components": doc["components"]}
    return schemas


def conforms(resp: httpx.Response, schemas: dict[str, dict]) -> dict:
    body = resp.json()
    jsonschema.validate(body, schemas[str(resp.status_code)])
    return body


def post(srv: Server, body, token: str | None = None, **kw) -> httpx.Response:
    if token is None:
        return srv.post("/v1/events", json=body, **kw)
    return httpx.post(srv.url + "/v1/events", json=body, headers={"authorization": f"Bearer {token}"}, timeout=30, **kw)


def test_every_status_of_the_post_declares_its_body(answer_schemas):
    assert {"200", "401", "403", "409", "413", "422", "503"} <= set(answer_schemas)


def test_an_accepted_batch_with_warnings_and_a_duplicate_answers_as_documented(srv, answer_schemas):
    reg = golden("enterprise.registered")
    sample = golden("sampling.result")
    unknown = copy.deepcopy(sample)
    unknown["event_id"] = str(uuid.uuid4())
    unknown["payload"]["sample_no"] = "DC-ANSWER-1"
    unknown["payload"]["items"][0]["item_code"] = "no_such_item"
    body = conforms(post(srv, [reg, sample, unknown]), answer_schemas)
    assert body["accepted"] == 3 and body["warnings"] >= 1
    assert any(w["type"] == "unknown_item" for w in body["events"][2]["warnings"])
    again = conforms(post(srv, sample), answer_schemas)
    assert again["events"][0]["status"] == "duplicate"


def test_refusals_answer_as_documented(srv, answer_schemas):
    bad = golden("sampling.result")
    bad["event_id"] = str(uuid.uuid4())
    bad["payload"]["items"][0]["values"] = ["0,01"]
    body = conforms(post(srv, [golden("enterprise.registered"), bad]), answer_schemas)
    assert body["errors"][0]["index"] == 1 and body["errors"][0]["dead_letter_id"]

    first = golden("complaint.received")
    first["event_id"] = str(uuid.uuid4())
    assert post(srv, first).status_code == 200
    clash = copy.deepcopy(first)
    clash["payload"]["text"] += "（补充）"
    resp = post(srv, clash)
    assert resp.status_code == 409
    assert conforms(resp, answer_schemas)["errors"][0]["logged_seq"] is not None

    posing = golden("sampling.result")
    posing["event_id"] = str(uuid.uuid4())
    posing["source"]["id"] = "CMA-999999-0001"
    resp = post(srv, posing, srv.lab_key)
    assert resp.status_code == 403
    assert conforms(resp, answer_schemas)["errors"][0]["type"] == "forbidden"

    for resp, status in ((post(srv, golden("sampling.result"), srv.viewer_key), 403),  # a role that may not post
                         (post(srv, golden("sampling.result"), "qk_not_a_key"), 401)):
        assert resp.status_code == status
        assert conforms(resp, answer_schemas)["detail"]


def test_a_body_too_large_answers_as_documented(srv, answer_schemas):
    huge = b"[" + b" " * (9 * 1024 * 1024) + b"]"  # past the default 8 MiB
    resp = srv.post("/v1/events", content=huge, headers={"content-type": "application/json"}, timeout=60)
    assert resp.status_code == 413
    conforms(resp, answer_schemas)


def test_an_undocumented_key_in_an_answer_would_fail_the_check(answer_schemas):
    # the check above can fail: the schemas refuse a key they do not name
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"accepted": 1, "duplicates": 0, "events": [], "surprise": 1}, answer_schemas["200"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"detail": "x", "errors": [{"index": 0, "field": "a", "type": "t", "reason": "r", "reason_zh": "r",
                                                        "extra": 1}]}, answer_schemas["422"])


def test_the_scenario_examples_post_as_they_are(srv, answer_schemas):
    """schemas/examples/scenarios/: what README's 'Scenarios' tells a lab integrator to try first."""
    from tests.conftest import EXAMPLES

    assert post(srv, golden("enterprise.registered")).status_code in (200,)
    for name in ("retest.json", "correction.json"):
        body = (EXAMPLES / "scenarios" / name).read_bytes()
        resp = srv.post("/v1/events", content=body, headers={"content-type": "application/json"})
        assert resp.status_code == 200, resp.text
        assert conforms(resp, answer_schemas)["accepted"] + resp.json()["duplicates"] == 2
    file = srv.get("/v1/enterprises/E-330110-001").json()
    by_no = {}
    for s in file["samples"]:
        by_no.setdefault(s["sample_no"], []).append(s)
    retested, corrected = by_no["DC26330110000245"], by_no["DC26330110000311"]
    assert [s["superseded_as"] for s in retested] == ["retest", None] and retested[1]["judgement"]["verdict"] == "pass"
    assert [s["superseded_as"] for s in corrected] == ["corrected", None] and corrected[1]["judgement"]["verdict"] == "pass"


def test_a_bad_parameter_and_the_start_up_answer_are_documented_refusals(srv, answer_schemas, tmp_path):
    r = srv.post("/v1/events?dry_run=1", json=[])
    assert r.status_code == 422
    conforms(r, answer_schemas)
    # the start-up responder's 503: the port answers while the log replays
    from qrisk.starting import StartupResponder, bind
    from tests.test_starting import _progress

    sock = bind("127.0.0.1", 0)
    responder = StartupResponder(sock, _progress(40_000, 10_000)).start()
    try:
        r = httpx.post(f"http://127.0.0.1:{sock.getsockname()[1]}/v1/events", json=[], timeout=10)
        assert r.status_code == 503 and r.json()["starting"]["events_done"] == 10_000
        conforms(r, answer_schemas)
    finally:
        responder.stop()
        sock.close()


def test_a_sample_number_on_file_under_another_enterprise_is_said(srv, answer_schemas):
    """A lab integrator's finding: a lab sent a failing report under the wrong enterprise, then under the right
    one with the same sample number — a second, unrelated sample, without a word; the wrong enterprise keeps the
    failure.  抽样编号 are unique: the answer says the number is on file under another enterprise (naming it to the
    lab system that sent both, to no other lab; `qrisk import` words it through the same function)."""
    sample_no = f"DC-ELSEWHERE-{uuid.uuid4().hex[:6]}"
    regs = []
    for eid in ("E-ELSE-1", "E-ELSE-2"):
        reg = golden("enterprise.registered")
        reg.update(event_id=str(uuid.uuid4()), enterprise_id=eid)
        reg["payload"]["licence_no"] = f"SC{uuid.uuid4().int % 10**14:014d}"
        regs.append(reg)
    assert post(srv, regs).status_code == 200

    def sent(enterprise_id: str, token: str | None = None, source: dict | None = None):
        doc = golden("sampling.result")
        doc.update(event_id=str(uuid.uuid4()), enterprise_id=enterprise_id)
        doc["payload"]["sample_no"] = sample_no
        if source is not None:
            doc["source"] = source
        body = conforms(post(srv, doc, token), answer_schemas)
        return [w for w in body["events"][0].get("warnings", []) if w["type"] == "sample_no_elsewhere"]

    assert sent("E-ELSE-1", srv.lab_key) == []  # the first report of the number: nothing to say
    (w,) = sent("E-ELSE-2", srv.lab_key)  # the same lab system, under the other enterprise
    assert "E-ELSE-1" in w["reason_zh"] and "抽样编号唯一" in w["reason_zh"] and "E-ELSE-1" in w["reason"]
    # another lab's key hears that it is on file elsewhere, not where
    _, other = KeyStore(srv.data_dir / "keys.json").create("lab", "lab-elsewhere", source_id="CMA-330100-0777")
    (w,) = sent("E-ELSE-2", other, {"kind": "lab", "id": "CMA-330100-0777", "name": "别家检测公司"})
    assert "另一企业" in w["reason_zh"] and "E-ELSE-1" not in w["reason_zh"] + w["reason"]


def test_a_resolution_sent_under_another_enterprise_than_its_complaint_is_said(srv, answer_schemas):
    """A supervisor's finding: a complaint's resolution posted under the wrong enterprise waited for good under
    it, answered only complaint_not_on_file, and the complaint stayed 核查中.  The answer names where the
    complaint is on file (the complaint channel and inspectors work for the whole bureau)."""
    number = f"TS-ELSEWHERE-{uuid.uuid4().hex[:6]}"
    regs = []
    for eid in ("E-TS-1", "E-TS-2"):
        reg = golden("enterprise.registered")
        reg.update(event_id=str(uuid.uuid4()), enterprise_id=eid)
        reg["payload"]["licence_no"] = f"SC{uuid.uuid4().int % 10**14:014d}"
        regs.append(reg)
    complaint = golden("complaint.received")
    complaint.update(event_id=str(uuid.uuid4()), enterprise_id="E-TS-1")
    complaint["payload"]["complaint_id"] = number
    assert post(srv, [*regs, complaint]).status_code == 200

    def resolve(enterprise_id: str):
        doc = golden("complaint.resolved")
        doc.update(event_id=str(uuid.uuid4()), enterprise_id=enterprise_id)
        doc["payload"]["complaint_id"] = number
        body = conforms(post(srv, doc), answer_schemas)
        return [w["type"] for w in body["events"][0].get("warnings", [])], body["events"][0].get("warnings", [])

    types, warnings = resolve("E-TS-2")
    assert types == ["complaint_id_elsewhere"]
    (w,) = warnings
    assert w["field"] == "enterprise_id" and "E-TS-1" in w["reason_zh"] and "重新报送" in w["reason_zh"] and "E-TS-1" in w["reason"]
    assert resolve("E-TS-1")[0] == []  # under the complaint's own enterprise: nothing to say
    unknown = golden("complaint.resolved")
    unknown.update(event_id=str(uuid.uuid4()), enterprise_id="E-TS-2")
    unknown["payload"]["complaint_id"] = f"TS-NOWHERE-{uuid.uuid4().hex[:6]}"
    body = conforms(post(srv, unknown), answer_schemas)
    assert [w["type"] for w in body["events"][0]["warnings"]] == ["complaint_not_on_file"]


def test_a_complaint_number_received_under_a_second_enterprise_is_said(srv, answer_schemas):
    """The complaints desk: one complaint filed under W07, then W08 — accepted with no word, counted under both."""
    number = f"TS-TWICE-{uuid.uuid4().hex[:6]}"
    regs = []
    for eid in ("E-TW-1", "E-TW-2"):
        reg = golden("enterprise.registered")
        reg.update(event_id=str(uuid.uuid4()), enterprise_id=eid)
        reg["payload"]["licence_no"] = f"SC{uuid.uuid4().int % 10**14:014d}"
        regs.append(reg)
    first = golden("complaint.received")
    first.update(event_id=str(uuid.uuid4()), enterprise_id="E-TW-1")
    first["payload"]["complaint_id"] = number
    body = conforms(post(srv, [*regs, first]), answer_schemas)
    assert not [w for e in body["events"] for w in e.get("warnings", []) if w["type"] == "complaint_id_elsewhere"]
    second = copy.deepcopy(first)
    second.update(event_id=str(uuid.uuid4()), enterprise_id="E-TW-2")
    body = conforms(post(srv, second), answer_schemas)
    [w] = [w for w in body["events"][0]["warnings"] if w["type"] == "complaint_id_elsewhere"]
    assert w["field"] == "enterprise_id" and "企业 E-TW-1 名下（事件" in w["reason_zh"] and "complaint.withdrawn" in w["reason_zh"]
