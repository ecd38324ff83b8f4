"""`qrisk import` of files as people produce them: Excel's CSV on a Chinese Windows (GB18030), blank trailing and
unnamed columns, cells with line breaks, and a history exported in another order than it happened."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import uuid

import pytest

from tests.conftest import ROOT, golden

COLUMNS = ["event_id", "event_type", "schema_version", "enterprise_id", "occurred_at", "source_kind", "source_id", "source_name", "payload"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qrisk", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def registrations(n: int) -> list[dict]:
    out = []
    for i in range(n):
        d = golden("enterprise.registered")
        d["event_id"], d["enterprise_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"b35-{i}")), f"E-XLS-{i:04d}"
        d["payload"] = dict(d["payload"], name=f"清源饮用水厂{i}号")  # (not ASCII: a GBK row cannot pass as UTF-8)
        out.append(d)
    return out


def cells(d: dict, indent: int | None = None) -> list:
    return [d["event_id"], d["event_type"], d["schema_version"], d["enterprise_id"], d["occurred_at"], d["source"]["kind"],
            d["source"]["id"], d["source"].get("name", ""), json.dumps(d["payload"], ensure_ascii=False, indent=indent)]


def excel_csv(rows: list[list], header: list[str] = COLUMNS, trailing: int = 0, encoding: str = "utf-8-sig") -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header + [""] * trailing)
    for row in rows:
        w.writerow(row + [""] * trailing)
    return buf.getvalue().encode(encoding)


def event_count(data_dir) -> int:
    from qrisk.runtime import default_rules, open_embedded

    pipeline = open_embedded(data_dir, default_rules())
    try:
        return pipeline.store.query("SELECT count() AS n FROM event_log")[0]["n"]
    finally:
        pipeline.close()


def test_a_gb18030_csv_is_refused_whole_before_anything_is_loaded(tmp_path):
    path = tmp_path / "history.csv"
    # Excel's "CSV (逗号分隔)" on a Chinese Windows: row by row, only its ASCII-only rows were loaded, ahead of the rest
    path.write_bytes(excel_csv([cells(d) for d in registrations(5)], encoding="gb18030"))
    out = run("import", str(path), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 2, out.stderr
    assert "history.csv：文件不是 UTF-8 编码，共 5 行无法按 UTF-8 读取（第一处在第 2 行），整个文件未导入。该文件按 GBK/GB18030 可以读出" in out.stderr
    assert "iconv -f GB18030 -t UTF-8" in out.stderr and "nothing was imported" in out.stderr
    assert "Traceback" not in out.stderr and not out.stdout
    assert not (tmp_path / "data").exists() or event_count(tmp_path / "data") == 0


def test_a_file_not_utf8_nor_gb18030_is_refused_whole_without_the_gb18030_hint(tmp_path):
    from ingest.files import count_records

    path = tmp_path / "events.jsonl"
    path.write_bytes(json.dumps(registrations(1)[0]).encode() + b"\n" + b'{"x": "\x80\x80\xff"}\n')
    with pytest.raises(ValueError) as refused:
        count_records(path)
    assert "第一处在第 2 行" in str(refused.value) and "请以 UTF-8 编码保存文件" in str(refused.value)
    assert "GB18030" not in str(refused.value)


def test_blank_cells_excel_leaves_after_a_cleared_column_are_no_extra_cells(tmp_path):
    path = tmp_path / "trailing.csv"
    path.write_bytes(excel_csv([cells(d) for d in registrations(200)], trailing=2) + b",,,,,,,,,,\r\n")  # (and a row of commas only)
    out = run("import", str(path), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"file": str(path), "accepted": 200, "duplicates": 0, "rejected": 0, "out_of_order": 0}


def test_a_value_under_no_column_name_is_still_refused(tmp_path):
    rows = [cells(d) for d in registrations(3)]
    rows[0] = rows[0] + ["", "备注：已核对"]  # a whole record with a note in a column the header does not name
    rows[1] = rows[1][:7] + ["清源", "有限公司"] + rows[1][8:]  # an unquoted comma in source_name shifts the payload out
    rows[2] = rows[2][:7] + ["清源", "食品", "有限", "公司"] + rows[2][8:]  # … past the header's last column
    rows.append(cells(registrations(4)[3]))
    path = tmp_path / "extra.csv"
    path.write_bytes(excel_csv(rows, trailing=0, header=COLUMNS + ["", ""]))
    out = run("import", str(path), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 1, out.stderr
    summary = json.loads(out.stdout)
    assert (summary["accepted"], summary["rejected"]) == (1, 3)
    assert "extra.csv:2: 该记录在表头没有列名的列中有内容：第 11 列 '备注：已核对'；请清除这些内容" in out.stderr
    assert "extra.csv:2: 该记录在表头没有列名的列中有内容（某个单元格中的逗号" not in out.stderr  # (its cells are whole: no comma to guess at)
    assert "extra.csv:3: 该记录在表头没有列名的列中有内容（某个单元格中的逗号没有加引号？）：第 10 列 '{" in out.stderr
    assert "extra.csv:4: 该记录比表头的 11 列多 1 个单元格（某个单元格中的逗号没有加引号？）" in out.stderr


def test_a_record_with_line_breaks_is_named_by_its_first_and_last_lines_and_counted_once(tmp_path):
    from ingest.files import LineError, count_records, read_events

    docs = registrations(20)
    rows = [cells(d, indent=2) for d in docs]  # pretty JSON in a cell: Alt+Enter, a payload pasted from an editor
    rows[5][4] = "2025/3/12 15:20"
    path = tmp_path / "multiline.csv"
    path.write_bytes(excel_csv(rows))
    text = [line.rstrip("\r") for line in path.read_bytes().decode("utf-8-sig").split("\n")]
    first = next(i for i, line in enumerate(text, 1) if "2025/3/12 15:20" in line)
    last = first + json.dumps(docs[5]["payload"], ensure_ascii=False, indent=2).count("\n")
    assert text[last - 1] == '}"'
    assert count_records(path) == 20  # (physical lines would be hundreds: the progress bar stopped at a few per cent)
    positions = [p for p, _raw, _doc in read_events(path)]
    assert positions[5] == f"multiline.csv:{first}-{last}" and positions[0].startswith("multiline.csv:2-")
    assert not any(isinstance(doc, LineError) for _p, _raw, doc in read_events(path))
    out = run("import", str(path), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 1
    assert f"multiline.csv:{first}-{last}: occurred_at:" in out.stderr


def _history(tmp_path, name: str, newest_first: bool):
    """Registrations first (dated after the history they register: they go first all the same), then twelve
    inspections, one a month, in time order or newest first."""
    regs = registrations(2)
    for d in regs:
        d["occurred_at"] = "2026-01-05T09:00:00+08:00"
    inspections = []
    for m in range(1, 13):
        d = golden("inspection.completed")
        d["event_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"b35-insp-{m}"))
        d["enterprise_id"] = regs[m % 2]["enterprise_id"]
        d["occurred_at"] = f"2025-{m:02d}-10T10:30:00+08:00"
        d["payload"] = dict(d["payload"], inspection_id=f"JC2025-{m:02d}")
        inspections.append(d)
    if newest_first:
        inspections.reverse()
    path = tmp_path / name
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in regs + inspections), encoding="utf-8")
    return path


def test_a_history_out_of_time_order_is_counted_and_warned_of(tmp_path):
    path = _history(tmp_path, "newest_first.jsonl", newest_first=True)
    out = run("import", str(path), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["out_of_order"] == 11
    assert "qrisk: 警告：11 条记录的发生时间（occurred_at）早于文件中在它之前的记录，第一条为 newest_first.jsonl:4" in out.stderr
    assert "请将文件按 occurred_at 升序排序（企业登记 enterprise.registered 放在最前）" in out.stderr
    assert "gives other inspection due dates" in out.stderr


def test_a_history_in_time_order_with_registrations_first_is_not_warned_of(tmp_path):
    path = _history(tmp_path, "in_order.jsonl", newest_first=False)
    out = run("import", str(path), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["out_of_order"] == 0
    assert "occurred_at）早于" not in out.stderr and "out of time order" not in out.stderr
