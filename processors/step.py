"""The one entry point of the pure core: ``step(state, event, rules) -> (state, effects)``.

The embedded runtime, replay and (later) Faust agents all call this function.
It reads no clock and does no I/O: time is the event's ``occurred_at`` (or a
``clock.tick`` in the log), and the standards catalogue and policy arrive in
``Rules``.  State is updated in place and returned, so a caller that needs the
old state must snapshot it first.
"""
from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, ValidationError

from processors._build import builder
from processors.ids import event_key
from processors.personal_info import mask_personal_info
from processors.credit_file import (
    COMPLAINT_KIND_ZH,
    ComplaintAcceptance,
    ComplaintLimit,
    RESENT,
    Retraction,
    Revocation,
    ComplaintRecord,
    ComplaintResolution,
    ComplaintWithdrawal,
    CountyState,
    CreditFile,
    EnforcementRecord,
    InspectionRecord,
    InterviewRecord,
    RectificationRecord,
    RectificationResend,
    RectificationWaiting,
    SampleRecord,
    Turnaround,
    Verification,
)
from processors.fluctuation import (Rebaseline, complaint_uncharted, complaints_unfounded, no_longer_out, on_complaint, on_sample_judged,
                                    overturned, rebaselined, recharted, recounted, refailed, reinstated, signalled_periods, uncharted)
from processors.campaign import apply_tier, judge_pending_comparisons, on_campaign_event, recheck_acceptance, registry_tier
from processors.judgement import SampleJudgement, judge_sample, ratio_figure, same_figure
from processors.risk import check_missing, evaluate, filled_gaps, graded_data, in_hours, next_inspection_due, observe
from processors.warnings import (ALERT_KIND, ALERTING_KINDS, CHANNEL_ZH, COMPLAINT_ZH, RESOLVED_KIND, complaint_overdue_resolved, complaint_unfounded_resolved, corrected_resolved, decide, in_burst,
                                 decision_data, disagreement_settled, enforcement_revoked_resolved, follow_up_corrected_resolved, follow_up_resolved,
                                 grade_fell_resolved, inspection_corrected_resolved,
                                 illness_reported,
                                 overdue_withdrawn_resolved, overturned_resolved, resolved, retracted_resolved, lab_failure_settled)
from schemas.events import (
    AlertActionEvent,
    CampaignActivityEvent,
    CampaignAssessmentEvent,
    CampaignCommitmentEvent,
    CampaignRetractedEvent,
    CampaignTrainingEvent,
    ClockTick,
    ComplaintAcceptedEvent,
    ComplaintReceivedEvent,
    ComplaintResolvedEvent,
    EnterpriseRegistered,
    EnterpriseUpdated,
    EnforcementDecidedEvent,
    EnforcementListingRemovedEvent,
    EnforcementRevokedEvent,
    Envelope,
    FluctuationRebaselinedEvent,
    PENALTY_ZH,
    REVOKED_BY_ZH,
    InspectionCompletedEvent,
    InterviewHeldEvent,
    RectificationCompletedEvent,
    RectificationOrderedEvent,
    RectificationVerifiedEvent,
    SamplingResult,
    SamplingResultEvent,
    SamplingRetractedEvent,
    ComplaintWithdrawnEvent,
    TestItem,
)
from schemas.policy import Policy
from schemas.standards import Catalogue
from schemas.working_days import ESTIMATED_AS_ZH, DueDate, WorkingCalendar, add_working_days, load_calendar, moved_deadline_zh, period_end, working_days_between


class Effect(BaseModel):
    """What changed, for later stages (alerts, grading, sinks) to act on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    enterprise_id: str
    event_id: str
    occurred_at: dt.datetime
    data: dict[str, Any] = {}


FOLD_VERSION = 87
"""What a credit file folded by this code means: raised whenever the fold keeps, judges or grades
differently (13: an undated sample judged under each edition, nothing judged is no pass, plan
messages with their results; 15: a correction's item series built again; 16: a correction of an
original its re-test replaced re-judges the items the re-test did not cover, and re-charts; a complaint
sent again is counted once; a resolution before its complaint waits for it; a failing sum of ratios the
lab passed item by item is a disagreement; an illness told in a complaint's text alerts; a re-test or a
correction is judged by the sending lab system too (lab_id); a sum of ratios near 1 warns; 屡次不合格;
17: a rule's caveat in its messages: what an unverified rule leaves in doubt, a product-bound limit's condition;
the campaign record keeps the commitment letter's number and every assessment (kind, date, tier, result, assessor,
note), and campaign.accepted_with_gaps names a training KPI's counts and reads 省级抽检合格率, 目标 100%; a campaign
stage is dated by the document that completes it; a comparison test keeps its item's name; 18: a lab system's report
corrects only a report the same lab system sent — one imported, or posted by an admin or the bureau, is no longer
corrected by any lab key printing its lab name, which is filed as other_lab; 19: a report no lab system sent takes
the place of a lab system's report of the sample whatever lab it prints and however it is dated — a lab key sending a
sample number first no longer has the official report filed as outdated or other_lab; 20: a lab's 不合格 on an item
qrisk cannot judge alerts (judgement.lab_failed_unjudged); 21: a re-test covering part of a failing sum of ratios
is not admitted (partial_sum), of a passing one the first lab's sum stands, and a re-test of every member drops
the first lab's printed sum line; 22: the complaints-per-month chart counts the categories spc.complaint_chart_categories
names, not other, and says how many are substantiated; 23: a resend listing its lines in another order is a repeat,
and the re-test window counts local calendar days; 24: a trusted report saying what a lab system's says takes its place
too, a lab system's failure beside a trusted report nobody can judge stands in either order, a printed sum alone is not
cleared by a partial re-test, and the first lab's sum stands whole; 25: sampling.retracted (撤销报告): the bureau retracts
a sample number's reports under an enterprise — marked retracted, no longer counted, charted, graded or alerted, and a
report of it arriving after the retraction is filed retracted; a lab's printed sum of ratios that agrees is explained once; alerts whose ground is withdrawn close — complaints found 不属实, a grade fallen below the one announced —; a rectification completed in time and rejected after its deadline is not overdue by it, and a rejection may set new_deadline; enforcement.revoked
takes a decision out of the score, its listing and its licence revocation; the control charts widen short-baseline limits, run
rule 1 and the EWMA, know the reporting step, read non-detects as intervals, chart plan counts as log10 upwards only and
complaints against exact Poisson limits; a held grade moves on after risk.worsen_hold_days; one shift scores once; a
rectification weighs risk.credit.memory_years; 26: a series signal the failing result fires by itself neither alerts
nor scores beside the failure; a correction takes the signals its replaced report alone raised, their alerts and points;
a failure only qrisk finds (the lab passed it) alerts as 系统复核不合格; a complaint of illness alerts on receipt
(待核实); the lab's 不合格 on an unregistered enterprise's sample alerts; a better grade gives no inspection grace;
a disagreement closes when a re-test or correction decides; texts: next steps, both verdicts, units spaced; 27: a failure
only qrisk finds counts as the report's 合格 in the counts, charts, Paretos, grading and KPIs (SampleJudgement.counted),
its disagreement alert folded into its own; a printed sum that gives qrisk's figure is listed once; a complainant's
name and numbers masked in alerts; a passing re-test by a lab no retest.institutions lists leaves the alert open; an
enterprise's alerts take its new town when it moves (and are routed for it), a manual escalation within an hour of the
last tells nobody, and an alert leaving 待处置 by the bureau's response — an interview, a rectification ordered or
verified, a supervisor's step — has acknowledged_at; 28: a pass-rate chart signals above its limit by more than
rounding (2 of 16 at 2 % is the limit, not above it), and a category's county chart only when its failures come from
spc.category_min_enterprises enterprises, naming them; a rise in grade says the terms that fell or left the score too,
so the changes it lists add up; an overdue rectification's alert dates its count of days, 截至 …; a missing sample or
inspection's alert closes saying the record came, not 补录; 29: the campaign record decides by its documents' dates, not
their loading order — the earliest letter (every letter kept), the earliest tiering, the newest acceptance (a later failure
reverses a pass), stage dates re-dated by an earlier document —, and a passed acceptance without the three ones is
须核实); 30: a commitment letter without a number, of the same date and signatory, is that letter sent again, not a
second one; 31: a complainant's name after 我是/投诉人…反映/回电, an ID card number written in groups, QQ numbers and WeChat
ids masked in alerts; 32: an inspection or interview id sent again is one record — the same content a repeat, a differing
one a correction taking the older's place (by its date, then occurred_at, then the log's order; the older kept, marked) in
the counts, the score and the nonconforming alert; a complaint keeps every conclusion, dated, the latest-dated in force
whatever the arrival order; a decision and an interview count in the dynamic window from decided_on / held_on, and a
revocation dated before its decision is said; an accepted rectification verification reversed opens the rectification again
(its verifications kept), an earlier-dated one arriving late changes nothing; an overdue rectification still undone
weighs until it is done; a decision number on file sent again is said, a differing one field by field (the decision on
file stands); 33: the alert fold (alerts/lifecycle.py) tells a manual escalation apart from a missed
deadline (reason escalated_by_hand, 手动升级通报, saying who escalated and why); an alert the system closes (a correction or an
admitted re-test took the failure back, the awaited record came, …) tells whoever was told of it, and keeps the closing's
evidence (closing_evidence); an escalation after a reopening counts the wait from the reopening (重新打开后 …
仍未确认; reopened_at), and a wait under an hour in minutes; a reopening a newer alert handles is refused naming what to do (on the newer
alert, or a comment); an enterprise moving town tells the receivers each of its alerts being handled gains that
it was handed to them (reason transferred, 预警移交); an unrouted town's opening step names the fallback by who reads
it (its supervisor: 已通知 分管局长); 34: the alert fold acts on what the credit file made of a verification or a resend — an
acceptance of a rectification reversed puts the alerts it verified or closed back to rectifying (整改中), telling their
receivers as a reopening does, an earlier-dated verification arriving late moves no alert, and an interview record sent
again or outdated adds no step; a move hands an escalated alert over without a notice to those its escalation told; 35: a
rectification reported done again is said (rectification.completion_repeated) and adds no step to its alerts; 36: a
report keeps the sampling date its derived rows were first filed under (SampleRecord.filed_on: a re-test its original's,
also once the original is retracted; one that came before its original its own), so that a retracted re-test's row
written again replaces the one that counted instead of standing beside it; the alert fold names in a warning.resolved
or fluctuation.signal_withdrawn effect the alert it closed (alert_id, "" for none), as in a raise; 37: a
campaign assessment loaded later on the same day as one of its kind corrects it (campaign.assessment_corrected: the starting
tier, the tier now and the acceptance's result read the correction, no failed re-inspection is counted), a training report of the same as_of loaded later corrects the earlier
(campaign.training_corrected: the one corrected completes no stage), first-attempt passes rising by more than the
exam takers between two reports are said (campaign.first_pass_doubtful, 须核实), a comparison test of an unregistered
enterprise without both uncertainties waits for its category and is judged at registration, one signatory written with
half- or full-width brackets is one letter, campaign.retracted
withdraws a campaign record (kept on file, no longer counted; one arriving after its retraction is filed retracted), visits and
assistance are kept as records with their event ids, and the registry's tier is the enterprise's again when no assessment stands; 38: a 投诉聚集 is any complaint_cluster.window_days window holding the complaint just verified, whatever order they were
verified in, of complaint_cluster.categories (not other: price, delivery, service), which scores no 经核实投诉 points
either (risk.dynamic.complaint_verified.categories), and a cluster sharing a complaint with an earlier one keeps its
dedup key (one alert while it rolls on); complaint.burst (快速反应): complaint_burst.k complaints received within
complaint_burst.window_days, verified or not, alert (warnings.complaint_burst); alerts mask 消费者李明反映, 诉求人, a relative's
name, local and Chinese-numeral phone numbers and 身份证编号, and no longer 被投诉人; callers' everyday words of illness (肚子疼,
拉稀, 挂水, 闹肚子 …) alert, a denial after the word (腹泻没有) does not; a complaint keeps whether it was verified at receipt
(verified_at_receipt); the complaint chart's signal names the month's complaints (complaint_ids, complaints);
complaint.withdrawn (撤回投诉登记): the bureau takes a complaint off the file (complaints_withdrawn, marked, counted
nowhere: counts, chart — a signal it alone carried is withdrawn —, score, clusters, bursts, its alerts close).; 39: an
item's baseline holds each result against the limits the others give (one bad lot no longer widens them for good), and
its limits are widened by t with the degrees of freedom of σ̂ from moving ranges (5.4σ̂ at 8 results, not 4.8σ̂); a
microbial count (CFU/…, MPN/…: 霉菌) is charted on log10 whatever its rule; a Cpk judged on the EWMA says 近几批均值接近标准限值,
not 波动较大; the EWMA's widened limits carry the centre's error by its weight in the EWMA, (1−(1−λ)^i)²/m; a later point
a correction or a retraction brings out (quiet before, signalling on the rebuilt series) is raised, of its own batch;
the p charts have exact binomial limits, and a pass-rate signal a re-test, correction or retraction leaves unsupported
is withdrawn (fluctuation.signal_withdrawn) and may signal again; a steady fall (rule 5) under a legal maximum raises
nothing, and the signals are worded for what they saw (rule 8 both sides, an EWMA one jump dragged over, a plan's
largest unit, the c chart's month in Chinese); a signal's Pareto counts the recent failures, and its message says a
change of lab or detection limit; item results are charted in sampling order; a mostly-ND series whose detections grow
frequent is noted (nd_frequency); 40: a complaint's excerpt in an alert or a chart's evidence masks the door numbers
of a home address (家住阳光小区*栋*单元***室); 41: fluctuation.rebaselined (控制限重新确定), a supervisor's new baseline: the
series it covers restart their baseline at the first result sampled on or after its date, in any arrival order,
their signals then say so and carry the chart's phase; 42: each original report's turnaround is judged on the working-day calendar
(schemas/standards/calendar) against sampling_turnaround — sampling → the lab's receipt (lab_received_on) over 5 working days
is 送样超时 (sampling.sent_late), receipt → report over 20 检验报告超时, without a receipt date sampling → report over 25
报告超时 (sampling.report_late) — kept on the sample record (SampleRecord.turnaround, the first original report's, carried
by its corrections), no risk point, and a late failure's alert says how late it came; 43: the alert fold (alerts/lifecycle.py) escalates an alert acknowledged and
left — not put under rectification, verified or closed within warnings.handle_within_hours of its acknowledgement
(早处置; a step handling_overdue, reason handling_overdue, 已确认超时未处置，升级通报, naming who acknowledged it and when) —
and keeps acknowledged_by, handle_by and handling_escalated; an acknowledged alert's notices ask for the order or the
closing by its handle_by; the alerts rows carry the closing step's note and actor and the overdue mark (migration 051); 44: complaint.received's kind, 投诉 (complaint)
or 举报 (report), and each complaint's statutory time limits on the working-day calendar (complaint_deadlines: a 投诉 accepted
within 7 working days of receipt and mediated within 45 of acceptance — accepted_on, else from the latest lawful acceptance —,
a 举报 checked within 15, 15 more when extended) kept on the record (ComplaintRecord.limits, concluded_on), judged from its
earliest conclusion in any arrival order; the clock past a limit of an open one says complaint.overdue once per limit (an
alert, complaint.overdue, low, closed by the conclusion or the withdrawal), a conclusion after it is 超期办结; no risk point; 45: complaint.accepted (受理决定: 受理 / 不予受理) of a 投诉,
the earliest-dated in force in any arrival order, one before its complaint kept until it comes: the accept limit judged
from its decided_on, the mediation limit counted from an acceptance (before a conclusion's accepted_on) and gone after a
refusal, whose complaint's clocks stop without it being 办结; an open 投诉 with no decision is chased on its accept limit
(complaint_deadlines.complaint.chase_acceptance, default on: complaint.overdue, 超过 7 个工作日未作出受理决定), and a
decision closes the overdue alert when no running limit is left past due; a limit said overdue whose due date a decision
moved later is not overdue until the clock passes the new one; 46: a county category signal's Pareto
(pareto_category) is its period's failing items, kept per period on CategoryRates.period_items (pareto_scope.category the period;
"all", as before, for a period charted before a snapshot of 45 or older was restored), as is the enterprise's p chart signal's; a
re-test, a correction or a retraction that leaves the county's category period within its limit (or its failures from fewer than
spc.category_min_enterprises producers) withdraws its signal (fluctuation.signal_withdrawn, scope category), which closes the
county alert by its dedup key and moves no score; 47: a failure that counts again or late (processors.fluctuation.reinstated: a
re-test corrected back to 不合格, an original whose earlier re-test is not admitted, a failure qrisk alone found that the
re-test lab's 不合格 confirms) checks the period's p charts, the enterprise's and the county's category chart, as any
failure does: a period a re-test had left within its limit (its signal withdrawn, its alert closed) signals again with the
failure back (fluctuation.signal with counted_again, the sample: 抽样编号 … 的不合格结论恢复计入后，…), reopening its alert
and, for the enterprise, its score entry; 48: an open 投诉 is 超期未办结 only while a limit still running is past
due (ComplaintRecord.overdue): one accepted after its 7 days is 办理中（受理超期） while its mediation runs in time, its accept
limit staying overdue; a 受理决定 checks the clock before closing the overdue alert, so a mediation limit it moves to a date
already past keeps the alert open (complaint.overdue against the new date) instead of closing and raising it in one event;
a 不予受理 has no 办结期限 (due_on None) and no 按期 / 超期 verdict (不予受理后办结); a conclusion closing an alert that chased
the accept limit says 未报受理决定, and that limit, said overdue with no decision on file, stays overdue; texts say 登记 /
收到 for a complaint's receipt (已登记（事件 …）, 尚无登记记录), 受理 only for the decision; 49: a 受理决定 naming an
earlier one in corrects (or of the same date as one logged before it) corrects it: kept (superseded_by), never in force
again; a 不予受理 decided after the accept limit is late (ComplaintRecord.overdue_judged, 受理超期) though nothing is due;
complaint.received sent again as the other kind (投诉 / 举报) corrects the kind on file and judges its limits again;
complaint_deadlines.complaint.chase_acceptance_from leaves a 投诉 received before it unchased; 50: the campaign reads its
documents' dates, not when they were typed in — started_on is the earliest document date in force (a retraction moves it),
the provincial sampling KPI counts from it when campaign.starts_on is null (basis_zh 2026-01-10 起省级抽检 …), and the
checks of the passed acceptance in force are made again whenever a penalty, a sample or a complaint dated on or before it
is filed later, or a campaign record moves the start (campaign.acceptance_rechecked; a revoked penalty leaves them, the
grade is the one before the acceptance's own); full-staff training is done once a report in force showed it, a later
shortfall said apart (新增从业人员未培训 N 人，须核实); a campaign.retracted naming a retraction is kept and registers nothing
(campaign.retraction_of_retraction); a colony-count comparison is scored z = Δlog10 / campaign.comparison_log10_sigma_pt in
ISO 13528's bands, 2 < |z| < 3 可疑 (campaign.comparison_questionable, not satisfactory, not 不满意); 51: an enterprise's move
routes its verified and closed alerts for the new town too (AlertBook._moved, nobody told), so one reopened later tells
and escalates to the new town's receivers, not the old town's; 52: the regrade grace never
puts the next inspection after the due date in force before the move (RiskState.due_before_move: a D→C→D flap no longer
clears an overdue inspection); a sample's failure weighs from its first original report, not from a correction or re-test;
a grade improves at most max_improve levels per risk.improve_hold_days (7) after its last improvement, by dates, not
per tick; D's inspection interval is 365 / 3 rounded down, 121 days; a revoked licence has no inspection due
(next_inspection_due None, rank 许可证已吊销, the grade_worsened alert's revoked_template_zh); 53: a 受理决定 naming
in corrects one still standing is filed, not taken for the repeat of a plain copy on file (_repeats); a held improvement
says 风险等级降低（向 A 级调整）, a kind correction 投诉举报编号; 54: a licence in force again (its revocation
revoked, from revoked_on; a new licence number) starts routine sampling and inspection afresh (RiskState.reopened_at), as
an enterprise open again after closing; 55: a rectification order that reaches qrisk before the alert its cause
cites (the on-site 责令改正 before the inspection record) puts that alert under rectification when it opens, verified if
the order's acceptance came first too (AlertBook.orders keeps each enterprise's orders and their status); the
现场检查发现问题 alert names the inspection's date and inspector and its 一般 findings (all of them when only such
were found); 56: a rectification order resent under its id with other content, dated
on or after the order on file, corrects it (rectification.corrected; a deadline moved past the day withdraws the overdue
mark the old one set), a completion or verification before its order waits for it (CreditFile.rectifications_waiting), an
accepted verification marks a late rectification overdue first and withdraws a mark it was dated within, and a redo
deadline (重新限期) missed after a first lateness re-raises the overdue alert (no second credit entry); 57: a count reported as 0 is a non-detect below one counting unit (censored
baselines, the 连续未检出后检出 note); a baseline outlier's signal rests on the outlier's report (rests_on_event_ids: the
alert's evidence and the risk entry, so its correction or retraction takes them back); an EWMA signal's value is the
EWMA (the batch's result as batch_value); 58: the lab's 不合格 on an item qrisk passes or finds not applicable counts
the sample 不合格 (SampleJudgement.counted, grading) and alerts high (judgement.lab_failed_passed), not as a low
disagreement; an ND whose detection limit equals a strict "<" limit passes; counting units (CFU, MPN) resolve in any case; a pastry plate-count or coliform failure names the products GB 7099-2015 spares (caveat); 59: the completions and verifications that waited for
their order reach its alerts in the order the credit file applied them (rectification.verification_reversed names the
rejecting 复查, and what waited carries waited_event_id), an outdated one no longer stopping the order linking; 60: re-tests and
corrections follow the report's conclusion (SampleJudgement.counted), not qrisk's verdict: an original arriving after
its inadmissible re-test counts, charts, grades and alerts the lab's 不合格 of an item qrisk passes as when it came
first; a correction or re-test clearing qrisk's failure while the lab still fails an item qrisk passes overturns
nothing, its 抽检不合格 alert carrying on (noted, not closed and reopened as another); qrisk failing a sample the lab
failed alone closes the judgement.lab_failed_passed alert, the failure's alert taking it over; 61: 屡次不合格
counts an earlier sample's item the lab failed and qrisk passes as a failure of it; 62: a comparison test exactly on
its limit (|En| 1, the relative deviation's maximum) is satisfactory, not 不满意 by floating-point noise, and its En,
z, log10 difference or deviation is said with the decimals it takes to read on the side of each limit it was judged
on (z −2.004, not −2.00 beside |z| ≤ 2 满意); an activity of the same kind, day and values already on file, and a
training report with the figures of the one in force for its date, sent again under a new event id, are not filed
again (no second comparison test counted 不满意, no campaign.training_corrected of the same figures); 63: a home
address after a bare 住 opening a clause or after 送水地址/配送地址/送水到/订水地址 is masked in complaint excerpts; an alert's response or handling
deadline that passes in a silence escalates when the silence ends (AlertBook.silence_ends), and a town a route names
only for other categories sends its other enterprises' alerts to the fallback; 64: a grade's
contribution with nothing in it is 0.0 points, not 0, and a policy's defaults are floats as a file's figures are, so a
file restored from a snapshot prints as the live one; 65: a bare 住 opening a clause masks an address only when a
street, village, community or building follows in the clause, and only up to its door numbers (住户/住建局/住酒店 keep
their dates, batch numbers and quantities in complaint excerpts); 66: a comparison test and a self-inspection keep their note and
are told apart by it (two samples both 未检出 compared the same day, two workshops' self-inspections with nothing found,
are two records, each counted and said 不满意 apart); an assessment with the kind, day and conclusion of one on file, and a
training report with the figures of one on file for its date — the one in force or one a correction superseded (an old
register imported again) — are not filed again (no campaign.assessment_corrected C档 → C档, no correction back to the
superseded figures); 67: a sample counted 不合格 fails on the items the lab failed that
qrisk passes too, beside qrisk's own (SampleJudgement.counted_failed_codes): the Paretos, a signal's recent causes and
the judgements table's failed_items list them where a sample qrisk also fails left them out; 68: an escalation a silence holds back is kept in
AlertBook.held (alert → the silence's reason, its end, the deadline) instead of the silence_ends heap, asked again at
every event against the policy and the town as they are then: a silence taken out of the policy, or a move out of the
silenced town, escalates at once, not at the old silence's end, and nothing is kept for an alert whose escalation
nothing holds.; 69: beside a failure qrisk
finds too, the lab's 不合格 on an item qrisk passes or finds not applicable weighs the grade by its class (铜绿假单胞菌 beside
电导率: 15 points, not 4), and the sampling.failed effect and its alert name it (failed_items, the lab's verdict and
qrisk's figure, severity by the worst item); a re-test merged with the first test's items, or corrected under it, that
gains or loses such an item is the sample's failure on other items (Paretos, alert); 70: a re-test of a sample
qrisk fails on a physical item while the lab fails a microbial one qrisk passes is not admitted (不予复检), as the
alert already said; 71: qrisk's own escalation of an alert (the one a start under a changed policy logs) is one
only while the alert waits for it (open past its time to respond, or acknowledged past its time to handle); else it
is an escalation like any, with its hourly guard; 72: after 家住, 住址 or a delivery address the door numbers are masked up to the
address's last street or building word, and what the clause goes on to say (喝了18.9L的水) stays; 73: a failing
report corrected into another failure (other items, other values) emits sampling.failed with corrects_event_id and
correction_zh, and its alert (抽检不合格, or the lab's failure qrisk passes) takes the corrected evidence, message and
severity under the same id, with a 报告更正 step and a notice, no new occurrence; a lab's 不合格 on an item qrisk passes,
which the sample's 抽检不合格 alert lists, raises no low judgement.disagrees beside it (the judgement keeps it); 74: a year the
working-day calendar lacks is estimated without its fixed-date statutory holidays (元旦, 劳动节 1–2, 国庆节 1–3), a
rectification deadline or interview follow-up date on a holiday ends on the next working day (民法典 第二百零三条:
overdue and days overdue from that day), and a complaint's 估算 caveat rests on the limits its deadline line shows; 75:
the lab's failure of an item qrisk passes corrected into another, on a sample whose 抽检不合格 alert it carries, moves
that alert's evidence (no second alert opens), and a corrected re-test upholding a repeat failure stays 屡次 (its
severity and advice); 76: a
rectification keeps the days its deadline and 重新限期 end (due_on, redo_due_on), an interview the day its follow-up date
ends (follow_up_due_on), moved off a holiday, with whether the move rests on a year the calendar lacks (due_estimate,
redo_due_estimate, follow_up_due_estimate), which overdue effects carry as moved_estimate and the texts say as 估算;
77: the estimate of a year the calendar lacks makes up a fixed-date holiday on a weekend on the next weekday not off
(补假, 放假办法 第六条: 2027's 劳动节 takes 05-03 and 05-04), so limits and moved deadlines across it end later; 78:
the 估算 caveat says the estimate leaves out those make-up days too (…国庆节法定日期及其补假）估算); 79: a complaint
sent again under its number with another category (or product) is corrected, as its kind is — its chart month, the
verified-complaint points, its 投诉集中, 投诉聚集 and 食用后不适 alerts follow the corrected category (complaint.repeated,
category_corrected) —, and a 投诉集中 or 投诉聚集 counting one complaint twice (the same words through two channels)
names the pair (possible_duplicates); 80: a better grade never brings the next inspection's due date forward (the date in force stands); one evaluation takes every grade step the dates allow, each dated when allowed (moved_at: a listing's end, a failure leaving the window, a hold's end), so a log without ticks grades as one with daily ticks; only risk.plan_inspection_kinds (routine, special) move the inspection plan; overdue-rectification points cite the order and count from the day after the deadline in force.; 81: a new licence
number after a revocation says so on its enterprise.profile_changed (licence_renewed), so the county board can tell a
licence in force again from one still revoked; 82: a verified
complaint of foreign matter or spoilage alerts on its own (complaint.hazard, high: 反映饮用纯净水中有异物，经核实属实;
an illness one keeps only its illness alert; closed when withdrawn or found 不属实), 一直吐, 救护车 and 120 (called:
打了120, not 1200元) are illness words, and a sampling failure names the open or verified complaints about its
product of the 90 days before sampling (related_complaints; 该产品近期有投诉 K1（…，已核实属实）).; 83: an enterprise
may be 停产 (enterprise.updated status suspended: CreditFile.suspended_on): no routine sampling is due while stopped and its
sampling gaps close, inspections stay due unless risk.inspect_while_suspended is false, and producing again (operating)
restarts sampling one interval from that day (RiskState.resumed_at); enforcement.listing_removed (提前移出, 信用修复) ends
a decision's listing as 严重违法失信 from removed_on (EnforcementRecord.listing_removed_on) and keeps the decision and its
points, the grade moving from D as the pace rules allow; one naming no decision on file, or one that listed nothing or was
revoked, is kept as enforcement.listing_removal_refused; 84: the bureau's
refusal and withdrawal reasons are masked as complaint texts are (来信人李**，139****5678) in what the fold says of them —
alert closing notes, the complaint.withdrawn and withdrawal_pending effects, 不予受理 in acceptance and deadline texts —
and masking reads numbers written with full-width hyphens, dashes, ideographic spaces or dots, and a name after
来信人/反映人/当事人/患者; 85: a removal dated before its decision's decided_on is
refused (enforcement.listing_removal_refused, removed_before_listing, payload.removed_on: the grade stays D); a correction
that moves or un-counts the plan's inspection lets a better grade take the plan back to the inspection that counts (the
date in force before the move rested on the one it replaced); a listing removed early ends on removed_on when the grade
improves after another listing's term (a log without ticks grades as with daily ticks); 86: a complaint.received resend dated before the registration on file or its
last correction (ComplaintRecord.corrected_at) corrects nothing (complaint.repeated earlier: 以更正后的为准) — the original
arriving after its correction undid it and closed the hazard alert; a verified complaint corrected from one hazard
category to another (异物 → 变质) re-decides its hazard alert under its key (corrected evidence, no new occurrence); a
withdrawn complaint's 投诉集中 or 投诉聚集 left with k or more is re-decided from the rest (warnings.withdrawn_recounted); 87: after 来信人/反映人/当事人/患者 without a colon, a word a sentence goes on with (患者高热，
当事人陈述，当事人金额较小) is no name and a four-character one needs a two-character surname (来信人欧阳娜娜称 → 欧***); 120
(or 一二零) is an illness word only as a call right after 拨打/打了/叫了/呼叫/被 or before 急救/救护/送/拉走/来了/车, never
before a unit (打了120元), and a word ending in 吐 not as 吐槽/吐口水 (我一直吐槽); 一直在吐, 吐个不停 are illness words.  A
Kafka worker writes it into every snapshot and says so when it
loads one folded by another version, whose files carry on with that version's results until the
workers fold the log again (README, "Upgrades")."""

WARNING_KINDS = frozenset({
    "sampling.failed",
    "fluctuation.signal",
    "judgement.disagrees_with_lab",
    "judgement.lab_failed_unjudged",
    "judgement.lab_failed_passed",
    "complaint.cluster",
    "complaint.burst",
    "inspection.nonconforming",
    "rectification.overdue",
    "rectification.rejected",
    "enforcement.decided",
    "interview.follow_up_overdue",
})
"""Effects a supervisor must see; the alerts stage turns them into alerts."""

GRADE_KIND = "risk.graded"
"""The score or the grade changed: data is the new ``GradeEntry`` (as JSON) plus ``grade_changed``.
(A new entry whose score and grade are unchanged — only the evidence grew — is kept in the
credit file's grade history without an effect.)"""


@dataclass(frozen=True)
class Rules:
    catalogue: Catalogue
    policy: Policy = field(default_factory=Policy)
    # (the packaged one, read and checked once when Rules is built, as the catalogue is: never at fold time)
    calendar: WorkingCalendar = field(default_factory=load_calendar)

    def local_date(self, moment: dt.datetime) -> dt.date:
        # (the offset's timedelta built once: ~1,200 calls a pass, thousands of instructions each to build)
        return (moment + in_hours(self.policy.utc_offset_hours)).date()


def step(state: CountyState, event: Envelope, rules: Rules) -> tuple[CountyState, list[Effect]]:
    event_id = event_key(event)
    if event_id in state.seen_event_ids:
        return state, []  # redelivery: applied once already
    state.seen_event_ids.add(event_id)
    state.applied += 1
    effects: list[Effect] = []

    if isinstance(event, ClockTick):
        if state.clock is None or event.occurred_at > state.clock:
            state.clock = event.occurred_at
        for file in state.files.values():
            start = len(effects)
            _mark_overdue(file, event, rules, effects)
            _assess(file, event, rules, effects, start)
        return state, effects

    if isinstance(event, AlertActionEvent):
        return state, []  # a supervisor's step on an alert: the alerts stage folds it, the credit file does not change

    file = state.files.get(event.enterprise_id)
    if file is None:
        file = state.files[event.enterprise_id] = CreditFile(enterprise_id=event.enterprise_id)
    file.events += 1
    if file.last_event_at is None or event.occurred_at > file.last_event_at:
        file.last_event_at = event.occurred_at
    _HANDLERS[type(event)](state, file, event, rules, effects)
    _mark_overdue(file, event, rules, effects)
    _assess(file, event, rules, effects, 0)
    checked_on = file.campaign.acceptance_checked_on
    if checked_on is not None and isinstance(event, _ACCEPTANCE_INPUTS) and not (
            # (a sample taken after the acceptance day is outside every check: the usual report, which would otherwise walk
            # every sample on file; a re-test or a correction comes under the original's number and sampling date)
            type(event) is SamplingResultEvent and event.payload.sampled_on > checked_on):
        # a penalty, a sample or a complaint dated on or before a passed acceptance and filed after it: its checks (须核实)
        # are made again, as if it had come first (after the grading: a grade entry of the acceptance day itself counts)
        rechecked = recheck_acceptance(file, rules)
        if rechecked is not None:
            effects.append(_effect_data("campaign.acceptance_rechecked", event, file.enterprise_id, rechecked))
    return state, effects


_ACCEPTANCE_INPUTS = (EnforcementDecidedEvent, SamplingResultEvent, SamplingRetractedEvent, ComplaintReceivedEvent, ComplaintResolvedEvent,
                      ComplaintWithdrawnEvent, EnterpriseRegistered, EnterpriseUpdated)
"""The events a passed acceptance's checks read (processors.campaign.acceptance_checks): a decision, a sample judged,
corrected or retracted, a complaint verified or withdrawn, a registration that judges the samples waiting for it."""


def replay(events: Iterable[Envelope], rules: Rules, state: CountyState | None = None) -> tuple[CountyState, list[Effect]]:
    """Fold events in order; the same events in the same order give the same state."""
    state = state if state is not None else CountyState()
    effects: list[Effect] = []
    for event in events:
        state, produced = step(state, event, rules)
        effects.extend(produced)
    return state, effects


# --------------------------------------------------------------------------- grading and warnings


def _assess(file: CreditFile, event: Envelope, rules: Rules, effects: list[Effect], start: int) -> None:
    """After an event (or a tick) reached a file: risk inputs, re-grade, missing data, alert decisions."""
    new = effects[start:] if start else effects  # (an effect appended below is no rule's input: harmless to see)
    alerting = False
    overturns: list[Effect] = []
    withdrawn: list[Effect] = []
    ungrounded: list[Effect] = []  # what an alert rested on, found untrue or revoked
    corrections: list[Effect] = []
    for e in new:
        if e.kind in ALERTING_KINDS:
            alerting = True
        elif e.kind in ("sampling.overturned", "rectification.overdue_withdrawn", "sampling.retracted"):
            overturns.append(e)
        elif e.kind == "fluctuation.signal_withdrawn":
            withdrawn.append(e)
        elif e.kind in ("complaint.unverified", "complaint.withdrawn", "enforcement.revoked", "inspection.corrected"):
            ungrounded.append(e)
        elif e.kind == "sampling.corrected":
            corrections.append(e)
        if e.kind == "complaint.repeated" and e.data.get("category_corrected"):
            ungrounded.append(e)  # (an alerting kind too: what the corrected category raises)
        if e.kind == "complaint.withdrawn" and not e.data.get("arrived_after"):
            alerting = True  # (and the 投诉集中 or 投诉聚集 it leaves with k or more, decided again: warnings.withdrawn_recounted)
    changed = observe(file, event, new, rules)
    # the failure (or the overdue mark) no longer stands: its alert closes — said after this step's own
    # decisions, which may open it (an original and its passing re-test both judged at registration)
    closing = []
    for e in overturns:
        if e.kind == "sampling.retracted":
            closing += retracted_resolved(file, e, rules)  # (the alerts of the sample the bureau retracted)
        elif (data := (overturned_resolved(file, e, rules) if e.kind == "sampling.overturned"
                       else overdue_withdrawn_resolved(file, e, rules))) is not None:
            closing.append(data)
        if e.kind == "sampling.overturned" and (data := disagreement_settled(file, e, rules)) is not None:
            closing.append(data)
        if e.kind == "sampling.overturned" and (data := lab_failure_settled(file, e, rules)) is not None:
            closing.append(data)
    for e in ungrounded:
        if e.kind == "inspection.corrected":
            if (data := inspection_corrected_resolved(file, e, rules)) is not None:
                closing.append(data)
            continue
        closing += (complaint_unfounded_resolved if e.kind in ("complaint.unverified", "complaint.withdrawn", "complaint.repeated")
                    else enforcement_revoked_resolved)(file, e, rules)
    if file.risk.missing:
        for gap in filled_gaps(file, event, rules):
            data = resolved(file, event, gap, rules)
            if data is not None:
                effects.append(_effect_data(RESOLVED_KIND, event, file.enterprise_id, data))
    graded = evaluate(file, event, rules, changed)
    if graded is not None and (graded.grade != graded.previous or len(file.risk.history) < 2 or graded.score != file.risk.history[-2].score):
        effects.append(_effect_data(GRADE_KIND, event, file.enterprise_id, graded_data(graded)))
    if graded is not None and graded.previous is not None and graded.grade < graded.previous:
        closing += grade_fell_resolved(file, event, graded, rules)
    missing = check_missing(file, rules)
    if graded is not None or missing or alerting:
        decisions = decide(file, event, new, graded, missing, rules)
        if decisions:
            file.warnings.extend(decisions)
            keep = rules.policy.risk.warnings_kept
            if len(file.warnings) > keep:
                del file.warnings[: len(file.warnings) - keep]
            for d in decisions:
                effects.append(_effect_data(ALERT_KIND, event, file.enterprise_id, decision_data(d)))
    for e in corrections:
        # after this step's decisions: a corrected value that still lies out raised its signal again, with its own
        # event among the alert's evidence, and that alert stands
        closing += corrected_resolved(file, e, rules)
    if closing and decisions_made(effects, start):
        # a disagreement the deciding report (a re-test, a correction) has itself is raised in this step: it stands
        raised = {e.data["dedup_key"] for e in effects[start:] if e.kind == ALERT_KIND and e.data["rule"] == "judgement.disagrees"}
        closing = [c for c in closing if not (c["rule"] == "judgement.disagrees" and c["dedup_key"] in raised)]
    for data in closing:
        effects.append(_effect_data(RESOLVED_KIND, event, file.enterprise_id, data))
    if withdrawn and decisions_made(effects, start):
        # a withdrawal closes the complaint chart's alert: said after the same step's decisions, which may
        # open it (a complaint and a resolution that waited for it, folded in one step)
        for e in withdrawn:
            effects.remove(e)
            effects.append(e)


def decisions_made(effects: list[Effect], start: int) -> bool:
    return any(e.kind == ALERT_KIND for e in effects[start:])


# --------------------------------------------------------------------------- handlers


_build_effect = builder(Effect)
_build_sample = builder(SampleRecord)
_build_turnaround = builder(Turnaround)


def _effect(kind: str, event: Envelope, enterprise_id: str, **data: Any) -> Effect:
    # fields come from a validated event: no need to validate them again
    return _build_effect(kind=kind, enterprise_id=enterprise_id, event_id=event_key(event), occurred_at=event.occurred_at, data=data)


def _effect_data(kind: str, event: Envelope, enterprise_id: str, data: dict[str, Any]) -> Effect:
    return _build_effect(kind=kind, enterprise_id=enterprise_id, event_id=event_key(event), occurred_at=event.occurred_at, data=data)


def _chart_effect(event: Envelope, enterprise_id: str, base: dict[str, Any], signal: dict[str, Any]) -> Effect:
    """A chart's signal, or its withdrawal (a pass-rate signal the failures left after a re-test or a correction no
    longer support: ``processors.fluctuation.no_longer_out``)."""
    kind = "fluctuation.signal_withdrawn" if signal.get("withdrawn") else "fluctuation.signal"
    return _effect(kind, event, enterprise_id, **{**base, **signal})


def _registered(state: CountyState, file: CreditFile, event: EnterpriseRegistered, rules: Rules, effects: list[Effect]) -> None:
    kind = "enterprise.registered" if file.profile is None else "enterprise.profile_changed"
    revoked = file.licence_revoked
    _relicensed(file, event.payload.licence_no, rules, event.occurred_at)
    # (the board's licence-revoked list reads effects only: the new licence must be said there, not only on file)
    renewed = {"licence_renewed": True} if revoked is not None and file.licence_revoked is None else {}
    file.profile = event.payload
    registry_tier(file, event.payload.campaign_tier)
    if file.registered_at is None:
        file.registered_at = event.occurred_at
    effects.append(_effect(kind, event, file.enterprise_id, name=event.payload.name, category=event.payload.category, **renewed))
    _judge_pending(state, file, event, rules, effects)
    for k, data in judge_pending_comparisons(file, rules):  # (the campaign's comparison tests that waited for the category)
        effects.append(_effect_data(k, event, file.enterprise_id, data))


def _relicensed(file: CreditFile, licence_no: str, rules: Rules, at: dt.datetime) -> None:
    """A new licence number after a revocation is a new licence: routine supervision is due again
    (the revocation stays on file, in its decision)."""
    if file.licence_revoked is not None and file.profile is not None and licence_no != file.profile.licence_no:
        file.licence_revoked = None
        _licence_changed(file, rules, at)


def _licence_changed(file: CreditFile, rules: Rules, in_force_again: dt.datetime | None = None) -> None:
    """The licence was revoked, or is in force again (``in_force_again``: since when): the next inspection is due again,
    or no longer (the grade may not move, which alone would recompute it).  In force again, routine supervision starts
    afresh from then, as for a closed enterprise open again: the months without a licence are no lateness (a restored
    licence was overdue the day it came back)."""
    rs = file.risk
    if in_force_again is not None and file.licence_revoked is None and (rs.reopened_at is None or in_force_again > rs.reopened_at):
        rs.reopened_at = in_force_again
    if rs.grade is not None:
        rs.next_inspection_due = next_inspection_due(file, rs.grade, rules)
        rs.check_missing_at = None


OPERATING_STATUS_ZH = {"deregistered": "已注销", "suspended": "停产", "operating": "存续"}


def _updated(state: CountyState, file: CreditFile, event: EnterpriseUpdated, rules: Rules, effects: list[Effect]) -> None:
    # null means "not given": a stored event re-read from the log has every key
    changes = {k: v for k, v in event.payload.model_dump(exclude_unset=True).items() if v is not None}
    if file.profile is None:
        # an update cannot build a whole profile; keep it visible instead of dropping it
        effects.append(_effect("enterprise.update_before_registration", event, file.enterprise_id, changes=changes))
        return
    status = changes.pop("status", None)
    if status is not None:
        _status_changed(file, status, event, rules, effects)
    if not changes:
        return
    revoked = file.licence_revoked
    if "licence_no" in changes:
        _relicensed(file, changes["licence_no"], rules, event.occurred_at)
    renewed = {"licence_renewed": True} if revoked is not None and file.licence_revoked is None else {}
    file.profile = file.profile.model_copy(update=changes)
    if "campaign_tier" in changes:
        registry_tier(file, changes["campaign_tier"])
    else:
        apply_tier(file)
    effects.append(_effect("enterprise.profile_changed", event, file.enterprise_id, changes=changes, **renewed))


def _status_changed(file: CreditFile, status: str, event: EnterpriseUpdated, rules: Rules, effects: list[Effect]) -> None:
    """存续 / 停产 / 已注销: not profile fields, the file keeps the day each took effect, which routine supervision and the
    campaign read.  Closed or stopped again, the first day stands."""
    was_closed, was_stopped = file.deregistered_on, file.suspended_on
    today = rules.local_date(event.occurred_at)
    file.deregistered_on = (was_closed or today) if status == "deregistered" else None
    file.suspended_on = (was_stopped or today) if status == "suspended" else None
    if (was_closed, was_stopped) == (file.deregistered_on, file.suspended_on):
        return
    rs = file.risk
    if was_closed is not None and file.deregistered_on is None:
        # in business again: routine supervision starts afresh from today, not from before the closure
        # (the closed months are no lateness)
        rs.reopened_at = event.occurred_at
    elif was_stopped is not None and file.suspended_on is None and file.deregistered_on is None:
        # producing again: sampling is due one interval from today (the stopped months are no lateness); inspections
        # went on while stopped unless the policy paused them, and then restart from today too
        if rules.policy.risk.inspect_while_suspended:
            rs.resumed_at = event.occurred_at
        else:
            rs.reopened_at = event.occurred_at
    rs.check_missing_at = None
    if rs.grade is not None:  # (closed: none due; stopped: as the policy says; open again: due as its grade says, from today)
        rs.next_inspection_due = next_inspection_due(file, rs.grade, rules)
    on = file.deregistered_on or file.suspended_on
    effects.append(_effect("enterprise.status_changed", event, file.enterprise_id, status=status,
                           status_zh=OPERATING_STATUS_ZH[status], on=on.isoformat() if on else None))


def _sampling(state: CountyState, file: CreditFile, event: SamplingResultEvent, rules: Rules, effects: list[Effect]) -> None:
    p = event.payload
    record = _build_sample(
        event_id=event_key(event), sample_no=p.sample_no, product=p.product, batch=p.batch,
        production_date=p.production_date, sampled_on=p.sampled_on, occurred_at=event.occurred_at,
        lab=p.lab, lab_id=event.source.id if event.source.kind == "lab" else None, task_source=p.task_source, retest=p.retest,
        lab_received_on=p.lab_received_on,
    )
    record.filed_on = _filed_on(file, record)
    retraction = file.retractions.get(p.sample_no)
    on_file = _report_on_file(file, p.sample_no, p.retest)
    if not p.retest:
        # (kept on a report retracted on arrival too, which says nothing of it: its file reads as when it came first)
        _turnaround(file, record, on_file, event, rules, [] if retraction is not None else effects)
    if retraction is not None:
        # the bureau retracted this sample number here before this report came: filed retracted, never counted
        file.samples.append(record)
        _retracted_on_arrival(file, record, p, retraction, event, rules, effects)
        return
    file.samples.append(record)
    if on_file is not None:
        # the sample is on file already: this is its report again (a new send attempt), or a correction
        _resent(state, file, record, on_file, p, event, rules, effects)
        return
    file.counts.samples += 1
    if file.profile is None:
        # the category selects the standard: wait for registration rather than guess
        record.pending = p
        file.counts.samples_undetermined += 1
        # the lab's own 不合格 cannot wait for a registration that may never come (a mistyped enterprise id): said, to alert
        failed = [{"item_code": i.item_code, "item_name": i.item_name or "", "values": [v if v == "ND" else float(v) for v in i.values],
                   "unit": i.unit, "lab_verdict": "fail"} for i in p.items if i.lab_verdict == "fail"]
        effects.append(_effect("sampling.awaiting_registration", event, file.enterprise_id, sample_no=p.sample_no,
                               **({"lab_failed": failed, "product": p.product, "sampled_on": p.sampled_on.isoformat(), "lab": p.lab,
                                   "task_source": p.task_source, "sample_event_id": event_key(event)} if failed else {})))
        return
    _judge(state, file, record, p, event, rules, effects)


def _turnaround(file: CreditFile, record: SampleRecord, on_file: SampleRecord | None, event: Envelope, rules: Rules,
                effects: list[Effect]) -> None:
    """The time an original report took against the statutory limits (``sampling_turnaround``), judged on the
    sample's first original report; a later report of it (resent, corrected, outdated) carries the first one's, so
    that a lab correcting its report weeks later is not judged late by the correction, nor on time by a report
    re-dated.  Said for the bureau's oversight of its labs: no risk point, and no alert of its own (a late failure's
    alert says how late it came: ``processors.warnings``).  ``on_file``: the sample's current original report on file,
    which carries its first report's judgement as every later report does."""
    if on_file is not None:
        record.turnaround = on_file.turnaround  # (None for a file folded before it was kept: not judged now, late)
        return
    policy = rules.policy.sampling_turnaround
    if not policy.enabled:
        return
    to_lab_limit, report_limit = policy.limits(record.lab, record.lab_id)
    reported = rules.local_date(record.occurred_at)
    received = record.lab_received_on
    calendar = rules.calendar
    if received is not None:
        to_lab = working_days_between(calendar, record.sampled_on, received)
        report = working_days_between(calendar, received, reported)
        counts = (to_lab, report)
    else:
        to_lab = None
        report = working_days_between(calendar, record.sampled_on, reported)
        report_limit += to_lab_limit
        counts = (report,)
    t = record.turnaround = _build_turnaround(
        reported_on=reported, lab_received_on=received, to_lab_days=to_lab.days if to_lab else None, to_lab_limit=to_lab_limit,
        report_days=report.days, report_limit=report_limit, estimate=any(c.estimate for c in counts),
        uncovered_years=tuple(sorted({y for c in counts for y in c.uncovered_years})),
        unverified_years=tuple(sorted({y for c in counts for y in c.unverified_years})))
    if not t.late:
        return
    who = file.profile.name if file.profile is not None else file.enterprise_id
    base = dict(sample_no=record.sample_no, product=record.product, sampled_on=record.sampled_on.isoformat(), lab=record.lab,
                lab_id=record.lab_id, lab_received_on=received.isoformat() if received else None, reported_on=reported.isoformat(),
                estimate=t.estimate, sample_event_id=record.event_id)
    head = f"{record.lab}：{who} 抽样编号 {record.sample_no}（{record.product}，抽样日期 {record.sampled_on.isoformat()}）"
    tail = "。属承检机构履约情况，供抽检工作管理和考核检验机构参考，不计入企业风险分"
    if t.sent_late:
        effects.append(_effect("sampling.sent_late", event, file.enterprise_id, working_days=t.to_lab_days, limit=t.to_lab_limit,
                               message_zh=head + t.sent_late_zh() + t.caveat_zh() + tail, **base))
    if t.report_late:
        effects.append(_effect("sampling.report_late", event, file.enterprise_id, working_days=t.report_days, limit=t.report_limit,
                               from_sampling=t.from_sampling, message_zh=head + t.report_late_zh() + t.caveat_zh() + tail, **base))


def _filed_on(file: CreditFile, record: SampleRecord) -> dt.date:
    """The sampling date ``record``'s derived rows are filed under (``SampleRecord.filed_on``), decided once, as it
    comes: its own; a re-test's is its original's on file then (the original's current report, retracted or not), so
    that a different date printed on the 复检 does not move the sample to another month of the dashboards.  Decided
    once because the rows are written again whenever the report is superseded or retracted: a re-test that came
    before its original keeps its own date, and one whose original is retracted afterwards keeps the original's."""
    if record.retest:
        for other in reversed(file.samples):
            if (other.sample_no == record.sample_no and not other.retest and other is not record
                    and other.superseded_as in (None, "retest", "retracted")):
                return other.sampled_on
    return record.sampled_on


def _judge(state: CountyState, file: CreditFile, record: SampleRecord, payload: SamplingResult, event: Envelope, rules: Rules, effects: list[Effect]) -> None:
    judgement = judge_sample(payload, file.profile.category, rules.catalogue)
    record.judgement = judgement
    counts = file.counts
    # A re-test (复检) tests the retained half of the same sample, and its conclusion is final:
    # the sample is counted once, with the re-test's verdict, whichever of the two arrived first.
    original, retest = _pair(file, record)
    why = _inadmissible(original, retest, rules) if original is not None and retest is not None else None
    if why is not None:
        _retest_inadmissible(state, file, record, original, retest, why, event, rules, effects)  # type: ignore[arg-type]
        return
    superseded = original if record is retest else None
    if original is not None and retest is not None:
        # a re-test covers the items the enterprise disputed: the others keep the first test's results
        merged = _with_items_not_retested(state, file, original, retest, record is original, rules, event, effects)
        if record is retest:
            judgement = merged
    if superseded is not None:
        superseded.superseded_by, superseded.superseded_as = record.event_id, "retest"
        counts.samples -= 1
        _count(counts, superseded.judgement, -1)  # type: ignore[arg-type]
    elif retest is not None:
        record.superseded_by, record.superseded_as = retest.event_id, "retest"
        counts.samples -= 1
    else:
        _count(counts, judgement, 1)
    if superseded is not None:
        _count(counts, judgement, 1)
    base = dict(sample_no=record.sample_no, product=record.product, sampled_on=record.sampled_on.isoformat(), sample_event_id=record.event_id)
    effects.append(_effect("sampling.judged", event, file.enterprise_id, verdict=judgement.verdict, **base))
    if retest is not None and record is not retest:
        # the original arrived after its re-test: on file, but the re-test already decided
        effects.append(_effect("sampling.superseded", event, file.enterprise_id, retest_event_id=retest.event_id, **base))
        return
    # A re-test decides the sample by its conclusion (SampleJudgement.counted): the charts follow the conclusions,
    # and the original's failure alert closes when either qrisk's failure or the legal one no longer stands —
    # a re-test whose own report reads 合格 overturns a failure the first lab issued, whatever qrisk's own check
    # of it finds (that finding is the re-test's own 系统复核不合格 alert, raised below)
    was_c = superseded.judgement.counted if superseded is not None else None  # type: ignore[union-attr]
    now_c = judgement.counted
    # — unless the re-test's own lab fails an item qrisk passes: the failure stands on the re-test's conclusion
    # (qrisk's figure no longer fails it), and its alert carries on
    if superseded is not None and (superseded.judgement.verdict == "fail" and judgement.verdict != "fail" and now_c != "fail"  # type: ignore[union-attr]
                                   or (was_c == "fail" and now_c != "fail")):  # (the first lab's 不合格 on an item qrisk passes: its conclusion)
        # Without the bureau's list of re-test labs (retest.institutions) any lab key's 复检 is admitted: the counts
        # follow it (a lawful re-test's conclusion is final), but the failure's alert stays for a supervisor to
        # check the re-test and close, not closed unseen by whoever holds a lab key
        unlisted = not rules.policy.retest.institutions
        check = (f"；复检机构（{record.lab}）未经本局复检机构清单核对（策略 retest.institutions 未设置），原不合格预警保持待处置，"
                 "请核实复检申请、受理和复检机构资质后关闭") if unlisted else ""
        effects.append(_effect(
            "sampling.overturned", event, file.enterprise_id, original_event_id=superseded.event_id, verdict=judgement.verdict,
            message_zh=f"抽样编号 {record.sample_no}（{record.product}）复检结论为{_VERDICT_ZH[now_c]}，原不合格结论不再计入{check}",
            **({"retest_lab_unchecked": record.lab} if unlisted else {}), **base))
    if superseded is not None:
        if was_c == "fail" and now_c != "fail":
            for signal in overturned(file, superseded, state.categories, rules):
                effects.append(_chart_effect(event, file.enterprise_id, base, signal))
        elif was_c != "fail" and now_c == "fail":
            # (a failure qrisk alone found, the re-test lab's 不合格 made one: the charts count it now, in the original's period)
            for signal in reinstated(file, superseded.model_copy(update={"judgement": judgement}), state.categories, rules,
                                     "复检结论为不合格，不合格结论计入后，"):
                effects.append(_chart_effect(event, file.enterprise_id, base, signal))
        elif was_c == "fail" and now_c == "fail":
            refailed(file, superseded, record, state.categories, rules)
    if judgement.verdict == "fail":
        failed = _failed(judgement, event, file.enterprise_id, base)
        if superseded is not None and was_c == "fail" and now_c == "fail":
            # the re-test upholds the failure: the same sample's conclusion made final, not a second failure
            failed.data["confirms_event_id"] = superseded.event_id
        effects.append(failed)
        if superseded is not None and (over := _lab_failure_handed_over(
                file, record.sample_no, superseded.judgement, "复检结论为不合格", event, rules)) is not None:
            effects.append(over)
    elif judgement.verdict == "pass" and judgement.sum_checks:
        near = _near_limit(judgement, rules)
        if near:
            effects.append(_effect("sampling.near_limit", event, file.enterprise_id, checks=near, **base))
    if judgement.disagreements:
        effects.append(_effect("judgement.disagrees_with_lab", event, file.enterprise_id, items=list(judgement.disagreements), **base))
    if (unjudged := _lab_failed_unjudged(judgement, record, event, file.enterprise_id, base)) is not None:
        effects.append(unjudged)
    if (lab_failed := _lab_failed_passed(judgement, record, event, file.enterprise_id, base)) is not None:
        if superseded is not None and superseded.judgement.verdict == "fail" and was_c == "fail":  # type: ignore[union-attr]
            # the re-test's lab upholds the 不合格 on an item qrisk passes: the failure's alert notes it, no second alert
            lab_failed = _on_failure_alert(
                lab_failed, f"抽样编号 {record.sample_no} 复检结论仍为不合格（复检机构：{record.lab}）：",
                f"sample {record.sample_no}: the re-test upholds the failure: ", confirms=superseded.event_id)
        effects.append(lab_failed)
    if judgement.unknown:
        effects.append(_effect("judgement.unknown_reported", event, file.enterprise_id, unknown=[u.model_dump(mode="json") for u in judgement.unknown], **base))
    if superseded is not None:
        return  # the original's results of this sample are charted already
    for signal in on_sample_judged(file, record, state.categories, rules, lambda: _charted_reports(file)):
        effects.append(_chart_effect(event, file.enterprise_id, base, signal))


_VERDICT_ZH = {"pass": "合格", "fail": "不合格", "undetermined": "无法判定"}


def _near_limit(judgement: Any, rules: Rules) -> list[dict[str, Any]]:
    """The passing sums of ratios at or above the near-limit fraction (policy ``warnings.near_limit``)."""
    fraction = rules.policy.warnings.near_limit.fraction
    return [{"group": c.group, "group_name": c.group_name, "total": c.total,
             "members": [{"item_code": m.item_code, "item_name": m.item_name, "ratio": m.ratio} for m in c.members]}
            for c in judgement.sum_checks if c.verdict == "pass" and c.total >= fraction]


def _failed(judgement: Any, event: Envelope, enterprise_id: str, base: dict[str, Any]) -> Effect:
    failed = judgement.failed_codes()
    sums = [c for c in judgement.sum_checks if c.verdict == "fail"]
    # the lab's printed sum line (SAMR's name for the check) that says what qrisk's own sum says is one
    # finding: it is explained once, by the sum that shows its terms; a printed sum that differs keeps its line
    printed = {i.item_code: c for i in judgement.items if i.verdict == "fail" for c in sums
               if c.item_name and i.item_name == c.item_name and same_figure(i.values, c.total)}
    messages = [i.message_zh for i in judgement.items if i.verdict == "fail" and i.item_code not in printed]
    echoed = {id(c) for c in printed.values()}
    messages += [c.message_zh + (f"；检验报告所列比例之和同为 {ratio_figure(c.total)}" if id(c) in echoed else "")
                 for c in sums]
    # the lab's 不合格 on items qrisk passes or finds not applicable: the sample fails on them too (no
    # judgement.lab_failed_passed alert beside this one says them), each with qrisk's figure to check with the lab
    for i in judgement.lab_failures_passed():
        if i.item_code not in failed:
            failed.append(i.item_code)
            messages.append(_lab_failure_zh(i))
    return _effect("sampling.failed", event, enterprise_id, failed_items=failed, messages_zh=messages, **base)


_ITEM_VERDICT_ZH = {"pass": "合格", "not_applicable": "不适用", "undetermined": "无法判定"}


def _lab_failure_zh(item: Any) -> str:
    """An item the lab failed that qrisk passes or finds not applicable, as the failure's alert says it: the lab's
    不合格 stands (the report's conclusion), qrisk's reading beside it — value, limit and standard — to check."""
    return (f"检验机构判定{item.item_name or item.item_code}不合格，系统复核为{_ITEM_VERDICT_ZH.get(item.verdict, item.verdict)}"
            f"（{item.message_zh}），以检验机构结论为准，请核实判定依据")


def _unjudged_lab_failures(judgement: Any) -> list[Any]:
    """The items the lab judged 不合格 that qrisk cannot judge: undetermined (an unknown item code or unit, a
    detection limit above the limit, a plan with the wrong number of results, an undated sample whose edition
    is uncertain), or of a product whose own standard the catalogue lacks (a natural mineral water, GB 8537:
    "not_applicable" by reason ``uncatalogued_standard``, and the sample undetermined).  Not the items qrisk
    judged otherwise than the lab: those are disagreements (``judgement.disagrees_with_lab``)."""
    return [i for i in judgement.items if i.lab_verdict == "fail"
            and (i.verdict == "undetermined" or i.reason == "uncatalogued_standard")]


def _lab_failed_codes(judgement: Any) -> list[str]:
    # a sample counted 不合格 by the lab's failure of an item qrisk passes says its unjudged items in that alert
    if judgement is None or judgement.verdict == "fail" or judgement.lab_failures_passed():
        return []
    return [i.item_code for i in _unjudged_lab_failures(judgement)]


def _lab_passed_codes(judgement: Any) -> list[str]:
    if judgement is None or judgement.verdict == "fail":
        return []
    return [i.item_code for i in judgement.lab_failures_passed()]


def _lab_failed_passed(judgement: Any, record: SampleRecord, event: Envelope, enterprise_id: str, base: dict[str, Any]) -> Effect | None:
    """``judgement.lab_failed_passed``: the lab's 不合格 on items qrisk judges 合格 or not applicable (a value at the
    limit the lab rounded to, a product name the scope fragments miss, an item the standard in force no longer
    limits).  The report's 不合格 is the legal conclusion: the sample counts 不合格 (``SampleJudgement.counted``)
    and the follow-up starts on it, so this alerts as the lab's unjudged failures do, qrisk's figure beside the
    lab's to check the basis with the lab.  Unjudged lab failures of the same sample are named in it too (one
    sample, one alert).  None when qrisk fails the sample anyway (its ``sampling.failed`` alert starts the follow-up)."""
    if judgement.verdict == "fail":
        return None
    passed = judgement.lab_failures_passed()
    if not passed:
        return None
    found = passed + _unjudged_lab_failures(judgement)
    zh = {"pass": "合格", "not_applicable": "不适用", "undetermined": "无法判定"}
    items = [{"item_code": i.item_code, "item_name": i.item_name or i.item_code, "values": list(i.values), "unit": i.unit,
              "lab_verdict": i.lab_verdict, "lab_standard": i.lab_standard, "verdict": i.verdict, "reason": i.reason,
              # (the item's own sentence names it, with value, limit and standard)
              "message_zh": f"系统复核为{zh.get(i.verdict, i.verdict)}（{i.message_zh}）",
              "message_en": f"qrisk finds it {i.verdict.replace('_', ' ')} ({i.message_en})"} for i in found]
    names = "、".join(i["item_name"] for i in items)
    why = "；".join(i["message_zh"] for i in items)
    message = (f"抽样编号 {record.sample_no}（{record.product}）检验机构（{record.lab}）判定{names}不合格，{why}；"
               f"该样品按检验机构结论计为不合格。请核实判定依据，按检验机构不合格结论启动核查处置")
    return _effect("judgement.lab_failed_passed", event, enterprise_id, items=items, lab=record.lab, task_source=record.task_source,
                   message_zh=message, **base)


def _on_failure_alert(effect: Effect, carried_zh: str, carried_en: str, confirms: str | None = None) -> Effect:
    """``effect`` (a ``judgement.lab_failed_passed``) said on the sample's 抽检不合格 alert, which carries on: the sample's
    failure stood before and stands now, only qrisk's own failure of it went (a correction clearing the item qrisk
    failed, the re-test's figure) and the lab's 不合格 of an item qrisk passes holds it.  Closing that alert and opening
    another for the same failure would lose what the supervisor did on it (acknowledged, sealed, ordered a
    rectification).  ``confirms``: the re-test upholding the failure (noted on the alert, no new occurrence)."""
    effect.data.update(failure_alert=True, carried_zh=carried_zh, carried_en=carried_en,
                       **({"confirms_event_id": confirms} if confirms else {}))
    return effect


def _failure_alert_holds(file: CreditFile, report: SampleRecord) -> bool:
    """Whether the sample's failure ``report`` counts with (the lab's, on an item qrisk passes) is on its 抽检不合格 alert:
    back through the reports it corrected (and a re-test's original), failing by the report's conclusion all along, one
    qrisk failed too raised that alert, and each later one carried it on (``_on_failure_alert``); none did and the
    failure is the lab's own alert (``judgement.lab_failed_passed``)."""
    seen: set[str] = set()
    current: SampleRecord | None = report
    while current is not None and current.event_id not in seen and current.judgement is not None and current.judgement.counted == "fail":
        if current.judgement.verdict == "fail":
            return True
        seen.add(current.event_id)
        if current.corrects is not None:
            current = file.sample_by_event(current.corrects)
        elif current.retest:
            event_id = current.event_id
            current = next((s for s in file.reports_of(current.sample_no)
                            if not s.retest and s.superseded_by == event_id and s.superseded_as == "retest"), None)
        else:
            current = None
    return False


def _lab_failure_handed_over(file: CreditFile, no: str, before: Any, why_zh: str, event: Envelope, rules: Rules) -> Effect | None:
    """The ``warning.resolved`` of the sample's ``judgement.lab_failed_passed`` alert when qrisk now fails the sample
    too (a correction, a re-test): its ``sampling.failed`` alert takes the failure over — one sample, one failure, one
    alert open.  ``before``: the judgement that raised the lab's alert (none raised: None returned)."""
    warnings = rules.policy.warnings
    if not _lab_passed_codes(before) or not warnings.lab_failed_passed.enabled or not warnings.sampling_unqualified.enabled:
        return None
    return _effect_data(RESOLVED_KIND, event, file.enterprise_id, {
        "rule": "judgement.lab_failed_passed", "dedup_key": f"{file.enterprise_id}:judgement.lab_failed_passed:{no}",
        "enterprise_id": file.enterprise_id,
        "note_zh": f"抽样编号 {no} {why_zh}，系统复核亦判定不合格，由该样品的“抽检不合格”预警接续处置，本预警自动关闭",
        "note_en": f"sample {no}: qrisk now fails it too; its unqualified-sample alert carries the failure on: closed",
        "evidence": {"event_ids": [event_key(event)], "sample_no": no}})


def _lab_failed_unjudged(judgement: Any, record: SampleRecord, event: Envelope, enterprise_id: str, base: dict[str, Any]) -> Effect | None:
    """``judgement.lab_failed_unjudged``: the lab's 不合格 on items qrisk cannot judge.  Under
    《食品安全抽样检验管理办法》 the lab's unqualified conclusion starts the follow-up (核查处置) whether or not qrisk
    can judge it again, so the supervisor must be told; before, such a sample was only counted undetermined.  The
    counts and the pass rate do not change (the sample stays undetermined).  None when qrisk fails the sample
    anyway: its ``sampling.failed`` alert starts the follow-up already, and a second alert would be a duplicate."""
    if judgement.verdict == "fail" or judgement.lab_failures_passed():
        return None  # (the lab's failure of an item qrisk passes counts the sample 不合格: judgement.lab_failed_passed says it)
    found = _unjudged_lab_failures(judgement)
    if not found:
        return None
    items = [{"item_code": i.item_code, "item_name": i.item_name or i.item_code, "values": list(i.values), "unit": i.unit,
              "lab_verdict": i.lab_verdict, "lab_standard": i.lab_standard, "reason": i.reason,
              "message_zh": i.message_zh, "message_en": i.message_en} for i in found]
    names = "、".join(i["item_name"] for i in items)
    why = "；".join(i.message_zh for i in found)
    message = (f"抽样编号 {record.sample_no}（{record.product}）检验机构（{record.lab}）判定{names}不合格，系统无法判定（{why}）；"
               f"该样品计为无法判定，不计入合格率。请核实检验报告与适用标准，按检验机构不合格结论启动核查处置")
    return _effect("judgement.lab_failed_unjudged", event, enterprise_id, items=items, lab=record.lab, task_source=record.task_source,
                   message_zh=message, **base)


def _microbial_failures(record: SampleRecord | None, rules: Rules) -> list[Any]:
    j = record.judgement if record is not None else None
    if j is None:
        return []
    if j.verdict == "fail":
        failing = [i for i in j.items if i.verdict == "fail"]
        if j.counted == "fail":  # and the lab's microbial 不合格 beside qrisk's own: the report's conclusion names both
            failing += j.lab_failures_passed()
    elif j.counted == "fail":
        failing = j.lab_failures_passed()  # the lab's microbial 不合格 admits no re-test, whatever qrisk's figure
    else:
        return []
    classes = rules.policy.retest.inadmissible_item_classes
    return [i for i in failing if i.item_class in classes]


def _inadmissible(original: SampleRecord, retest: SampleRecord, rules: Rules) -> tuple[str, str] | None:
    """Why the re-test (复检) of ``original`` is not admitted — (reason code, the reason in Chinese) —
    or None when it is.  Admitted means: requested after an unqualified result that admits one, done
    by another lab than the first, and back within the policy's window."""
    microbial = _microbial_failures(original, rules)
    if microbial:
        names = "、".join(i.item_name or i.item_code for i in microbial)
        return "microbial", f"原检验结论为微生物指标不合格（{names}），依据《食品安全抽样检验管理办法》不予复检"
    j = original.judgement
    if j is not None and j.counted == "pass" and not any(i.lab_verdict == "fail" for i in j.items):
        # the original's report reads 合格 (qrisk's own failure of it aside: SampleJudgement.counted): there was no
        # unqualified conclusion to dispute, nothing to re-test
        return "original_passed", "原检验结论为合格；复检只能在对不合格检验结论有异议时申请"
    if _same_lab(original, retest):
        sent = (f"，且由同一检验机构系统（{original.lab_id}）报送" if original.lab_id is not None and original.lab_id == retest.lab_id
                and _lab_key(original.lab) != _lab_key(retest.lab) else "")
        return "same_lab", f"复检仍由原检验机构（{original.lab}）承担{sent}；依据《食品安全法》第八十八条，复检应由另一家复检机构进行"
    rj = retest.judgement
    if j is not None and j.verdict == "fail" and rj is not None and rj.verdict == "undetermined":
        # a re-test nobody could judge (an unknown item or unit, a detection limit above the limit) cannot
        # overturn the unqualified conclusion: the original stands until a re-test that can be judged
        names = _undetermined_names(rj)
        return "undetermined", f"复检结果无法判定（{names or '见判定说明'}），不能推翻原不合格结论；请核实复检报告的项目代码、单位和检出限"
    listed = rules.policy.retest.institutions
    if listed and not _listed_institution(retest, listed):
        who = f"{retest.lab}（检验机构系统 {retest.lab_id}）" if retest.lab_id is not None else retest.lab
        # the bureau's own list (policy), not the national 复检机构名录: a re-test by a lab missing from it may
        # still be lawful, and then its conclusion is final (食品安全法第八十八条)
        return "not_listed", (f"复检机构 {who} 不在本局登记的复检机构清单中（策略 retest.institutions）：系统暂未采信该复检结果，原检验结论暂不改变；"
                              f"请核实复检申请、受理及该机构的复检资质，确属依法复检的，复检结论为最终结论，请将该机构加入清单")
    if j is not None and rj is not None and rj.items:
        partial = _failing_sums_partly_retested(j, {i.item_code for i in rj.items})
        if partial is not None:
            return "partial_sum", partial
    window = rules.policy.retest.result_within_days
    # calendar days where the bureau is (a report at 23:30 and one at 00:30 forty-five 24-hour periods on are 46 days apart)
    gap = (rules.local_date(retest.occurred_at) - rules.local_date(original.occurred_at)).days
    if window is not None and gap > window:
        # an announcement's date can come after its re-test: only a re-test too long after counts
        # the data's arrival, not the application's date, is all qrisk sees: lateness is a doubt to check
        return "late", (f"复检结果在原检验结论后 {gap} 天才收到，超出复检申请（收到检验结论之日起7个工作日内）、"
                        f"受理、确定复检机构、移交备份样品和复检检验的常规时限（按 {window} 个自然日近似），系统暂未采信；"
                        f"请核实复检申请和受理日期，确属依法按期申请的复检，复检结论为最终结论")
    return None


def _undetermined_names(judgement: Any) -> str:
    """What left a judgement undetermined: its undetermined items, and codes the catalogue does not know."""
    names = {i.item_code: i.item_name or i.item_code for i in judgement.items if i.verdict == "undetermined"}
    for u in judgement.unknown:
        # (an unknown category has no item code: the catalogue has no standards for it at all)
        key = u.item_code or f"{u.kind}:{u.text}"
        names.setdefault(key, u.item_code or (f"“{u.text}”类别无适用标准" if u.kind == "category" else u.text) or u.kind)
    return "、".join(n for n in names.values() if n)


def _lab_key(lab: str) -> str:
    return unicodedata.normalize("NFKC", "".join(lab.split()))


def _same_sender(a: SampleRecord, b: SampleRecord) -> bool:
    """Whether ``b`` may correct ``a`` (the report on file).  A report a lab system sent (``b.lab_id``, its
    key's bound CMA number) corrects only what that same system sent: the lab name it prints is its own word,
    so another lab's key printing the first lab's name — or the name on a result imported from an
    announcement, or posted by an admin or the bureau (no ``lab_id``) — must not correct a failure away.
    A report no lab system sent (an importer's, an admin's: trusted) corrects another such report by the
    printed lab name (and a lab system's report in any case: ``_official_over_lab_system``)."""
    if b.lab_id is not None:
        return a.lab_id == b.lab_id
    return _lab_key(a.lab) == _lab_key(b.lab)


def _official_over_lab_system(on_file: SampleRecord, record: SampleRecord) -> bool:
    """Whether ``record``, a report no lab system sent (imported from an announcement, posted by an admin or
    the bureau: the supervisor's own record), meets a report a lab system sent: it takes that report's
    place whatever lab it prints and whenever it is dated.  Otherwise a lab key that sent a sample number
    first (a passing report, dated after the announcement or under its own name) would have the official
    failure filed aside as ``outdated`` or ``other_lab``.  The other way round a lab system's report is
    ``other_lab`` (``_same_sender``): either way the official report counts."""
    return record.lab_id is None and on_file.lab_id is not None


def _same_lab(a: SampleRecord, b: SampleRecord) -> bool:
    """Whether two reports come from one lab: the same name as printed, or the same lab system sending
    them (its authenticated source id) — a lab's own key sending a 复检 that prints another lab's name
    is still the first lab (《食品安全法》第八十八条: another lab re-tests)."""
    return _lab_key(a.lab) == _lab_key(b.lab) or (a.lab_id is not None and a.lab_id == b.lab_id)


def _retest_inadmissible(state: CountyState, file: CreditFile, record: SampleRecord, original: SampleRecord,
                         retest: SampleRecord, why: tuple[str, str], event: Envelope, rules: Rules, effects: list[Effect]) -> None:
    """A re-test that is not admitted (``why``, from ``_inadmissible``): the original stands.  The
    re-test stays on file, marked as not counting, whichever of the two came first."""
    counts = file.counts
    judgement = record.judgement
    assert judgement is not None
    retest.superseded_by, retest.superseded_as = original.event_id, "retest_inadmissible"
    retest.refused_zh = why[1]  # (the lab hears it in the answer: ingest.lint)
    counts.samples -= 1  # one sample: the original's
    fresh: list[dict[str, Any]] = []
    counted_fresh = False
    signalled: list[Any] | None = None  # (the pass-rate periods that signalled, when the re-test's failure leaves them)
    if record is retest:
        pass  # the re-test was never counted
    else:
        # the re-test came first and was counted, charted and graded as the sample's result:
        # take that back, then count the original as any sample
        _count(counts, retest.judgement, -1)  # type: ignore[arg-type]
        if retest.judgement.verdict == "undetermined":  # type: ignore[union-attr]
            # never in the pass-rate charts or Paretos: the original goes in as a first result does
            fresh, counted_fresh = recounted(file, retest, original, state.categories, rules), True
        else:
            signalled = signalled_periods(file, state.categories)
            overturned(file, retest, state.categories, rules, check=False)
        _count(counts, judgement, 1)
    reason, reason_zh = why
    base = dict(sample_no=record.sample_no, product=record.product, sampled_on=record.sampled_on.isoformat(), sample_event_id=record.event_id)
    effects.append(_effect("sampling.judged", event, file.enterprise_id, verdict=judgement.verdict, **base))
    effects.append(_effect(
        "sampling.retest_inadmissible", event, file.enterprise_id, original_event_id=original.event_id,
        retest_event_id=retest.event_id, items=[i.item_code for i in _microbial_failures(original, rules)],
        reason=reason, reason_zh=reason_zh,
        message_zh=f"抽样编号 {record.sample_no}（{record.product}）{reason_zh}，复检结果不改变原结论",
        **base))
    again: list[dict[str, Any]] = []
    # (by the original's conclusion, SampleJudgement.counted: the lab's 不合格 of an item qrisk passes — a microbial
    # one admits no re-test — is the failure the early re-test hid, as qrisk's own)
    if record is original and judgement.counted == "fail" and not counted_fresh:
        again = reinstated(file, original, state.categories, rules, "复检结果不予采信，原不合格结论计入后，")
    if signalled is not None:
        # (after the original's failure came back: a pass-rate signal the re-test's and the original's both support stays)
        fresh = no_longer_out(file, state.categories, signalled, rules, retest.sample_no)
    for signal in again + fresh:
        effects.append(_chart_effect(event, file.enterprise_id, base, signal))
    rj = retest.judgement
    assert rj is not None
    if record is original and judgement.verdict == "fail":
        # the failure the early re-test hid: its warning and risk entry are raised now (the
        # sample's values were charted with the re-test's)
        effects.append(_failed(judgement, event, file.enterprise_id, base))
        if (over := _lab_failure_handed_over(file, record.sample_no, rj, "复检结果不予采信、原检验结论为不合格", event, rules)) is not None:
            effects.append(over)  # (the early re-test's lab failure alerted on its own report, now not admitted)
    elif record is original and judgement.counted == "fail":
        # the lab's failure the early re-test hid, of an item qrisk passes: its warning and risk entry, as when the
        # original comes first — on the early re-test's failure alert if it raised one (the same sample's failure)
        if (lab_failed := _lab_failed_passed(judgement, record, event, file.enterprise_id, base)) is not None:
            if rj.verdict == "fail":
                lab_failed = _on_failure_alert(
                    lab_failed, f"抽样编号 {record.sample_no} 复检结果不予采信（{reason_zh}），以原检验结论为准：",
                    f"sample {record.sample_no}: the re-test is not admitted; the original report decides: ")
            effects.append(lab_failed)
    elif record is original and (rj.verdict == "fail" or rj.counted == "fail"):
        # the early re-test's failure (qrisk's or its lab's), graded and alerted as the sample's, was never the
        # sample's conclusion
        effects.append(_effect(
            "sampling.overturned", event, file.enterprise_id, original_event_id=retest.event_id, verdict=judgement.counted,
            message_zh=f"抽样编号 {record.sample_no}（{record.product}）复检结果不予采信，其不合格结论不再计入；原检验结论为{_VERDICT_ZH[judgement.counted]}",
            **base))


def _count(counts: Any, judged: "SampleJudgement | str", by: int) -> None:
    """Count a sample in (``by`` 1) or out (-1) by its conclusion (``SampleJudgement.counted``: a failure qrisk
    alone finds counts 合格, and as unconfirmed); ``judged`` a verdict: a sample nobody could judge yet."""
    if isinstance(judged, str):
        verdict = judged
    else:
        verdict = judged.counted
        if judged.unconfirmed:
            counts.samples_unconfirmed += by
    if verdict == "pass":
        counts.samples_passed += by
    elif verdict == "fail":
        counts.samples_failed += by
    else:
        counts.samples_undetermined += by


def _as_lines(judgement: Any) -> list[TestItem]:
    """A judgement's result lines as a lab would send them (in the catalogue's units, as judged)."""
    return [TestItem(item_code=i.item_code, item_name=i.item_name, values=list(i.values), unit=i.unit, detection_limit=i.detection_limit,
                     lab_verdict=i.lab_verdict, standard_ref=i.lab_standard) for i in judgement.items]


def _with_items_not_retested(state: CountyState, file: CreditFile, original: SampleRecord, retest: SampleRecord, counted_alone: bool,
                             rules: Rules, event: Envelope, effects: list[Effect]) -> Any:
    """The re-test's judgement with the original's items it did not re-test (复检 covers the disputed
    items; the rest of the first test stands, 《食品安全抽样检验管理办法》): judged together, so that a
    sum of ratios takes the re-tested preservative with the one not re-tested.  Sets it on the re-test
    and returns it.  ``counted_alone``: the re-test came first and was counted alone; if it now fails on
    what it did not re-test, it is counted again and the failure raised."""
    own, first = retest.judgement, original.judgement
    tested = {i.item_code for i in own.items}  # type: ignore[union-attr]
    category = file.profile.category  # type: ignore[union-attr]
    partly, stale = _sums_partly_retested(first, tested, category, rules)
    try:
        kept = [line for line in _as_lines(first) if line.item_code not in tested and line.item_code not in stale]
        if not kept:
            return own
        payload = SamplingResult(sample_no=retest.sample_no, task_source=retest.task_source, lab=retest.lab, product=retest.product,
                                 batch=retest.batch, production_date=retest.production_date, sampled_on=retest.sampled_on, retest=True,
                                 items=[*_as_lines(own), *kept])
    except ValidationError:
        return own  # (lines that validated once, as judged: not expected; the re-test's own result then, never a lost event)
    merged = judge_sample(payload, category, rules.catalogue)
    if partly:
        merged = _sums_of_one_lab(merged, first, partly, tested)
    retest.judgement, retest.not_retested = merged, tuple(line.item_code for line in kept)
    if counted_alone:
        # the re-test came first and was counted alone: now it is the sample's conclusion with the items it did
        # not re-test — its row (judgements table), counts, Paretos and p charts, and the failure it now has
        base = dict(sample_no=retest.sample_no, product=retest.product, sampled_on=retest.sampled_on.isoformat(), sample_event_id=retest.event_id)
        effects.append(_effect("sampling.judged", event, file.enterprise_id, verdict=merged.verdict, not_retested=list(retest.not_retested), **base))
        before = retest.model_copy(update={"judgement": own, "not_retested": ()})
        _count(file.counts, own, -1)  # type: ignore[arg-type]
        _count(file.counts, merged, 1)
        if merged.counted != own.counted:  # type: ignore[union-attr]
            # (the charts hold the sample by its conclusion)
            for signal in recounted(file, before, retest, state.categories, rules):
                effects.append(_chart_effect(event, file.enterprise_id, base, signal))
        if merged.verdict != own.verdict:  # type: ignore[union-attr]
            if merged.verdict == "fail":
                effects.append(_failed(merged, event, file.enterprise_id, base))
        elif merged.verdict == "fail" and _failed_list(merged) != _failed_list(own):
            # failing still, on more items: the Paretos, the risk weight and the alert name them all
            if merged.counted == own.counted:  # type: ignore[union-attr]
                refailed(file, before, retest, state.categories, rules)
            failed = _failed(merged, event, file.enterprise_id, base)
            failed.data["confirms_event_id"] = retest.event_id
            effects.append(failed)
    return merged


def _listed_institution(retest: SampleRecord, listed: list[str]) -> bool:
    """Whether the re-test comes from a lab the policy's 复检机构名录 lists: a lab system by its CMA number (the
    name it prints is its own word), a report no lab system sent by the lab name it prints."""
    if retest.lab_id is not None:
        return retest.lab_id in listed
    names = {_lab_key(name) for name in listed}
    return _lab_key(retest.lab) in names


def _failing_sums_partly_retested(first: Any, tested: set[str]) -> str | None:
    """Why a re-test cannot decide a failing sum of ratios it covers in part (None when it covers none or all):
    a sum of ratios is one lab's figure, every member determined on the same portion (GB 2760 附录A A.2), so
    the re-test's results added to the first lab's make a figure neither lab found — one that would overturn
    the failure, or uphold it, on another lab's word.  The first test's conclusion stands until every member
    is re-tested."""
    names = {i.item_code: i.item_name or i.item_code for i in first.items}
    for c in first.sum_checks:
        if c.verdict != "fail":
            continue
        codes = [m.item_code for m in c.members] + list(c.pending)
        covered = [names.get(k, k) for k in codes if k in tested]
        left = [names.get(k, k) for k in codes if k not in tested]
        if covered and left:
            return (f"原检验结论为{c.item_name or c.group_name + '比例之和'}不合格（{ratio_figure(c.total)}），复检仅涉及{'、'.join(covered)}，"
                    f"{'、'.join(left)}未复检：GB 2760 附录A A.2 规定各自用量占其最大使用量的比例之和不应超过1，本系统只用同一份检验报告中全部{c.group_name}的结果计算比例之和，"
                    f"复检结果不与初检结果合计；原不合格结论不变，请对{'、'.join(names.get(k, k) for k in codes)}一并复检")
    return None


def _sums_partly_retested(first: Any, tested: set[str], category: str, rules: Rules) -> tuple[dict[str, Any], set[str]]:
    """The first test's sums of ratios the re-test covers in part — {group: the first test's check}; a failing
    one makes the re-test inadmissible (``_failing_sums_partly_retested``), so these passed — and the codes
    of sum lines the first lab printed itself (preservative_ratio_sum) for a group the re-test re-tested
    whole: a figure the re-test made out of date, not a result it left standing."""
    partly: dict[str, Any] = {}
    for c in first.sum_checks:
        codes = {m.item_code for m in c.members} | set(c.pending)
        if codes & tested and codes - tested:
            partly[c.group] = c
    # a printed sum is out of date only where the first test's own members show what it summed and the re-test
    # covered them all: a printed sum alone (an announcement's 1.35 without its members) stays, as the first
    # lab's result the re-test did not re-determine
    retested = {c.item_name for c in first.sum_checks
                if c.group not in partly and ({m.item_code for m in c.members} | set(c.pending)) <= tested}
    stale = {i.item_code for i in first.items if i.item_name in retested and i.item_code not in tested} if retested else set()
    return partly, stale


def _sums_of_one_lab(merged: Any, first: Any, partly: dict[str, Any], tested: set[str]) -> Any:
    """A sum of ratios is one lab's figure (GB 2760 附录A A.2): where the re-test covered some members of a
    group whose sum the first test passed, the first lab's sum stands — the re-test's results added to the
    first lab's would make a figure neither lab found, and a failure out of it."""
    names = {i.item_code: i.item_name or i.item_code for i in first.items}
    sums = list(merged.sum_checks)
    changed = False
    for group, was in partly.items():
        k = next((n for n, c in enumerate(sums) if c.group == group), None)
        codes = [m.item_code for m in was.members] + list(was.pending)
        note = (f"（复检仅涉及{'、'.join(names.get(c, c) for c in codes if c in tested)}，比例之和须由同一检验机构计算，"
                f"以初检的比例之和为准）")
        kept = was.model_copy(update={"message_zh": was.message_zh + note,
                                      "message_en": was.message_en + " (the re-test covers part of the group: the first test's sum stands)"})
        if k is None:
            sums.append(kept)
        else:
            sums[k] = kept
        changed = True
    if not changed:
        return merged
    if any(i.verdict == "fail" for i in merged.items) or any(c.verdict == "fail" for c in sums):
        verdict = "fail"
    elif merged.unknown or any(i.verdict == "undetermined" for i in merged.items) or any(c.verdict == "undetermined" for c in sums):
        verdict = "undetermined"
    else:
        verdict = "pass" if any(i.verdict in ("pass", "fail") for i in merged.items) else merged.verdict
    disagreements = tuple(d for d in merged.disagreements if not (d.startswith("sum_of_ratios:") and d[len("sum_of_ratios:"):] in partly))
    return merged.model_copy(update={"sum_checks": tuple(sums), "verdict": verdict, "disagreements": disagreements})


def _failed_list(judgement: Any) -> list[str]:
    # what the sample fails on by its conclusion: a re-test merged with a first test's 余氯 the lab failed (qrisk passes
    # it) fails on more than qrisk's lead, and the Paretos and the alert must follow
    return judgement.counted_failed_codes()  # type: ignore[no-any-return]


def _pair(file: CreditFile, record: SampleRecord) -> tuple[SampleRecord | None, SampleRecord | None]:
    """(original, re-test) of ``record``'s sample number among the judged samples, ``record`` included."""
    if not record.retest:
        first = file.retests.get(record.sample_no)  # a re-test that came first
        other = file.sample_by_event(first) if first is not None else None
        return (record, other) if other is not None and other.judgement is not None else (None, None)
    file.retests[record.sample_no] = record.event_id
    for other in reversed(file.samples):
        if (other is not record and not other.retest and other.sample_no == record.sample_no
                and other.judgement is not None and other.superseded_by is None):
            return other, record
    return None, None


def _judge_pending(state: CountyState, file: CreditFile, event: Envelope, rules: Rules, effects: list[Effect]) -> None:
    for record in file.samples:
        if record.pending is not None and record.superseded_by is None:
            payload, record.pending = record.pending, None
            file.counts.samples_undetermined -= 1
            start = len(effects)
            _judge(state, file, record, payload, event, rules, effects)
            if any(i.lab_verdict == "fail" for i in payload.items) and record.judgement is not None and not any(
                    e.kind == "judgement.lab_failed_unjudged" for e in effects[start:]):
                # the lab's failure alerted while the enterprise was unregistered; judged now, the judgement's own
                # alerts take over (a failure's, or a disagreement's where qrisk passes it)
                verdict = _VERDICT_ZH.get(record.judgement.counted, record.judgement.counted)
                effects.append(_effect_data(RESOLVED_KIND, event, file.enterprise_id, {
                    "rule": "judgement.lab_failed_unjudged", "dedup_key": f"{file.enterprise_id}:judgement.lab_failed_unjudged:{record.sample_no}",
                    "enterprise_id": file.enterprise_id,
                    "note_zh": f"企业已登记，抽样编号 {record.sample_no} 已按标准判定（结论：{verdict}），由该结论的预警接续处置，本预警自动关闭",
                    "note_en": f"the enterprise is registered and sample {record.sample_no} judged ({record.judgement.verdict}): closed",
                    "evidence": {"event_ids": [event_key(event), record.event_id], "sample_no": record.sample_no}}))
    # a report that replaced another while both waited, and judges undetermined: the one it replaced (corrected,
    # or dated earlier and so filed as outdated) stands if it fails — as when they arrive after registration
    for record in file.samples:
        if record.pending is None or record.retest:
            continue
        payload, record.pending = record.pending, None
        current = file.sample_by_event(record.superseded_by) if record.superseded_as in ("corrected", "outdated") else None
        if (current is None or current.superseded_by is not None or current.judgement is None
                or current.judgement.verdict != "undetermined"):
            continue
        judgement = judge_sample(payload, file.profile.category, rules.catalogue)  # type: ignore[union-attr]
        if judgement.verdict == "fail":
            record.superseded_by = record.superseded_as = None
            _unjudged_came_first(state, file, record, current, judgement, event, rules, effects)
    for record in file.samples:
        record.pending = None  # (what is left: reports filed aside while waiting, never judged)


# --------------------------------------------------------------------------- resends and corrections
#
# A lab may send a sample's report again under a new event id: many lab systems make a new UUID per
# send attempt, and a corrected report must come as a new event (an accepted event is immutable; the
# API's 409 tells labs so).  Counted as another sample it made one sample two (two samples, two
# failures, a p-chart "systematic" signal of 2 of 2) while the risk grade, by sample number, saw one.
# The report on file for the same enterprise, sample number (抽样编号) and kind (original, or re-test)
# is the sample's current report; a new report of it is
#
# - the same report repeated, when it says the same as qrisk keeps and judges it (product, batch,
#   dates, lab, task source, every test line as judged): filed as ``repeated``, nothing counted,
#   judged, charted or alerted again (``sampling.repeated_report`` names both events);
# - another lab's result, when the lab differs: one lab cannot correct another's report, and a
#   re-test (复检) is admitted by its own rules (another lab, in time, no microbial failure), which a
#   result without the flag must not get round.  Filed as ``other_lab``, not counted, and said
#   (``sampling.sample_no_conflict``: send it as a re-test, or under the right number).  Who sent it
#   decides, not only the printed name (``_same_sender``): a lab system's report (``lab_id``) corrects
#   only what the same lab system sent — not another lab system's, nor one no lab system sent (imported
#   from an announcement, posted by an admin or the bureau), whatever lab name it prints; a report no
#   lab system sent (trusted: an importer's, an admin's) corrects another such report by the printed lab name,
#   and takes the place of a lab system's report whatever it prints and however it is dated
#   (``_official_over_lab_system``): the supervisor's record counts, whichever of the two came first;
# - an earlier report that arrived late, when its event time is before the current report's: the
#   later report stands (``outdated``, ``sampling.report_outdated``).  Event time decides, not
#   arrival: a stuck send attempt of the first report delivered after its correction must not undo
#   it.  At equal event times the log's order decides: the later logged is the latest report;
# - otherwise a correction (``sampling.corrected``; the old report stays on file, ``corrected``).
#   It takes the old report's place in whatever role that had:
#   * counting (a sample without re-test, an original whose re-test was not admitted, an admitted
#     re-test): the counts, the pass rate, the Paretos, the pass-rate (p) charts and the risk entry
#     follow the correction.  A failure it clears is ``sampling.overturned``, as after a passing
#     re-test; a failure it brings is ``sampling.failed`` once (for a re-test, as upholding the
#     original's failure); a failure it keeps is not raised again (``sampling.corrected`` carries it);
#   * not counting (an original replaced by its re-test, a re-test not admitted): filed in the same
#     role; nothing counted changes.  Whether a re-test is admitted is decided when it meets its
#     original; a correction of either does not reopen it (the re-test was asked for and done on the
#     reports then on file), and ``sampling.corrected`` says that the re-test still decides.
#
# The item control charts keep the values charted for the sample's first report: the monitors are
# incremental (a point cannot be taken back from an EWMA, a CUSUM or a frozen baseline), as after a
# re-test, whose values are not charted either; a signal already raised stands.

_NEVER_CHARTED = frozenset({"repeated", "outdated", "other_lab", "unjudged", "retracted"})


def _report_on_file(file: CreditFile, sample_no: str, retest: bool) -> SampleRecord | None:
    """The current report of ``sample_no`` on file: the latest original (or, with ``retest``, re-test)
    not replaced by a later report of itself; None for a sample not yet on file."""
    for other in reversed(file.reports_of(sample_no)):
        d = other.__dict__
        if d["retest"] == retest and d["superseded_as"] not in RESENT:
            return other
    return None


def _resent(state: CountyState, file: CreditFile, record: SampleRecord, on_file: SampleRecord, payload: SamplingResult,
            event: Envelope, rules: Rules, effects: list[Effect]) -> None:
    """A report of a sample whose report (``on_file``) is on file: repeated, another lab's, late, or a correction."""
    judgement = judge_sample(payload, file.profile.category, rules.catalogue) if file.profile is not None else None
    base = dict(sample_no=record.sample_no, product=record.product, sampled_on=record.sampled_on.isoformat(), sample_event_id=record.event_id)
    head = f"抽样编号 {record.sample_no}（{record.product}）"
    what = "复检结果" if record.retest else "检验结果"
    official = _official_over_lab_system(on_file, record)
    # (the supervisor's record saying what a lab system's says still takes its place: filed as a repeat, the lab
    # system's report would stay current, and a later correction from that lab system would replace it)
    if not official and _same_report(on_file, record, payload, judgement):
        record.superseded_by, record.superseded_as, record.judgement = on_file.event_id, "repeated", judgement
        effects.append(_effect(
            "sampling.repeated_report", event, file.enterprise_id, repeats_event_id=on_file.event_id, retest=record.retest,
            message_zh=f"{head}{what}重复报送：与已收到的报告（事件 {on_file.event_id}）内容相同，不重复计数", **base))
        return
    if (not official and record.lab_id is not None and on_file.lab_id is None and not record.retest and judgement is not None
            and judgement.verdict == "fail" and on_file.superseded_by is None and on_file.judgement is not None
            and on_file.judgement.verdict == "undetermined"):
        # a lab system's failure meets the supervisor's record qrisk cannot judge: a result nobody could judge does not
        # overturn a failure, whichever came first (the other way round the failure stands: the correction is unjudged)
        _unjudged_came_first(state, file, record, on_file, judgement, event, rules, effects)
        return
    if not official and not _same_sender(on_file, record):
        record.superseded_by, record.superseded_as, record.judgement = on_file.event_id, "other_lab", judgement
        unflagged = "" if record.retest else "且未标注复检"
        ask = "" if record.retest else "如为复检，请标注复检（retest: true）后重新报送；"
        if _lab_key(on_file.lab) != _lab_key(record.lab):
            came = f"本次{what}来自{record.lab}{unflagged}：一家检验机构不能更正另一家的报告"
        else:
            # the same printed name, another sender: the name is the sending system's word, not who it is
            sent = (f"由检验机构系统 {on_file.lab_id} 报送" if on_file.lab_id is not None
                    else "不是由检验机构系统报送的（公告导入或管理部门录入）")
            came = (f"本次{what}署名相同，但由{'另一' if on_file.lab_id is not None else ''}检验机构系统（{record.lab_id}）报送{unflagged}，而原报告{sent}："
                    f"检验机构系统只能更正本系统报送的报告")
        effects.append(_effect(
            "sampling.sample_no_conflict", event, file.enterprise_id, on_file_event_id=on_file.event_id, lab=record.lab,
            on_file_lab=on_file.lab, retest=record.retest,
            message_zh=(f"{head}已有{on_file.lab}的{what}（事件 {on_file.event_id}），{came}，"
                        f"本次结果存档、不计入统计，请核实；{ask}如抽样编号有误，请更正后以新的 event_id 报送"),
            **base))
        return
    if (not official and record.occurred_at < on_file.occurred_at and judgement is not None and judgement.verdict == "fail" and on_file.superseded_by is None
            and on_file.judgement is not None and on_file.judgement.verdict == "undetermined" and not record.retest):
        # the later report, which nobody could judge, came first; this earlier one fails: a result nobody could
        # judge does not overturn a failure (as when the unjudgeable one comes second), so this one counts
        _unjudged_came_first(state, file, record, on_file, judgement, event, rules, effects)
        return
    if not official and record.occurred_at < on_file.occurred_at:
        record.superseded_by, record.superseded_as, record.judgement = on_file.event_id, "outdated", judgement
        if judgement is None:
            record.pending = payload  # (kept while both wait for registration: see _judge_pending)
        effects.append(_effect(
            "sampling.report_outdated", event, file.enterprise_id, current_event_id=on_file.event_id, retest=record.retest,
            message_zh=(f"{head}收到一份报告时间早于已收到报告（事件 {on_file.event_id}）的{what}，晚于它到达："
                        f"以报告时间在后的报告为准，本次报告存档、不计入统计"),
            **base))
        return
    was = on_file.judgement
    original = _report_on_file(file, record.sample_no, False) if record.retest else None
    failed = (was is not None and was.verdict == "fail") or (
        original is not None and original.judgement is not None and original.judgement.verdict == "fail")
    if judgement is not None and judgement.verdict == "undetermined" and failed:
        # a result nobody could judge (an unknown item or unit, a detection limit above the limit) does not
        # overturn an unqualified conclusion: the failure, its count, grade and alert stand
        record.superseded_by, record.superseded_as, record.judgement = on_file.event_id, "unjudged", judgement
        why = _undetermined_names(judgement)
        effects.append(_effect(
            "sampling.correction_unjudged", event, file.enterprise_id, on_file_event_id=on_file.event_id, retest=record.retest,
            message_zh=(f"{head}收到更正的{what}，但其结果无法判定（{why or '见判定说明'}）：不能推翻原不合格结论（事件 {on_file.event_id}），"
                        f"原结论仍有效，本次未采用、不计入统计；请核实项目代码、单位和检出限后以新的 event_id 重新报送"),
            **base))
        return
    _corrected(state, file, record, on_file, payload, judgement, event, rules, effects)


def _unjudged_came_first(state: CountyState, file: CreditFile, record: SampleRecord, on_file: SampleRecord, judgement: Any,
                         event: Envelope, rules: Rules, effects: list[Effect]) -> None:
    """``on_file``, a later-dated report qrisk cannot judge, counts; ``record``, an earlier report of the same
    sample that fails, arrives after it.  The failure stands: ``record`` takes its place and ``on_file`` is
    filed as ``unjudged`` — what the two give when they arrive the other way round."""
    record.judgement = judgement
    on_file.superseded_by, on_file.superseded_as = record.event_id, "unjudged"
    _count(file.counts, "undetermined", -1)
    _count(file.counts, judgement, 1)
    base = dict(sample_no=record.sample_no, product=record.product, sampled_on=record.sampled_on.isoformat(), sample_event_id=record.event_id)
    signals = recounted(file, on_file, record, state.categories, rules)
    signals += recharted(file, on_file, record, _charted_reports(file), state.categories, rules)[1]
    effects.append(_effect("sampling.judged", event, file.enterprise_id, verdict=judgement.verdict, **base))
    effects.append(_effect("sampling.judged", event, file.enterprise_id, verdict="undetermined",
                           **{**base, "sample_event_id": on_file.event_id}))  # (its row again, superseded)
    effects.append(_effect(
        "sampling.correction_unjudged", event, file.enterprise_id, on_file_event_id=record.event_id, retest=False,
        message_zh=(f"抽样编号 {record.sample_no}（{record.product}）此前收到的检验结果（事件 {on_file.event_id}）无法判定"
                    f"（{_undetermined_names(on_file.judgement) or '见判定说明'}），现收到报告时间更早的不合格结果：无法判定的结果不能推翻不合格结论，"
                    f"以本次不合格结果计入；请核实后以新的 event_id 重新报送"),
        **base))
    effects.append(_failed(judgement, event, file.enterprise_id, base))
    for signal in signals:
        effects.append(_chart_effect(event, file.enterprise_id, base, signal))


def _same_report(on_file: SampleRecord, record: SampleRecord, payload: SamplingResult, judgement: Any) -> bool:
    """Whether a resend says what the report on file says, as qrisk keeps and judges it.  Judged, the
    test lines compare as judged (a value sent in g/L is the same result as in mg/L); while both
    await the enterprise's registration, as sent.  What qrisk neither keeps nor judges (spec, brand,
    announcement no., method, remarks) does not make a report another."""
    if (on_file.product != record.product or on_file.batch != record.batch or on_file.production_date != record.production_date
            or on_file.sampled_on != record.sampled_on or on_file.task_source != record.task_source or _lab_key(on_file.lab) != _lab_key(record.lab)):
        return False
    if on_file.pending is not None:
        return _lines(on_file.pending) == _lines(payload)
    if judgement is None or on_file.judgement is None:
        return False
    if on_file.not_retested:
        # a re-test judged with the first test's items it did not re-test: its own lines are what a resend repeats
        return _by_code(i for i in on_file.judgement.items if i.item_code not in on_file.not_retested) == _by_code(judgement.items)
    return on_file.judgement == judgement or _same_judgement(on_file.judgement, judgement)


def _by_code(items: Iterable[Any]) -> dict[str, Any]:
    # an item code appears once in a report (the door refuses a second): the order of the lines says nothing
    return {i.item_code: i for i in items}


def _same_judgement(a: Any, b: Any) -> bool:
    """The same judgement but for the order the report listed its lines in (a lab system's resend may list
    them otherwise): a repeat, not a correction."""
    if len(a.items) != len(b.items) or _by_code(a.items) != _by_code(b.items):
        return False
    if sorted(a.disagreements) != sorted(b.disagreements) or sorted(map(repr, a.unknown)) != sorted(map(repr, b.unknown)):
        return False
    ignore = {"items", "disagreements", "unknown"}
    return all(getattr(a, name) == getattr(b, name) for name in type(a).model_fields if name not in ignore)


def _lines(payload: SamplingResult) -> list[tuple[Any, ...]]:
    return sorted((t.item_code, tuple(t.values), t.unit, t.detection_limit, t.lab_verdict, t.standard_ref) for t in payload.items)


def _corrected(state: CountyState, file: CreditFile, record: SampleRecord, prev: SampleRecord, payload: SamplingResult,
               judgement: Any, event: Envelope, rules: Rules, effects: list[Effect]) -> None:
    """``record`` corrects ``prev``, the sample's current report: it takes its place (see above)."""
    old_by, old_as = prev.superseded_by, prev.superseded_as
    prev.superseded_by, prev.superseded_as = record.event_id, "corrected"
    record.corrects = prev.event_id
    base = dict(sample_no=record.sample_no, product=record.product, sampled_on=record.sampled_on.isoformat(), sample_event_id=record.event_id)
    head = f"抽样编号 {record.sample_no}（{record.product}）"
    what = "复检结果" if record.retest else "检验结果"
    changes = _changes(prev, record, judgement)
    detail = "".join(f"；{c['text_zh']}" for c in changes)
    corrected = dict(corrects_event_id=prev.event_id, retest=record.retest, changes=changes, **base)
    if _official_over_lab_system(prev, record):
        corrected["official"] = True
        detail += (f"；本次不是由检验机构系统报送的（公告导入或管理部门录入），以其为准：检验机构系统（{prev.lab_id}）此前报送的"
                   f"{what}（事件 {prev.event_id}）存档、不再计入，请核实其来源")
    if judgement is None:
        # the enterprise is not registered, so the old report awaits it too (registration judges every
        # waiting report): the correction waits in its place
        # (the old report's lines stay, not judged: should the correction judge undetermined, the old one's failure stands)
        record.pending = payload
        effects.append(_effect("sampling.corrected", event, file.enterprise_id, previous_verdict=None, verdict=None, counts=old_by is None,
                               message_zh=f"{head}{what}已更正{detail}；待企业登记（确定食品类别）后按更正后的报告判定", **corrected))
        return
    record.judgement = judgement
    if record.retest and old_by is None:
        original = _report_on_file(file, record.sample_no, False)
        if original is not None and original.judgement is not None:
            # the corrected re-test, like the re-test, with the first test's items it does not re-test
            judgement = _with_items_not_retested(state, file, original, record, False, rules, event, effects)
    was, now = prev.judgement.verdict, judgement.verdict
    was_c, now_c = prev.judgement.counted, judgement.counted  # type: ignore[union-attr]
    # the conclusion the sample counts with (SampleJudgement.counted), qrisk's own check beside it where it differs
    verdict_zh = f"结论由{_VERDICT_ZH[was_c]}改为{_VERDICT_ZH[now_c]}" if was_c != now_c else f"结论仍为{_VERDICT_ZH[now_c]}"
    if was != now and (was, now) != (was_c, now_c):
        verdict_zh += f"（系统复核由{_VERDICT_ZH[was]}改为{_VERDICT_ZH[now]}）"
    if record.retest:
        file.retests[record.sample_no] = record.event_id  # the re-test an original arriving later pairs with
    if old_by is not None:
        # not counting: filed in the role of the report it corrects, pointing at the report that counts now
        role = old_as or ("retest_inadmissible" if prev.retest else "retest")
        if role == "retest":
            current: str | None = file.retests.get(record.sample_no, old_by)
            note = "该样品以复检结论为准，更正不改变计数"
            retest = file.sample_by_event(current) if current is not None and not record.retest else None
            if retest is not None and retest.superseded_by is None and retest.judgement is not None:
                record.superseded_by, record.superseded_as = current, role  # (in place before the charts follow the chain)
                note = _original_corrected_under_retest(state, file, prev, record, retest, event, rules, effects)
        else:
            original = _report_on_file(file, record.sample_no, False)
            current = original.event_id if original is not None else old_by
            note = "该复检此前不予采信，更正不重新决定是否采信，原检验结论不变"
            record.refused_zh = prev.refused_zh
        record.superseded_by, record.superseded_as = current, role  # type: ignore[assignment]
        effects.append(_effect("sampling.judged", event, file.enterprise_id, verdict=now, corrects_event_id=prev.event_id, **base))
        effects.append(_effect("sampling.corrected", event, file.enterprise_id, previous_verdict=was, verdict=now, counts=False,
                               message_zh=f"{head}{what}已更正：{verdict_zh}{detail}；{note}", **corrected))
        return
    _count(file.counts, prev.judgement, -1)  # type: ignore[arg-type]
    _count(file.counts, judgement, 1)
    first = _first_charted(file, record.sample_no)
    if record.retest and first is not None and not first.retest:
        # an admitted re-test of an original charted first: the charts hold the sample's failure while the
        # re-test fails (a passing re-test overturned it), on the re-test's items (``refailed``), so the
        # correction moves only that, from the re-test's items to the corrected ones
        # (by the conclusions the charts count: SampleJudgement.counted)
        was_c, now_c = prev.judgement.counted, judgement.counted  # type: ignore[union-attr]
        signals: list[dict[str, Any]] = []
        if was_c == "fail" and now_c != "fail":
            signals = overturned(file, prev, state.categories, rules)
        elif now_c == "fail" and was_c != "fail":
            signals = reinstated(file, record, state.categories, rules)
        elif now_c == "fail":
            refailed(file, prev, record, state.categories, rules)
        recharted_keys: list[str] = []
    else:
        signals = recounted(file, prev, record, state.categories, rules)
        recharted_keys, point_signals = recharted(file, prev, record, _charted_reports(file), state.categories, rules)
        signals += point_signals
    charts = ""
    if recharted_keys:
        names = "、".join(f"{s.product}·{s.item_name}" for k in recharted_keys if (s := file.fluctuation.series.get(k)) is not None)
        charts = f"；质量波动监测序列（{names}）已按更正后的结果重新计算" if names else "；质量波动监测序列已按更正后的结果重新计算"
    effects.append(_effect("sampling.judged", event, file.enterprise_id, verdict=now, corrects_event_id=prev.event_id, **base))
    effects.append(_effect("sampling.corrected", event, file.enterprise_id, previous_verdict=was, verdict=now, counts=True,
                           recharted=recharted_keys, message_zh=f"{head}{what}已更正：{verdict_zh}{detail}{charts}", **corrected))
    carried = was == "fail" and now != "fail" and was_c == "fail" and now_c == "fail"
    if carried:
        pass  # qrisk's failure corrected away, the lab's 不合格 of an item qrisk passes stands: no overturn (said below)
    elif was == "fail" and now != "fail":
        cleared = [i.item_name or i.item_code for i in _microbial_failures(prev, rules)]
        check = (f"；{'、'.join(cleared)}为微生物指标，不合格结论依法不予复检，现由检验机构更正为{_VERDICT_ZH[now]}："
                 f"原不合格预警不自动关闭，请核实更正的依据（原始记录、更正说明）后处置") if cleared else ""
        effects.append(_effect(
            "sampling.overturned", event, file.enterprise_id, original_event_id=prev.event_id, verdict=now, corrected=True,
            **({"microbial_cleared": cleared} if cleared else {}),
            message_zh=f"{head}{what}已更正，结论为{_VERDICT_ZH[now]}，原不合格结论不再计入{check}", **base))
    elif now == "fail" and was != "fail":
        failed = _failed(judgement, event, file.enterprise_id, base)
        original = _report_on_file(file, record.sample_no, False) if record.retest else None
        if original is not None and original.judgement is not None and original.judgement.counted == "fail":
            # the corrected re-test upholds the original's failure (the report's conclusion: SampleJudgement.counted):
            # the failure's alert notes it, no second failure
            failed.data["confirms_event_id"] = original.event_id
        effects.append(failed)
        if (over := _lab_failure_handed_over(file, record.sample_no, prev.judgement, f"{what}已更正", event, rules)) is not None:
            effects.append(over)
    elif now == "fail" and prev.judgement.counted != judgement.counted:  # type: ignore[union-attr]
        # qrisk fails both reports, the lab only one: the correction makes or unmakes the legal failure
        if judgement.counted != "fail":
            # the lab's corrected report reads 合格: the failure it issued no longer stands (its alert closes, its
            # points go); qrisk's own finding on the new report is its 系统复核不合格 alert
            effects.append(_effect(
                "sampling.overturned", event, file.enterprise_id, original_event_id=prev.event_id, verdict=judgement.counted, corrected=True,
                message_zh=f"{head}{what}已更正，检验报告结论为合格，原不合格结论不再计入", **base))
        effects.append(_failed(judgement, event, file.enterprise_id, base))
    elif now == "fail":
        # a failure corrected into another (other items, other values): no new failure, but its alert must rest on the
        # corrected report — left with the old one, a supervisor acts on a figure the lab withdrew
        failed = _failed(judgement, event, file.enterprise_id, base)
        failed.data.update(corrects_event_id=prev.event_id, correction_zh=f"{head}{what}已更正：{verdict_zh}{detail}")
        original = _report_on_file(file, record.sample_no, False) if record.retest else None
        if original is not None and original.judgement is not None and original.judgement.counted == "fail":
            failed.data["confirms_event_id"] = original.event_id  # (as the re-test's own failure was said: no new occurrence)
        effects.append(failed)
    elif was != "fail" and now != "fail" and prev.judgement.counted == "fail" and judgement.counted != "fail":  # type: ignore[union-attr]
        # the lab's failure of an item qrisk passes, corrected away: the report's 不合格 no longer stands (its alert
        # closes, its points go)
        effects.append(_effect(
            "sampling.overturned", event, file.enterprise_id, original_event_id=prev.event_id, verdict=judgement.counted, corrected=True,
            message_zh=f"{head}{what}已更正，检验报告结论不再为不合格，原不合格结论不再计入", **base))
    if now == "pass" and judgement.sum_checks and (near := _near_limit(judgement, rules)) and near != _near_limit(prev.judgement, rules):
        # a correction that brings a sum of ratios near 1 warns as the report sent so would have
        effects.append(_effect("sampling.near_limit", event, file.enterprise_id, checks=near, **base))
    if judgement.disagreements and judgement.disagreements != prev.judgement.disagreements:
        effects.append(_effect("judgement.disagrees_with_lab", event, file.enterprise_id, items=list(judgement.disagreements), **base))
    if set(_lab_failed_codes(judgement)) != set(_lab_failed_codes(prev.judgement)) and (
            unjudged := _lab_failed_unjudged(judgement, record, event, file.enterprise_id, base)) is not None:
        # as a disagreement: a correction repeating the unjudged lab failures the report on file had is no news
        # (its alert stands); one bringing them, or clearing qrisk's own failure while the lab fails an item, is
        effects.append(unjudged)
    # the lab's failure of an item qrisk passes, corrected into another (other items, other values): its alert follows
    relabelled = was != "fail" and now != "fail" and was_c == "fail" and now_c == "fail"
    if (relabelled or set(_lab_passed_codes(judgement)) != set(_lab_passed_codes(prev.judgement))) and (
            lab_failed := _lab_failed_passed(judgement, record, event, file.enterprise_id, base)) is not None:
        if relabelled:
            lab_failed.data.update(corrects_event_id=prev.event_id, correction_zh=f"{head}{what}已更正：{verdict_zh}{detail}")
            if _failure_alert_holds(file, prev):
                # the sample's 抽检不合格 alert carries the lab's failure (qrisk's own was corrected away earlier): it takes the
                # correction; under the lab's own key nothing is on file, and a second high alert would open beside it
                lab_failed = _on_failure_alert(
                    lab_failed, f"抽样编号 {record.sample_no} {what}已更正，检验机构判定的不合格仍在，样品仍按检验机构结论计为不合格，"
                                f"本预警继续处置：",
                    f"sample {record.sample_no}: corrected; the lab's failure stands: ")
        if carried:
            cleared_zh = "、".join(i.item_name or i.item_code for i in prev.judgement.items if i.verdict == "fail")  # type: ignore[union-attr]
            lab_failed = _on_failure_alert(
                lab_failed, f"抽样编号 {record.sample_no} {what}已更正，系统复核不合格的{cleared_zh or '项目'}更正后不再不合格，"
                            f"但检验机构判定的不合格仍在，样品仍按检验机构结论计为不合格，本预警继续处置：",
                f"sample {record.sample_no}: corrected; qrisk's own failure is gone, the lab's failure stands: ")
        effects.append(lab_failed)
    if judgement.unknown:
        effects.append(_effect("judgement.unknown_reported", event, file.enterprise_id, unknown=[u.model_dump(mode="json") for u in judgement.unknown], **base))
    for signal in signals:
        effects.append(_chart_effect(event, file.enterprise_id, base, signal))


def _original_corrected_under_retest(state: CountyState, file: CreditFile, prev: SampleRecord, record: SampleRecord,
                                     retest: SampleRecord, event: Envelope, rules: Rules, effects: list[Effect]) -> str:
    """``record`` corrects ``prev``, an original its admitted re-test replaced: what follows the correction, as
    the note of its ``sampling.corrected``.  The item charts hold the original's values when it was charted
    first (a re-test's are not charted): they are built again with the corrected ones.  The items the
    re-test did not re-test were judged with the original's results: the re-test's conclusion is judged
    again with the corrected ones, and its counts, charts, risk entry and alert follow — as when the
    correction arrives before the re-test.  Before, it kept the first results, so the order of arrival
    decided the sample's conclusion."""
    parts: list[str] = []
    signals: list[dict[str, Any]] = []
    if any(r is record for r in _charted_reports(file)):
        keys, signals = recharted(file, prev, record, _charted_reports(file), state.categories, rules)
        names = "、".join(f"{s.product}·{s.item_name}" for k in keys if (s := file.fluctuation.series.get(k)) is not None)
        if names:
            parts.append(f"质量波动监测序列（{names}）已按更正后的结果重新计算")
    base = dict(sample_no=retest.sample_no, product=retest.product, sampled_on=retest.sampled_on.isoformat(), sample_event_id=retest.event_id)
    before = retest.model_copy()
    was = before.judgement.verdict  # type: ignore[union-attr]
    # (also when the re-test covered every item the original had: a correction may add one it did not)
    carried = set(retest.not_retested)
    own = [line for line in _as_lines(retest.judgement) if line.item_code not in carried]
    try:
        payload = SamplingResult(sample_no=retest.sample_no, task_source=retest.task_source, lab=retest.lab, product=retest.product,
                                 batch=retest.batch, production_date=retest.production_date, sampled_on=retest.sampled_on, retest=True,
                                 items=own)
    except ValidationError:
        payload = None  # (lines that validated once, as judged: not expected; the conclusion then stays as it was)
    if payload is not None:
        retest.judgement, retest.not_retested = judge_sample(payload, file.profile.category, rules.catalogue), ()  # type: ignore[union-attr]
        merged = _with_items_not_retested(state, file, record, retest, False, rules, event, effects)
        now = merged.verdict
        if merged != before.judgement or retest.not_retested != before.not_retested:
            effects.append(_effect("sampling.judged", event, file.enterprise_id, verdict=now, not_retested=list(retest.not_retested), **base))
            first = _first_charted(file, retest.sample_no)
            _count(file.counts, before.judgement, -1)  # type: ignore[arg-type]
            _count(file.counts, merged, 1)
            if first is not None and not first.retest:
                # the original was charted: the pass-rate charts and Paretos hold it as its re-test amended it
                was_c, now_c = before.judgement.counted, merged.counted  # type: ignore[union-attr]
                if was_c == "fail" and now_c != "fail":
                    signals += overturned(file, before, state.categories, rules)
                elif now_c == "fail" and was_c != "fail":
                    signals += reinstated(file, retest, state.categories, rules)
                elif now_c == "fail":
                    refailed(file, before, retest, state.categories, rules)
            else:
                signals += recounted(file, before, retest, state.categories, rules)
            parts.append(f"复检未涉及的项目按更正后的检验结果与复检结果一并判定，样品结论"
                         + (f"由{_VERDICT_ZH[was]}改为{_VERDICT_ZH[now]}" if was != now else f"仍为{_VERDICT_ZH[now]}"))
            was_c, now_c = before.judgement.counted, merged.counted  # type: ignore[union-attr]
            # qrisk's failure gone, the lab's 不合格 of an item qrisk passes holding the sample: the failure's alert carries on
            carried = was == "fail" and now != "fail" and was_c == "fail" and now_c == "fail"
            # failing before and after, counted alike: the failure's alert rests on the amended conclusion from now on
            refailed_alike = was == "fail" and now == "fail" and was_c == now_c
            if now == "fail" and (was != "fail" or refailed_alike or _failed_list(merged) != _failed_list(before.judgement)):
                failed = _failed(merged, event, file.enterprise_id, base)
                if was_c == "fail":
                    failed.data["confirms_event_id"] = retest.event_id  # failing still, on other items: the alert notes it
                if refailed_alike:
                    changed = "".join(f"；{c['text_zh']}" for c in _changes(prev, record, record.judgement))
                    failed.data.update(corrects_event_id=prev.event_id, correction_zh=(
                        f"抽样编号 {retest.sample_no}（{retest.product}）初检检验结果已更正{changed}；复检未涉及的项目按更正后的"
                        f"检验结果与复检结果一并判定，结论仍为不合格"))
                effects.append(failed)
                if was != "fail" and (over := _lab_failure_handed_over(
                        file, retest.sample_no, before.judgement, "检验结果更正后与复检结果一并判定", event, rules)) is not None:
                    effects.append(over)
            if merged.disagreements and merged.disagreements != before.judgement.disagreements:  # type: ignore[union-attr]
                effects.append(_effect("judgement.disagrees_with_lab", event, file.enterprise_id, items=list(merged.disagreements), **base))
            if set(_lab_failed_codes(merged)) != set(_lab_failed_codes(before.judgement)) and (
                    unjudged := _lab_failed_unjudged(merged, retest, event, file.enterprise_id, base)) is not None:
                effects.append(unjudged)
            if set(_lab_passed_codes(merged)) != set(_lab_passed_codes(before.judgement)) and (
                    lab_failed := _lab_failed_passed(merged, retest, event, file.enterprise_id, base)) is not None:
                if carried:
                    lab_failed = _on_failure_alert(
                        lab_failed, (f"抽样编号 {retest.sample_no} 检验结果更正后与复检结果一并判定，系统复核不再不合格，"
                                     f"但检验机构判定的不合格仍在，样品仍按检验机构结论计为不合格，本预警继续处置："),
                        f"sample {retest.sample_no}: corrected; qrisk's own failure is gone, the lab's failure stands: ")
                effects.append(lab_failed)
            if carried:
                pass  # (no overturn: the failure stands)
            elif was == "fail" and now != "fail" or was_c == "fail" and now_c != "fail":
                effects.append(_effect(
                    "sampling.overturned", event, file.enterprise_id, original_event_id=retest.event_id, verdict=now, corrected=True,
                    message_zh=(f"抽样编号 {retest.sample_no}（{retest.product}）检验结果更正后，复检未涉及的项目与复检结果一并判定为"
                                f"{_VERDICT_ZH[now]}，原不合格结论不再计入"), **base))
    for signal in signals:
        effects.append(_chart_effect(event, file.enterprise_id, base, signal))
    return "；".join(["该样品以复检结论为准", *parts]) if parts else "该样品以复检结论为准，更正不改变计数"


def _charted_reports(file: CreditFile) -> list[SampleRecord]:
    """The current report of every charted sample, in the order they are charted: by sampling date, and on one
    date in the file's order (reports waiting for registration are charted when it comes, before any later one;
    ``processors.fluctuation.on_sample_judged``): for each sample its first judged report (``_first_charted``),
    followed through its corrections."""
    by_id = {s.event_id: s for s in file.samples}
    seen: set[str] = set()
    out: list[SampleRecord] = []
    for s in file.samples:
        if s.judgement is None or s.superseded_as in _NEVER_CHARTED or s.sample_no in seen:
            continue
        seen.add(s.sample_no)
        current = s
        while current.superseded_as == "corrected" and current.superseded_by in by_id:
            current = by_id[current.superseded_by]  # type: ignore[index]
        out.append(current)
    out.sort(key=lambda r: r.sampled_on)   # (stable: one date keeps the file's order)
    return out


def _first_charted(file: CreditFile, sample_no: str) -> SampleRecord | None:
    """The sample's report that was charted: the first judged one (later ones pair with it, replace it or
    are filed aside, never charted again)."""
    for s in file.samples:
        if s.sample_no == sample_no and s.judgement is not None and s.superseded_as not in _NEVER_CHARTED:
            return s
    return None


_FIELDS_ZH = (("product", "食品名称"), ("batch", "批号"), ("production_date", "生产日期"), ("sampled_on", "抽样日期"),
              ("task_source", "任务来源"), ("lab", "检验机构"))


def _changes(prev: SampleRecord, record: SampleRecord, judgement: Any) -> list[dict[str, Any]]:
    """What a correction changed, field by field and test line by test line (as judged: in the
    catalogue's unit), each with its Chinese phrase."""
    out: list[dict[str, Any]] = []
    for name, zh in _FIELDS_ZH:
        a, b = getattr(prev, name), getattr(record, name)
        if a != b:
            a_text, b_text = _text(a), _text(b)
            out.append({"field": name, "from": a_text, "to": b_text, "text_zh": f"{zh}由“{a_text}”改为“{b_text}”"})
    carried = prev.not_retested  # (a re-test's items from the first test: not its own lines, not deleted by a resend)
    old = {i.item_code: i for i in prev.judgement.items if i.item_code not in carried} if prev.judgement is not None else {}
    new = {i.item_code: i for i in judgement.items if i.item_code not in carried} if judgement is not None else {}
    for code, i in new.items():
        o = old.get(code)
        if o is None:
            out.append({"item_code": code, "from": None, "to": _shown(i), "text_zh": f"增加检验项目{i.item_name}：{_shown(i)}"})
        elif (o.values, o.unit, o.detection_limit) != (i.values, i.unit, i.detection_limit):
            out.append({"item_code": code, "from": _shown(o), "to": _shown(i), "text_zh": f"{i.item_name}由 {_shown(o)} 改为 {_shown(i)}"})
        elif o.lab_verdict != i.lab_verdict:
            a_text, b_text = _LAB_ZH.get(o.lab_verdict, "未判定"), _LAB_ZH.get(i.lab_verdict, "未判定")
            out.append({"item_code": code, "from": a_text, "to": b_text, "text_zh": f"{i.item_name}的检验机构判定由{a_text}改为{b_text}"})
    for code, o in old.items():
        if code not in new:
            out.append({"item_code": code, "from": _shown(o), "to": None, "text_zh": f"删去检验项目{o.item_name}"})
    return out


_LAB_ZH = {"pass": "合格", "fail": "不合格"}


def _text(value: Any) -> str:
    return "" if value is None else value.isoformat() if isinstance(value, dt.date) else str(value)


def _shown(item: Any) -> str:
    if all(v == "ND" for v in item.values):
        return "未检出"
    values = ";".join("未检出" if v == "ND" else f"{v:g}" for v in item.values)
    return f"{values} {item.unit}".strip()


# --------------------------------------------------------------------------- retractions (撤销报告)
#
# A report filed under the wrong enterprise is a lab's mistake no correction can undo (a correction replaces a
# report of the same enterprise).  The log stays append-only: the bureau sends ``sampling.retracted`` naming the
# sample number, and every report of it under this enterprise — the original, its corrections, its re-test (复检),
# reports filed aside — is marked ``retracted`` (``superseded_by``: the retraction's event id; ``retraction_reason``).
# None counts any more: the counts and the pass rate, the pass-rate charts and Paretos, the item series (built
# again without the sample), the risk grade (its failure's entry goes, as after a passing re-test) and the
# sample's alerts (closed, quoting who retracted it and why) follow, and so do the fluctuation signals its reports
# raised (their points go, and an alert only they raised closes: the sample is another enterprise's; a signal a
# corrected point raised stands).  The retraction stays on file (``CreditFile.retractions``): a report of the sample number
# arriving after it is filed retracted as it comes, so a retraction sent before its report is not lost and either
# order gives the same credit file.  A second retraction of the sample number changes nothing and says nothing.


def _retracted(state: CountyState, file: CreditFile, event: SamplingRetractedEvent, rules: Rules, effects: list[Effect]) -> None:
    p = event.payload
    if p.sample_no in file.retractions:
        return  # retracted already: the same decision again, nothing to say
    eid = event_key(event)
    retraction = Retraction(event_id=eid, sample_no=p.sample_no, reason=p.reason, occurred_at=event.occurred_at,
                            by=event.source.name or event.source.id)
    file.retractions[p.sample_no] = retraction
    reports = [s for s in file.samples if s.sample_no == p.sample_no]
    head = f"抽样编号 {p.sample_no}"
    if not reports:
        effects.append(_effect(
            "sampling.retracted", event, file.enterprise_id, sample_no=p.sample_no, reason=p.reason, by=retraction.by, reports=[],
            pending=True, rules=[],
            message_zh=(f"{head} 在本企业名下尚无报告：{retraction.by}的撤销（原因：{p.reason}）已登记，该编号的报告到达时即按撤销存档、"
                        f"不计入统计；请核对抽样编号和企业编号")))
        return
    counts = file.counts
    before = (counts.samples, counts.samples_passed, counts.samples_failed, file.pass_rate)
    charts: list[dict[str, Any]] = []  # the charts' effects: withdrawn pass-rate signals, later points brought out
    charted = next((r for r in _charted_reports(file) if r.sample_no == p.sample_no), None)
    first = _first_charted(file, p.sample_no)
    counting = [s for s in reports if s.superseded_by is None]
    current = next((s for s in counting if s.judgement is not None), None)
    closes = []
    if any(s.judgement is not None and s.judgement.verdict == "fail" for s in reports):
        closes.append("sampling.unqualified")
    if any(s.judgement is not None and s.judgement.disagreements for s in reports):
        closes.append("judgement.disagrees")
    if any(s.judgement is not None and _unjudged_lab_failures(s.judgement) for s in reports):
        closes.append("judgement.lab_failed_unjudged")
    if any(s.judgement is not None and s.judgement.lab_failures_passed() for s in reports):
        closes.append("judgement.lab_failed_passed")
    if any(s.superseded_as == "retest_inadmissible" for s in reports):
        closes.append("retest.inadmissible")
    for s in counting:
        counts.samples -= 1
        if s.judgement is None:
            counts.samples_undetermined -= 1  # (waiting for the enterprise's registration)
        else:
            _count(counts, s.judgement, -1)
    # the pass-rate charts and Paretos hold the sample as its current report, in the period of the report first charted
    # (an original re-tested: its n, the re-test's failure); an original nobody could judge whose re-test came after it
    # was never in them
    if current is not None and first is not None and file.profile is not None and not (
            first is not current and not first.retest and current.retest and first.judgement.verdict not in ("pass", "fail")):  # type: ignore[union-attr]
        # (the period the sample is charted in now: a correction that moved its sampling date moved it; a re-test
        # is charted in its original's)
        as_charted = current.model_copy(update={"sampled_on": (charted or first).sampled_on})
        charts = recounted(file, as_charted, current.model_copy(update={"judgement": None}), state.categories, rules)
    for s in reports:
        s.superseded_by, s.superseded_as, s.retraction_reason, s.pending = eid, "retracted", p.reason, None
    retraction.reports = [s.event_id for s in reports]
    keys, found = uncharted(file, charted, _charted_reports(file), rules, state.categories) if charted is not None else ([], [])
    charts += found
    for s in reports:
        if s.judgement is not None:  # its judgements row again, superseded (the derived tables, as after a correction)
            effects.append(_effect("sampling.judged", event, file.enterprise_id, verdict=s.judgement.verdict, sample_no=s.sample_no,
                                   product=s.product, sampled_on=s.sampled_on.isoformat(), sample_event_id=s.event_id, retracted=True))
    shown = current or counting[0] if counting else reports[-1]
    verdict = current.judgement.verdict if current is not None else None  # type: ignore[union-attr]
    parts = [f"撤销报告 {len(reports)} 份，均存档、不再计入统计"]
    if verdict is not None:
        parts.append(f"原样品结论“{_VERDICT_ZH[verdict]}”不再计入")
    after = (counts.samples, counts.samples_passed, counts.samples_failed, file.pass_rate)
    if after != before:
        parts.append(f"抽检批次 {before[0]}→{after[0]}（合格 {before[1]}→{after[1]}，不合格 {before[2]}→{after[2]}），"
                     f"合格率 {_rate(before[3])}→{_rate(after[3])}")
    if keys:
        names = "、".join(dict.fromkeys(k.replace("|", "·") for k in keys))
        named = "、".join(f"{s.product}·{s.item_name}" for k in keys if (s := file.fluctuation.series.get(k)) is not None)
        parts.append(f"质量波动监测序列（{named or names}）已去除该样品的数据重新计算")
    if "sampling.unqualified" in closes:
        parts.append("该样品的不合格预警自动关闭、风险分不再计入该不合格")
    effects.append(_effect(
        "sampling.retracted", event, file.enterprise_id, sample_no=p.sample_no, product=shown.product, reason=p.reason, by=retraction.by,
        reports=list(retraction.reports), verdict=verdict, recharted=keys, rules=closes, pending=False,
        counts={"samples": after[0], "passed": after[1], "failed": after[2]},
        message_zh=f"{head}（{shown.product}）在本企业名下的报告已由{retraction.by}撤销（原因：{p.reason}）：" + "；".join(parts)))
    for signal in charts:
        effects.append(_chart_effect(event, file.enterprise_id, {"sample_no": p.sample_no, "product": shown.product}, signal))


def _rate(rate: float | None) -> str:
    return "无" if rate is None else f"{rate * 100:.1f}%"


def _retracted_on_arrival(file: CreditFile, record: SampleRecord, payload: SamplingResult, retraction: Retraction, event: Envelope,
                          rules: Rules, effects: list[Effect]) -> None:
    """A report of a sample number the bureau retracted here before it came: on file, judged (when the enterprise's
    category is known) as it would have been, marked retracted, never counted, charted or alerted."""
    record.superseded_by, record.superseded_as, record.retraction_reason = retraction.event_id, "retracted", retraction.reason
    if file.profile is not None:
        record.judgement = judge_sample(payload, file.profile.category, rules.catalogue)
    retraction.reports.append(record.event_id)
    base = dict(sample_no=record.sample_no, product=record.product, sampled_on=record.sampled_on.isoformat(), sample_event_id=record.event_id)
    if record.judgement is not None:
        effects.append(_effect("sampling.judged", event, file.enterprise_id, verdict=record.judgement.verdict, retracted=True, **base))
    what = "复检结果" if record.retest else "检验结果"
    day = rules.local_date(retraction.occurred_at).isoformat()
    effects.append(_effect(
        "sampling.retracted", event, file.enterprise_id, reason=retraction.reason, by=retraction.by, reports=[record.event_id],
        retraction_event_id=retraction.event_id, verdict=record.judgement.verdict if record.judgement is not None else None,
        recharted=[], rules=[], pending=False, arrived_after=True,
        message_zh=(f"抽样编号 {record.sample_no}（{record.product}）的{what}到达，但该编号在本企业名下的报告已于 {day} 由{retraction.by}撤销"
                    f"（原因：{retraction.reason}；撤销事件 {retraction.event_id}）：本次报告存档、不计入统计；"
                    f"如该样品属于另一企业，请以该企业编号报送"),
        **base))


def _complaint_received(state: CountyState, file: CreditFile, event: ComplaintReceivedEvent, rules: Rules, effects: list[Effect]) -> None:
    p = event.payload
    on_file = file.complaint(p.complaint_id)
    gone = file.withdrawn_complaint(p.complaint_id) if on_file is None else None
    if gone is not None and gone.withdrawn is not None:
        # sent again after the bureau withdrew it here: kept out of the counts, as the withdrawal said
        w = gone.withdrawn
        effects.append(_effect(
            "complaint.repeated", event, file.enterprise_id, complaint_id=p.complaint_id, repeats_event_id=gone.event_id, same=False,
            withdrawn=True,
            message_zh=(f"投诉编号 {p.complaint_id} 已于 {rules.local_date(w.withdrawn_at).isoformat()} 由{w.by}撤回（原因：{mask_personal_info(w.reason)}）："
                        "本次报送未计入；如属另一投诉，请更正投诉编号")))
        return
    if on_file is not None:
        # the hotline sent it again under a new event id (a new send attempt): one complaint, counted once —
        # counted twice, one complaint made a 投诉聚集 and raised the grade
        same = ((on_file.kind, on_file.channel, on_file.category, on_file.text, on_file.product, on_file.verified)
                == (p.kind, p.channel, p.category, p.text, p.product, p.verified))
        if on_file.kind != p.kind or on_file.category != p.category or (p.product is not None and on_file.product != p.product):
            # 投诉 / 举报, the category and the product are the registration's own words, which the channel corrects by
            # sending it again (a 12315 export imported before 诉求类型 was mapped filed every 举报 as a 投诉, chased for a
            # 受理决定 it never needs; a hotline filed 碎玻璃渣 as 其他, which no chart, cluster or score counts): the record
            # follows the resend, and what rests on them is judged again; the text, channel and verdict stay as registered
            standing = max(on_file.received_at, on_file.corrected_at or on_file.received_at)
            if event.occurred_at >= standing:
                _complaint_corrected(file, on_file, event, rules, effects)
                return
            # dated before the registration on file or its last correction: the original arriving after its correction (or
            # imported again) — followed, it undid the correction and closed the hazard alert the correction raised
            effects.append(_effect(
                "complaint.repeated", event, file.enterprise_id, complaint_id=p.complaint_id, repeats_event_id=on_file.event_id, same=False,
                earlier=True, standing_at=standing.isoformat(),
                message_zh=(f"投诉编号 {p.complaint_id} 已登记（事件 {on_file.event_id}）：该报送（{_local_zh(event.occurred_at, rules)}）"
                            f"早于已更正的登记（{_local_zh(standing, rules)}），以更正后的为准，未重复计数")))
            return
        effects.append(_effect(
            "complaint.repeated", event, file.enterprise_id, complaint_id=p.complaint_id, repeats_event_id=on_file.event_id, same=same,
            message_zh=(f"投诉编号 {p.complaint_id} 已登记（事件 {on_file.event_id}）："
                        + ("本次内容相同，按重复报送处理，不重复计数" if same else
                           "本次内容与已登记的不同，未重复计数，以已登记的为准；核查结论请以 complaint.resolved 报送，如为另一投诉请更正投诉编号"))))
        return
    record = ComplaintRecord(
        complaint_id=p.complaint_id, kind=p.kind, event_id=event_key(event), received_at=event.occurred_at,
        channel=p.channel, category=p.category, text=p.text, product=p.product, verified=p.verified, verified_at_receipt=p.verified,
    )
    # its acceptance decisions came first: on its record before its limits are first judged
    record.acceptances.extend(file.acceptances_waiting.pop(p.complaint_id, ()))  # (corrections already applied among them)
    waiting_withdrawal = file.withdrawals_waiting.pop(p.complaint_id, None)
    if waiting_withdrawal is not None:
        # withdrawn before it came (the bureau's decision crossed the hotline's message): filed withdrawn, counted nowhere
        record.withdrawn = waiting_withdrawal
        for waiting in file.resolutions_waiting.pop(p.complaint_id, ()):
            record.resolutions.append(waiting)
            _in_force(record)
        _judge_limits(record, rules)  # (shown on file; its clocks never run)
        file.complaints_withdrawn.append(record)
        effects.append(_withdrawn_effect(file, record, event, rules, arrived_after=True))
        return
    file.complaints.append(record)
    file.counts.complaints += 1
    for signal in on_complaint(file, event.occurred_at, rules, p.category):
        effects.append(_effect("fluctuation.signal", event, file.enterprise_id, complaint_id=p.complaint_id, **signal))
    if p.verified:
        _complaint_verified(file, file.complaints[-1], event, rules, effects)
    elif illness_reported(file.complaints[-1], rules):
        # early warning: told of illness, the bureau checks now, not once the inspector's conclusion is in
        effects.append(_effect("complaint.illness_reported", event, file.enterprise_id, complaint_id=p.complaint_id, category=p.category))
    # its resolutions came first: they take effect now, in the order they came, as if they had come after
    for waiting in file.resolutions_waiting.pop(p.complaint_id, ()):
        _resolve(file, file.complaints[-1], waiting, event, rules, effects)
    # (after the conclusions that waited for it: judged on them as if they had come after)
    _judge_limits(record, rules)
    _complaints_due_next(file)
    _complaint_burst(file, file.complaints[-1], event, rules, effects)


def _local_zh(moment: dt.datetime, rules: Rules) -> str:
    return (moment + in_hours(rules.policy.utc_offset_hours)).strftime("%Y-%m-%d %H:%M")


def _complaint_corrected(file: CreditFile, record: ComplaintRecord, event: ComplaintReceivedEvent, rules: Rules,
                         effects: list[Effect]) -> None:
    p = event.payload
    was_kind, was_category, was_product = record.kind, record.category, record.product
    kind_corrected = was_kind != p.kind
    category_corrected = was_category != p.category
    product_corrected = p.product is not None and was_product != p.product
    chased = record.concluded_on is None and any(lim.overdue and record.running(lim) for lim in record.limits)
    was_illness = illness_reported(record, rules)
    record.kind, record.category = p.kind, p.category  # type: ignore[assignment]
    if product_corrected:
        record.product = p.product
    # (the door tells the sender what its resend corrected: ingest.lint)
    record.corrected_by, record.corrected_at = event_key(event), event.occurred_at
    record.corrected_from = ({"kind": was_kind} if kind_corrected else {}) | ({"category": was_category} if category_corrected else {}) | (
        {"product": was_product} if product_corrected else {})
    signals: list[dict[str, Any]] = []
    withdrawn_signal = None
    if category_corrected:
        charted = rules.policy.spc.complaint_chart_categories
        if was_category in charted and p.category not in charted:
            # (its month counts one fewer: a signal the month no longer carries over the limit is withdrawn)
            withdrawn_signal = complaint_uncharted(file, record.model_copy(update={"category": was_category}), rules,
                                                   corrected_to=COMPLAINT_ZH.get(p.category, p.category))
        elif p.category in charted and was_category not in charted:
            signals = on_complaint(file, record.received_at, rules, p.category)
    if kind_corrected:
        _judge_limits(record, rules)
    others = ((record.channel, record.text, record.verified) != (p.channel, p.text, p.verified)
              or (p.product is None and record.product is not None))
    what = COMPLAINT_KIND_ZH[p.kind] if kind_corrected else "投诉"
    parts = []
    if kind_corrected:
        parts.append(f"诉求类型由{COMPLAINT_KIND_ZH[was_kind]}更正为{COMPLAINT_KIND_ZH[p.kind]}，办理时限按{COMPLAINT_KIND_ZH[p.kind]}重新计算")
    if category_corrected:
        parts.append(f"投诉类别由{COMPLAINT_ZH.get(was_category, was_category)}更正为{COMPLAINT_ZH.get(p.category, p.category)}，"
                     "投诉数控制图、风险分和投诉相关预警按更正后的类别重新计算")
    if product_corrected:
        parts.append(f"产品由{was_product or '未写明'}更正为{p.product}")
    head = f"投诉举报编号 {p.complaint_id}" if kind_corrected else f"{what}编号 {p.complaint_id}"
    corrected = ({"kind_corrected": True, "complaint_kind": p.kind, "previous_complaint_kind": was_kind} if kind_corrected else {}) | (
        {"category_corrected": True, "category": p.category, "previous_category": was_category, "verified": record.verified}
        if category_corrected else {}) | (
        {"product_corrected": True, "product": p.product, "previous_product": was_product} if product_corrected else {})
    effects.append(_effect(
        "complaint.repeated", event, file.enterprise_id, complaint_id=p.complaint_id, repeats_event_id=record.event_id, same=False,
        **corrected,
        message_zh=(f"{head} 已登记（事件 {record.event_id}）：" + "；".join(parts) + "，未重复计数"
                    + ("；其余内容与已登记的不同，以已登记的为准" if others else ""))))
    for signal in signals:
        effects.append(_effect("fluctuation.signal", event, file.enterprise_id, complaint_id=p.complaint_id, **signal))
    if withdrawn_signal is not None:
        effects.append(_effect_data("fluctuation.signal_withdrawn", event, file.enterprise_id, withdrawn_signal))
    if category_corrected and not _unfounded(record):
        # what the corrected category raises (the alerts the old one raised and the new one does not close:
        # processors.warnings.complaint_unfounded_resolved; the verified-complaint points: processors.risk)
        if record.verified and p.category in rules.policy.complaint_cluster.categories \
                and was_category not in rules.policy.complaint_cluster.categories:
            _complaint_cluster(file, record, event, rules, effects)
        if p.category in rules.policy.complaint_burst.categories and was_category not in rules.policy.complaint_burst.categories:
            _complaint_burst(file, record, event, rules, effects)
        if not was_illness and illness_reported(record, rules) and not record.verified:
            effects.append(_effect("complaint.illness_reported", event, file.enterprise_id, complaint_id=p.complaint_id, category=p.category))
    if not kind_corrected:
        return
    _complaints_due_next(file)
    _complaints_overdue(file, event, rules, effects)
    if chased and not any(lim.overdue and record.running(lim) for lim in record.limits):
        # the limit its 办理超期 alert chased is not one of the corrected kind's, or not yet passed: nothing left to chase for now
        data = complaint_overdue_resolved(file, record.complaint_id, event_key(event),
                                          f"投诉举报编号 {record.complaint_id} 诉求类型已更正为{COMPLAINT_KIND_ZH[p.kind]}，按其办理时限尚未超期，预警自动关闭",
                                          f"{record.complaint_id} registered again as a {p.kind}: within its limits, closed", rules)
        if data is not None:
            effects.append(_effect_data(RESOLVED_KIND, event, file.enterprise_id, data))


def _unfounded(c: ComplaintRecord) -> bool:
    return c.resolved_at is not None and not c.verified


def _complaint_burst(file: CreditFile, record: ComplaintRecord, event: Envelope, rules: Rules, effects: list[Effect]) -> None:
    """快速反应: complaint_burst.k complaints received within complaint_burst.window_days of each other, verified or not.
    The 投诉聚集 waits for verification (weeks), and the monthly chart splits complaints at a month's end: five consumers
    complaining of one batch from 03-30 to 04-02 raised nothing."""
    policy = rules.policy.complaint_burst
    if record.category not in policy.categories or _unfounded(record):
        return
    burst = densest_window([c for c in file.complaints if c.category in policy.categories and not _unfounded(c)], record.received_at,
                           policy.window_days)
    if len(burst) < policy.k or sum(c.verified for c in burst) >= rules.policy.complaint_cluster.k:
        return  # (as many verified make a 投诉聚集, which says it)
    effects.append(_effect("complaint.burst", event, file.enterprise_id, complaint_ids=[c.complaint_id for c in burst],
                           window_days=policy.window_days, k=policy.k))


def _complaint_resolved(state: CountyState, file: CreditFile, event: ComplaintResolvedEvent, rules: Rules, effects: list[Effect]) -> None:
    p = event.payload
    resolution = ComplaintResolution(event_id=event_key(event), resolved_at=event.occurred_at, verified=p.verified, outcome=p.outcome,
                                     accepted_on=p.accepted_on, extended=p.extended)
    record = file.complaint(p.complaint_id)
    gone = file.withdrawn_complaint(p.complaint_id) if record is None else None
    if gone is not None and gone.withdrawn is not None:
        # a conclusion on a complaint withdrawn here: its history keeps it, nothing counts it
        if not any((r.resolved_at, r.verified, r.outcome) == (resolution.resolved_at, resolution.verified, resolution.outcome)
                   for r in gone.resolutions):
            gone.resolutions.append(resolution)
            _in_force(gone)
            _judge_limits(gone, rules)
        w = gone.withdrawn
        effects.append(_effect(
            "complaint.resolved_withdrawn", event, file.enterprise_id, complaint_id=p.complaint_id,
            message_zh=(f"投诉编号 {p.complaint_id} 已于 {rules.local_date(w.withdrawn_at).isoformat()} 由{w.by}撤回（原因：{mask_personal_info(w.reason)}）："
                        "办结结论存入该投诉的办理记录，不计入；如该投诉登记在其他企业名下，请在该企业名下报送")))
        return
    if record is None:
        # not lost: kept until the complaint comes (the hotline's two messages may cross)
        file.resolutions_waiting.setdefault(p.complaint_id, []).append(resolution)
        effects.append(_effect("complaint.unknown_resolved", event, file.enterprise_id, complaint_id=p.complaint_id, waiting=True,
                               message_zh=f"投诉编号 {p.complaint_id} 尚无登记记录：办结结果已暂存，收到该投诉后生效；请核对投诉编号和企业"))
        return
    chased = {lim.limit for lim in record.limits if lim.overdue and record.running(lim)}
    _resolve(file, record, resolution, event, rules, effects)
    _judge_limits(record, rules)
    _complaints_due_next(file)
    if chased and record.concluded_on is not None:
        # its 办理超期 alert has nothing left to chase: concluded (late, or dated in time with its record arriving late) —
        # or, chased for want of a 受理决定, concluded with none reported: not "in time, its record late"
        unreported = "accept" in chased and record.accepted_on is None and record.acceptance is None
        late = any(lim.overdue for lim in record.limits if not (unreported and lim.limit == "accept"))
        on = record.concluded_on.isoformat()
        how = "，".join(w for w, said_ in (("超期办结", late), ("未报受理决定", unreported)) if said_) or "按期办结，办结记录晚到"
        said = f"{COMPLAINT_KIND_ZH[record.kind]} {record.complaint_id} 已于 {on} 办结（{how}），预警自动关闭"
        how_en = ", ".join(w for w, said_ in (("late", late), ("no acceptance decision reported", unreported)) if said_) or "in time"
        data = complaint_overdue_resolved(file, record.complaint_id, event_key(event), said,
                                          f"{record.kind} {record.complaint_id} concluded on {on} ({how_en}): closed", rules)
        if data is not None:
            effects.append(_effect_data(RESOLVED_KIND, event, file.enterprise_id, data))


def _complaint_accepted(state: CountyState, file: CreditFile, event: ComplaintAcceptedEvent, rules: Rules, effects: list[Effect]) -> None:
    """受理决定 of a 投诉: its accept limit is judged from decided_on, its mediation counted from an acceptance; a refusal
    (不予受理) stops its clocks — no mediation follows — but is not 办结 (nothing is concluded on the complaint itself).
    Kept whatever comes first, and the earliest-dated decision is in force, so any arrival order folds alike."""
    p = event.payload
    decision = ComplaintAcceptance(event_id=event_key(event), decided_on=p.decided_on, decision=p.decision, reason=p.reason,
                                   recorded_at=event.occurred_at, corrects=str(p.corrects) if p.corrects is not None else None)
    cid = p.complaint_id
    record = file.complaint(cid)
    gone = file.withdrawn_complaint(cid) if record is None else None
    kept = record or gone
    if kept is None:
        # (the channel's acceptance may overtake the complaint itself)
        waiting = file.acceptances_waiting.setdefault(cid, [])
        if not _repeats(waiting, decision):
            _file_decision(waiting, decision)
        effects.append(_effect("complaint.accepted", event, file.enterprise_id, complaint_id=cid, decision=p.decision,
                               decided_on=p.decided_on.isoformat(), waiting=True, in_force=False,
                               message_zh=(f"投诉编号 {cid} 尚无登记记录：{decision.zh()}已暂存，收到该投诉后生效；请核对投诉编号和企业")))
        return
    if _repeats(kept.acceptances, decision):
        effects.append(_effect("complaint.accepted", event, file.enterprise_id, complaint_id=cid, decision=p.decision,
                               decided_on=p.decided_on.isoformat(), waiting=False, in_force=False, repeated=True,
                               message_zh=f"投诉编号 {cid} 的{decision.zh()}已登记，本次为重复报送，不重复计入"))
        return
    chased = kept.concluded_on is None and any(lim.overdue and kept.running(lim) for lim in kept.limits)
    corrected = _file_decision(kept.acceptances, decision)
    _judge_limits(kept, rules)
    in_force = kept.acceptance
    if decision.superseded_by is not None:
        # (its correction came first: kept for the record, never in force)
        standing = f"；已由更正后的决定（事件 {decision.superseded_by}）取代，存档备查、不计入"
    elif in_force is None or in_force.event_id == decision.event_id:
        standing = ""
    else:
        when = "同日" if in_force.decided_on == decision.decided_on else "日期更早"
        standing = f"；此前已有{when}的决定（{in_force.zh()}，事件 {in_force.event_id}），以该决定为准"
    said = (f"{COMPLAINT_KIND_ZH[kept.kind]} {cid}：{decision.zh()}"
            + (f"；更正此前的决定（{corrected.zh()}，事件 {corrected.event_id}），原决定存档备查、不再计入" if corrected is not None else "")
            + (f"；未找到被更正的决定（事件 {decision.corrects}），请核对 corrects" if decision.corrects is not None and corrected is None
               and not any(a.event_id == decision.corrects for a in kept.acceptances) else "")
            + standing
            + ("；该投诉已撤回，仅存档" if gone is not None else "")
            + ("；举报不适用受理期限，仅存档" if kept.kind == "report" else ""))
    effects.append(_effect("complaint.accepted", event, file.enterprise_id, complaint_id=cid, decision=p.decision,
                           decided_on=p.decided_on.isoformat(), waiting=False,
                           corrects_event_id=corrected.event_id if corrected is not None else None,
                           in_force=in_force is not None and in_force.event_id == decision.event_id, message_zh=said))
    if gone is not None:
        return
    _complaints_due_next(file)
    # the clock first: a limit the decision moved later may be past due already at this event's time (accepted 04-08,
    # recorded 06-20: mediation due 06-12), and closing the alert before the step's clock check raised it again
    _complaints_overdue(file, event, rules, effects)
    if chased and not any(lim.overdue and kept.running(lim) for lim in kept.limits):
        # the limit its 办理超期 alert chased is met (or moved later by the acceptance, not yet passed): nothing left to chase for now
        decided = in_force or decision
        data = complaint_overdue_resolved(file, cid, event_key(event), f"投诉 {cid} 已于 {decided.decided_on.isoformat()} 作出"
                                          f"{'受理' if decided.decision == 'accepted' else '不予受理'}决定，预警自动关闭",
                                          f"complaint {cid} {decided.decision} on {decided.decided_on.isoformat()}: closed", rules)
        if data is not None:
            effects.append(_effect_data(RESOLVED_KIND, event, file.enterprise_id, data))


def _same_decision(a: ComplaintAcceptance, b: ComplaintAcceptance) -> bool:
    return (a.decided_on, a.decision, a.reason) == (b.decided_on, b.decision, b.reason)


def _repeats(decisions: list[ComplaintAcceptance], decision: ComplaintAcceptance) -> bool:
    """A decision sent again: the same as one on file, unless it corrects one still standing (or not yet come).  A 受理
    typed 03-03 for 04-03 (A), the right one sent plainly (C), then again naming A in corrects as the door asks (B): B was
    C's repeat, and A stood for good."""
    if decision.corrects is not None and not any(a.event_id == decision.corrects and a.superseded_by is not None for a in decisions):
        return False
    return any(_same_decision(a, decision) for a in decisions)


def _file_decision(decisions: list[ComplaintAcceptance], decision: ComplaintAcceptance) -> ComplaintAcceptance | None:
    """Files ``decision`` among a complaint's decisions (in log order) and returns the one it corrected, if any.  A decision
    recorded wrong could not be put right: the earliest-dated stayed in force, so a 受理 typed 03-03 for 04-03 stood for
    good, and a refusal re-sent the same day with its reason corrected stood or fell by its random event id.  Now one
    naming another in ``corrects`` takes its place, and of two of one date the later logged corrects the earlier; a
    correction that came before the decision it names leaves that one superseded on arrival.  Both stay on file."""
    decisions.append(decision)
    corrector = next((a for a in decisions if a.corrects == decision.event_id and a is not decision), None)
    if corrector is not None:
        decision.superseded_by = corrector.event_id
        return None
    if decision.corrects is not None:
        target = next((a for a in decisions if a.event_id == decision.corrects), None)
    else:
        target = next((a for a in decisions if a is not decision and a.superseded_by is None and a.decided_on == decision.decided_on), None)
        if target is not None:
            decision.corrects = target.event_id
    if target is None or target.superseded_by is not None:
        return None
    target.superseded_by = decision.event_id
    return target


_DUE: dict[tuple[int, dt.date, int], tuple[WorkingCalendar, DueDate]] = {}


def _due(calendar: WorkingCalendar, start: dt.date, days: int) -> DueDate:
    # (a complaint's limits are judged again on each of its events, from the same few dates: a walk of up to ~80 days
    # each time would make a complaint cost as much as ten other events)
    key = (id(calendar), start, days)
    hit = _DUE.get(key)
    if hit is not None and hit[0] is calendar:
        return hit[1]
    if len(_DUE) > 50_000:
        _DUE.clear()
    due = add_working_days(calendar, start, days)
    _DUE[key] = (calendar, due)
    return due


def _judge_limits(record: ComplaintRecord, rules: Rules) -> None:
    """A complaint's statutory time limits (``complaint_deadlines``) on the working-day calendar, judged from its receipt, its
    earliest conclusion (办结: a revision later does not move it) and what its conclusions say (accepted_on, extended) — a pure
    function of what is on file, so a conclusion that came before its complaint is judged as one that came after.  The
    only thing kept from before is the clock's overdue mark (said once by ``_complaints_overdue``): an open limit's, and a
    chased accept limit's once the 投诉 is concluded with no 受理决定 or 受理日期 reported."""
    policy = rules.policy.complaint_deadlines
    if not policy.enabled:
        record.limits = []
        return
    received = rules.local_date(record.received_at)
    # (the due date each was said overdue against: a decision moving it later leaves it to the clock again)
    said = {lim.limit: lim.due_on for lim in record.limits if lim.overdue}
    resolutions = sorted(record.resolutions, key=lambda r: r.resolved_at, reverse=True)
    if resolutions:
        concluded: dt.date | None = rules.local_date(resolutions[-1].resolved_at)
    else:
        # (a record from a snapshot folded before conclusions were kept: its one conclusion)
        concluded = rules.local_date(record.resolved_at) if record.resolved_at is not None else None
    record.concluded_on = concluded
    calendar = rules.calendar

    def limit(name: str, start: dt.date, days: int, judged: bool | None, **extra: Any) -> ComplaintLimit:
        due = _due(calendar, start, days)
        if judged is None:
            overdue: bool | None = None
        elif concluded is not None:
            overdue = judged and concluded > due.on
        else:
            overdue = name in said and due.on <= said[name]  # open: the clock's mark, said once
        return ComplaintLimit(limit=name, working_days=days, starts_on=start, due_on=due.on, overdue=overdue, estimate=due.estimate,
                              **extra)

    if record.kind == "report":
        lim = policy.report
        extended = any(r.extended for r in resolutions)
        out = [limit("check", received, lim.check_working_days, not extended)]
        if lim.extension_working_days:
            out.append(limit("extended", received, lim.check_working_days + lim.extension_working_days, True))
    else:
        lim_ = policy.complaint
        decided = record.acceptance
        accepted = record.accepted_on
        accept_due = _due(calendar, received, lim_.accept_working_days).on
        if decided is not None:
            judged: bool | None = True
        elif concluded is None:
            # open with no decision: chased, unless the county's system sends no acceptances (it would chase them all)
            judged = False if lim_.chased(received) else None
        elif accepted is not None:
            judged = True
        elif concluded <= accept_due:
            judged = True
        else:
            # concluded after the 7 days with no 受理日期: not known — unless the clock said it overdue, no decision on file
            # then, and nothing since contradicts it (a decision, or an accepted_on, would judge it afresh)
            judged = True if "accept" in said else None
        accept = limit("accept", received, lim_.accept_working_days, judged)
        if decided is not None:
            accept.overdue = decided.decided_on > accept_due
        elif accepted is not None and concluded is not None:
            accept.overdue = accepted > accept_due
        if decided is not None and decided.decision == "refused":
            record.limits = [accept]  # (不予受理: no mediation follows)
            return
        if accepted is not None:
            # (a decision dated before its receipt is a mistyped date, answered at the door: counted from the receipt)
            mediate = limit("mediate", max(accepted, received), lim_.mediate_working_days, True)
        else:
            # the latest lawful acceptance starts it: whatever the acceptance's date, past this a limit was missed
            mediate = limit("mediate", received, lim_.accept_working_days + lim_.mediate_working_days, True, from_receipt=True)
        out = [accept, mediate]
    record.limits = out


def _complaints_due_next(file: CreditFile) -> None:
    """The earliest due date of an open complaint's limit not yet passed: the per-event check stops at it."""
    file.complaints_due_next = min((lim.due_on for c in file.complaints if c.concluded_on is None for lim in c.limits
                                    if lim.overdue is False and c.running(lim)), default=None)


def _complaints_overdue(file: CreditFile, event: Envelope, rules: Rules, effects: list[Effect]) -> None:
    """The fold's clock (this event's time, a tick's included) past a limit of an open complaint: said once per limit, for
    the bureau's own oversight of its handling (and the town's, warnings.complaint_overdue) — no risk point."""
    due = file.complaints_due_next
    if due is None:
        return
    today = rules.local_date(event.occurred_at)
    if today <= due:
        return
    policy = rules.policy.complaint_deadlines
    for c in file.complaints:
        if c.concluded_on is not None:
            continue
        for lim in c.limits:
            if lim.overdue is not False or today <= lim.due_on or not c.running(lim):
                continue
            lim.overdue = True
            over = working_days_between(rules.calendar, lim.due_on, today)
            kind_zh = COMPLAINT_KIND_ZH[c.kind]
            limit_zh = lim.zh(policy.complaint.accept_working_days, policy.report.extension_working_days)
            received = rules.local_date(c.received_at).isoformat()
            hint = ("（如经负责人批准延长核查期限，请在办结时报送 extended）" if lim.limit == "check" else
                    "（已作出受理或不予受理决定的，请补报 complaint.accepted）" if lim.limit == "accept" else "")
            missing = "未作出受理决定" if lim.limit == "accept" else "未办结"
            caveat = f"（含工作日历未收录的年份，{ESTIMATED_AS_ZH}）" if lim.estimate or over.estimate else ""
            effects.append(_effect(
                "complaint.overdue", event, file.enterprise_id, complaint_id=c.complaint_id, complaint_kind=c.kind, kind_zh=kind_zh,
                channel=c.channel, received_on=received, limit=lim.limit, limit_zh=limit_zh, working_days=lim.working_days,
                due_on=lim.due_on.isoformat(), working_days_over=over.days, estimate=lim.estimate or over.estimate,
                complaint_event_id=c.event_id,
                message_zh=(f"{kind_zh} {c.complaint_id}（{received} 收到，{CHANNEL_ZH.get(c.channel, c.channel)}）已超过{limit_zh}：期限 "
                            f"{lim.due_on.isoformat()}，截至 {today.isoformat()} {missing}，已超过 {over.days} 个工作日{caveat}{hint}。"
                            "属监管部门办理时限，不计入企业风险分")))
    _complaints_due_next(file)


def _verified_zh(verified: bool) -> str:
    return "属实" if verified else "不属实"


def _resolution_zh(r: ComplaintResolution, rules: Rules) -> str:
    return f"{_verified_zh(r.verified)}（{rules.local_date(r.resolved_at).isoformat()} 办结，事件 {r.event_id}）"


def _resolve(file: CreditFile, record: ComplaintRecord, resolution: ComplaintResolution, event: Envelope, rules: Rules,
             effects: list[Effect]) -> None:
    """A conclusion on the complaint.  Every one is kept on its record, dated; the latest-dated is in force whatever
    the order they arrive in (at equal times, the later arrived): overwritten by the last to arrive, a 03-25 不属实 that
    came before the 03-15 属实 it revised left the complaint verified, and a revised conclusion left no trace of the
    first.  The same conclusion sent again is a repeat."""
    cid = record.complaint_id
    if not record.resolutions and record.resolved_at is not None:
        # (a record from a snapshot folded before conclusions were kept: its one conclusion is the history so far)
        record.resolutions.append(ComplaintResolution(event_id=record.resolution_event_id or "", resolved_at=record.resolved_at,
                                                      verified=record.verified, outcome=record.outcome or ""))
    # (the latest-dated; at equal times the later arrived)
    in_force = max(reversed(record.resolutions), key=lambda r: r.resolved_at) if record.resolutions else None
    if any((r.resolved_at, r.verified, r.outcome) == (resolution.resolved_at, resolution.verified, resolution.outcome) for r in record.resolutions):
        effects.append(_effect("complaint.resolution_repeated", event, file.enterprise_id, complaint_id=cid,
                               message_zh=f"投诉编号 {cid} 的这一办结结论已在档：按重复报送处理"))
        return
    record.resolutions.append(resolution)
    if in_force is not None and resolution.resolved_at < in_force.resolved_at:
        effects.append(_effect(
            "complaint.resolution_outdated", event, file.enterprise_id, complaint_id=cid, resolution_event_id=resolution.event_id,
            in_force_event_id=in_force.event_id, verified=resolution.verified, in_force_verified=in_force.verified,
            message_zh=(f"投诉编号 {cid} 的办结结论{_resolution_zh(resolution, rules)}早于在档的结论{_resolution_zh(in_force, rules)}而晚到："
                        "存入该投诉的办理记录，以日期较晚的结论为准")))
        return
    record.resolved_at, record.outcome, record.resolution_event_id = resolution.resolved_at, resolution.outcome, resolution.event_id
    verified = resolution.verified
    if in_force is not None:
        said = (f"核查结论由{_resolution_zh(in_force, rules)}改为{_resolution_zh(resolution, rules)}" if in_force.verified != verified
                else f"核查结论仍为{_verified_zh(verified)}，办结记录由 {rules.local_date(in_force.resolved_at).isoformat()}（事件 {in_force.event_id}）"
                     f"更新为 {rules.local_date(resolution.resolved_at).isoformat()}（事件 {resolution.event_id}）")
        effects.append(_effect(
            "complaint.resolution_revised", event, file.enterprise_id, complaint_id=cid, resolution_event_id=resolution.event_id,
            previous_event_id=in_force.event_id, previous_verified=in_force.verified, verified=verified,
            previous_resolved_at=in_force.resolved_at.isoformat(), resolved_at=resolution.resolved_at.isoformat(),
            previous_outcome=in_force.outcome, outcome=resolution.outcome,
            message_zh=f"投诉编号 {cid} 的{said}；原结论存入该投诉的办理记录"))
    if verified and not record.verified:
        record.verified = True
        _complaint_verified(file, record, event, rules, effects)
    elif not verified and record.verified:
        record.verified = False
        file.counts.complaints_verified -= 1
        # (an effect, not the event type, takes its risk entry back: a resolution that waited for its
        # complaint is applied by the complaint.received event)
        effects.append(_effect("complaint.unverified", event, file.enterprise_id, complaint_id=record.complaint_id))
    elif not verified and in_force is None and (illness_reported(record, rules) or in_burst(file, record.complaint_id)):
        # found 不属实 before it was ever verified: the 待核实 alert its receipt raised closes, and a 投诉集中 it made
        # may be left with too few complaints
        effects.append(_effect("complaint.unverified", event, file.enterprise_id, complaint_id=record.complaint_id))
    if not verified and (in_force is None or in_force.verified):
        withdrawn = complaints_unfounded(file, record.received_at, rules)
        if withdrawn is not None:
            effects.append(_effect_data("fluctuation.signal_withdrawn", event, file.enterprise_id, withdrawn))


def _in_force(record: ComplaintRecord) -> None:
    """The record's conclusion in force from its history (the latest-dated; at equal times the later arrived), for a
    complaint withdrawn, whose conclusions count nowhere."""
    latest = max(reversed(record.resolutions), key=lambda r: r.resolved_at)
    record.verified, record.resolved_at, record.outcome, record.resolution_event_id = (latest.verified, latest.resolved_at, latest.outcome,
                                                                                       latest.event_id)


def _complaint_withdrawn(state: CountyState, file: CreditFile, event: ComplaintWithdrawnEvent, rules: Rules, effects: list[Effect]) -> None:
    """撤回投诉登记: the bureau takes a complaint off this file — filed under the wrong enterprise, or registered twice.
    It stays on file (``complaints_withdrawn``) with why, and leaves the counts, the complaints chart, the score and
    the alerts resting on it."""
    p = event.payload
    withdrawal = ComplaintWithdrawal(event_id=event_key(event), complaint_id=p.complaint_id, withdrawn_at=event.occurred_at, reason=p.reason,
                                     by=event.source.name or event.source.id, duplicate_of=p.duplicate_of)
    record = file.complaint(p.complaint_id)
    if record is None:
        if file.withdrawn_complaint(p.complaint_id) is not None or p.complaint_id in file.withdrawals_waiting:
            return  # withdrawn already: the same decision again, nothing to say
        file.withdrawals_waiting[p.complaint_id] = withdrawal
        effects.append(_effect(
            "complaint.withdrawal_pending", event, file.enterprise_id, complaint_id=p.complaint_id, reason=mask_personal_info(p.reason),
            by=withdrawal.by,
            message_zh=(f"投诉编号 {p.complaint_id} 在本企业名下尚无登记记录：{withdrawal.by}的撤回（原因：{mask_personal_info(p.reason)}）已登记，该投诉到达时即按撤回"
                        "存档、不计入；请核对投诉编号和企业编号")))
        return
    file.complaints.remove(record)
    record.withdrawn = withdrawal
    file.complaints_withdrawn.append(record)
    _complaints_due_next(file)  # (its clocks stop)
    if record.concluded_on is None and record.overdue:
        data = complaint_overdue_resolved(
            file, record.complaint_id, event_key(event),
            f"{COMPLAINT_KIND_ZH[record.kind]} {record.complaint_id} 已由{withdrawal.by}撤回（原因：{mask_personal_info(p.reason)}），办理时限不再计算，预警自动关闭",
            f"{record.kind} {record.complaint_id} was withdrawn: its time limits stop; closed", rules)
        if data is not None:
            effects.append(_effect_data(RESOLVED_KIND, event, file.enterprise_id, data))
    file.counts.complaints -= 1
    if record.verified:
        file.counts.complaints_verified -= 1
    effects.append(_withdrawn_effect(file, record, event, rules))
    signal = complaint_uncharted(file, record, rules)
    if signal is not None:
        effects.append(_effect_data("fluctuation.signal_withdrawn", event, file.enterprise_id, signal))


def _rebaselined(state: CountyState, file: CreditFile, event: FluctuationRebaselinedEvent, rules: Rules, effects: list[Effect]) -> None:
    """控制限重新确定: a supervisor's decision that a product's process changed — the series it covers start a new
    baseline at their first result sampled on or after its date, whether those results are on file already or come
    later.  A decision for a series not on file yet is kept: results of a new process often come after the
    rectification's verification, and reports of an unregistered enterprise wait for it; the fold must give the same
    charts in any order, so it cannot refuse by arrival.  The same decision again (product, item, date) adds nothing."""
    p = event.payload
    fs = file.fluctuation
    day = p.effective_from.isoformat()
    named = next((s.item_name for s in fs.series.values() if (s.product, s.item_code) == (p.product, p.item_code)), p.item_code)
    which = f"{p.product}·{named}" if p.item_code else f"{p.product}（全部检验项目）"
    same = next((r for r in fs.rebaselines if (r.product, r.item_code, r.effective_from) == (p.product, p.item_code, day)), None)
    if same is not None:
        if (same.reason, same.confirmed_by) != (p.reason, p.confirmed_by):
            # another wording of a decision on file: the one logged first stands, and the bureau hears which
            effects.append(_effect(
                "fluctuation.rebaseline_repeated", event, file.enterprise_id, product=p.product, item_code=p.item_code, effective_from=day,
                rebaseline_event_id=same.event_id,
                message_zh=(f"{which} 自 {day} 起重新确定基线的决定已于 {rules.local_date(same.decided_at).isoformat()} 登记"
                            f"（原因：{same.reason}；确认人：{same.confirmed_by}；事件 {same.event_id}），本次未重复计入")))
        return
    record = Rebaseline(event_id=event_key(event), product=p.product, item_code=p.item_code, effective_from=day, reason=p.reason,
                        confirmed_by=p.confirmed_by, by=event.source.name or event.source.id, decided_at=event.occurred_at,
                        rectification_id=p.rectification_id, alert_id=p.alert_id)
    fs.rebaselines.append(record)
    keys, found = rebaselined(file, record, _charted_reports(file), state.categories, rules)
    covered = [s for s in fs.series.values() if record.covers(s.product, s.item_code)]
    follows = "".join([f"；整改编号 {p.rectification_id}" if p.rectification_id else "", f"；预警编号 {p.alert_id}" if p.alert_id else ""])
    head = f"{which} 自 {day}（含）起抽样的结果重新建立控制限基线（原因：{p.reason}；确认人：{p.confirmed_by}{follows}）"
    parts = []
    started = [(s, ph) for s in covered for ph in s.phases if ph.event_id == record.event_id]
    if started:
        parts.append("、".join(f"{s.product}·{s.item_name}自第 {ph.start} 批（{ph.sampled_on} 抽样）起" for s, ph in started)
                     + f"重新建立基线，需 {rules.policy.spc.baseline} 批结果确定新的控制限，其间不判异；此前的数据点和信号保留存档")
    waiting = [s for s in covered if s.key not in keys]
    if waiting:
        parts.append("、".join(f"{s.product}·{s.item_name}" for s in waiting) + f"尚无 {day} 及以后抽样的结果，结果到达时生效")
    fresh = [s for s in covered if s.key in keys and not any(ph.event_id == record.event_id for ph in s.phases)]
    if fresh:
        # (every point on or after the date, or after a later decision's: the limits it has are the new process's already)
        parts.append("、".join(f"{s.product}·{s.item_name}" for s in fresh) + f"的控制限已由 {day} 及以后的结果确定，无需重新建立")
    if not covered:
        parts.append("本企业名下尚无该产品（项目）的质量波动监测序列：决定已登记，结果到达时生效；请核对食品名称和项目代码")
    effects.append(_effect(
        "fluctuation.rebaselined", event, file.enterprise_id, product=p.product, item_code=p.item_code, effective_from=day, reason=p.reason,
        confirmed_by=p.confirmed_by, by=record.by, rectification_id=p.rectification_id, alert_id=p.alert_id,
        restarted=sorted(s.key for s, _ in started), pending=not keys, message_zh=head + "：" + "；".join(parts)))
    for signal in found:
        effects.append(_chart_effect(event, file.enterprise_id, {"product": p.product}, signal))


def _withdrawn_effect(file: CreditFile, record: ComplaintRecord, event: Envelope, rules: Rules, arrived_after: bool = False) -> Effect:
    w = record.withdrawn
    assert w is not None
    dup = f"，与投诉编号 {w.duplicate_of} 重复" if w.duplicate_of else ""
    # the bureau's own words may name the caller (与来信重复，来信人李大伟 139…): the effect goes to the alerts' closing
    # notes, group chats and ClickHouse, the credit file keeps the reason as written
    reason = mask_personal_info(w.reason)
    said = (f"投诉编号 {record.complaint_id} 到达，但已于 {rules.local_date(w.withdrawn_at).isoformat()} 由{w.by}撤回（原因：{reason}{dup}）："
            "存档、不计入" if arrived_after else
            f"投诉编号 {record.complaint_id}（{rules.local_date(record.received_at).isoformat()} 收到）由{w.by}撤回（原因：{reason}{dup}）："
            "存档备查，不再计入投诉统计、投诉数控制图、风险分和预警")
    return _effect("complaint.withdrawn", event, file.enterprise_id, complaint_id=record.complaint_id, reason=reason, by=w.by,
                   duplicate_of=w.duplicate_of, withdrawal_event_id=w.event_id, complaint_event_id=record.event_id, verified=record.verified,
                   category=record.category, arrived_after=arrived_after, message_zh=said)


def _complaint_verified(file: CreditFile, record: ComplaintRecord, event: Envelope, rules: Rules, effects: list[Effect]) -> None:
    file.counts.complaints_verified += 1
    effects.append(_effect("complaint.verified", event, file.enterprise_id, complaint_id=record.complaint_id, category=record.category))
    _complaint_cluster(file, record, event, rules, effects)


def _complaint_cluster(file: CreditFile, record: ComplaintRecord, event: Envelope, rules: Rules, effects: list[Effect]) -> None:
    policy = rules.policy.complaint_cluster
    if record.category not in policy.categories:
        return  # a price or service complaint (other) found 属实: no reason to inspect the plant and check the batch
    # any window of window_days holding this complaint, not only the one ending at it: verified latest-first, the
    # first of three complaints received 03-01/02/03 found only itself in the 30 days before it, and no cluster came
    cluster = densest_window([c for c in file.complaints if c.verified and c.category in policy.categories], record.received_at,
                             policy.window_days)
    if len(cluster) >= policy.k:
        effects.append(_effect(
            "complaint.cluster", event, file.enterprise_id,
            complaint_ids=[c.complaint_id for c in cluster], window_days=policy.window_days, k=policy.k,
        ))


def densest_window(complaints: list[ComplaintRecord], at: dt.datetime, days: int) -> list[ComplaintRecord]:
    """The most complaints (by receipt) one window of ``days`` days holding ``at`` holds, in order of receipt: of the
    windows starting at a complaint received up to ``days`` before ``at`` (the earliest, of equally full ones).
    Whatever order the complaints were received or verified in, the same complaints give the same window."""
    span = dt.timedelta(days=days)
    near = sorted((c for c in complaints if at - span <= c.received_at <= at + span), key=lambda c: c.received_at)
    best: list[ComplaintRecord] = []
    for first in near:
        if first.received_at > at:
            break
        members = [c for c in near if first.received_at <= c.received_at <= first.received_at + span]
        if len(members) > len(best) and members[-1].received_at >= at:
            best = members
    return best


def _inspection(state: CountyState, file: CreditFile, event: InspectionCompletedEvent, rules: Rules, effects: list[Effect]) -> None:
    p = event.payload
    record = InspectionRecord(
        inspection_id=p.inspection_id, event_id=event_key(event), occurred_at=event.occurred_at,
        inspector=p.inspector, kind=p.kind, result=p.result, findings=p.findings,
    )
    on_file = file.inspection(p.inspection_id)
    if on_file is not None:
        _inspection_resent(file, on_file, record, event, rules, effects)
        return
    file.inspections.append(record)
    file.counts.inspections += 1
    serious = _serious(p.findings)
    if p.result == "不符合":
        file.counts.inspections_nonconforming += 1
    if p.result == "不符合" or serious:
        effects.append(_effect("inspection.nonconforming", event, file.enterprise_id, inspection_id=p.inspection_id, result=p.result, serious_findings=serious))
    day = rules.local_date(event.occurred_at)
    for interview in file.interviews:
        # the earliest inspection on or after the interview's day is its follow-up, in whatever order they arrive
        if (interview.superseded_by is None and interview.follow_up_by is not None and interview.held_on <= day
                and (interview.follow_up_on is None or day < interview.follow_up_on)):
            _followed_up(file, interview, p.inspection_id, day, event, rules, effects)


def _serious(findings: Iterable[Any]) -> list[str]:
    return [f.code for f in findings if f.severity in ("major", "critical")]


_FINDING_ZH = {"minor": "一般", "major": "主要", "critical": "严重"}
_INSPECTION_KIND_ZH = {"routine": "日常检查", "special": "专项检查", "follow_up": "跟踪检查", "acceptance": "验收检查"}


def _findings_zh(findings: Iterable[Any]) -> str:
    return "；".join(f"{f.code} {f.description}（{_FINDING_ZH.get(f.severity, f.severity)}）" for f in findings) or "无"


def _inspection_changes(old: InspectionRecord, new: InspectionRecord, rules: Rules) -> list[dict[str, Any]]:
    """What a differing record of an inspection says otherwise: (field, from, to, 中文), findings in any order the same."""
    def when(r: InspectionRecord) -> str:
        return (r.occurred_at + in_hours(rules.policy.utc_offset_hours)).strftime("%Y-%m-%d %H:%M")
    out = []
    if old.result != new.result:
        out.append({"field": "payload.result", "from": old.result, "to": new.result, "zh": f"结论由{old.result}改为{new.result}"})
    if _findings_key(old.findings) != _findings_key(new.findings):
        out.append({"field": "payload.findings", "from": _findings_zh(old.findings), "to": _findings_zh(new.findings),
                    "zh": f"发现问题由“{_findings_zh(old.findings)}”改为“{_findings_zh(new.findings)}”"})
    if old.occurred_at != new.occurred_at:
        out.append({"field": "occurred_at", "from": old.occurred_at.isoformat(), "to": new.occurred_at.isoformat(),
                    "zh": f"检查时间由 {when(old)} 改为 {when(new)}"})
    if old.inspector != new.inspector:
        out.append({"field": "payload.inspector", "from": old.inspector, "to": new.inspector, "zh": f"检查人员由{old.inspector}改为{new.inspector}"})
    if old.kind != new.kind:
        out.append({"field": "payload.kind", "from": old.kind, "to": new.kind,
                    "zh": f"检查类型由{_INSPECTION_KIND_ZH.get(old.kind, old.kind)}改为{_INSPECTION_KIND_ZH.get(new.kind, new.kind)}"})
    return out


def _findings_key(findings: Iterable[Any]) -> tuple[tuple[str, str, str], ...]:
    return tuple(sorted((f.code, f.description, f.severity) for f in findings))


def _inspection_resent(file: CreditFile, on_file: InspectionRecord, record: InspectionRecord, event: InspectionCompletedEvent,
                       rules: Rules, effects: list[Effect]) -> None:
    """An inspection id on file sent again under a new event id.  One inspection is one record in the counts, the
    score and its alert: a resend filed as a second inspection scored its result and findings twice (+16 for one
    不符合 with one major finding), and a corrected result could not replace the wrong one.  The same record again
    is a repeat; a differing one dated at or after the record on file (the later logged at equal times) corrects it;
    one dated before it that arrives after it gives way (as sampling reports do); the original sent again after its
    correction is a repeat of it.  Every record stays on file."""
    iid = record.inspection_id
    changes = _inspection_changes(on_file, record, rules)
    if not changes:
        record.superseded_by, record.superseded_as = on_file.event_id, "repeated"
        file.inspections.append(record)
        effects.append(_effect("inspection.repeated", event, file.enterprise_id, inspection_id=iid, repeats_event_id=on_file.event_id,
                               message_zh=f"现场检查 {iid} 已在档（事件 {on_file.event_id}）：本次内容相同，按重复报送处理，不重复计数"))
        return
    older = next((i for i in file.inspections if i is not on_file and i.inspection_id == iid and not _inspection_changes(i, record, rules)), None)
    if older is not None:
        # the original sent again after its correction (a lab system's retry, a re-import): a repeat of that older
        # record, not a correction back to it
        record.superseded_by, record.superseded_as = on_file.event_id, "repeated"
        file.inspections.append(record)
        effects.append(_effect("inspection.repeated", event, file.enterprise_id, inspection_id=iid, repeats_event_id=older.event_id,
                               message_zh=f"现场检查 {iid} 的本次记录与已不计入的记录（事件 {older.event_id}）相同，按重复报送处理；"
                                          f"以在档记录（事件 {on_file.event_id}）为准"))
        return
    said = "；".join(c["zh"] for c in changes)
    if record.occurred_at < on_file.occurred_at:
        record.superseded_by, record.superseded_as = on_file.event_id, "outdated"
        file.inspections.append(record)
        effects.append(_effect(
            "inspection.outdated", event, file.enterprise_id, inspection_id=iid, on_file_event_id=on_file.event_id,
            changes=[{k: v for k, v in c.items() if k != "zh"} for c in changes],
            message_zh=(f"现场检查 {iid} 已在档（事件 {on_file.event_id}）：本次记录与之不同（{said}），但检查时间早于在档记录而晚到，"
                        "存档备查、不计入，以在档记录为准；如本次为更正，请核对检查时间")))
        return
    was, now = on_file.result == "不符合" or bool(_serious(on_file.findings)), record.result == "不符合" or bool(_serious(record.findings))
    on_file.superseded_by, on_file.superseded_as = record.event_id, "corrected"
    record.corrects = on_file.event_id
    file.inspections.append(record)
    file.counts.inspections_nonconforming += (record.result == "不符合") - (on_file.result == "不符合")
    effects.append(_effect(
        "inspection.corrected", event, file.enterprise_id, inspection_id=iid, corrects_event_id=on_file.event_id,
        changes=[{k: v for k, v in c.items() if k != "zh"} for c in changes], was_nonconforming=was, nonconforming=now,
        result=record.result, previous_result=on_file.result,
        message_zh=f"现场检查 {iid} 的记录已更正（原记录事件 {on_file.event_id}）：{said}；原记录存档备查，不再计入"))
    serious, before = _serious(record.findings), set(_serious(on_file.findings))
    # the alert follows what the corrected record finds: raised when the correction brings a nonconformity the
    # record on file did not have (a 不符合 where it said 基本符合, a major finding more); one that stays is the same
    # problem (its alert stands), and one that goes closes its alert (processors.warnings.inspection_corrected_resolved)
    if now and (not was or (record.result == "不符合" and on_file.result != "不符合") or not set(serious) <= before):
        effects.append(_effect("inspection.nonconforming", event, file.enterprise_id, inspection_id=iid, result=record.result,
                               serious_findings=serious, corrects_event_id=on_file.event_id))
    if rules.local_date(record.occurred_at) != rules.local_date(on_file.occurred_at):
        _follow_ups_again(file, event, rules, effects)


def _follow_ups_again(file: CreditFile, event: Envelope, rules: Rules, effects: list[Effect]) -> None:
    """Each interview's follow-up again from the inspections that count, after an inspection's day was corrected."""
    for interview in file.interviews:
        if interview.superseded_by is not None or interview.follow_up_by is None:
            continue
        first = _first_inspection_from(file, interview.held_on, rules)
        if first is None:
            if interview.follow_up_inspection_id is not None:
                # its follow-up is no longer on or after the interview: awaited again, and alerted again once late
                interview.follow_up_inspection_id = interview.follow_up_on = None
                interview.follow_up_overdue = interview.follow_up_alerted = False
            continue
        day = rules.local_date(first.occurred_at)
        if (first.inspection_id, day) != (interview.follow_up_inspection_id, interview.follow_up_on):
            _followed_up(file, interview, first.inspection_id, day, event, rules, effects)


def _first_inspection_from(file: CreditFile, day: dt.date, rules: Rules) -> InspectionRecord | None:
    after = [i for i in file.inspections if i.superseded_by is None and rules.local_date(i.occurred_at) >= day]
    return min(after, key=lambda i: i.occurred_at) if after else None


def _followed_up(file: CreditFile, interview: InterviewRecord, inspection_id: str, day: dt.date, event: Envelope, rules: Rules,
                 effects: list[Effect]) -> None:
    """An inspection on or after an interview's day checks its commitments.  Whether it was late is
    read from the dates, not from when a clock tick noticed; the alert a missing follow-up opened
    closes with the first one that comes."""
    first = interview.follow_up_inspection_id is None
    interview.follow_up_inspection_id, interview.follow_up_on = inspection_id, day
    interview.follow_up_overdue = day > deadline_ends(rules, interview.follow_up_by)  # type: ignore[arg-type]
    effects.append(_effect("interview.followed_up", event, file.enterprise_id, interview_id=interview.interview_id,
                           inspection_id=inspection_id, on=day.isoformat(), late=interview.follow_up_overdue))
    if first and interview.follow_up_alerted:
        data = follow_up_resolved(file, interview, inspection_id, day, event_key(event), rules)
        if data is not None:
            effects.append(_effect_data(RESOLVED_KIND, event, file.enterprise_id, data))


_WAITED_KINDS = ("rectification.completed", "rectification.verified", "rectification.rejected")
_ORDER_FIELDS = {"what": "整改内容", "cause": "起因", "deadline": "整改期限"}
"""What a resent order (rectification.ordered under an id on file) is compared by, with its Chinese name."""


def _rectification_ordered(state: CountyState, file: CreditFile, event: RectificationOrderedEvent, rules: Rules, effects: list[Effect]) -> None:
    p = event.payload
    record = file.rectification(p.rectification_id)
    if record is not None:
        _order_resent(file, record, event, rules, effects)
        return
    record = RectificationRecord(rectification_id=p.rectification_id, event_id=event_key(event), what=p.what, cause=p.cause,
                                 ordered_at=event.occurred_at, deadline=p.deadline)
    record.due_on, record.due_estimate = deadline_end(rules, p.deadline)
    file.rectifications.append(record)
    file.counts.rectifications_open += 1
    effects.append(_effect("rectification.ordered", event, file.enterprise_id, rectification_id=p.rectification_id, deadline=p.deadline.isoformat()))
    # its completions and verifications came first (the order sent late): they take effect now, in the order they came
    for waiting in file.rectifications_waiting.pop(p.rectification_id, ()):
        start = len(effects)
        if waiting.kind == "completed":
            _complete(file, record, waiting.occurred_at, waiting.evidence, event, rules, effects)
        else:
            _verify(file, record, Verification(event_id=waiting.event_id, verified_at=waiting.occurred_at, verifier=waiting.verifier,
                                               accepted=waiting.accepted, note=waiting.note, new_deadline=waiting.new_deadline),
                    event, rules, effects)
        # carried by the order's event: the alert book reads from them what the completion or verification said (who
        # verified, the evidence) and which event it was — a later re-check names that one
        for effect in effects[start:]:
            if effect.kind in _WAITED_KINDS or effect.kind in ("rectification.verification_reversed", "rectification.verification_outdated"):
                effect.data.update(waited_event_id=waiting.event_id, waited_at=waiting.occurred_at.isoformat(),
                                   evidence=waiting.evidence, verifier=waiting.verifier, note=waiting.note)


def _order_resent(file: CreditFile, record: RectificationRecord, event: RectificationOrderedEvent, rules: Rules, effects: list[Effect]) -> None:
    """An order under an id on file: the same again is a repeat; one that differs corrects it (a mistyped deadline, a
    延期) when dated on or after the order in force — ignored, a wrong deadline stayed for good, overdue the day it was
    filed —, and is kept unapplied when dated before it (an earlier version arriving late)."""
    p = event.payload
    rid = p.rectification_id
    changes = {f: [str(getattr(record, f)), str(getattr(p, f))] for f in _ORDER_FIELDS if getattr(record, f) != getattr(p, f)}
    if not changes or event.occurred_at < record.ordered_at:
        taken_as = "repeated" if not changes else "outdated"
        record.resends.append(RectificationResend(event_id=event_key(event), occurred_at=event.occurred_at, taken_as=taken_as, changes=changes))
        effects.append(_effect(
            "rectification.duplicate_order", event, file.enterprise_id, rectification_id=rid, same=not changes, in_force_event_id=record.event_id,
            message_zh=(f"整改编号 {rid} 已在档（事件 {record.event_id}）：" + ("本次内容相同，按重复报送处理" if not changes else
                        f"本次{_changes_zh(changes)}，但下达时间早于在档的责令整改而晚到：存档，不采用，以在档的为准"))))
        return
    record.resends.append(RectificationResend(event_id=event_key(event), occurred_at=event.occurred_at, taken_as="corrected", changes=changes))
    corrected_from = record.event_id
    record.what, record.cause, record.ordered_at, record.event_id = p.what, p.cause, event.occurred_at, event_key(event)
    old_deadline, record.deadline = record.deadline, p.deadline
    record.due_on, record.due_estimate = deadline_end(rules, p.deadline)
    effects.append(_effect(
        "rectification.corrected", event, file.enterprise_id, rectification_id=rid, corrects_event_id=corrected_from,
        changes={f: {"from": a, "to": b} for f, (a, b) in changes.items()}, deadline=p.deadline.isoformat(),
        message_zh=f"整改 {rid} 的责令整改已更正（原事件 {corrected_from}）：{_changes_zh(changes)}"))
    if "deadline" not in changes or not record.overdue or (record.overdue_by or old_deadline) != old_deadline:
        return  # (a mark by a redo deadline is the redo's, which the correction does not move)
    today = rules.local_date(event.occurred_at)
    done_at = record.completed_at or (record.verified_at if record.status == "verified" else None)
    done = rules.local_date(done_at) if done_at is not None else None
    if p.deadline > old_deadline and (done or today) <= deadline_ends(rules, p.deadline):
        # marked overdue by the deadline the correction took back, and not late by the right one: the mark, its points
        # and its alert go, as for a completion found in time
        _withdraw_overdue(file, record, event, old_deadline,
                          f"整改 {rid} 的整改期限已由 {old_deadline.isoformat()} 更正为 {p.deadline.isoformat()}，"
                          + (f"于 {done.isoformat()} 完成，在更正后的期限之内" if done else f"截至 {today.isoformat()} 未超过更正后的期限")
                          + "：撤销逾期标记", done, effects, corrected_to=p.deadline.isoformat())
    elif record.overdue_before is None:
        record.overdue_by = p.deadline  # overdue by the right deadline too: that is the one it is late by


def _changes_zh(changes: dict[str, list[str]]) -> str:
    return "；".join(f"{_ORDER_FIELDS[f]}由 {a or '（空）'} 改为 {b or '（空）'}" for f, (a, b) in changes.items())


def _rectification_waits(file: CreditFile, event: RectificationCompletedEvent | RectificationVerifiedEvent, waiting: RectificationWaiting,
                         effects: list[Effect]) -> None:
    """A completion or verification whose order is not on file: kept until it comes — dropped, the order arriving later
    went overdue although the enterprise had finished in time."""
    rid = event.payload.rectification_id
    file.rectifications_waiting.setdefault(rid, []).append(waiting)
    what = "整改完成报告" if waiting.kind == "completed" else "复查结论"
    effects.append(_effect("rectification.unknown", event, file.enterprise_id, rectification_id=rid, waiting=True,
                           message_zh=f"整改编号 {rid} 尚无责令整改记录：{what}已暂存，收到该责令整改后生效；请核对整改编号和企业编号"))


def _rectification_completed(state: CountyState, file: CreditFile, event: RectificationCompletedEvent, rules: Rules, effects: list[Effect]) -> None:
    p = event.payload
    record = file.rectification(p.rectification_id)
    if record is None:
        _rectification_waits(file, event, RectificationWaiting(event_id=event_key(event), occurred_at=event.occurred_at, kind="completed",
                                                               evidence=p.evidence), effects)
        return
    _complete(file, record, event.occurred_at, p.evidence, event, rules, effects)


def _complete(file: CreditFile, record: RectificationRecord, done_at: dt.datetime, evidence: str, event: Envelope, rules: Rules,
              effects: list[Effect]) -> None:
    """The enterprise reports the rectification done at ``done_at`` (``event``: the completion, or the order it waited for)."""
    rid = record.rectification_id
    done = rules.local_date(done_at)
    # a completion after the deadline is still overdue: mark it before closing
    _mark_one_overdue(file, record, event, rules, effects, today=done)
    _in_time(file, record, done, "完成", event, rules, effects)
    if record.status in ("open", "rejected"):
        record.status = "completed"
        record.completed_at = done_at
        record.evidence = evidence
        effects.append(_effect("rectification.completed", event, file.enterprise_id, rectification_id=rid))
    else:
        # reported done again (the enterprise's app sent it twice, a re-import): the record stands as it is, and says so;
        # the alerts stage adds no second 企业报告整改已完成 to its alerts
        since = rules.local_date(record.completed_at).isoformat() if record.completed_at else ""
        effects.append(_effect(
            "rectification.completion_repeated", event, file.enterprise_id, rectification_id=rid, status=record.status,
            message_zh=f"整改 {rid} 已于 {since} 报告完成（当前状态：{record.status}），本次完成报告不改变记录"))


def _in_time(file: CreditFile, record: RectificationRecord, done: dt.date, how: str, event: Envelope, rules: Rules,
             effects: list[Effect]) -> None:
    """Done (completed, or accepted at a 复查) on ``done``, within the deadline it was found overdue by, its record late: a
    tick (or the enterprise's later event) that came first marked it overdue by the fold's clock, but event time decides.
    A redo by a new deadline (重新限期) does not excuse the lateness of the first completion: a mark that deadline re-armed
    goes back to the first one."""
    due = record.overdue_by or record.deadline
    ends, estimate = deadline_end(rules, due)
    if not (record.overdue and record.status in ("open", "rejected") and done <= ends):
        return
    if record.overdue_before is not None:
        record.overdue_by, record.overdue_before = record.overdue_before, None
        return
    _withdraw_overdue(file, record, event, due, f"整改 {record.rectification_id} 于 {done.isoformat()} {how}，在期限 {deadline_zh(due, ends, estimate)} 之内"
                                                f"（{how}记录晚于期限到达）：撤销逾期标记", done, effects)


def _withdraw_overdue(file: CreditFile, record: RectificationRecord, event: Envelope, due: dt.date, message_zh: str,
                      on: dt.date | None, effects: list[Effect], **more: Any) -> None:
    """The overdue mark goes; with it (risk.observe, warnings) its points and its 整改逾期 alert."""
    record.overdue, record.overdue_by, record.overdue_before = False, None, None
    if record.status != "verified":
        file.counts.rectifications_overdue -= 1
    effects.append(_effect(
        "rectification.overdue_withdrawn", event, file.enterprise_id, rectification_id=record.rectification_id, deadline=due.isoformat(),
        completed_on=on.isoformat() if on is not None else None, message_zh=message_zh, **more))


def _rectification_verified(state: CountyState, file: CreditFile, event: RectificationVerifiedEvent, rules: Rules, effects: list[Effect]) -> None:
    p = event.payload
    record = file.rectification(p.rectification_id)
    if record is None:
        _rectification_waits(file, event, RectificationWaiting(
            event_id=event_key(event), occurred_at=event.occurred_at, kind="verified", verifier=p.verifier, accepted=p.accepted,
            note=p.note, new_deadline=p.new_deadline), effects)
        return
    _verify(file, record, Verification(event_id=event_key(event), verified_at=event.occurred_at, verifier=p.verifier, accepted=p.accepted,
                                       note=p.note, new_deadline=p.new_deadline), event, rules, effects)


def _verify(file: CreditFile, record: RectificationRecord, verification: Verification, event: Envelope, rules: Rules,
            effects: list[Effect]) -> None:
    """A 复查 of the rectification (``event``: the verification, or the order it waited for)."""
    rid = record.rectification_id
    on = rules.local_date(verification.verified_at)
    applied = [v for v in record.verifications if not v.outdated]
    last = applied[-1] if applied else None
    record.verifications.append(verification)
    if last is not None and verification.verified_at < last.verified_at:
        # an earlier check arriving after a later one (a queue, an import): history, not the state — a rejection of
        # 04-20 arriving after the acceptance of 05-05 that followed its redo must not reopen the rectification
        verification.outdated = True
        effects.append(_effect(
            "rectification.verification_outdated", event, file.enterprise_id, rectification_id=rid, accepted=verification.accepted,
            in_force_event_id=last.event_id,
            message_zh=(f"整改 {rid} 的复查（{on.isoformat()}，"
                        f"{'通过' if verification.accepted else '未通过'}）早于在档的复查（{rules.local_date(last.verified_at).isoformat()}，"
                        f"{'通过' if last.accepted else '未通过'}，事件 {last.event_id}）而晚到：存入复查记录，整改状态以较晚的复查为准")))
        return
    if verification.accepted:
        # accepted after the deadline with no completion in time: late, as a completion after it is (it was never marked
        # when no tick fell between); accepted within it, its record late: not overdue after all
        _mark_one_overdue(file, record, event, rules, effects, today=on)
        _in_time(file, record, on, "复查通过", event, rules, effects)
    record.verified_at = verification.verified_at
    record.verifier = verification.verifier
    record.note = verification.note
    if verification.accepted:
        if record.status != "verified":
            record.status = "verified"
            file.counts.rectifications_open -= 1
            if record.overdue:
                file.counts.rectifications_overdue -= 1
        effects.append(_effect("rectification.verified", event, file.enterprise_id, rectification_id=rid))
    else:
        reversed_ = record.status == "verified"
        record.status = "rejected"  # back to the enterprise: still open
        if reversed_:
            # an accepted verification taken back: open again, and overdue again if it was; the alert stage verified the
            # alerts it closed on the acceptance (their rectifications), which the effect names
            file.counts.rectifications_open += 1
            if record.overdue:
                file.counts.rectifications_overdue += 1
            effects.append(_effect(
                "rectification.verification_reversed", event, file.enterprise_id, rectification_id=rid,
                reversed_event_id=last.event_id if last is not None else None, verifier=verification.verifier, note=verification.note,
                new_deadline=verification.new_deadline.isoformat() if verification.new_deadline is not None else None,
                accepted_on=rules.local_date(last.verified_at).isoformat() if last is not None else None,
                accepted_by=last.verifier if last is not None else None, rejected_on=on.isoformat(),
                message_zh=(f"整改 {rid} 复查结论改为未通过（{on.isoformat()}，{verification.verifier}"
                            + (f"；复查意见：{verification.note}" if verification.note else "") + "）"
                            + (f"，此前 {rules.local_date(last.verified_at).isoformat()} 经{last.verifier}复查通过（事件 {last.event_id}）"
                               if last is not None else "")
                            + "：整改重新计为未结，原复查通过记录存档；相关预警应重新处置")))
        if verification.new_deadline is not None:
            record.redo_deadline = verification.new_deadline
            record.redo_due_on, record.redo_due_estimate = deadline_end(rules, verification.new_deadline)
        due = _due_by(record, rules)
        effects.append(_effect("rectification.rejected", event, file.enterprise_id, rectification_id=rid, note=verification.note,
                               deadline=record.deadline.isoformat(), due=due.isoformat() if due is not None else None))


def _due_by(record: RectificationRecord, rules: Rules) -> dt.date | None:
    """The deadline a rectification is overdue by: its own while open; once rejected, the new one the bureau set
    (重新限期), else its own — unless it was completed within it and rejected only after it passed: the bureau's
    review time is not the enterprise's delay (a completion on 02-19 rejected on 03-10 read 逾期 18 天 against
    02-20), and the rejection weighs itself.  Rejected before its deadline, it is still to be redone by it."""
    if record.status == "rejected":
        if record.redo_deadline is not None:
            return record.redo_deadline
        ends = deadline_ends(rules, record.deadline)
        if (record.completed_at is not None and rules.local_date(record.completed_at) <= ends
                and record.verified_at is not None and rules.local_date(record.verified_at) > ends):
            return None
    return record.deadline


def deadline_ends(rules: Rules, deadline: dt.date) -> dt.date:
    """The day a deadline set by date ends: moved off a holiday or weekend to the next working day (民法典 第二百零三条,
    ``schemas.working_days.period_end``): a rectification due 2026-10-01 is not late while the office is closed for 国庆."""
    return deadline_end(rules, deadline)[0]


def deadline_end(rules: Rules, deadline: dt.date) -> tuple[dt.date, bool]:
    """``deadline_ends`` and whether the move rests on the estimate of a year the calendar lacks (a deadline of 2027-01-01
    moved to 2027-01-04 while 2027's notice is not in): a deadline not moved is the date as ordered, no estimate."""
    if rules.calendar.is_working_day(deadline):
        return deadline, False
    end = period_end(rules.calendar, deadline)
    return end.on, end.estimate


def _moved(rules: Rules, deadline: dt.date) -> dict[str, Any]:
    """An effect's ``moved_to`` (the day the deadline ends on) when a holiday moved it, and ``moved_estimate`` when the
    move rests on a year the calendar lacks (the texts say 估算), else nothing."""
    moved_to, estimate = deadline_end(rules, deadline)
    if moved_to == deadline:
        return {}
    return {"moved_to": moved_to.isoformat(), **({"moved_estimate": True} if estimate else {})}


def deadline_zh(deadline: dt.date, moved_to: dt.date | str | None, estimate: bool = False) -> str:
    """期限 as said to a supervisor, moved off a holiday (``schemas.working_days.moved_deadline_zh``)."""
    return moved_deadline_zh(deadline, moved_to, estimate)


def _mark_overdue(file: CreditFile, event: Envelope, rules: Rules, effects: list[Effect]) -> None:
    _complaints_overdue(file, event, rules, effects)
    for position, record in file.rectifications_watched():
        d = record.__dict__  # (plain reads: every rectification not yet settled, for each event)
        if d["status"] in ("open", "rejected") and (not d["overdue"] or d["redo_deadline"] is not None):
            _mark_one_overdue(file, record, event, rules, effects)
        if d["status"] not in ("open", "rejected") or (d["overdue"] and d["redo_deadline"] is None):
            # nothing a clock can change: only an event about it can (it looks the record up, which watches it again)
            file.rectification_settled(position)
    for interview in file.interviews:
        if (interview.follow_up_by is not None and interview.follow_up_inspection_id is None and not interview.follow_up_alerted
                and interview.superseded_by is None):
            today = rules.local_date(event.occurred_at)
            if today > interview.follow_up_by and today > (ends := deadline_ends(rules, interview.follow_up_by)):
                interview.follow_up_overdue = interview.follow_up_alerted = True
                effects.append(_effect(
                    "interview.follow_up_overdue", event, file.enterprise_id, interview_id=interview.interview_id,
                    held_on=interview.held_on.isoformat(), follow_up_by=interview.follow_up_by.isoformat(),
                    days_overdue=(today - ends).days, **_moved(rules, interview.follow_up_by),
                ))


def _mark_one_overdue(file: CreditFile, record: RectificationRecord, event: Envelope, rules: Rules, effects: list[Effect],
                      today: dt.date | None = None) -> None:
    """Overdue by ``today`` (the event's local date unless given: a completion's, an accepted verification's)?  A
    rectification already late once is overdue again by a redo deadline (重新限期) it also misses — README says the redo
    is overdue by it, but a mark set once was never looked at again: its alert re-raises (or opens afresh), one dynamic
    entry stays, and no second credit entry is made (risk.observe: ``again``)."""
    if record.status not in ("open", "rejected"):
        return
    due = _due_by(record, rules)
    today = today if today is not None else rules.local_date(event.occurred_at)
    if due is None or today <= due:
        return
    # a deadline on a holiday runs to the first working day after it, and the days late count from that day
    ends = deadline_ends(rules, due)
    if today <= ends:
        return
    if record.overdue:
        marked = record.overdue_by or record.deadline
        if due <= marked:
            return
        if record.overdue_before is None:
            record.overdue_before = marked
        record.overdue_by = due
        effects.append(_effect(
            "rectification.overdue", event, file.enterprise_id, rectification_id=record.rectification_id, deadline=due.isoformat(),
            days_overdue=(today - ends).days, what=record.what, redo=True, again=True, first_deadline=record.overdue_before.isoformat(),
            **_moved(rules, due)))
        return
    record.overdue, record.overdue_by = True, due
    file.counts.rectifications_overdue += 1
    effects.append(_effect(
        "rectification.overdue", event, file.enterprise_id,
        rectification_id=record.rectification_id, deadline=due.isoformat(),
        days_overdue=(today - ends).days, what=record.what,
        **({"redo": True} if due != record.deadline else {}), **_moved(rules, due),
    ))


def _enforcement(state: CountyState, file: CreditFile, event: EnforcementDecidedEvent, rules: Rules, effects: list[Effect]) -> None:
    p = event.payload
    on_file = file.enforcement(p.decision_no)
    if on_file is not None:
        _decision_resent(file, on_file, event, effects)
        return
    record = EnforcementRecord(
        decision_no=p.decision_no, event_id=event_key(event), occurred_at=event.occurred_at, decided_on=p.decided_on,
        authority=p.authority, violation=p.violation, legal_basis=p.legal_basis, penalties=p.penalties,
        serious_dishonesty=p.serious_dishonesty, sample_nos=p.sample_nos, inspection_ids=p.inspection_ids,
    )
    file.enforcements.append(record)
    file.counts.enforcements += 1
    kinds = [x.kind for x in p.penalties]
    if p.serious_dishonesty:
        # the latest listing decision (by its date) is the one the file names; each listing runs its own term
        current = file.enforcement(file.serious_dishonesty) if file.serious_dishonesty is not None else None
        if current is None or not current.in_force or p.decided_on >= current.decided_on:
            file.serious_dishonesty = p.decision_no
    if "licence_revoked" in kinds and file.licence_revoked is None:
        file.licence_revoked = p.decision_no
        _licence_changed(file, rules)
    effects.append(_effect("enforcement.decided", event, file.enterprise_id, decision_no=p.decision_no, decided_on=p.decided_on.isoformat(),
                           penalties=kinds, fined_yuan=record.fined_yuan, serious_dishonesty=p.serious_dishonesty))
    waiting = file.revocations_waiting.pop(p.decision_no, None)
    if waiting is not None:
        # its revocation came first: it takes effect now, as if it had come after
        _revoke(file, record, waiting, event, rules, effects)


_DECISION_FIELDS_ZH = {"decided_on": "决定日期", "authority": "作出决定的机关", "violation": "违法行为", "legal_basis": "法律依据",
                       "penalties": "处罚内容", "serious_dishonesty": "列入严重违法失信名单", "sample_nos": "相关抽样编号",
                       "inspection_ids": "相关检查编号"}


def _decision_resent(file: CreditFile, on_file: EnforcementRecord, event: EnforcementDecidedEvent, effects: list[Effect]) -> None:
    """A decision number on file sent again under a new event id.  The decision on file stands: a 决定书 number names one
    decision, and one varied (变更) is revoked (enforcement.revoked) and posted under its own number.  But a resend that
    says otherwise was dropped without a word (200, nothing on file): it is said, field by field, for the bureau to
    check which is right."""
    p = event.payload
    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "是" if value else "否"
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, list):
            return "、".join(x if isinstance(x, str) else PENALTY_ZH.get(x.kind, x.kind) + (f" {x.amount_yuan:g} 元" if x.amount_yuan else "")
                            + (f"（{x.note}）" if x.note else "") for x in value) or "无"
        return "无" if value is None else str(value)
    changes = []
    for name, zh in _DECISION_FIELDS_ZH.items():
        a, b = getattr(on_file, name), getattr(p, name)
        if name == "penalties":
            a, b = sorted(a, key=repr), sorted(b, key=repr)
        elif name in ("sample_nos", "inspection_ids"):
            a, b = sorted(a), sorted(b)
        if a != b:
            changes.append({"field": f"payload.{name}", "field_zh": zh, "from": text(a), "to": text(b)})
    no = p.decision_no
    if not changes:
        effects.append(_effect("enforcement.duplicate_decision", event, file.enterprise_id, decision_no=no, same=True,
                               decision_event_id=on_file.event_id,
                               message_zh=f"行政处罚决定书 {no} 已在档（事件 {on_file.event_id}）：本次内容相同，按重复报送处理，不重复计入"))
        return
    fields = "、".join(f"{c['field_zh']}（{c['field']}）" for c in changes)
    effects.append(_effect(
        "enforcement.duplicate_decision", event, file.enterprise_id, decision_no=no, same=False, decision_event_id=on_file.event_id,
        changes=changes,
        message_zh=(f"行政处罚决定书 {no} 已在档（事件 {on_file.event_id}），本次报送的{fields}与在档决定不同："
                    + "；".join(f"{c['field_zh']}在档为“{c['from']}”，本次为“{c['to']}”" for c in changes)
                    + "。未替换在档决定；如决定已变更，请以 enforcement.revoked 撤销原决定后以新的决定书文号报送，如在档决定有误请核实"),
        message_en=(f"decision {no} is on file (event {on_file.event_id}); this one differs in {', '.join(c['field'] for c in changes)}: "
                    "the decision on file stands. A decision varied is revoked (enforcement.revoked) and posted under its own number")))


def _enforcement_revoked(state: CountyState, file: CreditFile, event: EnforcementRevokedEvent, rules: Rules, effects: list[Effect]) -> None:
    p = event.payload
    revocation = Revocation(event_id=event_key(event), decision_no=p.decision_no, revoked_on=p.revoked_on, revoked_by=p.revoked_by,
                            reference_no=p.reference_no, reason=p.reason)
    record = file.enforcement(p.decision_no)
    if record is None:
        if p.decision_no not in file.revocations_waiting:
            # not lost: kept until the decision comes (posted out of order, or an import of older decisions), and said
            file.revocations_waiting[p.decision_no] = revocation
            effects.append(_effect("enforcement.revocation_pending", event, file.enterprise_id, decision_no=p.decision_no,
                                   message_zh=f"本企业档案中尚无行政处罚决定书 {p.decision_no}：撤销已登记，该决定到达时即按撤销处理；"
                                              "请核对决定书文号和企业"))
        return
    if not record.in_force:
        return  # revoked already: a repeat says nothing
    _revoke(file, record, revocation, event, rules, effects)


def _revoke(file: CreditFile, record: EnforcementRecord, r: Revocation, event: Envelope, rules: Rules, effects: list[Effect]) -> None:
    record.revoked_on, record.revoked_by, record.revoked_ref, record.revoked_reason = r.revoked_on, r.revoked_by, r.reference_no, r.reason
    file.counts.enforcements -= 1
    listing_ended = file.serious_dishonesty == record.decision_no
    if listing_ended:
        # the latest listing decision still in force names the file, if any
        others = [x for x in file.enforcements if x.serious_dishonesty and x.in_force]
        file.serious_dishonesty = max(others, key=lambda x: x.decided_on).decision_no if others else None
    licence_restored = file.licence_revoked == record.decision_no
    if licence_restored:
        others = [x for x in file.enforcements if x.in_force and any(k.kind == "licence_revoked" for k in x.penalties)]
        file.licence_revoked = others[0].decision_no if others else None
        licence_restored = file.licence_revoked is None
        if licence_restored:
            # (from the day the revocation took effect, however late it was filed; local midnight of that day)
            local = dt.timezone(dt.timedelta(hours=rules.policy.utc_offset_hours))
            _licence_changed(file, rules, dt.datetime.combine(r.revoked_on, dt.time(), tzinfo=local).astimezone(dt.timezone.utc))
    # (said in this effect's own words, not as campaign.acceptance_rechecked)
    rechecked = recheck_acceptance(file, rules) if file.campaign.acceptance_checked_on is not None else None
    unchecked = rechecked is not None and "enforcement" in rechecked["removed"] + rechecked["changed"]
    how = REVOKED_BY_ZH.get(r.revoked_by, r.revoked_by)
    said = (f"行政处罚决定书 {record.decision_no}（{record.decided_on.isoformat()}）已经{how}撤销（{r.reference_no}，"
            f"{r.revoked_on.isoformat()}；理由：{r.reason}）：该处罚存档备查，不再计入风险分"
            + ("，其严重违法失信名单列入随之终止" if listing_ended and record.serious_dishonesty else "")
            + ("，吊销的许可证恢复，例行抽检与检查重新计算" if licence_restored else "")
            + ("，提档升级验收中的行政处罚一项不再计入" if unchecked else ""))
    if r.revoked_on < record.decided_on:
        # only the fold sees both dates (the door does not see the decision; a revocation may come before it): applied — the
        # revoking document exists, and a revocation that names no day the decision stood takes it out as one dated right —
        # and said, for the bureau to correct the date
        effects.append(_effect(
            "enforcement.revocation_misdated", event, file.enterprise_id, decision_no=record.decision_no, field="payload.revoked_on",
            revoked_on=r.revoked_on.isoformat(), decided_on=record.decided_on.isoformat(), revocation_event_id=r.event_id,
            message_zh=(f"撤销日期 {r.revoked_on.isoformat()} 早于行政处罚决定书 {record.decision_no} 的决定日期 {record.decided_on.isoformat()}："
                        "撤销已按登记处理，请核对撤销日期（payload.revoked_on）"),
            message_en=(f"revoked_on {r.revoked_on.isoformat()} is before decision {record.decision_no}'s decided_on "
                        f"{record.decided_on.isoformat()}: the revocation is applied; check payload.revoked_on")))
    effects.append(_effect("enforcement.revoked", event, file.enterprise_id, decision_no=record.decision_no,
                           decision_event_id=record.event_id, revocation_event_id=r.event_id, revoked_on=r.revoked_on.isoformat(),
                           revoked_by=r.revoked_by, reference_no=r.reference_no, reason=r.reason,
                           listing_ended=listing_ended and record.serious_dishonesty, licence_restored=licence_restored,
                           acceptance_check_withdrawn=bool(unchecked), message_zh=said))


def _listing_removed(state: CountyState, file: CreditFile, event: EnforcementListingRemovedEvent, rules: Rules,
                     effects: list[Effect]) -> None:
    """提前移出严重违法失信名单 (信用修复): the listing ends on removed_on, the decision and its points stay.  Unlike a
    revocation nothing waits for a decision not yet on file: a removal is decided on a listing the bureau sees on file, so
    one naming none is a typo, kept and said (as the door says it) for the bureau to send again."""
    p = event.payload
    record = file.enforcement(p.decision_no)
    me = event_key(event)
    refused, field = None, "payload.decision_no"
    if record is None:
        refused = ("decision_unknown", f"本企业档案中无行政处罚决定书 {p.decision_no}：未作移出处理，请核对决定书文号（payload.decision_no）和企业")
    elif not record.serious_dishonesty:
        refused = ("decision_not_listing", f"行政处罚决定书 {p.decision_no} 未列入严重违法失信名单：无可移出的列入（payload.decision_no）")
    elif not record.in_force:
        refused = ("decision_revoked", f"行政处罚决定书 {p.decision_no} 已于 {record.revoked_on.isoformat()} 撤销，其列入已随之终止，未作移出处理")  # type: ignore[union-attr]
    elif p.removed_on < record.decided_on:
        # (a listing cannot end before it began: applied, the listing would never have held and the D never been due —
        # a mistyped year, most likely, which the bureau sends again)
        refused, field = ("removed_before_listing", f"移出日期 {p.removed_on.isoformat()} 早于列入决定日期 {record.decided_on.isoformat()}"
                                                    f"（行政处罚决定书 {p.decision_no}）：未作移出处理，请核对移出日期（payload.removed_on）"), "payload.removed_on"
    if refused is not None:
        effects.append(_effect("enforcement.listing_removal_refused", event, file.enterprise_id, decision_no=p.decision_no,
                               field=field, reason=refused[0], message_zh=refused[1]))
        return
    assert record is not None
    if record.listing_removal_event_id is not None:
        return  # removed already (a resend, or a second removal): the first stands
    record.listing_removed_on, record.listing_removed_ref, record.listing_removed_reason = p.removed_on, p.reference_no, p.reason
    record.listing_removal_event_id = me
    # (the decision stays the file's latest listing: the credit report says 曾列入 … 提前移出 as it says 期满移出)
    effects.append(_effect("enforcement.listing_removed", event, file.enterprise_id, decision_no=record.decision_no,
                           decision_event_id=record.event_id, removed_on=p.removed_on.isoformat(), reference_no=p.reference_no,
                           reason=p.reason,
                           message_zh=(f"行政处罚决定书 {record.decision_no}（{record.decided_on.isoformat()}）列入的严重违法失信名单已于 "
                                       f"{p.removed_on.isoformat()} 提前移出（信用修复，{p.reference_no}；理由：{p.reason}）：风险等级不再"
                                       "直接定为 D 级，按分值逐级评定；该处罚决定仍在档，仍计入风险分")))


def _interview(state: CountyState, file: CreditFile, event: InterviewHeldEvent, rules: Rules, effects: list[Effect]) -> None:
    p = event.payload
    record = InterviewRecord(
        interview_id=p.interview_id, event_id=event_key(event), occurred_at=event.occurred_at, held_on=p.held_on, held_by=p.held_by,
        officials=p.officials, interviewee=p.interviewee, reason=p.reason, related_event_ids=[str(i) for i in p.related_event_ids],
        commitments=p.commitments, follow_up_by=p.follow_up_by,
    )
    if p.follow_up_by is not None:
        record.follow_up_due_on, record.follow_up_due_estimate = deadline_end(rules, p.follow_up_by)
    on_file = file.interview(p.interview_id)
    if on_file is not None:
        _interview_resent(file, on_file, record, event, rules, effects)
        return
    file.interviews.append(record)
    file.counts.interviews += 1
    effects.append(_effect("interview.held", event, file.enterprise_id, interview_id=p.interview_id, held_on=p.held_on.isoformat(),
                           follow_up_by=p.follow_up_by.isoformat() if p.follow_up_by else None))
    if p.follow_up_by is not None:
        # the record may reach qrisk after the inspection that followed it up
        first = _first_inspection_from(file, p.held_on, rules)
        if first is not None:
            _followed_up(file, record, first.inspection_id, rules.local_date(first.occurred_at), event, rules, effects)


_INTERVIEW_FIELDS_ZH = {"held_on": "约谈日期", "held_by": "约谈单位", "officials": "约谈人", "interviewee": "被约谈人", "reason": "约谈事由",
                        "related_event_ids": "相关事件", "commitments": "企业承诺", "follow_up_by": "跟踪检查期限"}


def _interview_changes(old: InterviewRecord, new: InterviewRecord) -> list[dict[str, Any]]:
    """What a differing record of an interview says otherwise (its own fields: when it was recorded is no part of it)."""
    def text(value: Any) -> str:
        if value is None or value == "" or value == []:
            return "无"
        return "、".join(value) if isinstance(value, list) else value.isoformat() if isinstance(value, dt.date) else str(value)
    out = []
    for name, zh in _INTERVIEW_FIELDS_ZH.items():
        a, b = getattr(old, name), getattr(new, name)
        if a != b:
            out.append({"field": f"payload.{name}", "from": text(a), "to": text(b), "zh": f"{zh}由“{text(a)}”改为“{text(b)}”"})
    return out


def _interview_resent(file: CreditFile, on_file: InterviewRecord, record: InterviewRecord, event: InterviewHeldEvent, rules: Rules,
                      effects: list[Effect]) -> None:
    """An interview id on file sent again under a new event id: one interview, counted and scored once (filed twice, it
    scored 约谈 +8 for one).  The same record is a repeat; a differing one corrects it when it was
    recorded (occurred_at) not before the record on file (the later logged at equal times), and otherwise gives way; the
    original sent again after its correction is a repeat of it."""
    iid = record.interview_id
    changes = _interview_changes(on_file, record)
    if not changes:
        record.superseded_by, record.superseded_as = on_file.event_id, "repeated"
        file.interviews.append(record)
        effects.append(_effect("interview.repeated", event, file.enterprise_id, interview_id=iid, repeats_event_id=on_file.event_id,
                               message_zh=f"约谈 {iid} 已在档（事件 {on_file.event_id}）：本次内容相同，按重复报送处理，不重复计数"))
        return
    older = next((i for i in file.interviews if i is not on_file and i.interview_id == iid and not _interview_changes(i, record)), None)
    if older is not None:
        # the original sent again after its correction: a repeat of that older record, not a correction back to it
        record.superseded_by, record.superseded_as = on_file.event_id, "repeated"
        file.interviews.append(record)
        effects.append(_effect("interview.repeated", event, file.enterprise_id, interview_id=iid, repeats_event_id=older.event_id,
                               message_zh=f"约谈 {iid} 的本次记录与已不计入的记录（事件 {older.event_id}）相同，按重复报送处理；"
                                          f"以在档记录（事件 {on_file.event_id}）为准"))
        return
    said = "；".join(c["zh"] for c in changes)
    plain = [{k: v for k, v in c.items() if k != "zh"} for c in changes]
    # the newer record is the one recorded later (occurred_at: when the bureau recorded the interview), not the one
    # whose held_on is later: held_on is what a correction may put right, an earlier day included
    if record.occurred_at < on_file.occurred_at:
        record.superseded_by, record.superseded_as = on_file.event_id, "outdated"
        file.interviews.append(record)
        effects.append(_effect(
            "interview.outdated", event, file.enterprise_id, interview_id=iid, on_file_event_id=on_file.event_id, changes=plain,
            message_zh=(f"约谈 {iid} 已在档（事件 {on_file.event_id}）：本次记录与之不同（{said}），但日期早于在档记录而晚到，"
                        "存档备查、不计入，以在档记录为准；如本次为更正，请以晚于在档记录的记录时间重新报送")))
        return
    on_file.superseded_by, on_file.superseded_as = record.event_id, "corrected"
    record.corrects = on_file.event_id
    record.follow_up_alerted = on_file.follow_up_alerted  # (its follow-up alert is the interview's, not the record's)
    if on_file.follow_up_inspection_id is not None and record.held_on != on_file.held_on:
        # a new date puts the follow-up inspection in question (it may now come before the interview): decided
        # afresh below, and a missing one alerted again, as _follow_ups_again does when an inspection stops counting
        record.follow_up_alerted = False
    file.interviews.append(record)
    effects.append(_effect(
        "interview.corrected", event, file.enterprise_id, interview_id=iid, corrects_event_id=on_file.event_id, changes=plain,
        held_on=record.held_on.isoformat(), follow_up_by=record.follow_up_by.isoformat() if record.follow_up_by else None,
        message_zh=f"约谈 {iid} 的记录已更正（原记录事件 {on_file.event_id}）：{said}；原记录存档备查，不再计入"))
    first = _first_inspection_from(file, record.held_on, rules) if record.follow_up_by is not None else None
    if first is not None:
        day = rules.local_date(first.occurred_at)
        if (first.inspection_id, day) == (on_file.follow_up_inspection_id, on_file.follow_up_on):
            # followed up already by the same inspection: said then; late or not by the corrected date
            record.follow_up_inspection_id, record.follow_up_on = first.inspection_id, day
            record.follow_up_overdue = day > deadline_ends(rules, record.follow_up_by)  # type: ignore[arg-type]
        else:
            _followed_up(file, record, first.inspection_id, day, event, rules, effects)
    elif record.follow_up_alerted:
        today = rules.local_date(event.occurred_at)
        if record.follow_up_by is None or today <= deadline_ends(rules, record.follow_up_by):
            # the corrected record sets no follow-up date, or one not yet passed: the alert for a missing follow-up rested
            # on the record it replaced
            record.follow_up_alerted = False
            data = follow_up_corrected_resolved(file, record, event_key(event), rules)
            if data is not None:
                effects.append(_effect_data(RESOLVED_KIND, event, file.enterprise_id, data))
        else:
            record.follow_up_overdue = True


def _campaign(state: CountyState, file: CreditFile, event: Envelope, rules: Rules, effects: list[Effect]) -> None:
    for kind, data in on_campaign_event(file, event, rules):
        effects.append(_effect_data(kind, event, file.enterprise_id, data))


_HANDLERS = {
    EnterpriseRegistered: _registered,
    EnterpriseUpdated: _updated,
    SamplingResultEvent: _sampling,
    SamplingRetractedEvent: _retracted,
    ComplaintReceivedEvent: _complaint_received,
    ComplaintResolvedEvent: _complaint_resolved,
    ComplaintAcceptedEvent: _complaint_accepted,
    ComplaintWithdrawnEvent: _complaint_withdrawn,
    FluctuationRebaselinedEvent: _rebaselined,
    InspectionCompletedEvent: _inspection,
    RectificationOrderedEvent: _rectification_ordered,
    RectificationCompletedEvent: _rectification_completed,
    RectificationVerifiedEvent: _rectification_verified,
    EnforcementDecidedEvent: _enforcement,
    EnforcementRevokedEvent: _enforcement_revoked,
    EnforcementListingRemovedEvent: _listing_removed,
    InterviewHeldEvent: _interview,
    CampaignCommitmentEvent: _campaign,
    CampaignAssessmentEvent: _campaign,
    CampaignTrainingEvent: _campaign,
    CampaignActivityEvent: _campaign,
    CampaignRetractedEvent: _campaign,
}
