"""The worker's fixes to Faust's consumer (qrisk.faust_app), on the consumer's own bookkeeping.

After a rebalance the same offset can be acknowledged twice, and a stream can drop a message it
was handed (see the module's docstring).  Plain faust-streaming 0.15.3 then committed one offset
per commit interval, and committed past the dropped message; the kill -9 scale-out test showed
both.  These tests set the bookkeeping as the survivor had it and check what is committed and
admitted; the scale-out test runs the whole thing against the broker.
"""
from __future__ import annotations

import asyncio

import faust
import pytest
from faust.types import TP

from qrisk.faust_app import REDELIVER_AFTER_S, App, Consumer, InOrder
from qrisk.topics import KafkaSettings
from qrisk.worker import create_app

# what the scale-out test's survivor held for a taken-over ingress partition: each offset twice
TWICE = [208, 209, 209, 210, 210, 211, 211, 212, 212]


@pytest.fixture(autouse=True)
def _close_loops():
    # Faust apps made here share the default event loop; close it rather than leave it to the collector
    yield
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:  # asyncio.run() leaves none set
        loop = None
    if loop is not None and not loop.is_running() and not loop.is_closed():
        loop.close()
    asyncio.set_event_loop(asyncio.new_event_loop())


def _consumer(app: faust.App, committed: int, acked: list[int], handed: list[int] | None = None):
    consumer = app.consumer
    tp = TP("t.ingress.lab", 0)
    consumer._committed_offset[tp] = committed
    consumer._acked[tp].extend(acked)
    consumer._acked_index[tp].update(acked)
    if handed is not None:
        consumer.handed[tp].update(handed)
    return consumer, tp


def test_offsets_acknowledged_twice_are_committed_in_one_go() -> None:
    consumer, tp = _consumer(App("qrisk-test-dedupe", broker="kafka://127.0.0.1:1", store="memory://"), 208, TWICE)
    assert isinstance(consumer, Consumer)
    assert consumer._new_offset(tp) == 213
    assert consumer._acked[tp] == []


def test_a_gap_still_holds_the_commit_back() -> None:
    # 210 not yet acknowledged: the commit stops before it
    consumer, tp = _consumer(App("qrisk-test-gap", broker="kafka://127.0.0.1:1", store="memory://"), 208, [208, 209, 209, 211, 211, 212])
    assert consumer._new_offset(tp) == 210
    assert consumer._acked[tp] == [211, 212]


def test_plain_faust_commits_one_offset_at_a_time() -> None:
    # why the fix exists; if an upgrade makes this fail, faust has fixed it itself
    consumer, tp = _consumer(faust.App("qrisk-test-plain", broker="kafka://127.0.0.1:1", store="memory://"), 208, TWICE)
    assert not isinstance(consumer, Consumer)
    assert consumer._new_offset(tp) == 210


def test_the_worker_uses_the_fixed_consumer() -> None:
    app = create_app(KafkaSettings(kafka_bootstrap="127.0.0.1:1", worker_web_port=0))
    assert isinstance(app.consumer, Consumer)


def test_an_offset_a_stream_got_but_never_processed_holds_the_commit_and_comes_again() -> None:
    # the survivor's log partition: 119 reached the fold's stream, which dropped it (flow control
    # off during the rebalance); 120 and on were folded.  Plain Faust committed 122 here.
    consumer, tp = _consumer(App("qrisk-test-held", broker="kafka://127.0.0.1:1", store="memory://"), 119,
                             [120, 121], handed=[119, 120, 121])
    sought: list[tuple[TP, int]] = []

    async def record_seek(partition: TP, offset: int) -> None:  # stand-in for the broker round trip
        sought.append((partition, offset))

    consumer.seek = record_seek
    assert consumer._new_offset(tp) is None
    assert consumer._new_offset(tp) is None
    assert sought == []
    t0 = consumer.head_missing[tp][1]
    consumer._hold(tp, 119, now=t0 + REDELIVER_AFTER_S)
    consumer.loop.run_until_complete(asyncio.sleep(0))
    assert sought == [(tp, 119)]
    # redelivered and folded: the commit goes on, and what it passed is forgotten
    consumer._acked[tp].append(119)
    assert consumer._new_offset(tp) == 122
    assert consumer.handed[tp] == set()
    assert tp not in consumer.head_missing


def test_an_offset_never_handed_over_is_passed_as_faust_does() -> None:
    # 119 is not there (deleted by retention, say): nothing to wait for
    consumer, tp = _consumer(App("qrisk-test-absent", broker="kafka://127.0.0.1:1", store="memory://"), 119,
                             [120, 121], handed=[120, 121])
    assert consumer._new_offset(tp) == 122


class _Offsets:
    """What InOrder reads of the consumer: committed offsets and the offsets handed to the streams."""

    def __init__(self, committed: int | None, handed: list[int], sought: bool = True) -> None:
        self._committed_offset = {TP_LOG: committed}
        self.handed = {TP_LOG: set(handed)}
        # Faust sought the partition to its committed offset (``Consumer.perform_seek``)
        self.sought = {TP_LOG: committed} if sought else {}


TP_LOG = TP("t.events", 2)


def test_messages_in_order_are_all_admitted() -> None:
    order = InOrder(_Offsets(10, list(range(10, 14))))
    assert [order.admit(TP_LOG, o) for o in (10, 11, 12, 13)] == [True] * 4
    assert order.take_seeks() == []


def test_a_message_the_stream_dropped_stops_its_partition_until_it_comes_again() -> None:
    # what the scale-out test's survivor saw: 230 reached the fold's stream and was dropped there
    offsets = _Offsets(228, list(range(228, 236)))
    offsets._committed_offset[TP("t.events", 3)] = offsets.sought[TP("t.events", 3)] = 7
    order = InOrder(offsets)
    assert order.admit(TP_LOG, 228) and order.admit(TP_LOG, 229)
    assert not order.admit(TP_LOG, 231)
    assert order.take_seeks() == [(TP_LOG, 230)]
    assert not order.admit(TP_LOG, 232)  # still before the seek's messages
    assert order.admit(TP("t.events", 3), 7)  # other partitions go on
    assert [order.admit(TP_LOG, o) for o in (230, 231, 232, 233)] == [True] * 4
    assert order.take_seeks() == []


def test_a_hole_at_the_committed_offset_is_seen_too() -> None:
    order = InOrder(_Offsets(228, [228, 229, 230]))
    assert not order.admit(TP_LOG, 229)
    assert order.take_seeks() == [(TP_LOG, 228)]


def test_a_seek_that_brings_nothing_is_made_again() -> None:
    # the scale-out test once sought back and got nothing: the consumer went on handing over what
    # it had fetched before, which moved its read offset past the hole again
    order = InOrder(_Offsets(228, [228, 229]), retry_after_s=3.0)
    assert not order.admit(TP_LOG, 229, now=100.0)
    assert order.take_seeks() == [(TP_LOG, 228)]
    assert not order.admit(TP_LOG, 229, now=101.0)
    assert order.due(now=102.0) == []
    assert order.due(now=103.5) == [(TP_LOG, 228)]
    assert order.due(now=104.0) == []  # the next one three seconds later
    assert order.admit(TP_LOG, 228) and order.admit(TP_LOG, 229)
    assert order.due(now=200.0) == []


def test_offsets_never_handed_over_are_a_hole_too() -> None:
    # F3: the consumer skipped 229-233 (read past them before a seek); the agents' topics have no
    # legitimate holes, so 234 is not taken past the committed offset 228 (it used to be)
    order = InOrder(_Offsets(228, [234, 235]))
    assert not order.admit(TP_LOG, 234, now=100.0) and not order.admit(TP_LOG, 235, now=100.0)
    assert order.take_seeks() == [(TP_LOG, 228)]
    assert [order.admit(TP_LOG, o) for o in range(228, 236)] == [True] * 8


def test_records_gone_by_retention_are_accepted_once_known() -> None:
    # 228-233 deleted by retention: the worker's timer finds the first record is 234
    order = InOrder(_Offsets(228, [234, 235]), retry_after_s=3.0)
    assert not order.admit(TP_LOG, 234, now=100.0)
    assert order.due(now=104.0) == [(TP_LOG, 228)]
    order.accept_from(TP_LOG, 234)
    assert order.admit(TP_LOG, 234) and order.admit(TP_LOG, 235)
    assert order.due(now=200.0) == []


def test_after_an_assignment_only_the_committed_offset_comes_first() -> None:
    # F2 (run ch03b7cc, C1-W07): after a rebalance the first offset handed over was past the
    # committed one, with nothing recorded as handed before it; it was admitted, and the
    # enterprise's events reached the log out of order.  Now the committed offset comes first.
    offsets = _Offsets(165, [171])
    order = InOrder(offsets)
    assert not order.admit(TP_LOG, 171)
    assert order.take_seeks() == [(TP_LOG, 165)]
    assert [order.admit(TP_LOG, o) for o in range(165, 172)] == [True] * 7


def test_an_offset_after_the_next_one_is_refused_and_sought_back() -> None:
    order = InOrder(_Offsets(10, []))
    assert order.admit(TP_LOG, 10) and order.admit(TP_LOG, 11)
    assert not order.admit(TP_LOG, 13)  # 12 skipped by the consumer, never handed over
    assert order.take_seeks() == [(TP_LOG, 12)]
    assert not order.admit(TP_LOG, 11) and not order.admit(TP_LOG, 14)  # nothing but 12 meanwhile
    assert [order.admit(TP_LOG, o) for o in (12, 13, 14)] == [True] * 3


def test_a_redelivery_of_what_was_admitted_is_admitted_and_what_is_committed_is_not() -> None:
    offsets = _Offsets(10, [])
    order = InOrder(offsets)
    assert [order.admit(TP_LOG, o) for o in (10, 11, 12)] == [True] * 3
    assert order.admit(TP_LOG, 11) and order.admit(TP_LOG, 12)  # a seek back: folded again, skipped by event id
    assert not order.admit(TP_LOG, 9)  # below the committed offset: done with
    assert order.take_seeks() == []
    assert order.admit(TP_LOG, 13)


def test_nothing_is_admitted_before_the_seek_to_the_committed_offset() -> None:
    # messages of a partition just assigned can reach a stream before Faust's perform_seek; that
    # seek brings them again, so they wait for it (no seek of their own)
    offsets = _Offsets(None, [40, 41], sought=False)
    order = InOrder(offsets)
    assert not order.admit(TP_LOG, 40) and not order.admit(TP_LOG, 41)
    assert order.take_seeks() == []
    offsets._committed_offset[TP_LOG] = offsets.sought[TP_LOG] = 38
    assert not order.admit(TP_LOG, 40)
    assert order.take_seeks() == [(TP_LOG, 38)]
    assert [order.admit(TP_LOG, o) for o in (38, 39, 40, 41)] == [True] * 4


def test_a_copy_handed_over_again_is_admitted_and_the_order_resets_on_revocation() -> None:
    offsets = _Offsets(None, [0, 1, 2])
    order = InOrder(offsets)
    assert order.admit(TP_LOG, 0) and order.admit(TP_LOG, 1) and order.admit(TP_LOG, 2)
    assert order.admit(TP_LOG, 0)  # the seek after a rebalance hands them over again
    order.forget({TP_LOG})
    offsets._committed_offset[TP_LOG] = 5
    offsets.handed[TP_LOG] = {5, 6}
    assert not order.admit(TP_LOG, 6)
    assert order.take_seeks() == [(TP_LOG, 5)]


def test_right_after_a_rebalance_a_hole_is_seen_before_the_committed_offset_is_known() -> None:
    # the scale-out test once: 147 and 148 handed over and dropped while the committed offset was
    # still being fetched, 149 and on folded, the commit then stuck at 147 for good (here: a
    # partition the group never committed on, read from its start)
    order = InOrder(_Offsets(None, [147, 148, 149, 150]))
    assert not order.admit(TP_LOG, 149)
    assert order.take_seeks() == [(TP_LOG, 147)]
    assert [order.admit(TP_LOG, o) for o in (147, 148, 149, 150)] == [True] * 4


def test_the_commit_holds_before_several_missing_offsets_too() -> None:
    consumer, tp = _consumer(App("qrisk-test-held2", broker="kafka://127.0.0.1:1", store="memory://"), 147,
                             [149, 150], handed=[147, 148, 149, 150])
    assert consumer._new_offset(tp) is None
    assert consumer.head_missing[tp][0] == 147


def test_the_worker_fetches_wait_for_data() -> None:
    app = create_app(KafkaSettings(kafka_bootstrap="127.0.0.1:1", worker_web_port=0, worker_fetch_min_bytes=65536,
                                   worker_fetch_max_wait_ms=10))

    async def build():
        consumer = app.consumer._thread._create_worker_consumer(app.consumer.transport)
        try:
            return consumer._fetch_min_bytes, consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()

    assert app.consumer.loop.run_until_complete(build()) == (65536, 10)


# ---------------------------------------------------------------- delivery without wait_first's tasks


class _Flow:
    """What ``deliver`` uses of the consumer: its flow-control event and mode's real ``wait_first``."""

    def __init__(self) -> None:
        from mode import Service

        self.service = Service()
        self.suspend_flow = asyncio.Event()
        self.races = 0

    async def wait_first(self, *coros, timeout=None):
        self.races += 1
        return await self.service.wait_first(*coros, timeout=timeout)


def test_a_delivery_that_completes_at_once_takes_no_race() -> None:
    from qrisk.faust_app import deliver

    async def main():
        flow, got = _Flow(), []

        async def callback(message):
            got.append(message)

        tasks = len(asyncio.all_tasks())
        assert await deliver(flow, callback, "m1") is True
        assert got == ["m1"] and flow.races == 0 and len(asyncio.all_tasks()) == tasks

    asyncio.run(main())


def test_a_delivery_that_waits_is_raced_and_completes() -> None:
    from qrisk.faust_app import deliver

    async def main():
        flow, queue = _Flow(), asyncio.Queue(maxsize=1)
        queue.put_nowait("earlier")

        async def callback(message):
            await queue.put(message)  # full: waits for room
            return message

        asyncio.get_running_loop().call_later(0.05, queue.get_nowait)
        assert await asyncio.wait_for(deliver(flow, callback, "m2"), 5) is True
        assert flow.races == 1 and queue.get_nowait() == "m2"

    asyncio.run(main())


def test_a_delivery_still_waiting_when_flow_is_suspended_is_abandoned_as_faust_does() -> None:
    from qrisk.faust_app import deliver

    async def main():
        flow, queue = _Flow(), asyncio.Queue(maxsize=1)
        queue.put_nowait("earlier")
        cancelled = []

        async def callback(message):
            try:
                await queue.put(message)
            except asyncio.CancelledError:
                cancelled.append(message)
                raise

        asyncio.get_running_loop().call_later(0.05, flow.suspend_flow.set)
        # not delivered: the drain loop leaves its read offset where it was (F3)
        assert await asyncio.wait_for(deliver(flow, callback, "m3"), 5) is False
        await asyncio.sleep(0)
        assert cancelled == ["m3"] and queue.qsize() == 1 and queue.get_nowait() == "earlier"

    asyncio.run(main())


def test_with_flow_suspended_a_delivery_goes_through_faust_s_race() -> None:
    from qrisk.faust_app import deliver

    async def main():
        flow, got = _Flow(), []
        flow.suspend_flow.set()

        async def callback(message):
            got.append(message)

        await deliver(flow, callback, "m4")
        assert flow.races == 1

    asyncio.run(main())


@pytest.mark.parametrize("waits", [False, True])
def test_an_error_in_a_delivery_reaches_the_drain_loop(waits: bool) -> None:
    from qrisk.faust_app import deliver

    async def main():
        flow = _Flow()

        async def callback(message):
            if waits:
                await asyncio.sleep(0.01)
            raise RuntimeError(f"bad {message}")

        with pytest.raises(RuntimeError, match="bad m5"):
            await deliver(flow, callback, "m5")
        assert flow.races == (1 if waits else 0)

    asyncio.run(main())


# ---------------------------------------------------------------- a partition that stopped moving


class _Partitions:
    """What the watchdog reads of the consumer: committed offsets, high-water marks, last hand-overs."""

    def __init__(self) -> None:
        self._committed_offset: dict = {}
        self.high: dict = {}
        self.last_handed: dict = {}

    def highwater(self, tp):
        return self.high.get(tp)


def test_a_partition_with_messages_left_that_nothing_moves_is_read_again_from_its_committed_offset() -> None:
    from qrisk.faust_app import Watchdog

    tp = TP("t.ingress.lab", 0)
    c = _Partitions()
    c._committed_offset[tp], c.high[tp], c.last_handed[tp] = 231, 427, 100.0
    dog = Watchdog(c, after_s=10.0)
    assert dog.stuck([tp], now=101.0) == []  # first look
    assert dog.stuck([tp], now=105.0) == []  # not long enough
    assert dog.stuck([tp], now=111.5) == [(tp, 231, 427)]
    assert dog.stuck([tp], now=112.0) == []  # named once, then again only after another wait
    assert dog.stuck([tp], now=121.6) == [(tp, 231, 427)]


def test_a_partition_that_commits_gets_messages_or_has_none_left_is_not_stuck() -> None:
    from qrisk.faust_app import Watchdog

    moving, fed, done, unknown = (TP("t.events", p) for p in range(4))
    c = _Partitions()
    for tp in (moving, fed, done, unknown):
        c._committed_offset[tp], c.high[tp], c.last_handed[tp] = 10, 50, 0.0
    c.high[done] = 10
    c.high[unknown] = None
    dog = Watchdog(c, after_s=10.0)
    tps = [moving, fed, done, unknown]
    assert dog.stuck(tps, now=1.0) == []
    for t in range(2, 40):
        c._committed_offset[moving] = 10 + t  # commits go on
        c.last_handed[fed] = float(t)  # messages reach the agents (a long batch: no commit yet)
        assert dog.stuck(tps, now=float(t)) == []
    dog.forget([fed])
    assert fed not in dog.progress



def test_a_partition_the_group_never_committed_on_is_read_again_from_its_start() -> None:
    """A worker killed before its first commit leaves the partition without a committed offset; its
    successor can stick on it as on any other, and reads it again from offset 0."""
    from qrisk.faust_app import Watchdog

    never, empty = TP("t.events", 2), TP("t.events", 3)
    c = _Partitions()
    c._committed_offset[never], c.high[never] = None, 231
    c._committed_offset[empty], c.high[empty] = None, 0
    dog = Watchdog(c, after_s=10.0)
    assert dog.stuck([never, empty], now=1.0) == []
    assert dog.stuck([never, empty], now=12.0) == [(never, 0, 231)]


def test_a_restore_partition_without_a_record_for_the_stall_time_is_named() -> None:
    """``stalled_restores``: records left and none for ``after_s`` since the restore began or the
    last one came; a partition done, or one whose records keep coming, is not named."""
    from qrisk.faust_app import stalled_restores

    silent, slow, done, fed = (TP("w-files-changelog", p) for p in range(4))
    remaining = {silent: 50, slow: 7, done: 0, fed: 900}
    received = {slow: 101.0, done: 100.5, fed: 129.0}
    assert stalled_restores(remaining, received, started_at=100.0, now=129.9, after_s=30.0) == []
    assert stalled_restores(remaining, received, started_at=100.0, now=130.0, after_s=30.0) == [silent]
    assert stalled_restores(remaining, received, started_at=100.0, now=131.0, after_s=30.0) == [silent, slow]
    # a restore begun again (a new rebalance) counts from its own start, not from a record of the one before
    assert stalled_restores(remaining, {slow: 90.0}, started_at=120.0, now=140.0, after_s=30.0) == []
