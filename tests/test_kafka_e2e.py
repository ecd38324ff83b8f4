"""End to end on the real broker and the real ClickHouse server.

Events (with poison among them) are produced to an ingress topic, validated and folded by a real
``qrisk worker`` process, and written to ClickHouse by the sink.  Counts are reconciled exactly,
the credit files equal an embedded replay of the same events, every poison record is in the
dead-letter topic with its reason and position, a correction sent under a used event_id is kept
there as a conflict (and a retry is not), and a second pass of the sink over the same messages
changes no count.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.kafka_service import (  # noqa: F401 - fixtures
    WorkerProcess, group_lag, kafka_bootstrap, kafka_env, kafka_prefix, latest_credit_files, read_topic, settings_for, wait_for,
)
from tests.conftest import ROOT
from tests.services import clickhouse_url, drop_database, fresh_database_url  # noqa: F401 - fixtures

def _demo_events(seed: int):
    from qrisk.demo import CountyGenerator

    # one tick at the end, sent to every partition once the rest is folded (see `run`): the demo's daily
    # ticks through partitioned topics would overtake other enterprises' events
    return CountyGenerator(seed=seed, daily_ticks=False).generate()


def county_view(view: dict) -> dict:
    """A credit-file view without the county-scope warnings (see qrisk.worker: per-category charts are county state)."""
    view = dict(view)
    view["warnings"] = [w for w in view.get("warnings", []) if not w["dedup_key"].startswith("county:")]
    return view


@pytest.fixture(scope="module")
def run(tmp_path_factory, kafka_bootstrap, clickhouse_url):
    """Topics, one worker process, the produced file, the sink into a fresh database."""
    import uuid

    from qrisk.kafka_log import KafkaLog, new_producer, produce_file
    from qrisk.sink import Sink
    from qrisk.store import ClickHouseStore, migrate
    from qrisk.topics import create_topics, delete_topics

    tmp = tmp_path_factory.mktemp("kafka-e2e")
    prefix = f"e{uuid.uuid4().hex[:8]}"
    env = kafka_env(kafka_bootstrap, prefix)
    settings = settings_for(env)
    topics = settings.topics()
    create_topics(settings)

    events = _demo_events(7)
    # the clock.tick goes straight to every partition of the log once the rest is folded (as `qrisk tick`
    # does): through a partitioned ingress topic it would overtake other enterprises' events
    # (the embedded replay below folds them in that same order)
    (tick,) = [e for e in events if e.event_type == "clock.tick"]
    events = [e for e in events if e is not tick] + [tick]
    lines = [e.model_dump_json(exclude_none=True) for e in events[:-1]]
    at = next(i for i, e in enumerate(events) if i >= 40 and e.event_type == "sampling.result")
    bad_doc = json.loads(lines[at])
    bad_doc["event_id"] = str(uuid.uuid4())
    bad_doc["payload"]["items"][0]["values"] = ["59"]
    lines.insert(at + 1, json.dumps(bad_doc, ensure_ascii=False))  # a quoted number, on line at + 2
    lines.insert(200, '{"event_id": "9d8e7c6b", "event_type": ')  # line 201: not JSON
    future = json.loads(lines[10])
    future["event_id"] = str(uuid.uuid4())
    future["occurred_at"] = "2062-01-01T00:00:00Z"  # a typo year: it would run the fold's clock decades ahead
    lines.insert(300, json.dumps(future, ensure_ascii=False))  # line 301
    # a sample sent again: once as a retry (its keys in another order), once corrected under its old id
    sample = json.loads(events[at].model_dump_json(exclude_none=True))
    lines.append(json.dumps(dict(reversed(list(sample.items()))), ensure_ascii=False))
    corrected = json.loads(events[at].model_dump_json(exclude_none=True))
    corrected["payload"]["items"][0]["values"] = [123.0] * len(sample["payload"]["items"][0]["values"])
    assert corrected != sample
    lines.append(json.dumps(corrected, ensure_ascii=False))
    path = tmp / "county.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    from tests.conftest import free_port

    worker = WorkerProcess(env, tmp, "worker-1", web_port=free_port()).start()
    name, url = fresh_database_url(clickhouse_url, "kafka_e2e")
    store = ClickHouseStore(url)
    migrate(store)
    try:
        started = time.monotonic()
        # the whole county (registrations, inspections, complaints …): the import topic, which admits what an
        # admin key may post; a lab's topic takes lab results only (tests/test_ingress_sources.py)
        summary = produce_file(path, "import", settings)
        # a poison message written straight into the log, bypassing validation
        producer = new_producer(settings)
        producer.send(topics.events.name, key=b"W01", value=b"\xff\xfe not an event").get(timeout=30)
        producer.close()
        def folded() -> bool:
            return group_lag(kafka_bootstrap, settings.worker_app_id, [topics.ingress["import"].name]) == 0 \
                and group_lag(kafka_bootstrap, settings.worker_app_id, [topics.events.name]) == 0

        wait_for(folded, 90, "the worker to fold everything", on_timeout=worker.tail)
        with KafkaLog(settings) as klog:
            published = klog.submit([tick])
        assert published[0].status == "accepted" and published[0].offset is not None
        wait_for(folded, 60, "the worker to fold the tick", on_timeout=worker.tail)
        # the worker publishes changed credit files every second: wait
        # for every file's view with all its events and the tick (or let the tests say what is missing)
        per = Counter(e.enterprise_id for e in events if e.enterprise_id != "*")

        def views_caught_up() -> bool:
            files = latest_credit_files(kafka_bootstrap, topics.credit_files.name)
            return {eid: doc["version"] for eid, doc in files.items()} == {eid: n + 1 for eid, n in per.items()}

        try:
            wait_for(views_caught_up, 60, "the credit-file views")
        except AssertionError:
            pass
        sink = Sink(store, settings)
        sink_topics = [topics.events.name, topics.effects.name, topics.credit_files.name, topics.dead_letters.name]
        wait_for(lambda: sink.run_once(500) >= 0 and group_lag(kafka_bootstrap, settings.sink_group, sink_topics) == 0,
                 60, "the sink to write everything", interval=0)
        sink.close()
        elapsed = time.monotonic() - started
        yield {"env": env, "settings": settings, "topics": topics, "events": events, "summary": summary, "store": store,
               "worker": worker, "bootstrap": kafka_bootstrap, "url": url, "elapsed": elapsed, "sink_stats": sink.stats,
               "quoted_line": at + 2, "corrected": corrected}
    finally:
        worker.stop()
        store.close()
        drop_database(clickhouse_url, name)
        delete_topics(settings, [t.name for t in topics.all()])


def test_the_worker_reports_its_counts_and_lag(run):
    """Faust's web server carries the worker's own page: what it folded, and how far behind it is."""
    import re

    import httpx

    worker, topics, events = run["worker"], run["topics"], run["events"]
    url = f"http://127.0.0.1:{worker.web_port}/qrisk/metrics/"

    def values() -> dict[str, float]:
        text = httpx.get(url, timeout=10).text
        assert "# HELP qrisk_worker_events_applied_total" in text
        return {m[1]: float(m[2]) for m in re.finditer(r"^(qrisk_worker_\w+(?:\{[^}]*\})?) (\S+)$", text, re.M)}

    def caught_up() -> bool:
        got = values()
        lags = {k: v for k, v in got.items() if k.startswith("qrisk_worker_lag_messages{") and f'topic="{topics.events.name}"' in k}
        return len(lags) == 4 and not any(lags.values())

    wait_for(caught_up, 30, "the worker's page to show no lag on the log's four partitions", on_timeout=lambda: str(values()))
    got = values()
    assert got["qrisk_worker_events_applied_total"] >= len(events) - 1
    assert got["qrisk_worker_conflicts_total"] == 1 and got["qrisk_worker_duplicates_total"] >= 1
    assert got["qrisk_worker_dead_letters_total"] >= 3  # the quoted number, the future, the poison (the line that is not JSON never left the producer)


def test_counts_reconcile_exactly(run, rules):
    from processors.step import replay

    store, events, topics = run["store"], run["events"], run["topics"]
    assert run["summary"]["sent"] == len(events) - 1 + 1 + 1 + 2 and run["summary"]["dead_lettered"] == 1
    ticks = sum(1 for e in events if e.event_type == "clock.tick")
    assert ticks == 1
    # the log: every valid event once (+ the tick's copy on each partition + the poison + the retry and the correction)
    log = read_topic(run["bootstrap"], topics.events.name)
    assert len(log) == len(events) - ticks + ticks * 4 + 1 + 2
    # the archive: each event exactly once
    archived = store.query("SELECT count() AS n, uniqExact(event_id) AS u FROM events FINAL")[0]
    assert archived == {"n": len(events), "u": len(events)}
    by_type = {r["event_type"]: r["n"] for r in store.query("SELECT event_type, count() AS n FROM events FINAL GROUP BY event_type")}
    assert by_type == dict(Counter(e.event_type for e in events))

    # effects: the topic's distinct keys, the table's rows and an embedded replay agree
    keys = Counter()
    for m in read_topic(run["bootstrap"], topics.effects.name):
        doc = json.loads(m.value)
        for e in doc["effects"]:
            keys[(doc["enterprise_id"], doc["file_version"], e["idx"])] += 1
    rows = store.query("SELECT count() AS n FROM stream_effects FINAL")[0]["n"]
    assert rows == len(keys)
    _, expected = replay(events, rules)
    # (the county's charts, and their withdrawals, are the embedded runtime's: a worker's county is its one file)
    county_scope = Counter(e.kind for e in expected if e.kind in ("fluctuation.signal", "fluctuation.signal_withdrawn")
                           and e.data.get("scope") == "category")
    county_warnings = sum(1 for e in expected if e.kind == "warning.raised" and e.data.get("dedup_key", "").startswith("county:"))
    by_kind = {r["kind"]: r["n"] for r in store.query("SELECT kind, count() AS n FROM stream_effects FINAL GROUP BY kind")}
    want = Counter(e.kind for e in expected)
    want.subtract(county_scope)
    want["warning.raised"] -= county_warnings
    want["event.id_conflict"] = 1  # the correction under a used id (not folded: see below)
    assert by_kind == {k: v for k, v in want.items() if v}

    judged = want["sampling.judged"]
    assert store.query("SELECT count() AS n FROM judgements FINAL")[0]["n"] == judged
    # re-tests (复检): the sample whose verdict no longer counts says which one does, as in an embedded replay
    state, _ = replay(events, rules)
    superseded = {s.event_id: s.superseded_by for f in state.files.values() for s in f.samples if s.superseded_by}
    assert superseded  # the demo county has re-tests
    rows = store.query("SELECT event_id, superseded_by FROM judgements FINAL WHERE superseded_by != ''")
    assert {r["event_id"]: r["superseded_by"] for r in rows} == superseded
    items = store.query("SELECT uniqExact(event_id) AS s, count() AS n FROM sampling_items FINAL")[0]
    assert items["s"] == judged
    assert items["n"] == sum(len(i.values) for e in events if e.event_type == "sampling.result" for i in e.payload.items)
    # the four poison records and the conflict, kept once each
    assert store.query("SELECT count() AS n FROM dead_letters FINAL")[0]["n"] == 5


def test_credit_files_equal_an_embedded_replay(run, rules):
    from processors.step import replay

    store, events = run["store"], run["events"]
    state, _ = replay(events, rules)
    rows = store.query("SELECT enterprise_id, argMax(body, seq) AS body, max(seq) AS version FROM credit_files FINAL GROUP BY enterprise_id")
    stored = {r["enterprise_id"]: json.loads(r["body"]) for r in rows}
    assert set(stored) == set(state.files)
    for eid, file in state.files.items():
        assert county_view(stored[eid]) == county_view(json.loads(json.dumps(file.view(), ensure_ascii=False))), eid
    # the topic says the same as the table
    on_topic = latest_credit_files(run["bootstrap"], run["topics"].credit_files.name)
    assert {k: v["file"] for k, v in on_topic.items()} == stored
    # every enterprise event applied once: the file's own event count
    per = Counter(e.enterprise_id for e in events if e.enterprise_id != "*")
    assert {eid: doc["events"] for eid, doc in stored.items()} == dict(per)


def test_poison_goes_to_dead_letters_with_reason_and_position(run):
    topics = run["topics"]
    letters = [json.loads(m.value) for m in read_topic(run["bootstrap"], topics.dead_letters.name)]
    by_channel = {}
    for dl in letters:
        by_channel.setdefault(dl["channel"], []).append(dl)
    # not JSON: caught by `qrisk produce` itself, with file:line
    (bad_json,) = by_channel["import"]
    assert bad_json["position"] == "county.jsonl:201" and "not valid JSON" in bad_json["reason"]
    assert bad_json["raw"].startswith('{"event_id": "9d8e7c6b"')
    kafka_letters = sorted((d for d in by_channel["kafka"] if d["errors"][0]["type"] != "event_id_conflict"), key=lambda d: d["position"])
    assert len(kafka_letters) == 3
    # an event from the future: refused by the worker as the HTTP door refuses it
    (future,) = [d for d in kafka_letters if d["errors"][0]["type"] == "in_the_future"]
    assert future["errors"][0]["field"] == "occurred_at" and "2062" in future["raw"]
    assert future["position"].endswith("(county.jsonl:301)")
    kafka_letters.remove(future)
    # a quoted number: rejected by the worker, naming the field, with topic/partition/offset and file:line
    quoted = next(d for d in kafka_letters if d["position"].startswith(topics.ingress["import"].name))
    assert f"(county.jsonl:{run['quoted_line']})" in quoted["position"]
    assert quoted["errors"][0]["field"] == "payload.items[0].values[0]"
    assert '"59"' in quoted["raw"]
    # bytes that are no event at all, straight in the log: kept as base64, the stream went on
    raw = next(d for d in kafka_letters if d["position"].startswith(topics.events.name))
    assert raw["raw_encoding"] == "base64" and raw["reason"].startswith("not a valid event in the log")
    assert raw["dead_letter_id"].startswith(f"kafka:{topics.events.name}:")


def test_a_correction_under_a_used_event_id_is_a_conflict_kept_not_folded(run):
    """The embedded pipeline answers 409; here the producer was told nothing, so the worker keeps
    the correction where people look (dead letters, effects) and folds nothing of it: the credit
    files above equal a replay without it.  The retry before it was a duplicate and left no trace."""
    topics, store, corrected = run["topics"], run["store"], run["corrected"]
    event_id = corrected["event_id"]
    letters = [json.loads(m.value) for m in read_topic(run["bootstrap"], topics.dead_letters.name)]
    (letter,) = [d for d in letters if d["errors"][0]["type"] == "event_id_conflict"]
    assert letter["errors"][0]["event_id"] == event_id and letter["position"].startswith(f"{topics.events.name}/")
    assert letter["reason"] == f"conflict: event_id {event_id} already names an earlier event in the log, with different content"
    assert "更正请使用新的 event_id" in letter["errors"][0]["reason_zh"]
    assert json.loads(letter["raw"])["payload"]["items"][0]["values"] == corrected["payload"]["items"][0]["values"]
    stored = store.query("SELECT reason FROM dead_letters FINAL WHERE dead_letter_id = %(id)s", {"id": letter["dead_letter_id"]})
    assert [r["reason"] for r in stored] == [letter["reason"]]
    rows = store.query("SELECT enterprise_id, event_id, data FROM stream_effects FINAL WHERE kind = 'event.id_conflict'")
    assert [(r["enterprise_id"], r["event_id"]) for r in rows] == [(corrected["enterprise_id"], event_id)]
    assert json.loads(rows[0]["data"])["dead_letter_id"] == letter["dead_letter_id"]


def test_sink_redelivery_does_not_double_count(run):
    """A second sink (new group: every message again) into the same database changes no count."""
    from qrisk.sink import Sink

    store, settings = run["store"], run["settings"]
    tables = ["events", "stream_effects", "judgements", "sampling_items", "credit_files", "dead_letters"]
    before = {t: store.query(f"SELECT count() AS n FROM {t} FINAL")[0]["n"] for t in tables}
    again = Sink(store, settings.model_copy(update={"sink_group": settings.sink_group + "-again"}))
    topics = run["topics"]
    sink_topics = [topics.events.name, topics.effects.name, topics.credit_files.name, topics.dead_letters.name]
    wait_for(lambda: again.run_once(500) >= 0 and group_lag(run["bootstrap"], settings.sink_group + "-again", sink_topics) == 0,
             60, "the second sink", interval=0)
    again.close()
    assert again.stats["messages"] >= run["sink_stats"]["messages"]
    after = {t: store.query(f"SELECT count() AS n FROM {t} FINAL")[0]["n"] for t in tables}
    assert after == before


# --------------------------------------------------------------------------- the worker's data directory
# (it defaulted to var/worker, relative to the working directory, and Faust makes no parents: a worker
# started anywhere but the repository's root stopped with FileNotFoundError: 'var/worker'.  The real
# worker started elsewhere is in tests/test_ingress_sources.py.)


def test_a_worker_data_directory_that_cannot_be_made_is_one_line(tmp_path, kafka_bootstrap, kafka_prefix):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QRISK_")}
    env.update(kafka_env(kafka_bootstrap, kafka_prefix, QRISK_WORKER_DATA_DIR=blocker / "worker", QRISK_WORKER_WEB_PORT=0))
    done = subprocess.run([sys.executable, "-m", "qrisk.cli_kafka", "worker"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**env, "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"qrisk worker: 无法使用 worker 数据目录 {blocker / 'worker'}（QRISK_WORKER_DATA_DIR）")
    assert f"/ cannot use the worker's data directory {blocker / 'worker'} (QRISK_WORKER_DATA_DIR): Not a directory" in lines[0]


@pytest.mark.parametrize("configured", [None, "rel/worker"])
def test_the_worker_directory_follows_the_settings_from_any_directory(tmp_path, monkeypatch, configured):
    from qrisk.topics import KafkaSettings
    from qrisk.worker import prepare_data_dir

    monkeypatch.chdir(tmp_path)
    settings = KafkaSettings(data_dir="data", worker_data_dir=configured)
    made = prepare_data_dir(settings)
    want = tmp_path / (configured or "data/worker")
    assert made == str(want) and want.is_dir()
