"""The progress table (进度表) and the credit file's campaign section as a campaign officer reads them:
failed acceptances and why an enterprise is behind, county-wide KPIs with their counts, the labels,
the table's 截至, the training figures' report date."""
from __future__ import annotations

import datetime as dt
import io

import pytest

from processors.campaign import county_progress, summary_lines_zh, table_rows
from processors.step import Rules, replay
from schemas.policy import Policy
from schemas.standards import load_catalogue
from tests.test_campaign import commitment, training
from tests.test_risk import E, registered

FAILED = {"W03", "P09", "P07", "W07", "W09", "W14"}


@pytest.fixture(scope="module")
def demo():
    from qrisk.demo import CountyGenerator

    rules = Rules(catalogue=load_catalogue(), policy=Policy())
    state, _ = replay(CountyGenerator(seed=2025).generate(), rules)
    return rules, state, county_progress(state, rules.policy.campaign)


def test_failed_acceptances_and_why_behind_are_in_every_row_and_counted(demo):
    _, _, progress = demo
    rows = {r["enterprise_id"]: r for r in progress["rows"]}
    assert {e for e, r in rows.items() if r["last_acceptance_failed"]} == FAILED
    assert progress["summary"]["last_acceptance_failed"] == len(FAILED)
    for e in FAILED:
        r = rows[e]
        assert r["acceptance_result_zh"].startswith("验收未通过 1 次（最近 ") and "县局验收组" in r["acceptance_result_zh"]
        assert r["lag_reasons_zh"].startswith("检查验收未通过（") and r["last_acceptance"]["assessor"] == "县局验收组"
    codes = {e: {x["code"] for x in rows[e]["lag_reasons"]} for e in FAILED}
    assert "comparison_unsatisfactory" in codes["W03"]  # the En of its oxygen-consumption comparison
    assert {"kpi", "training_and_exam", "self_inspection", "rectification_overdue"} <= codes["P09"]
    assert all(not r["lag_reasons"] for r in rows.values() if r["accepted_on"])  # accepted: not behind
    flat = {r["enterprise_id"]: r for r in table_rows(progress)}
    assert flat["W03"]["acceptance_failed"] == 1 and "比对试验不满意" in flat["W03"]["lag_reasons_zh"]


def test_county_kpis_are_sums_of_counts_not_means_of_rates(rules):
    other = registered("2026-01-05T09:00:00+08:00").model_copy(update={"enterprise_id": "E-2"})
    events = [registered("2026-01-05T09:00:00+08:00"), other, training(staff=10, trained=10, takers=10, first_pass=10, posts=2, certified=2)]
    late = training(staff=5, trained=1, takers=1, first_pass=0, posts=2, certified=1, at="2026-05-01T10:00:00+08:00")
    late = late.model_copy(update={"enterprise_id": "E-2"})
    state, _ = replay(events + [late], rules)
    rates = county_progress(state, rules.policy.campaign)["summary"]["kpi_rates"]
    assert rates["training_rate"]["figure_zh"] == "11/15 = 73.3%"  # a mean of the rates would be 60 %
    assert (rates["exam_first_pass_rate"]["part"], rates["exam_first_pass_rate"]["whole"]) == (10, 11)
    assert rates["exam_first_pass_rate"]["takers_zh"] == "应考 15 人，实考 11 人"
    assert rates["key_posts_certified_rate"]["figure_zh"] == "3/4 = 75.0%" and rates["key_posts_certified_rate"]["met"] is False


def test_the_demo_summary_has_the_county_rates_and_its_as_of(demo):
    _, state, progress = demo
    sm = progress["summary"]
    assert sm["kpi_rates"]["training_rate"]["figure_zh"] == "785/790 = 99.4%"
    latest = max(f.last_event_at for f in state.files.values() if f.profile is not None)
    assert sm["as_of"] == latest.isoformat().replace("+00:00", "Z")
    assert sm["training_reports"] == {"enterprises": 32, "earliest": "2025-06-02", "latest": "2025-08-06", "left_out": 0}
    head = summary_lines_zh(progress)
    local = latest.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M")
    assert head[0].startswith(f"提档升级进度（截至 {local}（北京时间）；32 家企业") and "最近一次验收未通过 6 家" in head[0]
    assert "从业人员培训率 785/790 = 99.4%" in head[1] and "2025-06-02 至 2025-08-06" in head[1]


def test_the_sheet_and_the_csv_say_as_of_and_the_training_report_date(demo):
    from openpyxl import load_workbook

    from ingest.export import to_xlsx
    from qrisk.sheets import campaign_sheet

    _, _, progress = demo
    machine = table_rows(progress)
    assert {r["as_of"] for r in machine} == {progress["summary"]["as_of"]} and all(r["training_as_of"] for r in machine)
    rows, columns, headers, formats = campaign_sheet(progress)
    ws = load_workbook(io.BytesIO(to_xlsx(rows, columns, headers=headers, number_formats=formats))).active
    col = {c.value: i for i, c in enumerate(ws[1])}
    local = dt.datetime.fromisoformat(progress["summary"]["as_of"].replace("Z", "+00:00")).astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert {r[col["数据截至（北京时间）"]].value for r in ws.iter_rows(min_row=2)} == {local.strftime("%Y-%m-%d %H:%M")}
    assert all(r[col["培训考试数据日期"]].value for r in ws.iter_rows(min_row=2))
    assert {"实考（人）", "一次通过（人）", "滞后原因", "检查验收结果", "验收未通过（次）"} <= set(col)


def test_a_file_without_a_campaign_acceptance_is_not_counted_failed(rules):
    state, _ = replay([registered("2026-01-05T09:00:00+08:00"), commitment()], rules)
    (row,) = county_progress(state, rules.policy.campaign)["rows"]
    assert (row["acceptance_result_zh"], row["last_acceptance_failed"]) == ("未验收", False)
    # not tiered yet: whether 帮扶指导 (C and D tiers) follows is for the tiering to say
    assert row["lag_reasons_zh"].startswith("未完成：调查分档、培训观摩；") and row["enterprise_id"] == E


def test_accepted_with_gaps_is_said_beside_the_accepted_count(demo):
    """"验收通过 26 家" alone read as 26 clean passes while the JSON and the sheet flag some to check."""
    _, _, progress = demo
    sm = progress["summary"]
    assert sm["accepted_with_gaps"] > 0
    head = summary_lines_zh(progress)[0]
    assert f"验收通过 {sm['accepted']} 家（其中 {sm['accepted_with_gaps']} 家有指标未达标或其他须核实事项，须核实）" in head


def test_assistance_is_not_unfinished_for_a_tier_it_is_not_for(demo):
    """帮扶指导 goes to C- and D-tier enterprises only: a B-tier one without it has nothing left undone,
    in the progress table and in its credit file's campaign section."""
    from processors.campaign import ASSISTANCE_TIERS
    from qrisk.credit_report import build_report

    rules, state, progress = demo
    rows = {r["enterprise_id"]: r for r in progress["rows"]}
    untouched = [e for e, r in rows.items() if r["starting_tier"] not in ASSISTANCE_TIERS and "assistance" not in r["stages"]]
    behind = [e for e in untouched if rows[e]["lag_reasons"]]
    assert behind, "the demo has B-tier enterprises behind (a failed acceptance)"
    assert all("帮扶指导" not in rows[e]["lag_reasons_zh"] for e in untouched)
    campaign = build_report(state.files[behind[0]], rules)["campaign"]
    row = next(r for r in campaign if r["item"] == "帮扶指导")
    assert row["status"] == "不适用"
    todo = next(r for r in campaign if r["item"] == "待办")["detail"]
    assert "帮扶指导" not in todo
    # a C-tier enterprise that had none would still be told
    helped = [e for e, r in rows.items() if r["starting_tier"] in ASSISTANCE_TIERS]
    assert helped and all("assistance" in rows[e]["stages"] or "帮扶指导" in rows[e]["lag_reasons_zh"]
                          for e in helped if rows[e]["lag_reasons"])


def test_each_stage_line_says_what_it_counts(demo):
    """The stage line counted enterprises that ever reached a stage and read as where they are now."""
    from processors.campaign import ASSISTANCE_TIERS, stage_lines_zh

    _, _, progress = demo
    sm = progress["summary"]
    ever, now = stage_lines_zh(progress)
    assert ever.startswith("各阶段已完成（完成该阶段的企业数，被复查推翻的验收不计）：") and now.startswith("当前所处阶段（各企业已完成的最后一个阶段）：")
    assert sum(s["current"] for s in sm["stages"]) + sm["not_started"] + sm["no_stage_yet"] == sm["enterprises"]
    assistance = next(s for s in sm["stages"] if s["stage"] == "assistance")
    tiered_low = sum(1 for r in progress["rows"] if r["starting_tier"] in ASSISTANCE_TIERS or "assistance" in r["stages"])
    assert assistance["applies"] == tiered_low < sm["enterprises"]
    assert f"帮扶指导 {assistance['reached']} 家（仅适用于 C、D 档企业，共 {tiered_low} 家）" in ever
    accepted = next(s for s in sm["stages"] if s["stage"] == "acceptance")
    assert f"检查验收 {accepted['current']} 家" in now
