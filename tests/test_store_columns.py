"""Columnar inserts (``Store.insert_columns``) and the checks every insert keeps, on both backends.

The embedded pipeline writes derived rows one list per column (no dict per row) and DateTime
values as epoch seconds; values that are already what the backend takes are sent unchanged,
anything else is normalised or refused exactly as ``insert`` does.
"""
from __future__ import annotations

import datetime as dt

import pytest
from services import clickhouse_url, store  # noqa: F401 - fixtures

from qrisk.store import RowError, is_transient

UTC = dt.timezone.utc


def test_columns_go_in_as_rows_would(store):
    store.insert_columns("judgements", {
        "event_id": ["e1", "e2"], "enterprise_id": ["E1", "E1"], "verdict": ["pass", "fail"],
        "failed_items": [[], ["lead", "sum_of_ratios:preservative"]], "unknown": [(), ("x",)],  # tuples normalised
        "sampled_on": [dt.date(2024, 3, 4), "2024-03-05"],
        "occurred_at": [1709600523, dt.datetime(2024, 3, 5, 9, 2, 3, tzinfo=dt.timezone(dt.timedelta(hours=8)))],
    })
    got = store.query("SELECT event_id, verdict, failed_items, disagreements, unknown, sampled_on, occurred_at, category FROM judgements FINAL ORDER BY event_id")
    assert got == [
        {"event_id": "e1", "verdict": "pass", "failed_items": [], "disagreements": [], "unknown": [], "sampled_on": "2024-03-04",
         "occurred_at": "2024-03-05 01:02:03", "category": ""},
        {"event_id": "e2", "verdict": "fail", "failed_items": ["lead", "sum_of_ratios:preservative"], "disagreements": [], "unknown": ["x"],
         "sampled_on": "2024-03-05", "occurred_at": "2024-03-05 01:02:03", "category": ""},
    ]


def test_nested_arrays_through_the_sampling_view(store):
    """One sample row of arrays becomes one sampling_items row per item and value."""
    store.insert_columns("sampling_items_in", {
        "event_id": ["s1"], "enterprise_id": ["E1"], "category": ["packaged_water"], "sample_no": ["SC1"], "product": ["水"],
        "lab": ["所"], "sampled_on": [dt.date(2024, 1, 2)], "production_date": [None], "occurred_at": [1704186000],
        "item_code": [["lead", "p_aeruginosa"]], "item_name": [["铅", "铜绿假单胞菌"]], "item_class": [["contaminant", "pathogen"]],
        "unit": [["mg/L", "CFU/250mL"]], "limit_text": [["≤0.01", "n=5,c=0,m=0"]], "standard": [["GB 2762", "GB 19298"]],
        "verdict": [["pass", "fail"]], "reason": [["within_limit", "plan_exceeded_c"]], "lab_verdict": [["", "fail"]],
        "item_values": [[[0.002], [None, 3, 0.0]]], "item_nd": [[[0], [1, 0, 0]]],
    })
    got = store.query("SELECT item_code, value_index, value, not_detected, verdict, production_date FROM sampling_items FINAL ORDER BY item_code, value_index")
    assert got == [
        {"item_code": "lead", "value_index": 0, "value": 0.002, "not_detected": 0, "verdict": "pass", "production_date": None},
        {"item_code": "p_aeruginosa", "value_index": 0, "value": None, "not_detected": 1, "verdict": "fail", "production_date": None},
        {"item_code": "p_aeruginosa", "value_index": 1, "value": 3.0, "not_detected": 0, "verdict": "fail", "production_date": None},
        {"item_code": "p_aeruginosa", "value_index": 2, "value": 0.0, "not_detected": 0, "verdict": "fail", "production_date": None},
    ]


@pytest.mark.parametrize("columns", [
    {"dead_letter_id": ["a", "b"], "reason": ["r"]},  # ragged
    {"dead_letter_id": ["a"], "no_such_column": [1]},
    {"dead_letter_id": ["a"], "received_at": [2 ** 32]},  # past DateTime's range: would wrap
    {"dead_letter_id": ["a"], "received_at": [-1]},
    {"dead_letter_id": ["a"], "received_ms": [70_000]},
    {"dead_letter_id": [None]},
])
def test_a_column_that_does_not_fit_is_refused_whole(store, columns):
    with pytest.raises(RowError) as info:
        store.insert_columns("dead_letters", columns)
    assert not is_transient(info.value)
    assert store.query("SELECT count() AS n FROM dead_letters") == [{"n": 0}]


def test_nested_values_of_the_wrong_type_are_refused(store):
    one = {name: [["x"]] for name in ("item_code", "item_name", "item_class", "unit", "limit_text", "standard", "verdict", "reason", "lab_verdict")}
    base = {"event_id": ["s1"], "enterprise_id": ["E1"], "sampled_on": [dt.date(2024, 1, 2)], "occurred_at": [0], **one, "item_nd": [[[0]]]}
    for bad in ([[[object()]]], [[["many"]]], [[[[1.0]]]], [["flat"]]):
        with pytest.raises(RowError):
            store.insert_columns("sampling_items_in", {**base, "item_values": bad})
    store.insert_columns("sampling_items_in", {**base, "item_values": [[["0.5"]]]})  # numeric text is read, as insert() does
    assert store.query("SELECT value FROM sampling_items FINAL") == [{"value": 0.5}]


def test_arrays_of_different_lengths_are_a_permanent_error(store):
    base = {"event_id": ["s1"], "enterprise_id": ["E1"], "sampled_on": [dt.date(2024, 1, 2)], "occurred_at": [0],
            "item_code": [["a", "b"]], "item_values": [[[1.0]]], "item_nd": [[[0]]]}
    with pytest.raises(Exception) as info:
        store.insert_columns("sampling_items_in", base)
    assert not is_transient(info.value)


def test_empty_columns_write_nothing(store):
    store.insert_columns("effects", {})
    store.insert_columns("effects", {"seq": [], "idx": []})
    assert store.query("SELECT count() AS n FROM effects") == [{"n": 0}]


def test_utf8_bytes_go_into_string_columns(store):
    body = '{"text": "桶装水有异味"}'
    store.insert("event_log", [{"seq": 1, "event_id": "e", "body": body.encode()}, {"seq": 2, "event_id": "f", "body": body}])
    store.insert_columns("dead_letters", {"dead_letter_id": ["d1", "d2"], "raw": [b"x", "y"]})
    assert store.query("SELECT body FROM event_log FINAL ORDER BY seq") == [{"body": body}, {"body": body}]
    assert store.query("SELECT raw FROM dead_letters FINAL ORDER BY dead_letter_id") == [{"raw": "x"}, {"raw": "y"}]


def test_bytes_that_are_not_utf8_are_refused(store):
    with pytest.raises(Exception) as info:
        store.insert("event_log", [{"seq": 1, "event_id": "e", "body": b"\xff\xfe"}])
    assert not is_transient(info.value)
    assert store.query("SELECT count() AS n FROM event_log") == [{"n": 0}]
