"""Producers for the distributed runtime: the event log and dead letters on Kafka.

``KafkaLog`` is what the HTTP API uses instead of the embedded ``Pipeline`` when it runs in
distributed mode: ``submit(events)`` publishes validated events to the log topic (key =
enterprise_id; a clock.tick goes to every partition) and returns only after the broker
acknowledged every one of them (kafka-python, ``acks=all``, idempotent producer), and
``dead_letter(letters)`` keeps rejected inputs on the dead-letter topic.  ``produce_file``
sends a JSONL/CSV file to an ingress topic for lab systems and bridges (``qrisk produce``).

In this mode the API cannot tell a repeated ``event_id`` from a new one (the workers hold
that state): every event is answered ``accepted``, and the workers apply a repeat no second
time.
"""
from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import datetime as dt
import json
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from schemas.events import Envelope

from qrisk.pipeline import (LETTER_ERRORS_KEPT, LETTER_TEXT_KEPT, DeadLetter, Outcome, imported_letter, letter_errors,  # noqa: F401 - the constants, as before
                            letter_errors_total, letter_text)
from qrisk.topics import EVENT_MAX_BYTES, LETTER_MESSAGE_MAX_BYTES, KafkaSettings, Topics, tick_refusal, utc_now

TICK_KEY = b"*"
LOG_SEQ_SHIFT = 40
"""A log position as one number: partition << 40 | offset (``events.seq`` in ClickHouse says the same)."""


class PublishError(Exception):
    """The broker did not acknowledge every message; nothing may be reported as accepted."""

    def __init__(self, message: str, failed: list[str]):
        super().__init__(message)
        self.failed = failed


@dataclasses.dataclass
class Published(Outcome):
    """An ``Outcome`` of the Kafka log: where the broker put the event (a tick: every partition)."""

    partition: int | None = None
    offset: int | None = None


def event_value(event: Envelope) -> bytes:
    """The log's bytes for one event: only what the producer set, plus received_at."""
    return event.model_dump_json(exclude_unset=True).encode("utf-8")


LETTER_MAX_BYTES = LETTER_MESSAGE_MAX_BYTES - 64 * 1024
"""The largest dead letter sent whole (its key and record batch fit around it in the topic)."""
LETTER_HEAD_BYTES = 64 * 1024
"""What a bounded letter keeps of the refused bytes (see ``dead_letter_value``)."""


def dead_letter_value(letter: DeadLetter, now: dt.datetime, max_bytes: int = LETTER_MAX_BYTES) -> bytes:
    """The dead-letter topic's JSON for one letter (raw bytes as UTF-8 text, else base64), its reason
    and errors bounded as the store keeps them (``letter_text``, ``letter_errors``).

    A letter over ``max_bytes`` is kept bounded rather than lost or refused by the broker (which
    stopped the worker at every start on the same record): the head of the raw bytes, their size
    and sha256, the first errors, and a reason saying it was truncated."""
    value = _letter_json(letter, letter.raw, now)
    if len(value) <= max_bytes:
        return value
    return bounded_letter_value(letter, now, min(LETTER_HEAD_BYTES, max(1024, max_bytes // 8)))


def bounded_letter_value(letter: DeadLetter, now: dt.datetime, head_bytes: int = LETTER_HEAD_BYTES) -> bytes:
    """The letter with only the first ``head_bytes`` of its raw bytes (and its first errors, each
    text cut short): a few hundred kB at most, whatever the letter was."""
    size, digest = len(letter.raw), hashlib.sha256(letter.raw).hexdigest()
    note_en = f"dead letter truncated: the raw bytes were {size} bytes (sha256 {digest}), too large to keep whole; the first {min(size, head_bytes)} are kept"
    note_zh = f"拒收记录已截断：原始数据 {size} 字节（sha256 {digest}）过大，无法完整保存，仅保留前 {min(size, head_bytes)} 字节"
    note = {"field": "", "type": "letter_truncated", "reason": note_en, "reason_zh": note_zh, "raw_bytes": size,
            "raw_sha256": digest, "errors_total": letter_errors_total(letter.errors)}
    return _letter_json(letter, letter.raw[:head_bytes], now, note)


def _letter_json(letter: DeadLetter, raw_bytes: bytes, now: dt.datetime, note: dict[str, Any] | None = None) -> bytes:
    # Every letter's reason and errors bounded here, whoever made it (the worker's ingress, its fold, the
    # API's and a file's refusals): a record of 20,000 keys each given twice made a 7 MB letter the
    # sink stored whole.  ``note``: what a bounded letter says of itself, after the errors kept
    reason, errors = letter_text(letter.reason), letter_errors(letter.errors)
    if note is not None:
        reason = f"{reason} [{note['reason']}]"
        errors.append(note)
    try:
        raw, encoding = raw_bytes.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        raw, encoding = base64.b64encode(raw_bytes).decode("ascii"), "base64"
    doc = {
        "dead_letter_id": letter.dead_letter_id, "channel": letter.channel, "position": letter.position,
        "raw": raw, "raw_encoding": encoding, "reason": reason, "errors": errors,
        # read from the letter's whole bytes: a bounded letter keeps only their head, which may not parse
        "event_id": letter.named_event(),
        "received_at": now.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds"),
    }
    if letter.columns is not None:  # an imported CSV record's header, which the sink's preview masks by
        doc["columns"], doc["delimiter"] = letter.columns, letter.delimiter
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


class EventTooLarge(Exception):
    """Events of a batch too large for the log: nothing of the batch was published.  ``refused``:
    (index in the batch, error naming the field and the reason in English and Chinese, the event's
    bytes as they would have gone to the log)."""

    def __init__(self, refused: list[tuple[int, dict[str, Any], bytes]]):
        super().__init__("; ".join(f"index {i}: {e['reason']}" for i, e, _ in refused))
        self.refused = refused


def too_large_error(size: int, limit: int = EVENT_MAX_BYTES, what: str = "event") -> dict[str, Any]:
    return {"field": "", "type": "too_large", "size": size, "limit": limit,
            "reason": f"the {what} is {size} bytes, more than the {limit} bytes one event may have in the log; "
                      f"split it or shorten its texts (a batch may be larger: each event is counted alone)",
            "reason_zh": f"该事件为 {size} 字节，超过事件日志中单个事件的上限 {limit} 字节；请拆分或缩短文本（整批可以更大：按单个事件计算）"}


def new_producer(settings: KafkaSettings, **overrides: Any):
    """kafka-python producer: acks=all, idempotent (ordered per partition across retries)."""
    from kafka import KafkaProducer

    config: dict[str, Any] = dict(
        bootstrap_servers=settings.bootstrap_servers(), client_id="qrisk-producer",
        acks="all", enable_idempotence=True, max_in_flight_requests_per_connection=5,
        linger_ms=2, batch_size=256 * 1024, compression_type=None,
        delivery_timeout_ms=120_000, request_timeout_ms=30_000, max_block_ms=60_000,
        # what the dead-letter topic takes (a letter carries the refused bytes with its reasons);
        # kafka-python's 1 MB default refused those letters, and events are checked against
        # EVENT_MAX_BYTES before anything of a batch is sent
        max_request_size=LETTER_MESSAGE_MAX_BYTES,
        **settings.security(),
    )
    config.update(overrides)
    return KafkaProducer(**config)


class KafkaLog:
    """Publish events and dead letters; every call returns after the broker acknowledged."""

    def __init__(self, settings: KafkaSettings | None = None, clock: Callable[[], dt.datetime] = utc_now,
                 timeout_s: float = 60.0, **producer_overrides: Any):
        self.settings = settings or KafkaSettings()
        self.topics: Topics = self.settings.topics()
        self.clock = clock
        self.timeout_s = timeout_s
        self._producer_overrides = producer_overrides
        self.producer = new_producer(self.settings, **producer_overrides)
        self.producers_replaced = 0
        self._partitions: list[int] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the log

    def log_partitions(self) -> list[int]:
        if self._partitions is None:
            with self._lock:
                parts = self.producer.partitions_for(self.topics.events.name)
                if not parts:
                    raise PublishError(f"topic {self.topics.events.name} does not exist (run `qrisk topics create`)", [])
                self._partitions = sorted(parts)
        return self._partitions

    def submit(self, events: Sequence[Envelope]) -> list[Published]:
        """Publish validated events to the log; returns once all are acknowledged (or raises PublishError).

        Raises ``EventTooLarge`` before sending anything when an event is too large for the log:
        sent as it came, the batch's earlier events were published and the oversized one then
        refused by the producer (a 500 for the API, with half the batch in the log)."""
        now = self.clock()
        topic = self.topics.events.name
        values = [event_value(event.model_copy(update={"received_at": now})) for event in events]
        refused = [(i, too_large_error(len(v)), v) for i, v in enumerate(values) if len(v) > EVENT_MAX_BYTES]
        if refused:
            raise EventTooLarge(refused)
        pending: list[tuple[Published, list[Any]]] = []
        with self._refused_as_publish_error(events):
            for event, value in zip(events, values):
                outcome = Published(str(event.event_id), "accepted")
                if event.enterprise_id == "*":
                    # the clock reaches every credit file: one copy (same event_id) per partition
                    futures = [self.producer.send(topic, value=value, key=TICK_KEY, partition=p) for p in self.log_partitions()]
                else:
                    futures = [self.producer.send(topic, value=value, key=event.enterprise_id.encode("utf-8"))]
                pending.append((outcome, futures))
        self._wait(pending, "event")
        return [o for o, _ in pending]

    def tick(self, at: dt.datetime | None = None, source_id: str = "qrisk-tick") -> Published:
        """Publish one clock.tick (to every partition): overdue checks by the log's clock."""
        from schemas.upcast import parse_event

        at = at or self.clock()
        event = parse_event({
            "event_id": str(uuid.uuid4()), "event_type": "clock.tick", "schema_version": 2, "enterprise_id": "*",
            "occurred_at": at.isoformat(), "source": {"kind": "system", "id": source_id}, "payload": {},
        })
        return self.submit([event])[0]

    # ------------------------------------------------------------------ dead letters

    def dead_letter(self, letters: Iterable[DeadLetter]) -> list[str]:
        """Keep rejected inputs on the dead-letter topic; returns their ids once acknowledged.
        (A letter larger than the topic takes goes bounded: ``dead_letter_value``.)"""
        now = self.clock()
        pending = []
        letters = list(letters)
        with self._refused_as_publish_error(letters):
            for letter in letters:
                pending.append((Published(letter.dead_letter_id, "dead_lettered"), [self.send_letter(letter, now)]))
        self._wait(pending, "dead letter")
        return [o.event_id for o, _ in pending]

    def send_letter(self, letter: DeadLetter, now: dt.datetime | None = None) -> Any:
        """Hand one letter to the producer (bounded as ``dead_letter`` bounds it); its future resolves once acknowledged."""
        return self.producer.send(self.topics.dead_letters.name, value=dead_letter_value(letter, now or self.clock()),
                                  key=letter.dead_letter_id.encode("utf-8"))

    # ------------------------------------------------------------------ raw ingress

    def send_raw(self, topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]] | None = None) -> Any:
        return self.producer.send(topic, value=value, key=key, headers=headers or [])

    @contextlib.contextmanager
    def _refused_as_publish_error(self, items: Sequence[Any]) -> Iterator[None]:
        """A send the producer refuses itself (no metadata within ``max_block_ms``: the broker away) is a
        publish that failed, as an unacknowledged one is: the API answers 503, not 500."""
        from kafka.errors import KafkaError

        try:
            yield
        except KafkaError as exc:
            ids = [str(getattr(i, "event_id", None) or getattr(i, "dead_letter_id", "")) for i in items]
            raise PublishError(f"{len(ids)} message(s) not sent to Kafka: {type(exc).__name__}: {exc}", ids) from exc

    def _wait(self, pending: list[tuple[Published, list[Any]]], what: str) -> None:
        failed: list[str] = []
        first_error: BaseException | None = None
        for outcome, futures in pending:
            for fut in futures:
                try:
                    meta = fut.get(timeout=self.timeout_s)
                except Exception as exc:  # noqa: BLE001 - reported below, never swallowed
                    failed.append(outcome.event_id)
                    first_error = first_error or exc
                    break
                if outcome.partition is None:
                    outcome.partition, outcome.offset = meta.partition, meta.offset
                    outcome.seq = (meta.partition << LOG_SEQ_SHIFT) | meta.offset
        if failed:
            self._replace_if_wedged()
            raise PublishError(f"{len(failed)} {what}(s) not acknowledged by Kafka: {type(first_error).__name__}: {first_error}", failed)

    def _replace_if_wedged(self) -> None:
        """A new producer when kafka-python's idempotent one went into an error state: after the broker refused one
        batch as too large (a topic whose max.message.bytes is below what qrisk declared) it failed every later send,
        to any topic, with the same error — every POST 503 and no dead letter kept, until the API was restarted.
        The refused batch is answered 503 (nothing of it is accepted); the next one goes through a fresh producer."""
        manager = getattr(self.producer, "_transaction_manager", None)
        if manager is None or not (manager.has_fatal_error() or manager.has_abortable_error()):
            return
        with self._lock:
            old, self.producer = self.producer, new_producer(self.settings, **self._producer_overrides)
            self.producers_replaced += 1
        print(f"qrisk: Kafka 生产者进入错误状态，已更换 / the Kafka producer went into an error state and was replaced "
              f"({self.producers_replaced} so far)", file=sys.stderr, flush=True)
        try:
            old.close(timeout=1)
        except Exception:  # noqa: BLE001 - the old one is dropped either way
            pass

    def flush(self) -> None:
        self.producer.flush(timeout=self.timeout_s)

    def close(self) -> None:
        self.producer.close(timeout=self.timeout_s)

    def __enter__(self) -> "KafkaLog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --------------------------------------------------------------------------- qrisk produce


def produce_file(path: Path, source: str, settings: KafkaSettings | None = None, progress: Callable[[int], None] | None = None,
                 window: int = 5000) -> dict[str, Any]:
    """Send a JSONL/CSV file to the ingress topic of ``source``; the workers validate it.

    Each record goes as received (a JSONL line byte for byte, a CSV row as its JSON document)
    with headers ``qrisk-position`` (file:line) and ``qrisk-channel``; the key is the record's
    enterprise_id when it can be read.  A record the reader cannot even decode (not JSON, a
    broken CSV row) goes straight to the dead-letter topic with its position and reason.
    Returns once the broker acknowledged everything.
    """
    from ingest.files import LineError, read_events

    log = KafkaLog(settings)
    topic = log.topics.ingress_for(source).name
    sent = dead = 0
    window_futures: list[tuple[str, Any]] = []
    # A bad line's letter is sent when it is found, and waited for with the window it falls in: held to
    # the end of the file, the letters went nowhere when a record was refused half way (PublishError)
    letter_futures: list[tuple[str, Any]] = []

    def refuse(letter: DeadLetter) -> None:
        letter_futures.append((letter.position, log.send_letter(letter)))
        if len(window_futures) + len(letter_futures) >= window:
            drain()

    def drain() -> None:
        nonlocal sent, dead
        # the letters first: they were sent before the records after them, and are kept even when one of those fails
        failed = []
        for position, fut in letter_futures:
            try:
                fut.get(timeout=log.timeout_s)
            except Exception as exc:  # noqa: BLE001
                failed.append(f"{position}: {type(exc).__name__}: {exc}")
        if failed:
            raise PublishError(f"{len(failed)} dead letter(s) not acknowledged by Kafka, first: {failed[0]}", failed)
        dead += len(letter_futures)
        letter_futures.clear()
        failed = []
        for position, fut in window_futures:
            try:
                fut.get(timeout=log.timeout_s)
            except Exception as exc:  # noqa: BLE001
                failed.append(f"{position}: {type(exc).__name__}: {exc}")
        if failed:
            raise PublishError(f"{len(failed)} record(s) not acknowledged by Kafka, first: {failed[0]} ({dead} refused line(s) "
                               f"kept in dead letters so far)", failed)
        sent += len(window_futures)
        if progress:
            progress(len(window_futures))
        window_futures.clear()

    try:
        for position, raw, doc in read_events(path):
            if isinstance(doc, LineError):
                # as `qrisk import` keeps it: the field, its error code, the reason in both languages
                refuse(imported_letter(position, raw, f"{doc.field or '(body)'}: {doc.en}", [doc.error()]))
                continue
            if isinstance(doc, dict) and doc.get("event_type") == "clock.tick":
                # the workers refuse it too (qrisk.topics.tick_refusal); said here, with the line
                error = tick_refusal(topic)
                refuse(imported_letter(position, raw, f"forbidden: {error['reason']}", [error], doc))
                continue
            if path.suffix.lower() == ".csv":
                value = json.dumps(doc, ensure_ascii=False).encode("utf-8")
            else:
                value = raw
            eid = doc.get("enterprise_id") if isinstance(doc, dict) else None
            key = eid.encode("utf-8") if isinstance(eid, str) and eid else None
            headers = [("qrisk-position", position.encode("utf-8")), ("qrisk-channel", b"import")]
            size = len(value) + len(key or b"") + sum(len(k) + len(v) for k, v in headers)
            if size > EVENT_MAX_BYTES:
                # checked before sending: the producer refuses it (or the broker, past its limit) and
                # with it the whole run, and nothing after this line would be sent
                error = too_large_error(size, what="record")
                refuse(imported_letter(position, raw, f"too_large: {error['reason']}", [error], doc))
                continue
            window_futures.append((position, log.send_raw(topic, value, key, headers)))
            if len(window_futures) + len(letter_futures) >= window:
                drain()
        drain()
    finally:
        log.close()
    return {"file": str(path), "topic": topic, "sent": sent, "dead_lettered": dead}
