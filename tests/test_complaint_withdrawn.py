"""complaint.withdrawn (撤回投诉登记): the bureau takes a complaint off a credit file — filed under the wrong enterprise
(the same complaint number under W07, W08, W09), or one complaint registered twice through two channels.  It stays on
file, marked, and leaves the counts, the complaints chart, the score and the alerts resting on it."""
from __future__ import annotations

import uuid

from processors.step import replay
from qrisk.auth import KeyStore
from schemas.upcast import parse_event
from tests.conftest import golden
from tests.test_complaint_desk import E, REG, decisions, received, resolved

REASON = "被投诉企业填报错误（应为 W08），已在该企业名下重新登记"


def withdrawn(cid: str, at: str = "2026-03-28T10:00:00+08:00", reason: str = REASON, duplicate_of: str | None = None, eid: str = E):
    doc = golden("complaint.withdrawn")
    doc.update(event_id=str(uuid.uuid4()), occurred_at=at, enterprise_id=eid)
    doc["payload"].update(complaint_id=cid, reason=reason, **({"duplicate_of": duplicate_of} if duplicate_of else {}))
    return parse_event(doc)


def _verified_points(f) -> float:
    return sum(c.points for c in f.risk.current.contributions if c.factor == "dynamic.complaint_verified")


def test_a_misfiled_complaint_withdrawn_stays_on_file_and_counts_for_nothing(rules):
    complaint = received("TS-9", "2026-03-20T10:00:00+08:00", verified=True)
    state, _ = replay([REG, complaint], rules)
    assert (state.files[E].counts.complaints, _verified_points(state.files[E])) == (1, 3)
    back = withdrawn("TS-9")
    state, effects = replay([back], rules, state)
    f = state.files[E]
    assert f.complaints == [] and [c.complaint_id for c in f.complaints_withdrawn] == ["TS-9"]
    w = f.complaints_withdrawn[0].withdrawn
    assert (w.reason, w.event_id, w.by) == (REASON, str(back.event_id), "县市场监督管理局")
    assert (f.counts.complaints, f.counts.complaints_verified, _verified_points(f)) == (0, 0, 0)
    [said] = [e for e in effects if e.kind == "complaint.withdrawn"]
    assert "由县市场监督管理局撤回" in said.data["message_zh"] and "不再计入投诉统计、投诉数控制图、风险分和预警" in said.data["message_zh"]
    # the readable report lists it, marked, apart from the counts
    from qrisk.credit_report import build_report, render_text

    report = build_report(f, rules)
    [row] = report["complaints"]
    assert row["withdrawn"] and row["verified_zh"].startswith("已撤回（2026-03-28 县市场监督管理局：被投诉企业填报错误") and row["verified_zh"].endswith("，不计入")
    text = render_text(report)
    assert "【投诉举报】（0 件，另有已撤回的投诉 1 件）" in text and "另有已撤回 1 件（企业填错或重复登记），不计入" in text
    # a resend of it, or a conclusion, is kept and counts nowhere
    again = parse_event({**complaint.model_dump(mode="json", exclude_unset=True), "event_id": str(uuid.uuid4())})
    state, effects = replay([again, resolved("TS-9", "2026-03-30T10:00:00+08:00")], rules, state)
    f = state.files[E]
    assert (f.counts.complaints, len(f.complaints), len(f.complaints_withdrawn[0].resolutions)) == (0, 0, 1)
    assert {e.kind for e in effects} >= {"complaint.repeated", "complaint.resolved_withdrawn"}


def test_a_duplicate_withdrawn_takes_the_chart_signal_it_carried_and_closes_its_alert(rules):
    """One complaint through 12315 and by letter: the month's 4th complaint was the repeat, and the chart signalled."""
    from tests.test_alerts import County, policy

    text = "3月18日购买的桶装水中有黑色絮状物，要求退货并赔偿。"
    month = [received("TS-A", "2026-03-20T10:00:00+08:00", text=text, channel="12315"),
             received("K2", "2026-03-02T10:00:00+08:00", text="水有异味。", category="taste_odour"),
             received("K3", "2026-03-10T10:00:00+08:00", text="水发黄。", category="spoilage"),
             received("LX-7", "2026-03-21T15:30:00+08:00", text=text, channel="letter")]
    county = County(rules, policy())
    county.feed(REG, *month)
    [alert] = [a for a in county.book.alerts.values() if a.rule == "fluctuation.signal"]
    assert alert.state == "open" and "LX-7" in alert.refs
    f = county.state.files[E]
    assert [e for e in f.risk.current.contributions if e.factor == "dynamic.fluctuation_signal" and e.points]
    changes = county.feed(withdrawn("LX-7", reason="与投诉编号 TS-A 为同一投诉，经不同渠道重复登记", duplicate_of="TS-A"))
    assert alert.state == "closed"
    [closing] = [c for c in changes if c.alert.alert_id == alert.alert_id and c.step.action == "close"]
    assert "投诉编号 LX-7 已撤回，2026年3月投诉剩 3 件，未超出控制上限 3 件，信号撤销" in closing.step.note
    f = county.state.files[E]
    assert not [e for e in f.risk.current.contributions if e.factor == "dynamic.fluctuation_signal" and e.points]
    assert f.fluctuation.complaints["2026-03"].n == 3
    assert f.complaints_withdrawn[0].withdrawn.duplicate_of == "TS-A"
    # a real 4th complaint that month signals again
    county.feed(received("K4", "2026-03-25T10:00:00+08:00", text="水里有沉淀。"))
    reopened = [a for a in county.book.alerts.values() if a.rule == "fluctuation.signal" and a.state == "open"]
    assert len(reopened) == 1 and "K4" in reopened[0].refs


def test_withdrawing_a_complaint_closes_the_alerts_resting_on_it(rules):
    from tests.test_alerts import County, policy

    county = County(rules, policy())
    ill = received("I1", "2026-03-01T10:00:00+08:00", verified=True, category="illness", text="孩子喝了以后上吐下泻，去医院挂水了。")
    county.feed(REG, ill, received("C2", "2026-03-05T10:00:00+08:00", verified=True), received("C3", "2026-03-09T10:00:00+08:00", verified=True))
    by_rule = {a.rule: a for a in county.book.alerts.values()}
    assert by_rule["complaint.illness"].state == "open" and by_rule["complaint.cluster"].state == "open"
    county.feed(withdrawn("I1"))
    assert by_rule["complaint.illness"].state == "closed" and by_rule["complaint.cluster"].state == "closed"
    assert "投诉编号 I1 已由县市场监督管理局撤回" in by_rule["complaint.cluster"].steps[-1].note
    assert _verified_points(county.state.files[E]) == 6


def test_a_withdrawal_before_its_complaint_gives_the_same_credit_file(rules):
    complaint = received("TS-9", "2026-03-20T10:00:00+08:00", verified=True)
    back = withdrawn("TS-9", at="2026-03-28T10:00:00+08:00")
    in_order, _ = replay([REG, complaint, back], rules)
    crossed, effects = replay([REG, back, complaint], rules)
    assert "complaint.withdrawal_pending" in [e.kind for e in effects if e.event_id == str(back.event_id)]
    a, b = in_order.files[E], crossed.files[E]
    assert b.withdrawals_waiting == {} and (b.counts.complaints, b.counts.complaints_verified) == (a.counts.complaints, 0) == (0, 0)
    keep = lambda c: (c.complaint_id, c.withdrawn.event_id, c.withdrawn.reason)  # noqa: E731
    assert [keep(c) for c in b.complaints_withdrawn] == [keep(c) for c in a.complaints_withdrawn]
    assert _verified_points(b) == 0 and not decisions(effects, "complaint.illness")
    # withdrawn again: nothing happens, nothing said
    state, effects = replay([withdrawn("TS-9")], rules, in_order)
    assert effects == [] or not [e for e in effects if e.kind.startswith("complaint.")]


def test_the_door_tells_of_a_withdrawal_pending_and_of_a_withdrawn_number(rules):
    from ingest.lint import accepted_warnings

    back = withdrawn("TS-X")
    state, _ = replay([REG, back], rules)
    [w] = accepted_warnings(back, rules.catalogue, state.files[E])
    assert w["type"] == "withdrawal_pending" and "撤回已登记" in w["reason_zh"]
    complaint = received("TS-X", "2026-03-29T10:00:00+08:00")
    state, _ = replay([complaint], rules, state)
    [w] = accepted_warnings(complaint, rules.catalogue, state.files[E])
    assert w["type"] == "complaint_withdrawn" and "本次报送未计入" in w["reason_zh"] and "2026-03-28 10:00" in w["reason_zh"]


def test_only_the_bureau_and_admin_keys_may_withdraw_a_complaint(tmp_path):
    from qrisk.auth import event_refusal, posting_rules
    from qrisk.topics import Topics

    store = KeyStore(tmp_path / "keys.json")
    channel, _ = store.create("complaint", "hotline-1")
    bureau, _ = store.create("bureau", "bureau-1")
    admin, _ = store.create("admin", "admin-1")
    event = parse_event(golden("complaint.withdrawn"))
    refused = event_refusal(channel, event)
    assert refused["field"] == "event_type" and "只能由监管部门" in refused["reason_zh"] and "投诉渠道不能撤回" in refused["reason_zh"]
    assert event_refusal(bureau, event) is None and event_refusal(admin, event) is None
    assert "complaint.withdrawn" not in posting_rules()["complaint"][0] and "complaint.received" in posting_rules()["complaint"][0]
    admissions = Topics("q").admissions()
    assert admissions["q.ingress.complaint"].refusal(event)["field"] == "event_type"
    assert admissions["q.ingress.bureau"].refusal(event) is None


def test_the_register_lists_a_withdrawn_complaint_as_such(rules):
    import datetime as dt

    from qrisk.registers import complaint_rows

    state, _ = replay([REG, received("TS-9", "2026-03-20T10:00:00+08:00"), withdrawn("TS-9")], rules)
    [row] = complaint_rows([state.files[E].view()], dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc))
    assert (row["state"], row["days"]) == ("withdrawn", 8) and row["state_zh"] == f"已撤回（{REASON}）"


def test_over_http_the_bureau_withdraws_a_complaint_and_the_register_says_so(tmp_path):
    import httpx

    from tests.conftest import Server

    server = Server(tmp_path / "data").start()
    try:
        _, bureau_key = KeyStore(server.data_dir / "keys.json").create("bureau", "bureau-1")
        _, channel_key = KeyStore(server.data_dir / "keys.json").create("complaint", "hotline-1")
        complaint = golden("complaint.received")
        complaint["payload"]["complaint_id"] = "TS-HTTP-1"
        assert server.post("/v1/events", json=[golden("enterprise.registered"), complaint]).status_code == 200
        back = golden("complaint.withdrawn")
        back["payload"]["complaint_id"] = "TS-HTTP-1"

        def post(token):
            return httpx.post(server.url + "/v1/events", json=back, headers={"authorization": f"Bearer {token}"}, timeout=30)

        refused = post(channel_key)
        assert refused.status_code == 403 and "投诉渠道不能撤回" in refused.text
        assert post(bureau_key).status_code == 200
        rows = server.get("/v1/complaints?state=withdrawn").json()
        assert [(r["complaint_id"], r["state_zh"]) for r in rows] == [("TS-HTTP-1", f"已撤回（{back['payload']['reason']}）")]
        assert server.get("/v1/enterprises/E-330110-001").json()["counts"]["complaints"] == 0
    finally:
        server.stop()


def test_a_complaint_said_overdue_then_withdrawn_is_judged_nowhere(rules):
    """A misfiled complaint the clock had said 超期未办结 before the bureau withdrew it still read overdue in the register
    (``?overdue=true`` found it) and the credit report, while the complaints table and every count leave it out."""
    import datetime as dt

    from qrisk.registers import complaint_rows
    from tests.test_complaint_deadlines import tick

    state, effects = replay([REG, received("TS-9", "2026-03-20T10:00:00+08:00"), tick("2026-05-20T09:00:00+08:00")], rules)
    assert [e for e in effects if e.kind == "complaint.overdue"], "the clock said it overdue"
    state, _ = replay([withdrawn("TS-9", at="2026-05-21T10:00:00+08:00")], rules, state)
    (record,) = state.files[E].complaints_withdrawn
    assert record.overdue and record.overdue_judged is None
    [row] = complaint_rows([state.files[E].view()], dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc))
    assert row["state"] == "withdrawn" and row["overdue"] is None
