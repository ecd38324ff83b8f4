"""Event files: JSONL (one event per line), JSON (one event or an array of them, as
``POST /v1/events`` takes) and CSV (envelope columns + a JSON payload column).

Readers yield ``(position, raw_bytes, document_or_error)`` so that a bad line is
reported with its line number and kept byte for byte in dead letters.  An error (``LineError``)
says why in Chinese and English and names the field (the CSV column) it is about; a file that
cannot be read at all raises ValueError, its message in Chinese and English.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any, Iterator

from ingest.validate import DUPLICATE_KEY_EN, DUPLICATE_KEY_ZH, dotted, element_bytes, json_invalid_zh
from schemas.upcast import DuplicateKeys, load_json_once

CSV_COLUMNS = ["event_id", "event_type", "schema_version", "enterprise_id", "occurred_at", "source_kind", "source_id", "source_name", "payload"]


class LineError(ValueError):
    """A record that is no event document: ``en``, ``zh`` say why, ``field`` names the field (the CSV
    column) when one is to blame, ``type`` is the error code a dead letter lists (as the HTTP door's:
    json_invalid, body_encoding …).  ``str()`` is both reasons, Chinese first."""

    def __init__(self, en: str, zh: str, field: str = "", type: str = "json_invalid"):
        super().__init__(f"{zh} / {en}")
        self.en, self.zh, self.field, self.type = en, zh, field, type

    def error(self) -> dict[str, Any]:
        return {"field": self.field, "type": self.type, "reason": self.en, "reason_zh": self.zh}


def _not_utf8(what_en: str, what_zh: str, raw: bytes, field: str = "") -> LineError:
    """Bytes that are not UTF-8: the HTTP door's hint (a GBK export), and the way out when they read as GB18030."""
    en, zh = f"{what_en} is not valid UTF-8", f"{what_zh}不是 UTF-8 编码（例如按 GBK 保存）"
    try:
        raw.decode("gb18030")
    except UnicodeDecodeError:
        return LineError(f"{en}: save the file as UTF-8", f"{zh}；请以 UTF-8 编码保存文件", field, "body_encoding")
    return LineError(f"{en}; it reads as GBK/GB18030: convert the file to UTF-8 first (e.g. iconv -f GB18030 -t UTF-8)",
                     f"{zh}，按 GBK/GB18030 可以读出：请先把文件转换为 UTF-8（如 iconv -f GB18030 -t UTF-8）再导入", field, "body_encoding")


RECORD_HEAD_KEPT = 64 * 1024
"""What the dead letter of a CSV record the csv module refuses keeps of its lines, as the HTTP door keeps the
head of a body too large: an unclosed quote takes lines until a cell passes 131,072 characters, or the file ends."""


class CsvLines:
    """A CSV file's lines as the csv module reads them, counted.  ``csv.DictReader.line_num`` moves with
    the records it returns only: a record it refuses (a cell over the csv module's size limit, a quote
    never closed that took the lines after it) was told at the record before it, with no bytes, and a
    second refused in a row looked like a reader that could not go on.  Here the lines taken since the last
    record are the refused one's: its position and its bytes."""

    def __init__(self, fh: Any):
        self._fh = fh
        self.line = 0  # lines read so far
        self._since: list[str] = []  # the lines read since the last record the reader returned

    def __iter__(self) -> "CsvLines":
        return self

    def __next__(self) -> str:
        text = next(self._fh)
        self.line += 1
        self._since.append(text)
        return text

    def record_read(self) -> None:
        self._since.clear()

    def span(self, name: str) -> str:
        """``file:3`` or ``file:382-386``: the lines of the record just read, as a refused one is named (a cell
        with line breaks makes one record of several lines; ``line_num`` is its last, a closing ``}"``)."""
        last = self.line
        first = last - len(self._since) + 1
        for text in self._since[:-1]:
            if text.strip("\r\n"):
                break
            first += 1  # (blank lines before it)
        return f"{name}:{first}-{last}" if last > first else f"{name}:{last}"

    def refused(self, name: str, exc: Exception) -> tuple[str, bytes, str, str] | None:
        """``(position, raw, en, zh)`` of the record the reader refused: the lines it took (``file:4``,
        ``file:3-1250``, blank lines before it aside), at most ``RECORD_HEAD_KEPT`` of their bytes; None when
        it took no line, so that it would refuse the same again: the file cannot be read on."""
        taken, self._since = self._since, []
        if not taken:
            return None
        last = self.line
        first = last - len(taken) + 1
        while first < last and not taken[0].strip("\r\n"):
            taken.pop(0)  # (csv.DictReader passes blank lines by)
            first += 1
        # surrogateescape: bytes that did not decode come back as they were in the file
        raw = "".join(taken).rstrip("\r\n").encode("utf-8", "surrogateescape")
        said = str(exc)
        if said.startswith("field larger than field limit"):
            said = f"单元格超过 {csv.field_size_limit()} 个字符的上限"
        en, zh = f"CSV record unreadable: {exc}", f"CSV 记录无法读取：{said}"
        if last > first:
            en += f"; it runs over lines {first}-{last}: a quote (\") opened in a cell and not closed?"
            zh += f"；该记录跨第 {first}–{last} 行：某个单元格中的引号（\"）没有闭合？"
        if len(raw) > RECORD_HEAD_KEPT:
            digest, size = hashlib.sha256(raw).hexdigest(), len(raw)
            raw = _utf8_head(raw[:RECORD_HEAD_KEPT])
            en += f" (only the first {len(raw)} of its {size} bytes are kept, sha256 {digest})"
            zh += f"（仅保留其 {size} 字节中的前 {len(raw)} 字节，sha256 {digest}）"
        return f"{name}:{first}-{last}" if last > first else f"{name}:{last}", raw, en, zh


def _utf8_head(head: bytes) -> bytes:
    """``head`` without a UTF-8 character cut at its end (the letter then keeps text); as it is when it is no UTF-8 anyway."""
    for cut in range(4):
        try:
            (head[:len(head) - cut] if cut else head).decode("utf-8")
        except UnicodeDecodeError:
            continue
        return head[:len(head) - cut] if cut else head
    return head


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
        raise ValueError(f"{path}：无法识别的文件类型 {suffix!r}（应为 .jsonl、.json 或 .csv） / {path}: unknown file type {suffix!r} (use .jsonl, .json or .csv)")


def count_records(path: str | Path) -> int:
    """The records in ``path``, for the progress bar: CSV records as the csv module reads them (a cell with
    line breaks is one record over several lines).  A file that is not UTF-8 throughout raises ValueError
    before anything is loaded: refused line by line, a GBK export loaded only its ASCII-only rows."""
    path = Path(path)
    _refuse_not_utf8(path)
    if path.suffix.lower() == ".json":
        doc = _json_document(path)
        if doc is not None:
            return len(doc) if isinstance(doc, list) else 1
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as fh:
            lines = CsvLines(fh)
            reader = csv.reader(lines)
            n = 0
            while True:
                before = lines.line
                try:
                    cells = next(reader)
                except StopIteration:
                    break
                except csv.Error:
                    if lines.line == before:
                        break  # (the import says why the reader could not go on)
                    n += 1
                    continue
                finally:
                    lines.record_read()
                n += any(c.strip() for c in cells)
        return max(n - 1, 0)  # (the header)
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


SHOWN_AROUND_BAD_BYTES = 30
"""Characters shown either side of the first bytes that are not UTF-8, so that the line can be found and fixed."""


def _bad_bytes_shown(line: bytes, error: UnicodeDecodeError) -> str:
    """Where in ``line`` the bytes that are not UTF-8 are, escaped (``Storage 4\\xb0C``) with some text either side."""
    head = line[:error.start].decode("utf-8", errors="backslashreplace")
    rest = line[error.start:].rstrip(b"\r\n").decode("utf-8", errors="backslashreplace")
    tail = SHOWN_AROUND_BAD_BYTES + 4 * (error.end - error.start)  # (each byte shown as \xNN)
    return (("…" if len(head) > SHOWN_AROUND_BAD_BYTES else "") + head[-SHOWN_AROUND_BAD_BYTES:]
            + rest[:tail] + ("…" if len(rest) > tail else ""))


def _refuse_not_utf8(path: Path) -> None:
    """Raise ValueError naming the lines that are not UTF-8, with the way out.  The advice to convert from GB18030 is
    given only when the file as a whole reads so: every line that is not UTF-8 reads as GB18030, and no line with
    bytes beyond ASCII reads as UTF-8.  A UTF-8 file with one stray byte (a Latin-1 ``°`` pasted into one row) reads
    as GB18030 too, and converting it would turn every other line's Chinese into mojibake that then imports cleanly:
    it is told the line and the bytes to fix instead."""
    bad: list[int] = []
    shown, gb18030, utf8_beyond_ascii = "", True, False
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad.append(lineno)
                shown = shown or _bad_bytes_shown(line, exc)
                if gb18030:
                    try:
                        line.decode("gb18030")
                    except UnicodeDecodeError:
                        gb18030 = False
            else:
                utf8_beyond_ascii = utf8_beyond_ascii or not line.isascii()
    if not bad:
        return
    first = bad[0]
    if utf8_beyond_ascii:
        listed = "、".join(map(str, bad[:10])) + (f" 等 {len(bad)}" if len(bad) > 10 else "")
        listed_en = ", ".join(map(str, bad[:10])) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        zh = (f"{path}：文件是 UTF-8 编码，但第 {listed} 行含有不是 UTF-8 的字节（第 {first} 行：{shown}），整个文件未导入。"
              f"请改正这些行中显示为 \\xNN 的字符（按 UTF-8 重新输入）后再导入；不要转换整个文件的编码，否则其余各行的中文会变成乱码")
        en = (f"{path}: the file is UTF-8 but line(s) {listed_en} hold bytes that are not UTF-8 (line {first}: {shown}); nothing "
              "was imported. Fix the characters shown as \\xNN on those lines (type them again as UTF-8) and import it again; do "
              "not convert the whole file's encoding, which would garble the Chinese of every other line")
        raise ValueError(f"{zh} / {en}")
    zh = f"{path}：文件不是 UTF-8 编码，共 {len(bad)} 行无法按 UTF-8 读取（第一处在第 {first} 行），整个文件未导入"
    en = f"{path}: the file is not UTF-8 ({len(bad)} line(s) cannot be read as UTF-8, the first at line {first}); nothing was imported"
    if gb18030:
        zh += ("。该文件按 GBK/GB18030 可以读出（中文 Windows 上 Excel 另存为“CSV (逗号分隔)”即为此编码）：请先转换为 UTF-8，"
               "如 iconv -f GB18030 -t UTF-8 原文件 > 新文件，或在 Excel 中另存为“CSV UTF-8 (逗号分隔)”，再导入")
        en += ("; it reads as GBK/GB18030 (Excel's \"CSV (Comma delimited)\" on a Chinese Windows): convert it to UTF-8 first, "
               "e.g. iconv -f GB18030 -t UTF-8 FILE > NEW, or save it from Excel as \"CSV UTF-8 (Comma delimited)\"")
    else:
        zh += "。请以 UTF-8 编码保存文件后再导入"
        en += ": save the file as UTF-8 and import it again"
    raise ValueError(f"{zh} / {en}")


def _twice(paths: list[tuple[str | int, ...]], prefix: tuple[str | int, ...] = ()) -> LineError:
    """The record's keys given twice in one object (``schemas.upcast.load_json_once``): the first names the field."""
    shown = ", ".join(dotted(prefix + p) for p in paths)
    return LineError(f"{DUPLICATE_KEY_EN} ({shown})", f"{DUPLICATE_KEY_ZH}（{shown}）", dotted(prefix + paths[0]), "duplicate_key")


def _read_jsonl(path: Path) -> Iterator[tuple[str, bytes, Any]]:
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            raw = line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            position = f"{path.name}:{lineno}"
            try:
                yield position, raw, load_json_once(raw)
            except DuplicateKeys as exc:
                yield position, raw, _twice(exc.paths)
            except UnicodeDecodeError:
                yield position, raw, _not_utf8("line", "该行", raw)
            except ValueError as exc:
                yield position, raw, LineError(f"line is not valid JSON: {exc}", "该行" + json_invalid_zh(exc, one_line=True))
            except RecursionError:
                yield position, raw, LineError("line is not valid JSON: nested too deeply", "该行不是合法的 JSON：嵌套过深", type="recursion_loop")


def _json_document(path: Path, twice: list[tuple[str | int, ...]] | None = None) -> Any:
    """A .json file as one document (an event, an array of events, or {"events": [...]}); None
    when it is not one (JSON Lines under a .json name).  ``twice`` gets the paths of keys given
    twice in one object, relative to what is returned."""
    try:
        doc = load_json_once(path.read_bytes())
        paths: list[tuple[str | int, ...]] = []
    except DuplicateKeys as exc:
        doc, paths = exc.doc, exc.paths
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if isinstance(doc, dict) and set(doc) == {"events"} and ("events",) not in paths:
        doc, paths = doc["events"], [p[1:] for p in paths]
    if twice is not None:
        twice.extend(paths)
    return doc


def _read_json(path: Path) -> Iterator[tuple[str, bytes, Any]]:
    # what a lab exports, and what POST /v1/events takes: the golden examples are such files
    twice: list[tuple[str | int, ...]] = []
    doc = _json_document(path, twice)
    if doc is None:
        yield from _read_jsonl(path)
    elif isinstance(doc, list) and all(p and isinstance(p[0], int) for p in twice):
        for i, item in enumerate(doc):
            mine = [p[1:] for p in twice if p[0] == i]
            yield f"{path.name}[{i}]", element_bytes(item), (_twice(mine) if mine else item)
    else:
        yield path.name, path.read_bytes(), (_twice(twice) if twice else doc)


def _read_csv(path: Path) -> Iterator[tuple[str, bytes, Any]]:
    # surrogateescape: a line that is not UTF-8 becomes one bad record (kept byte for byte), not an abort
    # (`qrisk import` refuses such a file whole before reading it here: count_records)
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        lines = CsvLines(fh)
        reader = csv.reader(lines)
        header: list[str] = []
        unreadable = ""
        try:
            while not header:  # (blank lines before it, as csv.DictReader passes them)
                header = next(reader)
        except StopIteration:
            pass
        except csv.Error as exc:
            header, unreadable = [], f" (header unreadable: {exc})"
        fieldnames = [c.strip() if not c.strip() else c for c in header]
        missing = [c for c in ("event_id", "event_type", "enterprise_id", "occurred_at", "source_kind", "source_id", "payload") if c not in fieldnames]
        if missing:
            unreadable_zh = f"（表头无法读取：{unreadable[len(' (header unreadable: '):-1]}）" if unreadable else ""
            raise ValueError(f"{path}：CSV 缺少列 {'、'.join(missing)}；应有的列为 {'、'.join(CSV_COLUMNS)}{unreadable_zh} / "
                             f"{path}: CSV lacks column(s) {', '.join(missing)}; expected {', '.join(CSV_COLUMNS)}{unreadable}")
        # as in the events themselves, an unknown field is refused: a misspelt column would
        # otherwise be dropped silently from every row.  A column with no name is no field: Excel leaves
        # one after a column used and cleared; a value in it is refused row by row below
        extra = [c for c in fieldnames if c and c not in CSV_COLUMNS]
        if extra:
            raise ValueError(f"{path}：CSV 含未知列 {'、'.join(repr(c) for c in extra)}；列应为 {'、'.join(CSV_COLUMNS)}（payload 的字段写在 JSON 格式的 payload 列中） / "
                             f"{path}: CSV has unknown column(s) {', '.join(repr(c) for c in extra)}; the columns are {', '.join(CSV_COLUMNS)} "
                             f"(payload fields go inside the JSON payload column)")
        named = [i for i, c in enumerate(fieldnames) if c]
        lines.record_read()
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # a cell over the csv module's size limit, a quote not closed
                refused = lines.refused(path.name, exc)
                if refused is None:
                    # ending here would drop every later row unsaid: the import stops, and says so
                    raise ValueError(f"{path}：第 {lines.line} 行之后的内容无法按 CSV 读取（{exc}） / "
                                     f"{path}: unreadable as CSV after line {lines.line} ({exc})") from exc
                position, raw, en, zh = refused
                yield position, raw, LineError(en, zh, type="csv_invalid")
                continue
            position = lines.span(path.name)
            lines.record_read()
            if not any(c.strip() for c in cells):
                continue  # (a blank line, or a row Excel left of commas only)
            row = {fieldnames[i]: cells[i] for i in named if i < len(cells)}
            # cells under no name: past the header's columns, or under a column whose name is blank
            unnamed = [(i, c) for i, c in enumerate(cells) if i >= len(fieldnames) or not fieldnames[i]]
            said = [(i, c) for i, c in unnamed if c.strip()]
            raw = _row_bytes(row, [c for _, c in said])
            if said:
                yield position, raw, _unnamed_cells(row, said, len(fieldnames))
                continue
            bad = [c for c in CSV_COLUMNS if _SURROGATE.search(row.get(c) or "")]
            if bad:
                # the row's undecodable bytes as they were (surrogateescape), so the GB18030 test reads the real text
                yield position, raw, _not_utf8(f"record (column {', '.join(bad)})", f"该记录（列 {'、'.join(bad)}）", raw, _FIELDS.get(bad[0], bad[0]))
                continue
            try:
                yield position, raw, _row_document(row)
            except LineError as exc:
                yield position, raw, exc


def _unnamed_cells(row: dict[str, str], said: list[tuple[int, str]], columns: int) -> LineError:
    """A record with values under no column name: read without them it would be something else (the rest of a
    payload cut at an unquoted comma), so it is refused; where its own cells are whole (the payload is a JSON
    object), the values are said, not a comma guessed at."""
    shown = "、".join(f"第 {i + 1} 列 {c[:40]!r}" for i, c in said[:3])
    shown_en = ", ".join(f"column {i + 1} {c[:40]!r}" for i, c in said[:3])
    try:
        whole = isinstance(json.loads(row.get("payload") or ""), dict)
    except (ValueError, RecursionError):
        whole = False
    beyond = [i for i, _ in said if i >= columns]
    if whole:
        return LineError(f"record has values in columns without a name in the header: {shown_en}; clear them, or check that the record's cells are not shifted",
                         f"该记录在表头没有列名的列中有内容：{shown}；请清除这些内容，或检查该记录的单元格是否错位", type="csv_invalid")
    if beyond:
        return LineError(f"record has {len(beyond)} cell(s) more than the header's {columns} columns (a comma in a cell that is not quoted?): {shown_en}",
                         f"该记录比表头的 {columns} 列多 {len(beyond)} 个单元格（某个单元格中的逗号没有加引号？）：{shown}", type="csv_invalid")
    return LineError(f"record has values in columns without a name in the header (a comma in a cell that is not quoted?): {shown_en}",
                     f"该记录在表头没有列名的列中有内容（某个单元格中的逗号没有加引号？）：{shown}", type="csv_invalid")


_SURROGATE = re.compile("[\udc80-\udcff]")
_FIELDS = {"source_kind": "source.kind", "source_id": "source.id", "source_name": "source.name"}
"""The event field a CSV column fills, where the two names differ."""


def _row_bytes(row: dict[str, Any], unnamed: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerow([row.get(c, "") for c in CSV_COLUMNS] + unnamed)  # (values under no column name kept too)
    return buf.getvalue().rstrip("\r\n").encode("utf-8", "surrogateescape")


def _row_document(row: dict[str, Any]) -> dict[str, Any]:
    try:
        payload = load_json_once((row.get("payload") or "{}").encode("utf-8"))
    except DuplicateKeys as exc:
        raise _twice(exc.paths, ("payload",)) from None
    except ValueError as exc:
        raise LineError(f"column payload is not valid JSON: {exc}", "payload 列" + json_invalid_zh(exc, one_line=True), "payload") from exc
    except RecursionError:
        raise LineError("column payload is not valid JSON: nested too deeply", "payload 列不是合法的 JSON：嵌套过深", "payload", "recursion_loop") from None
    version = (row.get("schema_version") or "2").strip()
    if not (version.isascii() and version.isdigit()):
        # (isdigit alone takes "２" and "²", which int() refuses or reads otherwise)
        raise LineError(f"column schema_version must be an integer, got {version!r}", f"schema_version 列应为整数（如 2），收到 {version!r}",
                        "schema_version", "int_type")
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
