"""`qrisk backtest` and `qrisk risk --as-of` on the demo county: deterministic figures, sane ranges."""
from __future__ import annotations

import argparse
import datetime as dt
import json

import pytest

from ingest.files import write_jsonl
from qrisk import cli_risk
from qrisk.backtest import render_text, run_backtest
from qrisk.demo import CountyGenerator

START, END = dt.date(2025, 3, 1), dt.date(2025, 12, 31)


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="qrisk")
    cli_risk.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def events():
    return CountyGenerator(seed=7).generate()


@pytest.fixture(scope="module")
def events_file(events, tmp_path_factory):
    path = tmp_path_factory.mktemp("bt") / "events.jsonl"
    write_jsonl(events, path)
    return path


@pytest.fixture(scope="module")
def report(events, rules):
    return run_backtest(events, rules, START, END)


def test_a_rerun_gives_the_same_figures(events, rules, report):
    again = run_backtest(list(events), rules, START, END)
    assert json.dumps(again, sort_keys=True) == json.dumps(report, sort_keys=True)
    assert render_text(again) == render_text(report)


def test_warning_lead_times(report):
    w = report["warnings"]
    assert w["total"] == len(w["items"]) > 0
    rules = {r["rule"] for r in w["by_rule"]}
    assert {"sampling.unqualified", "fluctuation.signal", "complaint.cluster", "rectification.overdue"} <= rules
    for item in w["items"]:
        assert START.isoformat() <= item["date"] <= END.isoformat()
        if item["lead_days"] is not None:
            assert item["lead_days"] > 0 and item["next_failure"]["at"] > item["at"]
    # W03's charts speak before its 铜绿假单胞菌 failures: some fluctuation warning there is followed by a failure
    assert any(i["enterprise_id"] == "W03" and i["rule"] == "fluctuation.signal" and i["lead_days"] for i in w["items"])
    f = report["failures"]
    assert f["total"] > 0 and 0 <= f["with_prior_warning"] <= f["total"]


def test_inspection_order_and_top_k_are_shares(report):
    o = report["inspection_order"]
    assert o["ranked_as_of"] == "2025-02-28"
    assert o["inspections"] > 30 and o["first_half"] == (o["inspections"] + 1) // 2
    assert 0 <= o["risk_order_found"] <= o["failed"] and 0 <= o["actual_order_found"] <= o["failed"]
    assert any(i["enterprise_id"] == "P09" for i in o["failed_inspections"])
    assert [t["k"] for t in report["top_k"]] == [5, 10]
    for t in report["top_k"]:
        assert t["points"] >= 9
        assert 0 <= t["precision"] <= 1 and 0 <= t["recall"] <= 1 and 0 < t["base_rate"] < 1
        assert all(len(p["top"]) == t["k"] for p in t["per_point"])
        # the failing plants are near the top once their history shows
        assert t["hits"] > 0


def test_backtest_command_json_is_stable(events_file, capsys):
    assert cli("backtest", "--events", str(events_file), "--from", "2025-03-01", "--to", "2025-12-31", "--json", "--top-k", "3,8") == 0
    first = capsys.readouterr().out
    assert cli("backtest", "--events", str(events_file), "--from", "2025-03-01", "--to", "2025-12-31", "--json", "--top-k", "3,8") == 0
    assert capsys.readouterr().out == first
    doc = json.loads(first)
    assert [t["k"] for t in doc["top_k"]] == [3, 8]
    assert cli("backtest", "--events", str(events_file), "--from", "2025-03-01", "--to", "2025-12-31") == 0
    assert "预警提前量" in capsys.readouterr().out


def test_backtest_command_refuses_a_reversed_window(events_file, capsys):
    assert cli("backtest", "--events", str(events_file), "--from", "2025-12-31", "--to", "2025-03-01") == 2
    assert "before" in capsys.readouterr().err


def test_risk_command_as_of_a_date(events_file, events, capsys):
    assert cli("risk", "--events", str(events_file), "--as-of", "2025-06-30", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 32 and all(set(r) == {"enterprise_id", "score", "grade", "next_due", "reasons"} for r in rows)
    assert [r["grade"] for r in rows] == sorted((r["grade"] for r in rows), reverse=True)
    # W03's 铜绿假单胞菌 failures start in September: on 30 June none is in its reasons
    w03 = next(r for r in rows if r["enterprise_id"] == "W03")
    assert not any(r.startswith("抽检不合格") for r in w03["reasons"])
    assert cli("risk", "--events", str(events_file), "--as-of", "2025-12-31", "--json", "--top", "3") == 0
    top = json.loads(capsys.readouterr().out)
    assert top[0]["enterprise_id"] == "W03" and top[0]["grade"] == "D" and "P05" in {r["enterprise_id"] for r in top}
    assert cli("risk", "--events", str(events_file)) == 0
    assert "风险排名" in capsys.readouterr().out


def test_risk_command_names_a_missing_file(tmp_path, capsys):
    assert cli("risk", "--events", str(tmp_path / "nope.jsonl"), "--json") == 2
    assert "no such file" in capsys.readouterr().err


def test_risk_top_n_says_it_is_the_top_of_all(events_file, capsys):
    """"3 家企业" read as if the county had three: a cut ranking names the cut and the whole."""
    assert cli("risk", "--events", str(events_file), "--as-of", "2025-12-31", "--top", "3") == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert "前 3 家（共 32 家）" in head and "，3 家企业" not in head
    assert cli("risk", "--events", str(events_file), "--as-of", "2025-12-31") == 0
    assert "共 32 家企业" in capsys.readouterr().out.splitlines()[0]


def test_a_retested_sample_counts_once(events, rules):
    """P05's failed sample whose re-test (复检) failed again: one failed sample, as the credit file counts it, not
    two batches; and the re-test is not the "next failure" its own original's warning foretold."""
    (retested,) = [e.payload.sample_no for e in events if e.event_type == "sampling.result" and e.payload.retest]
    report = run_backtest(events, rules, dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    f = report["failures"]
    assert f["total"] == 13
    assert [w["sample_no"] for w in f["warned"]].count(retested) <= 1
    own = [i for i in report["warnings"]["items"] if i["dedup_key"] == f"P05:sampling.failed:{retested}"]
    assert own and all(i["next_failure"] is None or i["next_failure"]["sample_no"] != retested for i in own)
    assert "回测期内收到的抽检不合格 13 批次（按检验报告到达时间计）" in render_text(report)
    assert "其中结论不符合或发现主要、严重问题" in render_text(report)
