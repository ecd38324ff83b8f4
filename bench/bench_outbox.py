"""One outbox dispatcher pass over a large pending backlog: seconds and peak allocation, on both backends.

    python bench/bench_outbox.py [--rows 10000 20000] [--passes 3] [--backend chdb|clickhouse|both]
    python bench/bench_outbox.py --code /tmp/old-checkout   # another checkout's alerts.outbox on the same rows

After an outage or a big ``qrisk alerts redeliver`` thousands of notifications are pending, and every pass reads
them to build its turns round the receivers before it sends anything: a fresh critical alert waits for that read.
For each backlog size the outbox gets that many notifications (bodies of ~2.5 kB, a long Chinese text)
to three receivers, ``--mode due`` never tried or ``backoff`` each tried once and backing off (nothing due: the
pass reads and sends nothing); the sender is a stub answering 200 at once, so what is timed is the reading and the
choosing (and the ``deliveries`` insert of each attempt, 10-40 ms on chdb, the floor of a pass that sends 200).  A warm
pass first, then ``--passes`` passes timed (the whole pass, and how long until its first send: what a fresh critical
alert waits), then as many traced (tracemalloc's peak: what the pass allocated at most at one time; tracemalloc slows
the Python part 2-3x).  Each due pass sends ``batch`` (200) of the backlog.
"""
from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
import tracemalloc
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000, 20_000], help="pending notifications (each size a run)")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--mode", choices=("due", "backoff"), default="due")
    ap.add_argument("--backend", choices=("chdb", "clickhouse", "both"), default="chdb")
    ap.add_argument("--url", default="clickhouse://127.0.0.1:19000/qrisk_bench_outbox")
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--code", default=str(ROOT), help="the checkout whose alerts.outbox is measured (default: this one)")
    args = ap.parse_args()
    sys.path.insert(0, args.code)
    sys.path.insert(1, str(ROOT))

    import alerts.outbox as outbox

    print(f"alerts.outbox from {outbox.__file__}; mode {args.mode}, batch {args.batch}")
    for backend in (("chdb", "clickhouse") if args.backend == "both" else (args.backend,)):
        for n in args.rows:
            run(backend, n, args)
    return 0


def run(backend: str, n: int, args: argparse.Namespace) -> None:
    from alerts.notification import Notification
    from alerts.outbox import Dispatcher
    from qrisk.store import ChdbStore, ClickHouseStore, migrate
    from schemas.policy import AlertsPolicy

    tmp = tempfile.mkdtemp(prefix="qrisk-bench-outbox-")
    if backend == "chdb":
        store = ChdbStore(Path(tmp) / "data")
    else:
        store = ClickHouseStore(args.url)
        store.command(f"DROP DATABASE IF EXISTS {store.database}")
        store = ClickHouseStore(args.url)
    try:
        migrate(store)
        t0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
        receivers = ("town", "county", "duty")
        rows = []
        for i in range(n):
            did, receiver = f"d{i:06d}", receivers[i % len(receivers)]
            note = Notification(delivery_id=did, alert_id=f"AL-{i // 2}", enterprise_id=f"E{i % 50}", receiver=receiver,
                                channel="webhook", reason="opened", subject_zh="【高·抽检不合格】清源桶装水厂", text_zh="正文" * 400)
            rows.append({"delivery_id": did, "alert_id": note.alert_id, "enterprise_id": note.enterprise_id, "receiver": receiver,
                         "channel": "webhook", "reason": "opened", "created_at": t0 + dt.timedelta(seconds=i), "created_ms": 0,
                         "body": note.to_json()})
        for at in range(0, n, 10_000):
            store.insert("outbox", rows[at:at + 10_000])
        if args.mode == "backoff":  # each tried once, 503, backing off 10 minutes
            tried = [{"delivery_id": r["delivery_id"], "alert_id": r["alert_id"], "enterprise_id": r["enterprise_id"],
                      "receiver": r["receiver"], "channel": "webhook", "attempt": 1, "status": "retry",
                      "at": t0 + dt.timedelta(hours=3), "at_ms": 0, "response_code": 503, "error": "503"} for r in rows]
            for at in range(0, n, 10_000):
                store.insert("deliveries", tried[at:at + 10_000])
        del rows
        now = t0 + dt.timedelta(hours=3, seconds=1)

        first: list[float] = []

        def send(receiver, note, smtp, timeout=None, **kw):
            if not first:
                first.append(time.perf_counter())
            return types.SimpleNamespace(ok=True, code=200, error="", retry=False, accepted=())

        policy = AlertsPolicy.model_validate({"receivers": [{"name": r, "kind": "webhook", "url": "http://127.0.0.1:9/x"}
                                                            for r in receivers]})
        d = Dispatcher(store, policy, clock=lambda: now, send=send, journal=False, batch=args.batch)
        # one dispatcher here: no lease to wait out on the server (the lease's own queries are not what is measured)
        d.leased, d.active = False, True
        d.run_once()  # warm: the rounds on record, the given-up count
        for p in range(2 * args.passes):
            traced = p >= args.passes  # (tracemalloc slows Python 2-3x: the first passes are timed without it)
            if traced:
                tracemalloc.start()
            first.clear()
            a = time.perf_counter()
            got = d.run_once()
            b = time.perf_counter()
            peak = tracemalloc.get_traced_memory()[1] if traced else 0
            tracemalloc.stop()
            wait = f"first send after {first[0] - a:5.2f} s" if first else "nothing sent        "
            print(f"{backend:10s} {n:6d} pending  pass {p}{' traced' if traced else '       '}: {len(got):3d} sent  {b - a:6.2f} s  "
                  f"{wait}" + (f"  peak {peak / 1e6:6.1f} MB" if traced else ""), flush=True)
    finally:
        if backend == "clickhouse":
            store.command(f"DROP DATABASE IF EXISTS {store.database}")
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
