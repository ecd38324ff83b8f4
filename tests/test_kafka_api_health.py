"""The API in Kafka mode says when it cannot take events, and when it cannot read.

``/healthz`` answered a fixed "ok" and ``/readyz`` "ready" in Kafka mode: with the broker down every
POST waited a minute for its 503 while a load balancer kept sending there.  A private broker (the
shared one is not stopped) is stopped under the API and started again; the ClickHouse database the
reads come from is dropped under it.
"""
from __future__ import annotations

import time
import uuid

import pytest
from fastapi.testclient import TestClient

from tests.conftest import golden
from tests.kafka_service import KafkaService, kafka_bootstrap, wait_for  # noqa: F401 - fixtures
from tests.services import clickhouse_url, drop_database, fresh_database_url  # noqa: F401 - fixtures


def _event(eid: str) -> dict:
    doc = golden("enterprise.registered")
    doc["event_id"] = str(uuid.uuid4())
    doc["enterprise_id"] = eid
    return doc


@pytest.fixture
def api(tmp_path, clickhouse_url, kafka_bootstrap):  # noqa: F811 - fixture
    """The Kafka-mode app over the shared broker (topics of its own, deleted afterwards) and a fresh ClickHouse database."""
    yield from _app(tmp_path, clickhouse_url, kafka_bootstrap, f"h{uuid.uuid4().hex[:8]}", delete_topics=True)


@pytest.fixture
def api_private(tmp_path, clickhouse_url):  # noqa: F811 - fixture
    """The same over a private broker, for a test that stops it (starting one takes ~10 s)."""
    svc = KafkaService("kafka-api-health")
    svc.clean()
    svc.up()
    try:
        yield from _app(tmp_path, clickhouse_url, svc.bootstrap, "health", svc=svc, delete_topics=False)
    finally:
        svc.clean()


def _app(tmp_path, clickhouse_url, bootstrap, prefix, svc=None, *, delete_topics: bool):  # noqa: F811 - a URL
    """The app (the producer gives up within seconds, not a minute, so that a test does not wait for it)."""
    from qrisk.api import create_app
    from qrisk.auth import KeyStore
    from qrisk.kafka_api import DistributedBackend
    from qrisk.kafka_log import KafkaLog
    from qrisk.runtime import default_rules
    from qrisk.store import ClickHouseStore, migrate
    from qrisk.topics import KafkaSettings, create_topics

    name, url = fresh_database_url(clickhouse_url, "kafka_health")
    store = ClickHouseStore(url)
    migrate(store)
    settings = KafkaSettings(kafka_bootstrap=bootstrap, kafka_topic_prefix=prefix, kafka_partitions=1)
    create_topics(settings)
    log = KafkaLog(settings, timeout_s=8, max_block_ms=4000, request_timeout_ms=3000, delivery_timeout_ms=6000)
    backend = DistributedBackend(settings, store, default_rules(None), log=log)
    keys = KeyStore(tmp_path / "keys.json")
    _, token = keys.create("admin", "test-admin", actor="tests")
    app = create_app(backend, keys=keys)
    try:
        with TestClient(app) as client:
            yield {"client": client, "admin": {"authorization": f"Bearer {token}"}, "svc": svc, "clickhouse": clickhouse_url, "db": name,
                   "backend": backend}
    finally:
        drop_database(clickhouse_url, name)
        if delete_topics:
            from qrisk.topics import delete_topics as delete

            delete(settings, [t.name for t in settings.topics().all()])


def test_readiness_and_health_follow_the_broker(api_private):
    api = api_private
    client, admin, svc = api["client"], api["admin"], api["svc"]
    assert client.post("/v1/events", json=_event("E-RDY-1"), headers=admin).status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/healthz", headers=admin).json()["status"] == "ok"

    svc.stop()
    t0 = time.monotonic()
    refused = client.post("/v1/events", json=_event("E-RDY-2"), headers=admin)
    assert refused.status_code == 503, refused.text
    assert time.monotonic() - t0 < 30
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.headers["retry-after"] == "5"
    assert ready.json()["status"] == "not_ready" and "拒绝写入" in ready.json()["message"]
    health = client.get("/healthz", headers=admin).json()
    assert health["status"] == "degraded" and health["event_log"] == "kafka", health
    zh, en = health["problems"]["event_log"].split(" / ", 1)
    assert "Kafka" in zh and "503" in zh and "已拒绝 1 个事件" in zh  # Chinese first, for the operator
    assert "(Kafka) refuses writes since" in en and "1 events refused" in en
    public = client.get("/healthz").json()  # without a key: that there is a problem, not its details
    assert public["status"] == "degraded" and "since" not in public["problems"]["event_log"]

    svc.start()
    deadline = time.monotonic() + 90
    while client.post("/v1/events", json=_event("E-RDY-3"), headers=admin).status_code != 200:
        assert time.monotonic() < deadline, "the broker back, events are still refused"
        time.sleep(1)
    assert client.get("/readyz").status_code == 200
    health = client.get("/healthz", headers=admin).json()
    assert health["status"] == "ok" and "problems" not in health, health


def test_health_says_when_clickhouse_cannot_be_read(api):
    from tests.services import drop_database

    client, admin = api["client"], api["admin"]
    assert client.get("/healthz", headers=admin).json()["status"] == "ok"
    drop_database(api["clickhouse"], api["db"])  # every read of the API fails now

    def degraded() -> bool:
        return client.get("/healthz", headers=admin).json()["status"] == "degraded"

    wait_for(degraded, 30, "/healthz to say the store cannot be read")
    health = client.get("/healthz", headers=admin).json()
    zh, en = health["problems"]["store"].split(" / ", 1)
    assert "ClickHouse" in zh and "无法读取" in zh and "cannot be read" in en, health
    assert "problems" in client.get("/healthz").json()  # named to anyone, detailed to admin and monitor keys
    assert client.get("/readyz").status_code == 200  # events are still taken: the log is Kafka


def test_a_dead_letter_the_broker_takes_does_not_say_the_event_log_is_healthy(api):
    """(The round's diff review) the dead-letter topic is another topic: it may take writes while the events topic
    refuses them.  One bad input (422, its dead letter written) said the log was healthy again while every event got
    503.  Here the events topic takes no message as large as an event (the broker refuses the batch)."""
    from kafka.admin import ConfigResource, ConfigResourceType

    from qrisk.topics import admin_client, topic_config

    client, admin, backend = api["client"], api["admin"], api["backend"]
    events = backend.settings.topics().events.name
    kafka = admin_client(backend.settings)
    try:
        kafka.alter_configs([ConfigResource(ConfigResourceType.TOPIC, events, configs={"max.message.bytes": "200"})])
        wait_for(lambda: topic_config(kafka, events, "max.message.bytes") == "200", 30, "the events topic's max.message.bytes")
    finally:
        kafka.close()
    assert client.post("/v1/events", json=_event("E-DL-1"), headers=admin).status_code == 503
    bad = _event("E-DL-2")
    bad["payload"]["name"] = 12345
    assert client.post("/v1/events", json=bad, headers=admin).status_code == 422  # its dead letter is taken
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz", headers=admin).json()["status"] == "degraded"
    # kafka-python's producer failed every send after the refusal, to any topic (the dead letter above got a 500):
    # replaced, it takes events again once the topic does
    assert backend.log.producers_replaced >= 1
    kafka = admin_client(backend.settings)
    try:
        kafka.alter_configs([ConfigResource(ConfigResourceType.TOPIC, events, configs={"max.message.bytes": "1048588"})])
        wait_for(lambda: topic_config(kafka, events, "max.message.bytes") == "1048588", 30, "the events topic's limit back")
    finally:
        kafka.close()
    assert client.post("/v1/events", json=_event("E-DL-3"), headers=admin).status_code == 200
    assert client.get("/healthz", headers=admin).json()["status"] == "ok"
