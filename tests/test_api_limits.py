"""What a caller cannot make the API spend: a request head over its bound, an alert step's body
before its key is checked, dead letters read back whole in a list; and what a key cannot read
through a side door (a county alert in a town key's credit report).  Real `qrisk run` processes."""
from __future__ import annotations

import copy
import socket
import stat
import uuid

import httpx
import pytest

from tests.conftest import Server, golden


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_a_request_head_over_its_bound_is_refused_and_the_server_answers_others(server):
    # httptools (uvicorn's default) took any header, building it at a cost growing with the square of its
    # length while every other request waited; h11 refuses a head over 64 KiB
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        try:
            while sent < 4 * 1024 * 1024:
                sock.sendall(b"a" * 65536)
                sent += 65536
            sock.sendall(b"\r\n\r\n")
        except OSError:
            pass  # (refused and closed while we were still sending: what is asserted below)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:200]
    # a head within the bound is served as ever (x-qrisk-lines of a large batch, a long key)
    assert server.get("/healthz", headers={"x-big": "a" * 30_000}).status_code == 200


def test_an_alert_step_is_read_only_after_its_key_and_only_so_far(server):
    url = server.url + "/v1/alerts/AL-0000000000000000/actions"
    body = b'{"action": "comment", "note": "' + b" " * (20 * 1024 * 1024) + b'"}'
    try:
        anonymous = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=60)
        assert anonymous.status_code == 401, anonymous.text[:300]  # not a 422 from reading the body first
    except (httpx.WriteError, httpx.RemoteProtocolError):
        pass  # answered 401 and closed before the body was through: not read either
    big = server.post("/v1/alerts/AL-0000000000000000/actions", content=b'{"action": "comment", "note": "' + b"x" * 70_000 + b'"}',
                      headers={"content-type": "application/json"})
    assert big.status_code == 413 and "65536" in big.json()["detail"]
    broken = server.post("/v1/alerts/AL-0000000000000000/actions", content=b'{"action": ', headers={"content-type": "application/json"})
    assert broken.status_code == 422 and broken.json()["errors"][0]["field"] == "body", broken.text
    unknown = server.post("/v1/alerts/AL-0000000000000000/actions", json={"action": "acknowledge", "colour": "red"})
    assert unknown.status_code == 422 and [e["field"] for e in unknown.json()["errors"]] == ["body.colour"]
    assert "请求无效" in unknown.json()["detail"]
    assign = server.post("/v1/alerts/AL-0000000000000000/actions", json={"action": "assign"})
    assert assign.status_code == 422 and "assignee" in assign.json()["detail"]
    # a well-formed step reaches the alert, which does not exist
    assert server.post("/v1/alerts/AL-0000000000000000/actions", json={"action": "acknowledge"}).status_code == 404
    # the route still describes its body in the API description
    spec = server.get("/openapi.json").json()["paths"]["/v1/alerts/{alert_id}/actions"]["post"]
    schema = spec["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["action"] and "acknowledge" in schema["properties"]["action"]["enum"]


def test_a_list_of_dead_letters_shows_the_start_of_each_and_one_letter_whole(server):
    junk = b"{" + b"x" * 60_000  # no JSON, under 64 KiB: kept whole as the letter's raw bytes (past it, its head)
    ids = []
    for _ in range(3):
        refused = server.post("/v1/events", content=junk, headers={"content-type": "application/json"})
        assert refused.status_code == 422
        ids.append(refused.json()["errors"][0]["dead_letter_id"])
    # an event refused for one field, padded past what a list shows: found by its event_id
    event = golden("sampling.result")
    event["event_id"] = wanted = str(uuid.uuid4())
    event["payload"]["spec"] = "1" * 10_000
    event["payload"]["items"][0]["values"] = ["many"]
    assert server.post("/v1/events", json=event).status_code == 422
    listed = server.get("/v1/dead-letters").json()
    assert len(listed) == 4 and all(len(letter["raw"]) <= 4096 and letter["raw_truncated"] for letter in listed)
    assert {letter["dead_letter_id"] for letter in listed} >= set(ids)
    whole = server.get(f"/v1/dead-letters/{ids[0]}").json()
    assert whole["raw"] == junk.decode() and whole["raw_truncated"] is False
    found = server.get("/v1/dead-letters", params={"event_id": wanted.upper()}).json()
    assert len(found) == 1 and found[0]["raw_truncated"] and wanted in found[0]["raw"]
    assert "payload.items[0].values[0]" in {e["field"] for e in found[0]["errors"]}
    # a letter that only cites the id is not that event
    cite = copy.deepcopy(event)
    cite["event_id"] = str(uuid.uuid4())
    cite["payload"]["sample_no"] = wanted
    assert server.post("/v1/events", json=cite).status_code == 422
    assert [l["dead_letter_id"] for l in server.get("/v1/dead-letters", params={"event_id": wanted}).json()] == [found[0]["dead_letter_id"]]
    assert server.get("/v1/dead-letters", params={"event_id": wanted, "offset": 1}).json() == []
    sheet = server.get("/v1/dead-letters", params={"format": "csv"})
    assert sheet.status_code == 200 and len(sheet.content) < 4 * 5000 + 10_000 and "raw_truncated" in sheet.text.splitlines()[0]


def test_the_data_directory_is_its_owners_alone(tmp_path):
    from qrisk.auth import KeyStore
    from qrisk.runtime import check_data_dir

    made = check_data_dir(tmp_path / "fresh" / "data")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    KeyStore(tmp_path / "keys-first" / "keys.json").create("admin", "first", actor="tests")  # `qrisk keys create` before a first run
    assert stat.S_IMODE((tmp_path / "keys-first").stat().st_mode) == 0o700


def test_a_data_directory_others_may_read_is_warned_of_at_start(tmp_path):
    """An existing directory keeps its mode (an older install, a Docker volume): the start says so."""
    from qrisk.runtime import open_to_others

    made = tmp_path / "made" / "data"
    made.mkdir(parents=True)
    made.chmod(0o700)
    assert open_to_others(made) is None
    made.chmod(0o755)
    said = open_to_others(made)
    assert "0755" in said and f"chmod 700 {made}" in said and "其他用户可读取" in said
    srv = Server(made).start()  # `qrisk run` says it at start, and serves
    try:
        assert srv.get("/v1/enterprises/nobody").status_code == 404
    finally:
        srv.stop()
    assert f"has mode 0755" in srv.log_path.read_text() and stat.S_IMODE(made.stat().st_mode) == 0o755  # (said, not changed)


def test_a_town_key_reads_no_county_alert_in_a_credit_report(tmp_path):
    """A county alert (the county's pass-rate chart of a category) has no town: a town's key does not
    read it at /v1/alerts/{id}, nor inside the report of the enterprise whose sample tipped it."""
    from qrisk.auth import KeyStore

    srv = Server(tmp_path / "data")
    _, town_key = KeyStore(srv.data_dir / "keys.json").create("supervisor", "town-sup", towns=["良渚街道"], actor="tests")
    srv.start()
    try:
        reg = golden("enterprise.registered")
        # another producer failed in the quarter too: the county's chart speaks of two producers' failures
        other = {**golden("enterprise.registered"), "event_id": str(uuid.uuid4()), "enterprise_id": "E-330110-077"}
        other["payload"] = {**other["payload"], "licence_no": "SC10433011000077"}
        failed = golden("sampling.result")
        failed.update(event_id=str(uuid.uuid4()), enterprise_id="E-330110-077", occurred_at="2026-03-02T15:20:00+08:00")
        failed["payload"] = {**failed["payload"], "sample_no": "DC26330110000777", "sampled_on": "2026-03-01"}
        events = [reg, other, failed]
        for k in range(3):  # three failures in one month: the county's p chart of packaged water signals
            sample = golden("sampling.result")
            sample["event_id"] = str(uuid.uuid4())
            sample["payload"]["sample_no"] = f"DC2633011000012{k}"
            sample["payload"]["sampled_on"] = f"2026-03-0{k + 5}"
            sample["occurred_at"] = f"2026-03-1{k + 2}T15:20:00+08:00"
            events.append(sample)
        assert srv.post("/v1/events", json=events).status_code == 200
        alerts = srv.get("/v1/alerts").json()
        county = [a for a in alerts if a["town"] is None]
        assert county, alerts
        report = srv.get(f"/v1/enterprises/{reg['enterprise_id']}?view=report").json()
        assert any(county[0]["alert_id"] in str(w.get("handling_zh")) for w in report["warnings"]), report["warnings"]
        town_report = httpx.get(f"{srv.url}/v1/enterprises/{reg['enterprise_id']}?view=report", headers=bearer(town_key), timeout=30).json()
        assert town_report["warnings"] and not any(county[0]["alert_id"] in str(w) for w in town_report["warnings"])
        assert httpx.get(f"{srv.url}/v1/alerts/{county[0]['alert_id']}", headers=bearer(town_key), timeout=30).status_code == 404
    finally:
        srv.stop()
