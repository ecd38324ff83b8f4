"""The alert panels' and the fold-order readers' findings of the dashboards review, each on a small store built
through the real pipeline (or, for an event of a thousand effects, with effects rows as the pipeline writes them),
the panels' SQL run as Grafana would run it (tests/test_dashboards.py: ``_panels``)."""
from __future__ import annotations

import datetime as dt
import json

from services import clickhouse_url, store  # noqa: F401 - fixtures

from tests.test_dashboards import _fold_into, _panels


def test_an_alert_on_a_retracted_report_is_marked_and_not_counted(store, rules):  # noqa: F811 - fixture
    """The bureau retracted the report an alert was raised on (sampling.retracted): the fold closed the alert, and
    the boards still counted it, with nothing to say why it closed, while the signals panels mark a signal so."""
    from tests.test_corrections import E, REG, sample
    from tests.test_retraction import retraction

    bad = sample("2026-03-12T15:20:00+08:00", passes=False, sample_no="S-BAD")
    worse = sample("2026-03-13T15:20:00+08:00", passes=False, sample_no="S-WORSE")
    pipeline = _fold_into(store, rules, [REG, bad, worse])
    try:
        before = _panels(store, variables={"enterprise": E, "item": "bromate"})
        pipeline.submit([retraction("S-BAD", at="2026-03-20T09:30:00+08:00", enterprise_id=E)])
        assert pipeline.wait_derived(60)
        got = _panels(store, variables={"enterprise": E, "item": "bromate"})
        alerts = {r["alert_id"]: r for r in store.query("SELECT alert_id, group_key, state FROM alerts FINAL")}
    finally:
        pipeline.close()
    (closed,) = [a for a in alerts.values() if a["group_key"] == f"{E}:sampling.failed:S-BAD"]
    assert closed["state"] == "closed", "the fold closes it"
    for table in (("county.json", "最新预警"), ("enterprise.json", "预警记录")):
        rows = {r["预警编号"]: r for r in got[table]}
        assert len(rows) == len(before[table]) == len(alerts), "an alert on a retracted report is shown, not hidden"
        assert rows[closed["alert_id"]]["状态"] == "已关闭（触发的报告已撤销）"
        assert all(not r["状态"].endswith("（触发的报告已撤销）") for i, r in rows.items() if alerts[i]["group_key"].endswith(":S-WORSE"))
    # (what S-BAD alone raised: its failure, and anything else whose every raise was that report)
    retracted = sum(1 for r in got[("county.json", "最新预警")] if r["状态"].endswith("（触发的报告已撤销）"))
    assert got[("county.json", "预警")] == [{"预警": len(alerts) - retracted}]
    assert got[("enterprise.json", "预警数")] == [{"预警": len(alerts) - retracted}]
    assert before[("county.json", "预警")] == [{"预警": len(alerts)}]


def _effect(seq, idx, kind, data, at="2026-03-01 00:00:00"):
    return {"seq": seq, "idx": idx, "kind": kind, "enterprise_id": "E-BIG", "event_id": f"ev-{seq}",
            "occurred_at": dt.datetime.fromisoformat(at), "data": json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))}


def test_the_folds_order_holds_past_a_thousand_effects_of_one_event(store):  # noqa: F811 - fixture
    """Effects were ordered by version * 1000 + idx: the 1,500th effect of event 5 (a tick re-grading a large county)
    came after event 6's first.  The newest grade, name and rectification state are by (version, idx)."""
    rows = [
        _effect(5, 1500, "enterprise.registered", {"name": "旧名称", "category": "pastry"}),
        _effect(6, 0, "enterprise.profile_changed", {"name": "新名称", "category": "packaged_water"}),
        _effect(5, 1501, "risk.graded", {"grade": "D", "score": 70.0, "as_of": "2026-03-01T00:00:00Z"}),
        _effect(6, 1, "risk.graded", {"grade": "A", "score": 10.0, "as_of": "2026-03-02T00:00:00Z"}),
        _effect(5, 1502, "rectification.ordered", {"rectification_id": "R1"}),
        _effect(5, 1503, "rectification.overdue", {"rectification_id": "R1"}),
        _effect(6, 2, "rectification.overdue_withdrawn", {"rectification_id": "R1"}),
    ]
    store.insert("effects", rows)
    got = _panels(store, variables={"enterprise": "E-BIG", "item": "x"})
    assert got[("county.json", "风险等级分布（当前）")] == [{"A": 1, "B": 0, "C": 0, "D": 0}]
    assert got[("enterprise.json", "当前风险等级")] == [{"等级": "A"}]
    assert got[("county.json", "C/D 级企业（当前）")] == []
    assert got[("county.json", "整改逾期（当前）")] == [{"逾期": 0}]
    picker = store.query("SELECT name FROM (" + __import__("dashboards.boards", fromlist=["NAMES"]).NAMES + ")")
    assert picker == [{"name": "新名称"}]


def test_warnings_raised_in_one_event_of_a_thousand_effects_keep_their_order(store):  # noqa: F811 - fixture
    """An alert raised twice: by event 5's 1,500th effect, then by event 6's first.  Its row shows the latest raise
    (event 6's text), not the one a number version * 1000 + idx put last."""
    def raised(seq, idx, message):
        return _effect(seq, idx, "warning.raised", {
            "dedup_key": "E-BIG:x", "severity": "medium", "title_zh": "质量波动", "message_zh": message, "occurred_at": "2026-03-01T00:00:00Z",
            "evidence": {"event_ids": [f"ev-{seq}"]}})

    store.insert("effects", [raised(5, 1500, "较早的一次"), raised(6, 0, "最近的一次")])
    store.insert("alerts", [{"alert_id": "AL-1", "enterprise_id": "E-BIG", "kind": "fluctuation.signal", "severity": "medium", "state": "open",
                             "title": "质量波动", "group_key": "E-BIG:x", "assignee": "", "opened_at": dt.datetime(2026, 3, 1),
                             "updated_at": dt.datetime(2026, 3, 1), "updated_ms": 0, "version": 2, "event_id": "ev-6", "evidence": ""}])
    got = _panels(store, variables={"enterprise": "E-BIG", "item": "x"})
    (row,) = got[("county.json", "最新预警")]
    assert (row["说明"], row["触发事件"], row["触发次数"]) == ("最近的一次", "ev-6", 2)


def test_an_alerts_severity_is_its_own_not_its_latest_raises(store, rules):  # noqa: F811 - fixture
    """A second failure of the same item within the year is raised one level up (紧急); the re-test upholding it
    is noted on that alert at the rule's own level (高).  级别 showed the latest raise's, 高, and the re-test, a
    note on the alert and no new occurrence (alerts.lifecycle), was counted as a second raise."""
    from tests.test_corrections import E, REG, sample

    def failing(at, no, day, made, retest=False):
        return sample(at, passes=False, retest=retest, sample_no=no, batch=f"B-{no}", sampled_on=day, production_date=made)

    first = failing("2026-01-12T15:20:00+08:00", "S1", "2026-01-12", "2026-01-01")
    again = failing("2026-03-12T15:20:00+08:00", "S2", "2026-03-12", "2026-03-01")
    upheld = failing("2026-03-25T09:00:00+08:00", "S2", "2026-03-12", "2026-03-01", retest=True)
    pipeline = _fold_into(store, rules, [REG, first, again, upheld])
    try:
        got = _panels(store, variables={"enterprise": E, "item": "bromate"})
        (alert,) = store.query(f"SELECT alert_id, severity FROM alerts FINAL WHERE group_key = '{E}:sampling.failed:S2'")
        kept = {r["kind"]: r["data"] for r in store.query(
            "SELECT kind, data FROM effects FINAL WHERE kind = 'warning.raised' AND event_id = %(id)s", {"id": str(upheld.event_id)})}
    finally:
        pipeline.close()
    assert alert["severity"] == "critical" and '"severity":"high"' in kept["warning.raised"], "the re-test's raise is at 高"
    for table in (("county.json", "最新预警"), ("enterprise.json", "预警记录")):
        (row,) = [r for r in got[table] if r["预警编号"] == alert["alert_id"]]
        assert (row["级别"], row["触发次数"], row["触发事件"]) == ("紧急", 1, str(again.event_id))


def test_an_acceptance_a_later_failure_reversed_leaves_the_stage_count(store, rules):  # noqa: F811 - fixture
    """The campaign panel counted an enterprise at 检查验收 for good once it had passed, while the progress
    table put it back when a later acceptance failed (campaign.stage_lost)."""
    from tests.test_campaign import tiering, whole_campaign

    def counts(got):
        return {r["阶段"]: r["企业数"] for r in got[("county.json", "提档升级：各阶段完成企业数（当前）")]}

    pipeline = _fold_into(store, rules, whole_campaign())
    try:
        before = counts(_panels(store))
        pipeline.submit([tiering("B", "2027-03-15T10:00:00+08:00", kind="acceptance", passed=False, note="复查未通过")])
        assert pipeline.wait_derived(60)
        after = counts(_panels(store))
    finally:
        pipeline.close()
    assert before["检查验收"] == 1 and "检查验收" not in after
    assert {k: v for k, v in before.items() if k != "检查验收"} == after


def test_a_late_raise_belongs_to_the_alert_the_fold_gave_it(store):  # noqa: F811 - fixture
    """A key's alert AL-1 opened 1 March and was closed; AL-2 opened 1 April; a report dated 20 March came on
    5 April and the fold added it to AL-2, the alert open then.  The boards gave it to AL-1 by its date (AL-1
    shown raised twice, a closed alert back in a March range): the effect row names its alert now."""
    def raised(seq, at, message, alert_id=None):
        data = {"dedup_key": "E-BIG:x", "severity": "medium", "title_zh": "质量波动", "message_zh": message,
                "occurred_at": at.replace(" ", "T") + "Z", "evidence": {"event_ids": [f"ev-{seq}"]}}
        if alert_id is not None:
            data["alert_id"] = alert_id
        return _effect(seq, 0, "warning.raised", data, at=at)

    def alert(alert_id, opened, state):
        return {"alert_id": alert_id, "enterprise_id": "E-BIG", "kind": "fluctuation.signal", "severity": "medium", "state": state,
                "title": "质量波动", "group_key": "E-BIG:x", "assignee": "", "opened_at": opened, "updated_at": opened,
                "updated_ms": 0, "version": 2, "event_id": "ev-1", "evidence": ""}

    store.insert("effects", [raised(1, "2026-03-01 00:00:00", "三月一日", "AL-1"), raised(2, "2026-04-01 00:00:00", "四月一日", "AL-2"),
                             raised(3, "2026-03-20 00:00:00", "迟到的三月二十日报告", "AL-2")])
    store.insert("alerts", [alert("AL-1", dt.datetime(2026, 3, 1), "closed"), alert("AL-2", dt.datetime(2026, 4, 1), "open")])
    got = _panels(store, variables={"enterprise": "E-BIG", "item": "x"})
    rows = {r["预警编号"]: r for r in got[("county.json", "最新预警")]}
    assert (rows["AL-1"]["触发次数"], rows["AL-2"]["触发次数"]) == (1, 2)
    assert rows["AL-1"]["说明"] == "三月一日"


def test_the_alerts_stage_names_the_alert_in_the_raise(rules):
    """The effect a decision came in names the alert it opened or repeated (what the boards read), in each replay."""
    from processors.step import replay
    from tests.test_corrections import REG, sample

    events = [REG, sample("2026-03-12T15:20:00+08:00", passes=False, sample_no="S-1")]
    from alerts.lifecycle import AlertBook

    state, book, named = None, AlertBook(), []
    for e in events:
        state, effects = replay([e], rules, state) if state is not None else replay([e], rules)
        book.apply(e, effects, rules.policy, lambda _: None)
        named += [(x.data["dedup_key"], x.data["alert_id"]) for x in effects if x.kind == "warning.raised"]
    assert named and all(aid in book.alerts and book.alerts[aid].dedup_key == key for key, aid in named)


def test_an_enterprise_that_closed_is_not_on_the_register(store, rules):  # noqa: F811 - fixture
    """在册企业 counted every registration: a producer deregistered (注销) stays off it, and off the grade panels, until it is
    in business again."""
    from tests.test_corrections import E, REG
    from tests.test_risk import ev

    def status(at, value):
        e = ev("enterprise.updated", at, enterprise_id=E, status=value)
        return e.model_copy(update={"payload": e.payload.__class__(status=value)})

    pipeline = _fold_into(store, rules, [REG])
    try:
        def shown():
            got = _panels(store)
            return got[("county.json", "在册企业（当前）")][0]["企业数"], sum(got[("county.json", "风险等级分布（当前）")][0].values())

        counts = [shown()]
        for at, value in (("2026-03-01T09:00:00+08:00", "deregistered"), ("2026-04-01T09:00:00+08:00", "operating")):
            pipeline.submit([status(at, value)])
            assert pipeline.wait_derived(60)
            counts.append(shown())
    finally:
        pipeline.close()
    assert counts == [(1, 1), (0, 0), (1, 1)]  # (the grade pie adds up to the register)


def test_an_alert_closed_because_its_report_was_corrected_is_marked_and_not_counted(store, rules_listing_retest_lab):  # noqa: F811
    """W08's fluctuation alert, closed when the lab corrected its typo, was still counted in 预警 and 预警数 and shown
    已关闭 with no reason, while an alert on a retracted report is left out.  A report corrected is one that never
    stood, as one retracted; a failure an admitted re-test overturned did stand until then: still counted.  A closed
    alert says why the system closed it."""
    from tests.test_corrections import E, REG, sample

    rules = rules_listing_retest_lab
    typo = sample("2026-03-02T15:20:00+08:00", passes=False, sample_no="S-FIX")
    fixed = sample("2026-03-03T09:00:00+08:00", passes=True, sample_no="S-FIX")  # the same lab's corrected report
    failed = sample("2026-03-12T15:20:00+08:00", passes=False, sample_no="S-RE")
    retest = sample("2026-03-25T09:00:00+08:00", passes=True, retest=True, sample_no="S-RE")
    pipeline = _fold_into(store, rules, [REG, typo, fixed, failed, retest])
    try:
        got = _panels(store, variables={"enterprise": E, "item": "bromate"})
        alerts = {r["group_key"] + "#" + r["alert_id"]: r for r in store.query("SELECT alert_id, group_key, state FROM alerts FINAL")}
        closings = store.query("SELECT data FROM effects FINAL WHERE kind = 'warning.resolved'")
    finally:
        pipeline.close()
    (corrected,) = [a for key, a in alerts.items() if key.startswith(f"{E}:sampling.failed:S-FIX#")]
    (overturned,) = [a for key, a in alerts.items() if key.startswith(f"{E}:sampling.failed:S-RE#")]
    assert corrected["state"] == overturned["state"] == "closed", "the fold closes both"
    # (the grade's rise to C on each failure closes when the grade falls back: by the correction, then by the re-test)
    risen = [a for key, a in alerts.items() if ":grade.worsened:" in key]
    assert len(risen) == 2 and all(a["state"] == "closed" for a in risen)
    assert all('"alert_id":' in c["data"] for c in closings), "the alerts stage names the alert a closing closed, or none"
    for table in (("county.json", "最新预警"), ("enterprise.json", "预警记录")):
        rows = {r["预警编号"]: r for r in got[table]}
        assert len(rows) == len(alerts), "shown, not hidden"
        fix, re = rows[corrected["alert_id"]], rows[overturned["alert_id"]]
        assert fix["状态"] == "已关闭（触发的报告已更正）" and "已更正" in fix["关闭原因"] and fix["关闭原因"].endswith(
            "已采取的控制措施是否解除，请依据复检或更正后的检验结论决定")
        assert re["状态"] == "已关闭" and "复检结论为合格" in re["关闭原因"]
        # the typo's rise to C never stood either; the failure's, overturned by the re-test, did
        by_event = {r["触发事件"]: r for r in rows.values() if r["预警"] == "风险等级上升"}
        assert by_event[str(typo.event_id)]["状态"] == "已关闭（触发的报告已更正）"
        assert by_event[str(failed.event_id)]["状态"] == "已关闭" and "风险等级" in by_event[str(failed.event_id)]["关闭原因"]
        assert all(r["关闭原因"] != "" for r in rows.values()), "every alert here closed by itself, and says why"
    assert got[("county.json", "预警")] == [{"预警": len(alerts) - 2}]
    assert got[("enterprise.json", "预警数")] == [{"预警": len(alerts) - 2}]



def test_a_closing_written_before_it_named_its_alert_goes_to_the_alert_of_its_key(store):  # noqa: F811 - fixture
    """Effects rows written before the alerts stage named the alert a warning.resolved closed (a Kafka sink's rows from an
    older worker) give their reason to the alert of the key opened last before them."""
    def raised(seq, at, alert_id):
        return _effect(seq, 0, "warning.raised", {
            "alert_id": alert_id, "dedup_key": "E-BIG:x", "severity": "medium", "title_zh": "质量波动", "message_zh": "质量波动",
            "occurred_at": at.replace(" ", "T") + "Z", "evidence": {"event_ids": [f"ev-{seq}"]}}, at=at)

    def alert(alert_id, opened, state):
        return {"alert_id": alert_id, "enterprise_id": "E-BIG", "kind": "fluctuation.signal", "severity": "medium", "state": state,
                "title": "质量波动", "group_key": "E-BIG:x", "assignee": "", "opened_at": opened, "updated_at": opened,
                "updated_ms": 0, "version": 2, "event_id": "ev-1", "evidence": ""}

    resolved = _effect(2, 0, "warning.resolved", {
        "dedup_key": "E-BIG:x", "rule": "fluctuation.signal", "note_zh": "检验报告已更正，预警自动关闭", "note_en": "closed",
        "evidence": {"event_ids": ["ev-2", "ev-1"], "corrected": True}}, at="2026-03-02 00:00:00")
    correction = _effect(2, 1, "sampling.corrected", {"corrects_event_id": "ev-1", "counts": True}, at="2026-03-02 00:00:00")
    store.insert("effects", [raised(1, "2026-03-01 00:00:00", "AL-1"), resolved, correction, raised(3, "2026-04-01 00:00:00", "AL-2")])
    store.insert("alerts", [alert("AL-1", dt.datetime(2026, 3, 1), "closed"), alert("AL-2", dt.datetime(2026, 4, 1), "open")])
    got = _panels(store, variables={"enterprise": "E-BIG", "item": "x"})
    rows = {r["预警编号"]: (r["状态"], r["关闭原因"]) for r in got[("county.json", "最新预警")]}
    assert rows == {"AL-1": ("已关闭（触发的报告已更正）", "检验报告已更正，预警自动关闭"), "AL-2": ("待处置", "")}
    assert got[("county.json", "预警")] == [{"预警": 1}]


def test_a_county_alert_on_a_retracted_report_is_marked_in_every_alert_panel(store, rules):  # noqa: F811 - fixture
    """A county alert set off by a report the bureau retracted, whose quarter the other producers' failures still keep
    beyond its limit, stays 待处置 (whether the category still stands out is for a supervisor to judge; one the retraction
    leaves within its limit closes: tests/test_county_chart.py); 最新预警 marked it 触发的报告已撤销 and 预警 left it out,
    while 未办结预警 listed it unmarked."""
    from tests.test_corrections import E, REG
    from tests.test_fluctuation import other_producer_failure, water_sample
    from tests.test_retraction import retraction
    from tests.test_spc_second_review import registered

    tipped = water_sample(dt.date(2025, 1, 10), 0.8, pa=(0, 3, 0, 0, 0))
    third = "E-330110-010"   # (a third producer failing in the quarter: 2 of 2 from two producers without the retracted one)
    later = [registered(third, day=dt.date(2025, 1, 2)),
             water_sample(dt.date(2025, 1, 12), 0.8, pa=(0, 2, 0, 0, 0)).model_copy(update={"enterprise_id": third})]
    pipeline = _fold_into(store, rules, [*other_producer_failure(), REG, tipped, *later])
    try:
        (county,) = store.query("SELECT alert_id FROM alerts FINAL WHERE startsWith(group_key, 'county:')")
        pipeline.submit([retraction(tipped.payload.sample_no, at="2025-02-01T09:00:00+08:00", enterprise_id=E)])
        assert pipeline.wait_derived(60)
        got = _panels(store, variables={"enterprise": E, "item": "x"})
        states = {r["alert_id"]: r["state"] for r in store.query("SELECT alert_id, state FROM alerts FINAL")}
    finally:
        pipeline.close()
    assert states[county["alert_id"]] == "open", "the county's alert stays for a supervisor"
    for title in ("最新预警", "未办结预警（当前）"):
        rows = {r["预警编号"]: r["状态"] for r in got[("county.json", title)]}
        assert rows[county["alert_id"]] == "待处置（触发的报告已撤销）", title
        assert any(i != county["alert_id"] and state == "待处置" for i, state in rows.items()), "the other producer's failure, unmarked"
    active = {r["预警编号"] for r in got[("county.json", "未办结预警（当前）")]}
    assert active == {a for a, s in states.items() if s in ("open", "acknowledged", "rectifying")}
    assert got[("county.json", "预警")] == [{"预警": sum(1 for r in got[("county.json", "最新预警")] if not r["状态"].endswith("已撤销）"))}]
