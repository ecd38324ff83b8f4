"""Likely duplicates named in the 投诉集中 and 投诉聚集 they swell, and a 受理决定 dated after the complaint's conclusion
(review r26, findings 6 and 7)."""
from __future__ import annotations

import datetime as dt

from ingest.lint import accepted_warnings
from processors.step import replay
from tests.test_complaint_accepted import accepted
from tests.test_complaint_desk import E, REG, decisions, received, resolved

# --------------------------------------------------------------------------- 6. likely duplicates in bursts and clusters


DUP = "我在城关路超市买的18.9升桶装水里有黑色漂浮物，批号20260301，请尽快处理。"
SAID = "其中 K2 与 K1 内容相同（可能为同一投诉经两个渠道登记），核实后可撤回重复登记"


def _dups():
    return [REG, received("K1", "2026-03-02T10:00:00+08:00", text=DUP, channel="12315"),
            received("K2", "2026-03-03T10:00:00+08:00", text=DUP, channel="letter"),
            received("K3", "2026-03-03T12:00:00+08:00", text="我昨天打过12315，桶装水里有黑色漂浮物，至今没人处理！", channel="hotline")]


def test_a_burst_names_two_complaints_of_one_text(rules):
    _, effects = replay(_dups(), rules)
    [d] = decisions(effects, "complaint.burst")
    assert SAID in d.message_zh and d.message_zh.index(SAID) < d.message_zh.index("下一步")
    assert d.evidence["possible_duplicates"] == [{"complaint_id": "K2", "duplicate_of": "K1", "similarity": 1.0}]
    assert d.evidence["count"] == 3  # (counted as they are: the bureau withdraws the repeat)
    assert "K2 has the same text as K1" in d.message_en


def test_a_cluster_names_two_complaints_of_one_text(rules):
    _, effects = replay(_dups() + [resolved(c, "2026-03-10T10:00:00+08:00") for c in ("K1", "K2", "K3")], rules)
    [d] = decisions(effects, "complaint.cluster")
    assert SAID in d.message_zh and d.evidence["possible_duplicates"][0]["duplicate_of"] == "K1"


def test_a_burst_of_different_complaints_says_nothing_of_duplicates(rules):
    log = [REG, received("A", "2026-03-02T10:00:00+08:00", text="我在城关路超市买的桶装水里有黑色漂浮物，批号20260301。"),
           received("B", "2026-03-03T10:00:00+08:00", text="昨天送来的两桶水有一股塑料味，孩子喝了一口就不肯喝了。"),
           received("C", "2026-03-04T10:00:00+08:00", text="水桶的封口破了，标签上的生产日期也看不清楚。")]
    _, effects = replay(log, rules)
    [d] = decisions(effects, "complaint.burst")
    assert "possible_duplicates" not in d.evidence and "重复登记" not in d.message_zh


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
