"""What one dispatcher pass reads of a large pending backlog (a review of the outbox's round-robin).

Every pass reads all pending notifications to go round the receivers.  It paged them with OFFSET, each page grouping
the whole deliveries table again, and held every body: over 10,000 pending (after an outage, a big redeliver) one pass
took 5-7 s and 33 MB on chdb before a fresh critical alert could go out.  Now the pass reads the pending ones in one
query, without bodies, and the bodies of the notifications it is about to send, at most a batch: a bounded number of
store queries whatever the backlog.  Timing: bench/bench_outbox.py.  Both backends."""
from __future__ import annotations

import datetime as dt
import types
from typing import Any

import pytest

from alerts.notification import Notification
from alerts.outbox import Dispatcher
from qrisk.store import ClickHouseStore, migrate, open_store
from schemas.policy import AlertsPolicy
from tests.services import clickhouse_url, drop_database, fresh_database_url  # noqa: F401 - fixtures

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.timezone.utc)
RECEIVERS = ("town", "county", "duty")
PENDING = 1200
BATCH = 40


class Counting:
    """The store, counting the queries a pass makes and the bodies they hand over."""

    exclusive = True  # (one dispatcher here: on the server too, no lease to wait out)

    def __init__(self, store: Any):
        self.store = store
        self.queries: list[str] = []
        self.bodies: list[int] = []  # per query: rows handed over with a body

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        rows = self.store.query(sql, params)
        self.queries.append(sql)
        self.bodies.append(sum(1 for r in rows if "body" in r))
        return rows

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        self.store.insert(table, rows)

    def reset(self) -> None:
        self.queries, self.bodies = [], []

    def outbox_reads(self) -> int:
        return sum(1 for q in self.queries if "FROM outbox" in q)


@pytest.fixture(params=["chdb", "clickhouse"])
def store(request, tmp_path):
    if request.param == "chdb":
        s = open_store(tmp_path / "data")
        migrate(s)
        yield s
        s.close()
        return
    url = request.getfixturevalue("clickhouse_url")
    name, db = fresh_database_url(url, "outbox_read")
    s = ClickHouseStore(db)
    migrate(s)
    try:
        yield s
    finally:
        s.close()
        drop_database(url, name)


def _backlog(store: Any, n: int) -> list[str]:
    """n notifications, round the receivers in created order, each alert's two notices to a receiver in a row."""
    rows = []
    for i in range(n):
        did, receiver = f"d{i:05d}", RECEIVERS[i % 3]
        note = Notification(delivery_id=did, alert_id=f"AL-{i // 6}", enterprise_id="E1", receiver=receiver, channel="webhook",
                            reason="opened" if i % 6 < 3 else "closed", subject_zh="【高·抽检不合格】清源桶装水厂", text_zh="正文" * 200)
        rows.append({"delivery_id": did, "alert_id": note.alert_id, "enterprise_id": "E1", "receiver": receiver, "channel": "webhook",
                     "reason": note.reason, "created_at": int((T0 + dt.timedelta(seconds=i)).timestamp()), "created_ms": 0,
                     "body": note.to_json()})
    store.insert("outbox", rows)
    return [r["delivery_id"] for r in rows]


def _dispatcher(store: Counting, send) -> Dispatcher:
    policy = AlertsPolicy.model_validate({"receivers": [{"name": r, "kind": "webhook", "url": "http://127.0.0.1:9/x"} for r in RECEIVERS]})
    return Dispatcher(store, policy, clock=lambda: T0 + dt.timedelta(hours=2), send=send, journal=False, batch=BATCH,
                      refresh_seconds=1e9)


def test_a_pass_over_a_large_backlog_reads_it_once_and_a_batch_of_bodies(store):
    ids = _backlog(store, PENDING)
    sent: list[str] = []

    def send(receiver, note, smtp, timeout=None, **kw):
        sent.append(note.delivery_id)
        return types.SimpleNamespace(ok=True, code=200, error="", retry=False, accepted=())

    counting = Counting(store)
    d = _dispatcher(counting, send)
    for n in range(3):
        counting.reset()
        got = d.run_once()
        # round the receivers, each in created order: the backlog's oldest batch, in its order
        assert [a.delivery_id for a in got] == ids[n * BATCH:(n + 1) * BATCH] == sent[n * BATCH:]
        assert counting.outbox_reads() == 2, counting.queries  # the pending ones, then the bodies of those sent
        # (the first pass also reads the rounds on record and the give-ups: a handful, not one a page of the backlog)
        assert len(counting.queries) <= 6, counting.queries
        assert sum(counting.bodies) == BATCH, "bodies are read for the notifications sent, no others"
    assert d.pending() == PENDING - 3 * BATCH


def test_failing_receivers_change_the_order_and_the_pass_still_holds_a_batch_of_bodies_at_most(store):
    """The town gives no answer (one attempt a pass), the county refuses its first alert for now (its later notice
    waits): the pass reads bodies again when its order changes, never more than a batch at a time, and a bounded
    number of times."""
    _backlog(store, PENDING)
    tried: list[str] = []

    def send(receiver, note, smtp, timeout=None, **kw):
        tried.append(note.delivery_id)
        if receiver.name == "town":
            return types.SimpleNamespace(ok=False, code=0, error="connection refused", retry=True, accepted=())
        if receiver.name == "county" and note.alert_id == "AL-0":
            return types.SimpleNamespace(ok=False, code=503, error="busy", retry=True, accepted=())
        return types.SimpleNamespace(ok=True, code=200, error="", retry=False, accepted=())

    counting = Counting(store)
    d = _dispatcher(counting, send)
    got = d.run_once()
    assert len(got) == BATCH
    by = {a.delivery_id: a.status for a in got}
    assert [t for t in tried if int(t[1:]) % 3 == 0] == ["d00000"], "the town, unanswered, gets one attempt a pass"
    assert by["d00001"] == "retry" and "d00004" not in by, "the county's second notice of AL-0 waits for its first"
    assert all(s == "sent" for t, s in by.items() if t not in ("d00000", "d00001"))
    assert max(counting.bodies) <= BATCH, counting.bodies
    assert counting.outbox_reads() <= 5, counting.queries
    assert sum(1 for q, b in zip(counting.queries, counting.bodies) if "FROM outbox" in q and "body" in q) >= 1


def test_a_notice_refused_for_now_holds_its_alerts_later_notices_back_in_the_same_pass(tmp_path):
    """The county answers 503 to an alert's 新预警 and takes everything else: its 预警自动关闭 must not go out after
    that refusal in the same pass (the turn had moved past the refused one, so nothing held the alert back)."""
    store = open_store(tmp_path / "data")
    migrate(store)
    try:
        _backlog(store, 12)  # the county's: d00001 (AL-0 opened), d00004 (AL-0 closed), d00007, d00010 (AL-1)
        got: list[str] = []

        def send(receiver, note, smtp, timeout=None, **kw):
            got.append(note.delivery_id)
            refused = note.delivery_id == "d00001"
            return types.SimpleNamespace(ok=not refused, code=503 if refused else 200, error="busy" if refused else "",
                                         retry=True, accepted=())

        d = _dispatcher(Counting(store), send)
        d.run_once()
        assert "d00001" in got and "d00004" not in got, got
        assert {"d00007", "d00010"} <= set(got), "the county's other alert goes on"
    finally:
        store.close()
