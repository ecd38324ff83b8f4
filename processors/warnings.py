"""Early-warning rules (早期预警): what the fold found → alert decisions.

Each rule is policy data (``warnings.*`` in the policy file): on or off, a
severity (critical / high / medium / low, mapped to a RASFF-like class and a
response time), a Chinese title and message template and an English one.  A
decision carries a dedup key — the same problem keeps the same key, so the
alerts stage groups repeats into one alert — and its evidence: the event ids and
the numbers.  Delivering it (routing, grouping, silences, escalation) is the
alerts stage's job; the fold emits decisions as ``warning.raised`` effects.

Rules:

========================  ==========================================================
sampling.unqualified      an unqualified sample; severity by the worst failed item's class, the lab's 不合格 on items qrisk
                          passes among them
                          (an additive's class by the rule in force: not permitted or over a limit)
fluctuation.signal        a control-chart signal (higher when against the legal maximum)
risk.grade_worsened       the risk grade moved towards D
complaint.cluster         k verified complaints within the window
complaint.burst           k complaints received within a short window, verified or not yet (快速反应)
complaint.illness         one verified complaint of illness after eating (食用后不适)
complaint.hazard          one verified complaint of foreign matter or spoilage (异物, 霉变、变质): a complaint the illness
                          rule alerts on keeps that alert only
rectification.overdue     a rectification past its deadline (by event time)
data.missing              no sample / no inspection within the interval the grade requires
inspection.nonconforming  an inspection found the enterprise 不符合 or made major findings
rectification.rejected    a rectification rejected at verification
judgement.disagrees       qrisk's judgement differs from the lab's
judgement.lab_failed_unjudged  the lab judged an item 不合格 that qrisk cannot judge (the sample stays undetermined):
                          the lab's conclusion starts the follow-up (核查处置) all the same
judgement.lab_failed_passed  the lab judged an item 不合格 that qrisk judges 合格 or not applicable: the sample counts
                          不合格 by the report's conclusion, and the follow-up starts on it
retest.inadmissible       a re-test of a microbiological failure (不予复检) arrived anyway
enforcement.decided       a 行政处罚决定; severity by the heaviest penalty, or a listing as 严重违法失信
interview.follow_up_overdue  an interview's follow-up date (跟踪检查期限) passed with no inspection since the interview
complaint.overdue         a complaint or report (投诉举报) past a statutory time limit with no conclusion: the bureau's own
                          lateness, told to the town (low); closed by its conclusion or withdrawal
sampling.near_limit       a passing sample whose GB 2760 sum of ratios is close to 1 (the warning before the failure)
========================  ==========================================================
"""
from __future__ import annotations

import bisect
import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from processors._build import builder
from processors.ids import event_key

from processors.fluctuation import period_zh
from processors.judgement import ratio_figure
from processors.personal_info import mask_personal_info
from processors.risk import CATEGORY_ZH, failed_class, failure_says_it, in_days, in_hours, inspection_frequency
from schemas.duplicates import duplicate_similarity
from schemas.events import PENALTY_ZH
from schemas.policy import HAZARD_EN, HAZARD_ZH, SEVERITIES, WARNING_RULES, RasffClass, Severity, WarningRule
from schemas.working_days import MOVED_ESTIMATE_EN, MOVED_ESTIMATE_ZH

if TYPE_CHECKING:  # pragma: no cover
    from processors.credit_file import CreditFile
    from processors.risk import GradeEntry
    from processors.step import Effect, Rules
    from schemas.events import Envelope
    from schemas.policy import Policy

ALERT_KIND = "warning.raised"
"""The effect kind that carries an ``AlertDecision`` (as JSON) in its data."""

RULES = WARNING_RULES

_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}  # critical 0 … low 3
# 食品安全法: a permitted additive used where GB 2760 does not allow it is 超范围使用食品添加剂 (第一百二十四条);
# 非法添加 is adding a non-food substance (第一百二十三条), which a GB 2760 additive is not.
# The pathogen class holds GB 29921's pathogens and also water's 铜绿假单胞菌, a conditional pathogen
# (条件致病菌) among GB 19298's 微生物限量, which GB 29921 does not cover: it weighs as a pathogen, but
# to call it a 致病菌 outright is wrong
_CLASS_ZH = {
    "pathogen": "致病菌（含条件致病菌）", "indicator_microbe": "微生物指标", "additive_not_permitted": "超范围使用食品添加剂（不得使用）",
    "additive": "食品添加剂超限", "contaminant": "污染物", "chemical": "理化指标", "quality_index": "品质指标",
}
_NEAR_LIMIT = frozenset({"cpk_low", "ewma_near_limit", "result_near_limit"})


class AlertDecision(BaseModel):
    """A rule fired: what, how severe, the dedup key, the texts and the evidence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str
    severity: Severity
    rasff_class: RasffClass
    respond_within_hours: float | None = None
    dedup_key: str = Field(description="the same problem keeps the same key: the alerts stage groups by it")
    enterprise_id: str
    title_zh: str
    message_zh: str
    message_en: str
    evidence: dict[str, Any] = Field(default_factory=dict, description="event ids and the numbers the rule used")
    occurred_at: dt.datetime = Field(description="event time of the event that raised it")
    event_id: str = Field(description="the event that raised it")


_build_decision = builder(AlertDecision)


def decision_data(d: AlertDecision) -> dict[str, Any]:
    """A ``warning.raised`` effect's data: the decision as JSON (the same as ``model_dump(mode="json")``, built by hand)."""
    text = d.occurred_at.isoformat()
    return {
        "rule": d.rule, "severity": d.severity, "rasff_class": d.rasff_class, "respond_within_hours": d.respond_within_hours,
        "dedup_key": d.dedup_key, "enterprise_id": d.enterprise_id, "title_zh": d.title_zh, "message_zh": d.message_zh,
        "message_en": d.message_en, "evidence": d.evidence, "occurred_at": text[:-6] + "Z" if text.endswith("+00:00") else text,
        "event_id": d.event_id,
    }


class _Fill(dict):
    def __missing__(self, key: str) -> str:  # a template naming a field a rule lacks prints nothing, never fails
        return ""


def _render(template: str, fields: dict[str, Any]) -> str:
    return template.format_map(_Fill(fields))


def _decision(rule_id: str, rule: WarningRule, severity: Severity, file: "CreditFile", at: dt.datetime, event_id: str,
              dedup_key: str, fields: dict[str, Any], evidence: dict[str, Any], rules: "Rules", name: str | None = None,
              texts: tuple[str, str, str] | None = None, fields_en: dict[str, Any] | None = None) -> AlertDecision:
    """``name``: who the message is about, when not the enterprise (the county's chart of a category);
    ``texts``: (title, template_zh, template_en) other than the rule's own (a re-test upholding a failure);
    ``fields_en``: fields the English text says otherwise (a date moved off a holiday, said in English)."""
    wp = rules.policy.warnings
    if name is None:
        name = file.profile.name if file.profile is not None else file.enterprise_id
    local = (at + in_hours(rules.policy.utc_offset_hours)).date().isoformat()
    fill = {"name": name, "enterprise_id": file.enterprise_id, "date": local, **fields}
    title, template_zh, template_en = texts or (rule.title_zh, rule.template_zh, rule.template_en)
    # trusted fields from the fold: built without validating them again
    return _build_decision(
        rule=rule_id, severity=severity, rasff_class=wp.rasff_class.get(severity, "information_attention"),
        respond_within_hours=wp.respond_within_hours.get(severity), dedup_key=dedup_key, enterprise_id=file.enterprise_id,
        title_zh=title, message_zh=_render(template_zh, fill),
        message_en=_render(template_en, {**fill, **fields_en} if fields_en else fill).rstrip(),
        evidence=evidence, occurred_at=at, event_id=event_id,
    )


def decide(file: "CreditFile", event: "Envelope", effects: list["Effect"], graded: "GradeEntry | None",
           missing: list[dict[str, Any]], rules: "Rules") -> list[AlertDecision]:
    """The alert decisions for what one event did to one credit file."""
    out: list[AlertDecision] = []
    for eff in effects:
        handler = _ON_EFFECT.get(eff.kind)
        if handler is not None:
            decision = handler(file, eff, rules)
            if decision is not None and eff.data.get("correction_zh"):
                # a failure corrected into another: the alerts stage puts the corrected evidence on the failure's alert
                # and says what changed (``alerts.lifecycle``: 报告更正), no new occurrence
                decision = decision.model_copy(update={"evidence": {
                    **decision.evidence, "corrected_from": eff.data["corrects_event_id"], "correction_zh": eff.data["correction_zh"]}})
            if decision is not None:
                out.append(decision)
        if eff.kind == "complaint.withdrawn" and not eff.data.get("arrived_after"):
            out += withdrawn_recounted(file, eff, rules)
    if graded is not None and graded.previous is not None and graded.grade > graded.previous:  # "A" < "B" < … < "D"
        d = _grade_worsened(file, event, graded, rules)
        if d is not None:
            out.append(d)
    for gap in missing:
        d = _data_missing(file, event, gap, rules)
        if d is not None:
            out.append(d)
    return out


# --------------------------------------------------------------------------- rules


def _sampling(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    rule = rules.policy.warnings.sampling_unqualified
    if not rule.enabled:
        return None
    d = eff.data
    record = file.sample_by_event(d["sample_event_id"])
    failed: list[dict[str, Any]] = []
    classes: list[str] = []
    if record is not None and record.judgement is not None:
        for i in record.judgement.items:
            if i.verdict == "fail":
                cls = failed_class(i)  # an additive by the rule in force: not permitted weighs as such
                classes.append(cls or "")
                failed.append({"item_code": i.item_code, "item_name": i.item_name, "item_class": cls,
                               "values": list(i.values), "unit": i.unit, "limit": i.limit_text, "reason": i.reason,
                               "standard": i.standard})
        for c in record.judgement.sum_checks:
            if c.verdict == "fail":
                classes.append("additive")
                failed.append({"item_code": f"sum_of_ratios:{c.group}", "item_name": c.item_name or f"{c.group_name}比例之和", "item_class": "additive",
                               "total": c.total, "members": [{"item_code": m.item_code, "value": m.value, "max": m.max, "ratio": m.ratio} for m in c.members]})
        # the lab's 不合格 on items qrisk passes or finds not applicable fails the sample too (SampleJudgement.counted):
        # qrisk failing another item raises no judgement.lab_failed_passed alert, so this one names them, with qrisk's
        # verdict beside the lab's, and weighs them (a pathogen the lab failed beside a quality index qrisk fails)
        for i in record.judgement.lab_failures_passed():
            cls = failed_class(i)
            classes.append(cls or "")
            failed.append({"item_code": i.item_code, "item_name": i.item_name, "item_class": cls, "values": list(i.values),
                           "unit": i.unit, "limit": i.limit_text, "reason": i.reason, "standard": i.standard,
                           "lab_verdict": "fail", "verdict": i.verdict})
    # the worst failed item decides; an item of unknown class takes the rule's own severity
    worst = min(classes, key=lambda c: _SEVERITY_RANK[rule.severity_by_class.get(c, rule.severity)], default="")
    severity = rule.severity_by_class.get(worst, rule.severity) if classes else rule.severity
    # (once each: the lab's own reported sum and qrisk's sum of the same group carry SAMR's one name)
    names = list(dict.fromkeys(f.get("item_name") or f["item_code"] for f in failed))
    lot = _lot(record)
    # a failure on items that admit no re-test (微生物指标) leaves the enterprise no re-test to ask for:
    # the next step must not offer one
    no_retest = [f.get("item_name") or f["item_code"] for f in failed if f.get("item_class") in rules.policy.retest.inadmissible_item_classes]
    # (a failure qrisk alone finds is no repeat of anything, nor are earlier ones a repeat for it: SampleJudgement.counted)
    counted = record is not None and record.judgement is not None and record.judgement.counted == "fail"
    # a re-test upholding the failure is noted on the alert the failure opened (屡次 said there): no repeat again; but a
    # corrected re-test, or an original corrected under its re-test, puts its evidence, message and severity on that
    # alert (corrects_event_id), which are the sample's failure's — the earlier failures count for it as they did then
    repeats = (_earlier_failures(file, record, d.get("failed_items", []), rule.repeat_within_days)
               if counted and (not d.get("confirms_event_id") or d.get("corrects_event_id")) else [])
    detail = _sentence("；".join(d.get("messages_zh") or []))
    carried = set(record.not_retested) if record is not None and record.retest else set()
    first = _first_test(file, record) if carried else None
    cleared: list[str] = []
    if first is not None:
        # a re-test (复检) covers the items the enterprise disputed; the others are the first lab's results:
        # each failed item is quoted with the lab that found it, and what the re-test cleared is said
        for f in failed:
            f["lab"] = first.lab if f["item_code"] in carried else record.lab  # type: ignore[union-attr]
        was = first.judgement
        own_failed = {f["item_code"] for f in failed if f["item_code"] not in carried}
        if was is not None:
            cleared = [i.item_name or i.item_code for i in was.items if i.verdict == "fail" and i.item_code not in carried
                       and i.item_code not in own_failed]
        retested = [i.item_name or i.item_code for i in record.judgement.items if i.item_code not in carried]  # type: ignore[union-attr]
        kept = [f.get("item_name") or f["item_code"] for f in failed if f["item_code"] in carried]
        detail += (f"复检机构：{record.lab}（复检项目：{'、'.join(retested)}"  # type: ignore[union-attr]
                   + (f"，其中{'、'.join(cleared)}复检合格，原不合格结论改判" if cleared else "") + "）"
                   + (f"；{'、'.join(kept)}未申请复检，以初检结论为准，初检机构：{first.lab}" if kept else "")
                   + f"（任务来源：{record.task_source}）。")  # type: ignore[union-attr]
    elif record is not None:
        # who tested it and for whom: what a 核查处置 or a 行政处罚 quotes, and asks the lab about
        detail += f"检验机构：{record.lab}（任务来源：{record.task_source}）。"
        t = record.turnaround
        if t is not None and t.report_late:
            # a failure reported late has been on sale the while: what is recalled, and how far back to look, grows
            detail += f"{t.report_late_zh()}{t.caveat_zh()}，问题产品可能已销售较长时间，请据此扩大下架、召回和排查范围。"
    related = _related_complaints(file, record, d.get("product") or (record.product if record is not None else "") or "",
                                  eff.occurred_at, rules)
    if related:
        # the inspector who goes for the failing batch takes the complaint about it along: the complainant's bottle
        # may be of the same batch, and the complaint's 核查 and the failure's 核查处置 are one visit
        shown = "、".join(f"{c['complaint_id']}（{c['received_on']}，{'已核实属实' if c['verified'] else '尚待核实'}）"
                         for c in related[:5]) + (f"等 {len(related)} 件" if len(related) > 5 else "")
        detail += f"该产品近期有投诉 {shown}，核查处置时请一并核查。"
    if repeats:
        # 屡次不合格: the same item failing again within the window is no longer one incident
        severity = SEVERITIES[max(_SEVERITY_RANK[severity] - 1, 0)]  # one level up (critical stays critical)
        shown = "、".join(f"{r.sampled_on.isoformat()} 抽样编号 {r.sample_no}" for r in repeats[-3:])
        earlier = f"此前 {len(repeats)} 批，最近 3 批：{shown}" if len(repeats) > 3 else f"此前：{shown}"
        # only a rectification of those failures (its cause names one of their samples), completed and not
        # rejected before this sampling, failed to work: a failure sampled before anything was done, or beside
        # an order about something else (labelling, a 现场检查 finding), says nothing of one
        offset = in_hours(rules.policy.utc_offset_hours)
        numbers = [r.sample_no for r in repeats]
        done = [r for r in file.rectifications if r.status in ("completed", "verified") and r.completed_at is not None
                and record is not None and (r.completed_at + offset).date() <= record.sampled_on
                and any(n and n in r.cause for n in numbers)]
        verdict = (f"此前责令的整改（{'、'.join(r.rectification_id for r in done[-2:])}）完成后再次不合格，整改未见成效" if done else
                   "属屡次不合格")
        detail += (f"该企业近 {rule.repeat_within_days} 天内同一项目第 {len(repeats) + 1} 次抽检不合格（{earlier}），{verdict}："
                   f"建议约谈企业负责人、加大抽检频次，涉嫌违法的依法从严查处。")
    fields = {
        "product": d.get("product", ""), "sample_no": d.get("sample_no", ""), "sampled_on": d.get("sampled_on", ""),
        "items": "、".join(names) or "、".join(d.get("failed_items", [])), "detail": detail,
        "item_class": _CLASS_ZH.get(worst, worst), **{k: lot.get(k, "") for k in _LOT_ZH},
        "lot_zh": f"涉及批次：{'，'.join(f'{_LOT_ZH[k]} {v}' for k, v in lot.items())}。" if lot else "",
        "lot_en": f"Lot: {', '.join(f'{_LOT_EN[k]} {v}' for k, v in lot.items())}. " if lot else "",
        "retest_zh": (f"不合格项目“{'、'.join(no_retest)}”为微生物指标，依法不予复检" if no_retest else
                      "企业对检验结论有异议的，可自收到检验结论之日起 7 个工作日内向实施监督抽检的市场监督管理部门或者其上一级市场监督管理部门"
                      "提出书面复检申请，复检期间不停止采取上述控制措施"),
        "retest_en": (f"{', '.join(no_retest)}: microbiological, no re-test admitted" if no_retest else
                      "the enterprise may ask for a re-test within 7 working days of receiving the result"),
    }
    evidence = {"event_ids": [d["sample_event_id"]], "sample_no": d.get("sample_no"), "sampled_on": d.get("sampled_on"),
                "product": d.get("product"), **lot, "failed_items": d.get("failed_items", []), "item_class": worst or None, "failed": failed,
                **({"lab": record.lab, "task_source": record.task_source} if record is not None else {}),
                **({"repeat_of": [r.event_id for r in repeats]} if repeats else {}),
                **({"related_complaints": related} if related else {})}
    if first is not None:
        evidence["first_lab"], evidence["not_retested"] = first.lab, sorted(carried)
        if cleared:
            evidence["cleared_by_retest"] = cleared
    texts = None
    if d.get("confirms_event_id"):
        # the same dedup key: the alerts stage notes it on the failure's alert instead of counting it again
        evidence["retest_of"] = d["confirms_event_id"]
        if first is None or any(f["item_code"] not in carried for f in failed):
            texts = (rule.retest_title_zh, rule.retest_template_zh, rule.retest_template_en)
        else:
            # the re-test upheld nothing: what still fails are items nobody asked to re-test, on the first lab's word
            fields["retest_zh"] = "复检已完成，未申请复检的项目以初检结论为准"
            fields["retest_en"] = "the re-test is done; the items not re-tested stand as first tested"
    elif _lab_passed_all(record, d.get("failed_items", [])):
        # qrisk alone fails it: the lab's 合格 is the legal conclusion (a sum of ratios over 1 of members the lab passed
        # one by one, an item the lab misjudged): a check with the lab, not a seizure and a re-test notice
        evidence["unconfirmed"] = True
        severity = rule.unconfirmed_severity
        texts = (rule.unconfirmed_title_zh, rule.unconfirmed_template_zh, rule.unconfirmed_template_en)
    return _decision("sampling.unqualified", rule, severity, file, eff.occurred_at, eff.event_id,
                     _sampling_key(file.enterprise_id, d.get("sample_no", "")), fields, evidence, rules, texts=texts)


def _related_complaints(file: "CreditFile", record: Any, product: str, until: dt.datetime, rules: "Rules") -> list[dict[str, Any]]:
    """The enterprise's quality complaints (complaint_cluster.categories: not price or service) about the failing product,
    received from ``related_complaints_days`` before it was sampled up to the failure (event time), not withdrawn (those
    are off ``file.complaints``) nor found 不属实 — open or verified.  About the product: the complaint's product and the
    sample's, one holding the other (饮用纯净水 / 饮用纯净水（18.9L）); a complaint naming none, when its text names the
    sample's product (“买的饮用纯净水里有黑色漂浮物”).  A complaint naming another product, or only the enterprise, is
    not said to be about this one."""
    days = rules.policy.warnings.sampling_unqualified.related_complaints_days
    product = "".join(product.split())
    if record is None or days <= 0 or not product:
        return []
    offset = in_hours(rules.policy.utc_offset_hours)
    since = record.sampled_on - in_days(days)
    quality = rules.policy.complaint_cluster.categories
    chars = rules.policy.warnings.complaint_hazard.excerpt_chars
    out = []
    for c in file.complaints:
        if c.category not in quality or c.received_at > until or (c.resolved_at is not None and not c.verified):
            continue
        received_on = (c.received_at + offset).date()
        if received_on < since:
            continue
        named = "".join((c.product or "").split())
        if not (named and (named in product or product in named)) and not (not named and product in "".join(c.text.split())):
            continue
        out.append({"complaint_id": c.complaint_id, "received_on": received_on.isoformat(), "category": c.category,
                    "product": c.product, "verified": c.verified,
                    **({"excerpt": _excerpt(mask_personal_info(c.text), chars).rstrip("。.． ")} if chars else {})})
    return sorted(out, key=lambda c: (c["received_on"], c["complaint_id"]))


def _lab_passed_all(record: Any, failed: list[str]) -> bool:
    """Every item (or sum of ratios) qrisk failed is one where the lab's report disagrees: the lab passed it."""
    j = record.judgement if record is not None else None
    return bool(failed) and j is not None and set(failed) <= set(j.disagreements) and j.unconfirmed


def _first_test(file: "CreditFile", retest: Any) -> Any:
    """The first test (初检) a re-test took the place of: its items not re-tested are that lab's results."""
    for s in file.samples:
        if not s.retest and s.sample_no == retest.sample_no and s.superseded_by == retest.event_id:
            return s
    return None


def _earlier_failures(file: "CreditFile", record: Any, codes: list[str], days: int) -> list[Any]:
    """The enterprise's earlier failed samples (counting ones: not replaced by a re-test or a correction)
    sampled within ``days`` before ``record`` that failed on one of the same items, oldest first — by the report's
    conclusion: an item the lab failed and qrisk passes (余氯 at its limit, the lab rounding) is a failure of it."""
    if record is None or days <= 0 or not codes:
        return []
    wanted = set(codes)
    since = record.sampled_on - in_days(days)
    out = []
    before = record.sampled_on
    for s in file.reports_sampled(since, before):
        d = s.__dict__
        j = d["judgement"]
        # sampled before it, not the same day: the enterprise had the earlier result to act on
        if (d["sampled_on"] == before or s is record or d["superseded_by"] is not None or j is None
                or d["sample_no"] == record.sample_no or j.counted != "fail"):
            continue
        if set(j.failed_codes()) & wanted or any(i.item_code in wanted for i in j.lab_failures_passed()):
            out.append(s)
    return sorted(out, key=lambda s: (s.sampled_on, s.sample_no))


def _sampling_key(enterprise_id: str, sample_no: str) -> str:
    return f"{enterprise_id}:sampling.failed:{sample_no}"


def overturned_resolved(file: "CreditFile", eff: "Effect", rules: "Rules") -> dict[str, Any] | None:
    """A ``warning.resolved`` effect's data for a failure that no longer stands (``sampling.overturned``: an
    admitted re-test found the sample conforming, or the lab corrected its report): the failure's alert
    closes, quoting why.  Left open, it would escalate a conclusion the law no longer holds, and a later
    failure of the same sample would read as its second occurrence."""
    if not rules.policy.warnings.sampling_unqualified.enabled:
        return None
    d = eff.data
    if d.get("microbial_cleared") or d.get("retest_lab_unchecked"):
        # a microbial failure admits no re-test: a correction clearing it is for a supervisor to look into, and so
        # is a re-test by a lab no list admits (retest.institutions unset): not a reason to close the failure's alert
        # unseen (the sampling.overturned message says so)
        return None
    why = d.get("message_zh") or f"抽样编号 {d.get('sample_no', '')} 原不合格结论不再计入"
    return {
        "rule": "sampling.unqualified", "dedup_key": _sampling_key(file.enterprise_id, d.get("sample_no", "")),
        "enterprise_id": file.enterprise_id,
        "note_zh": f"{why}，预警自动关闭；已采取的控制措施是否解除，请依据复检或更正后的检验结论决定",
        "note_en": f"sample {d.get('sample_no', '')}: the failure no longer stands ({'corrected report' if d.get('corrected') else 'admitted re-test'}): closed",
        "evidence": {"event_ids": [eff.event_id, *([d["original_event_id"]] if d.get("original_event_id") else [])],
                     "sample_no": d.get("sample_no"), "verdict": d.get("verdict"), "corrected": bool(d.get("corrected"))},
    }


def lab_failure_settled(file: "CreditFile", eff: "Effect", rules: "Rules") -> dict[str, Any] | None:
    """A ``warning.resolved`` effect's data for the ``judgement.lab_failed_passed`` alert of a sample whose lab
    failure no longer stands (``sampling.overturned``: a passing re-test, a corrected report): the 不合格 it was
    raised on is no longer the report's conclusion."""
    if not rules.policy.warnings.lab_failed_passed.enabled:
        return None
    d = eff.data
    if d.get("retest_lab_unchecked"):
        return None  # a re-test by a lab no list admits: for a supervisor to check and close, as the failure's own alert
    original = file.sample_by_event(d.get("original_event_id", ""))
    j = original.judgement if original is not None else None
    if j is None or j.verdict == "fail" or not j.lab_failures_passed():
        return None  # (no such alert was raised on it)
    no = d.get("sample_no", "")
    why = d.get("message_zh") or f"抽样编号 {no} 原不合格结论不再计入"
    return {
        "rule": "judgement.lab_failed_passed", "dedup_key": f"{file.enterprise_id}:judgement.lab_failed_passed:{no}",
        "enterprise_id": file.enterprise_id,
        "note_zh": f"{why}，预警自动关闭",
        "note_en": f"sample {no}: the lab's failure no longer stands ({'corrected report' if d.get('corrected') else 'admitted re-test'}): closed",
        "evidence": {"event_ids": [eff.event_id], "sample_no": no},
    }


def disagreement_settled(file: "CreditFile", eff: "Effect", rules: "Rules") -> dict[str, Any] | None:
    """A ``warning.resolved`` effect's data for the 判定不一致 alert of a sample whose report no longer counts
    (``sampling.overturned``: an admitted re-test or a correction decided it): there is nothing left to check
    with the lab about the report it was raised on.  It stayed open beside a closed failure."""
    if not rules.policy.warnings.judgement_disagrees.enabled:
        return None
    d = eff.data
    no = d.get("sample_no", "")
    how = "更正后的报告" if d.get("corrected") else "复检结论"
    return {
        "rule": "judgement.disagrees", "dedup_key": f"{file.enterprise_id}:judgement.disagrees:{no}", "enterprise_id": file.enterprise_id,
        "note_zh": f"抽样编号 {no} 已以{how}为准，原报告的判定不一致无需再核对，预警自动关闭",
        "note_en": f"sample {no}: decided by its {'corrected report' if d.get('corrected') else 're-test'}; the disagreement is moot: closed",
        "evidence": {"event_ids": [eff.event_id], "sample_no": no},
    }


RETRACTION_CLOSES = {
    "sampling.unqualified": ("sampling_unqualified", "抽检不合格"),
    "judgement.disagrees": ("judgement_disagrees", "判定与检验机构结论不一致"),
    "judgement.lab_failed_unjudged": ("lab_failed_unjudged", "检验机构判定不合格、系统无法判定"),
    "judgement.lab_failed_passed": ("lab_failed_passed", "检验机构判定不合格、系统复核为合格或不适用"),
    "retest.inadmissible": ("retest_inadmissible", "复检结果不予采信"),
}
"""The alerts of one sample a retraction closes: rule id -> (the policy's ``warnings`` field, its title).  Keyed by
enterprise and sample number, as ``_sampling_key`` is (a near-limit alert is the enterprise's, by additive group:
it stays)."""


def retracted_resolved(file: "CreditFile", eff: "Effect", rules: "Rules") -> list[dict[str, Any]]:
    """``warning.resolved`` effects' data for the alerts a retracted sample raised (``sampling.retracted``: the bureau
    took the reports of the sample number off this enterprise's file, filed under it by mistake): they close, quoting
    who retracted it and why.  ``eff.data["rules"]``: the rules the retracted reports could have raised; an alert
    never opened (or closed already) is left alone by the alerts stage."""
    d = eff.data
    no = d.get("sample_no", "")
    out = []
    for rule_id in d.get("rules", ()):
        field, title = RETRACTION_CLOSES[rule_id]
        rule = getattr(rules.policy.warnings, field, None)
        if rule is None or not rule.enabled:
            continue
        out.append({
            "rule": rule_id, "dedup_key": f"{file.enterprise_id}:{'sampling.failed' if rule_id == 'sampling.unqualified' else rule_id}:{no}",
            "enterprise_id": file.enterprise_id,
            "note_zh": (f"抽样编号 {no} 在本企业名下的报告已由{d.get('by', '监管部门')}撤销（原因：{d.get('reason', '')}；撤销事件 {eff.event_id}），"
                        f"“{title}”预警所依据的报告不再计入，预警自动关闭；如该样品属于另一企业，请在该企业名下核查处置"),
            "note_en": f"sample {no}: its reports on this enterprise's file were retracted by {d.get('by', 'the bureau')} ({d.get('reason', '')}): closed",
            "evidence": {"event_ids": [eff.event_id, *d.get("reports", ())], "sample_no": no, "retracted": True, "reason": d.get("reason")},
        })
    reports = set(d.get("reports", ()))
    out += _signals_of(file, reports, rules, eff.event_id, no,
                       (f"抽样编号 {no} 在本企业名下的报告已由{d.get('by', '监管部门')}撤销（原因：{d.get('reason', '')}），"
                        "“质量波动”预警所依据的检验结果不再计入，预警自动关闭"),
                       f"sample {no}: the reports behind this fluctuation signal were retracted: closed", {"retracted": True})
    return out


def corrected_resolved(file: "CreditFile", eff: "Effect", rules: "Rules") -> list[dict[str, Any]]:
    """``warning.resolved`` effects' data for the fluctuation alerts only a corrected report raised (``sampling.corrected``
    that counts: the lab replaced a value, 0.5 for 0.005): its points are gone from the rebuilt series, so an alert
    resting on them alone closes; the corrected values signal anew if they still lie out."""
    d = eff.data
    if not d.get("counts") or not d.get("corrects_event_id"):
        return []
    no = d.get("sample_no", "")
    return _signals_of(file, {d["corrects_event_id"]}, rules, eff.event_id, no,
                       f"抽样编号 {no} 的检验报告已更正（更正报告事件 {eff.event_id}），“质量波动”预警所依据的原检验结果不再计入，预警自动关闭",
                       f"sample {no}: the report behind this fluctuation signal was corrected: closed", {"corrected": True})


def _signals_of(file: "CreditFile", reports: set[str], rules: "Rules", event_id: str, no: str, note_zh: str, note_en: str,
                mark: dict[str, Any]) -> list[dict[str, Any]]:
    """The fluctuation alerts of this file raised by ``reports`` alone (the county's category charts are not this file's)."""
    if not reports or not rules.policy.warnings.fluctuation.enabled:
        return []
    raised: dict[str, set[str]] = {}
    for w in file.warnings:
        if w.rule == "fluctuation.signal" and not w.dedup_key.startswith("county:"):
            raised.setdefault(w.dedup_key, set()).update(w.evidence.get("event_ids", ()))
    return [{"rule": "fluctuation.signal", "dedup_key": key, "enterprise_id": file.enterprise_id, "note_zh": note_zh, "note_en": note_en,
             "evidence": {"event_ids": [event_id, *sorted(ids)], "sample_no": no, **mark}}
            for key, ids in raised.items() if ids and ids <= reports]


def overdue_withdrawn_resolved(file: "CreditFile", eff: "Effect", rules: "Rules") -> dict[str, Any] | None:
    """A ``warning.resolved`` effect's data for a rectification found done in time after it was marked
    overdue (``rectification.overdue_withdrawn``: its completion, dated before the deadline, arrived after
    the clock had passed it): the overdue alert closes, saying so."""
    if not rules.policy.warnings.rectification_overdue.enabled:
        return None
    d = eff.data
    rid = d.get("rectification_id", "")
    return {
        "rule": "rectification.overdue", "dedup_key": f"{file.enterprise_id}:rectification.overdue:{rid}",
        "enterprise_id": file.enterprise_id,
        "note_zh": f"{d.get('message_zh', '')}，预警自动关闭",
        "note_en": (f"rectification {rid} was completed on {d.get('completed_on')}, within its deadline {d.get('deadline')} "
                    "(its record arrived after the deadline): the overdue mark is withdrawn, closed") if not d.get("corrected_to") else
                   f"rectification {rid}: its deadline {d.get('deadline')} was corrected to {d['corrected_to']}, which it is not late by: "
                   "the overdue mark is withdrawn, closed",
        "evidence": {"event_ids": [eff.event_id], "rectification_id": rid, "deadline": d.get("deadline"), "completed_on": d.get("completed_on")},
    }


def _latest(file: "CreditFile", *rules_: str) -> dict[str, AlertDecision]:
    """The newest decision of each alert (by its dedup key) the file remembers, of these rules."""
    return {d.dedup_key: d for d in file.warnings if d.rule in rules_}


def complaint_unfounded_resolved(file: "CreditFile", eff: "Effect", rules: "Rules") -> list[dict[str, Any]]:
    """``warning.resolved`` effects' data for the alerts a complaint found 不属实 after it was verified
    (``complaint.unverified``) leaves without ground: its 食用后不适 alert, and a 投诉聚集 alert left with fewer
    verified complaints than it needs.  Open, they went on saying 经核实属实 of what the record now denies."""
    cid = eff.data.get("complaint_id", "")
    record = file.complaint(cid)
    on = (record.resolved_at + in_hours(rules.policy.utc_offset_hours)).date().isoformat() \
        if record is not None and record.resolved_at is not None else ""
    found = f"经核查，投诉编号 {cid} 不属实" + (f"（{on} 办结）" if on else "")
    illness_zh, why_en = "食用后不适投诉预警所依据的事实不成立", "was found unfounded"
    if eff.kind == "complaint.withdrawn":  # (the bureau withdrew it: filed under the wrong enterprise, or twice)
        found = f"投诉编号 {cid} 已由{eff.data.get('by', '监管部门')}撤回（原因：{mask_personal_info(eff.data.get('reason', ''))}）"
        illness_zh, why_en = "食用后不适投诉预警所依据的投诉不再计入", "was withdrawn"
    recategorised = eff.kind == "complaint.repeated"
    # (its category corrected: each alert closes only if the corrected category no longer makes it — the complaints
    # still counted are those of the categories the rule counts)
    counted = {"complaint.cluster": rules.policy.complaint_cluster.categories, "complaint.burst": rules.policy.complaint_burst.categories}
    if recategorised:
        was, now = eff.data.get("previous_category", ""), eff.data.get("category", "")
        found = f"投诉编号 {cid} 的类别已由{COMPLAINT_ZH.get(was, was)}更正为{COMPLAINT_ZH.get(now, now)}"
        illness_zh, why_en = "不再属于食用后不适投诉", f"was recategorised as {now}"
    out: list[dict[str, Any]] = []
    for key, d in _latest(file, "complaint.illness", "complaint.hazard", "complaint.cluster", "complaint.burst").items():
        if recategorised and (d.rule == "complaint.illness" and (record is None or _tells_illness(record, rules))
                              or d.rule == "complaint.hazard" and (record is None or _tells_hazard(record, rules))
                              or d.rule in counted and cid not in d.evidence.get("complaint_ids", [])):
            continue
        if recategorised and d.rule in counted:
            still = [c for c in d.evidence.get("complaint_ids", []) if (r := file.complaint(c)) is not None and r.category in counted[d.rule]
                     and (r.verified or (d.rule == "complaint.burst" and r.resolved_at is None))]
            k = int(d.evidence.get("k") or 0)
            if len(still) < k:
                what = ("经核实属实的投诉", "投诉聚集") if d.rule == "complaint.cluster" else ("收到的质量投诉中计入且未经核查否定的", "投诉集中")
                out.append({"rule": d.rule, "dedup_key": key, "enterprise_id": file.enterprise_id,
                            "note_zh": f"{found}，{d.evidence.get('window_days')} 天内{what[0]}剩 {len(still)} 件，不足 {k} 件，{what[1]}预警自动关闭",
                            "note_en": f"complaint {cid} {why_en}: {len(still)} complaints of its kind remain, fewer than {k}; closed",
                            "evidence": {"event_ids": [eff.event_id], "complaint_id": cid, "complaint_ids": still, "k": k}})
            continue
        if d.rule == "complaint.illness" and d.evidence.get("complaint_id") == cid:
            out.append({"rule": d.rule, "dedup_key": key, "enterprise_id": file.enterprise_id,
                        "note_zh": f"{found}，{illness_zh}，预警自动关闭",
                        "note_en": f"complaint {cid} {why_en}: the illness complaint alert has no ground; closed",
                        "evidence": {"event_ids": [eff.event_id], "complaint_id": cid}})
        elif d.rule == "complaint.hazard" and d.evidence.get("complaint_id") == cid:
            said = COMPLAINT_ZH.get(d.evidence.get("category", ""), "")
            hazard_zh = (f"{said}投诉预警所依据的投诉不再计入" if eff.kind == "complaint.withdrawn"
                         else f"不再属于{said}投诉" if recategorised else f"{said}投诉预警所依据的事实不成立")
            out.append({"rule": d.rule, "dedup_key": key, "enterprise_id": file.enterprise_id,
                        "note_zh": f"{found}，{hazard_zh}，预警自动关闭",
                        "note_en": f"complaint {cid} {why_en}: the {d.evidence.get('category', '')} complaint alert has no ground; closed",
                        "evidence": {"event_ids": [eff.event_id], "complaint_id": cid}})
        elif d.rule == "complaint.cluster" and cid in d.evidence.get("complaint_ids", []):
            k = int(d.evidence.get("k") or 0)
            still = [c for c in d.evidence.get("complaint_ids", []) if (r := file.complaint(c)) is not None and r.verified]
            if len(still) < k:
                out.append({"rule": d.rule, "dedup_key": key, "enterprise_id": file.enterprise_id,
                            "note_zh": f"{found}，{d.evidence.get('window_days')} 天内经核实属实的投诉剩 {len(still)} 件，不足 {k} 件，"
                                       "投诉聚集预警自动关闭",
                            "note_en": f"complaint {cid} {why_en}: {len(still)} verified complaints remain, fewer than {k}; closed",
                            "evidence": {"event_ids": [eff.event_id], "complaint_id": cid, "complaint_ids": still, "k": k}})
        elif d.rule == "complaint.burst" and cid in d.evidence.get("complaint_ids", []):
            k = int(d.evidence.get("k") or 0)
            # (still standing: not yet concluded, or verified)
            still = [c for c in d.evidence.get("complaint_ids", []) if (r := file.complaint(c)) is not None
                     and (r.verified or r.resolved_at is None)]
            if len(still) < k:
                out.append({"rule": d.rule, "dedup_key": key, "enterprise_id": file.enterprise_id,
                            "note_zh": f"{found}，{d.evidence.get('window_days')} 天内收到的投诉中计入且未经核查否定的剩 {len(still)} 件，不足 {k} 件，"
                                       "投诉集中预警自动关闭",
                            "note_en": f"complaint {cid} {why_en}: {len(still)} complaints of the burst stand, fewer than {k}; closed",
                            "evidence": {"event_ids": [eff.event_id], "complaint_id": cid, "complaint_ids": still, "k": k}})
    return out


def enforcement_revoked_resolved(file: "CreditFile", eff: "Effect", rules: "Rules") -> list[dict[str, Any]]:
    """A ``warning.resolved`` effect's data for the alert of a penalty decision since revoked (``enforcement.revoked``)."""
    d = eff.data
    key = f"{file.enterprise_id}:enforcement.decided:{d.get('decision_no', '')}"
    if key not in _latest(file, "enforcement.decided"):
        return []
    return [{"rule": "enforcement.decided", "dedup_key": key, "enterprise_id": file.enterprise_id,
             "note_zh": f"{d.get('message_zh', '')}，预警自动关闭",
             "note_en": f"decision {d.get('decision_no')} was revoked ({d.get('revoked_by')}, {d.get('reference_no')}): closed",
             "evidence": {"event_ids": [eff.event_id], "decision_no": d.get("decision_no"), "reference_no": d.get("reference_no"),
                          "revoked_on": d.get("revoked_on")}}]


def grade_fell_resolved(file: "CreditFile", event: "Envelope", graded: "GradeEntry", rules: "Rules") -> list[dict[str, Any]]:
    """``warning.resolved`` effects' data for 风险等级上升 alerts whose grade the enterprise is no longer at: the
    grade fell below it (a failure overturned, a complaint found 不属实, an entry out of its window).  Open, an
    alert announcing 升至 C kept asking for C's inspections of a B enterprise."""
    out: list[dict[str, Any]] = []
    for key, d in _latest(file, "risk.grade_worsened").items():
        to = d.evidence.get("to")
        if isinstance(to, str) and to > graded.grade:
            out.append({"rule": d.rule, "dedup_key": key, "enterprise_id": file.enterprise_id,
                        "note_zh": f"风险等级已由 {graded.previous} 降至 {graded.grade}（风险分 {graded.score:g}），"
                                   f"本预警所报“升至 {to} 级”不再成立，预警自动关闭",
                        "note_en": f"the grade fell from {graded.previous} to {graded.grade} (score {graded.score:g}): "
                                   f"the rise to {to} no longer stands; closed",
                        "evidence": {"event_ids": [event_key(event)], "from": graded.previous, "to": graded.grade,
                                     "score": graded.score, "announced": to}})
    return out


# What identifies the product on the market: the batch is what a supervisor seals, takes off the shelves or
# recalls (控制措施), so it comes first.  As the lab's record names them (抽检公告: 生产日期/批号, 商标, 规格型号).
_LOT_ZH = {"batch": "批号", "production_date": "生产日期", "brand": "商标", "spec": "规格型号"}
_LOT_EN = {"batch": "batch", "production_date": "made", "brand": "brand", "spec": "spec"}


def _sentence(text: str) -> str:
    """``text`` ending as a sentence, so that what a template puts after it (the next step) reads apart."""
    return text if not text or text.endswith(("。", "！", "？")) else text + "。"


def _lot(record: Any) -> dict[str, str]:
    """The sample's batch, production date, brand and spec, those the record has.  (brand and spec are
    read when the credit file keeps them: ``SampleRecord`` holds batch and production date.)"""
    out: dict[str, str] = {}
    for key in _LOT_ZH:
        value = getattr(record, key, None) if record is not None else None
        if value:
            out[key] = value.isoformat() if isinstance(value, dt.date) else str(value)
    return out


def _fluctuation(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    rule = rules.policy.warnings.fluctuation
    if not rule.enabled:
        return None
    d = eff.data
    if d.get("series") and d.get("scope") != "category" and failure_says_it(file, d, eff.event_id):
        return None  # the failure's own alert says it (and the chart shows the point)
    fired = {s.get("rule") for s in d.get("signals", [])} | {d.get("rule")}
    severity = rule.severity_near_limit if fired & _NEAR_LIMIT else rule.severity
    if d.get("note"):
        severity = "low"  # a detection after a run of non-detects, below any limit: worth a look, no more
    chart, scope = d.get("chart", ""), d.get("scope", "")
    key = _fluctuation_key(file.enterprise_id, d)
    where = f"（抽样编号 {d['sample_no']}，{d.get('sampled_on', '')}）" if d.get("sample_no") else ""
    text, name = d.get("text_zh", ""), None
    if scope == "category":
        # the county's pass rate for a category: about the county, not the enterprise whose sample tipped it
        name = f"本县{CATEGORY_ZH.get(d.get('category'), d.get('category'))}类"
        text = text.removeprefix(f"{name} ")
        # the enterprise is the evidence (whose sample tipped the chart), not the subject: said as such
        tipped = file.profile.name if file.profile else file.enterprise_id
        where = f"（由 {tipped}（{file.enterprise_id}）的抽检触发：{where[1:-1]}）" if where else ""
    fields = {"text": text, "where": where, "chart": chart, "series": d.get("series") or d.get("period") or ""}
    evidence: dict[str, Any] = {"event_ids": [eff.event_id], "chart": chart, "scope": scope, "rules": sorted(r for r in fired if r),
                                "value": d.get("value"), "center": d.get("center"), "lcl": d.get("lcl"), "ucl": d.get("ucl")}
    if d.get("rests_on_event_ids"):
        # a baseline point said when a later batch froze the limits: the alert rests on that point's report (a
        # correction or retraction of it closes the alert), the later report only carried it
        evidence["event_ids"] = list(d["rests_on_event_ids"])
        evidence["carried_by_event_id"] = eff.event_id
    for k in ("series", "period", "sample_no", "item_code", "usl", "batch_value", "n", "failed", "p_at_least", "complaint_ids", "complaints"):
        if d.get(k) is not None:
            evidence[k] = d[k]
    if scope == "category":
        evidence["category"] = d.get("category")
        # who tipped it: the alerts stage names it as the trigger, and the alert stays in that enterprise's book
        # (its events carry the alert's steps to the worker holding it), while the text is about the county
        evidence["triggered_by"] = {"enterprise_id": file.enterprise_id, "name": file.profile.name if file.profile else file.enterprise_id,
                                    "town": file.profile.town if file.profile else None}
    # the chart itself (points, limits, Pareto, nearby events) is in the fluctuation.signal effect of the same event
    return _decision("fluctuation.signal", rule, severity, file, eff.occurred_at, eff.event_id, key, fields, evidence, rules, name=name)


def _fluctuation_key(enterprise_id: str, d: dict[str, Any]) -> str:
    """A chart signal's dedup key: the series, or the chart and its period (the county's, for a category)."""
    chart, scope = d.get("chart", ""), d.get("scope", "")
    if scope == "series":
        return f"{enterprise_id}:fluctuation:{d.get('series')}"
    if scope == "category":
        return f"county:{d.get('category')}:fluctuation:{chart}:{d.get('period')}"
    return f"{enterprise_id}:fluctuation:{chart}:{d.get('period')}"


WITHDRAWN_KIND = "fluctuation.signal_withdrawn"
"""The fold withdrew a chart signal: every complaint of the month the complaint chart signalled on was found unfounded, or
a re-test, a correction or a retraction left the pass-rate chart's period within its limits — the enterprise's, or the
county's chart of a category (its dedup key is the county's: the alert closes whichever enterprise's file holds it)."""


def withdrawn_resolved(enterprise_id: str, d: dict[str, Any], event_id: str, policy: "Policy") -> dict[str, Any] | None:
    """A ``warning.resolved`` effect's data for a withdrawn signal (``processors.fluctuation.complaints_unfounded``):
    the dedup key of the alert the signal opened, and a note saying why it closes.  The signal rested on
    nothing, so its alert must neither stay open nor escalate.  The alerts stage calls this on the
    ``fluctuation.signal_withdrawn`` effect itself, so the embedded runtime and the Kafka workers (which
    hand the alerts stage every effect of ``step()``) close it alike; should the fold one day emit the
    ``warning.resolved`` itself, the second resolution of the same key finds nothing open and changes nothing."""
    if not policy.warnings.fluctuation.enabled:
        return None
    if d.get("chart") == "p":
        return {
            "rule": "fluctuation.signal", "dedup_key": _fluctuation_key(enterprise_id, d), "enterprise_id": enterprise_id,
            "note_zh": f"{d.get('text_zh', '抽检不合格率信号撤销')}，预警自动关闭",
            "note_en": f"{d.get('text_en', 'the pass-rate signal is withdrawn')}; closed",
            "evidence": {"event_ids": [event_id], "chart": "p", "period": d.get("period"), "n": d.get("n"), "failed": d.get("failed"),
                         "sample_no": d.get("sample_no"),
                         # the county's chart of a category: the alert is the county's, whichever file's sample went
                         **({"scope": "category", "category": d.get("category"), "enterprise_id": enterprise_id}
                            if d.get("scope") == "category" else {})},
        }
    ids = [c for c in d.get("complaint_ids") or [] if c]
    month = period_zh(d["period"]) if d.get("period") else "该月"
    listed = f"（投诉编号 {'、'.join(ids[:10])}{'等' if len(ids) > 10 else ''}）" if ids else ""
    if d.get("withdrawn_complaint") or d.get("corrected_complaint"):
        # (a complaint withdrawn — filed under the wrong enterprise, or twice — or recategorised left the month under the limit)
        return {
            "rule": "fluctuation.signal", "dedup_key": _fluctuation_key(enterprise_id, d), "enterprise_id": enterprise_id,
            "note_zh": f"{d.get('text_zh', '')}：该月投诉数信号不再计入风险分，预警自动关闭",
            "note_en": f"{d.get('text_en', '')}: the complaint chart's signal is withdrawn; closed",
            "evidence": {"event_ids": [event_id], "chart": d.get("chart"), "period": d.get("period"), "complaint_ids": ids,
                         **{k: d[k] for k in ("withdrawn_complaint", "corrected_complaint") if d.get(k)}},
        }
    return {
        "rule": "fluctuation.signal", "dedup_key": _fluctuation_key(enterprise_id, d), "enterprise_id": enterprise_id,
        "note_zh": f"经核查投诉均不属实，信号撤销：{month}投诉 {len(ids)} 件{listed}均不属实，该月投诉数信号不再计入风险分，预警自动关闭",
        "note_en": f"all {len(ids)} complaints of {d.get('period', 'the month')} were found unfounded: the complaint chart's signal is withdrawn; closed",
        "evidence": {"event_ids": [event_id], "chart": d.get("chart"), "period": d.get("period"), "complaint_ids": ids},
    }


def _cluster(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    rule = rules.policy.warnings.complaint_cluster
    if not rule.enabled:
        return None
    d = eff.data
    ids = d.get("complaint_ids", [])
    records = [c for c in (file.complaint(cid) for cid in ids) if c is not None]
    first = min((c.received_at for c in records), default=eff.occurred_at)
    first_day = (first + in_hours(rules.policy.utc_offset_hours)).date().isoformat()
    fields = {"count": len(ids), "k": d.get("k"), "window_days": d.get("window_days"), "first_day": first_day}
    evidence = {"event_ids": [c.event_id for c in records] + ([eff.event_id] if eff.event_id not in {c.event_id for c in records} else []),
                "complaint_ids": ids, "count": len(ids), "k": d.get("k"), "window_days": d.get("window_days"), "first_day": first_day}
    return _duplicates_said(_decision("complaint.cluster", rule, rule.severity, file, eff.occurred_at, eff.event_id,
                                      _ongoing_key(file, "complaint.cluster", ids) or f"{file.enterprise_id}:complaint.cluster:{first_day}",
                                      fields, evidence, rules), records, rules)


def possible_duplicates(records: list[Any], rules: "Rules") -> list[dict[str, Any]]:
    """The complaints among ``records`` likely registered twice (the same words through two channels, under two numbers;
    ``schemas.duplicates``, the notion the door warns the sender by): each with the earliest received it repeats."""
    rule = rules.policy.complaint_duplicates
    ordered = sorted(records, key=lambda c: c.received_at)  # (stable: at equal times, as listed)
    times = [c.received_at for c in ordered]
    within = in_days(rule.within_days)
    out: list[dict[str, Any]] = []
    for i, c in enumerate(ordered):
        # (only those received within_days before it can be its duplicate: a cluster's 30 days hold ~4 such spans)
        for earlier in ordered[bisect.bisect_left(times, c.received_at - within, 0, i):i]:
            alike = duplicate_similarity(c.text, c.received_at, earlier.text, earlier.received_at, rule)
            if alike is not None:
                out.append({"complaint_id": c.complaint_id, "duplicate_of": earlier.complaint_id, "similarity": round(alike, 3)})
                break
    return out


def _duplicates_said(decision: AlertDecision, records: list[Any], rules: "Rules") -> AlertDecision:
    """A 投诉集中 or 投诉聚集 counting one complaint twice says which (its count stays: only the bureau can tell it is one
    complaint, and withdraws the repeat — complaint.withdrawn).  Said before the template's 下一步, which stays last."""
    pairs = possible_duplicates(records, rules)
    if not pairs:
        return decision
    zh = "、".join(f"{p['complaint_id']} 与 {p['duplicate_of']} 内容"
                   + ("相同" if p["similarity"] == 1.0 else f"几乎相同（相似度 {p['similarity']:.0%}）") for p in pairs)
    en = "; ".join(f"{p['complaint_id']} has " + ("the same text as " if p["similarity"] == 1.0 else f"nearly ({p['similarity']:.0%}) the text of ")
                   + p["duplicate_of"] for p in pairs)
    said = f"其中 {zh}（可能为同一投诉经两个渠道登记），核实后可撤回重复登记。"
    message = decision.message_zh
    at = message.find("下一步：")
    message = message[:at] + said + message[at:] if at >= 0 else message.rstrip() + ("" if message.rstrip().endswith("。") else "。") + said
    return decision.model_copy(update={
        "message_zh": message,
        "message_en": f"{decision.message_en} Of these, {en} (perhaps one complaint registered through two channels): once checked, "
                      "the repeat may be withdrawn.",
        "evidence": {**decision.evidence, "possible_duplicates": pairs}})


def withdrawn_recounted(file: "CreditFile", eff: "Effect", rules: "Rules") -> list[AlertDecision]:
    """A 投诉集中 or 投诉聚集 naming a complaint the bureau withdrew (registered twice, or under the wrong enterprise) that
    still has k complaints without it: decided again under its key from the rest — left as it was, it kept counting the
    withdrawn one and saying 其中 K2 与 K1 内容相同 after the bureau had settled that.  The alerts stage puts the new count and
    message on the alert with a step saying why, no new occurrence (``alerts.lifecycle``: 投诉更正); one with fewer than
    k left closes (``complaint_unfounded_resolved``)."""
    cid = eff.data.get("complaint_id", "")
    counted = {"complaint.cluster": rules.policy.complaint_cluster.categories, "complaint.burst": rules.policy.complaint_burst.categories}
    out: list[AlertDecision] = []
    for key, d in _latest(file, "complaint.cluster", "complaint.burst").items():
        ids = d.evidence.get("complaint_ids") or []
        if cid not in ids:
            continue
        still = [c for c in ids if (r := file.complaint(c)) is not None and r.category in counted[d.rule]
                 and (r.verified or (d.rule == "complaint.burst" and r.resolved_at is None))]
        k = int(d.evidence.get("k") or 0)
        if len(still) < k:
            continue
        as_if = eff.model_copy(update={"kind": d.rule, "data": {"complaint_ids": still, "window_days": d.evidence.get("window_days"), "k": k}})
        decision = (_cluster if d.rule == "complaint.cluster" else _burst)(file, as_if, rules)
        if decision is None:
            continue
        dup = (f"，与投诉编号 {eff.data['duplicate_of']} 重复"
               if eff.data.get("duplicate_of") and eff.data["duplicate_of"] not in eff.data.get("reason", "") else "")
        said = (f"投诉编号 {cid} 已由{eff.data.get('by', '监管部门')}撤回（原因：{eff.data.get('reason', '')}{dup}），"
                f"按其余 {len(still)} 件重新计算")
        out.append(decision.model_copy(update={"dedup_key": key, "evidence": {
            **decision.evidence, "corrected_from": eff.data.get("complaint_event_id") or eff.event_id, "correction_zh": said,
            "correction_of": "complaint", "withdrawn_complaint": cid}}))
    return out


def _ongoing_key(file: "CreditFile", rule: str, ids: list[str]) -> str | None:
    """The dedup key of the alert a run of complaints already has: the newest of ``rule``'s decisions sharing a complaint
    with ``ids``.  A cluster rolls on (03-01, 03-10, 03-20, 04-05 …): keyed by its window's first day, each complaint
    verified opened another high alert about the same complaints; kept on one key, the alert is raised again with the
    new count, and once closed the same key opens a new one."""
    wanted = set(ids)
    for d in reversed(file.warnings):
        if d.rule == rule and wanted & set(d.evidence.get("complaint_ids") or ()):
            return d.dedup_key
    return None


def in_burst(file: "CreditFile", cid: str) -> bool:
    """Whether a 投诉集中 alert the file remembers names the complaint."""
    return any(d.rule == "complaint.burst" and cid in (d.evidence.get("complaint_ids") or ()) for d in file.warnings)


def _burst(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    """快速反应: complaints close together, verified or not yet — named one by one (number, day, category, product), so the
    desk sees at once whether they are about one product, and the supervisor which batch to look for."""
    rule = rules.policy.warnings.complaint_burst
    if not rule.enabled:
        return None
    d = eff.data
    ids = d.get("complaint_ids", [])
    records = [c for c in (file.complaint(cid) for cid in ids) if c is not None]
    if not records:
        return None
    local = lambda c: (c.received_at + in_hours(rules.policy.utc_offset_hours)).date().isoformat()  # noqa: E731
    listed = [{"complaint_id": c.complaint_id, "received_on": local(c), "category": c.category,
               "category_zh": COMPLAINT_ZH.get(c.category, c.category), "product": c.product, "verified": c.verified} for c in records]
    verified = sum(1 for c in records if c.verified)
    products = list(dict.fromkeys(c.product for c in records if c.product))
    fields = {"count": len(records), "k": d.get("k"), "window_days": d.get("window_days"), "first_day": listed[0]["received_on"],
              "last_day": listed[-1]["received_on"], "verified": verified, "products": "、".join(products) or "未写明产品",
              "verified_zh": f"其中 {verified} 件已核实属实、{len(records) - verified} 件尚未核实" if verified else "均尚未核实",
              # (the message names ten; the evidence every one)
              "complaints": "；".join(f"{c['complaint_id']}（{c['received_on']}，{c['category_zh']}，{c['product'] or '未写明产品'}）"
                                     for c in listed[:10]) + (f"；等共 {len(listed)} 件" if len(listed) > 10 else ""),
              "complaints_en": "; ".join(f"{c['complaint_id']} ({c['received_on']}, {c['category']}, {c['product'] or 'no product named'})"
                                         for c in listed[:10]) + (f"; {len(listed)} in all" if len(listed) > 10 else "")}
    evidence = {"event_ids": [c.event_id for c in records] + ([eff.event_id] if eff.event_id not in {c.event_id for c in records} else []),
                "complaint_ids": [c.complaint_id for c in records], "complaints": listed, "products": products, "count": len(records),
                "verified": verified, "k": d.get("k"), "window_days": d.get("window_days"), "first_day": fields["first_day"],
                "last_day": fields["last_day"]}
    key = _ongoing_key(file, "complaint.burst", evidence["complaint_ids"]) or f"{file.enterprise_id}:complaint.burst:{fields['first_day']}"
    return _duplicates_said(_decision("complaint.burst", rule, rule.severity, file, eff.occurred_at, eff.event_id, key, fields, evidence, rules),
                            records, rules)


CHANNEL_ZH = {"12315": "12315", "hotline": "热线", "online": "网络", "letter": "来信", "visit": "来访", "other": "其他"}
COMPLAINT_ZH = {"foreign_matter": "异物", "spoilage": "变质", "illness": "食用后不适", "labelling": "标签标识", "taste_odour": "异味",
                "hygiene": "卫生", "other": "其他"}


def _tells_illness(record: Any, rules: "Rules") -> bool:
    """Whether the illness rule takes the complaint for one of illness after eating, by its category or its words."""
    rule = rules.policy.warnings.complaint_illness
    return record.category in rule.categories or bool(_illness_words(record.text, rule.keywords))


def _tells_hazard(record: Any, rules: "Rules") -> bool:
    """Whether the hazard rule takes the complaint for one of its own: of a category it names, and not one of illness,
    which keeps the illness alert alone (``_verified``)."""
    return record.category in rules.policy.warnings.complaint_hazard.categories and not _tells_illness(record, rules)


def illness_reported(record: Any, rules: "Rules") -> bool:
    """Whether a complaint tells of illness after eating, by its category or its words, for the early warning
    on receipt (``complaint_illness.severity_unverified``)."""
    rule = rules.policy.warnings.complaint_illness
    return (rule.enabled and rule.severity_unverified is not None
            and (record.category in rule.categories or bool(_illness_words(record.text, rule.keywords))))


def _illness(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    """A verified complaint of a category the rule names (illness after eating): alerts on its own — and, not yet
    verified, when it comes in (``complaint.illness_reported``: 待核实, at ``severity_unverified``; the same alert
    is raised to ``severity`` once verified, and closes when it is found 不属实)."""
    rule = rules.policy.warnings.complaint_illness
    if not rule.enabled:
        return None
    cid = eff.data.get("complaint_id", "")
    record = file.complaint(cid)
    if record is None:
        return None
    words = _illness_words(record.text, rule.keywords)
    if eff.data.get("category") not in rule.categories and not words:
        return None
    pending = eff.kind == "complaint.illness_reported"
    if pending and rule.severity_unverified is None:
        return None
    # (its own closing full stop dropped: the template's “…”。 ends the sentence, “…不适。”。 read doubled; a
    # question or exclamation is the caller's words and stays)
    # the caller's words without the caller: the alert goes to group chats, webhooks and mail (processors.personal_info);
    # excerpt_chars 0 quotes nothing
    excerpt = (_excerpt(mask_personal_info(record.text), rule.excerpt_chars).rstrip("。.． ") if rule.excerpt_chars
               else "投诉内容未在预警中引用，见投诉记录")
    received_on = (record.received_at + in_hours(rules.policy.utc_offset_hours)).date().isoformat()
    product = record.product or "该企业产品"
    # one drinks water (食用饮用纯净水 read oddly), and a product named for it says so itself: 反映饮用纯净水后
    water = file.profile is not None and file.profile.category == "packaged_water"
    consumed = "" if product.startswith(("饮用", "食用")) else "饮用" if water else "食用"
    fields = {"complaint_id": cid, "channel": record.channel, "channel_zh": CHANNEL_ZH.get(record.channel, record.channel),
              "consumed_zh": consumed, "received_on": received_on, "product": product, "category": record.category,
              "category_zh": COMPLAINT_ZH.get(record.category, record.category), "excerpt": excerpt}
    ids = [record.event_id] + ([eff.event_id] if eff.event_id != record.event_id else [])
    evidence = {"event_ids": ids, "complaint_id": cid, "channel": record.channel, "category": record.category,
                "received_on": received_on, "product": record.product, "excerpt": excerpt, **({"illness_words": words} if words else {}),
                "verified": not pending}
    texts = (rule.unverified_title_zh, rule.unverified_template_zh, rule.unverified_template_en) if pending else None
    return _decision("complaint.illness", rule, rule.severity_unverified if pending else rule.severity, file, eff.occurred_at,  # type: ignore[arg-type]
                     eff.event_id, f"{file.enterprise_id}:complaint.illness:{cid}", fields, evidence, rules, texts=texts)


def _verified(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    """A complaint found 属实: its illness alert when it tells of illness, else its hazard alert (异物, 变质) — never
    both: the illness alert already asks to check the batch, and a second high alert about one complaint doubles the
    count the desk sees."""
    return _illness(file, eff, rules) or _hazard(file, eff, rules)


def _hazard(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    """One verified complaint of a category ``complaint_hazard`` names (异物, 霉变): glass in one bottle may be in the
    batch's other bottles, so it alerts on its own, not only as the third of a cluster.  Said from its category
    (反映饮用纯净水中有异物), never 身体不适: that is the illness rule's, which a caller's words of illness go to."""
    rule = rules.policy.warnings.complaint_hazard
    if not rule.enabled or eff.kind != "complaint.verified":
        return None
    cid = eff.data.get("complaint_id", "")
    record = file.complaint(cid)
    if record is None or record.category not in rule.categories:
        return None
    excerpt = (_excerpt(mask_personal_info(record.text), rule.excerpt_chars).rstrip("。.． ") if rule.excerpt_chars
               else "投诉内容未在预警中引用，见投诉记录")
    received_on = (record.received_at + in_hours(rules.policy.utc_offset_hours)).date().isoformat()
    fields = {"complaint_id": cid, "channel": record.channel, "channel_zh": CHANNEL_ZH.get(record.channel, record.channel),
              "received_on": received_on, "product": record.product or "该企业产品", "category": record.category,
              "category_zh": COMPLAINT_ZH.get(record.category, record.category), "excerpt": excerpt,
              "hazard_zh": HAZARD_ZH[record.category].format(product=record.product or "该企业产品"),
              "hazard_en": HAZARD_EN[record.category].format(product=record.product or "the enterprise's product")}
    ids = [record.event_id] + ([eff.event_id] if eff.event_id != record.event_id else [])
    evidence = {"event_ids": ids, "complaint_id": cid, "channel": record.channel, "category": record.category,
                "received_on": received_on, "product": record.product, "excerpt": excerpt, "verified": True}
    return _decision("complaint.hazard", rule, rule.severity, file, eff.occurred_at, eff.event_id,
                     f"{file.enterprise_id}:complaint.hazard:{cid}", fields, evidence, rules)


_NEGATIONS = ("无", "未", "没", "否认")
_CLAUSE_ENDS = "，,。；;！!？?\n"


def _negated(text: str, at: int) -> bool:
    """Whether the word at ``at`` is said not to have happened: 无/未/没/否认 within four characters before it in
    its clause (没有腹泻, 无明显腹泻, 未出现腹泻), 不 right before it, or so the head of a list it ends (未出现腹泻、呕吐)."""
    clause = max(text.rfind(c, 0, at) for c in _CLAUSE_ENDS) + 1
    # in a list (腹泻、呕吐) the negation before its head covers the rest of it
    window = text[clause:at] if text[at - 1:at] == "、" else text[max(clause, at - 4):at]
    return any(n in window for n in _NEGATIONS) or text[at - 1:at] == "不"


# a denial after the word, ending its clause: 腹泻没有，就是水有怪味 / 腹泻倒没有 / 呕吐也没有出现 — not 腹泻没好 (still ill)
_DENIED_AFTER = re.compile(r"(?:倒|也|都|还|是|就)?(?:没有|没|无|未)(?:出现|发生)?(?:[" + _CLAUSE_ENDS + r"]|$)")


# a number among the words (120) is the emergency call only when called or named as one: the verb right before it
# (打了120, 拨打 120, 叫了120, 呼叫120), 被 before it or what the ambulance does after it (120急救车, 120送到医院, 被120拉走了,
# 120来了把人接走) — an 打 further back is no call (一桶水打了折120元), nor a number followed by a unit (120元, 120毫升,
# 120瓶: money, a volume, a count), nor 1200元 or a phone number holding 120
_CALLED_BEFORE = re.compile(r"(?:拨打|拨了?|打了?|叫了?|呼叫|被)\s*$")
_CALLED_AFTER = re.compile(r"\s*(?:急救|救护|送|拉走|拉到|接走|来了|到了|车)")
_MEASURED = re.compile(r"\s*(?:多|余|来个)?\s*(?:元|块|毛|角|瓶|桶|箱|件|个|只|支|袋|包|盒|罐|听|杯|号|毫升|升|ml|mL|ML|l\b|L\b|克|g\b|斤"
                       r"|公斤|千克|kg|KG|次|天|日|月|年|分|秒|小时|岁|米|度|%|％|人|家|条|张|页|期|批|吨|块钱)")
# the number as callers say it (打一二零, 打幺二零), read as 120: three characters for three, the positions stay
_CHINESE_120 = re.compile(r"(?<![〇零一二三四五六七八九十百千万幺两])[一幺]二[零〇](?![〇零一二三四五六七八九十百千万幺两])")
# a word ending in 吐 is not vomiting when it goes on as 吐槽 (a grumble), 吐口水 / 吐痰 (spitting), 吐字, 吐苦水, 吐露
_NOT_VOMITING = ("槽", "口水", "痰", "字", "苦水", "露", "舌头")
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def _called(text: str, start: int, after: int) -> bool:
    if (start > 0 and text[start - 1].isdigit()) or (after < len(text) and text[after].isdigit()):
        return False
    if _MEASURED.match(text, after):
        return False
    return bool(_CALLED_BEFORE.search(text, max(0, start - 6), start)) or bool(_CALLED_AFTER.match(text, after))


def _illness_words(text: str, keywords: list[str]) -> list[str]:
    """The policy's illness words the text says, not negated (“未就医”, “没有腹泻”, “未出现腹泻、呕吐”, “腹泻没有”),
    nor spat out (“喝了一口就吐了出来” is the taste, not an illness), nor a grumble (“一直吐槽”); a number (120, 一二零)
    only as a call (``_called``)."""
    text = _CHINESE_120.sub("120", text.translate(_FULL_WIDTH_DIGITS))  # (one character for one: the positions stay)
    found = []
    for word in keywords:
        start = text.find(word)
        number = word.isdigit()
        while start >= 0:
            after = start + len(word)
            if (number and not _called(text, start, after)) or (word.endswith("吐") and text.startswith(_NOT_VOMITING, after)):
                start = text.find(word, start + 1)
                continue
            if not (_negated(text, start) or _DENIED_AFTER.match(text, after) or text.startswith("出来", after)):
                found.append(word)
                break
            start = text.find(word, start + 1)
    return found


def _excerpt(text: str, chars: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= chars else text[:chars] + "…"


def _yuan(amount: float) -> str:
    return f"{amount:.2f}".rstrip("0").rstrip(".")


PENALTY_EN = {"warning": "warning", "fine": "fine", "confiscation": "confiscation", "suspension": "suspension of production",
              "licence_revoked": "licence revoked", "other": "other penalty"}


_NOTE_YUAN = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)(万)?元")


def _note_amounts(note: str) -> list[float]:
    """The amounts in yuan a penalty's note states (3,780 元 / 3780元 / 5万元 / 1.5万元)."""
    digits = note.replace(",", "").replace("，", "").replace(" ", "")
    return [float(n) * (10_000 if wan else 1) for n, wan in _NOTE_YUAN.findall(digits)]


def penalties_text(penalties: list[Any]) -> tuple[str, str]:
    """A decision's penalties as a supervisor reads them: 警告；罚款 50000 元；没收 3780 元（没收违法生产经营的…）."""
    zh, en = [], []
    for p in penalties:
        money = f" {_yuan(p.amount_yuan)} 元" if p.amount_yuan is not None else ""
        label = PENALTY_ZH.get(p.kind, p.kind)
        if p.note and p.note.startswith(label[:2]):
            # the note says it as the decision does (没收违法所得, 没收违法生产经营的桶装水 210 桶, 罚款5万元): read
            # it so, with the amount unless it states it: after a short note, in brackets after a description
            stated = _note_amounts(p.note) if money else []
            if not money or any(abs(x - p.amount_yuan) < 0.005 for x in stated):
                zh.append(p.note)
            elif stated:  # the note and the recorded amount disagree: a supervisor must see both
                zh.append(f"{p.note}（记录金额 {_yuan(p.amount_yuan)} 元）")
            else:
                zh.append(p.note + money if len(p.note) <= 8 else f"{p.note}（{money.strip()}）")
        else:
            zh.append(label + money + (f"（{p.note}）" if p.note else ""))
        en.append(PENALTY_EN.get(p.kind, p.kind) + (f" of {_yuan(p.amount_yuan)} yuan" if p.amount_yuan is not None else ""))
    return "；".join(zh), "; ".join(en)


def _enforcement(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    rule = rules.policy.warnings.enforcement_decided
    if not rule.enabled:
        return None
    record = file.enforcement(eff.data["decision_no"])
    if record is None:
        return None
    kinds = [p.kind for p in record.penalties]
    severity = min((rule.severity_by_penalty.get(k, rule.severity) for k in kinds), key=_SEVERITY_RANK.__getitem__, default=rule.severity)
    if record.serious_dishonesty:
        severity = min(severity, rule.severity_serious_dishonesty, key=_SEVERITY_RANK.__getitem__)
    zh, en = penalties_text(record.penalties)
    fields = {"decision_no": record.decision_no, "decided_on": record.decided_on.isoformat(), "authority": record.authority or "",
              "violation": _excerpt(record.violation, rule.excerpt_chars).rstrip("。；;. "), "legal_basis": record.legal_basis, "penalties": zh, "penalties_en": en,
              "listing": "列入严重违法失信名单，风险等级直接定为 D 级。" if record.serious_dishonesty else "",
              "listing_en": " Listed as seriously dishonest (严重违法失信): risk grade D." if record.serious_dishonesty else ""}
    evidence = {"event_ids": [record.event_id], "decision_no": record.decision_no, "decided_on": record.decided_on.isoformat(),
                "penalties": [p.model_dump(mode="json", exclude_none=True) for p in record.penalties],
                "serious_dishonesty": record.serious_dishonesty, "sample_nos": record.sample_nos, "inspection_ids": record.inspection_ids}
    return _decision("enforcement.decided", rule, severity, file, eff.occurred_at, eff.event_id,
                     f"{file.enterprise_id}:enforcement.decided:{record.decision_no}", fields, evidence, rules)


def _overdue(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    rule = rules.policy.warnings.rectification_overdue
    if not rule.enabled:
        return None
    d = eff.data
    rid = d.get("rectification_id", "")
    record = file.rectification(rid)
    ids = [record.event_id] if record is not None and record.event_id else []
    zh, en = _moved_deadline(d.get("deadline", ""), d.get("moved_to"), bool(d.get("moved_estimate")))
    fields = {"rectification_id": rid, "what": d.get("what", ""), "deadline": zh, "days_overdue": d.get("days_overdue", "")}
    evidence = {"event_ids": ids + [eff.event_id], "rectification_id": rid, "deadline": d.get("deadline"), "days_overdue": d.get("days_overdue"),
                **_moved_evidence(d)}
    texts = (rule.title_zh, rule.redo_template_zh, rule.redo_template_en) if d.get("redo") else None  # (重新整改期限)
    return _decision("rectification.overdue", rule, rule.severity, file, eff.occurred_at, eff.event_id,
                     f"{file.enterprise_id}:rectification.overdue:{rid}", fields, evidence, rules, texts=texts,
                     fields_en={"deadline": en} if en != zh else None)


def _moved_deadline(deadline: str, moved_to: str | None, estimate: bool = False) -> tuple[str, str]:
    """A deadline as the Chinese and the English text say it: with the working day a holiday moved it to (民法典 第二百零三条),
    from which the days overdue count, and 估算 when that day rests on a year the calendar lacks."""
    if not moved_to or moved_to == deadline:
        return deadline, deadline
    if estimate:
        return (f"{deadline}（节假日顺延至 {moved_to}；{MOVED_ESTIMATE_ZH}）",
                f"{deadline} (a holiday: moved to {moved_to}; {MOVED_ESTIMATE_EN})")
    return f"{deadline}（节假日顺延至 {moved_to}）", f"{deadline} (a holiday: moved to {moved_to})"


def _moved_evidence(d: dict[str, Any]) -> dict[str, Any]:
    return {k: d[k] for k in ("moved_to", "moved_estimate") if d.get(k)}


def _inspection(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    rule = rules.policy.warnings.inspection_nonconforming
    if not rule.enabled:
        return None
    d = eff.data
    iid = d.get("inspection_id", "")
    record = file.inspection(iid)
    found = record.findings if record else []
    serious = [f for f in found if f.severity in ("major", "critical")]
    minor = [f for f in found if f.severity not in ("major", "critical")]
    severity = rule.severity_nonconforming if d.get("result") == "不符合" else rule.severity
    on = rules.local_date(record.occurred_at if record else eff.occurred_at).isoformat()
    inspector = record.inspector if record else ""
    fields = {"inspection_id": iid, "result": d.get("result", ""), "findings": _findings_zh(serious, minor),
              "inspected_on": on, "inspector": inspector,
              "inspected_zh": f"（{on}，{inspector}）" if inspector else f"（{on}）",
              "inspected_en": f" ({on}, {inspector})" if inspector else f" ({on})"}
    evidence = {"event_ids": [eff.event_id], "inspection_id": iid, "result": d.get("result"), "serious_findings": d.get("serious_findings", []),
                "minor_findings": [f.code for f in minor], "inspected_on": on, "inspector": inspector}
    return _decision("inspection.nonconforming", rule, severity, file, eff.occurred_at, eff.event_id,
                     f"{file.enterprise_id}:inspection:{iid}", fields, evidence, rules)


FINDINGS_SHOWN = 10
"""Findings an inspection alert lists by clause and text (serious ones first, then the 一般 ones); the rest are counted.
An inspection may carry 200 findings of 4000 characters each: listed whole, its notice would pass what a robot takes
(WeCom: 4096 bytes, alerts.receivers) and be cut before its 下一步."""
FINDING_CHARS = 40


def _findings_zh(serious: list[Any], minor: list[Any]) -> str:
    """What an inspection found, as its alert says it: the serious findings with their weight, then the 一般 ones.  A 不符合
    of 一般 findings alone lists those (问题：3.4 原料未离地存放（一般）。): the alert named no finding and the supervisor
    had to look the record up to know what to order put right."""
    def listed(fs: list[Any], shown: int, weight: bool) -> str:
        text = "；".join(f"{f.code} {_excerpt(f.description, FINDING_CHARS)}" + (f"（{_FINDING_ZH[f.severity]}）" if weight else "")
                        for f in fs[:shown])
        return text + (f"等共 {len(fs)} 项" if len(fs) > shown else "")

    if not serious:
        return f"问题：{listed(minor, FINDINGS_SHOWN, True)}。" if minor else ""
    text = listed(serious, FINDINGS_SHOWN, True)
    if minor:
        # (counted in their heading: a list cut short ends with 等)
        shown = max(FINDINGS_SHOWN - len(serious), 3)
        text += f"；另有一般问题 {len(minor)} 项：{listed(minor[:shown], shown, False)}" + ("等" if len(minor) > shown else "")
    return f"问题：{text}。"


_FINDING_ZH = {"minor": "一般", "major": "主要", "critical": "严重"}


def _rejected(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    rule = rules.policy.warnings.rectification_rejected
    if not rule.enabled:
        return None
    d = eff.data
    rid = d.get("rectification_id", "")
    due, deadline = d.get("due"), d.get("deadline")
    # a rejection that set a new deadline (重新限期): the redo is due by it, and the notice says so
    fields = {"rectification_id": rid, "note": _sentence(d.get("note") or ""),
              "due_zh": f"重新整改期限：{due}。" if due and due != deadline else ""}
    evidence = {"event_ids": [eff.event_id], "rectification_id": rid, "note": d.get("note"), "due": due}
    return _decision("rectification.rejected", rule, rule.severity, file, eff.occurred_at, eff.event_id,
                     f"{file.enterprise_id}:rectification.rejected:{rid}", fields, evidence, rules)


def _disagrees(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    rule = rules.policy.warnings.judgement_disagrees
    if not rule.enabled:
        return None
    d = eff.data
    codes = d.get("items", [])
    record = file.sample_by_event(d.get("sample_event_id", eff.event_id))
    j = record.judgement if record is not None else None
    if j is not None and j.unconfirmed and set(codes) <= set(j.failed_codes()):
        return None  # what qrisk alone fails the sample on: its 系统复核不合格 alert says it, with what to do (one finding, one alert)
    said_elsewhere = (j is not None and (rules.policy.warnings.lab_failed_passed.enabled if j.verdict != "fail"
                                         else rules.policy.warnings.sampling_unqualified.enabled))
    if said_elsewhere:
        # the lab's failures qrisk passes: the sample counts 不合格 and judgement.lab_failed_passed says them, high —
        # or, when qrisk fails the sample on another item, its 抽检不合格 alert lists them with both verdicts
        # (检验机构判定…不合格，系统复核为合格): a low alert beside it for the same item is one a supervisor closes by hand
        codes = [c for c in codes if c not in {i.item_code for i in j.lab_failures_passed()}]  # type: ignore[union-attr]
        if not codes:
            return None
    names: dict[str, str] = {}
    if record is not None and record.judgement is not None:
        # the message names the items as the report does (a code means nothing to a supervisor)
        names = {i.item_code: i.item_name or i.item_code for i in record.judgement.items}
        names.update({f"sum_of_ratios:{c.group}": f"{c.group_name}（{c.item_name or '比例之和'}）" for c in record.judgement.sum_checks})
    said = disagreements_zh(record.judgement, codes) if record is not None and record.judgement is not None else []
    fields = {"sample_no": d.get("sample_no", ""), "items": "、".join(said or [names.get(c, c) for c in codes]),
              "lab": record.lab if record is not None else ""}
    evidence = {"event_ids": [d.get("sample_event_id", eff.event_id)], "sample_no": d.get("sample_no"), "items": codes}
    return _decision("judgement.disagrees", rule, rule.severity, file, eff.occurred_at, eff.event_id,
                     f"{file.enterprise_id}:judgement.disagrees:{d.get('sample_no', '')}", fields, evidence, rules)


_ITEM_VERDICT_ZH = {"pass": "合格", "fail": "不合格", "undetermined": "无法判定", "not_applicable": "不适用", None: "未给出"}


def disagreements_zh(judgement: Any, codes: Any = None) -> list[str]:
    """Where the lab's verdict and qrisk's differ, by item name, each with both verdicts (the judgement keeps codes,
    ``sum_of_ratios:<group>`` for a sum the lab passed member by member); the alert and the credit report say it so."""
    items = {i.item_code: i for i in judgement.items}
    out = []
    for code in judgement.disagreements if codes is None else codes:
        if code.startswith("sum_of_ratios:"):
            check = next((c for c in judgement.sum_checks if c.group == code.partition(":")[2]), None)
            if check is not None:
                out.append(f"{check.item_name or check.group_name + '比例之和'}（检验报告各项均合格；"
                           f"系统按比例之和 {ratio_figure(check.total)} 判定{_ITEM_VERDICT_ZH.get(check.verdict, check.verdict)}）")
                continue
        item = items.get(code)
        if item is None:
            out.append(code)
            continue
        out.append(f"{item.item_name or code}（检验报告：{_ITEM_VERDICT_ZH.get(item.lab_verdict, item.lab_verdict)}；"
                   f"系统判定：{_ITEM_VERDICT_ZH.get(item.verdict, item.verdict)}）")
    return out


def _lab_failed_passed(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    """The lab's 不合格 on items qrisk passes or finds not applicable (``judgement.lab_failed_passed``): the sample
    counts 不合格 by the report's conclusion, which starts the follow-up; each item says qrisk's figure (value,
    limit, standard) to check the basis with the lab.  The sample's disagreement on these items is this alert.

    Said on the sample's 抽检不合格 alert instead (``failure_alert``: ``processors.step._on_failure_alert``) when the
    failure it was raised on stands and only qrisk's own failure of it went (a correction, a re-test): the alert the
    supervisor is handling carries on, its message saying why the sample still fails; a re-test upholding the failure
    (``confirms_event_id``) is noted on it, no new occurrence."""
    decision = _lab_failed_unjudged(file, eff, rules, kind="judgement.lab_failed_passed")
    d = eff.data
    if decision is None or not d.get("failure_alert") or not rules.policy.warnings.sampling_unqualified.enabled:
        return decision
    record = file.sample_by_event(d["sample_event_id"])
    j = record.judgement if record is not None else None
    # (shaped as the failure's evidence, whose alert this is: the items that fail it now, the lab's)
    failed = [{"item_code": i.item_code, "item_name": i.item_name, "item_class": failed_class(i), "values": list(i.values),
               "unit": i.unit, "limit": i.limit_text, "reason": i.reason, "standard": i.standard, "lab_verdict": "fail",
               "verdict": i.verdict} for i in (j.lab_failures_passed() if j is not None else [])]
    evidence = {**decision.evidence, "failed_items": [f["item_code"] for f in failed], "failed": failed, "lab_failure": True,
                **({"retest_of": d["confirms_event_id"]} if d.get("confirms_event_id") else {})}
    return decision.model_copy(update={
        "rule": "sampling.unqualified", "dedup_key": _sampling_key(file.enterprise_id, d.get("sample_no", "")), "evidence": evidence,
        "message_zh": d.get("carried_zh", "") + decision.message_zh, "message_en": d.get("carried_en", "") + decision.message_en})


def _lab_failed_unjudged(file: "CreditFile", eff: "Effect", rules: "Rules", why: tuple[str, str] | None = None,
                         kind: str = "judgement.lab_failed_unjudged") -> AlertDecision | None:
    """The lab's 不合格 on items qrisk cannot judge (``judgement.lab_failed_unjudged``): the sample counts as
    undetermined, but the lab's unqualified conclusion starts the follow-up (核查处置) whether or not qrisk can
    judge it again, so it alerts (high by default: as an unqualified sample, which qrisk cannot classify)."""
    rule = rules.policy.warnings.lab_failed_passed if kind == "judgement.lab_failed_passed" else rules.policy.warnings.lab_failed_unjudged
    if not rule.enabled:
        return None
    d = eff.data
    items = d.get("items", [])
    fields = {"sample_no": d.get("sample_no", ""), "product": d.get("product", ""), "sampled_on": d.get("sampled_on", ""),
              "items": "、".join(i.get("item_name") or i.get("item_code", "") for i in items),
              "lab": d.get("lab", ""), "task_source": d.get("task_source", ""),
              # why qrisk cannot judge each: the item's own sentence names the item, the numbers and what to check
              "why": why[0] if why else "；".join(i.get("message_zh", "") for i in items),
              "why_en": why[1] if why else "; ".join(i.get("message_en", "") for i in items)}
    evidence = {"event_ids": [d.get("sample_event_id", eff.event_id)], "sample_no": d.get("sample_no"), "sampled_on": d.get("sampled_on"),
                "product": d.get("product"), "lab": d.get("lab"), "task_source": d.get("task_source"),
                "items": [{k: i.get(k) for k in ("item_code", "item_name", "values", "unit", "lab_verdict", "lab_standard", "reason")
                           + (("verdict",) if "verdict" in i else ())} for i in items]}
    # one alert per enterprise and sample: a correction that still leaves the lab's failure unjudged groups with it
    return _decision(kind, rule, rule.severity, file, eff.occurred_at, eff.event_id,
                     f"{file.enterprise_id}:{kind}:{d.get('sample_no', '')}", fields, evidence, rules)


def _lab_failed_unregistered(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    """The lab's 不合格 on a sample of an enterprise nobody registered (``sampling.awaiting_registration`` with
    ``lab_failed``): kept, undetermined until a registration says which standard applies — which may never come if
    the enterprise id is mistyped, and then the failure reached nobody.  It alerts as the lab's failure qrisk cannot
    judge; with no town on file the routes' fallback (``alerts.unrouted_to``, else ``escalate_to``) is told."""
    d = eff.data
    if not d.get("lab_failed"):
        return None
    eid = file.enterprise_id
    why = (f"企业 {eid} 尚未登记（食品类别未知，无法选定适用标准），样品结果已接收、待企业登记后判定；请核对企业编号是否填错，"
           f"如为新企业请尽快登记",
           f"enterprise {eid} is not registered (no food category, so no standard to judge by): the result is kept and judged "
           f"once it is; check the enterprise id")
    return _lab_failed_unjudged(file, eff.model_copy(update={"data": {**d, "items": d["lab_failed"]}}), rules, why)


_VERDICT_ZH = {"pass": "合格", "fail": "不合格", "undetermined": "无法判定"}


_RETEST_REASON_EN = {
    "microbial": "failed on microbiological indicators ({items}), which admit no re-test",
    "original_passed": "passed: a re-test is requested against an unqualified result only",
    "same_lab": "was re-tested by the lab that tested it first; the Food Safety Law (art. 88) requires another lab",
    "late": "was re-tested too long after its result, beyond the policy's re-test window",
    "not_listed": "was re-tested by a lab the policy's list of re-test labs (retest.institutions) does not name",
    "partial_sum": "failed a sum of ratios, and its re-test covers part of the sum's members: a sum of ratios is one lab's figure",
    "undetermined": "failed, and its re-test cannot be judged (an unknown item or unit, a detection limit above the limit): it does not overturn the failure",
}


def _retest_refused(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    rule = rules.policy.warnings.retest_inadmissible
    if not rule.enabled:
        return None
    d = eff.data
    original = file.sample_by_event(d["original_event_id"])
    retest = file.sample_by_event(d["retest_event_id"])
    codes = d.get("items", [])
    names = {i.item_code: i.item_name or i.item_code for i in original.judgement.items} if original and original.judgement else {}
    verdict = retest.judgement.verdict if retest is not None and retest.judgement is not None else ""
    items = "、".join(names.get(c, c) for c in codes)
    # (an effect folded before re-tests had other reasons than a microbial failure carries no reason)
    reason = d.get("reason", "microbial")
    reason_zh = d.get("reason_zh") or f"原检验结论为微生物指标不合格（{items}），依据《食品安全抽样检验管理办法》不予复检"
    fields = {"sample_no": d.get("sample_no", ""), "product": d.get("product", ""), "items": items,
              "retest_verdict": _VERDICT_ZH.get(verdict, verdict), "reason_zh": reason_zh,
              "reason_en": _RETEST_REASON_EN.get(reason, reason).format(items=items)}
    evidence = {"event_ids": [d["original_event_id"], d["retest_event_id"]], "sample_no": d.get("sample_no"), "items": codes,
                "retest_verdict": verdict or None, "reason": reason}
    return _decision("retest.inadmissible", rule, rule.severity, file, eff.occurred_at, eff.event_id,
                     f"{file.enterprise_id}:retest.inadmissible:{d.get('sample_no', '')}", fields, evidence, rules)


def _grade_worsened(file: "CreditFile", event: "Envelope", graded: "GradeEntry", rules: "Rules") -> AlertDecision | None:
    rule = rules.policy.warnings.grade_worsened
    if not rule.enabled:
        return None
    severity = rule.severity_by_grade.get(graded.grade, rule.severity)
    history = file.risk.history
    before = history[-2] if len(history) >= 2 and history[-1] is graded else None
    reasons = rise_reasons_zh(graded, before)
    fields = {"from_grade": graded.previous, "to_grade": graded.grade, "score": f"{graded.score:g}", "reasons": "；".join(reasons)}
    # the events that moved it (new in a term since the last evaluation) first; then the rest behind the dynamic and credit terms
    was_ids = {i for c in (before.contributions if before else []) for i in c.event_ids}
    ids: list[str] = []
    for c in graded.contributions:
        if c.factor.startswith(("dynamic.", "credit.")) and c.points > 0:
            ids += [i for i in c.event_ids if i not in ids and i not in was_ids]
    for c in graded.contributions:
        if c.factor.startswith(("dynamic.", "credit.")) and c.points > 0:
            ids += [i for i in c.event_ids if i not in ids]
    if graded.hold_expired and graded.hold_cause_event_id:
        # a tick moved a held grade on: the event that caused the rise comes first
        ids = [graded.hold_cause_event_id] + [i for i in ids if i != graded.hold_cause_event_id]
    evidence = {"event_ids": ids, "cause_event_id": graded.cause_event_id, "hold_cause_event_id": graded.hold_cause_event_id,
                "from": graded.previous, "to": graded.grade,
                "score": graded.score, "band": graded.band, "static": graded.static, "dynamic": graded.dynamic, "credit": graded.credit,
                "contributions": [{"factor": c.factor, "points": c.points, "event_ids": c.event_ids} for c in graded.contributions if c.points]}
    texts = None
    if file.licence_revoked is not None:
        # no licence, no lawful production: there is no inspection or sampling plan to adjust to the new grade
        fields["decision_no"] = file.licence_revoked
        texts = (rule.title_zh, rule.revoked_template_zh, rule.revoked_template_en)
    return _decision("risk.grade_worsened", rule, severity, file, event.occurred_at, event_key(event),
                     f"{file.enterprise_id}:grade.worsened:{graded.grade}", fields, evidence, rules, texts=texts)


_GROUPS = ("dynamic", "credit", "static")  # what the enterprise did, its record, what it is
_LISTING = "credit.serious_dishonesty"


def _term_zh(c: Any, grown: float | None = None) -> str:
    if c.factor == _LISTING:
        return f"{c.label_zh}：{c.detail_zh}"
    return f"{c.label_zh} {c.points:+g}（{c.detail_zh}" + (f"；较上次评定 {grown:+g}" if grown else "") + "）"


def score_reasons_zh(entry: "GradeEntry | None") -> list[str]:
    """Every term that makes the score, as sentences, group by group (dynamic, credit, static), largest
    first, each group's cap line (动态因素上限 −20) after its terms: the points listed add up to the
    score, so a supervisor checking the sum finds it.  (``processors.risk.reasons_zh`` leaves the caps
    out and stops at a limit: its lines can add up to more than the score.)"""
    if entry is None:
        return []
    out = [_term_zh(c) for c in entry.contributions if c.factor == _LISTING]
    if entry.held:
        out.append(f"分值 {entry.score:g} 对应 {entry.band} 级；每次评定最多变动规定级数，暂定 {entry.grade} 级")
    for group in _GROUPS:
        terms = sorted((c for c in entry.contributions if c.factor.startswith(group + ".") and c.factor != f"{group}.cap" and c.points > 0),
                       key=lambda c: (-c.points, c.factor))
        out += [_term_zh(c) for c in terms]
        out += [_term_zh(c) for c in entry.contributions if c.factor == f"{group}.cap"]
    return out


def rise_reasons_zh(entry: "GradeEntry", before: "GradeEntry | None", limit: int = 4) -> list[str]:
    """Why the score rose: the terms that changed since the last evaluation (what changed, not what the
    enterprise always was: its food category is no reason for a rise) — those that grew, then those that fell
    or left the score (a good inspection's −2 run out, an old failure no longer counted) —, a cap that took part
    of the change back, and the score before and after: the changes listed add up to the difference.  Without
    the previous evaluation, the whole score."""
    if before is None:
        return score_reasons_zh(entry)
    was = {c.factor: c for c in before.contributions}
    now = {c.factor: c for c in entry.contributions}
    out = [_term_zh(c) for c in entry.contributions if c.factor == _LISTING and _LISTING not in was]
    changed = []
    for factor in dict.fromkeys([*now, *was]):
        if factor.endswith(".cap") or factor == _LISTING:
            continue
        delta = (now[factor].points if factor in now else 0.0) - (was[factor].points if factor in was else 0.0)
        if delta:
            changed.append((factor, delta))
    grown = sorted((fd for fd in changed if fd[1] > 0), key=lambda fd: (-fd[1], fd[0]))
    fallen = sorted((fd for fd in changed if fd[1] < 0), key=lambda fd: (fd[1], fd[0]))

    def said(factor: str, delta: float) -> str:
        if factor in now:
            return _term_zh(now[factor], delta)
        c = was[factor]  # gone from the score: its term has run out
        return f"{c.label_zh} 不再计入（此前 {c.points:+g}：{c.detail_zh}；较上次评定 {delta:+g}）"

    for part in (grown, fallen):
        out += [said(f, d) for f, d in part[:limit]]
        if part[limit:]:
            out.append(f"其余 {len(part) - limit} 项合计 {sum(d for _, d in part[limit:]):+g}")
    # a cap that changed (tightened as its group grew, loosened as a term fell) or holds a group that grew: part of the
    # change did not count, or a part held back now counts
    groups = {f.split(".")[0] for f, _ in grown}
    for c in entry.contributions:
        if c.factor.endswith(".cap"):
            delta = c.points - (was[c.factor].points if c.factor in was else 0.0)
            if delta or c.factor.split(".")[0] in groups:
                out.append(_term_zh(c, delta or None))
    out += [f"{c.label_zh} 不再计入（较上次评定 {-c.points:+g}）" for c in before.contributions if c.factor.endswith(".cap") and c.factor not in now]
    if not grown and entry.hold_expired:
        out.append(entry.hold_zh)  # a tick moved it on as the hold expired: since when and by which event
    elif not grown and before.held:
        out.append(f"上次评定受每次变动级数限制暂定 {before.grade} 级，本次按分值 {entry.score:g}（对应 {entry.band} 级）调整")
    elif not grown and not out:
        out += score_reasons_zh(entry)[:limit]
    out.append(f"风险分 {before.score:g} → {entry.score:g}（静态 {entry.static:g} + 动态 {entry.dynamic:g} + 信用 {entry.credit:g}）")
    return out


_WHAT_ZH = {"sampling": "监督抽检", "inspection": "现场检查"}
_WHAT_EN = {"sampling": "supervision sample", "inspection": "inspection"}


def _requirement(what: str, grade: str, interval_days: int, rules: "Rules") -> tuple[str, str]:
    """The requirement as the policy states it: inspections per year (with the interval the due date
    follows from), samples by their interval.  These are the bureau's own risk-grading policy
    (risk.inspections_per_year, risk.sampling_interval_days), not a regulation's text: the
    template names them as 本县风险分级监管要求 and the interval as how the bureau applies it."""
    if what == "sampling":
        return f"每 {interval_days} 天至少一次监督抽检", f"one supervision sample every {interval_days} days"
    per_year = rules.policy.risk.inspections_per_year.get(grade)  # type: ignore[call-overload]
    if not per_year:
        return f"每 {interval_days} 天至少一次现场检查", f"one inspection every {interval_days} days"
    zh, en = inspection_frequency(per_year)
    return f"{zh}现场检查（本局按两次间隔不超过 {interval_days} 天掌握）", f"{en} (applied as at most {interval_days} days apart)"


def _data_missing(file: "CreditFile", event: "Envelope", gap: dict[str, Any], rules: "Rules") -> AlertDecision | None:
    rule = rules.policy.warnings.data_missing
    if not rule.enabled:
        return None
    what = gap["what"]
    verb = "抽检" if what == "sampling" else "检查"
    requirement_zh, requirement_en = _requirement(what, gap["grade"], gap["interval_days"], rules)
    if gap["last"]:
        since_zh, since_en = f"最近一次{verb}为 {gap['last']}", f"the last was on {gap['last']}"
    else:
        # never since registration: the base of the gap is the registration date
        since_zh, since_en = f"自 {gap['base']} 登记以来未{verb}", f"none since registration on {gap['base']}"
    if gap.get("regraded_on"):
        # the due date is the grace after the grade changed: the interval alone had already run out
        since_zh += f"，{gap['regraded_on']} 风险等级调整为 {gap['grade']} 级后给予 {gap['grace_days']} 天检查期限"
        since_en += f"; the grade became {gap['grade']} on {gap['regraded_on']}, with {gap['grace_days']} days to inspect"
    fields = {
        "what_zh": _WHAT_ZH[what], "what_en": _WHAT_EN[what], "last": gap["last"] or f"无（自登记以来未{verb}）",
        "interval_days": gap["interval_days"], "grade": gap["grade"], "due": gap["due"],
        "requirement_zh": requirement_zh, "requirement_en": requirement_en, "since_zh": since_zh, "since_en": since_en,
    }
    evidence = {"event_ids": [gap["last_event_id"]] if gap.get("last_event_id") else [], **{k: v for k, v in gap.items() if k != "last_event_id"}}
    return _decision("data.missing", rule, rule.severity, file, event.occurred_at, event_key(event),
                     _missing_key(file.enterprise_id, what, gap["base"]), fields, evidence, rules)


def _missing_key(enterprise_id: str, what: str, base: str) -> str:
    return f"{enterprise_id}:data.missing:{what}:{base}"


RESOLVED_KIND = "warning.resolved"
"""The effect kind that tells the alerts stage a problem went away by itself (the awaited data came)."""


def resolved(file: "CreditFile", event: "Envelope", filled: dict[str, Any], rules: "Rules") -> dict[str, Any] | None:
    """A ``warning.resolved`` effect's data for a gap that ``filled`` (``processors.risk.filled_gaps``) closed:
    the dedup key of the alert it opened, and a note naming the record that came."""
    if not rules.policy.warnings.data_missing.enabled:
        return None
    what = filled["what"]
    if filled.get("deregistered"):
        note_zh = (f"企业已于 {filled['on']} 注销，不再要求例行{_WHAT_ZH[what]}，预警自动关闭；如发现仍在生产，按无证生产查处")
        note_en = f"the enterprise was deregistered on {filled['on']}: no routine {_WHAT_EN[what]} is due any more; closed"
    elif filled.get("suspended"):
        note_zh = (f"企业已于 {filled['on']} 停产，停产期间不要求例行{_WHAT_ZH[what]}，预警自动关闭；恢复生产后重新起算")
        note_en = f"the enterprise stopped production on {filled['on']}: no routine {_WHAT_EN[what]} is due while it is stopped; closed"
    elif filled.get("licence_revoked"):
        note_zh = (f"行政处罚决定书 {filled['ref']}（{filled['on']}）已吊销许可证，企业不得再生产，"
                   f"不再要求例行{_WHAT_ZH[what]}，预警自动关闭；如发现仍在生产，按无证生产查处")
        note_en = f"licence revoked by decision {filled['ref']} ({filled['on']}): no routine {_WHAT_EN[what]} is due any more; closed"
    else:
        if what == "sampling":
            record = f"监督抽检（抽样编号 {filled['ref']}，抽样日期 {filled['on']}）"
        else:
            record = f"现场检查 {filled['ref']}（{filled['on']}）"
        note_zh = f"已有{record}记录，预警自动关闭"  # (not 补录: the record is a new one, not one entered late)
        note_en = f"the awaited {_WHAT_EN[what]} {filled['ref']} ({filled['on']}) is on record: closed"
    return {
        "rule": "data.missing", "dedup_key": _missing_key(file.enterprise_id, what, filled["base"]), "enterprise_id": file.enterprise_id,
        "note_zh": note_zh,
        "note_en": note_en,
        "evidence": {"event_ids": [filled["event_id"]], **{k: v for k, v in filled.items() if k != "event_id"}},
    }


def _follow_up(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    rule = rules.policy.warnings.interview_follow_up
    if not rule.enabled:
        return None
    d = eff.data
    iid = d.get("interview_id", "")
    record = file.interview(iid)
    reason = record.reason if record is not None else ""
    if len(reason) > rule.excerpt_chars:
        reason = reason[: rule.excerpt_chars] + "…"
    fields = {"interview_id": iid, "held_on": d.get("held_on", ""), "held_by": record.held_by if record is not None else "",
              "reason": reason, "commitments": record.commitments if record is not None else "",
              "follow_up_by": d.get("follow_up_by", ""), "days_overdue": d.get("days_overdue", "")}
    zh, en = _moved_deadline(d.get("follow_up_by", ""), d.get("moved_to"), bool(d.get("moved_estimate")))
    fields["follow_up_by"] = zh
    ids = [record.event_id] if record is not None else []
    evidence = {"event_ids": ids + [eff.event_id], "interview_id": iid, "held_on": d.get("held_on"), "follow_up_by": d.get("follow_up_by"),
                "days_overdue": d.get("days_overdue"), **_moved_evidence(d)}
    return _decision("interview.follow_up_overdue", rule, rule.severity, file, eff.occurred_at, eff.event_id,
                     _follow_up_key(file.enterprise_id, iid), fields, evidence, rules,
                     fields_en={"follow_up_by": en} if en != zh else None)


def _follow_up_key(enterprise_id: str, interview_id: str) -> str:
    return f"{enterprise_id}:interview.follow_up:{interview_id}"


def follow_up_resolved(file: "CreditFile", interview: Any, inspection_id: str, day: dt.date, event_id: str, rules: "Rules") -> dict[str, Any] | None:
    """A ``warning.resolved`` effect's data: the inspection that followed an interview up came, after its date."""
    if not rules.policy.warnings.interview_follow_up.enabled:
        return None
    return {
        "rule": "interview.follow_up_overdue", "dedup_key": _follow_up_key(file.enterprise_id, interview.interview_id),
        "enterprise_id": file.enterprise_id,
        "note_zh": f"已跟踪检查：现场检查 {inspection_id}（{day.isoformat()}）已对约谈 {interview.interview_id} 的整改承诺进行跟踪，预警自动关闭",
        "note_en": f"interview {interview.interview_id} followed up by inspection {inspection_id} ({day.isoformat()}): closed",
        "evidence": {"event_ids": [event_id], "interview_id": interview.interview_id, "inspection_id": inspection_id, "on": day.isoformat()},
    }


def follow_up_corrected_resolved(file: "CreditFile", interview: Any, event_id: str, rules: "Rules") -> dict[str, Any] | None:
    """A ``warning.resolved`` effect's data: an interview whose follow-up was overdue was corrected (``interview.corrected``)
    to a follow-up date not yet passed, or to none: the alert rested on the record it replaced."""
    if not rules.policy.warnings.interview_follow_up.enabled:
        return None
    by = interview.follow_up_by
    said = f"跟踪检查期限更正为 {by.isoformat()}，尚未到期" if by is not None else "更正后的记录未设跟踪检查期限"
    return {
        "rule": "interview.follow_up_overdue", "dedup_key": _follow_up_key(file.enterprise_id, interview.interview_id),
        "enterprise_id": file.enterprise_id,
        "note_zh": f"约谈 {interview.interview_id} 的记录已更正（更正事件 {event_id}）：{said}，预警自动关闭",
        "note_en": (f"interview {interview.interview_id} was corrected: "
                    + (f"its follow-up is due by {by.isoformat()}, not yet passed" if by is not None else "it sets no follow-up date")
                    + "; closed"),
        "evidence": {"event_ids": [event_id], "interview_id": interview.interview_id, "follow_up_by": by.isoformat() if by else None,
                     "corrected": True},
    }


def inspection_corrected_resolved(file: "CreditFile", eff: "Effect", rules: "Rules") -> dict[str, Any] | None:
    """A ``warning.resolved`` effect's data for the 现场检查发现问题 alert of an inspection whose corrected record
    (``inspection.corrected``) finds no nonconformity: neither 不符合 nor a major or critical finding.  Open, it went
    on asking to handle what the record now says was not found."""
    d = eff.data
    if not d.get("was_nonconforming") or d.get("nonconforming") or not rules.policy.warnings.inspection_nonconforming.enabled:
        return None
    iid = d.get("inspection_id", "")
    key = f"{file.enterprise_id}:inspection:{iid}"
    if key not in _latest(file, "inspection.nonconforming"):
        return None
    return {
        "rule": "inspection.nonconforming", "dedup_key": key, "enterprise_id": file.enterprise_id,
        "note_zh": f"{d.get('message_zh', '')}；更正后的检查结论为{d.get('result', '')}，无主要或严重问题，预警所依据的检查问题不再成立，预警自动关闭",
        "note_en": f"inspection {iid} was corrected to {d.get('result', '')} without major or critical findings: closed",
        "evidence": {"event_ids": [eff.event_id, d.get("corrects_event_id")], "inspection_id": iid, "result": d.get("result"),
                     "corrected": True},
    }


def _near_limit(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    rule = rules.policy.warnings.near_limit
    if not rule.enabled:
        return None
    d = eff.data
    checks = d.get("checks", [])
    what = "；".join(f"{c['group_name']}混合使用时各自用量占其最大使用量的比例之和为 {c['total']:.2f}（限值 1）" for c in checks)
    what_en = "; ".join(f"the {c['group']} sum of ratios is {c['total']:.2f} (limit 1)" for c in checks)
    fields = {"sample_no": d.get("sample_no", ""), "product": d.get("product", ""), "sampled_on": d.get("sampled_on", ""),
              "what": what, "what_en": what_en}
    evidence = {"event_ids": [d.get("sample_event_id", eff.event_id)], "sample_no": d.get("sample_no"), "checks": checks,
                "fraction": rule.fraction}
    # one alert per enterprise and group: a creep sample after sample is one problem, its repeats grouped
    key = f"{file.enterprise_id}:sampling.near_limit:{','.join(sorted(c['group'] for c in checks))}"
    return _decision("sampling.near_limit", rule, rule.severity, file, eff.occurred_at, eff.event_id, key, fields, evidence, rules)


def _complaint_overdue(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    rule = rules.policy.warnings.complaint_overdue
    if not rule.enabled:
        return None
    d = eff.data
    cid = d.get("complaint_id", "")
    kind = d.get("complaint_kind", "complaint")
    fields = {"complaint_id": cid, "kind": kind, "kind_zh": d.get("kind_zh", ""), "received_on": d.get("received_on", ""),
              "channel_zh": CHANNEL_ZH.get(d.get("channel", ""), d.get("channel", "")), "limit": d.get("limit", ""),
              "limit_zh": d.get("limit_zh", ""), "due_on": d.get("due_on", ""), "working_days_over": d.get("working_days_over", ""),
              "party_zh": "举报人" if kind == "report" else "投诉人"}
    if d.get("limit") == "accept":
        # (what is missing is the decision to accept, not a conclusion: chasing a conclusion a week in sends the desk astray)
        fields["missing_zh"], fields["missing_en"] = "受理决定", "no acceptance decision"
        fields["next_step_zh"] = f"请尽快作出受理或不予受理决定并告知{fields['party_zh']}，如已作出请补报受理决定（complaint.accepted）。"
    else:
        fields["missing_zh"], fields["missing_en"] = "办结记录", "no conclusion"
        fields["next_step_zh"] = f"请尽快办结并告知{fields['party_zh']}，如已办结请补报办结结论。"
    evidence = {"event_ids": [x for x in (d.get("complaint_event_id"), eff.event_id) if x], "complaint_id": cid, "kind": kind,
                "limit": d.get("limit"), "due_on": d.get("due_on"), "working_days_over": d.get("working_days_over")}
    # (one alert per complaint: its second limit passing is the same problem, grouped with the first)
    return _decision("complaint.overdue", rule, rule.severity, file, eff.occurred_at, eff.event_id,
                     complaint_overdue_key(file.enterprise_id, cid), fields, evidence, rules)


def complaint_overdue_key(enterprise_id: str, complaint_id: str) -> str:
    return f"{enterprise_id}:complaint.overdue:{complaint_id}"


def complaint_overdue_resolved(file: "CreditFile", complaint_id: str, event_id: str, note_zh: str, note_en: str,
                               rules: "Rules") -> dict[str, Any] | None:
    """A ``warning.resolved`` effect's data: a complaint whose 办理超期 alert stands was concluded (late or, a conclusion
    dated in time arriving late, not) or withdrawn: nothing is left to chase."""
    key = complaint_overdue_key(file.enterprise_id, complaint_id)
    if not rules.policy.warnings.complaint_overdue.enabled or key not in _latest(file, "complaint.overdue"):
        return None
    return {"rule": "complaint.overdue", "dedup_key": key, "enterprise_id": file.enterprise_id, "note_zh": note_zh, "note_en": note_en,
            "evidence": {"event_ids": [event_id], "complaint_id": complaint_id}}


def _recategorised(file: "CreditFile", eff: "Effect", rules: "Rules") -> AlertDecision | None:
    """A verified complaint whose category was corrected (``complaint.repeated``, ``category_corrected``) into one of
    illness or of a hazard (异物, 变质): its 食用后不适 or hazard alert, as if filed so.  Not yet verified, the fold says
    ``complaint.illness_reported``; the cluster and burst it now makes are the fold's own effects; an alert the old
    category raised and the new one does not is closed (``complaint_unfounded_resolved``)."""
    d = eff.data
    record = file.complaint(d.get("complaint_id", "")) if d.get("category_corrected") else None
    if record is None or not record.verified:
        return None
    as_if = eff.model_copy(update={"kind": "complaint.verified", "data": {"complaint_id": record.complaint_id, "category": record.category}})
    before = record.model_copy(update={"category": d.get("previous_category")})
    if _tells_illness(record, rules) and not _tells_illness(before, rules):
        return _illness(file, as_if, rules)
    if _tells_hazard(record, rules) and not _tells_hazard(before, rules):
        return _hazard(file, as_if, rules)
    key = f"{file.enterprise_id}:complaint.hazard:{record.complaint_id}"
    if _tells_hazard(record, rules) and _tells_hazard(before, rules) and key in _latest(file, "complaint.hazard"):
        # 异物 corrected to 变质: its alert said 反映…中有异物 and, closed later, 异物投诉预警 — it takes the corrected category's
        # message and evidence under its key, as a corrected report's alert does (alerts.lifecycle: no new occurrence, and one
        # settled stays settled)
        decision = _hazard(file, as_if, rules)
        if decision is None:
            return None
        was, now = COMPLAINT_ZH.get(before.category, before.category), COMPLAINT_ZH.get(record.category, record.category)
        return decision.model_copy(update={"evidence": {
            **decision.evidence, "corrected_from": record.event_id,
            "correction_zh": f"投诉编号 {record.complaint_id} 的类别已由{was}更正为{now}", "correction_of": "complaint"}})
    return None  # (not one of illness or a hazard; or it made one already, by its old category or its words, which stands)


_ON_EFFECT = {
    "sampling.failed": _sampling,
    "fluctuation.signal": _fluctuation,
    "complaint.cluster": _cluster,
    "complaint.burst": _burst,
    "complaint.verified": _verified,
    "complaint.illness_reported": _illness,
    "complaint.repeated": _recategorised,
    "sampling.awaiting_registration": _lab_failed_unregistered,
    "rectification.overdue": _overdue,
    "inspection.nonconforming": _inspection,
    "rectification.rejected": _rejected,
    "judgement.disagrees_with_lab": _disagrees,
    "judgement.lab_failed_unjudged": _lab_failed_unjudged,
    "judgement.lab_failed_passed": _lab_failed_passed,
    "sampling.retest_inadmissible": _retest_refused,
    "enforcement.decided": _enforcement,
    "interview.follow_up_overdue": _follow_up,
    "sampling.near_limit": _near_limit,
    "complaint.overdue": _complaint_overdue,
}

ALERTING_KINDS = frozenset(_ON_EFFECT)
"""Effect kinds some rule turns into an alert decision."""
