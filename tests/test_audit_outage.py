"""The audit writer while the store refuses its rows (a full disk): requests are not held for as long as it
lasts, nothing is dropped while the process runs, and a stop is bounded and says what it lost.

The store is a real chdb store whose inserts into ``audit_log`` are made to fail while ``full`` is set: a
full disk cannot be made here without mounting a file system (an operator's review did it with a 45 MB tmpfs)."""
from __future__ import annotations

import time

import pytest

import qrisk.auth as auth
from qrisk.auth import AuditLog


class FillingStore:
    def __init__(self, store):
        self.store, self.full = store, True

    def insert(self, table, rows):
        if self.full:
            raise OSError(28, "No space left on device")
        return self.store.insert(table, rows)

    def rows(self) -> int:
        return int(self.store.query("SELECT count() AS n FROM audit_log")[0]["n"])


@pytest.fixture
def store(tmp_path):
    from qrisk.store import migrate, open_store

    real = open_store(str(tmp_path / "data"))
    migrate(real, auth.utc_now())
    yield FillingStore(real)
    real.close()


def _wait(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_requests_are_answered_while_the_store_refuses_and_the_rows_written_when_it_recovers(store, monkeypatch, capsys):
    monkeypatch.setattr(auth, "AUDIT_ANSWER_AFTER_S", 1.0)
    audit = AuditLog(store)
    try:
        first = audit.record("events.posted", "ok", detail={"n": 1})
        time.sleep(0.5)
        assert not first.done()  # a short refusal: the request still waits for its row
        assert _wait(first.done, 6), "a request was held while the store refused its audit row"
        later = audit.record("events.posted", "ok", detail={"n": 2})
        assert _wait(later.done, 6)
        assert store.rows() == 0
        store.full = False
        assert _wait(lambda: store.rows() == 2, 10)  # nothing dropped: both written once the store takes them
    finally:
        audit.close()
    err = capsys.readouterr().err
    assert "requests are answered without waiting" in err and "audit rows written again (2 rows" in err


def test_a_stop_while_the_store_refuses_is_bounded_and_says_what_is_lost(store, monkeypatch, capsys):
    monkeypatch.setattr(auth, "AUDIT_ANSWER_AFTER_S", 0.5)
    monkeypatch.setattr(auth, "AUDIT_CLOSE_WAIT_S", 1.0)
    audit = AuditLog(store)
    audit.record("events.posted", "ok")
    audit.record("events.posted", "ok")
    time.sleep(0.2)
    t0 = time.monotonic()
    audit.close()
    assert time.monotonic() - t0 < 8 and not audit._thread.is_alive()
    assert "2 audit rows could not be written before the stop" in capsys.readouterr().err
