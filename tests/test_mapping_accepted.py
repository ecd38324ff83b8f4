"""The 12315 export's 受理决定: a mapping's ``when`` reads whether a cell is filled (``present``) or none of some values
(``not_in``), all of a list of conditions holding, so that ingest/mappings/complaints.yaml gives a 投诉 row with its
受理时间 its complaint.accepted (and a 不予受理 row its refusal) — and an imported county's open 投诉 the export shows
accepted is not chased on its 7 working days — while an export without these columns maps to the same events as before."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Callable

import pytest
import yaml

from ingest.mapping import MappingError, load_mapping, read_mapped
from processors.step import replay
from qrisk.registers import complaint_rows
from schemas.upcast import parse_event
from tests.conftest import golden
from tests.test_mapping import EXAMPLES, MAPPINGS, _mapped_at, cli, events

D = dt.date.fromisoformat
E = "E-330110-001"

HEADER = "投诉编号,诉求类型,被投诉企业,登记时间,来源渠道,问题类别,投诉内容,涉及产品,核查结果,受理时间,处理状态,不予受理原因,办结时间\n"
# received Friday 2026-03-20: a 投诉's 7 working days to accept end 2026-03-31
ROWS = {
    "TS1": "TS1,投诉,清源桶装水厂,2026-03-20 09:00,12315,异物,水里有虫,桶装水,,2026-03-23 10:00,处理中,,\n",  # accepted, open
    "TS2": "TS2,投诉,清源桶装水厂,2026-03-20 09:00,12315,异物,水里有虫,桶装水,,,,,\n",  # no decision yet
    "TS3": "TS3,投诉,清源桶装水厂,2026-03-20 09:00,12315,价格,水价上涨,桶装水,,2026-03-24,不予受理,不属于本行政机关管辖,\n",
    "JB1": "JB1,举报,清源桶装水厂,2026-03-20 09:00,12315,卫生,灌装间无消毒记录,桶装水,,2026-03-21,,,\n",  # a 举报: no decision
    "TS5": "TS5,投诉,清源桶装水厂,2026-03-20 09:00,12315,异物,水里有虫,桶装水,属实,2026/03/25,,,2026-04-20 16:00\n",
}


def _county(tmp_path: Path, mapping_doc: dict | None = None, enterprises: str = "名称,企业编号\n清源桶装水厂,E-330110-001\n") -> Path:
    """The shipped mapping (or another) beside its enterprise table, as a county keeps it."""
    (tmp_path / "enterprises.example.csv").write_text(enterprises, encoding="utf-8")
    path = tmp_path / ("complaints.yaml" if mapping_doc is None else "before.yaml")
    if mapping_doc is None:
        path.write_text((MAPPINGS / "complaints.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(mapping_doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _before(tmp_path: Path, **enterprises: str) -> Path:
    """The mapping as it was before it gave decisions: the shipped one without its complaint.accepted blocks."""
    doc = yaml.safe_load((MAPPINGS / "complaints.yaml").read_text(encoding="utf-8"))
    doc["also"] = [a for a in doc["also"] if a["event_type"] != "complaint.accepted"]
    assert [a["event_type"] for a in doc["also"]] == ["complaint.resolved"]
    return _county(tmp_path, doc, **enterprises)


def _export(tmp_path: Path, *ids: str, name: str = "c.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(ROWS[i] for i in ids), encoding="utf-8")
    return path


def _docs(mapping: Path, export: Path) -> list:
    return [doc for _, _, doc in read_mapped(export, load_mapping(mapping))]


# --------------------------------------------------------------------------- 1. the condition


def _mapping(tmp_path: Path, when: str, columns: str = "编号,时间") -> tuple[Path, Callable[[str], list[str]]]:
    path = tmp_path / "m.yaml"
    path.write_text("name: t\nevent_type: complaint.received\nevent_id: {key: [编号]}\n"
                    "fields:\n  enterprise_id: {const: E1}\n  occurred_at: {column: 时间, type: datetime}\n"
                    "  payload.complaint_id: {column: 编号}\n  payload.category: {const: other}\n  payload.text: {const: 测试}\n"
                    "also:\n  - event_type: complaint.accepted\n    event_id: {key: [编号]}\n" + when +
                    "    fields:\n      enterprise_id: {const: E1}\n      occurred_at: {column: 时间, type: datetime}\n"
                    "      payload.complaint_id: {column: 编号}\n      payload.decision: {const: accepted}\n"
                    "      payload.decided_on: {column: 时间, type: date}\n", encoding="utf-8")

    def given(csv_text: str) -> list[str]:
        """The complaint ids whose row gave the also event."""
        data = tmp_path / "d.csv"
        data.write_text(columns + "\n" + csv_text, encoding="utf-8")
        return [d["payload"]["complaint_id"] for _, _, d in read_mapped(data, load_mapping(path))
                if isinstance(d, dict) and d["event_type"] == "complaint.accepted"]

    return path, given


def test_present_holds_for_a_filled_cell_and_not_for_a_blank_one(tmp_path):
    _, given = _mapping(tmp_path, "    when: {column: 受理, present: true}\n", "编号,时间,受理")
    # spaces, full-width ones included, are blank
    assert given("A,2026-03-20,2026-03-23\nB,2026-03-20,\nC,2026-03-20,  \nD,2026-03-20,\u3000\nE,2026-03-20,是\n") == ["A", "E"]
    _, given = _mapping(tmp_path, "    when: {column: 受理, present: false}\n", "编号,时间,受理")
    assert given("A,2026-03-20,2026-03-23\nB,2026-03-20,\nC,2026-03-20, \n") == ["B", "C"]


def test_a_list_of_columns_reads_the_first_filled_and_a_list_of_conditions_must_all_hold(tmp_path):
    _, given = _mapping(tmp_path, "    when:\n      - {column: [受理时间, 受理日期], present: true}\n"
                                  "      - {column: 类型, not_in: [举报, 违法举报]}\n", "编号,时间,受理时间,受理日期,类型")
    assert given("A,2026-03-20,,2026-03-23,投诉\n"   # 受理日期 stands in for a blank 受理时间
                 "B,2026-03-20,,,投诉\n"               # neither: no
                 "C,2026-03-20,2026-03-23,,\n"          # a blank 类型 is none of 举报
                 "D,2026-03-20,2026-03-23,,举报\n"
                 "E,2026-03-20,2026-03-23,,违法举报\n"
                 "F,2026-03-20,2026-03-23,, 举报\u3000\n") == ["A", "C"]  # compared spaces aside


def test_a_condition_column_the_file_lacks_is_refused_unless_it_is_optional(tmp_path):
    path, given = _mapping(tmp_path, "    when: {column: [受理时间, 受理日期], present: true}\n")
    with pytest.raises(MappingError, match="needs column.*受理时间 / 受理日期"):
        given("A,2026-03-20\n")
    path, given = _mapping(tmp_path, "    when: {column: [受理时间, 受理日期], present: true, column_optional: true}\n")
    assert given("A,2026-03-20\n") == []  # read as blank: the row gives its first event only
    assert [d["event_type"] for d in _docs(path, tmp_path / "d.csv")] == ["complaint.received"]
    _, given = _mapping(tmp_path, "    when: {column: 受理时间, present: false, column_optional: true}\n")
    assert given("A,2026-03-20\n") == ["A"]


@pytest.mark.parametrize("when, said", [
    ("when: {column: 受理时间}", "also.0.when.0: Value error, a when condition gives exactly one of in, not_in, present (got none)"),
    ("when: {column: 受理时间, present: true, in: [是]}", "exactly one of in, not_in, present (got in, present)"),
    ("when: {column: 受理时间, present: 也许}", "also.0.when.0.present: Input should be a valid boolean"),
    ("when: {column: 受理时间, filled: true}", "also.0.when.0.filled: Extra inputs are not permitted"),
    ("when: [{column: 受理时间, present: true}, {column: 类型, not_in: []}]", "also.0.when.1.not_in: List should have at least 1 item"),
    ("when: {column: [], present: true}", "also.0.when.0: Value error, a when condition names its column"),
    ("when: []", "also.0.when: List should have at least 1 item"),
    ("when: 受理时间", "also.0.when: Value error, when is a condition {column: …, in | not_in | present: …} or a list of them"),
])
def test_a_bad_condition_is_refused_naming_the_mapping_file_and_the_key(tmp_path, when, said):
    path, _ = _mapping(tmp_path, f"    {when}\n")
    with pytest.raises(MappingError) as refused:
        load_mapping(path)
    assert str(path) in refused.value.zh and refused.value.zh.startswith("映射文件") and said in refused.value.en


# --------------------------------------------------------------------------- 2. the shipped 12315 mapping


def test_the_12315_export_gives_an_accepted_or_refused_decision_and_none_for_a_blank_or_a_report(tmp_path):
    mapping = _county(tmp_path)
    rows = _mapped_at(mapping, _export(tmp_path, "TS1", "TS2", "TS3", "JB1", "TS5"))
    assert [r for r in rows if r[1] != "event"] == []
    evs = events(rows)
    assert [(e.event_type, e.payload.complaint_id) for e in evs] == [
        ("complaint.received", "TS1"), ("complaint.accepted", "TS1"), ("complaint.received", "TS2"),
        ("complaint.received", "TS3"), ("complaint.accepted", "TS3"), ("complaint.received", "JB1"),
        ("complaint.received", "TS5"), ("complaint.accepted", "TS5"), ("complaint.resolved", "TS5")]
    decisions = {e.payload.complaint_id: e for e in evs if e.event_type == "complaint.accepted"}
    ts1, ts3, ts5 = decisions["TS1"], decisions["TS3"], decisions["TS5"]
    assert (ts1.payload.decision, ts1.payload.decided_on, ts1.payload.reason) == ("accepted", D("2026-03-23"), "")
    assert ts1.occurred_at.isoformat() == "2026-03-23T02:00:00+00:00"  # 受理时间 10:00 local: recorded then
    assert (ts3.payload.decision, ts3.payload.decided_on, ts3.payload.reason) == ("refused", D("2026-03-24"), "不属于本行政机关管辖")
    assert ts3.occurred_at.isoformat() == "2026-03-24T09:00:00+00:00"  # a date alone: 17:00 local
    assert ts5.payload.decided_on == D("2026-03-25") and ts5.enterprise_id == E and ts5.source.kind == "importer"
    # its own id, one per complaint, not the complaint's nor the conclusion's
    ids = [str(e.event_id) for e in evs]
    assert len(set(ids)) == len(ids)
    again = events(_mapped_at(mapping, _export(tmp_path, "TS1", name="again.csv")))
    assert str(again[1].event_id) == str(ts1.event_id)


def test_a_refusal_row_without_its_date_or_reason_is_refused_naming_the_field_and_the_complaint_still_comes(tmp_path):
    mapping = _county(tmp_path)
    export = tmp_path / "c.csv"
    export.write_text(HEADER + "TS4,投诉,清源桶装水厂,2026-03-20 09:00,12315,价格,水价上涨,桶装水,,,不予受理,,\n"
                      "TS6,投诉,清源桶装水厂,2026-03-20 09:00,12315,价格,水价上涨,桶装水,,2026-03-24,不予受理,,\n", encoding="utf-8")
    rows = _mapped_at(mapping, export)
    assert [(r[0], r[1]) for r in rows] == [("c.csv:2", "event"), ("c.csv:2", "rejected"), ("c.csv:3", "event"), ("c.csv:3", "rejected")]
    assert "decided_on" in rows[1][2] and "reason" in rows[3][2]
    assert [e.event_type for e in events(rows)] == ["complaint.received", "complaint.received"]


def test_an_export_without_the_acceptance_columns_maps_to_the_same_events_as_before(tmp_path):
    before, now = _before(tmp_path), _county(tmp_path)
    old = tmp_path / "old.csv"
    old.write_text("投诉编号,被投诉企业,登记时间,来源渠道,问题类别,投诉内容,涉及产品,核查结果,办结时间\n"
                   "TS1,清源桶装水厂,2026-03-20 09:00,12315,异物,水里有虫,桶装水,属实,2026-04-20 16:00\n"
                   "TS2,清源桶装水厂,2026-03-20 09:00,12315,异物,水里有虫,桶装水,,\n", encoding="utf-8")
    assert [d["event_type"] for d in _docs(now, old)] == ["complaint.received", "complaint.resolved", "complaint.received"]
    assert _docs(now, old) == _docs(before, old)
    # the shipped example export too (a row that does not map says the same)
    shipped = [(p, d if isinstance(d, dict) else str(d)) for p, _, d in read_mapped(EXAMPLES / "complaints.csv", load_mapping(MAPPINGS / "complaints.yaml"))]
    (tmp_path / "shipped").mkdir()
    before_shipped = _before(tmp_path / "shipped", enterprises=(MAPPINGS / "enterprises.example.csv").read_text(encoding="utf-8"))
    earlier = [(p, d if isinstance(d, dict) else str(d)) for p, _, d in read_mapped(EXAMPLES / "complaints.csv", load_mapping(before_shipped))]
    assert shipped == earlier and len(shipped) == 8
    # and an export with them: besides the decisions, the same events as before
    export = _export(tmp_path, "TS1", "TS2", "TS3", "JB1", "TS5")
    assert [d for d in _docs(now, export) if d["event_type"] != "complaint.accepted"] == _docs(before, export)


def test_reimporting_an_export_imported_before_adds_its_decisions_without_a_conflict(tmp_path, capsys):
    before, now = _before(tmp_path), _county(tmp_path)
    export = _export(tmp_path, "TS1", "TS2", "TS3", "JB1", "TS5")
    data = tmp_path / "data"
    assert cli("import", "complaints", str(export), "--mapping", str(before), "--data-dir", str(data)) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (first["accepted"], first["duplicates"], first["rejected"]) == (6, 0, 0)
    assert cli("import", "complaints", str(export), "--mapping", str(now), "--data-dir", str(data)) == 0
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (second["accepted"], second["duplicates"], second["rejected"]) == (3, 6, 0)  # TS1, TS3, TS5's decisions


# --------------------------------------------------------------------------- 3. the fold: an accepted 投诉 is not chased


def _tick(at: str):
    doc = golden("clock.tick")
    doc["event_id"], doc["occurred_at"] = "6f1c9a8e-0d2b-4e5f-8a7b-1c2d3e4f5a6b", at
    return parse_event(doc)


def test_an_imported_open_complaint_the_export_shows_accepted_is_not_chased_and_one_without_a_decision_is(tmp_path, rules):
    # (TS5's conclusion of 04-20 would move the file's clock past JB1's 15 days: left out)
    evs = events(_mapped_at(_county(tmp_path), _export(tmp_path, "TS1", "TS2", "TS3", "JB1")))
    state, effects = replay([parse_event(golden("enterprise.registered")), *evs, _tick("2026-04-02T08:00:00+08:00")], rules)
    overdue = [(e.data["complaint_id"], e.data["limit"]) for e in effects if e.kind == "complaint.overdue"]
    assert overdue == [("TS2", "accept")]
    file = state.files[E]
    assert [(lim.limit, lim.overdue) for lim in file.complaint("TS1").limits] == [("accept", False), ("mediate", False)]
    assert file.complaint("TS1").accepted_on == D("2026-03-23")
    register = {r["complaint_id"]: r["acceptance_zh"]
                for r in complaint_rows([file.view()], dt.datetime(2026, 4, 2, tzinfo=dt.timezone.utc))}
    assert register["TS1"].startswith("受理（2026-03-23") and register["TS2"] == "待受理"
    assert "不予受理" in register["TS3"] and "不属于本行政机关管辖" in register["TS3"]
    # the same export through the mapping as it was: every open 投诉 chased, the accepted one included
    earlier = events(_mapped_at(_before(tmp_path), _export(tmp_path, "TS1", "TS2", "TS3", "JB1")))
    _, effects = replay([parse_event(golden("enterprise.registered")), *earlier, _tick("2026-04-02T08:00:00+08:00")], rules)
    assert sorted(e.data["complaint_id"] for e in effects if e.kind == "complaint.overdue") == ["TS1", "TS2", "TS3"]
