"""A table restore that gets no record, on the real broker.

Faust's recovery waits until every active changelog partition reaches the end it read when the
restore began, and for nothing else.  A CI run of the churn test saw two partitions get no record
for two minutes after a rebalance (the other two restored); the worker stayed in recovery, folding
nothing, until the test gave up.  Here one partition's restore is made to get no record
(``tests/stalled_restore_worker.py``): the worker's watch ends that restore after
``QRISK_WORKER_RESTORE_STALL_SECONDS``, the worker reads the partition from the changelog itself,
and the credit files come out complete.  Without the watch the worker never leaves recovery.
"""
from __future__ import annotations

import urllib.request
from collections import Counter

from tests.conftest import ROOT, free_port
from tests.kafka_service import (  # noqa: F401 - fixtures
    WorkerProcess, group_lag, kafka_bootstrap, kafka_env, kafka_prefix, latest_credit_files, settings_for, wait_for,
)

ENDED = "ending its restore here"
REREAD = "its restore was ended unfinished"


def test_a_restore_that_gets_no_record_is_ended_and_read_by_the_worker(tmp_path, kafka_bootstrap, kafka_prefix):
    from qrisk.demo import CountyGenerator
    from qrisk.kafka_log import produce_file

    env = kafka_env(kafka_bootstrap, kafka_prefix, QRISK_WORKER_SESSION_TIMEOUT=6, QRISK_WORKER_SNAPSHOT_EVERY=5,
                    QRISK_WORKER_RESTORE_STALL_SECONDS=3)
    settings = settings_for(env)
    topics = settings.topics()
    group = settings.worker_app_id
    agent_topics = [topics.ingress["import"].name, topics.events.name]
    events = sorted((e for e in CountyGenerator(seed=43, county="C0-", daily_ticks=False).generate() if e.event_type != "clock.tick"),
                    key=lambda e: e.occurred_at)[:300]
    parts = []
    for i in range(3):
        path = tmp_path / f"part{i}.jsonl"
        path.write_text("".join(e.model_dump_json(exclude_none=True) + "\n" for e in events[i * 100:(i + 1) * 100]), encoding="utf-8")
        parts.append(path)

    def folded() -> bool:
        return group_lag(kafka_bootstrap, group, agent_topics) == 0

    a = WorkerProcess(env, tmp_path, "worker-a").start()
    try:
        for part in parts[:2]:
            produce_file(part, "import", settings)
        wait_for(folded, 120, "the first two hundred", on_timeout=a.tail)
    finally:
        assert a.stop() == 0, a.tail()

    port = free_port()
    b = WorkerProcess({**env, "STALL_RESTORE_PARTITION": "1"}, tmp_path, "worker-b", web_port=port,
                      script=ROOT / "tests" / "stalled_restore_worker.py").start()
    try:
        wait_for(lambda: REREAD in b.tail(400), 90, "worker B to end the stalled restore and read partition 1", on_timeout=b.tail)
        produce_file(parts[2], "import", settings)
        wait_for(folded, 120, "the third hundred", on_timeout=b.tail)
        per = Counter(e.enterprise_id for e in events)

        def views() -> dict:
            return {eid: doc["file"]["events"] for eid, doc in latest_credit_files(kafka_bootstrap, topics.credit_files.name).items()}

        wait_for(lambda: views() == dict(per), 60, "the credit files of all three hundred", on_timeout=lambda: f"{views()}\n{b.tail()}")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/qrisk/metrics/", timeout=10).read().decode()
        assert b.alive(), b.tail()
        said = b.tail(100_000)
    finally:
        b.stop()
    assert "qrisk_worker_restores_ended_total 1\n" in metrics, metrics
    fault = [line for line in said.splitlines() if "fault: " in line]
    ended = [line for line in said.splitlines() if ENDED in line]
    reread = [line for line in said.splitlines() if REREAD in line]
    assert len(fault) == 1 and "changelog/1:" in fault[0], said[-3000:]
    # the stalled partition alone, ended once, with what the consumer said of it, and read again once
    assert len(ended) == 1 and "changelog/1:" in ended[0] and "read offset 4611686018427387904" in ended[0], ended
    assert len(reread) == 1 and "partition 1:" in reread[0], reread
