"""sampling.retracted (撤销报告): the bureau takes a report filed under the wrong enterprise off its credit file.
The log stays append-only: the report stays on file, marked retracted, and no longer counts anywhere —
counts, pass rate, charts, risk grade, alerts — whichever of the report and the retraction arrives first."""
from __future__ import annotations

import uuid

import httpx
import pytest

from alerts.lifecycle import AlertBook, Enterprise
from qrisk.pipeline import JUDGEMENT_COLUMNS
from processors.credit_file import CountyState
from processors.step import FOLD_VERSION, Rules, replay, step
from qrisk.auth import KeyStore
from schemas.policy import Policy
from schemas.upcast import parse_event
from tests.conftest import Server, golden
from tests.test_corrections import E, REG, failed_entries, p_chart, resend, sample, sampled

REASON = "报告企业名称填报错误（应为 E-330110-002）"
BUREAU = {"kind": "bureau", "id": "county-msb", "name": "县市场监督管理局"}


def retraction(sample_no: str, at: str = "2026-03-20T09:30:00+08:00", reason: str = REASON, enterprise_id: str = E):
    doc = golden("sampling.retracted")
    doc.update(event_id=str(uuid.uuid4()), occurred_at=at, enterprise_id=enterprise_id)
    doc["payload"].update(sample_no=sample_no, reason=reason)
    return parse_event(doc)


def kinds(effects, event=None):
    return [e.kind for e in effects if event is None or e.event_id == str(event.event_id)]


@pytest.fixture(scope="module")
def spc_rules(rules):
    # a two-point SPC baseline: a few samples reach phase II, where a rebuilt chart shows what it lost
    return Rules(rules.catalogue, Policy.model_validate({"spc": {"baseline": 2}}))


def _folded_with_alerts(rules, events):
    book, state = AlertBook(), CountyState()
    out = []

    def info(eid):
        p = state.files[eid].profile
        return Enterprise(p.name, p.town, p.category)

    for e in events:
        state, effects = step(state, e, rules)
        book.apply(e, effects, rules.policy, info)
        out.append(effects)
    return state, book, out


def test_the_fold_version_says_the_retraction_came():
    assert FOLD_VERSION >= 25


# --------------------------------------------------------------------------- 1. the bureau retracts a failure


def test_a_misfiled_failure_retracted_stays_on_file_and_counts_for_nothing(rules):
    ok = sample("2026-03-10T10:00:00+08:00", passes=True, sample_no="S-OK")
    bad = sample("2026-03-12T15:20:00+08:00", passes=False)
    back = retraction(bad.payload.sample_no)
    state, book, per_event = _folded_with_alerts(rules, [REG, ok, bad, back])
    f = state.files[E]
    (alert,) = [a for a in book.alerts.values() if a.rule == "sampling.unqualified"]
    # the report stays in the file, marked retracted, with the reason and the retraction's event id
    record = f.sample_by_event(str(bad.event_id))
    assert (record.superseded_by, record.superseded_as, record.retraction_reason) == (str(back.event_id), "retracted", REASON)
    assert record.judgement is not None and record.judgement.verdict == "fail"  # (as judged: the credit file shows what was retracted)
    assert "已由监管部门撤销" in record.superseded_zh() and REASON in record.superseded_zh() and str(back.event_id) in record.superseded_zh()
    assert f.retractions[bad.payload.sample_no].reports == [str(bad.event_id)]
    assert [s.event_id for s in f.final_samples()] == [str(ok.event_id)]
    # counts, pass rate, p chart, Paretos and the risk grade: as if the failure had never come
    never, _ = replay([REG, ok], rules)
    g = never.files[E]
    assert sampled(f) == sampled(g) == (1, 1, 0) and f.pass_rate == g.pass_rate == 1.0
    assert f.counts == g.counts
    assert p_chart(f) == p_chart(g) == {"2026Q1": (1, 0)} and f.fluctuation.failing_items == {}
    assert failed_entries(f) == []
    assert (f.risk.grade, f.risk.score) == (g.risk.grade, g.risk.score)
    assert f.risk.history[-2].score > f.risk.score  # the failure had raised it
    effects = per_event[-1]
    assert "risk.graded" in kinds(effects)
    # the failure's alert is closed, saying who retracted the report and why
    assert alert.state == "closed"
    (resolved,) = [e for e in effects if e.kind == "warning.resolved" and e.data["rule"] == "sampling.unqualified"]
    assert resolved.data["dedup_key"] == alert.dedup_key
    # the grade fell back with it: the alert that announced the rise closes too
    assert [e.data["rule"] for e in effects if e.kind == "warning.resolved"] == ["sampling.unqualified", "risk.grade_worsened"]
    note = resolved.data["note_zh"]
    assert "撤销" in note and "县市场监督管理局" in note and REASON in note and "预警自动关闭" in note
    assert alert.steps[-1].note == note
    # the retraction's own effect says the sample number, the reason and what changed
    (said,) = [e for e in effects if e.kind == "sampling.retracted"]
    msg = said.data["message_zh"]
    assert msg.startswith(f"抽样编号 {bad.payload.sample_no}（饮用纯净水）在本企业名下的报告已由县市场监督管理局撤销（原因：{REASON}）")
    assert "原样品结论“不合格”不再计入" in msg and "抽检批次 2→1" in msg and "合格率 50.0%→100.0%" in msg
    assert "质量波动监测序列" in msg and "已去除该样品的数据重新计算" in msg and "不合格预警自动关闭" in msg
    assert said.data["reports"] == [str(bad.event_id)] and said.data["verdict"] == "fail" and said.data["pending"] is False
    # the derived tables hear it: the report's judgements row again, now superseded
    (judged,) = [e for e in effects if e.kind == "sampling.judged"]
    assert judged.data["sample_event_id"] == str(bad.event_id) and judged.data["retracted"] is True


def test_the_embedded_pipeline_writes_the_retracted_row_superseded(tmp_path, rules):
    """The judgements table (dashboards: ``superseded_by = ''``) leaves the retracted report out, as a corrected one."""
    from qrisk.pipeline import Pipeline, SampleRows

    bad = sample("2026-03-12T15:20:00+08:00", passes=False)
    back = retraction(bad.payload.sample_no)
    state, effects = replay([REG, bad, back], rules)
    f = state.files[E]
    (judged,) = [e for e in effects if e.kind == "sampling.judged" and e.event_id == str(back.event_id)]
    record = f.sample_by_event(judged.data["sample_event_id"])
    _, row = SampleRows()(f, record)
    assert row[JUDGEMENT_COLUMNS.index("superseded_by")] == str(back.event_id)  # the retraction
    assert Pipeline  # (the pipeline writes this row for every sampling.judged effect: qrisk.pipeline._derive)


# --------------------------------------------------------------------------- 2. the item charts


def test_the_item_charts_are_built_again_without_the_retracted_point(spc_rules):
    rules = spc_rules
    before = [sample(f"2026-0{m}-05T10:00:00+08:00", passes=True, sample_no=f"S{m}", bromate=0.004) for m in (1, 2, 3)]
    bad = sample("2026-04-05T10:00:00+08:00", passes=False, bromate=0.05)
    after = [sample(f"2026-0{m}-05T10:00:00+08:00", passes=True, sample_no=f"S{m}") for m in (5, 6)]
    state, _ = replay([REG, *before, bad, *after], rules)
    charted = state.files[E].fluctuation.series["饮用纯净水|bromate"]
    assert any(p[4] == str(bad.event_id) for p in charted.recent)  # the point is on the chart
    state, effects = step(state, retraction(bad.payload.sample_no, at="2026-07-01T09:00:00+08:00"), rules)
    f = state.files[E]
    never, _ = replay([REG, *before, *after], rules)
    g = never.files[E]
    assert f.fluctuation.series.keys() == g.fluctuation.series.keys()
    for key, series in g.fluctuation.series.items():
        assert f.fluctuation.series[key].model_dump() == series.model_dump(), key
    assert not any(p[4] == str(bad.event_id) for s in f.fluctuation.series.values() for p in s.recent)
    assert f.fluctuation.pass_rate == g.fluctuation.pass_rate and f.fluctuation.failing_items == g.fluctuation.failing_items
    (said,) = [e for e in effects if e.kind == "sampling.retracted"]
    assert "饮用纯净水|bromate" in said.data["recharted"] and "溴酸盐" in said.data["message_zh"]


# --------------------------------------------------------------------------- 3. order of arrival


def _as_filed(f):
    """What the credit file says of its samples and their charts and grade (not the alert decisions or the grade
    history a failure left behind while it stood: those are the record of what happened)."""
    return {
        "samples": [s.model_dump() for s in f.samples], "counts": f.counts.model_dump(), "pass_rate": f.pass_rate,
        "series": {k: s.model_dump() for k, s in f.fluctuation.series.items()},
        "p": f.fluctuation.pass_rate, "pareto": f.fluctuation.failing_items,
        "entries": f.risk.entries, "grade": (f.risk.grade, f.risk.score), "last_sampled": (f.risk.last_sampled_on, f.risk.last_sample_event_id),
        "retractions": {k: r.model_dump() for k, r in f.retractions.items()},
    }


@pytest.mark.parametrize("registered_first", [True, False], ids=["registered", "registered last"])
def test_a_retraction_before_its_report_gives_the_same_credit_file(rules, registered_first):
    ok = sample("2026-03-10T10:00:00+08:00", passes=True, sample_no="S-OK")
    bad = sample("2026-03-12T15:20:00+08:00", passes=False)
    back = retraction(bad.payload.sample_no)
    head = [REG] if registered_first else []
    tail = [] if registered_first else [REG]
    report_first, _ = replay([*head, ok, bad, back, *tail], rules)
    state, effects = replay([*head, ok, back, bad, *tail], rules)
    assert _as_filed(state.files[E]) == _as_filed(report_first.files[E])
    f = state.files[E]
    assert f.sample_by_event(str(bad.event_id)).superseded_as == "retracted" and sampled(f) == (1, 1, 0)
    # the retraction that came first was kept, and said so
    (waiting,) = [e for e in effects if e.event_id == str(back.event_id) and e.kind == "sampling.retracted"]
    assert waiting.data["pending"] is True and waiting.data["reports"] == []
    assert "尚无报告" in waiting.data["message_zh"] and REASON in waiting.data["message_zh"] and "到达时即按撤销" in waiting.data["message_zh"]
    # the report that came after it: filed retracted, never failed, never alerted
    mine = [e for e in effects if e.event_id == str(bad.event_id)]
    assert "sampling.failed" not in kinds(mine) and "warning.raised" not in kinds(mine)
    (arrived,) = [e for e in mine if e.kind == "sampling.retracted"]
    assert arrived.data["arrived_after"] is True and arrived.data["retraction_event_id"] == str(back.event_id)
    assert "已于 2026-03-20 由县市场监督管理局撤销" in arrived.data["message_zh"] and "不计入统计" in arrived.data["message_zh"]


def test_a_report_sent_again_after_the_retraction_is_retracted_too(rules):
    bad = sample("2026-03-12T15:20:00+08:00", passes=False)
    back = retraction(bad.payload.sample_no)
    again = resend(bad, at="2026-03-21T10:00:00+08:00")
    state, effects = replay([REG, bad, back, again], rules)
    f = state.files[E]
    assert sampled(f) == (0, 0, 0) and failed_entries(f) == []
    assert f.sample_by_event(str(again.event_id)).superseded_as == "retracted"
    assert "sampling.failed" not in kinds(effects, again) and f.retractions[bad.payload.sample_no].reports == [str(bad.event_id), str(again.event_id)]


# --------------------------------------------------------------------------- the chain


def test_retracting_a_sample_number_retracts_its_original_correction_and_retest(rules):
    original = sample("2026-03-12T15:20:00+08:00", passes=False)
    corrected = sample("2026-03-13T15:20:00+08:00", passes=False, bromate=0.03)
    retest = sample("2026-03-25T10:00:00+08:00", passes=True, retest=True)
    other = sample("2026-03-10T10:00:00+08:00", passes=True, sample_no="S-OK")
    back = retraction(original.payload.sample_no, at="2026-04-01T09:00:00+08:00")
    state, book, per_event = _folded_with_alerts(rules, [REG, other, original, corrected, retest, back])
    f = state.files[E]
    chain = [f.sample_by_event(str(e.event_id)) for e in (original, corrected, retest)]
    assert [(s.superseded_as, s.superseded_by) for s in chain] == [("retracted", str(back.event_id))] * 3
    never, _ = replay([REG, other], rules)
    assert f.counts == never.files[E].counts and p_chart(f) == p_chart(never.files[E])
    assert (f.risk.grade, f.risk.score) == (never.files[E].risk.grade, never.files[E].risk.score)
    (said,) = [e for e in per_event[-1] if e.kind == "sampling.retracted"]
    assert said.data["reports"] == [str(e.event_id) for e in (original, corrected, retest)]
    assert "撤销报告 3 份" in said.data["message_zh"] and "原样品结论“合格”不再计入" in said.data["message_zh"]
    # three judgements rows written again, superseded
    assert sorted(e.data["sample_event_id"] for e in per_event[-1] if e.kind == "sampling.judged") == sorted(s.event_id for s in chain)


def test_a_report_awaiting_registration_is_retracted_and_never_judged(rules):
    bad = sample("2026-03-12T15:20:00+08:00", passes=False)
    back = retraction(bad.payload.sample_no)
    state, effects = replay([bad, back], rules)
    f = state.files[E]
    assert sampled(f) == (0, 0, 0) and f.counts.samples_undetermined == 0
    record = f.sample_by_event(str(bad.event_id))
    assert record.pending is None and record.superseded_as == "retracted"
    state, effects = step(state, REG, rules)
    f = state.files[E]
    assert f.sample_by_event(str(bad.event_id)).judgement is None and sampled(f) == (0, 0, 0)
    assert "sampling.failed" not in kinds(effects)


# --------------------------------------------------------------------------- 4. a repeated retraction


@pytest.mark.parametrize("report_on_file", [True, False], ids=["report on file", "pending"])
def test_a_repeated_retraction_changes_nothing_and_says_nothing(rules, report_on_file):
    bad = sample("2026-03-12T15:20:00+08:00", passes=False)
    first = retraction(bad.payload.sample_no)
    state, _ = replay([REG, *([bad] if report_on_file else []), first], rules)
    before = state.files[E].model_dump(exclude={"events", "last_event_at"})
    state, effects = step(state, retraction(bad.payload.sample_no, at="2026-03-21T09:30:00+08:00", reason="重复撤销"), rules)
    assert effects == []
    f = state.files[E]
    assert f.model_dump(exclude={"events", "last_event_at"}) == before
    assert f.retractions[bad.payload.sample_no].event_id == str(first.event_id)  # the first one stands, with its reason
    assert f.retractions[bad.payload.sample_no].reason == REASON


def test_a_retraction_of_another_enterprise_leaves_this_one_alone(rules):
    bad = sample("2026-03-12T15:20:00+08:00", passes=False)
    state, _ = replay([REG, bad, retraction(bad.payload.sample_no, enterprise_id="E-330110-002")], rules)
    f = state.files[E]
    assert sampled(f) == (1, 0, 1) and f.sample_by_event(str(bad.event_id)).superseded_by is None
    assert state.files["E-330110-002"].retractions[bad.payload.sample_no].reports == []


# --------------------------------------------------------------------------- 5. replay


def test_replaying_a_log_with_a_retraction_gives_the_same_state(spc_rules):
    rules = spc_rules
    log = [REG, *[sample(f"2026-0{m}-05T10:00:00+08:00", passes=m != 3, sample_no=f"S{m}") for m in range(1, 7)]]
    log.insert(4, retraction("S3", at="2026-03-20T09:00:00+08:00"))
    log.append(retraction("S9", at="2026-06-20T09:00:00+08:00"))  # pending: its report comes next
    log.append(sample("2026-06-21T10:00:00+08:00", passes=False, sample_no="S9"))
    log.append(log[4])  # a redelivery of the retraction
    first, effects1 = replay(log, rules)
    second, effects2 = replay(log, rules)
    assert first.snapshot() == second.snapshot() and effects1 == effects2
    for cut in range(len(log) + 1):
        head, head_effects = replay(log[:cut], rules)
        resumed, tail = replay(log[cut:], rules, state=CountyState.restore(head.snapshot()))
        assert resumed.snapshot() == first.snapshot(), cut
        assert tail == effects1[len(head_effects):], cut
    f = first.files[E]
    assert sampled(f) == (5, 5, 0) and set(f.retractions) == {"S3", "S9"}


# --------------------------------------------------------------------------- who may send it


def test_only_the_bureau_and_admin_keys_may_post_a_retraction(tmp_path):
    from qrisk.auth import event_refusal, posting_rules
    from qrisk.topics import Topics

    store = KeyStore(tmp_path / "keys.json")
    lab, _ = store.create("lab", "lab-1", source_id="CMA-330100-0451")
    bureau, _ = store.create("bureau", "bureau-1")
    admin, _ = store.create("admin", "admin-1")
    event = parse_event(golden("sampling.retracted"))
    refused = event_refusal(lab, event)
    assert refused["field"] == "event_type" and refused["type"] == "forbidden"
    assert "只能由监管部门" in refused["reason_zh"] and "检验机构不能撤销" in refused["reason_zh"]
    assert event_refusal(bureau, event) is None and event_refusal(admin, event) is None
    assert "sampling.retracted" not in posting_rules()["lab"][0] and "sampling.retracted" in posting_rules()["bureau"][0]
    admissions = Topics("q").admissions()
    assert admissions["q.ingress.lab"].refusal(event)["field"] == "event_type"
    assert admissions["q.ingress.bureau"].refusal(event) is None and admissions["q.ingress.import"].refusal(event) is None


# --------------------------------------------------------------------------- 6. over HTTP


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("retraction") / "data").start()
    store = KeyStore(server.data_dir / "keys.json")
    _, server.lab_key = store.create("lab", "lab-1", source_id="CMA-330100-0451")
    _, server.bureau_key = store.create("bureau", "bureau-1")
    yield server
    server.stop()


def _post(srv, body, token=None):
    headers = {"authorization": f"Bearer {token}"} if token else srv.headers
    return httpx.post(srv.url + "/v1/events", json=body, headers=headers, timeout=30)


def _report(enterprise_id: str, sample_no: str, failing: bool = True) -> dict:
    doc = golden("sampling.result")
    doc.update(event_id=str(uuid.uuid4()), enterprise_id=enterprise_id)
    doc["payload"]["sample_no"] = sample_no
    for item in doc["payload"]["items"]:
        if item["item_code"] == "pseudomonas_aeruginosa":
            item["values"], item["lab_verdict"] = [0, 0, 0, 0, 0], "合格"
        if item["item_code"] == "bromate" and failing:
            item["values"], item["lab_verdict"] = [0.05], "不合格"
    return doc


def _elsewhere(body) -> list[dict]:
    return [w for w in body["events"][0].get("warnings", []) if w["type"] == "sample_no_elsewhere"]


def test_over_http_the_bureau_retracts_a_misfiled_report(srv):
    regs = []
    for eid in ("E-RT-A", "E-RT-B"):
        reg = golden("enterprise.registered")
        reg.update(event_id=str(uuid.uuid4()), enterprise_id=eid)
        reg["payload"]["licence_no"] = f"SC{uuid.uuid4().int % 10**14:014d}"
        regs.append(reg)
    assert _post(srv, regs).status_code == 200
    # the lab files a failing report under the wrong enterprise: its alert opens
    assert _post(srv, _report("E-RT-A", "DC-RT-1"), srv.lab_key).status_code == 200
    opened = srv.get("/v1/alerts", params={"enterprise_id": "E-RT-A"}).json()
    (alert,) = [a for a in opened if a["rule"] == "sampling.unqualified"]
    assert alert["state"] == "open"
    # control: a number on file under A (not retracted) is warned of when sent under B
    assert _post(srv, _report("E-RT-A", "DC-RT-2", failing=False), srv.lab_key).status_code == 200
    body = _post(srv, _report("E-RT-B", "DC-RT-2", failing=False), srv.lab_key).json()
    assert len(_elsewhere(body)) == 1

    back = golden("sampling.retracted")
    back.update(event_id=str(uuid.uuid4()), enterprise_id="E-RT-A", occurred_at="2026-03-20T09:30:00+08:00")
    back["payload"]["sample_no"] = "DC-RT-1"
    # a lab key may not take a report back: 403, saying why in Chinese
    resp = _post(srv, back, srv.lab_key)
    assert resp.status_code == 403
    (error,) = resp.json()["errors"]
    assert error["field"] == "event_type" and "只能由监管部门" in error["reason_zh"] and "检验机构不能撤销" in error["reason_zh"]
    # a blank reason: 422 naming the field
    blank = {**back, "event_id": str(uuid.uuid4()), "payload": {**back["payload"], "reason": "   "}}
    resp = _post(srv, blank, srv.bureau_key)
    assert resp.status_code == 422 and any(e["field"] == "payload.reason" for e in resp.json()["errors"]), resp.text
    # the bureau's key: taken
    resp = _post(srv, back, srv.bureau_key)
    assert resp.status_code == 200, resp.text
    assert resp.json()["events"][0]["status"] == "accepted"
    file = srv.get("/v1/enterprises/E-RT-A").json()
    (record,) = [s for s in file["samples"] if s["sample_no"] == "DC-RT-1"]
    assert record["superseded_as"] == "retracted" and record["superseded_by"] == back["event_id"] and record["retraction_reason"] == back["payload"]["reason"]
    assert (file["counts"]["samples"], file["counts"]["samples_failed"], file["pass_rate"]) == (1, 0, 1.0)
    closed = srv.get(f"/v1/alerts/{alert['alert_id']}").json()
    assert closed["state"] == "closed" and "撤销" in closed["steps"][-1]["note"]
    # sent again under the right enterprise: no sample_no_elsewhere warning (the report under A is retracted)
    body = _post(srv, _report("E-RT-B", "DC-RT-1"), srv.lab_key).json()
    assert body["events"][0]["status"] == "accepted" and _elsewhere(body) == []
    # and under the wrong one again: kept, retracted, and the lab hears it
    body = _post(srv, _report("E-RT-A", "DC-RT-1"), srv.lab_key).json()
    assert any(w["type"] == "sample_no_retracted" for w in body["events"][0]["warnings"])


def test_retracting_the_latest_sample_makes_sampling_due_from_the_one_before(rules):
    """The latest sampling on file is what the next one is due from (data.missing): a retracted report is none."""
    ok = sample("2026-01-10T10:00:00+08:00", passes=True, sample_no="S-OK", sampled_on="2026-01-08")
    bad = sample("2026-03-12T15:20:00+08:00", passes=False)
    state, _ = replay([REG, ok, bad], rules)
    assert state.files[E].risk.last_sample_event_id == str(bad.event_id)
    state, _ = step(state, retraction(bad.payload.sample_no), rules)
    rs = state.files[E].risk
    assert (rs.last_sampled_on.isoformat(), rs.last_sample_event_id) == ("2026-01-08", str(ok.event_id))
    # a year on, sampling is overdue from January's sample, not from the retracted March one
    tick = golden("clock.tick")
    tick.update(event_id=str(uuid.uuid4()), occurred_at="2027-01-20T00:00:00+08:00")
    state, effects = step(state, parse_event(tick), rules)
    (missing,) = [e.data for e in effects if e.kind == "warning.raised" and e.data["rule"] == "data.missing"
                  and e.data["evidence"].get("what") == "sampling"]
    assert missing["evidence"]["last"] == "2026-01-08", missing["evidence"]


def test_a_retracted_pass_brings_the_sampling_due_date_back_too(rules):
    """A passing report retracted (no failure, no grade change): sampling is due again from the sample before it."""
    import datetime as dt

    ok = sample("2026-01-10T10:00:00+08:00", passes=True, sample_no="S-OK", sampled_on="2026-01-08")
    late = sample("2026-03-12T15:20:00+08:00", passes=True, sample_no="S-LATE")
    state, _ = replay([REG, ok, late], rules)
    grade = state.files[E].risk.grade
    state, effects = step(state, retraction("S-LATE"), rules)
    assert state.files[E].risk.grade == grade and not [e for e in effects if e.kind == "warning.resolved"]
    interval = rules.policy.risk.sampling_interval_days[grade]
    day = dt.date(2026, 1, 8) + dt.timedelta(days=interval + 2)  # past January's due date, before March's
    assert day < dt.date(2026, 3, 5) + dt.timedelta(days=interval)
    tick = golden("clock.tick")
    tick.update(event_id=str(uuid.uuid4()), occurred_at=f"{day.isoformat()}T12:00:00+08:00")
    state, effects = step(state, parse_event(tick), rules)
    gaps = [e.data for e in effects if e.kind == "warning.raised" and e.data["rule"] == "data.missing"
            and e.data["evidence"].get("what") == "sampling"]
    assert gaps and gaps[0]["evidence"]["last"] == "2026-01-08"


def test_a_kafka_worker_folds_a_retraction_as_the_embedded_runtime(rules):
    """The worker's effect message for the retraction carries the retracted report's judgements row again, superseded,
    and its credit file is the embedded fold's (no broker: the worker's fold on log messages)."""
    import datetime as dt
    import json

    from qrisk.kafka_log import event_value
    from qrisk.pipeline import JUDGEMENT_COLUMNS
    from qrisk.worker import BatchOutput, Fold

    bad = sample("2026-03-12T15:20:00+08:00", passes=False)
    back = retraction(bad.payload.sample_no)
    now = dt.datetime(2026, 3, 20, 8, 0, tzinfo=dt.timezone.utc)
    events = [e.model_copy(update={"received_at": now}) for e in (REG, bad, back)]
    fold, out = Fold(rules, "log"), BatchOutput()
    for offset, e in enumerate(events):
        fold.apply(0, offset, event_value(e), 1_773_993_600_000, out)
    docs = [json.loads(v) for _, v in out.effects]
    (doc,) = [d for d in docs if d["event_id"] == str(back.event_id)]
    assert "sampling.retracted" in [e["kind"] for e in doc["effects"]] and "warning.resolved" in [e["kind"] for e in doc["effects"]]
    at = list(JUDGEMENT_COLUMNS).index("superseded_by")
    rows = {row[0]: row[at] for row in doc["judgement_rows"]["rows"]}
    assert rows == {str(bad.event_id): str(back.event_id)}
    state, _ = replay(events, rules)
    assert fold.files[E].file.model_dump() == state.files[E].model_dump()
    assert sampled(fold.files[E].file) == (0, 0, 0)


def test_a_sample_whose_correction_moved_its_date_leaves_the_period_it_is_charted_in(rules):
    """A review of the day's diff: the correction moved the sample from Q1 to Q2, and the retraction took it out of
    Q1 (a legitimate passing sample's period) and left the retracted failure in Q2."""
    ok = sample("2026-03-10T10:00:00+08:00", passes=True, sample_no="S-OK")
    bad = sample("2026-03-12T15:20:00+08:00", passes=False)
    moved = sample("2026-03-14T15:20:00+08:00", passes=False, sampled_on="2026-04-02", production_date="2026-03-01")
    state, _ = replay([REG, ok, bad, moved, retraction(bad.payload.sample_no)], rules)
    never, _ = replay([REG, ok], rules)
    assert {k: (v.n, v.failed) for k, v in state.files[E].fluctuation.pass_rate.items() if v.n} == p_chart(never.files[E]) == {"2026Q1": (1, 0)}
    assert {k: (v.n, v.failed) for k, v in state.categories["packaged_water"].periods.items() if v.n} == {"2026Q1": (1, 0)}


def test_the_signals_a_retracted_report_raised_leave_the_score_in_either_order(rules):
    """A review of the day's diff: two failures in a quarter raise the p chart's signal; the second retracted, its
    signal's points stayed (52) where the other order, or never having it, gives 50."""
    b1 = sample("2026-03-05T10:00:00+08:00", passes=False, sample_no="B1")
    b2 = sample("2026-03-12T10:00:00+08:00", passes=False, sample_no="B2")
    after, effects = replay([REG, b1, b2, retraction("B2", at="2026-03-20T10:00:00+08:00")], rules)
    before, _ = replay([REG, b1, retraction("B2", at="2026-03-08T10:00:00+08:00"), b2], rules)
    never, _ = replay([REG, b1], rules)
    assert after.files[E].risk.score == before.files[E].risk.score == never.files[E].risk.score
    assert not [e for e in after.files[E].risk.entries if e[1] == "fluctuation_signal"]
    raised = [e.data for e in effects if e.kind == "warning.raised" and e.data["rule"] == "fluctuation.signal"
              and not e.data["dedup_key"].startswith("county:")]  # (the county's category chart is not this file's)
    closed = {e.data["dedup_key"]: e.data["note_zh"] for e in effects if e.kind == "warning.resolved"}
    assert raised and all("“质量波动”预警所依据的检验结果不再计入" in closed[r["dedup_key"]] for r in raised)
