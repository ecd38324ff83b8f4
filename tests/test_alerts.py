"""The alert lifecycle as a fold: grouping, escalation by event time, routing, silences, supervisors'
steps, and replay.  Pure: events in, alerts and notifications out (delivery: test_alert_delivery)."""
from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from alerts.lifecycle import AlertActionError, AlertBook, Enterprise
from processors.credit_file import CountyState
from processors.step import Rules, step
from schemas.policy import Policy
from tests.test_risk import E, ev, pa_sample, registered

TOWN = "良渚街道"  # the golden enterprise's town
RECEIVERS = [
    {"name": "liangzhu", "kind": "email", "supervisor": "良渚所 李所长", "to": ["li@example.gov.cn"]},
    {"name": "desk", "kind": "webhook", "supervisor": "县局值班室", "url": "http://127.0.0.1:9/hook"},
    {"name": "chief", "kind": "wecom", "supervisor": "分管局长", "url": "http://127.0.0.1:9/wecom"},
    {"name": "pastry-team", "kind": "dingtalk", "url": "http://127.0.0.1:9/ding"},
]


def policy(**alerts) -> Policy:
    doc = {"receivers": RECEIVERS, "routes": [
        {"receivers": ["liangzhu"], "towns": [TOWN]},
        {"receivers": ["desk"], "min_severity": "high"},
        {"receivers": ["pastry-team"], "categories": ["pastry"]},
    ], "escalate_to": ["chief"], **alerts}
    return Policy.model_validate({"alerts": doc})


class County:
    """step() and the alert fold, as the embedded pipeline runs them."""

    def __init__(self, rules: Rules, pol: Policy):
        self.rules = Rules(catalogue=rules.catalogue, policy=pol)
        self.state = CountyState()
        self.book = AlertBook()
        self.changes: list = []

    def info(self, enterprise_id: str) -> Enterprise | None:
        f = self.state.files.get(enterprise_id)
        return Enterprise(f.profile.name, f.profile.town, f.profile.category) if f and f.profile else None

    def feed(self, *events):
        out = []
        for e in events:
            self.state, effects = step(self.state, e, self.rules)
            out += self.book.apply(e, effects, self.rules.policy, self.info)
        self.changes += out
        return out


def act(alert_id: str, action: str, at: str, actor: str = "li", **extra):
    return ev("alert.action", at, E, alert_id=alert_id, action=action, actor=actor, note=extra.pop("note", ""), **extra)


def failing(at: str):
    return pa_sample(at, values=(0, 3, 0, 0, 0))


@pytest.fixture
def county(rules):
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    return c


def unqualified(changes):
    return [c for c in changes if c.step.action == "opened" and c.alert.rule == "sampling.unqualified"]


def test_an_unqualified_sample_opens_an_alert_routed_by_town_and_severity(county):
    changes = county.feed(failing("2026-02-10T10:00:00+08:00"))
    opened = unqualified(changes)
    assert len(opened) == 1
    alert = opened[0].alert
    assert (alert.rule, alert.severity, alert.state, alert.town) == ("sampling.unqualified", "critical", "open", TOWN)
    # the town's supervisor and (high or worse) the duty desk; not the pastry team; escalation only later
    assert [n.receiver for n in opened[0].notifications] == ["liangzhu", "desk"]
    note = opened[0].notifications[0]
    assert note.channel == "email" and note.reason == "opened"
    assert note.subject_zh == f"【紧急·抽检不合格】{alert.enterprise_name}"
    assert "铜绿假单胞菌" in note.text_zh and alert.alert_id in note.text_zh and "请于 2026-02-11 10:00 前确认处置" in note.text_zh
    # evidence a person can use (the sample, its date, the values against the standard), not event UUIDs or an HTTP path
    lines = note.text_zh.splitlines()
    assert re.fullmatch(r"证据：抽样编号 S-\d+（抽样日期 2026-02-10，批号 20260210，生产日期 2026-02-10）；铜绿假单胞菌 检测值 0、3、0、0、0 CFU/250mL，标准要求 n=5,c=0,m=0", lines[-2]), lines[-2]
    assert lines[-1] == f"预警编号：{alert.alert_id}（请在系统中确认、安排整改或关闭）"
    assert not any(eid in note.text_zh for eid in alert.event_ids) and "POST" not in note.text_zh
    assert alert.event_ids == [alert.steps[0].event_id] and alert.evidence
    assert note.alert["alert_id"] == alert.alert_id and note.alert["state_zh"] == "待处置"
    # the same failure also worsened the grade: a separate problem (medium), told to the town only
    worsened = [c for c in changes if c.alert.rule == "risk.grade_worsened"]
    assert len(worsened) == 1 and [n.receiver for n in worsened[0].notifications] == ["liangzhu"]


def test_a_repeat_of_the_same_problem_joins_the_alert_and_notifies_at_most_every_repeat_hours(rules):
    from tests.test_fluctuation import drifting_log

    c = County(rules, policy(repeat_hours=24 * 20))
    c.feed(*drifting_log(rising=(1.0, 1.3, 1.6, 1.7, 1.75)))
    series = [a for a in c.book.alerts.values() if a.rule == "fluctuation.signal" and "oxygen_consumption" in a.dedup_key]
    assert len(series) == 1, "one alert for one drifting series"
    alert = series[0]
    steps = [(s.action, s.at.date().isoformat()) for s in alert.steps if s.action in ("opened", "repeated", "severity_raised")]
    assert alert.occurrences == len(steps) >= 3 and len(alert.event_ids) == alert.occurrences
    told = [ch for ch in c.changes if ch.alert.alert_id == alert.alert_id and ch.notifications]
    told_at = [ch.step.at for ch in told if ch.step.action != "severity_raised"]
    # samples come every 14 days: with 20 repeat hours' days, at most every other repeat is told
    assert all((b - a).days >= 20 for a, b in zip(told_at, told_at[1:]))
    assert len(told) < alert.occurrences


def test_an_unacknowledged_alert_escalates_by_event_time_and_a_replay_escalates_the_same(county, rules):
    alert = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    assert county.feed(ev("clock.tick", "2026-02-11T09:59:00+08:00", enterprise_id="*")) == [] or not alert.escalated
    assert not alert.escalated, "24 h for a critical alert have not passed"
    changes = county.feed(ev("clock.tick", "2026-02-11T10:01:00+08:00", enterprise_id="*"))
    escalated = [c for c in changes if c.step.action == "escalated" and c.alert.alert_id == alert.alert_id]
    assert len(escalated) == 1 and alert.escalated
    assert [n.receiver for n in escalated[0].notifications] == ["chief", "liangzhu", "desk"]
    assert all(n.reason == "escalated" for n in escalated[0].notifications)
    assert "仍未确认" in escalated[0].step.note
    assert county.feed(ev("clock.tick", "2026-02-12T10:00:00+08:00", enterprise_id="*")) == [], "escalated once"


def test_an_escalation_nobody_can_receive_says_so(rules):
    c = County(rules, Policy())  # no receivers, no routes, no escalate_to: the bureau has configured none yet
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    alert = unqualified(c.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    [step] = [ch.step for ch in c.feed(ev("clock.tick", "2026-02-12T10:00:00+08:00", enterprise_id="*"))
              if ch.step.action == "escalated" and ch.alert.alert_id == alert.alert_id]
    # one sentence, said once; the policy key only as the operator's hint (it said 此前未曾通知任何人（无路由接收人）
    # （未配置升级接收人 alerts.escalate_to，亦无路由接收人：无人收到通知）)
    assert step.note == ("生成后 2 天仍未确认（应于 2026-02-11 10:00 前确认），升级通报；此前未通知任何人：未配置升级接收人，"
                         "也无路由接收人，无人收到通知（请在策略文件 alerts.escalate_to 中配置）")
    assert step.note.count("路由接收人") == 1 and step.note.count("alerts.escalate_to") == 1


def test_an_escalation_of_history_says_it_once(rules):
    book, pol = AlertBook(), policy()
    late = "2026-06-01T09:00:00+08:00"
    book.apply(_tick("2026-03-01T10:00:00+08:00", received=late), [_Eff("k-hist", "critical", "2026-03-01T02:00:00+00:00")], pol, _info)
    (escalated,) = book.apply(_tick("2026-03-05T10:00:00+08:00", received=late), [], pol, _info)
    assert escalated.step.note.count("属历史数据") == 1 and escalated.step.note.endswith("属历史数据，未通知 chief、liangzhu、desk）")


def test_acknowledged_in_time_does_not_escalate(county):
    alert = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    county.feed(act(alert.alert_id, "acknowledge", "2026-02-10T15:00:00+08:00"))
    county.feed(ev("clock.tick", "2026-03-01T00:00:00+08:00", enterprise_id="*"))
    assert not alert.escalated and alert.state == "acknowledged" and alert.assignee == "li"


def test_the_whole_lifecycle_and_a_new_alert_after_closing(county):
    alert = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    for action, at in (("acknowledge", "11"), ("start_rectification", "12"), ("verify", "20"), ("close", "21")):
        county.feed(act(alert.alert_id, action, f"2026-02-{at}T09:00:00+08:00", note=f"{action} done"))
    assert alert.state == "closed" and alert.closed_at is not None
    assert [(s.action, s.from_state, s.to_state) for s in alert.steps] == [
        ("opened", "open", "open"), ("acknowledge", "open", "acknowledged"), ("start_rectification", "acknowledged", "rectifying"),
        ("verify", "rectifying", "verified"), ("close", "verified", "closed")]
    assert [s.version for s in alert.steps] == [1, 2, 3, 4, 5] and alert.version == 5


def test_after_an_alert_is_closed_the_same_problem_opens_a_new_one(rules):
    from tests.test_fluctuation import drifting_log

    c = County(rules, policy())
    log = drifting_log(rising=(1.0, 1.3, 1.6, 1.7))
    c.feed(*log[:-2])
    first = next(a for a in c.book.alerts.values() if a.rule == "fluctuation.signal")
    c.feed(ev("alert.action", "2025-05-20T09:00:00+08:00", first.enterprise_id, alert_id=first.alert_id, action="close", actor="li", note="原因已查明"))
    c.feed(*log[-2:])
    same_key = [a for a in c.book.alerts.values() if a.dedup_key == first.dedup_key]
    assert len(same_key) == 2 and same_key[1].state == "open" and same_key[1].alert_id != first.alert_id
    with pytest.raises(AlertActionError, match="已有新的预警"):
        c.feed(ev("alert.action", "2025-07-01T09:00:00+08:00", first.enterprise_id, alert_id=first.alert_id, action="reopen", actor="li", note=""))


@pytest.mark.parametrize("action, state, message", [
    ("verify", "open", "当前状态为“待处置”，不能执行“整改复查通过”（该操作仅适用于整改中状态的预警）"),
    ("acknowledge", "closed", "当前状态为“已关闭”，不能执行“确认”（该操作仅适用于待处置状态的预警）"),
])
def test_a_step_the_alert_cannot_take_is_refused_in_chinese_and_changes_nothing(county, action, state, message):
    alert = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    if state == "closed":
        county.feed(act(alert.alert_id, "close", "2026-02-10T11:00:00+08:00"))
    version = alert.version
    with pytest.raises(AlertActionError, match=message):
        county.feed(act(alert.alert_id, action, "2026-02-10T12:00:00+08:00"))
    assert alert.state == state and alert.version == version


def test_an_unknown_alert_or_another_enterprise_is_refused(county):
    with pytest.raises(AlertActionError, match="没有编号为 AL-0000000000000000 的预警"):
        county.feed(act("AL-0000000000000000", "acknowledge", "2026-02-10T12:00:00+08:00"))
    alert = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    other = ev("alert.action", "2026-02-10T12:00:00+08:00", "E-OTHER", alert_id=alert.alert_id, action="close", actor="x", note="")
    with pytest.raises(AlertActionError, match="不属于 E-OTHER"):
        county.feed(other)


def test_a_silence_keeps_the_alert_and_tells_nobody(rules):
    pol = policy(silences=[{"reason": "停产整顿期间", "enterprise_id": E, "ends": "2026-03-01T00:00:00Z"}])
    c = County(rules, pol)
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    quiet = c.feed(failing("2026-02-10T10:00:00+08:00"), ev("clock.tick", "2026-02-20T00:00:00+08:00", enterprise_id="*"))
    assert quiet and all(ch.notifications == [] for ch in quiet)
    assert all(a.silenced == "停产整顿期间" for a in c.book.alerts.values())
    loud = c.feed(pa_sample("2026-03-10T10:00:00+08:00", values=(0, 0, 0, 0, 9), sample_no="S-after"))
    assert any(ch.notifications for ch in loud), "after the silence ends, a new alert notifies"


def test_policy_refuses_unknown_receivers_and_silences_that_match_everything():
    with pytest.raises(ValueError, match="unknown receivers: nobody"):
        Policy.model_validate({"alerts": {"routes": [{"receivers": ["nobody"]}]}})
    with pytest.raises(ValueError, match="must name an enterprise_id, a rule or a town"):
        Policy.model_validate({"alerts": {"silences": [{"reason": "x", "ends": "2026-01-01T00:00:00Z"}]}})
    with pytest.raises(ValueError, match="needs addresses"):
        Policy.model_validate({"alerts": {"receivers": [{"name": "a", "kind": "email", "to": []}]}})
    with pytest.raises(ValueError, match="http"):
        Policy.model_validate({"alerts": {"receivers": [{"name": "a", "kind": "wecom", "url": "ftp://x"}]}})


def test_the_demo_county_folds_to_the_same_alerts_and_notifications_twice(rules):
    from qrisk.demo import CountyGenerator

    events = CountyGenerator(seed=7).generate()
    runs = []
    for _ in range(2):
        c = County(rules, policy())
        c.feed(*events)
        runs.append((c.book.model_dump(mode="json"), [[n.to_json() for n in ch.notifications] for ch in c.changes]))
    assert runs[0] == runs[1]
    book = runs[0][0]
    assert len(book["alerts"]) >= 20
    ids = [a["alert_id"] for a in book["alerts"].values()]
    assert len(set(ids)) == len(ids)
    delivery_ids = [n for notes in runs[0][1] for n in notes]
    assert len(set(delivery_ids)) == len(delivery_ids)
    # the demo's rectification orders cite their failing samples: those alerts went through rectification
    assert any(a["rule"] == "sampling.unqualified" and a["state"] == "verified" and a["rectifications"] for a in book["alerts"].values())


def test_a_book_restored_from_json_folds_on_like_the_original(rules):
    from qrisk.demo import CountyGenerator

    events = CountyGenerator(seed=11).generate()
    half = len(events) // 2
    whole = County(rules, policy())
    whole.feed(*events)
    part = County(rules, policy())
    part.feed(*events[:half])
    part.book = AlertBook.model_validate_json(part.book.model_dump_json())
    part.feed(*events[half:])
    assert part.book.model_dump(mode="json") == whole.book.model_dump(mode="json")


def test_the_alerts_by_enterprise_index_stays_what_active_by_key_says_through_every_step(rules):
    """Rectification events find their enterprise's alerts through ``active_by_enterprise``; kept in
    step by hand, so it is checked against a rebuild after every event of a demo county in which
    supervisors also close and reopen alerts."""
    from qrisk.demo import CountyGenerator

    def rebuilt(book: AlertBook) -> dict[str, set[str]]:
        index: dict[str, set[str]] = {}
        for alert_id in book.active_by_key.values():
            index.setdefault(book.alerts[alert_id].enterprise_id, set()).add(alert_id)
        return index

    c = County(rules, policy())
    steps = 0
    for i, e in enumerate(CountyGenerator(seed=5).generate()):
        c.feed(e)
        if i % 7 == 0 and c.book.active_by_key:
            alert = c.book.alerts[sorted(c.book.active_by_key.values())[0]]
            at = max(alert.updated_at, e.occurred_at).isoformat()
            c.feed(ev("alert.action", at, alert.enterprise_id, alert_id=alert.alert_id, action="close", actor="li", note="已处置"))
            if i % 14 == 0:
                c.feed(ev("alert.action", at, alert.enterprise_id, alert_id=alert.alert_id, action="reopen", actor="li", note="复发"))
            steps += 1
        assert {k: set(v) for k, v in c.book.active_by_enterprise.items()} == rebuilt(c.book)
    assert steps > 20 and c.book.active_by_enterprise
    # not written out, and rebuilt when the book is read back
    assert "active_by_enterprise" not in c.book.model_dump()
    assert AlertBook.model_validate_json(c.book.model_dump_json()).active_by_enterprise == c.book.active_by_enterprise


def test_alert_action_is_a_documented_event_type_that_the_credit_file_ignores(rules, county):
    county.feed(failing("2026-02-10T10:00:00+08:00"))
    file_before = county.state.files[E].view()
    alert = next(a for a in county.book.alerts.values() if a.rule == "sampling.unqualified")
    county.feed(act(alert.alert_id, "comment", "2026-02-10T12:00:00+08:00", note="已电话联系企业"))
    assert county.state.files[E].view() == file_before
    assert alert.steps[-1].note == "已电话联系企业" and alert.state == "open"
    with pytest.raises(ValidationError, match="alert_id"):
        ev("alert.action", "2026-02-10T12:00:00+08:00", E, alert_id="AL-123", action="acknowledge", actor="li")


# --------------------------------------------------------------------------- edge cases a review found


class _Eff:
    """A warning.raised effect as step() makes it."""

    kind = "warning.raised"

    def __init__(self, key: str, severity: str, at: str, rule: str = "fluctuation.signal"):
        import datetime as dt

        self.occurred_at = dt.datetime.fromisoformat(at)
        self.event_id = f"ev-{key}-{at}"
        self.data = {"dedup_key": key, "enterprise_id": E, "rule": rule, "severity": severity, "title_zh": "质量波动",
                     "rasff_class": "alert" if severity in ("critical", "high") else "information_follow_up",
                     "respond_within_hours": {"critical": 24, "high": 48, "medium": 168}.get(severity),
                     "message_zh": f"{severity} 信号", "message_en": "signal", "evidence": {"event_ids": [self.event_id]}}


def _tick(at: str, received: str | None = None):
    import datetime as dt

    e = ev("clock.tick", at, enterprise_id="*")
    return e.model_copy(update={"received_at": dt.datetime.fromisoformat(received)}) if received else e


def _info(_eid):
    return Enterprise("清源桶装水厂", TOWN, "packaged_water")


def test_a_raised_severity_reaches_the_routes_of_the_higher_severity(rules):
    book, pol = AlertBook(), policy()
    (opened,) = book.apply(_tick("2026-03-01T10:00:00+08:00"), [_Eff("k1", "medium", "2026-03-01T10:00:00+08:00")], pol, _info)
    assert [n.receiver for n in opened.notifications] == ["liangzhu"]
    (raised,) = book.apply(_tick("2026-03-02T10:00:00+08:00"), [_Eff("k1", "high", "2026-03-02T10:00:00+08:00")], pol, _info)
    assert raised.step.action == "severity_raised" and raised.alert.receivers == ["liangzhu", "desk"]
    assert [(n.receiver, n.reason) for n in raised.notifications] == [("liangzhu", "severity_raised"), ("desk", "severity_raised")]


def test_a_silence_that_ended_lets_a_lasting_alert_speak(rules):
    pol = policy(silences=[{"reason": "停产整顿", "town": TOWN, "ends": "2026-03-01T03:00:00+08:00"}])
    book = AlertBook()
    (quiet,) = book.apply(_tick("2026-03-01T02:00:00+08:00"), [_Eff("k2", "high", "2026-03-01T02:00:00+08:00")], pol, _info)
    assert quiet.notifications == [] and quiet.alert.silenced == "停产整顿"
    escalated = book.apply(_tick("2026-03-04T00:00:00+08:00"), [], pol, _info)
    assert [c.step.action for c in escalated] == ["escalated"] and escalated[0].notifications and escalated[0].alert.silenced is None


_SILENCE = [{"reason": "停产整顿", "enterprise_id": E, "ends": "2026-03-01T00:00:00Z"}]


def _silenced_failure(rules, *events):
    """A critical failure opened on 02-10 inside a 停产整顿 silence that ends on 03-01 (08:00 local): its response deadline,
    02-11 10:00, passes while the silence keeps it quiet.  ``events``: the log to feed (a replay feeds the same)."""
    c = County(rules, policy(silences=_SILENCE))
    events = events or (registered("2026-01-05T09:00:00+08:00"), failing("2026-02-10T10:00:00+08:00"))
    c.feed(*events)
    [alert] = [a for a in c.book.alerts.values() if a.rule == "sampling.unqualified"]
    return c, alert, events


def test_a_deadline_that_passes_in_a_silence_escalates_when_the_silence_ends(rules):
    c, alert, log = _silenced_failure(rules)
    inside, after = ev("clock.tick", "2026-02-20T00:00:00+08:00", enterprise_id="*"), ev("clock.tick", "2026-03-02T00:00:00+08:00", enterprise_id="*")
    quiet = c.feed(inside)
    assert all(ch.notifications == [] for ch in quiet) and alert.silenced == "停产整顿"
    # the escalation is still to come: not spent on telling nobody
    assert not alert.escalated and "escalated" not in [s.action for s in alert.steps]
    loud = c.feed(after)
    [up] = [ch for ch in loud if ch.alert is alert]
    assert up.step.action == "escalated" and alert.escalated and alert.silenced is None
    assert up.step.note == "静默（停产整顿）期间已超过确认期限（应于 2026-02-11 10:00 前确认），静默结束后升级通报"
    assert [n.receiver for n in up.notifications] == ["chief", "liangzhu", "desk"]  # escalation and the town's receivers
    assert [s.action for s in alert.steps] == ["opened", "escalated"]
    assert c.feed(ev("clock.tick", "2026-04-30T00:00:00+08:00", enterprise_id="*")) == [], "escalated once"
    # a replay escalates the same, with the same delivery ids
    again, _, _ = _silenced_failure(rules, *log)
    again.feed(inside)
    replayed = again.feed(after)
    assert [n.delivery_id for ch in replayed for n in ch.notifications] == [n.delivery_id for ch in loud for n in ch.notifications]


def test_a_book_restored_during_a_silence_still_escalates_when_it_ends(rules):
    c, alert, _ = _silenced_failure(rules)
    c.feed(ev("clock.tick", "2026-02-20T00:00:00+08:00", enterprise_id="*"))
    assert alert.alert_id in c.book.held  # (a field of the book: a snapshot keeps it)
    c.book = AlertBook.model_validate_json(c.book.model_dump_json())
    loud = c.feed(ev("clock.tick", "2026-03-02T00:00:00+08:00", enterprise_id="*"))
    assert [(ch.step.action, len(ch.notifications)) for ch in loud if ch.alert.alert_id == alert.alert_id] == [("escalated", 3)]


def test_an_acknowledgement_left_unhandled_through_a_silence_escalates_when_it_ends(rules):
    c, alert, _ = _silenced_failure(rules)
    c.feed(act(alert.alert_id, "acknowledge", "2026-02-11T09:00:00+08:00", actor="张三"))
    quiet = c.feed(ev("clock.tick", "2026-02-20T00:00:00+08:00", enterprise_id="*"))  # 72 h to handle it went by on 02-14
    assert all(ch.notifications == [] for ch in quiet) and not alert.handling_escalated
    [up] = [ch for ch in c.feed(ev("clock.tick", "2026-03-02T00:00:00+08:00", enterprise_id="*")) if ch.alert is alert]
    assert up.step.action == "handling_overdue" and alert.handling_escalated and up.notifications
    assert up.step.note.startswith("静默（停产整顿）期间已超过处置期限（张三 于 2026-02-11 09:00 确认，应于 2026-02-14 09:00 前责令整改或关闭）")


def test_a_silence_ended_leaves_the_alert_no_longer_marked_silenced(rules):
    pol = policy(silences=[{"reason": "停产整顿", "town": TOWN, "ends": "2026-03-01T03:00:00+08:00"}])
    book = AlertBook()
    (quiet,) = book.apply(_tick("2026-03-01T02:00:00+08:00"), [_Eff("k-low", "low", "2026-03-01T02:00:00+08:00")], pol, _info)
    assert quiet.alert.silenced == "停产整顿"
    assert book.apply(_tick("2026-03-01T04:00:00+08:00"), [], pol, _info) == []  # (a low alert has no deadline to escalate)
    assert book.held == {}  # (no escalation held: nothing kept for it)
    # the flag is cleared the next time the fold looks at the alert (here: a supervisor's note on it)
    [noted] = book.apply(act(quiet.alert.alert_id, "comment", "2026-03-01T05:00:00+08:00", note="已复产"), [], pol, _info)
    assert noted.alert is quiet.alert and quiet.alert.silenced is None


def test_one_event_stamped_in_the_future_does_not_make_every_alert_overdue(rules):
    book, pol = AlertBook(), policy()
    book.apply(_tick("2026-03-01T10:00:00+08:00"), [_Eff("k3", "critical", "2026-03-01T10:00:00+08:00")], pol, _info)
    assert book.apply(_tick("2062-03-01T10:00:00+08:00", received="2026-03-01T11:00:00+08:00"), [], pol, _info) == []
    assert book.clock.isoformat() == "2026-03-01T11:00:00+08:00"  # when it was received, not 2062


def test_history_loaded_later_moves_alerts_but_notifies_nobody(rules):
    book, pol = AlertBook(), policy()
    late = "2026-06-01T09:00:00+08:00"  # received three months after these happened
    changes = book.apply(_tick("2026-03-01T10:00:00+08:00", received=late), [_Eff("k4", "critical", "2026-03-01T10:00:00+08:00")], pol, _info)
    changes += book.apply(_tick("2026-03-05T10:00:00+08:00", received=late), [], pol, _info)
    assert [c.step.action for c in changes] == ["opened", "escalated"] and all(c.notifications == [] for c in changes)
    assert all("属历史数据，未通知" in c.step.note for c in changes)
    (live,) = book.apply(_tick("2026-06-01T10:00:00+08:00"), [_Eff("k5", "high", "2026-06-01T10:00:00+08:00")], pol, _info)
    assert live.notifications


def test_a_receiver_gone_from_the_policy_is_kept_visible_not_an_error(rules):
    book = AlertBook()
    book.apply(_tick("2026-03-01T10:00:00+08:00"), [_Eff("k6", "high", "2026-03-01T10:00:00+08:00")], policy(), _info)
    smaller = Policy.model_validate({"alerts": {"receivers": [RECEIVERS[0]], "routes": [{"receivers": ["liangzhu"]}]}})
    (escalated,) = book.apply(_tick("2026-03-04T10:00:00+08:00"), [], smaller, _info)
    assert {(n.receiver, n.channel) for n in escalated.notifications} == {("liangzhu", "email"), ("desk", "")}


def test_a_silence_needs_times_with_their_offset():
    with pytest.raises(ValidationError, match="timezone"):
        Policy.model_validate({"alerts": {"silences": [{"reason": "x", "town": TOWN, "ends": "2026-06-30T16:00:00"}]}})


def test_a_reopened_alert_gets_a_new_deadline_and_escalates_again(rules):
    book, pol = AlertBook(), policy()
    (opened,) = book.apply(_tick("2026-03-01T10:00:00+08:00"), [_Eff("k7", "critical", "2026-03-01T10:00:00+08:00")], pol, _info)
    aid = opened.alert.alert_id
    for action, at in (("acknowledge", "2026-03-01T12:00:00+08:00"), ("close", "2026-03-03T12:00:00+08:00")):
        book.apply(act(aid, action, at), [], pol, _info)
    (reopened,) = book.apply(act(aid, "reopen", "2026-03-10T12:00:00+08:00"), [], pol, _info)
    a = reopened.alert
    assert (a.state, a.acknowledged_at, a.escalated, a.respond_by.isoformat()) == ("open", None, False, "2026-03-11T04:00:00+00:00")
    assert {n.reason for n in reopened.notifications} == {"reopened"}
    (late,) = book.apply(_tick("2026-03-11T13:00:00+08:00"), [], pol, _info)
    assert late.step.action == "escalated" and a.escalated


def test_routes_and_silences_name_rules_by_the_id_alerts_carry():
    with pytest.raises(ValueError, match="no early-warning rule 'sampling_unqualified'; the rules are sampling.unqualified"):
        Policy.model_validate({"alerts": {"receivers": RECEIVERS[:1], "routes": [{"receivers": ["liangzhu"], "rules": ["sampling_unqualified"]}]}})
    with pytest.raises(ValueError, match="alerts.silences: no early-warning rule 'fluctuation'"):
        Policy.model_validate({"alerts": {"silences": [{"reason": "x", "rule": "fluctuation", "ends": "2026-01-01T00:00:00Z"}]}})


def test_alerts_closed_long_ago_leave_the_book_and_their_problem_still_gets_a_new_id(rules):
    book, pol = AlertBook(), policy()
    (opened,) = book.apply(_tick("2026-03-01T10:00:00+08:00"), [_Eff("k8", "high", "2026-03-01T10:00:00+08:00")], pol, _info)
    aid = opened.alert.alert_id
    book.apply(act(aid, "close", "2026-03-01T12:00:00+08:00"), [], pol, _info)
    book.apply(_tick("2026-05-29T00:00:00+08:00"), [], pol, _info)
    assert aid in book.alerts, "89 days: still kept"
    book.apply(_tick("2026-06-01T00:00:00+08:00"), [], pol, _info)
    assert aid not in book.alerts and book.serial["k8"] == 1
    (again,) = book.apply(_tick("2026-06-02T10:00:00+08:00"), [_Eff("k8", "high", "2026-06-02T10:00:00+08:00")], pol, _info)
    assert again.alert.alert_id != aid and book.serial["k8"] == 2


# --------------------------------------------------------------------------- rectification (整改) by the inspection system's events


def _order(rid: str, cause: str, at: str, enterprise_id: str = E):
    return ev("rectification.ordered", at, enterprise_id, rectification_id=rid, cause=cause, deadline="2026-03-20")


def test_a_rectification_order_citing_the_failing_sample_puts_its_alert_under_rectification_and_its_verification_verifies_it(county):
    alert = unqualified(county.feed(pa_sample("2026-02-10T10:00:00+08:00", values=(0, 3, 0, 0, 0), sample_no="DC26330110000123")))[0].alert
    worsened = next(a for a in county.book.alerts.values() if a.rule == "risk.grade_worsened")
    # another sample's number with this one as its prefix does not cite it
    assert county.feed(_order("ZG-1", "抽样编号 DC263301100001234 不合格", "2026-02-11T09:00:00+08:00")) == []
    changes = county.feed(_order("ZG-2", "抽样编号DC26330110000123铜绿假单胞菌不合格；检查 JC2026-0317", "2026-02-12T09:00:00+08:00"))
    assert [(c.alert.alert_id, c.step.action, c.step.to_state, c.notifications) for c in changes] == [
        (alert.alert_id, "start_rectification", "rectifying", [])]
    step = changes[0].step
    assert step.actor == "insp-017" and "ZG-2" in step.note and "2026-03-20" in step.note
    assert worsened.state == "open", "the grade's alert is another problem: the order does not cite it"
    county.feed(ev("clock.tick", "2026-03-01T00:00:00+08:00", enterprise_id="*"))
    assert not alert.escalated, "under rectification is a response: no escalation"
    county.feed(ev("rectification.completed", "2026-03-10T09:00:00+08:00", rectification_id="ZG-2", evidence="消毒记录、整改后委托检验报告"))
    county.feed(ev("rectification.verified", "2026-03-12T09:00:00+08:00", rectification_id="ZG-2", accepted=False, note="记录不全"))
    assert alert.state == "rectifying" and [s.action for s in alert.steps][-2:] == ["comment", "comment"]
    assert "复查未通过" in alert.steps[-1].note and "记录不全" in alert.steps[-1].note
    county.feed(ev("rectification.verified", "2026-03-18T09:00:00+08:00", rectification_id="ZG-2", accepted=True, note="复查合格"))
    assert alert.state == "verified" and alert.steps[-1].action == "verify" and "复查通过" in alert.steps[-1].note
    assert alert.dedup_key not in county.book.active_by_key, "a new failure opens a new alert"
    # the credit file's 处置情况 says it once: 整改 ZG-2 经<verifier>复查通过（复查意见：复查合格）, not the
    # step's action and then its note (由 X整改复查通过：整改 ZG-2 复查通过（X）：复查合格)
    from qrisk.credit_report import handling_zh

    said = handling_zh(alert.view(), 8)
    verifier = alert.steps[-1].note.split("经", 1)[1].split("复查通过")[0]
    assert said.endswith(f"2026-03-18 整改 ZG-2 经{verifier}复查通过（复查意见：复查合格））"), said
    assert said.count("经王检查员复查通过") == 1 and "复查未通过" not in said and said.startswith("整改复查通过（AL-")


def test_the_overdue_warning_of_a_rectification_closes_when_that_rectification_is_verified(county):
    county.feed(_order("ZG-9", "检查 JC-1", "2026-02-01T09:00:00+08:00"))
    county.feed(ev("clock.tick", "2026-03-25T00:00:00+08:00", enterprise_id="*"))
    overdue = next(a for a in county.book.alerts.values() if a.rule == "rectification.overdue")
    assert overdue.state == "open" and overdue.rectifications == ["ZG-9"]
    county.feed(ev("rectification.verified", "2026-03-28T09:00:00+08:00", rectification_id="ZG-9", accepted=True))
    assert overdue.state == "closed" and overdue.steps[-1].action == "close" and overdue.closed_at is not None


def test_an_order_names_an_alert_by_its_id_and_touches_no_other_enterprise(county, rules):
    county.feed(registered("2026-01-05T09:00:00+08:00", enterprise_id="E-OTHER"))
    alert = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    assert county.feed(_order("ZG-3", f"预警 {alert.alert_id}", "2026-02-11T09:00:00+08:00", enterprise_id="E-OTHER")) == []
    county.feed(act(alert.alert_id, "start_rectification", "2026-02-11T10:00:00+08:00"))
    changes = county.feed(_order("ZG-4", f"见预警 {alert.alert_id}", "2026-02-12T09:00:00+08:00"))
    assert [(c.step.action, c.step.to_state) for c in changes] == [("comment", "rectifying")], "linked, already rectifying"
    assert alert.rectifications == ["ZG-4"]


def test_the_countys_pass_rate_chart_opens_a_county_alert_not_the_enterprises(rules):
    """A category's pass-rate signal is the county's: named by the category, routed by no town
    (the county's routes, else escalate_to), and the enterprise whose sample tipped it is the evidence."""
    import datetime as dt

    from tests.test_fluctuation import other_producer_failure, water_sample

    c = County(rules, policy())
    # (another producer's failure first: the county's chart speaks when two producers fail, spc.category_min_enterprises)
    c.feed(*other_producer_failure(), registered("2025-01-05T09:00:00+08:00"), water_sample(dt.date(2025, 1, 10), 0.8, pa=(0, 3, 0, 0, 0)),
           water_sample(dt.date(2025, 2, 10), 0.8, pa=(0, 0, 9, 0, 0)))
    charts = {a.evidence.get("scope"): a for a in c.book.alerts.values() if a.rule == "fluctuation.signal"}
    county, own = charts["category"], charts["enterprise"]
    assert (county.enterprise_name, county.town, county.receivers) == ("本县包装饮用水类（县级预警）", None, ["chief"])
    assert county.message_zh.startswith("本县包装饮用水类：2025年第1季度抽检 2 批、不合格 2 批（100%）")
    assert "不合格批次来自 2 家企业（E-330110-001 1 批、E-330110-009 1 批）" in county.message_zh
    assert f"（由 清源桶装水厂（{E}）的抽检触发：抽样编号" in county.message_zh
    # kept under the enterprise whose sample tipped it (its events carry the alert's steps), but the
    # notice reads as the county's: the enterprise is the trigger, not the subject
    assert county.enterprise_id == E and county.evidence["triggered_by"] == {"enterprise_id": E, "name": "清源桶装水厂", "town": TOWN}
    [told] = [ch.notifications[0] for ch in c.changes if ch.alert is county and ch.step.action == "opened"]
    assert told.subject_zh == "【中·质量波动】本县包装饮用水类（县级预警）"
    lines = told.text_zh.splitlines()
    assert lines[1] == "范围：本县包装饮用水类（县级预警）：全县该类产品的抽检情况，不是单个企业的问题"
    assert lines[2] == f"触发：由 清源桶装水厂（{E}，{TOWN}）的抽检触发（该企业的抽检是证据，不是本预警的对象）"
    assert not any(line.startswith("企业：") for line in lines)
    assert (own.enterprise_name, own.town, own.receivers) == ("清源桶装水厂", TOWN, ["liangzhu"])
    assert own.message_zh.startswith("清源桶装水厂：2025年第1季度抽检 2 批、不合格 2 批（100%）")


def test_the_awaited_sample_closes_its_missing_data_alert_telling_who_was_told_and_it_does_not_escalate(county):
    # B: a sample at least every 180 days; none since registration on 2026-01-05
    opened = county.feed(ev("clock.tick", "2026-07-10T00:00:00+08:00", enterprise_id="*"))
    [gap] = [c for c in opened if c.alert.rule == "data.missing"]
    alert = gap.alert
    assert [n.receiver for n in gap.notifications] == ["liangzhu"]
    assert "自 2026-01-05 登记以来未抽检" in alert.message_zh and "截至 2026-07-10" in alert.message_zh
    # the sample comes as the first event past the response deadline (168 h): closing comes before escalating
    changes = county.feed(pa_sample("2026-07-18T10:00:00+08:00", values=(0, 0, 0, 0, 0), sample_no="DC-GAP-1"))
    closing = [c for c in changes if c.alert.alert_id == alert.alert_id]
    assert [(c.step.action, c.step.from_state, c.step.to_state) for c in closing] == [("close", "open", "closed")]
    assert closing[0].step.note == "已有监督抽检（抽样编号 DC-GAP-1，抽样日期 2026-07-18）记录，预警自动关闭"
    # the town's supervisor was told it was overdue: told it closed, and by what record (it was silent)
    assert [(n.receiver, n.reason) for n in closing[0].notifications] == [("liangzhu", "closed_by_system")]
    assert alert.state == "closed" and alert.closed_at is not None and not alert.escalated
    assert alert.dedup_key not in county.book.active_by_key
    assert alert.alert_id not in county.book.active_by_enterprise.get(E, {})
    assert county.feed(ev("clock.tick", "2026-07-25T00:00:00+08:00", enterprise_id="*")) == []
    assert [s.action for s in alert.steps] == ["opened", "close"]


def test_the_systems_own_steps_read_as_the_systems_in_chinese_not_by_its_program_name(county):
    """A credit file said 已关闭（AL-…，2025-11-03 由 qrisk关闭：…）: the system's steps are 系统's."""
    from alerts.lifecycle import done_by_zh

    county.feed(ev("clock.tick", "2026-07-10T00:00:00+08:00", enterprise_id="*"))
    [alert] = [a for a in county.book.alerts.values() if a.rule == "data.missing" and a.evidence.get("what") == "sampling"]
    county.feed(pa_sample("2026-07-18T10:00:00+08:00", values=(0, 0, 0, 0, 0), sample_no="DC-GAP-1"))
    opened, closed = alert.view()["steps"]
    assert closed["actor"] == "qrisk" and closed["actor_zh"] == "系统"  # the code stays as logged; the label is Chinese
    assert done_by_zh(closed) == "系统自动关闭" and done_by_zh(opened) == "由系统生成预警"
    other = unqualified(county.feed(failing("2026-08-10T10:00:00+08:00")))[0].alert
    county.feed(act(other.alert_id, "close", "2026-08-11T09:00:00+08:00", actor="王科长", note="企业已召回"))
    last = other.view()["steps"][-1]
    assert last["actor_zh"] == "王科长" and done_by_zh(last) == "由 王科长关闭"


def test_data_that_comes_after_a_supervisor_closed_the_gap_changes_nothing(county):
    county.feed(ev("clock.tick", "2026-07-10T00:00:00+08:00", enterprise_id="*"))
    alert = next(a for a in county.book.alerts.values() if a.rule == "data.missing")
    county.feed(act(alert.alert_id, "close", "2026-07-11T09:00:00+08:00", note="已电话督促企业送检"))
    changes = county.feed(pa_sample("2026-07-12T10:00:00+08:00", values=(0, 0, 0, 0, 0)))
    assert not [c for c in changes if c.alert.alert_id == alert.alert_id]
    assert [s.action for s in alert.steps] == ["opened", "close"]


def test_a_retest_upholding_the_failure_is_noted_on_its_alert_not_counted_as_a_second_occurrence(county):
    from tests.test_fold import _sample

    original = _sample("2026-02-10T09:00:00+08:00", False, False, sample_no="DC-RT-1")
    opened = unqualified(county.feed(original))
    alert = opened[0].alert
    # (within the 48 h a high alert — bromate is a contaminant — has before it escalates unanswered)
    changes = county.feed(_sample("2026-02-11T09:00:00+08:00", True, False, sample_no="DC-RT-1"))
    mine = [c for c in changes if c.alert.alert_id == alert.alert_id]
    assert [(c.step.action, c.step.actor, c.notifications) for c in mine] == [("comment", "qrisk", [])]
    assert "抽样编号 DC-RT-1" in mine[0].step.note and "复检维持不合格结论" in mine[0].step.note
    assert alert.occurrences == 1 and alert.event_ids == [str(original.event_id)] and alert.state == "open"
    assert alert.title_zh == "抽检不合格" and "复检维持" not in alert.message_zh
    assert len(unqualified(county.changes)) == 1


def listing_retest_labs(county: "County", *labs: str) -> None:
    """The bureau's list of the re-test labs it admits (retest.institutions), by their lab systems' CMA numbers."""
    from schemas.policy import RetestPolicy
    from tests.conftest import lab_source

    listed = [lab_source(lab)["id"] for lab in labs]
    county.rules = Rules(catalogue=county.rules.catalogue, policy=county.rules.policy.model_copy(update={"retest": RetestPolicy(institutions=listed)}))


@pytest.mark.parametrize("how", ["retest", "correction"])
def test_a_failure_that_no_longer_stands_closes_its_alert_saying_why(county, how):
    from tests.test_fold import RETEST_LAB, _sample

    listing_retest_labs(county, RETEST_LAB)
    opened = unqualified(county.feed(_sample("2026-02-10T09:00:00+08:00", False, False, sample_no="DC-OT-1")))
    alert = opened[0].alert
    # an admitted re-test (another lab) finds the sample conforming, or the lab corrects its own report
    later = (_sample("2026-02-15T09:00:00+08:00", True, True, sample_no="DC-OT-1") if how == "retest"
             else _sample("2026-02-11T09:00:00+08:00", False, True, sample_no="DC-OT-1"))
    mine = [c for c in county.feed(later) if c.alert.alert_id == alert.alert_id]
    assert alert.state == "closed" and [c.step.actor for c in mine] == ["qrisk"]
    note = mine[-1].step.note
    assert "抽样编号 DC-OT-1" in note and note.endswith("预警自动关闭；已采取的控制措施是否解除，请依据复检或更正后的检验结论决定")
    assert ("复检" if how == "retest" else "更正") in note
    # closed, it does not escalate; a new failure of another sample opens its own alert
    county.feed(ev("clock.tick", "2026-03-30T00:00:00+08:00", enterprise_id="*"))
    assert alert.state == "closed" and not any(s.action == "escalated" for s in alert.steps)


def test_a_passing_retest_by_a_lab_no_list_admits_leaves_the_alert_for_a_supervisor(county):
    """A security review: without retest.institutions any lab key's 复检 is admitted, and a passing one closed the
    failure's alert unseen.  The counts follow the re-test (a lawful one is final); the alert stays, and the
    overturn says why."""
    from tests.test_fold import RETEST_LAB, _sample

    alert = unqualified(county.feed(_sample("2026-02-10T09:00:00+08:00", False, False, sample_no="DC-OT-2")))[0].alert
    retest = _sample("2026-02-15T09:00:00+08:00", True, True, sample_no="DC-OT-2")
    county.state, effects = step(county.state, retest, county.rules)
    county.book.apply(retest, effects, county.rules.policy, county.info)
    assert alert.state == "open" and county.state.files[E].counts.samples_failed == 0
    (overturn,) = [e for e in effects if e.kind == "sampling.overturned"]
    assert overturn.data["retest_lab_unchecked"] == RETEST_LAB
    assert f"复检机构（{RETEST_LAB}）未经本局复检机构清单核对" in overturn.data["message_zh"]
    assert not [e for e in effects if e.kind == "warning.resolved" and e.data["rule"] == "sampling.unqualified"]


def test_a_retest_upholding_a_failure_whose_alert_was_verified_is_noted_there_not_reopened(county):
    from tests.test_fold import _sample

    alert = unqualified(county.feed(_sample("2026-02-10T09:00:00+08:00", False, False, sample_no="DC-RT-2")))[0].alert
    county.feed(act(alert.alert_id, "start_rectification", "2026-02-11T09:00:00+08:00"),
                act(alert.alert_id, "verify", "2026-02-15T09:00:00+08:00"))
    changes = county.feed(_sample("2026-02-20T09:00:00+08:00", True, False, sample_no="DC-RT-2"))
    assert not unqualified(changes)
    assert alert.state == "verified" and alert.steps[-1].action == "comment" and "复检维持不合格结论" in alert.steps[-1].note


def test_steps_read_in_chinese_and_an_assignment_says_to_whom(county):
    alert = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    county.feed(act(alert.alert_id, "acknowledge", "2026-02-10T11:00:00+08:00"),
                act(alert.alert_id, "assign", "2026-02-10T12:00:00+08:00", assignee="王科员", note="明日到厂核查"),
                act(alert.alert_id, "assign", "2026-02-10T13:00:00+08:00", assignee="张科员"),
                act(alert.alert_id, "start_rectification", "2026-02-11T09:00:00+08:00"))
    steps = alert.view()["steps"]
    assert [(s["action"], s["action_zh"], s["from_state_zh"], s["to_state_zh"]) for s in steps] == [
        ("opened", "生成预警", "待处置", "待处置"), ("acknowledge", "确认", "待处置", "已确认"),
        ("assign", "指派", "已确认", "已确认"), ("assign", "指派", "已确认", "已确认"),
        ("start_rectification", "责令整改", "已确认", "整改中")]
    assert [s["note"] for s in steps[2:4]] == ["指派给 王科员：明日到厂核查", "指派给 张科员"]
    assert "steps" not in alert.view(steps=False)


def test_a_notification_names_the_evidence_of_each_kind_of_alert(rules):
    from alerts.lifecycle import evidence_zh

    c = County(rules, policy())
    c.feed(registered("2025-01-02T09:00:00+08:00"),
           ev("inspection.completed", "2025-03-15T10:00:00+08:00", inspection_id="JC-1", result="不符合",
              findings=[{"code": "3.2", "description": "消毒记录不全", "severity": "major"}]),
           ev("rectification.ordered", "2025-03-16T10:00:00+08:00", rectification_id="ZG-1", cause="检查 JC-9", deadline="2025-04-15"),
           ev("clock.tick", "2025-07-20T00:00:00+08:00", enterprise_id="*"))
    by_rule = {a.rule: evidence_zh(a) for a in c.book.alerts.values()}
    assert by_rule["inspection.nonconforming"] == "现场检查 JC-1，结论“不符合”，问题条款 3.2"
    assert by_rule["rectification.overdue"] == "整改编号 ZG-1，期限 2025-04-15"
    assert by_rule["data.missing"] == "自 2025-01-02 登记以来未抽检，应于 2025-05-02 前完成"


def test_an_illness_complaint_alert_reads_in_chinese_and_names_its_complaint(rules):
    from alerts.lifecycle import evidence_zh
    from alerts.messages import RULE_ZH, effect_title_zh, message_zh
    from schemas.policy import WARNING_RULES
    from tests.test_warnings import illness

    assert set(RULE_ZH) == set(WARNING_RULES)  # every rule has its Chinese name
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00"))
    changes = c.feed(illness("2026-03-20T11:02:00+08:00", "TS1", verified=True))
    [opened] = [x for x in changes if x.step.action == "opened" and x.alert.rule == "complaint.illness"]
    alert = opened.alert
    assert alert.severity == "high" and "TS1" in alert.refs
    assert evidence_zh(alert) == "投诉编号 TS1（2026-03-20 收到）"
    # the duty desk (high or worse) is told too
    assert [n.receiver for n in opened.notifications] == ["liangzhu", "desk"]
    note = opened.notifications[0]
    assert note.subject_zh == f"【高·食用后不适投诉】{alert.enterprise_name}" and "上吐下泻" in note.text_zh
    # the effect as the message helpers render it
    _, effects = step(CountyState(), registered("2026-01-05T09:00:00+08:00"), c.rules)
    state, effects = step(_, illness("2026-03-20T11:02:00+08:00", "TS1", verified=True), c.rules)
    [eff] = [e for e in effects if e.kind == "warning.raised" and e.data["rule"] == "complaint.illness"]
    assert effect_title_zh(eff) == "食用后不适投诉" and RULE_ZH["complaint.illness"] == "食用后不适投诉"
    assert message_zh(eff).startswith("清源桶装水厂：2026-03-20 通过热线渠道收到投诉（编号 TS1）")


def test_the_readme_shows_the_notification_as_it_is_sent(county):
    from tests.conftest import ROOT

    note = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].notifications[0]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = readme.split("A notification, as the town supervisor's mail shows it:\n\n```\n", 1)[1].split("\n```", 1)[0]
    sent = f"主题：{note.subject_zh}\n{note.text_zh}"

    def same(text: str) -> str:  # (the sample number and the alert id differ from run to run of the suite)
        return re.sub(r"AL-[0-9a-f]{16}", "AL-…", re.sub(r"抽样编号 S-\d+", "抽样编号 S-…", text))

    assert same(shown) == same(sent)


def test_an_interview_about_an_alerts_problem_is_its_response(county):
    """约谈 was not linked to the alerts it was about: the alert stayed 待处置 and escalated for want of a
    response the bureau had given.  An interview citing the failing sample, or resting on its event, is in
    the alert's history and acknowledges an alert still open; an unrelated one touches nothing."""
    failed = failing("2026-02-10T10:00:00+08:00")
    alert = unqualified(county.feed(failed))[0].alert
    other = county.feed(ev("inspection.completed", "2026-02-11T10:00:00+08:00", inspection_id="JC-9", result="不符合",
                           findings=[{"code": "3.2", "description": "消毒记录不全", "severity": "major"}]))
    (inspected,) = {c.alert.alert_id: c.alert for c in other if c.step.action == "opened" and c.alert.rule == "inspection.nonconforming"}.values()
    assert alert.state == inspected.state == "open"
    unrelated = ev("interview.held", "2026-02-12T10:00:00+08:00", interview_id="YT-0", held_on="2026-02-12",
                   reason="年度约谈：落实食品安全主体责任", related_event_ids=[], follow_up_by=None)
    # (its time may escalate what is overdue by then: the clock moves on; it answers nothing)
    assert [c.step.action for c in county.feed(unrelated) if c.step.action in ("acknowledge", "comment")] == []
    by_event = ev("interview.held", "2026-02-13T10:00:00+08:00", interview_id="YT-1", held_on="2026-02-13",
                  reason="监督抽检铜绿假单胞菌不合格", related_event_ids=[str(failed.event_id)], follow_up_by="2026-03-13")
    answered = {c.alert.rule: c for c in county.feed(by_event) if c.step.action != "escalated"}
    # the failure's alert, and the grade's rise it caused (the failure is among its evidence): not the inspection's
    assert set(answered) == {"sampling.unqualified", "risk.grade_worsened"}
    change = answered["sampling.unqualified"]
    assert change.alert is alert and alert.state == "acknowledged" and change.step.action == "acknowledge"
    note = change.step.note
    assert note.startswith("2026-02-13 示范县市场监督管理局约谈企业（YT-1，被约谈人 法定代表人 张某）：监督抽检铜绿假单胞菌不合格")
    assert "整改承诺：" in note and note.endswith("；跟踪检查期限 2026-03-13") and change.step.event_id == str(by_event.event_id)
    # cited by what the alert is about (the inspection's number): a comment on an alert already acknowledged
    by_ref = ev("interview.held", "2026-02-14T10:00:00+08:00", interview_id="YT-2", held_on="2026-02-14",
                reason="现场检查 JC-9 发现消毒记录不全，整改不到位", related_event_ids=[], follow_up_by=None)
    county.feed(act(alert.alert_id, "start_rectification", "2026-02-14T09:00:00+08:00"))
    (change,) = [c for c in county.feed(by_ref) if c.step.action != "escalated"]
    assert change.alert is inspected and inspected.state == "acknowledged"
    assert alert.state == "rectifying" and not any(s.event_id == str(by_ref.event_id) for s in alert.steps)
    # an alert answered by the interview no longer waits for a response: its deadline passes without escalation
    escalated = inspected.escalated
    county.feed(ev("clock.tick", "2026-03-01T00:00:00+08:00", enterprise_id="*"))
    assert inspected.escalated == escalated


def test_a_report_sent_days_after_its_date_opens_an_alert_with_its_whole_time_to_respond(county):
    """A lab's failing report dated 10:00 two days ago and sent now opened an alert already past its 24 h
    and escalated it on arrival: 生成后 3 天仍未确认 of an alert nobody could have seen (and 2½ days said as 3)."""
    import datetime as dt

    late = failing("2026-02-10T10:00:00+08:00")
    sent = dt.datetime(2026, 2, 12, 14, 0, tzinfo=dt.timezone.utc)  # 22:00 in the county (the server stamps UTC)
    changes = county.feed(late.model_copy(update={"received_at": sent}))
    alert = unqualified(changes)[0].alert
    assert alert.severity == "critical" and not alert.escalated and "escalated" not in [c.step.action for c in changes]
    assert alert.opened_at == late.occurred_at  # (the problem's own time stays the alert's)
    assert alert.seen_from == sent and alert.respond_by == sent + dt.timedelta(hours=24)
    county.feed(ev("clock.tick", "2026-02-13T21:00:00+08:00", enterprise_id="*"))
    assert not alert.escalated  # 23 hours after it arrived
    (step,) = [c.step for c in county.feed(ev("clock.tick", "2026-02-15T10:00:00+08:00", enterprise_id="*"))
               if c.alert is alert and c.step.action == "escalated"]
    assert step.note.startswith("生成后 2 天 12 小时仍未确认（应于 2026-02-13 22:00 前确认），升级通报")


def test_history_loaded_later_keeps_its_own_times(county):
    """A back-filled event (received past alerts.live_within_hours) tells nobody and is history: its alert's
    response time runs from the event's own date, as before."""
    import datetime as dt

    old = failing("2025-10-10T10:00:00+08:00")
    alert = unqualified(county.feed(old.model_copy(update={"received_at": dt.datetime(2026, 2, 12, tzinfo=dt.timezone.utc)})))[0].alert
    assert alert.seen_from is None and alert.respond_by == old.occurred_at + dt.timedelta(hours=24)


def test_a_grade_rising_again_closes_the_older_rise_naming_the_newer(county):
    """Two failures a week apart took an enterprise B→C, then C→D: two 风险等级上升 alerts stood side by side,
    both 待处置.  The newer carries the risk now: the older closes, naming it, and its assignee follows."""
    first = [c.alert for c in county.feed(failing("2026-02-10T10:00:00+08:00")) if c.alert.rule == "risk.grade_worsened"]
    assert first and first[0].evidence["to"] == "C"
    older = first[0]
    county.feed(act(older.alert_id, "assign", "2026-02-10T12:00:00+08:00", assignee="王建国"))
    changes = county.feed(pa_sample("2026-02-17T10:00:00+08:00", values=(0, 5, 0, 0, 0), sample_no="S-3"))
    (newer,) = {c.alert.alert_id: c.alert for c in changes if c.alert.rule == "risk.grade_worsened" and c.alert is not older}.values()
    assert newer.evidence["to"] == "D" and newer.state == "open" and newer.assignee == "王建国"
    assert older.state == "closed" and older.steps[-1].action == "close" and older.steps[-1].actor == "qrisk"
    assert older.steps[-1].note == f"风险等级已进一步升为 D 级，由预警 {newer.alert_id} 接续处置"
    active = [county.book.alerts[i] for i in county.book.active_by_enterprise[E]]
    assert [a.alert_id for a in active if a.rule == "risk.grade_worsened"] == [newer.alert_id]


def test_a_supervisor_escalates_by_hand_and_the_escalation_receivers_are_told(county):
    """手动升级: a problem beyond the town's means reaches the county's people now, not after the deadline."""
    alert = unqualified(county.feed(failing("2026-02-10T10:00:00+08:00")))[0].alert
    county.feed(act(alert.alert_id, "acknowledge", "2026-02-10T11:00:00+08:00"))
    (change,) = county.feed(act(alert.alert_id, "escalate", "2026-02-10T12:00:00+08:00", note="企业拒不配合，请县局协调"))
    assert change.step.action == "escalate" and change.step.note == "企业拒不配合，请县局协调"
    assert alert.escalated and alert.state == "acknowledged"
    told = {(n.receiver, n.reason) for n in change.notifications}
    assert ("chief", "escalated_by_hand") in told  # (not "escalated": nobody missed a deadline)
    # closed, it cannot be escalated
    county.feed(act(alert.alert_id, "close", "2026-02-11T12:00:00+08:00", note="已处置"))
    with pytest.raises(AlertActionError):
        county.feed(act(alert.alert_id, "escalate", "2026-02-11T13:00:00+08:00", note="再升级"))


# --------------------------------------------------------------------------- a held escalation is asked again at every event


def test_a_silence_taken_out_of_the_policy_releases_the_escalation_it_held_at_the_next_event(rules):
    # a Kafka worker keeps its book across a change of the policy file: the silence lifted on 02-20 (停产整顿 over early)
    c, alert, _ = _silenced_failure(rules)
    c.feed(ev("clock.tick", "2026-02-20T00:00:00+08:00", enterprise_id="*"))
    assert not alert.escalated and alert.alert_id in c.book.held
    c.rules = Rules(catalogue=c.rules.catalogue, policy=policy())
    [up] = [ch for ch in c.feed(ev("clock.tick", "2026-02-21T00:00:00+08:00", enterprise_id="*")) if ch.alert is alert]
    assert up.step.action == "escalated" and up.step.at.isoformat() == "2026-02-20T16:00:00+00:00"
    assert up.step.note == "静默（停产整顿）期间已超过确认期限（应于 2026-02-11 10:00 前确认），静默解除后升级通报"
    assert [n.receiver for n in up.notifications] == ["chief", "liangzhu", "desk"]
    assert alert.silenced is None and alert.alert_id not in c.book.held
    assert [ch for ch in c.feed(ev("clock.tick", "2026-03-02T00:00:00+08:00", enterprise_id="*")) if ch.alert is alert] == []


def test_a_held_escalation_under_a_silence_that_another_takes_over_names_the_first(rules):
    c = County(rules, policy(silences=_SILENCE + [{"reason": "季节性停产", "enterprise_id": E, "starts": "2026-02-28T00:00:00Z",
                                                   "ends": "2026-04-01T00:00:00Z"}]))
    c.feed(registered("2026-01-05T09:00:00+08:00"), failing("2026-02-10T10:00:00+08:00"))
    [alert] = [a for a in c.book.alerts.values() if a.rule == "sampling.unqualified"]
    assert c.feed(ev("clock.tick", "2026-03-02T00:00:00+08:00", enterprise_id="*")) == []
    assert alert.silenced == "季节性停产" and c.book.held[alert.alert_id][1].isoformat() == "2026-04-01T00:00:00+00:00"
    [up] = [ch for ch in c.feed(ev("clock.tick", "2026-04-02T00:00:00+08:00", enterprise_id="*")) if ch.alert is alert]
    assert up.step.note == "静默（停产整顿）期间已超过确认期限（应于 2026-02-11 10:00 前确认），静默结束后升级通报"


def test_an_alert_moved_out_of_a_silenced_town_escalates_when_it_leaves_it(rules):
    # 良渚街道 is under 停产整顿 until 03-01; the enterprise moves to 东溪镇 on 02-13, after its deadline passed in the silence
    c = County(rules, policy(silences=[{"reason": "停产整顿", "town": TOWN, "ends": "2026-03-01T00:00:00Z"}]))
    c.feed(registered("2026-01-05T09:00:00+08:00"), failing("2026-02-10T10:00:00+08:00"))
    [alert] = [a for a in c.book.alerts.values() if a.rule == "sampling.unqualified"]
    c.feed(ev("clock.tick", "2026-02-12T00:00:00+08:00", enterprise_id="*"))
    assert not alert.escalated and alert.silenced == "停产整顿"
    moved = [ch for ch in c.feed(ev("enterprise.updated", "2026-02-13T10:00:00+08:00", town="东溪镇", campaign_tier=None, scale=None))
             if ch.alert is alert]
    [up] = [ch for ch in moved if ch.step.action == "escalated"]
    assert up.step.note == "静默（停产整顿）期间已超过确认期限（应于 2026-02-11 10:00 前确认），静默解除后升级通报"
    assert "chief" in [n.receiver for n in up.notifications] and alert.silenced is None
    later = [ch for day in range(14, 29) for ch in c.feed(ev("clock.tick", f"2026-02-{day:02d}T00:00:00+08:00", enterprise_id="*"))]
    assert [ch for ch in later + c.feed(ev("clock.tick", "2026-03-02T00:00:00+08:00", enterprise_id="*")) if ch.alert is alert] == []


def test_a_long_silence_keeps_nothing_for_alerts_it_only_quiets_nor_for_alerts_pruned(rules):
    # a noisy rule muted 'until we retune it': every alert it quiets used to add an entry, kept past the alert's pruning
    pol = policy(silences=[{"reason": "规则调整中", "rule": "fluctuation.signal", "ends": "2099-01-01T00:00:00Z"}])
    book = AlertBook()
    for i in range(300):
        at = f"2026-01-{1 + i // 144:02d}T{(i % 144) // 6:02d}:{(i % 6) * 10:02d}:00+08:00"
        book.apply(_tick(at), [_Eff(f"k{i}", "low" if i % 3 else "high", at)], pol, _info)
    book.apply(_tick("2026-01-06T00:00:00+08:00"), [], pol, _info)  # every high one's 48 h went by in the silence
    held = {k for k, a in book.alerts.items() if a.severity == "high"}
    assert set(book.held) == held and len(held) == 100  # (the escalations held, and only those)
    assert "silence_ends" not in book.model_dump()
    for a in book.alerts.values():
        a.state = "closed"
    book.apply(_tick("2027-03-01T00:00:00+08:00"), [], pol, _info)
    assert book.alerts == {} and book.held == {}


def test_a_book_written_with_silence_ends_reads_back_with_the_escalations_it_held(rules):
    # a Kafka worker's snapshot of fold version 64: its silence_ends heap becomes the held map
    c, alert, _ = _silenced_failure(rules)
    c.feed(ev("clock.tick", "2026-02-20T00:00:00+08:00", enterprise_id="*"))
    doc = c.book.model_dump(mode="json")
    held = doc.pop("held")
    doc["silence_ends"] = [[ends, alert_id] for alert_id, (_, ends, _by) in held.items()]
    c.book = AlertBook.model_validate(doc)
    assert c.book.held[alert.alert_id] == (
        "停产整顿", alert.respond_by.replace(year=2026, month=3, day=1, hour=0, minute=0), alert.respond_by)
    [up] = [ch for ch in c.feed(ev("clock.tick", "2026-03-02T00:00:00+08:00", enterprise_id="*")) if ch.alert.alert_id == alert.alert_id]
    assert up.step.action == "escalated" and up.notifications
