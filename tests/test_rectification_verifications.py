"""A rectification's verifications (整改复查): an accepted one taken back, one arriving late, and an overdue
rectification still undone.  Found by the provincial auditor on ZG-T01-01: accepted on 05-05, rejected on 05-20 with
a new deadline, it read rejected but 未结 0 项 — and after a tick 逾期 1 项 beside it — the acceptance overwritten."""
from __future__ import annotations

import uuid

from alerts.lifecycle import AlertBook, Enterprise
from processors.credit_file import CountyState
from processors.step import replay, step
from qrisk.credit_report import build_report
from schemas.upcast import parse_event
from tests.conftest import golden

E = "E-330110-001"
R = "ZG-T01-01"


def ev(event_type: str, at: str | None = None, **payload):
    doc = golden(event_type)
    doc["event_id"] = str(uuid.uuid4())
    if at is not None:
        doc["occurred_at"] = at
    doc["payload"].update(payload)
    return parse_event(doc)


def ordered():
    return ev("rectification.ordered", "2026-04-10T11:00:00+08:00", rectification_id=R, deadline="2026-04-30", cause="检查 JC-T01-0410")


def completed():
    return ev("rectification.completed", "2026-04-28T09:00:00+08:00", rectification_id=R)


def accepted(at: str = "2026-05-05T14:00:00+08:00"):
    return ev("rectification.verified", at, rectification_id=R, accepted=True, verifier="王检查员", note="复查合格")


def rejected(at: str = "2026-05-20T14:00:00+08:00", new_deadline: str | None = "2026-06-20"):
    return ev("rectification.verified", at, rectification_id=R, accepted=False, verifier="李科长", note="抽查发现消毒记录系补填",
              **({"new_deadline": new_deadline} if new_deadline else {}))


def tick(at: str):
    return ev("clock.tick", at)


def profile_line(file, rules, label: str) -> str:
    return next(p["value"] for p in build_report(file, rules)["profile"] if p["label"] == label)


def test_an_acceptance_taken_back_opens_the_rectification_again(rules):
    ok, no = accepted(), rejected()
    state, effects = replay([ev("enterprise.registered"), ordered(), completed(), ok, no], rules)
    f = state.files[E]
    [r] = f.rectifications
    assert r.status == "rejected" and f.counts.rectifications_open == 1 and f.counts.rectifications_overdue == 0
    # the acceptance is kept in the record's history beside the rejection that reversed it
    assert [(v.event_id, v.accepted) for v in r.verifications] == [(str(ok.event_id), True), (str(no.event_id), False)]
    assert (r.verifier, r.verified_at, r.redo_deadline.isoformat()) == ("李科长", no.occurred_at, "2026-06-20")
    [said] = [e for e in effects if e.kind == "rectification.verification_reversed"]
    assert (said.data["reversed_event_id"], said.data["accepted_on"], said.data["rejected_on"]) == (str(ok.event_id), "2026-05-05", "2026-05-20")
    assert "此前 2026-05-05 经王检查员复查通过" in said.data["message_zh"] and "整改重新计为未结" in said.data["message_zh"]
    assert "rectification.rejected" in [e.kind for e in effects if e.event_id == str(no.event_id)]
    # overdue by the new deadline (Saturday 06-20: it ends Monday 06-22): open and overdue, both counted
    state, _ = replay([ev("enterprise.registered"), ordered(), completed(), ok, no, tick("2026-06-23T01:00:00+08:00")], rules)
    f = state.files[E]
    assert (f.counts.rectifications_open, f.counts.rectifications_overdue) == (1, 1)
    assert profile_line(f, rules, "整改") == "未结 1 项，逾期 1 项"


def test_the_effect_tells_the_alerts_stage_what_it_verified(rules):
    """The alerts stage verified the alert the acceptance answered; the reversal's effect names the rectification and
    the acceptance, for it to take that alert up again (the alerts stage is not the fold's to change)."""
    box = {"state": CountyState(), "book": AlertBook()}
    seen = []
    events = [ev("enterprise.registered"), ev("inspection.completed", "2026-04-10T10:00:00+08:00", inspection_id="JC-T01-0410", result="不符合"),
              ordered(), completed(), accepted(), rejected()]
    for event in events:
        box["state"], effects = step(box["state"], event, rules)
        box["book"].apply(event, effects, rules.policy, lambda eid: Enterprise("清源桶装水厂", "良渚街道", "packaged_water"))
        seen += effects
    [reversal] = [e for e in seen if e.kind == "rectification.verification_reversed"]
    [alert] = [a for a in box["book"].alerts.values() if a.rule == "inspection.nonconforming"]
    assert R in alert.rectifications and reversal.data["rectification_id"] == R


def test_an_earlier_verification_arriving_late_changes_nothing(rules):
    ok, no = accepted(), rejected()
    state, effects = replay([ev("enterprise.registered"), ordered(), completed(), no, ok], rules)
    f = state.files[E]
    [r] = f.rectifications
    assert r.status == "rejected" and f.counts.rectifications_open == 1 and r.verifier == "李科长"
    assert [(v.event_id, v.outdated) for v in r.verifications] == [(str(no.event_id), False), (str(ok.event_id), True)]
    [late] = [e for e in effects if e.kind == "rectification.verification_outdated"]
    assert late.data["in_force_event_id"] == str(no.event_id)
    assert "rectification.verified" not in [e.kind for e in effects]
    # a rejection, then the redo accepted: the usual way, unchanged
    redo = ev("rectification.completed", "2026-06-10T09:00:00+08:00", rectification_id=R)
    state, _ = replay([ev("enterprise.registered"), ordered(), completed(), rejected("2026-05-02T10:00:00+08:00"), redo,
                       accepted("2026-06-12T10:00:00+08:00")], rules)
    [r] = state.files[E].rectifications
    assert r.status == "verified" and state.files[E].counts.rectifications_open == 0


def test_an_overdue_rectification_still_undone_keeps_weighing(rules):
    """The dynamic entry was dated from the overdue mark and left the window a year on, the rectification still undone."""
    order = ordered()
    state, _ = replay([ev("enterprise.registered"), order, tick("2026-05-02T01:00:00+08:00"), tick("2027-06-01T01:00:00+08:00")], rules)
    f = state.files[E]
    term = next((c for c in f.risk.current.contributions if c.factor == "dynamic.rectification_overdue"), None)
    assert term is not None and term.points == 6 and f"{R} 仍未完成整改，完成前持续计入" in term.detail_zh
    assert term.weighs_until is None  # (no end to say: it ends when it is done)
    # done at last: its lateness leaves the window as any entry does
    late = ev("rectification.completed", "2027-06-05T09:00:00+08:00", rectification_id=R)
    state, _ = replay([ev("enterprise.registered"), order, tick("2026-05-02T01:00:00+08:00"), tick("2027-06-01T01:00:00+08:00"), late], rules)
    assert not [c for c in state.files[E].risk.current.contributions if c.factor == "dynamic.rectification_overdue"]


def test_an_overdue_rectification_handed_in_and_sent_back_a_year_on_weighs_again(rules):
    """(The round's diff review) overdue for over a year, its lateness weighs while undone; handed in, the entry leaves
    the window; sent back by the re-check, it is undone again and weighs again."""
    from tests.test_risk import E as RE, ev as rev, registered

    events = [registered(), rev("rectification.ordered", "2026-03-14T10:00:00+08:00", rectification_id="ZG1", deadline="2026-03-20"),
              rev("clock.tick", "2026-03-22T10:00:00+08:00", "*"), rev("clock.tick", "2027-05-01T10:00:00+08:00", "*")]
    state, _ = replay(events, rules)

    def overdue_points():
        return sum(c.points for c in state.files[RE].risk.current.contributions if c.factor == "dynamic.rectification_overdue")

    assert overdue_points() == 6
    state, _ = step(state, rev("rectification.completed", "2027-05-02T10:00:00+08:00", rectification_id="ZG1"), rules)
    assert overdue_points() == 0
    state, _ = step(state, rev("rectification.verified", "2027-05-03T10:00:00+08:00", rectification_id="ZG1", accepted=False,
                               note="材料不全"), rules)
    assert state.files[RE].rectification("ZG1").status == "rejected" and overdue_points() == 6
