"""The fold's trusted constructors: same model as validation would give, and no silent typos."""
from __future__ import annotations

import datetime as dt

import pytest

from processors._build import builder
from processors.credit_file import Counts, SampleRecord
from processors.step import Effect

AT = dt.datetime(2026, 3, 5, 1, 0, tzinfo=dt.timezone.utc)


def test_a_built_model_equals_the_validated_one():
    fields = dict(event_id="e1", sample_no="S1", product="饮用纯净水", sampled_on=dt.date(2026, 3, 5), occurred_at=AT,
                  lab="县食品检验检测中心", task_source="县市场监督管理局")
    built = builder(SampleRecord)(**fields)
    assert built == SampleRecord(**fields)
    assert built.model_dump_json() == SampleRecord(**fields).model_dump_json()


def test_mutable_defaults_are_not_shared():
    build = builder(Effect)
    a = build(kind="k", enterprise_id="E", event_id="e1", occurred_at=AT)
    b = build(kind="k", enterprise_id="E", event_id="e2", occurred_at=AT)
    a.data["x"] = 1
    assert b.data == {}


def test_a_misspelt_or_missing_field_is_an_error():
    build = builder(Counts)
    with pytest.raises(TypeError, match="sample"):
        build(sample=1)
    with pytest.raises(TypeError, match="occurred_at"):
        builder(Effect)(kind="k", enterprise_id="E", event_id="e1")


def test_fold_state_refuses_an_unknown_attribute():
    counts = Counts()
    counts.samples += 1
    assert counts.samples == 1
    with pytest.raises(AttributeError, match="sample"):
        counts.sample = 2  # type: ignore[attr-defined]
