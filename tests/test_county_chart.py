"""The county's chart of a category (全县包装饮用水类 per quarter): its Pareto is the period's, and its signal — and the
county alert it opened — is withdrawn when a re-test, a correction or a retraction leaves the period within its limit."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from processors.credit_file import CountyState
from processors.step import FOLD_VERSION, replay, step
from schemas.upcast import parse_event
from tests.conftest import golden
from tests.services import clickhouse_url, store  # noqa: F401 - fixtures
from tests.test_spc_second_review import _id, oxygen, registered, sample

A, B, C = "E-330110-001", "E-330110-002", "E-330110-003"
KEY = "county:packaged_water:fluctuation:p:2026Q2"
RETEST_LAB = "市食品药品检验研究院"


def chloroform(v: float) -> list[dict]:
    return [{"item_code": "chloroform", "values": [v], "unit": "mg/L"}]


def failing(eid: str, day: dt.date, sample_no: str):
    return sample(day, chloroform(0.03), eid=eid, sample_no=sample_no)


def retest_passing(eid: str, day: dt.date, sample_no: str):
    """Another lab's re-test, 25 days after sampling (15 after the original's report): admitted."""
    occurred = f"{(day + dt.timedelta(days=25)).isoformat()}T10:00:00+08:00"
    doc = sample(day, chloroform(0.003), eid=eid, sample_no=sample_no, lab=RETEST_LAB, occurred=occurred, raw=True)
    doc["payload"]["retest"] = True
    return parse_event(doc)


def corrected_passing(eid: str, day: dt.date, sample_no: str, occurred: str = "2026-06-20T10:00:00+08:00"):
    return sample(day, chloroform(0.003), eid=eid, sample_no=sample_no, occurred=occurred)


def retracted(eid: str, sample_no: str, occurred: str = "2026-06-20T10:00:00+08:00"):
    doc = golden("sampling.retracted")
    doc.update(event_id=_id(), enterprise_id=eid, occurred_at=occurred)
    doc["payload"]["sample_no"] = sample_no
    return parse_event(doc)


def old_failures():
    """耗氧量 failures of 2023, one a quarter (no county signal then): the all-time Pareto's first item."""
    return [sample(dt.date(2023, 3, 1), oxygen(3.0), eid=A, sample_no="OLD-A"),
            sample(dt.date(2023, 5, 1), oxygen(3.0), eid=B, sample_no="OLD-B"),
            sample(dt.date(2023, 8, 1), oxygen(3.0), eid=A, sample_no="OLD-A2")]


def two_producers():
    """2026 Q2: A's failure, then B's: 2 of 2 from two producers, the county's chart signals (tipped by B)."""
    return ([registered(A), registered(B)] + old_failures()
            + [failing(A, dt.date(2026, 4, 10), "A1"), failing(B, dt.date(2026, 5, 10), "B1")])


def county_signals(effects):
    return [e for e in effects if e.kind == "fluctuation.signal" and e.data.get("scope") == "category"]


def county_withdrawals(effects):
    return [e for e in effects if e.kind == "fluctuation.signal_withdrawn" and e.data.get("scope") == "category"]


# --------------------------------------------------------------------------- the Pareto of the period


def test_a_county_signal_points_at_its_periods_failing_items_not_at_old_ones(rules):
    state, effects = replay(two_producers(), rules)
    (signal,) = county_signals(effects)
    assert signal.enterprise_id == B and signal.data["period"] == "2026Q2"
    evidence = signal.data["evidence"]
    assert evidence["pareto_category"] == [{"item_code": "chloroform", "count": 2}]   # not 耗氧量 ×3 of 2023
    assert evidence["pareto_scope"] == {"enterprise": "2026Q2", "category": "2026Q2"}
    rates = state.categories["packaged_water"]
    assert rates.failing_items == {"oxygen_consumption": 3, "chloroform": 2}           # (the all-time counts stay)
    assert rates.period_items["2026Q2"] == {"chloroform": 2} and rates.period_items["2023Q1"] == {"oxygen_consumption": 1}


def test_the_period_pareto_follows_a_failure_taken_back(rules):
    state, _ = replay(two_producers() + [retest_passing(A, dt.date(2026, 4, 10), "A1")], rules)
    rates = state.categories["packaged_water"]
    assert rates.period_items["2026Q2"] == {"chloroform": 1} and rates.failing_items["chloroform"] == 1


def test_an_old_snapshot_without_period_pareto_restores_and_falls_back_to_all_time(rules):
    """A snapshot of fold version 45 has no ``period_items``: it restores; a period it had charted gives the Pareto since
    the log began (its earlier failures were never counted by period: a half-counted one would look whole), and says so;
    a period charted after the restore gives its own."""
    log = two_producers()
    head, _ = replay(log[:-1], rules)                      # up to A1: 2026Q2 charted already
    doc = json.loads(head.snapshot())
    for rates in doc["categories"].values():
        del rates["period_items"]
    old = CountyState.restore(json.dumps(doc).encode())
    assert old.categories["packaged_water"].period_items == {}
    state, effects = replay(log[-1:], rules, state=old)
    (signal,) = county_signals(effects)
    assert signal.data["evidence"]["pareto_scope"]["category"] == "all"
    assert signal.data["evidence"]["pareto_category"][0] == {"item_code": "oxygen_consumption", "count": 3}
    assert "2026Q2" not in state.categories["packaged_water"].period_items   # (its later failures not half-counted)
    later = [failing(A, dt.date(2026, 7, 10), "A3"), failing(B, dt.date(2026, 8, 10), "B3")]
    state, effects = replay(later, rules, state=state)
    (signal,) = county_signals(effects)
    assert signal.data["period"] == "2026Q3" and signal.data["evidence"]["pareto_scope"]["category"] == "2026Q3"
    assert signal.data["evidence"]["pareto_category"] == [{"item_code": "chloroform", "count": 2}]


def test_a_snapshot_restores_to_the_same_state_and_replay_is_deterministic(rules):
    log = two_producers() + [retest_passing(A, dt.date(2026, 4, 10), "A1")]
    one, e1 = replay(log, rules)
    two, e2 = replay(log, rules)
    assert one.snapshot() == two.snapshot() and [(e.kind, e.data) for e in e1] == [(e.kind, e.data) for e in e2]
    head, _ = replay(log[:5], rules)
    resumed, e3 = replay(log[5:], rules, state=CountyState.restore(head.snapshot()))
    assert resumed.snapshot() == one.snapshot()
    assert [(e.kind, e.data) for e in e3] == [(e.kind, e.data) for e in e1[-len(e3):]]
    assert FOLD_VERSION >= 46


# --------------------------------------------------------------------------- the signal withdrawn


@pytest.mark.parametrize("how", ["retest", "correction", "retraction"])
def test_a_county_signal_whose_failure_goes_is_withdrawn(rules, how):
    take_back = {"retest": retest_passing, "correction": corrected_passing}.get(how)
    event = take_back(A, dt.date(2026, 4, 10), "A1") if take_back else retracted(A, "A1")
    state, effects = replay(two_producers(), rules)
    state, effects = step(state, event, rules)
    (gone,) = county_withdrawals(effects)
    assert gone.enterprise_id == A     # the file whose failure went (the alert is under B: closed by its key)
    assert (gone.data["category"], gone.data["period"], gone.data["chart"]) == ("packaged_water", "2026Q2", "p")
    n = 1 if how == "retraction" else 2   # (a retracted sample leaves n too)
    assert gone.data["text_zh"] == (f"清源桶装水厂（{A}）抽样编号 A1 的不合格结论不再计入后，全县包装饮用水类 2026年第2季度抽检 {n} 批、"
                                    f"不合格 1 批，未超出控制上限，县级抽检不合格率信号撤销")
    quarter = state.categories["packaged_water"].periods["2026Q2"]
    assert (quarter.n, quarter.failed, quarter.signalled) == (n, 1, False)
    # no score moved: the county's chart scores nothing in any file
    assert not [x for f in state.files.values() for x in f.risk.entries if x[1] == "fluctuation_signal"]


def test_the_county_alert_closes_when_its_signal_is_withdrawn(rules):
    from alerts.messages import effect_title_zh, message_zh
    from tests.test_alerts import County, policy

    county = County(rules, policy())
    county.feed(*two_producers())
    (alert,) = [a for a in county.book.alerts.values() if a.dedup_key == KEY]
    assert (alert.state, alert.enterprise_id) == ("open", B)
    changes = county.feed(retest_passing(A, dt.date(2026, 4, 10), "A1"))
    assert alert.state == "closed" and KEY not in county.book.active_by_key
    (closing,) = [c for c in changes if c.alert is alert]
    assert closing.step.action == "close" and closing.step.actor == "qrisk"
    assert closing.step.note == (f"清源桶装水厂（{A}）抽样编号 A1 的不合格结论不再计入后，全县包装饮用水类 2026年第2季度抽检 2 批、"
                                 "不合格 1 批，未超出控制上限，县级抽检不合格率信号撤销，预警自动关闭")
    assert alert.closing_evidence["scope"] == "category" and alert.closing_evidence["category"] == "packaged_water"
    # whoever was told it opened hears it closed
    assert [n.reason for n in closing.notifications] and all(n.reason == "closed_by_system" for n in closing.notifications)
    _, effects = replay(two_producers() + [retest_passing(A, dt.date(2026, 4, 10), "A1")], rules)
    (gone,) = county_withdrawals(effects)
    assert effect_title_zh(gone) == "县级抽检不合格率信号撤销"
    assert message_zh(gone).startswith(f"清源桶装水厂（{A}）抽样编号 A1 的不合格结论不再计入后，全县包装饮用水类")
    # the period may signal again on a later failure: a new county alert under the same key
    county.feed(failing(A, dt.date(2026, 6, 1), "A2"))   # 2 of 3, from A and B again
    assert [a.state for a in county.book.alerts.values() if a.dedup_key == KEY] == ["closed", "open"]


def test_a_county_period_still_beyond_its_limit_stays_signalled(rules):
    """Three producers fail in the quarter (3 of 3); one failure overturned leaves 2 of 3 from two producers, beyond the
    limit: the signal and its alert stand."""
    from tests.test_alerts import County, policy

    log = two_producers() + [registered(C), failing(C, dt.date(2026, 5, 20), "C1")]
    county = County(rules, policy())
    county.feed(*log)
    changes = county.feed(retest_passing(A, dt.date(2026, 4, 10), "A1"))
    assert [a.state for a in county.book.alerts.values() if a.dedup_key == KEY] == ["open"]
    assert not [c for c in changes if c.alert.dedup_key == KEY]
    quarter = county.state.categories["packaged_water"].periods["2026Q2"]
    assert (quarter.n, quarter.failed, quarter.signalled) == (3, 2, True)
    _, effects = replay(log + [retest_passing(A, dt.date(2026, 4, 10), "A1")], rules)
    assert not county_withdrawals(effects)


def test_a_county_signal_left_with_one_producers_failures_is_withdrawn(rules):
    """A failed twice and B once (3 of 3): B's overturned leaves 2 of 3, beyond the limit but all A's — A's own chart
    says that (its signal stands); the county's, which waits for a second producer, is withdrawn."""
    log = [registered(A), registered(B), failing(A, dt.date(2026, 4, 10), "A1"), failing(A, dt.date(2026, 4, 20), "A2"),
           failing(B, dt.date(2026, 5, 10), "B1")]
    state, effects = replay(log, rules)
    assert len(county_signals(effects)) == 1
    state, effects = step(state, retest_passing(B, dt.date(2026, 5, 10), "B1"), rules)
    (gone,) = county_withdrawals(effects)
    assert gone.data["text_zh"] == (f"清源桶装水厂（{B}）抽样编号 B1 的不合格结论不再计入后，全县包装饮用水类 2026年第2季度抽检 3 批、"
                                    f"不合格 2 批，不合格批次仅来自 1 家企业（{A} 2 批），不足县级信号所需的 2 家"
                                    "（单个企业的问题由其自身的抽检不合格率图反映），县级抽检不合格率信号撤销")
    assert not [e for e in effects if e.kind == "fluctuation.signal_withdrawn" and e.data.get("scope") == "enterprise"]
    assert state.files[A].fluctuation.pass_rate["2026Q2"].signalled


def test_a_county_withdrawal_leaves_the_enterprises_own_pass_rate_score_alone(rules):
    """A's own chart signals (3 of 3: +points), and the county's with B's failure among 24 batches; A's first failure
    overturned leaves A 2 of 3 (still out) and the county 3 of 24 (within): the county's signal is withdrawn in A's
    file, and A's own score entry for the quarter stays."""
    log = [registered(A), registered(B), registered(C)]
    log += [sample(dt.date(2026, 4, 1) + dt.timedelta(days=i), chloroform(0.003), eid=C, sample_no=f"C{i}") for i in range(20)]
    log += [failing(A, dt.date(2026, 4, 25), "A1"), failing(A, dt.date(2026, 4, 26), "A2"), failing(A, dt.date(2026, 4, 27), "A3"),
            failing(B, dt.date(2026, 5, 10), "B1")]
    state, effects = replay(log, rules)
    assert len(county_signals(effects)) == 1
    entries = [x for x in state.files[A].risk.entries if x[1] == "fluctuation_signal"]
    assert entries
    state, effects = step(state, retest_passing(A, dt.date(2026, 4, 25), "A1"), rules)
    (gone,) = county_withdrawals(effects)
    assert gone.enterprise_id == A and "抽检 24 批、不合格 3 批，未超出控制上限" in gone.data["text_zh"]
    assert [x for x in state.files[A].risk.entries if x[1] == "fluctuation_signal"] == entries
    assert state.files[A].fluctuation.pass_rate["2026Q2"].signalled


def test_a_worker_holding_one_file_raises_and_withdraws_no_county_signal(rules):
    """A Kafka worker steps each event with a county of its one file (qrisk.worker): the county's chart is not there, so
    neither its signal nor its withdrawal is (their alerts are the embedded runtime's, README)."""
    state = CountyState()
    files: dict[str, object] = {}
    effects: list = []
    for event in two_producers() + [retest_passing(A, dt.date(2026, 4, 10), "A1")]:
        eid = event.enterprise_id
        alone = CountyState(files={eid: files[eid]} if eid in files else {}, categories={})
        alone, out = step(alone, event, rules)
        files[eid] = alone.files[eid]
        effects += out
    assert not county_signals(effects) and not county_withdrawals(effects)
    assert state.categories == {}


# --------------------------------------------------------------------------- the boards


def test_the_boards_mark_the_county_signal_withdrawn_and_its_alert_closed(store, rules):  # noqa: F811 - fixture
    """The signal is kept under B (who tipped it), its withdrawal under A (whose failure went): the county board's signal
    table marks it 已撤销 and the weekly count leaves it out; the latest alerts show the county alert 已关闭, and why."""
    from tests.test_dashboards import _fold_into, _panels

    pipeline = _fold_into(store, rules, two_producers())
    try:
        before = _panels(store, variables={"enterprise": B, "item": "x"})
        (row,) = [r for r in before[("county.json", "最新质量波动信号")] if r["范围"] == "全县·包装饮用水类"]
        assert row["状态"] == "" and row["企业"] == f"由 {B} 的抽检触发"
        counted = sum(r["信号数"] for r in before[("county.json", "质量波动信号（每周）")])
        pipeline.submit([retest_passing(A, dt.date(2026, 4, 10), "A1")])
        assert pipeline.wait_derived(60)
        got = _panels(store, variables={"enterprise": B, "item": "x"})
        (row,) = [r for r in got[("county.json", "最新质量波动信号")] if r["范围"] == "全县·包装饮用水类"]
        assert row["状态"] == "已撤销（不合格结论经复检、更正或撤销不再计入后，不再构成信号）"
        assert sum(r["信号数"] for r in got[("county.json", "质量波动信号（每周）")]) == counted - 1
        (alert,) = [r for r in got[("county.json", "最新预警")] if r["企业"] == f"县级（由 {B} 的抽检触发）"]
        assert alert["状态"].startswith("已关闭")
        assert "全县包装饮用水类 2026年第2季度抽检 2 批、不合格 1 批，未超出控制上限，县级抽检不合格率信号撤销，预警自动关闭" in alert["关闭原因"]
    finally:
        pipeline.close()
