"""Commands of the distributed runtime: ``qrisk topics|produce|worker|sink|tick``.

    qrisk topics create|list [--bootstrap HOST:PORT] [--partitions N] [--markdown]
    qrisk produce FILE --source lab|complaint|inspection|bureau|import
    qrisk worker [--web-port N] [--loglevel info]
    qrisk sink [--store URL_OR_DIR]
    qrisk tick [--at ISO-8601] [--every SECONDS]

Every option defaults to its ``QRISK_`` setting (``qrisk.topics.KafkaSettings``):
QRISK_KAFKA_BOOTSTRAP, QRISK_KAFKA_PARTITIONS, QRISK_KAFKA_TOPIC_PREFIX, QRISK_STORE_URL, ….
Wired into ``qrisk`` by ``cli_kafka.register(sub)`` in ``qrisk/cli.py``.

``register`` also gives ``qrisk run`` its distributed mode: with ``QRISK_EVENT_LOG=kafka`` the
same HTTP API publishes to the Kafka log and reads from the ClickHouse server
(``qrisk.kafka_api``) instead of opening the embedded chdb log.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from qrisk.topics import INGRESS_SOURCES, KafkaSettings, TopicMismatch

EXIT_USAGE = 2


class KafkaCliError(Exception):
    """A usage or connection problem; the message is shown as is (exit 2)."""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap", default=None, help="Kafka bootstrap servers, host:port[,…] (default $QRISK_KAFKA_BOOTSTRAP)")
    p.add_argument("--topic-prefix", default=None, help="topic name prefix (default $QRISK_KAFKA_TOPIC_PREFIX, qrisk)")
    p.add_argument("--partitions", type=int, default=None, help="partitions of the log and its companions (default $QRISK_KAFKA_PARTITIONS, 4)")


def settings_from(args: argparse.Namespace) -> KafkaSettings:
    """The Kafka settings with the command's options over them, every number checked (a bad one is
    a ValidationError that ``qrisk`` prints as ``invalid setting: QRISK_…``)."""
    from qrisk.settings import checked_kafka_settings

    update: dict[str, Any] = {}
    for arg, name in (("bootstrap", "kafka_bootstrap"), ("topic_prefix", "kafka_topic_prefix"), ("partitions", "kafka_partitions"),
                      ("web_port", "worker_web_port"), ("store", "store_url")):
        value = getattr(args, arg, None)
        if value is not None:
            update[name] = value
    return checked_kafka_settings(**update)


PROBE_TIMEOUT = 3.0


def _named(args: argparse.Namespace) -> str:
    return "--bootstrap" if getattr(args, "bootstrap", None) else "QRISK_KAFKA_BOOTSTRAP"


def unreachable(settings: KafkaSettings, cause: Any, name: str = "QRISK_KAFKA_BOOTSTRAP") -> str:
    """One line, Chinese and English: which brokers, by which setting, and why not."""
    where = settings.kafka_bootstrap
    return (f"无法连接 Kafka {where}（{name}）：{cause} / cannot reach Kafka at {where} ({name}): {cause}; "
            f"is the broker up, and is {name} right?")


def reach(settings: KafkaSettings, name: str = "QRISK_KAFKA_BOOTSTRAP") -> None:
    """Fail in seconds, naming the setting, when no bootstrap server takes a TCP connection: the Kafka
    clients wait 30 s and then raise a page of traceback that names neither."""
    import socket

    causes = []
    servers = settings.bootstrap_servers() or [""]
    for server in servers:
        host, _, port = server.rpartition(":")
        host = host.strip("[]")
        try:
            with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT):
                return
        except ValueError:
            causes.append(f"{server!r} is not host:port")
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            causes.append(why if len(servers) == 1 else f"{server}: {why}")
    raise KafkaCliError(unreachable(settings, "; ".join(causes), name))


def _kafka_failure(exc: BaseException, settings: KafkaSettings, name: str = "QRISK_KAFKA_BOOTSTRAP") -> int:
    """A Kafka client's error as one line: "cannot reach", naming the setting, only when no broker
    answered (a connection failure, a timeout); any other (a message too large, a topic missing,
    no permission) is the broker's answer, said as such: a broker that refused a record is up."""
    if isinstance(exc, _connection_errors()):
        print(f"qrisk: {unreachable(settings, f'{type(exc).__name__}: {exc}', name)}", file=sys.stderr)
    else:
        print(f"qrisk: Kafka {settings.kafka_bootstrap} 拒绝了请求：{type(exc).__name__}: {exc} / "
              f"Kafka at {settings.kafka_bootstrap} refused: {type(exc).__name__}: {exc}", file=sys.stderr)
    return EXIT_USAGE


def _connection_errors() -> tuple[type[BaseException], ...]:
    from kafka import errors

    return tuple(getattr(errors, n) for n in ("NoBrokersAvailable", "KafkaConnectionError", "KafkaTimeoutError", "NodeNotReadyError",
                                              "RequestTimedOutError", "BrokerNotAvailableError") if hasattr(errors, n))


def _kafka_errors() -> tuple[type[BaseException], ...]:
    from kafka.errors import KafkaError

    return (KafkaError,)


def register(subparsers: Any) -> None:
    topics = subparsers.add_parser("topics", help="Kafka topics of the distributed runtime: create, list")
    topics_sub = topics.add_subparsers(dest="topics_command", metavar="ACTION")
    topics.set_defaults(func=lambda _a: topics.print_help() or EXIT_USAGE)
    create = topics_sub.add_parser("create", help="create the declared topics (partitions, retention, compaction); check existing ones")
    _common(create)
    create.set_defaults(func=cmd_topics_create)
    listing = topics_sub.add_parser("list", help="the declared topics and what the broker has")
    _common(listing)
    listing.add_argument("--markdown", action="store_true", help="print the declaration as a Markdown table (no broker needed)")
    listing.set_defaults(func=cmd_topics_list)

    produce = subparsers.add_parser("produce", help="send a JSONL/CSV file of events to a Kafka ingress topic")
    produce.add_argument("file", type=Path)
    produce.add_argument("--source", required=True, choices=INGRESS_SOURCES, help="which ingress topic (qrisk.ingress.SOURCE)")
    _common(produce)
    produce.set_defaults(func=cmd_produce)

    worker = subparsers.add_parser("worker", help="run a Faust worker: validate ingress, fold the log, publish effects")
    _common(worker)
    worker.add_argument("--web-port", type=int, default=None, help="Faust's web server port (health: /; default $QRISK_WORKER_WEB_PORT, 6066; 0: off), "
                        "on $QRISK_WORKER_WEB_HOST (127.0.0.1)")
    worker.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    worker.set_defaults(func=cmd_worker)

    sink = subparsers.add_parser("sink", help="write the log, effects, credit files and dead letters from Kafka to ClickHouse")
    _common(sink)
    sink.add_argument("--store", default=None, help="clickhouse://host:9000/db or a chdb directory (default $QRISK_STORE_URL, else $QRISK_DATA_DIR)")
    sink.add_argument("--idle-exit", type=float, default=None, help=argparse.SUPPRESS)  # tests and benchmarks: stop after this many idle seconds
    sink.set_defaults(func=cmd_sink)

    tick = subparsers.add_parser("tick", help="publish a clock.tick to every partition of the log (overdue checks)")
    _common(tick)
    tick.add_argument("--at", default=None, help="the tick's time, ISO-8601 with offset (default: now)")
    tick.add_argument("--every", type=float, default=None, help="keep ticking every SECONDS (a scheduler service)")
    tick.set_defaults(func=cmd_tick)


def _fail(exc: BaseException) -> int:
    # (our own one-line errors are shown as they are; a library's with its type, which says what failed)
    shown = str(exc) if isinstance(exc, (KafkaCliError, TopicMismatch)) else f"{type(exc).__name__}: {exc}"
    print(f"qrisk: {shown}", file=sys.stderr)
    return EXIT_USAGE



def cmd_topics_create(args: argparse.Namespace) -> int:
    from qrisk.topics import TopicMismatch, create_topics

    settings = settings_from(args)
    try:
        reach(settings, _named(args))
        report = create_topics(settings)
    except (TopicMismatch, KafkaCliError) as exc:
        return _fail(exc)
    except _kafka_errors() as exc:
        return _kafka_failure(exc, settings, _named(args))
    except Exception as exc:  # noqa: BLE001 - broker unreachable and the like
        return _fail(exc)
    for line in report:
        print(f"{line['topic']:40} {line['partitions']:>3} partitions  {line['retention']:>10}  {line['action']}")
    return 0


def cmd_topics_list(args: argparse.Namespace) -> int:
    from qrisk.topics import describe_topics

    settings = settings_from(args)
    if args.markdown:
        print(settings.topics().markdown())
        return 0
    try:
        reach(settings, _named(args))
        rows = describe_topics(settings)
    except KafkaCliError as exc:
        return _fail(exc)
    except _kafka_errors() as exc:
        return _kafka_failure(exc, settings, _named(args))
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)
    for r in rows:
        have = "missing" if r["partitions"] is None else f"{r['partitions']} partitions"
        print(f"{r['topic']:40} {have:>15}  {r['retention']:>10}  {r['created_by']}")
    if "QRISK_WORKER_APP_ID" not in os.environ:
        # the changelog is named by the workers' app id, which lives in their environment, not on the broker
        app_id = settings.worker_app_id
        print(f"qrisk: 变更日志主题按默认 worker app id「{app_id}」命名；若 worker 设置了 QRISK_WORKER_APP_ID，请在此也设置 / "
              f"the changelog's name assumes the default worker app id {app_id!r}: set QRISK_WORKER_APP_ID here as the workers have it",
              file=sys.stderr)
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    from qrisk.kafka_log import produce_file
    from qrisk.topics import check_partitions

    if not args.file.exists():
        return _fail(FileNotFoundError(f"{args.file}: no such file"))
    settings = settings_from(args)
    from qrisk.kafka_log import PublishError

    try:
        reach(settings, _named(args))
        # the ingress topic and the dead letters must exist: a producer waits 60 s for a missing one's metadata
        topics = settings.topics()
        check_partitions(settings, [topics.ingress_for(args.source).name, topics.dead_letters.name])
        summary = produce_file(args.file, args.source, settings)
    except (KafkaCliError, TopicMismatch) as exc:
        return _fail(exc)
    except _kafka_errors() as exc:
        return _kafka_failure(exc, settings, _named(args))
    except (ValueError, PublishError) as exc:
        return _fail(exc)
    print(json.dumps(summary, ensure_ascii=False))
    return 0 if summary["dead_lettered"] == 0 else 1


def cmd_worker(args: argparse.Namespace) -> int:
    from qrisk.worker import run_worker

    settings = settings_from(args)
    try:
        reach(settings, _named(args))
        return run_worker(settings, loglevel=args.loglevel)
    except KafkaCliError as exc:
        return _fail(exc)
    except _kafka_errors() as exc:
        return _kafka_failure(exc, settings, _named(args))


def cmd_sink(args: argparse.Namespace) -> int:
    from qrisk.sink import run_sink

    from qrisk.runtime import check_data_dir
    from qrisk.store import StoreError, check_target, unopenable

    settings = settings_from(args)
    linger = os.environ.get("QRISK_SINK_LINGER_SECONDS", "0.5")  # (read by qrisk.sink itself, not a KafkaSettings field)
    try:
        ok = float(linger) >= 0
    except ValueError:
        ok = False
    if not ok:
        return _fail(KafkaCliError(f"设置 QRISK_SINK_LINGER_SECONDS 的值无效 / invalid setting: QRISK_SINK_LINGER_SECONDS: "
                                   f"must be a number of seconds, not negative ({linger!r})"))
    target = settings.store_url or settings.data_dir
    directory = check_target(target)  # a mistyped URL is refused before anything else
    try:
        # the broker first: a sink that cannot read has nothing to write, and must not make an empty store
        reach(settings, _named(args))
        if directory is not None:
            check_data_dir(directory)
        return run_sink(target, settings, idle_exit_s=args.idle_exit)
    except KafkaCliError as exc:
        return _fail(exc)
    except StoreError as exc:  # the database down or refusing at start (a restart, a wrong port): one line, as `qrisk run`
        named = "--store" if args.store else ("QRISK_STORE_URL" if settings.store_url else "QRISK_DATA_DIR")
        print(f"qrisk sink: {unopenable(target, exc, named)}", file=sys.stderr)
        return EXIT_USAGE
    except _kafka_errors() as exc:
        return _kafka_failure(exc, settings, _named(args))


def cmd_run_kafka(args: argparse.Namespace) -> int:
    """``qrisk run`` with ``QRISK_EVENT_LOG=kafka``: the HTTP API over the Kafka log and the ClickHouse server."""
    import uvicorn

    from qrisk.api import create_app
    from qrisk.auth import KeyStore
    from qrisk.cli import UserError, _first_start, server_http_options, server_log_config
    from qrisk.kafka_api import open_distributed
    from qrisk.runtime import default_rules
    from qrisk.settings import Settings

    from qrisk.settings import checked_kafka_settings
    from qrisk.store import StoreError, unopenable

    settings = Settings()
    kafka = checked_kafka_settings()
    if (args.tls_certfile is None) != (args.tls_keyfile is None):
        raise UserError("HTTPS needs both --tls-certfile and --tls-keyfile (QRISK_TLS_CERTFILE, QRISK_TLS_KEYFILE)")
    for path in (args.tls_certfile, args.tls_keyfile):
        if path is not None and not path.is_file():
            raise UserError(f"{path}: no such file")
    target = kafka.store_url or settings.clickhouse_url
    if not target or not target.startswith(("clickhouse://", "clickhouses://")):
        # reads come from what the sink writes; a chdb folder here would be a second, empty store
        raise UserError("QRISK_EVENT_LOG=kafka 从 sink 写入的 ClickHouse 服务器读取：请设置 QRISK_STORE_URL=clickhouse://… / "
                        "QRISK_EVENT_LOG=kafka reads from the ClickHouse server the sink writes: set QRISK_STORE_URL=clickhouse://…")
    keys = KeyStore(args.keys_file or args.data_dir / "keys.json")
    keys.load()  # a damaged file is named now, not as a traceback on the first request
    rules = default_rules(args.policy)
    try:
        reach(kafka)
        backend = open_distributed(kafka, target, rules)
        backend.log.log_partitions()  # the log must exist (`qrisk topics create`): fail now, not on the first POST
    except (KafkaCliError, TopicMismatch) as exc:
        return _fail(exc)
    except _kafka_errors() as exc:
        return _kafka_failure(exc, kafka)
    except StoreError as exc:
        print(f"qrisk: {unopenable(target, exc, 'QRISK_STORE_URL')}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - anything else unreachable: say what, exit 2
        return _fail(exc)
    # a first key only once the backend opened, and only for an empty log (the sink's copy of it)
    try:
        logged = int(backend.store.query("SELECT count() AS n FROM events", {})[0]["n"] or 0)
    except Exception:  # noqa: BLE001 - a table the sink has not made yet: nothing logged
        logged = 0
    _first_start(keys, logged, make_dir=args.keys_file is None)
    scheme = "https" if args.tls_certfile else "http"
    print(f"qrisk: event log kafka {kafka.kafka_bootstrap} ({kafka.topics().events.name}); reads from {getattr(backend.store, 'url', target)}; "
          f"serving on {scheme}://{args.host}:{args.port}", file=sys.stderr)
    app = create_app(backend, settings.max_body_bytes, settings.max_batch, keys=keys)
    from qrisk.kafka_api import answer_too_large

    answer_too_large(app, backend)  # an event too large for the log: 413 and a dead letter, not a 500
    tls = {"ssl_certfile": str(args.tls_certfile), "ssl_keyfile": str(args.tls_keyfile)} if args.tls_certfile else {}
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", log_config=server_log_config(), **server_http_options(settings), **tls)
    return 0


def cmd_tick(args: argparse.Namespace) -> int:
    from qrisk.kafka_log import KafkaLog, PublishError
    from qrisk.topics import check_partitions

    settings = settings_from(args)
    at = None
    if args.at:
        try:
            at = dt.datetime.fromisoformat(args.at)
        except ValueError as exc:
            return _fail(exc)
        if at.tzinfo is None:
            return _fail(ValueError("--at needs a UTC offset, e.g. 2026-03-01T00:00:00+08:00"))
    if args.every is not None and not args.every > 0:
        return _fail(ValueError(f"--every 必须大于 0 / --every must be more than 0 seconds, got {args.every}"))
    try:
        reach(settings, _named(args))
        check_partitions(settings)  # the log must exist: a producer waits 60 s for a missing topic, then a traceback
        with KafkaLog(settings) as log:
            while True:
                try:
                    out = log.tick(at)
                    print(json.dumps({"event_id": out.event_id, "partitions": len(log.log_partitions())}), flush=True)
                except (PublishError, *_kafka_errors()) as exc:
                    print(f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ} qrisk tick: 时钟事件未发送：{exc} / "
                          f"clock.tick not sent: {exc}" + ("" if args.every is None else f"; trying again in {args.every:g} s"),
                          file=sys.stderr, flush=True)
                    if args.every is None:
                        return EXIT_USAGE
                    # (a scheduler service: a broker blip must not end it, the next tick carries the clock on)
                else:
                    if args.every is None:
                        return 0
                at = None
                time.sleep(args.every)
    except (KafkaCliError, TopicMismatch) as exc:
        return _fail(exc)
    except _kafka_errors() as exc:
        return _kafka_failure(exc, settings, _named(args))


def main(argv: list[str] | None = None) -> int:
    """``python -m qrisk.cli_kafka …``: the same commands before they are wired into ``qrisk``."""
    parser = argparse.ArgumentParser(prog="qrisk")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    register(sub)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
