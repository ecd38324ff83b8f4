"""The exports: XLSX is a sheet for people (Chinese, local time, percentages), CSV the machine format."""
from __future__ import annotations

import csv
import io
import re
import subprocess
import sys

import pytest
from openpyxl import load_workbook

from ingest.export import to_csv, to_xlsx
from qrisk.sheets import alert_sheet, enterprise_sheet, local_time, time_header
from tests.conftest import ROOT, Server

VIEW = {
    "alert_id": "AL-1", "enterprise_id": "W03", "enterprise_name": "清泉水厂", "town": "南湖街道", "category": "packaged_water",
    "rule": "sampling.unqualified", "title_zh": "抽检不合格", "severity": "critical", "severity_zh": "紧急", "state": "open",
    "state_zh": "待处置", "assignee": None, "opened_at": "2026-01-07T01:44:00Z", "respond_by": "2026-01-07T16:30:00Z",
    "escalated": True, "occurrences": 2, "message_zh": "清泉水厂：抽检不合格", "silenced": None,
}


def test_an_alert_row_reads_in_chinese_and_beijing_time():
    rows, columns, headers = alert_sheet([VIEW], 8)
    row = rows[0]
    assert (row["category"], row["rule"], row["severity"], row["state"], row["escalated"]) == ("包装饮用水", "抽检不合格", "紧急", "待处置", "是")
    # 16:30Z is past midnight in Beijing: the local date moves too
    assert (row["opened_at"], row["respond_by"]) == ("2026-01-07 09:44", "2026-01-08 00:30")
    assert headers["opened_at"] == "生成时间（北京时间）" and all(not h.isascii() for h in headers.values())
    assert not any(isinstance(v, str) and v in ("sampling.unqualified", "critical", "open", "true", "packaged_water") for v in row.values())
    # a county alert, kept under the enterprise whose sample tipped it, reads as the county's in the 企业编号 column too
    county = {**VIEW, "dedup_key": "county:packaged_water:fluctuation:p:2025Q4", "enterprise_name": "本县包装饮用水类（县级预警）"}
    assert alert_sheet([county], 8)[0][0]["enterprise_id"] == "县级（由 W03 的抽检触发）"


def test_a_retitled_rule_keeps_its_title_and_an_unknown_one_falls_back():
    rows, _, _ = alert_sheet([{**VIEW, "title_zh": ""}, {**VIEW, "title_zh": "本局标题"}], 8)
    assert [r["rule"] for r in rows] == ["抽检不合格", "本局标题"]


def test_local_time_takes_text_or_datetimes_and_other_offsets_say_so():
    import datetime as dt

    assert local_time(dt.datetime(2026, 1, 7, 1, 44, tzinfo=dt.timezone.utc), 8) == "2026-01-07 09:44"
    assert local_time("2026-01-07T09:44:00+08:00", 8) == "2026-01-07 09:44"
    assert local_time(None, 8) == ""
    assert time_header(8) == "（北京时间）" and time_header(6) == "（当地时间 UTC+6）"


def test_pass_rates_are_percent_numbers_and_categories_chinese():
    flat = [{"enterprise_id": "P03", "name": "好味道糕点", "category": "pastry", "town": "东溪镇", "pass_rate": 0.943, "samples": 10},
            {"enterprise_id": "X01", "name": "新厂", "category": "other", "town": "东溪镇", "pass_rate": None, "samples": 0}]
    columns = ["enterprise_id", "name", "category", "town", "pass_rate", "samples"]
    rows, headers, formats = enterprise_sheet(flat, columns)
    ws = load_workbook(io.BytesIO(to_xlsx(rows, columns, headers=headers, number_formats=formats))).active
    assert [c.value for c in ws[1]] == ["企业编号", "企业名称", "食品类别", "乡镇/街道", "抽检合格率", "抽检批次"]
    assert [c.value for c in ws[2]][2:5] == ["糕点", "东溪镇", 0.943] and ws["E2"].number_format == "0.0%"
    assert ws["C3"].value == "其他" and ws["E3"].value is None
    assert ws["F2"].number_format == "General", "only the named columns are formatted"


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    data = tmp_path_factory.mktemp("exports") / "data"
    subprocess.run([sys.executable, "-m", "qrisk", "demo", "--seed", "7", "--data-dir", str(data)], cwd=ROOT, check=True, capture_output=True)
    srv = Server(data)
    yield srv.start()
    srv.stop()


def _sheet(srv, path):
    resp = srv.get(path)
    assert resp.status_code == 200 and resp.content[:2] == b"PK"
    ws = load_workbook(io.BytesIO(resp.content)).active
    return [c.value for c in ws[1]], [list(r) for r in ws.iter_rows(min_row=2)]


def _csv(srv, path):
    resp = srv.get(path)
    assert resp.status_code == 200
    return list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))


def test_the_alerts_sheet_over_http_is_for_people_and_the_csv_for_machines(demo_server):
    header, rows = _sheet(demo_server, "/v1/alerts?format=xlsx")
    assert "生成时间（北京时间）" in header and "预警类型" in header and "rule" not in header
    col = {h: i for i, h in enumerate(header)}
    assert rows and {r[col["食品类别"]].value for r in rows} <= {"包装饮用水", "糕点", "其他"}
    # an escalation says whether it reached anyone (the demo's built-in policy routes to nobody)
    assert {r[col["已超时升级"]].value for r in rows} <= {"是", "否", "是（升级无人接收：未配置接收人）", "是（升级无人接收：未通知任何人）"}
    assert {r[col["处置状态"]].value for r in rows} <= {"待处置", "已确认", "整改中", "整改复查通过", "已关闭"}
    assert all("." not in r[col["预警类型"]].value for r in rows), "titles, not rule ids"
    machine = _csv(demo_server, "/v1/alerts?format=csv")
    assert machine[0]["rule"] in {"sampling.unqualified", "fluctuation.signal", "complaint.cluster", "data.missing",
                                  "rectification.overdue", "inspection.nonconforming", "risk.grade_worsened"}
    assert machine[0]["opened_at"].endswith("Z")
    # codes for machines next to the labels for people
    assert machine[0]["severity"] in {"critical", "high", "medium", "low"} and machine[0]["severity_zh"]
    assert machine[0]["state"] in {"open", "acknowledged", "rectifying", "verified", "closed"} and machine[0]["state_zh"]
    first = next(r for r in rows if r[col["预警编号"]].value == machine[0]["alert_id"])
    # (a date cell, not text: a sheet sorts and filters it by month)
    opened = first[col["生成时间（北京时间）"]]
    assert opened.is_date and opened.value.strftime("%Y-%m-%d %H:%M") == local_time(machine[0]["opened_at"], 8)


def test_the_enterprises_sheet_over_http_shows_percentages(demo_server):
    header, rows = _sheet(demo_server, "/v1/enterprises?format=xlsx")
    assert header[:9] == ["企业编号", "企业名称", "食品类别", "乡镇/街道", "风险等级", "风险分", "下次现场检查截止日", "抽检合格率", "注销日期"]
    assert "逾期整改（项）" in header
    assert {r[2].value for r in rows} == {"包装饮用水", "糕点"}
    rates = [r[7] for r in rows if r[7].value is not None]
    assert rates and all(c.number_format == "0.0%" and 0 <= c.value <= 1 for c in rates)
    assert {r[4].value for r in rows} <= {"A", "B", "C", "D"} and len({r[4].value for r in rows}) > 1
    machine = _csv(demo_server, "/v1/enterprises?format=csv")
    assert machine[0]["category"] in {"packaged_water", "pastry"}
    assert all(len(r["pass_rate"].partition(".")[2]) <= 4 for r in machine), "rounded for a spreadsheet, not 0.9594594594594594"
    assert {r["grade"] for r in machine} == {r[4].value for r in rows}


def test_the_campaign_sheet_over_http_shows_tiers_as_tiers_and_rates_as_percentages(demo_server):
    header, rows = _sheet(demo_server, "/v1/campaign?format=xlsx")
    col = {h: i for i, h in enumerate(header)}
    assert {r[col["当前档次"]].value for r in rows} <= {"A档", "B档", "C档", "D档", "未分档"}
    assert all(r[col["从业人员培训率"]].number_format == "0.0%" for r in rows if r[col["从业人员培训率"]].value is not None)
    assert not {c.value for r in rows for c in r} & {"acceptance", "self_improvement", "true", "false"}, "labels, not codes"
    machine = _csv(demo_server, "/v1/campaign?format=csv")
    assert {r["tier"] for r in machine} <= {"A", "B", "C", "D", ""}
    assert {r["stage"] for r in machine} <= {"mobilisation", "tiering", "training", "assistance", "self_improvement", "acceptance"}
    assert {r["comparison_test"] for r in machine} <= {"true", "false"}


@pytest.fixture(scope="module")
def p05_workbook(tmp_path_factory):
    where = tmp_path_factory.mktemp("credit")
    events, out = where / "events.jsonl", where / "p05.xlsx"
    subprocess.run([sys.executable, "-m", "qrisk", "demo", "--seed", "7", "--events-out", str(events)], cwd=ROOT, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "qrisk", "credit-file", "P05", "--events", str(events), "--format", "xlsx", "--out", str(out)],
                   cwd=ROOT, check=True, capture_output=True)
    return load_workbook(out)


def test_the_credit_files_score_is_a_number(p05_workbook):
    ws = p05_workbook["概要"]
    (score,) = [row[1] for row in ws.iter_rows() if row[0].value == "风险分"]
    assert score.data_type == "n"


def test_the_credit_files_warnings_sheet_shows_no_internal_merge_key(p05_workbook):
    # a supervisor's sheet: the merge key (W03:rectification.overdue:ZG-…) is the system's, not theirs
    ws = p05_workbook["预警"]
    header = [c.value for c in ws[2]]
    assert header == ["日期", "预警", "级别", "内容", "处置情况"]
    assert not any(":" in str(c.value) and str(c.value).startswith("P05:") for row in ws.iter_rows(min_row=3) for c in row)
    # how each warning's alert was handled: its state and alert id, in words
    handling = [row[4].value for row in ws.iter_rows(min_row=3) if row[0].value]
    assert handling and all(re.match(r"(待处置|已确认|整改中|整改复查通过|已关闭)（AL-", str(h)) for h in handling), handling


# --------------------------------------------------------------------------- every header read, every figure a number


def test_every_count_of_the_enterprise_list_has_a_chinese_header():
    from processors.credit_file import Counts

    flat = [{"enterprise_id": "P05", "name": "香满园糕点", "category": "pastry", "town": "北山镇", "grade": "D", "score": 66.0,
             "next_inspection_due": "2026-02-14", "pass_rate": 0.667, **Counts(enforcements=1).model_dump()}]
    columns = ["enterprise_id", "name", "category", "town", "grade", "score", "next_inspection_due", "pass_rate", *Counts.model_fields]
    rows, headers, formats = enterprise_sheet(flat, columns)
    assert all(not h.isascii() for h in headers.values()), [h for h in headers.values() if h.isascii()]
    assert (headers["enforcements"], headers["interviews"]) == ("行政处罚（件）", "约谈（次）")
    ws = load_workbook(io.BytesIO(to_xlsx(rows, columns, headers=headers, number_formats=formats))).active
    # figures are numbers a sheet can sum, not text
    figures = [c for name, c in zip(columns, ws[2]) if name not in ("enterprise_id", "name", "category", "town", "grade", "next_inspection_due")]
    assert len(figures) == 15 and all(c.data_type == "n" for c in figures)
    # even from a copy that carries them as text (a view read back from JSON, a CSV import)
    rows, _, _ = enterprise_sheet([{**flat[0], "score": "66", "samples": "12"}], columns)
    assert (rows[0]["score"], rows[0]["samples"]) == (66, 12)


def test_the_campaign_csv_has_codes_beside_labels_and_the_sheet_labels_only(rules):
    from processors.campaign import STAGES, TABLE_COLUMNS, county_progress, table_rows
    from processors.step import replay
    from qrisk.demo import CountyGenerator
    from qrisk.sheets import campaign_sheet

    state, _ = replay(CountyGenerator(seed=7).generate(), rules)
    progress = county_progress(state, rules.policy.campaign)
    machine = list(csv.DictReader(io.StringIO(to_csv(table_rows(progress), TABLE_COLUMNS).decode("utf-8-sig"))))
    for r in machine:
        # codes for machines next to the labels for people, as the alerts' CSV (state, state_zh)
        assert r["stage"] in STAGES and r["stage_zh"] and not r["stage_zh"].isascii()
        assert {r["training_and_exam"], r["self_inspection"], r["comparison_test"]} <= {"true", "false"}
        assert r["kpis_met"].isdigit() and r["kpis_known"].isdigit() and int(r["kpis_met"]) <= int(r["kpis_known"])
        assert r["category"] in ("packaged_water", "pastry") and r["tier"] in ("A", "B", "C", "D")
    rows, columns, headers, formats = campaign_sheet(progress)
    assert "stage" not in columns and all(not headers[c].isascii() for c in columns)
    ws = load_workbook(io.BytesIO(to_xlsx(rows, columns, headers=headers, number_formats=formats))).active
    col = {c.value: i for i, c in enumerate(ws[1])}
    body = list(ws.iter_rows(min_row=2))
    assert {r[col["所处阶段"]].value for r in body} <= {"宣传发动（承诺书）", "调查分档", "培训观摩", "帮扶指导", "自我提升（三个一）", "检查验收"}
    assert all(r[col["达标指标（项）"]].data_type == "n" and r[col["可评价指标（项）"]].data_type == "n" for r in body)
    assert {r[col["已完成全员培训考试"]].value for r in body} <= {"是", "否"}
