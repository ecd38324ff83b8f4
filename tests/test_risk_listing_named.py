"""Two listings, the later removed early (信用修复): what is said of the listing in force names the decision that still
lists the enterprise and its end — not the latest decided (CreditFile.serious_dishonesty), whose listing was removed."""
from processors.risk import explain
from processors.step import replay
from qrisk.credit_report import build_report, render_text
from tests.test_risk import E, ev, registered
from tests.test_risk_status import tick

FIRST = "示范县市监处罚〔2026〕5号"
EVENTS = [registered(campaign_tier="A"),
          ev("enforcement.decided", "2026-03-10T15:00:00+08:00", decision_no=FIRST, decided_on="2026-03-10",
             serious_dishonesty=True, penalties=[{"kind": "warning"}]),
          ev("enforcement.decided", "2026-05-18T15:00:00+08:00", serious_dishonesty=True, penalties=[{"kind": "warning"}]),
          ev("enforcement.listing_removed", "2027-01-05T10:00:00+08:00", removed_on="2027-01-05")]


def _reasons(file):
    return [c.detail_zh for c in file.risk.current.contributions if c.factor == "credit.serious_dishonesty"]


def test_the_report_names_the_listing_still_in_force(rules):
    for events in (EVENTS, EVENTS + [tick("2027-01-06T00:10:00+08:00")]):
        state, _ = replay(events, rules)
        f = state.files[E]
        assert f.risk.grade == "D"
        text = render_text(build_report(f, rules))
        assert f"已列入严重违法失信名单（{FIRST}，至 2029-03-10）" in text
        assert "示范县市监处罚〔2026〕12号，至" not in text
        # the grade's reasons (the API's and qrisk risk's contributions) name it too
        assert _reasons(f) == [f"行政处罚决定书 {FIRST}，直接定为 D 级（列入至 2029-03-10）"]


def test_reasons_without_a_day_name_the_longest_listing(rules):
    state, _ = replay(EVENTS, rules)
    f = state.files[E]
    (c,) = [c for c in explain(f, rules.policy.risk) if c.factor == "credit.serious_dishonesty"]
    assert c.detail_zh == f"行政处罚决定书 {FIRST}，直接定为 D 级（列入至 2029-03-10）"
