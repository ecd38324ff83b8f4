"""How soon the fold's item charts see a real change: the run length to the first signal after a sustained shift of
k σ, under the default policy's monitor (rule 1 and the EWMA, limits widened for a baseline estimated from m results),
for the default 8-result baseline and a 20-result one, and for 3σ limits with known parameters as the reference.
A shift of 0 is the false-alarm rate.  A baseline outlier note is not counted as a signal of the shift.

    python bench/bench_spc_power.py             # 1500 simulated series per case (about half a minute)
    python bench/bench_spc_power.py --series 300

The README's figures (section "Against false alarms") come from the default run.
"""
from __future__ import annotations

import argparse
import random

from processors.fluctuation import monitor_config
from processors.spc import FluctuationMonitor, MonitorConfig
from schemas.policy import Policy

MEAN, SIGMA = 1.0, 0.1
CAP = 120  # results watched after the baseline; a series that never signals counts as CAP + 1


def run_length(config: MonitorConfig, baseline: int, shift: float, seed: int) -> int:
    """Results after the baseline until the first signal, the process shifted by ``shift`` σ from the first of them."""
    rng = random.Random(seed)
    monitor = FluctuationMonitor(config)
    for _ in range(baseline):
        monitor.update(round(rng.gauss(MEAN, SIGMA), 3))
    for j in range(1, CAP + 1):
        if any(s.rule != "baseline_outlier" for s in monitor.update(round(rng.gauss(MEAN + SIGMA * shift, SIGMA), 3))):
            return j
    return CAP + 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=1500, help="simulated series per case (default 1500)")
    n = ap.parse_args().series
    print(f"run length to the first signal after a sustained shift, {n} series per case "
          f"(median {CAP + 1} = none within {CAP} results)")
    for m in (8, 20):
        config = monitor_config(Policy().spc.model_copy(update={"baseline": m}), None)
        for k in (0.0, 1.0, 1.5, 2.0, 3.0):
            r = sorted(run_length(config, m, k, s) for s in range(n))
            print(f"baseline {m:2d}, shift {k}σ: median {r[n // 2]:>4}, signalled within 12 {sum(x <= 12 for x in r) / n:6.1%}, "
                  f"within 24 {sum(x <= 24 for x in r) / n:6.1%}")
    known = MonitorConfig(baseline=0, target=MEAN, sigma=SIGMA, rules=(1,), detect_cusum=False, estimated_limits=False)
    for k in (0.0, 1.0, 2.0):
        r = sorted(run_length(known, 0, k, s) for s in range(n))
        print(f"known parameters, shift {k}σ: median {r[n // 2]:>4}, signalled within 12 {sum(x <= 12 for x in r) / n:6.1%}, "
              f"within 24 {sum(x <= 24 for x in r) / n:6.1%}")


if __name__ == "__main__":
    main()
