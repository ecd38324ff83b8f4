"""Synthetic rows shaped like the pipeline's, for store tests and benchmarks (no pytest here)."""
from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any, Iterator

UTC = dt.timezone.utc

WATER_ITEMS = [
    ("free_chlorine", "余氯(游离氯)", "mg/L", "≤0.05", 0.01, 0.05),
    ("oxygen_consumption", "耗氧量(以O₂计)", "mg/L", "≤2.0", 0.8, 2.0),
    ("bromate", "溴酸盐", "mg/L", "≤0.01", 0.003, 0.01),
    ("conductivity", "电导率", "µS/cm", "≤10", 4.0, 10.0),
    ("lead", "铅", "mg/L", "≤0.01", 0.002, 0.01),
    ("p_aeruginosa", "铜绿假单胞菌", "CFU/250mL", "n=5,c=0,m=0", 0.0, 0.0),
]


def sample_events(enterprises: int = 40, years: int = 5, per_month: int = 2, start: dt.date = dt.date(2020, 1, 6),
                  seed: int = 7) -> Iterator[dict[str, Any]]:
    """One dict per sample: enterprise, event id, dates, verdicts of its items (deterministic)."""
    rng = random.Random(seed)
    for month in range(years * 12):
        y, m = start.year + (start.month - 1 + month) // 12, (start.month - 1 + month) % 12 + 1
        for e in range(enterprises):
            for k in range(per_month):
                day = 1 + (e * 3 + k * 11) % 27
                sampled = dt.date(y, m, day)
                yield {"enterprise_id": f"E{e:04d}", "event_id": f"s-{e:04d}-{y}{m:02d}-{k}", "sample_no": f"SC{y}{m:02d}{e:04d}{k}",
                       "sampled_on": sampled, "rng": rng.random()}


def item_rows_for(sample: dict[str, Any], values_per_item: int = 1) -> list[dict[str, Any]]:
    rows = []
    rng = random.Random(sample["event_id"])
    occurred = dt.datetime.combine(sample["sampled_on"], dt.time(9, 30), tzinfo=UTC)
    for code, name, unit, limit, typical, top in WATER_ITEMS:
        for index in range(values_per_item if code == "p_aeruginosa" else 1):
            nd = code == "p_aeruginosa" and rng.random() < 0.9
            value = None if nd else round(typical * (0.5 + rng.random()), 4)
            verdict = "fail" if (value is not None and top and value > top) or (code == "p_aeruginosa" and not nd) else "pass"
            rows.append({
                "event_id": sample["event_id"], "enterprise_id": sample["enterprise_id"], "category": "packaged_water",
                "sample_no": sample["sample_no"], "product": "饮用纯净水 550ml", "lab": "县食品检验所",
                "item_code": code, "item_name": name, "item_class": "chemical" if code != "p_aeruginosa" else "microbial",
                "value_index": index, "value": value, "not_detected": int(nd), "unit": unit, "limit_text": limit,
                "standard": "GB 19298-2014", "verdict": verdict, "reason": "over_limit" if verdict == "fail" else "within_limit",
                "lab_verdict": verdict, "sampled_on": sample["sampled_on"], "production_date": sample["sampled_on"] - dt.timedelta(days=3),
                "occurred_at": occurred,
            })
    return rows


def sampling_item_rows(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` sampling-item rows with distinct keys, spread over 40 enterprises and 5 years."""
    out: list[dict[str, Any]] = []
    for sample in sample_events(enterprises=40, years=5, per_month=max(1, n // (40 * 60 * 6) + 1), seed=seed):
        out.extend(item_rows_for(sample))
        if len(out) >= n:
            return out[:n]
    raise AssertionError("not enough synthetic samples")  # pragma: no cover


def history_rows(enterprises: int = 40, years: int = 5, per_month: int = 2) -> dict[str, list[dict[str, Any]]]:
    """Every analytical table's rows for a county: samples, items, snapshots (with the grade), alerts."""
    tables: dict[str, list[dict[str, Any]]] = {k: [] for k in ("sampling_items", "judgements", "credit_files", "alerts")}
    seq = 0
    grades: dict[str, str] = {}
    for sample in sample_events(enterprises, years, per_month):
        seq += 1
        eid = sample["enterprise_id"]
        items = item_rows_for(sample)
        tables["sampling_items"].extend(items)
        failed = [r["item_code"] for r in items if r["verdict"] == "fail"]
        occurred = items[0]["occurred_at"]
        tables["judgements"].append({
            "event_id": sample["event_id"], "enterprise_id": eid, "category": "packaged_water", "sample_no": sample["sample_no"],
            "product": "饮用纯净水 550ml", "verdict": "fail" if failed else "pass", "counted": "fail" if failed else "pass",
            "failed_items": failed, "disagreements": [],
            "unknown": [], "sampled_on": sample["sampled_on"], "occurred_at": occurred,
        })
        if sample["sampled_on"].day <= 3 or failed:  # a monthly-ish snapshot of the file
            body = {"enterprise_id": eid, "seq": seq, "samples": seq % 500, "grade": grades.get(eid, "B"), "notes": "x" * 400}
            tables["credit_files"].append({"enterprise_id": eid, "seq": seq, "body": json.dumps(body, ensure_ascii=False)})
        if failed:
            new = "C" if grades.get(eid, "B") == "B" else "B"
            grades[eid] = new
            tables["alerts"].append({
                "alert_id": f"a-{sample['event_id']}", "enterprise_id": eid, "kind": "sampling.failed", "severity": "high",
                "state": "open", "title": "抽检不合格", "group_key": f"{eid}/sampling.failed", "assignee": "张三",
                "opened_at": occurred, "updated_at": occurred, "updated_ms": 0, "version": 1, "event_id": sample["event_id"],
                "evidence": json.dumps({"failed": failed}),
            })
    return tables


def reference_sample_rows(file: Any, sample_event_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """sampling_items rows one per item and value, built the plain way: the reference both runtimes'
    sampling_items_in rows must unfold to (and the shape of effect messages written before them)."""
    from qrisk.pipeline import _split_ms

    record = next(s for s in reversed(file.samples) if s.event_id == sample_event_id)
    j = record.judgement
    category = file.profile.category if file.profile else ""
    rows = []
    for item in j.items:
        for index, value in enumerate(item.values):
            nd = value == "ND"
            rows.append({
                "event_id": record.event_id, "enterprise_id": file.enterprise_id, "category": category,
                "sample_no": record.sample_no, "product": record.product, "lab": record.lab,
                "item_code": item.item_code, "item_name": item.item_name or "", "item_class": item.item_class or "",
                "value_index": index, "value": None if nd else float(value), "not_detected": int(nd),
                "unit": item.unit or "", "limit_text": item.limit_text or "", "standard": item.standard or "",
                "verdict": item.verdict, "reason": item.reason, "lab_verdict": item.lab_verdict or "",
                "sampled_on": record.sampled_on, "production_date": record.production_date,
                "occurred_at": _split_ms(record.occurred_at)[0],
            })
    judgement = {
        "event_id": record.event_id, "enterprise_id": file.enterprise_id, "category": category,
        "sample_no": record.sample_no, "product": record.product, "verdict": j.verdict,
        # (a printed sum giving qrisk's figure is the sum, once; an item the lab failed and qrisk passes, as the report's)
        "failed_items": j.counted_failed_codes(),
        "disagreements": list(j.disagreements), "unknown": [u.item_code or u.text or u.kind for u in j.unknown],
        "sampled_on": record.sampled_on, "occurred_at": _split_ms(record.occurred_at)[0],
        "superseded_by": record.superseded_by or "", "counted": j.counted, "lab": record.lab,
        # (the labs' time limits: judged on a sample's first original report, carried by its corrections)
        "report_working_days": record.turnaround.report_days if record.turnaround else None,
        "report_limit": record.turnaround.report_limit if record.turnaround else None,
        "turnaround_late": int(record.turnaround.late) if record.turnaround else 0,
        "turnaround_estimate": int(record.turnaround.estimate) if record.turnaround else 0,
    }
    return rows, judgement
