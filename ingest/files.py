"""Event files: JSONL (one event per line), JSON (one event or an array of them, as
``POST /v1/events`` takes) and CSV (envelope columns + a JSON payload column).

Readers yield ``(position, raw_bytes, document_or_error)`` so that a bad line is
reported with its line number and kept byte for byte in dead letters.
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any, Iterator

from ingest.validate import element_bytes, load_json

CSV_COLUMNS = ["event_id", "event_type", "schema_version", "enterprise_id", "occurred_at", "source_kind", "source_id", "source_name", "payload"]


class LineError(ValueError):
    pass


def read_events(path: str | Path) -> Iterator[tuple[str, bytes, Any]]:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        yield from _read_jsonl(path)
    elif suffix == ".json":
        yield from _read_json(path)
    elif suffix == ".csv":
        yield from _read_csv(path)
    else:
        raise ValueError(f"{path}: unknown file type {suffix!r} (use .jsonl, .json or .csv)")


def count_records(path: str | Path) -> int:
    if Path(path).suffix.lower() == ".json":
        doc = _json_document(Path(path))
        if doc is not None:
            return len(doc) if isinstance(doc, list) else 1
    with open(path, "rb") as fh:
        n = sum(1 for line in fh if line.strip())
    return n - 1 if Path(path).suffix.lower() == ".csv" and n else n


def _read_jsonl(path: Path) -> Iterator[tuple[str, bytes, Any]]:
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            raw = line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            position = f"{path.name}:{lineno}"
            try:
                yield position, raw, load_json(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                yield position, raw, LineError(f"line is not valid JSON: {exc}")
            except RecursionError:
                yield position, raw, LineError("line is not valid JSON: nested too deeply")


def _json_document(path: Path) -> Any:
    """A .json file as one document (an event, an array of events, or {"events": [...]}); None
    when it is not one (JSON Lines under a .json name)."""
    try:
        doc = load_json(path.read_bytes())
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return doc["events"] if isinstance(doc, dict) and set(doc) == {"events"} else doc


def _read_json(path: Path) -> Iterator[tuple[str, bytes, Any]]:
    # what a lab exports, and what POST /v1/events takes: the golden examples are such files
    doc = _json_document(path)
    if doc is None:
        yield from _read_jsonl(path)
    elif isinstance(doc, list):
        for i, item in enumerate(doc):
            yield f"{path.name}[{i}]", element_bytes(item), item
    else:
        yield path.name, path.read_bytes(), doc


def _read_csv(path: Path) -> Iterator[tuple[str, bytes, Any]]:
    # surrogateescape: a line that is not UTF-8 becomes one bad record (kept byte for byte), not an abort
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.DictReader(fh)
        try:
            fieldnames = reader.fieldnames or []
        except csv.Error as exc:
            fieldnames, unreadable = [], f" (header unreadable: {exc})"
        else:
            unreadable = ""
        missing = [c for c in ("event_id", "event_type", "enterprise_id", "occurred_at", "source_kind", "source_id", "payload") if c not in fieldnames]
        if missing:
            raise ValueError(f"{path}: CSV lacks column(s) {', '.join(missing)}; expected {', '.join(CSV_COLUMNS)}{unreadable}")
        # as in the events themselves, an unknown field is refused: a misspelt column would
        # otherwise be dropped silently from every row
        extra = [c for c in fieldnames if c not in CSV_COLUMNS]
        if extra:
            raise ValueError(f"{path}: CSV has unknown column(s) {', '.join(repr(c) for c in extra)}; the columns are {', '.join(CSV_COLUMNS)} "
                             f"(payload fields go inside the JSON payload column)")
        last_error_at = -1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # e.g. a field over the csv module's size limit
                position = f"{path.name}:{reader.line_num}"
                if reader.line_num == last_error_at:
                    return  # the reader cannot move on
                last_error_at = reader.line_num
                yield position, b"", LineError(f"CSV record unreadable: {exc}")
                continue
            position = f"{path.name}:{reader.line_num}"
            raw = _row_bytes(row)
            if any(_SURROGATE.search(v) for v in row.values() if isinstance(v, str)):
                yield position, raw, LineError("record is not valid UTF-8")
                continue
            try:
                yield position, raw, _row_document(row)
            except ValueError as exc:
                yield position, raw, LineError(str(exc))


_SURROGATE = re.compile("[\udc80-\udcff]")


def _row_bytes(row: dict[str, Any]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerow([row.get(c, "") for c in CSV_COLUMNS])
    return buf.getvalue().rstrip("\r\n").encode("utf-8", "surrogateescape")


def _row_document(row: dict[str, Any]) -> dict[str, Any]:
    try:
        payload = load_json((row.get("payload") or "{}").encode("utf-8"))
    except ValueError as exc:
        raise ValueError(f"column payload is not valid JSON: {exc}") from exc
    version = row.get("schema_version") or "2"
    if not version.isdigit():
        raise ValueError(f"column schema_version must be an integer, got {version!r}")
    source: dict[str, Any] = {"kind": row.get("source_kind"), "id": row.get("source_id")}
    if row.get("source_name"):
        source["name"] = row["source_name"]
    return {
        "event_id": row.get("event_id"), "event_type": row.get("event_type"), "schema_version": int(version),
        "enterprise_id": row.get("enterprise_id"), "occurred_at": row.get("occurred_at"),
        "source": source, "payload": payload,
    }


def write_jsonl(events, path: str | Path) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for event in events:
            fh.write(event.model_dump_json(exclude_none=True) + "\n")
            n += 1
    return n
