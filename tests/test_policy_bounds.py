"""A policy that would break grading or crash the fold is refused at load, naming the field and why (Chinese, then
English): negative weights, NaN or infinity anywhere, a D band no score reaches, inspection frequencies and sampling
intervals that are no plan.  Maxima not adding up to 100 are allowed and said; a 严重违法失信 listing naming no
enterprise on file is said in qrisk risk, at start and on /healthz."""
from __future__ import annotations

import copy
import json
import math

import pytest
import yaml
from conftest import Server

from qrisk.cli import main
from qrisk.settings import DEFAULT_POLICY, PolicyError, load_policy
from schemas.policy import Policy
from tests.test_risk import E, registered

BASE = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))


def _at(doc: dict, path: str, value) -> dict:
    doc = copy.deepcopy(doc)
    *parents, leaf = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    node[leaf] = value
    return doc


def _load(tmp_path, doc: dict) -> Policy:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return load_policy(path)


@pytest.mark.parametrize("path, value, said", [
    ("risk.dynamic.sampling_failed.by_class.pathogen", -15, "须不小于 0"),
    ("risk.static.category.packaged_water", -20, "须不小于 0"),
    ("risk.static.scale.large", -10, "须不小于 0"),
    ("risk.dynamic.inspection.result.不符合", -8, "须不小于 0"),
    ("risk.dynamic.inspection.finding.critical", -5, "须不小于 0"),
    ("risk.dynamic.enforcement.by_penalty.licence_revoked", -20, "须不小于 0"),
    ("risk.credit.campaign_tier.C", -30, "须不小于 0"),
    ("risk.bands.B", math.nan, "须为有限数"),
    ("risk.bands.D", math.inf, "须为有限数"),
    ("risk.dynamic.interview.points", math.nan, "须为有限数"),
    ("risk.inspections_per_year.D", math.nan, "须为有限数"),
    ("risk.inspections_per_year.B", 0.0001, "须不小于 0.1"),
    ("risk.inspections_per_year.D", 1000, "须不大于 365"),
    ("risk.sampling_interval_days.A", 10 ** 7, "须不大于 3650"),
    ("risk.sampling_interval_days.D", 0, "须不小于 1"),
    ("risk.dynamic.window_days", 10 ** 7, "须不大于 3660"),
    ("spc.ewma_L", math.inf, "须为有限数"),
    ("spc.cusum_h", math.nan, "须为有限数"),
    ("complaint_cluster.window_days", 10 ** 9, "须不大于 3660"),
    ("warnings.respond_within_hours.high", math.inf, "须为有限数"),
    ("alerts.closed_kept_days", 10 ** 9, "须不大于 3660"),
])
def test_a_value_that_breaks_grading_is_refused_naming_its_field(tmp_path, path, value, said):
    with pytest.raises(PolicyError) as caught:
        _load(tmp_path, _at(BASE, path, value))
    text = str(caught.value)
    assert f"{path}: {said}" in text and " / " in text, text


def test_a_d_band_no_score_reaches_is_refused():
    with pytest.raises(ValueError, match=r"risk\.bands\.D：D 级起点 150 分不低于风险分最高可得的 100 分"):
        Policy.model_validate(_at(BASE, "risk.bands.D", 150))
    # lowered maxima: the total is what D must start below
    low = _at(_at(BASE, "risk.dynamic.max", 10), "risk.credit.max", 5)  # 40 + 10 + 5 = 55
    with pytest.raises(ValueError, match=r"risk\.bands\.D.*不低于风险分最高可得的 55 分"):
        Policy.model_validate(low)
    assert Policy.model_validate(_at(low, "risk.bands", {"A": 0, "B": 20, "C": 35, "D": 50})).risk.max_score == 55


def test_maxima_not_adding_up_to_100_are_allowed_and_said(tmp_path):
    assert Policy().risk.scale_note() is None and _load(tmp_path, BASE).risk.scale_note() is None
    note = Policy.model_validate(_at(BASE, "risk.static.max", 80)).risk.scale_note()
    assert note.startswith("风险分满分为 140 分而非 100 分（static.max 80 + dynamic.max 40 + credit.max 20）")


def test_the_shipped_policy_and_its_defaults_load(tmp_path):
    assert _load(tmp_path, BASE) == Policy()


def _listing(eid: str) -> dict:
    return _at(BASE, "risk.credit.serious_dishonesty",
               [{"enterprise_id": eid, "decision_no": "某市市监信列〔2025〕3号", "listed_on": "2025-06-01", "authority": "某市市场监督管理局"}])


def test_a_listing_naming_no_enterprise_on_file_is_said():
    typo = Policy.model_validate(_listing("E-33011O-001")).risk.credit  # a letter O typed for a zero
    assert typo.unregistered_listings([E]) == ["E-33011O-001"]
    assert typo.unregistered_warning([E]).startswith("risk.credit.serious_dishonesty 列入严重违法失信名单的企业 E-33011O-001 在事件日志中没有登记")
    assert Policy.model_validate(_listing(E)).risk.credit.unregistered_warning([E]) is None
    bare = Policy.model_validate(_at(BASE, "risk.credit.serious_dishonesty", ["E-1", E])).risk.credit
    assert bare.unregistered_listings([E]) == ["E-1"]


def _events_file(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(registered().model_dump_json() + "\n", encoding="utf-8")
    return path


def test_qrisk_risk_says_a_bad_policy_in_one_line_and_a_typod_listing_as_a_warning(tmp_path, capsys):
    events = _events_file(tmp_path)
    bad = tmp_path / "nan.yaml"
    bad.write_text(yaml.safe_dump(_at(BASE, "risk.inspections_per_year.D", math.nan)), encoding="utf-8")
    assert main(["risk", "--events", str(events), "--policy", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "risk.inspections_per_year.D: 须为有限数（不能是 .nan 或 .inf） / Input should be a finite number" in err
    assert "Traceback" not in err
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump(_listing("E-33011O-001"), allow_unicode=True), encoding="utf-8")
    assert main(["risk", "--events", str(events), "--policy", str(typo), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)[0]["enterprise_id"] == E  # (stdout stays the document)
    assert "qrisk: 警告：risk.credit.serious_dishonesty 列入严重违法失信名单的企业 E-33011O-001 在事件日志中没有登记" in err
    other = tmp_path / "140.yaml"
    other.write_text(yaml.safe_dump(_at(BASE, "risk.static.max", 80), allow_unicode=True), encoding="utf-8")
    assert main(["risk", "--events", str(events), "--policy", str(other)]) == 0
    assert "qrisk: 警告：风险分满分为 140 分而非 100 分" in capsys.readouterr().err


def test_healthz_says_a_listing_naming_no_enterprise_on_file(tmp_path, monkeypatch):
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump(_listing("E-33011O-001"), allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("QRISK_POLICY_FILE", str(typo))
    server = Server(tmp_path / "data").start()
    try:
        health = server.get("/healthz").json()
        assert health["status"] == "degraded" and "E-33011O-001" in health["problems"]["policy_listings"]
        public = server.get("/healthz", headers={"authorization": ""}).json()
        assert public["problems"]["policy_listings"].startswith("策略中列入严重违法失信名单的企业编号在事件日志中没有登记")
    finally:
        server.stop()
    # and at start, where the unrouted towns are said
    assert "警告：risk.credit.serious_dishonesty 列入严重违法失信名单的企业 E-33011O-001" in server.log_path.read_text(encoding="utf-8")
