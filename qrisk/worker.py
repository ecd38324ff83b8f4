"""``qrisk worker``: the Faust app of the distributed runtime.

Two agents, both calling the same code as the embedded runtime:

* ``normalise`` reads the ingress topics, validates each record (``ingest.validate``: the same
  precise errors as the HTTP API), checks that its topic admits it (the event types and the
  ``source.kind`` of the topic's HTTP role, ``qrisk.topics.INGRESS_ROLES``: a lab's topic carries
  lab results only), stamps ``received_at`` and publishes the event to the log
  (key = enterprise_id; a clock.tick to every partition) — or the record, its reason and its
  position (topic/partition/offset and the producer's file:line) to the dead-letter topic.
* ``fold`` reads the log and calls ``processors.step.step()`` for each event on the credit file of
  its enterprise (an event this process has just validated on ingress is taken as it is, not parsed
  again; ``normalise`` pauses while too many of those wait here).  Effects go to the effects topic (with the sampling_items_in / judgements / complaints rows the sink
  writes, in the embedded pipeline's columns), the newest credit files to the compacted
  credit-files topic.

State: one ``CreditFile`` per enterprise, in a changelog-backed Faust table, event-sourced — the
table holds, per enterprise, a snapshot (``S|p|id``: version, last log offset, the event ids
applied with their content digests, the file) every ``QRISK_WORKER_SNAPSHOT_EVERY`` events and the events applied since
(``E|p|id|version``), and per log partition the last offset whose state is written (``W|p``, with
each batch).  A worker that takes over a partition rebuilds each file from its snapshot
and tail (snapshot + tail = replay), so a changelog write costs one event, not the whole file.  The
partition's first message since then, at the group's committed offset, must follow ``W|p``: a table
short of it is read again from the changelog, and a changelog short of it stops the worker
(``table_behind``, ``_check_restored``).  So is a partition whose restore the app ended because no
record of it came (``qrisk.faust_app.App._watch_restores``, ``app.restores_forced``).

Ordering and delivery, per batch of log messages (at least once, effectively once):

1. fold every event (``step``), collecting effects, dead letters and table writes;
2. hand effects and dead letters to the producer, and go on folding the next batch;
3. in batch order, a separate task waits until the broker acknowledged those effects, only then
   sends the table writes (the changelog) and waits for their acknowledgement too — itself, not
   through Faust's pre-commit flush, which can return with changelog messages unsent;
4. only then are the batch's events acknowledged, so Faust commits no offset before the effects
   and the state of its event are durable; a crash anywhere re-delivers the batch.

Redelivery is harmless: an event id already in a file is skipped, the same event on the same
state gives the same effects under the same keys (enterprise, file version, index), and a tick
is applied to a file only when the file's last applied log offset is before the tick.  A file
keeps a digest of each event's content with its id, so an id that comes again with other content
(a correction under the old id) is not skipped silently: it is a conflict, kept in dead letters
with an ``event.id_conflict`` effect, and not folded (``Fold._conflict``).  An error
in ``step`` becomes a ``processing.failed`` effect and a dead letter (as in the embedded runtime), and so
do effects too large for the effects topic (``oversized_effects``: sent, the broker refused them and the
worker stopped at every start on the same event);
an error that cannot be dead-lettered stops the process at once (``os._exit``) so that nothing is
acknowledged: Faust acknowledges an event even when an agent raises.  Faust's own commit is
patched (``qrisk.faust_app``): after a rebalance it stalled on offsets acknowledged twice, and it
committed past a message a stream had dropped.  Both agents take each partition's messages in
offset order without a hole (``InOrder``): past a dropped message they seek back to it.  A
partition with messages left that neither commits nor hands anything over for 10 s is read again
from its committed offset (``Watchdog``).

County-level state (the per-category pass-rate charts of ``CountyState.categories``) cannot live
on one partition: each step here sees an empty county, so category-scope p-chart signals are not
raised by the workers — in distributed mode the county charts are a ClickHouse query over
``judgements`` (``qrisk.store.COUNTY_MONTHLY_SQL``).
"""
from __future__ import annotations

import asyncio
import collections
import datetime as dt
import gc
import hashlib
import json
import logging
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson

from alerts.lifecycle import AlertActionError, AlertBook, AlertChange, Enterprise
from ingest.validate import from_the_future, has_duplicate_keys, json_invalid_zh
from processors._build import builder, compact, share_field_sets
from processors.credit_file import CountyState, CreditFile
from processors.ids import event_key
from processors.judgement import ItemJudgement, SumOfRatiosMember
from processors.step import FOLD_VERSION, Effect, Rules, step
from schemas.events import DOOR, REWRITTEN, Envelope, door
from schemas.upcast import DuplicateKeys, load_json, load_json_once, parse_event

from qrisk.kafka_log import LETTER_MAX_BYTES, TICK_KEY, bounded_letter_value, dead_letter_value, event_value, too_large_error
from qrisk.pipeline import (
    ALERT_COLUMNS,
    ALERT_EVENT_COLUMNS,
    COMPLAINT_TABLE_COLUMNS,
    JUDGEMENT_COLUMNS,
    OUTBOX_COLUMNS,
    SAMPLE_COLUMNS,
    DeadLetter,
    SampleRows,
    _find_sample,
    alert_rows,
    complaint_table_rows,
    complaints_changed,
    conflict_error,
    content_digest,
    policy_digest,
)
from qrisk.topics import (
    EFFECTS_MESSAGE_MAX_BYTES,
    EVENT_MAX_BYTES,
    STATE_MESSAGE_MAX_BYTES,
    VIEW_MESSAGE_MAX_BYTES,
    KafkaSettings,
    Topics,
    utc_now,
)

log = logging.getLogger("qrisk.worker")

VIEW_SLICE = 16
AHEAD_WAIT_S = 0.5  # longest the ingress agent waits, per batch, for the fold to catch up
"""Credit-file views built per step of the views timer (~1 ms each) before the agents get the loop back."""

GC_FREEZE_SECONDS = 0.25
"""How often the worker freezes what survived until then (see ``freeze_heap``)."""
GC_FULL_SECONDS = 600.0
"""How often the frozen heap is walked once more (one pause of a few hundred ms), for cycles made garbage after freezing."""
GC_THRESHOLDS = (20_000, 20, 50)
"""Allocations between young collections, …: fewer, larger passes than the default (700, 10, 10)."""

TICK_IDS_KEPT = 16
"""Clock ticks whose ids a file keeps (with digests), newest last: see ``FileState.ticks``."""

SNAPSHOT_MAX_BYTES = 8 * 1024 * 1024
"""The largest snapshot the fold writes.  A year of a busy demo enterprise is ~70 kB of file and
~10 kB of ``seen``; this leaves room for decades, and a file past it is reported, not sent (``Fold._snapshot``)."""
assert SNAPSHOT_MAX_BYTES + 64 * 1024 <= STATE_MESSAGE_MAX_BYTES  # a snapshot's key and record batch fit around it

VIEW_MAX_BYTES = VIEW_MESSAGE_MAX_BYTES - 64 * 1024
"""The largest credit-file view published (its key and record batch fit around it in the topic):
a larger one is skipped, logged and counted (``qrisk_worker_views_skipped_total``), never sent."""

EFFECTS_MAX_BYTES = EFFECTS_MESSAGE_MAX_BYTES - 64 * 1024
"""The largest effects message sent as folded (its key and record batch fit around it in the topic); a
larger one is replaced by a ``processing.failed`` one and dead-lettered (``oversized_effects``)."""

EFFECTS_RETRY_MAX_BYTES = 256 * 1024
"""What the replacement of an effects message the broker refused for its size may be: the topic's real
limit is not known then (lowered behind the worker's back, or a broker-wide one)."""

LETTER_RETRY_HEAD_BYTES = 16 * 1024
"""What a dead letter the broker refused for its size keeps of its raw bytes when sent again."""

REBALANCE_TIMEOUT_S = 20.0
"""Faust's ``broker_rebalance_timeout``: how long the group coordinator waits for every member to
rejoin a rebalance before it drops the slow ones."""
REVOKE_WAIT_S = REBALANCE_TIMEOUT_S / 2
"""How long ``on_revoked`` waits for folded batches to become durable.  It runs inside the
rebalance, before this worker rejoins, and Faust still commits and hands over its tables after it:
waiting 30 s against a 20 s rebalance timeout had the worker dropped from the group (its partitions
moved and the rebalance started over) exactly when the broker was slow.  Half the timeout leaves
the other half for Faust; what is not durable by then comes again (the fold skips it by id)."""
assert REVOKE_WAIT_S < REBALANCE_TIMEOUT_S

EXIT_UNSAFE = 70
"""Exit status when a batch could not be made durable: the process stops before acknowledging."""


def _too_large(exc: BaseException) -> bool:
    """Whether a producer's error says the message is too large (aiokafka's own check, wrapped by
    Faust in ProducerSendError, or the broker's refusal)."""
    while exc is not None:
        if type(exc).__name__ in ("MessageSizeTooLargeError", "RecordTooLargeError", "RecordListTooLargeError"):
            return True
        exc = exc.__cause__
    return False


def _die(reason: str, code: int = EXIT_UNSAFE) -> None:
    print(f"qrisk worker: stopping without acknowledging the current batch: {reason}", file=sys.stderr, flush=True)
    logging.shutdown()
    os._exit(code)


def read_state_partition(settings: Any, topic: str, partition: int, timeout_s: float = 600.0) -> list[tuple[str, bytes]]:
    """One partition of the state changelog as the broker has it now, as a table holds it: the last
    value of each key, deleted keys left out.  Read with a consumer of its own, outside Faust's
    recovery (``_check_restored``), in a thread: it blocks."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers(), client_id="qrisk-worker-state", enable_auto_commit=False,
                             auto_offset_reset="earliest", fetch_max_bytes=64 * 1024 * 1024, **settings.security())
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        state: dict[str, bytes] = {}
        deadline = time.monotonic() + timeout_s
        while consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}/{partition}: not read to its end offset {end} within {timeout_s:.0f} s")
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    key = r.key.decode("utf-8")
                    if r.value is None:
                        state.pop(key, None)
                    else:
                        state[key] = r.value
        return list(state.items())
    finally:
        consumer.close()


class GcTiming:
    """Time the cyclic collector spends, per generation, and its longest pause (for the timing log)."""

    def __init__(self) -> None:
        self._t0 = 0.0
        self.totals: collections.Counter = collections.Counter()

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        spent = time.perf_counter() - self._t0
        gen = info.get("generation", 0)
        self.totals[f"gc{gen}_s"] += spent
        self.totals[f"gc{gen}_n"] += 1
        self.totals["gc_max_s"] = max(self.totals["gc_max_s"], spent)

    def take(self) -> dict[str, float]:
        out = dict(self.totals)
        self.totals.clear()
        return out


# --------------------------------------------------------------------------- table keys


def snapshot_key(partition: int, enterprise_id: str) -> str:
    return f"S|{partition}|{enterprise_id}"


def entry_key(partition: int, enterprise_id: str, version: int) -> str:
    return f"E|{partition}|{enterprise_id}|{version:012d}"


def folded_key(partition: int) -> str:
    return f"W|{partition}"


def table_behind(folded_to: int | None, first: int) -> bool:
    """Whether the table restored for a log partition lacks state its group's commit covers.

    ``folded_to``: the last log offset the table says was folded (``W|p``, written with every batch's
    state, so acknowledged, and so committed, only after it); ``first``: the first message given to
    the fold after the partition was loaded, at the group's committed offset.  Every message before
    that was folded by someone and its state made durable first, so a complete table says at least
    ``first - 1``.  A table without the mark (written before it was kept) cannot be told."""
    return folded_to is not None and first > folded_to + 1


_PARTITIONS: dict[tuple[bytes, int], int] = {}


def log_partition(key: bytes, partitions: int) -> int:
    """The partition the producer's default partitioner (murmur2, as Kafka's Java client and
    kafka-python) gives a key: the worker sends with it, so the API and the worker agree."""
    hit = _PARTITIONS.get((key, partitions))
    if hit is None:
        from aiokafka.partitioner import murmur2  # pure Python: once per enterprise

        if len(_PARTITIONS) > 100_000:
            _PARTITIONS.clear()
        hit = _PARTITIONS[(key, partitions)] = (murmur2(key) & 0x7FFFFFFF) % partitions
    return hit


def key_partition(key: str) -> int:
    return int(key.split("|", 2)[1])


def _split(value: bytes) -> tuple[dict[str, Any], bytes]:
    head, _, body = value.partition(b"\n")
    return json.loads(head), body


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _dumps(doc: Any) -> bytes:
    """JSON as json.dumps(ensure_ascii=False, default=_json_default) writes it, ~10x faster.

    Datetimes are written by orjson itself: every datetime the fold holds is UTC (the envelope's
    validators convert at the door, and the fold only adds timedeltas), and orjson writes a UTC
    datetime as ``isoformat()`` does (``+00:00``, microseconds when not 0); a naive one is taken as
    UTC.  Handing each to ``_json_default`` instead cost ~1.5 µs a datetime, a sixth of the worker's
    serialising.  What orjson refuses (non-str keys, ints past 64 bits) goes the slow way."""
    try:
        return orjson.dumps(doc, default=_json_default, option=orjson.OPT_NAIVE_UTC)
    except TypeError:
        return json.dumps(doc, ensure_ascii=False, default=_json_default).encode("utf-8")


CONFLICT_KIND = "event.id_conflict"
"""The effect of an event whose id was already folded for other content (``Fold._conflict``)."""
CONFLICT_IDX = 1 << 31
"""Effect indexes from here on are conflicts' (an event's own effects count from 0)."""

_build_county = builder(CountyState)  # one per event folded: built, not validated (its parts are the fold's own)

SAMPLE_COLUMN_LIST = list(SAMPLE_COLUMNS)
JUDGEMENT_COLUMN_LIST = list(JUDGEMENT_COLUMNS)
COMPLAINT_COLUMN_LIST = list(COMPLAINT_TABLE_COLUMNS)


# --------------------------------------------------------------------------- the fold, without Faust


@dataclass
class FileState:
    partition: int
    file: CreditFile | None = None
    # every event id folded into this file, with its content digest (``content_digest``): a repeat
    # with the same content is a retry, with other content a conflict.  None: folded before the
    # digests were kept (an older snapshot), so a repeat of it can only be taken for a retry.
    # Clock ticks are not here (``ticks``).  The rest is kept for good: it grows with the file's
    # own events (~74 bytes each, less than their records in the file), and an id dropped from it
    # would turn a late resend (a lab importing last year's export again) into a second application
    seen: dict[str, str | None] = field(default_factory=dict)
    # the last TICK_IDS_KEPT clock ticks folded here, with digests.  A tick reaches every file of its
    # partition: kept in ``seen`` they were 74 bytes per tick in every snapshot, and after ~13.5 k
    # ticks (94 days at one per 10 minutes) no snapshot fit in a message and the worker stopped for
    # good.  A redelivered tick needs no id (a tick is applied only past the file's ``pos``); these
    # catch a tick published again (`qrisk tick` or the API retrying), which comes within minutes
    ticks: dict[str, str] = field(default_factory=dict)
    version: int = 0  # events applied to this file (ticks included)
    pos: int = -1  # log offset of the last event applied
    snap_version: int = 0
    prev_snap_version: int = 0
    snap_refused: int = 0  # the version whose snapshot was too large (SNAPSHOT_MAX_BYTES): next try snapshot_every later
    alerts: AlertBook = field(default_factory=AlertBook)  # this enterprise's alerts (alerts.lifecycle), folded with its file
    # the digests of the policies (``pipeline.policy_digest``: with the working-day calendar) and catalogues this
    # file was folded under, "+"-joined in order; None: this worker's alone.  Written into every snapshot, so a
    # file restored under another policy stays marked through later snapshots and restarts until the log is
    # folded again (``qrisk rebuild --kafka``): its snapshot would otherwise claim the new policy for a mixed file
    policy: str | None = None
    catalogue: str | None = None
    # the FOLD_VERSION of the snapshot this file was restored from, when another than this worker's (0: one
    # written before snapshots said); None: folded by this version alone.  Written into later snapshots in
    # place of this version, for the same reason as ``policy``: the old results stay in the file until the
    # log is folded again, and a snapshot naming this version would hide them from the next worker
    fold: int | None = None


@dataclass(frozen=True, slots=True)
class EffectOrigin:
    """The log message an effects message came from: what its dead letter keeps if it cannot be sent."""

    raw: bytes  # the log message as folded
    position: str  # topic/partition/offset of the log
    letter_id: str  # the dead letter's id: a redelivery collapses onto it
    occurred_at: dt.datetime


@dataclass
class BatchOutput:
    effects: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, value) for the effects topic
    origins: list[EffectOrigin] = field(default_factory=list)  # of each effects message, in the same order
    letters: list[DeadLetter] = field(default_factory=list)
    writes: list[tuple[str, bytes | None]] = field(default_factory=list)  # table writes; None deletes
    folded: dict[int, int] = field(default_factory=dict)  # per log partition, the last offset given to ``apply``
    applied: int = 0
    duplicates: int = 0
    conflicts: int = 0
    effects_too_large: int = 0  # effects messages replaced by a processing.failed one (``oversized_effects``)


def _part_sizes(doc: dict[str, Any]) -> dict[str, int]:
    """The bytes of each part of an effects message (each effect, each block of rows), largest first."""
    parts: dict[str, int] = {}
    for i, effect in enumerate(doc.get("effects") or []):
        parts[f"effects[{i}] {effect.get('kind')}"] = len(_dumps(effect))
    for name in ("sampling_items_in", "judgement_rows", "complaint_rows", "alert_rows", "sampling_items", "judgements"):
        if doc.get(name):
            parts[name] = len(_dumps(doc[name]))
    return dict(sorted(parts.items(), key=lambda kv: -kv[1]))


def oversized_effects(value: bytes, origin: EffectOrigin, limit: int) -> tuple[bytes, DeadLetter]:
    """An effects message too large for the effects topic: its replacement, and the dead letter that keeps
    the event and says what was not written.

    Sent anyway, the broker refused it, the worker stopped before acknowledging, and at every start it
    met the same event again: the partition, every enterprise on it, stood still for good.  The credit
    file has folded the event (a replay folds it the same way); what is lost is the effects' copy in
    ClickHouse (stream_effects, the sample's rows, the judgement), said here and in the letter.  The
    alert steps and their notifications are kept when they fit without the rest: supervisors are still
    told of the warning."""
    doc = orjson.loads(value)
    head = {k: doc[k] for k in ("enterprise_id", "event_id", "event_type", "file_version", "log", "log_ts") if k in doc}
    parts = _part_sizes(doc)
    largest = ", ".join(f"{name} {size:,}" for name, size in list(parts.items())[:4])
    eid = doc.get("enterprise_id")
    error: dict[str, Any] = {"field": next(iter(parts), ""), "type": "effects_too_large", "size": len(value), "limit": limit,
                             "parts": dict(list(parts.items())[:10])}

    def replacement(keep_alerts: bool) -> bytes:
        kept_zh = "；预警及其通知已保留" if keep_alerts else "，预警及其通知也未写入"
        kept_en = "; its alert steps and their notifications are kept" if keep_alerts else ", nor its alert steps and notifications"
        error["kept"] = ["alert_rows"] if keep_alerts else []
        error["reason"] = (f"the effects of event {doc.get('event_id')} ({doc.get('event_type')}) on the credit file of {eid} are "
                           f"{len(value):,} bytes as one message, more than the {limit:,} the effects topic takes (largest parts, bytes: "
                           f"{largest}); the credit file has folded the event, but its effects and derived rows (judgement, sample "
                           f"items) were not written to ClickHouse{kept_en}. Raise the effects topic's max.message.bytes and fold the "
                           f"log again (`qrisk rebuild --kafka`) to write them")
        error["reason_zh"] = (f"事件 {doc.get('event_id')}（{doc.get('event_type')}）对企业 {eid} 诚信档案的处理结果为 {len(value):,} 字节，"
                              f"超过处理结果主题（effects）可接收的 {limit:,} 字节（最大部分，字节：{largest}）；诚信档案已按该事件更新，"
                              f"但其处理结果与派生记录（判定、抽检明细）未写入 ClickHouse{kept_zh}。请调大该主题的 max.message.bytes 后"
                              f"重新折叠日志（qrisk rebuild --kafka）写入")
        failed = {"idx": 0, "kind": "processing.failed", "event_id": doc.get("event_id"), "occurred_at": origin.occurred_at,
                  "data": {"reason": f"effects_too_large: {error['reason']}", "reason_zh": error["reason_zh"],
                           "event_type": doc.get("event_type"), "dead_letter_id": origin.letter_id, "size": len(value), "limit": limit}}
        out = {**head, "effects": [failed]}
        if keep_alerts:
            out["alert_rows"] = doc["alert_rows"]
        return _dumps(out)

    small = replacement(keep_alerts=bool(doc.get("alert_rows")))
    if len(small) > limit:
        small = replacement(keep_alerts=False)
    letter = DeadLetter("processing", origin.position, origin.raw, f"effects_too_large: {error['reason']}", [error],
                        dead_letter_id=origin.letter_id)
    return small, letter


BROKER_SILENT_AFTER_S = 10.0
"""How long a worker holding partitions may go without a fetch response or a producer acknowledgement before
/qrisk/healthz/ says "degraded": a consumer long-polls (``QRISK_WORKER_FETCH_MAX_WAIT_MS``), so an idle worker
still hears from the broker every second or two; a rebalance (``QRISK_WORKER_SESSION_TIMEOUT``) fits within."""


class BrokerContact:
    """When the broker last answered this worker.  Neither Faust nor aiokafka raises while the broker is away:
    they retry, and the health page said "ok" through an outage while nothing was read or written."""

    def __init__(self, now: float | None = None) -> None:
        self.acked_at = time.time() if now is None else now  # a producer acknowledgement, a finished rebalance, the start

    def acked(self, now: float | None = None) -> None:
        self.acked_at = time.time() if now is None else now

    def problem(self, fetched_at: float | None, assigned: bool, now: float | None = None) -> str | None:
        """Why the page is "degraded" (Chinese and English), or None.  ``fetched_at``: the last fetch response (epoch s)."""
        if not assigned:
            return None  # nothing to read: a worker with no partition (more workers than partitions) fetches nothing
        now = time.time() if now is None else now
        silent = now - max(self.acked_at, fetched_at or 0.0)
        if silent <= BROKER_SILENT_AFTER_S:
            return None
        return (f"Kafka：已 {silent:.0f} 秒未收到拉取响应或写入确认（broker 不可达？）/ "
                f"Kafka: no fetch/ack for {silent:.0f} s (the broker unreachable?)")


def last_fetch(consumer: Any) -> tuple[float | None, bool]:
    """When aiokafka last had a fetch response for any partition it holds (epoch s; an empty one counts), and
    whether it holds any.  From its subscription state, as Faust's own slow-processing check reads it."""
    try:
        assignment = consumer._thread._ensure_consumer()._fetcher._subscriptions.subscription.assignment
    except Exception:  # noqa: BLE001 - not started, or another aiokafka: nothing known
        return None, False
    if assignment is None or not assignment.tps:
        return None, False
    stamps = [st.timestamp for st in (assignment.state_value(tp) for tp in assignment.tps) if st is not None and st.timestamp]
    return (max(stamps) / 1000 if stamps else None), True


def _folded_under(named: str | None, ours: str) -> str | None:
    """What a snapshot says it was folded under (digests, "+"-joined) and this worker's own digest: None
    when the same, else every digest the file is now folded under, ours last."""
    if named is None or named == ours:
        return None
    digests = named.split("+")
    return named if digests[-1] == ours else "+".join([d for d in digests if d != ours] + [ours])


class _AllBut:
    """Every id but these (``unregistered_warning`` asks which listed ids are registered)."""

    def __init__(self, missing: set[str]) -> None:
        self.missing = missing

    def __contains__(self, eid: object) -> bool:
        return eid not in self.missing


class Fold:
    """Per-enterprise fold of the log: what the ``fold`` agent does, testable without Faust."""

    def __init__(self, rules: Rules, log_topic: str, snapshot_every: int = 100):
        self.rules = rules
        self.log_topic = log_topic
        self.snapshot_every = max(1, snapshot_every)
        self.snapshot_max_bytes = SNAPSHOT_MAX_BYTES
        self.effects_max_bytes = EFFECTS_MAX_BYTES
        self.oversized = 0  # snapshots not written for their size (SNAPSHOT_MAX_BYTES)
        self.policy = policy_digest(rules)
        self.catalogue = rules.catalogue.digest
        self.policy_name = "FILE"  # the policy file as the operator names it (``create_app``): in the warning's command
        self.files: dict[str, FileState] = {}
        self.by_partition: dict[int, set[str]] = {}
        self.loaded: set[int] = set()
        # per loaded partition, the last log offset whose state is in the table (``folded_key``), and the
        # partitions whose first message since they were loaded has not yet been compared with it
        self.folded_to: dict[int, int] = {}
        self.unchecked: set[int] = set()
        # per loaded partition, the snapshots and entries it was rebuilt from, and how many the mark says the table had
        self.restored_keys: dict[int, int] = {}
        self.said_keys: dict[int, int] = {}
        self.dirty: set[str] = set()  # credit files to publish
        self.rows = SampleRows()
        # Events this process validated on ingress, by the exact bytes it put in the log: the fold
        # takes the object instead of validating the same bytes again.  Only a byte-identical log
        # message hits, and parsing those bytes gives an equal event (what a successor replaying the
        # log or the changelog does); anything else — another worker's, a redelivery — is parsed.
        # ~10 kB each (the event and its bytes): the bound keeps it near 50 MB when the fold lags far
        # behind ingress or folds none of it (another worker owns the log partition)
        self.validated: dict[bytes, tuple[Envelope, int]] = {}  # with the log partition it goes to
        self.validated_limit = 5_000
        self.validated_hits = 0
        # Of those, the ones bound for log partitions this fold holds.  With a backlog the ingress
        # agent would validate thousands of events ahead of the fold, the oldest would fall out and
        # be validated again at the fold (3 of 4 in bench_kafka): the ingress agent waits while
        # this is near the bound (``ahead_full``).
        self.ahead = 0

    def remember(self, raw: bytes, event: Envelope, partition: int) -> None:
        validated = self.validated
        if len(validated) >= self.validated_limit:
            # the oldest: its log message was folded long ago or never comes here
            _, p = validated.pop(next(iter(validated)))
            if p in self.loaded:
                self.ahead -= 1
        validated[raw] = (event, partition)
        if partition in self.loaded:
            self.ahead += 1

    def ahead_full(self, room: int) -> bool:
        """Whether ``room`` more remembered events for this fold could push out some not yet folded."""
        return self.ahead + room > self.validated_limit

    def _count_ahead(self) -> None:
        loaded = self.loaded
        self.ahead = sum(1 for _, p in self.validated.values() if p in loaded)

    # ------------------------------------------------------------------ partitions

    def drop(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            for eid in self.by_partition.pop(p, set()):
                self.files.pop(eid, None)
                self.dirty.discard(eid)
            self.loaded.discard(p)
            self.folded_to.pop(p, None)
            self.unchecked.discard(p)
            self.restored_keys.pop(p, None)
            self.said_keys.pop(p, None)
        self._count_ahead()

    def load(self, partition: int, items: Iterable[tuple[str, bytes]], out: BatchOutput | None = None) -> int:
        """Rebuild the files of one partition from its table contents (snapshot + tail).

        Entries a snapshot covers are deleted (tombstones in ``out.writes``): a snapshot deletes
        only those of the snapshot before it, which a reloaded file no longer knows, so after each
        restart or rebalance up to ``snapshot_every`` events per file stayed in the changelog
        (and in every successor's memory) for good."""
        self.drop([partition])
        snaps: dict[str, bytes] = {}
        entries: dict[str, list[tuple[int, bytes]]] = {}
        prefix_s, prefix_e, mark = f"S|{partition}|", f"E|{partition}|", folded_key(partition)
        restored = 0
        for key, value in items:
            if value is None:
                continue
            if key == mark:
                said = json.loads(value)
                self.folded_to[partition] = said["offset"]
                if "keys" in said:
                    self.said_keys[partition] = said["keys"]
                continue
            if key.startswith(prefix_s):
                snaps[key[len(prefix_s):]] = value
            elif key.startswith(prefix_e):
                eid, _, version = key[len(prefix_e):].rpartition("|")
                entries.setdefault(eid, []).append((int(version), value))
            else:
                continue
            restored += 1
        members = self.by_partition.setdefault(partition, set())
        stale: dict[int, int] = {}  # files whose snapshot another fold version wrote, by that version
        mixed = 0  # files whose snapshot was folded under another policy or catalogue
        for eid in sorted(set(snaps) | set(entries)):
            fs = FileState(partition)
            if eid in snaps:
                head, body = _split(snaps[eid])
                fs.file = CreditFile.model_validate_json(body)
                compact(fs.file, (ItemJudgement, SumOfRatiosMember))  # (as CountyState.restore does: shared as the fold shares them)
                seen = head["seen"]
                # a snapshot written before digests were kept lists the ids alone: nothing to
                # compare a repeat of those with, so it stays a duplicate, as it was then.  (An
                # older worker reads the ids of the newer form too: set() of a dict is its keys.)
                fs.seen = dict.fromkeys(seen) if isinstance(seen, list) else seen
                fs.ticks = head.get("ticks") or {}
                fs.version = fs.snap_version = fs.prev_snap_version = head["v"]
                fs.pos = head["pos"]
                folded_by = head.get("fold", 0)  # (0: written before snapshots said)
                if folded_by != FOLD_VERSION:
                    stale[folded_by] = stale.get(folded_by, 0) + 1
                    fs.fold = folded_by
                if head.get("alerts"):  # (a snapshot written before alerts were folded here has none)
                    fs.alerts = AlertBook.model_validate(head["alerts"])
                    share_field_sets(fs.alerts)
                # (a snapshot written before they were named has neither: taken as this policy's, it cannot be told)
                fs.policy = _folded_under(head.get("policy"), self.policy)
                fs.catalogue = _folded_under(head.get("catalogue"), self.catalogue)
                mixed += fs.policy is not None or fs.catalogue is not None
            for version, value in sorted(entries.get(eid, [])):
                if version <= fs.version:
                    if out is not None:
                        out.writes.append((entry_key(partition, eid, version), None))
                    continue  # covered by the snapshot
                head, body = _split(value)
                event = parse_event(load_json(body))
                self._step(eid, fs, event, content_digest(event))  # (its effects and alert rows went out when it was first folded)
                fs.version, fs.pos = version, head["pos"]
            self.files[eid] = fs
            members.add(eid)
            self.dirty.add(eid)
        self.loaded.add(partition)
        self.unchecked.add(partition)
        self.restored_keys[partition] = restored
        if out is not None and out.writes and partition in self.folded_to:
            # the mark again after the covered entries' deletion, so that it counts the table as it is then
            out.writes.append((mark, b'{"offset": %d}' % self.folded_to[partition]))
        self._count_ahead()
        if stale:
            n = sum(stale.values())
            versions = ", ".join(str(v or "unknown") for v in sorted(stale))
            log.warning("fold: partition %s: %s 个诚信档案的快照由其他版本的处理逻辑（%s）生成，当前为 %s；这些企业沿用旧结果，"
                        "直至按 README“Upgrades”重新折叠日志 / %s credit files were snapshotted by fold version %s, this is %s: "
                        "they carry on with its results until the log is folded again (README, \"Upgrades\")",
                        partition, n, versions, FOLD_VERSION, n, versions, FOLD_VERSION)
        if mixed:
            # Not refolded here: the events a snapshot covers are gone from the changelog, and folding the log
            # again means moving the group back, passing the sink over the old output and emptying its tables —
            # what `qrisk rebuild --kafka` does with every worker stopped.  Said, counted and on /qrisk/healthz/
            log.warning("fold: partition %s: %s 个诚信档案的快照按另一份策略或标准目录折叠，当前策略 %s；这些档案混合了两份策略的结果"
                        "（其效果与预警亦然），直至停止所有 qrisk worker 与 qrisk sink 后运行 qrisk rebuild --kafka --policy %s 重新折叠日志 / "
                        "%s credit files were snapshotted under another policy or catalogue than this one (%s): they mix "
                        "both policies' results (and so do their effects and alerts) until the log is folded again: stop every "
                        "`qrisk worker` and `qrisk sink` and run `qrisk rebuild --kafka --policy %s` (README, \"Another policy (Kafka mode)\")",
                        partition, mixed, self.policy[:12], self.policy_name, mixed, self.policy[:12], self.policy_name)
        return len(members)

    @property
    def stale_snapshots(self) -> int:
        """Credit files held here that carry results of another fold version (restored from its snapshot)."""
        return sum(1 for fs in self.files.values() if fs.fold is not None)

    def policy_mismatch(self) -> int:
        """Credit files held here that were folded in part under another policy or catalogue."""
        return sum(1 for fs in self.files.values() if fs.policy is not None or fs.catalogue is not None)

    def unregistered_listings(self, partitions: int) -> str | None:
        """What is said of the policy's 严重违法失信 listings naming no enterprise on file, as far as this worker can tell:
        an enterprise's events all go to one log partition, so of the ids hashed to the partitions loaded here each one
        without a file here is on no file anywhere; the others are their own workers' to say.  A set lookup per listed id:
        cheap enough for every /qrisk/healthz/ call."""
        credit = self.rules.policy.risk.credit
        missing = {eid for eid in credit.unregistered_listings(self.files)
                   if log_partition(eid.encode("utf-8"), partitions) in self.loaded}
        return credit.unregistered_warning(_AllBut(missing)) if missing else None

    # ------------------------------------------------------------------ events

    def _step(self, eid: str, fs: FileState, event: Envelope, digest: str
              ) -> tuple[list[Effect], BaseException | None, list[AlertChange]]:
        # the county around this one file, with an empty county-level chart; and nothing seen,
        # because repeats are told apart before this, by id and content (``apply``)
        state = _build_county(files={eid: fs.file} if fs.file is not None else {}, seen_event_ids=set(),
                              clock=None, categories={}, applied=0)
        try:
            state, effects = step(state, event, self.rules)
            error = None
        except Exception as exc:  # noqa: BLE001 - becomes an effect and a dead letter, as in the embedded runtime
            error = exc
            effects = [Effect(kind="processing.failed", enterprise_id=eid, event_id=event_key(event), occurred_at=event.occurred_at,
                              data={"reason": f"processing failed: {type(exc).__name__}: {exc}", "event_type": event.event_type})]
        if event.enterprise_id == "*":
            ticks = fs.ticks
            ticks[event_key(event)] = digest
            if len(ticks) > TICK_IDS_KEPT:
                del ticks[next(iter(ticks))]  # the oldest: a tick's retry comes within minutes
        else:
            fs.seen[event_key(event)] = digest
        fs.file = state.files.get(eid) or fs.file or CreditFile(enterprise_id=eid)
        changes: list[AlertChange] = []
        if error is None:
            # the alerts stage, as the embedded pipeline runs it: this enterprise's alerts, by its events
            try:
                changes = fs.alerts.apply(event, effects, self.rules.policy, lambda _: self._enterprise(fs))
            except AlertActionError as exc:
                p = event.payload  # type: ignore[attr-defined]
                effects = [*effects, Effect(kind="alert.action_rejected", enterprise_id=eid, event_id=event_key(event),
                                            occurred_at=event.occurred_at, data={"alert_id": p.alert_id, "action": p.action, "reason_zh": str(exc)})]
            except Exception as exc:  # noqa: BLE001 - the file is folded: keep its effects, report the alerts stage
                error = exc
                effects = [*effects, Effect(kind="processing.failed", enterprise_id=eid, event_id=event_key(event), occurred_at=event.occurred_at,
                                            data={"reason": f"alerts stage failed: {type(exc).__name__}: {exc}", "event_type": event.event_type})]
        return effects, error, changes

    @staticmethod
    def _enterprise(fs: FileState) -> Enterprise | None:
        p = fs.file.profile if fs.file is not None else None
        return None if p is None else Enterprise(name=p.name, town=p.town, category=p.category)

    def behind(self, partition: int, first: int) -> int | None:
        """At the first message given to the fold since ``partition`` was loaded: the last offset its
        table says was folded, if that falls short of the message (``table_behind``), else None."""
        if partition not in self.unchecked:
            return None
        self.unchecked.discard(partition)
        folded_to = self.folded_to.get(partition)
        return folded_to if table_behind(folded_to, first) else None

    def keys_differ(self, partition: int) -> bool:
        """Whether the table this partition was rebuilt from has another number of snapshots and entries
        than its mark says (a restore that missed part of the changelog: the mark itself, rewritten with
        every batch, is then usually there)."""
        said = self.said_keys.get(partition)
        return said is not None and said != self.restored_keys.get(partition)

    def mark_folded(self, out: BatchOutput) -> None:
        """The batch's last offset of each partition, into the table after its state (``table_behind``)."""
        for partition, offset in sorted(out.folded.items()):
            out.writes.append((folded_key(partition), b'{"offset": %d}' % offset))
            self.folded_to[partition] = offset

    def apply(self, partition: int, offset: int, raw: bytes, timestamp_ms: int | None, out: BatchOutput) -> None:
        """One message of the log at (partition, offset)."""
        if offset > out.folded.get(partition, -1):
            out.folded[partition] = offset
        hit = self.validated.pop(raw, None)
        if hit is not None:
            event, p = hit
            if p in self.loaded:
                self.ahead -= 1
            self.validated_hits += 1
        else:
            event, letter = normalise(self.log_topic, partition, offset, raw, {}, None)
            if letter is not None:  # a poison message in the log: kept, never applied
                letter.reason = f"not a valid event in the log: {letter.reason}"
                out.letters.append(letter)
                return
        event_id = event_key(event)
        tick = event.enterprise_id == "*"
        if tick:
            members = self.by_partition.get(partition, set())
            # a tick reaches the files that existed on this partition before it in the log
            targets = [eid for eid in sorted(members) if self.files[eid].pos < offset]
        else:
            targets = [event.enterprise_id]
        digest = None  # once per message (a tick reaches many files), and only when a file needs it
        for eid in targets:
            fs = self.files.get(eid)
            if fs is None:
                fs = self.files[eid] = FileState(partition)
                self.by_partition.setdefault(partition, set()).add(eid)
            known = fs.ticks if tick else fs.seen
            if event_id in known:
                folded = known[event_id]
                if folded is not None:
                    digest = digest or content_digest(event)
                if folded is None or folded == digest or folded == content_digest(event, items_as_sent=True):
                    out.duplicates += 1  # a retry, or a redelivery (the last: a digest kept from before items were sorted)
                else:
                    self._conflict(eid, fs, event, raw, partition, offset, timestamp_ms, out)
                continue
            digest = digest or content_digest(event)
            effects, error, changes = self._step(eid, fs, event, digest)
            fs.version += 1
            fs.pos = offset
            out.applied += 1
            self.dirty.add(eid)
            if error is not None:
                position = f"{self.log_topic}/{partition}/{offset}"
                suffix = "" if event.enterprise_id != "*" else f"-{eid}"
                reason = next(e.data["reason"] for e in effects if e.kind == "processing.failed")
                out.letters.append(DeadLetter("processing", position, raw, reason,
                                              [{"field": "", "type": "processing_failed", "reason": reason,
                                                "traceback": traceback.format_exception_only(type(error), error)[-1].strip()}],
                                              dead_letter_id=f"processing-{event_id}{suffix}", event_id=event_id))
            # the complaints this event changed, as the file is after it: the embedded pipeline's rows, versioned by the
            # file's version instead of the log's seq (both grow with each change of one enterprise's complaint).  A
            # complaint's event may change its row without an effect (a conclusion in time, say)
            ids = complaints_changed(event, effects).get(eid, set())
            complaints = complaint_table_rows(fs.file, ids, fs.version) if fs.file is not None and ids != set() else []
            if effects or changes or complaints:
                self._add_effects(out, eid, self._effect_message(eid, fs, event, effects, partition, offset, timestamp_ms, changes,
                                                                 complaints=complaints),
                                  EffectOrigin(raw, f"{self.log_topic}/{partition}/{offset}",
                                               f"processing-{event_id}{'' if not tick else '-' + eid}:effects", event.occurred_at))
            out.writes.append((entry_key(partition, eid, fs.version), b'{"pos": %d}\n' % offset + raw))
            if fs.version - max(fs.snap_version, fs.snap_refused) >= self.snapshot_every:
                out.writes.extend(self._snapshot(eid, fs))

    def _conflict(self, eid: str, fs: FileState, event: Envelope, raw: bytes, partition: int, offset: int,
                  timestamp_ms: int | None, out: BatchOutput) -> None:
        """An event id already folded into this file, now with other content: a lab's correction sent
        under the old id, say.  Not folded (an accepted event is immutable, as the embedded pipeline
        answers 409), and not dropped: a dead letter with the event as it came and an effect, where
        supervisors and operators look.  The alerts stage does not see it, as it never sees an event
        the embedded pipeline refused: it is a matter of the sender's data, not a food-safety warning."""
        event_id = event_key(event)
        suffix = "" if event.enterprise_id != "*" else f":{eid}"
        letter_id = f"kafka:{self.log_topic}:{partition}:{offset}{suffix}"  # a redelivery collapses onto it
        error = conflict_error(event_id, "an earlier event in the log", "日志中已有的事件")
        out.letters.append(DeadLetter("kafka", f"{self.log_topic}/{partition}/{offset}", raw, f"conflict: {error['reason']}", [error],
                                      dead_letter_id=letter_id, event_id=event_id))
        effect = Effect(kind=CONFLICT_KIND, enterprise_id=eid, event_id=event_id, occurred_at=event.occurred_at,
                        data={"event_type": event.event_type, "reason": error["reason"], "reason_zh": error["reason_zh"],
                              "dead_letter_id": letter_id})
        # It changes no state, so it has no file version of its own: it goes beside the version it
        # met, at an index past any event's effects taken from its log offset, so that neither a
        # second conflict at that version nor this one's redelivery replaces another effect row
        idx = CONFLICT_IDX | (offset & (CONFLICT_IDX - 1))
        self._add_effects(out, eid, self._effect_message(eid, fs, event, [effect], partition, offset, timestamp_ms, first_idx=idx),
                          EffectOrigin(raw, f"{self.log_topic}/{partition}/{offset}", f"{letter_id}:effects", event.occurred_at))
        out.conflicts += 1

    def _add_effects(self, out: BatchOutput, eid: str, value: bytes, origin: EffectOrigin) -> None:
        if len(value) > self.effects_max_bytes:
            value, letter = oversized_effects(value, origin, self.effects_max_bytes)
            out.letters.append(letter)
            out.effects_too_large += 1
            log.error("fold: %s（死信 %s）/ %s", letter.errors[0]["reason_zh"], letter.dead_letter_id, letter.reason)
        out.effects.append((eid.encode("utf-8"), value))
        out.origins.append(origin)

    def _snapshot(self, eid: str, fs: FileState) -> list[tuple[str, bytes | None]]:
        seen = {k: fs.seen[k] for k in sorted(fs.seen)}
        head = orjson.dumps({"v": fs.version, "pos": fs.pos, "seen": seen, "ticks": fs.ticks, "alerts": fs.alerts.model_dump(mode="json"),
                             "fold": FOLD_VERSION if fs.fold is None else fs.fold, "policy": fs.policy or self.policy, "catalogue": fs.catalogue or self.catalogue})
        value = head + b"\n" + fs.file.model_dump_json().encode()
        if len(value) > self.snapshot_max_bytes:
            # Not sent: the broker would refuse it and the worker stop on every partition it
            # holds.  Nothing is lost without it: the entries since the last snapshot stay in the
            # changelog (none is deleted) and a successor folds them again, only more slowly.
            fs.snap_refused = fs.version
            self.oversized += 1
            log.error("fold: the snapshot of %s (file version %s) is %s bytes, more than the %s a snapshot may have; "
                      "not written, its changelog entries are kept instead (recovery of this file folds them all) / "
                      "%s 的快照超过上限，未写入，保留其变更日志条目", eid, fs.version, len(value), self.snapshot_max_bytes, eid)
            return []
        writes: list[tuple[str, bytes | None]] = [(snapshot_key(fs.partition, eid), value)]
        # entries the previous snapshot covers go now; those of this one after the next
        writes += [(entry_key(fs.partition, eid, v), None) for v in range(fs.prev_snap_version + 1, fs.snap_version + 1)]
        fs.prev_snap_version, fs.snap_version = fs.snap_version, fs.version
        return writes

    def _effect_message(self, eid: str, fs: FileState, event: Envelope, effects: list[Effect], partition: int, offset: int,
                        timestamp_ms: int | None, changes: list[AlertChange] | None = None, first_idx: int = 0,
                        complaints: list[tuple[Any, ...]] | None = None) -> bytes:
        """One event's effects on one file, with its derived rows in the embedded pipeline's form:
        one ``sampling_items_in`` row per sample (item-level arrays, unfolded into
        ``sampling_items`` by ClickHouse's materialised view) and one ``judgements`` row, each as a
        list in the order of its ``columns`` — no dict per row, and a message ~5x smaller than
        with one ``sampling_items`` dict per value; so are the ``complaints`` rows of the complaints
        it changed (``complaint_rows``).  The column names travel with the rows, so a
        sink reads a message written before a column list changed."""
        samples: list[tuple[Any, ...]] = []
        judgements: list[tuple[Any, ...]] = []
        out_effects = []
        for idx, eff in enumerate(effects):
            data = eff.data
            if eff.kind == "sampling.judged":
                file = fs.file
                record = _find_sample(file, data["sample_event_id"])
                sample, judgement = self.rows(file, record)
                if sample is not None:
                    samples.append(sample)
                judgements.append(judgement)
                # as the embedded pipeline: the sample this one supersedes (re-test) is written
                # again with superseded_by set, after its first row (same partition, later message)
                original = self.rows.superseded(file, record)
                if original is not None:
                    judgements.append(original)
            out_effects.append({"idx": first_idx + idx, "kind": eff.kind, "event_id": eff.event_id, "occurred_at": eff.occurred_at, "data": data})
        doc: dict[str, Any] = {
            "enterprise_id": eid, "event_id": event_key(event), "event_type": event.event_type,
            "file_version": fs.version, "log": [partition, offset], "log_ts": timestamp_ms, "effects": out_effects,
        }
        if samples:
            doc["sampling_items_in"] = {"columns": SAMPLE_COLUMN_LIST, "rows": samples}
        if judgements:
            doc["judgement_rows"] = {"columns": JUDGEMENT_COLUMN_LIST, "rows": judgements}
        if complaints:
            doc["complaint_rows"] = {"columns": COMPLAINT_COLUMN_LIST, "rows": complaints}
        if changes:
            # alert steps and their notifications, as rows for the alerts, alert_events and outbox tables:
            # the sink writes the outbox after the alert, and `qrisk alerts dispatch` sends from it
            steps = alert_rows(changes, event.received_at)
            doc["alert_rows"] = {
                "alerts": {"columns": list(ALERT_COLUMNS), "rows": [r.alert for r in steps]},
                "alert_events": {"columns": list(ALERT_EVENT_COLUMNS), "rows": [r.step for r in steps]},
                "outbox": {"columns": list(OUTBOX_COLUMNS), "rows": [n for r in steps for n in r.outbox]},
            }
        return _dumps(doc)

    def views(self, limit: int | None = None, eids: Iterable[str] | None = None) -> list[tuple[bytes, bytes]]:
        """Credit files changed since the last call, for the compacted credit-files topic
        (of ``eids`` only, when given: the ones still changed among them)."""
        out = []
        pending = sorted(self.dirty) if eids is None else [eid for eid in eids if eid in self.dirty]
        for eid in pending[:limit]:
            fs = self.files.get(eid)
            self.dirty.discard(eid)
            if fs is None or fs.file is None:
                continue
            doc = {"enterprise_id": eid, "version": fs.version, "file": fs.file.view()}
            out.append((eid.encode("utf-8"), _dumps(doc)))
        return out


# --------------------------------------------------------------------------- ingress, without Faust


def _parse_current(raw: bytes, context: dict[str, Any] | None = None) -> Envelope | None:
    """A valid current-version event straight from the bytes (pydantic parses JSON in one pass), else None.

    Only the verdict "valid" is taken from here: anything else goes the general way, which words
    the error exactly.  NaN/Infinity are not JSON (``load_json`` refuses them); the one-pass parser
    would not, so such input never takes this way."""
    from schemas.events import SCHEMA_VERSION, event_adapter

    if b"NaN" in raw or b"Infinity" in raw:
        return None
    try:
        event = event_adapter.validate_json(raw, context=context)
    except Exception:  # noqa: BLE001 - the general path decides
        return None
    return event if event.schema_version == SCHEMA_VERSION else None


def moment_json(now: dt.datetime) -> bytes:
    """``now`` as the envelope's ``received_at`` field serialises it."""
    global _MOMENT_ADAPTER
    if _MOMENT_ADAPTER is None:
        from pydantic import TypeAdapter

        from schemas.events import AwareDatetime

        _MOMENT_ADAPTER = TypeAdapter(AwareDatetime)
    return _MOMENT_ADAPTER.dump_json(now)


_MOMENT_ADAPTER = None


def stamped_value(raw: bytes, received_at: bytes) -> bytes | None:
    """The log's bytes for a record that validated as it is: the record with ``received_at``
    added, or None when it cannot simply be added (then ``event_value`` writes the event anew).

    Re-serialising every event (``model_dump_json``) was ~3 % of the worker; parsing these bytes
    gives the same event as the stamped one, which is what the fold and a successor rely on."""
    body = raw.strip()
    if len(body) < 2 or body[:1] != b"{" or body[-1:] != b"}" or b'"received_at"' in body:
        return None
    head = body[:-1].rstrip()
    if head.endswith(b"{") or head.endswith(b","):
        return None
    return head + b',"received_at":' + received_at + b"}"


def arriving(raw: bytes, door_context: dict[str, Any], now: dt.datetime, now_json: bytes
             ) -> tuple[Envelope, bytes | None] | None:
    """An ingress record valid as it is: the event, ``received_at`` set to ``now``, and the log's bytes
    for it when they are the record's own, stamped (None: ``event_value`` writes them, once the event is
    known to go to the log).  None: the general way (``normalise``) decides and words the error.

    The record's own bytes only when the door kept every value as sent: where it rewrote one (a
    complaint's format characters taken out), those bytes re-read without the door give the value sent,
    and a successor, a refold or the sink would fold another event than this worker's fold, under
    another content digest (a producer's retry after a restart taken for a conflict)."""
    rewritten: list[str] = []
    event = _parse_current(raw, {**door_context, REWRITTEN: rewritten})
    if event is None or has_duplicate_keys(raw, [event]):
        # (a key given twice: the one-pass parser kept its last copy; refused as the HTTP door refuses
        # it, by the general way, which names the key)
        return None
    return event.model_copy(update={"received_at": now}), (None if rewritten else stamped_value(raw, now_json))


def ingress_position(topic: str, partition: int, offset: int, headers: Any) -> str:
    """Where an ingress record is: ``topic/partition/offset``, with the producer's file:line (header
    ``qrisk-position``, set by ``qrisk produce``) when it gave one."""
    if headers and not isinstance(headers, dict):
        headers = dict(headers)
    origin = (headers or {}).get("qrisk-position")
    where = f"{topic}/{partition}/{offset}"
    return f"{where} ({origin.decode('utf-8', 'replace')})" if origin else where


def admit(admissions: dict[str, Any], topic: str, partition: int, offset: int, raw: bytes, headers: Any,
          event: Envelope) -> DeadLetter | None:
    """None when ``topic`` admits this valid event; else its dead letter (``forbidden: …``, the
    error naming ``event_type`` or ``source.kind`` and the topic).  ``admissions``:
    ``Topics.admissions()``; a topic not in it (none of the ingress topics) admits nothing."""
    admission = admissions.get(topic)
    if admission is None:
        error = {"field": "", "type": "forbidden", "topic": topic, "reason": f"{topic} is not an ingress topic",
                 "reason_zh": f"{topic} 不是接收主题"}
    else:
        error = admission.refusal(event)
        if error is None:
            return None
    return DeadLetter("kafka", ingress_position(topic, partition, offset, headers), raw, f"forbidden: {error['reason']}", [error],
                      dead_letter_id=f"kafka:{topic}:{partition}:{offset}")


def normalise(topic: str, partition: int, offset: int, raw: bytes, headers: dict[str, bytes], now: dt.datetime | None,
              door_context: dict[str, Any] = DOOR) -> tuple[Envelope | None, DeadLetter | None]:
    """One record: the validated event (received_at set to ``now`` when given), or its dead letter.

    With ``now`` the record is arriving (the ingress topics: the door's checks apply, in
    ``door_context``: ``schemas.events.door`` of the policy's local time); without, it is
    re-read from the log, as it was accepted."""
    context = door_context if now is not None else None
    fast = _parse_current(raw, context)
    if fast is not None and now is not None:
        # arriving, a key given twice is refused (the one-pass parser keeps its last copy); the log
        # is re-read as it was accepted
        if has_duplicate_keys(raw, [fast]):
            fast = None
    if fast is not None:
        return (fast if now is None else fast.model_copy(update={"received_at": now})), None
    from ingest.validate import Rejection, _error, capped_errors, duplicate_key_errors, validate_document

    position = ingress_position(topic, partition, offset, headers)
    letter_id = f"kafka:{topic}:{partition}:{offset}"
    twice: list[Any] = []
    try:
        try:
            doc = load_json_once(raw) if now is not None else load_json(raw)
        except DuplicateKeys as exc:
            doc, twice = exc.doc, exc.paths
    except UnicodeDecodeError as exc:
        # as the HTTP door words it (ingest.validate.decode_body): an encoding to fix, not broken JSON
        err = _error("", "body_encoding", f"record is not UTF-8 (byte {exc.start} cannot be decoded): send JSON as UTF-8",
                     "记录不是 UTF-8 编码（例如按 GBK 发送）；请以 UTF-8 编码发送 JSON")
        return None, DeadLetter("kafka", position, raw, err["reason"], [err], dead_letter_id=letter_id)
    except ValueError as exc:
        err = _error("", "json_invalid", f"record is not valid JSON: {exc}", json_invalid_zh(exc))
        return None, DeadLetter("kafka", position, raw, err["reason"], [err], dead_letter_id=letter_id)
    except RecursionError:
        err = _error("", "json_invalid", "record is not valid JSON: nested too deeply")
        return None, DeadLetter("kafka", position, raw, err["reason"], [err], dead_letter_id=letter_id)
    result = validate_document(doc, None, raw, context)
    if twice:
        # capped as the HTTP door caps them: a record of 20,000 keys each given twice made a 7 MB letter
        result = Rejection(None, raw, capped_errors(duplicate_key_errors(twice) + (result.errors if isinstance(result, Rejection) else [])))
    if isinstance(result, Rejection):
        return None, DeadLetter("kafka", position, raw, result.reason, result.errors, dead_letter_id=letter_id)
    return (result if now is None else result.model_copy(update={"received_at": now})), None


# --------------------------------------------------------------------------- the Faust app


def _settings_rules() -> tuple[Rules, str]:
    """The rules of QRISK_POLICY_FILE (as `qrisk run` reads it), said in one line with the file's sha256, and the file's
    name for the advice to run `qrisk rebuild --kafka --policy …` ("FILE" for the built-in policy)."""
    from qrisk.runtime import default_rules
    from qrisk.settings import DEFAULT_POLICY, Settings

    policy_file = Settings().policy_file
    rules = default_rules(policy_file)
    # as `qrisk run` says it: a worker started with another file than its peers' (or than last time) is told apart here
    policy = f"{policy_file or 'built-in'} (sha256 {hashlib.sha256((policy_file or DEFAULT_POLICY).read_bytes()).hexdigest()[:12]})"
    print(f"qrisk worker: 策略 {policy} / policy {policy}", file=sys.stderr, flush=True)
    return rules, str(policy_file) if policy_file else "FILE"


def create_app(settings: KafkaSettings | None = None, rules: Rules | None = None, snapshot_max_bytes: int | None = None,
               letter_max_bytes: int | None = None, view_max_bytes: int | None = None, effects_max_bytes: int | None = None,
               policy_name: str = "FILE", **overrides: Any):
    """The Faust app with its two agents; ``app.qrisk_fold`` is the fold (for inspection in tests).
    ``rules`` None: QRISK_POLICY_FILE's (``_settings_rules``); given, ``policy_name`` is the file they came from, as the
    advice to rebuild names it.
    ``snapshot_max_bytes``, ``letter_max_bytes``, ``view_max_bytes``, ``effects_max_bytes``: lower than
    the declared limits when the changelog, the dead-letter, the credit-files or the effects topic takes less."""
    from faust.tables.table import Table

    from qrisk.faust_app import App, InOrder, Watchdog

    settings = settings or KafkaSettings()
    if rules is None:
        rules, policy_name = _settings_rules()
    door_context = door(rules.policy.utc_offset_hours)
    topics: Topics = settings.topics()
    conf: dict[str, Any] = dict(
        broker=[f"kafka://{s}" for s in settings.bootstrap_servers()],
        store="memory://",
        datadir=str(settings.worker_dir()),  # (made by run_worker, which says so in one line when it cannot)
        topic_partitions=settings.kafka_partitions,
        topic_replication_factor=settings.kafka_replication,
        topic_disable_leader=True,
        table_standby_replicas=1,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=settings.worker_session_timeout,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=REBALANCE_TIMEOUT_S,
        stream_wait_empty=False,
        producer_acks=-1,
        producer_linger=0.002,
        # an effect message with its sampling rows is ~9 kB: with the default 16 kB batches nearly every
        # message became its own produce request
        producer_max_batch_size=512 * 1024,
        # deliberate, not Faust's 1,000,000 default: a snapshot may be up to SNAPSHOT_MAX_BYTES
        # (the changelog's max.message.bytes is set to the same, ``ensure_message_limit``)
        producer_max_request_size=STATE_MESSAGE_MAX_BYTES,
        web_enabled=settings.worker_web_port > 0,
        web_port=settings.worker_web_port or 6066,
        # loopback unless set: Faust's /router/, /table/ and /stats/ answer anyone, with no key
        web_bind=settings.worker_web_host,
        web_in_thread=False,
    )
    credentials = _faust_credentials(settings)
    if credentials is not None:
        conf["broker_credentials"] = credentials
    conf.update(overrides)
    app = App(settings.worker_app_id, fetch_min_bytes=settings.worker_fetch_min_bytes,
              fetch_max_wait_ms=settings.worker_fetch_max_wait_ms, restore_stall_s=settings.worker_restore_stall_seconds, **conf)
    gc_timing = GcTiming()

    class PartitionedTable(Table):
        """The key names its partition (``S|p|…``, ``E|p|…``): the changelog partition is the log's."""

        def partition_for_key(self, key: Any) -> int:
            return key_partition(key.decode("utf-8") if isinstance(key, bytes) else key)

    # keys and values are bytes both ways (raw): what recovery reads back is what was written
    files = app.tables.add(PartitionedTable(app, name="files", beacon=app.tables.beacon, partitions=settings.kafka_partitions,
                                            key_type=bytes, value_type=bytes, help="credit files: snapshots + applied events",
                                            extra_topic_configs=dict(topics.changelog.config)))
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    ingress = app.topic(*[t.name for t in topics.ingress.values()], **raw)
    admissions = topics.admissions()  # what each ingress topic admits (qrisk.topics.INGRESS_ROLES)
    log_topic = app.topic(topics.events.name, **raw)
    fold = Fold(rules, topics.events.name, settings.worker_snapshot_every)
    fold.policy_name = policy_name
    if snapshot_max_bytes is not None:
        fold.snapshot_max_bytes = min(fold.snapshot_max_bytes, snapshot_max_bytes)
    if effects_max_bytes is not None:
        fold.effects_max_bytes = min(fold.effects_max_bytes, effects_max_bytes)
    app.qrisk_fold = fold  # type: ignore[attr-defined]
    contact = BrokerContact()
    app.qrisk_files = files  # type: ignore[attr-defined]
    app.qrisk_stats = {"applied": 0, "duplicates": 0, "conflicts": 0, "dead_letters": 0, "normalised": 0, "batches": 0,  # type: ignore[attr-defined]
                       "letters_truncated": 0, "views_skipped": 0, "views_failed": 0, "not_ours": 0, "effects_too_large": 0,
                       "lost_messages": 0, "tables_reread": 0,
                       "restores_ended": 0}
    # records deleted (retention) before this worker read them, per topic and as said on /qrisk/healthz/
    lost_by_topic: dict[str, int] = collections.Counter()
    lost_ranges: list[dict[str, Any]] = []
    letter_max = min(LETTER_MAX_BYTES, letter_max_bytes or LETTER_MAX_BYTES)
    view_max = min(VIEW_MAX_BYTES, view_max_bytes or VIEW_MAX_BYTES)
    stats = app.qrisk_stats  # type: ignore[attr-defined]
    # where the fold's time goes since the last views timer (logged there): fold, waiting for effects, for the state
    timing: collections.Counter = collections.Counter()
    log_partitions = list(range(settings.kafka_partitions))

    def _table_key(key: Any) -> str:
        return key.decode("utf-8") if isinstance(key, bytes) else key

    changelog_name = topics.changelog.name
    effects_name, dlq_name, views_name, log_name = (topics.effects.name, topics.dead_letters.name, topics.credit_files.name,
                                                    topics.events.name)

    async def _send(sends: list[tuple[str, bytes | None, bytes | None, int | None]]) -> list[asyncio.Future]:
        """Hand messages to the producer; the futures resolve when the broker acknowledged each.

        Straight to the producer, not through Faust's channel or table machinery: every
        durability point below is a future awaited here, never a buffer Faust flushes later."""
        producer = app.producer
        return [await producer.send(topic, key, value, partition, None, None) for topic, key, value, partition in sends]

    async def _publish(sends: list[tuple[str, bytes | None, bytes | None, int | None]]) -> None:
        """Send and wait for the broker's acknowledgement of every message."""
        futures = await _send(sends)
        if futures:
            await asyncio.gather(*futures)

    def _state_sends(writes: list[tuple[str, bytes | None]]) -> list[tuple[str, bytes | None, bytes | None, int | None]]:
        """Table writes: applied to the in-memory table now, sent to the changelog by the caller.

        Not ``files[key] = value``: that queues the changelog message in Faust's producer buffer,
        and Faust commits offsets after ``producer.flush()``, whose buffer flush gives up once
        100 ms pass without a send (``ProducerBuffer.flush_atmost``).  On a busy machine it
        returned with changelog messages unsent, the offsets were committed, and a worker killed
        then lost the state of events its successor would never see again (the scale-out test's
        "enterprise one event short").  Here the changelog is sent like any other message and
        the batch is acknowledged only once every write is."""
        sends = []
        store = files.data
        for key, value in writes:
            k = key.encode("utf-8")
            p = key_partition(key)
            if key.startswith("W|"):
                # the partition's last folded offset, with its snapshots and entries as they stand after
                # the writes before it: what a successor's restore must hold (``Fold.keys_differ``)
                value = b'{"offset": %d, "keys": %d}' % (json.loads(value)["offset"], key_count[p])
            elif value is None:
                key_count[p] -= store.pop(k, None) is not None
            else:
                key_count[p] += k not in store
            if value is not None:
                store[k] = value
            sends.append((changelog_name, k, value, p))
        return sends

    # per log partition held here, the snapshots and entries its table holds (the mark's "keys")
    key_count: collections.Counter = collections.Counter()

    async def _send_effects(out: BatchOutput) -> list[asyncio.Future]:
        """Hand a batch's effects messages to the producer, one future each (in ``out.effects``' order).
        One the producer refuses for its size before sending comes back as a failed future, answered
        with the others the broker refuses (``_replace_effects``)."""
        producer = app.producer
        futures = []
        for key, value in out.effects:
            try:
                futures.append(await producer.send(effects_name, key, value, None, None, None))
            except Exception as exc:  # noqa: BLE001 - a size refusal is answered in _make_durable, anything else stops the batch
                if not _too_large(exc):
                    raise
                refused = asyncio.get_running_loop().create_future()
                refused.set_exception(exc)
                futures.append(refused)
        return futures

    async def _replace_effects(refused: list[tuple[bytes, bytes, EffectOrigin]]) -> None:
        """Effects messages the broker refused for their size: each replaced by a processing.failed one
        and dead-lettered (``oversized_effects``), and waited for.  Stopping instead would meet the same
        event at every start, its partition stuck for good."""
        limit = min(EFFECTS_RETRY_MAX_BYTES, fold.effects_max_bytes)
        sends, letters = [], []
        for key, value, origin in refused:
            small, letter = oversized_effects(value, origin, limit)
            stats["effects_too_large"] += 1
            log.error("fold: Kafka 因消息过大拒收 %s 的处理结果（%s 字节），已改为 processing.failed 并存入死信 %s / the broker refused the "
                      "effects message of %s (%s bytes) for its size; replaced by a processing.failed one, dead letter %s: %s",
                      origin.position, len(value), letter.dead_letter_id, origin.position, len(value), letter.dead_letter_id, letter.reason)
            sends.append((effects_name, key, small, None))
            letters.append(letter)
        await asyncio.gather(*(await _send(sends)), *(await _send_letters(letters, utc_now())))

    async def _send_letters(letters: list[DeadLetter], now: dt.datetime) -> list[asyncio.Future]:
        """Hand dead letters to the producer (each bounded to what the topic takes: ``dead_letter_value``);
        the futures resolve when the broker acknowledged each.  A letter the broker refuses for its size
        all the same (a topic whose limit could not be raised) goes again cut to its first bytes, with
        their size and sha256: a record the worker cannot keep whole must not stop it at every start."""
        out = []
        for dl in letters:
            key = dl.dead_letter_id.encode("utf-8")
            try:
                fut = await app.producer.send(dlq_name, key, dead_letter_value(dl, now, letter_max), None, None, None)
            except Exception as exc:  # noqa: BLE001 - refused before sending: the bounded letter, or the error
                if not _too_large(exc):
                    raise
                fut = None
            out.append(asyncio.ensure_future(_letter_delivered(fut, dl, key, now)))
        return out

    async def _letter_delivered(fut: Any, dl: DeadLetter, key: bytes, now: dt.datetime) -> Any:
        if fut is not None:
            try:
                return await fut
            except Exception as exc:  # noqa: BLE001 - a size refusal is answered below, anything else stops the batch
                if not _too_large(exc):
                    raise
        stats["letters_truncated"] += 1
        log.error("dead letter %s (%s bytes of raw input, at %s) refused for its size; kept with its first %s bytes, their size and "
                  "sha256 / 拒收记录过大被拒，改为保存截断版本", dl.dead_letter_id, len(dl.raw), dl.position, LETTER_RETRY_HEAD_BYTES)
        small = bounded_letter_value(dl, now, LETTER_RETRY_HEAD_BYTES)
        return await (await app.producer.send(dlq_name, key, small, None, None, None))

    async def _in_order(order: "InOrder", batch: list) -> list:
        """The batch without the messages ``order`` refuses (a hole before them: Faust dropped one);
        those stay unacknowledged for good (no commit passes them) and come again after a seek."""
        admitted = []
        for ev in batch:
            m = ev.message
            if order.admit(m.tp, m.offset):
                admitted.append(ev)
            else:
                m.incref()
        for tp, offset in order.take_seeks():
            await app.consumer.seek(tp, offset)
        return admitted

    ingress_order: list[InOrder] = []
    log_order: list[InOrder] = []

    def _order(holder: list[InOrder]) -> InOrder:
        if not holder:  # the consumer exists once the app runs
            holder.append(InOrder(app.consumer))
        return holder[0]

    @app.timer(interval=1.0)
    async def _seek_again() -> None:  # pragma: no cover - exercised against the real broker
        for holder in (ingress_order, log_order):
            for order in holder:
                for tp, offset in order.due():
                    # records deleted by retention never come: the partition goes on from its first record
                    first = (await app.consumer.earliest_offsets(tp)).get(tp)
                    if first is not None and first > offset:
                        # lost for good: what was never validated never reached the log; said, counted and on the health page
                        n = first - offset
                        stats["lost_messages"] += n
                        lost_by_topic[tp.topic] += n
                        zh = (f"{tp.topic} 分区 {tp.partition} 的第 {offset}–{first - 1} 条记录（共 {n} 条）在 worker 读取之前已被 Kafka 按保留期删除，"
                              f"未进入事件日志；请让发送方重发")
                        en = (f"{tp.topic}/{tp.partition}: offsets {offset} to {first - 1} are gone (retention): {n} records deleted before "
                              f"a worker read them never reached the log; have their senders send them again")
                        lost_ranges.append({"topic": tp.topic, "partition": tp.partition, "offsets": f"{offset}-{first - 1}", "messages": n,
                                            "at": utc_now().isoformat(timespec="seconds"), "problem": f"{zh} / {en}"})
                        del lost_ranges[:-20]
                        log.error("%s / %s; going on from %s", zh, en, first)
                        order.accept_from(tp, first)
                        # the one hole the commit may pass (Faust's gap: its offsets count as acknowledged)
                        await app.consumer._add_gap(tp, offset, first - 1)
                        await app.consumer.seek(tp, first)
                        continue
                    log.warning("%s/%s: offset %s has not come again yet; seeking back to it once more", tp.topic, tp.partition, offset)
                    await app.consumer.seek(tp, offset)

    agent_topics = {*(t.name for t in topics.ingress.values()), topics.events.name}
    watchdog: list[Watchdog] = []

    @app.timer(interval=2.0)
    async def _watch_partitions() -> None:  # pragma: no cover - exercised against the real broker
        consumer = app.consumer
        if app.rebalancing or not consumer.flow_active:
            return  # the assignment is changing: seeks to the committed offsets are under way
        if not watchdog:
            watchdog.append(Watchdog(consumer))
        for tp, committed, high in watchdog[0].stuck(tp for tp in consumer.assignment() if tp.topic in agent_topics):
            log.warning("%s/%s: %s messages left to read past the committed offset %s, and none reached the agents "
                        "for %.0f s; reading the partition again from there", tp.topic, tp.partition, high - committed,
                        committed, watchdog[0].after_s)
            await consumer.seek(tp, committed)

    def _note_batch(stage: str, batch: list, t_put: float) -> None:
        """Where the time goes on the way: how long the agent waited for room among the batches in
        flight, and how old the batch's oldest message was (its producer's timestamp) when done."""
        now = time.perf_counter()
        timing[f"{stage}_blocked_s"] += now - t_put
        first = batch[0].message.timestamp if batch else None
        if first:
            age = time.time() - first
            if age > timing[f"{stage}_age_max_s"]:
                timing[f"{stage}_age_max_s"] = age
            if age > 1.0 and now - slow_noted.get(stage, 0.0) > 1.0:
                slow_noted[stage] = now
                log.warning("%s: a batch of %d done %.2f s after its first message was produced (waited %.2f s for room in flight)",
                            stage, len(batch), age, now - t_put)

    slow_noted: dict[str, float] = {}

    @app.agent(ingress, name="normalise")
    async def normalise_agent(stream):  # pragma: no cover - exercised against the real broker
        async for batch in stream.take_events(settings.worker_batch, within=settings.worker_batch_seconds):
            try:
                batch = await _in_order(_order(ingress_order), batch)
                if fold.ahead_full(len(batch)):
                    # let the fold catch up, so that it takes what is validated here instead of
                    # validating it again; bounded, for a fold that is stalled rather than busy
                    t_wait = time.perf_counter()
                    while fold.ahead_full(len(batch)) and time.perf_counter() - t_wait < AHEAD_WAIT_S:
                        await asyncio.sleep(0.005)
                    timing["normalise_ahead_wait_s"] += time.perf_counter() - t_wait
                now = utc_now()
                now_json = moment_json(now)
                # the log partitions this worker folds: another worker's fold parses its own
                folding = {tp.partition for tp in app.consumer.assignment() if tp.topic == log_name}
                sends: list[tuple[str, bytes | None, bytes | None, int | None]] = []
                letters: list[DeadLetter] = []
                for ev in batch:
                    m = ev.message
                    raw = m.value or b""
                    value = None
                    valid = arriving(raw, door_context, now, now_json)  # the ingress: arriving events
                    if valid is not None:
                        letter = None
                        event, value = valid
                    else:
                        headers = {k: v for k, v in (m.headers or [])} if not isinstance(m.headers, dict) else dict(m.headers)
                        event, letter = normalise(m.topic, m.partition, m.offset, raw, headers, now, door_context)
                    if letter is None and (late := from_the_future([event], raw, now, rules.policy.utc_offset_hours)):
                        # as the HTTP door refuses it: an event dated after it arrived would run the fold's clock ahead
                        letter = DeadLetter("kafka", ingress_position(m.topic, m.partition, m.offset, m.headers), raw, late[0].reason,
                                            late[0].errors, dead_letter_id=f"kafka:{m.topic}:{m.partition}:{m.offset}")
                    if letter is None:
                        # valid, but is it this topic's to send?  (as an HTTP key's role: checked after validation)
                        letter = admit(admissions, m.topic, m.partition, m.offset, raw, m.headers, event)
                    if letter is not None:
                        letters.append(letter)
                        continue
                    value = value or event_value(event)
                    if len(value) > EVENT_MAX_BYTES:
                        # the log would refuse it and the worker stop at every start on it: as the API refuses it
                        error = too_large_error(len(value))
                        letters.append(DeadLetter("kafka", ingress_position(m.topic, m.partition, m.offset, m.headers), raw,
                                                  f"too_large: {error['reason']}", [error],
                                                  dead_letter_id=f"kafka:{m.topic}:{m.partition}:{m.offset}"))
                    elif event.enterprise_id == "*":  # (no ingress topic admits a clock.tick: ``IngressAdmission``)
                        sends.extend((log_name, TICK_KEY, value, p) for p in log_partitions)
                    else:
                        key = event.enterprise_id.encode("utf-8")
                        partition = log_partition(key, len(log_partitions))
                        if partition in folding:
                            fold.remember(value, event, partition)
                        sends.append((log_name, key, value, partition))
                futures = await _send(sends) + await _send_letters(letters, now)
                for ev in batch:
                    ev.message.incref()  # acknowledged by _ingress_durable once the log has every event of it
                t_put = time.perf_counter()
                await ingress_inflight.put((batch, futures))
                _note_batch("normalise", batch, t_put)
                stats["normalised"] += len(batch) - len(letters)
                stats["dead_letters"] += len(letters)
            except BaseException as exc:  # noqa: BLE001 - incl. cancellation: never let Faust acknowledge this batch
                if app.should_stop:  # (a stop asked for: see _make_durable)
                    log.warning("normalise: stopping with a batch not published (%s: %s); left unacknowledged, it comes again",
                                type(exc).__name__, exc)
                    return
                _die(f"normalise: {type(exc).__name__}: {exc}")

    # validated batches whose log messages are on their way: acknowledged (committable) once the
    # broker has them all; meanwhile the next batch is validated
    ingress_inflight: asyncio.Queue = asyncio.Queue(maxsize=max(1, settings.worker_inflight_batches))

    @app.task
    async def _ingress_durable() -> None:  # pragma: no cover - exercised against the real broker
        while True:
            batch, futures = await ingress_inflight.get()
            try:
                if futures:
                    await asyncio.gather(*futures)
                    contact.acked()
            except BaseException as exc:  # noqa: BLE001 - nothing of this batch may be acknowledged
                if app.should_stop:  # (a stop asked for: see _make_durable)
                    log.warning("normalise: stopping with a batch not yet in the log (%s: %s); left unacknowledged, it comes again",
                                type(exc).__name__, exc)
                    return
                _die(f"normalise: publishing to the log: {type(exc).__name__}: {exc}")
            for ev in batch:
                ev.ack()
            ingress_inflight.task_done()

    # Folded batches on their way to durable, in log order.  The fold does not wait for the
    # broker: it goes on with the next batch while this one's effects travel, and the events of
    # a batch are acknowledged (so their offsets may be committed) only when ``_make_durable`` has
    # seen its effects and then its state acknowledged.  The bound keeps memory and redelivery small.
    inflight: asyncio.Queue = asyncio.Queue(maxsize=max(1, settings.worker_inflight_batches))

    @app.task
    async def _make_durable() -> None:  # pragma: no cover - exercised against the real broker
        while True:
            # every batch queued meanwhile goes in one round: one wait for the broker, not one per batch
            jobs = [await inflight.get()]
            while not inflight.empty():
                jobs.append(inflight.get_nowait())
            try:
                t0 = time.perf_counter()
                # effects and dead letters durable first (a state that has seen an event whose
                # effects are lost would skip it on redelivery) …
                effect_futures = [f for _, futures, _, _ in jobs for f in futures]
                if effect_futures:
                    results = await asyncio.gather(*effect_futures, return_exceptions=True)
                    refused, at = [], 0
                    for _, futures, _, sent in jobs:
                        for i in range(len(futures)):
                            result = results[at + i]
                            if isinstance(result, BaseException):
                                if i < len(sent) and _too_large(result):
                                    refused.append(sent[i])  # (an effects message: futures start with them)
                                else:
                                    raise result
                        at += len(futures)
                    if refused:
                        await _replace_effects(refused)
                t1 = time.perf_counter()
                # … then the state, in batch order (one producer: the changelog keeps that order)
                await _publish([send for _, _, writes, _ in jobs for send in _state_sends(writes)])
                contact.acked()
                timing["effects_wait_s"] += t1 - t0
                timing["state_wait_s"] += time.perf_counter() - t1
                timing["durable_rounds"] += 1
            except BaseException as exc:  # noqa: BLE001 - incl. cancellation: nothing of these batches may be acknowledged
                if app.should_stop:
                    # a stop asked for (SIGTERM: a scale-down, a deploy) stopped the producer under these batches:
                    # left unacknowledged, their events come again to the partitions' next owner, as after any
                    # stop; a clean exit, not the unsafe one (70) a service manager would read as a crash
                    log.warning("fold: stopping with %d folded batches not durable (%s: %s); left unacknowledged, their "
                                "events come again", len(jobs), type(exc).__name__, exc)
                    return
                _die(f"fold: making batches durable: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            for batch, _, _, _ in jobs:
                for ev in batch:
                    ev.ack()  # the reference taken in fold_agent: now the offset may be committed
                inflight.task_done()

    # partition -> the consumer generation whose assignment ``on_rebalance_complete`` loaded it for
    loaded_for: dict[int, int] = {}
    # held by the fold from taking a batch until its writes are queued for durable, and by the
    # rebuild at a rebalance: a rebuild never runs between a batch's fold and its writes
    fold_lock = asyncio.Lock()

    def _ours(batch: list) -> list:
        """The batch without the messages of partitions not loaded for the current assignment.

        Those are left unacknowledged: a message of a partition revoked since it was taken (the
        ``take_events`` buffer outlives a rebalance) is the new owner's to fold and commit, and
        one of a partition assigned here but not yet rebuilt comes again with the seek to the
        committed offsets.  Folding them here (as before: the partition reloaded from a table
        Faust had partly purged) published effects and changelog entries over the owner's."""
        generation = app.consumer_generation_id
        kept, left = [], collections.Counter()
        for ev in batch:
            m = ev.message
            if m.generation_id == generation and loaded_for.get(m.partition) == generation:
                kept.append(ev)
            else:
                m.incref()  # never acknowledged here
                left[m.partition] += 1
        if left:
            stats["not_ours"] += sum(left.values())
            log.info("fold: messages of partitions not loaded for this assignment (generation %s) left unfolded: %s",
                     generation, dict(sorted(left.items())))
        return kept

    async def _check_restored(batch: list) -> None:
        """Each partition's first message since it was loaded, against what its table says was folded
        (``table_behind``).  A table short of what the group committed would have the fold go on from
        the commit without the events before it: credit files short of events for good, and their
        views with them (the churn test saw a whole partition's files stop where another worker had
        left them).  Its partition is read again from the changelog and loaded from that; if the
        changelog is short too (deleted, or restored from an older copy than the group's offsets),
        the worker stops, saying how to fold the log again."""
        firsts: dict[int, Any] = {}
        for ev in batch:
            m = ev.message
            if m.partition in fold.unchecked and m.partition not in firsts:
                firsts[m.partition] = m
        for p, m in sorted(firsts.items()):
            folded_to = fold.behind(p, m.offset)
            if folded_to is None:
                continue
            again, n = await _reread(p)
            if again is None or table_behind(again, m.offset):
                first = (await app.consumer.earliest_offsets(m.tp)).get(m.tp)
                if first is not None and first >= m.offset:
                    # the log's records before this one are gone (deleted by hand: the log is kept for good);
                    # what that means is said where the hole is met (_seek_again), not a state to refuse
                    log.warning("fold: partition %s: the table says folded to offset %s, the log starts at %s", p, again, first)
                    continue
                _die(f"fold: 分区 {p} 的状态（worker 快照主题 {changelog_name}）只到日志第 {again if again is not None else '?'} 条，"
                     f"而消费组已提交到第 {m.offset} 条：其间事件的结果不在任何快照中，继续折叠会得到缺少这些事件的诚信档案。"
                     f"快照主题被删除或从较旧的备份恢复？停止所有 qrisk worker 与 qrisk sink 后运行 qrisk rebuild --kafka --policy "
                     f"{fold.policy_name} / partition {p}: the state on {changelog_name} goes to log offset {again}, the group has "
                     f"committed to {m.offset}: the events between are in no snapshot, and folding on would make credit files without "
                     f"them (the snapshot topic deleted, or restored from an older copy than the group's offsets?); stop every "
                     f"`qrisk worker` and `qrisk sink` and run `qrisk rebuild --kafka --policy {fold.policy_name}`")
            log.warning("fold: partition %s: the table Faust restored went to log offset %s, the group committed to %s: read again "
                        "from %s (to offset %s), %s credit files rebuilt / 分区 %s 恢复的状态少于已提交的进度，已从快照主题重新读取",
                        p, folded_to, m.offset, changelog_name, again, n, p)

    async def _reread(p: int) -> tuple[int | None, int]:
        """Partition ``p`` of the table read again from the changelog, outside Faust's restore, and its
        credit files rebuilt from that: the offset its mark says was folded, and the files."""
        items = await asyncio.to_thread(read_state_partition, settings, changelog_name, p)
        store = files.data
        tracked = getattr(store, "_key_partition", {})
        for k in [k for k in list(store.keys()) if key_partition(_table_key(k)) == p]:
            store.pop(k, None)
            tracked.pop(k, None)
        for k, v in items:
            store[k.encode("utf-8")] = v
        out = BatchOutput()
        n = fold.load(p, items, out)
        key_count[p] = fold.restored_keys[p]
        fold.unchecked.discard(p)  # (what called this was its check, or will compare with this copy)
        if out.writes:
            await inflight.put(([], [], out.writes, []))
        stats["tables_reread"] += 1
        return fold.folded_to.get(p), n

    @app.agent(log_topic, name="fold")
    async def fold_agent(stream):  # pragma: no cover - exercised against the real broker
        async for batch in stream.take_events(settings.worker_batch, within=settings.worker_batch_seconds):
            try:
                async with fold_lock:
                    batch = _ours(batch)
                    batch = await _in_order(_order(log_order), batch)
                    if fold.unchecked:
                        await _check_restored(batch)
                    out = BatchOutput()
                    t0 = time.perf_counter()
                    for ev in batch:
                        m = ev.message
                        fold.apply(m.partition, m.offset, m.value or b"", int(m.timestamp * 1000) if m.timestamp else None, out)
                    fold.mark_folded(out)
                    t1 = time.perf_counter()
                    futures = await _send_effects(out) + await _send_letters(out.letters, utc_now())
                    for ev in batch:
                        ev.message.incref()  # Faust's own ack after this body no longer commits it: _make_durable acks
                    t_put = time.perf_counter()
                    await inflight.put((batch, futures, out.writes, [(k, v, o) for (k, v), o in zip(out.effects, out.origins)]))
                    _note_batch("fold", batch, t_put)
                    timing["fold_s"] += t1 - t0
                    timing["validated_hits"] += fold.validated_hits
                    fold.validated_hits = 0
                    timing["send_s"] += time.perf_counter() - t1
                    timing["events"] += len(batch)
                    timing["batches"] += 1
                    stats["applied"] += out.applied
                    stats["duplicates"] += out.duplicates
                    stats["conflicts"] += out.conflicts
                    stats["dead_letters"] += len(out.letters)
                    stats["effects_too_large"] += out.effects_too_large
                    stats["batches"] += 1
            except BaseException as exc:  # noqa: BLE001 - incl. cancellation: never let Faust acknowledge this batch
                _die(f"fold: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")

    @app.timer(interval=settings.worker_view_seconds)
    async def publish_views() -> None:  # pragma: no cover - exercised against the real broker
        # A few files at a time, spread over half the interval.  Building every changed file's
        # view in one go held the event loop for 0.4-0.9 s after a busy interval (~1 ms a view),
        # and every event arriving meanwhile waited; and a view is the whole file (~70 kB): a
        # thousand at once is a 70 MB burst through the producer, the broker, the sink and
        # ClickHouse, which the effects queue behind.  The files changed until now go; one
        # changed again meanwhile waits for the next interval.
        # Views are copies (the state is the changelog's): one that cannot be published is
        # logged and counted, never a reason to stop the worker, which then stopped every interval.
        pending = sorted(fold.dirty)
        pace = min(0.5, settings.worker_view_seconds / 2 / max(1, -(-len(pending) // VIEW_SLICE)))
        futures: list[tuple[str, asyncio.Future]] = []
        count = 0
        for start in range(0, len(pending), VIEW_SLICE):
            t0 = time.perf_counter()
            views = fold.views(eids=pending[start:start + VIEW_SLICE])
            t1 = time.perf_counter()
            timing["views_s"] += t1 - t0
            if not views:
                continue
            for k, v in views:
                eid = k.decode("utf-8")
                if len(v) > view_max:
                    stats["views_skipped"] += 1
                    log.error("views: the credit file of %s is %s bytes as a view, more than the %s the credit-files topic takes; "
                              "not published (its state and effects are unaffected) / %s 的诚信档案视图超过上限，未发布",
                              eid, len(v), view_max, eid)
                    continue
                try:
                    futures.append((eid, await app.producer.send(views_name, k, v, None, None, None)))
                    count += 1
                except Exception as exc:  # noqa: BLE001 - see above
                    _view_failed(eid, exc)
            timing["views_publish_s"] += time.perf_counter() - t1
            await asyncio.sleep(pace)
        if futures:
            t1 = time.perf_counter()
            results = await asyncio.gather(*(f for _, f in futures), return_exceptions=True)
            for (eid, _), result in zip(futures, results):
                if isinstance(result, BaseException):
                    _view_failed(eid, result)
            timing["views_publish_s"] += time.perf_counter() - t1
        timing["views"] += count
        if timing["events"] or count:
            timing.update(gc_timing.take())
            log.info("fold: %s", {k: round(v, 3) for k, v in timing.items()})
            timing.clear()

    def _view_failed(eid: str, exc: BaseException) -> None:
        if _too_large(exc):
            stats["views_skipped"] += 1
        else:
            stats["views_failed"] += 1
            if eid in fold.files:
                fold.dirty.add(eid)  # (the broker was away: the next interval tries again)
        log.error("views: the credit file of %s was not published: %s: %s / %s 的诚信档案视图未能发布", eid, type(exc).__name__, exc, eid)

    # The cyclic collector, left to itself, walked the whole heap (every credit file, every
    # memoised judgement: millions of objects) in each full collection: 0.2-0.5 s with the event
    # loop stopped, and ~200 µs per event of CPU over a benchmark run.  Instead, what survived
    # until now is frozen a few times a second (O(1)): automatic collections then walk only what
    # was allocated since.  Short-lived cycles are mostly collected young before a freeze; one
    # that is frozen, or becomes garbage once frozen, waits for the occasional full collection
    # below (the state itself is freed by reference counting: replaced files and dropped
    # partitions hold no cycles).
    @app.task
    async def freeze_heap() -> None:  # pragma: no cover - exercised against the real broker
        # set when the worker runs, not when the app is made (a test process makes apps too)
        gc.set_threshold(*GC_THRESHOLDS)
        gc_timing.install()
        last_full = time.monotonic()
        while True:
            await asyncio.sleep(GC_FREEZE_SECONDS)
            if time.monotonic() - last_full > GC_FULL_SECONDS:
                last_full = time.monotonic()
                gc.unfreeze()
                gc.collect()
            gc.freeze()

    @app.task
    async def _loop_lag() -> None:  # pragma: no cover - exercised against the real broker
        # what holds the event loop (and so every event behind it) shows up in the log
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.05)
            late = time.perf_counter() - t0 - 0.05
            timing["loop_lag_max_s"] = max(timing["loop_lag_max_s"], late)
            if late > 0.25:
                log.warning("fold: the event loop was held for %.2f s", late)

    @app.on_partitions_revoked.connect
    async def on_revoked(app_, revoked, **kwargs) -> None:  # pragma: no cover
        # what was folded before the revocation reaches the table first, so that a partition
        # assigned back to this worker is rebuilt from everything it had made durable
        try:
            await asyncio.wait_for(inflight.join(), timeout=REVOKE_WAIT_S)
        except asyncio.TimeoutError:  # the broker did not acknowledge: those events come again anyway
            log.warning("fold: %s folded batches not yet durable at a rebalance", inflight.qsize())
        gone = {tp.partition for tp in revoked if tp.topic == topics.events.name}
        fold.drop(gone)
        for p in gone:
            loaded_for.pop(p, None)
        for holder in (ingress_order, log_order):
            for order in holder:
                order.forget(revoked)
        for dog in watchdog:
            dog.forget(revoked)

    @app.on_rebalance_complete.connect
    async def on_rebalance_complete(app_, **kwargs) -> None:  # pragma: no cover - exercised against the real broker
        # The loaded files are exactly the assigned log partitions', each rebuilt from the table
        # now that Faust has restored it: a partition kept through the rebalance too (its files
        # then equal the changelog's whatever ran meanwhile), and not at the partition's next
        # message (rebuilt files are changed files, so the next views interval publishes them:
        # until then a successor left the views its predecessor had not published unpublished).
        generation = app.consumer_generation_id
        assigned = {tp.partition for tp in app.consumer.assignment() if tp.topic == log_name}
        contact.acked()  # (the group's coordinator answered; fetches begin after the tables are restored)
        async with fold_lock:
            # what was folded before reaches the table first (its writes are applied to it on the way);
            # a broker that acknowledges nothing for that long leaves the table short of them, and a
            # rebuild from it would fold on a partial copy: the worker stops, and starts again from the changelog
            try:
                await asyncio.wait_for(inflight.join(), timeout=REBALANCE_TIMEOUT_S)
            except asyncio.TimeoutError:
                _die(f"fold: {inflight.qsize()} folded batches not durable {REBALANCE_TIMEOUT_S:.0f} s into a rebalance")
            fold.drop(set(fold.loaded) - assigned)
            for p in [p for p in loaded_for if p not in assigned]:
                del loaded_for[p]
            _purge(assigned)
            out = BatchOutput()
            items = [(_table_key(k), v) for k, v in list(files.data.items())]
            # partitions whose restore stopped getting records, ended by the app's watch: the table has what came
            forced = {tp.partition for tp in app.restores_forced if tp.topic == changelog_name}
            app.restores_forced.clear()  # (one not assigned now is read from its start when assigned again)
            for p in sorted(assigned):
                part = BatchOutput()
                n = fold.load(p, items, part)
                key_count[p] = fold.restored_keys[p]
                loaded_for[p] = generation
                log.info("fold: partition %s: %s credit files rebuilt from the table at assignment", p, n)
                if p in forced:
                    _, n = await _reread(p)
                    fold.unchecked.add(p)
                    log.warning("fold: partition %s: its restore was ended unfinished: read again from %s (%s snapshots and "
                                "entries), %s credit files rebuilt / 分区 %s 的状态恢复未完成，已从快照主题重新读取",
                                p, changelog_name, fold.restored_keys[p], n, p)
                elif not fold.keys_differ(p):
                    out.writes += part.writes
                else:
                    # Faust restored part of the changelog (its mark, rewritten with every batch, came through);
                    # the partial copy's deletions and mark are not written
                    said, restored = fold.said_keys[p], fold.restored_keys[p]
                    _, n = await _reread(p)
                    fold.unchecked.add(p)  # (its first message is still compared with the copy read)
                    log.warning("fold: partition %s: the table Faust restored had %s snapshots and entries, its mark says %s: read "
                                "again from %s (%s), %s credit files rebuilt / 分区 %s 恢复的状态不完整，已从快照主题重新读取",
                                p, restored, said, changelog_name, fold.restored_keys[p], n, p)
            if out.writes:
                # (the entries a snapshot covers, deleted: in order with the fold's own writes)
                await inflight.put(([], [], out.writes, []))
            unlisted = fold.unregistered_listings(len(log_partitions))
            if unlisted is not None:
                log.warning("fold: partitions %s: 警告：%s", ",".join(map(str, sorted(assigned))), unlisted)

    def _purge(assigned: set[int]) -> None:
        """Drop from the table every key of a log partition not assigned here.

        Faust's memory store drops, for partitions no longer active, only the keys it recovered
        from the changelog, and only after a recovery; those this worker wrote itself stayed, so a
        partition assigned here again was restored on top of them (and before this, even folded
        from what was left).  Without them a partition assigned again is the changelog's alone."""
        store = files.data
        tracked = getattr(store, "_key_partition", {})
        stale = [k for k in list(store.keys()) if key_partition(_table_key(k)) not in assigned]
        for k in stale:
            store.pop(k, None)
            tracked.pop(k, None)
        for p in [p for p in key_count if p not in assigned]:
            del key_count[p]
        if stale:
            log.info("fold: %s table keys of partitions not assigned here dropped", len(stale))

    @app.page("/qrisk/healthz/")
    async def qrisk_health(web, request):  # pragma: no cover - served by Faust's web server, tested against the real broker
        fetched_at, holding = last_fetch(app.consumer)
        silent = contact.problem(fetched_at, holding)
        mixed, stale = fold.policy_mismatch(), fold.stale_snapshots
        problems = [
            silent,  # the broker away: nothing read or written meanwhile
            # "degraded" once records were deleted before this worker read them, until it restarts (the log keeps it)
            lost_ranges[-1]["problem"] if lost_ranges else None,
            # files restored from snapshots of another fold version (an upgrade), until the log is folded again
            (f"{stale} 个诚信档案沿用其他版本处理逻辑的结果：停止所有 qrisk worker 与 qrisk sink 后运行 qrisk rebuild --kafka --policy "
             f"{fold.policy_name} / {stale} credit files carry results of another fold version: stop every "
             f"`qrisk worker` and `qrisk sink` and run `qrisk rebuild --kafka --policy {fold.policy_name}`") if stale else None,
            # files restored from snapshots of another policy, until `qrisk rebuild --kafka` folds the log again
            (f"{mixed} 个诚信档案部分按另一份策略或标准目录折叠：停止所有 qrisk worker 与 qrisk sink 后运行 qrisk rebuild --kafka --policy "
             f"{fold.policy_name} / {mixed} credit files were folded in part under another policy or catalogue: stop every "
             f"`qrisk worker` and `qrisk sink` and run `qrisk rebuild --kafka --policy {fold.policy_name}`") if mixed else None,
            # a listing in the policy naming an enterprise the partitions held here have no file of (a typo), while it lasts
            fold.unregistered_listings(len(log_partitions)),
        ]
        problem = next((p for p in problems if p), None)
        return web.json({"status": "degraded" if problem else "ok", "problem": problem,
                         **({"problems": [p for p in problems if p]} if problem else {}), **({"lost": lost_ranges} if lost_ranges else {}),
                         "lost_messages": stats["lost_messages"], "policy_mismatch_snapshots": mixed, "stale_snapshots": stale,
                         "last_fetch_seconds_ago": None if fetched_at is None else round(time.time() - fetched_at, 1)})

    @app.page("/qrisk/metrics/")
    async def qrisk_metrics(web, request):  # pragma: no cover - served by Faust's web server, tested against the real broker
        consumer = app.consumer
        assigned = [tp for tp in consumer.assignment() if tp.topic in agent_topics]
        ends = {tp: consumer.highwater(tp) for tp in assigned}
        committed = {tp: consumer._committed_offset.get(tp) for tp in assigned}
        lost = {t: lost_by_topic.get(t, 0) for t in sorted(agent_topics)}
        stats["restores_ended"] = app.restores_forced_total
        return web.text(worker_metrics(stats, app.monitor, fold.stale_snapshots, ends, committed, lost, fold.policy_mismatch()).decode("ascii"),
                        content_type="text/plain; version=0.0.4")

    return app


def worker_metrics(stats: dict[str, int], monitor: Any, stale_snapshots: int = 0, ends: dict[Any, int | None] | None = None,
                   committed: dict[Any, int | None] | None = None, lost: dict[str, int] | None = None,
                   policy_mismatch: int = 0) -> bytes:
    """The worker's counts and, per partition it reads, how far the group's committed offset is
    behind the end the last fetch saw, as Prometheus text.

    ``ends``, ``committed``: per assigned partition, the consumer's high-water mark and the group's
    committed offset (read at assignment, then this worker's commits); the monitor's, which know only
    what this process fetched and committed itself, fill in.  A partition assigned here had no line
    until this process committed on it, so a restarted worker with a backlog showed none."""
    from qrisk.pages import prometheus_text

    ends = dict(ends or {})
    committed = dict(committed or {})
    for tp, end in monitor.tp_end_offsets.items():
        if ends.get(tp) is None or (end is not None and end > ends[tp]):
            ends[tp] = end
    for tp, offset in monitor.tp_committed_offsets.items():
        if committed.get(tp) is None or (offset is not None and offset > committed[tp]):
            committed[tp] = offset
    lag = []
    for tp in sorted(ends, key=lambda tp: (tp.topic, tp.partition)):
        end = ends[tp]
        if end is None:
            continue  # not fetched yet: its end is not known
        # both are the next offset (to read, to be written), as Kafka counts them; a partition
        # the group never committed on is behind by all of it
        lag.append(({"topic": tp.topic, "partition": str(tp.partition)}, max(0, end - (committed.get(tp) or 0))))
    return prometheus_text([
        ("qrisk_worker_events_applied_total", "counter", "events folded into credit files", stats["applied"]),
        ("qrisk_worker_duplicates_total", "counter", "events already folded (a retry or a redelivery): no second effect", stats["duplicates"]),
        ("qrisk_worker_conflicts_total", "counter", "an event id folded before, sent again with other content: dead-lettered", stats["conflicts"]),
        ("qrisk_worker_dead_letters_total", "counter", "messages kept in the dead letters instead of folded", stats["dead_letters"]),
        ("qrisk_worker_normalised_total", "counter", "ingress messages validated and written to the log", stats["normalised"]),
        ("qrisk_worker_batches_total", "counter", "batches folded", stats["batches"]),
        ("qrisk_worker_views_skipped_total", "counter", "credit-file views too large for the credit-files topic: not published",
         stats.get("views_skipped", 0)),
        ("qrisk_worker_views_failed_total", "counter", "credit-file views the broker did not take (tried again the next interval)",
         stats.get("views_failed", 0)),
        ("qrisk_worker_letters_truncated_total", "counter", "dead letters refused for their size and kept with their first bytes",
         stats.get("letters_truncated", 0)),
        ("qrisk_worker_effects_too_large_total", "counter", "effects messages too large for the effects topic: replaced by a "
                                                            "processing.failed one and dead-lettered", stats.get("effects_too_large", 0)),
        ("qrisk_worker_left_for_owner_total", "counter", "log messages of partitions not loaded for the current assignment (revoked, or "
                                                         "not yet rebuilt), left unacknowledged for their owner: each rebalance makes some",
         stats.get("not_ours", 0)),
        ("qrisk_worker_tables_reread_total", "counter", "partitions whose table, as Faust restored it, lacked state the group had "
                                                        "committed past: read again from the changelog before folding on",
         stats.get("tables_reread", 0)),
        ("qrisk_worker_restores_ended_total", "counter", "table partitions whose restore got no record for "
                                                          "QRISK_WORKER_RESTORE_STALL_SECONDS with records left: ended, and read by the worker itself",
         stats.get("restores_ended", 0)),
        ("qrisk_worker_stale_snapshots", "gauge", f"credit files held here that were restored from a snapshot another fold version "
                                                  f"wrote (this is {FOLD_VERSION}): they keep its results, and their snapshots name "
                                                  "that version, until the log is folded again", stale_snapshots),
        ("qrisk_worker_policy_mismatch_snapshots", "gauge", "credit files held here that were restored from a snapshot folded under another "
                                                            "policy or catalogue: they mix both until `qrisk rebuild --kafka`", policy_mismatch),
    ], [("qrisk_worker_lag_messages", "gauge", "messages not yet committed behind the end of each partition the worker reads", lag),
        ("qrisk_worker_lost_messages_total", "counter", "records deleted (retention) before this worker read them: they never reached the log",
         [({"topic": t}, n) for t, n in sorted((lost or {}).items())])])


def _faust_credentials(settings: KafkaSettings):
    proto = settings.kafka_security_protocol.upper()
    if proto == "PLAINTEXT":
        return None
    import ssl

    import faust

    context = None
    if proto.endswith("SSL"):
        context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
        if settings.kafka_ssl_certfile:
            context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile)
        if proto == "SSL":
            return faust.SSLCredentials(context)
    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
    mechanism = (settings.kafka_sasl_mechanism or "PLAIN").upper()
    if mechanism.startswith("SCRAM"):
        return faust.SASLCredentials(username=settings.kafka_sasl_username, password=password, mechanism=mechanism, ssl_context=context)
    return faust.SASLCredentials(username=settings.kafka_sasl_username, password=password, ssl_context=context)


class DataDirError(Exception):
    """The worker's data directory cannot be made or written (one line, Chinese and English)."""


def prepare_data_dir(settings: KafkaSettings) -> str:
    """Make the worker's data directory (``KafkaSettings.worker_dir``) with its parents and check
    that it takes files, before Faust starts: Faust makes only the last level, and a directory it
    cannot use surfaced as a traceback from deep inside its start-up."""
    import tempfile

    path = settings.worker_dir()
    named = "QRISK_WORKER_DATA_DIR" if settings.worker_data_dir else "QRISK_DATA_DIR/worker"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise DataDirError(f"无法使用 worker 数据目录 {path}（{named}）：{why} / cannot use the worker's data directory "
                           f"{path} ({named}): {why}") from None
    return str(path)


class WebPortBusy(Exception):
    """The worker's web server cannot listen where it is set to (one line, Chinese and English)."""


def check_web_port(settings: KafkaSettings) -> None:
    """Bind the web server's address once before Faust starts: Faust found it taken only after
    joining the group, and stopped with a page of traceback that named no setting."""
    import socket

    if settings.worker_web_port <= 0:
        return
    where = f"{settings.worker_web_host}:{settings.worker_web_port}"
    try:
        infos = socket.getaddrinfo(settings.worker_web_host, settings.worker_web_port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            # as Faust's server binds (SO_REUSEADDR): a port in TIME_WAIT after a restart is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise WebPortBusy(f"worker 的 Web 服务无法监听 {where}（QRISK_WORKER_WEB_HOST、QRISK_WORKER_WEB_PORT / --web-port）：{why} / "
                          f"the worker's web server cannot listen on {where} (QRISK_WORKER_WEB_HOST, QRISK_WORKER_WEB_PORT / "
                          f"--web-port): {why}; 0 turns it off") from None


def run_worker(settings: KafkaSettings | None = None, rules: Rules | None = None, loglevel: str = "info", **overrides: Any) -> int:
    """Run the worker until SIGTERM/SIGINT (``qrisk worker``)."""
    import faust
    import mode.loop

    settings = settings or KafkaSettings()
    from qrisk.topics import LimitRefused, TopicMismatch, check_partitions, ensure_message_limit

    try:
        # the log and the ingress topics it reads: Faust ignores a missing one with a warning and idles, healthy
        check_partitions(settings, [t.name for t in settings.topics().ingress.values()])
    except TopicMismatch as exc:  # (TopicMissing among them)
        print(f"qrisk worker: {exc}", file=sys.stderr, flush=True)
        return 2
    try:
        check_web_port(settings)
    except WebPortBusy as exc:
        print(f"qrisk worker: {exc}", file=sys.stderr, flush=True)
        return 2
    # a changelog Faust created before the limit was declared has the broker's 1 MB
    snapshot_max_bytes = None
    try:
        ensure_message_limit(settings, settings.topics().changelog)
    except LimitRefused as exc:
        # go on with snapshots that fit the topic as it is: a larger one is skipped and logged
        # (its entries stay in the changelog), where one sent anyway would stop the worker
        snapshot_max_bytes = max(64 * 1024, (exc.limit or 1_000_000) - 64 * 1024)
        print(f"qrisk worker: {exc}; 快照上限降为 {snapshot_max_bytes} 字节 / snapshots limited to {snapshot_max_bytes} bytes",
              file=sys.stderr, flush=True)
    # the dead-letter, credit-files and effects topics, made before their limits were declared (`qrisk topics
    # create` sets them too): a letter, a view or effects that do not fit are bounded, skipped or dead-lettered instead
    limits: dict[str, int] = {}
    for name, spec in (("letter_max_bytes", settings.topics().dead_letters), ("view_max_bytes", settings.topics().credit_files),
                       ("effects_max_bytes", settings.topics().effects)):
        try:
            ensure_message_limit(settings, spec)
        except LimitRefused as exc:
            limits[name] = max(64 * 1024, (exc.limit or 1_000_000) - 64 * 1024)
            print(f"qrisk worker: {exc}; 上限降为 {limits[name]} 字节 / limited to {limits[name]} bytes", file=sys.stderr, flush=True)
    try:
        prepare_data_dir(settings)
    except DataDirError as exc:
        print(f"qrisk worker: {exc}", file=sys.stderr, flush=True)
        return 2
    policy_name = "FILE"
    if rules is None:
        rules, policy_name = _settings_rules()  # (here, not in create_app: the calendar is checked below)
    from qrisk.runtime import calendar_warning

    gap = calendar_warning(rules, utc_now())
    if gap:
        print(f"qrisk worker: {gap}", file=sys.stderr, flush=True)
    # (as `qrisk run` says it at start; the listings naming no enterprise are said once the partitions' files are loaded)
    scale = rules.policy.risk.scale_note()
    if scale:
        print(f"qrisk worker: 警告：{scale}", file=sys.stderr, flush=True)
    if rules.policy.risk.credit.serious_dishonesty:
        print(f"qrisk worker: 策略 risk.credit.serious_dishonesty 列入 {len(rules.policy.risk.credit.serious_dishonesty)} 家企业：分区载入后"
              "核对其中归本 worker 分区的企业是否在档，未在档的记入日志并在 /qrisk/healthz/ 报告 / the policy lists "
              f"{len(rules.policy.risk.credit.serious_dishonesty)} enterprises as seriously dishonest: those of this worker's "
              "partitions with no file are logged once the partitions are loaded and reported on /qrisk/healthz/",
              file=sys.stderr, flush=True)
    if settings.worker_loop == "uvloop":
        mode.loop.use("uvloop")  # before the app and its consumer thread make their loops
    app = create_app(settings, rules, snapshot_max_bytes=snapshot_max_bytes, policy_name=policy_name, **limits, **overrides)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0
