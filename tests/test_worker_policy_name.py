"""The Kafka worker names its policy file: `qrisk worker` loads the rules itself (to check the calendar before the app
is made) and the app it makes must still say the file and its sha256 at start, and name it in the advice to run
`qrisk rebuild --kafka --policy …` when snapshots were folded under another policy."""
from __future__ import annotations

import hashlib

import qrisk.topics as topics
import qrisk.worker as worker
from qrisk.settings import DEFAULT_POLICY
from qrisk.topics import KafkaSettings


def _start(monkeypatch) -> dict:
    monkeypatch.setattr(topics, "check_partitions", lambda *a, **k: None)
    monkeypatch.setattr(topics, "ensure_message_limit", lambda *a, **k: None)
    monkeypatch.setattr(worker, "check_web_port", lambda *a, **k: None)
    monkeypatch.setattr(worker, "prepare_data_dir", lambda *a, **k: None)
    seen: dict = {}
    real = worker.create_app

    def made(settings, rules=None, **kw):
        seen["app"] = real(settings, rules, **kw)
        raise SystemExit(0)  # (the app is what is looked at: no Kafka to run it against)

    monkeypatch.setattr(worker, "create_app", made)
    try:
        worker.run_worker(KafkaSettings())
    except SystemExit:
        pass
    return seen


def test_the_worker_says_its_policy_file_and_names_it_in_the_rebuild_advice(monkeypatch, tmp_path, capsys):
    policy = tmp_path / "county.yaml"
    policy.write_bytes(DEFAULT_POLICY.read_bytes() + b"\n# the county's copy\n")
    monkeypatch.setenv("QRISK_POLICY_FILE", str(policy))
    seen = _start(monkeypatch)
    err = capsys.readouterr().err
    digest = hashlib.sha256(policy.read_bytes()).hexdigest()[:12]
    assert f"qrisk worker: 策略 {policy} (sha256 {digest})" in err
    assert err.count("qrisk worker: 策略") == 1  # (said once, where the rules were loaded)
    assert seen["app"].qrisk_fold.policy_name == str(policy)


def test_the_built_in_policy_is_said_as_built_in(monkeypatch, capsys):
    monkeypatch.delenv("QRISK_POLICY_FILE", raising=False)
    seen = _start(monkeypatch)
    digest = hashlib.sha256(DEFAULT_POLICY.read_bytes()).hexdigest()[:12]
    assert f"qrisk worker: 策略 built-in (sha256 {digest})" in capsys.readouterr().err
    assert seen["app"].qrisk_fold.policy_name == "FILE"
