"""Distributed runtime on this machine: real broker, real ClickHouse server, a real worker and sink.

    python bench/bench_kafka.py [--counties 20] [--rate 1000] [--seconds 10] [--workers 1]

1. Sustained throughput: demo events (COUNTIES × ~470, no ticks) produced to an ingress topic as
   fast as the producer goes; the clock runs from the first send until the worker has folded
   everything and the sink has committed every row into ClickHouse.  In the same run, a bare
   aiokafka consume loop reads the same messages, for the ratio.
2. Latency: RATE events/s for SECONDS seconds (paced); ingest-to-effect = from the producer's send
   to the ingress topic until the effect message is readable on the effects topic; p50/p99.

Needs the broker and the ClickHouse server of scripts/services.sh (QRISK_TEST_KAFKA_BOOTSTRAP,
QRISK_TEST_CLICKHOUSE_URL, or the defaults 127.0.0.1:19092 / clickhouse://127.0.0.1:19000).
Also prints the CPU time (user + system) each process spent per event over the throughput run.
Targets (issue 5): ≥ 5,000 events/s end to end (stretch 10,000); p99 ≤ 200 ms at 1,000 events/s.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.kafka_service import kafka_env, settings_for  # noqa: E402


class Lag:
    """Consumer-group lag with long-lived clients (a fresh admin client per check would eat a core)."""

    def __init__(self, bootstrap: str):
        from kafka import KafkaAdminClient, KafkaConsumer

        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap)

    def __call__(self, group: str, topics: list[str]) -> int:
        from kafka import TopicPartition

        committed = self.admin.list_group_offsets(group).get(group, {})
        lag = 0
        for topic in topics:
            tps = [TopicPartition(topic, p) for p in sorted(self.consumer.partitions_for_topic(topic) or set())]
            for tp, end in self.consumer.end_offsets(tps).items():
                meta = committed.get(tp)
                lag += end - (meta.offset if meta is not None and meta.offset >= 0 else 0)
        return lag


def events_for(counties: int, offset: int = 0) -> list:
    from qrisk.demo import CountyGenerator

    out = []
    for k in range(counties):
        out += [e for e in CountyGenerator(seed=1000 + offset + k, county=f"B{offset + k}-", campaign=False, daily_ticks=False).generate() if e.enterprise_id != "*"]
    out.sort(key=lambda e: e.occurred_at)
    return out


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU time of each of these processes so far (Linux /proc): what a run cost,
    however busy the machine was with other work meanwhile, unlike its wall time."""
    hz = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / hz
    return found


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident set now and at its peak (VmRSS, VmHWM), MB: the worker freezes its heap for the
    cyclic collector (qrisk.worker.freeze_heap), and garbage frozen by mistake would show here."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return found.get("VmRSS", 0.0), found.get("VmHWM", 0.0)


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(after[pid] - t for pid, t in before.items() if pid in after)


def service_pids(name: str) -> list[int]:
    """The pid of a service scripts/services.sh started (its pid file under var/), if any."""
    var = Path(os.environ.get("QRISK_VAR_DIR", ROOT / "var"))
    path = {"clickhouse": var / "clickhouse" / "clickhouse-server.pid", "kafka": var / "kafka" / "kafka.pid"}[name]
    try:
        return [int(path.read_text().split()[0])]
    except (OSError, ValueError, IndexError):
        return []


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "qrisk.cli_kafka", *args], cwd=ROOT, env={**os.environ, **env},
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def wait(predicate, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}")


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]], rate: float | None = None) -> list[float]:
    """Send as fast as the producer goes (or paced at ``rate``/s); returns each message's send time.

    aiokafka (C record batches): kafka-python's pure-Python CRC32C caps its producer near 2.5 k
    messages/s here, which would measure the load generator instead of the pipeline."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                                max_batch_size=256 * 1024)
    await producer.start()
    sent: list[float] = []
    try:
        pending = []
        t_start = time.perf_counter()
        for i, (key, value) in enumerate(messages):
            if rate:
                delay = t_start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent.append(time.monotonic())  # the latency reader's clock (another process: CLOCK_MONOTONIC is system-wide)
            pending.append(await producer.send(topic, value=value, key=key))
            if len(pending) >= 10000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


async def bare_consume(bootstrap: str, topic: str, n: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"bare-{uuid.uuid4().hex[:6]}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        seen, t0 = 0, None
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for msgs in batch.values():
                if t0 is None:
                    t0 = time.perf_counter()
                for m in msgs:
                    json.loads(m.value)  # the least any consumer does with a message
                seen += len(msgs)
        return n / (time.perf_counter() - t0)
    finally:
        await consumer.stop()


async def read_effects(bootstrap: str, topic: str, partitions: str, out: str) -> None:
    """Until SIGTERM: the first time (monotonic) each event id is readable on the effects topic, as JSON to ``out``."""
    import signal

    import orjson
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100, check_crcs=False)
    await consumer.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    got: dict[str, float] = {}
    # per event: the log message's and the effect message's timestamps (their producers' clocks,
    # wall ms) and when it was read, for where the time went (``hops`` in main)
    hops: dict[str, tuple[int, int, float]] = {}
    try:
        tps = [TopicPartition(topic, p) for p in range(int(partitions))]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        print("ready", flush=True)
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=50)
            now = time.monotonic()
            wall = time.time() * 1000
            for msgs in batch.values():
                for m in msgs:
                    doc = orjson.loads(m.value)
                    if doc["event_id"] not in got:
                        got[doc["event_id"]] = now
                        hops[doc["event_id"]] = (doc.get("log_ts") or 0, m.timestamp, wall)
    finally:
        await consumer.stop()
        Path(out).write_text(json.dumps(got))
        Path(out).with_name("latency-hops.json").write_text(json.dumps({"wall_minus_monotonic_ms": (time.time() - time.monotonic()) * 1000,
                                                                         "hops": hops}))


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--read-effects":
        asyncio.run(read_effects(*sys.argv[2:]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--counties", type=int, default=20)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--view-seconds", type=float, default=60.0, help="QRISK_WORKER_VIEW_SECONDS of the worker (its default)")
    args = ap.parse_args()
    bootstrap = os.environ.get("QRISK_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    ch = os.environ.get("QRISK_TEST_CLICKHOUSE_URL", "clickhouse://127.0.0.1:19000/qrisk_test").rsplit("/", 1)[0]
    from qrisk.store import ClickHouseStore
    from qrisk.topics import create_topics, delete_topics

    prefix = f"bench{uuid.uuid4().hex[:6]}"
    db = f"qb_{prefix}"
    env = kafka_env(bootstrap, prefix, QRISK_STORE_URL=f"{ch}/{db}", QRISK_WORKER_WEB_PORT=0, QRISK_WORKER_VIEW_SECONDS=args.view_seconds)
    group_lag = Lag(bootstrap)
    settings = settings_for(env)
    topics = settings.topics()
    create_topics(settings)
    tmp = Path(tempfile.mkdtemp(prefix="qrisk-bench-kafka-"))
    reader = None
    procs = [start(["worker"], {**env, "QRISK_WORKER_DATA_DIR": str(tmp / f"w{i}")}, tmp / f"worker{i}.log") for i in range(args.workers)]
    procs.append(start(["sink"], env, tmp / "sink.log"))
    try:
        events = events_for(args.counties)
        values = [(e.enterprise_id.encode(), e.model_dump_json(exclude_none=True).encode()) for e in events]
        n = len(values)
        ingress = topics.ingress["import"].name  # the whole county: the topic that admits every event type
        # warm-up: the group is formed and the sink has its tables before the clock starts
        warm = events_for(1, offset=500)
        asyncio.run(produce(bootstrap, ingress, [(e.enterprise_id.encode(), e.model_dump_json(exclude_none=True).encode()) for e in warm]))
        sink_topics = [topics.events.name, topics.effects.name, topics.credit_files.name, topics.dead_letters.name]

        def drained() -> bool:
            return (group_lag(settings.worker_app_id, [ingress, topics.events.name]) == 0
                    and group_lag(settings.sink_group, sink_topics) == 0)

        wait(drained, 180, "the warm-up", interval=0.5)

        # ---------------------------------------------------------------- 1. throughput
        groups = {"worker(s)": [p.pid for p in procs[:-1]], "sink": [procs[-1].pid],
                  "ClickHouse server": service_pids("clickhouse"), "broker": service_pids("kafka")}
        # CPU seconds, not wall time, are what stay comparable on a machine that does other work too
        cpu0 = {k: cpu_seconds(v) for k, v in groups.items()}
        t0 = time.perf_counter()
        asyncio.run(produce(bootstrap, ingress, values))
        produced = time.perf_counter() - t0
        wait(drained, 600, "the pipeline to drain", interval=0.1)
        elapsed = time.perf_counter() - t0
        cpu = {k: cpu_spent(cpu0[k], cpu_seconds(v)) for k, v in groups.items()}
        store = ClickHouseStore(f"{ch}/{db}")
        archived = store.query("SELECT uniqExact(event_id) AS n FROM events")[0]["n"]
        store.close()
        assert archived == n + len(warm), (archived, n + len(warm))
        bare = asyncio.run(bare_consume(bootstrap, ingress, n + len(warm)))
        e2e = n / elapsed
        print(f"events: {n} ({args.counties} demo counties, {args.workers} worker process(es), 1 sink, broker + ClickHouse on this machine)")
        print(f"producer alone: {n / produced:,.0f} events/s")
        print(f"end to end (ingress -> worker -> log -> fold -> effects -> sink -> ClickHouse committed): {e2e:,.0f} events/s ({elapsed:.1f} s)")
        print(f"bare aiokafka consume loop over the same messages: {bare:,.0f} messages/s; end to end is {e2e / bare:.1%} of it")
        print("CPU per event over the run (user + system): " + ", ".join(f"{k} {v / n * 1e6:,.0f} µs" for k, v in cpu.items())
              + f"; together {sum(cpu.values()) / n * 1e6:,.0f} µs = {n / sum(cpu.values()):,.0f} events/s per core")
        print("worker memory after the run: " + ", ".join("%.0f MB (peak %.0f MB)" % memory_mb(p.pid) for p in procs[:-1]))

        # ---------------------------------------------------------------- 2. latency at a fixed rate
        count = int(args.rate * args.seconds)
        paced = events_for(max(1, count // 460 + 1), offset=2000)[:count]
        # The effects are read by a process of its own (aiokafka, partitions assigned, no group):
        # a kafka-python reader in a thread of this process shared the GIL with the paced
        # producer (delaying sends and their timestamps alike) and polled the broker every 5 ms.
        got_path = tmp / "latency-got.json"
        reader = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--read-effects", bootstrap, topics.effects.name,
                                   str(topics.effects.partitions), str(got_path)], cwd=ROOT, stdout=subprocess.PIPE, start_new_session=True)
        if reader.stdout.readline().strip() != b"ready":
            raise SystemExit("the latency reader did not start")
        time.sleep(0.5)
        cpu0 = {k: cpu_seconds(v) for k, v in groups.items()}
        times = asyncio.run(produce(bootstrap, ingress, [(e.enterprise_id.encode(), e.model_dump_json(exclude_none=True).encode())
                                                         for e in paced], rate=args.rate))
        # from the first send to the last (not the producer's start and stop, nor encoding the messages)
        offered = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
        sent = {str(e.event_id): t for e, t in zip(paced, times)}
        (tmp / "latency-sent.json").write_text(json.dumps(sent))  # with latency-got.json: each event's way, for a closer look
        t_start = times[0] if times else time.monotonic()
        wait(drained, 120, "the paced load to drain", interval=0.2)
        time.sleep(1.0)
        cpu = {k: cpu_spent(cpu0[k], cpu_seconds(v)) for k, v in groups.items()}
        reader.terminate()
        reader.wait(30)
        got: dict[str, float] = json.loads(got_path.read_text())
        lat = sorted((got[eid] - t) * 1000 for eid, t in sent.items() if eid in got)
        q = statistics.quantiles(lat, n=100)
        print(f"latency at {offered:,.0f} events/s offered for {args.seconds:.0f} s ({len(lat)} of {len(paced)} events had effects): "
              f"p50 {q[49]:.0f} ms, p90 {q[89]:.0f} ms, p99 {q[98]:.0f} ms, max {lat[-1]:.0f} ms (ingress send -> effect readable)")
        print("  CPU per event at this rate (includes the credit-file views): " + ", ".join(f"{k} {v / len(paced) * 1e6:,.0f} µs" for k, v in cpu.items()))
        print("  worker memory after it: " + ", ".join("%.0f MB (peak %.0f MB)" % memory_mb(p.pid) for p in procs[:-1]))
        # where in the run the slow ones were: a tail at the start is a warm-up, one that grows is a backlog
        windows: dict[int, list[float]] = {}
        for eid, t in sent.items():
            if eid in got:
                windows.setdefault(int(t - t_start), []).append((got[eid] - t) * 1000)
        hop_file = json.loads((tmp / "latency-hops.json").read_text())
        shift, hop = hop_file["wall_minus_monotonic_ms"], hop_file["hops"]
        stages: dict[str, list[float]] = {"ingress -> log (normalise)": [], "log -> effect (fold)": [], "effect -> read": []}
        for eid, t in sent.items():
            if eid in hop and hop[eid][0]:
                log_ts, effect_ts, read_ms = hop[eid]
                stages["ingress -> log (normalise)"].append(log_ts - (t * 1000 + shift))
                stages["log -> effect (fold)"].append(effect_ts - log_ts)
                stages["effect -> read"].append(read_ms - effect_ts)
        print("  by hop (producer timestamps, ms resolution): " + "; ".join(
            f"{name} p50 {statistics.median(v):.0f}, p99 {statistics.quantiles(v, n=100)[98]:.0f} ms" for name, v in stages.items() if len(v) > 1))
        print(f"  paced from {time.strftime('%H:%M:%S', time.localtime(time.time() - (time.monotonic() - t_start)))}; per second sent: " + ", ".join(f"{s}s p50 {statistics.median(v):.0f}/max {max(v):.0f}" for s, v in sorted(windows.items())))
    finally:
        if reader is not None and reader.poll() is None:
            reader.kill()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        delete_topics(settings, [t.name for t in topics.all()])
        admin = ClickHouseStore(f"{ch}/default", create_database=False)
        admin.command(f"DROP DATABASE IF EXISTS {db}")
        admin.close()
        print(f"logs: {tmp}")


if __name__ == "__main__":
    main()
