"""``qrisk worker``: the Faust app of the distributed runtime.

Two agents, both calling the same code as the embedded runtime:

* ``normalise`` reads the ingress topics, validates each record (``ingest.validate``: the same
  precise errors as the HTTP API), stamps ``received_at`` and publishes the event to the log
  (key = enterprise_id; a clock.tick to every partition) — or the record, its reason and its
  position (topic/partition/offset and the producer's file:line) to the dead-letter topic.
* ``fold`` reads the log and calls ``processors.step.step()`` for each event on the credit file of
  its enterprise.  Effects go to the effects topic (with the sampling_items / judgements rows the
  sink writes), the newest credit files to the compacted credit-files topic.

State: one ``CreditFile`` per enterprise, in a changelog-backed Faust table, event-sourced — the
table holds, per enterprise, a snapshot (``S|p|id``: version, last log offset, the event ids
applied, the file) every ``QRISK_WORKER_SNAPSHOT_EVERY`` events and the events applied since
(``E|p|id|version``).  A worker that takes over a partition rebuilds each file from its snapshot
and tail (snapshot + tail = replay), so a changelog write costs one event, not the whole file.

Ordering and delivery, per batch of log messages (at least once, effectively once):

1. fold every event (``step``), collecting effects, dead letters and table writes;
2. publish effects and dead letters and wait until the broker acknowledged them;
3. only then write the table (changelog); Faust flushes the changelog before it commits offsets;
4. the batch is acknowledged only after all that, so a crash anywhere re-delivers it.

Redelivery is harmless: an event id already in a file is skipped, the same event on the same
state gives the same effects under the same keys (enterprise, file version, index), and a tick
is applied to a file only when the file's last applied log offset is before the tick.  An error
in ``step`` becomes a ``processing.failed`` effect and a dead letter (as in the embedded runtime);
an error that cannot be dead-lettered stops the process at once (``os._exit``) so that nothing is
acknowledged: Faust acknowledges an event even when an agent raises.

County-level state (the per-category pass-rate charts of ``CountyState.categories``) cannot live
on one partition: each step here sees an empty county, so category-scope p-chart signals are not
raised by the workers — in distributed mode the county charts are a ClickHouse query over
``judgements`` (``qrisk.store.COUNTY_MONTHLY_SQL``).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterable

from processors.credit_file import CountyState, CreditFile
from processors.step import Effect, Rules, step
from schemas.events import Envelope
from schemas.upcast import load_json, parse_event

from qrisk.kafka_log import TICK_KEY, dead_letter_value, event_value
from qrisk.pipeline import DeadLetter
from qrisk.topics import KafkaSettings, Topics, utc_now

log = logging.getLogger("qrisk.worker")

EXIT_UNSAFE = 70
"""Exit status when a batch could not be made durable: the process stops before acknowledging."""


def _die(reason: str, code: int = EXIT_UNSAFE) -> None:
    print(f"qrisk worker: stopping without acknowledging the current batch: {reason}", file=sys.stderr, flush=True)
    logging.shutdown()
    os._exit(code)


# --------------------------------------------------------------------------- table keys


def snapshot_key(partition: int, enterprise_id: str) -> str:
    return f"S|{partition}|{enterprise_id}"


def entry_key(partition: int, enterprise_id: str, version: int) -> str:
    return f"E|{partition}|{enterprise_id}|{version:012d}"


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


# --------------------------------------------------------------------------- the fold, without Faust


@dataclass
class FileState:
    partition: int
    file: CreditFile | None = None
    seen: set[str] = field(default_factory=set)
    version: int = 0  # events applied to this file (ticks included)
    pos: int = -1  # log offset of the last event applied
    snap_version: int = 0
    prev_snap_version: int = 0


@dataclass
class BatchOutput:
    effects: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, value) for the effects topic
    letters: list[DeadLetter] = field(default_factory=list)
    writes: list[tuple[str, bytes | None]] = field(default_factory=list)  # table writes; None deletes
    applied: int = 0
    duplicates: int = 0


class Fold:
    """Per-enterprise fold of the log: what the ``fold`` agent does, testable without Faust."""

    def __init__(self, rules: Rules, log_topic: str, snapshot_every: int = 100):
        self.rules = rules
        self.log_topic = log_topic
        self.snapshot_every = max(1, snapshot_every)
        self.files: dict[str, FileState] = {}
        self.by_partition: dict[int, set[str]] = {}
        self.loaded: set[int] = set()
        self.dirty: set[str] = set()  # credit files to publish

    # ------------------------------------------------------------------ partitions

    def drop(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            for eid in self.by_partition.pop(p, set()):
                self.files.pop(eid, None)
                self.dirty.discard(eid)
            self.loaded.discard(p)

    def load(self, partition: int, items: Iterable[tuple[str, bytes]]) -> int:
        """Rebuild the files of one partition from its table contents (snapshot + tail)."""
        self.drop([partition])
        snaps: dict[str, bytes] = {}
        entries: dict[str, list[tuple[int, bytes]]] = {}
        prefix_s, prefix_e = f"S|{partition}|", f"E|{partition}|"
        for key, value in items:
            if value is None:
                continue
            if key.startswith(prefix_s):
                snaps[key[len(prefix_s):]] = value
            elif key.startswith(prefix_e):
                eid, _, version = key[len(prefix_e):].rpartition("|")
                entries.setdefault(eid, []).append((int(version), value))
        members = self.by_partition.setdefault(partition, set())
        for eid in sorted(set(snaps) | set(entries)):
            fs = FileState(partition)
            if eid in snaps:
                head, body = _split(snaps[eid])
                fs.file = CreditFile.model_validate_json(body)
                fs.seen = set(head["seen"])
                fs.version = fs.snap_version = fs.prev_snap_version = head["v"]
                fs.pos = head["pos"]
            for version, value in sorted(entries.get(eid, [])):
                if version <= fs.version:
                    continue  # covered by the snapshot (its tombstone is on its way)
                head, body = _split(value)
                event = parse_event(load_json(body))
                self._step(eid, fs, event)
                fs.version, fs.pos = version, head["pos"]
            self.files[eid] = fs
            members.add(eid)
            self.dirty.add(eid)
        self.loaded.add(partition)
        return len(members)

    # ------------------------------------------------------------------ events

    def _step(self, eid: str, fs: FileState, event: Envelope) -> tuple[list[Effect], BaseException | None]:
        # the county around this one file: its own seen ids, an empty county-level chart
        state = CountyState.model_construct(files={eid: fs.file} if fs.file is not None else {}, seen_event_ids=fs.seen,
                                            clock=None, categories={}, applied=0)
        try:
            state, effects = step(state, event, self.rules)
            error = None
        except Exception as exc:  # noqa: BLE001 - becomes an effect and a dead letter, as in the embedded runtime
            error = exc
            effects = [Effect(kind="processing.failed", enterprise_id=eid, event_id=str(event.event_id), occurred_at=event.occurred_at,
                              data={"reason": f"processing failed: {type(exc).__name__}: {exc}", "event_type": event.event_type})]
        fs.seen.add(str(event.event_id))
        fs.file = state.files.get(eid) or fs.file or CreditFile(enterprise_id=eid)
        return effects, error

    def apply(self, partition: int, offset: int, raw: bytes, timestamp_ms: int | None, out: BatchOutput) -> None:
        """One message of the log at (partition, offset)."""
        position = f"{self.log_topic}/{partition}/{offset}"
        event, letter = normalise(self.log_topic, partition, offset, raw, {}, None)
        if letter is not None:  # a poison message in the log: kept, never applied
            letter.reason = f"not a valid event in the log: {letter.reason}"
            out.letters.append(letter)
            return
        event_id = str(event.event_id)
        if event.enterprise_id == "*":
            members = self.by_partition.get(partition, set())
            # a tick reaches the files that existed on this partition before it in the log
            targets = [eid for eid in sorted(members) if self.files[eid].pos < offset]
        else:
            targets = [event.enterprise_id]
        for eid in targets:
            fs = self.files.get(eid)
            if fs is None:
                fs = self.files[eid] = FileState(partition)
                self.by_partition.setdefault(partition, set()).add(eid)
            if event_id in fs.seen:
                out.duplicates += 1
                continue
            effects, error = self._step(eid, fs, event)
            fs.version += 1
            fs.pos = offset
            out.applied += 1
            self.dirty.add(eid)
            if error is not None:
                suffix = "" if event.enterprise_id != "*" else f"-{eid}"
                out.letters.append(DeadLetter("processing", position, raw, effects[0].data["reason"],
                                              [{"field": "", "type": "processing_failed", "reason": effects[0].data["reason"],
                                                "traceback": traceback.format_exception_only(type(error), error)[-1].strip()}],
                                              dead_letter_id=f"processing-{event_id}{suffix}"))
            if effects:
                out.effects.append((eid.encode("utf-8"), self._effect_message(eid, fs, event, effects, partition, offset, timestamp_ms)))
            out.writes.append((entry_key(partition, eid, fs.version), json.dumps({"pos": offset}).encode() + b"\n" + raw))
            if fs.version - fs.snap_version >= self.snapshot_every:
                out.writes.extend(self._snapshot(eid, fs))

    def _snapshot(self, eid: str, fs: FileState) -> list[tuple[str, bytes | None]]:
        head = json.dumps({"v": fs.version, "pos": fs.pos, "seen": sorted(fs.seen)}).encode()
        writes: list[tuple[str, bytes | None]] = [(snapshot_key(fs.partition, eid), head + b"\n" + fs.file.model_dump_json().encode())]
        # entries the previous snapshot covers go now; those of this one after the next
        writes += [(entry_key(fs.partition, eid, v), None) for v in range(fs.prev_snap_version + 1, fs.snap_version + 1)]
        fs.prev_snap_version, fs.snap_version = fs.snap_version, fs.version
        return writes

    def _effect_message(self, eid: str, fs: FileState, event: Envelope, effects: list[Effect], partition: int, offset: int,
                        timestamp_ms: int | None) -> bytes:
        from qrisk.pipeline import _sample_rows

        items: list[dict[str, Any]] = []
        judgements: list[dict[str, Any]] = []
        out_effects = []
        for idx, eff in enumerate(effects):
            data = eff.data
            if eff.kind == "sampling.judged":
                rows, judgement = _sample_rows(fs.file, data["sample_event_id"])
                items.extend(rows)
                judgements.append(judgement)
            out_effects.append({"idx": idx, "kind": eff.kind, "event_id": eff.event_id,
                                "occurred_at": eff.occurred_at.astimezone(dt.timezone.utc).isoformat(), "data": data})
        doc = {
            "enterprise_id": eid, "event_id": str(event.event_id), "event_type": event.event_type,
            "file_version": fs.version, "log": [partition, offset], "log_ts": timestamp_ms,
            "effects": out_effects, "sampling_items": items, "judgements": judgements,
        }
        return json.dumps(doc, ensure_ascii=False, default=_json_default).encode("utf-8")

    def views(self, limit: int | None = None) -> list[tuple[bytes, bytes]]:
        """Credit files changed since the last call, for the compacted credit-files topic."""
        out = []
        for eid in sorted(self.dirty)[:limit]:
            fs = self.files.get(eid)
            self.dirty.discard(eid)
            if fs is None or fs.file is None:
                continue
            doc = {"enterprise_id": eid, "version": fs.version, "file": fs.file.view()}
            out.append((eid.encode("utf-8"), json.dumps(doc, ensure_ascii=False, default=_json_default).encode("utf-8")))
        return out


# --------------------------------------------------------------------------- ingress, without Faust


def normalise(topic: str, partition: int, offset: int, raw: bytes, headers: dict[str, bytes], now: dt.datetime | None
              ) -> tuple[Envelope | None, DeadLetter | None]:
    """One record: the validated event (received_at set to ``now`` when given), or its dead letter."""
    from ingest.validate import Rejection, _error, validate_document

    where = f"{topic}/{partition}/{offset}"
    origin = headers.get("qrisk-position")
    position = f"{where} ({origin.decode('utf-8', 'replace')})" if origin else where
    letter_id = f"kafka:{topic}:{partition}:{offset}"
    try:
        doc = load_json(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        err = _error("", "json_invalid", f"record is not valid JSON: {exc}")
        return None, DeadLetter("kafka", position, raw, err["reason"], [err], dead_letter_id=letter_id)
    except RecursionError:
        err = _error("", "json_invalid", "record is not valid JSON: nested too deeply")
        return None, DeadLetter("kafka", position, raw, err["reason"], [err], dead_letter_id=letter_id)
    result = validate_document(doc, None, raw)
    if isinstance(result, Rejection):
        return None, DeadLetter("kafka", position, raw, result.reason, result.errors, dead_letter_id=letter_id)
    return (result if now is None else result.model_copy(update={"received_at": now})), None


# --------------------------------------------------------------------------- the Faust app


def create_app(settings: KafkaSettings | None = None, rules: Rules | None = None, **overrides: Any):
    """The Faust app with its two agents; ``app.qrisk_fold`` is the fold (for inspection in tests)."""
    import faust
    from faust.tables.table import Table

    settings = settings or KafkaSettings()
    if rules is None:
        from qrisk.runtime import default_rules

        rules = default_rules()
    topics: Topics = settings.topics()
    conf: dict[str, Any] = dict(
        broker=[f"kafka://{s}" for s in settings.bootstrap_servers()],
        store="memory://",
        datadir=settings.worker_data_dir,
        topic_partitions=settings.kafka_partitions,
        topic_replication_factor=settings.kafka_replication,
        topic_disable_leader=True,
        table_standby_replicas=1,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=settings.worker_session_timeout,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=20.0,
        stream_wait_empty=False,
        producer_acks=-1,
        producer_linger=0.002,
        web_enabled=settings.worker_web_port > 0,
        web_port=settings.worker_web_port or 6066,
        web_bind="0.0.0.0",
        web_in_thread=False,
    )
    credentials = _faust_credentials(settings)
    if credentials is not None:
        conf["broker_credentials"] = credentials
    conf.update(overrides)
    app = faust.App(settings.worker_app_id, **conf)

    class PartitionedTable(Table):
        """The key names its partition (``S|p|…``, ``E|p|…``): the changelog partition is the log's."""

        def partition_for_key(self, key: Any) -> int:
            return key_partition(key.decode("utf-8") if isinstance(key, bytes) else key)

    # keys and values are bytes both ways (raw): what recovery reads back is what was written
    files = app.tables.add(PartitionedTable(app, name="files", beacon=app.tables.beacon, partitions=settings.kafka_partitions,
                                            key_type=bytes, value_type=bytes, help="credit files: snapshots + applied events"))
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    ingress = app.topic(*[t.name for t in topics.ingress.values()], **raw)
    log_topic = app.topic(topics.events.name, **raw)
    effects_topic = app.topic(topics.effects.name, **raw)
    dlq_topic = app.topic(topics.dead_letters.name, **raw)
    views_topic = app.topic(topics.credit_files.name, **raw)
    fold = Fold(rules, topics.events.name, settings.worker_snapshot_every)
    app.qrisk_fold = fold  # type: ignore[attr-defined]
    app.qrisk_files = files  # type: ignore[attr-defined]
    app.qrisk_stats = {"applied": 0, "duplicates": 0, "dead_letters": 0, "normalised": 0, "batches": 0}  # type: ignore[attr-defined]
    stats = app.qrisk_stats  # type: ignore[attr-defined]
    log_partitions = list(range(settings.kafka_partitions))

    def _table_key(key: Any) -> str:
        return key.decode("utf-8") if isinstance(key, bytes) else key

    async def _publish(sends: list[tuple[Any, bytes | None, bytes, int | None]]) -> None:
        """Send and wait for the broker's acknowledgement of every message."""
        futures = [await topic.send(key=key, value=value, partition=partition) for topic, key, value, partition in sends]
        if futures:
            await asyncio.gather(*futures)

    def _letters(letters: list[DeadLetter], now: dt.datetime) -> list[tuple[Any, bytes | None, bytes, int | None]]:
        return [(dlq_topic, dl.dead_letter_id.encode("utf-8"), dead_letter_value(dl, now), None) for dl in letters]

    @app.agent(ingress, name="normalise")
    async def normalise_agent(stream):  # pragma: no cover - exercised against the real broker
        async for batch in stream.take_events(settings.worker_batch, within=settings.worker_batch_seconds):
            try:
                now = utc_now()
                sends: list[tuple[Any, bytes | None, bytes, int | None]] = []
                letters: list[DeadLetter] = []
                for ev in batch:
                    m = ev.message
                    headers = {k: v for k, v in (m.headers or [])} if not isinstance(m.headers, dict) else dict(m.headers)
                    event, letter = normalise(m.topic, m.partition, m.offset, m.value or b"", headers, now)
                    if letter is not None:
                        letters.append(letter)
                    elif event.enterprise_id == "*":
                        sends.extend((log_topic, TICK_KEY, event_value(event), p) for p in log_partitions)
                    else:
                        sends.append((log_topic, event.enterprise_id.encode("utf-8"), event_value(event), None))
                await _publish(sends + _letters(letters, now))
                stats["normalised"] += len(batch) - len(letters)
                stats["dead_letters"] += len(letters)
            except BaseException as exc:  # noqa: BLE001 - incl. cancellation: never let Faust acknowledge this batch
                _die(f"normalise: {type(exc).__name__}: {exc}")

    @app.agent(log_topic, name="fold")
    async def fold_agent(stream):  # pragma: no cover - exercised against the real broker
        async for batch in stream.take_events(settings.worker_batch, within=settings.worker_batch_seconds):
            try:
                out = BatchOutput()
                for ev in batch:
                    m = ev.message
                    # Every event of the batch is folded, even one whose partition was just
                    # revoked: skipping it would let Faust acknowledge it unfolded when the
                    # assignment seen here lags a rebalance.  A new owner that folds it again
                    # produces the same effects, which ClickHouse collapses by key.
                    if m.partition not in fold.loaded:
                        n = fold.load(m.partition, ((_table_key(k), v) for k, v in list(files.items())))
                        log.info("fold: partition %s: %s credit files rebuilt from the table", m.partition, n)
                    fold.apply(m.partition, m.offset, m.value or b"", int(m.timestamp * 1000) if m.timestamp else None, out)
                now = utc_now()
                # 2. effects and dead letters durable first …
                await _publish([(effects_topic, k, v, None) for k, v in out.effects] + _letters(out.letters, now))
                # 3. … then the state (Faust flushes the changelog before it commits the offsets)
                for key, value in out.writes:
                    if value is None:
                        files.pop(key.encode("utf-8"), None)
                    else:
                        files[key.encode("utf-8")] = value
                stats["applied"] += out.applied
                stats["duplicates"] += out.duplicates
                stats["dead_letters"] += len(out.letters)
                stats["batches"] += 1
            except BaseException as exc:  # noqa: BLE001 - incl. cancellation: never let Faust acknowledge this batch
                _die(f"fold: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")

    @app.timer(interval=settings.worker_view_seconds)
    async def publish_views() -> None:  # pragma: no cover - exercised against the real broker
        views = fold.views()
        if views:
            await _publish([(views_topic, k, v, None) for k, v in views])

    @app.on_partitions_revoked.connect
    async def on_revoked(app_, revoked, **kwargs) -> None:  # pragma: no cover
        fold.drop({tp.partition for tp in revoked if tp.topic == topics.events.name})

    return app


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


def run_worker(settings: KafkaSettings | None = None, rules: Rules | None = None, loglevel: str = "info", **overrides: Any) -> int:
    """Run the worker until SIGTERM/SIGINT (``qrisk worker``)."""
    import faust

    app = create_app(settings, rules, **overrides)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0
