"""What an enterprise's representative found unfair in its credit file (a due-process review).

- Alerts stayed open, still saying 经核实属实 or 升至 C 级, after what they rested on was withdrawn: complaints
  found 不属实 closed only the complaint chart's alert, not the 食用后不适 or 投诉聚集 alerts, and a grade that
  fell back (a failure overturned by its re-test) left its 风险等级上升 alert open and escalated.
- A rectification completed before its deadline and rejected by the bureau after it read 逾期 18 天 — the
  bureau's review time charged to the enterprise as 6 + 2 risk points.  A rejection may now set a new deadline
  (重新限期, ``new_deadline``), by which it is overdue; without one, an in-time completion is not made overdue."""
from __future__ import annotations

from processors.step import replay
from processors.warnings import ALERT_KIND, RESOLVED_KIND
from tests.test_retest_scope import _item, _water
from tests.test_risk import E, ev, registered


def _tick(at: str):
    return ev("clock.tick", at, "*")


def _closed(effects) -> dict[str, str]:
    return {e.data["dedup_key"]: e.data["note_zh"] for e in effects if e.kind == RESOLVED_KIND}


def _raised(effects, rule: str) -> list[dict]:
    return [e.data for e in effects if e.kind == ALERT_KIND and e.data["rule"] == rule]


def test_complaints_found_unfounded_close_the_alerts_that_said_they_were_verified(rules):
    said = [("illness", "喝了以后腹泻"), ("foreign_matter", "桶里有异物"), ("taste_odour", "有异味")]
    received = [ev("complaint.received", f"2026-03-0{i + 2}T10:00:00+08:00", complaint_id=f"C{i}", category=cat, text=text, verified=True)
                for i, (cat, text) in enumerate(said)]
    found = [ev("complaint.resolved", "2026-03-25T10:00:00+08:00", complaint_id=f"C{i}", verified=False, outcome="经核查不属实")
             for i in range(3)]
    state, effects = replay([registered(), *received, *found], rules)
    (illness,) = _raised(effects, "complaint.illness")
    cluster = _raised(effects, "complaint.cluster")[-1]
    worsened = _raised(effects, "risk.grade_worsened")[-1]
    closed = _closed(effects)
    assert "投诉编号 C0 不属实（2026-03-25 办结）" in closed[illness["dedup_key"]] and "事实不成立" in closed[illness["dedup_key"]]
    assert "不足 3 件" in closed[cluster["dedup_key"]]
    assert f"本预警所报“升至 {worsened['evidence']['to']} 级”不再成立" in closed[worsened["dedup_key"]]
    assert state.files[E].risk.grade == "B"


def test_a_cluster_with_enough_verified_complaints_left_stays_open(rules):
    received = [ev("complaint.received", f"2026-03-0{i + 2}T10:00:00+08:00", complaint_id=f"C{i}", category="foreign_matter",
                   text="桶里有异物", verified=True) for i in range(4)]
    one = ev("complaint.resolved", "2026-03-25T10:00:00+08:00", complaint_id="C0", verified=False, outcome="经核查不属实")
    _, effects = replay([registered(), *received, one], rules)
    cluster = _raised(effects, "complaint.cluster")[-1]
    assert cluster["dedup_key"] not in _closed(effects)  # three verified remain: still a cluster


def test_a_failure_overturned_closes_the_grade_rise_it_caused(rules):
    first = _water("2026-04-10T16:00:00+08:00", [_item("bromate", [0.013], "mg/L", "不合格", "溴酸盐")])
    retest = _water("2026-05-06T10:30:00+08:00", [_item("bromate", [0.008], "mg/L", "合格", "溴酸盐")], retest=True)
    before, effects = replay([registered(), first], rules)
    (worsened,) = _raised(effects, "risk.grade_worsened")
    assert worsened["evidence"]["to"] == before.files[E].risk.grade == "C"
    state, effects = replay([registered(), first, retest], rules)
    assert state.files[E].risk.grade == "B"
    assert "风险等级已由 C 降至 B" in _closed(effects)[worsened["dedup_key"]]


ORDER = ev("rectification.ordered", "2026-02-01T10:00:00+08:00", rectification_id="R1", what="原料离地存放", deadline="2026-02-20",
           cause="检查 I1")


def _rejected(on: str = "2026-03-10T10:00:00+08:00", **more):
    return ev("rectification.verified", on, rectification_id="R1", verifier="王某", accepted=False, note="标识不全", **more)


def test_the_bureaus_late_review_does_not_make_an_in_time_rectification_overdue(rules):
    done = ev("rectification.completed", "2026-02-19T10:00:00+08:00", rectification_id="R1", evidence="已加装货架")
    state, effects = replay([registered(), ORDER, done, _rejected(), _tick("2026-04-30T00:00:00+08:00")], rules)
    f = state.files[E]
    assert not [e for e in effects if e.kind == "rectification.overdue"]
    assert f.rectifications[0].status == "rejected" and not f.rectifications[0].overdue and f.counts.rectifications_overdue == 0
    factors = {c.factor for c in f.risk.current.contributions if c.points}
    assert "credit.rectification_rejected" in factors  # the rejection itself weighs
    assert not {"dynamic.rectification_overdue", "credit.rectification_overdue"} & factors
    (rejected,) = [e.data for e in effects if e.kind == "rectification.rejected"]
    assert rejected["due"] is None and rejected["deadline"] == "2026-02-20"


def test_a_rejection_with_a_new_deadline_is_overdue_by_that_deadline(rules):
    done = ev("rectification.completed", "2026-02-19T10:00:00+08:00", rectification_id="R1", evidence="已加装货架")
    events = [registered(), ORDER, done, _rejected(new_deadline="2026-03-31")]
    _, effects = replay([*events, _tick("2026-03-31T12:00:00+08:00")], rules)
    assert not [e for e in effects if e.kind == "rectification.overdue"]
    state, effects = replay([*events, _tick("2026-04-03T00:00:00+08:00")], rules)
    (overdue,) = [e.data for e in effects if e.kind == "rectification.overdue"]
    assert overdue["deadline"] == "2026-03-31" and overdue["days_overdue"] == 3 and overdue["redo"]
    (alert,) = _raised(effects, "rectification.overdue")
    assert "已超过重新整改期限 2026-03-31，截至 2026-04-03 逾期 3 天" in alert["message_zh"]  # (the alert keeps its words: dated)
    # done again in time by the new deadline, its record arriving late: the mark is withdrawn as for the first
    again = ev("rectification.completed", "2026-03-30T10:00:00+08:00", rectification_id="R1", evidence="标识已补全")
    state, effects = replay([*events, _tick("2026-04-03T00:00:00+08:00"), again], rules)
    assert not state.files[E].rectifications[0].overdue
    assert [e.data["deadline"] for e in effects if e.kind == "rectification.overdue_withdrawn"] == ["2026-03-31"]


def test_a_rectification_completed_late_is_still_overdue_when_rejected(rules):
    late = ev("rectification.completed", "2026-02-25T10:00:00+08:00", rectification_id="R1", evidence="已加装货架")
    state, effects = replay([registered(), ORDER, late, _rejected()], rules)
    (overdue,) = [e.data for e in effects if e.kind == "rectification.overdue"]
    assert overdue["deadline"] == "2026-02-20" and state.files[E].rectifications[0].overdue


def test_the_report_says_a_listing_ended_and_a_new_deadline(rules):
    from qrisk.credit_report import build_report

    decision = ev("enforcement.decided", "2026-05-18T15:00:00+08:00", serious_dishonesty=True)
    for when, said in (("2027-06-01", "是（至 2029-05-18）"), ("2033-01-01", "是（已于 2029-05-18 期满移出）")):
        state, _ = replay([registered(), decision, _tick(f"{when}T09:00:00+08:00")], rules)
        (row,) = build_report(state.files[E], rules)["enforcements"]
        assert row["serious_dishonesty_zh"] == said, when
    done = ev("rectification.completed", "2026-02-19T10:00:00+08:00", rectification_id="R1", evidence="已加装货架")
    state, _ = replay([registered(), ORDER, done, _rejected(new_deadline="2026-03-31")], rules)
    (row,) = build_report(state.files[E], rules)["rectifications"]
    # (02-20 lies in the 2026 Spring Festival holiday: the deadline ran to 02-24, the next working day)
    assert row["deadline"] == "2026-02-20（节假日顺延至 2026-02-24）（重新限期 2026-03-31）"


def test_a_rectifications_credit_points_end_after_their_memory(rules):
    """信用修复: a rejected and overdue rectification weighed 4 + 2 credit points for good — longer than a listing as
    严重违法失信 (three years).  Now for ``risk.credit.memory_years`` (3), and the report says until when."""
    from qrisk.credit_report import build_report
    from schemas.policy import Policy
    from processors.step import Rules

    late = ev("rectification.completed", "2026-02-25T10:00:00+08:00", rectification_id="R1", evidence="已加装货架")
    accepted = ev("rectification.verified", "2026-03-20T10:00:00+08:00", rectification_id="R1", verifier="王某", accepted=True)
    events = [registered(), ORDER, _rejected("2026-02-21T10:00:00+08:00"), late, accepted]

    def credit_terms(at: str, r=rules):
        state, _ = replay([*events, _tick(at)], r)
        f = state.files[E]
        return f, {c.factor: (c.points, c.detail_zh) for c in f.risk.current.contributions if c.factor.startswith("credit.rect")}

    f, terms = credit_terms("2027-03-01T00:00:00+08:00")
    assert terms == {"credit.rectification_rejected": (4.0, "近 3 年 1 项（R1）"), "credit.rectification_overdue": (2.0, "近 3 年 1 项（R1）")}
    rows = {r["factor"]: r["until_zh"] for r in build_report(f, rules)["contributions"]}
    assert rows["credit.rectification_rejected"] == "最早一项于 2029-02-21 后不再计入"
    # marked overdue by the completion of 02-25: the deadline 02-20 lay in the Spring Festival holiday and ran to 02-24,
    # so the rejection of 02-21 was not yet past it
    assert rows["credit.rectification_overdue"] == "最早一项于 2029-02-25 后不再计入"
    assert rows["static.category"] == "" and rows["credit.campaign_tier"] == ""
    _, terms = credit_terms("2029-03-01T00:00:00+08:00")
    assert terms == {}
    # 0 keeps them for good, as before
    forever = Rules(rules.catalogue, Policy.model_validate({"risk": {"credit": {"memory_years": 0}}}))
    _, terms = credit_terms("2031-03-01T00:00:00+08:00", forever)
    assert terms == {"credit.rectification_rejected": (4.0, "累计 1 项（R1）"), "credit.rectification_overdue": (2.0, "累计 1 项（R1）")}


def test_a_policy_listing_cites_its_decision_and_ends_on_time(rules):
    """A listing in the policy made an enterprise D with no decision, no date and no end (列入严重违法失信名单：直接定为 D 级)."""
    from processors.step import Rules
    from schemas.policy import Policy

    listing = {"enterprise_id": E, "decision_no": "某市市监信列〔2025〕3号", "listed_on": "2025-06-01", "authority": "某市市场监督管理局"}
    listed = Rules(rules.catalogue, Policy.model_validate({"risk": {"credit": {"serious_dishonesty": [listing]}}}))
    state, _ = replay([registered(), _tick("2026-03-01T00:00:00+08:00")], listed)
    f = state.files[E]
    (term,) = [c for c in f.risk.current.contributions if c.factor == "credit.serious_dishonesty"]
    assert f.risk.grade == "D"
    assert term.detail_zh == "某市市场监督管理局列入决定书 某市市监信列〔2025〕3号（2025-06-01），直接定为 D 级（列入至 2028-06-01）"
    state, _ = replay([registered(), _tick("2028-06-02T00:00:00+08:00")], listed)
    assert state.files[E].risk.current.override is None  # ended: the score decides again
    # the older form, a bare id, stays until taken out and says what is missing
    bare = Rules(rules.catalogue, Policy.model_validate({"risk": {"credit": {"serious_dishonesty": [E]}}}))
    state, _ = replay([registered(), _tick("2030-03-01T00:00:00+08:00")], bare)
    (term,) = [c for c in state.files[E].risk.current.contributions if c.factor == "credit.serious_dishonesty"]
    assert state.files[E].risk.grade == "D" and "未载明列入决定书与日期" in term.detail_zh


def test_a_redo_by_a_new_deadline_does_not_excuse_a_late_first_completion(rules):
    """A review of the day's diff: completed late (overdue by 02-20), rejected with a new deadline, redone in time
    by it — the redo withdrew the genuine overdue mark, its points and its alert, saying 在期限 2026-03-31 之内."""
    late = ev("rectification.completed", "2026-02-25T10:00:00+08:00", rectification_id="R1", evidence="已加装货架")
    again = ev("rectification.completed", "2026-03-25T10:00:00+08:00", rectification_id="R1", evidence="标识已补全")
    state, effects = replay([registered(), ORDER, late, _rejected(new_deadline="2026-03-31"), again], rules)
    f = state.files[E]
    assert f.rectifications[0].overdue and f.counts.rectifications_overdue == 1
    assert not [e for e in effects if e.kind == "rectification.overdue_withdrawn"]


def test_a_policy_listing_takes_effect_on_its_date_without_an_event(rules):
    """A review of the day's diff: a listing dated within the log waited for an event that changed the score."""
    from processors.step import Rules
    from schemas.policy import Policy

    listing = {"enterprise_id": E, "decision_no": "某市市监信列〔2026〕3号", "listed_on": "2026-05-01"}
    listed = Rules(rules.catalogue, Policy.model_validate({"risk": {"credit": {"serious_dishonesty": [listing]}}}))
    state, _ = replay([registered(), _tick("2026-04-30T12:00:00+08:00")], listed)
    assert state.files[E].risk.grade == "B"
    state, _ = replay([registered(), _tick("2026-04-30T12:00:00+08:00"), _tick("2026-05-02T00:00:00+08:00")], listed)
    assert (state.files[E].risk.grade, state.files[E].risk.current.override) == ("D", "serious_dishonesty")
