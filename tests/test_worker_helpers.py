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


# --------------------------------------------------------------------------- an event id used again


def _logged(doc: dict, received: dt.datetime) -> bytes:
    """A log message as the ingress writes it: the record with the time it arrived."""
    return json.dumps({**doc, "received_at": received.isoformat()}, ensure_ascii=False).encode("utf-8")


def _respelt(doc: dict) -> dict:
    """The same sample as a retry may spell it: keys in another order, 未检出 for ND."""
    import copy

    same = copy.deepcopy(doc)
    assert same["payload"]["items"][2]["values"] == ["ND"]
    same["payload"]["items"][2]["values"] = ["未检出"]
    return dict(reversed(list(same.items())))


def _corrected(doc: dict) -> dict:
    """A lab's correction sent under the old event id."""
    import copy

    fixed = copy.deepcopy(doc)
    fixed["payload"]["items"][0]["values"] = [0, 0, 0, 0, 0]
    return fixed


def _fold_registered_sample(rules, snapshot_every: int = 100):
    from qrisk.worker import BatchOutput
    from tests.conftest import golden

    fold = Fold(rules, "log", snapshot_every=snapshot_every)
    out = BatchOutput()
    reg, sample = golden("enterprise.registered"), golden("sampling.result")
    fold.apply(0, 0, _logged(reg, NOW), None, out)
    fold.apply(0, 1, _logged(sample, NOW), None, out)
    assert out.applied == 2 and not out.letters
    return fold, out, sample


def test_a_retry_with_its_items_in_another_order_is_a_duplicate_also_of_a_digest_kept_from_before(rules) -> None:
    """A lab system reading a sample's result lines without an ORDER BY retries them in another order:
    the same report.  A worker's snapshot keeps the digest it made when it first folded an event; one
    kept before the order of items stopped counting still takes an identical retry for a duplicate."""
    from qrisk.pipeline import content_digest
    from qrisk.worker import BatchOutput
    from schemas.upcast import parse_event

    fold, _, sample = _fold_registered_sample(rules)
    eid, event_id = sample["enterprise_id"], sample["event_id"]
    fs = fold.files[eid]
    shuffled = {**sample, "payload": {**sample["payload"], "items": sample["payload"]["items"][::-1]}}
    out = BatchOutput()
    fold.apply(0, 2, _logged(shuffled, NOW + dt.timedelta(minutes=5)), None, out)
    assert (out.duplicates, out.conflicts, out.applied) == (1, 0, 0)
    # the digest a worker kept before: the items as sent (here not in item_code order)
    before = content_digest(parse_event(sample), items_as_sent=True)
    assert before != fs.seen[event_id]
    fs.seen[event_id] = before
    out = BatchOutput()
    fold.apply(0, 3, _logged(sample, NOW + dt.timedelta(minutes=9)), None, out)
    assert (out.duplicates, out.conflicts, out.applied) == (1, 0, 0)
    out = BatchOutput()
    fold.apply(0, 4, _logged(_corrected(sample), NOW + dt.timedelta(hours=1)), None, out)
    assert (out.duplicates, out.conflicts) == (0, 1)  # a correction is still one


def test_a_retry_is_a_duplicate_and_a_correction_under_a_used_id_a_conflict(rules) -> None:
    """The embedded pipeline answers 409 to a correction under a used event_id; the Kafka worker
    cannot answer, but must not drop it silently: a dead letter and an effect, nothing folded."""
    from qrisk.worker import CONFLICT_IDX, BatchOutput

    fold, _, sample = _fold_registered_sample(rules)
    eid, event_id = sample["enterprise_id"], sample["event_id"]
    fs = fold.files[eid]
    before = (fs.version, fs.pos, fs.file.model_dump_json(), dict(fs.seen), fs.alerts.model_dump_json())
    assert fs.seen[event_id] is not None  # a digest, kept with the id

    retry = BatchOutput()
    fold.apply(0, 2, _logged(_respelt(sample), NOW + dt.timedelta(minutes=5)), None, retry)
    assert (retry.duplicates, retry.conflicts, retry.applied) == (1, 0, 0)
    assert retry.effects == [] and retry.letters == [] and retry.writes == []

    out = BatchOutput()
    raw = _logged(_corrected(sample), NOW + dt.timedelta(hours=1))
    fold.apply(0, 3, raw, 1_700_000_000_000, out)
    assert (out.duplicates, out.conflicts, out.applied) == (0, 1, 0)
    assert out.writes == []  # the state is not touched: nothing for the changelog
    assert (fs.version, fs.pos, fs.file.model_dump_json(), dict(fs.seen), fs.alerts.model_dump_json()) == before
    (letter,) = out.letters
    assert letter.channel == "kafka" and letter.position == "log/0/3" and letter.raw == raw
    assert letter.dead_letter_id == "kafka:log:0:3"
    (error,) = letter.errors
    assert error["type"] == "event_id_conflict" and error["field"] == "event_id" and error["event_id"] == event_id
    # worded as the HTTP door's 409
    assert letter.reason == f"conflict: event_id {event_id} already names an earlier event in the log, with different content"
    assert error["reason_zh"] == f"event_id {event_id} 已用于日志中已有的事件，内容不同；更正请使用新的 event_id"
    (key, value), = out.effects
    message = json.loads(value)
    assert key == eid.encode() and message["file_version"] == fs.version and message["log"] == [0, 3]
    (effect,) = message["effects"]
    assert effect["kind"] == "event.id_conflict" and effect["event_id"] == event_id
    assert effect["data"] == {"event_type": "sampling.result", "reason": error["reason"], "reason_zh": error["reason_zh"],
                              "dead_letter_id": letter.dead_letter_id}
    # beside the last folded event's effects, never in their place; a redelivery lands on the same keys
    assert effect["idx"] == CONFLICT_IDX | 3
    again = BatchOutput()
    fold.apply(0, 3, raw, 1_700_000_000_000, again)
    assert again.effects == out.effects and [dl.dead_letter_id for dl in again.letters] == [letter.dead_letter_id]
    # and the file goes on: the correction sent as a new event is folded
    fresh = BatchOutput()
    fold.apply(0, 4, _logged({**_corrected(sample), "event_id": "5b0c6e1a-93d2-4f7e-b8a4-2c1d0e9f8a76"}, NOW), None, fresh)
    assert fresh.applied == 1 and fs.version == before[0] + 1


def test_a_digest_is_the_same_for_an_event_however_it_reached_the_fold() -> None:
    """Validated on ingress (the door's checks) or parsed from the log bytes, stamped or
    re-serialised, at whatever time it arrived: one digest."""
    from qrisk.pipeline import content_digest
    from schemas.events import DOOR

    for path in EXAMPLES:
        raw = path.read_bytes()
        at_door = event_adapter.validate_json(raw, context=DOOR).model_copy(update={"received_at": NOW})
        from_log = event_adapter.validate_json(stamped_value(raw, moment_json(NOW + dt.timedelta(days=1))))
        rewritten = event_adapter.validate_json(event_value(at_door))
        assert content_digest(at_door) == content_digest(from_log) == content_digest(rewritten), path.stem
    # a retry spelt differently is the same event (45 written 45.0 too); another number is a correction
    from tests.conftest import golden

    sample = golden("sampling.result")
    assert sample["payload"]["items"][0]["values"][0] == 45
    original = content_digest(event_adapter.validate_python(sample))
    assert content_digest(event_adapter.validate_python(_respelt(sample))) == original
    sample["payload"]["items"][0]["values"][0] = 45.0
    assert content_digest(event_adapter.validate_python(sample)) == original
    sample["payload"]["items"][0]["values"][0] = 45.5
    assert content_digest(event_adapter.validate_python(sample)) != original
    # an alert step's time is stamped by the API when it is posted: a retry posted later is the same step
    from schemas.events import AlertActionEvent

    def step(action: str, minutes: int) -> AlertActionEvent:
        return AlertActionEvent(event_id="8f7c3f0e-5d0b-4b7a-9a51-0c2f1e9d2a11", event_type="alert.action", enterprise_id="E1",
                                occurred_at=NOW + dt.timedelta(minutes=minutes), source={"kind": "bureau", "id": "zhang"},
                                payload={"alert_id": "AL-0123456789abcdef", "action": action, "actor": "zhang"})
    assert content_digest(step("acknowledge", 0)) == content_digest(step("acknowledge", 3))
    assert content_digest(step("acknowledge", 0)) != content_digest(step("close", 0))


def _table(writes, table: dict | None = None) -> dict:
    """The worker's table after these writes (None deletes), as a successor reads it."""
    table = {} if table is None else table
    for key, value in writes:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    return table


def test_a_snapshot_keeps_the_digests_and_one_without_them_still_loads(rules) -> None:
    from qrisk.worker import BatchOutput, snapshot_key
    from tests.conftest import golden

    fold, out, sample = _fold_registered_sample(rules, snapshot_every=2)
    eid, event_id = sample["enterprise_id"], sample["event_id"]
    table = _table(out.writes)
    assert snapshot_key(0, eid) in table  # two events: a snapshot
    # one more event after the snapshot, in the tail
    complaint = golden("complaint.received")
    tail = BatchOutput()
    fold.apply(0, 2, _logged(complaint, NOW), None, tail)
    _table(tail.writes, table)

    successor = Fold(rules, "log")
    successor.load(0, table.items())
    assert successor.files[eid].seen == fold.files[eid].seen and None not in successor.files[eid].seen.values()
    out = BatchOutput()
    successor.apply(0, 3, _logged(_corrected(sample), NOW), None, out)
    successor.apply(0, 4, _logged(_respelt(sample), NOW), None, out)
    assert (out.conflicts, out.duplicates, out.applied) == (1, 1, 0)

    # a snapshot as workers wrote it before the digests: the ids alone
    head, _, body = table[snapshot_key(0, eid)].partition(b"\n")
    doc = json.loads(head)
    doc["seen"] = sorted(doc["seen"])
    old = {**table, snapshot_key(0, eid): json.dumps(doc).encode() + b"\n" + body}
    upgraded = Fold(rules, "log")
    upgraded.load(0, old.items())
    fs = upgraded.files[eid]
    assert fs.version == fold.files[eid].version and fs.file.model_dump_json() == fold.files[eid].file.model_dump_json()
    assert fs.seen[event_id] is None  # nothing to compare a repeat with …
    assert fs.seen[complaint["event_id"]] is not None  # … but the tail, folded again here, has its digests
    out = BatchOutput()
    upgraded.apply(0, 3, _logged(_corrected(sample), NOW), None, out)
    assert (out.conflicts, out.duplicates) == (0, 1)  # so a repeat of a snapshot's id is a duplicate, as it was
    changed = {**complaint, "payload": {**complaint["payload"], "text": "另一条投诉"}}
    upgraded.apply(0, 4, _logged(changed, NOW), None, out)
    assert out.conflicts == 1


# --------------------------------------------------------------------------- clock ticks and the snapshot's size


def _tick(i: int) -> bytes:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    at = (start + dt.timedelta(minutes=10 * i)).isoformat()
    return json.dumps({"event_id": f"00000000-0000-4000-8000-{i:012d}", "event_type": "clock.tick", "schema_version": 2,
                       "enterprise_id": "*", "occurred_at": at, "received_at": at,
                       "source": {"kind": "system", "id": "qrisk-tick"}, "payload": {}}).encode()


def test_fifteen_thousand_ticks_leave_the_snapshot_small(rules) -> None:
    """~104 days of `qrisk tick --every 600`: each tick's id went into every file's ``seen``, 74
    bytes a tick in every snapshot, until a snapshot passed 1 MB (the producer's limit) and the
    worker stopped for good.  Ticks are guarded by the log offset; only the last few ids stay."""
    from qrisk.worker import TICK_IDS_KEPT, BatchOutput, snapshot_key
    from tests.conftest import golden

    fold = Fold(rules, "log", snapshot_every=100)
    out = BatchOutput()
    fold.apply(0, 0, _logged(golden("enterprise.registered"), NOW), None, out)
    eid = golden("enterprise.registered")["enterprise_id"]
    table = _table(out.writes)
    sizes = []
    for i in range(1, 15_001):
        out = BatchOutput()
        fold.apply(0, i, _tick(i), None, out)
        assert out.applied == 1, i
        _table(out.writes, table)
        if i % 1000 == 0:
            sizes.append(len(table[snapshot_key(0, eid)]))
    fs = fold.files[eid]
    assert fs.version == 15_001 and len(fs.ticks) == TICK_IDS_KEPT and len(fs.seen) == 1
    assert max(sizes) < 20_000, sizes  # was 1,038,719 bytes at 14 k ticks
    assert max(sizes) - min(sizes) < 2_000, sizes  # and it does not grow with the ticks
    # a tick published again (its id, new offset) is still a duplicate; a redelivered one (old offset) reaches no file
    again = BatchOutput()
    fold.apply(0, 15_001, _tick(15_000), None, again)
    fold.apply(0, 14_999, _tick(14_999), None, again)
    assert (again.applied, again.duplicates) == (0, 1) and fs.version == 15_001
    # the successor's file is the same, ticks and all
    successor = Fold(rules, "log")
    successor.load(0, table.items())
    assert successor.files[eid].ticks == fs.ticks and successor.files[eid].version == fs.version
    assert successor.files[eid].file.model_dump_json() == fs.file.model_dump_json()


def test_a_snapshot_too_large_is_not_written_and_its_entries_stay(rules, caplog) -> None:
    """A snapshot past the limit would be refused by the broker and stop the worker: it is
    reported (naming the enterprise) and left out; the tail keeps the state, nothing is lost."""
    from qrisk.worker import BatchOutput, entry_key, snapshot_key
    from tests.conftest import golden

    fold = Fold(rules, "log", snapshot_every=2)
    fold.snapshot_max_bytes = 500  # a registered file alone is larger
    out = BatchOutput()
    reg, sample = golden("enterprise.registered"), golden("sampling.result")
    eid = reg["enterprise_id"]
    fold.apply(0, 0, _logged(reg, NOW), None, out)
    with caplog.at_level("ERROR", logger="qrisk.worker"):
        fold.apply(0, 1, _logged(sample, NOW), None, out)
    table = _table(out.writes)
    assert snapshot_key(0, eid) not in table and {entry_key(0, eid, 1), entry_key(0, eid, 2)} <= set(table)
    assert fold.oversized == 1 and eid in caplog.text and "500" in caplog.text
    # next try snapshot_every later, not at every event
    out = BatchOutput()
    fold.apply(0, 2, _logged(golden("complaint.received"), NOW), None, out)
    assert fold.oversized == 1
    _table(out.writes, table)
    successor = Fold(rules, "log")
    successor.load(0, table.items())
    assert successor.files[eid].file.model_dump_json() == fold.files[eid].file.model_dump_json()
    assert successor.files[eid].seen == fold.files[eid].seen


def test_a_reload_deletes_the_entries_its_snapshot_covers(rules) -> None:
    """A snapshot deletes the entries of the snapshot before it; a file rebuilt from a snapshot
    did not know those, so they stayed in the changelog for good.  The load deletes them."""
    from qrisk.worker import BatchOutput, entry_key, snapshot_key
    from tests.conftest import golden

    fold, out, sample = _fold_registered_sample(rules, snapshot_every=2)  # versions 1, 2: snapshot at 2
    eid = sample["enterprise_id"]
    table = _table(out.writes)
    assert snapshot_key(0, eid) in table and {entry_key(0, eid, 1), entry_key(0, eid, 2)} <= set(table)
    tail = BatchOutput()
    fold.apply(0, 2, _logged(golden("complaint.received"), NOW), None, tail)
    _table(tail.writes, table)
    successor = Fold(rules, "log", snapshot_every=2)
    loaded = BatchOutput()
    successor.load(0, table.items(), loaded)
    assert sorted(loaded.writes) == [(entry_key(0, eid, 1), None), (entry_key(0, eid, 2), None)]
    _table(loaded.writes, table)
    assert {k for k in table if k.startswith("E|")} == {entry_key(0, eid, 3)}
    # and a second reload finds nothing more to delete, and the same file
    third = Fold(rules, "log")
    again = BatchOutput()
    third.load(0, table.items(), again)
    assert again.writes == [] and third.files[eid].file.model_dump_json() == fold.files[eid].file.model_dump_json()


def test_a_snapshot_of_another_fold_version_is_said_when_loaded(rules, caplog) -> None:
    """Snapshots name the fold version that wrote them; a worker loading one of another version (an
    upgrade that changed what the fold keeps) says so, in the log and its metrics: those files carry
    on with the old results until the log is folded again (README, "Upgrades")."""
    import logging

    import orjson

    from processors.step import FOLD_VERSION
    from qrisk.worker import snapshot_key

    fold, out, sample = _fold_registered_sample(rules, snapshot_every=2)
    eid = sample["enterprise_id"]
    table = _table(out.writes)
    head, _, body = table[snapshot_key(0, eid)].partition(b"\n")
    assert orjson.loads(head)["fold"] == FOLD_VERSION
    with caplog.at_level(logging.WARNING, logger="qrisk.worker"):
        same = Fold(rules, "log")
        same.load(0, table.items())
    assert same.stale_snapshots == 0 and "fold version" not in caplog.text
    # as a worker before this round wrote it: no version in its head
    old = orjson.loads(head)
    del old["fold"]
    table[snapshot_key(0, eid)] = orjson.dumps(old) + b"\n" + body
    with caplog.at_level(logging.WARNING, logger="qrisk.worker"):
        successor = Fold(rules, "log")
        successor.load(0, table.items())
    assert successor.stale_snapshots == 1
    assert f"1 credit files were snapshotted by fold version unknown, this is {FOLD_VERSION}" in caplog.text
    assert successor.files[eid].file.model_dump_json() == fold.files[eid].file.model_dump_json()  # loaded all the same
    from qrisk.worker import worker_metrics

    class Monitor:
        tp_end_offsets: dict = {}
        tp_committed_offsets: dict = {}

    stats = dict.fromkeys(("applied", "duplicates", "conflicts", "dead_letters", "normalised", "batches"), 0)
    assert b"qrisk_worker_stale_snapshots 1\n" in worker_metrics(stats, Monitor(), successor.stale_snapshots)
    # the mark outlives the next snapshot: the file still holds the old version's results, so the snapshot
    # written by this worker names that version, not its own, and a third worker loading it says so again
    [(key, value)] = [w for w in successor._snapshot(eid, successor.files[eid]) if w[1] is not None]
    assert orjson.loads(value.partition(b"\n")[0])["fold"] == 0  # (0: the version unknown, as loaded)
    table[key] = value
    third = Fold(rules, "log")
    third.load(0, table.items())
    assert third.stale_snapshots == 1
    # a gauge of the files held here, not a count of loads: a partition handed away takes its files with it
    third.drop([0])
    assert third.stale_snapshots == 0
    # what a rebalance left unfolded for the partitions' owner (logged, and counted since the nineteenth round)
    assert b"qrisk_worker_left_for_owner_total 0\n" in worker_metrics(stats, Monitor())
    assert b"qrisk_worker_left_for_owner_total 3\n" in worker_metrics({**stats, "not_ours": 3}, Monitor())


def test_a_table_short_of_the_committed_offset_is_told_at_the_partitions_first_message(rules) -> None:
    """Each batch's state ends with the partition's last folded offset (``W|p``); a successor's first
    message, at the group's committed offset, lies past it only when the table lacks state someone
    made durable and committed (Faust restoring less than the changelog holds, or a changelog deleted
    or restored from an older copy).  Told once per load, and not for a table written before the mark."""
    from qrisk.worker import BatchOutput, folded_key, table_behind
    from tests.conftest import golden

    assert [table_behind(None, 9), table_behind(8, 9), table_behind(12, 9), table_behind(7, 9)] == [False, False, False, True]

    fold = Fold(rules, "log", snapshot_every=2)
    reg, sample, complaint = golden("enterprise.registered"), golden("sampling.result"), golden("complaint.received")
    first = BatchOutput()
    fold.apply(0, 0, _logged(reg, NOW), None, first)
    fold.apply(0, 1, _logged(sample, NOW), None, first)
    fold.mark_folded(first)
    assert first.writes[-1] == (folded_key(0), b'{"offset": 1}')  # after the batch's state: durable only with it
    table = _table(first.writes)
    second = BatchOutput()
    fold.apply(0, 2, _logged(complaint, NOW), None, second)
    fold.apply(0, 3, _logged(complaint, NOW), None, second)  # a redelivery changes nothing, and counts all the same
    fold.mark_folded(second)
    assert second.duplicates == 1 and second.writes[-1] == (folded_key(0), b'{"offset": 3}')
    whole = _table(second.writes, dict(table))

    successor = Fold(rules, "log")
    successor.load(0, whole.items())
    assert successor.behind(0, 4) is None  # the commit right after the last batch
    assert successor.behind(0, 9) is None  # compared once per load: the partition's first message only

    short = Fold(rules, "log")
    short.load(0, table.items())  # the first batch's state only, the group committed past the second
    assert short.behind(1, 4) is None  # (a partition not loaded here)
    assert short.behind(0, 4) == 1 and short.files[reg["enterprise_id"]].version == 2

    # the mark as the worker sends it counts the snapshots and entries (``_state_sends``): a restore that
    # missed one of them is told at once, whatever the offsets say
    counted = {**whole, folded_key(0): b'{"offset": 3, "keys": %d}' % (len(whole) - 1)}
    full = Fold(rules, "log")
    full.load(0, counted.items())
    assert full.restored_keys[0] == len(whole) - 1 and not full.keys_differ(0)
    missing = next(k for k in counted if k.startswith("E|"))
    part = Fold(rules, "log")
    part.load(0, [(k, v) for k, v in counted.items() if k != missing])
    assert part.keys_differ(0) and part.behind(0, 4) is None  # (its offsets agree)
    # a load that deletes covered entries says the mark again after them, to be counted as the table then is
    out = BatchOutput()
    Fold(rules, "log").load(0, counted.items(), out)
    assert [k for k, v in out.writes if v is not None] == ([folded_key(0)] if out.writes else [])

    # written before the mark: nothing to compare with
    old = Fold(rules, "log")
    old.load(0, [(k, v) for k, v in table.items() if k != folded_key(0)])
    assert old.behind(0, 4) is None
    old.drop([0])
    assert old.folded_to == {} and old.unchecked == set()
