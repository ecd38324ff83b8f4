"""Batched, retried writes to one table: the way rows reach ClickHouse when the server may be away.

``BatchWriter(store, table)`` takes rows with ``add()`` and writes them from a thread of its
own in batches of up to ``max_rows``, at least every ``max_delay_s``.  ``add()`` returning is
the acknowledgement: from then on the row is kept — in memory, and in a spill file when
``spill_dir`` is given — until an INSERT of it succeeded.  While the server is down the
writer retries with bounded exponential backoff and keeps accepting rows (up to
``max_pending_rows``; then ``add()`` blocks, which is the back-pressure).

Nothing written twice: a retried INSERT may have landed the first time (the server can die
after writing a part, before answering), so the same rows can reach the table twice.  The
tables are ReplacingMergeTree keyed by what makes a row unique, and every counting read
uses FINAL / argMax, so a duplicate row is never a duplicate fact.  (Server 18.16 has insert
deduplication only for replicated tables, so the keys are the guarantee.)

Errors that retrying cannot fix (a row that does not fit the table, a missing table) stop
the writer: ``add()`` and ``flush()`` raise ``WriterFailed`` and the rows stay pending —
unless ``on_reject`` is given, in which case the batch is split until the offending rows are
found, those go to ``on_reject(rows, error)`` (for example to dead letters) and the rest
are written.
"""
from __future__ import annotations

import collections
import itertools
import json
import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from qrisk.store import Store, _json_default, is_transient
from qrisk.threads import NamedThread

Row = dict[str, Any]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: initial_s, ×multiplier per failure, capped at max_s, ±jitter (a fraction).

    ``seed`` makes the jitter reproducible.  ``give_up_after_s`` (None: never) turns a long
    outage into a failure of the writer instead of waiting for ever.
    """

    initial_s: float = 0.1
    max_s: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.2
    seed: int | None = None
    give_up_after_s: float | None = None

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.max_s, self.initial_s * self.multiplier ** max(0, attempt - 1))
        if self.jitter:
            base *= 1 + rng.uniform(-self.jitter, self.jitter)
        return max(0.0, min(base, self.max_s))


class WriterFailed(RuntimeError):
    """The writer met an error retrying cannot fix; its rows are still pending (and spilled)."""


class BufferFull(RuntimeError):
    """``add()`` waited for room longer than its timeout; the rows were not acknowledged."""


class _Spill:
    """Acknowledged rows on disk, in segment files deleted once every row in them is written."""

    def __init__(self, folder: Path, table: str, segment_rows: int, fsync: bool):
        self.folder = folder
        self.table = table
        self.segment_rows = segment_rows
        self.fsync = fsync
        folder.mkdir(parents=True, exist_ok=True)
        self.segments: collections.deque[list[Any]] = collections.deque()  # [number, start, end, path]
        self._fh: Any = None

    def _path(self, number: int) -> Path:
        return self.folder / f"{self.table}-{number:010d}.jsonl"

    def recover(self) -> list[Row]:
        """Rows a previous writer acknowledged but never wrote, in order."""
        rows: list[Row] = []
        files = sorted(self.folder.glob(f"{self.table}-*.jsonl"))
        for path in files:
            number = int(path.stem.rsplit("-", 1)[1])
            start = len(rows)
            with open(path, "rb") as fh:
                for line in fh:
                    if not line.endswith(b"\n"):
                        break  # a torn last line: its add() never returned
                    rows.append(json.loads(line))
            self.segments.append([number, start, len(rows), path])
        return rows

    def append(self, first_index: int, rows: Sequence[Row]) -> None:
        if not self.segments or self._fh is None or self.segments[-1][2] - self.segments[-1][1] >= self.segment_rows:
            self._roll(first_index)
        data = "".join(json.dumps(r, ensure_ascii=False, default=_json_default) + "\n" for r in rows).encode("utf-8")
        self._fh.write(data)
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        self.segments[-1][2] += len(rows)

    def _roll(self, first_index: int) -> None:
        if self._fh is not None:
            self._fh.close()
        number = self.segments[-1][0] + 1 if self.segments else 1
        path = self._path(number)
        self._fh = open(path, "ab")
        self.segments.append([number, first_index, first_index, path])

    def written_through(self, index: int) -> None:
        """Every row below ``index`` is in the table: drop the segments that hold only those."""
        while self.segments and self.segments[0][2] <= index:
            number, _, _, path = self.segments[0]
            is_open = self._fh is not None and len(self.segments) == 1
            if is_open:
                self._fh.close()
                self._fh = None
            self.segments.popleft()
            try:
                path.unlink()
            except FileNotFoundError:
                pass

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class BatchWriter:
    def __init__(
        self,
        store: Store,
        table: str,
        *,
        max_rows: int = 10_000,
        max_delay_s: float = 1.0,
        retry: RetryPolicy = RetryPolicy(),
        max_pending_rows: int = 1_000_000,
        spill_dir: str | os.PathLike[str] | None = None,
        spill_fsync: bool = False,
        on_reject: Callable[[list[Row], BaseException], None] | None = None,
        name: str | None = None,
    ):
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self.store = store
        self.table = table
        self.max_rows = max_rows
        self.max_delay_s = max_delay_s
        self.retry = retry
        self.max_pending_rows = max_pending_rows
        self.on_reject = on_reject
        self._rng = random.Random(retry.seed)
        self._cond = threading.Condition()
        self._pending: collections.deque[Row] = collections.deque()
        self._added_at: collections.deque[tuple[int, float]] = collections.deque()  # (end index, monotonic time of add)
        self.acknowledged = 0  # rows add() has returned for (including recovered ones)
        self.written = 0  # rows known to be in the table (or handed to on_reject), a prefix of acknowledged
        self.rejected = 0
        self.batches = 0
        self.retries = 0
        self.last_error: BaseException | None = None
        self.failed: BaseException | None = None
        self._flush_to = 0
        self._stopping = False
        self._abort = False
        self._spill = _Spill(Path(spill_dir), table, max(max_rows, 10_000), spill_fsync) if spill_dir else None
        if self._spill is not None:
            recovered = self._spill.recover()
            if recovered:
                self._pending.extend(recovered)
                self.acknowledged = len(recovered)
                self._added_at.append((self.acknowledged, time.monotonic() - max_delay_s))  # write them at once
        self._thread = NamedThread(target=self._run, name=name or f"qrisk-writer-{table}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ producer side

    @property
    def pending(self) -> int:
        return self.acknowledged - self.written

    def add(self, rows: Row | Iterable[Row], timeout: float | None = None) -> int:
        """Accept rows; once this returns they will be written (returns how many were accepted)."""
        batch = [rows] if isinstance(rows, dict) else list(rows)
        if not batch:
            return 0
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                self._raise_if_failed()
                if self._stopping:
                    raise RuntimeError("writer is closed")
                pending = self.acknowledged - self.written
                if pending == 0 or pending + len(batch) <= self.max_pending_rows:
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise BufferFull(f"{self.table}: {pending} rows pending, no room for {len(batch)} more")
                self._cond.wait(left)
            if self._spill is not None:
                self._spill.append(self.acknowledged, batch)  # on disk before it is acknowledged
            self._pending.extend(batch)
            self.acknowledged += len(batch)
            self._added_at.append((self.acknowledged, time.monotonic()))
            if pending == 0 or self.acknowledged - self.written >= self.max_rows:
                self._cond.notify_all()  # the thread sets its timer, or writes a full batch
            return len(batch)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row acknowledged before this call is written; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self.acknowledged
            self._flush_to = max(self._flush_to, target)
            self._cond.notify_all()
            while self.written < target:
                self._raise_if_failed()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left if left is None else min(left, 1.0))
            return True

    def close(self, timeout: float | None = None) -> bool:
        """Write what is pending (waiting up to ``timeout``) and stop the thread.

        Returns False when rows were left unwritten: they are lost with the process unless a
        spill directory holds them for the next writer.
        """
        ok = True
        try:
            ok = self.flush(timeout)
        except WriterFailed:
            ok = False
        with self._cond:
            self._stopping = True
            if not ok:
                self._abort = True
            self._cond.notify_all()
        self._thread.join(timeout if not ok else None)
        if self._spill is not None:
            self._spill.close()
        return ok

    def __enter__(self) -> "BatchWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "table": self.table, "acknowledged": self.acknowledged, "written": self.written,
                "pending": self.acknowledged - self.written, "rejected": self.rejected, "batches": self.batches,
                "retries": self.retries, "failed": repr(self.failed) if self.failed else None,
                "last_error": repr(self.last_error) if self.last_error else None,
            }

    def _raise_if_failed(self) -> None:
        if self.failed is not None:
            raise WriterFailed(f"{self.table}: {self.failed}") from self.failed

    # ------------------------------------------------------------------ the writing thread

    def _due(self, now: float) -> float | None:
        """0 when a batch should be written now, else seconds to wait (None: until told)."""
        pending = self.acknowledged - self.written
        if pending == 0:
            return None
        if pending >= self.max_rows or self._flush_to > self.written or self._stopping:
            return 0.0
        oldest = self._added_at[0][1] if self._added_at else now
        return max(0.0, oldest + self.max_delay_s - now)

    def _run(self) -> None:
        attempt = 0
        outage_started: float | None = None
        while True:
            with self._cond:
                while True:
                    if self._abort or (self._stopping and self.acknowledged == self.written):
                        return
                    if self.failed is not None:
                        self._cond.wait()
                        continue
                    wait = self._due(time.monotonic())
                    if wait == 0.0:
                        break
                    self._cond.wait(wait)
                batch = list(itertools.islice(self._pending, self.max_rows))
            try:
                self._write(batch)
            except BaseException as exc:  # noqa: BLE001 - classified below, never dropped
                with self._cond:
                    self.last_error = exc
                    now = time.monotonic()
                    outage_started = outage_started or now
                    give_up = self.retry.give_up_after_s is not None and now - outage_started > self.retry.give_up_after_s
                    if not is_transient(exc) or give_up:
                        self.failed = exc
                        self._cond.notify_all()
                        continue
                    attempt += 1
                    self.retries += 1
                    resume = now + self.retry.delay(attempt, self._rng)
                    while not self._abort and (left := resume - time.monotonic()) > 0:
                        self._cond.wait(left)  # new rows do not cut the backoff short; close(abort) does
                continue
            attempt = 0
            outage_started = None
            with self._cond:
                for _ in range(len(batch)):
                    self._pending.popleft()
                self.written += len(batch)
                self.batches += 1
                while self._added_at and self._added_at[0][0] <= self.written:
                    self._added_at.popleft()
                if self._spill is not None:
                    self._spill.written_through(self.written)
                self._cond.notify_all()

    def _write(self, batch: list[Row]) -> None:
        try:
            self.store.insert(self.table, batch)
        except BaseException as exc:
            if self.on_reject is None or is_transient(exc):
                raise
            self._isolate(batch, exc)

    def _isolate(self, batch: list[Row], exc: BaseException) -> None:
        """Split a batch that failed for good until the rows at fault are found; write the rest."""
        if len(batch) == 1:
            assert self.on_reject is not None
            self.on_reject(batch, exc)
            with self._cond:
                self.rejected += 1
            return
        middle = len(batch) // 2
        for part in (batch[:middle], batch[middle:]):
            try:
                self.store.insert(self.table, part)
            except BaseException as part_exc:
                if is_transient(part_exc):
                    raise  # the whole batch is retried; written halves collapse by key
                self._isolate(part, part_exc)
