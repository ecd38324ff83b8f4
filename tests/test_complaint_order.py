"""Complaint corrections taken in the order they were made, not logged; the door's 受理/办结 date warning in both arrival
orders; and the alerts that follow what the bureau did to their complaints (review of the merged complaint branches,
findings 4, 5 and 6).  A correction logged before its original was undone when the original came, closing the hazard
alert the correction raised; a 异物 complaint corrected to 变质 kept an alert saying 异物; a 投诉集中 kept counting, and
naming as a likely duplicate, a complaint the bureau had withdrawn as one."""
from __future__ import annotations

from ingest.lint import accepted_warnings
from processors.step import replay
from tests.test_alerts import County, policy
from tests.test_complaint_accepted import accepted
from tests.test_complaint_accepted import resolved as resolved_on
from tests.test_complaint_desk import E, REG, decisions, received
from tests.test_complaint_withdrawn import withdrawn

GLASS = "桶装水里有碎玻璃碴，孩子差点喝下去。"
SAME = "送来的桶装水里有很多黑色的漂浮物，像是霉斑，孩子已经喝了半杯，要求厂家给个说法。"


def _hazard_alerts(county):
    return [a for a in county.book.alerts.values() if a.rule == "complaint.hazard"]


def test_a_correction_logged_before_its_original_stands(rules):
    orig = received("K2", "2026-03-02T10:00:00+08:00", verified=True, category="other", text=GLASS)
    fix = received("K2", "2026-03-05T10:00:00+08:00", verified=True, category="foreign_matter", text=GLASS)
    state, effects = replay([REG, fix, orig], rules)
    record = state.files[E].complaint("K2")
    assert record.category == "foreign_matter" and record.corrected_from == {}
    assert [d.rule for d in decisions(effects, "complaint.hazard")] == ["complaint.hazard"]
    assert not [e for e in effects if e.kind == "warning.resolved" and e.data["rule"] == "complaint.hazard"]
    [said] = [e for e in effects if e.kind == "complaint.repeated"]
    assert said.data["earlier"] and "category_corrected" not in said.data
    assert "该报送（2026-03-02 10:00）早于已更正的登记（2026-03-05 10:00），以更正后的为准" in said.data["message_zh"]
    # the door says the same, naming the field that decided it
    [w] = accepted_warnings(orig, rules.catalogue, state.files[E])
    assert (w["field"], w["type"]) == ("occurred_at", "complaint_resend_earlier")
    assert "以更正后的为准" in w["reason_zh"] and "earlier than the corrected registration" in w["reason"]
    # and in the order made, the correction corrects
    state, _ = replay([REG, orig, fix], rules)
    assert state.files[E].complaint("K2").category == "foreign_matter"
    assert state.files[E].complaint("K2").corrected_at == fix.occurred_at


def test_the_original_imported_again_after_its_correction_corrects_nothing(rules):
    orig = received("K2", "2026-03-02T10:00:00+08:00", verified=True, category="other", text=GLASS)
    fix = received("K2", "2026-03-05T10:00:00+08:00", verified=True, category="foreign_matter", text=GLASS)
    state, _ = replay([REG, orig, fix], rules)
    again = received("K2", "2026-03-02T10:00:00+08:00", verified=True, category="other", text=GLASS)
    state, effects = replay([again], rules, state)
    assert state.files[E].complaint("K2").category == "foreign_matter"
    assert not [e for e in effects if e.kind == "warning.resolved"]
    # a correction dated as its original (the channel's own receipt time) still corrects, in arrival order
    state, _ = replay([received("K2", "2026-03-05T10:00:00+08:00", verified=True, category="spoilage", text=GLASS)], rules, state)
    assert state.files[E].complaint("K2").category == "spoilage"


def test_the_hazard_alert_stays_open_when_the_original_comes_after_its_correction(rules):
    c = County(rules, policy())
    c.feed(REG, received("K2", "2026-03-05T10:00:00+08:00", verified=True, category="foreign_matter", text=GLASS))
    c.feed(received("K2", "2026-03-02T10:00:00+08:00", verified=True, category="other", text=GLASS))
    [a] = _hazard_alerts(c)
    assert a.state == "open" and a.evidence["category"] == "foreign_matter"


def test_a_conclusion_dated_before_the_decision_on_file_is_said(rules):
    log = [REG, received("A1", "2026-03-01T10:00:00+08:00", text="桶装水里有黑色漂浮物，要求退货。"), accepted("A1", "2026-03-20")]
    state, _ = replay(log, rules)
    late = resolved_on("A1", "2026-03-10T10:00:00+08:00", verified=True)
    state, _ = replay([late], rules, state)
    [w] = accepted_warnings(late, rules.catalogue, state.files[E])
    assert (w["field"], w["type"]) == ("occurred_at", "concluded_before_decided")
    assert "办结日期 2026-03-10（occurred_at）早于投诉 A1 在档受理决定的决定日期 2026-03-20" in w["reason_zh"]
    assert "2026-03-20" in w["reason"]
    # one concluded after the decision says nothing
    state, _ = replay(log, rules)
    after = resolved_on("A1", "2026-03-25T10:00:00+08:00", verified=True)
    state, _ = replay([after], rules, state)
    assert [x for x in accepted_warnings(after, rules.catalogue, state.files[E]) if x["type"] == "concluded_before_decided"] == []


def test_a_hazard_complaint_corrected_to_another_hazard_category_says_the_new_one(rules):
    c = County(rules, policy())
    c.feed(REG, received("K1", "2026-03-02T10:00:00+08:00", verified=True, text=GLASS, product="饮用纯净水"))
    [a] = _hazard_alerts(c)
    assert "中有异物" in a.message_zh
    out = c.feed(received("K1", "2026-03-02T10:00:00+08:00", verified=True, category="spoilage", text=GLASS, product="饮用纯净水"))
    [a] = _hazard_alerts(c)  # (the same alert: no second one)
    assert a.state == "open" and a.occurrences == 1
    assert a.evidence["category"] == "spoilage" and "霉变、变质" in a.message_zh and "中有异物" not in a.message_zh
    [ch] = [x for x in out if x.alert.rule == "complaint.hazard"]
    assert ch.step.action == "comment" and "投诉编号 K1 的类别已由异物更正为变质" in ch.step.note
    out = c.feed(withdrawn("K1", "2026-03-05T10:00:00+08:00"))
    [ch] = [x for x in out if x.alert.rule == "complaint.hazard"]
    assert ch.step.action == "close" and "变质投诉预警" in ch.step.note and "异物" not in ch.step.note


def test_a_burst_drops_a_complaint_the_bureau_withdrew_as_a_duplicate(rules):
    c = County(rules, policy())
    c.feed(REG, received("K1", "2026-03-02T10:00:00+08:00", text=SAME, channel="12315"),
           received("K2", "2026-03-03T10:00:00+08:00", text=SAME, channel="letter"),
           received("K3", "2026-03-04T10:00:00+08:00", text="水有一股很重的塑料味，喝了嗓子不舒服，桶也不干净。", category="taste_odour"),
           received("K4", "2026-03-05T10:00:00+08:00", text="瓶盖下面有一层绿色的东西，看着像霉，不敢喝了。"))
    [a] = [a for a in c.book.alerts.values() if a.rule == "complaint.burst"]
    assert a.evidence["possible_duplicates"] and "K2 与 K1 内容相同" in a.message_zh
    seen = a.occurrences
    out = c.feed(withdrawn("K2", "2026-03-06T10:00:00+08:00", reason="同一投诉经来信再次登记", duplicate_of="K1"))
    [b] = [a for a in c.book.alerts.values() if a.rule == "complaint.burst"]
    assert b.alert_id == a.alert_id and b.state == "open" and b.occurrences == seen  # (not another occurrence)
    assert b.evidence["complaint_ids"] == ["K1", "K3", "K4"] and b.evidence["count"] == 3
    assert "possible_duplicates" not in b.evidence and "内容相同" not in b.message_zh and "K2" not in b.message_zh
    [ch] = [x for x in out if x.alert.rule == "complaint.burst"]
    assert ch.step.action == "comment" and "投诉编号 K2 已由" in ch.step.note and "按其余 3 件重新计算" in ch.step.note
    # below k it closes, as before
    out = c.feed(withdrawn("K3", "2026-03-07T10:00:00+08:00", reason="企业填错"))
    assert [x.step.action for x in out if x.alert.rule == "complaint.burst"] == ["close"]


def test_a_cluster_drops_a_withdrawn_complaint_and_keeps_its_key(rules):
    c = County(rules, policy())
    c.feed(REG, *[received(f"K{i}", f"2026-03-0{i + 1}T10:00:00+08:00", verified=True,
                           text=SAME if i < 3 else f"第{i}件：瓶盖下面有一层绿色的东西，看着像霉，不敢喝了。") for i in range(1, 5)])
    [a] = [a for a in c.book.alerts.values() if a.rule == "complaint.cluster"]
    assert a.evidence["count"] == 4 and {"complaint_id": "K2", "duplicate_of": "K1", "similarity": 1.0} in a.evidence["possible_duplicates"]
    c.feed(withdrawn("K2", "2026-03-06T10:00:00+08:00", reason="重复登记", duplicate_of="K1"))
    [b] = [a for a in c.book.alerts.values() if a.rule == "complaint.cluster"]
    assert b is a and b.state == "open" and b.evidence["count"] == 3 and b.evidence["complaint_ids"] == ["K1", "K3", "K4"]
    assert all(p["complaint_id"] != "K2" for p in b.evidence.get("possible_duplicates", [])) and "K2" not in b.message_zh
