"""A complaint sent again under a new event id, a resolution that arrives before its complaint, and
what the sender hears about them (and about a re-test or an item the fold could not use)."""
from __future__ import annotations

import copy
import uuid

from ingest.lint import accepted_warnings
from processors.step import replay
from schemas.upcast import parse_event
from tests.conftest import golden

E = "E-330110-001"
REG = parse_event(golden("enterprise.registered"))


def _id() -> str:
    return str(uuid.uuid4())


def received(complaint_id: str = "TS-1", at: str = "2026-03-20T11:02:00+08:00", verified: bool = True, **payload):
    doc = golden("complaint.received")
    doc["event_id"], doc["occurred_at"] = _id(), at
    doc["payload"].update(complaint_id=complaint_id, verified=verified, **payload)
    return parse_event(doc)


def resolved(complaint_id: str = "TS-1", at: str = "2026-03-27T16:00:00+08:00", verified: bool = True):
    doc = golden("complaint.resolved")
    doc["event_id"], doc["occurred_at"] = _id(), at
    doc["payload"].update(complaint_id=complaint_id, verified=verified)
    return parse_event(doc)


def kinds(effects, event):
    return [e.kind for e in effects if e.event_id == str(event.event_id)]


def warned(rules, state, event):
    return [w["type"] for w in accepted_warnings(event, rules.catalogue, state.files.get(event.enterprise_id))]


def test_a_complaint_sent_three_times_is_one_complaint_and_no_cluster(rules):
    """The hotline mints a new event id per send attempt: counted three times, one verified complaint
    made a 投诉聚集 (k = 3) and raised the grade."""
    first = received()
    again = [parse_event({**first.model_dump(mode="json", exclude_unset=True), "event_id": _id()}) for _ in range(2)]
    state, effects = replay([REG, first, *again], rules)
    f = state.files[E]
    assert (f.counts.complaints, f.counts.complaints_verified, len(f.complaints)) == (1, 1, 1)
    assert not [e for e in effects if e.kind == "complaint.cluster"]
    repeats = [e for e in effects if e.kind == "complaint.repeated"]
    assert len(repeats) == 2 and all(e.data["same"] and e.data["repeats_event_id"] == str(first.event_id) for e in repeats)
    assert "不重复计数" in repeats[0].data["message_zh"]
    assert warned(rules, state, again[0]) == ["complaint_id_on_file"] and warned(rules, state, first) == []
    # three different complaints still make a cluster
    state, effects = replay([REG, received("TS-1"), received("TS-2"), received("TS-3")], rules)
    assert [e for e in effects if e.kind == "complaint.cluster"]


def test_a_differing_resend_is_said_and_not_counted(rules):
    first = received(verified=False)
    other = received(verified=False, text="另一段文字")
    state, effects = replay([REG, first, other], rules)
    (said,) = [e for e in effects if e.kind == "complaint.repeated"]
    assert said.data["same"] is False and "complaint.resolved" in said.data["message_zh"]
    assert state.files[E].counts.complaints == 1


def test_a_resolution_before_its_complaint_takes_effect_when_it_comes(rules):
    complaint, resolution = received(verified=False), resolved(verified=True)
    in_order, _ = replay([REG, complaint, resolution], rules)
    crossed, effects = replay([REG, resolution, complaint], rules)
    a, b = in_order.files[E], crossed.files[E]
    assert "complaint.unknown_resolved" in kinds(effects, resolution)
    assert b.resolutions_waiting == {}
    assert (b.counts.complaints, b.counts.complaints_verified) == (a.counts.complaints, a.counts.complaints_verified) == (1, 1)
    keep = lambda c: (c.complaint_id, c.verified, c.resolved_at, c.outcome)  # noqa: E731
    assert [keep(c) for c in b.complaints] == [keep(c) for c in a.complaints]
    assert b.complaints[0].resolved_at is not None
    # the sender of the early resolution heard it was kept
    waiting, _ = replay([REG, resolution], rules)
    # (a list since several conclusions may wait for one complaint: each is kept, none overwrites another)
    assert [r.verified for r in waiting.files[E].resolutions_waiting["TS-1"]] == [True]
    assert warned(rules, waiting, resolution) == ["complaint_not_on_file"]


def test_dates_and_enterprises_the_hotline_should_check(rules):
    complaint = received()
    early = resolved(at="2026-03-01T09:00:00+08:00")
    state, _ = replay([REG, complaint, early], rules)
    assert warned(rules, state, early) == ["resolved_before_received"]
    stray = received()
    stray_doc = stray.model_dump(mode="json", exclude_unset=True)
    stray_doc["enterprise_id"] = "E-NOPE-1"
    stray = parse_event(stray_doc)
    state, _ = replay([REG, stray], rules)
    assert warned(rules, state, stray) == ["enterprise_unregistered"]


def _water(at: str, bromate: float | None = None, retest: bool = False, lab: str | None = None, chlorine=None):
    doc = golden("sampling.result")
    doc["event_id"], doc["occurred_at"] = _id(), at
    items = copy.deepcopy(doc["payload"]["items"])
    items[0]["values"], items[0]["lab_verdict"] = [0, 0, 0, 0, 0], "合格"
    if bromate is not None:
        items[2]["values"], items[2]["lab_verdict"] = [bromate], "不合格" if bromate > 0.01 else "合格"
    if chlorine is not None:
        items = [i for i in items if i["item_code"] != chlorine["item_code"]] + [chlorine]
    doc["payload"].update(items=items, retest=retest, **({"lab": lab} if lab else {}))
    return parse_event(doc)


def test_a_lab_hears_why_its_retest_does_not_count(rules):
    original = _water("2026-03-12T15:20:00+08:00", bromate=0.02)
    same_lab = _water("2026-03-20T10:00:00+08:00", bromate=0.005, retest=True)  # the first lab again: not admitted
    state, _ = replay([REG, original, same_lab], rules)
    (w,) = [w for w in accepted_warnings(same_lab, rules.catalogue, state.files[E]) if w["type"] == "retest_inadmissible"]
    assert w["field"] == "payload.retest" and "复检不予采信" in w["reason_zh"] and state.files[E].samples[-1].refused_zh in w["reason_zh"]
    lonely = _water("2026-03-20T10:00:00+08:00", bromate=0.005, retest=True, lab="市食品药品检验研究院")
    state, _ = replay([REG, lonely], rules)
    assert "retest_without_original" in warned(rules, state, lonely)


def test_a_lab_hears_an_item_its_detection_limit_leaves_undetermined(rules):
    chlorine = {"item_code": "free_chlorine", "values": ["ND"], "unit": "mg/L", "detection_limit": 0.1, "lab_verdict": "合格"}
    sample = _water("2026-03-12T15:20:00+08:00", chlorine=chlorine)
    state, _ = replay([REG, sample], rules)
    ws = accepted_warnings(sample, rules.catalogue, state.files[E])
    (w,) = [w for w in ws if w["type"] == "detection_limit_above_limit"]
    assert w["field"] == f"payload.items[{len(sample.payload.items) - 1}]" and "检出限" in w["reason_zh"]


def test_a_resolution_finding_a_complaint_untrue_before_it_arrives_takes_its_points_too(rules):
    """Received verified, its resolution (untrue) came first: the file ends as in the usual order — no
    verified complaint, no risk points for it."""
    complaint, untrue = received(verified=True), resolved(verified=False)
    usual, _ = replay([REG, complaint, untrue], rules)
    crossed, _ = replay([REG, untrue, complaint], rules)
    for state in (usual, crossed):
        f = state.files[E]
        assert f.counts.complaints_verified == 0
        assert not [e for e in f.risk.entries if e[1] == "complaint_verified"]
    assert usual.files[E].risk.score == crossed.files[E].risk.score


def resolution(complaint_id: str = "TSA001", at: str = "2026-03-15T10:00:00+08:00", verified: bool = True, outcome: str = ""):
    doc = golden("complaint.resolved")
    doc["event_id"], doc["occurred_at"] = _id(), at
    doc["payload"].update(complaint_id=complaint_id, verified=verified, outcome=outcome)
    return parse_event(doc)


def _conclusion(state):
    c = state.files[E].complaint("TSA001")
    return c.verified, c.resolved_at, c.resolution_event_id, state.files[E].counts.complaints_verified


def test_a_revised_conclusion_keeps_the_first_and_says_from_what_to_what(rules):
    """The auditor's TSA001: 属实 on 03-15, then 不属实 on 03-25 (原核查结论有误).  The first conclusion, its date
    and its event were gone from the file and the report."""
    complaint = received("TSA001", at="2026-03-10T09:00:00+08:00", verified=False)
    first = resolution(at="2026-03-15T10:00:00+08:00", verified=True, outcome="现场核查属实，已回电 13812345678")
    second = resolution(at="2026-03-25T10:00:00+08:00", verified=False, outcome="原核查结论有误，经复核不属实")
    state, effects = replay([REG, complaint, first, second], rules)
    c = state.files[E].complaint("TSA001")
    assert _conclusion(state) == (False, second.occurred_at, str(second.event_id), 0)
    assert [(r.event_id, r.verified, r.resolved_at, r.outcome) for r in c.resolutions] == [
        (str(first.event_id), True, first.occurred_at, "现场核查属实，已回电 13812345678"),
        (str(second.event_id), False, second.occurred_at, "原核查结论有误，经复核不属实")]
    [revised] = [e for e in effects if e.kind == "complaint.resolution_revised"]
    assert (revised.data["previous_verified"], revised.data["verified"], revised.data["previous_event_id"]) == (True, False, str(first.event_id))
    assert f"核查结论由属实（2026-03-15 办结，事件 {first.event_id}）改为不属实（2026-03-25 办结，事件 {second.event_id}）" in revised.data["message_zh"]
    assert "complaint.unverified" in kinds(effects, second)  # its points go
    assert not [c for c in state.files[E].risk.current.contributions if c.factor == "dynamic.complaint_verified"]
    assert [w["type"] for w in accepted_warnings(second, rules.catalogue, state.files[E])] == ["complaint_resolution_revised"]
    # the readable report shows the earlier conclusion beside the one in force
    from qrisk.credit_report import build_report
    [row] = build_report(state.files[E], rules)["complaints"]
    assert row["verified_zh"] == "不属实（曾按属实计：2026-03-15 至 2026-03-25）"  # (it weighed meanwhile)
    # (masked as the report masks the outcome in force: it is printed and handed on)
    assert "其他办结结论：2026-03-15 属实：现场核查属实，已回电 138****5678；以 2026-03-25 的结论为准" in row["outcome"]
    assert "13812345678" not in str(row)
    assert [r["in_force"] for r in row["resolutions"]] == [False, True]


def test_the_latest_dated_conclusion_is_in_force_whatever_the_order(rules):
    complaint = received("TSA001", at="2026-03-10T09:00:00+08:00", verified=False)
    first = resolution(at="2026-03-15T10:00:00+08:00", verified=True)
    second = resolution(at="2026-03-25T10:00:00+08:00", verified=False)
    in_order, _ = replay([REG, complaint, first, second], rules)
    crossed, effects = replay([REG, complaint, second, first], rules)
    assert _conclusion(crossed) == _conclusion(in_order) == (False, second.occurred_at, str(second.event_id), 0)
    assert crossed.files[E].risk.score == in_order.files[E].risk.score  # no +3 for the 属实 that was revised
    [late] = [e for e in effects if e.kind == "complaint.resolution_outdated"]
    assert late.data["in_force_event_id"] == str(second.event_id) and "以日期较晚的结论为准" in late.data["message_zh"]
    assert len(crossed.files[E].complaint("TSA001").resolutions) == 2
    assert [w["type"] for w in accepted_warnings(first, rules.catalogue, crossed.files[E])] == ["complaint_resolution_outdated"]
    # both before the complaint itself: the same again
    waiting, _ = replay([REG, second, first, complaint], rules)
    assert _conclusion(waiting) == _conclusion(in_order)


def test_the_same_conclusion_sent_again_is_a_repeat(rules):
    complaint = received("TSA001", at="2026-03-10T09:00:00+08:00", verified=False)
    first = resolution(verified=True)
    state, effects = replay([REG, complaint, first, parse_event({**first.model_dump(mode="json", exclude_unset=True), "event_id": _id()})], rules)
    assert len(state.files[E].complaint("TSA001").resolutions) == 1 and state.files[E].counts.complaints_verified == 1
    assert [e.kind for e in effects].count("complaint.resolution_repeated") == 1
    assert [e.kind for e in effects].count("complaint.verified") == 1
