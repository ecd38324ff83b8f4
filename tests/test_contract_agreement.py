"""The exported JSON Schema and the door agree.

From a lab integrator's review: campaign scores and comparison-test uncertainties took "58" and true
where every other number is strict; the exported schema accepted bodies the door refuses for checks
a schema can state (a staff of 0, a negative comparison value, a fine without its amount …).  (A
version-1 sender: tests/test_contract_v1.py.)
"""
from __future__ import annotations

import datetime as dt
import json

import pytest

from ingest.validate import decode_body
from schemas.events import MAX_EXACT_INT
from schemas.upcast import parse_event
from tests.conftest import golden


def _body(doc) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def _door(doc) -> list[dict]:
    """The door's errors for one event (empty: accepted), as POST /v1/events answers them."""
    events, rejected = decode_body(_body(doc))
    return [e for r in rejected for e in r.errors]


# --------------------------------------------------------------------------- 1. quoted numbers and booleans


def _score(value):
    def mutate(d):
        d["payload"]["scores"]["staff"] = value
    return "campaign.assessment", mutate, "payload.scores.staff"


def _uncertainty(field, value):
    def mutate(d):
        d["payload"][field] = value
    return "campaign.activity", mutate, f"payload.{field}"


LAX = [_score(True), _score("58"), _score(" 58 "), _uncertainty("lab_uncertainty", "0.05"),
       _uncertainty("enterprise_uncertainty", True), _uncertainty("enterprise_uncertainty", "1")]


@pytest.mark.parametrize("event_type, mutate, field", LAX)
def test_a_quoted_score_or_uncertainty_is_refused_where_events_arrive(event_type, mutate, field):
    from qrisk.worker import normalise

    doc = golden(event_type)
    mutate(doc)
    errors = _door(doc)
    assert [e["field"] for e in errors] == [field], errors
    assert "not quoted" in errors[0]["reason"] and "不加引号" in errors[0]["reason_zh"]
    event, letter = normalise("ingress", 0, 7, _body(doc), {}, dt.datetime(2026, 11, 26, tzinfo=dt.timezone.utc))
    assert event is None and [e["field"] for e in letter.errors] == [field], "the Kafka ingress refuses it too"


@pytest.mark.parametrize("event_type, mutate, field", LAX)
def test_a_quoted_score_already_in_a_log_re_reads(event_type, mutate, field):
    """Logs written while these were lax may hold "58": a replay must read it as it was accepted."""
    from qrisk.pipeline import _parse_logged
    from qrisk.worker import normalise

    doc = golden(event_type)
    mutate(doc)
    raw = _body(doc)
    assert str(_parse_logged(raw.decode()).event_id) == doc["event_id"]  # the embedded log
    logged, letter = normalise("log", 0, 7, raw, {}, None)  # a worker re-reading the Kafka log
    assert letter is None and str(logged.event_id) == doc["event_id"]


def test_a_real_number_out_of_bounds_says_its_bound_not_quotes():
    doc = golden("campaign.assessment")
    doc["payload"]["scores"]["staff"] = 150
    assert [(e["field"], e["type"]) for e in _door(doc)] == [("payload.scores.staff", "less_than_equal")]
    doc = golden("campaign.activity")
    doc["payload"]["lab_uncertainty"] = 0
    assert [(e["field"], e["type"]) for e in _door(doc)] == [("payload.lab_uncertainty", "greater_than")]
    doc["payload"]["lab_uncertainty"] = 1e300
    assert [(e["field"], e["type"]) for e in _door(doc)] == [("payload.lab_uncertainty", "value_error")]
    assert not _door(golden("campaign.assessment")) and not _door(golden("campaign.activity"))


# --------------------------------------------------------------------------- 2. the schema and the door agree


def _set(*path_and_value):
    *path, value = path_and_value

    def mutate(d):
        at = d
        for part in path[:-1]:
            at = at[part]
        at[path[-1]] = value
    return mutate


def _drop_fine_amount(d):
    for p in d["payload"]["penalties"]:
        if p["kind"] == "fine":
            del p["amount_yuan"]


def _training_of_none(d):
    d["payload"].update(staff_total=0, staff_trained=0, exam_takers=0, exam_first_pass=0, key_posts_certified=0)


def _comparison_without(field):
    def mutate(d):
        del d["payload"][field]
    return mutate


def _visit_with_lab_value(d):
    d["payload"].update(kind="visit", lab_value=0.5)
    for f in ("lab", "item_code", "enterprise_value", "enterprise_uncertainty", "lab_uncertainty"):
        d["payload"].pop(f, None)


def _one_uncertainty(d):
    d["payload"].pop("enterprise_uncertainty")


def _warning_with_amount(d):
    d["payload"]["penalties"] = [{"kind": "warning", "amount_yuan": 100}]


# (event_type, mutation, accepted): what both the exported schema and the door say
AGREE = [
    ("campaign.training", _training_of_none, False),
    ("campaign.training", _set("payload", "staff_total", 40.0), True),  # JSON's 40.0 is the number 40
    ("campaign.training", _set("payload", "staff_total", 40.5), False),
    ("campaign.training", _set("payload", "staff_trained", 23.0), True),
    ("enterprise.registered", _set("payload", "population_served", 12000.0), True),
    ("enterprise.registered", _set("payload", "population_served", -1), False),
    ("enterprise.updated", _set("payload", "population_served", 12000.0), True),
    ("enterprise.updated", _set("payload", {}), False),
    ("campaign.activity", _set("payload", "enterprise_value", -0.1), False),
    ("campaign.activity", _set("payload", "lab_value", -1), False),
    ("campaign.activity", _set("payload", "lab_value", 0), True),
    ("campaign.activity", _set("payload", "lab_uncertainty", 1e300), False),
    ("campaign.activity", _set("payload", "enterprise_uncertainty", MAX_EXACT_INT + 1), False),
    ("campaign.activity", _set("payload", "lab_uncertainty", "0.05"), False),
    ("campaign.activity", _comparison_without("lab"), False),
    ("campaign.activity", _comparison_without("lab_value"), False),
    ("campaign.activity", _set("payload", "item_code", None), False),
    ("campaign.activity", _visit_with_lab_value, False),
    ("campaign.activity", _one_uncertainty, False),
    ("campaign.assessment", _set("payload", "scores", "staff", "58"), False),
    ("campaign.assessment", _set("payload", "scores", "staff", True), False),
    ("enforcement.decided", _drop_fine_amount, False),
    ("enforcement.decided", _warning_with_amount, False),
    ("complaint.received", _set("schema_version", 2.0), True),
    ("complaint.received", _set("schema_version", "2"), False),
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from schemas.export import export

    out = tmp_path_factory.mktemp("contract")
    export(out)
    return out


@pytest.mark.parametrize("event_type, mutate, accepted", AGREE)
def test_a_body_the_exported_schema_accepts_is_accepted_and_no_other(exported, event_type, mutate, accepted):
    """README: "a body the schema accepts is accepted" — for every check a JSON Schema can state."""
    import jsonschema

    doc = golden(event_type)
    mutate(doc)
    schema = json.loads((exported / f"{event_type}.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    whole = jsonschema.Draft202012Validator(json.loads((exported / "event.schema.json").read_text(encoding="utf-8")),
                                            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    said = [e.message for e in validator.iter_errors(doc)]
    assert (not said) is accepted, said
    assert whole.is_valid(doc) is accepted
    errors = _door(doc)
    assert (not errors) is accepted, errors


def test_an_integral_float_is_read_as_the_integer_and_a_fraction_is_named():
    doc = golden("campaign.training")
    doc["payload"].update(staff_total=40.0, staff_trained=36.0)
    event = parse_event(doc)  # a log holding one re-reads it alike
    assert type(event.payload.staff_total) is int and event.payload.staff_total == 40
    doc["payload"]["staff_total"] = 40.5
    (error,) = _door(doc)
    assert error["field"] == "payload.staff_total" and "whole number" in error["reason"] and "应为整数" in error["reason_zh"]


def test_the_test_dependencies_declare_jsonschema():
    import tomllib

    from tests.conftest import ROOT

    test = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]["test"]
    assert any(dep.startswith("jsonschema") for dep in test)
