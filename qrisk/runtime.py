"""Wiring shared by the commands: open a data directory, load rules, recover."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from processors.step import Rules
from schemas.standards import load_catalogue

from qrisk.pipeline import Clock, Pipeline, utc_now
from qrisk.settings import load_policy
from qrisk.store import ChdbStore


def default_rules(policy_file: Path | None = None) -> Rules:
    return Rules(catalogue=load_catalogue(), policy=load_policy(policy_file))


def open_embedded(data_dir: Path, rules: Rules, clock: Clock = utc_now, progress: Callable[[int], None] | None = None) -> Pipeline:
    store = ChdbStore(data_dir)
    pipeline = Pipeline(store, rules, clock)
    pipeline.recover(progress)
    return pipeline
