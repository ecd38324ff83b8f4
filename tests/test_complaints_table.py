"""The complaints table (migration 053): one row per complaint or report, as the register lists it
(``qrisk.registers.complaint_rows``), written by both runtimes and replaced at each change of the complaint.

The embedded pipeline writes it from its derived rows (version: the log's seq), the Kafka worker puts the rows in its
effect messages and the sink writes them (version: the file's version); FINAL gives the latest.  Run on chdb and on
the real ClickHouse server (18.16)."""
from __future__ import annotations

import collections
import datetime as dt

import pytest

from tests.services import clickhouse_url, store  # noqa: F401 - fixtures
from tests.test_complaint_accepted import accepted
from tests.test_complaint_deadlines import REG, received, resolved, tick, withdrawn

TP = collections.namedtuple("TP", "topic partition")
Message = collections.namedtuple("Message", "offset value")
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)

# times as epoch seconds and dates as text: the same on both backends
ROWS = """SELECT enterprise_id, complaint_id, town, kind, channel, category, product, toUInt32(received_at) AS received_at, verified, state,
                 toString(accepted_on) AS accepted_on, acceptance, toUInt32(resolved_at) AS resolved_at, toString(concluded_on) AS concluded_on, toUInt32(withdrawn_at) AS withdrawn_at,
                 toString(due_on) AS due_on, overdue, event_id, version
          FROM complaints FINAL ORDER BY enterprise_id, complaint_id"""


def _rows(store):  # noqa: F811 - a store
    return [{k: (int(v) if k in ("verified", "version") and v is not None else v) for k, v in r.items()} for r in store.query(ROWS)]


def _epoch(iso: str | None) -> int | None:
    return None if iso is None else int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def _expected(files) -> list[dict]:
    """The register's rows of these credit files (views), in the table's columns."""
    from qrisk.registers import complaint_rows

    rows = []
    for r in complaint_rows(files, NOW):
        said = r["deadline_zh"].split("：")[0]
        rows.append({
            "enterprise_id": r["enterprise_id"], "complaint_id": r["complaint_id"], "town": r["town"] or "", "kind": r["kind"],
            "channel": r["channel"], "category": r["category"], "product": r["product"] or "", "received_at": _epoch(r["received_at"]),
            # (the register's 属实 / 不属实 / not concluded: 核查中, —（不予受理）, —（已撤回）)
            "verified": {True: 1, False: 0, None: None}[r["verified"]], "state": r["state"],
            "accepted_on": r["accepted_on"], "acceptance": r["acceptance"],
            "resolved_at": _epoch(r["resolved_at"]), "due_on": r["due_on"],
            "overdue": said if said in ("超期未办结", "超期办结", "按期办结") else None, "event_id": r["event_id"],
        })
    return sorted(rows, key=lambda r: (r["enterprise_id"], r["complaint_id"]))


def _without(rows, *names):
    return [{k: v for k, v in r.items() if k not in names} for r in rows]


def _embedded(store, rules, events, batch=400):  # noqa: F811 - a store
    from qrisk.pipeline import Pipeline

    pipeline = Pipeline(store, rules, clock=lambda: NOW, snapshot_every=dt.timedelta(days=1))
    pipeline.recover()
    for i in range(0, len(events), batch):
        pipeline.submit(events[i:i + batch])
    assert pipeline.wait_derived(120)
    return pipeline


def _streamed(store, rules, events, fold=None):  # noqa: F811 - a store
    """The Kafka worker's fold of ``events`` (one partition), its effect messages written by the sink."""
    from qrisk.kafka_log import event_value
    from qrisk.sink import Sink
    from qrisk.topics import KafkaSettings
    from qrisk.worker import BatchOutput, Fold

    fold = fold or Fold(rules, "log")
    out = BatchOutput()
    start = max((fs.pos for fs in fold.files.values()), default=-1) + 1
    for offset, event in enumerate(events, start):
        fold.apply(0, offset, event_value(event.model_copy(update={"received_at": NOW})), int(NOW.timestamp() * 1000), out)
    settings = KafkaSettings()
    sink = Sink(store, settings, consumer=object())
    sink.process({TP(settings.topics().effects.name, 0): [Message(i, v) for i, (_, v) in enumerate(out.effects)]})
    assert sink.stats["bad_messages"] == 0
    return fold, out


def test_both_runtimes_write_the_registers_complaints(store, rules):  # noqa: F811 - fixture
    """A county folded by the embedded pipeline and another by the Kafka worker (written by the sink): every complaint,
    withdrawn ones too, is one row with the register's figures — kind, state, 属实, 办结期限, 超期 — and no text."""
    from qrisk.demo import CountyGenerator

    embedded = CountyGenerator(seed=18, county="A-").generate()
    pipeline = _embedded(store, rules, embedded)
    try:
        streamed = [e for e in CountyGenerator(seed=12, county="B-").generate() if e.enterprise_id != "*"]
        fold, _ = _streamed(store, rules, streamed)
        views = [f.view() for f in pipeline.state.files.values()] + [fs.file.view() for fs in fold.files.values()]
        got = _rows(store)
        expected = _expected(views)
        assert _without(got, "concluded_on", "withdrawn_at", "version") == expected
        assert {r["enterprise_id"][:2] for r in got} == {"A-", "B-"}
        # the demo's complaints are of both kinds, found 属实 and not, concluded in time and late (open ones and withdrawn
        # ones: test_each_change_of_a_complaint_replaces_its_row)
        assert {r["kind"] for r in got} == {"complaint", "report"}
        assert "resolved" in {r["state"] for r in got} and {r["verified"] for r in got} >= {0, 1}
        assert {r["overdue"] for r in got} >= {"按期办结", "超期办结"}
        files = {f["enterprise_id"]: f for f in views}
        for r in got:
            record = next(c for c in [*files[r["enterprise_id"]]["complaints"], *(files[r["enterprise_id"]].get("complaints_withdrawn") or [])]
                          if c["complaint_id"] == r["complaint_id"])
            assert r["concluded_on"] == (str(record["concluded_on"]) if record.get("concluded_on") else None)
        columns = {c["name"] for c in store.query("DESCRIBE TABLE complaints")}
        assert not {"text", "outcome", "complainant"} & columns, "no personal information in the table"
    finally:
        pipeline.close()


def _story(kind: str):
    """A complaint (or report) past its limit, concluded late and 属实, then withdrawn; and one concluded in time."""
    cid, other = f"TS-{kind}-1", f"TS-{kind}-2"
    return [
        REG,
        received(cid, "2026-03-02T09:00:00+08:00", kind=kind),
        received(other, "2026-03-03T09:00:00+08:00", kind=kind, verified=False),
        tick("2026-05-20T09:00:00+08:00"),  # (past every limit of the first: 超期未办结)
        resolved(cid, "2026-05-21T10:00:00+08:00", verified=True),
        withdrawn(cid, "2026-05-22T10:00:00+08:00"),
    ], cid, other


@pytest.mark.parametrize("runtime", ["embedded", "kafka"])
@pytest.mark.parametrize("kind", ["complaint", "report"])
def test_each_change_of_a_complaint_replaces_its_row(store, rules, runtime, kind):  # noqa: F811 - fixture
    """received → 办理中; the clock past its limit → 超期未办结 (a tick, no event of its own); concluded 属实 after it → 超期办结;
    withdrawn → counted nowhere, its clocks stopped.  One row each under FINAL, the latest, in either runtime."""
    events, cid, other = _story(kind)
    pipeline = fold = None
    steps = []

    def step(batch):
        nonlocal pipeline, fold
        if runtime == "embedded":
            if pipeline is None:
                pipeline = _embedded(store, rules, batch)
            else:
                pipeline.submit(batch)
                assert pipeline.wait_derived(60)
        else:
            fold, _ = _streamed(store, rules, batch, fold)
        steps.append({r["complaint_id"]: r for r in _rows(store)})

    try:
        step(events[:3])
        step(events[3:4])
        step(events[4:5])
        step(events[5:6])
    finally:
        if pipeline is not None:
            pipeline.close()
    opened, late, concluded, gone = (s[cid] for s in steps)
    assert all(len(s) == 2 for s in steps), "one row per complaint"
    assert (opened["state"], opened["verified"], opened["overdue"], opened["resolved_at"]) == ("open", None, None, None)
    assert opened["due_on"] is not None and opened["town"] == REG.payload.town and opened["kind"] == kind
    assert (late["state"], late["overdue"]) == ("open", "超期未办结") and late["version"] > opened["version"]
    assert (concluded["state"], concluded["verified"], concluded["overdue"], concluded["concluded_on"]) == (
        "resolved", 1, "超期办结", "2026-05-21")
    assert (gone["state"], gone["overdue"], gone["verified"]) == ("withdrawn", None, 1) and gone["withdrawn_at"] is not None
    assert gone["version"] > concluded["version"] > late["version"]
    # the other one, open past its limits too and untouched by the first's events
    assert steps[-1][other]["overdue"] == "超期未办结" and steps[-1][other]["state"] == "open"


def test_a_rebuild_writes_the_same_rows(store, rules):  # noqa: F811 - fixture
    """Folded live event by event, then rebuilt from the same log (batches derived at their end): the same rows,
    versions included; a second Kafka fold of the same log gives its messages the same rows."""
    from qrisk.pipeline import Pipeline

    events, _, _ = _story("complaint")
    events += _story("report")[0][1:]
    pipeline = _embedded(store, rules, events, batch=1)
    live = _rows(store)
    assert len(live) == 4
    rebuilt = Pipeline(store, rules, clock=lambda: NOW)  # (as `qrisk rebuild`; the live one's store stays open for it)
    try:
        rebuilt.recover(rebuild=True)
        assert _rows(store) == live
    finally:
        rebuilt.close()


def test_a_refold_in_the_kafka_mode_gives_the_same_rows(rules):
    from qrisk.worker import BatchOutput, Fold

    events, _, _ = _story("report")

    def complaint_rows():
        from qrisk.kafka_log import event_value

        fold, out = Fold(rules, "log"), BatchOutput()
        for offset, event in enumerate(events):
            fold.apply(0, offset, event_value(event.model_copy(update={"received_at": NOW})), None, out)
        import json

        return [r for _, v in out.effects for r in (json.loads(v).get("complaint_rows") or {}).get("rows", [])]

    first = complaint_rows()
    assert len(first) >= 5 and complaint_rows() == first


def test_the_dashboards_names_are_the_credit_files():
    from dashboards.model import COMPLAINT_CATEGORIES_ZH, COMPLAINT_KINDS_ZH
    from processors.credit_file import COMPLAINT_KIND_ZH
    from processors.warnings import COMPLAINT_ZH

    assert COMPLAINT_CATEGORIES_ZH == COMPLAINT_ZH and COMPLAINT_KINDS_ZH == COMPLAINT_KIND_ZH


@pytest.mark.parametrize("runtime", ["embedded", "kafka"])
def test_an_enterprise_moving_town_moves_its_complaints(store, rules, runtime):  # noqa: F811 - fixture
    """The town is the enterprise's now: its profile changed, every complaint's row is written again under it."""
    import uuid

    from schemas.upcast import parse_event
    from tests.conftest import golden

    events, cid, other = _story("complaint")
    doc = golden("enterprise.updated")
    doc["event_id"], doc["occurred_at"] = str(uuid.uuid4()), "2026-05-25T10:00:00+08:00"
    doc["payload"] = {"town": "新塘街道"}
    moved = parse_event(doc)
    if runtime == "embedded":
        pipeline = _embedded(store, rules, events)
        try:
            assert {r["town"] for r in _rows(store)} == {REG.payload.town}
            pipeline.submit([moved])
            assert pipeline.wait_derived(60)
            got = _rows(store)
        finally:
            pipeline.close()
    else:
        fold, _ = _streamed(store, rules, events)
        assert {r["town"] for r in _rows(store)} == {REG.payload.town}
        _streamed(store, rules, [moved], fold)
        got = _rows(store)
    assert REG.payload.town != "新塘街道"
    assert {(r["complaint_id"], r["town"]) for r in got} == {(cid, "新塘街道"), (other, "新塘街道")}


@pytest.mark.parametrize("runtime", ["embedded", "kafka"])
def test_a_decision_on_acceptance_replaces_the_row(store, rules, runtime):  # noqa: F811 - fixture
    """受理决定 (complaint.accepted): accepted, the 受理日期 and the mediation's 办结期限 counted from it; refused (不予受理), no
    longer 办理中 and its clocks stopped — not 超期未办结 either, as the register says it."""
    events = [REG, received("TS-A", "2026-03-02T09:00:00+08:00"), received("TS-R", "2026-03-02T10:00:00+08:00")]
    decisions = [accepted("TS-A", "2026-03-05"), accepted("TS-R", "2026-03-05", decision="refused", reason="不属于本部门管辖"),
                 tick("2026-09-01T09:00:00+08:00")]
    if runtime == "embedded":
        pipeline = _embedded(store, rules, events)
        before = {r["complaint_id"]: r for r in _rows(store)}
        try:
            pipeline.submit(decisions)
            assert pipeline.wait_derived(60)
            after = {r["complaint_id"]: r for r in _rows(store)}
        finally:
            pipeline.close()
    else:
        fold, _ = _streamed(store, rules, events)
        before = {r["complaint_id"]: r for r in _rows(store)}
        _streamed(store, rules, decisions, fold)
        after = {r["complaint_id"]: r for r in _rows(store)}
    assert [(r["state"], r["acceptance"], r["accepted_on"]) for r in before.values()] == [("open", None, None)] * 2
    assert (after["TS-A"]["state"], after["TS-A"]["acceptance"], after["TS-A"]["accepted_on"]) == ("open", "accepted", "2026-03-05")
    assert after["TS-A"]["overdue"] == "超期未办结" and after["TS-A"]["due_on"] != before["TS-A"]["due_on"]
    assert (after["TS-R"]["state"], after["TS-R"]["acceptance"], after["TS-R"]["accepted_on"], after["TS-R"]["overdue"]) == (
        "refused", "refused", None, None)
