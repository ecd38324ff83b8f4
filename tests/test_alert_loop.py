"""The alert loop as a supervisor lives it: an alert opens, is handled or goes away by itself, and what
each step tells whom — in the embedded pipeline and in a Kafka worker's fold alike."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from alerts.lifecycle import AlertActionError
from processors.step import Rules
from tests.test_alerts import County, act, failing, policy, unqualified
from tests.test_risk import E, ev, registered

# --------------------------------------------------------------------------- a withdrawn complaint-chart signal


def _unfounded_month():
    """Two complaints in March signal on the complaint chart; both are found 不属实 in the next days."""
    return [registered("2026-01-05T09:00:00+08:00"),
            ev("complaint.received", "2026-03-02T10:00:00+08:00", complaint_id="K1"),
            ev("complaint.received", "2026-03-09T10:00:00+08:00", complaint_id="K2"),
            ev("complaint.resolved", "2026-03-10T10:00:00+08:00", complaint_id="K1", verified=False, outcome="核查不属实"),
            ev("complaint.resolved", "2026-03-11T10:00:00+08:00", complaint_id="K2", verified=False, outcome="核查不属实"),
            # past the medium alert's 168 h: it would have escalated to the chief had it stayed open
            ev("clock.tick", "2026-03-30T00:00:00+08:00", enterprise_id="*")]


def test_a_signal_whose_complaints_were_all_unfounded_closes_its_alert_and_never_escalates(rules):
    c = County(rules, policy())
    log = _unfounded_month()
    c.feed(*log[:3])
    [alert] = [a for a in c.book.alerts.values() if a.rule == "fluctuation.signal"]
    assert alert.dedup_key == f"{E}:fluctuation:c:2026-03" and alert.state == "open"
    c.feed(log[3])
    assert alert.state == "open", "one complaint is still to be investigated"
    [closing] = [ch for ch in c.feed(log[4]) if ch.alert.alert_id == alert.alert_id]
    assert (closing.step.action, closing.step.to_state, closing.notifications) == ("close", "closed", [])
    assert closing.step.note.startswith("经核查投诉均不属实，信号撤销：2026年3月投诉 2 件（投诉编号 K1、K2）均不属实")
    assert alert.dedup_key not in c.book.active_by_key
    later = c.feed(log[5])
    assert not [ch for ch in later if ch.alert.alert_id == alert.alert_id] and not alert.escalated
    assert [s.action for s in alert.steps] == ["opened", "close"]


def test_a_signal_with_one_complaint_substantiated_keeps_its_alert(rules):
    c = County(rules, policy())
    log = _unfounded_month()
    log[4] = ev("complaint.resolved", "2026-03-11T10:00:00+08:00", complaint_id="K2", verified=True, outcome="属实")
    c.feed(*log)
    [alert] = [a for a in c.book.alerts.values() if a.rule == "fluctuation.signal"]
    assert alert.state == "open" and alert.escalated


def test_a_kafka_workers_fold_closes_the_withdrawn_signals_alert_as_the_embedded_pipeline_does(rules):
    from qrisk.worker import BatchOutput, Fold

    pol = policy()
    fold = Fold(Rules(catalogue=rules.catalogue, policy=pol), "log")
    c = County(rules, pol)
    for offset, event in enumerate(_unfounded_month()):
        doc = {**event.model_dump(mode="json"), "received_at": event.occurred_at.isoformat()}
        fold.apply(0, offset, json.dumps(doc, ensure_ascii=False).encode(), None, BatchOutput())
        c.feed(event)
    worker = {a.alert_id: (a.state, a.escalated, [s.action for s in a.steps]) for a in fold.files[E].alerts.alerts.values()}
    embedded = {a.alert_id: (a.state, a.escalated, [s.action for s in a.steps]) for a in c.book.alerts.values()}
    assert worker == embedded
    assert any(v == ("closed", False, ["opened", "close"]) for v in worker.values())
