"""A newcomer's first hour with qrisk: what the README says, done as it says.

A Chinese filter value typed into curl (raw UTF-8 in the request line) got a plain-text 400; the demo's
data directory gave other alert deadlines than its own --events-out; dashboards on a directory
`qrisk run` holds were told to import with --url; --policy's help hid $QRISK_POLICY_FILE; --batch 0
was taken; and `qrisk run` on the demo's directory moved it to today without a word."""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, Server


def qrisk(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qrisk", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          encoding="utf-8", env={**os.environ, **(env or {})})


# ---------------------------------------------------------------- 1. raw UTF-8 in the request target


def _raw(port: int, *parts: bytes, pause: float = 0.0) -> tuple[str, dict[str, str], bytes]:
    """Send ``parts`` as they are (as curl sends what was typed), read the whole answer (the status line,
    lower-cased headers, the body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for part in parts:
            s.sendall(part)
            time.sleep(pause)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        head, _, body = got.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
    return lines[0], headers, body


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("newcomer") / "data").start()
    yield srv
    srv.stop()


def _request(server: Server, target: bytes) -> bytes:
    return (b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + server.key.encode()
            + b"\r\nConnection: close\r\n\r\n")


def test_a_chinese_town_typed_raw_into_the_url_is_answered_as_the_readme_says(server):
    status, headers, body = _raw(server.port, _request(server, "/v1/alerts?town=北山".encode()))
    assert status.startswith("HTTP/1.1 422"), (status, body)
    answer = json.loads(body)
    assert [e["field"] for e in answer["errors"]] == ["query.town"]
    assert "北山" in answer["detail"]  # the value as typed, decoded again


def test_a_request_line_split_inside_a_character_is_encoded_too(server):
    raw = _request(server, "/v1/alerts?town=北山".encode())
    cut = raw.index("北".encode()) + 1  # between the bytes of one character
    status, _, body = _raw(server.port, raw[:cut], raw[cut:], pause=0.2)
    assert status.startswith("HTTP/1.1 422"), (status, body)
    assert [e["field"] for e in json.loads(body)["errors"]] == ["query.town"]


def test_bytes_past_ascii_in_a_header_or_body_are_left_as_they_came(server):
    # only the target is encoded: a header value is the application's to read as sent
    raw = (b"GET /v1/alerts?town=%E5%8C%97%E5%B1%B1 HTTP/1.1\r\nHost: x\r\nX-Note: \xe5\x8c\x97\r\nAuthorization: Bearer "
           + server.key.encode() + b"\r\nConnection: close\r\n\r\n")
    status, _, body = _raw(server.port, raw)
    assert status.startswith("HTTP/1.1 422") and "北山" in json.loads(body)["detail"]


def test_a_pipelined_request_with_raw_chinese_gets_the_json_refusal_not_plain_text(server):
    first = _request(server, b"/healthz").replace(b"Connection: close\r\n", b"")
    second = _request(server, "/v1/alerts?town=北山".encode())
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(first + second)
        got = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    answers = got.split(b"HTTP/1.1 ")
    assert answers[1].startswith(b"200")
    last = answers[-1]
    if last.startswith(b"422"):  # (encoded after all: as good)
        return
    assert last.startswith(b"400"), got
    head, _, body = last.partition(b"\r\n\r\n")
    assert b"application/json" in head
    answer = json.loads(body)
    assert answer["errors"][0]["type"] == "request_line_invalid" and answer["request_id"]
    assert "--data-urlencode" in answer["detail"] and "percent-encoded" in answer["detail_en"]


# ---------------------------------------------------------------- 2 and 6. the demo's data directory


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    where = tmp_path_factory.mktemp("demo")
    out = qrisk("demo", "--data-dir", str(where / "data"), "--events-out", str(where / "events.jsonl"))
    assert out.returncode == 0, out.stderr
    return where, out.stdout


def test_the_demos_directory_and_its_events_out_give_the_same_credit_file(demo):
    where, _ = demo
    kept = qrisk("credit-file", "W03", "--data-dir", str(where / "data"))
    replayed = qrisk("credit-file", "W03", "--events", str(where / "events.jsonl"))
    assert kept.returncode == replayed.returncode == 0, kept.stderr + replayed.stderr
    assert "AL-" in kept.stdout  # (W03 has the overdue rectification's alert: its deadline is what differed)
    assert kept.stdout == replayed.stdout


def test_the_demo_says_how_to_serve_its_day_without_the_clock_moving_to_today(demo):
    where, text = demo
    assert f"QRISK_TICK_SECONDS=0 qrisk run --data-dir {where / 'data'}" in text
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "`QRISK_TICK_SECONDS=0 qrisk run\n  --data-dir DIR` keeps the demo's day" in readme


# ---------------------------------------------------------------- 3. dashboards on a held directory


@pytest.mark.parametrize("command", ["grants", "check"])
def test_dashboards_on_a_directory_qrisk_run_holds_say_stop_it_not_use_url(tmp_path, command):
    import fcntl

    from qrisk.runtime import default_rules, open_embedded

    data = tmp_path / "svc"
    open_embedded(data, default_rules()).close()
    with open(data / "status", "ab") as held:  # the lock chdb (and so `qrisk run`) holds on its status file
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        out = qrisk("dashboards", command, "--store", str(data))
    assert out.returncode == 2, out.stderr
    assert "--url" not in out.stderr and "Traceback" not in out.stderr
    assert "stop qrisk run first" in out.stderr and "clickhouse://" in out.stderr and "先停止 qrisk run" in out.stderr


# ---------------------------------------------------------------- 4 and 5. the options' help and types


def _parsers(parser: argparse.ArgumentParser, path: str = "qrisk"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


def test_every_policy_and_keys_file_option_names_the_variable_it_defaults_to():
    from qrisk.cli import build_parser

    seen = {"--policy": [], "--keys-file": []}
    wrong = []
    for path, parser in _parsers(build_parser()):
        for flag, variable in (("--policy", "QRISK_POLICY_FILE"), ("--keys-file", "QRISK_KEYS_FILE")):
            action = _option(parser, flag)
            if action is None or action.help == argparse.SUPPRESS:
                continue
            seen[flag].append(path)
            if variable not in (action.help or ""):
                wrong.append(f"{path} {flag}: {action.help}")
    assert not wrong
    assert {"qrisk run", "qrisk import", "qrisk risk", "qrisk campaign", "qrisk credit-file", "qrisk backtest"} <= set(seen["--policy"])
    assert "qrisk run" in seen["--keys-file"]


def test_backtest_and_credit_file_options_have_help():
    from qrisk.cli import build_parser

    parsers = dict(_parsers(build_parser()))
    for flag in ("--from", "--to", "--json"):
        assert _option(parsers["qrisk backtest"], flag).help
    assert "default" in _option(parsers["qrisk credit-file"], "--format").help


@pytest.mark.parametrize("args, option", [
    (["import", "x.jsonl", "--batch", "0"], "--batch"),
    (["import", "x.jsonl", "--batch", "-3"], "--batch"),
    (["risk", "--top", "0"], "--top"),
    (["backtest", "--from", "2025-01-01", "--to", "2025-02-01", "--step-days", "0"], "--step-days"),
    (["keys", "create", "--role", "admin", "--name", "x", "--days", "0"], "--days"),
])
def test_a_count_below_one_is_refused_naming_its_option(args, option, capsys):
    from qrisk.cli import main

    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "must be at least 1" in err and "应为正整数" in err
