"""Each Kafka ingress topic admits what its HTTP role may post, and nothing else.

A topic is the only sender identity Kafka gives a consumer: ``qrisk.ingress.lab`` stands for the
role ``lab`` (sampling results as source kind ``lab``), and so on (``qrisk.topics.INGRESS_ROLES``).
Anything else a topic carries is dead-lettered by the worker with ``forbidden: …``, naming the topic
and the field (``event_type`` or ``source.kind``).  Which lab sent a lab result is not something a
topic can tell: ``source.id`` is the writer's word, trusted as the topic's ACLs trust the writer
(README, "Ingress topics and who may write them") — pinned below so the README's statement stays true.

Against the real broker, with a real ``qrisk worker`` started outside the repository (its data
directory defaults to ``QRISK_DATA_DIR/worker``, made at start).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

from tests.conftest import ROOT, golden
from tests.kafka_service import (  # noqa: F401 - fixtures
    group_lag, kafka_bootstrap, kafka_env, kafka_prefix, read_topic, settings_for, wait_for,
)

LAB = "CMA-330100-0451"  # the lab of the golden sampling.result


def _event(event_type: str, **changes) -> dict:
    doc = golden(event_type)
    doc["event_id"] = str(uuid.uuid4())
    for path, value in changes.items():
        target = doc
        *parents, last = path.split("__")
        for p in parents:
            target = target[p]
        target[last] = value
    return doc


# --------------------------------------------------------------------------- the declaration


def test_every_ingress_topic_admits_what_its_http_role_may_post():
    from qrisk.auth import posting_rules
    from qrisk.topics import INGRESS_ROLES, INGRESS_SOURCES, Topics

    topics = Topics("q")
    admissions = topics.admissions()
    assert set(INGRESS_ROLES) == set(INGRESS_SOURCES)
    assert set(admissions) == {t.name for t in topics.ingress.values()}
    for source, spec in topics.ingress.items():
        admission = admissions[spec.name]
        assert (admission.event_types, admission.source_kind) == posting_rules()[INGRESS_ROLES[source]], source
        assert INGRESS_ROLES[source] in spec.purpose  # `qrisk topics describe` says it
    lab = admissions["q.ingress.lab"]
    assert lab.event_types == {"sampling.result"} and lab.source_kind == "lab"
    assert admissions["q.ingress.import"].source_kind is None  # the bureau's importers: what an admin key may post


def test_a_refusal_names_the_topic_and_the_field_in_both_languages():
    from schemas.upcast import parse_event
    from qrisk.topics import Topics

    lab = Topics("q").admissions()["q.ingress.lab"]
    assert lab.refusal(parse_event(golden("sampling.result"))) is None
    assert lab.refusal(parse_event(_event("sampling.result", source__id="CMA-999999-0001"))) is None  # the id: trusted (see above)

    error = lab.refusal(parse_event(golden("enterprise.registered")))
    assert (error["field"], error["type"], error["topic"]) == ("event_type", "forbidden", "q.ingress.lab")
    assert "enterprise.registered" in error["reason"] and "sampling.result" in error["reason"] and "q.ingress.lab" in error["reason"]
    assert "主题 q.ingress.lab 只接收 sampling.result" in error["reason_zh"]

    error = lab.refusal(parse_event(_event("sampling.result", source__kind="bureau")))
    assert (error["field"], error["type"]) == ("source.kind", "forbidden")
    assert "'lab'" in error["reason"] and "'bureau'" in error["reason"] and "来源类型 lab" in error["reason_zh"]


def test_the_dead_letter_of_a_refused_record_says_where_it_was_and_why():
    from schemas.upcast import parse_event
    from qrisk.topics import Topics
    from qrisk.worker import admit

    admissions = Topics("q").admissions()
    raw = json.dumps(golden("enterprise.registered")).encode()
    event = parse_event(json.loads(raw))
    letter = admit(admissions, "q.ingress.lab", 2, 17, raw, [("qrisk-position", b"kafka.jsonl:3")], event)
    assert letter.dead_letter_id == "kafka:q.ingress.lab:2:17" and letter.channel == "kafka"
    assert letter.position == "q.ingress.lab/2/17 (kafka.jsonl:3)" and letter.raw == raw
    assert letter.reason.startswith("forbidden: topic q.ingress.lab admits only sampling.result")
    assert letter.errors[0]["field"] == "event_type"
    assert admit(admissions, "q.ingress.bureau", 0, 0, raw, None, event) is None
    # a topic that is no ingress topic admits nothing (the agent reads only those; said, should it ever change)
    assert admit(admissions, "q.events", 0, 0, raw, None, event).errors[0]["reason"] == "q.events is not an ingress topic"


# --------------------------------------------------------------------------- the real broker and worker


def _cli(args: list[str], env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qrisk.cli_kafka", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**env, "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")})


def test_the_lab_topic_dead_letters_what_a_lab_may_not_send(tmp_path, kafka_bootstrap, kafka_prefix):
    """The reviewers' case: ``qrisk produce kafka.jsonl --source lab`` with an enterprise.registered
    (source kind bureau) and lab results were all folded.  Now the registration and a result posing
    as the bureau are dead letters; the lab's own results, and the registration on the bureau's
    topic, reach the log."""
    from tests.conftest import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("QRISK_")}
    env.update(kafka_env(kafka_bootstrap, kafka_prefix, QRISK_WORKER_WEB_PORT=free_port(), PYTHONUNBUFFERED=1))
    settings = settings_for(kafka_env(kafka_bootstrap, kafka_prefix))
    topics = settings.topics()
    own = _event("sampling.result")
    registered = _event("enterprise.registered")
    as_bureau = _event("sampling.result", source__kind="bureau")
    other_lab = _event("sampling.result", source__id="CMA-999999-0001")
    lab_file = tmp_path / "kafka.jsonl"
    lab_file.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in (own, registered, as_bureau, other_lab)), encoding="utf-8")
    bureau_file = tmp_path / "bureau.jsonl"
    bureau_file.write_text(json.dumps(registered, ensure_ascii=False) + "\n", encoding="utf-8")

    # started outside the repository with no QRISK_WORKER_DATA_DIR: it used to stop with
    # FileNotFoundError: 'var/worker'; now it makes QRISK_DATA_DIR/worker (here relative to its cwd)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "qrisk.cli_kafka", "worker", "--loglevel", "info"], cwd=cwd, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True,
                                  env={**env, "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")})
    try:
        for path, source in ((lab_file, "lab"), (bureau_file, "bureau")):
            done = _cli(["produce", str(path), "--source", source], env, cwd)
            assert done.returncode == 0, done.stderr
        ingress = [topics.ingress["lab"].name, topics.ingress["bureau"].name]

        def tail() -> str:
            return log_path.read_text(errors="replace")[-4000:]

        wait_for(lambda: worker.poll() is None and group_lag(kafka_bootstrap, settings.worker_app_id, ingress) == 0, 90,
                 "the worker to take the ingress", on_timeout=tail)
        assert worker.poll() is None, tail()
        assert (cwd / ".qrisk-data" / "worker").is_dir()
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()

    logged = [(m.topic, json.loads(m.value)["event_id"]) for m in read_topic(kafka_bootstrap, topics.events.name)]
    assert sorted(eid for _, eid in logged) == sorted([own["event_id"], other_lab["event_id"], registered["event_id"]])
    letters = {d["dead_letter_id"]: d for d in (json.loads(m.value) for m in read_topic(kafka_bootstrap, topics.dead_letters.name))}
    by_event = {json.loads(d["raw"])["event_id"]: d for d in letters.values()}
    assert set(by_event) == {registered["event_id"], as_bureau["event_id"]}
    lab_topic = topics.ingress["lab"].name

    kept = by_event[as_bureau["event_id"]]
    assert kept["channel"] == "kafka" and kept["position"].startswith(f"{lab_topic}/") and kept["position"].endswith("(kafka.jsonl:3)")
    assert kept["reason"] == f"forbidden: topic {lab_topic} admits only source kind 'lab', not 'bureau'"
    assert [(e["field"], e["type"], e["topic"]) for e in kept["errors"]] == [("source.kind", "forbidden", lab_topic)]
    assert json.loads(kept["raw"]) == as_bureau  # nothing lost: the record as it came

    kept = by_event[registered["event_id"]]
    assert kept["position"].endswith("(kafka.jsonl:2)") and kept["errors"][0]["field"] == "event_type"
    assert f"主题 {lab_topic} 只接收 sampling.result" in kept["errors"][0]["reason_zh"]
    assert kept["dead_letter_id"].startswith(f"kafka:{lab_topic}:")
