"""The county's registers (台账) of sampling reports, complaints and inspections: every enterprise's, in one list.

A credit file lists one enterprise's complaints and inspections; a supervisor also works across
them: a quarter's samples and failures, the complaints still being handled in their towns and for
how long, what a quarter's inspections found.  ``GET /v1/samples``, ``GET /v1/complaints`` and ``GET /v1/inspections`` read
these rows from the credit files (the fold in embedded mode, the sink's copies in the Kafka mode),
filtered and sorted by the API.  Rows are plain dicts with UTC ISO instants, as the API answers;
the CSV keeps codes beside their ``…_zh`` labels and the sheet (``complaint_sheet``,
``inspection_sheet``) is for people: Chinese headers and labels, local time.

A complaint's text and outcome are listed with the complainant's personal information masked (names, ID card,
phone numbers, e-mail: ``processors.personal_info``), as alerts show it: a register gathers every
complainant of the county into one list and one spreadsheet, which travel further than one credit file.
The credit file of the enterprise keeps the text as received.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

from processors.credit_file import COMPLAINT_KIND_ZH, ComplaintRecord
from processors.personal_info import mask_personal_info
from processors.warnings import CHANNEL_ZH, COMPLAINT_ZH
from qrisk.credit_report import FINDING_ZH, KIND_ZH, verified_zh
from qrisk.sheets import local_time, time_header

COMPLAINT_STATE_ZH = {"open": "办理中", "refused": "不予受理", "resolved": "已办结", "withdrawn": "已撤回"}

COMPLAINT_COLUMNS = ["complaint_id", "enterprise_id", "enterprise_name", "town", "received_at", "kind", "kind_zh", "channel", "channel_zh",
                     "category", "category_zh", "product", "verified", "verified_zh", "state", "state_zh", "accepted_on", "acceptance", "acceptance_zh",
                     "resolved_at", "days", "due_on", "overdue", "deadline_zh", "outcome", "text", "event_id"]
SAMPLE_COLUMNS = ["sample_no", "enterprise_id", "enterprise_name", "town", "sampled_on", "product", "batch", "lab", "task_source",
                  "lab_received_on", "report_working_days", "report_limit", "report_late", "sent_late", "turnaround_estimate", "turnaround_zh",
                  "verdict", "counted", "unconfirmed", "verdict_zh", "final", "failed_zh", "detail_zh", "superseded_by", "event_id"]
INSPECTION_COLUMNS = ["inspection_id", "enterprise_id", "enterprise_name", "town", "occurred_at", "kind", "kind_zh", "inspector",
                      "result", "findings", "findings_major", "findings_zh", "event_id"]


def _instant(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
    moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def _iso(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return _instant(value).astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def complaint_rows(files: Iterable[dict[str, Any]], now: dt.datetime, offset_hours: int = 8,
                   limits_zh: tuple[int, int] = (7, 15)) -> list[dict[str, Any]]:
    """One row per complaint of ``files`` (credit-file views: ``enterprise_id``, ``profile``, ``complaints``).
    ``days``: calendar days in the bureau's time (``offset_hours``, the policy's) from the day of receipt to the day of
    resolution (withdrawal; for one refused and not concluded, the refusal's ``decided_on``), or for one still open to
    today (``now``'s day) — as a desk counts them (收到 03-01 17:00, 办结 03-02 09:00 is 1 day, not the 0 of 16 hours
    elapsed).  The legal deadlines (《市场监督管理投诉举报处理暂行办法》) count working days,
    which need the holiday calendar: this is not them — they are ``kind`` (投诉 / 举报), ``due_on`` (办结期限), ``overdue``
    (超期未办结 — a limit still running is past due — or 超期办结; None: not judged, or 不予受理, which has no 办结期限) and
    ``deadline_zh``, as the fold judged them on the working-day calendar
    (``complaint_deadlines``; ``limits_zh``: its 投诉 acceptance and 举报 extension working days, said in the text)."""
    zone = dt.timezone(dt.timedelta(hours=offset_hours))
    rows = []
    for f in files:
        profile = f.get("profile") or {}
        # (one the bureau withdrew — filed under the wrong enterprise, or twice — is listed, marked, with why)
        for c in [*(f.get("complaints") or []), *(f.get("complaints_withdrawn") or [])]:
            received = _instant(c["received_at"])
            resolved = c.get("resolved_at")
            withdrawn = c.get("withdrawn")
            # (the statutory time limits as the fold judged them: processors.credit_file.ComplaintRecord.deadline_zh)
            try:
                record: ComplaintRecord | None = ComplaintRecord.model_validate(c)
            except ValueError:  # (a stored copy another version wrote: listed without its time limits)
                record = None
            decided = record.acceptance if record is not None else None
            # 不予受理 is not 办结: no conclusion on the complaint itself, but nothing is being handled either
            refused = decided is not None and decided.decision == "refused"
            # (a refused one's handling ended on the refusal's day: counted on, it grew by a day a day for nothing)
            until = (_instant(resolved).astimezone(zone).date() if resolved else
                     _instant(withdrawn["withdrawn_at"]).astimezone(zone).date() if withdrawn else
                     decided.decided_on if refused and decided is not None else now.astimezone(zone).date())
            state = "withdrawn" if withdrawn else "resolved" if resolved else "refused" if refused else "open"
            accepted_on = record.accepted_on if record is not None else None
            kind = c.get("kind") or "complaint"
            rows.append({
                "complaint_id": c["complaint_id"], "enterprise_id": f["enterprise_id"], "enterprise_name": profile.get("name"),
                "town": profile.get("town"), "received_at": _iso(received), "kind": kind, "kind_zh": COMPLAINT_KIND_ZH.get(kind, kind),
                "channel": c["channel"],
                "channel_zh": CHANNEL_ZH.get(c["channel"], c["channel"]), "category": c["category"],
                "category_zh": COMPLAINT_ZH.get(c["category"], c["category"]), "product": c.get("product"),
                # (as the complaints table has it: 不属实 is a conclusion, not the want of one, so ?verified=false
                # lists the complaints concluded 不属实 only; a withdrawn one — filed under the wrong enterprise —
                # is neither, whatever it said before)
                "verified": None if withdrawn else True if c.get("verified") else False if resolved else None,
                "verified_zh": verified_zh(bool(c.get("verified")), bool(resolved), refused, bool(withdrawn)),
                # (the bureau's reason for a withdrawal or a refusal names the caller as often: 来信人李大伟 139…)
                "state": state, "state_zh": COMPLAINT_STATE_ZH[state] + (f"（{mask_personal_info(withdrawn['reason'])}）" if withdrawn else
                                                                         f"（{mask_personal_info(decided.reason)}）" if state == "refused" and decided
                                                                         else ""),
                "accepted_on": accepted_on.isoformat() if accepted_on else None,
                "acceptance": decided.decision if decided is not None else None,
                "acceptance_zh": record.acceptance_zh() if record is not None else "",
                "resolved_at": _iso(resolved), "days": max(0, (until - received.astimezone(zone).date()).days),
                "due_on": record.due_on.isoformat() if record is not None and record.due_on else None,
                "overdue": record.overdue_judged if record is not None else None,
                "deadline_zh": record.deadline_zh(*limits_zh) if record is not None else "",
                # (the bureau's account of its handling names the complainant as often as the complaint does)
                "outcome": mask_personal_info(c.get("outcome") or ""),
                "text": mask_personal_info(c.get("text") or ""), "event_id": c.get("event_id"),
            })
    return rows


def sample_rows(files: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per sampling report of ``files`` (``samples``: ``SampleRecord`` models), as the credit report
    lists it (``qrisk.credit_report.sample_row``), with its enterprise and what it counts as: ``counted``, the
    conclusion every figure counts (the lab's 合格 where the failure is qrisk's alone, ``unconfirmed``), and
    ``final``, false for a report that no longer counts (replaced by its re-test, corrected, repeated, retracted)
    or that awaits judgement; and the sample's time to report against the statutory limits (``turnaround_zh``,
    ``report_late``: ``processors.credit_file.Turnaround``), for the bureau's oversight of its labs."""
    from qrisk.credit_report import sample_row

    rows = []
    for f in files:
        profile = f.get("profile") or {}
        for s in f.get("samples") or []:
            j = s.judgement
            rows.append({
                **sample_row(s), "enterprise_id": f["enterprise_id"], "enterprise_name": profile.get("name"), "town": profile.get("town"),
                "task_source": s.task_source, "counted": j.counted if j else None, "unconfirmed": bool(j and j.unconfirmed),
                "final": j is not None and s.superseded_by is None, "superseded_by": s.superseded_by,
            })
    return rows


def inspection_rows(files: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per inspection of ``files``: the findings counted, major and critical apart, and said."""
    rows = []
    for f in files:
        profile = f.get("profile") or {}
        for i in f.get("inspections") or []:
            if i.get("superseded_by"):
                continue  # one inspection, one row: a repeat or a replaced record of it is the credit file's to show
            findings = i.get("findings") or []
            rows.append({
                "inspection_id": i["inspection_id"], "enterprise_id": f["enterprise_id"], "enterprise_name": profile.get("name"),
                "town": profile.get("town"), "occurred_at": _iso(i["occurred_at"]), "kind": i.get("kind"),
                "kind_zh": KIND_ZH.get(i.get("kind"), i.get("kind")), "inspector": i.get("inspector"), "result": i.get("result"),
                "findings": len(findings), "findings_major": sum(1 for x in findings if x.get("severity") in ("major", "critical")),
                "findings_zh": "；".join(f"{x.get('code')} {x.get('description')}（{FINDING_ZH.get(x.get('severity'), x.get('severity'))}）"
                                        for x in findings),
                "event_id": i.get("event_id"),
            })
    return rows


def complaint_sheet(rows: list[dict[str, Any]], offset_hours: int) -> tuple[list[dict[str, Any]], list[str], dict[str, str]]:
    when = time_header(offset_hours)
    columns = ["complaint_id", "enterprise_id", "enterprise_name", "town", "received_at", "kind", "channel", "category", "product", "verified",
               "state", "acceptance_zh", "resolved_at", "days", "due_on", "deadline_zh", "outcome", "text"]
    headers = {"complaint_id": "投诉编号", "enterprise_id": "企业编号", "enterprise_name": "企业名称", "town": "乡镇/街道",
               "received_at": f"收到时间{when}", "channel": "渠道", "category": "类别", "product": "涉及产品", "verified": "核查",
               "kind": "诉求类型", "due_on": "办结期限", "deadline_zh": "办理时限（工作日）", "acceptance_zh": "受理决定",
               "state": "办理状态", "resolved_at": f"办结时间{when}", "days": "用时（自然日：收到日至办结日，不予受理的至决定日，办理中的至今日）", "outcome": "处理结果",
               "text": "投诉内容"}
    people = [{**r, "received_at": local_time(r["received_at"], offset_hours), "resolved_at": local_time(r["resolved_at"], offset_hours),
               "kind": r["kind_zh"], "channel": r["channel_zh"], "category": r["category_zh"], "verified": r["verified_zh"], "state": r["state_zh"]}
              for r in rows]
    return people, columns, headers


SAMPLE_FORMS_ZH = {"pass": "合格", "fail": "不合格", "undetermined": "无法判定", None: "待判定"}


def sample_sheet(rows: list[dict[str, Any]], offset_hours: int) -> tuple[list[dict[str, Any]], list[str], dict[str, str]]:
    columns = ["sample_no", "enterprise_id", "enterprise_name", "town", "sampled_on", "product", "batch", "lab", "task_source",
               "lab_received_on", "turnaround_zh", "verdict_zh", "counted", "final", "failed_zh", "detail_zh"]
    headers = {"sample_no": "抽样编号", "enterprise_id": "企业编号", "enterprise_name": "企业名称", "town": "乡镇/街道", "sampled_on": "抽样日期",
               "product": "食品名称", "batch": "批号", "lab": "检验机构", "task_source": "任务来源", "lab_received_on": "收样日期",
               "turnaround_zh": "检验时限（工作日）", "verdict_zh": "判定",
               "counted": "计入结论", "final": "计入统计", "failed_zh": "不合格项目", "detail_zh": "说明"}
    people = [{**r, "counted": SAMPLE_FORMS_ZH.get(r["counted"], r["counted"]), "final": "是" if r["final"] else "否"} for r in rows]
    return people, columns, headers


def inspection_sheet(rows: list[dict[str, Any]], offset_hours: int) -> tuple[list[dict[str, Any]], list[str], dict[str, str]]:
    when = time_header(offset_hours)
    columns = ["inspection_id", "enterprise_id", "enterprise_name", "town", "occurred_at", "kind", "inspector", "result", "findings",
               "findings_major", "findings_zh"]
    headers = {"inspection_id": "检查编号", "enterprise_id": "企业编号", "enterprise_name": "企业名称", "town": "乡镇/街道",
               "occurred_at": f"检查时间{when}", "kind": "检查类型", "inspector": "检查人员", "result": "检查结果", "findings": "发现问题（项）",
               "findings_major": "其中主要、严重（项）", "findings_zh": "发现问题"}
    people = [{**r, "occurred_at": local_time(r["occurred_at"], offset_hours), "kind": r["kind_zh"]} for r in rows]
    return people, columns, headers


__all__ = ["COMPLAINT_COLUMNS", "INSPECTION_COLUMNS", "SAMPLE_COLUMNS", "complaint_rows", "complaint_sheet", "inspection_rows",
           "inspection_sheet", "sample_rows", "sample_sheet"]
