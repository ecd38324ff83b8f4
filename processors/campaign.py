"""The upgrade campaign (提档升级) in the credit file: stages, the "three ones", KPIs, progress.

Stages, each reached on the first event that fulfils it (dated by that event's document: signed_on, assessed_on, as_of, on):

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
(from ``starts_on``, else the earliest document date on its campaign record, ``started_on``) up to the acceptance day:

- a 行政处罚决定 was decided;
- the pass rate over all its samples (county and national tasks too, re-tests deciding) is not above
  the sampling KPI's target (the provincial average): an enterprise without provincial samples has no
  KPI value, and its failures would otherwise go unseen;
- its risk grade on the acceptance day was one of ``campaign.acceptance_risk_grades`` (C, D);
- at least ``campaign.acceptance_verified_complaints`` complaints were verified (经核实).

Each finding names its figure and the events it rests on; they are kept on the campaign record
(``acceptance_checks``) for the acceptance in force, by the documents' dates, not by when they were loaded: a
penalty decided, a sample taken or a complaint received on or before the acceptance day and filed after it is
checked as if it had come first (``recheck_acceptance``), and the grade is the one graded on or before the day.

A comparison test is satisfactory when |En| ≤ 1, En = (x_enterprise − x_lab) / √(U_e² + U_lab²),
if both expanded uncertainties are given (ISO/IEC 17043); else, for a colony count (an item whose
catalogue unit is a count: its dimension is one of ``COUNT_DIMENSIONS``, CFU/… or MPN/…), by its z score on the
log10 scale, z = (log10 x_enterprise − log10 x_lab) / ``comparison_log10_sigma_pt`` (counts scatter by orders of
magnitude, not by a share of the value), in ISO 13528's bands: |z| ≤ 2 满意, 2 < |z| < 3 可疑 (questionable: not
satisfactory for the three ones, not called 不满意 either), |z| ≥ 3 不满意; else when the relative deviation from the
lab's value is within ``comparison_max_deviation``.
"""
from __future__ import annotations

import datetime as dt
import math
import unicodedata
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from processors._build import FoldState
from processors.risk import CATEGORY_ZH, reasons_zh
from processors.warnings import penalties_text

if TYPE_CHECKING:  # pragma: no cover
    from processors.credit_file import CountyState, CreditFile
    from processors.step import Rules
    from schemas.policy import CampaignPolicy

STAGES = ("mobilisation", "tiering", "training", "assistance", "self_improvement", "acceptance")
ASSISTANCE_TIERS = ("C", "D")
"""The tiers a tiering (调查分档: the first survey or a later one) gives that get expert assistance (帮扶指导): the
campaign sends experts to the lower tiers only, so an enterprise only ever tiered A or B has nothing left undone without it."""
STAGE_ZH = {
    "mobilisation": "宣传发动（承诺书）", "tiering": "调查分档", "training": "培训观摩", "assistance": "帮扶指导",
    "self_improvement": "自我提升（三个一）", "acceptance": "检查验收",
}
KPI_ZH = {
    "training_rate": "从业人员培训率", "exam_first_pass_rate": "食品安全在线考试一次通过率",
    "key_posts_certified_rate": "关键岗位持证上岗率", "sampling_pass_rate": "省级抽检合格率",
}
KPI_PARTS = {"training_rate": ("staff_trained", "staff_total"), "exam_first_pass_rate": ("exam_first_pass", "exam_takers"),
             "key_posts_certified_rate": ("key_posts_certified", "key_posts")}
"""The training KPIs' counts (campaign.training): the part over the whole."""
UNCONFIRMED_ZH = "参考值（待核实）"
"""A target domain.md does not confirm: key posts certified has no figure there (100 % is ours), and
the provincial average is, unless the policy sets ``provincial_pass_rate``, 1 − the category's
reference failure rate, an estimate.  The training (90 %) and exam (80 %) targets are the campaign's."""


CHECK_ZH = {"enforcement": "行政处罚", "overall_pass_rate": "全部抽检合格率", "risk_grade": "风险等级", "complaints_verified": "经核实投诉"}
"""What a passed acceptance is checked against besides the KPIs, in the order they are listed."""

COUNT_DIMENSIONS = ("cfu_", "mpn_")
"""Prefixes of the unit dimensions (``schemas/standards/units.yaml``) that are microbial counts."""


class ComparisonTest(FoldState):
    on: dt.date
    lab: str
    item_code: str
    item_name: str | None = Field(default=None, description="the item's Chinese name in the catalogue (what a supervisor reads)")
    enterprise_value: float
    lab_value: float
    en: float | None = Field(default=None, description="E_n number, when both uncertainties were given")
    deviation: float | None = Field(default=None, description="relative deviation from the lab's value")
    log10_difference: float | None = Field(default=None, description="|log10 difference| from the lab's value, for a colony count")
    z: float | None = Field(default=None, description="z score of a colony count on the log10 scale (log10 difference / σpt)")
    band: str | None = Field(default=None, description="satisfactory | questionable | unsatisfactory (ISO 13528 by |z| for a colony count; "
                                                      "a test judged otherwise is one of the two ends); None: not judged yet")
    measure_zh: str | None = Field(default=None, description="how it was judged, in words (En, log10 difference or relative deviation)")
    satisfactory: bool | None = Field(description="None: waiting for the enterprise's registration (its category decides the item's "
                                                  "unit, and with it how the values compare)")
    note: str = Field(default="", description="the sender's note: which sample (样品批号) — two tests of one item, lab, day and "
                                               "values are two samples when their notes differ")
    event_id: str


class SelfInspection(FoldState):
    on: dt.date
    findings: int | None = None
    rectified: int | None = None
    note: str = Field(default="", description="the sender's note: which workshop or area (车间、库房) was inspected")
    event_id: str


class Assessment(FoldState):
    """One 调查分档 or 检查验收 as the bureau recorded it (who assessed, what they found)."""

    kind: str = Field(description="tiering | acceptance")
    on: dt.date
    tier: str
    passed: bool | None = None
    scores: dict[str, float] = Field(default_factory=dict, description="per dimension")
    assessor: str | None = None
    note: str = ""
    event_id: str


class AcceptanceCheck(FoldState):
    """Something a passed acceptance must be checked against (须核实): the figure and its events."""

    code: str = Field(description="enforcement | overall_pass_rate | risk_grade | complaints_verified")
    label_zh: str
    text_zh: str = Field(description="the figure, in words, with what it rests on")
    value: float | None = Field(default=None, description="the figure: decisions, pass rate, risk score or complaints")
    target: float | None = Field(default=None, description="the pass rate it had to be above")
    event_ids: list[str] = Field(default_factory=list, description="the events it rests on")


class Commitment(FoldState):
    """One commitment letter (承诺书) as the bureau recorded it."""

    signed_on: dt.date
    signatory: str | None = None
    document_no: str | None = None
    event_id: str


class Activity(FoldState):
    """A visit (观摩) or expert assistance (帮扶指导) as the bureau recorded it."""

    kind: str = Field(description="visit | expert_assistance")
    on: dt.date
    note: str = ""
    event_id: str


class CampaignRetraction(FoldState):
    """A ``campaign.retracted`` on file: the record it names does not count, on file when it came or arriving after it."""

    event_id: str = Field(description="the retraction's event id")
    retracted_event_id: str = Field(description="the campaign record withdrawn")
    reason: str
    occurred_at: dt.datetime
    by: str = Field(description="who retracted it, as the event's source names it (its name, else its id)")
    record_type: str | None = Field(default=None, description="the withdrawn record's event type, once it is on file (None: not yet)")
    record_zh: str | None = Field(default=None, description="what the record was, in words")
    record: dict[str, Any] | None = Field(default=None, description="the record as it was on file, kept (no longer counted)")


class CampaignRecord(FoldState):
    """One enterprise's way through the campaign."""

    commitment_signed_on: dt.date | None = Field(default=None, description="the earliest-signed letter's date")
    signatory: str | None = Field(default=None, description="the earliest-signed letter's signatory")
    document_no: str | None = Field(default=None, description="the earliest-signed commitment letter's number (承诺书编号)")
    commitments: list[Commitment] = Field(default_factory=list, description="every letter, as loaded (one number sent again is kept once)")
    starting_tier: str | None = Field(default=None, description="the earliest-dated tiering's tier")
    tier: str | None = Field(default=None, description="the newest assessment's tier by date (a failed acceptance's excepted, and a "
                                                       "passed one's a later failed acceptance reversed)")
    tier_assessed_on: dt.date | None = None
    scores: dict[str, float] = Field(default_factory=dict, description="the latest assessment's scores per dimension")
    training: dict[str, Any] | None = Field(default=None, description="the newest training report by its as_of")
    trainings: list[dict[str, Any]] = Field(default_factory=list, description="every training report, as loaded (with its event_id); "
                                                                                 "of two of one as_of, the later loaded corrects the earlier")
    activities: list[Activity] = Field(default_factory=list, description="every visit and expert assistance, as loaded")
    visits: int = Field(default=0, description="visits on file (from activities)")
    assistance: int = Field(default=0, description="expert assistance on file (from activities)")
    visit_dates: list[dt.date] = Field(default_factory=list, description="the visits' days (from activities)")
    assistance_dates: list[dt.date] = Field(default_factory=list, description="the expert assistance's days (from activities)")
    self_inspections: list[SelfInspection] = Field(default_factory=list)
    comparison_tests: list[ComparisonTest] = Field(default_factory=list)
    started_on: dt.date | None = Field(default=None, description="the earliest document date in force (signed_on, assessed_on, as_of, "
                                                                 "on): where the campaign's windows start when ``starts_on`` is not set")
    accepted_on: dt.date | None = Field(default=None, description="while the newest acceptance by date passed: the first passing date "
                                                                  "since the last failed one; None otherwise")
    acceptance_failed: int = Field(default=0, description="acceptance assessments that did not pass")
    assessments: list[Assessment] = Field(default_factory=list, description="every tiering and acceptance, as loaded")
    acceptance_checked_on: dt.date | None = Field(default=None, description="the passed acceptance the checks were made for")
    acceptance_checks: list[AcceptanceCheck] = Field(
        default_factory=list, description="what that acceptance must be checked against besides the KPIs (须核实), as found on its day")
    stages: dict[str, dt.date] = Field(default_factory=dict, description="stage -> the date of the document that completed it (the local day recorded, for one without a date)")
    carried_stages: dict[str, dt.date] = Field(
        default_factory=dict, description="stages a record folded before FOLD_VERSION 29 had reached, whose documents it did not keep "
                                          "(visit and assistance dates, earlier training reports): still reached, on their dates")
    event_ids: list[str] = Field(default_factory=list, description="every campaign event, oldest first")
    first_pass_doubts: list[dict[str, Any]] = Field(
        default_factory=list, description="training reports in force whose first-attempt passes rose by more than their exam takers "
                                          "since the report before (first_pass_rises): each figure stands, said 须核实")
    registered_tier: str | None = Field(default=None, description="the tier the registry gave (enterprise.registered / .updated), which "
                                                                 "an assessed tier stands over; None in a record folded before FOLD_VERSION 36")
    retractions: dict[str, CampaignRetraction] = Field(
        default_factory=dict, description="campaign.retracted on file, by the event id of the record withdrawn (campaign.retracted)")
    refused_retractions: list[CampaignRetraction] = Field(
        default_factory=list, description="campaign.retracted naming another retraction: kept on file, not registered as a "
                                          "retraction (a retraction cannot be retracted; retraction_of_retraction)")

    @model_validator(mode="before")
    @classmethod
    def _from_older_folds(cls, data: Any) -> Any:
        data = cls._from_fold_28(data)
        if isinstance(data, dict) and "activities" not in data and (data.get("visit_dates") or data.get("assistance_dates")):
            # (a record folded before FOLD_VERSION 36 kept the days of visits and assistance, not their events: kept as
            # activities without an event id, which a retraction cannot name — `qrisk rebuild` folds them again with theirs)
            data = dict(data)
            data["activities"] = ([{"kind": "visit", "on": d, "event_id": ""} for d in data.get("visit_dates") or []]
                                  + [{"kind": "expert_assistance", "on": d, "event_id": ""} for d in data.get("assistance_dates") or []])
        return data

    @classmethod
    def _from_fold_28(cls, data: Any) -> Any:
        """A record a Kafka worker kept from FOLD_VERSION 28 (a snapshot carried across the upgrade, until
        `qrisk rebuild --kafka`): it kept one letter, the newest training report, counts of visits and
        assistance without their dates, and the scores on the record, not on the assessment.  Read as this
        fold keeps them, so that the next campaign event settles what is on file, not an emptied record
        (it took every stage those documents had completed away)."""
        # (a dump of fold 28's record: every field then, none of this fold's; a record built in code is not one)
        if not isinstance(data, dict) or "trainings" in data or "carried_stages" in data or not {"event_ids", "assessments", "stages"} <= data.keys():
            return data
        data = dict(data)
        if data.get("commitment_signed_on") and not data.get("commitments"):
            data["commitments"] = [{"signed_on": data["commitment_signed_on"], "signatory": data.get("signatory"),
                                    "document_no": data.get("document_no"), "event_id": ""}]
        data["trainings"] = [data["training"]] if data.get("training") else []
        if data.get("scores") and data.get("assessments"):
            data["assessments"] = [dict(a, scores=data["scores"]) if a.get("on") == data.get("tier_assessed_on") and not a.get("scores") else a
                                   for a in data["assessments"]]
        # (检查验收 is settled from the assessments, which fold 28 kept: it may be lost to a later failure)
        data["carried_stages"] = {k: v for k, v in (data.get("stages") or {}).items() if k != "acceptance"}
        return data


# --------------------------------------------------------------------------- the fold


def on_campaign_event(file: "CreditFile", event: Any, rules: "Rules") -> list[tuple[str, dict[str, Any]]]:
    """Apply one campaign.* event; returns (effect kind, data) pairs."""
    c = file.campaign
    pol = rules.policy.campaign
    eid = str(event.event_id)
    c.event_ids.append(eid)
    was_accepted = c.accepted_on
    if event.event_type == "campaign.retracted":
        out = _retract(file, event, rules)
        if not out:
            return out  # (the same retraction again: nothing changes, nothing to say)
    else:
        retraction = c.retractions.get(eid)
        if retraction is not None:
            # withdrawn before it came: filed as it would have been, then taken off at once (its effects unsaid)
            _file_record(file, event, rules)
            return [("campaign.retracted", _withdrawn(c, retraction, rules, arrived=True))]
        out = _file_record(file, event, rules)
    _settle(file)
    apply_tier(file)
    p = event.payload
    # (an acceptance sent again is not filed: its checks, or the pass it reversed, were said when it first came)
    if event.event_type == "campaign.assessment" and p.kind == "acceptance" and any(a.event_id == eid for a in c.assessments):
        corrected = next((x for x in out if x[0] == "campaign.assessment_corrected"), None)
        if p.passed:
            if c.accepted_on is not None and p.assessed_on >= c.accepted_on:
                # (a pass loaded late behind a later failure does not stand: nothing of it to check)
                out += _passed_acceptance(file, p, pol, rules)
        elif was_accepted is not None and c.accepted_on is None and not (corrected is not None and p.assessed_on == was_accepted):
            # (a pass corrected the same day to a failure is a correction, said as one: no re-inspection took place)
            # a later acceptance failed: the earlier pass no longer stands (stage, accepted, upgraded follow the newest);
            # the pass named is the row's (the latest before the failure)
            passed = _reversed_pass(c)
            on = (passed.on if passed is not None else was_accepted).isoformat()
            out.append(("campaign.acceptance_reversed", {
                "accepted_on": on, "failed_on": p.assessed_on.isoformat(),
                "message_zh": f"{on} 验收通过，{p.assessed_on.isoformat()} 复查验收未通过：验收结论以最近一次为准"}))
    # an earlier document moves the campaign's start, a retraction or a new acceptance which acceptance is in force
    # (one newly in force is said by its own effects: accepted_with_gaps, acceptance_reversed)
    rechecked = recheck_acceptance(file, rules)
    if rechecked is not None:
        out.append(("campaign.acceptance_rechecked", rechecked))
    return out + restaged(c, pol)


def restaged(c: CampaignRecord, pol: "CampaignPolicy") -> list[tuple[str, dict[str, Any]]]:
    """Settle the stages from the documents on file; the effects of what changed (reached, re-dated, lost).

    A stage is reached on the date of the documents that complete it (the letter signed, the assessment made,
    the report's date, the activity's day), not the day it was recorded; an earlier-dated document loaded later
    re-dates the stage, so the dates do not depend on loading order.  (A month-end cut, ``--as-of``, holds what
    was recorded by the cut: a December acceptance recorded in January is not in December's cut, and is dated
    in December in every table after it: README, "The upgrade campaign".)"""
    out: list[tuple[str, dict[str, Any]]] = []
    stages = _stage_dates(c, pol)
    for stage in STAGES:
        day, was = stages.get(stage), c.stages.get(stage)
        if day is not None and was is None:
            out.append(("campaign.stage_reached", {"stage": stage, "stage_zh": STAGE_ZH[stage], "on": day.isoformat()}))
        elif day is not None and day != was:
            out.append(("campaign.stage_redated", {"stage": stage, "stage_zh": STAGE_ZH[stage], "on": day.isoformat(),
                                                   "was": was.isoformat()}))  # type: ignore[union-attr]
        elif day is None and was is not None:
            # a pass a later failed acceptance reversed, a record retracted: the stage is no longer reached (the
            # dashboards count by the last of these)
            out.append(("campaign.stage_lost", {"stage": stage, "stage_zh": STAGE_ZH[stage], "was": was.isoformat()}))
    c.stages = stages
    return out


def _file_record(file: "CreditFile", event: Any, rules: "Rules") -> list[tuple[str, dict[str, Any]]]:
    """Put one campaign record (a letter, an assessment, a training report, an activity) on file; the effects it
    raises by itself."""
    c = file.campaign
    pol = rules.policy.campaign
    p = event.payload
    eid = str(event.event_id)
    et = event.event_type
    out: list[tuple[str, dict[str, Any]]] = []
    if et == "campaign.commitment":
        same = (_plain(p.document_no), p.signed_on, _plain(p.signatory))
        if any((_plain(x.document_no), x.signed_on, _plain(x.signatory)) == same for x in c.commitments):
            # one letter sent again (under a new event id): it is on file already.  (A letter without a number is
            # told by its date and signatory: a register loaded twice is not a second letter from every producer;
            # 李四(法定代表人) and 李四（法定代表人） are one signatory, as TDSJ－2026－002 and TDSJ-2026-002 are one number)
            return out
        # (one number with another date or signatory is a second letter as far as the file can tell: kept, and said)
        before = list(c.commitments)
        c.commitments.append(Commitment(signed_on=p.signed_on, signatory=p.signatory, document_no=p.document_no, event_id=eid))
        if before:
            # a second letter is kept and shown; the commitment dates from the earliest signed, and the
            # bureau hears of it (one letter per enterprise is what the campaign asks for)
            first = min(before, key=lambda x: x.signed_on)
            out.append(("campaign.second_commitment", {
                "field": "payload.document_no", "type": "second_commitment",
                "letters": [{"document_no": x.document_no, "signed_on": x.signed_on.isoformat()} for x in c.commitments],
                "reason": f"a commitment letter ({first.document_no or 'no number'}, signed {first.signed_on.isoformat()}) is on file: "
                          f"this one ({p.document_no or 'no number'}, signed {p.signed_on.isoformat()}) is kept beside it, and the "
                          "commitment dates from the earliest signed",
                "message_zh": f"已有承诺书 {first.document_no or '（无编号）'}（{first.signed_on.isoformat()} 签订），又收到承诺书 "
                              f"{p.document_no or '（无编号）'}（{p.signed_on.isoformat()} 签订）：两份均保留，承诺日期按最早签订的计，请核实"}))
    elif et == "campaign.assessment":
        if any(_conclusion(a) == _conclusion(p) for a in c.assessments):
            # the same assessment sent again (a register loaded twice, under new event ids), whether it is the one in force or
            # one a same-day correction replaced: on file already — not a correction to itself, nor the corrected one back
            return out
        # one of its kind on the same day on file already: this one, loaded later, corrects it (both kept, the later in force)
        corrected = next((a for a in reversed(c.assessments) if a.kind == p.kind and a.on == p.assessed_on), None)
        c.assessments.append(Assessment(kind=p.kind, on=p.assessed_on, tier=p.tier, passed=p.passed, scores=dict(p.scores), assessor=p.assessor,
                                        note=p.note, event_id=eid))
        start = _starting(c)
        out.append(("campaign.assessed", {"kind": p.kind, "tier": p.tier, "passed": p.passed,
                                          "starting_tier": start.tier if start else None}))
        if corrected is not None:
            out.append(("campaign.assessment_corrected", _correction_data(corrected, c.assessments[-1])))
    elif et == "campaign.training":
        report = {**p.model_dump(mode="json"), "event_id": eid}
        if any(_figures(t) == _figures(report) for t in c.trainings):
            # a report on file sent again (a register loaded twice, under new event ids): the one in force — not announced
            # as a correction to the very same figures — or one already corrected, most often an old register imported
            # again, which does not bring the corrected figures back (a correction made in error is retracted instead)
            return out
        # one of the same as_of on file already: this one, loaded later, corrects it (both kept, the later in force)
        corrected = next((t for t in reversed(c.trainings) if t["as_of"] == report["as_of"]), None)
        doubted = {x["as_of"] for x in c.first_pass_doubts}
        c.trainings.append(report)
        for rise in first_pass_rises(reports_in_force(c)):
            if rise["as_of"] not in doubted or rise["event_id"] == eid:  # (this report, or the one after it, newly in doubt)
                out.append(("campaign.first_pass_doubtful", {**rise, "field": "payload.exam_first_pass", "message_zh": rise["text_zh"]}))
        if corrected is not None:
            out.append(("campaign.training_corrected", {
                "as_of": report["as_of"], "corrects": corrected.get("event_id"),
                "message_zh": f"{report['as_of']} 的培训考试报告已更正：{_training_zh(corrected)} → {_training_zh(report)}"
                              f"（同一统计日期后报送的报告为更正，原报告存档、不再计入）"}))
    elif _on_file(c, p):
        # one activity sent again under a new event id (a register loaded twice): on file already, as a letter is — a
        # comparison test counted twice would count its 不满意 twice, and list it twice in the credit file
        return out
    elif p.kind in ("visit", "expert_assistance"):
        c.activities.append(Activity(kind=p.kind, on=p.on, note=p.note, event_id=eid))
    elif p.kind == "self_inspection":
        c.self_inspections.append(SelfInspection(on=p.on, findings=p.findings, rectified=p.rectified, note=p.note, event_id=eid))
    else:
        category = file.profile.category if file.profile else None
        if category is None and (p.enterprise_uncertainty is None or p.lab_uncertainty is None):
            # how to compare depends on the item's unit in the enterprise's category (a colony count on the log10 scale):
            # judged at registration, as a sample is (judge_pending_comparisons)
            c.comparison_tests.append(ComparisonTest(on=p.on, lab=p.lab, item_code=p.item_code, enterprise_value=float(p.enterprise_value),
                                                     lab_value=float(p.lab_value), satisfactory=None, measure_zh=PENDING_ZH, note=p.note,
                                                     event_id=eid))
            return out
        test = _judged(p, eid, category, rules)
        c.comparison_tests.append(test)
        out += _unsatisfactory(test, category, rules)
    return out


def _figures(report: dict[str, Any]) -> dict[str, Any]:
    """A training report's date and figures: what tells it from another report (not the event that carried it)."""
    return {k: v for k, v in report.items() if k != "event_id"}


def _conclusion(a: Any) -> tuple[Any, ...]:
    """An assessment's kind, day and what the assessors recorded (an Assessment on file or a campaign.assessment payload):
    what tells it from another (not the event that carried it)."""
    on = a.on if isinstance(a, Assessment) else a.assessed_on
    return (a.kind, on, a.tier, a.passed, dict(a.scores), _plain(a.assessor), _plain(a.note))


def _on_file(c: CampaignRecord, p: Any) -> bool:
    """Whether an activity of the same kind, day, values and note is on file: the same one sent again, not a second.
    (The note is where a sender says which sample or workshop: two samples both 未检出 compared the same day, or two
    workshops' self-inspections with nothing found, differ in nothing else, and are two.)"""
    if p.kind in ("visit", "expert_assistance"):
        return any((a.kind, a.on, _plain(a.note)) == (p.kind, p.on, _plain(p.note)) for a in c.activities)
    if p.kind == "self_inspection":
        same_inspection = (p.on, p.findings, p.rectified, _plain(p.note))
        return any((x.on, x.findings, x.rectified, _plain(x.note)) == same_inspection for x in c.self_inspections)
    # the uncertainties are not kept, only the En they give (a test judged without them has none)
    both = p.enterprise_uncertainty is not None and p.lab_uncertainty is not None
    en = (float(p.enterprise_value) - float(p.lab_value)) / math.hypot(p.enterprise_uncertainty, p.lab_uncertainty) if both else None
    same = (p.on, _plain(p.lab), p.item_code, float(p.enterprise_value), float(p.lab_value), en, _plain(p.note))
    return any((x.on, _plain(x.lab), x.item_code, x.enterprise_value, x.lab_value, x.en, _plain(x.note)) == same for x in c.comparison_tests)


PENDING_ZH = "待企业登记（确定食品类别）后判定"
"""A comparison test of an enterprise not registered yet, without both uncertainties: how it is judged depends on
the item's unit in the enterprise's category."""


def _judged(p: Any, eid: str, category: str | None, rules: "Rules") -> ComparisonTest:
    """A comparison test judged with the item's unit in ``category`` (the event carries no unit: the values are
    read in the catalogue's unit for the item)."""
    unit = rules.catalogue.item_unit(category, p.item_code) if category else None
    test = _comparison(p, eid, rules.policy.campaign, unit is not None and unit.dimension.startswith(COUNT_DIMENSIONS))
    named = rules.catalogue.item(category, p.item_code) if category else None
    if named is not None:
        test.item_name = named.name_zh
    return test


def _unsatisfactory(test: ComparisonTest, category: str | None, rules: "Rules") -> list[tuple[str, dict[str, Any]]]:
    """campaign.comparison_unsatisfactory, or campaign.comparison_questionable for a colony count in the 可疑 band."""
    if test.satisfactory is not False:
        return []
    item = rules.catalogue.item(category, test.item_code) if category else None
    unit = rules.catalogue.item_unit(category, test.item_code) if category else None
    u = f" {unit.display}" if unit is not None and unit.display else ""
    doubtful = questionable(test)
    return [("campaign.comparison_questionable" if doubtful else "campaign.comparison_unsatisfactory", {
        "item_code": test.item_code, "lab": test.lab, "enterprise_value": test.enterprise_value, "lab_value": test.lab_value,
        "en": test.en, "deviation": test.deviation, "log10_difference": test.log10_difference, "z": test.z, "band": test.band,
        "note": test.note,
        "message_zh": f"比对试验（{item.name_zh if item else test.item_code}，{test.lab}" + (f"，{test.note}" if test.note else "") + "）结果"
                      f"{'可疑' if doubtful else '不满意'}："
                      f"企业 {test.enterprise_value:g}{u}，实验室 {test.lab_value:g}{u}，{test.measure_zh}"
                      + ("；可疑结果不计为满意的比对试验，请查找原因，必要时重新比对" if doubtful else ""),
    })]


def judge_pending_comparisons(file: "CreditFile", rules: "Rules") -> list[tuple[str, dict[str, Any]]]:
    """At registration: the comparison tests that waited for the enterprise's category, judged now (and the stages
    they complete)."""
    c = file.campaign
    waiting = [i for i, x in enumerate(c.comparison_tests) if x.satisfactory is None]
    if not waiting or file.profile is None:
        return []
    out: list[tuple[str, dict[str, Any]]] = []
    category = file.profile.category
    for i in waiting:
        x = c.comparison_tests[i]
        sent = SimpleNamespace(on=x.on, lab=x.lab, item_code=x.item_code, enterprise_value=x.enterprise_value, lab_value=x.lab_value,
                               enterprise_uncertainty=None, lab_uncertainty=None, note=x.note)
        c.comparison_tests[i] = test = _judged(sent, x.event_id, category, rules)
        out += _unsatisfactory(test, category, rules)
    return out + restaged(c, rules.policy.campaign)


def _plain(text: str | None) -> str | None:
    """A name or number as compared: full-width brackets, letters and digits as their half-width forms (NFKC), no
    whitespace — 李四（法定代表人） and 李四 (法定代表人) are one signatory."""
    return None if text is None else "".join(unicodedata.normalize("NFKC", text).split())


def _training_zh(t: dict[str, Any]) -> str:
    return (f"培训 {t['staff_trained']}/{t['staff_total']} 人，考试 {t['exam_takers']} 人，一次通过 {t['exam_first_pass']} 人，"
            f"持证 {t['key_posts_certified']}/{t['key_posts']} 岗")


def first_pass_rises(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each report whose first-attempt passes exceed what the reports before it allow (by as_of, reports in force): a
    first attempt is made once, so the passes at it can grow only by those newly examined — a retake counted as a
    first pass (12/20 then 20/20 of the same 20 takers) would turn the KPI 达标.  What the reports allow runs on: a
    report in doubt allows only what its predecessor allowed plus its new takers, so a later report carrying the
    inflated figure forward (20/20 again in July) is in doubt too.  qrisk cannot tell it from staff turnover (two left,
    two new passed: takers unchanged), which the report's totals do not show: the figure stands, said 须核实
    (doubt_zh) until the office confirms it or sends the corrected report (the same as_of)."""
    out = []
    allowed = None  # the first passes the reports so far allow
    for before, t in zip(reports, reports[1:]):
        allowed = before["exam_first_pass"] if allowed is None else allowed
        new_takers = max(0, t["exam_takers"] - before["exam_takers"])
        most = allowed + new_takers
        if t["exam_first_pass"] > most:
            carried = allowed < before["exam_first_pass"]  # (the report before was in doubt itself)
            head = (f"一次通过人数 {t['exam_first_pass']} 人（{t['as_of']} 报告），上次报告（{before['as_of']}）的 {before['exam_first_pass']} 人"
                    f"已须核实、此前可信的为 {allowed} 人" if carried else
                    f"一次通过人数由 {before['exam_first_pass']} 人（{before['as_of']} 报告）增至 {t['exam_first_pass']} 人（{t['as_of']} 报告），"
                    f"增加 {t['exam_first_pass'] - before['exam_first_pass']} 人")
            out.append({
                "as_of": t["as_of"], "previous_as_of": before["as_of"], "first_pass": t["exam_first_pass"],
                "previous_first_pass": before["exam_first_pass"], "exam_takers": t["exam_takers"], "previous_exam_takers": before["exam_takers"],
                "most": most, "event_id": t.get("event_id"), "previous_event_id": before.get("event_id"),
                "text_zh": f"{head}，而参加考试人数由 {before['exam_takers']} 人变为 {t['exam_takers']} 人、新增 {new_takers} 人："
                           f"一次通过人数最多应为 {most} 人，可能将补考通过计入了一次通过，须核实（报告有误的，请以同一统计日期报送更正的报告）"})
        allowed = min(t["exam_first_pass"], most)
    return out


def reports_in_force(c: CampaignRecord) -> list[dict[str, Any]]:
    """The training reports by as_of, one a date: of two of one as_of, the one loaded later, which corrects the earlier."""
    by_day = {t["as_of"]: t for t in c.trainings}  # (the log's order: the later loaded stays)
    return [by_day[d] for d in sorted(by_day)]


# --------------------------------------------------------------------------- retractions (撤销提档升级记录)
#
# A campaign record filed under the wrong enterprise, or recorded in error, is withdrawn by the bureau's
# campaign.retracted naming its event id.  The log stays append-only: the record is taken off the lists the
# campaign is settled from and kept on the retraction (``CampaignRecord.retractions``, with the reason), so
# the stages, the tier, the three ones, the KPIs and the acceptance no longer count it (campaign.stage_lost
# or stage_redated say what moved).  A retraction that comes before its record is kept, and the record is
# filed retracted as it arrives: either order gives the same file.  A second retraction of one record says nothing.

RECORD_ZH = {"campaign.commitment": "承诺书", "campaign.assessment": "评定记录", "campaign.training": "培训考试报告",
             "campaign.activity": "提档升级活动"}


def _take(c: CampaignRecord, target: str) -> tuple[str, str, dict[str, Any]] | None:
    """Take the record of event ``target`` off the campaign's lists: (its event type, what it was in words, the record)."""
    for i, x in enumerate(c.commitments):
        if x.event_id == target:
            del c.commitments[i]
            return "campaign.commitment", (f"承诺书 {x.document_no or '（无编号）'}（{x.signed_on.isoformat()} 签订"
                                           + (f"，签字人 {x.signatory}" if x.signatory else "") + "）"), x.model_dump(mode="json")
    for i, a in enumerate(c.assessments):
        if a.event_id == target:
            del c.assessments[i]
            return "campaign.assessment", f"{ASSESSMENT_KIND_ZH[a.kind]}（{a.on.isoformat()}，{_assessment_zh(a)}）", a.model_dump(mode="json")
    for i, t in enumerate(c.trainings):
        if t.get("event_id") == target:
            del c.trainings[i]
            return "campaign.training", (f"培训考试报告（{t['as_of']}：培训 {t['staff_trained']}/{t['staff_total']} 人，"
                                         f"考试 {t['exam_takers']} 人，一次通过 {t['exam_first_pass']} 人）"), dict(t)
    for i, v in enumerate(c.activities):
        if v.event_id == target:
            del c.activities[i]
            return "campaign.activity", f"{ACTIVITY_ZH[v.kind]}（{v.on.isoformat()}）", v.model_dump(mode="json")
    for i, s in enumerate(c.self_inspections):
        if s.event_id == target:
            del c.self_inspections[i]
            return "campaign.activity", f"自查（{s.on.isoformat()}）", s.model_dump(mode="json")
    for i, x in enumerate(c.comparison_tests):
        if x.event_id == target:
            del c.comparison_tests[i]
            return "campaign.activity", f"比对试验（{x.on.isoformat()}，{x.item_name or x.item_code}）", x.model_dump(mode="json")
    return None


ACTIVITY_ZH = {"visit": "观摩", "expert_assistance": "帮扶指导", "self_inspection": "自查", "comparison_test": "比对试验"}


def _retract(file: "CreditFile", event: Any, rules: "Rules") -> list[tuple[str, dict[str, Any]]]:
    c = file.campaign
    p = event.payload
    eid = str(event.event_id)
    target = str(p.retracted_event_id)
    retraction = CampaignRetraction(event_id=eid, retracted_event_id=target, reason=p.reason, occurred_at=event.occurred_at,
                                    by=event.source.name or event.source.id)
    out: list[tuple[str, dict[str, Any]]] = []
    waiting = c.retractions.get(eid)
    if waiting is not None and waiting.record is None:
        # a retraction came first naming this one (kept waiting for a record): it named a retraction, which cannot be
        # retracted — refused now, as it would have been had it come second
        del c.retractions[eid]
        c.refused_retractions.append(waiting)
        out.append(_refused(waiting))
    if target in _retraction_ids(c):
        c.refused_retractions.append(retraction)
        return out + [_refused(retraction)]
    if target in c.retractions:
        return out  # retracted already: the same decision again, nothing to say
    c.retractions[target] = retraction
    return out + [("campaign.retracted", _withdrawn(c, retraction, rules, arrived=False))]


def _retraction_ids(c: CampaignRecord) -> set[str]:
    return {r.event_id for r in c.retractions.values()} | {r.event_id for r in c.refused_retractions}


def _refused(retraction: CampaignRetraction) -> tuple[str, dict[str, Any]]:
    """``campaign.retraction_of_retraction``: a campaign.retracted naming another retraction is kept on file and registers
    nothing — undoing a retraction would put back a record the bureau said was wrong, with no record of who decided so;
    the way back is the record sent again under a new event id."""
    target = retraction.retracted_event_id
    return ("campaign.retraction_of_retraction", {
        "type": "retraction_of_retraction", "field": "payload.retracted_event_id", "retracted_event_id": target,
        "retraction_event_id": retraction.event_id, "reason": retraction.reason, "by": retraction.by,
        "message_zh": f"事件 {target} 是一条撤销记录，撤销不能再撤销；如撤销有误，请以新的 event_id 重新报送原记录"
                      f"（本条撤销事件 {retraction.event_id} 存档、不作为撤销登记）"})


def _withdrawn(c: CampaignRecord, retraction: CampaignRetraction, rules: "Rules", arrived: bool) -> dict[str, Any]:
    """Take the retracted record off the lists (when on file): the ``campaign.retracted`` effect's data."""
    target = retraction.retracted_event_id
    taken = _take(c, target)
    if taken is not None:
        retraction.record_type, retraction.record_zh, retraction.record = taken
    said = f"由{retraction.by}撤销（原因：{retraction.reason}）"
    if arrived:
        day = rules.local_date(retraction.occurred_at).isoformat()
        what = retraction.record_zh or "提档升级记录"
        text = (f"{what}（事件 {target}）到达，但已于 {day} {said}：该记录存档、不计入提档升级进度和指标；"
                f"如属于另一企业，请以该企业编号重新报送")
    elif taken is not None:
        text = f"{retraction.record_zh}（事件 {target}）已{said}：该记录存档、不再计入提档升级进度和指标"
    elif target in c.event_ids:
        text = (f"事件 {target} 与在档记录相同（重复报送），未单独计入：撤销已登记，在档的记录不受影响；"
                f"如要撤销在档的记录，请以其事件编号撤销")
    else:
        text = (f"本企业名下尚无事件 {target} 的提档升级记录：{said}已登记，该记录到达时即按撤销存档、不计入；"
                f"请核对事件编号和企业编号")
    return {"retracted_event_id": target, "retraction_event_id": retraction.event_id, "record_type": retraction.record_type,
            "record_zh": retraction.record_zh, "reason": retraction.reason, "by": retraction.by,
            "pending": taken is None and not arrived and target not in c.event_ids, "arrived_after": arrived, "message_zh": text}


def recheck_acceptance(file: "CreditFile", rules: "Rules") -> dict[str, Any] | None:
    """The checks (须核实) of the passed acceptance in force, made again from what is on file now: what the checks read is
    dated (a penalty's decided_on, a sample's sampled_on, a complaint's receipt, the campaign's start), so a record dated on
    or before the acceptance day and filed after it counts as if it had come first — the loading order changes nothing.
    Run after every campaign record and after each late record of the kinds the checks read (processors.step).  Returns
    the ``campaign.acceptance_rechecked`` data when the checks of the same acceptance changed (None otherwise: unchanged,
    or another acceptance in force, which its own effects say)."""
    c = file.campaign
    was_on, was = c.acceptance_checked_on, list(c.acceptance_checks)
    passes = [a for a in _acceptances(c) if a.passed and c.accepted_on is not None and a.on >= c.accepted_on]
    if not passes:
        c.acceptance_checked_on, c.acceptance_checks = None, []
        return None
    day = passes[-1].on
    checks = acceptance_checks(file, day, rules.policy.campaign, rules, passes[-1].event_id)
    history = file.risk.history
    if day == was_on and (not history or rules.local_date(history[0].as_of) > day):
        # the grade history kept (risk.history_max) no longer reaches back to the day: the grade found then stands
        order = list(CHECK_ZH)
        checks = sorted([x for x in checks if x.code != "risk_grade"] + [x for x in was if x.code == "risk_grade"],
                        key=lambda x: order.index(x.code))
    c.acceptance_checked_on, c.acceptance_checks = day, checks
    if day != was_on or checks == was:
        return None
    before, after = {x.code: x for x in was}, {x.code: x for x in checks}
    said = []
    for code, label in CHECK_ZH.items():
        b, a = before.get(code), after.get(code)
        if a is not None and b is None:
            said.append(f"新增{label}：{a.text_zh}")
        elif a is None and b is not None:
            said.append(f"{label}一项不再计入（原为：{b.text_zh}）")
        elif a is not None and b is not None and a != b:
            said.append(f"{label}：{a.text_zh}（原为：{b.text_zh}）")
    return {"accepted_on": day.isoformat(), "added": [x.code for x in checks if x.code not in before],
            "removed": [x.code for x in was if x.code not in after],
            "changed": [x.code for x in checks if x.code in before and before[x.code] != x],
            "checks": [x.model_dump(mode="json") for x in checks],
            "message_zh": f"{day.isoformat()} 检查验收通过的须核实事项已按验收日及以前的记录重新核对（后报送的记录计入）：" + "；".join(said)}


ASSESSMENT_KIND_ZH = {"tiering": "调查分档", "acceptance": "检查验收"}


def _assessment_zh(a: Assessment) -> str:
    """"C档", "通过，B档", "未通过，A档": what an assessment concluded."""
    tier = f"{a.tier}档"
    return tier if a.kind == "tiering" else ("通过，" if a.passed else "未通过，") + tier


def _correction_data(was: Assessment, now: Assessment) -> dict[str, Any]:
    """``campaign.assessment_corrected``: a same-day assessment of the same kind loaded later replaces the earlier."""
    kind = ASSESSMENT_KIND_ZH[now.kind]
    return {"kind": now.kind, "on": now.on.isoformat(), "corrects": was.event_id, "was": {"tier": was.tier, "passed": was.passed},
            "now": {"tier": now.tier, "passed": now.passed},
            "message_zh": f"{now.on.isoformat()} 的{kind}记录已更正：{_assessment_zh(was)} → {_assessment_zh(now)}"
                          f"（同日后报送的记录为更正，原记录事件 {was.event_id} 存档、不再计入）"}


def _passed_acceptance(file: "CreditFile", p: Any, pol: "CampaignPolicy", rules: "Rules") -> list[tuple[str, dict[str, Any]]]:
    """The checks of a passed acceptance (须核实): the assessors may pass an enterprise the KPIs, the
    "three ones" or its record over the campaign do not bear out, and the supervisor must see it."""
    c = file.campaign
    # (the record keeps the checks of the acceptance in force: recheck_acceptance, after this)
    checks = acceptance_checks(file, p.assessed_on, pol, rules, c.assessments[-1].event_id)
    gaps = unmet_kpis(file, pol)
    undone = three_ones_gaps(c, pol)
    short = training_shortfall(c, pol)
    doubts = [v["doubt_zh"] for v in kpis(file, pol).values() if v.get("doubt_zh")] + ([short["text_zh"]] if short else [])
    if not (gaps or checks or undone or doubts):
        return []
    found = ([x["text_zh"] for x in undone] + (["、".join(gap_text(g) for g in gaps) + "未达标"] if gaps else []) + doubts
             + [x.text_zh for x in checks])
    return [("campaign.accepted_with_gaps", {
        "kpis_unmet": [g["label_zh"] for g in gaps], "three_ones_missing": [x["code"] for x in undone],
        "checks": [x.model_dump(mode="json") for x in checks], "tier": p.tier,
        "message_zh": "检查验收通过，但" + "；".join(found) + "，请核实验收结论"})]


def _in_force(c: CampaignRecord, kind: str) -> list[Assessment]:
    """The assessments of ``kind`` by date, one a day: of two on one day the one loaded later, which corrects the
    earlier (a tier or a result mistyped and sent again the same day) — the starting tier, the tier now, the
    acceptance's result and the count of failed ones all read the same record."""
    by_day = {a.on: a for a in c.assessments if a.kind == kind}  # (the log's order: the later loaded stays)
    return [by_day[d] for d in sorted(by_day)]


def corrected_assessments(c: CampaignRecord) -> dict[str, str]:
    """event id of an assessment a same-day one of its kind loaded later corrected -> the correcting one's event id."""
    out: dict[str, str] = {}
    last: dict[tuple[str, dt.date], Assessment] = {}
    for a in c.assessments:
        earlier = last.get((a.kind, a.on))
        if earlier is not None:
            out[earlier.event_id] = a.event_id
        last[(a.kind, a.on)] = a
    return out


def _starting(c: CampaignRecord) -> "Assessment | None":
    """The earliest-dated tiering (of two on one day, the one loaded later: the correction): the starting tier whatever the loading order."""
    tiered = _in_force(c, "tiering")
    return tiered[0] if tiered else None


def _acceptances(c: CampaignRecord) -> list[Assessment]:
    """The acceptances by date, one a day (of two on one day, the one loaded later: the correction)."""
    return _in_force(c, "acceptance")


def _settle(file: "CreditFile") -> None:
    """What the documents on file decide, whatever order they came in: the commitment (the earliest
    signed letter), the starting tier (the earliest tiering), the tier now (the newest tiering or passed
    acceptance a later failed acceptance does not reverse), accepted_on, the newest training report."""
    c = file.campaign
    if c.commitments:
        first = min(c.commitments, key=lambda x: x.signed_on)
        c.commitment_signed_on, c.signatory, c.document_no = first.signed_on, first.signatory, first.document_no
    else:  # (every letter retracted)
        c.commitment_signed_on = c.signatory = c.document_no = None
    c.visit_dates = [a.on for a in c.activities if a.kind == "visit"]
    c.assistance_dates = [a.on for a in c.activities if a.kind == "expert_assistance"]
    c.visits, c.assistance = len(c.visit_dates), len(c.assistance_dates)
    start = _starting(c)
    c.starting_tier = start.tier if start else None
    done = _acceptances(c)
    failed_at = max((i for i, a in enumerate(done) if not a.passed), default=-1)
    standing = done[failed_at + 1:]  # the passes since the last failure
    c.accepted_on = standing[0].on if standing else None
    c.acceptance_failed = sum(1 for a in done if not a.passed)
    # the newest by date decides the tier (one loaded late does not undo a later one); a failed acceptance
    # moves nobody up, and undoes the passes before it
    order = {id(a): i for i, a in enumerate(c.assessments)}
    candidates = _in_force(c, "tiering") + standing
    if candidates:
        newest = max(candidates, key=lambda a: (a.on, order[id(a)]))
        c.tier, c.scores, c.tier_assessed_on = newest.tier, dict(newest.scores), newest.on
    else:  # (never assessed, or every assessment retracted: the registry's tier is the enterprise's again, apply_tier)
        c.tier, c.scores, c.tier_assessed_on = None, {}, None
    reports = reports_in_force(c)
    c.training = reports[-1] if reports else None  # the newest (of two of one as_of, the correction)
    c.first_pass_doubts = first_pass_rises(reports)
    c.started_on = campaign_start(c)


def campaign_start(c: CampaignRecord) -> dt.date | None:
    """The earliest date on a campaign document in force (the letter signed, an assessment, a report's as_of, an
    activity's day): where the campaign's windows begin for this enterprise when ``campaign.starts_on`` is not set.  By
    the documents, not the day the first was typed in: a letter signed 2026-01-10 and entered in June starts the
    campaign on 2026-01-10, and a retracted one no longer starts it."""
    days = ([x.signed_on for x in c.commitments] + [a.on for a in c.assessments] + [dt.date.fromisoformat(t["as_of"]) for t in c.trainings]
            + [a.on for a in c.activities] + [x.on for x in c.self_inspections] + [x.on for x in c.comparison_tests]
            + list(c.carried_stages.values()))
    return min(days, default=None)


def _stage_dates(c: CampaignRecord, pol: "CampaignPolicy") -> dict[str, dt.date]:
    """Each stage reached and its date: the date by which the documents that complete it were all there
    (for the three ones, the latest of the three's earliest dates; for 检查验收, accepted_on)."""
    out: dict[str, dt.date] = {}

    def put(stage: str, days: Any) -> None:
        days = [d for d in days if d is not None]
        if days:
            out[stage] = min(days)

    put("mobilisation", [x.signed_on for x in c.commitments])
    put("tiering", [a.on for a in c.assessments if a.kind == "tiering"])
    # (a training report a later one of its as_of corrected completes nothing: the correction is the report)
    reports = reports_in_force(c)
    put("training", c.visit_dates + [dt.date.fromisoformat(t["as_of"]) for t in reports if t["staff_trained"] > 0])
    put("assistance", c.assistance_dates)
    ones = [min((dt.date.fromisoformat(t["as_of"]) for t in reports if _report_done(t, pol)), default=None),
            min((x.on for x in c.self_inspections), default=None),
            min((x.on for x in c.comparison_tests if x.satisfactory), default=None)]
    done = [d for d in ones if d is not None]
    if len(done) == len(ones):
        out["self_improvement"] = max(done)
    if c.accepted_on is not None:
        out["acceptance"] = c.accepted_on
    for stage, day in c.carried_stages.items():  # (what a record of fold 28 had reached stays reached)
        out[stage] = min(out[stage], day) if stage in out else day
    return {s: out[s] for s in STAGES if s in out}


def apply_tier(file: "CreditFile") -> None:
    """The assessed tier is the enterprise's campaign tier (and the risk grade's credit term), also
    over a registration or an update that arrives later with the registry's older tier; without one (never
    assessed, or every assessment retracted) the registry's tier is."""
    c = file.campaign
    tier = c.tier or c.registered_tier
    if tier is not None and file.profile is not None and file.profile.campaign_tier != tier:
        file.profile = file.profile.model_copy(update={"campaign_tier": tier})


def registry_tier(file: "CreditFile", tier: str) -> None:
    """enterprise.registered / .updated gave ``tier``: kept beside the assessed one, which stands over it."""
    file.campaign.registered_tier = tier
    apply_tier(file)


def _comparison(p: Any, event_id: str, pol: "CampaignPolicy", count: bool) -> ComparisonTest:
    """``count``: the item is a colony count (CFU/…, MPN/…), compared on the log10 scale."""
    x, ref = float(p.enterprise_value), float(p.lab_value)
    en = deviation = log_diff = z = None
    band: str | None = None
    if p.enterprise_uncertainty is not None and p.lab_uncertainty is not None:
        en = (x - ref) / math.hypot(p.enterprise_uncertainty, p.lab_uncertainty)
        # (0.9 − 0.6 over U 0.18 and 0.24 is 1.0000000000000002: exactly on the limit is satisfactory)
        ok = abs(en) <= 1.0 + BOUND_TOLERANCE
        measure = en_zh(en)
    elif count:
        sigma = pol.comparison_log10_sigma_pt
        if x > 0 and ref > 0:
            delta = math.log10(x) - math.log10(ref)
            log_diff, z = abs(delta), delta / sigma
            band = z_band(z)
            ok = band == "satisfactory"
            measure = z_zh(log_diff, z, sigma)
        else:  # a count of 0 has no logarithm: both none is agreement, one none is not
            ok = x == ref
            measure = "双方均未检出" if ok else "一方未检出、另一方检出，无法按对数比较"
    else:
        deviation = abs(x - ref) / abs(ref) if ref != 0 else (0.0 if x == 0 else math.inf)
        # (1.1 against 1.0 is 0.10000000000000009: exactly on the limit is satisfactory)
        ok = deviation <= pol.comparison_max_deviation + BOUND_TOLERANCE
        if not math.isfinite(deviation):
            deviation = None  # (JSON has no infinity) a lab value of 0 against a non-zero result: unsatisfactory
            measure = "实验室结果为 0，无法计算相对偏差"
        else:
            measure = deviation_zh(deviation, pol.comparison_max_deviation)
    return ComparisonTest(on=p.on, lab=p.lab, item_code=p.item_code, enterprise_value=x, lab_value=ref, en=en,
                          deviation=deviation, log10_difference=log_diff, z=z, band=band or ("satisfactory" if ok else "unsatisfactory"),
                          measure_zh=measure, satisfactory=ok, note=p.note, event_id=event_id)


BOUND_TOLERANCE = 1e-9
"""How far past a comparison's limit (|En| 1, the relative deviation's maximum, |z| 2 and 3) a figure may be and still
count as on it: floating point puts a result exactly on the limit a few units of the last place beyond it."""

Z_BANDS_ZH = "|z| ≤ 2 满意，2 < |z| < 3 可疑，|z| ≥ 3 不满意"
"""ISO 13528 / ISO/IEC 17043's bands of a z score, said beside every colony count's z."""


def z_band(z: float) -> str:
    """satisfactory (|z| ≤ 2), questionable (2 < |z| < 3: a warning signal, not a failure) or unsatisfactory (|z| ≥ 3)."""
    if abs(z) <= 2 + BOUND_TOLERANCE:
        return "satisfactory"
    return "questionable" if abs(z) < 3 - BOUND_TOLERANCE else "unsatisfactory"


def _on_limit_side(shown: float, limit: float, closed: bool) -> bool:
    """Whether ``shown`` is on the satisfactory (lower) side of ``limit``: up to it (``closed``), else short of it."""
    return shown <= limit if closed else shown < limit


def said_figure(v: float, limits: tuple[tuple[float, bool], ...], decimals: int = 2, percent: bool = False) -> str:
    """``v`` shown so that it reads on the side of each limit it was judged on, as the KPIs' ``_pct`` never shows a
    miss as meeting its target: z = −2.004 is 可疑, never "z = -2.00" beside |z| ≤ 2 满意; 10.04 % is not "10.0%" beside
    ≤ 10% 为满意.  ``limits``: (limit, closed) on |v| — closed, the limit itself is on the lower side (|En| ≤ 1), else
    the upper (|z| ≥ 3).  More decimals, up to 4, until the figure reads right; then cut toward its side (−2.999996 is
    −2.9999, short of 3).  ``percent``: ``v`` a fraction, shown as a percentage with the limits' fractions too."""
    scale = 100.0 if percent else 1.0
    raw = abs(v) * scale
    lower = [abs(v) <= limit + BOUND_TOLERANCE if closed else abs(v) < limit - BOUND_TOLERANCE for limit, closed in limits]
    sign = "-" if v < 0 else ""
    unit = "%" if percent else ""
    for d in range(decimals, 5):
        text = f"{raw:.{d}f}"
        # (the limit rounded alike: 100 × 0.1 is not exactly 10)
        if all(_on_limit_side(float(text), round(limit * scale, 9), closed) is low for (limit, closed), low in zip(limits, lower)):
            return f"{sign if float(text) else ''}{text}{unit}"
    below = next(low for (limit, closed), low in zip(limits, lower)
                 if _on_limit_side(float(f"{raw:.4f}"), round(limit * scale, 9), closed) is not low)
    cut = (math.floor if below else math.ceil)(raw * 10**4) / 10**4
    return f"{sign}{cut:.4f}{unit}"


def en_zh(en: float) -> str:
    """"En = 0.63（|En| ≤ 1 为满意）": an En number as it reads against its limit (``said_figure``)."""
    return f"En = {said_figure(en, ((1.0, True),))}（|En| ≤ 1 为满意）"


def deviation_zh(deviation: float, limit: float) -> str:
    """"相对偏差 4.9%（≤ 10% 为满意）": a relative deviation as it reads against the policy's limit (``said_figure``)."""
    return f"相对偏差 {said_figure(deviation, ((limit, True),), decimals=1, percent=True)}（≤ {100 * limit:g}% 为满意）"


def z_zh(log_diff: float, z: float, sigma: float) -> str:
    """A colony count's log10 difference and z score, each as it reads against the bands (2σpt and 3σpt: ``said_figure``)."""
    return (f"对数差 |lg企业 − lg实验室| = {said_figure(log_diff, ((2 * sigma, True), (3 * sigma, False)))}，σpt {sigma:g}，"
            f"z = {said_figure(z, ((2.0, True), (3.0, False)))}（{Z_BANDS_ZH}）")


def questionable(test: ComparisonTest) -> bool:
    """A comparison in the questionable band (可疑): not satisfactory for the three ones, and not called 不满意."""
    return test.satisfactory is False and test.band == "questionable"


def comparison_zh(test: ComparisonTest) -> str:
    """满意, 可疑, 不满意 or 待判定: a comparison test's result in words."""
    if test.satisfactory is None:
        return "待判定"
    return "满意" if test.satisfactory else ("可疑" if questionable(test) else "不满意")


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def _training_done(c: CampaignRecord, pol: "CampaignPolicy") -> bool:
    """全员培训考试: the whole staff trained and examined (``full_staff_rate``), a stricter bar than
    the training-rate KPI, which the campaign as a whole is measured by.  Done once a report in force showed it — the
    rule the stage is reached by, so a row never says 自我提升 beside 全员培训考试未完成; staff taken on since, whom a
    later report shows untrained, are said apart (training_shortfall)."""
    return _full_staff_report(c, pol) is not None


def _full_staff_report(c: CampaignRecord, pol: "CampaignPolicy") -> dict[str, Any] | None:
    """The earliest report in force that showed the whole staff trained and examined."""
    return next((t for t in reports_in_force(c) if _report_done(t, pol)), None)


def training_shortfall(c: CampaignRecord, pol: "CampaignPolicy") -> dict[str, Any] | None:
    """Full-staff training done (a report showed it), but the newest report shows staff untrained or unexamined — new
    staff, most likely: said 须核实 beside the three ones, not as 全员培训考试未完成 (None: nothing to say)."""
    done, t = _full_staff_report(c, pol), c.training
    if done is None or t is None or _report_done(t, pol):
        return None
    untrained, unexamined = t["staff_total"] - t["staff_trained"], t["staff_total"] - t["exam_takers"]
    parts = [f"未培训 {untrained} 人" if untrained > 0 else "", f"未参加考试 {unexamined} 人" if unexamined > 0 else ""]
    said = "、".join(x for x in parts if x) or "培训考试未达全员"
    return {"code": "training_shortfall", "label_zh": "新增从业人员培训考试", "untrained": max(untrained, 0), "unexamined": max(unexamined, 0),
            "as_of": t["as_of"], "done_as_of": done["as_of"],
            "text_zh": f"新增从业人员{said}，须核实（{t['as_of']} 报告：培训 {t['staff_trained']}/{t['staff_total']} 人，考试 "
                       f"{t['exam_takers']}/{t['staff_total']} 人；全员培训考试已于 {done['as_of']} 完成）"}


def _report_done(t: dict[str, Any], pol: "CampaignPolicy") -> bool:
    """Whether one training report shows the whole staff trained and examined."""
    if t["exam_takers"] == 0:
        return False
    trained, examined = _ratio(t["staff_trained"], t["staff_total"]), _ratio(t["exam_takers"], t["staff_total"])
    return trained is not None and examined is not None and min(trained, examined) >= pol.full_staff_rate - 1e-12


def three_ones(c: CampaignRecord, pol: "CampaignPolicy") -> dict[str, bool]:
    return {
        "training_and_exam": _training_done(c, pol),
        "self_inspection": bool(c.self_inspections),
        "comparison_test": any(t.satisfactory for t in c.comparison_tests),
    }


def stage_applies(stage: str, c: CampaignRecord) -> bool | None:
    """Whether ``stage`` is one the enterprise goes through: 帮扶指导 only for an enterprise a tiering placed in
    ``ASSISTANCE_TIERS`` — the first survey or a later one (复核降档 B→C makes it a C-tier enterprise the experts go
    to) — or when it was given anyway; None while it is not tiered yet."""
    if stage != "assistance" or c.assistance > 0 or "assistance" in c.stages:
        return True
    tiers = tiering_tiers(c)
    if not tiers:
        return None
    return any(t in ASSISTANCE_TIERS for t in tiers)


def tiering_tiers(c: CampaignRecord) -> list[str]:
    """The tiers the tierings in force gave, in date order, each once."""
    return list(dict.fromkeys(a.tier for a in _in_force(c, "tiering")))


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
        out[k] = {"label_zh": KPI_ZH[k], "value": v, "target": targets[k], "met": met, "target_confirmed": target_confirmed(k, pol)}
        if k in KPI_PARTS:  # the counts beside the rate, and the report they come from
            part, whole = (t.get(x, 0) for x in KPI_PARTS[k])
            out[k].update({"part": part, "whole": whole, "as_of": t.get("as_of")})
    out["sampling_pass_rate"].update(sampling)
    out["sampling_pass_rate"].update({"part": sampling["passed"], "whole": sampling["samples"]})
    if t and t.get("exam_takers", 0) < t.get("staff_total", 0):
        # the rate is over those who sat the exam: say how many should have (应考) beside them (实考)
        out["exam_first_pass_rate"]["takers_zh"] = f"应考 {t['staff_total']} 人，实考 {t['exam_takers']} 人"
    rise = next((x for x in file.campaign.first_pass_doubts if t and x["as_of"] == t["as_of"]), None)
    if rise is not None:  # (the figure stands, said to be checked: first_pass_rises)
        out["exam_first_pass_rate"]["doubt_zh"] = rise["text_zh"]
    for key, k in out.items():
        k["figure_zh"] = figure_text(k.get("part", 0), k.get("whole", 0), k["target"], above=key == "sampling_pass_rate")
        k["target_zh"] = target_text(k)
        k["met_zh"] = met_zh(k)
    return out


def target_confirmed(key: str, pol: "CampaignPolicy") -> bool:
    """False for a target domain.md does not confirm (``UNCONFIRMED_ZH``): the built-in 100 % of key
    posts certified, the provincial average estimated from the reference failure rate."""
    if key == "key_posts_certified_rate":
        return pol.key_posts_certified_rate != 1.0
    if key == "sampling_pass_rate":
        return pol.provincial_pass_rate is not None
    return True


def _pct(v: float, target: float | None = None, above: bool = False) -> str:
    """99.4%, and 100% rather than 100.0% (a target of all).  Against ``target`` (``above``: the rate must be above
    it, else at least it), with as many decimals as it takes for the figure to read as what it is: a miss is never
    rounded up to the target — 188/209 is 89.95%, not 90.0% beside 目标不低于 90.0% — nor a pass above the target down to it."""
    if v >= 1 - 1e-12:
        return "100%"
    if target is None:
        return f"{v:.1%}"
    met = v > target if above else v >= target - 1e-12
    for d in (1, 2, 3, 4):
        shown, aim = float(f"{100 * v:.{d}f}"), float(f"{100 * target:.{d}f}")
        if (shown > aim if above else shown >= aim) is met:
            return f"{100 * v:.{d}f}%"
    return f"{math.floor(100 * v * 10**4) / 10**4:.4f}%"  # (closer still: cut, not rounded)


def pct_decimals(v: float | None, target: float | None, above: bool = False) -> int:
    """How many decimals ``_pct`` shows of ``v``, at least one (a spreadsheet's number format follows it)."""
    if v is None:
        return 1
    return max(1, len(_pct(v, target, above).rstrip("%").partition(".")[2]))


def kpi_value_text(k: dict[str, Any]) -> str:
    """A KPI's value as a percentage that never reads as meeting a target it misses (``_pct``)."""
    return _pct(k["value"], k.get("target"), above="basis_zh" in k)


def met_zh(k: dict[str, Any]) -> str:
    """达标 / 未达标 beside a KPI figure ("" with no value), 须核实 when the figure is doubted."""
    if k.get("met") is None:
        return ""
    return ("达标" if k["met"] else "未达标") + ("（须核实）" if k.get("doubt_zh") else "")


def figure_text(part: int, whole: int, target: float | None = None, above: bool = False) -> str:
    """"785/790 = 99.4%": a rate with the counts it is made of ("—" with nothing to count); against ``target``, with
    the decimals ``_pct`` needs."""
    return f"{part}/{whole} = {_pct(part / whole, target, above)}" if whole else "—"


def target_text(k: dict[str, Any]) -> str:
    """"目标不低于 90.0%", "目标 100%", "目标高于 98.0%", marked 参考值（待核实） when domain.md does not confirm it."""
    if "basis_zh" in k:
        text = f"目标高于 {_pct(k['target'])}"
    else:
        text = "目标 100%" if k["target"] >= 1 - 1e-12 else f"目标不低于 {_pct(k['target'])}"
    return text + ("" if k.get("target_confirmed", True) else f"，{UNCONFIRMED_ZH}")


def unmet_kpis(file: "CreditFile", pol: "CampaignPolicy") -> list[dict[str, Any]]:
    """The KPIs known to miss their target (one with no data is not counted as missed)."""
    return [k for k in kpis(file, pol).values() if k["met"] is False]


def enforcement_check(decisions: list[Any]) -> AcceptanceCheck | None:
    """The acceptance's check of the penalty decisions over the campaign (none: no check)."""
    if not decisions:
        return None
    return AcceptanceCheck(code="enforcement", label_zh=CHECK_ZH["enforcement"], text_zh=f"验收前受行政处罚 {len(decisions)} 件：" + "；".join(
        f"{r.decision_no}（{r.decided_on.isoformat()}，{penalties_text(r.penalties)[0] or '处罚内容未载明'}）" for r in decisions),
        value=float(len(decisions)), target=None, event_ids=[r.event_id for r in decisions])


def acceptance_checks(file: "CreditFile", day: dt.date, pol: "CampaignPolicy", rules: "Rules", accepted_by: str | None = None) -> list[AcceptanceCheck]:
    """What a passed acceptance on ``day`` must be checked against besides the KPIs (see the module's
    doc): penalties, the pass rate over all samples, the risk grade that day, verified complaints —
    over the campaign (from ``starts_on``, else the earliest campaign document's date) up to ``day``, as on file now:
    a penalty revoked since no longer counts (a review takes months), a verification made later does.  The grade is
    the newest graded on or before ``day`` but the one the acceptance itself gave (``accepted_by``, its event id: its
    tier moves the score) — the grade the assessors passed the enterprise on."""
    c = file.campaign
    start = pol.starts_on or c.started_on or day
    out: list[AcceptanceCheck] = []

    def add(code: str, text: str, event_ids: list[str], value: float | None = None, target: float | None = None) -> None:
        out.append(AcceptanceCheck(code=code, label_zh=CHECK_ZH[code], text_zh=text, value=value, target=target, event_ids=event_ids))

    penalised = enforcement_check([r for r in file.enforcements if start <= r.decided_on <= day and r.in_force])
    if penalised is not None:
        out.append(penalised)
    judged = sorted((s for s in file.final_samples() if start <= s.sampled_on <= day and s.judgement is not None
                     and s.judgement.counted in ("pass", "fail")), key=lambda s: (s.sampled_on, s.sample_no))
    target = pol.provincial_average(file.profile.category if file.profile else None)  # (the sampling KPI's target)
    if judged:
        failed = [s for s in judged if s.judgement.counted == "fail"]  # type: ignore[union-attr]
        rate = 1 - len(failed) / len(judged)
        if not rate > target:  # as the KPI: above the provincial average
            which = "：" + "、".join(s.sample_no for s in failed) if failed else ""
            add("overall_pass_rate", f"全部抽检合格率 {_pct(rate, target, above=True)}（{len(judged)} 批，不合格 {len(failed)} 批{which}），"
                f"未高于目标 {_pct(target)}（省级抽检合格率指标的目标）", [s.event_id for s in failed], rate, target)
    entry = next((h for h in reversed(file.risk.history) if rules.local_date(h.as_of) <= day and h.cause_event_id != accepted_by), None)
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


def gap_text(k: dict[str, Any]) -> str:
    if "basis_zh" in k:  # the sampling pass rate: above the provincial average, over the provincial samples
        return f"{k['label_zh']}（{k['basis_zh']}，{kpi_value_text(k)}，{target_text(k)}）"
    counts = f"{k['part']}/{k['whole']}，" if k.get("whole") else ""
    return f"{k['label_zh']}（{counts}{kpi_value_text(k)}，{target_text(k)}）"


def _campaign_sampling(file: "CreditFile", pol: "CampaignPolicy") -> dict[str, Any]:
    """The provincial samples' pass rate (the KPI's value), which samples it counted, and the rate
    over every sample (county and national tasks too) for the table — from the campaign's start: ``starts_on``, else
    the enterprise's (``started_on``, the earliest campaign document), as the acceptance's checks count; an enterprise
    with no campaign record has no start, and all its samples count."""
    start = pol.starts_on or file.campaign.started_on
    # (by their conclusions, as the sampling system counts them: SampleJudgement.counted)
    judged = [(s.judgement.counted == "pass", pol.is_provincial(s.task_source)) for s in file.final_samples()
              if (start is None or s.sampled_on >= start)
              and s.judgement is not None and s.judgement.counted in ("pass", "fail")]
    provincial = [ok for ok, prov in judged if prov]
    n, passed = len(provincial), sum(provincial)
    since = f"{start.isoformat()} 起" if start is not None else ""
    return {
        "value": _ratio(passed, n), "samples": n, "passed": passed, "since": start.isoformat() if start is not None else None,
        "basis_zh": f"{since}省级抽检 {n} 批（合格 {passed} 批）" if n else "无省级抽检数据",
        "all_samples": len(judged), "all_value": _ratio(sum(ok for ok, _ in judged), len(judged)),
    }


NO_STAGE_ZH = "已开展工作，尚未完成任何阶段"
"""The stage column of an enterprise with campaign records on file (a self-inspection, a comparison test, a report)
that completed no stage yet: not 未启动, which is an enterprise with nothing on file."""


def has_documents(c: CampaignRecord) -> bool:
    """Whether any campaign record is on file (and not retracted)."""
    return bool(c.commitments or c.assessments or c.trainings or c.activities or c.self_inspections or c.comparison_tests
                or c.visits or c.assistance)


def registry_tier_of(file: "CreditFile") -> str | None:
    """The tier the registry gave (None: none, or 未分档): what an enterprise the campaign never tiered is said to be
    registered as, beside its 未分档."""
    c = file.campaign
    tier = c.registered_tier or (file.profile.campaign_tier if file.profile is not None and c.tier is None else None)
    return tier if tier in ("A", "B", "C", "D") else None


def tier_zh(tier: str | None, registered: str | None = None) -> str:
    """One rule for the campaign tier wherever it is shown (the table, the CLI, the credit file): the tier the
    campaign assessed (调查分档, or a standing acceptance), "B档"; an enterprise it never tiered is 未分档, with the
    registry's tier beside it — 未分档（登记为 C档） — since the registry's is not the campaign's finding."""
    if tier:
        return f"{tier}档"
    return f"未分档（登记为 {registered}档）" if registered else "未分档"


def progress_row(file: "CreditFile", pol: "CampaignPolicy") -> dict[str, Any]:
    """One line of the progress table (进度表)."""
    c = file.campaign
    stage = next((s for s in reversed(STAGES) if s in c.stages), None)
    k = kpis(file, pol)
    profile = file.profile
    ones = three_ones(c, pol)
    last = last_acceptance(c)
    reasons = lag_reasons(file, pol, k)
    # a passed acceptance without all of the three ones: listed first among what must be checked (须核实)
    undone = three_ones_gaps(c, pol) if c.accepted_on else []
    # full-staff training done, a later report short of it (new staff): to be checked, not a three-ones gap
    short = training_shortfall(c, pol) if c.accepted_on else None
    doubts = [v for v in k.values() if v.get("doubt_zh")]  # a figure that stands but is to be checked (first_pass_rises)
    revoked, gone, stopped = file.licence_revoked, file.deregistered_on, file.suspended_on
    return {
        "enterprise_id": file.enterprise_id,
        "name": profile.name if profile else None,
        "category": profile.category if profile else None,
        "town": profile.town if profile else None,
        # the tiers the campaign assessed (tier_zh): an enterprise never tiered has none, and its registry tier beside
        "starting_tier": c.starting_tier,
        "tier": c.tier,
        "registered_tier": registry_tier_of(file),
        "starting_tier_zh": tier_zh(c.starting_tier),
        "tier_zh": tier_zh(c.tier, registry_tier_of(file)),
        "commitment_signed_on": c.commitment_signed_on.isoformat() if c.commitment_signed_on else None,
        "commitments": [{"document_no": x.document_no, "signed_on": x.signed_on.isoformat(), "signatory": x.signatory}
                        for x in sorted(c.commitments, key=lambda x: x.signed_on)],
        "commitments_zh": "；".join(f"{x.document_no or '（无编号）'}（{x.signed_on.isoformat()}）"
                                   for x in sorted(c.commitments, key=lambda x: x.signed_on)),
        # out of the campaign: not behind in it, and out of the KPI counts (a revocation revoked, or the enterprise
        # back in business, brings it back)
        "licence_revoked": revoked,
        "deregistered_on": gone.isoformat() if gone else None,
        # 停产 (production stopped, the licence kept): said beside the stage, and still in the campaign — the upgrade is
        # what it resumes with, so its lag and KPIs count as before
        "suspended_on": stopped.isoformat() if stopped else None,
        "licence_zh": "；".join(x for x in (f"已注销（{gone.isoformat()}）" if gone else "", f"已吊销许可证（{revoked}）" if revoked else "",
                                           f"停产（{stopped.isoformat()} 起）" if stopped and not gone else "") if x),
        "stage": stage,
        # 未启动: nothing of the campaign on file; work on file (a self-inspection, a comparison test) but no stage yet is not that
        "stage_zh": STAGE_ZH[stage] if stage else (NO_STAGE_ZH if has_documents(c) else "未启动"),
        "stages": {s: d.isoformat() for s, d in c.stages.items()},
        "three_ones": ones,
        "kpis": k,
        "kpis_met": sum(1 for v in k.values() if v["met"]),
        "kpis_known": sum(1 for v in k.values() if v["met"] is not None),
        "comparison_tests": len(c.comparison_tests),
        "comparison_unsatisfactory": sum(1 for t in c.comparison_tests if t.satisfactory is False and not questionable(t)),
        "comparison_questionable": sum(1 for t in c.comparison_tests if questionable(t)),
        "accepted_on": c.accepted_on.isoformat() if c.accepted_on else None,
        # accepted, yet a KPI misses its target now, or the record up to the acceptance gives pause: a second look
        "accepted_with_gaps": ([x["label_zh"] for x in undone] + ([short["label_zh"]] if short else [])
                               + [v["label_zh"] for v in k.values() if v["met"] is False]
                               + [v["label_zh"] for v in doubts if v["met"] is not False]
                               + [x.label_zh for x in c.acceptance_checks] if c.accepted_on else []),
        "three_ones_missing": [x["code"] for x in undone],
        "acceptance_checks": [x.model_dump(mode="json") for x in c.acceptance_checks] if c.accepted_on else [],
        "acceptance_gaps_zh": "；".join([x["text_zh"] for x in undone] + ([short["text_zh"]] if short else [])
                                       + [gap_text(v) + "未达标" for v in k.values() if v["met"] is False]
                                       + [v["doubt_zh"] for v in doubts] + [x.text_zh for x in c.acceptance_checks]) if c.accepted_on else "",
        "kpi_doubts_zh": "；".join(f"{v['label_zh']}：{v['doubt_zh']}" for v in doubts),
        "upgraded": bool(c.starting_tier and c.tier and c.tier < c.starting_tier),
        "training_as_of": c.training["as_of"] if c.training else None,
        "acceptance_failed": c.acceptance_failed,
        "last_acceptance": last.model_dump(mode="json") if last else None,
        "last_acceptance_failed": bool(last and not last.passed),
        "acceptance_result_zh": _acceptance_result(c, last),
        "lag_reasons": reasons,
        "lag_reasons_zh": "；".join(r["text_zh"] for r in reasons),
        "as_of": file.last_event_at.isoformat().replace("+00:00", "Z") if file.last_event_at else None,
    }


def last_acceptance(c: CampaignRecord) -> Assessment | None:
    """The newest acceptance by its date (of two on one day, the one loaded last: the correction)."""
    done = _acceptances(c)
    return done[-1] if done else None


def _reversed_pass(c: CampaignRecord) -> Assessment | None:
    """The latest passed acceptance a later failed one reversed (None when the newest passed, or none passed before it)."""
    done = _acceptances(c)
    if not done or done[-1].passed:
        return None
    return next((a for a in reversed(done) if a.passed), None)


def _acceptance_result(c: CampaignRecord, last: Assessment | None) -> str:
    """检查验收's outcome in words: 未验收, 验收通过（accepted_on）, 验收未通过 N 次（最近 date …）, or a pass a
    later failure reversed: 2025-12-11 验收通过，2026-03-15 复查验收未通过."""
    failed = f"验收未通过 {c.acceptance_failed} 次"
    if last is None:  # (a file folded before the assessments were kept has only the count)
        return failed if c.acceptance_failed else ("验收通过" if c.accepted_on else "未验收")
    if last.passed:
        # the date the pass stands from (accepted_on, the stage's date): the first pass since the last failure
        return f"验收通过（{(c.accepted_on or last.on).isoformat()}）" + (f"，此前{failed}" if c.acceptance_failed else "")
    said = "，".join(x for x in (last.assessor, last.note) if x)
    passed = _reversed_pass(c)
    if passed is not None:
        return (f"{passed.on.isoformat()} 验收通过，{last.on.isoformat()} 复查验收未通过" + (f"（{said}）" if said else "")
                + (f"，累计{failed}" if c.acceptance_failed > 1 else ""))
    return f"{failed}（最近 {last.on.isoformat()}" + (f"，{said}" if said else "") + "）"


def newest_self_inspection(c: CampaignRecord) -> SelfInspection | None:
    """The newest self-inspection by its day (of two on one day, the one loaded last): its findings are the open ones."""
    return max(reversed(c.self_inspections), key=lambda x: x.on) if c.self_inspections else None


def newest_comparison(c: CampaignRecord) -> ComparisonTest | None:
    """The newest comparison test by its day (of two on one day, the one loaded last)."""
    return max(reversed(c.comparison_tests), key=lambda x: x.on) if c.comparison_tests else None


THREE_ONES_ZH = {"training_and_exam": "全员培训考试", "self_inspection": "自查", "comparison_test": "比对试验"}
"""The "three ones" (三个一) by their Chinese names, as a passed acceptance's gaps (须核实) list them."""


def three_ones_gaps(c: CampaignRecord, pol: "CampaignPolicy") -> list[dict[str, str]]:
    """The "three ones" not done, each with its figures: why an enterprise is behind, and, once an
    acceptance passed without them, what must be checked (须核实)."""
    out = []
    t = c.training
    if not _training_done(c, pol):
        out.append({"code": "training_and_exam", "label_zh": THREE_ONES_ZH["training_and_exam"], "text_zh": "全员培训考试未完成" + (
            f"（培训 {t['staff_trained']}/{t['staff_total']} 人，考试 {t['exam_takers']}/{t['staff_total']} 人，{t['as_of']} 报告）"
            if t else "（无培训考试报告）")})
    if not c.self_inspections:
        out.append({"code": "self_inspection", "label_zh": THREE_ONES_ZH["self_inspection"], "text_zh": "未开展自查"})
    if not c.comparison_tests:
        out.append({"code": "comparison_test", "label_zh": THREE_ONES_ZH["comparison_test"], "text_zh": "未开展比对试验"})
    elif not any(x.satisfactory for x in c.comparison_tests):
        x = newest_comparison(c)
        assert x is not None
        if x.satisfactory is None:
            out.append({"code": "comparison_pending", "label_zh": THREE_ONES_ZH["comparison_test"],
                        "text_zh": f"比对试验{PENDING_ZH}（{x.on.isoformat()}，{x.item_name or x.item_code}）"})
        else:
            code, said = ("comparison_questionable", "结果可疑") if questionable(x) else ("comparison_unsatisfactory", "不满意")
            out.append({"code": code, "label_zh": THREE_ONES_ZH["comparison_test"],
                        "text_zh": f"比对试验{said}（{x.on.isoformat()}，{x.item_name or x.item_code}，{x.measure_zh or ''}），尚无满意的比对试验".replace("，）", "）")})
    return out


def lag_reasons(file: "CreditFile", pol: "CampaignPolicy", k: dict[str, dict[str, Any]] | None = None) -> list[dict[str, str]]:
    """Why an enterprise not (or no longer) accepted is behind (滞后原因), from its campaign record and
    credit file: a failed acceptance, the stages and "three ones" not done (with the figures), an
    unsatisfactory comparison test not yet followed by a satisfactory one, KPIs short of target, a
    self-inspection's findings not put right, an overdue rectification still open.  Empty once accepted."""
    c = file.campaign
    last = last_acceptance(c)
    if c.accepted_on is not None or file.licence_revoked is not None or file.deregistered_on is not None:
        return []  # (an enterprise whose licence was revoked, or that closed, is out of the campaign, not behind in it)
    k = k if k is not None else kpis(file, pol)
    out: list[dict[str, str]] = []

    def add(code: str, text: str) -> None:
        out.append({"code": code, "text_zh": text})

    if last is not None and not last.passed:
        passed = _reversed_pass(c)
        add("acceptance_failed", f"检查验收未通过（{last.on.isoformat()}" + (f"，{last.note}" if last.note else "") + "）"
            + (f"，此前 {passed.on.isoformat()} 验收通过已被推翻" if passed else ""))
    # (帮扶指导 for an enterprise not tiered yet: 调查分档 is listed, and it decides whether assistance follows)
    missing = [STAGE_ZH[s] for s in STAGES[:4] if s not in c.stages and stage_applies(s, c)]
    if missing:
        add("stages", "未完成：" + "、".join(missing))
    gaps = {g["code"]: g["text_zh"] for g in three_ones_gaps(c, pol)}
    for code in ("training_and_exam", "self_inspection"):
        if code in gaps:
            add(code, gaps.pop(code))
        short = training_shortfall(c, pol) if code == "training_and_exam" else None
        if short is not None:
            add(short["code"], short["text_zh"])
    s = newest_self_inspection(c)
    if s is not None:
        if s.findings is not None and s.rectified is not None and s.findings > s.rectified:
            add("self_inspection_open", f"自查发现问题 {s.findings} 项，已整改 {s.rectified} 项，{s.findings - s.rectified} 项未整改（{s.on.isoformat()}）")
    for code, text in gaps.items():  # the comparison test
        add(code, text)
    for v in k.values():
        if v["met"] is False:
            add("kpi", gap_text(v) + "未达标")
    for r in file.rectifications:
        if r.overdue and r.status in ("open", "rejected"):
            # the deadline it is late by (a missed 重新限期 is the redo's), moved off a holiday as the fold counted it
            by = r.overdue_by or r.deadline
            which = "期限" if by == r.deadline else "重新限期"
            add("rectification_overdue", f"整改逾期未完成：{r.rectification_id}（{which} {r.deadline_zh(by)}，{r.what}）")
    return out


def county_progress(state: "CountyState", pol: "CampaignPolicy", towns: list[str] | None = None) -> dict[str, Any]:
    """The progress table of every registered enterprise, and the county's summary."""
    rows = [progress_row(f, pol) for _, f in sorted(state.files.items())
            if f.profile is not None and (not towns or f.profile.town in towns)]
    n = len(rows)
    reached = {s: sum(1 for r in rows if s in r["stages"]) for s in STAGES}
    # where each enterprise is now (its last stage reached), beside how many ever reached each stage
    current = {s: sum(1 for r in rows if r["stage"] == s) for s in STAGES}
    applies = {s: sum(1 for f in state.files.values() if f.profile is not None and (not towns or f.profile.town in towns)
                      and stage_applies(s, f.campaign)) for s in STAGES}
    # an enterprise whose licence was revoked, or that closed (注销), is counted on its own: not lagging, not in the KPI counts
    active = [r for r in rows if not r["licence_revoked"] and not r["deregistered_on"]]
    inactive = [r for r in rows if r["licence_revoked"] or r["deregistered_on"]]
    kpi_met = {}
    for key in KPI_ZH:
        known = [r["kpis"][key]["met"] for r in active if r["kpis"][key]["met"] is not None]
        kpi_met[key] = {"label_zh": KPI_ZH[key], "met": sum(known), "known": len(known)}
    kpi_met["exam_first_pass_rate"]["doubtful"] = sum(1 for r in active if r["kpis"]["exam_first_pass_rate"].get("doubt_zh"))
    no_provincial = len(active) - kpi_met["sampling_pass_rate"]["known"]
    kpi_met["sampling_pass_rate"]["basis_zh"] = "仅计省级抽检" + (f"，{no_provincial} 家无省级抽检数据" if no_provincial else "")
    moments = [r["as_of"] for r in rows if r["as_of"]]
    # the county's rates sum the active enterprises' latest reports: so does the count of reports said beside them
    reports = sorted(r["training_as_of"] for r in active if r["training_as_of"])
    left_out = sum(1 for r in rows if r["training_as_of"] and (r["licence_revoked"] or r["deregistered_on"]))
    summary = {
        # the latest event the table reflects (UTC): the files' own clocks, the same over the Kafka sink's copies
        "as_of": max(moments, key=lambda m: dt.datetime.fromisoformat(m.replace("Z", "+00:00"))) if moments else None,
        "enterprises": n,
        # reached: ever (累计); current: the last stage reached now; applies: enterprises the stage is for (帮扶指导: C, D tiers)
        "stages": [{"stage": s, "stage_zh": STAGE_ZH[s], "reached": reached[s], "current": current[s], "applies": applies[s]}
                   for s in STAGES],
        # no stage reached: nothing on file (未启动), or work on file that completed no stage yet
        "not_started": sum(1 for r in rows if r["stage"] is None and r["stage_zh"] == "未启动"),
        "no_stage_yet": sum(1 for r in rows if r["stage"] is None and r["stage_zh"] != "未启动"),
        "kpis": kpi_met,
        "tiers_at_start": _count(r["starting_tier"] for r in rows),
        "tiers_now": _count(r["tier"] for r in rows),
        "upgraded": sum(1 for r in rows if r["upgraded"]),
        "accepted": sum(1 for r in rows if r["accepted_on"]),
        "accepted_with_gaps": sum(1 for r in rows if r["accepted_with_gaps"]),
        "last_acceptance_failed": sum(1 for r in rows if r["last_acceptance_failed"]),
        "acceptance_failed_ever": sum(1 for r in rows if r["acceptance_failed"]),
        "lagging": sum(1 for r in rows if r["lag_reasons"]),
        # campaign records under an id nobody registered: not in the table (no name, town or category) until it is
        "unregistered": sorted(e for e, f in state.files.items() if f.profile is None and f.campaign.event_ids) if not towns else [],
        "licence_revoked": sum(1 for r in rows if r["licence_revoked"]),
        # of the enterprises, upgraded and accepted counted above, those closed or whose licence was revoked (said beside)
        "out_of_campaign": {"enterprises": n - len(active), "upgraded": sum(1 for r in inactive if r["upgraded"]),
                            "accepted": sum(1 for r in inactive if r["accepted_on"])},
        "active": len(active),
        "deregistered": sum(1 for r in rows if r["deregistered_on"]),
        "suspended": sum(1 for r in active if r["suspended_on"]),
        # campaign-wide: Σ part / Σ whole over each enterprise's latest training report, not a mean of rates
        "kpi_rates": _county_rates(active, pol),
        "training_reports": {"enterprises": len(reports), "earliest": reports[0] if reports else None,
                             "latest": reports[-1] if reports else None, "left_out": left_out},
        # per KPI or check: how many accepted enterprises it makes one to check
        "accepted_with_gaps_by": dict(sorted(_tally(label for r in rows for label in r["accepted_with_gaps"]).items(), key=lambda kv: (-kv[1], kv[0]))),
    }
    if towns:  # a town's key sees its towns' totals: said, so that they are never read as the county's
        summary["towns"] = sorted(towns)
    return {"summary": summary, "rows": rows}


def _county_rates(rows: list[dict[str, Any]], pol: "CampaignPolicy") -> dict[str, dict[str, Any]]:
    """从业人员培训率 Σtrained/Σstaff, 考试一次通过率 Σpassed_first/Σexam_takers, 关键岗位持证率
    Σcertified/Σkey_posts over the enterprises' latest training reports, with the counts."""
    out = {}
    for key in KPI_PARTS:
        known = [r["kpis"][key] for r in rows if r["training_as_of"]]
        part, whole = sum(k["part"] for k in known), sum(k["whole"] for k in known)
        value = _ratio(part, whole)
        target = known[0]["target"] if known else None
        entry = {"label_zh": KPI_ZH[key], "part": part, "whole": whole, "value": value, "target": target,
                 "met": None if value is None or not known else value >= known[0]["target"] - 1e-12,
                 "target_confirmed": target_confirmed(key, pol), "enterprises": len(known), "figure_zh": figure_text(part, whole, target)}
        if entry["target"] is not None:
            entry["target_zh"] = target_text(entry)
        entry["met_zh"] = met_zh(entry)
        out[key] = entry
    staff = sum(r["kpis"]["training_rate"]["whole"] for r in rows if r["training_as_of"])
    if out["exam_first_pass_rate"]["whole"] < staff:
        out["exam_first_pass_rate"]["takers_zh"] = f"应考 {staff} 人，实考 {out['exam_first_pass_rate']['whole']} 人"
    return out


def summary_lines_zh(progress: dict[str, Any], offset_hours: int = 8) -> list[str]:
    """The summary's heading lines for a text output: 截至, the counts, the campaign-wide KPIs with their counts."""
    sm = progress["summary"]
    when = sm.get("as_of")
    if when:
        local = dt.datetime.fromisoformat(when.replace("Z", "+00:00")).astimezone(dt.timezone(dt.timedelta(hours=offset_hours)))
        when = local.strftime("%Y-%m-%d %H:%M") + ("（北京时间）" if offset_hours == 8 else f"（UTC{offset_hours:+d}）")
    tr = sm["training_reports"]
    dates = (f"，培训考试数据 {tr['earliest']}" + (f" 至 {tr['latest']}" if tr["latest"] != tr["earliest"] else "")) if tr["earliest"] else ""
    if tr.get("left_out"):  # (the rates leave out the closed ones and those whose licence was revoked: said, so the counts add up)
        dates += f"；另有已注销或吊销许可证的 {tr['left_out']} 家企业的报告不计入"
    # an acceptance with a KPI short of target, or a penalty, grade or complaint against it, is not a clean pass: say how many
    gaps = sm.get("accepted_with_gaps", 0)
    out = sm.get("out_of_campaign") or {}

    def said(*notes: str) -> str:  # the notes on a count, in one bracket
        notes = tuple(x for x in notes if x)
        return f"（{'；'.join(notes)}）" if notes else ""

    def closed(key: str) -> str:  # a closed or revoked enterprise still counts here: said (they are out of lagging and the KPIs)
        return f"含已注销或吊销许可证的 {out[key]} 家" if out.get(key) else ""

    caveat = said(closed("accepted"), f"其中 {gaps} 家有指标未达标或其他须核实事项，须核实" if gaps else "")
    revoked = (f"；已吊销许可证 {sm['licence_revoked']} 家（不计滞后与指标）" if sm.get("licence_revoked") else "") + (
        f"；已注销 {sm['deregistered']} 家（不计滞后与指标）" if sm.get("deregistered") else "") + (
        f"；停产 {sm['suspended']} 家（仍计滞后与指标）" if sm.get("suspended") else "")
    if sm.get("unregistered"):
        ids = sm["unregistered"]
        revoked += f"；另有未登记的企业编号 {len(ids)} 个有提档升级记录，未列入（请核对企业编号：{'、'.join(ids[:5])}{' 等' if len(ids) > 5 else ''}）"
    if sm.get("cut"):  # (a cut at a day's end: what was on record by then; the newest record in it said beside)
        when = f"{sm['cut']} 日终，最近记录 {when or '—'}"
    return [f"提档升级进度（截至 {when or '—'}；{sm['enterprises']} 家企业{said(closed('enterprises'))}；已提档 {sm['upgraded']} 家"
            f"{said(closed('upgraded'))}，验收通过 {sm['accepted']} 家{caveat}，"
            f"最近一次验收未通过 {sm['last_acceptance_failed']} 家{revoked}）",
            "全县指标" + f"（{tr['enterprises']} 家企业最新培训考试报告{dates}）：" + "；".join(
                f"{k['label_zh']} {k['figure_zh']}" + (f"（{k['takers_zh']}）" if k.get("takers_zh") else "")
                + (f"，{k['target_zh']}" if k.get("target_zh") else "") + (f"，{k['met_zh']}" if k.get("met_zh") else "")
                for k in sm["kpi_rates"].values())]


def kpi_line_zh(progress: dict[str, Any]) -> str:
    """指标达标: per KPI, the enterprises that meet it of those it can be judged for (家), and how many it cannot —
    no report, no provincial sample — over the enterprises in the campaign (closed and revoked ones left out)."""
    sm = progress["summary"]
    active = sm.get("active", sm["enterprises"])
    parts = []
    for key, k in sm["kpis"].items():
        unknown = active - k["known"]
        notes = [f"{unknown} 家{'无省级抽检数据' if key == 'sampling_pass_rate' else '无数据'}" if unknown else "",
                 f"{k['doubtful']} 家须核实" if k.get("doubtful") else ""]
        notes = [x for x in notes if x]
        parts.append(f"{k['label_zh']} 达标 {k['met']}/{k['known']} 家" + (f"（{'，'.join(notes)}）" if notes else ""))
    out = sm["enterprises"] - active
    return f"指标达标（在营企业 {active} 家" + (f"，不含已注销或吊销许可证的 {out} 家" if out else "") + "）：" + "；".join(parts)


def stage_lines_zh(progress: dict[str, Any]) -> list[str]:
    """Two lines, each saying what it counts: enterprises that ever reached each stage (累计), and where
    each enterprise is now (its last stage reached); 帮扶指导 against the enterprises it is for."""
    sm = progress["summary"]
    n = sm["enterprises"]
    ever = []
    for st in sm["stages"]:
        text = f"{st['stage_zh']} {st['reached']} 家"
        if st.get("applies") is not None and st["applies"] != n:
            text += (f"（仅适用于 {'、'.join(ASSISTANCE_TIERS)} 档企业，共 {st['applies']} 家）" if st["stage"] == "assistance"
                     else f"（适用 {st['applies']} 家）")
        ever.append(text)
    now = [f"{st['stage_zh']} {st['current']} 家" for st in sm["stages"] if st.get("current")]
    if sm.get("no_stage_yet"):
        now.append(f"{NO_STAGE_ZH} {sm['no_stage_yet']} 家")
    if sm.get("not_started"):
        now.append(f"未启动 {sm['not_started']} 家")
    return ["各阶段已完成（完成该阶段的企业数，被复查推翻的验收不计）：" + "；".join(ever),
            "当前所处阶段（各企业已完成的最后一个阶段）：" + "；".join(now)]


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
    "training_and_exam", "self_inspection", "comparison_test", "training_as_of", "staff_total", "staff_trained", "training_rate",
    "training_rate_met", "exam_takers", "exam_first_pass", "exam_first_pass_rate", "exam_first_pass_rate_met", "exam_takers_zh", "key_posts",
    "key_posts_certified", "key_posts_certified_rate", "key_posts_certified_rate_met", "sampling_pass_rate", "sampling_pass_rate_met",
    "provincial_samples", "sampling_pass_rate_all", "kpis_met", "kpis_known", "kpi_doubts_zh", *(f"{s}_on" for s in STAGES[:-1]),
    "accepted_on", "acceptance_gaps_zh", "acceptance_failed", "acceptance_result_zh", "lag_reasons_zh", "commitments_zh", "licence_zh",
    "as_of",
]
"""The progress table's columns for CSV, the machine format: codes (``stage``: ``acceptance``) beside
their labels (``stage_zh``), ``true``/``false``, rates as fractions, counts as numbers; ``<kpi>_met`` beside each
rate (达标 / 未达标 in the sheet: a rate shown to one decimal must not be read against its target alone).  ``<stage>_on`` and
``accepted_on``: the date each stage was reached, by its documents' dates — a month's figure by document date
is a count over them in the latest table (a month-end cut holds what was recorded by the cut)."""
SHEET_COLUMNS = [c for c in TABLE_COLUMNS if c != "stage"]
"""The progress table's columns for Excel (a sheet a supervisor prints: the stage's label, not its code)."""
TABLE_HEADERS_ZH = {
    "enterprise_id": "企业编号", "name": "企业名称", "town": "乡镇/街道", "category": "食品类别", "starting_tier": "初始档次",
    "tier": "当前档次", "commitment_signed_on": "承诺书签订日期", "stage_zh": "所处阶段", "training_and_exam": "已完成全员培训考试",
    "self_inspection": "开展自查", "comparison_test": "比对试验满意", "training_rate": "从业人员培训率",
    "training_as_of": "培训考试数据日期", "staff_total": "从业人员（人）", "staff_trained": "已培训（人）", "exam_takers": "实考（人）",
    "exam_first_pass": "一次通过（人）", "exam_takers_zh": "应考与实考", "key_posts": "关键岗位（个）", "key_posts_certified": "持证岗位（个）",
    "acceptance_failed": "验收未通过（次）", "acceptance_result_zh": "检查验收结果", "lag_reasons_zh": "滞后原因", "as_of": "数据截至",
    "exam_first_pass_rate": "考试一次通过率", "key_posts_certified_rate": "关键岗位持证上岗率", "sampling_pass_rate": "省级抽检合格率",
    "provincial_samples": "省级抽检批次", "sampling_pass_rate_all": "全部抽检合格率",
    "kpis_met": "达标指标（项）", "kpis_known": "可评价指标（项）", "accepted_on": "验收通过日期", "acceptance_gaps_zh": "验收通过但须核实",
    "stage": "所处阶段", "commitments_zh": "承诺书（编号及签订日期）", "licence_zh": "许可证/经营状态",
    "kpi_doubts_zh": "指标须核实", "mobilisation_on": "宣传发动完成日期",
    "training_rate_met": "培训率是否达标", "exam_first_pass_rate_met": "一次通过率是否达标", "key_posts_certified_rate_met": "持证率是否达标",
    "sampling_pass_rate_met": "省级抽检合格率是否达标", "tiering_on": "调查分档完成日期", "training_on": "培训观摩完成日期",
    "assistance_on": "帮扶指导完成日期", "self_improvement_on": "自我提升完成日期",
}
"""Excel's header row (CSV keeps the column keys, for other systems)."""


def table_rows(progress: dict[str, Any], zh: bool = False) -> list[dict[str, Any]]:
    """The progress rows flattened: one cell per stage flag and KPI value (``zh``: categories and tiers in Chinese)."""
    out = []
    for r in progress["rows"]:
        flat = {k: r[k] for k in ("enterprise_id", "name", "town", "category", "starting_tier", "tier", "commitment_signed_on", "stage",
                                  "stage_zh", "accepted_on", "acceptance_gaps_zh", "kpis_met", "kpis_known", "training_as_of",
                                  "acceptance_failed", "acceptance_result_zh", "lag_reasons_zh", "commitments_zh", "licence_zh", "kpi_doubts_zh")}
        flat["as_of"] = progress["summary"].get("as_of")  # the table's 截至, on every line (a sorted or filtered sheet keeps it)
        flat.update({f"{s}_on": r["stages"].get(s) for s in STAGES[:-1]})  # (检查验收's is accepted_on)
        t = r["kpis"]
        for key, (part, whole) in KPI_PARTS.items():  # the counts beside each rate (None without a report)
            flat[part] = t[key]["part"] if r["training_as_of"] else None
            flat[whole] = t[key]["whole"] if r["training_as_of"] else None
        flat["exam_takers_zh"] = t["exam_first_pass_rate"].get("takers_zh", "")
        if zh:
            flat["category"] = CATEGORY_ZH.get(flat["category"], flat["category"])
            # "A档", not a bare letter a reader could take for the risk grade (A级); 未分档（登记为 C档） (tier_zh)
            flat["starting_tier"], flat["tier"] = r["starting_tier_zh"], r["tier_zh"]
        if zh:
            # (a sheet laid out with TABLE_COLUMNS has the stage twice, never its code: SHEET_COLUMNS leaves it out)
            flat["stage"] = flat["stage_zh"]
        # 是/否 for people; booleans for machines (true/false in the CSV)
        flat.update({k: ("是" if v else "否") if zh else bool(v) for k, v in r["three_ones"].items()})
        flat.update({k: (None if v["value"] is None else round(v["value"], 6)) for k, v in r["kpis"].items()})
        flat.update({f"{k}_met": (v["met_zh"] if zh else v["met"]) for k, v in r["kpis"].items()})
        sampling = r["kpis"]["sampling_pass_rate"]
        flat["provincial_samples"] = sampling["samples"]
        flat["sampling_pass_rate_all"] = None if sampling["all_value"] is None else round(sampling["all_value"], 4)
        if zh and sampling["value"] is None and sampling["all_samples"]:
            flat["sampling_pass_rate"] = sampling["basis_zh"]  # 无省级抽检数据: not a pass, and not a blank either
        out.append(flat)
    return out
