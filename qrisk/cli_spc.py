"""``qrisk spc``: an offline control chart of a CSV file.

    qrisk spc CHART FILE.csv [--json] [--value COL] [--size COL|N] [--group COL]
              [--phase1 A-B] [--exclude I,J] [--target T] [--sigma S]
              [--lambda λ] [--L L] [--k K] [--h H] [--rules we|nelson|1,2,4]
              [--png FILE] [--usl LIMIT] [--revise] [--steady-state]
              [--textbook] [--category C] [--detection-limit DL] [--log10]

The i, p and c charts are by default the fold's own (``params.mode: fold``): an analyst re-running
a 质量波动 signal must get the limits the fold used.  The individuals chart is the fold's monitor
under the default policy (an 8-result baseline, limits widened for the estimate, the baseline's
outliers left out, rule 1 and the EWMA, the reporting step inferred from the values, "ND" or "<DL"
cells as non-detects, counts on log10 with ``--log10``); the p chart has exact binomial limits
against the category's reference failure rate and signals from the second failure; the c chart
exact Poisson limits at the policy's complaints a month.  ``--textbook`` draws the textbook chart
instead (3σ limits from the data, rules 1, 2, 4), as do the other chart kinds always.

JSON output: ``{"chart", "center", "lcl", "ucl", "sigma", "points": [{"index",
"value", "center", "lcl", "ucl", "phase", "signals"}], "params", "warnings"}``.
Indexes are 1-based (rows, or subgroups for x̄/R/S); ``value`` is the plotted
statistic; the top-level limits are the steady-state ones (EWMA asymptotic,
p/u at the mean baseline sample size) while per-point limits may vary.  For
CUSUM, ``value`` is C+ and ``lower`` is −C− (plotted below zero), with
ucl = h·σ and lcl = −h·σ, so both sums compare against the same pair of lines.

Errors in the input (a missing column, a cell that is not a number, an
option that does not fit the chart) print a message naming it and exit 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from processors.spc import CHART_KINDS, CHART_NAMES, SpcDataError, parse_rules, run_chart
from processors.spc.capability import cpk_upper
from qrisk.cli_text import width

# the charts the fold runs, and so draws by default as it does (module doc)
_FOLD_KINDS = ("i", "p", "c")
_TEXTBOOK_ONLY = ("--phase1", "--exclude", "--revise", "--steady-state", "--lambda", "--L", "--k", "--h")

EXIT_USAGE = 2

_VALUE_KINDS = ("i", "mr", "ewma", "cusum")
_SUBGROUP_KINDS = ("xbar", "r", "s")


class CliError(Exception):
    """A usage or input problem; the message is shown as is."""


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "spc",
        help="控制图分析 / control chart of a CSV file",
        description="控制图分析(离线) / Offline control chart of a CSV file. "
                    "Rules: 1 beyond 3σ; 2 two of three beyond 2σ; 3 four of five beyond 1σ; "
                    "4 eight on one side; 5 six trending; 6 fourteen alternating; "
                    "7 fifteen within 1σ; 8 eight beyond 1σ (1-4 Western Electric, 5-8 Nelson).",
    )
    p.add_argument("chart", choices=CHART_KINDS, help="chart kind")
    p.add_argument("file", help="CSV file (UTF-8, a BOM is fine) with a header row")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--value", metavar="COL",
                   help="column of measured values (or of counts for p/np/c/u); "
                        "default: the column named 'value', or the only column")
    p.add_argument("--size", metavar="COL|N",
                   help="p/np/u: column of sample sizes (areas for u) or a constant N; "
                        "xbar/r/s: N consecutive rows per subgroup")
    p.add_argument("--group", metavar="COL",
                   help="xbar/r/s: rows sharing this column's value form one subgroup "
                        "(in order of first appearance)")
    p.add_argument("--phase1", metavar="A-B",
                   help="1-based points (rows, or subgroups) that estimate the limits; default all")
    p.add_argument("--exclude", metavar="I,J",
                   help="1-based points left out of the estimate (known causes)")
    p.add_argument("--target", type=float,
                   help="known centre: process mean; p0 for p/np; c0 for c; u0 for u")
    p.add_argument("--sigma", type=float, help="known process σ (i, mr, xbar, r, s, ewma, cusum)")
    p.add_argument("--lambda", dest="lam", type=float, help="EWMA weight λ (default 0.2)")
    p.add_argument("--L", dest="L", type=float, help="EWMA limit width in σ (default 3)")
    p.add_argument("--k", type=float, help="CUSUM reference value in σ (default 0.5)")
    p.add_argument("--h", type=float, help="CUSUM decision interval in σ (default 5)")
    p.add_argument("--rules", help="run rules: we (1-4), nelson (1-8) or a list like 1,2,4 "
                                   "(default 1,2,4)")
    p.add_argument("--png", metavar="FILE", help="also draw the chart to a PNG file")
    p.add_argument("--usl", type=float,
                   help="legal maximum: drawn on the PNG; Cpk reported for measured values")
    p.add_argument("--revise", action="store_true",
                   help="re-estimate leaving out phase-I points beyond the limits")
    p.add_argument("--steady-state", dest="steady_state", action="store_true",
                   help="EWMA: signal on the steady-state limits instead of the exact ones")
    p.add_argument("--textbook", action="store_true",
                   help="i/p/c: the textbook chart (3σ limits estimated from the data) instead of the fold's")
    p.add_argument("--category", default="packaged_water",
                   help="p (fold): the category whose reference failure rate is the centre (default packaged_water)")
    p.add_argument("--detection-limit", dest="detection_limit", type=float, metavar="DL",
                   help="i (fold): the detection limit of cells reading ND (charted at DL/2, as the fold does)")
    p.add_argument("--log10", action="store_true",
                   help="i (fold): chart microbial counts on log10, as the fold does for CFU/MPN items")
    p.set_defaults(func=run)
    return p


# ---------------------------------------------------------------- input

def _read_csv(path: str) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v if isinstance(v, str) else "")
                     for k, v in row.items()} for row in reader]
    except FileNotFoundError:
        raise CliError(f"file {path} not found") from None
    except UnicodeDecodeError as e:
        raise CliError(f"file {path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except (OSError, csv.Error) as e:
        raise CliError(f"cannot read {path}: {e}") from None
    if not header:
        raise CliError(f"file {path} has no header row")
    if not rows:
        raise CliError(f"file {path} has no data rows")
    return header, rows


def _column(header: list[str], name: str | None, option: str, path: str) -> str:
    if name is None:
        if "value" in header:
            return "value"
        if len(header) == 1:
            return header[0]
        raise CliError(f"{option} is required: {path} has columns {', '.join(header)}")
    key = name.strip()
    if key not in header:
        raise CliError(f"{option}: column '{name}' not found in {path} "
                       f"(columns: {', '.join(header)})")
    return key


def _number(row: dict[str, str], col: str, rowno: int) -> float:
    cell = (row.get(col) or "").strip()
    if not cell:
        raise CliError(f"row {rowno}, column '{col}': empty cell")
    try:
        v = float(cell)
    except ValueError:
        raise CliError(f"row {rowno}, column '{col}': '{cell}' is not a number") from None
    if not math.isfinite(v):
        raise CliError(f"row {rowno}, column '{col}': '{cell}' is not a finite number")
    return v


def _phase1(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 1 or int(m.group(1)) > int(m.group(2)):
        raise CliError(f"--phase1 must be A-B with 1 <= A <= B (e.g. 1-20), got '{text}'")
    return int(m.group(1)), int(m.group(2))


def _exclude(text: str | None) -> list[int]:
    if not text:
        return []
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise CliError(f"--exclude takes 1-based point numbers like 3,7; got '{part}'")
        out.append(int(part))
    return out


def _check_options(args: argparse.Namespace) -> None:
    kind = args.chart
    only = {
        "--lambda": (args.lam, ("ewma",)), "--L": (args.L, ("ewma",)),
        "--steady-state": (args.steady_state or None, ("ewma",)),
        "--k": (args.k, ("cusum",)), "--h": (args.h, ("cusum",)),
        "--group": (args.group, _SUBGROUP_KINDS),
        "--sigma": (args.sigma, _VALUE_KINDS + _SUBGROUP_KINDS),
        "--usl": (args.usl, ("i", "xbar", "ewma", "cusum")),
    }
    for opt, (val, kinds) in only.items():
        if val is not None and kind not in kinds:
            raise CliError(f"{opt} does not apply to the {kind} chart "
                           f"(only to {', '.join(kinds)})")
    if args.size is not None and kind in ("i", "mr", "ewma", "cusum", "c"):
        raise CliError(f"--size does not apply to the {kind} chart"
                       + (" (use the u chart for varying areas)" if kind == "c" else ""))
    if args.sigma is not None and not args.sigma > 0:
        raise CliError(f"--sigma must be positive, got {args.sigma}")
    if args.lam is not None and not 0 < args.lam <= 1:
        raise CliError(f"--lambda must be in (0, 1], got {args.lam}")
    for opt, val in (("--L", args.L), ("--h", args.h)):
        if val is not None and not val > 0:
            raise CliError(f"{opt} must be positive, got {val}")
    if args.k is not None and args.k < 0:
        raise CliError(f"--k must be >= 0, got {args.k}")
    if kind in ("p", "np") and args.target is not None and not 0 <= args.target <= 1:
        raise CliError(f"--target for the {kind} chart is a fraction p0 in [0, 1], "
                       f"got {args.target}")


def _int_size(text: str) -> int | None:
    t = text.strip()
    return int(t) if t.isdigit() else None


def _chart_input(args: argparse.Namespace, header: list[str], rows: list[dict[str, str]]
                 ) -> dict[str, Any]:
    kind, path = args.chart, args.file
    col = _column(header, args.value, "--value", path)
    vals = [_number(r, col, i) for i, r in enumerate(rows, 1)]
    if kind in _VALUE_KINDS:
        return {"values": vals}
    if kind in _SUBGROUP_KINDS:
        if args.group is not None:
            gcol = _column(header, args.group, "--group", path)
            groups: dict[str, list[float]] = {}
            for r, v in zip(rows, vals):
                groups.setdefault((r.get(gcol) or "").strip(), []).append(v)
            return {"subgroups": list(groups.values()), "labels": list(groups)}
        if args.size is not None:
            n = _int_size(args.size)
            if n is None or n < 2:
                raise CliError(f"--size for the {kind} chart is the number of rows per "
                               f"subgroup (>= 2), got '{args.size}'")
            return {"subgroups": [vals[i:i + n] for i in range(0, len(vals), n)]}
        raise CliError(f"the {kind} chart needs subgroups: give --group COL or --size N")
    # attribute charts
    if kind == "c":
        return {"counts": vals}
    if args.size is None:
        raise CliError(f"the {kind} chart needs --size (a column or a constant sample size)")
    size_text = args.size.strip()
    try:
        const = float(size_text)
    except ValueError:
        const = None
    if const is not None and size_text not in header:
        if not const > 0:
            raise CliError(f"--size must be positive, got '{args.size}'")
        sizes = [const] * len(vals)
    else:
        scol = _column(header, args.size, "--size", path)
        sizes = [_number(r, scol, i) for i, r in enumerate(rows, 1)]
    return {"counts": vals, "sizes": sizes}


# ---------------------------------------------------------------- output

def _clean(obj: Any) -> Any:
    """JSON has no Infinity/NaN: those become null."""
    if isinstance(obj, float):
        return obj + 0.0 if math.isfinite(obj) else None   # (−0.0 + 0.0 is 0.0: no "-0.0" in the JSON)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        # (a lower CUSUM of 0 is −0.0, printed "-0")
        return f"{v + 0.0:.6g}"
    return str(v)


def format_table(result: dict[str, Any], source: str) -> str:
    kind = result["chart"]
    zh, en = CHART_NAMES[kind]
    lines = [f"{zh} / {en} — {source} ({len(result['points'])} points)",
             f"中心线 CL = {_fmt(result['center'])}   下限 LCL = {_fmt(result['lcl'])}   "
             f"上限 UCL = {_fmt(result['ucl'])}   σ = {_fmt(result['sigma'])}"]
    params = result.get("params", {})
    if params.get("phase1") or params.get("excluded"):
        p1 = params.get("phase1")
        lines.append("阶段I Phase I: points "
                     + (f"{p1[0]}-{p1[1]}" if p1 else "all")
                     + (f"; excluded {', '.join(map(str, params['excluded']))}"
                        if params.get("excluded") else ""))
    if "spec" in result:
        sp = result["spec"]
        lines.append(f"标准限值 USL = {_fmt(sp['usl'])}   Cpk = {_fmt(sp['cpk'])}")
    for w in result.get("warnings", []):
        lines.append(f"注意 warning: {w}")
    lines.append("")

    cols = ["序号 No.", "阶段 Phase", "统计量 Value"]
    extra = []
    if kind == "ewma":
        extra = [("x", "观测值 x")]
    elif kind == "cusum":
        extra = [("x", "观测值 x"), ("lower", "下侧 -C-")]
    elif any("n" in p for p in result["points"]):
        extra = [("n", "样本量 n")]
    cols += [h for _, h in extra] + ["下限 LCL", "中心 CL", "上限 UCL", "信号 Signals"]
    table = []
    for p in result["points"]:
        table.append([str(p["index"]), p["phase"], _fmt(p["value"])]
                     + [_fmt(p.get(k)) for k, _ in extra]
                     + [_fmt(p["lcl"]), _fmt(p["center"]), _fmt(p["ucl"]),
                        ", ".join(s["rule"] for s in p["signals"])])
    widths = [max(width(r[i]) for r in [cols] + table) for i in range(len(cols))]

    def row(cells: list[str]) -> str:
        out = []
        for i, c in enumerate(cells):
            pad = " " * (widths[i] - width(c))
            out.append(c + pad if i in (1, len(cells) - 1) else pad + c)
        return "  ".join(out).rstrip()

    lines.append(row(cols))
    lines.extend(row(r) for r in table)
    sigs = [s for p in result["points"] for s in p["signals"]]
    lines.append("")
    if sigs:
        lines.append(f"信号 Signals ({len(sigs)}):")
        for s in sigs:
            lines.append(f"  #{s['index']} {s['rule']}: {s['text_zh']} / {s['text_en']}")
    else:
        lines.append("无信号 No signals.")
    return "\n".join(lines)


# ---------------------------------------------------------------- run

def _fold_options(args: argparse.Namespace) -> None:
    given = {"--phase1": args.phase1, "--exclude": args.exclude, "--revise": args.revise or None,
             "--steady-state": args.steady_state or None, "--lambda": args.lam, "--L": args.L, "--k": args.k, "--h": args.h}
    for opt in _TEXTBOOK_ONLY:
        if given[opt] is not None:
            raise CliError(f"{opt} applies to the textbook chart: add --textbook (the {args.chart} chart is the fold's by default)")
    if args.chart != "i":
        for opt, val in (("--detection-limit", args.detection_limit), ("--log10", args.log10 or None)):
            if val is not None:
                raise CliError(f"{opt} applies to the i chart only")
    if args.log10 and args.usl is not None:
        raise CliError("--usl and --log10 together: the fold runs no checks against a legal maximum on a log10 chart")
    if args.detection_limit is not None and not args.detection_limit > 0:
        raise CliError(f"--detection-limit must be positive, got {args.detection_limit}")


def _fold_cell(row: dict[str, str], col: str, rowno: int, dl: float | None) -> tuple[float, float | None]:
    """(value, bound): a number, or a non-detect (ND, 未检出, <DL) at half its detection limit below that limit."""
    cell = (row.get(col) or "").strip()
    if cell.upper() in ("ND", "N.D.") or cell == "未检出":
        if dl is None:
            raise CliError(f"row {rowno}, column '{col}': '{cell}' is a non-detect: give --detection-limit")
        return dl / 2, dl
    if cell.startswith("<"):
        bound = _number({col: cell[1:]}, col, rowno)
        return bound / 2, bound
    return _number(row, col, rowno), None


def _nonneg_limits(limits: dict[str, Any] | None) -> dict[str, Any]:
    """The fold's limits as its evidence gives them: a result is never negative, so no lower limit is below 0
    (``processors.fluctuation._nonneg``); printed otherwise, −0.12 mg/L reads as a bound a result could cross."""
    from processors.fluctuation import _nonneg

    out = dict(limits or {})
    for k in ("lcl", "ewma_lcl"):
        if isinstance(out.get(k), float):
            out[k] = _nonneg(out[k])
    return out


def _fold_chart(args: argparse.Namespace, header: list[str], rows: list[dict[str, str]]) -> dict[str, Any]:
    """The i, p or c chart as the fold runs it under the default policy (module doc)."""
    import dataclasses

    from processors.fluctuation import (_CHART_RULES, _measurable, _nonneg, binomial_at_least, c_limits, monitor_config,
                                        p_count_limit, poisson_at_least)
    from processors.spc import FluctuationMonitor
    from processors.spc.signals import SpcSignal
    from schemas.policy import Policy

    policy = Policy().spc
    kind, path = args.chart, args.file
    col = _column(header, args.value, "--value", path)
    points: list[dict[str, Any]] = []
    if kind == "i":
        cells = [_fold_cell(r, col, i, args.detection_limit) for i, r in enumerate(rows, 1)]
        config = monitor_config(policy, args.usl, args.log10)
        if args.rules is not None:
            config = dataclasses.replace(config, rules=parse_rules(args.rules))
        if args.target is not None or args.sigma is not None:
            known = args.target is not None and args.sigma is not None
            config = dataclasses.replace(config, target=args.target, sigma=args.sigma, baseline=0 if known else config.baseline)
        monitor = FluctuationMonitor(config)
        upper_only = args.usl is not None or args.log10   # less is better under a legal maximum, and for counts
        nd_baseline, censored, dl = 0, False, args.detection_limit
        for i, (v, below) in enumerate(cells, 1):
            phase = monitor.phase
            charted = v
            if args.log10 and v <= 0.0:
                charted, below = 0.5, 1.0   # a count of 0: fewer than one colony
            if below is not None:
                dl = below
                nd_baseline += phase == "I"
            try:
                found = monitor.update(charted, below=below)
            except ValueError as e:
                raise CliError(f"row {i}, column '{col}': {e}") from None
            if phase == "I" and monitor.phase == "II":
                censored = nd_baseline > policy.nd_share_max * monitor.count
            if upper_only:
                found = [sg for sg in found if sg.side != "lower" and sg.rule != "cusum_lower"
                         and not (sg.rule == "rule5" and sg.text_en.endswith("decreasing"))]
            found = _measurable(found, monitor, censored, dl)
            lim = _nonneg_limits(monitor.limits)
            points.append({"index": i, "value": v, "center": lim.get("center"), "lcl": lim.get("lcl"), "ucl": lim.get("ucl"),
                           "phase": phase, "signals": []})
            for sg in found:
                d = sg.to_dict()
                if d["lcl"] is not None and d["chart"] in _CHART_RULES:
                    d["lcl"] = _nonneg(d["lcl"])
                points[sg.index - 1]["signals"].append(d)
        lim = _nonneg_limits(monitor.limits)
        out: dict[str, Any] = {"chart": "i", "center": lim.get("center"), "lcl": lim.get("lcl"), "ucl": lim.get("ucl"),
                               "sigma": lim.get("sigma"), "points": points,
                               "params": {"mode": "fold", "baseline": config.baseline, "rules": list(config.rules),
                                          "ewma": config.detect_ewma, "cusum": config.detect_cusum,
                                          "estimated_limits": config.estimated_limits, "limit_factor": lim.get("limit_factor"),
                                          "resolution": lim.get("resolution"), "scale": lim.get("scale", "linear")},
                               "warnings": []}
        if not lim:
            out["warnings"].append(f"fewer than {config.baseline} results: the baseline is still being collected, no limits")
        if censored:
            out["warnings"].append("the baseline is mostly not detected: the fold raises no control-chart signals on such a series")
        if args.usl is not None and lim:
            out["spec"] = {"usl": args.usl, "mean": lim.get("center"), "cpk": lim.get("cpk"), "cpk_points": lim.get("cpk_points")}
        return out
    vals = [_number(r, col, i) for i, r in enumerate(rows, 1)]
    if kind == "c":
        c0 = args.target if args.target is not None else policy.complaints_per_month
        lcl, ucl = c_limits(c0)
        for i, v in enumerate(vals, 1):
            sigs = []
            if v > ucl:
                chance = poisson_at_least(int(v), c0)
                sigs.append({**SpcSignal.make("rule1", "c", i, v, center=c0, lcl=lcl, ucl=ucl, side="upper",
                                              detail={"p_at_least": chance}).to_dict(),
                             "text_zh": f"{v:g} 件，超出控制上限 {ucl:g} 件（泊松分布精确限，预期 {c0:g}；P(≥{v:g}) = {chance:.2g}）",
                             "text_en": f"{v:g} above the exact Poisson upper limit {ucl:g} (expected {c0:g}; P(≥{v:g}) = {chance:.2g})"})
            points.append({"index": i, "value": v, "center": c0, "lcl": lcl, "ucl": ucl, "phase": "II", "signals": sigs})
        return {"chart": "c", "center": c0, "lcl": lcl, "ucl": ucl, "sigma": None, "points": points,
                "params": {"mode": "fold", "c0": c0, "limits": "exact Poisson"}, "warnings": []}
    data = _chart_input(args, header, rows)
    p0 = args.target if args.target is not None else policy.reference_failure(args.category)
    for i, (failed, n) in enumerate(zip(data["counts"], data["sizes"]), 1):
        if n < 1 or failed > n or failed != int(failed) or n != int(n):
            raise CliError(f"row {i}: the p chart takes whole failures out of a whole sample size, got {failed:g} of {n:g}")
        limit = p_count_limit(p0, int(n))
        sigs = []
        if failed >= 2 and failed > limit:
            chance = binomial_at_least(int(failed), int(n), p0)
            sigs.append({**SpcSignal.make("rule1", "p", i, failed / n, center=p0, lcl=0.0, ucl=limit / n, side="upper",
                                          detail={"p_at_least": chance}).to_dict(),
                         "text_zh": (f"{n:g} 批中不合格 {failed:g} 批，超出控制上限 {limit} 批"
                                     f"（参考不合格率 {p0:.2%} 的二项分布精确限；P(≥{failed:g}) = {chance:.2g}）"),
                         "text_en": (f"{failed:g} of {n:g} failed, above the exact binomial upper limit of {limit} "
                                     f"(reference {p0:.2%}; P(≥{failed:g}) = {chance:.2g})")})
        points.append({"index": i, "value": failed / n, "n": int(n), "center": p0, "lcl": 0.0, "ucl": limit / n,
                       "phase": "II", "signals": sigs})
    sizes = data["sizes"]
    n_mean = max(1, round(sum(sizes) / len(sizes)))
    return {"chart": "p", "center": p0, "lcl": 0.0, "ucl": p_count_limit(p0, n_mean) / n_mean, "sigma": None, "points": points,
            "params": {"mode": "fold", "p0": p0, "category": args.category if args.target is None else None,
                       "limits": "exact binomial, from the second failure"}, "warnings": []}


def run(args: argparse.Namespace) -> int:
    try:
        _check_options(args)
        try:
            rules = parse_rules(args.rules)
        except ValueError as e:
            raise CliError(f"--rules: {e}") from None
        if args.chart in _FOLD_KINDS and not args.textbook:
            _fold_options(args)
            header, rows = _read_csv(args.file)
            return _print(_fold_chart(args, header, rows), args)
        header, rows = _read_csv(args.file)
        data = _chart_input(args, header, rows)
        labels = data.pop("labels", None)
        kw: dict[str, Any] = dict(
            phase1=_phase1(args.phase1), exclude=_exclude(args.exclude),
            target=args.target, sigma=args.sigma, rules=rules, revise=args.revise,
            ewma_steady_state=args.steady_state)
        for name, val in (("lam", args.lam), ("L", args.L), ("k", args.k), ("h", args.h)):
            if val is not None:
                kw[name] = val
        result = run_chart(args.chart, **data, **kw)
    except (CliError, SpcDataError) as e:
        print(f"qrisk spc: error: {e}", file=sys.stderr)
        return EXIT_USAGE

    out = result.to_dict()
    out["params"]["mode"] = "textbook"
    if labels is not None:
        for p, lab in zip(out["points"], labels):
            p["group"] = lab
    if args.usl is not None:
        mean = result.center if args.chart in ("i", "xbar") else result.params["target"]
        out["spec"] = {"usl": args.usl, "mean": mean,
                       "cpk": cpk_upper(mean, result.sigma, args.usl)}
    return _print(out, args)


def _print(out: dict[str, Any], args: argparse.Namespace) -> int:
    if args.png:
        from qrisk.spc_plot import render_chart_png
        zh, en = CHART_NAMES[args.chart]
        spec = args.usl if args.chart in ("i", "xbar", "ewma") else None
        try:
            render_chart_png(out, args.png, f"{zh} {en} — {Path(args.file).name}", spec)
        except OSError as e:
            print(f"qrisk spc: error: cannot write --png {args.png}: {e}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(_clean(out), ensure_ascii=False, indent=2))
    else:
        print(format_table(_clean(out), Path(args.file).name))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry for trying the command before it is wired into ``qrisk``."""
    parser = argparse.ArgumentParser(prog="qrisk")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
