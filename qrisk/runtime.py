"""Wiring shared by the commands: open a data directory, load rules, recover."""
from __future__ import annotations

import datetime as dt
import gc
from pathlib import Path
from typing import Callable

from processors.step import Rules
from schemas.standards import load_catalogue

from qrisk.pipeline import Clock, Pipeline, utc_now
from qrisk.settings import Settings, load_policy
from qrisk.store import open_store, redact
from qrisk.writer_lease import WriterLease


def default_rules(policy_file: Path | None = None) -> Rules:
    return Rules(catalogue=load_catalogue(), policy=load_policy(policy_file))


GC_THRESHOLDS = (100_000, 50, 100)


def tune_gc(freeze: bool = True) -> None:
    """The fold keeps a large, long-lived object graph (every credit file): with the
    default thresholds the collector rescans it thousands of times per second under
    load.  Collect young objects less often, and freeze what recovery built."""
    gc.set_threshold(*GC_THRESHOLDS)
    if freeze:
        gc.collect()
        gc.freeze()


def open_embedded(data_dir: Path, rules: Rules, clock: Clock = utc_now, progress: Callable[[int], None] | None = None,
                  clickhouse_url: str | None = None, snapshot_seconds: float | None = None) -> Pipeline:
    """The pipeline on chdb in ``data_dir``, or on a ClickHouse server when a URL is given.

    On a server only one pipeline may write a database: it hands out ``seq`` itself
    (chdb's directory lock enforces the same for a data directory)."""
    settings = Settings()
    store = open_store(clickhouse_url or data_dir)
    if snapshot_seconds is None:
        snapshot_seconds = settings.snapshot_seconds
    pipeline = Pipeline(store, rules, clock, snapshot_every=dt.timedelta(seconds=snapshot_seconds))
    if not getattr(store, "exclusive", False):
        lease = WriterLease(store, settings.writer_lease_seconds)
        try:
            lease.acquire(f"ClickHouse database {redact(clickhouse_url)}" if clickhouse_url else "this database")
        except BaseException:
            store.close()
            raise
        pipeline.writer_lease = lease
    tune_gc(freeze=False)
    pipeline.recover(progress)
    tune_gc()
    return pipeline
