"""The worker's Faust app: faust-streaming 0.15.3 with fixes to how its consumer commits and reads
(no gaps), to the order its agents take messages in, and fetches that wait a little for data.

Both showed in the kill -9 scale-out test (``tests/test_kafka_scaleout.py``), around the
rebalance that hands the dead worker's partitions to the survivor.

**An offset acknowledged twice stalled the commit.**  Faust commits the end of the first run of
consecutive acknowledged offsets (``Consumer._new_offset``), and a run stops at a repeated
number.  After a rebalance the same offset is acknowledged twice: the consumer hands a stream the
messages it fetches while ``perform_seek`` waits for the committed offsets, then seeks back and
hands them over again (and a partition kept through the rebalance is re-read from its committed
offset).  Both copies are processed (harmless here: the fold skips an event id it has seen) and
both acknowledged, so with every offset listed twice the commit advanced one offset per commit
interval: the survivor folded a taken-over partition in seconds, then took a minute or more to
commit it.  The commit below reads the acknowledged offsets as a set.

**A message that reached a stream but was never processed got committed.**  A stream drops a
message it receives while flow control is off or from an older generation (``Stream._py_aiter``:
"Skipping message …"), expecting the next seek to bring it again; it is never acknowledged.  But
Faust commits past a missing offset when it is the only one missing at the head (``min(acked) -
committed > 1`` lets exactly one through, there because its read offsets mix "next to read" and
"last read").  So the survivor once committed past an event it never folded, and that
enterprise's credit file lacked it (a complaint left unverified).  Below, an offset at the head
that was handed to a stream and not acknowledged holds the commit back, and if it stays missing
for ``REDELIVER_AFTER_S`` the partition is sought back to it, so it comes again (what comes after
it again too: skipped by event id).  An offset never handed over is not passed over either:
``InOrder`` admits only the next offset of a partition, so nothing after such a hole is
acknowledged, and it seeks back to it.

**A record the consumer skipped was marked acknowledged.**  Faust's drain loop marks every
offset between a partition's read offset and the message it hands over as acknowledged (a "gap",
for compacted or transactional topics), and advances the read offset even when the delivery was
abandoned because flow control was suspended.  On the ingress topics and the log (neither
compacted nor transactional) such a gap is a real record skipped around a rebalance: a churn run
lost 63 ingress records that way, committed past and never published to the log, with the lag
saying 0.  ``_drain_messages`` below adds no gap, and moves the read offset only past a message
it delivered.  Records deleted by retention are accepted as gone once the partition's first
offset is past them (the worker's ``_seek_again`` timer, ``InOrder.accept_from``).

**Order after an assignment.**  ``InOrder`` took the first message of a partition after an
assignment as its start, checked only against the offsets recorded as handed over (cleared at the
revocation): a message past the committed offset was admitted, and an enterprise's events reached
the log out of order (a churn run saw it in 5 of 7 runs).  It now starts at the committed offset,
once Faust's ``perform_seek`` has sought the partition there (``Consumer.sought``).

**Fetches.**  Faust builds its consumer with ``fetch_max_wait_ms=1500`` and the default
``fetch_min_bytes=1``: the broker answers a fetch as soon as one message is there, so at a steady
1,000 events/s the worker fetched (and the broker served) about once per producer request, each
answer a handful of messages carried across Faust's consumer thread.  Waiting for 64 kB or 10 ms
(whichever comes first; under load the bytes are there at once) cut the worker's CPU per event at
that rate by 10-20 % and the broker's by 5-25 %, for ~10 ms more latency per hop
(``bench/bench_kafka.py``; ``QRISK_WORKER_FETCH_MIN_BYTES``, ``QRISK_WORKER_FETCH_MAX_WAIT_MS``).

**Four tasks per message.**  The consumer's drain loop hands each message to the streams with
``wait_first(callback(message), suspend_flow.wait())``: the delivery is abandoned if flow control
is suspended (a rebalance) before it completes.  ``wait_first`` makes that a race of four tasks
(the two, plus the service's stopped and crashed events) and cancels the losers: ~33 µs a
message, and every event is two messages (ingress and log).  Nearly always the delivery completes
at once (the stream's queue has room), so ``_drain_messages`` below runs it directly and races it
against the suspension only when it has to wait (``deliver``): the same outcome, without the tasks.
It still gives the event loop one turn after each message.  Without that turn, the scale-out test
failed about one run in six: at a rebalance the survivor went on handing over messages it had
fetched before its seek to the committed offsets, which moved its read offsets past the messages
the seek brought again, so it dropped those and a taken-over ingress partition never moved on.
Plain Faust has the same race, only narrower; the ``Watchdog`` below catches a partition stuck
like that (or any other way) and reads it again from its committed offset.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any, AsyncIterator, Awaitable, Callable, Generator, Optional, cast

import faust
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP

log = logging.getLogger("qrisk.worker")

REDELIVER_AFTER_S = 3.0
"""How long an offset handed to a stream may stay unacknowledged at the head of the commit before
the partition is sought back to it (our agents acknowledge in order, within about a second)."""


class ConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        app = self.app
        # attributes AIOKafkaConsumer.start() builds its Fetcher from (aiokafka 0.8 to 0.14)
        if hasattr(consumer, "_fetch_min_bytes") and hasattr(consumer, "_fetch_max_wait_ms"):
            consumer._fetch_min_bytes = getattr(app, "fetch_min_bytes", consumer._fetch_min_bytes)
            consumer._fetch_max_wait_ms = getattr(app, "fetch_max_wait_ms", consumer._fetch_max_wait_ms)
        else:
            log.warning("worker: this aiokafka's consumer has no fetch settings to adjust; Faust's apply")
        return consumer


class _Rest:
    """The rest of a coroutine that was started by hand and is waiting on ``pending``: awaitable
    (so it can run as a task) with what the task sends or throws passed on to it."""

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Any, pending: Any) -> None:
        self.coro, self.pending = coro, pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self.coro, self.pending
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - cancellation included: it reaches the coroutine
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def deliver(consumer: Any, callback: Callable[[Any], Awaitable[None]], message: Any) -> bool:
    """``callback(message)`` as Faust's drain loop runs it (abandoned if flow control is suspended
    before it completes), without ``wait_first``'s tasks when it completes at once.  Whether it
    completed: an abandoned message was not read."""
    coro = cast(Any, callback(message))
    if not consumer.suspend_flow.is_set():
        try:
            pending = coro.send(None)
        except StopIteration:
            return True
        coro = _Rest(coro, pending)  # it has to wait (a full queue): race it as Faust does
    result = await consumer.wait_first(coro, consumer.suspend_flow.wait())
    return coro in result.done


class Consumer(aiokafka_driver.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # per partition of a committed topic, the offsets handed to the streams and not yet committed
        self.handed: defaultdict[TP, set[int]] = defaultdict(set)
        self.head_missing: dict[TP, tuple[int, float]] = {}  # offset held back at the head, since when
        self.last_handed: dict[TP, float] = {}  # when a message of the partition last reached the streams
        self.sought: dict[TP, Optional[int]] = {}  # assigned partitions sought to their committed offset (None: none)
        inner = self.callback
        handed = self.handed
        last_handed = self.last_handed
        acking = self.app.topics.acks_enabled_for  # not the changelogs: nothing commits those
        monotonic = time.monotonic

        async def callback(message: Any) -> None:
            if acking(message.topic):
                handed[message.tp].add(message.offset)
                last_handed[message.tp] = monotonic()
            await inner(message)

        self.callback = callback

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - exercised against the real broker
        # faust-streaming 0.15.3's loop, with one change: ``deliver`` instead of
        # ``await self.wait_first(callback(message), self.suspend_flow.wait())``
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        flag_consumer_fetching = faust_consumer.CONSUMER_FETCHING
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(flag_consumer_fetching)
                ait = cast(AsyncIterator, getmany(timeout=1.0))
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            # No ``_add_gap`` here (Faust marks the offsets between the read offset
                            # and this message acknowledged): the agents' topics are neither
                            # compacted nor transactional, so such a "gap" is a real record this
                            # consumer skipped (a delivery abandoned at a rebalance, a fetch from
                            # before a seek), and marking it acknowledged let a commit pass events
                            # that never reached the log.  ``InOrder`` sees the hole and seeks back.
                            if commit_every is not None:
                                if self._n_acked >= commit_every:
                                    self._n_acked = 0
                                    await self.commit()
                            if await deliver(self, callback, message):
                                set_read_offset(tp, offset)
                            # what else is due runs before the next message, as it did while
                            # each delivery took a few turns of the loop: a rebalance stops
                            # the flow and seeks between two messages, not a hundred later
                            await sleep(0)
                    unset_flag(flag_consumer_fetching)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(flag_consumer_fetching)

    async def perform_seek(self) -> None:
        await super().perform_seek()
        # the partitions whose committed offset is now known (or known to be none): ``InOrder``
        # takes nothing of a partition before, as Faust seeks it back here anyway
        committed = self._committed_offset
        for tp in self.assignment():
            self.sought[tp] = committed.get(tp)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self.sought.pop(tp, None)
            self.handed.pop(tp, None)
            self.last_handed.pop(tp, None)
            self.head_missing.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    def _new_offset(self, tp: TP) -> Optional[int]:
        acked = self._acked[tp]
        if len(acked) > 1:
            acked[:] = sorted(set(acked))
        committed = self._committed_offset[tp]
        if acked and committed is not None and acked[0] > committed:
            # offsets before the first acknowledged one that reached a stream and were not acknowledged
            missing = min((o for o in self.handed[tp] if committed <= o < acked[0]), default=None)
            if missing is not None:
                self._hold(tp, missing)
                return None
        self.head_missing.pop(tp, None)
        offset = super()._new_offset(tp)
        if offset is not None:
            handed = self.handed[tp]
            handed.difference_update([o for o in handed if o < offset])
        return offset

    def _hold(self, tp: TP, offset: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        held = self.head_missing.get(tp)
        if held is None or held[0] != offset:
            self.head_missing[tp] = (offset, now)
            return
        if now - held[1] >= REDELIVER_AFTER_S:
            log.warning("commit: %s/%s offset %s reached a stream but was never processed; seeking back to it",
                        tp.topic, tp.partition, offset)
            self.head_missing[tp] = (offset, now)  # again only after another wait
            self.loop.create_task(self.seek(tp, offset))


class InOrder:
    """One agent's messages, per partition, in offset order and without a hole.

    A stream drops a message it gets while flow control is off (see the module docstring) and
    goes on with the next ones, and the consumer can skip records (a delivery abandoned at a
    rebalance, a fetch from before a seek): folded like that, an enterprise's events would be
    applied, and published to the log, out of order.  So, per partition, only the next offset is
    admitted: the committed offset first (known once Faust has sought the partition to it after
    the assignment; before that nothing is admitted, as that seek brings every message again),
    then each one after the last admitted.  An offset admitted before is a redelivery and admitted
    again; one below the committed offset is done with and refused.  Anything past the next offset
    is refused, the agent keeps it unacknowledged (no commit passes it), and the partition is
    sought back to the next offset (``take_seeks``); until that comes, the partition's other
    messages are refused too.  A seek can come to nothing (the consumer goes on handing over what
    it had fetched before it), so ``due`` names the seeks to make again, for the agent's timer,
    which also accepts a hole below the partition's first record (deleted by retention:
    ``accept_from``).  A partition the group never committed on starts with its first message,
    unless an earlier offset reached the streams and was not admitted.
    """

    def __init__(self, consumer: Any, retry_after_s: float = REDELIVER_AFTER_S) -> None:
        self.consumer = consumer
        self.retry_after_s = retry_after_s
        self.last: dict[TP, int] = {}  # the last offset admitted, per partition
        self.admitted: defaultdict[TP, set[int]] = defaultdict(set)  # (those not yet committed)
        self.awaiting: dict[TP, tuple[int, float]] = {}  # the offset sought back to, since when
        self._seeks: list[tuple[TP, int]] = []

    def _await(self, tp: TP, offset: int, now: float | None, why: str) -> bool:
        self.awaiting[tp] = (offset, time.monotonic() if now is None else now)
        self._seeks.append((tp, offset))
        log.warning("%s/%s: %s; reading the partition again from offset %s", tp.topic, tp.partition, why, offset)
        return False

    def admit(self, tp: TP, offset: int, now: float | None = None) -> bool:
        waiting = self.awaiting.get(tp)
        if waiting is not None and offset != waiting[0]:
            return False
        last = self.last.get(tp)
        admitted = self.admitted[tp]
        if last is None:
            sought = self.consumer.sought
            if tp not in sought:
                return False  # before the seek to the committed offset: it comes again after it
            committed = self.consumer._committed_offset.get(tp)
            if committed is None:
                committed = sought[tp]
            if committed is not None:
                last = self.last[tp] = committed - 1
            else:
                # the group never committed here: the partition is read from its first record;
                # was anything before this one handed to the stream and not admitted?
                hole = min((o for o in self.consumer.handed.get(tp, ()) if o < offset and o not in admitted), default=None)
                if hole is not None:
                    return self._await(tp, hole, now, f"offset {hole} reached the agent's stream but not the agent")
        if last is not None and offset != last + 1:
            if offset <= last:
                # a redelivery (a seek back, or the seek after a rebalance) of what was admitted;
                # below the committed offset, what is done with (a copy fetched before a seek)
                return offset in admitted
            return self._await(tp, last + 1, now, f"offset {offset} came before {last + 1}")
        self.awaiting.pop(tp, None)
        self.last[tp] = offset
        admitted.add(offset)
        if len(admitted) > 20_000:  # what is committed is done with
            committed = self.consumer._committed_offset.get(tp)
            if committed is not None:
                admitted.difference_update([o for o in admitted if o < committed])
        return True

    def accept_from(self, tp: TP, offset: int) -> None:
        """The partition's records before ``offset`` are gone (retention): it goes on from there."""
        self.awaiting.pop(tp, None)
        self.last[tp] = offset - 1

    def due(self, now: float | None = None) -> list[tuple[TP, int]]:
        """Seeks made ``retry_after_s`` ago whose offset has not come yet: to be made again."""
        now = time.monotonic() if now is None else now
        again = [(tp, offset) for tp, (offset, since) in self.awaiting.items() if now - since >= self.retry_after_s]
        for tp, offset in again:
            self.awaiting[tp] = (offset, now)
        return again

    def take_seeks(self) -> list[tuple[TP, int]]:
        seeks, self._seeks = self._seeks, []
        return seeks

    def forget(self, tps: Any) -> None:
        """Partitions revoked: their order starts again from the committed offset."""
        for tp in tps:
            self.last.pop(tp, None)
            self.admitted.pop(tp, None)
            self.awaiting.pop(tp, None)


STUCK_AFTER_S = 10.0
"""How long a partition with messages left to read may go without any reaching the agents and
without a commit before the ``Watchdog`` reads it again from its committed offset."""


class Watchdog:
    """Partitions that stopped moving with messages still to read, to be read again from their
    committed offset.

    A partition is stuck when its high-water mark is past its committed offset, the committed
    offset has not moved for ``after_s``, and no message of it reached the streams in that time.
    The way this happens that was seen (``_drain_messages``): around a rebalance the consumer
    hands over messages it fetched before a seek, which moves its read offset past what the seek
    brings again, and it then drops every message of the partition as already read: no error, no
    hole for ``InOrder`` to see (nothing was handed over), and the partition never moves again.
    A seek to the committed offset resets the read offset.  Anything else that stops a partition
    (a lost seek, a stream that stopped taking) is caught the same way; a seek that was not needed
    costs only a redelivery, which the fold skips by event id.
    """

    def __init__(self, consumer: Any, after_s: float = STUCK_AFTER_S) -> None:
        self.consumer = consumer
        self.after_s = after_s
        self.progress: dict[TP, tuple[Optional[int], float]] = {}  # committed offset last seen, since when

    def stuck(self, tps: Any, now: float | None = None) -> list[tuple[TP, int, int]]:
        """(partition, committed offset, high-water mark) of each of ``tps`` that is stuck; each
        is named again only after another ``after_s``."""
        consumer = self.consumer
        now = time.monotonic() if now is None else now
        out = []
        for tp in tps:
            committed = consumer._committed_offset.get(tp)
            seen = self.progress.get(tp)
            if seen is None or seen[0] != committed:
                self.progress[tp] = (committed, now)
                continue
            high = consumer.highwater(tp)
            # a partition the group never committed on reads from its start (auto_offset_reset earliest): a
            # worker killed before its first commit hands it over so, and it can stick the same way
            base = 0 if committed is None else committed
            if high is None or high <= base:
                self.progress[tp] = (committed, now)  # nothing to read (or not known yet)
                continue
            if now - seen[1] >= self.after_s and now - consumer.last_handed.get(tp, float("-inf")) >= self.after_s:
                out.append((tp, base, high))
                self.progress[tp] = (committed, now)
        return out

    def forget(self, tps: Any) -> None:
        for tp in tps:
            self.progress.pop(tp, None)


RESTORE_STALL_S = 30.0
"""How long a table partition Faust is restoring may go without a record while records remain to
read before the worker finishes it itself (``App._watch_restores``).  A restore reads record after
record as fast as the broker serves them: half a minute with none is not a slow restore."""


def stalled_restores(remaining: Any, received_at: Any, started_at: float, now: float,
                     after_s: float = RESTORE_STALL_S) -> list[TP]:
    """The active changelog partitions of a restore (``remaining``: records still to read, by
    partition) that have had no record for ``after_s``: since the restore started (``started_at``)
    or since the last one came (``received_at``)."""
    return sorted((tp for tp, left in remaining.items()
                   if left > 0 and now - max(started_at, received_at.get(tp, started_at)) >= after_s),
                  key=lambda tp: (tp.topic, tp.partition))


class Transport(aiokafka_driver.Transport):
    Consumer = Consumer


class App(faust.App):
    """``faust.App`` whose consumer is the one above (faust-streaming is pinned: see pyproject)."""

    def __init__(self, id: str, *, fetch_min_bytes: int = 1, fetch_max_wait_ms: int = 1500,
                 restore_stall_s: float = RESTORE_STALL_S, **options: Any) -> None:
        # before Faust's __init__: the transport (and so the consumer) may be built from inside it
        self.fetch_min_bytes = fetch_min_bytes
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.restore_stall_s = restore_stall_s
        # changelog partitions whose restore ``_watch_restores`` ended: the worker reads them itself
        # at the rebuild that follows (``qrisk.worker``), and takes them out of here then
        self.restores_forced: set[TP] = set()
        self.restores_forced_total = 0
        super().__init__(id, **options)

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)

    async def on_start(self) -> None:
        await super().on_start()
        # not an app.timer: Faust starts those only once the first restore is complete
        self.add_future(self._watch_restores())

    async def _watch_restores(self) -> None:  # pragma: no cover - exercised against the real broker
        """A restore that stopped receiving records is ended here, its partitions left to the worker.

        Faust waits for every active changelog partition to reach the high-water mark it read when
        the restore began, and for nothing else: a partition whose records stop coming (a CI run
        saw two get none for two minutes after a rebalance, while the other two restored, and the
        worker folded nothing meanwhile) holds the worker in recovery for good, with a warning
        every few seconds.  After ``restore_stall_s`` without a record, the partition is marked as
        restored to its high-water mark, so Faust's recovery completes (its idle check runs every
        5 s), and it goes to ``restores_forced``: the worker replaces that partition of its table
        with the changelog read by a consumer of its own before it folds anything of it."""
        recovery = self.tables.recovery
        while not self.should_stop:
            await asyncio.sleep(min(2.0, self.restore_stall_s / 2))
            started_at = recovery._recovery_started_at
            if not recovery.in_recovery or started_at is None:
                continue
            stalled = stalled_restores(recovery.active_remaining(), recovery._active_events_received_at, started_at,
                                       time.monotonic(), self.restore_stall_s)
            for tp in stalled:
                offset, high = recovery.active_offsets.get(tp), recovery.active_highwaters.get(tp)
                log.warning("restore: %s/%s: no record for %.0f s, at offset %s of %s (%s); ending its restore here, the "
                            "worker reads the partition itself / 分区 %s 的状态恢复 %.0f 秒未收到记录，改由 worker 自行读取",
                            tp.topic, tp.partition, self.restore_stall_s, offset, high, await self._consumer_state(tp),
                            tp.partition, self.restore_stall_s)
                recovery.active_offsets[tp] = high
                self.restores_forced.add(tp)
                self.restores_forced_total += 1

    async def _consumer_state(self, tp: TP) -> str:
        """What the consumer says of ``tp``: to tell next time why a partition's records stopped."""
        consumer = self.consumer
        try:
            position: Any = await asyncio.wait_for(consumer.position(tp), timeout=5.0)
        except Exception as exc:  # noqa: BLE001 - a diagnostic: what it could not get is said
            position = f"? ({type(exc).__name__})"
        return (f"position {position}, read offset {consumer._read_offset.get(tp)}, high-water {consumer.highwater(tp)}, "
                f"assigned {tp in consumer.assignment()}, paused {tp in consumer._paused_partitions}, "
                f"flow {'on' if consumer.flow_active else 'off'}, changelog queue {self.tables.changelog_queue.qsize()}")
