"""On the real broker: the changelog takes a snapshot as large as the worker may write.

Faust's producer limit (1,000,000) and the broker's ``message.max.bytes`` (1 MB) were reached by
accident: a snapshot past them stopped the worker for good.  The limits are declared now
(``qrisk.topics.STATE_MESSAGE_MAX_BYTES``), and a changelog created before gets them at start.
"""
from __future__ import annotations

import uuid

from tests.kafka_service import kafka_bootstrap, kafka_env, settings_for  # noqa: F401 - fixtures


def test_an_existing_changelog_gets_the_declared_limit_and_keeps_its_compaction(kafka_bootstrap):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic
    from kafka.errors import MessageSizeTooLargeError

    from qrisk.topics import STATE_MESSAGE_MAX_BYTES, admin_client, delete_topics, ensure_message_limit, topic_config
    from qrisk.worker import SNAPSHOT_MAX_BYTES

    settings = settings_for(kafka_env(kafka_bootstrap, f"l{uuid.uuid4().hex[:8]}"))
    spec = settings.topics().changelog
    assert ensure_message_limit(settings, spec) is None  # not there yet: Faust creates it with the declared configs
    admin = admin_client(settings)
    try:
        # as Faust created it before the limit was declared
        admin.create_topics([NewTopic(spec.name, 1, 1, topic_configs={"cleanup.policy": "compact"})])
        snapshot = b"S" * SNAPSHOT_MAX_BYTES
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=STATE_MESSAGE_MAX_BYTES, acks="all")
        try:
            try:
                producer.send(spec.name, key=b"S|0|E-1", value=snapshot, partition=0).get(timeout=30)
                raise AssertionError("the broker took a message past its default limit")
            except MessageSizeTooLargeError:
                pass  # what stopped the worker
            assert "->" in ensure_message_limit(settings, spec)
            assert topic_config(admin, spec.name, "max.message.bytes") == str(STATE_MESSAGE_MAX_BYTES)
            assert topic_config(admin, spec.name, "cleanup.policy") == "compact"
            assert "->" not in ensure_message_limit(settings, spec)  # once is enough
        finally:
            producer.close()
        # (a new producer: kafka-python's takes a refused batch as fatal for itself)
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=STATE_MESSAGE_MAX_BYTES, acks="all")
        try:
            producer.send(spec.name, key=b"S|0|E-1", value=snapshot, partition=0).get(timeout=30)
        finally:
            producer.close()
        # and a consumer with default fetch sizes reads it back (the broker hands over a larger first batch)
        consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
        try:
            tp = TopicPartition(spec.name, 0)
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            got = []
            for _ in range(40):
                for msgs in consumer.poll(timeout_ms=500).values():
                    got.extend(msgs)
                if got:
                    break
            assert [len(m.value) for m in got] == [SNAPSHOT_MAX_BYTES]
        finally:
            consumer.close()
    finally:
        admin.close()
        delete_topics(settings, [spec.name])


def test_a_refused_limit_is_said_not_ignored(monkeypatch):
    """kafka-python returns a refusal of AlterConfigs in its answer instead of raising it; the
    topic read back is what counts.  (A stand-in admin: a broker refusing AlterConfigs needs an
    authorizer and SASL, which the test broker does not run.)"""
    import dataclasses

    import pytest

    from qrisk import topics as topics_module
    from qrisk.topics import KafkaSettings, LimitRefused, ensure_message_limit

    class RefusingAdmin:  # a stand-in for a broker without AlterConfigs permission
        def list_topics(self):
            return ["q.changelog"]

        def describe_configs(self, resources):
            return {"topic": {"q.changelog": {"max.message.bytes": {"value": "1048588"}}}}

        def alter_configs(self, resources):
            return {"topic": {"q.changelog": "TopicAuthorizationFailedError"}}

        def close(self):
            pass

    monkeypatch.setattr(topics_module, "admin_client", lambda settings: RefusingAdmin())
    spec = dataclasses.replace(KafkaSettings().topics().changelog, name="q.changelog")
    with pytest.raises(LimitRefused) as refused:
        ensure_message_limit(KafkaSettings(), spec)
    assert refused.value.limit == 1048588
    assert "q.changelog" in str(refused.value) and "TopicAuthorizationFailedError" in str(refused.value)
    assert "AlterConfigs" in str(refused.value) and "max.message.bytes" in str(refused.value)


def test_an_accepted_limit_that_reads_back_late_is_not_called_refused(monkeypatch):
    """KRaft applies an accepted AlterConfigs through its metadata log: the describe right after the
    answer may still show the default (seen in CI under load).  An answer of OK is read back again
    until the new limit shows, not reported as refused."""
    import dataclasses

    from qrisk import topics as topics_module
    from qrisk.topics import KafkaSettings, ensure_message_limit

    class SlowAdmin:  # a broker whose accepted change shows on the third describe
        def __init__(self):
            self.describes = 0
            self.altered = False

        def list_topics(self):
            return ["q.changelog"]

        def describe_configs(self, resources):
            self.describes += 1
            value = "9437184" if self.altered and self.describes >= 4 else "1048588"
            return {"topic": {"q.changelog": {"max.message.bytes": {"value": value}}}}

        def alter_configs(self, resources):
            self.altered = True
            return {"topic": {"q.changelog": "OK"}}

        def close(self):
            pass

    admin = SlowAdmin()
    monkeypatch.setattr(topics_module, "admin_client", lambda settings: admin)
    spec = dataclasses.replace(KafkaSettings().topics().changelog, name="q.changelog")
    spec = dataclasses.replace(spec, config={**spec.config, "max.message.bytes": "9437184"})
    done = ensure_message_limit(KafkaSettings(), spec)
    assert "->" in done and admin.describes >= 4
