"""Scale-out on the real broker: two worker processes on a 4-partition log, one killed with SIGKILL
mid-stream.  The survivor takes its partitions, rebuilds their credit files from the changelog
(snapshots every 5 events, so snapshots and their tombstones are part of it), and at the end no
event is lost and no event is applied twice (every effect key stands for one application, and a
redelivered copy of an effect is byte for byte the same).

This once failed about one run in seven (enterprises a few events short, or the views never
catching up): Faust committed log offsets whose changelog writes were still in its producer
buffer (its pre-commit flush gives up after 100 ms without a send), so the killed worker's last
state was gone while its offsets said done.  The worker now waits for the changelog itself.

Later about one run in four took a minute or more to commit what the survivor had folded in
seconds (and one in ten timed out): after the rebalance Faust acknowledged each offset twice and
its commit then advanced one offset a second.  And about one run in twenty a credit file lacked
an event: a stream dropped it during the rebalance and Faust's commit passed over it.  Both are
fixed in qrisk.faust_app.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict

from tests.kafka_service import (  # noqa: F401 - fixtures
    WorkerProcess, group_lag, kafka_bootstrap, kafka_env, kafka_prefix, latest_credit_files, read_topic, settings_for, wait_for,
)
from tests.test_kafka_e2e import county_view


def _members(bootstrap: str, group: str) -> int:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        info = admin.describe_groups([group])[group]
        return len(info["members"]) if info["group_state"] == "Stable" else 0
    finally:
        admin.close()


def _offsets(bootstrap: str, group: str, topics: list[str]) -> str:
    """Per partition: end offset and the group's committed offset (what a timeout should show)."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        committed = admin.list_group_offsets(group).get(group, {})
        lines = []
        for topic in topics:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or set())]
            end = consumer.end_offsets(tps)
            lines.append(f"{topic}: " + ", ".join(
                f"p{tp.partition} end {end[tp]} committed {committed[tp].offset if tp in committed else None}" for tp in tps))
        return "\n".join(lines)
    finally:
        consumer.close()
        admin.close()


def test_two_workers_one_killed_mid_stream(tmp_path, kafka_bootstrap, kafka_prefix, rules):
    from processors.step import replay
    from qrisk.demo import CountyGenerator
    from qrisk.kafka_log import KafkaLog, produce_file

    env = kafka_env(kafka_bootstrap, kafka_prefix, QRISK_WORKER_SESSION_TIMEOUT=6, QRISK_WORKER_SNAPSHOT_EVERY=5,
                    QRISK_WORKER_BATCH=50)
    settings = settings_for(env)
    topics = settings.topics()
    events = []
    for k in range(3):
        events += CountyGenerator(seed=11 + k, county=f"C{k}-", daily_ticks=False).generate()  # one tick, at the end
    ticks = [e for e in events if e.event_type == "clock.tick"]
    events = sorted((e for e in events if e.event_type != "clock.tick"), key=lambda e: e.occurred_at) + ticks[:1]
    half = len(events) // 2
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(e.model_dump_json(exclude_none=True) + "\n" for e in events[:half]), encoding="utf-8")
    second.write_text("".join(e.model_dump_json(exclude_none=True) + "\n" for e in events[half:-1]), encoding="utf-8")

    a = WorkerProcess(env, tmp_path, "worker-a").start()
    b = WorkerProcess(env, tmp_path, "worker-b").start()
    try:
        wait_for(lambda: _members(kafka_bootstrap, settings.worker_app_id) == 2, 60, "both workers in the group",
                 on_timeout=lambda: a.tail() + "\n----\n" + b.tail())
        produce_file(first, "import", settings)  # a whole county: every event type
        wait_for(lambda: "credit files rebuilt" in a.tail(400) and "credit files rebuilt" in b.tail(400), 60,
                 "both workers folding", on_timeout=lambda: a.tail() + "\n----\n" + b.tail())
        # the second half streams in while worker A dies
        producer = threading.Thread(target=produce_file, args=(second, "import", settings))
        producer.start()
        time.sleep(0.3)
        a.kill()
        producer.join(60)
        assert not producer.is_alive()

        def folded() -> bool:
            return group_lag(kafka_bootstrap, settings.worker_app_id, [topics.ingress["import"].name, topics.events.name]) == 0

        def where() -> str:
            return _offsets(kafka_bootstrap, settings.worker_app_id, [topics.ingress["import"].name, topics.events.name]) + "\n" + b.tail(200)

        wait_for(folded, 120, "the survivor to fold everything", on_timeout=where)
        with KafkaLog(settings) as klog:
            klog.submit(events[-1:])  # the tick, straight to every partition
        wait_for(folded, 60, "the tick", on_timeout=b.tail)

        # changed credit files are published by a 1 s timer, which lags
        # on a loaded machine: wait until every enterprise's newest view has caught up — its
        # events and the tick, which changes no event count but the grade's as-of time (or give
        # up and let the assertions below say what is missing)
        per = Counter(e.enterprise_id for e in events if e.enterprise_id != "*")

        def views_caught_up() -> bool:
            files = latest_credit_files(kafka_bootstrap, topics.credit_files.name)
            return {eid: (doc["file"]["events"], doc["version"]) for eid, doc in files.items()} == {
                eid: (n, n + 1) for eid, n in per.items()}

        def _mismatch() -> str:
            files = latest_credit_files(kafka_bootstrap, topics.credit_files.name)
            return "views behind (events, version, events expected): " + repr({eid: (doc["file"]["events"], doc["version"], per.get(eid)) for eid, doc in files.items()
                                         if (doc["file"]["events"], doc["version"]) != (per.get(eid), (per.get(eid) or 0) + 1)})

        try:
            wait_for(views_caught_up, 60, "the credit-file views", on_timeout=_mismatch)
        except AssertionError:
            pass
        assert b.alive(), b.tail()
        survivor_log = b.tail(2000)
    finally:
        a.kill()
        b.stop()

    # the survivor rebuilt the dead worker's partitions from the changelog
    rebuilt = [line for line in survivor_log.splitlines() if "credit files rebuilt from the table" in line]
    assert any(not line.rstrip().endswith(": 0 credit files rebuilt from the table") for line in rebuilt), rebuilt

    # no event lost: every enterprise's file counts every one of its events, and equals an embedded replay
    state, expected = replay(events, rules)
    files = latest_credit_files(kafka_bootstrap, topics.credit_files.name)
    assert set(files) == set(state.files)
    assert {eid: doc["file"]["events"] for eid, doc in files.items()} == dict(per)
    for eid, file in state.files.items():
        assert county_view(files[eid]["file"]) == county_view(json.loads(json.dumps(file.view(), ensure_ascii=False))), eid

    # no effect duplicated: a key (enterprise, file version, index) is one application; copies are identical
    copies: dict[tuple, set[str]] = defaultdict(set)
    versions: dict[tuple, set[int]] = defaultdict(set)
    for m in read_topic(kafka_bootstrap, topics.effects.name):
        doc = json.loads(m.value)
        for e in doc["effects"]:
            copies[(doc["enterprise_id"], doc["file_version"], e["idx"])].add(json.dumps(e, sort_keys=True))
        versions[(doc["enterprise_id"], doc["event_id"])].add(doc["file_version"])
    assert all(len(c) == 1 for c in copies.values())
    assert all(len(v) == 1 for v in versions.values()), "an event applied twice to a file"
    got = Counter(json.loads(next(iter(c)))["kind"] for c in copies.values())
    want = Counter(e.kind for e in expected
                   if not (e.kind in ("fluctuation.signal", "fluctuation.signal_withdrawn") and e.data.get("scope") == "category")
                   and not (e.kind == "warning.raised" and e.data.get("dedup_key", "").startswith("county:")))
    assert got == want
