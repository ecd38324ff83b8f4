from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "schemas" / "examples"


def golden(event_type: str) -> dict:
    return json.loads((EXAMPLES / f"{event_type}.json").read_text(encoding="utf-8"))


def all_goldens() -> list[dict]:
    order = [
        "enterprise.registered", "enterprise.updated", "sampling.result", "complaint.received", "complaint.resolved",
        "inspection.completed", "rectification.ordered", "rectification.completed", "rectification.verified", "clock.tick",
    ]
    return [golden(t) for t in order]


@pytest.fixture(scope="session")
def rules():
    from processors.step import Rules
    from schemas.policy import Policy
    from schemas.standards import load_catalogue

    return Rules(catalogue=load_catalogue(), policy=Policy())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real `qrisk run` process on loopback."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "Server":
        self.port = free_port()
        log = open(self.data_dir.parent / f"server-{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "qrisk", "run", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"qrisk run exited with {self.proc.returncode}: {Path(log.name).read_text(errors='replace')}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("qrisk run did not become healthy")

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "data")
    yield srv.start()
    srv.stop()
