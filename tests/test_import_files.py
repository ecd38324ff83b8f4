"""`qrisk import`: JSONL and CSV files, bad lines dead-lettered with their position."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from qrisk.runtime import default_rules, open_embedded
from tests.conftest import ROOT, all_goldens


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qrisk", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_jsonl_import_keeps_bad_lines_in_dead_letters(tmp_path):
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(d, ensure_ascii=False) for d in all_goldens()]
    lines.insert(3, '{"event_type": "sampling.result", "broken": ')
    bad = dict(all_goldens()[3], event_id="0b9e2f1c-6a43-4c55-9a0e-000000000001")
    bad["payload"] = dict(bad["payload"], channel="fax")
    lines.append(json.dumps(bad, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = run("import", str(path), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 1  # something was rejected: say so in the exit code
    assert json.loads(out.stdout) == {"file": str(path), "accepted": 10, "duplicates": 0, "rejected": 2, "out_of_order": 5}
    assert "events.jsonl:4" in out.stderr and "payload.channel" in out.stderr
    again = run("import", str(path), "--data-dir", str(tmp_path / "data"))
    assert json.loads(again.stdout)["duplicates"] == 10
    pipeline = open_embedded(tmp_path / "data", default_rules())
    try:
        letters = pipeline.store.query("SELECT position, raw, reason FROM dead_letters FINAL ORDER BY position")
    finally:
        pipeline.store.close()
    # imported twice, each bad line is one letter: the second import rewrote the first's
    assert [l["position"] for l in letters] == ["events.jsonl:12", "events.jsonl:4"]
    assert any(l["raw"] == '{"event_type": "sampling.result", "broken": ' for l in letters)


def test_csv_import(tmp_path):
    path = tmp_path / "events.csv"
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["event_id", "event_type", "schema_version", "enterprise_id", "occurred_at", "source_kind", "source_id", "source_name", "payload"])
        for d in all_goldens():
            w.writerow([d["event_id"], d["event_type"], d["schema_version"], d["enterprise_id"], d["occurred_at"], d["source"]["kind"], d["source"]["id"], d["source"].get("name", ""), json.dumps(d["payload"], ensure_ascii=False)])
    out = run("import", str(path), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["accepted"] == 10
    report = run("credit-file", "E-330110-001", "--data-dir", str(tmp_path / "data"))
    assert report.returncode == 0, report.stderr
    assert "铜绿假单胞菌" in report.stdout and "不合格" in report.stdout


def test_an_unknown_csv_column_is_refused_not_dropped(tmp_path):
    path = tmp_path / "events.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["event_id", "event_type", "schema_version", "enterprise_id", "occurred_at", "source_kind", "source_id", "source_name", "payload", "remark"])
        d = all_goldens()[0]
        w.writerow([d["event_id"], d["event_type"], d["schema_version"], d["enterprise_id"], d["occurred_at"], d["source"]["kind"], d["source"]["id"], "", json.dumps(d["payload"], ensure_ascii=False), "x"])
    out = run("import", str(path), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 2 and "unknown column(s) 'remark'" in out.stderr and "Traceback" not in out.stderr


def test_unknown_file_type_is_a_clear_error(tmp_path):
    path = tmp_path / "events.xml"
    path.write_text("<x/>")
    out = run("import", str(path), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 2 and "unknown file type" in out.stderr


def test_json_documents_import_as_post_takes_them(tmp_path):
    """A .json file is one event (the golden examples), an array, or {"events": [...]}; JSON Lines
    under a .json name still read line by line.  A bad element is named by its index."""
    goldens = all_goldens()
    one = tmp_path / "registered.json"
    one.write_text(json.dumps(goldens[0], ensure_ascii=False, indent=2), encoding="utf-8")
    bad = dict(goldens[3], event_id="0b9e2f1c-6a43-4c55-9a0e-000000000002")
    bad["payload"] = dict(bad["payload"], channel="fax")
    array = tmp_path / "batch.json"
    array.write_text(json.dumps({"events": goldens[1:5] + [bad]}, ensure_ascii=False, indent=1), encoding="utf-8")
    lines = tmp_path / "rest.json"
    lines.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in goldens[5:]) + "\n", encoding="utf-8")
    data = str(tmp_path / "data")
    out = run("import", str(one), "--data-dir", data)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["accepted"] == 1
    out = run("import", str(array), "--data-dir", data)
    assert json.loads(out.stdout) == {"file": str(array), "accepted": 4, "duplicates": 0, "rejected": 1, "out_of_order": 3}
    assert "batch.json[4]" in out.stderr and "payload.channel" in out.stderr
    out = run("import", str(lines), "--data-dir", data)
    assert json.loads(out.stdout)["accepted"] == len(goldens) - 5


def test_importing_into_a_directory_a_running_service_holds_says_so(tmp_path):
    holder = open_embedded(tmp_path / "data", default_rules())
    try:
        path = tmp_path / "events.jsonl"
        path.write_text(json.dumps(all_goldens()[0], ensure_ascii=False) + "\n", encoding="utf-8")
        out = run("import", str(path), "--data-dir", str(tmp_path / "data"))
    finally:
        holder.store.close()
    assert out.returncode == 2
    assert "正被另一个进程（如 qrisk run）使用" in out.stderr and "--url" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_imported_event_id_reused_for_other_content_is_set_aside(tmp_path):
    goldens = all_goldens()
    first = tmp_path / "first.jsonl"
    first.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in goldens[:2]) + "\n", encoding="utf-8")
    data = str(tmp_path / "data")
    assert json.loads(run("import", str(first), "--data-dir", data).stdout)["accepted"] == 2
    changed = dict(goldens[1], occurred_at="2026-01-01T00:00:00+08:00")
    second = tmp_path / "second.jsonl"
    second.write_text(json.dumps(goldens[0], ensure_ascii=False) + "\n" + json.dumps(changed, ensure_ascii=False) + "\n", encoding="utf-8")
    out = run("import", str(second), "--data-dir", data)
    assert json.loads(out.stdout) == {"file": str(second), "accepted": 0, "duplicates": 1, "rejected": 1, "out_of_order": 0}
    assert "second.jsonl:2: event_id" in out.stderr and "seq 2" in out.stderr
    pipeline = open_embedded(tmp_path / "data", default_rules())
    try:
        (letter,) = pipeline.store.query("SELECT position, reason FROM dead_letters")
    finally:
        pipeline.store.close()
    assert letter["position"] == "second.jsonl:2" and letter["reason"].startswith("conflict: ")


def test_an_imported_event_from_the_future_is_set_aside_as_at_the_door(tmp_path):
    ahead = dict(all_goldens()[0], occurred_at="2062-01-01T00:00:00+08:00")
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(ahead, ensure_ascii=False) + "\n", encoding="utf-8")
    out = run("import", str(path), "--data-dir", str(tmp_path / "data"))
    assert json.loads(out.stdout)["rejected"] == 1
    # Chinese first, then English, after the field
    assert "events.jsonl:1: occurred_at: 发生时间 2061-12-31T16:00:00Z 晚于接收时间" in out.stderr
    assert " / occurred_at 2061-12-31T16:00:00Z is after" in out.stderr


@pytest.fixture
def csv_limit():
    """The csv module's own cell limit (131,072 characters): another test of the session may have raised it."""
    was = csv.field_size_limit(131_072)
    yield 131_072
    csv.field_size_limit(was)


def test_csv_records_the_csv_module_refuses_are_told_at_their_own_lines_and_the_rest_is_imported(tmp_path, csv_limit):
    from ingest.files import LineError, read_events

    path = tmp_path / "events.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["event_id", "event_type", "schema_version", "enterprise_id", "occurred_at", "source_kind", "source_id", "source_name", "payload"])
        for i, d in enumerate(all_goldens()):
            if i == 2:  # file lines 4 and 5: a payload past the csv module's 131,072 characters, twice in a row
                w.writerow(["a", "b", "2", "c", "d", "e", "f", "", "x" * 200_000])
                w.writerow(["g", "h", "2", "i", "j", "k", "l", "", "y" * 200_000])
            w.writerow([d["event_id"], d["event_type"], d["schema_version"], d["enterprise_id"], d["occurred_at"], d["source"]["kind"], d["source"]["id"], d["source"].get("name", ""), json.dumps(d["payload"], ensure_ascii=False)])
    refused = [(position, raw[:12]) for position, raw, doc in read_events(path) if isinstance(doc, LineError)]
    # once told at line 3 (already read) with no bytes, and the second taken for a reader that could not go on:
    # the 8 events after them were dropped without a word
    assert refused == [("events.csv:4", b"a,b,2,c,d,e,"), ("events.csv:5", b"g,h,2,i,j,k,")]
    out = run("import", str(path), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout) == {"file": str(path), "accepted": 10, "duplicates": 0, "rejected": 2, "out_of_order": 5}
    assert "events.csv:4: CSV 记录无法读取：单元格超过 131072 个字符的上限（仅保留其 200015 字节中的前 65536 字节" in out.stderr
    assert "events.csv:5: CSV 记录无法读取" in out.stderr
