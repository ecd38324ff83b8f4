"""An operator's mistakes and outages, each answered with one line that names the setting or the
path and the reason, in Chinese and English, and exit 2, never a traceback (tests/test_cli.py has
the older ones).  No Kafka or ClickHouse server is started: "no broker" and "no server" are
addresses nothing listens on."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port

from qrisk.cli import main

ROOT = Path(__file__).resolve().parents[1]


def closed_port() -> int:
    """A loopback port nothing listens on (bound and released: the kernel answers RST)."""
    return free_port()


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    return lines[-1]


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize("value", ["0", "70000", "-1"])
def test_qrisk_port_out_of_range_is_named(value, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("QRISK_PORT", value)
    assert main(["run", "--data-dir", str(tmp_path / "d")]) == 2
    line = one_line(capsys.readouterr().err)
    assert "QRISK_PORT" in line and "设置" in line and value in line
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("name, value", [
    ("QRISK_OUTBOX_INTERVAL", "0"), ("QRISK_MAX_BATCH", "0"), ("QRISK_MAX_BATCH", "-5"), ("QRISK_TICK_SECONDS", "-1"),
    ("QRISK_TICK_SECONDS", "0.01"), ("QRISK_SNAPSHOT_SECONDS", "-1"), ("QRISK_OUTBOX_MAX_ATTEMPTS", "0"),
    ("QRISK_OUTBOX_BASE_DELAY", "-1"), ("QRISK_SMTP_PORT", "0"), ("QRISK_OUTBOX_METRICS_PORT", "70000"),
    ("QRISK_MAX_BODY_BYTES", "10"), ("QRISK_OUTBOX_LEASE_SECONDS", "0"), ("QRISK_WRITER_LEASE_SECONDS", "1"),
])
def test_numeric_settings_out_of_bounds_are_refused(name, value, monkeypatch, capsys):
    monkeypatch.setenv(name, value)
    assert main(["schema", "export", "unused"]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"qrisk: 设置 {name} 的值无效 / invalid setting: {name}: "), line


def test_zero_ticks_still_means_never(monkeypatch):
    from qrisk.settings import Settings

    monkeypatch.setenv("QRISK_TICK_SECONDS", "0")
    assert Settings().tick_seconds == 0


@pytest.mark.parametrize("name, value", [
    ("QRISK_KAFKA_PARTITIONS", "0"), ("QRISK_WORKER_BATCH", "0"), ("QRISK_SINK_BATCH", "-1"),
    ("QRISK_WORKER_SESSION_TIMEOUT", "0"), ("QRISK_WORKER_WEB_PORT", "70000"), ("QRISK_STORE_URL", "mysql://x"),
    ("QRISK_SINK_LINGER_SECONDS", "-1"),
])
def test_kafka_settings_out_of_bounds_are_refused(name, value, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    assert main(["sink", "--bootstrap", f"127.0.0.1:{closed_port()}"]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"invalid setting: {name}" in line, line
    assert not any(tmp_path.iterdir())


def test_an_unknown_variable_is_warned_about_with_the_closest_name(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("QRISK_TICK_SECOND", "5")
    monkeypatch.setenv("QRISK_NONSENSE_THING", "1")
    monkeypatch.setenv("QRISK_DINGTALK_DUTY_SECRET", "SEC…")  # a policy receiver's secret_env: not a setting, not a mistake
    monkeypatch.setenv("QRISK_CLICKHOUSE_PASSWORD", "x")  # docker-compose.yml's
    assert main(["keys", "list", "--data-dir", str(tmp_path)]) == 2  # (no key file: any command warns first)
    err = capsys.readouterr().err
    assert "QRISK_TICK_SECOND is not a setting and is ignored (did you mean QRISK_TICK_SECONDS?)" in err
    assert "是否想写 QRISK_TICK_SECONDS" in err
    assert "QRISK_NONSENSE_THING is not a setting" in err
    assert "DINGTALK" not in err and "CLICKHOUSE_PASSWORD" not in err


# ---------------------------------------------------------------- store targets


@pytest.mark.parametrize("url", ["mysql://x", "http://127.0.0.1:8123/qrisk", "postgres://u:secret@h/db"])
def test_a_clickhouse_url_of_another_scheme_is_refused(url, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QRISK_CLICKHOUSE_URL", url)
    assert main(["run", "--data-dir", str(tmp_path / "d"), "--port", str(free_port())]) == 2
    line = one_line(capsys.readouterr().err)
    assert "QRISK_CLICKHOUSE_URL" in line and "clickhouse://" in line and "secret" not in line
    assert not any(tmp_path.iterdir()), "no chdb directory named after the URL"


@pytest.mark.parametrize("command", [["sink", "--bootstrap", "127.0.0.1:1"], ["alerts", "dispatch", "--once"],
                                     ["dashboards", "check"]])
def test_a_store_url_of_another_scheme_is_refused(command, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    if command[0] == "dashboards":
        command = [*command, "--store", "mysql://x/y"]
    else:
        monkeypatch.setenv("QRISK_STORE_URL", "mysql://x/y")
    assert main(command) == 2
    line = one_line(capsys.readouterr().err)
    assert "mysql://x/y" in line and "clickhouse://" in line and "不支持的存储地址" in line, line
    assert not any(tmp_path.iterdir())


def test_open_store_refuses_other_schemes(tmp_path, monkeypatch):
    from qrisk.store import StoreTargetError, check_target, open_store

    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreTargetError):
        open_store("mysql://x")
    assert not any(tmp_path.iterdir())
    assert check_target("chdb:///srv/q") == "/srv/q" and check_target("./data") == "./data"
    assert check_target("clickhouses://h:9440/q") is None


# ---------------------------------------------------------------- unwritable data directories


def test_a_data_directory_under_a_file_is_named(tmp_path, capsys):
    # as root (the tests' usual user here) chmod 0555 stops nothing: a path through a file fails for everyone
    (tmp_path / "file").write_text("x")
    data = tmp_path / "file" / "d"
    assert main(["run", "--data-dir", str(data), "--port", str(free_port())]) == 2
    line = one_line(capsys.readouterr().err)
    assert "数据目录" in line and str(data) in line and "Not a directory" in line


def test_check_data_dir_tries_to_write(tmp_path, monkeypatch):
    from qrisk import runtime

    data = tmp_path / "d"
    data.mkdir()

    def refuse(*_a, **_k):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(runtime.tempfile, "mkstemp", refuse)
    with pytest.raises(runtime.DataDirError) as caught:
        runtime.check_data_dir(data)
    assert "数据目录" in str(caught.value) and "不可写" in str(caught.value)
    assert "data directory" in str(caught.value) and "is not writable: Read-only file system" in str(caught.value)


def _read_only_mount_works() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o ro tmpfs /mnt 2>/dev/null || mount -t tmpfs -o ro tmpfs /tmp"],
                           capture_output=True)
    return probe.returncode == 0


def test_a_read_only_data_directory_is_named_not_taken_for_a_lock(tmp_path):
    """A real read-only file system (a bind mount made read-only, in a mount namespace of its own that
    vanishes with the command): `qrisk run` and `qrisk risk` name it, neither blames `qrisk run`.
    (The tests run as root, whom mode 0555 does not stop: a mount is the read-only that binds root too.)"""
    if not _read_only_mount_works():
        pytest.fail("this test needs `unshare -rm` (util-linux) and a private mount namespace: a read-only "
                    "mount is the only read-only directory that binds root")
    data = tmp_path / "data"
    from qrisk.runtime import default_rules, open_embedded

    open_embedded(data, default_rules()).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = (f"mount --bind {data} {data} && mount -o remount,bind,ro {data} {data} && "
              f"{{ {sys.executable} -m qrisk run --data-dir {data} --port {free_port()}; echo rc=$?; "
              f"{sys.executable} -m qrisk risk --data-dir {data}; echo rc=$?; }}")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.split() == ["rc=2", "rc=2"], (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in done.stderr, done.stderr
    for line in lines:
        assert "数据目录" in line and "不可写" in line and "is not writable: Read-only file system" in line
        assert "holds it" not in line and "qrisk run" not in line
    (data / "still-writable").write_text("x")  # the mount went with the namespace


# ---------------------------------------------------------------- servers away


def test_embedded_run_with_clickhouse_away_is_one_line(monkeypatch, capsys, tmp_path):
    port = closed_port()
    monkeypatch.setenv("QRISK_CLICKHOUSE_URL", f"clickhouse://qrisk:secret@127.0.0.1:{port}/qrisk")
    assert main(["run", "--data-dir", str(tmp_path / "d"), "--port", str(free_port())]) == 2
    line = one_line(capsys.readouterr().err)
    assert "QRISK_CLICKHOUSE_URL" in line and f"127.0.0.1:{port}" in line and "无法打开 ClickHouse" in line
    assert "secret" not in line


@pytest.mark.parametrize("command", [["tick"], ["produce", "EVENTS", "--source", "lab"], ["worker"], ["sink"],
                                     ["topics", "list"], ["topics", "create"]])
def test_no_broker_is_one_line_naming_the_setting(command, tmp_path):
    events = tmp_path / "ev.jsonl"
    events.write_text("{}\n")
    command = [str(events) if c == "EVENTS" else c for c in command]
    port = closed_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QRISK_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
           "QRISK_DATA_DIR": str(tmp_path / "store")}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "qrisk", *command], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr
    assert time.monotonic() - started < 15, "said within seconds, not after the client's 30 s bootstrap timeout"
    line = one_line(done.stderr)
    assert f"QRISK_KAFKA_BOOTSTRAP" in line and f"127.0.0.1:{port}" in line and "无法连接 Kafka" in line, line
    assert not (tmp_path / "store").exists(), "the sink makes no store before it reaches the broker"


# ---------------------------------------------------------------- shutdown while derived rows fail


def test_shutdown_says_what_it_waits_for_and_stops_waiting(tmp_path, capsys):
    from qrisk.demo import CountyGenerator
    from qrisk.runtime import default_rules, open_embedded

    pipeline = open_embedded(tmp_path / "d", default_rules())
    pipeline.start_background_sink()

    def disk_full(_batches):
        raise OSError(28, "No space left on device")

    pipeline._store_derived = disk_full
    sink = pipeline._sink
    events = CountyGenerator(seed=3, months=6).generate()[:5]
    pipeline.submit(events)
    time.sleep(0.3)
    started = time.monotonic()
    try:
        pipeline.close(wait=1.0)
        closed_in = time.monotonic() - started
    finally:
        # the thread close gave up on retries on; let its next try succeed so that it ends here
        # rather than printing its retries into a later test's captured output
        pipeline._store_derived = lambda _batches: None
        sink.thread.join(timeout=40)
    assert not sink.thread.is_alive()
    assert closed_in < 10
    err = capsys.readouterr().err
    assert "waiting to write the derived rows of 5 events, at most 1 s" in err
    assert "kill -9 is safe: they are re-derived from the log at start" in err and "kill -9 是安全的" in err
    assert "gave up after 1 s" in err and "Traceback" not in err
    # and so it is: the next start re-derives them
    again = open_embedded(tmp_path / "d", default_rules())
    try:
        assert again.recovery.get("rederived") == (1, 5)
    finally:
        again.close()


# ---------------------------------------------------------------- dashboards


def test_publish_to_an_unreachable_grafana_is_one_line(capsys):
    port = closed_port()
    assert main(["dashboards", "publish", "--url", f"http://127.0.0.1:{port}", "--token", "x"]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("qrisk: 无法发布到 Grafana") and f"http://127.0.0.1:{port}" in line and "Connection refused" in line


def test_publish_without_url_says_qrisk(monkeypatch, capsys):
    monkeypatch.delenv("QRISK_GRAFANA_URL", raising=False)
    assert main(["dashboards", "publish"]) == 2
    assert one_line(capsys.readouterr().err).startswith("qrisk: ")


def test_check_on_a_missing_directory_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "typo-dir"
    assert main(["dashboards", "check", "--store", str(missing)]) == 2
    assert "no such data directory" in one_line(capsys.readouterr().err)
    assert not missing.exists()


def test_export_prints_absolute_paths(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["dashboards", "export", "out"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed and all(Path(p).is_absolute() and Path(p).is_file() and Path(p).parent == tmp_path / "out" for p in printed)


# ---------------------------------------------------------------- imports over HTTP


def test_an_import_ending_on_a_503_says_how_far_it_got(tmp_path, capsys):
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    calls = []

    class Service(BaseHTTPRequestHandler):  # the first batch in, then the disk is full
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            calls.append(len(body))
            if len(calls) == 1:
                answer, status = {"accepted": len(body), "duplicates": 0, "results": []}, 200
            else:
                answer, status = {"detail": "事件日志未确认写入", "detail_en": "not enough space"}, 503
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Service)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from qrisk.demo import CountyGenerator

        events = CountyGenerator(seed=5, months=6).generate()[:7]
        path = tmp_path / "ev.jsonl"
        path.write_text("".join(e.model_dump_json() + "\n" for e in events), encoding="utf-8")
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert main(["import", str(path), "--url", url, "--batch", "4", "--key", "k"]) == 2
    finally:
        server.shutdown()
    line = one_line(capsys.readouterr().err)
    assert calls == [4, 3]
    assert f"{url}: answered 503" in line and "before that: 4 accepted, 0 duplicates, 0 rejected" in line
    assert "run the same import again" in line and "此前已接受 4 个" in line


# ---------------------------------------------------------------- alerts dispatch


def test_dispatch_on_a_directory_qrisk_run_holds_says_run_sends_already(tmp_path, capsys):
    import fcntl

    from qrisk.runtime import default_rules, open_embedded

    data = tmp_path / "svc"
    open_embedded(data, default_rules()).close()
    with open(data / "status", "ab") as held:  # the lock chdb (and so `qrisk run`) holds on its status file
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["alerts", "dispatch", "--once", "--store", str(data)]) == 2
    line = one_line(capsys.readouterr().err)
    assert "already sends its alerts itself" in line and "已自行发送预警通知" in line and "--url" not in line


def test_dispatch_defaults_to_the_data_directory_as_the_readme_says(tmp_path, monkeypatch, capsys):
    for name in ("QRISK_STORE_URL", "QRISK_CLICKHOUSE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QRISK_DATA_DIR", str(tmp_path / "typo"))
    assert main(["alerts", "dispatch", "--once"]) == 2
    assert f"{tmp_path / 'typo'}: no such data directory" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "typo").exists()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "| `QRISK_STORE_URL` | `QRISK_DATA_DIR` |" in readme


# ---------------------------------------------------------------- log lines


def test_service_lines_carry_the_servers_timestamp(capsys):
    import re

    from qrisk.cli import TIME_FORMAT, server_log_config

    assert server_log_config()["formatters"]["default"]["datefmt"] == TIME_FORMAT
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        assert main(["run", "--port", str(held.getsockname()[1]), "--data-dir", "unused"]) == 2
    line = one_line(capsys.readouterr().err)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ qrisk: ", line), line
    assert type(sys.stderr).__name__ != "_StampedStream", "stderr is given back"


def test_the_stamp_goes_once_at_each_line_start_and_not_on_dated_lines():
    import io

    from qrisk.cli import _StampedStream

    raw = io.StringIO()
    out = _StampedStream(raw)
    print("qrisk: one", "part", file=out)
    out.write("two\nthree ")
    out.write("continued\n")
    out.write("2026-11-26T19:48:52Z INFO:     uvicorn's own\n")
    lines = raw.getvalue().splitlines()
    assert [line[21:] for line in lines[:3]] == ["qrisk: one part", "two", "three continued"]
    assert lines[3] == "2026-11-26T19:48:52Z INFO:     uvicorn's own"


# ---------------------------------------------------------------- small texts


def test_keys_list_columns_line_up_with_chinese_names(tmp_path, capsys):
    from qrisk.cli import _width

    for name in ("良渚", "ops", "余杭区市场监管局"):
        assert main(["keys", "create", "--role", "supervisor", "--name", name, "--data-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["keys", "list", "--data-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    role_columns = {_width(line[:line.index(" supervisor" if "supervisor" in line else " role")]) for line in lines}
    assert len(role_columns) == 1, lines


def test_a_bad_policy_is_named_once(tmp_path, capsys):
    policy = tmp_path / "pol_bad.yaml"
    policy.write_text("risk:\n  nonsense: 7\n", encoding="utf-8")
    events = tmp_path / "ev.jsonl"
    events.write_text("", encoding="utf-8")
    assert main(["risk", "--events", str(events), "--policy", str(policy)]) == 2
    line = one_line(capsys.readouterr().err)
    assert "policy: policy" not in line and f"策略文件 {policy} 有误" in line and "risk.nonsense" in line, line


@pytest.mark.parametrize("text", ["", "\n# every rule as the default\n"], ids=["empty", "comments only"])
def test_an_empty_policy_file_is_refused_not_run_on_the_defaults(tmp_path, capsys, text):
    """An operator's review: an empty --policy file (truncated, a template not rendered) started on the built-in
    defaults, the start-up line showing only another sha256.  `{}` is the way to say "the defaults"."""
    policy = tmp_path / "pol_empty.yaml"
    policy.write_text(text, encoding="utf-8")
    events = tmp_path / "ev.jsonl"
    events.write_text("", encoding="utf-8")
    assert main(["risk", "--events", str(events), "--policy", str(policy)]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"策略文件 {policy} 为空" in line and "is empty" in line, line
    from qrisk.settings import load_policy
    from schemas.policy import Policy

    policy.write_text("{}\n", encoding="utf-8")
    assert load_policy(policy) == Policy()


def test_a_receiver_url_with_user_and_password_is_refused_naming_the_field(tmp_path, capsys):
    """urllib takes "user:password@host" for the host and never delivers; the policy says so, in both
    languages, naming the receiver's field and without repeating the password."""
    policy = tmp_path / "pol_userinfo.yaml"
    policy.write_text("alerts:\n  receivers:\n    - {name: hook, kind: webhook, url: 'https://qrisk:hunter2secret@hooks.example/alerts'}\n",
                      encoding="utf-8")
    events = tmp_path / "ev.jsonl"
    events.write_text("", encoding="utf-8")
    assert main(["risk", "--events", str(events), "--policy", str(policy)]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"策略文件 {policy} 有误" in line, line
    assert "alerts.receivers[hook].url: 地址中不能含用户名和密码（user:password@）" in line, line
    assert "alerts.receivers[hook].url: the address must not carry a user name and password (user:password@)" in line, line
    assert "hunter2secret" not in line


# ---------------------------------------------------------------- retention on a stopped data directory


def test_qrisk_sql_prunes_a_stopped_data_directory(tmp_path, capsys):
    """The README's retention snippet, as written there."""
    import json
    import re

    from qrisk.demo import CountyGenerator
    from qrisk.runtime import default_rules, open_embedded

    data = tmp_path / "data"
    pipeline = open_embedded(data, default_rules())
    pipeline.submit(CountyGenerator(seed=7, months=6).generate()[:200])
    pipeline.close()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    snippet = re.search(r'qrisk sql --data-dir ./data "(ALTER TABLE effects DELETE WHERE [^"]+)"', readme).group(1)
    cut = "2025-06-01 00:00:00"
    statement = snippet.replace("now() - INTERVAL 1 YEAR", f"toDateTime('{cut}')")
    # what the snippet deletes, and the old rows it keeps (the kinds the dashboards read current state from)
    where = statement.split(" WHERE ", 1)[1]
    count = (f"SELECT count() AS n, countIf({where}) AS old, countIf(occurred_at < toDateTime('{cut}') AND NOT ({where})) AS kept "
             "FROM effects")

    assert main(["sql", "--data-dir", str(data), count]) == 0
    before = json.loads(capsys.readouterr().out)
    assert before["old"] > 0 and before["kept"] > 0
    assert main(["sql", "--data-dir", str(data), statement]) == 0
    capsys.readouterr()
    assert main(["sql", "--data-dir", str(data), count]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after == {"n": before["n"] - before["old"], "old": 0, "kept": before["kept"]}  # gone when the command returned

    assert main(["sql", "--data-dir", str(data), "SELEC 1"]) == 2
    assert "the statement failed" in one_line(capsys.readouterr().err)
    assert main(["sql", "--data-dir", str(tmp_path / "typo"), "SELECT 1"]) == 2
    assert "no such data directory" in one_line(capsys.readouterr().err) and not (tmp_path / "typo").exists()


def test_a_policy_receivers_secret_variable_is_not_warned_about(monkeypatch, capsys, tmp_path):
    # secret_env may be any name: the policy file says which variables its receivers read
    policy = tmp_path / "policy.yaml"
    policy.write_text("alerts:\n  receivers:\n    - {name: duty, kind: dingtalk, url: 'https://oapi.dingtalk.com/robot/send?access_token=x',"
                      " secret_env: QRISK_DUTY_SIGNING}\n", encoding="utf-8")
    monkeypatch.setenv("QRISK_DUTY_SIGNING", "SEC…")
    monkeypatch.setenv("QRISK_DUTY_SIGNIN", "SEC…")  # a typo of it is still a mistake
    monkeypatch.setenv("QRISK_POLICY_FILE", str(policy))
    assert main(["keys", "list", "--data-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "QRISK_DUTY_SIGNING is not" not in err
    assert "QRISK_DUTY_SIGNIN is not a setting and is ignored (did you mean QRISK_DUTY_SIGNING?)" in err
