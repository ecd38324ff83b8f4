"""State as of a date, and the backtest of grades and warnings on history.

``state_as_of`` is what ``qrisk risk --as-of DATE`` ranks: the events that occurred on or
before the end of DATE (local day, ``utc_offset_hours``) folded through ``step()`` from
an empty state, followed by one synthetic ``clock.tick`` at the end of DATE (so overdue
rectifications, the risk window and missing-data checks are taken as of DATE, not as of
the last event).  Nothing later than DATE is read.

``run_backtest`` replays history (in event-time order) and asks three questions a bureau
must answer before it trusts the ranking:

1. warnings — for each warning raised in the window, the lead time to the next unqualified
   sample of that enterprise (within the window); per rule, how often a failure followed;
   and how many failures had an earlier warning within the horizon.  A failure is a sample
   (抽样编号), counted once as the credit file counts it: a failed re-test (复检) confirms it, a
   passing one or a retraction takes it away;
2. inspection order — for the inspections that actually happened in the window, the share
   of failed inspections (不符合, or major / critical findings) that fall in the first half
   when visited in qrisk's risk order (as of the day before the window) versus the order
   they happened in;
3. top-k — at evaluation points every ``step_days`` from the day before the window, the
   precision and recall of the top k of the ranking against the enterprises with an
   unqualified sample in the next ``horizon_days`` (within the window), with the base rate.

Deterministic: the same events, policy and options give the same figures (no clock, no
randomness; ties break by id).
"""
from __future__ import annotations

import datetime as dt
import math
import statistics
import uuid
from typing import Any, Iterable, Sequence

from alerts.lifecycle import Alert, AlertActionError, AlertBook
from alerts.lifecycle import Enterprise as AlertEnterprise
from alerts.messages import RULE_ZH
from processors.credit_file import CountyState
from processors.risk import rank
from processors.step import Rules, step
from schemas.events import ClockTick, Envelope, InspectionCompletedEvent, SamplingResultEvent, Source

AS_OF_NAMESPACE = uuid.UUID("5c6f2d0e-8f1b-5a43-9d3e-2b7c1e4a9f60")
"""uuid5 namespace of the synthetic as-of ticks: the same date gives the same tick id."""


def end_of_day(day: dt.date, rules: Rules) -> dt.datetime:
    """The first instant after local ``day``, in UTC: events strictly before it are 'on or before day'."""
    nxt = day + dt.timedelta(days=1)
    return dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=dt.timezone.utc) - dt.timedelta(hours=rules.policy.utc_offset_hours)


def as_of_tick(day: dt.date, rules: Rules) -> ClockTick:
    """A clock.tick at 23:59:59 local on ``day``, with an id derived from the date."""
    return ClockTick(
        event_id=uuid.uuid5(AS_OF_NAMESPACE, f"as-of:{day.isoformat()}"), event_type="clock.tick", enterprise_id="*",
        occurred_at=end_of_day(day, rules) - dt.timedelta(seconds=1), source=Source(kind="system", id="qrisk-as-of"),
    )


EARLIEST_CUT = dt.date(1970, 1, 1)
"""The first day an ``--as-of`` / ``?as_of=`` cut may name: an event's instant lies in 1970–2105."""


def events_until(events: Iterable[Envelope], day: dt.date, rules: Rules) -> list[Envelope]:
    cut = end_of_day(day, rules)
    return [e for e in events if e.occurred_at < cut]


def state_as_of(events: Iterable[Envelope], day: dt.date | None, rules: Rules,
                alerts: dict[str, Alert] | None = None) -> CountyState:
    """Fold the events on or before ``day`` (in the order given: the log's) and tick at its end;
    ``day`` None: every event, no tick.  ``alerts``, when given, collects every alert the alerts
    stage opened or moved meanwhile, as it last was (closed ones included, which its book prunes)."""
    state = CountyState()
    book = AlertBook() if alerts is not None else None

    def enterprise(enterprise_id: str) -> AlertEnterprise | None:
        file = state.files.get(enterprise_id)
        p = file.profile if file is not None else None
        return AlertEnterprise(name=p.name, town=p.town, category=p.category) if p is not None else None

    def fold(event: Envelope) -> None:
        nonlocal state
        state, effects = step(state, event, rules)
        if book is not None and alerts is not None:
            try:
                changes = book.apply(event, effects, rules.policy, enterprise)
            except AlertActionError:
                return  # refused at the door as it would have been: the log holds only steps that were taken
            for change in changes:  # (the alert itself: it moves on in the book until pruned, then stays as it was)
                alerts[change.alert.alert_id] = change.alert

    for event in (events if day is None else events_until(events, day, rules)):
        fold(event)
    if day is not None:
        fold(as_of_tick(day, rules))
    return state


def risk_ranking(events: Iterable[Envelope], day: dt.date, rules: Rules) -> list[dict[str, Any]]:
    """``qrisk risk --as-of DAY --json``."""
    return rank(state_as_of(events, day, rules), day)


# --------------------------------------------------------------------------- backtest


def _local(moment: dt.datetime, rules: Rules) -> dt.date:
    return (moment + dt.timedelta(hours=rules.policy.utc_offset_hours)).date()


def _days(delta: dt.timedelta) -> float:
    return round(delta.total_seconds() / 86400, 1)


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def run_backtest(events: Sequence[Envelope], rules: Rules, start: dt.date, end: dt.date,
                 top_k: Sequence[int] = (5, 10), step_days: int = 30, horizon_days: int = 90) -> dict[str, Any]:
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    if step_days < 1 or horizon_days < 1 or any(k < 1 for k in top_k):
        raise ValueError("step_days, horizon_days and every k must be at least 1")
    start_cut = end_of_day(start - dt.timedelta(days=1), rules)
    end_cut = end_of_day(end, rules)
    # history in event-time order (a stable sort keeps the log's order among equal times)
    ordered = sorted((e for e in events if e.occurred_at < end_cut), key=lambda e: e.occurred_at)
    points: list[dt.date] = []
    p = start - dt.timedelta(days=1)
    while end_of_day(p, rules) < end_cut:
        points.append(p)
        p += dt.timedelta(days=step_days)

    state = CountyState()
    rankings: dict[dt.date, list[dict[str, Any]]] = {}
    warnings: list[dict[str, Any]] = []
    # one entry per sample (抽样编号), as the credit file counts it: a failed re-test confirms the failure
    # already there, a passing one (overturned) or a retraction takes it away; the time stays the first
    # failing report's, when the failure became known, and every report of the sample is remembered so
    # that the sample's own warnings are not "followed" by its re-test
    failed_samples: dict[tuple[str, str], tuple[dt.datetime, str, str, str, frozenset[str]]] = {}
    sample_times: dict[str, dt.datetime] = {}
    inspections: list[dict[str, Any]] = []
    pending = list(points)

    def rank_at(day: dt.date) -> None:
        copy = CountyState.restore(state.snapshot())
        copy, _ = step(copy, as_of_tick(day, rules), rules)
        rankings[day] = rank(copy, day)

    for event in ordered:
        while pending and event.occurred_at >= end_of_day(pending[0], rules):
            rank_at(pending.pop(0))
        if isinstance(event, SamplingResultEvent):
            sample_times[str(event.event_id)] = event.occurred_at
        elif isinstance(event, InspectionCompletedEvent) and event.occurred_at >= start_cut:
            p_ = event.payload
            serious = [f.code for f in p_.findings if f.severity in ("major", "critical")]
            inspections.append({"enterprise_id": event.enterprise_id, "inspection_id": p_.inspection_id, "at": event.occurred_at,
                                "result": p_.result, "failed": p_.result == "不符合" or bool(serious), "event_id": str(event.event_id)})
        state, effects = step(state, event, rules)
        for eff in effects:
            if eff.kind == "sampling.failed":
                sid = eff.data["sample_event_id"]
                record = state.files[eff.enterprise_id].sample_by_event(sid) if eff.enterprise_id in state.files else None
                if record is not None and record.judgement is not None and record.judgement.counted != "fail":
                    continue  # qrisk's own finding on a report the lab passed: counted as the report's 合格 (SampleJudgement.counted)
                key = (eff.enterprise_id, eff.data.get("sample_no", "") or sid)
                known = failed_samples.get(key)
                at = known[0] if known else sample_times.get(sid, eff.occurred_at)
                failed_samples[key] = (at, eff.enterprise_id, eff.data.get("sample_no", ""), sid, (known[4] if known else frozenset()) | {sid})
            elif eff.kind in ("sampling.overturned", "sampling.retracted"):
                failed_samples.pop((eff.enterprise_id, eff.data.get("sample_no", "")), None)
            elif eff.kind == "warning.raised" and eff.occurred_at >= start_cut:
                d = eff.data
                warnings.append({"at": eff.occurred_at, "enterprise_id": eff.enterprise_id, "rule": d["rule"], "severity": d["severity"],
                                 "dedup_key": d["dedup_key"], "event_id": eff.event_id,
                                 "evidence_event_ids": list(d.get("evidence", {}).get("event_ids", []))})
    while pending:
        rank_at(pending.pop(0))
    # one inspection per inspection id, as the credit file counts it: the record that stands (a repeat or a replaced
    # record of it sent again is no inspection of its own)
    # (and one event delivered twice, which step() folds once, is one too)
    inspections = list({i["event_id"]: i for i in inspections if (f := state.files.get(i["enterprise_id"])) is not None
                        and (r := f.inspection(i["inspection_id"])) is not None and r.event_id == i["event_id"]}.values())

    failures = sorted(failed_samples.values())
    by_enterprise: dict[str, list[tuple]] = {}
    for f in failures:
        by_enterprise.setdefault(f[1], []).append(f)
    enterprises = sorted(state.files)
    report: dict[str, Any] = {
        "from": start.isoformat(), "to": end.isoformat(),
        "params": {"top_k": list(top_k), "step_days": step_days, "horizon_days": horizon_days,
                   "utc_offset_hours": rules.policy.utc_offset_hours},
        "events": len(ordered), "enterprises": len(enterprises),
        "warnings": _warning_leads(warnings, by_enterprise, start_cut, end_cut, rules),
        "failures": _failures_warned(failures, warnings, start_cut, horizon_days, rules),
        "inspection_order": _inspection_order(inspections, rankings.get(points[0], []) if points else [], points[0] if points else None),
        "top_k": _top_k(points, rankings, by_enterprise, top_k, horizon_days, end_cut, rules),
    }
    return report


def _warning_leads(warnings: list[dict[str, Any]], failures: dict[str, list[tuple]], start_cut: dt.datetime, end_cut: dt.datetime,
                   rules: Rules) -> dict[str, Any]:
    items = []
    for w in sorted(warnings, key=lambda w: (w["at"], w["enterprise_id"], w["rule"], w["dedup_key"])):
        own = set(w["evidence_event_ids"])
        nxt = next((f for f in failures.get(w["enterprise_id"], []) if f[0] > w["at"] and not f[4] & own and f[0] < end_cut), None)
        items.append({
            "at": w["at"].isoformat(), "date": _local(w["at"], rules).isoformat(), "enterprise_id": w["enterprise_id"], "rule": w["rule"],
            "severity": w["severity"], "dedup_key": w["dedup_key"],
            "next_failure": None if nxt is None else {"at": nxt[0].isoformat(), "sample_no": nxt[2], "event_id": nxt[3]},
            "lead_days": None if nxt is None else _days(nxt[0] - w["at"]),
        })
    by_rule = []
    for rule in sorted({i["rule"] for i in items}):
        mine = [i for i in items if i["rule"] == rule]
        leads = [i["lead_days"] for i in mine if i["lead_days"] is not None]
        by_rule.append({
            "rule": rule, "count": len(mine), "distinct_problems": len({i["dedup_key"] for i in mine}),
            "followed_by_failure": len(leads), "share_followed": _share(len(leads), len(mine)),
            "median_lead_days": None if not leads else round(statistics.median(leads), 1),
            "mean_lead_days": None if not leads else round(statistics.fmean(leads), 1),
        })
    return {"total": len(items), "by_rule": by_rule, "items": items}


def _failures_warned(failures: list[tuple], warnings: list[dict[str, Any]], start_cut: dt.datetime, horizon_days: int,
                     rules: Rules) -> dict[str, Any]:
    """Failures in the window that an earlier early warning (not the failure rule itself) had announced."""
    horizon = dt.timedelta(days=horizon_days)
    early = [w for w in warnings if w["rule"] != "sampling.unqualified"]
    in_window = [f for f in failures if f[0] >= start_cut]
    warned = []
    for at, eid, sample_no, _sid, reports in in_window:
        prior = [w for w in early if w["enterprise_id"] == eid and at - horizon <= w["at"] < at and not reports & set(w["evidence_event_ids"])]
        if prior:
            first = min(prior, key=lambda w: w["at"])
            warned.append({"enterprise_id": eid, "sample_no": sample_no, "failed_at": at.isoformat(), "first_warning": first["rule"],
                           "first_warning_at": first["at"].isoformat(), "lead_days": _days(at - first["at"])})
    return {"total": len(in_window), "with_prior_warning": len(warned), "share_with_prior_warning": _share(len(warned), len(in_window)),
            "enterprises_failed": len({f[1] for f in in_window}), "warned": warned}


def _inspection_order(inspections: list[dict[str, Any]], ranking: list[dict[str, Any]], ranked_as_of: dt.date | None) -> dict[str, Any]:
    position = {r["enterprise_id"]: i for i, r in enumerate(ranking)}
    unranked = len(position)
    actual = sorted(inspections, key=lambda i: (i["at"], i["inspection_id"], i["enterprise_id"]))
    risk = sorted(inspections, key=lambda i: (position.get(i["enterprise_id"], unranked), i["enterprise_id"], i["at"], i["inspection_id"]))
    n = len(inspections)
    half = math.ceil(n / 2)
    failed = sum(1 for i in inspections if i["failed"])
    found_risk = sum(1 for i in risk[:half] if i["failed"])
    found_actual = sum(1 for i in actual[:half] if i["failed"])
    return {
        "ranked_as_of": ranked_as_of.isoformat() if ranked_as_of else None, "inspections": n, "failed": failed, "first_half": half,
        "risk_order_found": found_risk, "actual_order_found": found_actual,
        "risk_order_share": _share(found_risk, failed), "actual_order_share": _share(found_actual, failed),
        "failed_inspections": [{"enterprise_id": i["enterprise_id"], "inspection_id": i["inspection_id"], "at": i["at"].isoformat(),
                                "result": i["result"], "risk_position": position.get(i["enterprise_id"])}
                               for i in actual if i["failed"]],
    }


def _top_k(points: list[dt.date], rankings: dict[dt.date, list[dict[str, Any]]], failures: dict[str, list[tuple]],
           top_k: Sequence[int], horizon_days: int, end_cut: dt.datetime, rules: Rules) -> list[dict[str, Any]]:
    out = []
    for k in top_k:
        tp = predicted = positives = graded_total = 0
        per_point = []
        for p in points:
            lo = end_of_day(p, rules)
            hi = min(lo + dt.timedelta(days=horizon_days), end_cut)
            if hi <= lo:
                continue
            graded = [r for r in rankings.get(p, []) if r["grade"] is not None]
            top = [r["enterprise_id"] for r in graded[:k]]
            failed = sorted(eid for eid in {r["enterprise_id"] for r in graded}
                            if any(lo <= f[0] < hi for f in failures.get(eid, [])))
            hits = sorted(set(top) & set(failed))
            tp += len(hits)
            predicted += len(top)
            positives += len(failed)
            graded_total += len(graded)
            per_point.append({"as_of": p.isoformat(), "until": _local(hi - dt.timedelta(seconds=1), rules).isoformat(), "top": top,
                              "failed": failed, "hits": hits,
                              "precision": _share(len(hits), len(top)), "recall": _share(len(hits), len(failed))})
        precision = _share(tp, predicted)
        base = _share(positives, graded_total)
        out.append({"k": k, "points": len(per_point), "hits": tp, "predicted": predicted, "positives": positives,
                    "precision": precision, "recall": _share(tp, positives), "base_rate": base,
                    "lift": None if not precision or not base else round(precision / base, 2), "per_point": per_point})
    return out


# --------------------------------------------------------------------------- text



def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def render_text(report: dict[str, Any]) -> str:
    lines = [
        f"qrisk 回测：{report['from']} 至 {report['to']}（事件 {report['events']} 条，企业 {report['enterprises']} 家）",
        "",
        f"一、预警提前量（预警 {report['warnings']['total']} 条；提前量 = 预警到该企业下一次抽检不合格的天数，限回测期内）",
    ]
    for r in report["warnings"]["by_rule"]:
        lead = "—" if r["median_lead_days"] is None else f"中位 {r['median_lead_days']} 天，平均 {r['mean_lead_days']} 天"
        lines.append(f"  {RULE_ZH.get(r['rule'], r['rule'])}：{r['count']} 条（{r['distinct_problems']} 个问题），"
                     f"其后出现不合格 {r['followed_by_failure']} 条（{_pct(r['share_followed'])}），提前量 {lead}")
    f = report["failures"]
    # (dated as the report reached qrisk: a sample taken late in December and reported in January counts in January)
    lines.append(f"  回测期内收到的抽检不合格 {f['total']} 批次（按检验报告到达时间计），其中 {f['with_prior_warning']} 批次此前 "
                 f"{report['params']['horizon_days']} 天内已有预警"
                 f"（{_pct(f['share_with_prior_warning'])}）")
    o = report["inspection_order"]
    lines += [
        "",
        f"二、检查顺序（按 {o['ranked_as_of'] or '—'} 的风险排名 vs 实际顺序）：实际检查 {o['inspections']} 次，"
        f"其中结论不符合或发现主要、严重问题 {o['failed']} 次（一般问题不计）",
        f"  前一半（{o['first_half']} 次）检查中结论不符合或发现主要、严重问题的：按风险顺序 {o['risk_order_found']} 次（{_pct(o['risk_order_share'])}），"
        f"按实际顺序 {o['actual_order_found']} 次（{_pct(o['actual_order_share'])}）",
        "",
        f"三、风险排名前 k 名的准确率与召回率（每 {report['params']['step_days']} 天评估一次，看其后 {report['params']['horizon_days']} 天内的抽检不合格）",
    ]
    for t in report["top_k"]:
        lines.append(f"  前 {t['k']} 名：{t['points']} 个评估点，命中 {t['hits']}，准确率 {_pct(t['precision'])}，召回率 {_pct(t['recall'])}，"
                     f"基准（随机）{_pct(t['base_rate'])}，提升 {t['lift'] if t['lift'] is not None else '—'} 倍")
    return "\n".join(lines) + "\n"
