"""A pass-rate signal withdrawn and raised again: the boards tell a withdrawn signal from a later valid one of the same
period (withdrawals matched in the log's order), say why a signal was withdrawn without claiming the period is within its
limit, and a failure that counts again (a re-test corrected back to 不合格, a re-test not admitted) re-checks the period's
charts — the enterprise's and the county's category chart — so the withdrawn signal and its alert come back."""
from __future__ import annotations

import datetime as dt

from processors.credit_file import CountyState
from processors.step import FOLD_VERSION, replay, step
from schemas.upcast import parse_event
from tests.services import clickhouse_url, store  # noqa: F401 - fixtures
from tests.test_county_chart import (A, B, KEY, RETEST_LAB, chloroform, county_signals, county_withdrawals, failing,
                                     retest_passing, two_producers)
from tests.test_spc_second_review import registered, sample

C, D = "E-330110-003", "E-330110-004"
Q2 = dt.date(2026, 4, 10)
WITHDRAWN_ZH = "已撤销（不合格结论经复检、更正或撤销不再计入后，不再构成信号）"


def retest_corrected_failing(eid: str, day: dt.date, sample_no: str, days_after: int = 27):
    """The re-test lab's correction of its own report: 不合格 after all (the same lab, the same sample, retest)."""
    occurred = f"{(day + dt.timedelta(days=days_after)).isoformat()}T10:00:00+08:00"
    doc = sample(day, chloroform(0.03), eid=eid, sample_no=sample_no, lab=RETEST_LAB, occurred=occurred, raw=True)
    doc["payload"]["retest"] = True
    return parse_event(doc)


def enterprise_signals(effects):
    return [e for e in effects if e.kind == "fluctuation.signal" and e.data.get("scope") == "enterprise" and e.data.get("chart") == "p"]


def enterprise_withdrawals(effects):
    return [e for e in effects if e.kind == "fluctuation.signal_withdrawn" and e.data.get("scope") == "enterprise"]


def signalled_again_by_another_producer():
    """The review's scenario: 2026Q2 signals on A's and B's failures (tipped by B), A's passing re-test withdraws it,
    and D's failure later in the quarter signals the county's chart again (2 of 3, from B and D)."""
    return two_producers() + [retest_passing(A, Q2, "A1"), registered(D), failing(D, dt.date(2026, 6, 1), "D1")]


# --------------------------------------------------------------------------- 3. a failure counted again


def test_a_retest_corrected_back_to_failing_raises_the_withdrawn_county_signal_again(rules):
    state, _ = replay(two_producers() + [retest_passing(A, Q2, "A1")], rules)
    quarter = state.categories["packaged_water"].periods["2026Q2"]
    assert (quarter.failed, quarter.signalled) == (1, False)
    state, effects = step(state, retest_corrected_failing(A, Q2, "A1"), rules)
    (again,) = county_signals(effects)
    assert again.enterprise_id == A and again.data["counted_again"] == "A1" and again.data["period"] == "2026Q2"
    assert again.data["text_zh"].startswith(f"清源桶装水厂（{A}）抽样编号 A1 的不合格结论恢复计入后，本县包装饮用水类 2026年第2季度抽检 2 批、不合格 2 批")
    assert again.data["evidence"]["pareto_category"] == [{"item_code": "chloroform", "count": 2}]
    assert {f["sample_no"] for f in again.data["evidence"]["failures"]} == {"A1", "B1"}
    assert (quarter.failed, quarter.signalled) == (2, True)
    assert not county_withdrawals(effects)


def test_a_retest_corrected_back_to_failing_raises_the_enterprises_signal_and_score_again(rules):
    log = [registered(A), failing(A, Q2, "A1"), failing(A, dt.date(2026, 4, 20), "A2")]
    state, effects = replay(log, rules)
    assert len(enterprise_signals(effects)) == 1
    score = [x for x in state.files[A].risk.entries if x[1] == "fluctuation_signal"]
    assert score
    state, effects = step(state, retest_passing(A, Q2, "A1"), rules)
    assert len(enterprise_withdrawals(effects)) == 1
    assert not [x for x in state.files[A].risk.entries if x[1] == "fluctuation_signal"]
    state, effects = step(state, retest_corrected_failing(A, Q2, "A1"), rules)
    (again,) = enterprise_signals(effects)
    assert again.data["counted_again"] == "A1"
    assert again.data["text_zh"].startswith("抽样编号 A1 的不合格结论恢复计入后，2026年第2季度抽检 2 批、不合格 2 批")
    assert state.files[A].fluctuation.pass_rate["2026Q2"].signalled
    assert [x[1] for x in state.files[A].risk.entries if x[1] == "fluctuation_signal"] == ["fluctuation_signal"]


def test_the_county_alert_opens_again_saying_why(rules):
    from tests.test_alerts import County, policy

    county = County(rules, policy())
    county.feed(*two_producers(), retest_passing(A, Q2, "A1"))
    assert [a.state for a in county.book.alerts.values() if a.dedup_key == KEY] == ["closed"]
    county.feed(retest_corrected_failing(A, Q2, "A1"))
    alerts = [a for a in county.book.alerts.values() if a.dedup_key == KEY]
    assert [a.state for a in alerts] == ["closed", "open"]
    assert "抽样编号 A1 的不合格结论恢复计入后" in alerts[-1].message_zh


def test_a_period_still_signalled_is_not_raised_twice_when_a_failure_counts_again(rules):
    """Three producers (3 of 3); A's passing re-test leaves 2 of 3 from two producers: the signal stands; A's re-test
    corrected back to 不合格 counts it again — the period is signalled already: no second signal."""
    log = two_producers() + [registered(C), failing(C, dt.date(2026, 5, 20), "C1"), retest_passing(A, Q2, "A1")]
    state, effects = replay(log, rules)
    assert len(county_signals(effects)) == 1 and not county_withdrawals(effects)
    state, effects = step(state, retest_corrected_failing(A, Q2, "A1"), rules)
    assert not county_signals(effects) and not enterprise_signals(effects)
    assert state.categories["packaged_water"].periods["2026Q2"].failed == 3


def test_an_original_whose_earlier_retest_is_not_admitted_is_checked_as_any_failure(rules):
    """A's passing re-test from the original's own lab arrives first and is counted; the original's failure then comes
    and the re-test is not admitted (same lab): the failure counts, and with B's makes 2 of 2 from two producers — the
    county's chart signals (it stayed silent: the failure was put back in the counts unchecked)."""
    doc = sample(Q2, chloroform(0.003), eid=A, sample_no="A1", occurred="2026-05-01T10:00:00+08:00", raw=True)
    doc["payload"]["retest"] = True
    early = parse_event(doc)
    original = sample(Q2, chloroform(0.03), eid=A, sample_no="A1", occurred="2026-05-05T10:00:00+08:00")
    state, effects = replay([registered(A), registered(B), failing(B, dt.date(2026, 5, 10), "B1"), early], rules)
    assert not county_signals(effects)
    state, effects = step(state, original, rules)
    assert [e.data["reason"] for e in effects if e.kind == "sampling.retest_inadmissible"] == ["same_lab"]
    (signal,) = county_signals(effects)
    assert signal.data["counted_again"] == "A1"
    assert signal.data["text_zh"].startswith(f"清源桶装水厂（{A}）抽样编号 A1 复检结果不予采信，原不合格结论计入后，本县包装饮用水类 2026年第2季度抽检 2 批、不合格 2 批")


def test_replay_and_snapshots_are_deterministic_with_a_signal_raised_again(rules):
    log = two_producers() + [retest_passing(A, Q2, "A1"), retest_corrected_failing(A, Q2, "A1")]
    one, e1 = replay(log, rules)
    two, e2 = replay(log, rules)
    assert one.snapshot() == two.snapshot() and [(e.kind, e.data) for e in e1] == [(e.kind, e.data) for e in e2]
    head, _ = replay(log[:-1], rules)
    resumed, e3 = replay(log[-1:], rules, state=CountyState.restore(head.snapshot()))
    assert resumed.snapshot() == one.snapshot()
    assert [(e.kind, e.data) for e in e3] == [(e.kind, e.data) for e in e1[-len(e3):]]
    assert FOLD_VERSION >= 47


# --------------------------------------------------------------------------- 1. and 2. the boards


def _signal_rows(got, scope):
    return [r for r in got[("county.json", "最新质量波动信号")] if r["范围"] == scope]


def test_a_county_signal_raised_again_after_a_withdrawal_is_not_shown_withdrawn(store, rules):  # noqa: F811 - fixture
    """2026Q2 signals (A, B), A's passing re-test withdraws it, D's failure signals it again: the first is 已撤销 and not
    counted; the second — after the withdrawal — is a signal and counted (matched by category, chart and period alone,
    it showed 已撤销 too)."""
    from tests.test_dashboards import _fold_into, _panels

    log = signalled_again_by_another_producer()
    _, effects = replay(log, rules)
    assert len(county_signals(effects)) == 2 and len(county_withdrawals(effects)) == 1
    pipeline = _fold_into(store, rules, log)
    try:
        got = _panels(store, variables={"enterprise": B, "item": "x"})
    finally:
        pipeline.close()
    rows = {r["企业"]: r["状态"] for r in _signal_rows(got, "全县·包装饮用水类")}
    assert rows == {f"由 {B} 的抽检触发": WITHDRAWN_ZH, f"由 {D} 的抽检触发": ""}
    assert sum(r["信号数"] for r in got[("county.json", "质量波动信号（每周）")]) == 1


def test_an_enterprise_signal_raised_again_after_a_withdrawal_is_not_shown_withdrawn(store, rules):  # noqa: F811 - fixture
    """A's own chart: A1 and A2 signal 2026Q2, A1's passing re-test withdraws it, A3 fails and it signals again; then a
    withdrawal of the second (A2's passing re-test) marks the second, and the first stays marked once."""
    from tests.test_dashboards import _fold_into, _panels

    log = [registered(A), failing(A, Q2, "A1"), failing(A, dt.date(2026, 4, 20), "A2"), retest_passing(A, Q2, "A1"),
           failing(A, dt.date(2026, 5, 5), "A3")]
    _, effects = replay(log, rules)
    assert len(enterprise_signals(effects)) == 2 and len(enterprise_withdrawals(effects)) == 1
    pipeline = _fold_into(store, rules, log)
    try:
        got = _panels(store, variables={"enterprise": A, "item": "x"})
        rows = sorted((r["时间"], r["状态"]) for r in got[("enterprise.json", "质量波动信号")] if r["产品与项目"].startswith("抽检不合格率"))
        assert [s for _, s in rows] == [WITHDRAWN_ZH, ""]
        assert sum(r["信号数"] for r in got[("county.json", "质量波动信号（每周）")]) == 1
        pipeline.submit([retest_passing(A, dt.date(2026, 4, 20), "A2")])
        assert pipeline.wait_derived(60)
        got = _panels(store, variables={"enterprise": A, "item": "x"})
    finally:
        pipeline.close()
    rows = sorted((r["时间"], r["状态"]) for r in got[("enterprise.json", "质量波动信号")] if r["产品与项目"].startswith("抽检不合格率"))
    assert [s for _, s in rows] == [WITHDRAWN_ZH, WITHDRAWN_ZH]


def test_a_county_signal_withdrawn_while_still_beyond_its_limit_is_not_said_within_it(store, rules):  # noqa: F811 - fixture
    """A twice and B once (3 of 3); B's passing re-test leaves 2 of 3, beyond the limit but one producer's: the county's
    signal is withdrawn; the board said 未超出控制上限 of it."""
    from tests.test_dashboards import _fold_into, _panels

    log = [registered(A), registered(B), failing(A, Q2, "A1"), failing(A, dt.date(2026, 4, 20), "A2"),
           failing(B, dt.date(2026, 5, 10), "B1"), retest_passing(B, dt.date(2026, 5, 10), "B1")]
    pipeline = _fold_into(store, rules, log)
    try:
        got = _panels(store, variables={"enterprise": A, "item": "x"})
    finally:
        pipeline.close()
    (row,) = _signal_rows(got, "全县·包装饮用水类")
    assert row["状态"] == WITHDRAWN_ZH and "未超出控制上限" not in row["状态"]
