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


def test_every_bounded_setting_states_its_bound():
    """A setting with bounds (Field ge/gt/le or a validator) says them in its README row, so that an
    operator reads the limit before being refused by it."""
    from qrisk.settings import checked_kafka_settings

    bounded = set()
    for cls in (Settings, type(checked_kafka_settings())):
        for name, field in cls.model_fields.items():
            if any(type(m).__name__ in ("Ge", "Gt", "Le", "Lt") for m in field.metadata):
                bounded.add(f"QRISK_{name.upper()}")
    bounded |= {"QRISK_TICK_SECONDS", "QRISK_CLICKHOUSE_URL"}  # (validators)
    rows = [line for line in README.splitlines() if line.startswith("| `QRISK_")]
    words = ("at least", "not negative", "more than", "1–65535", "0–65535", "refused")
    kafka_note = "The counts and sizes above are at least 1" in README
    unstated = []
    for name in sorted(bounded):
        row = next((r for r in rows if f"`{name}`" in r), "")
        if not any(w in row for w in words) and not (name.startswith(("QRISK_WORKER_", "QRISK_SINK_", "QRISK_KAFKA_")) and kafka_note):
            unstated.append(name)
    assert not unstated, f"bounded settings whose README row does not state the bound: {unstated}"
