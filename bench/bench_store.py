"""Insert throughput of sampling-item rows through the store, on both backends.

    scripts/services.sh up clickhouse
    python bench/bench_store.py [--rows 100000] [--rounds 3] [--url clickhouse://127.0.0.1:19000/qrisk_bench]

For each backend (chdb in a temporary folder, the server at --url) and batch size (1k, 10k):
``store.insert()`` of every row, batch after batch, timed from the first call to the last
(row normalisation included), into a freshly truncated ``sampling_items``.  Also timed, in
the same run and on the same rows: a BatchWriter (max_rows = 10k) over the same store, and
the reference bulk load — one ``INSERT … FORMAT TabSeparated`` of all the rows by the server's
own ``clickhouse-client`` (for chdb: the same INSERT of the same file by chdb itself).  The
ratio is store rows/s ÷ reference rows/s.  Figures are medians over the rounds.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from qrisk.store import ChdbStore, ClickHouseStore, migrate  # noqa: E402
from qrisk.writer import BatchWriter  # noqa: E402
from rows import sampling_item_rows  # noqa: E402

TABLE = "sampling_items"


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def through_store(store, rows, batch: int) -> float:
    def run():
        for i in range(0, len(rows), batch):
            store.insert(TABLE, rows[i:i + batch])
    return timed(run)


def through_writer(store, rows, batch: int) -> float:
    def run():
        w = BatchWriter(store, TABLE, max_rows=batch, max_delay_s=0.2)
        for i in range(0, len(rows), 500):
            w.add(rows[i:i + 500])
        assert w.close(timeout=600)
    return timed(run)


def count(store) -> int:
    return store.query(f"SELECT count() AS n FROM {TABLE} FINAL")[0]["n"]


def bench_backend(name: str, store, rows, rounds: int, bulk) -> list[tuple[str, float]]:
    migrate(store)
    results: list[tuple[str, float]] = []
    cases = [("store.insert, batch 1k", lambda: through_store(store, rows, 1000)),
             ("store.insert, batch 10k", lambda: through_store(store, rows, 10_000)),
             ("BatchWriter, max_rows 10k", lambda: through_writer(store, rows, 10_000)),
             (f"bulk INSERT FORMAT TabSeparated ({bulk.__doc__})", bulk)]
    for label, case in cases:
        rates = []
        for _ in range(rounds):
            store.command(f"TRUNCATE TABLE {TABLE}")
            elapsed = case()
            assert count(store) == len(rows), (label, count(store))
            rates.append(len(rows) / elapsed)
        results.append((label, statistics.median(rates)))
        print(f"  {name:10s} {label:58s} {statistics.median(rates):>10,.0f} rows/s  (rounds: {', '.join(f'{r:,.0f}' for r in rates)})", flush=True)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--url", default="clickhouse://127.0.0.1:19000/qrisk_bench")
    ap.add_argument("--client", default="clickhouse-client")
    ap.add_argument("--backends", nargs="+", default=["chdb", "clickhouse"])
    args = ap.parse_args()

    rows = sampling_item_rows(args.rows)
    print(f"{len(rows):,} sampling-item rows ({len(rows[0])} columns), {args.rounds} rounds, median shown")
    work = Path(tempfile.mkdtemp(prefix="qrisk-bench-store-"))
    tsv = work / "rows.tsv"
    summary: dict[str, list[tuple[str, float]]] = {}
    try:
        if "clickhouse" in args.backends:
            store = ClickHouseStore(args.url)
            store.command(f"DROP TABLE IF EXISTS {TABLE}")
            from urllib.parse import urlsplit

            u = urlsplit(args.url)
            client = [args.client, "--host", u.hostname or "127.0.0.1", "--port", str(u.port or 9000),
                      "--database", store.database]
            if u.username:
                client += ["--user", u.username]
            if u.password:
                client += ["--password", u.password]
            migrate(store)
            store.insert(TABLE, rows)  # the reference file holds exactly these rows, as the server prints them
            with open(tsv, "wb") as fh:
                subprocess.run(client + ["--query", f"SELECT * FROM {TABLE} FORMAT TabSeparated"], stdout=fh, check=True)

            def server_bulk() -> float:
                """clickhouse-client"""
                with open(tsv, "rb") as fh:
                    return timed(lambda: subprocess.run(client + ["--query", f"INSERT INTO {TABLE} FORMAT TabSeparated"], stdin=fh, check=True))

            version = store.query("SELECT version() AS v")[0]["v"]
            print(f"clickhouse-server {version} at {store.url}")
            summary["clickhouse"] = bench_backend("clickhouse", store, rows, args.rounds, server_bulk)
            store.command(f"DROP DATABASE IF EXISTS {store.database}")
            store.close()
        if "chdb" in args.backends:
            store = ChdbStore(work / "chdb")
            if not tsv.exists():
                migrate(store)
                store.insert(TABLE, rows)
                store.command(f"SELECT * FROM {TABLE} INTO OUTFILE '{tsv}' FORMAT TabSeparated")

            def chdb_bulk() -> float:
                """chdb, same file"""
                return timed(lambda: store.command(f"INSERT INTO {TABLE} SELECT * FROM file('{tsv}', 'TabSeparated')"))

            version = store.query("SELECT version() AS v")[0]["v"]
            print(f"chdb (ClickHouse {version}) in {store.data_dir}")
            summary["chdb"] = bench_backend("chdb", store, rows, args.rounds, chdb_bulk)
            store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("\nsummary (target ≥ 50,000 rows/s; ratio = rows/s ÷ bulk INSERT FORMAT by the reference client)")
    for backend, results in summary.items():
        bulk = results[-1][1]
        for label, rate in results[:-1]:
            print(f"  {backend:10s} {label:30s} {rate:>10,.0f} rows/s  ratio {rate / bulk:.2f}  {'ok' if rate >= 50_000 else 'BELOW TARGET'}")
        print(f"  {backend:10s} {'bulk reference':30s} {bulk:>10,.0f} rows/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
