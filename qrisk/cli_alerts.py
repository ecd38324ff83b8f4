"""``qrisk alerts dispatch``: send what the alert fold put in the outbox.

``qrisk run`` (embedded) runs the dispatcher in its own process; with the Kafka log the workers
fold the alerts, the sink writes them to ClickHouse, and this command sends them — one instance per
ClickHouse database (two would send each notification twice; the delivery id lets a receiver drop
the copy, but do not count on it).

    qrisk alerts dispatch [--store URL_OR_DIR] [--policy FILE] [--once]
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    alerts = subparsers.add_parser("alerts", help="预警通知发送（发件箱）/ the alert outbox")
    sub = alerts.add_subparsers(dest="alerts_command", required=True)
    d = sub.add_parser("dispatch", help="send the outbox's notifications and record every attempt (until SIGTERM)")
    d.add_argument("--store", default=None, help="clickhouse://host:9000/db or a chdb directory (default $QRISK_STORE_URL, else $QRISK_CLICKHOUSE_URL)")
    d.add_argument("--policy", type=Path, default=None, help="policy YAML with the alerts' receivers (default $QRISK_POLICY_FILE, else the built-in policy)")
    d.add_argument("--once", action="store_true", help="one pass over the outbox, then exit (cron, tests)")
    d.set_defaults(func=cmd_dispatch)


def cmd_dispatch(args: argparse.Namespace) -> int:
    from qrisk.cli import _dispatcher
    from qrisk.runtime import default_rules
    from qrisk.settings import Settings
    from qrisk.store import migrate, open_store
    from qrisk.topics import KafkaSettings

    settings = Settings()
    target = args.store or KafkaSettings().store_url or settings.clickhouse_url
    if not target:
        print("qrisk: give --store (or QRISK_STORE_URL): the ClickHouse database the sink writes", file=sys.stderr)
        return 2
    rules = default_rules(args.policy or settings.policy_file)
    store = open_store(target)
    migrate(store)
    dispatcher = _dispatcher(store, rules, settings)
    if dispatcher is None:
        print("qrisk: the policy names no alert receivers (alerts.receivers): nothing to send", file=sys.stderr)
        store.close()
        return 2
    try:
        if args.once:
            if not dispatcher.await_lease():
                print("qrisk: another dispatcher sends the outbox (dispatcher_leases): nothing to do", file=sys.stderr)
                return 0
            made = dispatcher.run_once()
            print(f"qrisk: {sum(a.status == 'sent' for a in made)} sent, {sum(a.status == 'retry' for a in made)} to retry, "
                  f"{sum(a.status == 'failed' for a in made)} failed", file=sys.stderr)
            return 0
        stopping = {"now": False}

        def stop(signum: int, _frame: Any) -> None:
            stopping["now"] = True
            dispatcher.stop(timeout=0)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        dispatcher.start()
        while not stopping["now"]:
            signal.pause()
        dispatcher.stop()
        return 0
    finally:
        store.close()
