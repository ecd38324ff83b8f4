"""Wiring shared by the commands: open a data directory, load rules, recover."""
from __future__ import annotations

import gc
from pathlib import Path
from typing import Callable

from processors.step import Rules
from schemas.standards import load_catalogue

from qrisk.pipeline import Clock, Pipeline, utc_now
from qrisk.settings import load_policy
from qrisk.store import ChdbStore


def default_rules(policy_file: Path | None = None) -> Rules:
    return Rules(catalogue=load_catalogue(), policy=load_policy(policy_file))


def tune_gc() -> None:
    """The fold keeps a large, long-lived object graph (every credit file): the default
    collector thresholds rescan it thousands of times per second under load.  Freeze
    what recovery built and collect young objects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def open_embedded(data_dir: Path, rules: Rules, clock: Clock = utc_now, progress: Callable[[int], None] | None = None) -> Pipeline:
    store = ChdbStore(data_dir)
    pipeline = Pipeline(store, rules, clock)
    pipeline.recover(progress)
    tune_gc()
    return pipeline
