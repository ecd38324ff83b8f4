"""What the door can tell a lab about a valid result qrisk will keep but cannot judge.

A misspelt item code, a unit nobody can read or convert, a negative reading: the event is a
fact and is accepted (the credit file shows the item as 无法判定 and says why), but the sender
should learn it in the answer, not months later from a supervisor.  The catalogue decides, the
same one the fold judges with (a lab integrator reads it at ``GET /v1/catalogue`` or in the
``catalogue.json`` of ``qrisk schema export``).
"""
from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from schemas.events import (CampaignActivityEvent, CampaignRetractedEvent, CampaignTrainingEvent, ComplaintAcceptedEvent, ComplaintReceivedEvent,
                            ComplaintResolvedEvent, ComplaintWithdrawnEvent, EnforcementDecidedEvent, EnforcementListingRemovedEvent, EnforcementRevokedEvent, Envelope,
                            FluctuationRebaselinedEvent, InspectionCompletedEvent, InterviewHeldEvent, RectificationCompletedEvent,
                            RectificationOrderedEvent, RectificationVerifiedEvent, SamplingResultEvent, SamplingRetractedEvent, TestItem)
from schemas.duplicates import duplicate_similarity
from schemas.policy import Policy
from schemas.standards import Catalogue, UnitTable


def unregistered_warning(enterprise_id: str) -> dict[str, Any]:
    """A sample of an enterprise nobody registered yet: kept, and judged once it is."""
    return {"field": "enterprise_id", "type": "enterprise_unregistered",
            "reason": f"enterprise {enterprise_id!r} is not registered: the sample is kept and judged once it is",
            "reason_zh": f"企业 {enterprise_id} 尚未登记：样品结果已接收，待企业登记（确定食品类别）后判定"}


def accepted_warnings(event: Envelope, catalogue: Catalogue, file: Any | None,
                      elsewhere: Sequence[tuple[str, Any]] = (), policy: Policy | None = None) -> list[dict[str, Any]]:
    """What ``POST /v1/events`` and ``qrisk import`` answer for an event the embedded pipeline accepted,
    given the enterprise's credit file as the fold left it (None: no file yet) and the reports of its sample
    number (or the complaints of its complaint number) on file under other enterprises (``elsewhere``: (enterprise
    id, record)).  One function for both ways in, so that a lab reads the same warning however it sent the result.
    ``policy``: the bureau's (its local time, which the Chinese text quotes; what makes two complaints alike)."""
    profile = file.profile if file is not None else None
    category = profile.category if profile is not None else None
    sampling = isinstance(event, SamplingResultEvent)
    if isinstance(event, (ComplaintReceivedEvent, ComplaintResolvedEvent)):
        return _complaint_warnings(event, file, elsewhere, policy or Policy())
    if isinstance(event, ComplaintWithdrawnEvent):
        return _withdrawal_warnings(event, file)
    if isinstance(event, ComplaintAcceptedEvent):
        return _acceptance_warnings(event, file, policy or Policy())
    if isinstance(event, FluctuationRebaselinedEvent):
        return _rebaseline_warnings(event, file, policy or Policy())
    if isinstance(event, SamplingRetractedEvent):
        return _retraction_warnings(event, file)
    if isinstance(event, CampaignRetractedEvent):
        return _campaign_retraction_warnings(event, file)
    if isinstance(event, (InspectionCompletedEvent, InterviewHeldEvent)):
        return _record_resent(event, file)
    if isinstance(event, RectificationOrderedEvent):
        return _order_resent(event, file)
    if isinstance(event, (RectificationCompletedEvent, RectificationVerifiedEvent)):
        return _rectification_unknown(event, file)
    if isinstance(event, EnforcementDecidedEvent):
        decision = file.enforcement(event.payload.decision_no) if file is not None else None
        if decision is None or decision.event_id == str(event.event_id):
            return []
        no = event.payload.decision_no
        differs = [f for f in _DECISION_FIELDS if _plain(getattr(decision, f)) != _plain(getattr(event.payload, f))]
        if not differs:
            return [_warning("payload.decision_no", "decision_no_on_file", f"decision {no} is on file (event {decision.event_id}): "
                             "the same decision sent again, not counted again",
                             f"行政处罚决定书 {no} 已在档（事件 {decision.event_id}）：本次内容相同，按重复报送处理，不重复计入")]
        named = ", ".join(f"payload.{f}" for f in differs)
        named_zh = "、".join(f"{_DECISION_FIELDS[f]}（payload.{f}）" for f in differs)
        return [_warning(f"payload.{differs[0]}", "decision_no_on_file",
                         f"decision {no} is on file (event {decision.event_id}) and this one differs in {named}: the decision on file "
                         "stands, this one is not filed; a decision varied is revoked (enforcement.revoked) and posted under its own number",
                         f"行政处罚决定书 {no} 已在档（事件 {decision.event_id}），本次的{named_zh}与在档决定不同：以在档决定为准，本次未登记；"
                         f"决定变更的，请以 enforcement.revoked 撤销原决定后以新的决定书文号报送")]
    if isinstance(event, EnforcementRevokedEvent):
        decision = file.enforcement(event.payload.decision_no) if file is not None else None
        if decision is not None:
            if event.payload.revoked_on < decision.decided_on:
                # (the door alone cannot see it: the decision is the fold's; applied, and said)
                r, d = event.payload.revoked_on.isoformat(), decision.decided_on.isoformat()
                return [_warning("payload.revoked_on", "revoked_before_decided",
                                 f"revoked_on {r} is before decision {decision.decision_no}'s decided_on {d}: the revocation is applied; "
                                 "check the date", f"撤销日期 {r} 早于行政处罚决定书 {decision.decision_no} 的决定日期 {d}：撤销已按登记处理，请核对撤销日期")]
            return []
        no = event.payload.decision_no
        return [_warning("payload.decision_no", "revocation_pending",
                         f"no decision {no} is on file under {event.enterprise_id}: the revocation is kept and applies when the "
                         "decision comes; check the decision number and the enterprise id",
                         f"企业 {event.enterprise_id} 名下尚无行政处罚决定书 {no}：撤销已登记，该决定到达时即按撤销处理；请核对决定书文号和企业编号")]
    if isinstance(event, EnforcementListingRemovedEvent):
        return _listing_removal_warnings(event, file)
    # the category chooses the standard: the sample waits, judged when the enterprise is registered
    unregistered = [unregistered_warning(event.enterprise_id)] if category is None and sampling else []
    on_file = list(file.samples) if file is not None and sampling else None
    out = unregistered + event_warnings(event, catalogue, category, on_file=on_file)
    if event.event_type.startswith("campaign.") and file is not None:
        out += _campaign_warnings(event, file)
    if sampling and file is not None:
        out += _as_folded(event, file, out)
    if sampling and elsewhere:
        out.append(_sample_no_elsewhere(event, elsewhere))  # type: ignore[arg-type]
    stopped = getattr(file, "suspended_on", None) if sampling else None
    if stopped is not None and event.payload.sampled_on >= stopped:  # type: ignore[attr-defined]
        # (judged and counted as any sample: stock on the shelves is sampled too; the bureau may want to know it was made
        # before the stop, or that the plant is producing while it says it is stopped)
        out.append(_warning("enterprise_id", "enterprise_suspended",
                            f"enterprise {event.enterprise_id!r} is stopped (suspended) since {stopped.isoformat()}: the sample is judged "
                            "and counted as any other; check its production date (stock made before the stop) or whether it produces again",
                            f"企业 {event.enterprise_id} 自 {stopped.isoformat()} 起停产：样品已照常判定、计入；请核对生产日期（停产前的库存）"
                            "或企业是否已恢复生产（恢复生产请以 enterprise.updated status operating 报送）"))
    return out


def _listing_removal_warnings(event: EnforcementListingRemovedEvent, file: Any) -> list[dict[str, Any]]:
    """A removal from the 严重违法失信 list the fold could not apply (processors.step._listing_removed): its sender hears
    why, naming the field, as the fold's effect says it."""
    p = event.payload
    decision = file.enforcement(p.decision_no) if file is not None else None
    no, me = p.decision_no, str(event.event_id)
    if decision is None:
        return [_warning("payload.decision_no", "decision_unknown",
                         f"no decision {no} is on file under {event.enterprise_id}: nothing was removed; check the decision number "
                         "and the enterprise id, and send the removal again (a new event_id) once the decision is on file",
                         f"企业 {event.enterprise_id} 名下无行政处罚决定书 {no}：未作移出处理；请核对决定书文号和企业编号，"
                         "决定书在档后以新的 event_id 重新报送")]
    if not decision.serious_dishonesty:
        return [_warning("payload.decision_no", "decision_not_listing",
                         f"decision {no} did not list the enterprise as seriously dishonest (serious_dishonesty false): nothing to remove",
                         f"行政处罚决定书 {no} 未列入严重违法失信名单：无可移出的列入，未作处理；请核对决定书文号")]
    if not decision.in_force:
        return [_warning("payload.decision_no", "decision_revoked",
                         f"decision {no} was revoked on {decision.revoked_on.isoformat()}: its listing ended with it, nothing to remove",
                         f"行政处罚决定书 {no} 已于 {decision.revoked_on.isoformat()} 撤销，其列入已随之终止，未作移出处理")]
    if p.removed_on < decision.decided_on:
        return [_warning("payload.removed_on", "removed_before_listing",
                         f"removed_on {p.removed_on.isoformat()} is before the listing decision {no} of {decision.decided_on.isoformat()}: "
                         "nothing was removed; check the removal date and send the removal again (a new event_id)",
                         f"移出日期 {p.removed_on.isoformat()} 早于列入决定日期 {decision.decided_on.isoformat()}：未作移出处理，请核对移出日期")]
    if decision.listing_removal_event_id not in (None, me):
        return [_warning("payload.decision_no", "listing_removed_already",
                         f"the listing by decision {no} was removed on {decision.listing_removed_on.isoformat()} "
                         f"({decision.listing_removed_ref}): this removal is not applied again",
                         f"行政处罚决定书 {no} 的列入已于 {decision.listing_removed_on.isoformat()} 提前移出（{decision.listing_removed_ref}），"
                         "本次不重复处理")]
    return []


def _sample_no_elsewhere(event: SamplingResultEvent, elsewhere: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """The warning for a result whose sample number is on file under another enterprise: 抽样编号 are unique, so
    one of the two reports names the wrong enterprise (a lab's mistake it cannot take back by a correction, which
    only replaces a report of the same enterprise).  A lab system hears which enterprise only of its own reports."""
    poster = _poster(event)
    p = event.payload
    what, what_en = ("复检结果", "re-test result") if p.retest else ("结果", "result")
    named = [(eid, r) for eid, r in elsewhere if poster is None or _field(r, "lab_id") == poster]
    if named:
        where = "、".join(dict.fromkeys(f"{eid}（事件 {_field(r, 'event_id')}）" for eid, r in named))
        where_en = ", ".join(dict.fromkeys(f"{eid} (event {_field(r, 'event_id')})" for eid, r in named))
    else:
        where, where_en = "另一企业", "another enterprise"
    return _warning("enterprise_id", "sample_no_elsewhere",
                    f"sample no. {p.sample_no} already has a {what_en} on file under {where_en}: sample numbers are unique, so one of the "
                    f"two reports names the wrong enterprise. Both are kept and counted where they were sent; a correction cannot move a "
                    f"report to another enterprise: ask the bureau to check it",
                    f"抽样编号 {p.sample_no} 已有{what}登记在{where}名下：抽样编号唯一，两份报告中有一份的企业可能有误。两份报告均按报送的企业存档、计入统计，"
                    f"更正报告不能把报告移到另一企业名下：请核实企业编号，有误的请联系监管部门处理")


# what a lab cannot fix by itself but must hear: the judgement's own sentence says why
_UNDETERMINED_SAID = frozenset({"detection_limit_above_limit", "detection_limit_unknown", "no_rule_in_force", "edition_uncertain"})


def _as_folded(event: SamplingResultEvent, file: Any, said: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the fold made of this result that its sender should hear: a re-test not admitted (and why), a
    re-test whose original is not on file, items left undetermined for a reason the other warnings do not
    give (a detection limit above the limit, no edition in force)."""
    me = str(event.event_id)
    mine = next((r for r in reversed(file.samples) if r.event_id == me), None)  # (just folded: at the end, mostly)
    if mine is None:
        return []
    p = event.payload
    out: list[dict[str, Any]] = []
    if mine.superseded_as == "retracted":
        # the bureau retracted the sample number here before this report came (processors.step, "retractions")
        return [_warning("payload.sample_no", "sample_no_retracted",
                         f"the bureau retracted sample no. {p.sample_no} under {event.enterprise_id} ({mine.retraction_reason}): this report "
                         f"is kept on file, retracted, not counted; if the sample is another enterprise's, send it under that enterprise's id",
                         f"抽样编号 {p.sample_no} 在企业 {event.enterprise_id} 名下的报告已由监管部门撤销（原因：{mine.retraction_reason}）："
                         f"本次报告存档、不计入统计；如该样品属于另一企业，请以该企业编号报送")]
    if mine.superseded_as == "retest_inadmissible":
        why = mine.refused_zh or "见预警"
        out.append(_warning("payload.retest", "retest_inadmissible",
                            f"the re-test of sample no. {p.sample_no} is not admitted ({why}): the original result stands",
                            f"抽样编号 {p.sample_no} 的复检不予采信：{why}；原检验结论不变，本复检结果不计入统计"))
    elif p.retest and not any(r.sample_no == p.sample_no and not r.retest for r in file.samples):
        out.append(_warning("payload.retest", "retest_without_original",
                            f"no original result of sample no. {p.sample_no} is on file: the re-test counts as the sample's result "
                            f"until the original comes, which then decides whether the re-test is admitted",
                            f"尚未收到抽样编号 {p.sample_no} 的原检验结果：复检结果暂作为该样品结论，收到原检验结果后再判定复检是否采信；"
                            f"请核对抽样编号"))
    judgement = mine.judgement
    if judgement is not None:
        warned = {w["field"].split(".")[1] for w in said if w["field"].startswith("payload.items[")}
        index = {t.item_code: i for i, t in enumerate(p.items)}
        for item in judgement.items:
            i = index.get(item.item_code)
            if i is None or item.verdict != "undetermined" or item.reason not in _UNDETERMINED_SAID or f"items[{i}]" in warned:
                continue
            out.append(_warning(f"payload.items[{i}]", item.reason, item.message_en, item.message_zh))
    return out


_DECISION_FIELDS = {"decided_on": "决定日期", "authority": "作出决定的机关", "violation": "违法行为", "legal_basis": "法律依据",
                    "penalties": "处罚内容", "serious_dishonesty": "列入严重违法失信名单", "sample_nos": "相关抽样编号",
                    "inspection_ids": "相关检查编号"}


def _plain(value: Any) -> Any:
    """A decision's field as compared: lists in any order."""
    return sorted(map(repr, value)) if isinstance(value, list) else value


_RESENT_ZH = {"inspection.completed": ("现场检查", "inspection", "inspection_id"), "interview.held": ("约谈", "interview", "interview_id")}


def _record_resent(event: InspectionCompletedEvent | InterviewHeldEvent, file: Any) -> list[dict[str, Any]]:
    """An inspection or interview id on file sent again under a new event id, as the fold took it
    (``processors.step._inspection_resent``, ``_interview_resent``): a repeat, a correction, or an earlier record
    arriving late.  The sender hears it, as the hotline hears ``complaint_id_on_file``."""
    what_zh, what, key = _RESENT_ZH[event.event_type]
    records = (file.inspections if what == "inspection" else file.interviews) if file is not None else []
    me = str(event.event_id)
    mine = next((r for r in reversed(records) if r.event_id == me), None)
    if mine is None or (mine.superseded_by is None and mine.corrects is None) or mine.superseded_as == "corrected":
        return []  # the first record of its id (or one corrected since: its own answer said what it was)
    no = getattr(event.payload, key)
    if mine.superseded_as == "repeated":
        en = "the same record sent again, not counted again"
        zh = "本次内容相同，按重复报送处理，不重复计数"
        other = mine.superseded_by
    elif mine.superseded_as == "outdated":
        en = "this record differs but is dated before the one on file and arrived after it: kept, not counted; the record on file stands"
        zh = "本次记录与之不同，但日期早于在档记录而晚到：存档备查、不计入，以在档记录为准；如为更正，请核对日期"
        other = mine.superseded_by
    else:
        en = "this record differs and replaces it (a correction): the record on file is kept, no longer counted"
        zh = "本次记录与之不同，按更正处理：取代在档记录，原记录存档备查、不再计入"
        other = mine.corrects
    return [_warning(f"payload.{key}", f"{what}_id_on_file", f"{what} {no} is on file (event {other}): {en}",
                     f"{what_zh} {no} 已在档（事件 {other}）：{zh}")]


_ORDER_FIELDS = {"what": "整改内容", "cause": "起因", "deadline": "整改期限"}


def _order_resent(event: RectificationOrderedEvent, file: Any) -> list[dict[str, Any]]:
    """An order under a rectification id on file, as the fold took it (``processors.step._order_resent``): the same
    again, a correction (a 延期, a mistyped deadline), or an earlier version arriving late; named as decision_no_on_file is."""
    rid = event.payload.rectification_id
    record = file.rectification(rid) if file is not None else None
    me = str(event.event_id)
    resend = next((r for r in getattr(record, "resends", ()) if r.event_id == me), None)
    if resend is None:
        return []  # (the first order of its id)
    if resend.taken_as == "repeated":
        return [_warning("payload.rectification_id", "rectification_id_on_file", f"rectification {rid} is on file: the same order sent "
                         "again, not ordered again", f"整改编号 {rid} 已在档：本次内容相同，按重复报送处理")]
    changed = list(resend.changes)
    named = ", ".join(f"payload.{f}" for f in changed)
    named_zh = "；".join(f"{_ORDER_FIELDS[f]}（payload.{f}）由 {a or '（空）'} 改为 {b or '（空）'}" for f, (a, b) in resend.changes.items())
    if resend.taken_as == "corrected":
        return [_warning(f"payload.{changed[0]}", "rectification_id_on_file",
                         f"rectification {rid} is on file and this order differs in {named}: taken as its correction (the order on "
                         "file is replaced; an overdue mark the old deadline set is withdrawn when the new one has not passed)",
                         f"整改编号 {rid} 已在档，本次{named_zh}：按更正处理，以本次为准（原期限造成的逾期标记，按更正后的期限未逾期的，予以撤销）")]
    return [_warning(f"payload.{changed[0]}", "rectification_id_on_file",
                     f"rectification {rid} is on file and this order differs in {named}, but is dated before the order on file: kept, "
                     "not applied; a correction is sent with occurred_at on or after the order it corrects",
                     f"整改编号 {rid} 已在档，本次{named_zh}，但下达时间早于在档的责令整改：存档，不采用；如为更正，occurred_at 应不早于原责令整改")]


def _rectification_unknown(event: RectificationCompletedEvent | RectificationVerifiedEvent, file: Any) -> list[dict[str, Any]]:
    """A completion or verification whose order is not on file: kept, applied when it comes (``CreditFile.
    rectifications_waiting``); the sender hears it, in case the id or the enterprise is mistyped."""
    rid = event.payload.rectification_id
    if file is not None and file.rectification(rid) is not None:
        return []
    what, what_zh = ("completion", "整改完成报告") if isinstance(event, RectificationCompletedEvent) else ("verification", "复查结论")
    return [_warning("payload.rectification_id", "rectification_unknown",
                     f"no rectification {rid} is ordered under {event.enterprise_id}: the {what} is kept and applies when the order comes; "
                     "check the rectification id and the enterprise id",
                     f"本企业名下无整改编号 {rid} 的责令整改记录（企业 {event.enterprise_id}）：{what_zh}已暂存，收到该责令整改后生效；"
                     "请核对整改编号和企业编号")]


def _local(moment: dt.datetime, policy: Policy) -> str:
    """A time as the bureau reads it in Chinese text: its local wall time, to the minute (the English keeps ISO UTC)."""
    return (moment.astimezone(dt.timezone.utc) + dt.timedelta(hours=policy.utc_offset_hours)).strftime("%Y-%m-%d %H:%M")


def _resolution_warnings(event: ComplaintResolvedEvent, record: Any, policy: Policy) -> list[dict[str, Any]]:
    """A second conclusion on a complaint (``processors.step._resolve``): the same again, a revised one, or one dated
    before the conclusion in force that arrived after it."""
    me = str(event.event_id)
    p = event.payload
    resolutions = list(getattr(record, "resolutions", None) or [])
    mine = next((r for r in resolutions if r.event_id == me), None)
    others = [r for r in resolutions if r.event_id != me]
    said = lambda r: (f"{'属实' if r.verified else '不属实'}（{_local(r.resolved_at, policy)}，事件 {r.event_id}）",  # noqa: E731
                      f"{'verified' if r.verified else 'unfounded'} ({r.resolved_at.isoformat()}, event {r.event_id})")
    if mine is None:
        return [_warning("payload.complaint_id", "complaint_resolution_on_file",
                         f"this conclusion on complaint {p.complaint_id} is on file already: not applied again",
                         f"投诉编号 {p.complaint_id} 的这一办结结论已在档：按重复报送处理")] if resolutions else []
    if not others:
        return []
    if record.resolution_event_id == me:
        earlier = max(others, key=lambda r: r.resolved_at)
        zh, en = said(earlier)
        return [_warning("payload.verified", "complaint_resolution_revised",
                         f"complaint {p.complaint_id} had a conclusion, {en}: this one is later and is in force; the earlier stays in its history",
                         f"投诉编号 {p.complaint_id} 已有办结结论{zh}：本次结论日期较晚，以本次为准，原结论存入办理记录")]
    in_force = next((r for r in resolutions if r.event_id == record.resolution_event_id), None)
    if in_force is None:
        return []
    zh, en = said(in_force)
    return [_warning("occurred_at", "complaint_resolution_outdated",
                     f"complaint {p.complaint_id} has a later conclusion on file, {en}: this one is kept in its history, not in force",
                     f"投诉编号 {p.complaint_id} 已有日期较晚的办结结论{zh}：本次结论存入办理记录，不作为现行结论；请核对办结时间")]


def _retraction_warnings(event: SamplingRetractedEvent, file: Any) -> list[dict[str, Any]]:
    """A retraction of a sample number with no report on file under the enterprise: kept, applied when the report
    comes (processors.step, "retractions"); the bureau hears it, in case the number or the enterprise is wrong."""
    p = event.payload
    if file is not None and any(_field(r, "sample_no") == p.sample_no for r in file.samples):
        return []
    return [_warning("payload.sample_no", "retraction_pending",
                     f"no report of sample no. {p.sample_no} is on file under {event.enterprise_id}: the retraction is kept and applies "
                     f"to its reports when they come; check the sample number and the enterprise id",
                     f"企业 {event.enterprise_id} 名下尚无抽样编号 {p.sample_no} 的报告：撤销已登记，该编号的报告到达时即按撤销处理；"
                     f"请核对抽样编号和企业编号")]


def _campaign_warnings(event: Envelope, file: Any) -> list[dict[str, Any]]:
    """What the fold made of a campaign record that its sender should hear: an enterprise nobody registered (a
    comparison test then waits for its category), one closed before the record's date, a record withdrawn before it
    came, a training report whose first-attempt passes rose by more than its takers (or which puts the next one's in doubt)."""
    me = str(event.event_id)
    out = []
    if file.profile is None:
        # (as a sample or a complaint of an enterprise nobody registered: kept, and the sender hears it)
        pending = isinstance(event, CampaignActivityEvent) and any(x.event_id == me and x.satisfactory is None for x in file.campaign.comparison_tests)
        out.append(_warning("enterprise_id", "enterprise_unregistered",
                            f"enterprise {event.enterprise_id!r} is not registered: the campaign record is kept on its file and shows in the "
                            "progress table once it is" + ("; the comparison test is judged then (its category gives the item's unit)" if pending else "")
                            + "; check the enterprise id",
                            f"企业 {event.enterprise_id} 尚未登记：提档升级记录已记入该企业档案，企业登记后列入进度表"
                            + ("；比对试验待企业登记（确定食品类别）后判定" if pending else "") + "；请核对企业编号"))
    closed = getattr(file, "deregistered_on", None)
    dated = next((getattr(event.payload, f) for f in ("signed_on", "assessed_on", "as_of", "on") if hasattr(event.payload, f)), None)
    if closed is not None and dated is not None and dated >= closed:
        # (a document dated before the closure and loaded after it is the campaign's history: nothing to say)
        out.append(_warning("enterprise_id", "enterprise_deregistered",
                            f"enterprise {event.enterprise_id!r} closed (deregistered) on {closed.isoformat()}, and this record is dated "
                            f"{dated.isoformat()}: it is kept on its file; a closed enterprise is counted apart in the campaign (not lagging, "
                            "not in the KPIs); check the enterprise id",
                            f"企业 {event.enterprise_id} 已于 {closed.isoformat()} 注销，本记录日期为 {dated.isoformat()}：已记入该企业档案，"
                            f"但已注销企业在提档升级进度中单列（不计滞后与指标）；请核对企业编号"))
    retraction = file.campaign.retractions.get(me)
    if retraction is not None:
        out.append(_warning("event_id", "record_retracted",
                            f"the bureau retracted this record (event {me}) before it came ({retraction.reason}): it is kept on file, "
                            "not counted; if it belongs to another enterprise, send it under that enterprise's id (a new event_id)",
                            f"该记录（事件 {me}）到达前已被{retraction.by}撤销（原因：{retraction.reason}）：存档、不计入提档升级进度和指标；"
                            f"如属于另一企业，请以该企业编号、新的 event_id 重新报送"))
    elif isinstance(event, CampaignTrainingEvent):
        # (as the fold found them: this report's passes, or the next report's over this one's, processors.campaign.first_pass_rises)
        out += [_warning("payload.exam_first_pass", "first_pass_rise",
                         f"exam_first_pass {x['first_pass']} ({x['as_of']}) is more than the {x['most']} the reports before it allow (the "
                         f"first passes credible by {x['previous_as_of']} plus the new exam takers): first-attempt passes can grow only by "
                         "those newly examined (a retake is no first attempt); the figure is kept, marked to be checked",
                         x["text_zh"]) for x in file.campaign.first_pass_doubts if me in (x["event_id"], x["previous_event_id"])]
    return out


def _campaign_retraction_warnings(event: CampaignRetractedEvent, file: Any) -> list[dict[str, Any]]:
    """A campaign.retracted whose record is not on file under the enterprise (kept, applied when the record comes), or
    names a record sent again that was never counted on its own: the bureau hears it, in case the id or the enterprise is wrong."""
    target = str(event.payload.retracted_event_id)
    c = file.campaign if file is not None else None
    if c is not None and any(r.event_id == str(event.event_id) for r in c.refused_retractions):
        # (before the repeat below: a retraction's event id is on file too, and it was no repeat)
        return [_warning("payload.retracted_event_id", "retraction_of_retraction",
                         f"event {target} is a retraction: a retraction cannot be retracted; this one is kept on file and registers "
                         "nothing. If the retraction was wrong, send the original record again under a new event_id",
                         f"事件 {target} 是一条撤销记录，撤销不能再撤销；如撤销有误，请以新的 event_id 重新报送原记录")]
    retraction = c.retractions.get(target) if c is not None else None
    if retraction is not None and retraction.record is not None:
        return []
    if c is not None and target in c.event_ids:
        return [_warning("payload.retracted_event_id", "retraction_of_repeat",
                         f"event {target} is a campaign record sent again, the same as one on file, and was never counted on its own: "
                         "the record on file stands; to withdraw it, name its own event id",
                         f"事件 {target} 与在档的提档升级记录相同（重复报送），未单独计入：在档的记录不受影响；如要撤销，请填写在档记录的事件编号")]
    return [_warning("payload.retracted_event_id", "retraction_pending",
                     f"no campaign record of event {target} is on file under {event.enterprise_id}: the retraction is kept and applies "
                     f"when the record comes; check the event id and the enterprise id",
                     f"企业 {event.enterprise_id} 名下尚无事件 {target} 的提档升级记录：撤销已登记，该记录到达时即按撤销处理；请核对事件编号和企业编号")]


def _elsewhere_zh(elsewhere: Sequence[tuple[str, Any]]) -> tuple[str, str]:
    """The enterprises a complaint number is on file under: 企业 W07、W08 名下（事件 …、…）, and in English."""
    ids = "、".join(dict.fromkeys(eid for eid, _ in elsewhere))
    events = "、".join(dict.fromkeys(str(_field(r, "event_id")) for _, r in elsewhere))
    en = ", ".join(dict.fromkeys(f"{eid} (event {_field(r, 'event_id')})" for eid, r in elsewhere))
    return f"企业 {ids} 名下（事件 {events}）", en


def _withdrawal_warnings(event: ComplaintWithdrawnEvent, file: Any) -> list[dict[str, Any]]:
    """A withdrawal of a complaint number with no complaint on file under the enterprise: kept, applied when the complaint
    comes (processors.step._complaint_withdrawn); the bureau hears it, in case the number or the enterprise is wrong."""
    p = event.payload
    if file is not None and (file.complaint(p.complaint_id) is not None or file.withdrawn_complaint(p.complaint_id) is not None):
        return []
    return [_warning("payload.complaint_id", "withdrawal_pending",
                     f"no complaint {p.complaint_id} is on file under {event.enterprise_id}: the withdrawal is kept and applies to the "
                     f"complaint when it comes; check the complaint number and the enterprise id",
                     f"企业 {event.enterprise_id} 名下尚无投诉编号 {p.complaint_id} 的登记记录：撤回已登记，该投诉到达时即按撤回处理；"
                     f"请核对投诉编号和企业编号")]


def _acceptance_warnings(event: ComplaintAcceptedEvent, file: Any, policy: Policy) -> list[dict[str, Any]]:
    """An acceptance decision the fold kept but the bureau should check: its complaint not on file yet (kept, applied when
    it comes), a decided_on before the complaint's receipt (the door alone cannot see the receipt: applied, the mediation
    counted from the receipt, and said), one dated after the complaint's conclusion (kept; the register would read 办结 before
    受理), or a 举报 (no acceptance limit: kept for the record)."""
    p = event.payload
    record = (file.complaint(p.complaint_id) or file.withdrawn_complaint(p.complaint_id)) if file is not None else None
    if record is None:
        return [_warning("payload.complaint_id", "acceptance_pending",
                         f"no complaint {p.complaint_id} is on file under {event.enterprise_id}: the decision is kept and applies when "
                         "the complaint comes; check the complaint number and the enterprise id",
                         f"企业 {event.enterprise_id} 名下尚无投诉编号 {p.complaint_id} 的登记记录：受理决定已暂存，该投诉到达时生效；"
                         "请核对投诉编号和企业编号")]
    if record.withdrawn is not None:
        w = record.withdrawn
        return [_warning("payload.complaint_id", "acceptance_of_withdrawn",
                         f"complaint {p.complaint_id} was withdrawn under {event.enterprise_id} ({w.reason}, event {w.event_id}): the "
                         "decision is only kept, not applied; if the complaint is filed under another enterprise, send it there",
                         f"投诉编号 {p.complaint_id} 已于 {_local(w.withdrawn_at, policy)} 由{w.by}撤回（原因：{w.reason}；事件 {w.event_id}）："
                         "受理决定仅存档、不生效；如该投诉登记在其他企业名下，请在该企业名下报送")]
    if record.kind == "report":
        return [_warning("payload.complaint_id", "acceptance_of_report",
                         f"{p.complaint_id} is a report (举报): it has no acceptance limit, the decision is only kept",
                         f"{p.complaint_id} 为举报：举报不适用受理期限，受理决定仅存档")]
    received = (record.received_at + dt.timedelta(hours=policy.utc_offset_hours)).date()
    if p.decided_on < received:
        d, r = p.decided_on.isoformat(), received.isoformat()
        return [_warning("payload.decided_on", "decided_before_received",
                         f"decided_on {d} is before complaint {p.complaint_id} was received ({r}): the decision is applied, its "
                         "mediation counted from the receipt; check the date",
                         f"决定日期 {d} 早于投诉 {p.complaint_id} 的收到日期 {r}：受理决定已登记，调解期限自收到之日起计算；请核对决定日期")]
    # (a decision after the conclusion: kept, but the register then reads 办结 before 受理 — a date typed wrong on either)
    out = []
    if record.concluded_on is not None and p.decided_on > record.concluded_on:
        d, c = p.decided_on.isoformat(), record.concluded_on.isoformat()
        out.append(_warning("payload.decided_on", "decided_after_concluded",
                            f"decided_on {d} is after complaint {p.complaint_id} was concluded ({c}): the decision is kept, but a "
                            "complaint is accepted or refused before it is concluded; check the decision date, or the conclusion's",
                            f"决定日期 {d} 晚于投诉 {p.complaint_id} 的办结日期 {c}：受理决定已登记，但受理决定应在办结之前作出，"
                            "登记簿将显示先办结、后受理；请核对决定日期，如办结结论有误请重新报送办结结果"))
    if p.corrects is not None and not any(a.event_id == str(p.corrects) for a in record.acceptances):
        # (kept as a decision of its own, and it supersedes the one named should that come later: a mistyped id would
        # leave the wrong decision in force with the sender believing it corrected)
        c = str(p.corrects)
        return out + [_warning("payload.corrects", "corrects_not_found",
                         f"corrects {c} names no decision on file for complaint {p.complaint_id}: this one is filed as a decision of "
                         "its own (and replaces the one named if that comes later); check the event id of the decision to correct",
                         f"corrects 填写的事件 {c} 不是投诉 {p.complaint_id} 在档的受理决定：本决定按新的决定登记（该决定日后到达时即被本决定取代）；"
                         "请核对被更正决定的事件编号")]
    # (the earliest-dated decision not corrected stays in force: a later-dated one is kept and not applied, which the sender
    # should hear — a date typed wrong, or a decision meant to correct one, is sent again with corrects)
    own = str(event.event_id)
    earlier = [a for a in record.acceptances if a.superseded_by is None and a.event_id != own and a.event_id != str(p.corrects)
               and a.decided_on < p.decided_on and a.corrects != own]
    if p.corrects is None and earlier:
        a = min(earlier, key=lambda a: a.decided_on)
        what = "受理" if a.decision == "accepted" else "不予受理"
        return out + [_warning("payload.decided_on", "acceptance_not_in_force",
                         f"complaint {p.complaint_id} already has a decision dated earlier in force ({a.decision} on {a.decided_on.isoformat()}, "
                         f"event {a.event_id}): this one is kept, not applied; if that one was recorded wrong, send this one with "
                         f"corrects {a.event_id}, under a new event_id",
                         f"投诉 {p.complaint_id} 已有日期更早的受理决定（{what}，{a.decided_on.isoformat()}；事件 {a.event_id}）在生效：本决定仅存档、"
                         f"不生效；如该决定登记有误，请在本决定中以 corrects 填写 {a.event_id}，以新的事件编号（event_id）重新报送")]
    return out


def _rebaseline_warnings(event: FluctuationRebaselinedEvent, file: Any, policy: Policy) -> list[dict[str, Any]]:
    """A new baseline for a product (or item) with no chart under the enterprise yet: kept, applied when its results
    come (processors.step._rebaselined); the bureau hears it, in case the product's name or the item code is mistyped.
    One dated after the day it was confirmed is kept too — a new filtration system put in next week is a decision a
    supervisor may record ahead — but said: a year typed wrong (2027 for 2026) would leave a year of results on the
    old limits, the change of process unseen."""
    p = event.payload
    out = []
    confirmed = _local(event.occurred_at, policy)[:10]
    if p.effective_from.isoformat() > confirmed:
        d = p.effective_from.isoformat()
        out.append(_warning("payload.effective_from", "rebaseline_ahead",
                            f"effective_from {d} is after the day the new baseline was confirmed ({confirmed}): results sampled "
                            f"before {d} stay on the old limits, whenever they arrive; check the date",
                            f"基线生效日期 {d} 晚于确认日期 {confirmed}：{d} 之前抽样的结果（无论何时到达）仍按原控制限判异，"
                            f"自该日起抽样的结果才进入新基线；请核对日期"))
    series = file.fluctuation.series.values() if file is not None else ()
    if any(s.product == p.product and (p.item_code is None or s.item_code == p.item_code) for s in series):
        return out
    which = f"{p.product} / {p.item_code}" if p.item_code else p.product
    which_zh = f"{p.product}·{p.item_code}" if p.item_code else f"{p.product}（全部检验项目）"
    return out + [_warning("payload.item_code" if p.item_code and any(s.product == p.product for s in series) else "payload.product",
                     "rebaseline_pending",
                     f"no control chart of {which} is on file under {event.enterprise_id}: the new baseline is kept and applies when "
                     f"its results come; check the product name (as the sampling reports write it) and the item code",
                     f"企业 {event.enterprise_id} 名下尚无 {which_zh} 的质量波动监测序列：控制限重新确定已登记，结果到达时生效；"
                     f"请核对食品名称（与抽检报告一致）和项目代码")]


def _withdrawn_said(event: ComplaintReceivedEvent | ComplaintResolvedEvent, gone: Any, policy: Policy) -> dict[str, Any]:
    w = gone.withdrawn
    what, what_en = ("本次报送未计入", "this one is not counted") if isinstance(event, ComplaintReceivedEvent) else \
        ("办结结论存入该投诉的办理记录，不计入", "the conclusion is kept in its history, not counted")
    return _warning("payload.complaint_id", "complaint_withdrawn",
                    f"complaint {event.payload.complaint_id} was withdrawn under {event.enterprise_id} ({w.reason}, event {w.event_id}): {what_en}",
                    f"投诉编号 {event.payload.complaint_id} 已于 {_local(w.withdrawn_at, policy)} 由{w.by}撤回（原因：{w.reason}；事件 {w.event_id}）：{what}")


def _complaint_warnings(event: ComplaintReceivedEvent | ComplaintResolvedEvent, file: Any,
                        elsewhere: Sequence[tuple[str, Any]] = (), policy: Policy | None = None) -> list[dict[str, Any]]:
    """A complaint sent again, a resolution before (or without) its complaint — or under another enterprise
    than the complaint's (``elsewhere``: (enterprise id, complaint) on other files) — a complaint about an
    enterprise nobody registered, a complaint number on file under another enterprise, a complaint that reads as
    another one of the enterprise under another number: kept, and the hotline hears it."""
    policy = policy or Policy()
    p = event.payload
    record = file.complaint(p.complaint_id) if file is not None else None
    me = str(event.event_id)
    gone = file.withdrawn_complaint(p.complaint_id) if file is not None and record is None else None
    if gone is not None and gone.withdrawn is not None:
        return [_withdrawn_said(event, gone, policy)]
    if isinstance(event, ComplaintReceivedEvent):
        out: list[dict[str, Any]] = []
        if file is None or file.profile is None:
            out.append(_warning("enterprise_id", "enterprise_unregistered",
                                f"enterprise {event.enterprise_id!r} is not registered: the complaint is kept on its file; check the enterprise id",
                                f"企业 {event.enterprise_id} 尚未登记：投诉已接收并记入该企业档案；请核对企业编号"))
        if record is not None and record.corrected_by == me:
            out.append(_corrected_said(event, record))
        elif record is not None and record.event_id != me and _earlier_than_standing(event, record):
            # (processors.step._complaint_received: an older send, which corrects nothing)
            standing = max(record.received_at, getattr(record, "corrected_at", None) or record.received_at)
            out.append(_warning("occurred_at", "complaint_resend_earlier",
                                f"complaint {p.complaint_id} is on file (event {record.event_id}): this send (occurred_at "
                                f"{event.occurred_at.isoformat()}) is earlier than the corrected registration on file "
                                f"({standing.isoformat()}), which stands; not counted again — a correction carries the time it was made",
                                f"投诉编号 {p.complaint_id} 已登记（事件 {record.event_id}）：该报送（{_local(event.occurred_at, policy)}）"
                                f"早于已更正的登记（{_local(standing, policy)}），以更正后的为准，未重复计数；更正请以更正时的时间报送"))
        elif record is not None and record.event_id != me:
            same = (record.channel, record.category, record.text, record.product, record.verified) == (p.channel, p.category, p.text, p.product, p.verified)
            out.append(_warning("payload.complaint_id", "complaint_id_on_file",
                                f"complaint {p.complaint_id} is on file (event {record.event_id}): "
                                + ("the same complaint sent again, not counted again" if same else
                                   "this one differs and is not counted; send the investigation's conclusion as complaint.resolved"),
                                f"投诉编号 {p.complaint_id} 已登记（事件 {record.event_id}）："
                                + ("本次内容相同，按重复报送处理，不重复计数" if same else
                                   "本次内容不同，未重复计数；核查结论请以 complaint.resolved 报送，如为另一投诉请更正投诉编号")))
        elif elsewhere:
            # one complaint number, one complaint: filed under two enterprises, one of them is the wrong one, and each counts it
            where, where_en = _elsewhere_zh(elsewhere)
            out.append(_warning("enterprise_id", "complaint_id_elsewhere",
                                f"complaint {p.complaint_id} is on file under {where_en} too: a complaint number names one complaint, so "
                                f"one of them names the wrong enterprise; both are kept and counted where they were sent — ask the bureau "
                                f"to withdraw the one filed under the wrong enterprise (complaint.withdrawn)",
                                f"投诉编号 {p.complaint_id} 已登记在{where}：投诉编号唯一，其中一处的企业可能填错。两处均已登记并计入各自企业；"
                                f"请核实企业编号，登记错的请监管部门撤回（complaint.withdrawn）"))
        if record is not None and record.event_id == me:
            out += _possible_duplicates(event, file, policy)
        return out
    if record is None and elsewhere:
        where, where_en = _elsewhere_zh(elsewhere)
        return [_warning("enterprise_id", "complaint_id_elsewhere",
                         f"no complaint {p.complaint_id} is on file for {event.enterprise_id}, but one is under {where_en}: the resolution "
                         f"is kept under {event.enterprise_id} and waits there; if the enterprise id is wrong, send the resolution again "
                         f"under the complaint's enterprise (a new event_id)",
                         f"企业 {event.enterprise_id} 尚无投诉编号 {p.complaint_id} 的登记记录，该编号的投诉登记在{where}：办结结果已暂存在"
                         f"企业 {event.enterprise_id} 名下等待；如企业编号填错，请以新的 event_id 在该投诉所属企业名下重新报送办结结果")]
    if record is None:
        return [_warning("payload.complaint_id", "complaint_not_on_file",
                         f"no complaint {p.complaint_id} is on file for {event.enterprise_id}: the resolution is kept and takes effect when it comes",
                         f"企业 {event.enterprise_id} 尚无投诉编号 {p.complaint_id} 的登记记录：办结结果已暂存，收到该投诉后生效；请核对投诉编号和企业编号")]
    out = _resolution_warnings(event, record, policy)
    decision = record.acceptance
    concluded = dt.date.fromisoformat(_local(event.occurred_at, policy)[:10])
    if decision is not None and concluded < decision.decided_on:
        # (the other order of decided_after_concluded: the 受理决定 on file first, then a conclusion dated before it)
        d, c = decision.decided_on.isoformat(), concluded.isoformat()
        out.append(_warning("occurred_at", "concluded_before_decided",
                            f"concluded on {c} (occurred_at), before complaint {p.complaint_id}'s acceptance decision on file "
                            f"({d}, event {decision.event_id}): the conclusion is kept, but a complaint is accepted or refused before it "
                            "is concluded; check the conclusion's date, or the decision's",
                            f"办结日期 {c}（occurred_at）早于投诉 {p.complaint_id} 在档受理决定的决定日期 {d}（事件 {decision.event_id}）："
                            "办结结果已登记，但受理决定应在办结之前作出，登记簿将显示先办结、后受理；请核对办结时间，如受理决定有误请重新报送受理决定"))
    if event.occurred_at < record.received_at:
        out.append(_warning("occurred_at", "resolved_before_received",
                            f"resolved at {event.occurred_at.isoformat()}, before the complaint was received ({record.received_at.isoformat()}): check the dates",
                            f"办结时间 {_local(event.occurred_at, policy)} 早于投诉收到时间 {_local(record.received_at, policy)}，请核对"))
    return out


# (processors.warnings.COMPLAINT_ZH: ingest may not import processors)
_COMPLAINT_ZH = {"foreign_matter": "异物", "spoilage": "变质", "illness": "食用后不适", "labelling": "标签标识", "taste_odour": "异味",
                 "hygiene": "卫生", "other": "其他"}
_COMPLAINT_KIND_ZH = {"complaint": "投诉", "report": "举报"}


def _earlier_than_standing(event: ComplaintReceivedEvent, record: Any) -> bool:
    """A resend that would correct the kind, category or product, dated before the registration on file or its last
    correction: the fold keeps the record as it stands."""
    p = event.payload
    differs = record.kind != p.kind or record.category != p.category or (p.product is not None and record.product != p.product)
    standing = max(record.received_at, getattr(record, "corrected_at", None) or record.received_at)
    return differs and event.occurred_at < standing


def _corrected_said(event: ComplaintReceivedEvent, record: Any) -> dict[str, Any]:
    """A resend that corrected the registration's kind, category or product (processors.step._complaint_corrected): the
    sender hears what it corrected, not 以已登记的为准."""
    p, was = event.payload, record.corrected_from
    zh, en = [], []
    if "kind" in was:
        zh.append(f"诉求类型由{_COMPLAINT_KIND_ZH.get(was['kind'] or '', was['kind'])}更正为{_COMPLAINT_KIND_ZH.get(record.kind, record.kind)}")
        en.append(f"kind {was['kind']} → {record.kind}")
    if "category" in was:
        zh.append(f"投诉类别由{_COMPLAINT_ZH.get(was['category'] or '', was['category'])}更正为{_COMPLAINT_ZH.get(record.category, record.category)}"
                  "（投诉数控制图、风险分和投诉相关预警按更正后的类别重新计算）")
        en.append(f"category {was['category']} → {record.category}")
    if "product" in was:
        zh.append(f"产品由{was['product'] or '未写明'}更正为{record.product}")
        en.append(f"product {was['product'] or '(none)'} → {record.product}")
    others = (record.channel, record.text, record.verified) != (p.channel, p.text, p.verified)
    field = "payload.category" if "category" in was else "payload.product" if "product" in was else "payload.kind"
    return _warning(field, "complaint_corrected",
                    f"complaint {p.complaint_id} is on file (event {record.event_id}): this resend corrected its " + ", ".join(en)
                    + "; not counted again" + ("; the rest differs and stays as registered" if others else ""),
                    f"投诉编号 {p.complaint_id} 已登记（事件 {record.event_id}）：本次报送已更正" + "，".join(zh) + "，未重复计数"
                    + ("；其余内容与已登记的不同，以已登记的为准" if others else ""))


def _possible_duplicates(event: ComplaintReceivedEvent, file: Any, policy: Policy) -> list[dict[str, Any]]:
    """One complaint sent through two channels (12315 and 来信, a day apart, the same words) under two numbers: counted
    twice, on the chart and in a 投诉集中 or a 投诉聚集.  The sender hears which complaint this one repeats: a complaint
    number is the channel's, so only the bureau can tell, and withdraw the repeat (complaint.withdrawn)."""
    rule = policy.complaint_duplicates
    if file is None:
        return []
    p = event.payload
    out: list[dict[str, Any]] = []
    me = next((i for i, c in enumerate(file.complaints) if c.event_id == str(event.event_id)), len(file.complaints))
    for c in file.complaints[:me]:  # (those on file before it: the one it repeats came first)
        # (the fold's 投诉集中 and 投诉聚集 alerts name the same pairs: one notion, schemas.duplicates)
        alike = duplicate_similarity(p.text, event.occurred_at, c.text, c.received_at, rule) if c.complaint_id != p.complaint_id else None
        if alike is None:
            continue
        how, how_en = ("相同", "the same") if alike == 1.0 else (f"几乎相同（相似度 {alike:.0%}）", f"nearly the same ({alike:.0%} alike)")
        channel = {"12315": "12315", "hotline": "热线", "online": "网络", "letter": "来信", "visit": "来访", "other": "其他"}.get(c.channel, c.channel)
        out.append(_warning("payload.text", "complaint_possible_duplicate",
                            f"the text is {how_en} as complaint {c.complaint_id}'s ({c.channel}, received {c.received_at.isoformat()}, event "
                            f"{c.event_id}) of the same enterprise: perhaps one complaint sent through two channels; both are counted — if "
                            f"it is a repeat, ask the bureau to withdraw it (complaint.withdrawn, duplicate_of {c.complaint_id})",
                            f"投诉内容与同一企业的投诉编号 {c.complaint_id}（{channel}渠道，{_local(c.received_at, policy)} 收到，事件 {c.event_id}）"
                            f"{how}：可能是同一投诉经不同渠道重复登记。两件均已计入；如属重复，请监管部门撤回本件"
                            f"（complaint.withdrawn，duplicate_of 填 {c.complaint_id}）"))
    return out


def event_warnings(event: Envelope, catalogue: Catalogue, category: str | None = None,
                   on_file: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """Warnings for the items of a ``sampling.result`` qrisk will leave undetermined (and a comparison test on an unknown item).

    ``category``: the enterprise's, when known; otherwise an item counts as known when any
    category has it (the registration may come later).  A campaign comparison test names an item
    too: the credit file reads its values in that item's unit.

    ``on_file``: the enterprise's sample records as its credit file holds them (``CreditFile.samples``,
    or the ``samples`` of its view: objects or mappings with ``event_id``, ``sample_no``, ``retest``,
    ``lab``, ``lab_id`` and, once folded, ``superseded_by``, ``superseded_as``, ``corrects``), this event's own
    record included when it is folded already.  A result whose sample number is on file then hears
    how the fold took it: a correction, a repeat, another lab's result or a late earlier report.  A lab
    system hears another sender's report only as such, without its event id or lab (``_sample_no_on_file``)."""
    if isinstance(event, CampaignActivityEvent) and event.payload.kind == "comparison_test" and event.payload.item_code:
        code = event.payload.item_code
        categories = [category] if category in catalogue.categories else sorted(catalogue.categories)
        if any(catalogue.item(c, code) is not None for c in categories):
            return []
        return [_warning("payload.item_code", "unknown_item", f"the catalogue has no item {code!r}: the comparison is kept without its item's name and unit",
                         f"标准目录中没有检验项目代码 {code}，比对试验照录，但无法给出项目名称和单位；可用代码见 GET /v1/catalogue")]
    if not isinstance(event, SamplingResultEvent):
        return []
    out: list[dict[str, Any]] = []
    if on_file:
        resent = _sample_no_on_file(event, on_file)
        if resent is not None:
            out.append(resent)
    product = event.payload.product
    excluded = _excluded(catalogue, category, product) if category is not None else None
    if excluded is not None:
        out.append(_warning("payload.product", "uncatalogued_standard",
                            f"{product} falls under {excluded.standard}, which the catalogue does not hold: the items it does not "
                            f"share with the catalogued standards will be not applicable and the sample undetermined",
                            f"{excluded.name_zh}适用 {excluded.standard}（标准目录未收录）：目录中按其他标准（如 GB 19298-2014）规定的项目不予判定，"
                            f"样品结论将为无法判定"))
    in_scope = catalogue.index.rules_for(category, product) if category is not None else {}
    for i, test in enumerate(event.payload.items):
        problem = _item_problem(catalogue, category, test.item_code, test.unit)
        field = f"payload.items[{i}]"
        if problem is None:
            pass
        elif problem[0] == "unknown_item":
            printed = _printed(catalogue, category, test)  # another category may know it (酸价 on a water plant's sample)
            scope = catalogue.categories[category].name_zh if category in catalogue.categories else "任何类别的"
            out.append(_warning(f"{field}.item_code", "unknown_item",
                                f"the catalogue has no item {test.item_code!r} ({printed}); it will be undetermined",
                                f"{scope}标准目录中没有检验项目代码 {test.item_code}（{printed}），该项目将无法判定；可用代码见 GET /v1/catalogue"))
        elif problem[0] == "unknown_unit":
            printed = _printed(catalogue, category, test)
            out.append(_warning(f"{field}.unit", "unknown_unit",
                                f"unit {test.unit!r} is not known; {test.item_code} will be undetermined",
                                f"无法识别单位“{test.unit}”，{printed}将无法判定；可用单位见 GET /v1/catalogue"))
        else:
            wanted, printed = problem[1], _printed(catalogue, category, test)
            out.append(_warning(f"{field}.unit", "unit_mismatch",
                                f"unit {test.unit!r} does not convert to {wanted}; {test.item_code} will be undetermined",
                                f"单位“{test.unit}”不能换算为{printed}的标准单位 {wanted}，该项目将无法判定"))
        if category is not None and problem is None and in_scope.get(test.item_code) is not False:
            n = _plan_size(catalogue, category, test.item_code, len(test.values), event.payload.production_date or event.payload.sampled_on)
            if n is not None:
                out.append(_warning(f"{field}.values", "wrong_value_count",
                                    f"the sampling plan needs n={n} results, got {len(test.values)}; {test.item_code} will be undetermined",
                                    f"{_printed(catalogue, category, test)}的采样方案要求 n={n} 个检测结果，收到 {len(test.values)} 个，该项目将无法判定"))
            elif len(test.values) > 1 and not _has_plan(catalogue, category, test.item_code, event.payload.production_date or event.payload.sampled_on):
                # a limit on one result (not an n/c/m/M plan): parallel determinations are reported as their mean,
                # so several values are more likely a mistake — judged by the largest, which the lab should know
                out.append(_warning(f"{field}.values", "several_values",
                                    f"{test.item_code} has a limit on one result, got {len(test.values)}: judged by the largest; "
                                    f"report parallel determinations as the result the method states (usually their mean)",
                                    f"{_printed(catalogue, category, test)}的限量针对单个检测结果，收到 {len(test.values)} 个结果：按其中最大值判定；"
                                    f"平行测定请按检验方法的规定报送结果（通常为平均值）"))
        for negative, value in enumerate(test.values):
            if value.__class__ is not str and value < 0:  # (a string is "ND")
                break
        else:
            continue
        out.append(_warning(f"{field}.values[{negative}]", "negative_value",
                            f"a negative result; {test.item_code} will be undetermined",
                            f"检测结果为负值，{_printed(catalogue, category, test)}将无法判定"))
    return out


# (processors.credit_file.RESENT: ingest does not import the fold) reports replaced by a later report of themselves
_RESENT = frozenset({"corrected", "repeated", "outdated", "other_lab", "unjudged", "retracted"})


def _lab_key(lab: str) -> str:
    # as the fold compares labs (processors.step._lab_key): spacing and full-width forms aside
    return unicodedata.normalize("NFKC", "".join(lab.split()))


def _field(record: Any, name: str) -> Any:
    return record.get(name) if isinstance(record, Mapping) else getattr(record, name, None)


def _poster(event: SamplingResultEvent) -> str | None:
    """The lab system posting ``event`` (``source.id`` of a lab source: a lab key posts only as the CMA number
    it is bound to, ``qrisk.auth.event_refusal``), as the fold keeps it (``SampleRecord.lab_id``); None when
    no lab system sends it (an importer, an admin, the bureau)."""
    return event.source.id if event.source.kind == "lab" else None


def _sample_no_on_file(event: SamplingResultEvent, on_file: Sequence[Any]) -> dict[str, Any] | None:
    """The warning for a result whose sample number (and kind: original or re-test) is on file for the
    enterprise under another event id: how the fold takes it (``processors.step``, "resends and
    corrections"), from this event's own record when it is folded, else as it will.

    A lab system hears the event id and lab of the report it meets only when it sent that report itself
    (its retry, its correction): of another sender's — another lab system's, or one no lab system sent —
    it hears that another report is on file, nothing more; else a lab posting any sample number of any
    enterprise would learn whether it is on file and who reported it.  Other posters (an importer, an
    admin, the bureau) hear the details."""
    p = event.payload
    poster = _poster(event)
    me = str(event.event_id)
    mine = None
    others = []
    for record in on_file:
        if _field(record, "sample_no") != p.sample_no or bool(_field(record, "retest")) != p.retest:
            continue
        if str(_field(record, "event_id")) == me:
            mine = record
        else:
            others.append(record)
    if not others:
        return None
    outcome = _field(mine, "superseded_as") if mine is not None else None
    if outcome == "retracted":
        return None  # (said by _as_folded: the sample number is retracted here)
    if outcome == "corrected":
        named = _field(mine, "superseded_by")  # a later report has replaced this one since (a retry answered late)
    elif mine is not None and not _field(mine, "corrects") and outcome not in _RESENT:
        return None  # the sample's first report (retried): the others came after it and were answered then
    else:
        named = (_field(mine, "corrects") or _field(mine, "superseded_by")) if mine is not None else None
    current = [r for r in others if _field(r, "superseded_as") not in _RESENT]
    on = next((r for r in others if str(_field(r, "event_id")) == named), None) or (current or others)[-1]
    eid, lab = _field(on, "event_id"), _field(on, "lab")
    # another sender's report, to a lab system: neither its event id nor its lab are this lab's to learn
    hidden = poster is not None and _field(on, "lab_id") != poster
    if mine is None:
        # not folded yet (a Kafka worker folds it after the answer): as it will be taken, as far as the door can
        # tell — a lab system corrects only what it sent itself, a sender that is no lab system by the lab's name
        if poster is not None:
            outcome = "other_lab" if hidden else None
        elif _field(on, "lab_id") is not None:
            outcome = "official"  # the supervisor's record takes a lab system's report's place (processors.step._official_over_lab_system)
        else:
            outcome = "other_lab" if _lab_key(str(lab)) != _lab_key(p.lab) else None
    what, what_en = ("复检结果", "re-test result") if p.retest else ("结果", "result")
    if hidden:
        head = f"该企业已有其他报送方报送的抽样编号 {p.sample_no} 的{what}："
        head_en = f"enterprise {event.enterprise_id} already has a {what_en} for sample no. {p.sample_no} from another sender: "
    else:
        head = f"该企业已有抽样编号 {p.sample_no} 的{what}（事件 {eid}，{lab}）："
        head_en = f"enterprise {event.enterprise_id} already has a {what_en} for sample no. {p.sample_no} (event {eid}, {lab}): "
    check = "如为另一样品，请核对抽样编号后以新的 event_id 报送"
    retest = "" if p.retest else "如为复检，请标注 retest: true；"
    if outcome == "repeated":
        zh, en = "本次内容相同，按重复报送处理，不重复计数", "this one says the same: taken as a repeat, not counted again"
    elif outcome == "other_lab" and hidden:
        zh = (f"本次{'' if p.retest else '未标注复检，'}不作为更正：检验机构系统只能更正本系统报送的报告，不能更正另一检验机构或其他报送方的报告；"
              f"本次结果不计入统计、待核实；{retest}{check}")
        en = (f"a lab system corrects only the reports it sent itself: this one{'' if p.retest else ' (without the re-test flag)'} "
              f"is not taken as a correction, not counted")
    elif outcome == "other_lab":
        zh = f"本次来自另一检验机构（{p.lab}）{'' if p.retest else '且未标注复检'}，一家检验机构不能更正另一家的报告，不计入统计、待核实；{retest}{check}"
        en = f"this one comes from another lab ({p.lab}){'' if p.retest else ' without the re-test flag'}: not taken as a correction, not counted"
    elif outcome == "official":
        zh = (f"原结果由检验机构系统（{_field(on, 'lab_id')}）报送；本次不是由检验机构系统报送的（公告导入或管理部门录入），"
              f"将取代原结果、以本次为准（内容相同则按重复报送、不重复计数）；{retest}{check}")
        en = (f"that one was sent by lab system {_field(on, 'lab_id')}; this one, sent by no lab system (an import or the bureau's entry), "
              f"will replace it (as a repeat, not counted again, when it says the same)")
    elif outcome == "unjudged":
        zh = "本次按更正报送，但其结果无法判定，不能推翻原不合格结论：未采用、不计入统计；请核实项目代码、单位和检出限后以新的 event_id 重新报送"
        en = "this one came as a correction, but qrisk cannot judge it: it does not overturn the failure on file and is not counted; check item codes, units and detection limits and send it again"
    elif outcome == "outdated":
        zh, en = "其报告时间晚于本次，本次按较早的报告存档，不计入统计", "its report is dated after this one: this earlier report is kept on file, not counted"
    elif outcome == "corrected":
        by, by_en = ("其他报送方后来的报告", "a later report from another sender") if hidden else (
            f"后来的报告（事件 {eid}，{lab}）", f"a later report (event {eid}, {lab})")
        head = f"抽样编号 {p.sample_no} 的本次{what}已由{by}更正取代："
        head_en = f"this {what_en} for sample no. {p.sample_no} has been replaced by {by_en}: "
        zh, en = "以更正后的报告为准，本次不计入统计", "the corrected report counts, this one does not"
    else:
        if mine is not None and _field(mine, "corrects"):
            zh, en = f"本次按更正处理，取代原结果；{retest}{check}", "this one is taken as a correction and replaces it"
        else:  # not folded yet: a correction, or a repeat when it says the same
            zh = f"本次按更正处理，取代原结果（内容相同则按重复报送、不重复计数；来自另一检验机构则不计入、待核实）；{retest}{check}"
            en = ("this one will be taken as a correction replacing it (as a repeat, not counted again, when it says the same; "
                  "not counted when it comes from another lab)")
        en += "; a re-test must be sent with retest: true" if not p.retest else ""
    return _warning("payload.sample_no", "sample_no_on_file", head_en + en, head + zh)


_EXCLUSIONS: dict[tuple[int, str, str], tuple[Catalogue, Any]] = {}


def _excluded(catalogue: Catalogue, category: str, product: str) -> Any:
    """The exclusion (a standard the catalogue lacks, e.g. GB 8537-2018 for 矿泉水) the product falls
    under for some item of its category, if any; memoised per (catalogue, category, product)."""
    key = (id(catalogue), category, product)
    hit = _EXCLUSIONS.get(key)
    if hit is None or hit[0] is not catalogue:
        if len(_EXCLUSIONS) > _PROBLEMS_LIMIT:
            _EXCLUSIONS.clear()
        block = catalogue.categories.get(category)
        found = None
        for item in (block.items if block is not None else ()):
            if item.scope is not None and (found := item.scope.excluded_by(product)) is not None:
                break
        hit = _EXCLUSIONS[key] = (catalogue, found)
    return hit[1]


_PLAN_SIZES: dict[tuple[int, str, str], tuple[Catalogue, frozenset[int]]] = {}


def _plan_size(catalogue: Catalogue, category: str, code: str, got: int, basis: Any) -> int | None:
    """The n of the item's sampling plan in force when ``got`` results are not n; else None.  Most
    items have no plan, or get their n: asked from a memo of every edition's n first."""
    key = (id(catalogue), category, code)
    hit = _PLAN_SIZES.get(key)
    if hit is None or hit[0] is not catalogue:
        item = catalogue.item(category, code)
        sizes = frozenset(r.n for r in item.rules if r.kind == "plan" and r.n is not None) if item is not None else frozenset()
        hit = _PLAN_SIZES[key] = (catalogue, sizes)
    if not hit[1] or hit[1] == {got}:
        return None
    item = catalogue.item(category, code)
    rule = item.rule_on(basis) if item is not None else None
    return rule.n if rule is not None and rule.kind == "plan" and rule.n is not None and rule.n != got else None


def _has_plan(catalogue: Catalogue, category: str, code: str, basis: Any) -> bool:
    """Whether the item's rule in force is a sampling plan (n results): its other rules judge one result."""
    item = catalogue.item(category, code)
    rule = item.rule_on(basis) if item is not None else None
    return rule is None or rule.kind == "plan"


def _printed(catalogue: Catalogue, category: str | None, test: TestItem) -> str:
    """The item as a Chinese sentence names it: as the lab printed it (item_name), else as the catalogue
    calls it (the enterprise's category's name first, else any category's); the code only when neither knows it."""
    if test.item_name:
        return test.item_name
    categories = [category] if category in catalogue.categories else []
    for c in categories + sorted(catalogue.categories):
        item = catalogue.item(c, test.item_code)
        if item is not None:
            return item.name_zh
    return test.item_code


# What a catalogue says of an (enterprise category, item code, unit) does not change while it is
# loaded: the answer to every accepted batch asks it for each result line, and a lab sends the
# same few dozen lines again and again.  Keyed by the catalogue's id, checked by identity.
_PROBLEMS: dict[tuple[int, str | None, str, str], tuple[Catalogue, tuple[str, ...] | None]] = {}
_PROBLEMS_LIMIT = 100_000


def _item_problem(catalogue: Catalogue, category: str | None, code: str, unit_text: str) -> tuple[str, ...] | None:
    """None, ("unknown_item",), ("unknown_unit",) or ("unit_mismatch", the units it should convert to)."""
    key = (id(catalogue), category, code, unit_text)
    hit = _PROBLEMS.get(key)
    if hit is not None and hit[0] is catalogue:
        return hit[1]
    if len(_PROBLEMS) > _PROBLEMS_LIMIT:
        _PROBLEMS.clear()
    categories = [category] if category in catalogue.categories else sorted(catalogue.categories)
    having = [c for c in categories if catalogue.item(c, code) is not None]
    problem: tuple[str, ...] | None = None
    if not having:
        problem = ("unknown_item",)
    else:
        unit = catalogue.units.resolve(unit_text)
        # a not-permitted substance is judged by any detection, whatever the unit, and an item the standard no
        # longer limits is not judged at all: no unit to read or match
        targets = [u for c in having if any(r.kind not in ("not_permitted", "no_longer_limited") for r in catalogue.item(c, code).rules)  # type: ignore[union-attr]
                   for u in catalogue.accepted_units(c, code)]
        if not targets:
            pass
        elif unit is None:
            problem = ("unknown_unit",)
        elif all(UnitTable.factor(unit, t) is None for t in targets):
            problem = ("unit_mismatch", "、".join(sorted({t.unit for t in targets})))
    _PROBLEMS[key] = (catalogue, problem)
    return problem


def _warning(field: str, kind: str, reason: str, reason_zh: str) -> dict[str, Any]:
    return {"field": field, "type": kind, "reason": reason, "reason_zh": reason_zh}
