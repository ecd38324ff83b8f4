"""``from_the_future`` at its edges, without a server: the door refuses an occurred_at more than one
hour past its clock (ingest/validate.py FUTURE_TOLERANCE) and a sampled_on after the local tomorrow.

tests/test_api.py checks the same refusal far from the edges (+8 h, 2062); here the clock is given.

Every caller (the HTTP door, the Kafka ingress, `qrisk import`) validates with the door's context
first, and that already refuses a sampled_on after occurred_at's local date; with occurred_at at
most an hour ahead, the "after tomorrow" rule is a second line behind it.  It is pinned here on
events parsed without that context (parse_event), as the function is called with any Envelope.
"""
from __future__ import annotations

import datetime as dt
import json

import pytest

from ingest.validate import FUTURE_TOLERANCE, decode_body, from_the_future
from schemas.upcast import parse_event
from tests.conftest import golden

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 10, 4, 0, 0, tzinfo=UTC)  # 12:00 in Beijing


def _body(doc) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def _refusals(doc, now: dt.datetime, offset: float = 8.0, door: bool = True) -> list[dict]:
    """The errors from_the_future finds in one event, validated at the door (or only parsed)."""
    raw = _body(doc)
    if door:
        events, rejected = decode_body(raw)
        assert not rejected, [r.errors for r in rejected]
    else:
        events = [parse_event(doc)]
    return [e for r in from_the_future(events, raw, now, offset) for e in r.errors]


def _event(occurred_at: dt.datetime) -> dict:
    doc = golden("complaint.received")
    doc["occurred_at"] = occurred_at.isoformat()
    return doc


def _sample(sampled_on: dt.date, occurred_at: dt.datetime) -> dict:
    doc = golden("sampling.result")
    doc["occurred_at"] = occurred_at.isoformat()
    doc["payload"]["sampled_on"] = sampled_on.isoformat()
    doc["payload"]["production_date"] = "2026-03-01"
    return doc


# --------------------------------------------------------------------------- occurred_at: one hour


def test_the_tolerance_is_one_hour() -> None:
    assert FUTURE_TOLERANCE == dt.timedelta(hours=1)


@pytest.mark.parametrize("ahead", [dt.timedelta(0), dt.timedelta(minutes=59), dt.timedelta(hours=1)])
def test_occurred_at_up_to_an_hour_ahead_is_accepted(ahead: dt.timedelta) -> None:
    assert _refusals(_event(NOW + ahead), NOW) == []


@pytest.mark.parametrize("ahead", [dt.timedelta(hours=1, seconds=1), dt.timedelta(minutes=61), dt.timedelta(hours=7)])
def test_occurred_at_more_than_an_hour_ahead_is_refused(ahead: dt.timedelta) -> None:
    (err,) = _refusals(_event(NOW + ahead), NOW)
    assert (err["field"], err["type"]) == ("occurred_at", "in_the_future")


def test_the_tolerance_holds_whatever_offset_the_time_is_written_in() -> None:
    # 12:59 Beijing is 04:59Z: 59 minutes ahead, accepted; 13:01 Beijing is refused
    bj = dt.timezone(dt.timedelta(hours=8))
    assert _refusals(_event(dt.datetime(2026, 3, 10, 12, 59, tzinfo=bj)), NOW) == []
    (err,) = _refusals(_event(dt.datetime(2026, 3, 10, 13, 1, tzinfo=bj)), NOW)
    assert err["field"] == "occurred_at"


# --------------------------------------------------------------------------- sampled_on: local tomorrow


# (server clock in UTC, the local (UTC+8) today)
NEAR_MIDNIGHT = [
    (dt.datetime(2026, 3, 10, 15, 59, 59, tzinfo=UTC), dt.date(2026, 3, 10)),  # 23:59:59 local
    (dt.datetime(2026, 3, 10, 16, 0, 0, tzinfo=UTC), dt.date(2026, 3, 11)),    # 00:00:00 local, the next day
    (dt.datetime(2026, 3, 10, 16, 1, 0, tzinfo=UTC), dt.date(2026, 3, 11)),    # 00:01 local (UTC still says 03-10)
]


@pytest.mark.parametrize("now, today", NEAR_MIDNIGHT)
def test_sampled_on_local_tomorrow_is_accepted(now: dt.datetime, today: dt.date) -> None:
    for day in (today - dt.timedelta(days=1), today, today + dt.timedelta(days=1)):
        assert _refusals(_sample(day, now), now, door=False) == [], day


@pytest.mark.parametrize("now, today", NEAR_MIDNIGHT)
def test_sampled_on_the_day_after_local_tomorrow_is_refused(now: dt.datetime, today: dt.date) -> None:
    day = today + dt.timedelta(days=2)
    (err,) = _refusals(_sample(day, now), now, door=False)
    assert (err["field"], err["type"]) == ("payload.sampled_on", "in_the_future")
    assert day.isoformat() in err["reason"]


def test_the_local_day_follows_the_offset() -> None:
    # 16:01Z is 03-11 in Beijing but still 03-10 at offset 0: 03-12 is tomorrow only for Beijing
    now = dt.datetime(2026, 3, 10, 16, 1, tzinfo=UTC)
    doc = _sample(dt.date(2026, 3, 12), now)
    assert _refusals(doc, now, offset=8, door=False) == []
    (err,) = _refusals(doc, now, offset=0, door=False)
    assert err["field"] == "payload.sampled_on"


def test_at_the_door_a_sample_taken_local_tomorrow_passes_just_after_local_midnight() -> None:
    # 23:59:59 in Beijing; the result reported 59 minutes on (00:58:59 of 03-11), sampled on 03-11
    now = dt.datetime(2026, 3, 10, 15, 59, 59, tzinfo=UTC)
    assert _refusals(_sample(dt.date(2026, 3, 11), now + dt.timedelta(minutes=59)), now) == []


# --------------------------------------------------------------------------- a batch


def test_in_a_batch_only_the_late_element_is_refused_with_its_own_bytes() -> None:
    ok, late = _event(NOW + dt.timedelta(minutes=59)), _event(NOW + dt.timedelta(minutes=61))
    late["event_id"] = "7d2f9a10-3b4c-4d5e-8f60-000000000061"
    raw = _body([ok, late])
    events, rejected = decode_body(raw)
    assert not rejected and len(events) == 2
    (rejection,) = from_the_future(events, raw, NOW)
    assert rejection.index == 1
    assert json.loads(rejection.raw) == late
