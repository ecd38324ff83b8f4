"""What a lab integrator or an operator importing history learns about what they sent: units in
capitals, whitespace around enumerated values, results below the detection limit, warnings
reported by `qrisk import` as the HTTP answer reports them, and importer errors in Chinese
and English with the field or column they are about."""
from __future__ import annotations

import pytest

from schemas.standards import load_catalogue

# Units whose capitals name another unit as well: "MS/CM" is millisiemens or megasiemens
# per centimetre, a thousandfold apart; the catalogue leaves it unknown rather than guess.
CASE_MEANINGFUL = {"mS/cm"}


def test_every_unit_printed_in_capitals_resolves_to_itself_unless_case_names_another():
    units = load_catalogue().units
    for unit in units.units:
        spellings = [unit.unit, *unit.aliases]
        for text in spellings:
            capitals = text.upper()
            if unit.unit in CASE_MEANINGFUL:
                assert units.resolve(capitals) is None or capitals == text, (text, capitals)
                continue
            found = units.resolve(capitals)
            assert found is unit, f"{text!r} in capitals, {capitals!r}, resolves to {found and found.unit!r}, not {unit.unit!r}"
            if "µ" in text or "μ" in text:  # a lab system without the micro sign prints u, in capitals U
                ascii_form = capitals.replace("Μ", "U")
                assert units.resolve(ascii_form) is unit, (text, ascii_form)


@pytest.mark.parametrize("text", ["MS/CM", "ppm", "PPM", "mg/dL"])
def test_capitals_that_could_mean_another_unit_are_not_guessed(text):
    assert load_catalogue().units.resolve(text) is None


# --------------------------------------------------------------------------- enumerated text with spaces around it


def _padded_inputs(annotation):
    """(input with spaces around each allowed text value, the value expected back) for a field's type."""
    import types
    import typing

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        yield from _padded_inputs(args[0])
    elif origin is typing.Literal:
        for value in args:
            if isinstance(value, str):
                yield f" {value}\t", value
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            yield from _padded_inputs(arg)
    elif origin is list:
        for sent, value in _padded_inputs(args[0]):
            yield [sent], [value]
    elif origin is dict:
        for sent, value in _padded_inputs(args[0]):
            yield {sent: 50.0}, {value: 50.0}


def test_every_enumerated_text_field_strips_the_spaces_around_its_value():
    """As free text (str_strip_whitespace) and lab_verdict always did: "基本符合 " is 基本符合."""
    import inspect

    from pydantic import BaseModel, TypeAdapter

    from schemas import events

    models = [m for _, m in inspect.getmembers(events, inspect.isclass) if issubclass(m, BaseModel) and m.__module__ == events.__name__]
    checked = 0
    for model in models:
        for name, info in model.model_fields.items():
            if name == "event_type":  # the discriminator: ingest.validate strips it (tested below)
                continue
            adapter = None
            for sent, value in _padded_inputs(info.rebuild_annotation()):
                adapter = adapter or TypeAdapter(info.rebuild_annotation())
                got = adapter.validate_python(sent, context=events.DOOR)
                if name == "lab_verdict":
                    value = {"合格": "pass", "不合格": "fail"}.get(value, value)
                assert got == value, (model.__name__, name, sent, got)
                checked += 1
    assert checked > 60  # every Literal of the contract, not none by a walk gone wrong


def test_padded_values_reach_the_event_as_the_words_they_are():
    from ingest.validate import Rejection, validate_document
    from tests.conftest import golden

    doc = golden("inspection.completed")
    doc["event_type"] = "inspection.completed "
    doc["payload"]["result"] = "基本符合 "
    doc["payload"]["kind"] = " routine"
    event = validate_document(doc, None, b"")
    assert not isinstance(event, Rejection), event.errors
    assert (event.event_type, event.payload.result, event.payload.kind) == ("inspection.completed", "基本符合", "routine")
    doc = golden("sampling.result")
    doc["payload"]["items"][2]["values"] = [" ND "]
    event = validate_document(doc, None, b"")
    assert not isinstance(event, Rejection) and event.payload.items[2].values == ["ND"]


def test_a_refused_enumerated_value_is_quoted_so_an_invisible_difference_shows():
    from ingest.validate import validate_document
    from tests.conftest import golden

    doc = golden("inspection.completed")
    doc["payload"]["result"] = "基本符合\u200b"  # a zero-width space a copy from a web page carries
    (error,) = validate_document(doc, None, b"").errors
    assert error["field"] == "payload.result" and error["type"] == "literal_error"
    assert error["reason"].endswith(r"got '基本符合\u200b'")
    assert r"收到 '基本符合\u200b'，与 '基本符合' 只差" in error["reason_zh"]
    doc = golden("inspection.completed")
    doc["payload"]["result"] = "合格"  # another word: both languages list what is allowed and quote what came
    (error,) = validate_document(doc, None, b"").errors
    assert error["reason"].endswith("got '合格'") and error["reason_zh"] == "取值不在允许范围内，应为 '符合'、'基本符合' 或 '不符合'；收到 '合格'"
    doc = golden("complaint.received")
    doc["event_type"] = "complaint.recieved"
    (error,) = validate_document(doc, None, b"").errors
    assert error["reason_zh"].startswith("未知的事件类型 'complaint.recieved'，应为 'enterprise.registered'、")


# --------------------------------------------------------------------------- a result below the detection limit


@pytest.mark.parametrize("sent, limit, also", [
    ("<0.01", "0.01", None),
    ("＜ 0.002 mg/L", "0.002", None),
    ("nd", "0.005", None),
    ("n.d.", "0.005", None),
    ("0.005mg/L", "0.005", ('(0.005, "unit": "mg/L")', '（0.005，"unit": "mg/L"）')),
    ("59", "0.005", ("without quotes (59)", "数字不要加引号（59）")),
    (True, "0.005", None),
])
def test_a_value_that_is_no_number_says_how_to_write_a_result_below_the_detection_limit(sent, limit, also):
    from ingest.validate import validate_document
    from tests.conftest import golden

    doc = golden("sampling.result")
    doc["payload"]["items"][1]["values"] = [sent]
    (error,) = validate_document(doc, None, b"").errors
    assert (error["field"], error["type"]) == ("payload.items[1].values[0]", "measured_value")
    assert f"got {sent!r}" in error["reason"] and f"收到 {sent!r}" in error["reason_zh"]
    assert f'"values": ["ND"], "detection_limit": {limit}' in error["reason"]
    assert f'低于检出限的结果请写 "ND"，并把方法检出限写在该项目的 detection_limit 中，如 "values": ["ND"], "detection_limit": {limit}' in error["reason_zh"]
    if also:
        assert also[0] in error["reason"] and also[1] in error["reason_zh"]


# --------------------------------------------------------------------------- `qrisk import`: warnings, and reasons in both languages


def _qrisk(*args: str, env: dict | None = None):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    return subprocess.run([sys.executable, "-m", "qrisk", *args], cwd=ROOT, capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {})})


def _warned_file(path, salt: str = ""):
    """A registration and three valid results: MG/L (a unit now), ppm (no unit qrisk reads), an enterprise nobody registered."""
    import json
    import uuid

    from tests.conftest import golden

    docs = [golden("enterprise.registered")]
    for i, (unit, enterprise) in enumerate([("MG/L", "E-330110-001"), ("ppm", "E-330110-001"), ("mg/L", "E-NEW-001")]):
        doc = golden("sampling.result")
        doc["event_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"qrisk-test-warned-{salt}-{i}"))
        doc["enterprise_id"], doc["payload"]["sample_no"] = enterprise, f"DC-WARN-{salt}-{i}"
        doc["payload"]["items"][1]["unit"] = unit
        docs.append(doc)
    path.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in docs) + "\n", encoding="utf-8")
    return path


WARNED = [("warned.jsonl:3", "payload.items[1].unit", "unknown_unit"), ("warned.jsonl:4", "enterprise_id", "enterprise_unregistered")]


def test_an_import_into_a_data_directory_reports_the_warnings_the_http_door_answers(tmp_path):
    import json

    path = _warned_file(tmp_path / "warned.jsonl")
    out = _qrisk("import", str(path), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 0, out.stderr  # warnings are no errors
    summary = json.loads(out.stdout)
    assert {k: summary[k] for k in ("accepted", "rejected", "warnings", "warnings_by_type")} == {
        "accepted": 4, "rejected": 0, "warnings": 2, "warnings_by_type": {"enterprise_unregistered": 1, "unknown_unit": 1}}
    assert [(w["position"], w["field"], w["type"]) for w in summary["warning_details"]] == WARNED
    assert all(w["reason_zh"] and w["reason"] and w["event_id"] for w in summary["warning_details"])
    # on stderr by file:line, the Chinese reason first
    assert "warned.jsonl:3: 警告 / warning unknown_unit: payload.items[1].unit: 无法识别单位“ppm”" in out.stderr
    assert "warned.jsonl:4: 警告 / warning enterprise_unregistered: enterprise_id: 企业 E-NEW-001 尚未登记" in out.stderr
    assert "2 条警告" in out.stderr and "2 warning(s)" in out.stderr
    # a second import answers duplicates, and the same warnings (the first run's output may be the one lost)
    again = json.loads(_qrisk("import", str(path), "--data-dir", str(tmp_path / "data"), "--warnings-out", str(tmp_path / "w.jsonl")).stdout)
    assert again["duplicates"] == 4 and again["warnings"] == 2 and again["warnings_out"] == str(tmp_path / "w.jsonl")
    assert "warning_details" not in again
    written = [json.loads(line) for line in (tmp_path / "w.jsonl").read_text(encoding="utf-8").splitlines()]
    assert written == summary["warning_details"]


def test_an_import_without_warnings_keeps_its_summary(tmp_path):
    import json

    from tests.conftest import golden

    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(golden("enterprise.registered"), ensure_ascii=False) + "\n", encoding="utf-8")
    out = _qrisk("import", str(path), "--data-dir", str(tmp_path / "data"))
    assert json.loads(out.stdout) == {"file": str(path), "accepted": 1, "duplicates": 0, "rejected": 0, "out_of_order": 0}
    assert "警告" not in out.stderr


def test_many_warnings_show_the_first_on_stderr_and_all_in_the_summary(tmp_path, monkeypatch, capsys):
    import json
    import uuid

    from qrisk import cli
    from tests.conftest import golden

    docs = []
    for i in range(cli.WARNINGS_SHOWN + 5):
        doc = golden("sampling.result")
        doc["event_id"], doc["enterprise_id"] = str(uuid.uuid4()), f"E-NEW-{i:03d}"
        doc["payload"]["sample_no"] = f"DC-MANY-{i:03d}"  # (one number under many enterprises is a warning of its own)
        docs.append(doc)
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in docs) + "\n", encoding="utf-8")
    assert cli.main(["import", str(path), "--data-dir", str(tmp_path / "data")]) == 0
    out = capsys.readouterr()
    summary = json.loads(out.out)
    assert summary["warnings"] == len(docs) == len(summary["warning_details"])
    assert sum(1 for line in out.err.splitlines() if ": 警告 / warning " in line) == cli.WARNINGS_SHOWN
    assert f"（仅显示前 {cli.WARNINGS_SHOWN} 条）" in out.err and "warning_details" in out.err


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from tests.conftest import Server

    server = Server(tmp_path_factory.mktemp("feedback") / "data").start()
    yield server
    server.stop()


def test_an_import_over_http_reports_the_warnings_as_a_direct_import_does(service, tmp_path):
    """The same file, the same warnings, whichever way it goes in (qrisk.api and qrisk.cli word them)."""
    import json

    path = _warned_file(tmp_path / "warned.jsonl", salt="http")
    over_http = _qrisk("import", str(path), "--url", service.url, env={"QRISK_API_KEY": service.key})
    assert over_http.returncode == 0, over_http.stderr
    sent = json.loads(over_http.stdout)
    assert [(w["position"], w["field"], w["type"]) for w in sent["warning_details"]] == WARNED
    assert "warned.jsonl:3: 警告 / warning unknown_unit: payload.items[1].unit: 无法识别单位“ppm”" in over_http.stderr
    direct = json.loads(_qrisk("import", str(path), "--data-dir", str(tmp_path / "data")).stdout)
    assert direct["warning_details"] == sent["warning_details"]


def test_unreadable_lines_say_why_in_chinese_first_and_keep_it_in_dead_letters(tmp_path):
    import csv
    import json

    from qrisk.runtime import default_rules, open_embedded
    from tests.conftest import golden

    jsonl = tmp_path / "bad.jsonl"
    gbk_line = json.dumps({"企业": "清源"}, ensure_ascii=False).encode("gbk")
    jsonl.write_bytes(b'{"event_type": "sampling.result", oops\n' + gbk_line + b"\n")
    # a line not UTF-8 refuses the file whole, before anything is loaded: line by line, its ASCII-only lines went in alone
    out = _qrisk("import", str(jsonl), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 2
    assert "bad.jsonl：文件不是 UTF-8 编码，共 1 行无法按 UTF-8 读取（第一处在第 2 行），整个文件未导入。该文件按 GBK/GB18030 可以读出" in out.stderr
    assert "iconv -f GB18030" in out.stderr
    jsonl.write_bytes(b'{"event_type": "sampling.result", oops\n')
    out = _qrisk("import", str(jsonl), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 1
    assert "bad.jsonl:1: 该行不是合法的 JSON：第 35 列：此处应为双引号括起的字段名（或多了逗号） / line is not valid JSON" in out.stderr
    d = golden("enterprise.registered")
    columns = ["event_id", "event_type", "schema_version", "enterprise_id", "occurred_at", "source_kind", "source_id", "source_name", "payload"]
    row = [d["event_id"], d["event_type"], "二", d["enterprise_id"], d["occurred_at"], d["source"]["kind"], d["source"]["id"], "", json.dumps(d["payload"], ensure_ascii=False)]
    table = tmp_path / "bad.csv"
    with open(table, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerow(row)
        writer.writerow(row[:2] + ["2"] + row[3:8] + ["{broken"])
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(table.read_bytes().decode("utf-8").replace("二", "2").encode("gbk"))
    out = _qrisk("import", str(table), "--data-dir", str(tmp_path / "data"))
    assert "bad.csv:2: schema_version 列应为整数（如 2），收到 '二' / column schema_version must be an integer" in out.stderr
    assert "bad.csv:3: payload 列不是合法的 JSON" in out.stderr
    out = _qrisk("import", str(gbk), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 2 and "gbk.csv：文件不是 UTF-8 编码" in out.stderr and "第一处在第 2 行" in out.stderr
    pipeline = open_embedded(tmp_path / "data", default_rules())
    try:
        letters = {r["position"]: json.loads(r["errors"]) for r in pipeline.store.query("SELECT position, errors FROM dead_letters FINAL")}
    finally:
        pipeline.close()
    assert [(e["field"], e["type"]) for e in letters["bad.csv:2"]] == [("schema_version", "int_type")]
    assert [(e["field"], e["type"]) for e in letters["bad.csv:3"]] == [("payload", "json_invalid")]
    assert "gbk.csv:2" not in letters and "bad.jsonl:2" not in letters  # (refused whole: nothing of them kept)
    assert all(e["reason_zh"] and e["reason_zh"] != e["reason"] for errors in letters.values() for e in errors)


def test_a_line_the_importer_cannot_read_reaches_the_service_with_its_reason_in_both_languages(service, tmp_path):
    import json

    path = tmp_path / "oops.jsonl"
    path.write_text('{"event_type": "sampling.result", oops\n', encoding="utf-8")
    out = _qrisk("import", str(path), "--url", service.url, env={"QRISK_API_KEY": service.key})
    assert out.returncode == 1 and "oops.jsonl:1: 该行不是合法的 JSON" in out.stderr and "dead letter" in out.stderr
    letters = service.get("/v1/dead-letters").json()
    (kept,) = [d for d in letters if "from oops.jsonl:1" in d["position"]]
    told = next(e for e in (kept["errors"] if isinstance(kept["errors"], list) else json.loads(kept["errors"])) if e["type"] == "client_reason")
    # each language in its own field
    assert told["reason_zh"].startswith("该行不是合法的 JSON") and "line is not valid JSON" not in told["reason_zh"]
    assert told["reason"].startswith("line is not valid JSON") and "该行" not in told["reason"]


def test_a_report_sent_again_under_a_new_id_is_told_as_the_http_door_tells_it(tmp_path):
    """A lab system that makes a new event_id per send attempt: the importer says the sample number is on
    file and how the fold took the report (a repeat), as POST /v1/events answers it."""
    import json
    import uuid

    from tests.conftest import golden

    report = golden("sampling.result")
    again = {**report, "event_id": str(uuid.uuid4())}
    path = tmp_path / "resent.jsonl"
    path.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in (golden("enterprise.registered"), report, again)) + "\n",
                    encoding="utf-8")
    out = _qrisk("import", str(path), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 0, out.stderr
    details = json.loads(out.stdout)["warning_details"]
    assert [(w["position"], w["field"], w["type"]) for w in details] == [("resent.jsonl:3", "payload.sample_no", "sample_no_on_file")]
    assert report["payload"]["sample_no"] in details[0]["reason_zh"]


def test_every_refused_line_of_an_import_over_http_is_found_by_its_file(service, tmp_path):
    """?position=FILE finds the lines the service refused (a bad field) as well as those the importer
    could not read: the batch carries each element's line (x-qrisk-lines)."""
    import json
    import re
    import uuid

    from qrisk.cli import _lines_header
    from tests.conftest import golden

    assert _lines_header(["a.jsonl:1", "a.jsonl:2", "a.jsonl:3", "a.jsonl:5", "a.jsonl:7", "a.jsonl:8"]) == "a.jsonl:1-3,5,7-8"
    assert _lines_header(["a.jsonl:1", "b.jsonl:2"]) == "" and _lines_header(["batch"]) == ""
    lines = []
    for i in range(6):
        doc = golden("complaint.received")
        doc["event_id"] = str(uuid.uuid4())
        doc["payload"]["complaint_id"] = f"TS-LINES-{i}"
        if i == 4:
            doc["payload"]["channel"] = "pigeon"  # line 5: refused by the service
        lines.append(json.dumps(doc, ensure_ascii=False))
    lines[6 - 1] = "{not json"  # line 6: refused by the importer
    path = tmp_path / "mixed-lines.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = _qrisk("import", str(path), "--url", service.url, env={"QRISK_API_KEY": service.key})
    assert out.returncode == 1, out.stderr
    # told in the file's order: line 5 (the service's refusal) before line 6 (the importer's)
    told = [int(m.group(1)) for m in re.finditer(r"mixed-lines\.jsonl:(\d+): .*dead letter", out.stderr)]
    assert told == [5, 6], out.stderr
    found = service.get("/v1/dead-letters", params={"position": "mixed-lines.jsonl"}).json()
    assert sorted(re.search(r"mixed-lines\.jsonl:(\d+)", d["position"]).group(1) for d in found) == ["5", "6"]
