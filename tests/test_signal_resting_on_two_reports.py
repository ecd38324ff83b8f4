"""A baseline outlier signal resting on two reports (two typos in one baseline, said when the 8th batch froze the
limits): its one risk entry is kept under the first report's id only (processors.risk), so a review asked whether
correcting the other report would leave its points behind.  It does not: the series is built again from the
corrected values, and the points follow what still signals."""
from __future__ import annotations

import datetime as dt

from processors.step import replay
from tests.test_corrections import REG, _measured
from tests.test_spc_false_alarms import signals
from tests.test_spc_third_review import AT, VALUES, _scored

TYPOS = (0, 2)  # typed ten times over, both left out of the baseline


def _log():
    return [_measured(i, round(v * (10 if i in TYPOS else 1), 2), AT + dt.timedelta(days=i)) for i, v in enumerate(VALUES)]


def _fix(log, i):
    return _measured(i, VALUES[i], AT + dt.timedelta(days=40 + i), sample_no=log[i].payload.sample_no)


def test_the_signal_rests_on_both_typos_and_scores_once(rules):
    log = _log()
    state, effects = replay([REG, *log], rules)
    [sig] = [e for e in signals(effects) if e.data["rule"] == "baseline_outlier"]
    assert sig.data["rests_on_event_ids"] == sorted(str(log[i].event_id) for i in TYPOS)
    [entry] = _scored(state)
    assert entry[3] == sig.data["rests_on_event_ids"][0]


def test_correcting_either_typo_keeps_the_points_while_the_other_still_signals_and_both_take_them_back(rules):
    log = _log()
    for fixed, other in ((0, 2), (2, 0)):
        state, _ = replay([REG, *log, _fix(log, fixed)], rules)
        [entry] = _scored(state)
        assert entry[3] == str(log[other].event_id)  # resting on the typo left
    state, _ = replay([REG, *log, _fix(log, 0), _fix(log, 2)], rules)
    assert not _scored(state)
    state, _ = replay([REG, *log, _fix(log, 2), _fix(log, 0)], rules)
    assert not _scored(state)
