"""What the door changes of a record is what the logs keep: a complaint's format characters, taken out at the
door, are not put back by the Kafka worker's bytes; a complaint logged with them before is the same event as
its retry read at the door; and a Kafka ingress letter is bounded however many errors its record had."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from qrisk.kafka_log import LETTER_MAX_BYTES, dead_letter_value, event_value
from qrisk.pipeline import LETTER_ERRORS_KEPT, LETTER_TEXT_KEPT, DeadLetter, Pipeline, content_digest
from qrisk.worker import BatchOutput, Fold, arriving, moment_json, normalise
from schemas.events import door
from schemas.upcast import parse_event
from tests.conftest import golden

NOW = dt.datetime(2026, 3, 20, 4, 0, tzinfo=dt.timezone.utc)
DOOR = door(8)
CLEAN = "桶装水有异味，饮用后腹部不适。"


def complaint(text: str) -> dict:
    doc = golden("complaint.received")
    doc["payload"]["text"] = text
    return doc


def logged_value(raw: bytes) -> tuple:
    """What the worker's ingress does with an arriving record: the event and the bytes it logs."""
    valid = arriving(raw, DOOR, NOW, moment_json(NOW))
    assert valid is not None
    event, value = valid
    return event, value or event_value(event)


# --------------------------------------------------------------------------- the Kafka ingress logs what the door read


@pytest.mark.parametrize("text", ["桶装水有异味\u202e，饮用后腹部不适。\u200b", "\ufeff桶装水有异味，饮用后腹部不适。"])
def test_a_complaint_the_door_cleaned_is_logged_cleaned(text):
    raw = json.dumps(complaint(text), ensure_ascii=False).encode()
    event, value = logged_value(raw)
    assert event.payload.text == CLEAN and event.received_at == NOW
    # a successor, a refold or the sink re-reads the log without the door: the event the live fold took
    reread, letter = normalise("qrisk.events", 0, 0, value, {}, None)
    assert letter is None
    assert reread == event
    assert content_digest(reread) == content_digest(event)


def test_a_format_character_escaped_in_the_json_is_cleaned_too():
    raw = json.dumps(complaint("桶装水有异味\u202e，饮用后腹部不适。")).encode()  # ensure_ascii: "\u202e" as an escape
    event, value = logged_value(raw)
    assert normalise("qrisk.events", 0, 0, value, {}, None)[0] == event and event.payload.text == CLEAN


def test_an_empty_source_name_is_logged_as_the_door_read_it():
    doc = golden("complaint.received")
    doc["source"]["name"] = ""
    event, value = logged_value(json.dumps(doc, ensure_ascii=False).encode())
    assert event.source.name is None
    assert normalise("qrisk.events", 0, 0, value, {}, None)[0] == event


def test_a_record_the_door_kept_as_sent_is_logged_as_its_own_bytes_stamped():
    raw = json.dumps(complaint(CLEAN), ensure_ascii=False).encode()
    valid = arriving(raw, DOOR, NOW, moment_json(NOW))
    assert valid is not None and valid[1] is not None and valid[1].startswith(raw[:-1])  # the fast path, not re-serialised


def test_a_retry_after_a_restart_of_a_cleaned_complaint_is_a_duplicate(rules):
    raw = json.dumps(complaint("桶装水有异味\u202e，饮用后腹部不适。\u200b"), ensure_ascii=False).encode()
    event, value = logged_value(raw)
    live = Fold(rules, "qrisk.events")
    live.loaded.add(0)
    live.remember(value, event, 0)
    out = BatchOutput()
    live.apply(0, 0, value, None, out)
    assert out.applied == 1 and live.validated_hits == 1
    # the successor replays the log, then the producer's retry of the same record arrives
    successor = Fold(rules, "qrisk.events")
    out = BatchOutput()
    successor.apply(0, 0, value, None, out)
    assert live.files[event.enterprise_id].seen == successor.files[event.enterprise_id].seen
    _, retry = logged_value(raw)
    successor.apply(0, 1, retry, None, out)
    assert (out.applied, out.duplicates, out.conflicts) == (1, 1, 0)


# --------------------------------------------------------------------------- logged before the door cleaned it


def test_a_complaint_logged_with_a_bom_and_its_retry_at_the_door_are_one_event(tmp_path, rules):
    from ingest.validate import decode_body
    from qrisk.store import ChdbStore

    doc = complaint("\ufeff桶装水有异味\u200b，饮用后腹部不适。")
    before = parse_event(json.loads(json.dumps(doc)))  # as the door read it before it took them out
    assert before.payload.text != CLEAN
    (now_read,), rejections = decode_body(json.dumps(doc, ensure_ascii=False).encode(), context=DOOR)
    assert not rejections and now_read.payload.text == CLEAN
    assert content_digest(before) == content_digest(now_read)
    assert content_digest(parse_event(golden("complaint.received"))) == content_digest(now_read)  # the text as the door keeps it

    pipeline = Pipeline(ChdbStore(tmp_path / "data"), rules, clock=lambda: NOW)
    try:
        pipeline.recover()
        assert [o.status for o in pipeline.submit([parse_event(golden("enterprise.registered")), before])] == ["accepted"] * 2
        assert [o.status for o in pipeline.submit([now_read])] == ["duplicate"]
        # another text under the same id is still another event
        other = parse_event(complaint("桶装水有异味，饮用后头晕。"))
        assert [o.status for o in pipeline.submit([other])] == ["conflict"]
    finally:
        pipeline.close()


def test_a_complaint_an_old_worker_logged_with_a_bom_and_its_retry_are_one_event_to_the_kafka_fold(rules):
    doc = complaint("\ufeff桶装水有异味\u200b，饮用后腹部不适。")
    old = json.dumps({**doc, "received_at": "2026-03-20T03:00:00+00:00"}, ensure_ascii=False).encode()  # its bytes, stamped
    fold = Fold(rules, "qrisk.events")
    out = BatchOutput()
    fold.apply(0, 0, old, None, out)
    _, retry = logged_value(json.dumps(doc, ensure_ascii=False).encode())
    fold.apply(0, 1, retry, None, out)
    assert (out.applied, out.duplicates, out.conflicts) == (1, 1, 0)


# A complaint as written in the log, spelt out here rather than the golden example, so that an edit of that
# leaves the digest pinned below alone
PINNED = {"event_id": "9c8b7a65-4321-4fed-8cba-0987654321ab", "event_type": "complaint.received", "schema_version": 2,
          "enterprise_id": "E-330110-001", "occurred_at": "2026-03-20T11:02:00+08:00",
          "source": {"kind": "complaint_channel", "id": "12315"},
          "payload": {"complaint_id": "TS2026032000451", "channel": "12315", "category": "taste_odour", "text": CLEAN,
                      "product": "饮用纯净水", "verified": False}}


def test_a_text_without_format_characters_keeps_its_digest():
    """Kafka workers keep digests in their snapshots: one taken before the door cleaned texts must still match."""
    assert content_digest(parse_event(json.loads(json.dumps(PINNED)))) == "277214191810ae36c2a60f39123f8f71"


# --------------------------------------------------------------------------- Kafka letters bounded


def test_a_kafka_record_of_20000_keys_given_twice_makes_a_bounded_letter():
    text = json.dumps(golden("sampling.result"))
    raw = (text[:-1] + "," + ",".join(f'"k{i}":0,"k{i}":1' for i in range(20_000)) + "}").encode()
    event, letter = normalise("qrisk.ingress.lab", 0, 7, raw, {}, NOW, DOOR)
    assert event is None
    assert len(letter.errors) <= LETTER_ERRORS_KEPT + 1
    # as the HTTP door names them: the keys given twice first, and each of them unknown too, counted
    from ingest.validate import decode_body

    _, (refused,) = decode_body(raw, context=DOOR)
    assert letter.errors == refused.errors
    assert letter.errors[-1]["type"] == "errors_truncated" and letter.errors[-1]["errors_total"] == 40_000
    stored = json.loads(dead_letter_value(letter, NOW))
    assert len(stored["errors"]) <= LETTER_ERRORS_KEPT + 1 and stored["raw"].encode() == raw


def test_every_kafka_letter_is_bounded_whoever_made_it():
    errors = [{"field": f"k{i}", "type": "extra_forbidden", "reason": "x" * 5000, "reason_zh": "未知字段"} for i in range(10_000)]
    letter = DeadLetter("kafka", "qrisk.events/0/9", b'{"event_type": "x"}', "r" * 100_000, errors)
    value = dead_letter_value(letter, NOW)
    assert len(value) < 400_000
    stored = json.loads(value)
    assert len(stored["errors"]) == LETTER_ERRORS_KEPT + 1 and stored["errors"][-1]["errors_total"] == 10_000
    assert all(len(e["reason"]) < LETTER_TEXT_KEPT + 40 for e in stored["errors"])
    assert len(stored["reason"]) < LETTER_TEXT_KEPT + 40
    # a letter too large all the same (its raw bytes) says so after the errors kept, its count the letter's
    big = DeadLetter("kafka", "qrisk.events/0/10", b"x" * (LETTER_MAX_BYTES + 1), "r" * 100_000, errors)
    bounded = json.loads(dead_letter_value(big, NOW))
    assert [e["type"] for e in bounded["errors"][-2:]] == ["errors_truncated", "letter_truncated"]
    assert bounded["errors"][-1]["errors_total"] == 10_000 and len(bounded["errors"]) == LETTER_ERRORS_KEPT + 2
    assert bounded["reason"].endswith("are kept]") and len(bounded["reason"]) < LETTER_TEXT_KEPT + 400
