"""Five rectification (整改) findings of a supervisor's review, rebuilt with the real fold (step), the alert book and the
door's warnings (ingest.lint.accepted_warnings, what POST /v1/events and qrisk import answer), the first also against a
real `qrisk run`:

1. a deadline before the order's own date was accepted — overdue the day it was filed — and the order sent again with
   the right deadline was a silent rectification.duplicate_order;
2. a completion or verification under an id not (yet) ordered was dropped without a word, and the order coming later
   went overdue although the enterprise had finished in time;
3. an accepted verification dated within the deadline but arriving after a tick left the rectification overdue, and
   one after the deadline with no completion and no tick between never made it overdue;
4. a redo deadline (重新限期) was never enforced once the rectification had been late;
5. the credit report hid a rejected 复查 the acceptance after it replaced, though it still costs credit points."""
from __future__ import annotations

import uuid

import httpx

from alerts.lifecycle import AlertBook, Enterprise
from ingest.lint import accepted_warnings
from processors.credit_file import CountyState
from processors.step import step
from qrisk.credit_report import build_report, render_text
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


def order(at: str = "2026-04-10T11:00:00+08:00", deadline: str = "2026-04-30", **more):
    return ev("rectification.ordered", at, rectification_id=R, deadline=deadline, what="完善消毒制度并留存记录", cause="检查 JC-T01-0410",
              **more)


def completed(at: str, rid: str = R):
    return ev("rectification.completed", at, rectification_id=rid, evidence="消毒记录台账照片3张")


def verified(at: str, accepted: bool = True, verifier: str = "王检查员", note: str = "", **more):
    return ev("rectification.verified", at, rectification_id=R, accepted=accepted, verifier=verifier, note=note, **more)


def tick(at: str):
    return ev("clock.tick", at)


class County:
    """The credit file and the alert book, fed event by event as the runtime does."""

    def __init__(self, rules):
        self.rules, self.state, self.book, self.effects = rules, CountyState(), AlertBook(), []

    def feed(self, *events):
        out = []
        for event in events:
            self.state, effects = step(self.state, event, self.rules)
            self.book.apply(event, effects, self.rules.policy, lambda eid: Enterprise("清源桶装水厂", "良渚街道", "packaged_water"))
            out += effects
        self.effects += out
        return out

    @property
    def file(self):
        return self.state.files[E]

    def overdue_alerts(self, active: bool = True):
        return [a for a in self.book.alerts.values() if a.rule == "rectification.overdue"
                and (not active or a.state not in ("verified", "closed"))]

    def factors(self):
        return {c.factor: c.points for c in self.file.risk.current.contributions if c.points}


# --------------------------------------------------------------------------- 1. a wrong deadline, and its correction


def _post(server, body):
    return httpx.post(server.url + "/v1/events", json=body, headers=server.headers, timeout=30)


def test_a_deadline_before_its_order_is_refused_at_the_door_and_a_correction_is_said(server):
    assert _post(server, golden("enterprise.registered")).status_code == 200
    bad = golden("rectification.ordered")  # ordered 2026-03-25 11:00 (+08:00)
    bad["payload"]["deadline"] = "2026-03-24"
    resp = _post(server, bad)
    assert resp.status_code == 422
    errors = {e["field"]: e for e in resp.json()["errors"]}
    assert "整改期限 2026-03-24 早于下达日期 2026-03-25" in errors["payload.deadline"]["reason_zh"]
    # a verification: a new deadline before its own day, and one beside an acceptance (ignored until now), are refused
    for accepted, new_deadline in ((False, "2026-04-27"), (True, "2026-05-20")):
        doc = golden("rectification.verified")  # checked 2026-04-28
        doc["event_id"] = str(uuid.uuid4())
        doc["payload"].update(accepted=accepted, new_deadline=new_deadline)
        resp = _post(server, doc)
        assert resp.status_code == 422 and "payload.new_deadline" in {e["field"] for e in resp.json()["errors"]}, (accepted, resp.text)
    # the order on its own day is fine; sent again with a later deadline (a 延期) it is a correction, and said
    ok = golden("rectification.ordered")
    assert _post(server, ok).status_code == 200
    again = golden("rectification.ordered")
    again["event_id"], again["occurred_at"] = str(uuid.uuid4()), "2026-04-20T09:00:00+08:00"
    again["payload"]["deadline"] = "2026-05-24"
    resp = _post(server, again)
    assert resp.status_code == 200, resp.text
    [w] = resp.json()["events"][0]["warnings"]
    assert (w["type"], w["field"]) == ("rectification_id_on_file", "payload.deadline") and "由 2026-04-24 改为 2026-05-24" in w["reason_zh"]
    file = server.get(f"/v1/enterprises/{E}").json()
    assert [r["deadline"] for r in file["rectifications"]] == ["2026-05-24"]
    # a completion under a mistyped id is kept, and said
    lost = golden("rectification.completed")
    lost["payload"]["rectification_id"] = "ZG2026-0024"
    resp = _post(server, lost)
    [w] = resp.json()["events"][0]["warnings"]
    assert (w["type"], w["field"]) == ("rectification_unknown", "payload.rectification_id")
    assert w["reason_zh"].startswith("本企业名下无整改编号 ZG2026-0024") and "请核对整改编号和企业编号" in w["reason_zh"]


def test_a_deadline_before_its_order_already_in_a_log_re_reads():
    doc = golden("rectification.ordered")
    doc["payload"]["deadline"] = "2026-03-01"
    assert parse_event(doc).payload.deadline.isoformat() == "2026-03-01"  # (the check is the door's)


def test_a_corrected_deadline_withdraws_the_overdue_mark_the_wrong_one_set(rules):
    county = County(rules)
    first = order()
    county.feed(ev("enterprise.registered"), first, tick("2026-05-02T01:00:00+08:00"))
    assert county.file.rectifications[0].overdue and county.overdue_alerts()
    assert {"dynamic.rectification_overdue", "credit.rectification_overdue"} <= county.factors().keys()
    fixed = order("2026-05-03T10:00:00+08:00", deadline="2026-05-31")
    said = county.feed(fixed)
    f = county.file
    [r] = f.rectifications
    assert (r.deadline.isoformat(), r.overdue, r.status, r.event_id) == ("2026-05-31", False, "open", str(fixed.event_id))
    assert (f.counts.rectifications_open, f.counts.rectifications_overdue) == (1, 0)
    assert not {"dynamic.rectification_overdue", "credit.rectification_overdue"} & county.factors().keys()
    assert not county.overdue_alerts() and county.overdue_alerts(active=False)[0].state == "closed"
    [corrected] = [e.data for e in said if e.kind == "rectification.corrected"]
    assert corrected["changes"] == {"deadline": {"from": "2026-04-30", "to": "2026-05-31"}} and corrected["corrects_event_id"] == str(first.event_id)
    assert "rectification.overdue_withdrawn" in [e.kind for e in said]
    [w] = accepted_warnings(fixed, rules.catalogue, f)
    assert (w["type"], w["field"]) == ("rectification_id_on_file", "payload.deadline") and "按更正处理" in w["reason_zh"]
    # the same order again is a repeat; one that differs but is dated before the order in force is kept, not applied
    same = parse_event({**fixed.model_dump(mode="json", exclude_unset=True), "event_id": str(uuid.uuid4())})
    older = order("2026-04-11T10:00:00+08:00", deadline="2026-06-30")
    said = county.feed(same, older)
    assert [e.data["same"] for e in said if e.kind == "rectification.duplicate_order"] == [True, False]
    assert county.file.rectifications[0].deadline.isoformat() == "2026-05-31"
    assert "内容相同" in accepted_warnings(same, rules.catalogue, county.file)[0]["reason_zh"]
    assert "存档，不采用" in accepted_warnings(older, rules.catalogue, county.file)[0]["reason_zh"]
    # past the corrected deadline it is overdue by that one
    said = county.feed(tick("2026-06-02T01:00:00+08:00"))
    assert [e.data["deadline"] for e in said if e.kind == "rectification.overdue"] == ["2026-05-31"]


# --------------------------------------------------------------------------- 2. a completion before its order


def test_a_completion_before_its_order_waits_for_it(rules):
    county = County(rules)
    done = completed("2026-04-25T09:00:00+08:00")
    said = county.feed(ev("enterprise.registered"), done)
    assert [e.data.get("waiting") for e in said if e.kind == "rectification.unknown"] == [True]
    assert [w.event_id for w in county.file.rectifications_waiting[R]] == [str(done.event_id)]
    [w] = accepted_warnings(done, rules.catalogue, county.file)
    assert (w["type"], w["field"]) == ("rectification_unknown", "payload.rectification_id")
    report = build_report(county.file, rules)
    [row] = report["rectifications_waiting"]
    assert (row["rectification_id"], row["kind_zh"]) == (R, "整改完成")
    assert "待匹配的整改记录" in render_text(report)
    county.feed(order(), tick("2026-05-02T01:00:00+08:00"))
    f = county.file
    [r] = f.rectifications
    assert (r.status, r.overdue, r.evidence, r.completed_at) == ("completed", False, "消毒记录台账照片3张", done.occurred_at)
    assert f.rectifications_waiting == {} and f.counts.rectifications_overdue == 0 and not county.overdue_alerts(active=False)
    assert accepted_warnings(completed("2026-04-26T09:00:00+08:00"), rules.catalogue, f) == []  # (on file now: nothing to say)


def test_a_verification_before_its_order_waits_too(rules):
    county = County(rules)
    county.feed(ev("enterprise.registered"), completed("2026-04-25T09:00:00+08:00"), verified("2026-04-28T14:00:00+08:00"), order(),
                tick("2026-05-02T01:00:00+08:00"))
    [r] = county.file.rectifications
    assert (r.status, r.overdue, r.verifier) == ("verified", False, "王检查员") and county.file.counts.rectifications_open == 0


# --------------------------------------------------------------------------- 3. an accepted verification and the deadline


def test_an_acceptance_in_time_arriving_late_withdraws_the_overdue_mark(rules):
    county = County(rules)
    county.feed(ev("enterprise.registered"), order(), tick("2026-05-02T01:00:00+08:00"))
    assert county.file.rectifications[0].overdue
    said = county.feed(verified("2026-04-28T14:00:00+08:00"))
    f = county.file
    assert not f.rectifications[0].overdue and f.rectifications[0].status == "verified"
    assert (f.counts.rectifications_open, f.counts.rectifications_overdue) == (0, 0)
    assert not {"dynamic.rectification_overdue", "credit.rectification_overdue"} & county.factors().keys()
    [w] = [e.data for e in said if e.kind == "rectification.overdue_withdrawn"]
    assert "于 2026-04-28 复查通过，在期限 2026-04-30 之内" in w["message_zh"]


def test_an_acceptance_after_the_deadline_with_no_completion_is_overdue(rules):
    county = County(rules)
    said = county.feed(ev("enterprise.registered"), order(), verified("2026-05-20T14:00:00+08:00"))
    f = county.file
    assert [e.data["deadline"] for e in said if e.kind == "rectification.overdue"] == ["2026-04-30"]
    assert f.rectifications[0].overdue and f.rectifications[0].status == "verified" and f.counts.rectifications_overdue == 0
    assert county.factors().get("credit.rectification_overdue") == 2 and county.factors().get("dynamic.rectification_overdue") == 6


# --------------------------------------------------------------------------- 4. a redo deadline after a first lateness


def test_a_redo_deadline_is_enforced_after_a_first_lateness(rules):
    county = County(rules)
    county.feed(ev("enterprise.registered"), order(), tick("2026-05-02T01:00:00+08:00"), completed("2026-05-03T09:00:00+08:00"),
                verified("2026-05-05T14:00:00+08:00", accepted=False, verifier="李科长", note="消毒记录系补填", new_deadline="2026-05-20"))
    before = county.factors()
    said = county.feed(tick("2026-05-21T01:00:00+08:00"))
    [again] = [e.data for e in said if e.kind == "rectification.overdue"]
    assert (again["deadline"], again["redo"], again["days_overdue"]) == ("2026-05-20", True, 1)
    [r] = county.file.rectifications
    assert (r.overdue, r.overdue_by.isoformat(), r.overdue_before.isoformat()) == (True, "2026-05-20", "2026-04-30")
    assert county.file.counts.rectifications_overdue == 1
    [alert] = county.overdue_alerts()
    assert "重新整改期限 2026-05-20" in alert.message_zh
    # one lateness of one rectification: no second credit entry, one dynamic entry
    assert county.factors()["credit.rectification_overdue"] == before["credit.rectification_overdue"] == 2
    assert county.factors()["dynamic.rectification_overdue"] == 6
    assert not [e for e in county.feed(tick("2026-05-22T01:00:00+08:00")) if e.kind == "rectification.overdue"]  # (once)
    # the redo done within its deadline, its record late: the first lateness stands
    county.feed(completed("2026-05-19T09:00:00+08:00"))
    [r] = county.file.rectifications
    assert (r.overdue, r.overdue_by.isoformat(), r.overdue_before) == (True, "2026-04-30", None)


# --------------------------------------------------------------------------- 5. the report shows every 复查


def test_the_report_lists_every_verification_and_the_deadline_it_is_overdue_by(rules):
    county = County(rules)
    county.feed(ev("enterprise.registered"), order(deadline="2026-04-21"), completed("2026-04-20T09:00:00+08:00"),
                verified("2026-04-22T10:00:00+08:00", accepted=False, verifier="李科长", note="消毒记录系补填", new_deadline="2026-05-15"),
                verified("2026-05-12T10:00:00+08:00"), verified("2026-05-01T10:00:00+08:00", accepted=False, verifier="赵科员"))
    report = build_report(county.file, rules)
    [row] = report["rectifications"]
    assert row["verifications_zh"] == ("2026-04-22 李科长 未通过（消毒记录系补填；重新限期 2026-05-15）；2026-05-01 赵科员 未通过（晚到未采用）；"
                                       "2026-05-12 王检查员 通过")
    assert row["verifications_zh"] in render_text(report)
    county = County(rules)
    county.feed(ev("enterprise.registered"), order(), tick("2026-05-02T01:00:00+08:00"), completed("2026-05-03T09:00:00+08:00"),
                verified("2026-05-05T14:00:00+08:00", accepted=False, verifier="李科长", new_deadline="2026-05-20"),
                tick("2026-05-21T01:00:00+08:00"))
    [row] = build_report(county.file, rules)["rectifications"]
    assert (row["deadline"], row["overdue_by"]) == ("2026-04-30（重新限期 2026-05-20）", "2026-05-20")
