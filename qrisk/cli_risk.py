"""``qrisk risk``, ``qrisk backtest``, ``qrisk import-mapped``, ``qrisk credit-report``.

    qrisk risk [--as-of DATE] [--json] [--top N] (--events FILE.jsonl | --data-dir DIR) [--policy FILE]
    qrisk backtest --from DATE --to DATE [--json] [--top-k 5,10] [--step-days 30] [--horizon-days 90] (--events … | --data-dir …)
    qrisk import-mapped KIND FILE.csv --mapping MAP.yaml [--data-dir DIR | --events-out FILE.jsonl] [--batch N]
    qrisk credit-report ID [--format text|json|xlsx] [--out FILE] [--as-of DATE] (--events … | --data-dir …)

Events come from a JSONL file (``qrisk demo --events-out``, an export) or from a data
directory's event log (chdb: one process per directory — stop ``qrisk run`` first, or export).
``--as-of DATE`` folds only events that occurred on or before the end of that local day.
Usage and input errors print a message and exit 2.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, Iterator

EXIT_USAGE = 2


class CliError(Exception):
    """A usage or input problem; the message is shown as is."""


def register(subparsers: Any) -> None:
    from qrisk.settings import Settings

    settings = Settings()

    def source(p: argparse.ArgumentParser) -> None:
        p.add_argument("--events", type=Path, default=None, metavar="FILE.jsonl", help="read events from this JSONL file")
        p.add_argument("--data-dir", type=Path, default=None, help=f"read the event log of this data directory (default {settings.data_dir} when --events is not given)")
        p.add_argument("--policy", type=Path, default=settings.policy_file, help="policy YAML (default $QRISK_POLICY_FILE, else the built-in policy)")

    risk = subparsers.add_parser("risk", help="风险排名：每家企业的风险等级、下次检查期限与原因 / risk ranking as of a date")
    source(risk)
    risk.add_argument("--as-of", type=_date, default=None, metavar="DATE", help="YYYY-MM-DD, local day (default: the day of the latest event)")
    risk.add_argument("--json", action="store_true", help='print [{"enterprise_id", "score", "grade", "next_due", "reasons"}]')
    risk.add_argument("--top", type=_at_least_one, default=None, metavar="N", help="only the N riskiest")
    risk.set_defaults(func=cmd_risk)

    bt = subparsers.add_parser("backtest", help="回测：预警提前量、按风险顺序检查的效果、前k名准确率 / backtest grades and warnings on history")
    source(bt)
    bt.add_argument("--from", dest="start", type=_date, required=True, metavar="DATE", help="the window's first day (YYYY-MM-DD, local day)")
    bt.add_argument("--to", dest="end", type=_date, required=True, metavar="DATE", help="the window's last day (YYYY-MM-DD, local day, included)")
    bt.add_argument("--json", action="store_true", help="print the backtest as JSON")
    bt.add_argument("--top-k", type=_ks, default=(5, 10), metavar="K,K", help="sizes of the top of the ranking to score (default 5,10)")
    bt.add_argument("--step-days", type=_at_least_one, default=30, help="days between evaluation points (default 30)")
    bt.add_argument("--horizon-days", type=_at_least_one, default=90, help="a failure within this many days counts (default 90)")
    bt.set_defaults(func=cmd_backtest)

    cp = subparsers.add_parser("campaign", help="提档升级进度表：各企业所处阶段、“三个一”、考核指标 / the upgrade campaign's progress table")
    source(cp)
    cp.add_argument("--json", action="store_true", help='print {"summary", "rows"}')
    cp.add_argument("--xlsx", type=Path, default=None, metavar="FILE.xlsx", help="also write the table as an Excel sheet")
    cp.add_argument("--as-of", type=_date, default=None, metavar="DATE",
                    help="the table as recorded by the end of this local day (a month-end cut, reproducible: documents dated by "
                         "then but recorded later are not in it; the table's stage-date columns give a month by document date)")
    cp.set_defaults(func=cmd_campaign)

    cr = subparsers.add_parser("credit-file", help="诚信档案（文本 / JSON / Excel）/ one enterprise's credit file, readable")
    cr.add_argument("enterprise_id")
    source(cr)
    cr.add_argument("--format", choices=["text", "json", "xlsx"], default="text", help="default %(default)s")
    cr.add_argument("--out", type=Path, default=None, help="write to this file (required for xlsx; default stdout)")
    cr.add_argument("--as-of", type=_date, default=None, metavar="DATE", help="the file as it stood at the end of this local day")
    cr.add_argument("--charts", type=Path, default=None, metavar="DIR",
                    help="also draw the control chart (PNG) of every series that signalled into DIR")
    cr.set_defaults(func=cmd_credit_report)


# --------------------------------------------------------------------------- argument types


def _date(text: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None
    from qrisk.backtest import EARLIEST_CUT

    if day < EARLIEST_CUT:
        # (an event's instant lies in 1970–2105: a cut before it would fail inside the fold, not here)
        raise argparse.ArgumentTypeError(f"'{text}' is before {EARLIEST_CUT.isoformat()}: no event can be dated before it")
    return day


def _refuse_after_today(args: argparse.Namespace, rules: Any) -> None:
    """``--as-of`` after today is refused, as the API refuses ``?as_of=`` (422 query.as_of): a cut after today
    ticks deadlines that have not passed, and prints as overdue work that is not overdue."""
    day = getattr(args, "as_of", None)
    if day is None:
        return
    today = rules.local_date(dt.datetime.now(dt.timezone.utc))
    if day > today:
        raise CliError(f"--as-of {day.isoformat()} 晚于今天（{today.isoformat()}） / is after today")


def _at_least_one(text: str) -> int:
    from qrisk.cli import _at_least_one as count

    return count(text)


def _ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of numbers like 5,10") from None
    if not ks or any(k < 1 for k in ks):
        raise argparse.ArgumentTypeError("every k must be at least 1")
    return ks


def _guard(func):
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except CliError as exc:
            print(f"qrisk: {exc}", file=sys.stderr)
            return EXIT_USAGE
    run.__name__ = func.__name__
    run.__doc__ = func.__doc__
    return run


# --------------------------------------------------------------------------- reading events


def _rules(args: argparse.Namespace):
    from qrisk.runtime import default_rules

    try:
        return default_rules(getattr(args, "policy", None))
    except Exception as exc:  # noqa: BLE001 - a bad policy file is a usage error
        from qrisk.settings import PolicyError

        # (a PolicyError names the policy file itself: "policy: policy x.yaml: …" said it twice)
        raise CliError(str(exc) if isinstance(exc, PolicyError) else f"策略文件有误 / policy: {exc}") from exc


def load_events(args: argparse.Namespace, rules: Any) -> list:
    """The events, in log order, from ``--events FILE.jsonl`` or ``--data-dir DIR``."""
    if args.events is not None and args.data_dir is not None:
        raise CliError("give --events or --data-dir, not both")
    if args.events is not None:
        return _events_from_file(args.events)
    from qrisk.settings import Settings

    return _events_from_store(args.data_dir or Settings().data_dir, rules)


def _events_from_file(path: Path) -> list:
    from ingest.files import LineError, read_events
    from schemas.upcast import parse_event

    if not path.exists():
        raise CliError(f"{path}: no such file")
    events, bad = [], 0
    try:
        for position, _raw, doc in read_events(path):
            if isinstance(doc, LineError):
                bad += 1
                print(f"qrisk: {position}: {doc} (skipped)", file=sys.stderr)
                continue
            try:
                events.append(parse_event(doc))
            except Exception as exc:  # noqa: BLE001 - a bad line is reported, not fatal
                bad += 1
                print(f"qrisk: {position}: not a valid event ({str(exc).splitlines()[0]}) (skipped)", file=sys.stderr)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if bad:
        print(f"qrisk: {bad} line(s) of {path} skipped", file=sys.stderr)
    return events


def _events_from_store(data_dir: Path, rules: Any) -> list:
    from qrisk.runtime import open_embedded
    from schemas.upcast import parse_event

    from qrisk.runtime import DataDirError, check_data_dir
    from qrisk.store import StoreInUse

    if not Path(data_dir).exists():
        raise CliError(f"{data_dir}: no such data directory")
    try:
        check_data_dir(data_dir, create=False)  # chdb writes even to read: a read-only directory is not a lock
        pipeline = open_embedded(Path(data_dir), rules)
    except DataDirError as exc:
        raise CliError(str(exc)) from None
    except StoreInUse:
        raise CliError(f"数据目录 {data_dir} 正被运行中的 qrisk run 使用：先停止它，或用 --events 读取导出的事件 / "
                       f"{data_dir} is held by a running `qrisk run`: stop it, or use --events with the events as JSONL") from None
    except Exception as exc:  # noqa: BLE001 - a store that cannot be opened: one line
        raise CliError(f"无法打开数据目录 {data_dir} / cannot open {data_dir}: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from exc
    try:
        rows = pipeline.store.query("SELECT body FROM event_log ORDER BY seq", {})
        return [parse_event(json.loads(r["body"])) for r in rows]
    finally:
        pipeline.close()


def _latest_day(events: list, rules: Any) -> dt.date:
    if not events:
        raise CliError("no events")
    latest = max(e.occurred_at for e in events)
    return (latest + dt.timedelta(hours=rules.policy.utc_offset_hours)).date()


def _write(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- risk


@_guard
def cmd_risk(args: argparse.Namespace) -> int:
    """``qrisk risk --as-of DATE [--json]``: every enterprise, riskiest first, from events on or before DATE."""
    from qrisk.backtest import risk_ranking

    rules = _rules(args)
    _refuse_after_today(args, rules)
    events = load_events(args, rules)
    day = args.as_of or _latest_day(events, rules)
    rows = risk_ranking(events, day, rules)
    total = len(rows)
    # on stderr: --json's output stays a document; the bureau still reads why a listed enterprise is not D
    for note in (rules.policy.risk.credit.unregistered_warning({r["enterprise_id"] for r in rows}), rules.policy.risk.scale_note()):
        if note:
            print(f"qrisk: 警告：{note}", file=sys.stderr)
    if args.top is not None:
        rows = rows[: max(0, args.top)]
    if args.json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return 0
    from qrisk.cli_text import table

    names = _names(events)
    cells = [["序号", "企业", "等级", "风险分", "下次检查期限", "主要原因"]]
    for i, r in enumerate(rows, 1):
        who = f"{r['enterprise_id']} {names.get(r['enterprise_id'], '')}".rstrip()
        score = "—" if r["score"] is None else f"{r['score']:g}"
        cells.append([str(i), who, r["grade"] or "—", score, r["next_due"] or "—", "；".join(r["reasons"][:3])])
    # a cut ranking says so: "3 家企业" alone read as if the county had three
    shown = f"前 {len(rows)} 家（共 {total} 家）" if len(rows) < total else f"共 {total} 家企业"
    lines = [f"风险排名（截至 {day.isoformat()}，{shown}）", *table(cells, "><^><<")]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _names(events: list) -> dict[str, str]:
    names: dict[str, str] = {}
    for e in events:
        if e.event_type == "enterprise.registered" or (e.event_type == "enterprise.updated" and getattr(e.payload, "name", None)):
            names[e.enterprise_id] = e.payload.name
    return names


# --------------------------------------------------------------------------- backtest


@_guard
def cmd_backtest(args: argparse.Namespace) -> int:
    """``qrisk backtest --from DATE --to DATE [--json]``."""
    from qrisk.backtest import render_text, run_backtest

    rules = _rules(args)
    events = load_events(args, rules)
    try:
        report = run_backtest(events, rules, args.start, args.end, top_k=args.top_k, step_days=args.step_days, horizon_days=args.horizon_days)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(render_text(report))
    return 0


# --------------------------------------------------------------------------- import through a mapping


def iter_mapped(kind: str, file: Path, mapping_path: Path) -> Iterator[tuple[str, bytes, Any]]:
    """``(position, raw_bytes, document | MappingError)`` for ``qrisk import KIND FILE --mapping MAP``.

    Raises ``CliError`` when the mapping or the file cannot be used at all (a missing column,
    a kind that does not match the mapping's event type).  Feed the documents to the same
    validate-and-submit loop as JSONL lines; a ``MappingError`` goes to dead letters with
    ``str(error)`` as the reason.
    """
    from ingest.mapping import MappingError, event_type_for, load_mapping, read_mapped

    try:
        mapping = load_mapping(mapping_path)
        expected = event_type_for(kind)
        if mapping.event_type != expected:
            raise MappingError(f"{mapping_path} maps to {mapping.event_type}, but {kind} are {expected}",
                               f"映射文件 {mapping_path} 映射为 {mapping.event_type}，而 {kind} 应为 {expected}")
        if not file.exists():
            raise MappingError(f"{file}: no such file", f"{file}：文件不存在")
        rows = read_mapped(file, mapping)
        first = next(rows, None)  # a file-level problem (columns, encoding) raises here, before anything is opened
    except MappingError as exc:
        raise CliError(str(exc)) from exc

    def chain() -> Iterator[tuple[str, bytes, Any]]:
        if first is None:
            return
        yield first
        try:
            yield from rows
        except MappingError as exc:  # an encoding error further down the file
            raise CliError(str(exc)) from exc

    return chain()


def mapped_header(file: Path, mapping_path: Path) -> tuple[list[str], str]:
    """The header of ``file`` as its mapping reads it, and the mapping's delimiter (``iter_mapped`` has checked both)."""
    from ingest.mapping import file_header, load_mapping

    mapping = load_mapping(mapping_path)
    return file_header(file, mapping), mapping.delimiter


@_guard
def cmd_import_mapped(args: argparse.Namespace) -> int:
    """``qrisk import KIND FILE.csv --mapping MAP.yaml --events-out FILE.jsonl``: a dry run that
    writes the mapped events (``qrisk import`` loads them into a data directory itself)."""
    from ingest.mapping import MappingError
    from ingest.validate import Rejection, validate_document
    from qrisk.settings import Settings
    from schemas.events import door

    # the door's date checks in the bureau's local time, as `qrisk import` would apply them
    context = door(_rules(argparse.Namespace(policy=Settings().policy_file)).policy.utc_offset_hours)
    mapped = rejected = 0
    args.events_out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.events_out, "w", encoding="utf-8") as out:
        for position, raw, doc in iter_mapped(args.kind, args.file, args.mapping):
            result = None if isinstance(doc, MappingError) else validate_document(doc, None, raw, context)
            if result is None or isinstance(result, Rejection):
                rejected += 1
                from qrisk.cli import _said  # (qrisk.cli imports this module: imported here, when both are loaded)

                # Chinese first, as `qrisk import` prints a refusal
                print(f"{position}: {doc if result is None else _said(result.errors)}", file=sys.stderr)
                continue
            out.write(result.model_dump_json(exclude_unset=True) + "\n")
            mapped += 1
    print(json.dumps({"file": str(args.file), "mapped": mapped, "rejected": rejected, "events_out": str(args.events_out)}, ensure_ascii=False))
    return 0 if rejected == 0 else 1


# --------------------------------------------------------------------------- campaign


@_guard
def cmd_campaign(args: argparse.Namespace) -> int:
    """``qrisk campaign [--json] [--xlsx FILE]``: where every enterprise stands in the campaign."""
    from processors.campaign import county_progress, kpi_line_zh, kpi_value_text, stage_lines_zh, summary_lines_zh
    from processors.credit_file import CountyState
    from processors.step import replay

    rules = _rules(args)
    _refuse_after_today(args, rules)
    events = load_events(args, rules)
    if args.as_of is not None:
        from qrisk.backtest import state_as_of

        state = state_as_of(events, args.as_of, rules)  # (what was on record by the end of that day, as credit-file --as-of)
    else:
        state, _ = replay(events, rules, CountyState())
    progress = county_progress(state, rules.policy.campaign)
    if args.as_of is not None:
        progress["summary"]["cut"] = args.as_of.isoformat()
    if args.xlsx is not None:
        from qrisk.sheets import campaign_workbook

        args.xlsx.parent.mkdir(parents=True, exist_ok=True)
        args.xlsx.write_bytes(campaign_workbook(progress, rules.policy.utc_offset_hours))  # (the workbook GET /v1/campaign?format=xlsx answers: rows and 汇总)
    if args.json:
        sys.stdout.write(json.dumps(progress, ensure_ascii=False, indent=2) + "\n")
        return 0
    from qrisk.cli_text import table

    sm = progress["summary"]
    # 截至, the counts with the failed acceptances, the campaign-wide KPIs from counts: what goes upward each month
    lines = [*summary_lines_zh(progress, rules.policy.utc_offset_hours), *stage_lines_zh(progress), kpi_line_zh(progress)]
    cells = [["企业", "分档", "阶段", "三个一", "培训率", "一次通过率", "持证率", "省级抽检合格率"]]

    def kpi(k):  # the figure never rounded up to a target it misses, and whether it meets it, side by side
        return "—" if k["value"] is None else f"{kpi_value_text(k)} {k['met_zh']}"

    for r in progress["rows"]:
        # (tier_zh's rule: 未分档 until the campaign tiers it, the registry's tier beside)
        tiers = (f"{r['starting_tier'] or '未分档'}→{r['tier']}" if r["tier"] else r["tier_zh"])
        ones = "".join("✓" if v else "·" for v in r["three_ones"].values())
        k = r["kpis"]
        # a closed enterprise, or one whose licence was revoked, is marked: it is out of lagging and the KPI counts; a
        # stopped one too, though it stays in them (its lag is a producer standing still)
        out = "（已注销）" if r["deregistered_on"] else "（已吊销许可证）" if r["licence_revoked"] else "（停产）" if r.get("suspended_on") else ""
        cells.append([f"{r['enterprise_id']} {r['name'] or ''}".rstrip() + out, tiers, r["stage_zh"], ones,
                      kpi(k["training_rate"]), kpi(k["exam_first_pass_rate"]), kpi(k["key_posts_certified_rate"]), kpi(k["sampling_pass_rate"])])
    lines += table(cells, "<^<^>>>>")
    behind = [r for r in progress["rows"] if r.get("lag_reasons_zh")]
    if behind:
        lines.append(f"滞后企业 {len(behind)} 家及原因：")
        lines += [f"  {r['enterprise_id']} {r['name'] or ''}：{r['lag_reasons_zh']}" for r in behind]
    doubted = [r for r in progress["rows"] if r.get("kpi_doubts_zh")]
    if doubted:  # a figure that stands but is to be checked (a retake counted as a first pass)
        lines.append(f"指标须核实 {len(doubted)} 家：")
        lines += [f"  {r['enterprise_id']} {r['name'] or ''}：{r['kpi_doubts_zh']}" for r in doubted]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


# --------------------------------------------------------------------------- credit report


@_guard
def cmd_credit_report(args: argparse.Namespace) -> int:
    """``qrisk credit-file ID --format text|json|xlsx [--out FILE]``."""
    from qrisk.backtest import state_as_of
    from qrisk.credit_report import build_report, render_text, write_xlsx

    if args.format == "xlsx" and args.out is None:
        raise CliError("--format xlsx needs --out FILE.xlsx")
    rules = _rules(args)
    _refuse_after_today(args, rules)
    events = load_events(args, rules)
    alerts: dict = {}  # the alerts stage folded beside: how each warning was handled
    state = state_as_of(events, args.as_of, rules, alerts=alerts)
    file = state.files.get(args.enterprise_id)
    if file is None:
        raise CliError(f"未找到企业 {args.enterprise_id} / no such enterprise")
    report = build_report(file, rules, alerts=[a.view() for a in alerts.values() if a.enterprise_id == args.enterprise_id])
    if getattr(args, "charts", None) is not None:
        from qrisk.spc_plot import render_series_png

        name = file.profile.name if file.profile else file.enterprise_id
        for series in sorted(file.fluctuation.series.values(), key=lambda s: s.key):
            if series.signals:
                safe = "".join(c if c.isalnum() else "_" for c in series.key)
                print(render_series_png(series, args.charts / f"{file.enterprise_id}_{safe}.png", name), file=sys.stderr)
    if args.format == "json":
        _write(json.dumps(report, ensure_ascii=False, indent=2) + "\n", args.out)
    elif args.format == "text":
        _write(render_text(report), args.out)
    else:
        write_xlsx(report, args.out)
        print(str(args.out))
    return 0
