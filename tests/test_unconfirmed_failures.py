"""A failure qrisk alone finds counts as the report's 合格 (SampleJudgement.counted).

A deputy director's review: the county's pass rate, a pastry maker's grade (D on +8 per failure) and the demo's
penalty rested on samples no lab had failed — each preservative 合格 on the report, qrisk's GB 2760 sum of ratios
over 1.  The lab's report is the legal conclusion (《食品安全抽样检验管理办法》): the statistics must match the
sampling system's, and qrisk's stricter reading is a discrepancy to take up with the lab (its 系统复核不合格 alert).
The judgement keeps qrisk's verdict; the counts, charts, Paretos, grading and KPIs count the conclusion."""
from __future__ import annotations

from processors.step import replay
from processors.warnings import ALERT_KIND
from tests.test_retest_scope import PROPIONIC, SORBIC, _item, _pastry
from tests.test_risk import E, registered

MEMBERS = [_item(SORBIC[0], [0.6], "g/kg", "合格", SORBIC[1]), _item(PROPIONIC[0], [1.2], "g/kg", "合格", PROPIONIC[1])]
SUM_NAME = "防腐剂混合使用时各自用量占其最大使用量的比例之和"


def _rules_fired(effects) -> list[str]:
    return [e.data["rule"] for e in effects if e.kind == ALERT_KIND]


def test_a_sum_the_lab_missed_is_qrisks_finding_counted_as_the_reports_pass(rules):
    report = _pastry("2026-04-10T16:00:00+08:00", MEMBERS)  # 0.6/1.0 + 1.2/2.5 = 1.08, each member 合格
    state, effects = replay([registered(category="pastry"), report], rules)
    f = state.files[E]
    (s,) = f.samples
    assert s.judgement.verdict == "fail" and s.judgement.unconfirmed and s.judgement.counted == "pass"
    c = f.counts
    assert (c.samples, c.samples_passed, c.samples_failed, c.samples_unconfirmed) == (1, 1, 0, 1) and f.pass_rate == 1.0
    # the charts count it as a pass, the Paretos not at all, the grade has no failure in it
    assert [(p.n, p.failed) for p in f.fluctuation.pass_rate.values()] == [(1, 0)]
    assert f.fluctuation.failing_items == {} and state.categories["pastry"].failing_items == {}
    assert not [e for e in f.risk.entries if e[1] == "sampling_failed"]
    # one alert says it, with what to do; not a second one for the disagreement it is
    fired = _rules_fired(effects)
    assert fired.count("sampling.unqualified") == 1 and "judgement.disagrees" not in fired
    (alert,) = [e.data for e in effects if e.kind == ALERT_KIND and e.data["rule"] == "sampling.unqualified"]
    assert alert["title_zh"] == "系统复核不合格（检验报告结论为合格）" and alert["severity"] == "medium"
    assert "检验机构出具不合格检验结论前" in alert["message_zh"]


def test_the_labs_corrected_report_failing_the_sum_makes_it_a_failure(rules):
    first = _pastry("2026-04-10T16:00:00+08:00", MEMBERS)
    corrected = _pastry("2026-04-12T10:00:00+08:00", [*MEMBERS, _item("preservative_ratio_sum", [1.08], "无量纲", "不合格", SUM_NAME)])
    state, effects = replay([registered(category="pastry"), first, corrected], rules)
    f = state.files[E]
    c = f.counts
    assert (c.samples, c.samples_passed, c.samples_failed, c.samples_unconfirmed) == (1, 0, 1, 0) and f.pass_rate == 0.0
    assert [(p.n, p.failed) for p in f.fluctuation.pass_rate.values()] == [(1, 1)]
    # the lab's printed sum and qrisk's own are one finding: counted once
    assert f.fluctuation.failing_items == {"sum_of_ratios:preservative": 1}
    current = next(s for s in f.samples if s.superseded_by is None)
    assert current.judgement.failed_codes() == ["sum_of_ratios:preservative"]
    points = rules.policy.risk.dynamic.sampling_failed.by_class["additive"]
    assert [e[2] for e in f.risk.entries if e[1] == "sampling_failed"] == [points]  # graded now, once


def test_a_failure_the_lab_shares_is_counted_as_before(rules):
    report = _pastry("2026-04-10T16:00:00+08:00", [*MEMBERS, _item("preservative_ratio_sum", [1.08], "无量纲", "不合格", SUM_NAME)])
    state, effects = replay([registered(category="pastry"), report], rules)
    f = state.files[E]
    (s,) = f.samples
    assert s.judgement.counted == "fail" and not s.judgement.unconfirmed
    assert (f.counts.samples_failed, f.counts.samples_unconfirmed) == (1, 0)
    (alert,) = [e.data for e in effects if e.kind == ALERT_KIND and e.data["rule"] == "sampling.unqualified"]
    assert alert["title_zh"] == "抽检不合格"


def test_a_report_the_lab_failed_on_another_item_is_a_failure_whatever_the_sum(rules):
    """A review of the round: the lab failed 酸价 (qrisk agreeing or not) and passed each preservative of a sum qrisk
    fails — the report is 不合格, and it counted as 合格 because only the disagreements were looked at."""
    acid = {"item_code": "acid_value", "item_name": "酸价", "values": [3.0], "unit": "mg/g", "lab_verdict": "不合格"}
    state, effects = replay([registered(category="pastry"), _pastry("2026-04-10T16:00:00+08:00", [*MEMBERS, acid])], rules)
    (s,) = state.files[E].samples
    assert s.judgement.verdict == "fail" and not s.judgement.unconfirmed and s.judgement.counted == "fail"
    assert (state.files[E].counts.samples_failed, state.files[E].counts.samples_unconfirmed) == (1, 0)
    (alert,) = [e.data for e in effects if e.kind == ALERT_KIND and e.data["rule"] == "sampling.unqualified"]
    assert alert["title_zh"] == "抽检不合格"


PRINTED = _item("preservative_ratio_sum", [1.08], "无量纲", "不合格", SUM_NAME)


def _charts_agree_with_counts(f, county) -> None:
    """The pass-rate charts and the Paretos hold what the counts hold, by the samples' conclusions."""
    c = f.counts
    assert sum(p.failed for p in f.fluctuation.pass_rate.values()) == c.samples_failed
    assert sum(p.n for p in f.fluctuation.pass_rate.values()) == c.samples_passed + c.samples_failed
    finals = [s for s in f.final_samples() if s.judgement is not None and s.judgement.counted == "fail"]
    want: dict[str, int] = {}
    for s in finals:
        for code in s.judgement.failed_codes():
            want[code] = want.get(code, 0) + 1
    assert f.fluctuation.failing_items == want and county.categories["pastry"].failing_items == want


def test_a_retest_decides_by_its_reports_conclusion_in_either_order(rules):
    """The first lab failed the printed sum; the re-test lab passed each preservative with the sum over 1: the
    re-test's report reads 合格, the legal conclusion.  Before, 'upheld' (复检维持不合格) in one order, the charts
    holding a failure the counts did not in another."""
    from tests.test_retest_scope import RETEST_LAB, _orders

    first = _pastry("2026-04-10T16:00:00+08:00", [*MEMBERS, PRINTED])
    again = [_item(SORBIC[0], [0.6], "g/kg", "合格", SORBIC[1]), _item(PROPIONIC[0], [1.25], "g/kg", "合格", PROPIONIC[1])]
    retest = _pastry("2026-05-06T10:30:00+08:00", again, retest=True)
    for order in _orders(first, retest):
        state, effects = replay([registered(category="pastry"), *order], rules)
        f = state.files[E]
        assert (f.counts.samples, f.counts.samples_failed, f.counts.samples_passed, f.counts.samples_unconfirmed) == (1, 0, 1, 1), order
        _charts_agree_with_counts(f, state)
        assert not [e for e in effects if e.kind == "sampling.failed" and e.data.get("confirms_event_id")], order
        assert not [e for e in f.risk.entries if e[1] == "sampling_failed"]
        assert RETEST_LAB == f.sample_by_event(str(retest.event_id)).lab


def test_a_correction_that_makes_or_unmakes_the_labs_failure_is_said_and_graded(rules):
    unconfirmed = _pastry("2026-04-10T16:00:00+08:00", MEMBERS)
    confirmed = _pastry("2026-04-12T10:00:00+08:00", [*MEMBERS, PRINTED])
    # the lab corrects its 合格 into 不合格: a failure, said as one (not only the 系统复核 alert), graded
    state, effects = replay([registered(category="pastry"), unconfirmed, confirmed], rules)
    said = [e for e in effects if e.kind == "sampling.failed" and e.event_id == str(confirmed.event_id)]
    assert said and state.files[E].counts.samples_failed == 1 and [e for e in state.files[E].risk.entries if e[1] == "sampling_failed"]
    _charts_agree_with_counts(state.files[E], state)
    # the other way: its 不合格 corrected into a report reading 合格 (qrisk still fails the sum) overturns the failure
    first = _pastry("2026-04-10T16:00:00+08:00", [*MEMBERS, PRINTED])
    later = _pastry("2026-04-12T10:00:00+08:00", MEMBERS)
    state, effects = replay([registered(category="pastry"), first, later], rules)
    assert [e for e in effects if e.kind == "sampling.overturned" and e.event_id == str(later.event_id)]
    closed = [e.data for e in effects if e.kind == "warning.resolved" and e.data["rule"] == "sampling.unqualified"]
    assert closed and state.files[E].counts.samples_failed == 0 and state.files[E].counts.samples_unconfirmed == 1
    assert not [e for e in state.files[E].risk.entries if e[1] == "sampling_failed"]
    _charts_agree_with_counts(state.files[E], state)


def test_a_retest_of_a_report_that_read_pass_is_not_admitted(rules):
    """(A review of the round) the first lab's report read 合格 — qrisk alone fails its sum — so there was no
    unqualified conclusion for the enterprise to dispute: a 复检 of it decides nothing."""
    from tests.test_retest_scope import _orders

    first = _pastry("2026-04-10T16:00:00+08:00", MEMBERS)
    retest = _pastry("2026-05-06T10:30:00+08:00", [_item(SORBIC[0], [0.3], "g/kg", "合格", SORBIC[1])], retest=True)
    for order in _orders(first, retest):
        state, effects = replay([registered(category="pastry"), *order], rules)
        f = state.files[E]
        assert f.sample_by_event(str(retest.event_id)).superseded_as == "retest_inadmissible", order
        (refused,) = [e for e in effects if e.kind == "sampling.retest_inadmissible"]
        assert refused.data["reason"] == "original_passed"
        assert (f.counts.samples, f.counts.samples_passed, f.counts.samples_unconfirmed) == (1, 1, 1)
