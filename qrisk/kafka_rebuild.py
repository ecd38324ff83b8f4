"""``qrisk rebuild --kafka``: fold the Kafka log again after an upgrade, in one command.

In the Kafka mode the fold's state lives in the workers' changelog snapshots, each naming the
``FOLD_VERSION`` that wrote it.  After an upgrade that changes what the fold keeps, those snapshots
carry on with the old results and may count what comes after them wrongly.  The remedy is to fold
the log (kept for good) again from its first record.  This was five steps by hand (README,
"Upgrades"); one of them done wrong — the ingress offsets reset with the log's, or the sink left to
write the old fold's unread effects after the tables were emptied — duplicates events or leaves
rows the new fold does not make.

Before anything is changed, everything is checked that says these settings name this deployment:
the log has records; the workers' group has committed on it and the sink's group on its topics (a
misspelt group id is a group that never ran); the snapshot topic exists (unless a run cut short
deleted it, its workers already back at the log's start); the store holds the log's archive (a
wrong ``--store`` would be emptied, or written over); both groups are idle.  Then, each step
checking again that no worker or sink has joined:

1. the refold is recorded in the store (``refolds``): a notification the workers derive again for a
   step older than ``alerts.live_within_hours`` before now is history, which the dispatcher records
   as not sent instead of sending it to a receiver added since (``alerts.outbox``);
2. the workers' group goes back to the log's first offset — on the log only: the ingress topics
   keep their offsets, or every accepted message would enter the log a second time;
3. the sink's group moves past what the old fold published (effects, credit files);
4. the workers' snapshot topic is deleted (Faust makes it again at the next start);
5. the ClickHouse tables the sink fills from the fold are emptied (``FOLD_TABLES``); the archive of
   the log (``events``), ``dead_letters`` and ``deliveries`` are kept.

Each step can be done again: a run that stopped half way says which steps it did, and is finished
by running it again.  Then start the workers (with the new policy, and the dispatcher with it) and
the sink: they fold the log again.
"""
from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from qrisk.topics import KafkaSettings, _name, admin_client

FOLD_TABLES = ("stream_effects", "judgements", "sampling_items", "complaints", "alerts", "alert_events", "outbox", "credit_files")
"""What the sink writes from the fold's output (effects and credit files), emptied for the fold to
write again.  Not ``events`` (the log's archive), ``dead_letters`` (what arrived and was refused; a
fold failure's letter is keyed by its event and rewritten in place), ``deliveries`` (what receivers
were sent), the audit log nor the keys."""

IDLE_STATES = ("Empty", "Dead")
"""Consumer-group states with no member: only then do committed offsets stay as set."""

STEPS = 5


class RefoldRefused(Exception):
    """Something that must hold does not (one line, Chinese and English); ``done`` steps were made."""

    def __init__(self, message: str, done: int = 0):
        if done:
            message += (f"。已完成第 1–{done} 步（共 {STEPS} 步），其余未做：排除问题后再次运行本命令完成 / steps 1–{done} of {STEPS} "
                        "were done, the rest not: run this command again to finish")
        super().__init__(message)
        self.done = done


@dataclass
class RefoldReport:
    log_partitions: int = 0
    log_records: int = 0  # what the workers will fold again
    sink_skipped: int = 0  # messages of the old fold the sink had not written, now passed over
    changelog_deleted: bool = False
    history_before: dt.datetime | None = None
    tables: dict[str, int] = field(default_factory=dict)  # rows emptied, per table

    def as_dict(self) -> dict[str, Any]:
        return {"log_partitions": self.log_partitions, "log_records": self.log_records, "sink_skipped": self.sink_skipped,
                "changelog_deleted": self.changelog_deleted, "tables": dict(self.tables),
                "history_before": self.history_before.isoformat() if self.history_before else None}


def refold(settings: KafkaSettings, store: Any, live_within_hours: int, say: Callable[[str], None] = lambda _line: None,
           wait_s: float = 60.0, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
           pause: Callable[[int], None] = lambda _step: None) -> RefoldReport:
    """Check, then do the five steps (module docstring); ``say`` hears each as it is done.
    ``pause(n)``: called before step n (tests: a worker joining between two steps)."""
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec

    topics = settings.topics()
    worker, sink = settings.worker_app_id, settings.sink_group
    report = RefoldReport()
    done = 0
    admin = admin_client(settings)
    try:
        # -- checks: nothing is changed unless all hold
        have = {r["name"] for r in store.query("SELECT name FROM system.tables WHERE database = currentDatabase()")}
        missing = [t for t in (*FOLD_TABLES, "events", "refolds") if t not in have]
        if missing:
            raise RefoldRefused(f"存储中缺少表 {', '.join(missing)}：--store 是否为 sink 写入的库？（新版本的 qrisk sink 启动时会迁移它）/ "
                                f"the store lacks {', '.join(missing)}: is --store the sink's? (a `qrisk sink` of this version "
                                "migrates it at start)")
        present = set(admin.list_topics())
        if topics.events.name not in present:
            raise RefoldRefused(f"Kafka 中没有事件日志主题 {topics.events.name}：检查 QRISK_KAFKA_TOPIC_PREFIX / "
                                f"no event log topic {topics.events.name} on the broker: check QRISK_KAFKA_TOPIC_PREFIX")
        partitions = _partitions(admin, [topics.events.name, topics.effects.name, topics.credit_files.name])
        log_tps = [TopicPartition(topics.events.name, p) for p in partitions[topics.events.name]]
        starts = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in log_tps})
        ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in log_tps})
        report.log_partitions = len(log_tps)
        report.log_records = sum(_offset(ends[tp]) - _offset(starts[tp]) for tp in log_tps)
        if report.log_records == 0:
            raise RefoldRefused(f"事件日志 {topics.events.name} 没有记录，无可重新折叠：检查 QRISK_KAFKA_TOPIC_PREFIX / the event log "
                                f"{topics.events.name} holds no record, nothing to fold again: check QRISK_KAFKA_TOPIC_PREFIX")
        committed = admin.list_group_offsets({worker: log_tps}).get(worker, {})
        at = {tp: meta.offset for tp, meta in committed.items() if meta is not None and meta.offset >= 0}
        if not at:
            raise RefoldRefused(f"worker 消费组 {worker} 在日志 {topics.events.name} 上没有已提交的位置：QRISK_WORKER_APP_ID 是否正确？"
                                f" / the workers' group {worker} has committed nothing on {topics.events.name}: is QRISK_WORKER_APP_ID right?")
        outputs = [TopicPartition(t, p) for t in (topics.effects.name, topics.credit_files.name) for p in partitions.get(t, ())]
        sink_at = admin.list_group_offsets({sink: outputs}).get(sink, {}) if outputs else {}
        if not any(meta is not None and meta.offset >= 0 for meta in sink_at.values()):
            raise RefoldRefused(f"sink 消费组 {sink} 在 {topics.effects.name} 上没有已提交的位置：QRISK_SINK_GROUP 是否正确？ / the sink's "
                                f"group {sink} has committed nothing on {topics.effects.name}: is QRISK_SINK_GROUP right?")
        changelog = topics.changelog.name
        at_start = all(at.get(tp) == _offset(starts[tp]) for tp in log_tps)
        if changelog not in present and not at_start:
            raise RefoldRefused(f"没有 worker 快照主题 {changelog}，而 worker 消费组不在日志起点：QRISK_WORKER_APP_ID 是否正确？/ no worker "
                                f"snapshot topic {changelog} while the workers' group is not at the log's start: is QRISK_WORKER_APP_ID right?")
        archived = int(store.query("SELECT count() AS n FROM events")[0]["n"])
        if archived == 0:
            raise RefoldRefused(f"存储中没有事件日志的归档（events 表为空），而日志有 {report.log_records:,} 条记录：--store 是否为 sink 写入的库？/ "
                                f"the store holds no archive of the log (events is empty) while the log has {report.log_records:,} "
                                "records: is --store the sink's?")
        _idle_or_refuse(admin, settings, done)

        # -- 1. the refold on record: a notification derived again for a step that is history is not sent
        pause(1)
        now = clock()
        report.history_before = now - dt.timedelta(hours=live_within_hours)
        store.insert("refolds", [{"refolded_at": now.replace(microsecond=0, tzinfo=None), "refolded_ms": now.microsecond // 1000,
                                  "history_before": report.history_before.replace(microsecond=0, tzinfo=None),
                                  "live_within_hours": live_within_hours, "log_records": report.log_records,
                                  "by": f"{os.uname().nodename}:{os.getpid()}"}])
        done = 1
        say(f"1/{STEPS} 已记录重新折叠：{report.history_before:%Y-%m-%d %H:%M} UTC（{live_within_hours} 小时前）之前的步骤重新产生的通知属历史数据，"
            f"不发送 / the refold is on record: notifications derived again for steps before {report.history_before:%Y-%m-%d %H:%M} UTC "
            f"({live_within_hours} h ago) are history, not sent")

        # -- 2. the workers back to the log's first offset (the log only)
        pause(2)
        _idle_or_refuse(admin, settings, done)
        _check(admin.reset_group_offsets(worker, {tp: OffsetSpec.EARLIEST for tp in log_tps}), "worker", done)
        done = 2
        say(f"2/{STEPS} worker 消费组 {worker} 回到日志 {topics.events.name} 起点：{report.log_partitions} 个分区、"
            f"{report.log_records:,} 条记录将重新折叠（ingress 主题的位置不变）/ the workers' group {worker} is back "
            f"at the start of {topics.events.name}: {report.log_records:,} records in {report.log_partitions} partitions to fold "
            f"again (the ingress topics keep their offsets)")

        # -- 3. the sink past the old fold's output
        pause(3)
        _idle_or_refuse(admin, settings, done)
        out_starts = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in outputs})
        out_ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in outputs})
        for tp in outputs:
            meta = sink_at.get(tp)
            was = meta.offset if meta is not None and meta.offset >= 0 else _offset(out_starts[tp])
            report.sink_skipped += max(0, _offset(out_ends[tp]) - was)
        _check(admin.reset_group_offsets(sink, {tp: OffsetSpec.LATEST for tp in outputs}), "sink", done)
        done = 3
        say(f"3/{STEPS} sink 消费组 {sink} 跳过旧折叠尚未写入的 {report.sink_skipped:,} 条消息 / the sink's group "
            f"{sink} passes over {report.sink_skipped:,} messages of the old fold not yet written")

        # -- 4. the changelog: the snapshots of the old fold
        pause(4)
        _idle_or_refuse(admin, settings, done)
        if changelog in set(admin.list_topics()):
            admin.delete_topics([changelog])
            report.changelog_deleted = True
            deadline = time.monotonic() + wait_s
            while changelog in set(admin.list_topics()):
                if time.monotonic() > deadline:
                    raise RefoldRefused(f"主题 {changelog} 在 {wait_s:.0f} 秒内未删除完毕 / {changelog} was not gone within {wait_s:.0f} s", done)
                time.sleep(0.2)
        done = 4
        say(f"4/{STEPS} {'已删除' if report.changelog_deleted else '无'} worker 快照主题 {changelog}（下次启动时重建）/ "
            f"{'deleted' if report.changelog_deleted else 'no'} worker snapshot topic {changelog} (made again at the next start)")

        # -- 5. the tables the fold's output fills
        pause(5)
        _idle_or_refuse(admin, settings, done)
        try:
            for table in FOLD_TABLES:
                # (rows as a reader counts them: a table not yet merged holds a row per version)
                report.tables[table] = int(store.query(f"SELECT count() AS n FROM (SELECT * FROM {table} FINAL)")[0]["n"])
                store.command(f"TRUNCATE TABLE {table}")
        except Exception as exc:  # noqa: BLE001 - the store's refusal, said with what was done
            raise RefoldRefused(f"清空表时存储报错：{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} / the store "
                                f"refused while the tables were emptied: {type(exc).__name__}", done) from None
        done = 5
        say(f"5/{STEPS} 已清空 {', '.join(f'{t}（{n:,} 行）' for t, n in report.tables.items())}；events、dead_letters、deliveries 保留 / "
            f"emptied {', '.join(f'{t} ({n:,} rows)' for t, n in report.tables.items())}; events, dead_letters and deliveries kept")
    except RefoldRefused:
        raise
    except Exception as exc:  # a broker's or store's error part way: said with the steps it leaves done
        if done:
            raise RefoldRefused(f"{type(exc).__name__}: {exc}", done) from exc
        raise
    finally:
        admin.close()
    return report


def _idle_or_refuse(admin: Any, settings: KafkaSettings, done: int) -> None:
    """Refuse while a worker or a sink is a member of its group: a worker that joined between two steps
    restores the old snapshots, or reads the log from where its group stood."""
    groups = admin.describe_groups([settings.worker_app_id, settings.sink_group])
    busy = {g: d for g, d in groups.items() if d.get("group_state") not in IDLE_STATES or d.get("members")}
    if busy:
        named = "；".join(f"{g}（{d.get('group_state')}，{len(d.get('members') or [])} 个成员）" for g, d in busy.items())
        named_en = "; ".join(f"{g} ({d.get('group_state')}, {len(d.get('members') or [])} members)" for g, d in busy.items())
        timeout = settings.worker_session_timeout
        raise RefoldRefused(
            f"消费组仍在运行：{named}。先停止所有 qrisk worker 与 qrisk sink，并在本命令完成前保持停止；刚被强制停止（kill -9）的成员"
            f"在会话超时（{timeout:g} 秒）后离开 / consumer groups still running: {named_en}. Stop every `qrisk worker` and `qrisk sink`, "
            f"and keep them stopped until this command is done; a member killed (kill -9) leaves after its session timeout "
            f"({timeout:g} s)", done)


def _partitions(admin: Any, names: list[str]) -> dict[str, list[int]]:
    present = set(admin.list_topics())
    wanted = [n for n in names if n in present]
    out: dict[str, list[int]] = {}
    for d in admin.describe_topics(wanted) if wanted else []:
        if not d.get("error_code"):
            out[_name(d)] = sorted(p.get("partition_index", p.get("partition")) for p in d["partitions"])  # (kafka-python 3.x / 2.x)
    return out


def _offset(answer: Any) -> int:
    """An offset from ``list_partition_offsets`` (an OffsetAndTimestamp-like tuple, or the integer)."""
    return int(getattr(answer, "offset", answer))


def _check(answer: Any, whose: str, done: int) -> None:
    """``reset_group_offsets`` returns each partition's error ({tp: {"error": class, "offset": n}}) instead of raising it."""
    failed = {tp: r["error"] for tp, r in (answer or {}).items() if getattr(r["error"], "errno", 0)}
    if failed:
        listed = ", ".join(f"{tp.topic}/{tp.partition}: {err.__name__}" for tp, err in sorted(failed.items()))
        raise RefoldRefused(f"Kafka 拒绝移动 {whose} 消费组的位置：{listed} / the broker refused to move the {whose} group: {listed}", done)
