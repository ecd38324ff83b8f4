"""The HTTP protocol both API servers speak: uvicorn's h11 protocol with a deadline on the request head
and a cap on open connections.  Neither is in uvicorn: its h11 protocol waits for a head as long as
the client keeps the socket open, and its ``limit_concurrency`` answers 503 only to a request whose head
has arrived, so connections that never finish one are never refused.  1,100 sockets each sending
``GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nX-a: `` and then nothing held a file descriptor each for good,
and under ``ulimit -n 1024`` the API stopped answering and chdb failed with "Too many open files"."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger("uvicorn.error")

_BUSY_BODY = "服务器连接已满，请稍后重试 / too many connections; try again later\n".encode()
BUSY_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 5\r\n"
                 b"connection: close\r\ncontent-length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY)


def bounded_protocol(header_timeout: float, max_connections: int) -> type[H11Protocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` (uvicorn takes a class there as well as a name)."""

    class BoundedH11Protocol(_BoundedH11Protocol):
        HEADER_TIMEOUT = header_timeout
        MAX_CONNECTIONS = max_connections

    return BoundedH11Protocol


class _BoundedH11Protocol(H11Protocol):
    HEADER_TIMEOUT: float = 30.0
    MAX_CONNECTIONS: int = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.MAX_CONNECTIONS:
            # refused at once, never added: its file descriptor is given back now, not when the client goes
            logger.warning("连接数已达上限 %d，拒绝新连接 / %d connections open, the most allowed: a new one refused",
                           self.MAX_CONNECTIONS, self.MAX_CONNECTIONS)
            self.transport = transport
            transport.write(BUSY_RESPONSE)
            transport.close()
            return
        super().connection_made(transport)
        # from the connection's first moment: a client that connects and sends nothing is held to it too
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        # a keep-alive connection starts a new head with this data: its time runs from its first byte
        if self._head_timer is None and self.conn.their_state is h11.IDLE:
            self._arm_head_timer()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()  # the head is in (the body is the application's to wait for)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self not in self.connections and self.flow is None:
            return  # one refused in connection_made: nothing of uvicorn's was set up for it
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # the keep-alive timer (uvicorn's) watches the idle connection now; the head timer starts with the next byte
        self._cancel_head_timer()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.HEADER_TIMEOUT, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.conn.their_state is not h11.IDLE or self.transport is None or self.transport.is_closing():
            return
        prefix = "%s:%d - " % self.client if self.client else ""
        logger.info("%s请求头 %g 秒内未发送完，关闭连接 / request head not complete within %g s: connection closed",
                    prefix, self.HEADER_TIMEOUT, self.HEADER_TIMEOUT)
        self.transport.close()
