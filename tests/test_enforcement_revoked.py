"""A penalty decision revoked (撤销: 行政复议, 行政诉讼, or corrected by the authority itself).

A due-process review found no way to record it: a second enforcement.decided of the same number was a
duplicate, so a decision revoked on review went on weighing in the grade — and a listing as 严重违法失信 it made
kept the enterprise at D.  ``enforcement.revoked`` keeps the decision on file, marked revoked with the
reference, and takes it out of the score, the listing, the licence and the campaign's checks; its alert closes."""
from __future__ import annotations

import pytest

from processors.step import replay
from processors.warnings import ALERT_KIND, RESOLVED_KIND
from qrisk.credit_report import build_report
from schemas.upcast import parse_event
from tests.conftest import golden
from tests.test_enforcement import E, ev, folded

DECISION = "示范县市监处罚〔2026〕12号"


def revoked(at: str = "2026-08-20T10:00:00+08:00", **payload):
    return ev("enforcement.revoked", at, **payload)


def test_the_golden_revocation_parses_and_folds_after_the_golden_decision(rules):
    event = parse_event(golden("enforcement.revoked"))
    assert event.payload.decision_no == DECISION and event.payload.revoked_by == "reconsideration"
    f, effects = folded(ev("enforcement.decided"), event, rules=rules)
    assert [e.kind for e in effects].count("enforcement.revoked") == 1


def test_a_revoked_decision_stays_on_file_and_weighs_no_more(rules):
    f, effects = folded(ev("enforcement.decided"), rules=rules)
    weighed = f.risk.score
    assert any(c.factor == "dynamic.enforcement" and c.points for c in f.risk.current.contributions)
    f, effects = folded(ev("enforcement.decided"), revoked(), rules=rules)
    (record,) = f.enforcements
    assert (record.revoked_on.isoformat(), record.revoked_by, record.revoked_ref) == ("2026-08-18", "reconsideration", "示范县府复决〔2026〕8号")
    assert f.counts.enforcements == 0 and f.risk.score < weighed
    assert not any(c.factor == "dynamic.enforcement" and c.points for c in f.risk.current.contributions)
    (said,) = [e.data for e in effects if e.kind == "enforcement.revoked"]
    assert said["message_zh"].startswith(f"行政处罚决定书 {DECISION}（2026-05-18）已经行政复议撤销（示范县府复决〔2026〕8号，2026-08-18；")
    # its alert closes, quoting the revocation
    (alert,) = [e.data for e in effects if e.kind == ALERT_KIND and e.data["rule"] == "enforcement.decided"]
    closed = {e.data["dedup_key"]: e.data["note_zh"] for e in effects if e.kind == RESOLVED_KIND}
    assert "已经行政复议撤销" in closed[alert["dedup_key"]] and closed[alert["dedup_key"]].endswith("预警自动关闭")
    # the report keeps it, saying it was revoked
    (row,) = build_report(f, rules)["enforcements"]
    assert row["revoked_zh"].startswith("已经行政复议撤销（示范县府复决〔2026〕8号，2026-08-18；") and row["revoked_zh"].endswith("不再计入")


def test_a_revoked_listing_ends_and_the_score_decides_again(rules):
    f, _ = folded(ev("enforcement.decided", serious_dishonesty=True), rules=rules)
    assert (f.serious_dishonesty, f.risk.grade) == (DECISION, "D")
    f, effects = folded(ev("enforcement.decided", serious_dishonesty=True), revoked(revoked_by="litigation", reference_no="示范县法院（2026）行初12号"),
                        rules=rules)
    assert f.serious_dishonesty is None and f.risk.current.override is None and f.risk.grade == "C"  # one level at a time
    (said,) = [e.data for e in effects if e.kind == "enforcement.revoked"]
    assert said["listing_ended"] and "已经行政诉讼撤销" in said["message_zh"] and "严重违法失信名单列入随之终止" in said["message_zh"]
    assert "严重违法失信" not in {row["label"]: row["value"] for row in build_report(f, rules)["profile"]}["行政处罚"]


def test_a_revoked_licence_revocation_gives_the_licence_back(rules):
    f, effects = folded(ev("enforcement.decided", penalties=[{"kind": "licence_revoked"}]), revoked(revoked_by="self_correction"), rules=rules)
    assert f.licence_revoked is None
    (said,) = [e.data for e in effects if e.kind == "enforcement.revoked"]
    assert said["licence_restored"] and "吊销的许可证恢复" in said["message_zh"] and "行政机关自行纠正" in said["message_zh"]


def test_a_repeat_says_nothing(rules):
    _, effects = folded(ev("enforcement.decided"), revoked(), revoked("2026-08-21T10:00:00+08:00"), rules=rules)
    assert [e.kind for e in effects].count("enforcement.revoked") == 1


def test_a_revocation_before_its_decision_is_kept_and_either_order_gives_the_same_file(rules):
    """A review of the day's diff: a revocation that came first was dropped, and the decision then weighed in full."""
    decision, revocation = ev("enforcement.decided", serious_dishonesty=True), revoked()
    first, effects = folded(revocation, rules=rules)
    (pending,) = [e.data for e in effects if e.kind == "enforcement.revocation_pending"]
    assert "尚无行政处罚决定书 示范县市监处罚〔2026〕12号：撤销已登记" in pending["message_zh"]
    assert list(first.revocations_waiting) == [DECISION]
    early, effects = folded(revocation, decision, rules=rules)
    late, _ = folded(decision, revocation, rules=rules)
    assert [e.kind for e in effects].count("enforcement.revoked") == 1 and not early.revocations_waiting
    assert (early.serious_dishonesty, early.risk.score, early.counts.enforcements) == (late.serious_dishonesty, late.risk.score, 0)
    assert early.enforcements[0].revoked_ref == late.enforcements[0].revoked_ref == "示范县府复决〔2026〕8号"
    # the door tells the bureau, in case the number or the enterprise is wrong
    from ingest.lint import accepted_warnings

    (said,) = accepted_warnings(revocation, rules.catalogue, None)
    assert said["type"] == "revocation_pending" and said["field"] == "payload.decision_no"
    assert accepted_warnings(revocation, rules.catalogue, late) == []



def test_a_replay_with_a_revocation_gives_the_same_state(rules):
    events = [ev("enterprise.registered"), ev("enforcement.decided", serious_dishonesty=True), revoked(),
              ev("clock.tick", "2026-09-01T00:00:00+08:00")]
    first, _ = replay(events, rules)
    again, _ = replay(events, rules)
    assert first.snapshot() == again.snapshot()


def test_a_decision_revoked_after_the_acceptance_leaves_its_check(rules):
    """A review of the day's diff: a review (行政复议) takes months; revoked after the acceptance that checked it,
    the decision still flagged the acceptance (accepted_with_gaps: 行政处罚)."""
    from processors.campaign import progress_row
    from tests.test_campaign import enforcement, ev as cev, whole_campaign

    events = whole_campaign()
    enterprise = events[0].enterprise_id
    late = cev("enforcement.revoked", "2026-12-20T10:00:00+08:00", decision_no="示范县市监处罚〔2026〕31号", revoked_on="2026-12-18")
    state, effects = replay([*events[:-1], enforcement(), events[-1]], rules)
    assert progress_row(state.files[enterprise], rules.policy.campaign)["accepted_with_gaps"] == ["行政处罚"]
    state, effects = replay([*events[:-1], enforcement(), events[-1], late], rules)
    assert progress_row(state.files[enterprise], rules.policy.campaign)["accepted_with_gaps"] == []
    (said,) = [e.data for e in effects if e.kind == "enforcement.revoked"]
    assert said["acceptance_check_withdrawn"] and "提档升级验收中的行政处罚一项不再计入" in said["message_zh"]


def test_a_revocation_dated_after_its_record_is_refused_at_the_door_naming_revoked_on(server):
    """A revocation typed ahead (a decade, or a day) would take the decision out of the grade and the inspection plan
    until then: the door refuses a revoked_on after occurred_at's local date, as it does decided_on and held_on; the same
    day is taken."""
    reg, decision = golden("enterprise.registered"), golden("enforcement.decided")
    assert server.post("/v1/events", json=[reg, decision]).status_code in (200, 202)
    ahead = golden("enforcement.revoked")  # recorded 2026-08-20 10:00 (+08:00)
    for day in ("2026-08-21", "2036-08-20"):
        ahead["payload"]["revoked_on"] = day
        resp = server.post("/v1/events", json=[ahead])
        assert resp.status_code == 422, resp.text
        (error,) = resp.json()["errors"]
        assert error["field"] == "payload.revoked_on"
        assert f"撤销日期 {day} 晚于记录时间 2026-08-20" in error["reason_zh"] and "after the event was recorded" in error["reason"]
    same_day = golden("enforcement.revoked")
    same_day["event_id"] = "6e7f8091-ab2c-4d3e-9f40-5b6c7d8e9fa1"
    same_day["payload"]["revoked_on"] = "2026-08-20"
    resp = server.post("/v1/events", json=[same_day])
    assert resp.status_code in (200, 202), resp.text
    enforcements = server.get(f"/v1/enterprises/{reg['enterprise_id']}").json()["enforcements"]
    assert [str(r["revoked_on"]) for r in enforcements] == ["2026-08-20"]
