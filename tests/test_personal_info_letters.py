"""A diff review of the complaint branches: the intake board's 原始内容 named the caller held in a field or a column
(an imported 12315 row refused for its category showed …,属实,王小明,138****5678; {"投诉人": "王小明"} showed 王小明), the
illness words took 120元 for a call and 一直吐槽 for vomiting while missing 120送到医院 and 打一二零, and the letter forms'
names (患者刘洋) masked 患者高热，当事人陈述，来信人万分着急 as if they were names."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from processors.personal_info import mask_personal_info
from processors.step import replay
from tests.test_complaint_desk import REG, decisions, received

ROOT = Path(__file__).resolve().parent.parent
HEADER = "投诉编号,登记时间,来源渠道,被投诉企业,问题类别,投诉内容,涉及产品,核查结果,投诉人,联系电话"
# a category the mapping's table lacks (玻璃): refused, the caller's name and number in its last two cells
ROW = "TS1,2026-03-02 09:15,12315,清源桶装水厂,玻璃,桶装水中发现玻璃,饮用纯净水,属实,王小明,13812345678"


# --------------------------------------------------------------------------- 1. dead-letter previews


def test_an_imported_row_refused_shows_on_the_intake_board_without_its_callers_name(tmp_path):
    from qrisk.cli import main
    from qrisk.cli_dashboards import run_panels
    from qrisk.runtime import default_rules, open_embedded

    file = tmp_path / "c.csv"
    file.write_text(HEADER + "\n" + ROW + "\n", encoding="utf-8")
    main(["import", "complaints", str(file), "--mapping", str(ROOT / "ingest" / "mappings" / "complaints.yaml"),
          "--data-dir", str(tmp_path / "data")])
    pipeline = open_embedded(tmp_path / "data", default_rules())
    try:
        now = dt.datetime.now(dt.timezone.utc)
        (panel,) = [r for r in run_panels(pipeline.store, now - dt.timedelta(days=1), now + dt.timedelta(hours=1))
                    if r["dashboard"] == "intake.json" and r["panel"] == "未处理的拒收记录"]
        assert "error" not in panel, panel
        (row,) = panel["rows"]
        shown = row["原始内容"]
        assert "王小明" not in shown and "13812345678" not in shown
        assert shown == "TS1,2026-03-02 09:15,12315,清源桶装水厂,玻璃,桶装水中发现玻璃,饮用纯净水,属实,王**,138****5678"
        # the letter keeps the row as read, for the API's reader
        (kept,) = pipeline.store.query("SELECT raw FROM dead_letters")
        assert kept["raw"] == ROW
    finally:
        pipeline.close()


@pytest.mark.parametrize("doc, shown", [
    ({"投诉人姓名": "王小明"}, {"投诉人姓名": "王**"}),
    ({"payload": {"text": "水有异物", "complainant": "王小明"}}, {"payload": {"text": "水有异物", "complainant": "王**"}}),
    ({"投诉人": "王小明"}, {"投诉人": "王**"}),
    ({"联系人": "欧阳娜娜", "来电人": ["李四", "张三丰"]}, {"联系人": "欧***", "来电人": ["李*", "张**"]}),
    # a name under a person's key; the person's number masked as a number, not as a name; the text as free text
    ({"caller": {"name": "王小明", "phone": 13812345678}, "contact_phone": "13812345678", "text": "我叫李大伟，水有异味"},
     {"caller": {"name": "王**", "phone": "138****5678"}, "contact_phone": "138****5678", "text": "我叫李**，水有异味"}),
])
def test_a_json_letters_preview_masks_a_name_held_by_a_key_naming_a_person(doc, shown):
    from qrisk.pipeline import letter_preview

    assert json.loads(letter_preview(json.dumps(doc, ensure_ascii=False))) == shown
    # escaped as a sender may escape it, the same
    assert json.loads(letter_preview(json.dumps(doc))) == shown


def test_the_enterprise_the_sender_and_the_party_complained_of_stay_readable():
    from qrisk.pipeline import letter_preview

    doc = {"event_type": "enterprise.registered", "payload": {"name": "清源桶装水厂"}, "source": {"name": "县食品检验检测中心"},
           "被投诉人": "清源桶装水厂", "被举报人": "李记小吃店"}
    assert json.loads(letter_preview(json.dumps(doc, ensure_ascii=False))) == doc


def test_a_record_without_its_header_masks_a_name_beside_a_phone_number():
    from qrisk.pipeline import letter_preview

    assert letter_preview(ROW) == "TS1,2026-03-02 09:15,12315,清源桶装水厂,玻璃,桶装水中发现玻璃,饮用纯净水,属实,王**,138****5678"
    assert letter_preview("13812345678\t王小明") == "138****5678\t王**"
    # an enterprise beside its number stays
    assert letter_preview("清源桶装水厂,0571-81234567") == "清源桶装水厂,0571-****4567"


def test_an_events_csvs_payload_cell_is_masked_value_by_value():
    from ingest.files import CSV_COLUMNS
    from qrisk.pipeline import letter_preview

    payload = json.dumps({"complaint_id": "K1", "complainant": "王小明", "text": "水有异物"}, ensure_ascii=False)
    raw = ",".join(["x", "complaint.received", "1", "E-1", "2026-03-02T10:00:00+08:00", "hotline", "h", "",
                    '"' + payload.replace('"', '""') + '"'])
    shown = letter_preview(raw, "utf-8", CSV_COLUMNS)
    assert "王小明" not in shown and "王**" in shown and "水有异物" in shown


def test_the_kafka_sinks_preview_reads_the_imported_records_header():
    from qrisk.kafka_log import dead_letter_value
    from qrisk.pipeline import imported_letter
    from qrisk.sink import Sink

    letter = imported_letter("c.csv:2", ROW.replace("13812345678", "").encode(), "payload.category: 玻璃", [],
                             columns=HEADER.split(","), delimiter=",")
    sink = Sink(store=None, consumer=object())
    value = dead_letter_value(letter, dt.datetime.now(dt.timezone.utc))
    (row,) = sink._dead_letter_rows(sink.topics.dead_letters.name, 0, 7, value).tables["dead_letters"]
    # no number beside it: only the header says 王小明 is the caller
    assert row["raw_preview"].endswith(",属实,王**,") and "王小明" in row["raw"]


# --------------------------------------------------------------------------- 2. the illness words


def _illness(rules, text, category="taste_odour"):
    _, effects = replay([REG, received("K1", "2026-03-02T10:00:00+08:00", category=category, text=text)], rules)
    return decisions(effects, "complaint.illness")


@pytest.mark.parametrize("text", ["店家打折后120元一箱，水里有头发。", "一桶水打了120元，喝起来有股怪味。", "我一直吐槽这家的水有怪味。",
                                  "叫了120瓶水，有股怪味。", "想吐槽一下，这水有怪味。"])
def test_money_a_count_and_a_grumble_raise_no_illness_alert(rules, text):
    assert not _illness(rules, text, "foreign_matter"), text


@pytest.mark.parametrize("text", ["老人喝了以后晕倒在地，120送到医院抢救。", "被120拉走了", "120来了把人接走", "打一二零", "孩子喝了一直在吐"])
def test_the_ambulance_said_otherwise_raises_the_illness_alert(rules, text):
    [d] = _illness(rules, text, "foreign_matter")
    assert d.title_zh == "食用后不适投诉（待核实）"


# --------------------------------------------------------------------------- 3. no name where the form has none


@pytest.mark.parametrize("text", ["患者高热，", "患者黄疸，", "当事人程序违法，", "当事人金额较小，", "来信人万分着急，", "当事人陈述，该桶装水系其他企业产品",
                                  "喝了这桶水后全家腹泻，患者高烧，", "患者高血压，", "当事人向本局提交了购买凭证。"])
def test_what_follows_a_letters_form_is_no_name_when_it_is_a_word(text):
    assert mask_personal_info(text) == text


@pytest.mark.parametrize("text, masked", [
    ("当事人王小明称", "当事人王**称"), ("患者刘洋，", "患者刘*，"), ("来信人：欧阳娜娜", "来信人：欧***"),
    ("来信人欧阳娜娜称", "来信人欧***称"), ("当事人：王小明", "当事人：王**"),
])
def test_a_name_after_a_letters_form_is_still_masked(text, masked):
    assert mask_personal_info(text) == masked


def test_the_illness_alert_quotes_the_symptom_after_patient_whole(rules):
    [d] = _illness(rules, "喝了这桶水后全家腹泻，患者高烧，已去医院就诊。", "illness")
    assert "患者高烧" in d.message_zh
