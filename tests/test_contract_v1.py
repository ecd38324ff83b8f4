"""A version-1 sender hears about what it sent.

From a lab integrator's review: a version-1 event's errors named version-2 fields (``values``,
``source.kind``) it never sent, a source string without its "kind:" got 应为对象, and a quoted
``schema_version`` "1" got "Input should be 2" beside a bogus ``values: Field required``.
"""
from __future__ import annotations

import copy
import json

import pytest

from ingest.validate import decode_body
from tests.conftest import EXAMPLES, golden


def _door(doc) -> list[dict]:
    """The door's errors for one event (empty: accepted), as POST /v1/events answers them."""
    events, rejected = decode_body(json.dumps(doc, ensure_ascii=False).encode("utf-8"))
    return [e for r in rejected for e in r.errors]


def _v1() -> dict:
    return json.loads((EXAMPLES / "v1" / "sampling.result.json").read_text(encoding="utf-8"))


def test_a_version_1_item_is_named_by_its_value_not_the_values_it_never_sent():
    doc = _v1()
    doc["payload"]["items"][0]["value"] = "59"
    del doc["payload"]["items"][1]["value"]
    found = {(e["field"], e["type"]) for e in _door(doc)}
    assert found == {("payload.items[0].value", "measured_value"), ("payload.items[1].value", "missing")}, found


def test_a_version_1_source_without_its_kind_is_said_so():
    doc = _v1()
    doc["source"] = "CMA-330100-0451"  # "lab:" left out
    doc["payload"]["items"][0]["value"] = "59"
    errors = _door(doc)
    assert [(e["field"], e["type"]) for e in errors] == [("source", "v1_source"), ("payload.items[0].value", "measured_value")]
    assert "lab:CMA-330100-0451" in errors[0]["reason"] and "类型:编号" in errors[0]["reason_zh"]
    assert "应为对象" not in errors[0]["reason_zh"]
    doc = _v1()
    doc["source"] = "labb:CMA-330100-0451"
    assert [e["field"] for e in _door(doc)] == ["source"]  # the kind of "kind:id": the v1 sender's source


@pytest.mark.parametrize("version", ["1", "2", " 1", None, True, 1.5])
def test_a_schema_version_that_is_no_integer_says_1_or_2_and_nothing_of_fields_never_sent(version):
    doc = _v1() if version in ("1", " 1") else golden("sampling.result")
    doc["schema_version"] = version
    errors = _door(doc)
    assert [(e["field"], e["type"]) for e in errors] == [("schema_version", "schema_version_type")], errors
    assert "an integer: 1 or 2" in errors[0]["reason"] and "应为整数 1 或 2" in errors[0]["reason_zh"]


def test_the_rest_of_an_event_with_a_quoted_version_is_read_in_that_version():
    doc = _v1()
    doc["schema_version"] = "1"
    doc["payload"]["items"][0]["value"] = "59"
    assert [e["field"] for e in _door(doc)] == ["schema_version", "payload.items[0].value"]


def test_a_version_1_event_as_sent_is_still_read():
    doc = _v1()
    assert not _door(doc)
    doc["schema_version"] = 1.0
    assert not _door(copy.deepcopy(doc))
