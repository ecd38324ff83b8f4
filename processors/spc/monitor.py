"""Incremental fluctuation monitor for one measured item of one producer.

A ``FluctuationMonitor`` is folded over the results of one item (say, one
enterprise's bromate results) in event-time order.  It collects a baseline of
``baseline`` kept values (phase I), freezes the limits (centre = mean,
σ = MR̄/d2), then checks each new value (phase II) with

* the individuals chart and the configured run rules (default {1, 2, 4}; the
  fold's policy runs rule 1 alone, ``spc.rules``),
* an EWMA (λ = 0.2, L = 3, time-varying limits; ``detect_ewma``),
* a tabular CUSUM (k = 0.5, h = 5, both sides, restarted after it signals so a
  sustained shift re-alarms every few points rather than on every point;
  ``detect_cusum``, off in the fold's policy by default),
* and, when the item has a legal maximum, the capability check: one-sided
  Cpk of the EWMA mean below ``cpk_min``, or the EWMA at ``ewma_fraction`` of
  the limit.  These two describe a state, not an event, so they fire on
  entry into the condition only, and re-arm once the EWMA has fallen back
  ``spec_rearm`` EWMA-σ below the trigger (3 by default): without that
  hysteresis an EWMA hovering at the threshold re-alarms every few points.

Capability needs more data than control limits: a Cpk from 8 results has a
standard error near 0.4 (Bissell's approximation), so it says nothing.  With
``cpk_min_points`` above the baseline, the monitor goes on collecting after
the limits froze: the baseline's points and then each phase II point that
raised no chart signal, until ``cpk_min_points`` stand behind it; σ for Cpk
is the moving-range estimate over those (frozen from then on, as the control
limits are), and only then is Cpk judged.  The control limits themselves
stay those of the baseline, as phase II requires.

The state is plain data (``to_dict``/``from_dict``, JSON-safe, floats round-
trip exactly), so snapshot + tail equals a full replay.  ``update`` is pure
Python on floats: no numpy and no allocation on the quiet path.

Limits from a short baseline (``estimated_limits``): the centre and σ are estimates from m
points, and the next result's deviation from an estimated centre has variance σ²(1 + 1/m), its
ratio to σ̂ close to a Student t.  Not with m − 1 degrees of freedom: σ̂ = MR̄/d2 from overlapping
moving ranges carries less, and t(m − 1) (4.8 σ̂ at m = 8) let 0.22–0.28 % a side through.  With
ν = 0.68(m − 1) + 0.9 (``mr_df``, fitted to the simulated ratio) the individuals limits are
centre ± t(ν; 0.99865)·σ̂·√(1 + 1/m), the same 0.135 % per side as 3σ with known parameters:
5.4 σ̂ at m = 8, 3.7 σ̂ at m = 20 (and the zones of run rules 2-4 scale with them).  The EWMA's
limits add the centre's variance, L·(t/3)·σ̂·√(λ/(2−λ)·(1 − (1−λ)^{2i}) + (1 − (1−λ)^i)²/m): the
EWMA starts at the estimated centre, whose error it carries with the weight 1 − (1−λ)^i (with 1/m
throughout, the limits were 1.9 times too wide at the first point, 1.5 at the second), and the CUSUM
works in the same widened σ.  With 3σ̂ limits from 8 points, one in five in-control series
signalled within 12 results (rules 1, 2, 4, EWMA and CUSUM together).

Reporting resolution (``resolution``): results are rounded when reported (pH to 0.1).  The
monitor takes the finest step written in the baseline's results (the decimals of each value's
shortest repr: 6.5 → 0.1, 0.004933 → 0.000001, an integer → 1; a 0 says nothing), floors σ at
step/√12 (Sheppard: the spread rounding alone gives), and counts a result beyond a limit only when
its whole rounding interval [v − step/2, v + step/2] lies beyond it (a reported 6.6 is 6.55-6.65).
With pH to 0.1 and σ 0.05, the ties made MR̄ tiny (σ̂ 0.025, some series 0) and a quarter of the
points "明显高于以往水平".  A result known only to lie below a bound (``update(..., below=dl)``, a
non-detect) is the interval [0, dl]: it counts as above the centre only if 0 is, and its EWMA and
CUSUM take the end of the interval nearest the centre-side the check looks at.  In general each
check reads the interval at the end that gives the least evidence: the run rules take the point
of the interval nearest the centre (the centre itself when it is inside: on neither side), the
upper EWMA and CUSUM the lower ends, the lower ones the upper ends.

``log10``: the monitor charts log10 of the (positive) values it is given — colony counts, which
scatter by a factor, not by an amount — and speaks in the values' own unit: a signal's value,
centre and limits, the CUSUM's mean estimate and the limits view are back-transformed (the centre
is then the geometric mean); σ, the CUSUM's sums and H stay in log10 units (the view says
``scale: log10``).  ``below`` is then a bound in the values' unit too.

``detect_ewma`` / ``detect_cusum`` turn those detectors' signals off (the EWMA is still followed
for the checks against the legal maximum); every detector run at once adds its false alarms.

Baseline choices: values flagged ``exclude=True`` (a known cause, such as a
lab error or a recall batch) are kept out of the estimate and break moving
ranges; with ``revise_baseline`` the baseline is re-estimated without points
beyond its own 3σ limits (as the textbook revision does once causes are
found), because one contaminated lot in 20 would otherwise widen the limits
enough to hide the next.  With widened limits each point is held against the limits the others
give, the farthest dropped first (``_revise_each``): 3σ̂ of all of them, σ̂ inflated by the outlier
itself, kept a single 10σ lot among 8 two times in three.  A revision never removes all the spread: when
dropping the points beyond 3σ would leave σ = 0 (a series of identical
values with a few different ones, typically "not detected" substituted by one
number with a few detections), those points are the process's own variation,
not causes, and the estimate before that step stands.  Run rules start afresh
in phase II: the baseline is assumed in control once revised.  If σ still
comes out 0 (every baseline result identical) and no ``min_sigma`` floor is
set, the baseline defines no control limits: no chart signal is raised (a
departure from a constant is not "beyond 3σ" of anything), and only the check
of the EWMA against the legal maximum runs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from .capability import SpecLimitCheck, cpk_upper
from .charts import estimate_individuals
from .constants import d2 as _d2
from .constants import d3 as _d3
from .rules import DEFAULT_RULES, RunRuleTracker, parse_rules
from .signals import SpcSignal

STATE_VERSION = 2
_READABLE_VERSIONS = (1, 2)   # version 1: no resolution, the EWMA of the interval ends is the EWMA
_ALPHA = 0.00135              # one side of a 3σ limit with known parameters
_SQRT12 = math.sqrt(12.0)


@functools.lru_cache(maxsize=4096)  # (a pure function of the value; lab values repeat: 0.5, 1.0, 6.5 …)
def step_of(x: float) -> float:
    """The reporting step a value is written to: the last decimal of its shortest repr
    (6.5 → 0.1, 0.004933 → 1e-06, 1.5e-05 → 1e-06, 3000.0 → 1); 0.0 for 0 (no information)."""
    if x == 0.0:
        return 0.0
    r = repr(abs(x))
    exp = 0
    if "e" in r:
        r, e = r.split("e")
        exp = int(e)
    decimals = 0
    if "." in r:
        frac = r.split(".")[1].rstrip("0")
        decimals = len(frac)
    return 10.0 ** (exp - decimals) if exp - decimals < 0 else 1.0


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        de = d * c
        h *= de
        if abs(de - 1.0) < 1e-15:
            break
    return h


def t_upper_tail(t: float, nu: float) -> float:
    """P(T > t) for Student's t with ``nu`` degrees of freedom, t >= 0."""
    x = nu / (nu + t * t)
    a, b = nu / 2.0, 0.5
    if x <= 0.0:
        return 0.0
    bt = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1.0 - x))
    if x < (a + 1.0) / (a + b + 2.0):
        ib = bt * _betacf(a, b, x) / a
    else:
        ib = 1.0 - bt * _betacf(b, a, 1.0 - x) / b
    return 0.5 * ib


_TQ: dict[tuple[float, float], float] = {}


def mr_df(ranges: int) -> float:
    """The degrees of freedom of a Student t that matches, at its 0.135 % tail, the ratio of the next
    result's deviation from the mean of m points to their σ̂ = MR̄/d2 from m − 1 moving ranges:
    0.68(m − 1) + 0.9.  Fitted to a
    simulation of that ratio (6 million baselines each m; the factor it gives is within 2 %
    of the simulated quantile for 4 ≤ m ≤ 60).  Moving ranges overlap, so σ̂ carries less information
    than the m − 1 of a standard deviation: t(m − 1) gave 4.80σ̂ at m = 8 for the 5.33σ̂ needed, and
    0.22–0.28 % a side instead of 0.135 %."""
    return 0.68 * ranges + 0.9


def t_quantile(nu: float, alpha: float = _ALPHA) -> float:
    """The t(nu) quantile with ``alpha`` above it (3.0 for a normal at 0.00135), by bisection: deterministic."""
    hit = _TQ.get((nu, alpha))
    if hit is None:
        lo, hi = 0.0, 1e4
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if t_upper_tail(mid, nu) > alpha:
                lo = mid
            else:
                hi = mid
        hit = _TQ[(nu, alpha)] = hi
    return hit
@functools.lru_cache(maxsize=1024)  # (pure; the baseline revision asks for the same few (m, ranges) of every point)
def _widened(m: int, ranges: int) -> float:
    return t_quantile(mr_df(ranges)) * math.sqrt(1.0 + 1.0 / m)


_D2_2 = _d2(2)
_MR_UCL_FACTOR = _D2_2 + 3.0 * _d3(2)   # D4 · d2(2): MR UCL in units of σ


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    baseline: int = 20
    rules: tuple[int, ...] = DEFAULT_RULES
    ewma_lambda: float = 0.2
    ewma_L: float = 3.0
    ewma_steady_state: bool = False
    cusum_k: float = 0.5
    cusum_h: float = 5.0
    cusum_reset: bool = True
    usl: float | None = None
    cpk_min: float = 1.0
    cpk_min_points: int = 0
    ewma_fraction: float = 0.8
    spec_rearm: float = 3.0
    target: float | None = None
    sigma: float | None = None
    min_sigma: float = 0.0
    revise_baseline: bool = True
    mr_chart: bool = False
    estimated_limits: bool = False
    resolution: bool = False
    detect_ewma: bool = True
    detect_cusum: bool = True
    log10: bool = False
    cpk_ewma_margin: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", parse_rules(self.rules))
        known = self.target is not None and self.sigma is not None
        if self.baseline < (0 if known else 2):
            raise ValueError("baseline must be >= 2 points unless both target and sigma "
                             f"are given (got {self.baseline})")
        if not 0.0 < self.ewma_lambda <= 1.0:
            raise ValueError(f"ewma_lambda must be in (0, 1], got {self.ewma_lambda}")
        if self.ewma_L <= 0 or self.cusum_h <= 0 or self.cusum_k < 0:
            raise ValueError("ewma_L and cusum_h must be positive, cusum_k non-negative")
        if self.sigma is not None and not self.sigma > 0:
            raise ValueError(f"sigma must be positive, got {self.sigma}")
        if self.cpk_ewma_margin < 0:
            raise ValueError(f"cpk_ewma_margin must be >= 0, got {self.cpk_ewma_margin}")
        if self.spec_rearm < 0:
            raise ValueError(f"spec_rearm must be >= 0, got {self.spec_rearm}")
        if self.min_sigma < 0:
            raise ValueError(f"min_sigma must be >= 0, got {self.min_sigma}")
        if self.cpk_min_points < 0:
            raise ValueError(f"cpk_min_points must be >= 0, got {self.cpk_min_points}")
        if self.usl is not None:
            SpecLimitCheck(self.usl, self.cpk_min, self.ewma_fraction)
            if self.log10:
                raise ValueError("the checks against a legal maximum run on the values' own scale: no usl with log10")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rules"] = list(self.rules)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "MonitorConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown monitor settings: {', '.join(sorted(unknown))}")
        kw = dict(d)
        if "rules" in kw:
            kw["rules"] = tuple(kw["rules"]) if not isinstance(kw["rules"], str) else kw["rules"]
        return cls(**kw)


class FluctuationMonitor:
    """Phase I then phase II SPC on one stream of measured values; see the module doc."""

    __slots__ = ("config", "count", "phase", "_baseline", "_kept", "center", "sigma",
                 "_tracker", "_m", "ewma", "cusum_upper", "cusum_lower", "_n_upper",
                 "_n_lower", "_last", "_cpk_active", "_near_active",
                 # capability: points behind the frozen σ, then the in-control history
                 "_n_est", "_cap_n", "_cap_mr", "_cap_mr_n", "_cap_last",
                 # derived from the frozen limits, rebuilt on load
                 "_lcl", "_ucl", "_hw_inf", "_q2", "_m_steady", "_kp", "_km", "_H",
                 "_spec", "_lam", "_lam1", "_cpk_den", "_mr_ucl",
                 "_cpk_on", "_cpk_off", "_near_on", "_near_off", "_cap_min", "_cap_sigma",
                 # reporting step (phase I: the finest seen so far), EWMAs of the interval ends
                 "resolution", "_half", "_ewma_lo", "_ewma_hi",
                 # widening for estimated parameters: the σ the zones are in, the EWMA's 1/m
                 "_sz", "_ewma_a", "_ewma_b", "_k")

    def __init__(self, config: MonitorConfig | None = None, **settings: Any) -> None:
        if config is None:
            config = MonitorConfig(**settings)
        elif settings:
            raise TypeError("give either a MonitorConfig or keyword settings, not both")
        self.config = config
        self.count = 0
        self._reset_phase_one()
        if config.baseline == 0:
            self._freeze()

    # ------------------------------------------------------------ lifecycle

    def _reset_phase_one(self) -> None:
        self.phase = "I"
        self._baseline: list[float | None] = []
        self._kept = 0
        self.center: float | None = None
        self.sigma: float | None = None
        # built when the limits freeze: phase I pushes no points, and most series of a
        # young county never leave it, so a tracker per new series would be wasted work
        self._tracker: RunRuleTracker | None = None
        self._m = 0
        self.ewma: float | None = None
        self.cusum_upper = 0.0
        self.cusum_lower = 0.0
        self._n_upper = 0
        self._n_lower = 0
        self._last: float | None = None
        self._cpk_active = False
        self._near_active = False
        self._spec = None
        self._n_est: int | None = None
        self._cap_n = 0
        self._cap_mr = 0.0
        self._cap_mr_n = 0
        self._cap_last: float | None = None
        self.resolution = 0.0
        self._half = 0.0
        self._ewma_lo: float | None = None
        self._ewma_hi: float | None = None

    def restart(self) -> list[SpcSignal]:
        """Start a new baseline (after a rectification changed the process).

        Point numbering continues; with known limits (baseline 0) the monitor
        re-enters phase II at once and returns any capability signal."""
        self._reset_phase_one()
        if self.config.baseline == 0:
            return self._freeze()
        return []

    def _estimable(self) -> bool:
        # σ comes from moving ranges of adjacent kept values: exclusions can
        # leave none, and then the baseline simply keeps collecting.
        if self.config.target is not None and self.config.sigma is not None:
            return True
        vals = self._baseline
        return any(a is not None and b is not None for a, b in zip(vals, vals[1:]))

    def _estimate(self) -> tuple[float, float, list[bool] | None]:
        """(centre, σ, the baseline points the estimate rests on; None when both are given)."""
        cfg = self.config
        vals = self._baseline
        if cfg.target is not None and cfg.sigma is not None:
            return cfg.target, cfg.sigma, None
        used = [v is not None for v in vals]
        xs = [0.0 if v is None else v for v in vals]
        center, sigma = estimate_individuals(xs, used)
        if cfg.revise_baseline:
            floor = max(cfg.min_sigma, self.resolution / _SQRT12)
            half = self.resolution / 2.0
            revise = self._revise_each if cfg.estimated_limits else self._revise_textbook
            used, center, sigma = revise(xs, used, center, sigma, floor, half)
        if cfg.target is not None:
            center = cfg.target
        if cfg.sigma is not None:
            sigma = cfg.sigma
        return center, sigma, used

    def _revise_textbook(self, xs: list[float], used: list[bool], center: float, sigma: float,
                         floor: float, half: float) -> tuple[list[bool], float, float]:
        """The textbook revision, for limits at 3σ̂ as if centre and σ were known: the points beyond
        3σ̂ of them all dropped, and again, until none is (σ̂ inflated by the outliers themselves, which
        ``_revise_each`` avoids)."""
        for _ in range(10):
            band = 3.0 * max(sigma, floor)
            if band <= 0.0:
                break   # no spread: nothing lies "beyond" it
            drop = [i for i, (x, u) in enumerate(zip(xs, used))
                    if u and abs(x - center) - half > band]
            if not drop:
                break
            trial = list(used)
            for i in drop:
                trial[i] = False
            try:
                c2, s2 = estimate_individuals(xs, trial)
            except ValueError:
                break   # too little left: keep the unrevised estimate
            if s2 <= 0.0 < sigma:
                # what was dropped was all the spread there is: the process's own
                # variation (mostly "not detected" at one substituted value, a few
                # detections), not causes to remove; keep the estimate with spread
                break
            used, center, sigma = trial, c2, s2
        return used, center, sigma

    def _revise_each(self, xs: list[float], used: list[bool], center: float, sigma: float,
                     floor: float, half: float) -> tuple[list[bool], float, float]:
        """The revision for limits widened for the estimate: each point against the limits the others give."""
        used = list(used)
        for _ in range(10):
            # Each point against the limits the others give (whole rounding interval beyond them):
            # where it would have signalled had it come after them.  Not against 3σ̂ of all of
            # them: σ̂ from moving ranges is inflated by the very outlier it is to find (a lot at
            # 1.6 among 0.8s makes two moving ranges of 0.8: σ̂ 0.19 instead of 0.03, so 1.6 lay
            # within 3σ̂, stayed in and put the UCL at 2.01, past the legal maximum; a single 10σ
            # lot stayed in 73 % of the time).  Without the point its neighbours are adjacent: the
            # range between them stands for the two it made (a step between two levels, detections
            # then non-detects, is not carried off with the point beside it).  The farthest goes
            # first, then the rest are looked at again without it.
            vals = [x for x, u in zip(xs, used) if u]
            kept_n = len(vals)
            if kept_n < 3:
                break
            n = len(xs)
            mr = [abs(xs[j] - xs[j - 1]) if j and used[j] and used[j - 1] else -1.0 for j in range(n)] + [-1.0]
            ranges = sorted([r for r in mr if r >= 0.0])
            total_mr, count_mr = sum(ranges), len(ranges)
            total = sum(vals)
            # (most baselines drop nothing: no point is farther from the others' mean than the least the others'
            # limits can be — their factor with all the ranges, their σ̂ without the two largest — and the loop
            # below, run at every series' freeze, need not look at each)
            mean = total / kept_n
            farthest = max(max(vals) - mean, mean - min(vals)) * kept_n / (kept_n - 1) - half
            if count_mr and farthest <= self._factor(kept_n - 1, count_mr) * max(
                    (total_mr - ranges[-1] - (ranges[-2] if count_mr > 1 else 0.0)) / count_mr / _D2_2, floor):
                break
            factors: dict[int, float] = {}
            worst, at = 1.0, -1
            for i in range(n):
                if not used[i]:
                    continue
                away = abs(xs[i] - (total - xs[i]) / (kept_n - 1)) - half
                if away <= 0.0:
                    continue   # within its rounding of the others' mean: beyond no limit
                s2, c2 = total_mr, count_mr
                for r in (mr[i], mr[i + 1]):
                    if r >= 0.0:
                        s2 -= r
                        c2 -= 1
                if 0 < i < n - 1 and used[i - 1] and used[i + 1]:
                    s2 += abs(xs[i + 1] - xs[i - 1])
                    c2 += 1
                if c2 == 0:
                    continue   # too little left without it
                sd = max(s2 / c2 / _D2_2, floor)
                if sd <= 0.0:
                    continue   # no spread in the others: nothing lies "beyond" them
                k = factors.get(c2)
                if k is None:
                    k = factors[c2] = self._factor(kept_n - 1, c2)
                z = away / (k * sd)
                if z > worst:
                    worst, at = z, i
            if at < 0:
                break
            trial = list(used)
            trial[at] = False
            try:
                c2, s2 = estimate_individuals(xs, trial)
            except ValueError:
                break   # too little left: keep the estimate as it is
            if s2 <= 0.0 < sigma:
                # what was dropped was all the spread there is: the process's own
                # variation (mostly "not detected" at one substituted value, a few
                # detections), not causes to remove; keep the estimate with spread
                break
            used, center, sigma = trial, c2, s2
        return used, center, sigma

    def _factor(self, m: int, ranges: int | None = None) -> float:
        """σ̂ multiples of the individuals limits from m estimated points, σ̂ from ``ranges`` moving
        ranges (m − 1: m points in a row) (module doc)."""
        if self.config.estimated_limits and m >= 2:
            return _widened(m, m - 1 if ranges is None else max(ranges, 1))
        return 3.0

    def _freeze(self) -> list[SpcSignal]:
        if self._tracker is None:
            self._tracker = RunRuleTracker(self.config.rules)
        center, sigma, used = self._estimate()
        sigma = max(sigma, self.config.min_sigma, self.resolution / _SQRT12)
        self.center, self.sigma = center, sigma
        self.phase = "II"
        if used is not None and self.config.sigma is None:
            # the in-control history capability is judged on starts with the baseline's points
            vals = self._baseline
            self._n_est = self._cap_n = sum(used)
            for i in range(1, len(vals)):
                if used[i] and used[i - 1]:
                    self._cap_mr += abs(vals[i] - vals[i - 1])  # type: ignore[operator]
                    self._cap_mr_n += 1
            self._cap_last = vals[-1] if used and used[-1] else None
        dropped = ([] if used is None else
                   [(i, v) for i, (v, u) in enumerate(zip(self._baseline, used)) if v is not None and not u])
        first = self.count - len(self._baseline) + 1
        self._baseline = []
        self.ewma = self._ewma_lo = self._ewma_hi = center
        self._derive()
        out: list[SpcSignal] = []
        # a baseline point the revision left out, beyond the limits the others give, is said (a
        # lot at 88 % of the legal maximum in the baseline was dropped silently, while the same
        # lot after it signalled)
        h2 = self._half
        if dropped and self._k != 3.0:
            # every baseline point is looked at, not one new point: the limit for saying one of them
            # is at 0.135 % over all n (Bonferroni), or one in-control baseline in a hundred says one
            # (σ̂ rests on the moving ranges left: a point dropped mid-baseline takes two away)
            n, m = len(dropped) + self._n_est, self._n_est
            ranges = sum(1 for i in range(1, len(used)) if used[i] and used[i - 1])
            reach = t_quantile(mr_df(max(ranges, 1)), _ALPHA / n) * math.sqrt(1.0 + 1.0 / m) * sigma
            lcl, ucl = center - reach, center + reach
        else:
            lcl, ucl = self._lcl, self._ucl
        for i, v in dropped:
            if sigma > 0.0 and (v - h2 > ucl or v + h2 < lcl):
                side = "upper" if v > center else "lower"
                u = self._unlog
                # (shown against the chart's own limits, which it lies beyond all the more)
                out.append(SpcSignal.make("baseline_outlier", "i", first + i, u(v), center=u(center),
                                          lcl=u(self._lcl), ucl=u(self._ucl), side=side,
                                          detail={"points": self._n_est}))
        # A monitor born with known limits has no baseline point to attach a
        # signal to: leave the flags clear so the first value raises it.
        if self._spec is not None and sigma > 0 and self.count > 0:
            cpk = cpk_upper(center, self._cap_sigma, self._spec.usl)
            if self._cap_ready() and cpk < self._spec.cpk_min:
                self._cpk_active = True
                out.append(self._spec.cpk_signal(cpk, center, self._cap_sigma, self.count, "spec",
                                                 points=self._n_est, basis="baseline"))
            if center >= self._near_on:
                self._near_active = True
                out.append(self._spec.ewma_signal(center, self.count, "spec"))
        return out

    def _derive(self) -> None:
        cfg = self.config
        c, s = self.center, self.sigma
        self._half = self.resolution / 2.0
        m = self._n_est
        if cfg.estimated_limits and m is not None and m >= 2:
            # prediction limits for the next result from m baseline points (module doc)
            rho = t_quantile(mr_df(m - 1)) / 3.0
            self._k = self._factor(m)
            self._ewma_b = 0.0 if cfg.target is not None else 1.0 / m
        else:
            rho = 1.0
            self._k = 3.0
            self._ewma_b = 0.0
        self._sz = s * self._k / 3.0
        self._lcl, self._ucl = c - self._k * s, c + self._k * s
        lam = cfg.ewma_lambda
        self._lam, self._lam1 = lam, 1.0 - lam
        self._ewma_a = lam / (2.0 - lam)
        self._hw_inf = cfg.ewma_L * rho * s * math.sqrt(self._ewma_a + self._ewma_b)
        self._q2 = (1.0 - lam) ** 2
        # Past this many points (1-λ)^{2m} is below double precision: the
        # time-varying limit equals the steady one and pow() can be skipped.
        self._m_steady = (0 if cfg.ewma_steady_state or self._q2 == 0.0
                          else int(math.ceil(-37.0 / math.log10(self._q2))) + 1)
        K = cfg.cusum_k * self._sz
        self._kp, self._km, self._H = c + K, c - K, cfg.cusum_h * self._sz
        self._mr_ucl = _MR_UCL_FACTOR * s
        # known σ needs no points; otherwise capability waits for cpk_min_points
        self._cap_min = 0 if self._n_est is None else cfg.cpk_min_points
        if cfg.usl is not None:
            self._spec = SpecLimitCheck(cfg.usl, cfg.cpk_min, cfg.ewma_fraction)
            margin = cfg.spec_rearm * s * math.sqrt(self._ewma_a)   # spec_rearm EWMA-σ (known-parameter σ of the EWMA)
            self._near_on = self._spec.ewma_threshold
            self._near_off = self._near_on - margin
            self._capability(margin)
        else:
            self._spec = None
            self._cpk_den = 0.0
            self._cap_sigma = s
            self._cpk_on = self._cpk_off = self._near_on = self._near_off = math.inf

    def _cap_ready(self) -> bool:
        """Enough in-control points behind σ for a capability judgement (known σ: always)."""
        return self._cap_n >= self._cap_min

    def _capability(self, margin: float | None = None) -> None:
        """σ for Cpk from the points collected for it, and the EWMA level where Cpk < cpk_min."""
        cfg = self.config
        if self._n_est is None or self._cap_mr_n == 0:
            s = self.sigma
        else:
            s = max(self._cap_mr / self._cap_mr_n / _D2_2, cfg.min_sigma, self.resolution / _SQRT12)
        self._cap_sigma = s
        self._cpk_den = 3.0 * s
        if margin is None:
            margin = self._cpk_on - self._cpk_off
        # Cpk(EWMA) < cpk_min  <=>  EWMA > USL − 3σ·cpk_min (σ > 0): compare
        # the EWMA directly, no division on the quiet path.  ``cpk_ewma_margin``: by that many
        # standard deviations of the EWMA itself (σ·√(λ/(2−λ))), so that its own noise is not read
        # as a fall in capability (a process at Cpk 1.33 had its EWMA Cpk below 1 within 60 results
        # one time in four)
        self._cpk_on = (cfg.usl - 3.0 * s * cfg.cpk_min  # type: ignore[operator]
                        + cfg.cpk_ewma_margin * s * math.sqrt(self._ewma_a))
        self._cpk_off = self._cpk_on - margin

    def _collect(self, x: float, quiet: bool) -> None:
        """Phase II, before capability is judged: a point no chart flagged joins the points σ
        for Cpk is estimated from (a flagged one breaks the moving ranges)."""
        if not quiet:
            self._cap_last = None
            return
        last = self._cap_last
        if last is not None:
            self._cap_mr += x - last if x > last else last - x
            self._cap_mr_n += 1
        self._cap_n += 1
        self._cap_last = x
        if self._cap_n >= self._cap_min:
            self._capability()

    # ------------------------------------------------------------ the fold step

    def update(self, value: float, *, exclude: bool = False, below: float | None = None) -> list[SpcSignal]:
        """Feed the next value; return the signals it raises (usually none).

        ``exclude`` marks a value with a known cause: it counts as a point
        (indexes stay aligned with the stream) but is kept out of the
        baseline, and in phase II out of every chart.  ``below``: the value
        stands for a result known only to lie below this bound (a non-detect
        charted at half the detection limit): the interval [0, below].
        """
        x = float(value)
        if x != x or x in (math.inf, -math.inf):
            raise ValueError(f"measured value must be finite, got {value!r}")
        raw = x
        if self.config.log10:
            if x <= 0.0 or (below is not None and below <= 0.0):
                raise ValueError(f"a log10 chart needs positive values, got {value!r}")
            x = math.log10(x)
            if below is not None:
                below = math.log10(below)
        self.count += 1
        if self.phase == "I":
            if exclude:
                self._baseline.append(None)
                return []
            if below is None and self.config.resolution and not self.config.log10:
                st = step_of(x)
                if st > 0.0 and (self.resolution == 0.0 or st < self.resolution):
                    self.resolution = st
            self._baseline.append(x)
            self._kept += 1
            if self._kept >= self.config.baseline and self._estimable():
                return self._freeze()
            return []
        if exclude:
            self._last = None   # a moving range must not span the excluded point
            return []

        idx = self.count
        c = self.center
        s = self.sigma
        out: list[SpcSignal] = []
        # the interval the result stands for: the rounding interval, or [0, bound] for a non-detect
        if below is not None:
            lo, hi = (x if x < 0.0 else 0.0), float(below)
        else:
            h2 = self._half
            lo, hi = x - h2, x + h2
        if s > 0.0:
            # the run rules see the point of the interval nearest the centre (the centre: neither side)
            xr = lo if lo > c else (hi if hi < c else c)
            hits = self._tracker.push((xr - c) / self._sz, x)
            if hits:
                for rule, side, trend in hits:
                    sg = SpcSignal.make(f"rule{rule}", "i", idx, x, center=c,
                                        lcl=self._lcl, ucl=self._ucl, side=side, trend=trend)
                    if self.config.log10:
                        sg = SpcSignal(sg.rule, "i", idx, raw, 10.0 ** c, 10.0 ** self._lcl, 10.0 ** self._ucl,
                                       side, sg.text_zh, sg.text_en, None)
                    if rule == 1 and self._k != 3.0:
                        # the limit is not 3σ̂ but widened for the estimate: say which
                        k, m = self._k, self._n_est
                        sg = SpcSignal(sg.rule, sg.chart, idx, sg.value, sg.center, sg.lcl, sg.ucl, side,
                                       sg.text_zh.replace("（3σ）", f"（按 {m} 批基线估计，放宽至 {k:.1f}σ）"),
                                       sg.text_en.replace("3σ control limit", f"control limit ({k:.1f}σ from {m} baseline points)"),
                                       None)
                    out.append(sg)
            if self.config.mr_chart:
                last = self._last
                if last is not None:
                    mr = x - last if x > last else last - x
                    if mr > self._mr_ucl:
                        out.append(SpcSignal.make("rule1", "mr", idx, mr, center=_D2_2 * s,
                                                  lcl=0.0, ucl=self._mr_ucl, side="upper"))
                self._last = x

            m = self._m + 1
            self._m = m
            lam, lam1 = self._lam, self._lam1
            e = lam * x + lam1 * self.ewma
            self.ewma = e
            e_lo = lam * lo + lam1 * self._ewma_lo
            e_hi = lam * hi + lam1 * self._ewma_hi
            self._ewma_lo, self._ewma_hi = e_lo, e_hi
            if self.config.detect_ewma:
                if m >= self._m_steady:
                    hw = self._hw_inf
                elif self._ewma_b == 0.0:
                    hw = self._hw_inf * math.sqrt(1.0 - self._q2 ** m)
                else:
                    # the EWMA starts at the estimated centre, so that estimate's error enters it with
                    # weight 1 − (1−λ)^i: none at the first point, all of it only in the steady state
                    qm = lam1 ** m
                    w = 1.0 - qm
                    hw = self._hw_inf * math.sqrt((self._ewma_a * (1.0 - qm * qm) + self._ewma_b * w * w)
                                                  / (self._ewma_a + self._ewma_b))
                if e_lo > c + hw or e_hi < c - hw:
                    side = "upper" if e_lo > c + hw else "lower"
                    if self.config.log10:
                        out.append(SpcSignal.make("ewma", "ewma", idx, 10.0 ** e, center=10.0 ** c, lcl=10.0 ** (c - hw),
                                                  ucl=10.0 ** (c + hw), side=side))
                    else:
                        out.append(SpcSignal.make("ewma", "ewma", idx, e, center=c, lcl=c - hw, ucl=c + hw, side=side))

            if self.config.detect_cusum:
                cp = lo - self._kp + self.cusum_upper
                cm = self._km - hi + self.cusum_lower
                if cp > 0.0:
                    self._n_upper += 1
                else:
                    cp = 0.0
                    self._n_upper = 0
                if cm > 0.0:
                    self._n_lower += 1
                else:
                    cm = 0.0
                    self._n_lower = 0
                self.cusum_upper = cp
                self.cusum_lower = cm
                H = self._H
                if cp > H or cm > H:
                    self._cusum_signal(out, idx, cp, cm, H)

            if self._spec is not None:
                if self._cap_n < self._cap_min:
                    self._collect(x, not out)
                if self._cpk_active:
                    if e < self._cpk_off:
                        self._cpk_active = False
                elif e > self._cpk_on and self._cap_n >= self._cap_min:
                    self._cpk_active = True
                    out.append(self._spec.cpk_signal(
                        (self.config.usl - e) / self._cpk_den, e, self._cap_sigma, idx, "spec",
                        points=self._cap_n if self._n_est is not None else None, basis="ewma"))
                if self._near_active:
                    if e < self._near_off:
                        self._near_active = False
                elif e >= self._near_on:
                    self._near_active = True
                    out.append(self._spec.ewma_signal(e, idx, "spec"))
        else:
            # σ = 0: the baseline defines no control limits, so no chart signal; the
            # EWMA is still followed for the check against the legal maximum.
            m = self._m + 1
            self._m = m
            e = self._lam * x + self._lam1 * self.ewma
            self.ewma = e
            self._ewma_lo = self._lam * lo + self._lam1 * self._ewma_lo
            self._ewma_hi = self._lam * hi + self._lam1 * self._ewma_hi
            if self._spec is not None:
                if self._near_active:
                    if e < self._near_off:
                        self._near_active = False
                elif e >= self._near_on:
                    self._near_active = True
                    out.append(self._spec.ewma_signal(e, idx, "spec"))
        return out

    def _cusum_signal(self, out: list[SpcSignal], idx: int, cp: float, cm: float,
                      H: float) -> None:
        K = self.config.cusum_k * self._sz
        if cp > H:
            out.append(SpcSignal.make(
                "cusum_upper", "cusum", idx, cp, center=0.0, lcl=-H, ucl=H, side="upper",
                detail={"run_length": self._n_upper,
                        "mean_estimate": self._unlog(self.center + K + cp / self._n_upper)}))
        if cm > H:
            out.append(SpcSignal.make(
                "cusum_lower", "cusum", idx, -cm, center=0.0, lcl=-H, ucl=H, side="lower",
                detail={"run_length": self._n_lower,
                        "mean_estimate": self._unlog(self.center - K - cm / self._n_lower)}))
        if self.config.cusum_reset:
            self.cusum_upper = self.cusum_lower = 0.0
            self._n_upper = self._n_lower = 0

    def _unlog(self, x: float) -> float:
        return 10.0 ** x if self.config.log10 else x

    def update_many(self, values: Iterable[float]) -> list[SpcSignal]:
        out: list[SpcSignal] = []
        for v in values:
            out.extend(self.update(v))
        return out

    # ------------------------------------------------------------ views

    @property
    def limits(self) -> dict[str, Any] | None:
        """Frozen limits for display (None during the baseline)."""
        if self.phase != "II":
            return None
        d = {"center": self.center, "sigma": self.sigma, "lcl": self._lcl, "ucl": self._ucl,
             "ewma_lcl": self.center - self._hw_inf, "ewma_ucl": self.center + self._hw_inf,
             "cusum_h": self._H}
        if self.config.log10:
            for k in ("center", "lcl", "ucl", "ewma_lcl", "ewma_ucl"):
                d[k] = 10.0 ** d[k]
            d["scale"] = "log10"   # centre: the geometric mean; sigma and cusum_h in log10 units
        if self._k != 3.0:
            d["limit_factor"] = self._k   # σ̂ multiples of the individuals limits (estimated parameters)
        if self.resolution > 0.0:
            d["resolution"] = self.resolution
        if self.config.usl is not None:
            d["usl"] = self.config.usl
            # no capability judgement on too few points (None, as JSON shows "no value")
            d["cpk"] = (cpk_upper(self.center, self._cap_sigma, self.config.usl)
                        if self._cap_ready() and self.sigma > 0 else None)
            d["cpk_points"] = None if self._n_est is None else self._cap_n
        return d

    @property
    def ucl(self) -> float | None:
        """The individuals chart's upper limit (None during the baseline)."""
        return self._unlog(self._ucl) if self.phase == "II" else None

    @property
    def baseline_remaining(self) -> int:
        return 0 if self.phase == "II" else max(1, self.config.baseline - self._kept)

    # ------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "config": self.config.to_dict(),
            "count": self.count,
            "phase": self.phase,
            "baseline": list(self._baseline),
            "kept": self._kept,
            "center": self.center,
            "sigma": self.sigma,
            "rules": (self._tracker or RunRuleTracker(self.config.rules)).to_dict(),
            "m": self._m,
            "ewma": self.ewma,
            "cusum_upper": self.cusum_upper,
            "cusum_lower": self.cusum_lower,
            "n_upper": self._n_upper,
            "n_lower": self._n_lower,
            "last": self._last,
            "cpk_active": self._cpk_active,
            "near_active": self._near_active,
            "capability": (None if self._n_est is None else
                           [self._n_est, self._cap_n, self._cap_mr, self._cap_mr_n, self._cap_last]),
            "resolution": self.resolution,
            "ewma_ends": None if self._ewma_lo is None else [self._ewma_lo, self._ewma_hi],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FluctuationMonitor":
        if d.get("version") not in _READABLE_VERSIONS:
            raise ValueError(f"unsupported monitor state version {d.get('version')!r}")
        self = cls.__new__(cls)
        self.config = MonitorConfig.from_dict(d["config"])
        self.count = int(d["count"])
        self._reset_phase_one()
        self.phase = d["phase"]
        self._baseline = [None if v is None else float(v) for v in d["baseline"]]
        self._kept = int(d["kept"])
        self._tracker = RunRuleTracker.from_dict(d["rules"])
        self._m = int(d["m"])
        self.cusum_upper = float(d["cusum_upper"])
        self.cusum_lower = float(d["cusum_lower"])
        self._n_upper = int(d["n_upper"])
        self._n_lower = int(d["n_lower"])
        self._last = None if d["last"] is None else float(d["last"])
        self._cpk_active = bool(d["cpk_active"])
        self._near_active = bool(d["near_active"])
        cap = d.get("capability")
        if cap is not None:
            self._n_est, self._cap_n, self._cap_mr_n = int(cap[0]), int(cap[1]), int(cap[3])
            self._cap_mr = float(cap[2])
            self._cap_last = None if cap[4] is None else float(cap[4])
        self.resolution = float(d.get("resolution", 0.0))
        if self.phase == "II":
            self.center = float(d["center"])
            self.sigma = float(d["sigma"])
            self.ewma = float(d["ewma"])
            ends = d.get("ewma_ends")
            self._ewma_lo, self._ewma_hi = (self.ewma, self.ewma) if ends is None else (float(ends[0]), float(ends[1]))
            self._derive()
        elif self.phase != "I":
            raise ValueError(f"bad monitor phase {self.phase!r}")
        return self
