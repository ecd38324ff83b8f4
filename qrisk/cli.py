"""The ``qrisk`` command."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from qrisk.settings import Settings

EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"qrisk: {exc}", file=sys.stderr)
        return EXIT_USAGE


class UserError(Exception):
    """A mistake in how the command was called: message to stderr, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    settings = Settings()
    parser = argparse.ArgumentParser(prog="qrisk", description="食品质量风险监测 — event-sourced quality-risk monitoring for food-safety supervisors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="serve the HTTP API with the embedded pipeline (no servers needed)")
    run.add_argument("--host", default=settings.host)
    run.add_argument("--port", type=int, default=settings.port)
    run.add_argument("--data-dir", type=Path, default=settings.data_dir, help="chdb data directory (default %(default)s)")
    run.add_argument("--policy", type=Path, default=settings.policy_file, help="policy YAML (default: the built-in policy)")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="build a realistic county, run it through the pipeline, print a summary")
    demo.add_argument("--seed", type=int, default=2025)
    demo.add_argument("--data-dir", type=Path, default=None, help="keep the data here for a later `qrisk run` (default: a temporary directory)")
    demo.add_argument("--events-out", type=Path, default=None, help="also write the generated events as JSONL")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.set_defaults(func=cmd_demo)

    imp = sub.add_parser("import", help="load events from a JSONL or CSV file")
    imp.add_argument("file", type=Path)
    imp.add_argument("--data-dir", type=Path, default=settings.data_dir)
    imp.add_argument("--url", default=None, help="post to a running `qrisk run` instead of opening the data directory")
    imp.add_argument("--batch", type=int, default=500)
    imp.add_argument("--policy", type=Path, default=settings.policy_file)
    imp.set_defaults(func=cmd_import)

    schema = sub.add_parser("schema", help="the event contract")
    schema_sub = schema.add_subparsers(dest="schema_command", metavar="ACTION")
    export = schema_sub.add_parser("export", help="write JSON Schema files for lab integrators")
    export.add_argument("directory", type=Path)
    export.set_defaults(func=cmd_schema_export)

    credit = sub.add_parser("credit-file", help="print one enterprise's credit file from a data directory")
    credit.add_argument("enterprise_id")
    credit.add_argument("--data-dir", type=Path, default=settings.data_dir)
    credit.set_defaults(func=cmd_credit_file)

    try:
        from qrisk import cli_spc
    except ImportError:  # pragma: no cover - the SPC command is optional in a partial checkout
        cli_spc = None
    if cli_spc is not None:
        cli_spc.register(sub)
    return parser


# --------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace) -> int:
    import uvicorn

    from qrisk.api import create_app
    from qrisk.runtime import default_rules, open_embedded

    settings = Settings()
    rules = default_rules(args.policy)
    print(f"qrisk: opening {args.data_dir} and replaying the event log …", file=sys.stderr)
    pipeline = open_embedded(args.data_dir, rules, progress=_progress("replay", None))
    print(f"qrisk: {pipeline.seq} events, {len(pipeline.state.files)} enterprises; serving on http://{args.host}:{args.port}", file=sys.stderr)
    app = create_app(pipeline, settings.max_body_bytes, settings.max_batch)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ingest.files import write_jsonl
    from qrisk.demo import CountyGenerator, render_text, summarise
    from qrisk.runtime import default_rules, open_embedded

    generator = CountyGenerator(seed=args.seed)
    events = generator.generate()
    if args.events_out:
        write_jsonl(events, args.events_out)
    # received_at is stamped from this clock: fixed, so a seed always gives the same data
    fixed = max(e.occurred_at for e in events)
    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        tmp = tempfile.mkdtemp(prefix="qrisk-demo-")
        data_dir = Path(tmp)
    try:
        pipeline = open_embedded(data_dir, default_rules(), clock=lambda: fixed)
        effects: list = []
        pipeline.listeners.append(effects.extend)
        for start in range(0, len(events), 500):
            pipeline.submit(events[start:start + 500])
        summary = summarise(pipeline.state, events, effects, generator.period)
        pipeline.close()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        sys.stdout.write(json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(render_text(summary))
        if args.data_dir:
            sys.stdout.write(f"\n数据已保存在 {args.data_dir}；运行 `qrisk run --data-dir {args.data_dir}` 查看。\n")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ingest.files import count_records, read_events

    if not args.file.exists():
        raise UserError(f"{args.file}: no such file")
    total = count_records(args.file)
    if args.url:
        return _import_http(args, total)

    from ingest.files import LineError
    from ingest.validate import Rejection, validate_document
    from qrisk.pipeline import DeadLetter
    from qrisk.runtime import default_rules, open_embedded

    pipeline = open_embedded(args.data_dir, default_rules(args.policy))
    bar = _progress("import", total)
    accepted = duplicates = rejected = 0
    batch: list = []
    letters: list[DeadLetter] = []

    def flush() -> None:
        nonlocal accepted, duplicates
        if batch:
            outcomes = pipeline.submit(batch)
            accepted += sum(1 for o in outcomes if o.status == "accepted")
            duplicates += sum(1 for o in outcomes if o.status == "duplicate")
            bar(len(batch))
            batch.clear()
        if letters:
            pipeline.dead_letter(letters)
            bar(len(letters))
            letters.clear()

    try:
        for position, raw, doc in read_events(args.file):
            if isinstance(doc, LineError):
                letters.append(DeadLetter("import", position, raw, str(doc), [{"field": "", "type": "json_invalid", "reason": str(doc)}]))
                rejected += 1
                print(f"{position}: {doc}", file=sys.stderr)
            else:
                result = validate_document(doc, None, raw)
                if isinstance(result, Rejection):
                    letters.append(DeadLetter("import", position, raw, result.reason, result.errors))
                    rejected += 1
                    print(f"{position}: {result.reason}", file=sys.stderr)
                else:
                    batch.append(result)
            if len(batch) >= args.batch:
                flush()
        flush()
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    finally:
        pipeline.close()
    print(json.dumps({"file": str(args.file), "accepted": accepted, "duplicates": duplicates, "rejected": rejected}, ensure_ascii=False))
    return 0 if rejected == 0 else 1


def _import_http(args: argparse.Namespace, total: int) -> int:
    import httpx

    from ingest.files import LineError, read_events

    bar = _progress("import", total)
    accepted = duplicates = rejected = 0
    docs: list = []

    def flush(client: httpx.Client) -> None:
        nonlocal accepted, duplicates, rejected
        if not docs:
            return
        resp = client.post("/v1/events", json=docs)
        if resp.status_code == 200:
            body = resp.json()
            accepted += body["accepted"]
            duplicates += body["duplicates"]
        elif resp.status_code == 422:
            # the server kept every bad event in dead letters; resend the good ones
            bad = {e["index"] for e in resp.json()["errors"] if e["index"] is not None}
            for e in resp.json()["errors"]:
                print(f"batch index {e['index']}: {e['field']}: {e['reason']}", file=sys.stderr)
            rejected += len(bad)
            good = [d for i, d in enumerate(docs) if i not in bad]
            docs[:] = good
            if good:
                flush(client)
                return
        else:
            raise UserError(f"{args.url} answered {resp.status_code}: {resp.text[:500]}")
        bar(len(docs))
        docs.clear()

    with httpx.Client(base_url=args.url, timeout=120) as client:
        for position, raw, doc in read_events(args.file):
            if isinstance(doc, LineError):
                print(f"{position}: {doc}", file=sys.stderr)
                rejected += 1
                continue
            docs.append(doc)
            if len(docs) >= args.batch:
                flush(client)
        flush(client)
    print(json.dumps({"file": str(args.file), "accepted": accepted, "duplicates": duplicates, "rejected": rejected}, ensure_ascii=False))
    return 0 if rejected == 0 else 1


def cmd_schema_export(args: argparse.Namespace) -> int:
    from schemas.export import export

    for path in export(args.directory):
        print(path)
    return 0


def cmd_credit_file(args: argparse.Namespace) -> int:
    from qrisk.runtime import default_rules, open_embedded

    pipeline = open_embedded(args.data_dir, default_rules())
    try:
        file = pipeline.credit_file(args.enterprise_id)
    finally:
        pipeline.close()
    if file is None:
        raise UserError(f"未找到企业 {args.enterprise_id} / no such enterprise in {args.data_dir}")
    print(json.dumps(file, ensure_ascii=False, indent=2))
    return 0


def _progress(what: str, total: int | None):
    from tqdm import tqdm

    bar = tqdm(total=total, desc=what, unit="ev", file=sys.stderr, disable=None, leave=False)
    return bar.update


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
