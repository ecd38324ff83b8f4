"""Every setting an operator can give is in the README's tables, under the name it is read by."""
from __future__ import annotations

import re
from pathlib import Path

from qrisk.settings import Settings
from qrisk.topics import KafkaSettings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
SOURCES = Path(__file__).resolve().parents[1] / "qrisk"


def test_every_setting_is_documented_with_its_variable():
    names = {f"QRISK_{name.upper()}" for cls in (Settings, KafkaSettings) for name in cls.model_fields}
    # and the variables read straight from the environment (sink linger, Grafana)
    for path in SOURCES.glob("*.py"):
        names |= set(re.findall(r"environ\.get\(\"(QRISK_[A-Z_]+)\"", path.read_text(encoding="utf-8")))
    rows = "\n".join(line for line in README.splitlines() if line.startswith("| `QRISK_"))
    missing = sorted(n for n in names if f"`{n}`" not in rows and not _abbreviated(n, rows))
    assert not missing, f"settings missing from the README's tables: {missing}"


def _abbreviated(name: str, rows: str) -> bool:
    # a row may name a family as `QRISK_GRAFANA_URL`, `QRISK_GRAFANA_TOKEN` (or `…_USER`, `…_PASSWORD`)
    stem, _, last = name.rpartition("_")
    return any(f"`…_{last}`" in line and stem.rsplit("_", 1)[0] in line for line in rows.splitlines())
