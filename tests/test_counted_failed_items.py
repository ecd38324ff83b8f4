"""The items a sample counts as failing on, the same in every list (SampleJudgement.counted_failed_codes).

A sample counts 不合格 when its lab fails an item qrisk passes (free chlorine 0.05 mg/L against ≤ 0.05: the lab
rounded), but the failure lists were built from qrisk's verdicts alone: the judgements row's failed_items was empty,
so the 不合格项目排行 panel, the README's failures-by-item query, the enterprise's 抽检记录 and the API counted the
sample 不合格 and named no item; where qrisk failed the sample on another item (lead), the Paretos and the credit
report's row named lead only.  The items a sample counts as failing on are qrisk's, then the lab's 不合格 items qrisk
passes; an unconfirmed sample (counted 合格) lists qrisk's findings."""
from __future__ import annotations

import contextlib
import datetime as dt
import re

from services import clickhouse_url, store  # noqa: F401 - fixtures

from processors.step import replay
from qrisk.pipeline import Pipeline
from tests.test_lab_failed_passed import CHLORINE_AT_LIMIT, LEAD, LEAD_OVER, sample
from tests.test_risk import E, registered

CHLORINE, LEAD_ZH = "余氯（游离氯）", "铅（以Pb计）"  # (the catalogue's names, which the judgement keeps)


def test_the_labs_failed_item_is_among_the_failed_items_beside_qrisks_own(rules):
    state, _ = replay([registered(), sample([CHLORINE_AT_LIMIT, LEAD], "CF-1"), sample([CHLORINE_AT_LIMIT, LEAD_OVER], "CF-2"),
                       sample([{**CHLORINE_AT_LIMIT, "lab_verdict": "合格"}, {**LEAD_OVER, "lab_verdict": "合格"}], "CF-3")], rules)
    alone, both, unconfirmed = (s.judgement for s in state.files[E].samples)
    assert (alone.verdict, alone.counted, alone.counted_failed_codes()) == ("pass", "fail", ["free_chlorine"])
    assert (both.verdict, both.counted, both.counted_failed_codes()) == ("fail", "fail", ["lead", "free_chlorine"])
    # the mirror: qrisk's finding alone, the report's 合格 counted — its row still says what qrisk found
    assert (unconfirmed.unconfirmed, unconfirmed.counted, unconfirmed.counted_failed_codes()) == (True, "pass", ["lead"])


def test_the_paretos_and_the_credit_reports_row_name_the_labs_item_beside_qrisks_own(rules):
    from qrisk.credit_report import sample_row

    state, _ = replay([registered(), sample([CHLORINE_AT_LIMIT, LEAD_OVER], "CF-4")], rules)
    f = state.files[E]
    assert f.fluctuation.failing_items == {"lead": 1, "free_chlorine": 1}
    assert state.categories["packaged_water"].failing_items == {"lead": 1, "free_chlorine": 1}
    assert sample_row(f.samples[0])["failed_zh"] == f"{LEAD_ZH}、{CHLORINE}"


@contextlib.contextmanager
def folded(store, rules):  # noqa: F811 - a store
    """A sample the lab failed on free chlorine at the limit alone (qrisk passes it: verdict pass, counted fail),
    and one the lab failed on free chlorine and lead, which qrisk fails too."""
    pipeline = Pipeline(store, rules, clock=lambda: dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc))
    try:
        pipeline.submit([registered(), sample([CHLORINE_AT_LIMIT, LEAD], "CF-5"), sample([CHLORINE_AT_LIMIT, LEAD_OVER], "CF-6")])
        assert pipeline.wait_derived(60)
        yield pipeline
    finally:
        pipeline.close()


def test_the_judgements_row_lists_the_labs_item(store, rules):  # noqa: F811
    with folded(store, rules):
        rows = store.query("SELECT sample_no, verdict, counted, failed_items FROM judgements FINAL ORDER BY sample_no")
        assert [(r["sample_no"], r["verdict"], r["counted"], list(r["failed_items"])) for r in rows] == [
            ("CF-5", "pass", "fail", ["free_chlorine"]), ("CF-6", "fail", "fail", ["lead", "free_chlorine"])]


def test_the_readme_failures_by_item_query_counts_the_labs_item(store, rules):  # noqa: F811
    from tests.test_analyst_tables import readme_storage_row

    by_item = next(q for q in re.findall(r"`([^`]+)`", readme_storage_row("judgements")) if "arrayJoin(failed_items)" in q)
    with folded(store, rules):
        assert sorted((r["item"], r["batches"]) for r in store.query(by_item)) == [("free_chlorine", 2), ("lead", 1)]


def test_the_panels_rank_and_register_the_labs_item(store, rules):  # noqa: F811
    from tests.test_dashboards import _panels

    with folded(store, rules):
        got = _panels(store, variables={"enterprise": E, "item": "free_chlorine"})
    ranked = {r["项目"]: r["不合格批次"] for r in got[("county.json", "不合格项目排行")]}
    assert ranked == {CHLORINE: 2, LEAD_ZH: 1}
    register = {r["抽样编号"]: (r["结论"], r["不合格项目"]) for r in got[("enterprise.json", "抽检记录")]}
    assert register == {"CF-5": ("不合格（检验报告结论，系统复核为合格或不适用，待与检验机构核实）", CHLORINE),
                        "CF-6": ("不合格", f"{LEAD_ZH}、{CHLORINE}")}


def test_the_credit_file_report_counts_the_labs_item_failed(store, rules):  # noqa: F811
    from qrisk.store import credit_file_report

    with folded(store, rules):
        items = {i["item_code"]: i for i in credit_file_report(store, E)["items"]}
    assert (items["free_chlorine"]["failed"], items["lead"]["failed"]) == (2, 1)


def test_the_api_names_the_labs_item_failed(rules):
    from qrisk.api import sample_judged

    state, _ = replay([registered(), sample([CHLORINE_AT_LIMIT, LEAD], "CF-7")], rules)
    judged = sample_judged(state.files[E].samples[0])
    assert judged["failed_items"] == ["free_chlorine"]
    assert (judged["verdict"], judged["counted"]) == ("pass", "fail")  # qrisk's verdict, and the report's that counts
