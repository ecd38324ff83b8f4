"""快速反应 to one verified complaint of foreign matter or spoilage (complaint.hazard), the emergency-call words of an
illness complaint (一直吐, 打了120), and a sampling failure that names the complaints about its product."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from processors.step import replay
from schemas.policy import Policy
from tests.test_complaint_desk import E, REG, decisions, received, resolved
from tests.test_complaint_withdrawn import withdrawn
from tests.test_risk import pa_sample

GLASS = "桶装水里有碎玻璃碴，孩子差点喝下去。我电话13812345678"
MOULD = "蛋糕发霉长毛了，已经吃了一口。"


@pytest.mark.parametrize("category, text, product, says", [
    ("foreign_matter", GLASS, "饮用纯净水", "反映饮用纯净水中有异物，经核实属实。投诉内容：“桶装水里有碎玻璃碴，孩子差点喝下去。我电话138****5678”"),
    ("spoilage", MOULD, "奶油蛋糕", "反映奶油蛋糕霉变、变质，经核实属实。投诉内容：“蛋糕发霉长毛了，已经吃了一口”"),
    ("foreign_matter", GLASS, None, "反映该企业产品中有异物，经核实属实"),
])
def test_one_verified_foreign_matter_or_spoilage_complaint_alerts_from_its_category(rules, category, text, product, says):
    _, effects = replay([REG, received("K1", "2026-03-02T10:00:00+08:00", verified=True, category=category, text=text,
                                       product=product)], rules)
    [d] = decisions(effects, "complaint.hazard")
    assert (d.severity, d.title_zh, d.dedup_key) == ("high", "异物、变质投诉（经核实属实）", f"{E}:complaint.hazard:K1")
    assert says in d.message_zh and "2026-03-02 通过12315渠道收到投诉（编号 K1）" in d.message_zh
    assert "身体不适" not in d.message_zh and "13812345678" not in d.message_zh + str(d.evidence)
    assert d.evidence["complaint_id"] == "K1" and d.evidence["category"] == category and d.evidence["verified"] is True
    assert d.evidence["received_on"] == "2026-03-02" and d.evidence["product"] == product
    assert ("foreign matter in" if category == "foreign_matter" else "spoiled") in d.message_en
    assert not decisions(effects, "complaint.illness")


def test_an_unverified_hazard_complaint_waits_for_its_verification(rules):
    """Decided: not on receipt — 异物 claims are often 水垢、沉淀 on inspection, and unverified ones close together raise
    the burst already; one found 属实 later alerts then."""
    state, effects = replay([REG, received("K1", "2026-03-02T10:00:00+08:00", text=GLASS)], rules)
    assert not decisions(effects, "complaint.hazard") and not decisions(effects, "complaint.illness")
    _, effects = replay([resolved("K1", "2026-03-04T10:00:00+08:00")], rules, state)
    [d] = decisions(effects, "complaint.hazard")
    assert d.severity == "high" and "经核实属实" in d.message_zh


@pytest.mark.parametrize("closing, note", [
    (lambda: withdrawn("K1"), "投诉编号 K1 已由县市场监督管理局撤回"),
    (lambda: resolved("K1", "2026-03-06T10:00:00+08:00", verified=False), "经核查，投诉编号 K1 不属实"),
])
def test_a_hazard_alert_closes_when_its_complaint_is_withdrawn_or_found_unfounded(rules, closing, note):
    from tests.test_alerts import County, policy

    county = County(rules, policy())
    county.feed(REG, received("K1", "2026-03-02T10:00:00+08:00", verified=True, text=GLASS))
    [alert] = [a for a in county.book.alerts.values() if a.rule == "complaint.hazard"]
    assert alert.state == "open" and "K1" in alert.refs
    county.feed(closing())
    assert alert.state == "closed"
    assert note in alert.steps[-1].note and "异物投诉预警" in alert.steps[-1].note


def test_an_illness_complaint_keeps_its_illness_alert_only(rules):
    _, effects = replay([REG, received("K1", "2026-03-02T10:00:00+08:00", verified=True, category="foreign_matter",
                                       text="水里有黑色异物，喝了以后拉肚子。")], rules)
    assert [d.rule for d in decisions(effects, "complaint.illness")] == ["complaint.illness"]
    assert not decisions(effects, "complaint.hazard")


def test_other_categories_raise_no_hazard_alert_and_illness_may_not_be_named(rules):
    _, effects = replay([REG, received("K1", "2026-03-02T10:00:00+08:00", verified=True, category="labelling", text="标签字迹模糊。"),
                         received("K2", "2026-03-03T10:00:00+08:00", verified=True, category="other", text="送水太慢。")], rules)
    assert not decisions(effects, "complaint.hazard")
    with pytest.raises(ValidationError, match="complaint_hazard.categories: illness"):
        Policy.model_validate({"warnings": {"complaint_hazard": {"categories": ["illness"]}}})


@pytest.mark.parametrize("text, words", [
    ("小孩喝了后一直吐，打了120。", ["一直吐", "120"]),
    ("喝完头晕得站不住，叫了救护车。", ["头晕", "救护车"]),
    ("老人喝了以后晕倒，家属拨打１２０送医。", ["120"]),
    ("120急救车拉走的。", ["120"]),
])
def test_emergency_words_are_illness_words(rules, text, words):
    _, effects = replay([REG, received("K1", "2026-03-02T10:00:00+08:00", category="taste_odour", text=text)], rules)
    [d] = decisions(effects, "complaint.illness")
    assert d.evidence["illness_words"] == words and d.title_zh == "食用后不适投诉（待核实）"


@pytest.mark.parametrize("text", ["一桶水卖1200元，太贵了。", "水有怪味，退了120元。", "投诉电话0571-81200123，水有怪味。",
                                  "水有怪味，没有打120。"])
def test_120_inside_a_number_or_as_money_is_no_call(rules, text):
    _, effects = replay([REG, received("K1", "2026-03-02T10:00:00+08:00", category="taste_odour", text=text)], rules)
    assert not decisions(effects, "complaint.illness"), text


def _failure(rules, *complaints):
    _, effects = replay([REG, *complaints, pa_sample("2026-03-05T15:00:00+08:00", values=(0, 3, 0, 0, 0))], rules)
    [d] = decisions(effects, "sampling.unqualified")
    return d


def test_a_sampling_failure_names_the_open_and_verified_complaints_about_its_product(rules):
    d = _failure(rules,
                 received("K1", "2026-03-01T10:00:00+08:00", verified=True, product="饮用纯净水（18.9L桶装）", text=GLASS),
                 received("K2", "2026-03-03T10:00:00+08:00", text="买的饮用纯净水有异味。", category="taste_odour", product=None),
                 # not this product, not quality, withdrawn, found 不属实, or too old
                 received("K3", "2026-03-02T10:00:00+08:00", verified=True, product="天然矿泉水"),
                 received("K4", "2026-03-02T11:00:00+08:00", verified=True, category="other", product="饮用纯净水", text="送水慢。"),
                 received("K5", "2026-03-02T12:00:00+08:00", verified=True, product="饮用纯净水"), withdrawn("K5", "2026-03-03T10:00:00+08:00"),
                 received("K6", "2026-03-02T13:00:00+08:00", product="饮用纯净水"), resolved("K6", "2026-03-04T10:00:00+08:00", verified=False),
                 received("K7", "2025-11-20T10:00:00+08:00", verified=True, product="饮用纯净水"),
                 received("K8", "2026-03-02T14:00:00+08:00", verified=True, text="水里有黑色漂浮物。", product=None))
    related = d.evidence["related_complaints"]
    assert [c["complaint_id"] for c in related] == ["K1", "K2"]
    assert related[0] == {"complaint_id": "K1", "received_on": "2026-03-01", "category": "foreign_matter", "product": "饮用纯净水（18.9L桶装）",
                          "verified": True, "excerpt": "桶装水里有碎玻璃碴，孩子差点喝下去。我电话138****5678"}
    assert related[1]["verified"] is False and related[1]["product"] is None
    assert "该产品近期有投诉 K1（2026-03-01，已核实属实）、K2（2026-03-03，尚待核实），核查处置时请一并核查。" in d.message_zh
    assert not any(k in d.message_zh for k in ("K3", "K4", "K5", "K6", "K7", "K8"))


def test_a_failure_with_no_related_complaint_says_none_and_the_window_is_policy(rules):
    d = _failure(rules, received("K3", "2026-03-02T10:00:00+08:00", verified=True, product="天然矿泉水"))
    assert "related_complaints" not in d.evidence and "投诉" not in d.message_zh
    from processors.step import Rules

    off = Policy.model_validate({"warnings": {"sampling_unqualified": {"related_complaints_days": 0}}})
    d = _failure(Rules(catalogue=rules.catalogue, policy=off),
                 received("K1", "2026-03-01T10:00:00+08:00", verified=True, product="饮用纯净水"))
    assert "related_complaints" not in d.evidence and "该产品近期有投诉" not in d.message_zh
