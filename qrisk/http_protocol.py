"""The HTTP protocol both API servers speak: uvicorn's h11 protocol with a deadline on the request head
and a cap on open connections.  Neither is in uvicorn: its h11 protocol waits for a head as long as
the client keeps the socket open, and its ``limit_concurrency`` answers 503 only to a request whose head
has arrived, so connections that never finish one are never refused.  1,100 sockets each sending
``GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nX-a: `` and then nothing held a file descriptor each for good,
and under ``ulimit -n 1024`` the API stopped answering and chdb failed with "Too many open files".

It also percent-encodes bytes past ASCII in a request's target, as a browser does before sending:
curl sends ``?town=北山镇`` typed into it as raw UTF-8, which h11 refuses (uvicorn then answered a
plain-text "Invalid HTTP request received."), so the README's own filters failed as typed.  Only a
target whose bytes are UTF-8 is encoded: GBK encoded as %B1%B1 would be read back as replacement
characters and a filter such as ?product= would match nothing, answered 200 with an empty list.  A
request line h11 still refuses for such bytes (GBK, or one pipelined behind another, already in h11's
buffer) is answered with the API's JSON refusal saying how to encode it."""
from __future__ import annotations

import asyncio
import codecs
import json
import logging
import re
import uuid
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


_URL_ZH = "请求行无效：URL 中的中文须为 UTF-8 编码并经 URL 编码（如 curl -G --data-urlencode 'town=北山镇'）"
_URL_EN = ("invalid request line: Chinese in a URL must be UTF-8, percent-encoded "
           "(e.g. curl -G --data-urlencode 'town=北山镇')")
# h11 names the refused line in its message, bytes past ASCII as \x80 … \xff
_NON_ASCII_SHOWN = re.compile(r"illegal request line: .*\\x[89a-f][0-9a-f]")


def _percent_encoded(byte: int) -> bytes:
    return b"%%%02X" % byte


class _BoundedH11Protocol(H11Protocol):
    HEADER_TIMEOUT: float = 30.0
    MAX_CONNECTIONS: int = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        # where this connection is in the request line being read: None outside one (a head's other lines,
        # a body, or bytes h11 holds for a pipelined request), else the spaces seen (1: in the target)
        self._spaces: int | None = None
        # the target's bytes so far read as UTF-8 (a character may be split between two reads); once they are
        # not, the rest of the line goes to h11 as it came, and h11 refuses it
        self._target_utf8 = codecs.getincrementaldecoder("utf-8")()
        self._target_raw = False
        self._refused: str = ""  # h11's reason for the last request it refused
        next_event = self.conn.next_event

        def next_event_kept() -> Any:
            try:
                return next_event()
            except h11.RemoteProtocolError as exc:
                self._refused = str(exc)
                raise

        self.conn.next_event = next_event_kept  # type: ignore[method-assign]

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
        if self.conn.their_state is h11.IDLE:
            data = self._target_encoded(data)
        else:
            self._spaces = None
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()  # the head is in (the body is the application's to wait for)

    def _target_encoded(self, data: bytes) -> bytes:
        """``data`` with every byte ≥ 0x80 between the request line's first two spaces as %XX, as long as the
        target's bytes are UTF-8.  Only for a request line read from its first byte: data joining bytes h11
        already holds (a request pipelined behind another) is passed on as it came, and h11 judges it
        (send_400_response)."""
        if self._spaces is None:
            if self.conn.trailing_data[0]:
                return data
            self._spaces = 0
            self._target_utf8.reset()
            self._target_raw = False
        end = data.find(b"\n")
        line, rest = (data, b"") if end < 0 else (data[:end + 1], data[end + 1:])
        if not any(b >= 0x80 for b in line):
            self._spaces += line.count(b" ")
        else:
            spaces, target, ended = self._spaces, bytearray(), end >= 0
            for byte in line:
                if byte == 0x20:
                    spaces += 1
                    ended = ended or spaces == 2
                elif spaces == 1:
                    target.append(byte)
            if not self._target_raw:
                try:
                    self._target_utf8.decode(bytes(target), final=ended)
                except UnicodeDecodeError:
                    # GBK or other bytes: left raw, h11 refuses the line (a part of it already passed on
                    # encoded is refused by the API's own check: check_query)
                    self._target_raw = True
            if not self._target_raw:
                out, at = bytearray(), self._spaces
                for byte in line:
                    if byte == 0x20:
                        at += 1
                    out += _percent_encoded(byte) if byte >= 0x80 and at == 1 else bytes((byte,))
                line = bytes(out)
            self._spaces = spaces
        if end >= 0:
            self._spaces = None  # the line is over: headers and body go to h11 untouched
        return line + rest

    def send_400_response(self, msg: str) -> None:
        if not _NON_ASCII_SHOWN.search(self._refused):
            super().send_400_response(msg)
            return
        # the API's refusal (detail, detail_en, errors), not uvicorn's plain text
        body = json.dumps({"detail": _URL_ZH, "detail_en": _URL_EN, "request_id": str(uuid.uuid4()),
                           "errors": [{"field": "request_line", "type": "request_line_invalid", "reason": _URL_EN,
                                       "reason_zh": _URL_ZH}]}, ensure_ascii=False).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()

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
