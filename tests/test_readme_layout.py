"""The README's layout tree stays true: every directory it lists exists, and every module of the
shell (qrisk/), the ways in (ingest/), the alerts and the dashboards is named in it (a module added
without a word there is a reader's blind spot; one removed leaves a name pointing nowhere)."""
from __future__ import annotations

import re

from tests.conftest import ROOT


def _layout() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Layout\n", 1)[1]
    return section.split("```", 2)[1]


def _entries(block: str) -> dict[str, str]:
    """Top-level name → its description (the lines until the next name)."""
    out: dict[str, str] = {}
    name = None
    for line in block.splitlines():
        m = re.match(r"(\S+)\s+(.*)", line)
        if m and not line.startswith(" "):
            name = m.group(1)
            out[name] = m.group(2)
        elif name is not None:
            out[name] += " " + line.strip()
    return out


def test_every_listed_path_exists():
    entries = _entries(_layout())
    assert {"schemas/", "processors/", "ingest/", "alerts/", "dashboards/", "qrisk/", "tests/", "bench/"} <= set(entries)
    for name in entries:
        assert (ROOT / name.rstrip("/")).exists(), f"README's layout names {name}, which does not exist"


def test_every_module_of_the_shell_and_the_ways_in_is_named():
    entries = _entries(_layout())
    missing = []
    for folder in ("qrisk", "ingest"):
        words = set(re.findall(r"[A-Za-z_]+", entries[f"{folder}/"]))
        for path in sorted((ROOT / folder).glob("*.py")):
            if path.stem not in ("__init__", "__main__") and path.stem not in words:
                missing.append(f"{folder}/{path.name}")
    assert not missing, f"modules the README's layout does not name: {missing}"
