"""What an operator meets at the command line: a one-line reason for a wrong setting, path or port,
checked before anything is written or replayed; progress that reaches a log file; a service that
stays up when it has nothing to do."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port

from qrisk.cli import _Progress, main

ROOT = Path(__file__).resolve().parents[1]


def test_a_setting_that_does_not_parse_is_named(monkeypatch, capsys):
    monkeypatch.setenv("QRISK_PORT", "abc")
    assert main(["schema", "export", "unused"]) == 2
    err = capsys.readouterr().err
    assert "QRISK_PORT" in err and "'abc'" in err and "Traceback" not in err


@pytest.mark.parametrize("port", ["0", "65536", "99999", "http"])
def test_a_port_out_of_range_is_refused(port, capsys):
    # 99999 would have been taken modulo 65536 by the kernel: the service on another port than it says
    with pytest.raises(SystemExit) as stop:
        main(["run", "--port", port])
    assert stop.value.code == 2
    assert "--port" in capsys.readouterr().err


def test_a_busy_port_is_refused_before_a_key_is_made_or_the_log_replayed(tmp_path, capsys):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert main(["run", "--port", str(port), "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "in use" in err
    assert not (tmp_path / "data").exists()  # no first-admin key, no store opened


def test_a_bad_policy_file_is_named_with_the_reason(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["run", "--policy", str(tmp_path / "missing.yaml"), "--data-dir", str(data), "--port", str(free_port())]) == 2
    assert f"{tmp_path / 'missing.yaml'}: No such file or directory" in capsys.readouterr().err
    policy = tmp_path / "policy.yaml"
    policy.write_text("risk:\n  nonsense: 7\n", encoding="utf-8")
    assert main(["run", "--policy", str(policy), "--data-dir", str(data), "--port", str(free_port())]) == 2
    assert "risk.nonsense" in capsys.readouterr().err
    policy.write_text("risk: [\n", encoding="utf-8")
    assert main(["run", "--policy", str(policy), "--data-dir", str(data), "--port", str(free_port())]) == 2
    assert "not YAML" in capsys.readouterr().err
    assert not data.exists()


def test_a_certificate_given_as_its_key_is_refused_before_the_replay(tmp_path, capsys):
    cert = tmp_path / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(tmp_path / "tls.key"), "-out", str(cert)], check=True, capture_output=True)
    code = main(["run", "--tls-certfile", str(cert), "--tls-keyfile", str(cert), "--data-dir", str(tmp_path / "data"),
                 "--port", str(free_port())])
    assert code == 2
    assert "private key" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_the_demo_does_not_fold_a_second_county_into_kept_data(tmp_path, capsys):
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "something").write_text("x")
    assert main(["demo", "--data-dir", str(kept)]) == 2
    err = capsys.readouterr().err
    # Chinese first, then English, as the other errors say it
    assert err == (f"qrisk: --data-dir {kept} 不是空目录：请给出新的或空的目录（演示从零构建一个县） / --data-dir {kept} is not empty: "
                   "give a new or empty directory (the demo builds a county from nothing)\n")
    assert main(["demo", "--data-dir", str(kept / "something")]) == 2
    err = capsys.readouterr().err
    assert "是文件，不是目录" in err and err.index("是文件") < err.index("is a file, not a directory")
    assert (kept / "something").read_text() == "x" and sorted(p.name for p in kept.iterdir()) == ["something"]


def test_import_to_a_service_that_is_not_there_says_so_with_what_got_in(tmp_path, capsys):
    events = tmp_path / "e.jsonl"
    events.write_text("{}\n", encoding="utf-8")
    port = free_port()
    assert main(["import", str(events), "--url", f"localhost:{port}"]) == 2
    assert "scheme" in capsys.readouterr().err
    assert main(["import", str(events), "--url", f"http://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert "ConnectError" in err and "0 accepted" in err and "Traceback" not in err


def test_progress_in_a_log_is_plain_lines(capsys):
    progress = _Progress("replay", 1000, every=0.0, terminal=False)
    progress(400)
    progress(600)
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("qrisk: replay: 400 of 1,000 events (")
    assert lines[1].startswith("qrisk: replay: 1,000 of 1,000 events (")
    assert lines[-1].startswith("qrisk: replay: 1,000 of 1,000 events, done (")


def test_a_quiet_run_in_a_log_prints_no_progress(capsys):
    progress = _Progress("import", None, every=3600.0, terminal=False)
    progress(10)
    progress.close()
    assert capsys.readouterr().err == ""


def test_the_dispatcher_without_receivers_stays_up_idle(tmp_path):
    """Under compose (restart: unless-stopped) a dispatcher that exited for want of receivers would
    be started again for ever; it waits, says why on its health page, and stops on SIGTERM."""
    from qrisk.store import open_store

    open_store(tmp_path / "store").close()  # (a chdb directory that does not exist is refused: nothing could ever be sent from it)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "qrisk", "alerts", "dispatch", "--store", str(tmp_path / "store"),
                             "--metrics-port", str(port)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    health = json.loads(resp.read())
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert health["status"] == "idle" and "receivers" in health["reason"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "no alert receivers" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_version_is_printed(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"qrisk {version('qrisk')}"


def test_keys_list_names_a_missing_key_file(tmp_path, capsys):
    assert main(["keys", "list", "--data-dir", str(tmp_path / "typo")]) == 2
    assert "no key file at" in capsys.readouterr().err


@pytest.mark.parametrize("group", ["alerts", "schema", "keys", "topics"])
def test_a_command_group_without_its_action_shows_its_own_help(group, capsys):
    assert main([group]) == 2
    assert capsys.readouterr().out.startswith(f"usage: qrisk {group} ")


def test_warnings_out_with_a_mapped_dry_run_is_refused_not_ignored(tmp_path, capsys):
    from tests.conftest import ROOT

    mappings = ROOT / "ingest" / "mappings"
    assert main(["import", "sampling", str(mappings / "examples" / "samr_announcement.csv"), "--mapping", str(mappings / "samr_announcement.yaml"),
                 "--events-out", str(tmp_path / "mapped.jsonl"), "--warnings-out", str(tmp_path / "w.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "--warnings-out 用于导入" in err and "--warnings-out goes with a load" in err and not (tmp_path / "mapped.jsonl").exists()


# what each phrase of a role's help claims, by the route it names (a new guarded route must be added here)
ROUTE_CLAIMS = {
    ("POST", "/v1/events"): "post", ("GET", "/v1/enterprises"): "credit files", ("GET", "/v1/enterprises/{enterprise_id}"): "credit files",
    ("GET", "/v1/alerts"): "alerts", ("GET", "/v1/alerts/{alert_id}"): "alerts", ("POST", "/v1/alerts/{alert_id}/actions"): "acts on alerts",
    ("GET", "/v1/campaign"): "campaign table", ("GET", "/v1/complaints"): "registers", ("GET", "/v1/samples"): "registers", ("GET", "/v1/inspections"): "registers", ("GET", "/v1/dead-letters"): "dead letters",
    ("GET", "/v1/dead-letters/{dead_letter_id}"): "dead letters", ("GET", "/v1/events/{event_id}"): "what became of",
    ("GET", "/v1/audit"): "audit", ("GET", "/metrics"): "metrics", ("POST", "/v1/alerts/redeliver"): "re-sends given-up",
}
READS = "every read"  # admin's: every GET that reads data


def test_every_roles_help_says_what_its_routes_and_events_allow(capsys):
    """`qrisk keys create --help` said a supervisor "reads credit files and dead letters": not that it
    acts on alerts (POST /v1/alerts/{id}/actions). Each role's text is checked against the API's route
    guards and the events qrisk.auth lets it post."""
    import re

    from alerts.lifecycle import TRANSITIONS
    from qrisk.auth import ROLES, posting_rules
    from qrisk.cli import ROLE_HELP, SENDERS_NOTE, SENDERS_READ
    from schemas.events import EVENT_TYPES
    from tests.conftest import offline_app

    guarded = {(m, r.path): set(r.openapi_extra["x-qrisk-roles"]) for r in offline_app().routes
               if "x-qrisk-roles" in (getattr(r, "openapi_extra", None) or {}) for m in r.methods}
    assert set(guarded) == set(ROUTE_CLAIMS)
    assert set(ROLE_HELP) == set(ROLES)
    rules = posting_rules()
    for role in ROLES:
        text = ROLE_HELP[role] + (f" ({SENDERS_NOTE})" if role in SENDERS_READ else "")
        for (method, path), roles in guarded.items():
            claim = ROUTE_CLAIMS[method, path]
            said = re.search(rf"\b{claim}", text) is not None or (method == "GET" and path != "/metrics" and READS in text)
            assert said == (role in roles), f"{role}: {method} {path} is {'allowed' if role in roles else 'not allowed'}: {text}"
        # the events it posts, by type or family, and the source kind they must carry
        named = set()
        for family in re.findall(r"\b([a-z_]+\.(?:\*|[a-z_]+))", text):
            named |= {t for t in EVENT_TYPES if t == family or (family.endswith(".*") and t.startswith(family[:-1]))}
        if role == "admin":
            assert "any event type" in text and not named
        else:
            types, kind = rules.get(role, (frozenset(), None))
            assert named == set(types), role
            assert kind is None or f"source kind {kind}" in text, role
    # a supervisor's steps, by their names
    assert all(action in ROLE_HELP["supervisor"] for action in TRANSITIONS)
    with pytest.raises(SystemExit):
        main(["keys", "create", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert all(" ".join(f"{role}: {text}".split()) in shown for role, text in ROLE_HELP.items())


STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "


def test_a_bad_setting_for_a_service_is_stamped_as_its_other_lines(monkeypatch, capsys):
    """`QRISK_PORT=70000 qrisk run` fails while the parser is built, before the command is known: its line
    carries the UTC time as every other stderr line of `qrisk run` does; so do a bad option's usage lines."""
    import re

    monkeypatch.setenv("QRISK_PORT", "70000")
    assert main(["run", "--data-dir", "unused"]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(STAMP + r"qrisk: 设置 QRISK_PORT 的值无效 / invalid setting: QRISK_PORT: .*'70000'\)\n", err), err
    # a command that is no service is not stamped
    assert main(["keys", "list", "--data-dir", "unused"]) == 2
    assert capsys.readouterr().err.startswith("qrisk: 设置 QRISK_PORT 的值无效")
    monkeypatch.delenv("QRISK_PORT")
    with pytest.raises(SystemExit):
        main(["run", "--port", "99999"])
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(re.match(STAMP, line) for line in lines), lines
    assert not type(sys.stderr).__name__ == "_StampedStream"  # (put back after the exit)


def test_the_service_commands_are_known_by_their_words():
    """What is said before the command line is parsed is stamped by the words that name a service: the
    same commands as those whose own lines are stamped."""
    import argparse

    from qrisk.cli import _SERVICE_COMMANDS, _SERVICES, _is_service, _names_a_service, build_parser

    found = set()
    for words in _SERVICE_COMMANDS:
        parser = build_parser()
        for word in words:
            (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            parser = sub.choices[word]
        func = parser.get_default("func")
        assert _is_service(func), words
        found.add((func.__module__, func.__name__))
        assert _names_a_service([*words, "--port", "1"])
    assert found == _SERVICES
    assert not any(_names_a_service(argv) for argv in (["demo"], ["alerts"], ["import", "run"], ["keys", "list"], []))
