"""A running sink and the services it depends on going away: ClickHouse unreachable for a while is
said on /healthz ("degraded", the unwritten messages as lag) and nothing is lost when it is back; a
broker killed and restarted under a running sink is waited out (a reviewer's sink exited with status 2
on such a restart, and with the README's `qrisk sink &` stayed down: a Kafka error out of a poll or a
commit ended its loop).  Real services: ClickHouse through a TCP relay the test cuts, and a private
broker the test kills; and a commit is made to fail as one meeting the broker gone does, since
which call meets it first is up to timing."""
from __future__ import annotations

import socket
import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from schemas.upcast import parse_event
from tests.conftest import free_port, golden
from tests.kafka_service import KafkaService, kafka_bootstrap, kafka_env, settings_for, wait_for  # noqa: F401 - fixtures
from tests.services import clickhouse_url, drop_database, fresh_database_url  # noqa: F401 - fixtures


def _events(n: int) -> list:
    out = []
    for _ in range(n):
        doc = golden("enterprise.registered")
        doc["event_id"] = str(uuid.uuid4())
        out.append(parse_event(doc))
    return out


class Relay:
    """A TCP relay to ClickHouse's native port that can be cut (every connection closed, new ones
    refused) and restored on the same port: the database "going away" for the client alone."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        assert self.listener is not None
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # (close alone leaves a thread blocked in accept() accepting)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


def test_a_database_away_for_a_while_is_said_and_nothing_is_lost(kafka_bootstrap, clickhouse_url, monkeypatch):  # noqa: F811
    import httpx

    import qrisk.sink as sink_module
    from qrisk.kafka_log import KafkaLog
    from qrisk.pages import serve_pages
    from qrisk.sink import Sink
    from qrisk.store import migrate, open_store
    from qrisk.topics import create_topics, delete_topics

    monkeypatch.setattr(sink_module, "DEGRADED_AFTER_S", 1.0)
    settings = settings_for(kafka_env(kafka_bootstrap, f"o{uuid.uuid4().hex[:8]}"))
    create_topics(settings)
    name, url = fresh_database_url(clickhouse_url, "sinkoutage")
    direct = open_store(url)
    migrate(direct)
    parts = urlsplit(url)
    relay = Relay((parts.hostname, parts.port or 9000))
    relayed = urlunsplit(parts._replace(netloc=parts.netloc.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{relay.port}")))
    store = open_store(relayed)
    sink = Sink(store, settings, linger_s=0.05)
    pages = serve_pages("127.0.0.1", 0, sink.health, sink.metrics, "sink")
    base = f"http://127.0.0.1:{pages.server_address[1]}"
    runner = threading.Thread(target=sink.run, daemon=True)
    try:
        with KafkaLog(settings) as log:
            log.submit(_events(2))
        runner.start()
        wait_for(lambda: direct.query("SELECT count() AS n FROM events")[0]["n"] == 2, 30, "two events archived")
        relay.cut()
        with KafkaLog(settings) as log:
            log.submit(_events(3))

        def said() -> bool:
            health = httpx.get(base + "/healthz").json()
            return health["status"] == "degraded" and "ClickHouse" in (health["problem"] or "") and health["lag"] >= 3

        wait_for(said, 60, "/healthz degraded, naming the database, with the unwritten messages as lag",
                 on_timeout=lambda: httpx.get(base + "/healthz").text)
        assert "qrisk_sink_unhealthy 1" in httpx.get(base + "/metrics").text
        assert direct.query("SELECT count() AS n FROM events")[0]["n"] == 2
        relay.restore()
        wait_for(lambda: direct.query("SELECT count() AS n FROM events FINAL")[0]["n"] == 5, 60, "all five archived once back")
        wait_for(lambda: httpx.get(base + "/healthz").json()["status"] == "ok", 30, "healthy again")
        assert runner.is_alive()
    finally:
        sink.stopping.set()
        runner.join(30)
        pages.shutdown()
        sink.close()
        store.close()
        relay.cut()
        direct.close()
        drop_database(clickhouse_url, name)
        delete_topics(settings, [t.name for t in settings.topics().all()])


def test_a_running_sink_waits_out_a_broker_restart(clickhouse_url):  # noqa: F811
    from qrisk.kafka_log import KafkaLog
    from qrisk.sink import Sink
    from qrisk.store import migrate, open_store
    from qrisk.topics import KafkaSettings, create_topics

    svc = KafkaService("kafka-sink-restart")
    svc.clean()
    svc.up()
    name, url = fresh_database_url(clickhouse_url, "sinkbroker")
    store = open_store(url)
    migrate(store)
    settings = KafkaSettings(kafka_bootstrap=svc.bootstrap, kafka_topic_prefix="sinkrestart")
    create_topics(settings)
    sink = Sink(store, settings, linger_s=0.05)
    failed: list[BaseException] = []

    def run() -> None:
        try:
            sink.run()
        except BaseException as exc:  # noqa: BLE001 - what the test asserts did not happen
            failed.append(exc)

    from kafka.errors import KafkaConnectionError

    real_commit = sink.consumer.commit
    refused: list[int] = []

    def commit(*args, **kwargs):
        if not refused:  # the first commit fails as one that meets the broker gone
            refused.append(1)
            raise KafkaConnectionError("Connection at 127.0.0.1 closed (the broker restarting)")
        return real_commit(*args, **kwargs)

    real_poll = sink.consumer.poll
    polled: list[bool] = []

    def poll(*args, **kwargs):
        # the poll collecting more for a batch already begun meets the broker gone once: what the first
        # poll took must still be written (the consumer's position has passed it)
        if polled and polled[-1] and polled.count(True) == 1 and "raised" not in polled:
            polled.append("raised")
            raise KafkaConnectionError("Connection at 127.0.0.1 closed (the broker restarting)")
        got = real_poll(*args, **kwargs)
        polled.append(bool(got))
        return got

    runner = threading.Thread(target=run, daemon=True)
    try:
        with KafkaLog(settings) as log:
            log.submit(_events(2))
        sink.consumer.commit = commit
        sink.consumer.poll = poll
        runner.start()
        wait_for(lambda: store.query("SELECT count() AS n FROM events")[0]["n"] == 2, 60, "two events archived")
        svc.kill()
        time.sleep(3)  # the sink polls, commits and looks up its topics meanwhile: it exited here within a second
        assert runner.is_alive(), failed
        svc.start()
        with KafkaLog(settings, timeout_s=60) as log:
            log.submit(_events(3))
        wait_for(lambda: store.query("SELECT count() AS n FROM events FINAL")[0]["n"] == 5 or not runner.is_alive(), 120,
                 "the three sent after the restart archived")
        assert not failed and runner.is_alive(), failed
        assert refused and "raised" in polled and sink.stats["broker_errors"] >= 1
        assert store.query("SELECT count() AS n FROM events FINAL")[0]["n"] == 5
        assert sink.unhealthy is None  # said while Kafka was away, not after
    finally:
        sink.stopping.set()
        runner.join(30)
        sink.close()
        store.close()
        drop_database(clickhouse_url, name)
        svc.clean()
