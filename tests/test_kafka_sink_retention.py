"""On the real broker and the real ClickHouse server: effects the broker deleted (retention) before the
sink wrote them are said, not skipped silently.

The sink's consumer reads from ``earliest`` when its position is gone: with ClickHouse down longer than
the effects topic's retention, the messages it had not written were deleted, the consumer went on from
the partition's first offset, and the sink's health said "ok", lag 0 (kafka-python says it at INFO, which
the sink's logging hides).  Every stream_effects row, judgement, alert and notification they carried was
gone without a word.  Deletion is done here with DeleteRecords, which moves a partition's first offset
as retention does.
"""
from __future__ import annotations

import json
import logging
import uuid

import httpx

from tests.kafka_service import kafka_bootstrap, kafka_env, settings_for, wait_for  # noqa: F401 - fixtures
from tests.services import clickhouse_url, drop_database, fresh_database_url  # noqa: F401 - fixtures


def _effects_message(eid: str, version: int) -> bytes:
    """An effects message as the worker writes it (one effect, no rows): stream_effects row (eid, version, 0)."""
    event_id = str(uuid.uuid4())
    return json.dumps({"enterprise_id": eid, "event_id": event_id, "event_type": "enterprise.updated", "file_version": version,
                       "log": [0, version], "log_ts": None,
                       "effects": [{"idx": 0, "kind": "test.marker", "event_id": event_id, "occurred_at": "2026-11-26T00:00:00+00:00",
                                    "data": {"n": version}}]}).encode()


def test_effects_deleted_before_the_sink_wrote_them_are_named_counted_and_kept(kafka_bootstrap, clickhouse_url, caplog):  # noqa: F811
    import time

    from kafka import KafkaAdminClient, KafkaProducer, TopicPartition

    from qrisk.pages import serve_pages
    from qrisk.sink import Sink
    from qrisk.store import migrate, open_store
    from qrisk.topics import create_topics, delete_topics

    settings = settings_for(kafka_env(kafka_bootstrap, f"r{uuid.uuid4().hex[:8]}"))
    topics = settings.topics()
    create_topics(settings)
    name, url = fresh_database_url(clickhouse_url, "sinkgap")
    store = open_store(url)
    migrate(store)
    eid = "E-GAP-1"
    tp = TopicPartition(topics.effects.name, 0)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    sinks: list[Sink] = []
    pages = None

    def produce(versions) -> None:
        for v in versions:
            producer.send(tp.topic, key=eid.encode(), value=_effects_message(eid, v), partition=0).get(timeout=30)

    def written() -> set[int]:
        rows = store.query("SELECT DISTINCT file_version FROM stream_effects WHERE enterprise_id = %(e)s", {"e": eid})
        return {r["file_version"] for r in rows}

    def run_until(sink: Sink, versions: set[int]) -> None:
        def done() -> bool:
            sink.run_once(200)
            return versions <= written()
        wait_for(done, 60, f"versions {sorted(versions)} written", interval=0)
        time.sleep(1)  # (no fetch of this sink is in flight when the next messages are produced)

    try:
        caplog.set_level(logging.ERROR, logger="qrisk.sink")
        sink = Sink(store, settings, linger_s=0.05)
        sinks.append(sink)
        pages = serve_pages("127.0.0.1", 0, sink.health, sink.metrics, "sink")
        base = f"http://127.0.0.1:{pages.server_address[1]}"
        produce(range(0, 3))
        run_until(sink, {0, 1, 2})
        assert sink.health()["status"] == "ok"

        # 1. under a running sink (ClickHouse was down, its position is behind): 3 and 4 deleted
        produce(range(3, 7))
        admin.delete_records({tp: 5})
        run_until(sink, {5, 6})
        assert written() == {0, 1, 2, 5, 6}
        health = httpx.get(base + "/healthz").json()
        assert health["status"] == "degraded", health  # (it said "ok", lag 0)
        ((gap, topic, partition),) = [((g.first, g.last), g.topic, g.partition) for g in sink.lost]
        assert gap == (3, 4) and (topic, partition) == (tp.topic, 0)
        problem = health["problem"]
        zh, en = problem.split(" / ", 1)
        assert "分区 0" in zh and "3–4" in zh and "保留期删除" in zh and "qrisk rebuild --kafka" in zh  # Chinese first
        assert f"{tp.topic} partition 0: offsets 3-4 (2 messages)" in en and "retention" in en
        assert health["lost"][0]["offsets"] == "3-4" and health["lost_messages"] == 2
        text = httpx.get(base + "/metrics").text
        assert f'qrisk_sink_lost_messages_total{{topic="{tp.topic}"}} 2' in text, text
        assert "# TYPE qrisk_sink_lost_messages_total counter" in text
        assert any(r.levelno == logging.ERROR and "offsets 3-4" in r.getMessage() for r in caplog.records)
        # kept beyond this process: a dead letter where the API and the intake board show them
        letters = store.query("SELECT dead_letter_id, channel, position, reason FROM dead_letters FINAL WHERE channel = 'sink'")
        assert [(r["position"], r["reason"].split(":")[0]) for r in letters] == [(f"{tp.topic}/0/3-4", "lost_by_retention")]

        # 2. a sink started after its group's committed offset was deleted (down longer than the retention)
        sink.close()
        sinks.clear()
        produce(range(7, 10))
        admin.delete_records({tp: 9})
        sink = Sink(store, settings, linger_s=0.05)
        sinks.append(sink)
        run_until(sink, {9})
        assert [(g.first, g.last) for g in sink.lost] == [(7, 8)] and sink.health()["status"] == "degraded"

        # 3. a quiet partition: every message after the committed offset deleted, none to read
        produce(range(10, 12))
        admin.delete_records({tp: 12})
        wait_for(lambda: sink.measure_lag() or len(sink.lost) == 2, 30, "the gap of a partition with nothing left to read")
        assert [(g.first, g.last) for g in sink.lost] == [(7, 8), (10, 11)]
        assert sink.stats["lost_messages"] == 4
        sink.run_once(200)  # (the letters are written with the next batch, empty or not)
        positions = {r["position"] for r in store.query("SELECT position FROM dead_letters FINAL WHERE channel = 'sink'")}
        assert positions == {f"{tp.topic}/0/3-4", f"{tp.topic}/0/7-8", f"{tp.topic}/0/10-11"}
    finally:
        if pages is not None:
            pages.shutdown()
        for s in sinks:
            s.close()
        producer.close()
        admin.close()
        store.close()
        drop_database(clickhouse_url, name)
        delete_topics(settings, [t.name for t in topics.all()])


def test_a_gap_inside_a_batch_is_found_and_a_compacted_topics_holes_are_not_gaps():
    """Without a broker: a batch lingers over two polls, the gap between them (the consumer moved to the
    first offset in between) is found; the credit-files topic is compacted, its holes are no loss; and a
    step the broker can still serve (a partition another sink read meanwhile) is not called lost."""
    from collections import namedtuple

    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    from qrisk.sink import Sink
    from qrisk.topics import KafkaSettings

    settings = KafkaSettings(kafka_topic_prefix="gapunit")
    effects, views = TopicPartition("gapunit.effects", 0), TopicPartition("gapunit.credit-files", 0)
    Message = namedtuple("Message", "offset value")
    firsts = {effects: 0, views: 0}

    class Coordinator:
        class _generation:  # noqa: N801 - kafka-python's name
            generation_id = 1

        def fetch_committed_offsets(self, partitions, timeout_ms=None):
            return {effects: OffsetAndMetadata(10, "", -1), views: OffsetAndMetadata(10, "", -1)}

    class Consumer:
        _coordinator = Coordinator()

        def assignment(self):
            return {effects, views}

        def beginning_offsets(self, partitions, timeout_ms=None):
            return {tp: firsts[tp] for tp in partitions}

        def end_offsets(self, partitions, timeout_ms=None):
            return {tp: ends.get(tp, 100) for tp in partitions}

    ends: dict = {}
    sink = Sink(store=None, settings=settings, consumer=Consumer())
    firsts[effects] = 15
    sink._check_gaps({effects: [Message(o, b"") for o in (10, 11, 15, 16)], views: [Message(o, b"") for o in (12, 20)]})
    assert [(g.topic, g.first, g.last) for g in sink.lost] == [("gapunit.effects", 12, 14)]
    # read on by another member meanwhile (the records are still there): no loss
    sink._check_gaps({effects: [Message(o, b"") for o in (30, 31)]})
    assert len(sink.lost) == 1 and sink.stats["lost_messages"] == 3
    assert sink.health()["status"] == "degraded" and sink.health()["lost"][0]["offsets"] == "12-14"


def test_a_partition_with_messages_left_is_judged_by_its_next_message_not_its_first_offset():
    """(The round's diff review) the consumer holds messages it fetched ahead of what it returned; retention may
    delete them at the broker meanwhile.  Its first offset past the one expected is no loss while there are messages
    left to read: the next one shows whether there is a gap.  A partition with nothing left is judged by its first offset."""
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    from qrisk.sink import Sink
    from qrisk.topics import KafkaSettings

    settings = KafkaSettings(kafka_topic_prefix="gapunit2")
    tp = TopicPartition("gapunit2.effects", 0)
    offsets = {"first": 180, "end": 200}

    class Coordinator:
        class _generation:  # noqa: N801 - kafka-python's name
            generation_id = 1

        def fetch_committed_offsets(self, partitions, timeout_ms=None):
            return {tp: OffsetAndMetadata(150, "", -1)}

    class Consumer:
        _coordinator = Coordinator()

        def assignment(self):
            return {tp}

        def beginning_offsets(self, partitions, timeout_ms=None):
            return {tp: offsets["first"]}

        def end_offsets(self, partitions, timeout_ms=None):
            return {tp: offsets["end"]}

    sink = Sink(store=None, settings=settings, consumer=Consumer())
    sink._expected[tp] = 150
    sink._check_beginnings()
    assert sink.lost == [] and sink.health()["status"] != "degraded"  # 150–199 may be in the consumer's buffer
    offsets["first"] = offsets["end"] = 200  # every message deleted, none to read
    sink._check_beginnings()
    assert [(g.first, g.last) for g in sink.lost] == [(150, 199)]


def test_a_gap_found_while_the_last_one_s_letter_is_retried_is_written_too(monkeypatch):
    """(The round's diff review) measure_lag runs inside a write's retries; a gap it finds there joined the rows
    being written, which were then replaced by empty ones: counted, never dead-lettered."""
    from types import SimpleNamespace

    from kafka.structs import OffsetAndMetadata, TopicPartition

    import qrisk.sink as sink_module
    from qrisk.sink import Sink
    from qrisk.topics import KafkaSettings

    tp0, tp1 = TopicPartition("q.effects", 0), TopicPartition("q.effects", 1)

    class Coordinator:
        _generation = SimpleNamespace(generation_id=1)

        def fetch_committed_offsets(self, tps, timeout_ms=None):
            return {tp0: OffsetAndMetadata(100, "", -1), tp1: OffsetAndMetadata(100, "", -1)}

    class Consumer:
        firsts = {tp0: 0, tp1: 0}
        _coordinator = Coordinator()

        def assignment(self):
            return {tp0, tp1}

        def beginning_offsets(self, tps, timeout_ms=None):
            return dict(self.firsts)

        def end_offsets(self, tps, timeout_ms=None):
            return dict(self.firsts)  # (every message deleted)

        def highwater(self, tp):
            return 400

    class Blip(Exception):
        transient = True

    consumer = Consumer()

    class Store:
        fails, written = 1, []

        def prepare(self, table, values):
            return list(values[0]), [list(v.values()) for v in values]

        def prepare_columns(self, table, values):
            return self.prepare(table, values)

        def insert_prepared(self, table, names, columns):
            if self.fails:
                self.fails -= 1
                consumer.firsts[tp1] = 250  # meanwhile retention passes partition 1's expected offset too
                raise Blip("ClickHouse blip")
            self.written += [dict(zip(names, r))["dead_letter_id"] for r in columns]

    store = Store()
    sink = Sink(store=store, settings=KafkaSettings(kafka_topic_prefix="q"), consumer=consumer)
    monkeypatch.setattr(sink_module.time, "sleep", lambda _s: None)
    sink.measure_lag()  # assigned: 100 expected on both
    consumer.firsts[tp0] = 200
    sink._lag_at = -1e9
    sink.measure_lag()  # partition 0's gap: its letter waits for the next batch
    sink._lag_at = -1e9
    sink._write_lost()  # a blip; measure_lag in the retry finds partition 1's gap
    sink._lag_at = -1e9
    sink._write_lost()
    assert [(g.partition, g.first, g.last) for g in sink.lost] == [(0, 100, 199), (1, 100, 249)]
    assert sorted(store.written) == ["kafka:q.effects:0:100-199:lost", "kafka:q.effects:1:100-249:lost"]
    assert sink._lost_rows.count() == 0
