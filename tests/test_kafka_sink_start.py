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
