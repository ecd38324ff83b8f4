"""SPC charts checked against published worked examples and hand calculations.

Each test's docstring says where its data and expected numbers come from and
whether they are *published* (printed in the source; compared at the printed
precision, plus the exact formula to 1e-9) or *hand-computed* (the textbook
formula evaluated independently in the test).
"""

from __future__ import annotations

import math

import pytest

from processors.spc import (
    CONSTANTS,
    CusumChart,
    EwmaChart,
    c4,
    d2,
    d3,
    run_chart,
    subgroup_constants,
)

# ---------------------------------------------------------------- data sets

# NIST/SEMATECH e-Handbook of Statistical Methods, 6.3.2.4 "EWMA Control Charts",
# https://www.itl.nist.gov/div898/handbook/pmc/section3/pmc324.htm
NIST_EWMA_DATA = [52.0, 47.0, 53.0, 49.3, 50.1, 47.0, 51.0, 50.1, 51.2, 50.5,
                  49.6, 47.6, 49.9, 51.3, 47.8, 51.2, 52.6, 52.4, 53.6, 52.1]
NIST_EWMA_PRINTED = [50.60, 49.52, 50.56, 50.18, 50.16, 49.21, 49.75, 49.85, 50.26, 50.33,
                     50.11, 49.36, 49.52, 50.05, 49.38, 49.92, 50.73, 51.23, 51.94, 51.99]

# NIST/SEMATECH e-Handbook 6.3.2.3 "CUSUM Control Charts", tabular example,
# https://www.itl.nist.gov/div898/handbook/pmc/section3/pmc323.htm
NIST_CUSUM_DATA = [324.925, 324.675, 324.725, 324.350, 325.350, 325.225, 324.125, 324.525,
                   325.225, 324.600, 324.625, 325.150, 328.325, 327.250, 327.825, 328.500,
                   326.675, 327.775, 326.875, 328.350]
# printed (S_hi, S_lo) columns, 2 decimals
NIST_CUSUM_PRINTED = [
    (0.00, 0.00), (0.00, 0.01), (0.00, 0.00), (0.00, 0.33), (0.03, 0.00),
    (0.00, 0.00), (0.00, 0.56), (0.00, 0.72), (0.00, 0.17), (0.00, 0.25),
    (0.00, 0.31), (0.00, 0.00), (3.01, 0.00), (4.94, 0.00), (7.45, 0.00),
    (10.63, 0.00), (11.99, 0.00), (14.44, 0.00), (16.00, 0.00), (19.04, 0.00),
]

# Montgomery, Introduction to Statistical Quality Control, Table 9.1 (CUSUM
# chapter; 6th ed. Example 9.1): first 20 from N(10, 1), last 10 from N(11, 1).
# The same 30 values are printed in the IMSL C#/.NET manual's EWMA example.
MONTGOMERY_9_1 = [9.45, 7.99, 9.29, 11.66, 12.16, 10.18, 8.04, 11.46, 9.20, 10.34,
                  9.03, 11.47, 10.51, 9.40, 10.08, 9.37, 10.62, 10.31, 8.52, 10.84,
                  10.90, 9.33, 12.29, 11.50, 10.60, 11.08, 10.38, 11.62, 11.31, 10.52]

# Montgomery, ISQC, Example 7.1 (orange juice concentrate cans, 30 samples of
# n = 50); also the R qcc package's `orangejuice` data (trial samples).
ORANGE_JUICE = [12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22,
                8, 10, 5, 13, 11, 20, 18, 24, 15, 9, 12, 7, 13, 9, 6]

# Montgomery, ISQC, Example 7.3 (nonconformities on printed circuit boards,
# 26 samples of 100 boards); R qcc `circuit` data (trial samples).
CIRCUIT_BOARDS = [21, 24, 16, 12, 15, 5, 28, 20, 31, 25, 20, 24, 16, 19, 10,
                  17, 13, 22, 18, 39, 30, 24, 16, 19, 17, 15]

# NIST/SEMATECH e-Handbook 6.3.2.2 "Individuals Control Charts" (flow rate, 10 batches).
NIST_FLOWRATE = [49.6, 47.6, 49.9, 51.3, 47.8, 51.2, 52.6, 52.4, 53.6, 52.1]

# NIST/SEMATECH e-Handbook 6.3.3.1 "Counts Control Charts" (defects on 25 wafers).
NIST_WAFERS = [16, 14, 28, 16, 12, 20, 10, 12, 10, 17, 19, 17, 14, 16, 15,
               13, 14, 16, 11, 20, 11, 19, 16, 31, 13]

# Montgomery, ISQC, Example 6.1 / Table 6.3 piston-ring inside diameters, as
# distributed in the R qcc package (`pistonrings`): 25 trial subgroups of 5
# then 15 subgroups of phase II.
PISTON_RINGS = [
    (74.030, 74.002, 74.019, 73.992, 74.008), (73.995, 73.992, 74.001, 74.011, 74.004),
    (73.988, 74.024, 74.021, 74.005, 74.002), (74.002, 73.996, 73.993, 74.015, 74.009),
    (73.992, 74.007, 74.015, 73.989, 74.014), (74.009, 73.994, 73.997, 73.985, 73.993),
    (73.995, 74.006, 73.994, 74.000, 74.005), (73.985, 74.003, 73.993, 74.015, 73.988),
    (74.008, 73.995, 74.009, 74.005, 74.004), (73.998, 74.000, 73.990, 74.007, 73.995),
    (73.994, 73.998, 73.994, 73.995, 73.990), (74.004, 74.000, 74.007, 74.000, 73.996),
    (73.983, 74.002, 73.998, 73.997, 74.012), (74.006, 73.967, 73.994, 74.000, 73.984),
    (74.012, 74.014, 73.998, 73.999, 74.007), (74.000, 73.984, 74.005, 73.998, 73.996),
    (73.994, 74.012, 73.986, 74.005, 74.007), (74.006, 74.010, 74.018, 74.003, 74.000),
    (73.984, 74.002, 74.003, 74.005, 73.997), (74.000, 74.010, 74.013, 74.020, 74.003),
    (73.988, 74.001, 74.009, 74.005, 73.996), (74.004, 73.999, 73.990, 74.006, 74.009),
    (74.010, 73.989, 73.990, 74.009, 74.014), (74.015, 74.008, 73.993, 74.000, 74.010),
    (73.982, 73.984, 73.995, 74.017, 74.013),
    # phase II
    (74.012, 74.015, 74.030, 73.986, 74.000), (73.995, 74.010, 73.990, 74.015, 74.001),
    (73.987, 73.999, 73.985, 74.000, 73.990), (74.008, 74.010, 74.003, 73.991, 74.006),
    (74.003, 74.000, 74.001, 73.986, 73.997), (73.994, 74.003, 74.015, 74.020, 74.004),
    (74.008, 74.002, 74.018, 73.995, 74.005), (74.001, 74.004, 73.990, 73.996, 73.998),
    (74.015, 74.000, 74.016, 74.025, 74.000), (74.030, 74.005, 74.000, 74.016, 74.012),
    (74.001, 73.990, 73.995, 74.010, 74.024), (74.015, 74.020, 74.024, 74.005, 74.019),
    (74.035, 74.010, 74.012, 74.015, 74.026), (74.017, 74.013, 74.036, 74.025, 74.026),
    (74.010, 74.005, 74.029, 74.000, 74.020),
]

EPS = 1e-9


def printed(value: float, decimals: int) -> float:
    """Half a unit in the last printed place (plus float slack)."""
    return 0.5 * 10.0 ** -decimals + 1e-12 * max(1.0, abs(value))


# ---------------------------------------------------------------- EWMA

def test_nist_ewma_example():
    """NIST/SEMATECH e-Handbook 6.3.2.4 (published).

    Data: the 20 values above; EWMA_0 = 50, s = 2.0539, λ = 0.3, k = 3.
    Published: the EWMA table (2 decimals) and UCL = 52.5884, LCL = 47.4115;
    no point out of control.  The exact limits 50 ± 3·2.0539·√(0.3/1.7) =
    52.588432 / 47.411568 are recomputed here; the handbook's LCL is that
    value truncated (47.41157 rounds to 47.4116), so the printed limits are
    checked to 1e-4.  (The brief's "46.1525 / 53.8475" do not follow from
    the handbook's formula and data and are not used.)
    """
    r = run_chart("ewma", values=NIST_EWMA_DATA, target=50.0, sigma=2.0539, lam=0.3, L=3.0)
    half = 3.0 * 2.0539 * math.sqrt(0.3 / 1.7)
    assert r.ucl == pytest.approx(50.0 + half, abs=EPS)
    assert r.lcl == pytest.approx(50.0 - half, abs=EPS)
    assert abs(r.ucl - 52.5884) < 1e-4 and abs(r.lcl - 47.4115) < 1e-4
    for p, want in zip(r.points, NIST_EWMA_PRINTED):
        assert abs(p.value - want) <= printed(want, 2), p.index
    # exact recursion, independently
    z = 50.0
    for p, x in zip(r.points, NIST_EWMA_DATA):
        z = 0.3 * x + 0.7 * z
        assert p.value == pytest.approx(z, abs=EPS)
    assert r.flagged() == []
    steady = run_chart("ewma", values=NIST_EWMA_DATA, target=50.0, sigma=2.0539, lam=0.3,
                       L=3.0, ewma_steady_state=True)
    assert steady.flagged() == []
    assert all(p.ucl == pytest.approx(50.0 + half, abs=EPS) for p in steady.points)


def test_ewma_time_varying_limits_hand_computed():
    """Hand-computed from Montgomery's formula (ISQC eq. 9.24-9.25) on the
    Table 9.1 data with λ = 0.1, L = 2.7, μ0 = 10, σ = 1 (his Example 9.2
    settings): z1 = 0.1·9.45 + 0.9·10 = 9.945, z2 = 9.7495; the width at
    i = 1 is Lσλ exactly (√(λ/(2−λ)·(1−(1−λ)²)) = λ), so 10 ± 0.27; the
    asymptote is 10 ± 2.7·√(0.1/1.9)."""
    r = run_chart("ewma", values=MONTGOMERY_9_1, target=10.0, sigma=1.0, lam=0.1, L=2.7)
    assert r.points[0].value == pytest.approx(9.945, abs=EPS)
    assert r.points[1].value == pytest.approx(9.7495, abs=EPS)
    assert r.points[0].ucl == pytest.approx(10.27, abs=EPS)
    assert r.points[0].lcl == pytest.approx(9.73, abs=EPS)
    for p in r.points:
        w = 2.7 * math.sqrt(0.1 / 1.9 * (1 - 0.9 ** (2 * p.index)))
        assert p.ucl == pytest.approx(10 + w, abs=EPS)
    assert r.ucl == pytest.approx(10 + 2.7 * math.sqrt(0.1 / 1.9), abs=EPS)
    with pytest.raises(ValueError):
        EwmaChart(0.0, 1.0, lam=0.0)


# ---------------------------------------------------------------- CUSUM

def test_montgomery_tabular_cusum_table_9_1():
    """Montgomery ISQC Table 9.1/9.2 and Example 9.1 (published).

    μ0 = 10, σ = 1, k = 0.5 (K = 0.5), h = 5 (H = 5).  Published: C+ exceeds
    H first at observation 29 (C+ = 5.28) and stays above at 30 (5.30); the
    lower CUSUM never signals; N+ = 7 at period 29, so the shift began after
    period 22 and the new mean is estimated as 10 + 0.5 + 5.28/7 = 11.25.
    Also printed: C+_4..6 = 1.16, 2.82, 2.50 and C−_1..3 = 0.05, 1.56, 1.77.
    """
    r = run_chart("cusum", values=MONTGOMERY_9_1, target=10.0, sigma=1.0, k=0.5, h=5.0)
    assert r.flagged() == [29, 30]
    assert r.flagged("cusum_lower") == []
    cplus = [p.value for p in r.points]
    cminus = [-p.extra["lower"] for p in r.points]
    for i, want in ((4, 1.16), (5, 2.82), (6, 2.50), (29, 5.28), (30, 5.30)):
        assert abs(cplus[i - 1] - want) <= printed(want, 2)
    for i, want in ((1, 0.05), (2, 1.56), (3, 1.77)):
        assert abs(cminus[i - 1] - want) <= printed(want, 2)
    sig = r.points[28].signals[0]
    assert sig.rule == "cusum_upper" and sig.detail["run_length"] == 7
    assert abs(sig.detail["mean_estimate"] - 11.25) <= printed(11.25, 2)
    assert r.ucl == 5.0 and r.lcl == -5.0
    # independent recursion
    cp = cm = 0.0
    for p, x in zip(r.points, MONTGOMERY_9_1):
        cp, cm = max(0.0, x - 10.5 + cp), max(0.0, 9.5 - x + cm)
        assert p.value == pytest.approx(cp, abs=EPS)
        assert p.extra["lower"] == pytest.approx(-cm, abs=EPS)


def test_nist_tabular_cusum_example():
    """NIST/SEMATECH e-Handbook 6.3.2.3 tabular CUSUM (published).

    Target 325, σ of the plotted means 0.635 (1.27/√4), k = 0.3175 = 0.5σ,
    h = 4.1959 in data units.  Published: the S_hi and S_lo columns (2
    decimals, as tabulated above) and out-of-control flags on S_hi at
    groups 14-20.  The data were transcribed from the handbook's table; that
    all 40 printed sums are reproduced is the check on the transcription.
    """
    r = run_chart("cusum", values=NIST_CUSUM_DATA, target=325.0, sigma=0.635, k=0.5,
                  h=4.1959 / 0.635)
    assert r.params["K"] == pytest.approx(0.3175, abs=EPS)
    assert r.ucl == pytest.approx(4.1959, abs=EPS)
    for p, (shi, slo) in zip(r.points, NIST_CUSUM_PRINTED):
        assert abs(p.value - shi) <= printed(shi, 2), p.index
        assert abs(-p.extra["lower"] - slo) <= printed(slo, 2), p.index
    assert r.flagged() == list(range(14, 21))
    assert r.flagged("cusum_upper") == list(range(14, 21))


def test_cusum_reset_restarts_sums():
    """Hand-computed: with reset, both sums restart at 0 after a signal."""
    pts = CusumChart(0.0, 1.0, k=0.5, h=1.0, reset=True).points([2.0, 2.0, 2.0])
    # C+ = 1.5 > 1 at point 1 -> reset; same at 2 and 3
    assert [p.value for p in pts] == [1.5, 1.5, 1.5]
    assert all(p.signals for p in pts)
    with pytest.raises(ValueError):
        CusumChart(0.0, 1.0, k=0.5, h=0.0)


# ---------------------------------------------------------------- attribute charts

def test_montgomery_p_chart_orange_juice():
    """Montgomery ISQC Example 7.1 (published).

    30 samples of n = 50 cans, 347 nonconforming: p̄ = 0.2313, UCL = 0.4102,
    LCL = 0.0524; samples 15 and 23 are above the UCL.  Revised limits with
    15 and 23 excluded (assignable causes found): p̄ = 0.2150, UCL = 0.3893,
    LCL = 0.0407, and sample 21 then plots above the revised UCL.
    """
    r = run_chart("p", counts=ORANGE_JUICE, sizes=[50] * 30)
    p = 347 / 1500
    half = 3 * math.sqrt(p * (1 - p) / 50)
    assert r.center == pytest.approx(p, abs=EPS)
    assert r.ucl == pytest.approx(p + half, abs=EPS)
    assert r.lcl == pytest.approx(p - half, abs=EPS)
    assert abs(r.center - 0.2313) <= printed(0.2313, 4)
    assert abs(r.ucl - 0.4102) <= printed(0.4102, 4)
    assert abs(r.lcl - 0.0524) <= printed(0.0524, 4)
    assert r.flagged("rule1") == [15, 23]

    rev = run_chart("p", counts=ORANGE_JUICE, sizes=[50] * 30, exclude=[15, 23])
    assert rev.center == pytest.approx(301 / 1400, abs=EPS)
    assert abs(rev.center - 0.2150) <= printed(0.2150, 4)
    assert abs(rev.ucl - 0.3893) <= printed(0.3893, 4)
    assert abs(rev.lcl - 0.0407) <= printed(0.0407, 4)
    assert rev.flagged("rule1") == [15, 21, 23]
    assert rev.params["excluded"] == [15, 23]

    auto = run_chart("p", counts=ORANGE_JUICE, sizes=[50] * 30, revise=True)
    # revision keeps going: 21 is dropped in a second round, as "revise" promises
    assert auto.params["excluded"] == [15, 21, 23]
    assert auto.params["revisions"] == 2


def test_np_chart_hand_computed():
    """Hand-computed: counts 2,5,3,0,4 of n = 20: p̄ = 14/100, centre 2.8,
    σ = √(20·0.14·0.86), UCL = 2.8 + 3σ, LCL = 0 (negative)."""
    r = run_chart("np", counts=[2, 5, 3, 0, 4], sizes=[20] * 5)
    s = math.sqrt(20 * 0.14 * 0.86)
    assert r.center == pytest.approx(2.8, abs=EPS)
    assert r.ucl == pytest.approx(2.8 + 3 * s, abs=EPS)
    assert r.lcl == 0.0
    assert r.flagged() == []
    with pytest.raises(ValueError, match="constant sample size"):
        run_chart("np", counts=[1, 2], sizes=[10, 20])


def test_p_chart_variable_sample_size_hand_computed():
    """Hand-computed: p̄ = Σd/Σn = 12/400; each point's limits use its own n."""
    counts, sizes = [2, 6, 4], [50, 250, 100]
    r = run_chart("p", counts=counts, sizes=sizes)
    pbar = 12 / 400
    for pt, d, n in zip(r.points, counts, sizes):
        half = 3 * math.sqrt(pbar * (1 - pbar) / n)
        assert pt.value == pytest.approx(d / n, abs=EPS)
        assert pt.ucl == pytest.approx(pbar + half, abs=EPS)
        assert pt.lcl == pytest.approx(max(0.0, pbar - half), abs=EPS)
    nbar = 400 / 3
    assert r.ucl == pytest.approx(pbar + 3 * math.sqrt(pbar * (1 - pbar) / nbar), abs=EPS)
    assert r.warnings


def test_montgomery_c_chart_circuit_boards():
    """Montgomery ISQC Example 7.3 (published).

    26 samples: c̄ = 19.85, UCL = 33.22, LCL = 6.48; samples 6 (5) and 20
    (39) are outside.  Revised without them: c̄ = 19.67, UCL = 32.97,
    LCL = 6.36.  The book evaluates the trial limits from the rounded
    c̄ = 19.85 (19.85 ± 3√19.85 = 33.216 / 6.484); from the exact 516/26 the
    UCL is 33.2109, so the printed trial limits are checked through a known
    centre of 19.85 and the exact ones against the formula.
    """
    r = run_chart("c", counts=CIRCUIT_BOARDS)
    c = 516 / 26
    assert r.center == pytest.approx(c, abs=EPS)
    assert r.ucl == pytest.approx(c + 3 * math.sqrt(c), abs=EPS)
    assert r.lcl == pytest.approx(c - 3 * math.sqrt(c), abs=EPS)
    assert abs(r.center - 19.85) <= printed(19.85, 2)
    book = run_chart("c", counts=CIRCUIT_BOARDS, target=19.85)
    for got, want in ((book.ucl, 33.22), (book.lcl, 6.48)):
        assert abs(got - want) <= printed(want, 2)
    assert book.flagged("rule1") == [6, 20]
    assert r.flagged("rule1") == [6, 20]
    rev = run_chart("c", counts=CIRCUIT_BOARDS, exclude=[6, 20])
    for got, want in ((rev.center, 19.67), (rev.ucl, 32.97), (rev.lcl, 6.36)):
        assert abs(got - want) <= printed(want, 2)


def test_nist_c_chart_wafers():
    """NIST/SEMATECH e-Handbook 6.3.3.1 (published limits): 25 wafers,
    c̄ = 16, UCL = 16 + 3·4 = 28, LCL = 4.  Hand-checked: wafer 24 (31) is the
    only count beyond the UCL; wafer 3 (28) sits on it, which is not beyond."""
    r = run_chart("c", counts=NIST_WAFERS)
    assert (r.center, r.lcl, r.ucl) == (16.0, 4.0, 28.0)
    assert r.flagged("rule1") == [24]


def test_u_chart_variable_area_hand_computed():
    """Hand-computed: counts 3, 7, 2 on areas 1.5, 2, 0.5: ū = 12/4 = 3 and
    limits 3 ± 3√(3/n_i), lower ones negative → 0."""
    r = run_chart("u", counts=[3, 7, 2], sizes=[1.5, 2.0, 0.5])
    assert r.center == 3.0
    for pt, n, v in zip(r.points, [1.5, 2.0, 0.5], [2.0, 3.5, 4.0]):
        assert pt.value == pytest.approx(v, abs=EPS)
        assert pt.ucl == pytest.approx(3 + 3 * math.sqrt(3 / n), abs=EPS)
        assert pt.lcl == 0.0
    assert r.flagged() == []


# ---------------------------------------------------------------- variables charts

def test_nist_individuals_chart_flowrate():
    """NIST/SEMATECH e-Handbook 6.3.2.2 (published): x̄ = 50.81,
    MR̄ = 1.8778 (MRs 2.0, 2.3, 1.4, 3.5, 3.4, 1.4, 0.2, 1.2, 1.5), UCL = 55.8041,
    LCL = 45.8159, in control.  The handbook uses d2 = 1.128; qrisk uses the
    unrounded d2(2) = 2/√π, which moves the limits by 0.0017, so the published
    limits are reproduced with σ = MR̄/1.128 given explicitly, and the default
    limits are checked against the exact formula."""
    r = run_chart("i", values=NIST_FLOWRATE)
    mrbar = 16.9 / 9
    assert r.center == pytest.approx(50.81, abs=EPS)
    assert abs(mrbar - 1.8778) <= printed(1.8778, 4)
    assert r.ucl == pytest.approx(50.81 + 3 * mrbar / (2 / math.sqrt(math.pi)), abs=EPS)
    assert r.flagged() == []
    hb = run_chart("i", values=NIST_FLOWRATE, sigma=mrbar / 1.128)
    assert abs(hb.ucl - 55.8041) <= printed(55.8041, 4)
    assert abs(hb.lcl - 45.8159) <= printed(45.8159, 4)
    mr = run_chart("mr", values=NIST_FLOWRATE)
    assert mr.points[0].value is None
    assert [round(p.value, 1) for p in mr.points[1:]] == [2.0, 2.3, 1.4, 3.5, 3.4, 1.4,
                                                          0.2, 1.2, 1.5]
    assert mr.center == pytest.approx(mrbar, abs=EPS)
    assert mr.ucl == pytest.approx(subgroup_constants(2).D4 * mrbar, abs=EPS)
    assert mr.lcl == 0.0


def test_piston_rings_xbar_r():
    """Montgomery ISQC Example 6.1 / Table 6.3 piston rings, data as shipped in
    R qcc (`pistonrings`), first 25 subgroups as phase I.

    Published: Montgomery prints x̄̄ = 74.001, R̄ = 0.023, x̄ limits 73.988 /
    74.014, R chart LCL 0 and no phase-I point out of control; qcc prints
    centre 74.00118, LCL 73.98805, UCL 74.0143 for these data.  Exact: x̄̄ =
    1850.0294/25, R̄ = 0.569/25 = 0.02276, limits x̄̄ ± A2·R̄ and D4·R̄ with
    unrounded A2 = 3/(d2√5).  Hand-checked phase II: subgroup means 37
    (74.0166), 38 (74.0196) and 39 (74.0234) exceed the UCL.
    """
    kw = dict(subgroups=PISTON_RINGS, phase1=(1, 25))
    xb = run_chart("xbar", **kw)
    grand = math.fsum(x for g in PISTON_RINGS[:25] for x in g) / 125
    rbar = math.fsum(max(g) - min(g) for g in PISTON_RINGS[:25]) / 25
    assert rbar == pytest.approx(0.02276, abs=EPS)
    a2 = subgroup_constants(5).A2
    assert xb.center == pytest.approx(grand, abs=EPS)
    assert xb.ucl == pytest.approx(grand + a2 * rbar, abs=EPS)
    assert xb.lcl == pytest.approx(grand - a2 * rbar, abs=EPS)
    assert abs(xb.center - 74.00118) <= printed(74.00118, 5)
    assert abs(xb.ucl - 74.0143) <= printed(74.0143, 4)
    assert abs(xb.lcl - 73.98805) <= printed(73.98805, 5)
    for got, want in ((xb.center, 74.001), (xb.ucl, 74.014), (xb.lcl, 73.988)):
        assert abs(got - want) <= printed(want, 3)
    assert xb.flagged("rule1") == [37, 38, 39]
    assert all(p.phase == ("I" if p.index <= 25 else "II") for p in xb.points)
    assert not any(s.rule == "rule1" for p in xb.points[:25] for s in p.signals)

    rr = run_chart("r", **kw)
    assert rr.center == pytest.approx(rbar, abs=EPS)
    assert rr.ucl == pytest.approx(subgroup_constants(5).D4 * rbar, abs=EPS)
    assert rr.lcl == 0.0
    assert abs(rr.center - 0.023) <= printed(0.023, 3)
    assert rr.flagged() == []


def test_xbar_s_hand_computed():
    """Hand-computed x̄–S on the piston rings' phase I: S̄ from sample SDs,
    x̄ limits x̄̄ ± A3·S̄, S limits B3·S̄..B4·S̄ (B3 = 0 for n = 5)."""
    groups = PISTON_RINGS[:25]
    sds = []
    for g in groups:
        m = sum(g) / 5
        sds.append(math.sqrt(sum((x - m) ** 2 for x in g) / 4))
    sbar = sum(sds) / 25
    k = subgroup_constants(5)
    s = run_chart("s", subgroups=groups)
    assert s.center == pytest.approx(sbar, abs=EPS)
    assert s.ucl == pytest.approx(k.B4 * sbar, abs=EPS)
    assert s.lcl == 0.0
    assert [p.value for p in s.points] == pytest.approx(sds, abs=EPS)
    assert s.sigma == pytest.approx(sbar / k.c4, abs=EPS)
    xs = run_chart("xbar", subgroups=[list(g) + [g[0]] * 21 for g in groups])
    assert xs.params["sigma_from"] == "s"   # n = 26: past the R tables


def test_subgroups_of_varying_size_hand_computed():
    """Hand-computed: σ = mean(R_i/d2(n_i)); x̄ limits x̄̄ ± 3σ/√n_i."""
    groups = [[1.0, 2.0, 3.0], [2.0, 4.0], [1.0, 1.5, 2.5, 3.0]]
    r = run_chart("xbar", subgroups=groups)
    sig = (2.0 / d2(3) + 2.0 / d2(2) + 2.0 / d2(4)) / 3
    grand = 20.0 / 9
    assert r.sigma == pytest.approx(sig, abs=EPS)
    for p, g in zip(r.points, groups):
        assert p.ucl == pytest.approx(grand + 3 * sig / math.sqrt(len(g)), abs=EPS)
    rr = run_chart("r", subgroups=groups)
    for p, g in zip(rr.points, groups):
        n = len(g)
        assert p.center == pytest.approx(d2(n) * sig, abs=EPS)
        assert p.ucl == pytest.approx((d2(n) + 3 * d3(n)) * sig, abs=EPS)
    with pytest.raises(ValueError, match="subgroup 2 has 1"):
        run_chart("xbar", subgroups=[[1.0, 2.0], [3.0]])


def test_known_target_and_sigma():
    """Hand-computed: given μ0 and σ, nothing is estimated."""
    r = run_chart("i", values=[1.0, 2.0, 3.0], target=0.0, sigma=0.5)
    assert (r.center, r.lcl, r.ucl) == (0.0, -1.5, 1.5)
    assert r.flagged("rule1") == [2, 3]
    x = run_chart("xbar", subgroups=[[1.0, 1.2], [0.9, 1.1]], target=1.0, sigma=0.2)
    assert x.ucl == pytest.approx(1.0 + 3 * 0.2 / math.sqrt(2), abs=EPS)


def test_phase1_range_and_exclusions():
    """Phase I on rows 1-5 only; the excluded row 3 and the moving ranges
    touching it stay out of the estimate; later rows are phase II."""
    vals = [10.0, 11.0, 50.0, 10.0, 11.0, 30.0, 10.5]
    r = run_chart("i", values=vals, phase1=(1, 5), exclude=[3])
    assert r.center == pytest.approx(42.0 / 4, abs=EPS)
    assert r.sigma == pytest.approx(1.0 / d2(2), abs=EPS)   # MRs |11-10| and |11-10|
    assert [p.phase for p in r.points] == ["I"] * 5 + ["II"] * 2
    assert r.flagged("rule1") == [3, 6]
    with pytest.raises(ValueError, match="outside the phase I range"):
        run_chart("i", values=vals, phase1=(1, 5), exclude=[6])
    with pytest.raises(ValueError, match="phase I range"):
        run_chart("i", values=vals, phase1=(2, 9))


# ---------------------------------------------------------------- constants

# Montgomery ISQC Appendix Table VI (published, 3-4 decimals):
# n: (A2, A3, c4, B3, B4, d2, d3, D3, D4)
TEXTBOOK = {
    2: (1.880, 2.659, 0.7979, 0.000, 3.267, 1.128, 0.853, 0.000, 3.267),
    3: (1.023, 1.954, 0.8862, 0.000, 2.568, 1.693, 0.888, 0.000, 2.574),
    4: (0.729, 1.628, 0.9213, 0.000, 2.266, 2.059, 0.880, 0.000, 2.282),
    5: (0.577, 1.427, 0.9400, 0.000, 2.089, 2.326, 0.864, 0.000, 2.114),
    6: (0.483, 1.287, 0.9515, 0.030, 1.970, 2.534, 0.848, 0.000, 2.004),
    7: (0.419, 1.182, 0.9594, 0.118, 1.882, 2.704, 0.833, 0.076, 1.924),
    8: (0.373, 1.099, 0.9650, 0.185, 1.815, 2.847, 0.820, 0.136, 1.864),
    9: (0.337, 1.032, 0.9693, 0.239, 1.761, 2.970, 0.808, 0.184, 1.816),
    10: (0.308, 0.975, 0.9727, 0.284, 1.716, 3.078, 0.797, 0.223, 1.777),
    15: (0.223, 0.789, 0.9823, 0.428, 1.572, 3.472, 0.756, 0.347, 1.653),
    20: (0.180, 0.680, 0.9869, 0.510, 1.490, 3.735, 0.729, 0.415, 1.585),
    25: (0.153, 0.606, 0.9896, 0.565, 1.435, 3.931, 0.708, 0.459, 1.541),
}


@pytest.mark.parametrize("n", sorted(TEXTBOOK))
def test_constants_match_textbook_table(n):
    """Derived factors agree with the printed table to its last place (one
    unit of slack: the table derives D4 etc. from already-rounded d2, d3)."""
    k = subgroup_constants(n)
    got = (k.A2, k.A3, k.c4, k.B3, k.B4, k.d2, k.d3, k.D3, k.D4)
    for name, g, w in zip("A2 A3 c4 B3 B4 d2 d3 D3 D4".split(), got, TEXTBOOK[n]):
        tol = 1.5e-4 if name == "c4" else 1.5e-3
        assert abs(g - w) <= tol, (n, name, g, w)


def test_constants_closed_forms_and_quadrature():
    """Closed forms: d2(2) = 2/√π, d3(2) = √(2−4/π), d2(3) = 3/√π,
    c4(2) = √(2/π), c4(3) = √π/2; every tabulated d2 re-derived by
    quadrature of ∫(1 − Φ^n − (1−Φ)^n) to 1e-8."""
    assert d2(2) == pytest.approx(2 / math.sqrt(math.pi), abs=1e-9)
    assert d3(2) == pytest.approx(math.sqrt(2 - 4 / math.pi), abs=1e-9)
    assert d2(3) == pytest.approx(3 / math.sqrt(math.pi), abs=1e-9)
    assert c4(2) == pytest.approx(math.sqrt(2 / math.pi), abs=1e-12)
    assert c4(3) == pytest.approx(math.sqrt(math.pi) / 2, abs=1e-12)
    import numpy as np
    x = np.linspace(-10, 10, 8001)
    phi = 0.5 * (1 + np.array([math.erf(v / math.sqrt(2)) for v in x]))
    for n in CONSTANTS:
        f = 1 - phi ** n - (1 - phi) ** n
        val = float(np.sum((f[1:] + f[:-1]) / 2 * np.diff(x)))
        assert abs(val - d2(n)) < 1e-8, n
    with pytest.raises(ValueError):
        d2(26)
    with pytest.raises(ValueError):
        subgroup_constants(1)
