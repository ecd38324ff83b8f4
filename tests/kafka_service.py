"""A real Kafka broker for the tests, through scripts/kafka.sh.

The shared broker: ``QRISK_TEST_KAFKA_BOOTSTRAP`` when the caller set it (scripts/services.sh up
starts it; the README's test command and .ci/run do); otherwise this module runs
``scripts/kafka.sh up`` itself.  A broker that cannot be reached fails the tests — it never
skips them.

Fixtures (import them into a test module to use them):

* ``kafka_bootstrap`` (session) — ``host:port`` of the shared broker;
* ``kafka_prefix`` (function) — a fresh topic prefix with its topics created, deleted afterwards.

``KafkaService`` starts a private broker (own ports, own folder under var/, the shared jars) that
a test may stop, kill and restart.  ``WorkerProcess`` runs ``qrisk worker`` as a real process.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterable

import pytest

ROOT = Path(__file__).resolve().parent.parent
# kafka-python cannot decode Faust's group metadata and logs each member's whole assignment, some 10 kB,
# at every look at the group: a failing Kafka test's captured log was these, and its own words scrolled away
logging.getLogger("kafka.admin._groups").setLevel(logging.ERROR)
SCRIPT = ROOT / "scripts" / "kafka.sh"
DEFAULT_PORT = "19092"


def _kafka(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def shared_bootstrap() -> str:
    bootstrap = os.environ.get("QRISK_TEST_KAFKA_BOOTSTRAP")
    if bootstrap:
        return bootstrap
    done = _kafka("up")
    if done.returncode != 0:
        pytest.fail(f"scripts/kafka.sh up failed ({done.returncode}):\n{done.stderr}\n{done.stdout}", pytrace=False)
    return f"127.0.0.1:{os.environ.get('QRISK_KAFKA_PORT', DEFAULT_PORT)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shared_libs() -> str | None:
    """The jar folder of the shared broker, so a private broker need not copy them again."""
    version = os.environ.get("QRISK_KAFKA_VERSION", "4.1.1")
    libs = ROOT / "var" / "kafka" / f"libs-{version}"
    return str(libs) if (libs / ".complete").exists() else None


class KafkaService:
    """A private broker started by scripts/kafka.sh in its own folder."""

    def __init__(self, name: str):
        self.var_dir = ROOT / "var" / name
        self.port = free_port()
        self.env = {"QRISK_VAR_DIR": str(self.var_dir), "QRISK_KAFKA_PORT": str(self.port),
                    "QRISK_KAFKA_CONTROLLER_PORT": str(free_port()), "QRISK_KAFKA_HEAP": "384m",
                    # killed on purpose: its old registration lapses in 3 s, not 9 (the restart waits for it)
                    "QRISK_KAFKA_SESSION_MS": "3000", "QRISK_KAFKA_HEARTBEAT_MS": "500"}
        libs = shared_libs()
        if libs:
            self.env["QRISK_KAFKA_LIBS"] = libs

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, action: str) -> str:
        done = _kafka(action, env=self.env)
        if done.returncode != 0:
            raise RuntimeError(f"kafka.sh {action} failed:\n{done.stderr}")
        return done.stderr

    def up(self) -> "KafkaService":
        self._run("up")
        return self

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")

    def kill(self) -> None:
        self._run("kill")

    def clean(self) -> None:
        self._run("clean")


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    bootstrap = shared_bootstrap()
    from kafka import KafkaAdminClient

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        admin.list_topics()
        admin.close()
    except Exception as exc:  # noqa: BLE001 - a missing broker fails the run
        pytest.fail(f"Kafka broker at {bootstrap} does not answer: {exc}", pytrace=False)
    return bootstrap


def kafka_env(bootstrap: str, prefix: str, **extra: Any) -> dict[str, str]:
    """Environment for qrisk's Kafka commands on one isolated set of topics."""
    env = {"QRISK_KAFKA_BOOTSTRAP": bootstrap, "QRISK_KAFKA_TOPIC_PREFIX": prefix, "QRISK_WORKER_APP_ID": f"{prefix}-worker",
           "QRISK_SINK_GROUP": f"{prefix}-sink", "QRISK_KAFKA_PARTITIONS": "4", "QRISK_WORKER_VIEW_SECONDS": "1"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def settings_for(env: dict[str, str]):
    from qrisk.topics import KafkaSettings

    return KafkaSettings(**{k[len("QRISK_"):].lower(): v for k, v in env.items() if k.startswith("QRISK_")})


@pytest.fixture
def kafka_prefix(kafka_bootstrap):
    """A fresh topic prefix with the declared topics created; they (and the changelog) are deleted afterwards."""
    from qrisk.topics import create_topics, delete_topics

    prefix = f"t{uuid.uuid4().hex[:8]}"
    settings = settings_for(kafka_env(kafka_bootstrap, prefix))
    create_topics(settings)
    yield prefix
    try:
        delete_topics(settings, [t.name for t in settings.topics().all()])
    except Exception:  # noqa: BLE001 - cleanup only
        pass


class WorkerProcess:
    """``qrisk worker`` as a real process (its own Faust data dir), logging to a file; ``script``: a
    file that runs ``qrisk.cli_kafka`` with a fault put in (tests/stalled_restore_worker.py)."""

    def __init__(self, env: dict[str, str], workdir: Path, name: str, web_port: int = 0, script: Path | None = None):
        self.web_port = web_port
        self.entry = [str(script)] if script else ["-m", "qrisk.cli_kafka"]
        self.env = {**os.environ, **env, "QRISK_WORKER_DATA_DIR": str(workdir / name), "QRISK_WORKER_WEB_PORT": str(web_port),
                    "PYTHONUNBUFFERED": "1"}
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, *self.entry, "worker", "--loglevel", "info"], cwd=ROOT,
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode if self.proc else None

    def tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


# ----------------------------------------------------------------------------- reading topics back


def read_topic(bootstrap: str, topic: str, timeout_s: float = 10.0) -> list[Any]:
    """Every message of a topic, from the beginning to the end offsets as of now."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: could not read to the end offsets {end}")
            for _, msgs in consumer.poll(timeout_ms=500).items():
                out.extend(msgs)
        return out
    finally:
        consumer.close()


def group_lag(bootstrap: str, group: str, topics: Iterable[str]) -> int:
    """Messages of ``topics`` the consumer group has not committed yet (all of a partition it never committed)."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    from kafka.errors import CoordinatorNotAvailableError, NotCoordinatorError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        try:
            committed = admin.list_group_offsets(group).get(group, {})
        except (CoordinatorNotAvailableError, NotCoordinatorError):
            return sys.maxsize  # the coordinator is still moving: nothing known as committed yet
        lag = 0
        for topic in topics:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or set())]
            end = consumer.end_offsets(tps)
            for tp in tps:
                meta = committed.get(tp)
                lag += end[tp] - (meta.offset if meta is not None and meta.offset >= 0 else 0)
        return lag
    finally:
        consumer.close()
        admin.close()


def wait_for(predicate, timeout_s: float, what: str, interval: float = 0.5, on_timeout=None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    extra = on_timeout() if on_timeout else ""
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}\n{extra}")


def latest_credit_files(bootstrap: str, topic: str) -> dict[str, dict[str, Any]]:
    """The newest credit file of each enterprise on the compacted credit-files topic."""
    best: dict[str, dict[str, Any]] = {}
    for m in read_topic(bootstrap, topic):
        if m.value is None:
            continue
        doc = json.loads(m.value)
        if doc["enterprise_id"] not in best or doc["version"] >= best[doc["enterprise_id"]]["version"]:
            best[doc["enterprise_id"]] = doc
    return best
