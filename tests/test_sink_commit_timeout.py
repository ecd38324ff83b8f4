"""The sink's commit when the broker does not answer, step by step against a scripted consumer (the broker-outage
health test kills a real broker inside a commit; these are the branches it cannot time): a commit not answered is
left pending, the lag is unknown from the commit's start, the commit is not tried while the offsets cannot be read,
is made once they can, and is dropped when the partitions went to another sink meanwhile."""
from __future__ import annotations

import pytest
from kafka.errors import KafkaTimeoutError
from kafka.structs import OffsetAndMetadata, TopicPartition

import qrisk.sink as sink_module
from qrisk.sink import Sink
from qrisk.topics import KafkaSettings

TP = TopicPartition("ct.effects", 0)


class Coordinator:
    def __init__(self, consumer):
        self.consumer = consumer

    def fetch_committed_offsets(self, partitions, timeout_ms=None):
        if not self.consumer.broker_up:
            raise KafkaTimeoutError()
        return {tp: OffsetAndMetadata(self.consumer.committed_at, "", -1) for tp in partitions}


class Consumer:
    """Just what the sink calls between polls: commits, the assignment, the high-water mark, the committed offsets."""

    def __init__(self):
        self.broker_up, self.assigned, self.committed_at, self.position = True, {TP}, 0, 0
        self.commits: list[int] = []
        self._coordinator = Coordinator(self)

    def commit(self, timeout_ms=None):
        assert timeout_ms == sink_module.COMMIT_TIMEOUT_MS  # never kafka-python's default (its 30 s request timeout)
        self.commits.append(self.position)
        if not self.broker_up:
            raise KafkaTimeoutError()
        self.committed_at = self.position

    def assignment(self):
        return set(self.assigned)

    def highwater(self, tp):
        return 10

    def poll(self, timeout_ms=0, max_records=None):
        return {}

    def partitions_for_topic(self, topic):
        return None


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(sink_module.time, "monotonic", lambda: now[0])
    return now


def test_a_commit_not_answered_is_pending_and_the_outage_counts_from_it(clock):
    consumer = Consumer()
    sink = Sink(store=None, settings=KafkaSettings(kafka_topic_prefix="ct"), consumer=consumer)
    consumer.position = 10
    consumer.broker_up = False
    sink._commit()  # the batch's commit, the broker gone
    assert sink._commit_pending and sink.stats["commit_timeouts"] == 1
    health = sink.health()
    assert health["lag"] is None and health["lag_unknown_since"] and health["status"] == "ok"  # not yet: a blip is no outage
    clock[0] += 3.0
    sink.measure_lag()  # the offsets cannot be read either
    assert sink.health()["status"] == "ok"
    clock[0] += sink_module.DEGRADED_AFTER_S - 2.5  # 5.5 s after the commit began (not after the first failed read)
    sink.measure_lag()
    health = sink.health()
    assert health["status"] == "degraded" and health["problem"].startswith("Kafka: committed offsets not read for")
    sink.run_once(timeout_ms=0)  # the offsets still unread: no commit tried (each would hold the thread 3 s)
    assert consumer.commits == [10]

    consumer.broker_up = True
    sink.measure_lag()  # read again: Kafka is back, the lag known (10 behind the commit that was cut short)
    health = sink.health()
    assert health["status"] == "ok" and health["lag"] == 10 and sink._commit_pending
    sink.run_once(timeout_ms=0)  # the pending commit made before the poll
    assert consumer.commits == [10, 10] and consumer.committed_at == 10 and not sink._commit_pending
    sink.measure_lag()
    assert sink.health()["lag"] == 0


def test_a_pending_commit_of_partitions_gone_to_another_sink_is_dropped(clock):
    consumer = Consumer()
    sink = Sink(store=None, settings=KafkaSettings(kafka_topic_prefix="ct"), consumer=consumer)
    consumer.position, consumer.broker_up = 10, False
    sink._commit()
    assert sink._commit_pending and sink.health()["lag"] is None
    consumer.broker_up, consumer.assigned = True, set()  # back, and a rebalance gave the partition to another sink
    sink.measure_lag()
    assert not sink._commit_pending and sink.health()["lag"] == 0 and "lag_unknown_since" not in sink.health()
    sink.run_once(timeout_ms=0)
    assert consumer.commits == [10]  # nothing committed for partitions this sink no longer owns
