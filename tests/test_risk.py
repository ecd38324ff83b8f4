"""Risk grading in the fold: hand-computed grades from the default policy, the step limit,
the window, the as-of rule (no later event is used), and the demo's planted problems."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
import yaml

from processors.credit_file import CountyState
from processors.risk import rank
from processors.step import Rules, replay, step
from qrisk.backtest import end_of_day, state_as_of
from qrisk.settings import DEFAULT_POLICY
from schemas.policy import Policy
from schemas.upcast import parse_event
from tests.conftest import golden, lab_source

E = "E-330110-001"
_n = 0


def ev(event_type: str, at: str, enterprise_id: str = E, **payload):
    global _n
    _n += 1
    doc = golden(event_type)
    doc["event_id"] = str(uuid.UUID(int=0x7000_0000 + _n, version=4))
    doc["occurred_at"] = at
    doc["enterprise_id"] = enterprise_id
    doc["payload"].update(payload)
    if event_type == "sampling.result" and "lab" in payload:
        doc["source"] = lab_source(payload["lab"])
    return parse_event(doc)


def registered(at: str = "2026-01-05T09:00:00+08:00", enterprise_id: str = E, **changes):
    return ev("enterprise.registered", at, enterprise_id, **changes)


def pa_sample(at: str, values=(45, 59, 8, 61, 10), sample_no: str | None = None, enterprise_id: str = E):
    """Golden water sample: 铜绿假单胞菌 (a pathogen) decides pass or fail."""
    doc = golden("sampling.result")
    items = doc["payload"]["items"]
    items[0] = {**items[0], "values": list(values), "lab_verdict": "不合格" if max(values) > 0 else "合格"}
    day = at[:10]
    # (a batch numbered by its production date, as the golden one is)
    return ev("sampling.result", at, enterprise_id, items=items, sample_no=sample_no or f"S-{_n + 1}", sampled_on=day, production_date=day,
              batch=day.replace("-", ""))


def grades(state, enterprise_id: str = E):
    return [(h.grade, h.score) for h in state.files[enterprise_id].risk.history]


def test_default_policy_file_is_the_documented_default():
    with open(DEFAULT_POLICY, encoding="utf-8") as fh:
        assert Policy.model_validate(yaml.safe_load(fh)) == Policy()


def test_hand_computed_grades_with_the_default_policy(rules):
    # 包装饮用水 20 + small 6 + 12000 served (≥ 5000) 4 = static 30; credit: tier C 8  → 38 → B (30-45)
    state, _ = replay([registered()], rules)
    f = state.files[E]
    assert (f.risk.grade, f.risk.score) == ("B", 38.0)
    terms = {c.factor: c.points for c in f.risk.current.contributions}
    assert terms == {"static.category": 20, "static.scale": 6, "static.population": 4, "credit.campaign_tier": 8}
    # never inspected: due one B interval (365 days) after registration
    assert f.risk.next_inspection_due == dt.date(2027, 1, 5)

    # 铜绿假单胞菌 fails: pathogen 15 → 53 → C (45-60)
    state, effects = step(state, pa_sample("2026-03-12T15:20:00+08:00"), rules)
    assert (f.risk.grade, f.risk.score) == ("C", 53.0)
    graded = [e for e in effects if e.kind == "risk.graded"]
    assert len(graded) == 1 and graded[0].data["grade"] == "C" and graded[0].data["previous"] == "B" and graded[0].data["grade_changed"]
    sampling = next(c for c in f.risk.current.contributions if c.factor == "dynamic.sampling_failed")
    assert sampling.points == 15 and sampling.event_ids == [f.samples[0].event_id]

    # a verified complaint: +3 → 56, still C
    state, _ = step(state, ev("complaint.received", "2026-03-20T10:00:00+08:00", complaint_id="C1", verified=True), rules)
    assert (f.risk.grade, f.risk.score) == ("C", 56.0)

    # 不符合 8 + one major finding 2 = 10 → 66 → D (> 60); the next inspection is due 121 days on (3 a year: 365 / 3
    # rounded down, so that three intervals fit in a year — 122 made it 366 days)
    state, _ = step(state, ev("inspection.completed", "2026-03-25T10:30:00+08:00", inspection_id="I1", result="不符合",
                              findings=[{"code": "3.2", "description": "消毒记录不全", "severity": "major"}]), rules)
    assert (f.risk.grade, f.risk.score) == ("D", 66.0)
    assert f.risk.next_inspection_due == dt.date(2026, 3, 25) + dt.timedelta(days=121)
    assert grades(state) == [("B", 38.0), ("C", 53.0), ("C", 56.0), ("D", 66.0)]
    # the explanation adds up to the score
    for h in f.risk.history:
        assert sum(c.points for c in h.contributions) == pytest.approx(h.score)


@pytest.mark.parametrize("score, grade", [(0, "A"), (29.99, "A"), (30, "A"), (30.01, "B"), (45, "B"), (45.5, "C"),
                                          (60, "C"), (60.01, "D"), (100, "D")])
def test_band_upper_edges_are_inclusive(score, grade):
    # 食品生产经营风险分级管理办法（试行）第十六条: 0-30（含）A, 30-45（含）B, 45-60（含）C, 60 分以上 D
    assert Policy().risk.band(score) == grade


def test_a_clean_new_small_pastry_maker_scoring_exactly_30_is_a(rules):
    # 糕点 16 + small 6 + population not registered 2 + credit unrated 6 = 30: A (0-30 含), not B
    state, _ = replay([registered(category="pastry", population_served=None, campaign_tier="unrated")], rules)
    f = state.files[E]
    assert (f.risk.score, f.risk.grade, f.risk.current.band) == (30.0, "A", "A")


def test_non_permitted_additive_weighs_like_a_pathogen_and_quality_index_least(rules):
    p = rules.policy.risk.dynamic.sampling_failed.by_class
    assert p["pathogen"] == p["additive_not_permitted"] == max(p.values())
    assert p["quality_index"] == min(p.values())


def pastry_sample(at: str, made_on: str, code: str, value: float, sample_no: str):
    return ev("sampling.result", at, E, items=[{"item_code": code, "values": [value], "unit": "g/kg"}], sample_no=sample_no,
              sampled_on=at[:10], production_date=made_on, product="蛋糕")


def sampling_points(state) -> float:
    return next(c.points for c in state.files[E].risk.current.contributions if c.factor == "dynamic.sampling_failed")


def test_an_additive_weighs_by_the_rule_in_force_not_by_its_catalogue_class(rules):
    # 脱氢乙酸 is catalogued as an additive; GB 2760-2024 no longer permits it in pastries (from 2025-02-08):
    # a pastry made in 2026 containing it weighs like 苯甲酸 (never permitted in pastries), 15 points
    made_2026 = pastry_sample("2026-03-12T10:00:00+08:00", "2026-03-01", "dehydroacetic_acid", 0.2, "S-DHA")
    benzoic = pastry_sample("2026-03-12T10:00:00+08:00", "2026-03-01", "benzoic_acid", 0.2, "S-BA")
    dha_state, _ = replay([registered(category="pastry"), made_2026], rules)
    ba_state, _ = replay([registered(category="pastry"), benzoic], rules)
    assert sampling_points(dha_state) == sampling_points(ba_state) == 15
    assert dha_state.files[E].risk.score == ba_state.files[E].risk.score
    # made under GB 2760-2014 (limit 0.5 g/kg) and over it: exceeding a limit, an additive's 8 points
    made_2024 = pastry_sample("2024-11-12T10:00:00+08:00", "2024-11-01", "dehydroacetic_acid", 0.8, "S-DHA14")
    state, _ = replay([registered("2024-01-05T09:00:00+08:00", category="pastry"), made_2024], rules)
    assert sampling_points(state) == 8


def test_a_grade_moves_at_most_one_level_per_evaluation(rules):
    heavy = Rules(rules.catalogue, Policy.model_validate({"risk": {"dynamic": {"sampling_failed": {"by_class": {"pathogen": 40}}}}}))
    state, _ = replay([registered(), pa_sample("2026-03-12T15:20:00+08:00")], heavy)
    f = state.files[E]
    # 38 + 40 = 78 is a D score, but B may only move to C in one evaluation
    assert f.risk.score == 78.0 and f.risk.current.band == "D" and f.risk.grade == "C" and f.risk.current.held
    # the log's clock ticks every few minutes: a tick brings nothing new about the enterprise, so
    # the grade stays held (else the step limit would be undone ten minutes later)
    for day in ("2026-03-12T15:30:00+08:00", "2026-03-12T16:00:00+08:00", "2026-03-13T00:00:00+08:00"):
        state, effects = step(state, ev("clock.tick", day, enterprise_id="*"), heavy)
        assert f.risk.grade == "C" and not [e for e in effects if e.kind == "risk.graded"]
    # the enterprise's next event is the next evaluation: it moves on
    state, effects = step(state, ev("complaint.received", "2026-03-13T10:00:00+08:00", complaint_id="C9", text="桶装水有异味。"), heavy)
    assert f.risk.grade == "D" and not f.risk.current.held
    assert [e.data["rule"] for e in effects if e.kind == "warning.raised"] == ["risk.grade_worsened"]


def test_hold_days_keeps_a_grade_after_a_move(rules):
    held = Rules(rules.catalogue, Policy.model_validate({"risk": {"hold_days": 30}}))
    events = [registered(), pa_sample("2026-03-12T15:20:00+08:00"),
              ev("inspection.completed", "2026-03-25T10:30:00+08:00", inspection_id="I1", result="不符合",
                 findings=[{"code": "3.2", "description": "消毒记录不全", "severity": "major"}])]
    state, _ = replay(events, held)
    f = state.files[E]
    assert f.risk.score == 63.0 and f.risk.grade == "C"  # moved to C on 03-12: no second move within 30 days
    state, _ = step(state, ev("complaint.received", "2026-04-20T10:00:00+08:00", complaint_id="C2"), held)
    assert f.risk.grade == "D"


def test_hold_days_ends_exactly_hold_days_after_the_move(rules):
    # "after a move, the grade stays at least this many days" (schemas/policy.py risk.hold_days):
    # held while now < moved_at + hold_days, free again at that instant
    held = Rules(rules.catalogue, Policy.model_validate({"risk": {"hold_days": 30}}))
    moved = "2026-03-12T15:20:00+08:00"
    events = [registered(), pa_sample(moved),
              ev("inspection.completed", "2026-03-25T10:30:00+08:00", inspection_id="I1", result="不符合",
                 findings=[{"code": "3.2", "description": "消毒记录不全", "severity": "major"}])]
    state, _ = replay(events, held)
    f = state.files[E]
    assert f.risk.moved_at == dt.datetime.fromisoformat(moved)
    assert (f.risk.grade, f.risk.current.band) == ("C", "D")
    # one second before the 30 days are up: still held
    state, effects = step(state, ev("complaint.received", "2026-04-11T15:19:59+08:00", complaint_id="C2"), held)
    assert (f.risk.grade, f.risk.current.band) == ("C", "D") and f.risk.current.held
    # exactly 30 days after the move: the grade may move
    state, effects = step(state, ev("complaint.received", "2026-04-11T15:20:00+08:00", complaint_id="C3"), held)
    assert f.risk.grade == "D" and not f.risk.current.held
    assert f.risk.moved_at == dt.datetime.fromisoformat("2026-04-11T15:20:00+08:00")


def test_static_factors_are_capped_at_static_max(rules):
    # a bureau weighting packaged water 30: 30 + large 10 + 12000 served 4 = 44 > static.max 40
    heavy = Rules(rules.catalogue, Policy.model_validate({"risk": {"static": {"category": {"packaged_water": 30}}}}))
    state, _ = replay([registered(scale="large")], heavy)
    f = state.files[E]
    h = f.risk.current
    assert h.static == 40.0
    assert h.score == 48.0  # 40 + credit tier C 8
    terms = {c.factor: c.points for c in h.contributions}
    assert terms == {"static.category": 30, "static.scale": 10, "static.population": 4, "static.cap": -4,
                     "credit.campaign_tier": 8}
    cap = next(c for c in h.contributions if c.factor == "static.cap")
    assert cap.label_zh == "静态因素上限" and cap.detail_zh == "合计 44 分，按上限 40 分计"
    assert sum(c.points for c in h.contributions) == pytest.approx(h.score)


def test_failures_leave_the_window_and_the_grade_improves_one_step_at_a_time(rules):
    events = [registered("2025-01-02T09:00:00+08:00"), pa_sample("2025-01-10T10:00:00+08:00"),
              pa_sample("2025-01-20T10:00:00+08:00"), pa_sample("2025-02-01T10:00:00+08:00")]
    state, _ = replay(events, rules)
    f = state.files[E]
    assert f.risk.score == 38 + 40 and f.risk.grade == "D"  # three pathogen failures: 45, capped at 40
    # a year and a bit later, all three are out of the 365-day window; the first tick since takes the steps the dates
    # allowed: C when the second failure left (2026-01-20 10:00, score 53), B risk.improve_hold_days (7) later
    state, _ = step(state, ev("clock.tick", "2026-02-05T00:00:00+08:00", enterprise_id="*"), rules)
    assert f.risk.score == 38.0 and f.risk.current.band == "B" and f.risk.grade == "B" and not f.risk.current.held
    assert f.risk.moved_at == dt.datetime.fromisoformat("2026-01-27T10:00:00+08:00") and f.risk.moved_from == "C"
    assert not [e for e in f.risk.entries if e[1] == "sampling_failed"]


def test_an_improvement_is_held_improve_hold_days_whatever_events_come(rules):
    events = [registered("2025-01-02T09:00:00+08:00", campaign_tier="A"), pa_sample("2025-01-10T10:00:00+08:00"),
              pa_sample("2025-01-20T10:00:00+08:00"), pa_sample("2025-02-01T10:00:00+08:00")]
    state, _ = replay(events, rules)
    f = state.files[E]
    assert f.risk.grade == "D"
    # the second failure leaves on 2026-01-20 10:00 (score 45: band B): C from then
    state, _ = step(state, ev("clock.tick", "2026-01-21T00:00:00+08:00", enterprise_id="*"), rules)
    assert f.risk.grade == "C" and f.risk.current.band == "B" and f.risk.moved_at == dt.datetime.fromisoformat("2026-01-20T10:00:00+08:00")
    assert "风险等级降低（向 A 级调整）后须保持 7 天才可再降低" in f.risk.current.hold_zh and "2026-01-27 10:00 后的评定按分值调整" in f.risk.current.hold_zh
    # the next level only risk.improve_hold_days (7) after that improvement: an event of the enterprise does not hasten it
    state, _ = step(state, ev("complaint.received", "2026-01-25T10:00:00+08:00", complaint_id="C3"), rules)
    assert f.risk.grade == "C"
    state, _ = step(state, ev("clock.tick", "2026-01-27T09:50:00+08:00", enterprise_id="*"), rules)
    assert f.risk.grade == "C"
    state, _ = step(state, ev("clock.tick", "2026-01-27T10:00:00+08:00", enterprise_id="*"), rules)
    assert f.risk.grade == "B" and f.risk.moved_at == dt.datetime.fromisoformat("2026-01-27T10:00:00+08:00")


def test_a_complaint_found_untrue_stops_counting(rules):
    events = [registered(), ev("complaint.received", "2026-03-01T10:00:00+08:00", complaint_id="K1", verified=True)]
    state, _ = replay(events, rules)
    assert state.files[E].risk.score == 41.0
    state, _ = step(state, ev("complaint.resolved", "2026-03-05T10:00:00+08:00", complaint_id="K1", verified=False), rules)
    assert state.files[E].risk.score == 38.0


def test_serious_dishonesty_goes_straight_to_d(rules):
    listed = Rules(rules.catalogue, Policy.model_validate({"risk": {"credit": {"serious_dishonesty": [E]}}}))
    state, _ = replay([registered()], listed)
    f = state.files[E]
    assert f.risk.grade == "D" and f.risk.current.override == "serious_dishonesty"
    assert any(c.factor == "credit.serious_dishonesty" for c in f.risk.current.contributions)
    # by SAMR's name for the list (市场监督管理严重违法失信名单), as the decisions and the README say it
    from processors.risk import reasons_zh

    assert reasons_zh(f.risk.current)[0].startswith("列入严重违法失信名单：策略文件列入，未载明列入决定书与日期")
    assert reasons_zh(f.risk.current)[0].endswith("直接定为 D 级")


def test_no_grade_without_a_registration(rules):
    state, effects = replay([pa_sample("2026-03-12T15:20:00+08:00")], rules)
    assert state.files[E].risk.grade is None
    assert not [e for e in effects if e.kind == "risk.graded"]
    # (the lab's own 不合格 alerts, awaiting the registration: not a grade)
    assert [e.data["rule"] for e in effects if e.kind == "warning.raised"] in ([], ["judgement.lab_failed_unjudged"])
    assert rank(state, dt.date(2026, 3, 31))[0]["grade"] is None


def test_a_grade_never_uses_an_event_later_than_its_as_of_date(rules):
    day = dt.date(2026, 3, 31)
    history = [registered(), ev("enterprise.registered", "2026-01-05T09:30:00+08:00", enterprise_id="E-2"),
               pa_sample("2026-03-12T15:20:00+08:00", values=(0, 0, 0, 0, 0))]
    # planted: a failure and a nonconforming inspection just after the end of the day (local time), in the log before a
    # late-arriving event from the day itself
    future = [pa_sample("2026-04-01T00:00:01+08:00", enterprise_id="E-2"),
              ev("inspection.completed", "2026-04-02T10:00:00+08:00", inspection_id="I9", result="不符合")]
    late = [ev("complaint.received", "2026-03-31T23:59:00+08:00", complaint_id="K7", verified=True)]
    with_future = state_as_of(history + future + late, day, rules)
    without = state_as_of(history + late, day, rules)
    assert rank(with_future, day) == rank(without, day)
    assert with_future.snapshot() == without.snapshot()
    cut = end_of_day(day, rules)
    times = {str(e.event_id): e.occurred_at for e in history + future + late}
    for f in with_future.files.values():
        for h in f.risk.history:
            assert h.as_of < cut
            for c in h.contributions:
                assert all(times[i] <= h.as_of for i in c.event_ids if i in times), c
    # the late complaint (on the day) counts; the planted failure does not
    rows = {r["enterprise_id"]: r for r in rank(with_future, day)}
    assert rows[E]["score"] == 41.0 and rows["E-2"]["score"] == 38.0


def test_rank_lists_every_enterprise_riskiest_first_with_due_dates_and_reasons(rules):
    events = [registered(), registered(enterprise_id="E-2", campaign_tier="A", scale="micro", population_served=100),
              pa_sample("2026-03-12T15:20:00+08:00")]
    state = state_as_of(events, dt.date(2026, 4, 30), rules)
    rows = rank(state, dt.date(2026, 4, 30))
    assert [r["enterprise_id"] for r in rows] == [E, "E-2"]
    assert set(rows[0]) == {"enterprise_id", "score", "grade", "next_due", "reasons"}
    assert rows[0]["grade"] == "C" and rows[0]["reasons"][0].startswith("抽检不合格 +15")
    # E-2: 20 + 4 + 2 + tier A 0 = 26 → A, due two years after registration
    assert rows[1] == {**rows[1], "grade": "A", "score": 26.0, "next_due": "2028-01-05"}
    # a C enterprise never inspected is due half a year after registration: overdue by the end of July
    late = rank(state_as_of(events, dt.date(2026, 7, 31), rules), dt.date(2026, 7, 31))
    assert late[0]["reasons"][0].startswith("现场检查已逾期")


@pytest.fixture(scope="module")
def demo(rules):
    from qrisk.demo import CountyGenerator

    events = CountyGenerator(seed=7).generate()
    return events, replay(events, rules)[0]


def test_the_demo_planted_problems_rank_worst(demo, rules):
    events, state = demo
    day = max(e.occurred_at for e in events).date()
    rows = rank(state, day)
    assert {r["enterprise_id"] for r in rows[:2]} == {"W03", "P05"}
    # W03 is D; P05 ends on exactly 60, the top of C (第十六条: 45-60 含 is C, D only above 60)
    assert rows[0]["enterprise_id"] == "W03" and rows[0]["grade"] == "D" and rows[1]["grade"] in ("C", "D")
    by_id = {r["enterprise_id"]: r for r in rows}
    assert by_id["P09"]["grade"] in ("C", "D")  # overdue rectification
    # W07's cluster of four verified complaints (cap 12) made it C in May; the complaint chart's signal of that month
    # no longer adds 2 for the same complaints, and its acceptance in December (tier A, -4) leaves 44: B
    w07 = state.files["W07"].risk
    assert "C" in [h.grade for h in w07.history] and (w07.grade, w07.score) == ("B", 44.0)
    assert any(r.startswith("经核实投诉 +12") for r in by_id["W07"]["reasons"])
    assert sum(1 for r in rows if r["grade"] in ("A", "B")) >= len(rows) // 2  # most of the county is fine
    assert any("铜绿" in r or "抽检不合格" in r for r in by_id["W03"]["reasons"])


def test_every_explanation_adds_up_and_names_only_known_events(demo, rules):
    events, state = demo
    ids = {str(e.event_id) for e in events}
    for f in state.files.values():
        assert f.risk.history, f.enterprise_id
        for h in f.risk.history:
            assert sum(c.points for c in h.contributions) == pytest.approx(h.score, abs=0.011)
            assert all(i in ids for c in h.contributions for i in c.event_ids)


def test_graded_state_survives_snapshot_and_restore(demo):
    _, state = demo
    restored = CountyState.restore(state.snapshot())
    assert restored.snapshot() == state.snapshot()
    assert restored.files["W03"].risk.current == state.files["W03"].risk.current


def test_a_tick_that_prunes_the_window_does_not_move_a_grade_held_from_worsening(rules):
    """The tick drops an old failure from the window (the score changes), but it brings no new cause:
    a grade held back from worsening stays until the enterprise's next event, or until the hold has
    lasted risk.worsen_hold_days (here 30, so that the pruning tick falls within it)."""
    weights = Rules(rules.catalogue, Policy.model_validate(
        {"risk": {"worsen_hold_days": 30,
                  "static": {"category": {"packaged_water": 0}}, "dynamic": {"sampling_failed": {"by_class": {"pathogen": 30, "chemical": 8}}}}}))
    bromate = ev("sampling.result", "2025-01-10T10:00:00+08:00", E, items=[{"item_code": "bromate", "values": [0.05], "unit": "mg/L"}],
                 sample_no="S-BR", sampled_on="2025-01-10", production_date="2025-01-05")
    state, _ = replay([registered("2025-01-02T09:00:00+08:00"), bromate, pa_sample("2025-12-20T10:00:00+08:00")], weights)
    f = state.files[E]
    assert (f.risk.grade, f.risk.current.band, f.risk.current.held) == ("B", "C", True)
    state, _ = step(state, ev("clock.tick", "2026-01-11T00:00:00+08:00", enterprise_id="*"), weights)
    assert f.risk.score == 48.0 and f.risk.current.band == "C"  # the bromate failure left the window
    assert f.risk.grade == "B"
    # held since 2025-12-20 10:00: a tick 30 days later moves it on, naming the failure that raised the band
    state, _ = step(state, ev("clock.tick", "2026-01-19T10:00:00+08:00", enterprise_id="*"), weights)
    assert (f.risk.grade, f.risk.current.hold_expired) == ("C", True)
    assert "暂定 B 级已满 30 天（自 2025-12-20 起；起因：2025-12-20 抽检不合格（" in f.risk.current.hold_zh


def test_static_terms_cite_the_registration_and_the_tier_its_acceptance(rules):
    """The category, scale and population rest on the registration; an acceptance (campaign.assessment)
    sets the tier only: it is not the evidence of the static terms."""
    from processors.risk import explain
    from processors.step import replay
    from qrisk.demo import CountyGenerator

    events = CountyGenerator(seed=7).generate()
    state, _ = replay(events, rules)
    by_id = {str(e.event_id): e for e in events}
    checked = 0
    for f in state.files.values():
        if f.profile is None:
            continue
        terms = {c.factor: c.event_ids for c in explain(f, rules.policy.risk)}
        for factor in ("static.category", "static.scale", "static.population"):
            assert all(by_id[i].event_type.startswith("enterprise.") for i in terms[factor]), (f.enterprise_id, factor)
        if any(by_id[i].event_type == "campaign.assessment" for i in terms["credit.campaign_tier"]):
            checked += 1
    assert checked > 0  # some enterprise's tier was set by its acceptance


def test_the_tier_cites_the_event_that_set_it_not_a_failed_acceptance(rules):
    from processors.step import replay

    def event(event_type, at, **payload):
        doc = golden(event_type)
        doc["event_id"] = str(uuid.uuid4())
        doc["occurred_at"] = at
        doc["payload"].update(payload)
        return parse_event(doc)

    tiering = event("campaign.assessment", golden("campaign.assessment")["occurred_at"], tier="B")
    failed = event("campaign.assessment", "2026-06-01T10:00:00+08:00", kind="acceptance", tier="A", passed=False, assessed_on="2026-06-01")
    state, _ = replay([registered(), tiering, failed], rules)
    f = state.files[E]
    assert f.risk.tier_event_id == str(tiering.event_id) != str(failed.event_id)
