"""Risk grading (风险分级) inside the fold, and inspection planning.

Score (0-100, higher is riskier) = static + dynamic + credit, each capped:

- static (≤ 40): food category, production scale, population served;
- dynamic (≤ 40): what happened within ``risk.dynamic.window_days`` before the
  as-of time — unqualified samples weighted by the class of the worst failed
  item (pathogen and non-permitted additive weigh most; an additive's class follows
  the rule in force, see ``failed_class``), fluctuation signals,
  verified complaints, inspection results and findings, overdue rectifications,
  enforcement decisions (行政处罚, by the heaviest penalty) and interviews (约谈);
  each factor has its own cap;
- credit (≤ 20): the long memory — campaign tier, rectifications ever rejected
  or overdue; an enterprise on the serious-dishonesty list (the policy's, or listed
  by an enforcement decision) goes straight to D.

The score selects a band (``risk.bands``); the grade moves towards the band by
``max_worsen`` / ``max_improve`` grades at a time: worsening, once per event and, held
back, once per ``worsen_hold_days``; improving, once per ``improve_hold_days``.  An
evaluation happens after every event of the enterprise and on every ``clock.tick``, and
takes every step the dates allowed since the last one, each dated when it was allowed
(``_steps``): the grade does not depend on how often the log ticks.

Pure and incremental: the dynamic inputs are kept as a time-sorted list of
``(at, factor, points, event_id, ref)`` pruned from the front as the as-of time
moves on, so an evaluation costs a pass over the window's few entries, not over
the history.  The as-of time is the latest event time the file has seen (or the
latest tick): a grade never rests on an event later than its ``as_of``.
"""
from __future__ import annotations

import bisect
import datetime as dt
import functools
from fractions import Fraction
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from processors._build import FoldState
from processors.fluctuation import NOTE_RULES, period_of
from processors.ids import event_key

from schemas.events import EVENT_TYPE_ZH, PENALTY_ZH
from schemas.policy import GRADES, Grade, RiskPolicy

if TYPE_CHECKING:  # pragma: no cover
    from processors.credit_file import CountyState, CreditFile
    from processors.step import Effect, Rules
    from schemas.events import Envelope

Entry = tuple[dt.datetime, str, float, str, str]
"""A dated risk input: (event time, factor, points, event id, reference such as a sample no.)."""

DYNAMIC_FACTORS = ("sampling_failed", "fluctuation_signal", "complaint_verified", "inspection", "rectification_overdue", "enforcement",
                   "interview")
CREDIT_FACTORS = ("rectification_rejected", "rectification_overdue")

FACTOR_ZH = {
    "static.category": "食品类别",
    "static.scale": "生产规模",
    "static.population": "供应人群",
    "dynamic.sampling_failed": "抽检不合格",
    "dynamic.fluctuation_signal": "质量波动信号",
    "dynamic.complaint_verified": "经核实投诉",
    "dynamic.inspection": "现场检查问题",
    "dynamic.rectification_overdue": "整改逾期",
    "dynamic.enforcement": "行政处罚",
    "dynamic.interview": "约谈",
    "credit.campaign_tier": "提档升级分档",
    "credit.rectification_rejected": "整改复查未通过（累计）",
    "credit.rectification_overdue": "整改逾期（累计）",
    "credit.serious_dishonesty": "列入严重违法失信名单",
}
FACTOR_EN = {
    "static.category": "food category",
    "static.scale": "production scale",
    "static.population": "population served",
    "dynamic.sampling_failed": "unqualified samples",
    "dynamic.fluctuation_signal": "fluctuation signals",
    "dynamic.complaint_verified": "verified complaints",
    "dynamic.inspection": "inspection findings",
    "dynamic.rectification_overdue": "overdue rectifications",
    "dynamic.enforcement": "enforcement decisions",
    "dynamic.interview": "regulatory interviews",
    "credit.campaign_tier": "campaign tier",
    "credit.rectification_rejected": "rectifications rejected (all time)",
    "credit.rectification_overdue": "rectifications overdue (all time)",
    "credit.serious_dishonesty": "serious-dishonesty list",
}
_UNIT_ZH = {
    "sampling_failed": "批次", "fluctuation_signal": "次", "complaint_verified": "件", "inspection": "次",
    "rectification_overdue": "项", "rectification_rejected": "项", "enforcement": "件", "interview": "次",
}
CATEGORY_ZH = {"packaged_water": "包装饮用水", "pastry": "糕点", "other": "其他"}
SCALE_ZH = {"micro": "微型", "small": "小型", "medium": "中型", "large": "大型"}
_INDEX = {g: i for i, g in enumerate(GRADES)}
_NEVER = dt.datetime(9999, 12, 31, tzinfo=dt.timezone.utc)


@functools.lru_cache(maxsize=None)
def in_days(n: float) -> dt.timedelta:
    """``n`` days.  Building a timedelta costs thousands of instructions (its constructor does big-integer
    arithmetic), and the fold asks for the same few policy intervals after every event."""
    return dt.timedelta(days=n)


@functools.lru_cache(maxsize=None)
def in_hours(n: float) -> dt.timedelta:
    """``n`` hours (the policy's UTC offset), built once: as ``in_days``."""
    return dt.timedelta(hours=n)


class _Model(FoldState):
    pass


@dataclass
class Contribution:
    """One term of the score, with the events behind it.

    A plain dataclass (pydantic serialises and restores it inside ``GradeEntry``):
    made on every score change, so it must be cheap to build.
    """

    factor: str  # static.category, dynamic.sampling_failed, credit.campaign_tier …
    label_zh: str
    points: float  # what the term adds, after its cap
    raw: float  # before the cap
    count: int = 0
    detail_zh: str = ""
    event_ids: list[str] = field(default_factory=list)
    # when the term's oldest entry stops weighing (the dynamic window, the credit memory): when the score may
    # first get lighter, which the enterprise's report states; None for terms that do not end so
    weighs_until: dt.datetime | None = None


@dataclass
class GradeEntry:
    """One evaluation that changed the score or the grade (a dataclass for the same reason as ``Contribution``)."""

    as_of: dt.datetime
    cause_event_id: str
    score: float
    static: float
    dynamic: float
    credit: float
    band: Grade  # the grade the score alone gives
    grade: Grade
    previous: Grade | None = None
    held: bool = False  # the grade lags its band: max_worsen / max_improve / hold_days
    override: str | None = None  # serious_dishonesty: straight to D
    next_inspection_due: dt.date | None = None
    contributions: list[Contribution] = field(default_factory=list)
    # a grade held back from worsening (band worse than grade): since when it has been held at this grade, the
    # event that raised the band above it (and that event in words), and the hold in words; ``hold_expired``: this
    # evaluation (a clock.tick) moved the grade on because the hold had lasted ``risk.worsen_hold_days`` — the
    # hold fields then name the hold it ended and its original cause, not the tick (or, still held a level
    # further, the new hold: since now, the same cause)
    hold_since: dt.datetime | None = None
    hold_cause_event_id: str | None = None
    hold_cause_zh: str = ""
    hold_expired: bool = False
    hold_zh: str = ""


class RiskState(_Model):
    """Per credit file: the grade now, its history, and the inputs it is computed from."""

    grade: Grade | None = None
    score: float | None = None
    tick_at: dt.datetime | None = Field(default=None, description="latest clock.tick that reached this file; as of = max(this, last event)")
    moved_at: dt.datetime | None = Field(default=None, description="when the grade last changed")
    moved_from: Grade | None = Field(default=None, description="the grade before that change (None: the first grade)")
    next_inspection_due: dt.date | None = None
    due_before_move: dt.date | None = Field(default=None, description="the next inspection's due date in force just before the grade "
                                                                      "last changed: the regrade grace never puts the due date after it")
    history: list[GradeEntry] = Field(default_factory=list, description="bounded by risk.history_max; the last is the current grade")
    entries: list[Entry] = Field(default_factory=list, description="dynamic inputs within the window, by time")
    credit_entries: list[Entry] = Field(default_factory=list, description="credit record, all time")
    profile_event_id: str | None = Field(default=None, description="the registration or update the static terms rest on")
    tier_event_id: str | None = Field(default=None, description="the event that set the campaign tier (registration, update, acceptance)")
    tier_cited: str | None = Field(default=None, description="the tier ``tier_event_id`` set")
    last_sampled_on: dt.date | None = None
    last_sample_event_id: str | None = None
    last_inspected_at: dt.datetime | None = None
    last_inspection_event_id: str | None = None
    missing: dict[str, str] = Field(default_factory=dict, description="data.missing raised and not yet filled: what -> the last-data date it was raised for")
    check_missing_at: dt.datetime | None = Field(default=None, description="no expected data can be missing before this moment (None: check)")
    reopened_at: dt.datetime | None = Field(default=None, description="when a closed (注销) enterprise was in business again, or its "
                                                                "revoked licence in force again: routine sampling and inspection fall due "
                                                                "from then, not from before the closure or the revocation")
    resumed_at: dt.datetime | None = Field(default=None, description="when a stopped (停产) enterprise produced again: routine sampling "
                                                                "falls due from then (the stopped months are no lateness)")

    @property
    def current(self) -> GradeEntry | None:
        return self.history[-1] if self.history else None


def as_of(file: "CreditFile") -> dt.datetime | None:
    """The file's own clock: its latest event time, or a later clock.tick."""
    last, tick = file.last_event_at, file.risk.tick_at
    if tick is None or (last is not None and last >= tick):
        return last
    return tick


# --------------------------------------------------------------------------- inputs


def _add(entries: list[Entry], entry: Entry) -> None:
    if not entries or entries[-1] <= entry:
        entries.append(entry)
    else:
        bisect.insort(entries, entry)


def _drop(entries: list[Entry], factor: str, ref: str) -> bool:
    kept = [e for e in entries if not (e[1] == factor and e[4] == ref)]
    if len(kept) == len(entries):
        return False
    entries[:] = kept
    return True


SCORE_INPUTS = 1
"""``observe`` flag: something the score is computed from changed."""
INSPECTED = 2
"""``observe`` flag: an inspection happened (the next one is due from it)."""


def observe(file: "CreditFile", event: "Envelope", effects: list["Effect"], rules: "Rules") -> int:
    """Record what this event (and the effects it produced) adds to the risk inputs.

    Returns flags (``SCORE_INPUTS``, ``INSPECTED``) that let ``evaluate`` skip what cannot have changed.
    """
    rs = file.risk
    changed = 0
    et = event.event_type
    if et == "sampling.result":
        day = event.payload.sampled_on
        record = file.samples[-1]  # the handler has just filed the sample, with its id as text
        if record.superseded_as in _FILED_ASIDE:
            pass  # a sample on file already, sent again (or another lab's under its number): no new sampling
        elif rs.last_sampled_on is None or day >= rs.last_sampled_on:
            rs.last_sampled_on, rs.last_sample_event_id = day, record.event_id
    elif et == "inspection.completed":
        record = file.inspections[-1]  # the handler has just filed it
        if record.superseded_as is None:  # (else a repeat, or an earlier record arriving late: the inspection on file stands)
            eid = record.event_id
            plan = rules.policy.risk.plan_inspection_kinds
            if record.corrects is not None:
                # one inspection, one entry: the corrected record's result and findings weigh instead of the replaced one's
                if _drop(rs.entries, "inspection", record.inspection_id):
                    changed |= SCORE_INPUTS
                changed |= INSPECTED  # (the correction may change its kind or time, or the replaced one's was the plan's)
                was = rs.last_inspected_at
                _last_inspected(file, plan)
                if rs.last_inspected_at != was:
                    # the date in force before the last move was counted from the inspection the correction moved or
                    # un-counted (a routine one resent as 跟踪检查): kept, a better grade could not take the plan back
                    rs.due_before_move = None
                rs.check_missing_at = None  # (its time may have moved earlier: so may the next inspection's due date)
            elif record.kind in plan:
                # only the plan's kinds move the plan: a 跟踪检查 or 验收检查 checks one matter, not what the routine one covers
                changed = INSPECTED
                if rs.last_inspected_at is None or event.occurred_at >= rs.last_inspected_at:
                    rs.last_inspected_at, rs.last_inspection_event_id = event.occurred_at, eid
            ip = rules.policy.risk.dynamic.inspection
            points = ip.result.get(record.result, 0.0) + sum(ip.finding.get(f.severity, 0.0) for f in record.findings)
            if points > 0:
                _add(rs.entries, (record.occurred_at, "inspection", float(points), eid, record.inspection_id))
                changed |= SCORE_INPUTS
    elif et in ("enterprise.registered", "enterprise.updated", "campaign.assessment", "campaign.retracted"):  # (an assessment sets the campaign tier, a retraction may undo it)
        if file.profile is not None:
            # the evidence of each term is the event that set it: an acceptance sets the tier, not the category
            eid = event_key(event)
            if not et.startswith("campaign."):
                rs.profile_event_id = eid
            # the tier's evidence: the event that made the tier in force what it is (a failed acceptance leaves it,
            # a registration after an acceptance does not undo it: processors.campaign.apply_tier)
            if file.profile.campaign_tier != rs.tier_cited or rs.tier_event_id is None:
                rs.tier_event_id, rs.tier_cited = eid, file.profile.campaign_tier
        changed |= SCORE_INPUTS
    complaint = et in ("complaint.received", "complaint.resolved", "complaint.withdrawn")
    if not effects:
        return changed | (_complaint_chart_points(file, rules) if complaint else 0)
    pol = rules.policy.risk
    dyn = pol.dynamic
    for eff in effects:
        k = eff.kind
        if k in ("sampling.failed", "judgement.lab_failed_passed"):
            # (the lab's failure of an item qrisk passes is the report's 不合格: SampleJudgement.counted)
            record = file.sample_by_event(eff.data["sample_event_id"])
            if record is None or record.judgement is None:
                continue
            # one sample, one entry: a failed re-test confirms the failure already counted, and an
            # original whose re-test was not admitted replaces the re-test's entry
            _failed_entry(file, rs.entries, record, dyn)
            changed |= SCORE_INPUTS
        elif k == "sampling.corrected":
            d = eff.data
            if d.get("counts") and d.get("verdict") == "fail":
                # a failure corrected into another failure raises nothing new: its entry now rests on the
                # corrected report (its failed items' class may weigh otherwise)
                record = file.sample_by_event(d["sample_event_id"])
                if record is not None and record.judgement is not None:
                    _failed_entry(file, rs.entries, record, dyn)
                    changed |= SCORE_INPUTS
            if d.get("counts"):
                # the signals the replaced report raised: its values are no longer the enterprise's (the series were
                # built again from the corrected ones, which signal anew if they still lie out)
                kept = [e for e in rs.entries if not (e[1] == "fluctuation_signal" and e[3] == d["corrects_event_id"])]
                if len(kept) != len(rs.entries):
                    rs.entries[:] = kept
                    changed |= SCORE_INPUTS
            if rs.last_sample_event_id == d["corrects_event_id"]:
                _last_sampled(file)  # the latest sample was corrected (its sampling date perhaps with it)
        elif k == "fluctuation.signal_withdrawn":
            if eff.data.get("scope") == "category":
                continue  # the county's chart: it scored nothing here (its signal is skipped below), so nothing goes
            if _drop(rs.entries, "fluctuation_signal", f"{_CHART_ZH.get(eff.data.get('chart'), eff.data.get('chart'))} {eff.data.get('period', '')}"):
                changed |= SCORE_INPUTS
        elif k == "sampling.overturned":
            if _drop(rs.entries, "sampling_failed", eff.data["sample_no"]):
                changed |= SCORE_INPUTS
        elif k == "sampling.retracted":
            # the bureau took the sample's reports off the file: its failure is forgotten, as after a passing re-test,
            # and the latest sampling is the latest report still on file
            if _drop(rs.entries, "sampling_failed", eff.data["sample_no"]):
                changed |= SCORE_INPUTS
            # the signals its reports raised: the sample is another enterprise's, its points are not this one's
            reports = set(eff.data.get("reports", ()))
            kept = [e for e in rs.entries if not (e[1] == "fluctuation_signal" and e[3] in reports)]
            if len(kept) != len(rs.entries):
                rs.entries[:] = kept
                changed |= SCORE_INPUTS
            if rs.last_sample_event_id in eff.data.get("reports", ()):
                _last_sampled(file)
                rs.check_missing_at = None  # the next sampling is due from an earlier one now: the bound no longer holds
        elif k == "fluctuation.signal":
            d = eff.data
            if d.get("scope") == "category" or d.get("note"):
                continue  # the county's chart: not this enterprise's record; a note (a detection after non-detects): no signal
            # what a supervisor reads in the grade's reasons: the product and item, or the chart and period
            if d.get("series"):
                ref = f"{d.get('product', '')}·{d.get('item_name') or d.get('item_code', '')}"
                if _episode_scored(file, d, ref, eff.occurred_at, rules) or failure_says_it(file, d, eff.event_id):
                    continue
            else:
                ref = f"{_CHART_ZH.get(d.get('chart'), d.get('chart'))} {d.get('period', '')}"
            # (a baseline point said when a later batch froze the limits rests on that point's report: a correction or
            # retraction of it takes the points away; said again when the freezing report is corrected, it is the same
            # finding about the same report, scored once)
            rests = d.get("rests_on_event_ids") or (eff.event_id,)
            if d.get("rests_on_event_ids") and any(e[1] == "fluctuation_signal" and e[3] == rests[0] and e[4] == ref for e in rs.entries):
                continue
            _add(rs.entries, (eff.occurred_at, "fluctuation_signal", float(dyn.fluctuation_signal.points), rests[0], ref))
            changed |= SCORE_INPUTS
        elif k == "complaint.verified":
            if eff.data.get("category") not in dyn.complaint_verified.categories:
                continue  # (a price or service complaint found 属实 says nothing of the food's risk)
            _add(rs.entries, (eff.occurred_at, "complaint_verified", float(dyn.complaint_verified.points), eff.event_id, eff.data["complaint_id"]))
            changed |= SCORE_INPUTS
        elif k == "complaint.repeated" and eff.data.get("category_corrected"):
            # its category corrected: its points are as the corrected category gives them — at its verification, by the
            # event that verified it, as had it been filed so (a 碎玻璃渣 complaint filed 其他 scored nothing)
            cid = eff.data["complaint_id"]
            record = file.complaint(cid)
            had = any(e[1] == "complaint_verified" and e[4] == cid for e in rs.entries)
            counts = record is not None and record.verified and record.category in dyn.complaint_verified.categories
            if had and not counts:
                _drop(rs.entries, "complaint_verified", cid)
                changed |= SCORE_INPUTS
            elif counts and not had:
                assert record is not None
                by_resolution = record.resolved_at is not None and record.resolved_at >= record.received_at and not record.verified_at_receipt
                at, eid = ((record.resolved_at, record.resolution_event_id or record.event_id) if by_resolution
                           else (record.received_at, record.event_id))
                _add(rs.entries, (at, "complaint_verified", float(dyn.complaint_verified.points), eid, cid))
                changed |= SCORE_INPUTS
        elif k in ("complaint.unverified", "complaint.withdrawn"):
            # found untrue after all, or withdrawn (filed under the wrong enterprise, or twice): its points go (whichever event
            # applied the resolution)
            cid = eff.data["complaint_id"]
            kept = [e for e in rs.entries if not (e[1] == "complaint_verified" and e[4] == cid)]
            if len(kept) != len(rs.entries):
                rs.entries[:] = kept
                changed |= SCORE_INPUTS
        elif k == "rectification.overdue" and eff.data.get("again"):
            # late once more, by the redo deadline (重新限期): one lateness of one rectification weighs as one — its dynamic
            # entry is there while it is undone (put back if it left the window), and no second credit entry is made
            rid = eff.data["rectification_id"]
            if not any(e[1] == "rectification_overdue" and e[4] == rid for e in rs.entries):
                at, order = _overdue_from(file, eff, rules)
                _add(rs.entries, (at, "rectification_overdue", float(dyn.rectification_overdue.points), order, rid))
                changed |= SCORE_INPUTS
        elif k == "rectification.overdue":
            rid = eff.data["rectification_id"]
            at, order = _overdue_from(file, eff, rules)
            _add(rs.entries, (at, "rectification_overdue", float(dyn.rectification_overdue.points), order, rid))
            _add(rs.credit_entries, (at, "rectification_overdue", float(pol.credit.rectification_overdue), order, rid))
            changed |= SCORE_INPUTS
        elif k == "rectification.overdue_withdrawn":
            # completed in time after all (its record arrived late): the overdue points go
            rid = eff.data["rectification_id"]
            if _drop(rs.entries, "rectification_overdue", rid) | _drop(rs.credit_entries, "rectification_overdue", rid):
                changed |= SCORE_INPUTS
        elif k == "enforcement.decided":
            # the heaviest penalty decides; the reference says which, so the grade's reasons explain the points
            by_penalty = dyn.enforcement.by_penalty
            kinds = eff.data["penalties"]
            heaviest = max(kinds, key=lambda kind: (by_penalty.get(kind, 0.0), _PENALTY_RANK.get(kind, 0)))
            points = by_penalty.get(heaviest, 0.0)
            ref = f"{eff.data['decision_no']}（最重处罚{PENALTY_ZH.get(heaviest, heaviest)}，计 {points:g} 分）"  # (“罚款 6 分” read as a fine of 6 points)
            _add(rs.entries, (legal_moment(eff.data["decided_on"], eff.occurred_at, rules), "enforcement", float(points), eff.event_id, ref))
            changed |= SCORE_INPUTS  # (also a listing as 严重违法失信, which overrides the score)
        elif k == "enforcement.revoked":
            # revoked (行政复议, 行政诉讼, 自行纠正): the decision weighs no more, and a listing it made ends with it
            decision = eff.data["decision_event_id"]
            kept = [e for e in rs.entries if not (e[1] == "enforcement" and e[3] == decision)]
            if len(kept) != len(rs.entries) or eff.data.get("listing_ended"):
                rs.entries[:] = kept
                changed |= SCORE_INPUTS
        elif k == "enforcement.listing_removed":
            # removed early (信用修复): the decision keeps its points, only the listing's D ends
            changed |= SCORE_INPUTS
        elif k == "interview.held":
            _add(rs.entries, (legal_moment(eff.data["held_on"], eff.occurred_at, rules), "interview", float(dyn.interview.points), eff.event_id,
                              eff.data["interview_id"]))
            changed |= SCORE_INPUTS
        elif k == "interview.corrected":
            # one interview, one entry, counted from the corrected record's day
            _drop(rs.entries, "interview", eff.data["interview_id"])
            _add(rs.entries, (legal_moment(eff.data["held_on"], eff.occurred_at, rules), "interview", float(dyn.interview.points), eff.event_id,
                              eff.data["interview_id"]))
            changed |= SCORE_INPUTS
        elif k == "rectification.rejected":
            rid = eff.data["rectification_id"]
            _add(rs.credit_entries, (eff.occurred_at, "rectification_rejected", float(pol.credit.rectification_rejected), eff.event_id, rid))
            if still_overdue(file, rid) and not any(e[1] == "rectification_overdue" and e[4] == rid for e in rs.entries):
                # overdue, handed in, and sent back: undone again, so its lateness weighs again (its entry left the
                # window while it awaited the re-check, or when the acceptance now reversed closed it)
                _add(rs.entries, (eff.occurred_at, "rectification_overdue", float(dyn.rectification_overdue.points), eff.event_id, rid))
            changed |= SCORE_INPUTS
    if complaint:
        changed |= _complaint_chart_points(file, rules)
    return changed


# the rules a single result beyond the limits fires by itself: its own point, or an average it dragged over
_ONE_POINT_RULES = frozenset({"rule1", "ewma", "ewma_near_limit", "spec", "cusum_upper", "cusum_lower"})


def failure_says_it(file: "CreditFile", d: dict[str, Any], event_id: str) -> bool:
    """An item series' signal fired by the very result that fails the item: the failure's alert and its points
    say it already.  Alerting and scoring it too made one failed batch two alerts and two score entries (质量波动 +2
    beside 抽检不合格 +12).  A run rule (a shift over several batches) says more than the failure, and stands."""
    fired = {sg.get("rule") for sg in d.get("signals") or ()} | {d.get("rule")}
    fired.discard(None)
    if not fired or not fired <= _ONE_POINT_RULES:
        return False
    # (the point's own report: a later point a correction brought out carries it, the correction's event does not)
    record = file.sample_by_event(d.get("sample_event_id") or event_id)
    j = record.judgement if record is not None else None
    return j is not None and any(i.item_code == d.get("item_code") and i.verdict == "fail" for i in j.items)


def _episode_scored(file: "CreditFile", d: dict[str, Any], ref: str, at: dt.datetime, rules: "Rules") -> bool:
    """An item series' signal that continues an episode already scored: no new entry.

    A shift in a series is one finding, not one per batch.  The limits stay frozen after the shift, so
    every later sample of the shifted process signals again (a bakery's counts that fell for good signal
    on every batch): scoring each signalling batch would score one change of level again and again up to
    the cap — four batches after one shift made 8 points, as much as four unrelated signals.  So a signal
    scores when its series re-armed: its previous point raised no signal (rules fired, a note aside), or
    the episode's last entry is a full period old (``spc.pass_rate_period``, a quarter: a shift that lasts
    scores once per period it lasts, as the pass-rate and complaint charts signal at most once per period;
    counted from the entry, not by the calendar, so that an episode crossing a quarter's end one month in
    does not score twice), or that entry left the window.  The warnings still come per batch; only the
    score counts the episode once.
    """
    series = file.fluctuation.series.get(d["series"])
    if series is None or not series.recent:
        return False
    recent = series.recent
    i = len(recent) - 1
    while i >= 0 and recent[i][0] != d.get("index"):
        i -= 1
    if i <= 0:
        return False  # (the point, or the one before it, is no longer in the series' recent points: score it)
    if not any(rule not in NOTE_RULES for rule in recent[i - 1][7]):
        return False  # re-armed: the previous sample of the series raised no signal
    since = _months_before(local_date(at, rules), 1 if rules.policy.spc.pass_rate_period == "month" else 3)
    return any(e[1] == "fluctuation_signal" and e[4] == ref and local_date(e[0], rules) > since for e in file.risk.entries)


def _months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier (the month's last day when it has no such day)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def _complaint_chart_points(file: "CreditFile", rules: "Rules") -> int:
    """The points of each complaint-chart (c chart) signal of the file, again: the signal scores while some
    complaint of its month (of the charted categories) is still being looked into and none of them is verified;
    else its entry stays with 0 points (kept, not dropped: the month's complaints may change again).

    Why: the chart counts complaints before anyone has looked into them, an early signal standing in for their
    outcome.  A verified complaint scores 3 on its own (``complaint_verified``); the chart's 2 on top counted
    the same complaint twice (two complaints, one 不属实 and one verified: 2 + 3, one real complaint).  So once one
    of the month's complaints is verified, its 3 points — more than the signal's 2, so verifying never lowers the
    score — carry the month and the signal leaves the score; once all are looked into, the outcome replaces the
    signal (all 不属实: withdrawn, ``fluctuation.signal_withdrawn``).  While none is verified and some are pending,
    the signal stands for them.  Returns ``SCORE_INPUTS`` when a signal's points changed."""
    rs = file.risk
    prefix = _C_REF
    at = [i for i, e in enumerate(rs.entries) if e[1] == "fluctuation_signal" and e[4].startswith(prefix)]
    if not at:
        return 0
    spc = rules.policy.spc
    charted = spc.complaint_chart_categories
    months = {rs.entries[i][4][len(prefix):] for i in at}
    pending: set[str] = set()
    verified: set[str] = set()
    for c in file.complaints:
        if c.category in charted:
            month = period_of(local_date(c.received_at, rules), "month")
            if month in months:
                if c.verified and c.category in rules.policy.risk.dynamic.complaint_verified.categories:
                    verified.add(month)  # (its own points carry the month)
                elif c.resolved_at is None:
                    pending.add(month)
    points = float(rules.policy.risk.dynamic.fluctuation_signal.points)
    changed = 0
    for i in at:
        e = rs.entries[i]
        month = e[4][len(prefix):]
        want = points if month in pending and month not in verified else 0.0
        if e[2] != want:
            rs.entries[i] = (e[0], e[1], want, e[3], e[4])
            changed = SCORE_INPUTS
    return changed


_FILED_ASIDE = frozenset({"repeated", "outdated", "other_lab", "unjudged", "retracted"})
"""Reports filed without counting as a sample of their own (``processors.credit_file.SupersededAs``)."""


def _failed_entry(file: "CreditFile", entries: list[Entry], record: Any, dyn: Any) -> None:
    """The sample's one ``sampling_failed`` entry, weighed by the worst class among the items it counts as failing on
    (``SampleJudgement.counted_failed_codes``), from ``record``; none for a failure qrisk alone finds
    (``SampleJudgement.counted``: the lab's report passed it, and a grade does not rest on a failure nobody issued —
    its alert asks the supervisor to take it up with the lab)."""
    j = record.judgement
    if j.counted != "fail":
        _drop(entries, "sampling_failed", record.sample_no)
        return
    classes = [failed_class(i) for i in j.items if i.verdict == "fail"]
    # the lab's 不合格 on items qrisk passes weighs beside qrisk's own: 铜绿假单胞菌 the lab failed next to an 电导率
    # qrisk fails is a pathogen's failure, not a quality index's
    classes += [failed_class(i) for i in j.lab_failures_passed()]
    classes += ["additive" for c in j.sum_checks if c.verdict == "fail"]
    by_class = dyn.sampling_failed.by_class
    points = max((by_class.get(c, dyn.sampling_failed.default) if c else dyn.sampling_failed.default) for c in classes) if classes else dyn.sampling_failed.default
    _drop(entries, "sampling_failed", record.sample_no)
    _add(entries, (_first_reported(file, record), "sampling_failed", float(points), record.event_id, record.sample_no))


_NOT_THE_FIRST_REPORT = frozenset({"repeated", "outdated", "other_lab", "retracted"})


def _first_reported(file: "CreditFile", record: Any) -> dt.datetime:
    """When the sample's failure was first reported: its earliest original report on file that counts (a corrected one
    included), not ``record``'s own time.  Dated from a correction or a re-test months later, the failure weighed in
    the 365-day window for those months more (a correction 8 months on: 20 months) and its explanation said 近 365 天
    of a sample more than a year old."""
    first = record.occurred_at
    # (the sample's own reports, from the file's index: a walk of every report on file cost a file with years of
    # sampling more per failure than a new one's)
    for s in file.reports_of(record.sample_no):
        if not s.retest and s.superseded_as not in _NOT_THE_FIRST_REPORT and s.occurred_at < first:
            first = s.occurred_at
    return first


def _last_sampled(file: "CreditFile") -> None:
    """The latest sampling date on file and its report, again from the samples (as ``observe`` keeps them
    one by one: the later filed wins a tie); reports filed aside or corrected do not count."""
    rs = file.risk
    last, eid = None, None
    for s in file.samples:
        if s.superseded_as in _FILED_ASIDE or s.superseded_as == "corrected":
            continue
        if last is None or s.sampled_on >= last:
            last, eid = s.sampled_on, s.event_id
    rs.last_sampled_on, rs.last_sample_event_id = last, eid


def still_overdue(file: "CreditFile", rectification_id: str) -> bool:
    """The rectification is overdue and not yet done (open, or rejected and to be redone)."""
    record = file.rectification(rectification_id)
    return record is not None and record.overdue and record.status in ("open", "rejected")


def undone_overdue(file: "CreditFile") -> set[str]:
    """The rectifications ``still_overdue`` says are, all at once: one pass over the file's rectifications (the latest
    record of an id counts, as ``CreditFile.rectification`` finds it) where a lookup per entry walked them again for
    each — on a file with years of rectifications, the largest cost of every event it received."""
    latest = {}
    for r in file.rectifications:
        latest[r.__dict__["rectification_id"]] = r.__dict__
    return {rid for rid, d in latest.items() if d["overdue"] and d["status"] in ("open", "rejected")}


def _last_inspected(file: "CreditFile", plan: list[str]) -> None:
    """The latest inspection of the plan's kinds (``risk.plan_inspection_kinds``) on file again, from the records that
    count (the later filed wins a tie, as ``observe`` keeps it)."""
    rs = file.risk
    last, eid = None, None
    for i in file.inspections:
        if i.superseded_by is None and i.kind in plan and (last is None or i.occurred_at >= last):
            last, eid = i.occurred_at, i.event_id
    rs.last_inspected_at, rs.last_inspection_event_id = last, eid


def legal_moment(day: str | dt.date, recorded: dt.datetime, rules: "Rules") -> dt.datetime:
    """When a decision or an interview counts from in the dynamic window: the start (local midnight) of its own date —
    decided_on, held_on, the legal date — not when it was recorded.  Counted from occurred_at, a decision of 2025-05-01
    recorded on 2026-07-05 weighed as 行政处罚 近 365 天 until 2027-07-05, two years after it was decided.  Never after
    ``recorded``: a grade does not rest on anything later than its as-of time (a log may hold a date after its record
    from before the door refused one)."""
    if isinstance(day, str):
        day = dt.date.fromisoformat(day)
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc) - in_hours(rules.policy.utc_offset_hours)
    return min(start, recorded)


def _overdue_from(file: "CreditFile", eff: "Effect", rules: "Rules") -> tuple[dt.datetime, str]:
    """When an overdue rectification weighs from, and the event behind it: the start (local midnight) of the day after
    its deadline in force ended (moved off a holiday: ``due_on``, ``redo_due_on``), never after the effect; and the
    order (rectification.ordered), not the event that noticed.  Dated and cited by the clock.tick that noticed, the
    points named a tick as their evidence, and after an outage of the ticks their 365-day and 3-year terms started
    days late."""
    record = file.rectification(eff.data["rectification_id"])
    if record is None:  # pragma: no cover  (the effect is made from the record on file)
        return eff.occurred_at, eff.event_id
    day = record.ends(dt.date.fromisoformat(eff.data["deadline"]))[0] + in_days(1)
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc) - in_hours(rules.policy.utc_offset_hours)
    return min(start, eff.occurred_at), record.event_id or eff.event_id


_PENALTY_RANK = {"other": 0, "warning": 1, "confiscation": 2, "fine": 3, "suspension": 4, "licence_revoked": 5}
"""Which penalty names a decision when two weigh the same in the policy: the heavier in law."""

_ADDITIVE_CLASSES = frozenset({"additive", "additive_not_permitted"})


def failed_class(item: Any) -> str | None:
    """The class a failed item (a judgement's ``ItemJudgement``) is weighed and graded by.

    For a food additive the rule in force decides, not the catalogue's fixed class: the
    same substance may be permitted with a limit under one GB 2760 edition and not
    permitted under the next (脱氢乙酸 in pastries from GB 2760-2024), so a failure under a
    ``not_permitted`` rule is ``additive_not_permitted`` and one under a limit is ``additive``.
    Other items keep the catalogue's class.
    """
    cls = item.item_class
    if cls in _ADDITIVE_CLASSES and item.kind is not None:
        return "additive_not_permitted" if item.kind == "not_permitted" else "additive"
    return cls


# --------------------------------------------------------------------------- the score


def _static_terms(profile: Any, pol: RiskPolicy) -> tuple[float, float, float]:
    s = pol.static
    category = s.category.get(profile.category, 0.0)
    scale = s.scale.get(profile.scale, 0.0)
    pop = profile.population_served
    if pop is None:
        population = s.population_unknown
    else:
        population = next((b.points for b in s.population_served if pop >= b.min), 0.0)
    return category, scale, population


def _caps(pol: RiskPolicy) -> dict[str, float]:
    d = pol.dynamic
    return {
        "sampling_failed": d.sampling_failed.cap, "fluctuation_signal": d.fluctuation_signal.cap,
        "complaint_verified": d.complaint_verified.cap, "inspection": d.inspection.cap,
        "rectification_overdue": d.rectification_overdue.cap, "enforcement": d.enforcement.cap, "interview": d.interview.cap,
    }


_CAPS: dict[int, tuple[RiskPolicy, dict[str, float]]] = {}
_WINDOWS: dict[int, tuple[RiskPolicy, dt.timedelta]] = {}


def _window(pol: RiskPolicy) -> dt.timedelta:
    hit = _WINDOWS.get(id(pol))
    if hit is None or hit[0] is not pol:
        hit = _WINDOWS[id(pol)] = (pol, in_days(pol.dynamic.window_days))
    return hit[1]


def _caps_of(pol: RiskPolicy) -> dict[str, float]:
    hit = _CAPS.get(id(pol))
    if hit is None or hit[0] is not pol:
        hit = _CAPS[id(pol)] = (pol, _caps(pol))
    return hit[1]


def _score(file: "CreditFile", pol: RiskPolicy, entries: list[Entry] | None = None,
           credit_entries: list[Entry] | None = None) -> tuple[float, float, float, float]:
    """(score, static, dynamic, credit), numbers only: the per-event fast path (``entries``, ``credit_entries``:
    other inputs than the file's, as they stood at an earlier moment)."""
    static = min(pol.static.max, sum(_static_terms(file.profile, pol)))
    raw: dict[str, float] = {}
    for entry in (file.risk.entries if entries is None else entries):
        raw[entry[1]] = raw.get(entry[1], 0.0) + entry[2]
    caps = _caps_of(pol)
    dynamic = min(pol.dynamic.max, sum(min(raw[f], caps[f]) for f in DYNAMIC_FACTORS if f in raw))
    credit_raw = pol.credit.campaign_tier.get(file.profile.campaign_tier, 0.0)
    credit_raw += sum(e[2] for e in (file.risk.credit_entries if credit_entries is None else credit_entries))
    credit = min(pol.credit.max, credit_raw)
    # floats even when nothing counts (sum of nothing is the int 0): a file restored from a snapshot holds
    # what validation makes of it, 0.0, and the same file must serialise alike folded live or restored
    static, dynamic, credit = round(float(static), 2), round(float(dynamic), 2), round(float(credit), 2)
    return round(static + dynamic + credit, 2), static, dynamic, credit


def explain(file: "CreditFile", pol: RiskPolicy, listing: tuple[Any, dt.date] | None | bool = True,
            by_policy: tuple[Any, dt.date | None] | None = None) -> list[Contribution]:
    """Every term of the score with the events behind it (the slow path: only when something changed).

    Terms sum to the score before the group caps (static.max, dynamic.max, credit.max);
    a group over its cap gets a last ``*.cap`` term with negative points, so the
    contributions always add up to the score.
    """
    rs = file.risk
    profile = file.profile
    out: list[Contribution] = []
    category, scale, population = _static_terms(profile, pol)
    pid = [rs.profile_event_id] if rs.profile_event_id else []
    pop_text = "未登记" if profile.population_served is None else f"{profile.population_served} 人"
    out += [
        Contribution(factor="static.category", label_zh=FACTOR_ZH["static.category"], points=category, raw=category,
                     detail_zh=CATEGORY_ZH.get(profile.category, profile.category), event_ids=pid),
        Contribution(factor="static.scale", label_zh=FACTOR_ZH["static.scale"], points=scale, raw=scale,
                     detail_zh=SCALE_ZH.get(profile.scale, profile.scale), event_ids=pid),
        Contribution(factor="static.population", label_zh=FACTOR_ZH["static.population"], points=population, raw=population,
                     detail_zh=pop_text, event_ids=pid),
    ]
    _group_cap(out, "static", category + scale + population, pol.static.max)
    caps = _caps_of(pol)
    groups: dict[str, list[Entry]] = {}
    resting: list[Entry] = []
    for entry in rs.entries:
        if entry[2] == 0 and entry[1] == "fluctuation_signal" and entry[4].startswith(_C_REF):
            resting.append(entry)  # a complaint chart's signal whose month a verified complaint scores (``_complaint_chart_points``)
            continue
        groups.setdefault(entry[1], []).append(entry)
    dyn_total = 0.0
    for factor in DYNAMIC_FACTORS:
        entries = groups.get(factor)
        rest = resting if factor == "fluctuation_signal" else []
        if not entries and not rest:
            continue
        entries = entries or []
        raw = sum((e[2] for e in entries), 0.0)  # 0.0, not 0, when empty: restored from a snapshot it reads 0.0
        points = min(raw, caps[factor])
        dyn_total += points
        detail = f"近 {pol.dynamic.window_days} 天 {len(entries)} {_UNIT_ZH.get(factor, '次')}（{_refs(entries)}）" if entries else ""
        ending = entries
        if factor == "rectification_overdue":
            # (one still undone weighs until it is done, not a year on: ``evaluate`` keeps it in the window)
            undone_ids = undone_overdue(file)
            ending = [e for e in entries if e[4] not in undone_ids]
            undone = list(dict.fromkeys(e[4] for e in entries if e[4] in undone_ids))
            if undone:
                detail += f"；{'、'.join(undone)} 仍未完成整改，完成前持续计入"
        if points < raw:
            detail += f"，按上限 {caps[factor]:g} 分计"
        if rest:
            # on record, at 0 points: the month's verified complaints score as 经核实投诉, not twice
            detail += ("；" if detail else "") + f"{_refs(rest)} 信号当月已有投诉核实属实，按经核实投诉计分，该信号不再重复计分"
        out.append(Contribution(factor=f"dynamic.{factor}", label_zh=FACTOR_ZH[f"dynamic.{factor}"], points=points, raw=raw,
                                count=len(entries), detail_zh=detail, event_ids=[e[3] for e in entries + rest],
                                weighs_until=ending[0][0] + _window(pol) if ending else None))
    _group_cap(out, "dynamic", dyn_total, pol.dynamic.max)
    tier = profile.campaign_tier
    tier_points = pol.credit.campaign_tier.get(tier, 0.0)
    out.append(Contribution(factor="credit.campaign_tier", label_zh=FACTOR_ZH["credit.campaign_tier"], points=tier_points, raw=tier_points,
                            detail_zh="未分档" if tier == "unrated" else f"{tier} 档",
                            event_ids=[rs.tier_event_id] if rs.tier_event_id else pid))
    credit_total = tier_points
    cgroups: dict[str, list[Entry]] = {}
    for entry in rs.credit_entries:
        cgroups.setdefault(entry[1], []).append(entry)
    for factor in CREDIT_FACTORS:
        entries = cgroups.get(factor)
        if not entries:
            continue
        raw = sum((e[2] for e in entries), 0.0)  # 0.0, not 0, when empty: restored from a snapshot it reads 0.0
        credit_total += raw
        refs = _refs(entries)
        out.append(Contribution(factor=f"credit.{factor}", label_zh=FACTOR_ZH[f"credit.{factor}"], points=raw, raw=raw, count=len(entries),
                                detail_zh=f"{f'近 {pol.credit.memory_years} 年' if pol.credit.memory_years else '累计'} {len(entries)} "
                                          f"{_UNIT_ZH.get(factor, '项')}（{refs}）", event_ids=[e[3] for e in entries],
                                weighs_until=_years_on(entries[0][0], pol.credit.memory_years) if pol.credit.memory_years else None))
    _group_cap(out, "credit", credit_total, pol.credit.max)
    # ``listing``: the decision whose listing holds at the grade's as-of day and its end (evaluate's); True,
    # the default for a caller without a day: the listing that runs longest (not file.serious_dishonesty, the latest
    # decided, which may have been removed early), if any
    if listing is True:
        years = pol.credit.serious_dishonesty_years
        listing = None
        if file.serious_dishonesty is not None:
            for r in file.enforcements:
                if r.serious_dishonesty and r.in_force and (listing is None or listing_end(r, years) > listing[1]):
                    listing = (r, listing_end(r, years))
    if listing:
        record, ends = listing  # type: ignore[misc]
        out.append(Contribution(factor="credit.serious_dishonesty", label_zh=FACTOR_ZH["credit.serious_dishonesty"], points=0.0, raw=0.0,
                                detail_zh=f"行政处罚决定书 {record.decision_no}，直接定为 D 级" + (f"（列入至 {ends.isoformat()}）" if ends else ""),
                                event_ids=[record.event_id]))
    elif by_policy is not None:
        entry, ends = by_policy
        detail = ("策略文件列入，未载明列入决定书与日期（请在策略 risk.credit.serious_dishonesty 中补全 decision_no、listed_on），直接定为 D 级"
                  if isinstance(entry, str) else
                  f"{entry.authority}列入决定书 {entry.decision_no}（{entry.listed_on.isoformat()}），直接定为 D 级（列入至 {ends.isoformat()}）")
        out.append(Contribution(factor="credit.serious_dishonesty", label_zh=FACTOR_ZH["credit.serious_dishonesty"], points=0.0, raw=0.0,
                                detail_zh=detail))
    return out


_CHART_ZH = {"p": "抽检不合格率", "c": "投诉数"}
_C_REF = f"{_CHART_ZH['c']} "
"""How a complaint-chart signal's risk entry is referenced (投诉数 2025-03)."""


# what a factor's references are, counted: sample numbers in 批, series in 个监测序列, …
_REF_UNIT_ZH = {"sampling_failed": "批", "fluctuation_signal": "个监测序列/图", "complaint_verified": "件", "inspection": "次",
                "rectification_overdue": "项", "rectification_rejected": "项", "enforcement": "件", "interview": "次"}


def _refs(entries: list[Entry], shown: int = 5) -> str:
    """What the entries are, each once, with how many times when more than once (a series that shifted twice in
    the window scores twice: "4 次（耗氧量、2025Q3、2025Q4）" named three for four)."""
    times: dict[str, int] = {}
    for e in entries:
        times[e[4]] = times.get(e[4], 0) + 1
    refs = list(times)
    text = "、".join(f"{r} {times[r]} 次" if times[r] > 1 else r for r in refs[:shown])
    return text + (f" 等，共 {len(refs)} {_REF_UNIT_ZH.get(entries[0][1], '项')}" if len(refs) > shown else "")


def _group_cap(out: list[Contribution], group: str, total: float, cap: float) -> None:
    if total > cap:
        out.append(Contribution(factor=f"{group}.cap", label_zh={"static": "静态因素上限", "dynamic": "动态因素上限", "credit": "信用因素上限"}[group],
                                points=round(cap - total, 2), raw=round(cap - total, 2), detail_zh=f"合计 {total:g} 分，按上限 {cap:g} 分计"))


# --------------------------------------------------------------------------- evaluation


def local_date(moment: dt.datetime, rules: "Rules") -> dt.date:
    return (moment + in_hours(rules.policy.utc_offset_hours)).date()


def next_inspection_due(file: "CreditFile", grade: Grade, rules: "Rules", moved_at: dt.datetime | None = None,
                        moved_from: Grade | None = None, before: dt.date | None = None) -> dt.date | None:
    """The last inspection (or, never inspected, the registration) plus the grade's interval, but no
    sooner than ``risk.regrade_grace_days`` after a change to a grade with a shorter interval (``moved_at``
    from ``moved_from``, ``before`` the due date in force until then; by default the file's last move):
    such a grade does not make an inspection due in the past — yet the grace never puts the due date after
    ``before``: an inspection already overdue before the change stays overdue (a grade flapping D→C→D gave
    30 days more at each return to D, an enterprise uninspected for 13 months not overdue).  A grade that
    lengthens the interval gets no grace: an inspection already overdue under the old grade (D's 4 months)
    is overdue under the new one (C's 6) if those have passed too; nor does it bring the due date forward:
    the date in force before (``before``, perhaps a worse grade's grace) stands when later than its own."""
    base = file.risk.last_inspected_at or file.registered_at
    if base is None or file.deregistered_on is not None or file.licence_revoked is not None:
        return None  # (closed, 注销, or the licence revoked, 吊销: no lawful production, no inspection falls due)
    if file.suspended_on is not None and not rules.policy.risk.inspect_while_suspended:
        return None  # (停产, and the bureau's policy does not inspect a stopped plant)
    reopened = file.risk.reopened_at
    if reopened is not None and reopened > base:
        base = reopened  # (the closed months are no lateness)
    pol = rules.policy.risk
    interval = pol.inspection_interval_days(grade)
    due = local_date(base, rules) + in_days(interval)
    if moved_at is None:
        moved_at, moved_from, before = file.risk.moved_at, _moved_from(file), file.risk.due_before_move
    if moved_at is not None and (moved_from is None or pol.inspection_interval_days(moved_from) > interval):
        grace = local_date(moved_at, rules) + in_days(pol.regrade_grace_days)
        due = max(due, grace if before is None else min(grace, before))
    elif moved_at is not None and before is not None and pol.inspection_interval_days(moved_from) < interval:  # type: ignore[arg-type]
        # a better grade never brings the inspection forward: the date in force (perhaps a worse grade's grace)
        # stands; else a withdrawn complaint taking D back to C made the inspection overdue months ago at once
        due = max(due, before)
    return due


def _moved_from(file: "CreditFile") -> Grade | None:
    """The grade before the file's last move (None: its first grade, or the move left the kept history)."""
    if file.risk.moved_from is not None:
        return file.risk.moved_from
    for entry in reversed(file.risk.history):
        if entry.grade != entry.previous:
            return entry.previous
    return None


def inspection_frequency(per_year: float) -> tuple[str, str]:
    """A minimum inspection frequency as people say it: 每年至少 2 次, and a fractional rate over
    whole years, never 每年至少 0.5 次: 0.5 → 每 2 年至少 1 次, 0.4 → 每 5 年至少 2 次, 1.5 → 每 2 年至少 3 次."""
    rate = Fraction(per_year).limit_denominator(12)
    times, years = rate.numerator, rate.denominator
    noun = "inspection" if times == 1 else "inspections"
    if years == 1:
        return f"每年至少 {times} 次", f"at least {times} {noun} a year"
    return f"每 {years} 年至少 {times} 次", f"at least {times} {noun} every {years} years"


def due_from_regrade(file: "CreditFile", rules: "Rules") -> bool:
    """The next inspection is due by the grace after the grade changed, not by the interval after the last."""
    rs = file.risk
    base = rs.last_inspected_at or file.registered_at
    if rs.grade is None or rs.moved_at is None or base is None or rs.next_inspection_due is None:
        return False
    return rs.next_inspection_due > local_date(base, rules) + in_days(rules.policy.risk.inspection_interval_days(rs.grade))


def _term_ends(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # listed on 29 February
        return dt.date(day.year + years, 3, 1)


def _years_on(moment: dt.datetime, years: int) -> dt.datetime:
    """``moment`` this many calendar years on (29 February: 1 March)."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, month=3, day=1)


def term_ends(decided_on: dt.date, years: int) -> dt.date:
    """When a listing as 严重违法失信 decided on ``decided_on`` ends."""
    return _term_ends(decided_on, years)


def listing_ends(file: "CreditFile", pol: RiskPolicy) -> dt.date | None:
    """The day the enterprise's listings as 严重违法失信 by decisions end: the latest term's end (each
    decision that lists it runs its own term from its date); None when no decision lists it."""
    if file.serious_dishonesty is None:
        return None
    years = pol.credit.serious_dishonesty_years
    ends = [listing_end(r, years) for r in file.enforcements if r.serious_dishonesty and r.in_force]
    return max(ends) if ends else None


def listing_end(record: Any, years: int) -> dt.date:
    """The day one decision's listing as 严重违法失信 ends: its term's end, or the day it was removed early
    (提前移出, 信用修复), whichever comes first."""
    ends = _term_ends(record.decided_on, years)
    removed = record.listing_removed_on
    return ends if removed is None or removed >= ends else removed


def listing_in_force(file: "CreditFile", today: dt.date, pol: RiskPolicy) -> tuple[Any, dt.date] | None:
    """The decision whose listing holds on ``today`` (the one that runs longest), with its end; else None."""
    if file.serious_dishonesty is None:
        return None
    years = pol.credit.serious_dishonesty_years
    best: tuple[Any, dt.date] | None = None
    for r in file.enforcements:
        if r.serious_dishonesty and r.in_force and r.decided_on <= today:
            ends = listing_end(r, years)
            if today < ends and (best is None or ends > best[1]):
                best = (r, ends)
    return best


def policy_listing(file: "CreditFile", today: dt.date, pol: RiskPolicy) -> tuple[Any, dt.date | None] | None:
    """The policy's listing of this enterprise in force on ``today`` with its end (None: a bare id, no end), else None."""
    best: tuple[Any, dt.date | None] | None = None
    for listing in pol.credit.serious_dishonesty:
        if isinstance(listing, str):
            if listing == file.enterprise_id:
                best = best or (listing, None)
        elif listing.enterprise_id == file.enterprise_id and listing.listed_on <= today:
            ends = _term_ends(listing.listed_on, pol.credit.serious_dishonesty_years)
            if today < ends and (best is None or best[1] is not None and ends > best[1]):
                best = (listing, ends)
    return best


def listed_by_decision(file: "CreditFile", today: dt.date, pol: RiskPolicy) -> bool:
    return listing_in_force(file, today, pol) is not None


def evaluate(file: "CreditFile", cause: "Envelope", rules: "Rules", changed: int = SCORE_INPUTS) -> GradeEntry | None:
    """Re-grade after ``cause``; returns the new history entry when the score, the grade or the
    evidence behind them changed.

    Without ``SCORE_INPUTS`` in ``changed`` (``observe`` saw nothing that moves the
    score) it takes the fast path: the window is pruned (which may change the score),
    an inspection moves the due date, and a grade held back from improving by the step
    limit moves on; nothing else is recomputed.  A grade held back from *worsening* moves
    on at the enterprise's next event, or else at the first clock tick once the hold has
    lasted ``risk.worsen_hold_days`` (7): with ticks every few minutes, moving on at any
    tick would make "at most one level per evaluation" no limit at all; never moving on at
    a tick left the grade (and the inspection plan that follows it) on the milder grade
    for months, until some unrelated event of the enterprise released it.  Without new
    events a grade so worsens by at most ``max_worsen`` levels per ``worsen_hold_days``.
    A grade improves by at most ``max_improve`` levels per ``improve_hold_days``, events or
    not: the first step towards the band is taken at once, the next once the last improvement
    is that old — by the dates, not by how many ticks or events came in between.  One
    evaluation takes all the steps the dates allowed since the last (``_steps``), each dated
    when allowed (``moved_at``): a log without ticks, read ``--as-of`` years on, grades as one
    that ticked daily.
    """
    pol = rules.policy.risk
    if file.profile is None or not pol.enabled:
        return None
    rs = file.risk
    if cause.enterprise_id == "*" and (rs.tick_at is None or cause.occurred_at > rs.tick_at):
        rs.tick_at = cause.occurred_at
    now = as_of(file)
    news = changed & SCORE_INPUTS  # (before pruning: an entry leaving the window is no new cause)
    tick = cause.enterprise_id == "*"
    last = rs.history[-1] if rs.history else None
    held_worse = last is not None and rs.grade is not None and last.held and _INDEX[last.band] > _INDEX[rs.grade]
    # the hold has lasted its period: a tick may move the grade on (a snapshot's entry from before
    # hold_since was kept: the hold counts from that entry's evaluation)
    hold_over = held_worse and now >= (last.hold_since or last.as_of) + in_days(pol.worsen_hold_days)  # type: ignore[union-attr]
    # the grade last moved towards A less than improve_hold_days ago: it improves no further yet, however many
    # evaluations (ticks every ten minutes, or an enterprise's busy week) come in the meantime
    improve_held = (rs.moved_from is not None and rs.grade is not None and rs.moved_at is not None
                    and _INDEX[rs.moved_from] > _INDEX[rs.grade] and now < rs.moved_at + in_days(pol.improve_hold_days))
    held_better = last is not None and rs.grade is not None and last.held and _INDEX[last.band] < _INDEX[rs.grade]
    entries = rs.entries
    # what left the score at this evaluation, with when it left: (moment, entry, credit?) — the moment the band got
    # better is one of these, and an improvement counts from it, not from when the log next ticked
    aged: list[tuple[dt.datetime, Entry, bool]] = []
    if entries:
        cutoff = now - _window(pol)
        if entries[0][0] < cutoff:
            cut = bisect.bisect_left(entries, (cutoff,))
            # an overdue rectification still not done weighs while it stays undone, not for a year from the day it
            # was found overdue: the lateness goes on.  Kept at the front (older than the window), so the check above
            # finds it each time; only what actually leaves is a change
            undone_ids = undone_overdue(file) if any(e[1] == "rectification_overdue" for e in entries[:cut]) else set()
            staying = [e for e in entries[:cut] if e[1] == "rectification_overdue" and e[4] in undone_ids]
            if len(staying) != cut:
                aged += [(e[0] + _window(pol), e, False) for e in entries[:cut] if e not in staying]
                entries[:cut] = staying
                changed |= SCORE_INPUTS
    credit = rs.credit_entries
    if credit and pol.credit.memory_years and _years_on(credit[0][0], pol.credit.memory_years) <= now:
        # a rejected or overdue rectification weighs for its term, then no more (信用修复): a minor failing weighed
        # longer than a listing as 严重违法失信, which ends three years on
        gone = sum(1 for e in credit if _years_on(e[0], pol.credit.memory_years) <= now)
        aged += [(_years_on(e[0], pol.credit.memory_years), e, True) for e in credit[:gone]]
        del credit[:gone]
        changed |= SCORE_INPUTS
    # (the local day only when a listing asks: this runs after every event)
    in_force = listing_in_force(file, local_date(now, rules), pol) if file.serious_dishonesty is not None else None
    by_decision = in_force is not None
    by_policy = policy_listing(file, local_date(now, rules), pol) if pol.credit.serious_dishonesty else None
    was_listed = bool(rs.history) and rs.history[-1].override == "serious_dishonesty"
    if was_listed != (by_decision or by_policy is not None):
        # a listing ended (three years on: the score decides again) or began (a policy listing from its listed_on,
        # which no event of the enterprise announces)
        changed |= SCORE_INPUTS
    if not changed & SCORE_INPUTS and rs.grade is not None and rs.history and (
            not rs.history[-1].held or (tick and held_worse and not hold_over) or (held_better and improve_held)):
        if changed & INSPECTED:
            rs.next_inspection_due = next_inspection_due(file, rs.grade, rules)
        return None
    score, static, dynamic, credit = _score(file, pol)
    listed = by_decision or by_policy is not None
    override = "serious_dishonesty" if listed else None
    band = "D" if override else pol.band(score)
    previous = rs.grade
    grade = band
    expired = False
    # each move (when, to which grade): one evaluation takes every step the dates allowed since the last one, each
    # dated when it was allowed, so the grade and when it moved are the same whether the log ticked daily or not
    steps: list[tuple[dt.datetime, Grade]] = []
    if band != previous:
        if previous is None or override is not None:
            steps = [(now, band)]
        else:
            steps = _steps(file, rules, previous, band, now, last, aged, not tick or bool(news), was_listed and not listed,
                           held_worse, held_better)
            expired = bool(steps) and held_worse and tick and not news  # (moved on by the hold's dates alone)
            grade = steps[-1][1] if steps else previous
    due = before = rs.next_inspection_due
    if steps and changed & INSPECTED and previous is not None:
        # the date in force was counted from the plan's inspection as it stood; this event moved or un-counted it
        due = before = next_inspection_due(file, previous, rules)
    if steps:
        for at, to in steps:  # (each step's grace and the date it keeps, as one evaluation per step would)
            before_step, due = due, next_inspection_due(file, to, rules, moved_at=at, moved_from=previous, before=due)
            previous_step, previous = previous, to
        previous, before = rs.grade, before_step
        rs.next_inspection_due = due
    elif changed & INSPECTED or due is None:
        due = next_inspection_due(file, grade, rules)
        if due != rs.next_inspection_due:
            rs.next_inspection_due = due
    if score == rs.score and grade == previous and not changed & SCORE_INPUTS:
        return None  # only the due date moved, or a held grade stayed held
    # a new entry also when only the evidence changed (a further failure under a saturated cap):
    # the current entry must name every event behind the grade
    entry = GradeEntry(
        as_of=now, cause_event_id=event_key(cause), score=score, static=static, dynamic=dynamic, credit=credit,
        band=band, grade=grade, previous=previous, held=grade != band, override=override, next_inspection_due=due,
        contributions=explain(file, pol, in_force, by_policy),
    )
    _hold(entry, last if held_worse else None, expired, news and not tick, file, cause, rules, steps[-1][0] if steps else None)
    rs.history.append(entry)
    if len(rs.history) > pol.history_max:
        del rs.history[: len(rs.history) - pol.history_max]
    if grade != previous:
        rs.moved_at, rs.moved_from, rs.due_before_move = steps[-1][0], previous_step, before
        rs.check_missing_at = None  # intervals follow the grade
    rs.grade, rs.score = grade, score
    return entry


def _steps(file: "CreditFile", rules: "Rules", previous: Grade, band: Grade, now: dt.datetime, last: GradeEntry | None,
           aged: list[tuple[dt.datetime, Entry, bool]], event: bool, unlisted: bool, held_worse: bool,
           held_better: bool) -> list[tuple[dt.datetime, Grade]]:
    """The moves from ``previous`` towards ``band`` this evaluation makes, each with the moment it was allowed.

    Worsening: a grade held back moves on ``max_worsen`` levels each full ``worsen_hold_days`` since the hold began
    (towards the band as it stood before this event), and an event of the enterprise (or a tick that found something
    new) moves it once more, now.  Improving: the first step is taken when the band got better than the grade — now
    for an event, else the moment the listing ended or what lowered the score left its window — but no sooner than
    ``improve_hold_days`` after the last improvement; each further step ``improve_hold_days`` after the one before.
    One step per evaluation made the grade follow how often the log ticked: D took three years and more to fall to A
    after a listing ended in a log without ticks (``qrisk risk --as-of``), two weeks with daily ticks."""
    rs, pol = file.risk, rules.policy.risk
    pi, bi = _INDEX[previous], _INDEX[band]
    gi = pi
    steps: list[tuple[dt.datetime, Grade]] = []
    settle = in_days(pol.hold_days) if pol.hold_days else None
    if bi > pi:
        every = in_days(max(pol.worsen_hold_days, pol.hold_days))
        if held_worse and last is not None:
            # (as far as the band stood before this event: what it raised moves the grade by the event's own step)
            cap = min(bi, _INDEX[last.band]) if event else bi
            at = (last.hold_since or last.as_of) + every
            while gi < cap and at <= now:
                gi = min(cap, gi + pol.max_worsen)
                steps.append((at, GRADES[gi]))
                at += every
        moved = steps[-1][0] if steps else rs.moved_at
        if event and gi < bi and not (settle and moved is not None and now < moved + settle):
            gi = min(bi, gi + pol.max_worsen)
            steps.append((now, GRADES[gi]))
        return steps
    every = in_days(max(pol.improve_hold_days, pol.hold_days))
    if held_better and last is not None:
        began = last.as_of  # (the band was better already then)
    elif aged or unlisted:
        began = _band_improved(file, rules, previous, now, aged, unlisted)
    else:
        began = now
    improved = rs.moved_from is not None and rs.moved_at is not None and _INDEX[rs.moved_from] > pi
    if improved:
        began = max(began, rs.moved_at + every)  # type: ignore[operator]
    elif settle and rs.moved_at is not None:
        began = max(began, rs.moved_at + settle)
    at = began
    while gi > bi and at <= now:
        gi = max(bi, gi - pol.max_improve)
        steps.append((at, GRADES[gi]))
        at += every
    return steps


def _band_improved(file: "CreditFile", rules: "Rules", grade: Grade, now: dt.datetime, aged: list[tuple[dt.datetime, Entry, bool]],
                   unlisted: bool) -> dt.datetime:
    """The first moment since the last evaluation the band was better than ``grade``: when a listing ended, or
    when the entry that took it below the grade left the score (``aged``: what left at this evaluation, and when)."""
    pol = rules.policy.risk
    ended = None
    if unlisted:
        years, today = pol.credit.serious_dishonesty_years, local_date(now, rules)
        ends = [listing_end(r, years) for r in file.enforcements if r.serious_dishonesty and r.in_force]  # (one removed early ended then)
        ends += [_term_ends(x.listed_on, years) for x in pol.credit.serious_dishonesty
                 if not isinstance(x, str) and x.enterprise_id == file.enterprise_id]
        ends = [d for d in ends if d <= today]
        if not ends:
            return now  # (the listing ended by an event: a decision revoked, the policy changed)
        day = max(ends)
        ended = max(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc) - in_hours(rules.policy.utc_offset_hours),
                    file.risk.history[-1].as_of if file.risk.history else now)
    moments = sorted({m for m, _, _ in aged} | ({ended} if ended is not None else set()))
    for m in moments:
        if ended is not None and m < ended:
            continue  # still listed: D
        # (as the inputs stood at m: what had left by then gone, what came after it not yet there)
        entries = [e for e in file.risk.entries if e[0] <= m] + [e for at, e, credit in aged if not credit and at > m]
        credit = [e for e in file.risk.credit_entries if e[0] <= m] + [e for at, e, credit in aged if credit and at > m]
        if _INDEX[pol.band(_score(file, pol, entries, credit)[0])] < _INDEX[grade]:
            return m
    return now


def _cause_zh(file: "CreditFile", cause: "Envelope", rules: "Rules") -> str:
    """The event that raised the band, as a supervisor reads it: its day and what it added to the score
    (现场检查问题（JC2）), else its type."""
    eid = event_key(cause)
    day = local_date(cause.occurred_at, rules).isoformat()
    mine = [e for e in file.risk.entries if e[3] == eid] + [e for e in file.risk.credit_entries if e[3] == eid]
    if not mine and cause.enterprise_id == "*" and file.risk.history:
        # a tick finds rectifications overdue, whose points cite their orders (``_overdue_from``): those that came
        # since the last evaluation are what it raised
        since = file.risk.history[-1].as_of
        mine = [e for e in file.risk.entries if e[1] == "rectification_overdue" and since < e[0] <= cause.occurred_at]
    if mine:
        mine.sort(key=lambda e: -e[2])
        seen = dict.fromkeys(f"{FACTOR_ZH.get('dynamic.' + e[1], FACTOR_ZH.get('credit.' + e[1], e[1]))}（{e[4]}）" for e in mine)
        return f"{day} {'、'.join(seen)}"
    return f"{day} {EVENT_TYPE_ZH.get(cause.event_type, cause.event_type)}"


def _hold(entry: GradeEntry, last: GradeEntry | None, expired: bool, raised: int, file: "CreditFile", cause: "Envelope",
          rules: "Rules", moved_at: dt.datetime | None = None) -> None:
    """The hold fields of a new entry. ``last``: the previous entry when it held the grade back from worsening;
    ``raised``: this event changed the score's inputs (a tick never does)."""
    pol = rules.policy.risk
    parts = []
    if expired and last is not None:
        entry.hold_expired = True
        since = last.hold_since or last.as_of
        entry.hold_since, entry.hold_cause_event_id, entry.hold_cause_zh = since, last.hold_cause_event_id, last.hold_cause_zh
        parts.append(f"暂定 {entry.previous} 级已满 {pol.worsen_hold_days} 天（自 {local_date(since, rules).isoformat()} 起；"
                     f"起因：{last.hold_cause_zh or last.hold_cause_event_id or '此前的评定'}），期间无新情况，"
                     f"按分值 {entry.score:g}（对应 {entry.band} 级）调整为 {entry.grade} 级")
    if entry.override is None and _INDEX[entry.band] > _INDEX[entry.grade]:
        # the cause stays the event that raised the band above the grade: a later event that did not raise it
        # (a passing sample, an entry leaving the window) is no cause
        if last is not None and (last.hold_cause_event_id or last.hold_cause_zh) and not (raised and _INDEX[entry.band] > _INDEX[last.band]):
            entry.hold_cause_event_id, entry.hold_cause_zh = last.hold_cause_event_id, last.hold_cause_zh
        else:
            entry.hold_cause_event_id, entry.hold_cause_zh = event_key(cause), _cause_zh(file, cause, rules)
        entry.hold_since = (last.hold_since or last.as_of) if last is not None and entry.grade == last.grade else (moved_at or entry.as_of)
        offset = in_hours(rules.policy.utc_offset_hours)
        moved = file.risk.moved_at  # (the last move before this entry)
        if pol.hold_days and moved is not None and entry.grade == entry.previous and entry.as_of < moved + in_days(pol.hold_days):
            kept = moved + in_days(pol.hold_days) + offset  # held by risk.hold_days, not by the step limit
            parts.append(f"分值 {entry.score:g} 对应 {entry.band} 级（起因：{entry.hold_cause_zh}）；等级变动后至少保持 {pol.hold_days} 天，"
                         f"{kept:%Y-%m-%d %H:%M} 前暂定 {entry.grade} 级")
        else:
            ends = entry.hold_since + in_days(pol.worsen_hold_days) + offset
            parts.append(f"分值 {entry.score:g} 对应 {entry.band} 级（起因：{entry.hold_cause_zh}）；每次评定最多上升 {pol.max_worsen} 级，"
                         f"暂定 {entry.grade} 级；如无新情况，满 {pol.worsen_hold_days} 天（{ends:%Y-%m-%d %H:%M}）后的定时评定按分值调整")
    elif entry.override is None and _INDEX[entry.band] < _INDEX[entry.grade]:
        # held back from improving: by the improvement hold after a move towards A, or by risk.hold_days after any move
        rs = file.risk
        moved_now = entry.grade != entry.previous
        moved = (moved_at or entry.as_of) if moved_now else rs.moved_at  # (rs: as before this entry)
        came_from = entry.previous if moved_now else rs.moved_from
        improved = came_from is not None and _INDEX[came_from] > _INDEX[entry.grade]
        waits = ([pol.improve_hold_days] if improved else []) + ([pol.hold_days] if pol.hold_days else [])
        if moved is not None and waits:
            kept = moved + in_days(max(waits)) + in_hours(rules.policy.utc_offset_hours)
            why = (f"风险等级降低（向 A 级调整）后须保持 {pol.improve_hold_days} 天才可再降低（每次最多 {pol.max_improve} 级）"
                   if improved and pol.improve_hold_days >= pol.hold_days else f"等级变动后至少保持 {pol.hold_days} 天")
            parts.append(f"分值 {entry.score:g} 对应 {entry.band} 级；{why}，暂定 {entry.grade} 级；"
                         f"如无新情况，{kept:%Y-%m-%d %H:%M} 后的评定按分值调整")
    entry.hold_zh = "；".join(parts)


def graded_data(entry: GradeEntry) -> dict[str, Any]:
    """A ``risk.graded`` effect's data: the entry as JSON (built by hand: this runs on every score change)."""
    return {
        "as_of": _iso(entry.as_of), "cause_event_id": entry.cause_event_id, "score": entry.score, "static": entry.static,
        "dynamic": entry.dynamic, "credit": entry.credit, "band": entry.band, "grade": entry.grade, "previous": entry.previous,
        "grade_changed": entry.grade != entry.previous, "held": entry.held, "override": entry.override,
        "hold_since": _iso(entry.hold_since) if entry.hold_since else None, "hold_cause_event_id": entry.hold_cause_event_id,
        "hold_expired": entry.hold_expired, "hold_zh": entry.hold_zh,
        "next_inspection_due": entry.next_inspection_due.isoformat() if entry.next_inspection_due else None,
        "contributions": [{"factor": c.factor, "label_zh": c.label_zh, "points": c.points, "raw": c.raw, "count": c.count,
                           "detail_zh": c.detail_zh, "event_ids": list(c.event_ids),
                           **({"weighs_until": _iso(c.weighs_until)} if c.weighs_until is not None else {})} for c in entry.contributions],
    }


def _iso(moment: dt.datetime) -> str:
    """As pydantic writes an aware UTC datetime in JSON mode."""
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def check_missing(file: "CreditFile", rules: "Rules") -> list[dict[str, Any]]:
    """Expected data that did not come: no sample / no inspection within the interval the grade requires.

    Raised once per gap (keyed by the date of the last data), by the as-of time.
    """
    rs = file.risk
    if rs.grade is None or file.profile is None or file.registered_at is None:
        return []
    if file.licence_revoked is not None or file.deregistered_on is not None:
        return []  # no licence, or closed (注销): no lawful production, routine sampling and inspection are no longer due
    now = as_of(file)
    if rs.check_missing_at is not None and now < rs.check_missing_at:
        return []  # new data only moves due dates later: this bound stays valid until the grade changes
    pol = rules.policy.risk
    today = local_date(now, rules)
    registered = local_date(file.registered_at, rules)
    out: list[dict[str, Any]] = []
    interval = pol.sampling_interval_days[rs.grade]
    base = _sampling_base(file, rules)
    due = base + in_days(interval)
    # (停产: nothing is produced, so no sample is awaited; due again one interval after it resumes)
    if file.suspended_on is None and today > due and rs.missing.get("sampling") != base.isoformat():
        rs.missing["sampling"] = base.isoformat()
        out.append({"what": "sampling", "last": rs.last_sampled_on.isoformat() if rs.last_sampled_on else None, "base": base.isoformat(),
                    "interval_days": interval, "due": due.isoformat(), "grade": rs.grade, "days_late": (today - due).days,
                    "last_event_id": rs.last_sample_event_id})
    due = rs.next_inspection_due
    if due is not None and today > due:
        base = local_date(rs.last_inspected_at, rules) if rs.last_inspected_at else registered
        if rs.reopened_at is not None:
            base = max(base, local_date(rs.reopened_at, rules))
        if rs.missing.get("inspection") != base.isoformat():
            rs.missing["inspection"] = base.isoformat()
            gap = {"what": "inspection", "last": local_date(rs.last_inspected_at, rules).isoformat() if rs.last_inspected_at else None,
                   "base": base.isoformat(), "interval_days": pol.inspection_interval_days(rs.grade), "due": due.isoformat(),
                   "grade": rs.grade, "days_late": (today - due).days, "last_event_id": rs.last_inspection_event_id}
            if due_from_regrade(file, rules):  # due by the grace after the grade changed, not by the interval
                # (the move whose grace it is: a later better grade keeps that date, and is not the move that gave it)
                on = next((local_date(h.as_of, rules) for h in reversed(rs.history) if h.previous is not None and h.grade != h.previous
                           and local_date(h.as_of, rules) + in_days(pol.regrade_grace_days) == due), None)
                gap["regraded_on"], gap["grace_days"] = (on or local_date(rs.moved_at, rules)).isoformat(), pol.regrade_grace_days  # type: ignore[arg-type]
            out.append(gap)
    # nothing new can be missing before the local day after the earliest due date still ahead
    # until new data or a new grade (which reset it), nothing new can be missing before
    # the local day after the earliest due date still ahead
    dues = (None if file.suspended_on is not None else _sampling_base(file, rules) + in_days(interval), rs.next_inspection_due)
    ahead = [d for d in dues if d is not None and d >= today]
    if ahead:
        first = min(ahead) + in_days(1)
        rs.check_missing_at = dt.datetime(first.year, first.month, first.day, tzinfo=dt.timezone.utc) - in_hours(rules.policy.utc_offset_hours)
    else:
        rs.check_missing_at = _NEVER
    return out


def _sampling_base(file: "CreditFile", rules: "Rules") -> dt.date:
    """The day routine sampling is due one interval after: the last sample, or registration; a reopening (注销 undone, a
    licence back) or a resumption after 停产 later than it starts the plan afresh."""
    rs = file.risk
    base = rs.last_sampled_on or local_date(file.registered_at, rules)  # type: ignore[arg-type]
    for since in (rs.reopened_at, rs.resumed_at):
        if since is not None:
            base = max(base, local_date(since, rules))
    return base


def filled_gaps(file: "CreditFile", event: "Envelope", rules: "Rules") -> list[dict[str, Any]]:
    """Gaps raised by ``check_missing`` that this event's sample or inspection fills (call after ``observe``).

    A gap is filled when the last data moves past the date it was raised for; it leaves
    ``missing`` then, so it is filled once, and the alert it opened can be resolved.
    """
    rs = file.risk
    if not rs.missing:
        return []
    et = event.event_type
    if et == "enterprise.updated" and file.deregistered_on is not None and getattr(event.payload, "status", None) == "deregistered":
        # closed (注销): as a revoked licence, nothing routine is awaited any more and every gap closes with it
        gaps = [{"what": what, "base": base, "ref": "注销", "on": file.deregistered_on.isoformat(), "event_id": event_key(event),
                 "deregistered": True} for what, base in sorted(rs.missing.items())]
        rs.missing.clear()
        return gaps
    if et == "enterprise.updated" and file.suspended_on is not None and getattr(event.payload, "status", None) == "suspended":
        # stopped (停产): no sample is awaited, nor an inspection when the policy does not inspect a stopped plant
        stopped = [w for w in ("sampling", "inspection") if w in rs.missing
                   and (w == "sampling" or not rules.policy.risk.inspect_while_suspended)]
        gaps = [{"what": what, "base": rs.missing.pop(what), "ref": "停产", "on": file.suspended_on.isoformat(), "event_id": event_key(event),
                 "suspended": True} for what in stopped]
        return gaps
    if et == "enforcement.decided" and file.licence_revoked == event.payload.decision_no:
        # the decision that revoked the licence: nothing routine is awaited any more, every gap closes with it
        gaps = [{"what": what, "base": base, "ref": event.payload.decision_no, "on": event.payload.decided_on.isoformat(),
                 "event_id": event_key(event), "licence_revoked": True} for what, base in sorted(rs.missing.items())]
        rs.missing.clear()
        return gaps
    if et == "sampling.result" and "sampling" in rs.missing and rs.last_sampled_on is not None:
        last = rs.last_sampled_on
        if last.isoformat() > rs.missing["sampling"] and rs.last_sample_event_id == event_key(event):
            base = rs.missing.pop("sampling")
            rs.check_missing_at = None  # the next gap is due from this sample: the bound (perhaps "never") no longer holds
            return [{"what": "sampling", "base": base, "ref": event.payload.sample_no, "on": last.isoformat(),
                     "event_id": rs.last_sample_event_id}]
    elif et == "inspection.completed" and "inspection" in rs.missing and rs.last_inspected_at is not None:
        last = local_date(rs.last_inspected_at, rules)
        if last.isoformat() > rs.missing["inspection"] and rs.last_inspection_event_id == event_key(event):
            base = rs.missing.pop("inspection")
            rs.check_missing_at = None
            return [{"what": "inspection", "base": base, "ref": event.payload.inspection_id, "on": last.isoformat(),
                     "event_id": rs.last_inspection_event_id}]
    return []


# --------------------------------------------------------------------------- ranking


def reasons_zh(entry: GradeEntry | None, limit: int = 5, before: GradeEntry | None = None) -> list[str]:
    """The terms that made the score, largest first, as sentences; with ``before`` (the previous
    evaluation), the terms that grew since come first and say by how much: why the grade moved."""
    if entry is None:
        return []
    terms = [c for c in entry.contributions if c.points > 0 or c.factor == "credit.serious_dishonesty"]
    grown: dict[str, float] = {}
    if before is not None:
        was = {c.factor: c.points for c in before.contributions}
        grown = {c.factor: c.points - was.get(c.factor, 0.0) for c in terms if c.points > was.get(c.factor, 0.0)}
    # what changed, then what the enterprise did (dynamic), then its record (credit), then what it is (static)
    order = {"dynamic": 0, "credit": 1, "static": 2}
    terms.sort(key=lambda c: (c.factor != "credit.serious_dishonesty", c.factor not in grown, order.get(c.factor.split(".")[0], 3), -c.points, c.factor))
    out = []
    if entry.hold_zh:
        out.append(entry.hold_zh)  # held back from worsening (since when, by what, until when), or moved on as the hold expired
    elif entry.held:
        out.append(f"分值 {entry.score:g} 对应 {entry.band} 级；每次评定最多变动规定级数，暂定 {entry.grade} 级")
    for c in terms[:limit]:
        if c.factor == "credit.serious_dishonesty":
            out.append(f"{c.label_zh}：{c.detail_zh}")
        elif c.factor in grown:
            out.append(f"{c.label_zh} +{c.points:g}（{c.detail_zh}；较上次评定 +{grown[c.factor]:g}）")
        else:
            out.append(f"{c.label_zh} +{c.points:g}（{c.detail_zh}）")
    return out


def rank(state: "CountyState", as_of: dt.datetime | dt.date) -> list[dict[str, Any]]:
    """Every enterprise, riskiest first: grade (D first), then score, then id.

    ``[{"enterprise_id", "score", "grade", "next_due", "reasons"}]``; an enterprise
    whose inspection is past due as of ``as_of`` says so first in its reasons.  The
    state must be folded from events up to ``as_of`` (see ``qrisk.backtest.state_as_of``).
    """
    day = as_of if not isinstance(as_of, dt.datetime) else as_of.date()
    rows = []
    for eid, file in state.files.items():
        rs = file.risk
        if rs.grade is None:
            rows.append({"enterprise_id": eid, "score": None, "grade": None, "next_due": None,
                         "reasons": ["未登记企业信息（缺少食品类别），无法分级"]})
            continue
        if file.deregistered_on is not None and file.deregistered_on <= day:
            # closed (注销): nobody to inspect; listed last, its grade as it was
            rows.append({"enterprise_id": eid, "score": rs.score, "grade": rs.grade, "next_due": None,
                         "reasons": [f"已注销（{file.deregistered_on.isoformat()}），不再安排日常抽检和检查"],
                         "deregistered_on": file.deregistered_on.isoformat()})
            continue
        if file.licence_revoked is not None:
            # no licence (吊销): it may not produce at all, so no inspection is planned or overdue; listed with the closed
            rows.append({"enterprise_id": eid, "score": rs.score, "grade": rs.grade, "next_due": None,
                         "reasons": [f"许可证已吊销（决定书 {file.licence_revoked}），不再安排日常抽检和检查"],
                         "licence_revoked": file.licence_revoked})
            continue
        reasons = reasons_zh(rs.current)
        due = rs.next_inspection_due
        if due is not None and due < day:
            reasons.insert(0, f"现场检查已逾期：应于 {due.isoformat()} 前检查（{rs.grade} 级）")
        stopped = file.suspended_on is not None and file.suspended_on <= day
        if stopped:
            # (still on the register and graded; only routine sampling waits for production to resume)
            reasons.insert(0, f"停产（{file.suspended_on.isoformat()} 起），暂停日常抽检" + ("" if due is not None else "和检查"))  # type: ignore[union-attr]
        rows.append({"enterprise_id": eid, "score": rs.score, "grade": rs.grade,
                     "next_due": due.isoformat() if due else None, "reasons": reasons,
                     **({"suspended_on": file.suspended_on.isoformat()} if stopped else {})})  # type: ignore[union-attr]
    rows.sort(key=lambda r: ("deregistered_on" in r or "licence_revoked" in r, r["grade"] is None, -_INDEX.get(r["grade"], -1), -(r["score"] or 0.0), r["enterprise_id"]))
    return rows
