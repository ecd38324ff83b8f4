"""Policy: thresholds and windows a bureau may change without touching code.

The default lives in ``qrisk/policy.default.yaml``; ``qrisk run --policy FILE``
replaces it.  Validated strictly so a typo in a key is an error, not a silent
default.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComplaintClusterPolicy(_Strict):
    k: int = Field(default=3, ge=2, description="verified complaints …")
    window_days: int = Field(default=30, ge=1, description="… within this many days form a cluster")


class Policy(_Strict):
    utc_offset_hours: int = Field(default=8, ge=-12, le=14, description="the bureau's local time: deadlines are local dates")
    complaint_cluster: ComplaintClusterPolicy = ComplaintClusterPolicy()
