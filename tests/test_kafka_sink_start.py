"""A sink started before its topics exist (an operator's first `qrisk sink` before `qrisk topics
create`) picks them up once they appear.

(The related race seen once in CI, a group joined before the consumer's metadata listed the
partitions of existing topics, is what ``metadata_max_age_ms`` in ``Sink._consumer`` bounds; it
is timing-dependent and not reproduced here.)"""
from __future__ import annotations

import uuid

from schemas.upcast import parse_event
from tests.conftest import golden
from tests.kafka_service import kafka_bootstrap, kafka_env, settings_for, wait_for  # noqa: F401 - fixtures
from tests.services import clickhouse_url, drop_database, fresh_database_url  # noqa: F401 - fixtures


def test_a_sink_started_before_its_topics_picks_them_up(kafka_bootstrap, clickhouse_url):  # noqa: F811 - fixtures
    from qrisk.kafka_log import KafkaLog
    from qrisk.sink import Sink
    from qrisk.store import migrate, open_store
    from qrisk.topics import create_topics, delete_topics

    settings = settings_for(kafka_env(kafka_bootstrap, f"t{uuid.uuid4().hex[:8]}"))
    name, url = fresh_database_url(clickhouse_url, "sinkstart")
    store = open_store(url)
    migrate(store)
    sink = Sink(store, settings)
    try:
        for _ in range(3):
            assert sink.run_once(200) == 0  # nothing to read: the topics are not there yet
        create_topics(settings)
        event = parse_event(golden("enterprise.registered"))
        with KafkaLog(settings) as log:
            log.submit([event])

        def archived() -> bool:
            sink.run_once(200)
            return store.query("SELECT count() AS n FROM events")[0]["n"] == 1

        wait_for(archived, 30, "the event archived by a sink that started before its topics")
    finally:
        sink.close()
        store.close()
        drop_database(clickhouse_url, name)
        delete_topics(settings, [t.name for t in settings.topics().all()])


def test_an_idle_sink_with_partitions_to_read_asks_to_rejoin(monkeypatch, kafka_bootstrap):  # noqa: F811 - fixture
    """The client-side watchdog for the race above, with the consumer as a stand-in (the race
    itself depends on timing inside kafka-python)."""
    from qrisk import sink as sink_module
    from qrisk.sink import Sink

    class Coordinator:
        rejoins = 0

        def request_rejoin(self) -> None:
            Coordinator.rejoins += 1

    class IdleConsumer:  # a stand-in: joined, assigned nothing, while the topics have partitions
        _coordinator = Coordinator()

        def poll(self, timeout_ms: int, max_records: int) -> dict:
            return {}

        def assignment(self) -> set:
            return set()

        def partitions_for_topic(self, topic: str) -> set:
            return {0, 1, 2, 3}

    now = [1000.0]
    monkeypatch.setattr(sink_module.time, "monotonic", lambda: now[0])
    sink = Sink(store=None, settings=settings_for(kafka_env(kafka_bootstrap, "tidle")), consumer=IdleConsumer())
    for step in range(0, 70, 2):  # 70 s idle, polled every 2 s
        now[0] = 1000.0 + step
        assert sink.run_once(200) == 0
    assert Coordinator.rejoins == 2  # after 10 s idle, then at most every 30 s
