"""``qrisk rebuild --kafka`` on the real broker and the real ClickHouse server.

A county is folded by a real worker and written by the sink.  The rebuild is refused while the
worker runs (nothing changed); with it stopped, it moves the workers' group back to the log's start
(the ingress topic keeps its offsets), passes the sink over the old fold's unwritten output, deletes
the snapshot topic and empties the tables the fold fills.  Started again, the worker folds the log
again from its first record — the tables come back row for row, equal to an embedded replay — and
the log gains no record: nothing entered it twice.
"""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest

from tests.conftest import ROOT, free_port
from tests.kafka_service import (  # noqa: F401 - fixtures
    WorkerProcess, group_lag, kafka_bootstrap, kafka_env, settings_for, wait_for,
)
from tests.services import clickhouse_url, drop_database, fresh_database_url  # noqa: F401 - fixtures

FOLD_TABLES = ("stream_effects", "judgements", "sampling_items", "alerts", "alert_events", "outbox", "credit_files")


def _counts(store) -> dict[str, int]:
    return {t: store.query(f"SELECT count() AS n FROM (SELECT * FROM {t} FINAL)")[0]["n"] for t in FOLD_TABLES}


def _rebuild(env: dict[str, str], url: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "qrisk", "rebuild", "--kafka", "--store", url], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=180)


def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or set())]
        return {tp.partition: n for tp, n in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


@pytest.fixture(scope="module")
def county(tmp_path_factory, kafka_bootstrap, clickhouse_url):
    from qrisk.demo import CountyGenerator
    from qrisk.kafka_log import produce_file
    from qrisk.sink import Sink
    from qrisk.store import ClickHouseStore, migrate
    from qrisk.topics import create_topics, delete_topics

    tmp = tmp_path_factory.mktemp("kafka-rebuild")
    prefix = f"rb{uuid.uuid4().hex[:8]}"
    env = kafka_env(kafka_bootstrap, prefix)
    settings = settings_for(env)
    topics = settings.topics()
    create_topics(settings)
    events = CountyGenerator(seed=11, months=3, campaign=False, daily_ticks=False).generate()
    events = [e for e in events if e.event_type != "clock.tick"]
    path = tmp / "county.jsonl"
    path.write_text("".join(e.model_dump_json(exclude_none=True) + "\n" for e in events), encoding="utf-8")
    name, url = fresh_database_url(clickhouse_url, "kafka_rebuild")
    store = ClickHouseStore(url)
    migrate(store)
    worker = WorkerProcess(env, tmp, "worker", web_port=free_port()).start()
    sink_topics = [topics.events.name, topics.effects.name, topics.credit_files.name, topics.dead_letters.name]

    def fold_and_sink(what: str) -> None:
        wait_for(lambda: group_lag(kafka_bootstrap, settings.worker_app_id, [topics.ingress["import"].name, topics.events.name]) == 0,
                 120, f"the worker to fold everything ({what})", on_timeout=worker.tail)
        per = Counter(e.enterprise_id for e in events)

        def views() -> bool:  # every credit file published with all its events (the worker publishes them every second)
            sink.run_once(2000)
            got = {r["enterprise_id"]: r["v"] for r in store.query("SELECT enterprise_id, max(seq) AS v FROM credit_files GROUP BY enterprise_id")}
            return got == dict(per) and group_lag(kafka_bootstrap, settings.sink_group, sink_topics) == 0

        wait_for(views, 120, f"the sink to write the credit files ({what})", interval=0.2, on_timeout=worker.tail)

    sink = Sink(store, settings)
    try:
        produce_file(path, "import", settings)
        fold_and_sink("first fold")
        sink.close()
        yield {"env": env, "settings": settings, "topics": topics, "events": events, "store": store, "url": url,
               "worker": worker, "bootstrap": kafka_bootstrap, "fold_and_sink": fold_and_sink,
               "new_sink": lambda: Sink(store, settings)}
    finally:
        worker.stop()
        store.close()
        drop_database(clickhouse_url, name)
        delete_topics(settings, [t.name for t in topics.all()])


def test_refused_while_a_worker_runs_and_nothing_changes(county):
    store, topics = county["store"], county["topics"]
    before = _counts(store)
    assert all(n for t, n in before.items() if t != "outbox"), before  # (a county three months old alerts nobody: nothing is live)
    done = _rebuild(county["env"], county["url"])
    assert done.returncode == 2, done.stderr
    assert county["settings"].worker_app_id in done.stderr and "先停止所有 qrisk worker" in done.stderr
    assert _counts(store) == before
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=county["bootstrap"])
    try:
        assert topics.changelog.name in set(admin.list_topics())
    finally:
        admin.close()


def test_the_log_is_folded_again_from_its_start(county, rules):
    from processors.step import replay

    store, topics, settings, bootstrap = county["store"], county["topics"], county["settings"], county["bootstrap"]
    before = _counts(store)
    files_before = {r["enterprise_id"]: r["body"] for r in store.query(
        "SELECT enterprise_id, argMax(body, seq) AS body FROM credit_files FINAL GROUP BY enterprise_id")}
    county["worker"].stop()
    # one more event folded while the sink is stopped: its effects are the old fold's output the sink has not written
    from qrisk.kafka_log import KafkaLog

    extra = county["events"][-1].model_copy(update={"event_id": uuid.uuid4()})
    county["worker"].start()
    views_end = sum(_end_offsets(bootstrap, topics.credit_files.name).values())
    with KafkaLog(settings) as klog:
        assert klog.submit([extra])[0].status == "accepted"
    wait_for(lambda: group_lag(bootstrap, settings.worker_app_id, [topics.events.name]) == 0, 120, "the extra event folded",
             on_timeout=county["worker"].tail)
    effects_end = _end_offsets(bootstrap, topics.effects.name)
    wait_for(lambda: sum(_end_offsets(bootstrap, topics.credit_files.name).values()) > views_end, 30, "its credit file published")
    county["worker"].stop()
    county["events"].append(extra)
    log_end = _end_offsets(bootstrap, topics.events.name)
    ingress = _committed(bootstrap, settings.worker_app_id, topics.ingress["import"].name)
    assert ingress and _committed(bootstrap, settings.worker_app_id, topics.events.name) == log_end

    done = _rebuild(county["env"], county["url"])
    assert done.returncode == 0, done.stderr
    assert all(f"{n}/5" in done.stderr for n in range(1, 6)) and "启动 qrisk worker、qrisk sink 与通知发送" in done.stderr
    records = sum(log_end.values())
    assert f"{records:,} 条记录将重新折叠" in done.stderr
    # the workers at the log's start, the ingress where it was; the sink past every effect of the old fold
    assert set(_committed(bootstrap, settings.worker_app_id, topics.events.name).values()) == {0}
    assert _committed(bootstrap, settings.worker_app_id, topics.ingress["import"].name) == ingress
    assert _committed(bootstrap, settings.sink_group, topics.effects.name) == _end_offsets(bootstrap, topics.effects.name)
    assert sum(_end_offsets(bootstrap, topics.effects.name).values()) >= sum(effects_end.values())
    skipped = int(done.stderr.split("跳过旧折叠尚未写入的 ")[1].split(" ")[0].replace(",", ""))
    assert skipped >= 1  # the extra event's effects at least
    assert _counts(store) == dict.fromkeys(FOLD_TABLES, 0)
    (refolded,) = store.query("SELECT live_within_hours, log_records FROM refolds")  # on record, for the dispatcher
    assert (refolded["live_within_hours"], refolded["log_records"]) == (720, records)
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        assert topics.changelog.name not in set(admin.list_topics())
    finally:
        admin.close()

    # started again: the fold from the log's first record, nothing entering the log twice
    county["worker"].start()
    sink = county["new_sink"]()
    try:
        started = time.monotonic()
        from tests.kafka_service import wait_for as _wait

        def refilled() -> bool:
            sink.run_once(2000)
            return _counts(store)["credit_files"] > 0 and group_lag(bootstrap, settings.worker_app_id, [topics.events.name]) == 0

        _wait(refilled, 120, "the refold", interval=0.2, on_timeout=county["worker"].tail)
        per = Counter(e.enterprise_id for e in county["events"])

        def caught_up() -> bool:
            sink.run_once(2000)
            got = {r["enterprise_id"]: r["v"] for r in store.query("SELECT enterprise_id, max(seq) AS v FROM credit_files GROUP BY enterprise_id")}
            return got == dict(per)

        _wait(caught_up, 120, "the refolded credit files", interval=0.2, on_timeout=county["worker"].tail)
        assert time.monotonic() - started < 240
    finally:
        sink.close()
    assert _end_offsets(bootstrap, topics.events.name) == log_end
    after = _counts(store)
    # the extra event (a repeat of a folded one's content under a new id) adds its own rows; the rest come back row for row
    for table in ("judgements", "sampling_items", "alerts", "outbox"):
        assert after[table] >= before[table], (table, before, after)
    state, _ = replay(county["events"], rules)
    rows = store.query("SELECT enterprise_id, argMax(body, seq) AS body FROM credit_files FINAL GROUP BY enterprise_id")
    stored = {r["enterprise_id"]: json.loads(r["body"]) for r in rows}
    assert set(stored) == set(state.files) == set(files_before)
    for eid, file in state.files.items():
        view = json.loads(json.dumps(file.view(), ensure_ascii=False))
        for doc in (stored[eid], view):
            doc["warnings"] = [w for w in doc.get("warnings", []) if not w["dedup_key"].startswith("county:")]
        assert stored[eid] == view, eid


def test_a_store_directory_in_use_is_one_line_naming_what_to_stop(tmp_path, kafka_bootstrap):
    import os

    from qrisk.store import migrate, open_store

    held = open_store(tmp_path / "store")  # as a running sink or `qrisk run` holds its chdb directory
    try:
        migrate(held)
        done = subprocess.run([sys.executable, "-m", "qrisk", "rebuild", "--kafka", "--bootstrap", kafka_bootstrap,
                               "--store", str(tmp_path / "store")], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
                              timeout=120)
    finally:
        held.close()
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "先停止写入它的 qrisk sink" in done.stderr, done.stderr


# --------------------------------------------------------------------------- settings that name another deployment

@pytest.fixture
def deployment(kafka_bootstrap, clickhouse_url):
    """A deployment as a worker and a sink leave it, without running them: a log with records, the workers'
    group committed on it, their snapshot topic, the sink's group committed on the effects, and a store with
    the log's archive."""
    from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    from qrisk.store import ClickHouseStore, migrate
    from qrisk.topics import create_topics, delete_topics

    prefix = f"rf{uuid.uuid4().hex[:8]}"
    env = kafka_env(kafka_bootstrap, prefix)
    settings = settings_for(env)
    topics = settings.topics()
    create_topics(settings)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    from kafka.admin import NewTopic

    admin.create_topics([NewTopic(topics.changelog.name, 4, 1)])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for i in range(6):
        producer.send(topics.events.name, key=b"E-1", value=b"{}", partition=i % 4)
        producer.send(topics.effects.name, key=b"E-1", value=b"{}", partition=i % 4)
    producer.flush()
    producer.close()
    admin.alter_group_offsets(settings.worker_app_id, {TopicPartition(topics.events.name, p): OffsetAndMetadata(1, "", -1) for p in range(4)})
    admin.alter_group_offsets(settings.sink_group, {TopicPartition(topics.effects.name, p): OffsetAndMetadata(1, "", -1) for p in range(4)})
    name, url = fresh_database_url(clickhouse_url, "kafka_refold")
    store = ClickHouseStore(url)
    migrate(store)
    store.insert("events", [{"enterprise_id": "E-1", "event_id": "x", "event_type": "clock.tick", "occurred_at": dt.datetime(2026, 1, 1),
                             "received_at": dt.datetime(2026, 1, 1), "seq": 1, "body": "{}"}])
    try:
        yield {"env": env, "settings": settings, "topics": topics, "store": store, "url": url, "admin": admin, "prefix": prefix}
    finally:
        admin.close()
        store.close()
        drop_database(clickhouse_url, name)
        delete_topics(settings, [t.name for t in topics.all()])


def _tables_untouched(d) -> bool:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=d["settings"].kafka_bootstrap)
    try:
        kept = d["topics"].changelog.name in set(admin.list_topics())
    finally:
        admin.close()
    return kept and not d["store"].query("SELECT * FROM refolds")


@pytest.mark.parametrize("wrong, said", [
    ({"QRISK_WORKER_APP_ID": "typo-worker"}, "QRISK_WORKER_APP_ID 是否正确"),
    ({"QRISK_SINK_GROUP": "typo-sink"}, "QRISK_SINK_GROUP 是否正确"),
    ({"QRISK_KAFKA_TOPIC_PREFIX": "nosuchprefix"}, "检查 QRISK_KAFKA_TOPIC_PREFIX"),
])
def test_settings_naming_another_deployment_are_refused_and_change_nothing(deployment, wrong, said):
    done = _rebuild({**deployment["env"], **wrong}, deployment["url"])
    assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert _tables_untouched(deployment)


def test_a_store_that_is_not_the_sinks_is_refused_not_made(deployment, clickhouse_url):
    from qrisk.store import ClickHouseStore, migrate

    base = deployment["url"].rsplit("/", 1)[0]
    done = _rebuild(deployment["env"], f"{base}/no_such_database_{uuid.uuid4().hex[:6]}")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert not ClickHouseStore(f"{base}/default").query("SELECT name FROM system.databases WHERE name LIKE 'no_such_database_%'")
    name, other = fresh_database_url(clickhouse_url, "kafka_refold_other")
    store = ClickHouseStore(other)
    try:
        migrate(store)  # another deployment's (or an empty) store: the log's archive is not there
        done = _rebuild(deployment["env"], other)
        assert done.returncode == 2 and "--store 是否为 sink 写入的库" in done.stderr, done.stderr
    finally:
        store.close()
        drop_database(clickhouse_url, name)
    assert _tables_untouched(deployment)


def test_a_worker_joining_between_two_steps_stops_the_rest_and_a_second_run_finishes(deployment):
    from kafka import KafkaConsumer

    from qrisk.kafka_rebuild import RefoldRefused, refold

    d = deployment
    joined: list = []

    def join(step: int) -> None:
        if step == 3:  # a worker started by a restart policy after the workers' group was moved back
            consumer = KafkaConsumer(d["topics"].events.name, bootstrap_servers=d["settings"].kafka_bootstrap,
                                     group_id=d["settings"].worker_app_id, enable_auto_commit=False)
            deadline = time.monotonic() + 30
            while not consumer.assignment() and time.monotonic() < deadline:
                consumer.poll(200)
            joined.append(consumer)

    with pytest.raises(RefoldRefused) as refused:
        refold(d["settings"], d["store"], 720, pause=join)
    assert refused.value.done == 2 and "已完成第 1–2 步" in str(refused.value) and "再次运行本命令" in str(refused.value)
    assert d["topics"].changelog.name in set(d["admin"].list_topics())  # step 4 not done: the snapshots kept
    joined[0].close()
    deadline = time.monotonic() + 30
    while True:  # its leaving the group takes a moment
        try:
            report = refold(d["settings"], d["store"], 720)
            break
        except RefoldRefused:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    assert report.changelog_deleted and report.log_records == 6
    # run once more: the snapshots gone, the workers at the log's start — a continuation, not a wrong app id
    assert refold(d["settings"], d["store"], 720).changelog_deleted is False
