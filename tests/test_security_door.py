"""Findings of a security review of the door (POST /v1/events and what it keeps): one post of many unknown
keys amplified into its answer, its dead letter and a stalled server; ``?until=9999-12-31`` a 500; and
invisible format characters (bidi controls, zero-width spaces) passing as names and texts."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import unicodedata

import httpx
import pytest

from qrisk.auth import KeyStore
from tests.conftest import Server, golden
from tests.services import clickhouse_url, store  # noqa: F401 - fixtures

LAB = "CMA-330100-0451"  # the lab of the golden sampling.result


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("secdoor") / "data")
    _, server.lab = KeyStore(server.data_dir / "keys.json").create("lab", "lab-x", source_id=LAB)
    server.start()
    assert server.post("/v1/events", json=[golden("enterprise.registered"), golden("sampling.result")]).status_code == 200
    yield server
    server.stop()


def unknown_keys_body(n: int, doc: dict | None = None) -> bytes:
    """An event with ``n`` keys the schema does not know beside its own."""
    text = json.dumps(doc or golden("sampling.result")).encode()
    return text[:-1] + b"," + ",".join(f'"{i:x}":0' for i in range(n)).encode() + b"}"


# --------------------------------------------------------------------------- many errors, bounded


def test_one_lab_post_of_100000_unknown_keys_is_not_amplified(srv):
    body = unknown_keys_body(100_000)
    answer = srv.post("/v1/events", content=body, timeout=120,
                      headers={"authorization": f"Bearer {srv.lab}", "content-type": "application/json"})
    assert answer.status_code == 422
    assert len(answer.content) < 10 * len(body)
    errors = answer.json()["errors"]
    assert [e["type"] for e in errors[:50]] == ["extra_forbidden"] * 50
    (more,) = errors[50:]
    assert more["type"] == "errors_truncated" and more["errors_total"] == 100_000 and more["dead_letter_id"]
    assert "99950" in more["reason"] and "另有 99950 处错误未列出" in more["reason_zh"]
    letter = srv.get(f"/v1/dead-letters/{more['dead_letter_id']}", timeout=120).json()
    assert len(json.dumps(letter["errors"])) < 100_000 and len(letter["reason"]) <= 2000 + 40
    assert letter["errors"][-1]["errors_total"] == 100_000
    assert letter["raw"].encode() == body  # the refused bytes themselves are kept whole, as any refused event's


def test_50000_keys_each_given_twice_name_50_errors_and_count_the_rest():
    from ingest.validate import decode_body

    text = json.dumps(golden("sampling.result")).encode()
    body = text[:-1] + b"," + b",".join(f'"k{i}":0,"k{i}":1'.encode() for i in range(50_000)) + b"}"
    _, (refused,) = decode_body(body)
    assert len(refused.errors) == 51 and refused.errors[0]["type"] == "duplicate_key"
    # each key given twice, and unknown: two errors each
    assert refused.errors[-1]["type"] == "errors_truncated" and refused.errors[-1]["errors_total"] == 100_000
    assert len(refused.reason) < 20_000


def test_a_batch_answer_names_every_element_within_about_a_thousand_errors(srv):
    doc = golden("sampling.result")
    batch = [json.loads(unknown_keys_body(60, {**doc, "event_id": f"00000000-0000-4000-8000-{i:012d}"})) for i in range(200)]
    answer = srv.post("/v1/events", json=batch, timeout=120)
    assert answer.status_code == 422
    errors = answer.json()["errors"]
    assert len(errors) <= 1000 + 200  # (each element's share, and one entry counting what it leaves out)
    assert {e["index"] for e in errors} == set(range(200))  # every element named, with its dead letter
    counted = [e for e in errors if e["type"] == "errors_truncated"]
    assert len(counted) == 200 and all(e["errors_total"] == 60 for e in counted)


def test_the_embedded_store_keeps_a_letter_bounded_as_the_dead_letter_topic_does(tmp_path, rules):
    from qrisk.kafka_log import bounded_letter_value
    from qrisk.pipeline import LETTER_ERRORS_KEPT, DeadLetter, Pipeline
    from qrisk.store import ChdbStore

    errors = [{"field": f"k{i}", "type": "extra_forbidden", "reason": "x" * 5000, "reason_zh": "未知字段"} for i in range(10_000)]
    letter = DeadLetter("import", "big.jsonl:1", b'{"event_type": "x"}', "; ".join(e["field"] for e in errors), errors)
    pipeline = Pipeline(ChdbStore(tmp_path / "data"), rules, clock=lambda: dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc))
    try:
        pipeline.recover()
        (kept_id,) = pipeline.dead_letter([letter])
        (row,) = pipeline.store.query("SELECT reason, errors FROM dead_letters WHERE dead_letter_id = %(id)s", {"id": kept_id})
    finally:
        pipeline.close()
    stored = json.loads(row["errors"])
    assert len(row["errors"]) < 200_000 and len(row["reason"]) < 2100
    assert len(stored) == LETTER_ERRORS_KEPT + 1 and stored[-1]["errors_total"] == 10_000
    assert all(len(e["reason"]) < 2100 for e in stored)
    # the Kafka letter, by the same helper: its errors and its count the same
    topic = json.loads(bounded_letter_value(letter, dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)))
    assert topic["errors"][:-1] == stored and topic["errors"][-1]["errors_total"] == 10_000


def test_the_dead_letters_list_cuts_a_letter_kept_whole_before(store, rules, tmp_path):  # noqa: F811 - fixture
    """A letter stored before letters were bounded: the list shows its first errors and counts the rest
    (on chdb and on the ClickHouse server, whose version may lack the JSON functions)."""
    from fastapi.testclient import TestClient

    from qrisk.api import create_app
    from qrisk.pipeline import Pipeline

    pipeline = Pipeline(store, rules)
    pipeline.recover()
    keys = KeyStore(tmp_path / "keys.json")
    _, admin = keys.create("admin", "ops", actor="tests")
    auth = {"authorization": f"Bearer {admin}"}
    many = [{"field": f"k{i}", "type": "extra_forbidden", "reason": "unknown", "reason_zh": "未知"} for i in range(5000)]
    few = many[:60]  # short enough to be read whole, more than a list shows
    with TestClient(create_app(pipeline, keys=keys)) as client:
        ids = []
        for errors in (many, few):
            answer = client.post("/v1/events", json={**golden("sampling.result"), "stray": 1}, headers=auth)
            letter_id = answer.json()["errors"][0]["dead_letter_id"]
            (row,) = store.query("SELECT * FROM dead_letters FINAL WHERE dead_letter_id = %(id)s", {"id": letter_id})
            store.insert("dead_letters", [{**row, "errors": json.dumps(errors, ensure_ascii=False), "reason": "r" * 100_000}])
            ids.append(letter_id)
        listed = {r["dead_letter_id"]: r for r in client.get("/v1/dead-letters", headers=auth).json()}
        whole = client.get(f"/v1/dead-letters/{ids[0]}", headers=auth).json()
    for letter_id, errors in zip(ids, (many, few)):
        shown = listed[letter_id]["errors"]
        assert len(shown) == 51 and shown[:50] == errors[:50]
        assert shown[-1]["type"] == "errors_truncated" and shown[-1]["errors_total"] == len(errors)
        assert len(listed[letter_id]["reason"]) < 2100 and "100000 characters" in listed[letter_id]["reason"]
    assert len(whole["errors"]) == 5000  # the letter itself: whole


def test_health_answers_while_a_large_body_is_decoded(tmp_path, rules, monkeypatch):
    """The door decodes a large body off the event loop: /healthz answers while the decode is held."""
    import qrisk.api
    from qrisk.api import create_app
    from qrisk.pipeline import Pipeline
    from qrisk.store import ChdbStore

    pipeline = Pipeline(ChdbStore(tmp_path / "data"), rules)
    pipeline.recover()
    keys = KeyStore(tmp_path / "keys.json")
    _, admin = keys.create("admin", "ops", actor="tests")
    release, order = threading.Event(), []
    real = qrisk.api.decode_body

    def held(*args, **kw):
        # on the loop, this wait would hold /healthz too, and the decode would go on only at the timeout
        order.append("decoding")
        order.append("released by healthz" if release.wait(timeout=10) else "timed out")
        return real(*args, **kw)

    monkeypatch.setattr(qrisk.api, "decode_body", held)
    app = create_app(pipeline, keys=keys)

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://qrisk") as client:
            post = asyncio.create_task(client.post("/v1/events", content=unknown_keys_body(20_000), timeout=60,
                                                   headers={"authorization": f"Bearer {admin}", "content-type": "application/json"}))
            while not order and not post.done():
                await asyncio.sleep(0.01)
            health = await client.get("/healthz", timeout=60)
            order.append(f"healthz {health.status_code}")
            release.set()
            assert (await post).status_code == 422

    try:
        asyncio.run(scenario())
    finally:
        app.state.committer.close()
        app.state.audit.close()
        pipeline.close()
    assert order == ["decoding", "healthz 200", "released by healthz"]


# --------------------------------------------------------------------------- ?until= at the calendar's end


@pytest.mark.parametrize("route", ["/v1/samples", "/v1/complaints", "/v1/inspections", "/v1/alerts"])
def test_until_the_last_day_of_the_calendar_is_no_upper_bound(srv, route):
    everything = srv.get(route)
    answer = srv.get(route, params={"until": "9999-12-31"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == everything.json()


def test_until_a_day_still_bounds_the_samples(srv):
    assert len(srv.get("/v1/samples").json()) == 1  # (the golden sample, 2026)
    assert srv.get("/v1/samples", params={"until": "2000-01-01"}).json() == []


# --------------------------------------------------------------------------- invisible format characters


def _refusal(doc: dict) -> dict[str, dict]:
    from ingest.validate import decode_body

    events, rejections = decode_body(json.dumps(doc).encode())
    assert not events, "accepted"
    return {e["field"]: e for e in rejections[0].errors}


@pytest.mark.parametrize("char", ["\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200b", "\ufeff", "\u00ad", "\U000e0041"])
def test_a_format_character_in_a_sample_no_is_refused_naming_it(char):
    doc = golden("sampling.result")
    doc["payload"]["sample_no"] = f"SC2026{char}031"
    error = _refusal(doc)["payload.sample_no"]
    code = f"U+{ord(char):04X}"
    assert code in error["reason"] and f"含不可见格式字符 {code}" in error["reason_zh"]
    assert char not in error["reason"] and char not in error["reason_zh"]  # shown escaped: it would reorder the message


def test_a_bidi_override_in_an_enterprise_name_is_refused():
    doc = golden("enterprise.registered")
    doc["payload"]["name"] = "清泉\u202e水厂"
    error = _refusal(doc)["payload.name"]
    assert "U+202E" in error["reason"] and "从右至左覆盖" in error["reason_zh"]


def test_a_complaints_text_loses_its_format_characters_and_is_kept():
    """A hotline pastes what it was given: a BOM or a zero-width space is no reason to turn a complaint away."""
    from ingest.validate import decode_body

    doc = golden("complaint.received")
    doc["payload"]["text"] = "\ufeff桶装水内有\u200b异物，\u202e请尽快处理\u202c"
    (event,), rejections = decode_body(json.dumps(doc).encode())
    assert not rejections and event.payload.text == "桶装水内有异物，请尽快处理"
    doc["payload"]["text"] = "\u200b \u2066"
    assert "payload.text" in _refusal(doc)  # nothing left: blank, as an empty text is


def test_a_log_holding_a_format_character_re_reads_it():
    from schemas.upcast import parse_event

    doc = golden("sampling.result")
    doc["payload"]["sample_no"] = "SC2026\u200b031"
    assert parse_event(doc).payload.sample_no == "SC2026\u200b031"


def test_the_exported_schema_refuses_a_bidi_override(tmp_path):
    import jsonschema

    from schemas.export import export

    export(tmp_path)
    schema = json.loads((tmp_path / "sampling.result.schema.json").read_text(encoding="utf-8"))
    doc = golden("sampling.result")
    assert not list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    doc["payload"]["sample_no"] = "SC\u202e2026031"
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(doc))


def test_the_format_characters_listed_are_unicodes():
    from schemas.events import FORMAT_CHARACTERS

    listed = {c for a, b in FORMAT_CHARACTERS for c in range(a, b + 1)}
    known = {c for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"}
    assert listed <= known
    if unicodedata.unidata_version == "14.0.0":
        assert listed == known
