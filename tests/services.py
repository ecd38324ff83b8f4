"""Real services for the tests, through scripts/services.sh.

The shared ClickHouse server: ``QRISK_TEST_CLICKHOUSE_URL`` when the caller set it (the README's
test command and .ci/run do, after ``scripts/services.sh up``); otherwise this module runs
``scripts/services.sh up clickhouse`` itself.  A server that cannot be reached fails the
tests — it never skips them.

Fixtures (import them into a test module to use them):

* ``clickhouse_url`` (session) — the server's URL, database ``qrisk_test``;
* ``ch_database`` (module) — a fresh database on it for the test module, dropped afterwards;
* ``store`` (function, parametrised ``chdb`` / ``clickhouse``) — a migrated store on each backend.

``ClickHouseService`` starts a private server (own ports, own folder under var/) that a test
may stop, kill and restart without disturbing the shared one.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "services.sh"
DEFAULT_URL = "clickhouse://127.0.0.1:{port}/qrisk_test"


def _services(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def shared_clickhouse_url() -> str:
    url = os.environ.get("QRISK_TEST_CLICKHOUSE_URL")
    if url:
        return url
    done = _services("up", "clickhouse")
    if done.returncode != 0:
        pytest.fail(f"scripts/services.sh up clickhouse failed ({done.returncode}):\n{done.stderr}\n{done.stdout}", pytrace=False)
    port = os.environ.get("QRISK_CH_TCP_PORT", "19000")
    return DEFAULT_URL.format(port=port)


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ClickHouseService:
    """A private clickhouse-server started by scripts/services.sh in its own folder."""

    def __init__(self, name: str):
        self.var_dir = ROOT / "var" / name
        self.tcp_port = free_port()
        self.http_port = free_port()
        self.env = {"QRISK_VAR_DIR": str(self.var_dir), "QRISK_CH_TCP_PORT": str(self.tcp_port),
                    "QRISK_CH_HTTP_PORT": str(self.http_port)}

    def url(self, database: str) -> str:
        return f"clickhouse://127.0.0.1:{self.tcp_port}/{database}"

    def _run(self, action: str) -> str:
        done = _services(action, "clickhouse", env=self.env)
        if done.returncode != 0:
            raise RuntimeError(f"services.sh {action} clickhouse failed:\n{done.stderr}")
        return done.stderr

    def up(self) -> "ClickHouseService":
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

    @property
    def pid(self) -> int | None:
        path = self.var_dir / "clickhouse" / "clickhouse-server.pid"
        try:
            return int(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def clickhouse_url() -> str:
    url = shared_clickhouse_url()
    from qrisk.store import ClickHouseStore

    try:
        ClickHouseStore(url).close()
    except Exception as exc:  # noqa: BLE001 - a missing server fails the run
        pytest.fail(f"ClickHouse server at {url} does not answer: {exc}", pytrace=False)
    return url


@pytest.fixture(scope="module")
def ch_database(clickhouse_url, request):
    """A fresh database for one test module; its URL."""
    base = re.sub(r"\W", "_", request.module.__name__.rsplit(".", 1)[-1])
    name = f"qt_{base}_{uuid.uuid4().hex[:6]}"
    url = with_database(clickhouse_url, name)
    yield url
    from qrisk.store import ClickHouseStore

    admin = ClickHouseStore(with_database(clickhouse_url, "default"), create_database=False)
    admin.command(f"DROP DATABASE IF EXISTS {name}")
    admin.close()


def fresh_database_url(clickhouse_url: str, label: str) -> tuple[str, str]:
    name = f"qt_{label}_{uuid.uuid4().hex[:8]}"
    return name, with_database(clickhouse_url, name)


def drop_database(clickhouse_url: str, name: str) -> None:
    from qrisk.store import ClickHouseStore

    admin = ClickHouseStore(with_database(clickhouse_url, "default"), create_database=False)
    try:
        admin.command(f"DROP DATABASE IF EXISTS {name}")
    finally:
        admin.close()


@pytest.fixture(params=["chdb", "clickhouse"])
def store(request, tmp_path):
    """A migrated store, once per backend, empty for each test."""
    from qrisk.store import ChdbStore, ClickHouseStore, migrate

    if request.param == "chdb":
        s = ChdbStore(tmp_path / "chdb")
        migrate(s)
        yield s
        s.close()
        return
    base = request.getfixturevalue("clickhouse_url")
    name, url = fresh_database_url(base, "t")
    s = ClickHouseStore(url)
    migrate(s)
    yield s
    s.close()
    drop_database(base, name)
