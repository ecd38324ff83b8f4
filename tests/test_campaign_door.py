"""A campaign.training the door refuses: a part larger than its whole (item 5 of the campaign officer's
review), named by its field, in English and Chinese, as the other door checks are."""
from __future__ import annotations

import json

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
