"""The year without a calendar, and deadlines on holidays.  Found by the bureau's statistician at year end
(2026-11-28): the packaged calendar had no 2027, nothing said so, a 举报 received 2026-12-24 read due 2027-01-14 (元旦
counted as a working day: a complaint.overdue alert a day early); a rectification due 2026-10-01 was 逾期 1 天 on
10-02 with a high alert and 整改逾期 points, the office closed until 10-08; and a 举报 due in 2026 read 估算 because an
extension not granted would have run into 2027."""
from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from processors.step import replay
from processors.warnings import ALERT_KIND
from qrisk.credit_report import build_report
from schemas.upcast import parse_event
from schemas.working_days import add_working_days, load_calendar, working_days_between
from tests.conftest import golden
from tests.services import clickhouse_url, drop_database, fresh_database_url, store  # noqa: F401 - fixtures

D = dt.date.fromisoformat
E = "E-330110-001"
CST = dt.timezone(dt.timedelta(hours=8))


def ev(event_type: str, at: str, **payload):
    doc = golden(event_type)
    doc["event_id"], doc["occurred_at"] = str(uuid.uuid4()), at
    doc["payload"].update(payload)
    return parse_event(doc)


def tick(day: str):
    return ev("clock.tick", f"{day}T09:00:00+08:00")


@pytest.fixture(scope="module")
def calendar():
    return load_calendar()


def _with_2027(tmp_path: Path):
    packaged = Path(__file__).resolve().parent.parent / "schemas" / "standards" / "calendar" / "working_days.yaml"
    doc = yaml.safe_load(packaged.read_text(encoding="utf-8"))
    doc["years"][2027] = {"source": "a test's notice", "verified": True,
                          "holidays": [{"name": "元旦", "from": dt.date(2027, 1, 1), "to": dt.date(2027, 1, 3)}]}
    path = tmp_path / "calendar.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return load_calendar(str(path))


# --------------------------------------------------------------------------- 1a. the estimate of a year not held


def test_a_report_received_on_christmas_eve_is_due_after_new_year_and_said_to_be_an_estimate(calendar):
    due = add_working_days(calendar, D("2026-12-24"), 15)
    assert due.on == D("2027-01-15") and due.estimate and due.uncovered_years == (2027,)
    # the fixed-date holidays of the 2024 revision are left out; the lunar ones and 调休 are not guessed
    assert not any(calendar.is_working_day(D(d)) for d in ("2027-01-01", "2027-10-01", "2028-05-01", "2028-05-02", "2028-10-03"))
    assert calendar.is_working_day(D("2027-02-08")) and calendar.is_working_day(D("2027-10-07"))  # (春节 2027, 国庆 week: unknown)
    # a year before the 2024 revision (劳动节 one day then) the calendar lacks stays Monday–Friday
    assert calendar.is_working_day(D("2023-05-02"))


def test_a_fixed_date_holiday_on_a_weekend_is_made_up_on_the_next_weekday_not_off(calendar):
    """《全国年节及纪念日放假办法》 第六条: a holiday of all citizens on a Saturday or Sunday is made up (补假) on a working day."""
    from schemas.working_days import estimated_days_off, period_end

    # 2027: 劳动节 Saturday and Sunday -> Monday 3 and Tuesday 4 May; 国庆节 Friday to Sunday -> Monday 4, Tuesday 5 Oct
    for last_day, ends in (("2027-05-01", "2027-05-05"), ("2027-05-02", "2027-05-05"), ("2027-10-01", "2027-10-06"),
                           ("2027-10-03", "2027-10-06"), ("2028-01-01", "2028-01-04")):  # (2028 元旦 Saturday -> Monday 3)
        moved = period_end(calendar, D(last_day))
        assert (moved.on, moved.estimate) == (D(ends), True), last_day
    assert estimated_days_off(2027) == frozenset(map(D, ("2027-01-01", "2027-05-03", "2027-05-04", "2027-10-01", "2027-10-04", "2027-10-05")))
    # 国庆节 from a Sunday: Monday and Tuesday are holidays already, so Sunday's 补假 is Wednesday 4 October (2028)
    assert {d for d in estimated_days_off(2028) if d.month == 10} == set(map(D, ("2028-10-02", "2028-10-03", "2028-10-04")))
    # a limit of working days skips them too: from Wednesday 2027-04-28, the 3rd working day is 04-29, 04-30, then 05-05
    due = add_working_days(calendar, D("2027-04-28"), 3)
    assert due.on == D("2027-05-05") and working_days_between(calendar, D("2027-04-28"), D("2027-05-05")).days == 3
    # a held year keeps its notice, and before the 2024 revision nothing is made up
    assert calendar.is_working_day(D("2026-05-04")) is False and estimated_days_off(2024) == frozenset()


def test_counting_and_due_dates_agree_with_the_working_days_across_years_not_held(calendar):
    start = D("2026-11-01")
    for offset in range(0, 900, 7):
        first = start + dt.timedelta(days=offset)
        for n in (1, 5, 15, 45):
            due = add_working_days(calendar, first, n).on
            assert calendar.is_working_day(due) and working_days_between(calendar, first, due).days == n, (first, n)
        end = first + dt.timedelta(days=200)
        walked = sum(calendar.is_working_day(first + dt.timedelta(days=i)) for i in range(1, 201))
        assert working_days_between(calendar, first, end).days == walked, first


# --------------------------------------------------------------------------- 1b. said at start and on /healthz


def test_a_start_late_in_the_year_warns_that_next_years_calendar_is_missing(rules, tmp_path, capsys):
    from qrisk.runtime import calendar_missing_years, calendar_warning

    now = dt.datetime(2026, 11, 28, 10, 0, tzinfo=CST)
    assert calendar_missing_years(rules, now) == [2027]
    said = calendar_warning(rules, now)
    assert said is not None and said.startswith("警告：工作日历未收录 2027 年（国务院办公厅放假安排通知）")
    assert "按周一至周五（除元旦、劳动节、国庆节法定日期及其补假）估算" in said and "QRISK_CALENDAR_FILE" in said
    # a 投诉 received 2026-10-25 may be accepted in 7 working days and mediated in 45 more: into January 2027
    from qrisk.runtime import calendar_ahead_days
    from schemas.working_days import add_working_days as add

    late_october = dt.datetime(2026, 10, 25, 10, 0, tzinfo=CST)
    assert add(rules.calendar, D("2026-10-25"), 7 + 45).on.year == 2027
    assert calendar_missing_years(rules, late_october) == [2027] and calendar_warning(rules, late_october) is not None
    # the look-ahead follows the policy: a county mediating in 120 working days is warned earlier
    longer = rules.policy.model_copy(update={"complaint_deadlines": rules.policy.complaint_deadlines.model_copy(
        update={"complaint": rules.policy.complaint_deadlines.complaint.model_copy(update={"mediate_working_days": 120})})})
    assert calendar_ahead_days(rules.policy) == 87 and calendar_ahead_days(longer) == -(-127 * 7 // 5) + 14
    assert calendar_missing_years(dataclasses.replace(rules, policy=longer), dt.datetime(2026, 8, 1, tzinfo=CST)) == [2027]
    # two months earlier nothing runs into 2027 yet; with the notice added there is nothing to say
    assert calendar_warning(rules, dt.datetime(2026, 9, 28, 10, 0, tzinfo=CST)) is None
    held = dataclasses.replace(rules, calendar=_with_2027(tmp_path))
    assert calendar_warning(held, now) is None and calendar_missing_years(held, now) == []

    from qrisk.cli import _say_recovered

    start = SimpleNamespace(migrations_applied=[], recovery={}, state=SimpleNamespace(files={}), rules=rules, clock=lambda: now)
    _say_recovered(start)
    assert "qrisk: 警告：工作日历未收录 2027 年" in capsys.readouterr().err
    _say_recovered(SimpleNamespace(**{**vars(start), "rules": held}))
    assert "工作日历未收录" not in capsys.readouterr().err


def test_healthz_names_the_missing_year_and_stays_ok(store, rules, tmp_path):  # noqa: F811 - fixture
    from fastapi.testclient import TestClient

    from qrisk.api import create_app
    from qrisk.auth import KeyStore
    from qrisk.pipeline import Pipeline

    now = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.timezone.utc)
    pipeline = Pipeline(store, rules, clock=lambda: now, snapshot_every=dt.timedelta(days=1))
    pipeline.recover()
    with TestClient(create_app(pipeline, keys=KeyStore(tmp_path / "keys.json"))) as client:
        health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["calendar"] == {"missing_years": [2027]}
    pipeline.rules = dataclasses.replace(rules, calendar=_with_2027(tmp_path))
    with TestClient(create_app(pipeline, keys=KeyStore(tmp_path / "keys.json"))) as client:
        assert "calendar" not in client.get("/healthz").json()


# --------------------------------------------------------------------------- 2. deadlines on a holiday


def _ordered(deadline: str = "2026-10-01"):
    return ev("rectification.ordered", "2026-09-20T10:00:00+08:00", rectification_id="ZG-GQ-01", deadline=deadline, cause="检查 JC-0920")


def test_a_rectification_due_on_national_day_is_not_overdue_until_the_office_reopens(rules):
    base = [ev("enterprise.registered", "2026-09-01T09:00:00+08:00"), _ordered()]
    holiday = [tick(f"2026-10-{d:02d}") for d in range(2, 9)]
    state, effects = replay(base + holiday, rules)
    assert [e for e in effects if e.kind in ("rectification.overdue", ALERT_KIND) and "rectification" in str(e.data.get("rule", e.kind))] == []
    f = state.files[E]
    assert f.counts.rectifications_overdue == 0 and not f.rectifications[0].overdue
    # the 10-09 tick without a completion: late by one day, counted from 10-08
    state, effects = replay(base + holiday + [tick("2026-10-09")], rules)
    [late] = [e for e in effects if e.kind == "rectification.overdue"]
    assert (late.data["deadline"], late.data["moved_to"], late.data["days_overdue"]) == ("2026-10-01", "2026-10-08", 1)
    [alert] = [e for e in effects if e.kind == ALERT_KIND and e.data["rule"] == "rectification.overdue"]
    assert "期限 2026-10-01（节假日顺延至 2026-10-08）" in alert.data["message_zh"] and "逾期 1 天" in alert.data["message_zh"]
    assert "moved to 2026-10-08" in alert.data["message_en"]
    # the credit report shows the day it ends
    [row] = build_report(state.files[E], rules)["rectifications"]
    assert row["deadline"] == "2026-10-01（节假日顺延至 2026-10-08）"
    # completed on the day the office reopened: in time, whatever tick came before
    state, effects = replay(base + [ev("rectification.completed", "2026-10-08T16:00:00+08:00", rectification_id="ZG-GQ-01"),
                                     tick("2026-10-12")], rules)
    assert not state.files[E].rectifications[0].overdue and not [e for e in effects if e.kind == "rectification.overdue"]


def test_a_deadline_on_a_working_day_is_not_moved(rules):
    state, effects = replay([ev("enterprise.registered", "2026-09-01T09:00:00+08:00"), _ordered("2026-09-30"), tick("2026-10-09")], rules)
    [late] = [e for e in effects if e.kind == "rectification.overdue"]
    assert late.data["days_overdue"] == 9 and "moved_to" not in late.data
    [row] = build_report(state.files[E], rules)["rectifications"]
    assert row["deadline"] == "2026-09-30"


def test_an_interview_follow_up_due_on_a_holiday_runs_to_the_next_working_day(rules):
    held = ev("interview.held", "2026-09-10T10:00:00+08:00", held_on="2026-09-10", follow_up_by="2026-10-01")
    base = [ev("enterprise.registered", "2026-09-01T09:00:00+08:00"), held]
    _, effects = replay(base + [tick("2026-10-08")], rules)
    assert not [e for e in effects if e.kind == "interview.follow_up_overdue"]
    _, effects = replay(base + [tick("2026-10-09")], rules)
    [late] = [e for e in effects if e.kind == "interview.follow_up_overdue"]
    assert (late.data["days_overdue"], late.data["moved_to"]) == (1, "2026-10-08")
    [alert] = [e for e in effects if e.kind == ALERT_KIND and e.data["rule"] == "interview.follow_up_overdue"]
    assert "2026-10-01（节假日顺延至 2026-10-08）" in alert.data["message_zh"]
    # an inspection on the day the office reopened followed it up in time
    state, _ = replay(base + [ev("inspection.completed", "2026-10-08T10:00:00+08:00", inspection_id="JC-1008", result="符合")], rules)
    [interview] = state.files[E].interviews
    assert interview.follow_up_inspection_id == "JC-1008" and not interview.follow_up_overdue


# --------------------------------------------------------------------------- 3. the caveat of the limits shown


def test_a_report_due_in_2026_is_no_estimate_until_its_extension_reaches_2027(rules):
    reg = ev("enterprise.registered", "2026-09-01T09:00:00+08:00")
    got = ev("complaint.received", "2026-11-25T10:00:00+08:00", complaint_id="TS-1125", kind="report")
    state, _ = replay([reg, got, tick("2026-12-01")], rules)
    record = state.files[E].complaint("TS-1125")
    assert record.due_on.year == 2026 and record.limit("extended").estimate  # (the extension, if granted, runs into 2027)
    assert "估算" not in record.deadline_zh() and record.deadline_zh().startswith("办理中")
    # the complaints table's estimate column (what the boards' 其中估算 counts) is the caveat the register shows
    from qrisk.pipeline import COMPLAINT_TABLE_COLUMNS, complaint_table_rows
    [row] = complaint_table_rows(state.files[E], {"TS-1125"}, 1)
    assert record.estimate is False and dict(zip(COMPLAINT_TABLE_COLUMNS, row))["estimate"] == 0
    # concluded within its 15 days: nothing shown rests on 2027
    done = ev("complaint.resolved", "2026-12-10T10:00:00+08:00", complaint_id="TS-1125", verified=False)
    state, _ = replay([reg, got, done], rules)
    assert "估算" not in state.files[E].complaint("TS-1125").deadline_zh()
    # with the head's approval the limit shown is the extended one, in 2027: an estimate
    extended = ev("complaint.resolved", "2027-01-05T10:00:00+08:00", complaint_id="TS-1125", verified=False, extended=True)
    state, _ = replay([reg, got, extended], rules)
    record = state.files[E].complaint("TS-1125")
    assert record.due_on.year == 2027 and "估算" in record.deadline_zh() and record.estimate is True


def test_period_end_moves_a_weekend_and_a_holiday_and_keeps_a_working_day(calendar):
    from schemas.working_days import period_end

    assert period_end(calendar, D("2026-10-01")).on == D("2026-10-08")
    assert period_end(calendar, D("2026-06-20")).on == D("2026-06-22")  # a Saturday
    assert period_end(calendar, D("2026-10-10")).on == D("2026-10-10")  # a working Saturday (调休)
    moved = period_end(calendar, D("2027-01-01"))
    assert moved.on == D("2027-01-04") and moved.estimate
