"""The p chart's count limit (``p_count_limit``) is computed in O(√n) work, and its result is the one the walk it
replaced gave, for every reference rate and quarter size: the limit decides which failures signal, so a count one
off would change what the fold computes.  The walk (k up from 1, an O(n) tail per k) cost 1.3 s a failed batch at
10,000 batches in a quarter, and a bulk import of a county slowed threefold as its quarter filled."""
from __future__ import annotations

import math

import pytest

from processors import fluctuation
from processors.fluctuation import P_CHART_ALPHA, binomial_at_least, p_count_limit


def _reference_limit(p0: float, n: int, alpha: float | None = None) -> int:
    """The limit as the fold computed it before (FOLD_VERSION 73): k walked up from 1 while P(X ≥ k) ≥ alpha, each
    tail summed term by term in logs as ``binomial_at_least`` did then.  The terms are computed once per (p0, n) —
    the same floats by the same formula — and ``math.fsum`` rounds their exact sum, so each tail is bit for bit the
    old function's, at a cost a test can pay up to n = 20,000."""
    if alpha is None:
        alpha = P_CHART_ALPHA / max(1.0, n * p0)
    lp, lq, lgn = math.log(p0), math.log1p(-p0), math.lgamma(n + 1)
    pmf = [math.exp(lgn - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq) for i in range(n + 1)]

    def at_least(k: int) -> float:
        if k <= 0:
            return 1.0
        if k > n:
            return 0.0
        if k > n * p0:
            return min(1.0, math.fsum(pmf[k:]))
        return max(0.0, min(1.0, 1.0 - math.fsum(pmf[:k])))

    k = 1
    while at_least(k) >= alpha:
        k += 1
    return k - 1


_RATES = (1e-7, 1e-4, 0.001, 0.005, 0.019, 0.02, 0.0296, 0.05, 0.1, 0.3, 0.5, 0.9, 0.999)
"""The three default references (packaged water, pastry, other), and tiny and large rates a policy may set."""


@pytest.mark.parametrize("p0", _RATES)
def test_the_limit_is_the_walk_s_for_every_quarter_up_to_400_batches(p0):
    p_count_limit.cache_clear()
    got = [p_count_limit(p0, n) for n in range(1, 401)]
    assert got == [_reference_limit(p0, n) for n in range(1, 401)]


@pytest.mark.parametrize("p0, sizes", [
    (1e-7, (1000, 20000)), (1e-4, (1000, 5000, 20000)), (0.001, (2000, 20000)), (0.019, (1000, 2000, 4999, 5000, 10000, 20000)),
    (0.02, (1000, 2000, 5000, 10000, 20000)), (0.0296, (1000, 2000, 5000, 10000, 12345, 20000)),
    (0.05, (2000, 10000)), (0.1, (1000, 5000)), (0.3, (1000, 3000)), (0.5, (997, 2000)), (0.9, (1000,)), (0.999, (1000, 3000)),
])
def test_the_limit_is_the_walk_s_in_a_county_s_large_quarter(p0, sizes):
    for n in sizes:
        assert p_count_limit(p0, n) == _reference_limit(p0, n), (p0, n)


@pytest.mark.parametrize("p0, n", [(0.019, 14), (0.02, 300), (0.0296, 2000), (0.1, 50), (0.5, 101)])
def test_a_tail_at_alpha_itself_is_decided_as_the_walk_decided_it(p0, n):
    """alpha set to a tail exactly (and one float either side): the recurrence's sum and the walk's differ in the last
    bits, and only the walk's own sum (``binomial_at_least``) can say on which side of alpha the tail lies."""
    for k in range(max(1, int(n * p0) - 2), int(n * p0) + 12):
        tail = binomial_at_least(k, n, p0)
        if not 0.0 < tail < 0.25:
            continue
        for alpha in (tail, math.nextafter(tail, 0.0), math.nextafter(tail, 1.0)):
            assert p_count_limit(p0, n, alpha) == _reference_limit(p0, n, alpha), (p0, n, k, alpha)


@pytest.mark.parametrize("alpha", [1e-12, 1e-6, 0.01, 0.2, 0.3, 0.6])
def test_the_limit_is_the_walk_s_at_any_alpha(alpha):
    """Large alphas (no chart uses one) take the walk itself: the shortcut past n·p0 is proven below ½ only."""
    for p0, n in ((0.019, 40), (0.02, 1000), (0.3, 77), (0.5, 400)):
        assert p_count_limit(p0, n, alpha) == _reference_limit(p0, n, alpha), (p0, n, alpha)


def test_the_tails_the_walk_skips_are_at_least_a_half():
    """The shortcut's premise, the binomial's median at ⌊n·p0⌋ or above, on the walk's own sums, up to n = 20,000."""
    for p0 in _RATES:
        for n in (1, 2, 3, 7, 50, 399, 1000, 4999, 20000):
            k = int(n * p0)
            if k >= 1:
                assert binomial_at_least(k, n, p0) >= 0.5, (p0, n)


def test_a_check_in_a_large_quarter_costs_a_few_terms_in_logs(monkeypatch):
    """The cost that made a bulk import slow: ~n log-gamma terms per k, k walked from 1 (1.3 s at 10,000 batches).
    Now one term in logs per check (three log-gamma calls), the rest by recurrence."""
    calls = 0
    lgamma = math.lgamma

    def counted(x: float) -> float:
        nonlocal calls
        calls += 1
        return lgamma(x)

    monkeypatch.setattr(fluctuation.math, "lgamma", counted)
    p_count_limit.cache_clear()
    try:
        limits = [p_count_limit(0.019, n) for n in (2000, 5000, 10000)]
    finally:
        p_count_limit.cache_clear()
    assert limits == [64, 138, 252]
    assert calls <= 3 * 3 + 10, calls  # (+ a few should a tail fall within a hair of alpha: none does here)
