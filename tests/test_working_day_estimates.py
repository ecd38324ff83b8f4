"""Working-day figures counted in a year the calendar lacks (估算) say so on the boards too (migration 056).

The register, the credit report and the alert texts carry the caveat; the judgements and complaints tables carried
the figures without it, so 检验机构报告时限 and 投诉举报 showed guesses as facts.  Both runtimes write
``judgements.turnaround_estimate`` and ``complaints.estimate`` from the fold's flags; the panels count 其中估算.
Run on chdb and on the real ClickHouse server (18.16)."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.services import clickhouse_url, store  # noqa: F401 - fixtures
from tests.test_complaint_deadlines import received
from tests.test_complaints_table import _embedded, _streamed
from tests.test_corrections import REG, sample
from tests.test_dashboards import _panels

RANGE = (dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2027, 12, 31, tzinfo=dt.timezone.utc))


def _events():
    # sampled on the last day the calendar holds, reported in 2027 (not in it): 1 and 4 January counted Monday–Friday
    across = sample("2027-01-05T10:00:00+08:00", sample_no="S-NY", sampled_on="2026-12-31", production_date="2026-12-20")
    held = sample("2026-06-10T10:00:00+08:00", sample_no="S-JUN", sampled_on="2026-06-01", production_date="2026-05-20")
    # a complaint of 20 December: its 45 working days of mediation run into 2027; one of March ends within 2026
    return [REG, held, across, received("C-DEC", "2026-12-20T09:00:00+08:00"), received("C-MAR", "2026-03-02T09:00:00+08:00")]


def _fold(store, rules, runtime):  # noqa: F811 - a store
    events = _events()
    if runtime == "embedded":
        pipeline = _embedded(store, rules, events)
        files = pipeline.state.files
        return pipeline.close, files
    fold, _ = _streamed(store, rules, events)
    return (lambda: None), {eid: fs.file for eid, fs in fold.files.items()}


@pytest.mark.parametrize("runtime", ["embedded", "kafka"])
def test_a_report_and_a_complaint_counted_into_an_uncovered_year_are_written_as_estimates(store, rules, runtime):  # noqa: F811
    close, files = _fold(store, rules, runtime)
    try:
        f = files[REG.enterprise_id]
        turnaround = {s.sample_no: s.turnaround for s in f.samples}
        assert turnaround["S-NY"].estimate and turnaround["S-NY"].uncovered_years == (2027,)
        assert not turnaround["S-JUN"].estimate
        rows = store.query("SELECT sample_no, report_working_days, turnaround_estimate FROM judgements FINAL ORDER BY sample_no")
        assert [(r["sample_no"], int(r["report_working_days"]), int(r["turnaround_estimate"])) for r in rows] == [
            ("S-JUN", turnaround["S-JUN"].report_days, 0), ("S-NY", turnaround["S-NY"].report_days, 1)]

        complaints = {c.complaint_id: c for c in f.complaints}
        assert any(lim.estimate for lim in complaints["C-DEC"].limits) and "估算" in complaints["C-DEC"].deadline_zh()
        assert not any(lim.estimate for lim in complaints["C-MAR"].limits) and "估算" not in complaints["C-MAR"].deadline_zh()
        rows = store.query("SELECT complaint_id, toString(due_on) AS due_on, estimate FROM complaints FINAL ORDER BY complaint_id")
        assert [(r["complaint_id"], r["due_on"], int(r["estimate"])) for r in rows] == [
            ("C-DEC", complaints["C-DEC"].due_on.isoformat(), 1), ("C-MAR", complaints["C-MAR"].due_on.isoformat(), 0)]

        panels = _panels(store, *RANGE)
        (lab,) = panels[("county.json", "检验机构报告时限")]
        assert (lab["批次"], lab["其中估算"]) == (2, 1)
        (row,) = panels[("county.json", "投诉举报")]
        assert (row["办理中（当前）"], row["其中估算"]) == (2, 1)
    finally:
        close()


def test_the_panels_say_what_their_estimates_are():
    from dashboards.boards import DASHBOARDS

    panels = {p["title"]: p for p in DASHBOARDS["county.json"]()["panels"]}
    for title in ("检验机构报告时限", "投诉举报"):
        assert "其中估算" in panels[title]["targets"][0]["rawSql"] and "按周一至周五估算" in panels[title]["description"]

