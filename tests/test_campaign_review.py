"""The campaign office manager's review: the record decides by its documents' dates, not their loading
order; a passed acceptance without the three ones is one to check; a later failed acceptance reverses a
pass; every commitment letter is kept; a revoked licence takes an enterprise out of the campaign's counts."""
from __future__ import annotations

import datetime as dt
import io

from processors.campaign import county_progress, progress_row
from processors.step import replay
from tests.test_campaign import activity, commitment, comparison, tiering, training, whole_campaign
from tests.test_risk import E, ev, registered


def _row(state, rules):
    return progress_row(state.files[E], rules.policy.campaign)


def test_a_passed_acceptance_without_a_self_inspection_is_one_to_check(rules):
    events = [e for e in whole_campaign() if not (e.event_type == "campaign.activity" and e.payload.kind == "self_inspection")]
    state, effects = replay(events, rules)
    (flag,) = [e for e in effects if e.kind == "campaign.accepted_with_gaps"]
    assert flag.data["three_ones_missing"] == ["self_inspection"] and "未开展自查" in flag.data["message_zh"]
    row = _row(state, rules)
    assert row["accepted_on"] == "2026-11-20" and row["accepted_with_gaps"] == ["自查"]
    assert row["acceptance_gaps_zh"].startswith("未开展自查")
    assert county_progress(state, rules.policy.campaign)["summary"]["accepted_with_gaps_by"] == {"自查": 1}


def test_a_later_failed_acceptance_reverses_the_pass(rules):
    events = whole_campaign() + [tiering("B", "2027-03-15T10:00:00+08:00", kind="acceptance", passed=False, note="复查发现出厂检验未做")]
    state, effects = replay(events, rules)
    row = _row(state, rules)
    assert row["accepted_on"] is None and row["last_acceptance_failed"] is True
    assert row["stage"] == "self_improvement" and "acceptance" not in row["stages"]
    assert (row["tier"], row["upgraded"]) == ("C", False)  # back to the tiering's tier
    assert row["acceptance_result_zh"] == "2026-11-20 验收通过，2027-03-15 复查验收未通过（县局调查分档组，复查发现出厂检验未做）"
    assert "此前 2026-11-20 验收通过已被推翻" in row["lag_reasons_zh"]
    assert [e.kind for e in effects].count("campaign.acceptance_reversed") == 1
    (lost,) = [e.data for e in effects if e.kind == "campaign.stage_lost"]  # (what the dashboards count stages by)
    assert (lost["stage"], lost["was"]) == ("acceptance", "2026-11-20")
    sm = county_progress(state, rules.policy.campaign)["summary"]
    assert (sm["accepted"], sm["last_acceptance_failed"], sm["upgraded"], sm["lagging"]) == (0, 1, 0, 1)
    # the failure loaded first: the same outcome
    state, _ = replay(events[:-2] + events[-1:] + events[-2:-1], rules)
    assert _row(state, rules)["acceptance_result_zh"] == row["acceptance_result_zh"]


def test_an_earlier_passed_acceptance_loaded_late_dates_the_acceptance(rules):
    late = tiering("B", "2026-11-10T10:00:00+08:00", kind="acceptance", passed=True)
    state, effects = replay(whole_campaign() + [late], rules)
    row = _row(state, rules)
    assert row["accepted_on"] == row["stages"]["acceptance"] == "2026-11-10"
    assert row["acceptance_result_zh"] == "验收通过（2026-11-10）"
    (redated,) = [e.data for e in effects if e.kind == "campaign.stage_redated"]
    assert (redated["stage"], redated["on"], redated["was"]) == ("acceptance", "2026-11-10", "2026-11-20")


def test_stage_dates_do_not_depend_on_loading_order(rules):
    events = whole_campaign()
    shuffled = events[:1] + list(reversed(events[1:]))
    a, _ = replay(events, rules)
    b, _ = replay(shuffled, rules)
    assert a.files[E].campaign.stages == b.files[E].campaign.stages
    # a satisfactory comparison dated before the one that completed the three ones re-dates self_improvement
    state, _ = replay(events + [comparison(at="2026-05-20T10:00:00+08:00")], rules)
    assert state.files[E].campaign.stages["self_improvement"].isoformat() == "2026-05-20"


def test_a_second_commitment_letter_is_kept_shown_and_warned_of(rules):
    first = commitment()  # TDSJ-2026-017, 2026-01-10
    second = ev("campaign.commitment", "2026-01-20T10:00:00+08:00", signed_on="2026-01-05", document_no="TDSJ-2026-099", signatory="王某")
    state, effects = replay([registered("2026-01-04T09:00:00+08:00"), first, second], rules)
    c = state.files[E].campaign
    assert [x.document_no for x in c.commitments] == ["TDSJ-2026-017", "TDSJ-2026-099"]
    assert (c.commitment_signed_on.isoformat(), c.document_no) == ("2026-01-05", "TDSJ-2026-099")  # the earliest signed
    assert c.stages["mobilisation"].isoformat() == "2026-01-05"
    (warned,) = [e.data for e in effects if e.kind == "campaign.second_commitment"]
    assert warned["field"] == "payload.document_no" and "两份均保留" in warned["message_zh"]
    assert _row(state, rules)["commitments_zh"] == "TDSJ-2026-099（2026-01-05）；TDSJ-2026-017（2026-01-10）"
    # the same letter again under a new event id: no second effect
    again = ev("campaign.commitment", "2026-02-01T10:00:00+08:00", signed_on="2026-01-05", document_no="TDSJ-2026-099", signatory="王某")
    state, effects = replay([again], rules, state)
    assert len(state.files[E].campaign.commitments) == 2 and effects == []


def test_a_letter_without_a_number_loaded_again_is_the_same_letter_and_the_report_lists_a_second_one(rules):
    from qrisk.credit_report import build_report

    plain = ev("campaign.commitment", "2026-01-10T10:00:00+08:00", signed_on="2026-01-10", document_no=None, signatory="李某")
    again = ev("campaign.commitment", "2026-02-10T10:00:00+08:00", signed_on="2026-01-10", document_no=None, signatory="李某")
    state, effects = replay([registered("2026-01-04T09:00:00+08:00"), plain, again], rules)
    assert len(state.files[E].campaign.commitments) == 1 and not [e for e in effects if e.kind == "campaign.second_commitment"]
    # another signatory's unnumbered letter is a second letter: kept, warned of, and in the readable credit file
    other = ev("campaign.commitment", "2026-03-01T10:00:00+08:00", signed_on="2026-02-28", document_no=None, signatory="张某")
    state, effects = replay([other], rules, state)
    assert [e.kind for e in effects].count("campaign.second_commitment") == 1
    rows = build_report(state.files[E], rules)["campaign"]
    assert [r["detail"] for r in rows if r["item"].startswith("承诺书")] == [
        "编号未载明，签字人 李某，2026-01-10 签订", "编号未载明，签字人 张某，2026-02-28 签订；承诺日期按最早签订的一份计"]
    assert [r["status"] for r in rows if r["item"] == "承诺书（另一份）"] == ["须核实"]


def test_the_credit_report_says_what_the_table_says_of_an_acceptance_without_the_three_ones(rules):
    from qrisk.credit_report import build_report

    events = [e for e in whole_campaign() if not (e.event_type == "campaign.activity" and e.payload.kind == "self_inspection")]
    state, _ = replay(events, rules)
    (acceptance,) = [r for r in build_report(state.files[E], rules)["campaign"] if r["item"] == "检查验收"]
    assert acceptance["status"] == "已完成" and "已验收通过，但须核实：未开展自查" in acceptance["detail"]
    assert _row(state, rules)["acceptance_gaps_zh"].split("；")[0] in acceptance["detail"]


def test_the_starting_tier_is_the_earliest_tiering_whatever_the_loading_order(rules):
    state, _ = replay([registered("2026-01-05T09:00:00+08:00"), tiering("B", "2026-05-01T10:00:00+08:00"), tiering("D", "2026-02-01T10:00:00+08:00")], rules)
    row = _row(state, rules)
    assert (row["starting_tier"], row["tier"], row["upgraded"]) == ("D", "B", True)


def _licence_revoked(at="2026-08-01T10:00:00+08:00"):
    return ev("enforcement.decided", at, decided_on=at[:10], penalties=[{"kind": "licence_revoked"}])


def test_a_revoked_licence_takes_the_enterprise_out_of_lagging_and_the_kpis_until_the_revocation_is_revoked(rules):
    events = [registered("2026-01-05T09:00:00+08:00", campaign_tier="C"), commitment(), tiering("C"), training(staff=20, trained=10, takers=10, first_pass=8)]
    state, _ = replay(events + [_licence_revoked()], rules)
    row = _row(state, rules)
    assert row["licence_zh"] == "已吊销许可证（示范县市监处罚〔2026〕12号）" and row["lag_reasons"] == []
    sm = county_progress(state, rules.policy.campaign)["summary"]
    assert (sm["enterprises"], sm["lagging"], sm["licence_revoked"]) == (1, 0, 1)
    assert sm["kpi_rates"]["training_rate"]["whole"] == 0 and sm["kpis"]["training_rate"]["known"] == 0
    back = ev("enforcement.revoked", "2026-09-01T10:00:00+08:00", revoked_on="2026-08-30")
    state, _ = replay([back], rules, state)
    sm = county_progress(state, rules.policy.campaign)["summary"]
    assert (sm["lagging"], sm["licence_revoked"], sm["kpi_rates"]["training_rate"]["whole"]) == (1, 0, 20)
    assert _row(state, rules)["licence_zh"] == ""


def _summary_sheet(content: bytes) -> dict:
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(content))
    assert wb.sheetnames == ["提档升级进度", "汇总"]
    sheet = wb["汇总"]
    assert [c.value for c in sheet[1]] == ["项目", "数值", "说明"]
    return {row[0].value: row[1] for row in sheet.iter_rows(min_row=2)}


def test_the_workbook_has_the_county_summary_beside_the_rows(rules):
    from qrisk.sheets import campaign_workbook

    state, _ = replay(whole_campaign(), rules)
    cells = _summary_sheet(campaign_workbook(county_progress(state, rules.policy.campaign)))
    assert (cells["企业数（家）"].value, cells["验收通过（家）"].value, cells["滞后企业（家）"].value) == (1, 1, 0)
    assert cells["检查验收：已完成（家）"].value == 1 and cells["验收通过但须核实（家）"].value == 0
    rate = cells["全县从业人员培训率"]
    assert rate.value == 1.0 and rate.number_format == "0.0%"


def test_the_campaign_xlsx_over_the_api_has_the_summary_sheet(server):
    import json

    from qrisk.auth import KeyStore

    _, bureau = KeyStore(server.data_dir / "keys.json").create("bureau", "campaign-office", source_id="campaign-office", actor="tests")
    docs = [json.loads(e.model_dump_json(exclude_unset=True)) for e in whole_campaign()]
    for d in docs[1:]:
        d["source"] = {"kind": "bureau", "id": "campaign-office"}
    assert server.post("/v1/events", json=docs[:1]).status_code == 200
    assert server.post("/v1/events", json=docs[1:], headers={"authorization": f"Bearer {bureau}"}).status_code == 200
    cells = _summary_sheet(server.get("/v1/campaign?format=xlsx").content)
    assert cells["验收通过（家）"].value == server.get("/v1/campaign").json()["summary"]["accepted"] == 1


def test_a_record_kept_from_fold_28_keeps_what_it_had_reached(rules):
    """A Kafka worker carries its files across an upgrade until `qrisk rebuild --kafka`: a campaign record of
    FOLD_VERSION 28 had no letters list, no training reports list, no visit or assistance dates and no
    scores on its assessments.  Read as it was, the next campaign event took every stage those documents
    had completed away (campaign.stage_lost) and emptied the scores: it is read as this fold keeps them."""
    import json
    from collections import Counter

    from processors.credit_file import CountyState
    from processors.step import step
    from qrisk.demo import CountyGenerator

    events = CountyGenerator(seed=11, months=14).generate()
    camp = [i for i, e in enumerate(events) if e.event_type.startswith("campaign.")]
    cut = camp[len(camp) * 2 // 3]
    state, _ = replay(events[:cut], rules, CountyState())
    doc = json.loads(state.snapshot())
    for f in doc["files"].values():  # (what fold 28's snapshot held: none of the new fields)
        for k in ("commitments", "trainings", "visit_dates", "assistance_dates", "carried_stages"):
            f["campaign"].pop(k, None)
        for a in f["campaign"].get("assessments", []):
            a.pop("scores", None)
    old = CountyState.restore(json.dumps(doc).encode())
    full, _ = replay(events, rules, CountyState())
    said = Counter()
    for e in events[cut:]:
        old, effects = step(old, e, rules)
        said.update(x.kind for x in effects if x.kind.startswith("campaign.stage"))
    assert "campaign.stage_lost" not in said and said["campaign.stage_reached"] > 0
    keep = ("stage", "stages", "tier", "starting_tier", "accepted_on", "training_as_of", "commitment_signed_on", "kpis")
    for eid, f in full.files.items():
        a, b = progress_row(old.files[eid], rules.policy.campaign), progress_row(f, rules.policy.campaign)
        assert {k: a[k] for k in keep} == {k: b[k] for k in keep}, eid
        assert old.files[eid].campaign.scores == f.campaign.scores, eid


def test_one_letter_number_with_another_date_is_a_second_letter_not_a_repeat(rules):
    from tests.test_campaign import ev

    def letter(at, signed_on, no="CN-1"):
        return ev("campaign.commitment", at, signed_on=signed_on, document_no=no)

    base = [registered("2026-01-05T09:00:00+08:00", campaign_tier="C")]
    state, effects = replay(base + [letter("2026-01-10T10:00:00+08:00", "2026-01-10"),
                                    letter("2026-01-12T10:00:00+08:00", "2026-01-10")], rules)
    assert not [e for e in effects if e.kind == "campaign.second_commitment"]  # the same letter again
    assert len(state.files[E].campaign.commitments) == 1
    state, effects = replay(base + [letter("2026-01-10T10:00:00+08:00", "2026-01-10"),
                                    letter("2026-01-12T10:00:00+08:00", "2026-01-08")], rules)
    (said,) = [e.data for e in effects if e.kind == "campaign.second_commitment"]
    assert "CN-1" in said["message_zh"] and "2026-01-08" in said["message_zh"]
    assert _row(state, rules)["commitment_signed_on"] == "2026-01-08"  # the earliest signed, whatever came first
    # that second letter sent again (a lab system's retry): no third letter, no second warning
    state, effects = replay(base + [letter("2026-01-10T10:00:00+08:00", "2026-01-10"), letter("2026-01-12T10:00:00+08:00", "2026-01-08"),
                                    letter("2026-01-13T10:00:00+08:00", "2026-01-08")], rules)
    assert len(state.files[E].campaign.commitments) == 2
    assert len([e for e in effects if e.kind == "campaign.second_commitment"]) == 1


def test_a_record_built_in_code_is_not_taken_for_one_of_fold_28():
    import datetime as dt

    from processors.campaign import CampaignRecord

    built = CampaignRecord(stages={"acceptance": dt.date(2026, 3, 1), "tiering": dt.date(2026, 1, 1)})
    assert built.carried_stages == {}
    old = CampaignRecord.model_validate({"stages": {"tiering": "2026-01-01"}, "event_ids": [], "assessments": [], "training": None})
    assert old.carried_stages == {"tiering": dt.date(2026, 1, 1)} and old.trainings == []


def test_a_pass_loaded_behind_a_later_failure_asks_for_no_check(rules):
    """A pass dated before the failure that reversed it does not stand: no 须核实 for it; and the reversal
    names the pass the row names (the latest before the failure)."""
    from tests.test_campaign import commitment

    first = tiering("B", "2026-09-01T10:00:00+08:00", kind="acceptance", passed=True)
    second = tiering("B", "2026-10-01T10:00:00+08:00", kind="acceptance", passed=True)
    failed = tiering("B", "2026-11-01T10:00:00+08:00", kind="acceptance", passed=False)
    base = [registered("2026-01-05T09:00:00+08:00", campaign_tier="C"), commitment(), tiering("C")]
    _, effects = replay(base + [first, second, failed], rules)
    (rev,) = [e.data for e in effects if e.kind == "campaign.acceptance_reversed"]
    assert rev["accepted_on"] == "2026-10-01"
    _, effects = replay(base + [failed, second], rules)
    assert not [e for e in effects if e.kind == "campaign.accepted_with_gaps"]


def test_an_enterprise_that_closed_is_out_of_routine_supervision_and_the_campaign(rules):
    """注销: enterprise.updated status deregistered.  No sampling or inspection falls due after it (a closed producer
    drew 检查逾期 alerts for ever), the campaign counts it on its own, and status operating brings it back."""
    from processors.risk import check_missing
    from tests.test_campaign import ev, whole_campaign

    events = [e for e in whole_campaign() if e.event_type != "campaign.assessment" or e.payload.kind == "tiering"]
    def status(at, value):  # (the golden update changes other fields: this one changes the status alone)
        e = ev("enterprise.updated", at, status=value)
        return e.model_copy(update={"payload": e.payload.__class__(status=value)})

    closed = status("2026-06-10T09:00:00+08:00", "deregistered")
    state, effects = replay(events + [closed], rules)
    f = state.files[E]
    (said,) = [e.data for e in effects if e.kind == "enterprise.status_changed"]
    assert (said["status"], said["status_zh"], said["on"]) == ("deregistered", "已注销", "2026-06-10")
    assert f.deregistered_on.isoformat() == "2026-06-10" and f.profile is not None  # the file stays
    assert not [e for e in effects if e.kind == "enterprise.profile_changed"]  # (status alone changes no profile field)
    assert f.risk.grade is not None and f.risk.next_inspection_due is None  # (the enterprise list shows none due)
    f.risk.check_missing_at = None
    assert check_missing(f, rules) == []
    from qrisk.credit_report import build_report, render_text

    assert "经营状态：已注销（2026-06-10 起，不再安排日常抽检和检查）" in render_text(build_report(f, rules))
    row = _row(state, rules)
    assert row["deregistered_on"] == "2026-06-10" and row["licence_zh"] == "已注销（2026-06-10）" and row["lag_reasons"] == []
    sm = county_progress(state, rules.policy.campaign)["summary"]
    assert (sm["deregistered"], sm["lagging"], sm["licence_revoked"]) == (1, 0, 0)
    assert all(k["known"] == 0 for k in sm["kpis"].values())  # out of the KPI counts
    back = status("2026-07-01T09:00:00+08:00", "operating")
    state, effects = replay(events + [closed, back], rules)
    sm = county_progress(state, rules.policy.campaign)["summary"]
    assert state.files[E].deregistered_on is None and sm["deregistered"] == 0 and any(k["known"] for k in sm["kpis"].values())
    assert state.files[E].risk.next_inspection_due is not None
    assert [e.data["status"] for e in effects if e.kind == "enterprise.status_changed"] == ["deregistered", "operating"]



def test_a_stopped_producer_is_said_so_in_the_progress_table_and_stays_in_the_campaign(rules):
    """停产 (enterprise.updated status suspended): the table's 许可证/经营状态 was empty, and the summary said nothing, so a
    producer standing still read as one merely behind.  It stays in the campaign (the upgrade is what it resumes with):
    its lag and KPIs count as before, and the summary says how many are stopped."""
    from processors.campaign import summary_lines_zh
    from tests.test_campaign import ev, whole_campaign

    events = [e for e in whole_campaign() if e.event_type != "campaign.assessment" or e.payload.kind == "tiering"]

    def status(at, value):  # (the golden update changes other fields: this one changes the status alone)
        e = ev("enterprise.updated", at, status=value)
        return e.model_copy(update={"payload": e.payload.__class__(status=value)})

    before = county_progress(replay(events, rules)[0], rules.policy.campaign)
    stopped = status("2026-06-10T09:00:00+08:00", "suspended")
    state, _ = replay(events + [stopped], rules)
    row = _row(state, rules)
    assert row["suspended_on"] == "2026-06-10" and row["licence_zh"] == "停产（2026-06-10 起）"
    progress = county_progress(state, rules.policy.campaign)
    sm = progress["summary"]
    assert sm["suspended"] == 1 and (sm["active"], sm["lagging"], sm["kpis"]) == (
        before["summary"]["active"], before["summary"]["lagging"], before["summary"]["kpis"])
    assert row["lag_reasons"] == before["rows"][0]["lag_reasons"]
    assert "停产 1 家（仍计滞后与指标）" in summary_lines_zh(progress)[0]
    assert "停产" not in summary_lines_zh(before)[0]
    # in business again: nothing said; closed while stopped: said as closed only
    state, _ = replay(events + [stopped, status("2026-07-01T09:00:00+08:00", "operating")], rules)
    assert _row(state, rules)["licence_zh"] == "" and county_progress(state, rules.policy.campaign)["summary"]["suspended"] == 0
    state, _ = replay(events + [stopped, status("2026-07-01T09:00:00+08:00", "deregistered")], rules)
    assert _row(state, rules)["licence_zh"] == "已注销（2026-07-01）" and county_progress(state, rules.policy.campaign)["summary"]["suspended"] == 0

def test_a_closure_closes_the_overdue_work_alerts_and_a_reopening_starts_afresh(rules):
    """The review of 注销: the 检查或抽检逾期未开展 alerts raised before the closure stayed open and escalated; a second
    closure moved its day silently; a producer in business again was overdue at once across its closed months;
    and `qrisk risk` ranked a closed producer among those to inspect first."""
    from alerts.lifecycle import AlertBook
    from processors.risk import rank
    from tests.test_risk import ev, registered

    def status(at, value):
        e = ev("enterprise.updated", at, status=value)
        return e.model_copy(update={"payload": e.payload.__class__(status=value)})

    def tick(at):
        return ev("clock.tick", at, enterprise_id="*")

    events = [registered("2026-01-05T09:00:00+08:00"), tick("2027-03-01T00:00:00+08:00"),
              status("2027-03-05T09:00:00+08:00", "deregistered"), status("2027-05-01T09:00:00+08:00", "deregistered"),
              tick("2027-06-20T00:00:00+08:00")]
    book, state, seen = AlertBook(), None, {}
    for e in events:
        state, effects = replay([e], rules, state) if state is not None else replay([e], rules)
        for change in book.apply(e, effects, rules.policy, lambda _: None):
            seen[change.alert.alert_id] = change.alert  # (as it last was: the book prunes closed ones in time)
    missing = [a for a in seen.values() if a.rule == "data.missing"]
    assert len(missing) == 2 and all(a.state == "closed" for a in missing), [(a.rule, a.state) for a in missing]
    assert all("注销" in a.steps[-1].note and not a.escalated_at for a in missing)
    f = state.files[E]
    assert f.deregistered_on.isoformat() == "2027-03-05" and not f.risk.missing  # the first closure's day stands
    assert [r["enterprise_id"] for r in rank(state, dt.date(2027, 6, 20))] == [E] and rank(state, dt.date(2027, 6, 20))[0]["next_due"] is None
    # in business again two years on: nothing is overdue the next day
    for e in [status("2029-03-01T09:00:00+08:00", "operating"), tick("2029-03-02T00:00:00+08:00")]:
        state, effects = replay([e], rules, state)
        assert not [x for x in effects if x.kind == "warning.raised"], [x.data.get("rule") for x in effects]
    assert state.files[E].risk.next_inspection_due > dt.date(2029, 3, 1)
