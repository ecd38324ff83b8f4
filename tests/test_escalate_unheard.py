"""The escalation a start under a changed policy logs for what the replay escalated unheard (a silence lifted early):
logged before the policy is marked complete, asked of the alert's current wait, not sent twice by a later rebuild, and
never taken from a key (the door refuses qrisk's own steps; the fold takes one as qrisk's only while the alert waits)."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from services import clickhouse_url, store  # noqa: F401 - fixtures

from ingest.validate import DOOR, Rejection, decode_body, validate_document
from processors.step import Rules
from qrisk.pipeline import Pipeline
from qrisk.store import ChdbStore
from schemas.events import Source
from schemas.standards import load_catalogue
from tests.conftest import golden
from tests.test_alerts import _SILENCE, County, act, failing, policy
from tests.test_risk import E, ev, registered

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


# ---------------------------------------------------------------------- qrisk's own step, from a key


def _own(alert_id: str, at: str, **changes):
    e = ev("alert.action", at, E, alert_id=alert_id, action="escalate", actor="qrisk", note="")
    return e.model_copy(update={"source": Source(kind="system", id="qrisk"), **changes})


def test_qrisk_own_escalation_of_an_alert_not_waiting_for_one_is_an_ordinary_escalation(rules):
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00"), failing("2026-02-10T10:00:00+08:00"))
    [aid] = [k for k, a in c.book.alerts.items() if a.rule == "sampling.unqualified"]
    c.feed(act(aid, "start_rectification", "2026-02-10T11:00:00+08:00"))
    told = [len(ch.notifications) for i in range(3) for ch in c.feed(_own(aid, f"2026-02-10T12:0{i}:00+08:00"))]
    alert = c.book.alerts[aid]
    # under rectification: no deadline owes it an escalation; the hourly guard holds the second and third
    assert told[0] > 0 and told[1:] == [0, 0]
    assert [s.action for s in alert.steps[-3:]] == ["escalate"] * 3 and not alert.handling_escalated


def test_qrisk_own_escalation_of_an_alert_past_its_deadline_is_the_deadline_s(rules):
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00"), failing("2026-02-10T10:00:00+08:00"))
    [aid] = [k for k, a in c.book.alerts.items() if a.rule == "sampling.unqualified"]
    before = c.book.alerts[aid].respond_by
    # (not yet due: an ordinary escalation)
    [early] = [ch for ch in c.feed(_own(aid, "2026-02-10T12:00:00+08:00")) if ch.alert.alert_id == aid]
    assert early.step.action == "escalate"
    # past its time to respond, unacknowledged: qrisk's escalation for it
    late = before + dt.timedelta(hours=3)
    [due] = [ch for ch in c.feed(_own(aid, late.isoformat())) if ch.alert.alert_id == aid]
    assert due.step.action == "escalated" and {n.reason for n in due.notifications} == {"escalated"}


def _posted(**changes) -> dict:
    doc = golden("alert.action")
    doc["payload"] = {**doc["payload"], "action": "escalate"}
    for k, v in changes.items():
        if k == "kind":
            doc["source"] = {**doc["source"], "kind": v}
        else:
            doc["payload"][k] = v
    return doc


@pytest.mark.parametrize("changes, fields", [({"kind": "system"}, ["source.kind"]), ({"actor": "qrisk"}, ["payload.actor"]),
                                             ({"kind": "system", "actor": "qrisk"}, ["source.kind", "payload.actor"])])
def test_the_door_refuses_qrisk_own_steps_naming_the_field(changes, fields):
    doc = _posted(**changes)
    raw = json.dumps(doc).encode()
    refused = validate_document(doc, None, raw, DOOR)
    assert isinstance(refused, Rejection) and [e["field"] for e in refused.errors] == fields
    assert all(e["reason_zh"].startswith("qrisk 自身的处置步骤不经接口提交") and "qrisk's own steps are not posted" in e["reason"]
               for e in refused.errors)
    # the HTTP door (its fast path for valid bodies too), a batch beside a good step
    events, rejections = decode_body(json.dumps([_posted(), doc]).encode())
    assert len(events) == 1 and [r.index for r in rejections] == [1] and [e["field"] for e in rejections[0].errors] == fields
    # the log re-read (no door): kept as it was logged
    assert not isinstance(validate_document(doc, None, raw, None), Rejection)


def test_a_supervisor_s_escalation_passes_the_door():
    events, rejections = decode_body(json.dumps(_posted()).encode())
    assert len(events) == 1 and rejections == []


def test_the_door_and_the_alert_fold_name_qrisks_own_actor_alike():
    import alerts.lifecycle
    import ingest.validate

    assert ingest.validate.SYSTEM == alerts.lifecycle.SYSTEM
