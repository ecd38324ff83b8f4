"""Control-chart constants for subgroups of n = 2..25.

d2 and d3 (mean and standard deviation of the range of n standard normal
values) are tabulated to 9 decimals, computed once by Simpson integration of
E[R] and E[R^2] (the test suite re-derives d2 and checks the closed forms
d2(2) = 2/sqrt(pi), d3(2) = sqrt(2 - 4/pi), d2(3) = 3/sqrt(pi)).  c4 is exact
from the gamma function.  The derived factors A2, A3, B3, B4, D3, D4 are
computed from those instead of copied from a 3-decimal textbook table, the
way qcc and Minitab do it: limits then agree with sigma-based formulas to
floating-point precision, and differ from a hand calculation with the rounded
table values only in the fourth significant figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_SUBGROUP = 2
MAX_SUBGROUP = 25

_D2 = {
    2: 1.128379167, 3: 1.692568751, 4: 2.058750746, 5: 2.325928947,
    6: 2.534412721, 7: 2.704356751, 8: 2.847200612, 9: 2.970026324,
    10: 3.077505462, 11: 3.172872704, 12: 3.258455280, 13: 3.335980354,
    14: 3.406763108, 15: 3.471826890, 16: 3.531982786, 17: 3.587883962,
    18: 3.640063758, 19: 3.688963023, 20: 3.734950120, 21: 3.778335830,
    22: 3.819384643, 23: 3.858323423, 24: 3.895348148, 25: 3.930629220,
}

_D3 = {
    2: 0.852502466, 3: 0.888368004, 4: 0.879808203, 5: 0.864081941,
    6: 0.848039686, 7: 0.833205336, 8: 0.819831490, 9: 0.807834275,
    10: 0.797050674, 11: 0.787314621, 12: 0.778478341, 13: 0.770416202,
    14: 0.763023096, 15: 0.756211430, 16: 0.749908089, 17: 0.744051784,
    18: 0.738590853, 19: 0.733481496, 20: 0.728686346, 21: 0.724173341,
    22: 0.719914808, 23: 0.715886735, 24: 0.712068175, 25: 0.708440766,
}


def _check_n(n: int) -> int:
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"subgroup size must be an int, got {n!r}")
    if n < MIN_SUBGROUP or n > MAX_SUBGROUP:
        raise ValueError(
            f"subgroup size {n} outside the tabulated range "
            f"{MIN_SUBGROUP}..{MAX_SUBGROUP}")
    return n


def d2(n: int) -> float:
    return _D2[_check_n(n)]


def d3(n: int) -> float:
    return _D3[_check_n(n)]


def c4(n: int) -> float:
    # c4 is defined for any n >= 2; lgamma keeps large n from overflowing.
    if n < 2:
        raise ValueError(f"c4 needs n >= 2, got {n}")
    return math.sqrt(2.0 / (n - 1)) * math.exp(
        math.lgamma(n / 2.0) - math.lgamma((n - 1) / 2.0))


@dataclass(frozen=True, slots=True)
class SubgroupConstants:
    n: int
    d2: float
    d3: float
    c4: float
    A2: float
    A3: float
    B3: float
    B4: float
    D3: float
    D4: float


def subgroup_constants(n: int) -> SubgroupConstants:
    _check_n(n)
    dd2, dd3, cc4 = _D2[n], _D3[n], c4(n)
    root_n = math.sqrt(n)
    s_spread = 3.0 * math.sqrt(1.0 - cc4 * cc4) / cc4
    return SubgroupConstants(
        n=n, d2=dd2, d3=dd3, c4=cc4,
        A2=3.0 / (dd2 * root_n),
        A3=3.0 / (cc4 * root_n),
        # Negative lower factors mean "no lower limit": textbooks print 0.
        B3=max(0.0, 1.0 - s_spread),
        B4=1.0 + s_spread,
        D3=max(0.0, 1.0 - 3.0 * dd3 / dd2),
        D4=1.0 + 3.0 * dd3 / dd2,
    )


CONSTANTS = {n: subgroup_constants(n) for n in range(MIN_SUBGROUP, MAX_SUBGROUP + 1)}
