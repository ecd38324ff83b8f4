"""``qrisk dashboards``: Grafana dashboards as code (dashboards/).

    qrisk dashboards export [DIR]                     # JSON models (default deploy/grafana/dashboards)
    qrisk dashboards check --store TARGET [--from DATE --to DATE] [--var NAME=VALUE …]
    qrisk dashboards grants --store TARGET [--database qrisk]    # <query> lines for grafana-reader.xml
    qrisk dashboards publish --url URL [--token T | --user U --password P]

``check`` runs every panel's SQL against a store (a chdb data directory or ``clickhouse://…``),
with the time range and template variables filled in as the ClickHouse plugin fills them, and
prints the rows each panel gets: what Grafana would show, without Grafana.  A panel whose SQL
fails is named with the server's message, and the command exits 1.  Times are printed in the
bureau's zone (dashboards.model.BUREAU_TZ, as the dashboards show them and as the XLSX and the
alert texts give them), and the output says so: its figures go into reports written in local time.
``--from`` / ``--to`` are the bureau's days.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


def register(subparsers: Any) -> None:
    dash = subparsers.add_parser("dashboards", help="Grafana 看板：导出 JSON、用真实数据检查面板 SQL、发布到 Grafana")
    dash_sub = dash.add_subparsers(dest="dashboards_command", metavar="ACTION")
    dash.set_defaults(func=lambda _args: dash.print_help() or EXIT_USAGE)

    export = dash_sub.add_parser("export", help="write the dashboards' JSON models (Grafana file provisioning)")
    export.add_argument("directory", type=Path, nargs="?", default=Path("deploy/grafana/dashboards"),
                        help="(default %(default)s, relative to the working directory: run it from the repository's root "
                             "for docker compose's Grafana to load them)")
    export.set_defaults(func=cmd_export)

    check = dash_sub.add_parser("check", help="run every panel's SQL against a store and show what each panel gets")
    check.add_argument("--store", required=True, help="a chdb data directory (stop `qrisk run` first) or clickhouse://host:port/db")
    check.add_argument("--from", dest="start", type=_day, default=None, metavar="DATE", help="YYYY-MM-DD (default: 5 years before --to)")
    check.add_argument("--to", dest="end", type=_day, default=None, metavar="DATE", help="YYYY-MM-DD, the bureau's day (default: today)")
    check.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                       help="a template variable (default: the first value its own query gives)")
    check.add_argument("--rows", type=int, default=3, help="rows shown per panel")
    check.set_defaults(func=cmd_check)

    grants = dash_sub.add_parser("grants", help="the grants Grafana's ClickHouse user needs for the panels' SQL "
                                                "(deploy/clickhouse/users.d/grafana-reader.xml)")
    grants.add_argument("--store", required=True, help="a chdb data directory (stop `qrisk run` first) or clickhouse://host:port/db")
    grants.add_argument("--database", default="qrisk", help="the database the grants name (default %(default)s, as in docker-compose.yml)")
    grants.set_defaults(func=cmd_grants)

    publish = dash_sub.add_parser("publish", help="put the dashboards into a running Grafana (folder qrisk)")
    publish.add_argument("--url", default=os.environ.get("QRISK_GRAFANA_URL"), help="Grafana's URL (env QRISK_GRAFANA_URL)")
    publish.add_argument("--token", default=os.environ.get("QRISK_GRAFANA_TOKEN"), help="a service-account token (env QRISK_GRAFANA_TOKEN)")
    publish.add_argument("--user", default=os.environ.get("QRISK_GRAFANA_USER"), help="basic auth instead of a token (env QRISK_GRAFANA_USER)")
    publish.add_argument("--password", default=os.environ.get("QRISK_GRAFANA_PASSWORD"), help="(env QRISK_GRAFANA_PASSWORD)")
    publish.set_defaults(func=cmd_publish)


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def cmd_export(args: argparse.Namespace) -> int:
    from dashboards.publish import export

    for path in export(args.directory):
        print(path.resolve())  # (absolute: the default is relative, and the compose Grafana reads the repository's)
    return 0


def zone_label(tz: str) -> str:
    """The line that says which clock the printed times read."""
    if tz == "Asia/Shanghai":
        return "时间均为北京时间（Asia/Shanghai，UTC+8） / times are Beijing time (UTC+8)"
    return f"时间均为 {tz} 当地时间 / times are local time in {tz}"


def _in_zone(store: Any, sql: str, tz: str) -> tuple[list[dict[str, Any]], bool]:
    """The rows of ``sql`` with its DateTime columns as local text in ``tz``, and whether they are.  The
    store gives a plain DateTime in UTC, and a zoned one (a chart's bucket) in its zone under chdb but in
    UTC through the driver: ClickHouse converts them instead, the same on both backends.  SQL whose
    columns cannot be described (an old server) runs as it is, and the caller says its times are UTC."""
    try:
        columns = store.query(f"DESCRIBE TABLE ({sql})")
    except Exception:  # noqa: BLE001 - the panel's own run names its error
        return store.query(sql), False
    if not any("DateTime" in c["type"] for c in columns):
        return store.query(sql), True
    zone = "'" + tz.replace("'", "") + "'"
    parts = []
    for c in columns:
        name = "`" + c["name"].replace("`", "``") + "`"
        parts.append(f"formatDateTime(toTimeZone({name}, {zone}), '%Y-%m-%d %H:%i:%S') AS {name}" if "DateTime" in c["type"]
                     and not c["type"].startswith(("Array", "Tuple", "Map")) else name)
    try:
        return store.query(f"SELECT {', '.join(parts)} FROM ({sql})"), True
    except Exception:  # noqa: BLE001 - the panel's SQL as Grafana runs it decides, with its own message
        return store.query(sql), False


def run_panels(store: Any, start: dt.datetime, end: dt.datetime, variables: dict[str, str] | None = None,
               local_tz: str | None = None, boards: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Every panel of every dashboard (or of ``boards``, file names) run against ``store``:
    ``{"dashboard", "panel", "sql", "rows"}`` or ``"error"`` instead of rows.  A template variable not given
    takes the first value of its query.  ``local_tz``: DateTime columns as local text in that zone (None: as
    the store gives them, UTC)."""
    from dashboards.boards import DASHBOARDS
    from dashboards.macros import expand

    unknown = set(boards or ()) - set(DASHBOARDS)
    if unknown:
        raise ValueError(f"no such dashboard: {', '.join(sorted(unknown))} (there are {', '.join(DASHBOARDS)})")
    out = []
    for name, build in DASHBOARDS.items():
        if boards is not None and name not in boards:
            continue
        model = build()
        values = dict(variables or {})
        for var in model["templating"]["list"]:
            if var["name"] not in values:
                rows = store.query(expand(var["query"], start, end, values))
                values[var["name"]] = str(next(iter(rows[0].values()))) if rows else ""
        for panel in model["panels"]:
            for target in panel["targets"]:
                sql = expand(target["rawSql"], start, end, values)
                found: dict[str, Any] = {"dashboard": name, "panel": panel["title"], "sql": sql, "variables": values}
                try:
                    if local_tz is None:
                        found["rows"] = store.query(sql)
                    else:
                        found["rows"], found["local_times"] = _in_zone(store, sql, local_tz)
                except Exception as exc:  # noqa: BLE001 - reported per panel, and the command fails
                    found["error"] = f"{type(exc).__name__}: {exc}"
                out.append(found)
    return out


def _years_before(day: dt.date, years: int) -> dt.date:
    """``day`` this many calendar years back; 29 February, in a year without one, is 1 March (as processors.risk's
    _years_on counts a term)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, month=3, day=1)


def cmd_check(args: argparse.Namespace) -> int:
    variables = {}
    for item in args.var:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"--var: expected NAME=VALUE, got {item!r}", file=sys.stderr)
            return EXIT_USAGE
        variables[name] = value
    from zoneinfo import ZoneInfo

    from dashboards.model import BUREAU_TZ

    # the bureau's days, as the dashboards' time picker takes them: UTC days ran 08:00 to 08:00 in Beijing
    zone = ZoneInfo(BUREAU_TZ)
    end_day = args.end or dt.datetime.now(zone).date()
    start_day = args.start or _years_before(end_day, 5)
    start = dt.datetime(start_day.year, start_day.month, start_day.day, tzinfo=zone).astimezone(dt.timezone.utc)
    end = dt.datetime(end_day.year, end_day.month, end_day.day, 23, 59, 59, tzinfo=zone).astimezone(dt.timezone.utc)
    # a typo must not leave an empty chdb directory behind and then fail on every panel
    store = _open_store(args.store)
    if store is None:
        return EXIT_USAGE
    try:
        results = run_panels(store, start, end, variables, local_tz=BUREAU_TZ)
    finally:
        store.close()
    print(f"{start_day.isoformat()} 至 {end_day.isoformat()}；{zone_label(BUREAU_TZ)}")
    failed = 0
    for r in results:
        if "error" in r:
            failed += 1
            print(f"✗ {r['dashboard']} / {r['panel']}: {r['error']}")
            continue
        rows = r["rows"]
        utc = "（本面板时间为 UTC，未能换算） / times in UTC" if r.get("local_times") is False and rows else ""
        print(f"✓ {r['dashboard']} / {r['panel']}: {len(rows)} 行{utc}")
        for row in rows[: args.rows]:
            print("    " + json.dumps(row, ensure_ascii=False, default=str))
    print(f"{len(results) - failed} / {len(results)} 个面板查询成功" + (f"，{failed} 个失败" if failed else ""))
    return 1 if failed else 0


def cmd_publish(args: argparse.Namespace) -> int:
    from dashboards.publish import publish

    if not args.url:
        print("qrisk: 请给出 Grafana 地址 / dashboards publish: --url (or QRISK_GRAFANA_URL) is required", file=sys.stderr)
        return EXIT_USAGE
    try:
        answers = publish(args.url, token=args.token, user=args.user, password=args.password)
    except Exception as exc:  # noqa: BLE001 - Grafana away, refused, or answering an error: one line, not urllib3's page
        print(f"qrisk: 无法发布到 Grafana {args.url}：{_cause(exc)} / cannot publish to Grafana at {args.url}: {_cause(exc)}",
              file=sys.stderr)
        return EXIT_USAGE
    for answer in answers:
        print(f"{answer.get('status', '?')}: {answer.get('uid')} version {answer.get('version')} {answer.get('url', '')}")
    return 0


def _cause(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 failure ("Connection refused"), or Grafana's answer."""
    status = getattr(exc, "status_code", None)
    if status is not None:  # grafana_client's GrafanaClientError: Grafana answered
        return f"HTTP {status}: {getattr(exc, 'message', None) or exc}"[:300]
    inner: BaseException = exc
    seen = set()
    while True:
        nxt = inner.__cause__ or inner.__context__ or (inner.args[0] if inner.args and isinstance(inner.args[0], BaseException) else None)
        reason = getattr(inner, "reason", None)
        if isinstance(reason, BaseException):
            nxt = reason
        if nxt is None or id(nxt) in seen:
            break
        seen.add(id(nxt))
        inner = nxt
    text = getattr(inner, "strerror", None) or str(inner)
    if "] " in text and text.startswith("<"):  # urllib3's "<…Connection object at 0x…>: Failed to establish … [Errno 111] Connection refused"
        text = text.rsplit("] ", 1)[1]
    return f"{type(inner).__name__}: {text}"[:300]


def columns_read(store: Any, start: dt.datetime, end: dt.datetime, variables: dict[str, str] | None = None) -> dict[str, set[str]]:
    """The table columns every panel's and template variable's SQL reads, by table name (without the
    database): what Grafana's ClickHouse user must be granted (deploy/clickhouse/users.d/grafana-reader.xml),
    from ClickHouse's own analysis (``EXPLAIN QUERY TREE``), subqueries and joins included."""
    import re

    from dashboards.boards import DASHBOARDS
    from dashboards.macros import expand

    queries = []
    for build in DASHBOARDS.values():
        model = build()
        values = {var["name"]: "x" for var in model["templating"]["list"]} | dict(variables or {})
        queries += [expand(var["query"], start, end, values) for var in model["templating"]["list"]]
        queries += [expand(t["rawSql"], start, end, values) for panel in model["panels"] for t in panel["targets"]]
    table_node = re.compile(r"TABLE id: (\d+),.*?table_name: (?:[^.\s,]+\.)?([^\s,]+)")
    column_node = re.compile(r"COLUMN id: \d+, column_name: ([^,]+), .*?source_id: (\d+)")
    out: dict[str, set[str]] = {}
    for sql in queries:
        tree = "\n".join(str(next(iter(r.values()))) for r in store.query("EXPLAIN QUERY TREE passes = 1 " + sql))
        tables = {m.group(1): m.group(2) for m in table_node.finditer(tree)}
        for name in tables.values():
            out.setdefault(name, set())
        for m in column_node.finditer(tree):
            if m.group(2) in tables:
                out[tables[m.group(2)]].add(m.group(1))
    return out


def reader_grants(store: Any, database: str = "qrisk") -> list[str]:
    """The GRANT statements Grafana's ClickHouse user needs: ``SELECT(columns) ON db.table`` for every table
    a dashboard reads, with the columns its SQL reads and the table's sorting key and version columns
    (FINAL merges rows by them).  Nothing else: not the event log's bodies (complaint texts), the audit log,
    the outbox, the keys the API stores."""
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    read = columns_read(store, now - dt.timedelta(days=30), now)
    out = []
    for table in sorted(read):
        info = store.query("SELECT sorting_key, engine_full FROM system.tables WHERE database = currentDatabase() AND name = %(t)s",
                           {"t": table})
        columns = set(read[table])
        if info:
            columns |= {c.strip() for c in info[0]["sorting_key"].split(",") if c.strip()}
            engine = info[0]["engine_full"]
            if engine.startswith("ReplacingMergeTree(") and not engine.startswith("ReplacingMergeTree()"):
                columns.add(engine[len("ReplacingMergeTree("):].split(")")[0].split(",")[0].strip())
        existing = {r["name"] for r in store.query(
            "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = %(t)s", {"t": table})}
        columns &= existing  # (a subcolumn such as value.null is granted with its column)
        out.append(f"GRANT SELECT({', '.join(sorted(columns))}) ON {database}.{table}")
    return out


def _open_store(target: str) -> Any:
    """The store named by --store, or None (said on stderr) when `qrisk run` holds that chdb directory."""
    from qrisk.runtime import open_target
    from qrisk.store import StoreInUse

    try:
        return open_target(target, create=False)
    except StoreInUse:
        # one process holds a chdb directory; a ClickHouse server is read beside the service
        print(f"qrisk: 数据目录 {target} 正被另一个进程（如 qrisk run）使用：先停止 qrisk run，或让 --store 指向 clickhouse://…"
              f"（服务写入的 ClickHouse） / the data directory {target} is in use by another process (a running qrisk run?): "
              "stop qrisk run first, or point --store at clickhouse://… (the server the service writes to)", file=sys.stderr)
        return None


def cmd_grants(args: argparse.Namespace) -> int:
    store = _open_store(args.store)
    if store is None:
        return EXIT_USAGE
    try:
        for line in reader_grants(store, args.database):
            print(f"                <query>{line}</query>")
    finally:
        store.close()
    return 0
