"""The grafana-clickhouse-datasource macros and template variables our panels use, expanded as the
plugin expands them, so a panel's SQL can be run outside Grafana (tests, ``qrisk dashboards check``).

Only what the panels use is here; an unknown ``$__`` macro is an error, not passed through.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Mapping

_MACRO = re.compile(r"\$__(\w+)(?:\(([^()]*)\))?")
# ${name}, $name, and ${name:text}: the text the variable's option shows (its query's second column)
_VARIABLE = re.compile(r"\$\{(\w+)(?::(text))?\}|\$(\w+)")


def _quote(value: str) -> str:
    # a template variable's value is pasted into the SQL as text: keep it one string literal
    return value.replace("\\", "\\\\").replace("'", "\\'")


def expand(sql: str, start: dt.datetime, end: dt.datetime, variables: Mapping[str, str] | None = None) -> str:
    """``sql`` with the panel's time range and variables filled in (times are UTC); ``${name:text}`` takes
    ``variables["name:text"]``."""
    t0, t1 = int(start.timestamp()), int(end.timestamp())
    d0, d1 = start.astimezone(dt.timezone.utc).date().isoformat(), end.astimezone(dt.timezone.utc).date().isoformat()

    def macro(m: re.Match) -> str:
        name, arg = m.group(1), (m.group(2) or "").strip()
        if name == "timeFilter":
            return f"{arg} >= toDateTime({t0}) AND {arg} <= toDateTime({t1})"
        if name == "dateFilter":
            return f"{arg} >= toDate('{d0}') AND {arg} <= toDate('{d1}')"
        if name == "fromTime":
            return f"toDateTime({t0})"
        if name == "toTime":
            return f"toDateTime({t1})"
        raise ValueError(f"unknown macro $__{name}")

    out = _MACRO.sub(macro, sql)
    values = dict(variables or {})

    def variable(m: re.Match) -> str:
        name = m.group(1) or m.group(3)
        if m.group(2):
            # the option's text is given as "name:text"
            name = f"{name}:{m.group(2)}"
        if name not in values:
            raise ValueError(f"template variable ${name} has no value")
        return _quote(values[name])

    return _VARIABLE.sub(variable, out)


def variables_of(sql: str) -> set[str]:
    """The template variables a query uses (macros aside)."""
    return {m.group(1) or m.group(3) for m in _VARIABLE.finditer(_MACRO.sub("", sql))}
