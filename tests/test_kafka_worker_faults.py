"""On the real broker, a real worker: one valid event must not stop a partition, and the Kafka ingress
refuses what the HTTP door refuses.

A 437 kB sampling.result (200 items the catalogue lacks, each failed by the lab) makes a 3 MB effects
message.  The effects topic took the broker's default 1 MB: the broker refused it, the worker stopped
(exit 70) before acknowledging, and met the same event at every start — every enterprise on that log
partition frozen.  And the ingress agent took a valid-looking record with a key given twice (the
one-pass parser keeps the last copy) where the HTTP door refuses it.
"""
from __future__ import annotations

import json
import re
import uuid

import pytest

from tests.conftest import free_port, golden
from tests.kafka_service import (  # noqa: F401 - fixtures
    WorkerProcess, kafka_bootstrap, kafka_env, read_topic, settings_for, wait_for,
)


def _event(event_type: str, eid: str) -> dict:
    doc = golden(event_type)
    doc["event_id"] = str(uuid.uuid4())
    doc["enterprise_id"] = eid
    return doc


def big_sample(eid: str) -> dict:
    """A valid sampling.result of ~440 kB whose effects are ~3 MB: 200 items qrisk cannot judge (codes the
    catalogue lacks), each failed by the lab — every one is named in judgement.lab_failed_unjudged, in the
    warning and in the alert's evidence."""
    doc = _event("sampling.result", eid)
    doc["payload"]["sample_no"] = f"DC{uuid.uuid4().hex[:12]}"
    doc["payload"]["items"] = [{"item_code": f"x_unlisted_{i}", "item_name": ("未列名项目" * 40)[:196] + f"{i:04d}", "values": [1.5] * 50,
                                "unit": "mg/L", "method": "方" * 200, "standard_ref": "标" * 200, "lab_verdict": "不合格"} for i in range(200)]
    return doc


@pytest.fixture(scope="module")
def run(tmp_path_factory, kafka_bootstrap):
    """Fresh topics (as `qrisk topics create` declares them) and one worker process, metrics page on."""
    from qrisk.topics import create_topics, delete_topics

    tmp = tmp_path_factory.mktemp("kafka-worker-faults")
    prefix = f"f{uuid.uuid4().hex[:8]}"
    env = kafka_env(kafka_bootstrap, prefix)
    settings = settings_for(env)
    create_topics(settings)
    port = free_port()
    worker = WorkerProcess(env, tmp, "worker", web_port=port).start()
    try:
        yield {"env": env, "settings": settings, "topics": settings.topics(), "worker": worker, "port": port}
    finally:
        worker.stop()
        delete_topics(settings, [t.name for t in settings.topics().all()])


def _submit(run, *docs: dict) -> None:
    from qrisk.kafka_log import KafkaLog
    from schemas.upcast import parse_event

    with KafkaLog(run["settings"]) as klog:
        klog.submit([parse_event(d) for d in docs])


def _effects(bootstrap: str, topic: str, event_id: str) -> list[dict]:
    return [doc for m in read_topic(bootstrap, topic, 30) if (doc := json.loads(m.value))["event_id"] == event_id]


def _letters(bootstrap: str, topic: str) -> dict[str, dict]:
    return {json.loads(m.value)["dead_letter_id"]: json.loads(m.value) for m in read_topic(bootstrap, topic, 30)}


def _folded(run, kafka_bootstrap, event_id: str, timeout: float = 90) -> list[dict]:
    """The effects messages of ``event_id``, once there (the worker alive meanwhile)."""
    topic = run["topics"].effects.name
    found: list[dict] = []

    def there() -> bool:
        assert run["worker"].alive(), run["worker"].tail()
        found[:] = _effects(kafka_bootstrap, topic, event_id)
        return bool(found)

    wait_for(there, timeout, f"the effects of {event_id}", interval=1, on_timeout=run["worker"].tail)
    return found


def _metrics(port: int) -> dict[str, float]:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/qrisk/metrics/", timeout=10).text
    return {m[1]: float(m[2]) for m in re.finditer(r"^(qrisk_worker_\w+(?:\{[^}]*\})?) (\S+)$", text, re.M)}


def test_a_valid_event_whose_effects_pass_one_megabyte_is_folded_and_its_effects_published(run, kafka_bootstrap):
    from qrisk.topics import EFFECTS_MESSAGE_MAX_BYTES, admin_client, topic_config

    admin = admin_client(run["settings"])
    try:
        assert int(topic_config(admin, run["topics"].effects.name, "max.message.bytes")) == EFFECTS_MESSAGE_MAX_BYTES
    finally:
        admin.close()
    eid = "E-FX-1"
    sample = big_sample(eid)
    assert len(json.dumps(sample, ensure_ascii=False).encode()) < 500_000
    _submit(run, _event("enterprise.registered", eid), sample)
    (message,) = _folded(run, kafka_bootstrap, sample["event_id"])
    kinds = {e["kind"] for e in message["effects"]}
    assert {"sampling.judged", "judgement.lab_failed_unjudged", "warning.raised"} <= kinds, kinds
    assert message["judgement_rows"]["rows"] and message["alert_rows"]["alerts"]["rows"]
    assert len(json.dumps(message, ensure_ascii=False).encode()) > 2_000_000  # past the broker's default limit
    # and the partition goes on
    after = _event("enterprise.updated", eid)
    _submit(run, after)
    _folded(run, kafka_bootstrap, after["event_id"])
    assert run["worker"].alive(), run["worker"].tail()


def test_effects_the_topic_still_refuses_are_dead_lettered_and_the_partition_goes_on(run, kafka_bootstrap):
    """The effects topic's limit lowered behind the worker's back (a topic whose limit could not be
    raised, a broker-wide policy): the broker refuses the message; the event is named in a dead letter,
    a processing.failed effect takes the message's place, and the next event of the partition is folded."""
    from kafka.admin import ConfigResource, ConfigResourceType

    from qrisk.topics import admin_client

    topics = run["topics"]
    eid = "E-FX-2"
    _submit(run, _event("enterprise.registered", eid))
    sample = big_sample(eid)
    admin = admin_client(run["settings"])
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topics.effects.name, configs={"max.message.bytes": "1000000"})])
        _submit(run, sample)
        (message,) = _folded(run, kafka_bootstrap, sample["event_id"])
        after = _event("enterprise.updated", eid)
        _submit(run, after)
        _folded(run, kafka_bootstrap, after["event_id"])
    finally:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topics.effects.name, configs=dict(topics.effects.config))])
        admin.close()
    (failed,) = message["effects"]
    assert failed["kind"] == "processing.failed" and failed["event_id"] == sample["event_id"]
    letter_id = failed["data"]["dead_letter_id"]
    assert letter_id == f"processing-{sample['event_id']}:effects"
    letter = _letters(kafka_bootstrap, topics.dead_letters.name)[letter_id]
    assert letter["channel"] == "processing" and letter["position"].startswith(f"{topics.events.name}/")
    assert json.loads(letter["raw"])["event_id"] == sample["event_id"]  # the event itself, traceable
    (error,) = letter["errors"]
    assert error["type"] == "effects_too_large" and error["size"] > 1_000_000 and error["field"]
    assert "effects" in error["reason"] and "max.message.bytes" in error["reason"]
    assert "ClickHouse" in error["reason_zh"] and "处理结果" in error["reason_zh"]
    assert letter["reason"].startswith("effects_too_large: ")
    wait_for(lambda: _metrics(run["port"]).get("qrisk_worker_effects_too_large_total", 0) >= 1, 30, "the count of replaced effects")
    assert run["worker"].alive(), run["worker"].tail()


def test_the_ingress_refuses_a_key_given_twice_as_the_http_door_does(run, kafka_bootstrap):
    """The ingress agent's fast path (pydantic's one-pass parser) kept the last copy of a key given twice
    and logged the record as it came: ``"values": [0.5], "values": [0.01]`` judged by 0.01."""
    from ingest.validate import decode_body
    from tests.test_duplicate_keys import _twice
    from tests.test_kafka_ingress_limits import _send

    topics = run["topics"]
    doc = _event("sampling.result", "E-FX-3")
    raw = _twice(doc).encode("utf-8")
    _, (http,) = decode_body(raw)  # what POST /v1/events answers for the same bytes
    topic = topics.ingress["lab"].name
    md = _send(kafka_bootstrap, topic, raw, b"E-FX-3")
    letter_id = f"kafka:{topic}:{md.partition}:{md.offset}"
    wait_for(lambda: letter_id in _letters(kafka_bootstrap, topics.dead_letters.name), 90, f"dead letter {letter_id}",
             interval=1, on_timeout=run["worker"].tail)
    letter = _letters(kafka_bootstrap, topics.dead_letters.name)[letter_id]
    assert letter["raw"].encode("utf-8") == raw
    twice = [e for e in letter["errors"] if e["type"] == "duplicate_key"]
    assert twice == [e for e in http.errors if e["type"] == "duplicate_key"] and twice[0]["field"] == "payload.items[1].values"
    assert letter["reason"] == http.reason
    # and nothing of it reached the log (a later record of the same partition did)
    after = _event("enterprise.registered", "E-FX-3")
    md2 = _send(kafka_bootstrap, topics.ingress["import"].name, json.dumps(after, ensure_ascii=False).encode(), b"E-FX-3")
    assert md2 is not None
    wait_for(lambda: after["event_id"] in {json.loads(m.value)["event_id"] for m in read_topic(kafka_bootstrap, topics.events.name, 30)},
             90, "the next event in the log", interval=1, on_timeout=run["worker"].tail)
    assert doc["event_id"] not in {json.loads(m.value)["event_id"] for m in read_topic(kafka_bootstrap, topics.events.name, 30)}


def test_the_fold_replaces_effects_past_its_limit_and_the_sink_takes_the_replacement():
    """Without a broker: a worker whose effects topic could not be raised (``LimitRefused``) folds with a
    lower limit; an effects message past it is replaced before it is sent, and the replacement (the
    alert steps kept when they fit) is rows the sink writes."""
    from qrisk.runtime import default_rules
    from qrisk.sink import Sink
    from qrisk.topics import KafkaSettings
    from qrisk.worker import BatchOutput, Fold

    eid = "E-FX-4"
    sample = big_sample(eid)
    raws = [json.dumps({**d, "received_at": "2026-11-26T00:00:00+00:00"}, ensure_ascii=False).encode()
            for d in (_event("enterprise.registered", eid), sample)]
    whole, small = BatchOutput(), BatchOutput()
    for limit, out in ((None, whole), (2_000_000, small)):
        fold = Fold(default_rules(None), "q.events")
        if limit:
            fold.effects_max_bytes = limit
        for offset, raw in enumerate(raws):
            fold.apply(0, offset, raw, None, out)
    assert whole.effects_too_large == 0 and len(whole.effects[-1][1]) > 2_000_000
    assert small.effects_too_large == 1 and len(small.effects) == len(small.origins) == len(whole.effects)
    replaced = json.loads(small.effects[-1][1])
    (failed,) = replaced["effects"]
    assert failed["kind"] == "processing.failed" and "effects_too_large" in failed["data"]["reason"]
    # the alert steps (~1 MB) fit without the rest: kept, so the supervisors are still told
    assert replaced["alert_rows"] == json.loads(whole.effects[-1][1])["alert_rows"]
    (letter,) = small.letters
    assert letter.dead_letter_id == failed["data"]["dead_letter_id"] and letter.raw == raws[1]
    assert letter.errors[0]["kept"] == ["alert_rows"] and "预警及其通知已保留" in letter.errors[0]["reason_zh"]
    sink = Sink(store=None, settings=KafkaSettings(kafka_topic_prefix="q"), consumer=object())
    rows = sink.rows_for("q.effects", 0, 7, small.effects[-1][1])
    assert sink.stats["bad_messages"] == 0
    assert {table for table, _ in rows.blocks} >= {"stream_effects", "alerts", "alert_events"}  # (no receivers: no outbox)
