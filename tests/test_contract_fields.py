"""What `qrisk schema export` tells a lab integrator: every field of every event, documented.

From a lab-integrator review: complaint.received had 6 of its 9 fields undocumented, enterprise.updated
9 of 12, sampling.result's items and remarks none.  A field's description says what it is (with the
Chinese term), its unit or form, each allowed value with its Chinese label, and what it means for
qrisk; what occurred_at is differs by event type and is said per type.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.events import EVENT_TYPES
from schemas.export import export


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("schema")
    export(out)
    return {p.name.removesuffix(".schema.json"): json.loads(p.read_text(encoding="utf-8")) for p in Path(out).glob("*.schema.json")}


def _objects(schema: dict) -> list[tuple[str, dict]]:
    """The schema's object schemas: the root and each of $defs."""
    return [(schema.get("title", "(root)"), schema)] + list((schema.get("$defs") or {}).items())


def _enum_values(prop: dict) -> list:
    """The allowed values a property lists, also behind anyOf (an optional enumerated field)."""
    out = list(prop.get("enum", []))
    for branch in prop.get("anyOf", []):
        out += branch.get("enum", [])
    return out


def test_every_exported_schema_is_there(exported):
    assert set(exported) == set(EVENT_TYPES) | {"event"}


def test_every_property_of_every_event_has_a_description(exported):
    missing = sorted({f"{name}.{prop}" for schema in exported.values() for name, node in _objects(schema)
                      for prop, sub in (node.get("properties") or {}).items() if not (sub.get("description") or "").strip()})
    assert missing == [], missing


def test_every_model_says_what_it_is(exported):
    missing = sorted({name for schema in exported.values() for name, node in _objects(schema) if not (node.get("description") or "").strip()})
    assert missing == [], missing


def test_each_allowed_value_is_named_in_its_description(exported):
    unnamed = sorted({f"{name}.{prop}: {value}" for schema in exported.values() for name, node in _objects(schema)
                      for prop, sub in (node.get("properties") or {}).items()
                      for value in _enum_values(sub) if str(value) not in sub["description"]})
    assert unnamed == [], unnamed


@pytest.mark.parametrize("model, field, words", [
    ("ComplaintReceived", "category", ["hygiene = 卫生", "foreign_matter = 异物", "illness = 食用后不适"]),
    ("ComplaintReceived", "channel", ["letter = 来信", "visit = 来访"]),
    ("ComplaintReceived", "verified", ["属实", "at once", "cluster"]),
    ("EnterpriseProfile", "category", ["packaged_water = 包装饮用水", "standards"]),
    ("EnterpriseUpdate", "scale", ["micro = 微型", "unchanged"]),
    ("InspectionCompleted", "result", ["符合", "不符合", "inspection.nonconforming"]),
    ("RectificationOrdered", "deadline", ["整改期限", "overdue"]),
    ("SamplingResult", "items", ["检验项目"]),
    ("SamplingResult", "remarks", ["备注"]),
    ("TestItem", "values", ["ND", "未检出", "2^53"]),
    ("TestItem", "unit", ["结果单位", "mg/L"]),
])
def test_descriptions_say_what_the_field_means_for_qrisk(exported, model, field, words):
    schemas = [s for s in exported.values() if model in (s.get("$defs") or {})]
    assert schemas, model
    description = schemas[0]["$defs"][model]["properties"][field]["description"]
    assert all(w in description for w in words), (description, words)


def test_occurred_at_is_said_for_each_event_type(exported):
    said = {t: exported[t]["properties"]["occurred_at"]["description"] for t in EVENT_TYPES}
    assert len(set(said.values())) > len(EVENT_TYPES) // 2, "not one sentence for every type"
    assert all("UTC offset" in d and "For this event:" in d for d in said.values())
    sampling = said["sampling.result"]
    # which of two reports of a sample is the latest, and the re-test window, rest on it
    assert "issue time" in sampling and "报告签发" in sampling and "later-dated" in sampling and "re-test" in sampling
    assert "deadline" in said["rectification.completed"]
    assert "收到时间" in said["complaint.received"]


def test_each_event_type_and_payload_is_described(exported):
    for event_type in EVENT_TYPES:
        props = exported[event_type]["properties"]
        assert props["event_type"]["description"].startswith(event_type), event_type
        assert props["payload"]["description"], event_type
        assert exported[event_type]["description"].startswith(event_type), event_type
