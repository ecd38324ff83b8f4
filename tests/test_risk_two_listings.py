"""A listing removed early (信用修复) while another listing still holds: when the other's term ends, --as-of without
ticks must grade as with daily ticks."""
import datetime as dt
from qrisk.backtest import state_as_of, risk_ranking
from tests.test_risk import E, ev, registered
from tests.test_risk_plan import _daily_ticks, _merged


def test_two_listings_one_removed(rules):
    events = [registered(campaign_tier="A"),
              # D1 decided 2026-03-10 (term to 2029-03-10), D2 2026-05-18 (term to 2029-05-18), D2 removed 2027-01-05
              ev("enforcement.decided", "2026-03-10T15:00:00+08:00", decision_no="示范县市监处罚〔2026〕5号", decided_on="2026-03-10",
                 serious_dishonesty=True, penalties=[{"kind": "warning"}]),
              ev("enforcement.decided", "2026-05-18T15:00:00+08:00", serious_dishonesty=True, penalties=[{"kind": "warning"}]),
              ev("enforcement.listing_removed", "2027-01-05T10:00:00+08:00", removed_on="2027-01-05"),
              ]
    ticks = _daily_ticks(dt.date(2029, 3, 1), dt.date(2029, 6, 1))
    out = []
    for day in (dt.date(2029, 3, 9), dt.date(2029, 3, 10), dt.date(2029, 4, 1), dt.date(2029, 5, 17), dt.date(2029, 5, 20), dt.date(2029, 6, 1)):
        plain = state_as_of(events, day, rules).files[E].risk
        ticking = state_as_of(_merged(events, ticks), day, rules).files[E].risk
        out.append((day.isoformat(), plain.grade, str(plain.moved_at), ticking.grade, str(ticking.moved_at)))
    assert all(o[1:3] == o[3:5] for o in out), out  # (the grade, and when it moved)
    # D1's term ends 2029-03-10 (D2 was removed 2027-01-05): the grade improves from then, not from D2's term end
    assert out[1][1] == "C" and out[1][2] == "2029-03-09 16:00:00+00:00"
