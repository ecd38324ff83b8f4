"""The fold's memory is its content: no per-model copy of pydantic's bookkeeping, caches bounded.

A county's service keeps every credit file in memory for years (bench/bench_memory.py measures it):
a set of field names per model was over half of it, after a replay and after a restart alike."""
from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel

from processors import judgement
from processors._build import builder, every_field, share_field_sets
from processors.credit_file import CountyState
from processors.step import step
from schemas.events import SamplingResult
from schemas.standards import load_catalogue


class _Note(BaseModel):  # a plain pydantic model (its own __setattr__, not FoldState's)
    text: str
    words: list[str] = []


def _field_sets(root: Any) -> dict[str, set[int]]:
    """By model class under ``root``: the distinct field-name sets of its models that have every field set."""
    sets: dict[str, set[int]] = {}
    stack = [root]
    while stack:
        o = stack.pop()
        if isinstance(o, BaseModel):
            if o.__pydantic_fields_set__ == set(type(o).__pydantic_fields__):
                sets.setdefault(type(o).__name__, set()).add(id(o.__pydantic_fields_set__))
            stack.extend(o.__dict__.values())
        elif isinstance(o, dict):
            stack.extend(o.values())
        elif isinstance(o, (list, tuple)):
            stack.extend(o)
    return sets


# what the fold makes per sample, per chart point and per warning: most of a long history's state
PER_SAMPLE = {"SampleRecord", "Turnaround", "SampleJudgement", "ItemJudgement", "SumOfRatiosCheck", "SumOfRatiosMember",
              "Series", "PeriodCount", "AlertDecision"}


def test_built_models_share_one_set_of_field_names() -> None:
    build = builder(_Note)
    a, b = build(text="一"), build(text="二")
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__ is every_field(_Note)
    assert a.model_fields_set == {"text", "words"}
    # pydantic never changes it under another model: an assignment adds a name already there, a copy gets its own
    a.text = "三"
    c = a.model_copy(update={"text": "四"})
    assert c.__pydantic_fields_set__ is not a.__pydantic_fields_set__
    c.__pydantic_fields_set__.discard("words")
    assert b.model_fields_set == {"text", "words"} == every_field(_Note)
    assert b.model_dump(exclude_unset=True) == {"text": "二", "words": []}


def test_share_field_sets_leaves_a_partly_set_model_its_own() -> None:
    full, partial = _Note(text="一", words=["a"]), _Note(text="二")
    share_field_sets([full, {"k": (partial,)}])
    assert full.__pydantic_fields_set__ is every_field(_Note)
    assert partial.model_fields_set == {"text"}  # exclude_unset still leaves out what was not given
    assert partial.model_dump(exclude_unset=True) == {"text": "二"}


def test_a_folded_and_a_restored_state_keep_one_field_set_per_model_class(rules) -> None:
    from qrisk.demo import CountyGenerator

    state = CountyState()
    for event in CountyGenerator(seed=7, months=6, campaign=False, daily_ticks=False).generate():
        state, _ = step(state, event, rules)
    sets = _field_sets(state)
    assert PER_SAMPLE <= set(sets)
    assert {name: len(sets[name]) for name in PER_SAMPLE} == dict.fromkeys(PER_SAMPLE, 1)
    blob = state.snapshot()
    restored = CountyState.restore(blob)
    # restored, every model with all its fields set (the event's parts the files keep too) shares its class's
    sets = _field_sets(restored)
    assert len(sets) > len(PER_SAMPLE) and {len(ids) for ids in sets.values()} == {1}
    assert restored.snapshot() == blob  # nothing a model says changed


def test_the_judgement_memo_is_bounded(monkeypatch) -> None:
    catalogue = load_catalogue()
    monkeypatch.setattr(judgement, "_MEMO_LIMIT", 50)
    judgement._MEMO.clear()
    try:
        largest = 0
        for k in range(300):  # every reading distinct: a miss, and a new entry, each
            sample = SamplingResult.model_validate({
                "sample_no": f"DBJ2433000000{k:04d}", "task_source": "县市场监督管理局", "lab": "某检测中心",
                "product": "饮用纯净水", "sampled_on": "2025-06-01", "production_date": "2025-05-01",
                "items": [{"item_code": "bromate", "values": [0.001 + k / 1_000_000], "unit": "mg/L"},
                          {"item_code": "lead", "values": [0.001], "unit": "mg/L"}]})
            judgement.judge_sample(sample, "packaged_water", catalogue)
            largest = max(largest, sum(len(memo) for _, memo in judgement._MEMO.values()))
        # cleared before a sample once over the limit: at most the limit, one more, and one sample's entries
        assert 50 < largest <= 50 + 1 + 2 + 1
    finally:
        judgement._MEMO.clear()


def test_every_field_is_one_set_per_class() -> None:
    assert every_field(_Note) is every_field(_Note)
    assert every_field(_Note) == {"text", "words"}


def test_credit_file_snapshots_go_in_bounded_inserts(tmp_path, rules, monkeypatch) -> None:
    """After a replay or a long import every file is written at once: one INSERT of the whole county's
    files took chdb several times their size; they go in runs of at most SNAPSHOT_INSERT_CHARS."""
    from qrisk import pipeline as pipeline_module
    from qrisk.demo import CountyGenerator
    from qrisk.store import ChdbStore, migrate

    store = ChdbStore(tmp_path / "chdb")
    migrate(store)
    pipeline = pipeline_module.Pipeline(store, rules, snapshot_every=dt.timedelta(days=1))
    pipeline.recover()
    events = CountyGenerator(seed=3, months=6, campaign=False, daily_ticks=False).generate()
    for k in range(0, len(events), 200):
        pipeline.submit(events[k:k + 200])
    assert pipeline.wait_derived(60)
    pipeline._dirty = dict.fromkeys(pipeline.state.files, pipeline.seq)  # every file, as after a replay
    bodies = {eid: len(pipeline_module._json_text(f.view())) for eid, f in pipeline.state.files.items()}
    most = max(bodies.values()) * 3
    monkeypatch.setattr(pipeline_module, "SNAPSHOT_INSERT_CHARS", most)
    inserts: list[list[int]] = []
    insert = store.insert

    def counted(table, rows):
        if table == "credit_files":
            inserts.append([len(r["body"]) for r in rows])
        return insert(table, rows)

    monkeypatch.setattr(store, "insert", counted)
    pipeline.write_snapshots()
    assert sorted(n for part in inserts for n in part) == sorted(bodies.values())  # every file, once
    assert len(inserts) > 1 and all(sum(part) <= most for part in inserts)
    written = store.query("SELECT enterprise_id, body FROM credit_files FINAL")
    assert {r["enterprise_id"]: len(r["body"]) for r in written} == bodies
    pipeline.close()
    store.close()


def test_a_restored_state_shares_equal_judgements_and_strings_as_the_fold_does(rules) -> None:
    from qrisk.demo import CountyGenerator

    state = CountyState()
    for event in CountyGenerator(seed=11, months=6, campaign=False, daily_ticks=False).generate():
        state, _ = step(state, event, rules)
    blob = state.snapshot()
    restored = CountyState.restore(blob)

    def judgements(s: CountyState) -> tuple[int, int]:
        items = [j for f in s.files.values() for r in f.samples for j in (r.judgement.items if r.judgement else ())]
        return len(items), len({id(j) for j in items})

    (n, folded), (m, kept) = judgements(state), judgements(restored)
    assert n == m and folded < n / 2  # the fold's memo shares a repeated result (ND, the same reading) …
    assert kept <= folded  # … and so does a restart, where each parsed as its own copy
    digests = {id(r.judgement.catalogue_digest) for f in restored.files.values() for r in f.samples if r.judgement}
    assert len(digests) == 1
    assert restored.snapshot() == blob


def test_compact_keeps_apart_what_only_looks_equal() -> None:
    from processors._build import compact

    class Reading(BaseModel, frozen=True):
        value: float | int
        note: str

    zero, minus_zero = Reading(value=0.0, note="零"), Reading(value=-0.0, note="零")
    one, one_float = Reading(value=1, note="一"), Reading(value=1.0, note="一")
    twin = Reading(value=0.0, note="零")
    root = {"a": [zero, minus_zero, one, one_float, twin]}
    compact(root, (Reading,))
    a = root["a"]
    assert a[4] is a[0] and a[1] is not a[0] and a[3] is not a[2]
    assert [repr(r.value) for r in a] == ["0.0", "-0.0", "1", "1.0", "0.0"]


def test_a_snapshot_written_file_by_file_is_the_whole_dump_byte_for_byte(rules) -> None:
    import json

    from qrisk.demo import CountyGenerator

    state = CountyState()
    for event in CountyGenerator(seed=5, months=4).generate():  # with the campaign and daily ticks
        state, _ = step(state, event, rules)
    doc = state.model_dump(mode="json", exclude={"seen_event_ids"})  # as snapshot() made it before
    doc["seen_event_ids"] = sorted(state.seen_event_ids)
    assert state.snapshot() == json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert CountyState().snapshot() == json.dumps({**CountyState().model_dump(mode="json", exclude={"seen_event_ids"}),
                                                   "seen_event_ids": []}, separators=(",", ":")).encode("utf-8")
