"""Judgement against the catalogue: worked examples at every boundary."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pydantic
import pytest

import schemas.standards as standards
from processors.judgement import ItemJudgement, SampleJudgement, judge_sample
from schemas.events import SamplingResult
from schemas.standards import load_catalogue

CAT = load_catalogue()


def item(code: str, values: list[Any], unit: str, **extra: Any) -> dict[str, Any]:
    return {"item_code": code, "values": values, "unit": unit, **extra}


def sample(*items: dict[str, Any], production_date: str | None = "2024-06-01",
           sampled_on: str = "2025-06-01", product: str = "饮用纯净水") -> SamplingResult:
    doc: dict[str, Any] = {
        "sample_no": "DBJ24330000000001",
        "task_source": "县市场监督管理局",
        "lab": "某检测中心",
        "product": product,
        "sampled_on": sampled_on,
        "items": list(items),
    }
    if production_date is not None:
        doc["production_date"] = production_date
    return SamplingResult.model_validate(doc)


def judge(category: str, *items: dict[str, Any], **kw: Any) -> SampleJudgement:
    return judge_sample(sample(*items, **kw), category, CAT)


def one(category: str, code: str, values: list[Any], unit: str, **extra: Any) -> ItemJudgement:
    kw = {k: extra.pop(k) for k in ("production_date", "sampled_on", "product") if k in extra}
    result = judge(category, item(code, values, unit, **extra), **kw)
    assert len(result.items) == 1
    return result.items[0]


def water(code: str, values: list[Any], unit: str, **extra: Any) -> ItemJudgement:
    return one("packaged_water", code, values, unit, **extra)


def pastry(code: str, values: list[Any], unit: str, **extra: Any) -> ItemJudgement:
    return one("pastry", code, values, unit, **extra)


def assert_verdict(j: ItemJudgement, verdict: str, reason: str) -> None:
    assert (j.verdict, j.reason) == (verdict, reason), j.message_en


# --------------------------------------------------------------------------- maximum


def test_maximum_equal_passes() -> None:
    j = water("free_chlorine", [0.05], "mg/L")
    assert_verdict(j, "pass", "within_limit")
    assert j.ratio == 1.0
    assert j.limit_text == "≤0.05 mg/L"
    assert (j.standard, j.edition, j.kind, j.verified) == ("GB 19298-2014", "2014", "maximum", True)
    assert j.item_name == "余氯（游离氯）" and j.item_class == "chemical"


def test_maximum_above_fails() -> None:
    j = water("free_chlorine", [0.051], "mg/L")
    assert_verdict(j, "fail", "over_maximum")
    assert j.ratio == 1.02
    assert "不合格" in j.message_zh and "0.051 mg/L" in j.message_zh


@pytest.mark.parametrize("value, verdict, reason", [(9.9, "pass", "within_limit"), (10, "fail", "over_maximum"), (10.2, "fail", "over_maximum")])
def test_a_maximum_to_stay_below_fails_at_the_limit(value: float, verdict: str, reason: str) -> None:
    """GB 2760 表A.1, 纳他霉素 on 糕点: 残留量<10 mg/kg — strictly below, so 10 itself fails."""
    j = pastry("natamycin", [value], "mg/kg", product="蛋糕")
    assert_verdict(j, verdict, reason)
    assert j.limit_text == "<10 mg/kg"
    if value == 10:
        assert "检测值10 mg/kg未低于GB 2760-2014 限值<10 mg/kg，判定不合格" in j.message_zh and "倍" not in j.message_zh
    if value == 9.9:
        assert "低于GB 2760-2014 限值<10 mg/kg，判定合格" in j.message_zh


def test_only_a_maximum_can_be_one_to_stay_below() -> None:
    with pytest.raises(pydantic.ValidationError, match="max_exclusive"):
        standards.Rule.model_validate({"standard": "GB 1", "edition": "1", "kind": "range", "min": 1, "max": 2,
                                       "max_exclusive": True, "verified": False})


def test_maximum_takes_the_largest_of_several_values() -> None:
    j = pastry("moulds", [20, 151], "CFU/g")
    assert_verdict(j, "fail", "over_maximum")
    assert j.ratio == pytest.approx(151 / 150)
    assert j.verified is False and "尚待核实" in j.message_zh  # domain.md marks it "check"


def test_maximum_not_detected_passes() -> None:
    assert_verdict(water("lead", ["未检出"], "mg/L"), "pass", "not_detected")
    j = water("lead", ["ND"], "mg/L", detection_limit=0.005)
    assert_verdict(j, "pass", "not_detected")
    assert j.values == ("ND",) and j.ratio is None


def test_maximum_detection_limit_above_limit_is_undetermined() -> None:
    j = water("lead", ["ND"], "mg/L", detection_limit=0.02)
    assert_verdict(j, "undetermined", "detection_limit_above_limit")
    # a number below such a detection limit is no better than ND
    assert_verdict(water("lead", [0.005], "mg/L", detection_limit=0.02), "undetermined", "detection_limit_above_limit")


def test_maximum_number_below_detection_limit_reads_as_nd() -> None:
    j = water("bromate", [0.001], "mg/L", detection_limit=0.002)
    assert_verdict(j, "pass", "below_detection_limit")
    assert j.values == (0.001,)  # the lab's number is kept for the record
    assert j.ratio is None


# --------------------------------------------------------------------------- range


@pytest.mark.parametrize("value,verdict", [(5.0, "pass"), (7.0, "pass"), (4.99, "fail"), (7.01, "fail"), (6.2, "pass")])
def test_range_boundaries(value: float, verdict: str) -> None:
    j = water("ph", [value], "无量纲")
    assert j.verdict == verdict
    assert j.reason == ("within_limit" if verdict == "pass" else "out_of_range")
    assert j.limit_text == "5.0–7.0"
    assert j.unit == "pH"


def test_range_nd_without_detection_limit_is_undetermined() -> None:
    assert_verdict(water("ph", ["ND"], "pH"), "undetermined", "detection_limit_unknown")


def test_range_nd_below_a_positive_minimum_fails() -> None:
    # "ND" with a detection limit at or below the minimum is certainly under the range
    assert_verdict(water("ph", ["ND"], "pH", detection_limit=1.0), "fail", "out_of_range")


# --------------------------------------------------------------------------- not permitted


def test_not_permitted_detected_fails() -> None:
    j = pastry("benzoic_acid", [0.12], "g/kg", detection_limit=0.005)
    assert_verdict(j, "fail", "not_permitted_detected")
    assert j.limit_text == "不得使用"  # GB 2760's word for an additive; 不得检出 is for pathogens and contaminants
    assert "不得检出" not in j.message_zh and "不得使用" in j.message_zh
    assert "检出0.12 g/kg" in j.message_zh


def test_not_permitted_nd_passes() -> None:
    assert_verdict(pastry("benzoic_acid", ["ND"], "g/kg"), "pass", "not_detected")


def test_not_permitted_below_detection_limit_passes() -> None:
    assert_verdict(pastry("benzoic_acid", [0.004], "g/kg", detection_limit=0.005), "pass", "below_detection_limit")


def test_not_permitted_at_detection_limit_is_a_detection() -> None:
    assert_verdict(pastry("benzoic_acid", [0.005], "g/kg", detection_limit=0.005), "fail", "not_permitted_detected")


def test_not_permitted_zero_without_detection_limit_passes() -> None:
    assert_verdict(pastry("benzoic_acid", [0], "g/kg"), "pass", "not_detected")


def test_not_permitted_in_water_fails_whatever_the_unit() -> None:
    # Water's catalogue unit is mg/L; a lab reporting g/kg still found the preservative.
    result = judge("packaged_water", item("sorbic_acid", [0.02], "g/kg"))
    j = result.items[0]
    assert_verdict(j, "fail", "not_permitted_detected")
    assert (j.values, j.unit) == ((0.02,), "g/kg")
    assert [(u.kind, u.item_code, u.text) for u in result.unknown] == [("unit_mismatch", "sorbic_acid", "g/kg")]


# --------------------------------------------------------------------------- two-class plan


def test_two_class_plan_pseudomonas_fails() -> None:
    j = water("pseudomonas_aeruginosa", [45, 59, 8, 61, 10], "CFU/250mL")
    assert_verdict(j, "fail", "plan_exceeded_c")
    assert j.limit_text == "n=5,c=0,m=0"
    assert j.values == (45, 59, 8, 61, 10)
    assert j.item_class == "pathogen"


def test_two_class_plan_message_shows_the_results_and_the_standard_value() -> None:
    """The 抽检不合格 alert quotes this message: it carries the evidence (检验结果) and the plan
    (标准值), as an announcement does, not only how many results were over."""
    j = water("pseudomonas_aeruginosa", [45, 59, 8, 61, 10], "CFU/250mL")
    assert j.message_zh == ("铜绿假单胞菌：检验结果 45;59;8;61;10 CFU/250mL，标准值 n=5,c=0,m=0 CFU/250mL（GB 19298-2014），"
                            "5个样品中5个超过m，判定不合格")
    assert j.message_en == ("Pseudomonas aeruginosa: results 45;59;8;61;10 CFU/250mL; GB 19298-2014 plan n=5,c=0,m=0 CFU/250mL: "
                            "5 of 5 exceed m (c=0); fail")


def test_a_plans_non_detects_are_written_as_such() -> None:
    some = water("pseudomonas_aeruginosa", ["ND", 0, 3, "ND", 1], "CFU/250mL")
    assert some.message_zh.startswith("铜绿假单胞菌：检验结果 未检出;0;3;未检出;1 CFU/250mL，标准值 n=5,c=0,m=0 CFU/250mL")
    assert "5个样品中2个超过m，判定不合格" in some.message_zh
    assert "results ND;0;3;ND;1 CFU/250mL" in some.message_en
    none = water("pseudomonas_aeruginosa", ["ND"] * 5, "CFU/250mL")
    assert none.message_zh == "铜绿假单胞菌：检验结果 均未检出，标准值 n=5,c=0,m=0 CFU/250mL（GB 19298-2014），5个样品中0个超过m，判定合格"
    assert "results all ND;" in none.message_en


@pytest.mark.parametrize("values", [[0, 0, 0, 0, 0], ["ND"] * 5, [0, "未检出", 0, "ND", 0]])
def test_two_class_plan_all_zero_passes(values: list[Any]) -> None:
    assert_verdict(water("pseudomonas_aeruginosa", values, "CFU/250mL"), "pass", "within_limit")


def test_two_class_plan_single_positive_fails_with_c_0() -> None:
    assert_verdict(water("pseudomonas_aeruginosa", [0, 0, 0, 0, 1], "CFU/250mL"), "fail", "plan_exceeded_c")


@pytest.mark.parametrize("values", [[0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [0]])
def test_plan_needs_n_values(values: list[int]) -> None:
    j = water("pseudomonas_aeruginosa", values, "CFU/250mL")
    assert_verdict(j, "undetermined", "wrong_value_count")
    assert j.agrees_with_lab is None


def test_plan_counts_are_not_scaled_between_test_portions() -> None:
    result = judge("packaged_water", item("pseudomonas_aeruginosa", [0, 0, 0, 0, 0], "CFU/100mL"))
    assert_verdict(result.items[0], "undetermined", "unit_mismatch")
    assert result.verdict == "undetermined"


# --------------------------------------------------------------------------- three-class plan

APC = "aerobic_plate_count"  # n=5, c=2, m=10^4, M=10^5 CFU/g


def test_three_class_two_marginal_pass() -> None:
    j = pastry(APC, [20_000, 50_000, 100, 100, "ND"], "CFU/g")
    assert_verdict(j, "pass", "within_limit")
    assert j.limit_text == "n=5,c=2,m=10000,M=100000"


def test_three_class_three_marginal_fail() -> None:
    j = pastry(APC, [20_000, 50_000, 60_000, 100, 100], "CFU/g")
    assert_verdict(j, "fail", "plan_exceeded_c")
    assert j.message_zh == ("菌落总数：检验结果 20000;50000;60000;100;100 CFU/g，标准值 n=5,c=2,m=10000,M=100000 CFU/g（GB 7099-2015），"
                            "5个样品中3个介于m与M之间，多于c=2个，无超过M的结果，判定不合格"
                            "（注：GB 7099-2015 本项限量不适用于现制现售的产品，以及含有未熟制的发酵配料或新鲜水果蔬菜的产品，处置前请核实产品类型）")


def test_three_class_one_over_big_m_fails() -> None:
    j = pastry(APC, [100_001, 0, 0, 0, 0], "CFU/g")
    assert_verdict(j, "fail", "plan_over_M")
    assert j.message_zh == ("菌落总数：检验结果 100001;0;0;0;0 CFU/g，标准值 n=5,c=2,m=10000,M=100000 CFU/g（GB 7099-2015），"
                            "5个样品中1个超过M，判定不合格"
                            "（注：GB 7099-2015 本项限量不适用于现制现售的产品，以及含有未熟制的发酵配料或新鲜水果蔬菜的产品，处置前请核实产品类型）")


def test_three_class_value_equal_to_m_does_not_exceed() -> None:
    assert_verdict(pastry(APC, [10_000] * 5, "CFU/g"), "pass", "within_limit")


def test_three_class_value_equal_to_big_m_is_marginal_not_over() -> None:
    assert_verdict(pastry(APC, [100_000, 100_000, 0, 0, 0], "CFU/g"), "pass", "within_limit")
    assert_verdict(pastry(APC, [100_000, 100_000, 100_000, 0, 0], "CFU/g"), "fail", "plan_exceeded_c")


# --------------------------------------------------------------------------- sum of ratios


def test_sum_of_ratios_fails_although_each_passes() -> None:
    result = judge("pastry", item("sorbic_acid", [0.6], "g/kg"), item("propionic_acid", [1.2], "g/kg"))
    assert [j.verdict for j in result.items] == ["pass", "pass"]
    (check,) = result.sum_checks
    assert check.group == "preservative"
    assert check.verdict == "fail"
    assert check.total == pytest.approx(1.08)
    assert [(m.item_code, m.value, m.max, m.ratio) for m in check.members] == [
        ("sorbic_acid", 0.6, 1.0, 0.6),
        ("propionic_acid", 1.2, 2.5, 0.48),
    ]
    assert "1.08 > 1" in check.message_zh and "不合格" in check.message_zh
    assert result.verdict == "fail"


def test_sum_of_ratios_exactly_one_passes() -> None:
    # 0.3/1.0 + 1.75/2.5 is 1 exactly; in binary floats it is 0.9999999999999999 or 1.0000000000000002
    result = judge("pastry", item("sorbic_acid", [0.3], "g/kg"), item("propionic_acid", [1.75], "g/kg"))
    (check,) = result.sum_checks
    assert check.verdict == "pass" and check.total == 1.0
    assert result.verdict == "pass"


def test_sum_of_ratios_passing_mixture() -> None:
    result = judge("pastry", item("sorbic_acid", [0.4], "g/kg"), item("propionic_acid", [1.0], "g/kg"))
    (check,) = result.sum_checks
    assert check.verdict == "pass" and check.total == pytest.approx(0.8)


def test_sum_of_ratios_uses_converted_values() -> None:
    result = judge("pastry", item("sorbic_acid", [600], "mg/kg"), item("propionic_acid", [1200], "mg/kg"))
    assert result.sum_checks[0].verdict == "fail"


def test_sweeteners_are_not_summed() -> None:
    # GB 2760 sums the ratios of same-colour colourants, preservatives and antioxidants only:
    # 0.8/1.6 + 0.2/0.3 = 1.17, yet each sweetener is within its own maximum
    result = judge("pastry", item("cyclamate", [0.8], "g/kg"), item("acesulfame_k", [0.2], "g/kg"))
    assert result.sum_checks == ()
    assert result.verdict == "pass"


def test_sum_of_ratios_ignores_not_detected_and_single_members() -> None:
    result = judge("pastry", item("sorbic_acid", [0.9], "g/kg"), item("propionic_acid", ["ND"], "g/kg"))
    assert result.sum_checks == ()
    assert result.verdict == "pass"


def test_not_permitted_additive_fails_on_its_own_not_in_the_sum() -> None:
    result = judge("pastry", item("sorbic_acid", [0.9], "g/kg"), item("benzoic_acid", [0.1], "g/kg"))
    assert result.sum_checks == ()
    assert result.verdict == "fail"
    assert [j.reason for j in result.items] == ["within_limit", "not_permitted_detected"]


def test_dehydroacetic_acid_joins_the_sum_only_while_permitted() -> None:
    items = (item("sorbic_acid", [0.5], "g/kg"), item("dehydroacetic_acid", [0.3], "g/kg"))
    before = judge("pastry", *items, production_date="2025-02-07")
    assert before.sum_checks[0].verdict == "fail"  # 0.5/1.0 + 0.3/0.5 = 1.1
    after = judge("pastry", *items, production_date="2025-02-08")
    assert after.sum_checks == ()
    assert after.items[1].reason == "not_permitted_detected"


def test_sum_of_ratios_with_an_undetermined_member() -> None:
    pending = item("propionic_acid", [1.0], "ppm")
    under = judge("pastry", item("sorbic_acid", [0.3], "g/kg"), item("cyclamate", [0.1], "g/kg"), pending)
    # one detected preservative + one undetermined one: the sum cannot be known
    check = next(c for c in under.sum_checks if c.group == "preservative")
    assert check.verdict == "undetermined" and check.pending == ("propionic_acid",)
    over = judge("pastry", item("sorbic_acid", [0.7], "g/kg"), item("dehydroacetic_acid", [0.3], "g/kg"),
                 pending, production_date="2025-01-01")
    check = next(c for c in over.sum_checks if c.group == "preservative")
    assert check.verdict == "fail"  # already 1.3 without the unknown member
    assert over.verdict == "fail"


# --------------------------------------------------------------------------- editions


def test_dehydroacetic_acid_before_2024_edition_passes() -> None:
    j = pastry("dehydroacetic_acid", [0.3], "g/kg", production_date="2025-02-07")
    assert_verdict(j, "pass", "within_limit")
    assert (j.standard, j.edition, j.kind, j.limit_text) == ("GB 2760-2014", "2014", "maximum", "≤0.5 g/kg")


def test_dehydroacetic_acid_from_2024_edition_fails() -> None:
    j = pastry("dehydroacetic_acid", [0.3], "g/kg", production_date="2025-02-08")
    assert_verdict(j, "fail", "not_permitted_detected")
    assert (j.standard, j.edition, j.kind) == ("GB 2760-2024", "2024", "not_permitted")


def test_production_date_selects_the_edition_not_the_sampling_date() -> None:
    result = judge("pastry", item("dehydroacetic_acid", [0.3], "g/kg"),
                   production_date="2025-02-01", sampled_on="2025-03-01")
    assert result.edition_basis == "production_date"
    assert result.basis_date == dt.date(2025, 2, 1)
    assert result.items[0].edition == "2014"


def test_sampling_date_selects_the_edition_when_production_date_missing() -> None:
    early = judge("pastry", item("dehydroacetic_acid", [0.3], "g/kg"), production_date=None, sampled_on="2025-02-07")
    assert early.edition_basis == "sampled_on" and early.basis_date == dt.date(2025, 2, 7)
    assert early.verdict == "pass" and early.items[0].edition == "2014"
    # sampled more than the look-back (365 days) after the switch: only GB 2760-2024 can apply
    late = judge("pastry", item("dehydroacetic_acid", [0.3], "g/kg"), production_date=None, sampled_on="2026-02-09")
    assert late.edition_basis == "sampled_on"
    assert late.verdict == "fail" and late.items[0].edition == "2024"


@pytest.mark.parametrize("sampled_on", ["2025-02-08", "2025-03-01", "2026-02-07"])
def test_no_production_date_and_editions_that_disagree_is_undetermined(sampled_on: str) -> None:
    """Sampled on 2025-03-01 without a production date, a pastry may have been made before
    GB 2760-2024 took effect (2025-02-08): 0.1 g/kg dehydroacetic acid passes under 2014 and
    fails under 2024, so the sampling date alone cannot decide (it used to say 不合格)."""
    result = judge("pastry", item("dehydroacetic_acid", [0.1], "g/kg", lab_verdict="不合格"),
                   production_date=None, sampled_on=sampled_on)
    assert result.verdict == "undetermined" and result.disagreements == ()
    j = result.items[0]
    assert_verdict(j, "undetermined", "edition_uncertain")
    assert j.edition == "2024" and j.agrees_with_lab is None  # the sampling date's edition, as before
    assert "核实生产日期" in j.message_zh and f"抽样日期{sampled_on}前365天" in j.message_zh
    assert "按GB 2760-2014（2025-02-08前生产）判定合格" in j.message_zh
    assert "按GB 2760-2024（2025-02-08起生产）判定不合格" in j.message_zh
    assert "verify the production date" in j.message_en


def test_the_memo_tells_a_doubtful_edition_from_a_known_one() -> None:
    from processors import judgement

    judgement._MEMO.clear()
    dha = item("dehydroacetic_acid", [0.1], "g/kg")
    assert judge("pastry", dha, production_date=None, sampled_on="2025-03-01").verdict == "undetermined"
    assert judge("pastry", dha, production_date="2025-03-01", sampled_on="2025-03-01").verdict == "fail"
    assert judge("pastry", dha, production_date=None, sampled_on="2026-06-01").verdict == "fail"
    other_day = judge("pastry", dha, production_date=None, sampled_on="2025-03-02")
    assert "抽样日期2025-03-02" in other_day.items[0].message_zh


def test_no_production_date_and_editions_that_agree_is_judged() -> None:
    nd = judge("pastry", item("dehydroacetic_acid", ["ND"], "g/kg"), production_date=None, sampled_on="2025-03-01")
    assert nd.verdict == "pass" and nd.items[0].reason == "not_detected"
    over = judge("pastry", item("dehydroacetic_acid", [0.6], "g/kg"), production_date=None, sampled_on="2025-03-01")
    assert over.verdict == "fail" and over.items[0].edition == "2024"  # fails under either edition
    lead = judge("pastry", item("lead", [0.6], "mg/kg"), production_date=None, sampled_on="2023-07-01")
    assert lead.verdict == "fail" and lead.items[0].standard == "GB 2762-2022"


def test_an_undetermined_edition_leaves_the_sum_of_ratios_pending() -> None:
    result = judge("pastry", item("propionic_acid", [1.2], "g/kg"), item("sorbic_acid", [0.6], "g/kg"),
                   item("dehydroacetic_acid", [0.1], "g/kg"), production_date=None, sampled_on="2025-03-01")
    assert [j.verdict for j in result.items] == ["pass", "pass", "undetermined"]
    [check] = result.sum_checks
    assert check.verdict == "fail"  # 0.6/1.0 + 1.2/2.5 > 1 under both editions already


def test_the_look_back_is_catalogue_data(tmp_path: Path) -> None:
    data = tmp_path / "standards"
    shutil.copytree(Path(standards.__file__).parent / "standards", data)
    path = data / "pastry.yaml"
    text = path.read_text(encoding="utf-8")
    assert "edition_lookback_days: 365\n" in text
    path.write_text(text.replace("edition_lookback_days: 365\n", "edition_lookback_days: 10\n"), encoding="utf-8")
    catalogue = load_catalogue(str(data))
    doubt = judge_sample(sample(item("dehydroacetic_acid", [0.1], "g/kg"), production_date=None, sampled_on="2025-02-17"),
                         "pastry", catalogue)
    assert doubt.verdict == "undetermined" and "前10天" in doubt.items[0].message_zh
    after = judge_sample(sample(item("dehydroacetic_acid", [0.1], "g/kg"), production_date=None, sampled_on="2025-02-19"),
                         "pastry", catalogue)
    assert after.verdict == "fail"  # made within 10 days of 2025-02-19: under GB 2760-2024 only


def test_basis_note_says_when_the_sampling_date_chose_the_edition() -> None:
    assert judge("pastry", item("sorbic_acid", [0.1], "g/kg")).basis_note_zh is None
    result = judge("pastry", item("sorbic_acid", [0.1], "g/kg"), production_date=None, sampled_on="2025-02-07")
    assert result.basis_note_zh == "未提供生产日期，按抽样日期2025-02-07选择标准版本"
    assert result.basis_note_en


# --------------------------------------------------------------------------- product scope


def test_purified_water_limits_do_not_judge_a_mineral_water() -> None:
    """GB 17323's conductivity and pH are for purified water: a mineral water at pH 7.6 and
    350 µS/cm that the lab passed is not a failure (it was judged 不合格 before the scope)."""
    result = judge("packaged_water", item("ph", [7.6], "pH", lab_verdict="合格"),
                   item("conductivity", [350], "µS/cm", lab_verdict="合格"), product="饮用天然矿泉水")
    # nothing else was tested: no failure, but no 合格 either (see test_a_sample_with_nothing_judged_is_not_passed)
    assert (result.verdict, result.verdict_reason) == ("undetermined", "no_applicable_item") and result.disagreements == ()
    for j in result.items:
        assert_verdict(j, "not_applicable", "out_of_scope")
        assert (j.kind, j.standard, j.limit_text, j.agrees_with_lab) == (None, None, None, None)
        assert "仅适用于饮用纯净水" in j.message_zh and "饮用天然矿泉水" in j.message_zh
        assert "GB 17323" in j.message_zh and j.message_en
    assert result.items[0].values == (7.6,) and result.items[1].values == (350.0,)


@pytest.mark.parametrize("product", ["饮用纯净水", "桶装饮用纯净水", "饮用蒸馏水"])
def test_purified_water_is_still_judged_on_them(product: str) -> None:
    result = judge("packaged_water", item("ph", [7.6], "pH"), item("conductivity", [350], "µS/cm"), product=product)
    assert result.verdict == "fail"
    assert [j.reason for j in result.items] == ["out_of_range", "over_maximum"]


def test_an_out_of_scope_item_neither_fails_nor_clouds_the_sample() -> None:
    spring = judge("packaged_water", item("ph", [7.6], "pH"), item("pseudomonas_aeruginosa", [0, 3, 0, 0, 0], "CFU/250mL"),
                   product="饮用天然泉水")
    assert spring.verdict == "fail" and [j.verdict for j in spring.items] == ["not_applicable", "fail"]
    clean = judge("packaged_water", item("ph", [7.6], "pH"), item("free_chlorine", ["ND"], "mg/L"), product="饮用天然泉水")
    assert clean.verdict == "pass"


def test_a_sample_with_nothing_judged_is_not_passed() -> None:
    """合格 means judged against the product's standard and found conforming.  A spring water tested
    for pH only (a purified water's index, GB 17323) was 合格 though nothing was judged, and the lab
    had failed it; a purified water with only 菌落总数 (dropped from GB 19298-2014) likewise.  Each
    inflated the pass rate the campaign compares with the provincial average."""
    spring = judge("packaged_water", item("ph", [7.6], "pH", lab_verdict="不合格"), product="饮用天然泉水")
    assert [(j.verdict, j.reason) for j in spring.items] == [("not_applicable", "out_of_scope")]
    assert (spring.verdict, spring.verdict_reason) == ("undetermined", "no_applicable_item")
    assert spring.verdict_note_zh == ("无适用判定项目：本样品的检验项目（pH值）均不适用于本产品（饮用天然泉水）的判定或现行标准已不再规定，"
                                      "无法判定样品是否合格")
    assert spring.verdict_note_en and spring.verdict_note_en.startswith("no applicable item")
    assert spring.unknown == ()  # nothing unknown: the catalogue knows the item, and it does not apply
    purified = judge("packaged_water", item("aerobic_plate_count", [500], "CFU/mL"))
    assert [(j.verdict, j.reason) for j in purified.items] == [("not_applicable", "no_longer_limited")]
    assert (purified.verdict, purified.verdict_reason) == ("undetermined", "no_applicable_item")
    assert "菌落总数" in purified.verdict_note_zh  # type: ignore[operator]
    # one item judged is enough for a verdict; the others are shown, not judged
    judged = judge("packaged_water", item("aerobic_plate_count", [500], "CFU/mL"), item("free_chlorine", [0.01], "mg/L"))
    assert (judged.verdict, judged.verdict_reason, judged.verdict_note_zh) == ("pass", None, None)


def test_cyanide_is_for_purified_water_only() -> None:
    assert judge("packaged_water", item("cyanide", [0.06], "mg/L"), product="饮用蒸馏水").verdict == "fail"
    spring = judge("packaged_water", item("cyanide", [0.06], "mg/L"), item("free_chlorine", ["ND"], "mg/L"), product="饮用天然泉水")
    assert spring.verdict == "pass" and spring.items[0].verdict == "not_applicable"


def test_a_lab_failing_an_out_of_scope_item_is_a_disagreement() -> None:
    result = judge("packaged_water", item("conductivity", [350], "µS/cm", lab_verdict="不合格"), product="饮用天然矿泉水")
    assert result.verdict == "undetermined" and result.disagreements == ("conductivity",)
    j = result.items[0]
    assert j.verdict == "not_applicable" and j.agrees_with_lab is False and "请核实产品类别" in j.message_zh


def test_the_memo_tells_products_in_and_out_of_scope_apart() -> None:
    """Same item, same values, same rule: only the product differs, and it decides."""
    from processors import judgement

    judgement._MEMO.clear()
    ph = item("ph", [7.6], "pH")
    assert judge("packaged_water", ph, product="饮用天然矿泉水").items[0].verdict == "not_applicable"
    assert judge("packaged_water", ph, product="饮用纯净水").verdict == "fail"
    other = judge("packaged_water", ph, product="饮用山泉水")
    assert other.items[0].verdict == "not_applicable" and "饮用山泉水" in other.items[0].message_zh


def test_lead_made_before_2023_06_30_is_judged_by_gb_2762_2017() -> None:
    old = pastry("lead", [0.6], "mg/kg", production_date="2019-01-01", sampled_on="2019-02-01")
    assert old.verdict == "fail" and (old.standard, old.edition) == ("GB 2762-2017", "2017")
    assert "GB 2762-2017" in old.message_zh and "尚待核实" in old.message_zh
    new = water("lead", [0.005], "mg/L", production_date="2023-06-30", sampled_on="2023-07-10")
    assert new.verdict == "pass" and new.standard == "GB 2762-2022" and new.verified is True


def test_salmonella_in_a_pastry_fails_on_one_positive_portion() -> None:
    assert_verdict(pastry("salmonella", ["ND"] * 5, "/25g"), "pass", "within_limit")
    j = pastry("salmonella", ["ND", 1, "ND", "ND", "ND"], "/25g")
    assert_verdict(j, "fail", "plan_exceeded_c")
    assert j.item_class == "pathogen" and j.standard == "GB 29921-2021" and "尚待核实" in j.message_zh


def test_staphylococcus_aureus_three_class_plan() -> None:
    assert_verdict(pastry("staphylococcus_aureus", [150, 20, "ND", 10, 0], "CFU/g"), "pass", "within_limit")
    assert_verdict(pastry("staphylococcus_aureus", [150, 200, 0, 0, 0], "CFU/g"), "fail", "plan_exceeded_c")
    assert_verdict(pastry("staphylococcus_aureus", [1100, 0, 0, 0, 0], "CFU/g"), "fail", "plan_over_M")


def test_natamycin_residue_on_a_pastry() -> None:
    assert_verdict(pastry("natamycin", [5], "mg/kg"), "pass", "within_limit")
    assert_verdict(pastry("natamycin", [0.012], "g/kg"), "fail", "over_maximum")
    # a surface residue limit, not a use level: not summed with the preservatives
    result = judge("pastry", item("natamycin", [8], "mg/kg"), item("sorbic_acid", [0.6], "g/kg"),
                   item("propionic_acid", [0.9], "g/kg"))
    assert result.verdict == "pass" and [m.item_code for m in result.sum_checks[0].members] == ["sorbic_acid", "propionic_acid"]


@pytest.mark.parametrize("code", ["benzoic_acid", "sorbic_acid", "dehydroacetic_acid", "saccharin_sodium", "cyclamate", "acesulfame_k"])
def test_any_preservative_or_sweetener_found_in_water_fails(code: str) -> None:
    assert_verdict(water(code, [0.02], "g/kg"), "fail", "not_permitted_detected")
    assert_verdict(water(code, ["ND"], "mg/L"), "pass", "not_detected")


def test_unverified_limit_is_said_in_the_message() -> None:
    j = pastry("coliforms", [0, 0, 0, 0, 0], "CFU/g")
    assert j.verified is False and "尚待核实" in j.message_zh and "not yet verified" in j.message_en
    j = pastry("sorbic_acid", [0.1], "g/kg")
    assert j.verified is True and "核实" not in j.message_zh
    # propionic acid is verified under GB 2760-2014 only
    check = judge("pastry", item("sorbic_acid", [0.6], "g/kg"), item("propionic_acid", [1.2], "g/kg"),
                  production_date="2025-03-01").sum_checks[0]
    # the note names the limit to check, not "some limits"
    names = {m.item_code: m.item_name for m in check.members}
    assert f"（注：{names['propionic_acid']}的限值尚待核实）" in check.message_zh
    assert names["sorbic_acid"] not in check.message_zh.split("（注：")[-1]


def test_no_rule_in_force_is_undetermined(tmp_path: Path) -> None:
    data = tmp_path / "standards"
    shutil.copytree(Path(standards.__file__).parent / "standards", data)
    path = data / "packaged_water.yaml"
    text = path.read_text(encoding="utf-8")
    old = "- {standard: GB 19298-2014, edition: \"2014\", applies_from: null, applies_to: null,\n         kind: maximum, max: 0.05,"
    assert old in text
    path.write_text(text.replace(old, old.replace("applies_from: null", "applies_from: 2015-05-24")), encoding="utf-8")
    catalogue = load_catalogue(str(data))
    result = judge_sample(sample(item("free_chlorine", [0.01], "mg/L"), production_date="2015-01-01"),
                          "packaged_water", catalogue)
    assert_verdict(result.items[0], "undetermined", "no_rule_in_force")
    assert result.catalogue_digest == catalogue.digest != CAT.digest


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize("unit", ["µg/L", "μg/L", "ug/L", "ug/l", "µg / L"])
def test_micrograms_per_litre_convert_exactly(unit: str) -> None:
    j = water("free_chlorine", [50], unit)
    assert_verdict(j, "pass", "within_limit")  # 50 µg/L == 0.05 mg/L: equal passes
    assert (j.values, j.unit) == ((0.05,), "mg/L")
    assert_verdict(water("free_chlorine", [51], unit), "fail", "over_maximum")


def test_detection_limit_converts_with_the_values() -> None:
    j = water("lead", ["ND"], "µg/L", detection_limit=20)
    assert j.detection_limit == 0.02
    assert_verdict(j, "undetermined", "detection_limit_above_limit")
    assert_verdict(water("lead", ["ND"], "µg/L", detection_limit=5), "pass", "not_detected")


def test_milligrams_per_kilogram_convert_to_grams_per_kilogram() -> None:
    j = pastry("sorbic_acid", [1000], "mg/kg")
    assert_verdict(j, "pass", "within_limit")
    assert (j.values, j.unit, j.ratio) == ((1.0,), "g/kg", 1.0)
    assert_verdict(pastry("sorbic_acid", [1001], "mg/kg"), "fail", "over_maximum")


def test_grams_per_kilogram_convert_to_milligrams_per_kilogram() -> None:
    j = pastry("aluminium", [0.1], "g/kg")
    assert_verdict(j, "pass", "within_limit")
    assert j.values == (100.0,)
    assert_verdict(pastry("aluminium", [0.1001], "g/kg"), "fail", "over_maximum")


def test_unknown_unit_is_reported_not_guessed() -> None:
    result = judge("pastry", item("aluminium", [80], "ppm"))
    j = result.items[0]
    assert_verdict(j, "undetermined", "unknown_unit")
    assert (j.values, j.unit, j.limit_text) == ((80,), "ppm", "≤100 mg/kg")
    assert [(u.kind, u.item_code, u.text) for u in result.unknown] == [("unit", "aluminium", "ppm")]
    assert result.verdict == "undetermined"


def test_the_undetermined_verdict_has_one_chinese_name() -> None:
    """无法判定, never 待定: the credit file and the alerts say 无法判定 for the same verdict."""
    unit = judge("pastry", item("aluminium", [80], "ppm")).items[0]
    assert unit.message_zh.endswith("无法与GB 2760-2014限值（mg/kg）比较，无法判定") and "待定" not in unit.message_zh
    pending = judge("pastry", item("sorbic_acid", [0.3], "g/kg"), item("propionic_acid", [1.0], "ppm")).sum_checks[0]
    assert pending.verdict == "undetermined" and "待定" not in pending.message_zh
    assert "丙酸及其钠盐、钙盐（以丙酸计）结果无法判定，故比例之和无法判定" in pending.message_zh


def test_unconvertible_unit_is_a_mismatch() -> None:
    result = judge("packaged_water", item("lead", [0.001], "mg/kg"))
    assert_verdict(result.items[0], "undetermined", "unit_mismatch")
    assert [(u.kind, u.text) for u in result.unknown] == [("unit_mismatch", "mg/kg")]


# --------------------------------------------------------------------------- unknown items and categories


def test_unknown_item_is_reported() -> None:
    # nitrate is limited for some waters by other standards; this catalogue has no such item
    result = judge("packaged_water", item("nitrate", [10], "mg/L", item_name="硝酸盐"),
                   item("free_chlorine", ["ND"], "mg/L"))
    j = result.items[0]
    assert_verdict(j, "undetermined", "unknown_item")
    assert (j.item_name, j.item_class, j.standard, j.kind) == ("硝酸盐", None, None, None)
    assert [(u.kind, u.item_code) for u in result.unknown] == [("item", "nitrate")]
    assert result.verdict == "undetermined"  # the rest passes, but not every item was judged


def test_unknown_category_judges_nothing() -> None:
    result = judge("other", item("lead", [0.001], "mg/kg"))
    assert_verdict(result.items[0], "undetermined", "unknown_category")
    assert [(u.kind, u.text) for u in result.unknown] == [("category", "other")]


def test_fail_outweighs_undetermined() -> None:
    result = judge("packaged_water", item("mystery_item", [1], "mg/L"),
                   item("pseudomonas_aeruginosa", [0, 0, 0, 0, 2], "CFU/250mL"))
    assert result.verdict == "fail"


def test_negative_value_is_undetermined() -> None:
    assert_verdict(water("bromate", [-0.001], "mg/L"), "undetermined", "negative_value")


# --------------------------------------------------------------------------- the lab's verdict


def test_lab_disagreement_is_flagged() -> None:
    result = judge(
        "packaged_water",
        item("pseudomonas_aeruginosa", [0, 0, 3, 0, 1], "CFU/250mL", lab_verdict="合格"),
        item("free_chlorine", [0.01], "mg/L", lab_verdict="合格"),
        item("bromate", [0.005], "mg/L"),
        item("lead", ["ND"], "mg/L", detection_limit=0.02, lab_verdict="pass"),
    )
    agrees = {j.item_code: (j.lab_verdict, j.agrees_with_lab) for j in result.items}
    assert agrees == {
        "pseudomonas_aeruginosa": ("pass", False),
        "free_chlorine": ("pass", True),
        "bromate": (None, None),  # no lab verdict
        "lead": ("pass", None),  # qrisk undetermined
    }
    assert result.disagreements == ("pseudomonas_aeruginosa",)


def test_lab_fail_on_a_pass_is_a_disagreement_too() -> None:
    # e.g. a lab still applying GB 2760-2024 to a product made before 2025-02-08
    result = judge("pastry", item("dehydroacetic_acid", [0.3], "g/kg", lab_verdict="不合格",
                                  standard_ref="GB 2760-2024"), production_date="2025-01-20")
    j = result.items[0]
    assert (j.verdict, j.agrees_with_lab, j.lab_standard, j.standard) == ("pass", False, "GB 2760-2024", "GB 2760-2014")
    assert result.disagreements == ("dehydroacetic_acid",)


# --------------------------------------------------------------------------- results as state


def full_sample() -> SamplingResult:
    return sample(
        item("sorbic_acid", [0.6], "g/kg", lab_verdict="合格"),
        item("propionic_acid", [1200], "mg/kg"),
        item(APC, [20_000, "ND", 0, 5, 100_000], "CFU/g"),
        item("aluminium", ["ND"], "mg/kg", detection_limit=5.0),
        item("natamycin", [0.01], "g/kg"),
    )


def test_judgement_is_json_round_trippable_and_frozen() -> None:
    result = judge_sample(full_sample(), "pastry", CAT)
    again = SampleJudgement.model_validate_json(result.model_dump_json())
    assert again == result
    with pytest.raises(pydantic.ValidationError):
        result.items[0].verdict = "pass"  # type: ignore[misc]


def test_judgement_is_deterministic() -> None:
    a = judge_sample(full_sample(), "pastry", CAT).model_dump_json()
    b = judge_sample(full_sample(), "pastry", load_catalogue(str(Path(standards.__file__).parent / "standards")))
    assert a == b.model_dump_json()


def test_every_message_is_bilingual_and_non_empty() -> None:
    result = judge_sample(full_sample(), "pastry", CAT)
    for j in result.items:
        assert j.message_zh and j.message_en
        assert j.message_zh != j.message_en
    for check in result.sum_checks:
        assert check.message_zh and check.message_en


@pytest.mark.parametrize("first, then", [
    ([1], [1.0]), ([1.0], [1]),            # a lab's integer and its float
    ([0.0], [-0.0]), ([-0.0], [0]),        # zeros of either sign
    ([0, 0, 0, 0, 0], [0.0, -0.0, 0, 0, 0]),
])
def test_memoised_judgement_is_what_a_fresh_one_gives(first: list[Any], then: list[Any]) -> None:
    """Item judgements are memoised by their inputs; numbers that compare equal but are stored
    differently must still come back exactly as a fresh judgement would store them."""
    from processors import judgement

    def both(values: list[Any]) -> SampleJudgement:
        return judge("pastry", item("sorbic_acid", values[:1], "g/kg"), item("propionic_acid", values[:1], "g/kg"),
                     item("aerobic_plate_count", values + [0] * (5 - len(values)), "CFU/g"))

    judgement._MEMO.clear()
    fresh = both(then).model_dump_json()
    judgement._MEMO.clear()
    both(first)
    assert both(then).model_dump_json() == fresh


def test_a_sum_of_ratios_the_lab_reports_is_judged_against_one():
    """SAMR announcements publish the sum itself (防腐剂混合使用时…比例之和 1.35), without the members."""
    over = pastry("preservative_ratio_sum", [1.35], "无量纲")
    assert over.verdict == "fail" and over.kind == "maximum" and over.ratio == 1.35
    assert pastry("preservative_ratio_sum", [0.8], "无量纲").verdict == "pass"
    assert pastry("preservative_ratio_sum", [1.0], "/").verdict == "pass"  # "not exceed 1": 1 itself passes
    # not a member of the preservatives' own sum: reported next to sorbic acid, it is not counted twice
    j = judge("pastry", item("preservative_ratio_sum", [0.9], "无量纲"), item("sorbic_acid", [0.5], "g/kg"))
    assert j.verdict == "pass" and all(m.item_code != "preservative_ratio_sum" for c in j.sum_checks for m in c.members)


def test_a_ph_printed_as_dimensionless_is_still_a_ph():
    assert water("ph", [6.2], "无量纲").verdict == "pass" and water("ph", [4.2], "无量纲").verdict == "fail"


# --------------------------------------------------------------------------- figures that agree with the verdict


@pytest.mark.parametrize("propionic,shown,verdict", [(1.26, "1.004 > 1", "fail"), (1.24, "0.996 ≤ 1", "pass")])
def test_a_sum_of_ratios_near_one_shows_the_digits_that_decide(propionic: float, shown: str, verdict: str) -> None:
    """0.5/1.0 + 1.26/2.5 = 1.004 fails and 0.5/1.0 + 1.24/2.5 = 0.996 passes: both printed
    "1.00" once, so a supervisor saw a failure at the limit and a pass at the limit."""
    (check,) = judge("pastry", item("sorbic_acid", [0.5], "g/kg"), item("propionic_acid", [propionic], "g/kg")).sum_checks
    assert check.verdict == verdict
    assert shown in check.message_zh and shown in check.message_en
    assert "1.00 " not in check.message_zh and "1.00 " not in check.message_en


def test_a_sum_of_exactly_one_still_reads_as_one() -> None:
    (check,) = judge("pastry", item("sorbic_acid", [0.3], "g/kg"), item("propionic_acid", [1.75], "g/kg")).sum_checks
    assert check.verdict == "pass" and "= 1.00 ≤ 1" in check.message_zh


def test_a_value_just_over_the_maximum_shows_how_many_times_the_limit_it_is() -> None:
    j = pastry("sorbic_acid", [1.004], "g/kg")
    assert j.verdict == "fail"
    assert "为限值的1.004倍" in j.message_zh and "1.004 times the limit" in j.message_en
    far = pastry("sorbic_acid", [1.5], "g/kg")
    assert "为限值的1.50倍" in far.message_zh and "1.50 times the limit" in far.message_en
    # the smallest excess a float can carry is still not printed as 1.00
    tiny = water("free_chlorine", [0.05000000000000001], "mg/L")
    assert tiny.verdict == "fail" and "为限值的1.00倍" not in tiny.message_zh


# --------------------------------------------------------------------------- the sum of ratios says what it summed


@pytest.mark.parametrize("made,edition", [("2024-06-01", "GB 2760-2014"), ("2025-03-01", "GB 2760-2024")])
def test_the_sum_of_ratios_cites_the_edition_its_members_were_judged_by(made: str, edition: str) -> None:
    result = judge("pastry", item("sorbic_acid", [0.6], "g/kg"), item("propionic_acid", [1.2], "g/kg"), production_date=made)
    (check,) = result.sum_checks
    assert {j.standard for j in result.items} == {edition}
    assert check.standard == edition
    assert f"{edition}规定" in check.message_zh and edition in check.message_en
    assert "GB 2760规定" not in check.message_zh


def test_the_sum_of_ratios_shows_each_value_and_maximum_with_its_unit() -> None:
    (check,) = judge("pastry", item("sorbic_acid", [600], "mg/kg"), item("propionic_acid", [1.2], "g/kg")).sum_checks
    assert "山梨酸及其钾盐（以山梨酸计） 0.6 g/kg / 1.0 g/kg" in check.message_zh
    assert "丙酸及其钠盐、钙盐（以丙酸计） 1.2 g/kg / 2.5 g/kg" in check.message_zh
    assert "0.6 g/kg / 1.0 g/kg" in check.message_en and "1.2 g/kg / 2.5 g/kg" in check.message_en
    assert [m.unit for m in check.members] == ["g/kg", "g/kg"]


def test_the_sum_of_ratios_is_named_as_samr_names_it() -> None:
    """SAMR announcements name the failed item 防腐剂混合使用时各自用量占其最大使用量的比例之和: the
    catalogue holds that wording (the item a lab's own reported sum maps to), and the check uses it."""
    (check,) = judge("pastry", item("sorbic_acid", [0.6], "g/kg"), item("propionic_acid", [1.2], "g/kg")).sum_checks
    samr = CAT.item("pastry", "preservative_ratio_sum").name_zh
    assert check.item_name == samr == "防腐剂混合使用时各自用量占其最大使用量的比例之和"
    assert check.message_zh.startswith(samr + "：")
    assert check.group_name == "防腐剂"  # unchanged: consumers still compose their own labels from it


# --------------------------------------------------------------------------- natural mineral water (GB 8537, not catalogued)

MINERAL = "饮用天然矿泉水"


def test_a_natural_mineral_water_is_not_judged_by_gb_19298() -> None:
    """GB 19298-2014 does not cover natural mineral water (GB 8537-2018, not in the catalogue):
    bromate 0.012 mg/L was judged 不合格 against GB 19298's 0.01."""
    j = water("bromate", [0.012], "mg/L", product=MINERAL)
    assert_verdict(j, "not_applicable", "uncatalogued_standard")
    assert "饮用天然矿泉水适用 GB 8537-2018（本目录未收录），不按 GB 19298-2014 判定" in j.message_zh
    assert "GB 8537-2018" in j.message_en and "GB 19298-2014" in j.message_en
    assert (j.kind, j.standard, j.limit_text, j.agrees_with_lab) == (None, None, None, None)
    assert j.values == (0.012,) and j.unit == "mg/L"


def test_a_mineral_water_judged_only_by_gb_19298_items_is_undetermined_not_passed() -> None:
    """Every item not applicable: the sample is not 合格 by default.  It is undetermined, as for an
    item the catalogue lacks, and the standard it lacks is reported."""
    result = judge("packaged_water", item("bromate", [0.003], "mg/L"), item("free_chlorine", ["ND"], "mg/L"),
                   item("coliforms", [0, 0, 0, 0, 0], "CFU/100mL"), product=MINERAL)
    assert [j.verdict for j in result.items] == ["not_applicable"] * 3
    assert result.verdict == "undetermined"
    assert [(u.kind, u.item_code, u.text) for u in result.unknown] == [
        ("standard", "bromate", "GB 8537-2018"), ("standard", "free_chlorine", "GB 8537-2018"), ("standard", "coliforms", "GB 8537-2018")]
    assert result.disagreements == ()


def test_a_mineral_water_still_fails_on_what_its_own_standards_forbid() -> None:
    """GB 2762 (contaminants of 包装饮用水) and GB 2760 (cat. 14.01, which holds natural mineral water)
    cover it: lead over 0.01 mg/L or a preservative found still fails it."""
    result = judge("packaged_water", item("bromate", [0.012], "mg/L"), item("lead", [0.02], "mg/L"),
                   item("sorbic_acid", [3], "mg/L"), product=MINERAL)
    assert [(j.verdict, j.standard) for j in result.items] == [
        ("not_applicable", None), ("fail", "GB 2762-2022"), ("fail", "GB 2760-2014")]
    assert result.verdict == "fail"
    clean = judge("packaged_water", item("bromate", [0.012], "mg/L"), item("lead", ["ND"], "mg/L"), product=MINERAL)
    assert clean.verdict == "undetermined"  # lead passes, bromate is for GB 8537 to judge


@pytest.mark.parametrize("product", ["饮用纯净水", "饮用天然泉水", "饮用矿物质水", "桶装饮用水"])
def test_other_packaged_waters_are_still_judged_by_gb_19298(product: str) -> None:
    """饮用矿物质水 (water with minerals added) is 其他饮用水 of GB 19298, not a mineral water."""
    j = water("bromate", [0.012], "mg/L", product=product)
    assert_verdict(j, "fail", "over_maximum")
    assert j.standard == "GB 19298-2014"


def test_a_mineral_waters_cyanide_is_for_gb_8537_and_its_ph_for_no_one() -> None:
    """Cyanide is limited for mineral water by GB 8537 (not catalogued): undetermined sample.  pH and
    conductivity are GB 17323 indices of purified water and limit no mineral water: out of scope,
    so a sample of only those is undetermined for want of an applicable item, not for a missing standard."""
    cyanide = judge("packaged_water", item("cyanide", [0.002], "mg/L"), product=MINERAL)
    assert cyanide.items[0].reason == "uncatalogued_standard" and cyanide.verdict == "undetermined"
    ph = judge("packaged_water", item("ph", [7.6], "pH"), product=MINERAL)
    assert ph.items[0].reason == "out_of_scope" and ph.unknown == ()
    assert (ph.verdict, ph.verdict_reason) == ("undetermined", "no_applicable_item")


def test_a_lab_failing_a_mineral_water_by_its_own_standard_is_no_disagreement() -> None:
    result = judge("packaged_water", item("bromate", [0.012], "mg/L", lab_verdict="不合格", standard_ref="GB 8537-2018"),
                   product=MINERAL)
    j = result.items[0]
    assert j.lab_verdict == "fail" and j.agrees_with_lab is None and result.disagreements == ()
    assert "检验机构判定不合格" in j.message_zh and "GB 8537-2018" in j.message_zh
    assert result.verdict == "undetermined"


def test_the_memo_tells_a_mineral_water_from_another_water() -> None:
    from processors import judgement

    judgement._MEMO.clear()
    bromate = item("bromate", [0.012], "mg/L")
    assert judge("packaged_water", bromate, product="饮用纯净水").verdict == "fail"
    assert judge("packaged_water", bromate, product=MINERAL).verdict == "undetermined"
    assert judge("packaged_water", bromate, product="饮用纯净水").verdict == "fail"
    other = judge("packaged_water", bromate, product="某某牌天然矿泉水")
    assert other.verdict == "undetermined" and "某某牌天然矿泉水" in other.items[0].message_zh


# --------------------------------------------------------------------------- items a standard no longer limits


@pytest.mark.parametrize("code,name,shown", [("aerobic_plate_count", "菌落总数", "菌落总数"), ("moulds", "霉菌", "霉菌"),
                                             ("yeasts", "酵母", "酵母")])
def test_water_is_not_judged_on_what_gb_19298_2014_dropped(code: str, name: str, shown: str) -> None:
    """domain.md: total plate count and moulds/yeasts were dropped from the 2014 edition.  A lab that
    still reports them left the whole sample undetermined (unknown_item); now the item is shown as
    not judged, and the sample is judged on its other items."""
    result = judge("packaged_water", item(code, [10], "CFU/mL", item_name=name), item("free_chlorine", ["ND"], "mg/L"))
    j = result.items[0]
    assert_verdict(j, "not_applicable", "no_longer_limited")
    assert j.message_zh == f"{shown}：GB 19298-2014 已不再规定该项目，不作判定"
    assert "GB 19298-2014" in j.message_en and "no longer limits" in j.message_en
    assert (j.standard, j.kind, j.limit_text, j.agrees_with_lab) == ("GB 19298-2014", None, None, None)
    assert j.values == (10.0,) and j.unit == "CFU/mL"
    assert result.unknown == () and result.verdict == "pass"
    failing = judge("packaged_water", item(code, [10], "CFU/mL"), item("free_chlorine", [0.2], "mg/L"))
    assert failing.verdict == "fail" and failing.items[0].verdict == "not_applicable"


def test_an_item_no_longer_limited_is_not_judged_in_any_unit() -> None:
    j = water("aerobic_plate_count", [3, 5], "CFU/100mL")
    assert_verdict(j, "not_applicable", "no_longer_limited")
    assert judge("packaged_water", item("aerobic_plate_count", [3], "个/mL")).unknown == ()


def test_a_lab_failing_water_on_a_dropped_item_is_a_disagreement() -> None:
    result = judge("packaged_water", item("aerobic_plate_count", [120], "CFU/mL", lab_verdict="不合格"))
    j = result.items[0]
    assert j.agrees_with_lab is False and result.disagreements == ("aerobic_plate_count",)
    assert "检验机构判定不合格" in j.message_zh and result.verdict == "undetermined"


def test_pastry_is_still_judged_on_plate_count_and_moulds() -> None:
    assert_verdict(pastry("moulds", [151], "CFU/g"), "fail", "over_maximum")
    assert pastry("aerobic_plate_count", [10, 10, 10, 10, 200000], "CFU/g").verdict == "fail"


def test_the_door_does_not_call_a_dropped_item_unknown() -> None:
    from ingest.lint import event_warnings
    from schemas.upcast import parse_event
    from tests.conftest import golden

    doc = golden("sampling.result")
    doc["payload"]["items"].append({"item_code": "aerobic_plate_count", "item_name": "菌落总数", "values": [12], "unit": "CFU/mL"})
    assert event_warnings(parse_event(doc), CAT, "packaged_water") == []


# --------------------------------------------------------------------------- units an item accepts besides its own


@pytest.mark.parametrize("unit", ["MPN/100mL", "mpn/100mL", "CFU/100mL"])
def test_water_coliforms_in_mpn_are_judged_as_the_standard_reports_them(unit: str) -> None:
    """GB 19298-2014 表3 gives 大肠菌群 n=5, c=0, m=0 in MPN/100mL, CFU/100mL by the membrane-filter
    method (its footnote): both report the item; any positive count fails either way."""
    clean = water("coliforms", [0, "ND", 0, 0, 0], unit)
    assert_verdict(clean, "pass", "within_limit")
    dirty = judge("packaged_water", item("coliforms", [0, 0, 2, 0, 0], unit))
    assert_verdict(dirty.items[0], "fail", "plan_exceeded_c")
    assert dirty.verdict == "fail" and dirty.unknown == ()
    canonical = "MPN/100mL" if unit.lower().startswith("mpn") else "CFU/100mL"
    assert dirty.items[0].unit == canonical and f"m=0 {canonical}" in dirty.items[0].message_zh


@pytest.mark.parametrize("unit", ["CFU/mL", "MPN/g", "CFU/250mL"])
def test_water_coliforms_in_another_unit_are_still_a_mismatch(unit: str) -> None:
    result = judge("packaged_water", item("coliforms", [0, 0, 0, 0, 0], unit))
    assert_verdict(result.items[0], "undetermined", "unit_mismatch")
    assert [(u.kind, u.text) for u in result.unknown] == [("unit_mismatch", unit)]


def test_an_accepted_unit_is_the_items_not_a_conversion() -> None:
    """MPN and CFU are different methods: the unit table still converts neither into the other, and
    an item without the footnote (pastry coliforms, CFU/g) does not take MPN."""
    units = CAT.units
    assert units.factor(units.resolve("MPN/100mL"), units.resolve("CFU/100mL")) is None
    assert pastry("coliforms", [0, 0, 0, 0, 0], "MPN/g").reason == "unit_mismatch"
    assert water("pseudomonas_aeruginosa", [0, 0, 0, 0, 0], "MPN/100mL").reason == "unit_mismatch"


def test_an_absurd_value_is_judged_not_a_crash() -> None:
    # 1e60 mg/L (a unit or typing error) passes the door as a finite number; its ratio to the limit
    # once made the exact-decimal formatting raise, and the sample never raised its warning
    j = water("bromate", [1e60], "mg/L")
    assert j.verdict == "fail" and "倍" in j.message_zh
    assert pastry("sorbic_acid", [1e58], "g/kg").verdict == "fail"


# --------------------------------------------------------------------------- caveats


def test_a_cyanide_failure_says_the_limit_is_for_distilled_water_only():
    failed = water("cyanide", [0.06], "mg/L")
    assert_verdict(failed, "fail", "over_maximum")
    assert "仅适用于蒸馏法加工的饮用纯净水，处置前请核实该产品的加工工艺" in failed.message_zh
    assert "distilled purified water only" in failed.message_en
    # a pass under a verified limit carries no note
    assert "注" not in water("cyanide", [0.01], "mg/L").message_zh


def test_a_pastry_plate_count_or_coliform_failure_says_which_products_the_limit_spares():
    """GB 7099-2015's microbial limits do not apply to products made and sold on the spot, nor to those with fresh fruit
    or vegetables or unripened fermented ingredients: a failure says so, for the supervisor to check before acting."""
    spared = "不适用于现制现售的产品，以及含有未熟制的发酵配料或新鲜水果蔬菜的产品，处置前请核实产品类型"
    apc = pastry("aerobic_plate_count", [200000, 100, 100, 100, 100], "CFU/g")
    assert_verdict(apc, "fail", "plan_over_M")
    assert spared in apc.message_zh and "made and sold on the spot" in apc.message_en
    assert "注" not in pastry("aerobic_plate_count", [100, 100, 100, 100, 100], "CFU/g").message_zh  # a pass: no note
    coliforms = pastry("coliforms", [1000, 1, 1, 1, 1], "CFU/g")
    assert_verdict(coliforms, "fail", "plan_over_M")
    assert spared in coliforms.message_zh and "该限值尚待核实" in coliforms.message_zh  # the number is in doubt too


def test_an_unverified_rule_says_what_is_in_doubt_not_always_the_limit():
    phenols = water("volatile_phenols", [0.001], "mg/L")
    assert phenols.verdict == "pass" and "（注：该项目限值的适用范围（哪些饮用水）尚待核实）" in phenols.message_zh
    saccharin = pastry("saccharin_sodium", [0.05], "g/kg")
    assert saccharin.verdict == "fail" and "（注：糕点中是否允许使用尚待核实）" in saccharin.message_zh
    assert "该限值尚待核实" not in saccharin.message_zh
    # a rule without a caveat whose number is in doubt still says so
    assert "（注：该限值尚待核实）" in pastry("cyclamate", [0.5], "g/kg").message_zh


@pytest.mark.parametrize("code", ["sucralose", "aspartame", "parabens", "natamycin", "propionic_acid"])
def test_any_preservative_or_sweetener_found_in_water_fails_it(code):
    found = water(code, [0.5], "mg/L")
    assert_verdict(found, "fail", "not_permitted_detected")
    assert "不得使用" in found.message_zh or "不允许" in found.message_zh, found.message_zh
    assert water(code, ["ND"], "mg/L").verdict == "pass"


def test_a_water_sold_as_饮用纯水_is_judged_as_purified_water():
    # (纯水 is not a fragment of 纯净水: without it, conductivity and pH were out of scope and the sample undetermined)
    assert water("conductivity", [12], "µS/cm", product="饮用纯水").verdict == "fail"
    assert water("ph", [6.2], "pH", product="饮用纯水").verdict == "pass"
    assert water("conductivity", [300], "µS/cm", product="饮用天然泉水").verdict != "fail"
