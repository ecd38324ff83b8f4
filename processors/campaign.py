"""The upgrade campaign (提档升级) in the credit file: stages, the "three ones", KPIs, progress.

Stages, each reached on the first event that fulfils it (its local date is kept):

==================  ==============================================================================
mobilisation        宣传发动: the commitment letter (承诺书) signed
tiering             调查分档: a tiering assessment (its tier becomes the enterprise's campaign tier)
training            培训观摩: a training report with staff trained, or a visit
assistance          帮扶指导: expert assistance
self_improvement    自我提升, the "three ones": full-staff training and exam (全员培训考试: staff trained
                    and staff examined each at least ``full_staff_rate`` of the staff, 100 % by
                    default — not the campaign-wide 90 % training-rate KPI), one self-inspection,
                    one satisfactory comparison test
acceptance          检查验收: an acceptance assessment that passed
==================  ==============================================================================

KPIs (targets in ``campaign:`` of the policy): staff training rate ≥ 90 %; online exam first-
attempt pass rate ≥ 80 %; key posts certified (持证上岗) 100 %; the *provincial* sampling pass rate
(省级抽检: samples whose 任务来源 matches ``provincial_task_sources``, from the campaign's start,
re-tests deciding) above the provincial average (``provincial_pass_rate``, by default 1 − the
category's reference failure rate).  An enterprise without provincial samples has no value for it
(无省级抽检数据), not a pass; the rate over all its samples (county and national tasks too) is kept
beside it for the table.

An acceptance (检查验收) the assessors passed is flagged for a second look (须核实,
``campaign.accepted_with_gaps``) when a KPI misses its target, and also when, over the campaign
(from ``starts_on``, else the enterprise's first campaign event) up to the acceptance day:

- a 行政处罚决定 was decided;
- the pass rate over all its samples (county and national tasks too, re-tests deciding) is not above
  the sampling KPI's target (the provincial average): an enterprise without provincial samples has no
  KPI value, and its failures would otherwise go unseen;
- its risk grade on the acceptance day was one of ``campaign.acceptance_risk_grades`` (C, D);
- at least ``campaign.acceptance_verified_complaints`` complaints were verified (经核实).

Each finding names its figure and the events it rests on; they are kept on the campaign record
(``acceptance_checks``) as found on the acceptance day, since the grade then is history later.

A comparison test is satisfactory when |En| ≤ 1, En = (x_enterprise − x_lab) / √(U_e² + U_lab²),
if both expanded uncertainties are given (ISO/IEC 17043); else, for a colony count (an item whose
catalogue unit is a count: its dimension is one of ``COUNT_DIMENSIONS``, CFU/… or MPN/…), when
|log10(x_enterprise) − log10(x_lab)| is within ``comparison_max_log10_difference`` (counts scatter
by orders of magnitude, not by a share of the value); else when the relative deviation from the
lab's value is within ``comparison_max_deviation``.
"""
from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

from pydantic import Field

from processors._build import FoldState
from processors.risk import CATEGORY_ZH, reasons_zh
from processors.warnings import penalties_text

if TYPE_CHECKING:  # pragma: no cover
    from processors.credit_file import CountyState, CreditFile
    from processors.step import Rules
    from schemas.policy import CampaignPolicy

STAGES = ("mobilisation", "tiering", "training", "assistance", "self_improvement", "acceptance")
STAGE_ZH = {
    "mobilisation": "宣传发动（承诺书）", "tiering": "调查分档", "training": "培训观摩", "assistance": "帮扶指导",
    "self_improvement": "自我提升（三个一）", "acceptance": "检查验收",
}
KPI_ZH = {
    "training_rate": "从业人员培训率", "exam_first_pass_rate": "食品安全在线考试一次通过率",
    "key_posts_certified_rate": "关键岗位持证上岗率", "sampling_pass_rate": "抽检合格率",
}


CHECK_ZH = {"enforcement": "行政处罚", "overall_pass_rate": "全部抽检合格率", "risk_grade": "风险等级", "complaints_verified": "经核实投诉"}
"""What a passed acceptance is checked against besides the KPIs, in the order they are listed."""

COUNT_DIMENSIONS = ("cfu_", "mpn_")
"""Prefixes of the unit dimensions (``schemas/standards/units.yaml``) that are microbial counts."""


class ComparisonTest(FoldState):
    on: dt.date
    lab: str
    item_code: str
    enterprise_value: float
    lab_value: float
    en: float | None = Field(default=None, description="E_n number, when both uncertainties were given")
    deviation: float | None = Field(default=None, description="relative deviation from the lab's value")
    log10_difference: float | None = Field(default=None, description="|log10 difference| from the lab's value, for a colony count")
    measure_zh: str | None = Field(default=None, description="how it was judged, in words (En, log10 difference or relative deviation)")
    satisfactory: bool
    event_id: str


class SelfInspection(FoldState):
    on: dt.date
    findings: int | None = None
    rectified: int | None = None
    event_id: str


class AcceptanceCheck(FoldState):
    """Something a passed acceptance must be checked against (须核实): the figure and its events."""

    code: str = Field(description="enforcement | overall_pass_rate | risk_grade | complaints_verified")
    label_zh: str
    text_zh: str = Field(description="the figure, in words, with what it rests on")
    value: float | None = Field(default=None, description="the figure: decisions, pass rate, risk score or complaints")
    target: float | None = Field(default=None, description="the pass rate it had to be above")
    event_ids: list[str] = Field(default_factory=list, description="the events it rests on")


class CampaignRecord(FoldState):
    """One enterprise's way through the campaign."""

    commitment_signed_on: dt.date | None = None
    signatory: str | None = None
    starting_tier: str | None = Field(default=None, description="the first tiering's tier")
    tier: str | None = Field(default=None, description="the latest assessment's tier (a failed acceptance's excepted)")
    tier_assessed_on: dt.date | None = None
    scores: dict[str, float] = Field(default_factory=dict, description="the latest assessment's scores per dimension")
    training: dict[str, Any] | None = Field(default=None, description="the latest training report")
    visits: int = 0
    assistance: int = 0
    self_inspections: list[SelfInspection] = Field(default_factory=list)
    comparison_tests: list[ComparisonTest] = Field(default_factory=list)
    started_on: dt.date | None = Field(default=None, description="local date of its first campaign event")
    accepted_on: dt.date | None = None
    acceptance_failed: int = Field(default=0, description="acceptance assessments that did not pass")
    acceptance_checked_on: dt.date | None = Field(default=None, description="the passed acceptance the checks were made for")
    acceptance_checks: list[AcceptanceCheck] = Field(
        default_factory=list, description="what that acceptance must be checked against besides the KPIs (须核实), as found on its day")
    stages: dict[str, dt.date] = Field(default_factory=dict, description="stage -> the local date it was reached")
    event_ids: list[str] = Field(default_factory=list, description="every campaign event, oldest first")


# --------------------------------------------------------------------------- the fold


def on_campaign_event(file: "CreditFile", event: Any, rules: "Rules") -> list[tuple[str, dict[str, Any]]]:
    """Apply one campaign.* event; returns (effect kind, data) pairs."""
    c = file.campaign
    pol = rules.policy.campaign
    p = event.payload
    eid = str(event.event_id)
    c.event_ids.append(eid)
    et = event.event_type
    out: list[tuple[str, dict[str, Any]]] = []
    today = rules.local_date(event.occurred_at)
    if c.started_on is None or today < c.started_on:
        c.started_on = today
    if et == "campaign.commitment":
        c.commitment_signed_on, c.signatory = p.signed_on, p.signatory
    elif et == "campaign.assessment":
        if p.kind == "tiering" and c.starting_tier is None:
            c.starting_tier = p.tier
        if p.kind == "acceptance":
            if p.passed:
                c.accepted_on = min(c.accepted_on, p.assessed_on) if c.accepted_on else p.assessed_on
            else:
                c.acceptance_failed += 1
        # the newest assessment decides the tier (one loaded late does not undo a later one), and a
        # failed acceptance moves nobody up
        if (p.kind == "tiering" or p.passed) and (c.tier_assessed_on is None or p.assessed_on >= c.tier_assessed_on):
            c.tier, c.scores, c.tier_assessed_on = p.tier, dict(p.scores), p.assessed_on
            apply_tier(file)
        out.append(("campaign.assessed", {"kind": p.kind, "tier": p.tier, "passed": p.passed, "starting_tier": c.starting_tier}))
        if p.kind == "acceptance" and p.passed:
            # the assessors may pass an enterprise the KPIs, or its record over the campaign, do not
            # bear out: the supervisor must see it
            checks = acceptance_checks(file, p.assessed_on, pol, rules)
            if c.acceptance_checked_on is None or p.assessed_on >= c.acceptance_checked_on:  # the newest acceptance's
                c.acceptance_checked_on, c.acceptance_checks = p.assessed_on, checks
            gaps = unmet_kpis(file, pol)
            if gaps or checks:
                found = (["、".join(_gap_text(g) for g in gaps) + "未达标"] if gaps else []) + [x.text_zh for x in checks]
                out.append(("campaign.accepted_with_gaps", {
                    "kpis_unmet": [g["label_zh"] for g in gaps], "checks": [x.model_dump(mode="json") for x in checks], "tier": p.tier,
                    "message_zh": "检查验收通过，但" + "；".join(found) + "，请核实验收结论"}))
    elif et == "campaign.training":
        if c.training is None or p.as_of.isoformat() >= c.training["as_of"]:  # the newest report counts
            c.training = p.model_dump(mode="json")
    else:  # campaign.activity
        if p.kind == "visit":
            c.visits += 1
        elif p.kind == "expert_assistance":
            c.assistance += 1
        elif p.kind == "self_inspection":
            c.self_inspections.append(SelfInspection(on=p.on, findings=p.findings, rectified=p.rectified, event_id=eid))
        else:
            category = file.profile.category if file.profile else None
            # the event carries no unit: the values are read in the catalogue's unit for the item
            unit = rules.catalogue.item_unit(category, p.item_code) if category else None
            test = _comparison(p, eid, pol, unit is not None and unit.dimension.startswith(COUNT_DIMENSIONS))
            c.comparison_tests.append(test)
            if not test.satisfactory:
                item = rules.catalogue.item(category, test.item_code) if category else None
                u = f" {unit.display}" if unit is not None and unit.display else ""
                out.append(("campaign.comparison_unsatisfactory", {
                    "item_code": test.item_code, "lab": test.lab, "enterprise_value": test.enterprise_value, "lab_value": test.lab_value,
                    "en": test.en, "deviation": test.deviation, "log10_difference": test.log10_difference,
                    "message_zh": f"比对试验（{item.name_zh if item else test.item_code}，{test.lab}）结果不满意："
                                  f"企业 {test.enterprise_value:g}{u}，实验室 {test.lab_value:g}{u}，{test.measure_zh}",
                }))
    for stage in STAGES:
        if stage not in c.stages and _reached(stage, c, pol):
            c.stages[stage] = today
            out.append(("campaign.stage_reached", {"stage": stage, "stage_zh": STAGE_ZH[stage], "on": today.isoformat()}))
    return out


def apply_tier(file: "CreditFile") -> None:
    """The assessed tier is the enterprise's campaign tier (and the risk grade's credit term), also
    over a registration or an update that arrives later with the registry's older tier."""
    tier = file.campaign.tier
    if tier is not None and file.profile is not None and file.profile.campaign_tier != tier:
        file.profile = file.profile.model_copy(update={"campaign_tier": tier})


def _comparison(p: Any, event_id: str, pol: "CampaignPolicy", count: bool) -> ComparisonTest:
    """``count``: the item is a colony count (CFU/…, MPN/…), compared on the log10 scale."""
    x, ref = float(p.enterprise_value), float(p.lab_value)
    en = deviation = log_diff = None
    if p.enterprise_uncertainty is not None and p.lab_uncertainty is not None:
        en = (x - ref) / math.hypot(p.enterprise_uncertainty, p.lab_uncertainty)
        ok = abs(en) <= 1.0
        measure = f"En = {en:.2f}（|En| ≤ 1 为满意）"
    elif count:
        limit = pol.comparison_max_log10_difference
        if x > 0 and ref > 0:
            log_diff = abs(math.log10(x) - math.log10(ref))
            ok = log_diff <= limit + 1e-12
            measure = f"对数差 |lg企业 − lg实验室| = {log_diff:.2f}（≤ {limit:g} 为满意）"
        else:  # a count of 0 has no logarithm: both none is agreement, one none is not
            ok = x == ref
            measure = "双方均未检出" if ok else "一方未检出、另一方检出，无法按对数比较"
    else:
        deviation = abs(x - ref) / abs(ref) if ref != 0 else (0.0 if x == 0 else math.inf)
        ok = deviation <= pol.comparison_max_deviation
        if not math.isfinite(deviation):
            deviation = None  # (JSON has no infinity) a lab value of 0 against a non-zero result: unsatisfactory
            measure = "实验室结果为 0，无法计算相对偏差"
        else:
            measure = f"相对偏差 {deviation:.1%}（≤ {pol.comparison_max_deviation:.0%} 为满意）"
    return ComparisonTest(on=p.on, lab=p.lab, item_code=p.item_code, enterprise_value=x, lab_value=ref, en=en,
                          deviation=deviation, log10_difference=log_diff, measure_zh=measure, satisfactory=ok, event_id=event_id)


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def _training_done(c: CampaignRecord, pol: "CampaignPolicy") -> bool:
    """全员培训考试: the whole staff trained and examined (``full_staff_rate``), a stricter bar than
    the training-rate KPI, which the campaign as a whole is measured by."""
    t = c.training
    if not t or t["exam_takers"] == 0:
        return False
    trained, examined = _ratio(t["staff_trained"], t["staff_total"]), _ratio(t["exam_takers"], t["staff_total"])
    return trained is not None and examined is not None and min(trained, examined) >= pol.full_staff_rate - 1e-12


def three_ones(c: CampaignRecord, pol: "CampaignPolicy") -> dict[str, bool]:
    return {
        "training_and_exam": _training_done(c, pol),
        "self_inspection": bool(c.self_inspections),
        "comparison_test": any(t.satisfactory for t in c.comparison_tests),
    }


def _reached(stage: str, c: CampaignRecord, pol: "CampaignPolicy") -> bool:
    if stage == "mobilisation":
        return c.commitment_signed_on is not None
    if stage == "tiering":
        return c.starting_tier is not None
    if stage == "training":
        return c.visits > 0 or bool(c.training and c.training["staff_trained"] > 0)
    if stage == "assistance":
        return c.assistance > 0
    if stage == "self_improvement":
        return all(three_ones(c, pol).values())
    return c.accepted_on is not None


# --------------------------------------------------------------------------- reading it


def kpis(file: "CreditFile", pol: "CampaignPolicy") -> dict[str, dict[str, Any]]:
    """Each KPI: value (None when nothing to compute it from), target, met."""
    t = file.campaign.training or {}
    values = {
        "training_rate": _ratio(t.get("staff_trained", 0), t.get("staff_total", 0)),
        "exam_first_pass_rate": _ratio(t.get("exam_first_pass", 0), t.get("exam_takers", 0)),
        "key_posts_certified_rate": _ratio(t.get("key_posts_certified", 0), t.get("key_posts", 0)),
    }
    sampling = _campaign_sampling(file, pol)
    values["sampling_pass_rate"] = sampling.pop("value")
    category = file.profile.category if file.profile else None
    targets = {"training_rate": pol.training_rate, "exam_first_pass_rate": pol.exam_first_pass_rate,
               "key_posts_certified_rate": pol.key_posts_certified_rate, "sampling_pass_rate": pol.provincial_average(category)}
    out = {}
    for k, v in values.items():
        # the pass rate must be above the provincial average; the others at least their target
        met = None if v is None else (v > targets[k] if k == "sampling_pass_rate" else v >= targets[k] - 1e-12)
        out[k] = {"label_zh": KPI_ZH[k], "value": v, "target": targets[k], "met": met}
    out["sampling_pass_rate"].update(sampling)
    return out


def unmet_kpis(file: "CreditFile", pol: "CampaignPolicy") -> list[dict[str, Any]]:
    """The KPIs known to miss their target (one with no data is not counted as missed)."""
    return [k for k in kpis(file, pol).values() if k["met"] is False]


def acceptance_checks(file: "CreditFile", day: dt.date, pol: "CampaignPolicy", rules: "Rules") -> list[AcceptanceCheck]:
    """What a passed acceptance on ``day`` must be checked against besides the KPIs (see the module's
    doc): penalties, the pass rate over all samples, the risk grade that day, verified complaints —
    over the campaign (from ``starts_on``, else the enterprise's first campaign event) up to ``day``."""
    c = file.campaign
    start = pol.starts_on or c.started_on or day
    out: list[AcceptanceCheck] = []

    def add(code: str, text: str, event_ids: list[str], value: float | None = None, target: float | None = None) -> None:
        out.append(AcceptanceCheck(code=code, label_zh=CHECK_ZH[code], text_zh=text, value=value, target=target, event_ids=event_ids))

    decisions = [r for r in file.enforcements if start <= r.decided_on <= day]
    if decisions:
        add("enforcement", f"验收前受行政处罚 {len(decisions)} 件：" + "；".join(
            f"{r.decision_no}（{r.decided_on.isoformat()}，{penalties_text(r.penalties)[0] or '处罚内容未载明'}）" for r in decisions),
            [r.event_id for r in decisions], float(len(decisions)))
    judged = sorted((s for s in file.final_samples() if start <= s.sampled_on <= day and s.judgement is not None
                     and s.judgement.verdict in ("pass", "fail")), key=lambda s: (s.sampled_on, s.sample_no))
    target = kpis(file, pol)["sampling_pass_rate"]["target"]
    if judged:
        failed = [s for s in judged if s.judgement.verdict == "fail"]  # type: ignore[union-attr]
        rate = 1 - len(failed) / len(judged)
        if not rate > target:  # as the KPI: above the provincial average
            which = "：" + "、".join(s.sample_no for s in failed) if failed else ""
            add("overall_pass_rate", f"全部抽检合格率 {rate:.1%}（{len(judged)} 批，不合格 {len(failed)} 批{which}），"
                f"未高于目标 {target:.1%}（省级抽检合格率指标的目标）", [s.event_id for s in failed], rate, target)
    entry = next((h for h in reversed(file.risk.history) if rules.local_date(h.as_of) <= day), None)
    if entry is not None and entry.grade in pol.acceptance_risk_grades:
        why = "；".join(reasons_zh(entry, limit=2))
        add("risk_grade", f"验收时风险等级 {entry.grade}级（风险分 {entry.score:g}，{rules.local_date(entry.as_of).isoformat()} 评定"
            + (f"；{why}" if why else "") + "）", [entry.cause_event_id], entry.score)
    complaints = [x for x in file.complaints if x.verified and start <= rules.local_date(x.received_at) <= day]
    if len(complaints) >= pol.acceptance_verified_complaints:
        add("complaints_verified", f"验收前经核实投诉 {len(complaints)} 件：" + "、".join(
            f"{x.complaint_id}（{rules.local_date(x.received_at).isoformat()}）" for x in complaints),
            [x.event_id for x in complaints], float(len(complaints)))
    return out


def _gap_text(k: dict[str, Any]) -> str:
    if "basis_zh" in k:  # the sampling pass rate: above the provincial average, over the provincial samples
        return f"{k['label_zh']}（{k['basis_zh']}，{k['value']:.1%}，目标高于 {k['target']:.1%}）"
    return f"{k['label_zh']}（{k['value']:.1%}，目标不低于 {k['target']:.1%}）"


def _campaign_sampling(file: "CreditFile", pol: "CampaignPolicy") -> dict[str, Any]:
    """The provincial samples' pass rate (the KPI's value), which samples it counted, and the rate
    over every sample (county and national tasks too) for the table."""
    judged = [(s.judgement.verdict == "pass", pol.is_provincial(s.task_source)) for s in file.final_samples()
              if (pol.starts_on is None or s.sampled_on >= pol.starts_on)
              and s.judgement is not None and s.judgement.verdict in ("pass", "fail")]
    provincial = [ok for ok, prov in judged if prov]
    n, passed = len(provincial), sum(provincial)
    return {
        "value": _ratio(passed, n), "samples": n, "passed": passed,
        "basis_zh": f"省级抽检 {n} 批（合格 {passed} 批）" if n else "无省级抽检数据",
        "all_samples": len(judged), "all_value": _ratio(sum(ok for ok, _ in judged), len(judged)),
    }


def progress_row(file: "CreditFile", pol: "CampaignPolicy") -> dict[str, Any]:
    """One line of the progress table (进度表)."""
    c = file.campaign
    stage = next((s for s in reversed(STAGES) if s in c.stages), None)
    k = kpis(file, pol)
    profile = file.profile
    ones = three_ones(c, pol)
    return {
        "enterprise_id": file.enterprise_id,
        "name": profile.name if profile else None,
        "category": profile.category if profile else None,
        "town": profile.town if profile else None,
        "starting_tier": c.starting_tier,
        "tier": c.tier or (profile.campaign_tier if profile else None),
        "commitment_signed_on": c.commitment_signed_on.isoformat() if c.commitment_signed_on else None,
        "stage": stage,
        "stage_zh": STAGE_ZH[stage] if stage else "未启动",
        "stages": {s: d.isoformat() for s, d in c.stages.items()},
        "three_ones": ones,
        "kpis": k,
        "kpis_met": sum(1 for v in k.values() if v["met"]),
        "kpis_known": sum(1 for v in k.values() if v["met"] is not None),
        "comparison_tests": len(c.comparison_tests),
        "comparison_unsatisfactory": sum(1 for t in c.comparison_tests if not t.satisfactory),
        "accepted_on": c.accepted_on.isoformat() if c.accepted_on else None,
        # accepted, yet a KPI misses its target now, or the record up to the acceptance gives pause: a second look
        "accepted_with_gaps": ([v["label_zh"] for v in k.values() if v["met"] is False] + [x.label_zh for x in c.acceptance_checks]
                               if c.accepted_on else []),
        "acceptance_checks": [x.model_dump(mode="json") for x in c.acceptance_checks] if c.accepted_on else [],
        "acceptance_gaps_zh": "；".join([_gap_text(v) + "未达标" for v in k.values() if v["met"] is False]
                                       + [x.text_zh for x in c.acceptance_checks]) if c.accepted_on else "",
        "upgraded": bool(c.starting_tier and c.tier and c.tier < c.starting_tier),
    }


def county_progress(state: "CountyState", pol: "CampaignPolicy", towns: list[str] | None = None) -> dict[str, Any]:
    """The progress table of every registered enterprise, and the county's summary."""
    rows = [progress_row(f, pol) for _, f in sorted(state.files.items())
            if f.profile is not None and (not towns or f.profile.town in towns)]
    n = len(rows)
    reached = {s: sum(1 for r in rows if s in r["stages"]) for s in STAGES}
    kpi_met = {}
    for key in KPI_ZH:
        known = [r["kpis"][key]["met"] for r in rows if r["kpis"][key]["met"] is not None]
        kpi_met[key] = {"label_zh": KPI_ZH[key], "met": sum(known), "known": len(known)}
    no_provincial = n - kpi_met["sampling_pass_rate"]["known"]
    kpi_met["sampling_pass_rate"]["basis_zh"] = "仅计省级抽检" + (f"，{no_provincial} 家无省级抽检数据" if no_provincial else "")
    summary = {
        "enterprises": n,
        "stages": [{"stage": s, "stage_zh": STAGE_ZH[s], "reached": reached[s]} for s in STAGES],
        "kpis": kpi_met,
        "tiers_at_start": _count(r["starting_tier"] for r in rows),
        "tiers_now": _count(r["tier"] for r in rows),
        "upgraded": sum(1 for r in rows if r["upgraded"]),
        "accepted": sum(1 for r in rows if r["accepted_on"]),
        "accepted_with_gaps": sum(1 for r in rows if r["accepted_with_gaps"]),
        # per KPI or check: how many accepted enterprises it makes one to check
        "accepted_with_gaps_by": dict(sorted(_tally(label for r in rows for label in r["accepted_with_gaps"]).items(), key=lambda kv: (-kv[1], kv[0]))),
    }
    return {"summary": summary, "rows": rows}


def _tally(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        key = v or "unrated"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


TABLE_COLUMNS = [
    "enterprise_id", "name", "town", "category", "starting_tier", "tier", "commitment_signed_on", "stage", "stage_zh",
    "training_and_exam", "self_inspection", "comparison_test", "training_rate", "exam_first_pass_rate",
    "key_posts_certified_rate", "sampling_pass_rate", "provincial_samples", "sampling_pass_rate_all", "kpis_met", "kpis_known",
    "accepted_on", "acceptance_gaps_zh",
]
"""The progress table's columns for CSV, the machine format: codes (``stage``: ``acceptance``) beside
their labels (``stage_zh``), ``true``/``false``, rates as fractions, counts as numbers."""
SHEET_COLUMNS = [c for c in TABLE_COLUMNS if c != "stage"]
"""The progress table's columns for Excel (a sheet a supervisor prints: the stage's label, not its code)."""
TABLE_HEADERS_ZH = {
    "enterprise_id": "企业编号", "name": "企业名称", "town": "乡镇/街道", "category": "食品类别", "starting_tier": "初始档次",
    "tier": "当前档次", "commitment_signed_on": "承诺书签订日期", "stage_zh": "所处阶段", "training_and_exam": "培训考试达标",
    "self_inspection": "开展自查", "comparison_test": "比对检验满意", "training_rate": "从业人员培训率",
    "exam_first_pass_rate": "考试一次通过率", "key_posts_certified_rate": "关键岗位持证率", "sampling_pass_rate": "省级抽检合格率",
    "provincial_samples": "省级抽检批次", "sampling_pass_rate_all": "全部抽检合格率",
    "kpis_met": "达标指标（项）", "kpis_known": "可评价指标（项）", "accepted_on": "验收通过日期", "acceptance_gaps_zh": "验收通过但须核实",
    "stage": "所处阶段",
}
"""Excel's header row (CSV keeps the column keys, for other systems)."""


def table_rows(progress: dict[str, Any], zh: bool = False) -> list[dict[str, Any]]:
    """The progress rows flattened: one cell per stage flag and KPI value (``zh``: categories and tiers in Chinese)."""
    out = []
    for r in progress["rows"]:
        flat = {k: r[k] for k in ("enterprise_id", "name", "town", "category", "starting_tier", "tier", "commitment_signed_on", "stage",
                                  "stage_zh", "accepted_on", "acceptance_gaps_zh", "kpis_met", "kpis_known")}
        if zh:
            flat["category"] = CATEGORY_ZH.get(flat["category"], flat["category"])
            # "A档", not a bare letter a reader could take for the risk grade (A级)
            flat["starting_tier"] = f"{flat['starting_tier']}档" if flat["starting_tier"] else "未分档"
            flat["tier"] = f"{flat['tier']}档" if flat["tier"] else "未分档"
        if zh:
            # (a sheet laid out with TABLE_COLUMNS has the stage twice, never its code: SHEET_COLUMNS leaves it out)
            flat["stage"] = flat["stage_zh"]
        # 是/否 for people; booleans for machines (true/false in the CSV)
        flat.update({k: ("是" if v else "否") if zh else bool(v) for k, v in r["three_ones"].items()})
        flat.update({k: (None if v["value"] is None else round(v["value"], 4)) for k, v in r["kpis"].items()})
        sampling = r["kpis"]["sampling_pass_rate"]
        flat["provincial_samples"] = sampling["samples"]
        flat["sampling_pass_rate_all"] = None if sampling["all_value"] is None else round(sampling["all_value"], 4)
        if zh and sampling["value"] is None and sampling["all_samples"]:
            flat["sampling_pass_rate"] = sampling["basis_zh"]  # 无省级抽检数据: not a pass, and not a blank either
        out.append(flat)
    return out
