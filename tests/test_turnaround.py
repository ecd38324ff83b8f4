"""The labs' statutory time limits (《食品安全抽样检验管理办法》): a sample reaches the lab within 5 working days of
sampling, the lab reports within 20 working days of receiving it, counted on the State Council's working-day
calendar.  A late report is the lab's matter: said, listed, never a risk point against the enterprise."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from ingest.validate import decode_body
from processors.step import FOLD_VERSION, Rules, replay
from qrisk.credit_report import build_report, render_text
from qrisk.registers import SAMPLE_COLUMNS, sample_rows, sample_sheet
from schemas.policy import Policy
from schemas.working_days import CalendarError, load_calendar, working_days_between
from tests.conftest import ROOT, golden
from tests.test_corrections import E, REG, resend, sample

D = dt.date.fromisoformat
LAB = golden("sampling.result")["payload"]["lab"]  # 县食品检验检测中心
LAB_ID = golden("sampling.result")["source"]["id"]


@pytest.fixture(scope="module")
def calendar():
    return load_calendar()


def days(calendar, start: str, end: str) -> int:
    return working_days_between(calendar, D(start), D(end)).days


# --------------------------------------------------------------------------- 1. the calendar


def test_a_plain_week_counts_its_five_weekdays_and_not_the_day_counted_from(calendar):
    assert days(calendar, "2025-03-03", "2025-03-10") == 5  # Mon → next Mon: Tue–Fri and the Monday
    assert days(calendar, "2025-03-07", "2025-03-10") == 1  # Fri → Mon
    assert days(calendar, "2025-03-07", "2025-03-07") == 0


def test_the_spring_festival_weeks_are_holidays_and_their_sundays_and_saturdays_work(calendar):
    # 2025: 01-28 (除夕) to 02-04 off; Sunday 01-26 and Saturday 02-08 worked
    assert days(calendar, "2025-01-27", "2025-02-05") == 1
    assert days(calendar, "2025-01-24", "2025-01-27") == 2  # Sunday 01-26 counts
    assert days(calendar, "2025-02-07", "2025-02-10") == 2  # Saturday 02-08 counts
    # 2026: 02-15 to 02-23 off (9 days); Saturdays 02-14 and 02-28 worked
    assert days(calendar, "2026-02-13", "2026-02-24") == 2
    # 2024: 02-10 to 02-17 off; 除夕 (02-09) was no holiday, Sundays 02-04 and 02-18 worked
    assert days(calendar, "2024-02-08", "2024-02-09") == 1
    assert days(calendar, "2024-02-09", "2024-02-19") == 2
    assert days(calendar, "2024-02-02", "2024-02-05") == 2


def test_the_national_day_weeks_are_holidays(calendar):
    assert days(calendar, "2025-09-30", "2025-10-09") == 1  # 2025: 10-01 to 10-08 with 中秋
    assert days(calendar, "2024-09-30", "2024-10-08") == 1  # 2024: 10-01 to 10-07
    assert days(calendar, "2026-09-30", "2026-10-08") == 1
    # the working weekend days around them: Sunday 2025-09-28, Saturday 2025-10-11, Saturday 2024-10-12
    assert days(calendar, "2025-09-26", "2025-09-29") == 2
    assert days(calendar, "2025-10-10", "2025-10-11") == 1
    assert days(calendar, "2024-10-11", "2024-10-12") == 1


def test_an_adjusted_saturday_is_a_working_day_and_a_holiday_weekday_is_not(calendar):
    assert calendar.is_working_day(D("2024-05-11")) and D("2024-05-11").weekday() == 5
    assert calendar.is_working_day(D("2026-05-09")) and not calendar.is_working_day(D("2026-05-10"))
    assert not calendar.is_working_day(D("2026-04-06"))  # 清明 Monday
    assert not calendar.is_working_day(D("2025-05-02")) and not calendar.is_working_day(D("2025-10-08"))


def test_a_year_the_calendar_does_not_hold_is_counted_monday_to_friday_and_said_to_be_an_estimate(calendar):
    counted = working_days_between(calendar, D("2027-09-30"), D("2027-10-08"))
    # National Day's fixed 10-01 (a Friday) left out, and 10-02 and 10-03 (the weekend) made up on Monday and Tuesday
    # (补假); the rest of the week joined to it comes with the notice only: 10-06, 10-07 and 10-08 counted
    assert (counted.days, counted.estimate, counted.uncovered_years) == (3, True, (2027,))
    held = working_days_between(calendar, D("2026-12-28"), D("2026-12-31"))
    assert (held.days, held.estimate) == (3, False)
    across = working_days_between(calendar, D("2026-12-30"), D("2027-01-04"))
    assert across.estimate and across.uncovered_years == (2027,) and across.days == 2  # 12-31, 01-04 (元旦 a fixed holiday)


def test_every_year_says_its_source_and_the_years_asked_for_are_held(calendar):
    assert {2024, 2025, 2026} <= set(calendar.years)
    for year in calendar.years.values():
        assert "国务院办公厅关于" in year.source and "节假日安排的通知" in year.source
        assert isinstance(year.verified, bool)


def _calendar_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "working_days.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_an_unverified_year_counts_and_says_so(tmp_path):
    cal = load_calendar(_calendar_file(tmp_path, """
years:
  2030:
    source: "国务院办公厅关于2030年部分节假日安排的通知（未核对）"
    verified: false
    holidays:
      - {name: 元旦, from: 2030-01-01, to: 2030-01-01}
    working_weekends: []
"""))
    counted = working_days_between(cal, D("2029-12-31"), D("2030-01-02"))
    assert (counted.days, counted.estimate, counted.unverified_years) == (1, False, (2030,))


@pytest.mark.parametrize("bad, said", [
    ("working_weekends: [2030-01-07]", "a weekday"),  # a Monday
    ("working_weekends: [2030-01-05]", "both as a holiday"),  # a Saturday inside the span
    ("working_weekends: [2031-01-05]", "another year"),
])
def test_a_mistyped_calendar_is_refused_naming_the_file(tmp_path, bad, said):
    path = _calendar_file(tmp_path, f"""
years:
  2030:
    source: "x"
    verified: true
    holidays:
      - {{name: 元旦, from: 2030-01-01, to: 2030-01-06}}
    {bad}
""")
    with pytest.raises(CalendarError, match=said) as caught:
        load_calendar(path)
    assert "working_days.yaml" in str(caught.value)


def test_the_calendar_is_packaged_like_the_catalogue():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"standards/calendar/*.yaml"' in text
    assert (ROOT / "schemas" / "standards" / "calendar" / "working_days.yaml").is_file()


# --------------------------------------------------------------------------- 2. the payload


def _door_errors(**payload) -> dict[str, str]:
    doc = golden("sampling.result")  # sampled 2026-03-05, reported 2026-03-12
    doc["payload"].update(payload)
    events, rejected = decode_body(json.dumps(doc, ensure_ascii=False).encode())
    return {} if events else {e["field"]: e["reason_zh"] for e in rejected[0].errors}


def test_a_receipt_date_between_sampling_and_report_is_taken_and_an_old_payload_stays_valid():
    assert _door_errors(lab_received_on="2026-03-06") == {}
    assert _door_errors(lab_received_on="2026-03-05") == {} and _door_errors(lab_received_on="2026-03-12") == {}
    assert _door_errors() == {}


def test_a_receipt_before_sampling_or_after_the_report_is_refused_naming_the_field():
    before = _door_errors(lab_received_on="2026-03-04")
    assert "收样日期 2026-03-04 早于抽样日期 2026-03-05" in before["payload.lab_received_on"]
    after = _door_errors(lab_received_on="2026-03-13")
    assert "收样日期 2026-03-13 晚于结果报告时间 2026-03-12" in after["payload.lab_received_on"]


# --------------------------------------------------------------------------- 3. the fold


def test_the_fold_version_says_the_turnaround_came():
    import processors.step

    source = Path(processors.step.__file__).read_text(encoding="utf-8")
    history = source[source.index("FOLD_VERSION = "):source.index('WARNING_KINDS = ')]
    assert FOLD_VERSION >= 40 and "sampling_turnaround" in history and "报告超时" in history


def _late_effects(effects, kind="sampling.report_late"):
    return [e for e in effects if e.kind == kind]


def test_receipt_to_report_over_twenty_working_days_is_late_and_the_qingming_monday_is_not_counted(rules):
    # received Friday 03-06; 03-09 … 04-03 is 20 working days, 04-04 … 04-06 清明
    on_time = sample("2026-04-06T16:00:00+08:00", lab_received_on="2026-03-06", sample_no="S-1")
    late = sample("2026-04-07T09:00:00+08:00", lab_received_on="2026-03-06", sample_no="S-2")
    state, effects = replay([REG, on_time, late], rules)
    f = state.files[E]
    t1, t2 = f.sample_by_event(str(on_time.event_id)).turnaround, f.sample_by_event(str(late.event_id)).turnaround
    assert (t1.to_lab_days, t1.report_days, t1.report_limit, t1.late) == (1, 20, 20, False)
    assert (t2.report_days, t2.report_late, t2.sent_late, t2.estimate) == (21, True, False, False)
    (effect,) = _late_effects(effects)
    assert effect.event_id == str(late.event_id)
    d = effect.data
    assert (d["lab"], d["lab_id"], d["sample_no"], d["working_days"], d["limit"], d["from_sampling"]) == (LAB, LAB_ID, "S-2", 21, 20, False)
    assert "检验报告超时：收样后第 21 个工作日出具检验报告（时限 20 个工作日）" in d["message_zh"]
    assert d["message_zh"].startswith(f"{LAB}：") and "S-2" in d["message_zh"] and "不计入企业风险分" in d["message_zh"]
    assert "送样 1 个工作日（时限 5）、检验 20 个工作日（时限 20），未超时" == t1.zh()


def test_without_a_receipt_date_the_report_is_judged_from_sampling_against_both_limits(rules):
    # sampled Thursday 03-05: 03-06 … 04-10 is 25 working days (清明 Monday 04-06 not counted)
    on_time = sample("2026-04-10T10:00:00+08:00", sample_no="S-1")
    late = sample("2026-04-13T10:00:00+08:00", sample_no="S-2")
    state, effects = replay([REG, on_time, late], rules)
    f = state.files[E]
    assert f.sample_by_event(str(on_time.event_id)).turnaround.report_days == 25
    t = f.sample_by_event(str(late.event_id)).turnaround
    assert (t.to_lab_days, t.report_days, t.report_limit, t.from_sampling) == (None, 26, 25, True)
    (effect,) = _late_effects(effects)
    assert effect.data["from_sampling"] is True and effect.data["working_days"] == 26 and effect.data["limit"] == 25
    assert "报告超时（未报收样日期，按抽样日期起算 5+20 个工作日）：抽样后第 26 个工作日出具检验报告（时限 25 个工作日）" in effect.data["message_zh"]


def test_sampling_to_receipt_over_five_working_days_is_sent_late_and_the_spring_festival_is_not_counted(rules):
    # sampled Friday 2026-02-13: Saturday 02-14 worked, 02-15 … 02-23 off, so 02-26 is the 4th working day
    in_time = sample("2026-03-10T10:00:00+08:00", sampled_on="2026-02-13", production_date="2026-02-01", lab_received_on="2026-02-26",
                     sample_no="S-1")
    late = sample("2026-03-10T11:00:00+08:00", sampled_on="2026-02-13", production_date="2026-02-01", lab_received_on="2026-03-03",
                  sample_no="S-2")
    state, effects = replay([REG, in_time, late], rules)
    f = state.files[E]
    assert f.sample_by_event(str(in_time.event_id)).turnaround.to_lab_days == 4
    (effect,) = _late_effects(effects, "sampling.sent_late")
    assert effect.event_id == str(late.event_id) and (effect.data["working_days"], effect.data["limit"]) == (8, 5)
    assert "送样超时：抽样后第 8 个工作日送达检验机构（时限 5 个工作日）" in effect.data["message_zh"]
    assert not _late_effects(effects)  # the lab then reported within its 20


def test_a_late_report_scores_nothing_and_alerts_nobody(rules):
    late = sample("2026-05-20T10:00:00+08:00", lab_received_on="2026-03-06")
    lenient = Rules(rules.catalogue, Policy.model_validate({"sampling_turnaround": {"report_working_days": 60}}))
    state, effects = replay([REG, late], rules)
    calm, calm_effects = replay([REG, late], lenient)
    assert _late_effects(effects) and not _late_effects(calm_effects)
    assert [e.kind for e in effects if e.kind != "sampling.report_late"] == [e.kind for e in calm_effects]
    f, g = state.files[E], calm.files[E]
    assert f.risk.model_dump() == g.risk.model_dump() and f.warnings == g.warnings


def test_a_late_failure_says_in_its_alert_how_late_it_came(rules):
    late = sample("2026-04-20T10:00:00+08:00", passes=False, lab_received_on="2026-03-06")
    _, effects = replay([REG, late], rules)
    (raised,) = [e for e in effects if e.kind == "warning.raised" and e.data["rule"] == "sampling.unqualified"]
    # 03-09 … 04-03 twenty, 04-07 … 04-10 four (清明), 04-13 … 04-17 five, 04-20
    assert "检验报告超时：收样后第 30 个工作日出具检验报告（时限 20 个工作日）" in raised.data["message_zh"]
    assert "扩大下架、召回和排查范围" in raised.data["message_zh"]
    on_time = sample("2026-03-12T10:00:00+08:00", passes=False, lab_received_on="2026-03-06")
    _, effects = replay([REG, on_time], rules)
    (raised,) = [e for e in effects if e.kind == "warning.raised" and e.data["rule"] == "sampling.unqualified"]
    assert "超时" not in raised.data["message_zh"]


def test_a_retest_is_not_judged_on_these_limits(rules):
    first = sample("2026-03-12T10:00:00+08:00", passes=False, lab_received_on="2026-03-06")
    retest = sample("2026-04-20T10:00:00+08:00", passes=True, retest=True, lab_received_on="2026-03-06")
    state, effects = replay([REG, first, retest], rules)
    assert state.files[E].sample_by_event(str(retest.event_id)).turnaround is None
    assert not _late_effects(effects)


def test_a_correction_keeps_the_first_reports_dates(rules):
    first = sample("2026-03-12T10:00:00+08:00", lab_received_on="2026-03-06")
    # the lab corrects its report (now 不合格) two months on, printing a later receipt date
    corrected = sample("2026-05-20T10:00:00+08:00", passes=False, lab_received_on="2026-05-06")
    state, effects = replay([REG, first, corrected], rules)
    f = state.files[E]
    a, b = f.sample_by_event(str(first.event_id)), f.sample_by_event(str(corrected.event_id))
    assert b.superseded_by is None and a.superseded_as == "corrected"
    assert a.turnaround is not None and b.turnaround == a.turnaround and b.turnaround.reported_on == D("2026-03-12")
    assert b.lab_received_on == D("2026-05-06") and b.turnaround.lab_received_on == D("2026-03-06")
    assert not _late_effects(effects)
    # and the other way round: a late first report stays late when a later report of it comes
    late = sample("2026-05-20T10:00:00+08:00", lab_received_on="2026-03-06", sample_no="S-L")
    again = resend(late, at="2026-05-21T10:00:00+08:00")
    state, effects = replay([REG, late, again], rules)
    assert [e.event_id for e in _late_effects(effects)] == [str(late.event_id)]
    assert state.files[E].sample_by_event(str(again.event_id)).turnaround.report_late


def test_the_bureau_may_agree_other_limits_with_a_lab_by_name_or_cma_number(rules):
    late = sample("2026-04-20T10:00:00+08:00", lab_received_on="2026-03-06")  # 30 working days
    for key in (LAB, LAB_ID):
        agreed = Rules(rules.catalogue, Policy.model_validate({"sampling_turnaround": {"labs": {key: {"report_working_days": 30}}}}))
        state, effects = replay([REG, late], agreed)
        t = state.files[E].sample_by_event(str(late.event_id)).turnaround
        assert (t.report_days, t.report_limit, t.to_lab_limit, t.late) == (30, 30, 5, False) and not _late_effects(effects)
    other = Rules(rules.catalogue, Policy.model_validate({"sampling_turnaround": {"labs": {"另一检验机构": {"report_working_days": 30}}}}))
    assert _late_effects(replay([REG, late], other)[1])


def test_the_check_can_be_turned_off(rules):
    off = Rules(rules.catalogue, Policy.model_validate({"sampling_turnaround": {"enabled": False}}))
    late = sample("2026-05-20T10:00:00+08:00", lab_received_on="2026-03-06")
    state, effects = replay([REG, late], off)
    assert state.files[E].samples[0].turnaround is None and not _late_effects(effects)


def test_a_report_in_a_year_the_calendar_lacks_is_an_estimate(rules):
    late = sample("2027-05-20T10:00:00+08:00", sampled_on="2027-03-05", production_date="2027-03-01", lab_received_on="2027-03-08")
    state, effects = replay([REG, late], rules)
    t = state.files[E].samples[0].turnaround
    assert t.estimate and t.uncovered_years == (2027,)
    (effect,) = _late_effects(effects)
    assert effect.data["estimate"] is True and "含工作日历未收录的 2027 年，按周一至周五（除元旦、劳动节、国庆节法定日期及其补假）估算" in effect.data["message_zh"]


# --------------------------------------------------------------------------- 4. where a supervisor reads it


def test_the_register_and_the_credit_file_show_the_turnaround_in_chinese(rules):
    late = sample("2026-04-20T10:00:00+08:00", lab_received_on="2026-03-06", sample_no="S-LATE")
    fine = sample("2026-03-12T10:00:00+08:00", sample_no="S-OK")
    state, _ = replay([REG, late, fine], rules)
    f = state.files[E]
    rows = {r["sample_no"]: r for r in sample_rows([{"enterprise_id": E, "profile": f.profile.model_dump(), "samples": f.samples}])}
    r = rows["S-LATE"]
    assert (r["lab_received_on"], r["report_working_days"], r["report_limit"], r["report_late"], r["sent_late"]) == (
        "2026-03-06", 30, 20, True, False)
    assert r["turnaround_zh"].startswith("检验报告超时：收样后第 30 个工作日")
    assert rows["S-OK"]["report_late"] is False and rows["S-OK"]["turnaround_zh"].startswith("未报收样日期：抽样至报告 5 个工作日")
    assert {"lab_received_on", "turnaround_zh", "report_late"} <= set(SAMPLE_COLUMNS)
    people, columns, headers = sample_sheet(list(rows.values()), 8)
    assert headers["turnaround_zh"] == "检验时限（工作日）" and headers["lab_received_on"] == "收样日期" and "turnaround_zh" in columns
    text = render_text(build_report(f, rules))
    assert "检验时限（工作日）" in text and "检验报告超时：收样后第 30 个工作日" in text


def test_the_samples_api_lists_the_late_ones(server):
    reg = golden("enterprise.registered")
    late = golden("sampling.result")
    late["payload"].update(lab_received_on="2026-03-06")
    late["occurred_at"] = "2026-04-20T10:00:00+08:00"
    resp = server.post("/v1/events", json=[reg, late])
    assert resp.status_code == 200, resp.text
    answer = server.get("/v1/samples", params={"late": "true"})
    assert answer.status_code == 200, answer.text
    (row,) = answer.json()
    assert (row["sample_no"], row["report_late"], row["report_working_days"]) == (late["payload"]["sample_no"], True, 30)
    assert server.get("/v1/samples", params={"late": "false"}).json() == []


# --------------------------------------------------------------------------- 5. the demo


def test_the_demo_plants_a_lab_often_late_and_its_summary_names_it(rules):
    from collections import Counter

    from qrisk.demo import SLOW_LAB, CountyGenerator, render_text, summarise

    generator = CountyGenerator(seed=7)
    events = generator.generate()
    reports = [e for e in events if e.event_type == "sampling.result" and not e.payload.retest]
    assert sum(1 for e in reports if e.payload.lab_received_on) > 0.8 * len(reports)
    assert not any(e.payload.lab_received_on for e in events if e.event_type == "sampling.result" and e.payload.retest)
    state, effects = replay(events, rules)
    late = Counter(e.data["lab"] for e in effects if e.kind == "sampling.report_late")
    assert set(late) == {SLOW_LAB}
    summary = summarise(state, events, effects, generator.period)
    rows = {r["lab"]: r for r in summary["turnaround"]["by_lab"]}
    slow = rows[SLOW_LAB]
    assert summary["turnaround"]["by_lab"][0]["lab"] == SLOW_LAB and slow["report_late"] == late[SLOW_LAB]
    assert slow["report_late"] >= 0.3 * slow["judged"] and all(r["report_late"] == 0 for lab, r in rows.items() if lab != SLOW_LAB)
    line = next(x for x in render_text(summary).splitlines() if x.startswith("检验报告超时"))
    assert f"检验报告超时 {slow['report_late']} 批次" in line and f"{SLOW_LAB} {slow['report_late']}/{slow['judged']} 批次" in line


def test_the_calendars_index_counts_as_walking_day_by_day_would():
    """Counting and due dates read a table built once (the fold asks for several per sample and complaint); they
    agree with the definition — walk the days after the start, count those the calendar makes working days — over
    thousands of spans across the years it holds, the years around them, the Spring Festivals and New Years."""
    import random

    from schemas.working_days import add_working_days, load_calendar, working_days_between

    cal = load_calendar()
    one = dt.timedelta(days=1)

    def walked(start, end):
        n, day = 0, start + one
        while day <= end:
            n, day = n + cal.is_working_day(day), day + one
        return n

    def walked_due(start, k):
        day = start
        while k:
            day += one
            k -= cal.is_working_day(day)
        return day

    r = random.Random(7)
    for _ in range(3000):
        start = dt.date(2022, 11, 1) + dt.timedelta(days=r.randrange(0, 1700))
        end = start + dt.timedelta(days=r.randrange(-3, 90))
        k = r.randrange(0, 60)
        assert working_days_between(cal, start, end).days == (walked(start, end) if end > start else 0), (start, end)
        due = add_working_days(cal, start, k)
        assert due.on == walked_due(start, k), (start, k)
        assert due.estimate == any(y not in cal.years for y in range((start + one).year, due.on.year + 1)) if k else not due.estimate


def test_an_operator_adds_next_years_notice_with_qrisk_calendar_file(tmp_path, monkeypatch):
    """QRISK_CALENDAR_FILE: a copy of the calendar with 2027's notice added counts 2027's holidays without a release;
    the policy's identity carries the calendar (a snapshot folded under the old one is not restored), and a file
    that is no calendar stops the start with a message naming the setting."""
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    from qrisk.pipeline import policy_digest
    from qrisk.runtime import default_rules
    from schemas.working_days import working_days_between

    packaged = Path(__file__).resolve().parent.parent / "schemas" / "standards" / "calendar" / "working_days.yaml"
    doc = yaml.safe_load(packaged.read_text(encoding="utf-8"))
    doc["years"][2027] = {"source": "a test's notice", "verified": True,
                          "holidays": [{"name": "元旦", "from": dt.date(2027, 1, 1), "to": dt.date(2027, 1, 3)}]}
    mine = tmp_path / "calendar.yaml"
    mine.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")

    before = default_rules()
    monkeypatch.setenv("QRISK_CALENDAR_FILE", str(mine))
    after = default_rules()
    span = (dt.date(2026, 12, 31), dt.date(2027, 1, 8))
    old, new = working_days_between(before.calendar, *span), working_days_between(after.calendar, *span)
    # (2027-01-01 is a Friday: the estimate leaves it out as a fixed-date holiday, the notice's 元旦 as the notice says;
    # only the notice makes the count no estimate)
    assert (old.days, old.estimate) == (5, True) and (new.days, new.estimate) == (5, False)
    assert policy_digest(before) != policy_digest(after)

    mine.write_text("years: {2027: {source: x, verified: true, holidays: [], working_weekends: [2027-01-04]}}", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "qrisk", "run", "--data-dir", str(tmp_path / "data"), "--port", "1"],
                         capture_output=True, text=True, env={**__import__("os").environ, "QRISK_CALENDAR_FILE": str(mine)}, timeout=120)
    assert run.returncode == 2 and "QRISK_CALENDAR_FILE" in run.stderr and "工作日历文件" in run.stderr and "无效" in run.stderr
    assert str(mine) in run.stderr
