"""The service's port while ``qrisk run`` opens its store and replays the log.

Replaying years of events takes minutes.  A port that nobody answers on for that long reads as
a dead process: a liveness probe restarts it, and the restart replays from the start again.  So
``qrisk run`` binds its port first and this responder answers on it until the API takes the same
socket over (nothing in between refuses a connection):

- ``GET /healthz``: 200, ``"status": "starting"`` with how far the replay is (alive, working);
- ``GET /readyz``: 503 with the same, ``Retry-After`` (not ready: send nothing yet);
- anything else: 503 with ``Retry-After`` and a message in Chinese and English.  Nothing is
  accepted, so nothing is lost: the sender keeps the batch and resends it, which is safe.
"""
from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from qrisk.threads import NamedThread

RETRY_AFTER_SECONDS = 5
READ_TIMEOUT_SECONDS = 10.0  # a connection's reads while starting (the TLS handshake, each part of a request)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket of the service, bound as uvicorn binds (``SO_REUSEADDR``: a socket still
    closing from the last run is no obstacle).  ``OSError`` when another process holds the port."""
    # the family as uvicorn picks it (IPv6 for an address with a colon, else IPv4): "localhost" is 127.0.0.1
    # even where the resolver lists ::1 first, as it was before the port was bound here
    wanted = socket.AF_INET6 if ":" in host else socket.AF_INET
    family, kind, proto, _, address = socket.getaddrinfo(host, port, wanted, socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # uvicorn's backlog: connections that arrive during the hand-over wait in it
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def starting_status(progress: Any, clock: Any = time.monotonic) -> dict[str, Any]:
    """How far the start is, from a ``qrisk.runtime.ReplayProgress``: opening the store (no total
    yet), reading the fold's snapshot or finishing (its ``stage``), or replaying (events done of the
    total, the time left at the rate so far)."""
    total = getattr(progress, "total", None)
    done = getattr(progress, "done", 0)
    doc: dict[str, Any] = {"status": "starting"}
    stage = getattr(progress, "stage", None)
    if stage is not None:
        # (reading a snapshot or finishing: a replay's 0/0 would say nothing of what takes the time)
        phase, zh, en = stage
        doc.update(phase=phase, message=f"{zh} / {en}")
        if total is not None:
            doc.update(events_done=done, events_total=total)
        return doc
    if total is None:
        doc.update(phase="opening", message="正在打开数据存储 / opening the store")
        return doc
    elapsed = max(clock() - progress.started, 1e-9)
    rate = done / elapsed
    left = round(max(total - done, 0) / rate) if rate > 0 else None
    phase = getattr(progress, "what", "replay")
    doc.update(phase=phase, events_done=done, events_total=total, seconds_left=left,
               message=f"正在重放事件日志：{done:,}/{total:,} 个事件 / {phase}: {done:,} of {total:,} events")
    return doc


class StartupResponder:
    """Answers on ``sock`` from a thread of its own until ``stop()``; the socket stays open for the API."""

    def __init__(self, sock: socket.socket, progress: Any, ssl_context: ssl.SSLContext | None = None,
                 read_timeout: float = READ_TIMEOUT_SECONDS):
        self.sock, self.progress, self.ssl_context = sock, progress, ssl_context
        self.read_timeout = read_timeout
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "StartupResponder":
        responder = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request: Any, client_address: Any) -> None:
                # a client gone quiet mid-head (or before it) held its thread and descriptor for the whole replay,
                # as it did the API's: each read waits this long at most
                request.settimeout(responder.read_timeout)
                # the TLS handshake in the request's own thread: a slow client does not hold up accepting
                if responder.ssl_context is not None:
                    try:
                        request = responder.ssl_context.wrap_socket(request, server_side=True)
                    except (ssl.SSLError, OSError):
                        return
                super().finish_request(request, client_address)

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that went away mid-answer is no news for the operator

        server = Server(self.sock.getsockname()[:2], _Handler, bind_and_activate=False)
        server.socket.close()  # (the unbound one the constructor made) the service's socket instead
        server.socket = self.sock
        server.status = lambda: starting_status(self.progress)  # type: ignore[attr-defined]
        self._server = server
        self._thread = NamedThread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="qrisk-starting", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering; the socket is left listening (connections then queue for the API)."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class _Handler(BaseHTTPRequestHandler):
    server_version = "qrisk"
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        status = self.server.status()  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        if path == "/healthz" and self.command in ("GET", "HEAD"):
            code, doc, retry = 200, status, False  # alive and working: a liveness probe must not restart it
        elif path == "/readyz" and self.command in ("GET", "HEAD"):
            code, doc, retry = 503, status, True
        else:
            code, retry = 503, True
            doc = {
                "detail": f"qrisk 正在启动（{status['message'].split(' / ')[0]}），尚不能受理请求，未写入任何内容；请稍后重试"
                          f"（重发同一 event_id 是安全的）",
                "detail_en": f"qrisk is starting ({status['message'].split(' / ')[1]}) and takes no requests yet; "
                             "nothing was written: retry later (resending an event_id is safe)",
                "starting": status,
            }
        body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        if retry:
            self.send_header("retry-after", str(RETRY_AFTER_SECONDS))
        # the request body is not read: close rather than leave it in the stream for a next request
        self.send_header("connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # probes every few seconds during a replay would bury its progress lines
