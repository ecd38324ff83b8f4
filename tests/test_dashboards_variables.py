"""Template variables reach the panels' SQL as the ClickHouse plugin pastes them: a single value as it is.  A
viewer sets any value in the URL (``?var-enterprise=x' OR 1 OR '``), so a panel must hold it as one string
whatever it holds: each board's panels run with hostile values on both backends (chdb, and the real ClickHouse
server) answer as for an enterprise that does not exist, and fail on none."""
from __future__ import annotations

import re

import pytest
from services import clickhouse_url, store  # noqa: F401 - fixtures

from dashboards.boards import DASHBOARDS
from dashboards.macros import expand
from tests.test_dashboards import WHOLE, _fold_into, _panels

# a quote closing the literal; a backslash escaping the closing quote (ClickHouse reads backslash escapes, so
# Grafana's sqlstring / singlequote formats are broken by it); a value ending in a backslash; a union
HOSTILE = ["x' OR 1 OR '", "x\\' OR 1 --", "x\\", "x' UNION ALL SELECT reason FROM dead_letters --"]


def test_a_variable_is_pasted_as_the_plugin_pastes_it():
    """CHDatasource.format returns a single value unchanged: ``${name}`` is the value, quotes and backslashes as
    they are; ``:percentencode`` is Grafana's strict percent-encoding; a format the panels do not use is an error."""
    start, end = WHOLE
    assert expand("SELECT '${enterprise}', '$enterprise'", start, end, {"enterprise": "O'Brien\\"}) == "SELECT 'O'Brien\\', 'O'Brien\\'"
    encoded = expand("SELECT '${v:percentencode}'", start, end, {"v": "x' OR 1 --\\ 溴酸盐 !()*~._-%+&="})
    assert encoded == "SELECT 'x%27%20OR%201%20--%5C%20%E6%BA%B4%E9%85%B8%E7%9B%90%20%21%28%29%2A~._-%25%2B%26%3D'"
    with pytest.raises(ValueError, match="sqlstring"):
        expand("SELECT ${v:sqlstring}", start, end, {"v": "x"})


def test_every_variable_in_the_sql_is_percent_encoded_and_decoded():
    """Every ``${…}`` in a panel's or a variable's SQL is ``decodeURLComponent('${name:percentencode}')``: no
    other form survives every value.  The variables are single-valued (a multi-value encodes as ``{a,b}``)."""
    safe = re.compile(r"decodeURLComponent\('\$\{\w+:percentencode\}'\)")
    for name, build in DASHBOARDS.items():
        model = build()
        sqls = [(p["title"], t["rawSql"]) for p in model["panels"] for t in p["targets"]]
        sqls += [(f"${v['name']}", v["query"]) for v in model["templating"]["list"]]
        for where, sql in sqls:
            left = re.sub(r"\$__\w+", "", safe.sub("", sql))
            assert "$" not in left, f"{name} / {where}: a variable not percent-encoded: {left[left.index('$'):][:60]}"
        for v in model["templating"]["list"]:
            assert not v["multi"] and not v["includeAll"], f"{name} / ${v['name']}"


def test_a_percent_encoded_value_comes_back_whole(store):  # noqa: F811 - a store on each backend
    start, end = WHOLE
    for value in [*HOSTILE, "E-330110-001", "溴酸盐（以BrO₃⁻计）", "a+b %41 \n\t\"`", ""]:
        rows = store.query(expand("SELECT decodeURLComponent('${v:percentencode}') AS v", start, end, {"v": value}))
        assert rows == [{"v": value}], value


def test_hostile_variables_find_nothing_and_break_nothing(store, rules):  # noqa: F811 - a store on each backend
    """The reviewer's ``x' UNION ALL …`` put 69 rows of dead letters and warnings into 当前风险等级: every board's
    panels, run with each hostile enterprise and item, answer as for an enterprise (an item) nobody has."""
    from qrisk.pipeline import DeadLetter
    from tests.test_corrections import E, REG, sample

    pipeline = _fold_into(store, rules, [REG, sample("2026-03-12T15:20:00+08:00", passes=False, sample_no="S-BAD"),
                                         sample("2026-04-12T15:20:00+08:00", sample_no="S-GOOD")])
    try:
        pipeline.dead_letter([DeadLetter(channel="http", position="req-1#0", raw=b'{"event_type": "sampling.result"}',
                                         reason="payload.sample_no: missing")])
        real = _panels(store, variables={"enterprise": E, "item": "bromate"})
        nobody = _panels(store, variables={"enterprise": "E-NOBODY", "item": "no_such_item"})
        no_item = _panels(store, variables={"enterprise": E, "item": "no_such_item"})
        (item_variable,) = [v for v in DASHBOARDS["enterprise.json"]()["templating"]["list"] if v["name"] == "item"]
        for value in HOSTILE:
            assert _panels(store, variables={"enterprise": value, "item": value}) == nobody, value
            assert _panels(store, variables={"enterprise": E, "item": value}) == no_item, value
            assert store.query(expand(item_variable["query"], *WHOLE, {"enterprise": value})) == [], value
        items = store.query(expand(item_variable["query"], *WHOLE, {"enterprise": E}))
    finally:
        pipeline.close()
    # (what "nothing" is measured against: the enterprise's own panels have rows, an unknown one's none)
    assert real[("enterprise.json", "当前风险等级")] and not nobody[("enterprise.json", "当前风险等级")]
    assert real[("enterprise.json", "检测值：${item:text}")] and not no_item[("enterprise.json", "检测值：${item:text}")]
    assert real[("enterprise.json", "抽检记录")] and not nobody[("enterprise.json", "抽检记录")]
    assert {"bromate"} <= {r["item_code"] for r in items}
    assert nobody[("intake.json", "未处理的拒收记录")], "the dead letter is there to be stolen"

