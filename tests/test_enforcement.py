"""Enforcement decisions (行政处罚决定) and interviews (约谈): the contract, the credit file, the risk
grade (points, and the listing as 严重违法失信 that goes straight to D), the warning, the report."""
from __future__ import annotations

import json
import uuid

import httpx
import pytest

from ingest.validate import decode_body
from processors.credit_file import CountyState
from processors.step import Rules, replay, step
from qrisk.credit_report import build_report, render_text
from schemas.events import EnforcementDecidedEvent, InterviewHeldEvent
from schemas.policy import Policy
from schemas.upcast import parse_event
from tests.conftest import Server, golden

E = "E-330110-001"
_n = 0


def ev(event_type: str, at: str | None = None, **payload):
    global _n
    _n += 1
    doc = golden(event_type)
    doc["event_id"] = str(uuid.UUID(int=0x9000_0000 + _n, version=4))
    if at is not None:
        doc["occurred_at"] = at
    doc["payload"].update(payload)
    return parse_event(doc)


def folded(*events, rules):
    state, effects = replay([ev("enterprise.registered"), *events], rules)
    return state.files[E], effects


# --------------------------------------------------------------------------- the contract


def test_the_golden_payloads_parse_as_their_types():
    decision, interview = parse_event(golden("enforcement.decided")), parse_event(golden("interview.held"))
    assert isinstance(decision, EnforcementDecidedEvent) and isinstance(interview, InterviewHeldEvent)
    assert [p.kind for p in decision.payload.penalties] == ["warning", "confiscation", "fine"]
    assert decision.payload.penalties[2].amount_yuan == 50000 and decision.payload.decision_no == "示范县市监处罚〔2026〕12号"
    assert str(interview.payload.related_event_ids[0]) == golden("inspection.completed")["event_id"]


def _errors(mutate, event_type: str = "enforcement.decided") -> dict[str, dict]:
    doc = golden(event_type)
    mutate(doc["payload"])
    events, rejected = decode_body(json.dumps(doc, ensure_ascii=False).encode())
    assert not events
    return {e["field"]: e for e in rejected[0].errors}


@pytest.mark.parametrize("mutate, field, kind, en, zh", [
    (lambda p: p["penalties"][2].__setitem__("amount_yuan", -50000), "payload.penalties[2].amount_yuan", "greater_than",
     "greater than 0", "数值过小（应 > 0）"),
    (lambda p: p["penalties"][0].__setitem__("kind", "caution"), "payload.penalties[0].kind", "literal_error",
     "'licence_revoked'", "取值不在允许范围内，应为 'warning'"),
    (lambda p: p["penalties"][2].pop("amount_yuan"), "payload.penalties[2].amount_yuan", "value_error",
     "a fine needs amount_yuan", "罚款须注明金额"),
    (lambda p: p["penalties"][0].__setitem__("amount_yuan", 200), "payload.penalties[0].amount_yuan", "value_error",
     "carries no amount_yuan", "不应注明金额"),
    (lambda p: p["penalties"][2].__setitem__("amount_yuan", "50000"), "payload.penalties[2].amount_yuan", "float_type",
     "number", "应为数字"),
    (lambda p: p.__setitem__("penalties", []), "payload.penalties", "too_short", "at least 1", "条目过少"),
    (lambda p: p.__setitem__("decided_on", "1747526400"), "payload.decided_on", "value_error", "ISO-8601 date", "应为 YYYY-MM-DD 格式的日期"),
    (lambda p: p.__setitem__("decided_on", "2026-05-18T00:00:00"), "payload.decided_on", "value_error", "ISO-8601 date", "应为 YYYY-MM-DD 格式的日期"),
    (lambda p: p.pop("legal_basis"), "payload.legal_basis", "missing", "required", "缺少必填字段"),
])
def test_a_bad_decision_is_refused_at_the_door_naming_the_field(mutate, field, kind, en, zh):
    errors = _errors(mutate)
    assert field in errors, errors
    e = errors[field]
    assert e["type"] == kind and en in e["reason"] and zh in e["reason_zh"], e


@pytest.mark.parametrize("mutate, field, zh", [
    (lambda p: p.__setitem__("follow_up_by", "2026-04-01"), "payload.follow_up_by", "早于约谈日期 2026-04-08"),
    (lambda p: p.__setitem__("held_on", "08/04/2026"), "payload.held_on", "应为 YYYY-MM-DD 格式的日期"),
    (lambda p: p["related_event_ids"].append("not-a-uuid"), "payload.related_event_ids[1]", "应为 UUID"),
    (lambda p: p.__setitem__("reason", ""), "payload.reason", "文本过短"),
])
def test_a_bad_interview_is_refused_at_the_door_naming_the_field(mutate, field, zh):
    errors = _errors(mutate, "interview.held")
    assert field in errors and zh in errors[field]["reason_zh"], errors


def test_the_exported_schema_lists_the_penalty_kinds(tmp_path):
    from schemas.export import export

    export(tmp_path)
    schema = json.loads((tmp_path / "enforcement.decided.schema.json").read_text(encoding="utf-8"))
    assert schema["$defs"]["Penalty"]["properties"]["kind"]["enum"] == ["warning", "fine", "confiscation", "suspension", "licence_revoked", "other"]
    assert schema["examples"] == [golden("enforcement.decided")]


# --------------------------------------------------------------------------- the credit file


def test_the_credit_file_keeps_decisions_and_interviews_with_counts(rules):
    f, effects = folded(ev("interview.held"), ev("enforcement.decided"), rules=rules)
    assert (f.counts.enforcements, f.counts.interviews) == (1, 1)
    [decision] = f.enforcements
    assert decision.decision_no == "示范县市监处罚〔2026〕12号" and decision.fined_yuan == 50000 and decision.sample_nos == ["DC26330110000123"]
    [interview] = f.interviews
    assert interview.held_by == "示范县市场监督管理局" and interview.follow_up_by.isoformat() == "2026-05-08"
    assert f.serious_dishonesty is None and f.licence_revoked is None
    kinds = [e.kind for e in effects]
    assert "enforcement.decided" in kinds and "interview.held" in kinds
    # the same decision number again is kept out and said so
    f, effects = folded(ev("enforcement.decided"), ev("enforcement.decided"), rules=rules)
    assert f.counts.enforcements == 1 and any(e.kind == "enforcement.duplicate_decision" for e in effects)


def test_a_revoked_licence_is_on_file_and_in_the_report(rules):
    f, _ = folded(ev("enforcement.decided", penalties=[{"kind": "licence_revoked"}, {"kind": "fine", "amount_yuan": 100000}]), rules=rules)
    assert f.licence_revoked == "示范县市监处罚〔2026〕12号"
    profile = {row["label"]: row["value"] for row in build_report(f, rules)["profile"]}
    assert profile["许可证编号"].endswith("（已于 2026-05-18 被吊销，示范县市监处罚〔2026〕12号）")


def _tick(at: str):
    from schemas.events import ClockTick
    return ClockTick.model_validate({"event_id": str(uuid.uuid4()), "event_type": "clock.tick", "enterprise_id": "*", "occurred_at": at,
                                     "source": {"kind": "system", "id": "clock"}, "payload": {}})


@pytest.mark.parametrize("penalties, closes", [([{"kind": "licence_revoked"}], True), ([{"kind": "suspension"}], False)])
def test_a_revoked_licence_closes_the_missing_data_alerts_and_no_more_are_raised(rules, penalties, closes):
    """吊销许可证: the enterprise may no longer produce, so routine samples and inspections are no longer
    awaited; a suspension (责令停产停业) ends, and they are."""
    from alerts.lifecycle import AlertBook, Enterprise

    state, book, changes = CountyState(), AlertBook(), []

    def feed(event):
        nonlocal state
        state, effects = step(state, event, rules)
        changes.extend(book.apply(event, effects, rules.policy, lambda eid: Enterprise("清源桶装水厂", "良渚街道", "packaged_water")))
        return effects

    feed(ev("enterprise.registered"))
    feed(_tick("2027-01-20T00:00:00+08:00"))  # nothing sampled or inspected since registration on 2026-01-05
    gaps = [a for a in book.alerts.values() if a.rule == "data.missing"]
    assert {a.evidence["what"] for a in gaps} >= {"sampling"} and all(a.state == "open" for a in gaps)
    feed(ev("enforcement.decided", "2027-02-01T15:00:00+08:00", decided_on="2027-02-01", penalties=penalties))
    if closes:
        assert all(a.state == "closed" for a in gaps)
        note = gaps[0].steps[-1].note
        assert note.startswith("行政处罚决定书 示范县市监处罚〔2026〕12号（2027-02-01）已吊销许可证") and "按无证生产查处" in note
        assert not state.files[E].risk.missing
    else:
        assert all(a.state == "open" for a in gaps)
    feed(_tick("2028-06-01T00:00:00+08:00"))  # more than a year on: nothing new is awaited from a revoked licence
    known = {a.alert_id for a in gaps}  # (closed long ago, they may have left the book by now)
    assert not [a for a in book.alerts.values() if a.rule == "data.missing" and a.alert_id not in known]
    assert bool(state.files[E].risk.missing) is not closes
    if closes:  # licensed again (a new licence number): routine supervision is awaited again
        feed(ev("enterprise.updated", "2028-07-01T09:00:00+08:00", licence_no="SC10633010200099"))
        assert state.files[E].licence_revoked is None
        feed(_tick("2029-08-01T00:00:00+08:00"))
        assert [a for a in book.alerts.values() if a.rule == "data.missing" and a.alert_id not in known]


def test_a_snapshot_restores_the_records(rules):
    state, _ = replay([ev("enterprise.registered"), ev("interview.held"), ev("enforcement.decided", serious_dishonesty=True)], rules)
    again = CountyState.restore(state.snapshot())
    assert again.snapshot() == state.snapshot()
    assert again.files[E].enforcements[0].penalties[2].amount_yuan == 50000 and again.files[E].serious_dishonesty


# --------------------------------------------------------------------------- risk


def test_points_by_the_heaviest_penalty_and_per_interview(rules):
    # registered: static 30 + credit 8 = 38 (B).  An interview +4; a decision whose heaviest penalty is a fine +6
    f, _ = folded(ev("interview.held"), rules=rules)
    assert f.risk.score == 42
    f, _ = folded(ev("interview.held"), ev("enforcement.decided"), rules=rules)
    assert (f.risk.score, f.risk.grade) == (48, "C")
    terms = {c.factor: c for c in f.risk.current.contributions}
    assert terms["dynamic.enforcement"].points == 6 and terms["dynamic.enforcement"].label_zh == "行政处罚"
    assert "示范县市监处罚〔2026〕12号（最重处罚罚款，计 6 分）" in terms["dynamic.enforcement"].detail_zh
    assert terms["dynamic.interview"].points == 4 and "YT2026-007" in terms["dynamic.interview"].detail_zh
    assert terms["dynamic.enforcement"].event_ids == [f.enforcements[0].event_id]
    # a suspension weighs more, a revocation most
    f, _ = folded(ev("enforcement.decided", penalties=[{"kind": "suspension", "note": "责令停产停业 15 日"}]), rules=rules)
    assert f.risk.score == 38 + 12
    f, _ = folded(ev("enforcement.decided", penalties=[{"kind": "licence_revoked"}]), rules=rules)
    assert f.risk.score == 38 + 20


def test_enforcement_points_are_capped_and_leave_the_window(rules):
    events = [ev("enforcement.decided", f"2026-0{m}-10T10:00:00+08:00", decision_no=f"D{m}", decided_on=f"2026-0{m}-10",
                 penalties=[{"kind": "suspension"}]) for m in (2, 3)]
    f, _ = folded(*events, rules=rules)
    term = next(c for c in f.risk.current.contributions if c.factor == "dynamic.enforcement")
    assert (term.raw, term.points) == (24, 20) and "按上限 20 分计" in term.detail_zh
    # a year and more later only a tick's clock: both decisions left the 365-day window
    state, _ = replay([ev("enterprise.registered"), *events, ev("clock.tick", "2027-03-15T00:00:00+08:00")], rules)
    assert not [c for c in state.files[E].risk.current.contributions if c.factor == "dynamic.enforcement"]


def test_a_listing_as_serious_dishonesty_goes_straight_to_d(rules):
    f, effects = folded(ev("enforcement.decided", serious_dishonesty=True), rules=rules)
    assert f.serious_dishonesty == "示范县市监处罚〔2026〕12号"
    current = f.risk.current
    assert (f.risk.grade, current.override, current.previous) == ("D", "serious_dishonesty", "B")
    assert rules.policy.risk.band(current.score) == "B"  # the score alone says B; and B to D is not one level at a time
    [listed] = [c for c in current.contributions if c.factor == "credit.serious_dishonesty"]
    assert listed.event_ids == [f.enforcements[0].event_id] and "示范县市监处罚〔2026〕12号" in listed.detail_zh
    from processors.risk import reasons_zh

    assert reasons_zh(current)[0].startswith("列入严重违法失信名单：行政处罚决定书 示范县市监处罚〔2026〕12号")
    # it stays D when the decision's points have left the window
    state, _ = replay([ev("enterprise.registered"), ev("enforcement.decided", serious_dishonesty=True),
                       ev("clock.tick", "2027-09-01T00:00:00+08:00")], rules)
    assert state.files[E].risk.grade == "D"


def test_a_listing_by_decision_ends_three_years_on_and_the_score_decides_again(rules):
    decided = ev("enforcement.decided", serious_dishonesty=True)  # decided on 2026-05-18
    events = [ev("enterprise.registered"), decided, ev("clock.tick", "2029-05-17T12:00:00+08:00")]
    state, _ = replay(events, rules)
    f = state.files[E]
    assert f.risk.grade == "D"  # the last day of the third year: still listed
    listed = [c for c in f.risk.current.contributions if c.factor == "credit.serious_dishonesty"]
    assert listed and listed[0].detail_zh.endswith("直接定为 D 级（列入至 2029-05-18）")
    profile = {row["label"]: row["value"] for row in build_report(f, rules)["profile"]}
    assert profile["行政处罚"].endswith("；已列入严重违法失信名单（示范县市监处罚〔2026〕12号，至 2029-05-18）")
    # three years on, a clock tick re-grades by the score (one level at a time) and the report says the listing ended
    state, effects = replay([ev("clock.tick", "2029-05-18T00:30:00+08:00")], rules, state)
    f = state.files[E]
    current = f.risk.current
    assert current.override is None and f.risk.grade == "C" and current.previous == "D"
    assert not [c for c in current.contributions if c.factor == "credit.serious_dishonesty"]
    assert any(e.kind == "risk.graded" and e.data["grade_changed"] for e in effects)
    profile = {row["label"]: row["value"] for row in build_report(f, rules)["profile"]}
    assert profile["行政处罚"].endswith("；曾列入严重违法失信名单（示范县市监处罚〔2026〕12号），已于 2029-05-18 期满移出")
    # the policy sets the term; an id the policy lists stays D regardless
    longer = Rules(rules.catalogue, Policy.model_validate({"risk": {"credit": {"serious_dishonesty_years": 5}}}))
    assert replay([*events, ev("clock.tick", "2029-06-01T00:00:00+08:00")], longer)[0].files[E].risk.grade == "D"
    listed_by_policy = Rules(rules.catalogue, Policy.model_validate({"risk": {"credit": {"serious_dishonesty": [E]}}}))
    assert replay([*events, ev("clock.tick", "2029-06-01T00:00:00+08:00")], listed_by_policy)[0].files[E].risk.grade == "D"


def test_every_listing_runs_its_own_term_whatever_order_the_decisions_come_in(rules):
    first = ev("enforcement.decided", serious_dishonesty=True)  # 2026-05-18: listed to 2029-05-18
    again = ev("enforcement.decided", "2029-09-01T15:00:00+08:00", decision_no="示范县市监处罚〔2029〕3号", decided_on="2029-09-01",
               serious_dishonesty=True)  # listed again after the first term: to 2032-09-01
    later = ev("clock.tick", "2029-10-01T00:00:00+08:00")
    for order in ([first, again], [again, first]):  # a back-filled older decision must not end the newer listing
        state, _ = replay([ev("enterprise.registered"), *order, later], rules)
        f = state.files[E]
        assert f.risk.grade == "D" and f.risk.current.override == "serious_dishonesty", order
        assert f.serious_dishonesty == "示范县市监处罚〔2029〕3号"
        [listed] = [c for c in f.risk.current.contributions if c.factor == "credit.serious_dishonesty"]
        assert "示范县市监处罚〔2029〕3号" in listed.detail_zh and listed.detail_zh.endswith("（列入至 2032-09-01）")
    # listed again during the first term: the listing runs to the later end
    during = ev("enforcement.decided", "2028-01-10T15:00:00+08:00", decision_no="示范县市监处罚〔2028〕1号", decided_on="2028-01-10",
                serious_dishonesty=True)
    state, _ = replay([ev("enterprise.registered"), first, during, ev("clock.tick", "2030-06-01T00:00:00+08:00")], rules)
    assert state.files[E].risk.grade == "D"


def test_the_policy_sets_the_points(rules):
    policy = Policy.model_validate({"risk": {"dynamic": {"enforcement": {"by_penalty": {"fine": 9}, "cap": 30},
                                                          "interview": {"points": 1, "cap": 1}}}})
    f, _ = folded(ev("interview.held"), ev("enforcement.decided"), rules=Rules(rules.catalogue, policy))
    terms = {c.factor: c.points for c in f.risk.current.contributions}
    # penalties the policy does not weigh score 0: the fine decides
    assert terms["dynamic.enforcement"] == 9 and terms["dynamic.interview"] == 1


# --------------------------------------------------------------------------- the warning


def _warnings(effects, rule="enforcement.decided"):
    return [e.data for e in effects if e.kind == "warning.raised" and e.data["rule"] == rule]


def test_a_decision_tells_the_supervisor_with_number_date_violation_and_penalties(rules):
    _, effects = folded(ev("enforcement.decided"), rules=rules)
    [w] = _warnings(effects)
    assert w["severity"] == "medium" and w["title_zh"] == "行政处罚决定"
    assert w["dedup_key"] == f"{E}:enforcement.decided:示范县市监处罚〔2026〕12号"
    msg = w["message_zh"]
    assert "2026-05-18 作出行政处罚决定（示范县市监处罚〔2026〕12号）" in msg
    assert "违法行为：生产的饮用纯净水" in msg and "货值金额 3780 元；" in msg  # (its own full stop dropped)
    assert "处罚：警告；没收违法生产经营的饮用纯净水 210 桶（3780 元）；罚款 50000 元。" in msg
    assert "warning; confiscation of 3780 yuan; fine of 50000 yuan" in w["message_en"]
    assert w["evidence"]["event_ids"] and w["evidence"]["sample_nos"] == ["DC26330110000123"]


def test_penalties_read_as_a_decision_words_them():
    from processors.warnings import penalties_text
    from schemas.events import Penalty

    zh, _ = penalties_text([Penalty(kind="warning"), Penalty(kind="confiscation", amount_yuan=2539, note="没收违法所得"),
                            Penalty(kind="confiscation", note="没收违法生产经营的月饼 48 千克"), Penalty(kind="fine", amount_yuan=50000, note="罚款5万元"),
                            Penalty(kind="fine", amount_yuan=20000), Penalty(kind="suspension", note="责令停产停业10日")])
    assert zh == "警告；没收违法所得 2539 元；没收违法生产经营的月饼 48 千克；罚款5万元；罚款 20000 元；责令停产停业10日"
    # a note whose amount differs from the recorded one shows both ("5万" is not in "15万", "780元" not in "3780元")
    zh, _ = penalties_text([Penalty(kind="fine", amount_yuan=50000, note="罚款15万元"),
                            Penalty(kind="confiscation", amount_yuan=780, note="没收违法所得3780元")])
    assert zh == "罚款15万元（记录金额 50000 元）；没收违法所得3780元（记录金额 780 元）"


@pytest.mark.parametrize("penalties, serious, severity", [
    ([{"kind": "warning"}], False, "low"),
    ([{"kind": "warning"}, {"kind": "suspension"}], False, "high"),
    ([{"kind": "licence_revoked"}], False, "critical"),
    ([{"kind": "warning"}], True, "critical"),
])
def test_severity_by_the_heaviest_penalty_or_the_listing(rules, penalties, serious, severity):
    _, effects = folded(ev("enforcement.decided", penalties=penalties, serious_dishonesty=serious), rules=rules)
    [w] = _warnings(effects)
    assert w["severity"] == severity
    assert ("列入严重违法失信名单" in w["message_zh"]) is serious


def test_the_rule_can_be_turned_off(rules):
    policy = Policy.model_validate({"warnings": {"enforcement_decided": {"enabled": False}}})
    _, effects = folded(ev("enforcement.decided"), rules=Rules(rules.catalogue, policy))
    assert not _warnings(effects)


def test_the_alerts_stage_opens_an_alert_routed_to_the_supervisor_in_charge(rules):
    from alerts.lifecycle import AlertBook, Enterprise, evidence_zh
    from alerts.messages import RULE_ZH

    policy = Policy.model_validate({"alerts": {
        "receivers": [{"name": "town", "kind": "webhook", "supervisor": "良渚所", "url": "http://127.0.0.1:9/hook"}],
        "routes": [{"receivers": ["town"], "rules": ["enforcement.decided"]}]}})
    r = Rules(rules.catalogue, policy)
    state, book, changes = CountyState(), AlertBook(), []
    for event in (ev("enterprise.registered"), ev("enforcement.decided", penalties=[{"kind": "suspension"}])):
        state, effects = step(state, event, r)
        changes += book.apply(event, effects, policy, lambda eid: Enterprise("清源桶装水厂", "良渚街道", "packaged_water"))
    [alert] = [a for a in book.alerts.values() if a.rule == "enforcement.decided"]
    assert alert.severity == "high" and alert.receivers == ["town"] and RULE_ZH[alert.rule] == "行政处罚决定"
    assert evidence_zh(alert) == "行政处罚决定书 示范县市监处罚〔2026〕12号（2026-05-18）"
    assert any(n.receiver == "town" for c in changes for n in c.notifications)


# --------------------------------------------------------------------------- the report


def test_the_report_has_a_section_for_each(rules):
    f, _ = folded(ev("interview.held"), ev("enforcement.decided"), rules=rules)
    report = build_report(f, rules)
    [d] = report["enforcements"]
    assert d["decision_no"] == "示范县市监处罚〔2026〕12号" and d["serious_dishonesty_zh"] == "否"
    assert d["penalties_zh"] == "警告；没收违法生产经营的饮用纯净水 210 桶（3780 元）；罚款 50000 元"
    assert d["related_zh"] == "抽样编号 DC26330110000123、检查 JC2026-0317" and "第一百二十四条" in d["legal_basis"]
    [i] = report["interviews"]
    assert i["officials"] == "刘副局长、王建国" and i["follow_up_by"] == "2026-05-08" and "消毒" in i["commitments"]
    profile = {row["label"]: row["value"] for row in report["profile"]}
    assert profile["行政处罚"] == "1 件，罚款合计 50000 元" and profile["约谈"] == "1 次"
    text = render_text(report)
    assert "【行政处罚记录】（1 件）" in text and "【约谈记录】（1 次）" in text
    assert text.index("【整改】") < text.index("【行政处罚记录】") < text.index("【约谈记录】") < text.index("【质量波动监测序列】")
    assert "决定书文号：示范县市监处罚〔2026〕12号" in text and "约谈单位：示范县市场监督管理局" in text


def test_the_report_from_the_view_is_the_same(rules):
    from qrisk.credit_report import report_from_view

    f, _ = folded(ev("interview.held"), ev("enforcement.decided", serious_dishonesty=True), rules=rules)
    a, b = build_report(f, rules), report_from_view(json.loads(json.dumps(f.view())), rules)
    assert a["enforcements"] == b["enforcements"] and a["interviews"] == b["interviews"] and a["profile"] == b["profile"]


# --------------------------------------------------------------------------- the demo


def test_the_demo_plants_a_decision_and_an_interview(rules):
    from qrisk.demo import CountyGenerator, summarise

    gen = CountyGenerator(seed=7)
    events = gen.generate()
    planted = [(e.event_type, e.enterprise_id) for e in events if e.event_type in ("enforcement.decided", "interview.held")]
    assert planted == [("interview.held", "P09"), ("enforcement.decided", "P05")]
    state, effects = replay(events, rules)
    p05, p09 = state.files["P05"], state.files["P09"]
    [decision] = p05.enforcements
    # for the preservative creep's first failure that stood
    failed = {s.sample_no for s in p05.final_samples() if s.judgement.verdict == "fail"}
    assert decision.sample_nos[0] in failed and "第一百二十四条第一款第（三）项" in decision.legal_basis
    [interview] = p09.interviews
    overdue = next(r for r in p09.rectifications if r.overdue)
    assert interview.held_on > overdue.deadline and overdue.rectification_id in interview.reason
    summary = summarise(state, events, effects, gen.period)
    assert [d["enterprise_id"] for d in summary["enforcement"]["decisions"]] == ["P05"]
    assert [i["enterprise_id"] for i in summary["enforcement"]["interviews"]] == ["P09"]


# --------------------------------------------------------------------------- the API (embedded runtime, no Kafka)


def test_the_bureau_posts_them_and_a_bad_fine_is_422(tmp_path):
    from qrisk.auth import KeyStore

    server = Server(tmp_path / "data")
    store = KeyStore(server.data_dir / "keys.json")
    _, bureau = store.create("bureau", "enforcement-office")
    _, inspector = store.create("inspector", "insp")
    server.start()
    try:
        def post(token, body):
            return httpx.post(server.url + "/v1/events", json=body, headers={"authorization": f"Bearer {token}"}, timeout=30)

        assert post(bureau, golden("enterprise.registered")).status_code == 200
        assert post(bureau, [golden("interview.held"), golden("enforcement.decided")]).status_code == 200
        refused = golden("interview.held")
        refused["source"] = {"kind": "inspector", "id": "insp-017"}
        assert post(inspector, refused).status_code == 403
        bad = golden("enforcement.decided")
        bad["event_id"] = str(uuid.uuid4())
        bad["payload"]["penalties"][2]["amount_yuan"] = -1
        bad["payload"]["penalties"][0]["kind"] = "scolding"
        resp = post(bureau, bad)
        assert resp.status_code == 422
        errors = {e["field"]: e for e in resp.json()["errors"]}
        assert errors["payload.penalties[2].amount_yuan"]["reason_zh"] == "数值过小（应 > 0）"
        assert "greater than 0" in errors["payload.penalties[2].amount_yuan"]["reason"]
        assert errors["payload.penalties[0].kind"]["reason_zh"].startswith("取值不在允许范围内")
        file = server.get(f"/v1/enterprises/{E}").json()
        assert file["counts"]["enforcements"] == 1 and file["counts"]["interviews"] == 1
        assert file["enforcements"][0]["decision_no"] == "示范县市监处罚〔2026〕12号"
    finally:
        server.stop()


# --------------------------------------------------------------------------- an interview's follow-up (跟踪检查)

def _county(rules):
    """step() and the alerts stage, as the embedded pipeline runs them: (feed, state, book)."""
    from alerts.lifecycle import AlertBook, Enterprise

    box = {"state": CountyState(), "book": AlertBook()}

    def feed(*events):
        out = []
        for event in events:
            box["state"], effects = step(box["state"], event, rules)
            box["book"].apply(event, effects, rules.policy, lambda eid: Enterprise("清源桶装水厂", "良渚街道", "packaged_water"))
            out += effects
        return out
    return feed, box


def _inspected(at: str, inspection_id: str):
    return ev("inspection.completed", at, inspection_id=inspection_id, result="符合", findings=[])


def _follow_up_alerts(box):
    return [a for a in box["book"].alerts.values() if a.rule == "interview.follow_up_overdue"]


def test_no_inspection_by_the_interviews_follow_up_date_opens_an_alert_and_the_late_inspection_closes_it(rules):
    feed, box = _county(rules)
    feed(ev("enterprise.registered"), _inspected("2026-04-01T10:00:00+08:00", "JC-BEFORE"))  # before the interview: no follow-up
    feed(ev("interview.held"))  # 2026-04-08, follow-up by 2026-05-08
    feed(_tick("2026-05-08T23:00:00+08:00"))
    assert not _follow_up_alerts(box)  # the last day is still in time
    effects = feed(_tick("2026-05-10T00:00:00+08:00"))
    [overdue] = [e for e in effects if e.kind == "interview.follow_up_overdue"]
    assert overdue.data["days_overdue"] == 2
    [alert] = _follow_up_alerts(box)
    assert alert.state == "open" and alert.title_zh == "约谈跟踪检查逾期" and alert.severity == "medium"
    assert alert.message_zh.startswith("清源桶装水厂：2026-04-08 约谈（YT2026-007）要求于 2026-05-08 前跟踪检查整改承诺落实情况，"
                                       "截至 2026-05-10 仍无现场检查记录，已逾期 2 天，请尽快开展跟踪检查，核实整改承诺落实情况。"
                                       "约谈事由：监督抽检铜绿假单胞菌不合格")
    assert box["state"].files[E].interviews[0].event_id in alert.evidence["event_ids"]  # the interview is the evidence
    feed(_tick("2026-05-20T00:00:00+08:00"))
    assert len(_follow_up_alerts(box)) == 1  # raised once
    effects = feed(_inspected("2026-05-21T10:00:00+08:00", "JC-FOLLOW"))
    assert [e.data["inspection_id"] for e in effects if e.kind == "interview.followed_up"] == ["JC-FOLLOW"]
    assert alert.state == "closed" and alert.steps[-1].note.startswith("已跟踪检查：现场检查 JC-FOLLOW（2026-05-21）已对约谈 YT2026-007")
    [record] = box["state"].files[E].interviews
    assert record.follow_up_inspection_id == "JC-FOLLOW" and record.follow_up_overdue
    rows = build_report(box["state"].files[E], rules)["interviews"]
    assert rows[0]["follow_up_zh"] == "已跟踪（现场检查 JC-FOLLOW，逾期后）"


def test_an_inspection_in_time_is_the_follow_up_even_when_its_record_came_first(rules):
    for order in ("interview first", "inspection first"):
        feed, box = _county(rules)
        feed(ev("enterprise.registered"))
        pair = [ev("interview.held"), _inspected("2026-04-20T10:00:00+08:00", "JC-0420")]
        feed(*(pair if order == "interview first" else pair[::-1]))
        feed(_tick("2026-06-01T00:00:00+08:00"))
        assert not _follow_up_alerts(box), order
        [record] = box["state"].files[E].interviews
        assert record.follow_up_inspection_id == "JC-0420" and not record.follow_up_overdue, order
        assert build_report(box["state"].files[E], rules)["interviews"][0]["follow_up_zh"] == "已跟踪（现场检查 JC-0420）"


def test_the_follow_up_rule_can_be_turned_off_and_an_interview_without_a_date_awaits_nothing(rules):
    off = Rules(rules.catalogue, Policy.model_validate({"warnings": {"interview_follow_up": {"enabled": False}}}))
    feed, box = _county(off)
    feed(ev("enterprise.registered"), ev("interview.held"), _tick("2026-06-01T00:00:00+08:00"))
    assert not _follow_up_alerts(box)
    effects = feed(_inspected("2026-06-02T10:00:00+08:00", "JC-LATE"))
    assert not [e for e in effects if e.kind == "warning.resolved"]  # nothing to close
    assert build_report(box["state"].files[E], rules)["interviews"][0]["follow_up_zh"] == "已跟踪（现场检查 JC-LATE，逾期后）"
    feed, box = _county(rules)
    feed(ev("enterprise.registered"), ev("interview.held", follow_up_by=None), _tick("2027-06-01T00:00:00+08:00"))
    assert not _follow_up_alerts(box) and box["state"].files[E].interviews[0].follow_up_inspection_id is None


def test_whether_a_follow_up_was_late_is_read_from_the_dates_in_any_order(rules):
    late = _inspected("2026-05-21T10:00:00+08:00", "JC-LATE")  # the follow-up date was 2026-05-08
    orders = {"interview, tick, inspection": [ev("interview.held"), _tick("2026-05-10T00:00:00+08:00"), late],
              "inspection, interview": [late, ev("interview.held")],
              "interview, inspection": [ev("interview.held"), late]}
    for name, events in orders.items():
        feed, box = _county(rules)
        feed(ev("enterprise.registered"), *events)
        [record] = box["state"].files[E].interviews
        assert (record.follow_up_inspection_id, record.follow_up_on.isoformat(), record.follow_up_overdue) == ("JC-LATE", "2026-05-21", True), name
        assert build_report(box["state"].files[E], rules)["interviews"][0]["follow_up_zh"] == "已跟踪（现场检查 JC-LATE，逾期后）", name
        assert all(a.state == "closed" for a in _follow_up_alerts(box)), name  # an alert, if a tick raised one, closed
    # the earliest inspection is the follow-up, even when it is folded second
    feed, box = _county(rules)
    feed(ev("enterprise.registered"), ev("interview.held"), late, _inspected("2026-05-01T10:00:00+08:00", "JC-0501"))
    [record] = box["state"].files[E].interviews
    assert (record.follow_up_inspection_id, record.follow_up_overdue) == ("JC-0501", False)


def test_a_decision_sent_again_is_said_and_one_that_differs_names_its_fields(rules):
    """A re-sent decision with other content was dropped without a word (200, nothing on file).  The decision on file
    stands — a number names one decision; one varied is revoked and posted under its own number — and the resend is said."""
    from ingest.lint import accepted_warnings

    first = ev("enforcement.decided")
    same = parse_event({**first.model_dump(mode="json", exclude_unset=True), "event_id": str(uuid.uuid4())})
    other = ev("enforcement.decided", penalties=[{"kind": "fine", "amount_yuan": 80000}], decided_on="2026-05-17")
    state, effects = replay([ev("enterprise.registered"), first, same, other], rules)
    f = state.files[E]
    assert f.counts.enforcements == 1 and f.enforcements[0].event_id == str(first.event_id)
    said = {e.event_id: e.data for e in effects if e.kind == "enforcement.duplicate_decision"}
    assert said[str(same.event_id)]["same"] is True
    d = said[str(other.event_id)]
    assert d["same"] is False and [c["field"] for c in d["changes"]] == ["payload.decided_on", "payload.penalties"]
    assert "决定日期在档为“2026-05-18”，本次为“2026-05-17”" in d["message_zh"] and "罚款 80000 元" in d["message_zh"]
    [w] = accepted_warnings(other, rules.catalogue, f)
    assert (w["type"], w["field"]) == ("decision_no_on_file", "payload.decided_on") and "处罚内容（payload.penalties）" in w["reason_zh"]
    [w] = accepted_warnings(same, rules.catalogue, f)
    assert w["type"] == "decision_no_on_file" and "内容相同" in w["reason_zh"]
    assert accepted_warnings(first, rules.catalogue, f) == []
