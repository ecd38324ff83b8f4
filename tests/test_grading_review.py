"""A statistician's review of the risk grading (repro scripts grade_hold.py, plan_lower.py, c_chart.py), each
finding folded through the real ``replay()`` / ``step()``:

1. a grade held back from worsening stayed held until the enterprise's next event, months later;
2. one shift in an item series scored a fluctuation signal on every batch that kept signalling;
3. a verified complaint scored twice: as a verified complaint and in the complaint chart's signal.
"""
from __future__ import annotations

import datetime as dt

import pytest

from processors.step import Rules, replay, step
from processors.ids import event_key
from schemas.policy import Policy
from tests.test_risk import E, ev, registered

TICKS_FROM = dt.date(2025, 2, 10)


def tick(day: dt.date):
    return ev("clock.tick", f"{day.isoformat()}T00:00:00+08:00", enterprise_id="*")


def graded(effects):
    return [e for e in effects if e.kind == "risk.graded"]


def worsened(effects):
    return [e for e in effects if e.kind == "warning.raised" and e.data["rule"] == "risk.grade_worsened"]


# --------------------------------------------------------------------------- 1. the hold ends


def test_a_grade_held_from_worsening_moves_on_at_a_tick_once_the_hold_has_lasted_its_period(rules):
    """grade_hold.py: an inspection 不符合 with two critical findings takes an A plant to 46 (band C); the grade
    moves to B (one level per evaluation) and, with only clock ticks after it, to C at the first tick seven days
    on (risk.worsen_hold_days) — not half a year later at an unrelated passing sample."""
    assert Policy().risk.worsen_hold_days == 7
    inspection = ev("inspection.completed", "2025-02-10T10:30:00+08:00", inspection_id="JC1", result="不符合",
                    findings=[{"code": "1.1", "description": "未按规定消毒", "severity": "critical"},
                              {"code": "2.1", "description": "出厂检验记录缺失", "severity": "critical"}])
    state, effects = replay([registered("2025-01-02T09:00:00+08:00", campaign_tier="A"), inspection], rules)
    f = state.files[E]
    held = f.risk.current
    assert (held.score, held.band, held.grade, held.held) == (46.0, "C", "B", True)
    assert held.hold_cause_event_id == event_key(inspection) and held.hold_since == inspection.occurred_at
    assert "起因：2025-02-10 现场检查问题（JC1）" in held.hold_zh and "满 7 天（2025-02-17 10:30）后的定时评定按分值调整" in held.hold_zh
    # six and a half days on: still held, nothing said
    state, effects = step(state, tick(dt.date(2025, 2, 17)), rules)
    assert f.risk.grade == "B" and not graded(effects) and not worsened(effects)
    # the first tick after the seven days moves it on, the warning with it
    release = tick(dt.date(2025, 2, 24))
    state, effects = step(state, release, rules)
    entry = f.risk.current
    assert (entry.grade, entry.previous, entry.held, entry.hold_expired) == ("C", "B", False, True)
    assert entry.cause_event_id == event_key(release)  # the evaluation ran after the tick ...
    assert entry.hold_cause_event_id == event_key(inspection)  # ... the grade moved because of the inspection
    assert entry.hold_zh == ("暂定 B 级已满 7 天（自 2025-02-10 起；起因：2025-02-10 现场检查问题（JC1）），期间无新情况，"
                             "按分值 46（对应 C 级）调整为 C 级")
    [data] = [g.data for g in graded(effects)]
    assert data["hold_expired"] and data["hold_cause_event_id"] == event_key(inspection) and data["hold_zh"] == entry.hold_zh
    [warning] = worsened(effects)
    assert warning.data["event_id"] == event_key(release) and "由 B 级变为 C 级" in warning.data["message_zh"]
    assert warning.data["evidence"]["event_ids"][0] == event_key(inspection)  # the cause first
    assert "主要原因：暂定 B 级已满 7 天（自 2025-02-10 起；起因：2025-02-10 现场检查问题（JC1））" in warning.data["message_zh"]
    # the inspection plan follows C from now: twice a year, 182 days after the inspection (B: once, 2026-02-10)
    assert f.risk.next_inspection_due == dt.date(2025, 8, 11)
    # the rest of the half year: nothing more
    for k in range(2, 26):
        state, effects = step(state, tick(TICKS_FROM + dt.timedelta(days=7 * k)), rules)
        assert f.risk.grade == "C" and not worsened(effects)


def test_without_new_events_a_grade_worsens_one_level_per_hold_period(rules):
    """A-tier water plant (30, A) whose pathogen failure weighs 40: 70 is a D score.  One level per evaluation:
    B at the failure, C at the first tick a week on, D a week after that — each warning names the failure."""
    heavy = Rules(rules.catalogue, Policy.model_validate({"risk": {"dynamic": {"sampling_failed": {"by_class": {"pathogen": 40}}}}}))
    from tests.test_risk import pa_sample

    failure = pa_sample("2025-02-10T10:00:00+08:00", sample_no="S-PA")
    state, _ = replay([registered("2025-01-02T09:00:00+08:00", campaign_tier="A"), failure], heavy)
    f = state.files[E]
    assert (f.risk.score, f.risk.current.band, f.risk.grade) == (70.0, "D", "B")
    seen = []
    for k in range(1, 5):
        state, effects = step(state, tick(TICKS_FROM + dt.timedelta(days=7 * k)), heavy)
        seen.append(f.risk.grade)
        for w in worsened(effects):
            assert event_key(failure) in w.data["evidence"]["event_ids"]
    assert seen == ["B", "C", "D", "D"]  # 02-17 00:00 is within the week from 02-10 10:00; 02-24 releases; 03-03 (a week on) too
    moved = [h for h in f.risk.history if h.hold_expired]
    assert [h.grade for h in moved] == ["C", "D"] and all(h.hold_cause_event_id == event_key(failure) for h in moved)
    assert "起因：2025-02-10 抽检不合格（S-PA）" in moved[0].hold_zh and "暂定 C 级" in moved[0].hold_zh


def test_a_tick_within_the_hold_never_moves_a_grade_and_an_event_still_does(rules):
    """The step limit keeps its meaning: ticks minutes later do not undo it; the enterprise's next event is
    the next evaluation (as before)."""
    heavy = Rules(rules.catalogue, Policy.model_validate({"risk": {"dynamic": {"sampling_failed": {"by_class": {"pathogen": 40}}}}}))
    from tests.test_risk import pa_sample

    state, _ = replay([registered(), pa_sample("2026-03-12T15:20:00+08:00")], heavy)
    f = state.files[E]
    for at in ("2026-03-12T15:30:00+08:00", "2026-03-15T00:00:00+08:00", "2026-03-19T15:19:00+08:00"):
        state, effects = step(state, ev("clock.tick", at, enterprise_id="*"), heavy)
        assert f.risk.grade == "C" and not graded(effects)
    state, effects = step(state, ev("complaint.received", "2026-03-13T10:00:00+08:00", complaint_id="C9"), heavy)
    assert f.risk.grade == "D" and not f.risk.current.hold_expired


def test_worsen_hold_days_is_policy(rules):
    assert "worsen_hold_days" in Policy.model_json_schema()["$defs"]["RiskPolicy"]["properties"]
    with pytest.raises(ValueError):
        Policy.model_validate({"risk": {"worsen_hold_days": 0}})


# --------------------------------------------------------------------------- 2. one shift, one episode


def _oxygen(day: dt.date, value: float, no: str):
    # 耗氧量, a legal maximum (2.0 mg/L): a rise is the hazard its chart watches
    return ev("sampling.result", f"{day.isoformat()}T10:00:00+08:00", E, sample_no=no, sampled_on=day.isoformat(),
              production_date=day.isoformat(), product="饮用纯净水",
              items=[{"item_code": "oxygen_consumption", "values": [value], "unit": "mg/L"}])


BASELINE = [1.00, 1.05, 0.95, 1.02, 0.98, 1.04, 0.97, 1.01]
SERIES = "饮用纯净水·耗氧量（以O₂计）"


def _series(values, days: int = 30):
    start = dt.date(2025, 1, 6)
    log = [registered("2025-01-02T09:00:00+08:00")]
    log += [_oxygen(start + dt.timedelta(days=days * i), v, f"S{i}") for i, v in enumerate(values)]
    return log


def _signal_entries(state):
    return [(e[0].date().isoformat(), e[2], e[4]) for e in state.files[E].risk.entries if e[1] == "fluctuation_signal"]


def test_a_shift_that_keeps_signalling_scores_once(rules):
    """plan_lower.py, as a rise: a plant's 耗氧量 jumps from ~1.0 to ~1.8 mg/L and stays there; every later batch
    signals against the frozen limits.  Four warnings, one risk entry (was 4 × 2)."""
    state, effects = replay(_series(BASELINE + [1.8, 1.8, 1.85, 1.8]), rules)
    assert len([e for e in effects if e.kind == "fluctuation.signal"]) == 4
    assert _signal_entries(state) == [("2025-09-03", 2.0, SERIES)]
    term = next(c for c in state.files[E].risk.current.contributions if c.factor == "dynamic.fluctuation_signal")
    assert (term.points, term.count) == (2.0, 1)


def test_a_series_scores_again_once_it_re_arms_or_the_shift_lasts_a_period(rules):
    # re-armed: batches without a signal between the episodes
    state, effects = replay(_series(BASELINE + [1.9] + [1.0] * 6 + [1.9], days=7), rules)
    signalled = [e.data["index"] for e in effects if e.kind == "fluctuation.signal"]
    assert signalled == [9, 10, 11, 16]  # (the EWMA lingers two batches after the spike: its early limits no longer 1.5× too wide)
    assert [d for d, _, _ in _signal_entries(state)] == ["2025-03-03", "2025-04-21"]
    # the shift still signalling a full quarter (spc.pass_rate_period) after it scored: once more
    state, _ = replay(_series(BASELINE + [1.8, 1.8, 1.85, 1.8, 1.8]), rules)
    assert [d for d, _, _ in _signal_entries(state)] == ["2025-09-03", "2026-01-01"]


# --------------------------------------------------------------------------- 3. a verified complaint, once


def _month(rules, resolutions, verified_on_receipt=False):
    # four in a month: the complaint chart's exact Poisson limit at 0.3 a month is 3
    events = [registered("2025-01-02T09:00:00+08:00"),
              ev("complaint.received", "2025-03-03T10:00:00+08:00", complaint_id="K1", verified=verified_on_receipt),
              *(ev("complaint.received", f"2025-03-{day}T10:00:00+08:00", complaint_id=f"K{i}") for i, day in ((2, 10), (3, 15), (4, 20)))]
    events += [ev("complaint.resolved", f"2025-03-2{i + 5}T16:00:00+08:00", complaint_id=cid, verified=verified, outcome="核查结果")
               for i, (cid, verified) in enumerate(resolutions)]
    state, _ = replay(events, rules)
    terms = {c.factor: c for c in state.files[E].risk.current.contributions}
    return state.files[E].risk, terms


def test_a_verified_complaint_is_not_scored_again_in_the_complaint_charts_signal(rules):
    """c_chart.py: four complaints in March signal on the complaint chart (+2).  One is found 不属实, another
    verified: one real complaint, scored 3 as a verified complaint — not 3 + 2."""
    risk, terms = _month(rules, [])
    assert terms["dynamic.fluctuation_signal"].points == 2.0 and "dynamic.complaint_verified" not in terms
    risk, terms = _month(rules, [("K1", False)])
    assert terms["dynamic.fluctuation_signal"].points == 2.0  # K2-K4 still being looked into: the signal stands for them
    risk, terms = _month(rules, [("K1", False), ("K2", True)])
    assert terms["dynamic.complaint_verified"].points == 3.0 and risk.current.dynamic == 3.0  # was 5
    signal = terms["dynamic.fluctuation_signal"]  # on record, at 0 points, saying why
    assert signal.points == 0 and signal.count == 0
    assert signal.detail_zh == "投诉数 2025-03 信号当月已有投诉核实属实，按经核实投诉计分，该信号不再重复计分"
    assert sum(c.points for c in risk.current.contributions) == pytest.approx(risk.score)


def test_verifying_a_complaint_of_a_signalled_month_never_lowers_the_score(rules):
    before, _ = _month(rules, [])
    after, terms = _month(rules, [("K1", True)])  # K2-K4 still open
    assert before.current.dynamic == 2.0 and after.current.dynamic == 3.0
    assert terms["dynamic.fluctuation_signal"].points == 0
    # a complaint verified on receipt: the month's signal never adds to it
    risk, terms = _month(rules, [], verified_on_receipt=True)
    assert risk.current.dynamic == 3.0 and terms["dynamic.fluctuation_signal"].points == 0
    # all found 不属实: the signal is withdrawn (as before)
    risk, terms = _month(rules, [(f"K{i}", False) for i in range(1, 5)])
    assert "dynamic.fluctuation_signal" not in terms and risk.current.dynamic == 0


def test_a_policy_that_weighs_signals_at_nothing_says_no_complaint_was_verified(rules):
    """Only a complaint chart's signal rests at 0 for a verified complaint: a bureau weighing signals at 0 gets its
    series' signals listed as before, not explained away by complaints."""
    nothing = Rules(rules.catalogue, Policy.model_validate({"risk": {"dynamic": {"fluctuation_signal": {"points": 0}}}}))
    state, _ = replay(_series(BASELINE + [1.8]), nothing)
    term = next(c for c in state.files[E].risk.current.contributions if c.factor == "dynamic.fluctuation_signal")
    assert (term.points, term.count) == (0, 1) and "核实" not in term.detail_zh


def test_the_folds_with_the_review_fixes_replay_deterministically(rules):
    log = _series(BASELINE + [1.8, 1.8, 1.85, 1.8]) + [tick(dt.date(2026, 1, 5))]
    a, ea = replay(log, rules)
    b, eb = replay(log, rules)
    assert a.snapshot() == b.snapshot() and [e.data for e in ea] == [e.data for e in eb]
