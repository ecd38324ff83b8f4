"""The credit file (诚信档案): what qrisk knows about one enterprise.

It is a fold of that enterprise's events (see ``processors.step``); nothing in
it is entered by hand.  Models are plain mutable pydantic models so the fold can
update them in place and a snapshot is one ``model_dump_json``.
"""
from __future__ import annotations

import bisect
import datetime as dt
import json
import weakref
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from processors._build import FoldState, compact
from processors.campaign import CampaignRecord
from processors.fluctuation import CategoryRates, FluctuationState, finite_limits, point_dict
from processors.personal_info import mask_personal_info
from processors.judgement import ItemJudgement, SampleJudgement, SumOfRatiosMember
from processors.risk import RiskState, as_of, graded_data
from processors.warnings import AlertDecision
from schemas.events import EnterpriseProfile, Finding, Penalty, SamplingResult
from schemas.working_days import ESTIMATED_AS_ZH, moved_deadline_zh


class _Record(FoldState):
    pass


SupersededAs = Literal["retest", "retest_inadmissible", "corrected", "repeated", "outdated", "other_lab", "unjudged", "retracted"]
"""Why a sampling report on file does not count:

- ``retest``: an original replaced by its admitted re-test (复检), whose conclusion is final;
- ``retest_inadmissible``: a re-test that was not admitted: the original stands;
- ``corrected``: the lab sent a corrected report of the same sample (a new event id, same 抽样编号);
- ``repeated``: the same report sent again under a new event id (a lab system's new send attempt);
- ``outdated``: a report dated before the one on file that arrived after it: the later report stands;
- ``other_lab``: another lab's result under the same 抽样编号 without the re-test flag: not taken as a
  correction (one lab cannot correct another's report), kept for the supervisor to sort out;
- ``unjudged``: a correction of a failed report that qrisk cannot judge (an unknown item or unit, a
  detection limit above the limit): a result nobody could judge does not overturn a 不合格 conclusion;
- ``retracted``: the bureau retracted the sample number's reports under this enterprise (``sampling.retracted``:
  filed under the wrong enterprise); ``superseded_by`` is the retraction's event id, ``retraction_reason`` its reason.
  Every report of the sample number here is retracted, on file or arriving later.

The last six are resends (``RESENT``) or retracted: such a report is never the sample's current report again."""

RESENT = frozenset({"corrected", "repeated", "outdated", "other_lab", "unjudged", "retracted"})

SUPERSEDED_ZH = {
    "retest": "已由复检结论取代，不计入统计",
    "retest_inadmissible": "复检不予采信（原因见预警），本复检结果不计入统计",
    "corrected": "已由更正后的报告（事件 {event_id}）取代，不计入统计",
    "repeated": "重复报送，与已收到的报告（事件 {event_id}）内容相同，不重复计入",
    "outdated": "报告时间早于已收到的报告（事件 {event_id}）而晚到，以该报告为准，不计入统计",
    "other_lab": "其他检验机构以同一抽样编号报送且未标注复检，不作为更正、不计入统计，请核实（现有报告：事件 {event_id}）",
    "unjudged": "更正报告的结果无法判定，不能推翻原不合格结论，未采用、不计入统计，请核实后重新报送（现有报告：事件 {event_id}）",
    "retracted": "已由监管部门撤销（{reason}；撤销事件 {event_id}），不计入统计",
}
"""``SampleRecord.superseded_zh``: the credit file's line for a report that does not count."""


class Turnaround(_Record):
    """How long an original report took, in working days (``schemas.working_days``), against the time limits of
    ``sampling_turnaround``: judged once, when the sample's first original report comes (a correction keeps it)."""

    reported_on: dt.date = Field(description="the report's local date (occurred_at's)")
    lab_received_on: dt.date | None = Field(default=None, description="收样日期 as the report gave it; None: the time is counted from sampling")
    to_lab_days: int | None = Field(default=None, description="working days from sampling to the lab's receipt (None without a receipt date)")
    to_lab_limit: int | None = None
    report_days: int = Field(description="working days from the receipt to the report, or from sampling without a receipt date")
    report_limit: int = Field(description="the lab's limit, or the two limits together without a receipt date")
    estimate: bool = Field(default=False, description="a day counted lies in a year the calendar does not hold: counted Monday–Friday")
    uncovered_years: tuple[int, ...] = ()
    unverified_years: tuple[int, ...] = Field(default=(), description="years counted whose dates nobody checked against the notice")

    @property
    def from_sampling(self) -> bool:
        return self.lab_received_on is None

    @property
    def sent_late(self) -> bool:
        return self.to_lab_days is not None and self.to_lab_limit is not None and self.to_lab_days > self.to_lab_limit

    @property
    def report_late(self) -> bool:
        return self.report_days > self.report_limit

    @property
    def late(self) -> bool:
        return self.sent_late or self.report_late

    def caveat_zh(self) -> str:
        """What the count rests on that nobody checked: a year the calendar lacks, dates unverified."""
        out = ""
        if self.estimate:
            out += f"（含工作日历未收录的 {'、'.join(str(y) for y in self.uncovered_years)} 年，{ESTIMATED_AS_ZH}）"
        if self.unverified_years:
            out += f"（{'、'.join(str(y) for y in self.unverified_years)} 年节假日安排未经核对）"
        return out

    def sent_late_zh(self) -> str:
        return f"送样超时：抽样后第 {self.to_lab_days} 个工作日送达检验机构（时限 {self.to_lab_limit} 个工作日）"

    def report_late_zh(self) -> str:
        if self.from_sampling:
            limit = self.report_limit - (self.to_lab_limit or 0)
            return (f"报告超时（未报收样日期，按抽样日期起算 {self.to_lab_limit}+{limit} 个工作日）：抽样后第 {self.report_days} 个工作日"
                    f"出具检验报告（时限 {self.report_limit} 个工作日）")
        return f"检验报告超时：收样后第 {self.report_days} 个工作日出具检验报告（时限 {self.report_limit} 个工作日）"

    def zh(self) -> str:
        """The line a register and the credit file show."""
        late = [t for t in (self.sent_late_zh() if self.sent_late else "", self.report_late_zh() if self.report_late else "") if t]
        if late:
            return "；".join(late) + self.caveat_zh()
        if self.from_sampling:
            return (f"未报收样日期：抽样至报告 {self.report_days} 个工作日（时限 {self.report_limit} 个工作日），未超时"
                    + self.caveat_zh())
        return (f"送样 {self.to_lab_days} 个工作日（时限 {self.to_lab_limit}）、检验 {self.report_days} 个工作日"
                f"（时限 {self.report_limit}），未超时" + self.caveat_zh())


class SampleRecord(_Record):
    event_id: str
    sample_no: str
    product: str
    batch: str | None = None
    production_date: dt.date | None = None
    sampled_on: dt.date
    occurred_at: dt.datetime
    lab: str
    lab_id: str | None = Field(default=None, description="the sending lab system's own id (source.id of a lab source: the CMA number "
                                                         "its API key is bound to), beside the lab name its report prints")
    task_source: str
    retest: bool = False
    judgement: SampleJudgement | None = Field(default=None, description="None until the enterprise's category is known")
    pending: SamplingResult | None = Field(default=None, description="the lab's record, kept only while it awaits judgement")
    superseded_by: str | None = Field(
        default=None, description="event id of the report whose verdict counts instead of this one (its re-test, the original that "
                                  "refused it, the corrected report, or the report this one repeats); follow it to reach the sample's verdict")
    superseded_as: SupersededAs | None = Field(
        default=None, description="why this report no longer counts (None with superseded_by set: a file folded before the reason was "
                                  "kept, a re-test when `retest`, else an original replaced by its re-test)")
    corrects: str | None = Field(default=None, description="event id of the earlier report of the same sample that this one corrected")
    not_retested: tuple[str, ...] = Field(default=(), description="a re-test's judgement: the item codes it did not re-test, whose "
                                                                  "first-test results it carries (a re-test covers only the items disputed)")
    refused_zh: str | None = Field(default=None, description="a re-test not admitted: why (复检不予采信的原因), as its effect and alert say")
    retraction_reason: str | None = Field(default=None, description="a retracted report (superseded_as retracted): the reason the bureau "
                                                                    "gave (撤销原因); superseded_by is the retraction's event id")
    lab_received_on: dt.date | None = Field(default=None, description="收样日期 as this report gave it")
    turnaround: Turnaround | None = Field(
        default=None, description="an original's time to report against the limits (sampling_turnaround), judged on the sample's first "
                                  "original report and carried by its later reports (a correction keeps the first-filed dates); None "
                                  "for a re-test, a report retracted on arrival, with the check off, or a file folded before it was kept")
    filed_on: dt.date | None = Field(
        default=None, description="the sampling date the derived tables (judgements, sampling_items) file this report's rows under, set "
                                  "once when it comes: its own, a re-test's its original's then on file (a 复检 tests the backup of the "
                                  "same sampling).  Its rows are written again when it is superseded or retracted, and a row under "
                                  "another date would be a second row beside the first, counting still.  None: folded before it was kept")

    def superseded_zh(self) -> str | None:
        """Why the report does not count, as the credit file tells a supervisor; None when it counts."""
        if self.superseded_by is None:
            return None
        why = self.superseded_as or ("retest_inadmissible" if self.retest else "retest")
        return SUPERSEDED_ZH[why].format(event_id=self.superseded_by, reason=self.retraction_reason or "")


class Retraction(_Record):
    """A ``sampling.retracted`` on file: the sample number's reports under this enterprise do not count, those on
    file when it came and those arriving after it (which it retracts as they come)."""
    event_id: str
    sample_no: str
    reason: str
    occurred_at: dt.datetime
    by: str = Field(description="who retracted it, as the event's source names it (its name, else its id)")
    reports: list[str] = Field(default_factory=list, description="event ids of the reports it retracted, in the order retracted")


class Revocation(_Record):
    """An ``enforcement.revoked`` whose decision is not on file yet: kept, applied when the decision comes."""
    event_id: str
    decision_no: str
    revoked_on: dt.date
    revoked_by: str
    reference_no: str
    reason: str


class ComplaintResolution(_Record):
    """One ``complaint.resolved`` (办结结论): on a complaint's record, one of its dated conclusions; in
    ``CreditFile.resolutions_waiting``, one whose complaint is not on file yet (the hotline's two messages
    crossed), applied when the complaint arrives."""
    event_id: str
    resolved_at: dt.datetime
    verified: bool
    outcome: str = ""
    accepted_on: dt.date | None = Field(default=None, description="受理日期 of a 投诉, as the conclusion gave it")
    extended: bool = Field(default=False, description="a 举报's check extended with the head's approval (延长核查期限)")


ACCEPTANCE_ZH = {"accepted": "受理", "refused": "不予受理"}


class ComplaintAcceptance(_Record):
    """One ``complaint.accepted`` (受理决定) of a 投诉: on its record, one of its decisions (the earliest-dated not corrected
    in force); in ``CreditFile.acceptances_waiting``, one whose complaint is not on file yet, applied when it arrives."""
    event_id: str
    decided_on: dt.date
    decision: Literal["accepted", "refused"]
    reason: str = ""
    recorded_at: dt.datetime = Field(description="the event's occurred_at: when the decision was recorded")
    corrects: str | None = Field(default=None, description="event id of the decision this one corrects (its payload's corrects, "
                                                           "or the decision of the same date logged before it)")
    superseded_by: str | None = Field(default=None, description="the decision that corrected this one: kept for the record, never counted")

    def zh(self) -> str:
        said = f"{ACCEPTANCE_ZH[self.decision]}（{self.decided_on.isoformat()}"
        # (a refusal's reason may name the caller — 投诉人王小明（138…）拒不提供购买凭证 —: what the registers, the credit
        # report and the effects say of it is masked; the record keeps it as written)
        return said + (f"，理由：{mask_personal_info(self.reason)}）" if self.decision == "refused" and self.reason else "）")


def _one_or_many(value: object) -> object:
    # a snapshot written before a complaint could have several waiting conclusions held one per complaint id
    if isinstance(value, dict):
        return {k: [v] if isinstance(v, (dict, ComplaintResolution)) else v for k, v in value.items()}
    return value


ESTIMATE_ZH = f"（含工作日历未收录的年份，{ESTIMATED_AS_ZH}）"

COMPLAINT_KIND_ZH = {"complaint": "投诉", "report": "举报"}

LIMIT_ZH = {
    "accept": "受理期限（收到之日起 {n} 个工作日内决定是否受理）",
    "mediate": "调解期限（受理之日起 {n} 个工作日内）",
    "mediate_unaccepted": "调解期限（未报受理日期，按收到后 {a} 个工作日受理、再 {n} 个工作日计）",
    "check": "核查期限（收到之日起 {n} 个工作日内核查并决定是否立案）",
    "extended": "延长后的核查期限（经负责人批准延长 {e} 个工作日，共 {n} 个工作日）",
}
"""``ComplaintLimit.limit`` → what a supervisor reads; {n}: the limit's working days."""


class ComplaintLimit(_Record):
    """One statutory time limit of a complaint or report (``complaint_deadlines``), on the working-day calendar.

    ``overdue``: the fold's clock passed ``due_on`` with no conclusion (said once: ``complaint.overdue``), or the
    conclusion came after it (超期办结); ``None``: it cannot be judged (a 投诉 concluded after its 7 working days with no
    受理日期 given: whether it was accepted in time is not known), or is not judged yet (the acceptance of an open 投诉 with
    complaint_deadlines.complaint.chase_acceptance off)."""

    limit: Literal["accept", "mediate", "check", "extended"]
    working_days: int = Field(description="the limit, in working days from starts_on")
    starts_on: dt.date = Field(description="the day counted from (not itself counted): receipt, or acceptance")
    due_on: dt.date = Field(description="its last day (办结期限)")
    from_receipt: bool = Field(default=False, description="a mediation limit counted from the latest lawful acceptance, accepted_on unknown")
    overdue: bool | None = False
    estimate: bool = Field(default=False, description="a day counted lies in a year the calendar does not hold: counted Monday–Friday")

    def zh(self, accept_days: int = 7, extension_days: int = 15) -> str:
        key = "mediate_unaccepted" if self.limit == "mediate" and self.from_receipt else self.limit
        n = self.working_days - accept_days if key == "mediate_unaccepted" else self.working_days
        return LIMIT_ZH[key].format(n=n, a=accept_days, e=extension_days)


class ComplaintRecord(_Record):
    complaint_id: str
    kind: Literal["complaint", "report"] = Field(default="complaint", description="complaint = 投诉 (mediated), report = 举报 (investigated)")
    event_id: str
    received_at: dt.datetime
    channel: str
    category: str
    text: str
    product: str | None = None
    corrected_by: str | None = Field(default=None, description="the event id of the resend (complaint.received under its number) that "
                                                               "last corrected its kind, category or product")
    corrected_from: dict[str, str | None] = Field(default_factory=dict, description="what that resend corrected, as it stood before "
                                                                                     "(kind, category, product)")
    corrected_at: dt.datetime | None = Field(default=None, description="that resend's occurred_at: a resend dated before it (or before "
                                                                       "the registration) is an older send, which corrects nothing")
    verified: bool = Field(default=False, description="属实 as the conclusion in force says (the latest-dated resolution), else as received")
    verified_at_receipt: bool = Field(default=False, description="属实 as received (verified at receipt): with its conclusions' dates, "
                                                                 "the spans it counted as 属实 (the credit report says them)")
    resolved_at: dt.datetime | None = Field(default=None, description="when the conclusion in force was reached (办结时间)")
    outcome: str | None = None
    resolution_event_id: str | None = Field(default=None, description="the complaint.resolved whose conclusion is in force")
    resolutions: list[ComplaintResolution] = Field(
        default_factory=list, description="every conclusion received (核查结论), in the order they arrived: the latest-dated is in force "
                                          "(at equal times the later arrived); earlier ones stay as the complaint's history")
    withdrawn: ComplaintWithdrawal | None = Field(default=None, description="the bureau withdrew it (complaint.withdrawn): kept on file, "
                                                                            "counted nowhere (CreditFile.complaints_withdrawn)")
    limits: list[ComplaintLimit] = Field(
        default_factory=list, description="its statutory time limits (complaint_deadlines), judged from its receipt, its earliest "
                                          "conclusion and what the conclusions say (accepted_on, extended); empty with the check off, "
                                          "or for a complaint folded before they were kept")
    concluded_on: dt.date | None = Field(default=None, description="the local date of its earliest conclusion: when it was 办结, "
                                                                   "whatever later revisions say")
    acceptances: list[ComplaintAcceptance] = Field(
        default_factory=list, description="every acceptance decision received (complaint.accepted), in the order they arrived: the "
                                          "earliest-dated not corrected (superseded_by) is in force (acceptance)")

    @property
    def acceptance(self) -> ComplaintAcceptance | None:
        """受理决定 in force: the earliest-dated not corrected (a second one later does not move it), None before any (or for a
        举报).  Two of one date not corrected one by the other (a file folded before same-date decisions corrected): the later
        logged — never the random event id."""
        if self.kind != "complaint":
            return None
        live = [a for a in self.acceptances if a.superseded_by is None]
        return min(reversed(live), key=lambda a: a.decided_on) if live else None

    @property
    def accepted_on(self) -> dt.date | None:
        """受理日期: an acceptance decision's, else as the latest conclusion giving one says; None after 不予受理."""
        a = self.acceptance
        if a is not None:
            return a.decided_on if a.decision == "accepted" else None
        if self.kind != "complaint":
            return None
        return next((r.accepted_on for r in sorted(self.resolutions, key=lambda r: r.resolved_at, reverse=True)
                     if r.accepted_on is not None), None)

    def acceptance_zh(self) -> str:
        """What a register and the credit file say of its acceptance: 受理（date） / 不予受理（date，理由） / 待受理 (open, none
        yet); empty for a 举报, or a 投诉 concluded or withdrawn with no 受理日期 reported."""
        a = self.acceptance
        if a is not None:
            return a.zh()
        on = self.accepted_on
        if on is not None:
            return f"受理（{on.isoformat()}，办结时报送）"
        if self.kind == "complaint" and self.resolved_at is None and not self.resolutions and self.withdrawn is None:
            return "待受理"
        return ""

    @property
    def refused(self) -> bool:
        """不予受理: no mediation follows and its clocks stop; not 办结 (no conclusion on the complaint itself)."""
        a = self.acceptance
        return a is not None and a.decision == "refused"

    @property
    def extended(self) -> bool:
        return any(r.extended for r in self.resolutions)

    def limit(self, name: str) -> ComplaintLimit | None:
        return next((lim for lim in self.limits if lim.limit == name), None)

    @property
    def due_on(self) -> dt.date | None:
        """办结期限: the last day its conclusion is due — a 投诉's mediation limit, a 举报's check (extended when approved);
        None after 不予受理 (no mediation follows, so nothing is due: its accept limit is not one)."""
        if self.refused:
            return None
        lim = self._due_limit()
        return lim.due_on if lim is not None else None

    def _due_limit(self) -> ComplaintLimit | None:
        name = "mediate" if self.kind == "complaint" else "extended" if self.extended else "check"
        return self.limit(name) or (self.limits[-1] if self.limits else None)

    def running(self, lim: ComplaintLimit) -> bool:
        """A limit whose clock still runs: the complaint is not concluded and, for its accept limit, not yet decided on."""
        return self.concluded_on is None and not (lim.limit == "accept" and self.acceptance is not None)

    @property
    def overdue(self) -> bool:
        """超期未办结 (open, a limit still running past due) or 超期办结 (concluded after a limit).  An open 投诉 accepted
        after its 7 days is neither while its mediation runs in time — that acceptance was late (its accept limit stays
        overdue, deadline_zh says 受理超期), the complaint is not late now; a 不予受理 is neither (nothing is due)."""
        if self.refused:
            return False
        if self.concluded_on is None:
            return any(lim.overdue and self.running(lim) for lim in self.limits)
        return any(lim.overdue for lim in self.limits)

    @property
    def refused_late(self) -> bool:
        """不予受理 decided after the accept limit: the law's 7 working days are to decide 受理 or 不予受理, so a late refusal is
        as late as a late acceptance (受理超期), though nothing is due after it."""
        accept = self.limit("accept")
        return self.refused and accept is not None and bool(accept.overdue)

    @property
    def overdue_judged(self) -> bool | None:
        """``overdue`` as a register, the credit report and the complaints table give it: None when there is nothing to
        judge — no limits kept, or withdrawn (counted nowhere: a register's ``?overdue=`` found a misfiled complaint's
        lateness, the complaints table did not); after 不予受理 (no 办结期限) its accept limit alone: late when the refusal
        came after it, else None (a refusal in time has nothing to be in time for)."""
        if not self.limits or self.withdrawn is not None:
            return None
        if self.refused:
            return True if self.refused_late else None
        return self.overdue

    def _accepted_late(self) -> ComplaintLimit | None:
        # (the accept limit a decision on file was made after: a fact of the complaint, not a lateness still running)
        accept = self.limit("accept")
        decided = self.acceptance
        return accept if accept is not None and accept.overdue and decided is not None else None

    @property
    def estimate(self) -> bool:
        """Whether the time limits shown rest on a year the working-day calendar lacks (估算).  The caveat rests on
        the limits shown — the one behind 办结期限 and those said to be passed —: a 举报 due in 2026 is not 估算
        because the extension it may yet be granted would run into a year the calendar lacks.  (The complaints
        table's ``estimate`` column is this, so that the boards count what the register says.)"""
        if not self.limits:
            return False
        behind = None if self.refused else self._due_limit()
        return any(lim.estimate for lim in self.limits if lim.overdue) or (behind is not None and behind.estimate)

    def deadline_zh(self, accept_days: int = 7, extension_days: int = 15) -> str:
        """The line a register and the credit file show: 办理中 / 超期未办结 / 按期办结 / 超期办结, and against what; a
        decision made after the accept limit says 受理超期 beside it; a 不予受理 has no 办结期限 to be in time or late by."""
        if not self.limits:
            return ""
        due = self.due_on.isoformat() if self.due_on else ""
        late = [lim for lim in self.limits if lim.overdue]
        said = "；".join(f"{lim.zh(accept_days, extension_days)}，期限 {lim.due_on.isoformat()}" for lim in late)
        estimate = ESTIMATE_ZH if self.estimate else ""
        decided = self.acceptance
        if self.withdrawn is not None:
            return ("已撤回，办理时限不再计算" + (f"（撤回前已超过{said}）" if late and self.concluded_on is None else ""))
        refused = decided is not None and decided.decision == "refused"
        if self.concluded_on is None:
            if refused:
                return f"不予受理：{decided.decided_on.isoformat()} 决定（理由：{mask_personal_info(decided.reason)}），不予调解" + (f"；超过{said}" if late else "")
            accepted_late = self._accepted_late()
            accepted = ""
            if decided is not None:
                accepted = (f"已受理（{decided.decided_on.isoformat()}"
                            + (f"，晚于受理期限 {accepted_late.due_on.isoformat()}" if accepted_late is not None else "") + "），")
            running = [lim for lim in late if self.running(lim)]
            if running:
                still = "；".join(f"{lim.zh(accept_days, extension_days)}，期限 {lim.due_on.isoformat()}" for lim in running)
                return f"超期未办结：{accepted}已超过{still}" + estimate
            return f"办理中{'（受理超期）' if accepted_late is not None else ''}，{accepted}办结期限 {due}" + estimate
        on = self.concluded_on.isoformat()
        if refused:
            # (no mediation followed the refusal: nothing was due, so no 按期 / 超期 verdict; a late refusal says so)
            return f"不予受理后办结：{on} 办结；{decided.zh()}" + (f"；超过{said}" if late else "") + estimate
        accept = self.limit("accept")
        unknown = "；未报受理日期，受理期限无法判断" if accept is not None and accept.overdue is None else ""
        if accept is not None and accept.overdue and decided is None and self.accepted_on is None:
            unknown = "；超过受理期限仍未报受理决定"
        if decided is not None:
            unknown = f"；{decided.zh()}"
        extended = "（经负责人批准延长核查期限）" if self.kind == "report" and self.extended else ""
        if late:
            return f"超期办结：{on} 办结，超过{said}{extended}{unknown}" + estimate
        return f"按期办结：{on} 办结，办结期限 {due}{extended}{unknown}" + estimate


class ComplaintWithdrawal(_Record):
    """A ``complaint.withdrawn`` (撤回投诉登记): on a withdrawn complaint's record, or in ``CreditFile.withdrawals_waiting``
    until its complaint comes."""
    event_id: str
    complaint_id: str
    withdrawn_at: dt.datetime
    reason: str
    by: str = Field(description="who withdrew it, as the event's source names it (its name, else its id)")
    duplicate_of: str | None = Field(default=None, description="the complaint of the same enterprise it repeats, when that is why")


RecordSupersededAs = Literal["repeated", "corrected", "outdated"]
"""Why a record of an inspection, an interview or a decision on file no longer counts (the same id sent again):

- ``repeated``: the same record sent again under a new event id: kept, nothing counted again;
- ``corrected``: a differing record of the same id, newer, took its place (its ``corrects`` names this one);
- ``outdated``: a differing record of the same id dated before the one on file that arrived after it: the later
  one stands, this one is kept for the record."""

RECORD_SUPERSEDED_ZH = {
    "repeated": "重复报送，与已收到的记录（事件 {event_id}）内容相同，不重复计入",
    "corrected": "已由更正后的记录（事件 {event_id}）取代，不计入",
    "outdated": "时间早于已收到的记录（事件 {event_id}）而晚到，以该记录为准，不计入",
}


class InspectionRecord(_Record):
    inspection_id: str
    event_id: str
    occurred_at: dt.datetime
    inspector: str
    kind: str
    result: str
    findings: list[Finding] = Field(default_factory=list)
    superseded_by: str | None = Field(default=None, description="the record of the same inspection id that counts instead of this one")
    superseded_as: RecordSupersededAs | None = None
    corrects: str | None = Field(default=None, description="event id of the earlier record of this inspection that this one replaced")

    def superseded_zh(self) -> str | None:
        return None if self.superseded_by is None else RECORD_SUPERSEDED_ZH[self.superseded_as or "corrected"].format(event_id=self.superseded_by)


RectificationStatus = Literal["open", "completed", "verified", "rejected"]


class Verification(_Record):
    """One ``rectification.verified`` (整改复查) of a rectification: its history keeps them all."""
    event_id: str
    verified_at: dt.datetime
    verifier: str
    accepted: bool
    note: str = ""
    new_deadline: dt.date | None = None
    outdated: bool = Field(default=False, description="dated before a verification on file when it arrived: kept, not applied")


class RectificationResend(_Record):
    """A ``rectification.ordered`` under an id on file (a correction, a 延期, the same order sent again): how it was taken."""
    event_id: str
    occurred_at: dt.datetime
    taken_as: Literal["repeated", "corrected", "outdated"] = Field(
        description="repeated: the same content; corrected: it differs and is dated on or after the order in force, which it "
                    "replaces; outdated: it differs but is dated before it (kept, not applied)")
    changes: dict[str, list[str]] = Field(default_factory=dict, description="field -> [on file, sent] of what differs")


class RectificationWaiting(_Record):
    """A ``rectification.completed`` or ``rectification.verified`` whose order is not on file yet (the order sent late, or
    its id mistyped): kept, applied when the order comes, as if it had come after it."""
    event_id: str
    occurred_at: dt.datetime
    kind: Literal["completed", "verified"]
    evidence: str = ""
    verifier: str = ""
    accepted: bool = True
    note: str = ""
    new_deadline: dt.date | None = None


class RectificationRecord(_Record):
    rectification_id: str
    event_id: str | None = Field(default=None, description="the order's event")
    what: str
    cause: str = ""
    ordered_at: dt.datetime
    deadline: dt.date
    status: RectificationStatus = "open"
    completed_at: dt.datetime | None = None
    evidence: str | None = None
    verified_at: dt.datetime | None = None
    verifier: str | None = None
    note: str | None = None
    overdue: bool = Field(default=False, description="past its deadline (by event time) before it was completed")
    redo_deadline: dt.date | None = Field(default=None, description="重新限期 a rejection set: the deadline in force while rejected")
    overdue_by: dt.date | None = Field(default=None, description="the deadline it was found overdue by (a later 重新限期 does not "
                                                                  "excuse an earlier lateness)")
    verifications: list[Verification] = Field(default_factory=list, description="every verification (复查) in the order received; "
                                                                              "verified_at, verifier and note are the one in force")
    overdue_before: dt.date | None = Field(default=None, description="the deadline it was first overdue by, when a redo deadline "
                                                                     "(重新限期) it also missed moved overdue_by to that one")
    resends: list[RectificationResend] = Field(default_factory=list, description="orders received again under its id, in order")
    # the day each deadline ends, as the fold judged lateness by it: a deadline on a weekend or holiday runs to the next
    # working day (民法典 第二百零三条), so a client reading ``deadline`` alone would count a week of 国庆 as late
    due_on: dt.date | None = Field(default=None, description="the day deadline ends: itself on a working day, else the next "
                                                             "working day (None in a file folded before it was kept)")
    due_estimate: bool = Field(default=False, description="due_on was moved on the estimate of a year the working-day "
                                                          "calendar lacks (估算)")
    redo_due_on: dt.date | None = Field(default=None, description="the day redo_deadline ends, moved off a holiday as due_on")
    redo_due_estimate: bool = Field(default=False, description="redo_due_on was moved on an estimate (估算)")

    def ends(self, deadline: dt.date) -> tuple[dt.date, bool]:
        """The day one of its deadlines (``deadline``, ``redo_deadline``, or ``overdue_by`` — always one of them or the
        deadline a correction replaced) ends, and whether that rests on an estimate; the date itself when not kept."""
        if deadline == self.deadline and self.due_on is not None:
            return self.due_on, self.due_estimate
        if deadline == self.redo_deadline and self.redo_due_on is not None:
            return self.redo_due_on, self.redo_due_estimate
        return deadline, False

    def deadline_zh(self, deadline: dt.date) -> str:
        """One of its deadlines as a supervisor reads it: with the day a holiday moved it to, 估算 when so."""
        return moved_deadline_zh(deadline, *self.ends(deadline))

    @property
    def overdue_from(self) -> dt.date | None:
        """The day its days overdue count from: the end of the deadline it is overdue by (None while not overdue)."""
        return self.ends(self.overdue_by or self.deadline)[0] if self.overdue else None


class EnforcementRecord(_Record):
    """行政处罚决定 on file."""

    decision_no: str
    event_id: str
    occurred_at: dt.datetime
    decided_on: dt.date
    authority: str | None = None
    violation: str
    legal_basis: str
    penalties: list[Penalty] = Field(default_factory=list)
    serious_dishonesty: bool = False
    sample_nos: list[str] = Field(default_factory=list)
    inspection_ids: list[str] = Field(default_factory=list)
    # 撤销 (enforcement.revoked): on file still, in force no more
    revoked_on: dt.date | None = None
    revoked_by: str | None = None
    revoked_ref: str | None = None
    revoked_reason: str | None = None
    # 提前移出 (enforcement.listing_removed, 信用修复): the decision stands, its listing as 严重违法失信 ends on this day
    listing_removed_on: dt.date | None = None
    listing_removed_ref: str | None = None
    listing_removed_reason: str | None = None
    listing_removal_event_id: str | None = None

    @property
    def in_force(self) -> bool:
        return self.revoked_on is None

    @property
    def fined_yuan(self) -> float:
        return sum(p.amount_yuan or 0.0 for p in self.penalties if p.kind == "fine")


class InterviewRecord(_Record):
    """约谈 on file."""

    interview_id: str
    event_id: str
    occurred_at: dt.datetime
    held_on: dt.date
    held_by: str
    officials: list[str] = Field(default_factory=list)
    interviewee: str | None = None
    reason: str
    related_event_ids: list[str] = Field(default_factory=list)
    commitments: str = ""
    superseded_by: str | None = Field(default=None, description="the record of the same interview id that counts instead of this one")
    superseded_as: RecordSupersededAs | None = None
    corrects: str | None = Field(default=None, description="event id of the earlier record of this interview that this one replaced")
    follow_up_by: dt.date | None = None
    follow_up_inspection_id: str | None = Field(default=None, description="the earliest inspection on or after the interview day: the follow-up")
    follow_up_on: dt.date | None = Field(default=None, description="that inspection's (local) day")
    follow_up_overdue: bool = Field(default=False, description="by the dates: the follow-up came after its date, or has not come and the date passed")
    follow_up_alerted: bool = Field(default=False, description="the alert for a missing follow-up was raised (the inspection closes it)")
    follow_up_due_on: dt.date | None = Field(default=None, description="the day follow_up_by ends: itself on a working day, else the "
                                                                       "next working day (民法典 第二百零三条)")
    follow_up_due_estimate: bool = Field(default=False, description="follow_up_due_on was moved on an estimate (估算)")

    def superseded_zh(self) -> str | None:
        return None if self.superseded_by is None else RECORD_SUPERSEDED_ZH[self.superseded_as or "corrected"].format(event_id=self.superseded_by)


class Counts(_Record):
    samples: int = 0
    samples_passed: int = 0
    samples_failed: int = 0
    samples_undetermined: int = 0
    samples_unconfirmed: int = Field(default=0, description="of samples_passed, those qrisk's own check fails on items the lab "
                                                            "passed (系统复核不合格，检验报告结论为合格): counted 合格, to check with the lab")
    complaints: int = 0
    complaints_verified: int = 0
    inspections: int = 0
    inspections_nonconforming: int = 0
    rectifications_open: int = 0
    rectifications_overdue: int = 0
    enforcements: int = 0
    interviews: int = 0


class _ReportIndex:
    """Where each sample number's reports stand in a credit file's ``samples``, kept beside the file rather than in it
    (not state: nothing to snapshot, compare or validate).  ``samples`` only grows, by appends, so the index catches up
    with its tail; a file whose list was replaced, or a new file reusing a dead one's id, gets a new index."""

    __slots__ = ("file", "samples", "count", "by_no", "by_day")

    def __init__(self, file: "CreditFile", samples: list["SampleRecord"]):
        key = id(file)
        # (the entry leaves with its file: the weak reference's callback runs when the file is collected)
        self.file = weakref.ref(file, lambda _ref, key=key: _REPORT_INDEX.pop(key, None))
        self.samples = samples
        self.count = 0
        self.by_no: dict[str, list[int]] = {}  # sample number → positions
        self.by_day: list[tuple[dt.date, int]] = []  # (sampled_on, position), sorted


_REPORT_INDEX: dict[int, _ReportIndex] = {}


class _RecordIndex:
    """A credit file's ``rectifications`` or ``inspections`` by id and by date, kept beside the file as ``_ReportIndex``
    is (not state: derived from the list, so a restored file builds it again).  Both lists only grow, by appends.

    ``watch`` (rectifications): the positions ``_mark_overdue`` looks at on each event — every record but those it found
    done with (completed, verified, or overdue with no redo deadline to miss).  A record leaves it only there and comes
    back whenever ``CreditFile.rectification`` hands it out, the one way a handler reaches a record to change it: a file
    with years of rectifications walked every one of them for each event it received."""

    __slots__ = ("file", "records", "count", "id_attr", "time_attr", "latest", "by_time", "watch")

    def __init__(self, file: "CreditFile", records: list, id_attr: str, time_attr: str):
        key = (id(file), id_attr)
        self.file = weakref.ref(file, lambda _ref, key=key: _RECORD_INDEX.pop(key, None))
        self.records = records
        self.count = 0
        self.id_attr, self.time_attr = id_attr, time_attr
        self.latest: dict[str, int] = {}  # id → position of its latest record
        self.by_time: list[tuple[dt.datetime, int]] = []  # (when, position), sorted
        self.watch: set[int] = set()

    def caught_up(self) -> "_RecordIndex":
        records = self.records
        if self.count < len(records):
            latest, by_time, watch, id_attr, time_attr = self.latest, self.by_time, self.watch, self.id_attr, self.time_attr
            for i in range(self.count, len(records)):
                d = records[i].__dict__
                latest[d[id_attr]] = i
                bisect.insort(by_time, (d[time_attr], i))
                watch.add(i)
            self.count = len(records)
        return self

    def between(self, lo: dt.datetime, hi: dt.datetime) -> list:
        """The records dated from ``lo`` to ``hi`` (both included), in the order filed."""
        by_time, records = self.by_time, self.records
        first = bisect.bisect_left(by_time, (lo, -1))
        last = bisect.bisect_right(by_time, (hi, len(records)))
        return [records[i] for i in sorted(i for _, i in by_time[first:last])]


_RECORD_INDEX: dict[tuple[int, str], _RecordIndex] = {}


class CreditFile(_Record):
    enterprise_id: str
    profile: EnterpriseProfile | None = None
    registered_at: dt.datetime | None = None
    last_event_at: dt.datetime | None = Field(default=None, description="latest event time seen: the file's own clock")
    events: int = 0
    samples: list[SampleRecord] = Field(default_factory=list)
    complaints: list[ComplaintRecord] = Field(default_factory=list, description="the complaints that count (not withdrawn)")
    complaints_withdrawn: list[ComplaintRecord] = Field(
        default_factory=list, description="complaints the bureau withdrew (complaint.withdrawn: filed under the wrong enterprise, or "
                                          "registered twice): on file with why, out of every count, chart, score and alert")
    complaints_due_next: dt.date | None = Field(
        default=None, description="the earliest due date of an open complaint's limit not yet passed (complaint_deadlines): the fold "
                                  "looks at the complaints only once the clock passes it")
    withdrawals_waiting: dict[str, ComplaintWithdrawal] = Field(
        default_factory=dict, description="complaint id -> a withdrawal received before its complaint (applied when it comes)")
    acceptances_waiting: dict[str, list[ComplaintAcceptance]] = Field(
        default_factory=dict, description="complaint id -> its acceptance decisions received before the complaint, in order of arrival")
    inspections: list[InspectionRecord] = Field(default_factory=list)
    rectifications: list[RectificationRecord] = Field(default_factory=list)
    enforcements: list[EnforcementRecord] = Field(default_factory=list, description="行政处罚决定")
    interviews: list[InterviewRecord] = Field(default_factory=list, description="约谈")
    serious_dishonesty: str | None = Field(
        default=None, description="decision no. of the 行政处罚决定 that listed the enterprise as 严重违法失信: its risk grade is D")
    licence_revoked: str | None = Field(
        default=None, description="decision no. of the 行政处罚决定 that revoked its licence (吊销许可证): it may no longer produce")
    deregistered_on: dt.date | None = Field(
        default=None, description="local date its deregistration (注销, enterprise.updated status) took effect: it no longer produces")
    suspended_on: dt.date | None = Field(
        default=None, description="local date its stop (停产, enterprise.updated status suspended) took effect, while stopped: "
                                  "routine sampling is not due")
    counts: Counts = Field(default_factory=Counts)
    rectifications_waiting: dict[str, list[RectificationWaiting]] = Field(
        default_factory=dict, description="rectification id -> its completions and verifications received before the order, in order")
    resolutions_waiting: Annotated[dict[str, list[ComplaintResolution]], BeforeValidator(_one_or_many)] = Field(
        default_factory=dict, description="complaint id -> its resolutions received before the complaint itself, in order of arrival")
    retests: dict[str, str] = Field(default_factory=dict, description="sample no. -> event id of its re-test (复检), the corrected one when the re-test was corrected")
    revocations_waiting: dict[str, Revocation] = Field(
        default_factory=dict, description="decision no. -> a revocation (撤销行政处罚决定) that came before its decision")
    retractions: dict[str, Retraction] = Field(default_factory=dict, description="sample no. -> the bureau's retraction (撤销报告) of its reports")
    fluctuation: FluctuationState = Field(default_factory=FluctuationState)
    risk: RiskState = Field(default_factory=RiskState, description="risk grade (风险分级), its history and inputs")
    warnings: list[AlertDecision] = Field(default_factory=list, description="recent early warnings (bounded by risk.warnings_kept)")
    campaign: CampaignRecord = Field(default_factory=CampaignRecord, description="the upgrade campaign (提档升级): stages, training, tests")

    @property
    def pass_rate(self) -> float | None:
        judged = self.counts.samples_passed + self.counts.samples_failed
        return None if judged == 0 else self.counts.samples_passed / judged

    def complaint(self, complaint_id: str) -> ComplaintRecord | None:
        """The complaint that counts (one withdrawn is ``withdrawn_complaint``)."""
        return next((c for c in reversed(self.complaints) if c.complaint_id == complaint_id), None)

    def withdrawn_complaint(self, complaint_id: str) -> ComplaintRecord | None:
        return next((c for c in reversed(self.complaints_withdrawn) if c.complaint_id == complaint_id), None)

    def inspection(self, inspection_id: str) -> InspectionRecord | None:
        """The record of the inspection that counts (a repeat, an outdated or a corrected one aside)."""
        return next((i for i in reversed(self.inspections) if i.inspection_id == inspection_id and i.superseded_by is None), None)

    def interview(self, interview_id: str) -> InterviewRecord | None:
        """The record of the interview that counts (a repeat, an outdated or a corrected one aside)."""
        return next((i for i in reversed(self.interviews) if i.interview_id == interview_id and i.superseded_by is None), None)

    def rectification(self, rectification_id: str) -> RectificationRecord | None:
        """The latest record under the id (an index: each completion, verification and resend looks its order up)."""
        index = self._record_index("rectifications", "rectification_id", "ordered_at")
        i = index.latest.get(rectification_id)
        if i is None:
            return None
        index.watch.add(i)  # (a record handed out may be changed: ``_mark_overdue`` looks at it again)
        return self.rectifications[i]

    def rectifications_watched(self) -> list[tuple[int, RectificationRecord]]:
        """The rectifications ``_mark_overdue`` must look at with their positions, in the order filed
        (``_RecordIndex.watch``); it calls ``rectification_settled`` for those it is done with."""
        records = self.rectifications
        return [(i, records[i]) for i in sorted(self._record_index("rectifications", "rectification_id", "ordered_at").watch)]

    def rectification_settled(self, position: int) -> None:
        self._record_index("rectifications", "rectification_id", "ordered_at").watch.discard(position)

    def rectifications_ordered(self, lo: dt.datetime, hi: dt.datetime) -> list[RectificationRecord]:
        """The rectifications ordered from ``lo`` to ``hi`` (both included), in the order filed."""
        return self._record_index("rectifications", "rectification_id", "ordered_at").between(lo, hi)

    def inspections_between(self, lo: dt.datetime, hi: dt.datetime) -> list[InspectionRecord]:
        """The inspection records dated from ``lo`` to ``hi`` (both included), in the order filed."""
        return self._record_index("inspections", "inspection_id", "occurred_at").between(lo, hi)

    def _record_index(self, name: str, id_attr: str, time_attr: str) -> _RecordIndex:
        records = self.__dict__[name]
        index = _RECORD_INDEX.get((id(self), id_attr))
        if index is None or index.records is not records or index.count > len(records) or index.file() is not self:
            index = _RECORD_INDEX[(id(self), id_attr)] = _RecordIndex(self, records, id_attr, time_attr)
        return index.caught_up()

    def enforcement(self, decision_no: str) -> EnforcementRecord | None:
        return next((r for r in reversed(self.enforcements) if r.decision_no == decision_no), None)

    def final_samples(self) -> list[SampleRecord]:
        """Judged samples whose verdict stands: an original replaced by its re-test is left out."""
        return [s for s in self.samples if s.judgement is not None and s.superseded_by is None]

    def sample_by_event(self, event_id: str) -> SampleRecord | None:
        return next((s for s in reversed(self.samples) if s.event_id == event_id), None)

    def reports_of(self, sample_no: str) -> list[SampleRecord]:
        """The reports of ``sample_no`` on file, in the order filed (``samples`` filtered), from an index: each report
        received looks its sample up, and a walk of every report on file made the fold of a file with years of
        sampling several times slower per event than a new one's."""
        samples = self.samples
        return [samples[i] for i in self._report_index().by_no.get(sample_no, ())]

    def reports_sampled(self, since: dt.date | None, until: dt.date | None) -> list[SampleRecord]:
        """The reports on file sampled from ``since`` to ``until`` (both included; None: open), in the order filed:
        what a signal's Pareto and a failure's repeats look at, a quarter or a year of a file that may hold ten."""
        samples, by_day = self.samples, self._report_index().by_day
        lo = 0 if since is None else bisect.bisect_left(by_day, (since, -1))
        hi = len(by_day) if until is None else bisect.bisect_right(by_day, (until, len(samples)))
        return [samples[i] for i in sorted(i for _, i in by_day[lo:hi])]

    def _report_index(self) -> "_ReportIndex":
        samples = self.samples
        index = _REPORT_INDEX.get(id(self))
        if index is None or index.samples is not samples or index.count > len(samples) or index.file() is not self:
            index = _REPORT_INDEX[id(self)] = _ReportIndex(self, samples)
        if index.count < len(samples):
            by_no, by_day = index.by_no, index.by_day
            for i in range(index.count, len(samples)):
                d = samples[i].__dict__
                by_no.setdefault(d["sample_no"], []).append(i)
                bisect.insort(by_day, (d["sampled_on"], i))
            index.count = len(samples)
        return index

    def view(self) -> dict:
        """The file as the API shows it: the fold plus derived figures (``VIEW_ONLY``: the keys
        that summarise the risk state and the charts instead of holding them)."""
        doc = self.model_dump(mode="json", exclude={"fluctuation", "risk"})
        doc["pass_rate"] = self.pass_rate
        rs = self.risk
        doc["risk"] = {
            "grade": rs.grade, "score": rs.score, "as_of": (as_of(self) or rs.tick_at).isoformat() if rs.grade else None,
            "next_inspection_due": rs.next_inspection_due.isoformat() if rs.next_inspection_due else None,
            "current": graded_data(rs.current) if rs.current else None,
            "history": [{k: v for k, v in graded_data(h).items() if k != "contributions"} for h in rs.history],
        }
        doc["series"] = [
            {
                "product": s.product, "item_code": s.item_code, "item_name": s.item_name, "unit": s.unit, "usl": s.usl,
                "phase": s.monitor.phase, "points": s.monitor.count, "limits": finite_limits(s.monitor.limits),
                "ewma": s.monitor.ewma if s.monitor.phase == "II" else None, "signals": s.signals,
                "last": point_dict(s.recent[-1]) if s.recent else None,
                # the new baselines a supervisor confirmed (fluctuation.rebaselined), each from its point ``start`` on
                "rebaselines": [ph.model_dump(mode="json") for ph in s.phases],
            }
            for s in sorted(self.fluctuation.series.values(), key=lambda s: s.key)
        ]
        applied: dict[str, list[str]] = {}
        for s in self.fluctuation.series.values():
            for ph in s.phases:
                applied.setdefault(ph.event_id, []).append(s.key)
        doc["rebaselines"] = [{**r.model_dump(mode="json"), "applied_to": sorted(applied.get(r.event_id, []))}
                              for r in self.fluctuation.rebaselines]
        return doc


_SNAPSHOT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
"""What ``json.dumps(doc, ensure_ascii=False, separators=(",", ":"))`` uses: a snapshot's parts, joined, are its bytes."""


VIEW_ONLY = frozenset({"pass_rate", "risk", "series", "rebaselines"})
"""Keys ``CreditFile.view()`` adds or replaces; without them a view validates as a ``CreditFile``."""


class CountyState(_Record):
    """Everything the fold keeps: one credit file per enterprise and the ids already applied."""

    files: dict[str, CreditFile] = Field(default_factory=dict)
    seen_event_ids: set[str] = Field(default_factory=set)
    clock: dt.datetime | None = Field(default=None, description="latest clock.tick applied")
    categories: dict[str, CategoryRates] = Field(default_factory=dict, description="county-level pass-rate charts per category")
    applied: int = 0

    def snapshot(self) -> bytes:
        # sorted ids: a set's iteration order is not stable across processes.  Every dict keeps the
        # order it was built in (no sort_keys): restored, a state iterates as the live one did (a tick's
        # effects file by file, a report's dimensions), and a restart changes no answer's order.
        # Dumped one credit file at a time, into the bytes json.dumps gives for the whole dump: the whole
        # state as plain values at once (every shared judgement a dict of its own) took ~15 times the
        # state's memory, 1.1 GB at the peak for thirty years of a demo county (bench/bench_memory.py)
        dump = _SNAPSHOT_JSON.encode
        parts = [b"{"]
        for name in type(self).__pydantic_fields__:  # in the order model_dump gives them
            if name == "seen_event_ids":
                continue
            if len(parts) > 1:
                parts.append(b",")
            parts.append(f"{dump(name)}:".encode("utf-8"))
            if name == "files":
                parts.append(b"{")
                for k, (eid, file) in enumerate(self.files.items()):
                    parts.append(f"{',' if k else ''}{dump(eid)}:{dump(file.model_dump(mode='json'))}".encode("utf-8"))
                parts.append(b"}")
            else:
                parts.append(dump(self.model_dump(mode="json", include={name})[name]).encode("utf-8"))
        parts.append(f',"seen_event_ids":{dump(sorted(self.seen_event_ids))}}}'.encode("utf-8"))
        return b"".join(parts)

    @classmethod
    def restore(cls, blob: bytes) -> "CountyState":
        state = cls.model_validate_json(blob)
        compact(state, (ItemJudgement, SumOfRatiosMember))  # shared as the fold shares them: a restart takes no more memory than a replay
        return state
