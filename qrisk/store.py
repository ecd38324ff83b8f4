"""ClickHouse through one small interface.

SQL is written once with ``%(name)s`` placeholders.  The chdb backend turns them
into ClickHouse's typed ``{name:Type}`` parameters; the clickhouse-driver
backend (a server) substitutes them with the driver's escaping.  Either way no
value a client sent is ever pasted into SQL text by us.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import threading
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32, name String, applied_at DateTime
) ENGINE = ReplacingMergeTree ORDER BY version"""

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


class Store(Protocol):
    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...
    def command(self, sql: str, params: dict[str, Any] | None = None) -> None: ...
    def insert(self, table: str, rows: Sequence[dict[str, Any]]) -> None: ...
    def close(self) -> None: ...


def _ch_type(value: Any) -> str:
    if isinstance(value, bool):
        return "UInt8"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, dt.datetime):
        return "DateTime"
    if isinstance(value, dt.date):
        return "Date"
    if isinstance(value, (list, tuple)):
        inner = _ch_type(value[0]) if value else "String"
        return f"Array({inner})"
    return "String"


def _param_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__}")


class ChdbStore:
    """Embedded ClickHouse (chdb) in a data directory.  One process may hold it."""

    def __init__(self, data_dir: str | Path):
        from chdb import session

        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._session = session.Session(str(self.data_dir))
        self._lock = threading.Lock()  # one chdb session serves one query at a time

    def _sql(self, sql: str, params: dict[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
        if not params:
            return sql, None
        typed = _PLACEHOLDER.sub(lambda m: "{%s:%s}" % (m.group(1), _ch_type(params[m.group(1)])), sql)
        return typed, {k: _param_value(v) for k, v in params.items()}

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        text, values = self._sql(sql, params)
        with self._lock:
            result = self._session.query(text, "JSONEachRow", params=values)
        out = result.bytes() if hasattr(result, "bytes") else bytes(result)
        return [json.loads(line) for line in out.splitlines() if line]

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        text, values = self._sql(sql, params)
        with self._lock:
            self._session.query(text, "CSV", params=values)

    def insert(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", table):
            raise ValueError(f"bad table name {table!r}")
        # JSONEachRow data is parsed by the format reader, never as SQL; json.dumps
        # escapes every quote and newline a client could send.
        body = "\n".join(json.dumps(r, ensure_ascii=False, default=_json_default) for r in rows)
        with self._lock:
            self._session.query(f"INSERT INTO {table} FORMAT JSONEachRow\n{body}", "CSV")

    def close(self) -> None:
        with self._lock:
            self._session.close()


def migration_files() -> list[tuple[int, str, str]]:
    folder = resources.files("schemas") / "migrations"
    found = []
    for entry in folder.iterdir():
        m = re.fullmatch(r"(\d+)_(\w+)\.sql", entry.name)
        if m:
            found.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


def _statements(text: str) -> Iterable[str]:
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    for stmt in "\n".join(lines).split(";"):
        if stmt.strip():
            yield stmt.strip()


def migrate(store: Store, now: dt.datetime) -> list[int]:
    """Apply numbered migrations not yet recorded; returns the versions applied."""
    store.command(MIGRATIONS_TABLE)
    done = {int(r["version"]) for r in store.query("SELECT version FROM schema_migrations")}
    applied = []
    for version, name, text in migration_files():
        if version in done:
            continue
        for stmt in _statements(text):
            store.command(stmt)
        store.insert("schema_migrations", [{"version": version, "name": name, "applied_at": now}])
        applied.append(version)
    return applied
