"""Judgement at the detection limit: a reading equal to it is a detection, for every kind of item.

A lab's detection limit (检出限) is the smallest value the method reports as found; a reading
below it is "not detected", a reading *at* it is a detection.  tests/test_judgement.py pins this
for not-permitted items; here it is pinned for maximum, range and plan items, and for ND when the
detection limit equals the legal maximum (ND means "below the detection limit", so below the limit).
"""
from __future__ import annotations

from tests.test_judgement import APC, assert_verdict, pastry, water

# --------------------------------------------------------------------------- maximum (lead ≤0.01 mg/L)


def test_maximum_value_at_detection_limit_is_a_detection() -> None:
    # twice the limit, read exactly at the detection limit: a failure, not 待定
    j = water("lead", [0.02], "mg/L", detection_limit=0.02)
    assert_verdict(j, "fail", "over_maximum")
    assert j.ratio == 2.0


def test_maximum_value_at_detection_limit_within_the_limit_is_a_detected_pass() -> None:
    j = water("lead", [0.005], "mg/L", detection_limit=0.005)
    assert_verdict(j, "pass", "within_limit")  # not below_detection_limit: it was found
    assert j.ratio == 0.5


def test_maximum_value_just_below_detection_limit_still_reads_as_nd() -> None:
    # the other side of the same edge, so that the boundary is pinned from both sides
    assert_verdict(water("lead", [0.0049], "mg/L", detection_limit=0.005), "pass", "below_detection_limit")


def test_maximum_nd_with_detection_limit_equal_to_the_limit_passes() -> None:
    # ND < dl = limit, so the true value is within the limit
    j = water("lead", ["ND"], "mg/L", detection_limit=0.01)
    assert_verdict(j, "pass", "not_detected")
    assert j.ratio is None


def test_maximum_nd_with_detection_limit_just_above_the_limit_is_undetermined() -> None:
    assert_verdict(water("lead", ["ND"], "mg/L", detection_limit=0.0101), "undetermined", "detection_limit_above_limit")


# --------------------------------------------------------------------------- range (pH 5.0–7.0)


def test_range_value_at_detection_limit_is_judged_as_found() -> None:
    # inside the range: a pass on the number, not an ND whose detection limit is above the minimum
    j = water("ph", [6.0], "pH", detection_limit=6.0)
    assert_verdict(j, "pass", "within_limit")


def test_range_value_at_detection_limit_above_the_range_fails() -> None:
    assert_verdict(water("ph", [7.5], "pH", detection_limit=7.5), "fail", "out_of_range")


# --------------------------------------------------------------------------- plans


def test_two_class_plan_count_at_detection_limit_is_counted() -> None:
    # pseudomonas: n=5, c=0, m=0; a count of 1 at a detection limit of 1 is a positive portion
    j = water("pseudomonas_aeruginosa", [0, 0, 0, 0, 1], "CFU/250mL", detection_limit=1)
    assert_verdict(j, "fail", "plan_exceeded_c")
    # below the detection limit it is a count of 0
    assert_verdict(water("pseudomonas_aeruginosa", [0, 0, 0, 0, 1], "CFU/250mL", detection_limit=2),
                   "pass", "within_limit")


def test_three_class_plan_count_at_detection_limit_is_counted() -> None:
    # APC: n=5, c=2, m=10^4, M=10^5 CFU/g
    j = pastry(APC, [100_001, 0, 0, 0, 0], "CFU/g", detection_limit=100_001)
    assert_verdict(j, "fail", "plan_over_M")


def test_a_full_gb_19298_table_2_report_is_judged_not_left_undetermined():
    # gross α / β close the table: a lab reporting them no longer makes the sample undetermined
    assert_verdict(water("gross_alpha", [0.5], "Bq/L"), "pass", "within_limit")
    assert_verdict(water("gross_alpha", [0.6], "Bq/L"), "fail", "over_maximum")
    assert_verdict(water("gross_beta", [1.0], "Bq/L"), "pass", "within_limit")
    assert_verdict(water("gross_beta", [1.2], "贝可/升"), "fail", "over_maximum")


# --------------------------------------------------------------------------- a strict maximum (纳他霉素 残留量<10 mg/kg)


def test_strict_maximum_nd_with_detection_limit_equal_to_the_limit_passes() -> None:
    # ND < dl = 10, so the residue is below 10: it was undetermined, saying the detection limit 10 was 高于 <10
    j = pastry("natamycin", ["ND"], "mg/kg", detection_limit=10)
    assert_verdict(j, "pass", "not_detected")
    assert "高于" not in j.message_zh


def test_strict_maximum_nd_with_detection_limit_above_the_limit_is_undetermined_and_says_so() -> None:
    j = pastry("natamycin", ["ND"], "mg/kg", detection_limit=10.5)
    assert_verdict(j, "undetermined", "detection_limit_above_limit")
    assert "方法检出限10.5 mg/kg高于" in j.message_zh and "<10" in j.message_zh


def test_strict_maximum_value_below_a_detection_limit_equal_to_the_limit_passes() -> None:
    assert_verdict(pastry("natamycin", [9.5], "mg/kg", detection_limit=10), "pass", "below_detection_limit")
    assert_verdict(pastry("natamycin", [10], "mg/kg", detection_limit=10), "fail", "over_maximum")  # found at 10: not below <10
