"""The alerts stage in the Kafka worker's fold, without a broker: the same alerts as the embedded
pipeline, carried to the sink in the effect messages, kept across a snapshot and a reload, and
escalated by the ticks that reach the partition."""
from __future__ import annotations

import collections
import datetime as dt
import json

from processors.step import Rules
from schemas.policy import Policy
from tests.test_alerts import RECEIVERS
from tests.test_alert_delivery import event, failing_sample

TP = collections.namedtuple("TP", "topic partition")
Message = collections.namedtuple("Message", "offset value")
NOW = dt.datetime(2026, 2, 10, 3, 0, tzinfo=dt.timezone.utc)  # an hour after the failing sample


def policy_rules(rules) -> Rules:
    pol = Policy.model_validate({"alerts": {"receivers": RECEIVERS, "routes": [{"receivers": ["desk"], "min_severity": "high"}],
                                            "escalate_to": ["chief"]}})
    return Rules(catalogue=rules.catalogue, policy=pol)


def messages(docs, received=NOW):
    from qrisk.kafka_log import event_value
    from schemas.upcast import parse_event

    events = [parse_event(d) for d in docs]
    return [event_value(e.model_copy(update={"received_at": received or e.occurred_at})) for e in events]


def fold_all(rules, raws, snapshot_every=100):
    from qrisk.worker import BatchOutput, Fold

    fold = Fold(rules, "log", snapshot_every=snapshot_every)
    out = BatchOutput()
    for offset, raw in enumerate(raws):
        fold.apply(0, offset, raw, 1_770_000_000_000, out)
    return fold, out


def story():
    return [event("enterprise.registered", "2026-01-05T09:00:00+08:00"), failing_sample("2026-02-10T10:00:00+08:00", "DC-9")]


def test_the_worker_opens_the_same_alert_as_the_embedded_pipeline_and_the_sink_writes_it(rules, tmp_path):
    from qrisk.pipeline import Pipeline
    from qrisk.sink import Sink
    from qrisk.store import open_store
    from qrisk.topics import KafkaSettings
    from schemas.upcast import parse_event

    r = policy_rules(rules)
    docs = story()
    fold, out = fold_all(r, messages(docs))
    (eid,) = fold.files
    kafka_alerts = fold.files[eid].alerts.alerts
    embedded = Pipeline(open_store(tmp_path / "embedded"), r, clock=lambda: NOW)
    embedded.submit([parse_event(d) for d in docs])
    assert set(kafka_alerts) == set(embedded.alerts.alerts)
    for aid, a in kafka_alerts.items():
        assert a.model_dump() == embedded.alerts.alerts[aid].model_dump()
    embedded.close()

    carried = [json.loads(v) for _, v in out.effects if b'"alert_rows"' in v]
    assert carried and all(set(d["alert_rows"]) == {"alerts", "alert_events", "outbox"} for d in carried)
    store = open_store(tmp_path / "sink")
    from qrisk.store import migrate

    migrate(store)
    settings = KafkaSettings()
    sink = Sink(store, settings, consumer=object())
    sink.process({TP(settings.topics().effects.name, 0): [Message(i, v) for i, (_, v) in enumerate(out.effects)]})
    assert sink.stats["bad_messages"] == 0
    rows = store.query("SELECT alert_id, state, kind FROM alerts FINAL ORDER BY alert_id")
    assert {(x["alert_id"], x["state"], x["kind"]) for x in rows} == {(a.alert_id, a.state, a.rule) for a in kafka_alerts.values()}
    unq = next(a for a in kafka_alerts.values() if a.rule == "sampling.unqualified")
    outbox = store.query("SELECT receiver, reason FROM outbox FINAL WHERE alert_id = %(id)s", {"id": unq.alert_id})
    assert outbox == [{"receiver": "desk", "reason": "opened"}]
    # the view the API in Kafka mode reads back
    from qrisk.kafka_api import DistributedBackend

    backend = DistributedBackend(settings, store, r, log=object())
    (view,) = backend.alert_views(unq.alert_id)
    assert view["state_zh"] == "待处置" and view["receivers"] == ["desk"] and view["event_ids"] == unq.event_ids
    store.close()


def test_alerts_survive_a_snapshot_and_a_reload_and_ticks_escalate_them(rules):
    from qrisk.worker import BatchOutput, Fold

    r = policy_rules(rules)
    raws = messages(story())
    fold, out = fold_all(r, raws, snapshot_every=1)
    (eid,) = fold.files
    before = fold.files[eid].alerts.model_dump()
    table = {}
    for key, value in out.writes:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    again = Fold(r, "log", snapshot_every=1)
    again.load(0, table.items())
    assert again.files[eid].alerts.model_dump() == before

    # 25 hours after the sample reached qrisk (an hour after its date) a tick reaches the partition: the
    # critical alert, unacknowledged, escalates once
    tick = messages([{**event("clock.tick", "2026-02-11T12:00:00+08:00"), "enterprise_id": "*", "payload": {}}], received=None)[0]
    out2 = BatchOutput()
    again.apply(0, len(raws), tick, 1_770_000_000_000, out2)
    unq = next(a for a in again.files[eid].alerts.alerts.values() if a.rule == "sampling.unqualified")
    assert unq.escalated and unq.steps[-1].action == "escalated"
    (msg,) = [json.loads(v) for _, v in out2.effects]
    told = {tuple(row[3:6]) for row in msg["alert_rows"]["outbox"]["rows"]}
    assert ("chief", "wecom", "escalated") in told and ("desk", "webhook", "escalated") in told
