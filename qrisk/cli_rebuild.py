"""``qrisk rebuild``: write the derived tables again from the event log, with the service stopped.

    qrisk rebuild [--data-dir DIR] [--policy FILE]

The derived tables (effects, judgements, sampling_items, complaints, alerts, alert_events, outbox, credit_files,
checkpoints) are emptied and written again by replaying the log under this code and this policy;
``deliveries``, dead letters, the audit log, the keys and the log itself are kept, so a notification
already sent is not sent again (outbox ids are deterministic).  Of the notifications the rebuild makes
that the old tables did not, those of steps older than ``alerts.live_within_hours`` are recorded as not
sent, and those that waited to be sent and are no longer made too (``Pipeline._rebuild_deliveries``).
``qrisk run`` does the same by itself when its fold version or
standards catalogue is not the one that derived the tables (``qrisk.pipeline.Pipeline.recover``);
this command is for the other times: after another policy (which a start only warns of), after rows
were deleted from the log, or to check that a rebuild gives the tables a clean replay gives.

On chdb the data directory admits one process: the command refuses while ``qrisk run`` holds it.
On a ClickHouse server (``QRISK_CLICKHOUSE_URL``) the writer lease refuses it while another
process writes the log.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    from qrisk.settings import Settings

    settings = Settings()
    p = subparsers.add_parser(
        "rebuild", help="重建派生表 / write the derived tables again from the event log (service stopped)",
        description="Empties the derived tables and writes them again by replaying the event log under this code and "
                    "policy, keeping deliveries, dead letters, the audit log, the keys and the log: nothing already sent "
                    "is sent again, and new notifications of steps older than alerts.live_within_hours are recorded, not "
                    "sent. Stop `qrisk run` first: one process holds a data directory. `qrisk run` rebuilds by itself after "
                    "an upgrade that changes the fold or the standards catalogue.")
    p.add_argument("--data-dir", type=Path, default=None, help=f"the stopped service's data directory (default {settings.data_dir})")
    p.add_argument("--policy", type=Path, default=settings.policy_file,
                   help="the policy `qrisk run` uses (default $QRISK_POLICY_FILE, else the built-in policy); with --kafka, the one the "
                        "workers and the dispatcher will run with: its alerts.live_within_hours decides which notifications the refold "
                        "derives again are history")
    kafka = p.add_argument_group(
        "Kafka mode", "with --kafka (or QRISK_EVENT_LOG=kafka), fold the Kafka log again after an upgrade: with every worker "
                      "and sink stopped, the workers' group goes back to the log's start (the ingress topics keep their offsets), "
                      "their snapshot topic is deleted, the sink passes over the old fold's output and the tables it filled are "
                      "emptied; then start the workers and the sink (README, \"Upgrades\")")
    kafka.add_argument("--kafka", action="store_true", help="the Kafka mode's rebuild (qrisk.kafka_rebuild)")
    kafka.add_argument("--bootstrap", default=None, help="Kafka bootstrap servers (default $QRISK_KAFKA_BOOTSTRAP)")
    kafka.add_argument("--topic-prefix", default=None, help="topic name prefix (default $QRISK_KAFKA_TOPIC_PREFIX, qrisk)")
    kafka.add_argument("--partitions", type=int, default=None, help=argparse.SUPPRESS)  # (settings_from reads it; the log's own count is used)
    kafka.add_argument("--store", default=None, help="the sink's store: clickhouse://host:9000/db or a chdb directory "
                                                     "(default $QRISK_STORE_URL, else $QRISK_DATA_DIR)")
    p.set_defaults(func=cmd_rebuild)


def cmd_rebuild(args: argparse.Namespace) -> int:
    from qrisk.cli import UserError, _say_recovered, _store_failure
    from qrisk.pipeline import RebuildRefused
    from qrisk.runtime import ReplayProgress, default_rules, open_embedded
    from qrisk.settings import Settings
    from qrisk.store import StoreError, StoreInUse, redact

    settings = Settings()
    if args.kafka or settings.event_log == "kafka":
        if args.data_dir is not None:
            raise UserError("--data-dir 用于嵌入式模式；Kafka 模式的存储用 --store（默认 $QRISK_STORE_URL，否则 $QRISK_DATA_DIR）/ --data-dir is the "
                            "embedded mode's; the Kafka mode's store is --store (default $QRISK_STORE_URL, else $QRISK_DATA_DIR)")
        return cmd_rebuild_kafka(args)
    args.data_dir = args.data_dir or settings.data_dir
    given = [o for o, v in (("--bootstrap", args.bootstrap), ("--topic-prefix", args.topic_prefix), ("--store", args.store)) if v]
    if given:
        raise UserError(f"{', '.join(given)} 只用于 Kafka 模式：加上 --kafka / {', '.join(given)} belong to the Kafka mode: add --kafka")
    rules = default_rules(args.policy)
    where = f"ClickHouse {redact(settings.clickhouse_url)}" if settings.clickhouse_url else str(args.data_dir)
    progress = ReplayProgress("rebuild", "重建")
    try:
        pipeline = open_embedded(args.data_dir, rules, progress=progress, clickhouse_url=settings.clickhouse_url,
                                 rebuild=True, create=False)
    except StoreInUse as exc:
        if settings.clickhouse_url:
            raise UserError(str(exc)) from None  # (the writer lease names the process that writes)
        raise UserError(f"数据目录 {args.data_dir} 正被 qrisk run 使用：先停止服务 / {args.data_dir} is held by `qrisk run`: "
                        "stop the service first (one process holds a data directory)") from None
    except RebuildRefused as exc:
        raise UserError(str(exc)) from None
    except StoreError as exc:
        raise UserError(_store_failure(exc, settings.clickhouse_url, args.data_dir)) from None
    finally:
        progress.close()
    try:
        _say_recovered(pipeline)
        print(f"qrisk: {where} 的派生表已重建：{pipeline.events:,} 个事件，{len(pipeline.state.files)} 家企业 / rebuilt the derived tables "
              f"of {where}: {pipeline.events:,} events, {len(pipeline.state.files)} enterprises", file=sys.stderr)
    finally:
        pipeline.close()
    return 0


def cmd_rebuild_kafka(args: argparse.Namespace) -> int:
    """The Kafka mode's rebuild (``qrisk.kafka_rebuild``): exit 0 done; 2 refused or unreachable (nothing changed,
    or the steps it says were done: running it again finishes them)."""
    import os

    from qrisk.cli import UserError
    from qrisk.cli_kafka import KafkaCliError, _fail, _kafka_errors, _kafka_failure, _named, reach, settings_from
    from qrisk.kafka_rebuild import RefoldRefused, refold
    from qrisk.runtime import default_rules
    from qrisk.store import ChdbStore, ClickHouseStore, StoreError, StoreInUse, StoreTargetError, check_target, redact

    settings = settings_from(args)
    # the policy the workers and the dispatcher will run with: which of the notifications derived again are history
    live_within_hours = default_rules(args.policy).policy.alerts.live_within_hours
    target = str(args.store or settings.store_url or settings.data_dir)
    try:
        reach(settings, _named(args))
        directory = check_target(target)
        if directory is None:
            store: Any = ClickHouseStore(target, create_database=False)  # (a mistyped database is refused, not made)
        elif not os.path.isdir(directory):
            raise UserError(f"存储目录 {directory} 不存在：--store 是否为 sink 写入的目录？/ no store directory {directory}: is --store the sink's?")
        else:
            store = ChdbStore(directory)
    except KafkaCliError as exc:
        return _fail(exc)
    except StoreInUse:
        print(f"qrisk: 存储目录 {target} 正被另一个进程使用：先停止写入它的 qrisk sink 或读取它的 qrisk run / the store directory {target} "
              "is held by another process: stop the `qrisk sink` writing it or the `qrisk run` reading it first", file=sys.stderr)
        return 2
    except (StoreError, StoreTargetError, OSError) as exc:
        print(f"qrisk: 无法打开存储 {redact(target)}：{exc} / cannot open the store {redact(target)}: {exc}", file=sys.stderr)
        return 2
    try:
        report = refold(settings, store, live_within_hours, say=lambda line: print(f"qrisk: {line}", file=sys.stderr, flush=True))
    except RefoldRefused as exc:
        print(f"qrisk: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].removeprefix(redact(target) + ": ")
        print(f"qrisk: 存储 {redact(target)} 报错，未做任何改动：{reason} / the store {redact(target)} refused, nothing changed: {reason}",
              file=sys.stderr)
        return 2
    except _kafka_errors() as exc:
        return _kafka_failure(exc, settings, _named(args))
    finally:
        store.close()
    print(f"qrisk: 完成。以新的处理策略启动 qrisk worker、qrisk sink 与通知发送：worker 将重新折叠 {report.log_records:,} 条日志记录；"
          f"追上之前，Kafka 模式的 API 按已清空的表作答 / done. Start `qrisk worker`, `qrisk sink` and the dispatcher with the new "
          f"policy: the workers fold the log's {report.log_records:,} records again; until they catch up, the Kafka mode's API "
          "answers from the emptied tables", file=sys.stderr)
    return 0
