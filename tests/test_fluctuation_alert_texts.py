"""What a supervisor reads of the fluctuation and complaint-cluster alerts: the evidence in the
message's own units, and an instruction that matches the severity."""
from __future__ import annotations

import re

from alerts.lifecycle import evidence_zh
from processors.step import replay
from schemas.policy import ComplaintClusterRule, Policy
import datetime as dt

from tests.test_alerts import County, failing, policy
from tests.test_fluctuation import other_producer_failure
from tests.test_risk import E, ev, registered
from tests.test_warnings import decisions


def test_the_p_chart_evidence_is_in_per_cent_as_its_message(rules):
    """"本点 0.15（…中心线 0.019、上控制限 0.1106）" beside a message in 15 % and 11.1 %."""
    c = County(rules, policy())
    # (another producer's failure first: the county's chart waits for two producers' failures)
    c.feed(*other_producer_failure(dt.date(2026, 1, 20)), registered("2026-01-05T09:00:00+08:00"), failing("2026-02-10T10:00:00+08:00"),
           failing("2026-03-10T10:00:00+08:00"))
    alerts = [a for a in c.book.alerts.values() if a.rule == "fluctuation.signal"]
    mine = next(a for a in alerts if a.dedup_key == f"{E}:fluctuation:p:2026Q1")
    # (exact binomial limits: 1 failure of 2 is within them, an upper limit of 50 %)
    assert "抽检 2 批、不合格 2 批（100%），明显高于参考不合格率 1.90%（控制上限 50.0%）" in mine.message_zh
    assert re.fullmatch(r"抽样编号 S-\d+；不合格率 100%（抽检 2 批、不合格 2 批），中心线（参考不合格率）1\.90%、上控制限 50\.0%", evidence_zh(mine))
    county = next(a for a in alerts if a.dedup_key.startswith("county:packaged_water:fluctuation:p:"))
    assert "；不合格率 100%（抽检 2 批、不合格 2 批），中心线（参考不合格率）1.90%" in evidence_zh(county)
    for alert in (mine, county):
        assert "0.019" not in evidence_zh(alert) and "本点" not in evidence_zh(alert)


def test_the_c_chart_evidence_counts_complaints(rules):
    c = County(rules, policy())
    c.feed(registered("2026-01-05T09:00:00+08:00"),
           *[ev("complaint.received", f"2026-03-{d:02d}T10:00:00+08:00", complaint_id=f"K{d}") for d in (2, 9, 16, 20)])
    (alert,) = [a for a in c.book.alerts.values() if a.rule == "fluctuation.signal"]
    # exact Poisson limit at 0.3 a month: 3 complaints, the 4th signals
    assert "超出控制上限 3 件（预期每月 0.3 件；按此，一个月投诉 4 件及以上的概率约为 0.027%）" in alert.message_zh
    assert evidence_zh(alert) == "本月投诉 4 件（预期每月 0.3 件、上控制限 3 件）；投诉编号 K2、K9、K16、K20"  # (which ones)


def test_a_complaint_cluster_asks_for_what_its_severity_means(rules):
    """High (预警通报, to be handled within 48 h): not "请关注"."""
    rule = ComplaintClusterRule()
    assert rule.severity == "high" and rule.template_zh.endswith("下一步：请立即对企业开展现场检查，排查同批次产品，必要时开展监督抽检。") and "请关注" not in rule.template_zh
    cluster = [registered()] + [ev("complaint.received", f"2026-03-{d:02d}T10:00:00+08:00", complaint_id=f"K{d}", verified=True) for d in (1, 9, 20)]
    _, effects = replay(cluster, rules)
    (d,) = decisions(effects, "complaint.cluster")
    assert d.severity == "high" and d.message_zh.endswith("（阈值 3 件）。下一步：请立即对企业开展现场检查，排查同批次产品，必要时开展监督抽检。")
    assert Policy().warnings.complaint_cluster == rule


def test_the_credit_file_heading_of_its_charts_counts_pass_rate_signals(rules):
    """"【质量波动监测序列】（共 42 个，出现信号的 0 个）" under reasons naming a pass-rate signal."""
    from processors.fluctuation import series_heading_zh

    state, _ = replay([registered(), failing("2026-02-10T10:00:00+08:00"), failing("2026-03-10T10:00:00+08:00")], rules)
    fs = state.files[E].fluctuation
    periods = [p for p, pc in fs.pass_rate.items() if pc.signalled]
    assert periods == ["2026Q1"]
    assert series_heading_zh(len(fs.series), 0, periods) == f"共 {len(fs.series)} 个，出现信号的 0 个；抽检不合格率控制图（p 图）出现信号 1 次：2026年第1季度"
    assert series_heading_zh(42, 0, []) == "共 42 个，出现信号的 0 个"


def test_two_failures_of_two_suggest_a_systematic_problem_with_the_chance_that_says_so(rules):
    """2 of 2 batches over a 1.9 % reference: the p chart's normal limit (30.9 %) means little at n = 2,
    so the text quotes the chance of so many failures, P(X ≥ 2 | 2, 0.019) = 0.019² = 0.036 %, and
    suggests (可能) a systematic problem rather than ruling out chance."""
    _, effects = replay([*other_producer_failure(dt.date(2026, 1, 20)), registered("2026-01-05T09:00:00+08:00"),
                         failing("2026-02-10T10:00:00+08:00"), failing("2026-03-10T10:00:00+08:00")], rules)
    (d,) = [d for d in decisions(effects, "fluctuation.signal") if d.evidence.get("scope") == "enterprise"]
    assert ("按此参考不合格率，2 批中不合格 2 批及以上的概率约为 0.036%（为本次判断的概率；本季度每出现一批不合格即判断一次，"
            "偶然出现此信号的机会约 0.1%–0.7%，批次越多越高），提示可能存在系统性问题") in d.message_zh
    assert "不是偶然" not in d.message_zh
    assert abs(d.evidence["p_at_least"] - 0.019 ** 2) < 1e-15
    (p,) = [e for e in effects if e.kind == "fluctuation.signal" and e.data.get("scope") == "enterprise"]
    assert p.data["p_at_least"] == d.evidence["p_at_least"] and "P(at least 2 of 2 at the reference rate) = 0.00036" in p.data["text_en"]
    # the county's chart quotes its chance too, and leaves the cause to the enterprises' own charts
    (county,) = [d for d in decisions(effects, "fluctuation.signal") if d.evidence.get("scope") == "category"]
    assert "的概率约为" in county.message_zh and "系统性问题" not in county.message_zh



def test_a_ph_drift_is_told_without_a_unit_after_the_number(rules):
    """pH is a scale: 以往均值 6.15, not 6.15pH."""
    import datetime as dt

    from schemas.upcast import parse_event
    from tests.conftest import golden
    from tests.test_fluctuation import water_sample

    days = [dt.date(2025, 1, 5) + dt.timedelta(days=14 * i) for i in range(12)]
    values = [6.1, 6.2, 6.15, 6.1, 6.2, 6.15, 6.1, 6.2, 6.9, 6.95, 6.98, 6.99]
    log = [parse_event(golden("enterprise.registered"))] + [water_sample(d, 0.8, ph=v) for d, v in zip(days, values)]
    _, effects = replay(log, rules)
    texts = [d.message_zh for d in decisions(effects, "fluctuation.signal") if "pH" in d.message_zh]
    assert texts, "the drift raised no pH signal"
    assert all(not re.search(r"\d(pH|ＰＨ)", t) for t in texts), texts
    assert any(re.search(r"以往均值 6\.\d+[，）]", t) for t in texts), texts
