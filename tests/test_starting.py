"""The port answers while ``qrisk run`` starts: a liveness probe sees it alive (a restart would only
replay the log again from the start), readiness and every request say "not yet, retry".

The responder is driven here with a real socket and real HTTP; a real ``qrisk run`` is caught
in its start by a ClickHouse that accepts the connection and never answers (a hung server)."""
from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from qrisk.runtime import ReplayProgress
from qrisk.starting import StartupResponder, bind, starting_status
from tests.conftest import ROOT, free_port


def _progress(total: int | None, done: int) -> ReplayProgress:
    progress = ReplayProgress("replay", terminal=False, stream=io.StringIO())
    if total is not None:
        progress.start(total)
        progress(done)
    return progress


def test_while_the_log_replays_a_client_gone_quiet_mid_head_is_closed():
    """Sockets that send half a request head and then nothing held a thread and a descriptor each for the whole
    replay: each read now waits ``read_timeout`` at most."""
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    responder = StartupResponder(sock, _progress(40_000, 10_000), read_timeout=1).start()
    try:
        quiet = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
        for s in quiet:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-a: ")
            s.settimeout(5)
        for s in quiet:
            try:
                assert s.recv(4096) == b""  # closed, nothing answered
            except ConnectionResetError:
                pass
            s.close()
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    finally:
        responder.stop()
        sock.close()


def test_while_the_log_replays_healthz_is_alive_readyz_and_requests_are_503():
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    responder = StartupResponder(sock, _progress(40_000, 10_000)).start()
    try:
        base = f"http://127.0.0.1:{port}"
        health = httpx.get(base + "/healthz", timeout=10)
        assert health.status_code == 200
        doc = health.json()
        assert doc["status"] == "starting" and doc["phase"] == "replay"
        assert (doc["events_done"], doc["events_total"]) == (10_000, 40_000)
        assert "10,000/40,000" in doc["message"]

        ready = httpx.get(base + "/readyz", timeout=10)
        assert ready.status_code == 503 and ready.headers["retry-after"] == "5"
        assert ready.json()["status"] == "starting"

        posted = httpx.post(base + "/v1/events", json={"event_id": "x"}, headers={"authorization": "Bearer k"}, timeout=10)
        assert posted.status_code == 503 and posted.headers["retry-after"] == "5"
        body = posted.json()
        assert "正在启动" in body["detail"] and "nothing was written" in body["detail_en"]
        assert body["starting"]["events_done"] == 10_000
        assert httpx.get(base + "/v1/enterprises/E1", timeout=10).status_code == 503
    finally:
        responder.stop()
    # stopped, the socket still listens: a connection made now waits for whoever serves next
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    sock.close()


def test_before_the_total_is_known_the_start_is_opening_the_store():
    doc = starting_status(_progress(None, 0))
    assert doc["status"] == "starting" and doc["phase"] == "opening" and "events_total" not in doc


def test_time_left_follows_the_rate_so_far():
    now = [100.0]
    progress = ReplayProgress("replay", terminal=False, stream=io.StringIO(), clock=lambda: now[0])
    progress.start(30_000)
    now[0] += 10.0
    progress(10_000)  # 1,000 events/s: 20,000 left take 20 s
    assert starting_status(progress, clock=lambda: now[0])["seconds_left"] == 20


def test_qrisk_run_answers_on_its_port_while_its_store_does_not(tmp_path):
    """A ClickHouse that takes the connection and never answers holds the start in "opening":
    the port already answers, alive and not ready."""
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)  # accepts (the kernel completes the handshake) and never says a word
    port = free_port()
    env = {**os.environ, "QRISK_CLICKHOUSE_URL": f"clickhouse://127.0.0.1:{hung.getsockname()[1]}/qrisk?send_receive_timeout=120"}
    env.pop("QRISK_EVENT_LOG", None)
    log = open(tmp_path / "run.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "qrisk", "run", "--port", str(port), "--data-dir", str(tmp_path / "data")],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health is not None and health.status_code == 200, (tmp_path / "run.log").read_text()
        assert health.json()["phase"] == "opening"
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 503
        assert proc.poll() is None  # still waiting on the store, not failed
    finally:
        proc.kill()
        proc.wait(timeout=30)
        log.close()
        hung.close()


def test_with_a_certificate_the_responder_speaks_https(tmp_path):
    import ssl

    from tests.test_auth_tls import self_signed

    cert, key = self_signed(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(str(cert), str(key))
    sock = bind("127.0.0.1", 0)
    responder = StartupResponder(sock, _progress(None, 0), server_side).start()
    try:
        url = f"https://127.0.0.1:{sock.getsockname()[1]}/healthz"
        assert httpx.get(url, verify=ssl.create_default_context(cafile=str(cert)), timeout=10).json()["phase"] == "opening"
        with pytest.raises(httpx.HTTPError):  # plain HTTP gets no answer from a TLS port
            httpx.get(url.replace("https://", "http://"), timeout=10).raise_for_status()
    finally:
        responder.stop()
        sock.close()


def test_localhost_binds_ipv4_as_uvicorn_did():
    sock = bind("localhost", 0)
    try:
        assert sock.family == socket.AF_INET and sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()
