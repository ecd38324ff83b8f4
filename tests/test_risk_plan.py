"""The inspection plan and the grade's pace by the dates (review r25, findings 1, 2, 5, 6).

A better grade never brings the inspection due date forward; one evaluation takes every grade step the dates allow
(so ``qrisk risk --as-of`` agrees with a log that ticks daily); only the plan's inspection kinds move the routine
inspection plan; overdue-rectification points rest on the order and count from the day after the deadline.
"""
from __future__ import annotations

import datetime as dt

import pytest

from processors.credit_file import CountyState
from processors.ids import event_key
from processors.step import Rules, replay, step
from qrisk.backtest import risk_ranking, state_as_of
from schemas.policy import Policy
from tests.test_risk import E, ev, pa_sample, registered


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _missing(effects: list) -> list[dict]:
    """The data.missing warnings' gaps."""
    return [e.data["evidence"] for e in effects if e.kind == "warning.raised" and e.data["rule"] == "data.missing"]


# --------------------------------------------------------------------------- 1. a better grade keeps the due date


def test_a_better_grade_never_brings_the_inspection_due_date_forward(rules):
    events = [registered(),
              ev("inspection.completed", "2026-01-10T10:00:00+08:00", inspection_id="I1", result="符合", findings=[]),
              pa_sample("2026-09-01T10:00:00+08:00", sample_no="S-F1"),  # B → C: due 30 days on, 10-01
              ev("complaint.received", "2026-09-05T10:00:00+08:00", complaint_id="C1", verified=True, category="foreign_matter"),
              ev("complaint.received", "2026-09-06T10:00:00+08:00", complaint_id="C2", verified=True, category="foreign_matter"),
              ev("interview.held", "2026-09-07T10:00:00+08:00", interview_id="Y1", held_on="2026-09-07", follow_up_by=None)]
    state, _ = replay(events, rules)
    f = state.files[E]
    assert (f.risk.grade, f.risk.next_inspection_due) == ("D", dt.date(2026, 10, 1))
    # a duplicate complaint withdrawn: back to C, whose interval from 01-10 ran out on 07-11 — the date in force stands
    state, effects = step(state, ev("complaint.withdrawn", "2026-09-20T10:00:00+08:00", complaint_id="C2", reason="重复登记",
                                    duplicate_of="C1"), rules)
    assert f.risk.grade == "C" and f.risk.next_inspection_due == dt.date(2026, 10, 1)
    assert f.risk.current.next_inspection_due == dt.date(2026, 10, 1)
    assert not _missing(effects)
    state, effects = step(state, ev("clock.tick", "2026-09-21T00:10:00+08:00", enterprise_id="*"), rules)
    assert not _missing(effects)
    # once 10-01 has passed it is overdue, by the grace the move to C on 09-01 gave
    state, effects = step(state, ev("clock.tick", "2026-10-02T00:10:00+08:00", enterprise_id="*"), rules)
    gaps = _missing(effects)
    assert [(g["what"], g["due"], g.get("regraded_on")) for g in gaps] == [("inspection", "2026-10-01", "2026-09-01")]
    assert "2026-09-01 风险等级调整为 C 级后给予 30 天检查期限，应于 2026-10-01 前完成" in \
           next(e.data["message_zh"] for e in effects if e.kind == "warning.raised")


def test_a_better_grade_after_an_overdue_inspection_leaves_it_overdue(rules):
    # never inspected since 2026-01-05, D → C: both intervals ran out, the inspection stays overdue
    events = [registered(),
              pa_sample("2026-09-01T10:00:00+08:00", sample_no="S-F1"),
              ev("complaint.received", "2026-09-05T10:00:00+08:00", complaint_id="C1", verified=True, category="foreign_matter"),
              ev("complaint.received", "2026-09-06T10:00:00+08:00", complaint_id="C2", verified=True, category="foreign_matter"),
              ev("interview.held", "2026-09-07T10:00:00+08:00", interview_id="Y1", held_on="2026-09-07", follow_up_by=None),
              ev("clock.tick", "2026-12-01T00:10:00+08:00", enterprise_id="*")]
    state, _ = replay(events, rules)
    f = state.files[E]
    assert f.risk.grade == "D" and f.risk.next_inspection_due == dt.date(2026, 10, 1)
    state, _ = step(state, ev("complaint.withdrawn", "2026-12-02T10:00:00+08:00", complaint_id="C2", reason="重复登记",
                              duplicate_of="C1"), rules)
    assert f.risk.grade == "C" and f.risk.next_inspection_due == dt.date(2026, 10, 1)


# --------------------------------------------------------------------------- 2. steps by the dates


def _daily_ticks(first: dt.date, last: dt.date) -> list:
    days = (last - first).days + 1
    return [ev("clock.tick", f"{(first + dt.timedelta(days=i)).isoformat()}T00:10:00+08:00", enterprise_id="*") for i in range(days)]


def _merged(events: list, ticks: list) -> list:
    return sorted(events + ticks, key=lambda e: e.occurred_at)


def _same_with_and_without_ticks(events: list, ticks: list, days: list[dt.date], rules: Rules) -> list[tuple]:
    seen = []
    for day in days:
        plain, ticking = state_as_of(events, day, rules).files[E].risk, state_as_of(_merged(events, ticks), day, rules).files[E].risk
        assert (plain.grade, plain.moved_at, plain.moved_from, plain.next_inspection_due) == \
               (ticking.grade, ticking.moved_at, ticking.moved_from, ticking.next_inspection_due), day
        seen.append((day, plain.grade, plain.moved_at))
    return seen


def test_a_listing_that_ends_takes_d_to_a_in_two_weeks_by_the_dates(rules):
    events = [registered(campaign_tier="A"),
              ev("enforcement.decided", "2026-05-18T15:00:00+08:00", serious_dishonesty=True, penalties=[{"kind": "warning"}])]
    row = risk_ranking(events, dt.date(2029, 12, 31), rules)[0]
    assert (row["grade"], row["score"]) == ("A", 30.0)
    seen = _same_with_and_without_ticks(events, _daily_ticks(dt.date(2029, 5, 10), dt.date(2029, 6, 10)),
                                        [dt.date(2029, 5, 17), dt.date(2029, 5, 18), dt.date(2029, 5, 26), dt.date(2029, 6, 10)], rules)
    # the listing ends at the start of 2029-05-18 (local): C then, B a week on, A a week after
    assert seen == [(dt.date(2029, 5, 17), "D", _at("2026-05-18T15:00:00+08:00")),
                    (dt.date(2029, 5, 18), "C", _at("2029-05-18T00:00:00+08:00")),
                    (dt.date(2029, 5, 26), "B", _at("2029-05-25T00:00:00+08:00")),
                    (dt.date(2029, 6, 10), "A", _at("2029-06-01T00:00:00+08:00"))]


def test_a_grade_held_back_from_worsening_moves_on_by_the_dates(rules):
    heavy = Rules(rules.catalogue, Policy.model_validate({"risk": {"dynamic": {"sampling_failed": {"by_class": {"pathogen": 40}}}}}))
    events = [registered(campaign_tier="A"), pa_sample("2026-03-02T10:00:00+08:00", sample_no="S-F1")]
    state, _ = replay(events, heavy)
    f = state.files[E]
    assert (f.risk.grade, f.risk.current.band) == ("B", "D")  # one level per evaluation: held at B
    seen = _same_with_and_without_ticks(events, _daily_ticks(dt.date(2026, 3, 3), dt.date(2026, 4, 1)),
                                        [dt.date(2026, 3, 8), dt.date(2026, 3, 12), dt.date(2026, 4, 1)], heavy)
    # held since 03-02 10:00: C a week on, D a week after, however often (or seldom) the log ticks
    assert seen == [(dt.date(2026, 3, 8), "B", _at("2026-03-02T10:00:00+08:00")),
                    (dt.date(2026, 3, 12), "C", _at("2026-03-09T10:00:00+08:00")),
                    (dt.date(2026, 4, 1), "D", _at("2026-03-16T10:00:00+08:00"))]


def test_a_grade_improving_after_failures_age_out_moves_by_the_dates(rules):
    events = [registered("2025-01-02T09:00:00+08:00", campaign_tier="A"), pa_sample("2025-01-10T10:00:00+08:00", sample_no="S-1"),
              pa_sample("2025-01-20T10:00:00+08:00", sample_no="S-2"), pa_sample("2025-02-01T10:00:00+08:00", sample_no="S-3")]
    seen = _same_with_and_without_ticks(events, _daily_ticks(dt.date(2026, 1, 1), dt.date(2026, 2, 28)),
                                        [dt.date(2026, 1, 15), dt.date(2026, 1, 22), dt.date(2026, 2, 28)], rules)
    # S-2 leaves the window on 2026-01-20 10:00 (band B): C then; S-3 on 02-01 (band A): B on 01-27, A on 02-03
    assert seen == [(dt.date(2026, 1, 15), "D", seen[0][2]),
                    (dt.date(2026, 1, 22), "C", _at("2026-01-20T10:00:00+08:00")),
                    (dt.date(2026, 2, 28), "A", _at("2026-02-03T10:00:00+08:00"))]


# --------------------------------------------------------------------------- 5. the plan's inspection kinds


def _inspected(at: str, iid: str, kind: str):
    return ev("inspection.completed", at, inspection_id=iid, kind=kind, result="符合", findings=[])


def test_follow_up_and_acceptance_inspections_do_not_push_the_routine_plan_back(rules):
    events = [registered(), _inspected("2026-01-10T10:00:00+08:00", "I1", "routine"),
              _inspected("2026-06-01T10:00:00+08:00", "GZ1", "follow_up"),
              _inspected("2026-12-20T10:00:00+08:00", "YS1", "acceptance")]
    state, _ = replay(events, rules)
    f = state.files[E]
    assert f.risk.next_inspection_due == dt.date(2027, 1, 10)
    assert f.risk.last_inspection_event_id == event_key(events[1])
    # a special inspection (专项检查) is the plan's
    state, _ = step(state, _inspected("2027-01-05T10:00:00+08:00", "ZX1", "special"), rules)
    assert f.risk.next_inspection_due == dt.date(2028, 1, 5)


def test_the_plans_inspection_kinds_are_the_policys(rules):
    every = Rules(rules.catalogue, Policy.model_validate({"risk": {"plan_inspection_kinds": ["routine", "follow_up"]}}))
    events = [registered(), _inspected("2026-01-10T10:00:00+08:00", "I1", "routine"),
              _inspected("2026-06-01T10:00:00+08:00", "GZ1", "follow_up")]
    state, _ = replay(events, every)
    assert state.files[E].risk.next_inspection_due == dt.date(2027, 6, 1)
    with pytest.raises(ValueError, match="plan_inspection_kinds"):
        Policy.model_validate({"risk": {"plan_inspection_kinds": ["inspection"]}})


def test_a_follow_up_inspection_does_not_fill_a_missing_routine_inspection(rules):
    events = [registered("2025-01-02T09:00:00+08:00"), ev("clock.tick", "2026-01-10T00:10:00+08:00", enterprise_id="*")]
    state, _ = replay(events, rules)
    f = state.files[E]
    assert "inspection" in f.risk.missing
    state, effects = step(state, _inspected("2026-01-12T10:00:00+08:00", "GZ1", "follow_up"), rules)
    assert "inspection" in f.risk.missing and f.risk.next_inspection_due == dt.date(2026, 1, 2)
    state, effects = step(state, _inspected("2026-01-13T10:00:00+08:00", "I2", "routine"), rules)
    assert "inspection" not in f.risk.missing and f.risk.next_inspection_due == dt.date(2027, 1, 13)


def test_a_correction_that_makes_the_plans_inspection_a_follow_up_moves_the_plan_back(rules):
    events = [registered(), _inspected("2026-01-10T10:00:00+08:00", "I1", "routine"),
              _inspected("2026-06-01T10:00:00+08:00", "I2", "routine")]
    state, _ = replay(events, rules)
    f = state.files[E]
    assert f.risk.next_inspection_due == dt.date(2027, 6, 1)
    # the same inspection sent again as a 跟踪检查 (its kind entered wrongly): a correction
    state, effects = step(state, _inspected("2026-06-02T10:00:00+08:00", "I2", "follow_up"), rules)
    assert "inspection.corrected" in [e.kind for e in effects]
    assert f.risk.next_inspection_due == dt.date(2027, 1, 10)


# --------------------------------------------------------------------------- 6. overdue rectification evidence


def test_overdue_rectification_points_rest_on_the_order_from_the_day_after_the_deadline(rules):
    order = ev("rectification.ordered", "2026-03-01T10:00:00+08:00", rectification_id="R1", deadline="2026-03-10")
    tick = ev("clock.tick", "2026-03-15T00:10:00+08:00", enterprise_id="*")  # (the ticks were down for days)
    state, _ = replay([registered(), order, tick], rules)
    f = state.files[E]
    terms = {c.factor: c for c in f.risk.current.contributions}
    for factor in ("dynamic.rectification_overdue", "credit.rectification_overdue"):
        assert terms[factor].event_ids == [event_key(order)]
    assert [e[0] for e in f.risk.entries if e[1] == "rectification_overdue"] == [_at("2026-03-11T00:00:00+08:00")]
    assert terms["credit.rectification_overdue"].weighs_until == _at("2029-03-11T00:00:00+08:00")


def test_a_tick_that_finds_rectifications_overdue_is_named_by_them_as_the_holds_cause(rules):
    events = [registered(campaign_tier="A"),
              ev("rectification.ordered", "2026-03-01T10:00:00+08:00", rectification_id="R1", deadline="2026-03-10"),
              ev("rectification.ordered", "2026-03-01T11:00:00+08:00", rectification_id="R2", deadline="2026-03-10"),
              ev("clock.tick", "2026-03-12T00:10:00+08:00", enterprise_id="*")]
    state, _ = replay(events, rules)
    f = state.files[E]
    assert (f.risk.grade, f.risk.current.band) == ("B", "C")
    assert "起因：2026-03-12 整改逾期（R1）、整改逾期（R2）" in f.risk.current.hold_zh


def test_overdue_rectification_points_count_from_the_deadline_moved_off_a_holiday(rules):
    # a deadline on 国庆 2026 runs to the first working day after it (due_on); late from the day after that
    order = ev("rectification.ordered", "2026-09-20T10:00:00+08:00", rectification_id="R1", deadline="2026-10-03")
    state, _ = replay([registered(), order, ev("clock.tick", "2026-10-20T00:10:00+08:00", enterprise_id="*")], rules)
    f = state.files[E]
    record = f.rectification("R1")
    assert record.due_on is not None and record.due_on > dt.date(2026, 10, 3)
    after = record.due_on + dt.timedelta(days=1)
    start = dt.datetime(after.year, after.month, after.day, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert [e[0] for e in f.risk.credit_entries if e[1] == "rectification_overdue"] == [start]
    assert [e[3] for e in f.risk.credit_entries] == [event_key(order)]
