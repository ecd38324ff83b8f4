"""The embedded runtime over real HTTP: a `qrisk run` process on loopback with its own data dir."""
from __future__ import annotations

import copy
import json
import re
import uuid

import httpx

from tests.conftest import Server, all_goldens, golden


def post(srv: Server, body) -> httpx.Response:
    return srv.post("/v1/events", json=body)


def test_batch_is_accepted_and_folded_into_the_credit_file(server):
    resp = post(server, all_goldens())
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == 10
    file = server.get("/v1/enterprises/E-330110-001").json()
    assert file["profile"]["name"] == "清源桶装水厂"
    assert file["profile"]["campaign_tier"] == "B"  # the update applied
    assert file["counts"]["samples_failed"] == 1  # P. aeruginosa 45;59;8;61;10 with c=0
    assert file["rectifications"][0]["status"] == "verified"
    assert file["complaints"][0]["verified"] is True
    report = server.get("/v1/enterprises/E-330110-001?view=report").json()
    assert report["title_zh"] == "诚信档案：清源桶装水厂（E-330110-001）"
    assert report["grade"]["grade"] in "ABCD" and report["contributions"]
    # each warning says where its alert stands (the alerts stage's book, beside the file)
    assert report["warnings"] and all(re.match(r"(待处置|已确认|整改中|整改复查通过|已关闭)（AL-", w["handling_zh"]) for w in report["warnings"])


def test_repeated_event_id_is_accepted_once(server):
    reg = golden("enterprise.registered")
    sample = golden("sampling.result")
    assert post(server, [reg, sample]).json()["accepted"] == 2
    again = post(server, sample)
    assert again.status_code == 200
    assert again.json() == {"accepted": 0, "duplicates": 1, "events": [{"event_id": sample["event_id"], "status": "duplicate", "seq": 2}]}
    # (seq: the one its first delivery got, so a lab that retried learns where its event stands)
    file = server.get("/v1/enterprises/E-330110-001").json()
    assert file["counts"]["samples"] == 1
    assert file["events"] == 2
    metrics = server.get("/metrics").text
    assert 'qrisk_events_duplicate_total{channel="http"} 1' in metrics


def test_an_event_id_reused_for_different_content_is_a_conflict_not_a_duplicate(server):
    reg = golden("enterprise.registered")
    sample = golden("sampling.result")
    assert post(server, [reg, sample]).json()["accepted"] == 2
    # a retry of the same event, even spelt differently (未检出 for ND, keys reordered), stays a duplicate
    same = copy.deepcopy(sample)
    assert same["payload"]["items"][2]["values"] == ["ND"]
    same["payload"]["items"][2]["values"] = ["未检出"]
    assert post(server, dict(reversed(list(same.items())))).json()["duplicates"] == 1
    # …and with its whole numbers written as floats, as another JSON library may send them
    floats = copy.deepcopy(sample)
    assert floats["payload"]["items"][0]["values"] == [45, 59, 8, 61, 10]
    floats["payload"]["items"][0]["values"] = [45.0, 59.0, 8.0, 61.0, 10.0]
    assert post(server, floats).json()["duplicates"] == 1
    # …and with its test items in another order, as a lab system reading them without an ORDER BY sends them
    shuffled = copy.deepcopy(sample)
    shuffled["payload"]["items"].reverse()
    assert post(server, shuffled).json()["duplicates"] == 1
    # (the n values of one item are the report's own order: the same values in another order are another report)
    swapped = copy.deepcopy(sample)
    swapped["payload"]["items"][0]["values"] = [59, 45, 8, 61, 10]
    assert post(server, swapped).status_code == 409
    corrected = copy.deepcopy(sample)
    corrected["payload"]["items"][1]["values"] = [0.5]
    fresh = golden("complaint.received")
    resp = post(server, [fresh, corrected])
    assert resp.status_code == 409, resp.text
    (error,) = resp.json()["errors"]
    assert error["index"] == 1 and error["field"] == "event_id" and error["type"] == "event_id_conflict"
    assert error["logged_seq"] == 2 and "新的 event_id" in error["reason_zh"]
    # nothing of the batch was written, and the correction is kept where an operator finds it
    counts = server.get("/v1/enterprises/E-330110-001").json()["counts"]
    assert (counts["complaints"], counts["samples"]) == (0, 1)
    letter = server.get(f"/v1/dead-letters/{error['dead_letter_id']}").json()
    assert json.loads(letter["raw"])["payload"]["items"][1]["values"] == [0.5]
    assert letter["reason"].startswith("conflict: ")
    # two different events under one id within a batch: the second is the conflict
    twin = copy.deepcopy(fresh)
    twin["payload"]["text"] = "另一条投诉"
    resp = post(server, [fresh, twin])
    assert resp.status_code == 409 and resp.json()["errors"][0]["index"] == 1 and resp.json()["errors"][0]["logged_seq"] is None
    assert 'qrisk_events_conflict_total{channel="http"} 3' in server.get("/metrics").text


def test_an_accepted_result_with_items_qrisk_cannot_judge_is_answered_with_warnings(server):
    reg = golden("enterprise.registered")
    sample = golden("sampling.result")
    sample["payload"]["items"][1]["item_code"] = "free_chlorin"  # misspelt: the lab's record is kept, 待定
    resp = post(server, [reg, sample])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["accepted"] == 2 and body["warnings"] == 1
    assert "warnings" not in body["events"][0]
    (warning,) = body["events"][1]["warnings"]
    assert (warning["field"], warning["type"]) == ("payload.items[1].item_code", "unknown_item")
    assert "包装饮用水标准目录中没有检验项目代码 free_chlorin" in warning["reason_zh"]
    file = server.get("/v1/enterprises/E-330110-001").json()
    assert file["samples"][0]["judgement"]["unknown"][0]["item_code"] == "free_chlorin"
    # the codes to map to, without a key
    catalogue = httpx.get(server.url + "/v1/catalogue", verify=server.verify).json()
    assert "free_chlorine" in {i["item_code"] for i in catalogue["categories"]["packaged_water"]["items"]}


def test_bad_event_gets_422_with_field_path_and_lands_in_dead_letters(server):
    good = golden("enterprise.registered")
    bad = golden("sampling.result")
    bad["payload"]["items"][0]["values"][1] = "59"  # a quoted number is not a number
    resp = post(server, [good, bad])
    assert resp.status_code == 422
    body = resp.json()
    fields = {(e["index"], e["field"]) for e in body["errors"]}
    assert (1, "payload.items[0].values[1]") in fields
    assert all(e["reason"] and e["reason_zh"] for e in body["errors"])
    # nothing of the batch was written
    assert server.get("/v1/enterprises/E-330110-001").status_code == 404
    letters = server.get("/v1/dead-letters").json()
    assert len(letters) == 1
    kept = json.loads(letters[0]["raw"])
    assert kept["event_id"] == bad["event_id"]
    assert "payload.items[0].values[1]" in letters[0]["reason"]


def test_invalid_json_and_unknown_type_are_dead_lettered(server):
    resp = server.post("/v1/events", content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["type"] == "json_invalid"
    doc = golden("complaint.received")
    doc["event_type"] = "complaint.recieved"
    resp = post(server, doc)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "event_type"
    letters = server.get("/v1/dead-letters").json()
    assert {l["raw"] for l in letters} >= {"{not json"}
    assert len(letters) == 2


def test_state_survives_kill_9_and_restart(tmp_path):
    srv = Server(tmp_path / "data").start()
    try:
        assert post(srv, all_goldens()).status_code == 200
        more = []
        for i in range(50):
            doc = golden("complaint.received")
            doc["event_id"] = str(uuid.UUID(int=i + 1, version=4))
            doc["payload"]["complaint_id"] = f"TS-{i}"
            more.append(doc)
        assert post(srv, more).json()["accepted"] == 50
        before = srv.get("/v1/enterprises/E-330110-001").json()
        srv.kill9()
        srv.start()
        after = srv.get("/v1/enterprises/E-330110-001").json()
        assert after == before
        health = srv.get("/healthz").json()
        assert (health["events"], health["log_seq"]) == (60, 60)  # counted, and the log's last seq: no gap
        # ids seen before the crash are still known
        assert post(srv, more[:3]).json()["duplicates"] == 3
    finally:
        srv.stop()


def test_openapi_describes_the_event_body(server):
    spec = server.get("/openapi.json").json()
    body = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["oneOf"][0] == {"$ref": "#/components/schemas/Event"}
    assert "SamplingResult" in spec["components"]["schemas"]


def test_body_too_large_is_refused(server):
    huge = b"[" + b" " * (9 * 1024 * 1024) + b"]"
    resp = server.post("/v1/events", content=huge, headers={"content-type": "application/json"}, timeout=60)
    assert resp.status_code == 413


def test_an_event_from_the_future_is_refused_with_a_hint_at_the_time_zone(server):
    """A typo year, or a Beijing time sent as UTC, would move the fold's clock ahead of the world:
    every rectification overdue, every inspection missing."""
    import datetime as dt

    ahead = golden("complaint.received")
    ahead["occurred_at"] = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    resp = post(server, [golden("enterprise.registered"), ahead])
    assert resp.status_code == 422
    (error,) = resp.json()["errors"]
    assert (error["index"], error["field"], error["type"]) == (1, "occurred_at", "in_the_future")
    assert "+08:00" in error["reason_zh"]
    assert server.get("/v1/enterprises/E-330110-001").status_code == 404  # nothing of the batch written
    sample = golden("sampling.result")
    sample["payload"]["sampled_on"] = "2062-03-05"
    sample["payload"].pop("production_date", None)
    resp = post(server, sample)
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "payload.sampled_on"
    assert json.loads(server.get(f"/v1/dead-letters/{resp.json()['errors'][0]['dead_letter_id']}").json()["raw"])["payload"]["sampled_on"] == "2062-03-05"


def test_a_conflict_is_decided_under_the_commit_lock_per_request(tmp_path):
    """Two requests racing with one id and different content, joined in one group commit: the
    first wins, the second is a conflict, and a request holding a conflict is written not at all."""
    from qrisk.runtime import default_rules, open_embedded
    from schemas.upcast import parse_event

    pipeline = open_embedded(tmp_path / "data", default_rules())
    try:
        reg, complaint = golden("enterprise.registered"), golden("complaint.received")
        other = copy.deepcopy(complaint)
        other["payload"]["text"] = "另一条投诉"
        events = [parse_event(d) for d in (reg, complaint, other)]
        outcomes = pipeline.submit(events, [2, 1])
        assert [(o.status, o.seq) for o in outcomes] == [("accepted", 1), ("accepted", 2), ("conflict", None)]
        # later: a request repeating the registration (a duplicate) beside a conflicting complaint
        fresh = golden("complaint.resolved")
        outcomes = pipeline.submit([parse_event(reg), parse_event(other), parse_event(fresh)], [2, 1])
        assert [(o.status, o.seq) for o in outcomes] == [("withheld", None), ("conflict", 2), ("accepted", 3)]
        assert pipeline.seq == 3 and len(pipeline.state.seen_event_ids) == 3
        # a retry identical to what the log holds is a duplicate, whatever copy of its id arrived first
        # beside it (here the wrong one, in another request of the same commit)
        outcomes = pipeline.submit([parse_event(other), parse_event(complaint), parse_event(other)], [1, 1, 1])
        assert [(o.status, o.seq) for o in outcomes] == [("conflict", 2), ("duplicate", 2), ("conflict", 2)]
        # not logged yet: the first copy of the requests that go ahead decides; a request that falls out
        # for another conflict decides nothing
        a, b = golden("interview.held"), golden("interview.held")
        b["payload"]["reason"] = "另一事由"
        outcomes = pipeline.submit([parse_event(other), parse_event(b), parse_event(a), parse_event(a)], [2, 1, 1])
        assert [o.status for o in outcomes] == ["conflict", "withheld", "accepted", "duplicate"]
        assert pipeline.state.files[a["enterprise_id"]].interviews[0].reason == a["payload"]["reason"]
    finally:
        pipeline.close()


def test_a_sample_of_an_unregistered_enterprise_is_kept_with_a_warning_and_a_retry_hears_it_again(server):
    sample = golden("sampling.result")
    sample["event_id"], sample["enterprise_id"] = str(uuid.uuid4()), "E-NOT-YET-REGISTERED"
    first = post(server, sample).json()["events"][0]
    assert first["status"] == "accepted"
    [warning] = first["warnings"]
    assert warning["field"] == "enterprise_id" and warning["type"] == "enterprise_unregistered"
    assert "尚未登记" in warning["reason_zh"] and "E-NOT-YET-REGISTERED" in warning["reason_zh"]
    again = post(server, sample).json()["events"][0]  # the lab lost the first answer and retries
    assert again["status"] == "duplicate" and again["warnings"] == first["warnings"]


def test_dead_letters_page_back_with_offset(server):
    for n in range(3):
        bad = golden("complaint.received")
        bad["event_id"], bad["payload"]["channel"] = str(uuid.uuid4()), f"pigeon-{n}"
        assert post(server, bad).status_code == 422
    newest = server.get("/v1/dead-letters?limit=2").json()
    older = server.get("/v1/dead-letters?limit=2&offset=2").json()
    assert len(newest) == 2 and older and not {d["dead_letter_id"] for d in newest} & {d["dead_letter_id"] for d in older}
    assert [d["dead_letter_id"] for d in server.get("/v1/dead-letters?limit=4").json()] == [d["dead_letter_id"] for d in newest + older][:4]


def test_the_door_compares_dates_in_the_policys_local_time(tmp_path):
    # a bureau on UTC (utc_offset_hours 0): a result reported at 17:00 UTC on 03-04 was reported
    # on its 03-04, before a sample the lab dates 03-05; in Beijing time the same report is on 03-05
    policy = tmp_path / "policy.yaml"
    policy.write_text("utc_offset_hours: 0\n", encoding="utf-8")
    doc = golden("sampling.result")
    doc["payload"].update(sampled_on="2026-03-05", production_date="2026-03-01")
    doc["occurred_at"] = "2026-03-04T17:00:00Z"
    srv = Server(tmp_path / "data", args=("--policy", str(policy))).start()
    try:
        r = post(srv, doc)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "payload.sampled_on", r.text
        doc["occurred_at"] = "2026-03-05T00:30:00Z"  # its 03-05: accepted
        assert post(srv, doc).status_code == 200
    finally:
        srv.stop()
