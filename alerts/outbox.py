"""The outbox dispatcher: sends what the alert fold stored, and records every attempt.

The fold writes each notification to the ``outbox`` table together with the alert step that
made it (``qrisk.pipeline``); this loop reads the ones without a final attempt, sends them
through ``alerts.receivers`` and writes one ``deliveries`` row per attempt:

- ``sent``: the receiver took it; never sent again.
- ``retry``: it may work later (connection refused, timeout, 5xx, 429); tried again after
  ``base_delay · 2^(attempt-1)`` seconds, at most ``max_delay``.
- ``failed``: permanently refused (4xx, a wrong robot token, 550), the receiver no longer in
  the policy, or ``max_attempts`` reached.  Kept, with the error, for a supervisor to see.

A restart resumes from the tables: attempts already made count, and an id with a final row is
skipped, so a crash between sending and recording sends at most once more.  An attempt the store
refuses to record (a full disk) is kept in memory and ends the pass: nothing else goes out until
that record is written, so that a crash meanwhile re-sends that one notification, not every one the
pass went on to send.

On a server several dispatchers may run; one sends.  Each renews a lease row
(``dispatcher_leases``, stamped by the server's clock) before a send once a third of the lease has
passed; the one that started first among those renewed within ``lease_seconds`` sends, the others
stand by and take over when its renewals stop.  A dispatcher that could not renew for two thirds
of a lease (a pause, the store down) comes back as a newcomer, and a newcomer waits one lease
before it may send.  Sends time out within a third of a lease, so none outlives its sender's
lease.  What remains is the crash window above: a sender that dies (or stalls) between a
receiver's answer and its record may have that notification sent once more by the next one.
A chdb directory admits one process, so there the dispatcher sends at once.  The store is any
object with ``query(sql, params)`` and ``insert(table, rows)`` (``qrisk.store.Store``); the
clock is injected (attempt times are wall time: they say when the receiver was called).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from alerts.notification import Notification
from schemas.policy import AlertsPolicy

Clock = Callable[[], dt.datetime]


class _Store(Protocol):
    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...
    def insert(self, table: str, rows: list[dict[str, Any]]) -> None: ...


@dataclass(frozen=True)
class Attempt:
    delivery_id: str
    attempt: int
    status: str  # sent | retry | failed
    code: int
    error: str


_PENDING = (
    "SELECT delivery_id, any(alert_id) AS alert_id, any(enterprise_id) AS enterprise_id, any(receiver) AS receiver, "
    "any(channel) AS channel, any(body) AS body FROM outbox "
    "WHERE delivery_id NOT IN (SELECT delivery_id FROM deliveries WHERE status IN ('sent', 'failed')) "
    "GROUP BY delivery_id ORDER BY min(created_at), min(created_ms), delivery_id LIMIT %(offset)s, %(limit)s"
)
_TRIED = (
    "SELECT delivery_id, max(attempt) AS attempts, max(at) AS last FROM deliveries "
    "WHERE status = 'retry' GROUP BY delivery_id"
)

_LEASE = (
    "SELECT holder, min(started_ms) AS started, max(renewed_ms) AS renewed FROM dispatcher_leases "
    "WHERE renewed_ms >= %(since)s GROUP BY holder ORDER BY started, holder LIMIT 1"
)
# Lease stamps come from the server's clock, so that dispatchers on hosts whose clocks differ (or
# one whose clock NTP steps back) still agree on whose lease is live.  (18.16: no now64; seconds do.)
_SERVER_MS = "SELECT toUInt64(now()) * 1000 AS ms"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Dispatcher:
    def __init__(self, store: _Store, policy: AlertsPolicy, *, smtp: Any = None, clock: Clock = _utc_now,
                 send: Callable[..., Any] | None = None, max_attempts: int = 8, base_delay: float = 2.0,
                 max_delay: float = 600.0, interval: float = 1.0, timeout: float = 10.0, batch: int = 200,
                 lease_seconds: float = 30.0, lease_clock: Callable[[], int] | None = None,
                 monotonic: Callable[[], float] = time.monotonic):
        if send is None:
            from alerts.receivers import send as send_to_receiver

            send = send_to_receiver
        self.store, self.policy, self.smtp, self.clock, self.send = store, policy, smtp, clock, send
        self.max_attempts, self.base_delay, self.max_delay = max_attempts, base_delay, max_delay
        self.interval, self.timeout, self.batch = interval, timeout, batch
        self.tried: dict[str, tuple[int, dt.datetime]] | None = None  # id → (attempts, when the next may start)
        # attempts made but not yet on record (the store refused the insert): written before anything
        # else is sent, and their ids are never sent again meanwhile
        self.unrecorded: list[dict[str, Any]] = []
        self.unrecorded_error = ""
        self.final: set[str] = set()
        self.sent = self.retried = self.failed = 0
        self.last_error: str | None = None  # the last pass's failure (the store down), None once a pass works
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # the lease: only where another process could dispatch from the same tables
        self.leased = not getattr(store, "exclusive", False)
        self.lease = lease_seconds
        self.lease_clock = lease_clock  # stamps (ms); None: the server's clock, shared by every dispatcher
        self.monotonic = monotonic  # this dispatcher's own intervals, which no clock step can reverse
        self.holder = ""
        self.started_ms = 0
        self.started_at = self.renewed_at = 0.0  # monotonic: when this holder began, its last renewal
        self.sender = ""  # the dispatcher last seen sending
        self.active = not self.leased  # this dispatcher sends (False: it stands by, or waits to see the others)
        if self.leased:
            # a send must end well inside the holder's lease: it renews before a send once a third
            # has passed, and the others take over only after a whole lease without renewal
            self.timeout = min(self.timeout, lease_seconds / 3)
            if smtp is not None and getattr(smtp, "timeout", 0) > lease_seconds / 3:
                self.smtp = dataclasses.replace(smtp, timeout=lease_seconds / 3)

    # ------------------------------------------------------------------ one pass

    def run_once(self) -> list[Attempt]:
        """Send every notification that is due; returns the attempts made."""
        if self.unrecorded:
            self.store.insert("deliveries", self.unrecorded)  # (raises while the store still refuses: nothing is sent then)
            self.unrecorded = []
        if not self._holds_lease():
            return []
        if self.tried is None:  # (again after taking over: the last sender's attempts count)
            self.tried = {}
            for r in self.store.query(_TRIED):
                last = _aware(r["last"])
                self.tried[r["delivery_id"]] = (int(r["attempts"]), last + self._delay(int(r["attempts"])))
        now = self.clock()
        attempts: list[Attempt] = []
        offset = 0
        # page on past notifications still backing off (a receiver that is down), so that they do not
        # hold back the ones for receivers that work
        while len(attempts) < self.batch:
            rows = self.store.query(_PENDING, {"limit": self.batch, "offset": offset})
            for row in rows:
                did = row["delivery_id"]
                made, due = self.tried.get(did, (0, now))
                if due > now or did in self.final:
                    continue
                if not self._holds_lease():
                    return attempts  # another dispatcher sends now (this one was paused past its lease)
                try:
                    note = Notification.from_json(row["body"])
                except (ValueError, TypeError) as exc:  # a row this version cannot read: recorded, not retried forever
                    note = Notification(delivery_id=did, alert_id=row["alert_id"], enterprise_id=row["enterprise_id"],
                                        receiver=row["receiver"], channel=row["channel"], reason="", subject_zh="", text_zh="")
                    attempts.append(self._record(note, made + 1, Attempt(did, made + 1, "failed", 0, f"无法读取通知内容 / unreadable outbox row: {exc}")))
                else:
                    attempts.append(self._deliver(note, made + 1))
                if self.unrecorded:
                    # the store refused that record: every further send would be one more notification
                    # a crash re-sends (a full disk once re-sent 193); the next pass writes it first
                    return attempts
            if len(rows) < self.batch:
                break
            offset += len(rows)
        return attempts

    def _holds_lease(self, recheck: bool = False) -> bool:
        """Renew this dispatcher's lease once a third of it has passed (or now, with ``recheck``),
        and say whether it sends.  Raises when the store does: nothing is sent then."""
        if not self.leased:
            return True
        mono = self.monotonic()
        if self.holder and not recheck and mono - self.renewed_at < self.lease / 3:
            return self.active
        if not self.holder or mono - self.renewed_at >= self.lease * 2 / 3:
            # first start, or no renewal for long enough that another may be taking over (a pause,
            # the store down): start again as a newcomer, which the live holders outrank
            self.holder = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
            self.started_ms = 0
            self.started_at = mono
            self._become(False, "")
        now_ms = self.lease_clock() if self.lease_clock is not None else int(self.store.query(_SERVER_MS)[0]["ms"])
        if not self.started_ms:
            self.started_ms = now_ms
        self.store.insert("dispatcher_leases", [{"holder": self.holder, "started_ms": self.started_ms, "renewed_ms": now_ms}])
        self.renewed_at = mono  # (read before the stamp: errs towards renewing early)
        first = self.store.query(_LEASE, {"since": now_ms - int(self.lease * 1000)})
        winner = first[0]["holder"] if first else ""
        self._become(winner == self.holder and self.monotonic() - self.started_at >= self.lease, winner)
        return self.active

    def await_lease(self) -> bool:
        """For a single pass (``--once``): wait out the newcomer's lease time; True if this one sends."""
        while True:
            waited = self.monotonic() - self.started_at if self.holder else 0.0
            if self._holds_lease(recheck=waited >= self.lease):
                return True
            if waited >= self.lease:
                return False  # seen the others for a whole lease: one of them sends
            time.sleep(min(self.lease - waited, self.lease / 3) + 0.001)

    def _become(self, active: bool, winner: str) -> None:
        if active and not self.active:
            print(f"qrisk: this dispatcher ({self.holder}) now sends the outbox", file=sys.stderr)
            self.tried = None  # what the last sender tried is on record: read it before sending
        elif not active and winner and winner != self.holder and winner != self.sender:
            print(f"qrisk: dispatcher {winner} sends the outbox; this one ({self.holder}) stands by", file=sys.stderr)
        self.active = active
        self.sender = winner

    def _deliver(self, note: Notification, attempt: int) -> Attempt:
        receiver = next((r for r in self.policy.receivers if r.name == note.receiver), None)
        if receiver is None:
            result = Attempt(note.delivery_id, attempt, "failed", 0, f"接收方 {note.receiver} 已不在策略文件中 / receiver no longer configured")
        else:
            try:
                r = self.send(receiver, note, self.smtp, timeout=self.timeout)
                ok, code, error, retry = r.ok, r.code, r.error, r.retry
            except Exception as exc:  # noqa: BLE001 - a receiver bug is recorded like a refusal, never lost
                ok, code, error, retry = False, 0, f"{type(exc).__name__}: {exc}", True
            status = "sent" if ok else ("retry" if retry and attempt < self.max_attempts else "failed")
            if status == "failed" and retry:
                error = f"{error}（已尝试 {attempt} 次，放弃 / gave up after {attempt} attempts）"
            result = Attempt(note.delivery_id, attempt, status, code, error)
        return self._record(note, attempt, result)

    def _record(self, note: Notification, attempt: int, result: Attempt) -> Attempt:
        at = self.clock()
        row = {
            "delivery_id": note.delivery_id, "alert_id": note.alert_id, "enterprise_id": note.enterprise_id,
            "receiver": note.receiver, "channel": note.channel, "attempt": attempt, "status": result.status,
            "at": at.replace(microsecond=0), "at_ms": at.microsecond // 1000, "response_code": result.code, "error": result.error[:2000],
        }
        if result.status != "retry":
            self.final.add(note.delivery_id)  # sent or given up: never again, even before the record is written
        try:
            self.store.insert("deliveries", [row])
        except Exception as exc:  # noqa: BLE001 - the attempt happened: keep it, write it before anything else is sent
            self.unrecorded.append(row)
            reason = (str(exc).strip().splitlines() or [""])[0][:300]
            self.unrecorded_error = f"delivery records not written ({type(exc).__name__}: {reason}); nothing is sent until they are"
            print(f"qrisk: 通知 {note.delivery_id} 的发送记录未能写入（{type(exc).__name__}）；写入之前不再发送其他通知 / "
                  f"delivery attempt {note.delivery_id} not recorded ({type(exc).__name__}: {reason}); "
                  "nothing else is sent until it is written", file=sys.stderr)
        assert self.tried is not None
        if result.status == "retry":
            self.retried += 1
            self.tried[note.delivery_id] = (attempt, at + self._delay(attempt))
        else:
            self.tried.pop(note.delivery_id, None)
            if result.status == "sent":
                self.sent += 1
            else:
                self.failed += 1
                print(f"qrisk: alert {note.alert_id} not delivered to {note.receiver}: {result.error}", file=sys.stderr)
        return result

    def _delay(self, attempts: int) -> dt.timedelta:
        return dt.timedelta(seconds=min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1)))

    # ------------------------------------------------------------------ the loop

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="qrisk-outbox", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """New notifications were stored: look now rather than at the next interval."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                # a pass cut short by a record the store refused is a failure too (/healthz says so)
                self.last_error = self.unrecorded_error if self.unrecorded else None
            except Exception as exc:  # noqa: BLE001 - the store may be down: the outbox keeps everything, try later
                self.last_error = f"{type(exc).__name__}: {exc}"[:500]
                print(f"qrisk: outbox pass failed ({type(exc).__name__}: {exc}); retrying", file=sys.stderr)
            self._wake.wait(self.interval)
            self._wake.clear()

    def pending(self) -> int:
        return len(self.store.query(_PENDING, {"limit": 100_000, "offset": 0}))


def _aware(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.timezone.utc)
