"""A sample's report sent again under a new event id: a repeat, a correction, another lab's result,
or an earlier report arriving late — one sample on file, counted once, by its latest report."""
from __future__ import annotations

import copy
import datetime as dt
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.lifecycle import AlertBook, Enterprise
from ingest.lint import event_warnings
from qrisk.pipeline import JUDGEMENT_COLUMNS
from processors.credit_file import CountyState
from processors.fluctuation import period_of
from processors.step import Rules, replay, step
from schemas.policy import Policy
from schemas.upcast import parse_event
from tests.conftest import golden, lab_source

E = "E-330110-001"
RETEST_LAB = "市食品药品检验研究院"
_n = 0


def _id() -> str:
    global _n
    _n += 1
    return str(uuid.UUID(int=10_000 + _n, version=4))


def sample(at: str, passes: bool = True, retest: bool = False, microbial: bool = False, bromate: float = 0.02, **payload):
    """The golden water sample: passing, or failing on bromate (a re-test is admitted) or with
    ``microbial`` on 铜绿假单胞菌 (不予复检)."""
    doc = golden("sampling.result")
    doc["event_id"], doc["occurred_at"] = _id(), at
    items = copy.deepcopy(doc["payload"]["items"])
    assert items[0]["item_code"] == "pseudomonas_aeruginosa" and items[2]["item_code"] == "bromate"
    if passes or not microbial:
        items[0]["values"], items[0]["lab_verdict"] = [0, 0, 0, 0, 0], "合格"
    if not passes and not microbial:
        items[2]["values"], items[2]["lab_verdict"] = [bromate], "不合格"  # GB 19298: bromate ≤ 0.01 mg/L
    if retest:
        payload.setdefault("lab", RETEST_LAB)
    doc["payload"].update(items=items, retest=retest, **payload)
    doc["source"] = lab_source(doc["payload"]["lab"])
    return parse_event(doc)


def resend(event, at: str | None = None):
    """The same report under a new event id (a lab system's new send attempt)."""
    doc = event.model_dump(mode="json", exclude_unset=True)
    doc["event_id"] = _id()
    if at is not None:
        doc["occurred_at"] = at
    return parse_event(doc)


REG = parse_event(golden("enterprise.registered"))


def fold(rules, *events):
    state, effects = replay([REG, *events], rules)
    return state, state.files[E], effects


def sampled(f):
    return (f.counts.samples, f.counts.samples_passed, f.counts.samples_failed)


def of(effects, event, kind=None):
    return [e for e in effects if e.event_id == str(event.event_id) and (kind is None or e.kind == kind)]


def failed_entries(f):
    return [e for e in f.risk.entries if e[1] == "sampling_failed"]


def p_chart(f):
    return {k: (pc.n, pc.failed) for k, pc in f.fluctuation.pass_rate.items()}


def unqualified(effects):
    return [e.data for e in effects if e.kind == "warning.raised" and e.data["rule"] == "sampling.unqualified"]


# --------------------------------------------------------------------------- a repeated report


def test_an_identical_resend_is_one_sample_said_as_a_repeat(rules):
    first = sample("2026-03-12T15:20:00+08:00", passes=False)
    again = resend(first, at="2026-03-12T15:25:00+08:00")
    state, f, effects = fold(rules, first, again)
    assert sampled(f) == (1, 0, 1) and f.pass_rate == 0.0
    assert p_chart(f) == {"2026Q1": (1, 1)} and f.fluctuation.failing_items == {"bromate": 1}
    assert len(failed_entries(f)) == 1
    # nothing of the repeat is counted, judged, charted or alerted ...
    assert [e.kind for e in of(effects, again)] == ["sampling.repeated_report"]
    assert not any(e.kind == "fluctuation.signal" and e.data.get("chart") == "p" for e in effects)
    assert len(unqualified(effects)) == 1
    assert all(s.monitor.count == 1 for s in f.fluctuation.series.values())
    # ... and it is said, with both events, and kept on file marked
    (said,) = of(effects, again)
    assert said.data["repeats_event_id"] == str(first.event_id) and said.data["sample_event_id"] == str(again.event_id)
    assert "重复报送" in said.data["message_zh"] and str(first.event_id) in said.data["message_zh"]
    record = f.sample_by_event(str(again.event_id))
    assert (record.superseded_by, record.superseded_as) == (str(first.event_id), "repeated")
    assert [s.event_id for s in f.final_samples()] == [str(first.event_id)]
    assert "重复报送" in record.superseded_zh()


@pytest.mark.parametrize("registered_first", [True, False], ids=["judged", "waiting for registration"])
def test_a_resend_listing_the_lines_in_another_order_is_a_repeat(rules, registered_first):
    """A lab integrator's finding: the same report with its test lines in another order (an item code appears
    once: the order means nothing) was taken as a correction, the first report filed as corrected."""
    first = sample("2026-03-12T15:20:00+08:00", passes=False)
    doc = first.model_dump(mode="json", exclude_unset=True)
    doc["event_id"], doc["occurred_at"] = _id(), "2026-03-12T15:25:00+08:00"
    doc["payload"]["items"] = list(reversed(doc["payload"]["items"]))
    again = parse_event(doc)
    events = [REG, first, again] if registered_first else [first, again, REG]
    state, effects = replay(events, rules)
    f = state.files[E]
    assert sampled(f) == (1, 0, 1)
    record = f.sample_by_event(str(again.event_id))
    assert (record.superseded_by, record.superseded_as) == (str(first.event_id), "repeated")
    assert not [e for e in effects if e.kind == "sampling.corrected"]
    # a line really changed is still a correction
    doc["event_id"], doc["occurred_at"] = _id(), "2026-03-12T15:30:00+08:00"
    doc["payload"]["items"][-1]["values"] = [v + 1 if not isinstance(v, str) else v for v in doc["payload"]["items"][-1]["values"]]
    state, effects = replay([REG, first, parse_event(doc)], rules)
    assert [e for e in effects if e.kind == "sampling.corrected"]


def test_a_retest_window_counts_calendar_days_where_the_bureau_is(rules):
    """A lab integrator's finding: the 45-day window counted 24-hour periods, so a re-test at 00:30 on the 46th local
    day after an original reported at 23:30 was admitted."""
    original = sample("2026-04-10T23:30:00+08:00", passes=False)
    late = sample("2026-05-26T00:30:00+08:00", passes=True, retest=True)
    state, effects = replay([REG, original, late], rules)
    f = state.files[E]
    assert sampled(f) == (1, 0, 1)
    (refused,) = [e for e in effects if e.kind == "sampling.retest_inadmissible"]
    assert refused.data["reason"] == "late" and "46 天" in refused.data["reason_zh"]
    in_time = sample("2026-05-25T23:59:00+08:00", passes=True, retest=True)  # the 45th local day
    state, _ = replay([REG, original, in_time], rules)
    assert sampled(state.files[E]) == (1, 1, 0)


def test_a_repeat_does_not_raise_the_failure_alert_again(rules):
    """The reviewers' case: the failure alert's occurrences went to 2 and the p chart said 系统性问题."""
    first = sample("2026-03-12T15:20:00+08:00", passes=False)
    book, state = AlertBook(), CountyState()

    def info(eid):
        p = state.files[eid].profile
        return Enterprise(p.name, p.town, p.category)

    for e in (REG, first, resend(first), resend(first)):
        state, effects = step(state, e, rules)
        book.apply(e, effects, rules.policy, info)
    (alert,) = [a for a in book.alerts.values() if a.rule == "sampling.unqualified"]
    assert alert.occurrences == 1
    assert not [a for a in book.alerts.values() if a.rule == "fluctuation.signal"]


def test_a_unit_written_otherwise_is_the_same_report(rules):
    first = sample("2026-03-12T15:20:00+08:00", passes=False)
    doc = resend(first).model_dump(mode="json", exclude_unset=True)
    doc["payload"]["items"][2].update(values=[0.00002], unit="g/L", detection_limit=0.000005)  # 0.02 mg/L, its limit 0.005 mg/L
    doc["payload"]["remarks"] = "第二次发送"  # not kept by qrisk: no other report
    again = parse_event(doc)
    state, f, effects = fold(rules, first, again)
    assert [e.kind for e in of(effects, again)] == ["sampling.repeated_report"]
    assert sampled(f) == (1, 0, 1)


# --------------------------------------------------------------------------- corrections


def test_a_failure_corrected_to_a_pass_is_overturned(rules):
    first = sample("2026-03-12T15:20:00+08:00", passes=False)
    state, f, _ = fold(rules, first)
    score = f.risk.score
    fixed = sample("2026-03-14T10:00:00+08:00", passes=True)
    state, effects = step(state, fixed, rules)
    f = state.files[E]
    assert sampled(f) == (1, 1, 0) and f.pass_rate == 1.0
    assert p_chart(f) == {"2026Q1": (1, 0)} and f.fluctuation.failing_items == {}
    assert failed_entries(f) == [] and f.risk.score < score
    kinds = [e.kind for e in effects]
    assert "sampling.failed" not in kinds and "warning.raised" not in kinds
    (corrected,) = of(effects, fixed, "sampling.corrected")
    d = corrected.data
    assert (d["corrects_event_id"], d["previous_verdict"], d["verdict"], d["counts"]) == (str(first.event_id), "fail", "pass", True)
    assert d["message_zh"].startswith(f"抽样编号 {first.payload.sample_no}（饮用纯净水）检验结果已更正：结论由不合格改为合格")
    assert "溴酸盐由 0.02 mg/L 改为 未检出" in d["message_zh"]
    assert d["changes"] == [{"item_code": "bromate", "from": "0.02 mg/L", "to": "未检出", "text_zh": "溴酸盐由 0.02 mg/L 改为 未检出"}]
    (overturned,) = of(effects, fixed, "sampling.overturned")
    assert overturned.data["original_event_id"] == str(first.event_id) and "原不合格结论不再计入" in overturned.data["message_zh"]
    old, new = f.sample_by_event(str(first.event_id)), f.sample_by_event(str(fixed.event_id))
    assert (old.superseded_by, old.superseded_as, new.corrects) == (str(fixed.event_id), "corrected", str(first.event_id))
    assert [s.event_id for s in f.final_samples()] == [str(fixed.event_id)]
    assert "更正" in old.superseded_zh()
    # the judgements row of the correction names what it corrected (the derived tables rewrite that row)
    (judged,) = of(effects, fixed, "sampling.judged")
    assert judged.data["corrects_event_id"] == str(first.event_id)


def test_a_pass_corrected_to_a_failure_counts_and_alerts_once(rules):
    first = sample("2026-03-12T15:20:00+08:00", passes=True)
    fixed = sample("2026-03-14T10:00:00+08:00", passes=False)
    state, f, effects = fold(rules, first, fixed)
    assert sampled(f) == (1, 0, 1) and f.pass_rate == 0.0
    assert p_chart(f) == {"2026Q1": (1, 1)} and f.fluctuation.failing_items == {"bromate": 1}
    (entry,) = failed_entries(f)
    assert entry[3] == str(fixed.event_id)
    assert len(of(effects, fixed, "sampling.failed")) == 1
    (warned,) = unqualified(effects)
    assert warned["event_id"] == str(fixed.event_id) and "溴酸盐" in warned["message_zh"]
    assert not any(e.kind == "fluctuation.signal" and e.data.get("chart") == "p" for e in effects)


def test_a_failure_corrected_into_another_failure_is_not_raised_again(rules):
    first = sample("2026-03-12T15:20:00+08:00", passes=False, bromate=0.02)
    fixed = sample("2026-03-14T10:00:00+08:00", passes=False, bromate=0.03)
    state, f, effects = fold(rules, first, fixed)
    assert sampled(f) == (1, 0, 1) and p_chart(f) == {"2026Q1": (1, 1)} and f.fluctuation.failing_items == {"bromate": 1}
    assert [e.kind for e in of(effects, fixed) if e.kind.startswith("sampling.")] == ["sampling.judged", "sampling.corrected", "sampling.failed"]
    # the failure's alert takes the corrected evidence (报告更正, tests/test_alert_evidence_corrected.py): no new occurrence
    (refiled,) = of(effects, fixed, "sampling.failed")
    assert refiled.data["corrects_event_id"] == str(first.event_id) and "溴酸盐由 0.02 mg/L 改为 0.03 mg/L" in refiled.data["correction_zh"]
    assert [w["evidence"].get("corrected_from") for w in unqualified(effects)] == [None, str(first.event_id)]
    (entry,) = failed_entries(f)
    assert entry[3] == str(fixed.event_id)  # the grade's evidence is the corrected report
    (d,) = [e.data for e in of(effects, fixed, "sampling.corrected")]
    assert "结论仍为不合格" in d["message_zh"] and "溴酸盐由 0.02 mg/L 改为 0.03 mg/L" in d["message_zh"]


def test_a_correction_that_adds_a_second_failure_in_the_period_may_signal(rules):
    """The correction counts as any report: two real failures in a quarter are the p chart's business."""
    other = sample("2026-03-02T09:00:00+08:00", passes=False, sample_no="DC26330110000100")
    first = sample("2026-03-12T15:20:00+08:00", passes=True)
    fixed = sample("2026-03-14T10:00:00+08:00", passes=False)
    state, f, effects = fold(rules, other, first, fixed)
    assert sampled(f) == (2, 0, 2) and p_chart(f) == {"2026Q1": (2, 2)}
    signals = [e.data for e in of(effects, fixed, "fluctuation.signal") if e.data.get("chart") == "p"]
    # the county's chart counts both, and waits for a second producer (spc.category_min_enterprises) before it speaks
    assert [s["scope"] for s in signals] == ["enterprise"]
    county = state.categories[f.profile.category].periods["2026Q1"]
    assert (county.n, county.failed) == (2, 2) and [x[2] for x in county.failures] == [str(other.event_id), str(fixed.event_id)]


def test_a_correction_changes_the_sampling_date_and_the_period(rules):
    first = sample("2026-03-12T15:20:00+08:00", passes=False, sampled_on="2026-03-30")
    fixed = sample("2026-04-14T10:00:00+08:00", passes=False, sampled_on="2026-04-02")
    state, f, effects = fold(rules, first, fixed)
    assert sampled(f) == (1, 0, 1) and p_chart(f) == {"2026Q1": (0, 0), "2026Q2": (1, 1)}
    assert f.risk.last_sampled_on == dt.date(2026, 4, 2) and f.risk.last_sample_event_id == str(fixed.event_id)
    (d,) = [e.data for e in of(effects, fixed, "sampling.corrected")]
    assert "抽样日期由“2026-03-30”改为“2026-04-02”" in d["message_zh"]


def test_a_correction_of_a_correction_follows_the_latest(rules):
    first = sample("2026-03-12T15:20:00+08:00", passes=False)
    second = sample("2026-03-13T10:00:00+08:00", passes=True)
    third = sample("2026-03-14T10:00:00+08:00", passes=False, bromate=0.05)
    state, f, effects = fold(rules, first, second, third)
    assert sampled(f) == (1, 0, 1) and p_chart(f) == {"2026Q1": (1, 1)} and f.fluctuation.failing_items == {"bromate": 1}
    assert [s.event_id for s in f.final_samples()] == [str(third.event_id)]
    assert f.sample_by_event(str(second.event_id)).superseded_by == str(third.event_id)
    assert of(effects, third, "sampling.corrected")[0].data["corrects_event_id"] == str(second.event_id)
    (entry,) = failed_entries(f)
    assert entry[3] == str(third.event_id)


# --------------------------------------------------------------------------- another lab, a late report


def test_another_labs_result_under_the_number_is_no_correction(rules):
    """A lab cannot correct another's report, and a re-test without the flag must not get round the
    re-test rules (here: a microbial failure, 不予复检)."""
    first = sample("2026-03-12T15:20:00+08:00", passes=False, microbial=True)
    other = sample("2026-03-20T10:00:00+08:00", passes=True, lab=RETEST_LAB)
    state, f, effects = fold(rules, first, other)
    assert sampled(f) == (1, 0, 1) and len(failed_entries(f)) == 1
    assert [e.kind for e in of(effects, other)] == ["sampling.sample_no_conflict"]
    (d,) = [e.data for e in of(effects, other)]
    assert (d["on_file_event_id"], d["lab"], d["on_file_lab"]) == (str(first.event_id), RETEST_LAB, first.payload.lab)
    assert "未标注复检" in d["message_zh"] and "retest: true" in d["message_zh"] and "不计入统计" in d["message_zh"]
    record = f.sample_by_event(str(other.event_id))
    assert (record.superseded_by, record.superseded_as) == (str(first.event_id), "other_lab")
    assert record.judgement is not None and record.judgement.verdict == "pass"  # on file, for the supervisor to read


@pytest.mark.parametrize("order", ["in order", "the correction first"])
def test_event_time_decides_which_report_is_the_latest(rules, order):
    """A stuck send attempt of the first report delivered after its correction does not undo it."""
    first = sample("2026-03-12T15:20:00+08:00", passes=False)
    fixed = sample("2026-03-14T10:00:00+08:00", passes=True)
    state, f, effects = fold(rules, *([first, fixed] if order == "in order" else [fixed, first]))
    assert sampled(f) == (1, 1, 0) and failed_entries(f) == [] and f.fluctuation.failing_items == {}
    assert [s.event_id for s in f.final_samples()] == [str(fixed.event_id)]
    if order == "the correction first":
        assert [e.kind for e in of(effects, first)] == ["sampling.report_outdated"]
        assert f.sample_by_event(str(first.event_id)).superseded_as == "outdated"
        assert not unqualified(effects)
        assert p_chart(f) == {"2026Q1": (1, 0)}


def test_a_resend_before_registration_waits_once(rules):
    first = sample("2026-03-12T15:20:00+08:00", passes=False)
    fixed = sample("2026-03-14T10:00:00+08:00", passes=True)
    state, effects = replay([first, resend(first), fixed], rules)
    f = state.files[E]
    assert (f.counts.samples, f.counts.samples_undetermined) == (1, 1)
    # the corrected report's lines wait too (they stand should the correction judge undetermined); a repeat's do not
    assert [s.pending is not None for s in f.samples] == [True, False, True]
    assert [e.kind for e in effects if e.kind.startswith("sampling.")] == [
        "sampling.awaiting_registration", "sampling.repeated_report", "sampling.corrected"]
    state, effects = step(state, REG, rules)
    f = state.files[E]
    assert sampled(f) == (1, 1, 0) and f.counts.samples_undetermined == 0
    assert [s.event_id for s in f.final_samples()] == [str(fixed.event_id)]
    assert not any(e.kind == "sampling.failed" for e in effects)
    assert all(s.pending is None for s in f.samples)  # judged or filed aside: nothing waits any more


# --------------------------------------------------------------------------- with re-tests (复检)


def test_a_correction_of_an_original_its_retest_decided_changes_no_count(rules):
    original = sample("2026-03-10T09:00:00+08:00", passes=False)
    retest = sample("2026-03-25T09:00:00+08:00", passes=True, retest=True)
    fixed = sample("2026-03-26T09:00:00+08:00", passes=False, bromate=0.04)
    state, f, effects = fold(rules, original, retest, fixed)
    assert sampled(f) == (1, 1, 0) and failed_entries(f) == [] and f.fluctuation.failing_items == {}
    assert [s.event_id for s in f.final_samples()] == [str(retest.event_id)]
    record = f.sample_by_event(str(fixed.event_id))
    assert (record.superseded_by, record.superseded_as, record.corrects) == (str(retest.event_id), "retest", str(original.event_id))
    assert [e.kind for e in of(effects, fixed) if e.kind.startswith("sampling.")] == ["sampling.judged", "sampling.corrected"]
    (d,) = [e.data for e in of(effects, fixed, "sampling.corrected")]
    assert d["counts"] is False and "以复检结论为准" in d["message_zh"]


def test_a_retest_corrected_to_a_failure_upholds_the_original(rules):
    original = sample("2026-03-10T09:00:00+08:00", passes=False)
    retest = sample("2026-03-25T09:00:00+08:00", passes=True, retest=True)
    fixed = sample("2026-03-27T09:00:00+08:00", passes=False, retest=True)
    state, f, effects = fold(rules, original, retest, fixed)
    assert sampled(f) == (1, 0, 1) and f.fluctuation.failing_items == {"bromate": 1} and p_chart(f) == {"2026Q1": (1, 1)}
    assert [s.event_id for s in f.final_samples()] == [str(fixed.event_id)]
    assert f.retests[original.payload.sample_no] == str(fixed.event_id)
    (failed,) = of(effects, fixed, "sampling.failed")
    assert failed.data["confirms_event_id"] == str(original.event_id)  # the failure's alert notes it: no second occurrence
    (entry,) = failed_entries(f)
    assert entry[3] == str(fixed.event_id)
    (d,) = [e.data for e in of(effects, fixed, "sampling.corrected")]
    assert d["message_zh"].startswith(f"抽样编号 {original.payload.sample_no}（饮用纯净水）复检结果已更正：结论由合格改为不合格")


def test_a_retest_corrected_to_a_pass_overturns_the_failure(rules):
    original = sample("2026-03-10T09:00:00+08:00", passes=False)
    retest = sample("2026-03-25T09:00:00+08:00", passes=False, retest=True)
    fixed = sample("2026-03-27T09:00:00+08:00", passes=True, retest=True)
    state, f, effects = fold(rules, original, retest, fixed)
    assert sampled(f) == (1, 1, 0) and f.fluctuation.failing_items == {} and p_chart(f) == {"2026Q1": (1, 0)}
    assert failed_entries(f) == []
    assert of(effects, fixed, "sampling.overturned")[0].data["original_event_id"] == str(retest.event_id)


def test_an_early_retest_corrected_then_its_original(rules):
    """The re-test came first and was charted as the sample; its correction moves the charts; the
    original then pairs with the corrected re-test."""
    retest = sample("2026-03-25T09:00:00+08:00", passes=True, retest=True)
    fixed = sample("2026-03-26T09:00:00+08:00", passes=False, retest=True)
    original = sample("2026-03-10T09:00:00+08:00", passes=False)
    state, f, effects = fold(rules, retest, fixed, original)
    assert sampled(f) == (1, 0, 1) and f.fluctuation.failing_items == {"bromate": 1} and p_chart(f) == {"2026Q1": (1, 1)}
    assert f.sample_by_event(str(original.event_id)).superseded_by == str(fixed.event_id)
    assert [s.event_id for s in f.final_samples()] == [str(fixed.event_id)]
    assert "sampling.superseded" in [e.kind for e in of(effects, original)]


def test_a_correction_of_a_retest_not_admitted_does_not_reopen_it(rules):
    original = sample("2026-03-10T09:00:00+08:00", passes=False, microbial=True)
    retest = sample("2026-03-25T09:00:00+08:00", passes=True, retest=True)
    fixed = sample("2026-03-26T09:00:00+08:00", passes=True, retest=True, batch="20260302")
    state, f, effects = fold(rules, original, retest, fixed)
    assert sampled(f) == (1, 0, 1) and len(failed_entries(f)) == 1
    record = f.sample_by_event(str(fixed.event_id))
    assert (record.superseded_by, record.superseded_as) == (str(original.event_id), "retest_inadmissible")
    assert [e.kind for e in of(effects, fixed) if e.kind.startswith("sampling.")] == ["sampling.judged", "sampling.corrected"]
    (d,) = [e.data for e in of(effects, fixed, "sampling.corrected")]
    assert d["counts"] is False and "不予采信" in d["message_zh"] and "批号由“20260301”改为“20260302”" in d["message_zh"]
    assert len([w for w in effects if w.kind == "warning.raised" and w.data["rule"] == "retest.inadmissible"]) == 1


def test_an_original_corrected_after_its_retest_was_refused(rules):
    """A re-test by the first lab is refused (第八十八条): the original stands, and its own lab may correct it."""
    original = sample("2026-03-10T09:00:00+08:00", passes=False)
    retest = sample("2026-03-20T09:00:00+08:00", passes=True, retest=True, lab=original.payload.lab)
    fixed = sample("2026-03-21T09:00:00+08:00", passes=True)
    state, f, effects = fold(rules, original, retest, fixed)
    assert sampled(f) == (1, 1, 0) and failed_entries(f) == [] and f.fluctuation.failing_items == {}
    assert [s.event_id for s in f.final_samples()] == [str(fixed.event_id)]
    assert f.sample_by_event(str(retest.event_id)).superseded_as == "retest_inadmissible"
    assert "sampling.overturned" in [e.kind for e in of(effects, fixed)]


def test_a_retest_sent_twice_is_one_retest(rules):
    original = sample("2026-03-10T09:00:00+08:00", passes=False)
    retest = sample("2026-03-25T09:00:00+08:00", passes=True, retest=True)
    again = resend(retest)
    state, f, effects = fold(rules, original, retest, again)
    assert sampled(f) == (1, 1, 0)
    assert [e.kind for e in of(effects, again)] == ["sampling.repeated_report"]
    assert "复检结果重复报送" in of(effects, again)[0].data["message_zh"]
    assert f.retests[original.payload.sample_no] == str(retest.event_id)


def test_the_retest_path_names_why_a_report_does_not_count(rules):
    original = sample("2026-03-10T09:00:00+08:00", passes=False)
    retest = sample("2026-03-25T09:00:00+08:00", passes=True, retest=True)
    state, f, _ = fold(rules, original, retest)
    o = f.sample_by_event(str(original.event_id))
    assert o.superseded_as == "retest" and o.superseded_zh() == "已由复检结论取代，不计入统计"
    # a file folded before the reason was kept reads as before
    o.superseded_as = None
    assert o.superseded_zh() == "已由复检结论取代，不计入统计"


def test_a_snapshot_written_before_these_fields_restores(rules):
    import json

    first = sample("2026-03-12T15:20:00+08:00", passes=False)
    state, _, _ = fold(rules, first)
    doc = json.loads(state.snapshot())
    for s in doc["files"][E]["samples"]:
        del s["superseded_as"], s["corrects"]
    restored = CountyState.restore(json.dumps(doc).encode())
    state, effects = step(restored, resend(first), rules)
    assert [e.kind for e in effects if e.kind.startswith("sampling.")] == ["sampling.repeated_report"]


# --------------------------------------------------------------------------- the door's warning


def _warned(event, on_file):
    return [w for w in event_warnings(event, rules_catalogue(), "packaged_water", on_file=on_file) if w["type"] == "sample_no_on_file"]


def rules_catalogue():
    from schemas.standards import load_catalogue

    return load_catalogue()


def test_the_answer_says_a_sample_number_is_on_file(rules):
    first = sample("2026-03-12T15:20:00+08:00", passes=False)
    fixed = sample("2026-03-14T10:00:00+08:00", passes=True)
    again = resend(fixed)
    other = sample("2026-03-15T10:00:00+08:00", passes=True, lab=RETEST_LAB)
    state, f, _ = fold(rules, first, fixed)
    view = f.view()["samples"]  # a credit_files copy, as the Kafka mode's API reads it
    # the first report of a sample: nothing to say (its own record is on file once folded)
    assert _warned(first, f.samples[:1]) == []
    # folded (the embedded runtime answers after the fold): how it was taken
    (w,) = _warned(fixed, f.samples)
    assert w["field"] == "payload.sample_no"
    assert w["reason_zh"].startswith(f"该企业已有抽样编号 {first.payload.sample_no} 的结果（事件 {first.event_id}，{first.payload.lab}）：本次按更正处理")
    assert "retest: true" in w["reason_zh"] and "correction" in w["reason"]
    state, _ = step(state, again, rules)
    (w,) = _warned(again, state.files[E].samples)
    assert "按重复报送处理" in w["reason_zh"] and f"事件 {fixed.event_id}" in w["reason_zh"]
    state, _ = step(state, other, rules)
    (w,) = _warned(other, state.files[E].samples)
    assert "另一检验机构" in w["reason_zh"] and "不计入统计" in w["reason_zh"]
    # not folded yet (a Kafka worker folds after the answer), from the file's view: as it will be taken
    (w,) = _warned(again, view)
    assert "按更正处理" in w["reason_zh"] and "内容相同则按重复报送" in w["reason_zh"] and f"事件 {fixed.event_id}" in w["reason_zh"]
    (w,) = _warned(other, view)
    assert "另一检验机构" in w["reason_zh"]
    # the first report retried (its answer lost): said when a correction replaced it since, else nothing
    (w,) = _warned(first, state.files[E].samples)
    assert w["reason_zh"].startswith(f"抽样编号 {first.payload.sample_no} 的本次结果已由后来的报告（事件 {fixed.event_id}")
    _, alone, _ = fold(rules, first, resend(first))
    assert _warned(first, alone.samples) == []
    # a re-test of a sample on file is what a re-test is: no warning
    assert _warned(sample("2026-03-25T09:00:00+08:00", passes=True, retest=True), f.samples) == []


# --------------------------------------------------------------------------- replay


BASE = dt.datetime(2026, 3, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))
LABS = ["县食品检验检测中心", RETEST_LAB]


@st.composite
def resends(draw):
    """Logs of one enterprise's reports of a few sample numbers: originals and re-tests, repeats,
    corrections, another lab's, out of order, some before the registration."""
    docs = []
    registered_at = draw(st.integers(0, 12))
    size = draw(st.integers(1, 12))
    for i in range(size):
        doc = golden("sampling.result")
        doc["event_id"] = str(uuid.UUID(int=draw(st.integers(1, 2**40)), version=4))
        doc["occurred_at"] = (BASE + dt.timedelta(days=draw(st.integers(0, 60)))).isoformat()
        p = doc["payload"]
        p["sample_no"] = draw(st.sampled_from(["S-A", "S-B"]))
        p["retest"] = draw(st.booleans())
        p["lab"] = draw(st.sampled_from(LABS))
        p["batch"] = draw(st.sampled_from(["b1", "b2"]))
        p["items"][0]["values"] = draw(st.sampled_from([[0, 0, 0, 0, 0], [45, 59, 8, 61, 10]]))
        p["items"][2]["values"] = draw(st.sampled_from([["ND"], [0.005], [0.02]]))
        # the lab's verdicts agree with qrisk's (a re-test admitted on the lab's word alone, of a sample
        # qrisk passed, is another matter: its failure is counted but not charted, as before)
        p["items"][0]["lab_verdict"] = "合格" if p["items"][0]["values"] == [0, 0, 0, 0, 0] else "不合格"
        p["items"][2]["lab_verdict"] = "不合格" if p["items"][2]["values"] == [0.02] else "合格"
        docs.append(doc)
        if draw(st.booleans()):
            again = copy.deepcopy(doc)
            again["event_id"] = str(uuid.UUID(int=draw(st.integers(1, 2**40)), version=4))
            docs.append(again)  # the same report, a new send attempt
    docs.insert(min(registered_at, len(docs)), golden("enterprise.registered"))
    return [parse_event(d) for d in docs]


PROPS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def short_rules(rules):
    return Rules(rules.catalogue, Policy.model_validate({"spc": {"baseline": 2}}))


@PROPS
@given(resends(), st.data())
def test_resends_replay_deterministically_and_count_each_sample_once(short_rules, log, data):
    first, effects1 = replay(log, short_rules)
    second, effects2 = replay(log, short_rules)
    assert first.snapshot() == second.snapshot() and effects1 == effects2
    cut = data.draw(st.integers(0, len(log)))
    head, _ = replay(log[:cut], short_rules)
    resumed, _ = replay(log[cut:], short_rules, state=CountyState.restore(head.snapshot()))
    assert resumed.snapshot() == first.snapshot()

    f = first.files[E]
    c = f.counts
    numbers = {s.sample_no for s in f.samples}
    final = f.final_samples()
    # one sample per sample number, counted by the report that stands
    assert c.samples == len(numbers) == len(final)
    assert sorted(s.sample_no for s in final) == sorted(numbers)
    verdicts = [s.judgement.verdict for s in final]
    assert (c.samples_passed, c.samples_failed, c.samples_undetermined) == (
        verdicts.count("pass"), verdicts.count("fail"), verdicts.count("undetermined"))
    # every report that does not count names one that is on file
    ids = {s.event_id for s in f.samples}
    assert all(s.superseded_by in ids for s in f.samples if s.superseded_by is not None)
    # the pass-rate charts and the Pareto follow the reports that stand, per period
    judged = [s for s in final if s.judgement.verdict in ("pass", "fail")]
    periods = {period_of(s.sampled_on, "quarter") for s in judged}
    assert {k: (pc.n, pc.failed) for k, pc in f.fluctuation.pass_rate.items() if pc.n or pc.failed} == {
        k: (sum(1 for s in judged if period_of(s.sampled_on, "quarter") == k),
            sum(1 for s in judged if period_of(s.sampled_on, "quarter") == k and s.judgement.verdict == "fail")) for k in periods}
    assert all(v > 0 for v in f.fluctuation.failing_items.values())
    assert bool(f.fluctuation.failing_items) == any(s.judgement.verdict == "fail" for s in final)
    # the county's chart of the category names the failures it counts: the samples that stand failed, one entry each
    for k, pc in first.categories[f.profile.category].periods.items() if f.profile else ():
        assert len(pc.failures) == pc.failed, (k, pc)
        assert sorted(x[1] for x in pc.failures) == sorted(
            s.sample_no for s in judged if period_of(s.sampled_on, "quarter") == k and s.judgement.verdict == "fail"), (k, pc)
    # the grade has one entry per failed sample at most
    entries = [e[4] for e in f.risk.entries if e[1] == "sampling_failed"]
    assert len(entries) == len(set(entries))
    assert set(entries) <= {s.sample_no for s in final if s.judgement.verdict == "fail"}


def test_a_corrections_effect_reads_in_chinese_where_effects_are_listed(rules):
    from alerts.messages import message_zh, title_zh
    from tests.test_fold import _sample, golden
    from schemas.upcast import parse_event
    from processors.step import replay

    reg = parse_event(golden("enterprise.registered"))
    report = _sample("2026-03-10T09:00:00+08:00", False, False, sample_no="DC-MSG-1")
    correction = _sample("2026-03-11T09:00:00+08:00", False, True, sample_no="DC-MSG-1")
    _, effects = replay([reg, report, correction], rules)
    [corrected] = [e for e in effects if e.kind == "sampling.corrected"]
    assert title_zh("sampling.corrected") == "抽检结果更正"
    assert message_zh(corrected, "某水厂") == f"某水厂：{corrected.data['message_zh']}" and "更正" in corrected.data["message_zh"]


# --------------------------------------------------------------------------- the item series follow a correction


def _measured(i: int, conductivity: float, at: dt.datetime, sample_no: str | None = None):
    """A passing water sample of its own number, with a conductivity result to chart."""
    doc = golden("sampling.result")
    doc["event_id"], doc["occurred_at"] = _id(), at.isoformat()
    items = copy.deepcopy(doc["payload"]["items"])
    items[0]["values"], items[0]["lab_verdict"] = [0, 0, 0, 0, 0], "合格"
    assert items[3]["item_code"] == "conductivity"
    items[3]["values"] = [conductivity]
    day = (dt.date(2026, 1, 1) + dt.timedelta(days=i)).isoformat()
    doc["payload"].update(items=items, sample_no=sample_no or f"DC2633011{i:07d}", sampled_on=day, production_date=day,
                          batch=day.replace("-", ""))
    return parse_event(doc)


def _conductivity_series(rules, events):
    state, _ = replay([REG, *events], rules)
    s = state.files[E].fluctuation.series["饮用纯净水|conductivity"]
    m = s.monitor
    return (m.phase, m.count, m.center, m.sigma, m.ewma, m.cusum_upper, m.cusum_lower, s.signals, s.nd_points,
            [p[2] for p in s.recent])


def test_a_typo_corrected_in_the_baseline_is_charted_as_if_never_sent(rules):
    """A lab sends 32 µS/cm for 3.2 while the chart is still learning its limits, then corrects it:
    the series is built again, and equals the series of the log that never had the typo — its
    limits are not widened for good by a value that was never measured."""
    at = dt.datetime(2026, 1, 2, 9, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    values = [3.0 + 0.1 * ((7 * i) % 5) for i in range(40)]
    clean = [_measured(i, v, at + dt.timedelta(days=i)) for i, v in enumerate(values)]
    typo = [_measured(i, v * 10 if i == 4 else v, at + dt.timedelta(days=i)) for i, v in enumerate(values)]
    fix = _measured(4, values[4], at + dt.timedelta(days=40), sample_no=typo[4].payload.sample_no)
    without_fix = _conductivity_series(rules, typo)
    assert without_fix != _conductivity_series(rules, clean)  # the typo did reach the chart
    assert _conductivity_series(rules, [*typo, fix]) == _conductivity_series(rules, clean)

    state, effects = replay([REG, *typo, fix], rules)
    (said,) = of(effects, fix, "sampling.corrected")
    assert said.data["recharted"] == ["饮用纯净水|conductivity"]  # the other items' points did not change
    assert "质量波动监测序列（饮用纯净水·电导率（25℃））已按更正后的结果重新计算" in said.data["message_zh"]


def test_a_correction_that_makes_a_point_signal_raises_it(rules):
    """In phase II a corrected value far above the limits signals as a new result would."""
    at = dt.datetime(2026, 1, 2, 9, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    values = [3.0 + 0.1 * ((7 * i) % 5) for i in range(30)]
    events = [_measured(i, v, at + dt.timedelta(days=i)) for i, v in enumerate(values)]
    fix = _measured(28, 9.5, at + dt.timedelta(days=31), sample_no=events[28].payload.sample_no)
    state, effects = replay([REG, *events, fix], rules)
    raised = of(effects, fix, "fluctuation.signal")
    assert raised and raised[0].data["series"] == "饮用纯净水|conductivity" and raised[0].data["value"] == 9.5
    point = next(p for p in state.files[E].fluctuation.series["饮用纯净水|conductivity"].recent if p[3] == fix.payload.sample_no)
    assert point[2] == 9.5 and point[4] == str(fix.event_id)  # the chart's point is the correction's, where the sample stood


# --------------------------------------------------------------------------- a result nobody could judge


def _unjudgeable(event, at: str, retest: bool = False, lab: str | None = None):
    """``event``'s report again, its bromate sent in a unit qrisk does not know: undetermined."""
    doc = event.model_dump(mode="json", exclude_unset=True)
    doc["event_id"], doc["occurred_at"] = _id(), at
    doc["payload"]["items"][2]["unit"] = "mg/KGS"
    doc["payload"]["retest"] = retest
    if lab is not None:
        doc["payload"]["lab"] = lab
        doc["source"] = lab_source(lab)
    return parse_event(doc)


def test_a_correction_that_cannot_be_judged_does_not_overturn_a_failure(rules):
    first = sample("2026-03-12T15:20:00+08:00", passes=False)
    typo = _unjudgeable(first, "2026-03-13T10:00:00+08:00")
    state, f, effects = fold(rules, first, typo)
    assert sampled(f) == (1, 0, 1) and p_chart(f) == {"2026Q1": (1, 1)}  # the failure stands
    record = f.sample_by_event(str(typo.event_id))
    assert (record.superseded_as, record.superseded_by, record.judgement.verdict) == ("unjudged", str(first.event_id), "undetermined")
    assert "未采用" in record.superseded_zh()
    (said,) = of(effects, typo, "sampling.correction_unjudged")
    assert "不能推翻原不合格结论" in said.data["message_zh"] and "溴酸盐" in said.data["message_zh"]
    assert not of(effects, typo, "sampling.overturned") and not of(effects, typo, "warning.resolved")
    assert [s.event_id for s in f.final_samples()] == [str(first.event_id)] and len(failed_entries(f)) == 1
    # the lab sends it again in the right unit: a correction like any other
    fixed = sample("2026-03-14T10:00:00+08:00", passes=True)
    state, f, effects = fold(rules, first, typo, fixed)
    assert sampled(f) == (1, 1, 0) and of(effects, fixed, "sampling.overturned")
    assert f.sample_by_event(str(fixed.event_id)).corrects == str(first.event_id)


def test_a_retest_that_cannot_be_judged_does_not_overturn_a_failure(rules):
    first = sample("2026-03-12T15:20:00+08:00", passes=False)
    retest = _unjudgeable(first, "2026-03-20T10:00:00+08:00", retest=True, lab=RETEST_LAB)
    for order in ([first, retest], [retest, first]):
        state, f, effects = fold(rules, *order)
        assert sampled(f) == (1, 0, 1), order  # one sample, failed, whichever came first
        assert f.sample_by_event(str(retest.event_id)).superseded_as == "retest_inadmissible"
        refused = [e for e in effects if e.kind == "sampling.retest_inadmissible"]
        assert refused and refused[-1].data["reason"] == "undetermined" and "复检结果无法判定（溴酸盐）" in refused[-1].data["reason_zh"]
        alerts = [e.data for e in effects if e.kind == "warning.raised" and e.data["rule"] == "retest.inadmissible"]
        assert alerts and "does not overturn the failure" in alerts[-1]["message_en"]


# --------------------------------------------------------------------------- a re-test covers the items disputed


def _pastry(at: str, lines: list[dict], retest: bool = False, lab: str = "县食品检验检测中心"):
    doc = golden("sampling.result")
    doc["event_id"], doc["occurred_at"], doc["enterprise_id"] = _id(), at, "P-PARTIAL"
    doc["payload"].update(sample_no="DC26330110009999", product="蛋糕", lab=lab, retest=retest, items=lines,
                          production_date="2026-03-01", sampled_on="2026-03-05")
    doc["source"] = lab_source(lab)
    return parse_event(doc)


def _line(code: str, value: float, unit: str, verdict: str) -> dict:
    return {"item_code": code, "values": [value], "unit": unit, "lab_verdict": verdict}


@pytest.mark.parametrize("retest_first", [False, True])
def test_a_retest_of_some_items_leaves_the_others_as_first_tested(rules, retest_first):
    """The enterprise disputes the preservatives (sum of ratios 1.08) and the re-test clears them;
    the aluminium nobody disputed (180 mg/kg, limit 100) still fails the sample — the re-test covers
    only what was re-tested (《食品安全抽样检验管理办法》, 复检), whichever report arrived first."""
    doc = golden("enterprise.registered")
    doc.update(enterprise_id="P-PARTIAL", event_id=_id())
    doc["payload"]["category"] = "pastry"
    reg = parse_event(doc)
    original = _pastry("2026-03-12T15:20:00+08:00", [
        _line("aluminium", 180, "mg/kg", "不合格"), _line("sorbic_acid", 0.6, "g/kg", "合格"), _line("propionic_acid", 1.2, "g/kg", "合格")])
    retest = _pastry("2026-03-25T10:00:00+08:00", [_line("sorbic_acid", 0.5, "g/kg", "合格"), _line("propionic_acid", 1.1, "g/kg", "合格")],
                     retest=True, lab=RETEST_LAB)
    state, effects = replay([reg, *([retest, original] if retest_first else [original, retest])], rules)
    f = state.files["P-PARTIAL"]
    assert original.payload.items and f.profile.category == "pastry"
    assert sampled(f) == (1, 0, 1)  # one sample, still 不合格
    final = f.sample_by_event(str(retest.event_id))
    assert final.superseded_by is None and final.not_retested == ("aluminium",)
    assert final.judgement.verdict == "fail"
    assert [i.item_code for i in final.judgement.items if i.verdict == "fail"] == ["aluminium"]
    assert all(c.verdict == "pass" for c in final.judgement.sum_checks)  # the re-tested preservatives: 0.5/1.0 + 1.1/2.5 = 0.94
    assert not [e for e in effects if e.kind == "sampling.overturned"]
    assert f.fluctuation.failing_items == {"aluminium": 1}
    failed = [e for e in effects if e.kind == "sampling.failed"]
    assert failed and failed[-1].data["failed_items"] == ["aluminium"]


def test_the_credit_report_says_which_items_the_retest_did_not_cover(rules):
    from qrisk.credit_report import build_report

    doc = golden("enterprise.registered")
    doc.update(enterprise_id="P-PARTIAL", event_id=_id())
    doc["payload"]["category"] = "pastry"
    original = _pastry("2026-03-12T15:20:00+08:00", [_line("aluminium", 180, "mg/kg", "不合格"), _line("sorbic_acid", 1.3, "g/kg", "不合格")])
    retest = _pastry("2026-03-25T10:00:00+08:00", [_line("sorbic_acid", 0.9, "g/kg", "合格")], retest=True, lab=RETEST_LAB)
    state, _ = replay([parse_event(doc), original, retest], rules)
    rows = build_report(state.files["P-PARTIAL"], rules)["samples"]
    row = next(r for r in rows if r["event_id"] == str(retest.event_id))
    assert row["detail_zh"].startswith("复检；未复检项目（铝的残留量（干样品，以Al计））沿用初检结果；铝的残留量")
    assert row["verdict_zh"] == "不合格" and "铝" in row["failed_zh"]


def test_a_correction_clearing_a_microbial_failure_leaves_its_alert_for_a_supervisor(rules):
    """铜绿假单胞菌 admits no re-test: the same lab's correction to 合格 is taken (the lab amends its
    report), but the failure's alert does not close by itself — it says what to check."""
    first = sample("2026-03-12T15:20:00+08:00", passes=False, microbial=True)
    clean = sample("2026-04-17T10:00:00+08:00", passes=True)
    state, f, effects = fold(rules, first, clean)
    assert sampled(f) == (1, 1, 0)
    (over,) = of(effects, clean, "sampling.overturned")
    assert over.data["microbial_cleared"] == ["铜绿假单胞菌"]
    assert "依法不予复检" in over.data["message_zh"] and "原不合格预警不自动关闭" in over.data["message_zh"]
    # (the grade fell back with the failure uncounted: its rise's alert closes; the failure's stays open)
    assert not [e for e in effects if e.kind == "warning.resolved" and e.data["rule"] == "sampling.unqualified"]
    book = AlertBook()
    info = lambda eid: Enterprise("清源桶装水厂", "良渚街道", "packaged_water")  # noqa: E731
    s = CountyState()
    for e in (REG, first, clean):
        s, produced = step(s, e, rules)
        book.apply(e, produced, rules.policy, info)
    failure = next(a for a in book.alerts.values() if a.rule == "sampling.unqualified")
    assert failure.state == "open"
    # a chemical failure corrected away still closes by itself
    bromate = sample("2026-03-12T15:20:00+08:00", passes=False)
    fixed = sample("2026-03-13T10:00:00+08:00", passes=True)
    _, _, effects = fold(rules, bromate, fixed)
    assert "microbial_cleared" not in of(effects, fixed, "sampling.overturned")[0].data
    assert [e for e in effects if e.kind == "warning.resolved"]


# --------------------------------------------------------------------------- any order of arrival, the same sample


def _pastry_reg():
    doc = golden("enterprise.registered")
    doc.update(enterprise_id="P-PARTIAL", event_id=_id())
    doc["payload"]["category"] = "pastry"
    return parse_event(doc)


def _summary(state):
    f = state.files["P-PARTIAL"]
    cat = state.categories.get("pastry")
    return (sampled(f), p_chart(f), dict(sorted(f.fluctuation.failing_items.items())),
            {k: (pc.n, pc.failed) for k, pc in (cat.periods.items() if cat else ())},
            sorted(e[4] for e in f.risk.entries if e[1] == "sampling_failed"))


def test_a_retest_upholding_a_failure_on_fewer_items_counts_the_same_whichever_came_first(rules):
    """The original fails on aluminium and sorbic acid, the re-test re-tests sorbic acid only and it
    still fails: either order counts one failed sample, both items in the Paretos, one risk entry."""
    original = _pastry("2026-03-12T15:20:00+08:00", [_line("aluminium", 180, "mg/kg", "不合格"), _line("sorbic_acid", 1.3, "g/kg", "不合格")])
    retest = _pastry("2026-03-25T10:00:00+08:00", [_line("sorbic_acid", 1.2, "g/kg", "不合格")], retest=True, lab=RETEST_LAB)
    reg = _pastry_reg()
    results = {}
    for name, order in {"original first": [reg, original, retest], "retest first": [reg, retest, original]}.items():
        state, effects = replay(order, rules)
        results[name] = _summary(state)
        if name == "retest first":
            # the re-test's row is written again with the items it did not re-test (the judgements table)
            judged = [e for e in effects if e.kind == "sampling.judged" and e.data["sample_event_id"] == str(retest.event_id)]
            assert judged[-1].data["verdict"] == "fail" and judged[-1].data["not_retested"] == ["aluminium"]
            assert [e.data["failed_items"] for e in effects if e.kind == "sampling.failed"][-1] == ["sorbic_acid", "aluminium"]
    assert results["original first"] == results["retest first"]
    assert results["original first"][2] == {"aluminium": 1, "sorbic_acid": 1}


def test_an_unjudgeable_retest_that_came_first_leaves_the_failure_in_the_pass_rate_charts(rules):
    first = sample("2026-03-12T15:20:00+08:00", passes=False)
    retest = _unjudgeable(first, "2026-03-20T10:00:00+08:00", retest=True, lab=RETEST_LAB)
    charts = []
    for order in ([first, retest], [retest, first]):
        state, f, _ = fold(rules, *order)
        charts.append((p_chart(f), dict(f.fluctuation.failing_items), {k: (pc.n, pc.failed) for k, pc in state.categories["packaged_water"].periods.items()}))
    assert charts[0] == charts[1] == ({"2026Q1": (1, 1)}, {"bromate": 1}, {"2026Q1": (1, 1)})


def test_an_unjudgeable_correction_of_a_passing_retest_does_not_overturn_the_original_failure(rules):
    first = sample("2026-03-12T15:20:00+08:00", passes=False)
    retest = sample("2026-03-20T10:00:00+08:00", passes=True, retest=True)
    typo = _unjudgeable(retest, "2026-03-21T10:00:00+08:00", retest=True, lab=RETEST_LAB)
    state, f, effects = fold(rules, first, retest, typo)
    assert sampled(f) == (1, 1, 0)  # the admitted passing re-test still decides
    assert f.sample_by_event(str(typo.event_id)).superseded_as == "unjudged"
    assert of(effects, typo, "sampling.correction_unjudged")


def test_a_merged_retest_sent_again_word_for_word_is_a_repeat(rules):
    original = _pastry("2026-03-12T15:20:00+08:00", [_line("aluminium", 180, "mg/kg", "不合格"), _line("sorbic_acid", 1.3, "g/kg", "不合格")])
    retest = _pastry("2026-03-25T10:00:00+08:00", [_line("sorbic_acid", 0.9, "g/kg", "合格")], retest=True, lab=RETEST_LAB)
    again = resend(retest)
    state, effects = replay([_pastry_reg(), original, retest, again], rules)
    assert of(effects, again, "sampling.repeated_report") and not of(effects, again, "sampling.corrected")
    # and a real correction of it lists what changed in its own lines only, not the items it carried
    fixed = _pastry("2026-03-26T10:00:00+08:00", [_line("sorbic_acid", 0.8, "g/kg", "合格")], retest=True, lab=RETEST_LAB)
    state, effects = replay([_pastry_reg(), original, retest, fixed], rules)
    (said,) = of(effects, fixed, "sampling.corrected")
    assert [c["item_code"] for c in said.data["changes"] if "item_code" in c] == ["sorbic_acid"]


def test_a_correction_after_the_category_lost_its_standards_is_said_not_a_crash(rules):
    """An enterprise moved to a category without standards ("other"): a correction or a re-test of its
    failed sample cannot be judged — said in words, never a TypeError inside the fold."""
    first = sample("2026-03-12T15:20:00+08:00", passes=False)
    doc = golden("enterprise.updated")
    doc.update(event_id=_id(), occurred_at="2026-03-13T10:00:00+08:00", payload={"category": "other"})
    moved = parse_event(doc)
    corrected = sample("2026-03-14T10:00:00+08:00", passes=False, bromate=0.03)
    state, f, effects = fold(rules, first, moved, corrected)
    (said,) = of(effects, corrected, "sampling.correction_unjudged")
    assert "“other”类别无适用标准" in said.data["message_zh"]
    retest = sample("2026-03-20T10:00:00+08:00", passes=True, retest=True)
    state, f, effects = fold(rules, first, moved, retest)
    refused = [e for e in effects if e.kind == "sampling.retest_inadmissible"]
    assert refused and refused[-1].data["reason"] == "undetermined"


def test_a_failure_and_its_passing_retest_judged_at_registration_leave_no_open_alert(rules_listing_retest_lab):
    """Both reports waited for the enterprise's registration and are judged in one step: the failure's
    alert that step opens is closed by the same step's overturn (said after it), not left open."""
    rules = rules_listing_retest_lab  # (a passing re-test by a listed lab closes the failure's alert)
    first = sample("2026-03-12T15:20:00+08:00", passes=False)
    retest = sample("2026-03-20T10:00:00+08:00", passes=True, retest=True)
    book, s = AlertBook(), CountyState()
    info = lambda eid: Enterprise("清源桶装水厂", "良渚街道", "packaged_water")  # noqa: E731
    for e in (first, retest, REG):
        s, produced = step(s, e, rules)
        book.apply(e, produced, rules.policy, info)
    assert sampled(s.files[E]) == (1, 1, 0)
    assert all(a.state in ("closed", "verified") for a in book.alerts.values() if a.rule == "sampling.unqualified")


@pytest.mark.parametrize("order", ["reg O O'", "reg O' O", "O reg O'", "O O' reg", "O' O reg", "O' reg O"])
def test_an_unjudgeable_later_report_never_clears_a_failure_in_any_order(rules, order):
    """A failing report and a later-dated one qrisk cannot judge, in any order around registration:
    the failure stands, counted, charted and alerted the same way."""
    first = sample("2026-03-12T15:20:00+08:00", passes=False)
    typo = _unjudgeable(first, "2026-03-13T10:00:00+08:00")
    named = {"reg": REG, "O": first, "O'": typo}
    state, effects = replay([named[n] for n in order.split()], rules)
    f = state.files[E]
    assert sampled(f) == (1, 0, 1) and p_chart(f) == {"2026Q1": (1, 1)} and f.fluctuation.failing_items == {"bromate": 1}
    assert [s.event_id for s in f.final_samples()] == [str(first.event_id)]
    assert f.sample_by_event(str(typo.event_id)).superseded_as == "unjudged"
    assert len(failed_entries(f)) == 1 and [e for e in effects if e.kind == "sampling.correction_unjudged"]
    assert all(s.pending is None for s in f.samples)


def _folded_with_alerts(rules, events):
    book, s = AlertBook(), CountyState()
    info = lambda eid: Enterprise("好味道糕点坊", "良渚街道", "pastry")  # noqa: E731
    for e in events:
        s, produced = step(s, e, rules)
        book.apply(e, produced, rules.policy, info)
    return s, sorted(a.state for a in book.alerts.values() if a.rule == "sampling.unqualified")


@pytest.mark.parametrize("aluminium", [(180, 80), (80, 180)], ids=["corrected to a pass", "corrected to a failure"])
def test_a_correction_of_the_items_a_retest_did_not_cover_counts_whichever_came_first(rules_listing_retest_lab, aluminium):
    """The lab corrects the original's aluminium, which the re-test of the preservatives did not cover.
    The sample's conclusion is the re-test's with the corrected aluminium, whether the correction came
    before the re-test, after it, or after a re-test that came first: counted, charted, graded and
    alerted alike.  (Before, a correction after the re-test kept the first aluminium.)"""
    rules = rules_listing_retest_lab  # (a passing re-test by a listed lab closes the failure's alert)
    first, fixed = aluminium
    verdict = lambda v: "不合格" if v > 100 else "合格"  # noqa: E731 - GB 2760 aluminium ≤ 100 mg/kg
    original = _pastry("2026-03-12T15:20:00+08:00", [_line("aluminium", first, "mg/kg", verdict(first)), _line("sorbic_acid", 1.3, "g/kg", "不合格")])
    retest = _pastry("2026-03-25T10:00:00+08:00", [_line("sorbic_acid", 0.9, "g/kg", "合格")], retest=True, lab=RETEST_LAB)
    correction = _pastry("2026-03-20T10:00:00+08:00", [_line("aluminium", fixed, "mg/kg", verdict(fixed)), _line("sorbic_acid", 1.3, "g/kg", "不合格")])
    named = {"O": original, "R": retest, "O'": correction}
    results = {}
    for order in ("O O' R", "O R O'", "R O O'"):
        state, alerts = _folded_with_alerts(rules, [_pastry_reg(), *(named[n] for n in order.split())])
        f = state.files["P-PARTIAL"]
        final = f.sample_by_event(str(retest.event_id))
        assert final.superseded_by is None and final.not_retested == ("aluminium",), order
        assert [i.values for i in final.judgement.items if i.item_code == "aluminium"] == [(float(fixed),)], order
        results[order] = (_summary(state), "open" in alerts)
    failing = fixed > 100
    assert results["O O' R"] == results["O R O'"] == results["R O O'"]
    summary, alert_open = results["O R O'"]
    assert summary[0] == ((1, 0, 1) if failing else (1, 1, 0))
    assert summary[2] == ({"aluminium": 1} if failing else {})
    assert alert_open is failing
    # what the late correction says, and that it is judged once more, as the re-test's row
    state, effects = replay([_pastry_reg(), original, retest, correction], rules)
    (said,) = of(effects, correction, "sampling.corrected")
    assert "复检未涉及的项目按更正后的检验结果与复检结果一并判定" in said.data["message_zh"]
    rows = [e for e in effects if e.kind == "sampling.judged" and e.data["sample_event_id"] == str(retest.event_id)]
    assert rows[-1].data["verdict"] == ("fail" if failing else "pass") and rows[-1].event_id == str(correction.event_id)


def test_a_retest_the_first_labs_system_sends_under_another_labs_name_is_not_admitted(rules):
    """《食品安全法》第八十八条: another lab re-tests.  The first lab's own system (its key, its CMA number as
    source.id) sending a 复检 that prints another lab's name is still the first lab; before, the printed
    name alone decided, and the re-test overturned the lab's own failure."""
    original = sample("2026-03-10T09:00:00+08:00", passes=False)
    doc = sample("2026-03-25T09:00:00+08:00", passes=True, retest=True).model_dump(mode="json", exclude_unset=True)
    doc["source"] = golden("sampling.result")["source"]  # the first lab's system
    disguised = parse_event(doc)
    assert disguised.payload.lab == RETEST_LAB
    state, f, effects = fold(rules, original, disguised)
    assert sampled(f) == (1, 0, 1)
    assert f.sample_by_event(str(disguised.event_id)).superseded_as == "retest_inadmissible"
    (refused,) = [e for e in effects if e.kind == "sampling.retest_inadmissible"]
    assert refused.data["reason"] == "same_lab" and "同一检验机构系统（CMA-330100-0451）报送" in refused.data["reason_zh"]


def test_a_late_correction_adding_an_item_the_retest_did_not_cover_counts(rules):
    """The re-test covered every item of the original (sorbic acid); the lab's correction adds aluminium
    180 mg/kg, which it had left out: the sample fails on it whichever order the three came in."""
    original = _pastry("2026-03-12T15:20:00+08:00", [_line("sorbic_acid", 1.3, "g/kg", "不合格")])
    retest = _pastry("2026-03-25T10:00:00+08:00", [_line("sorbic_acid", 0.9, "g/kg", "合格")], retest=True, lab=RETEST_LAB)
    correction = _pastry("2026-03-20T10:00:00+08:00", [_line("sorbic_acid", 1.3, "g/kg", "不合格"), _line("aluminium", 180, "mg/kg", "不合格")])
    named = {"O": original, "R": retest, "C": correction}
    results = {}
    for order in ("O C R", "O R C", "R O C"):
        state, alerts = _folded_with_alerts(rules, [_pastry_reg(), *(named[n] for n in order.split())])
        results[order] = (_summary(state), "open" in alerts)
    assert results["O C R"] == results["O R C"] == results["R O C"], results
    assert results["O R C"][0][0] == (1, 0, 1) and results["O R C"][0][2] == {"aluminium": 1} and results["O R C"][1]


def test_another_labs_key_printing_the_first_labs_name_does_not_correct_its_report(rules):
    """A correction comes from the lab that made the report: a passing report sent by another lab's system
    under the first lab's printed name is another lab's result (filed, not counted), not a correction."""
    original = sample("2026-03-10T09:00:00+08:00", passes=False)
    doc = sample("2026-03-11T09:00:00+08:00", passes=True).model_dump(mode="json", exclude_unset=True)
    doc["source"] = {"kind": "lab", "id": "CMA-330100-0999", "name": "别家检测公司"}
    impostor = parse_event(doc)
    assert impostor.payload.lab == original.payload.lab
    state, f, effects = fold(rules, original, impostor)
    assert sampled(f) == (1, 0, 1) and f.sample_by_event(str(impostor.event_id)).superseded_as == "other_lab"
    assert not [e for e in effects if e.kind == "sampling.overturned"]


def test_a_retest_corrected_to_a_failure_after_it_closed_the_alert_opens_one(rules_listing_retest_lab):
    """The passing re-test overturned the failure and its alert closed; the re-test lab then corrects its
    report to 不合格: the failure stands again, and a supervisor must have an open alert to handle, not a
    comment on a closed one."""
    rules = rules_listing_retest_lab  # (a passing re-test by a listed lab closes the failure's alert)
    original = sample("2026-03-10T09:00:00+08:00", passes=False)
    retest = sample("2026-03-25T09:00:00+08:00", passes=True, retest=True)
    corrected = sample("2026-03-26T09:00:00+08:00", passes=False, retest=True, bromate=0.03)
    book, s = AlertBook(), CountyState()
    info = lambda eid: Enterprise("清源桶装水厂", "良渚街道", "packaged_water")  # noqa: E731
    states = []
    for e in (REG, original, retest, corrected):
        s, produced = step(s, e, rules)
        book.apply(e, produced, rules.policy, info)
        states.append(sorted(a.state for a in book.alerts.values() if a.rule == "sampling.unqualified"))
    assert states[2] == ["closed"]  # overturned by the passing re-test
    assert "open" in states[3], states[3]
    assert sampled(s.files[E]) == (1, 0, 1)


@pytest.mark.parametrize("order", ["O R R2", "O C R R2"])
def test_the_paretos_follow_a_corrected_retest_to_its_items(rules, order):
    """The Paretos count the items the sample's conclusion failed on: a re-test corrected from one failing
    item to another moves the count, whether the original was corrected before (C) or not."""
    original = _pastry("2026-03-12T15:20:00+08:00", [_line("aluminium", 180, "mg/kg", "不合格"), _line("sorbic_acid", 1.3, "g/kg", "不合格")])
    fixed = _pastry("2026-03-13T15:20:00+08:00", [_line("aluminium", 80, "mg/kg", "合格"), _line("sorbic_acid", 1.3, "g/kg", "不合格")])
    retest = _pastry("2026-03-25T10:00:00+08:00", [_line("sorbic_acid", 0.9, "g/kg", "合格"), _line("aluminium", 80, "mg/kg", "合格")],
                     retest=True, lab=RETEST_LAB)
    retest2 = _pastry("2026-03-26T10:00:00+08:00", [_line("sorbic_acid", 1.2, "g/kg", "不合格"), _line("aluminium", 80, "mg/kg", "合格")],
                      retest=True, lab=RETEST_LAB)
    named = {"O": original, "C": fixed, "R": retest, "R2": retest2}
    state, _ = replay([_pastry_reg(), *(named[n] for n in order.split())], rules)
    f = state.files["P-PARTIAL"]
    assert sampled(f) == (1, 0, 1)
    assert f.fluctuation.failing_items == {"sorbic_acid": 1}, f.fluctuation.failing_items


def test_a_correction_bringing_a_sum_of_ratios_near_one_warns(rules):
    first = _pastry("2026-03-12T15:20:00+08:00", [_line("sorbic_acid", 0.3, "g/kg", "合格"), _line("propionic_acid", 0.5, "g/kg", "合格")])
    fixed = _pastry("2026-03-13T15:20:00+08:00", [_line("sorbic_acid", 0.6, "g/kg", "合格"), _line("propionic_acid", 0.7, "g/kg", "合格")])
    _, effects = replay([_pastry_reg(), first, fixed], rules)
    (near,) = of(effects, fixed, "sampling.near_limit")
    assert round(near.data["checks"][0]["total"], 2) == 0.88
    assert not of(effects, first, "sampling.near_limit")


def test_a_retest_is_filed_in_the_derived_tables_under_its_originals_sampling_date(rules):
    """A 复检 tests the backup of the same sampling: the fold charts it in its original's period, and the
    judgements and sampling_items rows (what the dashboards' monthly pass rates count) said its own date,
    moving a sample re-tested with another date printed on it into another month."""
    from qrisk.pipeline import SampleRows

    original = sample("2026-03-10T09:00:00+08:00", passes=False, sampled_on="2026-03-05")
    retest = sample("2026-03-25T09:00:00+08:00", passes=True, retest=True, sampled_on="2026-04-02")
    state, f, _ = fold(rules, original, retest)
    assert [s.event_id for s in f.final_samples()] == [str(retest.event_id)]
    rows = SampleRows()
    items, judged = rows(f, f.sample_by_event(str(retest.event_id)))
    assert str(judged[9]) == "2026-03-05" and str(items[6]) == "2026-03-05"
    # the original's own row (written again, superseded) keeps its date, as does any sample not re-tested
    _, first = rows(f, f.sample_by_event(str(original.event_id)))
    assert str(first[9]) == "2026-03-05" and first[JUDGEMENT_COLUMNS.index("superseded_by")] == str(retest.event_id)


def test_a_disagreement_closes_when_a_retest_decides_the_sample(rules):
    """The 判定不一致 alert of a report a passing re-test replaced stayed open beside the closed failure: there is
    nothing left to check with the lab about a report that no longer counts."""
    doc = sample("2026-03-10T09:00:00+08:00", passes=False).model_dump(mode="json", exclude_unset=True)
    doc["payload"]["items"][2]["lab_verdict"] = "合格"  # the lab passed the bromate qrisk fails
    # and failed the free chlorine, as qrisk does: a failure on the lab's word (one qrisk alone found would say the
    # disagreement in its own 系统复核不合格 alert)
    doc["payload"]["items"][1]["values"], doc["payload"]["items"][1]["lab_verdict"] = [0.2], "不合格"
    original = parse_event(doc)
    retest = sample("2026-03-25T09:00:00+08:00", passes=True, retest=True)
    _, effects = replay([REG, original, retest], rules)
    key = f"{E}:judgement.disagrees:{original.payload.sample_no}"
    assert [e.data["dedup_key"] for e in of(effects, original) if e.kind == "warning.raised" and e.data["rule"] == "judgement.disagrees"] == [key]
    (closed,) = [e.data for e in of(effects, retest) if e.kind == "warning.resolved" and e.data["rule"] == "judgement.disagrees"]
    assert closed["dedup_key"] == key and "已以复检结论为准" in closed["note_zh"]


def test_the_countys_failures_follow_a_sample_through_its_retest_and_corrections(rules):
    """The county's chart of a category keeps its failures per sample (whose, which): a re-test upholding the
    failure, then corrected to a pass, took the failure away from the count but left it on the list, under the
    original's id — and a second producer's failures made the chart speak of two producers where one counted."""
    from tests.test_fluctuation import OTHER, other_producer_failure

    first = sample("2026-03-10T09:00:00+08:00", passes=False)
    upheld = sample("2026-03-25T09:00:00+08:00", passes=False, retest=True)
    passes = sample("2026-03-27T09:00:00+08:00", passes=True, retest=True)
    state, f, _ = fold(rules, first, upheld, passes)
    county = state.categories[f.profile.category].periods["2026Q1"]
    assert (county.failed, county.failures) == (0, [])
    # back and forth: a passing re-test corrected to a failure, and to a pass again
    state, f, _ = fold(rules, first, sample("2026-03-25T09:00:00+08:00", passes=True, retest=True),
                       sample("2026-03-27T09:00:00+08:00", passes=False, retest=True))
    county = state.categories[f.profile.category].periods["2026Q1"]
    assert county.failed == 1 and [x[1] for x in county.failures] == [first.payload.sample_no]
    # another producer failing twice in the quarter is one producer's failures: no county signal
    more = [other_producer_failure(dt.date(2026, 3, 11))[0],
            *[sample(f"2026-03-1{d}T09:00:00+08:00", passes=False, sample_no=f"X{d}").model_copy(update={"enterprise_id": OTHER})
              for d in (1, 2)]]
    state, f, effects = fold(rules, first, upheld, passes, *more)
    assert not [e for e in effects if e.kind == "fluctuation.signal" and e.data.get("scope") == "category"]
