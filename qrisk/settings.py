"""Operator settings (environment, prefix QRISK_) and the policy file."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.policy import Policy

DEFAULT_POLICY = Path(__file__).with_name("policy.default.yaml")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QRISK_", extra="ignore")

    data_dir: Path = Path(".qrisk-data")
    host: str = "127.0.0.1"
    port: int = 8080
    policy_file: Path | None = None
    max_body_bytes: int = 8 * 1024 * 1024
    max_batch: int = 1000
    # a ClickHouse server instead of chdb in data_dir, e.g. clickhouse://user:pass@host:9000/qrisk
    clickhouse_url: str | None = None
    # on a server, one process writes the event log (qrisk.writer_lease): it renews its lease every third
    # of this; a second writer refuses to start, and takes over a silent one after this long
    writer_lease_seconds: float = Field(default=30.0, ge=3.0)
    # where `qrisk run` puts accepted events: the embedded chdb log, or the Kafka log (QRISK_KAFKA_BOOTSTRAP …;
    # reads then come from the ClickHouse server the sink writes, QRISK_STORE_URL) — qrisk.kafka_api
    event_log: Literal["embedded", "kafka"] = "embedded"
    # credit-file snapshots (the credit_files table) are written at most this often per changed file:
    # each is the whole file as JSON (~70 kB after a year), and the API reads files from memory anyway
    snapshot_seconds: float = 60.0
    # `qrisk run` writes a clock.tick to its log this often (0: never): overdue rectifications, missing
    # data and unacknowledged alerts are decided by the log's clock, which moves without other events too;
    # every 10 minutes an unanswered critical alert escalates within 10 minutes of its 24 h deadline
    tick_seconds: float = 600.0

    # access control (qrisk.auth): the key file; default <data_dir>/keys.json
    keys_file: Path | None = None
    # the key client commands send (`qrisk import --url`)
    api_key: SecretStr | None = None

    # alert notifications (alerts.outbox): the SMTP server e-mail receivers go through, and the retry schedule
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_sender: str = "qrisk@localhost"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    outbox_interval: float = 1.0  # seconds between looks at the outbox
    outbox_max_attempts: int = 8
    outbox_base_delay: float = 2.0  # seconds before the first retry; doubling up to 10 minutes
    outbox_metrics_port: int = 0  # `qrisk alerts dispatch`: /healthz and /metrics on this port (0: off)
    outbox_lease_seconds: float = 30.0  # several dispatchers on one server: the one sending is replaced after this long without renewal

    # HTTPS for `qrisk run`: both set, or neither
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None


class PolicyError(ValueError):
    """A policy file that is not a policy: which file, where in it, and why."""


def load_policy(path: Path | None = None) -> Policy:
    path = path or DEFAULT_POLICY
    with open(path, encoding="utf-8") as fh:
        try:
            doc = yaml.safe_load(fh) or {}
        except yaml.YAMLError as exc:
            raise PolicyError(f"policy {path}: not YAML: {exc}") from exc
    try:
        return Policy.model_validate(doc)
    except ValidationError as exc:
        shown = [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()[:5]]
        more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        raise PolicyError(f"policy {path}: " + "; ".join(shown) + more) from exc
