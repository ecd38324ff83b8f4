"""One writer per ClickHouse database, against the real server.

Two embedded pipelines on one server database would number events alike (each hands out ``seq``
from the log's highest at its start) and ``event_log`` would keep one event of each pair."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from qrisk.runtime import default_rules, open_embedded
from qrisk.store import ClickHouseStore, StoreError, StoreInUse, migrate
from qrisk.writer_lease import LeaseLapsed, WriterLease, _pid_namespace
from schemas.upcast import parse_event
from tests.conftest import golden
from tests.services import clickhouse_url, drop_database, fresh_database_url  # noqa: F401 - fixtures


@pytest.fixture
def database(clickhouse_url):  # noqa: F811 - fixture
    name, url = fresh_database_url(clickhouse_url, "writer")
    yield url
    drop_database(clickhouse_url, name)


def _event() -> object:
    doc = golden("enterprise.registered")
    doc["event_id"] = str(uuid.uuid4())
    return parse_event(doc)


def _now_ms(store) -> int:
    return int(store.query("SELECT toUInt64(now()) * 1000 AS ms")[0]["ms"])


def test_a_second_writer_is_refused_and_the_first_keeps_writing(database, tmp_path):
    rules = default_rules()
    first = open_embedded(tmp_path / "a", rules, clickhouse_url=database)
    try:
        assert [o.status for o in first.submit([_event()])] == ["accepted"]
        with pytest.raises(StoreInUse) as refused:
            open_embedded(tmp_path / "b", rules, clickhouse_url=database)  # `qrisk import FILE` next to `qrisk run`
        text = str(refused.value)
        assert first.writer_lease.holder in text and "--url" in text and "renewed" in text
        assert [o.status for o in first.submit([_event()])] == ["accepted"]
    finally:
        first.close()
    # released on close: the next one starts at once and numbers on from the log
    second = open_embedded(tmp_path / "b", rules, clickhouse_url=database)
    try:
        assert second.seq == 2
        assert [o.seq for o in second.submit([_event()])] == [3]
    finally:
        second.close()


def test_a_lease_left_by_a_process_of_this_host_that_is_gone_does_not_block(database):
    store = ClickHouseStore(database)
    migrate(store)
    done = subprocess.run([sys.executable, "-c", "import os; from qrisk.writer_lease import process_started as s; print(f'{os.getpid()}:{s(os.getpid())}')"],
                          capture_output=True, text=True, check=True)
    ns = _pid_namespace()
    dead = f"{os.uname().nodename}:{done.stdout.strip()}:{ns}:killed9"  # as `kill -9` leaves it: live-looking, never released
    # a live process whose id an old row names, but which started at another time: the id was reused
    reused = f"{os.uname().nodename}:{os.getppid()}:1:{ns}:reused"
    now = _now_ms(store)
    store.insert("writer_leases", [{"holder": h, "started_ms": now, "renewed_ms": now, "released": 0} for h in (dead, reused)])
    lease = WriterLease(store, seconds=30.0, sleep=lambda s: pytest.fail(f"waited {s} s for a writer that is gone"))
    lease.acquire()
    lease.release()
    store.close()


def test_a_writer_elsewhere_is_refused_at_once_when_live_and_waited_out_when_silent(database):
    store = ClickHouseStore(database)
    migrate(store)
    now = _now_ms(store)
    store.insert("writer_leases", [{"holder": "other-host:4242:live", "started_ms": now, "renewed_ms": now, "released": 0}])
    with pytest.raises(StoreInUse, match="other-host:4242:live"):
        WriterLease(store, seconds=4.0, sleep=lambda s: pytest.fail("a live writer is not waited for")).acquire()
    # silent for more than half a lease: waited out (its row lapses), then taken over
    store.insert("writer_leases", [{"holder": "other-host:4242:live", "started_ms": now, "renewed_ms": now + 1, "released": 1}])
    store.insert("writer_leases", [{"holder": "other-host:77:silent", "started_ms": now - 3000, "renewed_ms": now - 3000, "released": 0}])
    waits: list[float] = []
    lease = WriterLease(store, seconds=4.0, sleep=lambda s: (waits.append(s), __import__("time").sleep(s)))
    lease.acquire()
    assert len(waits) == 1 and 1.0 <= waits[0] <= 3.5
    lease.release()
    store.close()


def test_a_writer_that_cannot_renew_stops_writing_before_another_may_take_over(database, tmp_path):
    pipeline = open_embedded(tmp_path / "a", default_rules(), clickhouse_url=database)
    try:
        clock = {"t": pipeline.writer_lease.monotonic()}
        pipeline.writer_lease.monotonic = lambda: clock["t"]
        pipeline.writer_lease.renewed_at = clock["t"]
        clock["t"] += pipeline.writer_lease.seconds * 2 / 3  # no renewal for two thirds of the lease
        before = pipeline.seq
        with pytest.raises(LeaseLapsed):
            pipeline.submit([_event()])
        assert pipeline.seq == before and isinstance(LeaseLapsed("x"), StoreError)
        assert pipeline.store.query("SELECT count() AS n FROM event_log")[0]["n"] == before
    finally:
        pipeline.close()


def test_a_process_in_another_pid_namespace_is_not_taken_for_gone(database):
    """Containers sharing a host name (network_mode: host) cannot see each other's processes: a live
    writer there must not look like a gone process here."""
    store = ClickHouseStore(database)
    migrate(store)
    now = _now_ms(store)
    elsewhere = f"{os.uname().nodename}:{999_999}:12345:4026599999:other-container"
    store.insert("writer_leases", [{"holder": elsewhere, "started_ms": now, "renewed_ms": now, "released": 0}])
    with pytest.raises(StoreInUse, match="other-container"):
        WriterLease(store, seconds=30.0, sleep=lambda s: pytest.fail("a live writer is not waited for")).acquire()
    store.close()


def test_two_writers_starting_together_do_not_both_write(database):
    """B stamps after A looked for live writers but before A reads again: A must see B and step back."""
    store = ClickHouseStore(database)
    migrate(store)
    a = WriterLease(store, seconds=30.0)
    real_live = a._live
    looks = []

    def live(now):
        looks.append(now)
        if len(looks) == 1:  # A's first look, before B stamped
            return []
        return real_live(now)

    a._live = live
    now = _now_ms(store)
    store.insert("writer_leases", [{"holder": "host-b:77:1:1:bbbb", "started_ms": now, "renewed_ms": now, "released": 0}])
    with pytest.raises(StoreInUse, match="host-b"):
        a.acquire()
    assert a.started_ms == 0 and not a._thread  # stepped back, its row released
    holders = {r["holder"] for r in real_live(_now_ms(store))}
    assert holders == {"host-b:77:1:1:bbbb"}
    store.close()


def test_a_lapsed_lease_stays_lapsed_when_the_store_comes_back(database):
    """Renewals failed long enough for another writer to take over: when the store answers again the
    old writer must not write (two writers would number events alike)."""
    store = ClickHouseStore(database)
    migrate(store)
    clock = {"t": 1000.0}
    lease = WriterLease(store, seconds=30.0, monotonic=lambda: clock["t"])
    lease.acquire()
    try:
        lease.check()
        clock["t"] += 20.0  # two thirds of the lease without a renewal (the store was down)
        with pytest.raises(LeaseLapsed):
            lease.check()
        lease._stamp(_now_ms(store))  # the store is back and a renewal gets through
        with pytest.raises(LeaseLapsed, match="restart"):
            lease.check()
    finally:
        lease.release()
        store.close()
