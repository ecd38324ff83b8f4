"""Review of complaint.accepted (受理决定): what a late decision, a decision that moves a limit already past, a refusal and a
conclusion with no decision say — on the record, in the register, in the complaints table and in the alert that chased
them — and 受理 said only where the statutory decision is meant (a receipt is 收到 / 登记)."""
from __future__ import annotations

import datetime as dt

from processors.step import FOLD_VERSION, replay
from processors.warnings import ALERT_KIND, RESOLVED_KIND
from qrisk.credit_report import build_report
from qrisk.pipeline import _complaint_columns
from qrisk.registers import complaint_rows, complaint_sheet
from tests.test_complaint_accepted import E, REG, accepted, limits, overdue, received, resolved, tick

D = dt.date.fromisoformat
UTC = dt.timezone.utc


def _row(state, cid="TS1", now=dt.datetime(2026, 5, 1, tzinfo=UTC)):
    [row] = [r for r in complaint_rows([state.files[E].view()], now) if r["complaint_id"] == cid]
    return row


def _table_overdue(state, cid="TS1"):
    # (the complaints table's due_on and overdue: the 投诉举报 panel's 超期未办结（当前） counts the latter)
    from qrisk.pipeline import COMPLAINT_TABLE_COLUMNS

    columns = _complaint_columns(state.files[E].complaint(cid))
    # (by name: the table gains columns — estimate, 056 — and a position from the end would read another one)
    named = dict(zip(COMPLAINT_TABLE_COLUMNS[-len(columns):], columns))
    return named["due_on"], named["overdue"]


def test_the_fold_version_moved():
    assert FOLD_VERSION >= 47


# --------------------------------------------------------------------------- 1. a late acceptance is not 超期未办结


def test_a_late_acceptance_leaves_the_complaint_being_handled_with_its_lateness_said(rules):
    state, _ = replay([REG, received("TS1"), tick("2026-04-02T08:00:00+08:00")], rules)
    assert state.files[E].complaint("TS1").overdue and _table_overdue(state)[1] == "超期未办结"
    state, effects = replay([accepted("TS1", "2026-04-03")], rules, state)
    assert [e.data["rule"] for e in effects if e.kind == RESOLVED_KIND] == ["complaint.overdue"]
    record = state.files[E].complaint("TS1")
    # the acceptance was late, and the credit file keeps it so; the complaint is not late now
    assert limits(state) == [("accept", D("2026-03-31"), True), ("mediate", D("2026-06-10"), False)]
    assert not record.overdue and record.overdue_judged is False
    want = "办理中（受理超期），已受理（2026-04-03，晚于受理期限 2026-03-31），办结期限 2026-06-10"
    assert record.deadline_zh() == want
    row = _row(state)
    assert (row["overdue"], row["deadline_zh"], row["due_on"]) == (False, want, "2026-06-10")
    assert _table_overdue(state) == (D("2026-06-10"), None)
    report = build_report(state.files[E], rules)
    [c] = [c for c in report["complaints"] if c["complaint_id"] == "TS1"]
    assert c["overdue"] is False and "受理超期" in c["deadline_zh"]
    # its mediation running past due is 超期未办结 again, the late acceptance still said
    state, effects = replay([tick("2026-06-11T08:00:00+08:00")], rules, state)
    [said] = overdue(effects)
    assert said.data["limit"] == "mediate"
    record = state.files[E].complaint("TS1")
    assert record.overdue and _table_overdue(state)[1] == "超期未办结"
    assert record.deadline_zh().startswith("超期未办结：已受理（2026-04-03，晚于受理期限 2026-03-31），已超过调解期限")
    assert "受理期限（收到之日起" not in record.deadline_zh()  # (only the limit still running is what is late now)


def test_a_late_acceptance_concluded_in_time_is_still_late_on_its_acceptance(rules):
    state, _ = replay([REG, received("TS1"), accepted("TS1", "2026-04-03"), resolved("TS1", "2026-05-20T10:00:00+08:00")], rules)
    record = state.files[E].complaint("TS1")
    assert record.overdue and record.deadline_zh().startswith("超期办结：2026-05-20 办结，超过受理期限")
    assert _table_overdue(state)[1] == "超期办结"


# --------------------------------------------------------------------------- 2. one event, one coherent thing


def test_an_acceptance_whose_new_mediation_date_has_passed_keeps_the_alert_open(rules):
    state, effects = replay([REG, received("TS1"), tick("2026-06-10T08:00:00+08:00")], rules)
    assert sorted(e.data["limit"] for e in overdue(effects)) == ["accept", "mediate"]
    # decided 04-08 (late), recorded 06-20: its mediation, due 06-12, has passed too
    state, effects = replay([accepted("TS1", "2026-04-08", at="2026-06-20T10:00:00+08:00")], rules, state)
    assert [e for e in effects if e.kind == RESOLVED_KIND] == []
    [said] = overdue(effects)
    assert (said.data["limit"], said.data["due_on"]) == ("mediate", "2026-06-12")
    # the said-overdue comes after the decision it follows from
    kinds = [e.kind for e in effects]
    assert kinds.index("complaint.accepted") < kinds.index("complaint.overdue")
    assert limits(state) == [("accept", D("2026-03-31"), True), ("mediate", D("2026-06-12"), True)]
    assert state.files[E].complaint("TS1").deadline_zh().startswith("超期未办结：")


def test_the_alert_book_keeps_one_open_alert_through_such_a_decision(rules):
    from tests.test_alerts import County, policy

    county = County(rules, policy())
    county.feed(REG, received("TS1"))
    county.feed(tick("2026-06-10T08:00:00+08:00"))
    [alert] = [a for a in county.book.alerts.values() if a.rule == "complaint.overdue"]
    county.feed(accepted("TS1", "2026-04-08", at="2026-06-20T10:00:00+08:00"))
    alerts = [a for a in county.book.alerts.values() if a.rule == "complaint.overdue"]
    assert alerts == [alert] and alert.state == "open"


def test_an_acceptance_whose_new_date_has_not_passed_still_closes_the_alert(rules):
    state, _ = replay([REG, received("TS1"), tick("2026-06-10T08:00:00+08:00")], rules)
    state, effects = replay([accepted("TS1", "2026-04-08", at="2026-06-11T10:00:00+08:00")], rules, state)
    assert overdue(effects) == [] and [e.data["rule"] for e in effects if e.kind == RESOLVED_KIND] == ["complaint.overdue"]
    assert not [e for e in effects if e.kind == ALERT_KIND]


# --------------------------------------------------------------------------- 3, 4. a refused 投诉 has no 办结期限


def test_a_refused_complaint_has_no_due_date_nor_verdict(rules):
    state, _ = replay([REG, received("TS1"), accepted("TS1", "2026-03-24", decision="refused", reason="不属于本行政机关管辖")], rules)
    record = state.files[E].complaint("TS1")
    assert record.due_on is None and record.overdue_judged is None
    row = _row(state, now=dt.datetime(2026, 9, 1, tzinfo=UTC))
    assert (row["due_on"], row["overdue"], row["state"]) == (None, None, "refused")
    assert _table_overdue(state) == (None, None)
    state, _ = replay([resolved("TS1", "2026-05-20T10:00:00+08:00")], rules, state)
    record = state.files[E].complaint("TS1")
    assert record.due_on is None and record.overdue_judged is None and not record.overdue
    assert record.deadline_zh() == "不予受理后办结：2026-05-20 办结；不予受理（2026-03-24，理由：不属于本行政机关管辖）"
    row = _row(state, now=dt.datetime(2026, 9, 1, tzinfo=UTC))
    assert (row["due_on"], row["overdue"], row["state"], row["days"]) == (None, None, "resolved", 61)
    assert _table_overdue(state) == (None, None)
    report = build_report(state.files[E], rules)
    [c] = [c for c in report["complaints"] if c["complaint_id"] == "TS1"]
    assert (c["overdue"], c["due_on"]) == (None, "")


def test_a_refused_complaints_days_stop_at_the_refusal(rules):
    state, _ = replay([REG, received("TS1"), accepted("TS1", "2026-03-24", decision="refused", reason="不属于本行政机关管辖"),
                       received("TS2")], rules)
    now = dt.datetime(2026, 9, 1, tzinfo=UTC)
    assert _row(state, now=now)["days"] == 4  # 03-20 to the refusal on 03-24, not to 09-01
    assert _row(state, "TS2", now=now)["days"] == 165  # (open: to today)


def test_a_late_refusal_says_so_without_a_verdict(rules):
    state, _ = replay([REG, received("TS1"), tick("2026-04-02T08:00:00+08:00"),
                       accepted("TS1", "2026-04-01", decision="refused", reason="超过法定投诉时效"),
                       resolved("TS1", "2026-04-10T10:00:00+08:00")], rules)
    said = state.files[E].complaint("TS1").deadline_zh()
    assert said.startswith("不予受理后办结：2026-04-10 办结；不予受理（2026-04-01，理由：超过法定投诉时效）；超过受理期限")
    assert "按期" not in said and "超期办结" not in said


# --------------------------------------------------------------------------- 5. a conclusion with no decision


def test_a_conclusion_closing_an_acceptance_chase_says_no_decision_was_reported(rules):
    state, _ = replay([REG, received("TS1"), tick("2026-04-02T08:00:00+08:00")], rules)
    state, effects = replay([resolved("TS1", "2026-04-20T10:00:00+08:00")], rules, state)
    [closed] = [e for e in effects if e.kind == RESOLVED_KIND and e.data["rule"] == "complaint.overdue"]
    assert closed.data["note_zh"] == "投诉 TS1 已于 2026-04-20 办结（未报受理决定），预警自动关闭"
    assert "no acceptance decision reported" in closed.data["note_en"]
    # said overdue with no decision on file, and nothing since says otherwise: it stays so
    assert limits(state) == [("accept", D("2026-03-31"), True), ("mediate", D("2026-06-05"), False)]
    assert state.files[E].complaint("TS1").deadline_zh().endswith("；超过受理期限仍未报受理决定")
    # a decision reported after the conclusion judges it afresh
    state, _ = replay([accepted("TS1", "2026-03-27", at="2026-04-21T10:00:00+08:00")], rules, state)
    assert limits(state)[0] == ("accept", D("2026-03-31"), False)


def test_a_conclusion_with_no_decision_never_chased_still_cannot_say(rules):
    state, _ = replay([REG, received("TS1"), resolved("TS1", "2026-04-20T10:00:00+08:00")], rules)
    assert limits(state)[0] == ("accept", D("2026-03-31"), None)


# --------------------------------------------------------------------------- 6. 受理 is the decision; a receipt is 收到 / 登记


def test_a_receipt_is_said_as_received_not_accepted(rules):
    from dashboards.boards import COMPLAINTS_BY_CATEGORY
    from dashboards.boards import EVENT_TYPE_ZH as BOARD_ZH
    from alerts.messages import _KIND_ZH
    from schemas.events import EVENT_TYPE_ZH

    assert EVENT_TYPE_ZH["complaint.received"] == BOARD_ZH["complaint.received"] == "投诉登记"
    assert "AS `收到`" in COMPLAINTS_BY_CATEGORY and "AS `受理`" not in COMPLAINTS_BY_CATEGORY
    assert "受理记录" not in _KIND_ZH["complaint.unknown_resolved"]
    state, _ = replay([REG, received("TS1")], rules)
    _, _, headers = complaint_sheet([_row(state)], 8)
    assert headers["received_at"].startswith("收到时间") and "收到日" in headers["days"]
    _, effects = replay([received("TS1", at="2026-03-20T11:00:00+08:00")], rules, state)
    [again] = [e for e in effects if e.kind == "complaint.repeated"]
    assert "已登记（事件" in again.data["message_zh"] and "受理" not in again.data["message_zh"]
    _, effects = replay([resolved("TS9", "2026-04-20T10:00:00+08:00")], rules, state)
    [waiting] = [e for e in effects if e.kind == "complaint.unknown_resolved"]
    assert "尚无登记记录" in waiting.data["message_zh"]
