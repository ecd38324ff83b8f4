"""docker-compose.yml agrees with the code (no Docker engine here, so the file is parsed and checked):
every qrisk service's command parses with the real ``qrisk`` CLI, every QRISK_ variable is a setting,
ports and addresses line up, images are the versions the tests run against or a current LTS, and
every file a service mounts or builds from exists."""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
QRISK = [name for name, svc in SERVICES.items() if svc.get("image") == "qrisk:latest"]

# commands another part of qrisk provides but that are not registered yet: the test says so


def _parser() -> argparse.ArgumentParser:
    from qrisk import cli, cli_kafka

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "worker" not in sub.choices:  # until qrisk/cli.py registers the distributed commands itself
        cli_kafka.register(sub)
    return parser


def _env(svc: dict) -> dict[str, str]:
    return {k: str(v) for k, v in (svc.get("environment") or {}).items()}


def _default(value: str) -> str:
    """${VAR:-default} → default (what the file gives when the operator sets nothing)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_qrisk_services_exist_and_are_built_from_the_dockerfile():
    assert {"api", "worker", "sink", "topics", "ticker"} <= set(QRISK)
    for name in QRISK:
        build = SERVICES[name]["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).is_file()
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["qrisk"]' in dockerfile
    for folder in re.findall(r"^COPY (\w+) \./", dockerfile, re.M):
        assert (ROOT / folder).is_dir(), folder
    assert SERVICES["worker"]["deploy"]["replicas"] >= 2


@pytest.mark.parametrize("name", QRISK)
def test_service_command_parses_with_the_real_cli(name):
    command = SERVICES[name]["command"]
    args = _parser().parse_args(command)
    assert callable(getattr(args, "func", None)), command


def test_every_qrisk_variable_is_a_setting():
    from qrisk.settings import Settings
    from qrisk.topics import KafkaSettings

    known = {f"QRISK_{n.upper()}" for n in (*Settings.model_fields, *KafkaSettings.model_fields)}
    for name in QRISK:
        for var in _env(SERVICES[name]):
            assert var in known, f"{name}: {var} is not a setting of qrisk.settings.Settings or qrisk.topics.KafkaSettings"


def test_ports_and_addresses_agree():
    api = SERVICES["api"]
    env = _env(api)
    command = api["command"]
    port = command[command.index("--port") + 1]
    assert env["QRISK_PORT"] == port
    assert f"127.0.0.1:{port}:{port}" in api["ports"]  # plain HTTP with keys: loopback unless a proxy terminates TLS
    assert f"localhost:{port}/readyz" in " ".join(api["healthcheck"]["test"])  # healthy = takes events, not only alive
    worker = _env(SERVICES["worker"])
    # replicas do not share Faust's local data directory
    assert SERVICES["worker"]["deploy"]["replicas"] > 1 and not SERVICES["worker"].get("volumes")
    assert f"localhost:{worker['QRISK_WORKER_WEB_PORT']}/" in " ".join(SERVICES["worker"]["healthcheck"]["test"])
    # the worker listens on loopback unless told (Faust's pages have no key): in a container, every address
    from qrisk.topics import KafkaSettings

    assert KafkaSettings.model_fields["worker_web_host"].default == "127.0.0.1" and worker["QRISK_WORKER_WEB_HOST"] == "0.0.0.0"
    kafka = _env(SERVICES["kafka"])
    advertised = kafka["KAFKA_ADVERTISED_LISTENERS"].split("//", 1)[1]
    sink = _env(SERVICES["sink"])
    for name in QRISK:
        assert _env(SERVICES[name])["QRISK_KAFKA_BOOTSTRAP"] == advertised
    assert sink["QRISK_SINK_HEARTBEAT_FILE"] in " ".join(SERVICES["sink"]["healthcheck"]["test"])
    # the sink's ClickHouse: the service's native port, database, user and password
    url = urlsplit(_default(sink["QRISK_STORE_URL"]))
    ch = {k: _default(v) for k, v in _env(SERVICES["clickhouse"]).items()}
    assert (url.hostname, url.port, url.path.lstrip("/")) == ("clickhouse", 9000, ch["CLICKHOUSE_DB"])
    assert (url.username, url.password) == (ch["CLICKHOUSE_USER"], ch["CLICKHOUSE_PASSWORD"])
    from qrisk.store import open_store  # the URL is one the store accepts (parsed, not connected)

    assert callable(open_store)
    assert sink["QRISK_KAFKA_PARTITIONS"] == _env(SERVICES["worker"])["QRISK_KAFKA_PARTITIONS"]


def test_images_and_kraft():
    kafka_image = SERVICES["kafka"]["image"]
    assert kafka_image.startswith("apache/kafka:4.")
    script = (ROOT / "scripts" / "kafka.sh").read_text()
    tested = re.search(r'KAFKA_VERSION="\$\{QRISK_KAFKA_VERSION:-([\d.]+)\}"', script).group(1)
    assert kafka_image == f"apache/kafka:{tested}", "compose runs the broker version the tests run"
    env = _env(SERVICES["kafka"])
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "ZOOKEEPER" not in " ".join(env)
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # `qrisk topics create` declares them
    ch_image = SERVICES["clickhouse"]["image"]
    assert re.fullmatch(r"clickhouse/clickhouse-server:(\d+)\.(3|8)(\.[\d.]+)?", ch_image), "a ClickHouse LTS (x.3 / x.8)"
    assert SERVICES["grafana"]["image"].startswith("grafana/grafana:")
    for name in ("kafka", "clickhouse", "grafana", "api", "worker", "sink"):
        assert "healthcheck" in SERVICES[name], name


def test_volumes_and_provisioning():
    declared = set(COMPOSE["volumes"])
    for name, svc in SERVICES.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source}"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
    prov = ROOT / "deploy" / "grafana" / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "clickhouse.yaml").read_text())["datasources"][0]
    ch = {k: _default(v) for k, v in _env(SERVICES["clickhouse"]).items()}
    assert ds["jsonData"]["host"] == "clickhouse" and ds["jsonData"]["defaultDatabase"] == ch["CLICKHOUSE_DB"]
    # Grafana reads as the read-only user the ClickHouse container declares, with the password both are given
    assert ds["jsonData"]["username"] != ch["CLICKHOUSE_USER"]
    users = _clickhouse_users()
    reader = users.find(f"users/{ds['jsonData']['username']}")
    assert reader is not None, "the data source's user is declared in a users.d file the clickhouse service mounts"
    profile = users.find(f"profiles/{reader.findtext('profile')}")
    assert profile.findtext("readonly") in ("1", "2"), "Grafana's ClickHouse user is read-only"
    # column grants on qrisk's tables only (tests/test_dashboards.py: exactly what the panels read)
    grants = [q.text for q in reader.findall("grants/query")]
    assert grants and reader.find("allow_databases") is None  # (ClickHouse takes grants or allow_databases, not both)
    assert all(re.fullmatch(rf"GRANT SELECT\([a-z_, ]+\) ON {ch['CLICKHOUSE_DB']}\.[a-z_]+", g) for g in grants), grants
    variable = reader.find("password").get("from_env")
    assert variable in ch, "its password comes from the clickhouse container's environment"
    assert ds["secureJsonData"]["password"].lstrip("$") == variable and variable in _env(SERVICES["grafana"])
    assert _env(SERVICES["grafana"])[variable] == _env(SERVICES["clickhouse"])[variable]
    assert "grafana-clickhouse-datasource" in _env(SERVICES["grafana"])["GF_INSTALL_PLUGINS"]
    dash = yaml.safe_load((prov / "dashboards" / "qrisk.yaml").read_text())["providers"][0]
    assert any(v.endswith(":" + dash["options"]["path"] + ":ro") for v in SERVICES["grafana"]["volumes"])


def _clickhouse_users():
    import xml.etree.ElementTree as ET

    mounted = [v.split(":")[0] for v in SERVICES["clickhouse"]["volumes"] if ":/etc/clickhouse-server/users.d/" in v]
    assert mounted, "the clickhouse service mounts a users.d file"
    root = ET.Element("clickhouse")
    for source in mounted:
        for child in ET.parse(ROOT / source).getroot():
            root.append(child)
    return root


def test_grafanas_clickhouse_user_has_no_default_password():
    """A known password on the reader the whole compose network reaches reads what the dashboards read."""
    for name in ("clickhouse", "grafana"):
        password = _env(SERVICES[name])["GRAFANA_CLICKHOUSE_PASSWORD"]
        assert re.fullmatch(r"\$\{GRAFANA_CLICKHOUSE_PASSWORD:\?[^}]+\}", password), (name, password)


def test_grafana_is_loopback_only_and_has_no_default_password():
    grafana = SERVICES["grafana"]
    assert all(str(p).startswith("127.0.0.1:") for p in grafana["ports"]), grafana["ports"]
    password = _env(grafana)["GF_SECURITY_ADMIN_PASSWORD"]
    # ${VAR:?message}: compose refuses to start while it is unset; no known password to guess
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", password), password
    for name, svc in SERVICES.items():  # nothing else published beyond this machine either
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_distributed_dependencies_wait_for_topics():
    for name in ("api", "worker", "sink", "ticker"):
        deps = SERVICES[name]["depends_on"]
        assert deps["topics"]["condition"] == "service_completed_successfully"
        assert deps["kafka"]["condition"] == "service_healthy"


def test_api_publishes_to_kafka_and_reads_clickhouse(monkeypatch):
    """The api service runs `qrisk run` in distributed mode: the setting exists, and it has what that mode needs."""
    from qrisk.settings import Settings

    env = _env(SERVICES["api"])
    assert env["QRISK_EVENT_LOG"] == "kafka"
    assert Settings(event_log=env["QRISK_EVENT_LOG"]).event_log == "kafka"
    assert _default(env["QRISK_STORE_URL"]).startswith("clickhouse://")  # reads: what the sink writes
    assert env["QRISK_STORE_URL"] == _env(SERVICES["sink"])["QRISK_STORE_URL"]
    args = _parser().parse_args(SERVICES["api"]["command"])
    # the command's own dispatch, with the setting from the environment (tests/test_kafka_api.py runs the real thing)
    called = []
    monkeypatch.setattr("qrisk.cli_kafka.cmd_run_kafka", lambda a: called.append(a) or 0)
    monkeypatch.setenv("QRISK_EVENT_LOG", "kafka")
    assert args.func(args) == 0 and called == [args], "qrisk run must honour QRISK_EVENT_LOG"
