"""The complainant's personal information in what the bureau itself writes and in what qrisk refused (a complaints
review: a refusal reason 投诉人王小明（13812345678）拒不提供购买凭证 and a withdrawal reason 与来信重复，来信人李大伟
13912345678 went out whole to the alert e-mail, the registers' XLSX and the printed credit report, and a refused
complaint's body — name, mobile, ID card — showed on the Grafana intake board, whose reader may not read event bodies).
The credit file keeps the reasons and the letters keep the bytes as received: the bureau works with them."""
from __future__ import annotations

import datetime as dt
import io
import json
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import golden

E = "E-330110-001"
REFUSED = "投诉人王小明（13812345678）拒不提供购买凭证"
WITHDRAWN = "与来信重复，来信人李大伟 13912345678"
NUMBERS = ("13812345678", "13912345678", "330106199001011234")


# --------------------------------------------------------------------------- the fold


def test_the_withdrawal_closing_an_alert_does_not_name_the_caller_in_the_note_or_the_notification():
    from processors.step import Rules
    from schemas.policy import Policy
    from schemas.standards import load_catalogue
    from tests.test_alerts import County, policy
    from tests.test_complaint_desk import REG, received
    from tests.test_risk import ev

    county = County(Rules(catalogue=load_catalogue(), policy=Policy()), policy())
    county.feed(REG, received("K1", "2026-03-01T10:00:00+08:00", category="illness", text="喝了以后腹泻。"))
    changes = county.feed(ev("complaint.withdrawn", "2026-03-02T10:00:00+08:00", complaint_id="K1", reason=WITHDRAWN))
    (closed,) = [c for c in changes if c.alert.rule == "complaint.illness" and c.alert.state == "closed"]
    assert closed.notifications, "the duty desk is told the alert closed"
    # (the close step's note is the alerts table's closing_note, which the Grafana reader reads)
    for said in [closed.step.note, closed.alert.steps[-1].note] + [n.text_zh for n in closed.notifications]:
        assert "13912345678" not in said and "李大伟" not in said
    assert "来信人李** 139****5678" in closed.step.note
    assert all("139****5678" in n.text_zh for n in closed.notifications)
    # the credit file keeps the reason as the bureau wrote it
    (record,) = county.state.files[E].complaints_withdrawn
    assert record.withdrawn.reason == WITHDRAWN


def test_the_withdrawn_and_refused_effects_and_texts_are_masked(rules):
    from processors.step import replay
    from tests.test_complaint_desk import REG, received
    from tests.test_risk import ev

    events = [REG, received("K1", "2026-03-01T10:00:00+08:00", category="illness", text="喝了以后腹泻。"),
              ev("complaint.withdrawn", "2026-03-02T10:00:00+08:00", complaint_id="K1", reason=WITHDRAWN),
              # a withdrawal that overtakes its complaint, and a refusal
              ev("complaint.withdrawn", "2026-03-02T11:00:00+08:00", complaint_id="K2", reason=WITHDRAWN),
              received("R1", "2026-03-03T10:00:00+08:00", category="taste_odour", text="水有异味。"),
              ev("complaint.accepted", "2026-03-05T10:00:00+08:00", complaint_id="R1", decision="refused", decided_on="2026-03-05",
                 reason=REFUSED)]
    state, effects = replay(events, rules)
    said = json.dumps([e.data for e in effects], ensure_ascii=False)
    for number in NUMBERS:
        assert number not in said
    kinds = {e.kind for e in effects}
    assert {"complaint.withdrawn", "complaint.withdrawal_pending", "complaint.accepted"} <= kinds
    (withdrawn,) = [e.data for e in effects if e.kind == "complaint.withdrawn"]
    assert withdrawn["reason"] == "与来信重复，来信人李** 139****5678" and "139****5678" in withdrawn["message_zh"]
    (refused,) = [e.data for e in effects if e.kind == "complaint.accepted"]
    assert "投诉人王**（138****5678）拒不提供购买凭证" in refused["message_zh"]
    record = state.files[E].complaint("R1")
    assert record.acceptance.reason == REFUSED  # kept as written
    assert "138****5678" in record.acceptance_zh() and "13812345678" not in record.acceptance_zh()
    assert "138****5678" in record.deadline_zh() and "13812345678" not in record.deadline_zh()


# --------------------------------------------------------------------------- the registers and the credit report


@pytest.fixture
def desk(rules, tmp_path):
    from qrisk.api import create_app
    from qrisk.auth import KeyStore
    from qrisk.pipeline import Pipeline
    from qrisk.store import ChdbStore, migrate

    store = ChdbStore(tmp_path / "chdb")
    migrate(store)
    pipeline = Pipeline(store, rules, snapshot_every=dt.timedelta(days=1))
    pipeline.recover()
    keys = KeyStore(tmp_path / "keys.json")
    _, token = keys.create("admin", "admin", actor="tests")
    try:
        with TestClient(create_app(pipeline, keys=keys)) as client:
            client.headers["authorization"] = f"Bearer {token}"
            client.pipeline, client.store = pipeline, store
            assert client.post("/v1/events", json=golden("enterprise.registered")).status_code == 200
            yield client
    finally:
        store.close()


def _doc(event_type: str, at: str, **payload) -> dict:
    doc = golden(event_type)
    doc["event_id"], doc["occurred_at"], doc["enterprise_id"] = str(uuid.uuid4()), at, E
    doc["payload"].update(payload)
    return doc


def _cells(content: bytes) -> list[str]:
    from openpyxl import load_workbook

    return [c.value for ws in load_workbook(io.BytesIO(content)) for row in ws.iter_rows() for c in row if isinstance(c.value, str)]


def test_registers_and_the_credit_report_mask_the_refusal_and_withdrawal_reasons(desk):
    r = desk.post("/v1/events", json=[
        _doc("complaint.received", "2026-03-03T10:00:00+08:00", complaint_id="R1", category="taste_odour", text="水有异味。"),
        _doc("complaint.accepted", "2026-03-05T10:00:00+08:00", complaint_id="R1", decision="refused", decided_on="2026-03-05", reason=REFUSED),
        _doc("complaint.received", "2026-03-03T11:00:00+08:00", complaint_id="X1", category="illness", text="喝了以后腹泻。"),
        _doc("complaint.withdrawn", "2026-03-06T10:00:00+08:00", complaint_id="X1", reason=WITHDRAWN)])
    assert r.status_code == 200, r.text
    desk.pipeline.wait_derived(60)
    rows = {row["complaint_id"]: row for row in desk.get("/v1/complaints").json()}
    assert rows["R1"]["state_zh"] == "不予受理（投诉人王**（138****5678）拒不提供购买凭证）"
    assert "138****5678" in rows["R1"]["acceptance_zh"] and "138****5678" in rows["R1"]["deadline_zh"]
    assert rows["X1"]["state_zh"] == "已撤回（与来信重复，来信人李** 139****5678）"
    answers = {"json": desk.get("/v1/complaints").text, "csv": desk.get("/v1/complaints", params={"format": "csv"}).text,
               "report": desk.get(f"/v1/enterprises/{E}", params={"view": "report"}).text}
    xlsx = {"xlsx": _cells(desk.get("/v1/complaints", params={"format": "xlsx"}).content),
            "report.xlsx": _cells(desk.get(f"/v1/enterprises/{E}", params={"view": "report", "format": "xlsx"}).content)}
    for name, text in [*answers.items(), *((k, "\n".join(v)) for k, v in xlsx.items())]:
        for number in NUMBERS:
            assert number not in text, (name, number)
        assert "138****5678" in text and "139****5678" in text, name
    assert "已撤回（与来信重复，来信人李** 139****5678）" in xlsx["xlsx"]


# --------------------------------------------------------------------------- dead letters on the intake board


def _refused_complaint() -> bytes:
    # a hotline adapter writing the payload first (any key order is valid JSON), with a category the contract lacks
    x = golden("complaint.received")
    x["event_id"] = str(uuid.uuid4())
    body = {"payload": {"text": "我叫王小明，电话13812345678，身份证330106199001011234，水有异物",
                        **{k: v for k, v in x["payload"].items() if k != "text"}, "category": "食品安全"},
            **{k: v for k, v in x.items() if k != "payload"}}
    return json.dumps(body, ensure_ascii=False).encode()


def test_the_intake_board_shows_a_refused_complaint_without_its_callers_numbers(desk):
    from qrisk.cli_dashboards import run_panels

    assert desk.post("/v1/events", content=_refused_complaint(), headers={"content-type": "application/json"}).status_code == 422
    # a body that is no JSON at all, and one escaping its Chinese (a name is a name in any spelling)
    desk.post("/v1/events", content="{我叫王小明，电话13812345678".encode(), headers={"content-type": "application/json"})
    escaped = json.loads(_refused_complaint())
    desk.post("/v1/events", content=json.dumps(escaped).encode(), headers={"content-type": "application/json"})
    desk.pipeline.wait_derived(60)
    now = dt.datetime.now(dt.timezone.utc)
    got = {r["panel"]: r for r in run_panels(desk.store, now - dt.timedelta(days=1), now + dt.timedelta(hours=1))
           if r["dashboard"] == "intake.json"}
    panel = got["未处理的拒收记录"]
    assert "error" not in panel, panel
    shown = [row["原始内容"] for row in panel["rows"]]
    assert len(shown) == 3
    for cell in shown:
        assert "13812345678" not in cell and "330106199001011234" not in cell and "王小明" not in cell and "\\u738b" not in cell
        assert "138****5678" in cell and len(cell) <= 300
    assert sum("330106********1234" in cell for cell in shown) == 2
    # nor do the reasons beside it quote the refused text
    assert not [row for row in panel["rows"] if "13812345678" in json.dumps(row, ensure_ascii=False, default=str)]
    assert "raw" not in panel["sql"].replace("raw_preview", "")
    # the API's reader (an admin key) still gets the bytes as received
    letters = desk.get("/v1/dead-letters").json()
    assert any("13812345678" in letter["raw"] for letter in letters)


def test_a_letter_before_the_preview_column_and_one_with_nothing_say_so(desk):
    from qrisk.cli_dashboards import run_panels
    from qrisk.pipeline import letter_preview

    desk.store.insert("dead_letters", [{
        "dead_letter_id": "old-1", "received_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0, tzinfo=None),
        "received_ms": 0, "channel": "http", "position": "request r index 0", "raw": '{"text": "电话13812345678"}',
        "raw_encoding": "utf-8", "reason": "r", "errors": "[]", "event_id": ""}])
    now = dt.datetime.now(dt.timezone.utc)
    (panel,) = [r for r in run_panels(desk.store, now - dt.timedelta(days=1), now + dt.timedelta(hours=1))
                if r["panel"] == "未处理的拒收记录"]
    (row,) = panel["rows"]
    assert row["原始内容"] == "（迁移 057 之前的记录，无预览：原始内容请经 API 查看）"
    assert letter_preview("") == "（无原始内容）"
    assert "13812345678" not in letter_preview("5Lit5paHMTM4MTIzNDU2Nzg=", "base64") and "非 UTF-8" in letter_preview("AAAA", "base64")
    # a number at the cut is masked before it is cut
    assert letter_preview("x" * 295 + "13812345678") == "x" * 295 + "138**"


def test_the_kafka_sinks_letter_rows_carry_the_masked_preview():
    from qrisk.kafka_log import dead_letter_value
    from qrisk.pipeline import DeadLetter
    from qrisk.sink import Sink

    sink = Sink(store=None, consumer=object())
    value = dead_letter_value(DeadLetter("kafka", "qrisk.ingress.hotline/0/7", _refused_complaint(), "payload.category: bad"),
                              dt.datetime.now(dt.timezone.utc))
    (row,) = sink._dead_letter_rows(sink.topics.dead_letters.name, 0, 7, value).tables["dead_letters"]
    assert "13812345678" in row["raw"]  # the table keeps the letter as received
    assert "138****5678" in row["raw_preview"] and "13812345678" not in row["raw_preview"]
    assert "330106********1234" in row["raw_preview"]


def test_the_grafana_reader_is_granted_the_preview_not_the_raw_bytes():
    root = Path(__file__).resolve().parent.parent
    xml = ET.parse(root / "deploy" / "clickhouse" / "users.d" / "grafana-reader.xml").getroot()
    (letters,) = [q.text for q in xml.findall("users/grafana/grants/query") if q.text.endswith("ON qrisk.dead_letters")]
    columns = {c.strip() for c in letters[letters.index("(") + 1:letters.index(")")].split(",")}
    assert "raw_preview" in columns and "raw" not in columns
    board = json.loads((root / "deploy" / "grafana" / "dashboards" / "intake.json").read_text(encoding="utf-8"))
    sql = [t["rawSql"] for p in board["panels"] if p["title"] == "未处理的拒收记录" for t in p["targets"]]
    assert sql and "raw_preview" in sql[0] and "substring(raw" not in sql[0]
