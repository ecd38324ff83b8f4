"""The key file as an operator meets it: a damaged file named in one line at start and survived at
runtime (the keys last read stay in use, /healthz says why); a first admin key only for a new
service whose store opened, never beside a log that has events, never in a directory made for it."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from qrisk.auth import KeyFileError, KeyStore
from tests.conftest import ROOT, Server, free_port, golden


def qrisk(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "qrisk", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


# --------------------------------------------------------------------------- reading the file


@pytest.mark.parametrize("text, named", [
    ("{broken", "not JSON"),
    ("[]", "not a key file"),
    ('{"keys": [{"key_id": "abcdefabcdef"}]}', "key record 1 is not valid"),
    ('{"keys": [{"key_id": "abcdefabcdef", "name": "x", "role": "root", "hash": "0", "created_at": "2026-01-01T00:00:00Z", '
     '"expires_at": "2027-01-01T00:00:00Z"}]}', "key abcdefabcdef (x) has the role 'root'"),
])
def test_a_damaged_key_file_is_named_with_what_is_wrong(tmp_path, text, named):
    path = tmp_path / "keys.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KeyFileError) as exc:
        KeyStore(path).load()
    assert str(path) in str(exc.value) and named in str(exc.value)
    assert "\n" not in str(exc.value)
    if text == "{broken":  # the Chinese half in Chinese, not json's English message
        assert "不是有效的 JSON（第 1 行第 2 列：此处应为双引号括起的字段名（或多了逗号））" in str(exc.value)


def test_the_keys_last_read_stay_in_use_while_the_file_does_not_parse(tmp_path, capsys):
    path = tmp_path / "keys.json"
    store = KeyStore(path)
    _, token = store.create("admin", "ops")
    assert store.authenticate(token).name == "ops"
    good = path.read_text(encoding="utf-8")
    path.write_text("{broken", encoding="utf-8")
    for _ in range(3):
        assert store.authenticate(token).name == "ops"
    assert "key file" in store.current_problem() and str(path) in store.current_problem()
    err = capsys.readouterr().err
    assert err.count("not JSON") == 1  # one line, not one per request
    # an unknown role is a damaged file too: the whole file waits, the last good keys serve
    doc = json.loads(good)
    doc["keys"][0]["role"] = "root"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert store.authenticate(token).role == "admin"
    assert "'root'" in store.current_problem()
    path.write_text(good + " ", encoding="utf-8")  # fixed (another size: seen as a change)
    assert store.current_problem() is None
    assert "parses again" in capsys.readouterr().err


# --------------------------------------------------------------------------- a real `qrisk run`


def test_qrisk_run_refuses_a_damaged_key_file_in_one_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "keys.json").write_text("{broken", encoding="utf-8")
    done = qrisk("run", "--data-dir", str(data), "--port", str(free_port()))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and f"key file {data / 'keys.json'}: not JSON" in done.stderr
    assert "Bearer" not in done.stderr


def test_a_key_file_damaged_while_serving_keeps_the_last_keys_and_degrades_health(tmp_path):
    server = Server(tmp_path / "data").start()
    path = server.data_dir / "keys.json"
    try:
        assert server.get("/healthz").json()["status"] == "ok"
        good = path.read_text(encoding="utf-8")
        path.write_text("{broken", encoding="utf-8")
        for _ in range(3):
            assert server.get("/metrics").status_code == 200
            assert server.get("/v1/enterprises").status_code == 200
        health = server.get("/healthz").json()
        assert health["status"] == "degraded" and str(path) in health["problems"]["keys_file"]
        path.write_text(good + "\n", encoding="utf-8")
        assert server.get("/healthz").json()["status"] == "ok"
    finally:
        server.stop()
    log = server.log_path.read_text(errors="replace")
    assert "Traceback" not in log
    assert log.count(f"key file {path}: not JSON") == 1
    assert log.count(f"key file {path} parses again") == 1


# --------------------------------------------------------------------------- the first key


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> Path:
    """A data directory whose log has an event (and its own key file)."""
    base = tmp_path_factory.mktemp("logged")
    events = base / "events.jsonl"
    events.write_text(json.dumps(golden("enterprise.registered")) + "\n", encoding="utf-8")
    done = qrisk("import", str(events), "--data-dir", str(base / "data"))
    assert done.returncode == 0, done.stderr
    return base / "data"


def test_no_admin_key_beside_a_log_with_events_and_no_directory_made(logged, tmp_path):
    elsewhere = tmp_path / "nonexist" / "dir" / "keys.json"
    done = qrisk("run", "--data-dir", str(logged), "--keys-file", str(elsewhere), "--port", str(free_port()))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "Bearer" not in done.stderr
    assert f"the key file {elsewhere} does not exist, but the event log holds 1 events" in done.stderr
    assert f"qrisk keys create --role admin --name NAME --keys-file {elsewhere}" in done.stderr
    assert not (tmp_path / "nonexist").exists()
    assert not (logged / "keys.json").exists()  # (the import made none either)


def test_no_admin_key_in_a_directory_that_does_not_exist(tmp_path):
    elsewhere = tmp_path / "nonexist" / "keys.json"
    done = qrisk("run", "--data-dir", str(tmp_path / "data"), "--keys-file", str(elsewhere), "--port", str(free_port()))
    assert done.returncode == 2, done.stderr
    assert f"the directory of the key file {elsewhere} does not exist" in done.stderr
    assert "Bearer" not in done.stderr and not (tmp_path / "nonexist").exists()


@pytest.mark.parametrize("by_env", [False, True])
def test_keys_create_makes_no_directory_for_a_given_key_file(tmp_path, by_env):
    elsewhere = tmp_path / "nodir" / "sub" / "keys.json"
    args = ["keys", "create", "--role", "admin", "--name", "x", "--data-dir", str(tmp_path / "data")]
    done = qrisk(*args, env={"QRISK_KEYS_FILE": str(elsewhere)}) if by_env else qrisk(*args, "--keys-file", str(elsewhere))
    assert done.returncode == 2, done.stderr
    assert f"密钥文件 {elsewhere} 所在的目录不存在" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == "" and not (tmp_path / "nodir").exists()
    # the directory there, the key is made
    elsewhere.parent.mkdir(parents=True)
    done = qrisk(*args, "--keys-file", str(elsewhere))
    assert done.returncode == 0, done.stderr
    assert elsewhere.exists() and len(done.stdout.strip()) > 20


def test_no_admin_key_for_a_store_that_does_not_open(tmp_path):
    data = tmp_path / "data"
    events = tmp_path / "e.jsonl"
    events.write_text(json.dumps(golden("enterprise.registered")) + "\n", encoding="utf-8")
    assert qrisk("import", str(events), "--data-dir", str(data)).returncode == 0
    # migrated by a newer qrisk, as a reviewer's directory was
    done = qrisk("sql", "--data-dir", str(data), "INSERT INTO schema_migrations VALUES (999, 'future', now())")
    assert done.returncode == 0, done.stderr
    for keys in (data / "keys.json", tmp_path / "k" / "keys.json"):
        keys.parent.mkdir(exist_ok=True)
        done = qrisk("run", "--data-dir", str(data), "--keys-file", str(keys), "--port", str(free_port()))
        assert done.returncode == 2 and "newer qrisk" in done.stderr, done.stderr
        assert "Bearer" not in done.stderr and not keys.exists()
    # `qrisk import` says it as `qrisk run` does: one line, no traceback
    done = qrisk("import", str(events), "--data-dir", str(data))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and f"cannot open data directory {data}" in done.stderr and "newer qrisk" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_first_admin_key_comes_after_the_replay(tmp_path):
    server = Server(tmp_path / "data", admin_key=False).start()
    try:
        log = server.log_path.read_text()
        lines = log.splitlines()
        minted = next(i for i, line in enumerate(lines) if "Authorization: Bearer" in line)
        opening = next(i for i, line in enumerate(lines) if "opening chdb" in line)
        assert opening < minted
    finally:
        server.stop()


def test_the_first_key_goes_into_the_default_data_directory_even_on_a_server(tmp_path):
    """(On a ClickHouse server the data directory is not made by chdb: DATA_DIR/keys.json's directory
    is still qrisk's own to make; only one given with --keys-file must exist.)"""
    from qrisk.cli import _first_start

    keys = KeyStore(tmp_path / "data" / "keys.json")
    _first_start(keys, 0)
    assert len(keys.keys()) == 1

