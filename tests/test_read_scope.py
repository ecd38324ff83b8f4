"""What a supervisor reads out of qrisk is complete and says its scope: an export is not silently cut at 200 rows
(and a list pages with ``?offset=``), a town's campaign workbook names the town rather than 全县, the complaint register
tells 不属实 from not concluded, a CLI cut after today is refused, and the campaign workbook is in the bureau's time."""
from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from processors.step import Rules
from qrisk.api import create_app
from qrisk.auth import KeyStore
from qrisk.pipeline import Pipeline
from qrisk.store import ChdbStore
from schemas.policy import Policy
from schemas.standards import load_catalogue
from tests.conftest import ROOT
from tests.services import clickhouse_url, drop_database, fresh_database_url  # noqa: F401 - a fixture
from tests.test_risk import ev, pa_sample, registered

W, N, S = "E-330110-101", "E-330110-102", "E-330110-103"  # 良渚街道, 北山镇, 城关镇
SAMPLES = 201
NOW = dt.datetime(2026, 3, 1, 4, 0, tzinfo=dt.timezone.utc)


def trained(eid: str, at: str, staff: int, done: int):
    return ev("campaign.training", at, eid, as_of=at[:10], staff_total=staff, staff_trained=done, exam_takers=done,
              exam_first_pass=done, key_posts=2, key_posts_certified=2)


def county_events():
    day = dt.date(2025, 1, 1)
    return [
        registered("2025-01-01T09:00:00+08:00", W, licence_no="SC10433011000101"),
        registered("2025-01-01T09:00:00+08:00", N, name="北山饮用水厂", town="北山镇", licence_no="SC10433011000102"),
        registered("2025-01-01T09:00:00+08:00", S, name="城关饮用水厂", town="城关镇", licence_no="SC10433011000103"),
        # a year and more of samples of W, one a day: more than an export's old 200 rows
        *[pa_sample(f"{day + dt.timedelta(days=i)}T15:00:00+08:00", values=(0, 0, 0, 0, 0), sample_no=f"S-{i:03d}", enterprise_id=W)
          for i in range(SAMPLES)],
        # 北山镇 trains 9 of 10, 城关镇 10 of 10: the county's rate is 19/20, 北山镇's 9/10
        trained(N, "2026-02-01T10:00:00+08:00", 10, 9), trained(S, "2026-02-01T10:00:00+08:00", 10, 10),
        # complaints: one concluded 不属实, one still being checked, one refused, one withdrawn
        ev("complaint.received", "2026-02-02T09:00:00+08:00", W, complaint_id="C-FALSE", verified=False, category="other", text="价格问题"),
        ev("complaint.resolved", "2026-02-10T09:00:00+08:00", W, complaint_id="C-FALSE", verified=False, outcome="经核查不属实"),
        ev("complaint.received", "2026-02-03T09:00:00+08:00", W, complaint_id="C-OPEN", verified=False, category="other", text="送水慢"),
        ev("complaint.received", "2026-02-04T09:00:00+08:00", W, complaint_id="C-REFUSED", verified=False, category="other", text="价格"),
        ev("complaint.accepted", "2026-02-05T09:00:00+08:00", W, complaint_id="C-REFUSED", decision="refused", decided_on="2026-02-05",
           reason="不属于本部门职责范围"),
        ev("complaint.received", "2026-02-04T10:00:00+08:00", W, complaint_id="C-WRONG", verified=False, category="other", text="登记错企业"),
        ev("complaint.withdrawn", "2026-02-05T10:00:00+08:00", W, complaint_id="C-WRONG", reason="被投诉企业填报错误"),
        # (属实 when received, then withdrawn: filed under the wrong enterprise, it is neither)
        ev("complaint.received", "2026-02-03T11:00:00+08:00", W, complaint_id="C-WRONG-TRUE", verified=True, category="other", text="登记错企业"),
        ev("complaint.withdrawn", "2026-02-05T11:00:00+08:00", W, complaint_id="C-WRONG-TRUE", reason="被投诉企业填报错误"),
    ]


def _client(tmp_path, rules, events, towns=None, store=None):
    store = store or ChdbStore(tmp_path / "data")
    pipeline = Pipeline(store, rules, clock=lambda: NOW, snapshot_every=dt.timedelta(days=1))
    pipeline.recover()
    keys = KeyStore(tmp_path / "keys.json")
    _, admin = keys.create("admin", "ops", actor="tests")
    client = TestClient(create_app(pipeline, keys=keys))
    client.headers["authorization"] = f"Bearer {admin}"
    answer = client.post("/v1/events", json=[e.model_dump(mode="json") for e in events])
    assert answer.status_code == 200, answer.text
    client.town_key = keys.create("supervisor", "beishan", towns=towns, actor="tests")[1] if towns else None
    return client, pipeline


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    rules = Rules(catalogue=load_catalogue(), policy=Policy())
    client, pipeline = _client(tmp_path_factory.mktemp("read"), rules, county_events(), towns=["北山镇"])
    with client:
        yield client
    pipeline.close()


def _csv(answer) -> list[dict]:
    return list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))


# ---------------------------------------------------------------- 1. exports whole, lists paged


def test_an_export_holds_every_row_not_the_newest_200(county):
    answer = county.get("/v1/samples", params={"format": "csv"})
    assert answer.status_code == 200, answer.text
    assert len(_csv(answer)) == SAMPLES and answer.headers["x-qrisk-total"] == str(SAMPLES)
    assert "x-qrisk-truncated" not in answer.headers
    sheet = load_workbook(io.BytesIO(county.get("/v1/samples", params={"format": "xlsx"}).content)).active
    assert sheet.max_row == 1 + SAMPLES
    # JSON keeps its page of 200, and says it is one
    listed = county.get("/v1/samples")
    assert len(listed.json()) == 200 and listed.headers["x-qrisk-truncated"] == "true"


def test_an_export_still_cut_says_so_in_the_file_and_its_header(county):
    answer = county.get("/v1/samples", params={"format": "xlsx", "limit": 200})
    assert answer.headers["x-qrisk-truncated"] == "true" and answer.headers["x-qrisk-total"] == str(SAMPLES)
    sheet = load_workbook(io.BytesIO(answer.content)).active
    cells = [c for row in sheet.iter_rows(values_only=True) for c in row if c is not None]
    assert cells[-1] == f"共 {SAMPLES} 条，本表列出最新 200 条；请缩小时间范围分段导出"
    assert county.get("/v1/samples", params={"format": "csv", "limit": 200}).headers["x-qrisk-truncated"] == "true"


def test_a_list_pages_with_offset_in_the_same_order(county):
    whole = [r["sample_no"] for r in county.get("/v1/samples", params={"limit": 5000}).json()]
    assert len(whole) == SAMPLES
    page = county.get("/v1/samples", params={"limit": 100, "offset": 100})
    assert page.status_code == 200, page.text
    assert [r["sample_no"] for r in page.json()] == whole[100:200]
    assert page.headers["x-qrisk-truncated"] == "true" and page.headers["x-qrisk-next-offset"] == "200"
    last = county.get("/v1/samples", params={"limit": 100, "offset": 200})  # (the last page: a client paging stops here)
    assert len(last.json()) == SAMPLES - 200 and "x-qrisk-truncated" not in last.headers and "x-qrisk-next-offset" not in last.headers
    assert "x-qrisk-truncated" not in county.get("/v1/samples", params={"limit": 100, "offset": 900}).headers
    table = _csv(county.get("/v1/samples", params={"limit": 100, "offset": 100, "format": "csv"}))
    assert [r["sample_no"] for r in table] == whole[100:200]
    sheet = load_workbook(io.BytesIO(county.get("/v1/samples", params={"limit": 100, "offset": 200, "format": "xlsx"}).content)).active
    assert [c for row in sheet.iter_rows(values_only=True) for c in row if c is not None][-1] == (
        f"共 {SAMPLES} 条，本表列出按时间由新到旧的第 201–201 条；请缩小时间范围分段导出")
    for path in ("/v1/complaints", "/v1/inspections", "/v1/alerts"):
        every = county.get(path).json()
        paged = county.get(path, params={"limit": 1, "offset": 1})
        assert paged.status_code == 200, (path, paged.text)
        assert paged.json() == every[1:2], path
    refused = county.get("/v1/samples", params={"offset": -1})
    assert refused.status_code == 422 and "query.offset" in refused.text


# ---------------------------------------------------------------- 2. a town's workbook says whose totals


def test_a_town_keys_campaign_workbook_names_its_town_not_the_county(county):
    def summary(key=None):
        headers = {"authorization": f"Bearer {key}"} if key else {}
        book = load_workbook(io.BytesIO(county.get("/v1/campaign", params={"format": "xlsx"}, headers=headers).content))
        return [tuple(r) for r in book["汇总"].iter_rows(min_row=2, values_only=True)], book["汇总"]

    lines, sheet = summary(county.town_key)
    assert lines[0] == ("统计范围", "北山镇", "仅含该密钥可查看的乡镇")
    cells = {label: value for label, value, _ in lines}
    assert cells["企业数（家）"] == 1 and cells["北山镇从业人员培训率"] == pytest.approx(0.9)
    assert not any(str(label).startswith("全县") for label in cells)
    rate_row = next(i for i, (label, _, _) in enumerate(lines, start=2) if label == "北山镇从业人员培训率")
    assert sheet.cell(row=rate_row, column=2).number_format.endswith("%")  # a rate, shown as one
    assert county.get("/v1/campaign", headers={"authorization": f"Bearer {county.town_key}"}).json()["summary"]["towns"] == ["北山镇"]
    lines, _ = summary()
    cells = {label: value for label, value, _ in lines}
    assert "统计范围" not in cells and cells["全县从业人员培训率"] == pytest.approx(0.95)
    assert "towns" not in county.get("/v1/campaign").json()["summary"]


# ---------------------------------------------------------------- 3. 不属实 is a conclusion


def test_the_complaint_register_tells_not_substantiated_from_not_concluded(county):
    listed = {r["complaint_id"]: (r["verified"], r["verified_zh"]) for r in county.get("/v1/complaints").json()}
    assert listed == {"C-FALSE": (False, "不属实"), "C-OPEN": (None, "核查中"), "C-REFUSED": (None, "—（不予受理）"),
                      "C-WRONG": (None, "—（已撤回）"), "C-WRONG-TRUE": (None, "—（已撤回）")}
    assert [r["complaint_id"] for r in county.get("/v1/complaints", params={"verified": "false"}).json()] == ["C-FALSE"]
    assert county.get("/v1/complaints", params={"verified": "true"}).json() == []
    assert county.get("/v1/complaints", params={"verified": "false", "state": "open"}).json() == []
    table = {r["complaint_id"]: (r["verified"], r["verified_zh"]) for r in _csv(county.get("/v1/complaints", params={"format": "csv"}))}
    assert table["C-OPEN"] == ("", "核查中") and table["C-FALSE"] == ("false", "不属实")
    report = county.get(f"/v1/enterprises/{W}", params={"view": "report"}).json()
    said = {c["complaint_id"]: c["verified_zh"] for c in report["complaints"]}
    assert said["C-REFUSED"] == "—（不予受理）" and said["C-OPEN"] == "核查中" and said["C-FALSE"].startswith("不属实")


# ---------------------------------------------------------------- 5. the bureau's own time


def test_the_campaign_workbook_is_in_the_policys_time(tmp_path, clickhouse_url):
    # (on the ClickHouse server: chdb holds one data directory a process, the module's county's)
    from qrisk.store import ClickHouseStore

    rules = Rules(catalogue=load_catalogue(), policy=Policy(utc_offset_hours=6))
    events = [registered("2026-01-05T09:00:00+08:00", N, name="北山饮用水厂", town="北山镇", licence_no="SC10433011000102"),
              trained(N, "2026-02-08T17:20:00+08:00", 10, 9)]  # 09:20Z: 15:20 at UTC+6, 17:20 in Beijing
    name, url = fresh_database_url(clickhouse_url, "utc6")
    try:
        client, pipeline = _client(tmp_path, rules, events, store=ClickHouseStore(url))
        with client:
            book = load_workbook(io.BytesIO(client.get("/v1/campaign", params={"format": "xlsx"}).content))
        pipeline.close()
    finally:
        drop_database(clickhouse_url, name)
    cells = {label: value for label, value, _ in book["汇总"].iter_rows(min_row=2, values_only=True)}
    assert cells["数据截至（当地时间 UTC+6）"] == dt.datetime(2026, 2, 8, 15, 20)
    header = [c.value for c in book["提档升级进度"][1]]
    assert any(str(h).endswith("（当地时间 UTC+6）") for h in header), header


# ---------------------------------------------------------------- 4. the CLIs' --as-of, and 5. in the CLI


def test_the_clis_refuse_a_cut_after_today(tmp_path):
    events = tmp_path / "county.jsonl"
    events.write_text("".join(e.model_dump_json(exclude_none=True) + "\n" for e in county_events()[:3]), encoding="utf-8")
    today = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=8)).date()
    later = today + dt.timedelta(days=30)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "qrisk", *args], cwd=ROOT, capture_output=True, text=True)

    for command in (["risk"], ["campaign"], ["credit-file", W]):
        done = cli(*command, "--events", str(events), "--as-of", later.isoformat())
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert f"--as-of {later.isoformat()} 晚于今天（{today.isoformat()}） / is after today" in done.stderr
    done = cli("risk", "--events", str(events), "--as-of", today.isoformat())
    assert done.returncode == 0, done.stderr
    # qrisk campaign --xlsx writes the bureau's time, as the API's workbook does
    policy = tmp_path / "policy6.yaml"
    policy.write_text("utc_offset_hours: 6\n", encoding="utf-8")
    sheet = tmp_path / "campaign.xlsx"
    # (today in that policy's own zone: from 16:00 UTC on, UTC+8's today is after UTC+6's, and the cut would be refused)
    today6 = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=6)).date()
    done = cli("campaign", "--events", str(events), "--policy", str(policy), "--xlsx", str(sheet), "--as-of", today6.isoformat())
    assert done.returncode == 0, done.stderr
    labels = [r[0] for r in load_workbook(sheet)["汇总"].iter_rows(min_row=2, values_only=True)]
    assert "最近记录（当地时间 UTC+6）" in labels, labels


# ---------------------------------------------------------------- 6. dates a sheet can sort and count with


def test_peoples_sheets_hold_dates_and_times_as_date_cells(county):
    def first(path, column, **params):
        sheet = load_workbook(io.BytesIO(county.get(path, params={"format": "xlsx", **params}).content)).active
        header = [c.value for c in sheet[1]]
        return sheet.cell(2, header.index(column) + 1)

    day = first("/v1/samples", "抽样日期")
    assert day.is_date and day.value == dt.datetime(2025, 7, 20) and day.number_format == "yyyy-mm-dd"
    received = first("/v1/complaints", "收到时间（北京时间）")
    assert received.is_date and received.value == dt.datetime(2026, 2, 4, 10, 0) and received.number_format == "yyyy-mm-dd hh:mm"
    due = first("/v1/enterprises", "下次现场检查截止日")
    assert due.is_date, due.value
    # the CSV stays the machine's format: ISO text, instants in UTC
    assert _csv(county.get("/v1/samples", params={"format": "csv", "limit": 1}))[0]["sampled_on"] == "2025-07-20"


def test_a_town_named_wrong_is_refused_with_the_towns_listed(county):
    for path in ("/v1/samples", "/v1/complaints", "/v1/inspections", "/v1/alerts"):
        answer = county.get(path, params={"town": "北山", "format": "csv"})
        assert answer.status_code == 422, (path, answer.text)
        (error,) = answer.json()["errors"]
        assert error["field"] == "query.town" and "可选：北山镇、城关镇、良渚街道" in error["reason_zh"], error
        assert county.get(path, params={"town": "北山镇"}).status_code == 200
    # a town's key is told its own towns only; another town of the county is still just none of its rows
    mine = {"authorization": f"Bearer {county.town_key}"}
    answer = county.get("/v1/complaints", params={"town": "北山"}, headers=mine)
    assert answer.status_code == 422 and "可选：北山镇（" in answer.json()["errors"][0]["reason_zh"]
    answer = county.get("/v1/complaints", params={"town": "良渚街道"}, headers=mine)
    assert answer.status_code == 200 and answer.json() == []
