"""A 受理决定 dated after the complaint's conclusion (review r26, finding 7)."""
from __future__ import annotations

import datetime as dt

from ingest.lint import accepted_warnings
from processors.step import replay
from tests.test_complaint_accepted import accepted
from tests.test_complaint_desk import E, REG, received, resolved

# --------------------------------------------------------------------------- 7. a decision after the conclusion


def test_the_door_warns_of_a_decision_dated_after_the_conclusion(rules):
    late = accepted("A1", "2026-03-30")
    log = [REG, received("A1", "2026-03-20T10:00:00+08:00", category="taste_odour", text="水有异味。"),
           resolved("A1", "2026-03-25T10:00:00+08:00", verified=False), late]
    state, _ = replay(log, rules)
    assert state.files[E].complaint("A1").concluded_on == dt.date(2026, 3, 25)
    [w] = accepted_warnings(late, rules.catalogue, state.files[E])
    assert (w["field"], w["type"]) == ("payload.decided_on", "decided_after_concluded")
    assert "决定日期 2026-03-30 晚于投诉 A1 的办结日期 2026-03-25" in w["reason_zh"] and "2026-03-25" in w["reason"]
    # one before the conclusion says nothing
    state, _ = replay(log[:-1], rules)
    assert accepted_warnings(accepted("A1", "2026-03-23"), rules.catalogue, state.files[E]) == []
