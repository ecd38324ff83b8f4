"""The floor under issue 5's throughput target: the distributed pipeline with qrisk's work taken out.

    python bench/bench_kafka_floor.py [--counties 10] [--workers 1]

The same messages as bench_kafka.py go the same way through the same components, and nothing is
done to them:

- relay (faust-streaming, qrisk's own ``App`` and consumer, the worker's settings): ingress ->
  log, then log -> effects + changelog: the worker's two consumes and three produces per event,
  batches of 500 taken with ``take_events``, acknowledged once the broker has the sends;
- sink (kafka-python, clickhouse-driver, the sink's consumer settings): log + effects -> two
  ClickHouse tables of (key, value), offsets committed after the insert;
- the broker and the ClickHouse server of scripts/services.sh.

It prints the end-to-end rate and each process's CPU per event, and then, in this process, what
qrisk's own work costs per event on one core: validating the ingress record (as the worker does)
and ``step()``.  Floor + work is the least CPU an event can take here with this stack; two cores
give at most 2,000,000 µs of CPU per second, so 5,000 events/s needs that sum under 400 µs.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

BATCH = 500


def topic_names(prefix: str) -> dict[str, str]:
    return {k: f"{prefix}.{k}" for k in ("ingress", "log", "effects", "changelog")}


def relay(bootstrap: str, prefix: str, partitions: int) -> None:
    """The worker's message path without the worker's work (runs as its own process)."""
    import faust

    from qrisk.faust_app import App

    names = topic_names(prefix)
    app = App(f"{prefix}-relay", fetch_min_bytes=64 * 1024, fetch_max_wait_ms=10, broker=f"kafka://{bootstrap}",
              store="memory://", datadir=tempfile.mkdtemp(prefix="qrisk-floor-"), topic_partitions=partitions,
              topic_disable_leader=True, consumer_auto_offset_reset="earliest", broker_commit_interval=1.0,
              stream_wait_empty=False, producer_acks=-1, producer_linger=0.002, producer_max_batch_size=512 * 1024,
              web_enabled=False)
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    ingress = app.topic(names["ingress"], **raw)
    log_topic = app.topic(names["log"], **raw)

    async def forward(batch, sends) -> None:
        producer = app.producer
        futures = [await producer.send(topic, key, value, None, None, None) for topic, key, value in sends]
        if futures:
            await asyncio.gather(*futures)
        # Faust acknowledges each event when the agent takes the next one: only after the sends

    @app.agent(ingress, name="relay-ingress")
    async def relay_ingress(stream):
        async for batch in stream.take_events(BATCH, within=0.02):
            await forward(batch, [(names["log"], ev.message.key, ev.message.value) for ev in batch])

    @app.agent(log_topic, name="relay-log")
    async def relay_log(stream):
        async for batch in stream.take_events(BATCH, within=0.02):
            sends = [(names["effects"], ev.message.key, ev.message.value) for ev in batch]
            sends += [(names["changelog"], ev.message.key, ev.message.value) for ev in batch]
            await forward(batch, sends)

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def sink(bootstrap: str, prefix: str, database_url: str) -> None:
    """The sink's consume-insert-commit loop without its row building (runs as its own process)."""
    from clickhouse_driver import Client
    from kafka import KafkaConsumer

    from qrisk.sink import _fast_crc32c

    names = topic_names(prefix)
    url, db = database_url.rsplit("/", 1)
    client = Client.from_url(f"{url}/{db}")
    consumer = KafkaConsumer(names["log"], names["effects"], bootstrap_servers=bootstrap, group_id=f"{prefix}-sink",
                             enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=5000,
                             fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=8 * 1024 * 1024,
                             fetch_min_bytes=1024 * 1024, fetch_max_wait_ms=100, check_crcs=_fast_crc32c())
    table = {names["log"]: "floor_log", names["effects"]: "floor_effects"}
    while True:
        polled = consumer.poll(timeout_ms=500, max_records=5000)
        if not polled:
            continue
        rows: dict[str, list[tuple[str, str]]] = {}
        for tp, records in polled.items():
            rows.setdefault(table[tp.topic], []).extend(
                ((r.key or b"").decode(), (r.value or b"").decode()) for r in records)
        for name, batch in rows.items():
            client.execute(f"INSERT INTO {name} (key, value) VALUES", batch)
        consumer.commit()


def work_per_event(events) -> tuple[float, float]:
    """qrisk's own work on one core, µs per event: validating the ingress record, and step()."""
    from processors.credit_file import CountyState
    from processors.step import step
    from qrisk.runtime import default_rules, tune_gc
    from qrisk.worker import _parse_current

    rules = default_rules()
    tune_gc(freeze=False)
    values = [e.model_dump_json(exclude_none=True).encode() for e in events]
    best_parse = best_step = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        parsed = [_parse_current(v) for v in values]
        best_parse = min(best_parse, time.perf_counter() - t0)
        state = CountyState()
        t0 = time.perf_counter()
        for e in parsed:
            state, _ = step(state, e, rules)
        best_step = min(best_step, time.perf_counter() - t0)
    return best_parse / len(values) * 1e6, best_step / len(values) * 1e6


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] == "--relay":
        sys.argv = [sys.argv[0], "worker"]  # what Faust's command line expects after our own arguments
        relay(os.environ["FLOOR_BOOTSTRAP"], os.environ["FLOOR_PREFIX"], int(os.environ["FLOOR_PARTITIONS"]))
        return
    if len(sys.argv) == 5 and sys.argv[1] == "--sink":
        sink(*sys.argv[2:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--counties", type=int, default=10)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--partitions", type=int, default=4)
    args = ap.parse_args()

    from clickhouse_driver import Client
    from kafka.admin import KafkaAdminClient, NewTopic

    from bench_kafka import Lag, cpu_seconds, cpu_spent, events_for, produce, service_pids, wait

    bootstrap = os.environ.get("QRISK_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    ch = os.environ.get("QRISK_TEST_CLICKHOUSE_URL", "clickhouse://127.0.0.1:19000/qrisk_test").rsplit("/", 1)[0]
    prefix = f"floor{uuid.uuid4().hex[:6]}"
    names = topic_names(prefix)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(n, args.partitions, 1) for n in names.values()])
    db = f"qb_{prefix}"
    client = Client.from_url(f"{ch}/default")
    client.execute(f"CREATE DATABASE {db}")
    for name in ("floor_log", "floor_effects"):
        client.execute(f"CREATE TABLE {db}.{name} (key String, value String) ENGINE = MergeTree ORDER BY key")
    tmp = Path(tempfile.mkdtemp(prefix="qrisk-bench-floor-"))
    env = {**os.environ, "FLOOR_BOOTSTRAP": bootstrap, "FLOOR_PREFIX": prefix, "FLOOR_PARTITIONS": str(args.partitions)}
    me = str(Path(__file__).resolve())
    procs = [subprocess.Popen([sys.executable, me, "--relay"], cwd=tmp, env=env, stdout=open(tmp / f"relay{i}.log", "ab"),
                              stderr=subprocess.STDOUT, start_new_session=True) for i in range(args.workers)]
    procs.append(subprocess.Popen([sys.executable, me, "--sink", bootstrap, prefix, f"{ch}/{db}"], cwd=ROOT, env=env,
                                  stdout=open(tmp / "sink.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True))
    lag = Lag(bootstrap)
    try:
        def drained() -> bool:
            return (lag(f"{prefix}-relay", [names["ingress"], names["log"]]) == 0
                    and lag(f"{prefix}-sink", [names["log"], names["effects"]]) == 0)

        warm = events_for(1, offset=500)
        asyncio.run(produce(bootstrap, names["ingress"], [(e.enterprise_id.encode(), e.model_dump_json(exclude_none=True).encode()) for e in warm]))
        wait(drained, 180, "the warm-up", interval=0.5)
        events = events_for(args.counties)
        values = [(e.enterprise_id.encode(), e.model_dump_json(exclude_none=True).encode()) for e in events]
        n = len(values)
        groups = {"relay(s)": [p.pid for p in procs[:-1]], "sink": [procs[-1].pid],
                  "ClickHouse server": service_pids("clickhouse"), "broker": service_pids("kafka")}
        cpu0 = {k: cpu_seconds(v) for k, v in groups.items()}
        t0 = time.perf_counter()
        asyncio.run(produce(bootstrap, names["ingress"], values))
        wait(drained, 600, "the relay and the sink to drain", interval=0.1)
        elapsed = time.perf_counter() - t0
        cpu = {k: cpu_spent(cpu0[k], cpu_seconds(v)) for k, v in groups.items()}
        stored = client.execute(f"SELECT count() FROM {db}.floor_effects")[0][0]
        assert stored >= n + len(warm), (stored, n + len(warm))  # (a redelivery may add rows: never fewer)
        floor = sum(cpu.values()) / n * 1e6
        print(f"events: {n} ({args.counties} demo counties, {args.workers} relay process(es), 1 sink, broker + ClickHouse on this machine)")
        print(f"floor end to end (ingress -> relay -> log -> relay -> effects + changelog -> sink -> ClickHouse committed): {n / elapsed:,.0f} events/s")
        print("floor CPU per event (user + system): " + ", ".join(f"{k} {v / n * 1e6:,.0f} µs" for k, v in cpu.items())
              + f"; together {floor:,.0f} µs")
        parse_us, step_us = work_per_event(events)
        print(f"qrisk's own work on one core: validating the ingress record {parse_us:.0f} µs, step() {step_us:.0f} µs per event")
        least = floor + parse_us + step_us
        print(f"least CPU per event with this stack: {least:,.0f} µs, so at most {2e6 / least:,.0f} events/s on 2 cores "
              f"if every core were busy all the time (the target, 5,000 events/s, needs at most 400 µs)")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        admin.delete_topics(list(names.values()))
        client.execute(f"DROP DATABASE IF EXISTS {db}")
        print(f"logs: {tmp}")


if __name__ == "__main__":
    main()
