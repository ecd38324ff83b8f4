"""The worker's effect messages and the sink's rows, without a broker (the ClickHouse server is real).

An effect message carries one ``sampling_items_in`` row per sample, unfolded by the materialised
view of migration 030; messages written by workers before that carried one ``sampling_items`` dict
per value.  Both must give the same rows, and so must a fold that takes the event validated on
ingress instead of parsing the log message again.
"""
from __future__ import annotations

import collections
import datetime as dt
import json

import pytest

from tests.services import clickhouse_url, drop_database, fresh_database_url  # noqa: F401 - fixtures

TP = collections.namedtuple("TP", "topic partition")
Message = collections.namedtuple("Message", "offset value")


def _log_messages(counties: int = 1) -> list[tuple[bytes, object]]:
    from qrisk.demo import CountyGenerator
    from qrisk.kafka_log import event_value

    now = dt.datetime(2026, 1, 5, 8, 30, 1, 250000, tzinfo=dt.timezone.utc)
    events = [e for e in CountyGenerator(seed=11).generate() if e.enterprise_id != "*"]
    stamped = [e.model_copy(update={"received_at": now}) for e in events]
    return [(event_value(e), e) for e in stamped]


def _fold(rules, messages, remember: bool):
    from qrisk.worker import BatchOutput, Fold

    fold = Fold(rules, "log")
    out = BatchOutput()
    for offset, (raw, event) in enumerate(messages):
        if remember:
            fold.remember(raw, event, 0)
        fold.apply(0, offset, raw, 1_767_600_000_000, out)
    return fold, out


def _old_format(fold, value: bytes) -> bytes:
    """The same message as a worker before sampling_items_in wrote it (row dicts)."""
    from tests.rows import reference_sample_rows

    doc = json.loads(value)
    items, judgements = [], []
    for e in doc["effects"]:
        if e["kind"] == "sampling.judged":
            rows, judgement = reference_sample_rows(fold.files[doc["enterprise_id"]].file, e["data"]["sample_event_id"])
            items += rows
            judgements.append(judgement)
    doc.pop("sampling_items_in", None)
    doc.pop("judgement_rows", None)
    doc["sampling_items"], doc["judgements"] = items, judgements
    return json.dumps(doc, ensure_ascii=False, default=lambda v: v.isoformat()).encode()


def test_a_remembered_event_folds_like_the_parsed_log_message(rules):
    messages = _log_messages()
    fold_a, parsed = _fold(rules, messages, remember=False)
    fold_b, remembered = _fold(rules, messages, remember=True)
    assert fold_b.validated_hits == len(messages) and fold_a.validated_hits == 0
    assert remembered.effects == parsed.effects
    assert remembered.writes == parsed.writes
    assert fold_a.views() == fold_b.views()


def test_effect_messages_are_compact_and_self_describing(rules):
    from qrisk.pipeline import JUDGEMENT_COLUMNS, SAMPLE_COLUMNS

    _, out = _fold(rules, _log_messages(), remember=True)
    docs = [json.loads(v) for _, v in out.effects]
    judged = [d for d in docs if any(e["kind"] == "sampling.judged" for e in d["effects"])]
    assert judged
    for doc in judged:
        assert "sampling_items" not in doc
        assert doc["sampling_items_in"]["columns"] == list(SAMPLE_COLUMNS)
        assert doc["judgement_rows"]["columns"] == list(JUDGEMENT_COLUMNS)
        assert len(doc["sampling_items_in"]["rows"]) == 1
        # the sample's own row, and the row of a sample it supersedes (re-test), written again
        first, *superseded = doc["judgement_rows"]["rows"]
        assert first[0] == doc["event_id"] and len(superseded) <= 1
        at = list(JUDGEMENT_COLUMNS).index("superseded_by")
        assert all(row[0] != doc["event_id"] and row[at] for row in superseded)
    assert all(e["occurred_at"].endswith("+00:00") for d in docs for e in d["effects"])


def test_new_and_old_messages_give_the_same_rows(rules, clickhouse_url):  # noqa: F811 - fixture
    from qrisk.sink import Sink
    from qrisk.store import ClickHouseStore, migrate
    from qrisk.topics import KafkaSettings

    messages = _log_messages()
    fold, out = _fold(rules, messages, remember=True)
    settings = KafkaSettings()
    topic = settings.topics().effects.name
    new = [Message(i, v) for i, (_, v) in enumerate(out.effects)]
    old = [Message(i, _old_format(fold, v)) for i, (_, v) in enumerate(out.effects)]
    tables = {
        "sampling_items": "event_id, item_code, value_index",
        "judgements": "event_id",
        "stream_effects": "enterprise_id, file_version, idx",
    }
    found = {}
    for label, batch in (("new", new), ("old", old)):
        name, url = fresh_database_url(clickhouse_url, f"sink_rows_{label}")
        store = ClickHouseStore(url)
        try:
            migrate(store)
            sink = Sink(store, settings, consumer=object())
            assert sink.process({TP(topic, 0): batch}) == len(batch)
            sink.process({TP(topic, 0): batch[: len(batch) // 2]})  # a redelivery collapses by key
            found[label] = {t: store.query(f"SELECT * FROM {t} FINAL ORDER BY {order}") for t, order in tables.items()}
            assert sink.stats["bad_messages"] == 0
        finally:
            store.close()
            drop_database(clickhouse_url, name)
    assert found["new"]["sampling_items"], "no sampling items written"
    for table in tables:
        assert found["new"][table] == found["old"][table], table


def test_a_block_whose_rows_do_not_match_its_columns_is_a_bad_message():
    from qrisk.sink import Sink
    from qrisk.topics import KafkaSettings

    settings = KafkaSettings()
    sink = Sink(store=None, settings=settings, consumer=object())
    topic = settings.topics().effects.name
    doc = {"enterprise_id": "E1", "event_id": "x", "event_type": "sampling.result", "file_version": 1, "log": [0, 1],
           "effects": [], "judgement_rows": {"columns": ["event_id", "enterprise_id"], "rows": [["x"]]}}
    rows = sink.rows_for(topic, 0, 7, json.dumps(doc).encode())
    assert sink.stats["bad_messages"] == 1
    assert list(rows.tables) == ["dead_letters"]


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": 1}'])
def test_the_sink_reads_what_json_dumps_wrote(text):
    from qrisk.sink import _loads

    assert _loads(text.encode()).keys() == {"a"}


def test_a_credit_file_view_is_archived_as_the_file_json_it_carries(rules):
    from qrisk.sink import Sink
    from qrisk.topics import KafkaSettings

    fold, _ = _fold(rules, _log_messages(), remember=True)
    settings = KafkaSettings()
    sink = Sink(store=None, settings=settings, consumer=object())
    topic = settings.topics().credit_files.name
    views = fold.views()
    assert views
    for key, value in views:
        doc = json.loads(value)
        fast = sink.rows_for(topic, 0, 1, value).tables["credit_files"][0]
        # another layout (what json.dumps writes) goes the parsing way, to the same row
        slow = sink.rows_for(topic, 0, 1, json.dumps(doc, ensure_ascii=False).encode()).tables["credit_files"][0]
        assert (fast["enterprise_id"], fast["seq"]) == (slow["enterprise_id"], slow["seq"]) == (key.decode(), doc["version"])
        assert json.loads(fast["body"]) == json.loads(slow["body"]) == doc["file"]
    odd = json.dumps({"enterprise_id": 'E,"file":{', "version": 3, "file": {"x": 1}}, separators=(",", ":")).encode()
    row = sink.rows_for(topic, 0, 2, odd).tables["credit_files"][0]
    assert (row["enterprise_id"], row["seq"], json.loads(row["body"])) == ('E,"file":{', 3, {"x": 1})


def test_a_complaints_event_carries_the_rows_of_the_complaints_it_changed(rules):
    """complaint_rows: the complaints table's rows (COMPLAINT_TABLE_COLUMNS, versioned by the file's version), in the
    message of each complaint event — one concluded in time with no effect of its own too — and no complaint text."""
    from qrisk.pipeline import COMPLAINT_TABLE_COLUMNS
    from qrisk.sink import Sink
    from qrisk.topics import KafkaSettings

    messages = _log_messages()
    _, out = _fold(rules, messages, remember=True)
    docs = {d["event_id"]: d for d in (json.loads(v) for _, v in out.effects)}
    complaint_events = [e for _, e in messages if e.event_type.startswith("complaint.")]
    assert complaint_events
    columns = list(COMPLAINT_TABLE_COLUMNS)
    for event in complaint_events:
        doc = docs[str(event.event_id)]
        block = doc["complaint_rows"]
        assert block["columns"] == columns
        # its own, and any whose time limit its time passed (complaint.overdue)
        late = {e["data"]["complaint_id"] for e in doc["effects"] if e["kind"] == "complaint.overdue"}
        assert sorted(r[columns.index("complaint_id")] for r in block["rows"]) == sorted({event.payload.complaint_id} | late)
        assert all(r[columns.index("version")] == doc["file_version"] for r in block["rows"])
        assert not any(event.payload.model_dump().get("text") in map(str, r) for r in block["rows"])
    assert any(not docs[str(e.event_id)]["effects"] for e in complaint_events), "a message for the rows alone"
    settings = KafkaSettings()
    sink = Sink(store=None, settings=settings, consumer=object())
    doc = docs[str(complaint_events[0].event_id)]
    rows = sink.rows_for(settings.topics().effects.name, 0, 1, json.dumps(doc).encode())
    assert rows.blocks[("complaints", tuple(columns))] == doc["complaint_rows"]["rows"]
    bad = {**doc, "complaint_rows": {"columns": columns, "rows": [["E1"]]}}
    assert list(sink.rows_for(settings.topics().effects.name, 0, 2, json.dumps(bad).encode()).tables) == ["dead_letters"]
