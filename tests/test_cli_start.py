"""Smaller things an operator's review found about starting and watching `qrisk run`: a SIGTERM during
the replay says what it stopped, a policy file that is not there is named with its setting, the
counters a dashboard reads exist from the first scrape, and an SMTP password about to cross the
network in clear text is warned of."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace

import httpx

from qrisk.cli import main
from tests.conftest import ROOT, Server, free_port


def test_a_missing_policy_file_is_named_with_its_setting(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QRISK_POLICY_FILE", str(tmp_path / "nonexist"))
    assert main(["run", "--data-dir", str(tmp_path / "data"), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert "QRISK_POLICY_FILE" in err and "--policy" in err and f"{tmp_path / 'nonexist'}: No such file or directory" in err
    assert not (tmp_path / "data").exists()


SLOW_REPLAY = textwrap.dedent('''
    import sys, time
    import qrisk.runtime

    def open_embedded(data_dir, rules, progress=None, **kw):
        progress.start(10)
        progress(3)
        time.sleep(60)  # (a long log: SIGTERM comes meanwhile)

    qrisk.runtime.open_embedded = open_embedded
    from qrisk.cli import main
    sys.exit(main(sys.argv[1:]))
''')


def test_sigterm_during_the_replay_says_it_stopped_the_replay(tmp_path):
    from qrisk.auth import KeyStore

    data = tmp_path / "data"
    KeyStore(data / "keys.json").create("admin", "ops")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SLOW_REPLAY, "run", "--data-dir", str(data), "--port", str(port)],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json().get("events_done") == 3:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143
    assert "stopped by SIGTERM while replaying the event log at start (3 of 10 events replayed)" in err
    assert "Traceback" not in err


def test_counters_are_0_from_the_first_scrape(tmp_path):
    server = Server(tmp_path / "data").start()
    try:
        text = server.get("/metrics").text
    finally:
        server.stop()
    for sample in ("qrisk_ticks_total 0", "qrisk_commit_seconds_total 0", 'qrisk_events_warned_total{channel="http"} 0',
                   'qrisk_events_forbidden_total{channel="http",role="lab"} 0'):
        assert f"\n{sample}\n" in text, sample


def test_an_smtp_login_without_tls_beyond_loopback_is_warned(monkeypatch, capsys):
    from qrisk.cli import _dispatcher
    from qrisk.settings import Settings
    from schemas.policy import AlertsPolicy

    rules = SimpleNamespace(policy=SimpleNamespace(alerts=AlertsPolicy.model_validate(
        {"receivers": [{"name": "town", "kind": "email", "to": ["a@example.org"]}]})))
    store = SimpleNamespace()
    monkeypatch.setenv("QRISK_SMTP_HOST", "mail.example.org")
    monkeypatch.setenv("QRISK_SMTP_USER", "qrisk")
    monkeypatch.setenv("QRISK_SMTP_PASSWORD", "hunter2")
    _dispatcher(store, rules, Settings())
    err = capsys.readouterr().err
    assert "SMTP login as qrisk to mail.example.org:25 without TLS" in err and "QRISK_SMTP_STARTTLS" in err
    assert "hunter2" not in err
    for name, value in (("QRISK_SMTP_STARTTLS", "true"), ("QRISK_SMTP_HOST", "127.0.0.1")):
        with monkeypatch.context() as m:
            m.setenv(name, value)
            _dispatcher(store, rules, Settings())
        assert "without TLS" not in capsys.readouterr().err
