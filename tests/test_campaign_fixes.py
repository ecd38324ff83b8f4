"""A review of the campaign's bookkeeping: the acceptance's checks (须核实) and the sampling KPI read the documents'
dates, not when they were typed in; full-staff training is one rule everywhere; a retraction cannot be retracted; a
colony-count comparison is scored in ISO 13528's three bands."""
from __future__ import annotations

import pytest

from ingest.lint import accepted_warnings
from processors.campaign import county_progress, kpis, progress_row
from processors.step import Rules, replay
from schemas.policy import Policy
from tests.conftest import golden
from tests.test_campaign import activity, comparison, training
from tests.test_risk import E, ev, registered


@pytest.fixture
def no_grade_rules(rules):
    """The checks but the grade's: the grade on the acceptance day is history (when a penalty was recorded moves it),
    so a test of loading order leaves it out."""
    return Rules(rules.catalogue, Policy.model_validate({"campaign": {"acceptance_risk_grades": []}}))


def letter(at, signed_on="2026-01-10"):
    return ev("campaign.commitment", at, signed_on=signed_on, document_no="TDSJ-2026-017")


def tiered(at, on="2026-02-01", tier="C"):
    return ev("campaign.assessment", at, kind="tiering", assessed_on=on, tier=tier)


def accepted(at="2026-11-20T10:00:00+08:00", on="2026-11-20"):
    return ev("campaign.assessment", at, kind="acceptance", assessed_on=on, tier="B", passed=True)


def penalty(at, decided_on="2026-05-18", no="示范县市监处罚〔2026〕12号"):
    return ev("enforcement.decided", at, decision_no=no, decided_on=decided_on, sample_nos=[], inspection_ids=[])


def sample(at, sampled_on, failed=True, sample_no=None, task_source="县市场监督管理局"):
    """A water sample recorded at ``at`` (its report), taken on ``sampled_on``: 铜绿假单胞菌 decides it."""
    doc = golden("sampling.result")
    items = doc["payload"]["items"]
    values = [45, 59, 8, 61, 10] if failed else [0, 0, 0, 0, 0]
    items[0] = {**items[0], "values": values, "lab_verdict": "不合格" if failed else "合格"}
    return ev("sampling.result", at, items=items, sample_no=sample_no or f"DC-{sampled_on}", sampled_on=sampled_on,
              production_date=sampled_on, batch=sampled_on.replace("-", ""), task_source=task_source)


def complaint(received_at, verified_at, cid="TS-1"):
    return [ev("complaint.received", received_at, complaint_id=cid),
            ev("complaint.resolved", verified_at, complaint_id=cid, verified=True, outcome="现场核查属实")]


def _checks(state):
    c = state.files[E].campaign
    return c.acceptance_checked_on, sorted((x.code, tuple(sorted(x.event_ids))) for x in c.acceptance_checks)


# --------------------------------------------------------------------------- 1. the acceptance's checks by the documents' dates


def test_the_acceptances_checks_do_not_depend_on_when_records_were_typed_in(no_grade_rules):
    reg = registered("2026-01-05T09:00:00+08:00")
    # on time: every document recorded on its day
    on_time = [reg, letter("2026-01-10T10:00:00+08:00"), tiered("2026-02-01T10:00:00+08:00"), penalty("2026-05-18T15:00:00+08:00"),
               *complaint("2026-10-01T10:00:00+08:00", "2026-10-08T10:00:00+08:00"),
               sample("2026-11-12T10:00:00+08:00", "2026-11-10"), accepted()]
    # late: the letter and the tiering typed in on 1 June (signed in January), the penalty recorded after the acceptance,
    # the lab's report of a sample taken before it arriving after it (labs have 20 working days), the complaint verified after it
    late = [reg, penalty_late := penalty("2026-05-18T15:00:00+08:00"), letter("2026-06-01T10:00:00+08:00"),
            tiered("2026-06-01T11:00:00+08:00"), ev("complaint.received", "2026-10-01T10:00:00+08:00", complaint_id="TS-1"),
            accepted(), ev("complaint.resolved", "2026-12-10T10:00:00+08:00", complaint_id="TS-1", verified=True, outcome="现场核查属实"),
            sample("2026-12-05T10:00:00+08:00", "2026-11-10")]
    # later still: the acceptance first, every other document after it
    after = [reg, accepted("2026-11-20T10:00:00+08:00"), sample("2026-12-05T10:00:00+08:00", "2026-11-10"),
             penalty("2026-12-01T10:00:00+08:00"), *complaint("2026-12-02T10:00:00+08:00", "2026-12-03T10:00:00+08:00"),
             tiered("2026-12-04T10:00:00+08:00"), letter("2026-12-06T10:00:00+08:00")]
    # the complaint of `after` was received (recorded) in December: by its receipt it is after the acceptance, not counted
    expected = {"enforcement", "overall_pass_rate", "complaints_verified"}
    results = []
    for events in (on_time, late, after):
        state, effects = replay(events, no_grade_rules)
        day, checks = _checks(state)
        assert day.isoformat() == "2026-11-20"
        results.append(({code for code, _ in checks}, state.files[E].campaign.started_on.isoformat()))
    assert results[0][0] == results[1][0] == expected
    assert results[2][0] == expected - {"complaints_verified"}
    assert {start for _, start in results} == {"2026-01-10"}  # the letter's date, not the day it was typed in
    assert penalty_late  # (the penalty recorded on its day, before the letter was typed in: in the window from 2026-01-10)
    # each late record said as it changed the checks
    state, effects = replay(late, no_grade_rules)
    said = [e.data for e in effects if e.kind == "campaign.acceptance_rechecked"]
    assert [x["added"] for x in said] == [["complaints_verified"], ["overall_pass_rate"]]
    assert "新增经核实投诉" in said[0]["message_zh"] and said[0]["accepted_on"] == "2026-11-20"


def test_a_penalty_decided_before_the_acceptance_and_recorded_after_it_is_checked(no_grade_rules):
    events = [registered(), letter("2026-01-10T10:00:00+08:00"), tiered("2026-02-01T10:00:00+08:00"), accepted(),
              penalty("2026-12-01T10:00:00+08:00", decided_on="2026-11-02")]
    state, effects = replay(events, no_grade_rules)
    (check,) = state.files[E].campaign.acceptance_checks
    assert check.code == "enforcement" and "示范县市监处罚〔2026〕12号（2026-11-02" in check.text_zh
    (said,) = [e.data for e in effects if e.kind == "campaign.acceptance_rechecked"]
    assert said["added"] == ["enforcement"] and "新增行政处罚：验收前受行政处罚 1 件" in said["message_zh"]
    # one decided after the acceptance day is no check of it
    state, effects = replay(events[:-1] + [penalty("2026-12-01T10:00:00+08:00", decided_on="2026-11-25")], no_grade_rules)
    assert state.files[E].campaign.acceptance_checks == [] and not [e for e in effects if e.kind == "campaign.acceptance_rechecked"]
    # revoked later (a review takes months): the check goes, said in the revocation
    revoked = ev("enforcement.revoked", "2027-02-01T10:00:00+08:00", decision_no="示范县市监处罚〔2026〕12号", revoked_on="2027-01-30",
                 revoked_by="reconsideration", reference_no="示范县政复决字〔2027〕3号", reason="事实不清")
    state, effects = replay(events + [revoked], no_grade_rules)
    assert state.files[E].campaign.acceptance_checks == []
    (rev,) = [e.data for e in effects if e.kind == "enforcement.revoked"]
    assert rev["acceptance_check_withdrawn"] is True and "提档升级验收中的行政处罚一项不再计入" in rev["message_zh"]


def test_the_campaign_start_follows_the_documents_in_force(no_grade_rules):
    """A retracted letter no longer starts the campaign: a penalty before the next document's date leaves the checks."""
    first = letter("2026-01-10T10:00:00+08:00")
    events = [registered(), first, penalty("2026-01-20T15:00:00+08:00", decided_on="2026-01-20"), tiered("2026-02-01T10:00:00+08:00"),
              accepted()]
    state, _ = replay(events, no_grade_rules)
    assert [x.code for x in state.files[E].campaign.acceptance_checks] == ["enforcement"]
    state, effects = replay(events + [ev("campaign.retracted", "2026-12-01T10:00:00+08:00", retracted_event_id=str(first.event_id),
                                         reason="承诺书误录入本企业名下")], no_grade_rules)
    c = state.files[E].campaign
    assert c.started_on.isoformat() == "2026-02-01" and c.acceptance_checks == []
    (said,) = [e.data for e in effects if e.kind == "campaign.acceptance_rechecked"]
    assert said["removed"] == ["enforcement"] and "行政处罚一项不再计入" in said["message_zh"]


# --------------------------------------------------------------------------- 2. the provincial sampling KPI from the campaign's start


def test_the_provincial_sampling_kpi_counts_from_the_enterprises_campaign_start(rules):
    provincial = "省市场监督管理局"
    events = [registered("2024-01-05T09:00:00+08:00"),
              sample("2024-05-10T10:00:00+08:00", "2024-05-02", failed=True, task_source=provincial),  # two years before the campaign
              letter("2026-03-01T10:00:00+08:00"),
              *[sample(f"2026-0{m}-12T10:00:00+08:00", f"2026-0{m}-05", failed=False, task_source=provincial) for m in (4, 5, 6, 7)]]
    state, _ = replay(events, rules)
    k = kpis(state.files[E], rules.policy.campaign)["sampling_pass_rate"]
    assert (k["samples"], k["passed"], k["value"], k["met"]) == (4, 4, 1.0, True)
    assert k["basis_zh"] == "2026-01-10 起省级抽检 4 批（合格 4 批）" and k["since"] == "2026-01-10"
    assert k["all_samples"] == 4  # (the rate over all samples beside it: the same window)
    # a starts_on in the policy is the campaign's start for every enterprise
    county = Rules(rules.catalogue, Policy.model_validate({"campaign": {"starts_on": "2024-01-01"}}))
    state, _ = replay(events, county)
    k = kpis(state.files[E], county.policy.campaign)["sampling_pass_rate"]
    assert (k["samples"], k["passed"]) == (5, 4) and k["basis_zh"].startswith("2024-01-01 起省级抽检 5 批")


# --------------------------------------------------------------------------- 3. full-staff training: one rule


def test_full_staff_training_done_once_and_new_staff_said_apart(rules):
    events = [registered(), letter("2026-01-10T10:00:00+08:00"), tiered("2026-02-01T10:00:00+08:00"),
              training(staff=20, trained=20, takers=20, first_pass=17, at="2026-03-01T10:00:00+08:00"),
              activity("self_inspection", "2026-04-01T10:00:00+08:00", findings=2, rectified=2), comparison(at="2026-04-15T10:00:00+08:00"),
              # four taken on since: the June report shows them untrained
              training(staff=24, trained=20, takers=20, first_pass=17, at="2026-06-01T10:00:00+08:00")]
    state, _ = replay(events, rules)
    pol = rules.policy.campaign
    row = progress_row(state.files[E], pol)
    assert "self_improvement" in row["stages"] and row["three_ones"]["training_and_exam"] is True
    assert "全员培训考试未完成" not in row["lag_reasons_zh"]
    assert "新增从业人员未培训 4 人、未参加考试 4 人，须核实（2026-06-01 报告" in row["lag_reasons_zh"]
    # accepted: the same, among what is to be checked, and never as a three-ones gap
    state, effects = replay(events + [accepted()], rules)
    row = progress_row(state.files[E], pol)
    assert row["three_ones_missing"] == [] and "全员培训考试未完成" not in row["acceptance_gaps_zh"]
    assert "新增从业人员未培训 4 人" in row["acceptance_gaps_zh"] and "新增从业人员培训考试" in row["accepted_with_gaps"]
    (flag,) = [e.data for e in effects if e.kind == "campaign.accepted_with_gaps"]
    assert flag["three_ones_missing"] == [] and "新增从业人员未培训 4 人" in flag["message_zh"]
    from qrisk.credit_report import _campaign_todo  # (the credit file's 待办 reads the same rule)
    assert "完成全员培训考试" not in _campaign_todo(state.files[E], rules, kpis(state.files[E], pol), None)


# --------------------------------------------------------------------------- 4. a retraction cannot be retracted


def test_retracting_a_retraction_is_refused_not_called_a_repeat(rules):
    record = training(at="2026-04-01T10:00:00+08:00")
    first = ev("campaign.retracted", "2026-04-05T10:00:00+08:00", retracted_event_id=str(record.event_id), reason="误录入")
    second = ev("campaign.retracted", "2026-04-06T10:00:00+08:00", retracted_event_id=str(first.event_id), reason="撤销有误")
    for events in ([registered(), record, first, second], [registered(), record, second, first], [registered(), second, first, record]):
        state, effects = replay(events, rules)
        c = state.files[E].campaign
        assert c.trainings == [] and set(c.retractions) == {str(record.event_id)}  # the record stays retracted
        assert [r.event_id for r in c.refused_retractions] == [str(second.event_id)]
        (refused,) = [e.data for e in effects if e.kind == "campaign.retraction_of_retraction"]
        assert refused["message_zh"].startswith(f"事件 {first.event_id} 是一条撤销记录，撤销不能再撤销；如撤销有误，请以新的 event_id 重新报送原记录")
        assert not [e for e in effects if "重复报送" in (e.data.get("message_zh") or "")]
    # the door says it with its own code
    state, _ = replay([registered(), record, first, second], rules)
    (warned,) = accepted_warnings(second, rules.catalogue, state.files[E])
    assert (warned["type"], warned["field"]) == ("retraction_of_retraction", "payload.retracted_event_id")
    assert "撤销不能再撤销" in warned["reason_zh"]


# --------------------------------------------------------------------------- 5. ISO 13528's bands for a colony count


@pytest.mark.parametrize("mine, band, kind", [(550.0, "satisfactory", None), (1950.0, "questionable", "campaign.comparison_questionable"),
                                              (4000.0, "unsatisfactory", "campaign.comparison_unsatisfactory")])
def test_a_colony_count_comparison_is_scored_in_three_bands(rules, mine, band, kind):
    events = [registered(category="pastry", population_served=None),
              activity("comparison_test", "2026-06-01T10:00:00+08:00", lab="县食品检验检测中心", item_code="aerobic_plate_count",
                       enterprise_value=mine, lab_value=488.0, note="")]  # (no note: the message names item and lab only)
    state, effects = replay(events, rules)
    test = state.files[E].campaign.comparison_tests[0]
    assert test.band == band and test.satisfactory is (band == "satisfactory")
    said = [e for e in effects if e.kind.startswith("campaign.comparison_")]
    assert [e.kind for e in said] == ([kind] if kind else [])
    row = progress_row(state.files[E], rules.policy.campaign)
    assert (row["comparison_questionable"], row["comparison_unsatisfactory"]) == (int(band == "questionable"), int(band == "unsatisfactory"))
    if band == "questionable":  # 1950 / 488: Δlg 0.60, z = 2.41
        assert "z = 2.41（|z| ≤ 2 满意，2 < |z| < 3 可疑，|z| ≥ 3 不满意）" in test.measure_zh
        assert said[0].data["message_zh"].startswith("比对试验（菌落总数，县食品检验检测中心）结果可疑") and "不满意：" not in said[0].data["message_zh"]
        assert "比对试验结果可疑（2026-06-01" in row["lag_reasons_zh"] and "比对试验不满意" not in row["lag_reasons_zh"]


def test_a_policy_with_the_former_log10_bound_reads_as_its_sigma():
    assert Policy.model_validate({"campaign": {"comparison_max_log10_difference": 0.6}}).campaign.comparison_log10_sigma_pt == pytest.approx(0.3)
    assert Policy().campaign.comparison_log10_sigma_pt == 0.25
    # a bad old value is refused naming it and why, not as an unknown field; so are both names at once
    for bad in (0, -1, "0.5", True):
        with pytest.raises(ValueError) as caught:
            Policy.model_validate({"campaign": {"comparison_max_log10_difference": bad}})
        assert "comparison_max_log10_difference must be a number > 0" in str(caught.value) and "extra_forbidden" not in str(caught.value)
    with pytest.raises(ValueError, match="both given"):
        Policy.model_validate({"campaign": {"comparison_max_log10_difference": 0.6, "comparison_log10_sigma_pt": 0.2}})


# --------------------------------------------------------------------------- 6. the pass-rate check's target in the KPI's form


def test_the_pass_rate_checks_target_is_printed_as_the_kpis(no_grade_rules):
    events = [registered(), letter("2026-01-10T10:00:00+08:00"), sample("2026-03-10T10:00:00+08:00", "2026-03-05"), accepted()]
    state, _ = replay(events, no_grade_rules)
    (check,) = [x for x in state.files[E].campaign.acceptance_checks if x.code == "overall_pass_rate"]
    target = kpis(state.files[E], no_grade_rules.policy.campaign)["sampling_pass_rate"]["target_zh"].removeprefix("目标高于 ").split("，")[0]
    assert f"未高于目标 {target}（省级抽检合格率指标的目标）" in check.text_zh
    assert county_progress(state, no_grade_rules.policy.campaign)["rows"][0]["acceptance_checks"][0]["code"] == "overall_pass_rate"
