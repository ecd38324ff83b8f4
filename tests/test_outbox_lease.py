"""Two `qrisk alerts dispatch` processes on one ClickHouse server: one sends, the other stands by.

Real processes, the real server, a real HTTP receiver.  Every notification arrives once while
both run; after the sender is killed (-9) the other takes over within the lease time, and what
is stored afterwards still arrives once.  A `--once` run next to a live daemon sends nothing.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from tests.conftest import free_port
from tests.services import clickhouse_url, drop_database, fresh_database_url  # noqa: F401 - fixtures
from tests.test_alert_delivery import Hook, wait_for

ROOT = Path(__file__).resolve().parents[1]
E = "E-330110-001"
LEASE = 2.0


def outbox_rows(first: int, n: int) -> list[dict]:
    from alerts.notification import Notification

    rows = []
    for i in range(first, first + n):
        note = Notification(delivery_id=f"d{i:03d}", alert_id="AL-0123456789abcdef", enterprise_id=E, receiver="desk",
                            channel="webhook", reason="opened", subject_zh="【预警】抽检不合格", text_zh=f"第 {i} 条")
        rows.append({"delivery_id": note.delivery_id, "alert_id": note.alert_id, "enterprise_id": E, "receiver": "desk",
                     "channel": "webhook", "reason": "opened", "created_at": 1_770_000_000 + i, "created_ms": 0, "body": note.to_json()})
    return rows


def test_one_dispatcher_sends_the_other_stands_by_and_takes_over(tmp_path, clickhouse_url):  # noqa: F811 - fixture
    from qrisk.store import ClickHouseStore, migrate

    name, url = fresh_database_url(clickhouse_url, "lease")
    store = ClickHouseStore(url)
    migrate(store)
    hook = Hook()
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"alerts": {"receivers": [{"name": "desk", "kind": "webhook", "url": hook.url}]}}))
    env = {**os.environ, "no_proxy": "127.0.0.1", "QRISK_OUTBOX_LEASE_SECONDS": str(LEASE), "QRISK_OUTBOX_INTERVAL": "0.1",
           "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "qrisk", "alerts", "dispatch", "--store", url, "--policy", str(policy)]
    logs = [open(tmp_path / f"dispatcher{i}.log", "w+") for i in range(2)]
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen([*cmd, "--metrics-port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
             for log, port in zip(logs, ports)]

    def metrics(i: int) -> dict[str, float]:
        text = httpx.get(f"http://127.0.0.1:{ports[i]}/metrics", timeout=5, trust_env=False).text
        return {k: float(v) for k, v in (line.split() for line in text.splitlines() if not line.startswith("#"))}

    def received() -> dict[str, int]:
        counts: dict[str, int] = {}
        for c in hook.calls:
            counts[c["body"]["delivery_id"]] = counts.get(c["body"]["delivery_id"], 0) + 1
        return counts

    def said(i: int) -> str:
        logs[i].flush()
        return (tmp_path / f"dispatcher{i}.log").read_text()

    try:
        store.insert("outbox", outbox_rows(0, 30))
        wait_for(lambda: len(received()) == 30, 60)
        time.sleep(3 * LEASE)  # both have had every chance to send
        assert received() == {f"d{i:03d}": 1 for i in range(30)}, "every notification once while two dispatchers run"
        sender = next(i for i in range(2) if "now sends the outbox" in said(i))
        standby = 1 - sender
        assert "now sends" not in said(standby) and "stands by" in said(standby)
        assert (metrics(sender)["qrisk_alert_dispatcher_active"], metrics(sender)["qrisk_alert_deliveries_sent_total"]) == (1, 30)
        assert (metrics(standby)["qrisk_alert_dispatcher_active"], metrics(standby)["qrisk_alert_deliveries_sent_total"]) == (0, 0)
        health = httpx.get(f"http://127.0.0.1:{ports[standby]}/healthz", timeout=5, trust_env=False).json()
        assert health["status"] == "ok" and health["sending"] is False and health["sender"] == \
            httpx.get(f"http://127.0.0.1:{ports[sender]}/healthz", timeout=5, trust_env=False).json()["holder"]

        # a cron pass next to the live daemons: sees them, sends nothing
        once = subprocess.run([*cmd, "--once"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert once.returncode == 0 and "另一个发送器正在发送发件箱" in once.stderr and "another dispatcher sends the outbox" in once.stderr, once.stderr

        procs[sender].send_signal(signal.SIGKILL)
        procs[sender].wait(10)
        killed_at = time.monotonic()
        store.insert("outbox", outbox_rows(30, 10))
        wait_for(lambda: len(received()) == 40, 60)
        took = time.monotonic() - killed_at
        # the sender renewed at most a third of a lease before it died: its lease ran out 2/3 to 1 lease later
        assert took >= LEASE * 2 / 3 - 0.2, "the standby waits for the sender's lease to run out"
        assert "now sends the outbox" in said(standby)
        time.sleep(2 * LEASE)
        assert received() == {f"d{i:03d}": 1 for i in range(40)}
        assert (metrics(standby)["qrisk_alert_dispatcher_active"], metrics(standby)["qrisk_alert_deliveries_sent_total"]) == (1, 10)
        recorded = store.query("SELECT delivery_id, count() AS n FROM deliveries WHERE status = 'sent' GROUP BY delivery_id")
        assert len(recorded) == 40 and {r["n"] for r in recorded} == {1}
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
        for log in logs:
            log.close()
        hook.close()
        store.close()
        drop_database(clickhouse_url, name)


def test_a_dispatcher_paused_past_its_lease_comes_back_standing_by(clickhouse_url):  # noqa: F811 - fixture
    """By the dispatchers' own clock (injected): B takes over while A is paused, and A, resuming,
    is a newcomer that B's live lease outranks.  Nothing is sent twice."""
    import datetime as dt

    from alerts.outbox import Dispatcher
    from qrisk.store import ClickHouseStore, migrate
    from schemas.policy import AlertsPolicy

    name, url = fresh_database_url(clickhouse_url, "lease_pause")
    store = ClickHouseStore(url)
    migrate(store)
    policy = AlertsPolicy.model_validate({"receivers": [{"name": "desk", "kind": "webhook", "url": "http://127.0.0.1:9/x"}]})
    now = [dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.timezone.utc)]
    sent: list[tuple[str, str]] = []

    class Result:
        def __init__(self, ok: bool):
            self.ok, self.code, self.error, self.retry = ok, 200 if ok else 503, "" if ok else "busy", True

    def dispatcher(label: str) -> Dispatcher:
        def send(receiver, note, smtp, timeout):
            sent.append((label, note.delivery_id))
            return Result(note.delivery_id != "d100" or label != "A")  # d100: the receiver is busy for A
        return Dispatcher(store, policy, send=send, clock=lambda: now[0], lease_seconds=30, base_delay=600,
                          lease_clock=lambda: int(now[0].timestamp() * 1000), monotonic=lambda: now[0].timestamp())

    def advance(seconds: float, *running: Dispatcher) -> None:
        for _ in range(int(seconds // 5)):
            now[0] += dt.timedelta(seconds=5)
            for d in running:
                d.run_once()

    try:
        a, b = dispatcher("A"), dispatcher("B")
        a.run_once()
        now[0] += dt.timedelta(seconds=1)
        b.run_once()
        assert not a.active and not b.active  # newcomers both: neither has seen a whole lease yet
        advance(35, a, b)
        assert (a.active, b.active) == (True, False), "the first started sends"
        store.insert("outbox", outbox_rows(0, 3) + outbox_rows(100, 1))
        advance(5, a, b)
        assert sorted(sent) == [("A", "d000"), ("A", "d001"), ("A", "d002"), ("A", "d100")]  # d100: retry in 600 s

        advance(40, b)  # A paused: its renewals stop
        assert b.active
        store.insert("outbox", outbox_rows(3, 2))
        advance(5, b)
        a.run_once()  # A resumes: a newcomer now, standing by
        advance(40, a, b)
        assert (a.active, b.active) == (False, True)
        # B took over with A's attempts on record: d100's second attempt, and due once the receiver took a notification
        # after refusing it (d003), as it was for A, which would have sent it right after d003 (B used to read its
        # back-off of 600 s from the table and send it ten minutes later)
        assert sorted(sent) == [("A", "d000"), ("A", "d001"), ("A", "d002"), ("A", "d100"), ("B", "d003"), ("B", "d004"),
                                ("B", "d100")]
        assert sent[-1] == ("B", "d100")
        advance(600, a, b)
        assert sent[-1] == ("B", "d100") and len(sent) == 7  # nothing sent twice
        attempts = store.query("SELECT attempt, status FROM deliveries WHERE delivery_id = 'd100' ORDER BY attempt")
        assert [(r["attempt"], r["status"]) for r in attempts] == [(1, "retry"), (2, "sent")]
    finally:
        store.close()
        drop_database(clickhouse_url, name)
