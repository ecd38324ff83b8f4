"""A notification whose attempt cannot be recorded stops the dispatcher's pass: on a full disk it used
to go on sending every pending notification it could not record (193 in one reviewer's run), and a
kill -9 then sent them all again.

The store is real: chdb on a small tmpfs of a private mount namespace (``unshare -rm``, as
tests/test_operator_errors.py does), filled to the last byte so that chdb refuses the ``deliveries``
insert (NOT_ENOUGH_SPACE) while its reads go on working; the receiver is a real HTTP server.
Everything runs in one child process inside the namespace, which prints what it saw as JSON."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

SCRIPT = textwrap.dedent('''
    import json, os, sys, threading
    from collections import Counter
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from alerts.notification import Notification
    from alerts.outbox import Dispatcher
    from alerts.receivers import SmtpConfig
    from qrisk.store import ChdbStore, migrate
    from schemas.policy import AlertsPolicy

    mount = sys.argv[1]
    calls = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            calls.append(self.headers.get("Idempotency-Key"))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    policy = AlertsPolicy.model_validate({"receivers": [
        {"name": "desk", "kind": "webhook", "url": f"http://127.0.0.1:{server.server_address[1]}/hook"}]})
    store = ChdbStore(os.path.join(mount, "data"))
    migrate(store)

    def queue(prefix, n, start):
        rows = []
        for i in range(n):
            note = Notification(delivery_id=f"{prefix}{i:02d}", alert_id="AL-0123456789abcdef", enterprise_id="E-1",
                                receiver="desk", channel="webhook", reason="opened", subject_zh="主题", text_zh="正文")
            rows.append({"delivery_id": note.delivery_id, "alert_id": note.alert_id, "enterprise_id": "E-1", "receiver": "desk",
                         "channel": "webhook", "reason": "opened", "created_at": start + i, "created_ms": 0, "body": note.to_json()})
        store.insert("outbox", rows)

    filler = os.path.join(mount, "filler")

    def fill():
        with open(filler, "wb") as fh:
            try:
                while True:
                    fh.write(b"\\0" * (1 << 20))
                    fh.flush()
            except OSError:
                pass

    def dispatcher():
        return Dispatcher(store, policy, smtp=SmtpConfig(), batch=100, timeout=5)

    out = {}
    # A: the disk fills, the record of the first send fails; nothing else goes out until the disk has room
    queue("a", 20, 1_770_000_000)
    d = dispatcher()
    fill()
    first = d.run_once()
    out["a_first_pass"] = [(a.delivery_id, a.status) for a in first]
    out["a_calls_after_first_pass"] = len(calls)
    out["a_unrecorded"] = len(d.unrecorded)
    out["a_error"] = getattr(d, "unrecorded_error", "")
    try:
        d.run_once()
        out["a_second_pass"] = "ran"
    except Exception as exc:
        out["a_second_pass"] = type(exc).__name__
    out["a_calls_while_full"] = len(calls)
    os.unlink(filler)
    while d.run_once():
        pass
    out["a_calls"] = Counter(calls)
    out["a_recorded"] = store.query("SELECT delivery_id, count() AS n FROM deliveries WHERE status = 'sent' GROUP BY delivery_id ORDER BY delivery_id")
    # B: the same, then kill -9 before the disk has room (the dispatcher is dropped with its unrecorded attempt)
    calls.clear()
    queue("b", 10, 1_770_001_000)
    d = dispatcher()
    fill()
    d.run_once()
    out["b_calls_before_crash"] = len(calls)
    del d
    os.unlink(filler)
    d = dispatcher()
    while d.run_once():
        pass
    out["b_calls"] = Counter(calls)
    store.close()
    print(json.dumps(out))
''')


def _namespace_works() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt 2>/dev/null || mount -t tmpfs -o size=1m tmpfs /tmp"],
                           capture_output=True)
    return probe.returncode == 0


def test_a_full_disk_stops_the_pass_at_the_first_attempt_it_cannot_record(tmp_path):
    if not _namespace_works():
        pytest.fail("this test needs `unshare -rm` (util-linux) and a private mount namespace: a tmpfs of its own is the "
                    "disk it fills without filling the machine's")
    mount = tmp_path / "mnt"
    mount.mkdir()
    script = tmp_path / "full_disk.py"
    script.write_text(SCRIPT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=24m tmpfs {mount} && {sys.executable} {script} {mount}"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])

    # the first notification went out, its record failed: the pass ended there
    assert out["a_first_pass"] == [["a00", "sent"]]
    assert out["a_calls_after_first_pass"] == 1 and out["a_unrecorded"] == 1
    assert "NOT_ENOUGH_SPACE" in out["a_error"] or "not enough space" in out["a_error"].lower(), out["a_error"]
    # the next pass tries the record first, fails again, and sends nothing
    assert out["a_second_pass"] == "StoreError" and out["a_calls_while_full"] == 1
    # with room again: the kept record is written, the rest go out, each once
    assert out["a_calls"] == {f"a{i:02d}": 1 for i in range(20)}
    assert out["a_recorded"] == [{"delivery_id": f"a{i:02d}", "n": 1} for i in range(20)]
    assert "写入之前不再发送其他通知" in done.stderr and "nothing else is sent until it is written" in done.stderr

    # a kill -9 while the record is unwritten re-sends that one notification, not the whole outbox
    assert out["b_calls_before_crash"] == 1
    assert out["b_calls"] == {"b00": 2, **{f"b{i:02d}": 1 for i in range(1, 10)}}


CRASH = textwrap.dedent('''
    import json, os, signal, sys

    from alerts.notification import Notification
    from alerts.outbox import Dispatcher
    from alerts.receivers import SmtpConfig
    from qrisk.store import ChdbStore, migrate
    from schemas.policy import AlertsPolicy

    data, url, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    store = ChdbStore(data)
    migrate(store)
    policy = AlertsPolicy.model_validate({"receivers": [{"name": "desk", "kind": "webhook", "url": url}]})
    if mode == "crash":
        rows = []
        for i in range(3):
            note = Notification(delivery_id=f"n{i}", alert_id="AL-0123456789abcdef", enterprise_id="E-1", receiver="desk",
                                channel="webhook", reason="opened", subject_zh="主题", text_zh="正文")
            rows.append({"delivery_id": note.delivery_id, "alert_id": note.alert_id, "enterprise_id": "E-1", "receiver": "desk",
                         "channel": "webhook", "reason": "opened", "created_at": 1_770_000_000 + i, "created_ms": 0, "body": note.to_json()})
        store.insert("outbox", rows)
        insert = store.insert

        def killed_before_the_record(table, rows):
            if table == "deliveries":
                os.kill(os.getpid(), signal.SIGKILL)  # kill -9 between the receiver's answer and the deliveries row
            insert(table, rows)

        store.insert = killed_before_the_record
    d = Dispatcher(store, policy, smtp=SmtpConfig(), batch=100, timeout=5)
    while d.run_once():
        pass
    print(json.dumps(store.query("SELECT delivery_id, attempt, status FROM deliveries FINAL ORDER BY delivery_id")))
    store.close()
''')


def test_a_kill_9_right_after_the_receivers_answer_does_not_send_it_again(tmp_path):
    """The window between a receiver's answer and its ``deliveries`` row is where a crash re-sends a
    notification; under load that insert waits tens of milliseconds for chdb.  The journal takes the
    attempt first: a process killed just before the insert leaves it there, and the next dispatcher
    records it before it sends anything."""
    from tests.test_alert_delivery import Hook

    hook = Hook()
    try:
        script = tmp_path / "crash.py"
        script.write_text(CRASH, encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        data = tmp_path / "data"
        killed = subprocess.run([sys.executable, str(script), str(data), hook.url, "crash"], capture_output=True, text=True,
                                env=env, timeout=120)
        assert killed.returncode == -9, killed.stderr[-2000:]
        assert [c["headers"]["idempotency-key"] for c in hook.calls] == ["n0"]
        assert (data / "deliveries.journal").read_text(encoding="utf-8").count("\n") == 1
        again = subprocess.run([sys.executable, str(script), str(data), hook.url, "resume"], capture_output=True, text=True,
                               env=env, timeout=120)
        assert again.returncode == 0, again.stderr[-2000:]
        assert "已从发送日志补记 1 条发送记录" in again.stderr and "recorded 1 delivery attempts from" in again.stderr
        assert sorted(c["headers"]["idempotency-key"] for c in hook.calls) == ["n0", "n1", "n2"], "each sent once"
        assert json.loads(again.stdout.strip().splitlines()[-1]) == [
            {"delivery_id": f"n{i}", "attempt": 1, "status": "sent"} for i in range(3)]
        assert (data / "deliveries.journal").read_bytes() == b"", "emptied once the table has its rows"
    finally:
        hook.close()


def test_a_row_whose_body_names_another_notification_is_recorded_not_sent_every_pass(tmp_path):
    """The record goes under the body's id: a row whose body is another notification's stayed pending and
    was sent again at every pass.  (The fold never writes one; a hand-made or damaged row may.)"""
    from alerts.notification import Notification
    from alerts.outbox import Dispatcher
    from alerts.receivers import SmtpConfig
    from qrisk.store import ChdbStore, migrate
    from schemas.policy import AlertsPolicy

    store = ChdbStore(tmp_path / "d")
    migrate(store)
    other = Notification(delivery_id="n-other", alert_id="AL-0123456789abcdef", enterprise_id="E-1", receiver="desk",
                         channel="webhook", reason="opened", subject_zh="主题", text_zh="正文")
    store.insert("outbox", [{"delivery_id": "n-row", "alert_id": other.alert_id, "enterprise_id": "E-1", "receiver": "desk",
                             "channel": "webhook", "reason": "opened", "created_at": 1_770_000_000, "created_ms": 0, "body": other.to_json()}])
    sent = []

    def send(receiver, note, smtp, timeout):
        sent.append(note.delivery_id)

    policy = AlertsPolicy.model_validate({"receivers": [{"name": "desk", "kind": "webhook", "url": "http://127.0.0.1:9/x"}]})
    d = Dispatcher(store, policy, smtp=SmtpConfig(), send=send)
    assert [(a.delivery_id, a.status) for a in d.run_once()] == [("n-row", "failed")]
    assert d.run_once() == [] and sent == []
    assert "n-other's" in store.query("SELECT error FROM deliveries WHERE delivery_id = 'n-row'")[0]["error"]
    store.close()
