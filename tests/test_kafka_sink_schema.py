"""The sink and a database that is not what the migrations made (the ClickHouse server is real).

A table, database, column or grant missing is an operator's mistake or a schema skew, not a bad
message: the sink waits (unhealthy, in its log) and writes the same rows once it is fixed; it
neither dead-letters nor commits them.  Before, each message went to dead_letters with a 15-line
server stack trace, its offset was committed, and the alert and outbox rows behind the first
missing table were lost.  A message that is really bad is set aside whole, before any of its rows
is written, with a short reason.
"""
from __future__ import annotations

import collections
import datetime as dt
import json
import threading
import time

import pytest

from tests.services import clickhouse_url, drop_database, fresh_database_url  # noqa: F401 - fixtures

TP = collections.namedtuple("TP", "topic partition")
Message = collections.namedtuple("Message", "offset value")
NOW = dt.datetime(2026, 11, 26, 5, 9, 17, tzinfo=dt.timezone.utc)


@pytest.fixture
def db(clickhouse_url):
    from qrisk.store import ClickHouseStore, migrate

    name, url = fresh_database_url(clickhouse_url, "sink_schema")
    store = ClickHouseStore(url)
    migrate(store)
    yield store
    store.close()
    drop_database(clickhouse_url, name)


def _effect_messages(rules) -> list[bytes]:
    """A registered enterprise and a failing sample: effects with judgements, alerts and outbox rows."""
    from qrisk.worker import BatchOutput, Fold
    from tests.conftest import golden

    fold = Fold(rules, "log")
    out = BatchOutput()
    for offset, doc in enumerate((golden("enterprise.registered"), golden("sampling.result"))):
        fold.apply(0, offset, json.dumps({**doc, "received_at": NOW.isoformat()}).encode(), None, out)
    return [v for _, v in out.effects]


def _sink(store, consumer=None):
    from qrisk.sink import Sink
    from qrisk.topics import KafkaSettings

    return Sink(store, KafkaSettings(kafka_topic_prefix="sch"), consumer=consumer or object(), linger_s=0)


def _records(messages):
    return {TP("sch.effects", 0): [Message(i, v) for i, v in enumerate(messages)]}


def _count(store, table):
    return store.query(f"SELECT count() AS n FROM {table} FINAL")[0]["n"]


def _later(seconds, action):
    t = threading.Timer(seconds, action)
    t.start()
    return t


@pytest.mark.parametrize("break_it, fix_it", [
    ("RENAME TABLE stream_effects TO stream_effects_moved", "RENAME TABLE stream_effects_moved TO stream_effects"),
    ("ALTER TABLE stream_effects DROP COLUMN data", "ALTER TABLE stream_effects ADD COLUMN data String"),
    ("RENAME TABLE alerts TO alerts_moved", "RENAME TABLE alerts_moved TO alerts"),
], ids=["table missing", "column missing", "alerts missing"])
def test_a_missing_table_or_column_is_waited_out_not_dead_lettered(db, rules, break_it, fix_it, caplog):
    messages = _effect_messages(rules)
    docs = [json.loads(m) for m in messages]
    assert any(d.get("alert_rows") for d in docs) and any(d.get("judgement_rows") for d in docs)
    db.command(break_it)
    sink = _sink(db)
    fixer = _later(1.5, lambda: db.command(fix_it))
    try:
        with caplog.at_level("ERROR", logger="qrisk.sink"):
            sink.process(_records(messages))
    finally:
        fixer.join()
    assert sink.stats["bad_messages"] == 0 and sink.stats["schema_errors"] >= 1 and sink.unhealthy is None
    assert "unhealthy" in caplog.text and "Stack trace" not in caplog.text
    assert _count(db, "dead_letters") == 0
    assert _count(db, "stream_effects") == sum(len(d["effects"]) for d in docs)
    want = sum(len((d.get("alert_rows") or {}).get("outbox", {}).get("rows", [])) for d in docs)
    assert _count(db, "outbox") == want and _count(db, "alerts") > 0


def test_a_sink_stopped_while_the_table_is_missing_commits_nothing(db, rules):
    from qrisk.sink import Unwritten

    class Consumer:
        commits = 0

        def __init__(self, records):
            self.records = records

        def poll(self, timeout_ms=0, max_records=None):
            out, self.records = self.records, {}
            return out

        def commit(self):
            Consumer.commits += 1

    db.command("RENAME TABLE stream_effects TO stream_effects_moved")
    sink = _sink(db, Consumer(_records(_effect_messages(rules))))
    stopper = _later(1.0, sink.stopping.set)
    try:
        with pytest.raises(Unwritten, match="stream_effects"):
            sink.run_once()
    finally:
        stopper.join()
    assert Consumer.commits == 0 and _count(db, "dead_letters") == 0


def test_a_bad_message_is_set_aside_whole_with_a_short_reason(db, rules):
    """Its judgements were written before its alert row was refused; now nothing of it is."""
    messages = _effect_messages(rules)
    docs = [json.loads(m) for m in messages]
    (at,) = [i for i, d in enumerate(docs) if d.get("judgement_rows") and d.get("alert_rows")]
    bad = docs[at]
    alerts = bad["alert_rows"]["alerts"]
    assert alerts["rows"]
    alerts["columns"] = [*alerts["columns"][:-1], "no_such_field"]  # a column no migration made
    messages[at] = json.dumps(bad).encode()
    sink = _sink(db)
    sink.process(_records(messages))
    assert sink.stats["bad_messages"] == 1
    (letter,) = db.query("SELECT dead_letter_id, reason FROM dead_letters FINAL")
    assert letter["dead_letter_id"] == f"kafka:sch.effects:0:{at}"
    assert "no_such_field" in letter["reason"] and "\n" not in letter["reason"] and len(letter["reason"]) < 400
    # nothing of the bad message was written; the others were
    assert _count(db, "judgements") == 0 and _count(db, "alerts") == 0
    assert _count(db, "stream_effects") == sum(len(d["effects"]) for i, d in enumerate(docs) if i != at)


def test_a_server_error_is_kept_without_its_stack_trace():
    from qrisk.store import StoreError, short_reason

    text = ("ServerException: Code: 60.\nDB::Exception: Table qrisk.stream_effects doesn't exist.. Stack trace:\n\n"
            + "\n".join(f"{i}. clickhouse-server(DB::Foo+0x{i:x}) [0x5f{i:x}]" for i in range(15)))
    assert short_reason(StoreError(text, 60)) == "ServerException: Code: 60. DB::Exception: Table qrisk.stream_effects doesn't exist"
