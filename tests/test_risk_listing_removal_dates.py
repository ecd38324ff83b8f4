"""A removal from the 严重违法失信 list dated before the decision that listed: a listing cannot end before it began, so
the fold refuses it (the grade stays D) and the door says which date to check."""
import datetime as dt

from alerts.messages import _KIND_EN, _KIND_ZH
from ingest.lint import accepted_warnings
from processors.step import replay
from tests.test_risk import E
from tests.test_risk_status import LISTED, removal, tick

MISDATED = removal("2026-11-02T10:00:00+08:00", removed_on="2025-05-18")  # (a year mistyped: the decision is of 2026-05-18)


def test_a_removal_before_the_listing_is_refused_and_the_grade_stays_d(rules):
    state, effects = replay(LISTED + [MISDATED, tick("2026-11-03T00:10:00+08:00")], rules)
    f = state.files[E]
    (said,) = [e.data for e in effects if e.kind == "enforcement.listing_removal_refused"]
    assert (said["field"], said["reason"]) == ("payload.removed_on", "removed_before_listing")
    assert "移出日期 2025-05-18 早于列入决定日期 2026-05-18" in said["message_zh"]
    assert not [e for e in effects if e.kind == "enforcement.listing_removed"]
    assert f.enforcements[0].listing_removed_on is None and f.enforcements[0].listing_removal_event_id is None
    assert f.risk.grade == "D" and f.risk.current.override == "serious_dishonesty"
    # refused, it leaves the listing open to the removal sent again with the right date
    state, effects = replay(LISTED + [MISDATED, removal("2026-11-02T11:00:00+08:00")], rules)
    assert [e.data["removed_on"] for e in effects if e.kind == "enforcement.listing_removed"] == ["2026-11-02"]
    assert state.files[E].risk.grade == "C"
    assert "移出日期" in _KIND_ZH["enforcement.listing_removal_refused"] and "date" in _KIND_EN["enforcement.listing_removal_refused"]


def test_the_door_warns_of_a_removal_before_the_listing(rules):
    state, _ = replay(LISTED + [MISDATED], rules)
    (w,) = accepted_warnings(MISDATED, rules.catalogue, state.files[E])
    assert (w["field"], w["type"]) == ("payload.removed_on", "removed_before_listing")
    assert w["reason_zh"] == "移出日期 2025-05-18 早于列入决定日期 2026-05-18：未作移出处理，请核对移出日期"


def test_a_removal_on_the_day_of_the_listing_is_applied(rules):
    state, effects = replay(LISTED + [removal("2026-11-02T10:00:00+08:00", removed_on="2026-05-18")], rules)
    assert [e.data["removed_on"] for e in effects if e.kind == "enforcement.listing_removed"] == ["2026-05-18"]
    assert state.files[E].enforcements[0].listing_removed_on == dt.date(2026, 5, 18)
