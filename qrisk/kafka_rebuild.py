"""``qrisk rebuild --kafka``: fold the Kafka log again after an upgrade, in one command.

In the Kafka mode the fold's state lives in the workers' changelog snapshots, each naming the
``FOLD_VERSION`` that wrote it.  After an upgrade that changes what the fold keeps, those snapshots
carry on with the old results and may count what comes after them wrongly.  The remedy is to fold
the log (kept for good) again from its first record.  This was five steps by hand (README,
"Upgrades"); one of them done wrong — the ingress offsets reset with the log's, or the sink left to
write the old fold's unread effects after the tables were emptied — duplicates events or leaves
rows the new fold does not make.  So, with the workers and the sink stopped:

1. the sink's group moves past what the old fold published (effects, credit files): to their end;
2. the workers' group goes back to the log's first offset — on the log only: the ingress topics
   keep their offsets, or every accepted message would enter the log a second time;
3. the workers' changelog topic is deleted (Faust makes it again at the next start);
4. the ClickHouse tables the sink fills from the fold are emptied (``FOLD_TABLES``); the archive of
   the log (``events``), ``dead_letters`` and ``deliveries`` are kept, so a notification already
   sent is not sent again (outbox ids are deterministic).

Everything is checked before anything is changed (the groups idle, the store migrated), and each
step can be done again: a run that stopped half way is finished by running it again.  Then start
the workers and the sink: they fold the log again; its events are old, not live, so nobody is
notified twice.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from qrisk.topics import KafkaSettings, _name, admin_client

FOLD_TABLES = ("stream_effects", "judgements", "sampling_items", "alerts", "alert_events", "outbox", "credit_files")
"""What the sink writes from the fold's output (effects and credit files), emptied for the fold to
write again.  Not ``events`` (the log's archive), ``dead_letters`` (what arrived and was refused; a
fold failure's letter is keyed by its event and rewritten in place), ``deliveries`` (what receivers
were sent), the audit log nor the keys."""

IDLE_STATES = ("Empty", "Dead")
"""Consumer-group states with no member: only then do committed offsets stay as set."""


class RefoldRefused(Exception):
    """Something that must hold before anything is changed does not (one line, Chinese and English)."""


@dataclass
class RefoldReport:
    log_partitions: int = 0
    log_records: int = 0  # what the workers will fold again
    sink_skipped: int = 0  # messages of the old fold the sink had not written, now passed over
    changelog_deleted: bool = False
    tables: dict[str, int] = field(default_factory=dict)  # rows emptied, per table

    def as_dict(self) -> dict[str, Any]:
        return {"log_partitions": self.log_partitions, "log_records": self.log_records, "sink_skipped": self.sink_skipped,
                "changelog_deleted": self.changelog_deleted, "tables": dict(self.tables)}


def refold(settings: KafkaSettings, store: Any, say: Callable[[str], None] = lambda _line: None,
           wait_s: float = 60.0) -> RefoldReport:
    """Do the four steps (module docstring); ``say`` hears each as it is done."""
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec

    topics = settings.topics()
    report = RefoldReport()
    admin = admin_client(settings)
    try:
        # -- checks: nothing is changed unless all hold
        have = {r["name"] for r in store.query("SELECT name FROM system.tables WHERE database = currentDatabase()")}
        missing = [t for t in FOLD_TABLES if t not in have]
        if missing:
            raise RefoldRefused(f"存储中缺少表 {', '.join(missing)}：先运行一次 qrisk sink 建表 / the store lacks "
                                f"{', '.join(missing)}: run `qrisk sink` once to migrate it")
        groups = admin.describe_groups([settings.worker_app_id, settings.sink_group])
        busy = {g: d for g, d in groups.items() if d.get("group_state") not in IDLE_STATES or d.get("members")}
        if busy:
            named = "；".join(f"{g}（{d.get('group_state')}，{len(d.get('members') or [])} 个成员）" for g, d in busy.items())
            named_en = "; ".join(f"{g} ({d.get('group_state')}, {len(d.get('members') or [])} members)" for g, d in busy.items())
            raise RefoldRefused(f"消费组仍在运行：{named}。先停止所有 qrisk worker 与 qrisk sink / consumer groups still "
                                f"running: {named_en}. Stop every `qrisk worker` and `qrisk sink` first")
        present = set(admin.list_topics())
        if topics.events.name not in present:
            raise RefoldRefused(f"Kafka 中没有事件日志主题 {topics.events.name}：检查 QRISK_KAFKA_TOPIC_PREFIX / "
                                f"no event log topic {topics.events.name} on the broker: check QRISK_KAFKA_TOPIC_PREFIX")
        partitions = _partitions(admin, [topics.events.name, topics.effects.name, topics.credit_files.name])

        # -- 1. the sink past the old fold's output
        outputs = [TopicPartition(t, p) for t in (topics.effects.name, topics.credit_files.name) for p in partitions.get(t, ())]
        if outputs:
            committed = admin.list_group_offsets({settings.sink_group: outputs}).get(settings.sink_group, {})
            ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in outputs})
            starts = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in outputs})
            for tp in outputs:
                meta = committed.get(tp)
                at = meta.offset if meta is not None and meta.offset >= 0 else _offset(starts[tp])
                report.sink_skipped += max(0, _offset(ends[tp]) - at)
            _check(admin.reset_group_offsets(settings.sink_group, {tp: OffsetSpec.LATEST for tp in outputs}), "sink")
        say(f"1/4 sink 消费组 {settings.sink_group} 跳过旧折叠尚未写入的 {report.sink_skipped:,} 条消息 / the sink's group "
            f"{settings.sink_group} passes over {report.sink_skipped:,} messages of the old fold not yet written")

        # -- 2. the workers back to the log's first offset (the log only)
        log_tps = [TopicPartition(topics.events.name, p) for p in partitions[topics.events.name]]
        ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in log_tps})
        starts = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in log_tps})
        report.log_partitions = len(log_tps)
        report.log_records = sum(_offset(ends[tp]) - _offset(starts[tp]) for tp in log_tps)
        _check(admin.reset_group_offsets(settings.worker_app_id, {tp: OffsetSpec.EARLIEST for tp in log_tps}), "worker")
        say(f"2/4 worker 消费组 {settings.worker_app_id} 回到日志 {topics.events.name} 起点：{report.log_partitions} 个分区、"
            f"{report.log_records:,} 条记录将重新折叠（ingress 主题的位置不变）/ the workers' group {settings.worker_app_id} is back "
            f"at the start of {topics.events.name}: {report.log_records:,} records in {report.log_partitions} partitions to fold "
            f"again (the ingress topics keep their offsets)")

        # -- 3. the changelog: the snapshots of the old fold
        changelog = topics.changelog.name
        if changelog in present:
            admin.delete_topics([changelog])
            report.changelog_deleted = True
            deadline = time.monotonic() + wait_s
            while changelog in set(admin.list_topics()):
                if time.monotonic() > deadline:
                    raise RefoldRefused(f"主题 {changelog} 在 {wait_s:.0f} 秒内未删除完毕；再次运行本命令 / {changelog} was not gone "
                                        f"within {wait_s:.0f} s: run this command again")
                time.sleep(0.2)
        say(f"3/4 {'已删除' if report.changelog_deleted else '无'} worker 快照主题 {changelog}（下次启动时重建）/ "
            f"{'deleted' if report.changelog_deleted else 'no'} worker snapshot topic {changelog} (made again at the next start)")
    finally:
        admin.close()

    # -- 4. the tables the fold's output fills
    for table in FOLD_TABLES:
        report.tables[table] = int(store.query(f"SELECT count() AS n FROM {table}")[0]["n"])
        store.command(f"TRUNCATE TABLE {table}")
    say(f"4/4 已清空 {', '.join(f'{t}（{n:,} 行）' for t, n in report.tables.items())}；events、dead_letters、deliveries 保留 / "
        f"emptied {', '.join(f'{t} ({n:,} rows)' for t, n in report.tables.items())}; events, dead_letters and deliveries kept")
    return report


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


def _check(answer: Any, whose: str) -> None:
    """``reset_group_offsets`` returns each partition's error ({tp: {"error": class, "offset": n}}) instead of raising it."""
    failed = {tp: r["error"] for tp, r in (answer or {}).items() if getattr(r["error"], "errno", 0)}
    if failed:
        listed = ", ".join(f"{tp.topic}/{tp.partition}: {err.__name__}" for tp, err in sorted(failed.items()))
        raise RefoldRefused(f"Kafka 拒绝移动 {whose} 消费组的位置：{listed} / the broker refused to move the {whose} group: {listed}")
