"""The ``qrisk`` command."""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

from qrisk.settings import PolicyError, Settings

EXIT_USAGE = 2
# stdout's reader went away (`qrisk demo | head -3`): the status a shell gives a writer SIGPIPE ends (128 + 13), so
# that `set -o pipefail` sees the output cut short as it does for cat or yes in that place, not as written whole
EXIT_BROKEN_PIPE = 141


def _speak_chinese() -> None:
    """Standard output and error in UTF-8 when the locale's encoding cannot write Chinese (LC_ALL=C on a
    server, POSIX in a container): every command prints Chinese, and under an ASCII locale the demo
    ended in UnicodeEncodeError.  A locale that can (UTF-8, GB18030) is left as it is for the terminal."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if encoding is None or not hasattr(stream, "reconfigure"):
            continue
        try:
            "诚信档案".encode(encoding)
        except (UnicodeEncodeError, LookupError):
            stream.reconfigure(encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _speak_chinese()
    # a service's every line is stamped, those said before its command is known too: a setting that does
    # not parse (QRISK_PORT=70000) fails building the parser, a bad option parsing the command line
    stderr = sys.stderr
    if _names_a_service(argv):
        _stamp_stderr()
    try:
        try:
            return _main(argv)
        finally:
            if sys.stdout is not None:
                sys.stdout.flush()  # a reader gone is found here, not as "Exception ignored" at the interpreter's exit
    except BrokenPipeError:
        if not _stdout_gone():  # (a socket's, say: not ours to hide)
            raise
        _stdout_to_devnull()
        return EXIT_BROKEN_PIPE
    finally:
        sys.stderr = stderr


def _stdout_gone() -> bool:
    """Whether stdout is a pipe (or socket) whose reader has gone: poll says POLLERR / POLLHUP."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no file descriptor (a test's capture): nothing to tell it by
        return True


def _stdout_to_devnull() -> None:
    """What is still buffered for stdout goes nowhere at exit, instead of a second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):
        pass


def _main(argv: list[str]) -> int:
    from pydantic import ValidationError

    try:
        parser = build_parser()
    except ValidationError as exc:  # a QRISK_* variable that does not parse: every command reads them
        print(f"qrisk: {_settings_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    from qrisk.auth import KeyFileError
    from qrisk.runtime import DataDirError
    from qrisk.settings import unknown_variables
    from qrisk.store import StoreInUse, StoreTargetError

    import logging

    # clickhouse-driver logs every refused connection with a traceback before raising it; the
    # commands say it once, naming the setting (and the sink's log says it is unhealthy)
    logging.getLogger("clickhouse_driver.connection").setLevel(logging.ERROR)
    if _is_service(args.func) and not isinstance(sys.stderr, _StampedStream):  # (one _names_a_service did not read as one)
        _stamp_stderr()
    try:
        for line in unknown_variables(dict(os.environ), getattr(args, "policy", None) or os.environ.get("QRISK_POLICY_FILE")):
            print(f"qrisk: {line}", file=sys.stderr)
        return int(args.func(args) or 0)
    except (UserError, StoreInUse, StoreTargetError, DataDirError, KeyFileError) as exc:
        print(f"qrisk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PolicyError as exc:
        print(f"qrisk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValidationError as exc:
        print(f"qrisk: {_settings_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a path the operator gave: no such file, a file where a directory belongs, no permission
        if exc.filename is None:
            raise
        print(f"qrisk: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("qrisk: interrupted", file=sys.stderr)
        return 130


def _settings_error(exc: Any) -> str:
    """A settings ValidationError as the operator set it: 设置 QRISK_PORT 的值无效 / invalid setting: QRISK_PORT: …"""
    from qrisk.settings import settings_error

    return settings_error(exc)


TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # the server's log lines (server_log_config): UTC


class _StampedStream:
    """stderr with the server's UTC timestamp in front of each line qrisk writes, so that a service's
    log (nohup, a file, journald without its own stamps) says when the disk filled up.  Lines that
    already start with a date (uvicorn's, the sink's logging) are left as they are."""

    _DATED = re.compile(r"\d{4}-\d\d-\d\d[T ]")

    def __init__(self, raw: Any):
        import threading

        self.raw = raw
        self._at_start = True
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        import time

        with self._lock:
            out = []
            for piece in text.splitlines(keepends=True):
                if self._at_start and piece.strip() and not self._DATED.match(piece):
                    out.append(time.strftime(TIME_FORMAT, time.gmtime()) + " ")
                out.append(piece)
                self._at_start = piece.endswith("\n")
            return self.raw.write("".join(out))

    def flush(self) -> None:
        self.raw.flush()

    def isatty(self) -> bool:
        return self.raw.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


# the commands that run as services and write a log: their own lines get the server's timestamps
_SERVICES = {("qrisk.cli", "cmd_run"), ("qrisk.cli_alerts", "cmd_dispatch"), ("qrisk.cli_kafka", "cmd_sink"),
             ("qrisk.cli_kafka", "cmd_tick")}


def _is_service(func: Any) -> bool:
    return (getattr(func, "__module__", None), getattr(func, "__name__", None)) in _SERVICES


# the same commands by the words that call them, for what is said before the command line is parsed
_SERVICE_COMMANDS = (("run",), ("alerts", "dispatch"), ("sink",), ("tick",))


def _names_a_service(argv: Sequence[str]) -> bool:
    words = [a for a in argv if not a.startswith("-")]
    return any(tuple(words[:len(c)]) == c for c in _SERVICE_COMMANDS)


def _stamp_stderr() -> _StampedStream:
    sys.stderr = _StampedStream(sys.stderr)
    return sys.stderr


# `qrisk keys create --help`: what each role (qrisk.auth.ROLES) may do, as the API's route guards and
# qrisk.auth.posting_rules allow it (tests/test_cli.py checks it against both)
ROLE_HELP: dict[str, str] = {
    "admin": "everything: audit, metrics, every read; acts on alerts; re-sends given-up notifications (POST /v1/alerts/redeliver); may post any event type (imports, back-fill)",
    "supervisor": "reads credit files, the registers of samples, complaints and inspections, alerts, the campaign table, dead letters and "
                  "what became of an event; acts on alerts "
                  "(POST /v1/alerts/{id}/actions: acknowledge, assign, start_rectification, verify, close, reopen, comment, escalate); with --towns "
                  "only those towns, "
                  "and no dead letters",
    "bureau": "the bureau's registry, campaign office and enforcement: posts enterprise.*, campaign.*, enforcement.*, interview.* "
              "and sampling.retracted (撤销报告), complaint.withdrawn (撤回投诉登记), fluctuation.rebaselined (控制限重新确定) "
              "as source kind bureau",
    "lab": "a lab system: posts sampling.result only, as its own lab (source kind lab, source.id bound with --lab)",
    "complaint": "the complaint channel: posts complaint.received, complaint.accepted, complaint.resolved as source kind complaint_channel",
    "inspector": "inspectors: posts inspection.*, rectification.*, complaint.accepted, complaint.resolved as source kind inspector",
    "monitor": "Prometheus: GET /metrics only",
}
SENDERS_READ = ("bureau", "lab", "complaint", "inspector")
SENDERS_NOTE = f"{', '.join(SENDERS_READ)} keys also read the dead letters of their own requests and what became of their events"


def _role_help() -> str:
    from qrisk.auth import ROLES

    return " | ".join(f"{r}: {ROLE_HELP.get(r, d)}" for r, d in ROLES.items()) + f" ({SENDERS_NOTE})"


class UserError(Exception):
    """A mistake in how the command was called: message to stderr, exit 2."""


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < port < 65536:
        # the kernel would take the number modulo 65536 and the service answer on another port
        raise argparse.ArgumentTypeError(f"a port is 1–65535, got {port}")
    return port


def _at_least_one(text: str) -> int:
    """A count (events a batch, days, rows): 0 or less was taken as given and meant one event a request."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"应为正整数 / must be a whole number, at least 1, got {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"应为正整数 / must be at least 1, got {number}")
    return number


def build_parser() -> argparse.ArgumentParser:
    settings = Settings()
    parser = argparse.ArgumentParser(prog="qrisk", description="食品质量风险监测 — event-sourced quality-risk monitoring for food-safety supervisors")
    parser.add_argument("--version", action="version", version=f"qrisk {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="serve the HTTP API with the embedded pipeline (no servers needed)")
    run.add_argument("--host", default=settings.host, help="address to listen on (default %(default)s: this machine only; 0.0.0.0 for every interface)")
    run.add_argument("--port", type=_port, default=settings.port, help="HTTP port (default %(default)s)")
    run.add_argument("--data-dir", type=Path, default=settings.data_dir, help="chdb data directory (default %(default)s)")
    run.add_argument("--policy", type=Path, default=settings.policy_file, help="policy YAML (default $QRISK_POLICY_FILE, else the built-in policy)")
    run.add_argument("--keys-file", type=Path, default=settings.keys_file, help="API key file (default $QRISK_KEYS_FILE, else DATA_DIR/keys.json)")
    run.add_argument("--tls-certfile", type=Path, default=settings.tls_certfile, help="serve HTTPS with this certificate (PEM; with --tls-keyfile)")
    run.add_argument("--tls-keyfile", type=Path, default=settings.tls_keyfile, help="the certificate's private key (PEM)")
    run.set_defaults(func=cmd_run)

    keys = sub.add_parser("keys", help="API keys: create (shown once), list, revoke")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    keys.set_defaults(func=lambda _args: keys.print_help() or EXIT_USAGE)
    for name, func, text in (("create", cmd_keys_create, "create a key and print it once"),
                             ("list", cmd_keys_list, "list keys (never the secrets)"),
                             ("revoke", cmd_keys_revoke, "revoke a key by id or name")):
        action = keys_sub.add_parser(name, help=text)
        action.add_argument("--data-dir", type=Path, default=settings.data_dir, help="the service's data directory (default %(default)s)")
        action.add_argument("--keys-file", type=Path, default=settings.keys_file, help="API key file (default $QRISK_KEYS_FILE, else DATA_DIR/keys.json)")
        action.set_defaults(func=func)
        if name == "create":
            from qrisk.auth import DEFAULT_DAYS, ROLES

            action.add_argument("--role", required=True, choices=list(ROLES), help=_role_help())
            action.add_argument("--name", required=True, help="who holds the key, e.g. lab-cma-0451")
            action.add_argument("--lab", "--source", dest="source_id", default=None,
                                help="the source.id this key posts as (required for --role lab; optional for complaint, inspector, bureau)")
            action.add_argument("--towns", default=None, help="supervisors: comma-separated towns this key may read (default, "
                                "without --towns: all; given, it must name at least one)")
            action.add_argument("--days", type=_at_least_one, default=DEFAULT_DAYS, help="expires after this many days (default %(default)s)")
        elif name == "list":
            action.add_argument("--json", action="store_true")
        else:
            action.add_argument("key", help="key id or name")

    demo = sub.add_parser("demo", help="build a realistic county, run it through the pipeline, print a summary")
    demo.add_argument("--seed", type=int, default=2025, help="the same seed gives the same county, byte for byte (default %(default)s)")
    demo.add_argument("--data-dir", type=Path, default=None, help="keep the data here for a later `qrisk run`: a new or empty directory (default: a temporary one)")
    demo.add_argument("--events-out", type=Path, default=None, help="also write the generated events as JSONL")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.set_defaults(func=cmd_demo)

    imp = sub.add_parser("import", help="load events from a JSONL or CSV file, or another system's CSV through a mapping",
                         usage="qrisk import [KIND] FILE [--mapping MAP.yaml] [options]")
    imp.add_argument("paths", nargs="+", metavar="[KIND] FILE",
                     help="FILE of qrisk events (.jsonl/.csv); or KIND (inspections, sampling, complaints, enforcement, interviews) and a foreign CSV with --mapping")
    imp.add_argument("--mapping", type=Path, default=None, metavar="MAP.yaml", help="column mapping for a foreign CSV (see ingest/mappings/)")
    imp.add_argument("--events-out", type=Path, default=None, metavar="FILE.jsonl",
                     help="with --mapping: write the mapped events here instead of loading them (a dry run)")
    imp.add_argument("--data-dir", type=Path, default=settings.data_dir, help="load into this data directory (default %(default)s; not while `qrisk run` holds it: use --url)")
    imp.add_argument("--url", default=None, help="post to a running `qrisk run` instead of opening the data directory, e.g. http://127.0.0.1:8080")
    imp.add_argument("--batch", type=_at_least_one, default=500, help="events per request or log write (default %(default)s)")
    imp.add_argument("--warnings-out", type=Path, default=None, metavar="FILE.jsonl",
                     help="write every warning (accepted events qrisk cannot fully judge: unknown unit, unregistered enterprise …) "
                          "here, one JSON object a line, instead of listing them in the summary")
    imp.add_argument("--policy", type=Path, default=settings.policy_file, help="policy YAML for a direct load (default $QRISK_POLICY_FILE, else the built-in policy)")
    imp.add_argument("--key", default=settings.api_key.get_secret_value() if settings.api_key else None,
                     help="API key for --url (default: $QRISK_API_KEY, which keeps it out of `ps`)")
    imp.set_defaults(func=cmd_import)

    schema = sub.add_parser("schema", help="the event contract")
    schema_sub = schema.add_subparsers(dest="schema_command", metavar="ACTION")
    schema.set_defaults(func=lambda _args: schema.print_help() or EXIT_USAGE)
    export = schema_sub.add_parser("export", help="write JSON Schema files for lab integrators")
    export.add_argument("directory", type=Path)
    export.set_defaults(func=cmd_schema_export)

    sql = sub.add_parser("sql", help="run one SQL statement on a data directory with the service stopped (retention: ALTER TABLE … DELETE)",
                         description="Runs one statement on the chdb data directory (stop `qrisk run` first: one process holds it). "
                                     "Queries print one JSON object a row, or, ending in FORMAT <name> (CSVWithNames, TSVWithNames, "
                                     "PrettyCompact…), the rows as ClickHouse writes that format; "
                                     "ALTER TABLE … DELETE waits until the rows are gone. "
                                     "On a ClickHouse server use clickhouse-client instead.")
    sql.add_argument("statement", help="e.g. \"ALTER TABLE dead_letters DELETE WHERE received_at < now() - INTERVAL 1 YEAR\"")
    sql.add_argument("--data-dir", type=Path, default=settings.data_dir, help="the stopped service's data directory (default %(default)s)")
    sql.set_defaults(func=cmd_sql)

    try:
        from qrisk import cli_spc
    except ImportError:  # pragma: no cover - the SPC command is optional in a partial checkout
        cli_spc = None
    if cli_spc is not None:
        cli_spc.register(sub)
    from qrisk import cli_kafka, cli_risk

    from qrisk import cli_alerts, cli_dashboards

    cli_risk.register(sub)  # risk, backtest, credit-file
    cli_kafka.register(sub)  # topics, produce, worker, sink, tick
    cli_dashboards.register(sub)  # dashboards export / check / publish
    cli_alerts.register(sub)  # alerts dispatch
    from qrisk import cli_rebuild

    cli_rebuild.register(sub)  # rebuild
    return parser


# --------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace) -> int:
    settings = Settings()
    if settings.event_log == "kafka":  # QRISK_EVENT_LOG=kafka: the API publishes, workers fold
        from qrisk.cli_kafka import cmd_run_kafka

        return cmd_run_kafka(args)
    if (args.tls_certfile is None) != (args.tls_keyfile is None):
        raise UserError("HTTPS 需要同时给出证书和私钥 / HTTPS needs both --tls-certfile and --tls-keyfile (QRISK_TLS_CERTFILE, QRISK_TLS_KEYFILE)")
    for path in (args.tls_certfile, args.tls_keyfile):
        if path is not None and not path.is_file():
            raise UserError(f"TLS 文件 {path} 不存在 / {path}: no such file")
    # what can fail is checked before a first key is made and the log replayed (minutes, for years of it)
    if args.tls_certfile:
        _check_tls(args.tls_certfile, args.tls_keyfile)
    sock = _bind_port(args.host, args.port)
    try:
        return _serve(args, settings, sock)
    finally:
        sock.close()


def _serve(args: argparse.Namespace, settings: Settings, sock: Any) -> int:
    import uvicorn

    from qrisk.api import create_app
    from qrisk.auth import KeyStore
    from qrisk.runtime import check_data_dir, default_rules, open_embedded, open_to_others
    from qrisk.settings import DEFAULT_POLICY
    from qrisk.starting import StartupResponder
    from qrisk.store import StoreError, StoreInUse, redact

    rules = default_rules(args.policy)
    if not settings.clickhouse_url:
        check_data_dir(args.data_dir)
        exposed = open_to_others(args.data_dir)
        if exposed is not None:
            print(exposed, file=sys.stderr)
    keys = KeyStore(args.keys_file or args.data_dir / "keys.json")
    keys.load()  # a damaged file is named now (KeyFileError), not as a traceback on the first request
    store = f"ClickHouse {redact(settings.clickhouse_url)}" if settings.clickhouse_url else f"chdb in {args.data_dir}"
    store_zh = f" ClickHouse {redact(settings.clickhouse_url)} " if settings.clickhouse_url else f"数据目录 {args.data_dir} 中的 chdb "
    # the fold replays the whole log under this policy: another policy than last time re-decides history
    policy = f"{args.policy or 'built-in'} (sha256 {_digest(args.policy or DEFAULT_POLICY)})"
    print(f"qrisk {_version()}: 策略 {policy}；打开{store_zh}并重放事件日志 … / policy {policy}; "
          f"opening {store} and replaying the event log …", file=sys.stderr)
    # "of N" and the time left, a first line within seconds; and, told the log's size before the replay,
    # it refuses a missing key file beside a log that has events (minutes of replay saved)
    progress = _KeyCheckedReplay(keys)
    # the port answers from here on: a probe sees the start working, a sender is told to come back
    responder = StartupResponder(sock, progress, _ssl_context(args)).start()
    previous = _say_sigterm_while_replaying(progress)
    try:
        pipeline = open_embedded(args.data_dir, rules, progress=progress, clickhouse_url=settings.clickhouse_url)
    except StoreError as exc:
        progress.close()
        raise UserError(_store_failure(exc, settings.clickhouse_url, args.data_dir)) from None
    except StoreInUse:
        progress.close()
        raise UserError(f"数据目录 {args.data_dir} 正被另一个进程使用（另一个 qrisk run？）/ the data directory {args.data_dir} "
                        "is in use by another process (another `qrisk run`?): stop it, or give this one another --data-dir") from None
    finally:
        responder.stop()
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    progress.close()
    try:
        # only now: a store that cannot be opened, or a log that is not empty, gets no new admin key
        _first_start(keys, getattr(pipeline, "events", pipeline.seq), make_dir=args.keys_file is None)
    except BaseException:
        pipeline.close()
        raise
    _say_recovered(pipeline)
    scheme = "https" if args.tls_certfile else "http"
    print(f"qrisk: {pipeline.seq} 个事件，{len(pipeline.state.files)} 家企业；在 {scheme}://{args.host}:{args.port} 启动服务 / "
          f"{pipeline.seq} events, {len(pipeline.state.files)} enterprises; starting {scheme}://{args.host}:{args.port}", file=sys.stderr)
    if scheme == "http" and args.host not in ("127.0.0.1", "localhost", "::1"):
        print("qrisk: 警告：在本机以外以明文 HTTP 提供服务，API 密钥将以明文经过网络（请用 --tls-certfile/--tls-keyfile 或 TLS 反向代理） / "
              "warning: serving plain HTTP beyond loopback; API keys cross the network in clear text "
              "(use --tls-certfile/--tls-keyfile or a TLS-terminating proxy)", file=sys.stderr)
    app = create_app(pipeline, settings.max_body_bytes, settings.max_batch, keys=keys, dispatcher=_dispatcher(pipeline.store, rules, settings),
                     tick_seconds=settings.tick_seconds)
    tls = {"ssl_certfile": str(args.tls_certfile), "ssl_keyfile": str(args.tls_keyfile)} if args.tls_certfile else {}
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="info", log_config=server_log_config(),
                            **server_http_options(settings), **tls)
    uvicorn.Server(config).run(sockets=[sock])  # the socket the start-up responder answered on
    return 0


def _say_sigterm_while_replaying(progress: Any) -> Any:
    """SIGTERM before the API serves (a deploy, a probe's patience running out) said it stopped the
    replay, rather than leaving the log at its last progress line; the exit stays 143 as for a kill."""
    def stop(signum: int, _frame: Any) -> None:
        total = getattr(progress, "total", None)
        done = f"{progress.done:,}/{total:,}" if total is not None else "0"
        done_en = f"{progress.done:,} of {total:,} events replayed" if total is not None else "no event replayed yet"
        print(f"qrisk: 收到 SIGTERM，在启动重放事件日志时停止（已重放 {done} 个事件）；下次启动将重新重放 / stopped by SIGTERM "
              f"while replaying the event log at start ({done_en}); the next start replays it again",
              file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)  # (unwinds: the store is closed and a writer lease released)

    return signal.signal(signal.SIGTERM, stop)


class _KeyCheckedReplay:
    """The replay's progress (``qrisk.runtime.ReplayProgress``), which also refuses, once the log's
    size is known and before it is replayed, to serve a log that has events without its key file."""

    def __init__(self, keys: Any):
        from qrisk.runtime import ReplayProgress

        self._progress = ReplayProgress("replay")
        self._keys = keys

    def start(self, total: int) -> None:
        if total:
            _refuse_missing_keys(self._keys, total)
        self._progress.start(total)

    def __call__(self, n: int) -> None:
        self._progress(n)

    def __getattr__(self, name: str) -> Any:  # total, done, started, what … for the start-up responder
        return getattr(self._progress, name)


def _refuse_missing_keys(keys: Any, events: int) -> None:
    if keys.path.exists():
        return
    # a mistyped QRISK_KEYS_FILE once got a fresh admin key (and a new directory) beside a log of
    # 1,099 events whose own keys.json went unused: every key in use would have stopped working
    raise UserError(f"密钥文件 {keys.path} 不存在，而事件日志已有 {events:,} 个事件：不为已有数据新建管理员密钥。请检查 --keys-file / "
                    f"QRISK_KEYS_FILE（默认 DATA_DIR/keys.json），或用 qrisk keys create --role admin --name NAME --keys-file {keys.path} "
                    f"创建密钥 / the key file {keys.path} does not exist, but the event log holds {events:,} events: no admin key is "
                    f"made for existing data. Check --keys-file / QRISK_KEYS_FILE (default DATA_DIR/keys.json), or create a key with "
                    f"`qrisk keys create --role admin --name NAME --keys-file {keys.path}`")


def _ssl_context(args: argparse.Namespace) -> Any:
    """The server side of HTTPS with the pair given (checked already), or None for plain HTTP."""
    if not args.tls_certfile:
        return None
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(args.tls_certfile), str(args.tls_keyfile))
    return ctx


def _store_failure(exc: Exception, clickhouse_url: str | None, data_dir: Path) -> str:
    """One line for a store that cannot be opened: which setting names it, and the server's first line."""
    from qrisk.store import redact

    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:400]
    if clickhouse_url:
        url = redact(clickhouse_url)
        reason = reason.removeprefix(url + ": ")
        return (f"无法打开 ClickHouse {url}（QRISK_CLICKHOUSE_URL）：{reason} / "
                f"cannot open ClickHouse {url} (QRISK_CLICKHOUSE_URL): {reason}")
    return f"无法打开数据目录 {data_dir}：{reason} / cannot open data directory {data_dir}: {reason}"


# h11, not uvicorn's default httptools: httptools puts no bound on a header, and builds a long one at
# a cost growing with the square of its length on the event loop's thread (a 100 MB header held every
# other request for 19 s, no key needed); h11 refuses a request head still incomplete past this size with a 400
# (it checks between reads, so a head that arrives whole in one read may be up to a read's size longer).
# 64 KiB: an x-qrisk-lines header naming every other line of a 5,000-element batch still fits.
MAX_REQUEST_HEAD_BYTES = 64 * 1024


def server_http_options(settings: Settings | None = None) -> dict[str, Any]:
    """How both API servers (``qrisk run``, ``qrisk api``) parse HTTP: h11, with a deadline on a request's
    head and a cap on open connections (``qrisk.http_protocol``)."""
    from qrisk.http_protocol import bounded_protocol

    settings = settings or Settings()
    room_for_connections(settings.max_connections)
    return {"http": bounded_protocol(settings.header_timeout_seconds, settings.max_connections),
            "h11_max_incomplete_event_size": MAX_REQUEST_HEAD_BYTES}


# file descriptors beside the connections: chdb's parts and pools, the log, the key and audit files
FILES_BESIDE_CONNECTIONS = 1024


def room_for_connections(max_connections: int) -> None:
    """Raise the soft open-file limit towards QRISK_MAX_CONNECTIONS plus the store's share (up to the hard
    limit, which needs no privilege), and say so when it stays short: at `ulimit -n 1024` a full server
    left chdb without a descriptor ("Too many open files")."""
    try:
        import resource
    except ImportError:  # (not on Windows)
        return
    wanted = max_connections + FILES_BESIDE_CONNECTIONS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < wanted:
        print(f"qrisk: 警告：打开文件数上限 {soft} 小于 QRISK_MAX_CONNECTIONS={max_connections} 加存储所需的 {FILES_BESIDE_CONNECTIONS}；"
              f"连接占满时存储可能报 Too many open files（请提高 ulimit -n / LimitNOFILE，或降低 QRISK_MAX_CONNECTIONS）/ warning: the "
              f"open-file limit {soft} is below QRISK_MAX_CONNECTIONS={max_connections} plus {FILES_BESIDE_CONNECTIONS} for the store; "
              f"with every connection open the store may fail with \"Too many open files\" (raise ulimit -n / LimitNOFILE, or lower "
              f"QRISK_MAX_CONNECTIONS)", file=sys.stderr)


def server_log_config() -> dict[str, Any]:
    """uvicorn's logging with a UTC timestamp on every line, the access log on stderr with the
    rest (one stream for a service manager to collect), and health probes left out of it."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for name, fmt in (("default", "%(asctime)s %(levelprefix)s %(message)s"),
                      ("access", '%(asctime)s %(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s')):
        config["formatters"][name]["fmt"] = fmt
        config["formatters"][name]["datefmt"] = "%Y-%m-%dT%H:%M:%SZ"
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config["filters"] = {"no_probes": {"()": "qrisk.cli._NoHealthProbes"}}
    config["handlers"]["access"]["filters"] = ["no_probes"]
    import logging
    import time

    logging.Formatter.converter = time.gmtime  # (the datefmt says Z)
    return config


class _NoHealthProbes:
    """Compose and Kubernetes probe /healthz every few seconds: those lines would bury the log."""

    def filter(self, record: Any) -> bool:
        args = getattr(record, "args", None)
        return not (isinstance(args, tuple) and len(args) >= 3 and str(args[2]).startswith("/healthz"))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qrisk")
    except PackageNotFoundError:  # a checkout run without `pip install`
        return "(not installed)"


def _say_recovered(pipeline: Any) -> None:
    if pipeline.migrations_applied:
        applied = ", ".join(f"{v:03d}" for v in pipeline.migrations_applied)
        print(f"qrisk: 已应用数据库迁移 {applied} / applied migrations {applied}", file=sys.stderr)
    r = pipeline.recovery
    if r.get("replayed"):
        print(f"qrisk: 已重放 {r['replayed']:,} 个事件，用时 {r['seconds']:.1f} 秒 / replayed {r['replayed']:,} events in {r['seconds']:.1f} s",
              file=sys.stderr)
    b = r.get("rebuilt")
    if b:
        print(f"qrisk: 已从事件日志重建派生表（{b['why_zh']}），用时 {b['seconds']:.1f} 秒；发送记录、拒收记录与日志保留；发件箱中待发送通知 {b['released']} 条，"
              f"历史通知 {b['withheld']} 条与不再产生的通知 {b['withdrawn']} 条记为未发送 / rebuilt the derived tables from the event log "
              f"({b['why']}) in {b['seconds']:.1f} s, keeping deliveries, dead letters and the log; {b['released']} notifications "
              f"wait in the outbox, {b['withheld']} about past steps and {b['withdrawn']} no longer made are recorded as not sent",
              file=sys.stderr)
    if r.get("missing"):
        gaps = r["gaps"]
        shown = "、".join(f"{a}–{z}" if a != z else f"{a}" for a, z in gaps[:3]) + ("…" if len(gaps) > 3 else "")
        # just rebuilt: the tables hold what the log there is derives, whatever the gap's cause
        then_zh, then = (("派生表已按现有日志重建", "the derived tables were just rebuilt from the log there is") if b else
                         ("派生表可能仍有被删事件的结果，停止服务后运行 qrisk rebuild",
                          "the derived tables may still hold what those events derived: stop the service and run `qrisk rebuild`"))
        print(f"qrisk: 警告：事件日志有 {r['events']:,} 个事件，最大序号却是 {r['last_seq']:,}，缺 {r['missing']:,} 个序号（seq {shown}）；"
              f"一次写入失败会留下空号（无害），否则是日志被删除了一部分：{then_zh} / warning: the event log holds {r['events']:,} events but "
              f"its last seq is {r['last_seq']:,}: {r['missing']:,} seqs are absent (seq {shown.replace('、', ', ')}); a failed write "
              f"leaves such a gap, harmlessly; otherwise part of the log was deleted, and {then}", file=sys.stderr)
    if r.get("policy_changed"):
        # (the fold replayed the whole log under this policy, so the API's files and alerts already follow it; the
        # tables hold rows of earlier events written under the old one, and what was sent stays sent)
        print("qrisk: 警告：策略与上次派生时不同：API 的诚信档案与预警已按新策略重放全部日志，但此前事件的派生表（仪表盘、qrisk sql）"
              "与已发出的通知保持原策略的结果；要按新策略重写派生表，停止服务后运行 qrisk rebuild / warning: the policy is not the one "
              "the derived tables were derived under: the API's credit files and alerts follow it already (the whole log was "
              "replayed under it), but the derived tables' rows of earlier events (dashboards, qrisk sql) and the notifications "
              "sent stay as the old policy made them; to write the tables again under this policy, stop the service and run "
              "`qrisk rebuild`", file=sys.stderr)
    unrouted = _unrouted_warning(pipeline)
    if unrouted:
        print(f"qrisk: 警告：{unrouted} / warning: some enterprises' towns have no alert route (see alerts.routes)", file=sys.stderr)
    risk = pipeline.rules.policy.risk
    for note in (risk.credit.unregistered_warning(pipeline.state.files), risk.scale_note()):
        if note:
            print(f"qrisk: 警告：{note}", file=sys.stderr)
    clock = getattr(pipeline, "clock", None)
    if clock is not None:
        from qrisk.runtime import calendar_warning

        gap = calendar_warning(pipeline.rules, clock())
        if gap:
            print(f"qrisk: {gap}", file=sys.stderr)
    if r.get("rederived"):
        first, last = r["rederived"]
        print(f"qrisk: 派生表落后于日志（上次运行在写入前停止），已重新派生 seq {first}–{last} / the derived tables were behind "
              f"the log (the last run stopped before writing them): re-derived seq {first}–{last}", file=sys.stderr)


def _unrouted_warning(pipeline: Any) -> str | None:
    """The towns of the enterprises on file that no alert route covers for their category (their alerts go to the
    fallback): said at start, where the bureau sees its routing leave a town out before the first alert does."""
    towns = {(f.profile.town, f.profile.category) for f in pipeline.state.files.values() if f.profile is not None}
    return pipeline.rules.policy.alerts.unrouted_warning(towns) if towns else None


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _bind_port(host: str, port: int) -> Any:
    """The service's listening socket, bound before the log is replayed: the start-up responder
    answers on it meanwhile, and the API takes it over (``qrisk.starting``)."""
    import socket

    from qrisk.starting import bind

    try:
        return bind(host, port)
    except socket.gaierror as exc:
        raise UserError(f"无法解析监听地址 --host {host}（QRISK_HOST）：{exc.strerror} / --host {host} (QRISK_HOST): {exc.strerror}") from None
    except OSError as exc:
        raise UserError(f"无法在 {host}:{port} 上监听（{exc.strerror}；另一个 qrisk run？请用 --port / QRISK_PORT 换一个端口） / "
                        f"cannot listen on {host}:{port}: {exc.strerror} (another `qrisk run`? choose --port / QRISK_PORT)") from None


def _check_tls(certfile: Path, keyfile: Path) -> None:
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(certfile), str(keyfile))
    except ssl.SSLError as exc:
        raise UserError(f"证书 {certfile} 与私钥 {keyfile} 无法作为一对加载（均应为 PEM）：{exc.reason or exc} / "
                        f"--tls-certfile {certfile} with --tls-keyfile {keyfile} do not load as a certificate and its private key "
                        f"(both PEM): {exc.reason or exc}") from None


def _dispatcher(store, rules, settings: Settings):
    """The outbox sender, when the policy names receivers (without any, alerts are kept and shown, not sent)."""
    if not rules.policy.alerts.receivers:
        return None
    from alerts.outbox import Dispatcher
    from alerts.receivers import SmtpConfig, smtp_warning

    smtp = SmtpConfig(host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_sender, user=settings.smtp_user,
                      password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
                      starttls=settings.smtp_starttls, ssl=settings.smtp_ssl)
    names = ", ".join(f"{r.name} ({r.kind})" for r in rules.policy.alerts.receivers)
    print(f"qrisk: 预警通知经发件箱发送给 {names} / alert notifications go out through the outbox to {names}", file=sys.stderr)
    warning = smtp_warning(smtp) if any(r.kind == "email" for r in rules.policy.alerts.receivers) else None
    if warning:
        print(f"qrisk: {warning}", file=sys.stderr)
    for r in rules.policy.alerts.receivers:
        if r.secret_env and not os.environ.get(r.secret_env, "").strip():
            print(f"qrisk: 接收方 {r.name} 的加签密钥环境变量 {r.secret_env} 未设置，其消息将暂缓发送并重试 / "
                  f"receiver {r.name}: {r.secret_env} (its DingTalk signing secret) is not set; its messages wait and are retried",
                  file=sys.stderr)
    from qrisk.threads import NamedThread

    dispatcher = Dispatcher(store, rules.policy.alerts, smtp=smtp, interval=settings.outbox_interval,
                            max_attempts=settings.outbox_max_attempts, give_up_after=settings.outbox_give_up_after_seconds,
                            base_delay=settings.outbox_base_delay,
                            lease_seconds=settings.outbox_lease_seconds)
    dispatcher.thread_class = NamedThread
    return dispatcher


def _first_start(keys, events: int = 0, make_dir: bool = True) -> None:
    """No key was ever configured and the log is empty (a new service): create an admin key and print
    it once (stderr); writes are never anonymous.  Called once the store is open and the log replayed:
    a start that fails gets no key, and a log with events gets none beside a key file gone missing."""
    if keys.path.exists():
        if not keys.is_empty():
            return
    elif events:
        _refuse_missing_keys(keys, events)
    if not make_dir and not keys.path.parent.is_dir():
        # a directory given with --keys-file / QRISK_KEYS_FILE is never made: a mistyped one would hold
        # the only admin key, beside no data (DATA_DIR/keys.json's is the data directory, qrisk's own)
        raise UserError(f"密钥文件 {keys.path} 所在的目录不存在 / the directory of the key file {keys.path} does not exist "
                        "(--keys-file / QRISK_KEYS_FILE)")
    _create_first_admin(keys, "first start")


def _create_first_admin(keys, by: str) -> None:
    """The admin key ``first-admin``, printed once on stderr: by the first start of ``qrisk run``, and by
    ``qrisk demo --data-dir`` for the log it has just made (which ``qrisk run`` would refuse to serve
    without its key file)."""
    from qrisk.auth import cli_actor

    key, token = keys.create("admin", "first-admin", actor=f"{by} ({cli_actor()})")
    print("\n".join([
        "qrisk: 尚未配置任何 API 密钥：已创建管理员密钥，仅显示这一次，请立即保存 / no API key was configured: created an admin key. "
        "It is shown ONCE — store it now.",
        f"qrisk:   id {key.key_id}, name first-admin, role admin, expires {key.expires_at}, file {keys.path}",
        f"qrisk:   Authorization: Bearer {token}",
        f"qrisk: create further keys with `qrisk keys create --role ROLE --name NAME --keys-file {keys.path}` (see `qrisk keys --help`).",
    ]), file=sys.stderr, flush=True)


def _keystore(args: argparse.Namespace):
    from qrisk.auth import KeyStore

    return KeyStore(args.keys_file or args.data_dir / "keys.json")


def cmd_keys_create(args: argparse.Namespace) -> int:
    from qrisk.auth import cli_actor

    store = _keystore(args)
    if args.keys_file is not None and not store.path.parent.is_dir():
        # as `qrisk run` refuses it: a mistyped directory would hold an admin key no server ever reads
        raise UserError(f"密钥文件 {store.path} 所在的目录不存在 / the directory of the key file {store.path} does not exist "
                        "(--keys-file / QRISK_KEYS_FILE are never created)")
    try:
        key, token = store.create(args.role, args.name, source_id=args.source_id, towns=None if args.towns is None else args.towns.split(","),
                                  days=args.days, actor=cli_actor())
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    bound = f", posts as {key.source_id}" if key.source_id else ""
    towns = f", towns {', '.join(key.towns)}" if key.towns else ""
    print(f"qrisk: created key {key.key_id} ({key.name}, role {key.role}{bound}{towns}), expires {key.expires_at}; "
          f"the key is printed once, on stdout — store it now", file=sys.stderr)
    print(token)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from qrisk.auth import utc_now

    now = utc_now()
    path = args.keys_file or args.data_dir / "keys.json"
    if not Path(path).exists():
        # an empty table would read as "no keys" when the path is only mistyped
        raise UserError(f"no key file at {path} (is --data-dir / --keys-file right?)")
    keys = [k.public(now) for k in _keystore(args).keys()]
    if args.json:
        print(json.dumps(keys, ensure_ascii=False, indent=2))
        return 0
    from qrisk.cli_text import table

    rows = [["id", "name", "role", "status", "expires", "binding"]]
    for k in keys:
        binding = k["source_id"] or (("towns " + ",".join(k["towns"])) if k["towns"] else "")
        rows.append([k["key_id"], k["name"], k["role"], k["status"], k["expires_at"], binding])
    print("\n".join(table(rows, "<<<<<<")))
    return 0


def _width(text: str) -> int:  # (tests/test_operator_errors.py measures the table with it)
    from qrisk.cli_text import width

    return width(text)


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from qrisk.auth import cli_actor

    try:
        key = _keystore(args).revoke(args.key, actor=cli_actor())
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    print(f"qrisk: revoked key {key.key_id} ({key.name}, role {key.role}) at {key.revoked_at}", file=sys.stderr)
    return 0


def _commits_received_in_time(events: list, rules: Any, most: int = 500) -> list[list]:
    """The demo's events in commits, each received at its last event's time (a commit stamps one received_at):
    every event that decides an alert ends a commit, so it is received when it occurred.  A commit costs
    three store writes: one an event made the demo five times slower.  The events between decide no alert and
    are received at most alerts.live_within_hours after they occurred: a commit is cut before an event that
    would stretch it over more (a quiet month of seed 2025 held events received 1,222 h late, past the 720 h
    after which a step is history, not news)."""
    import datetime as dt

    from processors.credit_file import CountyState
    from processors.step import step
    from processors.warnings import ALERT_KIND

    live = dt.timedelta(hours=rules.policy.alerts.live_within_hours)
    state = CountyState()
    commits: list[list] = [[]]
    first = last = None  # the open commit's earliest and latest occurred_at
    for event in events:
        state, effects = step(state, event, rules)  # (the pipeline's own fold, run ahead: it is pure)
        if commits[-1] and max(last, event.occurred_at) - min(first, event.occurred_at) > live:
            commits.append([])
        if not commits[-1]:
            first = last = event.occurred_at
        first, last = min(first, event.occurred_at), max(last, event.occurred_at)
        commits[-1].append(event)
        if any(e.kind == ALERT_KIND for e in effects) or event.event_type == "alert.action" or len(commits[-1]) >= most:
            commits.append([])
    return [c for c in commits if c]


def cmd_demo(args: argparse.Namespace) -> int:
    from ingest.files import write_jsonl
    from qrisk.demo import CountyGenerator, render_text, summarise
    from qrisk.runtime import default_rules, open_embedded

    if args.data_dir is not None and args.data_dir.exists() and not args.data_dir.is_dir():
        raise UserError(f"--data-dir {args.data_dir} 是文件，不是目录：请给出新的或空的目录 / --data-dir {args.data_dir} is a file, "
                        "not a directory: give a new or empty directory")
    if args.data_dir is not None and args.data_dir.exists() and any(args.data_dir.iterdir()):
        # a second demo would be folded into the first: two counties' figures under one summary
        raise UserError(f"--data-dir {args.data_dir} 不是空目录：请给出新的或空的目录（演示从零构建一个县） / --data-dir {args.data_dir} "
                        "is not empty: give a new or empty directory (the demo builds a county from nothing)")
    generator = CountyGenerator(seed=args.seed)
    events = generator.generate()
    if args.events_out:
        write_jsonl(events, args.events_out)
    # received_at is stamped from this clock, which follows the events being committed: an event that decides
    # an alert is received at its own time, as a lab posting as it happens sends it, so the alert's response
    # clock starts when the event occurred, as `qrisk import` and `credit-file --events` start it (every event
    # received at the last one's time started every recent alert's clock at the demo's end).  Never the wall
    # clock, so a seed always gives the same data; before and after the events it reads the end, so the
    # pipeline's own intervals (credit-file and fold snapshots, measured from the opening) never fall due mid-demo.
    fixed = max(e.occurred_at for e in events)
    now = [fixed]
    commits = _commits_received_in_time(events, default_rules())
    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        tmp = tempfile.mkdtemp(prefix="qrisk-demo-")
        data_dir = Path(tmp)
    try:
        pipeline = open_embedded(data_dir, default_rules(), clock=lambda: now[0])
        effects: list = []
        pipeline.listeners.append(effects.extend)
        for batch in commits:
            now[0] = max(e.occurred_at for e in batch)
            pipeline.submit(batch)
        now[0] = fixed
        # the alerts the book let go (closed over alerts.closed_kept_days before) are read from the alerts table
        if not pipeline.wait_derived(600):
            raise UserError("演示的派生表未在 10 分钟内写完 / the demo's derived tables were not written within 10 minutes")
        summary = summarise(pipeline.state, events, effects, generator.period, pipeline.rules.policy.campaign, pipeline.alerts,
                            store=pipeline.store)
        pipeline.close()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    try:
        if args.json:
            # JSON is UTF-8 (RFC 8259) whatever the locale: the same seed, the same bytes
            text = json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
            raw = getattr(sys.stdout, "buffer", None)
            if raw is None:  # (a stream without bytes beneath: text is all it takes)
                sys.stdout.write(text)
            else:
                sys.stdout.flush()
                raw.write(text.encode("utf-8"))
        else:
            sys.stdout.write(render_text(summary))
            if args.data_dir:
                # a run's clock ticks to today within QRISK_TICK_SECONDS (600): whatever fell due since opens alerts
                sys.stdout.write(f"\n数据已保存在 {args.data_dir}；运行 `QRISK_TICK_SECONDS=0 qrisk run --data-dir {args.data_dir}` "
                                 "查看（停在演示的最后一天；不设 QRISK_TICK_SECONDS=0 时，服务的时钟在第一次报时后走到今天，"
                                 "其间到期未办的事项会产生新的预警）。\n")
        sys.stdout.flush()
    finally:
        if args.data_dir:
            # `qrisk run` makes no admin key beside a log that has events (a key file gone missing): the demo,
            # which has just made this log, makes its key, as a first start does, on stderr (stdout stays the
            # seed's bytes, or JSON) and after the summary, where a terminal leaves it in sight; made and shown
            # even when stdout's reader has gone (`| head`), or the data kept could not be served
            from qrisk.auth import KeyStore

            _create_first_admin(KeyStore(args.data_dir / "keys.json"), "qrisk demo")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ingest.files import count_records, read_events

    from ingest.mapping import KINDS as kinds
    if len(args.paths) == 2:
        kind, file = args.paths
        if kind not in kinds:
            raise UserError(f"KIND 应为 {'、'.join(kinds)} 之一，收到 {kind!r} / KIND must be one of {', '.join(kinds)}, got {kind!r}")
        if args.mapping is None:
            raise UserError(f"从其他系统的 CSV 导入 {kind} 需要 --mapping MAP.yaml（见 ingest/mappings/） / "
                            f"importing {kind} from another system's CSV needs --mapping MAP.yaml (see ingest/mappings/)")
        if args.url:
            raise UserError("--mapping 只导入 --data-dir；要发往服务，请先用 --events-out 写出映射后的事件，再以 --url 导入该文件 / "
                            "--mapping loads into --data-dir; to post mapped events to a server, write them with --events-out and import that file with --url")
        from qrisk import cli_risk

        if args.events_out is not None:
            if args.warnings_out is not None:
                # warnings are the catalogue's and the credit files' word on events loaded, which a dry run does not load
                raise UserError("--warnings-out 用于导入（--data-dir）；--events-out 只写出映射后的事件，可在导入该文件时给出 --warnings-out / "
                                "--warnings-out goes with a load (--data-dir); --events-out only writes the mapped events: "
                                "give --warnings-out when importing that file")
            return cli_risk.cmd_import_mapped(argparse.Namespace(kind=kind, file=Path(file), mapping=args.mapping, events_out=args.events_out))
        try:
            records = cli_risk.iter_mapped(kind, Path(file), args.mapping)
            columns, delimiter = cli_risk.mapped_header(Path(file), args.mapping)
            return _load_records(records, Path(file), None, args, columns, delimiter)
        except cli_risk.CliError as exc:
            raise UserError(str(exc)) from exc
    if len(args.paths) != 1:
        raise UserError("用法 / usage: qrisk import [KIND] FILE [--mapping MAP.yaml]")
    if args.mapping is not None:
        raise UserError(f"--mapping 需要给出行的种类 KIND / --mapping needs the KIND of rows: "
                        f"qrisk import {{{','.join(kinds)}}} {args.paths[0]} --mapping {args.mapping}")
    args.file = Path(args.paths[0])
    if not args.file.exists():
        raise UserError(f"{args.file}：文件不存在 / {args.file}: no such file")
    try:
        # the first pass reads every byte: a file not UTF-8 is refused here, before anything is loaded
        total = count_records(args.file)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if args.url:
        return _import_http(args, total)
    try:
        # (a CSV of events: its letters' previews read the payload column's JSON value by value)
        from ingest.files import CSV_COLUMNS
        columns = CSV_COLUMNS if args.file.suffix.lower() == ".csv" else None
        return _load_records(read_events(args.file), args.file, total, args, columns)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


WARNINGS_SHOWN = 20
"""Warnings an import prints on stderr, the first ones; the JSON summary (or --warnings-out) has them all."""


def _said(errors: list[dict[str, Any]]) -> str:
    """Reasons as the importer prints them: the field, then Chinese first, then English."""
    parts = []
    for e in errors:
        zh, en = e.get("reason_zh") or e.get("reason", ""), e.get("reason", "")
        named = e.get("field") and not zh.startswith(e["field"])  # (a mapping's reason begins with its field already)
        parts.append((f"{e['field']}: " if named else "") + (zh if zh == en or not en else f"{zh} / {en}"))
    return "；".join(parts)


class _ImportReport:
    """What an import tells the operator beyond its counts, by file:line: each record set aside and
    why, and each warning about an event it accepted but qrisk cannot fully judge (as POST /v1/events
    answers them: an unknown unit, an unregistered enterprise …).  Warnings are no errors: the exit
    code stays 0 for them; the summary counts them by code and lists them all (or --warnings-out does)."""

    def __init__(self, warnings_out: Path | None):
        self.count: dict[str, int] = {}
        self.details: list[dict[str, Any]] = []
        self.warnings_out = warnings_out
        self._out = None
        if warnings_out is not None:
            warnings_out.parent.mkdir(parents=True, exist_ok=True)
            self._out = open(warnings_out, "w", encoding="utf-8")  # written as they come: a long import holds none in memory

    def rejected(self, position: str, errors: list[dict[str, Any]], dead_letter: str | None = None) -> None:
        kept = f" (拒收记录 / dead letter {dead_letter})" if dead_letter else ""
        print(f"{position}: {_said(errors)}{kept}", file=sys.stderr)

    def warned(self, position: str, event_id: Any, warnings: list[dict[str, Any]]) -> None:
        for w in warnings:
            shown = sum(self.count.values())
            self.count[w["type"]] = self.count.get(w["type"], 0) + 1
            entry = {"position": position, "event_id": str(event_id), "field": w.get("field", ""), "type": w["type"],
                     "reason": w.get("reason", ""), "reason_zh": w.get("reason_zh", "")}
            if self._out is not None:
                self._out.write(json.dumps(entry, ensure_ascii=False) + "\n")
            else:
                self.details.append(entry)
            if shown < WARNINGS_SHOWN:
                print(f"{position}: 警告 / warning {w['type']}: {_said([w])}", file=sys.stderr)

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def summary(self, base: dict[str, Any]) -> dict[str, Any]:
        self.close()
        total = sum(self.count.values())
        if total:
            by_type = "、".join(f"{k} {n}" for k, n in sorted(self.count.items()))
            where_zh, where_en = ((f"全部见 {self.warnings_out}", f"all of them are in {self.warnings_out}") if self.warnings_out
                                  else ("全部见 JSON 摘要的 warning_details", "all of them are in the JSON summary's warning_details"))
            more_zh, more_en = (f"（仅显示前 {WARNINGS_SHOWN} 条）", f" (the first {WARNINGS_SHOWN} shown)") if total > WARNINGS_SHOWN else ("", "")
            print(f"qrisk: {total} 条警告{more_zh}：{by_type}；这些事件已接收，警告所指的项目将无法判定（或待企业登记后判定），{where_zh} / "
                  f"{total} warning(s){more_en}: {by_type.replace('、', ', ')}; the events are accepted, the items the warnings name "
                  f"left undetermined (or judged once the enterprise is registered); {where_en}", file=sys.stderr)
        if not total and self.warnings_out is None:
            return base  # (the summary's keys of old, for scripts that compare it whole)
        out: dict[str, Any] = {**base, "warnings": total, "warnings_by_type": dict(sorted(self.count.items()))}
        if self.warnings_out is not None:
            out["warnings_out"] = str(self.warnings_out)
        else:
            out["warning_details"] = self.details
        return out


def _event_warnings(pipeline: Any, event: Any) -> list[dict[str, Any]]:
    """The warnings POST /v1/events answers for an event accepted into an embedded pipeline (the same
    function words them: tests/test_import_feedback.py compares the two ways in)."""
    from ingest.lint import accepted_warnings

    return accepted_warnings(event, pipeline.rules.catalogue, pipeline.state.files.get(event.enterprise_id), pipeline.samples_elsewhere(event),
                             pipeline.rules.policy)


class _TimeOrder:
    """Records that occurred (``occurred_at``) before one read earlier in the file.  The fold takes events in
    the order they arrive, stamping what it decides at its own clock (a grade's move, the inspection it makes
    due, a quarter's fluctuation count): a history loaded newest month first gives other due dates and signals
    than the same history in time order.  Registrations are left out: they go first whatever their date."""

    def __init__(self) -> None:
        self.count = 0
        self._latest: Any = None
        self._latest_at: tuple[str, str] = ("", "")  # (position, occurred_at) of the latest read so far
        self.first: tuple[str, str, str, str] = ("", "", "", "")  # the first record before it, and that latest one

    def saw(self, position: str, event_type: Any, occurred_at: Any) -> None:
        if event_type == "enterprise.registered":
            return
        at = _instant(occurred_at)
        if at is None:
            return
        if self._latest is not None and at < self._latest:
            self.count += 1
            if not self.first[0]:
                self.first = (position, _shown(occurred_at), *self._latest_at)
        elif self._latest is None or at > self._latest:
            self._latest, self._latest_at = at, (position, _shown(occurred_at))

    def warn(self, over_http: bool = False) -> None:
        """``over_http``: the records went to a service (``--url``), which has no data directory to start afresh in."""
        if not self.count:
            return
        position, at, before, before_at = self.first
        again_zh, again_en = (("重新发送到一个新的（无历史数据的）服务", "re-send it to a fresh service (one holding no history)")
                              if over_http else ("导入到新的数据目录", "import it into a new data directory"))
        print(f"qrisk: 警告：{self.count} 条记录的发生时间（occurred_at）早于文件中在它之前的记录，第一条为 {position}（{at}，"
              f"早于 {before} 的 {before_at}）。qrisk 按到达顺序依次处理事件，不按时间顺序导入的历史，其检查到期日、质量波动信号和预警"
              f"会与按时间顺序导入时不同；请将文件按 occurred_at 升序排序（企业登记 enterprise.registered 放在最前）后，{again_zh} / "
              f"warning: {self.count} record(s) occurred (occurred_at) before a record read earlier in the file, the first at {position} "
              f"({at}, before {before_at} at {before}). qrisk folds events in the order they arrive: a history loaded out of time order "
              "gives other inspection due dates, quality fluctuation signals and alerts than the same history in time order; sort the "
              f"file by occurred_at, registrations (enterprise.registered) first, and {again_en}", file=sys.stderr)


def _instant(value: Any) -> Any:
    """``occurred_at`` as an aware datetime (a time without an offset taken as UTC, to compare at all); None when it is none."""
    from datetime import datetime, timezone

    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _shown(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _load_records(records, file: Path, total: int | None, args: argparse.Namespace,
                  columns: list[str] | None = None, delimiter: str = ",") -> int:
    """Validate and load ``(position, raw, document | error)`` records into the data directory, in
    batches, with a progress bar; every record that is not an event goes to dead letters with its reason.
    ``columns``, ``delimiter``: a CSV file's header, by which a letter's preview masks a caller's name."""
    from ingest.validate import Rejection, from_the_future, validate_document
    from qrisk.pipeline import DeadLetter, conflict_error, imported_letter
    from schemas.events import door
    from qrisk.runtime import default_rules, open_embedded

    from qrisk.store import StoreError, StoreInUse

    clickhouse_url = Settings().clickhouse_url
    try:
        pipeline = open_embedded(args.data_dir, default_rules(args.policy), clickhouse_url=clickhouse_url)
    except StoreInUse:
        # (the store's own words fit every command; only an import has a way in while the service runs)
        raise UserError(f"数据目录 {args.data_dir} 正被另一个进程（如 qrisk run）使用；向运行中的服务导入请用 --url，或先停止该服务 / "
                        f"the data directory {args.data_dir} is in use by another process (a running qrisk run?): "
                        "import into a running service with --url, or stop it first") from None
    except StoreError as exc:  # (a database migrated by a newer qrisk, a server away): one line, as `qrisk run` says it
        raise UserError(_store_failure(exc, clickhouse_url, args.data_dir)) from None
    bar = _progress("import", total)
    report = _ImportReport(getattr(args, "warnings_out", None))
    accepted = duplicates = rejected = 0
    order = _TimeOrder()
    batch: list = []
    origins: list[tuple[str, bytes]] = []  # (file:line, bytes) of each event in the batch
    letters: list[DeadLetter] = []

    def flush() -> None:
        nonlocal accepted, duplicates, rejected
        if batch:
            # each line its own request: an id reused for other content sets that line aside only
            outcomes = pipeline.submit(batch, [1] * len(batch))
            for o, event, (position, raw) in zip(outcomes, batch, origins):
                if o.status != "conflict":
                    # as the HTTP door answers, after the batch is in (a registration earlier in it counts),
                    # for a duplicate too: its first import may be the run whose output was lost
                    report.warned(position, o.event_id, _event_warnings(pipeline, event))
                    continue
                # kept aside with its file:line, as the HTTP door answers 409
                if o.seq is not None:
                    error = conflict_error(o.event_id, f"the event logged as seq {o.seq}", f"日志序号 {o.seq} 的事件")
                else:
                    error = conflict_error(o.event_id, "an earlier event of this file", "本文件中前面的事件")
                letters.append(imported_letter(position, raw, f"conflict: {error['reason']}", [error], {"event_id": o.event_id}, columns=columns, delimiter=delimiter))
                rejected += 1
                report.rejected(position, [error])
            origins.clear()
            accepted += sum(1 for o in outcomes if o.status == "accepted")
            duplicates += sum(1 for o in outcomes if o.status == "duplicate")
            bar(sum(1 for o in outcomes if o.status != "conflict"))  # (a conflict counts with its dead letter)
            batch.clear()
        if letters:
            pipeline.dead_letter(letters)
            bar(len(letters))
            letters.clear()

    stopped: Exception | None = None
    read = 0
    records = iter(records)
    try:
        while True:
            try:
                position, raw, doc = next(records)
            except StopIteration:
                break
            except Exception as exc:  # the file cannot be read on (a reader's file-level error, past its first rows)
                if not read:
                    raise
                # what was read before stays: the pending batch and letters go in, and the summary says what was written
                stopped = exc
                break
            read += 1
            if isinstance(doc, Exception):  # a line that is not JSON, a row the mapping cannot take
                # ingest.files.LineError and ingest.mapping.MappingError say which field and why, in both languages
                errors = [doc.error()] if callable(getattr(doc, "error", None)) else [
                    {"field": "", "type": "json_invalid", "reason": str(doc), "reason_zh": str(doc)}]
                letters.append(imported_letter(position, raw, Rejection(None, raw, errors).reason, errors, columns=columns, delimiter=delimiter))
                rejected += 1
                report.rejected(position, errors)
            else:
                result = validate_document(doc, None, raw, door(pipeline.rules.policy.utc_offset_hours))
                if not isinstance(result, Rejection):
                    # as at the HTTP door: a history may be old, not from the future
                    late = from_the_future([result], raw, pipeline.clock(), pipeline.rules.policy.utc_offset_hours)
                    result = late[0] if late else result
                if isinstance(result, Rejection):
                    letters.append(imported_letter(position, raw, result.reason, result.errors, doc, columns=columns, delimiter=delimiter))
                    rejected += 1
                    report.rejected(position, result.errors)
                else:
                    order.saw(position, result.event_type, result.occurred_at)
                    batch.append(result)
                    origins.append((position, raw))
            if len(batch) >= args.batch:
                flush()
        flush()
    finally:
        bar.close()
        pipeline.close()
        report.close()
    summary = {"file": str(file), "accepted": accepted, "duplicates": duplicates, "rejected": rejected, "out_of_order": order.count}
    order.warn()
    if stopped is not None:
        summary["stopped"] = str(stopped)  # the file was not read to its end: the error follows on stderr
    print(json.dumps(report.summary(summary), ensure_ascii=False))
    if stopped is not None:
        raise stopped
    return 0 if rejected == 0 else 1


def _lines_header(positions: list[str]) -> str:
    """``orders.jsonl:1-4,6,8-10`` for positions ``orders.jsonl:1`` … of one file: the header that has the
    service file each refused element of the batch under its line (POST /v1/events, x-qrisk-lines)."""
    names = {p.rpartition(":")[0] for p in positions}
    numbers = [p.rpartition(":")[2] for p in positions]
    if len(names) != 1 or not all(n.isascii() and n.isdigit() for n in numbers):
        return ""
    ranges: list[list[int]] = []
    for n in map(int, numbers):
        if ranges and n == ranges[-1][1] + 1:
            ranges[-1][1] = n
        else:
            ranges.append([n, n])
    return f"{names.pop()}:" + ",".join(f"{a}-{b}" if b > a else f"{a}" for a, b in ranges)


def _import_http(args: argparse.Namespace, total: int) -> int:
    import urllib.parse

    import httpx

    from ingest.files import LineError, read_events

    bar = _progress("import", total)
    report = _ImportReport(getattr(args, "warnings_out", None))
    accepted = duplicates = rejected = 0
    order = _TimeOrder()
    docs: list = []
    positions: list[str] = []  # file:line of each doc, for the server's answers

    def flush(client: httpx.Client) -> None:
        nonlocal accepted, duplicates, rejected
        if not docs:
            return
        lines = _lines_header(positions)
        resp = client.post("/v1/events", json=docs, headers={"x-qrisk-lines": urllib.parse.quote(lines)} if lines else None)
        if resp.status_code == 200:
            body = resp.json()
            accepted += body["accepted"]
            duplicates += body["duplicates"]
            # counted here, once the service took them, as `--data-dir` counts what passes the door: a refused record
            # is never folded, so it cannot be out of order (the same file gives the same summary either way)
            for position, doc in zip(positions, docs):
                if isinstance(doc, dict):
                    order.saw(position, doc.get("event_type"), doc.get("occurred_at"))
            # the answer's entries follow the batch's order; an accepted event the service cannot fully judge carries warnings
            for position, entry in zip(positions, body.get("events") or []):
                if isinstance(entry, dict) and entry.get("warnings"):
                    report.warned(position, entry.get("event_id"), entry["warnings"])
        elif resp.status_code in (403, 409, 422) and "errors" in resp.json():
            errors = resp.json()["errors"]
            if all(e.get("index") is None for e in errors):
                # about the request as a whole: a batch over the server's limit is sent again in batches it
                # takes (it kept this one as a dead letter); anything else would come back the same: stop
                limit = next((int(m.group(1)) for e in errors if e.get("type") == "batch_too_large"
                              and (m := re.search(r"at most (\d+)", e.get("reason", ""))) is not None), None)
                if limit is None or limit < 1:
                    raise UserError(f"{args.url} 拒绝了本批次 / {args.url} refused the batch: " + _said(errors))
                print(f"qrisk: 服务每个请求至多接受 {limit} 个事件，改为每批 {limit} 个发送 / "
                      f"the service takes at most {limit} events a request: sending batches of {limit}", file=sys.stderr)
                args.batch = limit
                pending, where = docs[:], positions[:]
                for start in range(0, len(pending), limit):
                    docs[:], positions[:] = pending[start:start + limit], where[start:start + limit]
                    flush(client)
                return
            # the server kept every bad (403: not this key's; 409: an id reused for other content) event
            # in dead letters; resend the good ones
            bad = {e["index"] for e in errors if e["index"] is not None}
            for e in errors:
                where = positions[e["index"]] if e["index"] is not None else "batch"
                report.rejected(where, [e], e.get("dead_letter_id"))
            rejected += len(bad)
            keep = [i for i in range(len(docs)) if i not in bad]
            docs[:] = [docs[i] for i in keep]
            positions[:] = [positions[i] for i in keep]
            if docs:
                flush(client)
                return
        else:
            raise UserError(_import_stopped(args.url, f"answered {resp.status_code}: {resp.text[:500]}", f"应答 {resp.status_code}",
                                            accepted, duplicates, rejected, again=resp.status_code >= 500))
        bar(len(docs))
        docs.clear()
        positions.clear()

    def unreadable(client: httpx.Client, position: str, raw: bytes, error: Any) -> None:
        # sent as it is, so that the service keeps it in its dead letters, with where it came from and
        # why it could not be read here, in each language: nothing is lost
        told, told_zh = (error.en, error.zh) if isinstance(error, LineError) else (str(error), str(error))
        resp = client.post("/v1/events", content=raw, headers={
            "content-type": "application/json", "x-qrisk-position": urllib.parse.quote(position),
            "x-qrisk-client-reason": urllib.parse.quote(told), "x-qrisk-client-reason-zh": urllib.parse.quote(told_zh)})
        kept = (resp.json().get("errors") or [{}])[0].get("dead_letter_id") if resp.status_code == 422 else None
        errors = [error.error()] if callable(getattr(error, "error", None)) else [{"field": "", "reason": str(error)}]
        if kept:
            report.rejected(position, errors, kept)
        else:
            print(f"{position}: {_said(errors)}（服务未保存：HTTP {resp.status_code} / not kept by the service: HTTP {resp.status_code}）",
                  file=sys.stderr)

    if not args.url.startswith(("http://", "https://")):
        raise UserError(f"--url {args.url}：请带上协议，如 http://{args.url} / --url {args.url}: give the scheme too, e.g. http://{args.url}")
    headers = {"authorization": f"Bearer {args.key}"} if args.key else {}
    try:
        with httpx.Client(base_url=args.url, timeout=120, headers=headers) as client:
            # batches the service takes, from its own word (a batch over its limit would be refused and kept
            # whole in its dead letters before being sent again in smaller ones)
            said = client.get("/v1/event-types").headers.get("x-qrisk-max-batch", "")
            if said.isdigit() and 0 < int(said) < args.batch:
                print(f"qrisk: 服务每个请求至多接受 {said} 个事件，按每批 {said} 个发送 / the service takes at most {said} events a "
                      f"request: sending batches of {said}", file=sys.stderr)
                args.batch = int(said)
            lines = read_events(args.file)
            while True:
                try:
                    position, raw, doc = next(lines)
                except StopIteration:
                    break
                except ValueError as exc:  # the file itself (a CSV without the envelope's columns)
                    raise UserError(str(exc)) from exc
                if isinstance(doc, LineError):
                    # the lines before it first: refusals are told (and kept) in the file's order
                    flush(client)
                    unreadable(client, position, raw, doc)
                    rejected += 1
                    continue
                docs.append(doc)
                positions.append(position)
                if len(docs) >= args.batch:
                    flush(client)
            flush(client)
    except httpx.TransportError as exc:
        bar.close()
        report.close()
        # what got in stays in: event ids make a second run of the same file add only the rest
        raise UserError(_import_stopped(args.url, f"{type(exc).__name__}: {exc or 'no answer'}", "连接中断",
                                        accepted, duplicates, rejected, again=True)) from None
    except UserError:
        bar.close()
        report.close()
        raise
    bar.close()
    order.warn(over_http=True)
    print(json.dumps(report.summary({"file": str(args.file), "accepted": accepted, "duplicates": duplicates, "rejected": rejected,
                                     "out_of_order": order.count}), ensure_ascii=False))
    return 0 if rejected == 0 else 1


def _import_stopped(url: str, what: str, what_zh: str, accepted: int, duplicates: int, rejected: int, again: bool) -> str:
    """Why an import over HTTP stopped, and how far it got: what got in stays in, and event ids make a
    second run of the same file add only the rest."""
    zh = f"导入中止：{url} {what_zh}；此前已接受 {accepted} 个，重复 {duplicates} 个，拒绝 {rejected} 个"
    en = f"{url}: {what}; before that: {accepted} accepted, {duplicates} duplicates, {rejected} rejected"
    if again:
        zh += "；服务恢复后再次运行同一导入即可（已导入的事件按重复应答）"
        en += " — run the same import again when the service is back (events already in are answered as duplicates)"
    return f"{zh} / {en}"


_QUERIES = re.compile(r"^\s*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXISTS|EXPLAIN)\b", re.IGNORECASE)
# comments and quoted text, which may say FORMAT without it being the query's (`-- then FORMAT CSV`)
_SQL_NOT_CODE = re.compile(r"--[^\n]*|#[^\n]*|/\*.*?(?:\*/|$)|'(?:[^'\\]|\\.)*(?:'|$)|\"(?:[^\"\\]|\\.)*(?:\"|$)"
                           r"|`(?:[^`\\]|\\.)*(?:`|$)", re.DOTALL)
_FORMAT_CLAUSE = re.compile(r"\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)(?=(?:\s+SETTINGS\b.*)?\s*;?\s*$)", re.IGNORECASE | re.DOTALL)
# words that follow a column or table named `format` (ORDER BY format DESC), never an output format's name …
_NOT_FORMAT_NAMES = frozenset("""ASC DESC ASCENDING DESCENDING NULLS FIRST LAST LIMIT OFFSET FETCH SETTINGS COLLATE WITH
    FINAL SAMPLE AS FROM WHERE PREWHERE GROUP ORDER BY HAVING UNION EXCEPT INTERSECT INTO JOIN ON USING AND OR NOT
    IS IN LIKE ILIKE BETWEEN TOTALS ROLLUP CUBE TIES FILL STEP TO""".split())
# … nor does one after these words, which take a column or table (SELECT x FROM format t, … ORDER BY format)
_BEFORE_A_NAME = frozenset("""AS BY FROM JOIN ON USING WHERE PREWHERE HAVING SELECT DISTINCT AND OR NOT IN IS LIKE ILIKE
    BETWEEN WHEN THEN ELSE CASE INTERVAL TABLE""".split())


def _output_format(statement: str) -> str | None:
    """The output format a query names at its end (``… FORMAT CSVWithNames``, optionally followed by SETTINGS …),
    None when it names none: ``-- then FORMAT CSV`` is a comment, ``ORDER BY format DESC`` a column."""
    code = _SQL_NOT_CODE.sub(lambda m: " " if m.group(0)[0] in "-#/" else " 0 ", statement)
    for clause in _FORMAT_CLAUSE.finditer(code):
        before = code[:clause.start()].rstrip()
        word = re.search(r"[A-Za-z_][A-Za-z0-9_]*$", before)
        if clause.group(1).upper() in _NOT_FORMAT_NAMES or not before or before[-1] in ",.(=<>+-*/%|[:?!" \
                or (word is not None and word.group(0).upper() in _BEFORE_A_NAME):
            continue
        return clause.group(1)
    return None


def cmd_sql(args: argparse.Namespace) -> int:
    """``qrisk sql``: the README's retention advice (``ALTER TABLE … DELETE``) for an embedded data
    directory, which no clickhouse-client can open."""
    from qrisk.runtime import open_target
    from qrisk.store import StoreError, StoreInUse

    try:
        store = open_target(args.data_dir, create=False)
    except StoreInUse:
        raise UserError(f"数据目录 {args.data_dir} 正被 qrisk run 使用：先停止服务 / {args.data_dir} is held by `qrisk run`: "
                        "stop the service first (one process holds a data directory)") from None
    try:
        named = _output_format(args.statement) if _QUERIES.match(args.statement) else None
        if named:
            out = store.formatted(args.statement, named)
            sys.stdout.flush()
            sys.stdout.buffer.write(out)
            sys.stdout.buffer.flush()
        elif _QUERIES.match(args.statement):
            try:
                rows = store.query(args.statement)
            except ValueError as exc:  # (a FORMAT this did not see: its text is not JSON rows)
                raise UserError(f"查询结果不是逐行 JSON（语句中的 FORMAT 须写在结尾，其后只可有 SETTINGS）/ the answer is not JSON "
                                f"rows ({type(exc).__name__}: {str(exc)[:200]}): a FORMAT clause must end the statement, "
                                "followed by SETTINGS … at most") from None
            for row in rows:
                print(json.dumps(row, ensure_ascii=False, default=str))
        else:
            # a mutation runs in the background: without this the process would exit before it finished
            store.command("SET mutations_sync = 2")
            store.command(args.statement)
            head = " ".join(args.statement.split()[:3])
            print(f"qrisk: 已执行 {head} … / done: {head} …", file=sys.stderr)
    except StoreError as exc:
        reason = (str(exc).strip().splitlines() or ["?"])[0][:500]
        raise UserError(f"SQL 执行失败 / the statement failed: {reason}") from None
    finally:
        store.close()
    return 0


def cmd_schema_export(args: argparse.Namespace) -> int:
    from schemas.export import export

    for path in export(args.directory):
        print(path)
    return 0


class _Progress:
    """Progress of a long replay or import: a bar on a terminal; in a log (systemd, docker, nohup),
    where a bar prints nothing, a plain line every ``every`` seconds and one at the end."""

    def __init__(self, what: str, total: int | None, every: float = 10.0, terminal: bool | None = None):
        import time

        self.what, self.total, self.every, self.done, self.lines = what, total, every, 0, 0
        self._clock = time.monotonic
        self.started = self.last = self._clock()
        self.bar = None
        if sys.stderr.isatty() if terminal is None else terminal:
            from tqdm import tqdm

            # (past the timestamps: a bar redraws its line with \r, a stamp would only break it)
            self.bar = tqdm(total=total, desc=what, unit="ev", file=getattr(sys.stderr, "raw", sys.stderr), leave=False)

    def __call__(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = self._clock()
        if now - self.last >= self.every:
            self.last = now
            self._line(now)

    def _line(self, now: float, end: str = "") -> None:
        of = f" of {self.total:,}" if self.total else ""
        rate = self.done / max(now - self.started, 1e-9)
        print(f"qrisk: {self.what}: {self.done:,}{of} events{end} ({rate:,.0f}/s)", file=sys.stderr, flush=True)
        self.lines += 1

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()  # (before the summary line: it must not share the bar's line)
            self.bar = None
        elif self.lines:  # a long run said how far it got: say it ended
            self._line(self._clock(), ", done")


def _progress(what: str, total: int | None) -> _Progress:
    return _Progress(what, total)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
