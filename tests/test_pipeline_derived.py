"""Derived tables of the embedded pipeline: the rows the fold describes, once each, and the same
rows again after the derived tables are lost, half written, or written twice.

sampling_items reach the table through ``sampling_items_in`` (one row of arrays per sample,
unfolded by a materialised view); the reference here is a plain row-per-value builder
(``tests.rows.reference_sample_rows``), on both backends.
"""
from __future__ import annotations

import datetime as dt
import time
import json

import pytest
from services import clickhouse_url, store  # noqa: F401 - fixtures

from qrisk.demo import CountyGenerator
from qrisk.pipeline import Pipeline
from tests.rows import reference_sample_rows
from qrisk.store import ChdbStore, migrate

ORDER = {
    "sampling_items": "enterprise_id, item_code, sampled_on, event_id, value_index",
    "judgements": "enterprise_id, sampled_on, event_id",
    "effects": "seq, idx",
}


@pytest.fixture(scope="module")
def events():
    # two counties: registrations, samples of both categories, pending samples judged on registration
    return [*CountyGenerator(seed=11, months=6, county="A-").generate(), *CountyGenerator(seed=12, months=6, county="B-").generate()]


def fold_into(store, rules, events, batch: int = 300) -> Pipeline:
    pipeline = Pipeline(store, rules, snapshot_every=dt.timedelta(days=1))
    pipeline.recover()  # (as every start does: on an empty store it records what derives the tables)
    for i in range(0, len(events), batch):
        pipeline.submit(events[i:i + batch])
    pipeline.write_snapshots()
    return pipeline


def dump(store) -> dict[str, list[dict]]:
    out = {table: store.query(f"SELECT * FROM {table} FINAL ORDER BY {order}") for table, order in ORDER.items()}
    out["credit_files"] = store.query(
        "SELECT enterprise_id, argMax(body, seq) AS body FROM credit_files GROUP BY enterprise_id ORDER BY enterprise_id")
    return out


def as_stored(row: dict) -> dict:
    out = {}
    for key, value in row.items():
        if isinstance(value, dt.datetime):
            value = value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        elif isinstance(value, dt.date):
            value = value.isoformat()
        out[key] = value
    return out


def test_sampling_items_and_judgements_are_the_rows_the_fold_describes(store, rules, events):
    pipeline = fold_into(store, rules, events)
    items, judgements = [], []
    for file in pipeline.state.files.values():
        for record in file.samples:
            if record.judgement is not None:
                rows, judgement = reference_sample_rows(file, record.event_id)
                items += [as_stored(r) for r in rows]
                judgements.append(as_stored(judgement))
    key = lambda r: (r["enterprise_id"], r["item_code"], r["sampled_on"], r["event_id"], r["value_index"])  # noqa: E731
    got = dump(store)
    assert len(items) > 1000 and any(r["not_detected"] for r in items) and any(r["value_index"] > 0 for r in items)
    assert got["sampling_items"] == sorted(items, key=key)
    assert got["judgements"] == sorted(judgements, key=lambda r: (r["enterprise_id"], r["sampled_on"], r["event_id"]))
    # written once, nothing for FINAL to collapse — but the judgement of a report that a re-test or a correction
    # in a later batch replaced: written again, with what replaced it
    for table in ("sampling_items", "effects"):
        assert store.query(f"SELECT count() AS n FROM {table}")[0]["n"] == len(got[table])
    replaced = {r.event_id for f in pipeline.state.files.values() for r in f.samples if r.superseded_by is not None}
    twice = {r["event_id"] for r in store.query(
        "SELECT event_id, count() AS n FROM judgements GROUP BY enterprise_id, sampled_on, event_id HAVING n > 1")}
    assert twice <= replaced
    assert store.query("SELECT count() AS n FROM judgements")[0]["n"] in range(len(got["judgements"]), len(got["judgements"]) + len(twice) + 1)


def test_lost_half_written_and_twice_written_derived_rows_are_rebuilt_the_same(tmp_path, rules, events):
    # chdb admits one data directory per process: each store is closed before the next opens
    first = ChdbStore(tmp_path / "first")
    pipeline = fold_into(first, rules, events)
    expected = dump(first)
    last = pipeline.seq
    assert last == len(events) and all(expected.values())
    saved = {table: first.query(f"SELECT * FROM {table}") for table in ("event_log", "sampling_items", "judgements", "effects", "derivations")}
    views = {k: f.view() for k, f in pipeline.state.files.items()}
    first.close()

    # lost: only the log survived (and, with no record of what derived the tables, they are rebuilt)
    lost = ChdbStore(tmp_path / "lost")
    migrate(lost)
    lost.insert("event_log", saved["event_log"])
    again = Pipeline(lost, rules)
    assert again.recover() == last
    assert dump(lost) == expected
    assert again.derived_seq == last
    lost.close()

    # half written: the rows of every event are there, the checkpoint says only the first half
    # (a crash between the rows and the checkpoint): the second half is written again and collapses
    # (this code derived them: no rebuild)
    half = ChdbStore(tmp_path / "half")
    migrate(half)
    for table, rows in saved.items():
        half.insert(table, rows)
    half.insert("checkpoints", [{"name": "derived", "seq": last // 2}])
    again = Pipeline(half, rules)
    again.recover()
    assert dump(half) == expected
    assert half.query("SELECT count() AS n FROM effects")[0]["n"] > len(expected["effects"])  # written twice, one fact
    # and the state equals the first run's, file by file
    assert {k: f.view() for k, f in again.state.files.items()} == views
    half.close()


def test_a_background_sink_writes_every_row_once(tmp_path, rules, events):
    reference = ChdbStore(tmp_path / "reference")
    fold_into(reference, rules, events)
    expected = dump(reference)
    reference.close()
    store = ChdbStore(tmp_path / "sink")
    pipeline = Pipeline(store, rules, snapshot_every=dt.timedelta(days=1))
    pipeline.start_background_sink()
    for i in range(0, len(events), 50):
        pipeline.submit(events[i:i + 50])
    assert pipeline.wait_derived(60)
    pipeline.write_snapshots()
    assert pipeline.derived_seq == pipeline.seq == len(events)
    got = dump(store)
    assert got == expected
    for table in ORDER:
        assert store.query(f"SELECT count() AS n FROM {table}")[0]["n"] == len(got[table])
    assert json.loads(got["credit_files"][0]["body"])
    pipeline.close()


def test_a_backlog_after_an_outage_goes_in_bounded_writes_oldest_first(tmp_path, rules, events, monkeypatch, capsys):
    """An operator's review (a full disk): every queued batch went into one insert, which grew with the outage
    until the space it reserved was more than was freed.  The backlog goes in writes of at most
    ``DERIVED_WRITE_BATCHES`` batches, in order, and every row arrives once."""
    import qrisk.pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "DERIVED_WRITE_BATCHES", 4)
    reference = ChdbStore(tmp_path / "reference")
    fold_into(reference, rules, events)
    expected = dump(reference)
    reference.close()
    store = ChdbStore(tmp_path / "sink")
    pipeline = Pipeline(store, rules, snapshot_every=dt.timedelta(days=1))
    real = pipeline._store_derived
    full, writes = [True], []

    def store_derived(batches):
        if full[0]:
            raise OSError(28, "No space left on device")
        writes.append([b.last_seq for b in batches])
        real(batches)

    pipeline._store_derived = store_derived
    pipeline.start_background_sink()
    try:
        for i in range(0, len(events), 50):
            pipeline.submit(events[i:i + 50])
        # (the sink thread takes the batches as it gets the CPU: on a busy machine a second was not always enough)
        deadline = time.monotonic() + 60
        while pipeline._sink.behind_seq != len(events) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pipeline.wait_derived(0.2) and pipeline._sink.behind_seq == len(events)
        full[0] = False
        assert pipeline.wait_derived(120)
        pipeline.write_snapshots()
        assert max(len(w) for w in writes) <= 4 and len(writes) >= len(range(0, len(events), 50)) // 4
        seqs = [seq for w in writes for seq in w]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))  # oldest first, each batch once
        assert pipeline.derived_seq == pipeline.seq == len(events)
        assert dump(store) == expected
        assert "derived rows written again" in capsys.readouterr().err
    finally:
        pipeline.close()  # (left open, chdb stays on this directory and every later test of the process fails)


# ---------------------------------------------------------------- re-test (复检)


def _retest_pair():
    from tests.test_fold import _sample
    from schemas.upcast import parse_event
    from tests.test_fold import golden

    reg = parse_event(golden("enterprise.registered"))
    failed = _sample("2026-03-10T09:00:00+08:00", False, False)
    passing_retest = _sample("2026-03-25T09:00:00+08:00", True, True)
    return reg, failed, passing_retest


@pytest.mark.parametrize("order", ["original first", "retest first"])
def test_a_retested_sample_counts_once_in_the_judgements_table(store, rules, order):
    """The county pass rate of the distributed runtime is a query over judgements: an original
    overturned by its re-test must leave it, whichever of the two arrived first."""
    from qrisk.store import COUNTY_MONTHLY_SQL

    reg, original, retest = _retest_pair()
    pipeline = Pipeline(store, rules, snapshot_every=dt.timedelta(days=1))
    pipeline.submit([reg])
    for event in ([original, retest] if order == "original first" else [retest, original]):
        pipeline.submit([event])  # one batch each: the original's row is written before the re-test is known
    rows = {r["event_id"]: r for r in store.query("SELECT event_id, verdict, superseded_by FROM judgements FINAL")}
    assert rows == {
        str(original.event_id): {"event_id": str(original.event_id), "verdict": "fail", "superseded_by": str(retest.event_id)},
        str(retest.event_id): {"event_id": str(retest.event_id), "verdict": "pass", "superseded_by": ""},
    }
    months = store.query(COUNTY_MONTHLY_SQL, {"since": dt.date(2026, 1, 1), "until": dt.date(2027, 1, 1)})
    assert [(m["samples"], m["failed"]) for m in months] == [(1, 0)]


def test_a_corrected_report_counts_once_in_the_judgements_table(store, rules):
    """A lab's correction (same sample_no, a new event id) replaces its report in the county pass rate too."""
    from qrisk.store import COUNTY_MONTHLY_SQL
    from schemas.upcast import parse_event
    from tests.test_fold import _sample, golden

    reg = parse_event(golden("enterprise.registered"))
    report = _sample("2026-03-10T09:00:00+08:00", False, False, sample_no="DC-CORR-1")
    correction = _sample("2026-03-11T09:00:00+08:00", False, True, sample_no="DC-CORR-1")
    pipeline = Pipeline(store, rules, snapshot_every=dt.timedelta(days=1))
    pipeline.submit([reg])
    pipeline.submit([report])
    pipeline.submit([correction])  # another batch: the report's row is written before its correction is known
    rows = {r["event_id"]: (r["verdict"], r["superseded_by"]) for r in store.query("SELECT event_id, verdict, superseded_by FROM judgements FINAL")}
    assert rows == {str(report.event_id): ("fail", str(correction.event_id)), str(correction.event_id): ("pass", "")}
    months = store.query(COUNTY_MONTHLY_SQL, {"since": dt.date(2026, 1, 1), "until": dt.date(2027, 1, 1)})
    assert [(m["samples"], m["failed"]) for m in months] == [(1, 0)]


@pytest.mark.parametrize("order", ["original first", "retest first"])
def test_a_retest_not_admitted_leaves_the_original_counting(store, rules, order):
    from qrisk.store import COUNTY_MONTHLY_SQL
    from schemas.upcast import parse_event
    from tests.test_fold import _sample, golden

    reg = parse_event(golden("enterprise.registered"))
    original = _sample("2026-03-10T09:00:00+08:00", False, False, microbial=True)  # 不予复检
    retest = _sample("2026-03-25T09:00:00+08:00", True, True)
    pipeline = Pipeline(store, rules, snapshot_every=dt.timedelta(days=1))
    pipeline.submit([reg])
    for event in ([original, retest] if order == "original first" else [retest, original]):
        pipeline.submit([event])
    rows = {r["event_id"]: (r["verdict"], r["superseded_by"]) for r in store.query("SELECT event_id, verdict, superseded_by FROM judgements FINAL")}
    assert rows == {str(original.event_id): ("fail", ""), str(retest.event_id): ("pass", str(original.event_id))}
    months = store.query(COUNTY_MONTHLY_SQL, {"since": dt.date(2026, 1, 1), "until": dt.date(2027, 1, 1)})
    assert [(m["samples"], m["failed"]) for m in months] == [(1, 1)]


def _retest_dated_otherwise():
    """A failure (sampled 2026-01-28) whose re-test prints another sampling date (2026-02-03), the re-test's
    correction (2026-02-04), and the bureau's retraction of the sample number (a reviewer's W09)."""
    from tests.test_corrections import sample
    from tests.test_retraction import retraction

    kw = dict(passes=False, sample_no="DC26330100000002", production_date="2026-01-20")
    original = sample("2026-02-14T11:00:00+08:00", sampled_on="2026-01-28", **kw)
    retest = sample("2026-02-17T11:00:00+08:00", retest=True, sampled_on="2026-02-03", bromate=0.018, **kw)
    corrected = sample("2026-02-17T12:00:00+08:00", retest=True, sampled_on="2026-02-04", bromate=0.019, **kw)
    return original, retest, corrected, retraction("DC26330100000002", at="2026-02-18T09:30:00+08:00")


DERIVED_ROWS = {"judgements": "SELECT * FROM judgements FINAL ORDER BY enterprise_id, sampled_on, event_id",
                "sampling_items": "SELECT * FROM sampling_items FINAL ORDER BY enterprise_id, item_code, sampled_on, event_id, value_index"}


@pytest.mark.parametrize("order", ["original, retest, retraction", "retest, original, retraction", "retest, original",
                                   "retest, original, correction", "original, retest, correction, retraction",
                                   "retraction, original, retest"])
def test_a_report_keeps_the_date_it_was_first_filed_under_live_and_rebuilt(store, rules, order):
    """A retracted W09 sample still counted: its re-test's row was written under its original's date while the
    original stood, and again, superseded, under its own once the retraction hid the original — two rows, the live
    one counting.  Folded live event by event, then rebuilt from the same log (batches derived at their end, where
    the state is already past each event), the derived tables are the same rows, one per report."""
    from qrisk.store import COUNTY_MONTHLY_SQL

    original, retest, corrected, back = _retest_dated_otherwise()
    named = {"original": original, "retest": retest, "correction": corrected, "retraction": back}
    events = [REG_EVENT(), *(named[n] for n in order.split(", "))]
    pipeline = Pipeline(store, rules, snapshot_every=dt.timedelta(days=1))
    pipeline.recover()
    for event in events:
        pipeline.submit([event])
    live = {table: store.query(sql) for table, sql in DERIVED_ROWS.items()}
    files = pipeline.state.files
    rebuilt = Pipeline(store, rules)  # (qrisk rebuild: the tables emptied, the log folded and derived again in batches)
    rebuilt.recover(rebuild=True)
    assert {table: store.query(sql) for table, sql in DERIVED_ROWS.items()} == live
    # one judgements row per report: each keeps one date (a re-test its original's, unless it came first)
    rows = live["judgements"]
    assert sorted(r["event_id"] for r in rows) == sorted(s.event_id for f in files.values() for s in f.samples if s.judgement is not None)
    dates = {r["event_id"]: r["sampled_on"] for r in rows}
    came_first = order.index("retest") < order.index("original")
    assert dates[str(retest.event_id)] == ("2026-02-03" if came_first else "2026-01-28")
    assert {(r["event_id"], r["sampled_on"]) for r in live["sampling_items"]} == set(dates.items())
    counting = [r for r in rows if r["superseded_by"] == ""]
    months = store.query(COUNTY_MONTHLY_SQL, {"since": dt.date(2026, 1, 1), "until": dt.date(2027, 1, 1)})
    if "retraction" in order:
        assert counting == [] and [(m["samples"], m["failed"]) for m in months] == []
    else:
        assert len(counting) == 1 and [(m["samples"], m["failed"]) for m in months] == [(1, 1)]
    rebuilt.close()


def test_a_kafka_worker_files_a_report_under_one_date_as_the_embedded_pipeline(store, rules):
    """The worker's effect messages carry the same judgements rows (the sink writes them): a retracted re-test's row
    again under its original's date, not its own."""
    import json

    from qrisk.kafka_log import event_value
    from qrisk.pipeline import JUDGEMENT_COLUMNS
    from qrisk.worker import BatchOutput, Fold

    original, retest, _, back = _retest_dated_otherwise()
    now = dt.datetime(2026, 2, 18, 8, 0, tzinfo=dt.timezone.utc)
    events = [e.model_copy(update={"received_at": now}) for e in (REG_EVENT(), original, retest, back)]
    fold, out = Fold(rules, "log"), BatchOutput()
    for offset, e in enumerate(events):
        fold.apply(0, offset, event_value(e), int(now.timestamp() * 1000), out)
    at, day = JUDGEMENT_COLUMNS.index("superseded_by"), JUDGEMENT_COLUMNS.index("sampled_on")
    written = [(row[0], str(row[day])[:10], row[at]) for _, v in out.effects for row in json.loads(v).get("judgement_rows", {}).get("rows", [])]
    assert {(eid, d) for eid, d, _ in written} == {(str(original.event_id), "2026-01-28"), (str(retest.event_id), "2026-01-28")}
    pipeline = Pipeline(store, rules, snapshot_every=dt.timedelta(days=1))
    for event in events:
        pipeline.submit([event])
    embedded = store.query("SELECT event_id, toString(sampled_on) AS d, superseded_by FROM judgements FINAL ORDER BY event_id")
    last = {eid: (d, by) for eid, d, by in written}  # (the sink keeps a key's last row)
    assert [(r["event_id"], r["d"], r["superseded_by"]) for r in embedded] == sorted((eid, *v) for eid, v in last.items())
    pipeline.close()


def REG_EVENT():  # noqa: N802 - the golden registration, as tests.test_corrections folds it
    from tests.test_corrections import REG

    return REG


def test_a_batch_leaves_no_cyclic_garbage(tmp_path, rules, events):
    """The embedded runtime freezes what each commit leaves alive (qrisk.committer): safe only while
    folding, deriving and writing a batch leave no reference cycles for the collector to find."""
    import gc

    store = ChdbStore(tmp_path / "chdb")
    try:
        pipeline = Pipeline(store, rules, snapshot_every=dt.timedelta(seconds=0))
        gc.collect()
        gc.disable()
        try:
            found = []
            for i in range(0, len(events), 100):
                pipeline.submit(events[i:i + 100])
                pipeline.write_snapshots()
                found.append(gc.collect())
        finally:
            gc.enable()
        assert len(found) > 3 and found == [0] * len(found)
    finally:
        store.close()


def test_the_snapshot_interval_is_a_setting(tmp_path, rules, monkeypatch):
    from qrisk.runtime import open_embedded

    monkeypatch.setenv("QRISK_SNAPSHOT_SECONDS", "7.5")
    pipeline = open_embedded(tmp_path / "data", rules)
    try:
        assert pipeline.snapshot_every == dt.timedelta(seconds=7.5)
    finally:
        pipeline.close()


def test_alert_tables_hold_every_step_and_notification_and_each_alert_as_folded(store, rules):  # noqa: F811
    """One INSERT per batch into alert_steps_in, fanned out by the views of migration 041: the
    alerts table's newest row of each alert is its view, alert_events has every step, the outbox
    every notification — and writing the same batches again changes nothing."""
    from processors.step import Rules
    from schemas.policy import Policy
    from tests.test_alerts import RECEIVERS

    # (the demo's year is folded now: with history counted as news, its notifications go out)
    pol = Policy.model_validate({"alerts": {"receivers": RECEIVERS, "routes": [{"receivers": ["desk"]}], "escalate_to": ["chief"],
                                            "live_within_hours": 10**6, "closed_kept_days": 3650}})  # (none pruned: the table keeps them all)
    r = Rules(catalogue=rules.catalogue, policy=pol)
    events = CountyGenerator(seed=11).generate()
    # each batch received as its last event happened, as a lab system sending as it goes (an alert's time to
    # respond runs from a live event's arrival: received all today, nothing would have escalated yet)
    received = [events[0].occurred_at]
    pipeline = Pipeline(store, r, clock=lambda: received[0], snapshot_every=dt.timedelta(days=1))
    pipeline.recover()
    stamped = []
    for i in range(0, len(events), 250):
        batch = events[i:i + 250]
        received[0] = max(e.occurred_at for e in batch)
        pipeline.submit(batch)
        stamped += [e.model_copy(update={"received_at": received[0]}) for e in batch]
    pipeline.write_snapshots()
    book = pipeline.alerts.alerts
    assert any(a.escalated for a in book.values())
    rows = store.query("SELECT alert_id, version, state, evidence FROM alerts FINAL ORDER BY alert_id")
    assert [x["alert_id"] for x in rows] == sorted(book) and len(book) > 20
    for x in rows:
        a = book[x["alert_id"]]
        assert (x["version"], x["state"]) == (a.version, a.state) and json.loads(x["evidence"]) == a.view(steps=False)
    steps = store.query("SELECT alert_id, version, action, to_state FROM alert_events FINAL ORDER BY alert_id, version")
    assert [(x["alert_id"], x["version"], x["action"], x["to_state"]) for x in steps] == [
        (aid, s.version, s.action, s.to_state) for aid in sorted(book) for s in book[aid].steps]
    from tests.test_alerts import County

    replayed = County(rules, pol)
    replayed.feed(*stamped)
    notes = {n.delivery_id: n for c in replayed.changes for n in c.notifications}
    outbox = store.query("SELECT delivery_id, receiver, reason, body FROM outbox FINAL ORDER BY delivery_id")
    assert [x["delivery_id"] for x in outbox] == sorted(notes) and notes
    assert all((x["receiver"], x["reason"], x["body"]) == (notes[x["delivery_id"]].receiver, notes[x["delivery_id"]].reason,
                                                           notes[x["delivery_id"]].to_json()) for x in outbox)
    # GET /v1/alerts filters in the database: the same alerts as filtering every view
    from qrisk.pipeline import stored_alert_views

    every = stored_alert_views(store)
    assert sorted(v["alert_id"] for v in every) == sorted(book)
    first = book[sorted(book)[0]]
    sizes = set()
    for filters in ({"states": {"open", "acknowledged", "rectifying"}}, {"states": {"verified", "closed"}}, {"states": set()},
                    {"enterprise_id": first.enterprise_id}, {"severity": first.severity, "states": {first.state}},
                    {"severity": "low"}, {"enterprise_id": first.enterprise_id, "states": {"closed"}}):
        expected = sorted(v["alert_id"] for v in every
                          if ("states" not in filters or v["state"] in filters["states"])
                          and filters.get("enterprise_id", v["enterprise_id"]) == v["enterprise_id"]
                          and filters.get("severity", v["severity"]) == v["severity"])
        assert sorted(v["alert_id"] for v in stored_alert_views(store, **filters)) == expected, filters
        sizes.add(len(expected))
    assert 0 in sizes and len(sizes) > 3  # the filters tell alerts apart
    pipeline.close()
