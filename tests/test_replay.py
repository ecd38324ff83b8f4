"""Deterministic replay as a property: any log folds to the same state, and snapshot + tail = full replay."""
from __future__ import annotations

import datetime as dt
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pytest

from processors.credit_file import CountyState
from processors.step import Rules, replay
from schemas.policy import Policy
from schemas.upcast import parse_event
from tests.conftest import golden

ENTERPRISES = ["E-1", "E-2", "E-3"]
BASE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))

measured = st.one_of(st.just("ND"), st.integers(0, 100), st.floats(0, 5, allow_nan=False).map(lambda v: round(v, 3)))


@st.composite
def event_docs(draw, n: int):
    kind = draw(st.sampled_from([
        "enterprise.registered", "enterprise.updated", "sampling.result", "complaint.received", "complaint.resolved",
        "inspection.completed", "rectification.ordered", "rectification.completed", "rectification.verified", "clock.tick",
        "sampling.retracted", "enforcement.decided", "enforcement.listing_removed",
    ]))
    doc = golden(kind)
    doc["event_id"] = str(uuid.UUID(int=draw(st.integers(1, 2**64)), version=4))
    doc["occurred_at"] = (BASE + dt.timedelta(hours=draw(st.integers(0, 24 * 200)))).isoformat()
    if kind != "clock.tick":
        doc["enterprise_id"] = draw(st.sampled_from(ENTERPRISES))
    p = doc["payload"]
    if kind == "enterprise.registered":
        p["category"] = draw(st.sampled_from(["packaged_water", "pastry", "other"]))
    elif kind == "sampling.result":
        # a few shared sample numbers and re-tests (复检), in either order
        p["sample_no"] = draw(st.sampled_from([f"S{n}", "S-A", "S-B"]))
        p["retest"] = draw(st.booleans())
        for item in p["items"]:
            count = 5 if item["item_code"] == "pseudomonas_aeruginosa" else 1
            item["values"] = draw(st.lists(measured, min_size=count, max_size=count))
    elif kind == "sampling.retracted":
        # the bureau's retraction of one of those numbers: before or after its reports, or of none
        p["sample_no"] = draw(st.sampled_from([f"S{n}", "S-A", "S-B"]))
    elif kind in ("complaint.received", "complaint.resolved"):
        p["complaint_id"] = f"C{draw(st.integers(0, 3))}"
        p["verified"] = draw(st.booleans())
    elif kind.startswith("rectification."):
        p["rectification_id"] = f"R{draw(st.integers(0, 2))}"
        if kind == "rectification.ordered":
            p["deadline"] = (BASE + dt.timedelta(days=draw(st.integers(0, 200)))).date().isoformat()
        if kind == "rectification.verified":
            p["accepted"] = draw(st.booleans())
    elif kind == "inspection.completed":
        p["result"] = draw(st.sampled_from(["符合", "基本符合", "不符合"]))
    elif kind == "enterprise.updated":
        # 停产, back in business, 注销, in any order (or no status: a profile change alone)
        status = draw(st.sampled_from([None, "operating", "suspended", "deregistered"]))
        if status is not None:
            p["status"] = status
    elif kind.startswith("enforcement."):
        # a listing and its early removal (信用修复), either first, or a removal naming no decision
        p["decision_no"] = f"D{draw(st.integers(0, 2))}"
        day = (BASE + dt.timedelta(days=draw(st.integers(0, 200)))).date().isoformat()
        if kind == "enforcement.decided":
            p["serious_dishonesty"], p["decided_on"] = draw(st.booleans()), day
        else:
            p["removed_on"] = day
    return doc


@st.composite
def logs(draw):
    size = draw(st.integers(1, 40))
    docs = [draw(event_docs(i)) for i in range(size)]
    # redeliveries: some events appear again later in the log
    for _ in range(draw(st.integers(0, 5))):
        docs.insert(draw(st.integers(0, len(docs))), docs[draw(st.integers(0, len(docs) - 1))])
    return [parse_event(d) for d in docs]


@pytest.fixture(scope="module")
def rules(rules):
    # a two-point SPC baseline, so short generated logs reach the monitors' phase II
    return Rules(rules.catalogue, Policy.model_validate({"spc": {"baseline": 2}}))


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(logs())
def test_replaying_the_same_log_gives_the_same_state(rules, log):
    first, effects1 = replay(log, rules)
    second, effects2 = replay(log, rules)
    assert first.snapshot() == second.snapshot()
    assert effects1 == effects2


@FAST
@given(logs(), st.data())
def test_snapshot_plus_tail_equals_full_replay(rules, log, data):
    cut = data.draw(st.integers(0, len(log)))
    full, effects = replay(log, rules)
    head, head_effects = replay(log[:cut], rules)
    restored = CountyState.restore(head.snapshot())
    assert restored.snapshot() == head.snapshot()
    # in the order it was built, not only equal: a restored state iterates as the live one (a tick's
    # effects, file by file; a report's lists and tables)
    assert restored.model_dump_json(exclude={"seen_event_ids"}) == head.model_dump_json(exclude={"seen_event_ids"})
    resumed, tail_effects = replay(log[cut:], rules, state=restored)
    assert resumed.snapshot() == full.snapshot()
    assert tail_effects == effects[len(head_effects):]


def test_a_file_folded_live_serialises_as_it_does_restored(rules):
    """An enterprise with nothing against it grades at dynamic 0: the live fold held the int 0 (a sum of
    nothing), a restored snapshot the float 0.0, and the same file version was published as two bodies."""
    reg = golden("enterprise.registered")
    state, _ = replay([parse_event(reg)], rules)
    grades = state.files[reg["enterprise_id"]].risk.history
    assert grades and all(isinstance(g.dynamic, float) and isinstance(g.static, float) for g in grades)
    assert CountyState.restore(state.snapshot()).snapshot() == state.snapshot()


def test_a_tick_after_a_restart_speaks_of_the_files_in_the_order_it_did(rules):
    """Files registered in other than alphabetical order, each with a rectification that falls overdue
    at the next tick: restored from a snapshot, the tick's effects come file by file as they did live
    (the snapshot was written with sorted keys, and a restart reordered them)."""
    docs = []
    for enterprise in ("E-9", "E-1", "E-5"):
        reg = golden("enterprise.registered")
        reg["event_id"], reg["enterprise_id"] = str(uuid.uuid4()), enterprise
        order = golden("rectification.ordered")
        order["event_id"], order["enterprise_id"] = str(uuid.uuid4()), enterprise
        order["payload"]["deadline"] = "2026-04-01"
        docs += [reg, order]
    tick = golden("clock.tick")
    tick["occurred_at"] = "2026-05-01T00:00:00+08:00"
    head, _ = replay([parse_event(d) for d in docs], rules)
    _, live = replay([parse_event(tick)], rules, state=head)
    head2, _ = replay([parse_event(d) for d in docs], rules)
    _, restored = replay([parse_event(tick)], rules, state=CountyState.restore(head2.snapshot()))
    overdue = [e.enterprise_id for e in live if e.kind == "rectification.overdue"]
    assert overdue == ["E-9", "E-1", "E-5"]
    assert [(e.enterprise_id, e.kind) for e in restored] == [(e.enterprise_id, e.kind) for e in live]
