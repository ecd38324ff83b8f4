"""A review of risk grading found five defects; each is rebuilt here as the scenario that showed it:
an overdue inspection cleared by a D→C→D flap, a corrected or re-tested failure weighing from the later report,
improvements taken one level per clock tick, D's 122-day interval, and a revoked licence still planned for."""
from __future__ import annotations

import datetime as dt

from processors.step import Rules, replay, step
from qrisk.credit_report import build_report, render_text
from schemas.policy import Policy
from tests.conftest import golden
from tests.test_risk import E, ev, pa_sample, registered

CST = dt.timezone(dt.timedelta(hours=8))


def tick(at: dt.datetime | str):
    return ev("clock.tick", at if isinstance(at, str) else at.isoformat(), enterprise_id="*")


def interview(day: str, interview_id: str):
    return ev("interview.held", f"{day}T10:00:00+08:00", interview_id=interview_id, held_on=day, follow_up_by=None, related_event_ids=[])


def inspected(day: str, inspection_id: str = "JC-1"):
    return ev("inspection.completed", f"{day}T10:00:00+08:00", inspection_id=inspection_id, result="符合", findings=[])


def decisions(effects, rule):
    return [e.data for e in effects if e.kind == "warning.raised" and e.data["rule"] == rule]


# --------------------------------------------------------------------------- 1. the regrade grace and an overdue inspection


def test_a_grade_flapping_d_c_d_does_not_clear_an_overdue_inspection(rules):
    """Last inspected 2025-01-10; D from 2025-06-02 (due 2025-07-02); an interview leaves the window → C, whose
    due date 2025-07-11 has passed (data.missing); a new interview 2026-02-10 → D again.  The 30-day grace is time
    to inspect after a change, not a new start for an inspection overdue since before it: still due 2025-07-11."""
    events = [registered("2024-06-01T09:00:00+08:00"), interview("2024-07-15", "YT-1"), inspected("2025-01-10"),
              interview("2025-05-20", "YT-2"),  # 38 + 8 = 46: C
              pa_sample("2025-06-02T10:00:00+08:00")]  # + 15 = 61: D
    state, _ = replay(events, rules)
    rs = state.files[E].risk
    assert rs.grade == "D" and rs.next_inspection_due == dt.date(2025, 7, 2)  # the grace: 30 days after the move
    raised = []
    day = dt.datetime(2025, 6, 3, tzinfo=CST)
    while day <= dt.datetime(2025, 7, 20, tzinfo=CST):
        state, effects = step(state, tick(day), rules)
        raised += decisions(effects, "data.missing")
        day += dt.timedelta(days=1)
    # YT-1 left the window on 2025-07-16: 57, C; C's interval ran out on 2025-07-11 (no grace towards a longer interval)
    assert rs.grade == "C" and rs.next_inspection_due == dt.date(2025, 7, 11)
    # raised once D's due date passed, for the gap since 2025-01-10, and still open under C
    assert [d["evidence"]["due"] for d in raised] == ["2025-07-02"] and rs.missing == {"inspection": "2025-01-10"}
    state, _ = step(state, interview("2026-02-10", "YT-3"), rules)
    assert rs.grade == "D" and rs.score == 61.0
    # not 2026-03-12 (30 days after the move): the due date in force before it, uninspected for 13 months
    assert rs.next_inspection_due == dt.date(2025, 7, 11)
    from processors.risk import rank

    row = next(r for r in rank(state, dt.date(2026, 2, 10)) if r["enterprise_id"] == E)
    assert row["reasons"][0] == "现场检查已逾期：应于 2025-07-11 前检查（D 级）"


def test_the_grace_still_gives_time_after_a_move_from_a_grade_not_yet_overdue(rules):
    # inspected 2026-01-10 as B (due 2027-01-10); a failure makes it C on 2026-09-01: C's 182 days ran out on 2026-07-11,
    # so the grace gives 30 days (2026-10-01), within the due date in force before the move
    events = [registered("2025-12-01T09:00:00+08:00"), inspected("2026-01-10"), pa_sample("2026-09-01T10:00:00+08:00")]
    state, _ = replay(events, rules)
    rs = state.files[E].risk
    assert rs.grade == "C" and rs.next_inspection_due == dt.date(2026, 10, 1)


# --------------------------------------------------------------------------- 2. a failure weighs from its first report


def _failed(at: str, sample_no: str, sampled_on: str, values=(45, 59, 8, 61, 10), **extra):
    doc = golden("sampling.result")
    items = doc["payload"]["items"]
    items[0] = {**items[0], "values": list(values), "lab_verdict": "不合格"}
    return ev("sampling.result", at, E, items=items, sample_no=sample_no, sampled_on=sampled_on, production_date=sampled_on,
              batch=sampled_on.replace("-", ""), **extra)


def _failures(state):
    return [e for e in state.files[E].risk.entries if e[1] == "sampling_failed"]


def test_a_corrected_failure_weighs_from_its_first_report_not_from_the_correction(rules):
    first = _failed("2025-03-05T10:00:00+08:00", "S-COR", "2025-03-01")
    # eight months later the lab corrects the report: still a failure (other values)
    fixed = _failed("2025-11-05T10:00:00+08:00", "S-COR", "2025-03-01", values=(30, 40, 8, 61, 10))
    state, _ = replay([registered("2025-01-02T09:00:00+08:00"), first, fixed], rules)
    f = state.files[E]
    assert f.samples[-1].corrects is not None  # (taken as the correction)
    [entry] = _failures(state)
    assert entry[0] == first.occurred_at and entry[3] == str(fixed.event_id)  # dated from the first report, resting on the correction
    term = next(c for c in f.risk.current.contributions if c.factor == "dynamic.sampling_failed")
    assert term.weighs_until == first.occurred_at + dt.timedelta(days=365)
    # a year after the first report the failure no longer weighs (from the correction it weighed until 2026-11-05)
    state, _ = step(state, tick("2026-03-06T00:00:00+08:00"), rules)
    assert not _failures(state) and f.risk.score == 38.0


def test_a_failed_retest_weighs_from_the_original_report(rules):
    from tests.conftest import TESTS_RETEST_LAB

    def bromate(at, **extra):  # (a contaminant: a microbiological failure may not be re-tested)
        return ev("sampling.result", at, E, items=[{"item_code": "bromate", "values": [0.05], "unit": "mg/L", "lab_verdict": "不合格"}],
                  sample_no="S-RT", sampled_on="2025-03-01", production_date="2025-02-25", **extra)

    first = bromate("2025-03-05T10:00:00+08:00")
    retest = bromate("2025-04-10T10:00:00+08:00", retest=True, lab=TESTS_RETEST_LAB)
    state, _ = replay([registered("2025-01-02T09:00:00+08:00"), first, retest], rules)
    f = state.files[E]
    assert [(s.retest, s.superseded_as) for s in f.samples] == [(False, "retest"), (True, None)]  # (the re-test admitted)
    [entry] = _failures(state)
    assert entry[0] == first.occurred_at and entry[3] == str(retest.event_id)


# --------------------------------------------------------------------------- 3. improvements by dates, not by ticks


def _listing_ends(rules, ticks):
    """A clean maker (26 points: A) listed as 严重违法失信 on 2023-01-05 by the policy: D until 2026-01-05."""
    listed = Rules(rules.catalogue, Policy.model_validate({"risk": {"credit": {"serious_dishonesty": [
        {"enterprise_id": E, "decision_no": "某市市监信列〔2023〕1号", "listed_on": "2023-01-05", "authority": "某市市场监督管理局"}]}}}))
    events = [registered("2022-12-01T09:00:00+08:00", campaign_tier="A", scale="micro", population_served=100),
              tick("2023-01-05T00:00:00+08:00"), *[tick(t) for t in ticks]]
    state, _ = replay(events, listed)
    rs = state.files[E].risk
    return rs, [(h.grade, h.as_of.astimezone(CST).date()) for h in rs.history if h.grade != h.previous]


def test_a_listing_ending_improves_one_level_a_week_not_one_a_tick(rules):
    start = dt.datetime(2026, 1, 5, tzinfo=CST)
    every_ten_minutes = [start + dt.timedelta(minutes=10 * i) for i in range(16 * 24 * 6)]
    rs, moves = _listing_ends(rules, every_ten_minutes)
    # 20 minutes after the listing ended the grade was A; now one level, then one a week
    assert moves == [("A", dt.date(2022, 12, 1)), ("D", dt.date(2023, 1, 5)), ("C", dt.date(2026, 1, 5)),
                     ("B", dt.date(2026, 1, 12)), ("A", dt.date(2026, 1, 19))]
    # the same log with a tick at each midnight moves on the same days
    _, midnight = _listing_ends(rules, [start + dt.timedelta(days=i) for i in range(16)])
    assert midnight == moves


def test_a_held_improvement_says_until_when(rules):
    start = dt.datetime(2026, 1, 5, tzinfo=CST)
    rs, _ = _listing_ends(rules, [start, start + dt.timedelta(minutes=10)])
    assert (rs.grade, rs.current.band, rs.current.held) == ("C", "A", True)
    assert "风险等级降低（向 A 级调整）后须保持 7 天才可再降低（每次最多 1 级），暂定 C 级；如无新情况，2026-01-12 00:00 后的评定按分值调整" in rs.current.hold_zh


def test_improve_hold_days_is_policy():
    assert Policy().risk.improve_hold_days == 7
    assert "improve_hold_days" in Policy.model_json_schema()["$defs"]["RiskPolicy"]["properties"]


# --------------------------------------------------------------------------- 4. D's interval


def test_three_inspections_a_year_fit_in_a_year():
    risk = Policy().risk
    assert {g: risk.inspection_interval_days(g) for g in "ABCD"} == {"A": 730, "B": 365, "C": 182, "D": 121}
    assert 3 * risk.inspection_interval_days("D") <= 365


# --------------------------------------------------------------------------- 5. a revoked licence


def _revoked(at: str = "2026-05-18T15:00:00+08:00"):
    return ev("enforcement.decided", at, decision_no="示范县市监处罚〔2026〕20号", decided_on=at[:10],
              penalties=[{"kind": "licence_revoked"}], sample_nos=[], inspection_ids=[])


def test_a_revoked_licence_has_no_inspection_due_or_overdue(rules):
    events = [registered("2025-01-05T09:00:00+08:00"), _revoked()]
    state, effects = replay(events, rules)
    f = state.files[E]
    rs = f.risk
    assert f.licence_revoked == "示范县市监处罚〔2026〕20号"
    assert rs.grade == "C" and rs.next_inspection_due is None  # (58: B → C; B's inspection was due 2026-01-05)
    from processors.risk import rank

    [row] = rank(state, dt.date(2026, 6, 30))
    assert row["next_due"] is None and row["licence_revoked"] == "示范县市监处罚〔2026〕20号"
    assert row["reasons"] == ["许可证已吊销（决定书 示范县市监处罚〔2026〕20号），不再安排日常抽检和检查"]
    report = build_report(f, rules)
    assert report["grade"]["next_inspection_due"] is None and not report["grade"]["inspection_overdue"]
    assert "已逾期" not in render_text(report).split("【风险等级】")[1].split("主要原因")[0]
    # and says why there is no date, rather than leaving the line out
    assert "下次现场检查：无（许可证已吊销（决定书 示范县市监处罚〔2026〕20号），不再安排日常抽检和检查）" in render_text(report)
    # the grade rose: no plan to adjust for an enterprise that may not produce
    [d] = decisions(effects, "risk.grade_worsened")
    assert "调整检查和抽检计划" not in d["message_zh"]
    assert "许可证已吊销（决定书 示范县市监处罚〔2026〕20号），不再安排日常抽检和检查。" in d["message_zh"]


def test_a_revoked_licence_is_listed_with_the_closed_below_the_active(rules):
    from processors.risk import rank

    events = [registered("2025-01-05T09:00:00+08:00"), registered("2025-01-05T09:00:00+08:00", enterprise_id="E-2", campaign_tier="A"),
              _revoked()]
    state, _ = replay(events, rules)
    assert [r["enterprise_id"] for r in rank(state, dt.date(2026, 6, 30))] == ["E-2", E]


def test_a_revocation_at_an_unchanged_grade_ends_the_plan_and_its_reversal_restores_it(rules):
    # three failures: D; the revocation adds points but no grade, and still no inspection is due after it
    events = [registered("2026-01-05T09:00:00+08:00"), *(pa_sample(f"2026-0{m}-10T10:00:00+08:00") for m in (2, 3, 4))]
    state, _ = replay(events, rules)
    rs = state.files[E].risk
    assert rs.grade == "D" and rs.next_inspection_due is not None
    state, _ = step(state, _revoked(), rules)
    assert rs.grade == "D" and rs.next_inspection_due is None
    # the decision revoked on review: the licence is in force again, and so is the inspection plan
    state, _ = step(state, ev("enforcement.revoked", "2026-08-18T10:00:00+08:00", decision_no="示范县市监处罚〔2026〕20号",
                              revoked_on="2026-08-18"), rules)
    assert state.files[E].licence_revoked is None
    # due a D interval (121 days) from the day the licence came back, not from the registration (2026-05-05,
    # overdue the day it was restored): the months without a licence are no lateness
    assert rs.next_inspection_due == dt.date(2026, 8, 18) + dt.timedelta(days=121)
