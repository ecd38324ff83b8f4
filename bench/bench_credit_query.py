"""Latency of the credit-file query for one enterprise with 5 years of history, on both backends.

    scripts/services.sh up clickhouse
    python bench/bench_credit_query.py [--enterprises 40] [--per-month 4] [--queries 300]

Loads a county's analytical tables (40 enterprises × 5 years, 4 samples a month each: per
enterprise 240 samples, 1,440 sampling-item rows, snapshots, alerts)
in 5k-row batches with 10 % of every table redelivered, then times
``credit_file_report(store, enterprise_id)`` — the four queries (newest snapshot, which carries the
grade history and the charts' signals; samples, per-item summary, alerts; with FINAL or its GROUP BY
equivalent) — for random enterprises.
Reported: p50 / p95 / p99 / max in ms, first with the parts as inserted, then after
OPTIMIZE … FINAL.
"""
from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from qrisk.store import ChdbStore, ClickHouseStore, credit_file_report, migrate  # noqa: E402
from rows import history_rows  # noqa: E402


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def load(store, data) -> None:
    for table, rows in data.items():
        for i in range(0, len(rows), 5000):
            store.insert(table, rows[i:i + 5000])
        store.insert(table, rows[: len(rows) // 10])  # redelivered


def measure(store, enterprises: list[str], n: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    for eid in enterprises[:5]:
        credit_file_report(store, eid)  # warm-up
    times = []
    for _ in range(n):
        eid = rng.choice(enterprises)
        t = time.perf_counter()
        report = credit_file_report(store, eid)
        times.append((time.perf_counter() - t) * 1000)
        assert report is not None and report["samples"]
    return times


def line(label: str, times: list[float]) -> str:
    return (f"  {label:44s} p50 {statistics.median(times):6.1f}  p95 {pct(times, 95):6.1f}  "
            f"p99 {pct(times, 99):6.1f}  max {max(times):6.1f} ms  {'ok' if pct(times, 99) <= 50 else 'ABOVE TARGET'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--enterprises", type=int, default=40)
    ap.add_argument("--years", type=int, default=5)
    ap.add_argument("--per-month", type=int, default=4)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--url", default="clickhouse://127.0.0.1:19000/qrisk_bench_credit")
    ap.add_argument("--backends", nargs="+", default=["chdb", "clickhouse"])
    args = ap.parse_args()

    data = history_rows(args.enterprises, args.years, args.per_month)
    enterprises = sorted({r["enterprise_id"] for r in data["judgements"]})
    one = enterprises[0]
    print(f"{args.enterprises} enterprises × {args.years} years; per enterprise: "
          + ", ".join(f"{sum(1 for r in rows if r['enterprise_id'] == one)} {t}" for t, rows in data.items()))
    work = Path(tempfile.mkdtemp(prefix="qrisk-bench-credit-"))
    try:
        for backend in args.backends:
            if backend == "chdb":
                store = ChdbStore(work / "chdb")
            else:
                store = ClickHouseStore(args.url)
                store.command(f"DROP DATABASE IF EXISTS {store.database}")
                store.close()
                store = ClickHouseStore(args.url)
            migrate(store)
            t = time.perf_counter()
            load(store, data)
            version = store.query("SELECT version() AS v")[0]["v"]
            print(f"{backend} (ClickHouse {version}): loaded in {time.perf_counter() - t:.1f}s")
            print(line(f"{backend}, parts as inserted", measure(store, enterprises, args.queries)))
            for table in data:
                store.command(f"OPTIMIZE TABLE {table} FINAL")
            print(line(f"{backend}, after OPTIMIZE FINAL", measure(store, enterprises, args.queries)))
            if backend != "chdb":
                store.command(f"DROP DATABASE IF EXISTS {store.database}")
            store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
