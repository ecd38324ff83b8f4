"""The alert panels' and the fold-order readers' findings of the dashboards review, each on a small store built
through the real pipeline (or, for an event of a thousand effects, with effects rows as the pipeline writes them),
the panels' SQL run as Grafana would run it (tests/test_dashboards.py: ``_panels``)."""
from __future__ import annotations

import datetime as dt
import json

from services import clickhouse_url, store  # noqa: F401 - fixtures

from tests.test_dashboards import _panels


def _effect(seq, idx, kind, data, at="2026-03-01 00:00:00"):
    return {"seq": seq, "idx": idx, "kind": kind, "enterprise_id": "E-BIG", "event_id": f"ev-{seq}",
            "occurred_at": dt.datetime.fromisoformat(at), "data": json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))}


def test_the_folds_order_holds_past_a_thousand_effects_of_one_event(store):  # noqa: F811 - fixture
    """Effects were ordered by version * 1000 + idx: the 1,500th effect of event 5 (a tick re-grading a large county)
    came after event 6's first.  The newest grade, name and rectification state are by (version, idx)."""
    rows = [
        _effect(5, 1500, "enterprise.registered", {"name": "旧名称", "category": "pastry"}),
        _effect(6, 0, "enterprise.profile_changed", {"name": "新名称", "category": "packaged_water"}),
        _effect(5, 1501, "risk.graded", {"grade": "D", "score": 70.0, "as_of": "2026-03-01T00:00:00Z"}),
        _effect(6, 1, "risk.graded", {"grade": "A", "score": 10.0, "as_of": "2026-03-02T00:00:00Z"}),
        _effect(5, 1502, "rectification.ordered", {"rectification_id": "R1"}),
        _effect(5, 1503, "rectification.overdue", {"rectification_id": "R1"}),
        _effect(6, 2, "rectification.overdue_withdrawn", {"rectification_id": "R1"}),
    ]
    store.insert("effects", rows)
    got = _panels(store, variables={"enterprise": "E-BIG", "item": "x"})
    assert got[("county.json", "风险等级分布（当前）")] == [{"等级": "A", "企业数": 1}]
    assert got[("enterprise.json", "当前风险等级")] == [{"等级": "A"}]
    assert got[("county.json", "C/D 级企业")] == []
    assert got[("county.json", "整改逾期（当前）")] == [{"逾期": 0}]
    picker = store.query("SELECT name FROM (" + __import__("dashboards.boards", fromlist=["NAMES"]).NAMES + ")")
    assert picker == [{"name": "新名称"}]


def test_warnings_raised_in_one_event_of_a_thousand_effects_keep_their_order(store):  # noqa: F811 - fixture
    """An alert raised twice: by event 5's 1,500th effect, then by event 6's first.  Its row shows the latest raise
    (event 6's text), not the one a number version * 1000 + idx put last."""
    def raised(seq, idx, message):
        return _effect(seq, idx, "warning.raised", {
            "dedup_key": "E-BIG:x", "severity": "medium", "title_zh": "质量波动", "message_zh": message, "occurred_at": "2026-03-01T00:00:00Z",
            "evidence": {"event_ids": [f"ev-{seq}"]}})

    store.insert("effects", [raised(5, 1500, "较早的一次"), raised(6, 0, "最近的一次")])
    store.insert("alerts", [{"alert_id": "AL-1", "enterprise_id": "E-BIG", "kind": "fluctuation.signal", "severity": "medium", "state": "open",
                             "title": "质量波动", "group_key": "E-BIG:x", "assignee": "", "opened_at": dt.datetime(2026, 3, 1),
                             "updated_at": dt.datetime(2026, 3, 1), "updated_ms": 0, "version": 2, "event_id": "ev-6", "evidence": ""}])
    got = _panels(store, variables={"enterprise": "E-BIG", "item": "x"})
    (row,) = got[("county.json", "最新预警")]
    assert (row["说明"], row["触发事件"], row["触发次数"]) == ("最近的一次", "ev-6", 2)
