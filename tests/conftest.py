from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import zlib
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "schemas" / "examples"


def golden(event_type: str) -> dict:
    return json.loads((EXAMPLES / f"{event_type}.json").read_text(encoding="utf-8"))


def lab_source(lab: str) -> dict:
    """The source of a result sent by ``lab``'s own system: the golden lab's for its name, another lab's
    (its own CMA-like id) for any other — a lab sends its own reports, and one lab system sending a report
    under another lab's name is still the first lab (processors.step._same_lab)."""
    golden_doc = golden("sampling.result")
    if lab == golden_doc["payload"]["lab"]:
        return golden_doc["source"]
    return {"kind": "lab", "id": f"CMA-TEST-{zlib.crc32(lab.encode('utf-8')) % 10000:04d}", "name": lab}


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


TESTS_RETEST_LAB = "市食品药品检验研究院"


@pytest.fixture(scope="session")
def rules_listing_retest_lab(rules):
    """The rules with the bureau's list of re-test labs (retest.institutions) naming the tests' re-test lab, by its
    lab system's CMA number: a passing re-test then closes the failure's alert (unlisted, it stays for a supervisor)."""
    from processors.step import Rules
    from schemas.policy import RetestPolicy

    listed = RetestPolicy(institutions=[lab_source(TESTS_RETEST_LAB)["id"]])
    return Rules(catalogue=rules.catalogue, policy=rules.policy.model_copy(update={"retest": listed}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real `qrisk run` process on loopback.

    Unless ``admin_key=False``, an admin key is created in the data directory's key file
    before the first start; ``headers`` carries it, ``get``/``post`` send it.
    ``tls=(certfile, keyfile)`` serves HTTPS (``verify`` then trusts that certificate).
    """

    def __init__(self, data_dir: Path, admin_key: bool = True, tls: tuple[Path, Path] | None = None, args: tuple[str, ...] = ()):
        self.data_dir = data_dir
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.tls = tls
        self.args = args
        self.key: str | None = None
        self.log_path: Path | None = None
        if admin_key:
            from qrisk.auth import KeyStore

            _, self.key = KeyStore(data_dir / "keys.json").create("admin", "test-admin", actor="tests")

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}"} if self.key else {}

    @property
    def verify(self):
        import ssl

        return ssl.create_default_context(cafile=str(self.tls[0])) if self.tls else True

    def get(self, path: str, **kw) -> httpx.Response:
        return httpx.get(self.url + path, headers={**self.headers, **kw.pop("headers", {})}, verify=self.verify, timeout=kw.pop("timeout", 30), **kw)

    def post(self, path: str, **kw) -> httpx.Response:
        return httpx.post(self.url + path, headers={**self.headers, **kw.pop("headers", {})}, verify=self.verify, timeout=kw.pop("timeout", 30), **kw)

    def start(self, timeout: float = 60) -> "Server":
        self.port = free_port()
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        log = open(self.log_path, "wb")
        cmd = [sys.executable, "-m", "qrisk", "run", "--port", str(self.port), "--data-dir", str(self.data_dir), *self.args]
        if self.tls:
            cmd += ["--tls-certfile", str(self.tls[0]), "--tls-keyfile", str(self.tls[1])]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"qrisk run exited with {self.proc.returncode}: {self.log_path.read_text(errors='replace')}")
            try:
                # (/healthz says 200 from the first second, while the log replays: ready is /readyz)
                if httpx.get(self.url + "/readyz", timeout=1, verify=self.verify).status_code == 200:
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


def offline_app():
    """The API as `qrisk run` builds it, on a stub pipeline: for its route table and OpenAPI
    description without a data directory (guards answer before any handler runs)."""
    from qrisk.api import create_app
    from qrisk.auth import KeyStore, utc_now

    class Stub:
        store = None
        clock = staticmethod(utc_now)

        def start_background_sink(self):
            pass

    app = create_app(Stub(), keys=KeyStore("/nonexistent/keys.json"))
    app.state.committer.close()
    app.state.audit.close()
    return app


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "data")
    yield srv.start()
    srv.stop()
