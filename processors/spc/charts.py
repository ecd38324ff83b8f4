"""Shewhart, EWMA and CUSUM control charts: phase I estimation, phase II evaluation.

Each chart is a small frozen object holding its limits' parameters.
``Chart.estimate(...)`` is phase I (estimate from a baseline, leaving out
points with known causes); ``chart.evaluate(...)`` applies the frozen limits
to a whole series (phase II, and also the phase-I points themselves, which is
how a baseline is checked).  ``run_chart`` strings both together the way the
``qrisk spc`` command and reports need it.

Estimators (documented because textbooks differ):
* individuals / EWMA / CUSUM: centre = mean, σ = MR̄ / d2(2), where only moving
  ranges between two adjacent, kept points count (a range spanning an
  excluded point mixes in the cause that got it excluded);
* x̄–R: σ = mean(R_i / d2(n_i)); x̄–S: σ = mean(S_i / c4(n_i)); centre = grand
  mean of all kept values.  With constant n these are R̄/d2 and S̄/c4, so the
  limits are exactly x̄̄ ± A2·R̄, D3·R̄..D4·R̄, x̄̄ ± A3·S̄, B3·S̄..B4·S̄;
* p, u: p̄ = Σd / Σn, ū = Σc / Σn (pooled, not the mean of ratios); per-point
  limits use each point's own n; the top-level limits are those at the mean
  baseline n;
* lower limits that come out negative are 0 (p also caps its UCL at 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .constants import c4 as _c4
from .constants import d2 as _d2
from .constants import d3 as _d3
from .rules import RulesSpec, apply_rules, rules_for_chart
from .signals import SpcSignal

CHART_KINDS = ("p", "np", "c", "u", "xbar", "r", "s", "i", "mr", "ewma", "cusum")
_VALUE_KINDS = frozenset({"i", "mr", "ewma", "cusum"})
_SUBGROUP_KINDS = frozenset({"xbar", "r", "s"})

_D2_2 = _d2(2)
_D3_2 = _d3(2)


class SpcDataError(ValueError):
    """Input that cannot make a chart; the message names the offending item."""


# ---------------------------------------------------------------- results

@dataclass(slots=True)
class ChartPoint:
    index: int                      # 1-based
    value: float | None             # the plotted statistic
    center: float
    lcl: float | None
    ucl: float | None
    phase: str                      # "I" (in the baseline range) or "II"
    signals: list[SpcSignal] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    sigma: float = 0.0              # σ of the plotted statistic at this point

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"index": self.index, "value": self.value,
                             "center": self.center, "lcl": self.lcl, "ucl": self.ucl,
                             "phase": self.phase,
                             "signals": [s.to_dict() for s in self.signals]}
        d.update(self.extra)
        return d


@dataclass(slots=True)
class ChartResult:
    chart: str
    center: float
    lcl: float | None
    ucl: float | None
    sigma: float | None
    points: list[ChartPoint]
    params: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def signals(self) -> list[SpcSignal]:
        return [s for p in self.points for s in p.signals]

    def flagged(self, rule: str | None = None) -> list[int]:
        """1-based indexes of points with a signal (of one rule id if given)."""
        return [p.index for p in self.points
                if any(rule is None or s.rule == rule for s in p.signals)]

    def to_dict(self) -> dict[str, Any]:
        return {"chart": self.chart, "center": self.center, "lcl": self.lcl,
                "ucl": self.ucl, "sigma": self.sigma,
                "points": [p.to_dict() for p in self.points],
                "params": dict(self.params), "warnings": list(self.warnings)}


# ---------------------------------------------------------------- helpers

def _finite(x: float, what: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise SpcDataError(f"{what} is not a number: {x!r}") from None
    if not math.isfinite(v):
        raise SpcDataError(f"{what} is not finite: {x!r}")
    return v


def _floats(values: Iterable[float], what: str) -> list[float]:
    return [_finite(v, f"{what} {i}") for i, v in enumerate(values, 1)]


def _mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


def baseline_mask(count: int, phase1: tuple[int, int] | None = None,
                  exclude: Iterable[int] = ()) -> tuple[list[bool], list[bool]]:
    """(in_phase1, used) flags per point from a 1-based inclusive range and exclusions."""
    if count <= 0:
        raise SpcDataError("no data points")
    a, b = (1, count) if phase1 is None else phase1
    if not (1 <= a <= b <= count):
        raise SpcDataError(f"phase I range {a}-{b} is outside the points 1-{count}")
    excl = set()
    for e in exclude:
        if not (a <= e <= b):
            raise SpcDataError(f"excluded point {e} is outside the phase I range {a}-{b}")
        excl.add(e)
    in_p1 = [a <= i <= b for i in range(1, count + 1)]
    used = [f and (i not in excl) for i, f in enumerate(in_p1, 1)]
    if not any(used):
        raise SpcDataError("every phase I point is excluded: nothing to estimate limits from")
    return in_p1, used


def moving_ranges(values: Sequence[float]) -> list[float | None]:
    """MR_i = |x_i − x_{i−1}|, None for the first point."""
    return [None] + [abs(values[i] - values[i - 1]) for i in range(1, len(values))]


def estimate_individuals(values: Sequence[float], used: Sequence[bool]) -> tuple[float, float]:
    """(mean, MR̄/d2) over the kept points; see the module docstring for the MR choice."""
    kept = [x for x, u in zip(values, used) if u]
    mrs = [abs(values[i] - values[i - 1]) for i in range(1, len(values))
           if used[i] and used[i - 1]]
    if not mrs:
        raise SpcDataError("need at least two adjacent baseline points to estimate σ "
                           "from moving ranges (or give sigma)")
    return _mean(kept), _mean(mrs) / _D2_2


def _signals_for(kind: str, points: list[ChartPoint], rules: Sequence[int]) -> None:
    if not rules:
        return
    fired = apply_rules([p.value for p in points], [p.center for p in points],
                        [p.sigma for p in points], rules)
    for p, hits in zip(points, fired):
        for rule, side, trend in hits:
            p.signals.append(SpcSignal.make(
                f"rule{rule}", kind, p.index, p.value, center=p.center,
                lcl=p.lcl, ucl=p.ucl, side=side, trend=trend))


def _phases(points: list[ChartPoint], in_p1: Sequence[bool]) -> None:
    for p, f in zip(points, in_p1):
        p.phase = "I" if f else "II"


# ---------------------------------------------------------------- variables charts

@dataclass(frozen=True, slots=True)
class IndividualsChart:
    """I chart: each measured value against centre ± 3σ."""
    center: float
    sigma: float
    kind = "i"

    @classmethod
    def estimate(cls, values: Sequence[float], used: Sequence[bool] | None = None, *,
                 target: float | None = None, sigma: float | None = None) -> "IndividualsChart":
        used = [True] * len(values) if used is None else used
        if target is not None and sigma is not None:
            return cls(float(target), float(sigma))
        if sigma is None:
            c, s = estimate_individuals(values, used)
        else:
            c, s = _mean([x for x, u in zip(values, used) if u]), float(sigma)
        return cls(c if target is None else float(target), s)

    @property
    def lcl(self) -> float:
        return self.center - 3.0 * self.sigma

    @property
    def ucl(self) -> float:
        return self.center + 3.0 * self.sigma

    def points(self, values: Sequence[float]) -> list[ChartPoint]:
        lo, hi = self.lcl, self.ucl
        return [ChartPoint(i, x, self.center, lo, hi, "II", sigma=self.sigma)
                for i, x in enumerate(values, 1)]


@dataclass(frozen=True, slots=True)
class MovingRangeChart:
    """MR chart (span 2): centre d2·σ = MR̄, UCL D4·MR̄, LCL 0."""
    sigma: float
    kind = "mr"

    @property
    def center(self) -> float:
        return _D2_2 * self.sigma

    @property
    def ucl(self) -> float:
        return (_D2_2 + 3.0 * _D3_2) * self.sigma

    @property
    def lcl(self) -> float:
        return max(0.0, _D2_2 - 3.0 * _D3_2) * self.sigma

    def points(self, values: Sequence[float]) -> list[ChartPoint]:
        c, lo, hi, s = self.center, self.lcl, self.ucl, _D3_2 * self.sigma
        out = []
        for i, mr in enumerate(moving_ranges(values), 1):
            if mr is None:
                out.append(ChartPoint(i, None, c, None, None, "II", sigma=s))
            else:
                out.append(ChartPoint(i, mr, c, lo, hi, "II", sigma=s))
        return out


def _subgroup_stats(subgroups: Sequence[Sequence[float]], dispersion: str
                    ) -> list[tuple[int, float, float]]:
    """(n, mean, R or S) per subgroup."""
    out = []
    for j, g in enumerate(subgroups, 1):
        n = len(g)
        if n < 2:
            raise SpcDataError(f"subgroup {j} has {n} value(s); x̄/R/S charts need at least 2 "
                               "(use the i chart for single values)")
        if dispersion == "r" and n > 25:
            raise SpcDataError(f"subgroup {j} has {n} values; the R chart is tabulated for "
                               "n = 2..25 (use the S chart)")
        m = math.fsum(g) / n
        if dispersion == "r":
            spread = max(g) - min(g)
        else:
            spread = math.sqrt(math.fsum((x - m) ** 2 for x in g) / (n - 1))
        out.append((n, m, spread))
    return out


def _unbias(dispersion: str, n: int) -> float:
    return _d2(n) if dispersion == "r" else _c4(n)


@dataclass(frozen=True, slots=True)
class XbarChart:
    """x̄ chart: subgroup means against centre ± 3σ/√n_i."""
    center: float
    sigma: float            # process (within-subgroup) σ
    dispersion: str = "r"   # how σ was (or would be) estimated: "r" or "s"
    kind = "xbar"

    @classmethod
    def estimate(cls, subgroups: Sequence[Sequence[float]], used: Sequence[bool] | None = None,
                 *, dispersion: str = "r", target: float | None = None,
                 sigma: float | None = None) -> "XbarChart":
        stats = _subgroup_stats(subgroups, dispersion)
        used = [True] * len(stats) if used is None else used
        kept = [(st, g) for st, g, u in zip(stats, subgroups, used) if u]
        if sigma is None:
            sig = _mean([sp / _unbias(dispersion, n) for (n, _, sp), _ in kept])
        else:
            sig = float(sigma)
        if target is None:
            center = math.fsum(x for _, g in kept for x in g) / sum(n for (n, _, _), _ in kept)
        else:
            center = float(target)
        return cls(center, sig, dispersion)

    def points(self, subgroups: Sequence[Sequence[float]]) -> list[ChartPoint]:
        out = []
        for i, (n, m, _) in enumerate(_subgroup_stats(subgroups, self.dispersion), 1):
            s = self.sigma / math.sqrt(n)
            out.append(ChartPoint(i, m, self.center, self.center - 3.0 * s,
                                  self.center + 3.0 * s, "II", extra={"n": n}, sigma=s))
        return out


@dataclass(frozen=True, slots=True)
class RangeChart:
    """R chart: centre d2(n)σ, limits (d2 ± 3d3)σ, i.e. D3·R̄..D4·R̄ for constant n."""
    sigma: float
    kind = "r"

    def points(self, subgroups: Sequence[Sequence[float]]) -> list[ChartPoint]:
        out = []
        for i, (n, _, r) in enumerate(_subgroup_stats(subgroups, "r"), 1):
            dd2, dd3 = _d2(n), _d3(n)
            c = dd2 * self.sigma
            out.append(ChartPoint(i, r, c, max(0.0, dd2 - 3.0 * dd3) * self.sigma,
                                  (dd2 + 3.0 * dd3) * self.sigma, "II",
                                  extra={"n": n}, sigma=dd3 * self.sigma))
        return out


@dataclass(frozen=True, slots=True)
class StdDevChart:
    """S chart: centre c4(n)σ, limits (c4 ± 3√(1−c4²))σ, i.e. B3·S̄..B4·S̄ for constant n."""
    sigma: float
    kind = "s"

    def points(self, subgroups: Sequence[Sequence[float]]) -> list[ChartPoint]:
        out = []
        for i, (n, _, sd) in enumerate(_subgroup_stats(subgroups, "s"), 1):
            cc4 = _c4(n)
            spread = math.sqrt(1.0 - cc4 * cc4) * self.sigma
            c = cc4 * self.sigma
            out.append(ChartPoint(i, sd, c, max(0.0, c - 3.0 * spread), c + 3.0 * spread,
                                  "II", extra={"n": n}, sigma=spread))
        return out


# ---------------------------------------------------------------- attribute charts

def _counts_sizes(counts: Sequence[float], sizes: Sequence[float] | None, kind: str
                  ) -> tuple[list[float], list[float]]:
    cs = _floats(counts, "count at point")
    for i, c in enumerate(cs, 1):
        if c < 0:
            raise SpcDataError(f"count at point {i} is negative: {c}")
    if sizes is None:
        if kind in ("p", "np", "u"):
            raise SpcDataError(f"the {kind} chart needs sample sizes")
        return cs, [1.0] * len(cs)
    ns = _floats(sizes, "sample size at point")
    if len(ns) != len(cs):
        raise SpcDataError(f"{len(cs)} counts but {len(ns)} sample sizes")
    for i, (c, n) in enumerate(zip(cs, ns), 1):
        if n <= 0:
            raise SpcDataError(f"sample size at point {i} must be positive, got {n}")
        if kind in ("p", "np") and c > n:
            raise SpcDataError(f"point {i}: {c:g} nonconforming out of a sample of {n:g}")
    return cs, ns


@dataclass(frozen=True, slots=True)
class PChart:
    """p chart: fraction nonconforming with limits p̄ ± 3√(p̄(1−p̄)/n_i)."""
    p: float
    kind = "p"

    @classmethod
    def estimate(cls, counts, sizes, used=None, *, target=None) -> "PChart":
        if target is not None:
            return cls(float(target))
        used = [True] * len(counts) if used is None else used
        return cls(math.fsum(c for c, u in zip(counts, used) if u)
                   / math.fsum(n for n, u in zip(sizes, used) if u))

    def limits(self, n: float) -> tuple[float, float, float]:
        s = math.sqrt(self.p * (1.0 - self.p) / n)
        return max(0.0, self.p - 3.0 * s), min(1.0, self.p + 3.0 * s), s

    def points(self, counts, sizes) -> list[ChartPoint]:
        out = []
        for i, (c, n) in enumerate(zip(counts, sizes), 1):
            lo, hi, s = self.limits(n)
            out.append(ChartPoint(i, c / n, self.p, lo, hi, "II", extra={"n": n}, sigma=s))
        return out


@dataclass(frozen=True, slots=True)
class NpChart:
    """np chart: number nonconforming, constant n, limits np̄ ± 3√(np̄(1−p̄))."""
    p: float
    n: float
    kind = "np"

    def limits(self) -> tuple[float, float, float]:
        s = math.sqrt(self.n * self.p * (1.0 - self.p))
        c = self.n * self.p
        return max(0.0, c - 3.0 * s), min(self.n, c + 3.0 * s), s

    def points(self, counts) -> list[ChartPoint]:
        lo, hi, s = self.limits()
        return [ChartPoint(i, c, self.n * self.p, lo, hi, "II", sigma=s)
                for i, c in enumerate(counts, 1)]


@dataclass(frozen=True, slots=True)
class CChart:
    """c chart: nonconformities per constant inspection unit, c̄ ± 3√c̄."""
    c: float
    kind = "c"

    def limits(self) -> tuple[float, float, float]:
        s = math.sqrt(self.c)
        return max(0.0, self.c - 3.0 * s), self.c + 3.0 * s, s

    def points(self, counts) -> list[ChartPoint]:
        lo, hi, s = self.limits()
        return [ChartPoint(i, c, self.c, lo, hi, "II", sigma=s) for i, c in enumerate(counts, 1)]


@dataclass(frozen=True, slots=True)
class UChart:
    """u chart: nonconformities per unit with variable area, ū ± 3√(ū/n_i)."""
    u: float
    kind = "u"

    def limits(self, n: float) -> tuple[float, float, float]:
        s = math.sqrt(self.u / n)
        return max(0.0, self.u - 3.0 * s), self.u + 3.0 * s, s

    def points(self, counts, sizes) -> list[ChartPoint]:
        out = []
        for i, (c, n) in enumerate(zip(counts, sizes), 1):
            lo, hi, s = self.limits(n)
            out.append(ChartPoint(i, c / n, self.u, lo, hi, "II", extra={"n": n}, sigma=s))
        return out


# ---------------------------------------------------------------- EWMA and CUSUM

@dataclass(frozen=True, slots=True)
class EwmaChart:
    """EWMA z_i = λx_i + (1−λ)z_{i−1}, z_0 = target.

    Limits target ± Lσ√(λ/(2−λ)·(1−(1−λ)^{2i})) (time-varying, the exact
    variance of z_i) or, with ``steady_state``, their asymptote
    target ± Lσ√(λ/(2−λ)).  Signals use the time-varying limits unless
    ``steady_state`` is set; the early points are where the two differ.
    """
    target: float
    sigma: float
    lam: float = 0.2
    L: float = 3.0
    steady_state: bool = False
    kind = "ewma"

    def __post_init__(self) -> None:
        if not 0.0 < self.lam <= 1.0:
            raise SpcDataError(f"EWMA lambda must be in (0, 1], got {self.lam}")
        if self.L <= 0:
            raise SpcDataError(f"EWMA L must be positive, got {self.L}")

    @property
    def asymptotic_halfwidth(self) -> float:
        return self.L * self.sigma * math.sqrt(self.lam / (2.0 - self.lam))

    def halfwidth(self, i: int) -> float:
        # Same operation order as FluctuationMonitor, so batch and incremental
        # runs agree bit for bit on borderline points.
        if self.steady_state:
            return self.asymptotic_halfwidth
        return self.asymptotic_halfwidth * math.sqrt(1.0 - ((1.0 - self.lam) ** 2) ** i)

    def statistics(self, values: Sequence[float]) -> list[float]:
        z, lam, out = self.target, self.lam, []
        for x in values:
            z = lam * x + (1.0 - lam) * z
            out.append(z)
        return out

    def points(self, values: Sequence[float]) -> list[ChartPoint]:
        out = []
        for i, z in enumerate(self.statistics(values), 1):
            hw = self.halfwidth(i)
            p = ChartPoint(i, z, self.target, self.target - hw, self.target + hw, "II",
                           extra={"x": values[i - 1]}, sigma=hw / self.L)
            if z > p.ucl or z < p.lcl:
                p.signals.append(SpcSignal.make("ewma", "ewma", i, z, center=self.target,
                                                lcl=p.lcl, ucl=p.ucl,
                                                side="upper" if z > p.ucl else "lower"))
            out.append(p)
        return out


@dataclass(frozen=True, slots=True)
class CusumChart:
    """Tabular CUSUM with reference value K = kσ and decision interval H = hσ.

    C+_i = max(0, x_i − (μ0 + K) + C+_{i−1}),  C−_i = max(0, (μ0 − K) − x_i + C−_{i−1});
    a side signals when its sum exceeds H (strictly).  ``reset`` restarts both
    sums at 0 after a signal (after the cause is acted on); off by default so
    the sums match the textbook tables.
    """
    target: float
    sigma: float
    k: float = 0.5
    h: float = 5.0
    reset: bool = False
    kind = "cusum"

    def __post_init__(self) -> None:
        if self.k < 0 or self.h <= 0:
            raise SpcDataError(f"CUSUM needs k >= 0 and h > 0, got k={self.k}, h={self.h}")

    def points(self, values: Sequence[float]) -> list[ChartPoint]:
        K, H, mu = self.k * self.sigma, self.h * self.sigma, self.target
        cp = cm = 0.0
        np_ = nm = 0
        out = []
        for i, x in enumerate(values, 1):
            cp = max(0.0, x - (mu + K) + cp)
            cm = max(0.0, (mu - K) - x + cm)
            np_ = np_ + 1 if cp > 0 else 0
            nm = nm + 1 if cm > 0 else 0
            p = ChartPoint(i, cp, 0.0, -H, H, "II",
                           extra={"lower": -cm, "x": x, "n_upper": np_, "n_lower": nm},
                           sigma=self.sigma)
            if cp > H:
                p.signals.append(SpcSignal.make(
                    "cusum_upper", "cusum", i, cp, center=0.0, lcl=-H, ucl=H, side="upper",
                    detail={"run_length": np_, "mean_estimate": mu + K + cp / np_}))
            if cm > H:
                p.signals.append(SpcSignal.make(
                    "cusum_lower", "cusum", i, -cm, center=0.0, lcl=-H, ucl=H, side="lower",
                    detail={"run_length": nm, "mean_estimate": mu - K - cm / nm}))
            if self.reset and p.signals:
                cp = cm = 0.0
                np_ = nm = 0
            out.append(p)
        return out


# ---------------------------------------------------------------- driver

def _check_n_points(kind: str, values: Sequence[Any] | None, what: str) -> Sequence[Any]:
    if values is None:
        raise SpcDataError(f"the {kind} chart needs {what}")
    if len(values) == 0:
        raise SpcDataError(f"the {kind} chart got no {what}")
    return values


def run_chart(kind: str, *, values: Sequence[float] | None = None,
              subgroups: Sequence[Sequence[float]] | None = None,
              counts: Sequence[float] | None = None, sizes: Sequence[float] | None = None,
              phase1: tuple[int, int] | None = None, exclude: Iterable[int] = (),
              target: float | None = None, sigma: float | None = None,
              lam: float = 0.2, L: float = 3.0, k: float = 0.5, h: float = 5.0,
              rules: RulesSpec | None = None, ewma_steady_state: bool = False,
              cusum_reset: bool = False, revise: bool = False,
              max_revisions: int = 10) -> ChartResult:
    """Phase I on the ``phase1`` range (1-based, inclusive; default all) minus
    ``exclude``, then the frozen limits applied to every point.

    ``revise`` repeats phase I, each round also leaving out the baseline
    points beyond the limits (rule 1 / the chart's own limit), until none is
    left — the textbook "revised control limits", to be used once causes are
    found for those points.
    """
    if kind not in CHART_KINDS:
        raise SpcDataError(f"unknown chart {kind!r}; choose one of {', '.join(CHART_KINDS)}")
    exclude = sorted(set(exclude))
    result = _run_once(kind, values, subgroups, counts, sizes, phase1, exclude, target,
                       sigma, lam, L, k, h, rules, ewma_steady_state, cusum_reset)
    rounds = 0
    while revise and rounds < max_revisions:
        beyond = [p.index for p in result.points if p.phase == "I" and p.index not in exclude
                  and any(s.rule in ("rule1", "ewma", "cusum_upper", "cusum_lower")
                          for s in p.signals)]
        if not beyond:
            break
        exclude = sorted(set(exclude) | set(beyond))
        rounds += 1
        result = _run_once(kind, values, subgroups, counts, sizes, phase1, exclude, target,
                           sigma, lam, L, k, h, rules, ewma_steady_state, cusum_reset)
    result.params["revisions"] = rounds
    return result


def _run_once(kind, values, subgroups, counts, sizes, phase1, exclude, target, sigma,
              lam, L, k, h, rules, ewma_steady_state, cusum_reset) -> ChartResult:
    warnings: list[str] = []
    params: dict[str, Any] = {"phase1": list(phase1) if phase1 else None,
                              "excluded": list(exclude), "target": target,
                              "sigma_given": sigma}
    chosen = rules_for_chart(kind, rules)
    params["rules"] = list(chosen)
    if sigma is not None and (not math.isfinite(sigma) or sigma <= 0):
        raise SpcDataError(f"sigma must be positive, got {sigma}")

    if kind in _VALUE_KINDS:
        xs = _floats(_check_n_points(kind, values, "values"), "value")
        in_p1, used = baseline_mask(len(xs), phase1, exclude)
        ind = IndividualsChart.estimate(xs, used, target=target, sigma=sigma)
        if ind.sigma == 0.0:
            warnings.append("estimated σ is 0 (all baseline values equal or no variation "
                            "between neighbours): any change will signal")
        if kind == "i":
            chart: Any = ind
            pts = ind.points(xs)
            top = (ind.center, ind.lcl, ind.ucl, ind.sigma)
        elif kind == "mr":
            chart = MovingRangeChart(ind.sigma)
            pts = chart.points(xs)
            top = (chart.center, chart.lcl, chart.ucl, ind.sigma)
        elif kind == "ewma":
            chart = EwmaChart(ind.center, ind.sigma, lam, L, ewma_steady_state)
            pts = chart.points(xs)
            hw = chart.asymptotic_halfwidth
            top = (chart.target, chart.target - hw, chart.target + hw, ind.sigma)
            params.update({"lambda": lam, "L": L,
                           "limits": "steady-state" if ewma_steady_state else "time-varying"})
        else:
            chart = CusumChart(ind.center, ind.sigma, k, h, cusum_reset)
            pts = chart.points(xs)
            H = h * ind.sigma
            top = (0.0, -H, H, ind.sigma)
            params.update({"k": k, "h": h, "K": k * ind.sigma, "H": H,
                           "target": ind.center, "reset": cusum_reset})
        if kind in ("i", "mr", "ewma"):
            params["target"] = ind.center

    elif kind in _SUBGROUP_KINDS:
        groups = [_floats(g, f"subgroup {j} value")
                  for j, g in enumerate(_check_n_points(kind, subgroups, "subgroups"), 1)]
        in_p1, used = baseline_mask(len(groups), phase1, exclude)
        dispersion = "s" if kind == "s" else "r"
        if kind == "xbar":
            # x̄ pairs with R unless any subgroup is too large for the R tables.
            dispersion = "s" if max(len(g) for g in groups) > 25 else "r"
        xb = XbarChart.estimate(groups, used, dispersion=dispersion, target=target, sigma=sigma)
        if len({len(g) for g in groups}) > 1:
            warnings.append("subgroup sizes vary: limits vary per point; top-level limits "
                            "are for the mean baseline subgroup size")
        n_bar = _mean([len(g) for g, u in zip(groups, used) if u])
        params["sigma_from"] = "given" if sigma is not None else dispersion
        if kind == "xbar":
            chart = xb
            pts = xb.points(groups)
            s_n = xb.sigma / math.sqrt(n_bar)
            top = (xb.center, xb.center - 3 * s_n, xb.center + 3 * s_n, xb.sigma)
        elif kind == "r":
            chart = RangeChart(xb.sigma)
            pts = chart.points(groups)
            n0 = round(n_bar)
            dd2, dd3 = _d2(n0), _d3(n0)
            top = (dd2 * xb.sigma, max(0.0, dd2 - 3 * dd3) * xb.sigma,
                   (dd2 + 3 * dd3) * xb.sigma, xb.sigma)
        else:
            chart = StdDevChart(xb.sigma)
            pts = chart.points(groups)
            cc4 = _c4(round(n_bar))
            sp = math.sqrt(1 - cc4 * cc4) * xb.sigma
            top = (cc4 * xb.sigma, max(0.0, cc4 * xb.sigma - 3 * sp),
                   cc4 * xb.sigma + 3 * sp, xb.sigma)
        params["n"] = n_bar

    else:
        if sigma is not None:
            raise SpcDataError(f"sigma does not apply to the {kind} chart "
                               "(its σ follows from the centre line)")
        cs, ns = _counts_sizes(_check_n_points(kind, counts, "counts"), sizes, kind)
        in_p1, used = baseline_mask(len(cs), phase1, exclude)
        n_bar = _mean([n for n, u in zip(ns, used) if u])
        if kind == "p":
            chart = PChart.estimate(cs, ns, used, target=target)
            pts = chart.points(cs, ns)
            lo, hi, s = chart.limits(n_bar)
            top = (chart.p, lo, hi, s)
            if len(set(ns)) > 1:
                warnings.append("sample sizes vary: limits vary per point; top-level limits "
                                "are for the mean baseline sample size")
        elif kind == "np":
            if len(set(ns)) > 1:
                raise SpcDataError("the np chart needs a constant sample size; "
                                   "use the p chart for varying sizes")
            p = PChart.estimate(cs, ns, used, target=target).p
            chart = NpChart(p, ns[0])
            pts = chart.points(cs)
            lo, hi, s = chart.limits()
            top = (chart.n * p, lo, hi, s)
        elif kind == "c":
            if target is not None:
                cbar = float(target)
            else:
                cbar = _mean([c for c, u in zip(cs, used) if u])
            chart = CChart(cbar)
            pts = chart.points(cs)
            lo, hi, s = chart.limits()
            top = (cbar, lo, hi, s)
        else:
            if target is not None:
                ubar = float(target)
            else:
                ubar = (math.fsum(c for c, u in zip(cs, used) if u)
                        / math.fsum(n for n, u in zip(ns, used) if u))
            chart = UChart(ubar)
            pts = chart.points(cs, ns)
            lo, hi, s = chart.limits(n_bar)
            top = (ubar, lo, hi, s)
            if len(set(ns)) > 1:
                warnings.append("inspection areas vary: limits vary per point; top-level "
                                "limits are for the mean baseline area")
        if top[0] == 0.0:
            warnings.append("the centre line is 0: every nonconformity will signal")
        params["n"] = n_bar

    _phases(pts, in_p1)
    _signals_for(kind, pts, chosen)
    center, lcl, ucl, sig = top
    return ChartResult(kind, center, lcl, ucl, sig, pts, params, warnings)


def rules_table(rules: Mapping[str, Sequence[int]] | None = None) -> dict[str, list[int]]:
    """The effective rules per chart kind, for display in reports and policy docs."""
    return {kind: list(rules_for_chart(kind, rules)) for kind in CHART_KINDS}
