"""The fold's work per event does not grow with a file's history: a report arriving late resumes its series from a
checkpoint instead of charting every report on file again, and the overdue check looks only at rectifications a clock
can still make overdue.  Counted, not timed: what a step charts, what it looks at."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

import processors.fluctuation as fluctuation
from processors.credit_file import CountyState
from processors.step import replay, step
from schemas.upcast import parse_event
from tests.conftest import golden

E = "E-330110-001"
START = dt.date(2020, 1, 6)


def _sample(day: dt.date, oxygen: float, chlorine: float, at: dt.date | None = None):
    doc = golden("sampling.result")
    doc["event_id"] = str(uuid.uuid4())
    doc["occurred_at"] = f"{(at or day).isoformat()}T10:00:00+08:00"
    p = doc["payload"]
    p["sample_no"] = f"S{day.isoformat()}-{oxygen}"
    p["sampled_on"] = p["production_date"] = day.isoformat()
    p["items"] = [
        {"item_code": "oxygen_consumption", "values": [oxygen], "unit": "mg/L"},
        {"item_code": "free_chlorine", "values": [chlorine], "unit": "mg/L"},
    ]
    return parse_event(doc)


def _history(reports: int):
    """A producer sampled every two weeks for ``reports`` reports, values wandering within control."""
    events = [parse_event(golden("enterprise.registered"))]
    for i in range(reports):
        events.append(_sample(START + dt.timedelta(days=14 * i), 0.8 + 0.01 * (i * 7 % 5), 0.02 + 0.001 * (i * 3 % 4)))
    return events


def _late(after_reports: int, days_late: int, oxygen: float = 0.83):
    """A report sampled a week before the last one on file, arriving ``days_late`` days after it was sampled."""
    day = START + dt.timedelta(days=14 * (after_reports - 1) - 7)
    return _sample(day, oxygen, 0.021, at=day + dt.timedelta(days=days_late))


def _charted_by(event, state, rules) -> tuple[int, CountyState, list]:
    """How many reports the step puts onto the charts (``_chart_items`` calls)."""
    calls = []
    original = fluctuation._chart_items

    def counting(file, report, *args, **kwargs):
        calls.append(report.event_id)
        return original(file, report, *args, **kwargs)

    fluctuation._chart_items = counting
    try:
        state, effects = step(state, event, rules)
    finally:
        fluctuation._chart_items = original
    return len(calls), state, effects


def _dump(state: CountyState, effects: list) -> tuple[str, list]:
    return state.model_dump_json(), [(e.kind, e.data) for e in effects]


@pytest.mark.parametrize("history", [40, 160])
def test_a_late_report_charts_the_last_weeks_again_not_the_whole_history(rules, history):
    """The first late report of a series builds it from its first point (and keeps a checkpoint); the next one, on a
    file four times as long, charts only the reports since that checkpoint — the same number either way."""
    state, _ = replay(_history(history), rules)
    first_late = _late(history, days_late=10)
    full, state, _ = _charted_by(first_late, state, rules)
    assert full >= history  # every report on file, charted again once
    more = [_sample(START + dt.timedelta(days=14 * (history + i)), 0.81, 0.02) for i in range(6)]
    state, _ = replay(more, rules, state)
    resumed, state, _ = _charted_by(_late(history + 6, days_late=10), state, rules)
    # the reports from 90 days before the first late one to the end: a dozen, whatever the history
    assert resumed <= 16, resumed
    assert resumed < full


def test_resuming_from_a_checkpoint_gives_what_building_the_series_from_its_first_point_gives(rules, monkeypatch):
    """The same state and effects, bit for bit, with the checkpoints as without them (a restored file has none)."""
    events = _history(60)
    events.append(_late(60, days_late=10))
    events += [_sample(START + dt.timedelta(days=14 * (60 + i)), 0.8 + 0.02 * i, 0.02) for i in range(8)]
    events.append(_late(68, days_late=12, oxygen=0.95))
    events.append(_late(68, days_late=20, oxygen=1.4))  # a second late report of the same week, now out of control
    with_checkpoints = _dump(*replay(events, rules))
    monkeypatch.setattr(fluctuation, "_checkpoint", lambda series: None)
    without = _dump(*replay(events, rules))
    assert with_checkpoints == without
    assert any(kind == "fluctuation.signal" for kind, _ in without[1])  # (the comparison covers a signal)


def test_a_correction_before_the_checkpoint_builds_the_series_from_its_first_point(rules, monkeypatch):
    """A checkpoint holds only while the reports before it are the very ones: a correction of an earlier report (or
    any change to them) builds the series in full, as before."""
    events = _history(30)
    events.append(_late(30, days_late=10))
    doc = events[5].model_dump(mode="json", exclude_unset=True)  # the same sample's report sent again, corrected
    doc["event_id"] = str(uuid.uuid4())
    doc["occurred_at"] = (START + dt.timedelta(days=14 * 30)).isoformat() + "T10:00:00+08:00"
    doc["payload"]["items"][0]["values"] = [1.6]
    correction = parse_event(doc)
    events.append(correction)
    events.append(_late(30, days_late=15, oxygen=0.84))
    state, effects = replay(events[:-2], rules)
    charted, state, more = _charted_by(events[-2], state, rules)
    assert charted >= 30 and any(e.kind == "sampling.corrected" for e in more)  # built from the first point
    with_checkpoints = _dump(*replay(events, rules))
    monkeypatch.setattr(fluctuation, "_checkpoint", lambda series: None)
    assert _dump(*replay(events, rules)) == with_checkpoints


def _ordered(rid: str, on: dt.date, deadline: dt.date):
    doc = golden("rectification.ordered")
    doc["event_id"] = str(uuid.uuid4())
    doc["enterprise_id"] = E
    doc["occurred_at"] = f"{on.isoformat()}T10:00:00+08:00"
    doc["payload"].update(rectification_id=rid, deadline=deadline.isoformat(), cause=f"检查 {rid}")
    return parse_event(doc)


def test_the_overdue_check_looks_only_at_rectifications_a_clock_can_still_make_overdue(rules):
    """Fifty orders left undone: once each is marked overdue, a later event looks at none of them (it walked all fifty
    for every event); one the bureau gives a new deadline (重新限期) is looked at again, and found overdue by it."""
    events = [parse_event(golden("enterprise.registered"))]
    for i in range(50):
        on = dt.date(2024, 1, 8) + dt.timedelta(days=7 * i)
        events.append(_ordered(f"ZG-{i:02d}", on, on + dt.timedelta(days=10)))
    events += [_sample(dt.date(2025, 3, 3), 0.8, 0.02), _sample(dt.date(2025, 3, 4), 0.8, 0.02)]
    state, effects = replay(events, rules)
    assert sum(1 for e in effects if e.kind == "rectification.overdue") == 50
    # (a record the alerts stage looked up when it was marked is looked at once more, by the next event)
    assert state.files[E].rectifications_watched() == []
    doc = golden("rectification.verified")
    doc["event_id"] = str(uuid.uuid4())
    doc["occurred_at"] = "2025-03-10T10:00:00+08:00"
    doc["payload"].update(rectification_id="ZG-03", accepted=False, verifier="王检查员", note="未整改", new_deadline="2025-03-20")
    state, _ = step(state, parse_event(doc), rules)
    assert [r.rectification_id for _, r in state.files[E].rectifications_watched()] == ["ZG-03"]  # (the lookup: not yet due)
    state, effects = step(state, _sample(dt.date(2025, 3, 24), 0.8, 0.02), rules)
    again = [e for e in effects if e.kind == "rectification.overdue"]
    assert [e.data["rectification_id"] for e in again] == ["ZG-03"] and again[0].data.get("again")
    # (rejected with a redo deadline it stays in view, as the walk's condition kept it: the other 49 stay out)
    assert [r.rectification_id for _, r in state.files[E].rectifications_watched()] == ["ZG-03"]
