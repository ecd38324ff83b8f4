"""Where the embedded runtime's memory goes as one county's history grows.

    python bench/bench_memory.py [--months 120] [--seed 2025] [--code DIR] [--no-import] [--top 12]

A county's service runs for years and the fold keeps every credit file in memory, so what matters
is the memory per event (per sample) once a long history is in, not the figure after a demo year.
The bench generates one demo county over ``--months`` (ending four months before today: an import
refuses events from the future), writes it as JSONL, then, each in a fresh process:

1. folds it with ``step()`` alone and walks the state (every object reachable from the credit files,
   counted once, by ``sys.getsizeof``): bytes per event and per sample, the largest parts by model
   and field, the share that is pydantic's per-model set of field names, and the judgement memo's
   entries (a cache beside the state, bounded by ``_MEMO_LIMIT``);
2. restores the state from its snapshot (``CountyState.restore``, what a restart does) and walks it
   again: a restored state should cost what a folded one does;
3. runs ``qrisk import FILE --data-dir NEW`` and reports its peak resident memory (``ru_maxrss`` of the
   child: the fold, chdb, the derived-row batches and the snapshots written at the end), and the rest
   beside the fold's state.

``--code DIR`` runs the fold and the import with another tree's code (e.g. ``git -C /work/main archive
main | tar -x -C /tmp/old-mem``), the walk being this file's, so two codes are measured alike: run the
bench alternately with and without it.  Figures are bytes on CPython 3.11 (64-bit).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def walk(root: object) -> tuple[int, Counter, Counter, int]:
    """Bytes reachable from ``root``, each object once: (total, bytes by label, count by label, bytes of
    the models' field-name sets).  A model's label is its class; what it holds, ``Class.field``."""
    from pydantic import BaseModel

    seen: set[int] = set()
    size: Counter = Counter()
    count: Counter = Counter()
    field_sets = 0
    stack: list[tuple[object, str]] = [(root, type(root).__name__)]
    while stack:
        o, label = stack.pop()
        if id(o) in seen or isinstance(o, type):
            continue
        seen.add(id(o))
        n = sys.getsizeof(o)
        if isinstance(o, BaseModel):
            name = type(o).__name__
            n += sys.getsizeof(o.__dict__)
            fs = o.__pydantic_fields_set__
            if id(fs) not in seen:
                seen.add(id(fs))
                field_sets += sys.getsizeof(fs)
                size["(field-name sets)"] += sys.getsizeof(fs)
                count["(field-name sets)"] += 1
            size[name] += n
            count[name] += 1
            stack.extend((v, f"{name}.{k}") for k, v in o.__dict__.items())
            continue
        size[label] += n
        count[label] += 1
        if isinstance(o, dict):
            stack.extend((k, label) for k in o)
            stack.extend((v, label + "[]") for v in o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            stack.extend((v, label + "[]") for v in o)
    return sum(size.values()), size, count, field_sets


def fold_worker(path: str, top: int) -> None:
    """(In a child process, on the code under test.)  Fold the file, walk the state, print JSON."""
    import resource

    from ingest.files import read_events
    from processors import judgement
    from processors.credit_file import CountyState
    from processors.step import step
    from qrisk.runtime import default_rules
    from schemas.upcast import parse_event

    rules = default_rules()
    events = [parse_event(doc) for _, _, doc in read_events(path)]
    state = CountyState()
    for e in events:
        state, _ = step(state, e, rules)
    total, size, count, field_sets = walk(state)
    samples = sum(len(f.samples) for f in state.files.values())
    blob = state.snapshot()
    restored = CountyState.restore(blob)
    assert restored.snapshot() == blob
    r_total, _, _, r_field_sets = walk(restored)
    memo = sum(len(entry[1]) for entry in judgement._MEMO.values())
    print(json.dumps({
        "events": len(events), "samples": samples, "enterprises": len(state.files),
        "state": total, "field_sets": field_sets, "restored": r_total, "restored_field_sets": r_field_sets,
        "snapshot": len(blob), "memo": memo, "memo_limit": getattr(judgement, "_MEMO_LIMIT", None),
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "top": [(k, v, count[k]) for k, v in size.most_common(top)],
    }))


def run(code: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(code))
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, check=False)


def import_peak(code: Path, path: Path) -> tuple[int, str]:
    """Peak resident KiB of ``qrisk import path`` into a new data directory, and the summary line."""
    with tempfile.TemporaryDirectory(prefix="qrisk-bench-mem-") as tmp:
        env = dict(os.environ, PYTHONPATH=str(code))
        env.pop("QRISK_CLICKHOUSE_URL", None)  # the embedded runtime: chdb in the importing process
        child = subprocess.Popen([sys.executable, "-m", "qrisk", "import", str(path), "--data-dir", str(Path(tmp) / "data")],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        out = child.stdout.read() if child.stdout else ""
        _, status, usage = os.wait4(child.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"qrisk import failed ({status}): {out[-500:]}")
        summary = json.loads(out.strip().splitlines()[-1])
        return usage.ru_maxrss, f"accepted {summary.get('accepted')}, rejected {summary.get('rejected')}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--months", type=int, default=120)
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--code", type=Path, default=HERE, help="the tree whose code folds and imports (default: this one)")
    ap.add_argument("--no-import", action="store_true", help="the fold only")
    ap.add_argument("--top", type=int, default=12, help="the largest parts of the state to list")
    ap.add_argument("--fold-worker", metavar="FILE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.fold_worker:
        fold_worker(args.fold_worker, args.top)
        return
    sys.path.insert(0, str(HERE))
    from ingest.files import write_jsonl
    from qrisk.demo import CountyGenerator

    today = dt.date.today()
    back = args.months + 4
    start = dt.date(today.year - (back - today.month + 12) // 12, (today.month - back - 1) % 12 + 1, 1)
    with tempfile.TemporaryDirectory(prefix="qrisk-bench-mem-") as tmp:
        path = Path(tmp) / "county.jsonl"
        write_jsonl(CountyGenerator(seed=args.seed, months=args.months, start=start).generate(), path)
        done = run(args.code, str(Path(__file__).resolve()), "--fold-worker", str(path), "--top", str(args.top))
        if done.returncode:
            raise SystemExit(done.stderr[-2000:])
        f = json.loads(done.stdout.strip().splitlines()[-1])
        ev, smp = f["events"], f["samples"]
        years = args.months / 12
        print(f"code: {args.code}")
        print(f"one county over {args.months} months from {start}: {ev:,} events, {smp:,} samples, {f['enterprises']} enterprises")
        print(f"fold state (step() alone, walked): {f['state'] / 2**20:,.1f} MiB = {f['state'] / ev:,.0f} B per event, "
              f"{f['state'] / smp / 1024:,.1f} KiB per sample, {f['state'] / f['enterprises'] / years / 2**20:,.2f} MiB per "
              f"enterprise-year, {f['state'] / smp * 10_000 / 2**20:,.0f} MiB per 10k samples")
        print(f"  of which pydantic's field-name sets: {f['field_sets'] / 2**20:,.1f} MiB ({f['field_sets'] / f['state']:.0%})")
        print(f"  restored from its snapshot ({f['snapshot'] / 2**20:,.1f} MiB of JSON): {f['restored'] / 2**20:,.1f} MiB, "
              f"field-name sets {f['restored_field_sets'] / 2**20:,.1f} MiB")
        print(f"  judgement memo: {f['memo']:,} entries (cleared above {f['memo_limit']:,})" if f["memo_limit"] else
              f"  judgement memo: {f['memo']:,} entries")
        print(f"  fold process peak resident: {f['maxrss_kib'] / 1024:,.0f} MiB (events parsed and kept, state, restored copy)")
        print("  largest parts (bytes, objects):")
        for label, n, c in f["top"]:
            print(f"    {n / 2**20:7.2f} MiB {c:8,}  {label}")
        if not args.no_import:
            peak, said = import_peak(args.code, path)
            print(f"qrisk import into a new data dir: peak resident {peak / 1024:,.0f} MiB ({said}); "
                  f"beside the fold's state {(peak * 1024 - f['state']) / 2**20:,.0f} MiB (chdb, the runtime, batches, snapshots)")


if __name__ == "__main__":
    main()
