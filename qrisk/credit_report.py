"""The credit file (诚信档案) as a supervisor reads it: text, JSON, and an XLSX to print.

``build_report(file, rules)`` turns a ``CreditFile`` into sections with Chinese labels:
profile, risk grade and why (every contribution and the events behind it), grade
history, sampling results with their judgements, complaints, inspections,
rectifications, enforcement decisions (行政处罚), interviews (约谈), fluctuation signals and warnings.  ``render_text`` and ``write_xlsx``
lay the same report out; the JSON is the report itself.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from alerts.lifecycle import done_by_zh
from processors.credit_file import COMPLAINT_KIND_ZH, VIEW_ONLY, CreditFile
from processors.personal_info import mask_personal_info
from processors.risk import as_of as file_as_of
from processors.fluctuation import point_dict, series_heading_zh
from processors.risk import inspection_frequency, listing_end, listing_ends, listing_in_force, term_ends
from processors.step import Rules, deadline_end, deadline_zh
from processors.warnings import CHANNEL_ZH, COMPLAINT_ZH, disagreements_zh, penalties_text, score_reasons_zh
from schemas.events import NOT_DETECTED, REVOKED_BY_ZH
from qrisk.sheets import time_header

CATEGORY_ZH = {"packaged_water": "包装饮用水", "pastry": "糕点", "other": "其他"}
SCALE_ZH = {"micro": "微型", "small": "小型", "medium": "中型", "large": "大型"}
GRADE_ZH = {"A": "A级（低风险）", "B": "B级（较低风险）", "C": "C级（较高风险）", "D": "D级（高风险）"}
VERDICT_ZH = {"pass": "合格", "fail": "不合格", "undetermined": "无法判定", None: "待判定"}
# a failure qrisk alone finds (processors.judgement.SampleJudgement.unconfirmed): the report's conclusion counts
UNCONFIRMED_ZH = "系统复核不合格（检验报告结论为合格，按合格计，待与检验机构核实）"
LAB_FAILED_PASSED_ZH = "不合格（检验报告结论；系统复核为合格或不适用，待与检验机构核实判定依据）"
STATUS_ZH = {"open": "整改中", "completed": "已完成待复查", "verified": "复查通过", "rejected": "复查未通过"}
SEVERITY_ZH = {"critical": "紧急", "high": "高", "medium": "中", "low": "低"}
FINDING_ZH = {"minor": "一般", "major": "主要", "critical": "严重"}
KIND_ZH = {"routine": "日常检查", "special": "专项检查", "follow_up": "跟踪检查", "acceptance": "验收检查"}
# the tiering's dimensions (schemas.events.CampaignDimension)
DIMENSION_ZH = {"staff": "人员素质", "control": "食品安全管控能力", "stability": "产品质量稳定性", "technology": "技术水平", "brand": "品牌影响力"}
TIER_ZH = {"A": "A档", "B": "B档", "C": "C档", "D": "D档", "unrated": "未分档"}

# per section: (key, column title) — the text and XLSX layouts follow these
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "contributions": [("group_zh", "类别"), ("label_zh", "因素"), ("points", "得分"), ("detail_zh", "依据"), ("until_zh", "计入期限"),
                      ("event_ids", "相关事件")],
    "grade_history": [("as_of", "评定时间"), ("grade", "等级"), ("previous", "原等级"), ("score", "风险分"), ("change_zh", "变化"),
                      ("cause_event_id", "触发事件")],
    "samples": [("sampled_on", "抽样日期"), ("sample_no", "抽样编号"), ("product", "食品名称"), ("batch", "批号"), ("lab", "检验机构"),
                ("turnaround_zh", "检验时限（工作日）"), ("verdict_zh", "判定"), ("failed_zh", "不合格项目"), ("detail_zh", "说明"), ("event_id", "事件")],
    "complaints": [("received_at", "登记时间"), ("complaint_id", "投诉编号"), ("kind_zh", "诉求类型"), ("channel_zh", "渠道"), ("category_zh", "类别"),
                   ("product", "涉及产品"), ("text", "内容"), ("verified_zh", "核查"), ("acceptance_zh", "受理决定"), ("resolved_at", "办结时间"),
                   ("due_on", "办结期限"),
                   ("deadline_zh", "办理时限（工作日）"), ("outcome", "处理结果"),
                   ("event_id", "事件"), ("resolution_event_id", "办结事件")],
    # conclusions (complaint.resolved) whose complaint is not on this file (yet): the hotline's two messages crossed, or
    # the complaint number or the enterprise is wrong
    "resolutions_waiting": [("resolved_at", "办结时间"), ("complaint_id", "投诉编号"), ("verified_zh", "核查结论"), ("outcome", "处理结果"),
                            ("note_zh", "说明"), ("event_id", "事件")],
    # acceptance decisions (complaint.accepted) whose complaint is not on this file (yet), as resolutions_waiting
    "acceptances_waiting": [("decided_on", "决定日期"), ("complaint_id", "投诉编号"), ("acceptance_zh", "受理决定"), ("note_zh", "说明"),
                            ("event_id", "事件")],
    # completions and verifications (rectification.completed / .verified) whose order is not on this file (yet)
    "rectifications_waiting": [("occurred_at", "时间"), ("rectification_id", "整改编号"), ("kind_zh", "记录"), ("detail_zh", "内容"),
                               ("note_zh", "说明"), ("event_id", "事件")],
    "inspections": [("occurred_at", "检查时间"), ("inspection_id", "检查编号"), ("kind_zh", "类型"), ("inspector", "检查人员"),
                    ("result", "结论"), ("findings_zh", "发现问题"), ("detail_zh", "说明"), ("event_id", "事件")],
    "rectifications": [("ordered_at", "责令时间"), ("rectification_id", "整改编号"), ("what", "整改内容"), ("deadline", "期限"),
                       ("cause", "起因"), ("status_zh", "状态"), ("overdue_zh", "逾期"), ("completed_at", "完成时间"), ("evidence", "整改材料"),
                       ("verified_at", "复查时间"), ("verifier", "复查人"), ("note", "复查意见"), ("verifications_zh", "复查记录"),
                       ("overdue_by", "逾期期限"), ("event_id", "责令事件")],
    "enforcements": [("decided_on", "决定日期"), ("decision_no", "决定书文号"), ("authority", "处罚机关"), ("violation", "违法行为"),
                     ("legal_basis", "法律依据"),
                     ("penalties_zh", "处罚内容"), ("serious_dishonesty_zh", "列入严重违法失信名单"), ("revoked_zh", "撤销"),
                     ("related_zh", "相关抽检/检查"),
                     ("event_id", "事件")],
    "interviews": [("held_on", "约谈日期"), ("interview_id", "约谈编号"), ("held_by", "约谈单位"), ("officials", "约谈人"),
                   ("interviewee", "被约谈人"), ("reason", "约谈事由"), ("commitments", "企业承诺"), ("follow_up_by", "跟踪期限"),
                   ("follow_up_zh", "跟踪检查"), ("detail_zh", "说明"), ("event_id", "事件")],
    "series": [("product", "产品"), ("item_name", "检验项目"), ("points", "数据点"), ("phase", "阶段"), ("signals", "出现信号的批次"),
               ("last", "最近结果"), ("rebaselines", "基线重新确定")],
    "signals": [("date", "日期"), ("severity_zh", "级别"), ("message_zh", "内容")],
    "campaign": [("item", "项目"), ("status", "情况"), ("detail", "说明")],
    "warnings": [("date", "日期"), ("title_zh", "预警"), ("severity_zh", "级别"), ("message_zh", "内容"), ("handling_zh", "处置情况")],
}
SECTIONS = ("contributions", "grade_history", "samples", "complaints", "resolutions_waiting", "acceptances_waiting", "inspections", "rectifications",
            "rectifications_waiting", "enforcements", "interviews", "series", "warnings", "campaign")
"""The report's tables in the order the text and the workbook lay them out."""
ASIDE_ZH = {"complaints": "另有已撤回的投诉 {n} 件"}
"""A section's rows that do not count, said in its heading (default: 另有重复或被取代的记录 n 条)."""
WHEN_ANY = frozenset({"resolutions_waiting", "acceptances_waiting", "rectifications_waiting"})
"""Sections laid out only when they have rows (most files have none: an empty table on every report is noise)."""
SECTION_ZH = {
    "contributions": "风险分构成", "grade_history": "等级变化", "samples": "抽检记录", "complaints": "投诉举报", "resolutions_waiting": "待匹配的办结结论", "acceptances_waiting": "待匹配的受理决定",
    "inspections": "现场检查",
    "rectifications": "整改", "rectifications_waiting": "待匹配的整改记录", "enforcements": "行政处罚记录", "interviews": "约谈记录", "series": "质量波动监测序列", "signals": "质量波动信号", "warnings": "预警",
    "campaign": "提档升级",
}
# what a heading's count counts: a bare "（10）" under the risk score read as a score; the grade history
# counts evaluations, most of which leave the grade as it was, not changes
COUNT_ZH = {
    "contributions": "{n} 项", "grade_history": "评定 {n} 次", "samples": "{n} 条", "complaints": "{n} 件", "resolutions_waiting": "{n} 条", "acceptances_waiting": "{n} 条", "inspections": "{n} 次",
    "rectifications": "{n} 项", "rectifications_waiting": "{n} 条", "enforcements": "{n} 件", "interviews": "{n} 次", "warnings": "{n} 条", "campaign": "{n} 项",
}


def verified_zh(verified: bool, concluded: bool, refused: bool, withdrawn: bool) -> str:
    """核查, as the register and the credit report say it: 属实 / 不属实 / 核查中, but nothing is being checked on one
    withdrawn (—（已撤回）) or refused and not concluded (—（不予受理）): 核查中 there read as work the bureau was doing."""
    if withdrawn:
        return "—（已撤回）"
    if verified:
        return "属实"
    if concluded:
        return "不属实"
    return "—（不予受理）" if refused else "核查中"


def _local(moment: dt.datetime | None, offset: int, with_time: bool = True) -> str:
    if moment is None:
        return ""
    local = moment + dt.timedelta(hours=offset)
    return local.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def _tier_text(file: CreditFile) -> str:
    """The campaign tier as the progress table says it (``processors.campaign.tier_zh``): the assessed one, else
    未分档 with the registry's beside.  Beside the risk grade (C级) a bare "A档" reads as a second grade on the same scale."""
    from processors.campaign import registry_tier_of, tier_zh

    tier = file.campaign.tier
    text = tier_zh(tier, registry_tier_of(file))
    return f"{text}（提档升级评定，A档最优；不是风险等级）" if tier else text


def _licence(file: CreditFile) -> str:
    """The licence number, and that it was revoked (吊销许可证): the enterprise may no longer produce."""
    licence = file.profile.licence_no if file.profile else ""
    record = file.enforcement(file.licence_revoked) if file.licence_revoked else None
    if record is None:
        return licence
    return f"{licence}（已于 {record.decided_on.isoformat()} 被吊销，{record.decision_no}）"


def _no_inspection_zh(file: CreditFile) -> str | None:
    """Why a graded enterprise has no inspection due: its licence revoked (the grade stays, the plan ends), or it closed."""
    record = file.enforcement(file.licence_revoked) if file.licence_revoked else None
    if record is not None:
        return f"许可证已吊销（决定书 {record.decision_no}），不再安排日常抽检和检查"
    if file.deregistered_on is not None:
        return f"已注销（{file.deregistered_on.isoformat()} 起），不再安排日常抽检和检查"
    if file.suspended_on is not None:
        return f"停产（{file.suspended_on.isoformat()} 起），停产期间不安排日常抽检和检查，恢复生产后重新起算"
    return None


def _suspended_zh(file: CreditFile, rules: Rules) -> str:
    """经营状态 of an enterprise 停产: what routine supervision does meanwhile (the policy decides the inspections)."""
    inspected = rules.policy.risk.inspect_while_suspended
    return (f"停产（{file.suspended_on.isoformat()} 起，停产期间不安排日常抽检，恢复生产后重新起算；"  # type: ignore[union-attr]
            + ("现场检查照常）" if inspected else "现场检查暂停，恢复生产后重新起算）"))


def _unit_label(rules: Rules, unit: str) -> str:
    """How the catalogue prints a unit after a number: nothing for pH, which has no unit."""
    known = rules.catalogue.units.resolve(unit) if unit else None
    return known.display if known is not None else unit


def _last_result(file: CreditFile, rules: Rules, item_code: str, unit: str, point: dict[str, Any] | None) -> str:
    """A chart's latest point as the lab reported it.  The chart holds "ND" as 0, which would
    read as a measured zero; the sample's judgement keeps the reported values and detection limit."""
    if not point:
        return ""
    label = _unit_label(rules, unit)
    suffix = f" {label}" if label else ""
    sample = next((s for s in reversed(file.samples) if s.event_id == point["event_id"]), None)
    measured = next((i for i in sample.judgement.items if i.item_code == item_code), None) if sample and sample.judgement else None
    if measured is not None and measured.values and all(v == NOT_DETECTED for v in measured.values):
        limit = "" if measured.detection_limit is None else f"（检出限 {measured.detection_limit:g}{suffix}）"
        return f"{point['sampled_on']}：未检出{limit}"
    shown = f"{point['sampled_on']}：{point['value']:g}{suffix}"
    if sample is not None and sample.superseded_by is not None:
        # the chart keeps the point a later report replaced (the batch was sampled, the value measured): the line
        # says what stands instead, lest a reader take an overturned failure for the batch's result
        if sample.superseded_as == "retracted":
            return shown + "（该报告已由监管部门撤销，不计入统计）"
        later = file.sample_by_event(sample.superseded_by)
        seen = {sample.event_id}
        while later is not None and later.superseded_by is not None and later.superseded_as != "retracted" and later.event_id not in seen:
            seen.add(later.event_id)  # (the re-test corrected in its turn: what stands is the end of the chain)
            later = file.sample_by_event(later.superseded_by)
        item = next((i for i in later.judgement.items if i.item_code == item_code), None) if later and later.judgement else None
        if (item is not None and item_code not in (later.not_retested or ())  # (an item the re-test did not cover stands)
                and list(item.values) != [point["value"]]):
            values = "、".join("未检出" if v == NOT_DETECTED else f"{v:g}{suffix}" for v in item.values)
            by = "复检" if later.retest else "更正后的报告"
            shown += f"（{by}结果为 {values}，以{by}为准）"
    return shown


def sample_row(s: Any) -> dict[str, Any]:
    """One sampling report as the credit report lists it (and the county's register, ``qrisk.registers``):
    qrisk's verdict in Chinese, the items it failed on, and what was wrong or left open — why it does not
    count, a re-test, a disagreement with the lab."""
    j = s.judgement
    names = {i.item_code: i.item_name or i.item_code for i in (j.items if j else [])}
    names.update({f"sum_of_ratios:{c.group}": c.item_name or f"{c.group_name}比例之和" for c in (j.sum_checks if j else [])})
    failed = [names[code] for code in (j.counted_failed_codes() if j else [])]  # with the report's 不合格 items qrisk passes
    # what was wrong or left open; an item not applicable to the product only when the lab
    # failed it (its message asks to check the product's type)
    detail = [i.message_zh for i in (j.items if j else [])
              if i.verdict in ("fail", "undetermined") or (i.verdict == "not_applicable" and i.lab_verdict == "fail")]
    if j and j.verdict_reason in ("no_applicable_item", "edition_uncertain") and j.verdict_note_zh:
        detail.append(j.verdict_note_zh)  # why the sample as a whole is 无法判定 (or how each edition judged it)
    # a product under a standard the catalogue lacks (natural mineral water): why the sample is undetermined, once
    detail += [i.message_zh for i in (j.items if j else []) if i.reason == "uncatalogued_standard" and i.lab_verdict != "fail"][:1]
    detail += [c.message_zh for c in (j.sum_checks if j else []) if c.verdict == "fail"]
    if j and j.disagreements:
        detail.append(f"与检验机构结论不一致：{'、'.join(disagreements_zh(j))}")
    if s.retest:
        if s.not_retested and j is not None:
            names = {i.item_code: i.item_name for i in j.items}
            detail.insert(0, f"未复检项目（{'、'.join(names.get(c, c) for c in s.not_retested)}）沿用初检结果")
        detail.insert(0, "复检")
    if s.superseded_by:
        detail.insert(0, s.superseded_zh())  # why this report does not count: a re-test, a correction, a repeat…
    t = s.turnaround
    return {"sampled_on": s.sampled_on.isoformat(), "sample_no": s.sample_no, "product": s.product, "batch": s.batch or "",
            "lab": s.lab, "lab_received_on": s.lab_received_on.isoformat() if s.lab_received_on else None,
            # (the sample's first original report's, which its later reports carry; none for a re-test)
            "report_working_days": t.report_days if t else None, "report_limit": t.report_limit if t else None,
            "report_late": t.report_late if t else None, "sent_late": t.sent_late if t else None,
            "turnaround_estimate": t.estimate if t else None, "turnaround_zh": t.zh() if t else "",
            "verdict": j.verdict if j else None,
            "verdict_zh": (UNCONFIRMED_ZH if j is not None and j.unconfirmed
                           else LAB_FAILED_PASSED_ZH if j is not None and j.verdict != "fail" and j.counted == "fail"
                           else VERDICT_ZH.get(j.verdict if j else None, "")),
            "failed_zh": "、".join(failed), "detail_zh": "；".join(detail), "event_id": s.event_id}


def _with_retraction(row: dict[str, Any], s: Any, file: CreditFile, offset: int) -> dict[str, Any]:
    """A retracted report's row with when and by whom it was retracted: the auditor's question of any entry that no
    longer counts (the register's row, without the file, says why only)."""
    r = file.retractions.get(s.sample_no) if s.superseded_as == "retracted" else None
    if r is not None and r.event_id == s.superseded_by:
        row["detail_zh"] = row["detail_zh"].replace(f"撤销事件 {r.event_id}", f"{r.by} 于 {_local(r.occurred_at, offset)} 撤销，撤销事件 {r.event_id}", 1)
    return row


def _fines_text(file: CreditFile) -> str:
    """The fines of the decisions in force, and those of revoked ones apart (they no longer count)."""
    standing = sum(r.fined_yuan for r in file.enforcements if r.revoked_on is None)
    revoked = sum(r.fined_yuan for r in file.enforcements if r.revoked_on is not None)
    out = f"，罚款合计 {standing:g} 元" if any(r.revoked_on is None for r in file.enforcements) else ""
    if revoked:
        out += f"（另有已撤销决定的罚款 {revoked:g} 元，不再计入）"
    return out


def report_from_view(doc: dict[str, Any], rules: Rules, alerts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The same report from a credit file's view (``CreditFile.view()``), which is what the Kafka
    sink keeps in ClickHouse: the fold's records as they are, the grade with its current reasons
    and its history, and one summary line per chart (a chart's state stays in the workers)."""
    from processors.risk import RiskState

    file = CreditFile.model_validate({k: v for k, v in doc.items() if k not in VIEW_ONLY})
    risk = doc.get("risk") or {}
    history = [{k: v for k, v in h.items() if k != "grade_changed"} for h in risk.get("history") or []]
    if history and risk.get("current"):
        history[-1] = {k: v for k, v in risk["current"].items() if k != "grade_changed"}  # with its reasons
    # the view's as_of is max(last event, last tick): as the tick it gives the same clock
    file.risk = RiskState.model_validate({"grade": risk.get("grade"), "score": risk.get("score"), "tick_at": risk.get("as_of"),
                                          "next_inspection_due": risk.get("next_inspection_due"), "history": history})
    series = [
        {"product": s["product"], "item_name": s["item_name"], "points": s["points"], "phase": _PHASE_ZH.get(s["phase"], s["phase"]),
         "signals": s["signals"], "last": _last_result(file, rules, s["item_code"], s["unit"], s.get("last")),
         "rebaselines": _rebaselines_zh(s.get("rebaselines") or [])}
        for s in doc.get("series") or []
    ]
    waiting = [_waiting_zh(r) for r in doc.get("rebaselines") or [] if not r.get("applied_to")]
    return build_report(file, rules, series=series, alerts=alerts, rebaselines_waiting=waiting)


def _rebaselines_zh(phases: list[dict[str, Any]]) -> str:
    """A series' new baselines as the credit file lists them (基线重新确定于 YYYY-MM-DD：原因，确认人), from the view's
    dicts or the fold's ``SeriesPhase``s."""
    from processors.fluctuation import SeriesPhase, phase_zh

    return "；".join(phase_zh(ph if isinstance(ph, SeriesPhase) else SeriesPhase.model_validate(ph)) for ph in phases)


def _waiting_zh(r: Any) -> str:
    """A new baseline confirmed for charts with no result on either side of its date yet (``fluctuation.rebaselined``)."""
    get = r.get if isinstance(r, dict) else lambda k: getattr(r, k)
    which = f"{get('product')}·{get('item_code')}" if get("item_code") else f"{get('product')}（全部检验项目）"
    return f"{which}自 {get('effective_from')} 起（{get('reason')}，确认人 {get('confirmed_by')}），该日期前后的结果到达时生效"


_PHASE_ZH = {"II": "监控中", "I": "建立基线"}


def _due_by_regrade(rs: Any, rules: Rules) -> str | None:
    """The local date the grade last changed, when the next inspection is due by the grace after that
    change (``risk.regrade_grace_days``) rather than by the grade's interval after the last inspection.
    Read from the grade history, which the view keeps too."""
    due = rs.next_inspection_due
    move = next((h for h in reversed(rs.history) if h.previous is not None and h.grade != h.previous), None)
    if due is None or move is None:
        return None
    on = rules.local_date(move.as_of)
    return on.isoformat() if due == on + dt.timedelta(days=rules.policy.risk.regrade_grace_days) else None


def _follow_up_zh(interview: Any) -> str:
    """Whether the interview's commitments were checked by an inspection, and in time."""
    if interview.follow_up_by is None:
        return ""
    if interview.follow_up_inspection_id is not None:
        return f"已跟踪（现场检查 {interview.follow_up_inspection_id}" + ("，逾期后）" if interview.follow_up_overdue else "）")
    return "逾期未跟踪检查" if interview.follow_up_overdue else "待跟踪检查"


def _listed_zh(record: Any, rules: Rules, today: dt.date | None) -> str:
    """One decision's listing as 严重违法失信, as its row in the report says it."""
    if not record.serious_dishonesty:
        return "否"
    if not record.in_force:
        return "是（已随处罚决定撤销终止）"
    ends = term_ends(record.decided_on, rules.policy.risk.credit.serious_dishonesty_years)
    if _removed_early(record, ends, today):
        return f"是（已于 {record.listing_removed_on.isoformat()} 提前移出（信用修复，{record.listing_removed_ref}））"
    if today is not None and today >= ends:
        return f"是（已于 {ends.isoformat()} 期满移出）"
    return f"是（至 {ends.isoformat()}）"


def _removed_early(record: Any, ends: dt.date, today: dt.date | None) -> bool:
    """The listing ended by 信用修复 (enforcement.listing_removed) before its term, as of ``today``."""
    removed = record.listing_removed_on
    return removed is not None and removed < ends and (today is None or today >= removed)


def _listing_text(file: CreditFile, rules: Rules, now: dt.datetime | None) -> str:
    """The listing as 严重违法失信 by a decision: until when, or that it ended."""
    ends = listing_ends(file, rules.policy.risk)
    if ends is None:
        return ""
    today = (now + dt.timedelta(hours=rules.policy.utc_offset_hours)).date() if now else None
    if today is not None and today >= ends:
        # (the listing that ran longest decides how it ended: its term, or a removal on 信用修复)
        years = rules.policy.risk.credit.serious_dishonesty_years
        last = max((r for r in file.enforcements if r.serious_dishonesty and r.in_force), key=lambda r: listing_end(r, years))
        how = "提前移出（信用修复）" if _removed_early(last, term_ends(last.decided_on, years), today) else "期满移出"
        return f"；曾列入严重违法失信名单（{last.decision_no}），已于 {ends.isoformat()} {how}"
    # the decision whose listing holds (file.serious_dishonesty stays the latest decided, even once removed early)
    held = listing_in_force(file, today, rules.policy.risk) if today is not None else None
    if held is None:
        years = rules.policy.risk.credit.serious_dishonesty_years
        record = max((r for r in file.enforcements if r.serious_dishonesty and r.in_force), key=lambda r: listing_end(r, years))
        held = (record, listing_end(record, years))
    return f"；已列入严重违法失信名单（{held[0].decision_no}，至 {held[1].isoformat()}）"


def _instant(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _alert_of(warning: Any, by_key: dict[str, list[dict[str, Any]]]) -> dict[str, Any] | None:
    """The alert a warning opened or joined: of the alerts with its dedup key, the one whose events
    include the warning's (a back-dated warning joins an alert opened after its time); else the last
    one opened by the warning's time (a key reopens as a new alert once the last one is closed)."""
    candidates = by_key.get(warning.dedup_key, ())
    raised_by = warning.event_id
    for alert in candidates:
        if raised_by in (alert.get("event_ids") or ()):
            return alert
    found = None
    for alert in candidates:
        opened = _instant(alert.get("opened_at"))
        if opened is not None and opened <= warning.occurred_at and (found is None or opened >= _instant(found["opened_at"])):  # type: ignore[operator]
            found = alert
    return found


def unseen(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert the reader's key may not read (a county-wide alert, with no town, to a town's key): only
    what ties it to its warning, so that the report says who handles it instead of claiming there is
    none — nothing of its state, owner, id or steps."""
    return {"dedup_key": alert["dedup_key"], "event_ids": list(alert.get("event_ids") or ()), "opened_at": alert.get("opened_at"),
            "town": alert.get("town"), "unseen": True}


def handling_zh(alert: dict[str, Any] | None, offset: int, now: dt.datetime | None = None) -> str:
    """How the alert behind a warning stands, for a reader of the credit file: its state, who has it,
    and, once closed, when, by whom and why (the closing step's note)."""
    if alert is None:
        return "无预警记录（或已按保留期限清理）"
    if alert.get("unseen"):
        if not alert.get("town"):
            return "县级预警，由县局处置（该密钥无权查看）"
        return "由其他乡镇/街道处置的预警（该密钥无权查看）"
    state = alert.get("state_zh") or alert.get("state") or ""
    parts = [f"{state}（{alert['alert_id']}"]
    if alert.get("assignee"):
        parts.append(f"，负责人 {alert['assignee']}")
    steps = alert.get("steps") or []  # (the alerts table's copy of an old alert has none: its date then)
    last = steps[-1] if steps else None
    if alert.get("state") in ("closed", "verified"):
        at = _instant(last["at"] if last else alert.get("closed_at") or alert.get("updated_at"))
        parts.append(f"，{_local(at, offset, with_time=False)}")
        if last is not None:
            note = last.get("note") or ""
            if note.startswith("整改 "):
                parts.append(f" {note}")  # (a verification's note names the rectification and its verifier already)
            else:
                # (a closing note quotes the bureau's withdrawal reason, or a supervisor's words, which may name the caller)
                parts.append(f" {done_by_zh(last)}" + (f"：{mask_personal_info(note)}" if note else ""))  # the system's own: 系统自动关闭, not 由 qrisk关闭
    elif alert.get("state") == "open" and alert.get("respond_by"):
        due = _instant(alert["respond_by"])
        parts.append(f"，应于 {_local(due, offset)} 前确认" + ("，已逾期" if now is not None and due < now else ""))  # type: ignore[operator]
    elif alert.get("state") == "acknowledged" and alert.get("handle_by"):
        # acknowledging is not handling (早处置): the file says by when the order or the closing is due
        due = _instant(alert["handle_by"])
        late = alert.get("handling_overdue") or (now is not None and due < now)  # type: ignore[operator]
        parts.append(f"，应于 {_local(due, offset)} 前责令整改或关闭" + ("，已确认超时未处置" if late else ""))
    if alert.get("escalated") and alert.get("state") not in ("closed", "verified"):
        parts.append(_escalation_zh(alert))
    return "".join(parts) + "）"


# What alerts.lifecycle._notify appends to the escalation step's note when it sends nothing: no
# alerts.escalate_to and no routed receiver, or a back-filled event.  (Not the "此前未通知任何人（…）"
# that _escalate writes first: that is about before, and escalate_to may still have been told.)
_NOBODY_ZH = (("无人收到通知", "未配置接收人"), ("属历史数据，未通知", "属历史数据，未发通知"))


def escalation_reached(alert: dict[str, Any]) -> tuple[bool, str]:
    """Whether an escalated alert's escalation reached someone, and if not why (in Chinese).  The built-in
    policy has no ``alerts.escalate_to`` and no routes: every escalated alert then read "已升级上报" while
    ``receivers`` is empty and ``notified_at`` null — a supervisor would take it that the county was told.
    The alert keeps no list of whom its escalation told; ``_notify`` stamps ``notified_at`` with the
    step's time when it sends, and notes on the step why it did not: told at or after the escalation,
    with no such note on the step, is reached."""
    steps = alert.get("steps") or []
    step = next((s for s in reversed(steps) if s.get("action") in ("escalated", "escalate")), None)
    notified = _instant(alert.get("notified_at"))
    note = (step or {}).get("note") or ""
    if step is not None:
        reached = notified is not None and notified >= _instant(step["at"]) and not any(k in note for k, _ in _NOBODY_ZH)  # type: ignore[operator]
    else:  # the alerts table's copy without its steps: notified at all, its receivers had the escalation too
        reached = notified is not None
    if reached:
        return True, ""
    return False, next((zh for k, zh in _NOBODY_ZH if k in note), None) or ("已静默" if alert.get("silenced") else "未通知任何人")


def _escalation_zh(alert: dict[str, Any]) -> str:
    """"已升级上报" only when the escalation reached someone (``escalation_reached``)."""
    reached, why = escalation_reached(alert)
    if reached:
        return "，已升级上报"
    # an open alert already says 已逾期 beside its deadline; one being handled since says it was overdue
    return ("，" if alert.get("state") == "open" else "，曾逾期未确认，") + f"升级无人接收（{why}）"


def _complaints_late_text(file: CreditFile) -> str:
    """投诉举报办理超期: the bureau's own lateness on this enterprise's complaints, said beside them (no risk point)."""
    reports = sum(1 for c in file.complaints if c.kind == "report")
    # (a refusal decided after the 7 working days is as late as a late acceptance, though nothing is due after it)
    late = [c for c in file.complaints if c.overdue_judged]
    if not reports and not late:
        return ""
    text = f"（其中举报 {reports} 件）" if reports else ""
    if late:
        refused = sum(1 for c in late if c.refused)
        open_ = sum(1 for c in late if c.concluded_on is None and not c.refused)
        parts = [f"超期办结 {len(late) - open_ - refused} 件", f"超期未办结 {open_} 件"] + ([f"不予受理超期 {refused} 件"] if refused else [])
        text += f"；办理超期 {len(late)} 件（{'、'.join(parts)}，属监管部门办理时限，不计入风险分）"
    return text


def _ends(rules: Rules, deadline: dt.date, kept: dt.date | None, estimate: bool) -> tuple[dt.date, bool]:
    """The day a deadline ends and whether on an estimate, as the fold kept it; a file folded before it kept them (an
    older snapshot's) is moved here by the same rule (民法典 第二百零三条)."""
    return (kept, estimate) if kept is not None else deadline_end(rules, deadline)


def _rectification_ends(rules: Rules, r: Any, day: dt.date) -> tuple[dt.date, bool]:
    """``_ends`` for one of a rectification's deadlines (``RectificationRecord.ends``: its own, its 重新限期)."""
    kept = (day == r.deadline and r.due_on is not None) or (day == r.redo_deadline and r.redo_due_on is not None)
    return r.ends(day) if kept else deadline_end(rules, day)


def build_report(file: CreditFile, rules: Rules, series: list[dict[str, Any]] | None = None,
                 alerts: list[dict[str, Any]] | None = None, rebaselines_waiting: list[str] | None = None) -> dict[str, Any]:
    """The readable credit file.  ``series``: the chart summaries when ``file`` has no charts of its own
    (``report_from_view``).  ``alerts``: the enterprise's alerts as the API shows them (``Alert.view()``),
    to say how each warning was handled; None leaves that column empty."""
    off = rules.policy.utc_offset_hours
    p = file.profile
    rs = file.risk
    now = file_as_of(file)
    name = p.name if p else file.enterprise_id
    profile = [
        ("企业名称", name), ("企业编号", file.enterprise_id), ("许可证编号", _licence(file)),
        ("地址", p.address if p else ""), ("乡镇/街道", p.town if p else ""), ("县/区", (p.region or "") if p else ""),
        ("食品类别", CATEGORY_ZH.get(p.category, p.category) if p else "未登记"), ("生产规模", SCALE_ZH.get(p.scale, p.scale) if p else ""),
        ("供应人群", "" if not p else "未登记" if p.population_served is None else f"{p.population_served} 人"),
        ("提档升级档次", _tier_text(file) if p else ""), ("登记时间", _local(file.registered_at, off)),
        *([("经营状态", f"已注销（{file.deregistered_on.isoformat()} 起，不再安排日常抽检和检查）")] if file.deregistered_on else []),
        *([("经营状态", _suspended_zh(file, rules))] if file.suspended_on else []),
        # the rate leaves the undetermined batches out: they are said, or the counts do not add up to it
        ("抽检", f"{file.counts.samples} 批次，不合格 {file.counts.samples_failed} 批次"
                + (f"，无法判定 {file.counts.samples_undetermined} 批次" if file.counts.samples_undetermined else "")
                + (f"，合格率 {100 * file.pass_rate:.1f}%" if file.pass_rate is not None else "")
                + (f"；其中 {file.counts.samples_unconfirmed} 批次检验报告结论为合格、系统按标准复核判定不合格，按检验报告计为合格，"
                   "待与检验机构核实" if file.counts.samples_unconfirmed else "")),
        ("投诉", f"{file.counts.complaints} 件，经核实 {file.counts.complaints_verified} 件"
                 + (f"；另有已撤回 {len(file.complaints_withdrawn)} 件（企业填错或重复登记），不计入" if file.complaints_withdrawn else "")
                 + _complaints_late_text(file)),
        ("现场检查", f"{file.counts.inspections} 次，不符合 {file.counts.inspections_nonconforming} 次"),
        ("整改", f"未结 {file.counts.rectifications_open} 项，逾期 {file.counts.rectifications_overdue} 项"),
        # (a revoked decision is out of the count: its fine too, said apart)
        ("行政处罚", f"{file.counts.enforcements} 件" + _fines_text(file)
                     + _listing_text(file, rules, now)),
        ("约谈", f"{file.counts.interviews} 次"),
    ]
    current = rs.current
    grade: dict[str, Any] = {
        "grade": rs.grade, "grade_zh": GRADE_ZH.get(rs.grade or "", "未评定（缺少企业登记信息）"), "score": rs.score,
        "as_of": _local(now, off) if now else "", "next_inspection_due": rs.next_inspection_due.isoformat() if rs.next_inspection_due else None,
        "inspection_overdue": bool(rs.next_inspection_due and now and rs.next_inspection_due < rules.local_date(now)),
        # (no date, and why: a blank line read as an inspection nobody had planned)
        "no_inspection_zh": _no_inspection_zh(file) if rs.next_inspection_due is None and rs.grade else None,
        "inspections_per_year": rules.policy.risk.inspections_per_year.get(rs.grade) if rs.grade else None,
        "regraded_on": _due_by_regrade(rs, rules), "regrade_grace_days": rules.policy.risk.regrade_grace_days,
        "static": current.static if current else None, "dynamic": current.dynamic if current else None,
        "credit": current.credit if current else None, "band": current.band if current else None,
        "held": current.held if current else False,
        # every term with its group's cap: the reasons add up to the score printed beside them
        "reasons": score_reasons_zh(current),
    }
    group_zh = {"static": "静态", "dynamic": "动态", "credit": "信用"}
    contributions = [
        {"factor": c.factor, "group_zh": group_zh.get(c.factor.split(".")[0], ""), "label_zh": c.label_zh, "points": c.points,
         "detail_zh": c.detail_zh, # when the score may first get lighter: the oldest entry of the term leaves it
         "until_zh": f"最早一项于 {_local(c.weighs_until, off, with_time=False)} 后不再计入" if c.weighs_until and c.points else "", "event_ids": list(c.event_ids)}
        for c in (current.contributions if current else [])
    ]
    history = []
    for h in reversed(rs.history):
        if h.previous is None:
            change = "首次评定"
        elif h.grade != h.previous:
            change = f"{h.previous}→{h.grade}（{'风险上升' if h.grade > h.previous else '风险下降'}）"
        else:
            change = "等级不变" + ("（受每次变动级数限制）" if h.held else "")
        history.append({"as_of": _local(h.as_of, off), "grade": h.grade, "previous": h.previous or "", "score": h.score,
                        "change_zh": change, "cause_event_id": h.cause_event_id})
    samples = [_with_retraction(sample_row(s), s, file, off) for s in sorted(file.samples, key=lambda s: (s.sampled_on, s.sample_no), reverse=True)]
    limits = (rules.policy.complaint_deadlines.complaint.accept_working_days, rules.policy.complaint_deadlines.report.extension_working_days)

    def deadline(c: Any) -> dict[str, Any]:
        # the statutory time limits as the fold judged them (投诉 / 举报, 办结期限, 超期 / 超期办结): the bureau's, no risk point
        decided = c.acceptance
        return {"kind": c.kind, "kind_zh": COMPLAINT_KIND_ZH.get(c.kind, c.kind), "due_on": c.due_on.isoformat() if c.due_on else "",
                "overdue": c.overdue_judged, "deadline_zh": c.deadline_zh(*limits),
                # 受理日期 / 不予受理, with the complaint.accepted it rests on
                "accepted_on": c.accepted_on.isoformat() if c.accepted_on else "", "acceptance_zh": c.acceptance_zh(),
                "acceptance_event_id": decided.event_id if decided is not None else ""}

    complaints = [
        {**deadline(c), "received_at": _local(c.received_at, off), "complaint_id": c.complaint_id, "channel_zh": CHANNEL_ZH.get(c.channel, c.channel),
         # the report is printed and handed on: the caller's name and numbers masked, as the complaint register
         # and the alerts show them (the credit file keeps the text as received, for the bureau to call back)
         "category_zh": COMPLAINT_ZH.get(c.category, c.category), "product": c.product or "", "text": mask_personal_info(c.text),
         "verified": c.verified,
         # what it counted as before the conclusion in force: 属实 at receipt and found 不属实 later weighed meanwhile
         "verified_zh": verified_zh(c.verified, c.resolved_at is not None, c.refused, False) + _counted_verified_zh(c, off),
         "resolved_at": _local(c.resolved_at, off),
         "outcome": mask_personal_info(c.outcome or "") + _earlier_conclusions(c, off),
         "resolutions": [{"resolved_at": _local(r.resolved_at, off), "verified": r.verified, "outcome": mask_personal_info(r.outcome),
                          "event_id": r.event_id, "in_force": r.event_id == c.resolution_event_id} for r in c.resolutions],
         # every entry traceable to the events it rests on: the complaint's and the conclusion in force
         "event_id": c.event_id, "resolution_event_id": c.resolution_event_id or ""}
        for c in sorted(file.complaints, key=lambda c: c.received_at, reverse=True)
    ]
    for c in sorted(file.complaints_withdrawn, key=lambda c: c.received_at, reverse=True):
        # kept on the file with why, counted nowhere (complaint.withdrawn)
        w = c.withdrawn
        said = (f"已撤回（{_local(w.withdrawn_at, off, with_time=False)} {w.by}：{mask_personal_info(w.reason)}"
                + (f"；与投诉编号 {w.duplicate_of} 重复" if w.duplicate_of else "") + f"；事件 {w.event_id}），不计入") if w else "已撤回，不计入"
        complaints.append({
            **deadline(c), "received_at": _local(c.received_at, off), "complaint_id": c.complaint_id, "channel_zh": CHANNEL_ZH.get(c.channel, c.channel),
            "category_zh": COMPLAINT_ZH.get(c.category, c.category), "product": c.product or "", "text": mask_personal_info(c.text),
            "verified": c.verified, "verified_zh": said, "resolved_at": _local(c.resolved_at, off),
            "outcome": mask_personal_info(c.outcome or "") + _earlier_conclusions(c, off), "superseded": True, "withdrawn": True,
            "resolutions": [{"resolved_at": _local(r.resolved_at, off), "verified": r.verified, "outcome": mask_personal_info(r.outcome),
                             "event_id": r.event_id, "in_force": r.event_id == c.resolution_event_id} for r in c.resolutions],
            "event_id": c.event_id, "resolution_event_id": c.resolution_event_id or ""})
    waiting = [
        {"resolved_at": _local(r.resolved_at, off), "complaint_id": cid, "verified_zh": "属实" if r.verified else "不属实",
         "outcome": mask_personal_info(r.outcome), "event_id": r.event_id,
         "note_zh": "本企业尚无该投诉编号的登记记录：收到该投诉后生效；长期未匹配的，请核对投诉编号和企业编号"}
        for cid, rs_ in file.resolutions_waiting.items() for r in rs_
    ]
    waiting.sort(key=lambda r: (r["resolved_at"], r["complaint_id"]), reverse=True)
    decisions_waiting = [
        {"decided_on": a.decided_on.isoformat(), "complaint_id": cid, "acceptance_zh": a.zh(), "event_id": a.event_id,
         "superseded": a.superseded_by is not None,
         "note_zh": (f"已由更正后的决定（事件 {a.superseded_by}）取代，不计入" if a.superseded_by is not None else
                     "本企业尚无该投诉编号的登记记录：收到该投诉后生效；长期未匹配的，请核对投诉编号和企业编号")}
        for cid, as_ in file.acceptances_waiting.items() for a in as_
    ]
    decisions_waiting.sort(key=lambda r: (r["decided_on"], r["complaint_id"]), reverse=True)
    inspections = [
        {"occurred_at": _local(i.occurred_at, off), "inspection_id": i.inspection_id, "kind_zh": KIND_ZH.get(i.kind, i.kind),
         "inspector": i.inspector, "result": i.result,
         "findings_zh": "；".join(f"{f.code} {f.description}（{FINDING_ZH.get(f.severity, f.severity)}）" for f in i.findings),
         "detail_zh": _record_zh(i), "superseded": i.superseded_by is not None, "event_id": i.event_id}
        for i in sorted(file.inspections, key=lambda i: i.occurred_at, reverse=True)
    ]
    rectifications = [
        {"ordered_at": _local(r.ordered_at, off), "rectification_id": r.rectification_id, "what": r.what,
         # a rejection's new deadline (重新限期) is the one in force: the report says both
         # and a deadline on a holiday the working day it ends on (民法典 第二百零三条), from which it is late
         "deadline": deadline_zh(r.deadline, *_rectification_ends(rules, r, r.deadline))
                     + (f"（重新限期 {deadline_zh(r.redo_deadline, *_rectification_ends(rules, r, r.redo_deadline))}）" if r.redo_deadline else ""),
         # the days themselves, for a client that reads dates rather than the sentence: the deadline as ordered ends
         # on due_on, a 重新限期 on redo_due_on — the days the fold judged lateness by
         "due_on": _rectification_ends(rules, r, r.deadline)[0].isoformat(),
         "redo_due_on": _rectification_ends(rules, r, r.redo_deadline)[0].isoformat() if r.redo_deadline else "",
         "status": r.status, "status_zh": STATUS_ZH.get(r.status, r.status), "overdue": r.overdue, "overdue_zh": "是" if r.overdue else "否",
         "completed_at": _local(r.completed_at, off), "verified_at": _local(r.verified_at, off),
         # what the order was for, what the enterprise handed in, who checked it and what they said: the
         # loop from a failure to its verified rectification, readable without the event log
         "cause": r.cause, "evidence": r.evidence or "", "verifier": r.verifier or "", "note": r.note or "", "event_id": r.event_id or "",
         # every 复查, a rejection the acceptance after it replaced included: it still weighs (credit points), so it shows
         "verifications_zh": "；".join(_verification_zh(v, off) for v in sorted(r.verifications, key=lambda v: v.verified_at)),
         # the deadline it is overdue by, when not its own: a redo deadline (重新限期) it missed, or its corrected one
         "overdue_by": deadline_zh(r.overdue_by, *_rectification_ends(rules, r, r.overdue_by))
                       if r.overdue and r.overdue_by is not None and r.overdue_by != r.deadline else ""}
        for r in sorted(file.rectifications, key=lambda r: r.ordered_at, reverse=True)
    ]
    rectifications_waiting = [
        {"occurred_at": _local(w.occurred_at, off), "rectification_id": rid,
         "kind_zh": "整改完成" if w.kind == "completed" else ("复查通过" if w.accepted else "复查未通过"),
         "detail_zh": w.evidence if w.kind == "completed" else "，".join(x for x in (w.verifier, w.note, f"重新限期 {w.new_deadline.isoformat()}"
                                                                                  if w.new_deadline else "") if x),
         "note_zh": "本企业尚无该整改编号的责令整改记录：收到该责令整改后生效；长期未匹配的，请核对整改编号和企业编号", "event_id": w.event_id}
        for rid, ws in file.rectifications_waiting.items() for w in ws
    ]
    rectifications_waiting.sort(key=lambda r: (r["occurred_at"], r["rectification_id"]), reverse=True)
    today = rules.local_date(now) if now else None
    enforcements = [
        {"decided_on": r.decided_on.isoformat(), "decision_no": r.decision_no, "authority": r.authority or "", "violation": r.violation,
         "legal_basis": r.legal_basis,
         "penalties_zh": penalties_text(r.penalties)[0], "serious_dishonesty": r.serious_dishonesty,
         # a listing that ended is said so (公示期满移出), or that it ended with the decision, not a bare 是
         "serious_dishonesty_zh": _listed_zh(r, rules, today),
         "revoked_zh": (f"已经{REVOKED_BY_ZH.get(r.revoked_by or '', r.revoked_by)}撤销（{r.revoked_ref}，{r.revoked_on.isoformat()}；"
                        f"{r.revoked_reason}），不再计入" if r.revoked_on is not None else ""),
         "related_zh": "、".join([*(f"抽样编号 {n}" for n in r.sample_nos), *(f"检查 {i}" for i in r.inspection_ids)]), "event_id": r.event_id}
        for r in sorted(file.enforcements, key=lambda r: r.decided_on, reverse=True)
    ]
    interviews = [
        {"held_on": i.held_on.isoformat(), "interview_id": i.interview_id, "held_by": i.held_by, "officials": "、".join(i.officials),
         "interviewee": i.interviewee or "", "reason": i.reason, "commitments": i.commitments,
         "follow_up_by": deadline_zh(i.follow_up_by, *_ends(rules, i.follow_up_by, i.follow_up_due_on, i.follow_up_due_estimate))
                         if i.follow_up_by else "",
         "follow_up_due_on": _ends(rules, i.follow_up_by, i.follow_up_due_on, i.follow_up_due_estimate)[0].isoformat() if i.follow_up_by else "",
         "follow_up_zh": _follow_up_zh(i) if i.superseded_by is None else "",
         "detail_zh": _record_zh(i), "superseded": i.superseded_by is not None, "event_id": i.event_id}
        for i in sorted(file.interviews, key=lambda i: i.held_on, reverse=True)
    ]
    if series is None:
        series = [
            {"product": s.product, "item_name": s.item_name, "points": s.monitor.count, "phase": _PHASE_ZH[s.monitor.phase],
             "signals": s.signals, "last": _last_result(file, rules, s.item_code, s.unit, point_dict(s.recent[-1]) if s.recent else None),
             "rebaselines": _rebaselines_zh(s.phases)}
            for s in sorted(file.fluctuation.series.values(), key=lambda s: s.key)
        ]
    if rebaselines_waiting is None:
        applied = {ph.event_id for s in file.fluctuation.series.values() for ph in s.phases}
        rebaselines_waiting = [_waiting_zh(r) for r in file.fluctuation.rebaselines if r.event_id not in applied]
    by_key: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts or ():
        by_key.setdefault(alert["dedup_key"], []).append(alert)
    warnings = [
        # a county alert (a category's chart) kept here because this enterprise's sample tipped it: said so, lest
        # it read as this enterprise's own problem
        {"date": _local(w.occurred_at, off, with_time=False), "rule": w.rule,
         "title_zh": w.title_zh + ("（县级预警，由本企业抽检触发）" if w.dedup_key.startswith("county:") else ""), "severity": w.severity,
         "severity_zh": SEVERITY_ZH.get(w.severity, w.severity), "message_zh": w.message_zh, "dedup_key": w.dedup_key,
         "event_ids": list(w.evidence.get("event_ids", [])),
         "handling_zh": handling_zh(_alert_of(w, by_key), off, now) if alerts is not None else ""}
        for w in reversed(file.warnings)
    ]
    signals = [w for w in warnings if w["rule"] == "fluctuation.signal"]
    return {
        "enterprise_id": file.enterprise_id, "name": name, "title_zh": f"诚信档案：{name}（{file.enterprise_id}）",
        "as_of": _local(now, off) if now else "", "profile": [{"label": k, "value": v} for k, v in profile], "grade": grade,
        "times_zh": f"文中时间均为{time_header(off).strip('（）')}",  # the file keeps UTC; the report shows local wall time
        "contributions": contributions, "grade_history": history, "samples": samples, "complaints": complaints,
        "resolutions_waiting": waiting, "acceptances_waiting": decisions_waiting, "inspections": inspections, "rectifications": rectifications, "rectifications_waiting": rectifications_waiting, "enforcements": enforcements, "interviews": interviews, "series": series, "signals": signals, "warnings": warnings,
        "rebaselines_waiting": rebaselines_waiting,
        "campaign": _campaign_rows(file, rules),
    }


def _verification_zh(v: Any, off: int) -> str:
    """One 复查 as the report lists it: 2026-04-22 李科长 未通过（消毒记录系补填；重新限期 2026-05-15）."""
    said = [x for x in (v.note, f"重新限期 {v.new_deadline.isoformat()}" if v.new_deadline else "") if x]
    return (f"{_local(v.verified_at, off, with_time=False)} {v.verifier} {'通过' if v.accepted else '未通过'}"
            + (f"（{'；'.join(said)}）" if said else "") + ("（晚到未采用）" if v.outdated else ""))


def _counted_verified_zh(c: Any, off: int) -> str:
    """The spans a complaint counted as 属实 that have ended, by its conclusions' dates — 属实 at receipt (or by an earlier
    conclusion) and 不属实 since: its points, its place in a cluster weighed meanwhile, and the report must say so."""
    if not c.resolutions:
        return ""
    state, since, spans = bool(getattr(c, "verified_at_receipt", False)), c.received_at, []
    for r in sorted(c.resolutions, key=lambda r: r.resolved_at):
        if state and not r.verified:
            spans.append((since, r.resolved_at))
        if r.verified and not state:
            since = r.resolved_at
        state = r.verified
    if not spans:
        return ""
    said = "；".join(f"{_local(a, off, with_time=False)} 至 {_local(b, off, with_time=False)}" for a, b in spans)
    return f"（曾按属实计：{said}）"


def _earlier_conclusions(c: Any, off: int) -> str:
    """A complaint's other conclusions (核查结论), beside the one in force: a revised conclusion leaves the first on record."""
    others = [r for r in c.resolutions if r.event_id != c.resolution_event_id]
    if not others:
        return ""
    said = "；".join(f"{_local(r.resolved_at, off, with_time=False)} {'属实' if r.verified else '不属实'}"
                    + (f"：{mask_personal_info(r.outcome)}" if r.outcome else "")
                    for r in sorted(others, key=lambda r: r.resolved_at))
    return f"（其他办结结论：{said}；以 {_local(c.resolved_at, off, with_time=False)} 的结论为准）"


def _record_zh(record: Any) -> str:
    """An inspection's or an interview's record sent again: why it does not count, or whose place it took."""
    if record.superseded_by is not None:
        return record.superseded_zh()
    return f"更正了原记录（事件 {record.corrects}）" if record.corrects else ""


def _campaign_rows(file: CreditFile, rules: Rules) -> list[dict[str, Any]]:
    """The commitment letter, stages with their dates, each assessment with its assessor, the "three
    ones" with their figures, the self-inspections, the KPIs with their counts against their targets,
    the comparison tests, and what is still to do (待办)."""
    from processors.campaign import (ASSISTANCE_TIERS, STAGE_ZH, STAGES, corrected_assessments, gap_text, kpi_value_text, kpis,
                                     last_acceptance, registry_tier_of, stage_applies, three_ones, three_ones_gaps, tier_zh, tiering_tiers,
                                     training_shortfall, unmet_kpis)

    c = file.campaign
    if not c.event_ids:
        return []
    pol = rules.policy.campaign
    signed = "，".join(x for x in (f"编号 {c.document_no}" if c.document_no else "编号未载明",
                                  f"签字人 {c.signatory}" if c.signatory else "",
                                  f"{c.commitment_signed_on.isoformat()} 签订" if c.commitment_signed_on else "") if x)
    rows = [{"item": "承诺书", "status": "已签订" if c.commitment_signed_on else "未签订", "detail": signed if c.commitment_signed_on else ""}]
    # every other letter on file, as the progress table's 承诺书 column lists them: a second letter is to be checked
    others = sorted(c.commitments, key=lambda x: x.signed_on)
    shown = next((x for x in others if (x.document_no, x.signatory, x.signed_on) == (c.document_no, c.signatory, c.commitment_signed_on)), None)
    for x in others:
        if x is shown:
            continue
        rows.append({"item": "承诺书（另一份）", "status": "须核实",
                     "detail": "，".join(y for y in (f"编号 {x.document_no}" if x.document_no else "编号未载明",
                                                    f"签字人 {x.signatory}" if x.signatory else "",
                                                    f"{x.signed_on.isoformat()} 签订") if y)
                               + "；承诺日期按最早签订的一份计"})
    # 帮扶指导 is for the lower tiers: a B-tier enterprise without it has not left it undone, and before
    # the tiering nobody knows yet whether it will get it
    tiers = "、".join(ASSISTANCE_TIERS)
    open_stage = {True: ("未完成", ""), False: ("不适用", f"调查分档为 {'、'.join(tiering_tiers(c))} 档，不安排帮扶指导（仅 {tiers} 档企业安排）"),
                  None: ("视分档结果而定", f"分档为 {tiers} 档的企业安排帮扶指导")}
    stages = [{"item": STAGE_ZH[s], "status": "已完成" if s in c.stages else open_stage[stage_applies(s, c)][0],
               "detail": c.stages[s].isoformat() if s in c.stages else open_stage[stage_applies(s, c)][1]}
              for s in STAGES]
    if c.acceptance_failed:
        stages[-1]["detail"] = (stages[-1]["detail"] + "；" if stages[-1]["detail"] else "") + f"验收未通过 {c.acceptance_failed} 次"
    # what the progress table says of the same acceptance (验收通过但须核实): the "three ones" not done, the KPIs short
    # (the other checks, a penalty or complaints, have their own rows below)
    short = training_shortfall(c, pol)
    gaps = ([x["text_zh"] for x in three_ones_gaps(c, pol)] + ([short["text_zh"]] if short else [])
            + [gap_text(v) + "未达标" for v in unmet_kpis(file, pol)]) if c.accepted_on else []
    if gaps:
        stages[-1]["detail"] = (stages[-1]["detail"] + "；" if stages[-1]["detail"] else "") + "已验收通过，但须核实：" + "；".join(gaps)
    rows += stages
    corrected = corrected_assessments(c)
    for a in sorted(c.assessments, key=lambda a: a.on):  # who assessed, and what they found
        kind = "调查分档" if a.kind == "tiering" else "检查验收"
        status = TIER_ZH.get(a.tier, a.tier) if a.kind == "tiering" else ("通过，" if a.passed else "未通过，") + TIER_ZH.get(a.tier, a.tier)
        # (of two on one day, the one loaded later corrects the earlier: the earlier is kept and said, not counted)
        said = f"已由同日后报送的记录（事件 {corrected[a.event_id]}）更正，不计入" if a.event_id in corrected else ""
        rows.append({"item": f"{kind}（{a.on.isoformat()}）", "status": status + ("（已更正）" if said else ""),
                     "detail": "；".join(x for x in (f"评定人 {a.assessor}" if a.assessor else "", a.note, said) if x)})
    # what the acceptance must be checked against besides the KPIs (a penalty, a low pass rate, grade C/D, complaints)
    rows += [{"item": f"验收须核实·{check.label_zh}", "status": "须核实", "detail": check.text_zh} for check in c.acceptance_checks]
    rows.append({"item": "提档升级档次", "status": f"{tier_zh(c.starting_tier)} → {tier_zh(c.tier, registry_tier_of(file))}",
                 "detail": "、".join(f"{DIMENSION_ZH.get(k, k)} {v:g}" for k, v in c.scores.items())})
    t = c.training
    ones_zh = {"training_and_exam": "三个一·全员培训考试", "self_inspection": "三个一·企业自查", "comparison_test": "三个一·比对试验"}
    ones_detail = {"training_and_exam": (f"培训 {t['staff_trained']}/{t['staff_total']} 人，考试 {t['exam_takers']}/{t['staff_total']} 人"
                                         f"（{t['as_of']} 报告）" + (f"；{short['text_zh']}" if short else "")) if t else "无培训考试报告"}
    rows += [{"item": ones_zh[k], "status": "已完成" if v else "未完成", "detail": ones_detail.get(k, "")} for k, v in three_ones(c, pol).items()]
    for x in c.self_inspections:
        if x.findings is None:
            status, detail = "已开展", "发现问题数未载明"
        else:
            fixed = x.rectified if x.rectified is not None else 0
            status = f"发现问题 {x.findings} 项，已整改 {fixed} 项"
            detail = f"{x.findings - fixed} 项未整改" if x.findings > fixed else "已全部整改"
        rows.append({"item": f"自查（{x.on.isoformat()}{f'，{x.note}' if x.note else ''}）", "status": status, "detail": detail})
    k_all = kpis(file, pol)
    for key, k in k_all.items():
        basis = k.get("basis_zh")  # (the sampling KPI says which samples it counted: provincial ones only)
        if k["met"] is None:
            status = basis if basis and basis.startswith("无") else "无数据"
        else:
            status = ("达标" if k["met"] else "未达标") + ("（须核实）" if k.get("doubt_zh") else "")
        figure = "" if k["value"] is None else (f"{k['figure_zh']}，" if key != "sampling_pass_rate" else f"{kpi_value_text(k)}，")
        detail = figure + k["target_zh"] + (f"（{basis}）" if basis and k["met"] is not None else "")
        if k.get("as_of"):
            detail += f"；{k['as_of']} 报告"
        if k.get("takers_zh"):
            detail += f"；{k['takers_zh']}"
        if k.get("doubt_zh"):
            detail += f"；{k['doubt_zh']}"
        rows.append({"item": k["label_zh"], "status": status, "detail": detail})
    rows_tests = _comparison_rows(file, rules)
    rows += rows_tests
    off = rules.policy.utc_offset_hours
    for r in c.retractions.values():  # the records withdrawn (kept on file, not counted), and retractions waiting for theirs
        when = f"{_local(r.occurred_at, off, with_time=False)} 由{r.by}撤销：{r.reason}（撤销事件 {r.event_id}）"
        if r.record is not None:
            rows.append({"item": f"已撤销·{r.record_zh}", "status": "已撤销，不计入", "detail": f"{when}；原记录事件 {r.retracted_event_id}"})
        elif r.retracted_event_id in c.event_ids:
            rows.append({"item": f"撤销（事件 {r.retracted_event_id}）", "status": "重复报送的记录，原未单独计入", "detail": when})
        else:
            rows.append({"item": f"撤销（事件 {r.retracted_event_id}）", "status": "本企业名下无此记录",
                         "detail": f"{when}；该记录到达时即按撤销存档"})
    for r in c.refused_retractions:  # a retraction naming a retraction: kept, registers nothing
        rows.append({"item": f"撤销（事件 {r.retracted_event_id}）", "status": "所撤销的是一条撤销记录，不作为撤销登记",
                     "detail": f"{_local(r.occurred_at, off, with_time=False)} 由{r.by}报送（事件 {r.event_id}）：撤销不能再撤销；"
                               "如撤销有误，请以新的 event_id 重新报送原记录"})
    todo = _campaign_todo(file, rules, k_all, last_acceptance(c))
    rows.append({"item": "待办", "status": f"{len(todo)} 项" if todo else "无", "detail": "；".join(todo)})
    return rows


def _campaign_todo(file: CreditFile, rules: Rules, k_all: dict[str, Any], last: Any) -> list[str]:
    """What is still to do in the campaign: a second acceptance after a failed one, a new comparison test
    after an unsatisfactory one, the "three ones" not done, self-inspection findings not put right, KPIs short."""
    from processors.campaign import (STAGE_ZH, STAGES, comparison_zh, kpi_value_text, newest_comparison, newest_self_inspection, stage_applies,
                                     three_ones)

    c, pol = file.campaign, rules.policy.campaign
    out = ["签订承诺书" if "mobilisation" not in c.stages else ""]
    out += [f"完成{STAGE_ZH[s]}" for s in STAGES[1:4] if s not in c.stages and stage_applies(s, c)]
    ones = three_ones(c, pol)
    if not ones["training_and_exam"]:
        out.append("完成全员培训考试")
    # by the documents' dates, as the progress table: the newest self-inspection's open findings; a new comparison test
    # only while none was satisfactory, after the newest unsatisfactory one
    newest = newest_self_inspection(c)
    if newest is None:
        out.append("开展自查")
    elif newest.findings is not None and newest.findings > (newest.rectified or 0):
        out.append(f"整改自查发现的其余 {newest.findings - (newest.rectified or 0)} 项问题（{newest.on.isoformat()} 自查）")
    tested = newest_comparison(c)
    if tested is None:
        out.append("开展比对试验")
    elif not ones["comparison_test"] and tested.satisfactory is False:
        out.append(f"重新开展比对试验（{tested.on.isoformat()} {tested.item_name or tested.item_code} 结果{comparison_zh(tested)}）")
    out += [f"提高{k['label_zh']}（现 {k['figure_zh'] if k.get('whole') and 'basis_zh' not in k else kpi_value_text(k)}，{k['target_zh']}，未达标）"
            for k in k_all.values() if k["met"] is False and not c.accepted_on]
    if last is not None and not last.passed:
        out.append(f"再次检查验收（{last.on.isoformat()} 验收未通过）")
    elif last is None and all(ones.values()):
        out.append("申请检查验收")
    return [x for x in out if x]


def _comparison_rows(file: CreditFile, rules: Rules) -> list[dict[str, Any]]:
    from processors.campaign import comparison_zh, deviation_zh, en_zh

    c, pol = file.campaign, rules.policy.campaign
    rows: list[dict[str, Any]] = []
    category = file.profile.category if file.profile else None
    for t in c.comparison_tests:
        item = rules.catalogue.item(category, t.item_code) if category else None
        unit = rules.catalogue.item_unit(category, t.item_code) if category else None
        # the event carries no unit: its values are read in the catalogue's unit for the item
        suffix = f" {unit.display}" if unit is not None and unit.display else ""
        if t.measure_zh:  # as the fold judged it (En, log10 difference of colony counts, relative deviation)
            measure = t.measure_zh
        elif t.en is not None:  # (as the fold says them: never rounded to read as the other side of the limit)
            measure = en_zh(t.en)
        elif t.deviation is not None:
            measure = deviation_zh(t.deviation, pol.comparison_max_deviation)
        else:
            measure = "实验室结果为 0，无法计算相对偏差"
        # the note is what tells two samples compared the same day apart (the fold keeps both by it)
        note = f"，{t.note}" if t.note else ""
        rows.append({"item": f"比对试验 {item.name_zh if item else t.item_code}（{t.on.isoformat()}{note}）", "status": comparison_zh(t),
                     "detail": f"企业 {t.enterprise_value:g}{suffix}，{t.lab} {t.lab_value:g}{suffix}，{measure}"})
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return str(value)


def render_text(report: dict[str, Any]) -> str:
    g = report["grade"]
    lines = [report["title_zh"], f"截至 {report['as_of'] or '—'}（{report['times_zh']}）", "", "【基本信息】"]
    lines += [f"  {row['label']}：{row['value']}" for row in report["profile"]]
    lines += ["", "【风险等级】"]
    if g["grade"]:
        lines.append(f"  {g['grade_zh']}，风险分 {_cell(g['score'])}（静态 {_cell(g['static'])} + 动态 {_cell(g['dynamic'])} + 信用 {_cell(g['credit'])}）")
        if g["next_inspection_due"]:
            grace = f"；{g['regraded_on']} 等级调整后给予 {g['regrade_grace_days']} 天" if g.get("regraded_on") else ""
            rate = inspection_frequency(g["inspections_per_year"])[0] if g["inspections_per_year"] else ""
            lines.append(f"  下次现场检查应于 {g['next_inspection_due']} 前（按本县风险分级监管要求，{g['grade']} 级{rate}{grace}）"
                         + ("，已逾期" if g.get("inspection_overdue") else ""))
        elif g.get("no_inspection_zh"):
            lines.append(f"  下次现场检查：无（{g['no_inspection_zh']}）")
        lines.append("  主要原因：")
        lines += [f"    - {r}" for r in g["reasons"]] or ["    （无）"]
    else:
        lines.append(f"  {g['grade_zh']}")
    for section in SECTIONS:
        rows = report.get(section) or []
        if section in WHEN_ANY and not rows:
            continue
        if section == "series":
            total = len(rows)
            signalled = sum(1 for r in rows if r["signals"])
            # (a series whose baseline a supervisor re-established is listed with its phases, signals or not)
            rows = [r for r in rows if r["signals"] or r.get("rebaselines")]
            periods = [w["dedup_key"].rsplit(":", 1)[1] for w in report["signals"]
                       if w.get("dedup_key", "").startswith(f"{report['enterprise_id']}:fluctuation:p:")]
            lines += ["", f"【{SECTION_ZH[section]}】（{series_heading_zh(total, signalled, periods)}）"]
            lines += [f"  待生效的控制限重新确定：{w}" for w in report.get("rebaselines_waiting") or []]
            if not rows and report.get("rebaselines_waiting"):
                continue
        else:
            # an inspection or interview sent again is one, its other records kept beside it
            aside = sum(1 for r in rows if r.get("superseded"))
            lines += ["", f"【{SECTION_ZH[section]}】（{COUNT_ZH[section].format(n=len(rows) - aside)}"
                          + (f"，{ASIDE_ZH.get(section, '另有重复或被取代的记录 {n} 条').format(n=aside)}" if aside else "") + "）"]
        if not rows:
            lines.append("  （无）")
            continue
        cols = [(k, t) for k, t in COLUMNS[section] if not k.endswith(("event_ids", "event_id")) and k != "dedup_key"]
        for row in rows:
            # a cell that is a sentence ends with 。, and "。；" is not Chinese punctuation
            parts = [f"{t}：{_cell(row.get(k)).rstrip('。')}" for k, t in cols if _cell(row.get(k)) != ""]
            lines.append("  " + "；".join(parts))
    return "\n".join(lines) + "\n"


def write_xlsx(report: dict[str, Any], path: str | Path) -> Path:
    """A workbook to print: a summary sheet, then one sheet per section (A4 landscape, fit to width).

    Its text comes from the public (complaints), the labs (product, lab names) and the enterprise's
    registration: every value goes through ``ingest.export.xlsx_value`` as the API's exports do, and
    every text cell is written as text, so ``=HYPERLINK(…)`` in a complaint is shown, never run."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    from ingest.export import header_footer_text, xlsx_value

    def append(ws: Any, values: list[Any]) -> None:
        ws.append([xlsx_value(v) for v in values])
        for c in ws[ws.max_row] if values else ():
            if isinstance(c.value, str):
                c.data_type = "s"  # text, never a formula or an error value (#N/A)

    path = Path(path)
    wb = Workbook()
    bold = Font(bold=True)
    title_font = Font(bold=True, size=14)
    head_fill = PatternFill("solid", fgColor="DDEBF7")
    wrap = Alignment(wrap_text=True, vertical="top")

    def setup(ws: Any, widths: list[int], header_row: int | None) -> None:
        for i, w in enumerate(widths, 1):
            ws.column_dimensions[get_column_letter(i)].width = w
        ws.page_setup.orientation = "landscape"
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.oddFooter.center.text = f"{header_footer_text(report['title_zh'])}  第 &P 页，共 &N 页"
        if header_row:
            ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
            ws.print_title_rows = f"{header_row}:{header_row}"

    ws = wb.active
    ws.title = "概要"
    append(ws, [report["title_zh"]])
    ws["A1"].font = title_font
    append(ws, [f"截至 {report['as_of']}（{report['times_zh']}）"])
    append(ws, [])
    append(ws, ["基本信息"])
    ws.cell(row=ws.max_row, column=1).font = bold
    for row in report["profile"]:
        append(ws, [row["label"], _cell(row["value"])])
    g = report["grade"]
    append(ws, [])
    append(ws, ["风险等级"])
    ws.cell(row=ws.max_row, column=1).font = bold
    append(ws, ["等级", g["grade_zh"]])
    append(ws, ["风险分", g["score"]])  # a number, to sum and sort
    append(ws, ["构成", f"静态 {_cell(g['static'])} + 动态 {_cell(g['dynamic'])} + 信用 {_cell(g['credit'])}"])
    append(ws, ["下次检查期限", (g["next_inspection_due"] or (f"无（{g['no_inspection_zh']}）" if g.get("no_inspection_zh") else ""))
                + ("（已逾期）" if g.get("inspection_overdue") else "")])
    for i, r in enumerate(g["reasons"]):
        append(ws, ["主要原因" if i == 0 else "", r])
    for row in ws.iter_rows(min_row=4):
        for c in row:
            c.alignment = wrap
    setup(ws, [16, 90], None)

    for section in SECTIONS:
        if section in WHEN_ANY and not report.get(section):
            continue
        sheet = wb.create_sheet(SECTION_ZH[section][:31])
        cols = COLUMNS[section]
        append(sheet, [f"{report['title_zh']} — {SECTION_ZH[section]}"])
        sheet["A1"].font = bold
        append(sheet, [t for _, t in cols])
        for c in sheet[2]:
            c.font = bold
            c.fill = head_fill
        for row in report[section]:
            append(sheet, [_cell(row.get(k)) if not isinstance(row.get(k), (int, float)) or isinstance(row.get(k), bool) else row.get(k)
                           for k, _ in cols])
        for r in sheet.iter_rows(min_row=3):
            for c in r:
                c.alignment = wrap
        widths = [min(60, max(10, max((len(_cell(row.get(k))) for row in report[section]), default=0) + 2, len(t) * 2 + 2)) for k, t in cols]
        setup(sheet, widths, 2)
    # fixed document times: the same file gives the same workbook properties
    stamp = dt.datetime(2000, 1, 1)
    wb.properties.creator = "qrisk"
    wb.properties.created = stamp
    wb.properties.modified = stamp
    wb.properties.title = report["title_zh"]
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path
