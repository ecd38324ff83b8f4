"""The store on both backends: chdb (embedded) and a real clickhouse-server (Debian's 18.16).

Every test taking ``store`` runs once per backend with the same rows, SQL and expectations.
"""
from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import re
from collections import Counter

import pytest
from services import ch_database, clickhouse_url, drop_database, fresh_database_url, store  # noqa: F401 - fixtures

from qrisk.store import (
    COUNTY_MONTHLY_SQL,
    LOCK_TABLE,
    ChdbStore,
    ClickHouseStore,
    MigrationLockTimeout,
    RowError,
    StoreError,
    _statements,
    apply_statement,
    credit_file_report,
    is_transient,
    migrate,
    migration_files,
    open_store,
    redact,
)
from rows import history_rows, item_rows_for, sample_events

UTC = dt.timezone.utc
CST = dt.timezone(dt.timedelta(hours=8))

TABLES = {
    "schema_migrations", "event_log", "dead_letters", "sampling_items", "judgements", "effects", "credit_files",
    "checkpoints", "events", "alerts", "alert_events", "deliveries", "derivations",
}

# One row per table, in the shapes the pipeline produces (dates as objects or strings), and
# what comes back: the same dicts on both backends.
T = dt.datetime(2024, 3, 5, 1, 2, 3, tzinfo=UTC)
EXAMPLES: dict[str, tuple[dict, dict]] = {
    "event_log": (
        {"seq": 7, "event_id": "e-1", "event_type": "sampling.result", "schema_version": 2, "enterprise_id": "E1",
         "occurred_at": T, "occurred_ms": 123, "received_at": dt.datetime(2024, 3, 5, 9, 2, 4, tzinfo=CST), "received_ms": 999,
         "source_kind": "lab", "source_id": "lims", "body": '{"a": "引号\\"和\\n换行"}'},
        {"received_at": "2024-03-05 01:02:04", "occurred_at": "2024-03-05 01:02:03"},
    ),
    "dead_letters": (
        {"dead_letter_id": "d1", "received_at": T, "received_ms": 5, "channel": "http", "position": "req 1 #0",
         "raw": "not json ' \\ {x:String}", "raw_encoding": "utf-8", "reason": "invalid JSON", "errors": [{"loc": ["body"], "msg": "bad"}],
         "event_id": "7c1b2a9e-0d4f-4c55-9a3e-2f6d8b1c0e11", "raw_preview": "not json ' \\ {x:String}"},
        {"errors": '[{"loc": ["body"], "msg": "bad"}]'},
    ),
    "sampling_items": (
        item_rows_for(next(sample_events(1, 1, 1)))[-1] | {"production_date": None, "sampled_on": "2020-01-07"},
        {"sampled_on": "2020-01-07", "production_date": None, "occurred_at": "2020-01-01 09:30:00"},
    ),
    "judgements": (
        {"event_id": "e-1", "enterprise_id": "E1", "category": "pastry", "sample_no": "S1", "product": "月饼", "verdict": "fail",
         "failed_items": ["sorbic_acid", "sum_of_ratios:preservative"], "disagreements": [], "unknown": ["x"],
         "sampled_on": dt.date(2024, 3, 4), "occurred_at": "2024-03-05T01:02:03Z", "superseded_by": "e-2", "counted": "fail",
         "lab": "县食品检验检测中心", "report_working_days": 21, "report_limit": 20, "turnaround_late": 1,
         "turnaround_estimate": 1},
        {"sampled_on": "2024-03-04", "occurred_at": "2024-03-05 01:02:03"},
    ),
    "effects": (
        {"seq": 7, "idx": 0, "kind": "sampling.failed", "enterprise_id": "E1", "event_id": "e-1", "occurred_at": dt.datetime(2024, 3, 5, 1, 2, 3),
         "data": json.dumps({"x": 1})},
        {"occurred_at": "2024-03-05 01:02:03"},
    ),
    "credit_files": ({"enterprise_id": "E1", "seq": 7, "body": "{}"}, {}),
    "checkpoints": ({"name": "derived", "seq": 7}, {}),
    "derivations": (
        {"name": "derived", "ver": 1_795_731_217_495, "state": "complete", "fold_version": 13, "catalogue": "9" * 64, "policy": "1" * 64,
         "log_seq": 2183, "written_at": T, "pending": '[{"delivery_id": "d1"}]'},
        {"written_at": "2024-03-05 01:02:03"},
    ),
    "events": (
        {"event_id": "e-1", "event_type": "sampling.result", "schema_version": 2, "enterprise_id": "E1", "occurred_at": T,
         "occurred_ms": 1, "received_at": T, "received_ms": 2, "source_kind": "lab", "source_id": "lims", "seq": 7, "body": "{}"},
        {"occurred_at": "2024-03-05 01:02:03", "received_at": "2024-03-05 01:02:03"},
    ),
    "alerts": (
        {"alert_id": "a1", "enterprise_id": "E1", "kind": "sampling.failed", "severity": "high", "state": "open", "title": "抽检不合格",
         "group_key": "E1/sampling.failed", "assignee": "", "opened_at": T, "updated_at": T, "updated_ms": 0, "version": 1,
         "event_id": "e-1", "evidence": "{}", "closing_note": "", "closed_by": "", "handling_overdue": 0},
        {"opened_at": "2024-03-05 01:02:03", "updated_at": "2024-03-05 01:02:03"},
    ),
    "alert_events": (
        {"alert_id": "a1", "enterprise_id": "E1", "version": 1, "at": T, "at_ms": 7, "action": "open", "from_state": "",
         "to_state": "open", "actor": "qrisk", "note": ""},
        {"at": "2024-03-05 01:02:03"},
    ),
    "deliveries": (
        {"delivery_id": "d1", "alert_id": "a1", "enterprise_id": "E1", "receiver": "supervisor-1", "channel": "webhook",
         "attempt": 1, "status": "sent", "at": T, "at_ms": 7, "response_code": 200, "error": "", "accepted": ["li@example.gov.cn"]},
        {"at": "2024-03-05 01:02:03"},
    ),
}


def expected(table: str) -> dict:
    row, changes = EXAMPLES[table]
    out = {}
    for key, value in row.items():
        if isinstance(value, dt.datetime):
            value = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        elif isinstance(value, dt.date):
            value = value.isoformat()
        out[key] = value
    out.update(changes)
    return out


# ----------------------------------------------------------------------------- schema


def test_migrate_applies_every_file_once(store):
    tables = {r["name"] for r in store.query("SELECT name FROM system.tables WHERE database = currentDatabase()")}
    assert TABLES <= tables
    assert LOCK_TABLE not in tables  # released
    assert migrate(store) == []
    rows = store.query("SELECT version, name FROM schema_migrations")
    assert Counter(r["version"] for r in rows) == Counter(v for v, _, _ in migration_files())


def test_a_database_migrated_by_a_newer_qrisk_is_refused(store):
    newest = max(v for v, _, _ in migration_files())
    store.insert("schema_migrations", [{"version": newest + 1, "name": "from_the_future", "applied_at": dt.datetime(2030, 1, 1, tzinfo=UTC)}])
    with pytest.raises(StoreError, match=f"newer qrisk \\(migrations {newest + 1} are unknown"):
        migrate(store)


def test_credit_files_keep_only_the_newest_snapshot_per_file(store):
    """Migration 043 on a table of the old layout (a row per snapshot ever written), cut short after
    each of its statements and run again whole, as migrate() does after a crash; afterwards merges
    keep one row per enterprise, the highest seq."""
    old = [{"enterprise_id": f"E{k}", "seq": seq, "body": json.dumps({"v": seq})} for k in range(3) for seq in (5 + k, 20 + k, 9)]
    (_, _, text), = [m for m in migration_files() if m[0] == 43]
    statements = list(_statements(text))
    newest = {f"E{k}": 20 + k for k in range(3)}
    for cut in range(len(statements) + 1):
        for table in ("credit_files", "credit_files_before_043", "credit_files_latest"):
            store.command(f"DROP TABLE IF EXISTS {table}")
        store.command("CREATE TABLE credit_files (enterprise_id String, seq UInt64, body String) "
                      "ENGINE = ReplacingMergeTree ORDER BY (enterprise_id, seq)")
        store.insert("credit_files", old)
        for stmt in statements[:cut]:  # the run a crash cut short …
            apply_statement(store, stmt)
        for stmt in statements:  # … and the next start's
            apply_statement(store, stmt)
        rows = store.query("SELECT enterprise_id, seq, body FROM credit_files FINAL ORDER BY enterprise_id")
        assert [(r["enterprise_id"], r["seq"], json.loads(r["body"])["v"]) for r in rows] == [(e, s, s) for e, s in newest.items()], cut
        tables = {r["name"] for r in store.query("SELECT name FROM system.tables WHERE database = currentDatabase()")}
        assert not tables & {"credit_files_before_043", "credit_files_latest"}, (cut, tables)
    # later snapshots, one of them older than what is kept (a late writer): a merge keeps the highest
    store.insert("credit_files", [{"enterprise_id": "E0", "seq": 30, "body": "{}"}, {"enterprise_id": "E1", "seq": 2, "body": "{}"}])
    store.command("OPTIMIZE TABLE credit_files FINAL")
    rows = store.query("SELECT enterprise_id, seq FROM credit_files ORDER BY enterprise_id")
    assert [(r["enterprise_id"], r["seq"]) for r in rows] == [("E0", 30), ("E1", 21), ("E2", 22)]


@pytest.mark.parametrize("table", sorted(EXAMPLES))
def test_every_table_takes_and_returns_the_same_rows(store, table):
    row, _ = EXAMPLES[table]
    store.insert(table, [row])
    store.insert(table, [row])  # redelivered: collapses by key
    got = store.query(f"SELECT * FROM {table} FINAL")
    assert got == [expected(table)]


def test_each_table_has_a_dedup_engine(store):
    engines = {r["name"]: r["engine"] for r in store.query(
        "SELECT name, engine FROM system.tables WHERE database = currentDatabase()")}
    for table in TABLES:
        assert engines[table].startswith("ReplacingMergeTree"), (table, engines[table])


def test_sql_avoids_what_server_18_16_lacks():
    for _, name, text in migration_files():
        sql = "\n".join(_statements(text))  # comments may name them
        for banned in ("LowCardinality", "DateTime64", "JSONExtract", "OVER (", "{"):
            assert banned not in sql, (name, banned)


# ----------------------------------------------------------------------------- rows


def test_datetimes_are_utc_whatever_they_came_as(store):
    moments = [
        dt.datetime(2024, 1, 1, 8, 0, 0, tzinfo=CST),  # aware, +08:00
        dt.datetime(2024, 1, 1, 0, 0, 0),  # naive: taken as UTC
        "2024-01-01T00:00:00Z",
        "2024-01-01T08:00:00+08:00",
        "2024-01-01 00:00:00",
        1704067200,  # epoch seconds
    ]
    store.insert("checkpoints", [{"name": "x", "seq": 1}])
    for i, moment in enumerate(moments):
        store.insert("effects", [{"seq": i, "idx": 0, "kind": "k", "enterprise_id": "E", "event_id": "e", "occurred_at": moment, "data": ""}])
    got = store.query("SELECT seq, occurred_at FROM effects FINAL ORDER BY seq")
    assert [r["occurred_at"] for r in got] == ["2024-01-01 00:00:00"] * len(moments)
    params = {"t": dt.datetime(2024, 1, 1, 8, 0, 0, tzinfo=CST), "naive": dt.datetime(2024, 1, 1)}
    assert store.query("SELECT count() AS n FROM effects WHERE occurred_at = %(t)s AND occurred_at = %(naive)s", params) == [{"n": len(moments)}]


def test_missing_columns_take_defaults(store):
    store.insert("deliveries", [{"delivery_id": "d", "alert_id": "a", "attempt": 2}])
    got = store.query("SELECT * FROM deliveries FINAL")
    assert got == [{"delivery_id": "d", "alert_id": "a", "enterprise_id": "", "receiver": "", "channel": "", "attempt": 2,
                    "status": "", "at": "1970-01-01 00:00:00", "at_ms": 0, "response_code": 0, "error": "", "accepted": []}]


@pytest.mark.parametrize("bad", [
    {"dead_letter_id": "d", "no_such_column": 1},
    {"dead_letter_id": "d", "received_ms": "many"},
    {"dead_letter_id": "d", "received_at": "yesterday"},
    {"dead_letter_id": None},
    {"dead_letter_id": "d", "raw": object()},
    {"dead_letter_id": "d", "received_ms": 70_000},  # UInt16
    {"dead_letter_id": "d", "received_ms": -1},
])
def test_a_row_that_does_not_fit_is_refused_whole(store, bad):
    good = {"dead_letter_id": "ok", "reason": "r"}
    with pytest.raises(RowError) as info:
        store.insert("dead_letters", [good, bad])
    assert not is_transient(info.value)
    assert store.query("SELECT count() AS n FROM dead_letters") == [{"n": 0}]


def test_unknown_table_is_a_permanent_error(store):
    with pytest.raises(Exception) as info:
        store.insert("no_such_table", [{"a": 1}])
    assert not is_transient(info.value)


# ----------------------------------------------------------------------------- parameters


HOSTILE = [
    "O'Brien", "back\\slash", "semi; DROP TABLE judgements; --", "{x:String}", "%(other)s", "100%", "new\nline\ttab",
    "中文 引号“”", "'; SELECT 1 --", "\\'", "",
]


def test_parameters_are_values_never_sql(store):
    rows = [{"event_id": f"e{i}", "enterprise_id": text, "sampled_on": "2024-01-01", "occurred_at": T} for i, text in enumerate(HOSTILE)]
    store.insert("judgements", rows)
    for text in HOSTILE:
        got = store.query("SELECT enterprise_id FROM judgements FINAL WHERE enterprise_id = %(e)s", {"e": text})
        assert got == [{"enterprise_id": text}], text
    assert store.query("SELECT count() AS n FROM judgements FINAL WHERE has(%(ids)s, enterprise_id)", {"ids": HOSTILE}) == [{"n": len(HOSTILE)}]
    assert store.query("SELECT count() AS n FROM judgements WHERE enterprise_id LIKE '100%%' AND sampled_on = %(d)s",
                       {"d": dt.date(2024, 1, 1)}) == [{"n": 1}]
    assert store.query("SELECT %(i)s + 1 AS i, %(f)s AS f, %(s)s AS s", {"i": 41, "f": 0.5, "s": "x"}) == [{"i": 42, "f": 0.5, "s": "x"}]
    with pytest.raises(KeyError):
        store.query("SELECT %(missing)s AS m", {"other": 1})


# ----------------------------------------------------------------------------- dedup and reads


def test_redelivered_rows_do_not_double_count(store):
    data = history_rows(enterprises=3, years=1, per_month=2)
    items = data["sampling_items"]
    store.command("SYSTEM STOP MERGES sampling_items")  # keep the duplicates visible to the raw count
    store.insert("sampling_items", items)
    store.insert("sampling_items", items[: len(items) // 2])  # a retried half batch
    store.insert("sampling_items", items[len(items) // 3:])  # and an overlapping one
    raw = store.query("SELECT count() AS n FROM sampling_items")[0]["n"]
    assert raw > len(items)
    assert store.query("SELECT count() AS n FROM sampling_items FINAL") == [{"n": len(items)}]
    keys = "enterprise_id, item_code, sampled_on, event_id, value_index"
    assert store.query(f"SELECT uniqExact({keys}) AS n FROM sampling_items") == [{"n": len(items)}]
    failed = sum(1 for r in items if r["verdict"] == "fail")
    assert store.query("SELECT countIf(verdict = 'fail') AS n FROM sampling_items FINAL") == [{"n": failed}]


def test_credit_file_report_and_county_months(store):
    data = history_rows(enterprises=4, years=2, per_month=2)
    for table, rows in data.items():
        store.insert(table, rows)
        store.insert(table, rows[:7])  # some redelivered
    report = credit_file_report(store, "E0001")
    mine = [j for j in data["judgements"] if j["enterprise_id"] == "E0001"]
    assert [s["event_id"] for s in report["samples"]] == [j["event_id"] for j in sorted(mine, key=lambda j: (j["sampled_on"], j["event_id"]))]
    snaps = [c for c in data["credit_files"] if c["enterprise_id"] == "E0001"]
    assert report["snapshot_seq"] == max(c["seq"] for c in snaps)
    assert report["file"]["seq"] == report["snapshot_seq"]
    items = Counter(r["item_code"] for r in data["sampling_items"] if r["enterprise_id"] == "E0001")
    assert {i["item_code"]: i["results"] for i in report["items"]} == dict(items)
    assert "grades" not in report and "signals" not in report  # in the snapshot's body: risk history, the charts' signals
    assert len(report["alerts"]) == sum(1 for a in data["alerts"] if a["enterprise_id"] == "E0001")
    assert credit_file_report(store, "nobody") is None

    months = store.query(COUNTY_MONTHLY_SQL, {"since": dt.date(2020, 1, 1), "until": dt.date(2021, 1, 1)})
    assert len(months) == 12
    assert sum(m["samples"] for m in months) == sum(1 for j in data["judgements"] if j["sampled_on"].year == 2020)
    assert sum(m["failed"] for m in months) == sum(1 for j in data["judgements"] if j["sampled_on"].year == 2020 and j["verdict"] == "fail")
    assert all(m["enterprises"] == 4 and re.fullmatch(r"2020-\d\d-01", m["month"]) for m in months)


def test_alerts_keep_the_newest_version(store):
    row, _ = EXAMPLES["alerts"]
    store.insert("alerts", [row | {"version": 3, "state": "rectifying"}])
    store.insert("alerts", [row | {"version": 1, "state": "open"}])  # an older state arriving late
    store.insert("alerts", [row | {"version": 2, "state": "acknowledged"}])
    assert store.query("SELECT state FROM alerts FINAL") == [{"state": "rectifying"}]
    assert store.query("SELECT argMax(state, version) AS state FROM alerts WHERE alert_id = 'a1'") == [{"state": "rectifying"}]


# ----------------------------------------------------------------------------- opening


def test_open_store_picks_the_backend(tmp_path, clickhouse_url):
    s = open_store(tmp_path / "x")
    assert isinstance(s, ChdbStore) and s.backend == "chdb"
    s.close()
    s = open_store(f"chdb://{tmp_path / 'y'}")
    assert isinstance(s, ChdbStore) and s.data_dir == tmp_path / "y"
    s.close()
    s = open_store(clickhouse_url)
    assert isinstance(s, ClickHouseStore) and s.backend == "clickhouse" and s.ping()
    s.close()


def test_server_url_passes_tls_and_credentials_through():
    s = ClickHouseStore("clickhouses://analyst:p%40ss@db.example:9440/qrisk?verify=0&connect_timeout=7", create_database=False)
    got = s.settings
    assert got["secure"] is True and got["verify"] is False
    assert (got["host"], got["port"], got["user"], got["password"], got["database"]) == ("db.example", 9440, "analyst", "p@ss", "qrisk")
    assert got["connect_timeout"] == 7
    assert "p%40ss" not in repr(s) and "***" in repr(s)
    s = ClickHouseStore("clickhouse://db.example/qrisk?secure=1", create_database=False)
    assert s.settings["secure"] is True and s.settings["port"] == 9440
    assert redact("clickhouse://u:secret@h/db") == "clickhouse://u:***@h/db"
    with pytest.raises(ValueError):
        ClickHouseStore("clickhouse://h/bad-name;", create_database=False)


def test_a_server_that_is_down_is_a_transient_error():
    from services import free_port

    s = ClickHouseStore(f"clickhouse://127.0.0.1:{free_port()}/x", create_database=False)
    with pytest.raises(Exception) as info:
        s.query("SELECT 1")
    assert is_transient(info.value)
    assert not s.ping()


# ----------------------------------------------------------------------------- concurrent migrations


def _migrate_in_process(url: str, barrier, out) -> None:
    store = ClickHouseStore(url)
    barrier.wait()
    try:
        out.put(("ok", migrate(store, lock_wait_s=60)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        out.put(("error", repr(exc)))
    finally:
        store.close()


def test_two_processes_migrating_at_once_apply_each_file_once(clickhouse_url):
    name, url = fresh_database_url(clickhouse_url, "mig")
    try:
        ctx = multiprocessing.get_context("spawn")
        barrier, out = ctx.Barrier(3), ctx.Queue()
        procs = [ctx.Process(target=_migrate_in_process, args=(url, barrier, out)) for _ in range(3)]
        for p in procs:
            p.start()
        results = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        assert all(status == "ok" for status, _ in results), results
        applied = sorted(v for _, versions in results for v in versions)
        assert applied == [v for v, _, _ in migration_files()]  # every file applied by exactly one process
        s = ClickHouseStore(url)
        rows = s.query("SELECT version FROM schema_migrations")  # no FINAL: raw rows
        assert Counter(r["version"] for r in rows) == Counter(applied)
        assert not s.query("SELECT name FROM system.tables WHERE database = currentDatabase() AND name = %(n)s", {"n": LOCK_TABLE})
        s.close()
    finally:
        drop_database(clickhouse_url, name)


def test_a_held_lock_makes_others_wait_and_a_stale_one_is_broken(clickhouse_url):
    name, url = fresh_database_url(clickhouse_url, "lock")
    s = ClickHouseStore(url)
    try:
        s.command(f"CREATE TABLE {LOCK_TABLE} (owner String, acquired_at DateTime) ENGINE = TinyLog")
        with pytest.raises(MigrationLockTimeout):
            migrate(s, lock_wait_s=0.5)
        assert s.query("SELECT count() AS n FROM schema_migrations") == [{"n": 0}]
        assert migrate(s, lock_ttl_s=-1) == [v for v, _, _ in migration_files()]  # a dead holder's lock is broken
    finally:
        s.close()
        drop_database(clickhouse_url, name)


def test_a_migration_cut_short_after_its_add_column_is_applied_again(store, monkeypatch):
    # server 18.16 has no ADD COLUMN IF NOT EXISTS: a column already there means that ALTER ran
    import qrisk.store as store_module

    files = store_module.migration_files()
    again = (999, "again", "ALTER TABLE judgements ADD COLUMN superseded_by String DEFAULT '';")
    monkeypatch.setattr(store_module, "migration_files", lambda: [*files, again])
    assert migrate(store) == [999]
    # any other failure of a statement still stops the migration
    broken = (1000, "broken", "ALTER TABLE no_such_table ADD COLUMN x String;")
    monkeypatch.setattr(store_module, "migration_files", lambda: [*files, again, broken])
    with pytest.raises(StoreError):
        migrate(store)
