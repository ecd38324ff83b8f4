"""停产 (enterprise.updated status suspended) and early removal from the 严重违法失信 list (enforcement.listing_removed,
信用修复): review r25, findings 7 and 4."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from pydantic import ValidationError

from ingest.lint import accepted_warnings
from processors.risk import check_missing, rank
from processors.step import Rules, replay, step
from qrisk.credit_report import build_report, render_text
from schemas.events import EVENT_TYPE_ZH, OperatingStatus
from schemas.export import export
from schemas.policy import Policy
from schemas.upcast import parse_event
from tests.conftest import golden
from tests.test_risk import E, ev, pa_sample, registered
from tests.test_warnings import decisions


def status(at: str, value: str):
    # (the golden update changes other fields too: this one changes the status alone)
    e = ev("enterprise.updated", at, status=value)
    return e.model_copy(update={"payload": e.payload.__class__(status=value)})


def tick(at: str):
    return ev("clock.tick", at, enterprise_id="*")


def clean(at: str, sample_no: str):
    return pa_sample(at, values=(0, 0, 0, 0, 0), sample_no=sample_no)


def inspected(at: str, inspection_id: str):
    return ev("inspection.completed", at, inspection_id=inspection_id, result="符合", findings=[])


# registered 2025-01-02 (B: a sample every 180 days, an inspection every 365), sampled 01-20, inspected 01-25
START = [registered("2025-01-02T09:00:00+08:00"), clean("2025-01-20T10:00:00+08:00", "S-1"), inspected("2025-01-25T10:00:00+08:00", "JC-1")]


def test_a_stopped_producer_is_awaited_for_no_sample_and_is_due_one_interval_after_it_resumes(rules):
    state, effects = replay(START + [status("2025-05-01T09:00:00+08:00", "suspended")], rules)
    f = state.files[E]
    (said,) = [e.data for e in effects if e.kind == "enterprise.status_changed"]
    assert (said["status"], said["status_zh"], said["on"]) == ("suspended", "停产", "2025-05-01")
    assert f.suspended_on == dt.date(2025, 5, 1) and f.deregistered_on is None
    # the sample due 2025-07-19 is not awaited while stopped, however long
    for at in ("2025-07-20T00:10:00+08:00", "2025-12-01T00:10:00+08:00"):
        state, effects = step(state, tick(at), rules)
        assert not decisions(effects, "data.missing")
    # inspections stay due by default (risk.inspect_while_suspended): 2025-01-25 + 365 days
    assert f.risk.next_inspection_due == dt.date(2026, 1, 25)
    state, effects = step(state, tick("2026-01-27T00:10:00+08:00"), rules)
    assert [d.evidence["what"] for d in decisions(effects, "data.missing")] == ["inspection"]
    assert [r["suspended_on"] for r in rank(state, dt.date(2026, 1, 27))] == ["2025-05-01"]
    assert rank(state, dt.date(2026, 1, 27))[0]["reasons"][0] == "停产（2025-05-01 起），暂停日常抽检"
    # producing again on 2026-03-01: sampling is due one interval (180 days) from that day, not overdue since 2025
    state, effects = step(state, status("2026-03-01T09:00:00+08:00", "operating"), rules)
    assert state.files[E].suspended_on is None
    assert [e.data["status_zh"] for e in effects if e.kind == "enterprise.status_changed"] == ["存续"]
    for at in ("2026-03-02T00:10:00+08:00", "2026-08-28T00:10:00+08:00"):
        state, effects = step(state, tick(at), rules)
        assert not [d for d in decisions(effects, "data.missing") if d.evidence["what"] == "sampling"]
    state, effects = step(state, tick("2026-08-29T00:10:00+08:00"), rules)
    (gap,) = [d.evidence for d in decisions(effects, "data.missing") if d.evidence["what"] == "sampling"]
    assert (gap["base"], gap["due"]) == ("2026-03-01", "2026-08-28")


def test_a_stop_closes_the_sampling_gap_already_raised(rules):
    state, effects = replay(START + [tick("2025-07-21T00:10:00+08:00")], rules)
    assert [d.evidence["what"] for d in decisions(effects, "data.missing")] == ["sampling"]
    state, effects = step(state, status("2025-08-01T09:00:00+08:00", "suspended"), rules)
    (closed,) = [e.data for e in effects if e.kind == "warning.resolved"]
    assert closed["dedup_key"] == f"{E}:data.missing:sampling:2025-01-20"
    assert closed["note_zh"].startswith("企业已于 2025-08-01 停产，停产期间不要求例行监督抽检")
    assert state.files[E].risk.missing == {}


def test_the_policy_may_pause_inspections_while_stopped(rules):
    paused = Rules(rules.catalogue, Policy.model_validate({"risk": {"inspect_while_suspended": False}}))
    state, _ = replay(START + [status("2025-05-01T09:00:00+08:00", "suspended")], paused)
    assert state.files[E].risk.next_inspection_due is None
    state, effects = step(state, tick("2026-02-01T00:10:00+08:00"), paused)
    assert not decisions(effects, "data.missing")
    assert "现场检查暂停" in render_text(build_report(state.files[E], paused))
    # back in business: the inspection plan restarts from that day too
    state, _ = step(state, status("2026-03-01T09:00:00+08:00", "operating"), paused)
    assert state.files[E].risk.next_inspection_due == dt.date(2027, 3, 1)


def test_a_sample_of_a_stopped_producer_still_counts_and_the_lab_hears_it(rules):
    state, _ = replay(START + [status("2025-05-01T09:00:00+08:00", "suspended")], rules)
    sample = pa_sample("2025-06-10T10:00:00+08:00", values=(0, 3, 0, 0, 0), sample_no="S-STOCK")
    state, effects = step(state, sample, rules)
    f = state.files[E]
    assert f.counts.samples == 2 and f.counts.samples_failed == 1 and f.risk.last_sampled_on == dt.date(2025, 6, 10)
    (w,) = [w for w in accepted_warnings(sample, rules.catalogue, f) if w["type"] == "enterprise_suspended"]
    assert w["field"] == "enterprise_id" and "自 2025-05-01 起停产" in w["reason_zh"]


def test_the_status_shows_as_stopped_in_the_credit_report_and_the_contract(rules):
    state, _ = replay(START + [status("2025-05-01T09:00:00+08:00", "suspended")], rules)
    text = render_text(build_report(state.files[E], rules))
    assert "经营状态：停产（2025-05-01 起，停产期间不安排日常抽检，恢复生产后重新起算；现场检查照常）" in text
    assert "suspended" in OperatingStatus.__args__
    doc = golden("enterprise.updated")
    doc["payload"] = {"status": "停产"}
    with pytest.raises(ValidationError) as e:
        parse_event(doc)
    assert "payload.status" in str(e.value) or "status" in str(e.value)


# ---------------------------------------------------------------- 提前移出 (信用修复)

LISTED = [registered(campaign_tier="A"),
          ev("enforcement.decided", "2026-05-18T15:00:00+08:00", serious_dishonesty=True, penalties=[{"kind": "warning"}])]


def removal(at: str = "2026-11-02T10:00:00+08:00", **payload):
    # (within a year of the decision: its points still weigh in the window)
    return ev("enforcement.listing_removed", at, **{"removed_on": at[:10], **payload})


def test_a_listing_removed_early_ends_the_d_and_keeps_the_decision_and_its_points(rules):
    state, _ = replay(LISTED + [tick("2026-11-01T00:10:00+08:00")], rules)
    f = state.files[E]
    listed_score = f.risk.score
    assert f.risk.grade == "D" and f.risk.current.override == "serious_dishonesty"
    state, effects = step(state, removal(), rules)
    f = state.files[E]
    (said,) = [e.data for e in effects if e.kind == "enforcement.listing_removed"]
    assert said["removed_on"] == "2026-11-02" and "提前移出" in said["message_zh"]
    # one level, as the pace rules allow; the penalty still weighs (a revocation would take its points away)
    assert f.risk.grade == "C" and f.risk.current.override is None and f.risk.score == listed_score
    (points,) = [c for c in f.risk.current.contributions if c.factor == "dynamic.enforcement"]
    assert points.points > 0 and f.enforcements[0].in_force
    # then a level a week (risk.improve_hold_days), by the dates, to its band
    for day in range(3, 30):
        state, _ = step(state, tick(f"2026-11-{day:02d}T00:10:00+08:00"), rules)
    assert state.files[E].risk.grade == state.files[E].risk.current.band != "D"
    text = render_text(build_report(state.files[E], rules))
    assert "是（已于 2026-11-02 提前移出（信用修复，示范县市监信修〔2027〕3号））" in text
    assert "已于 2026-11-02 提前移出（信用修复）" in text and "期满移出" not in text and "撤销" not in text.split("行政处罚")[0]


def test_a_removal_that_names_no_listing_is_kept_and_said(rules):
    unknown = removal(decision_no="示范县市监处罚〔2026〕99号")
    state, effects = replay(LISTED + [unknown], rules)
    (said,) = [e.data for e in effects if e.kind == "enforcement.listing_removal_refused"]
    assert (said["field"], said["reason"]) == ("payload.decision_no", "decision_unknown")
    assert state.files[E].risk.grade == "D"
    (w,) = accepted_warnings(unknown, rules.catalogue, state.files[E])
    assert (w["field"], w["type"]) == ("payload.decision_no", "decision_unknown")
    plain = [registered(), ev("enforcement.decided", "2026-05-18T15:00:00+08:00", penalties=[{"kind": "warning"}])]
    state, effects = replay(plain + [removal()], rules)
    assert [e.data["reason"] for e in effects if e.kind == "enforcement.listing_removal_refused"] == ["decision_not_listing"]
    # a second removal of the same listing: the first stands
    state, _ = replay(LISTED + [removal()], rules)
    again = removal("2026-11-10T10:00:00+08:00")
    state, effects = step(state, again, rules)
    assert state.files[E].enforcements[0].listing_removed_on == dt.date(2026, 11, 2)
    assert [w["type"] for w in accepted_warnings(again, rules.catalogue, state.files[E])] == ["listing_removed_already"]


def test_the_removal_is_a_contract_event(tmp_path):
    doc = golden("enforcement.listing_removed")
    event = parse_event(doc)
    assert event.payload.removed_on == dt.date(2027, 6, 1) and event.source.kind == "bureau"
    assert EVENT_TYPE_ZH["enforcement.listing_removed"] == "提前移出严重违法失信名单"
    from dashboards.boards import EVENT_TYPE_ZH as BOARD_ZH
    assert BOARD_ZH["enforcement.listing_removed"] == "提前移出严重违法失信名单"
    export(tmp_path)
    schema = json.loads((tmp_path / "enforcement.listing_removed.schema.json").read_text(encoding="utf-8"))
    assert set(schema["$defs"]["EnforcementListingRemoved"]["required"]) == {"decision_no", "removed_on", "reference_no", "reason"}
    whole = json.loads((tmp_path / "event.schema.json").read_text(encoding="utf-8"))
    assert "enforcement.listing_removed" in whole["discriminator"]["mapping"]
    update = json.loads((tmp_path / "enterprise.updated.schema.json").read_text(encoding="utf-8"))
    assert "suspended" in json.dumps(update["$defs"]["EnterpriseUpdate"]["properties"]["status"])
    # dated after it was recorded: refused at the door, naming the field
    doc["payload"]["removed_on"] = "2027-06-03"
    with pytest.raises(ValidationError) as e:
        parse_event(doc, {"door": True})
    assert "removed_on" in str(e.value)


def test_only_the_bureau_may_remove_a_listing():
    from qrisk.auth import posting_rules

    assert "enforcement.listing_removed" in posting_rules()["bureau"][0]
    assert all("enforcement.listing_removed" not in posting_rules()[r][0] for r in ("lab", "complaint", "inspector"))
