"""The campaign coordinator's review of the upgrade campaign's tracking (提档升级): same-day corrections and
retractions, the training report in force, month-end cuts, a retaken exam, rounding at the target, closed
and unregistered enterprises, the credit file's 待办, one tier rule, the wording."""
from __future__ import annotations

import datetime as dt
import json

from processors.campaign import county_progress, progress_row
from processors.step import replay
from tests.test_campaign import activity, commitment, comparison, tiering, training, whole_campaign
from tests.test_risk import E, ev, registered


def _row(state, rules, enterprise_id=E):
    return progress_row(state.files[enterprise_id], rules.policy.campaign)


# --------------------------------------------------------------------------- 1. same-day corrections


def test_a_tiering_corrected_the_same_day_is_the_starting_tier_and_the_tier_now(rules):
    """C mistyped, B sent the same day: both the starting tier and the tier now are B — not 已提档 C→B, and no
    帮扶指导 asked of a B-tier enterprise."""
    mistyped = tiering("C", "2026-03-20T15:00:00+08:00")
    fixed = tiering("B", "2026-03-20T18:00:00+08:00", note="更正：应为B档")
    state, effects = replay([registered(campaign_tier="C"), commitment(), mistyped, fixed], rules)
    row = _row(state, rules)
    assert (row["starting_tier"], row["tier"], row["upgraded"]) == ("B", "B", False)
    assert "帮扶指导" not in row["lag_reasons_zh"]
    (said,) = [e.data for e in effects if e.kind == "campaign.assessment_corrected"]
    assert said["corrects"] == str(mistyped.event_id) and said["message_zh"].startswith("2026-03-20 的调查分档记录已更正：C档 → B档")
    # whatever the loading order of two other days' tierings, the same-day pair reads the same
    later = tiering("A", "2026-06-01T10:00:00+08:00")
    a, _ = replay([registered(campaign_tier="C"), later, mistyped, fixed], rules)
    assert (_row(a, rules)["starting_tier"], _row(a, rules)["tier"]) == ("B", "A")
    from qrisk.credit_report import build_report

    rows = [r for r in build_report(state.files[E], rules)["campaign"] if r["item"] == "调查分档（2026-03-20）"]
    assert [r["status"] for r in rows] == ["C档（已更正）", "B档"] and "更正，不计入" in rows[0]["detail"]


def test_a_passed_acceptance_corrected_the_same_day_to_a_failure_is_one_failed_acceptance_not_a_reversal(rules):
    events = [e for e in whole_campaign() if not (e.event_type == "campaign.assessment" and e.payload.kind == "acceptance")]
    typo = tiering("A", "2026-10-15T15:00:00+08:00", kind="acceptance", passed=True)
    fixed = tiering("B", "2026-10-15T18:00:00+08:00", kind="acceptance", passed=False, note="更正：验收结论录入错误，应为未通过")
    state, effects = replay(events + [typo, fixed], rules)
    row = _row(state, rules)
    assert row["accepted_on"] is None and row["acceptance_failed"] == 1 and row["tier"] == "C"
    assert row["acceptance_result_zh"] == "验收未通过 1 次（最近 2026-10-15，县局调查分档组，更正：验收结论录入错误，应为未通过）"
    assert "复查" not in row["acceptance_result_zh"] and "已被推翻" not in row["lag_reasons_zh"]
    assert not [e for e in effects if e.kind == "campaign.acceptance_reversed"]
    (said,) = [e.data for e in effects if e.kind == "campaign.assessment_corrected"]
    assert said["message_zh"].startswith("2026-10-15 的检查验收记录已更正：通过，A档 → 未通过，B档")
    sm = county_progress(state, rules.policy.campaign)["summary"]
    assert (sm["accepted"], sm["last_acceptance_failed"], sm["acceptance_failed_ever"]) == (0, 1, 1)
    # the other way round: a failure corrected the same day to a pass is a pass, never failed
    state, _ = replay(events + [tiering("B", "2026-10-15T15:00:00+08:00", kind="acceptance", passed=False),
                                tiering("B", "2026-10-15T18:00:00+08:00", kind="acceptance", passed=True)], rules)
    row = _row(state, rules)
    assert (row["accepted_on"], row["acceptance_failed"], row["acceptance_result_zh"]) == ("2026-10-15", 0, "验收通过（2026-10-15）")


def retracted(target, at="2026-07-01T10:00:00+08:00", reason="误录入本企业名下（应为 E-2）", enterprise_id=E):
    return ev("campaign.retracted", at, enterprise_id, retracted_event_id=str(target.event_id), reason=reason)


def test_a_retracted_record_is_kept_on_file_and_no_longer_counts(rules):
    """A letter, a tiering, a training report, a visit and a comparison test filed under the wrong enterprise: each
    retraction takes its record out of the stages, the tier, the three ones and the KPIs, and keeps it on file."""
    from qrisk.credit_report import build_report

    events = whole_campaign()
    letter, tier, visit, report, test = events[1], events[2], events[3], events[5], events[7]
    state, _ = replay(events, rules)
    assert _row(state, rules)["stages"]["mobilisation"] == "2026-01-10"
    state, effects = replay([retracted(letter)], rules, state)
    c = state.files[E].campaign
    assert c.commitments == [] and c.commitment_signed_on is None and "mobilisation" not in c.stages
    (said,) = [e.data for e in effects if e.kind == "campaign.retracted"]
    assert said["record_type"] == "campaign.commitment" and not said["pending"]
    assert said["message_zh"].startswith("承诺书 TDSJ-2026-017（2026-01-10 签订，签字人 周建国（法定代表人））（事件 ")
    assert "已由县局提档升级办公室撤销（原因：误录入本企业名下（应为 E-2））" in said["message_zh"]
    assert [e.data["stage"] for e in effects if e.kind == "campaign.stage_lost"] == ["mobilisation"]
    row = _row(state, rules)
    assert row["commitment_signed_on"] is None and row["commitments_zh"] == ""
    # the tiering: no starting tier, no tier, the registry's tier the risk grade's again
    state, effects = replay([retracted(tier), retracted(visit), retracted(report), retracted(test)], rules, state)
    row = _row(state, rules)
    assert (row["starting_tier"], row["accepted_on"]) == (None, "2026-11-20")  # (the acceptance stands: it was not withdrawn)
    assert row["three_ones"] == {"training_and_exam": False, "self_inspection": True, "comparison_test": False}
    assert row["training_as_of"] is None and row["kpis"]["training_rate"]["value"] is None
    assert {"tiering", "training", "self_improvement"}.isdisjoint(row["stages"])
    assert state.files[E].campaign.visits == 0 and len(state.files[E].campaign.retractions) == 5
    rows = build_report(state.files[E], rules)["campaign"]
    withdrawn = [r for r in rows if r["status"] == "已撤销，不计入"]
    assert [r["item"] for r in withdrawn][:2] == ["已撤销·承诺书 TDSJ-2026-017（2026-01-10 签订，签字人 周建国（法定代表人））",
                                                  "已撤销·调查分档（2026-02-01，C档）"]
    assert all("误录入本企业名下" in r["detail"] for r in withdrawn) and len(withdrawn) == 5
    # the same retraction again says nothing
    _, effects = replay([retracted(letter, at="2026-07-02T10:00:00+08:00")], rules, state)
    assert effects == []


def test_a_retraction_before_its_record_files_the_record_retracted_in_either_order(rules):
    letter = commitment()
    withdrawal = retracted(letter, at="2026-01-09T10:00:00+08:00")
    state, effects = replay([registered(), withdrawal], rules)
    (said,) = [e.data for e in effects if e.kind == "campaign.retracted"]
    assert said["pending"] and said["message_zh"].startswith(f"本企业名下尚无事件 {letter.event_id} 的提档升级记录")
    state, effects = replay([letter], rules, state)
    (said,) = [e.data for e in effects if e.kind == "campaign.retracted"]
    assert said["arrived_after"] and said["record_type"] == "campaign.commitment" and "到达，但已于 2026-01-09 由" in said["message_zh"]
    assert not [e for e in effects if e.kind.startswith("campaign.stage")]
    other, _ = replay([registered(), letter, withdrawal], rules)
    for a, b in ((state, other),):
        ca, cb = a.files[E].campaign, b.files[E].campaign
        assert (ca.commitments, ca.stages, ca.commitment_signed_on) == (cb.commitments, cb.stages, cb.commitment_signed_on) == ([], {}, None)
        assert ca.retractions[str(letter.event_id)].record == cb.retractions[str(letter.event_id)].record


def test_a_retracted_passed_acceptance_takes_the_acceptance_and_its_checks_away(rules):
    events = whole_campaign()
    state, _ = replay(events, rules)
    state, effects = replay([retracted(events[-1], at="2026-12-01T10:00:00+08:00")], rules, state)
    row = _row(state, rules)
    assert (row["accepted_on"], row["tier"], row["upgraded"], row["stage"]) == (None, "C", False, "self_improvement")
    assert row["acceptance_result_zh"] == "未验收" and state.files[E].campaign.acceptance_checked_on is None
    assert [e.data["stage"] for e in effects if e.kind == "campaign.stage_lost"] == ["acceptance"]
    assert state.files[E].profile.campaign_tier == "C"


def _docs(events, source=None):
    docs = [json.loads(e.model_dump_json(exclude_unset=True)) for e in events]
    for d in docs:
        if source and d["event_type"] != "enterprise.registered":
            d["source"] = source
    return docs


OFFICE = {"kind": "bureau", "id": "campaign-office", "name": "县局提档升级办公室"}


def test_a_campaign_retraction_over_http_for_the_bureau_only_and_the_table_follows(server):
    from qrisk.auth import KeyStore

    keys = KeyStore(server.data_dir / "keys.json")
    _, bureau = keys.create("bureau", "campaign-office", source_id="campaign-office", actor="tests")
    _, lab = keys.create("lab", "lab-9", source_id="lab-001", actor="tests")
    as_bureau = {"authorization": f"Bearer {bureau}"}
    events = whole_campaign()
    assert server.post("/v1/events", json=_docs(events[:1])).status_code == 200
    assert server.post("/v1/events", json=_docs(events[1:], OFFICE), headers=as_bureau).status_code == 200
    withdrawal = _docs([retracted(events[1])], OFFICE)
    refused = server.post("/v1/events", json=withdrawal, headers={"authorization": f"Bearer {lab}"})
    assert refused.status_code == 403
    answer = server.post("/v1/events", json=withdrawal, headers=as_bureau)
    assert answer.status_code == 200 and "warnings" not in answer.json()["events"][0], answer.text
    (row,) = server.get("/v1/campaign").json()["rows"]
    assert row["commitment_signed_on"] is None and "mobilisation" not in row["stages"]
    report = server.get(f"/v1/enterprises/{E}?view=report").json()["campaign"]
    assert any(r["item"].startswith("已撤销·承诺书") for r in report)
    # a retraction naming nothing on file is kept, and the bureau hears it; its own id is refused by name
    unknown = _docs([ev("campaign.retracted", "2026-07-02T10:00:00+08:00", retracted_event_id="00000000-0000-4000-8000-0000000000aa",
                        reason="编号填错")], OFFICE)
    (entry,) = server.post("/v1/events", json=unknown, headers=as_bureau).json()["events"]
    assert [w["type"] for w in entry["warnings"]] == ["retraction_pending"] and "尚无事件" in entry["warnings"][0]["reason_zh"]
    # the record it names, arriving after it: filed retracted, and the sender hears it
    late = dict(_docs([activity("visit", "2026-07-03T10:00:00+08:00")], OFFICE)[0], event_id="00000000-0000-4000-8000-0000000000aa")
    (entry,) = server.post("/v1/events", json=[late], headers=as_bureau).json()["events"]
    assert [w["type"] for w in entry["warnings"]] == ["record_retracted"] and "到达前已被县局提档升级办公室撤销" in entry["warnings"][0]["reason_zh"]
    itself = dict(unknown[0], event_id="00000000-0000-4000-8000-0000000000bb")
    itself["payload"] = dict(itself["payload"], retracted_event_id=itself["event_id"])
    bad = server.post("/v1/events", json=[itself], headers=as_bureau)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "payload.retracted_event_id"


def test_a_campaign_retraction_by_import_and_through_the_bureaus_kafka_ingress_topic(tmp_path):
    """`qrisk import` into a data directory takes it as the HTTP door does; the bureau's ingress topic admits it (what a
    bureau key may post), the lab's does not."""
    import subprocess
    import sys

    from qrisk.topics import Topics
    from tests.conftest import ROOT

    events = whole_campaign()
    path = tmp_path / "campaign.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in _docs(events + [retracted(events[1])], OFFICE)), encoding="utf-8")

    def qrisk(*args):
        done = subprocess.run([sys.executable, "-m", "qrisk", *args], cwd=ROOT, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert json.loads(qrisk("import", str(path), "--data-dir", str(tmp_path / "data")))["accepted"] == len(events) + 1
    (row,) = json.loads(qrisk("campaign", "--data-dir", str(tmp_path / "data"), "--json"))["rows"]
    assert row["commitment_signed_on"] is None and "mobilisation" not in row["stages"]
    admissions = Topics("q").admissions()
    event = retracted(events[1]).model_copy(update={"source": events[1].source})
    assert admissions["q.ingress.bureau"].refusal(event) is None
    assert admissions["q.ingress.lab"].refusal(event)["type"] == "forbidden"


def test_a_retracted_tiering_gives_the_enterprise_its_registry_tier_back(rules):
    wrong = tiering("D", "2026-02-01T10:00:00+08:00")
    state, _ = replay([registered(campaign_tier="B"), wrong], rules)
    assert state.files[E].profile.campaign_tier == "D"
    state, effects = replay([retracted(wrong, at="2026-02-03T10:00:00+08:00")], rules, state)
    assert state.files[E].profile.campaign_tier == "B" and state.files[E].campaign.tier is None
    tier_term = next(c for c in state.files[E].risk.current.contributions if c.factor == "credit.campaign_tier")
    assert tier_term.detail_zh == "B 档"


# --------------------------------------------------------------------------- 2. the training report in force


def test_a_training_report_corrected_for_its_date_completes_nothing(rules):
    """Everyone trained (a typo), then the corrected report of the same as_of: 20 of 24 — not 自我提升 beside the lag
    reason 全员培训考试未完成."""
    typo = training(staff=24, trained=24, takers=24, first_pass=20, at="2026-05-15T17:00:00+08:00")
    fixed = training(staff=24, trained=20, takers=20, first_pass=17, at="2026-05-16T09:00:00+08:00")
    fixed = fixed.model_copy(update={"payload": fixed.payload.model_copy(update={"as_of": typo.payload.as_of})})
    rest = [registered(campaign_tier="C"), commitment(), tiering("B"),
            activity("self_inspection", "2026-05-20T10:00:00+08:00", findings=2, rectified=2), comparison()]
    state, effects = replay(rest + [typo, fixed], rules)
    row = _row(state, rules)
    assert row["three_ones"]["training_and_exam"] is False and "self_improvement" not in row["stages"]
    assert row["stage"] != "self_improvement" and "全员培训考试未完成（培训 20/24 人" in row["lag_reasons_zh"]
    (said,) = [e.data for e in effects if e.kind == "campaign.training_corrected"]
    assert said["corrects"] == str(typo.event_id) and said["message_zh"].startswith("2026-05-15 的培训考试报告已更正：培训 24/24 人")
    # in the other order the typo is the correction: the record follows the log
    state, _ = replay(rest + [fixed, typo], rules)
    assert "self_improvement" in _row(state, rules)["stages"]


# --------------------------------------------------------------------------- 3. month-end cuts and the stage dates


def test_the_csv_and_the_sheet_carry_the_date_each_stage_was_reached(rules):
    import io

    from openpyxl import load_workbook

    from processors.campaign import TABLE_COLUMNS, table_rows
    from qrisk.sheets import campaign_workbook

    state, _ = replay(whole_campaign(), rules)
    progress = county_progress(state, rules.policy.campaign)
    (row,) = table_rows(progress)
    assert {k: row[k] for k in TABLE_COLUMNS if k.endswith("_on") and k != "commitment_signed_on"} == {
        "mobilisation_on": "2026-01-10", "tiering_on": "2026-02-01", "training_on": "2026-03-01", "assistance_on": "2026-03-15",
        "self_improvement_on": "2026-06-01", "accepted_on": "2026-11-20"}
    ws = load_workbook(io.BytesIO(campaign_workbook(progress)))["提档升级进度"]
    cells = dict(zip((c.value for c in ws[1]), (c.value for c in ws[2])))
    # (date cells: a sheet filters them by month)
    assert (cells["宣传发动完成日期"], cells["自我提升完成日期"], cells["验收通过日期"]) == (
        dt.datetime(2026, 1, 10), dt.datetime(2026, 6, 1), dt.datetime(2026, 11, 20))


# --------------------------------------------------------------------------- 4. a retaken exam


def test_first_attempt_passes_rising_beyond_the_new_takers_are_said_to_be_checked(rules):
    """12 of 20 passed at the first attempt in May; June's report says 20 of the same 20: the eight retakes were
    counted as first passes.  The figure stands (qrisk cannot tell it from turnover), said 须核实 everywhere it shows."""
    from qrisk.credit_report import build_report

    may = training(staff=20, trained=20, takers=20, first_pass=12, posts=2, certified=2, at="2026-05-15T17:00:00+08:00")
    june = training(staff=20, trained=20, takers=20, first_pass=20, posts=2, certified=2, at="2026-06-15T17:00:00+08:00")
    state, effects = replay([registered(), may, june], rules)
    (said,) = [e.data for e in effects if e.kind == "campaign.first_pass_doubtful"]
    assert (said["previous_first_pass"], said["first_pass"], said["field"]) == (12, 20, "payload.exam_first_pass")
    assert said["message_zh"].startswith("一次通过人数由 12 人（2026-05-15 报告）增至 20 人（2026-06-15 报告），增加 8 人，而参加考试人数由 20 人变为 20 人、新增 0 人")
    k = _row(state, rules)["kpis"]["exam_first_pass_rate"]
    assert (k["value"], k["met"]) == (1.0, True) and k["doubt_zh"] == said["message_zh"]
    assert _row(state, rules)["kpi_doubts_zh"].startswith("食品安全在线考试一次通过率：一次通过人数由 12 人")
    assert county_progress(state, rules.policy.campaign)["summary"]["kpis"]["exam_first_pass_rate"]["doubtful"] == 1
    (kpi,) = [r for r in build_report(state.files[E], rules)["campaign"] if r["item"] == "食品安全在线考试一次通过率"]
    assert kpi["status"] == "达标（须核实）" and "可能将补考通过计入了一次通过" in kpi["detail"]
    # two new hires who passed at their first attempt are no doubt; loaded late, May's report puts June's in doubt, and
    # July's with it (20 + 2 new is more than the 12 + 2 May allows)
    july = training(staff=22, trained=22, takers=22, first_pass=22, posts=2, certified=2, at="2026-07-15T17:00:00+08:00")
    state, effects = replay([registered(), june, july], rules)
    assert not [e for e in effects if e.kind == "campaign.first_pass_doubtful"]
    state, effects = replay([may], rules, state)
    assert [e.data["as_of"] for e in effects if e.kind == "campaign.first_pass_doubtful"] == ["2026-06-15", "2026-07-15"]
    # July's report carries June's 20 forward (two new hires not yet examined): in doubt too, the KPI in force says so
    july = training(staff=22, trained=21, takers=20, first_pass=20, posts=2, certified=2, at="2026-07-15T17:00:00+08:00")
    state, effects = replay([registered(), may, june, july], rules)
    assert [x["as_of"] for x in state.files[E].campaign.first_pass_doubts] == ["2026-06-15", "2026-07-15"]
    k = _row(state, rules)["kpis"]["exam_first_pass_rate"]
    assert k["as_of"] == "2026-07-15" and k["doubt_zh"].startswith(
        "一次通过人数 20 人（2026-07-15 报告），上次报告（2026-06-15）的 20 人已须核实、此前可信的为 12 人，而参加考试人数由 20 人变为 20 人、新增 0 人："
        "一次通过人数最多应为 12 人")
    # the office corrects June's report (the same as_of) and sends July's again right: the doubt goes
    fixed = training(staff=20, trained=20, takers=20, first_pass=12, posts=2, certified=2, at="2026-06-16T09:00:00+08:00")
    fixed = fixed.model_copy(update={"payload": fixed.payload.model_copy(update={"as_of": june.payload.as_of})})
    state, _ = replay([registered(), may, june, fixed], rules)
    assert state.files[E].campaign.first_pass_doubts == [] and "doubt_zh" not in _row(state, rules)["kpis"]["exam_first_pass_rate"]


def test_the_door_answers_the_doubt_about_first_attempt_passes(server):
    from qrisk.auth import KeyStore

    _, bureau = KeyStore(server.data_dir / "keys.json").create("bureau", "campaign-office", source_id="campaign-office", actor="tests")
    may = training(staff=20, trained=20, takers=20, first_pass=12, at="2026-05-15T17:00:00+08:00")
    june = training(staff=20, trained=20, takers=20, first_pass=20, at="2026-06-15T17:00:00+08:00")
    assert server.post("/v1/events", json=_docs([registered()])).status_code == 200
    answer = server.post("/v1/events", json=_docs([may, june], OFFICE), headers={"authorization": f"Bearer {bureau}"}).json()
    # (both reports of the pair hear it: May's, loaded after June's, is what puts June's figure in doubt)
    for entry in answer["events"]:
        assert [w["type"] for w in entry["warnings"]] == ["first_pass_rise"]
        assert entry["warnings"][0]["field"] == "payload.exam_first_pass" and "须核实" in entry["warnings"][0]["reason_zh"]


# --------------------------------------------------------------------------- 5. rounding at the target


def test_a_missed_kpi_is_never_rounded_up_to_its_target_and_always_says_whether_it_is_met(rules, tmp_path):
    import io

    from openpyxl import load_workbook

    from processors.campaign import _pct, summary_lines_zh, table_rows
    from qrisk.sheets import campaign_workbook

    assert _pct(188 / 209, 0.9) == "89.95%" and _pct(719 / 799, 0.9) == "89.99%" and _pct(26 / 29, 0.9) == "89.7%"
    assert _pct(27 / 30, 0.9) == "90.0%" and _pct(0.9812, 0.981, above=True) == "98.12%" and _pct(0.981, 0.981, above=True) == "98.1%"
    state, _ = replay([registered(), training(staff=209, trained=188, takers=188, first_pass=150, posts=4, certified=4)], rules)
    row = _row(state, rules)
    k = row["kpis"]["training_rate"]
    assert (k["figure_zh"], k["met"], k["met_zh"]) == ("188/209 = 89.95%", False, "未达标")
    assert "从业人员培训率（188/209，89.95%，目标不低于 90.0%）未达标" in row["lag_reasons_zh"]
    progress = county_progress(state, rules.policy.campaign)
    head = summary_lines_zh(progress)[1]
    assert "从业人员培训率 188/209 = 89.95%，目标不低于 90.0%，未达标" in head and "关键岗位持证上岗率 4/4 = 100%，目标 100%，参考值（待核实），达标" in head
    (flat,) = table_rows(progress, zh=True)
    assert (flat["training_rate_met"], flat["key_posts_certified_rate_met"]) == ("未达标", "达标")
    assert table_rows(progress)[0]["training_rate_met"] is False
    book = load_workbook(io.BytesIO(campaign_workbook(progress)))
    ws = book["提档升级进度"]
    col = {c.value: i for i, c in enumerate(ws[1])}
    cell = ws[2][col["从业人员培训率"]]
    assert cell.number_format == "0.00%" and ws[2][col["培训率是否达标"]].value == "未达标"
    summary = {r[0].value: r for r in book["汇总"].iter_rows(min_row=2)}
    assert summary["全县从业人员培训率"][1].number_format == "0.00%" and summary["全县从业人员培训率"][2].value.endswith("，未达标")


def test_the_cli_table_shows_the_figure_and_whether_it_is_met(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    events = [registered(), training(staff=29, trained=26, takers=26, first_pass=22, posts=4, certified=4)]
    path = tmp_path / "e.jsonl"
    path.write_text("".join(e.model_dump_json(exclude_none=True) + "\n" for e in events), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "qrisk", "campaign", "--events", str(path)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "89.7% 未达标" in out.stdout and "90%" not in out.stdout and "84.6% 达标" in out.stdout


# --------------------------------------------------------------------------- 6. the county heading's count


def _closed(at, enterprise_id=E, status="deregistered"):
    e = ev("enterprise.updated", at, enterprise_id, status=status)
    return e.model_copy(update={"payload": e.payload.__class__(status=status)})


def _of(event, enterprise_id):
    return event.model_copy(update={"enterprise_id": enterprise_id})


def test_the_county_line_counts_the_reports_its_rates_sum_and_says_the_closed_ones_left_out(rules):
    from processors.campaign import summary_lines_zh

    events = []
    for n in range(3):
        eid = f"E-{n}"
        events += [registered(enterprise_id=eid), _of(training(staff=10, trained=10, takers=10, first_pass=9), eid)]
    state, _ = replay(events + [_closed("2026-06-01T10:00:00+08:00", "E-2")], rules)
    sm = county_progress(state, rules.policy.campaign)["summary"]
    assert sm["kpi_rates"]["training_rate"]["figure_zh"] == "20/20 = 100%"
    assert (sm["training_reports"]["enterprises"], sm["training_reports"]["left_out"]) == (2, 1)
    line = summary_lines_zh(county_progress(state, rules.policy.campaign))[1]
    assert line.startswith("全县指标（2 家企业最新培训考试报告，培训考试数据 2026-04-01；另有已注销或吊销许可证的 1 家企业的报告不计入）：")


# --------------------------------------------------------------------------- 7. an enterprise nobody registered


def test_a_comparison_test_before_registration_waits_and_is_judged_by_the_category_at_registration(rules):
    """铜绿假单胞菌 30 vs 20 CFU/250mL: 0.18 on the log10 scale, satisfactory — not 50 % relative deviation."""
    from processors.campaign import stage_lines_zh, summary_lines_zh

    test = activity("comparison_test", "2026-06-10T16:00:00+08:00", lab="县检测中心", item_code="pseudomonas_aeruginosa",
                    enterprise_value=30, lab_value=20)
    others = [registered(enterprise_id="E-2")]
    state, effects = replay(others + [test], rules)
    (x,) = state.files[E].campaign.comparison_tests
    assert x.satisfactory is None and not [e for e in effects if e.kind == "campaign.comparison_unsatisfactory"]
    progress = county_progress(state, rules.policy.campaign)
    assert [r["enterprise_id"] for r in progress["rows"]] == ["E-2"] and progress["summary"]["unregistered"] == [E]
    assert f"另有未登记的企业编号 1 个有提档升级记录，未列入（请核对企业编号：{E}）" in summary_lines_zh(progress)[0]
    assert stage_lines_zh(progress)  # (nothing counted for it)
    state, effects = replay([registered("2026-06-11T09:00:00+08:00", category="packaged_water")], rules, state)
    (x,) = state.files[E].campaign.comparison_tests
    assert x.satisfactory is True and x.log10_difference == __import__("pytest").approx(0.176, abs=1e-3) and x.item_name
    assert not [e for e in effects if e.kind == "campaign.comparison_unsatisfactory"]
    assert _row(state, rules)["three_ones"]["comparison_test"] is True


def test_campaign_records_of_an_unregistered_enterprise_are_warned_of_at_the_door_and_left_off_the_stage_panel(server):
    from qrisk.auth import KeyStore

    _, bureau = KeyStore(server.data_dir / "keys.json").create("bureau", "campaign-office", source_id="campaign-office", actor="tests")
    test = _of(activity("comparison_test", "2026-06-10T16:00:00+08:00", lab="县检测中心", item_code="pseudomonas_aeruginosa",
                        enterprise_value=30, lab_value=20), "E-NEW")
    letter = _of(commitment(), "E-NEW")
    answer = server.post("/v1/events", json=_docs([letter, test], OFFICE), headers={"authorization": f"Bearer {bureau}"})
    assert answer.status_code == 200
    said = [e["warnings"] for e in answer.json()["events"]]
    assert [[w["type"] for w in ws] for ws in said] == [["enterprise_unregistered"], ["enterprise_unregistered"]]
    assert "企业登记后列入进度表" in said[0][0]["reason_zh"] and "比对试验待企业登记（确定食品类别）后判定" in said[1][0]["reason_zh"]
    table = server.get("/v1/campaign").json()
    assert table["rows"] == [] and table["summary"]["unregistered"] == ["E-NEW"]


# --------------------------------------------------------------------------- 8. the credit file's 待办


def test_the_credit_files_todo_goes_by_the_documents_dates_as_the_table_does(rules):
    """A satisfactory comparison test loaded before an earlier unsatisfactory one; an older self-inspection with open
    findings loaded after a newer one that put everything right: nothing of either is left to do."""
    from qrisk.credit_report import build_report

    good = comparison(at="2026-07-10T16:00:00+08:00", mine=0.85, lab=0.82)
    bad = comparison(at="2026-07-20T16:00:00+08:00", mine=1.2, lab=0.8)
    bad = bad.model_copy(update={"payload": bad.payload.model_copy(update={"on": __import__("datetime").date(2026, 6, 10)})})
    newer = activity("self_inspection", "2026-07-21T10:00:00+08:00", findings=3, rectified=3)
    older = activity("self_inspection", "2026-07-22T10:00:00+08:00", findings=4, rectified=1)
    older = older.model_copy(update={"payload": older.payload.model_copy(update={"on": __import__("datetime").date(2026, 5, 1)})})
    state, _ = replay([registered(), good, bad, newer, older], rules)
    row = _row(state, rules)
    assert row["three_ones"]["comparison_test"] and "比对试验" not in row["lag_reasons_zh"] and "未整改" not in row["lag_reasons_zh"]
    (todo,) = [r["detail"] for r in build_report(state.files[E], rules)["campaign"] if r["item"] == "待办"]
    assert "比对试验" not in todo and "整改自查" not in todo
    # the newest self-inspection with open findings, the newest unsatisfactory test without a satisfactory one: said
    state, _ = replay([registered(), bad, comparison(at="2026-06-01T10:00:00+08:00", mine=1.3, lab=0.8),
                       activity("self_inspection", "2026-07-01T10:00:00+08:00", findings=4, rectified=1),
                       older.model_copy(update={"payload": older.payload.model_copy(update={"rectified": 4})})], rules)
    (todo,) = [r["detail"] for r in build_report(state.files[E], rules)["campaign"] if r["item"] == "待办"]
    assert "重新开展比对试验（2026-06-10 耗氧量（以O₂计） 结果不满意）" in todo and "整改自查发现的其余 3 项问题（2026-07-01 自查）" in todo


# --------------------------------------------------------------------------- 9. one tier rule


def test_an_enterprise_never_tiered_reads_the_same_everywhere(rules, tmp_path):
    import subprocess
    import sys

    from processors.campaign import table_rows
    from qrisk.credit_report import build_report, render_text
    from tests.conftest import ROOT

    events = [registered(campaign_tier="B"), commitment()]
    state, _ = replay(events, rules)
    row = _row(state, rules)
    assert (row["starting_tier"], row["tier"], row["registered_tier"], row["tier_zh"]) == (None, None, "B", "未分档（登记为 B档）")
    (flat,) = table_rows(county_progress(state, rules.policy.campaign), zh=True)
    assert (flat["starting_tier"], flat["tier"]) == ("未分档", "未分档（登记为 B档）")
    report = build_report(state.files[E], rules)
    assert dict((r["label"], r["value"]) for r in report["profile"])["提档升级档次"] == "未分档（登记为 B档）"
    assert next(r["status"] for r in report["campaign"] if r["item"] == "提档升级档次") == "未分档 → 未分档（登记为 B档）"
    assert "B档（提档升级评定" not in render_text(report)
    path = tmp_path / "e.jsonl"
    path.write_text("".join(e.model_dump_json(exclude_none=True) + "\n" for e in events), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "qrisk", "campaign", "--events", str(path)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and "未分档（登记为 B档）" in out.stdout and "—→" not in out.stdout
    # once tiered, the assessed tier everywhere
    state, _ = replay([tiering("C")], rules, state)
    assert (_row(state, rules)["tier_zh"], _row(state, rules)["starting_tier_zh"]) == ("C档", "C档")
    report = build_report(state.files[E], rules)
    assert dict((r["label"], r["value"]) for r in report["profile"])["提档升级档次"].startswith("C档（提档升级评定")


# --------------------------------------------------------------------------- 10. the wording


def test_work_on_file_without_a_stage_is_not_said_to_be_not_started(rules):
    from processors.campaign import stage_lines_zh

    state, _ = replay([registered(), registered(enterprise_id="E-2"),
                       activity("self_inspection", "2026-05-01T10:00:00+08:00", findings=1, rectified=1), comparison()], rules)
    progress = county_progress(state, rules.policy.campaign)
    rows = {r["enterprise_id"]: r for r in progress["rows"]}
    assert (rows[E]["stage"], rows[E]["stage_zh"], rows["E-2"]["stage_zh"]) == (None, "已开展工作，尚未完成任何阶段", "未启动")
    assert (progress["summary"]["not_started"], progress["summary"]["no_stage_yet"]) == (1, 1)
    assert stage_lines_zh(progress)[1].endswith("已开展工作，尚未完成任何阶段 1 家；未启动 1 家")


def test_the_kpi_line_counts_enterprises_and_says_how_many_have_no_data_and_closed_ones_are_marked(rules, tmp_path):
    import subprocess
    import sys

    from processors.campaign import kpi_line_zh, summary_lines_zh
    from tests.conftest import ROOT

    events = []
    for n in range(3):
        eid = f"E-{n}"
        events += [registered(enterprise_id=eid), _of(commitment(), eid), _of(tiering("C"), eid),
                   _of(training(staff=10, trained=10, takers=10, first_pass=9), eid)]
    events += [_of(tiering("B", "2026-11-20T10:00:00+08:00", kind="acceptance", passed=True), "E-2"), _closed("2026-12-01T10:00:00+08:00", "E-2")]
    events.append(_closed("2026-12-01T10:00:00+08:00", "E-1", status="suspended"))  # stopped: still counted, marked
    state, _ = replay(events, rules)
    progress = county_progress(state, rules.policy.campaign)
    line = kpi_line_zh(progress)
    assert line.startswith("指标达标（在营企业 2 家，不含已注销或吊销许可证的 1 家）：从业人员培训率 达标 2/2 家；")
    assert line.endswith("省级抽检合格率 达标 0/0 家（2 家无省级抽检数据）")
    head = summary_lines_zh(progress)[0]
    assert "；3 家企业（含已注销或吊销许可证的 1 家）；已提档 1 家（含已注销或吊销许可证的 1 家），验收通过 1 家（含已注销或吊销许可证的 1 家；其中 1 家" in head
    path = tmp_path / "e.jsonl"
    path.write_text("".join(e.model_dump_json(exclude_none=True) + "\n" for e in events), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "qrisk", "campaign", "--events", str(path)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "E-2 清源桶装水厂（已注销）" in out.stdout and "E-1 清源桶装水厂（停产）" in out.stdout and line in out.stdout
    assert "停产 1 家（仍计滞后与指标）" in head


def test_a_signatory_written_with_half_width_brackets_is_the_same_letter(rules):
    def letter(at, signatory, no="TDSJ-2026-002"):
        return ev("campaign.commitment", at, signed_on="2026-03-05", signatory=signatory, document_no=no)

    state, effects = replay([registered(), letter("2026-04-10T10:00:00+08:00", "李四（法定代表人）"),
                             letter("2026-04-12T10:00:00+08:00", "李四 (法定代表人)"),
                             letter("2026-04-13T10:00:00+08:00", "李四（法定代表人）", no="TDSJ－2026－002")], rules)
    assert len(state.files[E].campaign.commitments) == 1 and not [e for e in effects if e.kind == "campaign.second_commitment"]
    assert _row(state, rules)["commitments_zh"] == "TDSJ-2026-002（2026-03-05）"
    state, effects = replay([letter("2026-04-14T10:00:00+08:00", "王五（法定代表人）")], rules, state)
    assert [e.kind for e in effects].count("campaign.second_commitment") == 1


# --------------------------------------------------------------------------- the design questions


def test_an_enterprise_re_tiered_down_to_c_is_one_the_experts_go_to(rules):
    """B at the survey, C at the re-survey (复核降档): 帮扶指导 applies; accepted at B later, it ends where it began."""
    from qrisk.credit_report import build_report

    events = [registered(campaign_tier="B"), commitment(), tiering("B", "2026-03-20T15:00:00+08:00"),
              tiering("C", "2026-05-01T15:00:00+08:00", note="复核降档")]
    state, _ = replay(events, rules)
    row = _row(state, rules)
    assert (row["starting_tier"], row["tier"]) == ("B", "C") and "帮扶指导" in row["lag_reasons_zh"]
    assert next(r["status"] for r in build_report(state.files[E], rules)["campaign"] if r["item"] == "帮扶指导") == "未完成"
    only_b, _ = replay(events[:3], rules)
    detail = next(r for r in build_report(only_b.files[E], rules)["campaign"] if r["item"] == "帮扶指导")
    assert (detail["status"], detail["detail"]) == ("不适用", "调查分档为 B 档，不安排帮扶指导（仅 C、D 档企业安排）")
    state, _ = replay([tiering("B", "2026-10-20T15:00:00+08:00", kind="acceptance", passed=True)], rules, state)
    assert (_row(state, rules)["tier"], _row(state, rules)["upgraded"]) == ("B", False)  # (no net upgrade: README says why)


def test_a_campaign_record_dated_after_the_closure_is_kept_and_said(server):
    from qrisk.auth import KeyStore

    _, bureau = KeyStore(server.data_dir / "keys.json").create("bureau", "campaign-office", source_id="campaign-office", actor="tests")
    closed = json.loads(_closed("2026-07-01T10:00:00+08:00").model_dump_json(exclude_unset=True))
    assert server.post("/v1/events", json=_docs([registered()]) + [closed]).status_code == 200
    before = activity("visit", "2026-07-02T10:00:00+08:00")
    before = before.model_copy(update={"payload": before.payload.model_copy(update={"on": __import__("datetime").date(2026, 6, 20)})})
    after = activity("visit", "2026-07-05T10:00:00+08:00")
    answer = server.post("/v1/events", json=_docs([before, after], OFFICE), headers={"authorization": f"Bearer {bureau}"}).json()
    first, second = answer["events"]
    assert "warnings" not in first and [w["type"] for w in second["warnings"]] == ["enterprise_deregistered"]
    assert second["warnings"][0]["reason_zh"].startswith(f"企业 {E} 已于 2026-07-01 注销，本记录日期为 2026-07-05")
