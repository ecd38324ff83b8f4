"""step() alone on demo events, one core: events per second.

    python bench/bench_step.py [--seed N] [--repeat R]

Target (issue 2): ≥ 20,000 events/s.  Events are parsed once up front; the
figure is the fold only (judgement included).  The demo's campaign events are left out
(``campaign=False``): they are cheap, and with them the figure would rise without the fold
getting faster — the benchmarks fold the same county as before they joined the demo.
"""
from __future__ import annotations

import argparse
import time

from processors.credit_file import CountyState
from processors.judgement import _MEMO
from processors.step import step
from qrisk.demo import CountyGenerator
from qrisk.runtime import default_rules, tune_gc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    rules = default_rules()
    tune_gc(freeze=False)  # as the runtime runs the fold
    events = []
    for k in range(args.repeat):  # several demo counties (distinct seeds and enterprise ids)
        events += CountyGenerator(seed=args.seed + k, county=f"C{k}-", campaign=False).generate()
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


if __name__ == "__main__":
    main()
