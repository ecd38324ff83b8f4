"""The ``events`` archive keeps the copy of an event the workers folded: the first in the log.

A correction sent under a used event_id is refused by the worker (``event_id_conflict``), but the
sink archives every log message; without a version the merge kept the correction, or two rows for
one id when its occurred_at differed (migration 045).  On both backends, from a fresh database and
from one migrated before 045 that already holds rows.
"""
from __future__ import annotations

import collections
import json

import pytest

from tests.services import clickhouse_url, drop_database, fresh_database_url, store  # noqa: F401 - fixtures

TP = collections.namedtuple("TP", "topic partition")
Message = collections.namedtuple("Message", "offset value")


def _copies(event_id: str | None = None):
    from tests.conftest import golden

    folded = golden("enterprise.registered")
    folded["event_id"] = event_id or folded["event_id"]
    folded["received_at"] = "2026-01-05T08:30:01Z"
    retry = {**folded, "received_at": "2026-01-05T09:00:00Z"}
    corrected = {**folded, "payload": {**folded["payload"], "name": "另一个名称"}, "occurred_at": "2026-01-04T00:00:00Z",
                 "received_at": "2026-01-05T10:00:00Z"}
    return [json.dumps(d, ensure_ascii=False).encode() for d in (folded, retry, corrected)]


def _sink(store):
    from qrisk.sink import Sink
    from qrisk.topics import KafkaSettings

    return Sink(store, KafkaSettings(kafka_topic_prefix="arch"), consumer=object(), linger_s=0)


def _archived(store):
    store.command("OPTIMIZE TABLE events FINAL")
    return store.query("SELECT event_id, seq, received_at, body FROM events FINAL")


def test_the_folded_copy_survives_a_retry_and_a_refused_correction(store):
    folded, retry, corrected = _copies()
    sink = _sink(store)
    # one batch each, in log order (offsets 3, 9, 12 of partition 1), as the sink meets them
    for offset, value in ((3, folded), (9, retry), (12, corrected)):
        sink.process({TP("arch.events", 1): [Message(offset, value)]})
    (row,) = _archived(store)
    assert row["seq"] == (1 << 40) | 3 and row["received_at"] == "2026-01-05 08:30:01"
    assert json.loads(row["body"]) == json.loads(folded)
    # and in one batch, whatever the order of the rows in it
    folded, _, corrected = _copies("3f1d2c4b-5a69-4e7d-8c0b-a1b2c3d4e5f6")
    sink.process({TP("arch.events", 1): [Message(22, corrected), Message(13, folded)]})
    rows = [r for r in _archived(store) if r["event_id"] == "3f1d2c4b-5a69-4e7d-8c0b-a1b2c3d4e5f6"]
    assert [r["seq"] for r in rows] == [(1 << 40) | 13]


@pytest.mark.parametrize("backend", ["chdb", "clickhouse"])
def test_rows_archived_before_the_migration_are_kept(backend, tmp_path, request):
    from qrisk.store import ChdbStore, ClickHouseStore, _statements, apply_statement, migrate, migration_files

    if backend == "chdb":
        s, cleanup = ChdbStore(tmp_path / "chdb"), None
    else:
        base = request.getfixturevalue("clickhouse_url")
        name, url = fresh_database_url(base, "arch")
        s, cleanup = ClickHouseStore(url), (base, name)
    try:
        migrate_to_044(s)
        folded, retry, corrected = _copies()
        sink = _sink(s)
        sink.process({TP("arch.events", 1): [Message(3, folded)]})
        sink.process({TP("arch.events", 1): [Message(12, corrected)]})
        before = s.query("SELECT count() AS n FROM events")[0]["n"]
        assert before == 2  # two rows for one id: the correction has another occurred_at
        assert migrate(s) == [v for v, _, _ in migration_files() if v > 44]
        (row,) = _archived(s)
        assert row["seq"] == (1 << 40) | 3
        assert {r["name"] for r in s.query("SHOW TABLES")} >= {"events"}
        assert not {r["name"] for r in s.query("SHOW TABLES")} & {"events_before_045", "events_first_copy"}
        # the migration can run again whole (a crash before its record)
        for stmt in _statements(next(t for v, _, t in migration_files() if v == 45)):
            apply_statement(s, stmt)
        (row,) = _archived(s)
        assert row["seq"] == (1 << 40) | 3
    finally:
        s.close()
        if cleanup:
            drop_database(*cleanup)


def migrate_to_044(s):
    import datetime as dt

    from qrisk.store import MIGRATIONS_TABLE, _statements, apply_statement, migration_files

    s.command(MIGRATIONS_TABLE)
    for version, name, text in migration_files():
        if version > 44:
            break
        for stmt in _statements(text):
            apply_statement(s, stmt)
        s.insert("schema_migrations", [{"version": version, "name": name, "applied_at": dt.datetime.now(dt.timezone.utc)}])
