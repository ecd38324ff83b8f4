"""A lab integrator's review of the HTTP door, against a real `qrisk run`: a key given twice refused
(422), a batch's answer naming an event_id conflict beside its other errors, a body too large answered
and audited as every refusal is, and a compressed body named as such."""
from __future__ import annotations

import copy
import gzip
import json
import uuid

import pytest

from qrisk.auth import KeyStore
from tests.conftest import Server, golden

LAB = "CMA-330100-0451"  # the lab of the golden sampling.result
BODY_LIMIT = 200_000


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def fresh() -> dict:
    doc = golden("sampling.result")
    doc["event_id"] = str(uuid.uuid4())
    doc["payload"]["sample_no"] = "R-" + doc["event_id"][:8]
    return doc


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("QRISK_MAX_BODY_BYTES", str(BODY_LIMIT))  # read by the server started now, not kept after
    try:
        server = Server(tmp_path_factory.mktemp("review") / "data").start()
    finally:
        mp.undo()
    _, server.lab = KeyStore(server.data_dir / "keys.json").create("lab", "lab-review", source_id=LAB)
    assert server.post("/v1/events", json=golden("enterprise.registered")).status_code == 200
    yield server
    server.stop()


def post(srv, body, token=None, **headers):
    content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return srv.post("/v1/events", content=content, headers={"content-type": "application/json", **bearer(token or srv.lab), **headers})


def test_a_result_given_twice_is_refused_not_judged_by_its_last_copy(srv):
    doc = fresh()
    text = json.dumps(doc, ensure_ascii=False).replace('"values": [0.01]', '"values": [0.5], "values": [0.01]', 1)
    answer = post(srv, text.encode())
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["errors"]
    assert (error["field"], error["type"]) == ("payload.items[1].values", "duplicate_key") and "重复" in error["reason_zh"]
    letter = srv.get(f"/v1/dead-letters/{error['dead_letter_id']}").json()
    assert letter["raw"] == text  # the body as sent, both copies
    assert srv.get(f"/v1/events/{doc['event_id']}").json()["status"] == "dead_lettered"


def test_a_batchs_422_names_an_event_id_conflict_beside_a_bad_element(srv):
    logged = fresh()
    assert post(srv, logged).status_code == 200
    changed = copy.deepcopy(logged)
    changed["payload"]["items"][1]["values"] = [0.02]
    bad = fresh()
    bad["payload"]["items"][1]["values"] = ["59"]
    answer = post(srv, [changed, bad])
    assert answer.status_code == 422, answer.text
    errors = answer.json()["errors"]
    assert {(e["index"], e["type"]) for e in errors} == {(0, "event_id_conflict"), (1, "measured_value")}
    assert "event_id" in answer.json()["detail"] and "event_id" in answer.json()["detail_en"]
    conflict = next(e for e in errors if e["index"] == 0)
    assert conflict["logged_seq"] is not None
    assert srv.get(f"/v1/dead-letters/{conflict['dead_letter_id']}").json()["reason"].startswith("conflict: ")
    # one resend, both fixed, is enough: nothing of the first was written
    bad["payload"]["items"][1]["values"] = [0.01]
    changed["event_id"] = str(uuid.uuid4())
    assert post(srv, [changed, bad]).status_code == 200


def test_a_batchs_403_names_an_event_id_conflict_too(srv):
    logged = fresh()
    assert post(srv, logged).status_code == 200
    changed = copy.deepcopy(logged)
    changed["payload"]["remarks"] = "更正"
    other_lab = fresh()
    other_lab["source"]["id"] = "CMA-999999-0001"
    answer = post(srv, [other_lab, changed])
    assert answer.status_code == 403, answer.text
    assert {(e["index"], e["type"]) for e in answer.json()["errors"]} == {(0, "forbidden"), (1, "event_id_conflict")}
    assert "event_id" in answer.json()["detail_en"]


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_too_large_is_answered_dead_lettered_and_audited_as_other_refusals(srv, chunked):
    body = b"[" + b"1," * BODY_LIMIT + b"1]"
    content = iter([body[i:i + 65536] for i in range(0, len(body), 65536)]) if chunked else body  # chunked: no Content-Length
    answer = srv.post("/v1/events", content=content, headers={"content-type": "application/json", **bearer(srv.lab)})
    assert answer.status_code == 413, answer.text
    doc = answer.json()
    assert doc["request_id"] and doc["detail"] and str(BODY_LIMIT) in doc["detail_en"]
    (error,) = doc["errors"]
    assert (error["index"], error["field"], error["type"]) == (None, "", "body_too_large") and "分批" in error["reason_zh"]
    assert error["raw_bytes"] == len(body) if not chunked else error["raw_bytes"] > BODY_LIMIT
    letter = srv.get(f"/v1/dead-letters/{error['dead_letter_id']}", headers=bearer(srv.lab)).json()
    assert letter["reason"].startswith("too_large: ") and body.startswith(letter["raw"].encode()) and 0 < len(letter["raw"]) <= 64 * 1024
    assert srv.get("/v1/dead-letters", params={"request_id": doc["request_id"]}, headers=bearer(srv.lab)).json()
    audit = srv.get("/v1/audit", params={"action": "events.posted"}).json()
    assert any(r["outcome"] == "too_large" and r["detail"].get("request_id") == doc["request_id"] for r in audit)


def test_a_csv_back_fill_and_the_live_post_of_an_event_without_a_name_are_one_event(srv, tmp_path):
    # the CSV import reads an empty source_name cell as no name; "name": "" posted over HTTP was kept as
    # "", and the live send of a back-filled event was a 409 (a review)
    import csv
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    doc = fresh()
    doc["source"]["name"] = ""
    path = tmp_path / "backfill.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["event_id", "event_type", "schema_version", "enterprise_id", "occurred_at", "source_kind", "source_id", "source_name", "payload"])
        w.writerow([doc["event_id"], doc["event_type"], 2, doc["enterprise_id"], doc["occurred_at"], "lab", LAB, "",
                    json.dumps(doc["payload"], ensure_ascii=False)])
    out = subprocess.run([sys.executable, "-m", "qrisk", "import", str(path), "--url", srv.url], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "QRISK_API_KEY": srv.lab})
    assert json.loads(out.stdout)["accepted"] == 1, out.stdout + out.stderr
    answer = post(srv, doc)
    assert answer.status_code == 200, answer.text
    assert answer.json()["events"][0]["status"] == "duplicate"
    without = copy.deepcopy(doc)
    del without["source"]["name"]
    assert post(srv, without).json()["events"][0]["status"] == "duplicate"


def test_an_event_logged_with_an_empty_name_and_its_retry_are_one_event():
    # a log written before the door read "" as no name holds "": its retry, read at the door, is no conflict
    from qrisk.pipeline import content_digest
    from schemas.events import DOOR
    from schemas.upcast import parse_event

    doc = golden("sampling.result")
    doc["source"]["name"] = ""
    assert parse_event(doc, DOOR).source.name is None
    assert parse_event(doc).source.name == ""  # the log re-read as it was
    assert content_digest(parse_event(doc)) == content_digest(parse_event(doc, DOOR))


def test_a_compressed_body_is_named_as_compressed_not_as_gbk(srv):
    doc = fresh()
    body = gzip.compress(json.dumps(doc).encode())
    answer = post(srv, body, **{"content-encoding": "gzip"})
    assert answer.status_code == 415, answer.text
    (error,) = answer.json()["errors"]
    assert error["type"] == "content_encoding" and "gzip" in error["reason"] and "压缩" in error["reason_zh"] and "GBK" not in error["reason_zh"]
    assert answer.json()["request_id"] and srv.get(f"/v1/dead-letters/{error['dead_letter_id']}").status_code == 200
    # the same bytes without the header: a 422 that says what they are
    answer = post(srv, body)
    assert answer.status_code == 422
    assert "gzip" in answer.json()["errors"][0]["reason"] and "GBK" not in answer.json()["errors"][0]["reason_zh"]
    assert srv.get(f"/v1/events/{doc['event_id']}").status_code == 404  # nothing written
