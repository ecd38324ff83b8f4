"""Statistical process control: the fluctuation (质量波动) detectors.

Pure code: the standard library only (tests/test_layering.py keeps it so), no I/O, no clock.  Batch charts live in
``charts``, run rules in ``rules``, the legal-limit checks in ``capability``
and the incremental per-item monitor folded over events in ``monitor``.
"""

from .capability import SpecLimitCheck, cpk_upper, spec_limit_check
from .charts import (
    CHART_KINDS,
    CChart,
    ChartPoint,
    ChartResult,
    CusumChart,
    EwmaChart,
    IndividualsChart,
    MovingRangeChart,
    NpChart,
    PChart,
    RangeChart,
    SpcDataError,
    StdDevChart,
    UChart,
    XbarChart,
    baseline_mask,
    estimate_individuals,
    moving_ranges,
    rules_table,
    run_chart,
)
from .constants import CONSTANTS, SubgroupConstants, c4, d2, d3, subgroup_constants
from .monitor import FluctuationMonitor, MonitorConfig
from .rules import (
    ALL_RULES,
    DEFAULT_RULES,
    WESTERN_ELECTRIC,
    RunRuleTracker,
    apply_rules,
    parse_rules,
    rules_for_chart,
    standardise,
)
from .signals import CHART_NAMES, RULE_IDS, SpcSignal, describe

__all__ = [
    "ALL_RULES", "CHART_KINDS", "CHART_NAMES", "CONSTANTS", "DEFAULT_RULES", "RULE_IDS",
    "WESTERN_ELECTRIC", "CChart", "ChartPoint", "ChartResult", "CusumChart", "EwmaChart",
    "FluctuationMonitor", "IndividualsChart", "MonitorConfig", "MovingRangeChart",
    "NpChart", "PChart", "RangeChart", "RunRuleTracker", "SpcDataError", "SpcSignal",
    "SpecLimitCheck", "StdDevChart", "SubgroupConstants", "UChart", "XbarChart",
    "apply_rules", "baseline_mask", "c4", "cpk_upper", "d2", "d3", "describe",
    "estimate_individuals", "moving_ranges", "parse_rules", "rules_for_chart",
    "rules_table", "run_chart", "spec_limit_check", "standardise", "subgroup_constants",
]
