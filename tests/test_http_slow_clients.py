"""Slow or silent clients against a real `qrisk run`: a request head has QRISK_HEADER_TIMEOUT_SECONDS to
arrive, and past QRISK_MAX_CONNECTIONS a new connection is answered 503 and closed at once.  Sockets that
sent half a head and went quiet used to stay open for good, a file descriptor each, until the API stopped
answering and chdb failed with "Too many open files"."""
from __future__ import annotations

import socket
import time

import pytest

from tests.conftest import Server

SLOW_HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-a: "


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes the socket (EOF or a reset) within ``seconds``; what it sent first is read and dropped."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if sock.recv(4096) == b"":
                return True
        except socket.timeout:
            continue
        except ConnectionError:
            return True
    return False


@pytest.fixture
def slow_server(tmp_path, monkeypatch):
    monkeypatch.setenv("QRISK_HEADER_TIMEOUT_SECONDS", "1.5")
    monkeypatch.setenv("QRISK_MAX_CONNECTIONS", "40")
    srv = Server(tmp_path / "data").start()
    yield srv
    srv.stop()


def test_a_head_not_finished_in_time_is_closed_and_the_server_answers(slow_server):
    slow = []
    for _ in range(30):
        s = socket.create_connection(("127.0.0.1", slow_server.port))
        s.sendall(SLOW_HEAD)
        slow.append(s)
    silent = socket.create_connection(("127.0.0.1", slow_server.port))  # connects and sends nothing at all
    try:
        started = time.monotonic()
        assert all(_closed_within(s, 10) for s in slow + [silent])
        assert time.monotonic() - started < 10
        assert slow_server.get("/healthz").status_code == 200
    finally:
        for s in slow + [silent]:
            s.close()


def test_a_head_trickled_a_byte_at_a_time_is_held_to_the_same_deadline(slow_server):
    s = socket.create_connection(("127.0.0.1", slow_server.port))
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 6:
            try:
                s.sendall(b"X")  # every byte within the deadline, the head never ends
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if _closed_within(s, 0.3):
                closed = True
                break
        assert closed, "a head sent a byte at a time kept the connection open"
    finally:
        s.close()


def test_a_keep_alive_connection_has_the_deadline_again_for_its_next_head(slow_server):
    s = socket.create_connection(("127.0.0.1", slow_server.port))
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        s.sendall(SLOW_HEAD)  # within uvicorn's keep-alive time: the head timer takes over
        assert _closed_within(s, 6)
    finally:
        s.close()


def test_past_the_most_connections_a_new_one_is_refused_at_once(slow_server):
    held = []
    try:
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", slow_server.port))
            s.sendall(SLOW_HEAD)
            held.append(s)
        time.sleep(0.3)  # (the server has taken them all)
        extra = socket.create_connection(("127.0.0.1", slow_server.port))
        extra.settimeout(5)
        answer = b""
        try:
            while chunk := extra.recv(4096):
                answer += chunk
        except (ConnectionError, socket.timeout):
            pass
        extra.close()
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        assert "连接已满".encode() in answer
        # the held ones time out, and the server takes connections again
        assert all(_closed_within(s, 10) for s in held)
        assert slow_server.get("/healthz").status_code == 200
    finally:
        for s in held:
            s.close()


def test_the_settings_are_bounded():
    from pydantic import ValidationError

    from qrisk.settings import Settings

    assert Settings().header_timeout_seconds == 30 and Settings().max_connections == 1000
    for bad in ({"header_timeout_seconds": 0}, {"max_connections": 0}):
        with pytest.raises(ValidationError):
            Settings(**bad)


@pytest.mark.parametrize("hard, soft_after, warned", [(4096, 2024, False), (1024, 1024, True)])
def test_the_open_file_limit_is_raised_for_the_connections_or_a_warning_says_why_not(hard, soft_after, warned):
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (512, %d)); "
            "from qrisk.cli import room_for_connections; room_for_connections(1000); "
            "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])" % hard)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == soft_after
    assert ("QRISK_MAX_CONNECTIONS=1000" in done.stderr and "Too many open files" in done.stderr) is warned
