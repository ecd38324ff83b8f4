"""Operator settings (environment, prefix QRISK_) and the policy file."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.policy import Policy

DEFAULT_POLICY = Path(__file__).with_name("policy.default.yaml")


class Settings(BaseSettings):
    # (inf and nan are floats to Python: QRISK_SNAPSHOT_SECONDS=inf passed, and stopped `qrisk run` with an
    # OverflowError after its port was bound)
    model_config = SettingsConfigDict(env_prefix="QRISK_", extra="ignore", allow_inf_nan=False)

    data_dir: Path = Path(".qrisk-data")
    host: str = "127.0.0.1"
    # (the kernel takes a port modulo 65536: 70000 would have served on 4464)
    port: int = Field(default=8080, ge=1, le=65535)
    policy_file: Path | None = None
    # the working-day calendar (schemas/standards/calendar/working_days.yaml's format): a copy with the next
    # year's State Council notice added, without waiting for a release (the time limits of sampling and complaints)
    calendar_file: Path | None = None
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_batch: int = Field(default=1000, ge=1)
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
    # (0: after every write of derived rows)
    snapshot_seconds: float = Field(default=60.0, ge=0)
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
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_sender: str = "qrisk@localhost"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    # seconds between looks at the outbox; each look is a query, and 0 kept a core busy doing nothing
    outbox_interval: float = Field(default=1.0, ge=0.05)
    # a notification that keeps failing is retried (doubling up to 10 minutes) for this long from its first
    # attempt, then given up; by time, not by count: 8 attempts ended 254 s after the first, and an SMTP
    # restart or a 5-minute network blip lost a critical alert for good
    outbox_give_up_after_seconds: float = Field(default=86400.0, gt=0)
    # unset: no limit but the time above.  Kept (not removed) for whoever set it deliberately (a test rig):
    # when set, a notification is given up at whichever comes first
    outbox_max_attempts: int | None = Field(default=None, ge=1)
    outbox_base_delay: float = Field(default=2.0, ge=0)  # seconds before the first retry; doubling up to 10 minutes
    outbox_metrics_port: int = Field(default=0, ge=0, le=65535)  # `qrisk alerts dispatch`: /healthz and /metrics on this port (0: off)
    # several dispatchers on one server: the one sending is replaced after this long without renewal
    outbox_lease_seconds: float = Field(default=30.0, gt=0)

    # the API server (both `qrisk run` modes): a client has this long to send a request's head (its line and
    # headers) from connecting, or from the first byte of its next request, before the connection is closed;
    # uvicorn set no bound, and sockets sending a header a byte at a time (or nothing) held a file descriptor each
    header_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # connections open at once; one more is answered 503 and closed at once.  At start the process's open-file
    # limit (ulimit -n) is raised towards this plus room for the store, and a warning says when it cannot be
    max_connections: int = Field(default=1000, ge=1)

    # HTTPS for `qrisk run`: both set, or neither
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None

    @field_validator("clickhouse_url")
    @classmethod
    def _a_server_url(cls, value: str | None) -> str | None:
        # anything else used to become a chdb directory named after the URL (./mysql:/x), and the
        # accepted events went there
        if value is not None and value.strip() and not value.startswith(("clickhouse://", "clickhouses://")):
            raise ValueError("must start with clickhouse:// or clickhouses:// (a ClickHouse server; leave it unset for chdb "
                             "in the data directory)")
        return value or None

    @field_validator("*")
    @classmethod
    def _seconds_within_a_year(cls, value: Any) -> Any:
        return _within_a_year(value)

    @field_validator("tick_seconds")
    @classmethod
    def _tick(cls, value: float) -> float:
        # every tick is an event the log keeps for good: a tiny interval would fill it with ticks
        if value != 0 and not value >= 0.5:
            raise ValueError("must be 0 (no ticks) or at least 0.5 seconds")
        return value


A_YEAR = 365 * 86400.0


def _within_a_year(value: Any) -> Any:
    """Every number of seconds in the settings is a timer's: 1e300 passed `finite` and crashed `qrisk run` with a
    traceback where a timer met it (OverflowError), after the port was bound."""
    if isinstance(value, float) and value > A_YEAR:
        raise ValueError(f"must be at most {A_YEAR:.0f} seconds (a year)")
    return value


def checked_kafka_settings(**overrides: Any) -> Any:
    """``qrisk.topics.KafkaSettings`` with every number held to what makes sense: a worker batch of 0
    or a negative session timeout would start and then misbehave far from the setting that caused it.
    ``overrides`` (command-line options) are checked the same way."""
    return _checked_kafka_class()(**overrides)


_CHECKED_KAFKA: Any = None


def _checked_kafka_class() -> Any:
    global _CHECKED_KAFKA
    if _CHECKED_KAFKA is None:
        from qrisk.topics import KafkaSettings

        class KafkaSettingsChecked(KafkaSettings):
            kafka_partitions: int = Field(default=4, ge=1)
            kafka_replication: int = Field(default=1, ge=1)
            worker_batch: int = Field(default=500, ge=1)
            worker_batch_seconds: float = Field(default=0.02, gt=0)
            worker_inflight_batches: int = Field(default=8, ge=1)
            worker_snapshot_every: int = Field(default=100, ge=1)
            worker_view_seconds: float = Field(default=60.0, gt=0)
            worker_fetch_min_bytes: int = Field(default=64 * 1024, ge=1)
            worker_fetch_max_wait_ms: int = Field(default=10, ge=0)
            worker_session_timeout: float = Field(default=10.0, gt=0)
            worker_restore_stall_seconds: float = Field(default=30.0, gt=0)
            worker_web_port: int = Field(default=6066, ge=0, le=65535)
            sink_batch: int = Field(default=5000, ge=1)
            sink_batch_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
            sink_metrics_port: int = Field(default=0, ge=0, le=65535)

            @field_validator("*")
            @classmethod
            def _seconds_within_a_year(cls, value: Any) -> Any:
                return _within_a_year(value)

            @field_validator("store_url")
            @classmethod
            def _store_target(cls, value: str | None) -> str | None:
                if value:
                    from qrisk.store import check_target

                    check_target(value)
                return value or None

        _CHECKED_KAFKA = KafkaSettingsChecked
    return _CHECKED_KAFKA


# QRISK_ variables that are not settings but are read elsewhere: by the sink and `qrisk dashboards`
# straight from the environment, by docker-compose.yml, and by scripts/services.sh and the tests
OTHER_VARIABLES = frozenset({
    "QRISK_SINK_LINGER_SECONDS", "QRISK_GRAFANA_URL", "QRISK_GRAFANA_TOKEN", "QRISK_GRAFANA_USER", "QRISK_GRAFANA_PASSWORD",
    "QRISK_CLICKHOUSE_PASSWORD", "QRISK_KAFKA_VERSION", "QRISK_KAFKA_HEAP", "QRISK_KAFKA_PORT", "QRISK_KAFKA_CONTROLLER_PORT",
    "QRISK_KAFKA_LIBS", "QRISK_KAFKA_START_TIMEOUT", "QRISK_CH_TCP_PORT", "QRISK_CH_HTTP_PORT", "QRISK_CH_START_TIMEOUT",
    "QRISK_VAR_DIR", "QRISK_KAFKA_SESSION_MS", "QRISK_KAFKA_HEARTBEAT_MS",
})


def known_variables() -> set[str]:
    from qrisk.topics import KafkaSettings

    return {f"QRISK_{n.upper()}" for cls in (Settings, KafkaSettings) for n in cls.model_fields} | OTHER_VARIABLES


def policy_secret_names(path: Any) -> set[str]:
    """The variables a policy file's receivers read their secrets from (``secret_env``): they are
    the operator's, whatever their names.  Nothing when the file is missing or does not parse (the
    policy's own check says why, later)."""
    if not path:
        return set()
    try:
        import yaml

        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
        receivers = (doc.get("alerts") or {}).get("receivers") or []
        return {r["secret_env"] for r in receivers if isinstance(r, dict) and isinstance(r.get("secret_env"), str)}
    except Exception:  # noqa: BLE001 - a warning's helper must not stop a start the policy check will judge
        return set()


def unknown_variables(environ: dict[str, str], policy_file: Any = None) -> list[str]:
    """One warning per QRISK_ variable nothing reads (a misspelt setting is otherwise silently ignored),
    with the closest setting's name when one is close.  ``policy_file``: its receivers' ``secret_env``
    variables are read too."""
    import difflib

    known = known_variables() | policy_secret_names(policy_file)
    out = []
    for name in sorted(environ):
        if not name.startswith("QRISK_") or name in known or name.startswith("QRISK_TEST_"):
            continue
        if name.endswith("_SECRET"):  # a policy receiver's secret_env (DingTalk signing): read by the receivers
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
        hint_zh = f"（是否想写 {close[0]}？）" if close else ""
        hint_en = f" (did you mean {close[0]}?)" if close else ""
        out.append(f"警告：没有这个设置，环境变量 {name} 被忽略{hint_zh} / warning: {name} is not a setting and is ignored{hint_en}")
    return out


def settings_error(exc: Any) -> str:
    """A settings ValidationError as the operator set it, Chinese first:
    ``设置 QRISK_PORT 的值无效 / invalid setting: QRISK_PORT: Input should be … ('abc')``."""
    names, parts = [], []
    for e in exc.errors():
        where = "_".join(str(p) for p in e.get("loc", ()))
        name = f"QRISK_{where.upper()}" if "Settings" in exc.title else where or exc.title
        names.append(name)
        msg = str(e.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{name}: {msg} ({_shown(name, e.get('input'))!r})")
    return f"设置 {'、'.join(names)} 的值无效 / invalid setting: " + "; ".join(parts)


def _shown(name: str, value: Any) -> Any:
    """A refused value as the error line may show it: never a password, a URL without its password."""
    if any(word in name for word in ("PASSWORD", "SECRET", "TOKEN", "API_KEY")):
        return "***"
    if isinstance(value, str) and "://" in value:
        from qrisk.store import redact

        try:
            return redact(value)
        except ValueError:
            return "***"
    return value


class PolicyError(ValueError):
    """A policy file that is not a policy: which file, where in it, and why."""


_ERRORS_ZH = {
    "finite_number": "须为有限数（不能是 .nan 或 .inf）",
    "greater_than_equal": "须不小于 {ge}",
    "greater_than": "须大于 {gt}",
    "less_than_equal": "须不大于 {le}",
    "less_than": "须小于 {lt}",
    "extra_forbidden": "没有这一项（拼写错误？）",
    "missing": "缺少此项",
}


def _error_zh(error: Any) -> str:
    """One pydantic error as the policy's reader is told it: Chinese, then pydantic's English.  The supervisor who edits
    the policy file reads the first; the field's path before it names what to change."""
    msg = error["msg"].removeprefix("Value error, ")
    if error["type"] == "value_error":  # (our own validators already speak both)
        return msg
    zh = _ERRORS_ZH.get(error["type"])
    if zh is None:
        return msg
    try:
        return f"{zh.format(**error.get('ctx', {}))} / {msg}"
    except (KeyError, IndexError):
        return msg


def load_policy(path: Path | None = None) -> Policy:
    path = path or DEFAULT_POLICY
    try:
        fh = open(path, encoding="utf-8")
    except OSError as exc:
        # the path alone did not say where it came from: a QRISK_POLICY_FILE set long ago, or --policy
        raise PolicyError(f"策略文件 {path} 无法打开（{exc.strerror}；见 --policy / QRISK_POLICY_FILE）/ policy file "
                          f"(--policy / QRISK_POLICY_FILE) {path}: {exc.strerror}") from None
    with fh:
        try:
            doc = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise PolicyError(f"策略文件 {path} 不是有效的 YAML / policy {path}: not YAML: {exc}") from exc
    if doc is None:
        # an empty file (truncated, a template not rendered) would run on the built-in defaults without a word;
        # a policy of the defaults is `{}`, or no --policy at all
        raise PolicyError(f"策略文件 {path} 为空（如需内置默认策略，请不指定 --policy，或写入 {{}}）/ policy {path} is empty "
                          f"(truncated, or a template not rendered?); for the built-in defaults give no --policy, or write {{}}")
    try:
        return Policy.model_validate(doc)
    except ValidationError as exc:
        shown = [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {_error_zh(e)}" for e in exc.errors()[:5]]
        more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        raise PolicyError(f"策略文件 {path} 有误 / policy {path}: " + "; ".join(shown) + more) from exc
