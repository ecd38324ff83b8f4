"""Group commit: many concurrent requests, one log write.

chdb writes ~350 single-row INSERTs/s but ~90k rows/s in batches, so the HTTP
handlers hand their events to one writer thread, which takes everything queued
since its last write and submits it as one batch.  Each request is answered
when the batch holding its events is durable.
"""
from __future__ import annotations

import gc
import queue
from concurrent.futures import Future
from typing import Sequence

from qrisk.pipeline import Outcome, Pipeline
from qrisk.threads import NamedThread
from schemas.events import Envelope


class GroupCommitter:
    def __init__(self, pipeline: Pipeline, max_batch: int = 5000):
        self.pipeline = pipeline
        self.max_batch = max_batch
        self._queue: queue.Queue[tuple[Sequence[Envelope], Future] | None] = queue.Queue()
        self._thread = NamedThread(target=self._run, name="qrisk-group-commit", daemon=True)
        self.batches = 0
        self._thread.start()

    def submit(self, events: Sequence[Envelope]) -> Future:
        future: Future = Future()
        self._queue.put((events, future))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            size = len(job[0])
            stop = False
            while size < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.append(more)
                size += len(more[0])
            self._commit(jobs)
            if stop:
                return

    def _commit(self, jobs: list[tuple[Sequence[Envelope], Future]]) -> None:
        events = [e for batch, _ in jobs for e in batch]
        try:
            # each request is all or nothing: the pipeline is told where one ends and the next begins
            outcomes = self.pipeline.submit(events, [len(batch) for batch, _ in jobs])
        except BaseException as exc:  # every waiting request learns of the failure
            for _, future in jobs:
                future.set_exception(exc)
            return
        self.batches += 1
        start = 0
        for batch, future in jobs:
            future.set_result(outcomes[start:start + len(batch)])
            start += len(batch)
        # What a commit leaves alive is the fold's state (credit files, charts, memoised
        # judgements): long-lived, and no batch leaves cyclic garbage behind (a test checks).
        # Frozen, it is no longer rescanned by every collection the next batch triggers; the
        # collector stays on for the young objects, in case a cycle ever appears.
        gc.freeze()
