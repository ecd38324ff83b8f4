"""The county board's current grades leave out enterprises whose licence stands revoked (吊销许可证), as they leave out
the closed: qrisk risk lists both last with no inspection planned, and the board listed a revoked W03 as a current D.
A revocation undone on review (enforcement.revoked, licence_restored) or a new licence number puts it back; one of two
revoking decisions undone leaves it revoked."""
from __future__ import annotations

import datetime as dt

from services import clickhouse_url, store  # noqa: F401 - fixtures

from processors.step import replay
from tests.test_dashboards import _fold_into, _panels
from tests.test_risk import ev, pa_sample, registered

REVOKED, RESTORED, RENEWED, TWICE, PLAIN = (f"E-330110-10{i}" for i in range(5))


def _revoking(eid: str, at: str, no: str):
    return ev("enforcement.decided", at, eid, decision_no=no, decided_on=at[:10], penalties=[{"kind": "licence_revoked"}],
              sample_nos=[], inspection_ids=[])


def _undone(eid: str, at: str, no: str):
    return ev("enforcement.revoked", at, eid, decision_no=no, revoked_on=at[:10])


def _county():
    events = []
    for i, eid in enumerate((REVOKED, RESTORED, RENEWED, TWICE, PLAIN)):
        events += [registered("2025-01-05T09:00:00+08:00", eid, licence_no=f"SC1063301100001{i}"),
                   pa_sample("2026-03-02T10:00:00+08:00", enterprise_id=eid, sample_no=f"S-{eid}-1"),
                   pa_sample("2026-03-20T10:00:00+08:00", enterprise_id=eid, sample_no=f"S-{eid}-2")]
    events += [_revoking(REVOKED, "2026-04-01T10:00:00+08:00", "示范县市监处罚〔2026〕31号"),
               _revoking(RESTORED, "2026-04-01T10:00:00+08:00", "示范县市监处罚〔2026〕32号"),
               _undone(RESTORED, "2026-04-20T10:00:00+08:00", "示范县市监处罚〔2026〕32号"),
               _revoking(RENEWED, "2026-04-01T10:00:00+08:00", "示范县市监处罚〔2026〕33号"),
               ev("enterprise.updated", "2026-04-25T10:00:00+08:00", RENEWED, licence_no="SC10633011000099"),
               _revoking(TWICE, "2026-04-01T10:00:00+08:00", "示范县市监处罚〔2026〕34号"),
               _revoking(TWICE, "2026-04-10T10:00:00+08:00", "示范县市监处罚〔2026〕35号"),
               _undone(TWICE, "2026-04-20T10:00:00+08:00", "示范县市监处罚〔2026〕34号")]
    return events


def test_a_new_licence_number_after_a_revocation_says_so(rules):
    state, effects = replay(_county(), rules)
    assert state.files[RENEWED].licence_revoked is None
    renewed = [e for e in effects if e.data.get("licence_renewed")]
    assert [(e.kind, e.enterprise_id) for e in renewed] == [("enterprise.profile_changed", RENEWED)]
    # re-registered under a new licence number: the same
    state, effects = replay(_county() + [registered("2026-05-01T09:00:00+08:00", TWICE, licence_no="SC10633011000098")], rules)
    assert state.files[TWICE].licence_revoked is None
    assert [e.enterprise_id for e in effects if e.data.get("licence_renewed")] == [RENEWED, TWICE]


def test_the_current_grades_leave_out_the_licence_revoked(store, rules):  # noqa: F811 - fixture
    pipeline = _fold_into(store, rules, _county(), now=dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc))
    try:
        files = pipeline.state.files
        assert {eid for eid, f in files.items() if f.licence_revoked} == {REVOKED, TWICE}
        graded = {eid: f.risk.grade for eid, f in files.items()}
        assert set(graded.values()) <= {"C", "D"}, graded  # every one would be listed but for its licence
        panels = _panels(store)
        listed = {r["企业"] for r in panels[("county.json", "C/D 级企业（当前）")]}
        assert listed == {RESTORED, RENEWED, PLAIN}
        [pie] = panels[("county.json", "风险等级分布（当前）")]
        assert {g: n for g, n in pie.items() if n} == {g: sum(1 for e in listed if graded[e] == g) for g in set(graded[e] for e in listed)}
    finally:
        pipeline.close()
