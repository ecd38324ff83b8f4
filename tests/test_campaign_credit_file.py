"""The credit file's 提档升级 section (诚信档案) as a campaign officer reads it: who signed the
commitment letter, who assessed, the KPIs with their counts and report date, a self-inspection's open
findings, what is still to do (待办), and the labels (省级抽检合格率, 目标 100%, 参考值（待核实）)."""
from __future__ import annotations

import pytest

from processors.campaign import KPI_ZH, TABLE_HEADERS_ZH
from processors.step import Rules, replay
from schemas.policy import Policy
from schemas.standards import load_catalogue


@pytest.fixture(scope="module")
def demo():
    from qrisk.demo import CountyGenerator

    rules = Rules(catalogue=load_catalogue(), policy=Policy())
    state, _ = replay(CountyGenerator(seed=2025).generate(), rules)
    return rules, state, None


def test_labels_read_as_the_campaign_officer_asked(demo):
    from qrisk.credit_report import build_report

    rules, state, _ = demo
    assert KPI_ZH["sampling_pass_rate"] == "省级抽检合格率"
    headers = set(TABLE_HEADERS_ZH.values())
    assert {"比对试验满意", "已完成全员培训考试"} <= headers and not {"比对检验满意", "培训考试达标"} & headers
    text = str([build_report(f, rules)["campaign"] for f in state.files.values()])
    assert "目标不低于 100.0%" not in text and "目标 100%，参考值（待核实）" in text
    assert "'item': '抽检合格率'" not in text
    # a policy that sets the provincial average confirms it; the default (1 − reference failure rate) is an estimate
    own = Policy.model_validate({"campaign": {"provincial_pass_rate": 0.97}}).campaign
    from processors.campaign import target_confirmed

    assert target_confirmed("sampling_pass_rate", own) and not target_confirmed("sampling_pass_rate", rules.policy.campaign)


def test_the_credit_file_campaign_section_says_who_signed_who_assessed_and_what_is_left(demo):
    from qrisk.credit_report import build_report

    rules, state, _ = demo
    rows = {r["item"]: r for r in build_report(state.files["W03"], rules)["campaign"]}
    assert rows["承诺书"]["detail"].startswith("编号 TDSJ-2025-W03，签字人 清泉水厂负责人")
    (failed,) = [r for k, r in rows.items() if k.startswith("检查验收（")]
    assert failed["status"].startswith("未通过") and "评定人 县局验收组" in failed["detail"]
    (checked,) = [r for k, r in rows.items() if k.startswith("自查（")]
    assert checked["status"] == "发现问题 2 项，已整改 1 项" and checked["detail"] == "1 项未整改"
    assert rows["从业人员培训率"]["detail"].startswith("35/35 = 100%") and "2025-07-14 报告" in rows["从业人员培训率"]["detail"]
    todo = rows["待办"]["detail"]
    assert "再次检查验收（2025-12-02 验收未通过）" in todo and "重新开展比对试验（2025-08-24" in todo
    assert build_report(state.files["P01"], rules)["campaign"][-1] == {"item": "待办", "status": "无", "detail": ""}
