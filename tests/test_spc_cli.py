"""`qrisk spc`: CSV in, chart JSON / table / PNG out, clear errors with exit 2."""

from __future__ import annotations

import argparse
import json

import pytest

from qrisk import cli_spc
from qrisk.spc_plot import render_chart_png

ORANGE_JUICE = [12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22,
                8, 10, 5, 13, 11, 20, 18, 24, 15, 9, 12, 7, 13, 9, 6]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def parser():
    p = argparse.ArgumentParser(prog="qrisk")
    cli_spc.register(p.add_subparsers(dest="command", required=True))
    return p


def run(argv, capsys):
    args = parser().parse_args(["spc", *argv])
    code = cli_spc.run(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def oj_csv(tmp_path):
    path = tmp_path / "橙汁.csv"
    rows = ["样本,不合格数,抽样数"] + [f"{i},{c},50" for i, c in enumerate(ORANGE_JUICE, 1)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8-sig")   # with a BOM
    return path


def test_p_chart_json(oj_csv, capsys):
    code, out, err = run(["p", str(oj_csv), "--value", "不合格数", "--size", "抽样数",
                          "--json", "--textbook"], capsys)
    assert code == 0, err
    res = json.loads(out)
    assert res["chart"] == "p"
    assert abs(res["center"] - 0.2313) < 5e-5 and abs(res["ucl"] - 0.4102) < 5e-5
    pts = res["points"]
    assert [p["index"] for p in pts] == list(range(1, 31))
    assert {p["phase"] for p in pts} == {"I"}
    beyond = [p["index"] for p in pts if any(s["rule"] == "rule1" for s in p["signals"])]
    assert beyond == [15, 23]
    assert set(pts[0]) >= {"index", "value", "lcl", "ucl", "signals", "phase"}
    sig = next(s for s in pts[14]["signals"] if s["rule"] == "rule1")
    assert sig["text_zh"] and sig["text_en"]


def test_constant_size_phase1_exclude_and_rules(oj_csv, capsys):
    code, out, _ = run(["p", str(oj_csv), "--value", "不合格数", "--size", "50", "--textbook",
                        "--phase1", "1-30", "--exclude", "15,23", "--rules", "1", "--json"],
                       capsys)
    assert code == 0
    res = json.loads(out)
    assert abs(res["center"] - 0.215) < 1e-12
    assert all(s["rule"] == "rule1" for p in res["points"] for s in p["signals"])
    code, out, _ = run(["p", str(oj_csv), "--value", "不合格数", "--size", "50",
                        "--phase1", "1-20", "--json", "--textbook"], capsys)
    phases = [p["phase"] for p in json.loads(out)["points"]]
    assert phases == ["I"] * 20 + ["II"] * 10


def test_table_output(oj_csv, capsys):
    code, out, _ = run(["p", str(oj_csv), "--value", "不合格数", "--size", "50", "--textbook"], capsys)
    assert code == 0
    assert "不合格品率图 / p chart" in out and "中心线 CL" in out
    assert "序号 No." in out and "信号 Signals" in out
    lines = out.splitlines()
    row15 = next(line for line in lines if line.strip().startswith("15 "))
    assert "rule1" in row15
    assert "#15 rule1: 1点超出上控制限（3σ）" in out


def test_xbar_groups_in_order_of_first_appearance(tmp_path, capsys):
    groups = {"B": [74.030, 74.002, 74.019, 73.992, 74.008],
              "A": [73.995, 73.992, 74.001, 74.011, 74.004],
              "C": [73.988, 74.024, 74.021, 74.005, 74.002]}
    rows = ["batch,diameter"]
    for j in range(5):                       # interleaved rows
        for key in ("B", "A", "C"):
            rows.append(f"{key},{groups[key][j]}")
    path = tmp_path / "rings.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, out, err = run(["xbar", str(path), "--value", "diameter", "--group", "batch",
                          "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    assert [p["group"] for p in res["points"]] == ["B", "A", "C"]
    assert res["points"][0]["value"] == pytest.approx(sum(groups["B"]) / 5)
    code, out2, _ = run(["r", str(path), "--value", "diameter", "--group", "batch",
                         "--json"], capsys)
    assert json.loads(out2)["points"][0]["value"] == pytest.approx(74.030 - 73.992)
    # consecutive rows of 5 (no group column) give other subgroups
    code, out3, _ = run(["s", str(path), "--value", "diameter", "--size", "5", "--json"], capsys)
    assert code == 0 and len(json.loads(out3)["points"]) == 3


def series_csv(tmp_path, values, name="series.csv"):
    path = tmp_path / name
    path.write_text("value\n" + "\n".join(str(v) for v in values) + "\n", encoding="utf-8")
    return path


MONTGOMERY_9_1 = [9.45, 7.99, 9.29, 11.66, 12.16, 10.18, 8.04, 11.46, 9.20, 10.34,
                  9.03, 11.47, 10.51, 9.40, 10.08, 9.37, 10.62, 10.31, 8.52, 10.84,
                  10.90, 9.33, 12.29, 11.50, 10.60, 11.08, 10.38, 11.62, 11.31, 10.52]


def test_cusum_json_shape(tmp_path, capsys):
    path = series_csv(tmp_path, MONTGOMERY_9_1)
    code, out, _ = run(["cusum", str(path), "--target", "10", "--sigma", "1",
                        "--k", "0.5", "--h", "5", "--json"], capsys)
    assert code == 0
    res = json.loads(out)
    assert (res["ucl"], res["lcl"]) == (5.0, -5.0)
    p29 = res["points"][28]
    assert abs(p29["value"] - 5.28) < 0.005 and p29["lower"] <= 0
    assert [p["index"] for p in res["points"] if p["signals"]] == [29, 30]
    code, out, _ = run(["cusum", str(path), "--target", "10", "--sigma", "1"], capsys)
    assert "下侧 -C-" in out and "cusum_upper" in out


def test_ewma_json_time_varying_limits(tmp_path, capsys):
    path = series_csv(tmp_path, MONTGOMERY_9_1)
    code, out, _ = run(["ewma", str(path), "--target", "10", "--sigma", "1",
                        "--lambda", "0.1", "--L", "2.7", "--json"], capsys)
    res = json.loads(out)
    assert res["points"][0]["ucl"] == pytest.approx(10.27)
    assert res["ucl"] == pytest.approx(10 + 2.7 * (0.1 / 1.9) ** 0.5)
    assert res["points"][0]["ucl"] < res["points"][-1]["ucl"] <= res["ucl"] + 1e-12


def test_individuals_with_usl_and_png(tmp_path, capsys):
    path = series_csv(tmp_path, MONTGOMERY_9_1)
    png = tmp_path / "out" / "i.png"
    code, out, err = run(["i", str(path), "--usl", "14", "--png", str(png), "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    assert res["spec"]["usl"] == 14 and res["spec"]["cpk"] > 0
    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000


@pytest.mark.parametrize("kind", ["cusum", "ewma", "mr", "u"])
def test_render_png_directly(tmp_path, kind):
    from processors.spc import run_chart
    if kind == "u":
        res = run_chart("u", counts=[3, 7, 2, 9], sizes=[1.5, 2.0, 0.5, 1.0])
    else:
        res = run_chart(kind, values=MONTGOMERY_9_1, phase1=(1, 20))
    path = render_chart_png(res.to_dict(), tmp_path / f"{kind}.png", f"测试 {kind}",
                            spec_limit=12.0 if kind == "ewma" else None)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000


@pytest.mark.parametrize("argv, needle", [
    (["p", "{f}", "--value", "nope", "--size", "50"], "column 'nope' not found"),
    (["p", "{f}", "--value", "不合格数"], "needs --size"),
    (["p", "{f}", "--value", "不合格数", "--size", "bad"], "--size: column 'bad'"),
    (["p", "{f}", "--value", "不合格数", "--size", "50", "--lambda", "0.2"], "--lambda"),
    (["p", "{f}", "--value", "不合格数", "--size", "50", "--sigma", "1"], "--sigma"),
    (["p", "{f}", "--value", "不合格数", "--size", "50", "--phase1", "5"], "--phase1"),
    (["p", "{f}", "--value", "不合格数", "--size", "50", "--phase1", "1-40", "--textbook"], "phase I range"),
    (["p", "{f}", "--value", "不合格数", "--size", "50", "--phase1", "1-10",
      "--exclude", "12", "--textbook"], "excluded point 12"),
    (["p", "{f}", "--value", "不合格数", "--size", "50", "--phase1", "1-10"], "add --textbook"),
    (["p", "{f}", "--value", "不合格数", "--size", "50", "--exclude", "x"], "--exclude"),
    (["p", "{f}", "--value", "不合格数", "--size", "50", "--rules", "1,9"], "--rules"),
    (["c", "{f}", "--value", "不合格数", "--size", "50"], "--size does not apply"),
    (["xbar", "{f}", "--value", "不合格数"], "--group COL or --size N"),
    (["i", "{f}"], "--value is required"),
    (["i", "{f}", "--value", "样本", "--k", "1"], "--k does not apply"),
    (["ewma", "{f}", "--value", "样本", "--lambda", "1.5"], "--lambda must be in"),
    (["p", "{f}", "--value", "不合格数", "--size", "50", "--target", "3"], "fraction p0"),
    (["i", "missing.csv", "--value", "x"], "not found"),
])
def test_errors_name_the_problem_and_exit_2(oj_csv, capsys, argv, needle):
    argv = [a.replace("{f}", str(oj_csv)) for a in argv]
    code, out, err = run(argv, capsys)
    assert code == 2
    assert needle in err
    assert err.startswith("qrisk spc: error:")
    assert out == ""


def test_bad_cell_is_named(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("value\n1.0\n2.0\nabc\n", encoding="utf-8")
    code, _, err = run(["i", str(path)], capsys)
    assert code == 2 and "row 3, column 'value': 'abc' is not a number" in err


def test_unknown_chart_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        parser().parse_args(["spc", "zz", "f.csv"])
    assert e.value.code == 2
