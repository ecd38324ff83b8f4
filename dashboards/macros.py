"""The grafana-clickhouse-datasource macros and template variables our panels use, expanded as the
plugin expands them, so a panel's SQL can be run outside Grafana (tests, ``qrisk dashboards check``).

A variable goes in as Grafana formats it, and the plugin formats a single value not at all
(CHDatasource.format returns it unchanged): ``${name}`` and ``$name`` paste the value into the SQL as it
is, quotes and backslashes included, as a viewer may set it in the URL (``?var-enterprise=…``).  Expanding
them escaped here hid an injection from every test; pasted as-is, a panel that quotes a variable itself
breaks on a value with a quote.  ``${name:percentencode}`` is Grafana's strict percent-encoding (only
letters, digits and ``-_.~`` stay), which nothing in a ClickHouse string literal reads as a quote or an
escape; the panels decode it in SQL (``decodeURLComponent``).

Only what the panels use is here; an unknown ``$__`` macro or variable format is an error, not passed through.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Mapping
from urllib.parse import quote

_MACRO = re.compile(r"\$__(\w+)(?:\(([^()]*)\))?")
# ${name}, $name, and ${name:format}: text (the text the variable's option shows, its query's second
# column), percentencode, raw
_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")


def _format(value: str, how: str | None) -> str:
    if how in (None, "raw", "text"):
        return value
    if how == "percentencode":
        # Grafana's encodeURIComponentStrict: encodeURIComponent, and !'()* too (UTF-8 bytes)
        return quote(value, safe="")
    raise ValueError(f"variable format :{how} is not one the panels use (text, percentencode, raw)")


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
        name, how = m.group(1) or m.group(3), m.group(2)
        if how == "text":
            # the option's text is given as "name:text"
            name = f"{name}:text"
        if name not in values:
            raise ValueError(f"template variable ${name} has no value")
        return _format(values[name], how)

    return _VARIABLE.sub(variable, out)


def variables_of(sql: str) -> set[str]:
    """The template variables a query uses (macros aside)."""
    return {m.group(1) or m.group(3) for m in _VARIABLE.finditer(_MACRO.sub("", sql))}
