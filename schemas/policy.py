"""Policy: thresholds and windows a bureau may change without touching code.

The default lives in ``qrisk/policy.default.yaml``; ``qrisk run --policy FILE``
replaces it.  Validated strictly so a typo in a key is an error, not a silent
default.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComplaintClusterPolicy(_Strict):
    k: int = Field(default=3, ge=2, description="verified complaints …")
    window_days: int = Field(default=30, ge=1, description="… within this many days form a cluster")


class SpcPolicy(_Strict):
    """Fluctuation detection (质量波动).  Supervision samples are sparse (about one a
    month per producer), so the baseline is shorter than the textbook's 20-25."""

    baseline: int = Field(default=8, ge=2, description="results that estimate an item's limits (phase I)")
    rules: dict[Literal["i", "p", "c"], list[int]] = Field(
        default_factory=lambda: {"i": [1, 2, 4], "p": [1], "c": [1]},
        description="run rules per chart kind: 1-4 Western Electric, 5-8 Nelson; few rules, few false alarms",
    )
    ewma_lambda: float = Field(default=0.2, gt=0, le=1)
    ewma_L: float = Field(default=3.0, gt=0)
    cusum_k: float = Field(default=0.5, ge=0)
    cusum_h: float = Field(default=5.0, gt=0)
    cpk_min: float = Field(default=1.0, ge=0, description="早发现: capability against the legal maximum below this")
    ewma_fraction: float = Field(default=0.8, gt=0, le=1, description="早发现: the EWMA reaches this fraction of the legal maximum")
    reference_failure_rate: float = Field(default=0.0296, gt=0, lt=1, description="provincial / national sampling failure rate the pass-rate charts compare with (2024 national: 2.96 %)")
    pass_rate_period: Literal["month", "quarter"] = "quarter"
    complaints_per_month: float = Field(default=0.3, gt=0, description="expected complaints per producer per month (c chart centre)")
    series_window: int = Field(default=30, ge=5, le=500, description="recent points kept per series as evidence")
    evidence_days: int = Field(default=45, ge=1, description="events this close to a signal are listed with it")


class Policy(_Strict):
    utc_offset_hours: int = Field(default=8, ge=-12, le=14, description="the bureau's local time: deadlines are local dates")
    complaint_cluster: ComplaintClusterPolicy = ComplaintClusterPolicy()
    spc: SpcPolicy = SpcPolicy()
