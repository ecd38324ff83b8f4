"""A clean shutdown leaves the fold's state at its seq (``fold_snapshots``); the next start restores it and
folds only the log after it.  What it restores equals what a replay of the whole log builds — credit
files, applied ids, the alerts book — and a snapshot another fold, catalogue or policy wrote, or one past
the derived tables' checkpoint, is not used."""
from __future__ import annotations


import io
from pathlib import Path

import pytest

from processors.step import FOLD_VERSION
from qrisk.demo import CountyGenerator
from qrisk.runtime import ReplayProgress, default_rules, open_embedded
from qrisk.starting import starting_status
from qrisk.store import ChdbStore


@pytest.fixture(scope="module")
def halves():
    # a county with its daily clock ticks and the campaign: every stage of the fold has state to keep
    # (12 months at least: a shorter demo runs no campaign)
    events = CountyGenerator(seed=5, months=12).generate()
    assert any(e.event_type.startswith("campaign.") for e in events[len(events) * 2 // 3:])
    cut = len(events) * 2 // 3
    return events[:cut], events[cut:]


def _open(data: Path):
    return open_embedded(data, default_rules(), progress=ReplayProgress("replay", terminal=False, stream=io.StringIO()))


def _fold_of(pipeline) -> tuple[bytes, str]:
    return pipeline.state.snapshot(), pipeline.alerts.model_dump_json()


def _submit(pipeline, events, batch: int = 400) -> None:
    for i in range(0, len(events), batch):
        pipeline.submit(events[i:i + batch])


def _full_replay(data: Path) -> tuple[bytes, str]:
    """The same log replayed from its first event (the snapshot removed; last thing a test does)."""
    store = ChdbStore(data)
    store.command("TRUNCATE TABLE fold_snapshots")
    store.close()
    pipeline = _open(data)
    try:
        assert pipeline.recovery["snapshot_seq"] is None
        return _fold_of(pipeline)
    finally:
        pipeline.close()


def test_a_restart_restores_the_snapshot_and_folds_only_the_log_after_it(halves, tmp_path):
    first, second = halves
    data = tmp_path / "data"
    pipeline = _open(data)
    _submit(pipeline, first)
    seq = pipeline.seq
    pipeline.close()

    pipeline = _open(data)
    try:
        assert pipeline.recovery["snapshot_seq"] == seq and pipeline.recovery["replayed"] == 0
        assert pipeline.events == len(first) and pipeline.seq == seq
        _submit(pipeline, second)
        ahead = _fold_of(pipeline)
        end = pipeline.seq
    finally:
        pipeline.close()
    # one snapshot kept, the newest
    store = ChdbStore(data)
    rows = store.query("SELECT seq, fold_version FROM fold_snapshots FINAL")
    store.close()
    assert rows == [{"seq": end, "fold_version": FOLD_VERSION}]

    pipeline = _open(data)
    try:
        assert pipeline.recovery["snapshot_seq"] == end
        restored = _fold_of(pipeline)
    finally:
        pipeline.close()
    assert restored == ahead
    assert _full_replay(data) == restored


def test_after_a_crash_the_tail_past_the_snapshot_is_folded_and_derived(halves, tmp_path):
    """kill -9 writes no snapshot: the next start restores the last clean one and folds (and derives)
    everything logged after it."""
    first, second = halves
    data = tmp_path / "data"
    pipeline = _open(data)
    _submit(pipeline, first)
    snap = pipeline.seq
    pipeline.close()
    pipeline = _open(data)
    _submit(pipeline, second)
    end = pipeline.seq
    # a crash: nothing of close() runs (no fold snapshot, no final credit files); chdb's lock goes with
    # the process (derived rows are written inline here: with the API's thread some may be behind too)
    pipeline.store.close()

    pipeline = _open(data)
    try:
        assert pipeline.recovery["snapshot_seq"] == snap and pipeline.recovery["replayed"] == end - snap
        assert pipeline.events == len(first) + len(second)
        after_crash = _fold_of(pipeline)
    finally:
        pipeline.close()
    assert _full_replay(data) == after_crash


@pytest.mark.parametrize("column, value", [("fold_version", FOLD_VERSION - 1), ("catalogue", "0" * 64), ("policy", "0" * 64)])
def test_a_snapshot_another_fold_catalogue_or_policy_wrote_is_not_used(halves, tmp_path, column, value):
    first, _ = halves
    data = tmp_path / "data"
    pipeline = _open(data)
    _submit(pipeline, first)
    pipeline.close()
    store = ChdbStore(data)
    store.command(f"ALTER TABLE fold_snapshots UPDATE {column} = %(v)s WHERE 1", {"v": value})
    store.close()
    pipeline = _open(data)
    try:
        assert pipeline.recovery["snapshot_seq"] is None and pipeline.recovery["replayed"] == len(first)
    finally:
        pipeline.close()


def test_no_snapshot_is_written_while_derived_rows_are_behind(halves, tmp_path):
    first, _ = halves
    pipeline = _open(tmp_path / "data")
    try:
        _submit(pipeline, first)
        assert pipeline.wait_derived(30)
        pipeline.derived_seq -= 1  # as when the derived rows of the last event are not written yet
        assert pipeline.write_fold_snapshot() is False
        pipeline.derived_seq += 1
        assert pipeline.write_fold_snapshot() is True
    finally:
        pipeline.close()



def test_a_running_pipeline_writes_one_every_hour_of_its_clock(halves, tmp_path):
    import datetime as dt

    from qrisk.pipeline import Pipeline

    first, second = halves
    now = [dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)]
    store = ChdbStore(tmp_path / "d")
    pipeline = Pipeline(store, default_rules(), clock=lambda: now[0])
    pipeline.recover()
    _submit(pipeline, first)
    assert store.query("SELECT count() AS n FROM fold_snapshots")[0]["n"] == 0
    now[0] += dt.timedelta(minutes=61)
    _submit(pipeline, second)
    assert store.query("SELECT seq FROM fold_snapshots FINAL") == [{"seq": pipeline.seq}]
    pipeline.close()


class _Watched(ReplayProgress):
    """A replay progress that keeps what ``/healthz`` would have said at each change of stage."""

    def __init__(self):
        super().__init__("replay", terminal=False, stream=io.StringIO())
        self.said: list[dict] = []

    def note(self, phase: str, zh: str, en: str) -> None:
        super().note(phase, zh, en)
        self.said.append(starting_status(self))


def test_while_a_snapshot_is_restored_the_start_says_so_not_0_of_0(halves, tmp_path):
    """An operator's review: /healthz read 正在重放事件日志：0/0 for the 8-10 s a large snapshot took to read."""
    first, _ = halves
    data = tmp_path / "data"
    pipeline = _open(data)
    _submit(pipeline, first)
    seq, events = pipeline.seq, pipeline.events
    pipeline.close()
    progress = _Watched()
    pipeline = open_embedded(data, default_rules(), progress=progress)
    try:
        assert pipeline.recovery["snapshot_seq"] == seq
    finally:
        pipeline.close()
    phases = [s["phase"] for s in progress.said]
    assert phases[:2] == ["snapshot", "snapshot"] and phases[-1] == "finishing"
    assert f"第 {seq:,} 号事件处的状态快照" in progress.said[1]["message"] and f"{events:,} 个事件" in progress.said[1]["message"]
    assert "0/0" not in " ".join(s["message"] for s in progress.said)
    assert progress.said[-1]["events_total"] == 0  # nothing after the snapshot to replay
    progress.start(5)  # a replay that follows says its count again
    assert starting_status(progress)["phase"] == "replay" and starting_status(progress)["events_total"] == 5
