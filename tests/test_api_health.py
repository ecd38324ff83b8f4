"""What an operator's monitoring reads: /metrics in the Prometheus text format, /healthz saying
what is wrong.  A real `qrisk run` on a real ClickHouse server (the derived tables are broken from
outside, as a full disk or a dropped table would)."""
from __future__ import annotations

import re
import time
import uuid

from conftest import Server, golden

from qrisk.store import ClickHouseStore
from tests.services import clickhouse_url, drop_database, fresh_database_url  # noqa: F401 - fixtures


def test_metrics_are_described_and_health_says_when_derived_rows_stop(tmp_path, clickhouse_url, monkeypatch):  # noqa: F811 - fixture
    name, url = fresh_database_url(clickhouse_url, "health")
    monkeypatch.setenv("QRISK_CLICKHOUSE_URL", url)
    server = Server(tmp_path / "data").start()
    try:
        text = server.get("/metrics").text
        # every sample is announced by its HELP and TYPE, and the counters exist before anything happened
        named = set()
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                named.add(line.split()[2])
            elif line and not line.startswith("#"):
                assert re.match(r"[a-z_]+", line).group(0) in named, line
        assert '\nqrisk_events_rejected_total{channel="http"} 0\n' in text and "# TYPE qrisk_events_accepted_total counter" in text
        assert 'qrisk_auth_failures_total{reason="expired"} 0' in text
        assert all(f'qrisk_alerts{{state="{s}"}} 0' in text for s in ("open", "acknowledged", "rectifying", "verified", "closed"))
        assert server.get("/healthz").json()["status"] == "ok"

        admin = ClickHouseStore(url)
        admin.command("RENAME TABLE judgements TO judgements_away")  # the derived rows of the next sample cannot be written
        reg, sample = golden("enterprise.registered"), golden("sampling.result")
        sample["event_id"] = str(uuid.uuid4())
        assert server.post("/v1/events", json=[reg, sample]).status_code == 200  # the log took them: accepted
        deadline = time.monotonic() + 30
        while (health := server.get("/healthz").json())["status"] == "ok":
            assert time.monotonic() < deadline, health
            time.sleep(0.2)
        assert health["status"] == "degraded" and "judgements" in health["problems"]["derived_rows"]
        assert health["problems"]["derived_rows"].startswith("派生表连续")  # an operator reading Chinese first
        assert health["derived_lag"] > 0
        assert re.search(r"\nqrisk_derived_write_failures [1-9]", server.get("/metrics").text)
        # the table back, the retried rows go in and health is ok again (and the stop has nothing left to wait for)
        admin.command("RENAME TABLE judgements_away TO judgements")
        deadline = time.monotonic() + 30
        while (health := server.get("/healthz").json())["status"] != "ok":
            assert time.monotonic() < deadline, health
            time.sleep(0.2)
        assert admin.query("SELECT count() AS n FROM judgements")[0]["n"] == 1
        admin.close()
    finally:
        server.stop()
        drop_database(clickhouse_url, name)
