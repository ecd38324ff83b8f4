"""A campaign.training the door refuses: a part larger than its whole (item 5 of the campaign officer's
review), named by its field, in English and Chinese, as the other door checks are."""
from __future__ import annotations

import json

import pytest

from ingest.validate import decode_body
from schemas.upcast import parse_event
from tests.conftest import golden


def _errors(doc) -> dict[str, dict]:
    events, rejected = decode_body(json.dumps(doc, ensure_ascii=False).encode("utf-8"))
    assert not events, "accepted"
    (rejection,) = rejected
    return {e["field"]: e for e in rejection.errors}


def _training(**payload) -> dict:
    doc = golden("campaign.training")
    doc["payload"].update(payload)
    return doc


def test_more_exam_takers_than_staff_is_refused_at_the_door_and_a_log_still_rereads_it():
    doc = _training(staff_total=24, staff_trained=23, exam_takers=25, exam_first_pass=20)
    error = _errors(doc)["payload.exam_takers"]
    assert error["reason"] == "exam_takers (25) cannot exceed staff_total (24)"
    assert error["reason_zh"] == "参加考试人数（25）不能多于从业人员总数（24）"
    assert parse_event(doc).payload.exam_takers == 25  # a log that already holds one re-reads it


def test_more_first_passes_than_exam_takers_is_refused_naming_the_field():
    error = _errors(_training(exam_takers=18, exam_first_pass=19))["payload.exam_first_pass"]
    assert "exam_first_pass (19) cannot exceed exam_takers (18)" in error["reason"]
    assert error["reason_zh"] == "一次通过人数（19）不能多于参加考试人数（18）"


def test_exam_takers_equal_to_staff_pass():
    events, rejected = decode_body(json.dumps(_training(staff_total=24, exam_takers=24, exam_first_pass=24)).encode())
    assert events and not rejected


def _doc(event_type: str, occurred_at: str | None = None, **payload) -> dict:
    doc = golden(event_type)
    doc["payload"].update(payload)
    if occurred_at:
        doc["occurred_at"] = occurred_at
    return doc


@pytest.mark.parametrize("event_type, field, value", [
    ("campaign.training", "as_of", "2027-06-30"), ("campaign.assessment", "assessed_on", "2027-06-30"),
    ("campaign.commitment", "signed_on", "2027-06-30"), ("campaign.activity", "on", "2027-06-30")])
def test_a_campaign_document_dated_after_it_was_recorded_is_refused_naming_its_date(event_type, field, value):
    error = _errors(_doc(event_type, **{field: value}))[f"payload.{field}"]
    assert "is after the event was recorded" in error["reason"]
    assert "晚于记录时间" in error["reason_zh"] and "不能在将来" in error["reason_zh"]
    assert parse_event(_doc(event_type, **{field: value})).payload  # a log that already holds one re-reads it


def test_the_record_day_is_the_local_one():
    # 17:00Z on 20 March is 01:00 on 21 March in the bureau's time: an assessment dated the 21st is not ahead
    events, rejected = decode_body(json.dumps(_doc("campaign.assessment", "2026-03-20T17:00:00Z", assessed_on="2026-03-21")).encode())
    assert events and not rejected


def test_a_training_report_without_staff_is_refused():
    error = _errors(_training(staff_total=0, staff_trained=0, exam_takers=0, exam_first_pass=0))["payload.staff_total"]
    assert error["reason_zh"].startswith("从业人员总数须至少为 1")


@pytest.mark.parametrize("payload, field, zh", [
    ({"kind": "acceptance"}, "payload.passed", "检查验收须注明是否通过（passed: true 或 false）"),
    ({"passed": True}, "payload.passed", "只有检查验收有验收结论：调查分档不应注明 passed")])
def test_an_assessment_result_is_named_by_its_field(payload, field, zh):
    assert _errors(_doc("campaign.assessment", **payload))[field]["reason_zh"] == zh


@pytest.mark.parametrize("payload, field, zh", [
    ({"lab_value": None}, "payload.lab_value", "比对试验须注明实验室检验结果（lab_value）"),
    ({"lab_uncertainty": None}, "payload.lab_uncertainty", "缺少实验室结果的扩展不确定度（lab_uncertainty）"),
    ({"enterprise_uncertainty": None}, "payload.enterprise_uncertainty", "缺少企业结果的扩展不确定度（enterprise_uncertainty）"),
    ({"lab_value": -0.5}, "payload.lab_value", "实验室检验结果不能为负数（收到 -0.5）"),
    ({"enterprise_value": -1}, "payload.enterprise_value", "企业检验结果不能为负数（收到 -1）"),
    ({"kind": "visit"}, "payload.lab", "比对实验室（lab）只适用于比对试验，不适用于观摩（visit）"),
    ({"kind": "comparison_test", "findings": 2}, "payload.findings", "自查发现问题数（findings）只适用于自查，不适用于比对试验（comparison_test）"),
])
def test_an_inconsistent_activity_is_refused_naming_the_field(payload, field, zh):
    error = _errors(_doc("campaign.activity", **payload))[field]
    assert zh in error["reason_zh"]


def test_more_rectified_than_found_is_named_in_chinese():
    none = dict.fromkeys(("lab", "item_code", "enterprise_value", "lab_value", "enterprise_uncertainty", "lab_uncertainty"))
    error = _errors(_doc("campaign.activity", kind="self_inspection", findings=2, rectified=3, **none))["payload.rectified"]
    assert error["reason_zh"] == "已整改问题数（3）不能多于自查发现问题数（2）"
