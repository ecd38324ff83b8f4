"""Distributed mode: every Kafka topic qrisk uses, declared in one place, and the Kafka settings.

``qrisk topics create`` creates what is declared here (partitions, retention, compaction) and
checks what already exists; the producers (``qrisk.kafka_log``), the Faust workers
(``qrisk.worker``) and the sink (``qrisk.sink``) take their topic names from here.

| topic | key | value | partitions | retention |
|---|---|---|---|---|
| ``qrisk.ingress.<source>`` (lab, complaint, inspection, bureau, import) | enterprise_id when readable | the bytes as received; each topic admits what its HTTP role may post (``INGRESS_ROLES``) | P | 7 days |
| ``qrisk.events`` — the normalised event log | enterprise_id (``*`` for a clock.tick, sent to every partition) | the validated event (JSON) | P | forever |
| ``qrisk.dead-letters`` | dead_letter_id | original bytes + reason + source position (JSON) | 1 | 90 days |
| ``qrisk.effects`` | enterprise_id | one event's effects on one credit file, with derived rows (JSON) | P | 30 days |
| ``qrisk.credit-files`` | enterprise_id | the newest credit file (JSON) | P | compacted |
| ``qrisk-worker-files-changelog`` (Faust) | ``S|p|id`` / ``E|p|id|v`` / ``W|p`` | snapshot / applied event / last folded offset | P | compacted |

P is ``QRISK_KAFKA_PARTITIONS`` (default 4).  The log's partition count is fixed once the log
exists: an enterprise's events and its state live on the partition its id hashes to, so
changing the count would move enterprises away from their state (``topics create`` refuses).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path
from typing import Any, Iterable, Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DAY_MS = 24 * 3600 * 1000

STATE_MESSAGE_MAX_BYTES = 9 * 1024 * 1024
"""The largest changelog message (a worker's snapshot, ``qrisk.worker.SNAPSHOT_MAX_BYTES``, with its
key and record batch): the workers' producer ``max_request_size`` and the changelog's
``max.message.bytes``.  Left to the defaults (1,000,000 and the broker's 1 MB) a snapshot that grew
past them stopped the worker, every partition it held, at each start again."""

EVENT_MAX_BYTES = 1_000_000
"""The largest event, in bytes, on every way into the log: an ingress record (``qrisk produce``
checks before it sends), a log message the worker writes, an event the API publishes.  The
ingress topics and the log take messages up to ``LOG_MESSAGE_MAX_BYTES``; the difference leaves
room for the key, the headers, the record batch and the ``received_at`` the worker stamps on."""

LOG_MESSAGE_MAX_BYTES = 1_048_588
"""``max.message.bytes`` of the ingress topics and the log: the broker's default, declared so that
what the producers check against is what the topics take."""

LETTER_MESSAGE_MAX_BYTES = STATE_MESSAGE_MAX_BYTES
"""``max.message.bytes`` of the dead-letter topic, and the producers' ``max_request_size``.  A
letter carries the refused bytes (base64 for binary: 4/3 of them; JSON-escaped text: up to 6x for
control characters) with the reason and the errors: an ingress record of up to
``LOG_MESSAGE_MAX_BYTES`` fits with room.  Left to the broker's 1 MB, a ~900 kB binary record's
letter (~1.2 MB) was refused and the worker stopped at every start on the same record.  A letter
larger still (an 8 MiB HTTP body) is kept bounded (``qrisk.kafka_log.dead_letter_value``)."""

EFFECTS_MESSAGE_MAX_BYTES = STATE_MESSAGE_MAX_BYTES
"""``max.message.bytes`` of the effects topic.  One event's effects carry its derived rows (a sample's
items, its judgement, the alert steps with their evidence and notifications), several times the
event: a 437 kB sampling.result of 200 items the catalogue lacks, each failed by the lab, made a 3 MB
message.  Left to the broker's 1 MB it was refused, and the worker stopped at every start on the same
event, every enterprise of its partition with it.  Larger still, the message is replaced by a
``processing.failed`` one and dead-lettered (``qrisk.worker.oversized_effects``)."""

EFFECTS_RETENTION_DAYS = 30
"""How long the effects topic keeps a message: the sink must have written it to ClickHouse by then.  At
the 7 days of the ingress topics, a ClickHouse server down for a week lost every effect the sink had not
written — stream_effects, judgements, alerts, notifications — and nothing said so (the sink does now:
``qrisk_sink_lost_messages_total``).  The effects are a few kB per event: a month costs little disk and
leaves time to mend a server."""

VIEW_MESSAGE_MAX_BYTES = STATE_MESSAGE_MAX_BYTES
"""``max.message.bytes`` of the credit-files topic: a view is the whole credit file (224 kB for a
busy demo enterprise after one year), and a view past the broker's 1 MB stopped the worker at
every views interval.  A view larger still is skipped, logged and counted (``qrisk.worker``)."""

INGRESS_SOURCES = ("lab", "complaint", "inspection", "bureau", "import")
"""One ingress topic per kind of source; ``qrisk produce --source`` picks one."""

INGRESS_ROLES: dict[str, str] = {"lab": "lab", "complaint": "complaint", "inspection": "inspector", "bureau": "bureau", "import": "admin"}
"""The HTTP role (``qrisk.auth.ROLES``) each ingress topic stands for.  A topic admits the event
types and the ``source.kind`` that role may post over HTTP (``qrisk.auth.posting_rules``, read from
there so that the two cannot drift apart); the workers dead-letter anything else
(``IngressAdmission.refusal``).  Without this, a message on ``qrisk.ingress.lab`` could register an
enterprise or speak as the bureau, which no lab key may do.

What a topic cannot check is *which* lab (channel, inspector) sent a message: Kafka hands the
consumer no authenticated sender, only the topic.  So ``source.id`` is taken as written, and the
topic's writers are trusted for it, as a key bound to no source id is over HTTP: grant write
access to an ingress topic (Kafka ACLs) only to a system that may speak for every source of its
kind (the bureau's lab gateway), and ``qrisk.ingress.import`` — which admits what an admin key may
post — only to the bureau's own importers.  A lab that must be held to its own CMA number posts
over HTTP with a key bound to it (``qrisk keys create --role lab --lab …``)."""


@dataclasses.dataclass(frozen=True)
class IngressAdmission:
    """What one ingress topic admits: the event types and the ``source.kind`` of its HTTP role."""

    topic: str
    source: str  # lab, complaint, … (the topic's suffix)
    role: str
    event_types: frozenset[str]
    source_kind: str | None  # None: any kind (the import topic, as an admin key)

    def refusal(self, event: Any) -> dict[str, Any] | None:
        """None when the topic admits ``event``; else the error, naming the field, the topic and why
        (``type: forbidden``, as an HTTP key's refusal), in English and Chinese."""
        if event.event_type == "clock.tick":
            return tick_refusal(self.topic)
        if event.event_type not in self.event_types:
            allowed = ", ".join(sorted(self.event_types))
            return {"field": "event_type", "type": "forbidden", "topic": self.topic,
                    "reason": f"topic {self.topic} admits only {allowed} (what a {self.role} key may post), not {event.event_type}",
                    "reason_zh": f"主题 {self.topic} 只接收 {allowed}（与 {self.role} 角色密钥可提交的相同），不接收 {event.event_type}"}
        if self.source_kind is not None and event.source.kind != self.source_kind:
            return {"field": "source.kind", "type": "forbidden", "topic": self.topic,
                    "reason": f"topic {self.topic} admits only source kind {self.source_kind!r}, not {event.source.kind!r}",
                    "reason_zh": f"主题 {self.topic} 只接收来源类型 {self.source_kind} 的事件，而不是 {event.source.kind}"}
        return None


def tick_refusal(where: str) -> dict[str, Any]:
    """The error of a clock.tick sent through an ingress topic (``where``: the topic, or the file
    ``qrisk produce`` reads).  A tick must reach every log partition after the events sent before
    it; through a partitioned ingress topic the worker wrote it to every log partition ahead of
    events still queued on the other ingress partitions, and rectifications completed on time were
    marked overdue.  ``qrisk tick`` (and the API) write ticks to the log directly."""
    return {"field": "event_type", "type": "forbidden", "topic": where,
            "reason": f"clock.tick is not taken through an ingress topic ({where}): it would overtake events still queued "
                      f"on other partitions; send ticks with `qrisk tick`, or a file that holds them with `qrisk import FILE --url` "
                      f"to the API (each tick in its place)",
            "reason_zh": f"clock.tick 不能经接收主题（{where}）发送：它会越过其他分区上尚在排队的事件；请用 `qrisk tick` 发送时钟事件，"
                         f"含时钟事件的文件请用 `qrisk import 文件 --url` 经 API 导入（时钟事件按其在文件中的位置写入）"}


class KafkaSettings(BaseSettings):
    """Settings of the distributed runtime (environment, prefix ``QRISK_``)."""

    model_config = SettingsConfigDict(env_prefix="QRISK_", extra="ignore", allow_inf_nan=False)  # (a number of seconds, not inf)

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic_prefix: str = "qrisk"
    kafka_partitions: int = 4
    kafka_replication: int = 1
    # the Faust app id: consumer group of the workers and prefix of their changelog topics
    worker_app_id: str = "qrisk-worker"
    worker_batch: int = 500  # events per processing batch
    worker_batch_seconds: float = 0.02  # … or what arrived within this time
    worker_inflight_batches: int = 8  # folded batches waiting for the broker's acknowledgements before the fold waits
    worker_snapshot_every: int = 100  # applied events per enterprise between state snapshots
    # changed credit files go to the credit-files topic (and so to ClickHouse's credit_files) at most this often:
    # a view is the whole file (~65 kB for a year of a demo enterprise), so under load every file is
    # re-sent each interval; 5 s cost the fold a third of its time in the benchmark, and at 15 s the views
    # were still ~9 kB per event at 1k events/s (more than effects and log together).  60 s, as the
    # embedded runtime's snapshots (QRISK_SNAPSHOT_SECONDS): the credit file itself is in memory
    worker_view_seconds: float = 60.0
    # a worker's fetches wait for this many bytes or this long, whichever comes first (qrisk.faust_app):
    # Faust's 1 byte made the broker answer every fetch with a handful of messages
    worker_fetch_min_bytes: int = 64 * 1024
    worker_fetch_max_wait_ms: int = 10
    # the worker's event loop: uvloop (libuv) took ~10 % off the worker's CPU per event in bench_kafka
    # (asyncio's pure-Python loop ran for every message and timer); "asyncio" for the standard one
    worker_loop: Literal["uvloop", "asyncio"] = "uvloop"
    worker_session_timeout: float = 10.0  # seconds until a dead worker's partitions move to the others
    # a table partition whose restore gets no record this long, with records left to read, is read by the worker
    # itself (qrisk.faust_app.App._watch_restores): Faust would wait for it for good
    worker_restore_stall_seconds: float = 30.0
    worker_web_port: int = 6066  # Faust's web server (health, metrics); 0 turns it off
    # … on this address: 0.0.0.0 in a container (its probe), else loopback (Faust's pages have no key)
    worker_web_host: str = "127.0.0.1"
    # Faust's local data (table offsets); unset: `worker` in QRISK_DATA_DIR (``worker_dir``), made at start
    worker_data_dir: str | None = None
    # the sink
    sink_group: str = "qrisk-sink"
    sink_batch: int = 5000
    # and at most this many bytes of messages: a credit-file view may be megabytes, so a batch of 5,000 of them
    # (a backlog after an outage) would hold gigabytes with its parsed copies and rows
    sink_batch_bytes: int = 64 * 1024 * 1024
    sink_heartbeat_file: str | None = None  # touched after every poll: a health check reads its age
    sink_metrics_port: int = 0  # the sink's /healthz and /metrics (its lag, retries, bad messages) on this port; 0: off
    sink_metrics_host: str = "127.0.0.1"  # 0.0.0.0 in a container
    store_url: str | None = None  # clickhouse://… or a chdb directory; default: QRISK_DATA_DIR

    # client security: the same names as qrisk.settings.Settings
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    data_dir: str = ".qrisk-data"

    def security(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python and aiokafka clients: TLS and SASL as configured."""
        out: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol.endswith("SSL"):
            out.update({k: v for k, v in {"ssl_cafile": self.kafka_ssl_cafile, "ssl_certfile": self.kafka_ssl_certfile,
                                          "ssl_keyfile": self.kafka_ssl_keyfile}.items() if v})
        if self.kafka_security_protocol.startswith("SASL"):
            out["sasl_mechanism"] = self.kafka_sasl_mechanism or "PLAIN"
            out["sasl_plain_username"] = self.kafka_sasl_username
            out["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
        return out

    def worker_dir(self) -> Path:
        """The worker's data directory, absolute: QRISK_WORKER_DATA_DIR, else ``worker`` in QRISK_DATA_DIR.
        (The old default, ``var/worker`` relative to the working directory, stopped a worker started
        anywhere but the repository's root with FileNotFoundError: Faust does not make parents.)"""
        return Path(self.worker_data_dir or Path(self.data_dir) / "worker").expanduser().absolute()

    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.kafka_bootstrap.split(",") if s.strip()]

    def topics(self) -> "Topics":
        return Topics(self.kafka_topic_prefix, self.kafka_partitions, self.kafka_replication, self.worker_app_id)


@dataclasses.dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]
    key: str
    value: str
    purpose: str
    created_by: str = "qrisk topics create"

    @property
    def retention(self) -> str:
        if self.config.get("cleanup.policy") == "compact":
            return "compacted"
        ms = int(self.config.get("retention.ms", "-1"))
        return "forever" if ms < 0 else f"{ms // DAY_MS} days"


class Topics:
    """The declared topics for one prefix and partition count."""

    def __init__(self, prefix: str = "qrisk", partitions: int = 4, replication: int = 1, app_id: str = "qrisk-worker"):
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        self.prefix = prefix
        self.partitions = partitions
        self.replication = replication
        self.app_id = app_id
        p = partitions
        isr = str(min(2, replication))
        self.ingress = {
            src: TopicSpec(f"{prefix}.ingress.{src}", p, {"retention.ms": str(7 * DAY_MS), "cleanup.policy": "delete", "min.insync.replicas": isr,
                                                          "max.message.bytes": str(LOG_MESSAGE_MAX_BYTES)},
                           "enterprise_id when the producer could read it", "the bytes as received (JSON event, or a CSV row as JSON)",
                           f"raw input from {src} systems; validated by the workers, admitted as the HTTP role "
                           f"{INGRESS_ROLES[src]} (event types and source.kind)")
            for src in INGRESS_SOURCES
        }
        self._admissions: dict[str, IngressAdmission] | None = None
        self.events = TopicSpec(f"{prefix}.events", p, {"retention.ms": "-1", "cleanup.policy": "delete", "min.insync.replicas": isr,
                                                         "max.message.bytes": str(LOG_MESSAGE_MAX_BYTES)},
                                "enterprise_id (`*` for clock.tick, one copy per partition)", "the validated event as JSON (received_at set)",
                                "the normalised event log: the truth every derived fact is folded from")
        self.dead_letters = TopicSpec(f"{prefix}.dead-letters", 1, {"retention.ms": str(90 * DAY_MS), "cleanup.policy": "delete", "min.insync.replicas": isr,
                                                                    "max.message.bytes": str(LETTER_MESSAGE_MAX_BYTES)},
                                      "dead_letter_id", "JSON: raw bytes (utf-8 or base64), reason, field errors, source position",
                                      "every input that was rejected or failed processing")
        self.effects = TopicSpec(f"{prefix}.effects", p, {"retention.ms": str(EFFECTS_RETENTION_DAYS * DAY_MS), "cleanup.policy": "delete",
                                                          "min.insync.replicas": isr, "max.message.bytes": str(EFFECTS_MESSAGE_MAX_BYTES)},
                                 "enterprise_id", "JSON: the effects of one event on one credit file (+ its derived rows as column lists)",
                                 "the fold's output: signals, grades, alert decisions, derived rows")
        self.credit_files = TopicSpec(f"{prefix}.credit-files", p, {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000",
                                                                    "min.insync.replicas": isr, "max.message.bytes": str(VIEW_MESSAGE_MAX_BYTES)},
                                      "enterprise_id", "JSON: {version, file} — the newest credit file",
                                      "the newest credit file of each enterprise")
        # min.insync.replicas as every other topic: with acks=all and replication 3, one replica
        # left in sync would otherwise acknowledge the state alone
        self.changelog = TopicSpec(f"{app_id}-files-changelog", p, {"cleanup.policy": "compact", "min.insync.replicas": isr,
                                                                     "max.message.bytes": str(STATE_MESSAGE_MAX_BYTES)},
                                   "S|partition|enterprise_id (snapshot), E|partition|enterprise_id|version (applied event) or W|partition (last folded offset)",
                                   "snapshot: {v, pos, seen, ticks, alerts} + credit file; entry: {pos} + event; mark: {offset}",
                                   "the workers' per-enterprise state (Faust table)", created_by="Faust (qrisk worker)")

    def declared(self) -> list[TopicSpec]:
        """What ``qrisk topics create`` creates (Faust creates its changelog itself)."""
        return [*self.ingress.values(), self.events, self.dead_letters, self.effects, self.credit_files]

    def all(self) -> list[TopicSpec]:
        return [*self.declared(), self.changelog]

    def ingress_for(self, source: str) -> TopicSpec:
        try:
            return self.ingress[source]
        except KeyError:
            raise ValueError(f"unknown source {source!r} (one of {', '.join(INGRESS_SOURCES)})") from None

    def admissions(self) -> dict[str, IngressAdmission]:
        """Each ingress topic's admission, by topic name (built on first use: it reads the event types)."""
        if self._admissions is None:
            from qrisk.auth import posting_rules

            rules = posting_rules()
            self._admissions = {
                spec.name: IngressAdmission(spec.name, src, INGRESS_ROLES[src], *rules[INGRESS_ROLES[src]])
                for src, spec in self.ingress.items()
            }
        return self._admissions

    def markdown(self) -> str:
        lines = ["| topic | key | value | partitions | retention | created by |", "|---|---|---|---|---|---|"]
        for t in self.all():
            lines.append(f"| `{t.name}` | {t.key} | {t.value} | {t.partitions} | {t.retention} | {t.created_by} |")
        return "\n".join(lines)


# --------------------------------------------------------------------------- admin


def admin_client(settings: KafkaSettings, **kw: Any):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers(), client_id="qrisk-admin", **settings.security(), **kw)


class TopicMismatch(Exception):
    """An existing topic disagrees with the declaration in a way that cannot be fixed in place."""


class TopicMissing(TopicMismatch):
    """A topic a command reads or writes does not exist (``qrisk topics create`` not run, or another
    QRISK_KAFKA_TOPIC_PREFIX).  A kind of ``TopicMismatch``: every start that refuses a mismatch in one
    line refuses this the same way.  Said at once: a producer waits 60 s for a missing topic's metadata
    and then reads as "cannot reach Kafka", and Faust ignores a missing topic and idles, healthy."""


def create_topics(settings: KafkaSettings, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Create every declared topic that is missing; check the ones that exist.

    Returns one line per topic: name, partitions, action (created / exists / configs updated).
    Raises ``TopicMismatch`` when an existing topic has another partition count (the log's
    count cannot change without moving enterprises away from their state).
    """
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    topics = settings.topics()
    admin = admin_client(settings)
    try:
        existing = _partition_counts(admin, [t.name for t in topics.declared()])
        report: list[dict[str, Any]] = []
        missing = [t for t in topics.declared() if t.name not in existing]
        if missing:
            new = [NewTopic(t.name, t.partitions, settings.kafka_replication, topic_configs=dict(t.config)) for t in missing]
            try:
                admin.create_topics(new, timeout_ms=int(timeout_s * 1000))
            except TopicAlreadyExistsError:
                pass  # created meanwhile by another `topics create`
        for t in topics.declared():
            if t.name in existing:
                if existing[t.name] != t.partitions:
                    raise TopicMismatch(f"{t.name} has {existing[t.name]} partitions, declared {t.partitions} "
                                        f"(QRISK_KAFKA_PARTITIONS); the partition count of an existing topic is not changed")
                admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t.name, configs=dict(t.config))])
                report.append({"topic": t.name, "partitions": t.partitions, "retention": t.retention, "action": "exists, configs set"})
            else:
                report.append({"topic": t.name, "partitions": t.partitions, "retention": t.retention, "action": "created"})
        _wait_for_leaders(admin, [t.name for t in topics.declared()], timeout_s)
        return report
    finally:
        admin.close()


def check_partitions(settings: KafkaSettings, needs: Iterable[str] = ()) -> None:
    """Raise ``TopicMismatch`` (one line, Chinese and English) when the log or the workers'
    changelog has another partition count than ``QRISK_KAFKA_PARTITIONS``, and ``TopicMissing``
    when the log, or a topic of ``needs`` (names), does not exist.

    The API and ``qrisk tick`` send by the topic's real count, the workers by the setting: with the
    two apart one enterprise's events land on two partitions, its state splits in two files and its
    order is gone, silently.  Worker, sink, API, ``tick`` and ``produce`` call this before they start."""
    topics = settings.topics()
    needed = list(dict.fromkeys([topics.events.name, *needs]))
    admin = admin_client(settings)
    try:
        counts = _partition_counts(admin, list(dict.fromkeys([*needed, topics.changelog.name])))
    finally:
        admin.close()
    missing = [name for name in needed if name not in counts]
    if missing:
        names = ", ".join(missing)
        prefix = f"QRISK_KAFKA_TOPIC_PREFIX={settings.kafka_topic_prefix}"
        said = f"topic {names} does not" if len(missing) == 1 else f"topics {names} do not"
        raise TopicMissing(f"主题 {names} 不存在：请先运行 `qrisk topics create`（{prefix}），拒绝启动 / {said} "
                           f"exist: run `qrisk topics create` ({prefix}, the same bootstrap), or set the prefix the topics were made with")
    for name, count in counts.items():
        if name != topics.events.name and name != topics.changelog.name:
            continue  # (the others' counts are not what partitions an enterprise)
        if count != settings.kafka_partitions:
            raise TopicMismatch(
                f"{name} 有 {count} 个分区，而 QRISK_KAFKA_PARTITIONS={settings.kafka_partitions}：同一企业的事件会落到不同分区，拒绝启动"
                f" / {name} has {count} partitions but QRISK_KAFKA_PARTITIONS={settings.kafka_partitions}: one enterprise's "
                f"events would land on two partitions; refusing to start (set QRISK_KAFKA_PARTITIONS={count})")


ALTER_SETTLE_SECONDS = 15.0
"""How long a topic config change the broker accepted may take to read back before it counts as not done."""


class LimitRefused(Exception):
    """The broker did not raise a topic's ``max.message.bytes`` (no AlterConfigs permission, a
    policy): ``limit`` is the topic's own setting as it stays (None: the broker's default)."""

    def __init__(self, message: str, limit: int | None):
        super().__init__(message)
        self.limit = limit


def ensure_message_limit(settings: KafkaSettings, spec: TopicSpec) -> str | None:
    """Set ``max.message.bytes`` of an existing topic to the declared one when it is lower (Faust
    creates its changelog with the declared configs, but one created before keeps the broker's
    default).  Returns what was done, None when the topic does not exist yet; raises
    ``LimitRefused`` when the broker's answer or the topic read back says it was not done
    (kafka-python returns a refusal in its answer instead of raising it)."""
    from kafka.admin import ConfigResource, ConfigResourceType

    wanted = int(spec.config["max.message.bytes"])
    admin = admin_client(settings)
    try:
        if spec.name not in set(admin.list_topics()):
            return None
        current = topic_config(admin, spec.name, "max.message.bytes")
        if current is not None and int(current) >= wanted:
            return f"{spec.name}: max.message.bytes {current}"
        # incremental (kafka-python 3 on brokers >= 2.3): the topic's other configs stay as they are
        answer = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, spec.name, configs={"max.message.bytes": str(wanted)})])
        now = topic_config(admin, spec.name, "max.message.bytes")
        # an alteration the broker answered OK reaches the config it describes a moment later (KRaft's
        # metadata log): read back for a while before calling it refused (seen under load: the default)
        accepted = (answer or {}).get("topic", {}).get(spec.name) == "OK" if isinstance(answer, dict) else False
        deadline = time.monotonic() + ALTER_SETTLE_SECONDS
        while accepted and (now is None or int(now) < wanted) and time.monotonic() < deadline:
            time.sleep(0.2)
            now = topic_config(admin, spec.name, "max.message.bytes")
        if now is None or int(now) < wanted:
            raise LimitRefused(
                f"Kafka 未接受将主题 {spec.name} 的 max.message.bytes 调整为 {wanted}（当前 {now or '代理默认值'}；{answer}）；"
                f"请授予 AlterConfigs 权限或手工设置 / the broker did not raise {spec.name}'s max.message.bytes to {wanted} "
                f"(it is {now or 'the broker default'}; answer {answer}): grant AlterConfigs or set it by hand",
                int(now) if now is not None else None)
        return f"{spec.name}: max.message.bytes {current} -> {wanted}"
    finally:
        admin.close()


def topic_config(admin: Any, name: str, key: str) -> str | None:
    """A topic's own setting of ``key``; None when it has none (the broker's default applies).
    (kafka-python 3 answers {"topic": {name: {key: {"value": …}}}} with the topic's own configs.)"""
    from kafka.admin import ConfigResource, ConfigResourceType

    answer = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    entry = (answer.get("topic", {}).get(name) or {}).get(key) if isinstance(answer, dict) else None
    return entry.get("value") if isinstance(entry, dict) else None


def describe_topics(settings: KafkaSettings) -> list[dict[str, Any]]:
    topics = settings.topics()
    admin = admin_client(settings)
    try:
        existing = _partition_counts(admin, [t.name for t in topics.all()])
    finally:
        admin.close()
    return [{"topic": t.name, "declared_partitions": t.partitions, "partitions": existing.get(t.name),
             "retention": t.retention, "created_by": t.created_by, "purpose": t.purpose} for t in topics.all()]


def delete_topics(settings: KafkaSettings, names: Iterable[str]) -> None:
    admin = admin_client(settings)
    try:
        names = [n for n in names if n in set(admin.list_topics())]
        if names:
            admin.delete_topics(names)
    finally:
        admin.close()


def _partition_counts(admin: Any, names: list[str]) -> dict[str, int]:
    present = set(admin.list_topics())
    wanted = [n for n in names if n in present]
    if not wanted:
        return {}
    return {_name(d): len(d["partitions"]) for d in admin.describe_topics(wanted) if not d.get("error_code")}


def _name(described: dict[str, Any]) -> str:
    return described.get("name") or described.get("topic")  # kafka-python 3.x / 2.x


def _wait_for_leaders(admin: Any, names: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        described = admin.describe_topics(names)
        if all(not d.get("error_code") and d["partitions"] and all(p.get("leader_id", p.get("leader", -1)) >= 0 for p in d["partitions"]) for d in described):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics without a leader after {timeout_s}s: {[_name(d) for d in described]}")
        time.sleep(0.2)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
