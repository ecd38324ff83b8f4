"""One writer per ClickHouse database.

The embedded pipeline numbers events itself (``seq``, from the log's highest at start-up).  Two
pipelines on one server database — a second ``qrisk run``, or ``qrisk import`` without ``--url``
while one serves — would hand out the same numbers, and ``event_log`` (a ReplacingMergeTree ordered
by ``seq``) would keep one event of each pair: acknowledged events lost.  chdb's directory lock rules
that out for a data directory; on a server this lease does.

A writer stamps a row in ``writer_leases`` (with the server's clock, which every host shares) every
third of the lease.  One that starts while another's row is live refuses; a row not renewed for a
whole lease belongs to a writer that is gone (or cut off: it stops writing for good, see ``check``).
A row left by a process of this host that no longer runs is taken as gone at once, so a restart
after ``kill -9`` does not wait.  ClickHouse has no compare-and-set: two writers starting in the
same instant both insert, and whichever reads the other's row steps back (both, if both do).
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any, Callable

from qrisk.store import StoreError, StoreInUse
from qrisk.threads import NamedThread

_LIVE = (
    "SELECT holder, min(started_ms) AS started, max(renewed_ms) AS renewed, argMax(released, renewed_ms) AS released "
    "FROM writer_leases GROUP BY holder HAVING renewed >= %(since)s AND released = 0 ORDER BY started, holder"
)
_SERVER_MS = "SELECT toUInt64(now()) * 1000 AS ms"


_HELD_HERE: set[str] = set()  # holders of leases this process holds now


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        return "-"


def process_started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, /proc/PID/stat field 22), or None when
    there is no such process.  Where /proc is missing, "0" for a live process: its id alone decides."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except FileNotFoundError:
        return None
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "0"
    # the command name (field 2) is in parentheses and may hold spaces: count from the last ")"
    return stat.rpartition(b")")[2].split()[19].decode()


class LeaseLapsed(StoreError):
    """This writer could not renew its lease for so long that another may have taken over."""


class WriterLease:
    def __init__(self, store: Any, seconds: float = 30.0, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.store, self.seconds, self.monotonic, self.sleep = store, seconds, monotonic, sleep
        # the process's start time next to its id: a pid is soon reused (some kernels hand out the
        # lowest free one at once), and a row must not pass for a live writer because of that
        # and the pid namespace: containers sharing a host name (network_mode: host) number their
        # processes apart, and one must not take another's live lease for a gone process of its own
        self.holder = (f"{os.uname().nodename}:{os.getpid()}:{process_started(os.getpid()) or 0}:{_pid_namespace()}:"
                       f"{uuid.uuid4().hex[:8]}")
        self.started_ms = 0
        self.renewed_at = 0.0
        self.last_error: str | None = None
        # set for good once renewals failed long enough for another writer to take over: coming back
        # would make two writers; only a restart (a new acquire) may write again
        self.lapsed: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ taking it

    def acquire(self, describe: str = "this database") -> None:
        """Take the lease or raise ``StoreInUse`` naming the live writer.  A writer whose row stops
        being renewed is waited out (at most one lease time), then taken over."""
        waited = False
        while True:
            now = self._server_ms()
            others = [r for r in self._live(now) if r["holder"] != self.holder and not self._gone_from_this_host(r["holder"])]
            if not others:
                break
            # a live writer renews every third of the lease: one seen within half a lease is there;
            # one silent for longer is waited out — renewed meanwhile, it was there after all
            if waited or any(now - r["renewed"] < self.seconds * 1000 / 2 for r in others):
                raise self._in_use(others[0], now, describe)
            left = max(self.seconds * 1000 - (now - r["renewed"]) for r in others) / 1000 + 1.0
            print(f"qrisk: {describe} had a writer ({others[0]['holder']}), silent for {(now - others[0]['renewed']) / 1000:.0f} s; "
                  f"waiting {left:.0f} s to see whether it is gone …", flush=True)
            waited = True
            self.sleep(left)
        self.started_ms = now
        self._stamp(now)
        # Another writer that stamped meanwhile: both step back (no tie-break by a clock read to the
        # second, which two simultaneous starters could each win).  One that stamps after this read
        # finds this row and steps back itself.
        rivals = [r for r in self._live(now) if r["holder"] != self.holder and not self._gone_from_this_host(r["holder"])]
        if rivals:
            self.release()
            raise self._in_use(rivals[0], now, describe)
        _HELD_HERE.add(self.holder)
        self._thread = NamedThread(target=self._renew_forever, name="qrisk-writer-lease", daemon=True)
        self._thread.start()

    def _in_use(self, row: dict[str, Any], now: int, describe: str) -> StoreInUse:
        return StoreInUse(
            f"{describe} is written by another qrisk ({row['holder']}, renewed {(now - row['renewed']) / 1000:.0f} s ago): "
            "two writers would number events alike and lose some. Post to the running service instead "
            "(`qrisk import FILE --url http://HOST:PORT`), or stop it first.")

    def _gone_from_this_host(self, holder: str) -> bool:
        parts = holder.split(":")
        if len(parts) < 5 or parts[0] != os.uname().nodename or parts[3] != _pid_namespace() or not parts[1].isdigit():
            return False  # another host, or processes this one cannot see: only its silence tells
        pid_text, started = parts[1], parts[2]
        pid = int(pid_text)
        now = process_started(pid)
        if now is None:
            return True  # no such process
        if started.isdigit() and started != "0" and now != started:
            return True  # the id now names another process (or thread)
        if pid == os.getpid():
            # this very process: a lease it holds now is live; one it no longer holds is gone
            return holder not in _HELD_HERE
        return False

    # ------------------------------------------------------------------ keeping it

    def check(self) -> None:
        """Before a write: refuse once renewals have failed for two thirds of the lease, before another
        writer may take over (it waits a whole lease) — and from then on.  No query: a clock read."""
        self._lapse_if_late()
        if self.lapsed:
            raise LeaseLapsed(f"{self.lapsed}; not writing, as another writer may have taken over: restart qrisk to write again")

    def _lapse_if_late(self) -> bool:
        if self.started_ms and not self.lapsed and self.monotonic() - self.renewed_at >= self.seconds * 2 / 3:
            self.lapsed = (f"the writer lease on this database was not renewed for {self.monotonic() - self.renewed_at:.0f} s "
                           f"({self.last_error or 'no answer'})")
        return self.lapsed is not None

    def _renew_forever(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            if self._lapse_if_late():
                print(f"qrisk: {self.lapsed}: this process writes no more events; restart it", flush=True)
                return  # too late to renew: another writer may hold the database by now
            try:
                self._stamp(self._server_ms())
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - the store is down: check() refuses writes meanwhile
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]

    def release(self) -> None:
        _HELD_HERE.discard(self.holder)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.started_ms:
            try:
                self.store.insert("writer_leases", [{"holder": self.holder, "started_ms": self.started_ms,
                                                     "renewed_ms": self._server_ms() + 1, "released": 1}])
            except Exception:  # noqa: BLE001 - unreleased, it lapses after one lease time
                pass
            self.started_ms = 0

    # ------------------------------------------------------------------ rows

    def _stamp(self, now_ms: int) -> None:
        mono = self.monotonic()  # (read before the insert: errs towards renewing early)
        self.store.insert("writer_leases", [{"holder": self.holder, "started_ms": self.started_ms or now_ms,
                                             "renewed_ms": now_ms, "released": 0}])
        self.renewed_at = mono

    def _live(self, now_ms: int) -> list[dict[str, Any]]:
        return self.store.query(_LIVE, {"since": now_ms - int(self.seconds * 1000)})

    def _server_ms(self) -> int:
        return int(self.store.query(_SERVER_MS)[0]["ms"])
