"""The outbox dispatcher: sends what the alert fold stored, and records every attempt.

The fold writes each notification to the ``outbox`` table together with the alert step that
made it (``qrisk.pipeline``); this loop reads the ones without a final attempt, sends them
through ``alerts.receivers`` and writes one ``deliveries`` row per attempt:

- ``sent``: the receiver took it; never sent again.
- ``retry``: it may work later (connection refused, timeout, 5xx, 429); tried again after
  ``base_delay · 2^(attempt-1)`` seconds, at most ``max_delay``, for ``give_up_after`` seconds
  (24 h) from the first attempt.  Giving up by time, not by a count: 8 attempts used to end
  254 s after the first, so an SMTP restart or a 5-minute network blip lost a critical alert.
- ``failed``: permanently refused (4xx, a wrong robot token, 550), the receiver no longer in
  the policy, or still failing after ``give_up_after`` (or ``max_attempts``, when set).  Kept,
  with the error, for a supervisor to see; /healthz says so (from the table, so a restart still
  does) until ``qrisk alerts redeliver`` re-queues it.
- ``requeued``: written by ``qrisk alerts redeliver`` after a ``failed``: the notification is
  pending again, with the same delivery id (the receivers' Idempotency-Key), and a new window.
  A notification's state is its row with the highest ``attempt``.

An e-mail some of whose recipients took it while others refused (452 mailbox full) is a ``retry`` (or ``failed``)
whose row names those who took it (``accepted``): every later attempt, a re-queue's too, mails only the others, and
a give-up says who has it.  The alert's later notices to that receiver go at once to the recipients that have every
earlier one, recorded as a ``retry`` that nobody refused (its error begins 等待本预警此前的通知, and names who waits):
neither a retry counted nor the receiver failing for it, nor given up by the window.  The waiting recipients get them
after their earlier ones, when they accept, or when those are given up.

A pass goes round the receivers, one notification each per turn (those that work first), each receiver's in the order
their steps were made: sends are one at a time, so a slow receiver holds another's critical alert back by one send a
turn, not by its whole backlog.  An alert's notice waits while an older one of the same alert to the same receiver is
backing off (an e-mail's, for the recipients that lack the older one), and when a failing receiver takes a notification again its waiting retries are due at once: the town
gets 新预警 before 预警自动关闭, both in the pass it comes back.  A receiver that gives no answer (a timeout, a
refused connection) gets one attempt a pass.

A restart resumes from the tables: attempts already made count, and an id with a final row is
skipped, so a crash between sending and recording sends at most once more.  The retry schedule is
derived from them too: each round is due by its own attempts, or at once if its receiver took a
notification after its last retry (it came back), and a receiver whose attempts failed since its last
success is failing from the first pass, as it was before the restart.  An attempt the store
refuses to record (a full disk) is kept in memory and ends the pass: nothing else goes out until
that record is written, so that a crash meanwhile re-sends that one notification, not every one the
pass went on to send.

On chdb that window is closed further by a journal (``deliveries.journal`` in the data directory):
the attempt is appended to it the moment the receiver answers, before the ``deliveries`` insert,
which under load waits tens of milliseconds for the store (one chdb session serves every thread, and
a one-row insert costs 15-40 ms); the next dispatcher writes what the journal holds into
``deliveries`` before it sends anything.  An append survives kill -9 as the insert does (neither is
fsynced: a power cut may lose either).  On a server there is no journal: another host's dispatcher
may take over, and it could not read this one's.

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
import json
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from alerts.lifecycle import STATUS_NOTICE_FRESH_HOURS, STATUS_NOTICES
from alerts.notification import Notification
from alerts.receivers import redact_error
from schemas.policy import AlertsPolicy

Clock = Callable[[], dt.datetime]


class _Store(Protocol):
    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...
    def insert(self, table: str, rows: list[dict[str, Any]]) -> None: ...


@dataclass
class Failing:
    """A receiver no notification has got through to since ``since``: ``attempts`` failed attempts, the last with ``error``."""

    since: dt.datetime
    attempts: int
    error: str
    retrying: bool = True  # the last attempt is to be retried (False: that notification was given up)


@dataclass(frozen=True)
class Attempt:
    delivery_id: str
    attempt: int
    status: str  # sent | retry | failed
    code: int
    error: str
    accepted: tuple[str, ...] = ()  # e-mail: the recipients that took it on this attempt when others refused
    # e-mail: everyone it went to took it, and the other recipients wait for an earlier notice of its alert (a `retry`
    # no receiver refused: neither counted as one nor making the receiver failing)
    waiting: bool = False


# a notification's state is its last attempt's: a `requeued` row (qrisk alerts redeliver) after a
# `failed` one makes it pending again
_FINAL = ("SELECT delivery_id FROM deliveries GROUP BY delivery_id "
          "HAVING argMax(status, attempt) IN ('sent', 'failed')")
# Every pending notification, oldest step first, with what the pass chooses by and no more: one query, the final set
# built once.  A pass read them page by page with OFFSET, every page grouping the whole deliveries table again, and held
# every row whole: over 10,000 pending (after an outage, a big redeliver) one pass took 5-7 s and 33 MB before a fresh
# critical alert could go out.  The body (and what a record needs) is read for those about to be sent, at most a batch.
# derived_at: when the step became known, the later of its time and the receipt of the event that made it
# (outbox.received_at; 1970 on rows written before it was kept, and on the embedded pipeline's, where the step's time is
# all there is).  A step is dated by its event, and a live event received after a refold may be dated days back (a
# correction closing an alert): judged by its date alone, its notice was withheld as history.
_PENDING = (
    "SELECT delivery_id, any(alert_id) AS alert_id, any(receiver) AS receiver, any(reason) AS reason, "
    "greatest(min(created_at), max(received_at)) AS derived_at FROM outbox "
    "WHERE delivery_id NOT IN (" + _FINAL + ") "
    "GROUP BY delivery_id ORDER BY min(created_at), min(created_ms), delivery_id"
)
_ROUTES = "SELECT delivery_id, any(enterprise_id) AS enterprise_id, any(channel) AS channel FROM outbox WHERE has(%(ids)s, delivery_id) GROUP BY delivery_id"
_BODIES = ("SELECT delivery_id, any(enterprise_id) AS enterprise_id, any(channel) AS channel, any(body) AS body FROM outbox "
           "WHERE has(%(ids)s, delivery_id) GROUP BY delivery_id")
_PENDING_COUNT = "SELECT uniqExact(delivery_id) AS n FROM outbox WHERE delivery_id NOT IN (" + _FINAL + ")"
# every attempt of the notifications still being tried: the current round (after the last `requeued`)
# gives the backoff and when its window began
_TRIED = (
    "SELECT delivery_id, attempt, status, at, at_ms, accepted, receiver FROM deliveries WHERE delivery_id IN ("
    "SELECT delivery_id FROM deliveries GROUP BY delivery_id HAVING argMax(status, attempt) IN ('retry', 'requeued')) "
    "ORDER BY delivery_id, attempt"
)
# Each receiver as its attempts on record leave it: when it last took a notification (ms), and the failed attempts
# since (a re-queue, or a rebuild's decision not to send, is no attempt), with its give-ups ever recorded.  A restart
# forgot the failing ones: the receiver, still down, went first in each turn again, /healthz said nothing of it, and
# when it came back its waiting retries were not due at once, so an alert's 新预警 backing off waited up to
# 10 minutes behind news it came before.  And a round whose last retry came before the receiver's last send is due
# at once, as it was in memory when the receiver came back (_watch): read from the table, a restart (or the minute's
# re-read) had that backlog backing off again.  (No window functions: the server may be 18.16.)
_RECEIVERS = (
    "SELECT f.receiver AS receiver, any(s.sent_k) AS sent_ms, "
    "uniqExactIf(f.delivery_id, f.attempt, f.status = 'failed') AS failed_ever, "
    "uniqExactIf(f.delivery_id, f.attempt, f.status != 'sent' AND f.k > s.sent_k) AS n, "
    "minIf(f.at, f.status != 'sent' AND f.k > s.sent_k) AS since, "
    "argMaxIf(f.status, f.k, f.status != 'sent' AND f.k > s.sent_k) AS last_status, "
    "argMaxIf(f.error, f.k, f.status != 'sent' AND f.k > s.sent_k) AS last_error FROM ("
    "SELECT receiver, delivery_id, attempt, status, error, at, toUInt64(at) * 1000 + at_ms AS k FROM deliveries "
    "WHERE status IN ('sent', 'retry', 'failed') AND position(error, %(withheld)s) != 1 AND position(error, %(waiting)s) != 1) AS f "
    "LEFT JOIN (SELECT receiver AS sent_to, max(toUInt64(at) * 1000 + at_ms) AS sent_k FROM deliveries WHERE status = 'sent' "
    "GROUP BY receiver) AS s ON f.receiver = s.sent_to GROUP BY f.receiver ORDER BY receiver"
)
# how a rebuild records a notification it withheld (history) or withdrew (no longer made): its error
# begins so (qrisk.pipeline); a decision, not a receiver's failure, so neither given up nor re-sent
_WITHHELD = "重建派生表"
# how an e-mail's attempt that went through to some recipients while the others wait for an earlier notice of the alert
# begins its error: nobody refused it, so on record it makes no receiver failing
_WAITING = "等待本预警此前的通知"
# the latest Kafka-mode refold (qrisk.kafka_rebuild): a notification derived again for a step before history_before
# is history (its step older than alerts.live_within_hours when the refold ran), recorded as not sent
_REFOLDED = "SELECT max(history_before) AS h, max(refolded_at) AS at, count() AS n FROM refolds"
_ATTEMPTED = "SELECT DISTINCT delivery_id FROM deliveries WHERE has(%(ids)s, delivery_id)"
# given up (last attempt `failed`) and not re-queued, by receiver, since a time
_GIVEN_UP = (
    "SELECT receiver, count() AS n, min(last_at) AS since, max(last_at) AS latest, argMax(last_error, last_at) AS error FROM ("
    "SELECT delivery_id, any(receiver) AS receiver, argMax(status, attempt) AS last_status, max(at) AS last_at, "
    "argMax(error, attempt) AS last_error FROM deliveries GROUP BY delivery_id) "
    "WHERE last_status = 'failed' AND last_at >= %(since)s AND position(last_error, %(withheld)s) != 1 "
    "GROUP BY receiver ORDER BY receiver"
)


@dataclass
class Round:
    """A notification being tried: ``made`` attempts on record in all (the next is ``made + 1``), ``count``
    of them since the round began at ``first`` (its first attempt, or a re-queue), the next due at ``due``."""

    made: int
    due: dt.datetime
    first: dt.datetime | None = None
    count: int = 0
    # e-mail addresses (lower case) that accepted it on an earlier attempt, re-queues included: not mailed again
    accepted: set[str] = field(default_factory=set)
    receiver: str = ""  # (when it comes back, its waiting rounds are due at once)


class _Turn:
    """A receiver's pending notifications in one pass, in created order, and how far its turns have gone.

    A notification not due yet (backing off), or tried in this pass and to be retried, holds back every later one of
    its alert: a receiver down for a while had an alert's 新预警 backing off up to 10 minutes while its 预警自动关闭,
    never tried, went out the moment the receiver answered, so the town read the closing first.  For an e-mail receiver
    the order holds per recipient: a later notice waits only for the recipients that lack an earlier one, and goes to
    the others at once.  Held per receiver, one recipient whose mailbox was full (452) held the alert's 升级 and 关闭
    back from everyone for the 24 h its 新预警 was retried to it, the colleagues who had the 新预警 included."""

    def __init__(self, receiver: str, queue: list[dict[str, Any]], mailbox: frozenset[str] | None = None):
        # mailbox: an e-mail receiver's recipients (lower case); None: a notice reaches the receiver whole or not at all
        self.receiver, self.queue, self.mailbox = receiver, queue, mailbox
        self.restart()

    def copy(self) -> _Turn:
        twin = _Turn.__new__(_Turn)
        twin.receiver, twin.queue, twin.mailbox, twin.at = self.receiver, self.queue, self.mailbox, self.at
        twin.held = {alert: (None if who is None else set(who)) for alert, who in self.held.items()}
        return twin

    def restart(self) -> None:
        """From the oldest again: the receiver is back and its waiting rounds are due."""
        self.at = 0
        # alerts of this receiver with an earlier notification still waiting, and the recipients lacking it (None: all)
        self.held: dict[str, set[str] | None] = {}

    def lacking(self, round_: Round | None) -> set[str] | None:
        """The recipients a notification has yet to reach (None: not an e-mail receiver, the whole receiver)."""
        if self.mailbox is None:
            return None
        return set(self.mailbox) - (round_.accepted if round_ is not None else set())

    def hold(self, alert: str, lacking: set[str] | None) -> None:
        """The alert's later notices wait for ``lacking`` (None: all of them wait)."""
        if lacking is None:
            self.held[alert] = None
        elif self.held.get(alert, set()) is not None:
            self.held[alert] = self.held.get(alert, set()) | lacking

    def next(self, tried: dict[str, Round], final: dict[str, int], done: set[str], now: dt.datetime) -> dict[str, Any] | None:
        """The next notification due, not held back by an older one of its alert; None when none is left.  An e-mail
        some of whose recipients wait for an earlier notice comes with them as ``waits``: it goes to the others."""
        while self.at < len(self.queue):
            row = self.queue[self.at]
            self.at += 1
            did, alert = row["delivery_id"], row["alert_id"]
            if did in final:
                continue  # sent or given up: the alert's later notices need not wait for it
            round_ = tried.get(did)
            lacking = self.lacking(round_)
            if did in done or (round_ is not None and round_.due > now):
                self.hold(alert, lacking)  # (tried in this pass and still to be retried: once a pass)
                continue
            if alert not in self.held or lacking == set():
                return row  # (lacking none: the policy dropped those it did not reach, and it is recorded as sent)
            waiting = self.held[alert]
            if waiting is None or lacking is None or lacking <= waiting:
                self.hold(alert, lacking)
                continue
            return {**row, "waits": frozenset(waiting & lacking)} if waiting & lacking else row
        return None


@dataclass
class GivenUp:
    """Notifications to ``receiver`` given up and not re-queued: ``count``, the first given up at ``since``."""

    receiver: str
    count: int
    since: dt.datetime
    latest: dt.datetime
    error: str

_LEASE = (
    "SELECT holder, min(started_ms) AS started, max(renewed_ms) AS renewed FROM dispatcher_leases "
    "WHERE renewed_ms >= %(since)s GROUP BY holder ORDER BY started, holder LIMIT 1"
)
# Lease stamps come from the server's clock, so that dispatchers on hosts whose clocks differ (or
# one whose clock NTP steps back) still agree on whose lease is live.  (18.16: no now64; seconds do.)
_SERVER_MS = "SELECT toUInt64(now()) * 1000 AS ms"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


JOURNAL_NAME = "deliveries.journal"


class Journal:
    """Delivery attempts on local disk, one JSON line each, kept until the ``deliveries`` table has them.

    Only what a complete line holds counts: a torn last line is an append a crash cut short, whose
    attempt is then sent again (at least once).  Writing a line twice to the table is harmless: its
    key (alert, delivery, attempt) collapses it."""

    def __init__(self, path: os.PathLike[str] | str):
        self.path = os.fspath(path)
        self._fd: int | None = None

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return []
        rows = []
        for line in data.split(b"\n")[:-1]:  # (what follows the last newline is torn)
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a line a crash mangled: its attempt is sent again
        return rows

    def append(self, row: dict[str, Any]) -> None:
        """One write(2) of the whole line (O_APPEND); raises OSError (a full disk)."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        line = json.dumps(row, ensure_ascii=False, default=_journal_value).encode("utf-8") + b"\n"
        if os.write(self._fd, line) != len(line):
            raise OSError(28, "short write to the delivery journal")

    def clear(self) -> None:
        """Everything in it is in the table now."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.ftruncate(self._fd, 0)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _journal_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()  # (the store reads an ISO string into a DateTime column)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _default_journal(store: Any) -> Journal | None:
    # only where this process alone dispatches from these tables (chdb's directory lock): a journal on
    # one host is unknown to a dispatcher on another that takes over
    data_dir = getattr(store, "data_dir", None)
    if not getattr(store, "exclusive", False) or data_dir is None:
        return None
    return Journal(os.path.join(os.fspath(data_dir), JOURNAL_NAME))


class Dispatcher:
    def __init__(self, store: _Store, policy: AlertsPolicy, *, smtp: Any = None, clock: Clock = _utc_now,
                 send: Callable[..., Any] | None = None, max_attempts: int | None = None, give_up_after: float = 86400.0,
                 given_up_window: float = 7 * 86400.0, refresh_seconds: float = 60.0, base_delay: float = 2.0,
                 max_delay: float = 600.0, interval: float = 1.0, timeout: float = 10.0, batch: int = 200,
                 lease_seconds: float = 30.0, lease_clock: Callable[[], int] | None = None,
                 monotonic: Callable[[], float] = time.monotonic, journal: Journal | None | bool = True):
        if send is None:
            from alerts.receivers import send as send_to_receiver

            send = send_to_receiver
        self.store, self.policy, self.smtp, self.clock, self.send = store, policy, smtp, clock, send
        self.max_attempts, self.base_delay, self.max_delay = max_attempts, base_delay, max_delay
        self.give_up_after = give_up_after  # seconds of failing attempts before a notification is given up
        self.given_up_window = given_up_window  # /healthz names give-ups this recent (and not re-queued)
        self.refresh_seconds = refresh_seconds  # how often the given-up count and the re-queued rows are read again
        self.interval, self.timeout, self.batch = interval, timeout, batch
        self.tried: dict[str, Round] | None = None  # id → its round of attempts
        self.given_up: list[GivenUp] | None = None  # from the deliveries table (None: not read yet)
        self._refreshed = -1e18  # monotonic: the last read of the given-up rows
        # attempts made but not yet on record (the store refused the insert): written before anything
        # else is sent, and their ids are never sent again meanwhile
        self.unrecorded: list[dict[str, Any]] = []
        self.unrecorded_error = ""
        # True: the store's own (chdb: DATA_DIR/deliveries.journal); read back before the first send
        self.journal: Journal | None = _default_journal(store) if journal is True else (journal or None)
        self._journal_read = self.journal is None
        self.final: dict[str, int] = {}  # id → the attempt that ended it (sent or given up): skipped from then on
        self.history_before: dt.datetime | None = None  # the latest refold's: older steps' new notifications are history
        self.status_history_before: dt.datetime | None = None  # the same for STATUS_NOTICES (a day before the refold)
        self.withheld = 0
        self.sent = self.retried = self.failed = 0
        self._failed_read = False  # self.failed includes the give-ups on record (read with the first attempts)
        self.last_error: str | None = None  # the last pass's failure (the store down), None once a pass works
        self._pass_failures = 0  # passes failed in a row (said on stderr once, then once a minute)
        self._pass_failing_since = 0.0
        self._pass_said = 0.0
        # receivers whose last attempt failed, until one gets through: said once on stderr when it starts
        # and when it ends, and named by /healthz meanwhile (before, 24 retried attempts said nothing)
        self.failing: dict[str, Failing] = {}
        self._failing_read = False  # self.failing holds what the table says of those before this process (or takeover)
        self._unanswered: set[str] = set()  # receivers that gave no answer in the current pass (run_once)
        self._recovered: set[str] = set()  # receivers that got a notification through again in the current pass
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
        if not self._journal_read:
            assert self.journal is not None
            # attempts the last dispatcher journaled and died before recording: on record before
            # the outbox is read, or they would be sent again
            kept = self.journal.read()
            if kept:
                self.store.insert("deliveries", kept)  # (raises while the store refuses: nothing is sent then)
                print(f"qrisk: 已从发送日志补记 {len(kept)} 条发送记录（上次停止前已发送，未及写入）/ recorded {len(kept)} delivery "
                      f"attempts from {self.journal.path} (made before the last stop, not yet in deliveries)", file=sys.stderr)
            self.journal.clear()
            self._journal_read = True
        if self.unrecorded:
            self.store.insert("deliveries", self.unrecorded)  # (raises while the store still refuses: nothing is sent then)
            self.unrecorded = []
            if self.journal is not None:
                self.journal.clear()
        if self.monotonic() - self._refreshed >= self.refresh_seconds:
            # given-up notifications are read from the table (a restart forgets nothing), and read again now
            # and then: a re-queue by qrisk alerts redeliver (on a server, while this runs), give-ups leaving the window
            self._read_given_up()
            self.tried = None
        if not self._holds_lease():
            return []
        if self.tried is None:  # (again after taking over: the last sender's attempts count)
            self._read_tried()
        assert self.tried is not None
        # every pass (a table of a row per refold): a refold runs while this dispatcher goes on, and the workers
        # started after it publish the old steps' notifications within seconds
        refolded = (self.store.query(_REFOLDED) or [{"n": 0}])[0]
        self.history_before = _aware(refolded["h"]) if int(refolded.get("n") or 0) else None
        # (a notice of a change of standing is news for a day only: STATUS_NOTICES)
        self.status_history_before = (max(self.history_before, _aware(refolded["at"]) - dt.timedelta(hours=STATUS_NOTICE_FRESH_HOURS))
                                      if self.history_before is not None else None)
        attempts: list[Attempt] = []
        # Receivers that gave no answer in this pass (a timeout, a refused connection): their other due notifications
        # wait for the next pass without an attempt.  Each cost the whole timeout, so one hung receiver with N due
        # held every other receiver's news back N × 10 s.
        self._unanswered = set()
        self._recovered = set()
        # Every pending notification, by receiver, in the order its steps were made.  Sent one by one in created order,
        # twenty low notices to a webhook taking 1.5 s each held a critical for the duty desk back 30 s: the pass goes
        # round the receivers instead, one notification each per turn.  Those still backing off are kept too: the
        # receiver may come back in this pass, and then they are due at once.
        queues: dict[str, list[dict[str, Any]]] = {}
        rows = self.store.query(_PENDING)
        history: set[str] = set()
        if self.history_before is not None:
            for at in range(0, len(rows), self.batch):  # (one insert a batch: a refold's history may be thousands)
                history |= self._history(rows[at:at + self.batch])
        for row in rows:
            if row["delivery_id"] not in self.final and row["delivery_id"] not in history:
                queues.setdefault(row["receiver"], []).append(row)
        del rows
        mailboxes = {r.name: frozenset(a.lower() for a in r.to) for r in self.policy.receivers if r.kind == "email"}
        turns = [_Turn(receiver, queue, mailboxes.get(receiver)) for receiver, queue in queues.items()]  # (by each one's oldest notification)
        done: set[str] = set()  # tried in this pass: one attempt each
        bodies: dict[str, dict[str, Any]] = {}  # of the notifications this pass is about to send, at most a batch
        while turns and len(attempts) < self.batch:
            # a receiver that works goes first in each turn: one that is down answers with its backlog's retries, and
            # a town's fresh alert waited behind them
            turns.sort(key=lambda t: t.receiver in self.failing)
            round_ = list(turns)
            for i, turn in enumerate(round_):
                if len(attempts) >= self.batch:
                    break
                row = None if turn.receiver in self._unanswered else turn.next(self.tried, self.final, done, self.clock())
                if row is None:
                    turns.remove(turn)
                    continue
                did = row["delivery_id"]
                if did not in bodies:
                    # read with those the pass would send next were every send to go through (a failure or a receiver
                    # coming back changes the order: then this is read again, never more than a batch of bodies held)
                    ahead = self._ahead(round_[i + 1:], turns, done | {did}, self.batch - len(attempts) - 1)
                    bodies = self._bodies([did] + [r["delivery_id"] for r in ahead])
                if not self._attempt(row, attempts, bodies.pop(did, None)):
                    return attempts
                done.add(did)
                if did not in self.final:
                    # to be retried: the alert's later notices to this receiver wait for it, for the recipients it has
                    # yet to reach (they went out right after its failure, in the same pass, when nothing had them
                    # scanned past it again)
                    turn.hold(row["alert_id"], turn.lacking(self.tried.get(did)))
                if turn.receiver in self._recovered:
                    # its retries are due now (_watch): its backlog goes out in this pass, oldest first, each
                    # alert's notices in the order they were made
                    self._recovered.discard(turn.receiver)
                    turn.restart()
        return attempts

    def _ahead(self, rest: list[_Turn], turns: list[_Turn], done: set[str], limit: int) -> list[dict[str, Any]]:
        """The next ``limit`` notifications run_once would take, the rest of this turn (``rest``) first, were each
        send to go through and no receiver to change: whose bodies to read together."""
        assert self.tried is not None
        twins = {id(t): t.copy() for t in turns}
        live = [twins[id(t)] for t in turns]
        order = [twins[id(t)] for t in rest]
        done, now, out = set(done), self.clock(), []
        while live and len(out) < limit:
            for twin in order:
                if len(out) >= limit:
                    break
                row = None if twin.receiver in self._unanswered else twin.next(self.tried, self.final, done, now)
                if row is None:
                    live.remove(twin)
                    continue
                out.append(row)
                done.add(row["delivery_id"])
            live.sort(key=lambda t: t.receiver in self.failing)
            order = list(live)
        return out

    def _bodies(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        return {r["delivery_id"]: r for r in self.store.query(_BODIES, {"ids": ids})}

    def _attempt(self, row: dict[str, Any], attempts: list[Attempt], stored: dict[str, Any] | None) -> bool:
        """Send one pending row (or defer it, its receiver unanswered this pass); False when the pass must end."""
        assert self.tried is not None
        did = row["delivery_id"]
        if row["receiver"] in self._unanswered:
            return True  # (no attempt: due still, tried again next pass)
        if stored is None:
            return True  # gone from the outbox since the pass read it (a rebuild writes it again): the next pass sees to it
        if not self._holds_lease():
            return False  # another dispatcher sends now (this one was paused past its lease)
        tried = self.tried.get(did)
        made = tried.made if tried is not None else 0
        try:
            note = Notification.from_json(stored["body"])
            if note.delivery_id != did:
                # its record would go under the body's id and this row would stay pending: sent every pass
                raise ValueError(f"its body is notification {note.delivery_id}'s")
        except (ValueError, TypeError) as exc:  # a row this version cannot read: recorded, not retried forever
            note = Notification(delivery_id=did, alert_id=row["alert_id"], enterprise_id=stored["enterprise_id"],
                                receiver=row["receiver"], channel=stored["channel"], reason="", subject_zh="", text_zh="")
            attempts.append(self._record(note, made + 1, Attempt(did, made + 1, "failed", 0, f"无法读取通知内容 / unreadable outbox row: {exc}")))
        else:
            attempts.append(self._deliver(note, made + 1, row.get("waits") or frozenset()))
        # the store refused that record: every further send would be one more notification
        # a crash re-sends (a full disk once re-sent 193); the next pass writes it first
        return not self.unrecorded

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
            self._failing_read = False  # (and which receivers it found failing)
        elif not active and winner and winner != self.holder and winner != self.sender:
            print(f"qrisk: dispatcher {winner} sends the outbox; this one ({self.holder}) stands by", file=sys.stderr)
        self.active = active
        self.sender = winner

    def _read_tried(self) -> None:
        self.tried = {}
        receivers = self.store.query(_RECEIVERS, {"withheld": _WITHHELD, "waiting": _WAITING})
        if not self._failing_read:
            self._read_failing(receivers)
        if not self._failed_read:
            # the counter goes on from what is on record: a restart does not make the give-ups 0 again
            self.failed += sum(int(r["failed_ever"] or 0) for r in receivers)
            self._failed_read = True
        # a receiver that took a notification after a round's last retry was back then: that round is due
        last_sent = {str(r["receiver"]): int(r["sent_ms"] or 0) for r in receivers}
        rows = self.store.query(_TRIED)
        for r in rows:
            did, attempt, status, at = r["delivery_id"], int(r["attempt"]), r["status"], _aware(r["at"])
            tried = self.tried.get(did)
            if tried is None or status == "requeued":
                # a re-queue starts a round: due now, its window from the re-queue
                had = tried.accepted if tried is not None else set()  # (a re-queue does not mail again who has it)
                tried = self.tried[did] = Round(made=attempt, due=at, first=at if status == "requeued" else None, count=0, accepted=had,
                                                receiver=str(r.get("receiver") or ""))
                if status == "requeued" and self.final.get(did, attempt) < attempt:
                    self.final.pop(did)  # given up here, re-queued since (on a server, while this ran)
            tried.accepted.update(a.lower() for a in (r.get("accepted") or ()))
            if status == "retry":
                tried.first = tried.first or at
                tried.count += 1
                tried.made = attempt
                tried.due = at + self._delay(tried.count)
                back = last_sent.get(tried.receiver, 0)
                if back > int(at.timestamp()) * 1000 + int(r.get("at_ms") or 0):
                    tried.due = min(tried.due, dt.datetime.fromtimestamp(back / 1000, dt.timezone.utc))
            else:
                tried.made = max(tried.made, attempt)

    def _read_failing(self, receivers: list[dict[str, Any]]) -> None:
        """Which receivers were failing when this dispatcher began (or took over), from their attempts on record: a
        restart keeps them last in each turn, named by /healthz, and their waiting retries due at once when they are
        back, as an uninterrupted dispatcher would."""
        configured = {r.name for r in self.policy.receivers}
        failing: dict[str, Failing] = {}
        for r in receivers:
            name = str(r["receiver"])
            if not int(r["n"] or 0) or name not in configured:
                continue  # (working; or no longer configured, its notifications given up as such: nothing to retry)
            was = failing[name] = Failing(_aware(r["since"]), int(r["n"]), str(r["last_error"] or ""), r["last_status"] == "retry")
            if name not in self.failing:
                then = ("按原退避计划继续重试", "retries go on as scheduled") if was.retrying else ("最近一条通知已放弃", "the last notification was given up")
                print(f"qrisk: 接收方 {name} 自 {_utc(was.since)} 起仍未能送达（此前 {was.attempts} 次尝试失败），{then[0]} / "
                      f"receiver {name} has been failing since {_utc(was.since)} ({was.attempts} failed attempt(s) on record): "
                      f"{then[1]}", file=sys.stderr, flush=True)
        self.failing = failing  # (one assignment: /healthz reads it from another thread)
        self._failing_read = True

    def _read_given_up(self) -> None:
        since = self.clock() - dt.timedelta(seconds=self.given_up_window)
        self.given_up = [GivenUp(r["receiver"], int(r["n"]), _aware(r["since"]), _aware(r["latest"]), str(r["error"] or ""))
                         for r in self.store.query(_GIVEN_UP, {"since": since.replace(microsecond=0), "withheld": _WITHHELD})]
        self._refreshed = self.monotonic()

    def _deliver(self, note: Notification, attempt: int, waits: frozenset[str] = frozenset()) -> Attempt:
        """One attempt; an e-mail's recipients in ``waits`` (lower case) are not mailed: they lack an earlier notice of
        its alert, and get this one after it."""
        receiver = next((r for r in self.policy.receivers if r.name == note.receiver), None)
        if receiver is None:
            result = Attempt(note.delivery_id, attempt, "failed", 0, f"接收方 {note.receiver} 已不在策略文件中 / receiver no longer configured")
        else:
            assert self.tried is not None
            tried = self.tried.get(note.delivery_id)
            had = tried.accepted if tried is not None else set()
            mail = receiver.kind == "email"
            # an e-mail some of whose recipients took it already goes to the others alone, and so does one some of
            # whose recipients wait for an earlier notice of its alert
            waiting = [a for a in receiver.to if a.lower() in waits and a.lower() not in had] if mail else []
            rest = [a for a in receiver.to if a.lower() not in had and a.lower() not in waits] if (had or waiting) and mail else None
            accepted: tuple[str, ...] = ()
            if rest == []:
                ok, code, error, retry = True, 250, "", True  # (the policy dropped the ones it did not reach)
            else:
                try:
                    r = self.send(receiver, note, self.smtp, timeout=self.timeout, **({"recipients": rest} if rest else {}))
                    ok, code, error, retry, accepted = r.ok, r.code, r.error, r.retry, tuple(getattr(r, "accepted", ()) or ())
                except Exception as exc:  # noqa: BLE001 - a receiver bug is recorded like a refusal, never lost
                    ok, code, error, retry = False, 0, f"{type(exc).__name__}: {exc}", True
            if not ok and retry and code == 0:
                self._unanswered.add(note.receiver)  # no answer at all: its other notifications wait for the next pass
            # a robot's answer may quote its URL (access_token=, key=): the error goes to the deliveries
            # table, GET /v1/alerts/{id} and the log, none of which may hold the receiver's credentials
            error = redact_error(error, receiver)
            if ok and waiting:
                # through to everyone it went to, the others waiting for the alert's earlier notice: to be sent to them
                # after it (a `retry`), but nobody refused it, so the receiver is not failing for it, it is no retry
                # counted, and the window does not give it up (the earlier notice's own window bounds the wait)
                accepted = tuple(rest or ())
                result = Attempt(note.delivery_id, attempt, "retry", code, _waiting(receiver, had | {a.lower() for a in accepted}, waits),
                                 accepted, waiting=True)
                return self._record(note, attempt, result)
            now = self.clock()
            first = tried.first if tried is not None and tried.first is not None else now
            count = (tried.count if tried is not None else 0) + 1
            spent = (now - first).total_seconds()
            # by time: a receiver down for minutes (a restart, a blip) must not lose a critical alert
            over = spent >= self.give_up_after or (self.max_attempts is not None and count >= self.max_attempts)
            status = "sent" if ok else ("retry" if retry and not over else "failed")
            got = had | {a.lower() for a in accepted}
            partly = _partly(receiver, got) if status == "failed" and got else None
            if status == "failed" and retry:
                if partly is not None:
                    # not 均未送达: those who have it must not be told by the record that nobody does
                    error = (f"{error}（{_span_zh(spent)}内尝试 {count} 次，{partly[0]}，已放弃；可用 qrisk alerts redeliver 或 "
                             f"POST /v1/alerts/redeliver 重新发送给未收到的收件人 / gave up after {count} attempts over {_span(spent)}: "
                             f"{partly[1]}; re-send to those who did not with qrisk alerts redeliver or POST /v1/alerts/redeliver）")
                else:
                    error = (f"{error}（{_span_zh(spent)}内尝试 {count} 次均未送达，已放弃；可用 qrisk alerts redeliver 或 POST /v1/alerts/redeliver 重新发送 / "
                             f"gave up after {count} attempts over {_span(spent)}; re-send with qrisk alerts redeliver or POST /v1/alerts/redeliver）")
            elif partly is not None:
                error = f"{error}（{partly[0]} / {partly[1]}）"
            result = Attempt(note.delivery_id, attempt, status, code, error, accepted)
            self._watch(note.receiver, result, self.clock())
        return self._record(note, attempt, result)

    def _history(self, rows: list[dict[str, Any]]) -> set[str]:
        """Of a page of pending notifications, those a Kafka refold derived again from a step that is history
        (its step, and the receipt of the event that made it, older than the latest refold's ``history_before``) and never tried: recorded as not sent, in one insert,
        and their ids returned.  A receiver added since, or an alert whose steps the new fold numbers differently,
        would have old alerts sent as news.  One tried before, or re-queued by `qrisk alerts redeliver`, goes on as
        it was (asked of the table: this dispatcher's rounds may be a minute old)."""
        if self.history_before is None:
            return set()
        assert self.tried is not None
        old = [r for r in rows if r["delivery_id"] not in self.tried and r["delivery_id"] not in self.final
               and _aware(r["derived_at"]) < (self.status_history_before if r.get("reason") in STATUS_NOTICES else self.history_before)]
        if not old:
            return set()
        tried = {r["delivery_id"] for r in self.store.query(_ATTEMPTED, {"ids": [r["delivery_id"] for r in old]})}
        old = [r for r in old if r["delivery_id"] not in tried]
        if not old:
            return set()
        ids = [r["delivery_id"] for r in old]
        routes = {r["delivery_id"]: r for r in self.store.query(_ROUTES, {"ids": ids})}
        old = [{**r, **routes[r["delivery_id"]]} for r in old if r["delivery_id"] in routes]  # (not one gone since the pass read it)
        if not old:
            return set()
        at = self.clock()
        before = self.history_before.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
        # (begins as a rebuild's withheld notification does: a decision, not a receiver's failure — not given up, not re-queued)
        error = (f"{_WITHHELD}（重新折叠 Kafka 日志）时由 {before} UTC 之前的步骤重新产生，属历史数据，未发送 / derived again by a refold "
                 f"of the Kafka log from a step before {before} UTC (history): not sent")
        self.store.insert("deliveries", [{
            "delivery_id": r["delivery_id"], "alert_id": r["alert_id"], "enterprise_id": r["enterprise_id"], "receiver": r["receiver"],
            "channel": r["channel"], "attempt": 1, "status": "failed", "at": at.replace(microsecond=0), "at_ms": at.microsecond // 1000,
            "response_code": 0, "error": error} for r in old])
        for r in old:
            self.final[r["delivery_id"]] = 1
        self.withheld += len(old)
        return {r["delivery_id"] for r in old}

    def _record(self, note: Notification, attempt: int, result: Attempt) -> Attempt:
        at = self.clock()
        row = {
            "delivery_id": note.delivery_id, "alert_id": note.alert_id, "enterprise_id": note.enterprise_id,
            "receiver": note.receiver, "channel": note.channel, "attempt": attempt, "status": result.status,
            "at": at.replace(microsecond=0), "at_ms": at.microsecond // 1000, "response_code": result.code, "error": result.error[:2000],
        }
        if result.accepted:
            row["accepted"] = list(result.accepted)  # (who has it: a retry or a re-queue mails only the others)
        if result.status != "retry":
            self.final[note.delivery_id] = attempt  # sent or given up: never again, even before the record is written (unless re-queued)
        journaled = False
        if self.journal is not None:
            try:
                self.journal.append(row)  # first: a crash from here on no longer sends it again
                journaled = True
            except OSError:
                pass  # (a full disk: the insert below meets it too, and the pass stops)
        try:
            self.store.insert("deliveries", [row])
            if journaled and not self.unrecorded:
                self.journal.clear()  # (everything it held is in the table now)
        except Exception as exc:  # noqa: BLE001 - the attempt happened: keep it, write it before anything else is sent
            self.unrecorded.append(row)
            reason = (str(exc).strip().splitlines() or [""])[0][:300]
            self.unrecorded_error = f"delivery records not written ({type(exc).__name__}: {reason}); nothing is sent until they are"
            print(f"qrisk: 通知 {note.delivery_id} 的发送记录未能写入（{type(exc).__name__}）；写入之前不再发送其他通知 / "
                  f"delivery attempt {note.delivery_id} not recorded ({type(exc).__name__}: {reason}); "
                  "nothing else is sent until it is written", file=sys.stderr)
        assert self.tried is not None
        if result.status == "retry":
            if not result.waiting:  # (the metric counts refusals to retry: a wait for an earlier notice is none)
                self.retried += 1
            tried = self.tried.get(note.delivery_id)
            if tried is None:
                tried = self.tried[note.delivery_id] = Round(made=attempt, due=at, receiver=note.receiver)
            tried.first = tried.first or at
            tried.made, tried.count = attempt, tried.count + 1
            tried.accepted.update(a.lower() for a in result.accepted)
            tried.due = at + self._delay(tried.count)
        else:
            self.tried.pop(note.delivery_id, None)
            if result.status == "sent":
                self.sent += 1
            else:
                self.failed += 1
                self._note_given_up(note.receiver, at, result.error)
                print(f"qrisk: alert {note.alert_id} not delivered to {note.receiver}: {result.error}", file=sys.stderr)
        return result

    def _watch(self, receiver: str, result: Attempt, at: dt.datetime) -> None:
        if result.status == "sent":
            gone = self.failing.pop(receiver, None)
            if gone is not None:
                # what waits for this receiver is due now: backing off further would send an alert's later notices
                # (never tried, so due) before its earlier ones
                for round_ in (self.tried or {}).values():
                    if round_.receiver == receiver and round_.due > at:
                        round_.due = at
                self._recovered.add(receiver)
                print(f"qrisk: 接收方 {receiver} 已恢复，通知重新送达（此前 {gone.attempts} 次尝试失败）/ receiver {receiver} works again: "
                      f"a notification got through after {gone.attempts} failed attempt(s)", file=sys.stderr, flush=True)
            return
        failing = self.failing.get(receiver)
        if failing is None:
            self.failing[receiver] = Failing(at, 1, result.error, result.status == "retry")
            then = ("将自动重试" , "retrying") if result.status == "retry" else ("已放弃该通知", "that notification is given up")
            print(f"qrisk: 警告：预警通知未能送达接收方 {receiver}，{then[0]} / warning: receiver {receiver} is failing, {then[1]}: "
                  f"{result.error}", file=sys.stderr, flush=True)
        else:
            failing.attempts += 1
            failing.error = result.error
            failing.retrying = result.status == "retry"

    def _note_given_up(self, receiver: str, at: dt.datetime, error: str) -> None:
        # said by /healthz at once, not at the next read of the table
        if self.given_up is None:
            return  # (read with the next refresh)
        for g in self.given_up:
            if g.receiver == receiver:
                g.count, g.latest, g.error = g.count + 1, at, error
                return
        self.given_up.append(GivenUp(receiver, 1, at, at, error))
        self.given_up.sort(key=lambda g: g.receiver)

    def given_up_count(self) -> int:
        """Notifications given up within ``given_up_window`` and not re-queued (the store's, not this process's)."""
        return sum(g.count for g in self.given_up or ())

    def given_up_problem(self) -> str | None:
        """/healthz's line while there are given-up notifications: how many, to whom, since when, what to do."""
        given_up = list(self.given_up or ())
        if not given_up:
            return None
        total = sum(g.count for g in given_up)
        since = min(g.since for g in given_up)
        zh = "、".join(f"{g.receiver} {g.count} 条" for g in given_up)
        en = "; ".join(f"{g.receiver}: {g.count} since {_utc(g.since)}, last error: {g.error}" for g in given_up)
        return (f"自 {_utc(since)} 起已放弃 {total} 条预警通知（{zh}），不会再自动重试：请检查接收方，修复后执行 "
                f"qrisk alerts redeliver 重新发送 / {total} alert notification(s) given up since {_utc(since)}, not retried any more "
                f"({en}); fix the receiver, then re-send them with `qrisk alerts redeliver`")

    def receivers_problem(self) -> str | None:
        """/healthz's line while some receiver gets no notification through, or notifications were given up; None otherwise."""
        failing = dict(self.failing)
        lines = []
        if failing:
            names = sorted(failing)
            shown = "; ".join(f"{name}: {failing[name].attempts} failed attempt(s) since {_utc(failing[name].since)}, "
                              f"{'retrying' if failing[name].retrying else 'the last notification given up'}, last: {failing[name].error}"
                              for name in names)
            window = _span_zh(self.give_up_after)
            lines.append(f"预警通知未能送达接收方 {'、'.join(names)}，每条通知自动重试最长 {window} / no notification gets through to "
                         f"{', '.join(names)} (each notification is retried for up to {_span(self.give_up_after)}): {shown}")
        given_up = self.given_up_problem()
        if given_up is not None:
            lines.append(given_up)
        return "；".join(lines) or None

    def _delay(self, attempts: int) -> dt.timedelta:
        return dt.timedelta(seconds=min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1)))

    # ------------------------------------------------------------------ the loop

    thread_class: type[threading.Thread] = threading.Thread
    """What ``start`` runs the loop on (qrisk's shell gives a thread the operating system shows by name)."""

    def start(self) -> None:
        self._thread = self.thread_class(target=self._run, name="qrisk-outbox", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """New notifications were stored: look now rather than at the next interval."""
        self._wake.set()

    def requeued(self) -> None:
        """Given-up notifications were re-queued in this store: read them again and send them now, not at
        the next refresh (a minute)."""
        self._refreshed = -1e18
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.journal is not None and (self._thread is None or not self._thread.is_alive()):
            self.journal.close()  # (reopened by the next append, should a pass still run)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.pass_once()
            self._wake.wait(self.interval)
            self._wake.clear()

    def pass_once(self) -> None:
        """One pass of the loop: its failure is kept for /healthz and said on stderr, the first at once, then
        at most once a minute with a count (a store down for 6 minutes printed 252 lines), and its end."""
        try:
            self.run_once()
            # a pass cut short by a record the store refused is a failure too (/healthz says so)
            self.last_error = self.unrecorded_error if self.unrecorded else None
        except Exception as exc:  # noqa: BLE001 - the store may be down: the outbox keeps everything, try later
            self.last_error = f"{type(exc).__name__}: {exc}"[:500]
            reason = (str(exc).strip().splitlines() or [""])[0][:300]
            now = self.monotonic()
            self._pass_failures += 1
            if self._pass_failures == 1:
                self._pass_failing_since = self._pass_said = now
                print(f"qrisk: 发件箱本轮未能完成（{type(exc).__name__}），稍后重试 / outbox pass failed ({type(exc).__name__}: {reason}); "
                      "retrying", file=sys.stderr, flush=True)
            elif now - self._pass_said >= 60:
                self._pass_said = now
                print(f"qrisk: 发件箱仍无法完成（{_span_zh(now - self._pass_failing_since)}内连续失败 {self._pass_failures} 轮），稍后重试 / "
                      f"outbox passes still failing ({self._pass_failures} in a row over {_span(now - self._pass_failing_since)}; "
                      f"last: {type(exc).__name__}: {reason}); retrying", file=sys.stderr, flush=True)
            return
        if self._pass_failures:
            print(f"qrisk: 发件箱已恢复（此前连续失败 {self._pass_failures} 轮，共 {_span_zh(self.monotonic() - self._pass_failing_since)}）/ "
                  f"outbox passes work again (after {self._pass_failures} failed over {_span(self.monotonic() - self._pass_failing_since)})",
                  file=sys.stderr, flush=True)
            self._pass_failures = 0

    def pending(self) -> int:
        return int((self.store.query(_PENDING_COUNT) or [{"n": 0}])[0]["n"] or 0)


# the notifications given up (last attempt `failed`), with what a re-queue row needs
_FAILED_NOW = (
    "SELECT delivery_id, any(alert_id) AS alert, any(enterprise_id) AS enterprise, any(receiver) AS to_receiver, "
    "any(channel) AS via, max(attempt) AS attempts, argMax(status, attempt) AS last_status, max(at) AS last_at, "
    "argMax(error, attempt) AS last_error FROM deliveries GROUP BY delivery_id HAVING last_status = 'failed' "
    "ORDER BY last_at, delivery_id"
)
_IN_OUTBOX = "SELECT DISTINCT delivery_id FROM outbox WHERE has(%(ids)s, delivery_id)"


@dataclass(frozen=True)
class Requeue:
    """A given-up notification ``qrisk alerts redeliver`` found: ``queued`` False when its outbox row is gone
    (a rebuild no longer makes it), and then there is nothing to send."""

    delivery_id: str
    alert_id: str
    receiver: str
    given_up_at: dt.datetime
    error: str
    queued: bool


def requeue(store: _Store, *, since: dt.datetime | None = None, receiver: str | None = None, dry_run: bool = False,
            actor: str = "", clock: Clock = _utc_now, via: str = "qrisk alerts redeliver") -> list[Requeue]:
    """Put given-up notifications back to be sent: one ``requeued`` row each in ``deliveries`` (the next attempt
    number, who did it), after which the dispatcher sends it again under the same delivery id, so a receiver
    that did get it dedups it by its Idempotency-Key.  Only those given up at or after ``since``, to ``receiver``;
    none written with ``dry_run``.  Running it twice re-queues nothing more: a re-queued one is not ``failed``."""
    found = []
    for r in store.query(_FAILED_NOW):
        at = _aware(r["last_at"])
        error = str(r["last_error"] or "")
        if error.startswith(_WITHHELD):
            continue  # a rebuild decided not to send it (history, or no longer made): not a failure to undo
        if (since is not None and at < since) or (receiver is not None and r["to_receiver"] != receiver):
            continue
        found.append((r, at, error))
    ids = [r["delivery_id"] for r, _, _ in found]
    present = {x["delivery_id"] for x in store.query(_IN_OUTBOX, {"ids": ids})} if ids else set()
    now = clock()
    rows, out = [], []
    for r, at, error in found:
        queued = r["delivery_id"] in present
        out.append(Requeue(r["delivery_id"], r["alert"], r["to_receiver"], at, error, queued))
        if queued:
            rows.append({"delivery_id": r["delivery_id"], "alert_id": r["alert"], "enterprise_id": r["enterprise"],
                         "receiver": r["to_receiver"], "channel": r["via"], "attempt": int(r["attempts"]) + 1, "status": "requeued",
                         "at": now.replace(microsecond=0), "at_ms": now.microsecond // 1000, "response_code": 0,
                         "error": f"由 {actor or '运维人员'} 经 {via} 重新排队 / re-queued by {actor or 'an operator'} ({via})"})
    if rows and not dry_run:
        store.insert("deliveries", rows)
    return out


def _partly(receiver: Any, got: set[str]) -> tuple[str, str] | None:
    """Who of an e-mail receiver's recipients has the notification and who not, by place in its ``to`` list (as
    errors name them, no address): (Chinese, English), or None unless some have it and some do not."""
    places = [(i, a.lower() in got) for i, a in enumerate(receiver.to, 1)]
    have, lack = [i for i, g in places if g], [i for i, g in places if not g]
    if not have or not lack:
        return None
    zh = lambda ids: "、".join(f"#{i}" for i in ids)  # noqa: E731
    en = lambda ids: ", ".join(f"#{i}" for i in ids)  # noqa: E731
    return (f"收件人 {zh(have)} 已收到，收件人 {zh(lack)} 未收到", f"recipient {en(have)} got it, recipient {en(lack)} did not")


def _waiting(receiver: Any, got: set[str], waits: frozenset[str]) -> str:
    """The record of an e-mail that went to some recipients while the others wait for an earlier notice of its alert,
    naming them by place in ``to`` (no address)."""
    have = [i for i, a in enumerate(receiver.to, 1) if a.lower() in got]
    wait = [i for i, a in enumerate(receiver.to, 1) if a.lower() in waits and a.lower() not in got]
    zh = lambda ids: "、".join(f"#{i}" for i in ids)  # noqa: E731
    en = lambda ids: ", ".join(f"#{i}" for i in ids)  # noqa: E731
    return (f"{_WAITING}：收件人 {zh(have)} 已收到；收件人 {zh(wait)} 尚未收到本预警此前的通知，待其收到（或放弃）后再发给其 / "
            f"waiting for the alert's earlier notice: recipient {en(have)} got it; recipient {en(wait)} gets it once the alert's "
            "earlier notices reach them (or are given up)")


def _utc(at: dt.datetime) -> str:
    return f"{at.astimezone(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}"


def _span(seconds: float) -> str:
    """``254 s``, ``5 min``, ``24 h``, ``1 h 30 min``: how long, as an operator reads it."""
    seconds = max(0, int(round(seconds)))
    if seconds < 120:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


def _span_zh(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 120:
        return f"{seconds} 秒"
    hours, minutes = divmod(seconds // 60, 60)
    if not hours:
        return f"{minutes} 分钟"
    return f"{hours} 小时" + (f" {minutes} 分钟" if minutes else "")


def _aware(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.timezone.utc)
