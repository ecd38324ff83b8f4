"""The county's registers over real HTTP: ``GET /v1/complaints`` and ``GET /v1/inspections`` list
every enterprise's complaints and inspections, filtered (state, verified, result, town, a quarter),
a town key its towns only, with the exports a supervisor prints."""
from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from qrisk.auth import KeyStore
from tests.conftest import Server
from tests.test_retest_scope import PROPIONIC, SORBIC, _item
from tests.test_risk import ev, pa_sample, registered

A, B, C = "E-330110-001", "E-330110-002", "E-330110-003"  # 良渚街道 (the golden enterprise's town), 清湖镇, 良渚街道
MEMBERS = [_item(SORBIC[0], [0.6], "g/kg", "合格", SORBIC[1]), _item(PROPIONIC[0], [1.2], "g/kg", "合格", PROPIONIC[1])]
SUM_NAME = "防腐剂混合使用时各自用量占其最大使用量的比例之和"


def pastry(at: str, items: list[dict]):
    """C's cake: each preservative 合格 on the report, their sum of ratios 1.08 (qrisk's failure alone, until corrected)."""
    return ev("sampling.result", at, C, items=items, product="蛋糕", sample_no="DC-Q2-1", sampled_on="2025-05-06",
              production_date="2025-05-01")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("registers") / "data").start()
    store = KeyStore(server.data_dir / "keys.json")
    _, server.liangzhu = store.create("supervisor", "liangzhu", towns=["良渚街道"])
    _, server.lab = store.create("lab", "lab-1", source_id="lab-1")
    events = [
        registered("2025-01-05T09:00:00+08:00", A),
        registered("2025-01-05T09:00:00+08:00", B, name="清湖桶装水厂", town="清湖镇", licence_no="SC10433011000002"),
        registered("2025-01-05T09:00:00+08:00", C, name="良渚糕点坊", category="pastry", licence_no="SC12433011000003"),
        # samples: A passes in the second quarter, B fails in the third; C's report reads 合格 where qrisk fails
        # the sum, and the lab's correction (the sum printed, 不合格) replaces it
        pa_sample("2025-05-12T15:00:00+08:00", values=(0, 0, 0, 0, 0), sample_no="S-A-1", enterprise_id=A),
        pa_sample("2025-08-12T15:00:00+08:00", values=(0, 3, 0, 0, 0), sample_no="S-B-1", enterprise_id=B),
        pastry("2025-05-10T16:00:00+08:00", MEMBERS),
        # A: resolved (not substantiated) in 7 days; an illness complaint, verified, still open
        ev("complaint.received", "2025-04-02T10:00:00+08:00", A, complaint_id="12315-A1", verified=False, category="taste_odour",
           channel="12315", text="水有异味，联系人张三 13812345678"),
        ev("complaint.resolved", "2025-04-09T16:00:00+08:00", A, complaint_id="12315-A1", verified=False,
           outcome="抽检合格，不属实；已电话回复投诉人张三（13812345678）"),
        ev("complaint.received", "2025-08-20T09:30:00+08:00", A, complaint_id="12315-A2", verified=True, category="illness",
           channel="hotline", text="饮用后腹泻"),
        # B: one open complaint from the first quarter
        ev("complaint.received", "2025-03-31T23:30:00+08:00", B, complaint_id="12315-B1", verified=False, category="foreign_matter",
           channel="online", text="桶内有异物"),
        ev("inspection.completed", "2025-05-10T10:00:00+08:00", A, inspection_id="JC-A1", result="符合", findings=[]),
        ev("inspection.completed", "2025-07-01T10:00:00+08:00", B, inspection_id="JC-B1", result="不符合", inspector="李某",
           findings=[{"code": "4.2.1", "description": "原料未离地存放", "severity": "minor"},
                     {"code": "6.1", "description": "出厂检验记录缺失", "severity": "major"}]),
    ]
    answer = server.post("/v1/events", json=[e.model_dump(mode="json") for e in events])
    assert answer.status_code == 200, answer.text
    assert [r["sample_no"] for r in rows(server, "/v1/samples", unconfirmed="true")] == ["DC-Q2-1"]  # before its correction
    corrected = pastry("2025-05-14T10:00:00+08:00", [*MEMBERS, _item("preservative_ratio_sum", [1.08], "无量纲", "不合格", SUM_NAME)])
    answer = server.post("/v1/events", json=[corrected.model_dump(mode="json")])
    assert answer.status_code == 200, answer.text
    yield server
    server.stop()


def rows(srv, path: str, key: str | None = None, **params) -> list[dict]:
    answer = srv.get(path, params=params, headers={"authorization": f"Bearer {key}"} if key else {})
    assert answer.status_code == 200, answer.text
    assert int(answer.headers["x-qrisk-total"]) >= len(answer.json())
    return answer.json()


def test_every_complaint_of_the_county_newest_first_with_its_state_and_days(srv):
    listed = rows(srv, "/v1/complaints")
    assert [r["complaint_id"] for r in listed] == ["12315-A2", "12315-A1", "12315-B1"]
    a1, b1 = listed[1], listed[2]
    assert (a1["state"], a1["state_zh"], a1["verified_zh"], a1["days"]) == ("resolved", "已办结", "不属实", 7)
    assert a1["outcome"] == "抽检合格，不属实；已电话回复投诉人张*（138****5678）"  # the bureau's account names the complainant too
    assert a1["resolved_at"] == "2025-04-09T08:00:00.000Z" and a1["received_at"] == "2025-04-02T02:00:00.000Z"
    assert (b1["state"], b1["state_zh"], b1["verified_zh"], b1["town"], b1["enterprise_name"]) == ("open", "办理中", "核查中", "清湖镇", "清湖桶装水厂")
    assert b1["days"] > 365  # open since March 2025, counted until now
    assert listed[0]["category_zh"] == "食用后不适" and listed[0]["channel_zh"] == "热线" and listed[0]["verified_zh"] == "属实"
    # the complainant masked, as alerts show it (a register gathers the county's complainants in one sheet); the file keeps the text
    assert listed[1]["text"] == "水有异味，联系人张* 138****5678"
    file = srv.get(f"/v1/enterprises/{A}").json()
    assert [c["text"] for c in file["complaints"] if c["complaint_id"] == "12315-A1"] == ["水有异味，联系人张三 13812345678"]


def test_complaint_filters_combine(srv):
    def ids(**params):
        return [r["complaint_id"] for r in rows(srv, "/v1/complaints", **params)]

    assert ids(state="open") == ["12315-A2", "12315-B1"]
    assert ids(state="open", verified="true") == ["12315-A2"]
    assert ids(category="illness") == ["12315-A2"] and ids(channel="online") == ["12315-B1"]
    assert ids(town="清湖镇") == ["12315-B1"] and ids(enterprise_id=A) == ["12315-A2", "12315-A1"]
    # a quarter in the bureau's days: 23:30 on 31 March (15:30Z) is the first quarter's, not the second's
    assert ids(since="2025-01-01", until="2025-03-31") == ["12315-B1"]
    assert ids(since="2025-04-01", until="2025-06-30") == ["12315-A1"]
    assert ids(since="2025-04-02T10:00:00+08:00", until="2025-04-02T10:00:01+08:00") == ["12315-A1"]
    assert ids(limit=1) == ["12315-A2"]
    answer = srv.get("/v1/complaints", params={"limit": 1})
    assert answer.headers["x-qrisk-total"] == "3"


def test_a_bad_window_or_value_names_the_field(srv):
    for params, field in (({"since": "last week"}, "query.since"), ({"until": "2025-13-01"}, "query.until"),
                          ({"since": "2025-07-01", "until": "2025-06-30"}, "query.until"), ({"state": "closed"}, "query.state"),
                          ({"sort": "name"}, "query.sort")):
        answer = srv.get("/v1/complaints", params=params)
        assert answer.status_code == 422, (params, answer.text)
        assert [e["field"] for e in answer.json()["errors"]] == [field], answer.text
    answer = srv.get("/v1/inspections", params={"result": "合格"})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "query.result"


def test_inspections_with_their_findings(srv):
    listed = rows(srv, "/v1/inspections")
    assert [r["inspection_id"] for r in listed] == ["JC-B1", "JC-A1"]
    b1 = listed[0]
    assert (b1["result"], b1["findings"], b1["findings_major"], b1["inspector"], b1["kind_zh"]) == ("不符合", 2, 1, "李某", "专项检查")
    assert b1["findings_zh"] == "4.2.1 原料未离地存放（一般）；6.1 出厂检验记录缺失（主要）"
    assert [r["inspection_id"] for r in rows(srv, "/v1/inspections", result="不符合")] == ["JC-B1"]
    assert [r["inspection_id"] for r in rows(srv, "/v1/inspections", since="2025-04-01", until="2025-06-30")] == ["JC-A1"]
    assert [r["inspection_id"] for r in rows(srv, "/v1/inspections", inspector="李某")] == ["JC-B1"]
    assert [r["inspection_id"] for r in rows(srv, "/v1/inspections", kind="special", town="良渚街道")] == ["JC-A1"]


def test_a_town_key_sees_its_towns_and_a_lab_key_none(srv):
    assert {r["town"] for r in rows(srv, "/v1/complaints", srv.liangzhu)} == {"良渚街道"}
    assert [r["inspection_id"] for r in rows(srv, "/v1/inspections", srv.liangzhu)] == ["JC-A1"]
    assert rows(srv, "/v1/complaints", srv.liangzhu, town="清湖镇") == []
    for path in ("/v1/complaints", "/v1/inspections"):
        assert srv.get(path, headers={"authorization": f"Bearer {srv.lab}"}).status_code == 403


def test_the_exports_carry_the_same_rows(srv):
    from openpyxl import load_workbook

    table = srv.get("/v1/complaints", params={"state": "open", "format": "csv"})
    assert table.status_code == 200 and table.headers["x-qrisk-total"] == "2"
    got = list(csv.DictReader(io.StringIO(table.content.decode("utf-8-sig"))))
    assert [r["complaint_id"] for r in got] == ["12315-A2", "12315-B1"]
    assert got[1]["received_at"] == "2025-03-31T15:30:00.000Z" and got[1]["state_zh"] == "办理中" and got[1]["channel"] == "online"
    sheet = srv.get("/v1/complaints", params={"format": "xlsx"})
    ws = load_workbook(io.BytesIO(sheet.content)).active
    header = [c.value for c in ws[1]]
    assert header[:5] == ["投诉编号", "企业编号", "企业名称", "乡镇/街道", "收到时间（北京时间）"]
    first = dict(zip(header, [c.value for c in ws[2]]))
    assert first["收到时间（北京时间）"] == dt.datetime(2025, 8, 20, 9, 30) and first["渠道"] == "热线" and first["办理状态"] == "办理中"
    sheet = srv.get("/v1/inspections", params={"format": "xlsx"})
    ws = load_workbook(io.BytesIO(sheet.content)).active
    header = [c.value for c in ws[1]]
    first = dict(zip(header, [c.value for c in ws[2]]))
    assert first["检查编号"] == "JC-B1" and first["检查结果"] == "不符合" and first["其中主要、严重（项）"] == 1


def test_every_sampling_report_with_what_it_counts_as(srv):
    listed = rows(srv, "/v1/samples")
    assert [(r["sample_no"], r["enterprise_id"]) for r in listed] == [("S-B-1", B), ("S-A-1", A), ("DC-Q2-1", C), ("DC-Q2-1", C)]
    b1, a1, corrected, first = listed
    assert (b1["verdict"], b1["counted"], b1["verdict_zh"], b1["final"], b1["town"]) == ("fail", "fail", "不合格", True, "清湖镇")
    assert "铜绿假单胞菌" in b1["failed_zh"] and b1["detail_zh"]
    assert (a1["counted"], a1["verdict_zh"], a1["failed_zh"]) == ("pass", "合格", "")
    # the first report: qrisk's failure alone (counted 合格), replaced by the correction, which counts as the lab's 不合格
    assert (first["verdict"], first["counted"], first["unconfirmed"], first["final"]) == ("fail", "pass", True, False)
    assert first["superseded_by"] == corrected["event_id"] and first["verdict_zh"].startswith("系统复核不合格")
    assert (corrected["counted"], corrected["unconfirmed"], corrected["final"]) == ("fail", False, True)


def test_sample_filters_give_a_quarters_figures(srv):
    def ids(**params):
        return [(r["sample_no"], r["final"]) for r in rows(srv, "/v1/samples", **params)]

    # the second quarter's reports as the figures count them: two samples, one failure (C's, as corrected)
    assert ids(final="true", since="2025-04-01", until="2025-06-30") == [("S-A-1", True), ("DC-Q2-1", True)]
    assert ids(final="true", verdict="fail", since="2025-04-01", until="2025-06-30") == [("DC-Q2-1", True)]
    assert ids(since="2025-07-01", until="2025-09-30") == [("S-B-1", True)]
    assert ids(unconfirmed="true") == [("DC-Q2-1", False)]
    assert ids(final="false") == [("DC-Q2-1", False)]
    assert ids(town="良渚街道", verdict="pass") == [("S-A-1", True), ("DC-Q2-1", False)]
    assert ids(product="蛋糕", final="true") == [("DC-Q2-1", True)]
    # the sampling date is the bureau's day: S-A-1 was sampled on 12 May, whatever the hour its report came
    assert ids(since="2025-05-12", until="2025-05-12") == [("S-A-1", True)]
    answer = srv.get("/v1/samples", params={"verdict": "不合格"})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "query.verdict"
    # a town's key: its towns only
    assert {r["enterprise_id"] for r in rows(srv, "/v1/samples", srv.liangzhu)} == {A, C}


def test_the_sample_register_exports(srv):
    from openpyxl import load_workbook

    table = srv.get("/v1/samples", params={"final": "true", "format": "csv"})
    assert table.status_code == 200 and table.headers["x-qrisk-total"] == "3"
    got = list(csv.DictReader(io.StringIO(table.content.decode("utf-8-sig"))))
    assert [r["sample_no"] for r in got] == ["S-B-1", "S-A-1", "DC-Q2-1"] and got[0]["counted"] == "fail"
    ws = load_workbook(io.BytesIO(srv.get("/v1/samples", params={"format": "xlsx"}).content)).active
    header = [c.value for c in ws[1]]
    assert header[:5] == ["抽样编号", "企业编号", "企业名称", "乡镇/街道", "抽样日期"]
    last = dict(zip(header, [c.value for c in ws[ws.max_row]]))
    assert (last["抽样编号"], last["计入结论"], last["计入统计"]) == ("DC-Q2-1", "合格", "否") and last["判定"].startswith("系统复核不合格")


def test_reading_a_credit_file_or_the_complaint_register_is_audited(srv):
    import time

    assert srv.get(f"/v1/enterprises/{B}", params={"view": "report", "format": "text"},
                   headers={"authorization": f"Bearer {srv.liangzhu}"}).status_code == 404  # another town's: not read, not recorded
    assert srv.get(f"/v1/enterprises/{A}", params={"view": "report"}, headers={"authorization": f"Bearer {srv.liangzhu}"}).status_code == 200
    assert srv.get("/v1/complaints", params={"state": "open", "format": "csv"}).status_code == 200

    def trail(action: str) -> list[dict]:
        answer = srv.get("/v1/audit", params={"action": action})
        assert answer.status_code == 200, answer.text
        return answer.json()

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (trail("credit_file.read") and trail("complaints.listed")):
        time.sleep(0.1)
    reads = [r for r in trail("credit_file.read") if r["key_name"] == "liangzhu"]
    assert [(r["detail"]["enterprise_id"], r["detail"]["view"], r["role"]) for r in reads] == [(A, "report", "supervisor")]
    listed = trail("complaints.listed")[0]
    assert listed["detail"] == {"rows": 2, "format": "csv", "filters": {"state": "open"}}


def test_an_escalation_nobody_heard_is_said_so_in_the_alert_exports(srv):
    """The built-in policy routes to nobody: an escalated alert's sheet said 已超时升级 是, as if the county was told."""
    from openpyxl import load_workbook

    alerts = rows(srv, "/v1/alerts")
    escalated = [a for a in alerts if a["escalated"]]
    assert escalated and all(a["escalation_reached"] is False and a["escalated_zh"] == "是（升级无人接收：未配置接收人）" for a in escalated)
    assert all(a["escalation_reached"] is None and a["escalated_zh"] == "否" for a in alerts if not a["escalated"])
    table = srv.get("/v1/alerts", params={"format": "csv"})
    got = {r["alert_id"]: r for r in csv.DictReader(io.StringIO(table.content.decode("utf-8-sig")))}
    assert {got[a["alert_id"]]["escalation_reached"] for a in escalated} == {"false"}
    ws = load_workbook(io.BytesIO(srv.get("/v1/alerts", params={"format": "xlsx"}).content)).active
    header = [c.value for c in ws[1]]
    column = header.index("已超时升级")
    said = {r[0].value: r[column].value for r in ws.iter_rows(min_row=2)}
    assert {said[a["alert_id"]] for a in escalated} == {"是（升级无人接收：未配置接收人）"}


def test_alerts_of_a_quarter_and_a_town_with_their_handling_times(srv):
    """A quarterly report counts alerts opened in the quarter, per town, and how fast they were taken up."""
    everything = rows(srv, "/v1/alerts")
    q3 = [a for a in everything if "2025-06-30T16:00:00.000Z" <= a["opened_at"] < "2025-09-30T16:00:00.000Z"]
    assert q3 and len(q3) < len(everything)
    assert {a["alert_id"] for a in rows(srv, "/v1/alerts", since="2025-07-01", until="2025-09-30")} == {a["alert_id"] for a in q3}
    assert {a["alert_id"] for a in rows(srv, "/v1/alerts", town="清湖镇")} == {a["alert_id"] for a in everything if a["town"] == "清湖镇"}
    answer = srv.get("/v1/alerts", params={"since": "2025-07-01", "until": "2025-06-30"})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "query.until"
    table = srv.get("/v1/alerts", params={"format": "csv"})
    got = next(csv.DictReader(io.StringIO(table.content.decode("utf-8-sig"))))
    assert {"acknowledged_at", "closed_at", "refs"} <= set(got)
    failed = next(r for r in csv.DictReader(io.StringIO(table.content.decode("utf-8-sig"))) if r["rule"] == "sampling.unqualified")
    assert failed["refs"]  # the failing sample's number
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(srv.get("/v1/alerts", params={"format": "xlsx"}).content)).active
    header = [c.value for c in ws[1]]
    assert {"确认时间（北京时间）", "办结时间（北京时间）", "涉及编号（抽样、检查、投诉、整改）"} <= set(header)


def test_the_complaint_register_says_kind_and_time_limits_and_filters_overdue_ones(srv):
    """投诉举报办理时限: B1 (03-31, open) passed its 7 + 45 working days by B's sample of 08-12; A1 was concluded in 4."""
    listed = {r["complaint_id"]: r for r in rows(srv, "/v1/complaints")}
    assert (listed["12315-B1"]["kind_zh"], listed["12315-B1"]["overdue"]) == ("投诉", True)
    assert listed["12315-B1"]["deadline_zh"].startswith("超期未办结") and listed["12315-B1"]["due_on"]
    assert listed["12315-A1"]["overdue"] is False and listed["12315-A1"]["deadline_zh"].startswith("按期办结")
    assert [r["complaint_id"] for r in rows(srv, "/v1/complaints", overdue="true")] == ["12315-B1"]
    assert "12315-B1" not in [r["complaint_id"] for r in rows(srv, "/v1/complaints", overdue="false")]
    assert rows(srv, "/v1/complaints", kind="report") == []
    answer = srv.get("/v1/complaints", params={"format": "csv", "overdue": "true"})
    assert answer.status_code == 200 and "超期未办结" in answer.text
    assert srv.get("/v1/complaints", params={"kind": "咨询"}).status_code == 422
