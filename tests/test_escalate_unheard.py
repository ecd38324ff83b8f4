"""The escalation a start under a changed policy logs for what the replay escalated unheard (a silence lifted early):
logged before the policy is marked complete, asked of the alert's current wait, not sent twice by a later rebuild, and
never taken from a key (the door refuses qrisk's own steps; the fold takes one as qrisk's only while the alert waits)."""
from __future__ import annotations

import datetime as dt

import pytest
from services import clickhouse_url, store  # noqa: F401 - fixtures

from processors.step import Rules
from qrisk.pipeline import Pipeline
from qrisk.store import ChdbStore
from schemas.standards import load_catalogue
from tests.test_alerts import _SILENCE, act, failing, policy
from tests.test_risk import ev, registered

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


def _held(tmp_path, catalogue, now, silences=_SILENCE, steps=None) -> str:
    """A critical failure on 02-10 whose response deadline (02-11) passes in a 停产整顿 silence; ticks to 02-20.  ``steps``:
    day -> events a supervisor adds that day.  Returns the alert's id."""
    p = Pipeline(ChdbStore(tmp_path / "d"), Rules(catalogue=catalogue, policy=policy(silences=silences)), clock=lambda: now[0])
    p.recover()
    p.submit([registered("2026-01-05T09:00:00+08:00"), failing("2026-02-10T10:00:00+08:00")])
    [alert_id] = [k for k, a in p.alerts.alerts.items() if a.rule == "sampling.unqualified"]
    for day in range(11, 21):
        now[0] = dt.datetime(2026, 2, day, 1, 0, tzinfo=UTC)
        p.submit([ev("clock.tick", f"2026-02-{day:02d}T09:30:00+08:00", enterprise_id="*")])
        p.submit([e(alert_id) for e in (steps or {}).get(day, [])])
    assert not p.alerts.alerts[alert_id].escalated and alert_id in p.alerts.held
    p.close()
    return alert_id


def test_a_start_that_dies_before_logging_the_escalation_leaves_it_to_the_next(tmp_path, catalogue, monkeypatch):
    now = [dt.datetime(2026, 2, 10, 3, 0, tzinfo=UTC)]
    alert_id = _held(tmp_path, catalogue, now)
    now[0] = dt.datetime(2026, 2, 20, 2, 0, tzinfo=UTC)
    lifted = Rules(catalogue=catalogue, policy=policy(silences=[]))
    p = Pipeline(ChdbStore(tmp_path / "d"), lifted, clock=lambda: now[0])

    def killed(events, requests=None):
        raise RuntimeError("killed")  # (kill -9, or a log write that fails, while the escalation is logged)

    monkeypatch.setattr(p, "submit", killed)
    with pytest.raises(RuntimeError):
        p.recover()
    p.store.close()
    monkeypatch.undo()
    # the next start of the same directory and policy still sees the policy change, and escalates
    store = ChdbStore(tmp_path / "d")
    p = Pipeline(store, lifted, clock=lambda: now[0])
    p.recover()
    assert p.recovery["policy_changed"] and alert_id in p.recovery["escalated_unheard"]
    rows = store.query("SELECT reason, receiver FROM outbox WHERE alert_id = %(a)s ORDER BY receiver", {"a": alert_id})
    assert [(r["reason"], r["receiver"]) for r in rows] == [("escalated", "chief"), ("escalated", "desk"), ("escalated", "liangzhu")]
    p.close()
    # and once: a start after it escalates nothing again
    p = Pipeline(ChdbStore(tmp_path / "d"), lifted, clock=lambda: now[0])
    p.recover()
    assert p.recovery["escalated_unheard"] == []
    p.close()


def test_a_reopened_alert_escalated_in_its_earlier_wait_is_escalated_for_this_one(tmp_path, catalogue):
    # no silence at first: the failure escalates on 02-11 (told); closed on 02-12, reopened on 02-13 inside a 停产整顿
    # silence from 02-13, its new deadline (02-14) passes in the silence; on 02-20 the silence is taken out and qrisk restarted
    silences = [{**_SILENCE[0], "starts": "2026-02-13T00:00:00Z"}]
    now = [dt.datetime(2026, 2, 10, 3, 0, tzinfo=UTC)]
    steps = {12: [lambda a: act(a, "close", "2026-02-12T10:00:00+08:00", note="企业已停产，问题产品已下架召回")],
             13: [lambda a: act(a, "reopen", "2026-02-13T10:00:00+08:00", note="复查发现仍在生产")]}
    alert_id = _held(tmp_path, catalogue, now, silences, steps)
    now[0] = dt.datetime(2026, 2, 20, 2, 0, tzinfo=UTC)
    store = ChdbStore(tmp_path / "d")
    p = Pipeline(store, Rules(catalogue=catalogue, policy=policy(silences=[])), clock=lambda: now[0])
    p.recover()
    assert alert_id in p.recovery["escalated_unheard"]
    [last] = store.query("SELECT action, actor, note FROM alert_events WHERE alert_id = %(a)s ORDER BY at DESC LIMIT 1", {"a": alert_id})
    assert last["action"] == "escalated" and last["actor"] == "qrisk" and "静默已在策略文件中提前解除" in last["note"]
    p.close()


def test_a_rebuild_after_the_restart_escalation_sends_no_second_one(tmp_path, catalogue):
    from tests.test_upgrade_rebuild import Receiver, drain

    now = [dt.datetime(2026, 2, 10, 3, 0, tzinfo=UTC)]
    alert_id = _held(tmp_path, catalogue, now)
    now[0] = dt.datetime(2026, 2, 20, 2, 0, tzinfo=UTC)
    lifted = Rules(catalogue=catalogue, policy=policy(silences=[]))
    p = Pipeline(ChdbStore(tmp_path / "d"), lifted, clock=lambda: now[0])
    p.recover()
    assert alert_id in p.recovery["escalated_unheard"]
    p.close()
    store = ChdbStore(tmp_path / "d")
    first = Receiver()
    drain(store, lifted, now[0], first)
    store.close()
    # a day later, qrisk rebuild: the replay's own escalation at the deadline (02-12, within live_within_hours) is derived
    # again with ids never sent; its receivers had the restart's escalation, so it is recorded as not sent
    now[0] = dt.datetime(2026, 2, 21, 2, 0, tzinfo=UTC)
    p = Pipeline(ChdbStore(tmp_path / "d"), lifted, clock=lambda: now[0])
    p.recover(rebuild=True)
    p.close()
    store = ChdbStore(tmp_path / "d")
    second = Receiver()
    drain(store, lifted, now[0], second)
    reasons = {r["delivery_id"]: r["reason"] for r in store.query("SELECT delivery_id, reason FROM outbox FINAL WHERE alert_id = %(a)s",
                                                                   {"a": alert_id})}
    withheld = store.query("SELECT receiver, error FROM deliveries WHERE alert_id = %(a)s AND position(error, '策略变更后的启动时') > 0 "
                           "ORDER BY receiver", {"a": alert_id})
    store.close()
    assert [reasons[c] for c in first.calls if c in reasons].count("escalated") == 3
    assert [c for c in second.calls if reasons.get(c) in ("escalated", "handling_overdue")] == []
    assert [r["receiver"] for r in withheld] == ["chief", "desk", "liangzhu"]
    assert all(r["error"].startswith("重建派生表时由") for r in withheld)
