"""Property-based fuzzing of the contract and the importers (hypothesis).

Whatever a client sends, decoding ends in events or in Rejections naming fields — never in
another exception — and what is accepted survives a JSON round trip unchanged.  The file
readers never raise on arbitrary lines; their only exception is the documented ValueError
for an unknown file type or a CSV header that lacks columns.
"""
from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.files import CSV_COLUMNS, LineError, read_events
from ingest.validate import Rejection, _path, decode_body, validate_document
from schemas.events import Envelope
from schemas.upcast import parse_event_json
from tests.conftest import all_goldens, golden

GOLDENS = all_goldens()
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalars = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30)
    | st.sampled_from(["ND", "未检出", "59", "1e999", "NaN", "", " ", "2026-03-01", "2026-03-01T08:30:00", "2026-03-01T08:30:00+08:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1969-12-31",
                       "合格", "不合格", "\u0000", "=1+1", "\ud800", "lab", "sampling.result"])
)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, prefix + (i,))
    return out


ANY_KEY = st.text(min_size=1, max_size=12)


@st.composite
def mutated_events_with_paths(draw, keys: st.SearchStrategy[str] = ANY_KEY) -> tuple[Any, list[tuple]]:
    """A golden example with a few leaves replaced, removed or added: near-valid, the interesting
    region.  With it, the path of each change (an added key: its own path)."""
    doc = copy.deepcopy(draw(st.sampled_from(GOLDENS)))
    changed: list[tuple] = []
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
            changed.append(path)
        elif action == "delete":
            del parent[path[-1]]
            # from a list: the elements after it move up one place (an earlier change's index with them)
            changed.append(path[:-1] if isinstance(parent, list) else path)
        elif isinstance(parent, dict):
            key = draw(keys)
            parent[key] = draw(json_values)
            changed.append(path[:-1] + (key,))
        else:
            parent.append(draw(json_values))
            changed.append(path[:-1] + (len(parent) - 1,))
    return doc, changed


def mutated_events() -> st.SearchStrategy[Any]:
    return mutated_events_with_paths().map(lambda pair: pair[0])


def _check(result: Envelope | Rejection, doc: Any) -> None:
    if isinstance(result, Rejection):
        assert result.errors, "a rejection names at least one error"
        for e in result.errors:
            assert isinstance(e["field"], str) and e["type"] and e["reason"] and e["reason_zh"]
        return
    assert isinstance(result, Envelope)
    text = result.model_dump_json(exclude_unset=True)
    text.encode("utf-8")  # storable
    assert parse_event_json(text) == result  # the log's bytes replay to the same event
    if result.event_type == "sampling.result":
        for item, sent in zip(result.payload.items, doc["payload"]["items"]):
            for value, original in zip(item.values, sent["values"]):
                if isinstance(value, (int, float)):
                    assert isinstance(original, (int, float)) and not isinstance(original, bool), "a number never comes from text"
                    assert abs(value) <= 2**53 or isinstance(value, float)


# A check across fields names the one to correct (schemas.events.FieldError(field=…)): the door
# blames sampled_on for a result reported (occurred_at) before the sample was taken.
BLAMED_FOR = {"occurred_at": {"payload.sampled_on"}}


def _related(field: str, changed: str) -> bool:
    """``field`` is the changed path, a prefix of it (the object that holds it), under it (a
    replaced object's own fields), or the field a check across fields blames for it."""
    def under(a: str, b: str) -> bool:
        return a == b or a.startswith(b + ".") or a.startswith(b + "[")
    return under(changed, field) or under(field, changed) or field in BLAMED_FOR.get(changed, ())


def _a_value_quoted() -> tuple[dict, list[tuple]]:
    doc = copy.deepcopy(next(g for g in GOLDENS if g["event_type"] == "sampling.result"))
    doc["payload"]["items"][0]["values"][1] = "59"  # a number in quotes
    return doc, [("payload", "items", 0, "values", 1)]


def _reported_too_early() -> tuple[dict, list[tuple]]:
    doc = copy.deepcopy(next(g for g in GOLDENS if g["event_type"] == "sampling.result"))
    doc["occurred_at"] = "2026-03-01T08:30:00+08:00"  # before sampled_on 2026-03-05
    return doc, [("occurred_at",)]


@FUZZ
@given(mutated_events_with_paths(ANY_KEY))
@example(_reported_too_early())
@example(_a_value_quoted())
def test_near_valid_events_validate_or_are_rejected_with_field_paths(mutation):
    doc, changed = mutation
    result = validate_document(doc, None, b"")
    _check(result, doc)
    if isinstance(result, Rejection) and isinstance(doc, dict):
        # the standard for an event: an error naming the field, and a field that was changed
        shown = [_path(p, None, doc) for p in changed]  # a key the mutation added is named as sent
        for e in result.errors:
            assert e["field"], f"an error naming no field: {e}"
            assert any(_related(e["field"], c) for c in shown), (e, shown)


@pytest.mark.parametrize("key", ["my-key", "2nd", "int", "sample no"])
def test_an_unknown_key_that_is_no_identifier_is_named(key):
    doc = {**copy.deepcopy(GOLDENS[0]), key: 1}
    result = validate_document(doc, None, b"")
    assert isinstance(result, Rejection)
    assert [(e["field"], e["type"]) for e in result.errors] == [(key, "extra_forbidden")]


@FUZZ
@given(json_values)
def test_any_json_validates_or_is_rejected(doc):
    _check(validate_document(doc, 0, b""), doc)


@FUZZ
@given(st.lists(mutated_events() | json_values, max_size=5))
def test_any_batch_body_decodes_to_events_or_rejections(docs):
    try:
        raw = json.dumps(docs, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raw = json.dumps(docs).encode("ascii")
    events, rejections = decode_body(raw)
    if not docs:  # an empty batch is refused as a whole
        assert [e["type"] for r in rejections for e in r.errors] == ["batch_empty"]
        return
    if rejections and rejections[0].index is None:  # NaN/Infinity are not JSON: the whole body is refused
        assert b"NaN" in raw or b"Infinity" in raw
        assert [e["type"] for r in rejections for e in r.errors] == ["json_invalid"]
        return
    assert len(events) + len(rejections) == len(docs)
    for r in rejections:
        assert r.errors and r.index is not None
        json.loads(r.raw)  # each bad element is kept as its own JSON


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_arbitrary_bytes_never_raise(raw):
    events, rejections = decode_body(raw)
    assert events or rejections


def _write(suffix: str, content: bytes) -> Path:
    fd, name = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
    return Path(name)


lines = st.lists(st.binary(max_size=120) | st.sampled_from([
    b'"a""b', b'"unterminated', b"\x00\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"=1+1,", b",,,,,,,,,,,,", b"\r", b"\"" * 7,
    json.dumps(GOLDENS[2], ensure_ascii=False).encode("utf-8"),
]), max_size=8)


@FUZZ
@given(lines)
def test_jsonl_reader_never_raises(body):
    path = _write(".jsonl", b"\n".join(body))
    try:
        for position, raw, doc in read_events(path):
            assert position.startswith(path.name + ":") and isinstance(raw, bytes)
            if not isinstance(doc, LineError):
                _check(validate_document(doc, None, raw), doc)
    finally:
        path.unlink()


@FUZZ
@given(lines, st.booleans())
def test_csv_reader_never_raises_after_a_good_header(body, bom):
    header = (b"\xef\xbb\xbf" if bom else b"") + ",".join(CSV_COLUMNS).encode()
    path = _write(".csv", b"\n".join([header, *body]))
    try:
        for position, raw, doc in read_events(path):
            assert position.startswith(path.name + ":") and isinstance(raw, bytes)
            if not isinstance(doc, LineError):
                _check(validate_document(doc, None, raw), doc)
    finally:
        path.unlink()


@FUZZ
@given(st.binary(max_size=200))
def test_csv_with_any_header_raises_only_the_documented_error(body):
    path = _write(".csv", body)
    try:
        for _ in read_events(path):
            pass
    except ValueError as exc:
        assert "lacks column" in str(exc), exc
    finally:
        path.unlink()


def test_unknown_file_type_is_the_documented_error(tmp_path):
    path = tmp_path / "events.xml"
    path.write_text("<x/>")
    with pytest.raises(ValueError, match="unknown file type"):
        list(read_events(path))


@pytest.mark.parametrize("key", ["sample-no", "str", "2nd"])
def test_an_unknown_nested_key_is_named_with_its_path(key):
    doc = copy.deepcopy(golden("sampling.result"))
    doc["payload"]["items"][1][key] = 1
    result = validate_document(doc, None, b"")
    assert isinstance(result, Rejection)
    assert [(e["field"], e["type"]) for e in result.errors] == [(f"payload.items[1].{key}", "extra_forbidden")]
