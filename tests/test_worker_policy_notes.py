"""Kafka mode says what `qrisk run` says of a policy at start: maxima not adding up to 100 at `qrisk worker` start, and
a 严重违法失信 listing naming no enterprise on file once the worker's partitions are loaded (each enterprise's events go
to one log partition: the worker holding it is the one that can tell), in its log and on /qrisk/healthz/."""
from __future__ import annotations

import yaml

from processors.step import Rules
from qrisk.kafka_log import event_value
from qrisk.worker import BatchOutput, Fold, log_partition
from schemas.policy import Policy
from tests.test_policy_bounds import BASE, _at, _listing
from tests.test_risk import E, registered
from tests.test_worker_policy_name import _start

TYPO = "E-33011O-001"  # a letter O typed for a zero
PARTITIONS = 4


def test_the_worker_says_at_start_that_the_score_is_not_out_of_100(monkeypatch, tmp_path, capsys):
    policy = tmp_path / "140.yaml"
    policy.write_text(yaml.safe_dump(_at(BASE, "risk.static.max", 80), allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("QRISK_POLICY_FILE", str(policy))
    _start(monkeypatch)
    err = capsys.readouterr().err
    assert "qrisk worker: 警告：风险分满分为 140 分而非 100 分" in err
    assert "serious_dishonesty" not in err  # (lists nobody: nothing to check)


def test_the_worker_says_at_start_where_the_listings_are_checked(monkeypatch, tmp_path, capsys):
    policy = tmp_path / "typo.yaml"
    policy.write_text(yaml.safe_dump(_listing(TYPO), allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("QRISK_POLICY_FILE", str(policy))
    _start(monkeypatch)
    err = capsys.readouterr().err
    assert "qrisk worker: 策略 risk.credit.serious_dishonesty 列入 1 家企业：分区载入后核对" in err
    assert "满分" not in err  # (the shipped maxima add up to 100)


def _fold(rules, listed: list[str]) -> Fold:
    pol = Policy.model_validate(_at(BASE, "risk.credit.serious_dishonesty", listed))
    return Fold(Rules(catalogue=rules.catalogue, policy=pol), "log")


def test_a_listing_naming_no_enterprise_is_said_by_the_worker_holding_its_partition(rules):
    mine, others = log_partition(TYPO.encode(), PARTITIONS), log_partition(E.encode(), PARTITIONS)
    fold = _fold(rules, [TYPO, E])
    assert fold.unregistered_listings(PARTITIONS) is None  # (nothing loaded yet: nothing it can tell)
    fold.load(mine, [])
    fold.load(others, [])
    said = fold.unregistered_listings(PARTITIONS)
    assert said is not None and TYPO in said and E in said.split("（")[0]  # (E has no file here yet either)
    fold.apply(others, 0, event_value(registered()), None, BatchOutput())
    said = fold.unregistered_listings(PARTITIONS)
    assert said is not None and said.startswith(f"risk.credit.serious_dishonesty 列入严重违法失信名单的企业 {TYPO} 在事件日志中没有登记")
    # a worker holding the other partitions only says nothing of it: the typo's partition is another worker's to say
    elsewhere = _fold(rules, [TYPO])
    for p in range(PARTITIONS):
        if p != mine:
            elsewhere.load(p, [])
    assert elsewhere.unregistered_listings(PARTITIONS) is None
    # listing only the enterprise on file here: nothing to say
    fold = _fold(rules, [E])
    fold.load(others, [])
    fold.apply(others, 0, event_value(registered()), None, BatchOutput())
    assert fold.unregistered_listings(PARTITIONS) is None
