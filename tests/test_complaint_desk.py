"""What the complaints desk (12315 / 快速反应) found in the complaint handling: clusters that depend on the order
complaints are verified in, bursts of unverified complaints nobody is told of, price and service complaints
raising a 投诉聚集, and a rolling cluster opening alert after alert."""
from __future__ import annotations

import uuid

from processors.step import replay
from processors.warnings import ALERT_KIND, AlertDecision
from schemas.upcast import parse_event
from tests.conftest import golden

E = "E-330110-001"
REG = parse_event(golden("enterprise.registered"))


def _id() -> str:
    return str(uuid.uuid4())


def received(cid: str, at: str, verified: bool = False, category: str = "foreign_matter", text: str = "桶装水里有黑色漂浮物。", **payload):
    doc = golden("complaint.received")
    doc["event_id"], doc["occurred_at"] = _id(), at
    doc["payload"].update(complaint_id=cid, verified=verified, category=category, text=text, **payload)
    return parse_event(doc)


def resolved(cid: str, at: str, verified: bool = True):
    doc = golden("complaint.resolved")
    doc["event_id"], doc["occurred_at"] = _id(), at
    doc["payload"].update(complaint_id=cid, verified=verified)
    return parse_event(doc)


def decisions(effects, rule: str) -> list[AlertDecision]:
    return [d for d in (AlertDecision.model_validate(e.data) for e in effects if e.kind == ALERT_KIND) if d.rule == rule]


def _three():
    return [received("A", "2026-03-01T10:00:00+08:00"), received("B", "2026-03-02T10:00:00+08:00"),
            received("C", "2026-03-03T10:00:00+08:00")]


def test_a_cluster_does_not_depend_on_the_order_complaints_are_verified_in(rules):
    """A, B, C received 03-01/02/03: verified A, B, C raised a 投诉聚集, verified C, B, A none — the window was the 30
    days up to the complaint just verified, and A's holds only A."""
    for order in ("ABC", "CBA", "BCA", "ACB"):
        verifying = [resolved(c, f"2026-03-1{i}T10:00:00+08:00") for i, c in enumerate(order)]
        _, effects = replay([REG, *_three(), *verifying], rules)
        clusters = [e for e in effects if e.kind == "complaint.cluster"]
        assert len(clusters) == 1, order
        assert sorted(clusters[0].data["complaint_ids"]) == ["A", "B", "C"]
        [d] = decisions(effects, "complaint.cluster")
        assert d.evidence["first_day"] == "2026-03-01" and d.evidence["count"] == 3


def test_a_cluster_is_any_window_holding_the_complaint_not_only_the_one_ending_at_it(rules):
    # B verified last sits in the middle: 02-20 … 03-15 is one 30-day window holding all three
    events = [REG, received("A", "2026-02-20T10:00:00+08:00", verified=True), received("B", "2026-03-01T10:00:00+08:00"),
              received("C", "2026-03-15T10:00:00+08:00", verified=True), resolved("B", "2026-03-20T10:00:00+08:00")]
    _, effects = replay(events, rules)
    [cluster] = [e for e in effects if e.kind == "complaint.cluster"]
    assert cluster.data["complaint_ids"] == ["A", "B", "C"]
    # three verified complaints 31 days apart end to end are no cluster, in whichever order
    events = [REG, received("A", "2026-02-12T10:00:00+08:00"), received("B", "2026-03-01T10:00:00+08:00"),
              received("C", "2026-03-15T10:00:00+08:00"), resolved("C", "2026-03-20T10:00:00+08:00"),
              resolved("A", "2026-03-21T10:00:00+08:00"), resolved("B", "2026-03-22T10:00:00+08:00")]
    _, effects = replay(events, rules)
    assert not [e for e in effects if e.kind == "complaint.cluster"]


def test_price_and_service_complaints_raise_no_cluster_and_no_risk_points(rules):
    """水价上涨未告知、送水慢 found 属实 (category other): no 投诉聚集 asking to inspect the plant and check the same
    batch, and no 经核实投诉 points — only the complaint chart left other out."""
    service = [received(f"S{d}", f"2026-03-0{d}T10:00:00+08:00", verified=True, category="other", text=t)
               for d, t in ((1, "水价上涨未告知。"), (2, "送水工态度差。"), (3, "送水不及时。"))]
    state, effects = replay([REG, *service], rules)
    assert not [e for e in effects if e.kind == "complaint.cluster"] and not decisions(effects, "complaint.cluster")
    f = state.files[E]
    assert f.counts.complaints_verified == 3  # (they are on file, verified)
    assert not [c for c in f.risk.current.contributions if c.factor == "dynamic.complaint_verified" and c.points]
    # two quality complaints beside them are still two, not a cluster of five
    state, effects = replay([REG, *service, received("Q1", "2026-03-04T10:00:00+08:00", verified=True),
                             received("Q2", "2026-03-05T10:00:00+08:00", verified=True)], rules)
    assert not [e for e in effects if e.kind == "complaint.cluster"]
    [points] = [c for c in state.files[E].risk.current.contributions if c.factor == "dynamic.complaint_verified"]
    assert points.points == 6
    # and the bureau may count them, if it wants to
    from processors.step import Rules
    from schemas.policy import Policy
    every = Rules(rules.catalogue, Policy.model_validate({"complaint_cluster": {"categories": ["other", "foreign_matter"]}}))
    _, effects = replay([REG, *service], every)
    assert [e for e in effects if e.kind == "complaint.cluster"]


def test_a_rolling_cluster_keeps_one_alert_raised_again_with_its_count(rules):
    """Verified complaints every ten days: each opened another high 投诉聚集 (keys …cluster:2026-03-01, :03-10, :03-20)
    about mostly the same complaints; one alert while the cluster lasts (README), raised again with the new count."""
    days = ("03-01", "03-10", "03-20", "03-30", "04-09", "04-19")
    events = [REG, *(received(f"K{i}", f"2026-{d}T10:00:00+08:00", verified=True) for i, d in enumerate(days))]
    _, effects = replay(events, rules)
    found = decisions(effects, "complaint.cluster")
    assert len(found) == 4
    assert {d.dedup_key for d in found} == {f"{E}:complaint.cluster:2026-03-01"}
    assert [d.evidence["complaint_ids"] for d in found][-1] == ["K2", "K3", "K4", "K5"]  # (03-20 … 04-19: 30 days)
    assert "自 2026-03-20 起 30 天内经核实的投诉达 4 件" in found[-1].message_zh
    # the alerts stage: one alert, raised four times
    from tests.test_alerts import County, policy

    county = County(rules, policy())
    county.feed(*events)
    [alert] = [a for a in county.book.alerts.values() if a.rule == "complaint.cluster"]
    assert alert.occurrences == 4 and {"K0", "K5"} <= set(alert.refs)


def _five_across_a_month_end():
    days = ("03-30T09:00", "03-31T15:00", "04-01T10:00", "04-01T18:00", "04-02T08:30")
    texts = ("这批桶装水有股怪味。", "水里有黑色絮状物。", "喝着有霉味。", "批号20260325的水有异味。", "桶装水有异味，颜色发黄。")
    cats = ("taste_odour", "foreign_matter", "spoilage", "taste_odour", "taste_odour")
    return [received(f"TS{i}", f"2026-{d}:00+08:00", category=c, text=t, product="饮用纯净水 18.9L")
            for i, (d, t, c) in enumerate(zip(days, texts, cats), 1)]


def test_five_unverified_complaints_in_four_days_across_a_month_end_alert_at_once(rules):
    """03-30 … 04-02, none verified yet: the chart split them by calendar month (2 and 3, under its limit of 4) and the
    投诉聚集 counts only verified ones — nothing was raised.  快速反应: 3 within 7 days alert, high, naming them."""
    from tests.test_alerts import County, policy

    five = _five_across_a_month_end()
    state, effects = replay([REG, *five], rules)
    found = decisions(effects, "complaint.burst")
    assert len(found) == 3  # (the 3rd, 4th and 5th complaint): one alert, raised again
    assert {d.dedup_key for d in found} == {f"{E}:complaint.burst:2026-03-30"}
    last = found[-1]
    assert last.severity == "high" and last.title_zh == "投诉集中（快速反应）"
    assert last.evidence["complaint_ids"] == ["TS1", "TS2", "TS3", "TS4", "TS5"] and last.evidence["products"] == ["饮用纯净水 18.9L"]
    assert "2026-03-30 至 2026-04-02 收到质量投诉 5 件" in last.message_zh and "均尚未核实" in last.message_zh
    assert "TS2（2026-03-31，异物，饮用纯净水 18.9L）" in last.message_zh and "请立即组织核查" in last.message_zh
    assert not [e for e in effects if e.kind == "fluctuation.signal"]  # (the chart still sees two months)
    county = County(rules, policy())
    county.feed(REG, *five)
    [alert] = [a for a in county.book.alerts.values() if a.rule == "complaint.burst"]
    assert alert.occurrences == 3 and alert.severity == "high" and set(alert.refs) == {f"TS{i}" for i in range(1, 6)}
    assert "desk" in alert.receivers  # the duty desk takes high and worse


def test_a_burst_needs_quality_complaints_close_together_and_closes_when_found_unfounded(rules):
    # two complaints and a price complaint: no burst; the same three over 8 days: none either
    two = _five_across_a_month_end()[:2]
    _, effects = replay([REG, *two, received("P1", "2026-03-31T10:00:00+08:00", category="other", text="水价上涨未告知。")], rules)
    assert not decisions(effects, "complaint.burst")
    spread = [received(f"S{i}", f"2026-03-{d}T10:00:00+08:00") for i, d in enumerate(("01", "05", "09"))]
    _, effects = replay([REG, *spread], rules)
    assert not decisions(effects, "complaint.burst")
    # three in a week, then one found 不属实: two stand, the alert closes, saying why
    three = _five_across_a_month_end()[:3]
    _, effects = replay([REG, *three, resolved("TS2", "2026-04-03T10:00:00+08:00", verified=False)], rules)
    assert len(decisions(effects, "complaint.burst")) == 1
    [closed] = [e for e in effects if e.kind == "warning.resolved" and e.data["rule"] == "complaint.burst"]
    assert closed.data["dedup_key"] == f"{E}:complaint.burst:2026-03-30" and "不足 3 件" in closed.data["note_zh"]
    # three verified at receipt are a 投诉聚集, which says it: no 投诉集中 beside it
    _, effects = replay([REG, *(received(f"V{i}", f"2026-03-0{i}T10:00:00+08:00", verified=True) for i in (1, 2, 3))], rules)
    assert decisions(effects, "complaint.cluster") and not decisions(effects, "complaint.burst")


def test_everyday_words_of_illness_alert_and_a_denial_after_the_word_does_not(rules):
    """Callers say 肚子疼、拉稀、挂水、闹肚子, not 腹痛、腹泻、就医: such complaints raised no 食用后不适 early warning; and
    腹泻没有，就是水有怪味 (the illness denied after the word) raised one."""
    said = {"孩子喝了以后肚子疼，吐了两次": ["肚子疼", "吐了"], "喝完拉稀，去医院挂水了": ["拉稀", "挂水", "去医院"],
            "喝后恶心想吐，去医院看了": ["想吐", "去医院"], "全家喝了都闹肚子": ["闹肚子"]}
    for i, (text, words) in enumerate(said.items()):
        _, effects = replay([REG, received(f"I{i}", "2026-03-20T10:00:00+08:00", category="taste_odour", text=text)], rules)
        [d] = decisions(effects, "complaint.illness")
        assert d.evidence["illness_words"] == words and d.title_zh == "食用后不适投诉（待核实）", text
    for i, text in enumerate(("腹泻没有，就是水有怪味", "喝了一口就吐了出来，味道太怪", "呕吐也没有出现，但水很浑")):
        _, effects = replay([REG, received(f"N{i}", "2026-03-20T10:00:00+08:00", category="taste_odour", text=text)], rules)
        assert not decisions(effects, "complaint.illness"), text
    # still ill is no denial
    _, effects = replay([REG, received("S1", "2026-03-20T10:00:00+08:00", category="taste_odour", text="腹泻没好，还在吃药")], rules)
    assert decisions(effects, "complaint.illness")


def _warned(rules, state, event, elsewhere=()):
    from ingest.lint import accepted_warnings

    return accepted_warnings(event, rules.catalogue, state.files.get(event.enterprise_id), elsewhere)  # (the default policy: UTC+8)


def test_one_complaint_through_two_channels_is_said_to_repeat_the_first(rules):
    """The same words a day apart, by 12315 and by letter, under two numbers: counted twice, and the monthly chart
    signalled on it.  The door says which complaint it repeats."""
    text = "3月18日在超市购买的桶装水，打开后发现水中有黑色絮状物，要求企业退货并赔偿。"
    first = received("TS-A", "2026-03-20T10:00:00+08:00", text=text, channel="12315")
    letter = received("LX-7", "2026-03-21T15:30:00+08:00", text=text.replace("，", ", "), channel="letter")
    state, _ = replay([REG, first, letter], rules)
    [w] = [w for w in _warned(rules, state, letter) if w["type"] == "complaint_possible_duplicate"]
    assert w["field"] == "payload.text" and "投诉编号 TS-A（12315渠道，2026-03-20 10:00 收到" in w["reason_zh"] and "相同" in w["reason_zh"]
    assert f"事件 {first.event_id}" in w["reason_zh"] and "duplicate_of 填 TS-A" in w["reason_zh"]
    assert not [w for w in _warned(rules, state, first) if w["type"] == "complaint_possible_duplicate"]  # (the first said nothing)
    # a near-identical one says how alike; another complaint, or the same words weeks later, says nothing
    near = received("LX-8", "2026-03-22T09:00:00+08:00", text=text.replace("要求企业退货并赔偿", "要求退货赔偿"))
    other = received("LX-9", "2026-03-22T09:00:00+08:00", text="桶装水有股塑料味，喝着不舒服。")
    late = received("LX-10", "2026-04-20T09:00:00+08:00", text=text)
    state, _ = replay([REG, first, near, other, late], rules)
    [w] = [w for w in _warned(rules, state, near) if w["type"] == "complaint_possible_duplicate"]
    assert "几乎相同（相似度" in w["reason_zh"]
    assert not [w for e in (other, late) for w in _warned(rules, state, e) if w["type"] == "complaint_possible_duplicate"]


def test_a_complaint_number_on_file_under_another_enterprise_is_said_on_receipt(rules):
    first = received("TS-9", "2026-03-20T10:00:00+08:00")
    state, _ = replay([REG, first], rules)
    misfiled = parse_event({**first.model_dump(mode="json", exclude_unset=True), "event_id": _id(), "enterprise_id": "W08"})
    state, _ = replay([misfiled], rules, state)
    [w] = [w for w in _warned(rules, state, misfiled, [(E, state.files[E].complaint("TS-9"))]) if w["type"] == "complaint_id_elsewhere"]
    assert f"投诉编号 TS-9 已登记在企业 {E} 名下（事件 {first.event_id}）" in w["reason_zh"]


def test_door_warnings_quote_the_bureau_s_local_time_and_space_ids_evenly(rules):
    """已有办结结论属实（2026-11-05T08:00:00+00:00，…）: UTC in Chinese text; 登记在W99（…）名下 … 暂存在W06 名下."""
    complaint = received("TS-T", "2026-11-01T10:00:00+08:00")
    first = resolved("TS-T", "2026-11-05T16:00:00+08:00")
    again = resolved("TS-T", "2026-11-06T09:30:00+08:00", verified=False)
    state, _ = replay([REG, complaint, first, again], rules)
    [w] = _warned(rules, state, again)
    assert "已有办结结论属实（2026-11-05 16:00，事件" in w["reason_zh"] and "+00:00" not in w["reason_zh"]
    early = resolved("TS-T", "2026-10-30T08:00:00+08:00")
    state, _ = replay([early], rules, state)
    said = [w["reason_zh"] for w in _warned(rules, state, early) if w["type"] == "resolved_before_received"]
    assert said == ["办结时间 2026-10-30 08:00 早于投诉收到时间 2026-11-01 10:00，请核对"]
    stray = resolved("TS-T", "2026-11-07T09:00:00+08:00")
    stray = parse_event({**stray.model_dump(mode="json", exclude_unset=True), "enterprise_id": "W06"})
    [w] = _warned(rules, state, stray, [(E, state.files[E].complaint("TS-T"))])
    assert f"该编号的投诉登记在企业 {E} 名下（事件 {complaint.event_id}）：办结结果已暂存在企业 W06 名下等待" in w["reason_zh"]


def test_the_register_counts_calendar_days_in_the_bureau_s_time(rules):
    """收到 03-01 17:00, 办结 03-02 09:00: a desk counts 1 day, the register said 0 (16 hours, floored)."""
    import datetime as dt

    from qrisk.registers import complaint_rows, complaint_sheet

    state, _ = replay([REG, received("D1", "2026-03-01T17:00:00+08:00"), resolved("D1", "2026-03-02T09:00:00+08:00"),
                       received("D2", "2026-03-01T23:30:00+08:00")], rules)
    now = dt.datetime(2026, 3, 1, 17, 0, tzinfo=dt.timezone.utc)  # 03-02 01:00 in the bureau's time
    rows = {r["complaint_id"]: r for r in complaint_rows([state.files[E].view()], now)}
    assert (rows["D1"]["days"], rows["D2"]["days"]) == (1, 1)
    _, _, headers = complaint_sheet(list(rows.values()), 8)
    assert headers["days"] == "用时（自然日：收到日至办结日，不予受理的至决定日，办理中的至今日）"


def test_the_credit_report_lists_product_resolution_time_spans_counted_verified_and_parked_conclusions(rules):
    """The 投诉举报 section lacked 涉及产品 and 办结时间; a complaint 属实 at receipt found 不属实 later showed only 不属实,
    though it weighed meanwhile; a conclusion whose complaint is not on file showed nowhere but the raw JSON."""
    from qrisk.credit_report import build_report, render_text

    events = [REG, received("R1", "2026-03-01T10:00:00+08:00", verified=True, product="饮用纯净水 18.9L"),
              resolved("R1", "2026-03-20T16:00:00+08:00", verified=False), resolved("ZZ-404", "2026-03-22T09:00:00+08:00")]
    state, _ = replay(events, rules)
    report = build_report(state.files[E], rules)
    [row] = report["complaints"]
    assert row["product"] == "饮用纯净水 18.9L" and row["resolved_at"] == "2026-03-20 16:00"
    assert row["verified_zh"] == "不属实（曾按属实计：2026-03-01 至 2026-03-20）"
    [parked] = report["resolutions_waiting"]
    assert (parked["complaint_id"], parked["verified_zh"], parked["resolved_at"]) == ("ZZ-404", "属实", "2026-03-22 09:00")
    text = render_text(report)
    assert "【待匹配的办结结论】（1 条）" in text and "涉及产品：饮用纯净水 18.9L" in text and "办结时间：2026-03-20 16:00" in text
    # a file without a parked conclusion has no such section
    state, _ = replay(events[:3], rules)
    assert "待匹配的办结结论" not in render_text(build_report(state.files[E], rules))


def test_the_credit_report_workbook_has_the_parked_conclusions_sheet_only_when_there_are_some(rules, tmp_path):
    from openpyxl import load_workbook

    from qrisk.credit_report import build_report, write_xlsx

    state, _ = replay([REG, resolved("ZZ-404", "2026-03-22T09:00:00+08:00")], rules)
    wb = load_workbook(write_xlsx(build_report(state.files[E], rules), tmp_path / "a.xlsx"))
    assert "待匹配的办结结论" in wb.sheetnames and wb["待匹配的办结结论"]["B3"].value == "ZZ-404"
    state, _ = replay([REG], rules)
    assert "待匹配的办结结论" not in load_workbook(write_xlsx(build_report(state.files[E], rules), tmp_path / "b.xlsx")).sheetnames


def test_the_complaint_chart_alert_names_the_month_s_complaints(rules):
    """The c-chart alert had refs [] and one event id: which complaints made the month's 4?"""
    from alerts.lifecycle import evidence_zh
    from tests.test_alerts import County, policy

    month = [received(f"M{d}", f"2026-05-{d:02d}T10:00:00+08:00", category=c, product=p, text=f"第{d}号投诉：水有问题。")
             for d, c, p in ((2, "taste_odour", "饮用纯净水"), (9, "foreign_matter", "饮用纯净水"), (20, "spoilage", "矿物质水"),
                             (28, "taste_odour", "饮用纯净水"))]
    _, effects = replay([REG, *month], rules)
    [d] = decisions(effects, "fluctuation.signal")
    assert d.evidence["complaint_ids"] == ["M2", "M9", "M20", "M28"]
    assert [(c["complaint_id"], c["category"], c["product"], c["received_on"]) for c in d.evidence["complaints"]][2] == (
        "M20", "spoilage", "矿物质水", "2026-05-20")
    county = County(rules, policy())
    county.feed(REG, *month)
    [alert] = [a for a in county.book.alerts.values() if a.rule == "fluctuation.signal"]
    assert alert.refs == ["M2", "M9", "M20", "M28"] and "投诉编号 M2、M9、M20、M28" in evidence_zh(alert)


def test_two_short_complaints_alike_are_no_sign_of_one(rules):
    a, b = received("Q1", "2026-03-20T10:00:00+08:00", text="桶装水有异味。"), received("Q2", "2026-03-21T10:00:00+08:00", text="桶装水有异味。")
    state, _ = replay([REG, a, b], rules)
    assert not [w for w in _warned(rules, state, b) if w["type"] == "complaint_possible_duplicate"]
