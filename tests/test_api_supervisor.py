"""What a county supervisor does with a running `qrisk run`, over real HTTP: print an enterprise's
诚信档案 (text, XLSX) while the service holds the data directory, narrow the alert list to a rule,
an assignee or a recent period, take the steps that need a reason, and read a town's report
where the county handles an alert."""
from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
import urllib.parse

import pytest

from qrisk.auth import KeyStore
from tests.conftest import ROOT, Server

E = "E-330110-001"  # the golden enterprise, 良渚街道


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from tests.test_fluctuation import other_producer_failure, water_sample
    from tests.test_risk import registered

    server = Server(tmp_path_factory.mktemp("supervisor") / "data").start()
    store = KeyStore(server.data_dir / "keys.json")
    server.role_keys = {}
    for name, towns in (("county", None), ("liangzhu", ["良渚街道"]), ("elsewhere", ["清湖镇"])):
        _, server.role_keys[name] = store.create("supervisor", name, **({"towns": towns} if towns else {}))
    # a failing sample (the enterprise's own alerts) that also tips the county's chart of its category
    # (a county alert, with no town): tests/test_credit_report.py's county case, over HTTP
    # (another producer of the county failed too: the county's chart speaks when two producers fail)
    events = [*other_producer_failure(), registered("2025-01-05T09:00:00+08:00"), water_sample(dt.date(2025, 1, 10), 0.8, pa=(0, 3, 0, 0, 0)),
              water_sample(dt.date(2025, 2, 10), 0.8, pa=(0, 0, 9, 0, 0))]
    server.events = events
    answer = server.post("/v1/events", json=[e.model_dump(mode="json") for e in events])
    assert answer.status_code == 200, answer.text
    yield server
    server.stop()


def alerts(srv, key: str | None = None, **params) -> list[dict]:
    answer = srv.get("/v1/alerts", params=params, headers=bearer(key) if key else {})
    assert answer.status_code == 200, answer.text
    return answer.json()


# --------------------------------------------------------------------------- 1. the printable report


def test_the_report_prints_as_text_the_same_as_the_command(srv, tmp_path):
    from qrisk.credit_report import render_text

    answer = srv.get(f"/v1/enterprises/{E}", params={"view": "report", "format": "text"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.text.startswith(f"诚信档案：清源桶装水厂（{E}）")
    assert answer.text == render_text(srv.get(f"/v1/enterprises/{E}", params={"view": "report"}).json())
    # the command, on the same events (it cannot open the directory the service holds), prints the same
    events = tmp_path / "events.jsonl"
    events.write_text("".join(e.model_dump_json() + "\n" for e in srv.events), encoding="utf-8")
    printed = subprocess.run([sys.executable, "-m", "qrisk", "credit-file", E, "--events", str(events), "--format", "text"],
                             capture_output=True, text=True, cwd=ROOT, encoding="utf-8")
    assert printed.returncode == 0, printed.stderr
    assert answer.text == printed.stdout


def test_the_report_prints_as_the_commands_workbook(srv):
    from openpyxl import load_workbook

    answer = srv.get(f"/v1/enterprises/{E}", params={"view": "report", "format": "xlsx"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith(f'attachment; filename="credit-file-{E}.xlsx"'), disposition
    assert urllib.parse.quote(f"诚信档案_清源桶装水厂_{E}.xlsx", safe="") in disposition
    book = load_workbook(io.BytesIO(answer.content))
    assert book.sheetnames[0] == "概要"
    assert book["概要"]["A1"].value == f"诚信档案：清源桶装水厂（{E}）"


def test_a_town_key_prints_only_its_towns_reports(srv):
    for fmt in ("text", "xlsx"):
        own = srv.get(f"/v1/enterprises/{E}", params={"view": "report", "format": fmt}, headers=bearer(srv.role_keys["liangzhu"]))
        assert own.status_code == 200, own.text
        other = srv.get(f"/v1/enterprises/{E}", params={"view": "report", "format": fmt}, headers=bearer(srv.role_keys["elsewhere"]))
        assert other.status_code == 404 and "清源" not in other.text


def test_a_bad_report_format_names_the_field_and_the_forms_in_both_languages(srv):
    answer = srv.get(f"/v1/enterprises/{E}", params={"view": "report", "format": "pdf"})
    assert answer.status_code == 422
    (error,) = answer.json()["errors"]
    assert error["field"] == "query.format"
    for form in ("json", "text", "xlsx"):
        assert form in error["reason"] and form in error["reason_zh"]
    assert "收到 'pdf'" in error["reason_zh"]
    # the folded file has no printed form: said, not answered as JSON
    answer = srv.get(f"/v1/enterprises/{E}", params={"format": "text"})
    assert answer.status_code == 422
    (error,) = answer.json()["errors"]
    assert error["field"] == "query.format" and "view=report" in error["reason_zh"] and "view=report" in error["reason"]


# --------------------------------------------------------------------------- 2. the alert list's filters


def test_alerts_filter_by_rule_and_an_unknown_rule_lists_the_valid_ones(srv):
    failed = alerts(srv, rule="sampling.unqualified")
    assert len(failed) == 3 and {a["rule"] for a in failed} == {"sampling.unqualified"}  # (E's two, the other producer's one)
    assert {a["rule"] for a in alerts(srv)} > {"sampling.unqualified"}  # (the filter took something away)
    answer = srv.get("/v1/alerts", params={"rule": "sampling.failed"})
    assert answer.status_code == 422
    (error,) = answer.json()["errors"]
    assert error["field"] == "query.rule"
    for text in (error["reason"], error["reason_zh"]):
        assert "sampling.failed" in text and "sampling.unqualified" in text and "interview.follow_up_overdue" in text
    assert "未知的预警规则" in error["reason_zh"]


def test_alerts_filter_by_when_they_were_opened(srv):
    everything = {a["alert_id"] for a in alerts(srv)}
    february = {a["alert_id"] for a in alerts(srv) if a["opened_at"] >= "2025-02-10"}
    assert february and february < everything
    # a date is the bureau's day: 2025-02-10 begins at 2025-02-09T16:00Z, and the samples came at 10:00 local
    assert {a["alert_id"] for a in alerts(srv, since="2025-02-10")} == february
    assert {a["alert_id"] for a in alerts(srv, since="2025-02-10T10:00:00+08:00")} == february
    assert alerts(srv, since="2025-02-10T10:00:01+08:00") == []
    assert alerts(srv, since="2025-02-10T02:00:00Z") != []
    # a duration back from the server's clock: the 2025 alerts are older than a week, younger than 1000 days
    assert alerts(srv, since="7d") == []
    assert {a["alert_id"] for a in alerts(srv, since="1000d")} == everything
    for bad in ("2025-02-10T10:00:00", "last week", "0d", "2025-13-01"):
        answer = srv.get("/v1/alerts", params={"since": bad})
        assert answer.status_code == 422, (bad, answer.text)
        (error,) = answer.json()["errors"]
        assert error["field"] == "query.since" and "7d" in error["reason_zh"] and "7d" in error["reason"], error


def test_alerts_filter_by_assignee_combined_with_the_others_and_in_the_exports(srv):
    import csv

    from openpyxl import load_workbook

    failed = alerts(srv, rule="sampling.unqualified")
    target = failed[0]["alert_id"]
    step = srv.post(f"/v1/alerts/{target}/actions", json={"action": "assign", "assignee": "张三", "note": "请核查该批次"})
    assert step.status_code == 200, step.text
    assert [a["alert_id"] for a in alerts(srv, assignee="张三")] == [target]
    assert alerts(srv, assignee="李四") == []
    assert [a["alert_id"] for a in alerts(srv, assignee="张三", rule="sampling.unqualified", since="2025-01-01", state="open")] == [target]
    assert alerts(srv, assignee="张三", rule="fluctuation.signal") == []
    # the exports carry the same rows
    params = {"rule": "sampling.unqualified", "since": "2025-01-01"}
    table = srv.get("/v1/alerts", params={**params, "format": "csv"})
    assert table.status_code == 200, table.text
    rows = list(csv.DictReader(io.StringIO(table.content.decode("utf-8-sig"))))
    assert {r["alert_id"] for r in rows} == {a["alert_id"] for a in failed}
    assert [r["alert_id"] for r in csv.DictReader(io.StringIO(srv.get(
        "/v1/alerts", params={"assignee": "张三", "format": "csv"}).content.decode("utf-8-sig")))] == [target]
    sheet = srv.get("/v1/alerts", params={**params, "format": "xlsx"})
    assert sheet.status_code == 200, sheet.text
    ws = load_workbook(io.BytesIO(sheet.content)).active
    assert ws.max_row == 1 + len(failed)  # a header row and the two failures
    # a town key: the same filters, its towns only (the county's chart alert has none)
    assert alerts(srv, srv.role_keys["elsewhere"], rule="sampling.unqualified") == []
    assert {a["alert_id"] for a in alerts(srv, srv.role_keys["liangzhu"], rule="fluctuation.signal")} == {
        a["alert_id"] for a in alerts(srv, rule="fluctuation.signal") if a["town"] == "良渚街道"}


# --------------------------------------------------------------------------- 3. steps that need a reason


def test_comment_and_reopen_need_a_note_named_in_chinese_and_english(srv):
    target = alerts(srv, rule="risk.grade_worsened")[0]["alert_id"]
    before = srv.get(f"/v1/alerts/{target}").json()["steps"]
    for action, zh in (("comment", "备注须填写内容"), ("reopen", "重新打开须填写理由")):
        for body in ({"action": action}, {"action": action, "note": "  "}):
            answer = srv.post(f"/v1/alerts/{target}/actions", json=body)
            assert answer.status_code == 422, answer.text
            (error,) = answer.json()["errors"]
            assert error["field"] == "body.note", error
            assert error["reason_zh"].startswith(zh) and "note" in error["reason_zh"]
            assert error["reason"].startswith(f"action {action} needs a note") and not any("\u4e00" <= c <= "\u9fff" for c in error["reason"])
    assert srv.get(f"/v1/alerts/{target}").json()["steps"] == before  # nothing was written
    # refused before the log, and audited as such (README: a note it needs)
    refused = [r["detail"] if isinstance(r["detail"], dict) else json.loads(r["detail"]) for r in srv.get("/v1/audit", params={"action": "alert.action"}).json()
               if r["outcome"] == "refused"]
    assert {(d["alert_id"], d["action"], d["status"]) for d in refused} >= {(target, "comment", 422), (target, "reopen", 422)}
    assert any(d["reason"].startswith("重新打开须填写理由") for d in refused)
    noted = srv.post(f"/v1/alerts/{target}/actions", json={"action": "comment", "note": "已电话联系企业"})
    assert noted.status_code == 200, noted.text
    assert noted.json()["alert"]["steps"][-1]["note"] == "已电话联系企业"


def test_a_close_without_its_reason_is_answered_as_the_other_steps_that_lack_a_note(srv):
    """A 紧急/高 alert closed with no note: 422 naming body.note in each language, as comment and reopen are
    (it was a bare Chinese detail, with no field for a client to point at)."""
    target = next(a for a in alerts(srv) if a["severity"] in ("critical", "high") and a["state"] != "closed")
    answer = srv.post(f"/v1/alerts/{target['alert_id']}/actions", json={"action": "close", "note": " "})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    (error,) = body["errors"]
    assert error["field"] == "body.note" and error["reason_zh"].startswith("关闭") and "须填写关闭理由" in error["reason_zh"]
    assert error["reason"].startswith(f"action close needs a note on a {target['severity']} alert")
    assert not any("\u4e00" <= c <= "\u9fff" for c in error["reason"] + body["detail_en"])
    assert body["detail"] == f"请求无效：body.note：{error['reason_zh']}"
    assert srv.get(f"/v1/alerts/{target['alert_id']}").json()["state"] == target["state"]


def test_an_assign_without_an_assignee_says_so_once_in_each_language(srv):
    target = alerts(srv, rule="risk.grade_worsened")[0]["alert_id"]
    answer = srv.post(f"/v1/alerts/{target}/actions", json={"action": "assign", "note": "请跟进"})
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["errors"]
    assert error["field"] == "body.assignee"
    assert error["reason_zh"] == "指派须填写负责人（assignee），即此后负责处置该预警的人员"
    assert error["reason"] == "action assign needs an assignee: who handles the alert from now on"
    assert answer.json()["detail"] == "请求无效：body.assignee：指派须填写负责人（assignee），即此后负责处置该预警的人员"


def test_a_manual_escalation_needs_a_note_and_tells_the_escalation_receivers(srv):
    """A supervisor could not escalate a problem beyond the town's means (422): now 手动升级, with its reason."""
    target = alerts(srv, rule="risk.grade_worsened")[0]["alert_id"]
    bare = srv.post(f"/v1/alerts/{target}/actions", json={"action": "escalate"})
    assert bare.status_code == 422, bare.text
    (error,) = bare.json()["errors"]
    assert error["field"] == "body.note" and error["reason_zh"].startswith("手动升级须填写理由")
    state = srv.get(f"/v1/alerts/{target}").json()["state"]
    answer = srv.post(f"/v1/alerts/{target}/actions", json={"action": "escalate", "note": "企业拒不配合，请县局协调"})
    assert answer.status_code == 200, answer.text
    alert = answer.json()["alert"]
    step = alert["steps"][-1]
    assert (step["action"], step["action_zh"], step["note"]) == ("escalate", "手动升级", "企业拒不配合，请县局协调")
    assert alert["escalated"] is True and alert["state"] == state  # (the state stays: it is still being handled)
    # the escalation's notifications, as when nobody acknowledges in time: to the escalation receivers and its own
    sent = srv.get(f"/v1/alerts/{target}").json().get("deliveries", [])
    assert all(d["reason"] != "escalated" or d["receiver"] for d in sent)
    audit = srv.get("/v1/audit", params={"action": "alert.action"}).json()
    assert any(r["outcome"] in ("accepted", "ok") and '"escalate"' in json.dumps(r, ensure_ascii=False) for r in audit), audit[:2]


# --------------------------------------------------------------------------- 4. a town's report of a county alert


def test_a_town_report_says_the_county_handles_the_alert_it_may_not_read(srv):
    county_alert = next(a for a in alerts(srv, rule="fluctuation.signal") if a["town"] is None)

    def county_row(key: str | None) -> dict:
        answer = srv.get(f"/v1/enterprises/{E}", params={"view": "report"}, headers=bearer(key) if key else {})
        assert answer.status_code == 200, answer.text
        (row,) = [w for w in answer.json()["warnings"] if w["dedup_key"] == county_alert["dedup_key"]]
        return row

    assert county_row(None)["handling_zh"].startswith(f"待处置（{county_alert['alert_id']}")  # the admin reads it
    assert county_row(srv.role_keys["county"])["handling_zh"].startswith(f"待处置（{county_alert['alert_id']}")
    town = county_row(srv.role_keys["liangzhu"])
    assert town["handling_zh"] == "县级预警，由县局处置（该密钥无权查看）"
    assert srv.get(f"/v1/alerts/{county_alert['alert_id']}", headers=bearer(srv.role_keys["liangzhu"])).status_code == 404
    # its own alerts it reads as ever, and the printed forms say the same
    text = srv.get(f"/v1/enterprises/{E}", params={"view": "report", "format": "text"}, headers=bearer(srv.role_keys["liangzhu"])).text
    assert "县级预警，由县局处置（该密钥无权查看）" in text and county_alert["alert_id"] not in text
    assert "无预警记录" not in text


def test_an_unseen_alert_of_a_town_says_another_town_handles_it_and_nothing_of_it():
    from qrisk.credit_report import handling_zh, unseen

    full = {"alert_id": "AL-0000000000000001", "dedup_key": "k", "event_ids": ["e"], "opened_at": "2025-02-10T02:00:00Z",
            "town": "清湖镇", "state": "closed", "state_zh": "已关闭", "assignee": "张三", "steps": [{"note": "秘密"}]}
    hidden = unseen(full)
    assert set(hidden) == {"dedup_key", "event_ids", "opened_at", "town", "unseen"}
    assert handling_zh(hidden, 8) == "由其他乡镇/街道处置的预警（该密钥无权查看）"
    assert handling_zh(unseen({**full, "town": None}), 8) == "县级预警，由县局处置（该密钥无权查看）"
