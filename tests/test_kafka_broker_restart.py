"""A broker killed (SIGKILL) and restarted while the API's producer publishes: every event that
``KafkaLog.submit`` reported as acknowledged is in the log afterwards (a private broker, so the
shared one is not disturbed)."""
from __future__ import annotations

import threading
import time

from tests.kafka_service import KafkaService, read_topic


def test_nothing_acknowledged_is_lost_across_a_broker_restart():
    from qrisk.demo import CountyGenerator
    from qrisk.kafka_log import KafkaLog, PublishError
    from qrisk.topics import KafkaSettings, create_topics

    svc = KafkaService("kafka-restart")
    svc.clean()
    svc.up()
    try:
        settings = KafkaSettings(kafka_bootstrap=svc.bootstrap, kafka_topic_prefix="restart")
        create_topics(settings)
        events = []
        for k in range(2):  # (~1,500 events: still being published well after the broker is back)
            events += [e for e in CountyGenerator(seed=30 + k, county=f"R{k}-").generate() if e.enterprise_id != "*"]
        acked: list[str] = []
        failed: list[str] = []
        done = threading.Event()

        def produce() -> None:
            with KafkaLog(settings, timeout_s=60) as log:
                for i in range(0, len(events), 10):
                    try:
                        acked.extend(o.event_id for o in log.submit(events[i:i + 10]))
                    except PublishError as exc:
                        failed.extend(exc.failed)  # reported to the caller as not accepted: may or may not be in the log
                    time.sleep(0.005)
            done.set()

        thread = threading.Thread(target=produce)
        thread.start()
        time.sleep(1.0)
        before = len(acked)
        svc.kill()
        time.sleep(1.0)
        svc.start()
        thread.join(180)
        assert done.is_set(), "the producer did not finish"
        assert before > 0 and len(acked) > before, (before, len(acked))
        in_log = {m.value and __import__("json").loads(m.value)["event_id"] for m in read_topic(svc.bootstrap, settings.topics().events.name, 60)}
        missing = [eid for eid in acked if eid not in in_log]
        assert not missing, f"{len(missing)} acknowledged events lost"
        assert len(acked) + len(failed) == len(events)
    finally:
        svc.clean()
