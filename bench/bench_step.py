"""step() alone on demo events, one core: events per second.

    python bench/bench_step.py [--seed N] [--repeat R] [--stages] [--attribute-bound]
    python bench/bench_step.py --history-months 120    # the cost per event as one county's history grows

Target (issue 2): ≥ 20,000 events/s.  Events are parsed once up front; the
figure is the fold only (judgement included).  The demo's campaign events are left out
(``campaign=False``): they are cheap, and with them the figure would rise without the fold
getting faster — the benchmarks fold the same county as before they joined the demo.  So are the
demo's daily clock ticks (``daily_ticks=False``: one tick at the end, as before the demo ticked
daily): 364 ticks a county would be a third of the events, each re-grading every enterprise.
The pastry coliform counts are now reported as a plate count is (ND below 10 CFU/g, with the
detection limit), and non-detects are charted at half the limit: the same events otherwise.

``--stages`` also folds the same events with the later stages switched off in turn, to show
what each costs per event: the credit file and judgement alone (what issue 2 built), then with
the fluctuation charts (SPC), then with risk grading and early warnings (the whole fold).
Switched off means the bench replaces the stage's function in ``processors.step`` for the run.

``--attribute-bound`` measures the most that keeping the fold's state outside pydantic could gain.
CPython cannot specialise an attribute read on a pydantic model, because ``BaseModel`` defines
``__getattr__`` (a read costs several times a plain object's).  For a run, the bench deletes
``BaseModel.__getattr__`` and makes the state's assignments a plain object's (every model reads as
a plain object would: the fold's state, its results and the events), then gives ``__getattr__``
back to the events' models alone (what plain classes for the state would give).  Nothing else
changes, so the difference is the ceiling of that rewrite.

``--history-months N`` folds one demo county over N months instead and prints the cost per event in
each fifth of its log: a fold whose work per event grows with the files' history (a walk of every
report on file for each report received) is fast on a year of demo events and slow on the ten years
a county's log holds after ten years.  A flat row is the property; the figures are wall-clock (best
of ``--runs``), the GC thresholds the runtime's.
"""
from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import time
from typing import Iterator

from processors.credit_file import CountyState
from processors.judgement import _MEMO
import processors.step as step_module
from processors.step import step
from qrisk.demo import CountyGenerator
from qrisk.runtime import default_rules, tune_gc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--stages", action="store_true", help="also the cost of each stage of the fold")
    ap.add_argument("--history-months", type=int, default=0, metavar="N",
                    help="instead: one county over N months, the cost per event by fifth of its log")
    ap.add_argument("--attribute-bound", action="store_true",
                    help="also the fold with attribute reads on pydantic models as fast as on plain objects (a ceiling)")
    args = ap.parse_args()
    rules = default_rules()
    tune_gc(freeze=False)  # as the runtime runs the fold
    if args.history_months:
        history(args.history_months, args.seed, args.runs, rules)
        return
    events = []
    for k in range(args.repeat):  # several demo counties (distinct seeds and enterprise ids)
        events += CountyGenerator(seed=args.seed + k, county=f"C{k}-", campaign=False, daily_ticks=False).generate()
    by_type: dict[str, int] = {}
    for e in events:
        by_type[e.event_type] = by_type.get(e.event_type, 0) + 1
    def run(cold: bool) -> float:
        best = 0.0
        for _ in range(args.runs):
            if cold:
                _MEMO.clear()  # no judgement memoised from an earlier run
            state = CountyState()
            t0 = time.perf_counter()
            for e in events:
                state, _ = step(state, e, rules)
            elapsed = time.perf_counter() - t0
            best = max(best, len(events) / elapsed)
        return best

    cold = run(cold=True)
    warm = run(cold=False)
    print(f"events: {len(events)} ({', '.join(f'{k} {v}' for k, v in sorted(by_type.items()))})")
    print(f"step(): {cold:,.0f} events/s (best of {args.runs} runs, each with a cold judgement memo, one core)")
    print(f"step(): {warm:,.0f} events/s with the judgement memo warm, as in a running service after recovery")
    samples = by_type.get("sampling.result", 0)
    print(f"sampling results are {samples / len(events):.0%} of the events")
    print(f"interpreter: {interpreter()}")
    if args.stages:
        stages(run)
    if args.attribute_bound:
        attribute_bound(run)


def history(months: int, seed: int, runs: int, rules) -> None:
    events = CountyGenerator(seed=seed, months=months, campaign=False, daily_ticks=False).generate()
    fifth = len(events) // 5
    best = [float("inf")] * 5
    for _ in range(runs):
        _MEMO.clear()
        state = CountyState()
        for k in range(5):
            part = events[k * fifth:(k + 1) * fifth]
            t0 = time.perf_counter()
            for e in part:
                state, _ = step(state, e, rules)
            best[k] = min(best[k], (time.perf_counter() - t0) / len(part) * 1e6)
    longest = max(len(f.samples) for f in state.files.values())
    print(f"one county over {months} months: {len(events)} events, {len(state.files)} enterprises, "
          f"the longest file {longest} reports")
    print("µs per event by fifth of the log (best of %d runs): %s" % (runs, "  ".join(f"{b:.0f}" for b in best)))
    print(f"last fifth / first fifth: {best[4] / best[0]:.2f}")


@contextlib.contextmanager
def switched_off(*names: str) -> Iterator[None]:
    """Replace stages of the fold (functions ``processors.step`` calls) by no-ops for a run."""
    saved = {name: getattr(step_module, name) for name in names}
    off = {"_assess": lambda *a: None, "on_sample_judged": lambda *a: []}
    try:
        for name in names:
            setattr(step_module, name, off[name])
        yield
    finally:
        for name, fn in saved.items():
            setattr(step_module, name, fn)


def stages(run) -> None:
    with switched_off("_assess", "on_sample_judged"):
        file_only = run(cold=True)
    with switched_off("_assess"):
        with_spc = run(cold=True)
    whole = run(cold=True)
    base = 1e6 / file_only
    spc = 1e6 / with_spc - base
    grading = 1e6 / whole - 1e6 / with_spc
    total = 1e6 / whole
    print("stages, cold judgement memo, µs per event (share of the whole fold):")
    print(f"  credit file + judgement (issue 2)       {base:6.1f} µs  ({base / total:4.0%})  alone: {file_only:,.0f} events/s")
    print(f"  fluctuation charts (SPC)                {spc:6.1f} µs  ({spc / total:4.0%})")
    print(f"  risk grading + early warnings           {grading:6.1f} µs  ({grading / total:4.0%})")
    print(f"  whole fold                              {total:6.1f} µs         {whole:,.0f} events/s")


def attribute_bound(run) -> None:
    from pydantic import BaseModel

    from processors._build import FoldState
    from schemas.events import Model as EventModel

    getattr_hook, fold_setattr = BaseModel.__getattr__, FoldState.__setattr__
    as_is = run(cold=True)
    del BaseModel.__getattr__  # (no model here has private attributes or extras, which the hook serves)
    FoldState.__setattr__ = object.__setattr__  # and an assignment is a plain object's (no field check)
    try:
        all_plain = run(cold=True)
        EventModel.__getattr__ = getattr_hook  # the events stay pydantic models, read as now
        try:
            state_plain = run(cold=True)
        finally:
            del EventModel.__getattr__
    finally:
        BaseModel.__getattr__, FoldState.__setattr__ = getattr_hook, fold_setattr
    print("attribute reads on pydantic models as on plain objects (cold judgement memo, best of runs):")
    print(f"  as it is                                {as_is:,.0f} events/s")
    print(f"  the fold's state, results and effects   {state_plain:,.0f} events/s  ({state_plain / as_is - 1:+.0%}: the ceiling of plain state classes)")
    print(f"  ... and the events too                  {all_plain:,.0f} events/s  ({all_plain / as_is - 1:+.0%})")


def interpreter() -> str:
    """Which Python folded: figures from different builds of CPython (a distribution's, pyenv's) differ."""
    return f"{platform.python_implementation()} {platform.python_version()} at {sys.executable}"


if __name__ == "__main__":
    main()
