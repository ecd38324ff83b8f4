"""Details of what the HTTP door (POST /v1/events → ``decode_body``) answers a lab integrator.

From a lab integrator's review: each reason must be the sentence itself, say what is accepted,
in English and in a Chinese that reads naturally; checks added here apply at the door only, so
that what a log already holds re-reads as it was.
"""
from __future__ import annotations

import datetime as dt
import json

import pytest

from ingest.validate import decode_body
from qrisk.demo import CountyGenerator
from qrisk.worker import normalise
from schemas.events import door
from schemas.upcast import parse_event
from tests.conftest import all_goldens, golden


def _body(doc) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def _errors(doc) -> dict[str, dict]:
    """The door's errors for one refused event, by field."""
    events, rejected = decode_body(_body(doc))
    assert not events, "accepted"
    (rejection,) = rejected
    return {e["field"]: e for e in rejection.errors}


def _sample(**payload) -> dict:
    doc = golden("sampling.result")
    doc["payload"].update(payload)
    return doc


# --------------------------------------------------------------------------- 1. verdicts


@pytest.mark.parametrize("spelling, verdict", [("合格 ", "pass"), (" 不合格", "fail"), ("\t合格\n", "pass"), (" PASS ", "pass"), ("fail ", "fail")])
def test_a_verdict_with_spaces_around_it_is_read(spelling, verdict):
    doc = golden("sampling.result")
    doc["payload"]["items"][1]["lab_verdict"] = spelling
    events, rejected = decode_body(_body(doc))
    assert rejected == [] and events[0].payload.items[1].lab_verdict == verdict


def test_a_refused_verdict_says_what_is_accepted_in_both_languages():
    doc = golden("sampling.result")
    doc["payload"]["items"][0]["lab_verdict"] = "maybe"
    error = _errors(doc)["payload.items[0].lab_verdict"]
    assert "pass" in error["reason"] and "合格" in error["reason"] and "'maybe'" in error["reason"]
    assert "应为 pass/fail 或 合格/不合格" in error["reason_zh"]
    assert " or " not in error["reason_zh"]


def test_a_value_outside_a_list_is_refused_in_natural_chinese():
    doc = golden("sampling.result")
    doc["source"]["kind"] = "robot"
    error = _errors(doc)["source.kind"]
    assert error["type"] == "literal_error"
    assert error["reason_zh"] == "取值不在允许范围内，应为 'lab'、'complaint_channel'、'inspector'、'bureau'、'importer' 或 'system'；收到 'robot'"
    doc = golden("complaint.resolved")
    doc["schema_version"] = "2"
    # the version decides the shape the rest is read in: "an integer, 1 or 2" (tests/test_contract_agreement.py)
    assert _errors(doc)["schema_version"]["reason_zh"] == "schema_version 应为整数 1 或 2（不加引号），收到 '2'"


# --------------------------------------------------------------------------- 2. the reason is the sentence itself


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["payload"]["items"].append(dict(d["payload"]["items"][0])), "payload.items"),
    (lambda d: d["payload"].__setitem__("sampled_on", "1741132800"), "payload.sampled_on"),
    (lambda d: d.__setitem__("occurred_at", "2026-03-12T15:20:00"), "occurred_at"),
])
def test_english_reasons_carry_no_pydantic_prefix(mutate, field):
    doc = golden("sampling.result")
    mutate(doc)
    error = _errors(doc)[field]
    assert error["type"] == "value_error"
    assert not error["reason"].startswith("Value error") and error["reason"][0].islower(), error["reason"]


# --------------------------------------------------------------------------- 3. where the JSON breaks, in Chinese too


def test_invalid_json_says_where_in_chinese_too():
    raw = b'{\n  "event_id": "x",\n  "event_type": "sampling.result",,\n}'
    _, rejected = decode_body(raw)
    (error,) = rejected[0].errors
    assert error["type"] == "json_invalid"
    assert "line 3 column 35" in error["reason"]
    assert "第 3 行第 35 列" in error["reason_zh"] and "不是合法的 JSON" in error["reason_zh"]
    # the tokens Python reads but JSON has not: no position to give, the reason names the token
    _, rejected = decode_body(_body(golden("sampling.result")).replace(b"0.01]", b"NaN]"))
    (error,) = rejected[0].errors
    assert error["type"] == "json_invalid" and "NaN" in error["reason_zh"]


# --------------------------------------------------------------------------- 4. the item's Chinese name in warnings


def test_a_warning_names_the_item_in_chinese_when_the_lab_did_not(rules):
    from ingest.lint import event_warnings

    doc = golden("sampling.result")
    doc["payload"]["items"][3] = {"item_code": "coliforms", "values": [0], "unit": "mg/kg"}  # no item_name, a unit it does not convert from
    (warning,) = event_warnings(parse_event(doc), rules.catalogue, "packaged_water")
    assert warning["type"] == "unit_mismatch" and "大肠菌群的标准单位" in warning["reason_zh"], warning
    doc["payload"]["items"][3] = {"item_code": "coliforms", "values": [-1], "unit": "CFU/100mL"}
    (warning,) = event_warnings(parse_event(doc), rules.catalogue, None)  # category unknown: any category's name
    assert warning["type"] == "negative_value" and "大肠菌群将无法判定" in warning["reason_zh"], warning
    # the lab's own name comes first, the code when nobody knows the item
    doc["payload"]["items"][3] = {"item_code": "coliforms", "item_name": "总大肠菌群", "values": [-1], "unit": "CFU/100mL"}
    assert "总大肠菌群将无法判定" in event_warnings(parse_event(doc), rules.catalogue, None)[0]["reason_zh"]
    doc["payload"]["items"][3] = {"item_code": "no_such_item", "values": [-1], "unit": "mg/L"}
    assert {w["reason_zh"] for w in event_warnings(parse_event(doc), rules.catalogue, None)} >= {"检测结果为负值，no_such_item将无法判定"}


# --------------------------------------------------------------------------- 5. a result reported before its sample was taken


def test_a_result_reported_before_its_sampling_date_is_refused_at_the_door():
    doc = _sample(sampled_on="2026-04-05")  # occurred_at 2026-03-12T15:20:00+08:00
    error = _errors(doc)["payload.sampled_on"]
    assert "2026-04-05" in error["reason"] and "2026-03-12" in error["reason"]
    assert "抽样日期 2026-04-05 晚于结果报告时间 2026-03-12" in error["reason_zh"]
    # a log holding such an event re-reads it as it was
    assert parse_event(doc).payload.sampled_on == dt.date(2026, 4, 5)


@pytest.mark.parametrize("occurred_at, refused", [
    ("2026-03-04T17:00:00Z", False),  # 2026-03-05 01:00 in Beijing: the day it was sampled
    ("2026-03-04T15:59:59Z", True),  # 2026-03-04 23:59:59 in Beijing: the day before
    ("2026-03-05T00:30:00+08:00", False),
    ("2026-03-04T23:30:00+08:00", True),
    ("2026-03-04T20:00:00-05:00", False),  # 2026-03-05 09:00 in Beijing
])
def test_the_report_day_is_the_local_one(occurred_at, refused):
    doc = _sample(sampled_on="2026-03-05", production_date="2026-03-01")
    doc["occurred_at"] = occurred_at
    events, rejected = decode_body(_body(doc))
    assert bool(rejected) == refused, rejected and rejected[0].errors
    if refused:
        (error,) = rejected[0].errors
        assert error["field"] == "payload.sampled_on" and "2026-03-04" in error["reason_zh"]


@pytest.mark.parametrize("offset, refused", [(8, False), (0, True), (-5, True), (9, False)])
def test_the_local_day_is_the_bureaus_own(offset, refused):
    # 2026-03-04 17:00 UTC is 03-05 in Beijing (or Tokyo), still 03-04 in London or New York:
    # a bureau whose policy says utc_offset_hours 0 compares the lab's date with its own day
    doc = _sample(sampled_on="2026-03-05", production_date="2026-03-01")
    doc["occurred_at"] = "2026-03-04T17:00:00Z"
    events, rejected = decode_body(_body(doc), context=door(offset))
    assert bool(rejected) == refused, rejected and rejected[0].errors
    if refused:
        assert "2026-03-04" in rejected[0].errors[0]["reason_zh"]
    # the Kafka ingress takes the same context, and the log re-reads the event without it
    event, letter = normalise("qrisk-ingress", 0, 7, _body(doc), {}, dt.datetime(2026, 3, 5, tzinfo=dt.timezone.utc), door(offset))
    assert (letter is not None) == refused and (event is None) == refused
    if refused:
        assert letter.errors[0]["field"] == "payload.sampled_on"
    assert normalise("qrisk-log", 0, 7, _body(doc), {}, None, door(offset))[0] is not None


def test_every_demo_event_and_golden_example_passes_the_door():
    docs = [json.loads(e.model_dump_json(exclude_unset=True)) for e in CountyGenerator(seed=7).generate()]
    events, rejected = decode_body(_body(docs), max_batch=len(docs))
    assert rejected == [] and len(events) == len(docs)
    for doc in docs:  # the general path too: beside a bad element, each is valid
        assert [r.index for r in decode_body(_body([doc, {}]))[1]] == [1]
    events, rejected = decode_body(_body(all_goldens()))
    assert rejected == []


# --------------------------------------------------------------------------- 6. a detection limit of 0


def test_a_detection_limit_of_zero_is_refused_at_the_door():
    doc = golden("sampling.result")
    doc["payload"]["items"][1]["detection_limit"] = 0
    error = _errors(doc)["payload.items[1].detection_limit"]
    assert "greater than 0" in error["reason"] and "方法检出限须大于 0" in error["reason_zh"]
    doc["payload"]["items"][1]["detection_limit"] = 0.0
    assert "payload.items[1].detection_limit" in _errors(doc)
    assert parse_event(doc).payload.items[1].detection_limit == 0  # a log holding one re-reads it


# --------------------------------------------------------------------------- 7. the {"events": [...]} form


def test_events_must_be_a_list():
    _, rejected = decode_body(_body({"events": golden("complaint.received")}))
    (rejection,) = rejected
    (error,) = rejection.errors
    assert error["field"] == "events" and "list of events" in error["reason"] and "数组" in error["reason_zh"]
    assert rejection.index is None


def test_keys_beside_events_are_named():
    _, rejected = decode_body(_body({"events": [golden("complaint.received")], "foo": 1, "batch_id": "x"}))
    (rejection,) = rejected
    fields = {e["field"]: e for e in rejection.errors}
    assert set(fields) == {"foo", "batch_id"}
    assert "beside events" in fields["foo"]["reason"] and "events" in fields["foo"]["reason_zh"]
    assert all(e["type"] == "extra_forbidden" for e in rejection.errors)


def test_the_other_body_forms_still_work():
    one = golden("complaint.received")
    assert len(decode_body(_body(one))[0]) == 1
    assert len(decode_body(_body([one, golden("complaint.resolved")]))[0]) == 2
    assert len(decode_body(_body({"events": [one, golden("complaint.resolved")]}))[0]) == 2
    assert decode_body(_body({"events": []}))[1][0].errors[0]["type"] == "batch_empty"  # (an empty batch is refused)
    # an event with a stray "events" key is an event, and the key is named as not belonging to it
    (rejection,) = decode_body(_body({**one, "events": []}))[1]
    assert [(e["field"], e["type"]) for e in rejection.errors] == [("events", "extra_forbidden")]


# --------------------------------------------------------------------------- 8. dates in the form expected


def test_a_date_in_basic_form_is_told_the_extended_form():
    error = _errors(_sample(sampled_on="20260305"))["payload.sampled_on"]
    assert error["reason"] == "must be an ISO-8601 date in extended form YYYY-MM-DD, such as 2026-03-01, got '20260305'"
    assert error["reason_zh"] == "应为 YYYY-MM-DD 格式的日期，如 2026-03-01，收到 '20260305'"


def test_a_timestamp_in_another_form_is_told_the_expected_form():
    doc = golden("sampling.result")
    doc["occurred_at"] = "20260312T152000+0800"
    error = _errors(doc)["occurred_at"]
    assert "YYYY-MM-DDThh:mm:ss±hh:mm" in error["reason"] and "2026-03-01T08:30:00+08:00" in error["reason"]
    assert "YYYY-MM-DDThh:mm:ss±hh:mm" in error["reason_zh"] and "带时区的 ISO-8601 时间" in error["reason_zh"]


def test_a_date_that_is_no_date_shows_the_form_and_says_why():
    error = _errors(_sample(sampled_on="2026-02-30"))["payload.sampled_on"]
    assert error["reason"].startswith("must be an ISO-8601 date in extended form YYYY-MM-DD") and "day value" in error["reason"]
    assert error["reason_zh"] == "应为 YYYY-MM-DD 格式的日期，如 2026-03-01：该月没有这一天"


# --------------------------------------------------------------------------- 5 and 6 at every door, and not in the logs


@pytest.mark.parametrize("mutate", [
    lambda d: d["payload"].update(sampled_on="2026-04-05"),
    lambda d: d["payload"]["items"][1].update(detection_limit=0),
])
def test_the_new_door_checks_hold_at_the_kafka_ingress_and_not_for_logs(mutate):
    from qrisk.pipeline import _parse_logged
    from qrisk.worker import normalise

    doc = golden("sampling.result")
    mutate(doc)
    raw = _body(doc)
    assert decode_body(raw)[1], "the HTTP door refuses it"
    arriving, letter = normalise("ingress", 0, 7, raw, {}, dt.datetime(2026, 4, 6, tzinfo=dt.timezone.utc))
    assert arriving is None and letter is not None, "so does the Kafka ingress"
    assert str(_parse_logged(raw.decode()).event_id) == doc["event_id"]  # the embedded log re-reads it
    logged, letter = normalise("log", 0, 7, raw, {}, None)  # and so does a worker re-reading the Kafka log
    assert letter is None and str(logged.event_id) == doc["event_id"]


@pytest.mark.parametrize("body", [b"[]", b"  [ ]  ", b'{"events": []}'])
def test_an_empty_batch_is_refused_not_answered_200(body):
    events, rejections = decode_body(body)
    assert events == [] and [(e["type"], e["reason_zh"]) for r in rejections for e in r.errors] == [("batch_empty", "空批次：每批应含 1 至 1000 个事件")]


def test_a_time_without_its_offset_is_refused_in_chinese_too():
    """pydantic's timezone_aware (an AwareDatetime field) had only its English message."""
    from pydantic import AwareDatetime, BaseModel, ValidationError

    from ingest.validate import reason_zh

    class Stamped(BaseModel):
        at: AwareDatetime

    with pytest.raises(ValidationError) as caught:
        Stamped(at="2026-03-05T09:30:00")
    [err] = caught.value.errors()
    assert err["type"] == "timezone_aware" and reason_zh(err).startswith("应带时区偏移")
