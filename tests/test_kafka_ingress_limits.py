"""On the real broker: what the ingress topics refuse, and messages too large for a topic.

A clock.tick through an ingress topic overtook events queued on other partitions; a ~900 kB binary
record's dead letter (base64) was refused by the dead-letter topic and stopped the worker at every
start; a credit-file view past 1 MB stopped it at every views interval; ``qrisk produce`` stopped at
an oversized line saying "cannot reach Kafka"; the API answered 500 to an event past 1 MB with the
batch's earlier events published; a worker's successor republished no views until a message came,
and showed no lag for the partitions it had not committed on yet.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import ROOT, free_port, golden
from tests.kafka_service import (  # noqa: F401 - fixtures
    WorkerProcess, group_lag, kafka_bootstrap, kafka_env, latest_credit_files, read_topic, settings_for, wait_for,
)


def _event(event_type: str, eid: str, **payload) -> dict:
    doc = golden(event_type)
    doc["event_id"] = str(uuid.uuid4())
    doc["enterprise_id"] = eid
    doc["payload"].update(payload)
    return doc


def big_inspection(eid: str, chars_per_finding: int = 2000) -> dict:
    """A valid event of ~6 bytes per character: 200 findings of Chinese text (1.2 MB at 2,000)."""
    findings = [{"code": f"{i}.1", "description": "违" * chars_per_finding, "severity": "minor"} for i in range(200)]
    return _event("inspection.completed", eid, findings=findings, inspection_id=f"JC-{uuid.uuid4().hex[:8]}")


def letters(bootstrap: str, topic: str) -> dict[str, dict]:
    return {json.loads(m.value)["dead_letter_id"]: json.loads(m.value) for m in read_topic(bootstrap, topic)}


def log_ids(bootstrap: str, topic: str) -> list[str]:
    return [json.loads(m.value)["event_id"] for m in read_topic(bootstrap, topic) if m.value and m.value.startswith(b"{")]


@pytest.fixture(scope="module")
def run(tmp_path_factory, kafka_bootstrap):
    """Fresh topics and one worker process (views every second, metrics page on)."""
    from qrisk.topics import create_topics, delete_topics

    tmp = tmp_path_factory.mktemp("kafka-ingress-limits")
    prefix = f"g{uuid.uuid4().hex[:8]}"
    env = kafka_env(kafka_bootstrap, prefix)
    settings = settings_for(env)
    create_topics(settings)
    worker = WorkerProcess(env, tmp, "worker", web_port=free_port()).start()
    try:
        yield {"env": env, "settings": settings, "topics": settings.topics(), "worker": worker, "tmp": tmp}
    finally:
        worker.stop()
        delete_topics(settings, [t.name for t in settings.topics().all()])


def _send(bootstrap: str, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None):
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=2_000_000, acks="all")
    try:
        return producer.send(topic, value=value, key=key, partition=partition).get(timeout=30)
    finally:
        producer.close()


def _letter(run, kafka_bootstrap, letter_id: str, timeout: float = 60) -> dict:
    topic = run["topics"].dead_letters.name
    wait_for(lambda: letter_id in letters(kafka_bootstrap, topic), timeout, f"dead letter {letter_id}",
             on_timeout=run["worker"].tail)
    return letters(kafka_bootstrap, topic)[letter_id]


def _logged(run, kafka_bootstrap, event_id: str, timeout: float = 60) -> None:
    wait_for(lambda: event_id in log_ids(kafka_bootstrap, run["topics"].events.name), timeout, f"event {event_id} in the log",
             on_timeout=run["worker"].tail)


def test_a_clock_tick_on_an_ingress_topic_is_dead_lettered_not_logged(run, kafka_bootstrap):
    topics = run["topics"]
    tick = golden("clock.tick")
    tick["event_id"] = str(uuid.uuid4())
    topic = topics.ingress["import"].name  # the topic that admits everything an admin key may post
    md = _send(kafka_bootstrap, topic, json.dumps(tick).encode())
    letter = _letter(run, kafka_bootstrap, f"kafka:{topic}:{md.partition}:{md.offset}")
    (error,) = letter["errors"]
    assert error["field"] == "event_type" and error["type"] == "forbidden"
    assert "qrisk tick" in error["reason"] and "qrisk tick" in error["reason_zh"] and "时钟" in error["reason_zh"]
    assert letter["reason"].startswith("forbidden: clock.tick")
    # the worker goes on, and the tick never reached the log
    after = _event("enterprise.registered", "E-TICK-1")
    _send(kafka_bootstrap, topic, json.dumps(after, ensure_ascii=False).encode(), b"E-TICK-1")
    _logged(run, kafka_bootstrap, after["event_id"])
    assert tick["event_id"] not in log_ids(kafka_bootstrap, topics.events.name)


def test_gbk_bytes_on_an_ingress_topic_are_an_encoding_error(run, kafka_bootstrap):
    topic = run["topics"].ingress["import"].name
    doc = _event("enterprise.registered", "E-GBK-1")
    md = _send(kafka_bootstrap, topic, json.dumps(doc, ensure_ascii=False).encode("gbk"), b"E-GBK-1")
    letter = _letter(run, kafka_bootstrap, f"kafka:{topic}:{md.partition}:{md.offset}")
    (error,) = letter["errors"]
    assert error["type"] == "body_encoding", letter  # as HTTP says it, not json_invalid
    assert "UTF-8" in error["reason"] and "UTF-8" in error["reason_zh"]


def test_a_large_binary_record_is_dead_lettered_whole_and_the_worker_goes_on(run, kafka_bootstrap):
    topic = run["topics"].ingress["lab"].name
    raw = b"\xff" * 900_000  # its letter, base64, is ~1.2 MB: past the broker's default limit
    md = _send(kafka_bootstrap, topic, raw, b"E-BIG-1")
    letter = _letter(run, kafka_bootstrap, f"kafka:{topic}:{md.partition}:{md.offset}")
    import base64

    assert letter["raw_encoding"] == "base64" and base64.b64decode(letter["raw"]) == raw
    assert letter["errors"][0]["type"] == "body_encoding"
    after = _event("enterprise.registered", "E-BIG-2")
    _send(kafka_bootstrap, run["topics"].ingress["import"].name, json.dumps(after, ensure_ascii=False).encode(), b"E-BIG-2")
    _logged(run, kafka_bootstrap, after["event_id"])
    assert run["worker"].alive(), run["worker"].tail()


def test_a_large_poison_message_in_the_log_is_dead_lettered_and_the_fold_goes_on(run, kafka_bootstrap):
    topics = run["topics"]
    md = _send(kafka_bootstrap, topics.events.name, b"\xff" * 900_000, b"E-BIG-3")
    letter = _letter(run, kafka_bootstrap, f"kafka:{topics.events.name}:{md.partition}:{md.offset}")
    assert letter["reason"].startswith("not a valid event in the log")
    assert run["worker"].alive(), run["worker"].tail()


def test_a_letter_the_topic_still_refuses_is_kept_bounded_and_the_worker_goes_on(run, kafka_bootstrap):
    """The dead-letter topic's limit lowered behind the worker's back (as one that could not be
    raised): the letter goes again with the head of the raw bytes, their size and sha256."""
    import hashlib

    from kafka.admin import ConfigResource, ConfigResourceType

    from qrisk.topics import admin_client

    topics = run["topics"]
    admin = admin_client(run["settings"])
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topics.dead_letters.name, configs={"max.message.bytes": "200000"})])
        topic = topics.ingress["lab"].name
        raw = b"\xfe" * 600_000
        md = _send(kafka_bootstrap, topic, raw, b"E-BIG-4")
        letter = _letter(run, kafka_bootstrap, f"kafka:{topic}:{md.partition}:{md.offset}")
    finally:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topics.dead_letters.name,
                                            configs=dict(topics.dead_letters.config))])
        admin.close()
    assert "truncated" in letter["reason"]
    note = letter["errors"][-1]
    assert note["type"] == "letter_truncated" and note["raw_bytes"] == len(raw)
    assert note["raw_sha256"] == hashlib.sha256(raw).hexdigest() and "截断" in note["reason_zh"]
    assert letter["errors"][0]["type"] == "body_encoding"  # why it was refused in the first place
    after = _event("enterprise.registered", "E-BIG-5")
    _send(kafka_bootstrap, topics.ingress["import"].name, json.dumps(after, ensure_ascii=False).encode(), b"E-BIG-5")
    _logged(run, kafka_bootstrap, after["event_id"])
    assert run["worker"].alive(), run["worker"].tail()


def test_a_credit_file_view_past_one_megabyte_is_published(run, kafka_bootstrap):
    from qrisk.kafka_log import KafkaLog
    from schemas.upcast import parse_event

    eid = "E-VIEW-1"
    events = [_event("enterprise.registered", eid)]
    for i in range(80):  # ~17 kB of texts each: a view of ~1.4 MB
        events.append(_event("enforcement.decided", eid, decision_no=f"罚{i}", violation="违" * 4000, legal_basis="法" * 1000))
    with KafkaLog(run["settings"]) as klog:
        klog.submit([parse_event(e) for e in events])
    topic = run["topics"].credit_files.name
    wait_for(lambda: latest_credit_files(kafka_bootstrap, topic).get(eid, {}).get("version") == len(events), 60,
             "the large credit file's view", on_timeout=run["worker"].tail)
    assert run["worker"].alive(), run["worker"].tail()


def test_the_changelog_has_min_insync_replicas_as_every_other_topic(run, kafka_bootstrap):
    from qrisk.topics import admin_client, topic_config

    topics = run["topics"]
    admin = admin_client(run["settings"])
    try:
        wait_for(lambda: topics.changelog.name in set(admin.list_topics()), 60, "the worker's changelog", on_timeout=run["worker"].tail)
        assert topic_config(admin, topics.changelog.name, "min.insync.replicas") == "1"
        for spec in (topics.dead_letters, topics.credit_files, topics.events):
            assert int(topic_config(admin, spec.name, "max.message.bytes")) == int(spec.config["max.message.bytes"])
    finally:
        admin.close()


def test_the_revocation_wait_is_shorter_than_the_rebalance_timeout():
    from qrisk.topics import KafkaSettings
    from qrisk.worker import REVOKE_WAIT_S, create_app

    app = create_app(KafkaSettings(kafka_topic_prefix=f"r{uuid.uuid4().hex[:6]}"), web_enabled=False)
    assert REVOKE_WAIT_S < app.conf.broker_rebalance_timeout


# ----------------------------------------------------------------------------- qrisk produce


def test_produce_dead_letters_an_oversized_line_and_a_tick_and_carries_on(kafka_bootstrap, tmp_path):
    from qrisk.topics import create_topics, delete_topics

    prefix = f"p{uuid.uuid4().hex[:8]}"
    env = kafka_env(kafka_bootstrap, prefix)
    settings = settings_for(env)
    create_topics(settings)
    try:
        first, last = _event("enterprise.registered", "E-P-1"), _event("enterprise.registered", "E-P-2")
        tick = golden("clock.tick")
        lines = [first, big_inspection("E-P-1", 2500), tick, last]  # line 2: ~1.5 MB
        path = tmp_path / "big.jsonl"
        path.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in lines) + "\n", encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "qrisk.cli_kafka", "produce", str(path), "--source", "import"], cwd=ROOT,
                              env={**__import__("os").environ, **env}, capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, done.stderr  # some lines dead-lettered
        assert "cannot reach" not in done.stderr
        summary = json.loads(done.stdout)
        assert summary["sent"] == 2 and summary["dead_lettered"] == 2
        sent = [json.loads(m.value)["event_id"] for m in read_topic(kafka_bootstrap, settings.topics().ingress["import"].name)]
        assert sorted(sent) == sorted([first["event_id"], last["event_id"]])
        got = {d["position"]: d for d in letters(kafka_bootstrap, settings.topics().dead_letters.name).values()}
        big = got[f"{path.name}:2"]
        assert big["errors"][0]["type"] == "too_large" and "too_large" in big["reason"]
        assert len(big["raw"].encode()) > 1_000_000  # kept whole
        refused = got[f"{path.name}:3"]
        assert refused["errors"][0]["field"] == "event_type" and "qrisk tick" in refused["errors"][0]["reason"]
    finally:
        delete_topics(settings, [t.name for t in settings.topics().all()])


def test_produce_keeps_the_letters_of_bad_lines_before_a_record_the_broker_refuses(kafka_bootstrap, tmp_path):
    """The bad lines' letters were held until the end of the file: a record refused half way (here a
    topic whose limit is below the record) stopped the run with a PublishError and the letters of the
    lines before it went nowhere.  They are sent as they are found now."""
    import os

    from kafka.admin import ConfigResource, ConfigResourceType

    from qrisk.topics import admin_client, create_topics, delete_topics

    prefix = f"q{uuid.uuid4().hex[:8]}"
    env = kafka_env(kafka_bootstrap, prefix)
    settings = settings_for(env)
    create_topics(settings)
    topic = settings.topics().ingress["import"].name
    admin = admin_client(settings)
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": "20000"})])
        first, big = _event("enterprise.registered", "E-Q-1"), big_inspection("E-Q-1", 100)  # line 4: ~60 kB
        path = tmp_path / "refused.jsonl"
        lines = ["{not json", json.dumps(golden("clock.tick")), json.dumps(first, ensure_ascii=False), json.dumps(big, ensure_ascii=False)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "qrisk.cli_kafka", "produce", str(path), "--source", "import"], cwd=ROOT,
                              env={**os.environ, **env}, capture_output=True, text=True, timeout=180)
        assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
        got = {d["position"]: d for d in letters(kafka_bootstrap, settings.topics().dead_letters.name).values()}
        assert {f"{path.name}:1", f"{path.name}:2"} <= set(got), got.keys()
        assert got[f"{path.name}:2"]["errors"][0]["field"] == "event_type"
        assert "not acknowledged" in done.stderr and "2 refused line(s) kept in dead letters" in done.stderr, done.stderr
    finally:
        admin.close()
        delete_topics(settings, [t.name for t in settings.topics().all()])


def test_produce_says_cannot_reach_only_when_no_broker_answers(tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(golden("enterprise.registered"), ensure_ascii=False) + "\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "qrisk.cli_kafka", "produce", str(path), "--source", "import",
                           "--bootstrap", f"127.0.0.1:{free_port()}"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cannot reach Kafka" in done.stderr


# ----------------------------------------------------------------------------- the API's producer


def test_a_batch_with_an_event_too_large_for_the_log_publishes_nothing(kafka_bootstrap):
    from qrisk.kafka_log import EventTooLarge, KafkaLog
    from qrisk.topics import create_topics, delete_topics
    from schemas.upcast import parse_event

    prefix = f"a{uuid.uuid4().hex[:8]}"
    settings = settings_for(kafka_env(kafka_bootstrap, prefix))
    create_topics(settings)
    try:
        small, big = _event("enterprise.registered", "E-A-1"), big_inspection("E-A-1")
        with KafkaLog(settings) as klog:
            with pytest.raises(EventTooLarge) as refused:
                klog.submit([parse_event(small), parse_event(big)])
            ((index, error, value),) = refused.value.refused
            assert index == 1 and error["type"] == "too_large" and error["size"] > 1_000_000 and "上限" in error["reason_zh"]
            assert json.loads(value)["event_id"] == big["event_id"]
            # a letter as large as the event (and larger) is taken by the dead-letter topic
            from qrisk.pipeline import DeadLetter

            klog.dead_letter([DeadLetter("http", "request x index 1", value, "too_large", [error], dead_letter_id="big-1"),
                              DeadLetter("http", "request x", b"\x01" * 3_000_000, "too_large", [], dead_letter_id="huge-1")])
        assert log_ids(kafka_bootstrap, settings.topics().events.name) == []  # nothing of the batch
        got = letters(kafka_bootstrap, settings.topics().dead_letters.name)
        assert json.loads(got["big-1"]["raw"])["event_id"] == big["event_id"]
        assert got["huge-1"]["errors"][-1]["type"] == "letter_truncated"  # 18 MB as JSON: kept bounded
    finally:
        delete_topics(settings, [t.name for t in settings.topics().all()])


# ----------------------------------------------------------------------------- a worker's successor


def _metrics(port: int) -> dict[str, float]:
    import re

    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/qrisk/metrics/", timeout=10).text
    return {m[1]: float(m[2]) for m in re.finditer(r"^(qrisk_worker_\w+(?:\{[^}]*\})?) (\S+)$", text, re.M)}


def test_a_successor_publishes_the_views_and_shows_the_lag_of_every_partition(kafka_bootstrap, tmp_path):
    """The first worker folds and never publishes a view (its interval is an hour), then is killed;
    the second publishes every file's view without another message arriving, and its metrics name
    every partition it reads, committed on by it or not."""
    from qrisk.kafka_log import KafkaLog
    from qrisk.topics import create_topics, delete_topics
    from schemas.upcast import parse_event

    prefix = f"s{uuid.uuid4().hex[:8]}"
    env = kafka_env(kafka_bootstrap, prefix)
    settings = settings_for(env)
    topics = settings.topics()
    create_topics(settings)
    first = WorkerProcess({**env, "QRISK_WORKER_VIEW_SECONDS": "3600"}, tmp_path, "first").start()
    second = None
    try:
        eids = [f"E-S-{i}" for i in range(6)]
        with KafkaLog(settings) as klog:
            klog.submit([parse_event(_event("enterprise.registered", eid)) for eid in eids])
        wait_for(lambda: group_lag(kafka_bootstrap, settings.worker_app_id, [topics.events.name]) == 0, 90,
                 "the first worker to fold", on_timeout=first.tail)
        time.sleep(2)  # (its changelog writes are acknowledged before the offsets are committed)
        first.kill()
        assert latest_credit_files(kafka_bootstrap, topics.credit_files.name) == {}
        port = free_port()
        second = WorkerProcess(env, tmp_path, "second", web_port=port).start()
        wait_for(lambda: set(latest_credit_files(kafka_bootstrap, topics.credit_files.name)) == set(eids), 90,
                 "the successor to publish the views", on_timeout=second.tail)
        files = latest_credit_files(kafka_bootstrap, topics.credit_files.name)
        assert all(files[eid]["version"] == 1 for eid in eids)

        def every_partition() -> bool:
            try:
                got = _metrics(port)
            except Exception:  # noqa: BLE001 - the page is not up yet
                return False
            named = {k for k in got if k.startswith("qrisk_worker_lag_messages{")}
            wanted = {f'qrisk_worker_lag_messages{{partition="{p}",topic="{t}"}}'
                      for t in [topics.events.name, *(s.name for s in topics.ingress.values())] for p in range(4)}
            return wanted <= named and all(got[k] == 0 for k in wanted)

        wait_for(every_partition, 60, "a lag line for every partition the successor reads", on_timeout=lambda: str(_metrics(port)))
    finally:
        first.kill()
        if second is not None:
            second.stop()
        delete_topics(settings, [t.name for t in topics.all()])


def test_the_api_answers_413_for_an_event_too_large_and_publishes_nothing(tmp_path, monkeypatch, kafka_bootstrap):
    """A real ``qrisk run`` in Kafka mode: the event past the log's limit is named and kept in dead
    letters; its batch's other event is not published (the answer was a 500 with it published)."""
    from tests.conftest import Server
    from tests.services import drop_database, fresh_database_url, shared_clickhouse_url

    from qrisk.store import ClickHouseStore, migrate
    from qrisk.topics import create_topics, delete_topics

    clickhouse = shared_clickhouse_url()
    name, url = fresh_database_url(clickhouse, "kafka_413")
    store = ClickHouseStore(url)
    migrate(store)
    prefix = f"h{uuid.uuid4().hex[:8]}"
    env = kafka_env(kafka_bootstrap, prefix, QRISK_EVENT_LOG="kafka", QRISK_STORE_URL=url)
    settings = settings_for(env)
    create_topics(settings)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    srv = Server(tmp_path / "data")
    srv.start()
    try:
        small, big = _event("enterprise.registered", "E-H-1"), big_inspection("E-H-1")
        resp = srv.post("/v1/events", json=[small, big])
        assert resp.status_code == 413, resp.text
        (error,) = resp.json()["errors"]
        assert error["index"] == 1 and error["type"] == "too_large" and error["reason_zh"]
        got = letters(kafka_bootstrap, settings.topics().dead_letters.name)
        assert json.loads(got[error["dead_letter_id"]]["raw"])["event_id"] == big["event_id"]
        assert log_ids(kafka_bootstrap, settings.topics().events.name) == []
    finally:
        srv.stop()
        store.close()
        drop_database(clickhouse, name)
        delete_topics(settings, [t.name for t in settings.topics().all()])
