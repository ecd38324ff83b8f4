"""Policy: thresholds and windows a bureau may change without touching code.

The default lives in ``qrisk/policy.default.yaml``; ``qrisk run --policy FILE``
replaces it.  Validated strictly so a typo in a key is an error, not a silent
default.
"""
from __future__ import annotations

import datetime as dt
import string
from typing import Annotated, Any, ClassVar, Container, Iterable, Literal, get_args
from urllib.parse import urlsplit

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, NonNegativeFloat, PrivateAttr, field_validator, model_validator

from schemas.events import ComplaintReceived, PenaltyKind
from schemas.standards import ItemClass


class _Strict(BaseModel):
    # validate_default: a default written 40 is then 40.0 as the same figure read from a policy file is; an int
    # left in a float field reached the grade's terms, and a state restored from its snapshot printed 40.0
    # allow_inf_nan: no threshold, weight or limit of a policy is infinite or NaN — a NaN compares false with everything
    # (a band of .nan graded every score up to the next band A) and crashed the fold where it became a day count
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


ComplaintCategory = Literal["foreign_matter", "spoilage", "illness", "labelling", "taste_odour", "hygiene", "other"]
QUALITY_COMPLAINTS: tuple[ComplaintCategory, ...] = ("foreign_matter", "spoilage", "illness", "labelling", "taste_odour", "hygiene")
"""Complaint categories about the food itself: not ``other``, where price, delivery and service complaints go (水价上涨未告知,
送水不及时，态度差) — true or not, they say nothing of a batch, so no on-site check of the same batch and no risk points."""


class ComplaintClusterPolicy(_Strict):
    k: int = Field(default=3, ge=2, description="verified complaints …")
    window_days: int = Field(default=30, ge=1, le=3660, description="… within this many days form a cluster")
    categories: list[ComplaintCategory] = Field(
        default_factory=lambda: list(QUALITY_COMPLAINTS), min_length=1,
        description="… of these categories (by default every one but other: a verified price or service complaint is no "
                    "reason to inspect the plant and check the same batch)")


class ComplaintBurstPolicy(_Strict):
    """快速反应: complaints received close together about one enterprise, verified or not — the early warning the
    投诉聚集 (verified complaints) and the monthly chart (a calendar month) give too late or not at all: five consumers
    complaining of one batch from 03-30 to 04-02 fall into two months and are verified weeks later."""

    k: int = Field(default=3, ge=2, description="complaints received …")
    window_days: int = Field(default=7, ge=1, le=90, description="… within this many days (any such window, not calendar weeks) alert")
    categories: list[ComplaintCategory] = Field(
        default_factory=lambda: list(QUALITY_COMPLAINTS), min_length=1,
        description="… of these categories (by default not other: price, delivery, service); one found 不属实 no longer counts")


class ComplaintDuplicatesPolicy(_Strict):
    """One complaint sent through two channels (12315 and 来信, a day apart, the same words) under two complaint numbers
    counts twice — on the chart, in a 投诉集中, in a 投诉聚集.  The door says so to the sender (``complaint_possible_duplicate``), and
    the 投诉集中 or 投诉聚集 alert to the supervisor (``possible_duplicates``): one notion, ``schemas.duplicates``."""

    within_days: int = Field(default=7, ge=0, le=90, description="a complaint received within this many days of another of the same "
                                                                 "enterprise under another number … (0: not checked)")
    min_similarity: float = Field(default=0.9, gt=0, le=1, description="… whose text is this alike (difflib's ratio, after spaces "
                                                                       "and punctuation are set aside; 1: the same) is said to repeat it …")
    min_chars: int = Field(default=20, ge=1, le=4000, description="… when the texts hold at least this many characters (spaces and "
                                                                  "punctuation aside): 桶装水有异味 said by two consumers in a week is no "
                                                                  "sign of one complaint; a caller's account of what, when and where is")


class RetestPolicy(_Strict):
    """复检 (re-test of the retained half of a sample).  《食品安全抽样检验管理办法》 admits no re-test
    when the conclusion is a failure on microbiological indicators: microbes in the retained half
    have grown or died since, so a second count says nothing about the first."""

    inadmissible_item_classes: list[ItemClass] = Field(
        default_factory=lambda: ["pathogen", "indicator_microbe"],
        description="a failure on an item of these classes is not re-tested: a re-test result does not change it")
    result_within_days: int | None = Field(
        default=45, ge=1, le=3660,
        description="calendar days from the original result to the re-test's result, beyond which the re-test is not admitted. "
                    "An approximation of working days (食品安全法 第八十八条 and the sampling rules): 7 to ask, the bureau's acceptance "
                    "(about 5, to check), 5 to choose the re-test lab (10 when extended), the transfer of the backup sample (to check) "
                    "and 10 for the re-test: about 30 working days, some 42 calendar days without a holiday (a Spring Festival or "
                    "National Day week adds 7-9), so check a re-test refused as late, or raise the window. None: no check")
    institutions: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list,
        description="复检机构名录: the re-test labs the bureau admits — a lab system's CMA number (its key's source id) or a "
                    "lab's name as printed (for a re-test an importer or the bureau posts).  Empty (the default): any other "
                    "lab than the first may re-test, and a passing 复检 leaves the failure's alert open for a supervisor to check "
                    "(any lab key could post one).  Set, a re-test by a lab not listed is not admitted (not_listed), and a "
                    "passing one by a listed lab closes the alert")


class LabTurnaround(_Strict):
    """Time limits the bureau agreed with one lab (另有约定): a field left out keeps the county's."""

    to_lab_working_days: int | None = Field(default=None, ge=1, le=60)
    report_working_days: int | None = Field(default=None, ge=1, le=120)


class SamplingTurnaroundPolicy(_Strict):
    """The statutory time limits of supervision sampling, in working days (the working-day calendar,
    ``schemas/standards/calendar/working_days.yaml``).  《食品安全抽样检验管理办法》: the sample reaches the lab
    within 5 working days of sampling (送样), and the lab reports within 20 working days of receiving it
    (检验报告), unless the bureau agreed otherwise with the lab.  Each original report is judged once, when the
    sample's first report comes; a re-test is not (its clock is ``retest``'s).  A late report is said
    (``sampling.sent_late``, ``sampling.report_late``) and listed in the registers, for the bureau's oversight
    of its labs: no risk point against the enterprise, no alert to its supervisor."""

    enabled: bool = True
    to_lab_working_days: int = Field(default=5, ge=1, le=60, description="sampling date → the lab's receipt (收样日期), at most")
    report_working_days: int = Field(default=20, ge=1, le=120, description="receipt → the report's local date (occurred_at), at most")
    labs: dict[Annotated[str, Field(min_length=1, max_length=200)], LabTurnaround] = Field(
        default_factory=dict,
        description="limits agreed with a lab, by its name as its report prints it or its lab system's CMA number (its key's "
                    "source id); the CMA number is looked up first")

    def limits(self, lab: str, lab_id: str | None) -> tuple[int, int]:
        """(to the lab, the report) in working days for a report of ``lab`` (sent by the lab system ``lab_id``)."""
        agreed = (self.labs.get(lab_id) if lab_id is not None else None) or self.labs.get(lab)
        to_lab = agreed.to_lab_working_days if agreed is not None and agreed.to_lab_working_days is not None else self.to_lab_working_days
        report = agreed.report_working_days if agreed is not None and agreed.report_working_days is not None else self.report_working_days
        return to_lab, report


class ComplaintLimits(_Strict):
    """投诉 (kind complaint), 《市场监督管理投诉举报处理暂行办法》: accepted or not (受理或者不予受理) within 7 working days of
    receipt, and mediation ended (终止调解) when no agreement is reached within 45 working days of acceptance."""

    accept_working_days: int = Field(default=7, ge=1, le=60, description="receipt → the decision to accept it or not, at most")
    mediate_working_days: int = Field(default=45, ge=1, le=250, description="acceptance (accepted_on) → its conclusion, at most")
    chase_acceptance: bool = Field(
        default=True, description="an open 投诉 with no acceptance decision (complaint.accepted) past accept_working_days says "
                                  "complaint.overdue for its accept limit.  Off for a county whose complaint system sends no "
                                  "acceptances (every open 投诉 would be chased): the acceptance is then judged from the conclusion only")
    chase_acceptance_from: dt.date | None = Field(
        default=None, description="the day chase_acceptance took effect (YYYY-MM-DD, received on or after it: chased): a 投诉 received "
                                  "before it is not chased, its acceptance judged from the conclusion only, as before — so turning "
                                  "the chase on later does not rewrite the history a refold of the log rebuilds.  Absent: every 投诉")

    def chased(self, received_on: dt.date) -> bool:
        """Whether an open 投诉 received on ``received_on`` is chased for its acceptance decision."""
        return self.chase_acceptance and (self.chase_acceptance_from is None or received_on >= self.chase_acceptance_from)


class ReportLimits(_Strict):
    """举报 (kind report), 《市场监督管理行政处罚程序规定》: the clue checked (核查) and the decision whether to open a case
    (立案) made within 15 working days of receipt; in special cases, with the head's approval, 15 more."""

    check_working_days: int = Field(default=15, ge=1, le=120, description="receipt → its conclusion, at most")
    extension_working_days: int = Field(default=15, ge=0, le=120, description="more with the head's approval (complaint.resolved extended)")


class ComplaintDeadlinesPolicy(_Strict):
    """The statutory time limits of complaints and reports (投诉举报办理时限), in working days on the working-day calendar
    (``schemas/standards/calendar/working_days.yaml``), counted from the local date of complaint.received's occurred_at.
    The clock of the fold passing a limit with no conclusion (complaint.resolved) says ``complaint.overdue`` once per
    limit; a conclusion after a limit is marked 超期办结 on the complaint.  The bureau's own timeliness, which it is
    examined on and a 行政复议 turns on: no risk point against the enterprise (warnings.complaint_overdue tells the town)."""

    enabled: bool = True
    complaint: ComplaintLimits = ComplaintLimits()
    report: ReportLimits = ReportLimits()


REFERENCE_FAILURE_RATE = {"packaged_water": 0.019, "pastry": 0.020, "other": 0.0296}
"""Supervisory sampling failure rates: beverages ~1.9 % and pastries ~2.0 % (SAMR, 2019 H2), the
national overall 2.96 % (2024) for the rest."""


class SpcPolicy(_Strict):
    """Fluctuation detection (质量波动).  Supervision samples are sparse (about one a
    month per producer), so the baseline is shorter than the textbook's 20-25."""

    baseline: int = Field(default=8, ge=2, description="results that estimate an item's limits (phase I)")
    rules: dict[Literal["i", "p", "c"], list[int]] = Field(
        default_factory=lambda: {"i": [1], "p": [1], "c": [1]},
        description="run rules per chart kind: 1-4 Western Electric, 5-8 Nelson; few rules, few false alarms "
                    "(each rule and detector run at once adds its own: with rules 1, 2, 4, the EWMA and the CUSUM "
                    "on an 8-point baseline, one in five in-control series signalled within 12 results)",
    )
    detectors: list[Literal["ewma", "cusum"]] = Field(
        default_factory=lambda: ["ewma"],
        description="the detectors of small sustained shifts run on each measured item beside the run rules: the EWMA, "
                    "the tabular CUSUM, both or neither (the EWMA is followed for the check against the legal maximum "
                    "whatever this says)")
    estimated_limits: bool = Field(
        default=True,
        description="widen an item's limits for parameters estimated from `baseline` points: centre ± t(ν)·σ̂·√(1+1/m), "
                    "ν = 0.68(m−1)+0.9 for σ̂ from moving ranges (5.4 σ̂ at m = 8), at the one-sided 0.135 % of 3σ, "
                    "and the EWMA's by the centre's variance, (1−(1−λ)^i)²·σ̂²/m at its i-th point; "
                    "false: 3σ̂ as if centre and σ were known")
    ewma_lambda: float = Field(default=0.2, gt=0, le=1)
    ewma_L: float = Field(default=3.0, gt=0)
    cusum_k: float = Field(default=0.5, ge=0)
    cusum_h: float = Field(default=5.0, gt=0)
    cpk_min: float = Field(default=1.0, ge=0, description="早发现: capability against the legal maximum below this")
    cpk_min_points: int = Field(
        default=25, ge=2,
        description="capability (Cpk) is judged only on at least this many in-control results: the baseline's, then "
                    "later results no chart flagged.  Cpk from 8 results has a standard error near 0.4 (Bissell); "
                    "a phase I study asks for 20-25 (Montgomery)")
    cpk_ewma_margin: float = Field(
        default=2.0, ge=0,
        description="capability is judged on the EWMA of recent results: Cpk below cpk_min is said only when the EWMA is above "
                    "the level where Cpk = cpk_min by this many of its own standard deviations (σ·√(λ/(2−λ))), so that the "
                    "EWMA's noise is not read as a fall in capability (0: any excursion; a process at Cpk 1.33 was then said "
                    "to be below 1 within 60 results one time in four)")
    nd_share_max: float = Field(
        default=0.5, ge=0, le=1,
        description="a baseline with a larger share of results not detected is not charted against control limits: "
                    "half the detection limit stands for too many of its points (US EPA QA/G-9: substitution for a "
                    "small share of non-detects only), and its σ comes from a few detections among ties")
    nd_detection_note: bool = Field(
        default=True,
        description="such a series notes a result detected after at least `baseline` results in a row not detected "
                    "(以往连续 N 批均未检出，本批检出), as information, not as 'above the past level'")
    ewma_fraction: float = Field(default=0.8, gt=0, le=1, description="早发现: the EWMA reaches this fraction of the legal maximum "
                                                                       "(in a series mostly not detected, also a single result)")
    reference_failure_rate: dict[Literal["packaged_water", "pastry", "other"], Annotated[float, Field(gt=0, lt=1)]] = Field(
        default_factory=lambda: dict(REFERENCE_FAILURE_RATE),
        description="sampling failure rate per food category the pass-rate charts (and the campaign's provincial average) compare "
                    "with; other: any category not listed.  A single number (older policy files) is every category's")
    pass_rate_period: Literal["month", "quarter"] = "quarter"
    category_min_enterprises: int = Field(
        default=2, ge=1, description="the county's pass-rate chart of a category (本县…类) signals only when the period's failures "
                                     "come from at least this many enterprises: one producer's failures are its own chart's signal, "
                                     "not a county-wide problem")
    complaints_per_month: float = Field(default=0.3, gt=0, description="expected complaints per producer per month (c chart centre)")
    complaint_chart_categories: list[ComplaintCategory] = Field(
        default_factory=lambda: list(QUALITY_COMPLAINTS),
        description="complaint categories the complaints-per-month (c) chart counts: by default not other, where delivery and "
                    "service complaints go — a quality fluctuation chart must not signal on 送水不及时")
    series_window: int = Field(default=30, ge=5, le=500, description="recent points kept per series as evidence")
    evidence_days: int = Field(default=45, ge=1, le=3660, description="events this close to a signal are listed with it")

    @field_validator("reference_failure_rate", mode="before")
    @classmethod
    def _one_rate_for_all(cls, value: object) -> object:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return {"packaged_water": value, "pastry": value, "other": value}
        if isinstance(value, dict) and "other" not in value:
            return {**value, "other": REFERENCE_FAILURE_RATE["other"]}
        return value

    def reference_failure(self, category: str | None) -> float:
        """The reference failure rate of a food category (``other`` for one not listed)."""
        rates = self.reference_failure_rate
        return rates.get(category, rates["other"]) if category is not None else rates["other"]  # type: ignore[call-overload]


# --------------------------------------------------------------------------- risk grading

Grade = Literal["A", "B", "C", "D"]
GRADES: tuple[Grade, ...] = ("A", "B", "C", "D")
"""Best to worst (风险等级 A 低 … D 高)."""

ItemClassName = Literal["pathogen", "indicator_microbe", "additive_not_permitted", "additive", "contaminant", "chemical", "quality_index"]


class PopulationBand(_Strict):
    min: int = Field(ge=0, description="population served at least this many …")
    points: float = Field(ge=0, description="… scores this")


class StaticFactors(_Strict):
    """静态风险因素: what the enterprise is, not what it did."""

    max: float = Field(default=40, ge=0, description="static factors together score at most this")
    category: dict[Literal["packaged_water", "pastry", "other"], NonNegativeFloat] = Field(
        default_factory=lambda: {"packaged_water": 20.0, "pastry": 16.0, "other": 12.0},
        description="food category (食品类别); a category not listed scores 0")
    scale: dict[Literal["micro", "small", "medium", "large"], NonNegativeFloat] = Field(
        default_factory=lambda: {"micro": 4.0, "small": 6.0, "medium": 8.0, "large": 10.0}, description="production scale (生产规模)")
    population_served: list[PopulationBand] = Field(
        default_factory=lambda: [PopulationBand(min=50_000, points=10), PopulationBand(min=20_000, points=7),
                                 PopulationBand(min=5_000, points=4), PopulationBand(min=0, points=2)],
        description="the first band (largest minimum first) the population reaches")
    population_unknown: float = Field(default=2, ge=0, description="population served not registered")

    @model_validator(mode="after")
    def _bands_descending(self) -> "StaticFactors":
        mins = [b.min for b in self.population_served]
        if mins != sorted(mins, reverse=True) or len(set(mins)) != len(mins):
            raise ValueError("population_served bands must be listed with strictly decreasing min")
        return self


class CappedPoints(_Strict):
    points: float = Field(ge=0, description="per occurrence within the window")
    cap: float = Field(ge=0, description="this factor scores at most this")


class SignalPoints(CappedPoints):
    points: float = Field(default=2, ge=0, description="per signal episode: an item series signalling batch after batch scores once "
                                                      "until it re-arms (a batch without a signal) or the episode has lasted a "
                                                      "spc.pass_rate_period; the pass-rate and complaint charts once per period")
    cap: float = Field(default=8, ge=0)


class ComplaintPoints(CappedPoints):
    points: float = Field(default=3, ge=0)
    cap: float = Field(default=12, ge=0)
    categories: list[ComplaintCategory] = Field(
        default_factory=lambda: list(QUALITY_COMPLAINTS), min_length=1,
        description="verified complaints of these categories score (by default not other: a price or service complaint "
                    "found 属实 says nothing of the food's risk)")


class OverduePoints(CappedPoints):
    points: float = Field(default=6, ge=0)
    cap: float = Field(default=18, ge=0)


class SamplingFailurePoints(_Strict):
    by_class: dict[ItemClassName, NonNegativeFloat] = Field(
        default_factory=lambda: {"pathogen": 15.0, "additive_not_permitted": 15.0, "contaminant": 12.0, "indicator_microbe": 8.0,
                                 "additive": 8.0, "chemical": 6.0, "quality_index": 4.0},
        description="an unqualified sample scores the weight of its worst failed item's class")
    default: float = Field(default=8, ge=0, description="a failed item whose class is unknown")
    cap: float = Field(default=40, ge=0)


class InspectionPoints(_Strict):
    result: dict[Literal["符合", "基本符合", "不符合"], NonNegativeFloat] = Field(default_factory=lambda: {"符合": 0.0, "基本符合": 2.0, "不符合": 8.0})
    finding: dict[Literal["minor", "major", "critical"], NonNegativeFloat] = Field(default_factory=lambda: {"minor": 0.0, "major": 2.0, "critical": 5.0})
    cap: float = Field(default=16, ge=0)


class EnforcementPoints(_Strict):
    by_penalty: dict[PenaltyKind, NonNegativeFloat] = Field(
        default_factory=lambda: {"warning": 4.0, "fine": 6.0, "confiscation": 6.0, "other": 4.0, "suspension": 12.0, "licence_revoked": 20.0},
        description="a 行政处罚决定 scores the weight of its heaviest penalty (a kind not listed scores 0)")
    cap: float = Field(default=20, ge=0)


class InterviewPoints(CappedPoints):
    points: float = Field(default=4, ge=0)
    cap: float = Field(default=8, ge=0)


class DynamicFactors(_Strict):
    """动态风险因素: what happened within the window (by event time)."""

    max: float = Field(default=40, ge=0)
    window_days: int = Field(default=365, ge=1, le=3660, description="events older than this (before the as-of time) no longer count")
    sampling_failed: SamplingFailurePoints = SamplingFailurePoints()
    fluctuation_signal: SignalPoints = SignalPoints()
    complaint_verified: ComplaintPoints = ComplaintPoints()
    inspection: InspectionPoints = InspectionPoints()
    rectification_overdue: OverduePoints = OverduePoints()
    enforcement: EnforcementPoints = EnforcementPoints()
    interview: InterviewPoints = InterviewPoints()


class PolicyListing(_Strict):
    """A listing as 严重违法失信 that no enforcement.decided in the log made (another authority's decision, or one
    before qrisk): with its decision and date, so that the grade can cite them and the listing ends on time."""

    enterprise_id: str = Field(min_length=1, max_length=64)
    decision_no: str = Field(min_length=1, max_length=200, description="列入严重违法失信名单决定书文号")
    listed_on: dt.date = Field(description="列入日期: the listing ends serious_dishonesty_years after it")
    authority: str = Field(default="", max_length=200, description="作出列入决定的机关")


class CreditFactors(_Strict):
    """信用状况: the long memory (years, not only the dynamic window)."""

    max: float = Field(default=20, ge=0)
    campaign_tier: dict[Literal["A", "B", "C", "D", "unrated"], NonNegativeFloat] = Field(
        default_factory=lambda: {"A": 0.0, "B": 4.0, "C": 8.0, "D": 12.0, "unrated": 6.0}, description="提档升级 tier at survey")
    rectification_rejected: float = Field(default=4, ge=0, description="each rectification rejected at verification (整改复查未通过)")
    rectification_overdue: float = Field(default=2, ge=0, description="each rectification past its deadline, for memory_years")
    memory_years: int = Field(
        default=3, ge=0, le=50, description="a rejected or overdue rectification weighs for this many years after it, then "
                                            "no more (信用修复: negative records have a publicity term; 3 years, as a listing as "
                                            "严重违法失信 by decision); 0: for good")
    serious_dishonesty: list[PolicyListing | str] = Field(
        default_factory=list, description="listings as 严重违法失信 made outside the log: straight to D while in force (so does an "
                                          "enforcement.decided event with serious_dishonesty true).  Each with its decision "
                                          "(enterprise_id, decision_no, listed_on, authority): cited in the grade and ended "
                                          "serious_dishonesty_years after listed_on.  A bare enterprise id (the older form) "
                                          "stays listed until taken out, and the grade says its decision is not on record")
    serious_dishonesty_years: int = Field(
        default=3, ge=1, le=50, description="a listing by an enforcement decision ends this many years after the decision "
                                            "(严重违法失信名单: removed once listed for three years); an id listed here stays until taken out")

    def unregistered_listings(self, registered: Container[str]) -> list[str]:
        """The enterprise ids serious_dishonesty lists that no enterprise in ``registered`` has: a typo (a letter O for a
        zero) lists nobody, and the enterprise meant keeps its milder grade without a word.  Not refused at load: the
        policy is read before the log, and a listing may rightly come before the enterprise's registration is imported.
        Looked up one id at a time, never iterated: /healthz passes the fold's files while the fold adds to them."""
        listed = {listing.enterprise_id if isinstance(listing, PolicyListing) else listing for listing in self.serious_dishonesty}
        return sorted(eid for eid in listed if eid not in registered)

    def unregistered_warning(self, registered: Container[str]) -> str | None:
        """What the bureau is told (at start, in ``qrisk risk``, on /healthz) of listings naming no enterprise on file."""
        missing = self.unregistered_listings(registered)
        if not missing:
            return None
        return (f"risk.credit.serious_dishonesty 列入严重违法失信名单的企业 {'、'.join(missing)} 在事件日志中没有登记（enterprise.registered），"
                f"该列入不对任何企业生效：请核对企业编号，或先导入该企业的登记 / risk.credit.serious_dishonesty lists "
                f"{', '.join(missing)}, which no enterprise in the event log is registered as: the listing grades nobody; "
                f"check the enterprise id, or import the enterprise's registration")


class RiskPolicy(_Strict):
    """Risk grading (风险分级): score = static + dynamic + credit (0-100, higher is riskier)."""

    enabled: bool = True
    bands: dict[Grade, NonNegativeFloat] = Field(
        default_factory=lambda: {"A": 0.0, "B": 30.0, "C": 45.0, "D": 60.0},
        description="where each grade starts: a score above a grade's bound (A: from 0) and up to the next grade's bound "
                    "inclusive is that grade (2016 trial, unconfirmed: A 0-30 含, B 30-45 含, C 45-60 含, D > 60)")
    max_worsen: int = Field(default=1, ge=1, le=3, description="grades a single evaluation may move towards D")
    max_improve: int = Field(default=1, ge=1, le=3, description="grades a single evaluation may move towards A")
    hold_days: int = Field(default=0, ge=0, le=3660, description="after a move, the grade stays at least this many days (0: every evaluation may move it)")
    worsen_hold_days: int = Field(
        default=7, ge=1, le=365,
        description="a grade held back from worsening by max_worsen moves on at the enterprise's next event, or else at the "
                    "first clock.tick this many days after it was held back: without new events the grade worsens by at most "
                    "max_worsen levels per this many days (a tick minutes later would undo the step limit; never moving on "
                    "would leave the inspection plan on the milder grade until some unrelated event)")
    improve_hold_days: int = Field(
        default=7, ge=1, le=365,
        description="a grade that last moved towards A improves further only this many days after that move: without it a "
                    "band several levels better (a listing ended, failures left the window) took the grade one level per "
                    "evaluation, so D→C→B→A within 20 minutes of clock ticks, or three days of midnight ticks — a grade "
                    "resting on how often the log ticks.  The first step after a worsening (or from a steady grade) is "
                    "not held; enterprise events do not shorten the hold")
    static: StaticFactors = StaticFactors()
    dynamic: DynamicFactors = DynamicFactors()
    credit: CreditFactors = CreditFactors()
    # 0.1 a year is one inspection in ten years; 365 once a day — beyond either the interval is no plan (0.0001 put the
    # next inspection past the year 9999 and crashed the fold)
    inspections_per_year: dict[Grade, Annotated[float, Field(ge=0.1, le=365)]] = Field(
        default_factory=lambda: {"A": 0.5, "B": 1.0, "C": 2.0, "D": 3.0},
        description="minimum inspection frequency by grade (2022 draft: A once in 2 years, B ≥ 1, C ≥ 2, D ≥ 3 a year)")
    plan_inspection_kinds: list[Literal["routine", "special", "follow_up", "acceptance"]] = Field(
        default_factory=lambda: ["routine", "special"], min_length=1,
        description="the inspection.completed kinds the inspection plan counts from (the next inspection is due one interval "
                    "after the last of them): a 跟踪检查 (follow_up) only checks an earlier finding's rectification or an "
                    "interview's commitments and a 验收检查 (acceptance) a campaign upgrade, so neither covers the plan's "
                    "inspection nor pushes it back; their results and findings still weigh in the score")
    regrade_grace_days: int = Field(
        default=30, ge=0, le=3660,
        description="after the grade changes to one with a shorter interval, the next inspection is due no sooner than this many "
                    "days later: such a grade does not make an inspection overdue on (or before) the day it changes (a better "
                    "grade gets no grace)")
    sampling_interval_days: dict[Grade, Annotated[int, Field(ge=1, le=3650)]] = Field(
        default_factory=lambda: {"A": 365, "B": 180, "C": 120, "D": 90},
        description="longest gap between supervision samples by grade before the missing-data warning")
    inspect_while_suspended: bool = Field(
        default=True,
        description="an enterprise 停产 (enterprise.updated status suspended) still gets its routine inspections (true: a stop is "
                    "the enterprise's own word, and the visit is what confirms it is not producing and that its stock and premises "
                    "are kept; routine sampling stops either way, there is no production to sample).  false: no inspection is due "
                    "while it is stopped, and the plan starts afresh the day it resumes")
    history_max: int = Field(default=50, ge=1, le=1000, description="grade history entries kept in the credit file")
    warnings_kept: int = Field(default=100, ge=1, le=10_000, description="recent warnings kept in the credit file")

    @model_validator(mode="after")
    def _complete(self) -> "RiskPolicy":
        for name in ("bands", "inspections_per_year", "sampling_interval_days"):
            missing = [g for g in GRADES if g not in getattr(self, name)]
            if missing:
                raise ValueError(f"risk.{name}：缺少等级 {'、'.join(missing)} / risk.{name} lacks grade(s) {', '.join(missing)}")
        lows = [self.bands[g] for g in GRADES]
        if lows[0] != 0 or any(b <= a for a, b in zip(lows, lows[1:])):
            raise ValueError("risk.bands：A 须从 0 开始，B < C < D 须严格递增 / risk.bands: A must start at 0 and B < C < D must "
                             "increase strictly")
        # the bands are points, not shares of the total: a D starting at or above the most the score can reach
        # (static.max + dynamic.max + credit.max) is never reached, and no score would ever ask for D's inspections
        total = self.max_score
        if self.bands["D"] >= total:
            raise ValueError(f"risk.bands.D：D 级起点 {self.bands['D']:g} 分不低于风险分最高可得的 {total:g} 分（static.max + dynamic.max "
                             f"+ credit.max），任何企业都评不到 D 级 / risk.bands.D: D starts at {self.bands['D']:g}, not below the "
                             f"highest score possible, {total:g} (static.max + dynamic.max + credit.max): no enterprise could be graded D")
        return self

    @property
    def max_score(self) -> float:
        """The most the score can reach: static, dynamic and credit at their caps (100 in the 2016 trial and the 2022 draft)."""
        return self.static.max + self.dynamic.max + self.credit.max

    def scale_note(self) -> str | None:
        """Said at start when the factors' maxima do not add up to 100: the score is then not out of 100, though
        dashboards and reports read it so — a bureau may mean it (a factor turned down), or have mistyped one max."""
        total = self.max_score
        if total == 100:
            return None
        return (f"风险分满分为 {total:g} 分而非 100 分（static.max {self.static.max:g} + dynamic.max {self.dynamic.max:g} + credit.max "
                f"{self.credit.max:g}），等级分界 risk.bands 仍按分数绝对值划分（B {self.bands['B']:g}、C {self.bands['C']:g}、"
                f"D {self.bands['D']:g} 分以上） / the risk score runs to {total:g}, not 100 (static.max + dynamic.max + credit.max); "
                f"the grade bands stay absolute points")

    def band(self, score: float) -> Grade:
        """The grade a score alone gives.  Each band's upper edge is inclusive (2016 trial, unconfirmed:
        0–30（含）A, 30–45（含）B, 45–60（含）C, 60 分以上 D): exactly 30 is A, exactly 60 is C."""
        grade: Grade = "A"
        for g in GRADES[1:]:
            if score > self.bands[g]:
                grade = g
        return grade

    def inspection_interval_days(self, grade: Grade) -> int:
        # rounded down: D's 3 a year is every 121 days, not 122 (three intervals of 122 days are 366, so a year
        # could pass with two inspections)
        return max(1, int(365 / self.inspections_per_year[grade]))


# --------------------------------------------------------------------------- early-warning rules

WARNING_RULES = (
    "sampling.unqualified", "fluctuation.signal", "risk.grade_worsened", "complaint.cluster", "rectification.overdue",
    "data.missing", "inspection.nonconforming", "rectification.rejected", "judgement.disagrees", "retest.inadmissible",
    "complaint.illness", "enforcement.decided", "interview.follow_up_overdue", "sampling.near_limit",
    "judgement.lab_failed_unjudged", "complaint.burst", "complaint.overdue", "judgement.lab_failed_passed", "complaint.hazard",
)
"""The early-warning rules by the id an alert carries (``rule``), which routes and silences name."""


def _known_rule(rule: str | None, where: str) -> None:
    if rule is not None and rule not in WARNING_RULES:
        raise ValueError(f"{where}: no early-warning rule {rule!r}; the rules are {', '.join(WARNING_RULES)}")


Severity = Literal["critical", "high", "medium", "low"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")
RasffClass = Literal["alert", "information_follow_up", "information_attention"]


class WarningRule(_Strict):
    """One early-warning rule: on or off, how severe, and its texts.  Templates use
    ``{name}`` placeholders; the fields each rule offers are listed in the default policy."""

    FIELDS: ClassVar[frozenset[str]] = frozenset()
    COMMON: ClassVar[frozenset[str]] = frozenset({"name", "enterprise_id", "date"})

    enabled: bool = True
    severity: Severity = "medium"
    title_zh: str = Field(min_length=1, max_length=100)
    template_zh: str = Field(min_length=1, max_length=1000)
    template_en: str = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _known_placeholders(self) -> "WarningRule":
        allowed = self.FIELDS | self.COMMON
        for which in [f for f in type(self).model_fields if f.endswith(("template_zh", "template_en"))]:
            try:
                names = {f for _, f, _, _ in string.Formatter().parse(getattr(self, which)) if f is not None}
            except ValueError as exc:
                raise ValueError(f"{which}: {exc}") from exc
            bad = sorted(n for n in names if n not in allowed)
            if bad:
                raise ValueError(f"{which}: unknown placeholder(s) {', '.join('{' + n + '}' for n in bad)}; "
                                 f"available: {', '.join(sorted(allowed))}")
        return self


class SamplingUnqualifiedRule(WarningRule):
    severity: Severity = "high"
    title_zh: str = "抽检不合格"
    # the next step follows 《食品安全抽样检验管理办法》: the bureau starts 核查处置 on an unqualified result, the enterprise
    # seals, stops and recalls the product and finds the cause; it may ask for a re-test within 7 working days of
    # receiving the result, except for a microbiological failure ({retest_zh} says which)
    template_zh: str = ("{name}：{product}（抽样编号 {sample_no}，抽样日期 {sampled_on}）抽检不合格，不合格项目：{items}。{lot_zh}{detail}"
                        "下一步：请依法启动核查处置，督促企业立即封存并暂停生产经营该批次不合格食品，下架、召回已上市销售的产品，"
                        "查明原因并整改，按时报告处理情况；{retest_zh}。")
    template_en: str = ("{name}: {product} (sample {sample_no}, sampled {sampled_on}) is unqualified: {items}. {lot_en}"
                        "Next: start the follow-up (核查处置): the enterprise seals, withdraws and recalls the batch and rectifies; {retest_en}.")
    FIELDS: ClassVar[frozenset[str]] = frozenset({"product", "sample_no", "sampled_on", "items", "detail", "item_class", "batch",
                                                  "production_date", "brand", "spec", "lot_zh", "lot_en", "retest_zh", "retest_en"})
    # a re-test (复检) of the same sample that upholds the failure: the final conclusion, not a second failure
    retest_title_zh: str = Field(default="复检维持不合格", min_length=1, max_length=100)
    retest_template_zh: str = Field(default="{name}：{product}（抽样编号 {sample_no}，抽样日期 {sampled_on}）复检维持不合格结论，"
                                            "不合格项目：{items}。{lot_zh}{detail}复检结论为最终结论。下一步：请依法核查处置，督促企业落实封存、下架、召回"
                                            "和整改，涉嫌违法的依法立案调查。", min_length=1, max_length=1000)
    retest_template_en: str = Field(default="{name}: the re-test of {product} (sample {sample_no}, sampled {sampled_on}) upholds "
                                            "the unqualified result, which is final: {items}. {lot_en}", min_length=1, max_length=1000)
    # qrisk fails what the lab passed (each failed item 合格 on the lab's report, a sum of ratios over 1 of members the
    # lab passed one by one): the lab's conclusion is the legal one, so the alert asks to check with the lab first
    unconfirmed_severity: Severity = Field(default="medium", description="severity when qrisk's own judgement fails items the lab passed")
    unconfirmed_title_zh: str = Field(default="系统复核不合格（检验报告结论为合格）", min_length=1, max_length=100)
    unconfirmed_template_zh: str = Field(default="{name}：{product}（抽样编号 {sample_no}，抽样日期 {sampled_on}）检验报告结论为合格，"
                                                 "系统按标准复核判定不合格，不合格项目：{items}。{lot_zh}{detail}下一步：请先与检验机构核对"
                                                 "判定依据；检验机构出具不合格检验结论前，本预警不作为核查处置和复检告知的依据。",
                                         min_length=1, max_length=1000)
    unconfirmed_template_en: str = Field(default="{name}: the lab passed {product} (sample {sample_no}, sampled {sampled_on}); qrisk's "
                                                 "own check against the standard fails it on {items}. {lot_en}Next: check the basis of "
                                                 "the verdict with the lab; until the lab issues an unqualified conclusion this alert is "
                                                 "no ground for the follow-up or a re-test notice.", min_length=1, max_length=1000)
    severity_by_class: dict[ItemClassName, Severity] = Field(default_factory=lambda: {
        "pathogen": "critical", "additive_not_permitted": "critical", "contaminant": "high", "indicator_microbe": "high",
        "additive": "high", "chemical": "medium", "quality_index": "medium"})
    repeat_within_days: int = Field(default=365, ge=0, le=3660, description=(
        "a failure on an item the enterprise already failed within this many days (屡次不合格) is one level more severe and "
        "its message names the earlier samples and asks for an interview and stricter handling; 0: off"))
    related_complaints_days: int = Field(default=90, ge=0, le=3660, description=(
        "the failure names the enterprise's quality complaints about the same product received within this many days "
        "before it was sampled (up to the failure), not withdrawn nor found 不属实 (evidence related_complaints, each quoted up to "
        "complaint_hazard.excerpt_chars, masked; "
        "该产品近期有投诉 … in {detail}): the inspector who goes for the failing batch takes the complaint along; 0: off"))


class FluctuationRule(WarningRule):
    severity: Severity = "medium"
    title_zh: str = "质量波动"
    template_zh: str = "{name}：{text}{where}。请分析原因，必要时加密抽检或现场检查。"
    template_en: str = "{name}: quality fluctuation ({chart} chart) {series}."
    FIELDS: ClassVar[frozenset[str]] = frozenset({"text", "where", "chart", "series"})
    severity_near_limit: Severity = Field(
        default="medium",
        description="a signal against the legal maximum (Cpk below the minimum, the EWMA at a fraction of the limit): a "
                    "forecast while every result still passes, so below a failure's severity (a failure of the same "
                    "item alerts on its own)")


class GradeWorsenedRule(WarningRule):
    severity: Severity = "medium"
    title_zh: str = "风险等级上升"
    template_zh: str = "{name}：风险上升，风险等级由 {from_grade} 级变为 {to_grade} 级（风险分 {score}）。主要原因：{reasons}。下一步：请按 {to_grade} 级企业的监管频次调整检查和抽检计划。"
    template_en: str = "{name}: risk grade worsened from {from_grade} to {to_grade} (score {score})."
    # the licence revoked (吊销许可证): no lawful production, so no inspection or sampling plan to adjust to the grade
    revoked_template_zh: str = Field(default="{name}：风险上升，风险等级由 {from_grade} 级变为 {to_grade} 级（风险分 {score}）。主要原因：{reasons}。"
                                             "许可证已吊销（决定书 {decision_no}），不再安排日常抽检和检查。", min_length=1, max_length=1000)
    revoked_template_en: str = Field(default="{name}: risk grade worsened from {from_grade} to {to_grade} (score {score}); the licence "
                                             "was revoked ({decision_no}): no routine sampling or inspection is planned.",
                                     min_length=1, max_length=1000)
    FIELDS: ClassVar[frozenset[str]] = frozenset({"from_grade", "to_grade", "score", "reasons", "decision_no"})
    severity_by_grade: dict[Grade, Severity] = Field(default_factory=lambda: {"B": "low", "C": "medium", "D": "high"})


class ComplaintClusterRule(WarningRule):
    severity: Severity = "high"
    title_zh: str = "投诉聚集"
    template_zh: str = "{name}：自 {first_day} 起 {window_days} 天内经核实的投诉达 {count} 件（阈值 {k} 件）。下一步：请立即对企业开展现场检查，排查同批次产品，必要时开展监督抽检。"
    template_en: str = "{name}: {count} verified complaints within {window_days} days from {first_day} (threshold {k})."
    FIELDS: ClassVar[frozenset[str]] = frozenset({"count", "k", "window_days", "first_day"})


class ComplaintBurstRule(WarningRule):
    """快速反应: ``complaint_burst.k`` complaints within ``complaint_burst.window_days``, not yet (all) verified."""

    severity: Severity = "high"
    title_zh: str = "投诉集中（快速反应）"
    template_zh: str = ("{name}：{first_day} 至 {last_day} 收到质量投诉 {count} 件（{window_days} 天内 {k} 件即预警），{verified_zh}：{complaints}。"
                        "下一步：请立即组织核查，排查涉及的产品和批次，必要时先行采取控制措施。")
    template_en: str = ("{name}: {count} quality complaints received from {first_day} to {last_day} (threshold {k} within {window_days} "
                        "days), not yet all verified: {complaints_en}.")
    FIELDS: ClassVar[frozenset[str]] = frozenset({"count", "k", "window_days", "first_day", "last_day", "verified", "verified_zh",
                                                  "complaints", "complaints_en", "products"})


COMPLAINT_CATEGORIES: tuple[str, ...] = get_args(ComplaintReceived.model_fields["category"].annotation)


class ComplaintIllnessRule(WarningRule):
    """A verified complaint of illness after eating (食用后不适): one is enough, not only a cluster."""

    severity: Severity = "high"
    title_zh: str = "食用后不适投诉"
    template_zh: str = ("{name}：{received_on} 通过{channel_zh}渠道收到投诉（编号 {complaint_id}），反映{consumed_zh}{product}后身体不适，"
                        "经核实属实。投诉内容：“{excerpt}”。请立即核查同批次产品并采取控制措施。")
    template_en: str = ("{name}: a verified complaint {complaint_id} received on {received_on} via {channel} reports illness after "
                        "consuming {product}: \"{excerpt}\".")
    FIELDS: ClassVar[frozenset[str]] = frozenset({"complaint_id", "channel", "channel_zh", "received_on", "product", "category",
                                                  "category_zh", "excerpt", "consumed_zh"})
    categories: list[str] = Field(default_factory=lambda: ["illness"], min_length=1,
                                  description="complaint categories (schemas.events ComplaintReceived.category) that alert on their own once verified")
    # early warning: a complaint of illness alerts when it comes in, as 待核实, and is raised to `severity` once verified
    # (closed when found 不属实); null: only once verified
    severity_unverified: Severity | None = Field(default="medium", description="a complaint of illness not yet verified alerts "
                                                 "at this severity when received; null: it alerts only once verified")
    unverified_title_zh: str = Field(default="食用后不适投诉（待核实）", min_length=1, max_length=100)
    unverified_template_zh: str = Field(default="{name}：{received_on} 通过{channel_zh}渠道收到投诉（编号 {complaint_id}），反映{consumed_zh}"
                                                "{product}后身体不适，尚待核实。投诉内容：“{excerpt}”。下一步：请尽快核实，必要时对同批次产品"
                                                "先行采取控制措施。", min_length=1, max_length=1000)
    unverified_template_en: str = Field(default="{name}: a complaint {complaint_id} received on {received_on} via {channel} reports "
                                                "illness after consuming {product}, not yet verified: \"{excerpt}\".", min_length=1, max_length=1000)
    excerpt_chars: int = Field(default=80, ge=0, le=1000, description="the complaint's text is quoted up to this many characters, "
                               "names, phone and ID numbers and e-mail addresses masked (processors.personal_info); 0: not quoted")
    keywords: list[Annotated[str, Field(min_length=1, max_length=20)]] = Field(
        default_factory=lambda: ["腹泻", "拉肚子", "上吐下泻", "呕吐", "腹痛", "腹部不适", "肠胃不适", "胃肠炎",
                                 "身体不适", "发热", "发烧", "过敏", "头晕", "就医", "就诊", "住院", "中毒",
                                 "肚子疼", "肚子痛", "肚疼", "胃疼", "胃痛", "肚子不舒服", "胃不舒服", "闹肚子", "拉稀", "想吐", "吐了",
                                 "挂水", "输液", "打点滴", "打吊瓶", "去医院", "看医生", "急诊",
                                 "一直吐", "一直在吐", "吐个不停", "救护车", "120"],
        description="words in a verified complaint's text that report illness whatever its category (a caller files "
                    "“饮用后腹泻” under taste_odour as often as under illness, and says 肚子疼、拉稀、挂水 more often than 腹痛、腹泻、"
                    "就医); a word after 无/未/没/不/否认 in the same clause, or followed by 没有 ending it (腹泻没有), or by 出来 "
                    "(吐了出来: spat out) does not count, nor a word ending in 吐 going on as 吐槽/吐口水/吐痰 (我一直吐槽: a grumble); a "
                    "number (120, said 一二零/幺二零 too) counts only as a call — right after 拨打/打了/叫了/呼叫/被 (打了120, 被120拉走了) "
                    "or before 急救/救护/送/拉走/来了/车 (120急救车, 120送到医院) — never followed by a unit (120元, 120毫升, 120瓶), "
                    "nor inside a longer number (1200元, a phone number)")

    @model_validator(mode="after")
    def _known_categories(self) -> "ComplaintIllnessRule":
        bad = [c for c in self.categories if c not in COMPLAINT_CATEGORIES]
        if bad:
            raise ValueError(f"complaint_illness.categories: unknown {', '.join(bad)}; the categories are {', '.join(COMPLAINT_CATEGORIES)}")
        return self


HAZARD_ZH = {"foreign_matter": "{product}中有异物", "spoilage": "{product}霉变、变质", "labelling": "{product}标签标识有问题",
             "taste_odour": "{product}有异味", "hygiene": "{product}存在卫生问题"}
"""What a verified complaint of each category says of the product (complaint_hazard's {hazard_zh})."""
HAZARD_EN = {"foreign_matter": "foreign matter in {product}", "spoilage": "{product} spoiled (mould, spoilage)",
             "labelling": "a labelling fault on {product}", "taste_odour": "an off taste or odour of {product}",
             "hygiene": "a hygiene fault with {product}"}


class ComplaintHazardRule(WarningRule):
    """A verified complaint of a physical or spoilage hazard (异物, 霉变): one is enough to act on — the bottle with glass
    in it is in the hands of other buyers of the same batch.  Verified only: such claims are often settled as 水垢、沉淀
    or a misread date on inspection, and complaints not yet verified already alert together (complaint_burst); illness
    is the exception (complaint_illness alerts on receipt), a harm already done.  A complaint the illness rule alerts on
    keeps that alert only."""

    severity: Severity = "high"
    title_zh: str = "异物、变质投诉（经核实属实）"
    template_zh: str = ("{name}：{received_on} 通过{channel_zh}渠道收到投诉（编号 {complaint_id}），反映{hazard_zh}，经核实属实。"
                        "投诉内容：“{excerpt}”。下一步：请立即核查同批次产品，查明原因，必要时对同批次产品采取控制措施。")
    template_en: str = ("{name}: a verified complaint {complaint_id} received on {received_on} via {channel} reports {hazard_en}: "
                        "\"{excerpt}\".")
    FIELDS: ClassVar[frozenset[str]] = frozenset({"complaint_id", "channel", "channel_zh", "received_on", "product", "category",
                                                  "category_zh", "excerpt", "hazard_zh", "hazard_en"})
    categories: list[str] = Field(default_factory=lambda: ["foreign_matter", "spoilage"], min_length=1,
                                  description="complaint categories (schemas.events ComplaintReceived.category) that alert on their own "
                                              "once verified; not illness (complaint_illness) nor other (price, delivery, service)")
    excerpt_chars: int = Field(default=80, ge=0, le=1000, description="the complaint's text is quoted up to this many characters, "
                               "names, phone and ID numbers and e-mail addresses masked (processors.personal_info); 0: not quoted")

    @model_validator(mode="after")
    def _hazard_categories(self) -> "ComplaintHazardRule":
        bad = [c for c in self.categories if c not in HAZARD_ZH]
        if bad:
            raise ValueError(f"complaint_hazard.categories: {', '.join(bad)} cannot be named (illness is complaint_illness's, other is "
                             f"no hazard); the categories are {', '.join(HAZARD_ZH)}")
        return self


class RectificationOverdueRule(WarningRule):
    severity: Severity = "high"
    title_zh: str = "整改逾期"
    template_zh: str = "{name}：整改 {rectification_id}（{what}）已超过期限 {deadline}，截至 {date} 逾期 {days_overdue} 天。下一步：请核实整改进展，督促企业限期完成；拒不整改或整改不到位的，依法约谈企业负责人，涉嫌违法的依法立案调查。"
    template_en: str = "{name}: as of {date}, rectification {rectification_id} is {days_overdue} day(s) past its deadline {deadline}."
    # past the new deadline a rejection set (重新限期): the redo is late, whether or not the first completion was
    redo_template_zh: str = Field(default="{name}：整改 {rectification_id}（{what}）复查未通过后已超过重新整改期限 {deadline}，截至 {date} 逾期 "
                                          "{days_overdue} 天。下一步：请核实重新整改进展，督促企业限期完成；拒不整改或整改不到位的，依法约谈企业负责人，"
                                          "涉嫌违法的依法立案调查。", min_length=1, max_length=1000)
    redo_template_en: str = Field(default="{name}: as of {date}, rectification {rectification_id} is {days_overdue} day(s) past the new "
                                          "deadline {deadline} set when it was rejected.", min_length=1, max_length=1000)
    FIELDS: ClassVar[frozenset[str]] = frozenset({"rectification_id", "what", "deadline", "days_overdue"})


class ComplaintOverdueRule(WarningRule):
    """A complaint or report (投诉举报) passed a statutory time limit (complaint_deadlines) with no conclusion: the bureau's
    own lateness, told to the supervisor of the enterprise's town, whose office handles it; closed by the conclusion
    (or the withdrawal, or for the accept limit the acceptance decision).  Low: nothing is wrong with the food for it, but
    the complainant's 行政复议 turns on it.  {missing_zh}: 办结记录, or 受理决定 for a 投诉's accept limit; {next_step_zh}: what
    to do about that one."""

    severity: Severity = "low"
    title_zh: str = "投诉举报办理超期"
    template_zh: str = ("{name}：{kind_zh} {complaint_id}（{received_on} 登记，{channel_zh}）已超过{limit_zh}，期限 {due_on}，截至 {date} 仍无{missing_zh}，"
                        "已超过 {working_days_over} 个工作日。下一步：{next_step_zh}")
    template_en: str = ("{name}: {kind} {complaint_id} received on {received_on} passed its time limit ({limit}, due {due_on}) with "
                        "{missing_en} as of {date}: {working_days_over} working day(s) over.")
    FIELDS: ClassVar[frozenset[str]] = frozenset({"complaint_id", "kind", "kind_zh", "received_on", "channel_zh", "limit", "limit_zh",
                                                  "due_on", "working_days_over", "party_zh", "missing_zh", "missing_en", "next_step_zh"})


class DataMissingRule(WarningRule):
    severity: Severity = "medium"
    title_zh: str = "检查或抽检逾期未开展"
    template_zh: str = "{name}：按本县风险分级监管要求，{grade} 级企业{requirement_zh}，{since_zh}，应于 {due} 前完成，截至 {date} 仍无{what_zh}记录。"
    template_en: str = "{name}: the county's risk-grading supervision policy calls for {requirement_en} at grade {grade}; {since_en}; it was due by {due}, and none is on record as of {date}."
    FIELDS: ClassVar[frozenset[str]] = frozenset({"what_zh", "what_en", "last", "interval_days", "grade", "due", "requirement_zh",
                                                  "requirement_en", "since_zh", "since_en"})


class InspectionNonconformingRule(WarningRule):
    severity: Severity = "medium"
    title_zh: str = "现场检查发现问题"
    template_zh: str = "{name}：现场检查 {inspection_id}{inspected_zh}结论为“{result}”。{findings}下一步：请责令企业对发现的问题限期整改并复查；结论为不符合、有发生食品安全事故潜在风险的，应责令其立即停止食品生产经营活动；涉嫌违法的依法立案调查。"
    template_en: str = "{name}: inspection {inspection_id}{inspected_en} found the enterprise {result}."
    FIELDS: ClassVar[frozenset[str]] = frozenset({"inspection_id", "result", "findings", "inspected_on", "inspector",
                                                "inspected_zh", "inspected_en"})
    severity_nonconforming: Severity = Field(default="high", description="result 不符合 (else: major/critical findings only)")


class RectificationRejectedRule(WarningRule):
    severity: Severity = "medium"
    title_zh: str = "整改复查未通过"
    template_zh: str = "{name}：整改 {rectification_id} 复查未通过。{note}{due_zh}下一步：请责令企业针对未通过的问题限期重新整改并再次复查；仍不到位的，依法约谈企业负责人，涉嫌违法的依法立案调查。"
    template_en: str = "{name}: rectification {rectification_id} was rejected at verification."
    FIELDS: ClassVar[frozenset[str]] = frozenset({"rectification_id", "note", "due_zh"})


class DisagreementRule(WarningRule):
    severity: Severity = "low"
    title_zh: str = "判定与检验机构结论不一致"
    template_zh: str = "{name}：抽样编号 {sample_no}：{items}，系统判定与检验机构（{lab}）结论不一致。下一步：请与检验机构核对判定依据（适用标准及版本、限量、单位、检出限）。"
    template_en: str = "{name}: sample {sample_no}: qrisk's judgement of {items} differs from the lab's."
    FIELDS: ClassVar[frozenset[str]] = frozenset({"sample_no", "items", "lab"})


class LabFailedUnjudgedRule(WarningRule):
    """The lab judged an item 不合格 that qrisk cannot judge (an unknown item code or unit, a product whose
    standard the catalogue lacks, an undated sample whose edition is uncertain, a detection limit above the
    limit, a plan with the wrong number of results).  The sample stays undetermined, out of the pass rate,
    but under 《食品安全抽样检验管理办法》 the lab's 不合格 conclusion starts the follow-up (核查处置) whether or
    not a system can judge it again: without this rule nobody was told."""

    severity: Severity = "high"
    title_zh: str = "检验机构判定不合格、系统无法判定"
    template_zh: str = ("{name}：{product}（抽样编号 {sample_no}，抽样日期 {sampled_on}）检验机构（{lab}，任务来源 {task_source}）"
                        "判定不合格，不合格项目：{items}；系统无法判定：{why}。该样品计为无法判定，不计入合格率。"
                        "下一步：请核实检验报告与适用标准，按检验机构不合格结论启动核查处置。")
    template_en: str = ("{name}: the lab ({lab}) found {product} (sample {sample_no}, sampled {sampled_on}) unqualified on {items}, "
                        "which qrisk cannot judge: {why_en}. The sample counts as undetermined. Next: check the report and the "
                        "applicable standard, and start the follow-up (核查处置) on the lab's conclusion.")
    FIELDS: ClassVar[frozenset[str]] = frozenset({"sample_no", "product", "sampled_on", "items", "lab", "task_source", "why", "why_en"})


class LabFailedPassedRule(WarningRule):
    """The lab judged an item 不合格 that qrisk judges 合格 or not applicable (a value at the limit the lab
    rounded to, a product name the item's scope does not recognise, an item the standard in force no longer
    limits).  The report's 不合格 is the legal conclusion: the sample counts 不合格 and the follow-up starts on
    it, with qrisk's figure beside the lab's so that the basis is checked with the lab."""

    severity: Severity = "high"
    title_zh: str = "检验机构判定不合格、系统复核为合格或不适用"
    template_zh: str = ("{name}：{product}（抽样编号 {sample_no}，抽样日期 {sampled_on}）检验机构（{lab}，任务来源 {task_source}）"
                        "判定{items}不合格，{why}。该样品按检验机构结论计为不合格。"
                        "下一步：请核实判定依据（适用标准及版本、限量、单位、修约），按检验机构不合格结论启动核查处置。")
    template_en: str = ("{name}: the lab ({lab}) found {product} (sample {sample_no}, sampled {sampled_on}) unqualified on {items}; "
                        "{why_en}. The sample counts as unqualified, as the report concludes. Next: check the basis of the "
                        "judgement with the lab, and start the follow-up (核查处置) on the lab's conclusion.")
    FIELDS: ClassVar[frozenset[str]] = frozenset({"sample_no", "product", "sampled_on", "items", "lab", "task_source", "why", "why_en"})


class RetestInadmissibleRule(WarningRule):
    severity: Severity = "medium"
    title_zh: str = "复检结果不予采信"
    template_zh: str = "{name}：抽样编号 {sample_no}（{product}）{reason_zh}；收到的复检结果（{retest_verdict}）不改变原结论，请核实复检的来由。"
    template_en: str = ("{name}: sample {sample_no} ({product}) {reason_en}; "
                        "the re-test result ({retest_verdict}) does not change the original conclusion.")
    FIELDS: ClassVar[frozenset[str]] = frozenset({"sample_no", "product", "items", "retest_verdict", "reason_zh", "reason_en"})


class InterviewFollowUpRule(WarningRule):
    """An interview (约谈) set a date by which the enterprise's commitments are checked (跟踪检查期限),
    and no inspection of it came between the interview and that date."""

    severity: Severity = "medium"
    title_zh: str = "约谈跟踪检查逾期"
    template_zh: str = ("{name}：{held_on} 约谈（{interview_id}）要求于 {follow_up_by} 前跟踪检查整改承诺落实情况，"
                        "截至 {date} 仍无现场检查记录，已逾期 {days_overdue} 天，请尽快开展跟踪检查，核实整改承诺落实情况。约谈事由：{reason}")
    template_en: str = ("{name}: interview {interview_id} of {held_on} was to be followed up by an inspection by {follow_up_by}; "
                        "none is on record as of {date} ({days_overdue} day(s) late).")
    FIELDS: ClassVar[frozenset[str]] = frozenset({"interview_id", "held_on", "held_by", "reason", "commitments", "follow_up_by", "days_overdue"})
    excerpt_chars: int = Field(default=120, ge=10, le=4000, description="the reason is quoted up to this many characters")


class NearLimitRule(WarningRule):
    """A passing sample whose GB 2760 sum of ratios (preservatives, sweeteners … used together) is close to 1:
    the early warning before the failure.  Each additive within its own limit, the sum has no control chart
    of its own (it is no measured item), and a pastry maker's products are too many and too rarely sampled
    for their item charts to leave the baseline: a creep towards 1 said nothing until it failed."""

    severity: Severity = "low"
    title_zh: str = "抽检结果接近限值"
    template_zh: str = ("{name}：抽样编号 {sample_no}（{product}，抽样日期 {sampled_on}）判定合格，但{what}，已接近不合格。"
                        "请关注该企业食品添加剂的使用和投料控制，必要时加密抽检。")
    template_en: str = "{name}: sample {sample_no} ({product}, sampled {sampled_on}) passed, but {what_en}: close to failing."
    FIELDS: ClassVar[frozenset[str]] = frozenset({"sample_no", "product", "sampled_on", "what", "what_en"})
    fraction: float = Field(default=0.8, gt=0, lt=1, description="a sum of ratios at or above this (of 1, the limit) warns")


class EnforcementDecidedRule(WarningRule):
    """A 行政处罚决定 on an enterprise: the supervisor in charge of it is told (severity by the heaviest penalty)."""

    severity: Severity = "medium"
    title_zh: str = "行政处罚决定"
    template_zh: str = "{name}：{decided_on} 作出行政处罚决定（{decision_no}）。违法行为：{violation}；处罚：{penalties}。{listing}"
    template_en: str = "{name}: enforcement decision {decision_no} of {decided_on}: {penalties_en}.{listing_en}"
    FIELDS: ClassVar[frozenset[str]] = frozenset({"decision_no", "decided_on", "authority", "violation", "legal_basis", "penalties",
                                                  "penalties_en", "listing", "listing_en"})
    severity_by_penalty: dict[PenaltyKind, Severity] = Field(default_factory=lambda: {
        "warning": "low", "fine": "medium", "confiscation": "medium", "other": "medium", "suspension": "high", "licence_revoked": "critical"},
        description="the most severe of the decision's penalties decides; a kind not listed takes the rule's severity")
    severity_serious_dishonesty: Severity = Field(default="critical", description="the decision lists the enterprise as 严重违法失信")
    excerpt_chars: int = Field(default=120, ge=10, le=4000, description="the violation is quoted up to this many characters")


class WarningsPolicy(_Strict):
    """早期预警 rules.  A rule turns what the fold found into an alert decision with a
    dedup key and evidence; delivering it (routing, grouping, silences) is the alerts stage's job."""

    rasff_class: dict[Severity, RasffClass] = Field(
        default_factory=lambda: {"critical": "alert", "high": "alert", "medium": "information_follow_up", "low": "information_attention"})
    respond_within_hours: dict[Severity, Annotated[float, Field(gt=0)] | None] = Field(
        default_factory=lambda: {"critical": 24, "high": 48, "medium": 168, "low": None},
        description="RASFF: alerts need action within 24-48 h; from the event's time, or from its arrival when a live event came "
                    "later (hours; a fraction is allowed: 0.5 is half an hour)")
    handle_within_hours: dict[Severity, Annotated[float, Field(ge=0)] | None] = Field(
        default_factory=lambda: {"critical": 72, "high": 168, "medium": 360, "low": None},
        description="早处置: an alert acknowledged (确认) but not put under rectification (责令整改), verified or closed within "
                    "this long of its acknowledgement escalates once to alerts.escalate_to and its receivers (已确认超时未处置). "
                    "Critical 72 h: a failing batch acknowledged on day 1 is to be ordered sealed/rectified within the 3 days a "
                    "RASFF alert's follow-up takes; high 7 days, a week's round of inspections; medium 15 days, the working "
                    "days a rectification order's own follow-up allows; low off (information for attention, no step is owed). "
                    "From the acknowledgement, by event time; an assignment or a comment does not restart it (a hand-over "
                    "is no handling), a reopening does. null or 0: off for that severity")
    sampling_unqualified: SamplingUnqualifiedRule = SamplingUnqualifiedRule()
    fluctuation: FluctuationRule = FluctuationRule()
    grade_worsened: GradeWorsenedRule = GradeWorsenedRule()
    complaint_cluster: ComplaintClusterRule = ComplaintClusterRule()
    complaint_burst: ComplaintBurstRule = ComplaintBurstRule()
    complaint_illness: ComplaintIllnessRule = ComplaintIllnessRule()
    complaint_hazard: ComplaintHazardRule = ComplaintHazardRule()
    rectification_overdue: RectificationOverdueRule = RectificationOverdueRule()
    data_missing: DataMissingRule = DataMissingRule()
    inspection_nonconforming: InspectionNonconformingRule = InspectionNonconformingRule()
    rectification_rejected: RectificationRejectedRule = RectificationRejectedRule()
    judgement_disagrees: DisagreementRule = DisagreementRule()
    lab_failed_unjudged: LabFailedUnjudgedRule = LabFailedUnjudgedRule()
    lab_failed_passed: LabFailedPassedRule = LabFailedPassedRule()
    retest_inadmissible: RetestInadmissibleRule = RetestInadmissibleRule()
    enforcement_decided: EnforcementDecidedRule = EnforcementDecidedRule()
    interview_follow_up: InterviewFollowUpRule = InterviewFollowUpRule()
    near_limit: NearLimitRule = NearLimitRule()
    complaint_overdue: ComplaintOverdueRule = ComplaintOverdueRule()


# --------------------------------------------------------------------------- the alerts stage

ReceiverKind = Literal["email", "webhook", "dingtalk", "wecom"]
Category = Literal["packaged_water", "pastry", "other"]
CATEGORY_ZH = {"packaged_water": "包装饮用水", "pastry": "糕点", "other": "其他"}
"""How a warning names a category (processors.risk.CATEGORY_ZH says the same; schemas import nothing of processors)."""
_NAME = r"^[A-Za-z0-9_.-]{1,64}$"


def _netloc(url: str) -> str:
    """The part of an address between "//" and the path, where "user:password@" would be."""
    try:
        return urlsplit(url).netloc
    except ValueError:  # (a malformed host, "http://[::1": sending says so, not the policy)
        return ""


class Receiver(_Strict):
    """Where a supervisor is told: an e-mail address list, a webhook, or a DingTalk / WeCom group robot."""

    name: str = Field(pattern=_NAME, description="referred to by routes and escalation")
    kind: ReceiverKind
    supervisor: str = Field(default="", max_length=100, description="who reads it (姓名/岗位), shown in the alert's routing")
    to: list[str] = Field(default_factory=list, description="e-mail addresses (kind email)")
    url: str | None = Field(default=None, description="webhook or robot address (kinds webhook, dingtalk, wecom)")
    secret_env: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="kind dingtalk: the environment variable holding the robot's 加签 secret (SEC…); each message is "
                    "then signed. The secret itself stays out of the policy file, which is shared and versioned")

    @model_validator(mode="after")
    def _address(self) -> "Receiver":
        if self.kind == "email":
            bad = [a for a in self.to if "@" not in a or any(c.isspace() for c in a)]
            if not self.to or bad:
                raise ValueError(f"receiver {self.name}: an e-mail receiver needs addresses in 'to'" + (f" (not an address: {', '.join(bad)})" if bad else ""))
        elif not self.url or not self.url.startswith(("http://", "https://")):
            raise ValueError(f"receiver {self.name}: a {self.kind} receiver needs an http(s) 'url'")
        elif "@" in _netloc(self.url):
            # urllib would take "user:password@host" for the host and never connect; and the password would sit
            # in a shared, versioned file.  (The address itself is not repeated here: it holds the password.)
            raise ValueError(
                f"alerts.receivers[{self.name}].url: 地址中不能含用户名和密码（user:password@），这样的地址无法送达（qrisk 不发送 HTTP 基本认证）；"
                "请改用接收方放在地址路径或查询参数中的令牌（钉钉 access_token、企业微信 key、飞书 hook 路径），或在接收方一侧按来源 IP 放行 / "
                f"alerts.receivers[{self.name}].url: the address must not carry a user name and password (user:password@): "
                "it is never delivered (qrisk sends no HTTP basic authentication); use the token the receiver puts in the "
                "address's path or query (DingTalk access_token, WeCom key, a Feishu hook path), or allow qrisk's address at the receiver")
        if self.secret_env is not None and self.kind != "dingtalk":
            raise ValueError(f"receiver {self.name}: 'secret_env' signs DingTalk robot messages; a {self.kind} receiver has no use for it")
        return self


class AlertRoute(_Strict):
    """Alerts matching every given condition (an empty list matches anything) go to these receivers.
    Every matching route applies: a town's supervisor and the county's duty desk can both be told."""

    receivers: list[str] = Field(min_length=1)
    towns: list[str] = Field(default_factory=list, description="the enterprise's 乡镇/街道")
    categories: list[Category] = Field(default_factory=list)
    rules: list[str] = Field(default_factory=list, description="early-warning rule ids (processors.warnings.RULES)")
    min_severity: Severity = Field(default="low", description="this severity or a more severe one")

    @model_validator(mode="after")
    def _rules(self) -> "AlertRoute":
        for rule in self.rules:
            _known_rule(rule, "alerts.routes")
        return self


class Silence(_Strict):
    """Known and being handled elsewhere: matching alerts are still opened and kept, but nobody is notified."""

    reason: str = Field(min_length=1, max_length=500)
    enterprise_id: str | None = None
    rule: str | None = None
    town: str | None = None
    starts: AwareDatetime | None = Field(default=None, description="event time, with its UTC offset; absent: from the beginning")
    ends: AwareDatetime = Field(description="event time, with its UTC offset")

    @model_validator(mode="after")
    def _narrow(self) -> "Silence":
        _known_rule(self.rule, "alerts.silences")
        if self.enterprise_id is None and self.rule is None and self.town is None:
            raise ValueError("a silence must name an enterprise_id, a rule or a town: silencing everything hides every alert")
        if self.starts is not None and self.starts >= self.ends:
            raise ValueError("a silence must start before it ends")
        return self


class AlertsPolicy(_Strict):
    """Grouping, routing, escalation and silences (Alertmanager's ideas, plus ownership and escalation).

    Event time throughout: an alert escalates when the log's clock (its events and clock.tick)
    passes its response deadline without an acknowledgement, so a replay escalates the same alerts."""

    receivers: list[Receiver] = Field(default_factory=list)
    routes: list[AlertRoute] = Field(default_factory=list)
    escalate_to: list[str] = Field(default_factory=list, description="told when an alert is not acknowledged within its response time")
    unrouted_to: list[str] = Field(
        default_factory=list,
        description="told of every alert of a town that no route names (towns), beside any route that takes it by severity or category: a town left out "
                    "of the routes is not silent until escalation.  Empty: escalate_to takes such alerts")
    repeat_hours: int = Field(default=24, ge=1, description="a repeat of an open alert notifies its receivers again at most this often")
    silences: list[Silence] = Field(default_factory=list)
    live_within_hours: int = Field(default=720, ge=1, description="an event received later than this after it occurred (history, a back-fill) moves alerts but notifies nobody")
    event_ids_kept: int = Field(default=50, ge=1, le=10_000, description="occurrences' event ids kept on an alert as its evidence")
    closed_kept_days: int = Field(default=90, ge=1, le=3660, description="an alert verified or closed this long ago leaves the fold's memory (the alerts tables keep it)")
    close_note_min_severity: Severity | None = Field(
        default="high",
        description="closing an alert of this severity or a more severe one needs a note (why: 处置结果、核查结论): a 紧急/高 "
                    "alert closed with no reason leaves no record of how it was handled.  Checked when the step is asked for "
                    "(alerts.lifecycle.AlertBook.check); a step already in the log is kept, marked 未填写关闭理由.  null: never")

    @model_validator(mode="after")
    def _known(self) -> "AlertsPolicy":
        names = [r.name for r in self.receivers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"alerts.receivers: names used twice: {', '.join(dupes)}")
        unknown = sorted({n for route in self.routes for n in route.receivers} | set(self.escalate_to) | set(self.unrouted_to))
        unknown = [n for n in unknown if n not in names]
        if unknown:
            raise ValueError(f"alerts: routes, escalate_to or unrouted_to name unknown receivers: {', '.join(unknown)}")
        return self

    def routed_towns(self) -> set[str]:
        """The towns some route names."""
        return {t for r in self.routes for t in r.towns}

    def covers(self, town: str | None, category: str | None) -> bool:
        """Some route names ``town`` for this ``category``: it names the town and takes every category or this one.  A
        town named only by its water plants' route (categories: [packaged_water]) is not covered for its pastry makers."""
        return any(town in r.towns and (not r.categories or category in r.categories) for r in self.routes)

    def unrouted_towns(self, towns: "Iterable[str | None | tuple[str | None, str | None]]") -> list[str]:
        """Of the enterprises' ``towns`` — a town, or a (town, category) pair — those no route covers, said as a start-up
        warning (Chinese) would list them: a town no route names as itself (瓶窑镇), a town named only for other
        categories with the category (良渚街道（糕点类）).  Their alerts go to ``unrouted_to`` (or ``escalate_to``).
        Empty when no route names a town at all (a county routing by severity or category only) — nothing is left out
        then."""
        named = self.routed_towns()
        if not named:
            return []
        out: set[str] = set()
        for item in towns:
            town, category = item if isinstance(item, tuple) else (item, None)
            if town not in named:
                out.add(town or "（未登记乡镇）")
            elif isinstance(item, tuple) and not self.covers(town, category):
                out.add(f"{town}（{CATEGORY_ZH[category]}类）" if category in CATEGORY_ZH else f"{town}（类别未登记）")
        return sorted(out)

    def unrouted_warning(self, towns: "Iterable[str | None | tuple[str | None, str | None]]") -> str | None:
        """The start-up warning for the enterprises' towns (or (town, category) pairs) no route covers, or None."""
        missing = self.unrouted_towns(towns)
        if not missing:
            return None
        to = self.unrouted_to or self.escalate_to
        fallback = f"改为通知 {'、'.join(to)}（alerts.{'unrouted_to' if self.unrouted_to else 'escalate_to'}）" if to else "无人接收（请配置 alerts.unrouted_to 或 escalate_to）"
        return f"预警路由未覆盖以下乡镇/街道：{'、'.join(missing)}；这些企业的预警{fallback}。请在 alerts.routes 中为其指定接收人"

    def receiver(self, name: str) -> Receiver:
        return next(r for r in self.receivers if r.name == name)


class CampaignPolicy(_Strict):
    """The upgrade campaign's KPI targets (提档升级), and how a comparison test is judged."""

    training_rate: float = Field(default=0.90, gt=0, le=1, description="staff trained / staff, at least")
    full_staff_rate: float = Field(
        default=1.0, gt=0, le=1,
        description="the \"three ones\" (自我提升): staff trained and staff examined / staff, each at least (全员培训考试)")
    exam_first_pass_rate: float = Field(default=0.80, gt=0, le=1, description="online exam passed at the first attempt / takers, at least")
    key_posts_certified_rate: float = Field(default=1.0, gt=0, le=1, description="key posts certified (持证上岗) / key posts, at least")
    provincial_pass_rate: float | None = Field(
        default=None, gt=0, lt=1,
        description="the provincial average an enterprise's provincial sampling pass rate must exceed; null: 1 − "
                    "spc.reference_failure_rate of the enterprise's category (the same reference as the pass-rate charts)")
    provincial_task_sources: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: ["省"], min_length=1,
        description="任务来源 fragments that make a sample provincial supervision sampling (省级抽检): the KPI counts only these")
    starts_on: dt.date | None = Field(
        default=None, description="the campaign's start: the sampling pass rate and a passed acceptance's checks count from this day "
                                  "(absent: from each enterprise's earliest campaign document)")
    comparison_max_deviation: float = Field(default=0.10, gt=0, lt=1, description="a comparison test without uncertainties: relative deviation from the lab allowed")
    comparison_log10_sigma_pt: float = Field(
        default=0.25, gt=0, le=1.5,
        description="a comparison test of a colony count (CFU/…, MPN/…) without uncertainties is scored z = log10 difference from "
                    "the lab's value / this (σpt, the standard deviation for proficiency assessment: 0.25 log10 in "
                    "food-microbiology proficiency tests; a bureau choice): |z| ≤ 2 满意, 2 < |z| < 3 可疑, |z| ≥ 3 不满意 (ISO 13528)")

    @model_validator(mode="before")
    @classmethod
    def _satisfactory_bound(cls, data: Any) -> Any:
        # (a policy written before the z bands gave the satisfactory bound, |log10 difference| ≤ 2σpt: read as its σpt)
        if not isinstance(data, dict) or "comparison_max_log10_difference" not in data:
            return data
        bound = data["comparison_max_log10_difference"]
        if "comparison_log10_sigma_pt" in data:
            raise ValueError("comparison_max_log10_difference and comparison_log10_sigma_pt both given: the first is the former "
                             "name of twice the second; keep comparison_log10_sigma_pt alone / 两项只能保留 comparison_log10_sigma_pt")
        if not isinstance(bound, (int, float)) or isinstance(bound, bool) or not 0 < bound <= 3:
            raise ValueError(f"comparison_max_log10_difference must be a number > 0 and ≤ 3, got {bound!r}; it is read as "
                             "comparison_log10_sigma_pt = half of it (ISO 13528's |z| ≤ 2), the name to use now / "
                             "comparison_max_log10_difference 须为大于 0、不超过 3 的数，按其一半读作 comparison_log10_sigma_pt")
        data = {k: v for k, v in data.items() if k != "comparison_max_log10_difference"}
        data["comparison_log10_sigma_pt"] = bound / 2
        return data
    acceptance_risk_grades: list[Literal["A", "B", "C", "D"]] = Field(
        default_factory=lambda: ["C", "D"], description="risk grades on the acceptance day that make a passed acceptance one to check (须核实)")
    acceptance_verified_complaints: int = Field(
        default=1, ge=1, le=1000, description="verified complaints during the campaign, at least, that make a passed acceptance one to check")

    _reference: SpcPolicy = PrivateAttr(default_factory=SpcPolicy)

    def is_provincial(self, task_source: str) -> bool:
        """A sample of provincial supervision sampling, by its 任务来源."""
        return any(fragment in task_source for fragment in self.provincial_task_sources)

    def provincial_average(self, category: str | None) -> float:
        """The pass rate an enterprise's provincial samples must exceed: the policy's, else 1 − the
        category's reference failure rate (``spc.reference_failure_rate``, which ``Policy`` hands down)."""
        if self.provincial_pass_rate is not None:
            return self.provincial_pass_rate
        return 1.0 - self._reference.reference_failure(category)


class Policy(_Strict):
    utc_offset_hours: int = Field(default=8, ge=-12, le=14, description="the bureau's local time: deadlines are local dates")
    complaint_cluster: ComplaintClusterPolicy = ComplaintClusterPolicy()
    complaint_burst: ComplaintBurstPolicy = ComplaintBurstPolicy()
    complaint_duplicates: ComplaintDuplicatesPolicy = ComplaintDuplicatesPolicy()
    retest: RetestPolicy = RetestPolicy()
    sampling_turnaround: SamplingTurnaroundPolicy = SamplingTurnaroundPolicy()
    complaint_deadlines: ComplaintDeadlinesPolicy = ComplaintDeadlinesPolicy()
    spc: SpcPolicy = SpcPolicy()
    risk: RiskPolicy = RiskPolicy()
    warnings: WarningsPolicy = WarningsPolicy()
    alerts: AlertsPolicy = AlertsPolicy()
    campaign: CampaignPolicy = CampaignPolicy()

    @model_validator(mode="after")
    def _campaign_reference(self) -> "Policy":
        # the campaign's provincial average defaults to the pass-rate charts' reference
        self.campaign._reference = self.spc
        return self
