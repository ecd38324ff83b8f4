"""complaint.accepted (受理决定): the bureau accepts a 投诉 (受理) or refuses it (不予受理) within 7 working days of receipt
(《市场监督管理投诉举报处理暂行办法》).  While an open 投诉 has no decision its accept limit is chased (the policy's
complaint_deadlines.complaint.chase_acceptance); the mediation's 45 working days run from the acceptance; a refusal stops
the clocks without the complaint being 办结."""
from __future__ import annotations

import datetime as dt
import json
import random
import uuid

import pytest

from ingest.validate import decode_body
from processors.step import FOLD_VERSION, Rules, replay
from processors.warnings import ALERT_KIND, RESOLVED_KIND
from qrisk.credit_report import build_report, render_text
from qrisk.registers import COMPLAINT_COLUMNS, complaint_rows
from schemas.events import EVENT_TYPE_ZH
from schemas.policy import Policy
from schemas.upcast import parse_event
from tests.conftest import golden

D = dt.date.fromisoformat
E = "E-330110-001"
REG = parse_event(golden("enterprise.registered"))
# received Friday 2026-03-20: the 7 working days to accept end 2026-03-31; 45 of mediation after an acceptance on 03-23 end 05-28
RECEIVED_AT = "2026-03-20T10:00:00+08:00"


def _id() -> str:
    return str(uuid.uuid4())


def received(cid: str, at: str = RECEIVED_AT, **payload):
    doc = golden("complaint.received")
    doc["event_id"], doc["occurred_at"] = _id(), at
    doc["payload"].update(complaint_id=cid, **payload)
    return parse_event(doc)


def accepted(cid: str, on: str, at: str | None = None, decision: str = "accepted", reason: str = ""):
    doc = golden("complaint.accepted")
    doc["event_id"], doc["occurred_at"] = _id(), at or f"{on}T17:00:00+08:00"
    doc["payload"].update(complaint_id=cid, decision=decision, decided_on=on)
    if reason:
        doc["payload"]["reason"] = reason
    return parse_event(doc)


def resolved(cid: str, at: str, verified: bool = False, **payload):
    doc = golden("complaint.resolved")
    doc["event_id"], doc["occurred_at"] = _id(), at
    doc["payload"].update(complaint_id=cid, verified=verified, **payload)
    return parse_event(doc)


def tick(at: str):
    doc = golden("clock.tick")
    doc["event_id"], doc["occurred_at"] = _id(), at
    return parse_event(doc)


def overdue(effects):
    return [e for e in effects if e.kind == "complaint.overdue"]


def limits(state, cid="TS1"):
    return [(lim.limit, lim.due_on, lim.overdue) for lim in state.files[E].complaint(cid).limits]


def _chasing_off(rules):
    return Rules(catalogue=rules.catalogue, policy=Policy.model_validate({"complaint_deadlines": {"complaint": {"chase_acceptance": False}}}))


# --------------------------------------------------------------------------- 1. the event


def test_the_golden_acceptance_validates_and_is_registered_everywhere_an_event_type_is():
    from dashboards.boards import EVENT_TYPE_ZH as BOARD_ZH
    from ingest.mapping import MappedType
    from qrisk.auth import posting_rules
    from schemas.export import event_json_schema

    event = parse_event(golden("complaint.accepted"))
    assert event.payload.decision == "accepted" and event.payload.decided_on == D("2026-03-23")
    assert EVENT_TYPE_ZH["complaint.accepted"] == BOARD_ZH["complaint.accepted"] == "受理决定"
    assert "complaint.accepted" in json.dumps(event_json_schema())
    assert "complaint.accepted" in MappedType.__args__
    rules = posting_rules()
    # the same keys as a conclusion: the complaint channel and the inspectors
    for role in ("complaint", "inspector", "admin"):
        assert "complaint.accepted" in rules[role][0] and "complaint.resolved" in rules[role][0]
    assert "complaint.accepted" not in rules["lab"][0]


def test_a_refusal_without_reason_or_a_decision_after_its_record_is_refused_naming_the_field():
    doc = golden("complaint.accepted")
    doc["payload"]["decision"] = "refused"
    _, [bad] = decode_body(json.dumps(doc, ensure_ascii=False).encode())
    [error] = bad.errors
    assert error["field"] == "payload.reason" and "不予受理须说明理由" in error["reason_zh"]
    doc = golden("complaint.accepted")
    doc["payload"]["decided_on"] = "2026-03-24"  # recorded 2026-03-23 15:00 local
    _, [bad] = decode_body(json.dumps(doc, ensure_ascii=False).encode())
    [error] = bad.errors
    assert error["field"] == "payload.decided_on" and "决定日期 2026-03-24 晚于登记时间 2026-03-23" in error["reason_zh"]
    doc = golden("complaint.accepted")
    doc["payload"]["decision"] = "受理"
    _, [bad] = decode_body(json.dumps(doc, ensure_ascii=False).encode())
    assert [e["field"] for e in bad.errors] == ["payload.decision"]


# --------------------------------------------------------------------------- 2. the fold


def test_an_open_complaint_with_no_decision_is_chased_on_its_7_days_once_and_alerts_the_town(rules):
    state, _ = replay([REG, received("TS1")], rules)
    assert limits(state) == [("accept", D("2026-03-31"), False), ("mediate", D("2026-06-05"), False)]
    _, effects = replay([tick("2026-03-31T23:00:00+08:00")], rules, state)
    assert overdue(effects) == []
    _, effects = replay([tick("2026-04-02T08:00:00+08:00")], rules, state)
    [said] = overdue(effects)
    assert said.data["limit"] == "accept" and said.data["working_days_over"] == 2
    assert "超过受理期限（收到之日起 7 个工作日内决定是否受理）" in said.data["message_zh"]
    assert "未作出受理决定" in said.data["message_zh"] and "complaint.accepted" in said.data["message_zh"]
    [alert] = [e for e in effects if e.kind == ALERT_KIND and e.data["rule"] == "complaint.overdue"]
    assert alert.data["severity"] == "low" and "截至 2026-04-02 仍无受理决定" in alert.data["message_zh"]
    assert "请尽快作出受理或不予受理决定并告知投诉人" in alert.data["message_zh"] and "no acceptance decision" in alert.data["message_en"]
    _, effects = replay([tick("2026-04-10T08:00:00+08:00")], rules, state)
    assert overdue(effects) == []  # (said once)
    assert state.files[E].complaint("TS1").deadline_zh().startswith("超期未办结")


def test_a_decision_in_time_is_not_chased_and_the_mediation_counts_from_it(rules):
    state, effects = replay([REG, received("TS1"), accepted("TS1", "2026-03-23")], rules)
    [said] = [e for e in effects if e.kind == "complaint.accepted"]
    assert said.data["in_force"] and "受理（2026-03-23）" in said.data["message_zh"]
    # 03-23 + 45 working days (the May Day holiday skipped) = 05-28, not the 06-05 of receipt + 7 + 45
    assert limits(state) == [("accept", D("2026-03-31"), False), ("mediate", D("2026-05-28"), False)]
    _, effects = replay([tick("2026-04-15T08:00:00+08:00")], rules, state)
    assert overdue(effects) == []
    _, effects = replay([tick("2026-05-29T08:00:00+08:00")], rules, state)
    [said] = overdue(effects)
    assert said.data["limit"] == "mediate" and said.data["due_on"] == "2026-05-28" and "未办结" in said.data["message_zh"]
    state, _ = replay([resolved("TS1", "2026-06-01T10:00:00+08:00")], rules, state)
    record = state.files[E].complaint("TS1")
    assert [lim.overdue for lim in record.limits] == [False, True] and record.deadline_zh().startswith("超期办结")


def test_a_late_acceptance_is_marked_late_and_closes_the_alert(rules):
    state, effects = replay([REG, received("TS1"), tick("2026-04-02T08:00:00+08:00")], rules)
    assert len(overdue(effects)) == 1
    _, effects = replay([accepted("TS1", "2026-04-03")], rules, state)
    [closed] = [e for e in effects if e.kind == RESOLVED_KIND]
    assert closed.data["rule"] == "complaint.overdue" and "作出受理决定，预警自动关闭" in closed.data["note_zh"]
    assert limits(state) == [("accept", D("2026-03-31"), True), ("mediate", D("2026-06-10"), False)]
    _, effects = replay([tick("2026-05-01T08:00:00+08:00")], rules, state)
    assert overdue(effects) == []


def test_the_overdue_alert_closes_in_the_alert_book_on_the_decision(rules):
    from tests.test_alerts import County, policy

    county = County(rules, policy())
    county.feed(REG, received("TS1"))
    county.feed(tick("2026-04-02T08:00:00+08:00"))
    [alert] = [a for a in county.book.alerts.values() if a.rule == "complaint.overdue"]
    assert alert.state == "open"
    county.feed(accepted("TS1", "2026-03-30", at="2026-04-02T09:00:00+08:00"))  # decided in time, recorded late
    assert alert.state == "closed"


def test_a_refusal_stops_the_clocks_without_concluding_the_complaint(rules):
    state, _ = replay([REG, received("TS1"), accepted("TS1", "2026-03-24", decision="refused", reason="不属于本行政机关管辖")], rules)
    record = state.files[E].complaint("TS1")
    assert limits(state) == [("accept", D("2026-03-31"), False)] and record.refused and record.concluded_on is None
    assert state.files[E].complaints_due_next is None
    _, effects = replay([tick("2026-09-01T08:00:00+08:00")], rules, state)
    assert overdue(effects) == []
    assert record.deadline_zh() == "不予受理：2026-03-24 决定（理由：不属于本行政机关管辖），不予调解"
    assert state.files[E].counts.complaints == 1  # (received, still counted)
    rows = complaint_rows([state.files[E].view()], dt.datetime(2026, 9, 1, tzinfo=dt.timezone.utc))
    [row] = rows
    assert set(COMPLAINT_COLUMNS) <= set(row)
    assert (row["state"], row["acceptance"], row["accepted_on"]) == ("refused", "refused", None)
    assert row["state_zh"] == "不予受理（不属于本行政机关管辖）" and row["acceptance_zh"] == "不予受理（2026-03-24，理由：不属于本行政机关管辖）"


def test_a_refusal_closes_the_alert_and_a_conclusion_after_it_is_judged_on_it(rules):
    state, _ = replay([REG, received("TS1"), tick("2026-04-02T08:00:00+08:00")], rules)
    _, effects = replay([accepted("TS1", "2026-04-01", decision="refused", reason="超过法定投诉时效")], rules, state)
    assert [e.data["rule"] for e in effects if e.kind == RESOLVED_KIND] == ["complaint.overdue"]
    state, _ = replay([resolved("TS1", "2026-04-10T10:00:00+08:00")], rules, state)
    record = state.files[E].complaint("TS1")
    assert limits(state) == [("accept", D("2026-03-31"), True)] and record.concluded_on == D("2026-04-10")
    assert "不予受理（2026-04-01，理由：超过法定投诉时效）" in record.deadline_zh()


def test_the_earliest_decision_counts_and_the_same_one_again_is_a_repeat(rules):
    state, _ = replay([REG, received("TS1"), accepted("TS1", "2026-03-25")], rules)
    _, effects = replay([accepted("TS1", "2026-03-25")], rules, state)
    [said] = [e for e in effects if e.kind == "complaint.accepted"]
    assert said.data["repeated"] and "重复报送" in said.data["message_zh"]
    assert len(state.files[E].complaint("TS1").acceptances) == 1
    _, effects = replay([accepted("TS1", "2026-03-23")], rules, state)
    _, effects2 = replay([accepted("TS1", "2026-03-30")], rules, state)
    [later] = [e for e in effects2 if e.kind == "complaint.accepted"]
    assert not later.data["in_force"] and "以该决定为准" in later.data["message_zh"]
    record = state.files[E].complaint("TS1")
    assert record.acceptance.decided_on == D("2026-03-23") and len(record.acceptances) == 3
    assert limits(state)[1] == ("mediate", D("2026-05-28"), False)


def test_any_arrival_order_folds_to_the_same_record(rules):
    events = [received("TS1"), accepted("TS1", "2026-03-25"), accepted("TS1", "2026-03-23"), resolved("TS1", "2026-06-01T10:00:00+08:00"),
              received("TS2"), accepted("TS2", "2026-04-03"), received("TS3"),
              accepted("TS3", "2026-03-26", decision="refused", reason="不属于本行政机关管辖"),
              accepted("TS4", "2026-03-24"), received("TS4")]
    end = tick("2026-08-01T00:00:00+08:00")

    def kept(state):
        f = state.files[E]
        return (f.complaints_due_next, f.acceptances_waiting,
                sorted(((c.complaint_id, c.concluded_on, c.acceptance and c.acceptance.event_id, c.model_dump(include={"limits"}))
                        for c in f.complaints), key=lambda x: x[0]))

    state, _ = replay([REG, *events, end], rules)
    want = kept(state)
    for seed in range(8):
        shuffled = list(events)
        random.Random(seed).shuffle(shuffled)
        other, _ = replay([REG, *shuffled, end], rules)
        assert kept(other) == want
    f = state.files[E]
    assert f.acceptances_waiting == {}
    # TS1 accepted 03-23 (the earliest), mediated to 05-28, concluded 06-01: late; TS2 accepted late, still open; TS3 refused in time
    assert [lim.overdue for lim in f.complaint("TS1").limits] == [False, True]
    assert [lim.overdue for lim in f.complaint("TS2").limits] == [True, True]  # (open on 08-01, past 04-03 + 45)
    assert [lim.overdue for lim in f.complaint("TS3").limits] == [False]
    assert f.complaint("TS4").acceptance.decided_on == D("2026-03-24")


def test_an_acceptance_before_its_complaint_waits_and_applies_when_it_comes(rules):
    state, effects = replay([REG, accepted("TS1", "2026-03-23")], rules)
    [said] = [e for e in effects if e.kind == "complaint.accepted"]
    assert said.data["waiting"] and "已暂存" in said.data["message_zh"]
    assert list(state.files[E].acceptances_waiting) == ["TS1"]
    state, _ = replay([received("TS1")], rules, state)
    assert state.files[E].acceptances_waiting == {} and limits(state)[1] == ("mediate", D("2026-05-28"), False)


def test_with_chase_acceptance_off_an_open_complaint_is_chased_only_on_its_mediation(rules):
    off = _chasing_off(rules)
    state, effects = replay([REG, received("TS1"), tick("2026-04-15T08:00:00+08:00")], off)
    assert overdue(effects) == [] and limits(state)[0] == ("accept", D("2026-03-31"), None)
    # a decision is still used when one comes
    state, _ = replay([accepted("TS1", "2026-03-23")], off, state)
    assert limits(state) == [("accept", D("2026-03-31"), False), ("mediate", D("2026-05-28"), False)]


def test_replay_is_deterministic_and_the_fold_version_moved(rules):
    events = [REG, received("TS1"), tick("2026-04-02T08:00:00+08:00"), accepted("TS1", "2026-04-03"),
              accepted("TS2", "2026-03-23"), received("TS2"), tick("2026-06-20T08:00:00+08:00")]
    one, e1 = replay(events, rules)
    two, e2 = replay(events, rules)
    assert one.model_dump() == two.model_dump() and [(e.kind, e.data) for e in e1] == [(e.kind, e.data) for e in e2]
    assert FOLD_VERSION >= 45  # (later versions keep what 45 brought)


def test_the_door_warns_of_a_decision_before_receipt_and_of_one_waiting_for_its_complaint(rules):
    from ingest.lint import accepted_warnings

    early = accepted("TS1", "2026-03-19")
    state, _ = replay([REG, early], rules)
    [w] = accepted_warnings(early, rules.catalogue, state.files[E])
    assert w["type"] == "acceptance_pending" and "受理决定已暂存" in w["reason_zh"]
    state, _ = replay([received("TS1")], rules, state)
    [w] = accepted_warnings(early, rules.catalogue, state.files[E])
    assert w["field"] == "payload.decided_on" and "决定日期 2026-03-19 早于投诉 TS1 的收到日期 2026-03-20" in w["reason_zh"]
    # applied, the mediation counted from the receipt, not from the mistyped day before it
    assert state.files[E].complaint("TS1").limit("mediate").starts_on == D("2026-03-20")
    # a later-dated decision is kept, not applied: the earlier one stays in force, and the sender hears which
    [w] = accepted_warnings(accepted("TS1", "2026-03-23"), rules.catalogue, state.files[E])
    assert w["type"] == "acceptance_not_in_force" and f"以 corrects 填写 {early.event_id}" in w["reason_zh"]


# --------------------------------------------------------------------------- 3. what people see


def test_the_register_and_the_credit_report_show_the_acceptance_date(rules):
    state, _ = replay([REG, received("TS1"), accepted("TS1", "2026-03-23"), received("TS2")], rules)
    rows = {r["complaint_id"]: r for r in complaint_rows([state.files[E].view()], dt.datetime(2026, 4, 10, tzinfo=dt.timezone.utc))}
    assert (rows["TS1"]["state"], rows["TS1"]["accepted_on"], rows["TS1"]["acceptance_zh"]) == ("open", "2026-03-23", "受理（2026-03-23）")
    assert rows["TS1"]["deadline_zh"] == "办理中，已受理（2026-03-23），办结期限 2026-05-28"
    assert (rows["TS2"]["accepted_on"], rows["TS2"]["acceptance_zh"]) == (None, "待受理")
    report = build_report(state.files[E], rules)
    [ts1] = [c for c in report["complaints"] if c["complaint_id"] == "TS1"]
    assert ts1["acceptance_zh"] == "受理（2026-03-23）" and ts1["acceptance_event_id"]
    assert "受理（2026-03-23）" in render_text(report)


def test_the_api_refuses_a_bad_acceptance_naming_the_field_and_folds_a_good_one(server):
    """Over real HTTP (a `qrisk run` on loopback): each bad field named, the batch kept in dead letters, nothing written."""
    refusal = golden("complaint.accepted")
    refusal["payload"]["decision"] = "refused"
    future = golden("complaint.accepted")
    future["event_id"] = _id()
    future["payload"]["decided_on"] = "2026-03-24"
    resp = server.post("/v1/events", json=[golden("enterprise.registered"), golden("complaint.received"), refusal, future])
    assert resp.status_code == 422, resp.text
    errors = {(e["index"], e["field"]): e for e in resp.json()["errors"]}
    assert set(errors) == {(2, "payload.reason"), (3, "payload.decided_on")}
    assert "不予受理须说明理由" in errors[(2, "payload.reason")]["reason_zh"]
    assert "决定日期 2026-03-24 晚于登记时间 2026-03-23" in errors[(3, "payload.decided_on")]["reason_zh"]
    assert server.get("/v1/enterprises/E-330110-001").status_code == 404
    resp = server.post("/v1/events", json=[golden("enterprise.registered"), golden("complaint.received"), golden("complaint.accepted")])
    assert resp.status_code == 200, resp.text
    [row] = server.get("/v1/complaints").json()
    assert (row["accepted_on"], row["acceptance_zh"]) == ("2026-03-23", "受理（2026-03-23）")
