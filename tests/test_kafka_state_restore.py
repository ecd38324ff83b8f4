"""A worker's state table short of what its group committed, on the real broker.

The workers' state lives in the changelog (snapshot topic); the log's committed offset says which
events it covers.  When the two disagree, folding on from the commit builds credit files without
the events between, silently and for good.  Two ways that happens, both made here by putting an
older copy of the changelog in place of the real one:

- the table Faust restores lacks state the changelog does hold (here: the newer records are put
  back into the changelog after the worker restored the old copy): the worker reads the partition
  again from the changelog and folds on from the complete state;
- the changelog itself lacks it (restored from an older backup than the group's offsets, or
  deleted with the offsets kept): the worker stops (exit 70) and says to fold the log again.
"""
from __future__ import annotations

import json
import time
from collections import Counter, defaultdict

from tests.kafka_service import (  # noqa: F401 - fixtures
    WorkerProcess, group_lag, kafka_bootstrap, kafka_env, kafka_prefix, latest_credit_files, read_topic, settings_for, wait_for,
)

REBUILT = "credit files rebuilt from the table at assignment"


def _records(bootstrap: str, topic: str) -> dict[int, list]:
    by_partition: dict[int, list] = defaultdict(list)
    for m in read_topic(bootstrap, topic, 60):
        by_partition[m.partition].append(m)
    return {p: sorted(ms, key=lambda m: m.offset) for p, ms in by_partition.items()}


def _marks_count_the_table(records: dict[int, list]) -> None:
    """Each partition's mark (``W|p``) counts the snapshots and entries the compacted changelog holds."""
    for p, ms in records.items():
        state: dict[str, bytes] = {}
        for m in ms:
            if m.value is None:
                state.pop(m.key.decode(), None)
            else:
                state[m.key.decode()] = m.value
        mark = json.loads(state[f"W|{p}"])
        assert mark["keys"] == sum(1 for k in state if not k.startswith("W|")), (p, mark)


def _replace_changelog(bootstrap: str, settings, records: dict[int, list]) -> None:
    """The changelog deleted and made again with these records only (an older copy put in its place)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    spec = settings.topics().changelog
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics([spec.name])
        wait_for(lambda: spec.name not in set(admin.list_topics()), 60, "the changelog deleted")
        deadline = time.monotonic() + 60
        while True:  # (the broker may still be removing it)
            try:
                admin.create_topics([NewTopic(spec.name, spec.partitions, 1, topic_configs=dict(spec.config))])
                break
            except Exception:  # noqa: BLE001 - TopicAlreadyExists while the deletion completes
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        admin.close()
    _append(bootstrap, spec.name, records)


def _settled(bootstrap: str, topic: str):
    """A condition: the topic's end offsets the same as at the previous look."""
    from kafka import KafkaConsumer, TopicPartition

    last: list = [None]

    def check() -> bool:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap)
        try:
            ends = consumer.end_offsets([TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())])
        finally:
            consumer.close()
        settled, last[0] = ends == last[0], ends
        return settled

    return check


def _append(bootstrap: str, topic: str, records: dict[int, list]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=16 * 1024 * 1024)
    try:
        for p, ms in records.items():
            for m in ms:
                producer.send(topic, key=m.key, value=m.value, partition=p)
        producer.flush(60)
    finally:
        producer.close()


def test_a_table_short_of_the_commit_is_read_again_or_the_worker_stops(tmp_path, kafka_bootstrap, kafka_prefix):
    from qrisk.demo import CountyGenerator
    from qrisk.kafka_log import produce_file

    env = kafka_env(kafka_bootstrap, kafka_prefix, QRISK_WORKER_SESSION_TIMEOUT=6, QRISK_WORKER_SNAPSHOT_EVERY=5)
    settings = settings_for(env)
    topics = settings.topics()
    group = settings.worker_app_id
    agent_topics = [topics.ingress["import"].name, topics.events.name]
    events = sorted((e for e in CountyGenerator(seed=41, county="C0-", daily_ticks=False).generate() if e.event_type != "clock.tick"),
                    key=lambda e: e.occurred_at)
    parts = []
    for i in range(4):
        path = tmp_path / f"part{i}.jsonl"
        path.write_text("".join(e.model_dump_json(exclude_none=True) + "\n" for e in events[i * 100:(i + 1) * 100]), encoding="utf-8")
        parts.append(path)

    def folded() -> bool:
        return group_lag(kafka_bootstrap, group, agent_topics) == 0

    a = WorkerProcess(env, tmp_path, "worker-a").start()
    try:
        produce_file(parts[0], "import", settings)
        wait_for(folded, 120, "the first hundred", on_timeout=a.tail)
        older = _records(kafka_bootstrap, topics.changelog.name)  # (durable before the commit: a copy as of then)
        produce_file(parts[1], "import", settings)
        wait_for(folded, 120, "the second hundred", on_timeout=a.tail)
    finally:
        assert a.stop() == 0, a.tail()
    whole = _records(kafka_bootstrap, topics.changelog.name)
    _marks_count_the_table(whole)
    newer = {p: [m for m in ms if m.offset >= len(older.get(p, []))] for p, ms in whole.items()}
    assert all(m.offset == i for ms in older.values() for i, m in enumerate(ms))  # (the older copy is a prefix, offset for offset)
    assert sum(map(len, newer.values())) > 0

    # Faust restores the older copy; the newer records reach the changelog only afterwards
    _replace_changelog(kafka_bootstrap, settings, older)
    b = WorkerProcess(env, tmp_path, "worker-b").start()
    try:
        wait_for(lambda: REBUILT in b.tail(400), 90, "worker B folding", on_timeout=b.tail)
        # what B writes at its rebuild (deletions of covered entries, and the mark again) goes before the
        # newer records, as it would have in the changelog B should have restored
        wait_for(_settled(kafka_bootstrap, topics.changelog.name), 30, "B's rebuild writes", interval=1.0)
        _append(kafka_bootstrap, topics.changelog.name, newer)
        produce_file(parts[2], "import", settings)
        wait_for(folded, 120, "the third hundred", on_timeout=b.tail)
        per = Counter(e.enterprise_id for e in events[:300])

        def views() -> dict:
            return {eid: doc["file"]["events"] for eid, doc in latest_credit_files(kafka_bootstrap, topics.credit_files.name).items()}

        wait_for(lambda: views() == dict(per), 60, "the credit files of all three hundred", on_timeout=lambda: f"{views()}\n{b.tail()}")
        assert b.alive(), b.tail()
        said = b.tail(100_000)
    finally:
        b.stop()
    _marks_count_the_table(_records(kafka_bootstrap, topics.changelog.name))  # (counted on from the copy read again)
    reread = [line for line in said.splitlines() if "read again from" in line]
    assert reread and all("committed to" in line for line in reread), said[-3000:]
    assert len(reread) == len({line.split("partition ")[1].split(":")[0] for line in reread})  # once per partition

    # the changelog itself short: the worker stops rather than fold on, and says what to do
    _replace_changelog(kafka_bootstrap, settings, older)
    c = WorkerProcess(env, tmp_path, "worker-c").start()
    try:
        wait_for(lambda: REBUILT in c.tail(400), 90, "worker C folding", on_timeout=c.tail)
        produce_file(parts[3], "import", settings)
        wait_for(lambda: not c.alive(), 120, "worker C to stop", on_timeout=c.tail)
    finally:
        c.stop()
    assert c.proc.returncode == 70, c.tail()
    stopped = c.tail(100_000)
    assert "qrisk rebuild --kafka" in stopped and "the events between are in no snapshot" in stopped and "快照主题" in stopped, stopped[-3000:]
    # nothing of the fourth hundred was committed past the state it lacked
    assert group_lag(kafka_bootstrap, group, [topics.events.name]) > 0
