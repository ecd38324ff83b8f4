"""Penalties and interviews weigh in the dynamic window from their legal date (decided_on, held_on), not from when
they were recorded; and the dates that cannot be are refused, or said.  Found by the provincial auditor: a decision of
2025-05-01 recorded on 2026-07-05 read 行政处罚 +12 近 365 天 1 件 until 2027-07-05."""
from __future__ import annotations

import json
import uuid

from ingest.lint import accepted_warnings
from ingest.validate import decode_body
from processors.step import replay
from schemas.upcast import parse_event
from tests.conftest import golden

E = "E-330110-001"


def ev(event_type: str, at: str | None = None, **payload):
    doc = golden(event_type)
    doc["event_id"] = str(uuid.uuid4())
    if at is not None:
        doc["occurred_at"] = at
    doc["payload"].update(payload)
    return parse_event(doc)


def decided(decided_on: str, at: str = "2026-07-05T10:00:00+08:00"):
    return ev("enforcement.decided", at, decided_on=decided_on, penalties=[{"kind": "suspension", "note": "责令停产停业 15 日"}])


def terms(state):
    return {c.factor: c for c in state.files[E].risk.current.contributions}


def test_a_decision_recorded_late_weighs_from_its_own_date(rules):
    # decided over a year before it was recorded: outside the window from the start
    state, _ = replay([ev("enterprise.registered", "2025-01-01T09:00:00+08:00"), decided("2025-05-01")], rules)
    assert "dynamic.enforcement" not in terms(state)
    assert state.files[E].counts.enforcements == 1  # (on file all the same)
    # decided 2025-09-01: weighs until 2026-08-31 (365 days from that day), not until 2027-07-05
    events = [ev("enterprise.registered", "2025-01-01T09:00:00+08:00"), decided("2025-09-01")]
    state, _ = replay([*events, ev("clock.tick", "2026-08-31T12:00:00+08:00")], rules)
    t = terms(state)["dynamic.enforcement"]
    assert t.points == 12 and t.weighs_until.isoformat() == "2026-08-31T16:00:00+00:00"  # 2026-09-01 00:00 in Beijing
    state, _ = replay([*events, ev("clock.tick", "2026-09-01T12:00:00+08:00")], rules)
    assert "dynamic.enforcement" not in terms(state)


def test_an_interview_recorded_late_weighs_from_its_day(rules):
    late = ev("interview.held", "2026-07-05T10:00:00+08:00", held_on="2025-04-01", follow_up_by=None)
    state, _ = replay([ev("enterprise.registered", "2025-01-01T09:00:00+08:00"), late], rules)
    assert "dynamic.interview" not in terms(state) and state.files[E].counts.interviews == 1
    recent = ev("interview.held", "2026-07-05T10:00:00+08:00", held_on="2026-03-01", follow_up_by=None)
    state, _ = replay([ev("enterprise.registered", "2025-01-01T09:00:00+08:00"), recent, ev("clock.tick", "2027-03-01T12:00:00+08:00")], rules)
    assert "dynamic.interview" not in terms(state)  # (counted from its occurred_at it would weigh until 2027-07-05)


def _refused(doc: dict) -> dict[str, dict]:
    events, rejected = decode_body(json.dumps(doc, ensure_ascii=False).encode())
    assert not events
    return {e["field"]: e for e in rejected[0].errors}


def test_a_legal_date_after_the_record_is_refused_at_the_door():
    doc = golden("enforcement.decided")
    doc["payload"]["decided_on"] = "2026-05-19"  # the golden is recorded 2026-05-18 15:00 (+08:00)
    err = _refused(doc)["payload.decided_on"]
    assert "决定日期 2026-05-19 晚于记录时间 2026-05-18" in err["reason_zh"] and "after the event was recorded" in err["reason"]
    doc = golden("interview.held")
    doc["payload"]["held_on"] = "2026-04-09"
    err = _refused(doc)["payload.held_on"]
    assert "约谈日期 2026-04-09 晚于记录时间 2026-04-08" in err["reason_zh"]
    # the local day decides: 2026-05-18 00:30 in Beijing is 05-17 in UTC, and a decision of the 18th is in time
    doc = golden("enforcement.decided")
    doc["occurred_at"] = "2026-05-17T16:30:00Z"
    events, rejected = decode_body(json.dumps(doc, ensure_ascii=False).encode())
    assert events and not rejected
    # a log that holds such an event re-reads it (the check is the door's)
    doc = golden("enforcement.decided")
    doc["payload"]["decided_on"] = "2026-05-19"
    assert parse_event(doc).payload.decided_on.isoformat() == "2026-05-19"


def test_a_revocation_dated_before_its_decision_is_applied_and_said(rules):
    decision = ev("enforcement.decided")  # decided 2026-05-18
    revocation = ev("enforcement.revoked", revoked_on="2026-05-10")
    for order in ([decision, revocation], [revocation, decision]):
        state, effects = replay([ev("enterprise.registered"), *order], rules)
        [said] = [e for e in effects if e.kind == "enforcement.revocation_misdated"]
        assert said.data["field"] == "payload.revoked_on" and "撤销日期 2026-05-10 早于行政处罚决定书" in said.data["message_zh"]
        assert not state.files[E].enforcements[0].in_force
    state, _ = replay([ev("enterprise.registered"), decision, revocation], rules)
    [w] = accepted_warnings(revocation, rules.catalogue, state.files[E])
    assert (w["type"], w["field"]) == ("revoked_before_decided", "payload.revoked_on")
    # a revocation dated on or after the decision says nothing of the kind
    state, effects = replay([ev("enterprise.registered"), decision, ev("enforcement.revoked")], rules)
    assert "enforcement.revocation_misdated" not in [e.kind for e in effects]
