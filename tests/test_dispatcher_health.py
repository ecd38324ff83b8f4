"""The alert dispatcher's /healthz (``qrisk alerts dispatch --metrics-port``) answers anyone on the network
without a key: it names its problems, as the API's /healthz does for a caller without a key, never their details."""
from __future__ import annotations

import json
import socket
import urllib.request

from qrisk.cli_alerts import serve_metrics


class FailingDispatcher:
    active, holder, sender = True, "node-a:12:abcd1234", "node-a:12:abcd1234"
    sent, retried, failed = 3, 7, 1
    last_error = "OperationalError: connection refused by clickhouse.internal.example:9000 (user qrisk_sink)"

    def receivers_problem(self):
        return ("预警通知未能送达接收方 duty-webhook / no notification gets through to duty-webhook: duty-webhook: 4 failed "
                "attempt(s), last: https://hooks.internal.example/… answered 403 {\"error\": \"bad signature\"}")

    def given_up_count(self):
        return 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_health_page_names_problems_without_their_details():
    port = _free_port()
    server = serve_metrics(FailingDispatcher(), "127.0.0.1", port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            text = resp.read().decode("utf-8")
    finally:
        server.shutdown()
        server.server_close()
    health = json.loads(text)
    assert health["status"] == "degraded" and set(health["problems"]) == {"alert_dispatcher", "alert_receivers"}
    assert (health["sending"], health["sent"], health["given_up"]) == (True, 3, 2)
    for secret in ("internal.example", "qrisk_sink", "duty-webhook", "bad signature", "403", "OperationalError"):
        assert secret not in text, secret
    assert "last_error" not in health and "receivers_failing" not in health
    assert all("日志" in why for why in health["problems"].values())


def test_a_healthy_dispatcher_lists_no_problems():
    class Healthy(FailingDispatcher):
        last_error = None

        def receivers_problem(self):
            return None

    from qrisk.cli_alerts import health
    assert "problems" not in health(Healthy()) and health(Healthy())["status"] == "ok"
