"""Fuzz the HTTP API from its own OpenAPI description (schemathesis), against a real `qrisk run`.

Bounded budget: a few dozen examples per operation, positive and negative.  Properties:
no 5xx, responses conform to the description, auth is enforced (schemathesis' ``ignored_auth``
check resends without the key), the service stays up, and every event the API rejected
(422) or refused (403) is in the dead letters.
"""
from __future__ import annotations

import os

import httpx
import pytest

try:
    import schemathesis
except ImportError:  # fail, never skip: a missing test extra must not pass CI as a skip
    pytest.fail("tests/test_fuzz_api.py needs schemathesis: pip install -e '.[test]'", pytrace=False)
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from qrisk.auth import KeyStore  # noqa: E402
from tests.conftest import Server, golden, offline_app  # noqa: E402

SEEN_DEAD_LETTERS: set[str] = set()
CALLS: list[tuple[str, str, int]] = []


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("fuzz") / "data").start()
    assert server.post("/v1/events", json=golden("enterprise.registered")).status_code == 200
    _, lab_key = KeyStore(server.data_dir / "keys.json").create("lab", "fuzz-lab", source_id="CMA-330100-0451")
    server.lab_headers = {"authorization": f"Bearer {lab_key}"}
    yield server
    server.stop()


if os.environ.get("PYTEST_XDIST_WORKER"):
    # under pytest-xdist, schemathesis's generated cases run as nothing: a planted failure passed.  Loud, not green
    pytest.fail("tests/test_fuzz_api.py runs in one process only (scripts/test.sh runs it after the xdist part)", pytrace=False)

schema = schemathesis.openapi.from_dict(offline_app().openapi())
# the coverage phase enumerates boundary values of every field of every event type, unbounded
# by max_examples (thousands of requests here): the bounded random phases keep the budget
schema.config.phases.update(phases=["examples", "fuzzing"])


@schema.parametrize()
@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_from_its_openapi_description(case, fuzz_server):
    headers = fuzz_server.headers
    if case.path == "/v1/events" and sum(1 for c in CALLS if c[1] == "/v1/events") % 2:
        headers = fuzz_server.lab_headers  # a lab key: most generated events are not its to send (403, dead-lettered)
    response = case.call(base_url=fuzz_server.url, headers=headers, timeout=60)
    CALLS.append((case.method, case.path, response.status_code))
    assert response.status_code < 500, (case.method, case.path, response.text[:500])
    if case.path == "/v1/events" and response.status_code in (403, 422):
        for error in response.json()["errors"]:
            SEEN_DEAD_LETTERS.add(error["dead_letter_id"])
    case.validate_response(
        response,
        headers=headers,
        # (response_schema_conformance: each answer's body as qrisk/answers.py documents it)
        checks=[status_code_conformance, response_schema_conformance, ignored_auth, negative_data_rejection],
    )


def test_service_is_up_and_every_rejection_is_in_dead_letters(fuzz_server):
    assert CALLS, "the fuzz run above made no calls"
    assert fuzz_server.proc.poll() is None
    assert fuzz_server.get("/healthz").json()["status"] == "ok"
    posts = [c for c in CALLS if c[:2] == ("POST", "/v1/events")]
    assert {200, 403, 422} <= {s for *_, s in posts}
    assert SEEN_DEAD_LETTERS
    with httpx.Client(base_url=fuzz_server.url, headers=fuzz_server.headers, timeout=30) as client:
        missing = [d for d in sorted(SEEN_DEAD_LETTERS) if client.get(f"/v1/dead-letters/{d}").status_code != 200]
    assert not missing, f"{len(missing)} of {len(SEEN_DEAD_LETTERS)} rejected events are not in dead letters"

