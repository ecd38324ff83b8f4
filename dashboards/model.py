"""Grafana dashboard JSON models, built from a few plain functions.

Every panel queries qrisk's ClickHouse tables through the grafana-clickhouse-datasource plugin
(provisioned as ``qrisk-clickhouse`` by deploy/grafana/provisioning).  The SQL runs unchanged on
ClickHouse 18.16 (Debian's package, which the tests use) and on current releases (the compose
file's image, chdb): no ``JSONExtract*``, no window functions, no ``LowCardinality``, and no lambda
whose body names a column inside a function call (``c -> indexOf(item_codes, c)``: 18.16 answers
"Unknown identifier"; pass the column as an argument, ``replicate(item_codes, arr)``).
"""
from __future__ import annotations

from typing import Any

# the bureau's zone: its days (sampling dates, the time picker's days, weekly and monthly buckets) are
# local days.  The policy's utc_offset_hours is +8 by default; a bureau elsewhere changes it here.
BUREAU_TZ = "Asia/Shanghai"

DATASOURCE = {"type": "grafana-clickhouse-datasource", "uid": "qrisk-clickhouse"}
SCHEMA_VERSION = 39
# the plugin's query formats (grafana-clickhouse-datasource v4: Format.TIMESERIES / TABLE)
FORMAT_TIMESERIES, FORMAT_TABLE = 0, 1
# a count that is neither good nor bad (samples, enterprises, events): one colour, the text's, whatever its size
NEUTRAL = [(None, "text")]
# counts per bucket: bars (a bucket with nothing has no row, and a line would draw across it as if it had some;
# ClickHouse 18.16 has no WITH FILL to give it a zero)
BARS = {"drawStyle": "bars", "fillOpacity": 80, "lineWidth": 1, "showPoints": "never"}

# Effects are in ``effects`` (embedded pipeline, keyed by the log's seq) or in ``stream_effects``
# (Kafka workers through the sink, keyed by the enterprise's file version); a store holds one or
# the other, so panels read both.  ``version`` orders an enterprise's effects in either.
EFFECTS = (
    "(SELECT enterprise_id, seq AS version, idx, kind, event_id, occurred_at, data FROM effects FINAL"
    " UNION ALL"
    " SELECT enterprise_id, file_version AS version, idx, kind, event_id, occurred_at, data FROM stream_effects FINAL)"
)
EVENT_ARCHIVE = (
    "(SELECT event_type, enterprise_id, occurred_at, received_at FROM event_log FINAL"
    " UNION ALL"
    " SELECT event_type, enterprise_id, occurred_at, received_at FROM events FINAL)"
)


def data_text(key: str) -> str:
    """A top-level string field of an effect's ``data`` whose name occurs nowhere deeper."""
    return f"visitParamExtractString(data, '{key}')"


def data_number(key: str) -> str:
    return f"visitParamExtractFloat(data, '{key}')"


def data_text_before(key: str, next_key: str | tuple[str, ...] | None) -> str:
    """A top-level string field whose name may also occur deeper (in the evidence).

    ``data`` is written with sorted keys, so the top-level field is the last occurrence of the
    key that the next top-level key follows (``next_key=None``: the last key of the object; a tuple: any of
    them, for a field whose neighbour depends on which optional keys the effect carries).
    Every occurrence is matched (``extractAll``, left to right) and the last one taken: a leading
    ``^.*`` would say the same, but ClickHouse's ``extract`` does not always honour its greed.
    The JSON string is matched whole and unescaped by ``visitParamExtractString``, so quotes,
    backslashes and line breaks in a text come out as written.
    """
    if isinstance(next_key, tuple):
        next_key = "(?:" + "|".join(next_key) + ")"
    tail = f' *, *"{next_key}":' if next_key else " *}$"  # (compact JSON, or json.dumps's ", " and ": ")
    pattern = f'"{key}": *("(?:[^"\\\\\\\\]|\\\\\\\\.)*"){tail}'
    return f"""visitParamExtractString(concat('{{"v":', arrayElement(extractAll(data, '{pattern}'), -1), '}}'), 'v')"""


SEVERITY_ZH = "transform({0}, ['critical', 'high', 'medium', 'low'], ['紧急', '高', '中', '低'], {0})"
CATEGORY_ZH = "transform({0}, ['packaged_water', 'pastry', 'other'], ['包装饮用水', '糕点', '其他'], {0})"
COMPLAINT_CATEGORIES_ZH = {"foreign_matter": "异物", "spoilage": "变质", "illness": "食用后不适", "labelling": "标签标识", "taste_odour": "异味",
                           "hygiene": "卫生", "other": "其他"}
"""A complaint's category as the credit file names it (processors.warnings.COMPLAINT_ZH; a test keeps them equal)."""
COMPLAINT_KINDS_ZH = {"complaint": "投诉", "report": "举报"}
"""投诉 or 举报 (processors.credit_file.COMPLAINT_KIND_ZH)."""
COMPLAINT_CATEGORY_ZH = f"transform({{0}}, {list(COMPLAINT_CATEGORIES_ZH)}, {list(COMPLAINT_CATEGORIES_ZH.values())}, {{0}})"
COMPLAINT_KIND_ZH = f"transform({{0}}, {list(COMPLAINT_KINDS_ZH)}, {list(COMPLAINT_KINDS_ZH.values())}, {{0}})"


def target(sql: str, fmt: int = FORMAT_TABLE, ref: str = "A") -> dict[str, Any]:
    return {
        "datasource": DATASOURCE, "editorType": "sql", "format": fmt,
        "queryType": "timeseries" if fmt == FORMAT_TIMESERIES else "table",
        "rawSql": " ".join(sql.split()), "refId": ref,
    }


def panel(kind: str, title: str, sql: str, *, w: int, h: int, fmt: int = FORMAT_TABLE, description: str = "",
          unit: str | None = None, options: dict[str, Any] | None = None, thresholds: list[tuple[float | None, str]] | None = None,
          overrides: list[dict[str, Any]] | None = None, mappings: dict[str, str] | None = None,
          custom: dict[str, Any] | None = None, display_name: str | None = None) -> dict[str, Any]:
    """One panel; ids and positions are given by ``dashboard`` (left to right, then down).  ``thresholds``: (from,
    colour) steps (Grafana's default, red from 80, colours any figure without them); ``mappings``: a text value's
    colour (a grade); ``custom``: the field's draw options (a time series' style)."""
    defaults: dict[str, Any] = {}
    if unit:
        defaults["unit"] = unit
    if display_name:
        defaults["displayName"] = display_name
    if thresholds:
        defaults["thresholds"] = {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in thresholds]}
    if mappings:
        defaults["mappings"] = [{"type": "value", "options": {
            text: {"text": text, "color": colour, "index": i} for i, (text, colour) in enumerate(mappings.items())}}]
    if custom:
        defaults["custom"] = custom
    return {
        "type": kind, "title": title, "description": description, "datasource": DATASOURCE,
        "gridPos": {"w": w, "h": h}, "targets": [target(sql, fmt)],
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
    }


def variable(name: str, label: str, sql: str) -> dict[str, Any]:
    return {
        "name": name, "label": label, "type": "query", "datasource": DATASOURCE,
        "query": " ".join(sql.split()), "definition": " ".join(sql.split()), "refresh": 2, "sort": 1,
        "includeAll": False, "multi": False, "current": {},
    }


def dashboard(uid: str, title: str, panels: list[dict[str, Any]], *, description: str, time_from: str = "now-1y",
              variables: list[dict[str, Any]] | None = None, refresh: str = "1m") -> dict[str, Any]:
    """A whole dashboard model; panels are laid out in rows 24 units wide, in the order given."""
    x = y = row_h = 0
    laid = []
    for i, p in enumerate(panels, start=1):
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        laid.append({**p, "id": i, "gridPos": {"x": x, "y": y, "w": w, "h": h}})
        x += w
        row_h = max(row_h, h)
    return {
        "uid": uid, "title": title, "description": description, "tags": ["qrisk"], "timezone": BUREAU_TZ,
        "schemaVersion": SCHEMA_VERSION, "version": 1, "editable": False, "graphTooltip": 1, "refresh": refresh,
        "time": {"from": time_from, "to": "now"}, "templating": {"list": variables or []},
        "annotations": {"list": []}, "links": [{"type": "dashboards", "tags": ["qrisk"], "asDropdown": True, "title": "qrisk"}],
        "panels": laid,
    }
