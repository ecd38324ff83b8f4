"""A correction that un-counts the plan's inspection (a 日常检查 resent as the 跟踪检查 it was) together with a better
grade: the due date in force rested on the inspection that no longer counts, and 'a better grade never brings the
due date forward' must not keep it — the plan runs from the routine inspection that still counts."""
import datetime as dt

from processors.step import replay, step
from tests.test_risk import E, ev, registered

LAST_ROUTINE_PLUS_B = dt.date(2026, 7, 1)  # 2025-07-01 (I1, the routine inspection that counts) + B's 365 days


def insp(at, iid, kind, result, findings=()):
    return ev("inspection.completed", at, inspection_id=iid, kind=kind, result=result, findings=list(findings))


def test_correction_that_also_betters_the_grade(rules):
    crit = [{"code": f"3.{i}", "severity": "critical", "description": "消毒设施缺失"} for i in range(3)]
    events = [registered("2025-06-01T09:00:00+08:00"),
              insp("2025-07-01T10:00:00+08:00", "I1", "routine", "符合"),
              insp("2026-03-01T10:00:00+08:00", "I2", "routine", "不符合", crit)]
    state, _ = replay(events, rules)
    assert state.files[E].risk.grade == "C" and state.files[E].risk.next_inspection_due == dt.date(2026, 8, 30)
    # I2 was in truth a 跟踪检查 that found everything 符合: sent again corrected, the grade falls back to B
    state, _ = step(state, insp("2026-03-10T10:00:00+08:00", "I2", "follow_up", "符合"), rules)
    rs = state.files[E].risk
    assert rs.grade == "B" and rs.last_inspected_at.date() == dt.date(2025, 7, 1)
    assert rs.next_inspection_due == LAST_ROUTINE_PLUS_B
    assert rs.history[-1].next_inspection_due == LAST_ROUTINE_PLUS_B


def test_correction_after_the_better_grade(rules):
    """The grade fell C→B by withdrawn complaints; later the 03-01 routine inspection is corrected into a 跟踪检查."""
    events = [registered("2025-06-01T09:00:00+08:00"),
              insp("2025-07-01T10:00:00+08:00", "I1", "routine", "符合"),
              insp("2026-03-01T10:00:00+08:00", "I2", "routine", "基本符合")]
    events += [ev("complaint.received", f"2026-03-02T1{i}:00:00+08:00", complaint_id=f"K{i}", category="hygiene", verified=True, text=text)
               for i, text in enumerate(["车间卫生差，地面有污水", "工人未戴口罩，灌装区有苍蝇", "水桶清洗不干净，桶底有污渍"])]
    events += [ev("complaint.withdrawn", "2026-03-05T10:00:00+08:00", complaint_id=f"K{i}") for i in range(3)]
    state, _ = replay(events, rules)
    rs = state.files[E].risk
    assert rs.grade == "B" and rs.next_inspection_due == dt.date(2027, 3, 1)  # (B's year from I2)
    state, _ = step(state, insp("2026-03-20T10:00:00+08:00", "I2", "follow_up", "基本符合"), rules)
    rs = state.files[E].risk
    assert rs.grade == "B" and rs.last_inspected_at.date() == dt.date(2025, 7, 1)
    assert rs.next_inspection_due == LAST_ROUTINE_PLUS_B


def test_correction_that_keeps_the_inspection_keeps_the_date_in_force(rules):
    """A correction of the findings alone (same kind, same time) leaves the date in force before the move standing:
    the withdrawn complaints taking C back to B still do not bring the inspection forward."""
    events = [registered("2025-06-01T09:00:00+08:00"),
              insp("2025-07-01T10:00:00+08:00", "I1", "routine", "符合"),
              insp("2026-03-01T10:00:00+08:00", "I2", "routine", "基本符合")]
    events += [ev("complaint.received", f"2026-03-02T1{i}:00:00+08:00", complaint_id=f"K{i}", category="hygiene", verified=True, text=text)
               for i, text in enumerate(["车间卫生差，地面有污水", "工人未戴口罩，灌装区有苍蝇", "水桶清洗不干净，桶底有污渍"])]
    events += [ev("complaint.withdrawn", "2026-03-05T10:00:00+08:00", complaint_id=f"K{i}") for i in range(3)]
    state, _ = replay(events, rules)
    before = state.files[E].risk.due_before_move
    state, _ = step(state, insp("2026-03-01T10:00:00+08:00", "I2", "routine", "符合"), rules)
    rs = state.files[E].risk
    assert rs.grade == "B" and rs.due_before_move == before
    assert rs.next_inspection_due == dt.date(2027, 3, 1)
