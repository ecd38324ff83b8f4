"""step() in machine instructions: a figure other load on the machine does not move.

    python bench/bench_step_instructions.py [--counties 5] [--passes 3]

Wall-clock rates of ``bench_step.py`` swing with whatever else runs on the machine; an
instruction count does not.  This runs the fold of the demo events under valgrind's callgrind
once with one pass and once with ``--passes`` passes (each pass a fresh county state and a cold
judgement memo) and reports the difference per pass and per event: start-up, imports and event
generation cancel out.  Needs valgrind (``apt-get install valgrind``); slow (about a minute).
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
from processors.credit_file import CountyState
from processors.judgement import _MEMO
from processors.step import step
from qrisk.runtime import default_rules, tune_gc
rules = default_rules()
tune_gc(freeze=False)
with open(sys.argv[1], "rb") as fh:
    events = pickle.load(fh)
for _ in range(int(sys.argv[2])):
    _MEMO.clear()
    state = CountyState()
    for e in events:
        state, _ = step(state, e, rules)
"""


def instructions(script: Path, events: Path, passes: int, work: Path) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={work / f'callgrind.{passes}.out'}",
         sys.executable, str(script), str(events), str(passes)],
        cwd=ROOT, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counties", type=int, default=5, help="demo counties (seeds 2025…), as bench_step.py folds")
    ap.add_argument("--passes", type=int, default=3)
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from qrisk.demo import CountyGenerator

    events = [e for k in range(args.counties) for e in CountyGenerator(seed=2025 + k, county=f"C{k}-", campaign=False, daily_ticks=False).generate()]
    work = Path(tempfile.mkdtemp(prefix="qrisk-callgrind-"))
    try:
        (work / "events.pkl").write_bytes(pickle.dumps(events))
        (work / "fold.py").write_text(CHILD)
        one = instructions(work / "fold.py", work / "events.pkl", 1, work)
        many = instructions(work / "fold.py", work / "events.pkl", args.passes, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    per_pass = (many - one) / (args.passes - 1)
    print(f"events: {len(events)} ({args.counties} demo counties)")
    print(f"step(): {per_pass / 1e6:,.0f} M instructions per pass, {per_pass / len(events) / 1e3:,.0f} k per event (callgrind)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
