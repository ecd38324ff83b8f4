"""Two read-only pages (``/healthz``, ``/metrics``) of a process that has no web framework of its
own (the Kafka sink): stdlib ``http.server`` on a daemon thread, counts only, no key needed."""
from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from qrisk.threads import NamedThread

Metric = tuple[str, str, str, float]
"""(name, type, help, value): one Prometheus sample without labels."""


def _number(value: float) -> str:
    """Exact: a counter past a million written as 1.23457e+06 would move in steps of a hundred."""
    if isinstance(value, bool) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def prometheus_text(metrics: list[Metric], labelled: list[tuple[str, str, str, list[tuple[dict[str, str], float]]]] = ()) -> bytes:
    """The exposition format, with HELP and TYPE for every metric (an operator reads what each means)."""
    lines: list[str] = []
    for name, kind, help_text, value in metrics:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {_number(value)}"]
    for name, kind, help_text, samples in labelled:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{text}}} {_number(value)}")
    return ("\n".join(lines) + "\n").encode("ascii")


def serve_pages(host: str, port: int, health: Callable[[], dict[str, Any]], metrics: Callable[[], bytes], name: str) -> ThreadingHTTPServer:
    """Serve ``health()`` as JSON at /healthz and ``metrics()`` at /metrics until the process ends."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path == "/healthz":
                body, kind = json.dumps(health(), ensure_ascii=False).encode("utf-8"), "application/json"
            elif self.path == "/metrics":
                body, kind = metrics(), "text/plain; version=0.0.4"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass  # probes every few seconds would drown the log

    server = ThreadingHTTPServer((host, port), Handler)
    NamedThread(target=server.serve_forever, name=f"qrisk-{name}-metrics", daemon=True).start()
    print(f"qrisk: {name} health and metrics on http://{host}:{server.server_address[1]}/healthz, /metrics", file=sys.stderr, flush=True)
    return server
