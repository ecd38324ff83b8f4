"""ClickHouse through one small interface, on two backends.

* ``ChdbStore`` — embedded ClickHouse (chdb) in a data directory; the default.
* ``ClickHouseStore`` — a ClickHouse server over the native protocol (clickhouse-driver),
  chosen by a URL such as ``clickhouse://user:pass@host:9000/qrisk?secure=1``.

``open_store(url_or_data_dir)`` picks one.  Both run the same DDL (``schemas/migrations``)
and the same SQL, which must also run on the oldest server the tests start (Debian's
clickhouse-server 18.16): no DateTime64, LowCardinality, window functions, JSONExtract* or
server-side ``{name:Type}`` parameters in the SQL we write.

Parameters: SQL is written once with ``%(name)s`` placeholders (write a literal ``%`` as
``%%`` when a query has parameters).  chdb gets ClickHouse's typed ``{name:Type}``
parameters; the driver substitutes them client-side with its own escaping.  No value is
ever pasted into SQL text by us.

Rows: ``insert(table, rows)`` takes dicts and normalises each value to the column's type
(read from ``DESCRIBE TABLE``) so both backends accept the same dicts: DateTime from an
aware or naive (taken as UTC) datetime, an ISO string or epoch seconds; Date from a date or
an ISO string; Nullable from None; Array from a list; String from str (dict/list values are
stored as JSON).  A key that is not a column, or a value that does not fit, raises
``RowError`` before anything is sent.  The rows then travel as data, never as SQL text: native
blocks through the driver, an Arrow table that chdb reads in place.

Results: ``query`` returns dicts of JSON-ready values, the same on both backends: integers
as int, DateTime as ``'YYYY-MM-DD HH:MM:SS'`` in UTC, Date as ``'YYYY-MM-DD'``, NaN as None.

Deduplication: the derived tables are ReplacingMergeTree keyed by what makes a row unique,
so a row written twice (a retried insert, a replay) collapses at merge time; every read
that counts must therefore use ``FINAL`` or ``argMax`` (see ``reads`` below).
"""
from __future__ import annotations

import calendar
import datetime as dt
import fcntl
import itertools
import json
import math
import os
import re
import threading
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32, name String, applied_at DateTime
) ENGINE = ReplacingMergeTree ORDER BY version"""
LOCK_TABLE = "schema_migrations_lock"

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DDL = re.compile(r"^\s*(CREATE|ALTER|DROP|RENAME|EXCHANGE|ATTACH|DETACH)\b", re.IGNORECASE)
_CODE = re.compile(r"Code:\s*(\d+)")


# --------------------------------------------------------------------------- errors


class StoreError(Exception):
    """A store call failed; ``code`` is ClickHouse's error code when there is one."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class RowError(StoreError, ValueError):
    """A row does not fit its table (unknown column, value of the wrong type).  Never transient."""


# ClickHouse error codes that mean "the query or the data is wrong": retrying cannot help.
PERMANENT_CODES = frozenset({
    6, 16, 20, 26, 27, 36, 38, 41, 43, 44, 46, 47, 53, 57, 60, 62, 69, 70, 72, 81, 117, 130, 131,
    169, 184, 190, 215, 386, 497,
})
# clickhouse-driver's own (non-server) codes that mean the connection failed
_DRIVER_NETWORK_CODES = frozenset({32, 159, 209, 210})


# Codes that mean the database is not what the migrations made (a table, a database or a grant
# missing, a column gone): an operator's mistake or a schema skew, never the data's fault.  A writer
# stops and retries (the sink reports itself unhealthy) rather than setting its input aside as bad.
# 60 UNKNOWN_TABLE, 81 UNKNOWN_DATABASE, 497 ACCESS_DENIED, 516 AUTHENTICATION_FAILED; 16
# NO_SUCH_COLUMN_IN_TABLE only when it names a column a migration created (``schema_error``).
SCHEMA_CODES = frozenset({60, 81, 497, 516})
_NO_SUCH_COLUMN = 16


def error_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    m = _CODE.search(str(exc))
    return int(m.group(1)) if m else None


def _classify(exc: BaseException) -> bool:
    if isinstance(exc, RowError):
        return False
    if isinstance(exc, (OSError, EOFError, TimeoutError, ConnectionError)):
        return True
    try:
        from clickhouse_driver import errors as ch_errors
    except ImportError:  # pragma: no cover - the driver is optional for chdb users
        ch_errors = None
    if ch_errors is not None and isinstance(exc, ch_errors.Error):
        if isinstance(exc, (ch_errors.NetworkError, ch_errors.SocketTimeoutError, ch_errors.UnexpectedPacketFromServerError)):
            return True
        if not isinstance(exc, ch_errors.ServerException):
            return getattr(exc, "code", None) in _DRIVER_NETWORK_CODES
    code = error_code(exc)
    return code is not None and code not in PERMANENT_CODES


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same call later may succeed (server down, timeout, overload).

    Errors in the rows or the SQL are permanent, and so is anything we cannot place.
    """
    if isinstance(exc, RowError):
        return False
    marked = getattr(exc, "transient", None)
    if marked is not None:
        return bool(marked)
    if isinstance(exc, StoreError) and exc.__cause__ is not None:
        return _classify(exc.__cause__)
    return _classify(exc)


def schema_error(exc: BaseException, table: str) -> bool:
    """True when ``exc``, met writing ``table``, says the database lacks something the migrations
    create (see SCHEMA_CODES).  A "no such column" is one only when the column is one of the
    table's in the migrations: a message naming a column no migration made is the message's fault."""
    code = error_code(exc)
    if code in SCHEMA_CODES:
        return True
    if code != _NO_SUCH_COLUMN:
        return False
    named = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", str(exc)))
    return bool(named & migration_columns().get(table, frozenset()))


_MIGRATION_COLUMNS: dict[str, frozenset[str]] | None = None
_CREATE = re.compile(r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s*\((.*)\)\s*ENGINE", re.IGNORECASE | re.DOTALL)
_COLUMN_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+[A-Z]", re.MULTILINE)
_ADDED = re.compile(r"^\s*ALTER\s+TABLE\s+(\w+)\s+ADD\s+COLUMN\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE)
_RENAMED = re.compile(r"^\s*RENAME\s+TABLE\s+(\w+)\s+TO\s+(\w+)\s*$", re.IGNORECASE)


def migration_columns() -> dict[str, frozenset[str]]:
    """The columns the migrations give each table (CREATE TABLE, ADD COLUMN, followed through RENAME)."""
    global _MIGRATION_COLUMNS
    if _MIGRATION_COLUMNS is None:
        tables: dict[str, set[str]] = {}
        for _, _, text in migration_files():
            for stmt in _statements(text):
                if m := _CREATE.match(stmt):
                    tables.setdefault(m.group(1), set()).update(_COLUMN_LINE.findall(m.group(2)))
                elif m := _ADDED.match(stmt):
                    tables.setdefault(m.group(1), set()).add(m.group(2))
                elif m := _RENAMED.match(stmt):
                    tables.setdefault(m.group(2), set()).update(tables.get(m.group(1), set()))
        _MIGRATION_COLUMNS = {t: frozenset(c) for t, c in tables.items()}
    return _MIGRATION_COLUMNS


def short_reason(exc: BaseException, limit: int = 300) -> str:
    """An error's message without the server's stack trace (15 lines of addresses from a server), on
    one line: what a dead letter or a log line keeps."""
    text = str(exc)
    cut = text.find("Stack trace")
    if cut >= 0:
        text = text[:cut]
    line = " ".join(text.split()).rstrip(". ")
    return line if len(line) <= limit else line[: limit - 1] + "…"


# --------------------------------------------------------------------------- the interface


class Store(Protocol):
    backend: str  # "chdb" | "clickhouse"
    exclusive: bool  # True when no other process can use the same database (chdb's directory lock)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...
    def command(self, sql: str, params: dict[str, Any] | None = None) -> None: ...
    def insert(self, table: str, rows: Sequence[dict[str, Any]]) -> None: ...
    def insert_columns(self, table: str, columns: dict[str, list[Any]]) -> None: ...
    def columns(self, table: str) -> list[tuple[str, str]]: ...
    def close(self) -> None: ...


class StoreTargetError(ValueError):
    """A store target that is neither a ClickHouse URL nor a chdb directory (one line, Chinese and English)."""


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def check_target(target: str | os.PathLike[str]) -> str | None:
    """The chdb directory ``target`` names, None for a server URL; ``StoreTargetError`` for a URL of
    another scheme (``mysql://…``, ``http://…``), which would otherwise become a chdb directory named
    after the URL, quietly receiving the data."""
    text = os.fspath(target)
    if text.startswith(("clickhouse://", "clickhouses://")):
        return None
    if text.startswith("chdb://"):
        return text[len("chdb://"):]
    if text.startswith("chdb:"):
        return text[len("chdb:"):]
    m = _SCHEME.match(text)
    if m:
        raise StoreTargetError(
            f"不支持的存储地址 {redact(text)}：应为 clickhouse://、clickhouses:// 或 chdb 数据目录 / "
            f"unsupported store {redact(text)}: give clickhouse://host:9000/db, clickhouses://… or a chdb directory "
            f"(scheme {m.group(1)}:// is not one)")
    return text


def open_store(target: str | os.PathLike[str]) -> "ChdbStore | ClickHouseStore":
    """``clickhouse://…`` / ``clickhouses://…`` → a server; ``chdb:///path``, ``chdb:path`` or a plain path → chdb;
    any other ``scheme://`` is refused (``StoreTargetError``)."""
    directory = check_target(target)
    if directory is None:
        return ClickHouseStore(os.fspath(target))
    return ChdbStore(directory)


# --------------------------------------------------------------------------- value conversion


def _split_type(inner: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[start:i].strip())
            start = i + 1
    parts.append(inner[start:].strip())
    return parts


def _to_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parse_datetime(value: Any) -> dt.datetime:
    """Anything a row may carry for a DateTime column, as an aware UTC datetime."""
    if isinstance(value, dt.datetime):
        return _to_utc(value)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return EPOCH + dt.timedelta(seconds=int(value))
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        return _to_utc(dt.datetime.fromisoformat(text))
    raise TypeError(f"cannot read a DateTime from {type(value).__name__}")


def _parse_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return _to_utc(value).date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value.strip()[:10])
    raise TypeError(f"cannot read a Date from {type(value).__name__}")


def _epoch(value: Any) -> int:
    if type(value) is dt.datetime and value.tzinfo is None:  # fast path: naive = UTC
        return calendar.timegm(value.timetuple())
    return int((_parse_datetime(value) - EPOCH).total_seconds())


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=_json_default)
    if isinstance(value, (uuid.UUID,)):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a String column")


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise TypeError(f"cannot store {value!r} in an integer column")


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            return float(value)
        raise TypeError(f"cannot store {type(value).__name__} in a Float column")
    return float(value)


_INT_TYPES = {f"{p}Int{n}" for p in ("", "U") for n in (8, 16, 32, 64)}


def _writer(ch_type: str) -> Callable[[Any], Any]:
    """A function turning a row value into what both backends' inserts take for this column.

    Python objects: str, int, float, date, None, lists — and DateTime as epoch seconds, so
    neither the driver nor Arrow has a time zone to guess.
    """
    t = ch_type.strip()
    if t.startswith("Nullable("):
        inner = _writer(t[9:-1])
        return lambda v: None if v is None else inner(v)
    if t.startswith("Array("):
        inner = _writer(t[6:-1])
        return lambda v: [inner(x) for x in v] if isinstance(v, (list, tuple)) else _fail(f"cannot store {type(v).__name__} in {t}")
    if t == "String" or t.startswith("FixedString(") or t.startswith("Enum"):
        return lambda v: v if type(v) is str else _string(v)
    if t in _INT_TYPES:
        return lambda v: v if type(v) is int else _integer(v)
    if t in ("Float32", "Float64"):
        return lambda v: v if type(v) is float else _float(v)
    if t.startswith("DateTime"):
        return _epoch
    if t == "Date":
        return lambda v: v if type(v) is dt.date else _parse_date(v)
    if t == "UUID":
        return lambda v: str(v)
    return lambda v: v  # other types: passed as they are


def _fast_types(ch_type: str) -> frozenset[type]:
    """Python types a column's values may already have to be sent unchanged (checked per batch)."""
    t = ch_type.strip()
    if t.startswith("Nullable("):
        return _fast_types(t[9:-1]) | {type(None)}
    if t == "String":
        return frozenset({str})
    if t in _INT_TYPES:
        return frozenset({int})
    if t in ("Float32", "Float64"):
        return frozenset({float, int})
    if t == "Date":
        return frozenset({dt.date})
    if t.startswith("DateTime"):
        return frozenset({int})  # epoch seconds: what _epoch would produce anyway
    return frozenset()


def _array_fast(ch_type: str) -> tuple[int, frozenset[type]] | None:
    """For Array columns: (nesting depth, fast types of the innermost elements), else None."""
    t = ch_type.strip()
    depth = 0
    while t.startswith("Array("):
        t = t[6:-1].strip()
        depth += 1
    if depth == 0:
        return None
    leaf = _fast_types(t)
    return (depth, leaf) if leaf else None


def _already_fit(values: list[Any], fast: frozenset[type], array: tuple[int, frozenset[type]] | None) -> bool:
    """True when every value is already what the backend takes (a few C-level passes, no per-value Python)."""
    if array is None:
        return set(map(type, values)) <= fast
    depth, leaf = array
    for _ in range(depth):
        if not set(map(type, values)) <= _LIST_TYPES:
            return False
        values = list(itertools.chain.from_iterable(values))
    return set(map(type, values)) <= leaf


_LIST_TYPES = frozenset({list})


def _int_range(ch_type: str) -> tuple[int, int] | None:
    t = ch_type.strip()
    if t.startswith("Nullable("):
        t = t[9:-1]
    if t == "DateTime" or t.startswith("DateTime("):
        return (0, 2 ** 32 - 1)  # ClickHouse DateTime is UInt32 seconds: wider would wrap
    if t not in _INT_TYPES:
        return None
    bits = int(t.lstrip("UInt"))
    return (0, 2 ** bits - 1) if t.startswith("U") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _arrow_type(ch_type: str) -> Any:
    import pyarrow as pa

    t = ch_type.strip()
    if t.startswith("Nullable("):
        return _arrow_type(t[9:-1])
    if t.startswith("Array("):
        return pa.list_(_arrow_type(t[6:-1]))
    if t == "UInt64":
        return pa.uint64()
    if t in _INT_TYPES or t.startswith("DateTime"):
        return pa.int64()  # DateTime as epoch seconds
    if t in ("Float32", "Float64"):
        return pa.float64()
    if t == "Date":
        return pa.date32()
    return pa.string()


def _fail(message: str) -> Any:
    raise TypeError(message)


def _default(ch_type: str) -> Any:
    t = ch_type.strip()
    if t.startswith("Nullable("):
        return None
    if t.startswith("Array("):
        return []
    if t in _INT_TYPES:
        return 0
    if t.startswith("Float"):
        return 0.0
    if t.startswith("DateTime"):
        return EPOCH
    if t == "Date":
        return dt.date(1970, 1, 1)
    return ""


def _reader(ch_type: str, server_tz: Any) -> Callable[[Any], Any] | None:
    """For driver results: a function making a value look like chdb's JSONEachRow output (None: as is)."""
    t = ch_type.strip()
    if t.startswith("Nullable("):
        inner = _reader(t[9:-1], server_tz)
        return None if inner is None else (lambda v: None if v is None else inner(v))
    if t.startswith(("Array(", "Tuple(")):
        if t.startswith("Array("):
            inner = _reader(t[6:-1], server_tz)
            return (lambda v: list(v)) if inner is None else (lambda v: [inner(x) for x in v])
        readers = [_reader(p, server_tz) for p in _split_type(t[6:-1])]
        return lambda v: [x if r is None else r(x) for r, x in zip(readers, v)]
    if t.startswith("DateTime"):
        def read_dt(v: dt.datetime) -> str:
            if v.tzinfo is not None:
                v = v.astimezone(UTC)
            elif server_tz is not None:
                v = server_tz.localize(v).astimezone(UTC)
            return v.strftime("%Y-%m-%d %H:%M:%S")
        return read_dt
    if t == "Date":
        return lambda v: v.isoformat()
    if t.startswith("Float"):
        return lambda v: None if v is None or math.isnan(v) or math.isinf(v) else v
    if t == "UUID":
        return lambda v: str(v)
    if t.startswith("Decimal"):
        return lambda v: float(v)
    return None


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _to_utc(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__}")


def _check_table(table: str) -> str:
    if not _IDENT.fullmatch(table):
        raise RowError(f"bad table name {table!r}")
    return table


# --------------------------------------------------------------------------- shared behaviour


class _Base:
    backend = ""
    exclusive = False

    def __init__(self) -> None:
        self._lock = threading.RLock()  # one connection / session serves one call at a time
        self._columns: dict[str, list[tuple[str, str]]] = {}
        self._writers: dict[str, list[tuple[Any, ...]]] = {}  # per column: (convert, fast types, default, int range)

    # subclasses: _query(sql, params) -> list[dict], _command(sql, params), _insert_columns(table, names, columns)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return self._query(sql, params or None)

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        if _DDL.match(sql):
            self._columns.clear()
            self._writers.clear()
        self._command(sql, params or None)

    def forget_columns(self) -> None:
        """Read the tables' columns again at the next insert (after a schema error: the table may have been fixed)."""
        self._columns.clear()
        self._writers.clear()

    def columns(self, table: str) -> list[tuple[str, str]]:
        """(name, type) of the columns an INSERT may set, in table order; cached until the next DDL."""
        _check_table(table)
        cols = self._columns.get(table)
        if cols is None:
            rows = self._query(f"DESCRIBE TABLE {table}", None)
            cols = [(r["name"], r["type"]) for r in rows if (r.get("default_type") or "") not in ("MATERIALIZED", "ALIAS", "EPHEMERAL")]
            self._columns[table] = cols
            self._writers[table] = [(_writer(t), self._fast_types(t), _default(t), _int_range(t), _array_fast(t)) for _, t in cols]
        return cols

    def _fast_types(self, ch_type: str) -> frozenset[type]:
        return _fast_types(ch_type)

    def prepare(self, table: str, rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
        """Rows as (column names, one list of normalised values per column); raises RowError."""
        cols = self.columns(table)
        present: set[str] = set()
        for row in rows:
            present.update(row.keys())
        self._check_known(table, present)
        columns = {}
        for (name, _), writer in zip(cols, self._writers[table]):
            if name in present:
                default = writer[2]
                columns[name] = [row.get(name, default) for row in rows]
        return self._prepare_columns(table, columns)

    def prepare_columns(self, table: str, columns: dict[str, list[Any]]) -> tuple[list[str], list[list[Any]]]:
        """What ``insert_columns`` sends, checked and converted (RowError), for ``insert_prepared``:
        a writer of several tables can check all before it sends any."""
        self._check_known(table, columns)
        return self._prepare_columns(table, columns)

    def insert_prepared(self, table: str, names: list[str], columns: list[list[Any]]) -> None:
        if names and columns and columns[0]:
            self._insert_columns(table, names, columns)

    def _check_known(self, table: str, present: Iterable[str]) -> None:
        unknown = set(present) - {name for name, _ in self.columns(table)}
        if unknown:
            raise RowError(f"{table} has no column {', '.join(sorted(unknown))}", code=16)

    def _prepare_columns(self, table: str, columns: dict[str, list[Any]]) -> tuple[list[str], list[list[Any]]]:
        cols = self.columns(table)
        writers = self._writers[table]
        names, out = [], []
        for (name, ch_type), (write, fast, default, bounds, array) in zip(cols, writers):
            values = columns.get(name)
            if values is None:
                continue  # left to the column's DEFAULT
            if not _already_fit(values, fast, array):
                try:
                    values = [write(v) for v in values]
                except (TypeError, ValueError, OverflowError, AttributeError) as exc:
                    bad = next(i for i, v in enumerate(values) if not _fits(write, v))
                    raise RowError(f"{table}.{name} ({ch_type}), row {bad}: {exc}", code=53) from exc
            if bounds is not None:
                present_values = [v for v in values if v is not None] if ch_type.startswith("Nullable") else values
                if present_values and (min(present_values) < bounds[0] or max(present_values) > bounds[1]):
                    bad = next(i for i, v in enumerate(values) if v is not None and not bounds[0] <= v <= bounds[1])
                    raise RowError(f"{table}.{name} ({ch_type}), row {bad}: {values[bad]} is out of range", code=69)
            names.append(name)
            out.append(values)
        return names, out

    def insert(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        names, columns = self.prepare(table, rows)
        self._insert_columns(table, names, columns)

    def insert_columns(self, table: str, columns: dict[str, list[Any]]) -> None:
        """The same as ``insert``, given one list per column (all of one length) instead of a dict
        per row: a writer of many rows then builds no dict per row.  A column left out takes its
        DEFAULT; values are checked and normalised exactly as ``insert`` does."""
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise RowError(f"{table}: columns of different lengths {sorted(lengths)}", code=53)
        if not columns or not lengths.pop():
            return
        self._check_known(table, columns)
        names, values = self._prepare_columns(table, columns)
        self._insert_columns(table, names, values)

    def ping(self) -> bool:
        try:
            return self._query("SELECT 1 AS ok", None)[0]["ok"] == 1
        except Exception:  # noqa: BLE001 - a ping answers yes or no
            return False


def _fits(write: Callable[[Any], Any], value: Any) -> bool:
    try:
        write(value)
        return True
    except (TypeError, ValueError, OverflowError, AttributeError):
        return False


# --------------------------------------------------------------------------- chdb


def _ch_type(value: Any) -> str:
    if isinstance(value, bool):
        return "UInt8"
    if isinstance(value, int):
        # read as Int64, 18446744073709551615 became -1: an OFFSET of -1 (all rows but the last), not past the end
        return "UInt64" if value > 2**63 - 1 else "Int64"
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, dt.datetime):
        return "DateTime"
    if isinstance(value, dt.date):
        return "Date"
    if isinstance(value, (list, tuple)):
        inner = _ch_type(value[0]) if value else "String"
        return f"Array({inner})"
    if value is None:
        return "Nullable(String)"
    return "String"


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0", "\b": "\\b", "\f": "\\f"}
_ESCAPE_RE = re.compile("[\\\\\n\t\r\0\b\f]")


def _escape(text: str) -> str:
    """ClickHouse's escaped text format, in which a {name:String} parameter value is read."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], text)


def _param_value(value: Any) -> Any:
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, dt.datetime):
        return _to_utc(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if value is None:
        return "\\N"
    return value


def _literal(value: Any) -> str:
    """An element of an Array parameter, in ClickHouse's text format (the parameter parser reads it)."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    text = _param_value(value) if isinstance(value, (dt.date, dt.datetime)) else _escape(str(value))
    return "'" + text.replace("'", "\\'") + "'"


class StoreInUse(RuntimeError):
    """The data directory is held by another process (a running ``qrisk run``)."""


def _refuse_if_in_use(data_dir: Path) -> None:
    # chdb would print "Cannot lock file …/status" and raise a bare BAD_ARGUMENTS: the operator
    # must learn which directory is busy, and what to do instead
    status = data_dir / "status"
    if not status.exists():
        return
    with open(status, "rb") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the lock ClickHouse takes on its status file
        except BlockingIOError:
            raise StoreInUse(
                f"数据目录 {data_dir} 正被另一个进程（如 qrisk run）使用：先停止 qrisk run / "
                f"the data directory {data_dir} is in use by another process (a running qrisk run?): stop it first") from None
        fcntl.flock(fh, fcntl.LOCK_UN)


class ChdbStore(_Base):
    """Embedded ClickHouse (chdb) in a data directory.  One process may hold it."""

    backend = "chdb"
    exclusive = True

    def _fast_types(self, ch_type: str) -> frozenset[type]:
        # UTF-8 bytes go to a String column as they are (Arrow checks them, ~4x cheaper than
        # encoding a fresh non-ASCII str): an event body serialised to bytes is then not decoded
        # here only to be encoded again.  Invalid UTF-8 fails the insert, as on a server.
        fast = _fast_types(ch_type)
        return fast | {bytes} if str in fast else fast

    def __init__(self, data_dir: str | os.PathLike[str]):
        super().__init__()
        from chdb import session

        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # (the owner's alone: see qrisk.runtime)
        _refuse_if_in_use(self.data_dir)
        self._session = session.Session(str(self.data_dir))
        # the same answers as a server configured by scripts/services.sh: UTC, integers unquoted
        self._session.query("SET session_timezone = 'UTC'")
        self._session.query("SET output_format_json_quote_64bit_integers = 0")

    def __repr__(self) -> str:
        return f"ChdbStore({str(self.data_dir)!r})"

    @property
    def url(self) -> str:
        return f"chdb://{self.data_dir}"

    def _sql(self, sql: str, params: dict[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
        if not params:
            return sql, None

        def typed(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in params:
                raise KeyError(f"query parameter {name!r} not given")
            return "{%s:%s}" % (name, _ch_type(params[name]))

        text = _PLACEHOLDER.sub(typed, sql).replace("%%", "%")
        return text, {k: _param_value(v) for k, v in params.items()}

    def _run(self, text: str, fmt: str, values: dict[str, Any] | None) -> Any:
        try:
            with self._lock:
                return self._session.query(text, fmt, params=values) if values else self._session.query(text, fmt)
        except Exception as exc:  # chdb raises RuntimeError("Code: 60. DB::Exception: …")
            raise StoreError(str(exc), error_code(exc)) from exc

    def _query(self, sql: str, params: dict[str, Any] | None) -> list[dict[str, Any]]:
        text, values = self._sql(sql, params)
        result = self._run(text, "JSONEachRow", values)
        out = result.bytes() if hasattr(result, "bytes") else bytes(result)
        return [json.loads(line) for line in out.splitlines() if line]

    def formatted(self, sql: str, fmt: str, params: dict[str, Any] | None = None) -> bytes:
        """The answer as ClickHouse writes it in output format ``fmt`` (CSVWithNames, TSV, Pretty, Parquet…):
        for a person or another tool to read, where ``query`` gives rows to Python."""
        text, values = self._sql(sql, params)
        result = self._run(text, fmt, values)
        return result.bytes() if hasattr(result, "bytes") else bytes(result)

    def _command(self, sql: str, params: dict[str, Any] | None) -> None:
        text, values = self._sql(sql, params)
        self._run(text, "CSV", values)

    def _insert_columns(self, table: str, names: list[str], columns: list[list[Any]]) -> None:
        # The values travel as an Arrow table that chdb reads in place (its Python() table
        # function finds the variable by name in this frame): data, never SQL text.  Arrow
        # is ~2× faster than JSON text for 10k-row batches; pyarrow comes with chdb.
        import pyarrow as pa

        types = dict(self.columns(table))
        qrisk_arrow_rows_ = pa.table({n: pa.array(c, type=_arrow_type(types[n])) for n, c in zip(names, columns)})
        cols = ", ".join(names)
        try:
            with self._lock:
                self._session.query(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM Python(qrisk_arrow_rows_)", "CSV")
        except Exception as exc:
            raise StoreError(str(exc), error_code(exc)) from exc
        finally:
            del qrisk_arrow_rows_

    def close(self) -> None:
        with self._lock:
            self._session.close()


# --------------------------------------------------------------------------- clickhouse-driver


def unopenable(target: str | os.PathLike[str], exc: BaseException, named: str) -> str:
    """One line, Chinese and English, for a store that cannot be opened: which store (a URL without
    its password), by which setting or option (``named``), and the first line of the reason."""
    text = os.fspath(target)
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:400]
    if text.startswith(("clickhouse://", "clickhouses://")):
        url = redact(text)
        reason = reason.removeprefix(url + ": ")
        return f"无法打开 ClickHouse {url}（{named}）：{reason} / cannot open ClickHouse {url} ({named}): {reason}"
    return f"无法打开数据目录 {text}（{named}）：{reason} / cannot open the data directory {text} ({named}): {reason}"


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class ClickHouseStore(_Base):
    """A ClickHouse server over the native protocol (clickhouse-driver).

    The URL is clickhouse-driver's: ``clickhouse://[user[:password]@]host[:port]/database``
    (``clickhouses://`` or ``?secure=1`` for TLS; ``verify``, ``ca_certs``, ``compression``,
    ``connect_timeout``, ``send_receive_timeout``… pass through, unknown names become server
    settings).  The database is created when missing (``create_database=False`` to not).
    """

    backend = "clickhouse"
    exclusive = False

    DEFAULTS = {"connect_timeout": "3", "send_receive_timeout": "60", "sync_request_timeout": "5"}

    def __init__(self, url: str, create_database: bool = True):
        super().__init__()
        from clickhouse_driver import Client

        parts = urlsplit(url)
        if parts.scheme not in ("clickhouse", "clickhouses"):
            raise ValueError(f"not a clickhouse:// URL: {redact(url)}")
        self.database = unquote(parts.path.lstrip("/")) or "default"
        if not _IDENT.fullmatch(self.database):
            raise ValueError(f"bad database name {self.database!r}")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        for key, value in self.DEFAULTS.items():
            query.setdefault(key, value)
        self._url = urlunsplit(parts._replace(query=urlencode(query)))
        self.url = redact(url)
        if create_database and self.database != "default":
            admin = Client.from_url(urlunsplit(parts._replace(path="/default", query=urlencode(query))))
            try:
                admin.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
            except Exception as exc:
                raise StoreError(f"{self.url}: {exc}", error_code(exc)) from exc
            finally:
                admin.disconnect()
        self._client = Client.from_url(self._url)
        self._readers: dict[str, Callable[[Any], Any] | None] = {}
        self._server_tz: Any = None
        self._server_tz_known = False

    def __repr__(self) -> str:
        return f"ClickHouseStore({self.url!r})"

    @property
    def settings(self) -> dict[str, Any]:
        """What the URL asked for (for tests of the pass-through): host, port, user, secure, …"""
        c = self._client.connection
        host, port = c.hosts[0]
        return {"host": host, "port": port, "user": c.user, "password": c.password, "database": c.database,
                "secure": c.secure_socket, "verify": c.verify_cert, "compression": c.compression,
                "connect_timeout": c.connect_timeout, "send_receive_timeout": c.send_receive_timeout}

    def _params(self, sql: str, params: dict[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
        if not params:
            return sql, None
        for name in _PLACEHOLDER.findall(sql):
            if name not in params:
                raise KeyError(f"query parameter {name!r} not given")
        values = {}
        for key, value in params.items():
            if isinstance(value, dt.datetime):
                value = _to_utc(value)  # the driver renders an aware datetime in the server's zone
            values[key] = value
        return sql, values

    def _execute(self, sql: str, params: Any = None, **kw: Any) -> Any:
        try:
            with self._lock:
                return self._client.execute(sql, params, **kw)
        except Exception as exc:
            if isinstance(exc, (KeyError, StoreError)):
                raise
            code = error_code(exc)
            wrapped = StoreError(f"{type(exc).__name__}: {exc}", code)
            wrapped.transient = is_transient(exc)  # type: ignore[attr-defined]
            raise wrapped from exc

    def _tz(self) -> Any:
        if not self._server_tz_known:
            import pytz

            name = self._client.connection.server_info.get_timezone() if self._client.connection.server_info else "UTC"
            self._server_tz = None if name in ("UTC", "Etc/UTC", "Universal", "Zulu") else pytz.timezone(name)
            self._server_tz_known = True
        return self._server_tz

    def _query(self, sql: str, params: dict[str, Any] | None) -> list[dict[str, Any]]:
        text, values = self._params(sql, params)
        rows, types = self._execute(text, values, with_column_types=True)
        tz = self._tz()
        names = [n for n, _ in types]
        readers = []
        for _, t in types:
            if t not in self._readers:
                self._readers[t] = _reader(t, tz)
            readers.append(self._readers[t])
        if all(r is None for r in readers):
            return [dict(zip(names, row)) for row in rows]
        return [{n: (v if r is None else r(v)) for n, r, v in zip(names, readers, row)} for row in rows]

    def _command(self, sql: str, params: dict[str, Any] | None) -> None:
        text, values = self._params(sql, params)
        self._execute(text, values)

    def _insert_columns(self, table: str, names: list[str], columns: list[list[Any]]) -> None:
        self._execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES", columns, columnar=True)

    def close(self) -> None:
        with self._lock:
            self._client.disconnect()


# --------------------------------------------------------------------------- migrations


def migration_files() -> list[tuple[int, str, str]]:
    folder = resources.files("schemas") / "migrations"
    found = []
    for entry in folder.iterdir():
        m = re.fullmatch(r"(\d+)_(\w+)\.sql", entry.name)
        if m:
            found.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migration files share a number: {versions}")
    return found


def _statements(text: str) -> Iterable[str]:
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    for stmt in "\n".join(lines).split(";"):
        if stmt.strip():
            yield stmt.strip()


class MigrationLockTimeout(StoreError):
    pass


_process_migrate_lock = threading.Lock()


def _acquire_lock(store: Store, owner: str, wait_s: float, ttl_s: float) -> None:
    """Take the migration lock on a server: CREATE TABLE without IF NOT EXISTS succeeds once.

    ClickHouse has no transactions; creating a table is the one step exactly one caller
    wins.  A holder that died leaves the table behind: it is broken after ``ttl_s``.
    """
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            store.command(f"CREATE TABLE {LOCK_TABLE} (owner String, acquired_at DateTime) ENGINE = TinyLog")
        except StoreError as exc:
            # 57 TABLE_ALREADY_EXISTS, or "is creating or attaching right now" from an older server
            text = str(exc)
            if error_code(exc) != 57 and "already exists" not in text and "right now" not in text:
                raise
            try:
                age = store.query(
                    "SELECT toInt64(now()) - toInt64(metadata_modification_time) AS age FROM system.tables "
                    "WHERE database = currentDatabase() AND name = %(name)s", {"name": LOCK_TABLE})
            except StoreError as gone:
                # 18.16 reads the table's metadata for this row and fails with UNKNOWN_TABLE when
                # the holder drops it at that moment: released, so try to take it again
                if error_code(gone) != 60:
                    raise
                continue
            if age and int(age[0]["age"]) > ttl_s:
                # The holder died mid-migration (the statements are idempotent, so re-running is
                # safe).  Two waiters breaking the same stale lock at once could both proceed;
                # that costs a repeated CREATE … IF NOT EXISTS and a duplicate record, no more.
                holder = _lock_holder(store)
                store.command(f"DROP TABLE IF EXISTS {LOCK_TABLE}")
                print(f"qrisk: broke a stale migration lock held by {holder or 'nobody'} for {age[0]['age']}s")
                continue
            if time.monotonic() >= deadline:
                raise MigrationLockTimeout(f"migration lock held by {_lock_holder(store) or 'unknown'} for longer than {wait_s}s") from exc
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
            continue
        try:
            store.insert(LOCK_TABLE, [{"owner": owner, "acquired_at": dt.datetime.now(UTC)}])
        except BaseException:
            _release_lock(store)
            raise
        return


def _lock_holder(store: Store) -> list[dict[str, Any]]:
    try:
        return store.query(f"SELECT owner, acquired_at FROM {LOCK_TABLE}")
    except StoreError:  # released meanwhile
        return []


def _release_lock(store: Store) -> None:
    store.command(f"DROP TABLE IF EXISTS {LOCK_TABLE}")


_ADD_COLUMN = re.compile(r"\s*ALTER\s+TABLE\s+\S+\s+ADD\s+COLUMN\s", re.IGNORECASE)
_DUPLICATE_COLUMN = {15, 44}  # DUPLICATE_COLUMN (current servers, chdb); ILLEGAL_COLUMN (18.16)


_RENAME = re.compile(r"\s*RENAME\s+TABLE\s", re.IGNORECASE)
_RENAME_DONE = {57, 60}  # TABLE_ALREADY_EXISTS (the target), UNKNOWN_TABLE (the source)


def apply_statement(store: Store, stmt: str) -> None:
    """One migration statement, such that a migration cut short by a crash can run again whole."""
    try:
        store.command(stmt)
    except StoreError as exc:
        # ADD COLUMN has no IF NOT EXISTS on server 18.16: a column already there is a migration cut
        # short after its ALTER, applied again; RENAME has no IF EXISTS either: a source already gone
        # or a target already there is a rename done before the crash
        if _ADD_COLUMN.match(stmt) and error_code(exc) in _DUPLICATE_COLUMN:
            return
        if _RENAME.match(stmt) and (error_code(exc) in _RENAME_DONE or "already exists" in str(exc) or "doesn't exist" in str(exc)):
            return
        raise


def migrate(store: Store, now: dt.datetime | None = None, *, lock_wait_s: float = 120.0, lock_ttl_s: float = 600.0) -> list[int]:
    """Apply the numbered migrations not yet recorded; returns the versions this call applied.

    Safe to run from several processes at once against one server: they take turns under
    a lock (the second finds everything applied and does nothing).  Every statement is
    idempotent (IF NOT EXISTS; an ADD COLUMN whose column exists counts as done) and the record
    is a ReplacingMergeTree, so a migration cut short by a crash is simply applied again.  chdb needs no lock table: its directory lock
    already admits one process.
    """
    now = now or dt.datetime.now(UTC)
    owner = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    with _process_migrate_lock:
        for attempt in range(20):  # IF NOT EXISTS can still collide with a concurrent CREATE on old servers
            try:
                store.command(MIGRATIONS_TABLE)
                break
            except StoreError as exc:
                if attempt == 19 or (error_code(exc) != 57 and "right now" not in str(exc)):
                    raise
                time.sleep(0.05)
        if not getattr(store, "exclusive", False):
            _acquire_lock(store, owner, lock_wait_s, lock_ttl_s)
        try:
            done = {int(r["version"]) for r in store.query("SELECT DISTINCT version FROM schema_migrations")}
            known = {v for v, _, _ in migration_files()}
            newer = sorted(done - known)
            if newer:
                # tables this code does not know may have changed under it (a renamed table, a new key):
                # writing to them would be a guess
                raise StoreError(f"this database was migrated by a newer qrisk (migrations {', '.join(map(str, newer))} are "
                                 f"unknown to this version, which knows up to {max(known)}): run the newer qrisk, "
                                 "or restore the backup taken before the upgrade")
            applied = []
            for version, name, text in migration_files():
                if version in done:
                    continue
                for stmt in _statements(text):
                    apply_statement(store, stmt)
                store.insert("schema_migrations", [{"version": version, "name": name, "applied_at": now}])
                applied.append(version)
            return applied
        finally:
            if not getattr(store, "exclusive", False):
                _release_lock(store)


# --------------------------------------------------------------------------- reads


CREDIT_FILE_QUERIES: dict[str, str] = {
    # the newest snapshot: the max seq first (reads one column), then that row's body
    "snapshot": (
        "SELECT seq, body FROM credit_files "
        "WHERE enterprise_id = %(enterprise_id)s AND seq = ("
        "  SELECT max(seq) FROM credit_files WHERE enterprise_id = %(enterprise_id)s) LIMIT 1"
    ),
    "samples": (
        "SELECT event_id, sample_no, product, category, verdict, counted, failed_items, disagreements, sampled_on, superseded_by "
        "FROM judgements FINAL WHERE enterprise_id = %(enterprise_id)s ORDER BY sampled_on, event_id"
    ),
    # dedup by GROUP BY on the sort key instead of FINAL: the same answer (a redelivered row
    # is identical), ~2.5× faster on server 18.16 whose FINAL merges every part in one stream.
    # sampling_items keeps every report's values, of reports re-tested, corrected or retracted since
    # too, and its verdict is qrisk's per item: joined to the reports that count (superseded_by = '',
    # one row each; judgements needs FINAL, a row written again when superseded replaces the one
    # before), an item fails a sample only where the sample counts as 不合格 (`counted`, the report's
    # conclusion), so a failure qrisk alone finds is no failure here, as in the credit file; and an item the lab
    # failed that qrisk passes fails it (the row's failed_items: SampleJudgement.counted_failed_codes).  ALL, not
    # ANY: current releases' ANY INNER JOIN keeps one left row per key.
    "items": (
        "SELECT item_code, any(i_name) AS item_name, any(i_unit) AS unit, count() AS results, "
        "uniqExact(event_id) AS samples, "
        "uniqExactIf(event_id, counted = 'fail' AND (i_verdict = 'fail' OR has(failed_items, item_code))) AS failed, "
        "min(i_value) AS min_value, max(i_value) AS max_value, "
        "argMax(i_value, sampled_on) AS last_value, max(sampled_on) AS last_sampled_on "
        "FROM (SELECT item_code, sampled_on, event_id, value_index, any(item_name) AS i_name, any(unit) AS i_unit, "
        "      any(verdict) AS i_verdict, any(value) AS i_value "
        "      FROM sampling_items WHERE enterprise_id = %(enterprise_id)s "
        "      GROUP BY item_code, sampled_on, event_id, value_index) AS item_values "
        "ALL INNER JOIN (SELECT event_id, counted, failed_items FROM judgements FINAL "
        "      WHERE enterprise_id = %(enterprise_id)s AND superseded_by = '') AS counting USING event_id "
        "GROUP BY item_code ORDER BY item_code"
    ),
    "alerts": (
        "SELECT alert_id, kind, severity, state, opened_at, updated_at, title "
        "FROM alerts FINAL WHERE enterprise_id = %(enterprise_id)s ORDER BY opened_at, alert_id"
    ),
}


def credit_file_report(store: Store, enterprise_id: str) -> dict[str, Any] | None:
    """One enterprise's credit file from the analytical tables: the newest snapshot (which carries the grade
    history and the charts' signals) and its samples, items and alerts.

    ``samples`` are every report on record (a superseded or retracted one too, its ``superseded_by`` set), with
    qrisk's ``verdict`` and the conclusion it counts with, ``counted``.  ``items`` are figures of the reports that
    count: ``results`` values, ``samples`` reports that tested the item, ``failed`` those of them counted 不合格 in
    which qrisk failed the item (the sum of ``failed`` is the file's ``samples_failed`` when each failure is one
    item's; a computed sum of ratios with no printed line has no item row)."""
    params = {"enterprise_id": enterprise_id}
    out: dict[str, Any] = {"enterprise_id": enterprise_id}
    for name, sql in CREDIT_FILE_QUERIES.items():
        out[name] = store.query(sql, params)
    snap = out.pop("snapshot")
    out["snapshot_seq"] = snap[0]["seq"] if snap else None
    out["file"] = json.loads(snap[0]["body"]) if snap else None
    if out["file"] is None and not out["samples"]:
        return None
    return out


# The county's samples by month and category, as the credit files count them: by the report's conclusion
# (`counted`: a failure qrisk alone finds is the lab's 合格), the reports that count only.  `passed` and
# `failed` leave out undetermined samples, so a pass rate is passed / (passed + failed), as the dashboards'.
COUNTY_MONTHLY_SQL = (
    "SELECT toStartOfMonth(sampled_on) AS month, category, uniqExact(event_id) AS samples, "
    "uniqExactIf(event_id, counted = 'pass') AS passed, uniqExactIf(event_id, counted = 'fail') AS failed, "
    "uniqExact(enterprise_id) AS enterprises "
    "FROM judgements FINAL WHERE sampled_on >= %(since)s AND sampled_on < %(until)s AND superseded_by = '' "
    "GROUP BY month, category ORDER BY month, category"
)
