"""The same file gives the same import summary over HTTP (`--url`) as into a data directory (`--data-dir`): records the
service refuses are never folded, so they count neither as accepted nor as out of order — and the warning tells an
importer over HTTP to re-send to a fresh service, which is what they can do (no data directory of theirs to start anew)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import ROOT, Server, golden


def qrisk(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qrisk", *args], cwd=ROOT, capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("out-of-order") / "data").start()
    yield server
    server.stop()


def _history(bad_in_the_middle: bool) -> list[dict]:
    docs = [golden("enterprise.registered")]
    for i, (at, bad) in enumerate([("2026-03-02T09:00:00+08:00", False), ("2026-06-01T09:00:00+08:00", bad_in_the_middle),
                                   ("2026-04-01T09:00:00+08:00", False)]):
        doc = golden("sampling.result")
        doc["event_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"out-of-order-{bad_in_the_middle}-{i}"))
        doc["occurred_at"], doc["payload"]["sample_no"], doc["payload"]["sampled_on"] = at, f"DC-OOO-{int(bad_in_the_middle)}{i}", at[:10]
        if bad:
            doc["payload"]["items"] = []  # refused at the door: never folded
        docs.append(doc)
    return docs


def _write(path, docs):
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    return path


def test_a_refused_record_is_not_counted_out_of_order_over_http_either(service, tmp_path):
    # June's record is refused: April's then follows March's, in order, whichever way the file goes in
    path = _write(tmp_path / "refused.jsonl", _history(bad_in_the_middle=True))
    direct = qrisk("import", str(path), "--data-dir", str(tmp_path / "data"))
    http = qrisk("import", str(path), "--url", service.url, env={"QRISK_API_KEY": service.key})
    summaries = [json.loads(r.stdout) for r in (direct, http)]
    assert [(s["accepted"], s["rejected"], s["out_of_order"]) for s in summaries] == [(3, 1, 0), (3, 1, 0)], (direct.stderr, http.stderr)
    assert "早于文件中在它之前的记录" not in http.stderr + direct.stderr


def test_out_of_order_over_http_says_to_re_send_to_a_fresh_service(service, tmp_path):
    path = _write(tmp_path / "unsorted.jsonl", _history(bad_in_the_middle=False))
    direct = qrisk("import", str(path), "--data-dir", str(tmp_path / "data"))
    http = qrisk("import", str(path), "--url", service.url, env={"QRISK_API_KEY": service.key})
    assert json.loads(direct.stdout)["out_of_order"] == json.loads(http.stdout)["out_of_order"] == 1
    assert "导入到新的数据目录" in direct.stderr and "import it into a new data directory" in direct.stderr
    assert "重新发送到一个新的（无历史数据的）服务" in http.stderr and "re-send it to a fresh service" in http.stderr
    assert "data directory" not in http.stderr
