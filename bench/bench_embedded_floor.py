"""The floor under issue 2's embedded target: `qrisk run`'s door and log with qrisk's own work taken out.

    python bench/bench_embedded_floor.py [--years 10] [--batch 1000] [--clients 2] [--repeat 3]

The same bodies as ``bench_embedded.py`` go from the same clients (two threads of this process, on
the same two cores) to a server made of the parts issue 2 prescribes, doing only what the issue
requires before an answer:

- uvicorn with qrisk's HTTP options (``server_http_options``: h11) and FastAPI, one route;
- the body validated into the event models by ``ingest.validate.decode_body`` with the door's
  context (pydantic v2: every field checked, so that a bad one could be named in a 422);
- the events stamped with ``received_at`` and appended to chdb's ``event_log`` in the rows the
  pipeline writes (``Pipeline._log_row``), one insert per group commit, answered once it returns.

Nothing else: no API keys, no duplicate or conflict check, no fold, no derived rows, no dead
letters, no metrics.  Whatever ``qrisk run`` does beyond this floor is qrisk's own work; this is
the least any implementation of the issue with this stack spends per event here.

It prints the floor's rate and its server CPU per event, then, in this process on one core,
what the fold (``step()``) costs per event on the same events.  Two cores give 2,000,000 µs of
CPU per second to everything on the machine (the clients too), so 5,000 events/s needs the
floor, the fold and the derived rows together under 400 µs per event; and the server's
Python threads share one GIL, so what they hold it for bounds the rate at one core's worth.
"""

import argparse
import asyncio
import json
import queue
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def serve(port: int, data_dir: Path) -> None:
    """The floor server (its own process, as `qrisk run` is)."""
    import datetime as dt

    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from ingest.validate import MAX_BATCH, decode_body
    from qrisk.cli import server_http_options
    from qrisk.pipeline import Pipeline
    from qrisk.runtime import default_rules, tune_gc
    from qrisk.store import ChdbStore, migrate
    from schemas.events import door

    store = ChdbStore(data_dir)
    migrate(store)  # the tables of `qrisk run`: the same event_log
    context = door(default_rules().policy.utc_offset_hours)
    jobs: queue.Queue = queue.Queue()
    seq = [0]

    def commit() -> None:
        # group commit: everything queued since the last insert goes in one
        while True:
            batch = [jobs.get()]
            while True:
                try:
                    batch.append(jobs.get_nowait())
                except queue.Empty:
                    break
            now = dt.datetime.now(dt.timezone.utc)
            rows = []
            for events, _ in batch:
                for e in events:
                    seq[0] += 1
                    rows.append(Pipeline._log_row(seq[0], e.model_copy(update={"received_at": now})))
            try:
                store.insert("event_log", rows)
            except BaseException as exc:  # noqa: BLE001 - the request learns of it
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for events, future in batch:
                future.set_result(len(events))

    threading.Thread(target=commit, daemon=True, name="floor-commit").start()
    app = FastAPI()

    @app.post("/v1/events")
    async def post_events(request: Request) -> JSONResponse:
        raw = await request.body()
        events, rejections = decode_body(raw, MAX_BATCH, context)
        if rejections:
            return JSONResponse(status_code=422, content={"rejected": len(rejections)})
        future: Future = Future()
        jobs.put((events, future))
        return JSONResponse({"accepted": await asyncio.wrap_future(future)})

    @app.get("/readyz")
    async def ready() -> dict[str, int]:
        return {"events": seq[0]}

    tune_gc()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", **server_http_options())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_once(bodies: list[bytes], clients: int) -> dict[str, float]:
    import httpx

    from bench_embedded import cpu_seconds, memory_kib

    tmp = Path(tempfile.mkdtemp(prefix="qrisk-floor-"))
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), str(tmp / "data")], cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the floor server exited with {proc.returncode}")
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=300) as client:
            def send(body: bytes) -> int:
                resp = client.post("/v1/events", content=body, headers={"content-type": "application/json"})
                resp.raise_for_status()
                return resp.json()["accepted"]

            cpu0 = cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                accepted = sum(pool.map(send, bodies))
            elapsed = time.perf_counter() - t0
            cpu1 = cpu_seconds(proc.pid)
            logged = client.get("/readyz").json()["events"]
        memory = memory_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    assert accepted == logged, (accepted, logged)
    return {"accepted": accepted, "elapsed": elapsed, "rss_kib": memory.get("VmRSS", 0),
            "cpu_us": 1e6 * (cpu1 - cpu0) / accepted if cpu0 is not None and cpu1 is not None else float("nan")}


def fold_cost(events: list) -> float:
    """µs per event of ``step()`` on these events in this process, one core (best of 3, cold judgement memo)."""
    from processors.credit_file import CountyState
    from processors.judgement import _MEMO
    from processors.step import step
    from qrisk.runtime import default_rules

    rules = default_rules()
    best = float("inf")
    for _ in range(3):
        _MEMO.clear()
        state = CountyState()
        t0 = time.thread_time()
        for e in events:
            state, _ = step(state, e, rules)
        best = min(best, time.thread_time() - t0)
    return 1e6 * best / len(events)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="runs, each on a fresh server; the median is reported")
    ap.add_argument("--serve", nargs=2, metavar=("PORT", "DATA_DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(int(args.serve[0]), Path(args.serve[1]))
        return
    from qrisk.demo import CountyGenerator
    from qrisk.runtime import tune_gc

    events = []
    for seed in range(args.years):  # the events of bench_embedded.py
        events += CountyGenerator(seed=1000 + seed, county=f"C{seed}-", campaign=False, daily_ticks=False).generate()
    docs = [json.loads(e.model_dump_json(exclude_unset=True)) for e in events]
    bodies = [json.dumps(docs[i:i + args.batch], ensure_ascii=False, separators=(",", ":")).encode("utf-8")
              for i in range(0, len(docs), args.batch)]
    runs = [run_once(bodies, args.clients) for _ in range(args.repeat)]
    rates = [r["accepted"] / r["elapsed"] for r in runs]
    run = sorted(runs, key=lambda r: r["elapsed"])[len(runs) // 2]
    tune_gc(freeze=False)
    fold = fold_cost(events)
    floor = statistics.median(r["cpu_us"] for r in runs)
    print(f"events: {len(docs)} in {len(bodies)} batches of ≤{args.batch} from {args.clients} clients")
    print(f"floor (HTTP + validation + durable log, nothing of qrisk's own): {', '.join(f'{x:,.0f}' for x in rates)} events/s; "
          f"median {statistics.median(rates):,.0f}")
    cpus = ", ".join(f"{r['cpu_us']:.0f}" for r in runs)
    print(f"floor server CPU (all threads): {cpus} µs/event; median {floor:.0f}; "
          f"{run['rss_kib'] / 1024:,.0f} MiB resident")
    print(f"the fold (step(), one core, this process): {fold:.0f} µs/event")
    print(f"floor + fold: {floor + fold:.0f} µs/event of server CPU, at most {2e6 / (floor + fold):,.0f} events/s "
          f"with both cores doing nothing else (5,000 events/s needs ≤ 400 µs)")


if __name__ == "__main__":
    main()
