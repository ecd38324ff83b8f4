"""The analytical tables as an analyst reads them, on both backends: the canned county query, the credit-file
report and the README's own queries give the figures the credit files give — a failure qrisk alone finds (the
lab printed 合格) counts as 合格, a re-tested or retracted report not at all — and `qrisk sql` prints a query's
own output format."""
from __future__ import annotations

import copy
import datetime as dt
import re
import uuid
from pathlib import Path

from services import clickhouse_url, store  # noqa: F401 - fixtures

from qrisk.pipeline import Pipeline
from qrisk.store import COUNTY_MONTHLY_SQL, credit_file_report
from schemas.upcast import parse_event
from tests.conftest import golden, lab_source
from tests.test_corrections import REG, sample
from tests.test_retraction import retraction

ROOT = Path(__file__).resolve().parents[1]
ALL_TIME = {"since": dt.date(2000, 1, 1), "until": dt.date(2100, 1, 1)}


def qrisk_alone_failure(at: str, sample_no: str):
    """The golden water sample with bromate 0.02 mg/L (over GB 19298's 0.01) that the lab printed 合格, every other
    item passing: qrisk's verdict fail, the report's conclusion 合格."""
    doc = golden("sampling.result")
    doc["event_id"], doc["occurred_at"] = str(uuid.uuid4()), at
    items = copy.deepcopy(doc["payload"]["items"])
    assert items[0]["item_code"] == "pseudomonas_aeruginosa" and items[2]["item_code"] == "bromate"
    items[0]["values"], items[0]["lab_verdict"] = [0, 0, 0, 0, 0], "合格"
    items[2]["values"], items[2]["lab_verdict"] = [0.02], "合格"
    doc["payload"].update(items=items, sample_no=sample_no)
    doc["source"] = lab_source(doc["payload"]["lab"])
    return parse_event(doc)


def folded(store, rules, events):
    pipeline = Pipeline(store, rules, snapshot_every=dt.timedelta(days=1))
    pipeline.recover()
    for event in events:
        pipeline.submit([event])  # one batch each: a superseded report's row is written before what supersedes it
    assert pipeline.wait_derived(60)
    pipeline.write_snapshots()
    (file,) = pipeline.state.files.values()
    return pipeline, file


def test_the_county_months_count_a_failure_qrisk_alone_finds_as_passed(store, rules):
    pipeline, f = folded(store, rules, [REG, qrisk_alone_failure("2026-03-12T15:20:00+08:00", "DC-ALONE-1")])
    assert (f.counts.samples, f.counts.samples_passed, f.counts.samples_failed) == (1, 1, 0)
    assert [r["verdict"] for r in store.query("SELECT verdict FROM judgements FINAL")] == ["fail"]  # qrisk's own stays
    months = store.query(COUNTY_MONTHLY_SQL, ALL_TIME)
    assert [(m["month"], m["samples"], m["failed"]) for m in months] == [("2026-03-01", 1, 0)]
    assert [m["passed"] for m in months] == [1]  # (a pass rate leaves out undetermined samples: passed / (passed + failed))
    pipeline.close()


def test_the_credit_file_report_counts_only_what_the_credit_file_counts(store, rules):
    """A re-test pair (the original's failure overturned), a retracted failure, a failure qrisk alone finds and one
    failure that counts: the report's items fail once, as the file's samples_failed."""
    at = iter(f"2026-03-{d:02d}T09:00:00+08:00" for d in range(10, 20))
    events = [
        REG,
        sample(next(at), passes=False, sample_no="DC-RT-1"),
        sample(next(at), passes=True, retest=True, sample_no="DC-RT-1"),
        sample(next(at), passes=False, sample_no="DC-GONE-1"),
        retraction("DC-GONE-1", at=next(at)),
        qrisk_alone_failure(next(at), "DC-ALONE-1"),
        sample(next(at), passes=False, sample_no="DC-FAIL-1"),
    ]
    pipeline, f = folded(store, rules, events)
    assert (f.counts.samples, f.counts.samples_failed) == (3, 1)
    report = credit_file_report(store, f.enterprise_id)
    items = {i["item_code"]: i for i in report["items"]}
    assert sum(i["failed"] for i in items.values()) == f.counts.samples_failed
    assert (items["bromate"]["samples"], items["bromate"]["failed"]) == (3, 1)
    # values of the reports that count only: the re-test's, the qrisk-alone failure's, the counted failure's
    assert items["bromate"]["results"] == 3 and items["bromate"]["max_value"] == 0.02
    assert items["pseudomonas_aeruginosa"]["results"] == 15
    # every report stays on record in samples, with the conclusion it counts with
    counted = sorted((s["sample_no"], s["verdict"], s["counted"], s["superseded_by"] != "") for s in report["samples"])
    assert counted == [("DC-ALONE-1", "fail", "pass", False), ("DC-FAIL-1", "fail", "fail", False),
                       ("DC-GONE-1", "fail", "fail", True), ("DC-RT-1", "fail", "fail", True),
                       ("DC-RT-1", "pass", "pass", False)]
    months = store.query(COUNTY_MONTHLY_SQL, ALL_TIME)
    assert [(m["samples"], m["passed"], m["failed"]) for m in months] == [(3, 2, 1)]
    pipeline.close()


def readme_storage_row(table: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    storage = readme.split("## Storage", 1)[1].split("\n## ", 1)[0]
    (row,) = [line for line in storage.splitlines() if line.startswith(f"| `{table}` |")]
    return row


def test_the_readme_failures_by_item_query_gives_the_credit_files_figures(store, rules):
    """The queries the README's Storage section gives, as written there: failures by item from judgements, and
    the values of the samples counted 不合格 from sampling_items."""
    by_item = next(q for q in re.findall(r"`([^`]+)`", readme_storage_row("judgements")) if "arrayJoin(failed_items)" in q)
    failing_values = next(q for q in re.findall(r"`([^`]+)`", readme_storage_row("sampling_items"))
                          if q.startswith("event_id IN") and "counted = 'fail'" in q)
    pipeline, f = folded(store, rules, [REG, qrisk_alone_failure("2026-03-12T15:20:00+08:00", "DC-ALONE-1"),
                                        sample("2026-03-13T09:00:00+08:00", passes=False, sample_no="DC-FAIL-1")])
    assert (f.counts.samples, f.counts.samples_failed) == (2, 1)
    rows = store.query(by_item)
    assert [(r["item"], r["batches"]) for r in rows] == [("bromate", 1)]
    assert sum(r["batches"] for r in rows) == f.counts.samples_failed
    values = store.query(f"SELECT DISTINCT sample_no FROM sampling_items FINAL WHERE item_code = 'bromate' AND {failing_values}")
    assert values == [{"sample_no": "DC-FAIL-1"}]
    pipeline.close()


def test_qrisk_sql_prints_a_query_in_its_own_format(tmp_path, capsysbinary):
    from qrisk.cli import main
    from qrisk.runtime import default_rules, open_embedded

    data = tmp_path / "data"
    pipeline = open_embedded(data, default_rules())
    pipeline.submit([REG, qrisk_alone_failure("2026-03-12T15:20:00+08:00", "DC-ALONE-1"),
                     sample("2026-03-13T09:00:00+08:00", passes=False, sample_no="DC-FAIL-1")])
    pipeline.close()

    statement = "SELECT sample_no, verdict, counted FROM judgements FINAL ORDER BY sample_no FORMAT CSVWithNames"
    assert main(["sql", "--data-dir", str(data), statement]) == 0
    out = capsysbinary.readouterr().out.decode("utf-8")
    assert out.splitlines() == ['"sample_no","verdict","counted"', '"DC-ALONE-1","fail","pass"', '"DC-FAIL-1","fail","fail"']

    assert main(["sql", "--data-dir", str(data), "SELECT count() AS n FROM judgements FORMAT TSVWithNames;"]) == 0
    assert capsysbinary.readouterr().out.decode("utf-8").splitlines() == ["n", "2"]
    assert main(["sql", "--data-dir", str(data), "SELECT count() AS n FROM judgements"]) == 0  # no FORMAT: JSON rows
    assert capsysbinary.readouterr().out.decode("utf-8").splitlines() == ['{"n": 2}']
    assert main(["sql", "--data-dir", str(data), "SELECT 1 FORMAT NoSuchFormat"]) == 2  # a clear error, no traceback
    assert b"the statement failed" in capsysbinary.readouterr().err
