"""Grafana dashboards as code: the JSON models, the files Grafana provisions, every panel's SQL run
against real stores, the answers compared with the fold, and publishing over HTTP.

No Grafana server can run here.  The panels' SQL runs on both backends (chdb, and the real
ClickHouse server: Debian's 18.16) with the plugin's macros and variables expanded as the plugin
expands them; publishing goes to a fake Grafana API (a real HTTP server on loopback that speaks
just enough of Grafana's folder and dashboard endpoints and records what it got).
"""
from __future__ import annotations

import collections
import datetime as dt
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from services import clickhouse_url, drop_database, fresh_database_url, store  # noqa: F401 - fixtures

from dashboards.boards import DASHBOARDS, GROUPS_ZH, SUM_ITEMS_ZH
from dashboards.macros import expand, variables_of
from dashboards.publish import FOLDER_UID, export, render
from tests.conftest import ROOT

BEIJING = dt.timezone(dt.timedelta(hours=8))


def _day(store, time) -> str:  # noqa: F811 - a store
    """A time axis's point (a DateTime in the bureau's zone) as the bureau's day: the server's store reads
    it as UTC text, chdb as the column zone's wall time."""
    from qrisk.store import ClickHouseStore

    if isinstance(store, ClickHouseStore):
        utc = dt.datetime.fromisoformat(str(time)).replace(tzinfo=dt.timezone.utc)
        return utc.astimezone(BEIJING).date().isoformat()
    return str(time)[:10]


WHOLE = (dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc))


# --------------------------------------------------------------------------- the models


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_a_model_grafana_can_load(name):
    model = DASHBOARDS[name]()
    provisioned = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/clickhouse.yaml").read_text())
    datasource = {d["uid"]: d["type"] for d in provisioned["datasources"]}
    assert model["uid"].startswith("qrisk-") and model["title"] and model["schemaVersion"] >= 36
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids))
    titles = [p["title"] for p in model["panels"]]
    assert len(titles) == len(set(titles)), "two panels with one title"
    cells = set()
    for p in model["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not area & cells, f"{p['title']} overlaps another panel"
        cells |= area
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert datasource.get(t["datasource"]["uid"]) == t["datasource"]["type"], "not the provisioned data source"
            assert t["rawSql"].lstrip().upper().startswith("SELECT"), p["title"]
    defined = {v["name"] for v in model["templating"]["list"]}
    used = set().union(*(variables_of(t["rawSql"]) for p in model["panels"] for t in p["targets"]))
    used |= set().union(*(variables_of(v["query"]) for v in model["templating"]["list"]))
    assert used <= defined, f"variables used but not defined: {used - defined}"


def test_the_provisioned_files_are_the_code():
    folder = ROOT / "deploy/grafana/dashboards"
    assert sorted(p.name for p in folder.glob("*.json")) == sorted(DASHBOARDS)
    for name, build in DASHBOARDS.items():
        assert (folder / name).read_text(encoding="utf-8") == render(build()), f"run `qrisk dashboards export` ({name} is stale)"


def test_export_writes_every_dashboard(tmp_path):
    paths = export(tmp_path / "out")
    assert sorted(p.name for p in paths) == sorted(DASHBOARDS)
    for p in paths:
        assert json.loads(p.read_text(encoding="utf-8"))["uid"] == DASHBOARDS[p.name]()["uid"]


def test_compose_mounts_the_provisioned_folder():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/qrisk.yaml").read_text())["providers"][0]
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]


def test_the_additive_groups_are_the_catalogues():
    from schemas.standards import load_catalogue

    catalogue = load_catalogue()
    groups, items = {}, {}
    for category in ("packaged_water", "pastry", "other"):
        block = catalogue.standards_for(category)
        for g in (block.sum_of_ratios if block is not None else ()):
            groups[g.group] = g.name_zh
            items[g.group] = g.item_name_zh
    assert groups == GROUPS_ZH and items == SUM_ITEMS_ZH


def test_the_event_type_labels_are_the_contracts():
    from dashboards.boards import EVENT_TYPE_ZH
    from schemas.events import EVENT_TYPE_ZH as CONTRACT

    assert EVENT_TYPE_ZH == CONTRACT


def test_the_campaign_stages_are_in_the_folds_order():
    from dashboards.boards import CAMPAIGN_STAGES
    from processors.campaign import STAGES

    assert tuple(CAMPAIGN_STAGES) == STAGES


def test_macros_expand_as_the_plugin_does():
    start = dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc)
    end = dt.datetime(2025, 3, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
    sql = "SELECT 1 WHERE $__timeFilter(occurred_at) AND $__dateFilter(d) AND e = '${enterprise}' AND t < $__toTime"
    # a single value as it is, quote and all (CHDatasource.format; tests/test_dashboards_variables.py)
    assert expand(sql, start, end, {"enterprise": "O'Brien"}) == (
        "SELECT 1 WHERE occurred_at >= toDateTime(1740787200) AND occurred_at <= toDateTime(1743465599)"
        " AND d >= toDate('2025-03-01') AND d <= toDate('2025-03-31') AND e = 'O'Brien' AND t < toDateTime(1743465599)")
    with pytest.raises(ValueError, match="item"):
        expand("SELECT '${item}'", start, end, {})
    # an option's text, as a panel title names it (检测值：${item:text})
    assert expand("SELECT '${item:text}', '${item}'", start, end, {"item": "bromate", "item:text": "溴酸盐"}) == "SELECT '溴酸盐', 'bromate'"
    assert variables_of("SELECT '${item:text}'") == {"item"}
    with pytest.raises(ValueError, match="item:text"):
        expand("SELECT '${item:text}'", start, end, {"item": "bromate"})
    with pytest.raises(ValueError, match="__nope"):
        expand("SELECT $__nope(x)", start, end, {})


# --------------------------------------------------------------------------- every panel on real data


@pytest.fixture(scope="module", params=["chdb", "clickhouse"])
def county_store(request, tmp_path_factory):
    """One migrated store per backend for the whole module: the county below is folded into it once and only
    read by the tests that use it (building it took ~2 s, and ~30 tests read it)."""
    from qrisk.store import ChdbStore, ClickHouseStore, migrate

    if request.param == "chdb":
        s = ChdbStore(tmp_path_factory.mktemp("county") / "chdb")
        migrate(s)
        yield s
        s.close()
        return
    base = request.getfixturevalue("clickhouse_url")
    name, url = fresh_database_url(base, "county")
    s = ClickHouseStore(url)
    migrate(s)
    yield s
    s.close()
    drop_database(base, name)


@pytest.fixture(scope="module")
def county(county_store, rules):  # noqa: F811 - fixture
    """One county folded by the embedded pipeline (``effects``), another by the Kafka worker's fold
    and written by the sink (``stream_effects``, ``events``), in one store, plus one dead letter.
    Shared by the module's tests: a test that writes rows of its own takes an empty ``store`` instead."""
    store = county_store
    from qrisk.demo import CountyGenerator
    from qrisk.kafka_log import event_value
    from qrisk.pipeline import DeadLetter, Pipeline
    from qrisk.sink import Sink
    from qrisk.topics import KafkaSettings
    from qrisk.worker import BatchOutput, Fold

    received = dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.timezone.utc)
    # (seed 18: a county with a category p-chart signal and a note; seed 11's two 2-of-11 pastry quarters are within
    # the exact binomial limits)
    embedded = CountyGenerator(seed=18, county="A-").generate()
    pipeline = Pipeline(store, rules, clock=lambda: received, snapshot_every=dt.timedelta(days=1))
    for i in range(0, len(embedded), 400):
        pipeline.submit(embedded[i:i + 400])
    pipeline.dead_letter([DeadLetter(channel="http", position="req-1#0", raw=b'{"event_type": "sampling.result"}',
                                     reason="payload.sample_no: 缺少必填字段")])
    assert pipeline.wait_derived(120)
    states = [pipeline.state]

    streamed = [e.model_copy(update={"received_at": received}) for e in CountyGenerator(seed=12, county="B-").generate()
                if e.enterprise_id != "*"]
    fold = Fold(rules, "log")
    out = BatchOutput()
    raws = [event_value(e) for e in streamed]
    for offset, raw in enumerate(raws):
        fold.apply(0, offset, raw, int(received.timestamp() * 1000), out)
    settings = KafkaSettings()
    topics = settings.topics()
    tp = collections.namedtuple("TP", "topic partition")
    message = collections.namedtuple("Message", "offset value")
    sink = Sink(store, settings, consumer=object())
    sink.process({tp(topics.events.name, 0): [message(i, raw) for i, raw in enumerate(raws)],
                  tp(topics.effects.name, 0): [message(i, v) for i, (_, v) in enumerate(out.effects)]})
    assert sink.stats["bad_messages"] == 0
    from processors.credit_file import CountyState

    b_state = CountyState()
    b_state.files = {eid: fs.file for eid, fs in fold.files.items()}
    states.append(b_state)
    alerts = list(pipeline.alerts.alerts.values()) + [a for fs in fold.files.values() for a in fs.alerts.alerts.values()]
    yield {"store": store, "states": states, "events": embedded + streamed, "alerts": alerts}
    pipeline.close()


def _panels(store, start=WHOLE[0], end=WHOLE[1], variables=None, boards=None):  # noqa: F811 - a store, not the fixture
    from qrisk.cli_dashboards import run_panels

    results = run_panels(store, start, end, variables, boards=boards)
    failed = [f"{r['dashboard']} / {r['panel']}: {r['error']}" for r in results if "error" in r]
    assert not failed, "\n".join(failed)
    return {(r["dashboard"], r["panel"]): r["rows"] for r in results}


def _state_zh(alert) -> str:
    """An alert's state as the alert panels show it (早处置: one acknowledged and left past its handling deadline reads so)."""
    from alerts.lifecycle import HANDLING_OVERDUE_ZH, STATE_ZH

    return HANDLING_OVERDUE_ZH if alert.handling_overdue else STATE_ZH[alert.state]


def _files(county):
    return {eid: f for state in county["states"] for eid, f in state.files.items()}


def test_every_panel_answers_what_the_fold_knows(county):
    got = _panels(county["store"])
    files = _files(county)
    registered = [f for f in files.values() if f.profile is not None]
    assert got[("county.json", "在册企业（当前）")] == [{"企业数": len(registered)}]
    final = [s for f in files.values() for s in f.final_samples()]
    assert got[("county.json", "抽检批次")] == [{"批次": len(final)}]
    # (by their conclusions: a failure qrisk alone finds counts as the report's 合格, as in the credit files)
    failed = [s for s in final if s.judgement.counted == "fail"]
    assert got[("county.json", "不合格批次")] == [{"不合格": len(failed)}] and failed
    assert any(s.judgement.unconfirmed for s in final)  # the planted pastry maker's report that missed its sum
    grades = collections.Counter(f.risk.grade for f in files.values() if f.risk.grade)
    # (one row, a slice per grade: a grade no enterprise has is 0)
    assert got[("county.json", "风险等级分布（当前）")] == [{g: grades[g] for g in "ABCD"}]
    worst = got[("county.json", "C/D 级企业（当前）")]
    assert {r["企业"] for r in worst} == {eid for eid, f in files.items() if f.risk.grade in ("C", "D")} and worst
    for row in worst:
        f = files[row["企业"]]
        assert (row["等级"], row["风险分"], row["名称"]) == (f.risk.grade, f.risk.score, f.profile.name)
    pareto = collections.Counter(code for s in failed for code in s.judgement.counted_failed_codes())
    assert sorted(r["不合格批次"] for r in got[("county.json", "不合格项目排行")]) == sorted(pareto.values())
    assert any(r["项目"] == SUM_ITEMS_ZH["preservative"] for r in got[("county.json", "不合格项目排行")])  # the planted pastry maker
    # the enterprise picker: ids as values, "id name" as the text a supervisor chooses from
    picker = next(v for v in DASHBOARDS["enterprise.json"]()["templating"]["list"] if v["name"] == "enterprise")
    options = [tuple(r.values()) for r in county["store"].query(expand(picker["query"], *WHOLE, {}))]
    assert options == sorted((f.enterprise_id, f"{f.enterprise_id} {f.profile.name}") for f in registered)
    # the campaign, from both effect tables, and the alerts still being handled (both folds')
    from processors.campaign import STAGE_ZH, STAGES

    stages = collections.Counter(s for f in files.values() for s in f.campaign.stages)
    assert [(r["阶段"], r["企业数"]) for r in got[("county.json", "提档升级：各阶段完成企业数（当前）")]] == [
        (STAGE_ZH[s], stages[s]) for s in STAGES if stages[s]]
    active = {a.alert_id: a for a in county["alerts"] if a.state in ("open", "acknowledged", "rectifying")}
    rows = got[("county.json", "未办结预警（当前）")]
    assert {r["预警编号"] for r in rows} == set(active) and rows
    from alerts.lifecycle import STATE_ZH

    def shown(a):  # (a county alert is the county's, named by the enterprise that tipped it, with no credit file)
        county_wide = a.dedup_key.startswith("county:")
        return (f"县级（由 {a.enterprise_id} 的抽检触发）" if county_wide else a.enterprise_id, "" if county_wide else a.enterprise_id)

    assert all((r["企业"], r["诚信档案"], r["预警"], r["状态"]) == (*shown(active[r["预警编号"]]), active[r["预警编号"]].title_zh,
                                                               _state_zh(active[r["预警编号"]])) for r in rows)
    assert {r["状态"] for r in rows} >= {"待处置", "整改中"}, "the demo's rectification orders put some under rectification"
    # (待处置 is the open state alone; the time shown moves with the system's steps too: 最近更新, not 最近处置)
    assert {r["状态"] for r in rows} <= {"待处置", "已确认", "已确认超时未处置", "整改中"}
    assert all("最近更新" in r and "最近处置" not in r for r in rows)
    # both runtimes write the alerts table: the embedded county's and the Kafka worker's are listed
    assert {active[r["预警编号"]].enterprise_id[:2] for r in rows} == {"A-", "B-"}
    assert got[("intake.json", "接收事件")] == [{"事件": sum(1 for e in county["events"] if e.event_type != "clock.tick")}]
    from schemas.events import EVENT_TYPE_ZH

    # (as 接收事件 beside it: the system's own clock is not received)
    by_type = collections.Counter(EVENT_TYPE_ZH[e.event_type] for e in county["events"] if e.event_type != "clock.tick")
    hourly = collections.Counter()
    for r in got[("intake.json", "每小时接收事件（按类型）")]:
        hourly[r["类型"]] += r["事件"]
    assert hourly == by_type, "event types by their Chinese names"
    assert any(e.event_type == "clock.tick" for e in county["events"])
    assert got[("intake.json", "拒收记录")] == [{"待处理": 1, "已重新提交并接收": 0, "处理失败": 0}]
    assert got[("intake.json", "未处理的拒收记录")][0]["原因"] == "payload.sample_no: 缺少必填字段"


def test_undelivered_notifications_show_with_their_last_attempt(store):  # noqa: F811 - fixture
    """The intake board's delivery panels read each notification's newest attempt: a failure and a
    retry show with the receiver's answer; a notification sent at its second attempt does not."""
    import datetime as dt

    at = dt.datetime(2031, 6, 1, 8, 0)
    start, end = dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2032, 1, 1, tzinfo=dt.timezone.utc)

    def attempt(did, n, status, error=""):
        return {"delivery_id": did, "alert_id": f"AL-{did}", "enterprise_id": "E-1", "receiver": "desk", "channel": "webhook",
                "attempt": n, "status": status, "at": at + dt.timedelta(minutes=n), "at_ms": 0, "response_code": 0, "error": error}

    store.insert("deliveries", [attempt("x1", 1, "retry", "HTTP 503"), attempt("x1", 2, "sent"),
                                attempt("x2", 1, "retry", "HTTP 503"), attempt("x2", 2, "failed", "HTTP 410 Gone"),
                                attempt("x3", 1, "retry", "connection refused (nothing listening)")])
    got = _panels(store, start, end, boards=("intake.json",))
    assert got[("intake.json", "预警通知发送失败（当前）")] == [{"失败": 1}]
    rows = got[("intake.json", "未送达的预警通知（当前）")]
    assert [(r["预警编号"], r["状态"], r["尝试次数"], r["原因"]) for r in rows] == [
        ("AL-x2", "失败", 2, "HTTP 410 Gone"), ("AL-x3", "重试中", 1, "connection refused (nothing listening)")]


def test_notifications_a_rebuild_held_back_are_no_delivery_failures(store, rules):  # noqa: F811 - fixture
    """After a rebuild under a policy with a webhook receiver, 预警通知发送失败 showed 2 and 未送达的预警通知 listed them
    失败 (重建派生表…未发送): notifications about past steps a rebuild recorded as not sent, which the dispatcher's
    health and `qrisk alerts redeliver` rightly skip.  A receiver's real failure still shows."""
    from processors.step import Rules
    from qrisk.pipeline import Pipeline
    from schemas.policy import Policy
    from tests.test_alerts import RECEIVERS
    from tests.test_corrections import REG, sample

    at = dt.datetime(2026, 3, 12, 8, 0, tzinfo=dt.timezone.utc)
    first = Pipeline(store, rules, clock=lambda: at)
    first.recover()
    first.submit([REG, sample("2026-03-12T15:20:00+08:00", passes=False, sample_no="S-1")])
    assert first.wait_derived(60)
    routed = Rules(rules.catalogue, Policy.model_validate({"alerts": {"receivers": RECEIVERS, "routes": [{"receivers": ["desk"]}]}}))
    rebuilt = Pipeline(store, routed, clock=lambda: at + dt.timedelta(days=60))
    rebuilt.recover(rebuild=True)
    withheld = store.query("SELECT delivery_id, alert_id FROM deliveries FINAL WHERE status = 'failed'")
    assert withheld, "the rebuild records the new receiver's notifications of past steps as not sent"
    store.insert("deliveries", [{"delivery_id": "given-up", "alert_id": withheld[0]["alert_id"], "enterprise_id": REG.enterprise_id,
                                 "receiver": "desk", "channel": "webhook", "attempt": 5, "status": "failed",
                                 "at": dt.datetime(2026, 5, 11, 9, 0), "at_ms": 0, "response_code": 410, "error": "HTTP 410 Gone"}])
    got = _panels(store, boards=("intake.json",))
    rebuilt.close()
    assert got[("intake.json", "预警通知发送失败（当前）")] == [{"失败": 1}]
    assert [(r["状态"], r["原因"]) for r in got[("intake.json", "未送达的预警通知（当前）")]] == [("失败", "HTTP 410 Gone")]


def test_a_rebuilds_not_sent_mark_is_the_outboxs():
    from alerts.outbox import _WITHHELD
    from dashboards.boards import WITHHELD_BY_REBUILD
    from qrisk.pipeline import _HISTORY

    assert WITHHELD_BY_REBUILD == _WITHHELD and _HISTORY.startswith(_WITHHELD)


def test_warning_and_signal_texts_come_out_as_the_fold_wrote_them(county):
    """The texts are read out of JSON by pattern (no JSONExtract on ClickHouse 18.16): every row
    must equal the effect's own field, quotes and all, from both effect tables."""
    store = county["store"]
    got = _panels(store, boards=("county.json",))
    data = {}
    for row in store.query("SELECT event_id, kind, data FROM effects FINAL UNION ALL SELECT event_id, kind, data FROM stream_effects FINAL"):
        data.setdefault((row["event_id"], row["kind"]), []).append(json.loads(row["data"]))
    warnings = got[("county.json", "最新预警")]
    alerts = {a["alert_id"]: a for a in store.query("SELECT alert_id, group_key, severity, title FROM alerts FINAL")}
    assert len(warnings) == min(200, len(alerts)) and len(alerts) > 50
    severity = {"critical": "紧急", "high": "高", "medium": "中", "low": "低"}
    for row in warnings:
        # the alert's severity and title now (a severity only rises), the text of its latest raise
        a = alerts[row["预警编号"]]
        assert (row["级别"], row["预警"]) == (severity[a["severity"]], a["title"])
        assert row["说明"] in [d["message_zh"] for d in data[(row["触发事件"], "warning.raised")] if d["dedup_key"] == a["group_key"]]
    signals = got[("county.json", "最新质量波动信号")]
    assert signals
    for row in signals:
        named = [(f"{d['product']} · {d['item_name']}" if "series" in d else f"{ {'p': '抽检不合格率', 'c': '投诉数'}[d['chart']]} {d['period']}",
                  d["text_zh"]) for d in data[(row["事件"], "fluctuation.signal")]]
        assert (row["产品与项目"], row["信号"]) in named
    # both halves are there: the embedded county's and the streamed county's
    assert {row["诚信档案"][:2] for row in warnings if row["诚信档案"]} == {"A-", "B-"}


def test_the_time_range_and_the_enterprise_narrow_the_panels(county):
    files = _files(county)
    # (the bureau's days: a sampling date is a local date)
    start = dt.datetime(2025, 4, 1, tzinfo=BEIJING)
    # (to July: the riskiest plant's drift is signalled in July since the limits allow for an 8-point baseline)
    end = dt.datetime(2025, 7, 31, 23, 59, 59, tzinfo=BEIJING)
    eid = max(files, key=lambda e: (files[e].risk.score or 0, e))  # the riskiest: it has warnings and failures
    got = _panels(county["store"], start, end, {"enterprise": eid, "item": "pseudomonas_aeruginosa"}, boards=("county.json", "enterprise.json"))
    final = [s for f in files.values() for s in f.final_samples() if start.date() <= s.sampled_on <= end.date()]
    assert got[("county.json", "抽检批次")] == [{"批次": len(final)}] and final
    mine = [s for s in files[eid].final_samples() if start.date() <= s.sampled_on <= end.date()]
    assert [r["抽样编号"] for r in got[("enterprise.json", "抽检记录")]] == [
        s.sample_no for s in sorted(mine, key=lambda s: (s.sampled_on, s.event_id), reverse=True)]
    assert got[("enterprise.json", "当前风险等级")] == [{"等级": files[eid].risk.grade}]
    assert len(files[eid].warnings) < 100  # all of them still in the file (it keeps the latest 100)
    warned = [w for w in files[eid].warnings if start <= w.occurred_at <= end]
    latest = {w.dedup_key: w for w in sorted(warned, key=lambda w: w.occurred_at)}  # an alert raised again is one alert
    assert got[("enterprise.json", "预警数")] == [{"预警": len(latest)}] and warned
    assert sorted(r["触发事件"] for r in got[("enterprise.json", "预警记录")]) == sorted(w.event_id for w in latest.values())


def test_the_enterprise_board_names_failed_items_as_the_credit_file_does(county):
    """抽检记录 showed a judgements row's codes ("moulds", "pseudomonas_aeruginosa"): the items are named
    as the credit file names them, a sum of ratios by its SAMR name."""
    files = _files(county)
    failing = sorted(eid for eid, f in files.items() if any(s.judgement.verdict == "fail" for s in f.final_samples()))
    assert len(failing) >= 2
    for eid in failing:
        rows = _panels(county["store"], variables={"enterprise": eid, "item": "x"}, boards=("enterprise.json",))[("enterprise.json", "抽检记录")]
        expected = {}
        for s in files[eid].final_samples():
            j = s.judgement
            names = {i.item_code: i.item_name or i.item_code for i in j.items}
            names.update({f"sum_of_ratios:{c.group}": c.item_name or f"{c.group_name}比例之和" for c in j.sum_checks})
            expected[s.sample_no] = "、".join(names[code] for code in j.counted_failed_codes())
        assert {r["抽样编号"]: r["不合格项目"] for r in rows} == expected
        assert any(r["不合格项目"] for r in rows) and not any(re.search(r"[a-z_]{3}", r["不合格项目"]) for r in rows)


def test_the_measured_values_panel_says_what_it_draws(county):
    """The description said "ND 计为 0": sampling_items keeps an ND as NULL (no point), and the control
    charts place it at half the detection limit.  The description says so, and the rows bear it out."""
    model = DASHBOARDS["enterprise.json"]()
    described = next(p for p in model["panels"] if p["title"] == "检测值：${item:text}")["description"]
    assert "ND 计为 0" not in described and "空值" in described and "检出限的一半" in described
    files = _files(county)
    eid, f = next((eid, f) for eid, f in sorted(files.items())
                  if any(i.item_code == "bromate" and all(v == "ND" for v in i.values) for s in f.samples for i in s.judgement.items))
    rows = _panels(county["store"], variables={"enterprise": eid, "item": "bromate"}, boards=("enterprise.json",))[("enterprise.json", "检测值：${item:text}")]
    by_day: dict = {}
    for s in f.final_samples():
        for i in s.judgement.items:
            if i.item_code == "bromate":
                by_day.setdefault(s.sampled_on, []).extend(float(v) for v in i.values if v != "ND")
    got = {dt.date.fromisoformat(_day(county["store"], r["time"])): r["检测值"] for r in rows}
    assert got == {d: (max(v) if v else None) for d, v in by_day.items()}
    assert None in got.values(), "a batch not detected has no point (not 0)"


def test_the_measured_values_are_those_of_the_reports_that_count(store, rules):  # noqa: F811 - fixture
    """sampling_items keeps every report's values: a value a lab corrected, and a report the bureau
    retracted (filed under the wrong enterprise), were still drawn and still offered as items to chart."""
    from qrisk.pipeline import Pipeline
    from tests.test_corrections import E, REG, sample
    from tests.test_retraction import retraction

    first = sample("2026-03-12T15:20:00+08:00", passes=False, bromate=0.05, sampled_on="2026-03-05")
    fixed = sample("2026-03-14T10:00:00+08:00", passes=False, bromate=0.03, sampled_on="2026-03-05")  # a correction
    misfiled = sample("2026-04-02T10:00:00+08:00", passes=False, bromate=0.08, sample_no="S-ELSEWHERE",
                      batch="20260328", production_date="2026-03-28", sampled_on="2026-04-01")
    kept = sample("2026-05-06T10:00:00+08:00", passes=True, sample_no="S-MAY", batch="20260501", production_date="2026-05-01",
                  sampled_on="2026-05-06")
    pipeline = Pipeline(store, rules, clock=lambda: dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc))
    try:
        pipeline.submit([REG, first, fixed, misfiled, kept, retraction("S-ELSEWHERE", at="2026-04-20T09:00:00+08:00")])
        assert pipeline.wait_derived(60)
        f = pipeline.state.files[E]
        assert [s.event_id for s in f.final_samples()] == [str(fixed.event_id), str(kept.event_id)]
        rows = _panels(store, variables={"enterprise": E, "item": "bromate"}, boards=("enterprise.json",))[("enterprise.json", "检测值：${item:text}")]
        got = {_day(store, r["time"]): r["检测值"] for r in rows}
        assert got == {"2026-03-05": 0.03, "2026-05-06": None}  # the corrected value, not 0.05; no 0.08 in April
        # the item list offers only items with a value in a report that counts
        model = DASHBOARDS["enterprise.json"]()
        (item_var,) = [v for v in model["templating"]["list"] if v["name"] == "item"]
        options = [tuple(r.values()) for r in store.query(expand(item_var["query"], *WHOLE, {"enterprise": E}))]
        offered = {code for code, _ in options}
        assert "bromate" in offered
        # the code is the value, the item's Chinese name the text (the plugin's first and second columns)
        names = {i.item_code: i.item_name for s in f.final_samples() for i in s.judgement.items}
        assert options == sorted((code, names[code]) for code in offered) and dict(options)["bromate"] == "溴酸盐"
        pipeline.submit([retraction(fixed.payload.sample_no, at="2026-06-01T09:00:00+08:00")])
        assert pipeline.wait_derived(60)
        rows = _panels(store, variables={"enterprise": E, "item": "bromate"}, boards=("enterprise.json",))[("enterprise.json", "检测值：${item:text}")]
        assert {_day(store, r["time"]): r["检测值"] for r in rows} == {"2026-05-06": None}
        offered = {r["item_code"] for r in store.query(expand(item_var["query"], *WHOLE, {"enterprise": E}))}
        assert "bromate" not in offered  # its only value left is in a retracted report
    finally:
        pipeline.close()


def test_a_county_signal_is_shown_as_the_countys_and_a_note_as_a_note(county):
    """A category's p chart (本县糕点类…) was listed under the enterprise whose sample tipped it
    (企业: P05); a detection after non-detects (仅作提示) was counted as a signal."""
    store = county["store"]
    got = _panels(store, boards=("county.json",))
    data = {}
    for row in store.query("SELECT event_id, kind, data FROM effects FINAL UNION ALL SELECT event_id, kind, data FROM stream_effects FINAL"):
        if row["kind"] == "fluctuation.signal":
            d = json.loads(row["data"])
            data.setdefault((row["event_id"], d["text_zh"]), []).append(d)
    rows = got[("county.json", "最新质量波动信号")]
    zh = {"packaged_water": "包装饮用水", "pastry": "糕点"}
    county_wide = notes = 0
    for row in rows:
        d = data[(row["事件"], row["信号"])][0]
        if d["scope"] == "category":
            county_wide += 1
            assert row["范围"] == f"全县·{zh[d['category']]}类" and row["企业"].startswith("由 ") and row["企业"].endswith(" 的抽检触发")
        else:
            assert row["范围"] == "本企业" and not row["企业"].startswith("由 ")
        notes += d.get("note", False)
        assert row["类型"] == ("提示" if d.get("note") else "信号")
    assert county_wide and notes, "the demo counties have both"
    every = [d for ds in data.values() for d in ds]
    weekly = sum(r["信号数"] for r in got[("county.json", "质量波动信号（每周）")])
    assert weekly == sum(1 for d in every if not d.get("note")) < len(every)


# --------------------------------------------------------------------------- publishing


class FakeGrafana(ThreadingHTTPServer):
    """A fake of Grafana's HTTP API (no Grafana server can run here): folders and dashboards/db."""

    def __init__(self):
        self.requests: list[tuple[str, str, dict, dict]] = []
        self.folders: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: FakeGrafana

    def log_message(self, *args):  # quiet
        pass

    def _answer(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.server.requests.append(("GET", self.path, dict(self.headers), {}))
        uid = self.path.rsplit("/", 1)[-1]
        if self.path.startswith("/api/folders/") and uid in self.server.folders:
            return self._answer(200, self.server.folders[uid])
        self._answer(404, {"message": "folder not found"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.requests.append(("POST", self.path, dict(self.headers), body))
        if self.headers.get("authorization") != "Bearer glsa_test":
            return self._answer(401, {"message": "invalid API key"})
        if self.path == "/api/folders":
            self.server.folders[body["uid"]] = body
            return self._answer(200, {"uid": body["uid"], "title": body["title"]})
        if self.path == "/api/dashboards/db":
            d = body["dashboard"]
            version = self.server.dashboards.get(d["uid"], {}).get("version", 0) + 1
            self.server.dashboards[d["uid"]] = {**body, "version": version}
            return self._answer(200, {"status": "success", "uid": d["uid"], "version": version, "url": f"/d/{d['uid']}"})
        self._answer(404, {"message": "not found"})


@pytest.fixture
def grafana():
    srv = FakeGrafana()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_publish_puts_every_dashboard_in_the_qrisk_folder(grafana, capsys):
    from qrisk.cli import main

    url = f"http://127.0.0.1:{grafana.server_address[1]}"
    assert main(["dashboards", "publish", "--url", url, "--token", "glsa_test"]) == 0
    assert main(["dashboards", "publish", "--url", url, "--token", "glsa_test"]) == 0  # again: replaced, not duplicated
    assert list(grafana.folders) == [FOLDER_UID]
    assert sorted(grafana.dashboards) == sorted(b()["uid"] for b in DASHBOARDS.values())
    for posted in grafana.dashboards.values():
        assert posted["folderUid"] == FOLDER_UID and posted["overwrite"] is True and posted["dashboard"]["id"] is None
        assert posted["version"] == 2
    out = capsys.readouterr().out
    assert "success: qrisk-county version 2" in out
    assert sum(1 for m, p, _, _ in grafana.requests if (m, p) == ("POST", "/api/folders")) == 1


def test_publish_with_a_wrong_token_says_so(grafana):
    from grafana_client.client import GrafanaUnauthorizedError

    from dashboards.publish import publish

    grafana.folders[FOLDER_UID] = {"uid": FOLDER_UID}
    with pytest.raises(GrafanaUnauthorizedError):
        publish(f"http://127.0.0.1:{grafana.server_address[1]}", token="wrong")
    assert not grafana.dashboards


def test_check_command_reports_every_panel(tmp_path, capsys, rules):
    from qrisk.cli import main
    from qrisk.demo import CountyGenerator
    from qrisk.pipeline import Pipeline
    from qrisk.store import ChdbStore, migrate

    target = tmp_path / "store"
    st = ChdbStore(str(target))
    migrate(st)
    pipeline = Pipeline(st, rules, snapshot_every=dt.timedelta(days=1))
    pipeline.submit(CountyGenerator(seed=5, months=3).generate())
    assert pipeline.wait_derived(60)
    pipeline.close()
    st.close()
    assert main(["dashboards", "check", "--store", str(target), "--from", "2000-01-01", "--to", "2100-01-01"]) == 0
    out = capsys.readouterr().out
    panels = sum(len(b()["panels"]) for b in DASHBOARDS.values())
    assert f"{panels} / {panels} 个面板查询成功" in out
    assert "✓ county.json / 在册企业（当前）: 1 行" in out

    # times in Beijing time, and said so: a director pastes them into a report next to the XLSX and the alert texts
    assert "时间均为北京时间" in out.splitlines()[0]
    from qrisk.cli_dashboards import run_panels
    st = ChdbStore(str(target))
    try:
        raw = run_panels(st, dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc))
    finally:
        st.close()
    alert = next(r for r in raw if r["panel"] == "最新预警")["rows"][0]
    utc = dt.datetime.fromisoformat(alert["时间"])
    local = (utc + dt.timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")
    assert f'"时间": "{local}", "企业": "{alert["企业"]}"' in out
    assert f'"时间": "{alert["时间"]}", "企业"' not in out


def test_dashboards_check_to_a_leap_day_starts_five_years_before_on_the_first_of_march(tmp_path, capsys):
    """`qrisk dashboards check --to 2024-02-29` crashed (2019 has no 29 February); so would a check with no range on
    2028-02-29."""
    from qrisk.cli import main
    from qrisk.store import ChdbStore, migrate

    target = tmp_path / "store"
    st = ChdbStore(str(target))
    migrate(st)
    st.close()
    assert main(["dashboards", "check", "--store", str(target), "--to", "2024-02-29"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("2019-03-01 至 2024-02-29")
    from qrisk.cli_dashboards import _years_before

    assert _years_before(dt.date(2028, 2, 29), 5) == dt.date(2023, 3, 1)
    assert _years_before(dt.date(2028, 2, 29), 4) == dt.date(2024, 2, 29)
    assert _years_before(dt.date(2026, 11, 28), 5) == dt.date(2021, 11, 28)


# --------------------------------------------------------------------------- the reviewer's findings


def _fold_into(store, rules, events, now=dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)):  # noqa: F811 - a store
    """``events`` through the embedded pipeline into ``store``; the pipeline, to close."""
    from qrisk.pipeline import Pipeline

    pipeline = Pipeline(store, rules, clock=lambda: now)
    pipeline.submit(events)
    assert pipeline.wait_derived(60)
    return pipeline


def test_overdue_rectifications_are_those_overdue_and_open_now(county):
    """整改逾期 counted the overdue marks made in the time range: a rectification overdue since before it
    and still open was missed.  It is the credit files' state, whatever the range."""
    files = _files(county)
    overdue = sum(1 for f in files.values() for r in f.rectifications if r.overdue and r.status in ("open", "rejected"))
    assert overdue, "the demo counties leave some overdue"
    later = (dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2031, 2, 1, tzinfo=dt.timezone.utc))
    for start, end in (WHOLE, later):
        assert _panels(county["store"], start, end, boards=("county.json",))[("county.json", "整改逾期（当前）")] == [{"逾期": overdue}]


def test_an_overdue_mark_withdrawn_is_not_overdue(store, rules):  # noqa: F811 - fixture
    """A completion in time whose record came after the tick that marked it overdue withdraws the mark
    (rectification.overdue_withdrawn): it was still counted.  A late completion rejected stays overdue."""
    from tests.test_corrections import E, REG
    from tests.test_fold import ev

    events = [REG,
              ev("rectification.ordered", "2026-03-25T11:00:00+08:00", rectification_id="R1", deadline="2026-04-24"),
              ev("rectification.ordered", "2026-03-25T11:05:00+08:00", rectification_id="R2", deadline="2026-04-24"),
              ev("rectification.ordered", "2026-03-25T11:10:00+08:00", rectification_id="R3", deadline="2026-04-24"),
              ev("rectification.ordered", "2026-03-25T11:15:00+08:00", rectification_id="R4", deadline="2026-04-24"),
              ev("clock.tick", "2026-04-26T00:00:00+08:00", enterprise_id="*"),
              ev("rectification.completed", "2026-04-20T10:00:00+08:00", rectification_id="R1"),  # in time, came late
              ev("rectification.completed", "2026-04-27T10:00:00+08:00", rectification_id="R3"),  # late, then rejected
              ev("rectification.verified", "2026-04-29T10:00:00+08:00", rectification_id="R3", accepted=False, verifier="王建国",
                 note="消毒记录不全"),
              ev("rectification.completed", "2026-04-27T11:00:00+08:00", rectification_id="R4"),  # late, then accepted
              ev("rectification.verified", "2026-04-29T11:00:00+08:00", rectification_id="R4", accepted=True, verifier="王建国",
                 note="复查合格")]
    pipeline = _fold_into(store, rules, events)
    try:
        f = pipeline.state.files[E]
        on_file = sorted(r.rectification_id for r in f.rectifications if r.overdue and r.status in ("open", "rejected"))
        assert on_file == ["R2", "R3"]
        assert _panels(store, boards=("county.json",))[("county.json", "整改逾期（当前）")] == [{"逾期": 2}]
    finally:
        pipeline.close()


def test_a_range_of_one_local_day_counts_that_days_samples(store, rules):  # noqa: F811 - fixture
    """$__dateFilter takes the range's UTC dates: a Beijing user's range from 2025-09-29 00:00 +08:00
    filtered from 2025-09-28, and counted the 28th's samples as the 29th's."""
    from tests.test_corrections import E, REG, sample

    def on(day, no):
        return sample(f"{day}T15:00:00+08:00", sample_no=no, batch=day.replace("-", ""), production_date=day, sampled_on=day)

    pipeline = _fold_into(store, rules, [REG, on("2025-09-28", "S-28"), on("2025-09-29", "S-29"), on("2025-09-30", "S-30")])
    try:
        day = (dt.datetime(2025, 9, 29, tzinfo=BEIJING), dt.datetime(2025, 9, 29, 23, 59, 59, tzinfo=BEIJING))
        got = _panels(store, *day, variables={"enterprise": E, "item": "bromate"}, boards=("county.json", "enterprise.json"))
        assert got[("county.json", "抽检批次")] == [{"批次": 1}]
        assert [(r["抽样编号"], r["抽样日期"]) for r in got[("enterprise.json", "抽检记录")]] == [("S-29", "2025-09-29")]
        # a day, as text: Grafana reads a Date column as midnight UTC, and showed 2025-09-29 08:00 in the bureau's zone
        (records,) = [p for p in DASHBOARDS["enterprise.json"]()["panels"] if p["title"] == "抽检记录"]
        sql = expand(records["targets"][0]["rawSql"], *day, {"enterprise": E, "item": "bromate"})
        types = {c["name"]: c["type"] for c in store.query(f"DESCRIBE TABLE ({sql})")}
        assert types["抽样日期"] == "String"
        assert [_day(store, r["time"]) for r in got[("enterprise.json", "检测值：${item:text}")]] == ["2025-09-29"]
        # the time picker's days are the bureau's, whatever the browser's zone
        assert {DASHBOARDS[name]()["timezone"] for name in DASHBOARDS} == {"Asia/Shanghai"}
    finally:
        pipeline.close()


def test_withdrawn_signals_are_marked_and_not_counted(store, rules):  # noqa: F811 - fixture
    """A c-chart signal whose month's complaints were all found 不属实 (fluctuation.signal_withdrawn), and a
    signal raised by a report the bureau retracted (sampling.retracted), still showed and counted as signals."""
    from processors.step import replay
    from tests.test_fluctuation import drifting_log
    from tests.test_retraction import retraction
    from tests.test_risk import E, ev

    drift = drifting_log()
    _, effects = replay(drift, rules)
    raised = [e for e in effects if e.kind == "fluctuation.signal" and e.data.get("series") and not e.data.get("note")]
    assert len(raised) >= 2, "the drift signals more than once"
    (tipped,) = [e for e in drift if str(e.event_id) == raised[0].event_id]
    complaints = [ev("complaint.received", f"2026-03-0{d}T10:00:00+08:00", complaint_id=f"K{i}") for i, d in enumerate((2, 3, 4, 9), 1)]
    unfounded = [ev("complaint.resolved", f"2026-03-2{i}T10:00:00+08:00", complaint_id=f"K{i}", verified=False, outcome="核查")
                 for i in range(1, 5)]
    pipeline = _fold_into(store, rules, drift + complaints)
    try:
        before = _panels(store, variables={"enterprise": E, "item": "x"}, boards=("county.json", "enterprise.json"))
        counted = sum(r["信号数"] for r in before[("county.json", "质量波动信号（每周）")])
        assert counted == len(raised) + 1  # the drift's and the complaint chart's
        pipeline.submit(unfounded + [retraction(tipped.payload.sample_no, at="2026-04-01T09:00:00+08:00", enterprise_id=E)])
        assert pipeline.wait_derived(60)
        kinds = {r["kind"] for r in store.query("SELECT kind FROM effects")}
        assert {"fluctuation.signal_withdrawn", "sampling.retracted"} <= kinds
        got = _panels(store, variables={"enterprise": E, "item": "x"}, boards=("county.json", "enterprise.json"))
        assert sum(r["信号数"] for r in got[("county.json", "质量波动信号（每周）")]) == counted - 2
        for table in (("county.json", "最新质量波动信号"), ("enterprise.json", "质量波动信号")):
            rows = got[table]
            marked = {r["事件"]: r["状态"] for r in rows if r["状态"]}
            assert len(rows) == len(before[table]), "a withdrawn signal is shown, not hidden"
            assert marked[raised[0].event_id] == "已撤销（触发的报告已撤销）"
            assert sorted(marked.values()) == ["已撤销（投诉经核查均不属实）", "已撤销（触发的报告已撤销）"]
    finally:
        pipeline.close()


@pytest.mark.parametrize("how", ["corrected", "retracted"])
def test_a_baseline_typos_signal_is_withdrawn_with_the_typod_report(store, rules, how):  # noqa: F811 - fixture
    """A baseline typo (34 µS/cm for 3.4) is said when the 8th result freezes the limits, by the 8th report's effect;
    the lab corrected, or the bureau retracted, the 3rd report: the signal still showed and counted."""
    import datetime as dt
    from tests.test_corrections import E, REG, _measured
    from tests.test_retraction import retraction
    from tests.test_spc_third_review import AT, VALUES, _typo_log

    typo = _typo_log()
    undo = (_measured(2, VALUES[2], AT + dt.timedelta(days=40), sample_no=typo[2].payload.sample_no) if how == "corrected"
            else retraction(typo[2].payload.sample_no, at="2026-02-20T09:30:00+08:00"))
    pipeline = _fold_into(store, rules, [REG, *typo])
    try:
        before = _panels(store, variables={"enterprise": E, "item": "x"}, boards=("county.json", "enterprise.json"))
        (row,) = [r for r in before[("enterprise.json", "质量波动信号")] if r["事件"] == str(typo[7].event_id)]
        assert row["状态"] == ""
        counted = sum(r["信号数"] for r in before[("county.json", "质量波动信号（每周）")])
        pipeline.submit([undo])
        assert pipeline.wait_derived(60)
        got = _panels(store, variables={"enterprise": E, "item": "x"}, boards=("county.json", "enterprise.json"))
        (row,) = [r for r in got[("enterprise.json", "质量波动信号")] if r["事件"] == str(typo[7].event_id)]
        assert row["状态"] == f"已撤销（触发的报告已{'更正' if how == 'corrected' else '撤销'}）"
        assert sum(r["信号数"] for r in got[("county.json", "质量波动信号（每周）")]) == counted - 1
    finally:
        pipeline.close()


def test_a_complaint_chart_signal_withdrawn_with_a_withdrawn_complaint_says_so(store, rules):  # noqa: F811 - fixture
    """A complaint chart's signal withdrawn because one of its complaints was withdrawn (complaint.withdrawn: filed under
    the wrong enterprise) read 已撤销（投诉经核查均不属实）, which nobody had found: the withdrawal names the complaint."""
    from processors.step import replay
    from tests.test_fluctuation import drifting_log
    from tests.test_risk import E, ev

    complaints = [ev("complaint.received", f"2026-03-0{d}T10:00:00+08:00", complaint_id=f"K{i}") for i, d in enumerate((2, 3, 4, 9), 1)]
    withdrawn = ev("complaint.withdrawn", "2026-03-25T10:00:00+08:00", complaint_id="K1", reason="被投诉企业填报错误，已在正确企业名下重新登记")
    log = drifting_log() + complaints + [withdrawn]
    _, effects = replay(log, rules)
    (signal,) = [e for e in effects if e.kind == "fluctuation.signal" and e.data.get("chart") == "c"]
    assert [e.data.get("withdrawn_complaint") for e in effects if e.kind == "fluctuation.signal_withdrawn"] == ["K1"]
    pipeline = _fold_into(store, rules, log)
    try:
        got = _panels(store, variables={"enterprise": E, "item": "x"}, boards=("county.json", "enterprise.json"))
        for table in (("county.json", "最新质量波动信号"), ("enterprise.json", "质量波动信号")):
            marked = {r["事件"]: r["状态"] for r in got[table] if r["状态"]}
            assert marked[signal.event_id] == "已撤销（投诉登记已撤回）", table
    finally:
        pipeline.close()


@pytest.mark.parametrize("corrected_to", [0.8, 1.7])
def test_a_signal_of_a_report_since_corrected_is_marked_and_not_counted(store, rules, corrected_to):  # noqa: F811 - fixture
    """W08's typo (耗氧量 1.6 for 0.85) raised a signal; the lab's correction rebuilt the series and the credit file
    counts no signal, yet 质量波动信号（每周） and both signal tables still listed it.  A corrected value still out of
    control signals anew, under the correction: that one counts."""
    import copy

    from processors.step import replay
    from schemas.upcast import parse_event
    from tests.test_fluctuation import BASELINE, water_sample
    from tests.test_risk import E

    days = [dt.date(2025, 1, 5) + dt.timedelta(days=14 * i) for i in range(len(BASELINE) + 1)]
    log = [REG_FOR_SIGNALS()] + [water_sample(d, v) for d, v in zip(days, [*BASELINE, 1.6])]
    typo = log[-1]
    doc = copy.deepcopy(typo.model_dump(mode="json", exclude_unset=True))
    doc.update(event_id="00000000-0000-4000-8000-0000000c0001", occurred_at=f"{days[-1].isoformat()}T16:00:00+08:00")
    doc["payload"]["items"][0]["values"] = [corrected_to]
    correction = parse_event(doc)
    state, effects = replay(log + [correction], rules)
    raised = [e for e in effects if e.kind == "fluctuation.signal" and e.data.get("series") and not e.data.get("note")]
    assert [e.event_id for e in raised][:1] == [str(typo.event_id)], "the typo signals"
    on_file = sum(s.signals for s in state.files[E].fluctuation.series.values())
    assert on_file == (0 if corrected_to < 1 else 1)
    pipeline = _fold_into(store, rules, log + [correction])
    try:
        got = _panels(store, variables={"enterprise": E, "item": "x"}, boards=("county.json", "enterprise.json"))
        assert sum(r["信号数"] for r in got[("county.json", "质量波动信号（每周）")]) == on_file
        for table in (("county.json", "最新质量波动信号"), ("enterprise.json", "质量波动信号")):
            status = {r["事件"]: r["状态"] for r in got[table]}
            assert status[str(typo.event_id)] == "已撤销（触发的报告已更正）", table
            assert sum(1 for r in got[table] if r["状态"] == "" and r["类型"] == "信号") == on_file, table
    finally:
        pipeline.close()


def REG_FOR_SIGNALS():  # noqa: N802 - the golden registration (tests.test_fluctuation's enterprise)
    from schemas.upcast import parse_event
    from tests.conftest import golden

    return parse_event(golden("enterprise.registered"))


def test_warnings_are_alerts_counted_once_with_their_state_and_evidence(county):
    """预警 counted warning.raised effects (an alert raised again counted again), showed no state (an alert
    closed because its ground was withdrawn looked live) and, for a warning a clock tick raised, only the
    tick's event id.  One row per alert: its id and state now, the triggering event and the evidence's.

    Then per dedup key, not per alert: a key opens a new alert once its alert is verified or closed, and the
    key's closed alert vanished while its raises were shown under the new alert's number and state; the 级别 was
    the latest raise's, not the alert's (which only rises); a county alert was its trigger's, linked to its file
    and counted on its board."""
    from alerts.lifecycle import STATE_ZH

    store = county["store"]
    got = _panels(store, boards=("county.json", "enterprise.json"))
    alerts = {a["alert_id"]: a for a in store.query(
        "SELECT alert_id, enterprise_id, group_key, state, severity, handling_overdue FROM alerts FINAL")}
    evidence = {}
    for row in store.query("SELECT enterprise_id, event_id, data FROM effects FINAL WHERE kind = 'warning.raised' UNION ALL "
                           "SELECT enterprise_id, event_id, data FROM stream_effects FINAL WHERE kind = 'warning.raised'"):
        d = json.loads(row["data"])
        evidence.setdefault(row["event_id"], []).append(", ".join(d["evidence"].get("event_ids", [])))
    keys = collections.Counter((a["enterprise_id"], a["group_key"]) for a in alerts.values())
    assert any(n > 1 for n in keys.values()), "the demo opens a key's alert again after the first was closed"
    rows = got[("county.json", "最新预警")]
    assert sorted(r["预警编号"] for r in rows) == sorted(alerts), "every alert, once"
    assert not any(r["状态"].endswith("（触发的报告已撤销）") for r in rows)  # (the demo retracts no report)
    assert got[("county.json", "预警")] == [{"预警": len(alerts)}] == [{"预警": store.query("SELECT count() AS n FROM alerts FINAL")[0]["n"]}]
    books = {a.alert_id: a for a in county["alerts"]}
    severity = {"critical": "紧急", "high": "高", "medium": "中", "low": "低"}
    for r in rows:
        a = alerts[r["预警编号"]]
        # (acknowledged and left past its handling deadline: 已确认超时未处置, as the alert's view says it)
        assert (r["状态"], r["级别"]) == ("已确认超时未处置" if a["handling_overdue"] else STATE_ZH[a["state"]], severity[a["severity"]])
        if r["预警编号"] in books:  # (the fold's alert books, where they still hold it: its raises are the fold's)
            b = books[r["预警编号"]]
            assert (_state_zh(b), r["触发次数"], r["触发事件"]) == (r["状态"], b.occurrences, b.event_ids[-1])
        assert r["证据事件"] in evidence[r["触发事件"]]
    assert {r["状态"] for r in rows} >= {"待处置", "已关闭"}
    again = [r for r in rows if keys[(alerts[r["预警编号"]]["enterprise_id"], alerts[r["预警编号"]]["group_key"])] > 1]
    assert {r["状态"] for r in again} & {"已关闭", "整改复查通过"}, "a key's earlier alert shows as closed, beside its newer one"
    ticks = {str(e.event_id) for e in county["events"] if e.event_type == "clock.tick"}
    by_tick = [r for r in rows if r["触发事件"] in ticks]
    # (a tick's warning names its ground: the rectification order past its deadline, the last inspection)
    assert by_tick and any(set(r["证据事件"].split(", ")) - {r["触发事件"], ""} for r in by_tick)
    # a county alert: the county's, with no link to its trigger's file, and not on the trigger's board
    county_wide = [r for r in rows if alerts[r["预警编号"]]["group_key"].startswith("county:")]
    assert county_wide, "the demo counties signal a category"
    for r in county_wide:
        assert (r["企业"], r["诚信档案"]) == (f"县级（由 {alerts[r['预警编号']]['enterprise_id']} 的抽检触发）", "")
    eid = alerts[county_wide[0]["预警编号"]]["enterprise_id"]
    mine = _panels(store, variables={"enterprise": eid, "item": "x"}, boards=("county.json", "enterprise.json"))
    own = sorted(i for i, a in alerts.items() if a["enterprise_id"] == eid and not a["group_key"].startswith("county:"))
    assert mine[("enterprise.json", "预警数")] == [{"预警": len(own)}]
    assert sorted(r["预警编号"] for r in mine[("enterprise.json", "预警记录")]) == own


def test_a_pass_rate_over_no_judged_sample_is_no_data(county):
    """The pass rates divided by greatest(judged, 1): with no judged sample in the range they said 0 %, in red."""
    files = _files(county)
    eid = sorted(files)[0]
    later = (dt.datetime(2031, 1, 1, tzinfo=BEIJING), dt.datetime(2031, 2, 1, tzinfo=BEIJING))
    got = _panels(county["store"], *later, variables={"enterprise": eid, "item": "x"}, boards=("county.json", "enterprise.json"))
    assert got[("county.json", "抽检合格率")] == [{"合格率": None}]
    assert got[("enterprise.json", "抽检合格率")] == [{"合格率": None}]
    whole = _panels(county["store"], variables={"enterprise": eid, "item": "x"}, boards=("county.json", "enterprise.json"))
    final = [s for f in files.values() for s in f.final_samples() if s.judgement.counted in ("pass", "fail")]
    rate = round(100 * sum(s.judgement.counted == "pass" for s in final) / len(final), 1)
    assert whole[("county.json", "抽检合格率")] == [{"合格率": rate}]


def test_the_grade_colours_are_the_policys_bands():
    """GRADE_COLOURS turned yellow at 40, orange at 60 and red at 80: the policy's grades are A to 30, B to 45,
    C to 60 (inclusive) and D above."""
    from dashboards.boards import GRADE_BANDS, GRADE_COLOUR, GRADE_COLOURS
    from schemas.policy import Policy

    risk = Policy().risk
    assert GRADE_BANDS == risk.bands

    def colour(score):
        reached = [c for v, c in GRADE_COLOURS if v is None or score >= v]
        return reached[-1]

    for score in (0, 12.5, 30, 30.1, 44.9, 45, 45.5, 59, 60, 60.1, 75, 100):
        assert colour(score) == GRADE_COLOUR[risk.band(score)], score
    panels = {p["title"]: p for p in DASHBOARDS["enterprise.json"]()["panels"]}
    for title in ("当前风险分", "风险分变化"):
        steps = panels[title]["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert [(s["value"], s["color"]) for s in steps] == GRADE_COLOURS


def _panel(board: str, title: str) -> dict:
    (found,) = [p for p in DASHBOARDS[board]()["panels"] if p["title"] == title]
    return found


def test_every_stat_says_how_to_colour_its_value():
    """Stat panels without thresholds take Grafana's default (green, red from 80): 抽检批次 in red at 80 samples.  A
    count that is neither good nor bad is one neutral colour; the grade, a text, is coloured by its mapping."""
    from dashboards.boards import GRADE_COLOUR

    for name in DASHBOARDS:
        for p in DASHBOARDS[name]()["panels"]:
            if p["type"] == "stat":
                d = p["fieldConfig"]["defaults"]
                assert d.get("thresholds") or d.get("mappings"), f"{name} / {p['title']}"
    for board, title in (("county.json", "在册企业（当前）"), ("county.json", "抽检批次"), ("intake.json", "接收事件"), ("intake.json", "最近接收")):
        assert _panel(board, title)["fieldConfig"]["defaults"]["thresholds"]["steps"] == [{"color": "text", "value": None}], title
    grade = _panel("enterprise.json", "当前风险等级")
    (mapping,) = grade["fieldConfig"]["defaults"]["mappings"]
    assert {v: m["color"] for v, m in mapping["options"].items()} == GRADE_COLOUR and mapping["type"] == "value"
    assert re.fullmatch(grade["options"]["reduceOptions"]["fields"].strip("/"), "等级"), "the stat reads the text field"


def test_the_score_steps_between_gradings_over_its_bands_and_the_grade_pie_wears_the_grades_colours():
    from dashboards.boards import GRADE_COLOUR, GRADE_COLOURS

    score = _panel("enterprise.json", "风险分变化")["fieldConfig"]["defaults"]
    assert score["custom"]["lineInterpolation"] == "stepAfter" and score["custom"]["thresholdsStyle"]["mode"] != "off"
    assert [(s["value"], s["color"]) for s in score["thresholds"]["steps"]] == GRADE_COLOURS
    pie = _panel("county.json", "风险等级分布（当前）")
    colours = {o["matcher"]["options"]: o["properties"][0]["value"]["fixedColor"] for o in pie["fieldConfig"]["overrides"]}
    assert colours == GRADE_COLOUR and pie["options"]["reduceOptions"]["values"] is False  # (a slice per field, named by grade)
    for board, title in (("county.json", "质量波动信号（每周）"), ("intake.json", "每小时接收事件（按类型）")):
        # counts per bucket: bars (a bucket without a row is none; a line drew across it)
        assert _panel(board, title)["fieldConfig"]["defaults"]["custom"]["drawStyle"] == "bars", title


def test_grades_are_plotted_as_of_the_folds_clock(store, rules):  # noqa: F811 - fixture
    """风险分变化 and C/D 级企业's 评定时间 used the effect's occurred_at: a report arriving late (sampled weeks
    back) regrades the file as of now, and was plotted back then, before the grades it came after."""
    from tests.test_risk import E, pa_sample, registered

    events = [registered(), pa_sample("2026-03-12T10:00:00+08:00", sample_no="S-MAR"),
              pa_sample("2026-02-02T10:00:00+08:00", sample_no="S-FEB")]  # its report came after March's
    pipeline = _fold_into(store, rules, events)
    try:
        history = pipeline.state.files[E].risk.history
        late = [h for h in history if h.cause_event_id == str(events[2].event_id)]
        assert late and late[0].as_of >= dt.datetime(2026, 3, 12, 2, tzinfo=dt.timezone.utc)
        got = _panels(store, variables={"enterprise": E, "item": "x"}, boards=("enterprise.json",))
        rows = [(dt.datetime.fromisoformat(str(r["time"])).replace(tzinfo=dt.timezone.utc), r["风险分"])
                for r in got[("enterprise.json", "风险分变化")]]
        plotted, last = [], None
        for h in history:
            if last is None or (h.grade, h.score) != last:
                plotted.append((h.as_of.replace(microsecond=0), h.score))
            last = (h.grade, h.score)
        assert rows == plotted
        assert rows[-1][1] == pipeline.state.files[E].risk.score
    finally:
        pipeline.close()


def test_a_notification_given_up_before_the_range_still_shows(store):  # noqa: F811 - fixture
    """The delivery panels read the attempts within the time range (default now-7d): a notification that gave
    up 8 days ago, still to be handled, disappeared."""
    gave_up = dt.datetime(2031, 9, 1, 8, 0)

    def attempt(n, status, error):
        return {"delivery_id": "old", "alert_id": "AL-old", "enterprise_id": "E-1", "receiver": "desk", "channel": "webhook",
                "attempt": n, "status": status, "at": gave_up + dt.timedelta(minutes=n), "at_ms": 0, "response_code": 0, "error": error}

    store.insert("deliveries", [attempt(1, "retry", "HTTP 503"), attempt(2, "failed", "HTTP 410 Gone")])
    now = dt.datetime(2031, 9, 9, 8, tzinfo=dt.timezone.utc)  # eight days after it gave up
    week = (now - dt.timedelta(days=7), now)
    got = _panels(store, *week, boards=("intake.json",))
    assert got[("intake.json", "预警通知发送失败（当前）")] == [{"失败": 1}]
    assert [(r["预警编号"], r["状态"], r["尝试次数"], r["原因"]) for r in got[("intake.json", "未送达的预警通知（当前）")]] == [
        ("AL-old", "失败", 2, "HTTP 410 Gone")]


def test_enterprise_ids_link_to_the_enterprise_board():
    """A panel's 企业 column showed an id with no way to its credit file.  An alert panel's 企业 names a county
    alert as the county's (县级（由 X 的抽检触发）): its link is on 诚信档案, empty for a county alert."""
    url = "/d/qrisk-enterprise?var-enterprise=${__value.raw}&${__url_time_range}"
    linked = set()
    for name, build in DASHBOARDS.items():
        for p in build()["panels"]:
            for o in p["fieldConfig"]["overrides"]:
                if o["matcher"]["id"] == "byName" and o["matcher"]["options"] in ("企业", "诚信档案"):
                    links = [v for prop in o["properties"] if prop["id"] == "links" for v in prop["value"]]
                    assert [link["url"] for link in links] == [url]
                    linked.add((name, p["title"], o["matcher"]["options"]))
    assert linked == {("county.json", "C/D 级企业（当前）", "企业"), ("county.json", "最新预警", "诚信档案"),
                      ("county.json", "未办结预警（当前）", "诚信档案"), ("intake.json", "未送达的预警通知（当前）", "企业")}


def test_intake_leaves_out_the_clock_and_tells_processing_failures_apart(store, rules):  # noqa: F811 - fixture
    """接收事件 counted the system's own clock ticks as received events; 拒收记录 counted processing dead letters
    (events accepted that the fold failed on) as refused input."""
    from qrisk.pipeline import DeadLetter
    from tests.test_corrections import REG, sample
    from tests.test_fold import ev

    tick = ev("clock.tick", "2026-03-02T00:00:00+08:00", enterprise_id="*")
    pipeline = _fold_into(store, rules, [REG, sample("2026-03-01T10:00:00+08:00"), tick])
    try:
        pipeline.dead_letter([DeadLetter(channel="http", position="req-1#0", raw=b"{}", reason="payload: 缺少必填字段"),
                              DeadLetter(channel="processing", position="seq 9", raw=b"{}", reason="processing failed: KeyError: 'x'",
                                         dead_letter_id="processing-x")])
        got = _panels(store, boards=("intake.json",))
        assert got[("intake.json", "接收事件")] == [{"事件": 2}]
        assert "时钟" not in {r["类型"] for r in got[("intake.json", "每小时接收事件（按类型）")]}
        assert sum(r["事件"] for r in got[("intake.json", "每小时接收事件（按类型）")]) == 2
        assert got[("intake.json", "拒收记录")] == [{"待处理": 1, "已重新提交并接收": 0, "处理失败": 1}]
        assert sorted(r["渠道"] for r in got[("intake.json", "未处理的拒收记录")]) == ["处理失败（已接收）", "拒收（HTTP）"]
    finally:
        pipeline.close()


def test_the_latest_received_is_the_latest_event_pushed_not_the_clock(store, rules):  # noqa: F811 - fixture
    """最近接收 read max(received_at) over every event: `qrisk run` writes a clock.tick every 600 s, so intake looked
    fresh however long the labs had sent nothing."""
    from qrisk.pipeline import Pipeline
    from tests.test_corrections import REG, sample
    from tests.test_fold import ev

    now = [dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.timezone.utc)]
    pipeline = Pipeline(store, rules, clock=lambda: now[0])
    try:
        pipeline.submit([REG, sample("2026-03-01T10:00:00+08:00")])
        for hours in (1, 2, 30):  # the labs fall silent; the clock ticks on
            now[0] = dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.timezone.utc) + dt.timedelta(hours=hours)
            pipeline.submit([ev("clock.tick", (now[0] + dt.timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%S+08:00"), enterprise_id="*")])
        assert pipeline.wait_derived(60)
        (row,) = _panels(store, boards=("intake.json",))[("intake.json", "最近接收")]
        assert _received(row["最近接收"]) == dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.timezone.utc)
        # a stat reads numbers: a DateTime showed no value; epoch milliseconds, shown by a time unit
        assert isinstance(row["最近接收"], int)
        (latest,) = [p for p in DASHBOARDS["intake.json"]()["panels"] if p["title"] == "最近接收"]
        assert latest["fieldConfig"]["defaults"]["unit"].startswith("dateTime")
    finally:
        pipeline.close()


def _received(value) -> dt.datetime:
    """最近接收's value as a UTC time."""
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value / 1000, dt.timezone.utc)
    value = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def test_a_refusal_shows_its_reasons_in_chinese(store, rules):  # noqa: F811 - fixture
    """未处理的拒收记录 (最新拒收记录 before) showed only the English reason a lab system gets: the dead letter's errors carry each field's Chinese
    reason too."""
    from qrisk.pipeline import DeadLetter, Pipeline

    errors = [{"field": "payload.items[0].values[0]", "type": "measured_value", "reason": "must be a number (not quoted), got '59'",
               "reason_zh": "应为数字（不加引号）或 \"ND\"/\"未检出\"，收到 '59'"},
              {"field": "", "type": "json_invalid", "reason": "body is not valid JSON {", "reason_zh": "不是合法的 JSON：第 1 行第 1 列"}]
    pipeline = Pipeline(store, rules)
    try:
        pipeline.dead_letter([DeadLetter("http", "req-1#0", b"{}", "payload.items[0].values[0]: must be a number", errors, dead_letter_id="a"),
                              DeadLetter("processing", "seq 9", b"{}", "processing failed: KeyError: 'x'", [], dead_letter_id="b")])
        rows = {r["位置"]: r for r in _panels(store, boards=("intake.json",))[("intake.json", "未处理的拒收记录")]}
    finally:
        pipeline.close()
    assert rows["req-1#0"]["原因"] == ("payload.items[0].values[0]：应为数字（不加引号）或 \"ND\"/\"未检出\"，收到 '59'；"
                                       "不是合法的 JSON：第 1 行第 1 列")
    assert rows["req-1#0"]["原因（英文）"] == "payload.items[0].values[0]: must be a number"
    assert rows["seq 9"]["原因"] == "processing failed: KeyError: 'x'", "no Chinese reason kept: the one there is"


def test_the_measured_values_name_their_unit(store, rules):  # noqa: F811 - fixture
    """检测值 drew numbers with no unit, though the table keeps the one each report gave: it is the series' name."""
    from tests.test_corrections import E, REG, sample

    pipeline = _fold_into(store, rules, [REG, sample("2026-03-12T15:20:00+08:00", passes=False, sample_no="S-1")])
    try:
        rows = _panels(store, variables={"enterprise": E, "item": "bromate"}, boards=("enterprise.json",))[("enterprise.json", "检测值：${item:text}")]
    finally:
        pipeline.close()
    assert [(r["系列"], r["检测值"]) for r in rows] == [("检测值（mg/L）", 0.02)]
    drawn = _panel("enterprise.json", "检测值：${item:text}")
    assert drawn["fieldConfig"]["defaults"]["displayName"] == "${__field.labels.系列}" and drawn["options"]["legend"]["showLegend"]


def test_a_panel_the_time_picker_does_not_narrow_says_so_and_a_cut_list_says_where_it_is_cut():
    for name in DASHBOARDS:
        for p in DASHBOARDS[name]()["panels"]:
            sql = p["targets"][0]["rawSql"]
            if "$__" not in sql and p["title"] != "最近接收":  # (the latest received: a moment, whatever the range)
                assert "当前" in p["title"], f"{name} / {p['title']} ignores the time range: （当前）"
            cut = re.search(r"LIMIT (\d+)$", sql)
            if cut and p["type"] == "table":
                assert f"{cut.group(1)} 条" in p["description"], f"{name} / {p['title']} lists at most {cut.group(1)} rows: say so"


def test_grafanas_clickhouse_user_is_granted_what_the_panels_read_and_no_more(tmp_path):
    """deploy/clickhouse/users.d/grafana-reader.xml grants the columns the panels' SQL reads (ClickHouse's own
    analysis of every panel and variable query), not the whole database: not the event log's bodies with the
    complaint texts, not the audit log, the outbox, the alerts' evidence."""
    import re
    import xml.etree.ElementTree as ET

    from qrisk.cli_dashboards import reader_grants
    from qrisk.store import ChdbStore, migrate

    st = ChdbStore(str(tmp_path / "store"))
    try:
        migrate(st)
        wanted = reader_grants(st)
    finally:
        st.close()
    xml = ET.parse(Path(__file__).resolve().parent.parent / "deploy" / "clickhouse" / "users.d" / "grafana-reader.xml").getroot()
    granted = [q.text for q in xml.findall("users/grafana/grants/query")]
    assert granted == wanted, "run `qrisk dashboards grants --store DIR` and put its lines in grafana-reader.xml"
    columns = {m.group(2): set(m.group(1).split(", ")) for g in granted if (m := re.fullmatch(r"GRANT SELECT\((.+)\) ON qrisk\.(\w+)", g))}
    assert len(columns) == len(granted)
    assert not {"audit_log", "outbox", "credit_files", "fold_snapshots", "alert_events"} & set(columns)
    assert "body" not in columns["event_log"] and "body" not in columns["events"]
    assert "evidence" not in columns["alerts"]
    # (a dead letter's errors are the field paths and reasons, English and Chinese, of a refusal; its raw input is not
    # granted — a refused complaint's body names its caller —, only its masked preview)
    assert {"raw_preview", "errors"} <= columns["dead_letters"] and "raw" not in columns["dead_letters"]


def test_check_says_when_a_panels_times_stay_utc():
    """A server that cannot describe a query (an old one) gets the panel's SQL as it is: its times are UTC,
    and the line under the Beijing-time heading must say so rather than pass them for local."""
    from qrisk.cli_dashboards import _in_zone

    class OldServer:
        def query(self, sql):
            if sql.startswith("DESCRIBE"):
                raise RuntimeError("Syntax error")
            return [{"时间": "2026-02-07 16:00:00"}]

    assert _in_zone(OldServer(), "SELECT opened_at AS `时间` FROM alerts", "Asia/Shanghai") == ([{"时间": "2026-02-07 16:00:00"}], False)


def test_the_campaign_stage_panel_counts_what_the_progress_table_counts(store, rules):  # noqa: F811 - fixture
    """Campaign records under an id nobody registered were counted by the panel (宣传发动 7) and left out of the
    table (6); a retracted record's stage is lost on both."""
    from processors.campaign import county_progress
    from tests.test_campaign import commitment, whole_campaign
    from tests.test_campaign_coordinator import retracted

    events = whole_campaign()
    stray = commitment().model_copy(update={"enterprise_id": "E-NOBODY"})
    pipeline = _fold_into(store, rules, [*events, stray])
    try:
        def both():
            stages = county_progress(pipeline.state, rules.policy.campaign)["summary"]["stages"]
            table = {s["stage_zh"]: s["reached"] for s in stages if s["reached"]}
            return table, {r["阶段"]: r["企业数"] for r in _panels(store, boards=("county.json",))[("county.json", "提档升级：各阶段完成企业数（当前）")]}

        table, panel = both()
        assert panel == table and panel["宣传发动（承诺书）"] == 1 and len(panel) == 6
        pipeline.submit([retracted(events[1])])  # (the letter withdrawn: 宣传发动 lost)
        assert pipeline.wait_derived(60)
        table, panel = both()
        assert panel == table and "宣传发动（承诺书）" not in panel and len(panel) == 5
    finally:
        pipeline.close()


def test_the_labs_time_limits_panel_counts_what_the_credit_files_judged(county):
    """检验机构报告时限: per lab, each sample judged for its time limits once (a correction carries its first report's
    figures), from both runtimes' judgements rows — the demo's slow provincial institute among them."""
    got = _panels(county["store"], boards=("county.json",))[("county.json", "检验机构报告时限")]
    samples: dict[tuple[str, str], tuple[str, bool, int]] = {}
    for eid, f in _files(county).items():
        for s in f.samples:
            if s.turnaround is not None:
                samples.setdefault((eid, s.sample_no), (s.lab, s.turnaround.late, s.turnaround.report_days, s.turnaround.estimate))
    by_lab: dict[str, list[tuple[bool, int, bool]]] = collections.defaultdict(list)
    for lab, late, days, estimate in samples.values():
        by_lab[lab].append((late, days, estimate))
    assert {r["检验机构"]: (r["批次"], r["超时批次"], r["最长（工作日）"], r["其中估算"]) for r in got} == {
        lab: (len(xs), sum(late for late, _, _ in xs), max(d for _, d, _ in xs), sum(e for _, _, e in xs)) for lab, xs in by_lab.items()}
    slow = next(r for r in got if r["检验机构"] == "省食品药品检验研究院")
    assert slow["超时批次"] > 0 and got[0] == slow  # the most late first


@pytest.mark.parametrize("since", [None, dt.datetime(2025, 10, 1, tzinfo=BEIJING)])
def test_the_complaints_panel_counts_what_the_credit_files_hold(county, since):
    """投诉举报: per category and kind, from both runtimes' complaints rows — received and 属实 within the range, open and
    超期未办结 now, 超期办结 concluded within it (the bureau's day); a withdrawn one nowhere."""
    from dashboards.model import COMPLAINT_CATEGORIES_ZH, COMPLAINT_KINDS_ZH

    start = since or WHOLE[0]
    got = _panels(county["store"], start, WHOLE[1], boards=("county.json",))[("county.json", "投诉举报")]
    counts: dict[tuple[str, str], collections.Counter] = collections.defaultdict(collections.Counter)
    for f in _files(county).values():
        for c in f.complaints:
            key = (COMPLAINT_CATEGORIES_ZH[c.category], COMPLAINT_KINDS_ZH[c.kind])
            within = c.received_at >= start
            counts[key]["收到"] += within
            counts[key]["属实"] += within and c.verified
            # (不予受理: not being handled, its clocks stopped)
            counts[key]["办理中（当前）"] += c.resolved_at is None and not c.refused
            counts[key]["超期未办结（当前）"] += bool(c.limits) and c.concluded_on is None and c.overdue and not c.refused
            counts[key]["超期办结"] += (bool(c.limits) and c.concluded_on is not None and c.overdue
                                     and c.concluded_on >= start.astimezone(BEIJING).date())
            # (a refusal decided after the 7 working days: late, by receipt)
            counts[key]["不予受理超期"] += within and c.refused_late
            # (of those counted against a time limit, the ones counted Monday–Friday in a year the calendar lacks)
            late_concluded = bool(c.limits) and c.concluded_on is not None and c.overdue and c.concluded_on >= start.astimezone(BEIJING).date()
            counts[key]["其中估算"] += (any(lim.estimate for lim in c.limits)
                                    and ((c.resolved_at is None and not c.refused) or late_concluded or (within and c.refused_late)))
    expected = {k: {name: counts[k][name] for name in ("收到", "属实", "办理中（当前）", "超期未办结（当前）", "超期办结", "不予受理超期", "其中估算")}
                for k in counts if counts[k]["收到"] + counts[k]["办理中（当前）"] + counts[k]["超期办结"] + counts[k]["不予受理超期"]}
    assert {(r["类别"], r["类型"]): {k: v for k, v in r.items() if k not in ("类别", "类型")} for r in got} == expected
    assert len(got) == len(expected) and {r["类型"] for r in got} == {"投诉", "举报"}
    assert since is not None or any(r["超期办结"] for r in got), "the demo concludes some late"
    order = list(COMPLAINT_CATEGORIES_ZH.values())
    assert [(order.index(r["类别"]), r["类型"] == "举报") for r in got] == sorted((order.index(r["类别"]), r["类型"] == "举报") for r in got)
    if since is not None:
        assert sum(r["收到"] for r in got) < sum(sum(c.received_at >= WHOLE[0] for c in f.complaints) for f in _files(county).values())


def test_names_take_each_field_from_the_latest_profile_that_carries_it(store, rules):  # noqa: F811 - fixture
    """C/D 级企业 and the enterprise variable read name and category from NAMES: an enterprise.updated names only what
    changed, so a rename blanked the category and a new category stayed hidden behind the old one."""
    from dashboards.boards import NAMES
    from tests.test_corrections import E, REG
    from tests.test_fold import ev

    renamed = ev("enterprise.updated", "2026-04-01T10:00:00+08:00", name="新名称饮用水厂")
    recategorised = ev("enterprise.updated", "2026-04-02T10:00:00+08:00", category="other")
    p = _fold_into(store, rules, [REG, renamed])
    try:
        query = f"SELECT name, category FROM ({NAMES}) WHERE enterprise_id = '{E}'"
        prof = p.state.files[E].profile
        assert store.query(query) == [{"name": "新名称饮用水厂", "category": prof.category}] and prof.category == "packaged_water"
        p.submit([recategorised])
        assert p.wait_derived(60)
        assert store.query(query) == [{"name": "新名称饮用水厂", "category": "other"}] == [
            {"name": p.state.files[E].profile.name, "category": p.state.files[E].profile.category}]
    finally:
        p.close()


def test_a_report_refiled_under_the_right_enterprise_is_one_sample_for_its_lab(store, rules):  # noqa: F811 - fixture
    """检验机构报告时限: a late report filed under the wrong enterprise, retracted there and filed again under the right
    one is one sample the lab reported late (its 抽样编号 is the county's), with the first report's working days."""
    import uuid

    from schemas.upcast import parse_event
    from tests.conftest import golden
    from tests.test_corrections import REG, sample
    from tests.test_retraction import retraction

    other = "E-330110-777"
    doc = golden("enterprise.registered")
    doc.update(event_id=str(uuid.uuid4()), enterprise_id=other)
    doc["payload"].update(licence_no="SC10633011000777", name="另一水厂")
    late = sample("2026-04-07T09:00:00+08:00", lab_received_on="2026-03-06", sample_no="S-2")
    moved = late.model_dump(mode="json", exclude_unset=True)
    moved.update(event_id=str(uuid.uuid4()), enterprise_id=other, occurred_at="2026-04-21T09:00:00+08:00")
    p = _fold_into(store, rules, [REG, parse_event(doc), late, retraction("S-2", at="2026-04-20T09:00:00+08:00"),
                                  parse_event(moved)])
    try:
        first = next(s for s in p.state.files[late.enterprise_id].samples if s.sample_no == "S-2")
        assert first.turnaround.late
        rows = _panels(store, boards=("county.json",))[("county.json", "检验机构报告时限")]
        assert [(r["批次"], r["超时批次"], r["最长（工作日）"]) for r in rows] == [(1, 1, first.turnaround.report_days)]
    finally:
        p.close()


def test_a_redelivered_notification_counts_the_attempts_made_not_the_requeue(store):  # noqa: F811 - fixture
    """尝试次数 was the last attempt's number: `qrisk alerts redeliver` writes a `requeued` row under the next number,
    so every re-queue added an attempt nobody made."""
    at = dt.datetime(2031, 9, 1, 8, 0)

    def attempt(n, status, error):
        return {"delivery_id": "again", "alert_id": "AL-again", "enterprise_id": "E-1", "receiver": "desk", "channel": "webhook",
                "attempt": n, "status": status, "at": at + dt.timedelta(minutes=n), "at_ms": 0, "response_code": 0, "error": error}

    store.insert("deliveries", [attempt(1, "retry", "HTTP 503"), attempt(2, "failed", "HTTP 410 Gone"),
                                attempt(3, "requeued", ""), attempt(4, "retry", "HTTP 503")])
    got = _panels(store, at - dt.timedelta(days=1), at + dt.timedelta(days=1), boards=("intake.json",))
    assert [(r["预警编号"], r["尝试次数"]) for r in got[("intake.json", "未送达的预警通知（当前）")]] == [("AL-again", 3)]


def test_two_enterprises_samples_of_one_number_by_two_labs_count_apart(store, rules):  # noqa: F811 - fixture
    """The contract makes a 抽样编号 unique within one enterprise: two enterprises' samples under one number, reported by
    two labs, are two samples — grouped by the number alone, one lab disappeared from the panel."""
    import uuid

    from schemas.upcast import parse_event
    from tests.conftest import golden
    from tests.test_corrections import REG, sample

    other = "E-330110-777"
    doc = golden("enterprise.registered")
    doc.update(event_id=str(uuid.uuid4()), enterprise_id=other)
    doc["payload"].update(licence_no="SC10633011000777", name="另一水厂")
    mine = sample("2026-04-07T09:00:00+08:00", lab_received_on="2026-03-06", sample_no="S-2")
    theirs = mine.model_dump(mode="json", exclude_unset=True)
    theirs.update(event_id=str(uuid.uuid4()), enterprise_id=other, occurred_at="2026-04-08T09:00:00+08:00")
    theirs["payload"]["lab"] = "另一检测机构"
    p = _fold_into(store, rules, [REG, parse_event(doc), mine, parse_event(theirs)])
    try:
        samples = [s for f in p.state.files.values() for s in f.samples if s.sample_no == "S-2"]
        rows = _panels(store, boards=("county.json",))[("county.json", "检验机构报告时限")]
        assert sorted((r["检验机构"], r["批次"]) for r in rows) == sorted((s.lab, 1) for s in samples) and len(samples) == 2
    finally:
        p.close()
