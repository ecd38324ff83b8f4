"""Foreign CSV files through column mappings: what maps, what goes to dead letters and why,
announcement rows grouped by sample, deterministic ids (re-import adds nothing)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.mapping import MappingError, load_mapping, read_mapped
from ingest.validate import Rejection, validate_document
from tests.conftest import ROOT

MAPPINGS = ROOT / "ingest" / "mappings"
EXAMPLES = MAPPINGS / "examples"


def mapped(mapping: str, csv_file: Path):
    out = []
    for position, raw, doc in read_mapped(csv_file, load_mapping(MAPPINGS / mapping)):
        if isinstance(doc, MappingError):
            out.append((position, "error", str(doc)))
            continue
        result = validate_document(doc, None, raw)
        out.append((position, "rejected", result.reason) if isinstance(result, Rejection) else (position, "event", result))
    return out


def events(rows):
    return [r[2] for r in rows if r[1] == "event"]


def test_inspections(tmp_path):
    rows = mapped("inspections.yaml", EXAMPLES / "inspections.csv")
    evs = events(rows)
    assert [e.payload.inspection_id for e in evs] == ["JC2023-0012", "JC2023-0047", "JC2023-0051", "JC2023-0060"]
    first, _, p09, p05 = evs
    assert first.occurred_at.isoformat() == "2023-04-11T02:00:00+00:00"  # 10:00 local, the mapping's default time
    assert p09.payload.result == "不符合" and p09.occurred_at.date().isoformat() == "2023-10-08"  # 2023年10月8日
    assert [(f.code, f.severity) for f in p09.payload.findings] == [("3.4", "minor"), ("6.2", "critical")]
    assert p09.payload.findings[1].description == "添加剂使用无称量记录"
    assert p05.payload.result == "不符合" and p05.payload.kind == "special"  # 不合格 → 不符合, 飞行检查 → special
    errors = {pos: reason for pos, kind, reason in rows if kind != "event"}
    assert errors.keys() == {"inspections.csv:6", "inspections.csv:7"}
    assert "2023-13-01" in errors["inspections.csv:6"] and "occurred_at" in errors["inspections.csv:6"]
    assert "待定" in errors["inspections.csv:7"] and "payload.result" in errors["inspections.csv:7"]


def test_announcement_rows_of_one_sample_become_one_event(rules):
    rows = mapped("samr_announcement.yaml", EXAMPLES / "samr_announcement.csv")
    evs = {e.payload.sample_no: e for e in events(rows)}
    w03 = evs["DC23330100123456"]
    assert w03.enterprise_id == "W03" and w03.source.kind == "importer"
    assert [i.item_code for i in w03.payload.items] == ["pseudomonas_aeruginosa", "oxygen_consumption"]
    assert w03.payload.items[0].values == [45, 59, 8, 61, 10] and w03.payload.items[0].unit == "CFU/250mL"
    assert w03.payload.items[1].values == [2.6] and w03.payload.items[1].unit == "mg/L"
    assert w03.payload.sampled_on.isoformat() == "2023-08-28" and w03.payload.announcement_no == "〔2023〕21号"
    assert evs["DC23330100125555"].enterprise_id == "P05"
    errors = {pos: reason for pos, kind, reason in rows if kind != "event"}
    assert errors.keys() == {"samr_announcement.csv:5"}
    assert "无名食品厂" in errors["samr_announcement.csv:5"]  # not in the enterprise directory
    # qrisk judges the imported items itself
    from processors.step import replay
    from tests.conftest import golden
    from schemas.upcast import parse_event

    reg = golden("enterprise.registered")
    reg["enterprise_id"] = "W03"
    state, effects = replay([parse_event(reg), w03], rules)
    failed = next(e for e in effects if e.kind == "sampling.failed")
    assert set(failed.data["failed_items"]) == {"pseudomonas_aeruginosa", "oxygen_consumption"}


def _registered(enterprise_id: str, category: str):
    from schemas.upcast import parse_event
    from tests.conftest import golden

    reg = golden("enterprise.registered")
    reg["enterprise_id"], reg["payload"]["category"] = enterprise_id, category
    return parse_event(reg)


def test_a_sum_of_ratios_the_lab_reports_is_imported_not_refused(rules):
    """The commonest pastry failure: the lab reports only the sum (GB 2760: 各自用量占其最大使用量的
    比例之和), no members.  The row is a test item with its value and the lab's 不合格, so the sample
    shows as lab-failed and 待定 until the catalogue can judge the sum itself."""
    rows = mapped("samr_announcement.yaml", EXAMPLES / "samr_announcement.csv")
    [p09] = [e for e in events(rows) if e.payload.sample_no == "DC23330100127777"]
    [item] = p09.payload.items
    assert (p09.enterprise_id, item.item_code, item.values, item.unit, item.lab_verdict) == (
        "P09", "preservative_ratio_sum", [1.35], "无量纲", "fail")
    assert item.item_name == "防腐剂混合使用时各自用量占其最大使用量的比例之和" and item.standard_ref == "GB 2760-2014"
    from processors.step import replay

    state, effects = replay([_registered("P09", "pastry"), p09], rules)
    [judged] = state.files["P09"].samples
    assert judged.judgement.items[0].lab_verdict == "fail"
    assert judged.judgement.verdict in ("fail", "undetermined")  # 待定 while the catalogue has no item for the sum
    assert state.files["P09"].counts.samples == 1
    # the variants of the wording map too, and only a sum of ratios may come without a unit
    mapping = load_mapping(MAPPINGS / "samr_announcement.yaml")
    from ingest.mapping import map_item

    for wording, code in [("防腐剂混合使用时各自用量占其最大使用量比例之和", "preservative_ratio_sum"),
                          ("抗氧化剂混合使用时各自用量占其最大使用量的比例之和", "antioxidant_ratio_sum"),
                          ("相同色泽着色剂混合使用时各自用量占其最大使用量的比例之和", "colourant_ratio_sum")]:
        item = map_item({"不合格项目": wording, "检验结果": "1.02"}, mapping)
        assert (item["item_code"], item["values"], item["unit"]) == (code, [1.02], "无量纲")
    with pytest.raises(MappingError, match="names no unit"):
        map_item({"不合格项目": "霉菌", "检验结果": "260"}, mapping)


def test_the_published_combined_cell_and_its_stated_limit(rules):
    """Announcements print 不合格项目‖检验结果‖标准值 in one cell (‖, ∥ or ||), one row per failed item,
    and publish no sampling date."""
    rows = mapped("samr_announcement.yaml", EXAMPLES / "samr_announcement_published.csv")
    evs = {e.payload.sample_no: e for e in events(rows)}
    w03, p09 = evs["DC23330100123456"], evs["DC23330100127777"]
    assert [(i.item_code, i.values, i.unit, i.standard_ref) for i in w03.payload.items] == [
        ("pseudomonas_aeruginosa", [45, 59, 8, 61, 10], "CFU/250mL", "标准值 n=5,c=0,m=0 CFU/250mL"),
        ("oxygen_consumption", [2.6], "mg/L", "标准值 ≤2.0 mg/L"),  # || for ‖
    ]
    assert [(i.item_code, i.values, i.unit, i.standard_ref) for i in p09.payload.items] == [
        ("preservative_ratio_sum", [1.35], "无量纲", "标准值 ≤1"),
        ("moulds", [260], "CFU/g", "标准值 ≤150 CFU/g"),  # ∥, with spaces
    ]
    # no 抽样日期: the production date stands in, and the event says so
    for e in (w03, p09):
        assert e.payload.sampled_on == e.payload.production_date
        assert "公告未公布抽样日期" in e.payload.remarks
    errors = {pos: reason for pos, kind, reason in rows if kind != "event"}
    assert list(errors) == ["samr_announcement_published.csv:6"] and "'7.2' names no unit" in errors["samr_announcement_published.csv:6"]
    # with a sampling date (and 判定依据) the file's own columns serve, and no note is added
    sep = [e for e in events(mapped("samr_announcement.yaml", EXAMPLES / "samr_announcement.csv")) if e.payload.sample_no == "DC23330100123456"]
    assert sep[0].payload.remarks is None and sep[0].payload.items[0].standard_ref == "GB 19298-2014"


def test_a_combined_cell_with_parts_missing_is_refused(tmp_path):
    mapping = load_mapping(MAPPINGS / "samr_announcement.yaml")
    text = (EXAMPLES / "samr_announcement_published.csv").read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([text[0].replace("‖", "||"), text[4].replace("霉菌 ∥ 260 CFU/g ∥ ≤150 CFU/g", "霉菌‖260 CFU/g")]) + "\n", encoding="utf-8")
    [(_, _, error)] = read_mapped(bad, mapping)  # the header's || is the same column
    assert isinstance(error, MappingError) and "has 2 part(s); expected 3 (不合格项目‖检验结果‖标准值)" in str(error)


def test_complaints():
    rows = mapped("complaints.yaml", EXAMPLES / "complaints.csv")
    evs = events(rows)
    received = [e for e in evs if e.event_type == "complaint.received"]
    assert [(e.enterprise_id, e.payload.channel, e.payload.category, e.payload.verified) for e in received] == [
        ("W07", "12315", "foreign_matter", True), ("W07", "online", "taste_odour", True),
        ("W07", "hotline", "taste_odour", False), ("P05", "12315", "spoilage", False),
    ]
    # a concluded row (核查结果 属实 / 不属实) is also its conclusion, right after it; a blank one is 核查中
    assert [(e.event_type, e.payload.complaint_id) for e in evs][:2] == [("complaint.received", "TS2023050212345"),
                                                                         ("complaint.resolved", "TS2023050212345")]
    assert [(e.payload.complaint_id, e.payload.verified) for e in evs if e.event_type == "complaint.resolved"] == [
        ("TS2023050212345", True), ("TS2023050612346", True), ("TS2023051112347", False)]
    assert received[2].occurred_at.isoformat() == "2023-05-11T02:40:00+00:00"  # 2023/05/11 10:40 local
    [(pos, kind, reason)] = [r for r in rows if r[1] != "event"]
    assert pos == "complaints.csv:6" and "包装破损" in reason


def test_a_12315_export_row_concluded_is_resolved_and_one_being_handled_is_no_error(tmp_path, rules):
    """The complaints desk's import: 不属实 came in as verified:false with no conclusion (核查中 / 办理中 for 57 days),
    属实 stayed 办理中 for ever, 核查中 / 办理中 / blank refused the row, 全国12315平台 became online, 价格 / 服务 had no
    category."""
    from processors.step import replay
    from qrisk.registers import complaint_rows
    from schemas.upcast import parse_event
    from tests.conftest import golden

    export = tmp_path / "c.csv"
    export.write_text(
        "投诉编号,被投诉企业,登记时间,来源渠道,问题类别,投诉内容,涉及产品,核查结果,办结时间,处理结果\n"
        "TS1,清源桶装水厂,2026-11-01 09:00,全国12315平台,价格,水价上涨未告知,桶装水,属实,2026-11-05 16:30,已责令企业明码标价\n"
        "TS2,清源桶装水厂,2026-11-01 09:00,12315,异物,水里有虫,桶装水,不属实,2026-11-03 10:00,\n"
        "TS3,清源桶装水厂,2026-11-01 09:00,12315,异物,水里有虫,桶装水,核查中,,\n"
        "TS4,清源桶装水厂,2026-11-01 09:00,12315,异物,水里有虫,桶装水,,,\n"
        "TS5,清源桶装水厂,2026-11-01 09:00,信件,异物,水里有虫,桶装水,是,,\n"
        "TS6,清源水厂,2026-11-01 09:00,12315,服务,送水慢,桶装水,办理中,,\n", encoding="utf-8")
    (tmp_path / "enterprises.example.csv").write_text("名称,企业编号\n清源桶装水厂,E-330110-001\n清源水厂,E-330110-001\n", encoding="utf-8")
    (tmp_path / "complaints.yaml").write_text((MAPPINGS / "complaints.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    rows = [(pos, kind, doc) for pos, kind, doc in _mapped_at(tmp_path / "complaints.yaml", export)]
    assert [r for r in rows if r[1] != "event"] == []
    evs = events(rows)
    assert [(e.event_type, e.payload.complaint_id) for e in evs] == [
        ("complaint.received", "TS1"), ("complaint.resolved", "TS1"), ("complaint.received", "TS2"), ("complaint.resolved", "TS2"),
        ("complaint.received", "TS3"), ("complaint.received", "TS4"), ("complaint.received", "TS5"), ("complaint.resolved", "TS5"),
        ("complaint.received", "TS6")]
    first = evs[0]
    assert (first.payload.channel, first.payload.category) == ("12315", "other") and evs[-1].payload.category == "other"
    assert evs[6].payload.channel == "letter"
    ts1 = evs[1]
    assert ts1.occurred_at.isoformat() == "2026-11-05T08:30:00+00:00" and ts1.payload.outcome == "已责令企业明码标价"
    assert evs[3].payload.outcome == "12315平台导出：核查结果不属实"
    assert evs[7].occurred_at == evs[6].occurred_at  # (no 办结时间: concluded when registered, as the row says)
    # the register: concluded rows 已办结, the others 核查中 / 办理中
    state, _ = replay([parse_event(golden("enterprise.registered")), *evs], rules)
    import datetime as dt

    register = {r["complaint_id"]: (r["verified_zh"], r["state_zh"])
                for r in complaint_rows([state.files["E-330110-001"].view()], dt.datetime(2026, 12, 28, tzinfo=dt.timezone.utc))}
    assert register == {"TS1": ("属实", "已办结"), "TS2": ("不属实", "已办结"), "TS3": ("核查中", "办理中"), "TS4": ("核查中", "办理中"),
                        "TS5": ("属实", "已办结"), "TS6": ("核查中", "办理中")}


def _mapped_at(mapping_path: Path, csv_file: Path):
    out = []
    for position, raw, doc in read_mapped(csv_file, load_mapping(mapping_path)):
        if isinstance(doc, MappingError):
            out.append((position, "error", str(doc)))
            continue
        result = validate_document(doc, None, raw)
        out.append((position, "rejected", result.reason) if isinstance(result, Rejection) else (position, "event", result))
    return out


def test_enforcement_decisions_with_their_penalties_in_one_cell():
    rows = mapped("enforcement.yaml", EXAMPLES / "enforcement.csv")
    evs = events(rows)
    assert [(e.enterprise_id, e.payload.decision_no) for e in evs] == [
        ("W03", "示范县市监处罚〔2023〕8号"), ("P05", "示范县市监处罚〔2023〕15号"), ("W07", "示范县市监处罚〔2023〕21号")]
    w03, p05, w07 = evs
    # "警告；没收违法所得1,260元；罚款5万元": the thousands separator read, 万 counted
    assert [(p.kind, p.amount_yuan, p.note) for p in w03.payload.penalties] == [
        ("warning", None, None), ("confiscation", 1260.0, "没收违法所得1260元"), ("fine", 50000.0, "罚款5万元")]
    assert w03.occurred_at.isoformat() == "2023-06-20T07:00:00+00:00" and w03.payload.inspection_ids == ["JC2023-0047"]
    # commas only split before a penalty; 并处 joins; 责令停产停业 is a suspension and keeps its term
    assert [(p.kind, p.amount_yuan, p.note) for p in p05.payload.penalties] == [
        ("confiscation", None, "没收违法生产的糕点320个"), ("fine", 20000.0, "罚款20000元"), ("suspension", None, "责令停产停业10日")]
    assert p05.payload.serious_dishonesty and p05.payload.sample_nos == ["DC23330110000733", "DC23330110000734"]
    assert p05.payload.decided_on.isoformat() == "2023-09-02"  # 2023年9月2日
    assert [p.kind for p in w07.payload.penalties] == ["licence_revoked"]
    [(pos, kind, reason)] = [r for r in rows if r[1] != "event"]
    assert pos == "enforcement.csv:5" and "处罚内容" in reason and "names no amount in digits" in reason  # 伍仟元 is not read


@pytest.mark.parametrize("cell, reason", [
    ("罚款", "names no amount"),
    ("罚款5000元、没收违法所得1200元罚款3000元", "names 2 amounts"),
])
def test_a_penalty_cell_that_cannot_be_read_is_refused_with_the_reason(cell, reason):
    from ingest.mapping import FieldSpec, convert

    mapping = load_mapping(MAPPINGS / "enforcement.yaml")
    with pytest.raises(MappingError, match=reason):
        convert(cell, FieldSpec(column="处罚内容", type="penalties"), mapping, "payload.penalties")


def test_interviews_with_their_follow_up_dates():
    rows = mapped("interviews.yaml", EXAMPLES / "interviews.csv")
    evs = events(rows)
    assert [(e.enterprise_id, e.payload.interview_id, e.payload.held_on.isoformat(), e.payload.follow_up_by and e.payload.follow_up_by.isoformat())
            for e in evs] == [("W03", "YT2023-003", "2023-05-10", "2023-06-10"), ("P05", "YT2023-009", "2023-08-15", None)]
    assert evs[0].payload.officials == ["刘副局长", "王建国"] and evs[1].payload.commitments == ""
    [(pos, kind, reason)] = [r for r in rows if r[1] != "event"]
    assert pos == "interviews.csv:4" and "2023-08-40" in reason


def test_ids_are_derived_from_the_key_so_a_reimport_is_idempotent():
    a = [e.event_id for e in events(mapped("complaints.yaml", EXAMPLES / "complaints.csv"))]
    b = [e.event_id for e in events(mapped("complaints.yaml", EXAMPLES / "complaints.csv"))]
    assert a == b and len(set(a)) == len(a)
    # another mapping name (namespace) gives other ids for the same keys
    other = load_mapping(MAPPINGS / "complaints.yaml").model_copy(update={"name": "another-system"})
    ids = [d["event_id"] for _, _, d in read_mapped(EXAMPLES / "complaints.csv", other) if isinstance(d, dict)]
    assert set(ids).isdisjoint(str(i) for i in a)


def test_values_and_units_in_one_cell(tmp_path):
    m = tmp_path / "lab.yaml"
    m.write_text("""
name: lab-export
event_type: sampling.result
event_id: {key: [编号]}
group_by: [编号]
fields:
  enterprise_id: {const: W03}
  occurred_at: {column: 报告日期, type: datetime, format: "%Y%m%d", time: "16:00"}
  payload.sample_no: {column: 编号}
  payload.task_source: {const: 县局}
  payload.lab: {const: 县检验中心}
  payload.product: {const: 饮用纯净水}
  payload.sampled_on: {column: 报告日期, type: date, format: "%Y%m%d"}
  payload.retest: {column: 复检, type: bool}
items:
  item_code: {column: 项目, map: {铜绿: pseudomonas_aeruginosa, 溴酸盐: bromate, 耗氧量: oxygen_consumption}}
  values: {column: 结果, type: values}
  unit: {column: 结果, type: unit_suffix}
  detection_limit: {column: 检出限, type: float, required: false}
  lab_verdict: {column: 判定, map: {合格: pass, 不合格: fail}}
""", encoding="utf-8")
    csv_file = tmp_path / "lab.csv"
    csv_file.write_text("编号,报告日期,复检,项目,结果,检出限,判定\n"
                        "S1,20250302,否,铜绿,0；0；0；0；0 CFU/250mL,,合格\n"
                        "S1,20250302,否,溴酸盐,未检出 mg/L,0.002,合格\n"
                        "S1,20250302,否,耗氧量,0.8mg/L,,合格\n"
                        "S2,20250303,是,耗氧量,abc,,合格\n"
                        "S3,20250303,否,耗氧量,1.2,,合格\n", encoding="utf-8")
    out = list(read_mapped(csv_file, load_mapping(m)))
    s1 = out[0][2]
    assert out[0][0] == "lab.csv:2,3,4"
    assert s1["occurred_at"] == "2025-03-02T16:00:00+08:00" and s1["payload"]["retest"] is False
    assert [(i["item_code"], i["values"], i["unit"]) for i in s1["payload"]["items"]] == [
        ("pseudomonas_aeruginosa", [0, 0, 0, 0, 0], "CFU/250mL"), ("bromate", ["ND"], "mg/L"), ("oxygen_consumption", [0.8], "mg/L")]
    assert s1["payload"]["items"][1]["detection_limit"] == 0.002
    assert isinstance(validate_document(s1, None, b""), object) and not isinstance(validate_document(s1, None, b""), Rejection)
    assert isinstance(out[1][2], MappingError) and "'abc' holds no result values" in str(out[1][2])
    assert isinstance(out[2][2], MappingError) and "names no unit" in str(out[2][2])


def test_a_bad_mapping_is_refused_with_the_reason(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nevent_type: inspection.completed\nevent_id: {key: [a]}\nfields:\n  enterprise_id: {column: a, colum: b}\n", encoding="utf-8")
    with pytest.raises(MappingError, match="colum"):
        load_mapping(bad)
    bad.write_text("name: x\nevent_type: inspection.completed\nevent_id: {key: [a]}\nfields:\n  enterprise_id: {column: a}\n", encoding="utf-8")
    with pytest.raises(MappingError, match="occurred_at"):
        load_mapping(bad)
    with pytest.raises(MappingError, match="needs column"):
        list(read_mapped(EXAMPLES / "complaints.csv", load_mapping(MAPPINGS / "inspections.yaml")))


def cli(*argv: str) -> int:
    from qrisk.cli import main

    return main(list(argv))


def test_import_mapped_dry_run_writes_valid_events(tmp_path, capsys):
    out = tmp_path / "mapped.jsonl"
    code = cli("import", "sampling", str(EXAMPLES / "samr_announcement.csv"), "--mapping", str(MAPPINGS / "samr_announcement.yaml"),
               "--events-out", str(out))
    captured = capsys.readouterr()
    assert code == 1  # some rows rejected
    assert json.loads(captured.out) == {"file": str(EXAMPLES / "samr_announcement.csv"), "mapped": 3, "rejected": 1, "events_out": str(out)}
    assert "samr_announcement.csv:5" in captured.err and "无名食品厂" in captured.err
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3
    # a kind that does not match the mapping is a usage error
    assert cli("import", "complaints", str(EXAMPLES / "samr_announcement.csv"), "--mapping", str(MAPPINGS / "samr_announcement.yaml"),
               "--events-out", str(out)) == 2
    err = capsys.readouterr().err
    assert "complaint.received" in err and err.index("映射文件") < err.index("maps to")  # Chinese first
    assert cli("import", "sampling", str(tmp_path / "absent.csv"), "--mapping", str(MAPPINGS / "samr_announcement.yaml"),
               "--events-out", str(out)) == 2
    assert "absent.csv：文件不存在" in capsys.readouterr().err
    # the bureau's own records: enforcement decisions and interviews
    for kind, mapping, n in (("enforcement", "enforcement.yaml", 3), ("interviews", "interviews.yaml", 2)):
        assert cli("import", kind, str(EXAMPLES / f"{kind}.csv"), "--mapping", str(MAPPINGS / mapping), "--events-out", str(out)) == 1
        assert json.loads(capsys.readouterr().out)["mapped"] == n


def test_import_mapped_into_a_data_directory_twice(tmp_path, capsys):
    data = tmp_path / "data"
    args = ("import", "inspections", str(EXAMPLES / "inspections.csv"), "--mapping", str(MAPPINGS / "inspections.yaml"), "--data-dir", str(data))
    assert cli(*args) == 1
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["accepted"] == 4 and first["rejected"] == 2 and first["duplicates"] == 0
    assert cli(*args) == 1
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert second["accepted"] == 0 and second["duplicates"] == 4  # the same ids: nothing new
    from qrisk.runtime import default_rules, open_embedded

    pipeline = open_embedded(data, default_rules())
    try:
        letters = pipeline.store.query("SELECT position, reason FROM dead_letters ORDER BY position", {})
        assert {r["position"] for r in letters} == {"inspections.csv:6", "inspections.csv:7"}
        assert any("待定" in r["reason"] for r in letters)
        assert pipeline.state.files["P09"].inspections[0].inspection_id == "JC2023-0051"
    finally:
        pipeline.close()
    # `qrisk risk` reads the same log (no registrations here: listed, not graded)
    assert cli("risk", "--data-dir", str(data), "--as-of", "2023-12-31", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["enterprise_id"] for r in rows) == ["P05", "P09", "W03"] and all(r["grade"] is None for r in rows)


# --------------------------------------------------------------------------- full-width text, and reasons in Chinese and English


@pytest.mark.parametrize("cell, values, unit", [
    ("２．６ mg/L", [2.6], "mg/L"),  # \d took ２ and left "．６ mg/L" as the unit
    ("２．６ｍｇ／Ｌ", [2.6], "mg/L"),
    ("４５；５９；８；６１；１０ ＣＦＵ／２５０ｍＬ", [45, 59, 8, 61, 10], "CFU/250mL"),
    ("ＮＤ mg/L", ["ND"], "mg/L"),
    ("未检出 µg/L", ["ND"], "μg/L"),  # NFKC: the micro sign is the Greek mu, which the catalogue reads alike
])
def test_a_result_typed_in_full_width_characters_reads_as_it_looks(cell, values, unit):
    from ingest.mapping import map_item
    from schemas.standards import load_catalogue

    item = map_item({"不合格项目": "耗氧量", "检验结果": cell}, load_mapping(MAPPINGS / "samr_announcement.yaml"))
    assert (item["values"], item["unit"]) == (values, unit)
    assert load_catalogue().units.resolve(item["unit"]) is not None


def test_every_unit_spelling_of_the_catalogue_still_resolves_after_the_cell_is_normalised():
    """Cells are NFKC-normalised before values and units are read (µ becomes μ, ｍ becomes m …)."""
    from ingest.mapping import map_item
    from schemas.standards import load_catalogue

    mapping = load_mapping(MAPPINGS / "samr_announcement.yaml")
    units = load_catalogue().units
    for unit in units.units:
        for spelling in (unit.unit, *unit.aliases):
            if spelling in ("/", "-", "—"):
                continue  # (无量纲 as some labs print it: the default split reads these as separators between values)
            item = map_item({"不合格项目": "耗氧量", "检验结果": f"1.5 {spelling}"}, mapping)
            assert item["values"] == [1.5] and units.resolve(item["unit"]) is unit, (spelling, item["unit"])


@pytest.mark.parametrize("cell, values", [("未检出/25g", ["ND"]), ("0/25g", [0]), ("0/0/0/0/0 /25克", [0, 0, 0, 0, 0])])
def test_a_result_per_test_portion_keeps_its_portion_as_the_unit(cell, values):
    """沙门氏菌 "未检出/25g" read as the values ND and 25 in the unit "g" before."""
    from ingest.mapping import map_item

    item = map_item({"不合格项目": "沙门氏菌", "检验结果": cell}, load_mapping(MAPPINGS / "samr_announcement.yaml"))
    assert (item["item_code"], item["values"], item["unit"].replace("克", "g")) == ("salmonella", values, "/25g")


def test_a_cell_with_more_after_its_values_than_a_unit_is_refused_not_cut():
    from ingest.mapping import map_item

    with pytest.raises(MappingError) as caught:
        map_item({"不合格项目": "耗氧量", "检验结果": "2.6.1 mg/L"}, load_mapping(MAPPINGS / "samr_announcement.yaml"))
    error = caught.value.error()
    assert (error["field"], error["column"], error["type"]) == ("items.values", "检验结果", "mapping")
    assert "“.1 mg/L”既不是数值也不是单位" in error["reason_zh"] and "'.1 mg/L' after the values" in error["reason"]


def test_a_full_width_amount_is_read_whole():
    from ingest.mapping import FieldSpec, convert

    mapping = load_mapping(MAPPINGS / "enforcement.yaml")
    [fine] = convert("罚款５．５万元", FieldSpec(column="处罚内容", type="penalties"), mapping, "payload.penalties")
    assert (fine["kind"], fine["amount_yuan"], fine["note"]) == ("fine", 55000.0, "罚款５．５万元")


def test_a_row_that_does_not_map_says_why_in_chinese_first_and_names_field_and_column():
    rows = list(read_mapped(EXAMPLES / "inspections.csv", load_mapping(MAPPINGS / "inspections.yaml")))
    errors = {position: doc for position, _, doc in rows if isinstance(doc, MappingError)}
    date, result = errors["inspections.csv:6"], errors["inspections.csv:7"]
    assert (date.field, date.column) == ("occurred_at", "检查日期") and (result.field, result.column) == ("payload.result", "检查结论")
    assert str(result).startswith("payload.result：列“检查结论”的值“待定”不在映射的对照表中") and " / payload.result: '待定'" in str(result)
    assert "“2023-13-01”既不是 ISO 8601 日期时间" in date.zh and "'2023-13-01' is neither ISO 8601" in date.en
    assert date.error() == {"field": "occurred_at", "column": "检查日期", "type": "mapping", "reason": date.en, "reason_zh": date.zh}


def test_a_mapped_import_reports_its_warnings_and_its_refusals_in_chinese_first(tmp_path, capsys):
    args = ("import", "sampling", str(EXAMPLES / "samr_announcement.csv"), "--mapping", str(MAPPINGS / "samr_announcement.yaml"),
            "--data-dir", str(tmp_path / "data"))
    assert cli(*args) == 1  # a row refused; the warnings alone would leave the exit code 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["warnings_by_type"] == {"enterprise_unregistered": 3}  # nobody registered W03, P05, P09 yet
    assert [w["position"] for w in summary["warning_details"]] == ["samr_announcement.csv:2,3", "samr_announcement.csv:4", "samr_announcement.csv:6"]
    assert "samr_announcement.csv:5: enterprise_id：列“标称生产企业名称”的值“无名食品厂”不在映射的对照表中" in captured.err
    assert " / enterprise_id: '无名食品厂' (column 标称生产企业名称)" in captured.err
