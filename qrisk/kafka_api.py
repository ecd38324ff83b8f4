"""The HTTP API in distributed mode (``QRISK_EVENT_LOG=kafka``): what ``qrisk.api`` needs of a pipeline.

Writes go to Kafka: ``POST /v1/events`` publishes through ``KafkaLog`` (kafka-python, acks=all,
idempotent, key = enterprise_id) and answers once the broker acknowledged every event;
rejected and refused inputs go to the dead-letter topic with their reason.  Reads come from the
ClickHouse tables the sink writes (``credit_files``, ``dead_letters``): they trail the log by
the workers' and the sink's lag (seconds), which ``/healthz`` cannot see from here, and an event
just accepted is not yet visible.  A batch the broker does not acknowledge is kept in
``log_failing_since`` & co. as the embedded pipeline keeps a refused log write: ``/readyz`` says
not ready for a while after it, ``/healthz`` "degraded", until a batch is acknowledged again.

What the API process holds itself: nothing derived.  The credit files live in the workers; the
readable report (``view=report``) and the campaign table are computed from the sink's copies of
the files (``CreditFile.view()``), which carry the records, the grade with its reasons and history,
and a summary of every chart.
Alerts are read from the ``alerts`` table; a supervisor's step is published as an ``alert.action``
event and answered 202: the worker takes it (or rejects it, with the reason, as an effect) shortly.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
import threading
from typing import Any, Callable, Iterable, Sequence

from schemas.events import Envelope

from qrisk.kafka_log import KafkaLog, PublishError, Published
from qrisk.pipeline import DeadLetter
from qrisk.topics import KafkaSettings, utc_now

MODE = "kafka"


class _NoState:
    """``pipeline.state`` for code that counts files: in this mode the API holds none."""

    files: dict[str, Any] = {}


class DistributedBackend:
    """Publish to the Kafka log, read from ClickHouse; duck-types the parts of ``Pipeline`` the API uses."""

    mode = MODE

    def __init__(self, settings: KafkaSettings, store: Any, rules: Any, clock: Callable[[], dt.datetime] = utc_now,
                 log: KafkaLog | None = None):
        self.settings = settings
        self.store = store
        self.rules = rules
        self.clock = clock
        self.log = log or KafkaLog(settings, clock=clock)
        self.lock = threading.RLock()
        self.state = _NoState()
        self.published = 0
        self.dead_lettered = 0
        # embedded-mode counters the API reports; here the log is not this process's to count
        self.seq = 0
        self.derived_seq = 0
        # the broker not acknowledging, as ``Pipeline`` keeps its log refusing writes (read by /readyz and
        # /healthz, which said "ready" and "ok" while every POST waited a minute for a 503)
        self.log_failing_since: dt.datetime | None = None
        self.log_refused_events = 0
        self.log_last_error: str | None = None
        self.log_last_refusal: dt.datetime | None = None
        self._store_checked: tuple[float, str | None] = (-1e9, None)

    # ------------------------------------------------------------------ writes

    def start_background_sink(self) -> None:
        """The sink is its own service (``qrisk sink``) in this mode."""

    def submit(self, events: Sequence[Envelope], requests: Sequence[int] | None = None) -> list[Published]:
        # (the requests a group commit joins matter only where ids are checked here: the embedded log)
        try:
            outcomes = self.log.submit(events)
        except PublishError as exc:
            self._log_refused(exc, len(events))
            raise
        self._log_took()
        self.published += len(outcomes)
        return outcomes

    def dead_letter(self, letters: Iterable[DeadLetter]) -> list[str]:
        letters = list(letters)
        try:
            ids = self.log.dead_letter(letters)
        except PublishError as exc:
            self._log_refused(exc, len(letters))
            raise
        # (not _log_took: the dead-letter topic is another topic, which may take writes while the events topic
        # refuses them — one bad input answered 422 said the log was healthy while every event got 503)
        self.dead_lettered += len(ids)
        return ids

    def _log_refused(self, exc: Exception, messages: int) -> None:
        """The broker did not acknowledge a batch: nothing of it is reported accepted (503).  Said once per
        episode on stderr and kept for /readyz and /healthz."""
        with self.lock:
            self.log_refused_events += messages
            self.log_last_error = f"{type(exc).__name__}: {exc}"[:300]
            self.log_last_refusal = self.clock()
            if self.log_failing_since is not None:
                return
            self.log_failing_since = self.clock()
        print(f"qrisk: Kafka 未确认写入（{self.log_last_error}）：新事件不被接收（503），发送方应重发 / the event log (Kafka) does not "
              f"acknowledge writes ({self.log_last_error}): new events are not accepted (503) until it does", file=sys.stderr, flush=True)

    def _log_took(self) -> None:
        with self.lock:
            since, refused = self.log_failing_since, self.log_refused_events
            if since is None:
                return
            self.log_failing_since, self.log_refused_events = None, 0
        print(f"qrisk: Kafka 已恢复确认写入（自 {since:%H:%M:%S} 起拒绝了 {refused} 个事件，发送方重发即可）/ the event log (Kafka) "
              f"acknowledges writes again ({refused} events refused since {since:%H:%M:%S} UTC; senders resend them)",
              file=sys.stderr, flush=True)

    def store_problem(self, every_s: float = 5.0) -> str | None:
        """Why the ClickHouse store the reads come from does not answer (None: it does), checked at most
        every ``every_s``: every read but the health pages fails while it does not."""
        import time

        from qrisk.store import short_reason

        at, problem = self._store_checked
        if time.monotonic() - at < every_s:
            return problem
        try:
            self.store.query("SELECT 1 AS ok FROM credit_files LIMIT 1", {})
            problem = None
        except Exception as exc:  # noqa: BLE001 - reported, never raised from a health page
            where = getattr(self.store, "url", None) or "ClickHouse"  # (a store's url has its password taken out)
            problem = (f"ClickHouse（{where}）无法读取，企业档案、预警与死信查询失败 / ClickHouse at {where} cannot be read: "
                       f"{type(exc).__name__}: {short_reason(exc)}")
        self._store_checked = (time.monotonic(), problem)
        return problem

    # ------------------------------------------------------------------ reads (ClickHouse, as the sink wrote it)

    def credit_file(self, enterprise_id: str) -> dict[str, Any] | None:
        rows = self.store.query(
            "SELECT argMax(body, seq) AS body FROM credit_files WHERE enterprise_id = %(id)s GROUP BY enterprise_id",
            {"id": enterprise_id})
        return json.loads(rows[0]["body"]) if rows else None

    def credit_files(self) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT enterprise_id, argMax(body, seq) AS body FROM credit_files GROUP BY enterprise_id ORDER BY enterprise_id", {})
        return [json.loads(r["body"]) for r in rows]

    def campaign_files(self, towns: list[str] | None = None) -> tuple[dict[str, Any], list[str]]:
        """The credit files the campaign table reads, rebuilt from the sink's copies.

        A view carries the profile, the campaign record and every sample with its judgement,
        which is all ``processors.campaign`` reads; the derived parts only a view has
        (pass rate, risk summary, chart summaries) are left out, and the model checks the rest.
        Returns the files and the ids of stored copies this version cannot read."""
        from processors.credit_file import VIEW_ONLY, CreditFile

        files, unreadable = {}, []
        for doc in self.credit_files():
            town = (doc.get("profile") or {}).get("town")
            if towns and town not in towns:
                continue
            try:
                files[doc["enterprise_id"]] = CreditFile.model_validate({k: v for k, v in doc.items() if k not in VIEW_ONLY})
            except ValueError as exc:  # (a copy written by another version): named in the answer, the others still shown
                unreadable.append(doc.get("enterprise_id"))
                print(f"qrisk: credit file {doc.get('enterprise_id')} in ClickHouse is not readable by this version: {exc}", file=sys.stderr)
        return files, unreadable

    def alert_views(self, alert_id: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Alerts as the workers folded them (the sink's ``alerts`` rows: the newest version's view)."""
        from qrisk.pipeline import stored_alert_views

        return stored_alert_views(self.store, alert_id, **filters)

    def close(self) -> None:
        try:
            self.log.close()
        finally:
            self.store.close()


def answer_too_large(app: Any, backend: "DistributedBackend") -> None:
    """Answer ``EventTooLarge`` (``KafkaLog.submit`` refused a batch with an event too large for the
    log, before publishing anything) with 413, each such event named and kept in dead letters,
    instead of the 500 an unknown error gets.

    A stopgap where the HTTP handler does not check sizes itself: raised from the group committer,
    the indexes are those of the joined batch, which is the request's own when it was committed
    alone (the usual case); the handler's own check before committing names them exactly."""
    import uuid

    from fastapi.responses import JSONResponse

    from qrisk.kafka_log import EventTooLarge

    async def too_large(request: Any, exc: EventTooLarge) -> Any:
        import asyncio

        request_id = str(uuid.uuid4())
        letters = [DeadLetter("http", f"request {request_id} index {i}", value, f"too_large: {err['reason']}", [err])
                   for i, err, value in exc.refused]
        ids = await asyncio.get_running_loop().run_in_executor(None, backend.dead_letter, letters)
        return JSONResponse(status_code=413, content={
            "detail": f"{len(letters)} 个事件超过事件日志的单个事件上限，本批次未写入；请拆分或缩短后重发",
            "detail_en": f"{len(letters)} event(s) too large for the event log; nothing of this request was written",
            "request_id": request_id,
            "errors": [{"index": i, **err, "dead_letter_id": dl_id} for (i, err, _), dl_id in zip(exc.refused, ids)],
        })

    app.add_exception_handler(EventTooLarge, too_large)


def open_distributed(settings: KafkaSettings, store_target: str, rules: Any) -> DistributedBackend:
    """The backend of ``qrisk run`` with ``QRISK_EVENT_LOG=kafka``: the store migrated, the producer connected.

    Raises ``TopicMismatch`` (``TopicMissing``: the log or the dead-letter topic absent) before the
    store is opened; ``qrisk run`` says it in one line and exits 2."""
    from qrisk.store import migrate, open_store
    from qrisk.topics import check_partitions

    check_partitions(settings, [settings.topics().dead_letters.name])
    store = open_store(store_target)
    migrate(store)
    return DistributedBackend(settings, store, rules)
