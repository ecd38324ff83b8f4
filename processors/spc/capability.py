"""Position of a process relative to its legal maximum (早发现, early detection).

Most food-safety items have only an upper limit (a contaminant, an additive,
a microbial count), so capability is one-sided: Cpk = (USL − μ)/(3σ).  A lot
can pass judgement while the process drifts toward the limit; these checks
say so before a sample fails:

* ``cpk_low``: Cpk computed from the current mean estimate falls below
  ``cpk_min`` (1.0 by default: the 3σ band no longer fits under the limit);
* ``ewma_near_limit``: the EWMA of the results reaches ``ewma_fraction`` of
  the limit (0.8 by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .signals import SpcSignal

DEFAULT_CPK_MIN = 1.0
DEFAULT_EWMA_FRACTION = 0.8


def cpk_upper(mean: float, sigma: float, usl: float) -> float:
    """One-sided capability against an upper limit; ±inf when σ = 0."""
    if sigma > 0.0:
        return (usl - mean) / (3.0 * sigma)
    if mean < usl:
        return math.inf
    return -math.inf if mean > usl else 0.0


@dataclass(frozen=True, slots=True)
class SpecLimitCheck:
    usl: float
    cpk_min: float = DEFAULT_CPK_MIN
    ewma_fraction: float = DEFAULT_EWMA_FRACTION

    def __post_init__(self) -> None:
        if not math.isfinite(self.usl):
            raise ValueError(f"upper specification limit must be finite, got {self.usl}")
        if not 0.0 < self.ewma_fraction <= 1.0:
            raise ValueError(f"ewma_fraction must be in (0, 1], got {self.ewma_fraction}")

    @property
    def ewma_threshold(self) -> float:
        return self.ewma_fraction * self.usl

    def check(self, mean: float, sigma: float, *, ewma: float | None = None,
              index: int = 0, chart: str = "spec") -> list[SpcSignal]:
        """Level check: every condition that holds now (callers wanting one
        signal per episode track the edges, as the monitor does)."""
        out = []
        cpk = cpk_upper(mean, sigma, self.usl)
        if cpk < self.cpk_min:
            out.append(self.cpk_signal(cpk, mean, sigma, index, chart))
        if ewma is not None and ewma >= self.ewma_threshold:
            out.append(self.ewma_signal(ewma, index, chart))
        return out

    def cpk_signal(self, cpk: float, mean: float, sigma: float, index: int,
                   chart: str = "spec", *, points: int | None = None,
                   basis: str | None = None) -> SpcSignal:
        """``points``: how many results σ was estimated from (None: σ was given);
        ``basis``: which mean, "baseline" (the baseline's mean) or "ewma" (the
        EWMA of the recent results)."""
        detail = {"cpk": cpk, "cpk_min": self.cpk_min, "mean": mean, "sigma": sigma, "usl": self.usl}
        if points is not None:
            detail["points"] = points
        if basis is not None:
            detail["basis"] = basis
        return SpcSignal.make("cpk_low", chart, index, cpk, ucl=self.usl, side="upper",
                              detail=detail)

    def ewma_signal(self, ewma: float, index: int, chart: str = "spec") -> SpcSignal:
        return SpcSignal.make("ewma_near_limit", chart, index, ewma, ucl=self.usl,
                              side="upper",
                              detail={"ewma": ewma, "threshold": self.ewma_threshold,
                                      "fraction": self.ewma_fraction, "usl": self.usl})


def spec_limit_check(mean: float, sigma: float, usl: float, *, ewma: float | None = None,
                     cpk_min: float = DEFAULT_CPK_MIN,
                     ewma_fraction: float = DEFAULT_EWMA_FRACTION,
                     index: int = 0) -> list[SpcSignal]:
    """Signals for a process of mean ``mean`` and σ ``sigma`` under a legal maximum ``usl``."""
    return SpecLimitCheck(usl, cpk_min, ewma_fraction).check(mean, sigma, ewma=ewma, index=index)
