"""fluctuation.rebaselined (控制限重新确定): a supervisor's recorded decision that a product's process changed (a new
filtration after a rectification), so that its charts start a new baseline from a sampling date on.  The old phase's
points and signals stay; the new phase signals nothing until its limits exist; late results land on their side of
the date; the charts are the same whatever order the decision and the results arrive in."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from processors.step import replay
from schemas.upcast import parse_event
from tests.conftest import golden

E = "E-330110-001"
REG = parse_event(golden("enterprise.registered"))
KEY = "饮用纯净水|conductivity"
REASON = "整改复查通过，更换过滤系统"
OLD = [3.0, 3.2, 2.9, 3.1, 3.0, 3.3, 2.8, 3.1, 3.0, 3.2]      # before the new filtration
NEW = [6.1, 5.9, 6.0, 6.2, 5.8, 6.1, 6.0, 5.9, 6.1, 6.0]      # after it: far above the old limits, steady


def result(value: float, sampled_on: dt.date, sample_no: str | None = None):
    doc = golden("sampling.result")
    doc["event_id"] = str(uuid.uuid4())
    doc["occurred_at"] = f"{(sampled_on + dt.timedelta(days=7)).isoformat()}T10:00:00+08:00"
    p = doc["payload"]
    p["sample_no"] = sample_no or f"DC{sampled_on:%Y%m%d}{int(value * 10):03d}"
    p["sampled_on"] = sampled_on.isoformat()
    p["items"] = [{"item_code": "conductivity", "item_name": "电导率", "values": [value], "unit": "µS/cm",
                   "standard_ref": "GB 17323", "lab_verdict": "合格"}]
    return parse_event(doc)


def rebaseline(effective_from: str = "2026-03-01", item_code: str | None = "conductivity", at: str = "2026-04-20T09:30:00+08:00",
               reason: str = REASON, product: str = "饮用纯净水", confirmed_by: str = "王某（食品生产监管科）"):
    doc = golden("fluctuation.rebaselined")
    doc.update(event_id=str(uuid.uuid4()), occurred_at=at)
    doc["payload"].update(product=product, effective_from=effective_from, reason=reason, confirmed_by=confirmed_by, item_code=item_code)
    return parse_event(doc)


def days(start: str, n: int, step: int = 5) -> list[dt.date]:
    first = dt.date.fromisoformat(start)
    return [first + dt.timedelta(days=step * i) for i in range(n)]


OLD_RESULTS = [result(v, d) for v, d in zip(OLD, days("2026-01-02", len(OLD)))]
NEW_RESULTS = [result(v, d) for v, d in zip(NEW, days("2026-03-01", len(NEW)))]


def _signals(effects, events=None):
    ids = None if events is None else {str(e.event_id) for e in events}
    return [e for e in effects if e.kind == "fluctuation.signal" and e.data.get("scope") == "series" and (ids is None or e.event_id in ids)]


def test_without_a_new_baseline_the_new_process_signals_against_the_old_limits(rules):
    """What the statistician saw: limits never re-estimated, every result of the new process judged against the old."""
    _, effects = replay([REG, *OLD_RESULTS, *NEW_RESULTS], rules)
    assert len(_signals(effects, NEW_RESULTS)) == len(NEW_RESULTS)


def test_the_new_phase_collects_its_baseline_and_its_signals_say_whose_limits(rules):
    decision = rebaseline()
    state, effects = replay([REG, *OLD_RESULTS, decision, *NEW_RESULTS], rules)
    s = state.files[E].fluctuation.series[KEY]
    # the new process: no signal while its baseline is collected, none once its limits sit at its own level
    assert _signals(effects, NEW_RESULTS) == []
    [phase] = s.phases
    assert (phase.start, phase.sampled_on, phase.effective_from, phase.event_id) == (11, "2026-03-01", "2026-03-01", str(decision.event_id))
    assert s.monitor.phase == "II" and 5.8 < s.monitor.center < 6.2 and s.monitor.count == 20   # (numbering runs on)
    # the old phase's points stay on file, in phase 1
    assert [p[2] for p in s.recent[:10]] == OLD
    [said] = [e for e in effects if e.kind == "fluctuation.rebaselined"]
    assert said.data["pending"] and "尚无 2026-03-01 及以后抽样的结果，结果到达时生效" in said.data["message_zh"]
    # a jump in the new phase: judged against the new limits, and said to be
    jump = result(7.5, dt.date(2026, 5, 1))
    state, effects = replay([jump], rules, state)
    [sig] = _signals(effects)
    assert "控制限依据 2026-03-01 起重新确定的基线：整改复查通过，更换过滤系统" in sig.data["text_zh"]
    assert (sig.data["phase"], sig.data["phase_from"], sig.data["rebaseline_event_id"]) == (2, "2026-03-01", str(decision.event_id))
    assert [p["phase"] for p in sig.data["evidence"]["points"]] == [1] * 10 + [2] * 11


def _fluctuation(state):
    return state.files[E].fluctuation.model_dump(mode="json")


@pytest.mark.parametrize("order", ["decision_after_results", "decision_first", "late_old_result", "shuffled"])
def test_the_charts_are_the_same_whenever_the_decision_arrives(rules, order):
    decision = rebaseline()
    late = result(3.1, dt.date(2026, 2, 27), "DC-LATE")   # sampled before the date, reported after the new process's
    in_order, _ = replay([REG, *OLD_RESULTS, late, decision, *NEW_RESULTS], rules)
    if order == "decision_after_results":
        log = [REG, *OLD_RESULTS, late, *NEW_RESULTS, decision]
    elif order == "decision_first":
        log = [REG, decision, *OLD_RESULTS, late, *NEW_RESULTS]
    elif order == "late_old_result":
        log = [REG, *OLD_RESULTS, decision, *NEW_RESULTS, late]
    else:
        log = [REG, *NEW_RESULTS[:4], decision, *OLD_RESULTS[5:], late, *NEW_RESULTS[4:], *OLD_RESULTS[:5]]
    other, effects = replay(log, rules)
    assert _fluctuation(other) == _fluctuation(in_order)
    s = other.files[E].fluctuation.series[KEY]
    [phase] = s.phases
    assert phase.start == 12 and phase.sampled_on == "2026-03-01"   # the late 02-27 result is the old phase's 11th point
    if order == "decision_after_results":
        [said] = [e for e in effects if e.kind == "fluctuation.rebaselined"]
        assert said.data["restarted"] == [KEY] and not said.data["pending"]
        assert "饮用纯净水·电导率（25℃）自第 12 批（2026-03-01 抽样）起重新建立基线" in said.data["message_zh"]
        assert "此前的数据点和信号保留存档" in said.data["message_zh"]
        # the signals the new process raised against the old limits before the decision came stay on file (alerts)
        assert len([e for e in effects if e.kind == "warning.raised" and e.data["rule"] == "fluctuation.signal"]) >= 1


def test_a_result_the_new_limits_find_is_raised_when_the_decision_comes_after_it(rules):
    """The other blindness: the new filtration brought conductivity down to 1.0, and a 2.0 lies within the old limits
    (centred on 3.0) — the chart said nothing.  The decision, arriving after those results, builds the series again:
    the 2.0 signals against the new limits and is raised, of its own batch (else the credit file counts a signal
    nobody heard)."""
    improved = [result(v, d) for v, d in zip([1.0, 1.1, 0.9, 1.0, 1.1, 0.9, 1.0, 1.0, 1.1, 1.0], days("2026-03-01", 10))]
    drift = result(2.0, dt.date(2026, 5, 25), "DC-DRIFT")
    state, effects = replay([REG, *OLD_RESULTS, *improved, drift], rules)
    assert _signals(effects, [*improved, drift]) == []   # blind to the new level
    decision = rebaseline()
    state, effects = replay([decision], rules, state)
    [found] = _signals(effects)
    assert found.data["sample_no"] == "DC-DRIFT" and found.data["found_after_rebaseline"] and found.data["phase"] == 2
    assert found.data["text_zh"].startswith("饮用纯净水·电导率（25℃）：自 2026-03-01 起重新确定基线后，抽样编号 DC-DRIFT（2026-05-25）的结果出现信号")
    assert [e for e in effects if e.kind == "warning.raised" and e.data["rule"] == "fluctuation.signal"]
    # the same as the decision first: the 2.0 signals as it comes
    state2, effects2 = replay([REG, decision, *OLD_RESULTS, *improved, drift], rules)
    assert [e.data["sample_no"] for e in _signals(effects2)] == ["DC-DRIFT"]
    assert _fluctuation(state2) == _fluctuation(state)


def test_a_second_decision_starts_another_phase_and_the_same_one_again_adds_nothing(rules):
    first = rebaseline()
    later = [result(v, d) for v, d in zip([7.0, 7.1, 6.9, 7.2, 7.0, 6.8, 7.1, 7.0], days("2026-06-01", 8))]
    second = rebaseline("2026-06-01", reason="更换原水水源", at="2026-06-20T09:00:00+08:00")
    state, effects = replay([REG, *OLD_RESULTS, first, *NEW_RESULTS, second, *later], rules)
    s = state.files[E].fluctuation.series[KEY]
    assert [(ph.effective_from, ph.start) for ph in s.phases] == [("2026-03-01", 11), ("2026-06-01", 21)]
    assert _signals(effects, later) == []
    before = _fluctuation(state)
    again = rebaseline()   # the same decision under a new event_id (a double click)
    state, effects = replay([again], rules, state)
    assert effects == [] and _fluctuation(state) == before
    # the same series and date, another wording: the first stands, the bureau hears so
    state, effects = replay([rebaseline(reason="另一种说法")], rules, state)
    [said] = effects
    assert said.kind == "fluctuation.rebaseline_repeated" and "本次未重复计入" in said.data["message_zh"] and REASON in said.data["message_zh"]
    assert _fluctuation(state) == before


def test_a_decision_without_item_code_covers_every_item_of_the_product(rules):
    state, effects = replay([REG, rebaseline(item_code=None), *OLD_RESULTS[:0], *NEW_RESULTS], rules)
    [said] = [e for e in effects if e.kind == "fluctuation.rebaselined"]
    assert "本企业名下尚无该产品（项目）的质量波动监测序列" in said.data["message_zh"] and said.data["pending"]
    state, _ = replay([REG, *OLD_RESULTS, rebaseline(item_code=None), *NEW_RESULTS], rules)
    assert [ph.effective_from for ph in state.files[E].fluctuation.series[KEY].phases] == ["2026-03-01"]
    # another product's charts are not touched
    state, _ = replay([REG, *OLD_RESULTS, rebaseline(product="天然矿泉水", item_code=None), *NEW_RESULTS], rules)
    assert state.files[E].fluctuation.series[KEY].phases == []


def test_the_credit_file_lists_the_phases(rules, tmp_path):
    from qrisk.credit_report import build_report, render_text, report_from_view

    state, _ = replay([REG, *OLD_RESULTS, rebaseline(), *NEW_RESULTS], rules)
    f = state.files[E]
    view = f.view()
    [series] = [s for s in view["series"] if s["item_code"] == "conductivity"]
    assert series["rebaselines"][0]["effective_from"] == "2026-03-01" and series["rebaselines"][0]["reason"] == REASON
    assert view["rebaselines"][0]["confirmed_by"] == "王某（食品生产监管科）"
    line = "基线重新确定于 2026-03-01：整改复查通过，更换过滤系统，确认人 王某（食品生产监管科）"
    for report in (build_report(f, rules), report_from_view(view, rules)):
        [row] = [r for r in report["series"] if r["item_name"].startswith("电导率")]
        assert line in row["rebaselines"]
        assert line in render_text(report)
    # the workbook's series sheet has the column
    from openpyxl import load_workbook

    from qrisk.credit_report import write_xlsx

    book = load_workbook(write_xlsx(build_report(f, rules), tmp_path / "f.xlsx"))
    sheet = book["质量波动监测序列"]
    header = [c.value for c in sheet[2]]
    col = header.index("基线重新确定")
    assert any(line in str(r[col].value or "") for r in sheet.iter_rows(min_row=3))


def test_a_pending_decision_is_in_the_credit_file(rules):
    from qrisk.credit_report import build_report, render_text

    state, _ = replay([REG, rebaseline(product="天然矿泉水", item_code=None)], rules)
    text = render_text(build_report(state.files[E], rules))
    assert "待生效的控制限重新确定：天然矿泉水（全部检验项目）自 2026-03-01 起" in text


def test_the_decision_survives_a_snapshot(rules):
    from processors.credit_file import CountyState

    head, _ = replay([REG, *OLD_RESULTS, rebaseline()], rules)
    restored = CountyState.restore(head.snapshot())
    assert restored.snapshot() == head.snapshot()
    full, _ = replay(NEW_RESULTS, rules, head)
    resumed, _ = replay(NEW_RESULTS, rules, restored)
    assert resumed.snapshot() == full.snapshot()


# --------------------------------------------------------------------------- the contract and the ways in


def test_the_door_refuses_a_decision_without_its_reason_or_date():
    from ingest.validate import decode_body

    for field, value, zh in (("reason", " ", "不能只含空白字符"), ("effective_from", "2026/03/01", "YYYY-MM-DD"), ("confirmed_by", "", "")):
        doc = golden("fluctuation.rebaselined")
        doc["payload"][field] = value
        events, rejected = decode_body(json.dumps(doc, ensure_ascii=False).encode())
        assert not events and rejected
        [error] = rejected[0].errors
        assert error["field"] == f"payload.{field}" and zh in error["reason_zh"], error
    doc = golden("fluctuation.rebaselined")
    del doc["payload"]["reason"]
    events, rejected = decode_body(json.dumps(doc, ensure_ascii=False).encode())
    assert not events and rejected[0].errors[0]["field"] == "payload.reason"


def test_only_the_bureau_and_admin_keys_may_rebaseline(tmp_path):
    from qrisk.auth import KeyStore, event_refusal, posting_rules
    from qrisk.topics import Topics

    store = KeyStore(tmp_path / "keys.json")
    lab, _ = store.create("lab", "lab-1", source_id="CMA-330100-0451")
    inspector, _ = store.create("inspector", "insp-1")
    bureau, _ = store.create("bureau", "bureau-1")
    admin, _ = store.create("admin", "admin-1")
    event = parse_event(golden("fluctuation.rebaselined"))
    for key in (lab, inspector):
        refused = event_refusal(key, event)
        assert refused["field"] == "event_type" and "只能由监管部门" in refused["reason_zh"], refused
    assert event_refusal(bureau, event) is None and event_refusal(admin, event) is None
    assert "fluctuation.rebaselined" in posting_rules()["bureau"][0]
    admissions = Topics("q").admissions()
    assert admissions["q.ingress.lab"].refusal(event)["field"] == "event_type"
    assert admissions["q.ingress.bureau"].refusal(event) is None


def test_the_door_warns_of_a_decision_for_a_series_not_on_file(rules):
    from ingest.lint import accepted_warnings

    decision = rebaseline(product="天然矿泉水")
    state, _ = replay([REG, decision], rules)
    [w] = accepted_warnings(decision, rules.catalogue, state.files[E])
    assert (w["field"], w["type"]) == ("payload.product", "rebaseline_pending") and "结果到达时生效" in w["reason_zh"]
    ok = rebaseline()
    state, _ = replay([*OLD_RESULTS, ok], rules, state)
    assert accepted_warnings(ok, rules.catalogue, state.files[E]) == []


def test_the_door_warns_of_a_baseline_dated_after_its_confirmation(rules):
    """A new baseline dated after the day it was confirmed was accepted without a word: a year typed wrong (2027 for
    2026) leaves a year of results on the old limits.  Kept (a supervisor may record a change ahead), and said."""
    from ingest.lint import accepted_warnings

    state, _ = replay([REG, *OLD_RESULTS], rules)
    ahead = rebaseline(effective_from="2027-03-01")
    state, _ = replay([ahead], rules, state)
    [w] = accepted_warnings(ahead, rules.catalogue, state.files[E], policy=rules.policy)
    assert (w["field"], w["type"]) == ("payload.effective_from", "rebaseline_ahead")
    assert "基线生效日期 2027-03-01 晚于确认日期 2026-04-20" in w["reason_zh"]
    # the day of confirmation is the bureau's: 2026-04-20 00:30 there is 04-19 16:30 UTC, and that day is no day ahead
    same_day = rebaseline(effective_from="2026-04-20", at="2026-04-20T00:30:00+08:00")
    state, _ = replay([same_day], rules, state)
    assert accepted_warnings(same_day, rules.catalogue, state.files[E], policy=rules.policy) == []


def test_jsonl_and_csv_files_carry_the_decision(tmp_path):
    import csv

    from ingest.files import read_events

    doc = golden("fluctuation.rebaselined")
    (tmp_path / "d.jsonl").write_text(json.dumps(doc, ensure_ascii=False) + "\n", encoding="utf-8")
    with open(tmp_path / "d.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["event_id", "event_type", "schema_version", "enterprise_id", "occurred_at", "source_kind", "source_id", "source_name", "payload"])
        w.writerow([doc["event_id"], doc["event_type"], 2, doc["enterprise_id"], doc["occurred_at"], "bureau", "county-msb", "县市场监督管理局",
                    json.dumps(doc["payload"], ensure_ascii=False)])
    for name in ("d.jsonl", "d.csv"):
        [read] = [d for _, _, d in read_events(tmp_path / name)]
        assert read == doc
        assert parse_event(read).payload.effective_from == dt.date(2026, 4, 15)


def test_a_column_mapping_may_produce_the_decision():
    from ingest.mapping import Mapping

    m = Mapping.model_validate({"name": "rebaselines", "event_type": "fluctuation.rebaselined", "event_id": {"key": ["编号"]},
                                "fields": {"enterprise_id": {"column": "企业编号"}, "occurred_at": {"column": "确认时间"},
                                           "payload.product": {"column": "产品"}, "payload.effective_from": {"column": "起始抽样日期"},
                                           "payload.reason": {"column": "原因"}, "payload.confirmed_by": {"column": "确认人"}}})
    assert m.event_type == "fluctuation.rebaselined"


def test_over_http_the_bureau_confirms_a_new_baseline_and_the_credit_file_says_so(tmp_path):
    import httpx

    from qrisk.auth import KeyStore
    from tests.conftest import Server

    server = Server(tmp_path / "data").start()
    try:
        _, bureau_key = KeyStore(server.data_dir / "keys.json").create("bureau", "bureau-1")
        _, inspector_key = KeyStore(server.data_dir / "keys.json").create("inspector", "insp-1")
        assert server.post("/v1/events", json=[golden("enterprise.registered"), golden("sampling.result")]).status_code == 200
        decision = golden("fluctuation.rebaselined")

        def post(token):
            return httpx.post(server.url + "/v1/events", json=decision, headers={"authorization": f"Bearer {token}"}, timeout=30)

        refused = post(inspector_key)
        assert refused.status_code == 403 and "控制限的重新确定须由监管人员" in refused.text
        assert post(bureau_key).status_code == 200
        view = server.get(f"/v1/enterprises/{E}").json()
        [r] = view["rebaselines"]
        assert (r["product"], r["item_code"], r["effective_from"], r["applied_to"]) == ("饮用纯净水", "free_chlorine", "2026-04-15", [])
        text = server.get(f"/v1/enterprises/{E}?view=report&format=text").text
        assert "待生效的控制限重新确定：饮用纯净水·free_chlorine自 2026-04-15 起（整改复查通过，更换过滤系统" in text
    finally:
        server.stop()


# --------------------------------------------------------------------------- replay, as tests/test_replay.py holds it


def _generated_logs():
    """One water plant's results (conductivity, on dates either side of the decisions') and decisions, in any order,
    with a registration somewhere and redeliveries."""
    from hypothesis import strategies as st

    @st.composite
    def decision(draw):
        doc = golden("fluctuation.rebaselined")
        doc["event_id"] = str(uuid.UUID(int=draw(st.integers(1, 2**64)), version=4))
        doc["payload"]["item_code"] = draw(st.sampled_from([None, "conductivity", "free_chlorine"]))
        doc["payload"]["effective_from"] = f"2026-03-{draw(st.integers(1, 28)):02d}"
        doc["payload"]["reason"] = draw(st.sampled_from([REASON, "更换原水水源"]))
        return parse_event(doc)

    @st.composite
    def sample(draw, n):
        value = draw(st.sampled_from([1.0, 2.0, 3.0, 3.1, 2.9, 6.0, 6.2, 9.5]))
        return result(value, dt.date(2026, 3, draw(st.integers(1, 28))), f"S{n}")

    @st.composite
    def logs(draw):
        events = [draw(st.one_of(sample(i), sample(i), sample(i), decision())) for i in range(draw(st.integers(1, 30)))]
        events.insert(draw(st.integers(0, len(events))), REG)
        for _ in range(draw(st.integers(0, 3))):
            events.insert(draw(st.integers(0, len(events))), events[draw(st.integers(0, len(events) - 1))])
        return events

    return logs()


def test_logs_with_new_baselines_replay_to_the_same_state_and_resume_from_a_snapshot(rules):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from processors.credit_file import CountyState
    from processors.step import Rules
    from schemas.policy import Policy

    two = Rules(rules.catalogue, Policy.model_validate({"spc": {"baseline": 2}}))

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_generated_logs(), st.data())
    def check(log, data):
        full, effects = replay(log, two)
        again, effects2 = replay(log, two)
        assert full.snapshot() == again.snapshot() and effects == effects2
        cut = data.draw(st.integers(0, len(log)))
        head, head_effects = replay(log[:cut], two)
        resumed, tail = replay(log[cut:], two, state=CountyState.restore(head.snapshot()))
        assert resumed.snapshot() == full.snapshot() and tail == effects[len(head_effects):]

    check()


def test_the_charts_do_not_depend_on_the_order_results_and_decisions_arrive_in(rules):
    """Results on distinct sampling dates and decisions on distinct dates, in two arbitrary orders: the same series,
    phase for phase and point for point."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.data())
    def check(data):
        dates = data.draw(st.lists(st.integers(1, 28), min_size=1, max_size=20, unique=True))
        values = [1.0, 2.0, 3.0, 3.1, 2.9, 6.0, 6.2]
        results = [result(data.draw(st.sampled_from(values)), dt.date(2026, 3, d), f"S{d}") for d in dates]
        decided = data.draw(st.lists(st.integers(1, 28), max_size=3, unique=True))
        decisions = [rebaseline(f"2026-03-{d:02d}", item_code=data.draw(st.sampled_from([None, "conductivity"])), reason=f"第 {i} 次整改")
                     for i, d in enumerate(decided)]
        events = results + decisions
        first = data.draw(st.permutations(events))
        second = data.draw(st.permutations(events))
        a, _ = replay([REG, *first], rules)
        b, _ = replay([REG, *second], rules)
        assert a.files[E].fluctuation.model_dump(mode="json")["series"] == b.files[E].fluctuation.model_dump(mode="json")["series"]

    check()
