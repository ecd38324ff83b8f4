"""Embedded end to end: batch POST → durable chdb log → processors → derived tables.

    python bench/bench_embedded.py [--years 10] [--batch 1000] [--clients 2]

Starts a real `qrisk run` on a temporary data directory, posts demo events (several
seeded counties, distinct ids) in batches from concurrent clients, and reports
events/s from the first request to the last answer.  An answer means the events are
in the log and folded, and their derived rows are written.  Target (issue 2): ≥ 5,000 events/s.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.conftest import Server  # noqa: E402 - reuse the test harness that starts a real server

from qrisk.demo import CountyGenerator  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=2)
    args = ap.parse_args()
    docs = []
    for seed in range(args.years):
        for e in CountyGenerator(seed=1000 + seed, county=f"C{seed}-").generate():
            docs.append(json.loads(e.model_dump_json(exclude_unset=True)))
    batches = [docs[i:i + args.batch] for i in range(0, len(docs), args.batch)]
    tmp = Path(tempfile.mkdtemp(prefix="qrisk-bench-"))
    server = Server(tmp / "data").start()
    try:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=300) as client:
            def send(batch):
                resp = client.post("/v1/events", json=batch)
                resp.raise_for_status()
                return resp.json()["accepted"]

            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                accepted = sum(pool.map(send, batches))
            answered = time.perf_counter() - t0
            # end to end means in the derived tables too: wait for the sink to catch up
            while (health := client.get("/healthz").json())["derived_lag"] > 0:
                time.sleep(0.01)
            elapsed = time.perf_counter() - t0
        print(f"events posted: {len(docs)} in {len(batches)} batches of ≤{args.batch} from {args.clients} clients")
        print(f"accepted: {accepted}; log seq: {health['events']}; enterprises: {health['enterprises']}")
        print(f"answered (log durable + folded): {accepted / answered:,.0f} events/s ({answered:.2f} s)")
        print(f"embedded end to end (derived tables written): {accepted / elapsed:,.0f} events/s ({elapsed:.2f} s)")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
