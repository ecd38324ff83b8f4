"""The statutory time limits of complaints and reports (投诉举报办理时限), on the working-day calendar.

投诉 (《市场监督管理投诉举报处理暂行办法》): accepted or not within 7 working days of receipt, mediation ended within 45
working days of acceptance.  举报 (《市场监督管理行政处罚程序规定》): checked and the decision whether to open a case made
within 15 working days of receipt, 15 more with the head's approval.  The bureau's own lateness: said, listed, told to
the town, never a risk point against the enterprise."""
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
from qrisk.registers import COMPLAINT_COLUMNS, complaint_rows, complaint_sheet
from schemas.policy import Policy
from schemas.upcast import parse_event
from schemas.working_days import add_working_days, load_calendar, working_days_between
from tests.conftest import golden

D = dt.date.fromisoformat
E = "E-330110-001"
REG = parse_event(golden("enterprise.registered"))


def _id() -> str:
    return str(uuid.uuid4())


def received(cid: str, at: str, kind: str | None = None, **payload):
    doc = golden("complaint.received")
    doc["event_id"], doc["occurred_at"] = _id(), at
    doc["payload"].update(complaint_id=cid, **payload)
    if kind is not None:
        doc["payload"]["kind"] = kind
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


def withdrawn(cid: str, at: str):
    doc = golden("complaint.withdrawn")
    doc["event_id"], doc["occurred_at"] = _id(), at
    doc["payload"].update(complaint_id=cid)
    return parse_event(doc)


def overdue(effects):
    return [e for e in effects if e.kind == "complaint.overdue"]


def alerts(effects, rule="complaint.overdue"):
    return [e for e in effects if e.kind == ALERT_KIND and e.data["rule"] == rule]


@pytest.fixture(scope="module")
def calendar():
    return load_calendar()


# --------------------------------------------------------------------------- 1. the calendar's due dates


def test_a_due_date_across_the_spring_festival_skips_its_holidays_and_counts_its_working_saturday(calendar):
    # 2026: 02-15 to 02-23 off; Saturday 02-14 worked.  Tuesday 02-10 + 7: 11, 12, 13, 14 (Sat), 24, 25, 26
    due = add_working_days(calendar, D("2026-02-10"), 7)
    assert due.on == D("2026-02-26") and not due.estimate
    # 2025: 01-28 to 02-04 off; Sunday 01-26 and Saturday 02-08 worked.  Friday 01-24 + 3: 26 (Sun), 27, 02-05
    assert add_working_days(calendar, D("2025-01-24"), 3).on == D("2025-02-05")
    # it is the inverse of counting: the due date is the limit's last working day
    for start, n in [("2026-02-10", 7), ("2026-03-20", 52), ("2025-09-26", 15), ("2024-02-08", 15)]:
        due = add_working_days(calendar, D(start), n).on
        assert working_days_between(calendar, D(start), due).days == n and calendar.is_working_day(due)
    assert add_working_days(calendar, D("2026-02-10"), 0).on == D("2026-02-10")


def test_a_due_date_in_a_year_the_calendar_does_not_hold_is_an_estimate(calendar):
    due = add_working_days(calendar, D("2027-12-20"), 10)
    # 元旦 2028 is a Saturday, made up (补假) on Monday 01-03: the 10th working day is 01-04
    assert due.on == D("2028-01-04") and due.estimate and due.uncovered_years == (2027, 2028)
    with pytest.raises(ValueError):
        add_working_days(calendar, D("2026-01-05"), -1)


# --------------------------------------------------------------------------- 2. the door


def test_kind_defaults_to_complaint_and_a_bad_kind_or_acceptance_date_is_refused_naming_the_field(rules):
    assert received("TS1", "2026-03-02T10:00:00+08:00").payload.kind == "complaint"  # (an old payload stays valid)
    doc = golden("complaint.received")
    doc["payload"]["kind"] = "咨询"
    _, [bad] = decode_body(json.dumps(doc, ensure_ascii=False).encode())
    assert [e["field"] for e in bad.errors] == ["payload.kind"]
    doc = golden("complaint.resolved")
    doc["payload"]["accepted_on"] = "2026-03-28"  # after the conclusion (2026-03-27 local)
    _, [bad] = decode_body(json.dumps(doc, ensure_ascii=False).encode())
    [error] = bad.errors
    assert error["field"] == "payload.accepted_on" and "受理日期 2026-03-28 晚于办结时间 2026-03-27" in error["reason_zh"]
    doc = golden("complaint.resolved")
    doc["payload"]["extended"] = "yes"
    _, [bad] = decode_body(json.dumps(doc, ensure_ascii=False).encode())
    assert [e["field"] for e in bad.errors] == ["payload.extended"]


# --------------------------------------------------------------------------- 3. the fold


def test_an_open_report_past_its_15_working_days_is_said_once_per_limit_and_alerts_the_town_low(rules):
    # received Thursday 2026-02-12: 15 working days across the Spring Festival end 2026-03-11 (Saturdays 02-14 and
    # 02-28 worked, 02-15 to 02-23 off); with the extension, 30 end 2026-04-01
    state, effects = replay([REG, received("JB1", "2026-02-12T10:00:00+08:00", kind="report")], rules)
    record = state.files[E].complaint("JB1")
    assert [(lim.limit, lim.due_on) for lim in record.limits] == [("check", D("2026-03-11")), ("extended", D("2026-04-01"))]
    assert state.files[E].complaints_due_next == D("2026-03-11")
    _, effects = replay([tick("2026-03-11T23:00:00+08:00")], rules, state)
    assert overdue(effects) == []  # (its last day is still in time)
    _, effects = replay([tick("2026-03-13T08:00:00+08:00")], rules, state)
    [said] = overdue(effects)
    assert said.data["limit"] == "check" and said.data["due_on"] == "2026-03-11" and said.data["working_days_over"] == 2
    assert said.data["message_zh"].startswith("举报 JB1（2026-02-12 收到，12315）已超过核查期限（收到之日起 15 个工作日内核查并决定是否立案）：期限 2026-03-11")
    assert "不计入企业风险分" in said.data["message_zh"] and "extended" in said.data["message_zh"]
    [alert] = alerts(effects)
    assert alert.data["severity"] == "low" and "举报 JB1" in alert.data["message_zh"] and "举报人" in alert.data["message_zh"]
    _, effects = replay([tick("2026-03-20T08:00:00+08:00")], rules, state)
    assert overdue(effects) == []  # once per limit
    _, effects = replay([tick("2026-04-01T20:00:00+08:00")], rules, state)
    assert overdue(effects) == []
    _, effects = replay([tick("2026-04-02T08:00:00+08:00")], rules, state)
    assert [e.data["limit"] for e in overdue(effects)] == ["extended"]
    assert state.files[E].complaints_due_next is None
    # the bureau's lateness, not the producer's: the grade's inputs do not move
    graded = [e for e in effects if e.kind == "risk.graded"]
    assert graded == []
    # the conclusion closes the alert, and the record says 超期办结
    _, effects = replay([resolved("JB1", "2026-04-03T16:00:00+08:00")], rules, state)
    [closed] = [e for e in effects if e.kind == RESOLVED_KIND and e.data["rule"] == "complaint.overdue"]
    assert "超期办结" in closed.data["note_zh"]
    record = state.files[E].complaint("JB1")
    assert record.concluded_on == D("2026-04-03") and [lim.overdue for lim in record.limits] == [True, True]


def test_an_extended_report_concluded_within_30_is_in_time_and_a_plain_one_is_late(rules):
    state, _ = replay([REG, received("JB1", "2026-02-12T10:00:00+08:00", kind="report"), received("JB2", "2026-02-12T10:00:00+08:00", kind="report"),
                       resolved("JB1", "2026-03-20T10:00:00+08:00", extended=True), resolved("JB2", "2026-03-20T10:00:00+08:00")], rules)
    f = state.files[E]
    assert [lim.overdue for lim in f.complaint("JB1").limits] == [False, False]
    assert [lim.overdue for lim in f.complaint("JB2").limits] == [True, False]
    assert f.complaint("JB2").overdue and not f.complaint("JB1").overdue


def test_a_complaint_is_chased_on_the_mediation_limit_and_judged_on_its_acceptance_when_concluded(rules):
    # a county whose system sends no acceptance decisions (complaint.accepted: tests/test_complaint_accepted.py)
    rules = Rules(catalogue=rules.catalogue, policy=Policy.model_validate({"complaint_deadlines": {"complaint": {"chase_acceptance": False}}}))
    # received Friday 2026-03-20: accepted by 03-31 (7), mediated by 06-05 (7 + 45, acceptance unknown while open)
    state, effects = replay([REG, received("TS1", "2026-03-20T10:00:00+08:00")], rules)
    record = state.files[E].complaint("TS1")
    assert [(lim.limit, lim.due_on, lim.overdue) for lim in record.limits] == [
        ("accept", D("2026-03-31"), None), ("mediate", D("2026-06-05"), False)]
    # past the 7 days: qrisk does not hear of the acceptance before the conclusion, so it chases nothing yet (chase_acceptance off)
    _, effects = replay([tick("2026-04-15T08:00:00+08:00")], rules, state)
    assert overdue(effects) == []
    _, effects = replay([tick("2026-06-08T08:00:00+08:00")], rules, state)
    [said] = overdue(effects)
    assert said.data["limit"] == "mediate" and "未报受理日期" in said.data["message_zh"]
    # accepted late (04-02 > 03-31), concluded on the last of 45 after it (04-02 + 45 = 06-09): 受理超期, mediation in time
    state, _ = replay([resolved("TS1", "2026-06-09T10:00:00+08:00", accepted_on="2026-04-02")], rules, state)
    record = state.files[E].complaint("TS1")
    assert [(lim.limit, lim.due_on, lim.overdue) for lim in record.limits] == [
        ("accept", D("2026-03-31"), True), ("mediate", D("2026-06-09"), False)]


def test_a_complaint_concluded_within_its_7_days_met_them_and_one_concluded_later_without_acceptance_date_cannot_say(rules):
    state, _ = replay([REG, received("TS1", "2026-03-20T10:00:00+08:00"), resolved("TS1", "2026-03-25T10:00:00+08:00"),
                       received("TS2", "2026-03-20T10:00:00+08:00"), resolved("TS2", "2026-04-20T10:00:00+08:00")], rules)
    f = state.files[E]
    assert [lim.overdue for lim in f.complaint("TS1").limits] == [False, False]
    assert [lim.overdue for lim in f.complaint("TS2").limits] == [None, False]


def test_a_conclusion_before_its_complaint_and_any_order_give_the_same_record(rules):
    events = [REG, received("JB1", "2026-02-12T10:00:00+08:00", kind="report"), resolved("JB1", "2026-04-03T16:00:00+08:00"),
              received("TS1", "2026-03-20T10:00:00+08:00"), resolved("TS1", "2026-07-01T10:00:00+08:00", accepted_on="2026-03-23"),
              resolved("TS1", "2026-07-09T10:00:00+08:00", accepted_on="2026-03-23", verified=True),
              tick("2026-08-01T00:00:00+08:00")]
    state, _ = replay(events, rules)
    def kept(state):
        f = state.files[E]
        return f.complaints_due_next, sorted(((c.complaint_id, c.concluded_on, c.model_dump(include={"limits"})) for c in f.complaints),
                                             key=lambda x: x[0])

    want = kept(state)
    for seed in range(6):
        shuffled = events[1:-1]
        random.Random(seed).shuffle(shuffled)
        other, _ = replay([REG, *shuffled, events[-1]], rules)
        assert kept(other) == want
    jb1, ts1 = state.files[E].complaint("JB1"), state.files[E].complaint("TS1")
    assert jb1.overdue and jb1.concluded_on == D("2026-04-03")
    # concluded first on 07-01 (a revision later does not move 办结): 03-23 + 45 = 06-01, late
    assert ts1.concluded_on == D("2026-07-01") and [lim.overdue for lim in ts1.limits] == [False, True]


def test_a_withdrawn_complaint_stops_its_clocks_and_closes_its_alert(rules):
    state, effects = replay([REG, received("JB1", "2026-02-12T10:00:00+08:00", kind="report"), tick("2026-03-12T08:00:00+08:00")], rules)
    assert len(alerts(effects)) == 1
    _, effects = replay([withdrawn("JB1", "2026-03-13T09:00:00+08:00")], rules, state)
    assert [e for e in effects if e.kind == RESOLVED_KIND and e.data["rule"] == "complaint.overdue"]
    _, effects = replay([tick("2026-05-01T08:00:00+08:00")], rules, state)
    assert overdue(effects) == [] and state.files[E].complaints_due_next is None


def test_the_check_is_off_with_the_policy_and_the_fold_version_moved(rules):
    off = Rules(catalogue=rules.catalogue, policy=Policy.model_validate({"complaint_deadlines": {"enabled": False}}))
    state, effects = replay([REG, received("JB1", "2026-02-12T10:00:00+08:00", kind="report"), tick("2026-06-01T08:00:00+08:00")], off)
    assert overdue(effects) == [] and state.files[E].complaint("JB1").limits == []
    assert FOLD_VERSION >= 45  # (later versions keep what 45 brought)


# --------------------------------------------------------------------------- 4. what people see


def _concluded_late(rules):
    return replay([REG, received("JB1", "2026-02-12T10:00:00+08:00", kind="report"), resolved("JB1", "2026-04-03T16:00:00+08:00"),
                   received("TS1", "2026-03-20T10:00:00+08:00")], rules)[0]


def test_the_register_shows_kind_due_date_and_overdue_in_chinese(rules):
    state = _concluded_late(rules)
    rows = complaint_rows([state.files[E].view()], dt.datetime(2026, 4, 10, tzinfo=dt.timezone.utc))
    by = {r["complaint_id"]: r for r in rows}
    assert set(COMPLAINT_COLUMNS) <= set(by["JB1"])
    assert (by["JB1"]["kind_zh"], by["JB1"]["due_on"], by["JB1"]["overdue"]) == ("举报", "2026-03-11", True)
    assert by["JB1"]["deadline_zh"].startswith("超期办结")
    assert (by["TS1"]["kind_zh"], by["TS1"]["due_on"], by["TS1"]["overdue"]) == ("投诉", "2026-06-05", False)
    assert by["TS1"]["deadline_zh"].startswith("办理中")
    people, columns, headers = complaint_sheet(rows, 8)
    assert headers["kind"] == "诉求类型" and headers["due_on"] == "办结期限" and "deadline_zh" in columns


def test_the_credit_report_says_kind_and_late_conclusion(rules):
    state = _concluded_late(rules)
    report = build_report(state.files[E], rules)
    [jb1] = [c for c in report["complaints"] if c["complaint_id"] == "JB1"]
    assert jb1["kind_zh"] == "举报" and jb1["due_on"] == "2026-03-11" and jb1["deadline_zh"].startswith("超期办结")
    text = render_text(report)
    assert "超期办结" in text and "举报" in text
    assert "（其中举报 1 件）；办理超期 1 件（超期办结 1 件、超期未办结 0 件，属监管部门办理时限，不计入风险分）" in text


# --------------------------------------------------------------------------- 5. the 12315 export


def test_the_12315_export_carries_kind_acceptance_and_extension_and_an_older_export_reads_as_before(tmp_path, rules):
    from tests.test_mapping import MAPPINGS, _mapped_at, events

    (tmp_path / "enterprises.example.csv").write_text("名称,企业编号\n清源桶装水厂,E-330110-001\n", encoding="utf-8")
    (tmp_path / "complaints.yaml").write_text((MAPPINGS / "complaints.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    export = tmp_path / "c.csv"
    export.write_text(
        "投诉编号,诉求类型,被投诉企业,登记时间,来源渠道,问题类别,投诉内容,涉及产品,核查结果,受理时间,是否延期,办结时间\n"
        "TS1,投诉,清源桶装水厂,2026-03-20 09:00,12315,异物,水里有虫,桶装水,不属实,2026-03-23,,2026-04-20 16:00\n"
        "JB1,举报,清源桶装水厂,2026-02-12 09:00,12315,卫生,灌装间无消毒记录,桶装水,属实,,是,2026-03-20 16:00\n"
        "JB2,咨询,清源桶装水厂,2026-02-12 09:00,12315,卫生,灌装间无消毒记录,桶装水,,,,\n", encoding="utf-8")
    rows = list(_mapped_at(tmp_path / "complaints.yaml", export))
    [(pos, kind, reason)] = [r for r in rows if r[1] != "event"]
    assert pos.endswith(":4") and "咨询" in reason  # (a kind it does not know is refused, named)
    evs = events(rows)
    got = {(e.event_type, e.payload.complaint_id): e.payload for e in evs}
    assert got[("complaint.received", "TS1")].kind == "complaint" and got[("complaint.received", "JB1")].kind == "report"
    assert got[("complaint.resolved", "TS1")].accepted_on == D("2026-03-23") and got[("complaint.resolved", "JB1")].extended is True
    state, _ = replay([REG, *evs], rules)
    assert [lim.overdue for lim in state.files[E].complaint("JB1").limits] == [False, False]  # extended: in time
    # an export without the columns maps as it always did: no kind in the payload (the default), the same content
    old = tmp_path / "old.csv"
    old.write_text("投诉编号,被投诉企业,登记时间,来源渠道,问题类别,投诉内容,涉及产品,核查结果\n"
                   "TS1,清源桶装水厂,2026-03-20 09:00,12315,异物,水里有虫,桶装水,不属实\n", encoding="utf-8")
    docs = events(list(_mapped_at(tmp_path / "complaints.yaml", old)))
    assert len(docs) == 2 and all(not {"kind", "accepted_on", "extended"} & e.payload.model_fields_set for e in docs)
    assert docs[0].payload.kind == "complaint"


def test_the_overdue_alert_reads_in_chinese_with_its_complaint_and_due_date(rules):
    """The alert stage's side: the rule's title, the evidence line a supervisor acts on, a rectification order citing
    the complaint number links to it, and the conclusion closes it."""
    from alerts.lifecycle import evidence_zh
    from alerts.messages import RULE_ZH, title_zh
    from tests.test_alerts import County, policy

    county = County(rules, policy())
    county.feed(REG, received("JB1", "2026-02-12T10:00:00+08:00", kind="report"))
    county.feed(tick("2026-03-13T08:00:00+08:00"))
    [alert] = [a for a in county.book.alerts.values() if a.rule == "complaint.overdue"]
    assert RULE_ZH[alert.rule] == "投诉举报办理超期" and title_zh("complaint.overdue").startswith("投诉举报办理超期")
    assert evidence_zh(alert) == "举报 JB1，期限 2026-03-11，已超过 2 个工作日"
    assert alert.severity == "low" and alert.state == "open"
    county.feed(resolved("JB1", "2026-03-16T16:00:00+08:00"))
    assert alert.state == "closed"
