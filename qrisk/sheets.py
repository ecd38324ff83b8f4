"""The XLSX exports as sheets a supervisor prints: Chinese headers and values, local time.

CSV stays the machine format (English column keys, codes, UTC timestamps) for other systems;
an XLSX is opened by people, who read 包装饮用水 rather than packaged_water and 09:44 Beijing
time rather than 01:44Z.  The campaign's table follows the same split (``campaign_sheet``;
``processors.campaign.table_rows``, ``TABLE_COLUMNS`` for the CSV).  Figures stay numbers in both
(a sheet sums and sorts them); a code sits beside its label in the CSV (``stage``, ``stage_zh``).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from alerts.messages import RULE_ZH
from processors.risk import CATEGORY_ZH

PERCENT = "0.0%"
"""Rates stay numbers (a sheet sorts and sums them) and show as 94.3%."""


CAMPAIGN_FORMATS = {c: PERCENT for c in ("training_rate", "exam_first_pass_rate", "key_posts_certified_rate", "sampling_pass_rate",
                                           "sampling_pass_rate_all")}
"""The progress table's KPI columns (ratios, ``processors.campaign.kpis``)."""


def time_header(offset_hours: int) -> str:
    if offset_hours == 8:
        return "（北京时间）"
    return f"（当地时间 UTC{offset_hours:+d}）"


def local_time(value: Any, offset_hours: int) -> str:
    """An instant as local wall time to the minute; the API's rows carry ISO text (``…Z``) or datetimes."""
    if value is None or value == "":
        return ""
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    if moment.tzinfo is None:  # the fold keeps UTC; a naive value is one of those
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone(dt.timedelta(hours=offset_hours))).strftime("%Y-%m-%d %H:%M")


def yes_no(value: Any) -> str:
    return "是" if value else "否"


COUNT_HEADERS_ZH = {
    "samples": "抽检批次", "samples_passed": "合格批次", "samples_failed": "不合格批次", "samples_undetermined": "无法判定批次",
    "samples_unconfirmed": "系统复核不合格批次（检验报告结论为合格，计入合格）",
    "complaints": "投诉（件）", "complaints_verified": "核实投诉（件）", "inspections": "现场检查（次）",
    "inspections_nonconforming": "检查不符合（次）", "rectifications_open": "未结整改（项）", "rectifications_overdue": "逾期整改（项）",
    "enforcements": "行政处罚（件）", "interviews": "约谈（次）",
}
"""Every count of a credit file (``processors.credit_file.Counts``), with what it counts."""
ENTERPRISE_HEADERS_ZH = {"enterprise_id": "企业编号", "name": "企业名称", "category": "食品类别", "town": "乡镇/街道",
                         "grade": "风险等级", "score": "风险分", "next_inspection_due": "下次现场检查截止日", "deregistered_on": "注销日期", "suspended_on": "停产日期",
                         "pass_rate": "抽检合格率", **COUNT_HEADERS_ZH}


def enterprise_sheet(flat: list[dict[str, Any]], columns: list[str]) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, str]]:
    """The enterprise list's rows (as the CSV has them) for people: rows, headers, number formats."""
    figures = {"score", "pass_rate", *COUNT_HEADERS_ZH}
    rows = [{**r, **{k: _number(r[k]) for k in figures if k in r}, "category": CATEGORY_ZH.get(r.get("category"), r.get("category"))}
            for r in flat]
    headers = {c: ENTERPRISE_HEADERS_ZH.get(c, c) for c in columns}
    return rows, headers, {"pass_rate": PERCENT}


def _number(value: Any) -> Any:
    """A figure as a number a sheet sums (an int when whole: 66 reads better than 66.0), whatever
    form it came in (a copy read back from JSON or text may carry "66")."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def campaign_sheet(progress: dict[str, Any], offset_hours: int = 8) -> tuple[list[dict[str, Any]], list[str], dict[str, str], dict[str, str]]:
    """The campaign's progress table for people: rows, columns, headers, number formats.  The CSV
    (``TABLE_COLUMNS``) has the stage's code beside its label; the sheet the label only.  The table's
    截至 (the latest event it reflects) is local time on every line, as the CSV has it in UTC."""
    from processors.campaign import SHEET_COLUMNS, TABLE_HEADERS_ZH, table_rows

    rows = [{**r, "as_of": local_time(r.get("as_of"), offset_hours)} for r in table_rows(progress, zh=True)]
    headers = {**TABLE_HEADERS_ZH, "as_of": f"{TABLE_HEADERS_ZH['as_of']}{time_header(offset_hours)}"}
    return rows, SHEET_COLUMNS, headers, CAMPAIGN_FORMATS


ALERT_COLUMNS = ["alert_id", "enterprise_id", "enterprise_name", "town", "category", "rule", "severity", "state", "assignee",
                 "opened_at", "respond_by", "acknowledged_at", "handle_by", "handling_overdue", "closed_at", "escalated", "occurrences", "refs", "message", "silenced"]


def alert_sheet(alerts: list[dict[str, Any]], offset_hours: int) -> tuple[list[dict[str, Any]], list[str], dict[str, str]]:
    """Alert views for people: rows, columns and headers.  The rule is its title (the policy's,
    which a bureau may have retitled, else the built-in one), never its id."""
    when = time_header(offset_hours)
    headers = {
        "alert_id": "预警编号", "enterprise_id": "企业编号", "enterprise_name": "企业名称", "town": "乡镇/街道", "category": "食品类别",
        "rule": "预警类型", "severity": "级别", "state": "处置状态", "assignee": "负责人", "opened_at": f"生成时间{when}",
        "respond_by": f"确认时限{when}", "acknowledged_at": f"确认时间{when}", "handle_by": f"处置时限{when}",
        "handling_overdue": "已确认超时未处置", "closed_at": f"办结时间{when}",
        "escalated": "已超时升级", "occurrences": "发生次数", "refs": "涉及编号（抽样、检查、投诉、整改）", "message": "预警内容",
        "silenced": "静默原因（不发通知）",
    }
    rows = []
    for a in alerts:
        rows.append({
            # a county alert is kept under the enterprise whose sample tipped it: the sheet says so, beside 本县…类
            "alert_id": a["alert_id"], "enterprise_name": a.get("enterprise_name"),
            "enterprise_id": (f"县级（由 {a['enterprise_id']} 的抽检触发）" if str(a.get("dedup_key") or "").startswith("county:")
                              else a["enterprise_id"]),
            "town": a.get("town"), "category": CATEGORY_ZH.get(a.get("category"), a.get("category")),
            "rule": a.get("title_zh") or RULE_ZH.get(a["rule"], a["rule"]),
            "severity": a.get("severity_zh") or a.get("severity"), "state": a.get("state_zh") or a.get("state"),
            "assignee": a.get("assignee"), "opened_at": local_time(a.get("opened_at"), offset_hours),
            # (the API's rows say whether the escalation reached anyone: 是 alone read as "the county was told")
            "respond_by": local_time(a.get("respond_by"), offset_hours), "escalated": a.get("escalated_zh") or yes_no(a.get("escalated")),
            # when it was taken up and when settled: a quarter's handling times are read from these
            "acknowledged_at": local_time(a.get("acknowledged_at"), offset_hours), "closed_at": local_time(a.get("closed_at"), offset_hours),
            # 早处置: by when an acknowledged alert is to be put under rectification or closed, and whether it was left past it
            "handle_by": local_time(a.get("handle_by"), offset_hours), "handling_overdue": yes_no(a.get("handling_overdue")),
            "refs": "、".join(a.get("refs") or []),
            "occurrences": a.get("occurrences"), "message": a.get("message_zh"), "silenced": a.get("silenced"),
        })
    return rows, ALERT_COLUMNS, headers


def _percent(decimals: int) -> str:
    """The number format of a rate shown with ``decimals`` (PERCENT: one)."""
    return "0." + "0" * decimals + "%" if decimals else "0%"


SUMMARY_SHEET = "汇总"
"""The campaign workbook's second sheet: the county's totals the JSON's ``summary`` has."""


def _closed(sm: dict[str, Any], key: str) -> str:
    """That a count includes enterprises closed or whose licence was revoked (out of lagging and the KPIs, still counted here)."""
    n = (sm.get("out_of_campaign") or {}).get(key)
    return f"含已注销或吊销许可证的 {n} 家" if n else ""


def scope_zh(summary: dict[str, Any]) -> str:
    """Whose totals these are: 全县, or the towns a town's key reads (``summary["towns"]``)."""
    return "、".join(summary.get("towns") or []) or "全县"


def campaign_summary_rows(progress: dict[str, Any], offset_hours: int = 8) -> list[tuple[str, Any, str]]:
    """The county summary (``processors.campaign.county_progress``'s ``summary``) as (项目, 数值, 说明) lines:
    counts as numbers, the Σ KPI rates as fractions (shown as percentages) with their counts.  A town's key gets its
    towns' totals, named as such (统计范围, 北山镇从业人员培训率): never read as the county's."""
    sm = progress["summary"]
    scope = scope_zh(sm)
    out: list[tuple[str, Any, str]] = [
        *([("统计范围", scope, "仅含该密钥可查看的乡镇")] if sm.get("towns") else []),
        *([("统计截止日", sm["cut"], "该日结束时已录入的记录（qrisk campaign --as-of；按录入时间，此后补录的材料即使日期在此之前也不在内，按材料日期统计请用最新进度表的各阶段完成日期）")] if sm.get("cut") else []),
        (f"{'最近记录' if sm.get('cut') else '数据截至'}{time_header(offset_hours)}", local_time(sm.get("as_of"), offset_hours), ""),
        ("企业数（家）", sm["enterprises"], _closed(sm, "enterprises")),
        ("未启动（家）", sm["not_started"], "无任何提档升级记录"),
        ("已开展工作、尚未完成任何阶段（家）", sm.get("no_stage_yet", 0), "有自查、比对试验等记录，但尚未完成任何阶段"),
        ("验收通过（家）", sm["accepted"], "，".join(x for x in ("最近一次检查验收通过", _closed(sm, "accepted")) if x)),
        ("验收通过但须核实（家）", sm["accepted_with_gaps"], "三个一未完成、指标未达标或有处罚、不合格、风险等级、投诉等记录"),
        ("最近一次验收未通过（家）", sm["last_acceptance_failed"], ""),
        ("曾验收未通过（家）", sm["acceptance_failed_ever"], ""),
        ("已提档（家）", sm["upgraded"], "，".join(x for x in ("当前档次高于初始档次", _closed(sm, "upgraded")) if x)),
        ("滞后企业（家）", sm["lagging"], ""),
        ("已吊销许可证（家）", sm.get("licence_revoked", 0), "不计入滞后企业和指标"),
        ("已注销（家）", sm.get("deregistered", 0), "不计入滞后企业和指标"),
        ("未登记企业编号下的提档升级记录（个）", len(sm.get("unregistered", [])), "、".join(sm.get("unregistered", [])) or "未列入进度表，企业登记后计入"),
    ]
    for st in sm["stages"]:
        applies = f"适用 {st['applies']} 家" if st.get("applies") is not None and st["applies"] != sm["enterprises"] else ""
        out.append((f"{st['stage_zh']}：已完成（家）", st["reached"], applies))
        out.append((f"{st['stage_zh']}：当前所处（家）", st["current"], ""))
    for k in sm["kpi_rates"].values():
        note = "，".join(x for x in (k["figure_zh"], k.get("takers_zh"), k.get("target_zh"), k.get("met_zh")) if x)
        out.append((f"{scope}{k['label_zh']}", k["value"], note))
    for k in sm["kpis"].values():
        out.append((f"{k['label_zh']}达标企业（家）", k["met"], f"可评价 {k['known']} 家" + (f"，{k['basis_zh']}" if k.get("basis_zh") else "")
                    + (f"，其中 {k['doubtful']} 家一次通过人数须核实" if k.get("doubtful") else "")))
    return out


def campaign_workbook(progress: dict[str, Any], offset_hours: int = 8) -> bytes:
    """The progress table (进度表, ``campaign_sheet``) and a second sheet, 汇总, with the county's totals."""
    import io

    from openpyxl import load_workbook

    from ingest.export import _local_moment as local_moment, to_xlsx, xlsx_value

    from processors.campaign import pct_decimals

    rows, columns, headers, formats = campaign_sheet(progress, offset_hours)
    # (dates as date cells, as the registers' sheets have them: a month's acceptances are filtered and counted by date)
    wb = load_workbook(io.BytesIO(to_xlsx(rows, columns, sheet="提档升级进度", headers=headers, number_formats=formats, dates=True)))
    # a rate shows with the decimals it needs against its target: 0.8997 is 89.97%, never 90.0% beside 未达标
    sheet = wb.active
    at = {c: i for i, c in enumerate(columns, start=1)}
    for n, r in enumerate(progress["rows"], start=2):
        for key, k in r["kpis"].items():
            if key in at and k["value"] is not None and isinstance(sheet.cell(row=n, column=at[key]).value, (int, float)):
                sheet.cell(row=n, column=at[key]).number_format = _percent(pct_decimals(k["value"], k["target"], key == "sampling_pass_rate"))
    ws = wb.create_sheet(SUMMARY_SHEET)
    ws.append(["项目", "数值", "说明"])
    rates = {f"{scope_zh(progress['summary'])}{k['label_zh']}": k for k in progress["summary"]["kpi_rates"].values()}
    for label, value, note in campaign_summary_rows(progress, offset_hours):
        # 统计截止日 and 数据截至 / 最近记录 (a local date, a local minute) as date cells, as the table's dates are
        moment = local_moment(value) if isinstance(value, str) else None
        ws.append([label, moment[0] if moment else xlsx_value(value), note])
        cell = ws.cell(row=ws.max_row, column=2)
        if moment is not None:
            cell.number_format = moment[1]
        elif isinstance(value, str):
            cell.data_type = "s"  # text, never a formula
        elif label in rates and value is not None:
            k = rates[label]  # a rate stays a number
            cell.number_format = _percent(pct_decimals(value, k["target"]))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
