"""A deadline moved off a holiday, said the same everywhere.  FOLD_VERSION 74 began ending a rectification deadline,
a 重新限期 and an interview's follow-up date that fall on a weekend or statutory holiday on the next working day
(民法典 第二百零三条), in the fold's overdue marks and in the alerts; but the demo summary still counted 逾期 8 天 from
2026-10-01 where the alert said 逾期 1 天 from 10-08, the campaign's 滞后原因 said only 期限 2026-10-01, a move resting
on the estimate of a year the calendar lacks (2027) was not said to be 估算, and no JSON field a client reads gave the
day the deadline ends."""
from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from processors.campaign import lag_reasons
from processors.step import replay
from processors.warnings import ALERT_KIND
from qrisk.credit_report import build_report
from qrisk.demo import render_text, summarise
from tests.services import clickhouse_url, drop_database, fresh_database_url, store  # noqa: F401 - fixtures
from tests.test_calendar_year_end import E, ev, tick

PERIOD = (dt.date(2026, 9, 1), dt.date(2026, 10, 31))
ESTIMATE = "含工作日历未收录的年份，按周一至周五（除元旦、劳动节、国庆节法定日期及其补假）估算"


def _registered():
    return ev("enterprise.registered", "2026-09-01T09:00:00+08:00")


def _ordered(deadline: str = "2026-10-01", at: str = "2026-09-20T10:00:00+08:00"):
    return ev("rectification.ordered", at, rectification_id="ZG-GQ-01", deadline=deadline, cause="检查 JC-0920")


def _interview(follow_up_by: str = "2026-10-01", at: str = "2026-09-10T10:00:00+08:00"):
    return ev("interview.held", at, held_on=at[:10], follow_up_by=follow_up_by)


def _redone():
    """Ordered by Thursday 09-24 (the Friday is 中秋), completed in time, rejected on 09-28 with a 重新限期 of 10-01 (国庆), not redone."""
    return [_registered(), _ordered("2026-09-24"),
            ev("rectification.completed", "2026-09-23T16:00:00+08:00", rectification_id="ZG-GQ-01"),
            ev("rectification.verified", "2026-09-28T10:00:00+08:00", rectification_id="ZG-GQ-01", accepted=False,
               note="消毒记录仍不完整", new_deadline="2026-10-01")]


# --------------------------------------------------------------------------- the fold keeps the day


def test_the_credit_file_keeps_the_day_each_deadline_ends(rules):
    state, effects = replay(_redone() + [_interview(), tick("2026-10-09")], rules)
    [r] = state.files[E].rectifications
    assert (r.deadline, r.due_on, r.due_estimate) == (dt.date(2026, 9, 24), dt.date(2026, 9, 24), False)  # a working day: not moved
    assert (r.redo_deadline, r.redo_due_on, r.redo_due_estimate) == (dt.date(2026, 10, 1), dt.date(2026, 10, 8), False)
    assert r.overdue and r.overdue_from == dt.date(2026, 10, 8)
    [late] = [e for e in effects if e.kind == "rectification.overdue"]
    assert (late.data["days_overdue"], late.data["moved_to"]) == (1, "2026-10-08") and "moved_estimate" not in late.data
    [i] = state.files[E].interviews
    assert (i.follow_up_due_on, i.follow_up_due_estimate) == (dt.date(2026, 10, 8), False)
    # the file as a client reads it (view=file is its JSON)
    dumped = state.files[E].model_dump(mode="json")
    assert dumped["rectifications"][0]["redo_due_on"] == "2026-10-08" and dumped["interviews"][0]["follow_up_due_on"] == "2026-10-08"


def test_a_corrected_deadline_moves_its_day_too(rules):
    state, _ = replay([_registered(), _ordered("2026-09-30"), _ordered("2026-10-03", "2026-09-21T10:00:00+08:00")], rules)
    [r] = state.files[E].rectifications
    assert (r.deadline, r.due_on) == (dt.date(2026, 10, 3), dt.date(2026, 10, 8))


# --------------------------------------------------------------------------- 1. the demo summary


def test_the_demo_summary_counts_days_overdue_from_the_moved_day(rules):
    other = ev("rectification.ordered", "2026-10-09T10:00:00+08:00", rectification_id="ZG-1009", deadline="2026-10-30", cause="检查 JC-1009")
    events = [_registered(), _ordered(), _interview(), tick("2026-10-09"), other]
    state, effects = replay(events, rules)
    summary = summarise(state, events, effects, PERIOD)
    [row] = [r for r in summary["open_issues"]["rectifications"] if r["rectification_id"] == "ZG-GQ-01"]
    [late] = [e for e in effects if e.kind == "rectification.overdue"]
    # the summary as of 10-09 and the alert raised on 10-09 say the same: 1 day, from 10-08 (not 8, from 10-01)
    assert row["days_overdue"] == late.data["days_overdue"] == 1
    assert (row["deadline"], row["due_on"], row["deadline_zh"]) == ("2026-10-01", "2026-10-08", "2026-10-01（节假日顺延至 2026-10-08）")
    [interview] = summary["enforcement"]["interviews"]
    assert (interview["follow_up_by"], interview["follow_up_due_on"]) == ("2026-10-01", "2026-10-08")
    text = render_text(summary)
    assert "期限 2026-10-01（节假日顺延至 2026-10-08）（已逾期 1 天）" in text
    assert "跟踪期限 2026-10-01（节假日顺延至 2026-10-08）" in text


def test_the_demo_summary_counts_a_missed_redo_from_the_redo_deadline(rules):
    events = _redone() + [tick("2026-10-12")]
    state, effects = replay(events, rules)
    [row] = summarise(state, events, effects, PERIOD)["open_issues"]["rectifications"]
    # late by the 重新限期 (10-01, moved to 10-08), not by the first deadline (09-24) it met: 4 days, not 18
    assert row["days_overdue"] == 4
    assert row["deadline_zh"] == "2026-09-24（重新限期 2026-10-01（节假日顺延至 2026-10-08））"


# --------------------------------------------------------------------------- 2. the campaign's 滞后原因


def test_the_campaign_lag_reason_says_the_day_the_rectification_deadline_ends(rules):
    # a rectification in the campaign is the same 整改 (file.rectifications): its deadline moves as the alert's does
    state, _ = replay([_registered(), _ordered(), tick("2026-10-09")], rules)
    reasons = [r["text_zh"] for r in lag_reasons(state.files[E], rules.policy.campaign) if r["code"] == "rectification_overdue"]
    assert reasons and reasons[0].startswith("整改逾期未完成：ZG-GQ-01（期限 2026-10-01（节假日顺延至 2026-10-08），")
    state, _ = replay(_redone() + [tick("2026-10-12")], rules)
    [said] = [r["text_zh"] for r in lag_reasons(state.files[E], rules.policy.campaign) if r["code"] == "rectification_overdue"]
    assert "（重新限期 2026-10-01（节假日顺延至 2026-10-08），" in said


# --------------------------------------------------------------------------- 3. a move on the estimate says 估算


def test_a_deadline_moved_in_a_year_the_calendar_lacks_is_said_to_be_an_estimate(rules):
    events = [_registered(), _ordered("2027-01-01", "2026-12-01T10:00:00+08:00"),
              _interview("2027-01-01", "2026-12-02T10:00:00+08:00"), tick("2027-01-05")]
    state, effects = replay(events, rules)
    [alert] = [e for e in effects if e.kind == ALERT_KIND and e.data["rule"] == "rectification.overdue"]
    assert f"期限 2027-01-01（节假日顺延至 2027-01-04；{ESTIMATE}）" in alert.data["message_zh"]
    [late] = [e for e in effects if e.kind == "rectification.overdue"]
    assert (late.data["moved_to"], late.data["moved_estimate"], late.data["days_overdue"]) == ("2027-01-04", True, 1)
    [r] = state.files[E].rectifications
    assert (r.due_on, r.due_estimate) == (dt.date(2027, 1, 4), True)
    assert "moved to 2027-01-04; estimated" in alert.data["message_en"]
    assert alert.data["evidence"]["moved_estimate"] is True
    [follow] = [e for e in effects if e.kind == ALERT_KIND and e.data["rule"] == "interview.follow_up_overdue"]
    assert f"2027-01-01（节假日顺延至 2027-01-04；{ESTIMATE}）" in follow.data["message_zh"]
    report = build_report(state.files[E], rules)
    [row] = report["rectifications"]
    assert row["deadline"] == f"2027-01-01（节假日顺延至 2027-01-04；{ESTIMATE}）" and row["due_on"] == "2027-01-04"
    [interview] = report["interviews"]
    assert ESTIMATE in interview["follow_up_by"] and interview["follow_up_due_on"] == "2027-01-04"


def test_a_move_within_a_year_the_calendar_holds_is_no_estimate(rules):
    state, effects = replay([_registered(), _ordered(), tick("2026-10-09")], rules)
    [alert] = [e for e in effects if e.kind == ALERT_KIND and e.data["rule"] == "rectification.overdue"]
    assert "估算" not in alert.data["message_zh"] and "estimated" not in alert.data["message_en"]
    assert "估算" not in build_report(state.files[E], rules)["rectifications"][0]["deadline"]


# --------------------------------------------------------------------------- 4. what the API answers


@pytest.fixture
def api(store, rules, tmp_path):  # noqa: F811 - fixture
    from qrisk.api import create_app
    from qrisk.auth import KeyStore
    from qrisk.pipeline import Pipeline

    pipeline = Pipeline(store, rules, snapshot_every=dt.timedelta(days=1))
    pipeline.recover()
    keys = KeyStore(tmp_path / "keys.json")
    token = keys.create("admin", "admin", actor="tests")[1]
    with TestClient(create_app(pipeline, keys=keys)) as client:
        client.headers["authorization"] = f"Bearer {token}"
        client.pipeline = pipeline
        yield client


def test_the_credit_file_and_report_answer_the_day_a_deadline_ends(api):
    api.pipeline.submit(_redone() + [_interview(), tick("2026-10-12")])
    file = api.get(f"/v1/enterprises/{E}").json()
    [r] = file["rectifications"]
    assert (r["deadline"], r["due_on"], r["redo_deadline"], r["redo_due_on"]) == ("2026-09-24", "2026-09-24", "2026-10-01", "2026-10-08")
    assert r["overdue"] is True and r["redo_due_estimate"] is False
    assert file["interviews"][0]["follow_up_due_on"] == "2026-10-08"
    report = api.get(f"/v1/enterprises/{E}", params={"view": "report"}).json()
    [row] = report["rectifications"]
    assert (row["due_on"], row["redo_due_on"]) == ("2026-09-24", "2026-10-08")
    assert row["overdue_by"] == "2026-10-01（节假日顺延至 2026-10-08）"
    [interview] = report["interviews"]
    assert interview["follow_up_due_on"] == "2026-10-08"
