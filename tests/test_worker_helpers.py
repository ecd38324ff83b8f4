"""The worker's helpers that need no broker: the log bytes of an ingress record (stamped rather
than re-serialised), and credit-file views published a slice at a time."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from qrisk.kafka_log import event_value
from qrisk.worker import Fold, moment_json, stamped_value
from schemas.events import event_adapter

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "schemas" / "examples").glob("*.json"))
NOW = dt.datetime(2026, 11, 26, 5, 9, 17, 123456, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("layout", ["as written", "compact", "trailing newline"])
def test_a_stamped_record_parses_to_the_stamped_event(path: Path, layout: str) -> None:
    text = path.read_text(encoding="utf-8")
    raw = {"as written": text, "compact": json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":")),
           "trailing newline": text.rstrip() + "\n\n"}[layout].encode("utf-8")
    event = event_adapter.validate_json(raw).model_copy(update={"received_at": NOW})
    stamped = stamped_value(raw, moment_json(NOW))
    assert stamped is not None
    again = event_adapter.validate_json(stamped)
    assert again == event
    assert again.received_at == NOW
    # what the fold and a successor parse is what the old way (re-serialising) gave
    assert again == event_adapter.validate_json(event_value(event))


@pytest.mark.parametrize("raw", [b"{}", b"  {  }  ", b'{"received_at":"2026-01-01T00:00:00Z","a":1}', b"[1]", b"{", b""])
def test_records_that_cannot_simply_be_stamped_are_left_to_the_general_way(raw: bytes) -> None:
    assert stamped_value(raw, moment_json(NOW)) is None


def test_views_by_slice_publish_each_changed_file_once(rules) -> None:
    from qrisk.demo import CountyGenerator
    from qrisk.worker import BatchOutput

    events = [e for e in CountyGenerator(seed=3).generate() if e.enterprise_id != "*"][:200]
    fold = Fold(rules, "log")
    for offset, e in enumerate(events):
        fold.apply(0, offset, event_value(e), None, BatchOutput())
    changed = sorted(fold.dirty)
    assert len(changed) > 3
    first = fold.views(eids=changed[:2] + ["nobody"])
    assert [k.decode() for k, _ in first] == changed[:2]
    assert fold.dirty == set(changed[2:])
    rest = fold.views()
    assert [k.decode() for k, _ in rest] == changed[2:]
    per = {eid: sum(1 for e in events if e.enterprise_id == eid) for eid in changed}
    for key, value in first + rest:
        doc = json.loads(value)
        assert doc["version"] == doc["file"]["events"] == per[key.decode()]
    assert fold.views() == []


def test_effect_messages_and_views_write_datetimes_as_before(rules, monkeypatch) -> None:
    """orjson writes the fold's datetimes itself now; over a whole demo county every effect
    message and every view is byte for byte what handing each datetime to ``_json_default``
    (UTC ``isoformat()``) wrote."""
    import orjson

    from qrisk import worker
    from qrisk.demo import CountyGenerator
    from qrisk.worker import BatchOutput, _json_default

    docs: list = []
    dumps = worker._dumps

    def recording(doc):
        docs.append(doc)
        return dumps(doc)

    monkeypatch.setattr(worker, "_dumps", recording)
    fold = Fold(rules, "log")
    out = BatchOutput()
    for offset, e in enumerate(e for e in CountyGenerator(seed=5).generate() if e.enterprise_id != "*"):
        fold.apply(0, offset, event_value(e), None, out)
    fold.views()
    assert len(docs) > 400 and any(d.get("file") for d in docs) and any("sampling_items_in" in d for d in docs)
    for doc in docs:
        assert dumps(doc) == orjson.dumps(doc, default=_json_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


@pytest.mark.parametrize("moment", [dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
                                    dt.datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=dt.timezone.utc),
                                    dt.datetime(2026, 1, 2, 3, 4, 5)])
def test_a_datetime_is_written_as_utc_isoformat(moment: dt.datetime) -> None:
    from qrisk.worker import _dumps

    utc = moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
    assert json.loads(_dumps({"at": moment, "day": moment.date()})) == {"at": utc.isoformat(), "day": moment.date().isoformat()}


def test_events_validated_ahead_count_only_for_the_partitions_this_fold_holds(rules) -> None:
    from qrisk.demo import CountyGenerator
    from qrisk.worker import BatchOutput, log_partition

    events = [e.model_copy(update={"received_at": NOW}) for e in CountyGenerator(seed=5).generate() if e.enterprise_id != "*"][:60]
    fold = Fold(rules, "log")
    fold.validated_limit = 50
    fold.load(1, [])  # this fold holds log partition 1 only
    sent = []
    for e in events:
        raw = event_value(e)
        p = log_partition(e.enterprise_id.encode(), 4)
        fold.remember(raw, e, p)
        sent.append((raw, p))
    kept = sent[-50:]  # the bound pushed out the oldest ten
    assert len(fold.validated) == 50
    ahead = sum(1 for _, p in kept if p == 1)
    assert 0 < ahead < 50 and fold.ahead == ahead
    assert fold.ahead_full(50 - ahead + 1) and not fold.ahead_full(50 - ahead)
    # taking partition 0 too counts what waits for it; giving up 1 forgets those
    fold.load(0, [])
    assert fold.ahead == sum(1 for _, p in kept if p in (0, 1))
    fold.drop([1])
    assert fold.ahead == sum(1 for _, p in kept if p == 0)
    # folding a remembered message uses the remembered event and counts it off
    out = BatchOutput()
    raw0 = [raw for raw, p in kept if p == 0]
    for offset, raw in enumerate(raw0):
        fold.apply(0, offset, raw, None, out)
    assert fold.validated_hits == len(raw0) and fold.ahead == 0
    assert len(fold.validated) == 50 - len(raw0)


@pytest.mark.parametrize("partitions", [1, 4, 7])
def test_the_worker_partitions_the_log_as_the_api_and_faust_producers_would(partitions: int) -> None:
    import random

    from aiokafka.partitioner import DefaultPartitioner
    from kafka.partitioner.default import murmur2 as kafka_python_murmur2

    from qrisk.worker import log_partition

    rng = random.Random(partitions)
    keys = [b"E001", "龙泉山泉水厂".encode(), b"C3-E0042"] + [rng.randbytes(rng.randrange(1, 40)) for _ in range(500)]
    every = list(range(partitions))
    for key in keys + keys:  # the second time from the memo
        expected = (kafka_python_murmur2(key) & 0x7FFFFFFF) % partitions  # the API's producer (kafka-python)
        assert log_partition(key, partitions) == expected == DefaultPartitioner()(key, every, every)
