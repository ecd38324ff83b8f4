"""Kafka ingress letters bounded however many errors their record had, as the HTTP door's are."""
from __future__ import annotations

import datetime as dt
import json

from qrisk.kafka_log import LETTER_MAX_BYTES, dead_letter_value
from qrisk.pipeline import LETTER_ERRORS_KEPT, LETTER_TEXT_KEPT, DeadLetter
from qrisk.worker import normalise
from schemas.events import door
from tests.conftest import golden

NOW = dt.datetime(2026, 3, 20, 4, 0, tzinfo=dt.timezone.utc)
DOOR = door(8)


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
