"""Finding what became of an input, against a real `qrisk run`: the dead letters filtered by what
their rows hold (event id, request id, place, channel, time), unknown query parameters refused
rather than ignored, ``GET /v1/events/{event_id}`` for the integrator whose answer was lost, and
every timestamp of every answer written one way (ISO 8601, UTC, milliseconds, ``Z``)."""
from __future__ import annotations

import copy
import datetime as dt
import re
import uuid

import httpx
import pytest

from qrisk.auth import KeyStore
from tests.conftest import Server, golden

LAB = "CMA-330100-0451"  # the lab of the golden sampling.result
INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
LOOKS_LIKE_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d")


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def fresh(event_type: str) -> dict:
    doc = golden(event_type)
    doc["event_id"] = str(uuid.uuid4())
    return doc


def bad_sample(**changes) -> dict:
    doc = fresh("sampling.result")
    doc["payload"]["items"][0]["values"][1] = "59"  # a quoted number: 422
    doc.update(changes)
    return doc


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("lookup") / "data").start()
    store = KeyStore(server.data_dir / "keys.json")
    server.role_keys = {}
    for role, name, kw in (("lab", "lab-own", {"source_id": LAB}), ("lab", "lab-other", {"source_id": "CMA-999999-0001"}),
                           ("supervisor", "sup", {}), ("supervisor", "sup-town", {"towns": ["清湖镇"]}),
                           ("complaint", "hotline", {})):
        _, server.role_keys[name] = store.create(role, name, **kw)
    assert server.post("/v1/events", json=golden("enterprise.registered")).status_code == 200
    yield server
    server.stop()


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


# --------------------------------------------------------------------------- dead letters, filtered


def test_dead_letters_filter_by_event_id_request_id_place_channel_and_time(srv):
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    wanted = bad_sample()
    # another refused event whose text merely cites the wanted id: found by the id's text, not its letter
    citing = fresh("complaint.received")
    citing["payload"]["text"] = f"与样品事件 {wanted['event_id']} 有关"
    citing["payload"]["severity"] = "apocalyptic"
    first = srv.post("/v1/events", json=[wanted, citing], headers={"x-qrisk-position": "orders.csv:12"})
    assert first.status_code == 422, first.text
    wanted_letter = next(e["dead_letter_id"] for e in first.json()["errors"] if e["index"] == 0)
    citing_letter = next(e["dead_letter_id"] for e in first.json()["errors"] if e["index"] == 1)
    second = srv.post("/v1/events", json=bad_sample(), headers={"x-qrisk-position": "orders.csv:120"})
    assert second.status_code == 422
    second_letter = second.json()["errors"][0]["dead_letter_id"]

    def ids(query: dict, headers=None) -> list[str]:
        r = srv.get("/v1/dead-letters", params=query, headers=headers or {})
        assert r.status_code == 200, r.text
        return [d["dead_letter_id"] for d in r.json()]

    # by event id, in any spelling of the UUID; the letter that only cites it is not that event's
    assert ids({"event_id": wanted["event_id"]}) == [wanted_letter]
    assert ids({"event_id": wanted["event_id"].upper()}) == [wanted_letter]
    assert ids({"event_id": uuid.UUID(wanted["event_id"]).hex}) == [wanted_letter]
    dashless = bad_sample(event_id=uuid.uuid4().hex.upper())  # spelt so by its sender: a valid UUID all the same
    dashless_letter = srv.post("/v1/events", json=dashless).json()["errors"][0]["dead_letter_id"]
    assert ids({"event_id": str(uuid.UUID(dashless["event_id"]))}) == [dashless_letter]
    assert ids({"event_id": citing["event_id"]}) == [citing_letter]
    assert ids({"event_id": str(uuid.uuid4())}) == []
    # by the request a 422 named
    assert set(ids({"request_id": first.json()["request_id"]})) == {wanted_letter, citing_letter}
    assert ids({"request_id": second.json()["request_id"]}) == [second_letter]
    assert ids({"request_id": first.json()["request_id"][:8]}) == []  # a prefix names no request
    # by place: a file:line is not a longer line number; the file alone is all its lines
    assert set(ids({"position": "orders.csv:12"})) == {wanted_letter, citing_letter}
    assert ids({"position": "orders.csv:120"}) == [second_letter]
    assert set(ids({"position": "orders.csv"})) == {wanted_letter, citing_letter, second_letter}
    assert ids({"position": "orders.csv:1"}) == []
    # by channel and time; filters combine
    assert second_letter in ids({"channel": "http", "since": before.isoformat()})
    assert ids({"channel": "import"}) == []
    assert ids({"since": (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).isoformat()}) == []
    assert ids({"until": before.isoformat(), "request_id": first.json()["request_id"]}) == []
    beijing = before.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()
    assert set(ids({"since": beijing, "position": "orders.csv"})) == {wanted_letter, citing_letter, second_letter}
    # paging applies after the event id is confirmed
    assert ids({"event_id": wanted["event_id"], "offset": 1}) == []
    # CSV carries the same rows
    csv = srv.get("/v1/dead-letters", params={"request_id": second.json()["request_id"], "format": "csv"})
    assert csv.status_code == 200 and second_letter in csv.text and wanted_letter not in csv.text


def test_a_sender_filters_only_its_own_dead_letters(srv):
    mine = srv.post("/v1/events", json=bad_sample(), headers=bearer(srv.role_keys["lab-own"]))
    assert mine.status_code == 422
    other = bad_sample()
    theirs = srv.post("/v1/events", json=other, headers=bearer(srv.role_keys["lab-other"]))
    assert theirs.status_code == 422
    own = bearer(srv.role_keys["lab-own"])
    assert srv.get("/v1/dead-letters", params={"event_id": other["event_id"]}, headers=own).json() == []
    assert srv.get("/v1/dead-letters", params={"request_id": theirs.json()["request_id"]}, headers=own).json() == []
    listed = srv.get("/v1/dead-letters", params={"request_id": mine.json()["request_id"]}, headers=own).json()
    assert [d["dead_letter_id"] for d in listed] == [mine.json()["errors"][0]["dead_letter_id"]]


def test_a_time_without_its_zone_is_refused_naming_the_parameter(srv):
    r = srv.get("/v1/dead-letters", params={"since": "2026-03-12T08:00:00"})
    assert r.status_code == 422
    (error,) = r.json()["errors"]
    assert error["field"] == "query.since" and "须带时区" in error["reason_zh"] and "time zone" in error["reason"]
    r = srv.get("/v1/dead-letters", params={"until": "yesterday"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.until"


@pytest.mark.parametrize("path, params", [
    ("/v1/dead-letters", {"event": "x"}),
    ("/v1/dead-letters", {"limit": "5", "Event_id": "x", "sinse": "2026-01-01T00:00:00Z"}),
    ("/v1/alerts", {"region": "良渚街道"}),
    ("/v1/enterprises", {"grade": "D"}),
    ("/v1/audit", {"key_id": "abc"}),
])
def test_unknown_query_parameters_are_refused_on_every_route_not_ignored(srv, path, params):
    """A filter a route does not have answered the unfiltered list, as if it had matched."""
    r = srv.get(path, params=params)
    assert r.status_code == 422, r.text
    body = r.json()
    known = {"limit", "offset", "format", "state", "enterprise_id", "severity", "action", "event_id", "request_id",
             "position", "channel", "since", "until"}
    unknown = [k for k in params if k not in known]
    assert [e["field"] for e in body["errors"]] == [f"query.{k}" for k in unknown]
    assert all(e["type"] == "extra_forbidden" for e in body["errors"])
    assert f"unknown query parameter {unknown[0]!r}: GET {path} takes " in body["detail_en"]
    assert f"未知的查询参数 {unknown[0]}" in body["detail"]
    # the same route with only its own parameters answers
    assert srv.get(path, params={k: v for k, v in params.items() if k in known}).status_code == 200


def test_a_parameter_on_a_route_that_takes_none_says_so(srv):
    r = srv.post("/v1/events?dry_run=1", json=[])
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["reason_zh"] == "未知的查询参数 dry_run：POST /v1/events 不接受查询参数"


@pytest.mark.parametrize("path, params", [
    ("/v1/alerts", {"limit": 0}), ("/v1/alerts", {"limit": 5001}), ("/v1/alerts", {"limit": "abc"}),
    ("/v1/dead-letters", {"limit": 1001}), ("/v1/dead-letters", {"offset": -1}), ("/v1/audit", {"limit": 0}),
])
def test_a_limit_out_of_its_range_is_refused_not_clamped(srv, path, params):
    r = srv.get(path, params=params)
    assert r.status_code == 422, r.text
    error = r.json()["errors"][0]
    assert error["field"] == f"query.{next(iter(params))}"
    assert re.search(r"[\u4e00-\u9fff]", error["reason_zh"]), error  # in Chinese, not pydantic's English


def test_a_query_parameter_given_twice_is_refused_naming_it(srv):
    r = srv.get("/v1/alerts?limit=5&limit=500")
    assert r.status_code == 422, r.text
    body = r.json()
    assert [(e["field"], e["type"]) for e in body["errors"]] == [("query.limit", "repeated_parameter")]
    assert "查询参数 limit 重复出现" in body["detail"] and "'limit' given more than once" in body["detail_en"]


def test_the_public_routes_refuse_unknown_and_repeated_parameters_too(srv):
    """The public /v1 routes answered 200 to ?bogus=1 and to a parameter given twice: only the keyed routes' guard checked."""
    for path in ("/v1/catalogue", "/v1/event-types"):
        r = httpx.get(srv.url + path + "?bogus=1", timeout=30)  # (no key: these are public)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["errors"][0]["reason_zh"] == f"未知的查询参数 bogus：GET {path} 不接受查询参数"
        r = httpx.get(srv.url + path + "?a=1&a=2", timeout=30)
        assert r.status_code == 422 and r.json()["errors"][0]["type"] == "repeated_parameter", (path, r.text)
        assert httpx.get(srv.url + path, timeout=30).status_code == 200


def test_parameters_are_checked_after_the_key(srv):
    assert httpx.get(srv.url + "/v1/dead-letters?bogus=1", timeout=30).status_code == 401


# --------------------------------------------------------------------------- GET /v1/events/{event_id}


def test_a_logged_event_says_its_seq_and_when_it_was_received(srv):
    sample = fresh("sampling.result")
    answer = srv.post("/v1/events", json=sample).json()
    (posted,) = answer["events"]
    r = srv.get(f"/v1/events/{sample['event_id']}")
    assert r.status_code == 200, r.text
    fate = r.json()
    assert fate["status"] == "logged" and fate["event_id"] == sample["event_id"] and fate["dead_letters"] == []
    logged = fate["logged"]
    assert logged["seq"] == posted["seq"]
    assert (logged["event_type"], logged["enterprise_id"], logged["source_kind"], logged["source_id"]) == (
        "sampling.result", sample["enterprise_id"], "lab", LAB)
    assert INSTANT.fullmatch(logged["received_at"]) and INSTANT.fullmatch(logged["occurred_at"])
    sent = dt.datetime.fromisoformat(sample["occurred_at"].replace("Z", "+00:00"))
    assert dt.datetime.fromisoformat(logged["occurred_at"].replace("Z", "+00:00")) == sent
    # any spelling of the id finds it
    assert srv.get(f"/v1/events/{sample['event_id'].upper()}").json()["logged"]["seq"] == posted["seq"]


def test_a_lab_reads_back_what_qrisk_judged_of_its_result(srv):
    """The answer to a POST says accepted; the lookup says what qrisk made of it: the verdict, the items
    it failed, where it differs from the lab's own verdict (bromate 0.02 mg/L, limit 0.01, reported 合格)."""
    reg = fresh("enterprise.registered")
    reg["enterprise_id"] = "E-JUDGED-1"
    assert srv.post("/v1/events", json=reg).status_code == 200
    sample = fresh("sampling.result")
    sample["enterprise_id"] = "E-JUDGED-1"
    bromate = next(i for i in sample["payload"]["items"] if i["item_code"] == "bromate")
    bromate["values"], bromate["lab_verdict"] = [0.02], "合格"
    assert srv.post("/v1/events", json=sample, headers=bearer(srv.role_keys["lab-own"])).status_code == 200
    fate = srv.get(f"/v1/events/{sample['event_id']}", headers=bearer(srv.role_keys["lab-own"])).json()
    judged = fate["judged"]
    assert (judged["verdict"], judged["verdict_zh"]) == ("fail", "不合格")
    assert "bromate" in judged["failed_items"] and "bromate" in judged["disagreements"]
    assert judged["superseded_as"] is None and judged["sample_no"] == sample["payload"]["sample_no"]
    # not a sample: nothing judged
    assert srv.get(f"/v1/events/{reg['event_id']}").json()["judged"] is None


def test_a_refused_event_names_its_dead_letters(srv):
    bad = bad_sample()
    letter = srv.post("/v1/events", json=bad).json()["errors"][0]["dead_letter_id"]
    fate = srv.get(f"/v1/events/{bad['event_id']}").json()
    assert fate["status"] == "dead_lettered" and fate["logged"] is None
    (summary,) = fate["dead_letters"]
    assert summary["dead_letter_id"] == letter and summary["channel"] == "http" and INSTANT.fullmatch(summary["received_at"])
    assert "values[1]" in summary["reason"] or "payload" in summary["reason"]
    # resent fixed: logged, and the refused copy is still said
    fixed = copy.deepcopy(bad)
    fixed["payload"]["items"][0]["values"][1] = 59
    assert srv.post("/v1/events", json=fixed).status_code == 200
    fate = srv.get(f"/v1/events/{bad['event_id']}").json()
    assert fate["status"] == "logged" and [d["dead_letter_id"] for d in fate["dead_letters"]] == [letter]


def test_a_conflict_is_logged_with_the_refused_correction_beside_it(srv):
    sample = fresh("sampling.result")
    assert srv.post("/v1/events", json=sample).status_code == 200
    corrected = copy.deepcopy(sample)
    corrected["payload"]["items"][1]["values"] = [0.5]
    letter = srv.post("/v1/events", json=corrected).json()["errors"][0]["dead_letter_id"]
    fate = srv.get(f"/v1/events/{sample['event_id']}").json()
    assert fate["status"] == "logged" and [d["dead_letter_id"] for d in fate["dead_letters"]] == [letter]
    assert fate["dead_letters"][0]["reason"].startswith("conflict: ")


def test_an_id_that_is_no_uuid_is_found_in_what_could_not_be_read(srv):
    broken = b'{"event_id": "9d8e7c6b-not-a-uuid", "event_type": '
    r = srv.post("/v1/events", content=broken, headers={"content-type": "application/json"})
    assert r.status_code == 422
    fate = srv.get("/v1/events/9d8e7c6b-not-a-uuid").json()
    assert fate["status"] == "dead_lettered" and fate["dead_letters"][0]["dead_letter_id"] == r.json()["errors"][0]["dead_letter_id"]


def test_an_unknown_event_is_404_in_both_languages(srv):
    r = srv.get(f"/v1/events/{uuid.uuid4()}")
    assert r.status_code == 404
    assert "未找到事件" in r.json()["detail"] and "no such event" in r.json()["detail"]


def test_a_labs_new_key_sees_the_dead_letters_its_old_keys_made(srv):
    # keys expire (a year by default): a lab's letters are the lab's, not one key's (a review found
    # them lost to the lab at its key's replacement)
    store = KeyStore(srv.data_dir / "keys.json")
    old_key, old_token = store.create("lab", "lab-rotating", source_id=LAB)
    refused = bad_sample()
    answer = srv.post("/v1/events", json=refused, headers=bearer(old_token))
    assert answer.status_code == 422
    letter_id = answer.json()["errors"][0]["dead_letter_id"]
    store.revoke(old_key.key_id)
    _, new_token = store.create("lab", "lab-rotating", source_id=LAB)
    new = bearer(new_token)
    assert letter_id in [d["dead_letter_id"] for d in srv.get("/v1/dead-letters", params={"limit": 1000}, headers=new).json()]
    assert srv.get(f"/v1/dead-letters/{letter_id}", headers=new).status_code == 200
    assert srv.get(f"/v1/events/{refused['event_id']}", headers=new).json()["status"] == "dead_lettered"
    # another lab's key, and a key of another role, still see none of them
    for other in (srv.role_keys["lab-other"], srv.role_keys["hotline"]):
        assert srv.get(f"/v1/dead-letters/{letter_id}", headers=bearer(other)).status_code == 404
        assert srv.get(f"/v1/events/{refused['event_id']}", headers=bearer(other)).status_code == 404


def test_a_lab_sees_its_own_events_and_nothing_of_another_labs(srv):
    own, other = bearer(srv.role_keys["lab-own"]), bearer(srv.role_keys["lab-other"])
    sample = fresh("sampling.result")
    assert srv.post("/v1/events", json=sample, headers=own).status_code == 200
    assert srv.get(f"/v1/events/{sample['event_id']}", headers=own).json()["status"] == "logged"
    assert srv.get(f"/v1/events/{sample['event_id']}", headers=other).status_code == 404  # as if unknown
    # the registration the admin posted is no lab's event
    registration = golden("enterprise.registered")["event_id"]
    assert srv.get(f"/v1/events/{registration}", headers=own).status_code == 404
    assert srv.get(f"/v1/events/{registration}", headers=bearer(srv.role_keys["sup"])).json()["status"] == "logged"
    # another lab's refused input: not this lab's to read
    theirs = bad_sample()
    assert srv.post("/v1/events", json=theirs, headers=other).status_code == 422
    assert srv.get(f"/v1/events/{theirs['event_id']}", headers=own).status_code == 404
    assert srv.get(f"/v1/events/{theirs['event_id']}", headers=other).json()["status"] == "dead_lettered"
    # the complaint channel sees its complaints, not the lab's results
    assert srv.get(f"/v1/events/{sample['event_id']}", headers=bearer(srv.role_keys["hotline"])).status_code == 404


def test_a_town_limited_supervisor_sees_the_events_of_its_towns(srv):
    town_key = bearer(srv.role_keys["sup-town"])
    registration = golden("enterprise.registered")  # 良渚街道
    assert srv.get(f"/v1/events/{registration['event_id']}", headers=town_key).status_code == 404
    elsewhere = fresh("enterprise.registered")
    elsewhere["enterprise_id"] = "E-330110-888"
    elsewhere["payload"]["town"] = "清湖镇"
    assert srv.post("/v1/events", json=elsewhere).status_code == 200
    fate = srv.get(f"/v1/events/{elsewhere['event_id']}", headers=town_key).json()
    assert fate["status"] == "logged" and fate["logged"]["enterprise_id"] == "E-330110-888"


def test_the_openapi_description_documents_the_lookup_and_the_filters(srv):
    spec = srv.get("/openapi.json").json()
    lookup = spec["paths"]["/v1/events/{event_id}"]["get"]
    assert set(lookup["responses"]["200"]["content"]["application/json"]["examples"]) == {"logged", "dead_lettered"}
    assert "404" in lookup["responses"] and lookup["x-qrisk-roles"]
    params = {p["name"]: p for p in spec["paths"]["/v1/dead-letters"]["get"]["parameters"]}
    assert {"event_id", "request_id", "position", "channel", "since", "until", "limit", "offset", "format"} <= set(params)
    assert params["position"]["examples"] and params["since"]["examples"] and params["event_id"]["description"]
    assert spec["paths"]["/v1/dead-letters"]["get"]["responses"]["200"]["content"]["application/json"]["example"]


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
               srv.get("/v1/campaign").json(), srv.get("/v1/audit").json(), srv.get(f"/v1/events/{sample['event_id']}").json()]
    bad = bad_sample()
    letter = srv.post("/v1/events", json=bad).json()["errors"][0]["dead_letter_id"]
    answers += [srv.get("/v1/dead-letters").json(), srv.get(f"/v1/dead-letters/{letter}").json()]
    assert sum(assert_times_canonical(a) for a in answers) > 20
    assert INSTANT.fullmatch(acted.json()["alert"]["opened_at"])
    # the CSV (machine format) says the same instants
    csv = srv.get("/v1/alerts?format=csv").text
    assert alert["opened_at"] in csv and INSTANT.fullmatch(alert["opened_at"])


def test_a_batchs_lines_header_files_each_refused_element_under_its_line(srv):
    """qrisk import --url posts a file's lines as batches: x-qrisk-lines says which line each element is,
    so ?position=file finds every refused line of the file, not only the lines the importer could not read."""
    good = golden("enterprise.registered")
    bad = golden("sampling.result")
    bad["event_id"] = str(uuid.uuid4())
    bad["payload"]["sampled_on"] = "2026-13-01"
    body = [good, good, bad]
    r = srv.post("/v1/events", json=body, headers={"x-qrisk-lines": "orders-7.jsonl:1-2,4"})
    assert r.status_code == 422, r.text
    [letter] = srv.get("/v1/dead-letters", params={"position": "orders-7.jsonl:4"}).json()
    assert letter["position"].startswith(f"request {r.json()['request_id']} from orders-7.jsonl:4 index 2 key ")
    assert [l["dead_letter_id"] for l in srv.get("/v1/dead-letters", params={"position": "orders-7.jsonl"}).json()] == [letter["dead_letter_id"]]
    # a header that does not read, names another number of lines than the batch has, or is out of all proportion
    # leaves the request and index alone (and costs nothing: no list of lines is built from it)
    for header in ("orders-8.jsonl:x-2", "orders-8.jsonl:7", "orders-8.jsonl:1-2,4-5", "orders-8.jsonl:1-100000000",
                   "orders-8.jsonl:" + "9" * 5000, "a" * 20000 + ":1-3", "orders%01-8.jsonl:1-3", "qrisk.ingress.lab/0/17:1-3"):
        r = srv.post("/v1/events", json=body, headers={"x-qrisk-lines": header})
        assert r.status_code == 422, (header[:40], r.text)
        assert r.json()["errors"][0]["index"] == 2
    assert not srv.get("/v1/dead-letters", params={"position": "orders-8.jsonl"}).json()
    assert not srv.get("/v1/dead-letters", params={"position": "qrisk.ingress.lab/0/17"}).json()
