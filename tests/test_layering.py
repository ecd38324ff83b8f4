"""Import rules: the pure core stays pure, contracts depend on nothing of ours."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

IO_MODULES = {
    "kafka", "aiokafka", "faust", "clickhouse_driver", "chdb", "fastapi", "uvicorn", "starlette", "httpx", "requests",
    "socket", "smtplib", "http", "urllib", "asyncio", "subprocess", "sqlite3", "matplotlib", "openpyxl", "tqdm", "os",
    "shutil", "tempfile", "io", "pathlib", "time", "random", "threading", "qrisk", "ingest", "alerts", "dashboards",
}
ALLOWED = {
    "processors": None,  # checked against IO_MODULES
    "schemas": {"processors", "ingest", "alerts", "dashboards", "qrisk"},
    "ingest": {"processors", "alerts", "dashboards", "qrisk"},
    "alerts": {"ingest", "dashboards", "qrisk"},
    "dashboards": {"processors", "schemas", "ingest", "alerts", "qrisk"},  # SQL over the tables, nothing of ours
}
WALL_CLOCK = {("datetime", "now"), ("datetime", "utcnow"), ("date", "today"), ("time", "time"), ("time", "monotonic"), ("time", "perf_counter")}


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_import_rules(package):
    forbidden = IO_MODULES if ALLOWED[package] is None else ALLOWED[package]
    bad = [f"{p.relative_to(ROOT)}:{line} imports {mod}" for p in (ROOT / package).rglob("*.py") for line, mod in imports(p) if mod in forbidden]
    assert not bad, "\n".join(bad)


def wall_clock_reads(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, (ast.Name, ast.Attribute)):
            owner = node.value.id if isinstance(node.value, ast.Name) else node.value.attr
            if (owner, node.attr) in WALL_CLOCK:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {owner}.{node.attr}")
    return found


def test_processors_read_no_wall_clock():
    bad = [hit for path in (ROOT / "processors").rglob("*.py") for hit in wall_clock_reads(path)]
    assert not bad, "\n".join(bad)


def test_the_checker_catches_a_violation(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import socket\nfrom chdb import session\nfrom processors.step import step\n")
    assert [m for _, m in imports(sample)] == ["socket", "chdb", "processors"]


@pytest.mark.parametrize("module", ["alerts/lifecycle.py", "alerts/notification.py", "alerts/messages.py"])
def test_the_alert_fold_is_pure_too(module):
    """The alert lifecycle is a fold of the log like step(): no I/O, no wall clock (the outbox and the
    receivers, beside it in alerts/, are the adapters)."""
    path = ROOT / module
    bad = [f"{module}:{line} imports {mod}" for line, mod in imports(path) if mod in IO_MODULES - {"alerts"}]
    bad += wall_clock_reads(path)
    assert not bad, "\n".join(bad)
