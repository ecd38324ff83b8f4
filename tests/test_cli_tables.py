"""`qrisk risk`, `qrisk campaign` and `qrisk keys list` print tables with Chinese names: columns are
padded by the cells a terminal shows (a Chinese character takes two), not by characters, or every
column after a name moves right by as many cells as the name has characters."""
from __future__ import annotations

import json

import pytest

from qrisk.cli import main
from qrisk.cli_text import pad, table, width


def starts_at(line: str, cells: int, text: str) -> bool:
    """Whether ``text`` begins ``cells`` terminal cells into ``line``."""
    seen = 0
    for i, ch in enumerate(line):
        if seen == cells:
            return line[i:].startswith(text)
        if seen > cells:
            return False
        seen += width(ch)
    return seen == cells and text == ""


def check_columns(lines: list[str], header: list[str], rows: list[dict[str, str]]) -> None:
    """Every cell of a left-aligned column starts where its header does; of a right-aligned one (its key
    prefixed ">"), ends where its header ends."""
    head = lines[0]
    for key in rows[0]:
        name = key.lstrip(">")
        assert name in header
        start = width(head[:head.index(name)])
        for line, row in zip(lines[1:], rows, strict=True):
            cell = row[key]
            if not cell:  # (a line carries no trailing spaces)
                continue
            at = start + width(name) - width(cell) if key.startswith(">") else start
            assert starts_at(line, at, cell), f"{name} {cell!r} is not at cell {at}:\n{head}\n{line}"


def test_the_helper_pads_by_terminal_cells():
    assert width("W03 清泉水厂") == 12 and width("e\u0301") == 1 and width("—✓") == 2
    assert pad("清泉", 6) == "清泉  " and pad("清泉", 6, ">") == "  清泉" and pad("清泉", 7, "^") == " 清泉  "
    lines = table([["企业", "等级", "分"], ["W03 清泉水厂", "D", "74"], ["P14 乡味糕点坊", "—", "5"]], "<^>")
    assert lines == ["企业            等级  分",
                     "W03 清泉水厂     D    74",
                     "P14 乡味糕点坊   —     5"]


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    from ingest.files import write_jsonl
    from qrisk.demo import CountyGenerator

    path = tmp_path_factory.mktemp("county") / "events.jsonl"
    write_jsonl(CountyGenerator(seed=7).generate(), path)
    return path


def test_the_risk_table_lines_up(events, capsys):
    assert main(["risk", "--events", str(events), "--json"]) == 0
    ranking = json.loads(capsys.readouterr().out)
    assert main(["risk", "--events", str(events)]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert any(width(line) != len(line) for line in lines[1:])  # Chinese names there are
    rows = [{"企业": f"{r['enterprise_id']} ", ">风险分": f"{r['score']:g}", "下次检查期限": r["next_due"] or "—",
             "主要原因": "；".join(r["reasons"][:3])} for r in ranking]
    check_columns(lines, ["序号", "企业", "等级", "风险分", "下次检查期限", "主要原因"], rows)


def test_the_campaign_table_lines_up(events, capsys):
    assert main(["campaign", "--events", str(events), "--json"]) == 0
    progress = json.loads(capsys.readouterr().out)
    assert main(["campaign", "--events", str(events)]) == 0
    out = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(out) if line.startswith("企业 "))  # (after the summary's lines)
    end = next((i for i, line in enumerate(out) if line.startswith("滞后企业")), len(out))  # (before who is behind and why)
    lines = out[start:end]

    from processors.campaign import kpi_value_text

    def kpi(k):  # (the figure and whether it meets its target, side by side)
        return "—" if k["value"] is None else f"{kpi_value_text(k)} {k['met_zh']}"

    rows = [{"企业": f"{r['enterprise_id']} {r['name']}", "阶段": r["stage_zh"],
             ">一次通过率": kpi(r["kpis"]["exam_first_pass_rate"]), ">省级抽检合格率": kpi(r["kpis"]["sampling_pass_rate"])}
            for r in progress["rows"]]
    check_columns(lines, ["企业", "分档", "阶段", "三个一", "培训率", "一次通过率", "持证率", "省级抽检合格率"], rows)


def test_the_keys_table_lines_up(tmp_path, capsys):
    for name, towns in (("良渚", "良渚街道"), ("ops", None), ("余杭区市场监督管理局值班室", "余杭街道,良渚街道")):
        # (a county-wide key leaves --towns out: one naming no town is refused)
        scope = ["--towns", towns] if towns is not None else []
        assert main(["keys", "create", "--role", "supervisor", "--name", name, *scope, "--data-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["keys", "list", "--data-dir", str(tmp_path), "--json"]) == 0
    keys = json.loads(capsys.readouterr().out)
    assert main(["keys", "list", "--data-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [{"name": k["name"], "role": k["role"], "status": k["status"],
             "binding": ("towns " + ",".join(k["towns"])) if k["towns"] else ""} for k in keys]
    check_columns(lines, ["id", "name", "role", "status", "expires", "binding"], rows)
