"""``qrisk run`` with ``QRISK_EVENT_LOG=kafka`` against the real broker and the real ClickHouse server.

A real ``qrisk run`` process publishes ``POST /v1/events`` to the Kafka log (answered only once the
broker acknowledged: the events are readable in the log the moment the answer arrives), sends
rejected inputs to the dead-letter topic with their reason, keeps access control, and answers
reads from the ClickHouse tables that a real worker and the sink fill.
"""
from __future__ import annotations

import json

import pytest

from tests.conftest import Server, all_goldens, golden
from tests.kafka_service import (  # noqa: F401 - fixtures
    WorkerProcess, group_lag, kafka_bootstrap, kafka_env, kafka_prefix, read_topic, settings_for, wait_for,
)
from tests.services import clickhouse_url, drop_database, fresh_database_url  # noqa: F401 - fixtures


@pytest.fixture
def kafka_api(tmp_path, monkeypatch, kafka_bootstrap, kafka_prefix, clickhouse_url):
    from qrisk.store import ClickHouseStore, migrate

    name, url = fresh_database_url(clickhouse_url, "kafka_api")
    store = ClickHouseStore(url)
    migrate(store)
    env = kafka_env(kafka_bootstrap, kafka_prefix, QRISK_EVENT_LOG="kafka", QRISK_STORE_URL=url)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    srv = Server(tmp_path / "data")
    srv.start()
    try:
        yield {"server": srv, "env": env, "settings": settings_for(env), "store": store, "url": url, "tmp": tmp_path}
    finally:
        srv.stop()
        store.close()
        drop_database(clickhouse_url, name)


def test_post_publishes_to_the_log_acknowledged_before_the_answer(kafka_api, kafka_bootstrap):
    srv, settings = kafka_api["server"], kafka_api["settings"]
    topics = settings.topics()
    body = all_goldens()
    resp = srv.post("/v1/events", json=body)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["accepted"] == len(body) and answer["duplicates"] == 0
    assert all(e["status"] == "accepted" and e["seq"] is not None for e in answer["events"])
    # acknowledged means in the log now: read it back without waiting
    log = read_topic(kafka_bootstrap, topics.events.name)
    by_id: dict[str, list] = {}
    for m in log:
        by_id.setdefault(json.loads(m.value)["event_id"], []).append(m)
    for sent, got in zip(body, answer["events"]):
        copies = by_id[sent["event_id"]]
        if sent["enterprise_id"] == "*":
            assert len(copies) == settings.kafka_partitions and {m.key for m in copies} == {b"*"}  # a tick: every partition
        else:
            (m,) = copies
            assert m.key == sent["enterprise_id"].encode()  # the ordering key
            assert got["seq"] == (m.partition << 40) | m.offset
            doc = json.loads(m.value)
            assert doc["received_at"] and (doc["event_type"], doc["enterprise_id"]) == (sent["event_type"], sent["enterprise_id"])


def test_rejects_go_to_the_dead_letter_topic_and_access_control_holds(kafka_api, kafka_bootstrap):
    from qrisk.auth import KeyStore

    srv, settings = kafka_api["server"], kafka_api["settings"]
    topics = settings.topics()
    bad = golden("sampling.result")
    bad["payload"]["items"][0]["values"][1] = "59"
    resp = srv.post("/v1/events", json=[golden("enterprise.registered"), bad])
    assert resp.status_code == 422
    errors = resp.json()["errors"]
    assert errors[0]["field"] == "payload.items[0].values[1]"
    letter_id = errors[0]["dead_letter_id"]
    letters = {json.loads(m.value)["dead_letter_id"]: json.loads(m.value) for m in read_topic(kafka_bootstrap, topics.dead_letters.name)}
    assert letters[letter_id]["channel"] == "http" and "values[1]" in json.dumps(letters[letter_id]["errors"])
    assert '"59"' in letters[letter_id]["raw"]
    # nothing of the refused batch reached the log
    assert read_topic(kafka_bootstrap, topics.events.name) == []

    # no key, a bad key, a role that may not post
    assert srv.post("/v1/events", json=golden("enterprise.registered"), headers={"authorization": ""}).status_code == 401
    assert srv.post("/v1/events", json=golden("enterprise.registered"), headers={"authorization": "Bearer qrisk_nope_nope"}).status_code == 401
    _, monitor = KeyStore(srv.data_dir / "keys.json").create("monitor", "prometheus", actor="tests")
    refused = srv.post("/v1/events", json=golden("enterprise.registered"), headers={"authorization": f"Bearer {monitor}"})
    assert refused.status_code == 403
    assert read_topic(kafka_bootstrap, topics.events.name) == []
    assert srv.get("/v1/enterprises", headers={"authorization": f"Bearer {monitor}"}).status_code == 403


def test_reads_come_from_clickhouse_as_the_worker_and_sink_write_it(kafka_api, kafka_bootstrap):
    from qrisk.sink import Sink

    srv, settings, store = kafka_api["server"], kafka_api["settings"], kafka_api["store"]
    topics = settings.topics()
    campaign = ("campaign.commitment", "campaign.assessment", "campaign.training", "campaign.activity")
    events = [e for e in all_goldens() if e["enterprise_id"] != "*"] + [golden(t) for t in campaign]
    posted = srv.post("/v1/events", json=events)
    assert posted.status_code == 200
    eid = events[0]["enterprise_id"]
    assert srv.get(f"/v1/enterprises/{eid}").status_code == 404  # not folded yet: said so, not guessed
    missing = srv.get(f"/v1/events/{events[2]['event_id']}")  # nor is the event in ClickHouse's archive yet
    assert missing.status_code == 404 and "尚未经 worker 与 sink 写入 ClickHouse" in missing.json()["detail"]
    bad = golden("sampling.result")
    bad["payload"]["items"][0]["values"][1] = "59"
    letter_id = srv.post("/v1/events", json=bad).json()["errors"][0]["dead_letter_id"]

    worker = WorkerProcess(kafka_api["env"], kafka_api["tmp"], "worker-api").start()
    sink = Sink(store, settings)
    try:
        def visible() -> bool:
            sink.run_once(200)
            r = srv.get(f"/v1/enterprises/{eid}")
            return r.status_code == 200 and r.json()["events"] == len(events)

        wait_for(visible, 90, "the credit file in ClickHouse", interval=0.2, on_timeout=worker.tail)
    finally:
        sink.close()
        worker.stop()
    file = srv.get(f"/v1/enterprises/{eid}").json()
    # the last profile update said B; the bureau's tiering (campaign.assessment) says C, and it decides
    assert file["profile"]["name"] == "清源桶装水厂" and file["profile"]["campaign_tier"] == "C"
    assert file["counts"]["samples_failed"] == 1
    listing = srv.get("/v1/enterprises").json()
    assert [r["enterprise_id"] for r in listing] == [eid] and listing[0]["name"] == "清源桶装水厂"
    # the campaign table from the sink's copies of the files equals the table of the same events folded here,
    from ingest.validate import decode_body
    from processors.campaign import county_progress
    from processors.credit_file import CountyState
    from processors.step import replay
    from qrisk.runtime import default_rules

    folded, rejected = decode_body(json.dumps(events).encode())
    assert not rejected
    rules = default_rules()
    state, _ = replay(folded, rules)
    # so does the readable report, built from the sink's copy of the file and of its alerts (the
    # alerts table keeps each alert's view without its steps, the alert_events rows its steps)
    from qrisk.backtest import state_as_of
    from qrisk.credit_report import build_report

    alerts: dict = {}
    state_as_of(folded, None, rules, alerts=alerts)
    views = [a.view() for a in alerts.values() if a.enterprise_id == eid]
    report = srv.get(f"/v1/enterprises/{eid}?view=report")
    assert report.status_code == 200, report.text
    assert report.json() == json.loads(json.dumps(build_report(state.files[eid], rules, alerts=views), ensure_ascii=False, default=str))
    assert report.json()["warnings"] and all(w["handling_zh"] for w in report.json()["warnings"])
    assert report.json()["grade"]["grade"] and report.json()["samples"][0]["verdict_zh"] == "不合格"
    table = srv.get("/v1/campaign")
    assert table.status_code == 200, table.text
    from qrisk.api import zoned  # (the answer's instants to the millisecond, as every answer writes them: its 截至)

    assert table.json() == json.loads(json.dumps(zoned(county_progress(state, rules.policy.campaign))))
    assert table.json()["rows"][0]["commitment_signed_on"] is not None and table.json()["summary"]["enterprises"] == 1
    csv = srv.get("/v1/campaign?format=csv")
    assert csv.status_code == 200 and "清源桶装水厂" in csv.text
    # a month-end cut needs the embedded log: refused by name, with the way to get it, not answered as of now
    for path in ("/v1/campaign", "/v1/enterprises"):
        cut = srv.get(f"{path}?as_of=2026-01-31")
        assert cut.status_code == 422 and "query.as_of" in cut.text and "qrisk campaign --events" in cut.text, cut.text
    # the county's registers from the sink's copies equal those of the same events folded here
    from qrisk.registers import complaint_rows, inspection_rows, sample_rows

    here = [json.loads(json.dumps(state.files[eid].view(), default=str))]
    f = state.files[eid]
    samples = srv.get("/v1/samples").json()
    assert samples and samples == json.loads(json.dumps(zoned(sample_rows([{"enterprise_id": eid, "profile": {
        "name": f.profile.name, "town": f.profile.town}, "samples": f.samples}]))))
    inspections = srv.get("/v1/inspections").json()
    assert inspections and inspections == json.loads(json.dumps(zoned(inspection_rows(here))))
    complaints = [{k: v for k, v in c.items() if k != "days"} for c in srv.get("/v1/complaints").json()]
    import datetime as dt

    assert complaints and complaints == [{k: v for k, v in c.items() if k != "days"}
                                         for c in json.loads(json.dumps(zoned(complaint_rows(here, dt.datetime.now(dt.timezone.utc)))))]
    letter = srv.get(f"/v1/dead-letters/{letter_id}")
    assert letter.status_code == 200 and letter.json()["channel"] == "http"
    # what became of an event: logged with the seq the POST answered (partition << 40 | offset), or dead-lettered
    fate = srv.get(f"/v1/events/{events[2]['event_id']}").json()
    assert fate["status"] == "logged" and fate["logged"]["seq"] == posted.json()["events"][2]["seq"]
    assert fate["logged"]["received_at"].endswith("Z") and fate["logged"]["event_type"] == events[2]["event_type"]
    # (the refused copy carries the golden sample's id, which was logged: both are said)
    fate = srv.get(f"/v1/events/{bad['event_id']}").json()
    assert fate["status"] == "logged" and [d["dead_letter_id"] for d in fate["dead_letters"]] == [letter_id]
    assert [d["dead_letter_id"] for d in srv.get("/v1/dead-letters", params={"event_id": bad["event_id"]}).json()] == [letter_id]
    health = srv.get("/healthz").json()
    assert health["event_log"] == "kafka" and health["published"] == len(events) and health["dead_lettered"] == 1
    # who posted is audited in the ClickHouse server
    audit = srv.get("/v1/audit?action=events.posted").json()
    assert {a["outcome"] for a in audit} == {"ok", "rejected"}
    # a stored copy this version cannot read is named in the campaign answer, not dropped silently
    store.insert("credit_files", [{"enterprise_id": "E-FUTURE", "seq": 1,
                                   "body": json.dumps({"enterprise_id": "E-FUTURE", "field_of_a_later_version": 1})}])
    table = srv.get("/v1/campaign")
    assert table.status_code == 200 and table.json()["summary"]["unreadable"] == ["E-FUTURE"]
    assert [r["enterprise_id"] for r in table.json()["rows"]] == [eid]
    # so is one the sampling register cannot read: named in a header, the others listed
    store.insert("credit_files", [{"enterprise_id": "E-BAD", "seq": 1,
                                   "body": json.dumps({"enterprise_id": "E-BAD", "profile": {}, "samples": [{"sample_no": 1}]})}])
    register = srv.get("/v1/samples")
    assert register.status_code == 200 and register.headers["x-qrisk-unreadable"] == "E-BAD" and register.json()


def test_alerts_are_folded_by_the_worker_written_by_the_sink_sent_by_the_dispatcher_and_acted_on(kafka_api, tmp_path):
    """The alerts stage in distributed mode: the worker folds the alert (with the policy of
    QRISK_POLICY_FILE), the sink writes it with its outbox row, `qrisk alerts dispatch` delivers it
    to a real webhook, and a supervisor's step goes through the log back to the same alert."""
    import subprocess
    import sys

    import yaml

    from qrisk.sink import Sink
    from tests.conftest import ROOT
    from tests.test_alert_delivery import Hook, event, failing_sample, recent

    srv, settings, store = kafka_api["server"], kafka_api["settings"], kafka_api["store"]
    hook = Hook(down=0)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"alerts": {"receivers": [{"name": "desk", "kind": "webhook", "url": hook.url}],
                                                 "routes": [{"receivers": ["desk"], "min_severity": "high"}]}}), encoding="utf-8")
    env = {**kafka_api["env"], "QRISK_POLICY_FILE": str(policy)}
    assert srv.post("/v1/events", json=[event("enterprise.registered", recent(48)), failing_sample(recent(1), "DC-K-1")]).status_code == 200
    worker = WorkerProcess(env, kafka_api["tmp"], "worker-alerts").start()
    sink = Sink(store, settings)
    try:
        seen: list = []

        def unqualified():
            sink.run_once(200)
            seen[:] = [a for a in srv.get("/v1/alerts").json() if a["rule"] == "sampling.unqualified"]
            return seen

        wait_for(unqualified, 90, "the alert in ClickHouse", interval=0.2, on_timeout=worker.tail)
        alert = seen[0]
        assert alert["state"] == "open" and alert["receivers"] == ["desk"] and alert["town"] == "良渚街道"

        out = subprocess.run([sys.executable, "-m", "qrisk", "alerts", "dispatch", "--once", "--store", kafka_api["url"], "--policy", str(policy)],
                             cwd=ROOT, capture_output=True, text=True, env={**env, "no_proxy": "127.0.0.1", "QRISK_OUTBOX_LEASE_SECONDS": "1"})
        assert out.returncode == 0, out.stderr
        calls = [c for c in hook.calls if c["body"]["alert_id"] == alert["alert_id"]]
        assert len(calls) == 1, out.stderr
        assert calls[0]["body"]["reason"] == "opened" and "DC-K-1" in calls[0]["body"]["text_zh"]
        detail = srv.get(f"/v1/alerts/{alert['alert_id']}").json()
        assert [(d["status"], d["attempt"]) for d in detail["deliveries"]] == [("sent", 1)]
        # every time with its zone, to the millisecond: these came as "2026-11-26 21:25:17" (the store's text)
        from tests.test_api_lookup import assert_times_canonical

        assert detail["outbox"] and assert_times_canonical(detail) >= 4

        r = srv.post(f"/v1/alerts/{alert['alert_id']}/actions", json={"action": "acknowledge", "note": "已到厂核查"})
        assert r.status_code == 202 and r.json()["status"] == "accepted", r.text
        assert srv.post(f"/v1/alerts/{alert['alert_id']}/actions", json={"action": "verify"}).status_code == 409
        unexplained = srv.post(f"/v1/alerts/{alert['alert_id']}/actions", json={"action": "close"})
        assert unexplained.status_code == 422 and "须填写关闭理由" in unexplained.json()["detail"], "refused at the door, as embedded"

        def acknowledged():
            sink.run_once(200)
            seen[:] = [srv.get(f"/v1/alerts/{alert['alert_id']}").json()]
            return seen[0]["state"] == "acknowledged"

        wait_for(acknowledged, 90, "the step folded by the worker", interval=0.2, on_timeout=worker.tail)
        done = seen[0]
        assert [(s["action"], s["actor"], s["note"]) for s in done["steps"]][-1] == ("acknowledge", "test-admin", "已到厂核查")
        assert (done["steps"][-1]["action_zh"], done["steps"][-1]["from_state_zh"], done["steps"][-1]["to_state_zh"]) == ("确认", "待处置", "已确认")
        assert assert_times_canonical(done) >= 4 and assert_times_canonical(srv.get("/v1/alerts").json())  # (steps from alert_events)
    finally:
        sink.close()
        worker.stop()
        hook.close()
