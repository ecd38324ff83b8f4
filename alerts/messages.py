"""Chinese (default) and English text for the effects a supervisor must see."""
from __future__ import annotations

from processors.step import Effect

_KIND_ZH = {
    "sampling.failed": "抽检不合格",
    "judgement.disagrees_with_lab": "判定与检验机构结论不一致",
    "fluctuation.signal": "质量波动",
    "complaint.cluster": "投诉聚集",
    "inspection.nonconforming": "现场检查发现问题",
    "rectification.overdue": "整改逾期",
    "rectification.rejected": "整改复查未通过",
}

_KIND_EN = {
    "sampling.failed": "unqualified sampling result",
    "judgement.disagrees_with_lab": "qrisk's judgement differs from the lab's",
    "fluctuation.signal": "quality fluctuation",
    "complaint.cluster": "cluster of verified complaints",
    "inspection.nonconforming": "inspection findings",
    "rectification.overdue": "rectification overdue",
    "rectification.rejected": "rectification rejected at verification",
}


def title_zh(kind: str) -> str:
    return _KIND_ZH.get(kind, kind)


def title_en(kind: str) -> str:
    return _KIND_EN.get(kind, kind)


def message_zh(effect: Effect, name: str | None = None) -> str:
    who = name or effect.enterprise_id
    d = effect.data
    k = effect.kind
    if k == "sampling.failed":
        detail = "；".join(d.get("messages_zh") or []) or "、".join(d.get("failed_items", []))
        return f"{who}：{d.get('product', '')}（抽样编号 {d.get('sample_no', '')}，{d.get('sampled_on', '')}）抽检不合格。{detail}"
    if k == "fluctuation.signal":
        where = f"（抽样编号 {d['sample_no']}，{d.get('sampled_on', '')}）" if d.get("sample_no") else ""
        return f"{who}：{d.get('text_zh', '')}{where}。"
    if k == "judgement.disagrees_with_lab":
        return f"{who}：抽样编号 {d.get('sample_no', '')} 的项目 {'、'.join(d.get('items', []))} 系统判定与检验机构结论不一致，请核对。"
    if k == "complaint.cluster":
        return f"{who}：{d.get('window_days')} 天内经核实的投诉达 {len(d.get('complaint_ids', []))} 件（阈值 {d.get('k')} 件），请关注。"
    if k == "inspection.nonconforming":
        serious = d.get("serious_findings") or []
        extra = f"，严重/主要问题条款 {'、'.join(serious)}" if serious else ""
        return f"{who}：现场检查 {d.get('inspection_id', '')} 结论为“{d.get('result', '')}”{extra}。"
    if k == "rectification.overdue":
        return f"{who}：整改 {d.get('rectification_id', '')}（{d.get('what', '')}）已超过期限 {d.get('deadline', '')}，逾期 {d.get('days_overdue', '?')} 天。"
    if k == "rectification.rejected":
        return f"{who}：整改 {d.get('rectification_id', '')} 复查未通过。{d.get('note', '')}"
    return f"{who}：{title_zh(k)}"
