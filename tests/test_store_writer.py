"""BatchWriter on both backends: batching by size and time, retries, rejects, spill, back-pressure."""
from __future__ import annotations

import random
import threading
import time

import pytest
from services import clickhouse_url, store  # noqa: F401 - fixtures

from qrisk.store import RowError
from qrisk.writer import BatchWriter, BufferFull, RetryPolicy, WriterFailed
from rows import sampling_item_rows

FAST = RetryPolicy(initial_s=0.01, max_s=0.05, seed=1)


def count(store, table: str = "sampling_items") -> int:
    return store.query(f"SELECT count() AS n FROM {table} FINAL")[0]["n"]


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class Flaky:
    """A store whose inserts fail (as a network error would) while ``down`` is set."""

    def __init__(self, store):
        self.store = store
        self.down = threading.Event()
        self.calls = 0

        self.lose_answers = 0  # inserts that land but whose answer is lost

    def insert(self, table, rows):
        self.calls += 1
        if self.down.is_set():
            raise ConnectionRefusedError("server is down")
        self.store.insert(table, rows)
        if self.lose_answers:
            self.lose_answers -= 1
            raise ConnectionResetError("connection reset after the insert")

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_batches_by_size(store):
    rows = sampling_item_rows(250)
    w = BatchWriter(store, "sampling_items", max_rows=100, max_delay_s=60)
    w.add(rows)
    assert wait_for(lambda: w.written == 200)
    time.sleep(0.2)
    assert w.written == 200 and w.pending == 50  # the tail waits for its time or a flush
    assert w.flush(timeout=10)
    assert (w.written, w.batches) == (250, 3)
    assert count(store) == 250
    w.close()


def test_batches_by_time(store):
    w = BatchWriter(store, "sampling_items", max_rows=10_000, max_delay_s=0.2)
    w.add(sampling_item_rows(5))
    assert wait_for(lambda: w.written == 5, timeout=5)
    assert count(store) == 5
    assert w.close()


def test_close_writes_what_is_pending(store):
    with BatchWriter(store, "sampling_items", max_rows=10_000, max_delay_s=60) as w:
        w.add(sampling_item_rows(30))
    assert count(store) == 30


def test_retries_while_down_and_loses_nothing(store):
    flaky = Flaky(store)
    rows = sampling_item_rows(1000)
    w = BatchWriter(flaky, "sampling_items", max_rows=100, max_delay_s=0.02, retry=FAST)
    w.add(rows[:300])
    assert w.flush(timeout=10)
    flaky.down.set()
    for i in range(300, 1000, 50):
        w.add(rows[i:i + 50])  # still acknowledged while the store is down
    assert wait_for(lambda: w.retries >= 3)
    assert not w.flush(timeout=0.1)
    flaky.down.clear()
    assert w.flush(timeout=10)
    assert w.acknowledged == w.written == 1000
    assert count(store) == 1000
    w.close()


def test_an_insert_that_landed_but_seemed_to_fail_is_not_counted_twice(store):
    store.command("SYSTEM STOP MERGES sampling_items")  # keep the duplicates visible to the raw count
    flaky = Flaky(store)
    flaky.lose_answers = 2
    rows = sampling_item_rows(300)
    w = BatchWriter(flaky, "sampling_items", max_rows=100, max_delay_s=0.01, retry=FAST)
    w.add(rows)
    assert w.flush(timeout=10)
    assert w.retries == 2
    assert store.query("SELECT count() AS n FROM sampling_items")[0]["n"] == 500  # the retried batches are there twice
    assert count(store) == 300  # and count once
    w.close()


def test_a_bad_row_stops_the_writer_and_keeps_its_rows(store):
    w = BatchWriter(store, "sampling_items", max_rows=10, max_delay_s=0.01, retry=FAST)
    w.add([{"event_id": "x", "no_such_column": 1}])
    with pytest.raises(WriterFailed):
        w.flush(timeout=10)
    assert isinstance(w.failed, RowError)
    with pytest.raises(WriterFailed):
        w.add(sampling_item_rows(1))
    assert w.pending == 1
    assert not w.close(timeout=1)


def test_bad_rows_can_go_to_a_reject_handler(store):
    rejected = []
    rows = sampling_item_rows(40)
    rows[7] = rows[7] | {"value_index": "seven"}
    rows[31] = rows[31] | {"sampled_on": "not a date"}
    w = BatchWriter(store, "sampling_items", max_rows=100, max_delay_s=0.01, on_reject=lambda rs, exc: rejected.append((rs, exc)))
    w.add(rows)
    assert w.flush(timeout=10)
    assert [rs[0]["event_id"] for rs, _ in rejected] == [rows[7]["event_id"], rows[31]["event_id"]]
    assert all(isinstance(exc, RowError) for _, exc in rejected)
    assert w.rejected == 2 and count(store) == 38
    w.close()


def test_back_pressure_when_too_much_is_pending(store):
    flaky = Flaky(store)
    flaky.down.set()
    w = BatchWriter(flaky, "sampling_items", max_rows=5, max_delay_s=0.01, retry=FAST, max_pending_rows=10)
    rows = sampling_item_rows(11)
    w.add(rows[:10])
    with pytest.raises(BufferFull):
        w.add(rows[10:], timeout=0.2)
    assert w.acknowledged == 10
    flaky.down.clear()
    w.add(rows[10:], timeout=10)  # room again once the store is back
    assert w.flush(timeout=10) and count(store) == 11
    w.close()


def test_spilled_rows_survive_the_writer(store, tmp_path):
    """Acknowledged, never written (the store was down and the writer died): the next writer writes them."""
    flaky = Flaky(store)
    flaky.down.set()
    spill = tmp_path / "spill"
    rows = sampling_item_rows(120)
    w = BatchWriter(flaky, "sampling_items", max_rows=50, max_delay_s=0.01, retry=FAST, spill_dir=spill)
    w.add(rows[:70])
    w.add(rows[70:])
    assert not w.close(timeout=0.2)  # gives up; the rows are in the spill files
    assert list(spill.glob("sampling_items-*.jsonl"))
    with open(next(iter(sorted(spill.glob("*.jsonl")))), "ab") as fh:
        fh.write(b'{"torn": ')  # a write cut short by the crash: never acknowledged
    w2 = BatchWriter(store, "sampling_items", max_rows=50, max_delay_s=0.01, retry=FAST, spill_dir=spill)
    assert w2.acknowledged == 120
    assert w2.flush(timeout=10)
    assert count(store) == 120
    got = store.query("SELECT sum(value_index) AS s, countIf(value IS NULL) AS nulls, min(sampled_on) AS first FROM sampling_items FINAL")
    assert got == [{"s": sum(r["value_index"] for r in rows), "nulls": sum(r["value"] is None for r in rows),
                    "first": min(r["sampled_on"] for r in rows).isoformat()}]
    w2.add(rows[:10])  # and it goes on spilling and cleaning up
    assert w2.close(timeout=10)
    assert not list(spill.glob("*.jsonl"))


def test_backoff_is_bounded_and_reproducible():
    policy = RetryPolicy(initial_s=0.1, max_s=2.0, multiplier=2.0, jitter=0.25, seed=42)
    first = [policy.delay(n, random.Random(42)) for n in range(1, 12)]
    again = [policy.delay(n, random.Random(42)) for n in range(1, 12)]
    assert first == again
    assert all(0.075 <= d <= 2.0 for d in first)
    assert first[-1] >= 1.5 and first[0] <= 0.125
