"""``qrisk sink``: the Kafka topics into ClickHouse, through the store.

Consumes the event log, the effects, the credit files and the dead letters, turns each batch
into rows and writes them with ``Store.insert``; the offsets are committed only after every
row of the batch was written.  A crash or a failed write means the batch comes again — which
is harmless, because every target table is a ReplacingMergeTree keyed by what a redelivery
cannot change:

| topic | table | key |
|---|---|---|
| events | ``events`` (archive) | enterprise_id, occurred_at, event_id (a tick's copies collapse) |
| effects | ``stream_effects``, ``sampling_items`` (through ``sampling_items_in``), ``judgements``, ``complaints`` | enterprise_id, file_version, idx / the sample's own keys / enterprise_id, complaint_id (the latest version) |
| credit-files | ``credit_files`` | enterprise_id, seq = the file's version |
| dead-letters | ``dead_letters`` | dead_letter_id |

A sample's test items arrive as one ``sampling_items_in`` row (arrays per item), which the
materialised view of migration 030 unfolds into ``sampling_items`` rows in the same INSERT; a
redelivered one unfolds into the same keys.  Messages of workers before that change carry
``sampling_items`` rows themselves and are still read (the effects topic keeps 30 days).

Count with ``FINAL`` or ``uniqExact``.  A store outage is retried with backoff, never skipped (and
said: "degraded" on /healthz once it has lasted ``DEGRADED_AFTER_S``, the unwritten messages as lag);
a broker that goes away under a running sink is waited for the same way (and said once the group's committed
offsets have not been read for ``DEGRADED_AFTER_S``: the lag is unknown then, not the 0 last measured); a
message that cannot become a row (not JSON, a value that does not fit its column) is written
to ``dead_letters`` with the reason instead, and the stream goes on.

Messages the broker deleted (retention) before the sink read them are not skipped silently: the
consumer would go on from the partition's first offset, its lag 0.  The sink knows the offset it
must read next on every partition it holds (the group's committed offset at assignment, then past
each message it took); one that comes later than that, or a first offset past it, is a gap
(``LostRange``): logged as an error, counted (``qrisk_sink_lost_messages_total``), kept in
``dead_letters`` (channel ``sink``, position ``topic/partition/first-last``) and named on /healthz,
"degraded" until the sink restarts.

A database that is not what the migrations made (a table, database, column or grant missing:
``qrisk.store.SCHEMA_CODES``) is no message's fault: the sink stops there, says so in its log
(``unhealthy: …``), lets its heartbeat age, and retries the same rows until the database is fixed;
nothing is dead-lettered or committed meanwhile.  A message is checked against every table it
writes before any of its rows is sent, so a bad one is set aside whole; one that a table still
refuses after another table took its rows is retried, never committed half written.
"""
from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from qrisk.kafka_log import LOG_SEQ_SHIFT
from qrisk.pipeline import letter_preview
from qrisk.store import RowError, Store, is_transient, schema_error, short_reason
from qrisk.topics import KafkaSettings, Topics

log = logging.getLogger("qrisk.sink")

BROKER_FIRST_DELAY_S = 0.5
DEGRADED_AFTER_S = 5.0
# A commit the broker does not answer within this is left for the next round (kafka-python's commit() waits up to the
# consumer's request timeout, 30 s, for a coordinator): the polling thread is also what measures the lag and says an
# outage on /healthz, and a broker killed during a commit kept the page "ok", with the lag of before, for that long.
COMMIT_TIMEOUT_MS = 3_000
"""How long the database may refuse the sink's rows (connection refused, timeouts) before /healthz
says "degraded": a blip is retried quietly, an outage is said."""

UTC = dt.timezone.utc


def _moment(text: str) -> tuple[dt.datetime, int]:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=0), moment.microsecond // 1000


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_ms(text: str) -> tuple[int, int]:
    """(epoch seconds, milliseconds) of an ISO time: what a DateTime column and its _ms column take."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return delta.days * 86400 + delta.seconds, delta.microseconds // 1000


def _loads(value: bytes) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return json.loads(value)  # what only the json module reads (NaN, written by workers before orjson)


def _data_text(data: Any) -> str:
    try:
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except TypeError:  # non-str keys, ints past 64 bits
        return json.dumps(data, ensure_ascii=False, sort_keys=True)


EVENT_COLUMNS = ("event_id", "event_type", "schema_version", "enterprise_id", "occurred_at", "occurred_ms", "received_at",
                 "received_ms", "source_kind", "source_id", "seq", "body")
STREAM_EFFECT_COLUMNS = ("enterprise_id", "file_version", "idx", "kind", "event_id", "event_type", "occurred_at",
                         "log_partition", "log_offset", "data")


@dataclass
class Rows:
    """One batch's rows per table: dicts (``tables``) and/or lists in a named column order (``blocks``)."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    blocks: dict[tuple[str, tuple[str, ...]], list[Any]] = field(default_factory=dict)
    messages: int = 0

    def add(self, table: str, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.tables.setdefault(table, []).extend(rows)

    def add_rows(self, table: str, columns: tuple[str, ...], rows: list[Any]) -> None:
        if rows:
            self.blocks.setdefault((table, columns), []).extend(rows)

    def merge(self, other: "Rows") -> None:
        for table, rows in other.tables.items():
            self.add(table, rows)
        for key, rows in other.blocks.items():
            self.blocks.setdefault(key, []).extend(rows)
        self.messages += other.messages

    def count(self) -> int:
        return sum(len(r) for r in self.tables.values()) + sum(len(r) for r in self.blocks.values())


# the order rows are written in: a dead letter first, the archive last (it says "all done")
# (the outbox after the alert steps that made its notifications: one is never sent for an alert not stored)
TABLE_ORDER = ("dead_letters", "sampling_items", "sampling_items_in", "judgements", "complaints", "stream_effects", "alerts", "alert_events", "outbox",
               "credit_files", "events")


@dataclass(frozen=True)
class LostRange:
    """Offsets of one partition the broker deleted (retention) before the sink read them."""

    topic: str
    partition: int
    first: int
    last: int  # inclusive
    at: str  # when the sink found out (UTC, ISO 8601)

    @property
    def messages(self) -> int:
        return self.last - self.first + 1

    def text(self) -> str:
        what = ("其处理结果、判定、预警与通知未写入 ClickHouse，请用 qrisk rebuild --kafka 从日志重新生成" if ".effects" in self.topic or
                ".credit-files" in self.topic else "未写入 ClickHouse")
        what_en = ("their effects, judgements, alerts and notifications are not in ClickHouse: fold the log again "
                   "(`qrisk rebuild --kafka`)" if ".effects" in self.topic or ".credit-files" in self.topic else "they are not in ClickHouse")
        return (f"{self.topic} 分区 {self.partition} 的第 {self.first}–{self.last} 条消息（共 {self.messages} 条）在写入前已被 Kafka 按保留期删除，"
                f"{what} / {self.topic} partition {self.partition}: offsets {self.first}-{self.last} ({self.messages} messages) were "
                f"deleted by the broker (retention) before the sink wrote them; {what_en}")


class Unwritten(Exception):
    """The sink stopped while rows it must not skip were still unwritten: nothing may be committed."""


def _fast_crc32c() -> bool:
    try:
        from kafka.record.util import crc32c_c
    except ImportError:  # pragma: no cover - a kafka-python that no longer exposes it
        return False
    return crc32c_c is not None


class Sink:
    def __init__(self, store: Store, settings: KafkaSettings | None = None, consumer: Any = None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC), linger_s: float | None = None):
        self.settings = settings or KafkaSettings()
        # How long a batch waits for more messages once it has one.  Each INSERT costs the server
        # a part per table (and later its merge) whatever its size: with a sink that kept up, batches
        # of ~100 messages made ClickHouse the busiest process on the machine.  The effects topic,
        # not the tables, is what the latency promise is about.
        self.linger_s = float(os.environ.get("QRISK_SINK_LINGER_SECONDS", "0.5")) if linger_s is None else linger_s
        self.topics: Topics = self.settings.topics()
        self.store = store
        self.clock = clock
        self.names = {
            self.topics.events.name: self._event_rows,
            self.topics.effects.name: self._effect_rows,
            self.topics.credit_files.name: self._credit_file_rows,
            self.topics.dead_letters.name: self._dead_letter_rows,
        }
        self.consumer = consumer or self._consumer()
        self.stopping = threading.Event()
        self._idle_since: float | None = None
        self._rejoined_at = -1e9
        self.stats = {"batches": 0, "messages": 0, "rows": 0, "retries": 0, "bad_messages": 0, "commit_failures": 0,
                      "schema_errors": 0, "broker_errors": 0, "lag_unknown": 0, "lost_messages": 0, "commit_timeouts": 0}
        # positions written and not yet committed (a commit that timed out): committed at the start of the next round
        self._commit_pending = False
        self.unhealthy: str | None = None  # why the sink is stuck retrying (a schema error, a half-written message, an outage)
        self._failing_since: float | None = None  # monotonic start of the current run of transient failures
        self.lag: dict[tuple[str, int], int] = {}  # messages behind the log end, per assigned partition
        self.last_batch_at: float | None = None  # monotonic time of the last batch written
        self._lag_at = -1e9
        # when the group's committed offsets were last read (monotonic), and since when they could not be (monotonic,
        # and as said on /healthz): kafka-python's poll() does not raise while the broker is away, so these are what
        # tells an outage from a quiet hour — the lag last measured stood at 0 throughout one
        self._offsets_read_at = time.monotonic()
        self._lag_unknown: tuple[float, str] | None = None
        # per assigned partition, the offset the sink must read next: a message past it, or a first offset
        # past it, means the broker deleted what lies between (``_check_gaps``); unknown for a partition
        # its group never committed on
        self._expected: dict[Any, int] = {}
        self._assigned: Any = None  # (group generation, assignment) the expected offsets are of
        self.lost: list[LostRange] = []
        self.lost_by_topic: dict[str, int] = {}
        self._lost_rows = Rows()  # their dead letters, not yet written
        # where a step past the expected offset can only be a deletion (the compacted credit-files topic has holes)
        self._gap_topics = {self.topics.events.name, self.topics.effects.name, self.topics.dead_letters.name}

    def _consumer(self):
        from kafka import KafkaConsumer

        return KafkaConsumer(
            *self.names, bootstrap_servers=self.settings.bootstrap_servers(), group_id=self.settings.sink_group,
            client_id="qrisk-sink", enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=self.settings.sink_batch, fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024, session_timeout_ms=10_000, heartbeat_interval_ms=1_000,
            # The batch lingers for linger_s anyway: a fetch that waits for 1 MB (or up to 100 ms)
            # rather than answering with the first message means fewer, fuller fetches for the
            # broker and the sink at a steady rate, at no latency the linger did not already cost.
            fetch_min_bytes=1024 * 1024, fetch_max_wait_ms=max(1, min(100, int(self.linger_s * 1000))),
            max_poll_interval_ms=600_000,
            # a topic created after the sink joined (or not yet in its first metadata) has no
            # partitions to assign: the group rejoins when metadata shows them, so look again
            # every few seconds rather than kafka-python's default of five minutes
            metadata_max_age_ms=5_000,
            # kafka-python checks CRC32C in pure Python unless the `crc32c` package (a dependency) is
            # importable: without it two thirds of the sink's CPU went there, so the check is off then
            # (the broker checks every batch when it is produced, TCP the wire)
            check_crcs=_fast_crc32c(), **self.settings.security(),
        )

    # ------------------------------------------------------------------ rows per topic

    def _event_rows(self, topic: str, partition: int, offset: int, value: bytes) -> Rows:
        doc = _loads(value)
        occurred, occurred_ms = _epoch_ms(doc["occurred_at"])
        received, received_ms = _epoch_ms(doc.get("received_at") or doc["occurred_at"])
        source = doc.get("source") or {}
        if isinstance(source, str):  # a version-1 string source, as the producer sent it
            kind, _, ident = source.partition(":")
            source = {"kind": kind, "id": ident}
        rows = Rows()
        rows.add_rows("events", EVENT_COLUMNS, [(
            str(doc["event_id"]), doc["event_type"], int(doc.get("schema_version", 2)), doc["enterprise_id"], occurred, occurred_ms,
            received, received_ms, source.get("kind", ""), source.get("id", ""), (partition << LOG_SEQ_SHIFT) | offset,
            value.decode("utf-8"),
        )])
        return rows

    def _effect_rows(self, topic: str, partition: int, offset: int, value: bytes) -> Rows:
        doc = _loads(value)
        rows = Rows()
        log_partition, log_offset = doc["log"]
        eid, version, event_type = doc["enterprise_id"], doc["file_version"], doc["event_type"]
        rows.add_rows("stream_effects", STREAM_EFFECT_COLUMNS, [(
            eid, version, e["idx"], e["kind"], e["event_id"], event_type, _epoch_ms(e["occurred_at"])[0],
            log_partition, log_offset, _data_text(e["data"]),
        ) for e in doc["effects"]])
        for table, key in (("sampling_items_in", "sampling_items_in"), ("judgements", "judgement_rows"), ("complaints", "complaint_rows")):
            block = doc.get(key)
            if block:
                columns = tuple(block["columns"])
                if any(len(r) != len(columns) for r in block["rows"]):
                    raise ValueError(f"{key}: a row does not have the {len(columns)} columns named")
                rows.add_rows(table, columns, block["rows"])
        for table, block in (doc.get("alert_rows") or {}).items():
            if table not in ("alerts", "alert_events", "outbox"):
                raise ValueError(f"alert_rows: no table {table!r}")
            columns = tuple(block["columns"])
            if any(len(r) != len(columns) for r in block["rows"]):
                raise ValueError(f"alert_rows.{table}: a row does not have the {len(columns)} columns named")
            if block["rows"]:
                rows.add_rows(table, columns, block["rows"])
        # written by workers before sampling_items_in: one dict per row
        rows.add("sampling_items", doc.get("sampling_items") or [])
        rows.add("judgements", doc.get("judgements") or [])
        return rows

    def _credit_file_rows(self, topic: str, partition: int, offset: int, value: bytes | None) -> Rows:
        rows = Rows()
        if value is None:
            return rows  # a tombstone: nothing to archive
        # The worker writes {"enterprise_id":…,"version":…,"file":{…}} (orjson, in this order): the
        # file's JSON is taken from the message as it is.  Parsing and re-serialising ~70 kB per
        # view was ~15 % of the sink's CPU.  ``,"file":`` cannot occur inside the head's
        # strings (their quotes are escaped); any other layout is parsed.
        cut = value.find(b',"file":')
        if value.startswith(b'{"enterprise_id":') and cut > 0 and value.endswith(b"}"):
            try:
                head = orjson.loads(value[:cut] + b"}")
            except orjson.JSONDecodeError:
                head = None
            if isinstance(head, dict) and head.keys() == {"enterprise_id", "version"}:
                body = value[cut + len(b',"file":'):-1].decode("utf-8")
                if body.startswith("{"):
                    rows.add("credit_files", [{"enterprise_id": head["enterprise_id"], "seq": head["version"], "body": body}])
                    return rows
        doc = _loads(value)
        rows.add("credit_files", [{"enterprise_id": doc["enterprise_id"], "seq": doc["version"],
                                   "body": json.dumps(doc["file"], ensure_ascii=False)}])
        return rows

    def _dead_letter_rows(self, topic: str, partition: int, offset: int, value: bytes) -> Rows:
        doc = _loads(value)
        at, ms = _moment(doc["received_at"])
        rows = Rows()
        rows.add("dead_letters", [{
            "dead_letter_id": doc["dead_letter_id"], "received_at": at, "received_ms": ms, "channel": doc["channel"],
            "position": doc["position"], "raw": doc["raw"], "raw_encoding": doc.get("raw_encoding", "utf-8"),
            "reason": doc["reason"], "errors": json.dumps(doc.get("errors") or [], ensure_ascii=False),
            "event_id": doc.get("event_id") or "",  # (a letter sent before the column: '', outstanding)
            # masked here, where the row is written: the topic's letter keeps the raw bytes, the table's reader may not
            "raw_preview": letter_preview(doc["raw"], doc.get("raw_encoding", "utf-8"), doc.get("columns"), doc.get("delimiter") or ","),
        }])
        return rows

    def _bad_message(self, topic: str, partition: int, offset: int, value: bytes | None, exc: BaseException) -> Rows:
        """A message that cannot become rows: kept in dead_letters, keyed by its position (redelivery collapses)."""
        from qrisk.kafka_log import dead_letter_value
        from qrisk.pipeline import DeadLetter

        reason = f"sink: {type(exc).__name__}: {short_reason(exc)}"
        letter = DeadLetter("sink", f"{topic}/{partition}/{offset}", value or b"", reason,
                            [{"field": "", "type": "sink_rejected", "reason": reason}], dead_letter_id=f"kafka:{topic}:{partition}:{offset}")
        self.stats["bad_messages"] += 1
        log.warning("sink: %s/%s/%s kept in dead_letters: %s", topic, partition, offset, reason)
        return self._dead_letter_rows(topic, partition, offset, dead_letter_value(letter, self.clock()))

    def rows_for(self, topic: str, partition: int, offset: int, value: bytes | None) -> Rows:
        try:
            rows = self.names[topic](topic, partition, offset, value)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            rows = self._bad_message(topic, partition, offset, value, exc)
        rows.messages = 1
        return rows

    # ------------------------------------------------------------------ writing

    @staticmethod
    def _parts(rows: Rows) -> list[tuple[str, bool, Any]]:
        """(table, columnar?, rows) in TABLE_ORDER."""
        parts: list[tuple[str, bool, Any]] = []
        for table in TABLE_ORDER:
            batch = rows.tables.get(table)
            if batch:
                parts.append((table, False, batch))
            for (name, columns), block in rows.blocks.items():
                if name == table:
                    # transposed in C (zip), no dict per row; insert_columns checks and converts as insert does
                    parts.append((table, True, dict(zip(columns, map(list, zip(*block))))))
        return parts

    def write(self, rows: Rows, whole: bool = False) -> None:
        """Insert every table's rows; transient failures and schema errors are retried until they
        succeed (or the sink stops).  Every table's rows are checked and converted before any is
        sent, so a RowError leaves nothing written.  ``whole``: the rows of one message, so once
        one table has taken its rows any failure is retried too: a dead letter would leave it half written."""
        delay = 0.2
        prepared: list[tuple[str, list[str], list[list[Any]]]] = []
        for table, columnar, values in self._parts(rows):
            def prepare(table: str = table, columnar: bool = columnar, values: Any = values) -> None:
                names, cols = (self.store.prepare_columns(table, values) if columnar else self.store.prepare(table, values))
                prepared.append((table, names, cols))
            delay = self._insert(table, prepare, delay)
        written = False
        for table, names, cols in prepared:
            delay = self._insert(table, lambda: self.store.insert_prepared(table, names, cols), delay, stuck=whole and written)
            written = True

    def _insert(self, table: str, insert: Callable[[], Any], delay: float, stuck: bool = False) -> float:
        while True:
            try:
                insert()
                self._failing_since = None
                if self.unhealthy is not None:
                    log.warning("sink: %s written; healthy again after: %s", table, self.unhealthy)
                    self.unhealthy = None
                return delay
            except Exception as exc:  # noqa: BLE001 - classified below
                schema = schema_error(exc, table)
                if not (schema or stuck) and (isinstance(exc, RowError) or not is_transient(exc)):
                    raise
                if self.stopping.is_set():
                    raise Unwritten(f"{table}: {short_reason(exc)}") from exc
                self.stats["retries"] += 1
                if schema or stuck:
                    self.stats["schema_errors"] += schema
                    self.unhealthy = f"{table}: {type(exc).__name__}: {short_reason(exc)}"
                    forget = getattr(self.store, "forget_columns", None)
                    if forget is not None:
                        forget()  # the table may be fixed by the next try: read its columns again
                    why = ("the database is not what the migrations made (a table, database, column or grant missing) / "
                           "数据库与迁移不符（缺少表、库、列或权限）") if schema else \
                          "a message already partly written here / 消息已部分写入"
                    log.error("sink: unhealthy, not writing %s: %s; %s. Nothing is dead-lettered or committed; "
                              "retrying in %.1fs", table, self.unhealthy, why, delay)
                else:
                    log.warning("sink: %s not written (%s: %s); retrying in %.1fs", table, type(exc).__name__, short_reason(exc), delay)
                    now = time.monotonic()
                    self._failing_since = self._failing_since or now
                    if now - self._failing_since >= DEGRADED_AFTER_S:
                        # a database down for longer than a blip: said on /healthz and /metrics, not only in the log
                        # (the pages said "ok" with the lag of before the outage while nothing was written)
                        self.unhealthy = (f"{table}: ClickHouse 连续 {now - self._failing_since:.0f} 秒写入失败 / "
                                          f"not written for {now - self._failing_since:.0f} s: {type(exc).__name__}: {short_reason(exc)}")
                    if now - self._lag_at >= self._lag_every():
                        self._lag_at = now
                        self.measure_lag()  # (this is the polling thread: the batch waits here)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def process(self, records: dict[Any, list[Any]]) -> int:
        """Write the rows of one poll's records (isolating a message whose rows a table refuses)."""
        self._write_lost()
        per_message: list[tuple[Any, Any, Rows]] = []
        total = Rows()
        for tp, messages in records.items():
            for m in messages:
                r = self.rows_for(tp.topic, tp.partition, m.offset, m.value)
                per_message.append((tp, m, r))
                total.merge(r)
        try:
            self.write(total)
        except Unwritten:
            raise
        except Exception as exc:  # noqa: BLE001
            if not isinstance(exc, RowError) and is_transient(exc):
                raise
            # one message's rows do not fit: write message by message, and keep the bad ones as dead letters
            log.warning("sink: batch refused (%s); writing message by message", short_reason(exc))
            for tp, m, r in per_message:
                try:
                    # a message is set aside before any of its rows is written, and once one table
                    # has its rows the others are waited for
                    self.write(r, whole=True)
                except Unwritten:
                    raise
                except Exception as one:  # noqa: BLE001
                    if not isinstance(one, RowError) and is_transient(one):
                        raise
                    self.write(self._bad_message(tp.topic, tp.partition, m.offset, m.value, one))
        self.stats["rows"] += total.count()
        self.stats["messages"] += total.messages
        return total.messages

    def _write_lost(self) -> None:
        if self._lost_rows.count():
            # taken before the write: a gap found while it waits on the database (measure_lag runs in its retries) goes
            # into the next batch's rows, not into these, which are dropped once written
            rows, self._lost_rows = self._lost_rows, Rows()
            try:
                self.write(rows)  # (before a commit passes the gap's place)
            except BaseException:
                rows.merge(self._lost_rows)
                self._lost_rows = rows  # (not written: kept for the next try)
                raise

    def _check_assignment(self) -> None:
        """Rejoin the group when it left this sink with nothing although its topics have partitions.

        Seen in CI on a fresh broker: kafka-python finished a join whose assignment was computed
        before its metadata listed the topics' partitions ("No partition metadata for topic"), and
        then waited for a metadata change that never came.  Idle for 10 s with partitions to read:
        ask for a rejoin, at most every 30 s (a sink in a group with more members than partitions
        is idle by design and costs one rebalance a half minute, logged)."""
        if self.consumer.assignment() if hasattr(self.consumer, "assignment") else True:
            self._idle_since = None
            return
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
            return
        if now - self._idle_since < 10 or now - self._rejoined_at < 30:
            return
        self._rejoined_at = now  # also paces the metadata look-up below
        if any(self.consumer.partitions_for_topic(t) for t in self.names):
            log.info("sink: no partitions assigned although %s have some; rejoining the group", ", ".join(self.names))
            self.consumer._coordinator.request_rejoin()

    def run_once(self, timeout_ms: int = 500) -> int:
        """Poll one batch (up to ``sink_batch`` messages or ``sink_batch_bytes``, or what came within ``linger_s``
        of the first), write it, then commit its offsets.  Returns the number of messages."""
        from kafka.errors import KafkaError

        limit = self.settings.sink_batch
        if self._commit_pending and self._lag_unknown is None:  # (not while the offsets cannot be read: Kafka away)
            self._commit()
        records = self.consumer.poll(timeout_ms=timeout_ms, max_records=limit)
        if not records:
            self._write_lost()  # (a gap found with nothing to read: measure_lag)
            self._check_assignment()
            return 0
        count = sum(map(len, records.values()))
        size = sum(len(m.value or b"") for messages in records.values() for m in messages)
        deadline = time.monotonic() + self.linger_s
        while count < limit and size < self.settings.sink_batch_bytes and not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                more = self.consumer.poll(timeout_ms=max(1, int(left * 1000)), max_records=limit - count)
            except KafkaError as exc:
                # what was polled already is written and committed below (the consumer's position has
                # moved past it: dropped here, a later commit would pass over it unwritten)
                log.warning("sink: Kafka error collecting a batch (%s: %s); writing the %d messages polled", type(exc).__name__,
                            short_reason(exc), count)
                break
            for tp, messages in more.items():
                records.setdefault(tp, []).extend(messages)
                count += len(messages)
                size += sum(len(m.value or b"") for m in messages)
        self._check_gaps(records)
        # A batch's parsed messages and rows (up to sink_batch messages) are alive together: the
        # cyclic collector, triggered by allocations, walked them over and over (half the sink's CPU).
        # They are freed by reference counting when the batch is done; cycles wait until then.
        collecting = gc.isenabled()
        gc.disable()
        try:
            n = self.process(records)
        finally:
            if collecting:
                gc.enable()
        self._commit()
        self.stats["batches"] += 1
        self.last_batch_at = time.monotonic()
        return n

    def _commit(self) -> None:
        """Commit the positions of what was written.  One the broker does not answer within ``COMMIT_TIMEOUT_MS``
        stays pending, tried again before a later poll once the group's offsets can be read: the rows are in the tables
        already, and a batch delivered again after a restart collapses on its keys.  Another Kafka error goes to ``run``,
        the commit still pending."""
        from kafka.errors import CommitFailedError, KafkaTimeoutError

        self._commit_pending = True
        began = (time.monotonic(), self.clock().astimezone(UTC).isoformat(timespec="seconds"))
        try:
            self.consumer.commit(timeout_ms=COMMIT_TIMEOUT_MS)
        except CommitFailedError as exc:
            # the group rebalanced meanwhile: the new owner gets these again; the tables collapse them
            self.stats["commit_failures"] += 1
            log.warning("sink: commit failed (%s); the batch will be delivered again", exc)
        except KafkaTimeoutError as exc:
            self.stats["commit_timeouts"] += 1
            log.warning("sink: commit not answered within %.0f s (%s); tried again once the group's offsets can be read "
                        "(the batch is written)", COMMIT_TIMEOUT_MS / 1000, short_reason(exc))
            # the first sign of an outage: the offsets are read from now on (at once, then each second), and unknown since
            # the commit began, so that an outage is said DEGRADED_AFTER_S after that, not after the first failed read
            self._lag_at = -1e9
            if self._lag_unknown is None:
                self._lag_unknown = began
            return
        self._commit_pending = False

    # ------------------------------------------------------------------ gaps (retention)

    def _refresh_expected(self, check: bool = True) -> bool:
        """At a new assignment (or group generation): the offset to read next on each partition is the
        group's committed one.  kafka-python's consumer, at ``auto_offset_reset="earliest"``, moves a
        position below the partition's first offset to that first offset and says so only at INFO."""
        consumer = self.consumer
        generation = getattr(getattr(getattr(consumer, "_coordinator", None), "_generation", None), "generation_id", None)
        assigned = frozenset(consumer.assignment())
        if (generation, assigned) == self._assigned:
            return False
        committed = consumer._coordinator.fetch_committed_offsets(list(assigned), timeout_ms=5000) if assigned else {}
        self._expected = {tp: meta.offset for tp, meta in committed.items() if meta is not None and meta.offset is not None
                          and meta.offset >= 0}
        self._assigned = (generation, assigned)
        if check:
            # a partition already past what its group committed before this sink joined is found here too
            self._check_beginnings()
        return True

    def _check_gaps(self, records: dict[Any, list[Any]]) -> None:
        """Before a batch is written: a message past the offset expected next on its partition is a gap, if
        the broker no longer has what lies between (the partition's first offset is past it).  Nothing here
        may raise a Kafka error: the batch is polled, and one given up now would be passed by the next poll."""
        if not hasattr(self.consumer, "assignment"):
            return  # (a stand-in consumer in tests)
        try:
            # (the partitions' first offsets only after this batch's messages are counted as read)
            refreshed = self._refresh_expected(check=False)
        except Exception as exc:  # noqa: BLE001 - the coordinator away: checked at the next batch (and by measure_lag)
            log.info("sink: committed offsets not read for the gap check (%s: %s)", type(exc).__name__, short_reason(exc))
            for tp, messages in records.items():
                if messages and tp in self._expected:
                    self._expected[tp] = messages[-1].offset + 1
            return
        jumps: list[tuple[Any, int, int]] = []  # (partition, offset expected, offset that came)
        for tp, messages in records.items():
            if not messages:
                continue
            expected = self._expected.get(tp)
            if tp.topic in self._gap_topics:
                # (a batch may hold two polls' messages, the gap between them: every step is looked at)
                for m in messages:
                    if expected is not None and m.offset > expected:
                        jumps.append((tp, expected, m.offset))
                    expected = m.offset + 1
            self._expected[tp] = messages[-1].offset + 1
        if jumps:
            try:
                firsts = self.consumer.beginning_offsets(list({tp for tp, _, _ in jumps}), timeout_ms=5000)
            except Exception as exc:  # noqa: BLE001 - unconfirmed: within one assignment only a deletion makes a step
                log.info("sink: first offsets not read for the gap check (%s: %s)", type(exc).__name__, short_reason(exc))
                firsts = {}
            for tp, expected, offset in jumps:
                first = firsts.get(tp, offset)
                if first > expected:  # (else what lies between is still there: not a deletion)
                    self._record_lost(tp, expected, min(offset, first) - 1)
        if refreshed:
            try:
                self._check_beginnings()
            except Exception as exc:  # noqa: BLE001 - measure_lag looks again
                log.info("sink: first offsets not read for the gap check (%s: %s)", type(exc).__name__, short_reason(exc))

    def _check_beginnings(self) -> None:
        """A partition whose every message was deleted before it was read (nothing left to read: no message will
        come to show the step): a gap as well.  A partition with messages left is not judged here: its next
        message shows the gap, or shows there is none — the consumer may hold messages it fetched ahead of what it
        returned, which the broker deleted meanwhile (a false gap, seen when retention caught up with a sink behind)."""
        tps = [tp for tp in self.consumer.assignment() if tp in self._expected]
        if not tps:
            return
        firsts = self.consumer.beginning_offsets(tps, timeout_ms=5000)
        ends = self.consumer.end_offsets(tps, timeout_ms=5000)
        for tp in tps:
            first = firsts.get(tp)
            if first is not None and first > self._expected[tp] and ends.get(tp) == first:
                self._record_lost(tp, self._expected[tp], first - 1)
                self._expected[tp] = first

    def _record_lost(self, tp: Any, first: int, last: int) -> None:
        from qrisk.kafka_log import dead_letter_value
        from qrisk.pipeline import DeadLetter

        gap = LostRange(tp.topic, tp.partition, first, last, self.clock().astimezone(UTC).isoformat(timespec="seconds"))
        self.lost.append(gap)
        self.stats["lost_messages"] += gap.messages
        self.lost_by_topic[gap.topic] = self.lost_by_topic.get(gap.topic, 0) + gap.messages
        log.error("sink: %s", gap.text())
        # kept where operators look for what went wrong, beyond this process's life (the health page's is not)
        position = f"{gap.topic}/{gap.partition}/{gap.first}-{gap.last}"
        error = {"field": "", "type": "lost_by_retention", "topic": gap.topic, "partition": gap.partition, "first_offset": gap.first,
                 "last_offset": gap.last, "messages": gap.messages, "reason": gap.text().split(" / ", 1)[1],
                 "reason_zh": gap.text().split(" / ", 1)[0]}
        letter = DeadLetter("sink", position, b"", f"lost_by_retention: {error['reason']}", [error],
                            dead_letter_id=f"kafka:{gap.topic}:{gap.partition}:{gap.first}-{gap.last}:lost")
        # written with the next batch, not here: this may run inside a write waiting for the database
        self._lost_rows.merge(self._dead_letter_rows(gap.topic, gap.partition, gap.first, dead_letter_value(letter, self.clock())))

    def _broker_down(self, exc: BaseException, delay: float) -> float:
        self.stats["broker_errors"] += 1
        self.unhealthy = f"Kafka: {type(exc).__name__}: {short_reason(exc)}"
        log.warning("sink: Kafka unreachable (%s: %s); retrying in %.1fs", type(exc).__name__, short_reason(exc), delay)
        self.stopping.wait(delay)
        return min(delay * 2, 10.0)

    def _broker_back(self, delay: float) -> float:
        if delay > BROKER_FIRST_DELAY_S and self.unhealthy is not None and self.unhealthy.startswith("Kafka:"):
            log.warning("sink: Kafka reachable again after: %s", self.unhealthy)
            self.unhealthy = None
        return BROKER_FIRST_DELAY_S

    def run(self, idle_exit_s: float | None = None) -> None:
        from kafka.errors import KafkaError

        idle_since = time.monotonic()
        broker_delay = BROKER_FIRST_DELAY_S
        heartbeat = self.settings.sink_heartbeat_file
        while not self.stopping.is_set():
            if heartbeat:
                with open(heartbeat, "w") as fh:
                    fh.write(f"{time.time():.0f}\n")
            try:
                wrote = self.run_once()
            except Unwritten as exc:  # stopped while waiting for the database: the batch comes again
                log.warning("sink: stopped with a batch unwritten and uncommitted (%s)", exc)
                return
            except KafkaError as exc:
                # the broker went away under a running sink (a restart, a blip): a batch is written before
                # its commit, and one written and not committed comes again (rows collapse on their keys),
                # so wait for it rather than exit; unreachable at start is refused before this loop
                # (cli_kafka: reach), and an error retrying cannot mend (no permission, a corrupt record) ends it
                if not _retriable(exc):
                    raise
                broker_delay = self._broker_down(exc, broker_delay)
                continue
            if wrote:
                broker_delay = self._broker_back(broker_delay)
            if wrote:
                idle_since = time.monotonic()
            elif idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                return
            if time.monotonic() - self._lag_at >= self._lag_every():
                self._lag_at = time.monotonic()
                self.measure_lag()

    def _lag_every(self) -> float:
        """Seconds between two reads of the committed offsets: more often while they cannot be read, so that an
        outage is said within seconds of the grace period (``DEGRADED_AFTER_S``) and its end as soon."""
        return 1.0 if self._lag_unknown is not None else 5.0

    def measure_lag(self) -> None:
        """Messages not yet written behind the end of each assigned partition: the end as the last
        fetch saw it, less the group's committed offset (the sink commits what it wrote; the
        consumer's position runs ahead of it by the batch being written, and while the database is
        down by all of it).  Read in the polling thread: the consumer is not thread-safe; the pages
        read the result."""
        lag: dict[tuple[str, int], int] = {}
        assigned = [tp for tp in self.consumer.assignment() if self.consumer.highwater(tp) is not None]  # (fetched from)
        try:
            # one request for every partition (the consumer's committed() asks per partition), bounded: with
            # the broker away the batch waits for the database here, not for this
            committed = self.consumer._coordinator.fetch_committed_offsets(assigned, timeout_ms=1000) if assigned else {}
        except Exception as exc:  # noqa: BLE001 - unknown for now: not the lag last measured (0 throughout an outage,
            # while what arrived before it sat unwritten), nor the positions (0 for a batch polled and not written)
            self.stats["lag_unknown"] += 1
            now = time.monotonic()
            if self._lag_unknown is None:
                self._lag_unknown = (now, self.clock().astimezone(UTC).isoformat(timespec="seconds"))
            away = now - self._offsets_read_at
            if now - self._lag_unknown[0] > DEGRADED_AFTER_S and (self.unhealthy is None or self.unhealthy.startswith("Kafka:")):
                # (a database problem said already stays the one named: it is what a batch waits on)
                if self.unhealthy is None:
                    log.warning("sink: Kafka unreachable: committed offsets not read for %.0f s (%s: %s)", away, type(exc).__name__,
                                short_reason(exc))
                self.unhealthy = (f"Kafka: committed offsets not read for {away:.0f} s ({type(exc).__name__}: {short_reason(exc)}) / "
                                  f"Kafka：已 {away:.0f} 秒无法读取已提交的偏移量（broker 不可达？），积压未知")
            log.info("sink: committed offsets not read (%s: %s); lag unknown", type(exc).__name__, short_reason(exc))
            return
        if not assigned and self._commit_pending and self._lag_unknown is not None:
            # unknown since a commit timed out, and the partitions gone since (a rebalance): their next owner reads
            # from the group's offsets, and there is no lag of this sink's left to be unknown
            self._commit_pending = False
            self._lag_unknown = None
        if assigned:
            self._offsets_read_at = time.monotonic()
            self._lag_unknown = None
            self._broker_back(BROKER_FIRST_DELAY_S * 2)  # (the group's coordinator answered: Kafka is back)
            try:
                if not self._refresh_expected():
                    self._check_beginnings()
            except Exception as exc:  # noqa: BLE001 - checked again at the next measure
                log.info("sink: first offsets not read for the gap check (%s: %s)", type(exc).__name__, short_reason(exc))
        for tp in assigned:
            high = self.consumer.highwater(tp)
            try:
                done = committed[tp].offset if tp in committed else self.consumer.position(tp, timeout_ms=1000)
            except Exception:  # noqa: BLE001 - an offset still unknown is no lag to report yet
                continue
            if done is not None and high is not None:
                lag[(tp.topic, tp.partition)] = max(0, high - done)
        self.lag = lag

    def health(self) -> dict[str, Any]:
        """The /healthz page: "degraded" with the reason while a table refuses its rows, while the group's committed
        offsets have not been read for over ``DEGRADED_AFTER_S`` (Kafka away: the lag is ``null`` then, with
        ``lag_unknown_since``), and once messages were deleted before the sink read them (``lost``: which, until
        the sink restarts)."""
        age = None if self.last_batch_at is None else round(time.monotonic() - self.last_batch_at, 1)
        lost = [{"topic": g.topic, "partition": g.partition, "offsets": f"{g.first}-{g.last}", "messages": g.messages, "at": g.at,
                 "problem": g.text()} for g in self.lost[-20:]]
        problem = self.unhealthy or (self.lost[-1].text() if self.lost else None)
        unknown = self._lag_unknown
        return {"status": "degraded" if problem else "ok", "problem": problem, **({"lost": lost} if lost else {}),
                "lag": None if unknown else sum(self.lag.values()), **({"lag_unknown_since": unknown[1]} if unknown else {}),
                "last_batch_seconds_ago": age, **self.stats}

    def metrics(self) -> bytes:
        from qrisk.pages import prometheus_text

        s = self.stats
        return prometheus_text([
            ("qrisk_sink_batches_total", "counter", "batches written and committed", s["batches"]),
            ("qrisk_sink_messages_total", "counter", "messages written", s["messages"]),
            ("qrisk_sink_rows_total", "counter", "rows inserted", s["rows"]),
            ("qrisk_sink_retries_total", "counter", "inserts retried (the database refused or did not answer)", s["retries"]),
            ("qrisk_sink_schema_errors_total", "counter", "inserts refused because the database is not what the migrations made", s["schema_errors"]),
            ("qrisk_sink_bad_messages_total", "counter", "messages kept in dead_letters instead of written", s["bad_messages"]),
            ("qrisk_sink_commit_failures_total", "counter", "offset commits refused (a rebalance: the batch comes again)", s["commit_failures"]),
            ("qrisk_sink_commit_timeouts_total", "counter", "offset commits the broker did not answer in time (tried again; the "
                                                          "batch was written)", s["commit_timeouts"]),
            ("qrisk_sink_broker_errors_total", "counter", "polls or commits that failed because Kafka was unreachable (retried)", s["broker_errors"]),
            ("qrisk_sink_unhealthy", "gauge", "1 while a table refuses its rows or the database or Kafka has been away for a while, "
                                              "and nothing is committed", int(self.unhealthy is not None)),
        ], [("qrisk_sink_lag_messages", "gauge", "messages not yet written behind the end of each assigned partition (none while "
                                                 "the committed offsets cannot be read: unknown, not 0)",
             [] if self._lag_unknown else [({"topic": t, "partition": str(p)}, n) for (t, p), n in sorted(self.lag.items())]),
            ("qrisk_sink_lost_messages_total", "counter", "messages the broker deleted (retention) before the sink wrote them",
             [({"topic": t}, self.lost_by_topic.get(t, 0)) for t in sorted(self.names)])])

    def close(self) -> None:
        self.consumer.close(autocommit=False)


def _retriable(exc: BaseException) -> bool:
    """A Kafka error that may pass by itself (a broker away or not ready, a timeout)."""
    from kafka import errors

    transient = tuple(getattr(errors, n) for n in ("NoBrokersAvailable", "KafkaConnectionError", "KafkaTimeoutError",
                                                    "NodeNotReadyError", "RequestTimedOutError") if hasattr(errors, n))
    return isinstance(exc, transient) or bool(getattr(exc, "retriable", False))


def run_sink(store_target: str, settings: KafkaSettings | None = None, idle_exit_s: float | None = None) -> int:
    """``qrisk sink``: migrate the store, then consume until SIGTERM/SIGINT."""
    from qrisk.store import migrate, open_store
    from qrisk.topics import TopicMismatch, check_partitions

    settings = settings or KafkaSettings()
    topics = settings.topics()
    try:
        # every topic it reads: a consumer subscribed to a missing one waits, idle, without a word
        check_partitions(settings, [topics.effects.name, topics.credit_files.name, topics.dead_letters.name])
    except TopicMismatch as exc:  # (TopicMissing among them)
        print(f"qrisk sink: {exc}", file=sys.stderr, flush=True)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    store = open_store(store_target)
    migrate(store)
    sink = Sink(store, settings)

    def stop(signum: int, _frame: Any) -> None:
        sink.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("sink: %s -> %s", ", ".join(sink.names), getattr(store, "url", store_target))
    pages = None
    try:
        if settings.sink_metrics_port:
            from qrisk.pages import serve_pages

            try:
                pages = serve_pages(settings.sink_metrics_host, settings.sink_metrics_port, sink.health, sink.metrics, "sink")
            except OSError as exc:  # the port in use, an address not of this host: before anything is read
                print(f"qrisk sink: 无法在 {settings.sink_metrics_host}:{settings.sink_metrics_port} 提供健康与指标页面（QRISK_SINK_METRICS_PORT） / "
                      f"cannot serve health and metrics on {settings.sink_metrics_host}:{settings.sink_metrics_port} "
                      f"(QRISK_SINK_METRICS_PORT): {exc.strerror or exc}", file=sys.stderr, flush=True)
                return 2
        sink.run(idle_exit_s)
    finally:
        if pages is not None:
            pages.shutdown()
        sink.close()
        store.close()
        log.info("sink: stopped after %s", sink.stats)
    return 0
