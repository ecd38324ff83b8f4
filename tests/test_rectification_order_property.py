"""Rectification records, inspections and lab reports in any order (hypothesis): nothing fails, a snapshot and its tail
fold as the whole log does — the credit file and the alert book —, the open and overdue counts are the records', and
the alert book says of each order what the credit file says (the order's records may come before it and wait)."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.lifecycle import AlertBook
from processors.credit_file import CountyState
from tests.test_alerts import County, policy
from tests.test_lab_failed_passed import CHLORINE_AT_LIMIT, LEAD
from tests.test_risk import E, ev, registered

DAYS = ["2026-03-25", "2026-04-05", "2026-04-12", "2026-04-20", "2026-05-10"]


def make(kind: str, day: str, var: int):
    at = f"{day}T{9 + var:02d}:00:00+08:00"
    if kind == "inspection":
        return ev("inspection.completed", at, inspection_id="JC-2", inspector="王检查员", result="不符合",
                  findings=[{"code": "3.4", "description": "原料未离地存放", "severity": "minor"}])
    if kind == "order":  # (its cause and deadline vary: a resend corrects it)
        return ev("rectification.ordered", at, rectification_id="ZG-X1", cause=["现场检查 JC-2 发现问题", "日常检查"][var % 2],
                  deadline=["2026-04-10", "2026-04-30"][var // 2 % 2], what="原料离地")
    if kind == "completed":
        return ev("rectification.completed", at, rectification_id="ZG-X1", evidence="已整改")
    if kind == "accepted":
        return ev("rectification.verified", at, rectification_id="ZG-X1", accepted=True, note="合格")
    if kind == "rejected":
        return ev("rectification.verified", at, rectification_id="ZG-X1", accepted=False, note="未整改",
                  **({"new_deadline": "2026-05-30"} if var % 2 else {}))
    if kind == "tick":
        return ev("clock.tick", at, enterprise_id="*")
    if kind == "sample":
        items = [CHLORINE_AT_LIMIT, LEAD] if var % 2 == 0 else [{**CHLORINE_AT_LIMIT, "lab_verdict": "合格"}, LEAD]
        return ev("sampling.result", at, items=items, sample_no="LP-1")
    return ev("sampling.retracted", at, sample_no="LP-1", reason="错发")


STEPS = st.tuples(st.sampled_from(["inspection", "order", "completed", "accepted", "rejected", "tick", "sample", "retracted"]),
                  st.sampled_from(DAYS), st.integers(0, 3))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.lists(STEPS, min_size=1, max_size=9), st.integers(0, 9))
def test_any_order_folds_the_same_and_the_book_agrees_with_the_credit_file(rules, steps, cut):
    events = [registered()] + [make(*s) for s in steps]
    cut = min(cut, len(events))
    whole = County(rules, policy())
    whole.feed(*events)
    part = County(rules, policy())
    part.feed(*events[:cut])
    part.state = CountyState.restore(part.state.snapshot())
    part.book = AlertBook.model_validate_json(part.book.model_dump_json())
    part.feed(*events[cut:])
    assert part.state.snapshot() == whole.state.snapshot()
    assert part.book.model_dump_json() == whole.book.model_dump_json()
    f = whole.state.files[E]
    assert f.counts.rectifications_open == sum(r.status != "verified" for r in f.rectifications)
    assert f.counts.rectifications_overdue == sum(r.overdue and r.status != "verified" for r in f.rectifications)
    for r in f.rectifications:
        seen = whole.book.orders.get(E, {}).get(r.rectification_id)
        if seen is not None:
            assert {"open": "ordered"}.get(r.status, r.status) == seen.status, steps
