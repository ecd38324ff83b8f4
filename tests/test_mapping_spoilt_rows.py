"""Mapped imports lose nothing and refuse precisely: an announcement's "/" and batch numbers are no refusal,
a row with cells past the header or with a cell in another encoding is one refusal at its line (not a silent
cut, not the end of the import), a file failing part way keeps what was read, and %Y%m%d reads 8 digits only."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from ingest.mapping import FieldSpec, MappingError, convert, field_value, load_mapping, read_mapped
from ingest.validate import Rejection, validate_document
from tests.conftest import ROOT

MAPPINGS = ROOT / "ingest" / "mappings"

SAMR_HEADER = ("序号,抽样编号,标称生产企业名称,标称生产企业地址,被抽样单位名称,食品名称,规格型号,商标,生产日期/批号,抽样日期,"
               "不合格项目,检验结果,判定依据,分类,公告号,公告日期,任务来源,检验机构,备注")
INSPECTIONS_HEADER = "检查编号,企业编号,检查日期,检查人员,检查类型,检查结论,发现问题"


def _samr_row(sample_no: str, produced_or_batch: str, sampled_on: str) -> str:
    return (f"2,{sample_no},清泉水厂,城关镇工业路8号,清泉水厂,饮用纯净水,18.9L/桶,清泉,{produced_or_batch},{sampled_on},"
            "耗氧量(以O₂计),2.6 mg/L,GB 19298-2014,饮料,〔2023〕21号,2023-09-25,县市场监督管理局,县食品检验检测中心,")


def _mapped(csv_file: Path, mapping: str) -> dict[str, object]:
    """position → the validated event, or the reason it was refused."""
    out: dict[str, object] = {}
    for position, raw, doc in read_mapped(csv_file, load_mapping(MAPPINGS / mapping)):
        if isinstance(doc, MappingError):
            out[position] = doc
            continue
        result = validate_document(doc, None, raw)
        out[position] = result.reason if isinstance(result, Rejection) else result
    return out


def cli(*argv: str) -> int:
    from qrisk.cli import main

    return main(list(argv))


def _letters(data: Path, columns: str = "position, reason, errors") -> list[dict]:
    from qrisk.runtime import default_rules, open_embedded

    pipeline = open_embedded(data, default_rules())
    try:
        return pipeline.store.query(f"SELECT {columns} FROM dead_letters FINAL ORDER BY position", {})
    finally:
        pipeline.close()


# --------------------------------------------------------------------------- 1. "/" and batch numbers in an announcement


def test_an_announcement_row_with_a_slash_or_a_batch_number_for_its_production_date_is_imported(tmp_path):
    path = tmp_path / "samr.csv"
    path.write_text("\n".join([SAMR_HEADER,
                               _samr_row("DC23330100010000", "/", "2023-08-28"),
                               _samr_row("DC23330100010001", "—", "2023-08-28"),
                               _samr_row("DC23330100020000", "批号：A2308", "2023-08-28"),
                               _samr_row("DC23330100030000", "2023-08-20", "/")]) + "\n", encoding="utf-8-sig")
    rows = _mapped(path, "samr_announcement.yaml")
    assert not [r for r in rows.values() if not hasattr(r, "payload")], rows  # one event each, none refused
    slash, dash, batch, dated = (rows[f"samr.csv:{n}"] for n in (2, 3, 4, 5))
    for event in (slash, dash):
        # "/" and "—" say "not given": no batch, no production date, the sampling date as given
        assert event.payload.batch is None and event.payload.production_date is None
        assert event.payload.sampled_on.isoformat() == "2023-08-28"
    assert batch.payload.batch == "批号：A2308" and batch.payload.production_date is None  # a batch number is no date
    assert batch.payload.sampled_on.isoformat() == "2023-08-28"
    # a "/" for the sampling date falls back to the production date, as an empty cell does, and the remarks say so
    assert dated.payload.production_date.isoformat() == "2023-08-20" and dated.payload.sampled_on.isoformat() == "2023-08-20"
    assert "抽样日期按生产日期记录" in dated.payload.remarks


def test_a_batch_number_with_no_sampling_date_is_still_refused_naming_the_sampling_date(tmp_path):
    path = tmp_path / "samr.csv"
    path.write_text("\n".join([SAMR_HEADER, _samr_row("DC23330100040000", "批号：A2308", "/")]) + "\n", encoding="utf-8-sig")
    [error] = _mapped(path, "samr_announcement.yaml").values()
    assert isinstance(error, MappingError) and error.field == "payload.sampled_on" and "批号：A2308" in error.zh


def test_blank_cells_are_the_mappings_unless_the_field_gives_its_own():
    mapping = load_mapping(MAPPINGS / "samr_announcement.yaml")
    assert field_value({"备注": " / "}, "payload.remarks", FieldSpec(column="备注", required=False), mapping) == (False, None)
    assert field_value({"备注": "／"}, "payload.remarks", FieldSpec(column="备注", required=False), mapping) == (False, None)  # full-width
    assert field_value({"备注": "/"}, "payload.remarks", FieldSpec(column="备注", blank=[]), mapping) == (True, "/")
    assert field_value({"备注": "暂无"}, "payload.remarks", FieldSpec(column="备注", blank=["暂无"], required=False), mapping) == (False, None)
    with pytest.raises(MappingError, match="为空"):  # a required field with only "/" is refused as empty
        field_value({"公告日期": "/"}, "occurred_at", FieldSpec(column="公告日期", type="datetime"), mapping)
    # without on_unreadable: absent, a cell that does not convert still refuses the row
    with pytest.raises(MappingError, match="A2308"):
        field_value({"x": "批号：A2308"}, "payload.production_date", FieldSpec(column="x", type="date", required=False), mapping)
    assert field_value({"x": "批号：A2308"}, "payload.production_date",
                       FieldSpec(column="x", type="date", required=False, on_unreadable="absent"), mapping) == (False, None)


# --------------------------------------------------------------------------- 2. cells past the header


def test_a_row_with_cells_past_the_header_is_refused_at_its_line_not_cut(tmp_path, capsys):
    path = tmp_path / "inspections.csv"
    path.write_text(INSPECTIONS_HEADER + "\n"
                    "JC2023-0051,P09,2023-10-08,陈志强,日常检查,不符合,3.4 原料库房未离地离墙存放（一般）,6.2 添加剂使用无称量记录（严重）\n",
                    encoding="utf-8")
    [(position, raw, error)] = list(read_mapped(path, load_mapping(MAPPINGS / "inspections.yaml")))
    assert position == "inspections.csv:2" and isinstance(error, MappingError)
    assert error.error()["type"] == "csv_invalid"
    assert error.zh == "该记录比表头的 7 列多 1 个单元格（某个单元格中的逗号没有加引号？）"
    assert "a comma in a cell that is not quoted?" in error.en
    assert "6.2 添加剂使用无称量记录（严重）".encode() in raw  # the dead letter keeps the cell it would have lost
    data = tmp_path / "data"
    assert cli("import", "inspections", str(path), "--mapping", str(MAPPINGS / "inspections.yaml"), "--data-dir", str(data)) == 1
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["accepted"], summary["rejected"]) == (0, 1)
    [letter] = _letters(data)
    assert letter["position"] == "inspections.csv:2" and json.loads(letter["errors"])[0]["type"] == "csv_invalid"


def test_a_spoilt_row_of_an_announcement_refuses_its_whole_sample(tmp_path):
    path = tmp_path / "samr.csv"
    second = _samr_row("DC23330100050000", "2023-08-20", "2023-08-28").replace("耗氧量(以O₂计),2.6 mg/L", "耗氧量(以O₂计),2,6 mg/L")
    path.write_text("\n".join([SAMR_HEADER, _samr_row("DC23330100050000", "2023-08-20", "2023-08-28"), second]) + "\n", encoding="utf-8-sig")
    [(position, error)] = _mapped(path, "samr_announcement.yaml").items()
    # without its spoilt row the sample would be imported lacking a failed item
    assert position == "samr.csv:2,3" and isinstance(error, MappingError) and error.type == "csv_invalid"
    assert error.zh.startswith("第 3 行：该记录比表头的 19 列多 1 个单元格")


# --------------------------------------------------------------------------- 3. a cell in another encoding


def _one_gbk_cell(path: Path, rows: int, bad: int) -> None:
    """A UTF-8 export of ``rows`` inspections, the one at data row ``bad`` (0-based) with its inspector typed in GBK."""
    lines = [INSPECTIONS_HEADER.encode()] + [f"JC2023-{i:04d},W03,2023-04-11,王建国,日常检查,符合,".encode() for i in range(rows)]
    lines[bad + 1] = f"JC2023-{bad:04d},W03,2023-04-11,".encode() + "李文静".encode("gbk") + ",日常检查,符合,".encode()
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")


def test_one_row_in_another_encoding_is_one_refusal_at_its_line_and_the_rest_is_imported(tmp_path, capsys):
    path = tmp_path / "inspections.csv"
    _one_gbk_cell(path, 30, 25)
    data = tmp_path / "data"
    # batches of 4: the bad row comes after several batches were written, and before the last is
    code = cli("import", "inspections", str(path), "--mapping", str(MAPPINGS / "inspections.yaml"), "--data-dir", str(data), "--batch", "4")
    captured = capsys.readouterr()
    assert code == 1
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert (summary["accepted"], summary["rejected"]) == (29, 1) and "stopped" not in summary
    assert "inspections.csv:27: 该记录（列 检查人员）不是 UTF-8 编码" in captured.err
    assert "iconv -f GB18030 -t UTF-8" in captured.err  # it reads as GB18030: the way out, as the plain CSV importer says it
    [letter] = _letters(data)
    assert letter["position"] == "inspections.csv:27"
    [error] = json.loads(letter["errors"])
    assert (error["type"], error["column"]) == ("body_encoding", "检查人员")


def test_a_header_in_another_encoding_refuses_the_file_and_gb18030_is_not_suggested_when_already_set(tmp_path, capsys):
    path = tmp_path / "inspections.csv"
    _one_gbk_cell(path, 3, 1)
    gb = tmp_path / "gb.yaml"
    gb.write_text((MAPPINGS / "inspections.yaml").read_text(encoding="utf-8") + "\nencoding: gb18030\n", encoding="utf-8")
    # a UTF-8 header under a gb18030 mapping: the file is refused, without sending the user back to gb18030
    with pytest.raises(MappingError) as refused:
        list(read_mapped(path, load_mapping(gb)))
    assert "表头不是 gb18030 编码" in refused.value.zh and "如 gb18030" not in refused.value.zh and "e.g. gb18030" not in refused.value.en
    # a GBK header under the UTF-8 mapping: the hint is gb18030
    path.write_bytes((INSPECTIONS_HEADER + "\r\nJC2023-0001,W03,2023-04-11,x,日常检查,符合,\r\n").encode("gbk"))
    with pytest.raises(MappingError, match="如 gb18030"):
        list(read_mapped(path, load_mapping(MAPPINGS / "inspections.yaml")))
    assert cli("import", "inspections", str(path), "--mapping", str(MAPPINGS / "inspections.yaml"), "--data-dir", str(tmp_path / "data")) == 2
    # a data row not gb18030 under a gb18030 mapping names the column, and no gb18030 hint either
    path.write_bytes(INSPECTIONS_HEADER.encode("gb18030") + b"\r\nJC2023-0001,W03,2023-04-11,\x80,x,y,\r\n")
    [(position, _, error)] = list(read_mapped(path, load_mapping(gb)))
    assert position == "inspections.csv:2" and error.column == "检查人员" and "不是 gb18030 编码" in error.zh and "如 gb18030" not in error.zh


def test_a_file_failing_part_way_keeps_what_was_read_and_says_so(tmp_path, capsys):
    from qrisk.cli import _load_records
    from qrisk.cli_risk import CliError

    docs = [doc for _, _, doc in read_mapped(ROOT / "ingest" / "mappings" / "examples" / "inspections.csv",
                                               load_mapping(MAPPINGS / "inspections.yaml")) if not isinstance(doc, MappingError)]
    assert len(docs) == 4

    def records():
        for i, doc in enumerate(docs):
            yield f"x.csv:{i + 2}", json.dumps(doc, ensure_ascii=False).encode(), doc
        yield "x.csv:9", b"bad", MappingError("a row", "一行")
        raise CliError("x.csv：读到一半无法再读 / x.csv: unreadable part way")

    data = tmp_path / "data"
    args = argparse.Namespace(data_dir=data, policy=None, batch=500, warnings_out=None)
    with pytest.raises(CliError, match="unreadable part way"):
        _load_records(records(), Path("x.csv"), None, args)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["accepted"], summary["rejected"]) == (4, 1) and "unreadable part way" in summary["stopped"]
    from qrisk.runtime import default_rules, open_embedded

    pipeline = open_embedded(data, default_rules())
    try:
        assert pipeline.store.query("SELECT count() AS n FROM event_log", {})[0]["n"] == 4  # the pending batch went in
        assert [r["position"] for r in pipeline.store.query("SELECT position FROM dead_letters FINAL", {})] == ["x.csv:9"]
    finally:
        pipeline.close()


# --------------------------------------------------------------------------- 4. %Y%m%d and Excel date numbers


@pytest.mark.parametrize("cell", ["2025111", "202511", "2025-1101"])
def test_a_short_run_of_digits_is_no_date(cell):
    mapping = load_mapping(MAPPINGS / "samr_announcement.yaml")
    with pytest.raises(MappingError, match="既不是 ISO 8601"):
        convert(cell, FieldSpec(column="抽样日期", type="date"), mapping, "payload.sampled_on")
    with pytest.raises(MappingError):
        convert(cell, FieldSpec(column="抽样日期", type="date", format="%Y%m%d"), mapping, "payload.sampled_on")


def test_eight_digits_are_a_date_and_an_excel_date_number_gets_a_hint():
    mapping = load_mapping(MAPPINGS / "samr_announcement.yaml")
    assert convert("20251101", FieldSpec(column="抽样日期", type="date"), mapping, "payload.sampled_on") == "2025-11-01"
    assert convert("20251101", FieldSpec(column="抽样日期", type="date", format="%Y%m%d"), mapping, "payload.sampled_on") == "2025-11-01"
    with pytest.raises(MappingError) as excel:
        convert("45717", FieldSpec(column="抽样日期", type="date"), mapping, "payload.sampled_on")
    assert "Excel 日期序号：请将该列设为日期或文本格式" in excel.value.zh and "an Excel date number" in excel.value.en
    with pytest.raises(MappingError) as other:
        convert("2023/13/01", FieldSpec(column="抽样日期", type="date"), mapping, "payload.sampled_on")
    assert "Excel" not in str(other.value)


# --------------------------------------------------------------------------- 5. records the csv module refuses


@pytest.fixture
def csv_limit():
    """The csv module's own cell limit (131,072 characters): another test of the session may have raised it."""
    import csv

    was = csv.field_size_limit(131_072)
    yield 131_072
    csv.field_size_limit(was)


def _inspections(path: Path, oversized: set[int], rows: int = 10) -> None:
    """An export of ``rows`` inspections (file lines 2 …), those at the file lines ``oversized`` with a 发现问题 of 200,000 characters."""
    lines = [INSPECTIONS_HEADER] + [f"JC2023-{n:04d},W03,2023-04-11,王建国,日常检查,符合,{'x' * 200_000 if n in oversized else ''}"
                                    for n in range(2, rows + 2)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_records_the_csv_module_refuses_are_told_at_their_own_lines_and_the_rest_is_imported(tmp_path, capsys, csv_limit):
    path = tmp_path / "inspections.csv"
    _inspections(path, {4, 5})
    read = [(position, type(doc).__name__) for position, _, doc in read_mapped(path, load_mapping(MAPPINGS / "inspections.yaml"))]
    # two in a row: once told at the record before them (line 3, already read) and taken for a reader that could
    # not move on, ending the import without a word: lines 6-11 were never read
    assert read == [(f"inspections.csv:{n}", "MappingError" if n in (4, 5) else "dict") for n in range(2, 12)]
    data = tmp_path / "data"
    assert cli("import", "inspections", str(path), "--mapping", str(MAPPINGS / "inspections.yaml"), "--data-dir", str(data)) == 1
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["accepted"], summary["rejected"]) == (8, 2) and "stopped" not in summary
    letters = _letters(data, "position, reason, errors, raw")
    assert [l["position"] for l in letters] == ["inspections.csv:4", "inspections.csv:5"]
    [error] = json.loads(letters[0]["errors"])
    assert error["type"] == "csv_invalid" and "field larger than field limit (131072)" in error["reason"]
    assert error["reason_zh"].startswith("CSV 记录无法读取：单元格超过 131072 个字符的上限")
    # the letter keeps the record's head (not nothing), at most 64 KiB of it, and says so
    assert "JC2023-0004,W03" in letters[0]["raw"] and len(letters[0]["raw"].encode()) <= 64 * 1024
    size = len(path.read_bytes().split(b"\n")[3])
    assert f"仅保留其 {size} 字节中的前 65536 字节" in error["reason_zh"] and f"the first 65536 of its {size} bytes" in error["reason"]


def test_an_unclosed_quote_is_one_refusal_over_the_lines_it_took_and_the_rest_is_imported(tmp_path, capsys, csv_limit):
    path = tmp_path / "inspections.csv"
    rows = [f"JC2023-{n:04d},W03,2023-04-11,王建国,日常检查,不符合,3.4 {'库房地面有积水' * 20}（一般）" for n in range(2, 3002)]
    rows[1] = rows[1].replace("不符合,", '不符合,"', 1)  # line 3: a quote opened, never closed
    path.write_text("\n".join([INSPECTIONS_HEADER] + rows) + "\n", encoding="utf-8")
    read = list(read_mapped(path, load_mapping(MAPPINGS / "inspections.yaml")))
    refused = [(position, doc) for position, _, doc in read if isinstance(doc, MappingError)]
    [(position, error)] = refused
    first, last = (int(n) for n in position.removeprefix("inspections.csv:").split("-"))
    # the quote took lines until its cell passed the csv module's limit: one refusal, named by all of them
    assert first == 3 and 500 < last < 3001
    assert "某个单元格中的引号（\"）没有闭合" in error.zh and f"lines 3-{last}" in error.en
    assert [p for p, _, doc in read if not isinstance(doc, MappingError)] == (
        ["inspections.csv:2"] + [f"inspections.csv:{n}" for n in range(last + 1, 3002)])
    data = tmp_path / "data"
    assert cli("import", "inspections", str(path), "--mapping", str(MAPPINGS / "inspections.yaml"), "--data-dir", str(data)) == 1
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["accepted"], summary["rejected"]) == (3001 - last + 1, 1)
    [letter] = _letters(data, "position, raw")
    assert letter["position"] == position and letter["raw"].startswith('JC2023-0003,W03,2023-04-11,王建国,日常检查,不符合,"3.4 库房地面有积水')


def test_a_refused_record_of_an_announcement_says_a_sample_may_lack_it(tmp_path, csv_limit):
    path = tmp_path / "samr.csv"
    big = _samr_row("DC23330100050000", "2023-08-20", "2023-08-28").replace("县食品检验检测中心,", "县食品检验检测中心," + "x" * 200_000)
    path.write_text("\n".join([SAMR_HEADER, _samr_row("DC23330100050000", "2023-08-20", "2023-08-28"), big,
                               _samr_row("DC23330100050001", "2023-08-20", "2023-08-28")]) + "\n", encoding="utf-8-sig")
    got = _mapped(path, "samr_announcement.yaml")
    assert set(got) == {"samr.csv:3", "samr.csv:2", "samr.csv:4"}
    error = got["samr.csv:3"]
    assert isinstance(error, MappingError) and error.type == "csv_invalid"
    assert "按 抽样编号 分组为样品：该记录所属的样品（如有）按其余行导入，缺少该记录中的检验项目" in error.zh
    assert not isinstance(got["samr.csv:2"], (str, MappingError)) and not isinstance(got["samr.csv:4"], (str, MappingError))


def test_a_reader_that_cannot_go_on_stops_the_import_and_says_so(tmp_path, monkeypatch, capsys):
    import csv

    path = tmp_path / "inspections.csv"
    _inspections(path, set(), rows=4)

    class Stuck(csv.DictReader):
        """A reader that, from the third record on, refuses without taking a line: it would refuse the same forever."""

        def __next__(self):
            if self.line_num >= 3:
                raise csv.Error("stuck")
            return super().__next__()

    monkeypatch.setattr(csv, "DictReader", Stuck)
    with pytest.raises(MappingError, match="unreadable as CSV after line 3"):
        list(read_mapped(path, load_mapping(MAPPINGS / "inspections.yaml")))
    data = tmp_path / "data"
    # not an end without a word: what was read goes in, the summary says it stopped, and the exit is an error's
    assert cli("import", "inspections", str(path), "--mapping", str(MAPPINGS / "inspections.yaml"), "--data-dir", str(data)) == 2
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["accepted"] == 2 and "第 3 行之后的内容无法按 CSV 读取" in summary["stopped"]
