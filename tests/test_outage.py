"""Outage safety against a real clickhouse-server: kill it mid-stream, keep sending, bring it back.

A private server (its own ports and folder under var/, started by scripts/services.sh) so the
shared one is never disturbed.  A producer thread streams sampling-item rows through a
BatchWriter the whole time; the server is killed with SIGKILL, restarted, stopped with SIGTERM
and restarted again.  Afterwards the table holds exactly the acknowledged rows: none lost
(every acknowledged key is there) and none twice (count() FINAL equals the acknowledged count).
"""
from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest
from services import ClickHouseService

from qrisk.store import ClickHouseStore, migrate
from qrisk.writer import BatchWriter, RetryPolicy
from rows import item_rows_for, sample_events

KEY = ("enterprise_id", "item_code", "sampled_on", "event_id", "value_index")


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def private_server():
    svc = ClickHouseService("test-outage")
    svc.clean()
    svc.up()
    yield svc
    svc.clean()


def test_server_outage_mid_stream_loses_nothing_and_writes_nothing_twice(private_server):
    svc = private_server
    started = time.monotonic()
    store = ClickHouseStore(svc.url("qrisk_outage"))
    migrate(store)
    writer = BatchWriter(store, "sampling_items", max_rows=1000, max_delay_s=0.05,
                         retry=RetryPolicy(initial_s=0.05, max_s=0.4, seed=3))
    source = itertools.chain.from_iterable(item_rows_for(s) for s in sample_events(enterprises=40, years=40, per_month=1))
    acknowledged: list[tuple] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            while not stop.is_set():
                chunk = list(itertools.islice(source, 50))
                writer.add(chunk)  # returned: acknowledged
                acknowledged.extend(tuple(str(r[k]) for k in KEY) for r in chunk)
                time.sleep(0.005)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        wait_for(lambda: writer.written >= 3000, 20, "the first rows to be written")

        svc.kill()  # SIGKILL mid-stream
        at_kill = (len(acknowledged), writer.retries, writer.written)
        wait_for(lambda: writer.retries >= at_kill[1] + 3 and len(acknowledged) >= at_kill[0] + 3000, 20,
                 "failed writes and more acknowledged rows while the server is dead")
        assert writer.written <= at_kill[2] + 1000  # at most the batch in flight at the kill

        svc.start()
        wait_for(lambda: writer.written > len(acknowledged) - 2000, 30, "the writer to catch up after the restart")

        svc.stop()  # a clean SIGTERM this time, still mid-stream
        at_stop = (len(acknowledged), writer.retries)
        wait_for(lambda: writer.retries >= at_stop[1] + 2 and len(acknowledged) >= at_stop[0] + 2000, 20,
                 "failed writes while the server is stopped")
        svc.start()
        time.sleep(0.5)
    finally:
        stop.set()
        producer.join(timeout=10)
    assert not errors, errors
    assert writer.flush(timeout=30), writer.stats()
    assert writer.close(timeout=10)
    store.close()

    check = ClickHouseStore(svc.url("qrisk_outage"))
    total = len(acknowledged)
    assert total == writer.acknowledged == writer.written
    final = check.query("SELECT count() AS n FROM sampling_items FINAL")[0]["n"]
    raw = check.query("SELECT count() AS n FROM sampling_items")[0]["n"]
    distinct = check.query(f"SELECT uniqExact({', '.join(KEY)}) AS n FROM sampling_items")[0]["n"]
    keys = {tuple(str(r[k]) for k in KEY) for r in check.query(f"SELECT {', '.join(KEY)} FROM sampling_items FINAL")}
    check.close()
    print(f"\nacknowledged {total}, rows stored {raw} (before dedup), count() FINAL {final}, "
          f"retries {writer.retries}, batches {writer.batches}, {time.monotonic() - started:.1f}s")
    assert len(set(acknowledged)) == total
    assert keys == set(acknowledged)  # nothing lost, nothing invented
    assert final == distinct == total  # nothing counted twice
    assert raw >= total
    assert time.monotonic() - started < 60


def test_a_server_whose_pid_file_lost_track_of_it_is_still_found(private_server):
    """setsid forks when the script runs under job control, and the pid file then named the
    exited parent: status said down, up refused the port, down left the server running."""
    svc = private_server
    real = svc.pid
    pid_file = svc.var_dir / "clickhouse" / "clickhouse-server.pid"
    pid_file.write_text("1\n")  # a live process that is not ours
    assert "clickhouse: up (pid %d" % real in svc._run("status")
    assert "already up" in svc._run("up")
    assert svc.pid == real  # the file is mended
    pid_file.unlink()
    svc.stop()
    wait_for(lambda: not (Path("/proc") / str(real)).exists(), 30, "the server to exit")
