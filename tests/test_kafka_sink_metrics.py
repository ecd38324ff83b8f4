"""The sink's /healthz and /metrics (QRISK_SINK_METRICS_PORT): what an operator watches — how far
behind the log it is, and whether it is stuck on a database the migrations did not make."""
from __future__ import annotations

import time
import uuid

import httpx

from schemas.upcast import parse_event
from tests.conftest import golden
from tests.kafka_service import kafka_bootstrap, kafka_env, settings_for, wait_for  # noqa: F401 - fixtures
from tests.services import clickhouse_url, drop_database, fresh_database_url  # noqa: F401 - fixtures


def _events(n: int) -> list:
    out = []
    for _ in range(n):
        doc = golden("enterprise.registered")
        doc["event_id"] = str(uuid.uuid4())
        out.append(parse_event(doc))
    return out


def test_the_sink_reports_its_lag_and_counts(kafka_bootstrap, clickhouse_url):  # noqa: F811 - fixtures
    from qrisk.kafka_log import KafkaLog
    from qrisk.pages import serve_pages
    from qrisk.sink import Sink
    from qrisk.store import migrate, open_store
    from qrisk.topics import create_topics, delete_topics

    settings = settings_for(kafka_env(kafka_bootstrap, f"m{uuid.uuid4().hex[:8]}"))
    create_topics(settings)
    name, url = fresh_database_url(clickhouse_url, "sinkmetrics")
    store = open_store(url)
    migrate(store)
    sink = Sink(store, settings, linger_s=0.05)
    pages = serve_pages("127.0.0.1", 0, sink.health, sink.metrics, "sink")
    base = f"http://127.0.0.1:{pages.server_address[1]}"
    try:
        with KafkaLog(settings) as log:
            log.submit(_events(5))

        def archived(n: int):
            def done() -> bool:
                sink.run_once(200)
                return store.query("SELECT count() AS n FROM events")[0]["n"] == n
            return done

        wait_for(archived(5), 30, "five events archived")
        sink.measure_lag()
        health = httpx.get(base + "/healthz").json()
        assert health["status"] == "ok" and health["problem"] is None and health["lag"] == 0, health
        assert health["messages"] >= 5 and health["last_batch_seconds_ago"] is not None
        text = httpx.get(base + "/metrics").text
        assert "# HELP qrisk_sink_lag_messages" in text and "# TYPE qrisk_sink_messages_total counter" in text
        assert f'qrisk_sink_lag_messages{{partition="0",topic="{settings.topics().events.name}"}} 0' in text, text
        assert "qrisk_sink_unhealthy 0" in text

        # seven more in the log, none read yet: the lag says so once the consumer has seen the end
        with KafkaLog(settings) as log:
            log.submit(_events(7))

        def behind() -> bool:
            # fetch without writing: a poll advances the high watermark the consumer knows
            records = sink.consumer.poll(timeout_ms=200, max_records=1)
            for tp, messages in records.items():
                sink.consumer.seek(tp, messages[0].offset)  # read again by the next run_once
            sink.measure_lag()
            return sum(sink.lag.values()) >= 7

        wait_for(behind, 30, "the lag of seven unread events")
        assert httpx.get(base + "/healthz").json()["lag"] >= 7
        wait_for(archived(12), 30, "all twelve archived")
        sink.measure_lag()
        assert httpx.get(base + "/healthz").json()["lag"] == 0
        assert httpx.get(base + "/nothing").status_code == 404
    finally:
        pages.shutdown()
        sink.close()
        store.close()
        drop_database(clickhouse_url, name)
        delete_topics(settings, [t.name for t in settings.topics().all()])


def test_a_sink_stuck_on_a_table_says_degraded():
    from qrisk.sink import Sink

    class Idle:
        def assignment(self) -> set:
            return set()

    sink = Sink(store=None, consumer=Idle())
    assert sink.health()["status"] == "ok"
    sink.unhealthy = "stream_effects: ServerException: table does not exist"
    health = sink.health()
    assert health["status"] == "degraded" and "stream_effects" in health["problem"]
    assert b"qrisk_sink_unhealthy 1" in sink.metrics()


def test_metrics_are_written_exactly():
    from qrisk.pages import prometheus_text

    text = prometheus_text([("a_total", "counter", "a", 12345678), ("b", "gauge", "b", 0.25)],
                           [("c", "gauge", "c", [({"p": "0"}, 10**12 + 1)])]).decode()
    assert "a_total 12345678\n" in text and "b 0.25\n" in text and 'c{p="0"} 1000000000001\n' in text


def test_a_batch_stops_collecting_at_its_byte_bound(kafka_bootstrap, clickhouse_url):  # noqa: F811 - fixtures
    """QRISK_SINK_BATCH_BYTES: once a batch holds that many bytes it is written without lingering for more (credit-file
    views run to megabytes: 5,000 of them, a backlog after an outage, would hold gigabytes)."""
    from qrisk.kafka_log import KafkaLog
    from qrisk.sink import Sink
    from qrisk.store import migrate, open_store
    from qrisk.topics import create_topics, delete_topics

    settings = settings_for(kafka_env(kafka_bootstrap, f"b{uuid.uuid4().hex[:8]}"))
    settings = settings.model_copy(update={"sink_batch_bytes": 1})
    create_topics(settings)
    name, url = fresh_database_url(clickhouse_url, "sinkbytes")
    store = open_store(url)
    migrate(store)
    sink = Sink(store, settings, linger_s=30.0)  # (without the bound, one batch would wait 30 s for more)
    polls = []
    poll = sink.consumer.poll
    sink.consumer.poll = lambda *a, **k: polls.append(1) or poll(*a, **k)
    try:
        with KafkaLog(settings) as log:
            log.submit(_events(3))
        written = 0
        for _ in range(100):
            polls.clear()
            started = time.monotonic()
            written = sink.run_once(200)
            if written:
                break
        assert written >= 1 and len(polls) == 1 and time.monotonic() - started < 15, (written, polls)
    finally:
        sink.close()
        store.close()
        drop_database(clickhouse_url, name)
        delete_topics(settings, [t.name for t in settings.topics().all()])
