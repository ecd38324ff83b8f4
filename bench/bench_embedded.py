"""Embedded end to end: batch POST → durable chdb log → processors → derived tables.

    python bench/bench_embedded.py [--years 10] [--batch 1000] [--clients 2] [--repeat 1] [--breakdown]

Starts a real `qrisk run` on a temporary data directory, posts demo events (several
seeded counties, distinct ids) in batches from concurrent clients, and reports
events/s from the first request to the last answer.  An answer means the events are
in the log and folded, and their derived rows are written.  Target (issue 2): ≥ 5,000 events/s.
The demo's campaign events and daily clock ticks are left out, as in bench_step.py.

Also printed: the server's resident and peak memory after the run (what a machine is sized
by), the server process's CPU time per event (user + system, all its threads), a
figure that other load on the machine disturbs much less than the rate, and that CPU by
thread (the group commit folds, the derived-rows sink writes the tables, chdb's pools write
parts and merge them); and with ``--repeat N`` every run's rate and the median.

``--breakdown`` instead runs the same events through the same code in one thread of this
process (no HTTP, derived rows written inline) and prints the CPU time per event of each
stage: body decode, the fold (``step``), and everything else.  The pipeline's threads share
one GIL, so the sum of these is what bounds the rate; the fold's share is the processors',
the rest is the runtime's.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.conftest import Server  # noqa: E402 - reuse the test harness that starts a real server

from qrisk.demo import CountyGenerator  # noqa: E402


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process so far (Linux /proc); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def memory_kib(pid: int) -> dict[str, int]:
    """Resident (VmRSS) and peak resident (VmHWM) memory of a process, in KiB (Linux /proc)."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far of each thread of a process, summed by what it is: qrisk's threads by their
    OS-level names (qrisk.threads.NamedThread), the main thread (the event loop: HTTP, decoding,
    answers), and every other thread by its name (chdb names its own: ThreadPool, MergeMutate, BgSchPool…)."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            comm = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        what = "main thread (event loop: HTTP, decoding, answers)" if tid == str(pid) else comm
        out[what] = out.get(what, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def run_once(docs: list[dict], batch: int, clients: int) -> dict[str, float]:
    # bodies serialised before the clock starts: a lab system encodes its batch on its own machine,
    # and here the clients share the server's two cores (httpx's json= took ~20 ms of CPU a batch)
    batches = [json.dumps(docs[i:i + batch], ensure_ascii=False, separators=(",", ":")).encode("utf-8") for i in range(0, len(docs), batch)]
    tmp = Path(tempfile.mkdtemp(prefix="qrisk-bench-"))
    server = Server(tmp / "data").start()
    try:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=300) as client:
            def send(body: bytes) -> int:
                resp = client.post("/v1/events", content=body, headers={"content-type": "application/json"})
                resp.raise_for_status()
                return resp.json()["accepted"]

            cpu0 = cpu_seconds(server.proc.pid)
            threads0 = thread_cpu(server.proc.pid)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                accepted = sum(pool.map(send, batches))
            answered = time.perf_counter() - t0
            # end to end means in the derived tables too: wait for the sink to catch up
            while (health := client.get("/healthz").json())["derived_lag"] > 0:
                time.sleep(0.01)
            elapsed = time.perf_counter() - t0
            cpu1 = cpu_seconds(server.proc.pid)
            threads1 = thread_cpu(server.proc.pid)
            memory = memory_kib(server.proc.pid)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"accepted": accepted, "batches": len(batches), "events": health["events"], "enterprises": health["enterprises"],
            "answered": answered, "elapsed": elapsed, "rss_kib": memory.get("VmRSS", 0), "peak_kib": memory.get("VmHWM", 0),
            "cpu_us": 1e6 * (cpu1 - cpu0) / accepted if cpu0 is not None and cpu1 is not None else float("nan"),
            "threads_us": {k: 1e6 * (v - threads0.get(k, 0.0)) / accepted for k, v in threads1.items()}}


def measure_stages(docs: list[dict], batch: int) -> tuple[float, dict[str, float], float]:
    import collections

    import qrisk.pipeline as pipeline_module
    from ingest.validate import decode_body
    from qrisk.runtime import default_rules, tune_gc
    from qrisk.store import ChdbStore

    spent: collections.Counter[str] = collections.Counter()
    inside: list[str] = []  # the stage being timed: a store write inside a snapshot is the snapshot's

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            if inside:
                return fn(*args, **kwargs)
            inside.append(name)
            t = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.thread_time() - t
                inside.pop()
        return wrapper

    bodies = [json.dumps(docs[i:i + batch]).encode() for i in range(0, len(docs), batch)]
    tmp = Path(tempfile.mkdtemp(prefix="qrisk-bench-"))
    step = pipeline_module.step
    pipeline_module.step = timed("fold (processors.step)", step)
    try:
        store = ChdbStore(tmp / "data")
        pipeline = pipeline_module.Pipeline(store, default_rules())
        store.insert = timed("store writes (log and derived rows)", store.insert)
        if hasattr(store, "insert_columns"):
            store.insert_columns = timed("store writes (log and derived rows)", store.insert_columns)
        query = store._session.query

        def chdb_query(*args, **kwargs):
            t = time.thread_time()
            try:
                return query(*args, **kwargs)
            finally:
                spent_in_chdb[0] += time.thread_time() - t
        spent_in_chdb = [0.0]
        store._session.query = chdb_query
        pipeline._derive = timed("derived rows built", pipeline._derive)
        pipeline._log_row = timed("log rows built (event body as JSON)", pipeline._log_row)
        pipeline.write_snapshots = timed("credit-file snapshots", pipeline.write_snapshots)
        tune_gc()
        t0 = time.thread_time()
        for body in bodies:
            t = time.thread_time()
            events, rejections = decode_body(body)
            spent["decode + validate (POST body)"] += time.thread_time() - t
            assert not rejections
            pipeline.submit(events)
        total = time.thread_time() - t0
        during = dict(spent)  # not the snapshots written on close
        in_chdb = spent_in_chdb[0]
        pipeline.close()
    finally:
        pipeline_module.step = step
        shutil.rmtree(tmp, ignore_errors=True)
    return total, during, in_chdb


def breakdown(docs: list[dict], batch: int, repeat: int) -> None:
    # the fastest of the runs: the one least disturbed by other work on the machine
    total, during, in_chdb = min((measure_stages(docs, batch) for _ in range(repeat)), key=lambda run: run[0])
    n = len(docs)
    fold = during.get("fold (processors.step)", 0.0)
    print(f"{n} events in batches of {batch}, one thread, CPU time per event (fastest of {repeat}):")
    for name, seconds in sorted(during.items(), key=lambda kv: -kv[1]):
        print(f"  {name:40s} {1e6 * seconds / n:7.1f} µs")
    print(f"  {'ids, seq, stamping, locks, the rest':40s} {1e6 * (total - sum(during.values())) / n:7.1f} µs")
    print(f"  {'total':40s} {1e6 * total / n:7.1f} µs  ({n / total:,.0f} events/s on one core)")
    print(f"  {'everything but the fold':40s} {1e6 * (total - fold) / n:7.1f} µs")
    print(f"  {'of all these, inside chdb (GIL released)':40s} {1e6 * in_chdb / n:7.1f} µs")
    print(f"  {'the rest but the fold: GIL held':40s} {1e6 * (total - fold - in_chdb) / n:7.1f} µs")
    print("(HTTP is not included)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="runs, each on a fresh server; the median is reported")
    ap.add_argument("--breakdown", action="store_true", help="CPU per event by stage, in this process (no server)")
    args = ap.parse_args()
    docs = []
    for seed in range(args.years):
        for e in CountyGenerator(seed=1000 + seed, county=f"C{seed}-", campaign=False, daily_ticks=False).generate():
            docs.append(json.loads(e.model_dump_json(exclude_unset=True)))
    if args.breakdown:
        breakdown(docs, args.batch, args.repeat)
        return
    runs = [run_once(docs, args.batch, args.clients) for _ in range(args.repeat)]
    run = sorted(runs, key=lambda r: r["elapsed"])[len(runs) // 2]
    accepted = run["accepted"]
    print(f"events posted: {len(docs)} in {run['batches']} batches of ≤{args.batch} from {args.clients} clients")
    print(f"accepted: {accepted}; log seq: {run['events']}; enterprises: {run['enterprises']}")
    print(f"answered (log durable + folded): {accepted / run['answered']:,.0f} events/s ({run['answered']:.2f} s)")
    print(f"embedded end to end (derived tables written): {accepted / run['elapsed']:,.0f} events/s ({run['elapsed']:.2f} s)")
    print(f"server CPU (all threads): {run['cpu_us']:.0f} µs/event")
    for what, us in sorted(run["threads_us"].items(), key=lambda kv: -kv[1]):
        if us >= 0.5:
            print(f"  {what:50s} {us:5.0f} µs/event")
    print("  (qrisk's threads: group-commit writes the log and folds, derived-sink writes the derived tables;"
          " ThreadPool, MergeMutate and the like are chdb's)")
    if run["peak_kib"]:
        # what a machine is sized by: the fold keeps every enterprise's credit file in memory
        print(f"server memory after the run: {run['rss_kib'] / 1024:,.0f} MiB resident, peak {run['peak_kib'] / 1024:,.0f} MiB "
              f"({run['enterprises']} enterprises, {run['events']} events)")
    if len(runs) > 1:
        rates = [r["accepted"] / r["elapsed"] for r in runs]
        print(f"runs: {', '.join(f'{x:,.0f}' for x in rates)} events/s end to end; median {statistics.median(rates):,.0f}")


if __name__ == "__main__":
    main()
