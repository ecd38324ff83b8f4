"""Per-update cost of the incremental SPC monitor (python bench/bench_spc.py [N]).

Default charts and rules: I chart with rules {1, 2, 4}, EWMA (λ 0.2, L 3),
CUSUM (k 0.5, h 5) and the legal-limit check, on N points of a process that
runs in control, drifts upward for a while and comes back, so the signal
paths are exercised too.  Timing is wall time of the update loop only.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from processors.spc import FluctuationMonitor, MonitorConfig  # noqa: E402


def make_series(n: int, seed: int = 20240601) -> list[float]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        drift = 0.0015 * (i % 5000 - 4000) if i % 5000 > 4000 else 0.0
        out.append(0.004 + 0.0008 * rng.gauss(0.0, 1.0) + 0.0008 * drift)
    return out


def bench(n: int, config: MonitorConfig, repeat: int = 3, shift: float = 0.0
          ) -> tuple[float, int]:
    values = make_series(n)
    if shift:
        values = values[:20] + [v + shift for v in values[20:]]
    best = float("inf")
    signals = 0
    for _ in range(repeat):
        mon = FluctuationMonitor(config)
        update = mon.update
        t0 = time.perf_counter()
        count = 0
        for v in values:
            if update(v):
                count += 1
        best = min(best, time.perf_counter() - t0)
        signals = count
    return best / n * 1e6, signals


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    cases = [
        ("default: I rules {1,2,4} + EWMA + CUSUM + spec (USL 0.01)",
         MonitorConfig(usl=0.01)),
        ("no legal limit (I rules {1,2,4} + EWMA + CUSUM)", MonitorConfig()),
        ("all 8 rules + MR chart + spec", MonitorConfig(usl=0.01, rules=(1, 2, 3, 4, 5, 6, 7, 8),
                                                        mr_chart=True)),
        ("worst case: sustained 4σ shift, signals on every point (default charts + spec)",
         MonitorConfig(usl=0.01), 0.0032),
    ]
    print(f"FluctuationMonitor.update over {n} points (best of 3, one core)")
    for label, cfg, *shift in cases:
        us, sig = bench(n, cfg, shift=shift[0] if shift else 0.0)
        print(f"  {us:6.2f} µs/item   {sig:6d} points with signals   {label}")


if __name__ == "__main__":
    main()
