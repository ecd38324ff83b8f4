"""The embedded pipeline: durable log append, then the pure fold, then derived tables.

Used by ``qrisk run`` (behind the HTTP API), ``qrisk import`` and ``qrisk demo``;
all three feed the same ``submit()``.  The order inside ``submit`` is the
durability contract: the log rows are written before the fold sees the events,
so a crash at any point is repaired by replaying the log at start-up.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import queue
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from processors.credit_file import CountyState, CreditFile
from processors.step import Effect, Rules, step
from schemas.events import Envelope, SamplingResultEvent
from schemas.upcast import parse_event

from qrisk.store import Store, migrate

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class Outcome:
    event_id: str
    status: str  # accepted | duplicate
    seq: int | None = None


@dataclass
class DeadLetter:
    channel: str  # http | import | kafka
    position: str  # where it came from: request id and index, file:line, topic/partition/offset
    raw: bytes
    reason: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    dead_letter_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def _split_ms(moment: dt.datetime) -> tuple[dt.datetime, int]:
    moment = moment.astimezone(dt.timezone.utc)
    return moment.replace(microsecond=0), moment.microsecond // 1000


class Pipeline:
    def __init__(self, store: Store, rules: Rules, clock: Clock = utc_now, snapshot_every: dt.timedelta = dt.timedelta(seconds=5)):
        self.store = store
        self.rules = rules
        self.clock = clock
        self.state = CountyState()
        self.seq = 0
        self.lock = threading.RLock()  # the fold and readers of state take turns
        self.listeners: list[Callable[[list[Effect]], None]] = []  # told of effects of new events, not of replays
        # credit-file snapshots are the costliest derived rows (the whole file as JSON):
        # written at most every `snapshot_every`, on close, and all of them after recovery
        self.snapshot_every = snapshot_every
        self._dirty: dict[str, int] = {}
        self._snapshot_at: dt.datetime | None = None
        self._sink: _DerivedSink | None = None
        self.derived_seq = 0
        migrate(store, clock())

    # ------------------------------------------------------------------ recovery

    def recover(self, progress: Callable[[int], None] | None = None, batch: int = 5000) -> int:
        """Rebuild the state by replaying the log; re-derive what the last run may not have written."""
        checkpoint = self._checkpoint()
        self.derived_seq = checkpoint
        replayed = 0
        last = 0
        while True:
            rows = self.store.query(
                # FINAL: a retried insert may show twice until the ReplacingMergeTree merges it
                "SELECT seq, body FROM event_log FINAL WHERE seq > %(after)s ORDER BY seq LIMIT %(limit)s",
                {"after": last, "limit": batch},
            )
            if not rows:
                break
            derived: list[tuple[int, Envelope, list[Effect]]] = []
            with self.lock:
                for row in rows:
                    seq = int(row["seq"])
                    event = parse_event(json.loads(row["body"]))
                    effects = self._fold(event)
                    if seq > checkpoint:
                        derived.append((seq, event, effects))
                    last = seq
                self.seq = last
            if derived:
                self._write_derived(derived)
            replayed += len(rows)
            if progress:
                progress(len(rows))
        if replayed:
            with self.lock:
                self._dirty = {eid: self.seq for eid in self.state.files}
            self.write_snapshots()
        return replayed

    def _checkpoint(self) -> int:
        rows = self.store.query("SELECT max(seq) AS seq FROM checkpoints WHERE name = %(name)s", {"name": "derived"})
        return int(rows[0]["seq"]) if rows and rows[0]["seq"] is not None else 0

    # ------------------------------------------------------------------ writes

    def submit(self, events: Sequence[Envelope]) -> list[Outcome]:
        """Append new events durably, fold them, write derived rows.  Repeated event_ids are no-ops."""
        with self.lock:
            outcomes: list[Outcome] = []
            fresh: list[tuple[int, Envelope]] = []
            batch_ids: set[str] = set()
            now = self.clock()
            for event in events:
                eid = str(event.event_id)
                if eid in self.state.seen_event_ids or eid in batch_ids:
                    outcomes.append(Outcome(eid, "duplicate"))
                    continue
                batch_ids.add(eid)
                self.seq += 1
                stamped = event.model_copy(update={"received_at": now})
                fresh.append((self.seq, stamped))
                outcomes.append(Outcome(eid, "accepted", self.seq))
            if not fresh:
                return outcomes
            try:
                self.store.insert("event_log", [self._log_row(seq, e) for seq, e in fresh])
            except Exception:
                self.seq -= len(fresh)  # nothing was acknowledged; the caller sees the error
                raise
            derived = [(seq, event, self._fold(event)) for seq, event in fresh]
        self._write_derived(derived)
        produced = [eff for _, _, effects in derived for eff in effects]
        for listener in self.listeners:
            listener(produced)
        return outcomes

    def _fold(self, event: Envelope) -> list[Effect]:
        """step(), with a processing error turned into a visible effect instead of a lost event.

        The event is already in the log; a replay meets the same error at the same
        point, so state stays deterministic, and the dead letter (keyed by event id)
        is written once.
        """
        try:
            self.state, effects = step(self.state, event, self.rules)
            return effects
        except Exception as exc:  # noqa: BLE001 - any bug in the fold must not stop the log
            reason = f"processing failed: {type(exc).__name__}: {exc}"
            return [Effect(kind="processing.failed", enterprise_id=event.enterprise_id, event_id=str(event.event_id),
                           occurred_at=event.occurred_at, data={"reason": reason, "event_type": event.event_type})]

    def dead_letter(self, letters: Iterable[DeadLetter]) -> list[str]:
        now, ms = _split_ms(self.clock())
        rows = []
        for dl in letters:
            try:
                raw, encoding = dl.raw.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                raw, encoding = base64.b64encode(dl.raw).decode("ascii"), "base64"
            rows.append({
                "dead_letter_id": dl.dead_letter_id, "received_at": now, "received_ms": ms,
                "channel": dl.channel, "position": dl.position, "raw": raw, "raw_encoding": encoding,
                "reason": dl.reason, "errors": json.dumps(dl.errors, ensure_ascii=False),
            })
        self.store.insert("dead_letters", rows)
        return [r["dead_letter_id"] for r in rows]

    @staticmethod
    def _log_row(seq: int, event: Envelope) -> dict[str, Any]:
        occurred, occurred_ms = _split_ms(event.occurred_at)
        received, received_ms = _split_ms(event.received_at)
        return {
            "seq": seq, "event_id": str(event.event_id), "event_type": event.event_type,
            "schema_version": event.schema_version, "enterprise_id": event.enterprise_id,
            "occurred_at": occurred, "occurred_ms": occurred_ms, "received_at": received, "received_ms": received_ms,
            "source_kind": event.source.kind, "source_id": event.source.id,
            # only what the producer set (plus received_at): a null never masquerades as a value
            "body": event.model_dump_json(exclude_unset=True),
        }

    # ------------------------------------------------------------------ derived tables

    def _write_derived(self, derived: Sequence[tuple[int, Envelope, list[Effect]]]) -> None:
        batch = self._derive(derived)
        if self._sink is not None:
            self._sink.put(batch)
        else:
            self._store_derived([batch])

    def _derive(self, derived: Sequence[tuple[int, Envelope, list[Effect]]]) -> "DerivedRows":
        """Rows for the derived tables, built while the state is at these events."""
        rows = DerivedRows(last_seq=derived[-1][0])
        with self.lock:
            touched = self._dirty
            for seq, event, effects in derived:
                for idx, eff in enumerate(effects):
                    rows.effects.append({
                        "seq": seq, "idx": idx, "kind": eff.kind, "enterprise_id": eff.enterprise_id,
                        "event_id": eff.event_id, "occurred_at": _split_ms(eff.occurred_at)[0],
                        "data": json.dumps(eff.data, ensure_ascii=False, sort_keys=True),
                    })
                    if eff.kind == "processing.failed":
                        rows.letters.append(DeadLetter("processing", f"seq {seq}", event.model_dump_json(exclude_unset=True).encode(), eff.data["reason"], dead_letter_id=f"processing-{eff.event_id}"))
                    if eff.kind == "sampling.judged":
                        items, judgement = _sample_rows(self.state.files[eff.enterprise_id], eff.data["sample_event_id"])
                        rows.items.extend(items)
                        rows.judgements.append(judgement)
                    touched[eff.enterprise_id] = seq
                if event.enterprise_id != "*":
                    touched[event.enterprise_id] = seq
        return rows

    def _store_derived(self, batches: Sequence["DerivedRows"]) -> None:
        self.store.insert("sampling_items", [r for b in batches for r in b.items])
        self.store.insert("judgements", [r for b in batches for r in b.judgements])
        self.store.insert("effects", [r for b in batches for r in b.effects])
        letters = [dl for b in batches for dl in b.letters]
        if letters:
            self.dead_letter(letters)
        last = max(b.last_seq for b in batches)
        # the checkpoint goes last: a crash before it re-derives these rows at start-up
        self.store.insert("checkpoints", [{"name": "derived", "seq": last}])
        self.derived_seq = max(self.derived_seq, last)
        now = self.clock()
        if self._snapshot_at is None or now - self._snapshot_at >= self.snapshot_every:
            self.write_snapshots()

    def start_background_sink(self) -> None:
        """Write derived rows from a thread of their own, so an answer waits only for the log and the fold."""
        if self._sink is None:
            self._sink = _DerivedSink(self)

    def wait_derived(self, timeout: float = 60.0) -> bool:
        """True once every folded event's derived rows are written."""
        return self._sink.drain(timeout) if self._sink is not None else True

    def write_snapshots(self) -> None:
        """Write the credit files changed since the last snapshot."""
        with self.lock:
            dirty, self._dirty = self._dirty, {}
            rows = [
                {"enterprise_id": eid, "seq": seq, "body": json.dumps(self.state.files[eid].view(), ensure_ascii=False)}
                for eid, seq in dirty.items() if eid in self.state.files
            ]
            self._snapshot_at = self.clock()
        self.store.insert("credit_files", rows)

    def close(self) -> None:
        if self._sink is not None:
            self._sink.stop()
            self._sink = None
        self.write_snapshots()
        self.store.close()

    # ------------------------------------------------------------------ reads

    def credit_file(self, enterprise_id: str) -> dict[str, Any] | None:
        with self.lock:
            file = self.state.files.get(enterprise_id)
            return None if file is None else file.view()


@dataclass
class DerivedRows:
    last_seq: int
    items: list[dict[str, Any]] = field(default_factory=list)
    judgements: list[dict[str, Any]] = field(default_factory=list)
    effects: list[dict[str, Any]] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)


class _DerivedSink:
    """One thread that writes derived rows, coalescing whatever queued up meanwhile.

    A failed write is retried with backoff and nothing is dropped: the rows stay
    queued, and the checkpoint does not move, so a crash meanwhile re-derives them
    from the log at start-up.
    """

    def __init__(self, pipeline: "Pipeline"):
        self.pipeline = pipeline
        self.queue: "queue.Queue[DerivedRows | None]" = queue.Queue()
        self.idle = threading.Event()
        self.idle.set()
        self.failures = 0
        self.thread = threading.Thread(target=self._run, name="qrisk-derived-sink", daemon=True)
        self.thread.start()

    def put(self, rows: DerivedRows) -> None:
        self.idle.clear()
        self.queue.put(rows)

    def drain(self, timeout: float) -> bool:
        return self.idle.wait(timeout)

    def stop(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=60)

    def _run(self) -> None:
        pending: list[DerivedRows] = []
        stopping = False
        while not (stopping and not pending):
            if not pending:
                first = self.queue.get()
                if first is None:
                    return
                pending.append(first)
            while True:
                try:
                    more = self.queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                pending.append(more)
            try:
                self.pipeline._store_derived(pending)
                pending = []
                self.failures = 0
                if self.queue.empty():
                    self.idle.set()
            except Exception as exc:  # noqa: BLE001 - keep the rows, try again
                self.failures += 1
                delay = min(30.0, 0.1 * 2 ** min(self.failures, 9))
                print(f"qrisk: derived rows not written ({type(exc).__name__}: {exc}); retrying in {delay:.1f}s", file=sys.stderr)
                time.sleep(delay)


def _sample_rows(file: CreditFile, sample_event_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    record = next(s for s in reversed(file.samples) if s.event_id == sample_event_id)
    j = record.judgement
    category = file.profile.category if file.profile else ""
    rows = []
    for item in j.items:
        for index, value in enumerate(item.values):
            nd = value == "ND"
            rows.append({
                "event_id": record.event_id, "enterprise_id": file.enterprise_id, "category": category,
                "sample_no": record.sample_no, "product": record.product, "lab": record.lab,
                "item_code": item.item_code, "item_name": item.item_name or "", "item_class": item.item_class or "",
                "value_index": index, "value": None if nd else float(value), "not_detected": int(nd),
                "unit": item.unit or "", "limit_text": item.limit_text or "", "standard": item.standard or "",
                "verdict": item.verdict, "reason": item.reason, "lab_verdict": item.lab_verdict or "",
                "sampled_on": record.sampled_on, "production_date": record.production_date,
                "occurred_at": _split_ms(record.occurred_at)[0],
            })
    judgement = {
        "event_id": record.event_id, "enterprise_id": file.enterprise_id, "category": category,
        "sample_no": record.sample_no, "product": record.product, "verdict": j.verdict,
        "failed_items": [i.item_code for i in j.items if i.verdict == "fail"] + [f"sum_of_ratios:{c.group}" for c in j.sum_checks if c.verdict == "fail"],
        "disagreements": list(j.disagreements), "unknown": [u.item_code or u.text or u.kind for u in j.unknown],
        "sampled_on": record.sampled_on, "occurred_at": _split_ms(record.occurred_at)[0],
    }
    return rows, judgement
