"""A statistician's review of the fluctuation charts: signals an in-control process must not raise,
each folded through the real ``replay()`` (one test per finding; the figures are in the review's
repro scripts)."""
from __future__ import annotations

import datetime as dt
import math
import random
import uuid

import pytest

from processors.step import Rules, replay
from schemas.policy import Policy
from schemas.upcast import parse_event
from tests.conftest import golden

_n = [0]


def _id() -> str:
    _n[0] += 1
    return str(uuid.UUID(int=700_000 + _n[0], version=4))


def registered(eid: str = "E-330110-001", category: str = "packaged_water", day: dt.date = dt.date(2025, 1, 2)):
    doc = golden("enterprise.registered")
    doc["event_id"] = _id()
    doc["enterprise_id"] = eid
    doc["occurred_at"] = f"{day.isoformat()}T09:00:00+08:00"
    doc["payload"]["category"] = category
    doc["payload"]["licence_no"] = "SC1063301100%04d" % (_n[0] % 10000)
    return parse_event(doc)


def complaint(day: dt.date, eid: str = "E-330110-001", category: str = "taste_odour"):
    doc = golden("complaint.received")
    doc["event_id"] = _id()
    doc["enterprise_id"] = eid
    doc["occurred_at"] = f"{day.isoformat()}T10:00:00+08:00"
    doc["payload"]["complaint_id"] = f"C{_n[0]}"
    doc["payload"]["category"] = category
    doc["payload"]["text"] = "桶装水有异味。"
    return parse_event(doc)


def sample(day: dt.date, items: list[dict], eid: str = "E-330110-001", product: str | None = None, lab: str | None = None):
    doc = golden("sampling.result")
    doc["event_id"] = _id()
    doc["enterprise_id"] = eid
    doc["occurred_at"] = f"{day.isoformat()}T10:00:00+08:00"
    p = doc["payload"]
    p["sample_no"] = f"S{_n[0]}"
    p["sampled_on"] = p["production_date"] = day.isoformat()
    if lab is not None:
        from tests.conftest import lab_source
        p["lab"] = lab
        doc["source"] = lab_source(lab)
    if product is not None:
        p["product"] = product
    p["items"] = items
    return parse_event(doc)


def monthly(i: int) -> dt.date:
    return dt.date(2025, 1, 6) + dt.timedelta(days=30 * i)


def signals(effects, **match):
    return [e for e in effects if e.kind == "fluctuation.signal" and all(e.data.get(k) == v for k, v in match.items())]


# --------------------------------------------------------------------------- 1. plan items: less is better


def test_a_fall_in_colony_counts_is_no_hazard(rules):
    """A bakery's 菌落总数 fell from ~3000 to ~300 CFU/g after it fixed its hygiene: four medium warnings
    said 明显低于以往水平 and 结果累积偏低, as if that were a risk (plan items are judged from above)."""
    vals = [3000, 3400, 2800, 3100, 2900, 3300, 3050, 2950] + [300, 280, 320, 310]
    log = [registered(category="pastry")]
    log += [sample(monthly(i), [{"item_code": "aerobic_plate_count", "values": [v, v // 2, v // 3, v // 4, v // 5],
                                 "unit": "CFU/g"}], product="蛋糕") for i, v in enumerate(vals)]
    state, effects = replay(log, rules)
    assert not signals(effects)
    assert not [e for e in effects if e.kind == "warning.raised" and e.data.get("rule") == "fluctuation.signal"]
    assert not [x for x in state.files["E-330110-001"].risk.entries if x[1] == "fluctuation_signal"]


# --------------------------------------------------------------------------- 2. complaints: exact Poisson limits


def test_the_complaint_chart_has_exact_poisson_limits(rules):
    """c̄ = 0.3 a month: the normal limit 0.3 + 3√0.3 = 1.94 made 2 complaints in a month a signal,
    P(X ≥ 2) = 3.7 %, 27 times the nominal 0.135 %.  Exactly: P(X ≥ 4) = 0.027 % < 0.135 % ≤ P(X ≥ 3)."""
    from processors.fluctuation import c_limits, poisson_at_least

    assert c_limits(0.3) == (0.0, 3.0)
    assert poisson_at_least(3, 0.3) >= 0.00135 > poisson_at_least(4, 0.3)
    days = [dt.date(2025, 3, d) for d in (3, 10, 17, 24)]
    log = [registered()]
    _, effects = replay(log + [complaint(d) for d in days[:3]], rules)
    assert not signals(effects, chart="c")
    _, effects = replay(log + [complaint(d) for d in days], rules)
    (c,) = signals(effects, chart="c")
    assert c.data["value"] == 4 and c.data["ucl"] == 3.0
    assert "投诉 4 件（均尚未核实属实），超出控制上限 3 件（预期每月 0.3 件；按此，一个月投诉 4 件及以上的概率约为 0.027%）" in c.data["text_zh"]


# --------------------------------------------------------------------------- 6. p chart: one precision


def test_the_p_chart_text_says_rate_and_limit_at_one_precision(rules):
    """'不合格 3 批（9%），明显高于…（控制上限 9.1%）': 3/32 = 9.4 % rounded to 9 % beside a limit at 0.1 %."""
    log = []
    for i in range(32):
        eid = f"E-330110-{600 + i:03d}"
        oxygen = 3.0 if i >= 29 else 0.8  # the last three fail (legal maximum 2.0 mg/L)
        log += [registered(eid), sample(dt.date(2025, 1, 6) + dt.timedelta(days=i), [
            {"item_code": "oxygen_consumption", "values": [oxygen], "unit": "mg/L"}], eid=eid)]
    _, effects = replay(log, rules)
    (county,) = signals(effects, chart="p", scope="category")
    assert county.data["n"] == 32 and county.data["failed"] == 3
    assert "抽检 32 批、不合格 3 批（9.4%），明显高于参考不合格率 1.90%（控制上限 9.1%）" in county.data["text_zh"]
