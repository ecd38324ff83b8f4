"""A worker restarted with another policy file (or holiday calendar) under a running log.

A review found the worker restoring snapshots folded under the old policy and folding what followed under
the new one: 25 of 32 credit files equal to neither policy's replay, and nothing said so.  The worker cannot
fold the log again by itself (the events a snapshot covers are gone from the changelog; `qrisk rebuild
--kafka` refolds, with every worker and sink stopped), so each such file is marked, counted
(``qrisk_worker_policy_mismatch_snapshots``), warned about naming the command, and stays marked through
later snapshots and restarts.  The real ``Fold``, as `qrisk worker` runs it, without a broker."""
from __future__ import annotations

import json
import logging

import orjson

from processors.step import Rules, replay
from schemas.policy import Policy


def _table(writes, table=None):
    table = {} if table is None else table
    for k, v in writes:
        if v is None:
            table.pop(k, None)
        else:
            table[k] = v
    return table


def _setup(rules):
    from qrisk.demo import CountyGenerator
    from qrisk.kafka_log import event_value

    doc = rules.policy.model_dump(mode="json")
    doc["sampling_turnaround"]["enabled"] = False
    doc["complaint_deadlines"]["enabled"] = False
    other = Rules(catalogue=rules.catalogue, policy=Policy.model_validate(doc), calendar=rules.calendar)
    events = [e for e in CountyGenerator(seed=7, daily_ticks=False).generate() if e.event_type != "clock.tick"]
    raws = [event_value(e.model_copy(update={"received_at": e.occurred_at})) for e in events]
    return other, events, raws


def _fold(rules, raws, start=0, table=None, policy_name="FILE"):
    from qrisk.worker import BatchOutput, Fold

    fold = Fold(rules, "log", snapshot_every=10)
    fold.policy_name = policy_name
    if table is not None:
        loaded = BatchOutput()
        fold.load(0, table.items(), loaded)
        _table(loaded.writes, table)
    out = BatchOutput()
    for off, raw in enumerate(raws, start):
        fold.apply(0, off, raw, 1_770_000_000_000, out)
    return fold, _table(out.writes, {} if table is None else table)


def test_files_restored_under_another_policy_are_marked_counted_and_said(rules, caplog) -> None:
    from qrisk.pipeline import policy_digest
    from qrisk.worker import snapshot_key, worker_metrics
    from tests.test_kafka_e2e import county_view

    new, events, raws = _setup(rules)
    half = len(raws) // 2
    _, table = _fold(rules, raws[:half])
    some = next(k for k in table if k.startswith("S|"))
    head = orjson.loads(table[some].partition(b"\n")[0])
    assert head["policy"] == policy_digest(rules) and head["catalogue"] == rules.catalogue.digest
    with caplog.at_level(logging.WARNING, logger="qrisk.worker"):
        again, table = _fold(new, raws[half:], half, table, policy_name="/etc/qrisk/policy-2026.yaml")

    def view(f):
        return county_view(json.loads(json.dumps(f.view(), ensure_ascii=False)))

    old_state, _ = replay(events, rules)
    new_state, _ = replay(events, new)
    neither = {e for e in old_state.files if view(again.files[e].file) not in (view(old_state.files[e]), view(new_state.files[e]))}
    marked = {e for e, fs in again.files.items() if fs.policy is not None}
    assert neither and marked == neither  # every mixed file is marked, and only those
    assert all(view(again.files[e].file) == view(new_state.files[e]) for e in set(again.files) - marked)  # (no snapshot: refolded)
    assert again.policy_mismatch() == len(neither)
    said = [r.getMessage() for r in caplog.records if "another policy" in r.getMessage()]
    assert len(said) == 1 and f"{len(neither)} credit files" in said[0]
    assert "qrisk rebuild --kafka --policy /etc/qrisk/policy-2026.yaml" in said[0] and "重新折叠日志" in said[0]

    class Monitor:
        tp_end_offsets: dict = {}
        tp_committed_offsets: dict = {}

    stats = dict.fromkeys(("applied", "duplicates", "conflicts", "dead_letters", "normalised", "batches"), 0)
    assert f"qrisk_worker_policy_mismatch_snapshots {len(neither)}\n".encode() in worker_metrics(
        stats, Monitor(), policy_mismatch=again.policy_mismatch())
    # snapshots written since say both policies: a restart under the new one does not take a mixed file for its own
    eid = sorted(neither)[0]
    written = orjson.loads(table[snapshot_key(0, eid)].partition(b"\n")[0])
    assert written["policy"] == f"{policy_digest(rules)}+{policy_digest(new)}"
    third, _ = _fold(new, [], table=dict(table))
    assert third.policy_mismatch() == len(neither)
    # and nor does going back to the old policy: part of the file was folded under the new one
    back, _ = _fold(rules, [], table=dict(table))
    assert back.policy_mismatch() >= len(neither)


def test_the_same_policy_marks_nothing_and_a_calendar_change_counts(rules) -> None:
    from qrisk.pipeline import policy_digest

    _, events, raws = _setup(rules)
    _, table = _fold(rules, raws[:200])
    same, _ = _fold(rules, raws[200:300], 200, dict(table))
    assert same.policy_mismatch() == 0
    # a snapshot of before snapshots named their policy: not known, so not said
    bare = {}
    for k, v in table.items():
        if k.startswith("S|"):
            head, _, body = v.partition(b"\n")
            doc = orjson.loads(head)
            del doc["policy"], doc["catalogue"]
            v = orjson.dumps(doc) + b"\n" + body
        bare[k] = v
    assert _fold(rules, [], table=bare)[0].policy_mismatch() == 0
    # the holiday calendar is part of the policy's digest (a year added moves the same time limits): another
    # data file (its sha256) is another policy
    moved = Rules(catalogue=rules.catalogue, policy=rules.policy, calendar=rules.calendar.model_copy(update={"digest": "0" * 64}))
    assert policy_digest(moved) != policy_digest(rules)
    assert _fold(moved, [], table=dict(table))[0].policy_mismatch() == _fold(rules, [], table=dict(table))[0].policy_mismatch() + \
        sum(k.startswith("S|") for k in table)
    # and so is the catalogue, named beside it
    other_catalogue = Rules(catalogue=rules.catalogue.model_copy(update={"digest": "1" * 64}), policy=rules.policy, calendar=rules.calendar)
    assert _fold(other_catalogue, [], table=dict(table))[0].policy_mismatch() == sum(k.startswith("S|") for k in table)


def test_folded_under_keeps_every_policy_a_file_saw() -> None:
    from qrisk.worker import _folded_under

    assert _folded_under(None, "b") is None and _folded_under("b", "b") is None
    assert _folded_under("a", "b") == "a+b"
    assert _folded_under("a+b", "b") == "a+b"
    assert _folded_under("b+a", "b") == "a+b"


def test_broker_contact_says_a_silent_broker_only_with_partitions_held() -> None:
    from qrisk.worker import BROKER_SILENT_AFTER_S, BrokerContact

    contact = BrokerContact(now=1000.0)
    assert contact.problem(None, True, now=1000.0 + BROKER_SILENT_AFTER_S) is None
    silent = contact.problem(None, True, now=1000.0 + BROKER_SILENT_AFTER_S + 5)
    assert silent is not None and "Kafka: no fetch/ack for 15 s" in silent and "秒未收到" in silent
    assert contact.problem(None, False, now=2000.0) is None  # nothing to read
    assert contact.problem(1990.0, True, now=2000.0) is None  # a fetch answered 10 s ago
    contact.acked(now=1999.0)
    assert contact.problem(None, True, now=2000.0) is None
