"""The campaign officer's review: a comparison test exactly on its limit is satisfactory; its figure never reads as
the other side of a limit it was judged on; a record sent again under a new event id is not a second one; the
campaign workbook's dates are date cells a sheet sorts and filters by."""
from __future__ import annotations

import datetime as dt
import io
import json
import re
import subprocess
import sys

import pytest
from openpyxl import load_workbook

from processors.campaign import progress_row
from processors.step import FOLD_VERSION, replay
from tests.conftest import ROOT
from tests.test_campaign import activity, comparison, tiering, training, whole_campaign
from tests.test_risk import E, registered


def _compared(rules, item="oxygen_consumption", mine=1.0, lab=1.0, u=(None, None)):
    events = [registered("2026-01-05T09:00:00+08:00"),
              activity("comparison_test", "2026-06-01T10:00:00+08:00", lab="县食品检验检测中心", item_code=item,
                       enterprise_value=mine, lab_value=lab, enterprise_uncertainty=u[0], lab_uncertainty=u[1])]
    state, effects = replay(events, rules)
    return state, state.files[E].campaign.comparison_tests[-1], [e.kind for e in effects if e.kind.startswith("campaign.comparison")]


# ---------------------------------------------------------------- 1. exactly on the limit


@pytest.mark.parametrize("mine, lab, u", [
    (1.1, 1.0, (None, None)),    # 10 % computes 0.10000000000000009
    (0.33, 0.3, (None, None)),
    (0.72, 0.8, (None, None)),
    (0.9, 0.6, (0.18, 0.24)),    # En computes 1.0000000000000002
    (1.3, 1.0, (0.18, 0.24)),
])
def test_a_comparison_exactly_on_its_limit_is_satisfactory(rules, mine, lab, u):
    _, t, said = _compared(rules, mine=mine, lab=lab, u=u)
    assert (t.satisfactory, t.band) == (True, "satisfactory"), t.measure_zh
    assert said == []  # no campaign.comparison_unsatisfactory


@pytest.mark.parametrize("mine, lab, u", [(1.11, 1.0, (None, None)), (0.903, 0.6, (0.18, 0.24))])  # 11 %; En 1.01
def test_a_comparison_just_past_its_limit_is_unsatisfactory(rules, mine, lab, u):
    _, t, said = _compared(rules, mine=mine, lab=lab, u=u)
    assert (t.satisfactory, t.band) == (False, "unsatisfactory")
    assert said == ["campaign.comparison_unsatisfactory"]


# ---------------------------------------------------------------- 3. the figure reads as its band


def _shown(measure: str) -> float:
    found = re.search(r"(?:z|En) = (-?[\d.]+)（", measure) or re.search(r"相对偏差 ([\d.]+)%", measure)
    assert found, measure
    return float(found.group(1))


def _reads_as_judged(t, shown: float) -> None:
    if t.z is not None:
        assert (abs(shown) <= 2) == (t.band == "satisfactory"), (t.z, shown)
        assert (abs(shown) >= 3) == (t.band == "unsatisfactory"), (t.z, shown)
    elif t.en is not None:
        assert (abs(shown) <= 1) == t.satisfactory, (t.en, shown)
    else:
        assert (shown <= 10) == t.satisfactory, (t.deviation, shown)


@pytest.mark.parametrize("item, mine, lab, u, band, said", [
    ("pseudomonas_aeruginosa", 100, 317, (None, None), "questionable", "z = -2.004"),       # not "-2.00" beside |z| ≤ 2 满意
    ("pseudomonas_aeruginosa", 10, 56.234, (None, None), "questionable", "z = -2.9999"),    # −2.999996: not "-3.00"
    ("oxygen_consumption", 1.502, 1.0, (0.3, 0.4), "unsatisfactory", "En = 1.004"),         # not "1.00"
    ("oxygen_consumption", 0.5502, 0.5, (None, None), "unsatisfactory", "相对偏差 10.04%"),  # not "10.0%"
    ("pseudomonas_aeruginosa", 10, 100, (None, None), "unsatisfactory", "z = -4.00"),       # (σpt 0.25: a log10 apart is z −4)
    ("oxygen_consumption", 1.1, 1.0, (None, None), "satisfactory", "相对偏差 10.0%"),
])
def test_a_comparison_figure_never_reads_as_the_other_band(rules, item, mine, lab, u, band, said):
    _, t, _ = _compared(rules, item=item, mine=mine, lab=lab, u=u)
    assert t.band == band and said in t.measure_zh, t.measure_zh
    _reads_as_judged(t, _shown(t.measure_zh))


def test_the_credit_files_comparison_rows_say_the_figures_alike_without_the_folds_words(rules):
    """A test on file without its measure (kept by an older fold) is said from its En or deviation the same way."""
    from qrisk.credit_report import _comparison_rows

    for mine, lab, u, said in ((1.502, 1.0, (0.3, 0.4), "En = 1.004（"), (0.5502, 0.5, (None, None), "相对偏差 10.04%（≤ 10% 为满意）")):
        state, t, _ = _compared(rules, mine=mine, lab=lab, u=u)
        t.measure_zh = None
        (row,) = _comparison_rows(state.files[E], rules)
        assert said in row["detail"] and row["status"] == "不满意", row
        _reads_as_judged(t, _shown(row["detail"]))


# ---------------------------------------------------------------- 4. the same record sent again


def test_a_comparison_test_sent_again_under_a_new_event_id_counts_once(rules):
    from qrisk.credit_report import _comparison_rows

    events = [registered("2026-01-05T09:00:00+08:00"), comparison(mine=1.2, lab=0.8), comparison(mine=1.2, lab=0.8)]
    assert events[1].event_id != events[2].event_id
    state, effects = replay(events, rules)
    row = progress_row(state.files[E], rules.policy.campaign)
    assert (row["comparison_tests"], row["comparison_unsatisfactory"]) == (1, 1)
    assert [e.kind for e in effects].count("campaign.comparison_unsatisfactory") == 1
    assert len(_comparison_rows(state.files[E], rules)) == 1
    assert FOLD_VERSION >= 62  # (what the fold keeps changed)
    # another result of the same item on the same day, or the same values judged with other uncertainties, is a second test
    state, _ = replay([comparison(mine=1.1, lab=0.8), comparison(mine=1.2, lab=0.8, u_mine=0.3)], rules, state)
    assert len(state.files[E].campaign.comparison_tests) == 3
    # a test waiting for the enterprise's registration, sent again before it: one test judged at registration
    waiting = [activity("comparison_test", "2026-06-01T10:00:00+08:00", lab="省院", item_code="oxygen_consumption",
                        enterprise_value=0.5502, lab_value=0.5) for _ in range(2)]
    state, effects = replay(waiting + [registered("2026-06-05T09:00:00+08:00")], rules)
    assert len(state.files[E].campaign.comparison_tests) == 1
    assert [e.kind for e in effects].count("campaign.comparison_unsatisfactory") == 1


def test_a_self_inspection_or_visit_sent_again_is_on_file_once(rules):
    inspection = ("self_inspection", "2026-05-01T10:00:00+08:00")
    events = [registered("2026-01-05T09:00:00+08:00"),
              activity(*inspection, findings=3, rectified=2), activity(*inspection, findings=3, rectified=2),
              activity(*inspection, findings=3, rectified=3),  # (rectified since: another record)
              activity("visit", "2026-03-01T10:00:00+08:00", note="观摩 A 厂"), activity("visit", "2026-03-01T10:00:00+08:00", note="观摩 A 厂"),
              activity("visit", "2026-03-01T10:00:00+08:00", note="观摩 B 厂")]
    state, _ = replay(events, rules)
    c = state.files[E].campaign
    assert [(x.findings, x.rectified) for x in c.self_inspections] == [(3, 2), (3, 3)]
    assert [a.note for a in c.activities] == ["观摩 A 厂", "观摩 B 厂"] and c.visits == 2


def test_the_same_training_report_sent_again_is_no_correction(rules):
    events = [registered("2026-01-05T09:00:00+08:00"), training(), training()]
    state, effects = replay(events, rules)
    assert not [e for e in effects if e.kind == "campaign.training_corrected"]
    assert len(state.files[E].campaign.trainings) == 1
    # other figures of the same as_of are a correction, said with both
    state, effects = replay([training(trained=20)], rules, state)
    (said,) = [e.data for e in effects if e.kind == "campaign.training_corrected"]
    assert "培训 18/20 人" in said["message_zh"] and "→ 培训 20/20 人" in said["message_zh"]


# ---------------------------------------------------------------- 2. the campaign workbook's dates


DATE_COLUMNS = ("承诺书签订日期", "验收通过日期", "自我提升完成日期")


def _dates_are_date_cells(book) -> None:
    sheet = book["提档升级进度"]
    header = [c.value for c in sheet[1]]
    for column in DATE_COLUMNS:
        cell = sheet.cell(2, header.index(column) + 1)
        assert (cell.data_type, cell.number_format, cell.is_date) == ("d", "yyyy-mm-dd", True), (column, cell.value)
    assert sheet.cell(2, header.index("承诺书签订日期") + 1).value == dt.datetime(2026, 1, 10)
    summary = {row[0].value: row[1] for row in book["汇总"].iter_rows(min_row=2)}
    (as_of,) = [cell for label, cell in summary.items() if label.startswith(("数据截至", "最近记录"))]
    assert (as_of.data_type, as_of.number_format, as_of.is_date) == ("d", "yyyy-mm-dd hh:mm", True), as_of.value
    if "统计截止日" in summary:
        cut = summary["统计截止日"]
        assert (cut.data_type, cut.number_format, cut.value) == ("d", "yyyy-mm-dd", dt.datetime(2026, 11, 20))


def test_the_campaign_workbook_over_the_api_writes_dates_as_date_cells(server):
    from qrisk.auth import KeyStore

    _, bureau = KeyStore(server.data_dir / "keys.json").create("bureau", "campaign-office", source_id="campaign-office", actor="tests")
    docs = [json.loads(e.model_dump_json(exclude_unset=True)) for e in whole_campaign()]
    for d in docs[1:]:
        d["source"] = {"kind": "bureau", "id": "campaign-office"}
    assert server.post("/v1/events", json=docs[:1]).status_code == 200
    assert server.post("/v1/events", json=docs[1:], headers={"authorization": f"Bearer {bureau}"}).status_code == 200
    book = load_workbook(io.BytesIO(server.get("/v1/campaign?format=xlsx").content))
    _dates_are_date_cells(book)
    as_of = next(row[1].value for row in book["汇总"].iter_rows(min_row=2) if str(row[0].value).startswith("数据截至"))
    assert as_of == dt.datetime(2026, 11, 20, 10, 0)  # (the acceptance, the newest event, in Beijing time)


def test_qrisk_campaign_xlsx_writes_dates_as_date_cells(tmp_path):
    events = tmp_path / "campaign.jsonl"
    events.write_text("".join(e.model_dump_json(exclude_none=True) + "\n" for e in whole_campaign()), encoding="utf-8")
    for extra in ((), ("--as-of", "2026-11-20")):
        sheet = tmp_path / "campaign.xlsx"
        done = subprocess.run([sys.executable, "-m", "qrisk", "campaign", "--events", str(events), "--xlsx", str(sheet), *extra],
                              cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        _dates_are_date_cells(load_workbook(sheet))


# ---------------------------------------------------------------- 5. records told apart by their note; sent again after a correction


def _sample(note, mine, lab, item="pseudomonas_aeruginosa"):
    return activity("comparison_test", "2026-06-01T10:00:00+08:00", lab="县食品检验检测中心", item_code=item,
                    enterprise_value=mine, lab_value=lab, note=note)


@pytest.mark.parametrize("item, mine, lab, unsatisfactory", [
    ("pseudomonas_aeruginosa", 0, 0, 0),      # two samples both 未检出 (a colony count of 0 on both sides)
    ("pseudomonas_aeruginosa", 10, 100, 2),   # two samples, each a count an order of magnitude off
    ("oxygen_consumption", 1.2, 0.8, 2),      # two samples, each 50 % off the lab
])
def test_two_samples_compared_the_same_day_with_the_same_figures_are_two_tests(rules, item, mine, lab, unsatisfactory):
    events = [registered("2026-01-05T09:00:00+08:00"), _sample("样品 20260601-1 号桶", mine, lab, item),
              _sample("样品 20260601-2 号桶", mine, lab, item)]
    state, effects = replay(events, rules)
    row = progress_row(state.files[E], rules.policy.campaign)
    assert (row["comparison_tests"], row["comparison_unsatisfactory"]) == (2, unsatisfactory)
    said = [e.data for e in effects if e.kind == "campaign.comparison_unsatisfactory"]
    assert len(said) == unsatisfactory
    assert [t.note for t in state.files[E].campaign.comparison_tests] == ["样品 20260601-1 号桶", "样品 20260601-2 号桶"]
    # (each says which sample it was, or the two would read alike)
    assert [d["note"] for d in said] == ["样品 20260601-1 号桶", "样品 20260601-2 号桶"][:unsatisfactory]
    assert all(d["message_zh"].startswith("比对试验（") and f"，{d['note']}）结果不满意" in d["message_zh"] for d in said)
    # the same sample sent again (its note in full-width brackets or spaced otherwise is the same note) is still one
    state, effects = replay([_sample("样品　20260601-1 号桶", mine, lab, item)], rules, state)
    assert len(state.files[E].campaign.comparison_tests) == 2 and not [e for e in effects if e.kind.startswith("campaign.comparison")]


def test_a_sample_waiting_for_registration_keeps_its_note_and_is_told_from_another(rules):
    waiting = [activity("comparison_test", "2026-06-01T10:00:00+08:00", lab="省院", item_code="oxygen_consumption",
                        enterprise_value=0.5502, lab_value=0.5, note=note) for note in ("样品 A", "样品 B", "样品 A")]
    state, effects = replay(waiting + [registered("2026-06-05T09:00:00+08:00")], rules)
    assert [e.kind for e in effects].count("campaign.comparison_unsatisfactory") == 2
    assert [(t.note, t.satisfactory) for t in state.files[E].campaign.comparison_tests] == [("样品 A", False), ("样品 B", False)]
    assert [e.data["note"] for e in effects if e.kind == "campaign.comparison_unsatisfactory"] == ["样品 A", "样品 B"]


def test_two_workshops_self_inspected_the_same_day_with_nothing_found_are_two(rules):
    inspection = ("self_inspection", "2026-05-01T10:00:00+08:00")
    events = [registered("2026-01-05T09:00:00+08:00"), activity(*inspection, findings=0, rectified=0, note="原料库"),
              activity(*inspection, findings=0, rectified=0, note="灌装车间"), activity(*inspection, findings=0, rectified=0, note="原料库")]
    state, _ = replay(events, rules)
    assert len(state.files[E].campaign.self_inspections) == 2
    assert [(x.note, x.findings) for x in state.files[E].campaign.self_inspections] == [("原料库", 0), ("灌装车间", 0)]


def test_the_credit_report_tells_two_same_day_records_apart_by_their_notes(rules):
    from qrisk.credit_report import _campaign_rows, _comparison_rows

    events = [registered("2026-01-05T09:00:00+08:00"), _sample("样品 20260601-1 号桶", 10, 100),
              _sample("样品 20260601-2 号桶", 10, 100),
              activity("self_inspection", "2026-05-01T10:00:00+08:00", findings=0, rectified=0, note="原料库"),
              activity("self_inspection", "2026-05-01T10:00:00+08:00", findings=0, rectified=0, note="灌装车间")]
    state, _ = replay(events, rules)
    items = [row["item"] for row in _comparison_rows(state.files[E], rules)]
    assert len(items) == 2 and "样品 20260601-1 号桶" in items[0] and "样品 20260601-2 号桶" in items[1]
    text = str(_campaign_rows(state.files[E], rules))
    assert "原料库" in text and "灌装车间" in text


def test_an_assessment_sent_again_is_no_correction_of_itself(rules):
    events = [registered("2026-01-05T09:00:00+08:00"), tiering("C", assessor="县局评定组"), tiering("C", assessor="县局评定组")]
    state, effects = replay(events, rules)
    c = state.files[E].campaign
    assert [(a.tier, a.event_id) for a in c.assessments] == [("C", str(events[1].event_id))]
    assert not [e for e in effects if e.kind == "campaign.assessment_corrected"]
    assert [e.kind for e in effects].count("campaign.assessed") == 1
    # another tier the same day is a correction, said once, from what to what
    state, effects = replay([tiering("B", assessor="县局评定组")], rules, state)
    (said,) = [e.data for e in effects if e.kind == "campaign.assessment_corrected"]
    assert "C档 → B档" in said["message_zh"] and (state.files[E].campaign.tier, len(state.files[E].campaign.assessments)) == ("B", 2)
    # a passed acceptance sent again says its checks (须核实) once, and is one acceptance
    passed = [tiering("B", "2026-11-20T10:00:00+08:00", kind="acceptance", passed=True, assessor="市局验收组") for _ in range(2)]
    state, effects = replay(passed, rules, state)
    assert [e.kind for e in effects].count("campaign.accepted_with_gaps") == 1
    assert not [e for e in effects if e.kind == "campaign.assessment_corrected"]
    assert [a.kind for a in state.files[E].campaign.assessments].count("acceptance") == 1


def test_an_earlier_register_loaded_again_after_its_correction_does_not_undo_it(rules):
    first, corrected, first_again = training(trained=18), training(trained=20), training(trained=18)
    state, effects = replay([registered("2026-01-05T09:00:00+08:00"), first, corrected, first_again], rules)
    (said,) = [e.data for e in effects if e.kind == "campaign.training_corrected"]
    assert "已更正：培训 18/20 人" in said["message_zh"] and "→ 培训 20/20 人" in said["message_zh"]
    c = state.files[E].campaign
    assert c.training["staff_trained"] == 20 and [t["staff_trained"] for t in c.trainings] == [18, 20]
    # so with an assessment: C corrected to B the same day, then C's record loaded again — B stands
    state, effects = replay([tiering("C", assessor="县局评定组"), tiering("B", assessor="县局评定组"), tiering("C", assessor="县局评定组")],
                            rules, state)
    assert [e.kind for e in effects].count("campaign.assessment_corrected") == 1 and state.files[E].campaign.tier == "B"
    # the way back to the earlier figures is to retract the correction
    from tests.test_campaign_coordinator import retracted
    state, _ = replay([retracted(corrected)], rules, state)
    assert state.files[E].campaign.training["staff_trained"] == 18
    assert FOLD_VERSION >= 65  # (what the fold keeps changed)
