"""`qrisk demo`'s summary reads true: its period, its counts and its claims (a supervisor's review)."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from tests.test_demo import qrisk


@pytest.fixture(scope="module")
def summary():
    return json.loads(qrisk("demo", "--seed", "7", "--json").stdout)


@pytest.fixture(scope="module")
def text():
    return qrisk("demo", "--seed", "7").stdout


@pytest.fixture(scope="module")
def county(rules):
    from processors.step import replay
    from qrisk.demo import CountyGenerator

    events = CountyGenerator(seed=7).generate()
    state, effects = replay(events, rules)
    return events, state, effects


# --------------------------------------------------------------------------- the period and the clock


def _local_days(events):
    from qrisk.demo import CST

    days = [e.occurred_at.astimezone(CST).date() for e in events if e.event_type != "clock.tick"]
    return min(days), max(days)


def test_the_period_shown_is_the_span_of_the_events(summary, text, county):
    events, _, _ = county
    first, last = _local_days(events)
    assert last > dt.date(2025, 12, 31), "follow-ups run into the next year"
    assert summary["period"] == {"from": first.isoformat(), "to": last.isoformat()}
    assert f"期间：{first.isoformat()} 至 {last.isoformat()}" in text
    # the sampled months are still said, as what they are
    assert summary["sampling_period"] == {"from": "2025-01-01", "to": "2025-12-31"}


@pytest.mark.parametrize("daily", [True, False])
def test_the_clock_runs_to_the_end_of_the_last_events_day(daily):
    from qrisk.demo import CST, CountyGenerator

    events = CountyGenerator(seed=7, daily_ticks=daily).generate()
    _, last = _local_days(events)
    ticks = [e.occurred_at.astimezone(CST) for e in events if e.event_type == "clock.tick"]
    closing = ticks[-1]
    assert events[-1].event_type == "clock.tick" and closing == events[-1].occurred_at.astimezone(CST)
    assert (closing.date(), closing.time()) == (last, dt.time(23, 59, 59))
    if daily:
        midnights = ticks[:-1]
        assert all(t.time() == dt.time(0, 0) for t in midnights)
        assert midnights[-1].date() == last and len({t.date() for t in midnights}) == len(midnights)
        assert [t.date() for t in midnights] == [midnights[0].date() + dt.timedelta(days=i) for i in range(len(midnights))]
    else:
        assert len(ticks) == 1


def test_overdue_marks_and_grades_are_as_of_the_end_of_the_period(summary, text, county, rules):
    from qrisk.backtest import risk_ranking

    events, _, _ = county
    end = dt.date.fromisoformat(summary["period"]["to"])
    rect = {r["rectification_id"]: r for r in summary["open_issues"]["rectifications"]}
    # deadline 2026-02-05, before the period's end: overdue, in the summary as in the credit file
    assert rect["ZG-W03-0106"]["deadline"] < end.isoformat() and rect["ZG-W03-0106"]["overdue"] is True
    assert "ZG-W03-0106 期限 2026-02-05（已逾期）" in text
    assert rect["ZG-W03-0119"]["deadline"] > end.isoformat() and rect["ZG-W03-0119"]["overdue"] is False
    # the grades the summary shows are `qrisk risk --as-of <the period's end>`
    ranked = {r["enterprise_id"]: (r["grade"], r["score"]) for r in risk_ranking(events, end, rules)}
    assert {e["enterprise_id"]: (e["risk_grade"], e["risk_score"]) for e in summary["enterprises"]} == ranked
