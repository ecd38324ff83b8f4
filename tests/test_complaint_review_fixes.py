"""What a review of complaint handling found: a late 不予受理 counted nowhere, a 受理决定 recorded wrong could not be
corrected (and two of one date stood or fell by their random event ids), a 举报 filed as a 投诉 stayed one, turning the
acceptance chase on rewrote history on the refold, decisions that will not apply went unsaid at the door and on the
credit report, and two texts read wrong."""
from __future__ import annotations

import datetime as dt
import uuid

from ingest.lint import accepted_warnings
from processors.credit_file import CountyState
from processors.step import Rules, replay
from processors.warnings import RESOLVED_KIND
from qrisk.credit_report import _complaints_late_text, build_report, render_text
from qrisk.pipeline import COMPLAINT_TABLE_COLUMNS, complaint_table_rows
from qrisk.registers import complaint_rows
from schemas.policy import Policy
from schemas.upcast import parse_event
from tests.conftest import golden
from tests.test_complaint_accepted import E, REG, accepted, received, resolved, tick

D = dt.date.fromisoformat


def register(state, cid: str) -> dict:
    [row] = [r for r in complaint_rows([state.files[E].view()], dt.datetime(2026, 7, 1, tzinfo=dt.timezone.utc)) if r["complaint_id"] == cid]
    return row


def table(state, cid: str) -> dict:
    [row] = [dict(zip(COMPLAINT_TABLE_COLUMNS, r)) for r in complaint_table_rows(state.files[E], {cid}, 1)]
    return row


def withdrawn(cid: str, at: str):
    doc = golden("complaint.withdrawn")
    doc["event_id"], doc["occurred_at"] = str(uuid.uuid4()), at
    doc["payload"].update(complaint_id=cid, reason="登记错企业")
    return parse_event(doc)


def correction(cid: str, on: str, corrects, at: str | None = None, **kw):
    event = accepted(cid, on, at=at, **kw)
    return event.model_copy(update={"payload": event.payload.model_copy(update={"corrects": uuid.UUID(str(corrects))})})


# --------------------------------------------------------------------------- 1. a late refusal is late


def test_a_refusal_after_the_accept_limit_is_counted_late_everywhere(rules):
    state, _ = replay([REG, received("TS1"), tick("2026-04-01T01:00:00+08:00"),
                       accepted("TS1", "2026-04-03", decision="refused", reason="不属于本机关管辖")], rules)
    record = state.files[E].complaint("TS1")
    assert record.overdue_judged is True and record.due_on is None
    row = register(state, "TS1")
    assert (row["overdue"], row["due_on"]) == (True, None)
    assert "不予调解" in row["deadline_zh"] and "不再调解" not in row["deadline_zh"]
    assert table(state, "TS1")["overdue"] == "受理超期"
    assert "不予受理超期 1 件" in _complaints_late_text(state.files[E])
    [c] = build_report(state.files[E], rules)["complaints"]
    assert c["overdue"] is True
    # concluded after it: still late by its refusal, still no 办结期限
    state, _ = replay([resolved("TS1", "2026-04-20T10:00:00+08:00")], rules, state)
    assert (register(state, "TS1")["overdue"], table(state, "TS1")["overdue"], table(state, "TS1")["due_on"]) == (True, "受理超期", None)


def test_a_refusal_in_time_has_no_verdict(rules):
    state, _ = replay([REG, received("TS1"), accepted("TS1", "2026-03-24", decision="refused", reason="不属于本机关管辖")], rules)
    assert state.files[E].complaint("TS1").overdue_judged is None
    assert table(state, "TS1")["overdue"] is None and _complaints_late_text(state.files[E]) == ""


# --------------------------------------------------------------------------- 2. correcting a decision


def test_a_decision_with_a_wrong_date_is_corrected_by_one_naming_it(rules):
    wrong = accepted("TS1", "2026-03-03", at="2026-04-03T17:00:00+08:00")
    state, _ = replay([REG, received("TS1"), tick("2026-04-01T01:00:00+08:00"), wrong], rules)
    assert state.files[E].complaint("TS1").accepted_on == D("2026-03-03")
    right = correction("TS1", "2026-04-03", wrong.event_id, at="2026-04-03T18:00:00+08:00")
    state, effects = replay([right], rules, state)
    record = state.files[E].complaint("TS1")
    assert record.accepted_on == D("2026-04-03") and record.acceptance.event_id == str(right.event_id)
    assert [a.superseded_by for a in record.acceptances] == [str(right.event_id), None]
    [said] = [e for e in effects if e.kind == "complaint.accepted"]
    assert said.data["corrects_event_id"] == str(wrong.event_id) and said.data["in_force"]
    assert "更正此前的决定（受理（2026-03-03）" in said.data["message_zh"]
    # now late: accepted after 03-31
    assert record.limit("accept").overdue is True
    # the same in a snapshot, and with the correction arriving first
    again = CountyState.model_validate_json(state.model_dump_json())
    assert again.files[E].complaint("TS1").acceptance.event_id == str(right.event_id)
    first, _ = replay([REG, received("TS1"), right, wrong], rules)
    assert first.files[E].complaint("TS1").acceptance.event_id == str(right.event_id)


def test_a_correction_sent_as_the_door_asks_is_no_repeat_of_the_plain_copy_before_it(rules):
    """A 受理 typed 03-03 for 04-03 (A); the right one sent plainly (C: kept, not applied, the door asks for corrects);
    then again naming A (B): B was taken for C's repeat, and A stood for good."""
    wrong = accepted("TS1", "2026-03-03", at="2026-04-03T17:00:00+08:00")
    plain = accepted("TS1", "2026-04-03", at="2026-04-03T18:00:00+08:00")
    state, _ = replay([REG, received("TS1"), tick("2026-04-01T01:00:00+08:00"), wrong], rules)
    [w] = accepted_warnings(plain, rules.catalogue, state.files[E], policy=rules.policy)
    assert w["type"] == "acceptance_not_in_force" and f"以 corrects 填写 {wrong.event_id}，以新的事件编号（event_id）重新报送" in w["reason_zh"]
    state, _ = replay([plain], rules, state)
    assert state.files[E].complaint("TS1").acceptance.event_id == str(wrong.event_id)
    right = correction("TS1", "2026-04-03", wrong.event_id, at="2026-04-03T19:00:00+08:00")
    state, effects = replay([right], rules, state)
    record = state.files[E].complaint("TS1")
    assert record.accepted_on == D("2026-04-03")
    assert next(a for a in record.acceptances if a.event_id == str(wrong.event_id)).superseded_by == str(right.event_id)
    [said] = [e for e in effects if e.kind == "complaint.accepted"]
    assert not said.data.get("repeated") and said.data["corrects_event_id"] == str(wrong.event_id)
    assert record.limit("accept").overdue is True  # decided after 03-31
    # a true repeat of the correction is still one
    again = right.model_copy(update={"event_id": uuid.uuid4()})
    state, effects = replay([again], rules, state)
    assert [e for e in effects if e.kind == "complaint.accepted"][0].data.get("repeated") is True


def test_two_decisions_of_one_date_the_later_logged_corrects_whatever_the_ids(rules):
    def refusal(eid: int, reason: str, at: str):
        return accepted("TS1", "2026-03-24", decision="refused", reason=reason, at=at).model_copy(update={"event_id": uuid.UUID(int=eid)})

    for first, second in ((1, 2), (2, 1)):
        state, effects = replay([REG, received("TS1"), refusal(first, "不属于本机关管辖", "2026-03-24T10:00:00+08:00"),
                                 refusal(second, "不属于本机关管辖（更正）", "2026-03-24T16:00:00+08:00")], rules)
        record = state.files[E].complaint("TS1")
        assert record.acceptance.reason == "不属于本机关管辖（更正）"
        assert record.acceptances[0].superseded_by == str(uuid.UUID(int=second))
        assert "更正此前的决定" in [e for e in effects if e.kind == "complaint.accepted"][-1].data["message_zh"]


def test_a_decision_not_in_force_says_same_day_or_earlier(rules):
    wrong = accepted("TS1", "2026-03-23")
    late = correction("TS1", "2026-03-23", wrong.event_id, decision="refused", reason="x")
    # (a correction arriving before the one it corrects: that one is superseded on arrival)
    state, effects = replay([REG, received("TS1"), late, wrong], rules)
    said = [e for e in effects if e.kind == "complaint.accepted"][-1].data["message_zh"]
    assert "已由更正后的决定" in said and state.files[E].complaint("TS1").refused
    state, effects = replay([REG, received("TS2"), accepted("TS2", "2026-03-23"), accepted("TS2", "2026-03-25")], rules)
    assert "此前已有日期更早的决定" in [e for e in effects if e.kind == "complaint.accepted"][-1].data["message_zh"]


# --------------------------------------------------------------------------- 3. 投诉 → 举报


def test_a_complaint_sent_again_as_a_report_becomes_one(rules):
    state, effects = replay([REG, received("JB1"), tick("2026-04-01T01:00:00+08:00")], rules)
    assert [e.data["limit"] for e in effects if e.kind == "complaint.overdue"] == ["accept"]
    again = received("JB1", kind="report")
    state, effects = replay([again], rules, state)
    record = state.files[E].complaint("JB1")
    assert record.kind == "report" and [lim.limit for lim in record.limits] == ["check", "extended"]
    [said] = [e for e in effects if e.kind == "complaint.repeated"]
    assert said.data["kind_corrected"] and "诉求类型由投诉更正为举报" in said.data["message_zh"]
    assert "按重复报送处理" not in said.data["message_zh"]
    # the alert that chased its 受理决定 has nothing left to chase (its check runs to 04-10)
    assert any(e.kind == RESOLVED_KIND for e in effects)
    assert state.files[E].counts.complaints == 1
    # the same again is a repeat
    _, effects = replay([received("JB1", kind="report")], rules, state)
    assert "本次内容相同" in [e for e in effects if e.kind == "complaint.repeated"][0].data["message_zh"]


# --------------------------------------------------------------------------- 4. chase_acceptance_from


def test_the_chase_applies_only_from_its_effective_date(rules):
    policy = Policy.model_validate({"complaint_deadlines": {"complaint": {"chase_acceptance": True, "chase_acceptance_from": "2026-04-01"}}})
    later = Rules(catalogue=rules.catalogue, policy=policy)
    log = [REG, received("TS1"), received("TS2", at="2026-04-02T10:00:00+08:00"), tick("2026-04-20T01:00:00+08:00")]
    state, effects = replay(log, later)
    assert [e.data["complaint_id"] for e in effects if e.kind == "complaint.overdue"] == ["TS2"]
    state, _ = replay([resolved("TS1", "2026-04-20T10:00:00+08:00")], later, state)
    assert "未报受理日期，受理期限无法判断" in state.files[E].complaint("TS1").deadline_zh()
    assert state.files[E].complaint("TS1").overdue is False


# --------------------------------------------------------------------------- 5. the door and the credit report


def test_the_door_warns_of_a_decision_that_will_not_apply(rules):
    state, _ = replay([REG, received("TS1"), withdrawn("TS1", "2026-03-21T10:00:00+08:00")], rules)
    [w] = accepted_warnings(accepted("TS1", "2026-03-23"), rules.catalogue, state.files[E], policy=rules.policy)
    assert w["type"] == "acceptance_of_withdrawn" and "仅存档、不生效" in w["reason_zh"]
    first = accepted("TS2", "2026-03-23")
    state, _ = replay([REG, received("TS2"), first], rules)
    [w] = accepted_warnings(accepted("TS2", "2026-03-25", decision="refused", reason="x"), rules.catalogue, state.files[E], policy=rules.policy)
    assert w["type"] == "acceptance_not_in_force" and str(first.event_id) in w["reason_zh"]
    # a correction naming it is no such warning
    assert accepted_warnings(correction("TS2", "2026-03-25", first.event_id), rules.catalogue, state.files[E], policy=rules.policy) == []


def test_the_door_warns_when_corrects_names_no_decision_on_file(rules):
    state, _ = replay([REG, received("TS3"), accepted("TS3", "2026-03-23")], rules)
    typo = correction("TS3", "2026-03-24", uuid.uuid4())
    state, _ = replay([typo], rules, state)
    [w] = accepted_warnings(typo, rules.catalogue, state.files[E], policy=rules.policy)
    assert (w["type"], w["field"]) == ("corrects_not_found", "payload.corrects")
    assert f"corrects 填写的事件 {typo.payload.corrects} 不是投诉 TS3 在档的受理决定" in w["reason_zh"]
    # naming one on file: no such warning
    right = correction("TS3", "2026-03-24", state.files[E].complaint("TS3").acceptances[0].event_id)
    state, _ = replay([right], rules, state)
    assert all(w["type"] != "corrects_not_found" for w in accepted_warnings(right, rules.catalogue, state.files[E], policy=rules.policy))


def test_the_credit_report_lists_decisions_waiting_for_their_complaint(rules):
    state, _ = replay([REG, received("TS1"), accepted("TS1O", "2026-03-23")], rules)
    report = build_report(state.files[E], rules)
    [row] = report["acceptances_waiting"]
    assert (row["complaint_id"], row["acceptance_zh"]) == ("TS1O", "受理（2026-03-23）")
    assert "待匹配的受理决定" in render_text(report)


# --------------------------------------------------------------------------- 6. texts


def test_the_chase_alert_says_the_limit_was_passed(rules):
    _, effects = replay([REG, received("TS1"), tick("2026-04-01T01:00:00+08:00")], rules)
    [alert] = [e for e in effects if e.kind == "warning.raised" and e.data.get("rule") == "complaint.overdue"]
    assert "12315）已超过受理期限" in alert.data["message_zh"]
