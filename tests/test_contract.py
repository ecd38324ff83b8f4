"""The event contract: golden payloads, versions, JSON Schema export, precise errors."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ingest.validate import decode_body
from processors.credit_file import CountyState
from processors.step import step
from schemas.events import EVENT_TYPES, SamplingResultEvent
from schemas.upcast import UnsupportedVersion, parse_event
from tests.conftest import EXAMPLES, ROOT, all_goldens, golden


def test_there_is_one_golden_payload_per_event_type():
    names = {p.name.removesuffix(".json") for p in EXAMPLES.glob("*.json")}
    assert names == set(EVENT_TYPES)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_golden_payload_validates_and_runs_through_step(event_type, rules):
    state = CountyState()
    # the registration first, so every payload meets a known enterprise
    for doc in [golden("enterprise.registered"), golden(event_type)]:
        event = parse_event(doc)
        assert type(event) is EVENT_TYPES[doc["event_type"]]
        state, effects = step(state, event, rules)
    assert str(parse_event(golden(event_type)).event_id) in state.seen_event_ids


def test_version_1_is_upcast_to_the_current_shape():
    v1 = json.loads((EXAMPLES / "v1" / "sampling.result.json").read_text(encoding="utf-8"))
    assert v1["schema_version"] == 1 and isinstance(v1["source"], str)
    event = parse_event(v1)
    assert isinstance(event, SamplingResultEvent)
    assert event.schema_version == 2
    assert event.source.kind == "lab" and event.source.id == "CMA-330100-0451"
    assert event.payload.items[0].values == [0.01]
    assert event.payload.items[1].values == ["ND"]


def test_future_versions_are_refused_with_the_field_named():
    doc = golden("complaint.received")
    doc["schema_version"] = 9
    with pytest.raises(UnsupportedVersion):
        parse_event(doc)
    _, rejected = decode_body(json.dumps(doc).encode())
    assert rejected[0].errors[0]["field"] == "schema_version"


@pytest.mark.parametrize(
    "mutate, field, kind",
    [
        (lambda d: d["payload"]["items"][0]["values"].__setitem__(1, "59"), "payload.items[0].values[1]", "measured_value"),
        (lambda d: d.__setitem__("occurred_at", "2026-03-12T15:20:00"), "occurred_at", "value_error"),
        (lambda d: d.__setitem__("occurred_at", 1767225600), "occurred_at", "value_error"),
        (lambda d: d["payload"].__setitem__("lab_name", "x"), "payload.lab_name", "extra_forbidden"),
        (lambda d: d["payload"].pop("sample_no"), "payload.sample_no", "missing"),
        (lambda d: d["payload"]["items"][1].__setitem__("detection_limit", -1), "payload.items[1].detection_limit", "greater_than_equal"),
        (lambda d: d["payload"]["items"][0].__setitem__("item_code", "铜绿"), "payload.items[0].item_code", "string_pattern_mismatch"),
        (lambda d: d["payload"].__setitem__("retest", "yes"), "payload.retest", "bool_type"),
        (lambda d: d.__setitem__("event_id", "not-a-uuid"), "event_id", "uuid_parsing"),
        (lambda d: d.__setitem__("enterprise_id", "a b"), "enterprise_id", "string_pattern_mismatch"),
        (lambda d: d["payload"]["items"].append(dict(d["payload"]["items"][0])), "payload.items", "value_error"),
    ],
)
def test_errors_name_the_field_and_the_reason(mutate, field, kind):
    errors = _errors_of(mutate)
    found = {(e["field"], e["type"]) for e in errors}
    assert (field, kind) in found, found
    assert all(e["reason_zh"] for e in errors)


def _errors_of(mutate) -> list[dict]:
    """The errors the door gives for the golden sampling result changed by ``mutate``."""
    doc = golden("sampling.result")
    mutate(doc)
    events, rejected = decode_body(json.dumps(doc, ensure_ascii=False).encode())
    assert not events
    return rejected[0].errors


@pytest.mark.parametrize(
    "mutate, field, zh",
    [
        # epoch seconds as text, and a datetime where a date belongs: pydantic alone would read both
        (lambda d: d["payload"].__setitem__("sampled_on", "1741132800"), "payload.sampled_on", "应为 YYYY-MM-DD 格式的日期"),
        (lambda d: d["payload"].__setitem__("production_date", "0"), "payload.production_date", "应为 YYYY-MM-DD 格式的日期"),
        (lambda d: d["payload"].__setitem__("sampled_on", "2026-03-05T00:00:00"), "payload.sampled_on", "应为 YYYY-MM-DD 格式的日期"),
        (lambda d: d.__setitem__("occurred_at", "1741132800"), "occurred_at", "带时区的 ISO-8601 时间"),
        (lambda d: d.__setitem__("occurred_at", "2026-03-12T15:20:00"), "occurred_at", "时间须带时区"),
        # made after it was sampled: one of the two dates is mistyped
        (lambda d: d["payload"].update(production_date="2026-04-01", sampled_on="2026-03-05"), "payload.sampled_on", "早于生产日期 2026-04-01"),
        (lambda d: d["payload"]["items"].append(dict(d["payload"]["items"][0])), "payload.items", "出现两次"),
    ],
)
def test_bad_dates_are_refused_with_the_reason_in_chinese(mutate, field, zh):
    reasons = {e["field"]: e["reason_zh"] for e in _errors_of(mutate)}
    assert field in reasons and zh in reasons[field], reasons


def test_chinese_reasons_carry_the_detail_of_the_english_ones():
    doc = golden("sampling.result")
    doc["schema_version"] = 2
    doc["payload"]["items"][1]["detection_limit"] = -1
    doc["payload"]["items"][0]["item_code"] = "铜绿"
    doc["source"]["kind"] = "robot"
    _, rejected = decode_body(json.dumps(doc, ensure_ascii=False).encode())
    reasons = {e["field"]: e["reason_zh"] for e in rejected[0].errors}
    assert reasons["payload.items[1].detection_limit"] == "数值过小（应 ≥ 0）"
    assert reasons["payload.items[0].item_code"].startswith("格式不符合要求（应匹配 ^[a-z]")
    assert reasons["source.kind"].startswith("取值不在允许范围内，应为 'lab'")


def test_a_body_not_in_utf8_is_named_as_an_encoding_problem():
    raw = json.dumps(golden("complaint.received"), ensure_ascii=False).encode("gbk")
    _, rejected = decode_body(raw)
    (error,) = rejected[0].errors
    assert error["type"] == "body_encoding" and "GBK" in error["reason_zh"] and "not UTF-8" in error["reason"]


def test_an_oversized_batch_says_the_limit():
    doc = golden("complaint.received")
    _, rejected = decode_body(json.dumps([doc] * 3).encode(), max_batch=2)
    assert rejected[0].errors[0]["reason_zh"] == "批次超过上限：每批至多 2 个事件，收到 3 个；请分批发送"


def test_non_finite_numbers_are_refused():
    raw = json.dumps(golden("sampling.result")).replace("0.01]", "1e999]").encode()
    _, rejected = decode_body(raw)
    assert ("payload.items[1].values[0]", "finite_number") in {(e["field"], e["type"]) for e in rejected[0].errors}
    _, rejected = decode_body(json.dumps(golden("sampling.result")).replace("0.01]", "NaN]").encode())
    assert rejected[0].errors[0]["type"] == "json_invalid"


def test_chinese_verdicts_and_not_detected_are_normalised():
    doc = golden("sampling.result")
    doc["payload"]["items"][2]["values"] = ["未检出"]
    event = parse_event(doc)
    assert event.payload.items[2].values == ["ND"]
    assert event.payload.items[0].lab_verdict == "fail" and event.payload.items[1].lab_verdict == "pass"


def test_schema_export_writes_a_schema_per_type(tmp_path):
    out = subprocess.run([sys.executable, "-m", "qrisk", "schema", "export", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    files = {p.name for p in tmp_path.glob("*.schema.json")}
    assert files == {f"{t}.schema.json" for t in EVENT_TYPES} | {"event.schema.json"}
    sampling = json.loads((tmp_path / "sampling.result.schema.json").read_text(encoding="utf-8"))
    assert "payload" in sampling["required"]
    assert sampling["additionalProperties"] is False
    assert sampling["examples"] == [golden("sampling.result")]  # what a valid event looks like, in the schema itself
    assert "CMA" in sampling["$defs"]["Source"]["properties"]["id"]["description"]
    whole = json.loads((tmp_path / "event.schema.json").read_text(encoding="utf-8"))
    assert set(whole["discriminator"]["mapping"]) == set(EVENT_TYPES)
    # the scenarios come with the schemas, byte for byte
    assert {p.name for p in (tmp_path / "examples").iterdir()} == {"retest.json", "correction.json", "import.csv"}
    assert (tmp_path / "examples" / "retest.json").read_bytes() == (EXAMPLES / "scenarios" / "retest.json").read_bytes()


# --------------------------------------------------------------------------- scenarios


def _fold_scenario(name: str, rules) -> tuple[object, list[list[str]]]:
    state = CountyState()
    state, _ = step(state, parse_event(golden("enterprise.registered")), rules)
    kinds = []
    for doc in json.loads((EXAMPLES / "scenarios" / name).read_text(encoding="utf-8")):
        state, effects = step(state, parse_event(doc), rules)
        kinds.append([e.kind for e in effects])
    return state.files["E-330110-001"], kinds


def test_the_retest_scenario_is_a_failure_overturned_by_another_labs_retest(rules):
    file, kinds = _fold_scenario("retest.json", rules)
    assert "sampling.failed" in kinds[0] and "sampling.overturned" in kinds[1]
    original, retest = file.samples
    assert original.sample_no == retest.sample_no and retest.retest and retest.lab != original.lab
    assert (original.superseded_as, retest.judgement.verdict) == ("retest", "pass")
    assert (file.counts.samples, file.counts.samples_failed, file.counts.samples_passed) == (1, 0, 1)


def test_the_correction_scenario_replaces_the_report_on_file(rules):
    file, kinds = _fold_scenario("correction.json", rules)
    assert "sampling.failed" in kinds[0] and "sampling.corrected" in kinds[1]
    wrong, corrected = file.samples
    assert wrong.sample_no == corrected.sample_no and wrong.lab_id == corrected.lab_id and corrected.corrects == wrong.event_id
    assert (wrong.superseded_as, corrected.judgement.verdict) == ("corrected", "pass")
    assert (file.counts.samples, file.counts.samples_failed) == (1, 0)


def test_the_csv_example_reads_as_the_golden_events():
    from ingest.files import read_events

    read = [doc for _, _, doc in read_events(EXAMPLES / "scenarios" / "import.csv")]
    assert read == [golden(t) for t in ("enterprise.registered", "sampling.result", "complaint.received")]


def test_every_golden_payload_validates_against_its_exported_json_schema(tmp_path):
    """What a lab integrator checks a payload with must accept what qrisk accepts: the golden
    examples (合格 as the lab's verdict, dates as text) against the exported schemas."""
    import jsonschema

    from schemas.export import export

    export(tmp_path)
    for event_type in sorted(EVENT_TYPES):
        schema = json.loads((tmp_path / f"{event_type}.schema.json").read_text(encoding="utf-8"))
        validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(golden(event_type))]
        assert not errors, (event_type, errors)
    # and it still refuses what qrisk refuses
    bad = golden("sampling.result")
    bad["payload"]["items"][0]["lab_verdict"] = "maybe"
    schema = json.loads((tmp_path / "sampling.result.schema.json").read_text(encoding="utf-8"))
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(bad))


def test_the_door_warns_of_items_qrisk_cannot_judge(rules):
    from ingest.lint import event_warnings

    doc = golden("sampling.result")
    items = doc["payload"]["items"]
    items[0]["item_code"] = "pseudomonas_aeruginosaa"  # misspelt
    items[1]["unit"] = "kg/L"  # not a unit qrisk knows
    items[3]["unit"] = "mg/kg"  # a known unit, not one this item converts to
    event = parse_event(doc)
    warned = {(w["field"], w["type"]) for w in event_warnings(event, rules.catalogue, "packaged_water")}
    assert warned == {("payload.items[0].item_code", "unknown_item"), ("payload.items[1].unit", "unknown_unit"),
                      ("payload.items[3].unit", "unit_mismatch")}
    assert event_warnings(parse_event(golden("sampling.result")), rules.catalogue, "packaged_water") == []
    # one value where the plan (n=5, c=0, m=0) needs five: undetermined, and said so at once
    doc = golden("sampling.result")
    doc["payload"]["items"][0]["values"] = [0]
    [short] = event_warnings(parse_event(doc), rules.catalogue, "packaged_water")
    assert (short["field"], short["type"]) == ("payload.items[0].values", "wrong_value_count") and "n=5" in short["reason_zh"]
    assert event_warnings(parse_event(doc), rules.catalogue, None) == []  # no category yet: no plan to count against
    # two readings of an item limited per result (bromate ≤ 0.01 mg/L): judged by the larger, and the lab hears it
    doc = golden("sampling.result")
    doc["payload"]["items"][2]["values"] = [0.021, 0.002]
    [twice] = event_warnings(parse_event(doc), rules.catalogue, "packaged_water")
    assert (twice["field"], twice["type"]) == ("payload.items[2].values", "several_values")
    assert "按其中最大值判定" in twice["reason_zh"] and "平均值" in twice["reason_zh"]
    # a natural mineral water: said once, at the product; its GB 19298 plan items are not counted (they are not judged)
    doc["payload"]["product"] = "饮用天然矿泉水"
    [mineral] = event_warnings(parse_event(doc), rules.catalogue, "packaged_water")
    assert (mineral["field"], mineral["type"]) == ("payload.product", "uncatalogued_standard") and "GB 8537-2018" in mineral["reason_zh"]
    # a pastry item (酸价) on a water plant's sample is unknown for that plant, known in general
    doc = golden("sampling.result")
    doc["payload"]["items"][3] = {"item_code": "acid_value", "values": [-0.1], "unit": "mg/g"}
    event = parse_event(doc)
    assert {w["type"] for w in event_warnings(event, rules.catalogue, "packaged_water")} == {"unknown_item", "negative_value"}
    assert {w["type"] for w in event_warnings(event, rules.catalogue, None)} == {"negative_value"}
    doc["payload"]["items"][3]["values"] = [0.2, "ND", -0.1]  # the field names the negative one
    assert [w["field"] for w in event_warnings(parse_event(doc), rules.catalogue, None)] == ["payload.items[3].values[2]"]
    # sorbic acid is not permitted in water: any detection fails it, in whatever unit
    doc["payload"]["items"][3] = {"item_code": "sorbic_acid", "values": [0.1], "unit": "g/kg"}
    assert event_warnings(parse_event(doc), rules.catalogue, "packaged_water") == []
    doc["payload"]["items"][3]["unit"] = "克每千克"  # not even a unit qrisk reads: still judged, by detection
    assert event_warnings(parse_event(doc), rules.catalogue, "packaged_water") == []


def test_schema_export_writes_the_catalogue_the_results_are_judged_with(tmp_path, rules):
    out = subprocess.run([sys.executable, "-m", "qrisk", "schema", "export", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "catalogue.json").read_text(encoding="utf-8"))
    assert doc["digest"] == rules.catalogue.digest
    water = {i["item_code"]: i for i in doc["categories"]["packaged_water"]["items"]}
    plan = water["pseudomonas_aeruginosa"]["rules"][0]
    assert (plan["kind"], plan["n"], plan["c"], plan["m"]) == ("plan", 5, 0, 0)
    assert any("CFU/250mL" == u["unit"] or "CFU/250mL" in u["aliases"] for u in doc["units"])
    # a lab learns which products an item is judged for
    assert water["ph"]["scope"]["products"] == ["纯净水", "纯水", "蒸馏水"] and water["lead"]["scope"] is None
    assert "蒸馏法" in water["cyanide"]["rules"][0]["caveat_zh"] and "caveat_zh" not in water["lead"]["rules"][0]


@pytest.mark.parametrize("mutate", [
    lambda p: p.update(production_date="2026-04-01", sampled_on="2026-03-05"),
    lambda p: p.update(sampled_on="2026-03-05T00:00:00"),
    lambda p: p.update(sampled_on="1741132800"),
])
def test_a_check_added_at_the_door_does_not_refuse_what_a_log_already_holds(mutate):
    """Refused when they arrive now; but logs written before the check hold such events, and a
    replay must re-read them as they were accepted, or recovery would lose them (or stop)."""
    import datetime as dt

    from qrisk.pipeline import _parse_logged
    from qrisk.worker import normalise

    doc = golden("sampling.result")
    mutate(doc["payload"])
    raw = json.dumps(doc, ensure_ascii=False).encode()
    assert decode_body(raw)[1], "the door refuses it"
    arriving, letter = normalise("ingress", 0, 7, raw, {}, dt.datetime(2026, 11, 26, tzinfo=dt.timezone.utc))
    assert arriving is None and letter is not None, "so does the Kafka ingress"
    assert _parse_logged(raw.decode()).event_id == parse_event(doc).event_id  # the embedded log re-reads it
    logged, letter = normalise("log", 0, 7, raw, {}, None)  # and so does a worker re-reading the Kafka log
    assert letter is None and str(logged.event_id) == doc["event_id"]


def test_the_door_warns_of_a_comparison_test_on_an_item_the_catalogue_lacks(rules):
    from ingest.lint import event_warnings

    doc = golden("campaign.activity")
    assert doc["payload"]["kind"] == "comparison_test"
    assert event_warnings(parse_event(doc), rules.catalogue, "packaged_water") == []
    doc["payload"]["item_code"] = "total_bacterial_count"  # what the demo once sent: the catalogue says aerobic_plate_count
    (warning,) = event_warnings(parse_event(doc), rules.catalogue, None)
    assert (warning["field"], warning["type"]) == ("payload.item_code", "unknown_item")


@pytest.mark.parametrize("event_type,path,value", [
    ("sampling.result", ("payload", "items", 1, "detection_limit"), 0),
    ("sampling.result", ("payload", "items", 1, "unit"), "   "),
    ("sampling.result", ("payload", "sample_no"), " \u3000 "),
    ("sampling.result", ("payload", "lab"), " "),
    ("sampling.result", ("source", "id"), "  "),
    ("enforcement.decided", ("payload", "violation"), " \n "),
    ("complaint.received", ("payload", "text"), "   "),
    ("sampling.retracted", ("payload", "reason"), " \u3000 "),
    ("sampling.retracted", ("payload", "sample_no"), "  "),
    ("fluctuation.rebaselined", ("payload", "reason"), " \u3000 "),
    ("fluctuation.rebaselined", ("payload", "product"), "  "),
    ("fluctuation.rebaselined", ("payload", "confirmed_by"), " "),
])
def test_the_exported_schema_refuses_what_the_door_refuses(tmp_path, event_type, path, value):
    """A review found the schema a lab checks with accepting a detection limit of 0 and blank texts,
    which the door refuses; the door's reason for a blank one said "at least 1 character"."""
    import jsonschema

    from schemas.export import export

    export(tmp_path)
    doc = golden(event_type)
    at = doc
    for part in path[:-1]:
        at = at[part]
    at[path[-1]] = value
    schema = json.loads((tmp_path / f"{event_type}.schema.json").read_text(encoding="utf-8"))
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(doc)), "the schema accepts it"
    events, rejected = decode_body(json.dumps(doc, ensure_ascii=False).encode())
    assert not events and rejected
    if isinstance(value, str) and value and path[-1] != "text":
        (error,) = rejected[0].errors
        assert "blank (only spaces)" in error["reason"] and "不能只含空白字符" in error["reason_zh"], error
