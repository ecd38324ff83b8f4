"""A review of the door's HTTP round: Chinese sent as GBK in a URL, a dead letter whose error texts are long,
``qrisk sql``'s FORMAT detection, and the demo's commits.

GBK typed raw into a URL was percent-encoded by the server (%B1%B1…), read back as replacement characters,
and a free-text filter (?product=) matched nothing: 200 with an empty list, as if nothing were there."""
from __future__ import annotations

import json
import urllib.parse

import pytest

from tests.conftest import Server, golden
from tests.services import clickhouse_url, store  # noqa: F401 - fixtures
from tests.test_newcomer_review import _raw


# ---------------------------------------------------------------- 1. a URL's bytes must be UTF-8


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("door-http") / "data").start()
    r = srv.post("/v1/events", json=[golden("enterprise.registered"), golden("sampling.result")])
    assert r.status_code == 200, r.text
    yield srv
    srv.stop()


def _get(server: Server, target: bytes) -> bytes:
    return (b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + server.key.encode()
            + b"\r\nConnection: close\r\n\r\n")


PRODUCT = golden("sampling.result")["payload"]["product"]


def test_the_golden_product_is_chinese_so_the_tests_below_mean_something():
    assert any(ord(c) > 0x7F for c in PRODUCT)
    with pytest.raises(UnicodeDecodeError):
        PRODUCT.encode("gbk").decode("utf-8")


def test_a_product_typed_raw_as_utf8_finds_its_sample(server):
    status, _, body = _raw(server.port, _get(server, b"/v1/samples?product=" + PRODUCT.encode()))
    assert status.startswith("HTTP/1.1 200"), (status, body)
    assert PRODUCT in body.decode()


def test_a_product_percent_encoded_as_utf8_finds_its_sample(server):
    status, _, body = _raw(server.port, _get(server, b"/v1/samples?product=" + urllib.parse.quote(PRODUCT).encode()))
    assert status.startswith("HTTP/1.1 200"), (status, body)
    assert PRODUCT in body.decode()


@pytest.mark.parametrize("split", [False, True], ids=["whole", "byte-by-byte"])
def test_a_product_typed_raw_as_gbk_is_refused_not_an_empty_list(server, split):
    raw = _get(server, b"/v1/samples?product=" + PRODUCT.encode("gbk"))
    parts = [raw[i:i + 1] for i in range(len(raw))] if split else [raw]
    status, headers, body = _raw(server.port, *parts, pause=0.001 if split else 0.0)
    assert status.startswith("HTTP/1.1 400"), (status, body)
    assert headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert answer["errors"][0]["type"] == "request_line_invalid"
    assert "UTF-8" in answer["detail"] and "UTF-8" in answer["detail_en"]


def test_a_product_percent_encoded_as_gbk_is_refused_naming_the_parameter(server):
    target = b"/v1/samples?product=" + urllib.parse.quote(PRODUCT.encode("gbk")).encode()
    status, _, body = _raw(server.port, _get(server, target))
    assert status.startswith("HTTP/1.1 422"), (status, body)
    answer = json.loads(body)
    assert [(e["field"], e["type"]) for e in answer["errors"]] == [("query.product", "url_encoding")]
    assert "UTF-8" in answer["detail"] and "URL 须为 UTF-8 编码" in answer["detail"]


def test_a_path_percent_encoded_as_gbk_is_refused(server):
    target = b"/v1/enterprises/" + urllib.parse.quote("北山食品".encode("gbk")).encode()
    status, _, body = _raw(server.port, _get(server, target))
    assert status.startswith("HTTP/1.1 422"), (status, body)
    assert [e["field"] for e in json.loads(body)["errors"]] == ["path"]


def test_utf8_split_inside_a_character_then_gbk_is_refused(server):
    # the first read ends inside a UTF-8 character, the next is not its continuation: never read as a filter
    raw = _get(server, b"/v1/samples?product=" + "北".encode()[:2] + "山".encode("gbk"))
    cut = raw.index(b"product=") + len(b"product=") + 1
    status, _, body = _raw(server.port, raw[:cut], raw[cut:], pause=0.2)
    assert status.startswith(("HTTP/1.1 400", "HTTP/1.1 422")), (status, body)


# ---------------------------------------------------------------- 2. the dead-letters list says it cut a letter


def test_the_dead_letters_list_counts_a_letter_whose_50_errors_are_long(store, rules, tmp_path):  # noqa: F811 - fixture
    """100 unknown keys of some 1,500 characters: the store keeps 50 errors and an entry counting 100, over 64 KiB
    of text, of which the list reads only the head; it must still say the letter had 100 errors (on chdb and on
    the ClickHouse server)."""
    from fastapi.testclient import TestClient

    from qrisk.api import create_app
    from qrisk.auth import KeyStore
    from qrisk.pipeline import LETTER_ERRORS_KEPT, Pipeline

    pipeline = Pipeline(store, rules)
    pipeline.recover()
    keys = KeyStore(tmp_path / "keys.json")
    _, admin = keys.create("admin", "ops", actor="tests")
    auth = {"authorization": f"Bearer {admin}"}
    doc = golden("sampling.result")
    doc.update({f"k{i:03d}" + "长" * 1500: 0 for i in range(100)})
    with TestClient(create_app(pipeline, keys=keys)) as client:
        answer = client.post("/v1/events", json=doc, headers=auth)
        assert answer.status_code == 422
        letter_id = answer.json()["errors"][0]["dead_letter_id"]
        (row,) = store.query("SELECT errors FROM dead_letters FINAL WHERE dead_letter_id = %(id)s", {"id": letter_id})
        assert len(row["errors"]) > 64 * 1024  # (else the list reads it whole, and this tests nothing)
        (listed,) = [r for r in client.get("/v1/dead-letters", headers=auth).json() if r["dead_letter_id"] == letter_id]
        whole = client.get(f"/v1/dead-letters/{letter_id}", headers=auth).json()
    shown = listed["errors"]
    assert len(shown) < LETTER_ERRORS_KEPT + 1  # the list's 64 KiB hold fewer than the 50 kept
    assert [e["type"] for e in shown[:-1]] == ["extra_forbidden"] * (len(shown) - 1)
    assert shown[:-1] == whole["errors"][:len(shown) - 1]
    more = shown[-1]
    assert more["type"] == "errors_truncated" and more["errors_total"] == 100 and more["errors_listed"] == len(shown) - 1
    assert "共 100 处" in more["reason_zh"] and "lists 50" in more["reason"]
    assert whole["errors"][-1]["errors_total"] == 100


# ---------------------------------------------------------------- 3. qrisk sql: the FORMAT a query names


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from qrisk.runtime import default_rules, open_embedded

    data = tmp_path_factory.mktemp("sql") / "data"
    open_embedded(data, default_rules()).close()
    return data


@pytest.mark.parametrize("statement, printed", [
    # a comment saying FORMAT is not the query's FORMAT: JSON rows
    ("SELECT 1 AS a -- then FORMAT CSV", ['{"a": 1}']),
    ("SELECT 1 AS a /* FORMAT CSV */", ['{"a": 1}']),
    ("SELECT 'x FORMAT CSV' AS a", ['{"a": "x FORMAT CSV"}']),
    # a column named format, sorted: DESC is no format's name
    ("SELECT number AS format FROM numbers(3) ORDER BY format DESC", ['{"format": 2}', '{"format": 1}', '{"format": 0}']),
    ("SELECT number AS format FROM numbers(2) ORDER BY format ASC NULLS LAST", ['{"format": 0}', '{"format": 1}']),
    # FORMAT then SETTINGS: the format's text
    ("SELECT 1 AS a FORMAT JSONEachRow SETTINGS max_threads = 1", ['{"a":1}']),
    ("SELECT 1 AS a FORMAT CSV SETTINGS max_threads = 1;", ["1"]),
])
def test_qrisk_sql_prints_in_the_format_the_query_ends_with_and_no_other(data_dir, capsysbinary, statement, printed):
    from qrisk.cli import main

    assert main(["sql", "--data-dir", str(data_dir), statement]) == 0, capsysbinary.readouterr().err
    assert capsysbinary.readouterr().out.decode("utf-8").splitlines() == printed


def test_qrisk_sql_format_json_with_settings_prints_the_json_document(data_dir, capsysbinary):
    from qrisk.cli import main

    assert main(["sql", "--data-dir", str(data_dir), "SELECT 1 AS a FORMAT JSON SETTINGS max_threads = 1"]) == 0
    assert json.loads(capsysbinary.readouterr().out)["data"] == [{"a": 1}]


def test_qrisk_sql_says_in_one_line_when_an_answer_is_not_json_rows(data_dir, capsysbinary, monkeypatch):
    # (a FORMAT clause the statement's reading missed: its answer reaches the JSON path)
    import qrisk.cli
    from qrisk.cli import main

    monkeypatch.setattr(qrisk.cli, "_output_format", lambda statement: None)
    assert main(["sql", "--data-dir", str(data_dir), "SELECT 'x' FORMAT TSV"]) == 2
    err = capsysbinary.readouterr().err.decode("utf-8")
    assert "Traceback" not in err and "not JSON rows" in err and "FORMAT" in err


# ---------------------------------------------------------------- 4. the demo's events are received while still news


def test_no_demo_event_is_received_later_than_alerts_live_within_hours(tmp_path):
    """Seed 2025 held events received 1,222 h after they occurred, against 720 h: a step that late is history."""
    import subprocess
    import sys

    from qrisk.runtime import default_rules
    from qrisk.store import ChdbStore
    from tests.conftest import ROOT

    data = tmp_path / "data"
    done = subprocess.run([sys.executable, "-m", "qrisk", "demo", "--seed", "2025", "--data-dir", str(data), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    store = ChdbStore(data)
    try:
        (row,) = store.query("SELECT max(dateDiff('second', occurred_at, received_at)) AS late, count() AS n FROM event_log")
    finally:
        store.close()
    assert row["n"] > 1000
    assert 0 < row["late"] <= 3600 * default_rules().policy.alerts.live_within_hours
