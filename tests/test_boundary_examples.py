"""Worked examples on the exact edges that a mutation review (r27) found no test guarding: each rests on a figure
derived by hand from the standard or the policy, and each fails if the comparison at that edge is written the other way.
"""
from __future__ import annotations

import pytest

from processors.campaign import z_band
from processors.step import Rules, replay
from schemas.policy import Policy
from schemas.standards import load_catalogue
from tests.test_campaign_officer_review import _compared
from tests.test_judgement import item, judge, water
from tests.test_risk import E, pa_sample, registered


def test_a_sum_of_ratios_of_exactly_one_in_three_members_passes() -> None:
    """GB 2760-2014 (before 2025-02-08): 脱氢乙酸 0.01/0.5 + 山梨酸 0.1/1.0 + 丙酸 2.2/2.5 = 0.02 + 0.1 + 0.88 = 1,
    and a sum of at most 1 complies.  Added in floats the three ratios make 1.0000000000000002: the sum must be
    taken exactly, or a complying pastry is called 不合格 with "1.0000000000000002 > 1"."""
    assert 0.01 / 0.5 + 0.1 / 1.0 + 2.2 / 2.5 > 1  # the float sum this example is about
    result = judge("pastry", item("dehydroacetic_acid", [0.01], "g/kg"), item("sorbic_acid", [0.1], "g/kg"),
                   item("propionic_acid", [2.2], "g/kg"))
    (check,) = result.sum_checks
    assert (check.verdict, check.total, result.verdict) == ("pass", 1.0, "pass"), check.message_zh


@pytest.mark.parametrize("served, points", [(50_000, 10.0), (49_999, 7.0), (20_000, 7.0), (19_999, 4.0), (5_000, 4.0),
                                            (4_999, 2.0), (0, 2.0)])
def test_population_served_on_a_band_minimum_takes_that_band(served: int, points: float) -> None:
    """The default policy's population bands are "at least": 50,000 → 10 points, 20,000 → 7, 5,000 → 4, 0 → 2."""
    rules = Rules(catalogue=load_catalogue(), policy=Policy())
    state, _ = replay([registered(population_served=served)], rules)
    [got] = [c.points for c in state.files[E].risk.current.contributions if "population" in c.factor]
    assert got == points


@pytest.mark.parametrize("mine, lab", [(100, 10), (10, 100)])
def test_a_comparison_exactly_two_sigma_apart_is_satisfactory(mine: int, lab: int) -> None:
    """ISO 13528 (README: |z| ≤ 2 满意): σpt 0.5 in log10, enterprise 100 CFU against the lab's 10 gives
    z = (lg 100 − lg 10) / 0.5 = 2.0 exactly (and −2.0 the other way round): satisfactory, nothing raised."""
    rules = Rules(catalogue=load_catalogue(), policy=Policy.model_validate({"campaign": {"comparison_log10_sigma_pt": 0.5}}))
    _, test, said = _compared(rules, item="pseudomonas_aeruginosa", mine=mine, lab=lab)
    assert abs(test.z) == pytest.approx(2.0)
    assert (test.band, test.satisfactory, said) == ("satisfactory", True, []), test.measure_zh


@pytest.mark.parametrize("z, band", [(2.0, "satisfactory"), (-2.0, "satisfactory"), (2.01, "questionable"),
                                     (2.99, "questionable"), (3.0, "unsatisfactory"), (-3.0, "unsatisfactory")])
def test_z_bands_at_their_edges(z: float, band: str) -> None:
    assert z_band(z) == band


def test_one_failure_never_makes_a_p_chart_signal_even_at_a_tiny_reference_rate() -> None:
    """At spc.reference_failure_rate 0.001 the exact binomial upper limit for a single batch is 0 failures, so one
    failure lies "beyond" it; but one failure is already its own 抽检不合格 warning, and the chart speaks only when
    failures recur."""
    rules = Rules(catalogue=load_catalogue(), policy=Policy.model_validate({"spc": {"reference_failure_rate": 0.001}}))
    state, effects = replay([registered(), pa_sample("2026-03-01T10:00:00+08:00")], rules)
    assert state.files[E].samples[0].judgement.verdict == "fail"
    assert [e for e in effects if e.data.get("chart") == "p"] == []


def test_not_detected_below_a_detection_limit_equal_to_a_ranges_minimum_fails() -> None:
    """pH 5.0–7.0 (GB 19298): "未检出" with a detection limit of exactly 5.0 says the value is below 5.0, under the
    minimum: 不合格, not 无法判定."""
    judged = water("ph", ["ND"], "pH", detection_limit=5.0)
    assert (judged.verdict, judged.reason) == ("fail", "out_of_range"), judged.message_zh
