"""step() in machine instructions: a figure other load on the machine does not move.

    python bench/bench_step_instructions.py [--counties 5] [--passes 3] [--attribute-bound]
    python bench/bench_step_instructions.py --write-events FILE.jsonl   # the demo events it folds, for another round's code
    python bench/bench_step_instructions.py --events FILE.jsonl         # fold those instead

Wall-clock rates of ``bench_step.py`` swing with whatever else runs on the machine; an
instruction count does not.  This runs the fold of the demo events under valgrind's callgrind
once with one pass and once with ``--passes`` passes (each pass a fresh county state and a cold
judgement memo) and reports the difference per pass and per event: start-up, imports and event
generation cancel out.  Needs valgrind (``apt-get install valgrind``); slow (about a minute).

``--attribute-bound`` counts the same fold twice more, with attribute reads and assignments on the
fold's state (then on every pydantic model) as cheap as a plain object's: the ceiling of keeping the
state outside pydantic (``bench_step.py`` says how the bench does it).
"""
from __future__ import annotations

import argparse
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import pickle, sys
from pydantic import BaseModel
from processors._build import FoldState
from schemas.events import Model as EventModel
if sys.argv[3] != "as-is":
    hook = BaseModel.__getattr__
    del BaseModel.__getattr__
    FoldState.__setattr__ = object.__setattr__
    if sys.argv[3] == "state-plain":
        EventModel.__getattr__ = hook
from processors.credit_file import CountyState
from processors.judgement import _MEMO
from processors.step import step
from qrisk.runtime import default_rules, tune_gc
rules = default_rules()
tune_gc(freeze=False)
if sys.argv[1].endswith(".jsonl"):
    # another round's events, parsed by this code (the parse is in both runs: it cancels out)
    from schemas.upcast import parse_event
    import json
    with open(sys.argv[1], encoding="utf-8") as fh:
        events = [parse_event(json.loads(line)) for line in fh if line.strip()]
else:
    with open(sys.argv[1], "rb") as fh:
        events = pickle.load(fh)
for _ in range(int(sys.argv[2])):
    _MEMO.clear()
    state = CountyState()
    for e in events:
        state, _ = step(state, e, rules)
"""


def instructions(script: Path, events: Path, passes: int, work: Path, mode: str = "as-is") -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={work / f'callgrind.{passes}.{mode}.out'}",
         sys.executable, str(script), str(events), str(passes), mode],
        cwd=ROOT, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counties", type=int, default=5, help="demo counties (seeds 2025…), as bench_step.py folds")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--attribute-bound", action="store_true", help="also with attribute reads as cheap as a plain object's (a ceiling)")
    ap.add_argument("--events", metavar="JSONL", help="fold these events instead of the demo's: e.g. an earlier round's demo "
                                                      "(written by --write-events there), to compare two rounds' code on the same events")
    ap.add_argument("--write-events", metavar="JSONL", help="write the demo events this bench folds, and stop")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from qrisk.demo import CountyGenerator

    if args.events:
        with open(args.events, encoding="utf-8") as fh:
            events = [line for line in fh if line.strip()]
    else:
        events = [e for k in range(args.counties) for e in CountyGenerator(seed=2025 + k, county=f"C{k}-", campaign=False, daily_ticks=False).generate()]
    if args.write_events:
        with open(args.write_events, "w", encoding="utf-8") as fh:
            fh.writelines(e.model_dump_json(by_alias=True) + "\n" for e in events)
        print(f"wrote {len(events)} events to {args.write_events}")
        return 0
    work = Path(tempfile.mkdtemp(prefix="qrisk-callgrind-"))
    try:
        if args.events:
            source = Path(args.events).resolve()
        else:
            source = work / "events.pkl"
            source.write_bytes(pickle.dumps(events))
        (work / "fold.py").write_text(CHILD)
        modes = ["as-is", "state-plain", "all-plain"] if args.attribute_bound else ["as-is"]
        per_pass = {}
        for mode in modes:
            one = instructions(work / "fold.py", source, 1, work, mode)
            many = instructions(work / "fold.py", source, args.passes, work, mode)
            per_pass[mode] = (many - one) / (args.passes - 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"events: {len(events)} ({args.events or f'{args.counties} demo counties'})")
    base = per_pass["as-is"]
    print(f"step(): {base / 1e6:,.0f} M instructions per pass, {base / len(events) / 1e3:,.0f} k per event (callgrind)")
    if args.attribute_bound:
        for mode, what in (("state-plain", "the fold's state, results and effects read as plain objects"),
                           ("all-plain", "... and the events too")):
            n = per_pass[mode]
            print(f"  {what}: {n / 1e6:,.0f} M, {n / len(events) / 1e3:,.0f} k per event ({n / base - 1:+.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
