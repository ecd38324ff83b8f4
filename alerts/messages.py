"""Chinese (default) and English text for the effects a supervisor must see."""
from __future__ import annotations

from processors.step import Effect
from schemas.events import PENALTY_ZH
from schemas.working_days import MOVED_ESTIMATE_ZH

_KIND_ZH = {
    "sampling.failed": "抽检不合格",
    "judgement.disagrees_with_lab": "判定与检验机构结论不一致",
    "judgement.lab_failed_unjudged": "检验机构判定不合格、系统无法判定",
    "judgement.lab_failed_passed": "检验机构判定不合格、系统复核为合格或不适用",
    "fluctuation.signal": "质量波动",
    "fluctuation.signal_withdrawn": "投诉数信号撤销（投诉均不属实）",
    "complaint.cluster": "投诉聚集",
    "complaint.burst": "投诉集中（快速反应）",
    "inspection.nonconforming": "现场检查发现问题",
    "rectification.overdue": "整改逾期",
    "rectification.rejected": "整改复查未通过",
    "sampling.retest_inadmissible": "复检结果不予采信",
    "sampling.overturned": "原不合格结论不再计入",
    "sampling.corrected": "抽检结果更正",
    "sampling.repeated_report": "抽检结果重复报送",
    "sampling.near_limit": "抽检结果接近限值",
    "complaint.repeated": "投诉重复报送（不重复计数）",
    "complaint.unverified": "投诉经核查不属实",
    "complaint.illness_reported": "收到食用后不适投诉（待核实）",
    "complaint.unknown_resolved": "投诉办结记录先于投诉登记到达（已暂存）",
    "complaint.withdrawn": "投诉登记已撤回（监管部门）",
    "complaint.accepted": "投诉受理决定（受理 / 不予受理）",
    "complaint.withdrawal_pending": "撤回投诉登记先于投诉到达（已暂存）",
    "complaint.resolved_withdrawn": "已撤回投诉的办结结论（存档，不计入）",
    "fluctuation.rebaselined": "控制限重新确定（监管部门）",
    "sampling.sent_late": "送样超时（承检机构履约）",
    "complaint.overdue": "投诉举报办理超期（监管部门办理时限）",
    "sampling.report_late": "检验报告超时（承检机构履约）",
    "fluctuation.rebaseline_repeated": "控制限重新确定重复报送（不重复计入）",
    "sampling.sample_no_conflict": "抽样编号冲突（其他检验机构）",
    "sampling.correction_unjudged": "更正报告无法判定（未采用）",
    "rectification.overdue_withdrawn": "整改逾期标记撤销（按期完成、记录晚到，或期限更正）",
    "rectification.corrected": "责令整改已更正（整改内容或期限）",
    "rectification.duplicate_order": "责令整改重复报送（以在档的为准）",
    "rectification.unknown": "整改完成或复查记录先于责令整改到达（已暂存）",
    "sampling.report_outdated": "报告时间较早的报告后到（存档，不计入统计）",
    "sampling.retracted": "报告已撤销（监管部门）",
    "enforcement.decided": "行政处罚决定",
    "enforcement.listing_removed": "提前移出严重违法失信名单（信用修复）",
    "enforcement.listing_removal_refused": "提前移出严重违法失信名单未处理（决定书或移出日期不符）",
    "interview.follow_up_overdue": "约谈跟踪检查逾期",
    "warning.raised": "预警",
    "warning.resolved": "预警自动关闭",
    "risk.graded": "风险等级评定",
    "campaign.acceptance_rechecked": "提档升级验收须核实事项更新（后报送的记录）",
    "campaign.comparison_questionable": "比对试验结果可疑（2 < |z| < 3）",
    "campaign.retraction_of_retraction": "撤销记录不能再撤销（未登记）",
}

RULE_ZH = {
    "sampling.unqualified": "抽检不合格",
    "fluctuation.signal": "质量波动",
    "risk.grade_worsened": "风险等级上升",
    "complaint.cluster": "投诉聚集",
    "complaint.burst": "投诉集中（快速反应）",
    "complaint.illness": "食用后不适投诉",
    "complaint.hazard": "异物、变质投诉（经核实属实）",
    "complaint.overdue": "投诉举报办理超期",
    "rectification.overdue": "整改逾期",
    "data.missing": "检查或抽检逾期未开展",
    "inspection.nonconforming": "现场检查发现问题",
    "rectification.rejected": "整改复查未通过",
    "judgement.disagrees": "判定与检验机构结论不一致",
    "judgement.lab_failed_unjudged": "检验机构判定不合格、系统无法判定",
    "judgement.lab_failed_passed": "检验机构判定不合格、系统复核为合格或不适用",
    "retest.inadmissible": "复检结果不予采信",
    "enforcement.decided": "行政处罚决定",
    "interview.follow_up_overdue": "约谈跟踪检查逾期",
    "sampling.near_limit": "抽检结果接近限值",
}
"""Early-warning rules (``processors.warnings``) by id; the policy file may retitle them per bureau."""

SEVERITY_ZH = {"critical": "紧急", "high": "高", "medium": "中", "low": "低"}
RASFF_ZH = {"alert": "预警通报（须处置）", "information_follow_up": "信息通报（跟进）", "information_attention": "信息通报（关注）"}
GRADE_ZH = {"A": "A级（低风险）", "B": "B级（较低风险）", "C": "C级（较高风险）", "D": "D级（高风险）"}

_KIND_EN = {
    "sampling.failed": "unqualified sampling result",
    "judgement.disagrees_with_lab": "qrisk's judgement differs from the lab's",
    "judgement.lab_failed_unjudged": "the lab failed an item qrisk cannot judge",
    "judgement.lab_failed_passed": "the lab failed an item qrisk passes or finds not applicable",
    "fluctuation.signal": "quality fluctuation",
    "fluctuation.signal_withdrawn": "complaint-chart signal withdrawn (complaints unfounded)",
    "complaint.cluster": "cluster of verified complaints",
    "complaint.burst": "burst of complaints (not yet all verified)",
    "inspection.nonconforming": "inspection findings",
    "rectification.overdue": "rectification overdue",
    "rectification.rejected": "rectification rejected at verification",
    "sampling.retest_inadmissible": "re-test not admitted",
    "sampling.overturned": "failure no longer stands",
    "sampling.corrected": "sampling report corrected",
    "sampling.repeated_report": "sampling report sent again",
    "sampling.near_limit": "sampling result close to its limit",
    "complaint.repeated": "complaint sent again (not counted again)",
    "complaint.unverified": "complaint found unfounded",
    "complaint.illness_reported": "complaint of illness received (not yet verified)",
    "complaint.unknown_resolved": "complaint resolution before its complaint (kept)",
    "complaint.withdrawn": "complaint withdrawn by the bureau",
    "complaint.accepted": "complaint accepted or refused (acceptance decision)",
    "complaint.withdrawal_pending": "complaint withdrawal before its complaint (kept)",
    "complaint.resolved_withdrawn": "conclusion on a withdrawn complaint (kept, not counted)",
    "fluctuation.rebaselined": "control limits re-established by the bureau",
    "sampling.sent_late": "sample reached the lab late",
    "complaint.overdue": "complaint or report past its statutory time limit",
    "sampling.report_late": "lab report issued late",
    "fluctuation.rebaseline_repeated": "new baseline sent again (not counted again)",
    "sampling.sample_no_conflict": "sample number reused by another lab",
    "sampling.correction_unjudged": "corrected report cannot be judged (not adopted)",
    "rectification.overdue_withdrawn": "overdue mark withdrawn (completed in time and recorded late, or its deadline corrected)",
    "rectification.corrected": "rectification order corrected (what or deadline)",
    "rectification.duplicate_order": "rectification order sent again (the one on file stands)",
    "rectification.unknown": "rectification completion or verification before its order (kept)",
    "sampling.report_outdated": "an earlier report arrived late",
    "sampling.retracted": "report retracted by the bureau",
    "enforcement.decided": "enforcement decision",
    "enforcement.listing_removed": "removed early from the serious-dishonesty list (credit repair)",
    "enforcement.listing_removal_refused": "removal from the serious-dishonesty list not applied (decision or removal date does not match)",
    "interview.follow_up_overdue": "interview follow-up overdue",
    "warning.raised": "early warning",
    "warning.resolved": "early warning resolved",
    "risk.graded": "risk grade evaluated",
    "campaign.acceptance_rechecked": "campaign acceptance checks updated (a record dated on or before it filed late)",
    "campaign.comparison_questionable": "comparison test questionable (2 < |z| < 3)",
    "campaign.retraction_of_retraction": "a retraction cannot be retracted (not registered)",
}


# effects whose data carry their own Chinese sentence (the fold wrote it with the numbers it had)
_SAYS_ITSELF = frozenset({"sampling.retest_inadmissible", "sampling.overturned", "sampling.corrected", "sampling.repeated_report", "sampling.retracted",
                          "sampling.sample_no_conflict", "sampling.report_outdated", "sampling.correction_unjudged",
                          "judgement.lab_failed_unjudged", "judgement.lab_failed_passed",
                          "rectification.overdue_withdrawn", "rectification.corrected", "rectification.duplicate_order", "rectification.unknown",
                          "complaint.repeated", "complaint.unknown_resolved", "complaint.withdrawn", "complaint.accepted",
                          "complaint.withdrawal_pending", "complaint.resolved_withdrawn", "fluctuation.rebaselined",
                          "fluctuation.rebaseline_repeated", "sampling.sent_late", "sampling.report_late",
                          "complaint.overdue", "campaign.acceptance_rechecked", "campaign.comparison_questionable",
                          "campaign.retraction_of_retraction", "enforcement.listing_removed", "enforcement.listing_removal_refused"})


def title_zh(kind: str) -> str:
    return _KIND_ZH.get(kind, kind)


def effect_title_zh(effect: Effect) -> str:
    """The title a supervisor sees: for a warning, its rule's title."""
    if effect.kind == "warning.raised":
        return effect.data.get("title_zh") or RULE_ZH.get(effect.data.get("rule", ""), title_zh(effect.kind))
    if effect.kind == "sampling.failed" and effect.data.get("correction_zh"):
        return "抽检不合格（报告更正）"  # the same sample's failure on its corrected report, not another unqualified sample
    if effect.kind == "sampling.failed" and effect.data.get("confirms_event_id"):
        return "复检维持不合格"  # the same sample's failure made final, not another unqualified sample
    if effect.kind == "fluctuation.signal_withdrawn" and effect.data.get("chart") == "p":
        if effect.data.get("scope") == "category":
            return "县级抽检不合格率信号撤销"  # (the county's chart of a category, not the enterprise's)
        return "抽检不合格率信号撤销"  # (not the complaint chart's: its failures no longer support it)
    return title_zh(effect.kind)


def title_en(kind: str) -> str:
    return _KIND_EN.get(kind, kind)


def _moved_zh(d: dict) -> str:
    """A deadline on a holiday ends on the next working day (民法典 第二百零三条): said where the fold moved it."""
    if not d.get("moved_to"):
        return ""
    return f"（节假日顺延至 {d['moved_to']}；{MOVED_ESTIMATE_ZH}）" if d.get("moved_estimate") else f"（节假日顺延至 {d['moved_to']}）"


def message_zh(effect: Effect, name: str | None = None) -> str:
    who = name or effect.enterprise_id
    d = effect.data
    k = effect.kind
    if k == "fluctuation.signal_withdrawn" and d.get("chart") == "p":
        if d.get("scope") == "category":
            return f"{d.get('text_zh', '')}。"  # (about the county's category, naming the enterprise whose sample it was)
        return f"{who}：{d.get('text_zh', '')}。"
    if k == "warning.raised":
        # the decision's own text, from the policy template (it names the enterprise already)
        return d.get("message_zh") or f"{who}：{d.get('title_zh', title_zh(k))}"
    if k == "risk.graded":
        grade, previous = d.get("grade"), d.get("previous")
        if previous is None:
            return f"{who}：风险等级评定为 {GRADE_ZH.get(grade, grade)}，风险分 {d.get('score')}。"
        if grade == previous:
            return f"{who}：风险分变为 {d.get('score')}，等级仍为 {GRADE_ZH.get(grade, grade)}。"
        # "升为 C" reads as a promotion to some: say which way the risk went
        trend = "风险上升" if grade > previous else "风险下降"
        return f"{who}：{trend}，等级由 {previous} 级变为 {GRADE_ZH.get(grade, grade)}，风险分 {d.get('score')}。"
    if k == "sampling.failed":
        detail = "；".join(d.get("messages_zh") or []) or "、".join(d.get("failed_items", []))
        verdict = ("检验报告更正后仍不合格" if d.get("correction_zh") else "复检维持不合格结论" if d.get("confirms_event_id")
                   else "抽检不合格")
        return f"{who}：{d.get('product', '')}（抽样编号 {d.get('sample_no', '')}，{d.get('sampled_on', '')}）{verdict}。{detail}"
    if k == "fluctuation.signal":
        where = f"（抽样编号 {d['sample_no']}，{d.get('sampled_on', '')}）" if d.get("sample_no") else ""
        return f"{who}：{d.get('text_zh', '')}{where}。"
    if k == "judgement.disagrees_with_lab":
        return f"{who}：抽样编号 {d.get('sample_no', '')} 的项目 {'、'.join(d.get('items', []))} 系统判定与检验机构结论不一致，请核对。"
    if k == "complaint.cluster":
        return f"{who}：{d.get('window_days')} 天内经核实的投诉达 {len(d.get('complaint_ids', []))} 件（阈值 {d.get('k')} 件）。请立即对企业开展现场检查，排查同批次产品，必要时开展监督抽检。"
    if k == "complaint.burst":
        return (f"{who}：{d.get('window_days')} 天内收到质量投诉 {len(d.get('complaint_ids', []))} 件（{'、'.join(d.get('complaint_ids', []))}；"
                f"阈值 {d.get('k')} 件），尚未全部核实。请立即组织核查，必要时先行采取控制措施。")
    if k == "inspection.nonconforming":
        serious = d.get("serious_findings") or []
        extra = f"，严重/主要问题条款 {'、'.join(serious)}" if serious else ""
        return f"{who}：现场检查 {d.get('inspection_id', '')} 结论为“{d.get('result', '')}”{extra}。"
    if k == "rectification.overdue":
        which = "复查未通过后已超过重新整改期限" if d.get("redo") else "已超过期限"
        return f"{who}：整改 {d.get('rectification_id', '')}（{d.get('what', '')}）{which} {d.get('deadline', '')}{_moved_zh(d)}，逾期 {d.get('days_overdue', '?')} 天。"
    if k == "interview.follow_up_overdue":
        return f"{who}：约谈 {d.get('interview_id', '')}（{d.get('held_on', '')}）要求于 {d.get('follow_up_by', '')}{_moved_zh(d)} 前跟踪检查，仍无现场检查记录，逾期 {d.get('days_overdue', '?')} 天。"
    if k == "rectification.rejected":
        return f"{who}：整改 {d.get('rectification_id', '')} 复查未通过。{d.get('note', '')}"
    if k == "warning.resolved":
        return f"{who}：{d.get('note_zh', '')}"
    if k in _SAYS_ITSELF:
        return f"{who}：{d.get('message_zh', '')}"
    if k == "enforcement.decided":
        penalties = "、".join(PENALTY_ZH.get(x, x) for x in dict.fromkeys(d.get("penalties", [])))
        fined = f"（罚款 {d['fined_yuan']:g} 元）" if d.get("fined_yuan") else ""
        listed = "同时作出列入严重违法失信名单决定。" if d.get("serious_dishonesty") else ""
        return f"{who}：{d.get('decided_on', '')} 作出行政处罚决定（{d.get('decision_no', '')}），处罚：{penalties}{fined}。{listed}"
    return f"{who}：{title_zh(k)}"
