"""An operator's review of the Kafka mode's starts: a topic not created, ClickHouse not answering, a port
in use, a setting of inf: each is one line naming what to do or which setting, exit 2, in seconds — not a
60 s silence ending in "cannot reach Kafka", a worker idle and healthy forever, or a page of traceback."""
from __future__ import annotations

import math
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from tests.kafka_service import kafka_bootstrap, kafka_env, kafka_prefix  # noqa: F401 - fixtures
from tests.services import ch_database, clickhouse_url  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[1]
CH_DOWN = "clickhouse://127.0.0.1:1/x"  # nothing listens on port 1: connection refused at once


def qrisk(args: list[str], env: dict[str, str], tmp_path: Path, timeout: float = 20) -> tuple[int, str, float]:
    """``qrisk ARGS`` as the operator runs it: exit code, stderr, seconds taken."""
    full = {**os.environ, "QRISK_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1", **env}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "qrisk", *args], env=full, cwd=tmp_path, capture_output=True, text=True,
                          timeout=timeout)
    return done.returncode, done.stderr, time.monotonic() - started


def one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def fresh_prefix() -> str:
    return f"tmiss{uuid.uuid4().hex[:8]}"  # no topics: nobody created them


def listening(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.bind((host, 0))
    sock.listen()
    return sock


# ----------------------------------------------------------------------------- topics not created


@pytest.mark.parametrize("command", ["tick", "produce", "run"])
def test_a_missing_log_topic_is_one_line_in_seconds(command, kafka_bootstrap, tmp_path):
    prefix = fresh_prefix()
    env = kafka_env(kafka_bootstrap, prefix)
    if command == "produce":
        (tmp_path / "one.jsonl").write_text("{}\n", encoding="utf-8")
        args = ["produce", str(tmp_path / "one.jsonl"), "--source", "lab"]
    elif command == "run":
        env.update(QRISK_EVENT_LOG="kafka", QRISK_STORE_URL=CH_DOWN)  # (refused before the store is opened)
        args = ["run", "--port", str(free_port()), "--data-dir", str(tmp_path / "data")]
    else:
        args = ["tick"]
    code, err, took = qrisk(args, env, tmp_path)
    line = one_line(err)
    assert code == 2 and took < 15, (code, took, err)
    assert "`qrisk topics create`" in line and f"{prefix}.events" in line and f"QRISK_KAFKA_TOPIC_PREFIX={prefix}" in line
    assert "不存在" in line and "cannot reach" not in line
    if command == "produce":
        assert f"{prefix}.ingress.lab" in line


@pytest.mark.parametrize("command", ["worker", "sink"])
def test_a_worker_or_sink_without_its_topics_refuses_to_start(command, kafka_bootstrap, tmp_path):
    prefix = fresh_prefix()
    env = kafka_env(kafka_bootstrap, prefix, QRISK_WORKER_WEB_PORT=0, QRISK_WORKER_DATA_DIR=tmp_path / "worker",
                    QRISK_STORE_URL=CH_DOWN)
    code, err, took = qrisk([command], env, tmp_path)
    line = one_line(err)
    assert code == 2 and took < 20, (code, took, err)
    assert f"{prefix}.events" in line and "qrisk topics create" in line
    if command == "worker":
        assert f"{prefix}.ingress.bureau" in line
        from qrisk.topics import KafkaSettings

        # nothing made for a deployment that is not there (its changelog was created before)
        from qrisk.topics import admin_client

        admin = admin_client(KafkaSettings(kafka_bootstrap=kafka_bootstrap))
        try:
            assert not [t for t in admin.list_topics() if t.startswith(f"{prefix}-")]
        finally:
            admin.close()
    else:
        assert f"{prefix}.effects" in line and f"{prefix}.credit-files" in line


def test_the_topic_check_raises_topic_missing_naming_the_prefix(kafka_bootstrap, kafka_prefix):
    from qrisk.topics import KafkaSettings, TopicMismatch, TopicMissing, check_partitions

    settings = KafkaSettings(kafka_bootstrap=kafka_bootstrap, kafka_topic_prefix=kafka_prefix)
    check_partitions(settings, [t.name for t in settings.topics().declared()])  # all made: nothing said
    with pytest.raises(TopicMissing) as caught:
        check_partitions(settings, [f"{kafka_prefix}.nonexistent"])
    assert isinstance(caught.value, TopicMismatch)  # (every start that refuses a mismatch refuses this too)
    text = str(caught.value)
    assert "\n" not in text and f"topic {kafka_prefix}.nonexistent does not exist" in text and f"{kafka_prefix}.events" not in text


# ----------------------------------------------------------------------------- the ticker carries on


def test_tick_every_says_a_refused_tick_in_one_line_and_goes_on(monkeypatch, capsys):
    import qrisk.kafka_log
    import qrisk.topics
    from qrisk import cli_kafka
    from qrisk.kafka_log import PublishError

    outcomes = [PublishError("1 message(s) not sent to Kafka: KafkaTimeoutError: Failed to update metadata after 60.0 secs.", ["x"]),
                SimpleNamespace(event_id="e2")]

    class FlakyLog:
        def __init__(self, settings):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def tick(self, at):
            out = outcomes.pop(0)
            if isinstance(out, Exception):
                raise out
            return out

        def log_partitions(self):
            return [0, 1, 2, 3]

    class Stop(Exception):
        pass

    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if not outcomes:
            raise Stop

    monkeypatch.setattr(qrisk.kafka_log, "KafkaLog", FlakyLog)
    monkeypatch.setattr(qrisk.topics, "check_partitions", lambda settings, needs=(): None)
    monkeypatch.setattr(cli_kafka, "reach", lambda settings, name=None: None)
    monkeypatch.setattr(cli_kafka.time, "sleep", sleep)
    with pytest.raises(Stop):
        cli_kafka.main(["tick", "--every", "600"])
    out, err = capsys.readouterr()
    assert sleeps == [600, 600]  # the refused tick did not end the scheduler
    assert '"event_id": "e2"' in out and "Traceback" not in err
    line = one_line(err)
    assert "clock.tick not sent" in line and "KafkaTimeoutError" in line and "trying again in 600 s" in line

    # a single tick refused: the same line, exit 2
    outcomes[:] = [PublishError("1 message(s) not sent to Kafka: KafkaTimeoutError: x", ["x"])]
    assert cli_kafka.main(["tick"]) == 2
    assert "clock.tick not sent" in one_line(capsys.readouterr().err)


# ----------------------------------------------------------------------------- ClickHouse down, ports in use


def test_the_sink_with_clickhouse_down_is_one_line(kafka_bootstrap, kafka_prefix, tmp_path):
    code, err, took = qrisk(["sink"], kafka_env(kafka_bootstrap, kafka_prefix, QRISK_STORE_URL=CH_DOWN), tmp_path)
    line = one_line(err)
    assert code == 2 and took < 20
    assert "无法打开 ClickHouse" in line and f"cannot open ClickHouse {CH_DOWN} (QRISK_STORE_URL)" in line and "refused" in line


def test_the_dispatcher_with_clickhouse_down_is_one_line(tmp_path):
    code, err, took = qrisk(["alerts", "dispatch"], {"QRISK_STORE_URL": CH_DOWN}, tmp_path)
    line = one_line(err)
    assert code == 2 and took < 20
    assert "无法打开 ClickHouse" in line and f"cannot open ClickHouse {CH_DOWN} (QRISK_STORE_URL)" in line
    code, err, _ = qrisk(["alerts", "dispatch", "--store", CH_DOWN], {}, tmp_path)
    assert code == 2 and f"({'--store'})" in one_line(err)


def test_the_dispatcher_with_its_metrics_port_in_use_names_the_option(ch_database, tmp_path):
    busy = listening()
    port = busy.getsockname()[1]
    try:
        code, err, took = qrisk(["alerts", "dispatch", "--metrics-port", str(port)], {"QRISK_STORE_URL": ch_database}, tmp_path)
        assert code == 2 and took < 20 and "Traceback" not in err, err
        last = err.strip().splitlines()[-1]
        assert f"127.0.0.1:{port}" in last and "(--metrics-port)" in last and "Address already in use" in last
        code, err, _ = qrisk(["alerts", "dispatch"], {"QRISK_STORE_URL": ch_database, "QRISK_OUTBOX_METRICS_PORT": str(port)}, tmp_path)
        assert code == 2 and "Traceback" not in err and "(QRISK_OUTBOX_METRICS_PORT)" in err.strip().splitlines()[-1]
    finally:
        busy.close()


def test_the_worker_with_its_web_port_in_use_names_the_setting(kafka_bootstrap, kafka_prefix, tmp_path):
    busy = listening()
    port = busy.getsockname()[1]
    try:
        env = kafka_env(kafka_bootstrap, kafka_prefix, QRISK_WORKER_WEB_PORT=port, QRISK_WORKER_DATA_DIR=tmp_path / "worker")
        code, err, took = qrisk(["worker"], env, tmp_path)
    finally:
        busy.close()
    line = one_line(err)
    assert code == 2 and took < 20
    assert f"127.0.0.1:{port}" in line and "QRISK_WORKER_WEB_PORT" in line and "Address already in use" in line


def test_rebuild_kafka_with_clickhouse_down_gives_the_reason_in_english_too(kafka_bootstrap, kafka_prefix, tmp_path):
    code, err, _ = qrisk(["rebuild", "--kafka"], kafka_env(kafka_bootstrap, kafka_prefix, QRISK_STORE_URL=CH_DOWN), tmp_path)
    line = one_line(err)
    assert code == 2
    english = line.split(" / ", 1)[1]
    assert "Connection refused" in english, line


# ----------------------------------------------------------------------------- the worker's web address


def test_the_worker_s_web_server_listens_where_the_setting_says(monkeypatch):
    from qrisk.settings import checked_kafka_settings
    from qrisk.topics import KafkaSettings
    from qrisk.worker import create_app

    assert KafkaSettings().worker_web_host == "127.0.0.1"  # Faust's /router/, /table/, /stats/ need no key
    app = create_app(KafkaSettings(kafka_bootstrap="127.0.0.1:1", worker_web_port=6066))
    assert app.conf.web_bind == "127.0.0.1"
    monkeypatch.setenv("QRISK_WORKER_WEB_HOST", "0.0.0.0")
    app = create_app(checked_kafka_settings(kafka_bootstrap="127.0.0.1:1"))
    assert app.conf.web_bind == "0.0.0.0"


# ----------------------------------------------------------------------------- the dispatcher's metrics

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$")


def families(text: str) -> dict[str, str]:
    """Each sample's family with its TYPE, strictly: a sample before its HELP and TYPE fails (a Prometheus
    parser reads such a family as untyped)."""
    helped, typed, seen = set(), {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            assert kind in ("counter", "gauge", "histogram", "summary"), line
            typed[name] = kind
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample: {line!r}"
            name = m.group(1)
            assert name in helped and name in typed, f"{name}: no HELP/TYPE before its sample"
            assert typed[name] != "counter" or name.endswith("_total"), name
            seen[name] = typed[name]
    return seen


def test_the_dispatcher_s_metrics_are_typed_and_named_in_the_readme():
    from qrisk.cli_alerts import DISPATCHER_METRICS, serve_metrics

    d = SimpleNamespace(sent=3, retried=1, failed=0, active=True, last_error=None, given_up_count=lambda: 2)
    port = free_port()
    servers = [serve_metrics(d, "127.0.0.1", port)]
    idle_port = free_port()
    servers.append(serve_metrics(None, "127.0.0.1", idle_port))
    try:
        busy = families(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
        idle = families(urllib.request.urlopen(f"http://127.0.0.1:{idle_port}/metrics", timeout=5).read().decode())
    finally:
        for s in servers:
            s.shutdown()
    assert busy["qrisk_alert_deliveries_sent_total"] == "counter" and busy["qrisk_alert_deliveries_given_up"] == "gauge"
    assert len(busy) == 6 and set(idle) == {"qrisk_alert_dispatcher_active", "qrisk_alert_dispatcher_receivers"}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not [name for name, _, _ in DISPATCHER_METRICS if f"`{name}`" not in readme]


def test_a_busy_metrics_port_is_refused_naming_the_setting():
    from qrisk.cli_alerts import MetricsUnavailable, serve_metrics

    busy = listening()
    try:
        with pytest.raises(MetricsUnavailable, match="QRISK_OUTBOX_METRICS_PORT"):
            serve_metrics(None, "127.0.0.1", busy.getsockname()[1])
    finally:
        busy.close()


# ----------------------------------------------------------------------------- inf and nan


def _float_fields(cls) -> list[str]:
    return [name for name, field in cls.model_fields.items() if float in (field.annotation, *getattr(field.annotation, "__args__", ()))]


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_no_float_setting_takes_inf_or_nan(value, monkeypatch):
    from qrisk.settings import Settings, checked_kafka_settings, settings_error

    for cls in (Settings, type(checked_kafka_settings())):
        names = _float_fields(cls)
        assert len(names) >= (5 if cls is Settings else 3)
        for name in names:
            variable = f"QRISK_{name.upper()}"
            monkeypatch.setenv(variable, value)
            with pytest.raises(ValidationError) as caught:
                cls()
            assert variable in settings_error(caught.value) and "finite" in settings_error(caught.value)
            monkeypatch.delenv(variable)
    assert math.isfinite(Settings().snapshot_seconds)


@pytest.mark.parametrize("value", ["inf", "1e300"])
def test_run_with_snapshot_seconds_inf_is_refused_before_serving(monkeypatch, tmp_path, capsys, value):
    from qrisk.cli import main

    monkeypatch.setenv("QRISK_SNAPSHOT_SECONDS", value)
    assert main(["run", "--data-dir", str(tmp_path / "data"), "--port", str(free_port())]) == 2
    line = one_line(capsys.readouterr().err)
    assert "QRISK_SNAPSHOT_SECONDS" in line and f"'{value}'" in line


def test_no_float_setting_takes_more_than_a_year(monkeypatch):
    """A huge finite number passed `finite` and overflowed a timer (OverflowError: a traceback from qrisk run)."""
    from qrisk.settings import Settings, checked_kafka_settings, settings_error

    for cls in (Settings, type(checked_kafka_settings())):
        for name in _float_fields(cls):
            variable = f"QRISK_{name.upper()}"
            monkeypatch.setenv(variable, "1e300")
            with pytest.raises(ValidationError) as caught:
                cls()
            said = settings_error(caught.value)
            assert variable in said and ("a year" in said or "less than or equal" in said), said
            monkeypatch.delenv(variable)


# ----------------------------------------------------------------------------- topics list


def test_topics_list_says_which_worker_app_id_it_assumed(kafka_bootstrap, kafka_prefix, monkeypatch, capsys):
    from qrisk.cli_kafka import main

    monkeypatch.setenv("QRISK_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("QRISK_KAFKA_TOPIC_PREFIX", kafka_prefix)
    monkeypatch.delenv("QRISK_WORKER_APP_ID", raising=False)
    assert main(["topics", "list"]) == 0
    out, err = capsys.readouterr()
    assert "qrisk-worker-files-changelog" in out and "'qrisk-worker'" in err and "QRISK_WORKER_APP_ID" in err
    monkeypatch.setenv("QRISK_WORKER_APP_ID", f"{kafka_prefix}-worker")
    assert main(["topics", "list"]) == 0
    out, err = capsys.readouterr()
    assert f"{kafka_prefix}-worker-files-changelog" in out and "QRISK_WORKER_APP_ID" not in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
