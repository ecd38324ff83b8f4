"""An inspection or an interview sent again under a new event id: one record in the counts, the score and the alert.

The same content again is a repeat (said, not counted); a differing record of the same id is a correction that takes
the older's place — by the inspection's time (an interview's recording time, occurred_at), then the log's order —
and the older stays on file, marked.  Found by the provincial auditor: JC-T02-0410 posted twice scored 现场检查问题
"（JC-T02-0410 2 次）", and a result corrected 不符合→基本符合 left both records scoring."""
from __future__ import annotations

import uuid

from alerts.lifecycle import AlertBook, Enterprise
from ingest.lint import accepted_warnings
from processors.credit_file import CountyState, CreditFile
from processors.step import replay, step
from qrisk.credit_report import build_report, render_text
from schemas.upcast import parse_event
from tests.conftest import golden

E = "E-330110-001"
MAJOR = [{"code": "3.2", "description": "灌装车间空气消毒记录不全", "severity": "major"}]


def ev(event_type: str, at: str | None = None, **payload):
    doc = golden(event_type)
    doc["event_id"] = str(uuid.uuid4())
    if at is not None:
        doc["occurred_at"] = at
    doc["payload"].update(payload)
    return parse_event(doc)


def inspected(inspection_id: str = "JC-T02-0410", result: str = "不符合", findings=None, at: str = "2026-04-10T10:00:00+08:00"):
    return ev("inspection.completed", at, inspection_id=inspection_id, result=result, findings=MAJOR if findings is None else findings)


def again(event):
    """The same event under a new event id: a send attempt the inspection app made anew."""
    return parse_event({**event.model_dump(mode="json", exclude_unset=True), "event_id": str(uuid.uuid4())})


def term(file: CreditFile, factor: str):
    return next((c for c in file.risk.current.contributions if c.factor == factor), None)


def kinds(effects, event):
    return [e.kind for e in effects if e.event_id == str(event.event_id)]


def warned(rules, state, event):
    return [(w["type"], w["field"]) for w in accepted_warnings(event, rules.catalogue, state.files.get(event.enterprise_id))]


def county(rules):
    """step() and the alerts stage, as the embedded pipeline runs them."""
    box = {"state": CountyState(), "book": AlertBook()}

    def feed(*events):
        out = []
        for event in events:
            box["state"], effects = step(box["state"], event, rules)
            box["book"].apply(event, effects, rules.policy, lambda eid: Enterprise("清源桶装水厂", "良渚街道", "packaged_water"))
            out += effects
        return out
    return feed, box


def test_an_inspection_sent_twice_is_one_inspection_scored_once(rules):
    first = inspected()
    second = again(first)
    state, effects = replay([ev("enterprise.registered"), first, second], rules)
    f = state.files[E]
    assert (f.counts.inspections, f.counts.inspections_nonconforming) == (1, 1)
    t = term(f, "dynamic.inspection")
    assert (t.points, t.count) == (10, 1) and "2 次" not in t.detail_zh  # 不符合 8 + a major finding 2, once
    assert "inspection.nonconforming" not in kinds(effects, second)
    [said] = [e for e in effects if e.kind == "inspection.repeated"]
    assert said.data["repeats_event_id"] == str(first.event_id) and "不重复计数" in said.data["message_zh"]
    # both records kept, the second marked as the repeat it is
    assert [(i.event_id, i.superseded_as) for i in f.inspections] == [(str(first.event_id), None), (str(second.event_id), "repeated")]
    assert warned(rules, state, second) == [("inspection_id_on_file", "payload.inspection_id")] and warned(rules, state, first) == []
    report = build_report(f, rules)
    assert report["inspections"][1]["detail_zh"].startswith("重复报送") or report["inspections"][0]["detail_zh"].startswith("重复报送")
    assert "【现场检查】（1 次，另有重复或被取代的记录 1 条）" in render_text(report)


def test_a_repeat_opens_no_second_alert(rules):
    feed, box = county(rules)
    first = inspected()
    feed(ev("enterprise.registered"), first, again(first))
    [alert] = [a for a in box["book"].alerts.values() if a.rule == "inspection.nonconforming"]
    assert alert.event_ids == [str(first.event_id)]


def test_an_interview_sent_twice_is_one_interview_scored_once(rules):
    first = ev("interview.held", interview_id="YT-T02-01")
    second = again(first)
    state, effects = replay([ev("enterprise.registered"), first, second], rules)
    f = state.files[E]
    assert f.counts.interviews == 1
    t = term(f, "dynamic.interview")
    assert (t.points, t.count) == (4, 1)
    assert kinds(effects, second) == ["interview.repeated"]
    assert [i.superseded_as for i in f.interviews] == [None, "repeated"]
    assert warned(rules, state, second) == [("interview_id_on_file", "payload.interview_id")]


def test_a_corrected_result_takes_the_place_of_the_one_on_file(rules):
    feed, box = county(rules)
    wrong = inspected("JC-T01-0410")
    fixed = inspected("JC-T01-0410", result="基本符合", findings=[])
    feed(ev("enterprise.registered"), wrong)
    [alert] = [a for a in box["book"].alerts.values() if a.rule == "inspection.nonconforming"]
    assert alert.state == "open"
    effects = feed(fixed)
    f = box["state"].files[E]
    assert (f.counts.inspections, f.counts.inspections_nonconforming) == (1, 0)
    t = term(f, "dynamic.inspection")
    assert (t.points, t.count, t.event_ids) == (2, 1, [str(fixed.event_id)])  # 基本符合 alone
    [said] = [e for e in effects if e.kind == "inspection.corrected"]
    assert said.data["corrects_event_id"] == str(wrong.event_id)
    assert {c["field"]: (c["from"], c["to"]) for c in said.data["changes"]}["payload.result"] == ("不符合", "基本符合")
    assert "结论由不符合改为基本符合" in said.data["message_zh"]
    # the older is kept, marked replaced and pointing at its correction; the newer says whose place it took
    old, new = f.inspections
    assert (old.superseded_as, old.superseded_by, new.corrects) == ("corrected", str(fixed.event_id), str(wrong.event_id))
    # the alert's grounds are gone: it closes, saying why
    assert alert.state == "closed" and "预警所依据的检查问题不再成立" in alert.steps[-1].note
    assert warned(rules, box["state"], fixed) == [("inspection_id_on_file", "payload.inspection_id")]
    rows = build_report(f, rules)["inspections"]
    assert [r["detail_zh"] for r in rows if r["superseded"]] == [f"已由更正后的记录（事件 {fixed.event_id}）取代，不计入"]


def test_a_correction_that_finds_a_nonconformity_raises_it(rules):
    feed, box = county(rules)
    feed(ev("enterprise.registered"), inspected("JC-9", result="符合", findings=[]))
    assert not [a for a in box["book"].alerts.values() if a.rule == "inspection.nonconforming"]
    effects = feed(inspected("JC-9", result="不符合"))
    assert "inspection.nonconforming" in [e.kind for e in effects]
    assert box["state"].files[E].counts.inspections_nonconforming == 1
    # the same problem said again with a finding reworded raises nothing new: the alert stands
    reworded = [{**MAJOR[0], "description": "灌装车间空气消毒记录缺失"}]
    effects = feed(inspected("JC-9", result="不符合", findings=reworded))
    assert "inspection.nonconforming" not in [e.kind for e in effects] and "inspection.corrected" in [e.kind for e in effects]
    assert len([a for a in box["book"].alerts.values() if a.rule == "inspection.nonconforming"]) == 1


def test_the_newer_record_wins_whatever_the_order_they_arrive_in(rules):
    early = inspected("JC-7", at="2026-04-10T10:00:00+08:00")
    late = inspected("JC-7", result="基本符合", findings=[], at="2026-04-10T15:00:00+08:00")
    for order in ([early, late], [late, early]):
        state, effects = replay([ev("enterprise.registered"), *order], rules)
        f = state.files[E]
        assert f.inspection("JC-7").event_id == str(late.event_id), order
        assert (f.counts.inspections, f.counts.inspections_nonconforming, term(f, "dynamic.inspection").points) == (1, 0, 2)
        assert f.risk.last_inspected_at == late.occurred_at
    # the earlier arriving last gives way, said
    assert [e.kind for e in effects if e.event_id == str(early.event_id)] == ["inspection.outdated"]
    assert state.files[E].inspections[-1].superseded_as == "outdated"
    # at the same time, the later logged is the correction
    a, b = inspected("JC-8"), inspected("JC-8", result="基本符合", findings=[])
    state, _ = replay([ev("enterprise.registered"), a, b], rules)
    assert state.files[E].inspection("JC-8").event_id == str(b.event_id)


def test_the_original_sent_again_after_its_correction_is_a_repeat_not_a_correction_back(rules):
    """(The round's diff review) a lab system's retry or a re-import sends the original again after its correction: it
    repeats a record no longer counted, and the correction stands — in the counts, the score and the alert."""
    feed, box = county(rules)
    wrong = inspected("JC-T01-0410")
    fixed = inspected("JC-T01-0410", result="基本符合", findings=[])
    retry = again(wrong)
    feed(ev("enterprise.registered"), wrong, fixed)
    effects = feed(retry)
    f = box["state"].files[E]
    assert kinds(effects, retry) == ["inspection.repeated"]
    assert f.inspection("JC-T01-0410").event_id == str(fixed.event_id)
    assert (f.counts.inspections, f.counts.inspections_nonconforming, term(f, "dynamic.inspection").points) == (1, 0, 2)
    assert not [a for a in box["book"].alerts.values() if a.rule == "inspection.nonconforming" and a.state == "open"]
    # an interview likewise
    first = ev("interview.held", "2026-04-08T10:00:00+08:00", interview_id="YT-1", reason="原事由")
    fixed = ev("interview.held", "2026-04-09T10:00:00+08:00", interview_id="YT-1", reason="更正后的事由")
    state, effects = replay([ev("enterprise.registered"), first, fixed, again(first)], rules)
    assert [i.superseded_as for i in state.files[E].interviews] == ["corrected", None, "repeated"]


def test_a_correction_may_move_an_interview_s_day_earlier(rules):
    """The interview recorded later is the newer record, whatever day it names: a wrong held_on is what a correction
    puts right, an earlier day included."""
    typo = ev("interview.held", "2026-04-18T10:00:00+08:00", interview_id="YT-2", held_on="2026-04-18")
    fixed = ev("interview.held", "2026-04-20T10:00:00+08:00", interview_id="YT-2", held_on="2026-04-08")
    state, effects = replay([ev("enterprise.registered"), typo, fixed], rules)
    assert kinds(effects, fixed) == ["interview.corrected"]
    assert [i.superseded_as for i in state.files[E].interviews] == ["corrected", None]


def test_a_corrected_interview_replaces_its_entry_and_its_follow_up(rules):
    feed, box = county(rules)
    first = ev("interview.held", interview_id="YT-T02-01")  # 2026-04-08, follow-up by 2026-05-08
    feed(ev("enterprise.registered"), first, ev("clock.tick", "2026-05-10T00:00:00+08:00"))
    [alert] = [a for a in box["book"].alerts.values() if a.rule == "interview.follow_up_overdue"]
    fixed = ev("interview.held", "2026-05-11T09:00:00+08:00", interview_id="YT-T02-01", follow_up_by="2026-06-08")
    effects = feed(fixed)
    f = box["state"].files[E]
    assert f.counts.interviews == 1 and term(f, "dynamic.interview").points == 4
    [said] = [e for e in effects if e.kind == "interview.corrected"]
    assert "跟踪检查期限由“2026-05-08”改为“2026-06-08”" in said.data["message_zh"]
    assert alert.state == "closed" and "跟踪检查期限更正为 2026-06-08" in alert.steps[-1].note
    assert [i.superseded_as for i in f.interviews] == ["corrected", None]
    # overdue by the corrected date, the alert is raised again, once
    feed(ev("clock.tick", "2026-06-10T00:00:00+08:00"), ev("clock.tick", "2026-06-11T00:00:00+08:00"))
    assert len([a for a in box["book"].alerts.values() if a.rule == "interview.follow_up_overdue" and a.state == "open"]) == 1


def test_a_snapshot_keeps_the_marks(rules):
    first = inspected()
    state, _ = replay([ev("enterprise.registered"), first, again(first), inspected(result="基本符合", findings=[])], rules)
    restored = CountyState.restore(state.snapshot())
    assert restored.snapshot() == state.snapshot()
    assert [i.superseded_as for i in restored.files[E].inspections] == ["corrected", "repeated", None]


def test_the_backtest_counts_an_inspection_once(rules):
    import datetime as dt

    from qrisk.backtest import run_backtest

    first = inspected(at="2025-04-10T10:00:00+08:00")
    fixed = inspected(result="基本符合", findings=[], at="2025-04-10T10:00:00+08:00")
    events = [ev("enterprise.registered", "2025-01-02T09:00:00+08:00"), first, again(first), fixed]
    o = run_backtest(events, rules, dt.date(2025, 1, 1), dt.date(2025, 12, 31))["inspection_order"]
    assert (o["inspections"], o["failed"]) == (1, 0)  # the corrected record's 基本符合, without a major finding
    # one event delivered twice (the same event_id: folded once) is one inspection too
    o = run_backtest([*events[:1], first, first], rules, dt.date(2025, 1, 1), dt.date(2025, 12, 31))["inspection_order"]
    assert (o["inspections"], o["failed"]) == (1, 1)


def test_a_signal_s_evidence_names_an_inspection_once(rules):
    from processors.fluctuation import nearby_events

    first = inspected()
    state, _ = replay([ev("enterprise.registered"), first, again(first)], rules)
    found = nearby_events(state.files[E], first.occurred_at, 30)
    assert [(e["kind"], e["id"]) for e in found] == [("inspection", "JC-T02-0410")]
