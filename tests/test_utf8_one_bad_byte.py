"""A UTF-8 file with one stray byte is not a GBK export.  Excel's "CSV UTF-8" of 200 registrations, one row of which came
from an older system with 'Storage 4°C' in Latin-1: the importer advised `iconv -f GB18030`, which 'succeeds' (the
byte and the letter after it read as one GBK character) and turns every other row's Chinese name into mojibake that
then imports cleanly.  It must name the line and show the bytes to fix instead."""
from __future__ import annotations

import pytest

from ingest.files import count_records
from tests.test_import_excel_files import cells, excel_csv, registrations, run


def _export_with_a_stray_byte(tmp_path):
    rows = [cells(d) for d in registrations(200)]
    rows[149][7] = "county msb"
    rows[149][8] = '{"licence_no": "SC10633011000012", "name": "Qingyuan 149 (Storage 4@@C)", "address": "Gongye Rd 18"}'
    path = tmp_path / "history.csv"
    path.write_bytes(excel_csv(rows).replace(b"@@", b"\xb0"))  # (UTF-8 with a BOM, as Excel writes it)
    return path


def test_a_utf8_file_with_one_stray_byte_names_the_line_and_its_bytes_not_gb18030(tmp_path):
    path = _export_with_a_stray_byte(tmp_path)
    assert path.read_bytes().splitlines()[150].decode("gb18030")  # (its bad line 'reads' as GB18030: the old advice's trap)
    out = run("import", str(path), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 2 and out.stdout == ""
    assert "GB18030" not in out.stderr and "iconv" not in out.stderr
    # the header is line 1: data row 150 is line 151
    assert "history.csv：文件是 UTF-8 编码，但第 151 行含有不是 UTF-8 的字节（第 151 行：" in out.stderr
    assert "Storage 4\\xb0C" in out.stderr and "整个文件未导入" in out.stderr and "不要转换整个文件的编码" in out.stderr
    assert "line(s) 151 hold bytes that are not UTF-8" in out.stderr and "nothing was imported" in out.stderr
    assert not (tmp_path / "data").exists()


def test_several_stray_lines_are_listed_and_a_real_gbk_export_keeps_its_advice(tmp_path):
    path = tmp_path / "events.jsonl"
    lines = [b'{"name": "\xe6\xb8\x85\xe6\xba\x90"}'] + [b'{"note": "%d \xb0C"}' % i for i in range(12)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(ValueError) as refused:
        count_records(path)
    said = str(refused.value)
    assert "第 2、3、4、5、6、7、8、9、10、11 等 12 行含有不是 UTF-8 的字节（第 2 行：{\"note\": \"0 \\xb0C\"}）" in said
    assert "GB18030" not in said
    # no line beyond ASCII reads as UTF-8: the file reads as GB18030 as a whole, and the advice stands
    path.write_bytes("清源".encode("gb18030") + b"\n" + b"ascii\n")
    with pytest.raises(ValueError) as refused:
        count_records(path)
    assert "iconv -f GB18030 -t UTF-8" in str(refused.value)
