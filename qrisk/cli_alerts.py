"""``qrisk alerts dispatch``: send what the alert fold put in the outbox.

``qrisk run`` (embedded) runs the dispatcher in its own process; with the Kafka log the workers
fold the alerts, the sink writes them to ClickHouse, and this command sends them.  Several may run
against one database: a lease (``alerts.outbox``) lets one send while the others stand by.

    qrisk alerts dispatch [--store URL_OR_DIR] [--policy FILE] [--once] [--metrics-port N]
    qrisk alerts redeliver (--since DURATION | --all) [--receiver NAME] [--dry-run] [--store URL_OR_DIR | --data-dir DIR]

``redeliver`` puts notifications the dispatcher gave up (``failed``: retried for
QRISK_OUTBOX_GIVE_UP_AFTER_SECONDS, or refused for good) back to be sent, each under its own delivery
id, so a receiver that did get it once dedups it (Idempotency-Key).  It writes to the store: a chdb data
directory held by a running ``qrisk run`` is refused (the service does it: ``POST /v1/alerts/redeliver``);
on a ClickHouse server the running dispatchers pick the re-queued rows up within a minute.

``--metrics-port`` serves ``/healthz`` (JSON: sending or standing by, counts, and which problems there
are, named only) and ``/metrics`` (Prometheus text) for the operator: no alert content, no key needed.
What a problem is (a receiver's address, the remote's answer, the store's error) is in the dispatcher's
stderr, not on the page: anyone on the compose network can read it, and the API's /healthz tells that
only to an admin or monitor key.
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    alerts = subparsers.add_parser("alerts", help="预警通知发送（发件箱）/ the alert outbox")
    sub = alerts.add_subparsers(dest="alerts_command", metavar="ACTION")
    alerts.set_defaults(func=lambda _args: alerts.print_help() or 2)
    d = sub.add_parser("dispatch", help="send the outbox's notifications and record every attempt (until SIGTERM)")
    d.add_argument("--store", default=None,
                   help="clickhouse://host:9000/db or a chdb directory (default $QRISK_STORE_URL, else $QRISK_CLICKHOUSE_URL, else $QRISK_DATA_DIR)")
    d.add_argument("--policy", type=Path, default=None, help="policy YAML with the alerts' receivers (default $QRISK_POLICY_FILE, else the built-in policy)")
    d.add_argument("--once", action="store_true", help="one pass over the outbox, then exit (cron, tests)")
    d.add_argument("--metrics-port", type=int, default=None,
                   help="serve /healthz and /metrics on this port (default $QRISK_OUTBOX_METRICS_PORT; 0: off)")
    d.add_argument("--metrics-host", default="127.0.0.1", help="address for --metrics-port (0.0.0.0 in a container)")
    d.set_defaults(func=cmd_dispatch)
    r = sub.add_parser("redeliver", help="重新发送已放弃的预警通知 / put given-up notifications back to be sent (same delivery id)")
    which = r.add_mutually_exclusive_group(required=True)
    which.add_argument("--since", type=_duration, default=None, metavar="DURATION",
                       help="those given up within this long: 90s, 30m, 12h, 7d")
    which.add_argument("--all", action="store_true", help="every given-up notification, however old")
    r.add_argument("--receiver", default=None, metavar="NAME", help="only those to this receiver (its name in the policy)")
    r.add_argument("--dry-run", action="store_true", help="list what would be re-queued; write nothing")
    where = r.add_mutually_exclusive_group()
    where.add_argument("--store", default=None,
                       help="clickhouse://host:9000/db or a chdb directory (default as for dispatch: $QRISK_STORE_URL, "
                            "else $QRISK_CLICKHOUSE_URL, else $QRISK_DATA_DIR)")
    where.add_argument("--data-dir", default=None, help="the chdb data directory of a stopped `qrisk run` (same as --store DIR)")
    r.set_defaults(func=cmd_redeliver)


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip().lower()
    try:
        seconds = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"时长无效 / not a duration: {text!r} (e.g. 90s, 30m, 12h, 7d)")
    return seconds


def _target(explicit: str | None) -> str:
    from qrisk.settings import Settings, checked_kafka_settings

    # as the README's table says: QRISK_STORE_URL, whose default is the data directory
    return explicit or checked_kafka_settings().store_url or Settings().clickhouse_url or str(Settings().data_dir)


def _target_named(explicit: str | None) -> str:
    """Which option or setting gave ``_target``'s answer (for the one line that says it cannot be opened)."""
    from qrisk.settings import Settings, checked_kafka_settings

    if explicit:
        return "--store"
    if checked_kafka_settings().store_url:
        return "QRISK_STORE_URL"
    return "QRISK_CLICKHOUSE_URL" if Settings().clickhouse_url else "QRISK_DATA_DIR"


def cmd_redeliver(args: argparse.Namespace) -> int:
    import datetime as dt

    from alerts.outbox import requeue
    from qrisk.auth import cli_actor
    from qrisk.runtime import open_target
    from qrisk.store import StoreInUse, migrate

    target = _target(args.store or args.data_dir)
    try:
        store = open_target(target, create=False)
    except StoreInUse:
        # re-queueing writes to the store, and chdb admits one process: the running service does it
        print(f"qrisk: 数据目录 {target} 正由 qrisk run 使用：请用管理员密钥请求该服务 POST /v1/alerts/redeliver?since=12h"
              f"（或 ?all=true），服务立即重新发送；或先停止服务，执行 qrisk alerts redeliver，再启动 / {target} is held by a "
              "running `qrisk run`: ask it with `POST /v1/alerts/redeliver?since=12h` (or `?all=true`, an admin key), which sends "
              "them at once; or stop it, run `qrisk alerts redeliver`, then start it again", file=sys.stderr)
        return 2
    try:
        migrate(store)
        since = None if args.all else dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=args.since)
        found = requeue(store, since=since, receiver=args.receiver, dry_run=args.dry_run, actor=cli_actor())
    finally:
        store.close()
    queued = [f for f in found if f.queued]
    verb = ("将重新排队", "would re-queue") if args.dry_run else ("已重新排队", "re-queued")
    for f in found:
        state = (verb[0] + " / " + verb[1]) if f.queued else "发件箱中已无此通知，无法重发 / no longer in the outbox: nothing to send"
        print(f"{f.delivery_id}\t{f.alert_id}\t{f.receiver}\t{f.given_up_at.astimezone(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}\t{state}\t{f.error[:200]}")
    scope = "" if args.receiver is None else f" to {args.receiver}"
    print(f"qrisk: {verb[0]} {len(queued)} 条已放弃的预警通知 / {verb[1]} {len(queued)} given-up notification(s){scope}"
          + ("" if args.dry_run or not queued else "; each is sent again under its own delivery id (Idempotency-Key), "
             "by the dispatcher at its next start (chdb) or within a minute (a ClickHouse server)"),
          file=sys.stderr)
    return 0


def cmd_dispatch(args: argparse.Namespace) -> int:
    from qrisk.cli import _dispatcher
    from qrisk.runtime import default_rules
    from qrisk.settings import Settings
    from qrisk.runtime import open_target
    from qrisk.store import StoreError, StoreInUse, migrate, unopenable

    settings = Settings()
    target = _target(args.store)
    rules = default_rules(args.policy or settings.policy_file)
    try:
        store = open_target(target, create=False)  # (a typo must not become an empty store with nothing to send)
        try:
            migrate(store)
        except BaseException:
            store.close()
            raise
    except StoreError as exc:  # the database down or refusing (a restart, a wrong port): one line, as `qrisk run`
        print(f"qrisk: {unopenable(target, exc, _target_named(args.store))}", file=sys.stderr)
        return 2
    except StoreInUse:
        print(f"qrisk: 数据目录 {target} 正由 qrisk run 使用，它已自行发送预警通知（嵌入式运行时自带发送器），无需 alerts dispatch / "
              f"{target} is held by `qrisk run`, which already sends its alerts itself (the embedded runtime dispatches on chdb); "
              "`qrisk alerts dispatch` is for the ClickHouse database of the Kafka mode, or a stopped data directory", file=sys.stderr)
        return 2
    dispatcher = _dispatcher(store, rules, settings)
    port = args.metrics_port if args.metrics_port is not None else settings.outbox_metrics_port
    port_named = "--metrics-port" if args.metrics_port is not None else "QRISK_OUTBOX_METRICS_PORT"
    if dispatcher is None:
        print("qrisk: 策略未配置任何预警接收方（alerts.receivers），无可发送；通知留在发件箱，待配置接收方（--policy / QRISK_POLICY_FILE）并重启后发送 / "
              "the policy names no alert receivers (alerts.receivers): nothing to send; notifications wait in "
              "the outbox until a policy with receivers is given (--policy / QRISK_POLICY_FILE) and this restarts", file=sys.stderr)
        if args.once:
            store.close()
            return 2
        # a service (compose, systemd) that exited here would be restarted forever: it stays up, idle, and says so
        try:
            if port:
                serve_metrics(None, args.metrics_host, port, port_named)
            _wait_for_stop()
            return 0
        except MetricsUnavailable as exc:
            print(f"qrisk: {exc}", file=sys.stderr)
            return 2
        finally:
            store.close()
    try:
        if args.once:
            if not dispatcher.await_lease():
                print("qrisk: 另一个发送器正在发送发件箱（dispatcher_leases），本次无事可做 / another dispatcher sends the outbox "
                      "(dispatcher_leases): nothing to do", file=sys.stderr)
                return 0
            made = dispatcher.run_once()
            sent, retry, failed = (sum(a.status == s for a in made) for s in ("sent", "retry", "failed"))
            print(f"qrisk: 已发送 {sent} 条，待重试 {retry} 条，失败 {failed} 条 / {sent} sent, {retry} to retry, {failed} failed",
                  file=sys.stderr)
            return 0
        stopping = {"now": False}

        def stop(signum: int, _frame: Any) -> None:
            stopping["now"] = True
            dispatcher.stop(timeout=0)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if port:
            try:
                serve_metrics(dispatcher, args.metrics_host, port, port_named)
            except MetricsUnavailable as exc:  # before anything is sent
                print(f"qrisk: {exc}", file=sys.stderr)
                return 2
        dispatcher.start()
        while not stopping["now"]:
            signal.pause()
        dispatcher.stop()
        return 0
    finally:
        store.close()


def _wait_for_stop() -> None:
    stopping = {"now": False}

    def stop(signum: int, _frame: Any) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping["now"]:
        signal.pause()


_DETAILS = "（详情见该发送进程的日志） / details: the dispatcher's log (stderr)"
PROBLEM_SUMMARIES = {
    "alert_dispatcher": "预警通知发送失败，将自动重试" + _DETAILS,
    "alert_receivers": "预警通知接收端连续发送失败，或有已放弃的通知待重新发送（qrisk alerts redeliver）" + _DETAILS,
}
"""What the dispatcher's /healthz says of each problem: that it is there, under the names the API's
/healthz gives them, not what it is (a failing receiver's error names its host and quotes its answer)."""


def health(dispatcher: Any) -> dict[str, Any]:
    """The dispatcher's /healthz document (the page has no key to tell an operator from anyone else)."""
    d = dispatcher
    problems = {}
    if d.last_error is not None:
        problems["alert_dispatcher"] = PROBLEM_SUMMARIES["alert_dispatcher"]
    if d.receivers_problem() is not None:
        problems["alert_receivers"] = PROBLEM_SUMMARIES["alert_receivers"]
    return {"status": "degraded" if problems else "ok", "sending": d.active, "holder": d.holder or None,
            "sender": d.sender or None, "sent": d.sent, "retried": d.retried, "failed": d.failed,
            "given_up": d.given_up_count(), **({"problems": problems} if problems else {})}


DISPATCHER_METRICS = (
    ("qrisk_alert_deliveries_sent_total", "counter", "Alert notifications sent by this process."),
    ("qrisk_alert_deliveries_retried_total", "counter", "Alert notification attempts that failed and wait for a retry."),
    ("qrisk_alert_deliveries_failed_total", "counter", "Alert notifications given up by this process."),
    ("qrisk_alert_dispatcher_active", "gauge", "1 while this process holds the outbox lease and sends."),
    ("qrisk_alert_dispatcher_pass_failing", "gauge", "1 while the last pass over the outbox failed (the store away)."),
    ("qrisk_alert_deliveries_given_up", "gauge",
     "Alert notifications given up and not re-sent (qrisk alerts redeliver), from the store."),
    ("qrisk_alert_dispatcher_receivers", "gauge", "Alert receivers the policy names (0: nothing is sent)."),
)
"""The dispatcher's /metrics, with the HELP and TYPE a Prometheus parser needs to read each family."""


class MetricsUnavailable(Exception):
    """The dispatcher's pages cannot be served where asked (one line, Chinese and English)."""


def dispatcher_metrics(dispatcher: Any) -> bytes:
    from qrisk.pages import prometheus_text

    d = dispatcher
    if d is None:
        values = {"qrisk_alert_dispatcher_active": 0, "qrisk_alert_dispatcher_receivers": 0}
    else:
        values = {"qrisk_alert_deliveries_sent_total": d.sent, "qrisk_alert_deliveries_retried_total": d.retried,
                  "qrisk_alert_deliveries_failed_total": d.failed, "qrisk_alert_dispatcher_active": int(d.active),
                  "qrisk_alert_dispatcher_pass_failing": int(d.last_error is not None),
                  # from the deliveries table: a restart does not make it 0 while they wait for redeliver
                  "qrisk_alert_deliveries_given_up": d.given_up_count()}
    return prometheus_text([(name, kind, text, values[name]) for name, kind, text in DISPATCHER_METRICS if name in values])


def serve_metrics(dispatcher: Any, host: str, port: int, named: str = "QRISK_OUTBOX_METRICS_PORT") -> Any:
    """``/healthz`` and ``/metrics`` of a dispatcher, from a daemon thread (stdlib: no framework for two pages).
    ``dispatcher`` None: the policy names no receivers, and the health page says so.  ``MetricsUnavailable``
    when the address cannot be bound, naming the setting (``named``) that gave the port."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from qrisk.threads import NamedThread

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            d = dispatcher
            if d is None and self.path in ("/healthz", "/metrics"):
                idle = self.path == "/healthz"
                body = (json.dumps({"status": "idle", "reason": "the policy names no alert receivers", "sending": False}).encode("utf-8")
                        if idle else dispatcher_metrics(None))
                kind = "application/json" if idle else "text/plain; version=0.0.4"
            elif self.path == "/healthz":
                body = json.dumps(health(d), ensure_ascii=False).encode("utf-8")
                kind = "application/json"
            elif self.path == "/metrics":
                body = dispatcher_metrics(d)
                kind = "text/plain; version=0.0.4"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:  # the port in use, an address not of this host: before anything is sent
        raise MetricsUnavailable(f"无法在 {host}:{port} 提供发送器健康与指标页面（{named}） / cannot serve the dispatcher's health and "
                                 f"metrics on {host}:{port} ({named}): {exc.strerror or exc}") from None
    NamedThread(target=server.serve_forever, name="qrisk-outbox-metrics", daemon=True).start()
    print(f"qrisk: 发送器健康与指标 / dispatcher health and metrics on http://{host}:{port}/healthz, /metrics", file=sys.stderr)
    return server
