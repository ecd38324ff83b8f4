"""A failing GB 2760 sum of ratios is explained once in the failure's alert.

Announcement reports often carry the lab's own 比例之和 line beside the members.  When it says what
qrisk's own sum says, the alert printed both explanations of one finding; a printed sum that differs
from qrisk's keeps its own line, since that disagreement is for the supervisor to check."""
from __future__ import annotations

import pytest

from processors.step import replay
from processors.warnings import ALERT_KIND
from tests.test_retest_scope import _item, _pastry
from tests.test_risk import registered

SUM_NAME = "防腐剂混合使用时各自用量占其最大使用量的比例之和"


def _failure_alert(rules, printed: float | None) -> str:
    items = [_item("sorbic_acid", [0.6], "g/kg", "合格", "山梨酸及其钾盐（以山梨酸计）"),
             _item("propionic_acid", [1.2], "g/kg", "合格", "丙酸及其钠盐、钙盐（以丙酸计）")]
    if printed is not None:
        items.append(_item("preservative_ratio_sum", [printed], "无量纲", "不合格", SUM_NAME))
    _, effects = replay([registered(category="pastry"), _pastry("2026-04-10T16:00:00+08:00", items)], rules)
    (alert,) = [e.data for e in effects if e.kind == ALERT_KIND and e.data["rule"] == "sampling.unqualified"]
    return alert["message_zh"]


@pytest.mark.parametrize("printed", [1.08, 1.079])
def test_a_printed_sum_that_agrees_is_explained_once(rules, printed):
    said = _failure_alert(rules, printed)
    assert said.count("= 1.08 > 1") == 1  # qrisk's sum, with its terms
    assert "检测值1.08" not in said and "检测值1.079" not in said  # not the printed line's explanation too
    assert "检验报告所列比例之和同为 1.08" in said


def test_a_printed_sum_that_differs_keeps_its_own_line(rules):
    said = _failure_alert(rules, 1.35)
    assert "= 1.08 > 1" in said and "检测值1.35" in said
    assert "同为" not in said


def test_without_a_printed_sum_the_alert_says_nothing_of_one(rules):
    said = _failure_alert(rules, None)
    assert "= 1.08 > 1" in said and "检验报告所列" not in said


def test_the_credit_report_names_a_sum_the_lab_passed_member_by_member(rules):
    """The report's 与检验机构结论不一致 read "sum_of_ratios:preservative", an internal code."""
    from qrisk.credit_report import build_report

    items = [_item("sorbic_acid", [0.6], "g/kg", "合格", "山梨酸及其钾盐（以山梨酸计）"),
             _item("propionic_acid", [1.2], "g/kg", "合格", "丙酸及其钠盐、钙盐（以丙酸计）")]
    reg = registered(category="pastry")
    state, _ = replay([reg, _pastry("2026-04-10T16:00:00+08:00", items)], rules)
    (row,) = build_report(state.files[reg.enterprise_id], rules)["samples"]
    assert row["verdict"] == "fail" and "sum_of_ratios" not in row["detail_zh"]
    assert "与检验机构结论不一致：防腐剂" in row["detail_zh"]
    assert "（检验报告各项均合格；系统按比例之和 1.08 判定不合格）" in row["detail_zh"]


def test_a_failure_only_qrisk_finds_asks_to_check_with_the_lab_first(rules):
    """The lab passed each preservative (its report: 合格); qrisk's sum of ratios fails the sample.  The lab's
    conclusion is the legal one: the alert said 抽检不合格 (紧急/高), asked to seal and recall and offered a re-test,
    saying nothing of the lab's 合格."""
    items = [_item("sorbic_acid", [0.6], "g/kg", "合格", "山梨酸及其钾盐（以山梨酸计）"),
             _item("propionic_acid", [1.2], "g/kg", "合格", "丙酸及其钠盐、钙盐（以丙酸计）")]
    _, effects = replay([registered(category="pastry"), _pastry("2026-04-10T16:00:00+08:00", items)], rules)
    (alert,) = [e.data for e in effects if e.kind == ALERT_KIND and e.data["rule"] == "sampling.unqualified"]
    assert alert["title_zh"] == "系统复核不合格（检验报告结论为合格）" and alert["severity"] == "medium"
    said = alert["message_zh"]
    assert "检验报告结论为合格，系统按标准复核判定不合格" in said and "请先与检验机构核对判定依据" in said
    assert "封存" not in said and "申请复检" not in said and alert["evidence"]["unconfirmed"] is True
    # the lab's own 不合格 on the printed sum: the lab's conclusion, the usual alert
    items.append(_item("preservative_ratio_sum", [1.08], "无量纲", "不合格", SUM_NAME))
    _, effects = replay([registered(category="pastry"), _pastry("2026-04-10T16:00:00+08:00", items)], rules)
    (alert,) = [e.data for e in effects if e.kind == ALERT_KIND and e.data["rule"] == "sampling.unqualified"]
    assert alert["title_zh"] == "抽检不合格" and "unconfirmed" not in alert["evidence"] and "封存" in alert["message_zh"]
