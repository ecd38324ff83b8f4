"""What a re-test (复检) decides: the items it re-tested, and a sum of ratios only when it re-tested all of it.

A regulator's review found two things a 核查处置 or a 处罚决定书 would have quoted wrongly:

- a partial re-test's failure alert read 复检维持不合格 and named the re-test lab for an item only the
  first lab tested (the enterprise disputed 溴酸盐, which the re-test cleared; 余氯, never re-tested, still
  failed), and nothing said the disputed item was cleared;
- a re-test of a failing GB 2760 sum of ratios covering only some preservatives had its results added to
  the first lab's: a figure neither lab found, which overturned the failure (or upheld it on the first lab's
  printed sum).  A sum of ratios is one lab's figure (GB 2760 附录A A.2): a re-test covering part of a
  failing sum is not admitted, and the failure stands until every member is re-tested."""
from __future__ import annotations

import copy

import pytest

from processors.step import replay
from processors.warnings import ALERT_KIND
from tests.conftest import golden
from tests.test_risk import E, ev, registered

FIRST_LAB = golden("sampling.result")["payload"]["lab"]
RETEST_LAB = "市食品药品检验研究院"


def _water(at: str, items: list[dict], retest: bool = False, **payload):
    doc = copy.deepcopy(golden("sampling.result")["payload"])
    return ev("sampling.result", at, items=items, retest=retest, sample_no="DC-RS-1", sampled_on="2026-04-02",
              production_date="2026-03-25", **({"lab": RETEST_LAB} if retest else {}), **{k: v for k, v in payload.items()})


def _item(code: str, values: list, unit: str, lab: str, name: str | None = None) -> dict:
    return {"item_code": code, "item_name": name or code, "values": values, "unit": unit, "lab_verdict": lab}


def _pastry(at: str, items: list[dict], retest: bool = False):
    return ev("sampling.result", at, items=items, retest=retest, product="蛋糕", sample_no="DC-RS-2", sampled_on="2026-04-02",
              production_date="2026-03-25", **({"lab": RETEST_LAB} if retest else {}))


def _alerts(effects, rule: str):
    return [e.data for e in effects if e.kind == ALERT_KIND and e.data["rule"] == rule]


def _orders(first, retest):
    return [(first, retest), (retest, first)]


def test_a_partial_retest_quotes_each_failed_item_with_the_lab_that_found_it(rules):
    first = _water("2026-04-10T16:00:00+08:00", [_item("bromate", [0.013], "mg/L", "不合格", "溴酸盐"),
                                                 _item("free_chlorine", [0.08], "mg/L", "不合格", "余氯（游离氯）")])
    retest = _water("2026-05-06T10:30:00+08:00", [_item("bromate", [0.008], "mg/L", "合格", "溴酸盐")], retest=True)
    state, effects = replay([registered(), first, retest], rules)
    f = state.files[E]
    assert (f.counts.samples, f.counts.samples_failed) == (1, 1)  # 余氯 still fails, on the first lab's word
    *_, alert = _alerts(effects, "sampling.unqualified")
    said = alert["message_zh"]
    assert alert["title_zh"] != "复检维持不合格" and "复检维持不合格" not in said and "复检结论为最终结论" not in said
    assert f"复检机构：{RETEST_LAB}" in said and "溴酸盐复检合格" in said
    assert f"余氯（游离氯）未申请复检，以初检结论为准，初检机构：{FIRST_LAB}" in said
    assert f"检验机构：{RETEST_LAB}" not in said
    (failed,) = alert["evidence"]["failed"]
    assert failed["item_code"] == "free_chlorine" and failed["lab"] == FIRST_LAB
    assert alert["evidence"]["first_lab"] == FIRST_LAB and alert["evidence"]["not_retested"] == ["free_chlorine"]
    assert alert["evidence"]["cleared_by_retest"] == ["溴酸盐"]


def test_a_retest_that_upholds_a_failure_still_says_so(rules):
    first = _water("2026-04-10T16:00:00+08:00", [_item("bromate", [0.013], "mg/L", "不合格", "溴酸盐"),
                                                 _item("free_chlorine", [0.08], "mg/L", "不合格", "余氯（游离氯）")])
    retest = _water("2026-05-06T10:30:00+08:00", [_item("bromate", [0.02], "mg/L", "不合格", "溴酸盐")], retest=True)
    _, effects = replay([registered(), first, retest], rules)
    *_, alert = _alerts(effects, "sampling.unqualified")
    assert alert["title_zh"] == "复检维持不合格"
    labs = {f["item_code"]: f["lab"] for f in alert["evidence"]["failed"]}
    assert labs == {"bromate": RETEST_LAB, "free_chlorine": FIRST_LAB}
    assert "溴酸盐复检合格" not in alert["message_zh"] and f"初检机构：{FIRST_LAB}" in alert["message_zh"]


SORBIC = ("sorbic_acid", "山梨酸及其钾盐（以山梨酸计）")
PROPIONIC = ("propionic_acid", "丙酸及其钠盐、钙盐（以丙酸计）")


@pytest.mark.parametrize("printed_sum", [True, False], ids=["the first lab printed the sum", "no printed sum"])
def test_a_retest_of_part_of_a_failing_sum_of_ratios_is_not_admitted(rules, printed_sum):
    """0.6/1.0 + 1.2/2.5 = 1.08 fails; the re-test reports sorbic acid alone (0.4).  Before: with the first lab's
    printed 1.08 the failure was 'upheld' by the re-test lab; without it, 0.4/1.0 + 1.2/2.5 = 0.88 overturned it."""
    items = [_item(*SORBIC[:1], [0.6], "g/kg", "合格", SORBIC[1]), _item(PROPIONIC[0], [1.2], "g/kg", "合格", PROPIONIC[1])]
    if printed_sum:
        items.append(_item("preservative_ratio_sum", [1.08], "无量纲", "不合格"))
    first = _pastry("2026-04-10T16:00:00+08:00", items)
    retest = _pastry("2026-05-06T10:30:00+08:00", [_item(SORBIC[0], [0.4], "g/kg", "合格", SORBIC[1])], retest=True)
    for order in _orders(first, retest):
        state, effects = replay([registered(category="pastry"), *order], rules)
        f = state.files[E]
        # (without the printed sum the lab's report passed the sample: the failure is qrisk's alone, counted as the
        # report's 合格 and as unconfirmed — what matters here is that the re-test decides nothing)
        expected = (1, 1, 0, 0) if printed_sum else (1, 0, 1, 1)
        assert (f.counts.samples, f.counts.samples_failed, f.counts.samples_passed, f.counts.samples_unconfirmed) == expected, order
        assert f.sample_by_event(str(retest.event_id)).superseded_as == "retest_inadmissible"
        assert not [e for e in effects if e.kind == "sampling.overturned"]
        (refused,) = [e for e in effects if e.kind == "sampling.retest_inadmissible"]
        if not printed_sum:
            # the first report read 合格: nothing to dispute, whatever the re-test covers
            assert refused.data["reason"] == "original_passed"
            continue
        assert refused.data["reason"] == "partial_sum"
        (alert,) = _alerts(effects, "retest.inadmissible")
        said = alert["message_zh"]
        assert f"复检仅涉及{SORBIC[1]}" in said and f"{PROPIONIC[1]}未复检" in said and "一并复检" in said and "原不合格结论不变" in said


def test_a_retest_of_every_member_of_the_sum_decides_it(rules):
    items = [_item(SORBIC[0], [0.6], "g/kg", "合格", SORBIC[1]), _item(PROPIONIC[0], [1.2], "g/kg", "合格", PROPIONIC[1]),
             _item("preservative_ratio_sum", [1.08], "无量纲", "不合格")]
    first = _pastry("2026-04-10T16:00:00+08:00", items)
    retest = _pastry("2026-05-06T10:30:00+08:00", [_item(SORBIC[0], [0.4], "g/kg", "合格", SORBIC[1]),
                                                   _item(PROPIONIC[0], [1.0], "g/kg", "合格", PROPIONIC[1])], retest=True)
    state, effects = replay([registered(category="pastry"), first, retest], rules)
    f = state.files[E]
    assert (f.counts.samples_failed, f.counts.samples_passed) == (0, 1)
    record = f.sample_by_event(str(retest.event_id))
    # the first lab's printed 1.08 is out of date once every member is re-tested: not carried as 'not re-tested'
    assert record.not_retested == () and record.judgement.verdict == "pass"
    assert [e for e in effects if e.kind == "sampling.overturned"]


def test_a_partial_retest_of_a_passing_sum_keeps_the_first_labs_sum(rules):
    """The enterprise disputed an aluminium failure; the re-test also measured sorbic acid, higher: added to the
    first lab's propionic acid it would make a failing sum neither lab found.  The first lab's sum stands."""
    items = [_item(SORBIC[0], [0.5], "g/kg", "合格", SORBIC[1]), _item(PROPIONIC[0], [1.0], "g/kg", "合格", PROPIONIC[1]),
             _item("aluminium", [150], "mg/kg", "不合格", "铝的残留量（干样品，以Al计）")]
    first = _pastry("2026-04-10T16:00:00+08:00", items)
    retest = _pastry("2026-05-06T10:30:00+08:00", [_item(SORBIC[0], [0.7], "g/kg", "合格", SORBIC[1]),
                                                   _item("aluminium", [50], "mg/kg", "合格", "铝的残留量（干样品，以Al计）")], retest=True)
    state, effects = replay([registered(category="pastry"), first, retest], rules)
    f = state.files[E]
    record = f.sample_by_event(str(retest.event_id))
    (check,) = record.judgement.sum_checks
    assert check.verdict == "pass" and abs(check.total - 0.9) < 1e-9 and "以初检的比例之和为准" in check.message_zh
    assert record.judgement.verdict == "pass" and (f.counts.samples_failed, f.counts.samples_passed) == (0, 1)


def test_a_printed_sum_alone_is_not_cleared_by_a_retest_of_one_preservative(rules):
    """A review of the round's diff: an announcement's report often has only the printed sum (1.35 不合格), no members:
    the first version of the rule took it for out of date once the re-test touched a member, and a re-test of
    sorbic acid alone cleared the failure.  The printed sum is the first lab's result the re-test did not re-determine."""
    first = _pastry("2026-04-10T16:00:00+08:00", [_item("preservative_ratio_sum", [1.35], "无量纲", "不合格")])
    retest = _pastry("2026-05-06T10:30:00+08:00", [_item(SORBIC[0], [0.4], "g/kg", "合格", SORBIC[1])], retest=True)
    for order in _orders(first, retest):
        state, effects = replay([registered(category="pastry"), *order], rules)
        f = state.files[E]
        assert (f.counts.samples_failed, f.counts.samples_passed) == (1, 0), order
        assert not [e for e in effects if e.kind == "sampling.overturned"]
        assert f.sample_by_event(str(retest.event_id)).not_retested == ("preservative_ratio_sum",)


def test_the_first_labs_sum_stands_without_a_disagreement_about_the_mixed_figure(rules):
    """The mixed figure's disagreement (qrisk fails a sum the lab passed member by member) was left on the re-test's
    judgement by an off-by-one, and alerted in one order of arrival only."""
    items = [_item(SORBIC[0], [0.5], "g/kg", "合格", SORBIC[1]), _item(PROPIONIC[0], [1.0], "g/kg", "合格", PROPIONIC[1]),
             _item("aluminium", [150], "mg/kg", "不合格", "铝的残留量（干样品，以Al计）")]
    first = _pastry("2026-04-10T16:00:00+08:00", items)
    retest = _pastry("2026-05-06T10:30:00+08:00", [_item(SORBIC[0], [0.7], "g/kg", "合格", SORBIC[1]),
                                                   _item("aluminium", [50], "mg/kg", "合格", "铝的残留量（干样品，以Al计）")], retest=True)
    for order in _orders(first, retest):
        state, effects = replay([registered(category="pastry"), *order], rules)
        record = state.files[E].sample_by_event(str(retest.event_id))
        assert record.judgement.disagreements == (), order
        assert not [e for e in effects if e.kind == "judgement.disagrees_with_lab"], order


def test_a_list_of_retest_labs_admits_only_those(rules):
    """Without a list any lab key may post a passing 复检 of any failure (from another lab, in time, not microbial)
    and overturn it: qrisk has no record of which lab was assigned.  retest.institutions (复检机构名录) closes that:
    a lab system by its CMA number, a re-test an importer or the bureau posts by the lab name it prints."""
    from processors.step import Rules
    from schemas.policy import Policy
    from tests.conftest import lab_source

    first = _water("2026-04-10T16:00:00+08:00", [_item("bromate", [0.013], "mg/L", "不合格", "溴酸盐")])
    retest = _water("2026-05-06T10:30:00+08:00", [_item("bromate", [0.008], "mg/L", "合格", "溴酸盐")], retest=True)

    def folded(listed, *events):
        listing = Rules(rules.catalogue, Policy.model_validate({"retest": {"institutions": listed}}))
        state, effects = replay([registered(), *events], listing)
        return state.files[E], effects

    cma = lab_source(RETEST_LAB)["id"]
    for listed in ([], [cma]):
        f, _ = folded(listed, first, retest)
        assert (f.counts.samples_failed, f.counts.samples_passed) == (0, 1), listed  # admitted: overturned
    for listed in (["CMA-330100-0999"], [RETEST_LAB]):  # another lab; the name a lab system prints is its own word
        for order in _orders(first, retest):
            f, effects = folded(listed, *order)
            assert (f.counts.samples_failed, f.counts.samples_passed) == (1, 0), (listed, order)
            (refused,) = [e for e in effects if e.kind == "sampling.retest_inadmissible"]
            assert refused.data["reason"] == "not_listed" and "不在本局登记的复检机构清单中" in refused.data["reason_zh"] and cma in refused.data["reason_zh"]
    # a re-test the bureau posts (no lab system): by the lab name it prints
    doc = retest.model_dump(mode="json", exclude_unset=True)
    doc["source"] = {"kind": "bureau", "id": "county-msb", "name": "县市场监督管理局"}
    from schemas.upcast import parse_event

    posted = parse_event(doc)
    f, _ = folded([f" {RETEST_LAB} "], first, posted)
    assert (f.counts.samples_failed, f.counts.samples_passed) == (0, 1)
    f, _ = folded(["别的复检机构"], first, posted)
    assert (f.counts.samples_failed, f.counts.samples_passed) == (1, 0)
