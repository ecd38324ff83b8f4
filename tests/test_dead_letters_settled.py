"""A dead letter says whether it is still to act on: the event it is about (``dead_letters.event_id``, the refused
document's own id as the log spells it) and, once a fixed copy of that event has been accepted, ``settled_by`` (its seq
and received_at) — on ``GET /v1/dead-letters`` (``?outstanding=``, CSV), one letter, ``GET /v1/events/{id}``, in
both runtimes (embedded: the log table on chdb and on a ClickHouse server; Kafka: the sink's rows and the ``events``
archive), and on the intake board, whose SQL must say the same as the API."""
from __future__ import annotations

import collections
import copy
import csv
import datetime as dt
import io
import json
import uuid

import pytest
from fastapi.testclient import TestClient

from tests.conftest import golden
from tests.services import clickhouse_url, drop_database, fresh_database_url, store  # noqa: F401 - fixtures

LAB = "CMA-330100-0451"  # the lab of the golden sampling.result
TP = collections.namedtuple("TP", "topic partition")
Message = collections.namedtuple("Message", "offset value")


def fresh(event_type: str) -> dict:
    doc = golden(event_type)
    doc["event_id"] = str(uuid.uuid4())
    return doc


def bad_sample() -> dict:
    doc = fresh("sampling.result")
    doc["payload"]["items"][0]["values"][1] = "59"  # a quoted number: 422
    return doc


def fixed(doc: dict) -> dict:
    out = copy.deepcopy(doc)
    out["payload"]["items"][0]["values"][1] = 59
    return out


# --------------------------------------------------------------------------- the event a letter names


def test_a_letter_names_its_documents_event_id_as_the_log_spells_it():
    from qrisk.kafka_log import dead_letter_value
    from qrisk.pipeline import DeadLetter, imported_letter, named_event_id

    eid = uuid.uuid4()
    assert named_event_id({"event_id": eid.hex.upper()}) == str(eid)  # any spelling of the UUID: the log's
    assert named_event_id({"event_id": f" {str(eid).upper()} "}) == str(eid)
    assert named_event_id({"event_id": "lab-0001"}) == "lab-0001"  # no UUID: as sent, never logged
    for nothing in (None, [], [{"event_id": str(eid)}], {"events": [{"event_id": str(eid)}]}, {"event_id": 7}, {"event_id": "  "},
                    {"event_id": "x" * 201}):
        assert named_event_id(nothing) == ""
    assert DeadLetter("http", "p", json.dumps({"event_id": eid.hex}).encode(), "r").named_event() == str(eid)
    assert DeadLetter("http", "p", b'{"event_id": "' + str(eid).encode() + b'", "event_type": ', "r").named_event() == ""
    assert DeadLetter("http", "p", "\u4e00".encode("gbk"), "r").named_event() == ""
    assert DeadLetter("processing", "seq 9", b"{}", "r", event_id=str(eid)).named_event() == str(eid)
    # a CSV row's bytes are no JSON: its mapped document names the event
    assert imported_letter("rows.csv:2", b"a,b,c", "r", [], {"event_id": eid.hex}).named_event() == str(eid)
    # a letter too large for the topic keeps the head of its bytes, and still the event it is about
    raw = json.dumps({"event_id": str(eid), "payload": {"text": "x" * 50_000}}).encode()
    doc = json.loads(dead_letter_value(DeadLetter("kafka", "t/0/1", raw, "r"), dt.datetime.now(dt.timezone.utc), max_bytes=8_000))
    assert len(doc["raw"]) < len(raw) and doc["event_id"] == str(eid)


# --------------------------------------------------------------------------- embedded: the API over a real store


@pytest.fixture
def api(store, rules, tmp_path):  # noqa: F811 - fixture
    from qrisk.api import create_app
    from qrisk.auth import KeyStore
    from qrisk.pipeline import Pipeline

    pipeline = Pipeline(store, rules, snapshot_every=dt.timedelta(days=1))
    pipeline.recover()
    keys = KeyStore(tmp_path / "keys.json")
    tokens = {name: keys.create(role, name, actor="tests", **kw)[1]
              for name, role, kw in (("admin", "admin", {}), ("lab", "lab", {"source_id": LAB}),
                                     ("other-lab", "lab", {"source_id": "CMA-999999-0001"}))}
    with TestClient(create_app(pipeline, keys=keys)) as client:
        client.tokens = tokens
        client.pipeline = pipeline

        def call(method: str, path: str, key: str = "admin", **kw):
            return client.request(method, path, headers={"authorization": f"Bearer {tokens[key]}", **kw.pop("headers", {})}, **kw)

        client.call = call
        assert call("POST", "/v1/events", json=golden("enterprise.registered")).status_code == 200
        yield client


def _letters(api, key: str = "admin", **params) -> dict[str, dict]:
    r = api.call("GET", "/v1/dead-letters", key, params=params)
    assert r.status_code == 200, r.text
    return {row["dead_letter_id"]: row for row in r.json()}


def test_a_letter_is_settled_by_its_fixed_copy_and_the_others_stay_outstanding(api):
    fixable, still_bad = bad_sample(), bad_sample()
    sent = copy.deepcopy(fixable)
    sent["event_id"] = uuid.UUID(fixable["event_id"]).hex.upper()  # the sender's spelling; the log's is another
    r = api.call("POST", "/v1/events", json=[sent, still_bad])
    assert r.status_code == 422
    fixable_letter, bad_letter = (e["dead_letter_id"] for e in r.json()["errors"])
    unreadable = api.call("POST", "/v1/events", content=b'{"event_id": "' + fixable["event_id"].encode() + b'", "event_type": ',
                          headers={"content-type": "application/json"})
    assert unreadable.status_code == 422
    unreadable_letter = unreadable.json()["errors"][0]["dead_letter_id"]

    letters = _letters(api)
    assert letters[fixable_letter]["event_id"] == fixable["event_id"] and letters[bad_letter]["event_id"] == still_bad["event_id"]
    assert letters[unreadable_letter]["event_id"] == ""
    assert all(letters[i]["settled_by"] is None for i in (fixable_letter, bad_letter, unreadable_letter))
    assert {fixable_letter, bad_letter, unreadable_letter} <= set(_letters(api, outstanding="true"))

    accepted = api.call("POST", "/v1/events", json=fixed(fixable))
    assert accepted.status_code == 200
    logged = api.call("GET", f"/v1/events/{fixable['event_id']}").json()
    assert logged["status"] == "logged"

    letters = _letters(api)
    assert letters[fixable_letter]["settled_by"] == {"seq": logged["logged"]["seq"], "received_at": logged["logged"]["received_at"]}
    assert letters[bad_letter]["settled_by"] is None
    assert letters[unreadable_letter]["settled_by"] is None and letters[unreadable_letter]["event_id"] == ""
    outstanding = _letters(api, outstanding="true")
    assert fixable_letter not in outstanding and {bad_letter, unreadable_letter} <= set(outstanding)
    assert set(_letters(api, outstanding="false")) == {fixable_letter}
    # the filters combine: the fixed event's refused copies, outstanding or not
    assert set(_letters(api, event_id=fixable["event_id"], outstanding="false")) == {fixable_letter}
    assert unreadable_letter in _letters(api, event_id=fixable["event_id"], outstanding="true")

    one = api.call("GET", f"/v1/dead-letters/{fixable_letter}").json()
    assert one["settled_by"]["seq"] == logged["logged"]["seq"] and one["event_id"] == fixable["event_id"]
    assert api.call("GET", f"/v1/dead-letters/{bad_letter}").json()["settled_by"] is None
    fate = {d["dead_letter_id"]: d for d in logged["dead_letters"]}
    assert fate[fixable_letter]["settled_by"]["seq"] == logged["logged"]["seq"]

    table = api.call("GET", "/v1/dead-letters", params={"format": "csv"}, headers={"authorization": f"Bearer {api.tokens['admin']}"})
    rows = {r["dead_letter_id"]: r for r in csv.DictReader(io.StringIO(table.text.lstrip("\ufeff")))}
    assert rows[fixable_letter]["event_id"] == fixable["event_id"] and rows[fixable_letter]["settled_seq"] == str(logged["logged"]["seq"])
    assert rows[fixable_letter]["settled_at"] == logged["logged"]["received_at"]
    assert rows[bad_letter]["settled_seq"] == "" and rows[unreadable_letter]["event_id"] == ""


def test_a_conflict_and_a_processing_failure_are_not_settled_by_the_logged_copy(api):
    from qrisk.pipeline import DeadLetter

    sample = fresh("sampling.result")
    assert api.call("POST", "/v1/events", json=sample).status_code == 200
    correction = copy.deepcopy(sample)
    correction["payload"]["items"][1]["values"] = [0.5]
    clash = api.call("POST", "/v1/events", json=correction)
    assert clash.status_code == 409
    conflict_letter = clash.json()["errors"][0]["dead_letter_id"]
    # the fold failing on that very logged event: its copy in the log is the problem, not the cure
    (failed_letter,) = api.pipeline.dead_letter([DeadLetter("processing", "seq 2", json.dumps(sample).encode(),
                                                            "processing failed: KeyError: 'x'", dead_letter_id="processing-x")])
    letters = _letters(api)
    for letter in (conflict_letter, failed_letter):
        assert letters[letter]["event_id"] == sample["event_id"] and letters[letter]["settled_by"] is None
    assert {conflict_letter, failed_letter} <= set(_letters(api, outstanding="true"))
    assert not {conflict_letter, failed_letter} & set(_letters(api, outstanding="false"))


def test_a_copy_logged_before_the_letter_does_not_settle_it(api, store):  # noqa: F811 - fixture
    """Another document reusing a logged event's id, refused by validation (before the conflict check): its letter read
    已重新提交并接收, settled by the copy logged before it — content that was never accepted."""
    from qrisk.cli_dashboards import run_panels

    good = fixed(bad_sample())
    assert api.call("POST", "/v1/events", json=good).status_code == 200
    other = copy.deepcopy(good)
    other["payload"]["sample_no"] = "OTHER-" + other["payload"]["sample_no"]
    other["payload"]["items"][0]["values"][1] = "59"
    refused = api.call("POST", "/v1/events", json=other)
    assert refused.status_code == 422
    letter = refused.json()["errors"][0]["dead_letter_id"]
    row = _letters(api)[letter]
    assert row["event_id"] == good["event_id"] and row["settled_by"] is None
    assert letter in _letters(api, outstanding="true") and letter not in _letters(api, outstanding="false")
    api.pipeline.wait_derived(60)
    now = dt.datetime.now(dt.timezone.utc)
    got = {r["panel"]: r for r in run_panels(store, now - dt.timedelta(days=1), now + dt.timedelta(hours=1)) if r["dashboard"] == "intake.json"}
    assert got["拒收记录"]["rows"][0]["已重新提交并接收"] == 0 and got["拒收记录"]["rows"][0]["待处理"] == 1, got["拒收记录"]


def test_a_labs_key_sees_its_own_letters_settled_and_no_other_labs(api):
    bad = bad_sample()
    letter = api.call("POST", "/v1/events", "lab", json=bad).json()["errors"][0]["dead_letter_id"]
    assert api.call("POST", "/v1/events", "lab", json=fixed(bad)).status_code == 200
    own = _letters(api, "lab")
    assert own[letter]["settled_by"] is not None and set(_letters(api, "lab", outstanding="false")) == {letter}
    assert letter not in _letters(api, "lab", outstanding="true")
    assert _letters(api, "other-lab") == {} and _letters(api, "other-lab", outstanding="false") == {}
    # another lab's letter naming this lab's event (a copied id) is not settled by an event its key may not see
    copied = bad_sample()
    copied["event_id"] = bad["event_id"]
    copied["source"]["id"] = "CMA-999999-0001"
    theirs = api.call("POST", "/v1/events", "other-lab", json=copied).json()["errors"][0]["dead_letter_id"]
    assert _letters(api, "other-lab")[theirs]["settled_by"] is None
    assert theirs in _letters(api, "other-lab", outstanding="true")


def test_the_intake_board_counts_what_the_api_calls_outstanding(api, store):  # noqa: F811 - fixture
    from qrisk.cli_dashboards import run_panels

    fixable, still_bad = bad_sample(), bad_sample()
    api.call("POST", "/v1/events", json=[fixable, still_bad])
    assert api.call("POST", "/v1/events", json=fixed(fixable)).status_code == 200
    api.call("POST", "/v1/events", content=b"not json", headers={"content-type": "application/json"})
    api.pipeline.wait_derived(60)
    now = dt.datetime.now(dt.timezone.utc)
    got = {r["panel"]: r for r in run_panels(store, now - dt.timedelta(days=1), now + dt.timedelta(hours=1)) if r["dashboard"] == "intake.json"}
    assert "error" not in got["拒收记录"] and "error" not in got["未处理的拒收记录"], got
    outstanding, settled = _letters(api, outstanding="true"), _letters(api, outstanding="false")
    assert got["拒收记录"]["rows"] == [{"待处理": len(outstanding), "已重新提交并接收": len(settled), "处理失败": 0}]
    assert len(settled) == 1 and len(outstanding) == 2
    assert sorted(r["位置"] for r in got["未处理的拒收记录"]["rows"]) == sorted(r["position"] for r in outstanding.values())


# --------------------------------------------------------------------------- Kafka: the sink's rows, the events archive


class _NoLog:
    """The Kafka producer a read-only API never uses."""

    def close(self):
        pass


def test_kafka_sink_rows_carry_the_event_and_the_archive_settles_them(clickhouse_url, rules, tmp_path):  # noqa: F811 - fixture
    from qrisk.api import create_app
    from qrisk.auth import KeyStore
    from qrisk.kafka_api import DistributedBackend
    from qrisk.kafka_log import dead_letter_value, event_value
    from qrisk.pipeline import DeadLetter
    from qrisk.sink import Sink
    from qrisk.store import ClickHouseStore, migrate
    from qrisk.topics import KafkaSettings
    from schemas.upcast import parse_event

    settings = KafkaSettings()
    topics = settings.topics()
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=250_000)
    fixable, still_bad = bad_sample(), bad_sample()
    letters = [DeadLetter("kafka", f"{topics.dead_letters.name}/0/{i}", json.dumps(doc).encode(), "payload: bad", []) for i, doc in
               enumerate((fixable, still_bad))]
    old = json.loads(dead_letter_value(DeadLetter("kafka", "x/0/9", json.dumps(bad_sample()).encode(), "r"), now))
    old.pop("event_id")  # as a worker before the column sent it
    name, url = fresh_database_url(clickhouse_url, "letters_settled")
    store = ClickHouseStore(url)
    try:
        migrate(store)
        sink = Sink(store, settings, consumer=object())
        batch = [Message(i, dead_letter_value(letter, now)) for i, letter in enumerate(letters)] + [Message(5, json.dumps(old).encode())]
        assert sink.process({TP(topics.dead_letters.name, 0): batch}) == len(batch)
        rows = {r["dead_letter_id"]: r["event_id"] for r in store.query("SELECT dead_letter_id, event_id FROM dead_letters FINAL")}
        assert rows == {letters[0].dead_letter_id: fixable["event_id"], letters[1].dead_letter_id: still_bad["event_id"],
                        old["dead_letter_id"]: ""}
        event = parse_event(fixed(fixable)).model_copy(update={"received_at": now + dt.timedelta(seconds=5)})
        assert sink.process({TP(topics.events.name, 1): [Message(17, event_value(event))]}) == 1

        keys = KeyStore(tmp_path / "keys.json")
        _, token = keys.create("admin", "ops", actor="tests")
        with TestClient(create_app(DistributedBackend(settings, store, rules, log=_NoLog()), keys=keys)) as client:
            got = {r["dead_letter_id"]: r for r in client.get("/v1/dead-letters", headers={"authorization": f"Bearer {token}"}).json()}
            outstanding = client.get("/v1/dead-letters", params={"outstanding": "true"}, headers={"authorization": f"Bearer {token}"}).json()
        assert got[letters[0].dead_letter_id]["settled_by"] == {"seq": (1 << 40) | 17, "received_at": (now + dt.timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S.250Z")}
        assert got[letters[1].dead_letter_id]["settled_by"] is None and got[old["dead_letter_id"]]["settled_by"] is None
        assert {r["dead_letter_id"] for r in outstanding} == {letters[1].dead_letter_id, old["dead_letter_id"]}
    finally:
        store.close()
        drop_database(clickhouse_url, name)


@pytest.mark.parametrize("since", ["-1307", "1767225600", " 1.5 "])
def test_a_time_given_as_a_number_is_refused_not_read_as_epoch_seconds(api, since):
    """?since=-1307 listed every letter since 1969 (pydantic reads a number as epoch seconds), where the route's
    description asks for ISO 8601 with a zone; found by the API's fuzzing once ?outstanding= changed its examples."""
    r = api.call("GET", "/v1/dead-letters", params={"since": since})
    assert r.status_code == 422 and "since" in r.text and "不能是数字" in r.text
    assert api.call("GET", "/v1/dead-letters", params={"since": "2026-03-12T08:00:00+08:00"}).status_code == 200
