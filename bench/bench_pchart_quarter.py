"""A bulk import's quarter: many demo counties' sampling results folded into one county state, in time order, so
that each category's county-wide p chart counts thousands of batches in one quarter; µs per event by fifth of the
log, and the p chart's limit alone at such sizes.

    python bench/bench_pchart_quarter.py [--counties 40] [--months 3] [--runs 1]

The county chart's n grows by one with every batch of its category, and its limit is computed again at every failed
batch (the cache never hits).  While that limit walked k up from 1 over an O(n) tail per k, the cost per event rose
with n (a 100k-result import slowed from 312 to 109 events/s by 24,500 events): a flat row is the property.  Run it
against another tree's code with ``PYTHONPATH=that/tree``: the script only reads the fold through imports.
"""
from __future__ import annotations

import argparse
import time

from processors.credit_file import CountyState
from processors.fluctuation import p_count_limit
from processors.judgement import _MEMO
from processors.step import step
from qrisk.demo import CountyGenerator
from qrisk.runtime import default_rules, tune_gc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counties", type=int, default=40, help="demo counties folded into one state (their ids prefixed)")
    ap.add_argument("--months", type=int, default=3, help="months each county's log spans (3: one quarter)")
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    rules = default_rules()
    tune_gc(freeze=False)  # as the runtime runs the fold
    events = []
    for k in range(args.counties):
        events += CountyGenerator(seed=args.seed + k, county=f"C{k}-", months=args.months, campaign=False,
                                  daily_ticks=False).generate()
    # an import's order (the counties' reports interleaved in time), without the demo's closing clock ticks: one
    # per county at its end re-grades every enterprise of the state, a cost of the bench's counties, not of an import
    events = sorted((e for e in events if e.event_type != "clock.tick"), key=lambda e: e.occurred_at)
    fifth = len(events) // 5
    best = [float("inf")] * 5
    for _ in range(args.runs):
        _MEMO.clear()
        p_count_limit.cache_clear()
        state = CountyState()
        for k in range(5):
            part = events[k * fifth:(k + 1) * fifth]
            t0 = time.perf_counter()
            for e in part:
                state, _ = step(state, e, rules)
            best[k] = min(best[k], (time.perf_counter() - t0) / len(part) * 1e6)
    results = sum(e.event_type == "sampling.result" for e in events)
    largest = max(((pc.n, pc.failed, c, p) for c, r in state.categories.items() for p, pc in r.periods.items()), default=None)
    print(f"{args.counties} demo counties over {args.months} months in one state: {len(events)} events, "
          f"{results} sampling results, {len(state.files)} enterprises")
    if largest is not None:
        print(f"the largest county-wide period: {largest[2]} {largest[3]}, {largest[0]} batches, {largest[1]} failed")
    print("µs per event by fifth of the log (best of %d runs): %s" % (args.runs, "  ".join(f"{b:.0f}" for b in best)))
    print(f"last fifth / first fifth: {best[4] / best[0]:.2f};  whole log: {sum(best) / 5:.0f} µs per event")
    for n in (2000, 5000, 10000):
        p_count_limit.cache_clear()
        t0 = time.perf_counter()
        limit = p_count_limit(0.019, n)
        print(f"p_count_limit(0.019, {n}) = {limit}: {(time.perf_counter() - t0) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
