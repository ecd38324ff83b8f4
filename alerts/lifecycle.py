"""The alert lifecycle: early-warning decisions and supervisors' steps folded into alerts.

    open ──acknowledge──> acknowledged ──start_rectification──> rectifying ──verify──> verified ──close──> closed
      └──────────────────────────────── close (any state) ─────────────────────────────────────────┘
    closed / verified ──reopen──> open
    closed / verified ──the acceptance that settled it reversed (the inspection system's)──> rectifying

A pure fold, like ``processors.step``: ``AlertBook.apply(event, effects, ...)`` takes one
logged event and the effects ``step()`` made of it, and returns what changed.  No I/O and no
wall clock: an alert's response deadline is event time, and it escalates when the log's own
clock (its events, ``clock.tick`` included) passes the deadline unacknowledged — so a replay
of the log rebuilds the same alerts, escalations and notifications.  Acknowledging is no handling
(早处置): an alert acknowledged and then left — not put under rectification, verified or closed
within ``warnings.handle_within_hours`` of its acknowledgement — escalates once more, by the same
clock, as 已确认超时未处置, naming who acknowledged it, when, and the step still missing.

Grouping: a decision whose ``dedup_key`` names an alert that is still being handled (not
verified, not closed) is a repeat of it — counted, its event id kept as evidence, its receivers
told again at most every ``repeat_hours`` (or at once when the severity rises).  After an
alert is verified or closed, the same key opens a new alert.

Rectification (整改) links itself: an order (``rectification.ordered``) whose ``cause`` names an
active alert of the same enterprise — its id, or what it is about (the failing sample's number,
the inspection, the complaints, the overdue or rejected rectification) — moves it to rectifying; the order's completion is noted on it,
and its verification verifies it (or closes an alert that was never put under rectification,
such as the overdue warning of that same order).  An order may come first (the on-site 责令改正 posted before
the inspection record it cites): the book keeps each enterprise's orders and their status, and an alert opened
later that an order's cause cites is put under that rectification at once — verified, if its acceptance came
first too.  A failed verification is noted and the alert
stays open for the next one.  These steps are the inspection system's, by its events: nobody is
notified of them, as of any supervisor's step.  A rejection that takes an acceptance back
(``rectification.verification_reversed``) puts the alerts that acceptance verified or closed back under
rectification, and tells their receivers as a reopening does; a verification dated before the one in force
that arrives after it (``rectification.verification_outdated``) moves nothing, nor does an interview
record sent again or outdated (``interview.repeated`` / ``interview.outdated``).  An alert also closes itself when its ground goes away (a
``warning.resolved`` effect of the fold): a missing-data alert when the awaited sample or inspection arrives,
noting which record came; a failure's when a correction or an admitted re-test takes it back; a complaint-chart
alert when the fold withdraws its signal (``fluctuation.signal_withdrawn``: every complaint of that month was
found unfounded), and a pass-rate alert, the enterprise's or the county's, when a re-test, a correction or a
retraction leaves its period within the limit, so it does not escalate on nothing.  Such a closing is the system's, not a person's: whoever
was told of the alert is told it closed, and why.

A county alert (the county's pass-rate chart of a category signalled) is about the category, not
an enterprise: it is named 本县…类（县级预警）, routed by no town (the category's routes, else
``escalate_to``), and its notice names the enterprise whose sample tipped it as the trigger.  It is
kept under that enterprise's id all the same: a supervisor's step on it is an event of that
enterprise, which reaches the book (in the Kafka mode, the worker) holding the alert.

Routing: every ``alerts.routes`` entry that matches the enterprise's town and category and the
rule and severity adds its receivers; when the routes name towns but none names the enterprise's for its
category (no route names the town, or only for other categories), every one of its alerts also goes to
``unrouted_to`` (else ``escalate_to``), beside the routes that take it by severity or category; a matching
silence keeps the alert (nothing is lost) but notifies nobody, and a response or handling deadline that passes
while it holds is escalated as soon as no silence applies (``held``, asked again at each event against the policy
and the town as they are then), not spent telling nobody.  Each notification is a ``Notification`` for the outbox, with a delivery id
that the same alert step to the same receiver always gets.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import heapq
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from pydantic import Field, TypeAdapter, model_validator

from alerts.messages import RASFF_ZH, SEVERITY_ZH
from alerts.notification import REASONS_ZH, Notification
from processors._build import FoldState, builder
from processors.risk import CATEGORY_ZH
from processors.warnings import WITHDRAWN_KIND, withdrawn_resolved
from schemas.events import (
    AlertActionEvent,
    Envelope,
    EnterpriseRegistered,
    EnterpriseUpdated,
    InterviewHeldEvent,
    RectificationCompletedEvent,
    RectificationOrderedEvent,
    RectificationVerifiedEvent,
)
from schemas.policy import SEVERITIES, AlertsPolicy, Policy, Receiver, Silence

ALERT_KIND = "warning.raised"  # processors.warnings.ALERT_KIND: the effect that carries a decision
RESOLVED_KIND = "warning.resolved"  # processors.warnings.RESOLVED_KIND: the problem went away by itself (the awaited data came)
SYSTEM = "qrisk"
GRADE_RULE = "risk.grade_worsened"
STEPS_KEPT = 200
REFS_KEPT = 50
_RECTIFICATION_EVENTS = (RectificationOrderedEvent, RectificationCompletedEvent, RectificationVerifiedEvent)
_HISTORY_ONLY = frozenset({"interview.repeated", "interview.outdated"})
"""What the credit file says of an interview record it files without counting: a resend answered the alerts once already,
and a record dated before the one in force is not the interview's record (its alerts' history would tell it twice)."""
REVERSED_KIND = "rectification.verification_reversed"
OUTDATED_KIND = "rectification.verification_outdated"

STATES = ("open", "acknowledged", "rectifying", "verified", "closed")
STATE_ZH = {"open": "待处置", "acknowledged": "已确认", "rectifying": "整改中", "verified": "整改复查通过", "closed": "已关闭"}
ACTIVE = frozenset({"open", "acknowledged", "rectifying"})
"""Being handled: a repeat of the problem joins the alert instead of opening a new one."""

TRANSITIONS: dict[str, tuple[frozenset[str], str | None]] = {
    # action: (states it may start from, the state it leads to; None: the state stays)
    "acknowledge": (frozenset({"open"}), "acknowledged"),
    "assign": (frozenset(ACTIVE | {"verified"}), None),
    "start_rectification": (frozenset({"open", "acknowledged"}), "rectifying"),
    "verify": (frozenset({"rectifying"}), "verified"),
    "close": (frozenset({"open", "acknowledged", "rectifying", "verified"}), "closed"),
    "reopen": (frozenset({"verified", "closed"}), "open"),
    "comment": (frozenset(STATES), None),
    # a supervisor escalating by hand (a problem beyond the town's means): the escalation receivers are told,
    # as when nobody acknowledged it in time; the state stays
    "escalate": (frozenset(ACTIVE), None),
}
ACTION_ZH = {
    "acknowledge": "确认", "assign": "指派", "escalate": "手动升级", "start_rectification": "责令整改", "verify": "整改复查通过", "close": "关闭",
    "reopen": "重新打开", "comment": "备注", "opened": "生成预警", "repeated": "再次发生", "severity_raised": "级别提高",
    "escalated": "超时未确认，升级", "verification_reversed": "复查通过被撤销",
    "handling_overdue": "已确认超时未处置，升级",
}
HANDLED = frozenset({"rectifying", "verified", "closed"})
"""States that end the wait for handling (早处置): the problem is under rectification or settled.  An assignment, a comment,
an interview or an escalation by hand leaves it acknowledged and the wait running: each is a word about the problem, not a
measure on it, and a chain of hand-overs restarting the wait would keep the county from ever hearing of it."""
_RANK = {s: i for i, s in enumerate(SEVERITIES)}  # critical 0 … low 3
_MOMENT: TypeAdapter[dt.datetime] = TypeAdapter(dt.datetime)


ESCALATION_SPACING = dt.timedelta(hours=1)
"""A manual escalation within this long of the last escalation that told its receivers (manual or for the deadline)
is refused at the door, and one in the log anyway tells nobody: five in a row sent five rounds of robot, e-mail and webhook messages
(a DingTalk robot takes 20 a minute)."""


def escalation_too_soon(alert_id: str, escalated_at: dt.datetime | None, at: dt.datetime) -> str | None:
    """Why a manual escalation at ``at`` is refused (Chinese), or None when the last was an hour or more before."""
    if escalated_at is None or at - escalated_at >= ESCALATION_SPACING:
        return None
    ago = max(int((at - escalated_at).total_seconds() // 60), 0)
    wait = max(int(-(-(ESCALATION_SPACING - (at - escalated_at)).total_seconds() // 60)), 1)
    return (f"预警 {alert_id} 在 {ago} 分钟前已升级通报（手动升级或超时自动升级）；1 小时内不能再次手动升级，以免重复通知"
            f"升级接收人（钉钉机器人每分钟至多 20 条）。如有新情况请用备注（comment）补充，或约 {wait} 分钟后再升级")


def newer_alert_handles(alert_id: str, newer: str) -> str:
    """Why ``alert_id`` may not be reopened (Chinese): its problem came back and ``newer`` is being handled for it."""
    return f"预警 {alert_id} 的问题已有新的预警 {newer} 在处置，不能重新打开；请在预警 {newer} 上继续处置，或用备注（comment）补充本预警"


STATUS_NOTICES = frozenset({"closed_by_system", "transferred", "evidence_corrected"})
"""Notices of a change of an alert's standing (the system closed it, it was handed to another town, the report it rests
on was corrected): news the day it happens.  A rebuild or a Kafka refold that derives one again from a step older than
``STATUS_NOTICE_FRESH_HOURS`` (an upgrade that first makes them, a receiver added since) records it as history, where an
opening or an escalation is still news within ``alerts.live_within_hours``: a three-week-old closing reads as if it had
just happened."""
STATUS_NOTICE_FRESH_HOURS = 24


class AlertActionError(ValueError):
    """A step that this alert cannot take now; the message is for the supervisor (Chinese)."""


class AlertNoteRequired(AlertActionError):
    """A step that needs a note (a reason) and came without one: a bad request (422), not a conflict."""


NO_CLOSE_REASON = "（未填写关闭理由）"


def note_missing(alert: "Alert", action: str, note: str | None, policy: AlertsPolicy) -> str | None:
    """Why ``action`` may not be taken on ``alert`` with ``note`` (Chinese), or None.  Closing a 紧急/高
    alert (``alerts.close_note_min_severity``) needs a reason: how it was handled is what a later
    review, and the enterprise's credit file, rely on."""
    floor = policy.close_note_min_severity
    if action != "close" or floor is None or (note or "").strip() or _RANK.get(alert.severity, 9) > _RANK[floor]:
        return None
    return (f"关闭{SEVERITY_ZH.get(alert.severity, alert.severity)}级预警 {alert.alert_id} 须填写关闭理由（note），"
            f"例如处置结果、核查结论或整改复查情况")


class AlertStep(FoldState):

    version: int
    at: dt.datetime
    action: str
    from_state: str
    to_state: str
    actor: str
    note: str = ""
    event_id: str


class Alert(FoldState):
    """One problem of one enterprise, from its first warning until it is closed."""

    alert_id: str
    dedup_key: str
    enterprise_id: str
    enterprise_name: str
    town: str | None = None
    category: str | None = None
    rule: str
    severity: str
    rasff_class: str
    title_zh: str
    message_zh: str
    message_en: str
    state: str = "open"
    assignee: str | None = None
    opened_at: dt.datetime
    updated_at: dt.datetime
    respond_by: dt.datetime | None = Field(default=None, description="event time by which a supervisor must acknowledge it")
    seen_from: dt.datetime | None = Field(default=None, description="when a supervisor could first see it: the event time, or "
                                                                    "its arrival when a live event came later (a lab's report "
                                                                    "sent two days after its date); its response time starts then")
    acknowledged_at: dt.datetime | None = None
    acknowledged_by: str | None = Field(default=None, description="who acknowledged it (a supervisor, or the system that sent "
                                                                  "the interview record that answered it): whom the county asks "
                                                                  "when it is left unhandled")
    handle_by: dt.datetime | None = Field(default=None, description="event time by which an acknowledged alert is to be put under "
                                                                    "rectification, verified or closed (warnings.handle_within_hours "
                                                                    "from the acknowledgement); null when no such wait runs")
    handling_escalated: bool = Field(default=False, description="its handling deadline passed while it was still acknowledged, and "
                                                                "it was escalated for that (已确认超时未处置)")
    reopened_at: dt.datetime | None = Field(default=None, description="when it was last reopened: its new time to respond "
                                                                      "started then, and an escalation counts the wait from it")
    closed_at: dt.datetime | None = None
    closing_evidence: dict[str, Any] | None = Field(default=None, description="the system closed it: the evidence of why (the "
                                                                              "correction, re-test, record or finding that took its "
                                                                              "ground away, with its event ids)")
    occurrences: int = 1
    last_occurred_at: dt.datetime
    event_ids: list[str] = Field(default_factory=list, description="the events that raised it, oldest first (the latest kept)")
    evidence: dict[str, Any] = Field(default_factory=dict, description="the latest decision's evidence")
    escalated: bool = False
    escalated_at: dt.datetime | None = Field(default=None, description="when an escalation (by hand or for its deadline) last "
                                                                      "told its receivers: another by hand waits an hour")
    silenced: str | None = Field(default=None, description="the silence's reason: kept, nobody notified")
    receivers: list[str] = Field(default_factory=list)
    notified_at: dt.datetime | None = None
    refs: list[str] = Field(default_factory=list, description="what it is about (the failing sample's no., the inspection, "
                                                            "complaint or rectification ids): a rectification order citing one is for it")
    rectifications: list[str] = Field(default_factory=list, description="rectification ids linked to it")
    version: int = 0
    steps: list[AlertStep] = Field(default_factory=list)

    def view(self, steps: bool = True) -> dict[str, Any]:
        """The alert as JSON with its Chinese labels; ``steps=False`` leaves its history out (the
        ``alert_events`` table has it, and a notification needs the alert, not how it got here)."""
        out = self.model_dump(mode="json", exclude=None if steps else {"steps"})
        if steps:
            out["steps"] = [step_view(s) for s in out["steps"]]
        out["state_zh"] = STATE_ZH[self.state]
        out["handling_overdue"] = self.handling_overdue
        out["handling_zh"] = HANDLING_OVERDUE_ZH if self.handling_overdue else ""
        out["severity_zh"] = SEVERITY_ZH.get(self.severity, self.severity)
        out["rasff_class_zh"] = RASFF_ZH.get(self.rasff_class, self.rasff_class)
        return out

    @property
    def handling_overdue(self) -> bool:
        """Acknowledged, its time to handle gone by the log's clock, and still not handled (escalated for it)."""
        return self.handling_escalated and self.state == "acknowledged"


HANDLING_OVERDUE_ZH = "已确认超时未处置"


def actor_zh(actor: str | None) -> str:
    """Who took a step, as a Chinese text names them: the system's own steps (opening, repeats,
    escalation, closing when the awaited data came) are 系统's, not "qrisk"'s."""
    return "系统" if actor == SYSTEM else actor or "—"


def done_by_zh(step: dict[str, Any]) -> str:
    """Who took a step and what it was, as a sentence part: 系统自动关闭, 由系统级别提高, 由 李四关闭
    (the credit file's 处置情况 says how an alert was closed with it)."""
    action = step.get("action_zh") or ACTION_ZH.get(step.get("action") or "", step.get("action") or "")
    if step.get("actor") == SYSTEM:
        return f"系统自动{action}" if step.get("action") == "close" else f"由系统{action}"
    return f"由 {actor_zh(step.get('actor'))}{action}"


def step_view(step: dict[str, Any]) -> dict[str, Any]:
    """A step as JSON (or an ``alert_events`` row) with its action and states in Chinese beside the codes."""
    step["action_zh"] = ACTION_ZH.get(step["action"], step["action"])
    if "actor" in step:
        step["actor_zh"] = actor_zh(step["actor"])
    step["from_state_zh"] = STATE_ZH.get(step["from_state"], step["from_state"])
    step["to_state_zh"] = STATE_ZH.get(step["to_state"], step["to_state"])
    return step


@dataclass(frozen=True)
class Enterprise:
    """What routing needs to know of an enterprise (from its credit file)."""

    name: str
    town: str | None = None
    category: str | None = None


@dataclass
class AlertChange:
    """One step of one alert: the alert after it, the step, and whom to tell."""

    alert: Alert
    step: AlertStep
    notifications: list[Notification] = field(default_factory=list)


class OrderSeen(FoldState):
    """A rectification order as the alert fold last saw it.  The inspectors often post the on-site 责令改正 before the
    inspection record it cites: an alert opened after its order links to it from here, as one opened before it is
    linked when the order comes (``AlertBook._orders_before``)."""

    rectification_id: str
    event_id: str
    cause: str
    what: str
    deadline: dt.date
    ordered_at: dt.datetime
    ordered_by: str = Field(description="who sent the order (its source): the linking step is theirs")
    status: str = Field(default="ordered", description="ordered / completed / verified / rejected, as the credit file's record")
    updated_at: dt.datetime
    verification: dict[str, str] | None = Field(default=None, description="the accepted verification in force (event_id, actor, "
                                                                         "verifier, note): an alert opened after it is verified by it")
    answered: list[str] = Field(default_factory=list, description="what its cause cites that an alert linked to it was about: a "
                                                                "later alert about only those (a rolling complaint cluster, a "
                                                                "failure standing again) is a new occurrence, not this order's")


# a rectification's outcomes, in the order they settle an alert under it
_WAITED_KINDS = ("rectification.completed", "rectification.rejected", "rectification.verified")
_ORDER_STATUS = {"rectification.completed": "completed", "rectification.rejected": "rejected", "rectification.verified": "verified"}


def _waits_for_it(alert: Alert, before: str, at: dt.datetime) -> bool:
    """Whether ``alert`` (in state ``before``) waits at ``at`` for the escalation its deadline owes: unacknowledged past its
    time to respond, or acknowledged and unhandled past its time to handle."""
    if before == "open":
        return alert.respond_by is not None and alert.respond_by < at
    return before == "acknowledged" and alert.handle_by is not None and alert.handle_by < at


class AlertBook(FoldState):
    """Every alert of a county, and the indexes the fold needs."""

    alerts: dict[str, Alert] = Field(default_factory=dict)
    active_by_key: dict[str, str] = Field(default_factory=dict, description="dedup key → the alert being handled")
    # The same alerts by enterprise: a rectification event looks for its enterprise's, and a county
    # of a thousand enterprises has thousands being handled.  Derived from ``active_by_key`` (not
    # written out; rebuilt when a book is read back), kept in step by ``_activate``/``_deactivate``.
    active_by_enterprise: dict[str, dict[str, None]] = Field(default_factory=dict, exclude=True, repr=False)
    serial: dict[str, int] = Field(default_factory=dict, description="dedup key → alerts opened with it so far")
    deadlines: list[tuple[dt.datetime, str]] = Field(default_factory=list, description="a heap of (respond_by, alert_id)")
    handling_deadlines: list[tuple[dt.datetime, str]] = Field(default_factory=list, description="a heap of (handle_by, alert_id)")
    held: dict[str, tuple[str, dt.datetime, dt.datetime]] = Field(
        default_factory=dict, description="alert_id → (the reason of the silence that held its escalation back, that silence's "
                                          "end, the deadline it passed): only alerts whose escalation a silence actually holds, "
                                          "asked again at every escalation pass against the policy and the alert's town as they "
                                          "are then, and escalated as soon as no silence applies")
    clock: dt.datetime | None = Field(default=None, description="the latest event time seen (never past its receipt)")
    orders: dict[str, dict[str, OrderSeen]] = Field(default_factory=dict, description="enterprise → rectification id → the order "
                                                                                       "as last seen: an alert opened later links to "
                                                                                       "the orders whose cause cites it")
    pruned_on: dt.date | None = None

    @model_validator(mode="before")
    @classmethod
    def _held_from_silence_ends(cls, data: Any) -> Any:
        """A book written before ``held`` (a Kafka worker's snapshot of fold version 64) listed every alert a silence had
        kept quiet, by the silence's end: those whose deadline had passed in it, unescalated, are the escalations held."""
        if not isinstance(data, dict) or "silence_ends" not in data:
            return data
        data = dict(data)
        moment = _MOMENT.validate_python
        clock = moment(data["clock"]) if data.get("clock") is not None else None
        held: dict[str, tuple[str, dt.datetime, dt.datetime]] = {}
        for ends, alert_id in data.pop("silence_ends") or []:
            a = (data.get("alerts") or {}).get(alert_id)
            if not isinstance(a, dict) or clock is None:
                continue
            by = (a.get("respond_by") if a.get("state") == "open" and not a.get("escalated") else
                  a.get("handle_by") if a.get("state") == "acknowledged" and not a.get("handling_escalated") else None)
            if by is not None and moment(by) < min(moment(ends), clock):
                held[alert_id] = (a.get("silenced") or "静默", moment(ends), moment(by))
        data.setdefault("held", held)
        return data

    @model_validator(mode="after")
    def _index_active(self) -> "AlertBook":
        index: dict[str, dict[str, None]] = {}
        for alert_id in self.active_by_key.values():
            index.setdefault(self.alerts[alert_id].enterprise_id, {})[alert_id] = None
        self.active_by_enterprise = index
        return self

    def _activate(self, alert: Alert) -> None:
        """``alert`` is the one being handled for its dedup key (replacing any other)."""
        self._deactivate(alert.dedup_key)
        self.active_by_key[alert.dedup_key] = alert.alert_id
        self.active_by_enterprise.setdefault(alert.enterprise_id, {})[alert.alert_id] = None

    def _deactivate(self, key: str, alert_id: str | None = None) -> None:
        """Nothing is handled for ``key`` any more (if ``alert_id`` is given: only if it was that alert)."""
        current = self.active_by_key.get(key)
        if current is None or (alert_id is not None and current != alert_id):
            return
        del self.active_by_key[key]
        enterprise_id = self.alerts[current].enterprise_id
        mine = self.active_by_enterprise.get(enterprise_id)
        if mine is not None:
            mine.pop(current, None)
            if not mine:
                del self.active_by_enterprise[enterprise_id]

    # ------------------------------------------------------------------ the fold

    def apply(self, event: Envelope, effects: Iterable[Any], policy: Policy,
              enterprise: Callable[[str], Enterprise | None]) -> list[AlertChange]:
        """Fold one logged event and its effects.  Raises ``AlertActionError`` for a supervisor's
        step the alert cannot take (nothing changes then)."""
        changes: list[AlertChange] = []
        # An event is live when it reached qrisk soon after it happened.  A back-filled one (history
        # imported a year later) still opens and moves alerts, but tells nobody: a bureau loading
        # last year wants the record, not five hundred e-mails.
        received = event.received_at or event.occurred_at
        live = received - event.occurred_at <= dt.timedelta(hours=policy.alerts.live_within_hours)
        effects = list(effects)  # (read twice: the decisions, then what the credit file made of the event itself)
        if isinstance(event, AlertActionEvent):
            changes.append(self._act(event, policy, live))
        for eff in effects:
            if eff.kind == ALERT_KIND:
                linked: list[AlertChange] = []
                change = self._decision(eff.data, eff.event_id, eff.occurred_at, policy, enterprise, live,
                                        max(eff.occurred_at, received) if live else eff.occurred_at, linked)
                if change is not None:
                    # the effect row names the alert the decision went to: which of a dedup key's alerts a late
                    # raise belongs to is this fold's order, not its date (the dashboards read it from here)
                    object.__setattr__(eff, "data", {**eff.data, "alert_id": change.alert.alert_id})
                    changes.append(change)
                    changes += linked
                    if change.step.action == "opened" and change.alert.rule == GRADE_RULE:
                        changes += self._grade_superseded(change.alert, eff.event_id, eff.occurred_at)
            elif eff.kind == RESOLVED_KIND:
                change = self._resolved(eff.data, eff.event_id, eff.occurred_at, policy, live)
                # as a raise, the effect row names the alert it closed ("": none open), so that the dashboards say why
                # an alert shows 已关闭, and leave out one whose report was corrected, without reading its steps
                object.__setattr__(eff, "data", {**eff.data, "alert_id": change.alert.alert_id if change is not None else ""})
                if change is not None:
                    changes.append(change)
            elif eff.kind == WITHDRAWN_KIND:
                # a complaint-chart signal whose complaints were all found unfounded, or a pass-rate signal the
                # failures left no longer support: its alert rested on nothing, so it closes (and does not escalate)
                # as a problem that went away by itself.  Closed by dedup key: a county alert is kept under the
                # enterprise that tipped it, and the failure that went may be another enterprise's
                data = withdrawn_resolved(eff.enterprise_id, eff.data, eff.event_id, policy)
                change = self._resolved(data, eff.event_id, eff.occurred_at, policy, live) if data is not None else None
                object.__setattr__(eff, "data", {**eff.data, "alert_id": change.alert.alert_id if change is not None else ""})
                if change is not None:
                    changes.append(change)
        if isinstance(event, (EnterpriseRegistered, EnterpriseUpdated)):
            changes += self._moved(event, policy, enterprise, live)
        # What the credit file made of the event decides whether it moves alerts: a record sent again, or one dated
        # before the record in force that arrives after it, is history there, and must be history here too
        said = {eff.kind: eff.data for eff in effects if eff.event_id == str(event.event_id)}
        if isinstance(event, _RECTIFICATION_EVENTS):
            changes += self._rectification(event, said, [eff for eff in effects if eff.event_id == str(event.event_id)], policy, live)
        elif isinstance(event, InterviewHeldEvent) and not _HISTORY_ONLY & said.keys():
            changes += self._interview(event, policy)
        # The clock never runs ahead of when the event was received: one result stamped 2062 by
        # mistake must not make every alert of the county overdue
        moment = min(event.occurred_at, received)
        if self.clock is None or moment > self.clock:
            self.clock = moment
        changes += self._escalate(event, policy, live)
        # a flag a silence left is cleared when the fold next looks at the alert, not by a list of every alert a silence
        # ever kept quiet (a silence until 2099 on a noisy rule grew one without bound, scanned at every silenced notice)
        for c in changes:
            if c.alert.silenced is not None and _silence(c.alert, policy.alerts, self.clock) is None:  # type: ignore[arg-type]
                c.alert.silenced = None
        self._prune(policy)
        return changes

    def _prune(self, policy: Policy) -> None:
        """Alerts verified or closed long ago leave the book (the alerts tables keep them): a worker's
        snapshot and the embedded runtime's memory stay the size of what is being handled.  Once a
        day of the log's clock, so the scan costs nothing per event."""
        if self.clock is None or self.pruned_on == self.clock.date():
            return
        self.pruned_on = self.clock.date()
        cutoff = self.clock - dt.timedelta(days=policy.alerts.closed_kept_days)
        for alert_id in [k for k, a in self.alerts.items() if a.state in ("verified", "closed") and a.updated_at < cutoff]:
            del self.alerts[alert_id]
        for alert_id in [k for k in self.held if k not in self.alerts]:
            del self.held[alert_id]
        # an order verified as long ago is done with: a record of its problem arriving now is news, not its rectification's
        for enterprise_id, mine in list(self.orders.items()):
            for rid in [r for r, o in mine.items() if o.status == "verified" and o.updated_at < cutoff]:
                del mine[rid]
            if not mine:
                del self.orders[enterprise_id]

    def check(self, alert_id: str, action: str, note: str | None = None, policy: AlertsPolicy | None = None,
              at: dt.datetime | None = None) -> Alert:
        """The alert, if ``action`` may be taken on it now; else ``AlertActionError`` (or ``KeyError``).
        Given the step's ``note`` and the ``policy``, also ``AlertNoteRequired`` when the step needs a
        reason it lacks (``note_missing``); given the time ``at``, an escalation within an hour of the last
        (``escalation_too_soon``).  Those are asked at the door, not in the fold: a step already in the log
        replays as it was taken."""
        alert = self.alerts[alert_id]
        allowed, _ = TRANSITIONS[action]
        if alert.state not in allowed:
            starts = "、".join(STATE_ZH[s] for s in STATES if s in allowed)
            raise AlertActionError(f"预警 {alert_id} 当前状态为“{STATE_ZH[alert.state]}”，不能执行“{ACTION_ZH[action]}”"
                                   f"（该操作仅适用于{starts}状态的预警）")
        if TRANSITIONS[action][1] == "open":
            # asked here, at the door, as the fold asks it: a refusal only the fold made wrote the step to the log and
            # answered with the race's text (已被其他操作改变), losing the reason the officer can act on
            newer = self.active_by_key.get(alert.dedup_key)
            if newer not in (None, alert_id):
                raise AlertActionError(newer_alert_handles(alert_id, newer))
        if action == "escalate" and at is not None:
            why = escalation_too_soon(alert_id, alert.escalated_at, at)
            if why is not None:
                raise AlertActionError(why)
        if policy is not None:
            why = note_missing(alert, action, note, policy)
            if why is not None:
                raise AlertNoteRequired(why)
        return alert

    # ------------------------------------------------------------------ decisions

    def _decision(self, d: dict[str, Any], event_id: str, at: dt.datetime, policy: Policy,
                  enterprise: Callable[[str], Enterprise | None], live: bool, seen: dt.datetime,
                  linked: list[AlertChange] | None = None) -> AlertChange | None:
        """``seen``: when a supervisor could first see the decision — its event's time, or the event's arrival
        when a live one came later.  The time to respond runs from then: a report dated two days before it
        was sent must not open an alert already overdue and escalate it on arrival.  ``linked`` gets the steps
        of the orders seen before the alert that cite it (after the opening's change)."""
        ap = policy.alerts
        key = d["dedup_key"]
        current = self.active_by_key.get(key)
        if (d.get("evidence") or {}).get("corrected_from"):
            # a failing report corrected into another failure: the sample's alert (being handled or settled) takes the
            # corrected evidence; one settled so long ago it left the book (closed_kept_days) is history, which the
            # correction does not bring back as news (the alerts table keeps it); only a failure never raised (the rule was
            # off then) opens as one
            latest = current or (_alert_id(key, self.serial[key]) if key in self.serial else None)
            if latest is not None and latest in self.alerts:
                return self._evidence_corrected(self.alerts[latest], d, event_id, at, policy, live, seen)
            if latest is not None:
                return None
        if (d.get("evidence") or {}).get("retest_of"):
            # a re-test upholding the failure: the failure's alert (being handled or not) notes it, no new occurrence
            latest = current or (_alert_id(key, self.serial[key]) if key in self.serial else None)
            # (not a closed one: the failure was taken back — a passing re-test, a correction — and now stands
            # again, say a re-test corrected to 不合格: that is a failure to handle, opened as one)
            if latest is not None and latest in self.alerts and self.alerts[latest].state != "closed":
                alert = self.alerts[latest]
                return AlertChange(alert, _step(alert, "comment", alert.state, SYSTEM, d["message_zh"], event_id, at))
        if current is not None:
            return self._repeat(self.alerts[current], d, event_id, at, policy, live, seen)
        n = self.serial.get(key, 0) + 1
        self.serial[key] = n
        alert_id = _alert_id(key, n)
        info = enterprise(d["enterprise_id"]) or Enterprise(name=d["enterprise_id"])
        evidence = d.get("evidence") or {}
        if evidence.get("scope") == "category":
            # the county's chart of a category: no town's problem, so no town's route (the county's routes take it)
            category = evidence.get("category") or info.category
            info = Enterprise(name=county_name(category), town=None, category=category)
        hours = d.get("respond_within_hours")
        alert = _build_alert(
            alert_id=alert_id, dedup_key=key, enterprise_id=d["enterprise_id"], enterprise_name=info.name, town=info.town,
            category=info.category, rule=d["rule"], severity=d["severity"], rasff_class=d["rasff_class"], title_zh=d["title_zh"],
            message_zh=d["message_zh"], message_en=d["message_en"], opened_at=at, updated_at=at,
            respond_by=seen + dt.timedelta(hours=hours) if hours else None, seen_from=seen if seen != at else None,
            last_occurred_at=at, event_ids=[event_id],
            evidence=d.get("evidence") or {},
        )
        _add_refs(alert, alert.evidence)
        alert.receivers = route(alert, ap)
        note = d["message_zh"]
        routed = ap.routed_towns()
        if evidence.get("scope") == "category":
            if not alert.receivers:
                alert.receivers = list(ap.escalate_to)  # a county-wide problem reaches the county's people, if no route names it
        elif not ap.covers(alert.town, alert.category) and (routed or (ap.unrouted_to and not alert.receivers)):
            # a town the routes leave out (routes name towns, not this one, or name it only for other categories — its
            # water plants' route is nobody's for its pastry makers): told to the county's fallback now, not
            # first at escalation (168 h for a medium alert) — for every alert, beside any route that takes it by
            # severity or category (the duty desk's "high and worse" is no stand-in for the town's supervisor, and
            # `qrisk run` said at start that such towns' alerts go to the fallback).  A town the routes name but not
            # at this severity is the bureau's choice and stays so; in a county whose routes name no town at all,
            # ``unrouted_to`` takes only what no route takes
            fallback = list(ap.unrouted_to or ap.escalate_to)
            alert.receivers = list(dict.fromkeys(alert.receivers + fallback))
            if fallback:
                note += f"（预警路由未覆盖{_uncovered_zh(alert, ap)}，已通知 {'、'.join(receiver_zh(n, ap) for n in fallback)}）"
        alert.silenced = silenced(alert, ap, at)
        self.alerts[alert_id] = alert
        self._activate(alert)
        if alert.respond_by is not None:
            heapq.heappush(self.deadlines, (alert.respond_by, alert_id))
        step = _step(alert, "opened", "open", SYSTEM, note, event_id, at)
        # linked before its receivers are told: the notice says 整改中 (ZG-… already ordered), not 请于 … 前确认处置
        also = self._orders_before(alert, at, policy)
        if linked is not None:
            linked += also
        return AlertChange(alert, step, self._notify(alert, step, "opened", alert.receivers, policy, live))

    def _repeat(self, alert: Alert, d: dict[str, Any], event_id: str, at: dt.datetime, policy: Policy, live: bool,
                seen: dt.datetime) -> AlertChange:
        ap = policy.alerts
        alert.occurrences += 1
        alert.last_occurred_at = max(alert.last_occurred_at, at)
        if event_id not in alert.event_ids:
            alert.event_ids.append(event_id)
            del alert.event_ids[: max(0, len(alert.event_ids) - ap.event_ids_kept)]
        alert.evidence = d.get("evidence") or alert.evidence
        _add_refs(alert, alert.evidence)
        alert.message_zh, alert.message_en = d["message_zh"], d["message_en"]
        reason = "repeated"
        if _RANK.get(d["severity"], 9) < _RANK.get(alert.severity, 9):
            reason = "severity_raised"
            alert.severity, alert.rasff_class, alert.title_zh = d["severity"], d["rasff_class"], d["title_zh"]
            self._graver(alert, d, policy, seen)
        step = _step(alert, reason, alert.state, SYSTEM, d["message_zh"], event_id, at)
        due = alert.notified_at is None or at - alert.notified_at >= dt.timedelta(hours=ap.repeat_hours)
        told = self._notify(alert, step, reason, alert.receivers, policy, live) if reason == "severity_raised" or due else []
        return AlertChange(alert, step, told)

    def _graver(self, alert: Alert, d: dict[str, Any], policy: Policy, seen: dt.datetime) -> None:
        """``alert`` has just taken ``d``'s higher severity (a repeat, a corrected report): the routes for it (the duty
        desk's "high and worse") join the ones it had, and its shorter times run from when it could be seen — to respond
        while open, to handle once acknowledged.  One for both: the correction kept the milder one's 168 h to handle."""
        alert.receivers = list(dict.fromkeys(alert.receivers + route(alert, policy.alerts)))
        hours = d.get("respond_within_hours")
        if hours and alert.state == "open":
            by = seen + dt.timedelta(hours=hours)
            if alert.respond_by is None or by < alert.respond_by:
                alert.respond_by = by
                heapq.heappush(self.deadlines, (by, alert.alert_id))
        handle = policy.warnings.handle_within_hours.get(alert.severity)  # type: ignore[call-overload]
        if handle and alert.state == "acknowledged" and not alert.handling_escalated:
            # a worse problem is to be handled sooner: the higher severity's time, from when it could be seen (not
            # from the acknowledgement, which would make an alert acknowledged ten days ago overdue on the spot)
            by = seen + dt.timedelta(hours=handle)
            if alert.handle_by is None or by < alert.handle_by:
                alert.handle_by = by
                heapq.heappush(self.handling_deadlines, (by, alert.alert_id))

    def _evidence_corrected(self, alert: Alert, d: dict[str, Any], event_id: str, at: dt.datetime, policy: Policy, live: bool,
                            seen: dt.datetime) -> AlertChange:
        """The report an alert rests on was corrected and still fails, on other items or values (a withdrawn 菌落总数 beside
        a 铜绿假单胞菌 that still fails, a value typed wrong): the alert keeps its id, state and handler, and takes the
        corrected report's evidence, message and severity — left as it was, a supervisor acts on a figure the lab
        withdrew.  Not another occurrence: a step (报告更正：…) says what changed.  Its receivers are told while it is
        being handled and what it says changed, as they are told when the system closes one: a batch sealed, a recall
        ordered or a notice drafted on the old figures must be checked against the new ones."""
        ap = policy.alerts
        said = alert.message_zh
        before = alert.severity
        alert.evidence = d.get("evidence") or alert.evidence
        _add_refs(alert, alert.evidence)
        alert.message_zh, alert.message_en = d["message_zh"], d["message_en"]
        if event_id not in alert.event_ids:
            alert.event_ids.append(event_id)
            del alert.event_ids[: max(0, len(alert.event_ids) - ap.event_ids_kept)]
        ev = d.get("evidence") or {}
        if ev.get("correction_of") == "complaint":
            # (the bureau corrected or withdrew a complaint the alert rests on: not a lab's report)
            note = f"投诉更正：{ev.get('correction_zh') or '投诉登记已更正'}；预警内容已按更正后的投诉更新"
        else:
            note = f"报告更正：{ev.get('correction_zh') or '检验报告已更正'}；预警内容已按更正后的报告更新"
        if d["severity"] != alert.severity:
            # (the title stays: a corrected re-test's decision is titled 复检维持不合格, which the alert already says in its steps)
            alert.severity, alert.rasff_class = d["severity"], d["rasff_class"]
            note += f"，预警级别由{SEVERITY_ZH.get(before, before)}改为{SEVERITY_ZH.get(alert.severity, alert.severity)}"
            if _RANK.get(alert.severity, 9) < _RANK.get(before, 9):
                # graver now: as a repeat that raises the severity (its routes, its shorter times to respond and to handle);
                # a milder one keeps the deadlines it had
                self._graver(alert, d, policy, seen)
        step = _step(alert, "comment", alert.state, SYSTEM, note, event_id, at)
        news = alert.state in ACTIVE and (alert.message_zh != said or alert.severity != before)
        return AlertChange(alert, step, self._notify(alert, step, "evidence_corrected", alert.receivers, policy, live) if news else [])

    def _grade_superseded(self, newer: Alert, event_id: str, at: dt.datetime) -> list[AlertChange]:
        """A grade that rises again (B→C, then C→D) opened a second 风险等级上升 beside the first, both 待处置:
        the newer one carries the enterprise's risk now, so the older closes, naming it, and whoever had the
        older one has the newer (its state starts again: a worse grade asks for a new response)."""
        out = []
        for alert_id in list(self.active_by_enterprise.get(newer.enterprise_id, ())):
            older = self.alerts[alert_id]
            if older is newer or older.rule != GRADE_RULE:
                continue
            before = older.state
            older.state, older.closed_at = "closed", at
            self._deactivate(older.dedup_key, older.alert_id)
            if newer.assignee is None and older.assignee is not None:
                newer.assignee = older.assignee
            to = (newer.evidence or {}).get("to") or ""
            note = f"风险等级已进一步升为 {to} 级，由预警 {newer.alert_id} 接续处置"
            out.append(AlertChange(older, _step(older, "close", before, SYSTEM, note, event_id, at)))
        return out

    def _resolved(self, d: dict[str, Any], event_id: str, at: dt.datetime, policy: Policy, live: bool) -> AlertChange | None:
        """The alert's ground went away by itself (the awaited data came, a correction or re-test took the failure
        back, the complaints were found unfounded, the grade fell): it closes, noting why, and no longer escalates.
        Whoever was told of it is told it closed and why: a supervisor who sealed a batch on a failure a corrected
        report takes back must hear it from qrisk (the note tells them to decide on lifting the measures), not find
        it in the system by chance.  An alert nobody was told of closes quietly."""
        current = self.active_by_key.get(d["dedup_key"])
        if current is None:
            return None  # closed by a supervisor already, or never opened (the rule was off then)
        alert = self.alerts[current]
        before = alert.state
        alert.state = "closed"
        alert.closed_at = at
        alert.closing_evidence = d.get("evidence") or {}
        self._deactivate(alert.dedup_key)
        step = _step(alert, "close", before, SYSTEM, d["note_zh"], event_id, at)
        if alert.notified_at is None:
            return AlertChange(alert, step)
        # told: its receivers (each notice went to them all), and the escalation's when an escalation reached them
        told = alert.receivers + (policy.alerts.escalate_to if alert.escalated_at is not None else [])
        return AlertChange(alert, step, self._notify(alert, step, "closed_by_system", list(dict.fromkeys(told)), policy, live))

    def _moved(self, event: Envelope, policy: Policy, enterprise: Callable[[str], Enterprise | None], live: bool) -> list[AlertChange]:
        """The enterprise's town changed (``enterprise.updated``, or registered again): its alerts go with it.
        Access and routing read the alert's town, so one stamped when it opened stayed with the old town's
        key (listed and acted on) while the enterprise's own file was 404 to it, and the new town's key saw
        none of them.  Re-stamped here, in the fold, both the embedded book and a Kafka worker's agree, and
        the alerts table gets the new town with the step that says why.  An alert still being handled is
        routed again for its new town (its escalation reaches the new town's people), and the receivers it gains
        are told it was handed to them (移交), one notice per alert: handed over silently, it sat in the new town's
        list unknown until its deadline escalated it.  Those who had it already (the duty desk) hear nothing new.
        A settled one is routed again as well, telling nobody: it is the new town's should it be reopened."""
        info = enterprise(event.enterprise_id)
        if info is None:
            return []
        out: list[AlertChange] = []
        moved = [a for a in self.alerts.values()
                 if a.enterprise_id == event.enterprise_id and a.town != info.town and not is_county(a)]
        for alert in sorted(moved, key=lambda a: (a.opened_at, a.alert_id)):
            # (had it already: its receivers, and the escalation's when an escalation reached them — as a closing counts
            # who was told)
            before = alert.town
            had = alert.receivers + (policy.alerts.escalate_to if alert.escalated_at is not None else [])
            alert.town = info.town
            # settled ones too (verified, closed): reopened later, by a supervisor or a reversed re-check, one kept the old
            # town's receivers, so its 重新打开 and escalation went there and the new town, whose work it then was, never heard
            alert.receivers = _town_receivers(alert, policy.alerts)
            note = (f"企业所在乡镇/街道由{before or '未登记'}变更为{info.town or '未登记'}，预警随企业转由"
                    f"{info.town or '县局'}处置")
            step = _step(alert, "comment", alert.state, SYSTEM, note, str(event.event_id), event.occurred_at)
            gained = [r for r in alert.receivers if r not in had] if alert.state in ACTIVE else []
            out.append(AlertChange(alert, step, self._notify(alert, step, "transferred", gained, policy, live) if gained else []))
        return out

    # ------------------------------------------------------------------ supervisors' steps

    def _act(self, event: AlertActionEvent, policy: Policy, live: bool) -> AlertChange:
        p = event.payload
        if p.alert_id not in self.alerts:
            raise AlertActionError(f"没有编号为 {p.alert_id} 的预警")
        alert = self.check(p.alert_id, p.action)
        if alert.enterprise_id != event.enterprise_id:
            raise AlertActionError(f"预警 {p.alert_id} 属于企业 {alert.enterprise_id}，不属于 {event.enterprise_id}")
        _, to = TRANSITIONS[p.action]  # (a reopening of a problem a newer alert handles: refused by check, as at the door)
        at = event.occurred_at
        before = alert.state
        if to is not None:
            alert.state = to
        if p.action == "acknowledge":
            alert.acknowledged_at = at
            alert.assignee = alert.assignee or p.actor
            self._start_handling(alert, at, p.actor, policy)
        elif before == "open" and to not in (None, "open"):
            _answered(alert, at)  # (rectification ordered, or closed, straight from 待处置: answered then too)
        if p.action == "assign" or p.assignee:
            alert.assignee = p.assignee or p.actor
        if to == "closed":
            alert.closed_at = at
        if to == "open":
            # back to the start: a new response deadline from now, escalated again if it passes
            alert.closed_at = alert.acknowledged_at = None
            alert.reopened_at = at
            alert.closing_evidence = None
            alert.escalated = False
            # and its wait to be handled is over until it is acknowledged again (the acknowledgement starts it anew)
            alert.acknowledged_by, alert.handle_by, alert.handling_escalated = None, None, False
            hours = policy.warnings.respond_within_hours.get(alert.severity)  # type: ignore[call-overload]
            alert.respond_by = at + dt.timedelta(hours=hours) if hours else None
            if alert.respond_by is not None:
                heapq.heappush(self.deadlines, (alert.respond_by, alert.alert_id))
        if to in ("verified", "closed"):
            self._deactivate(alert.dedup_key, alert.alert_id)
        elif to == "open":
            self._activate(alert)
        note = p.note or ACTION_ZH[p.action]
        if note_missing(alert, p.action, p.note, policy.alerts) is not None:
            # in the log already (a client that skipped the check, a log from before the rule): kept, since
            # the log is the truth, but the missing reason shows wherever the step is read
            note += NO_CLOSE_REASON
        if p.action == "assign":
            note = f"指派给 {alert.assignee}" + (f"：{p.note}" if p.note else "")
        elif p.assignee:
            note += f"（指派给 {p.assignee}）"
        if p.action == "escalate" and p.actor == SYSTEM and event.source.kind == "system" and _waits_for_it(alert, before, at):
            # qrisk's own, logged at a start whose policy lifted a silence (qrisk.pipeline): the replay under the new policy
            # made a deadline's escalation among events whose rows are history, so nobody was told; told now, as what it is.
            # Only while its deadline is past and it still waits: the door refuses such steps from keys, but one in a log from
            # before that (or put on Kafka by hand) is otherwise an escalation like any, with its hourly guard
            due = "escalated" if before == "open" else "handling_overdue"
            if due == "escalated":
                alert.escalated = True
            else:
                alert.handling_escalated = True
            step = _step(alert, due, before, SYSTEM, p.note or ACTION_ZH[due], str(event.event_id), at)
            told = self._notify(alert, step, due, list(dict.fromkeys(policy.alerts.escalate_to + alert.receivers)), policy, live)
            if told:
                alert.escalated_at = at
            return AlertChange(alert, step, told)
        step = _step(alert, p.action, before, p.actor, note, str(event.event_id), at)
        if p.action == "escalate":
            alert.escalated = True
            if escalation_too_soon(alert.alert_id, alert.escalated_at, at) is not None:
                # in the log all the same (another writer, a Kafka API reading a view seconds old): recorded, nobody told again
                step.note += f"（{_local(alert.escalated_at, policy)} 已升级通报，1 小时内不重复通知）"  # type: ignore[arg-type]
                return AlertChange(alert, step)
            told = self._notify(alert, step, "escalated_by_hand", list(dict.fromkeys(policy.alerts.escalate_to + alert.receivers)),
                                policy, live)
            if told:
                alert.escalated_at = at
            return AlertChange(alert, step, told)
        told = self._notify(alert, step, "reopened", alert.receivers, policy, live) if to == "open" else []
        return AlertChange(alert, step, told)

    def _start_handling(self, alert: Alert, at: dt.datetime, by: str, policy: Policy) -> None:
        """``alert`` was acknowledged at ``at`` by ``by``: the wait for it to be handled (put under rectification,
        verified or closed) starts, ``warnings.handle_within_hours`` for its severity (none when that is off)."""
        alert.acknowledged_by = by
        alert.handling_escalated = False
        hours = policy.warnings.handle_within_hours.get(alert.severity)  # type: ignore[call-overload]
        alert.handle_by = at + dt.timedelta(hours=hours) if hours else None
        if alert.handle_by is not None:
            heapq.heappush(self.handling_deadlines, (alert.handle_by, alert.alert_id))

    # ------------------------------------------------------------------ 约谈, the bureau's own response

    def _interview(self, event: InterviewHeldEvent, policy: Policy) -> list[AlertChange]:
        """An interview (约谈) about an alert's problem is the bureau's response to it: the alert's history
        says so, and an alert still waiting for a response is acknowledged by it (no escalation for want of
        one).  An alert is about the interview when the interview cites it (its id, or what it is about: a
        sample number, an inspection…) or rests on one of the events behind it."""
        p = event.payload
        related = {str(e) for e in p.related_event_ids}
        actor = event.source.name or event.source.id
        eid, at = str(event.event_id), event.occurred_at
        who = f"，被约谈人 {p.interviewee}" if p.interviewee else ""
        said = f"{p.held_on.isoformat()} {p.held_by}约谈企业（{p.interview_id}{who}）：{p.reason}"[:600]
        if p.commitments:
            said += f"；整改承诺：{p.commitments}"[:300]
        if p.follow_up_by is not None:
            said += f"；跟踪检查期限 {p.follow_up_by.isoformat()}"
        out: list[AlertChange] = []
        for alert_id in sorted(self.active_by_enterprise.get(event.enterprise_id, ()),
                               key=lambda i: (self.alerts[i].opened_at, i)):
            alert = self.alerts[alert_id]
            cited = any(_cites(p.reason, ref) for ref in [alert.alert_id, *alert.refs])
            if not cited and not related & set(alert.evidence.get("event_ids") or ()):
                continue
            before = alert.state
            action = "acknowledge" if before in TRANSITIONS["acknowledge"][0] else "comment"
            if action == "acknowledge":
                alert.state = TRANSITIONS["acknowledge"][1]  # type: ignore[assignment]
                _answered(alert, at)
                # (an interview answers it, as an acknowledgement does: what the enterprise committed to still wants an
                # order or a closing, and the wait for one starts now)
                self._start_handling(alert, at, actor, policy)
            out.append(AlertChange(alert, _step(alert, action, before, actor, said, eid, at)))
        return out

    # ------------------------------------------------------------------ rectification (整改), from the inspection system's events

    def _rectification(self, event: Envelope, said: dict[str, dict[str, Any]], own: list[Any], policy: Policy,
                       live: bool) -> list[AlertChange]:
        """``own``: the event's effects in the order the credit file made them (``said``: by kind) — an order carries the
        outcomes of the completions and verifications that waited for it, one after another."""
        ordered = isinstance(event, RectificationOrderedEvent)
        if OUTDATED_KIND in said and not ordered:
            # a verification dated before the one in force, arriving after it: the credit file keeps it as history and
            # the rectification stays as the later one left it, so its alerts do too (a late acceptance of 04-20 verified
            # the alerts of a rectification whose re-check of 05-05 had rejected it)
            return []
        p = event.payload  # type: ignore[attr-defined]
        rid = p.rectification_id
        actor = event.source.name or event.source.id
        eid, at = str(event.event_id), event.occurred_at
        mine = sorted((self.alerts[i] for i in self.active_by_enterprise.get(event.enterprise_id, ())),
                      key=lambda a: (a.opened_at, a.alert_id))
        self._order_seen(event, said, own, actor)
        seen = (self.orders.get(event.enterprise_id) or {}).get(rid)
        out: list[AlertChange] = []
        if REVERSED_KIND in said and not ordered:
            out += self._acceptance_reversed(event, said[REVERSED_KIND], policy, live)
        for alert in mine:
            before = alert.state
            if ordered:
                cited = [ref for ref in [alert.alert_id, *alert.refs] if _cites(p.cause, ref)]
                if rid not in alert.rectifications and cited:
                    alert.rectifications.append(rid)
                    if seen is not None:
                        _answers(seen, cited)
                    note = f"责令整改 {rid}（期限 {p.deadline.isoformat()}）：{p.what}"
                    if before in TRANSITIONS["start_rectification"][0]:
                        alert.state = "rectifying"
                        if before == "open":
                            _answered(alert, at)
                        out.append(AlertChange(alert, _step(alert, "start_rectification", before, actor, note, eid, at)))
                    else:
                        out.append(AlertChange(alert, _step(alert, "comment", before, actor, f"关联{note}", eid, at)))
                continue
            if rid not in alert.rectifications:
                continue
            if isinstance(event, RectificationCompletedEvent):
                if "rectification.completion_repeated" in said:
                    continue  # (reported done already: its alerts say so once)
                out += self._outcome(alert, "rectification.completed", rid, actor, eid, at, p.evidence, "", "")
            else:
                out += self._outcome(alert, "rectification.verified" if p.accepted else "rectification.rejected", rid, actor, eid, at,
                                     "", p.verifier, p.note or "")
        if ordered:
            # the completions and verifications that came before the order (kept by the credit file, applied with it)
            # settle the alerts it is linked to now, one after another as the credit file applied them, as if they had
            # come after it; each step under the event that said it (a re-check taking that acceptance back names it)
            under = [alert for alert in mine if rid in alert.rectifications]
            reopened: set[str] = set()
            for eff in own:
                data = eff.data
                if eff.kind == REVERSED_KIND:
                    changes = self._acceptance_reversed(event, data, policy, live)
                    reopened = {c.alert.alert_id for c in changes}  # (its step says the rejection: not again below)
                    out += changes
                elif eff.kind in _WAITED_KINDS and data.get("waited_event_id"):
                    for alert in under:
                        if eff.kind == "rectification.rejected" and alert.alert_id in reopened:
                            continue
                        out += self._outcome(alert, eff.kind, rid, actor, str(data["waited_event_id"]), at, str(data.get("evidence") or ""),
                                             str(data.get("verifier") or ""), str(data.get("note") or ""))
        return out

    def _outcome(self, alert: Alert, kind: str, rid: str, actor: str, eid: str, at: dt.datetime, evidence: str, verifier: str,
                 note_zh: str) -> list[AlertChange]:
        """What a rectification's completion or 复查 does to an alert under it."""
        before = alert.state
        if alert.state in ("verified", "closed"):
            return []
        if kind == "rectification.completed":
            return [AlertChange(alert, _step(alert, "comment", before, actor, f"企业报告整改 {rid} 已完成：{evidence}"[:1000], eid, at))]
        if kind == "rectification.rejected":
            note = f"整改 {rid} 经{verifier}复查未通过" + (f"（复查意见：{note_zh}）" if note_zh else "")
            return [AlertChange(alert, _step(alert, "comment", before, actor, note, eid, at))]
        # verified after rectification; an alert never put under it (the order's overdue warning) is closed
        action = "verify" if before == "rectifying" else "close"
        alert.state = TRANSITIONS[action][1]  # type: ignore[assignment]
        if before == "open":
            _answered(alert, at)  # (the inspectors' verified rectification is the bureau's answer to it)
        if action == "close":
            alert.closed_at = at
        self._deactivate(alert.dedup_key, alert.alert_id)
        note = f"整改 {rid} 经{verifier}复查通过" + (f"（复查意见：{note_zh}）" if note_zh else "")
        return [AlertChange(alert, _step(alert, action, before, actor, note, eid, at))]

    def _order_seen(self, event: Envelope, said: dict[str, dict[str, Any]], own: list[Any], actor: str) -> None:
        """Keep the order, and the status the credit file gave it, for alerts opened after it.  Only what the credit file
        filed counts: an order id on file sent again (rectification.duplicate_order), or a completion or verification of an
        order it does not know, changes nothing here either."""
        p = event.payload  # type: ignore[attr-defined]
        mine = self.orders.get(event.enterprise_id)
        if isinstance(event, RectificationOrderedEvent):
            if "rectification.ordered" in said:
                order = self.orders.setdefault(event.enterprise_id, {})[p.rectification_id] = _build_order(
                    rectification_id=p.rectification_id, event_id=str(event.event_id), cause=p.cause, what=p.what,
                    deadline=p.deadline, ordered_at=event.occurred_at, ordered_by=actor, updated_at=event.occurred_at)
                # what the completions and verifications that came before it said, applied with it in the credit file's
                # order (a rejection, then the redo's completion: completed; an acceptance, then a rejection: rejected)
                for eff in own:
                    if eff.kind in _WAITED_KINDS and eff.data.get("waited_event_id"):
                        data = eff.data
                        order.status = _ORDER_STATUS[eff.kind]
                        if eff.kind == "rectification.verified":
                            order.verification = {"event_id": str(data["waited_event_id"]), "actor": actor,
                                                  "verifier": data.get("verifier") or "", "note": data.get("note") or ""}
                        elif eff.kind == "rectification.rejected":
                            order.verification = None
            elif "rectification.corrected" in said and mine is not None and p.rectification_id in mine:
                # the order corrected (a mistyped cause, deadline or what): alerts opened after it are linked by what it says now
                order = mine[p.rectification_id]
                order.cause, order.what, order.deadline = p.cause, p.what, p.deadline
                order.updated_at = max(order.updated_at, event.occurred_at)
            return
        order = mine.get(p.rectification_id) if mine is not None else None
        if order is None:
            return
        if "rectification.completed" in said:
            order.status = "completed"
        elif "rectification.verified" in said:
            order.status = "verified"
            order.verification = {"event_id": str(event.event_id), "actor": actor, "verifier": p.verifier, "note": p.note}
        elif "rectification.rejected" in said:
            order.status, order.verification = "rejected", None
        else:
            return
        order.updated_at = max(order.updated_at, event.occurred_at)

    def _orders_before(self, alert: Alert, at: dt.datetime, policy: Policy) -> list[AlertChange]:
        """An alert just opened whose problem an order seen before it cites (its cause names the alert's id or what it is
        about): put under that rectification at once, as if the order had come after it — or verified, when the order's
        accepted verification came before the alert too (closed, for an alert that is that order's own overdue warning
        is never opened after its verification).  Without it the 现场检查发现问题 of an inspection recorded an hour after
        the on-site 责令改正 stayed 待处置, escalated as unanswered, and the order's verification never settled it."""
        out: list[AlertChange] = []
        for order in (self.orders.get(alert.enterprise_id) or {}).values():
            rid = order.rectification_id
            cited = [ref for ref in [alert.alert_id, *alert.refs] if _cites(order.cause, ref)]
            if rid in alert.rectifications or not cited or set(cited) <= set(order.answered):
                continue
            alert.rectifications.append(rid)
            _answers(order, cited)
            said = {"completed": "；企业已报告整改完成，待复查", "rejected": "；最近一次复查未通过，待重新整改"}.get(order.status, "")
            note = (f"责令整改 {rid}（期限 {order.deadline.isoformat()}）：{order.what}（该整改于 {_local(order.ordered_at, policy)} "
                    f"先于本预警下达{said}）")
            before = alert.state
            if before in TRANSITIONS["start_rectification"][0]:
                alert.state = "rectifying"
                if before == "open":
                    _answered(alert, at)
                out.append(AlertChange(alert, _step(alert, "start_rectification", before, order.ordered_by, note, order.event_id, at)))
            else:
                out.append(AlertChange(alert, _step(alert, "comment", before, order.ordered_by, f"关联{note}", order.event_id, at)))
            v = order.verification
            if v is not None and alert.state == "rectifying":
                # settled by that verification's event, so that a re-check taking the acceptance back reopens it too
                alert.state = "verified"
                self._deactivate(alert.dedup_key, alert.alert_id)
                note = f"整改 {rid} 经{v['verifier']}复查通过" + (f"（复查意见：{v['note']}）" if v["note"] else "")
                out.append(AlertChange(alert, _step(alert, "verify", "rectifying", v["actor"], note, v["event_id"], at)))
        return out

    def _acceptance_reversed(self, event: Envelope, d: dict[str, Any], policy: Policy, live: bool) -> list[AlertChange]:
        """A re-check rejecting a rectification after an acceptance took that acceptance back: the alerts it verified or
        closed are the enterprise's to put right again.  Only those the acceptance itself settled: one a supervisor
        reopened or closed since, or the system closed for another reason, stands as that step left it."""
        # (what the rejecting 复查 said is on the effect: the event may be the order it waited for)
        p = event.payload  # type: ignore[attr-defined]
        rid, reversed_id = d["rectification_id"], d.get("reversed_event_id")
        verifier = d.get("verifier", getattr(p, "verifier", ""))
        note_zh = d.get("note", getattr(p, "note", "")) or ""
        redo = d["new_deadline"] if "new_deadline" in d else (p.new_deadline.isoformat() if getattr(p, "new_deadline", None) else None)
        actor = event.source.name or event.source.id
        eid, at = str(d.get("waited_event_id") or event.event_id), event.occurred_at
        note = (f"整改 {rid} 于 {d.get('accepted_on')} 经{d.get('accepted_by')}复查通过，该结论已被 {d['rejected_on']} 的复查撤销"
                f"（{verifier}复查未通过" + (f"；复查意见：{note_zh}" if note_zh else "") + "）"
                + (f"，重新限期 {redo}" if redo else ""))
        settled = [a for a in self.alerts.values()
                   if a.enterprise_id == event.enterprise_id and a.state in ("verified", "closed") and rid in a.rectifications
                   and reversed_id is not None and _settled_by(a) == reversed_id]
        out: list[AlertChange] = []
        for alert in sorted(settled, key=lambda a: (a.opened_at, a.alert_id)):
            before = alert.state
            newer = self.active_by_key.get(alert.dedup_key)
            if newer is not None:
                # its problem came back meanwhile and a newer alert handles it (as a supervisor's reopening is refused for):
                # said here, where a reader of this alert looks, and left as it is
                step = _step(alert, "comment", before, actor, f"{note}；该问题已有新的预警 {newer} 在处置", eid, at)
                out.append(AlertChange(alert, step))
                continue
            # Back to 整改中, where a rejected re-check leaves an alert under rectification: the bureau has answered it
            # (ordered the rectification, checked it) and what is pending is the enterprise's redo and the next re-check.
            # 待处置 would ask the bureau for a response it gave, with a deadline and an escalation for want of it;
            # verified or closed would keep calling settled what the bureau found not done.  Its response time and
            # acknowledged_at stand: the bureau's response was not taken back, the enterprise's work was
            alert.state = "rectifying"
            alert.closed_at = None
            alert.closing_evidence = None
            self._activate(alert)
            step = _step(alert, "verification_reversed", before, actor, note, eid, at)
            # told as a reopening is: its receivers had it as settled, and may have lifted what they imposed on it
            # (a sealed batch, a visit planned) — those are theirs to take up again
            out.append(AlertChange(alert, step, self._notify(alert, step, "reopened", alert.receivers, policy, live)))
        return out

    # ------------------------------------------------------------------ escalation

    def _escalate(self, event: Envelope, policy: Policy, live: bool) -> list[AlertChange]:
        out: list[AlertChange] = []
        now = self.clock
        # held escalations first, each asked again whatever the silence's end recorded when it was held: the policy may
        # have dropped the silence since (lifted early; a Kafka worker keeps its book across a change of policy file) or
        # the enterprise moved out of the silenced town, and an escalation left waiting for an end that no longer
        # applies told nobody for days.  (Only alerts whose escalation is held: a short map, asked at each pass.)
        for alert_id, (reason, ends, by) in list(self.held.items()) if now is not None else ():
            alert = self.alerts.get(alert_id)
            if alert is None or not _still_due(alert, by):
                del self.held[alert_id]  # let go, handled meanwhile, or a later deadline replaced the one held
                continue
            s = _silence(alert, policy.alerts, now)
            if s is not None:
                alert.silenced = s.reason  # (another silence may have taken over: the reason held stays the note's)
                self.held[alert_id] = (reason, s.ends, by)
                continue
            del self.held[alert_id]
            alert.silenced = None
            lifted = now < ends  # the silence did not run its course: taken out of the policy, or no longer the alert's
            if alert.state == "open":
                out.append(self._respond_overdue(alert, by, now, event, policy, live, held_by=reason, lifted=lifted))
            else:
                out.append(self._handling_overdue(alert, by, now, event, policy, live, held_by=reason, lifted=lifted))
        while self.deadlines and now is not None and self.deadlines[0][0] < now:
            by, alert_id = heapq.heappop(self.deadlines)
            alert = self.alerts.get(alert_id)
            if alert is None or alert.state != "open" or alert.escalated or alert.respond_by != by:
                continue  # handled in time, escalated already, or a later deadline replaced this one
            if self._held(alert, by, now, policy):
                continue  # (escalated when no silence holds it any more)
            out.append(self._respond_overdue(alert, by, now, event, policy, live))
        while self.handling_deadlines and now is not None and self.handling_deadlines[0][0] < now:
            by, alert_id = heapq.heappop(self.handling_deadlines)
            alert = self.alerts.get(alert_id)
            if alert is None or alert.state != "acknowledged" or alert.handling_escalated or alert.handle_by != by:
                continue  # handled in time, escalated already, reopened, or a nearer deadline replaced this one
            if self._held(alert, by, now, policy):
                continue
            out.append(self._handling_overdue(alert, by, now, event, policy, live))
        return out

    def _held(self, alert: Alert, by: dt.datetime, now: dt.datetime, policy: Policy) -> bool:
        """A silence keeps ``alert`` quiet at ``now``: its escalation for the deadline ``by`` waits in ``held``, not spent
        telling nobody — its flag stays down, so the escalation is still to come."""
        s = _silence(alert, policy.alerts, now)
        if s is None:
            return False
        alert.silenced = s.reason
        # (named by the silence the deadline passed in, when the log had no event between it and one that took over)
        self.held[alert.alert_id] = ((_silence(alert, policy.alerts, by) or s).reason, s.ends, by)
        return True

    def _respond_overdue(self, alert: Alert, by: dt.datetime, now: dt.datetime, event: Envelope, policy: Policy, live: bool,
                         held_by: str | None = None, lifted: bool = False) -> AlertChange:
        """Not acknowledged by ``by``: escalated to ``alerts.escalate_to`` and its receivers.  ``held_by``: the reason of
        the silence that held the escalation back until now; ``lifted``: it stopped applying before its end."""
        alert.escalated = True
        if held_by is not None:
            note = f"静默（{held_by}）期间已超过确认期限（应于 {_local(by, policy)} 前确认），{_released_zh(lifted)}升级通报"
        else:
            # the wait a reopened alert is escalated for is the one since its reopening (its deadline ran from then):
            # counted from its opening, a failure reopened after 40 days read 生成后 40 天仍未确认 36 s after the reopening
            since = ("重新打开后", alert.reopened_at) if alert.reopened_at is not None else ("生成后", alert.seen_from or alert.opened_at)
            note = f"{since[0]} {_elapsed_zh(now - since[1])}仍未确认（应于 {_local(by, policy)} 前确认），升级通报"
        receivers = list(dict.fromkeys(policy.alerts.escalate_to + alert.receivers))
        # Escalating what nobody was told reads as negligence: say it never reached anyone, and why, in
        # one sentence said once (the policy key only as the operator's hint, in brackets at the end)
        if not receivers:
            note += ("；此前未通知任何人：" if alert.notified_at is None else "；") + \
                "未配置升级接收人，也无路由接收人，无人收到通知（请在策略文件 alerts.escalate_to 中配置）"
        elif alert.notified_at is None and held_by is None:  # (one a silence held says why itself)
            why = "已静默" if alert.silenced else "无路由接收人" if not alert.receivers else "属历史数据"
            if live or why != "属历史数据":  # (history escalated as history: _notify says so, with whom it did not tell)
                note += f"；此前未通知任何人（{why}）"
        step = _step(alert, "escalated", alert.state, SYSTEM, note, str(event.event_id), now)
        told = self._notify(alert, step, "escalated", receivers, policy, live)
        if told:
            # (an escalation that told nobody — history, no receiver — holds off no supervisor's)
            alert.escalated_at = now
        return AlertChange(alert, step, told)

    def _handling_overdue(self, alert: Alert, by: dt.datetime, now: dt.datetime, event: Envelope, policy: Policy,
                          live: bool, held_by: str | None = None, lifted: bool = False) -> AlertChange:
        """Acknowledged and left (早处置): the county hears who acknowledged it and when, how long it has waited since, and
        the step still missing — a 确认 read as handled is what the escalation receivers are told it is not."""
        alert.handling_escalated = True
        since = alert.acknowledged_at or alert.updated_at
        who = actor_zh(alert.acknowledged_by)
        owner = f"，现由 {alert.assignee} 负责" if alert.assignee and alert.assignee != alert.acknowledged_by else ""
        if held_by is not None:
            note = (f"静默（{held_by}）期间已超过处置期限（{who} 于 {_local(since, policy)} 确认{owner}，"
                    f"应于 {_local(by, policy)} 前责令整改或关闭），{_released_zh(lifted)}升级通报")
        else:
            note = (f"已确认 {_elapsed_zh(now - since)}仍未责令整改或关闭（{who} 于 {_local(since, policy)} 确认{owner}，"
                    f"应于 {_local(by, policy)} 前责令整改或关闭），升级通报")
        receivers = list(dict.fromkeys(policy.alerts.escalate_to + alert.receivers))
        if not receivers:
            note += "；未配置升级接收人，也无路由接收人，无人收到通知（请在策略文件 alerts.escalate_to 中配置）"
        step = _step(alert, "handling_overdue", alert.state, SYSTEM, note, str(event.event_id), now)
        told = self._notify(alert, step, "handling_overdue", receivers, policy, live)
        if told:
            alert.escalated_at = now  # (told the escalation's receivers: a manual escalation within the hour would repeat it)
        return AlertChange(alert, step, told)

    # ------------------------------------------------------------------ notifications

    def _notify(self, alert: Alert, step: AlertStep, reason: str, receivers: list[str], policy: Policy, live: bool) -> list[Notification]:
        # a silence is asked at each notification: one that ended lets a lasting alert speak again (an escalation it holds
        # back is the deadline pass's to keep in ``held``: a notice kept quiet has nothing left to come)
        s = _silence(alert, policy.alerts, step.at)
        alert.silenced = s.reason if s is not None else None
        if s is not None:
            return []
        if not receivers:
            return []  # (an escalation to nobody says so itself: _escalate)
        if not live:
            step.note += f"（事件在发生 {policy.alerts.live_within_hours} 小时后才收到，属历史数据，未通知 {'、'.join(receivers)}）"
            return []
        alert.notified_at = step.at
        view = alert.view(steps=False)
        subject = f"【{SEVERITY_ZH.get(alert.severity, alert.severity)}·{_title(alert)}】{alert.enterprise_name}"
        if reason == "escalated_by_hand":
            # who asked for help is what the county reads first: whom to call back
            subject += f"（{REASONS_ZH[reason]}，{actor_zh(step.actor)} 提请）"
        elif reason != "opened":
            subject += f"（{REASONS_ZH[reason]}）"
        text = render_text(alert, reason, step, policy)
        out = []
        known = {r.name: r for r in policy.alerts.receivers}
        for name in receivers:
            # a receiver the policy no longer has (an alert restored from before the change): the
            # dispatcher records the notification as failed, with that reason, instead of losing it
            r: Receiver | None = known.get(name)
            delivery_id = hashlib.sha1(f"{alert.alert_id}|{step.version}|{name}".encode()).hexdigest()[:20]
            out.append(Notification(delivery_id=delivery_id, alert_id=alert.alert_id, enterprise_id=alert.enterprise_id,
                                    receiver=name, channel=r.kind if r is not None else "", reason=reason, subject_zh=subject, text_zh=text, alert=view))
        return out


_WHAT_ZH = {"sampling": "监督抽检", "inspection": "现场检查"}


def _title(alert: Alert) -> str:
    """The alert's title as a subject line gives it: a missing sample and a missing inspection of one
    enterprise are two alerts, and two notices under one subject read as a repeat."""
    what = _WHAT_ZH.get(alert.evidence.get("what", "")) if alert.rule == "data.missing" else None
    return f"{alert.title_zh}（{what}）" if what else alert.title_zh


def _elapsed_zh(span: dt.timedelta) -> str:
    """How long, as a supervisor says it: hours within two days, then days (295 天, not 7085 小时), whole
    ones and the hours beyond (60 hours are 2 天 12 小时: rounded up to 3 天 they overstated the wait)."""
    hours = int(span.total_seconds() // 3600)
    if hours < 1:
        # (a deadline of a fraction of an hour, as the policy allows: "0 小时仍未确认" read as no wait at all)
        minutes = int(span.total_seconds() // 60)
        return f"{minutes} 分钟" if minutes else "不足 1 分钟"
    if hours < 48:
        return f"{hours} 小时"
    days, rest = divmod(hours, 24)
    return f"{days} 天" + (f" {rest} 小时" if rest and days < 7 else "")


def _alert_id(key: str, n: int) -> str:
    """The ``n``-th alert opened with dedup key ``key``: the same id in every replay."""
    return "AL-" + hashlib.sha1(f"{key}#{n}".encode()).hexdigest()[:16]


# alerts and steps are made from a validated decision or event and the fold's own values: built
# without validating again (processors._build), ~15 µs less per alert step
_build_alert = builder(Alert)
_build_step = builder(AlertStep)
_build_order = builder(OrderSeen)


# What an alert is about, by rule: a rectification order citing it is for this alert.  A fluctuation
# signal names the sample it fired on too, but an order for that sample's failure does not answer a
# drift of another item: such alerts link by their own id only — but the complaint chart's is about the
# month's complaints, which it names.
_SUBJECTS = {
    "fluctuation.signal": "complaint_ids",
    "sampling.unqualified": "sample_no", "inspection.nonconforming": "inspection_id", "complaint.cluster": "complaint_ids",
    "complaint.burst": "complaint_ids",
    "complaint.illness": "complaint_id", "complaint.hazard": "complaint_id", "complaint.overdue": "complaint_id", "judgement.lab_failed_unjudged": "sample_no",
    "judgement.lab_failed_passed": "sample_no",
    "rectification.overdue": "rectification_id", "rectification.rejected": "rectification_id",
    "enforcement.decided": "decision_no", "interview.follow_up_overdue": "interview_id",
}


def _add_refs(alert: Alert, evidence: dict[str, Any]) -> None:
    key = _SUBJECTS.get(alert.rule)
    found = evidence.get(key) if key else None
    for ref in found if isinstance(found, list) else [found]:
        if isinstance(ref, str) and ref and ref not in alert.refs:
            alert.refs.append(ref)
            if key == "rectification_id" and ref not in alert.rectifications:
                alert.rectifications.append(ref)  # an overdue or rejected rectification's alert is that rectification's
    del alert.refs[: max(0, len(alert.refs) - REFS_KEPT)]


def _answers(order: OrderSeen, cited: list[str]) -> None:
    order.answered += [ref for ref in cited if ref not in order.answered]
    del order.answered[: max(0, len(order.answered) - REFS_KEPT)]


def _id_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c in "-_")


def _cites(text: str, ref: str) -> bool:
    """``ref`` appears in ``text`` as a whole identifier: DC…123 is not cited by DC…1234."""
    start = text.find(ref) if ref else -1
    while start >= 0:
        end = start + len(ref)
        if (start == 0 or not _id_char(text[start - 1])) and (end == len(text) or not _id_char(text[end])):
            return True
        start = text.find(ref, start + 1)
    return False


def _answered(alert: Alert, at: dt.datetime) -> None:
    """The bureau responded to the alert at ``at`` (it leaves 待处置 by a person's or the inspectors' step):
    ``acknowledged_at``, unless an earlier response set it.  Only ``acknowledge`` set it, so an alert moved on
    by an interview or a rectification order kept it null, and the time to respond read as never; the
    system's own closings (the awaited data came, a newer grade took over) are no response and leave it."""
    if alert.acknowledged_at is None:
        alert.acknowledged_at = at


def _settled_by(alert: Alert) -> str | None:
    """The event of the step that last changed the alert's state (its verification or closing, for one settled)."""
    return next((s.event_id for s in reversed(alert.steps) if s.from_state != s.to_state), None)


def _step(alert: Alert, action: str, from_state: str, actor: str, note: str, event_id: str, at: dt.datetime) -> AlertStep:
    alert.version += 1
    alert.updated_at = max(alert.updated_at, at)
    step = _build_step(version=alert.version, at=at, action=action, from_state=from_state, to_state=alert.state,
                     actor=actor, note=note, event_id=event_id)
    alert.steps.append(step)
    if len(alert.steps) > STEPS_KEPT:
        del alert.steps[1 : len(alert.steps) - STEPS_KEPT + 1]  # the opening step stays; alert_events has them all
    return step


def _town_receivers(alert: Alert, ap: AlertsPolicy) -> list[str]:
    """An enterprise's alert's receivers for its town as an alert opening there gets them (``_decision``):
    the routes, and the county's fallback for a town the routes leave out."""
    receivers = route(alert, ap)
    routed = ap.routed_towns()
    if not ap.covers(alert.town, alert.category) and (routed or (ap.unrouted_to and not receivers)):
        receivers = list(dict.fromkeys(receivers + list(ap.unrouted_to or ap.escalate_to)))
    return receivers


def _uncovered_zh(alert: Alert, ap: AlertsPolicy) -> str:
    """What the routes leave out, as an opening's note names it: the town (瓶窑镇), or, when a route names the town
    for other categories only, the town's category (良渚街道糕点类)."""
    if alert.town is None or alert.town not in ap.routed_towns():
        return alert.town or "未登记乡镇/街道"
    if alert.category in CATEGORY_ZH:
        return f"{alert.town}{CATEGORY_ZH[alert.category]}类"
    return f"{alert.town}类别未登记的企业"


def receiver_zh(name: str, policy: AlertsPolicy) -> str:
    """A receiver as a supervisor's text names it: who reads it (its ``supervisor``, 分管局长), else its policy name —
    "已通知 chief" named a key of a file the supervisor never sees."""
    r = next((r for r in policy.receivers if r.name == name), None)
    return r.supervisor if r is not None and r.supervisor.strip() else name


def route(alert: Alert, policy: AlertsPolicy) -> list[str]:
    """Receivers of every matching route, in the order the policy names them."""
    names: list[str] = []
    for r in policy.routes:
        if r.towns and alert.town not in r.towns:
            continue
        if r.categories and alert.category not in r.categories:
            continue
        if r.rules and alert.rule not in r.rules:
            continue
        if _RANK.get(alert.severity, 9) > _RANK[r.min_severity]:
            continue
        names += [n for n in r.receivers if n not in names]
    return names


def silenced(alert: Alert, policy: AlertsPolicy, at: dt.datetime) -> str | None:
    """The reason of the silence that keeps ``alert`` quiet at ``at``, or None."""
    s = _silence(alert, policy, at)
    return s.reason if s is not None else None


def _still_due(alert: Alert, by: dt.datetime) -> bool:
    """``alert`` still waits for the escalation of its deadline ``by``: unacknowledged (or acknowledged and not handled)
    and not escalated for it, and no reopening or new acknowledgement moved the deadline since."""
    if alert.state == "open":
        return not alert.escalated and alert.respond_by == by
    return alert.state == "acknowledged" and not alert.handling_escalated and alert.handle_by == by


def _released_zh(lifted: bool) -> str:
    return "静默解除后" if lifted else "静默结束后"


def _silence(alert: Alert, policy: AlertsPolicy, at: dt.datetime) -> Silence | None:
    for s in policy.silences:
        if s.enterprise_id is not None and s.enterprise_id != alert.enterprise_id:
            continue
        if s.rule is not None and s.rule != alert.rule:
            continue
        if s.town is not None and s.town != alert.town:
            continue
        if (s.starts is not None and at < s.starts) or at >= s.ends:
            continue
        return s
    return None


def _local(moment: dt.datetime, policy: Policy) -> str:
    return (moment + dt.timedelta(hours=policy.utc_offset_hours)).strftime("%Y-%m-%d %H:%M")


def county_name(category: str | None) -> str:
    """Whom a county alert is about: a category across the county, not an enterprise."""
    return f"本县{CATEGORY_ZH.get(category, category or '')}类（县级预警）"


def is_county(alert: Alert) -> bool:
    """The county's chart of a category signalled: the alert is kept under the enterprise whose sample
    tipped it (its ``enterprise_id``: that enterprise's events carry the alert's steps, and in the
    Kafka mode its worker holds the alert), but it is about the county."""
    return alert.evidence.get("scope") == "category"


def _subject_lines(alert: Alert) -> list[str]:
    if is_county(alert):
        t = alert.evidence.get("triggered_by") or {}
        who = t.get("name") or alert.enterprise_id
        where = f"{who}（{t.get('enterprise_id') or alert.enterprise_id}" + (f"，{t['town']}" if t.get("town") else "") + "）"
        return [f"范围：{alert.enterprise_name}：全县该类产品的抽检情况，不是单个企业的问题",
                f"触发：由 {where}的抽检触发（该企业的抽检是证据，不是本预警的对象）"]
    return [f"企业：{alert.enterprise_name}（{alert.enterprise_id}" + (f"，{alert.town}" if alert.town else "") + "）"]


def _respond_zh(alert: Alert, step: AlertStep, policy: Policy) -> str:
    """What the notice asks of its reader about acknowledging.  Asked against the step's time (event
    time, so a replay writes the same text), never the wall clock: a repeat or an escalation made after
    the deadline says it has passed instead of asking to act before a day already gone; an alert
    acknowledged already is not asked again."""
    if alert.state == "acknowledged" and alert.handle_by is not None:
        # acknowledged: what is owed now is the handling (早处置), not another acknowledgement
        if alert.handle_by <= step.at:
            return f"，已确认，处置期限 {_local(alert.handle_by, policy)} 已过，请立即责令整改或关闭"
        return f"，已确认，请于 {_local(alert.handle_by, policy)} 前责令整改或关闭"
    if alert.respond_by is None or alert.state != "open":
        return ""
    if alert.respond_by <= step.at:
        return f"，确认处置期限 {_local(alert.respond_by, policy)} 已过，请立即确认处置"
    return f"，请于 {_local(alert.respond_by, policy)} 前确认处置"


def render_text(alert: Alert, reason: str, step: AlertStep, policy: Policy) -> str:
    """The notification body a supervisor reads: what, where, how urgent, the evidence, what to do."""
    lines = [
        f"{REASONS_ZH[reason]}：{_title(alert)}",
        *_subject_lines(alert),
        f"级别：{SEVERITY_ZH.get(alert.severity, alert.severity)}，{RASFF_ZH.get(alert.rasff_class, alert.rasff_class)}"
        + _respond_zh(alert, step, policy),
    ]
    if reason == "closed_by_system":
        # why it closed comes first; the alert's own text (its next steps: seal, recall) is what it announced, no longer what to do
        lines += [f"关闭原因：{step.note}（关闭前状态：{STATE_ZH.get(step.from_state, step.from_state)}）",
                  f"原预警情况：{alert.message_zh}"]
    else:
        lines.append(f"情况：{alert.message_zh}")
    if reason in ("escalated", "handling_overdue"):
        lines.append(f"升级原因：{step.note}")
    elif reason == "escalated_by_hand":
        # a person asked for help: who, when and why (the note) — the receivers call them back, not the enterprise
        lines.append(f"手动升级：{actor_zh(step.actor)}（{_local(step.at, policy)}）"
                     + (f"，理由：{step.note}" if step.note != ACTION_ZH["escalate"] else "，未填写理由"))
    elif reason == "transferred":
        lines.append(f"移交：{step.note}（{_local(step.at, policy)}）")
    elif reason == "evidence_corrected":
        # what changed comes with the alert as it reads now: the figures acted on before may no longer be the lab's
        basis = "原投诉登记" if (alert.evidence or {}).get("correction_of") == "complaint" else "原报告"
        lines.append(f"{step.note}（{_local(step.at, policy)}），请核对此前据{basis}采取的措施")
    elif reason == "reopened" and step.action == "verification_reversed":
        # the re-check that took the acceptance back is the why, and its note names both verifiers: the system that sent
        # it (the step's actor) as the one who reopened it would name the wrong person to ask
        lines.append(f"重新打开：{step.note}（{_local(step.at, policy)}）")
    elif reason == "reopened":
        # who reopened it and why: the receivers must know whom to ask and what is to be done again
        lines.append(f"重新打开：{actor_zh(step.actor)}（{_local(step.at, policy)}）" + (f"，说明：{step.note}" if step.note != ACTION_ZH["reopen"] else "，未填写说明"))
    lines += [
        f"状态：{STATE_ZH[alert.state]}" + (f"，负责人 {alert.assignee}" if alert.assignee else ""),
        f"发生次数：{alert.occurrences}（首次 {_local(alert.opened_at, policy)}，最近 {_local(alert.last_occurred_at, policy)}）",
    ]
    evidence = evidence_zh(alert)
    if evidence:
        lines.append(f"证据：{evidence}")
    # the event ids stay in the alert's JSON (webhooks, the API); a supervisor acts in the system, not by HTTP
    lines.append(f"预警编号：{alert.alert_id}" + ("（已关闭；如仍须处置，可在系统中重新打开）" if alert.state == "closed"
                                                   else "（请在系统中确认、安排整改或关闭）"))
    return "\n".join(lines)


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _chart_point_zh(e: dict[str, Any]) -> str:
    """A control-chart point with its limits, in the units of the message: a failure rate (p chart) in
    per cent as the message gives it (15%, 参考 1.90%, 上限 11.1%), complaints (c chart) in 件."""
    chart = e.get("chart")
    if chart == "p":
        count = f"（抽检 {e['n']} 批、不合格 {e['failed']} 批）" if e.get("n") is not None and e.get("failed") is not None else ""
        limits = [f"中心线（参考不合格率）{e['center']:.2%}"]
        if e.get("lcl"):  # a lower limit of 0 says nothing of a failure rate
            limits.insert(0, f"下控制限 {e['lcl']:.1%}")
        if e.get("ucl") is not None:
            limits.append(f"上控制限 {e['ucl']:.1%}")
        return f"不合格率 {e['value']:.0%}{count}，" + "、".join(limits)
    if chart == "c":
        # (an exact Poisson limit is a whole count; the expected rate keeps its decimal)
        limits = "、".join(f"{label} {e[k]:.1f} 件" if k == "center" else f"{label} {e[k]:.0f} 件"
                           for k, label in (("center", "预期每月"), ("ucl", "上控制限")) if e.get(k) is not None)
        return f"本月投诉 {_num(e['value'])} 件" + (f"（{limits}）" if limits else "")
    limits = "、".join(f"{label} {_num(e[k])}" for k, label in (("lcl", "下控制限"), ("center", "中心线"), ("ucl", "上控制限"))
                      if e.get(k) is not None)
    # (an EWMA's, a moving range's or a CUSUM's limits are the statistic's, not the batch result's: named, the result beside it)
    statistic = {"ewma": "近几批的加权平均值（EWMA）", "mr": "相邻两批之差（移动极差）", "cusum": "累积和（CUSUM）"}.get(chart or "")
    if statistic:
        batch = f"，本批结果 {_num(e['batch_value'])}" if e.get("batch_value") is not None else ""
        return f"{statistic} {_num(e['value'])}" + (f"（{limits}）" if limits else "") + batch
    return f"本点 {_num(e['value'])}" + (f"（{limits}）" if limits else "")


def evidence_zh(alert: Alert) -> str:
    """The evidence as a supervisor can use it: sample numbers, dates, values and limits, ids of
    inspections, complaints and rectifications (not the events' UUIDs)."""
    e = alert.evidence
    parts: list[str] = []
    if alert.rule in ("sampling.unqualified", "judgement.disagrees", "judgement.lab_failed_unjudged", "judgement.lab_failed_passed", "retest.inadmissible",
                      "fluctuation.signal") and e.get("sample_no"):
        # the batch and its dates name what to seal or recall: beside the sample they identify the product on the market
        about = [f"{label} {e[k]}" for k, label in (("sampled_on", "抽样日期"), ("batch", "批号"), ("production_date", "生产日期"),
                                                   ("brand", "商标"), ("spec", "规格型号")) if e.get(k)]
        parts.append(f"抽样编号 {e['sample_no']}" + (f"（{'，'.join(about)}）" if about else ""))
    if alert.rule == "sampling.unqualified":
        for f in (e.get("failed") or [])[:5]:
            name = f.get("item_name") or f.get("item_code")
            if "total" in f:
                parts.append(f"{name} {_num(f['total'])}（应不超过 1）")
            else:
                unit = f" {f['unit']}" if f.get("unit") else ""
                limit = f"，标准要求 {f['limit']}" if f.get("limit") else ""
                parts.append(f"{name} 检测值 {'、'.join(_num(v) for v in f.get('values') or [])}{unit}{limit}")
    elif alert.rule == "fluctuation.signal" and e.get("value") is not None and e.get("center") is not None:
        # a control-chart point (a capability signal against the legal limit has no centre line: its message says it)
        parts.append(_chart_point_zh(e))
        if e.get("complaint_ids"):  # (the complaint chart: which complaints)
            ids = e["complaint_ids"]
            parts.append(f"投诉编号 {'、'.join(ids[:10])}{'等' if len(ids) > 10 else ''}")
    elif alert.rule == "complaint.cluster" and e.get("complaint_ids"):
        parts.append(f"投诉编号 {'、'.join(e['complaint_ids'][:10])}（自 {e.get('first_day', '')} 起）")
    elif alert.rule == "complaint.burst" and e.get("complaint_ids"):
        parts.append(f"投诉编号 {'、'.join(e['complaint_ids'][:10])}（{e.get('first_day', '')} 至 {e.get('last_day', '')} 收到）")
    elif alert.rule in ("complaint.illness", "complaint.hazard") and e.get("complaint_id"):
        parts.append(f"投诉编号 {e['complaint_id']}（{e.get('received_on', '')} 收到）")
    elif alert.rule == "complaint.overdue" and e.get("complaint_id"):
        kind = "举报" if e.get("kind") == "report" else "投诉"
        parts.append(f"{kind} {e['complaint_id']}" + (f"，期限 {e['due_on']}" if e.get("due_on") else "")
                     + (f"，已超过 {e['working_days_over']} 个工作日" if e.get("working_days_over") else ""))
    elif alert.rule in ("rectification.overdue", "rectification.rejected") and e.get("rectification_id"):
        parts.append(f"整改编号 {e['rectification_id']}" + (f"，期限 {e['deadline']}" if e.get("deadline") else ""))
    elif alert.rule == "inspection.nonconforming" and e.get("inspection_id"):
        findings, minor = e.get("serious_findings") or [], e.get("minor_findings") or []
        parts.append(f"现场检查 {e['inspection_id']}，结论“{e.get('result', '')}”" + (f"，问题条款 {'、'.join(findings)}" if findings else "")
                     + (f"，一般问题条款 {'、'.join(minor[:10])}{'等' if len(minor) > 10 else ''}" if minor else ""))
    elif alert.rule == "data.missing" and e.get("what"):
        verb = "抽检" if e["what"] == "sampling" else "检查"
        last = f"最近一次{verb} {e['last']}" if e.get("last") else f"自 {e.get('base', '')} 登记以来未{verb}"
        parts.append(f"{last}，应于 {e.get('due', '')} 前完成")
    elif alert.rule == "risk.grade_worsened" and e.get("to"):
        parts.append(f"风险分 {_num(e.get('score'))}，等级由 {e.get('from')} 级变为 {e['to']} 级")
    elif alert.rule == "enforcement.decided" and e.get("decision_no"):
        parts.append(f"行政处罚决定书 {e['decision_no']}（{e.get('decided_on', '')}）" + ("，列入严重违法失信名单" if e.get("serious_dishonesty") else ""))
    elif alert.rule == "interview.follow_up_overdue" and e.get("interview_id"):
        parts.append(f"约谈 {e['interview_id']}（{e.get('held_on', '')}），跟踪检查期限 {e.get('follow_up_by', '')}")
    elif alert.rule == "judgement.disagrees" and e.get("items"):
        parts.append(f"项目 {'、'.join(e['items'])}")
    elif alert.rule in ("judgement.lab_failed_unjudged", "judgement.lab_failed_passed") and e.get("items"):
        # the lab's numbers as it reported them, the lab's own verdict: what the follow-up starts from
        for f in e["items"][:5]:
            unit = f" {f['unit']}" if f.get("unit") else ""
            basis = f"，判定依据 {f['lab_standard']}" if f.get("lab_standard") else ""
            parts.append(f"{f.get('item_name') or f.get('item_code')} 检测值 {'、'.join(_num(v) for v in f.get('values') or [])}{unit}"
                         f"（检验机构判定不合格{basis}）")
    return "；".join(parts)
