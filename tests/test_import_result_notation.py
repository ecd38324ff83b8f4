"""How announcement cells write results: powers of ten (2.4×10² CFU/g) and non-detects with their detection
limit (<10 CFU/g, 未检出(<0.005) g/kg, ND(<0.01) mg/kg, <1.0×10² CFU/g).

A standards expert's import into a demo store found "2.4×10² CFU/g" read as 2.4 in the unit "×102 CFU/g" (NFKC made
10² into 102), a five-value row refused as "unit too long", and "<10 CFU/g" refused as holding no result values
or, written 未检出(<0.005) g/kg, kept with the unit "(<0.005) g/kg" and no detection limit."""
from __future__ import annotations

import pytest

from ingest.mapping import MappingError, load_mapping, map_item
from processors.step import replay
from tests.conftest import ROOT
from tests.test_risk import E, ev, registered

MAPPING = ROOT / "ingest" / "mappings" / "samr_announcement.yaml"


def item(name: str, cell: str) -> dict:
    return map_item({"不合格项目": name, "检验结果": cell}, load_mapping(MAPPING))


def test_a_plate_count_written_in_powers_of_ten_reads_exactly():
    got = item("菌落总数", "4.4×10⁵,1.6×10⁵,2.1×10⁴,3.2×10³,1.8×10² CFU/g")
    assert (got["values"], got["unit"]) == ([440000, 160000, 21000, 3200, 180], "CFU/g")
    assert all(isinstance(v, int) for v in got["values"])  # exact: 4.4×10⁵ is 440000, no binary residue


@pytest.mark.parametrize("cell, values", [
    ("1.6×10^5 CFU/g", [160000]), ("1.6x10^5 CFU/g", [160000]), ("1.6*10^5 CFU/g", [160000]),
    ("1.6 × 10 ^ 5 CFU/g", [160000]), ("2.5×10⁻¹ CFU/g", [0.25]), ("１.６×１０⁵ CFU/g", [160000]),
])
def test_the_spellings_of_a_power_of_ten(cell, values):
    got = item("菌落总数", cell)
    assert (got["values"], got["unit"]) == (values, "CFU/g")


def test_a_power_of_ten_left_unread_is_refused_naming_the_field():
    with pytest.raises(MappingError) as caught:
        item("菌落总数", "2.4×10(2) CFU/g")
    error = caught.value.error()
    assert (error["field"], error["column"]) == ("items.values", "检验结果")
    assert "科学计数法未能识别" in error["reason_zh"]


def test_a_mould_count_in_powers_of_ten_imports_and_fails_over_its_maximum(rules):
    got = item("霉菌", "2.4×10² CFU/g")
    assert (got["item_code"], got["values"], got["unit"]) == ("moulds", [240], "CFU/g")
    state, _ = replay([registered(category="pastry"), ev("sampling.result", "2026-03-12T15:20:00+08:00", sample_no="IMP-1",
                                                         product="蛋糕", items=[{**got, "lab_verdict": "不合格"}])], rules)
    [moulds] = state.files[E].samples[0].judgement.items
    assert (moulds.verdict, moulds.reason, moulds.values) == ("fail", "over_maximum", (240.0,))


@pytest.mark.parametrize("name, cell, unit, limit", [
    ("霉菌", "<10 CFU/g", "CFU/g", 10), ("铅(以Pb计)", "<0.5 mg/kg", "mg/kg", 0.5), ("铅(以Pb计)", "＜0.5 mg/kg", "mg/kg", 0.5),
    ("苯甲酸及其钠盐(以苯甲酸计)", "未检出(<0.005) g/kg", "g/kg", 0.005), ("苯甲酸及其钠盐(以苯甲酸计)", "未检出（＜0.005）g/kg", "g/kg", 0.005),
    # the lab's English word for 未检出, as reports print it: read as a bare ND, the unit was "(<0.01) mg/kg"
    ("铅(以Pb计)", "ND(<0.01) mg/kg", "mg/kg", 0.01), ("铅(以Pb计)", "N.D.(<0.01) mg/kg", "mg/kg", 0.01),
    ("铅(以Pb计)", "nd(<0.01) mg/kg", "mg/kg", 0.01), ("铅(以Pb计)", "ND （< 0.01）mg/kg", "mg/kg", 0.01),
    ("苯甲酸及其钠盐(以苯甲酸计)", "ND（＜0.005）g/kg", "g/kg", 0.005),
    # a limit in powers of ten, read exactly as the counts are
    ("霉菌", "<1.0×10² CFU/g", "CFU/g", 100), ("霉菌", "<1×10^2 CFU/g", "CFU/g", 100), ("霉菌", "未检出(<1.5×10⁻¹) CFU/g", "CFU/g", 0.15),
])
def test_a_non_detect_below_its_detection_limit_keeps_the_limit(name, cell, unit, limit):
    got = item(name, cell)
    assert (got["values"], got["unit"], got["detection_limit"]) == (["ND"], unit, limit)


def test_a_lead_result_written_nd_with_its_limit_is_judged_not_detected(rules):
    got = item("铅(以Pb计)", "ND(<0.01) mg/kg")
    state, _ = replay([registered(category="pastry"), ev("sampling.result", "2026-03-12T15:20:00+08:00", sample_no="IMP-1",
                                                         product="蛋糕", items=[{**got, "lab_verdict": "合格"}])], rules)
    [lead] = state.files[E].samples[0].judgement.items
    # with its unit "(<0.01) mg/kg" it could not be compared with the limit in mg/kg: 无法判定
    assert (lead.verdict, lead.reason) == ("pass", "not_detected")


def test_a_detection_limit_past_the_powers_of_ten_read_is_refused_naming_the_field():
    with pytest.raises(MappingError) as caught:
        item("霉菌", "<1×10^99 CFU/g")
    error = caught.value.error()
    assert (error["field"], error["column"]) == ("items.detection_limit", "检验结果") and "超出数值范围" in error["reason_zh"]


def test_a_result_with_no_detection_limit_has_none():
    assert "detection_limit" not in item("霉菌", "240 CFU/g") and "detection_limit" not in item("铅(以Pb计)", "未检出 mg/kg")
