"""The fast decode of POST bodies (pydantic straight from the bytes) against the general path.

``decode_body`` first tries to validate a whole body as JSON in one pass; only when every
event is valid and current does it use that result, else it takes the general path
(json.loads, upcast, per-event errors).  These tests hold the two to the same answer: the
fast path never accepts what the general path rejects, and what both accept is the same
events with the same fields set (the log body is ``model_dump_json(exclude_unset=True)``).
"""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.validate import _decode_general, _decode_valid, decode_body
from qrisk.demo import CountyGenerator
from tests.conftest import EXAMPLES, all_goldens, golden
from tests.test_fuzz_properties import FUZZ, json_values, mutated_events


def _encode(docs) -> bytes:
    try:
        return json.dumps(docs, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(docs).encode("ascii")


def assert_same(raw: bytes, max_batch: int = 1000) -> None:
    fast = _decode_valid(raw, max_batch)
    events, rejections = _decode_general(raw, max_batch)
    if fast is None:
        return  # the general path answered, as before
    assert rejections == [], "the fast path accepted what the general path rejects"
    assert fast == events
    assert [e.model_dump_json(exclude_unset=True) for e in fast] == [e.model_dump_json(exclude_unset=True) for e in events]
    assert [e.model_fields_set for e in fast] == [e.model_fields_set for e in events]


def test_goldens_and_demo_events_take_the_fast_path_and_match():
    docs = all_goldens() + [json.loads(e.model_dump_json(exclude_unset=True)) for e in CountyGenerator(seed=3).generate()]
    raw = _encode(docs)
    assert _decode_valid(raw, 10_000) is not None
    assert_same(raw, 10_000)
    for doc in all_goldens():
        single = _encode(doc)
        assert _decode_valid(single, 1000) is not None
        assert_same(single)


@pytest.mark.parametrize("body", [
    b"[]", b"{}", b"[1]", b"null", b"", b"  [  ]  ", b"\xef\xbb\xbf[]",
    b'{"events": []}',
    _encode({"events": all_goldens()}),
    _encode([golden("sampling.result")] * 3),  # repeated ids are the pipeline's business, not the decoder's
])
def test_edge_bodies(body):
    assert_same(body)
    events, rejections = decode_body(body)
    assert (events, [r.errors for r in rejections]) == (lambda r: (r[0], [x.errors for x in r[1]]))(_decode_general(body, 1000))


def _sample_with(literal: bytes) -> bytes:
    doc = golden("sampling.result")
    doc["payload"]["items"][0]["values"] = ["__X__"]
    return _encode([doc]).replace(b'"__X__"', literal)


@pytest.mark.parametrize("literal", [
    b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b'"59"', b"true", b"1" + b"0" * 400, b"9007199254740993",
    b"9007199254740992", b"-0", b"-0.0", b"1E2", b"1.0", b'"ND"', b'"\\u672a\\u68c0\\u51fa"', b'"\\ud800"', b"[[[[[[1]]]]]]",
])
def test_hostile_values_are_decided_by_the_general_path(literal):
    assert_same(_sample_with(literal))


def test_old_versions_duplicate_keys_and_bad_bytes():
    v1 = json.loads((EXAMPLES / "v1" / "sampling.result.json").read_text(encoding="utf-8"))
    assert _decode_valid(_encode([v1]), 1000) is None  # upcasting is the general path's
    assert_same(_encode([v1]))
    dup = _encode([golden("complaint.received")]).replace(b'"enterprise_id": ', b'"enterprise_id": "E-000000-000", "enterprise_id": ', 1)
    assert_same(dup)
    assert_same(_encode([golden("complaint.received")]).replace("异味".encode(), b"\xff\xfe"))
    assert_same(b"[" * 5000 + b"]" * 5000)
    assert _decode_valid(_encode([golden("complaint.received")] * 3), max_batch=2) is None  # the general path words the limit


@FUZZ
@given(st.lists(mutated_events() | json_values, max_size=4))
def test_any_batch_decodes_the_same_on_both_paths(docs):
    assert_same(_encode(docs))


@FUZZ
@given(mutated_events())
def test_any_single_event_decodes_the_same_on_both_paths(doc):
    assert_same(_encode(doc))
