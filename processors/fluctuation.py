"""Fluctuation detection (质量波动) inside the fold: which charts exist, what feeds them,
and the cause analysis attached to every signal.

Charts, all updated incrementally by ``step()`` and part of the replayable state:

- one ``FluctuationMonitor`` per (enterprise, product, item) over measured values
  (individuals chart + run rules, EWMA, CUSUM, and the early-warning checks
  against the legal maximum);
- a p chart per enterprise: its failures per period against its category's reference
  failure rate (``spc.reference_failure_rate``), exact binomial limits for the period's n
  (``p_count_limit``); it signals from the second failure in a period (the first is a failure
  warning already);
- a p chart per category for the county, against the same reference;
- a c chart per enterprise: complaints per month against the expected rate.

Sampling plans (microbial counts, n values per sample) feed the monitor with the
largest of the n values: the plan judges the worst unit, and counts of 0 are too
lumpy to chart as means.  Counts — every item whose catalogue unit is CFU/… or MPN/…, 霉菌 under its
legal maximum as much as 菌落总数 under a plan — are charted on a log10 scale: they scatter by a factor
(log-normally), and a normal-theory chart of raw counts — its σ from moving ranges of a
skewed, heavy-tailed series — signalled on 57 % of in-control bakeries within 20 months (霉菌, on
the raw scale because its rule is a maximum: 10 bakeries of 40 with 22 warnings a year; on log10, 1).
The texts give values and limits back in CFU/g (the centre is then a geometric mean).  A count
not detected is charted at half its detection limit, as any non-detect; a count of 0 without a
detection limit (fewer than one colony counted) at 0.5, half the counting unit, as a result
known only to lie below 1.  A plan that tolerates nothing (c=0, m=0) is not charted:
its first count is a failure already, and a signal would count it twice.

Not detected ("ND", or a number below the method's detection limit, which the judgement reads
as ND) is charted at half the detection limit the lab gave: the usual substitution for
left-censored data in environmental statistics (US EPA, Guidance for Data Quality Assessment
QA/G-9, for a small share of non-detects).  Charted as 0 it pulled the means of mostly-ND
series (溴酸盐) below the detection limit, a number without meaning.  An ND without a
detection limit cannot be placed and is not charted.  The plain-language texts say when a
series holds substituted points (未检出按检出限的一半计).

Substitution is for a small share of non-detects.  A baseline mostly not detected (more than
``spc.nd_share_max``, half by default: 溴酸盐 in most water plants) is a point mass at half the
detection limit with a few detections: its moving ranges are mostly 0, its σ comes from the
detections alone, and its "upper control limit" lies at or below the detection limit, so that
every detection crossed it ("明显高于以往水平").  Such a series is not charted against control
limits: it keeps the check of its EWMA against the legal maximum, and (``spc.nd_detection_note``)
notes a result detected after at least ``spc.baseline`` results in a row not detected, as
information (以往连续 N 批均未检出，本批检出), with the data flag ``note``.  In any other series a
control-chart signal whose upper limit lies below the method's detection limit is dropped: a
limit the method cannot see is no limit.

Capability (Cpk) is judged only on ``spc.cpk_min_points`` in-control results (see
``processors.spc.monitor``), and its text says which mean and how many results it rests on.
Measured results are never negative: lower limits are shown as 0 at the least.
"""
from __future__ import annotations

import datetime as dt
import functools
import math
import weakref
from collections.abc import Callable
from typing import Annotated, Any, TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator

from processors._build import FoldState, builder
from processors.personal_info import mask_personal_info
from processors.spc import FluctuationMonitor, MonitorConfig
from processors.spc.signals import SpcSignal

if TYPE_CHECKING:  # pragma: no cover
    from processors.credit_file import CreditFile, SampleRecord
    from schemas.policy import SpcPolicy
    from processors.step import Rules
    from schemas.events import Envelope


def _load_monitor(value: Any) -> FluctuationMonitor:
    return value if isinstance(value, FluctuationMonitor) else FluctuationMonitor.from_dict(value)


MonitorState = Annotated[
    FluctuationMonitor,
    PlainValidator(_load_monitor),
    PlainSerializer(lambda m: m.to_dict(), return_type=dict),
]


class _State(FoldState):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


# A charted point: (index, sampled_on ISO date, value, sample_no, event_id, lab, batch, rules
# that fired).  A tuple, not a model: one is made for every measured item of every sample.
SeriesPoint = tuple[int, str, float, str, str, str, "str | None", tuple[str, ...]]
POINT_FIELDS = ("index", "sampled_on", "value", "sample_no", "event_id", "lab", "batch", "rules")


class SeriesPhase(_State):
    """A new baseline a series started on a supervisor's decision (``fluctuation.rebaselined``): from its point
    ``start`` on, the series is charted against limits of its own, the points before against the old ones."""

    start: int = Field(description="the index of the phase's first point (the monitor's numbering runs on across phases)")
    sampled_on: str = Field(description="that point's sampling date (ISO)")
    effective_from: str = Field(description="the sampling date the decision starts the new baseline from (ISO)")
    event_id: str = Field(description="the fluctuation.rebaselined that started it")
    reason: str
    confirmed_by: str


class Series(_State):
    """One measured item of one product of one enterprise."""

    key: str
    product: str
    item_code: str
    item_name: str
    unit: str
    usl: float | None = Field(default=None, description="the legal maximum, in the catalogue unit")
    monitor: MonitorState
    recent: list[SeriesPoint] = Field(default_factory=list)
    signals: int = Field(default=0, description="batches whose point raised a signal (one however many rules fired)")
    nd_points: int = Field(default=0, description="points charted for a result not detected, at half the detection limit")
    baseline_nd: int = Field(default=0, description="of them, points in the baseline (phase I)")
    censored: bool = Field(default=False, description="the baseline was mostly not detected (spc.nd_share_max): no control limits")
    nd_run: int = Field(default=0, description="results not detected in a row, up to the last point")
    nd_window: list[bool] = Field(default_factory=list, description="whether each of the last spc.baseline results was not "
                                                                    "detected: a mostly-ND series' detection frequency")
    detection_limit: float | None = Field(default=None, description="the method's detection limit, as the last result gave it")
    phases: list[SeriesPhase] = Field(default_factory=list, description="new baselines started on a supervisor's decision, in order "
                                                                         "(none: one phase from the first point)")


class PeriodCount(_State):
    n: int = 0
    failed: int = 0
    signalled: bool = False
    # a category's chart (county level): each failure counted, as (enterprise id, sample no., event id), so the
    # signal can say whose they are and wait for a second enterprise (spc.category_min_enterprises)
    failures: list[tuple[str, str, str]] = Field(default_factory=list)


class Rebaseline(_State):
    """A ``fluctuation.rebaselined`` on file (控制限重新确定): the series it covers start a new baseline with their
    first result sampled on or after ``effective_from``, whenever that result or the decision arrives."""

    event_id: str
    product: str
    item_code: str | None = Field(default=None, description="None: every item charted for the product")
    effective_from: str = Field(description="sampling date (ISO) the new baseline starts from")
    reason: str
    confirmed_by: str
    by: str = Field(description="who sent it (the source's name)")
    decided_at: dt.datetime
    rectification_id: str | None = None
    alert_id: str | None = None

    def covers(self, product: str, item_code: str) -> bool:
        return self.product == product and (self.item_code is None or self.item_code == item_code)


class FluctuationState(_State):
    """Per enterprise: its item series, its pass-rate and complaint charts."""

    series: dict[str, Series] = Field(default_factory=dict)
    failing_items: dict[str, int] = Field(default_factory=dict, description="failures per item: the enterprise's Pareto")
    pass_rate: dict[str, PeriodCount] = Field(default_factory=dict)
    complaints: dict[str, PeriodCount] = Field(default_factory=dict)
    last_sampled: str = Field(default="", description="the latest sampling date (ISO) charted on any item series: a result "
                                                        "sampled on or after it is in order for every series")
    rebaselines: list[Rebaseline] = Field(default_factory=list, description="new baselines confirmed by a supervisor "
                                                                             "(fluctuation.rebaselined), in the order logged")


class CategoryRates(_State):
    """County level, per category: the pass-rate chart and the Pareto of failing items."""

    periods: dict[str, PeriodCount] = Field(default_factory=dict)
    failing_items: dict[str, int] = Field(default_factory=dict, description="failures per item since the log began")
    # A county signal points at the causes of its own period, not at 2023's: the category's failures cannot be
    # counted by period from the files at signal time (dozens of files; a Kafka worker holds one), so kept here.
    period_items: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="failures per item in each period of ``periods`` (the period's Pareto); a period "
                                          "counted before this was kept (a snapshot of fold version 45 or older) has none, "
                                          "and its signal gives the Pareto since the log began (``pareto_scope`` says \"all\")")


# --------------------------------------------------------------------------- helpers


@functools.lru_cache(maxsize=4096)  # (pure; samples and complaints share few days, and formatting one costs more than the lookup)
def period_of(day: dt.date, kind: str) -> str:
    return f"{day.year}-{day.month:02d}" if kind == "month" else f"{day.year}Q{(day.month - 1) // 3 + 1}"


def period_span(period: str) -> tuple[dt.date, dt.date]:
    """The first and last days of a ``period_of`` period: 2025Q3 → 2025-07-01, 2025-09-30; 2025-07 → 2025-07-01, 2025-07-31."""
    if "Q" in period:
        year, quarter = (int(x) for x in period.split("Q"))
        first, months = dt.date(year, 3 * quarter - 2, 1), 3
    else:
        year, month = (int(x) for x in period.split("-"))
        first, months = dt.date(year, month, 1), 1
    after = first.month - 1 + months
    return first, dt.date(first.year + after // 12, after % 12 + 1, 1) - dt.timedelta(days=1)


def period_zh(period: str) -> str:
    """2025Q3 → 2025年第3季度, 2025-07 → 2025年7月: a period as a supervisor writes it."""
    if "Q" in period:
        year, quarter = period.split("Q")
        return f"{year}年第{quarter}季度"
    year, month = period.split("-")
    return f"{year}年{int(month)}月"


def binomial_at_least(k: int, n: int, p: float) -> float:
    """P(X ≥ k) for X ~ Binomial(n, p): the chance of at least k failures in n batches at the
    reference rate.  With a handful of batches the p chart's normal limits mean little; this is
    what the count itself says.  Term by term in logs (a county's quarter of a few thousand batches
    would overflow comb(n, i) as a float), the shorter side of the mean summed."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0 or p >= 1.0:
        return 0.0 if p <= 0.0 else 1.0
    lp, lq, lgn = math.log(p), math.log1p(-p), math.lgamma(n + 1)

    def pmf(i: int) -> float:
        return math.exp(lgn - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq)

    if k > n * p:
        return min(1.0, math.fsum(pmf(i) for i in range(k, n + 1)))
    return max(0.0, min(1.0, 1.0 - math.fsum(pmf(i) for i in range(0, k))))


P_CHART_ALPHA = 0.00135
"""The p chart's false-alarm rate per check: that of a 3σ limit on one side of a normal chart."""


@functools.lru_cache(maxsize=4096)  # (pure; a period's n and the category's reference repeat)
def p_count_limit(p0: float, n: int, alpha: float | None = None) -> int:
    """The most failures among n batches still in control at the reference rate ``p0``: more signal, when
    P(X ≥ failures | n, p0) < ``alpha`` (exact binomial, as the c chart's Poisson).  The normal limits
    p0 ± 3√(p0(1−p0)/n) are far off when n·p0 is below 1: 2 of 14 at 1.9 % (P = 2.8 %) crossed them, and
    a county's category chart signalled in one quarter of twenty with every plant in control.

    The chart is checked at every failure of the period, n·p0 of them expected by the n-th batch: each
    check gets ``P_CHART_ALPHA`` shared among those (by default), or an in-control period's chances of a
    signal grow with its size (0.135 % a check: 0.3 % of quarters at 30 batches, 1.4 % at 1000; shared,
    0.3–0.55 % whatever the size).

    The limit is the count before the first k ≥ 1 with ``binomial_at_least(k, n, p0) < alpha``, exactly as
    that walk finds it; computed without the walk, which cost O(n) per k from k = 1 — O(n²) a check — and a
    quarter's n grows by one each batch (the cache never hits): a county's bulk import slowed threefold by
    n = 10,000 (1.3 s a failed batch).  See ``_p_count_limit_fast``."""
    if alpha is None:
        alpha = P_CHART_ALPHA / max(1.0, n * p0)
    if n >= 1 and 0.0 < p0 < 1.0 and 0.0 < alpha < _P_FAST_ALPHA_MAX:
        return _p_count_limit_fast(p0, n, alpha)
    k = 1  # (the walk itself where its shortcut is not proven: no such chart exists)
    while binomial_at_least(k, n, p0) >= alpha:
        k += 1
    return k - 1


_P_FAST_ALPHA_MAX = 0.25
"""The largest false-alarm rate ``_p_count_limit_fast`` is proven for: it skips the counts up to n·p0, whose tails
are at least ½ — above any alpha below ½ by more than the sums' rounding (~1e-10); a chart's is 0.135 % at most."""

_P_TAIL_REL = 1e-7
"""How near alpha (relatively) a tail summed by recurrence must lie for ``binomial_at_least`` to decide instead: the
two sums differ by ~1e-10 (term by term in logs of ~n·ln n, against one term in logs and ratios), far less."""


def _p_count_limit_fast(p0: float, n: int, alpha: float) -> int:
    """``p_count_limit``'s walk, identical in result, in O(√n + limit − n·p0) work:

    - it starts at k0 = ⌊n·p0⌋ − 1 (1 at least; one below, so that n·p0 rounded up to a whole number as a float
      cannot start it past the true ⌊n·p0⌋): the median of Binomial(n, p0) is ⌊n·p0⌋ or ⌈n·p0⌉ (Kaas & Buhrman,
      1980), so P(X ≥ k) ≥ P(X ≥ median) ≥ ½ > alpha for every k ≤ ⌊n·p0⌋, and the walk passes all of them;
    - the tails from k0 up are suffix sums of terms by the recurrence pmf(i+1) = pmf(i)·(n−i)/(i+1)·p0/(1−p0)
      from one term in logs, stopped where the rest is bounded below alpha·1e-9 (past the mode the ratios fall,
      so what follows a term t with ratio r < 1 is at most t·r/(1−r));
    - a tail within ``_P_TAIL_REL`` of alpha is decided by ``binomial_at_least`` itself, the walk's own sum: so a
      rounding difference between the two sums can never move the limit."""
    k0 = max(1, int(n * p0) - 1)
    lp, lq = math.log(p0), math.log1p(-p0)
    term = math.exp(math.lgamma(n + 1) - math.lgamma(k0 + 1) - math.lgamma(n - k0 + 1) + k0 * lp + (n - k0) * lq)
    odds = p0 / (1.0 - p0)
    stop = alpha * 1e-9
    terms = [term]
    i = k0
    while i < n:
        r = (n - i) / (i + 1) * odds
        if r < 1.0 and term * r / (1.0 - r) < stop:
            break
        term *= r
        i += 1
        terms.append(term)
    tails = [0.0] * len(terms)  # tails[j]: P(X ≥ k0 + j), the smaller terms added first
    s = 0.0
    for j in range(len(terms) - 1, -1, -1):
        s += terms[j]
        tails[j] = s
    lo, hi = alpha * (1.0 - _P_TAIL_REL), alpha * (1.0 + _P_TAIL_REL)
    k = k0
    while True:
        j = k - k0
        t = tails[j] if j < len(tails) else 0.0  # (past the last term the rest is below alpha·1e-9)
        if t < lo or (t <= hi and binomial_at_least(k, n, p0) < alpha):
            return k - 1
        k += 1


def chance_zh(p: float) -> str:
    """A probability in per cent as a supervisor reads it: two significant figures, no exponent."""
    pct = 100 * p
    if pct < 0.01:
        return "不足 0.01%"
    return f"{pct:.0f}%" if pct >= 10 else f"{pct:.2g}%"


C_CHART_ALPHA = 0.00135
"""The c chart's false-alarm rate per month: that of a 3σ limit on one side of a normal chart."""


def poisson_at_least(k: int, lam: float) -> float:
    """P(X ≥ k) for X ~ Poisson(lam)."""
    if k <= 0:
        return 1.0
    term = math.exp(-lam)
    below = 0.0
    for i in range(k):
        below += term
        term *= lam / (i + 1)
    return max(0.0, 1.0 - below)


def _distinct_pcts(rate: float, limit: float) -> tuple[str, str]:
    """A rate and the limit it crossed, in per cent at one precision: the fewest decimals (one at
    least, three at most) at which the rate reads above the limit — '9%' said to be above a '9.1%'
    limit read as a contradiction (3/32 = 9.4 % rounded to 9 %).  A rate that is a whole per cent
    exactly (2 of 2: 100%) is written without decimals: no rounding, so no clash."""
    whole = abs(100 * rate - round(100 * rate)) < 1e-9
    for d in (1, 2, 3):
        a = f"{100 * rate:.0f}%" if whole else f"{100 * rate:.{d}f}%"
        b = f"{100 * limit:.{d}f}%"
        if float(a[:-1]) > float(b[:-1]):
            break
    return a, b


@functools.lru_cache(maxsize=256)  # (pure: the policy's one expected rate, and the chart is checked at every complaint)
def c_limits(c0: float, alpha: float = C_CHART_ALPHA) -> tuple[float, float]:
    """Exact Poisson limits of the c chart: (0, the largest count still in control).  A count signals
    when P(X ≥ count | c0) < ``alpha``.  The normal approximation c0 ± 3√c0 is far off at the small
    rates of complaints per producer: at c0 = 0.3 it put the limit at 1.94, so 2 complaints in a
    month signalled, a chance of 3.7 % (27 times the nominal 0.135 %); the exact limit is 3, and
    4 complaints signal (0.027 %)."""
    k = 1
    while poisson_at_least(k, c0) >= alpha:
        k += 1
    return 0.0, float(k - 1)


def _charted_value(values: tuple[Any, ...] | list[Any], dl: float | None) -> tuple[float | None, bool]:
    """The largest of a plan's n values, and whether it is a non-detect charted at half the
    detection limit; (None, False) when nothing can be charted (every value ND, no limit given)."""
    numbers = [v for v in values if v != "ND" and (dl is None or v >= dl)]
    if numbers:
        return max(numbers), False  # a detection is above any non-detect
    # every unit not detected: half the limit, or (no limit given) no place on the chart
    return (None, False) if dl is None or not values else (dl / 2, True)


_UPPER_ONLY = frozenset({"maximum", "plan"})
"""Rule kinds under which less is better (a legal maximum; a sampling plan's n/c/m/M, which judges
counts from above): only upper-side signals are raised on their series."""

_UNITLESS = frozenset({"pH", "无量纲", "-", ""})


def _falling(sg: SpcSignal) -> bool:
    """Rule 5 on a fall (6 results in a row each lower): its side is none, its direction in its words."""
    return sg.rule == "rule5" and sg.text_en.endswith("decreasing")
"""Units that are no unit: the value is said alone."""

# --------------------------------------------------------------------------- sampling


def on_sample_judged(file: "CreditFile", record: "SampleRecord", county: dict[str, CategoryRates], rules: "Rules",
                     charted: "Callable[[], list[SampleRecord]] | None" = None) -> list[dict[str, Any]]:
    """Feed one judged sample to its charts; returns signal descriptions (effect data).

    The item series chart results in the order they were sampled: a result sampled before a series' last point
    (a lab's report arriving late, a batch of reports out of order) is placed where it belongs, the series built
    again from ``charted()`` — the charted reports in sampling order — as after a correction.  In arrival order, a
    trend (rule 5) or an EWMA ran through dates back and forth."""
    policy = rules.policy.spc
    judgement = record.judgement
    category = file.profile.category
    rates = county.get(category)
    if rates is None:
        rates = county[category] = _build_rates()
    # (the Paretos and the pass-rate charts count the sample by its conclusion, SampleJudgement.counted: a failure
    # qrisk alone finds is the report's 合格 there; the item series chart the values either way)
    counted = judgement.counted  # (read once: it walks the items again at each read)
    if counted == "fail":
        # the Paretos count this sample before any signal quotes them
        _pareto_add(file.fluctuation, rates, judgement, period_of(record.sampled_on, policy.pass_rate_period))
    day = record.sampled_on.isoformat()
    fs = file.fluctuation
    late = _late_keys(file, record) if charted is not None and day < fs.last_sampled else frozenset()
    reports = charted() if late else []
    if late and any(r is record for r in reports):
        keys = frozenset(f"{record.product}|{i.item_code}" for i in judgement.items)
        out = _chart_items(file, record, county, rules, keys - late) if keys - late else []
        out += _rebuild(file, late, reports, record, county, rules, "按抽样日期补入后重新计算")[0]
    else:
        out = _chart_items(file, record, county, rules)
    # pass rate of this enterprise and of its category, per period, against the reference
    if counted in ("pass", "fail"):
        out += _pass_rate_add(file, rates, record, counted, category, policy)
    return out


def _late_keys(file: "CreditFile", record: "SampleRecord") -> frozenset[str]:
    """The item series of ``record`` whose last point was sampled after it."""
    series, day = file.fluctuation.series, record.sampled_on.isoformat()
    late = []
    for item in record.judgement.items:  # type: ignore[union-attr]
        s = series.get(f"{record.product}|{item.item_code}")
        if s is not None and s.recent and s.recent[-1][1] > day:
            late.append(s.key)
    return frozenset(late)


def _chart_items(file: "CreditFile", report: "SampleRecord", county: dict[str, CategoryRates] | None,
                 rules: "Rules", only: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """The measured items of ``report`` onto their item series: the signals they raise, as effect
    data.  ``county`` None: build the series without describing signals (a chart being built again);
    ``only``: just these series keys."""
    policy = rules.policy.spc
    judgement = report.judgement
    category = file.profile.category
    sampled_on = report.sampled_on.isoformat()
    fd = file.fluctuation.__dict__
    if sampled_on > fd["last_sampled"]:
        fd["last_sampled"] = sampled_on
    out: list[dict[str, Any]] = []
    all_series = file.fluctuation.series
    product = report.product
    sample_no, event_id, lab, batch = report.sample_no, report.event_id, report.lab, report.batch
    window = policy.series_window
    skip = report.not_retested  # (a re-test carries the first test's items it did not re-test: charted with the first test, if at all)
    rebaselines = file.fluctuation.rebaselines
    for item in judgement.items:
        f = item.__dict__  # (plain dict reads: this runs for every measured item)
        if skip and f["item_code"] in skip:
            continue
        if only is not None and f"{product}|{f['item_code']}" not in only:
            continue  # (first: a series built again walks every report on file for its few keys)
        kind = f["kind"]
        if kind is None or kind == "not_permitted" or f["verdict"] == "undetermined":
            continue  # nothing measurable to chart (no kind: unknown, or not applicable to the product), or any detection is already a failure
        if kind == "plan" and _zero_tolerance(rules, category, f["item_code"], judgement.basis_date):
            continue  # n/c=0/m=0 (铜绿假单胞菌 in water): any count fails the sample, a chart would only repeat it
        key = f"{product}|{f['item_code']}"
        values = f["values"]
        dl = f["detection_limit"]
        counted = kind == "plan" or _is_count(rules, category, item.item_code)
        zeros = dl is None and counted and any(v == 0 for v in values)
        if zeros:
            # a count reported as 0 is fewer than one colony: not detected below one counting unit, as an "ND" with
            # the lab's limit is (else a mostly-zero baseline charts as a spread and a detection after it says nothing)
            values, dl = tuple("ND" if v == 0 else v for v in values), 1.0
        if len(values) == 1:
            value = values[0]
            nd = value == "ND" or (dl is not None and value < dl)
            if nd:
                if dl is None:
                    continue  # not detected, below a limit nobody gave: no place on the chart
                value = dl / 2
        else:
            value, nd = _charted_value(values, dl)
            if value is None:
                continue
        if zeros and nd:
            value = 0.0  # the point keeps the count as reported (charted at half the counting unit, below it)
        series = all_series.get(key)
        if series is None:
            usl = _legal_maximum(rules, category, item.item_code, judgement.basis_date)
            series = all_series[key] = _build_series(
                key=key, product=product, item_code=item.item_code, item_name=item.item_name or item.item_code,
                unit=item.unit or "", usl=usl, recent=[],
                monitor=FluctuationMonitor(_monitor_config(policy, usl, counted)),
            )
        sd = series.__dict__
        if rebaselines and sd["recent"] and sd["recent"][-1][1] < sampled_on:
            # a supervisor's new baseline whose date falls between the last point and this one: this point starts it
            rebaseline = _rebaseline_between(rebaselines, product, f["item_code"], sd["recent"][-1][1], sampled_on)
            if rebaseline is not None:
                _restart(series, rebaseline, sampled_on)
        below = dl if nd else None  # a non-detect is [0, dl]: censored, not a point
        charted = value
        if sd["monitor"].config.log10 and charted <= 0.0:
            charted, below = 0.5, 1.0  # a count of 0 on a log chart: fewer than one colony, half the counting unit
        dl_before = sd["detection_limit"]
        if dl is not None:
            sd["detection_limit"] = dl
        monitor = sd["monitor"]
        baseline = monitor.phase == "I"
        if nd:
            sd["nd_points"] += 1
            if baseline:
                sd["baseline_nd"] += 1
        signals = monitor.update(charted, below=below)
        if baseline and monitor.phase == "II":
            # the limits froze on this point: a baseline mostly not detected defines none that mean anything
            sd["censored"] = sd["baseline_nd"] > policy.nd_share_max * (monitor.count - (sd["phases"][-1].start - 1 if sd["phases"] else 0))
        if signals:
            if kind in _UPPER_ONLY:
                # under a legal maximum or a sampling plan's m/M, less is better: a drop (chlorine
                # turning ND, colony counts falling after a hygiene fix) is no hazard, nor a steady fall
                signals = [sg for sg in signals if sg.side != "lower" and sg.rule != "cusum_lower" and not _falling(sg)]
            signals = _measurable(signals, monitor, sd["censored"], sd["detection_limit"])
        if sd["censored"] and not nd and monitor.phase == "II":
            # what is left to say of a series mostly not detected: a result close to the legal
            # maximum (a failure alerts on its own), or else a detection after a run of non-detects
            usl = sd["usl"]
            if usl is not None and value > usl:
                pass  # a failure: its own warning says it
            elif usl is not None and value >= policy.ewma_fraction * usl:
                signals.append(SpcSignal.make(
                    "result_near_limit", "spec", monitor.count, value, ucl=usl, side="upper",
                    detail={"fraction": value / usl, "threshold": policy.ewma_fraction, "usl": usl}))
            elif (freq := _detections_up(sd, policy)) is not None:
                signals.append(SpcSignal.make("nd_frequency", "i", monitor.count, value, side="upper", detail=freq))
            elif sd["nd_run"] >= policy.baseline and policy.nd_detection_note:
                signals.insert(0, SpcSignal.make("nd_detected", "i", monitor.count, value, side="upper",
                                                 detail={"run": sd["nd_run"], "detection_limit": sd["detection_limit"]}))
        sd["nd_run"] = sd["nd_run"] + 1 if nd else 0
        if sd["censored"]:
            flags = sd["nd_window"]
            flags.append(nd)
            if len(flags) > policy.baseline:
                del flags[0]
        recent = sd["recent"]
        previous = recent[-1] if recent else None
        point = (monitor.count, sampled_on, value, sample_no, event_id, lab, batch,
                 tuple([sg.rule for sg in signals if sg.index == monitor.count]) if signals else ())
        for sg in signals:
            if sg.index != monitor.count:  # a baseline point left out of the estimate: marked where it stands
                for j, p in enumerate(recent):
                    if p[0] == sg.index:
                        recent[j] = p[:7] + (p[7] + (sg.rule,),)
        recent.append(point)
        if len(recent) > window:
            del recent[0]
        if signals:
            if any(sg.rule not in NOTE_RULES for sg in signals):
                series.signals += 1  # batches with a signal, as the warnings and the risk score count them (not a note, not rules fired)
            if county is not None:
                out.append(_series_signal(file, series, signals, point, previous, county, category, rules, len(values), dl_before))
    return out


def _rebaseline_between(rebaselines: list[Rebaseline], product: str, item_code: str, after: str, upto: str) -> Rebaseline | None:
    """The new baseline a point sampled on ``upto`` starts, its series' last point sampled on ``after``: of the decisions
    covering the series dated in (after, upto], the latest (those before it had no point of their own); on one date,
    the first logged (a second one is the same decision)."""
    found: Rebaseline | None = None
    for r in rebaselines:
        if after < r.effective_from <= upto and r.covers(product, item_code) and (found is None or r.effective_from > found.effective_from):
            found = r
    return found


def _restart(series: Series, rebaseline: Rebaseline, sampled_on: str) -> None:
    """The series starts a new baseline at its next point: the monitor's limits, run rules, EWMA and CUSUM start
    afresh (``FluctuationMonitor.restart``: the point numbering runs on), and what described the old baseline —
    how much of it was not detected — is the new one's to find out.  Points and signals so far stay as they are."""
    sd = series.__dict__
    monitor = sd["monitor"]
    monitor.restart()  # (a baseline of 0 points never happens in the fold: policy.spc.baseline is at least 2)
    sd["phases"].append(_build_phase(start=monitor.count + 1, sampled_on=sampled_on, effective_from=rebaseline.effective_from,
                                     event_id=rebaseline.event_id, reason=rebaseline.reason, confirmed_by=rebaseline.confirmed_by))
    sd["baseline_nd"] = 0
    sd["censored"] = False
    sd["nd_run"] = 0
    sd["nd_window"] = []


def phase_of(series: Series, index: int) -> int:
    """The phase (1: from the series' first point; 2 after the first new baseline, …) point ``index`` belongs to."""
    return 1 + sum(1 for ph in series.phases if ph.start <= index)


def phase_zh(phase: SeriesPhase) -> str:
    """A new baseline as the credit file lists it: 基线重新确定于 YYYY-MM-DD：原因，确认人 …"""
    return f"基线重新确定于 {phase.effective_from}：{phase.reason}，确认人 {phase.confirmed_by}（自第 {phase.start} 批、{phase.sampled_on} 抽样起）"


def rebaselined(file: "CreditFile", rebaseline: Rebaseline, reports: list["SampleRecord"], county: dict[str, CategoryRates],
                rules: "Rules") -> tuple[list[str], list[dict[str, Any]]]:
    """A new baseline confirmed after results it covers were charted: every series it covers with a point sampled on
    or after ``effective_from`` is built again from ``reports`` (the charted reports in sampling order), so that
    those points start the new baseline — the same series as if the decision had come first.  The points before
    stay charted as they were.  A later point that raised nothing and signals against the new limits is returned
    (``_found_again``'s way), lest it count in the series' signals with nobody told.  Returns the keys built again,
    and those signals."""
    if file.profile is None:
        return [], []  # nothing is charted before the registration: the decision applies when the charts are built
    series = file.fluctuation.series
    keys = frozenset(k for k, s in series.items()
                     if rebaseline.covers(s.product, s.item_code) and s.recent and s.recent[-1][1] >= rebaseline.effective_from)
    if not keys:
        return [], []
    quiet = {(k, p[4]) for k in keys for p in series[k].recent if not p[7]}
    for key in keys:
        del series[key]
    out: list[dict[str, Any]] = []
    for report in reports:
        if report.sampled_on.isoformat() >= rebaseline.effective_from:
            for sig in _chart_items(file, report, county, rules, keys):
                if (sig["series"], report.event_id) in quiet and not sig.get("note"):
                    head = f"{sig['product']}·{sig['item_name']}："
                    rest = sig["text_zh"].removeprefix(head).replace("本批", "该批")
                    out.append({**sig, "sample_no": report.sample_no, "sampled_on": report.sampled_on.isoformat(),
                                "sample_event_id": report.event_id, "found_after_rebaseline": rebaseline.event_id,
                                "text_zh": (f"{head}自 {rebaseline.effective_from} 起重新确定基线后，抽样编号 {report.sample_no}"
                                            f"（{report.sampled_on.isoformat()}）的结果出现信号：{rest}"),
                                "text_en": (f"after the new baseline from {rebaseline.effective_from}, sample {report.sample_no} "
                                            f"signals: {sig['text_en']}")})
        else:
            _chart_items(file, report, None, rules, keys)
    return sorted(keys), out


NOTE_RULES = frozenset({"nd_detected", "nd_frequency"})
"""Rules that are information on a series mostly not detected, not control-chart signals: low severity, no score."""

ND_FREQUENCY_ALPHA = 0.01
"""How unlikely the detections of a mostly-ND series' last results must be, beside its baseline's, to be noted."""


def _detections_up(sd: dict[str, Any], policy: "SpcPolicy") -> dict[str, Any] | None:
    """A series mostly not detected whose detections have become frequent: with the result just detected, k of the
    last ``spc.baseline`` results detected, against x of the baseline's n — noted when so many of the detections
    falling in the recent window is less likely than ``ND_FREQUENCY_ALPHA`` (Fisher's exact test, one-sided: the
    baseline's share is itself an estimate from a few results, so a binomial at that share would read a baseline
    that by chance detected little as a rise).  A series mostly ND has no σ to chart; its detections are what it
    has.  Without it, bromate drifting upwards gave one note, at its first detection, then silence until 80 % of
    its limit.  A note, as the first detection's: its power from 8 and 8 results is modest (after a baseline of
    non-detects, 6 detections of the last 8 are noted, 5 are not: P = 1.3 %)."""
    b = policy.baseline
    window = sd["nd_window"][-(b - 1):] if b > 1 else []
    k = 1 + sum(1 for nd in window if not nd)
    m = len(window) + 1
    n = max(b, sd["baseline_nd"])
    x = n - sd["baseline_nd"]
    if k < 2:
        return None
    chance = _fisher_upper(k, m, x + k, n + m)
    if chance >= ND_FREQUENCY_ALPHA:
        return None
    return {"detected": k, "of": m, "baseline_detected": x, "baseline": n, "p_value": chance,
            "detection_limit": sd["detection_limit"]}


def _fisher_upper(k: int, drawn: int, successes: int, total: int) -> float:
    """P(X ≥ k), X hypergeometric: ``drawn`` of ``total`` results, ``successes`` of them detections."""
    denom = math.comb(total, drawn)
    return sum(math.comb(successes, i) * math.comb(total - successes, drawn - i)
               for i in range(k, min(drawn, successes) + 1)) / denom


def _failed_codes(judgement: Any) -> list[str]:
    """The items and sums a sample counts as failing on in the Paretos: none unless it counts as a failure."""
    if judgement.counted != "fail":
        return []
    codes: list[str] = judgement.counted_failed_codes()  # the report's 不合格 items qrisk passes among them
    return codes


def _pareto_add(fs: FluctuationState, rates: CategoryRates, judgement: Any, period: str) -> None:
    codes = _failed_codes(judgement)
    if not codes:
        return
    for code in codes:
        rates.failing_items[code] = rates.failing_items.get(code, 0) + 1
        fs.failing_items[code] = fs.failing_items.get(code, 0) + 1
    items = _period_items(rates, period)
    if items is not None:
        for code in codes:
            items[code] = items.get(code, 0) + 1


def _period_items(rates: CategoryRates, period: str) -> dict[str, int] | None:
    """The category's failing items of ``period``, started for a period not yet charted; None for one charted
    before they were kept (restored from an older snapshot): counting only its later failures would make a
    Pareto that looks whole and is not."""
    items = rates.period_items.get(period)
    if items is None and period not in rates.periods:
        items = rates.period_items[period] = {}
    return items


def _period_items_remove(rates: CategoryRates, period: str, codes: list[str]) -> None:
    items = rates.period_items.get(period)
    if items is not None:
        _pareto_remove(items, codes)


def _pareto_remove(counts: dict[str, int], codes: list[str]) -> None:
    for code in codes:
        left = counts.get(code, 0) - 1
        if left > 0:
            counts[code] = left
        else:
            counts.pop(code, None)


def _pass_rate_add(file: "CreditFile", rates: CategoryRates, record: "SampleRecord", counted: str, category: str,
                   policy: "SpcPolicy") -> list[dict[str, Any]]:
    """One judged (pass or fail) sample into the pass-rate charts of the enterprise and its category:
    the p-chart signals it raises.  ``counted``: the sample's conclusion (``SampleJudgement.counted``)."""
    out: list[dict[str, Any]] = []
    fs = file.fluctuation
    period = period_of(record.sampled_on, policy.pass_rate_period)
    failed = counted == "fail"
    for scope, counts in (("enterprise", fs.pass_rate), ("category", rates.periods)):
        pc = counts.get(period)
        if pc is None:
            if scope == "category":
                _period_items(rates, period)  # (before the period is charted: from here its failing items are all kept)
            pc = counts[period] = _build_count(n=0, failed=0, signalled=False)
        pc.n += 1
        if not failed:
            continue  # a pass only widens n: no signal can start from it
        pc.failed += 1
        if scope == "category":
            pc.failures.append((file.enterprise_id, record.sample_no, record.event_id))
        signal = _p_signal(file, rates, pc, scope, period, category, policy, record)
        if signal is not None:
            out.append(signal)
    return out


def _p_signal(file: "CreditFile", rates: CategoryRates, pc: PeriodCount, scope: str, period: str, category: str,
              policy: "SpcPolicy", record: "SampleRecord") -> dict[str, Any] | None:
    """The p chart's check of ``period`` after a failure counted in it (``pc``, the enterprise's or, ``scope`` "category",
    the county's): its signal, marking the period signalled, or None."""
    reference = policy.reference_failure(category)
    # one failure is already a sampling.failed warning; the chart speaks when failures recur beyond what
    # the reference rate explains (in counts: no rounding of a rate against a limit to misread).  Only
    # upwards: fewer failures than the reference is no hazard
    if pc.signalled or pc.failed < 2:
        return None  # (before the limit: most failures are a period's first, and the limit costs more than the rest)
    limit = p_count_limit(reference, pc.n)
    if pc.failed <= limit:
        return None
    lcl, ucl = 0.0, limit / pc.n
    if scope == "category" and len({f[0] for f in pc.failures}) < policy.category_min_enterprises:
        return None  # one producer's failures: its own chart says so; the county's waits for another's
    pc.signalled = True
    # the chance is the evidence: 2 of 2 is unlikely at the reference rate, yet no proof
    # that the failures share a cause, so the text suggests and does not conclude
    chance = binomial_at_least(pc.failed, pc.n, reference)
    rate_zh, ucl_zh = _distinct_pcts(pc.failed / pc.n, ucl)
    seen = (f"抽检 {pc.n} 批、不合格 {pc.failed} 批（{rate_zh}），明显高于参考不合格率 {reference:.2%}（控制上限 {ucl_zh}）："
            f"按此参考不合格率，{pc.n} 批中不合格 {pc.failed} 批及以上的概率约为 {chance_zh(chance)}"
            # (checked at every failure, the chart has several chances a period to signal by chance: measured,
            # 0.1 % of quarters at 3 batches, 0.3 % at 30, 0.5 % at 90, 0.7 % at 1000; p_count_limit)
            f"（为本次判断的概率；{'本季度' if 'Q' in period else '本月'}每出现一批不合格即判断一次，"
            f"偶然出现此信号的机会约 0.1%–0.7%，批次越多越高）")
    items = rates.period_items.get(period)
    return {
        "chart": "p", "rule": "rule1", "scope": scope, "category": category, "period": period,
        "value": pc.failed / pc.n, "n": pc.n, "failed": pc.failed, "center": reference,
        "lcl": lcl, "ucl": ucl, "p_at_least": chance,
        "text_zh": (f"{period_zh(period)}{seen}，提示可能存在系统性问题"
                    if scope == "enterprise" else
                    f"本县{_CATEGORY_ZH.get(category, category)}类 {period_zh(period)}{seen}；"
                    f"不合格批次来自 {len({f[0] for f in pc.failures})} 家企业（{_whose_zh(pc.failures)}）"),
        "text_en": (f"{period}: failure rate {pc.failed}/{pc.n} above the upper limit {ucl:.1%} for the reference rate {reference:.2%} ({scope}); "
                    f"P(at least {pc.failed} of {pc.n} at the reference rate) = {chance:.2g}"),
        "evidence": {
            # the enterprise's failing items of this period, and the category's (kept per period: the
            # category's other producers' files are not read at signal time); a period charted before
            # they were kept gives the category's of all time, and says so
            "pareto_enterprise": _recent_pareto(file, period, policy.pass_rate_period),
            "pareto_category": _sorted_counts(items if items is not None else rates.failing_items),
            "pareto_scope": {"enterprise": period, "category": period if items is not None else "all"},
            "nearby": nearby_events(file, record.occurred_at, policy.evidence_days),
            **({"failures": [{"enterprise_id": e, "sample_no": n, "event_id": i} for e, n, i in pc.failures]}
               if scope == "category" else {}),
        },
    }


def _whose_zh(failures: list[tuple[str, str, str]]) -> str:
    """The enterprises behind a category's failures, with how many each: W03 2 批、W07 1 批."""
    per: dict[str, int] = {}
    for eid, _, _ in failures:
        per[eid] = per.get(eid, 0) + 1
    return "、".join(f"{eid} {n} 批" for eid, n in sorted(per.items(), key=lambda kv: (-kv[1], kv[0])))


def _drop_failure(pc: PeriodCount, enterprise_id: str, sample_no: str) -> None:
    """A failure no longer counted leaves a category's list of failures.  The chart counts a sample, not a
    report: the entry was made under the report first counted (the original), and the report that takes it
    away may be another of the same sample (its re-test, a correction of that) — so the sample's last entry goes."""
    for j in range(len(pc.failures) - 1, -1, -1):
        if pc.failures[j][0] == enterprise_id and pc.failures[j][1] == sample_no:
            del pc.failures[j]
            return


_CHART_RULES = frozenset({"i", "ewma", "cusum"})  # limits in the unit of the results (not mr, not spec)


def _measurable(signals: list[SpcSignal], monitor: FluctuationMonitor, censored: bool, dl: float | None) -> list[SpcSignal]:
    """The signals that rest on limits the data can support: none from the control charts of a
    series mostly not detected, none crossing an upper limit below the detection limit."""
    if censored:
        # its EWMA against the legal maximum still means something; its σ, Cpk and limits do not
        return [sg for sg in signals if sg.rule == "ewma_near_limit"]
    if dl is None:
        return signals
    ucl = monitor.ucl
    return [sg for sg in signals
            if sg.chart not in _CHART_RULES or sg.side == "lower"
            or (ucl >= dl and (sg.chart != "ewma" or sg.ucl is None or sg.ucl >= dl))]


# a new series per (product, item) and a count per period are built from the fold's own values
_build_series = builder(Series)
_build_phase = builder(SeriesPhase)
_build_count = builder(PeriodCount)
# a Kafka worker folds each event in a county of one file: its category charts are new every time
_build_rates = builder(CategoryRates)

_CATEGORY_ZH = {"packaged_water": "包装饮用水", "pastry": "糕点", "other": "其他"}


_CONFIGS: dict[tuple[int, float | None, bool], tuple["SpcPolicy", MonitorConfig]] = {}


def monitor_config(policy: "SpcPolicy", usl: float | None, log: bool = False) -> MonitorConfig:
    """One frozen config per (policy, legal maximum, scale): building it is most of a new series' cost.
    ``log``: microbial counts (a sampling plan's, or 霉菌's under a legal maximum), charted as log10.  Their
    checks against a legal maximum (Cpk, the EWMA at 80 % of it) are not run: both are normal-theory
    statements about the raw values, which counts are not, and on the log scale 80 % of the limit is
    0.1 log10 below it, no warning ahead of a failure; a count above its maximum fails and alerts on its own.
    The reporting step is inferred from the results as written (pH 6.5: 0.1), not on a log10 scale."""
    key = (id(policy), usl, log)
    hit = _CONFIGS.get(key)
    if hit is None or hit[0] is not policy:
        hit = _CONFIGS[key] = (policy, MonitorConfig(
            baseline=policy.baseline, rules=tuple(policy.rules.get("i", [1])), ewma_lambda=policy.ewma_lambda,
            ewma_L=policy.ewma_L, cusum_k=policy.cusum_k, cusum_h=policy.cusum_h,
            cpk_min=policy.cpk_min, cpk_min_points=policy.cpk_min_points, ewma_fraction=policy.ewma_fraction,
            cpk_ewma_margin=policy.cpk_ewma_margin,
            estimated_limits=policy.estimated_limits, resolution=not log, usl=None if log else usl,
            detect_ewma="ewma" in policy.detectors, detect_cusum="cusum" in policy.detectors, log10=log,
        ))
    return hit[1]


_monitor_config = monitor_config  # (the fold's own name for it; ``qrisk spc`` draws the fold's chart with it)


_LIMITS: dict[tuple[int, str, str], tuple[Any, tuple[tuple[dt.date | None, dt.date | None, bool, float | None], ...]]] = {}


def _item_limits(rules: "Rules", category: str, item_code: str, basis: dt.date) -> tuple[bool, float | None]:
    """(zero tolerance, legal maximum) under the item's rule in force on ``basis``.  Each item's editions are
    read from the catalogue once: walking its pydantic rules cost more than charting the point."""
    catalogue = rules.catalogue
    key = (id(catalogue), category, item_code)
    hit = _LIMITS.get(key)
    if hit is None or hit[0] is not catalogue:
        item = catalogue.item(category, item_code)
        # per edition, in the catalogue's order (the first in force decides, as ``rule_on``): a plan that tolerates
        # nothing (n/c=0/m=0); a legal maximum (a range, pH 5.0-7.0, sits mid-band by design: "near the maximum"
        # means nothing there).  A catalogue limit of 10 is the number 10.0, as a validated Series holds it
        editions = () if item is None else tuple(
            (r.applies_from, r.applies_to, r.c == 0 and r.m == 0, float(r.max) if r.kind == "maximum" else None)
            for r in item.rules)
        hit = _LIMITS[key] = (catalogue, editions)
    for start, end, zero, usl in hit[1]:
        if (start is None or start <= basis) and (end is None or basis < end):
            return zero, usl
    return False, None


_COUNTS: dict[tuple[int, str, str], tuple[Any, bool]] = {}


def _is_count(rules: "Rules", category: str, item_code: str) -> bool:
    """Whether the item's catalogue unit is a microbial count (CFU/…, MPN/…), as the campaign's comparison
    tests read it: counted colonies scatter by a factor whatever rule judges them — 霉菌 under a legal maximum
    of 150 CFU/g as much as 菌落总数 under a sampling plan."""
    catalogue = rules.catalogue
    key = (id(catalogue), category, item_code)
    hit = _COUNTS.get(key)
    if hit is None or hit[0] is not catalogue:
        from processors.campaign import COUNT_DIMENSIONS  # (not at import: campaign → risk → this module)
        unit = catalogue.item_unit(category, item_code)
        hit = _COUNTS[key] = (catalogue, unit is not None and unit.dimension.startswith(COUNT_DIMENSIONS))
    return hit[1]


def _zero_tolerance(rules: "Rules", category: str, item_code: str, basis: dt.date) -> bool:
    return _item_limits(rules, category, item_code, basis)[0]


def _legal_maximum(rules: "Rules", category: str, item_code: str, basis: dt.date) -> float | None:
    return _item_limits(rules, category, item_code, basis)[1]


def _series_signal(file: "CreditFile", series: Series, signals: list[SpcSignal], point: SeriesPoint, previous: SeriesPoint | None,
                   county: dict[str, CategoryRates], category: str, rules: "Rules", units: int = 1,
                   dl_before: float | None = None) -> dict[str, Any]:
    """One effect per series point, with every rule that fired on it and the evidence once."""
    policy = rules.policy.spc
    occurred = next((s.occurred_at for s in reversed(file.samples) if s.event_id == point[4]), None)
    day = dt.date.fromisoformat(point[1])
    recent = day - dt.timedelta(days=rules.policy.risk.dynamic.window_days)
    changes = []
    if previous is not None and previous[5] != point[5]:
        changes.append({"what": "lab", "from": previous[5], "to": point[5], "text_zh": f"检验机构由“{previous[5]}”变为“{point[5]}”"})
    if dl_before is not None and series.detection_limit is not None and dl_before != series.detection_limit:
        changes.append({"what": "detection_limit", "from": dl_before, "to": series.detection_limit,
                        "text_zh": f"检出限由 {_num(dl_before)} 变为 {_num(series.detection_limit)}{'' if series.unit in _UNITLESS else ' ' + series.unit}"})
    # said in the message too: a different lab or method moves results by itself, the first cause to rule out
    noted = "；注意：本批" + "，".join(c["text_zh"] for c in changes) + "，差异可能来自检验而非产品，请先核实" if changes else ""
    first = signals[0]
    dicts = [sg.to_dict() for sg in signals]
    for d in dicts:
        if d["lcl"] is not None and d["chart"] in _CHART_RULES:
            d["lcl"] = _nonneg(d["lcl"])
    note = all(sg.rule in NOTE_RULES for sg in signals)
    basis = [sg.text_zh for sg in signals if sg.rule not in NOTE_RULES]
    phases = series.phases
    # a signal of a new phase is against the limits of the baseline the supervisor had re-established: said so
    # (not a check against the legal maximum, which no baseline sets)
    charted = phases and any(sg.chart in ("i", "mr", "ewma", "cusum") and sg.rule not in NOTE_RULES for sg in signals)
    phased = f"（控制限依据 {phases[-1].effective_from} 起重新确定的基线：{phases[-1].reason}）" if charted else ""
    # value, centre and limits all of one chart: an EWMA signal's value is the EWMA that crossed its limit (the batch's
    # own result, inside that limit, beside it), a signal on this batch's result that result as reported, a baseline
    # point's the point's
    if first.index != point[0]:
        value, batch = first.value, {}
    elif first.chart in ("ewma", "mr", "cusum"):
        value, batch = first.value, {"batch_value": point[2]}
    else:
        value, batch = point[2], {}
    out = {
        "chart": first.chart, "rule": first.rule, "scope": "series", "series": series.key,
        "product": series.product, "item_code": series.item_code, "item_name": series.item_name, "unit": series.unit,
        "usl": series.usl, "index": first.index, "value": value, **batch, "center": first.center,
        "lcl": _nonneg(first.lcl), "ucl": first.ucl, "side": first.side,
        "signals": dicts,
        "text_zh": f"{series.product}·{series.item_name}：{plain_zh(signals, series, units)}{noted}"
                   + ("（判异依据：" + "；".join(basis) + "）" if basis else "") + phased,
        "text_en": f"{series.product} / {series.item_code}: " + "; ".join(plain_en(sg, series) for sg in signals)
                   + (f" (limits from the baseline re-established from {phases[-1].effective_from})" if charted else ""),
        # the chart's phase (1: from its first point; each new baseline a supervisor confirmed starts the next)
        "phase": len(phases) + 1, "phase_from": phases[-1].effective_from if phases else None,
        "rebaseline_event_id": phases[-1].event_id if phases else None,
        "evidence": {
            "limits": finite_limits(series.monitor.limits) or {},
            "points": [{**point_dict(p), "phase": phase_of(series, p[0])} for p in series.recent] if phases
                      else [point_dict(p) for p in series.recent],
            # (the last risk window, a year, up to this point's sampling: the causes a Pareto can point to)
            "pareto_enterprise": _recent_pareto(file, since=recent, until=day),
            "pareto_category": _sorted_counts(county[category].failing_items if category in county else {}),
            "pareto_scope": {"enterprise": f"{recent.isoformat()}/{day.isoformat()}", "category": "all"},
            "nearby": nearby_events(file, occurred, policy.evidence_days) if occurred else [],
            "changes": changes,
        },
    }
    if first.index != point[0]:
        # a baseline point the limits left out, said when this batch froze them: the signal is about that point's
        # report, not this one's, so a correction or retraction of that report takes it back
        at = {p[0]: p[4] for p in series.recent}
        at[point[0]] = point[4]
        out["rests_on_event_ids"] = sorted({at[sg.index] for sg in signals if sg.index in at})
    if note:
        out["note"] = True  # information (a detection after non-detects), not a control-chart signal
    return out


def _nonneg(x: float | None) -> float | None:
    """A measured result is never negative: a lower limit below 0 is 0."""
    return x if x is None or x >= 0.0 else 0.0


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.4g}"


def _reported(x: float | None) -> str:
    """A count as reported: a whole number in full (17558), else as ``_num``."""
    return f"{x:.0f}" if x is not None and float(x).is_integer() else _num(x)


def _count(x: float | None) -> str:
    """A colony count as labs write it: three significant figures, no exponent (17558 → 17600, 7.5 → 7.5)."""
    if x is None:
        return "—"
    return f"{float(f'{x:.3g}'):.0f}" if x >= 100 else f"{x:.3g}"


def plain_zh(signals: list[SpcSignal], series: Series, units: int = 1) -> str:
    """What the signals of one point mean, in words a supervisor acts on, with the numbers behind
    them (the control-chart rules they rest on are quoted after, for the analyst).  ``units``: how many
    units of a sampling plan the point is the largest of."""
    # a space before the unit, as the judgement's messages write it (0.01 mg/L); none for a scale (pH 6.15, not 6.15 pH)
    u = "" if series.unit in _UNITLESS else f" {series.unit}"
    log = series.monitor.config.log10  # colony counts, charted as log10: their centre is a geometric mean
    num = _count if log else _num
    # a plan's point is the largest of its n units (the plan judges the worst): said, or "本批 6000" reads as the batch's count
    mean = ("各批最大值的几何均值" if units > 1 else "几何均值") if log else "均值"
    this = f"本批 {units} 个样品单元中最大值" if units > 1 else "本批"
    jumped = any(sg.rule == "rule1" and sg.chart == "i" for sg in signals)
    phrases: list[str] = []
    against_past = False
    # the EWMA over its control limit and near the legal limit: one average, said once
    ewma_both = {"ewma", "ewma_near_limit"} <= {sg.rule for sg in signals}
    for sg in signals:
        high = sg.side != "lower"
        hi_lo = "高" if high else "低"
        d = sg.detail or {}
        if sg.rule == "cpk_low":
            n = d.get("points")
            past = f"以往 {n} 批" if n else "以往"
            # (its own name: ``mean`` is what the closing bracket calls the centre line).  Judged on the EWMA, σ is
            # frozen: the level came near the limit, not the spread grew; judged on the baseline, either did
            ewma = d.get("basis") == "ewma"
            basis = (f"近几批的加权平均值 {_num(d.get('mean'))}{u} 与{past}结果的标准差 {_num(d.get('sigma'))}{u}" if ewma else
                     f"{past}结果的均值 {_num(d.get('mean'))}{u} 与标准差 {_num(d.get('sigma'))}{u}")
            text = (f"{'近几批均值接近标准限值' if ewma else '过程能力不足'}：按{basis} 估算，过程能力指数 Cpk={d.get('cpk', 0.0):.2f}，"
                    f"低于 {d.get('cpk_min', 0.0):g}，存在超出标准限值 {_num(d.get('usl'))}{u} 的风险")
        elif sg.rule == "nd_detected":
            limit = f"，标准限值 {_num(series.usl)}{u}" if series.usl is not None else ""
            text = (f"以往连续 {d.get('run')} 批均未检出（检出限 {_num(d.get('detection_limit'))}{u}），"
                    f"本批检出 {_num(sg.value)}{u}{limit}；仅作提示，请留意后续批次")
        elif sg.rule == "nd_frequency":
            text = (f"近 {d.get('of')} 批中 {d.get('detected')} 批检出（检出限 {_num(d.get('detection_limit'))}{u}），"
                    + (f"以往 {d.get('baseline')} 批中仅 {d.get('baseline_detected')} 批检出" if d.get("baseline_detected")
                       else f"以往 {d.get('baseline')} 批均未检出")
                    + "，检出频次上升"
                    f"（两者检出率相同时出现这种差异的概率约为 {chance_zh(d.get('p_value', 0.0))}）；仅作提示，请留意后续批次")
        elif sg.rule == "ewma_near_limit":
            if ewma_both:
                continue  # (said with the EWMA's own signal)
            text = f"近几批的加权平均值 {_num(d.get('ewma'))}{u} 已达标准限值 {_num(d.get('usl'))}{u} 的 {d.get('fraction', 0.0):.0%}"
        elif sg.rule == "result_near_limit":
            text = (f"本批 {_num(sg.value)}{u} 已达标准限值 {_num(d.get('usl'))}{u} 的 {d.get('fraction', 0.0):.0%}，尚未超标"
                    f"（以往多数批次未检出，检出限 {_num(series.detection_limit)}{u}）")
        elif sg.rule == "baseline_outlier":
            at = next((p for p in series.recent if p[0] == sg.index), None)
            which = f"第 {sg.index} 批（{at[1]}，抽样编号 {at[3]}）" if at is not None else f"第 {sg.index} 批"
            shown = _reported(sg.value) if log else _num(sg.value)
            text = (f"用于确定正常波动范围的以往{which}结果 {shown}{u} 明显{hi_lo}于其余各批"
                    f"（正常波动{'上' if high else '下'}限 {num(sg.ucl if high else sg.lcl)}{u}），未计入正常波动范围的估计，请核实该批次")
            against_past = True
        elif sg.rule == "rule1" and sg.chart == "mr":
            text = f"与上一批相差 {_num(sg.value)}{u}，超出正常的批间波动（{_num(sg.ucl)}{u}）"
        elif sg.rule == "rule1":
            text = f"{this} {_reported(sg.value) if log else _num(sg.value)}{u} 明显{hi_lo}于以往水平（正常波动{'上' if high else '下'}限 {num(sg.ucl if high else sg.lcl)}{u}）"
            against_past = True
        elif sg.rule == "ewma":
            # "持续" only when no single result beyond the limits dragged it over: one jump moves it by λ times itself
            text = (f"近几批的加权{'几何' if log else ''}平均值 {num(sg.value)}{u}"
                    + (f"，受本批拉{hi_lo}，超出其控制{'上' if high else '下'}限 {num(sg.ucl if high else sg.lcl)}{u}" if jumped
                       else f"，持续偏{hi_lo}"))
            near = next((x.detail or {} for x in signals if x.rule == "ewma_near_limit"), None) if ewma_both else None
            if near is not None:
                text += f"，已达标准限值 {_num(near.get('usl'))}{u} 的 {near.get('fraction', 0.0):.0%}"
            against_past = True
        elif sg.rule.startswith("cusum"):
            text = f"结果累积偏{hi_lo}，估计{mean}已{'升' if high else '降'}至约 {num(d.get('mean_estimate'))}{u}"
            against_past = True
        elif sg.rule == "rule5":
            text = f"连续 6 批持续{'下降' if _falling(sg) else '上升'}"
        elif sg.rule == "rule8":
            # both sides: not "偏高"
            text = "连续 8 批均明显偏离以往均值且高低两侧都有，提示过程在两种水平间切换（班次、原料、检验机构）"
        elif sg.rule == "rule4":
            text = f"连续 8 批均{hi_lo}于以往均值"
            against_past = True
        elif sg.rule == "rule6":
            text = "连续 14 批忽高忽低交替，提示两种来源（班次、原料、检验机构）混在一起"
        elif sg.rule == "rule7":
            text = "连续 15 批异常集中在均值附近，提示数据来源或检验方法有变"
        else:  # the run rules 2, 3: several recent points beyond a zone on one side
            text = f"近几批多次偏{hi_lo}"
            against_past = True
        if text not in phrases:
            phrases.append(text)
    limit = f"，标准限值 {_num(series.usl)}{u}" if series.usl is not None else ""
    nd = "；未检出按检出限的一半计" if series.nd_points else ""
    centre = (series.monitor.limits or {}).get("center")
    past = f"（以往{mean} {num(centre)}{u}{limit}{nd}）" if against_past and centre is not None else ""
    return "；".join(phrases) + past


def plain_en(sg: SpcSignal, series: Series) -> str:
    """The English beside: the numbers where the rule's own text has none."""
    d = sg.detail or {}
    u = f" {series.unit}" if series.unit else ""
    if sg.rule == "cpk_low":
        ewma = d.get("basis") == "ewma"
        mean = "EWMA of recent results" if ewma else "mean"
        n = f" of the last {d['points']} results" if d.get("points") else ""
        return (f"{'the recent mean is near the limit' if ewma else 'capability too low'}: Cpk {d.get('cpk', 0.0):.2f} < {d.get('cpk_min', 0.0):g} from the {mean} {_num(d.get('mean'))}{u} "
                f"and the standard deviation {_num(d.get('sigma'))}{u}{n}; risk of exceeding the limit {_num(d.get('usl'))}{u}")
    if sg.rule == "result_near_limit":
        return (f"the result {_num(sg.value)}{u} is {d.get('fraction', 0.0):.0%} of the limit {_num(d.get('usl'))}{u}, "
                f"in a series mostly not detected")
    if sg.rule == "nd_frequency":
        return (f"{d.get('detected')} of the last {d.get('of')} results detected, against {d.get('baseline_detected')} of "
                f"{d.get('baseline')} in the baseline (Fisher's exact P = {d.get('p_value', 0.0):.2g}); for information")
    if sg.rule == "nd_detected":
        return (f"detected at {_num(sg.value)}{u} after {d.get('run')} results in a row not detected "
                f"(detection limit {_num(d.get('detection_limit'))}{u}); for information")
    return sg.text_en


def series_heading_zh(total: int, signalled: int, pass_rate_periods: list[str]) -> str:
    """The heading of a credit file's chart summaries: its measured series and, when the enterprise's
    own pass-rate chart (p chart) signalled, in which periods; a file whose only signal is on that
    chart must not read "出现信号的 0 个".  ``pass_rate_periods``: "2025Q4" or "2025-11" keys."""
    text = f"共 {total} 个，出现信号的 {signalled} 个"
    if pass_rate_periods:
        periods = "、".join(period_zh(p) for p in sorted(set(pass_rate_periods)))
        text += f"；抽检不合格率控制图（p 图）出现信号 {len(set(pass_rate_periods))} 次：{periods}"
    return text


def finite_limits(values: dict[str, Any] | None) -> dict[str, Any] | None:
    # Cpk is infinite when σ is 0 (all results equal): JSON has no infinity, and "no limit" is what it means;
    # a measured result is never negative, so neither is a lower limit shown
    if values is None:
        return None
    out = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}
    for k in ("lcl", "ewma_lcl"):
        if k in out:
            out[k] = _nonneg(out[k])
    return out


def point_dict(p: SeriesPoint) -> dict[str, Any]:
    out = dict(zip(POINT_FIELDS, p))
    out["rules"] = list(p[7])
    return out


def _sorted_counts(counts: dict[str, int]) -> list[dict[str, Any]]:
    return [{"item_code": k, "count": v} for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def _recent_pareto(file: "CreditFile", period: str | None = None, kind: str = "quarter",
                   since: dt.date | None = None, until: dt.date | None = None) -> list[dict[str, Any]]:
    """The enterprise's failing items among the samples of ``period``, or sampled from ``since`` to ``until``: the
    causes a signal's Pareto points to are the recent ones (a 2025 Q2 signal listed 耗氧量 ×3 of 2023 first).  The
    samples counted as the charts count them: each sample's report in force, by its conclusion."""
    counts: dict[str, int] = {}
    if period is not None:
        since, until = period_span(period)
    for s in file.reports_sampled(since, until):
        d = s.__dict__
        day = d["sampled_on"]
        j = d["judgement"]
        # (by the conclusion: a sample the lab failed on an item qrisk passes is among them)
        if j is None or d["superseded_by"] is not None or j.counted != "fail":
            continue
        if period is not None:
            if period_of(day, kind) != period:
                continue
        for code in _failed_codes(j):
            counts[code] = counts.get(code, 0) + 1
    return _sorted_counts(counts)


def overturned(file: "CreditFile", original: "SampleRecord", county: dict[str, CategoryRates], rules: "Rules",
               check: bool = True) -> list[dict[str, Any]]:
    """A failure overturned by its re-test leaves the Paretos and the failure counts of the
    pass-rate charts (its n stays: the sample was taken).  A pass-rate signal the failures left no
    longer support is withdrawn (``no_longer_out``: returned as effect data); one they still support stands.
    ``check`` False: the caller checks, once what else the event changes is counted too."""
    judgement = original.judgement
    if judgement is None or judgement.counted != "fail" or file.profile is None:
        return []
    signalled = signalled_periods(file, county)
    fs = file.fluctuation
    rates = county.get(file.profile.category) or CategoryRates()
    codes = _failed_codes(judgement)
    period = period_of(original.sampled_on, rules.policy.spc.pass_rate_period)
    for counts in (fs.failing_items, rates.failing_items):
        _pareto_remove(counts, codes)
    _period_items_remove(rates, period, codes)
    for periods in (fs.pass_rate, rates.periods):
        pc = periods.get(period)
        if pc is not None and pc.failed > 0:
            pc.failed -= 1
            if periods is rates.periods:
                _drop_failure(pc, file.enterprise_id, original.sample_no)
    return no_longer_out(file, county, signalled, rules, original.sample_no) if check else []


def signalled_periods(file: "CreditFile", county: dict[str, CategoryRates]) -> list[tuple[str, str, PeriodCount]]:
    """The pass-rate charts' periods that signalled: (scope, period, its count), the enterprise's and its category's."""
    out = [("enterprise", k, pc) for k, pc in file.fluctuation.pass_rate.items() if pc.signalled]
    rates = county.get(file.profile.category) if file.profile is not None else None
    if rates is not None:
        out += [("category", k, pc) for k, pc in rates.periods.items() if pc.signalled]
    return out


def no_longer_out(file: "CreditFile", county: dict[str, CategoryRates], signalled: list[tuple[str, str, PeriodCount]],
                   rules: "Rules", sample_no: str) -> list[dict[str, Any]]:
    """The periods among ``signalled`` whose failures no longer lie beyond the limits, once a re-test, a correction or
    a retraction took one away: their chart may signal again (a genuine later failure of the quarter was silent), and
    the signal is withdrawn (``fluctuation.signal_withdrawn``) — it stood on two failures whichever of them went, and
    said 不合格 2 批 of one.  The enterprise's: its alert closes, its score entry goes.  The county's category chart's
    (scope "category", kept in the fold's county, so only the embedded runtime has one): its county alert closes,
    whoever's file holds it, and no score moves; it is withdrawn too when its failures, still beyond the limit, now
    come from fewer producers than ``spc.category_min_enterprises`` (one producer's failures are its own chart's)."""
    policy = rules.policy.spc
    category = file.profile.category if file.profile is not None else None
    reference = policy.reference_failure(category) if category is not None else 0.0
    out: list[dict[str, Any]] = []
    for scope, period, pc in signalled:
        beyond = pc.failed >= 2 and pc.failed > p_count_limit(reference, pc.n)
        producers = len({f[0] for f in pc.failures})
        if beyond and (scope != "category" or producers >= policy.category_min_enterprises):
            continue
        pc.signalled = False
        if scope == "category":
            name = f"全县{_CATEGORY_ZH.get(category, category)}类"
            whose = f"{file.profile.name}（{file.enterprise_id}）" if file.profile is not None else file.enterprise_id
            why_zh, why_en = ((f"，不合格批次仅来自 {producers} 家企业（{_whose_zh(pc.failures)}），"
                               f"不足县级信号所需的 {policy.category_min_enterprises} 家（单个企业的问题由其自身的抽检不合格率图反映）",
                               f"; the failures come from {producers} producer(s) only, fewer than {policy.category_min_enterprises}")
                              if beyond else ("，未超出控制上限", ", within the limits"))
            out.append({"chart": "p", "scope": "category", "category": category, "period": period, "n": pc.n, "failed": pc.failed,
                        "withdrawn": True,
                        "text_zh": (f"{whose}抽样编号 {sample_no} 的不合格结论不再计入后，{name} {period_zh(period)}抽检 {pc.n} 批、"
                                    f"不合格 {pc.failed} 批{why_zh}，县级抽检不合格率信号撤销"),
                        "text_en": (f"{category} {period} (county): with {file.enterprise_id}'s sample {sample_no} no longer counted as failed, "
                                    f"{pc.failed} of {pc.n} failed{why_en}: the county's pass-rate signal is withdrawn")})
        elif scope == "enterprise":
            when = period_zh(period)
            out.append({"chart": "p", "scope": "enterprise", "period": period, "n": pc.n, "failed": pc.failed, "withdrawn": True,
                        "text_zh": (f"抽样编号 {sample_no} 的不合格结论不再计入后，{when}抽检 {pc.n} 批、不合格 {pc.failed} 批，"
                                    f"未超出控制上限，抽检不合格率信号撤销，不再计入风险分"),
                        "text_en": (f"{period}: with sample {sample_no}'s failure no longer counted, {pc.failed} of {pc.n} failed, "
                                    f"within the limits: the pass-rate chart's signal is withdrawn")})
    return out


def reinstated(file: "CreditFile", original: "SampleRecord", county: dict[str, CategoryRates], rules: "Rules",
               why_zh: str = "的不合格结论恢复计入后，") -> list[dict[str, Any]]:
    """The reverse of ``overturned``: a failure that counts again (its re-test was not admitted, a re-test corrected back
    to 不合格, …) re-enters the Paretos and the failure counts of the pass-rate charts, and each chart, the enterprise's
    and its category's, is checked again as at any failure: a period a re-test had left within its limit (its signal
    withdrawn, its alert closed) is beyond it again with the failure back, and would otherwise stay silent until
    another failure came.  Returns the p-chart signals, their text saying why the failure counts (``why_zh``, after the
    sample number)."""
    judgement = original.judgement
    if judgement is None or judgement.counted != "fail" or file.profile is None:
        return []
    policy = rules.policy.spc
    fs = file.fluctuation
    category = file.profile.category
    rates = county.get(category)
    if rates is None:
        rates = county[category] = CategoryRates()
    period = period_of(original.sampled_on, policy.pass_rate_period)
    _pareto_add(fs, rates, judgement, period)
    out: list[dict[str, Any]] = []
    for scope, periods in (("enterprise", fs.pass_rate), ("category", rates.periods)):
        pc = periods.get(period)
        if pc is None or pc.failed >= pc.n:
            continue
        pc.failed += 1
        if scope == "category":
            pc.failures.append((file.enterprise_id, original.sample_no, original.event_id))
        signal = _p_signal(file, rates, pc, scope, period, category, policy, original)
        if signal is not None:
            out.append(_counted_again(file, signal, original.sample_no, why_zh))
    return out


def _counted_again(file: "CreditFile", signal: dict[str, Any], sample_no: str, why_zh: str) -> dict[str, Any]:
    """A p-chart signal raised when a failure counts again: said of that sample, whose failure brought the period back
    beyond its limit (the alert reopens on it, not on a new sample)."""
    again = f"抽样编号 {sample_no} {why_zh}"
    if signal["scope"] == "category":
        whose = f"{file.profile.name}（{file.enterprise_id}）" if file.profile is not None else file.enterprise_id
        again = whose + again
    return {**signal, "counted_again": sample_no, "text_zh": again + signal["text_zh"],
            "text_en": f"with sample {sample_no}'s failure counted again: {signal['text_en']}"}


def _as_charted(report: "SampleRecord") -> dict[str, tuple[Any, ...]]:
    """What a report gives each item series (product|item): the item's values as judged and what
    decides whether and how they are charted."""
    return {f"{report.product}|{i.item_code}": (tuple(i.values), i.detection_limit, i.kind, i.verdict, report.judgement.basis_date)  # type: ignore[union-attr]
            for i in report.judgement.items}  # type: ignore[union-attr]


def refailed(file: "CreditFile", before: "SampleRecord", after: "SampleRecord", county: dict[str, CategoryRates],
             rules: "Rules") -> None:
    """A failure upheld by its re-test on other items than first (the re-test cleared some, the ones it
    did not re-test still fail): the Paretos of the enterprise and its category count the items that
    failed in the conclusion, the re-test's (in the period the sample is charted in: the one replaced)."""
    old, new = _failed_codes(before.judgement), _failed_codes(after.judgement)
    if old == new or file.profile is None:
        return
    fs = file.fluctuation
    period = period_of(before.sampled_on, rules.policy.spc.pass_rate_period)
    _pareto_remove(fs.failing_items, old)
    rates = county.get(file.profile.category)
    if rates is not None:
        _pareto_remove(rates.failing_items, old)
        _period_items_remove(rates, period, old)
    else:
        rates = county[file.profile.category] = _build_rates()
    _pareto_add(fs, rates, after.judgement, period)


def recounted(file: "CreditFile", before: "SampleRecord", after: "SampleRecord", county: dict[str, CategoryRates],
              rules: "Rules") -> list[dict[str, Any]]:
    """A sample's report replaced by its correction (the same sample, a new report of it): the
    Paretos and the pass-rate charts of the enterprise and of its category count the sample by
    ``after`` instead of ``before`` — in n for the period of its sampling date when it is judged
    pass or fail, in the failures and the failing items when it failed — so they follow the latest
    report as the counts do.  A signal already raised stands while the failures still support it, and is
    withdrawn when they no longer do (``no_longer_out``), as after a re-test; a failure the correction adds
    is checked like any failure, and its p-chart signals are returned as ``on_sample_judged`` returns them.

    The item series are ``recharted``'s (a re-test, by contrast, leaves the original's point
    charted: the original's result was the lab's, the re-test's is another test of the sample)."""
    if file.profile is None:
        return []
    policy = rules.policy.spc
    fs = file.fluctuation
    signalled = signalled_periods(file, county)
    old = before.judgement
    if old is not None and old.counted in ("pass", "fail"):
        rates = county.get(old.category)
        period = period_of(before.sampled_on, policy.pass_rate_period)
        codes = _failed_codes(old)
        _pareto_remove(fs.failing_items, codes)
        charts = [fs.pass_rate]
        if rates is not None:  # (a Kafka worker's county holds the file's categories afresh: nothing to take back there)
            _pareto_remove(rates.failing_items, codes)
            _period_items_remove(rates, period, codes)
            charts.append(rates.periods)
        for periods in charts:
            pc = periods.get(period)
            if pc is None:
                continue
            if pc.n > 0:
                pc.n -= 1
            if codes and pc.failed > 0:
                pc.failed -= 1
                if rates is not None and periods is rates.periods:
                    _drop_failure(pc, file.enterprise_id, before.sample_no)
    new = after.judgement
    now = new.counted if new is not None else None
    if now not in ("pass", "fail"):
        # undetermined: not in the pass-rate charts
        return no_longer_out(file, county, signalled, rules, before.sample_no) if signalled else []
    category = file.profile.category
    rates = county.get(category)
    if rates is None:
        rates = county[category] = _build_rates()
    if now == "fail":
        _pareto_add(fs, rates, new, period_of(after.sampled_on, policy.pass_rate_period))  # type: ignore[arg-type]
    out = _pass_rate_add(file, rates, after, now, category, policy)  # type: ignore[arg-type]
    # (after the report's own count: a failure corrected into another failure leaves its period as out as it was)
    return out + no_longer_out(file, county, signalled, rules, before.sample_no) if signalled else out


def recharted(file: "CreditFile", before: "SampleRecord", after: "SampleRecord", reports: list["SampleRecord"],
              county: dict[str, CategoryRates], rules: "Rules") -> tuple[list[str], list[dict[str, Any]]]:
    """A correction's values in place of the report it corrects, on the item series: every series
    either report charts (product|item) is built again from ``reports`` — the current report of each
    charted sample, in the order they were charted, ``after`` among them where ``before`` stood.

    The monitors are incremental: a point cannot be taken out of an EWMA, a CUSUM or a frozen
    baseline, so the series starts again from its first point.  A lab's typo left in a baseline
    would widen the limits for good and hide the drift the chart is there to see.  The signals the
    corrected point raises are returned as ``on_sample_judged`` returns them; later points are
    charted again, what they raised stands, as before the correction, and a later point that raised
    nothing before and signals now (a baseline typo, 1.00 for 0.81, corrected: the limits narrow and a
    later 0.91 lies beyond them) is returned too, its text saying it is that batch's, found again on the
    corrected series — counted in the series' signals with no alert, it showed in the credit file as
    "出现信号的 1 个" that nobody was told of.  Returns the keys of the series built again, and those signals."""
    if file.profile is None or before.judgement is None or after.judgement is None:
        return [], []
    old, new = _as_charted(before), _as_charted(after)
    # a series whose point the correction leaves as it was is left alone
    keys = frozenset(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if not keys:
        return [], []
    out, had = _rebuild(file, keys, reports, after, county, rules, "更正后重新计算")
    return sorted(k for k in keys if k in file.fluctuation.series or k in had), out


CHECKPOINT_DAYS = 90
"""How far before a rebuilt series' focus (a late report, a correction) its state is kept (``_Checkpoint``): the next
report a few weeks late resumes from there."""

CHECKPOINT_AFTER = 24
"""The fewest charted reports a checkpoint stands after: a shorter history is charted again in less than the copy
costs (a young file's series are built from their first point, as before)."""


class _Prefix:
    """The charted reports a checkpoint stands after, with what ``_chart_items`` reads of them that the fold may
    change in place (shared by the series checkpointed at one place)."""

    __slots__ = ("reports", "judgements", "retested", "rules", "category", "rebaselines")

    def __init__(self, reports: list["SampleRecord"], rules: "Rules", category: str, rebaselines: int):
        self.reports = reports
        self.judgements = [r.__dict__["judgement"] for r in reports]
        self.retested = [r.__dict__["not_retested"] for r in reports]
        self.rules, self.category, self.rebaselines = rules, category, rebaselines

    def holds(self, reports: list["SampleRecord"], rules: "Rules", category: str, rebaselines: int) -> bool:
        """Are the first of ``reports`` still these, as they were?"""
        mine = self.reports
        if rules is not self.rules or category != self.category or rebaselines != self.rebaselines or len(reports) <= len(mine):
            return False
        return (all(a is b for a, b in zip(reports, mine)) and all(r.__dict__["judgement"] is j for r, j in zip(mine, self.judgements))
                and all(r.__dict__["not_retested"] == t for r, t in zip(mine, self.retested)))


class _Checkpoint:
    """A series as it stood after the charted reports of ``prefix`` (the first of them when it was built again), kept
    beside the fold's state (not state: nothing to snapshot; a restored file builds its series in full once, and keeps
    one from then on).  A late report or a correction builds the series again from its first point (the monitors are
    incremental): on a file with years of sampling that was a walk of every report, each item charted again, for every
    report arriving a day late.  When the charted reports before it are still the very ones (the same reports with
    the same judgements, under the same rules, category and baselines), the series resumes from it instead: the same
    state as building it from the first point gives, for a replay of the last weeks only."""

    __slots__ = ("series", "saved", "prefix", "first")

    def __init__(self, live: Series, prefix: _Prefix, first: tuple[int, int]):
        key = id(live)
        self.series = weakref.ref(live, lambda ref, key=key: _forget(key, ref))  # (no cycle through the checkpoint)
        self.saved, self.prefix, self.first = _copied(live), prefix, first


def _copied(series: Series) -> Series:
    """A copy of the series that the fold's later points cannot reach: its lists copied, the monitor's state copied
    (``copy.deepcopy`` took ~10 times as long, copying the frozen configurations and every number too)."""
    d = series.__dict__
    new = series.model_copy()
    nd = new.__dict__
    nd["recent"], nd["nd_window"], nd["phases"] = list(d["recent"]), list(d["nd_window"]), list(d["phases"])
    nd["monitor"] = _slots_copied(d["monitor"])
    return new


def _slots_copied(obj: Any) -> Any:
    """A monitor (or its run-rule tracker) copied slot by slot: lists, dicts and sets copied (they hold numbers), a
    nested object with slots copied the same way; the rest (numbers, tuples, frozen configurations) shared."""
    cls = type(obj)
    new = cls.__new__(cls)
    for name in cls.__slots__:
        try:
            value = getattr(obj, name)
        except AttributeError:
            continue  # (a slot not set: left unset)
        if type(value) in (list, dict, set):
            value = type(value)(value)
        elif hasattr(type(value), "__slots__") and not getattr(type(value), "__dataclass_params__", None):
            value = _slots_copied(value)
        object.__setattr__(new, name, value)
    return new


_CHECKPOINTS: dict[int, _Checkpoint] = {}


def _forget(key: int, ref: "weakref.ref[Series]") -> None:
    """A series gone: its checkpoint with it (unless a new series with its id already has its own)."""
    cp = _CHECKPOINTS.get(key)
    if cp is not None and cp.series is ref:
        del _CHECKPOINTS[key]


def _checkpoint(series: Series) -> _Checkpoint | None:
    cp = _CHECKPOINTS.get(id(series))
    return cp if cp is not None and cp.series() is series else None


def _first_place(report: "SampleRecord", position: int, key: str) -> tuple[int, int]:
    """Where a series' first point stands among the charted reports (the report's place, the item's in it): series
    built again are made in that order, and a series resumed takes its place in it."""
    for j, item in enumerate(report.judgement.items):  # type: ignore[union-attr]
        if f"{report.product}|{item.item_code}" == key:
            return position, j
    return position, -1


def _rebuild(file: "CreditFile", keys: frozenset[str], reports: list["SampleRecord"], focus: "SampleRecord",
             county: dict[str, CategoryRates], rules: "Rules", why_zh: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The series ``keys`` built again from ``reports`` (in the order they are charted): ``focus``'s signals, and
    those of later points that raised nothing before and signal now (``_found_again``); the keys that existed.
    The series resume from their ``_Checkpoint`` when each has one that still holds, and leave one
    ``CHECKPOINT_DAYS`` before ``focus``."""
    fs = file.fluctuation
    series = fs.series
    had = [k for k in keys if k in series]
    # the later points known to have raised nothing (in a series' recent points: of one beyond them nobody knows)
    quiet = {(k, p[4]) for k in had for p in series[k].recent if not p[7]}
    category, rebaselines = file.profile.category, len(fs.rebaselines)  # type: ignore[union-attr]
    resumed = {k: _checkpoint(series[k]) for k in had} if len(had) == len(keys) else {}
    if not all(cp is not None and cp.prefix.holds(reports, rules, category, rebaselines) for cp in resumed.values()):
        resumed = {}
    for key in had:
        del series[key]
    first: dict[str, tuple[int, int]] = {}
    starts: dict[str, int] = {}
    # (made again in the order of their first points, as a build from the first point makes them)
    for key, cp in sorted(resumed.items(), key=lambda kv: kv[1].first):  # type: ignore[union-attr]
        series[key], first[key], starts[key] = cp.saved, cp.first, len(cp.prefix.reports)  # type: ignore[union-attr]
    begin, last_start = (min(starts.values()), max(starts.values())) if starts else (0, 0)
    keep_from = focus.sampled_on - dt.timedelta(days=CHECKPOINT_DAYS)
    to_keep = set(keys)
    prefix: _Prefix | None = None
    out: list[dict[str, Any]] = []
    later = False
    for i in range(begin, len(reports)):
        report = reports[i]
        if to_keep and i >= CHECKPOINT_AFTER and report.sampled_on >= keep_from:
            for key in sorted(to_keep):
                if key in first and i >= starts.get(key, 0):
                    if prefix is None or len(prefix.reports) != i:
                        prefix = _Prefix(reports[:i], rules, category, rebaselines)
                    live = series[key]
                    _CHECKPOINTS[id(live)] = _Checkpoint(live, prefix, first[key])
                    to_keep.discard(key)
        only = keys if i >= last_start else frozenset(k for k in keys if starts[k] <= i)
        made = [k for k in keys if k not in first] if len(first) < len(keys) else ()
        if report is focus:
            out = _chart_items(file, report, county, rules, only)
            later = True
        elif later and quiet:
            for sig in _chart_items(file, report, county, rules, only):
                if (sig["series"], report.event_id) in quiet and not sig.get("note"):
                    out.append(_found_again(sig, report, focus, why_zh))
        else:
            _chart_items(file, report, None, rules, only)
        for key in made:
            if key in series:
                first[key] = _first_place(report, i, key)
    return out, had


def _found_again(sig: dict[str, Any], report: "SampleRecord", after: "SampleRecord", why_zh: str = "更正后重新计算") -> dict[str, Any]:
    """A later point's signal that a correction (or a result dated before it, arriving after) brought out: said of
    that batch (its sample, not the corrected one's)."""
    head = f"{sig['product']}·{sig['item_name']}："
    rest = sig["text_zh"].removeprefix(head).replace("本批", "该批")
    return {**sig, "sample_no": report.sample_no, "sampled_on": report.sampled_on.isoformat(), "sample_event_id": report.event_id,
            "found_after_correction": after.sample_no,
            "text_zh": (f"{head}抽样编号 {after.sample_no} 的检验结果{why_zh}，其后抽样编号 {report.sample_no}"
                        f"（{report.sampled_on.isoformat()}）的结果出现信号：{rest}"),
            "text_en": f"after the correction of sample {after.sample_no}, sample {report.sample_no} signals: {sig['text_en']}"}


def uncharted(file: "CreditFile", removed: "SampleRecord", reports: list["SampleRecord"], rules: "Rules",
              county: dict[str, CategoryRates] | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    """A report taken off the item series (a retraction, ``sampling.retracted``): every series it charted is built
    again from ``reports`` — the current report of each charted sample, in the order they are charted, without
    it — as ``recharted`` builds a corrected one (a point cannot be taken out of an EWMA, a CUSUM or a frozen
    baseline).  Later points are charted again; a signal they raised stands, and one a later point raises that it
    did not before is returned (``_found_again``), as after a correction.  Returns the keys of the series built
    again (a series only it had is gone), and those signals."""
    if file.profile is None or removed.judgement is None:
        return [], []
    keys = frozenset(_as_charted(removed))
    series = file.fluctuation.series
    had = [k for k in keys if k in series]
    if not had:
        return [], []
    only = frozenset(had)
    quiet = {(k, p[4]) for k in had for p in series[k].recent if not p[7]} if county is not None else set()
    for key in had:
        del series[key]
    out: list[dict[str, Any]] = []
    for report in reports:
        if report is removed:
            continue
        if quiet and report.sampled_on >= removed.sampled_on:
            for sig in _chart_items(file, report, county, rules, only):
                if (sig["series"], report.event_id) in quiet and not sig.get("note"):
                    out.append(_found_again(sig, report, removed, "撤销后重新计算"))
        else:
            _chart_items(file, report, None, rules, only)
    return sorted(had), out


def nearby_events(file: "CreditFile", moment: dt.datetime, days: int) -> list[dict[str, Any]]:
    """Complaints, inspections with findings and rectifications within ``days`` of ``moment``."""
    lo, hi = moment - dt.timedelta(days=days), moment + dt.timedelta(days=days)
    found: list[dict[str, Any]] = []
    for c in file.complaints:
        if lo <= c.received_at <= hi:
            # (evidence an alert carries to group chats and webhooks: the caller's words without the caller)
            found.append({"kind": "complaint", "at": c.received_at.isoformat(), "id": c.complaint_id, "verified": c.verified,
                          "text": mask_personal_info(c.text)})
    for i in file.inspections_between(lo, hi):  # (indexed by date: a file holds years of them)
        if (i.findings or i.result != "符合") and i.superseded_by is None:  # (one per inspection)
            found.append({"kind": "inspection", "at": i.occurred_at.isoformat(), "id": i.inspection_id, "result": i.result,
                          "findings": [f"{f.code} {f.description}（{f.severity}）" for f in i.findings]})
    for r in file.rectifications_ordered(lo, hi):
        found.append({"kind": "rectification", "at": r.ordered_at.isoformat(), "id": r.rectification_id, "status": r.status, "what": r.what})
    return sorted(found, key=lambda e: (e["at"], e["kind"], e["id"]))


# --------------------------------------------------------------------------- complaints


def complaints_unfounded(file: "CreditFile", received_at: dt.datetime, rules: "Rules") -> dict[str, Any] | None:
    """When the complaint chart signalled for a month and every complaint of that month has since been
    found unfounded (核查不属实): the signal's data, withdrawn — it rested on nothing.  Else None."""
    month = period_of(rules.local_date(received_at), "month")
    pc = file.fluctuation.complaints.get(month)
    if pc is None or not pc.signalled:
        return None
    charted = rules.policy.spc.complaint_chart_categories
    those = [c for c in file.complaints if period_of(rules.local_date(c.received_at), "month") == month and c.category in charted]
    if not those or any(c.resolved_at is None or c.verified for c in those):
        return None
    return {"chart": "c", "scope": "enterprise", "period": month, "complaint_ids": [c.complaint_id for c in those],
            "text_zh": f"{period_zh(month)}投诉 {len(those)} 件经核查均不属实，该月投诉数信号不再计入风险分",
            "text_en": f"{month}: all {len(those)} complaints were found unfounded; the complaint chart's signal no longer counts"}


def complaint_uncharted(file: "CreditFile", record: Any, rules: "Rules", corrected_to: str | None = None) -> dict[str, Any] | None:
    """A complaint withdrawn (``complaint.withdrawn``, already out of ``file.complaints``) leaves its month's count; a
    signal the month no longer carries over the limit is withdrawn — its data, else None (and a later complaint may
    signal again).  A month whose remaining complaints were all found 不属实 is ``complaints_unfounded``'s.
    ``corrected_to``: the complaint stays, its category corrected to one the chart does not count (``record`` as it was)."""
    policy = rules.policy.spc
    if record.category not in policy.complaint_chart_categories:
        return None
    month = period_of(rules.local_date(record.received_at), "month")
    pc = file.fluctuation.complaints.get(month)
    if pc is None or pc.n <= 0:
        return None
    pc.n -= 1
    _, ucl = c_limits(policy.complaints_per_month)
    if not pc.signalled or pc.n > ucl:
        return complaints_unfounded(file, record.received_at, rules) if pc.signalled else None
    pc.signalled = False
    those = [c.complaint_id for c in file.complaints if c.category in policy.complaint_chart_categories
             and period_of(rules.local_date(c.received_at), "month") == month]
    if corrected_to is not None:
        return {"chart": "c", "scope": "enterprise", "period": month, "complaint_ids": those, "corrected_complaint": record.complaint_id,
                "text_zh": (f"投诉编号 {record.complaint_id} 的类别已更正为{corrected_to}（投诉数控制图不计），{period_zh(month)}投诉剩 {pc.n} 件，"
                            f"未超出控制上限 {ucl:.0f} 件，信号撤销"),
                "text_en": f"{month}: complaint {record.complaint_id} was recategorised out of the chart; {pc.n} complaints, not above the limit of {ucl:.0f}"}
    return {"chart": "c", "scope": "enterprise", "period": month, "complaint_ids": those, "withdrawn_complaint": record.complaint_id,
            "text_zh": f"投诉编号 {record.complaint_id} 已撤回，{period_zh(month)}投诉剩 {pc.n} 件，未超出控制上限 {ucl:.0f} 件，信号撤销",
            "text_en": f"{month}: complaint {record.complaint_id} was withdrawn; {pc.n} complaints, not above the limit of {ucl:.0f}"}


def _verified_zh(file: "CreditFile", month: str, rules: "Rules") -> str:
    """How many of the month's charted complaints are substantiated so far: a chart of complaints not yet looked
    into must say so (the signal is withdrawn if all are found 不属实)."""
    charted = rules.policy.spc.complaint_chart_categories
    those = [c for c in file.complaints if c.category in charted and period_of(rules.local_date(c.received_at), "month") == month]
    verified = sum(1 for c in those if c.verified)
    if verified == len(those):
        return "（均已核实属实）"
    return f"（其中 {verified} 件核实属实，{len(those) - verified} 件尚未核实或不属实）" if verified else "（均尚未核实属实）"


def on_complaint(file: "CreditFile", received_at: dt.datetime, rules: "Rules", category: str | None = None) -> list[dict[str, Any]]:
    """c chart: complaints this month (of the categories it counts) against the expected rate per producer."""
    policy = rules.policy.spc
    if category is not None and category not in policy.complaint_chart_categories:
        return []
    month = period_of(rules.local_date(received_at), "month")
    counts = file.fluctuation.complaints
    pc = counts.get(month)
    if pc is None:
        pc = counts[month] = _build_count(n=0, failed=0, signalled=False)
    pc.n += 1
    c0 = policy.complaints_per_month
    lcl, ucl = c_limits(c0)
    if pc.n > ucl and not pc.signalled:
        pc.signalled = True
        chance = poisson_at_least(pc.n, c0)
        # the month's complaints by name: the alert says which (its refs and evidence), not only how many
        those = [c for c in file.complaints if c.category in policy.complaint_chart_categories
                 and period_of(rules.local_date(c.received_at), "month") == month]
        return [{
            "chart": "c", "rule": "rule1", "scope": "enterprise", "period": month, "value": pc.n,
            "center": c0, "lcl": lcl, "ucl": ucl, "p_at_least": chance, "complaint_ids": [c.complaint_id for c in those],
            "complaints": [{"complaint_id": c.complaint_id, "received_on": rules.local_date(c.received_at).isoformat(), "category": c.category,
                            "product": c.product, "verified": c.verified} for c in those],
            "text_zh": (f"{period_zh(month)}投诉 {pc.n} 件{_verified_zh(file, month, rules)}，超出控制上限 {ucl:.0f} 件（预期每月 {c0:g} 件；"
                        f"按此，一个月投诉 {pc.n} 件及以上的概率约为 {chance_zh(chance)}）"),
            "text_en": (f"{month}: {pc.n} complaints, above the upper limit of {ucl:.0f} (expected {c0:g} a month; "
                        f"P(at least {pc.n} | Poisson {c0:g}) = {chance:.2g})"),
            "evidence": {"nearby": nearby_events(file, received_at, policy.evidence_days),
                         "pareto_enterprise": _recent_pareto(file, since=(day := rules.local_date(received_at)) - dt.timedelta(
                             days=rules.policy.risk.dynamic.window_days), until=day)},
        }]
    return []
