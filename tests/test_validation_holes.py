"""Holes a lab-integrator review found in the contract, each refused at the door with the field and
the reason in English and Chinese: control characters in identifiers and short text, the nil UUID as
an event id, a complaint without text, an integer beyond 2**53 silently rounded.  Like every check
added after events were first accepted, at the door only: a log holding such an event re-reads it.
"""
from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest

from ingest.validate import decode_body
from schemas.upcast import parse_event
from tests.conftest import golden

NIL = "00000000-0000-0000-0000-000000000000"


def _body(doc) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def _errors(doc) -> dict[str, dict]:
    """The door's errors for one refused event, by field (both decode paths: the fast one declines)."""
    events, rejected = decode_body(_body(doc))
    assert not events, "accepted"
    (rejection,) = rejected
    assert all(e["reason"] and e["reason_zh"] for e in rejection.errors)
    return {e["field"]: e for e in rejection.errors}


def _accepted(doc) -> list:
    events, rejected = decode_body(_body(doc))
    assert rejected == [], [r.errors for r in rejected]
    return events


def _sample(**payload) -> dict:
    doc = golden("sampling.result")
    doc["payload"].update(payload)
    return doc


def _enforcement_with_sample_no(sample_no: str) -> dict:
    doc = golden("enforcement.decided")
    doc["payload"]["sample_nos"] = [sample_no]
    return doc


def _value(value) -> dict:
    doc = golden("sampling.result")
    doc["payload"]["items"][0]["values"] = [0, value]
    return doc


# --------------------------------------------------------------------------- control characters


@pytest.mark.parametrize("text, code", [("SC2026\x00031", "U+0000"), ("SC2026\t031", "U+0009"), ("SC2026\n031", "U+000A"),
                                        ("SC2026\x7f031", "U+007F"), ("SC2026\x85031", "U+0085"), ("SC2026\x1b031", "U+001B")])
def test_a_control_character_in_an_identifier_is_refused(text, code):
    error = _errors(_sample(sample_no=text))["payload.sample_no"]
    assert error["type"] == "value_error"
    assert "control characters" in error["reason"] and code in error["reason"]
    assert "控制字符" in error["reason_zh"] and code in error["reason_zh"]
    assert repr(text) in error["reason"]  # the character shows, escaped


@pytest.mark.parametrize("doc, field", [
    (_sample(product="饮用\x00纯净水"), "payload.product"),  # a required short text
    (_sample(batch="2026\x0003"), "payload.batch"),  # an optional one
    ({**golden("sampling.result"), "source": {"kind": "lab", "id": "CMA-330100-0451\x00"}}, "source.id"),
    (_enforcement_with_sample_no("SC\x00001"), "payload.sample_nos[0]"),  # in a list
])
def test_a_control_character_in_short_text_is_refused_wherever_it_is(doc, field):
    assert "U+0000" in _errors(doc)[field]["reason"]


def test_a_control_character_in_a_unit_or_a_checklist_clause_is_refused():
    doc = golden("sampling.result")
    doc["payload"]["items"][1]["unit"] = "mg/L\x00"
    assert "payload.items[1].unit" in _errors(doc)
    doc = golden("inspection.completed")
    doc["payload"]["findings"][0]["code"] = "4.2\x001"
    assert "payload.findings[0].code" in _errors(doc)


def test_free_text_is_kept_as_sent():
    """A complaint's text, a note, a reason: what the person wrote, line breaks, tabs and all."""
    doc = golden("complaint.received")
    doc["payload"]["text"] = "第一行\n第二行\t（附图）\x00"
    (event,) = _accepted(doc)
    assert event.payload.text == doc["payload"]["text"]


def test_surrounding_spaces_are_still_stripped_not_refused():
    (event,) = _accepted(_sample(sample_no="  SC2026031 \t"))
    assert event.payload.sample_no == "SC2026031"


# --------------------------------------------------------------------------- the nil UUID


@pytest.mark.parametrize("spelling", [NIL, NIL.replace("-", ""), "{" + NIL + "}", "urn:uuid:" + NIL])
def test_the_nil_uuid_is_no_event_id(spelling):
    doc = golden("complaint.received")
    doc["event_id"] = spelling
    error = _errors(doc)["event_id"]
    assert NIL in error["reason"] and "nil UUID" in error["reason"]
    assert "全零 UUID" in error["reason_zh"]


def test_a_related_event_id_is_only_a_reference():
    # (only the event's own id is its idempotency key; interview.held's related ids are not checked here)
    doc = golden("interview.held")
    doc["payload"]["related_event_ids"] = ["6f1c2a3b-1111-4000-8000-00000000c0de"]
    _accepted(doc)


# --------------------------------------------------------------------------- a complaint needs text


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_a_complaint_without_text_is_refused_as_other_required_texts_are(text):
    doc = golden("complaint.received")
    doc["payload"]["text"] = text
    error = _errors(doc)["payload.text"]
    # the error an enforcement decision's violation gets, so empty or blank (min_length 1)
    other = golden("enforcement.decided")
    other["payload"]["violation"] = text
    assert (error["type"], error["reason"], error["reason_zh"]) == tuple(
        _errors(other)["payload.violation"][k] for k in ("type", "reason", "reason_zh"))
    # a blank one is named as blank: "at least 1 character" of 3 characters read as a bug (a review)
    assert error["type"] == "string_too_short"
    assert error["reason_zh"] == "文本过短（至少 1 个字符）" if text == "" else error["reason_zh"].startswith("不能只含空白字符")


# --------------------------------------------------------------------------- integers beyond 2**53


@pytest.mark.parametrize("value", [2**53 + 1, -(2**53) - 1, 2**53 + 2, 10**20], ids=["2^53+1", "-(2^53+1)", "2^53+2", "10^20"])
def test_an_integer_beyond_2_53_in_values_is_refused_not_rounded(value):
    error = _errors(_value(value))["payload.items[0].values[1]"]  # one error, the door's own
    assert error["type"] == "value_error"
    assert "±9007199254740992 (2^53)" in error["reason"] and "not held exactly" in error["reason"]
    assert "数值须在 ±9007199254740992（2^53）以内" in error["reason_zh"]


def test_a_400_digit_integer_is_still_refused():
    assert "payload.items[0].values[1]" in _errors(_value(10**400))


def test_the_integers_a_number_holds_exactly_are_kept_exactly():
    for value in (2**53, -(2**53), 2**53 - 1):
        (event,) = _accepted(_value(value))
        assert event.payload.items[0].values[1] == value and type(event.payload.items[0].values[1]) is int
    (event,) = _accepted(_value(0.005))
    assert event.payload.items[0].values[1] == 0.005


def test_a_float_as_large_is_refused_too():
    """Only the float is left once pydantic read an integer that large: no measurement comes near 9e15."""
    assert "payload.items[0].values[1]" in _errors(_value(1e20))
    assert "payload.items[0].values[1]" in _errors(_value(-9007199254740992.0))


def test_the_raw_integer_is_refused_on_the_fast_path_too():
    raw = _body(_value(12345)).replace(b"12345", b"9007199254740993")
    events, rejected = decode_body(raw)
    assert events == [] and [e["field"] for r in rejected for e in r.errors] == ["payload.items[0].values[1]"]


def test_other_measured_numbers_beyond_2_53_are_refused():
    doc = golden("sampling.result")
    doc["payload"]["items"][1]["detection_limit"] = 2**53 + 1
    assert "9007199254740992" in _errors(doc)["payload.items[1].detection_limit"]["reason"]
    doc = golden("campaign.activity")
    doc["payload"]["lab_value"] = 2**53 + 1
    assert "9007199254740992" in _errors(doc)["payload.lab_value"]["reason"]
    # the constraints those fields had stand
    doc = golden("sampling.result")
    doc["payload"]["items"][1]["detection_limit"] = -1
    assert _errors(doc)["payload.items[1].detection_limit"]["type"] == "greater_than_equal"


def test_a_quoted_number_is_still_told_as_before():
    error = _errors(_value("59"))["payload.items[0].values[1]"]
    assert error["type"] == "measured_value" and "send the number without quotes (59)" in error["reason"]


# --------------------------------------------------------------------------- at the door only


HOLES = {
    "NUL in sample_no": lambda d: d["payload"].update(sample_no="SC2026\x00031"),
    "nil event_id": lambda d: d.update(event_id=NIL),
    "value beyond 2**53": lambda d: d["payload"]["items"][0]["values"].__setitem__(0, 2**53 + 1),
    "float beyond 2**53": lambda d: d["payload"]["items"][0]["values"].__setitem__(0, 1e20),
    "NUL in an item's unit": lambda d: d["payload"]["items"][1].update(unit="mg/L\x00"),
}


@pytest.mark.parametrize("mutate", HOLES.values(), ids=HOLES.keys())
def test_each_check_holds_at_every_door_and_not_for_logs(mutate):
    from qrisk.pipeline import _parse_logged
    from qrisk.worker import normalise

    doc = golden("sampling.result")
    mutate(doc)
    raw = _body(doc)
    assert decode_body(raw)[1], "the HTTP door refuses it"
    arriving, letter = normalise("ingress", 0, 7, raw, {}, dt.datetime(2026, 4, 6, tzinfo=dt.timezone.utc))
    assert arriving is None and letter is not None, "so does the Kafka ingress"
    assert _parse_logged(raw.decode()) == parse_event(doc)  # the embedded log re-reads it
    logged, letter = normalise("log", 0, 7, raw, {}, None)  # and so does a worker re-reading the Kafka log
    assert letter is None and logged == parse_event(doc)


def test_a_logged_complaint_without_text_re_reads():
    doc = golden("complaint.received")
    doc["payload"]["text"] = ""
    assert decode_body(_body(doc))[1]
    assert parse_event(doc).payload.text == ""


# --------------------------------------------------------------------------- the exported schema says so


def test_the_exported_schema_refuses_what_the_door_refuses(tmp_path):
    """A lab checking its payloads against ``qrisk schema export`` learns of these before sending."""
    import jsonschema

    from schemas.export import export

    export(tmp_path)

    def refused(doc) -> bool:
        schema = json.loads((tmp_path / f"{doc['event_type']}.schema.json").read_text(encoding="utf-8"))
        return bool(list(jsonschema.Draft202012Validator(schema).iter_errors(doc)))

    assert not refused(golden("sampling.result")) and not refused(golden("complaint.received"))
    assert refused(_sample(sample_no="SC2026\x00031"))
    assert refused(_sample(batch="2026\n03"))
    nil = golden("complaint.received")
    nil["event_id"] = NIL
    assert refused(nil)
    empty = golden("complaint.received")
    empty["payload"]["text"] = ""
    assert refused(empty)
    multiline = golden("complaint.received")
    multiline["payload"]["text"] = "第一行\n第二行"
    assert not refused(multiline)
    # the years the door takes (format date-time alone allows 0001–9999)
    for early in ("0001-01-01T00:00:00Z", "1969-12-31T23:00:00Z", "2106-01-01T00:00:00Z"):
        doc = golden("complaint.received")
        doc["occurred_at"] = early
        assert refused(doc) and decode_body(_body(doc))[1], early
    assert refused(_sample(sampled_on="2106-01-01")) and refused(_sample(production_date="1969-12-31"))
    assert not refused(_sample(production_date="1970-01-01"))


# --------------------------------------------------------------------------- a decimal comma


@pytest.mark.parametrize("sent, en, zh", [
    ("0,01", "use a decimal point: 0.01", "小数点应为“.”：0.01"),
    ("0，01", "use a decimal point: 0.01", "小数点应为“.”：0.01"),  # a full-width comma
    ("-0,5", "use a decimal point: -0.5", "小数点应为“.”：-0.5"),
    ("1,5 mg/L", 'use a decimal point: 1.5, and its unit in unit ("unit": "mg/L")', '小数点应为“.”：1.5，单位写在 unit 中（"unit": "mg/L"）'),
    ("12,345,678", "write the number without thousands separators: 12345678", "数字不要加千位分隔符：12345678"),
    # a decimal comma or a thousands separator: both readings, the lab knows which
    ("1,200", "use a decimal point: 1.200, or, if the comma separates thousands, no separator: 1200", "小数点应为“.”：1.200；如逗号是千位分隔符，请去掉：1200"),
])
def test_a_number_with_a_comma_is_told_the_decimal_point(sent, en, zh):
    error = _errors(_value(sent))["payload.items[0].values[1]"]
    assert error["type"] == "measured_value"
    assert error["reason"] == f'must be a number (not quoted) or "ND" / "未检出", got {sent!r}: {en}'
    assert error["reason_zh"] == f'应为数字（不加引号）或 "ND"/"未检出"，收到 {sent!r}：{zh}'
    assert '"unit": ",' not in error["reason"]  # not the number 0 with the unit ",01"


@pytest.mark.parametrize("sent", ["1,2,3", "2.6.1 mg/L"])
def test_what_follows_a_number_is_a_unit_only_when_it_could_be_one(sent):
    error = _errors(_value(sent))["payload.items[0].values[1]"]
    assert "the number goes in values" not in error["reason"] and "数值写在 values 中" not in error["reason_zh"]


def test_a_detection_limit_with_a_decimal_comma_is_shown_with_a_point():
    error = _errors(_value("<0,01"))["payload.items[0].values[1]"]
    assert '"detection_limit": 0.01' in error["reason"] and '"detection_limit": 0.01' in error["reason_zh"]


def test_a_number_and_its_unit_are_still_told_apart():
    error = _errors(_value("0.005mg/L"))["payload.items[0].values[1]"]
    assert 'the number goes in values and its unit in unit (0.005, "unit": "mg/L")' in error["reason"]


# --------------------------------------------------------------------------- a whole batch refused


@pytest.mark.parametrize("body, zh, en", [
    (b"[]", "空批次：请求中没有事件，未写入任何内容；每批应含 1 至 1000 个事件", "an empty batch"),
    (b'{"events": []}', "空批次", "an empty batch"),
    (_body([golden("clock.tick")] * 1001), "批次超过上限 1000 个事件（收到 1001 个），本批次未写入；请分批发送",
     "the batch holds 1001 events, more than the 1000 allowed"),
    (b"[1,", "请求体不是合法的 JSON", "not valid JSON"),
    (b'{"events": [], "x": 1}', "请求体格式有误", "no batch"),
])
def test_a_batch_refused_as_a_whole_says_what_is_wrong_with_it(body, zh, en):
    from ingest.validate import rejection_detail

    events, rejected = decode_body(body)
    detail, detail_en = rejection_detail(rejected)
    assert events == [] and detail.startswith(zh) and en in detail_en
    assert "个事件未通过校验" not in detail and "failed validation" not in detail_en


def test_refused_events_are_still_counted():
    from ingest.validate import from_the_future, rejection_detail

    assert rejection_detail(decode_body(_body([golden("clock.tick"), {}, {}]))[1]) == (
        "2 个事件未通过校验，本批次未写入；请按 errors 修正后重发（重发同一 event_id 是安全的）",
        "2 event(s) failed validation; nothing of this request was written")
    raw = _body([golden("complaint.received")])
    events, _ = decode_body(raw)
    late = from_the_future(events, raw, dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
    assert rejection_detail(late)[0].startswith("1 个事件未通过校验")


def test_the_http_answer_says_what_is_wrong_with_the_batch(tmp_path):
    from tests.conftest import Server

    srv = Server(tmp_path / "data").start()
    try:
        empty = srv.post("/v1/events", json=[])
        assert empty.status_code == 422 and empty.json()["detail"].startswith("空批次")
        assert empty.json()["detail_en"].startswith("an empty batch")
        big = srv.post("/v1/events", json=[golden("clock.tick")] * 1001)
        assert big.status_code == 422 and "超过上限 1000 个事件" in big.json()["detail"]
        bad = srv.post("/v1/events", json=[golden("clock.tick"), {}])
        assert bad.status_code == 422 and bad.json()["detail"].startswith("1 个事件未通过校验")
        # one answer names every kind of error in the batch: a bad value, a time in the future, an event this
        # key may not send (a lab key sending a complaint) — before, one kind per resend
        from qrisk.auth import KeyStore

        _, lab_key = KeyStore(srv.data_dir / "keys.json").create("lab", "lab-holes", source_id="CMA-330100-0451")
        ok, bad_value, future, other = (golden("sampling.result"), golden("sampling.result"), golden("sampling.result"),
                                        golden("complaint.received"))
        for i, doc in enumerate((ok, bad_value, future, other)):
            doc["event_id"] = f"00000000-0000-4000-8000-00000000010{i}"
            if doc["event_type"] == "sampling.result":
                doc["payload"]["sample_no"] = f"DC-HOLES-{i}"
        bad_value["payload"]["items"][0]["values"][1] = "59"
        future["occurred_at"] = "2099-01-01T10:00:00+08:00"
        mixed = httpx.post(srv.url + "/v1/events", json=[ok, bad_value, future, other],
                           headers={"Authorization": f"Bearer {lab_key}"}, timeout=30)
        assert mixed.status_code == 422, mixed.text
        found = sorted((e["index"], e["type"]) for e in mixed.json()["errors"])
        assert found == [(1, "measured_value"), (2, "in_the_future"), (3, "forbidden")], found
        assert all(e["dead_letter_id"] for e in mixed.json()["errors"])
    finally:
        srv.stop()
