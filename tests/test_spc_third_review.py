"""A statistician's third review of the fluctuation charts (SPC), one test per finding: a baseline typo's signal
taken back with its report, an EWMA signal's evidence of one chart, the credit file's PNG after a new baseline,
colony counts reported as 0, and ``qrisk spc i``'s lower limits (the figures are in the review's repro scripts)."""
from __future__ import annotations

import argparse
import datetime as dt
import json

from alerts.lifecycle import evidence_zh
from processors.step import replay
from qrisk import cli_spc
from qrisk.backtest import state_as_of
from tests.test_corrections import E, REG, _measured
from tests.test_retraction import retraction
from tests.test_spc_false_alarms import monthly, registered, sample, signals

CONDUCTIVITY = "饮用纯净水|conductivity"
AT = dt.datetime(2026, 1, 2, 9, tzinfo=dt.timezone(dt.timedelta(hours=8)))
# 3.0–3.4 µS/cm, the 3rd typed ten times over (34 for 3.4): left out of the baseline, said when the 8th freezes it
VALUES = [3.0 + 0.1 * ((7 * i) % 5) for i in range(10)]


def _typo_log():
    return [_measured(i, v * 10 if i == 2 else v, AT + dt.timedelta(days=i)) for i, v in enumerate(VALUES)]


def _fluctuation_alerts(log, rules):
    alerts: dict = {}
    state = state_as_of([REG, *log], None, rules, alerts=alerts)
    return state, [a for a in alerts.values() if a.rule == "fluctuation.signal"]


def _scored(state):
    return [e for e in state.files[E].risk.entries if e[1] == "fluctuation_signal"]


# --------------------------------------------------------------------------- 1. a baseline typo, corrected or retracted


def test_the_baseline_outlier_signal_rests_on_the_outliers_report(rules):
    typo = _typo_log()
    state, effects = replay([REG, *typo], rules)
    (sig,) = [e for e in signals(effects) if e.data["rule"] == "baseline_outlier"]
    assert sig.event_id == str(typo[7].event_id) and sig.data["index"] == 3  # carried by the 8th, about the 3rd
    assert sig.data["rests_on_event_ids"] == [str(typo[2].event_id)]
    (entry,) = _scored(state)
    assert entry[2] == 2.0 and entry[3] == str(typo[2].event_id)
    _, (alert,) = _fluctuation_alerts(typo, rules)
    assert alert.state == "open" and "以往第 3 批" in alert.message_zh and "34" in alert.message_zh
    assert alert.evidence["event_ids"] == [str(typo[2].event_id)]
    assert alert.evidence["carried_by_event_id"] == str(typo[7].event_id)


def test_correcting_the_typo_closes_its_alert_and_drops_its_points(rules):
    typo = _typo_log()
    fix = _measured(2, VALUES[2], AT + dt.timedelta(days=40), sample_no=typo[2].payload.sample_no)
    state, fl = _fluctuation_alerts([*typo, fix], rules)
    assert fl and all(a.state == "closed" for a in fl)
    assert not _scored(state)
    s = state.files[E].fluctuation.series[CONDUCTIVITY]
    assert not any(p[7] for p in s.recent)  # the rebuilt series is clean


def test_retracting_the_typod_report_closes_its_alert_and_drops_its_points(rules):
    typo = _typo_log()
    gone = retraction(typo[2].payload.sample_no, at="2026-02-20T09:30:00+08:00")
    state, fl = _fluctuation_alerts([*typo, gone], rules)
    assert fl and all(a.state == "closed" for a in fl)
    assert not _scored(state)


def test_correcting_the_batch_that_froze_the_limits_keeps_the_outlier_alert(rules):
    typo = _typo_log()
    fix8 = _measured(7, round(VALUES[7] + 0.1, 1), AT + dt.timedelta(days=40), sample_no=typo[7].payload.sample_no)
    state, fl = _fluctuation_alerts([*typo, fix8], rules)
    assert [a.state for a in fl] == ["open"] and "以往第 3 批" in fl[0].message_zh
    assert len(_scored(state)) == 1
    s = state.files[E].fluctuation.series[CONDUCTIVITY]
    assert [p[7] for p in s.recent][2] == ("baseline_outlier",)


# --------------------------------------------------------------------------- 2. an EWMA signal's evidence


def test_an_ewma_signals_value_is_the_ewma_beyond_its_limit(rules):
    """耗氧量 0.78–0.84, then a shift to 0.92–0.94 and back to 0.85: the EWMA (0.8726 UCL) signals on 0.85, a result
    inside that limit; its evidence showed 0.85 against 0.8726."""
    base = [0.80, 0.84, 0.78, 0.82, 0.79, 0.83, 0.81, 0.80]
    later = [0.92, 0.93, 0.92, 0.94, 0.93, 0.85, 0.84]
    log = [registered()] + [sample(monthly(i), [{"item_code": "oxygen_consumption", "values": [v], "unit": "mg/L"}])
                            for i, v in enumerate(base + later)]
    _, effects = replay(log, rules)
    ewma = [e for e in signals(effects) if e.data["chart"] == "ewma"]
    assert ewma
    for e in ewma:
        d = e.data
        assert d["value"] > d["ucl"] if d["side"] == "upper" else d["value"] < d["lcl"]
        assert d["batch_value"] == (base + later)[d["index"] - 1]
    assert any(e.data["batch_value"] == 0.85 for e in ewma)
    alerts: dict = {}
    state_as_of(log, None, rules, alerts=alerts)
    alert = next(a for a in alerts.values() if a.rule == "fluctuation.signal" and a.evidence.get("chart") == "ewma")
    assert alert.evidence["value"] > alert.evidence["ucl"] and "batch_value" in alert.evidence
    assert "加权平均值（EWMA）" in evidence_zh(alert) and "本批结果" in evidence_zh(alert)


# --------------------------------------------------------------------------- 3. the credit file's PNG after a new baseline


def test_the_series_png_draws_each_phase_against_its_own_limits(rules, tmp_path, monkeypatch):
    import qrisk.spc_plot as sp
    from tests.test_rebaseline import KEY, NEW_RESULTS, OLD_RESULTS, rebaseline
    state, _ = replay([REG, *OLD_RESULTS, rebaseline(), *NEW_RESULTS], rules)
    s = state.files[E].fluctuation.series[KEY]
    seen: dict = {}
    monkeypatch.setattr(sp, "render_chart_png", lambda result, path, title, spec_limit=None: seen.update(result=result) or path)
    sp.render_series_png(s, tmp_path / "x.png", "清源")
    pts = seen["result"]["points"]
    old, new = [p for p in pts if p["index"] <= 10], [p for p in pts if p["index"] > 10]
    assert len(old) == 10 and len(new) == 10
    # the old phase was judged against limits the series no longer keeps: drawn without any, not against the new ones
    assert all(p["center"] is None and p["ucl"] is None and p["lcl"] is None for p in old)
    assert {p["phase"] for p in old} == {"第1段"}
    assert [p["phase"] for p in new] == ["I"] * 8 + ["II"] * 2
    assert all(p["lcl"] <= p["value"] <= p["ucl"] for p in new)


def test_the_series_png_without_a_new_baseline_marks_its_baseline(rules, tmp_path, monkeypatch):
    import qrisk.spc_plot as sp
    from tests.test_rebaseline import KEY, OLD_RESULTS
    state, _ = replay([REG, *OLD_RESULTS], rules)
    seen: dict = {}
    monkeypatch.setattr(sp, "render_chart_png", lambda result, path, title, spec_limit=None: seen.update(result=result) or path)
    sp.render_series_png(state.files[E].fluctuation.series[KEY], tmp_path / "x.png", "清源")
    pts = seen["result"]["points"]
    assert [p["phase"] for p in pts] == ["I"] * 8 + ["II"] * 2 and all(p["ucl"] is not None for p in pts)


# --------------------------------------------------------------------------- 4. colony counts reported as 0


def _coliforms(rules, rows, zero: bool):
    """A bakery's 大肠菌群 (n=5 c=2 m=10 M=100): "ND" with the lab's limit 10, or the same units reported as 0."""
    log = [registered(category="pastry")] + [
        sample(monthly(i), [{"item_code": "coliforms", "unit": "CFU/g",
                             **({"values": list(v)} if zero else
                                {"values": ["ND" if x == 0 else x for x in v], "detection_limit": 10})}], product="蛋糕")
        for i, v in enumerate(rows)]
    state, effects = replay(log, rules)
    return state.files["E-330110-001"].fluctuation.series["蛋糕|coliforms"], signals(effects)


def test_counts_reported_as_zero_are_not_detected_as_an_nd_is(rules):
    rows = [[0] * 5] * 8 + [[0, 20, 30, 0, 0]]  # eight batches below the counting range, then 20 and 30 CFU/g (passes)
    for zero in (False, True):
        s, sig = _coliforms(rules, rows, zero)
        assert s.censored and s.nd_points == 8, zero
        assert [g["rule"] for e in sig for g in e.data["signals"]] == ["nd_detected"], zero
        assert "以往连续 8 批均未检出" in sig[0].data["text_zh"] and sig[0].data.get("note")
    s, sig = _coliforms(rules, rows, zero=True)
    assert "检出限 1 CFU/g" in sig[0].data["text_zh"]  # fewer than one colony


def test_a_mostly_zero_baseline_is_not_charted_as_a_spread(rules):
    """Two 10s among eight batches of 0s: charted as if 0 were a measurement, the centre came out 0.727 CFU/g and the UCL
    43 CFU/g; a baseline mostly below the counting range has no spread to chart (spc.nd_share_max)."""
    rows = [[0] * 5] * 3 + [[0, 0, 10, 0, 0]] + [[0] * 5] * 4 + [[0, 0, 0, 10, 0], [0] * 5, [0, 20, 0, 0, 0]]
    s, sig = _coliforms(rules, rows, zero=True)
    assert s.censored and s.nd_points == 8
    assert all(e.data.get("note") for e in sig)


# --------------------------------------------------------------------------- 5. qrisk spc i: no lower limit below 0


def test_spc_i_never_prints_a_negative_lower_limit(tmp_path, capsys):
    path = tmp_path / "溴酸盐.csv"
    values = [0.001, 0.006, 0.0015, 0.005, 0.001, 0.0065, 0.002, 0.0055, 0.003, 0.004, 0.002]
    path.write_text("value\n" + "\n".join(map(str, values)) + "\n", encoding="utf-8")
    p = argparse.ArgumentParser(prog="qrisk")
    cli_spc.register(p.add_subparsers(dest="command", required=True))
    assert cli_spc.run(p.parse_args(["spc", "i", str(path), "--json"])) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["params"]["mode"] == "fold" and res["center"] - 3 * res["sigma"] < 0  # the limit as computed lies below 0
    assert res["lcl"] == 0.0 and all(p["lcl"] in (None, 0.0) for p in res["points"])
    assert cli_spc.run(p.parse_args(["spc", "i", str(path)])) == 0
    out = capsys.readouterr().out
    assert "LCL = 0 " in out and "LCL = -" not in out
