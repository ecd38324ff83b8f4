"""A realistic county for demonstration and benchmarks.

32 small producers (packaged water and pastries), twelve months of supervision
sampling, complaints, inspections and rectifications drawn from the real items
and limits of the catalogue, with four problems planted for the pipeline to
find:

- 清泉水厂 (W03), sampled twice a month, drifts: from June oxygen consumption
  climbs towards its limit and, from September, 铜绿假单胞菌 (P. aeruginosa)
  shows up in the five-unit plan — the fluctuation charts speak first;
- 香满园糕点 (P05) raises its sorbic and propionic acid doses each month until
  the GB 2760 sum of ratios passes 1 although each stays under its own limit; the
  lab's first report over it misses the sum (each preservative 合格): qrisk's own
  check finds it, and the later reports fail it on the lab's word;
- 山泉源水业 (W07) receives a cluster of verified complaints in May;
- 喜福来糕点 (P09) fails an inspection in June and never completes the
  rectification it was ordered; the bureau calls its legal representative in (约谈)
  after the deadline;
- 香满园糕点 (P05), once its preservatives fail, gets a 行政处罚决定 (confiscation
  and a fine for 超限量使用食品添加剂).

The upgrade campaign (提档升级) runs through the same year for every producer: the commitment
letter, tiering, a visit, expert help for C-tier plants, training and the exam (with a make-up
session where staff were missed: the "three ones" ask for the whole staff), a self-inspection,
a comparison test with the county lab, acceptance.  W03 fails its comparison test and its
acceptance; P09 trains too few staff and never inspects itself.

The log's clock ticks every local midnight (``daily_ticks``), as ``qrisk run`` ticks, so a
rectification past its deadline (整改逾期) is raised the day after it, not at the year's end; the
ticks run through the day of the last event (follow-ups go on into the next year), and a closing
tick at the end of that day (the only one with ``daily_ticks=False``) leaves every grade and
overdue mark as of the end of the period the events span.

Everything is drawn from one ``random.Random(seed)``: the same seed gives the
same events and byte-identical output.
"""
from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from processors.campaign import CHECK_ZH
from processors.credit_file import CountyState
from alerts.messages import RULE_ZH
from processors.step import Effect
from processors.warnings import ALERT_KIND
from schemas.events import EVENT_TYPE_ZH, Envelope
from schemas.working_days import moved_deadline_zh
from schemas.upcast import parse_event
from qrisk.cli_text import pad, width as text_width

CST = dt.timezone(dt.timedelta(hours=8))
BUREAU = {"kind": "bureau", "id": "county-msb", "name": "县市场监督管理局"}
LABS = [
    {"kind": "lab", "id": "CMA-330100-0451", "name": "县食品检验检测中心"},
    {"kind": "lab", "id": "CMA-330000-0127", "name": "省食品药品检验研究院"},
]
SLOW_LAB = LABS[1]["name"]
"""The lab the demo plants as often late (检验报告超时): a provincial institute busy with every county's samples."""
TICK_NAMESPACE = uuid.UUID("6f1d3c52-8a7e-4e0b-9a55-2f1c0d7e9b31")
"""The daily ticks' ids: uuid5 of seed, county and date."""
CLOSING_TIME = dt.time(23, 59, 59)
"""The closing tick's local time on the last event's day: its end, as ``qrisk.backtest.as_of_tick`` ticks."""
TASK_SOURCES = ["示范县市场监督管理局", "省市场监督管理局"]
INSPECTORS = [("insp-011", "王建国"), ("insp-017", "李文静"), ("insp-023", "陈志强"), ("insp-031", "赵晓燕")]
TOWNS = ["城关镇", "东溪镇", "西岭乡", "南湖街道", "北山镇", "临江镇"]

WATER_NAMES = [
    "清源桶装水厂", "碧泉饮品", "清泉水厂", "甘露纯净水", "雪峰饮用水", "天池水业", "山泉源水业", "润康水厂",
    "绿源饮品", "沁心纯净水", "玉泉水业", "灵溪水厂", "云溪饮用水", "康乐水业", "泉之源饮品", "百川水厂",
    "清溪桶装水", "瑞丰水业",
]
PASTRY_NAMES = [
    "稻香村糕点坊", "金麦园食品", "好味道糕点", "麦香坊", "香满园糕点", "桂香斋", "酥香阁食品", "福满堂食品",
    "喜福来糕点", "鑫源糕饼", "老街口糕点", "四季香食品", "甜心烘焙", "乡味糕点坊",
]


@dataclass(frozen=True)
class Enterprise:
    enterprise_id: str
    name: str
    category: str
    town: str
    scale: str
    tier: str


class CountyGenerator:
    def __init__(self, seed: int = 2025, start: dt.date = dt.date(2025, 1, 1), months: int = 12, county: str = "",
                 campaign: bool = True, daily_ticks: bool = True):
        self.rng = random.Random(seed)
        # re-tests draw from their own stream, so that adding them left every other planted story as it was
        self.retest_rng = random.Random(f"{seed}/复检")
        # so do the campaign's events (off: the county as the benchmarks have always folded it)
        self.campaign_rng = random.Random(f"{seed}/提档升级")
        # and the bureau's enforcement decision and interview
        self.enforcement_rng = random.Random(f"{seed}/执法")
        self.makeup_rng = random.Random(f"{seed}/补训")  # (the make-up trainings came later)
        # and the labs' receipt dates and the slow lab's delays (收样, 检验时限), which came later still
        self.turnaround_rng = random.Random(f"{seed}/收样")
        # and the complaints' kinds (投诉 / 举报), acceptance dates and the one concluded late (办理时限), later again
        self.complaint_rng = random.Random(f"{seed}/投诉举报")
        self.late_conclusion_planted = False
        # and the channel's acceptance decisions (受理决定), later again
        self.acceptance_rng = random.Random(f"{seed}/受理决定")
        self.sum_missed = False  # P05's one report that misses its failing sum of ratios (see _pastry_year)
        self.campaign = campaign
        # a clock.tick every local midnight, as `qrisk run` ticks (every tick_seconds), so that what is
        # due is raised on the day (off: one tick at the end, the county the benchmarks have always folded)
        self.daily_ticks = daily_ticks
        self.seed = seed
        self.county = county  # prefixes enterprise ids, so several counties can share one log (benchmarks)
        self.start = start
        self.months = months
        self.events: list[tuple[dt.datetime, int, dict[str, Any]]] = []
        self.enterprises: list[Enterprise] = []
        self._order = 0

    # ------------------------------------------------------------------ helpers

    def _id(self, rng: random.Random | None = None) -> str:
        return str(uuid.UUID(int=(rng or self.rng).getrandbits(128), version=4))

    def _at(self, day: dt.date, hour: int | None = None) -> dt.datetime:
        hour = hour if hour is not None else self.rng.randint(8, 17)
        return dt.datetime(day.year, day.month, day.day, hour, self.rng.randint(0, 59), tzinfo=CST)

    def _month_day(self, month_index: int, lo: int = 1, hi: int = 28) -> dt.date:
        year = self.start.year + (self.start.month - 1 + month_index) // 12
        month = (self.start.month - 1 + month_index) % 12 + 1
        return dt.date(year, month, self.rng.randint(lo, hi))

    def _emit(self, event_type: str, enterprise_id: str, at: dt.datetime, source: dict[str, Any], payload: dict[str, Any],
              rng: random.Random | None = None, event_id: str | None = None) -> None:
        self._order += 1
        self.events.append((at, self._order, {
            "event_id": event_id or self._id(rng), "event_type": event_type, "schema_version": 2,
            "enterprise_id": enterprise_id, "occurred_at": at.isoformat(), "source": source, "payload": payload,
        }))

    # ------------------------------------------------------------------ the county

    @property
    def period(self) -> tuple[dt.date, dt.date]:
        """The months sampled; registrations come before, follow-ups may come after."""
        end_month = self._month_day(self.months, 1, 1)
        return self.start, end_month - dt.timedelta(days=1)

    def generate(self) -> list[Envelope]:
        rng = self.rng
        for i, name in enumerate(WATER_NAMES, 1):
            self.enterprises.append(Enterprise(f"{self.county}W{i:02d}", name, "packaged_water", rng.choice(TOWNS), rng.choice(["micro", "small", "small", "medium"]), rng.choice(["B", "C"])))
        for i, name in enumerate(PASTRY_NAMES, 1):
            self.enterprises.append(Enterprise(f"{self.county}P{i:02d}", name, "pastry", rng.choice(TOWNS), rng.choice(["micro", "small", "small", "medium"]), rng.choice(["B", "C"])))
        registered = dt.datetime.combine(self.start - dt.timedelta(days=20), dt.time(9, 0), CST)
        for n, e in enumerate(self.enterprises):
            prefix = "SC106" if e.category == "packaged_water" else "SC124"
            self._emit("enterprise.registered", e.enterprise_id, registered + dt.timedelta(minutes=n), BUREAU, {
                "licence_no": f"{prefix}3301{rng.randint(10_000_000, 99_999_999)}", "name": e.name,
                "address": f"{e.town}{rng.choice(['工业路', '兴业街', '振兴路', '创业大道'])}{rng.randint(1, 200)}号",
                "town": e.town, "region": "示范县", "category": e.category, "scale": e.scale,
                "population_served": rng.randint(2_000, 40_000) if e.category == "packaged_water" else None,
                "campaign_tier": e.tier,
            })
        for e in self.enterprises:
            if e.category == "packaged_water":
                self._water_year(e)
            else:
                self._pastry_year(e)
            self._inspections(e)
            self._complaints(e)
            if self.campaign:
                self._campaign(e)
        # the bureau acts on what it learned within the sampled months (its decisions come before this day)
        self._enforcement(self._month_day(self.months - 1, 28, 28) + dt.timedelta(days=3))
        # follow-ups (re-tests, rectifications, late lab reports) run past the sampled months: the
        # clock runs until the end of the day of the last of them, so that what is overdue by then is
        # raised and every grade is as of the end of the period the events span
        last_day = self.last_day
        if self.daily_ticks:
            # ids from the date (no draw from the random streams, so every other event is as it was)
            day = self.start + dt.timedelta(days=1)
            while day <= last_day:
                self._emit("clock.tick", "*", dt.datetime.combine(day, dt.time(0, 0), CST), {"kind": "system", "id": "qrisk-demo"}, {},
                           event_id=str(uuid.uuid5(TICK_NAMESPACE, f"{self.seed}/{self.county}/{day.isoformat()}")))
                day += dt.timedelta(days=1)
        # the closing tick, after the last event: the end of its day (as `qrisk risk --as-of` ticks)
        self._emit("clock.tick", "*", dt.datetime.combine(last_day, CLOSING_TIME, CST), {"kind": "system", "id": "qrisk-demo"}, {})
        self.events.sort(key=lambda t: (t[0], t[1]))
        return [parse_event(doc) for _, _, doc in self.events]

    @property
    def last_day(self) -> dt.date:
        """The local day of the last event generated (clock ticks aside)."""
        return max(at for at, _, doc in self.events if doc["event_type"] != "clock.tick").astimezone(CST).date()

    # ------------------------------------------------------------------ the upgrade campaign

    def _campaign(self, e: Enterprise) -> None:
        """提档升级 over the year: commitment, tiering, training, assistance, the "three ones", acceptance.

        Planted: 清泉水厂 (W03) fails its comparison test on oxygen consumption (the drift shows in
        its own lab too late) and its acceptance; 喜福来糕点 (P09) trains too few staff and never does
        a self-inspection; the rest mostly get through, C-tier plants with expert help, and move up a tier.
        """
        rng = self.campaign_rng
        eid = e.enterprise_id
        w03, p09 = eid == f"{self.county}W03", eid == f"{self.county}P09"

        def day(m: int, lo: int = 1, hi: int = 28) -> dt.date:
            year = self.start.year + (self.start.month - 1 + m) // 12
            month = (self.start.month - 1 + m) % 12 + 1
            return dt.date(year, month, rng.randint(lo, hi))

        def at(d: dt.date) -> dt.datetime:
            return dt.datetime(d.year, d.month, d.day, rng.randint(9, 17), rng.randint(0, 59), tzinfo=CST)

        def emit(event_type: str, d: dt.date, payload: dict[str, Any]) -> None:
            self._emit(event_type, eid, at(d), BUREAU, payload, rng)

        if self.months < 12:
            return  # the campaign takes a year
        signed = day(0, 10, 28)
        emit("campaign.commitment", signed, {"signed_on": signed.isoformat(), "signatory": f"{e.name}负责人",
                                             "document_no": f"TDSJ-{signed.year}-{eid[-3:]}"})
        tiered = day(1)
        dims = ("staff", "control", "stability", "technology", "brand")
        base = 70 if e.tier == "B" else 58
        emit("campaign.assessment", tiered, {"kind": "tiering", "assessed_on": tiered.isoformat(), "tier": e.tier,
                                             "scores": {k: base + rng.randint(-8, 8) for k in dims}, "assessor": "县局调查分档组"})
        visit = day(2)
        emit("campaign.activity", visit, {"kind": "visit", "on": visit.isoformat(), "note": "组织到标杆企业观摩生产过程控制"})
        if e.tier == "C" or w03:
            helped = day(3)
            emit("campaign.activity", helped, {"kind": "expert_assistance", "on": helped.isoformat(), "note": "专家到厂指导检验室建设与出厂检验"})
        staff = rng.randint(8, 40)
        trained = staff - (rng.randint(4, 6) if p09 else rng.randint(0, max(0, staff // 12)))
        takers = trained
        first_pass = max(0, takers - rng.randint(0, max(1, takers // 4)))
        posts = rng.randint(2, 5)
        reported = day(5)
        certified = posts - (1 if p09 or rng.random() < 0.1 else 0)
        emit("campaign.training", reported, {"as_of": reported.isoformat(), "staff_total": staff, "staff_trained": trained,
                                             "exam_takers": takers, "exam_first_pass": first_pass, "key_posts": posts,
                                             "key_posts_certified": certified})
        if min(trained, takers) < staff and not p09:
            self._make_up_training(e, reported, staff, takers, first_pass, posts, certified)
        if not p09:
            checked = day(6)
            found = rng.randint(2, 9)
            emit("campaign.activity", checked, {"kind": "self_inspection", "on": checked.isoformat(), "findings": found,
                                                "rectified": found - (0 if rng.random() < 0.8 else 1), "note": "对照许可审查细则全面自查"})
        compared = day(7)
        if e.category == "packaged_water":
            lab_value = round(rng.uniform(0.6, 1.0), 2)
            mine = round(lab_value * (1.45 if w03 else 1 + rng.uniform(-0.05, 0.05)), 2)
            test = {"item_code": "oxygen_consumption", "enterprise_value": mine, "lab_value": lab_value,
                    "enterprise_uncertainty": 0.08, "lab_uncertainty": 0.05}
        else:
            lab_value = float(rng.randint(300, 900))
            test = {"item_code": "aerobic_plate_count", "enterprise_value": round(lab_value * (1 + rng.uniform(-0.08, 0.08))), "lab_value": lab_value}
        emit("campaign.activity", compared, {"kind": "comparison_test", "on": compared.isoformat(), "lab": LABS[0]["name"], **test,
                                             "note": "与具备资质的检验机构比对"})
        accepted = day(11, 1, 20)
        passed = not (w03 or p09) and rng.random() < 0.85
        better = {"B": "A", "C": "B"}[e.tier] if passed and rng.random() < 0.7 else e.tier
        emit("campaign.assessment", accepted, {"kind": "acceptance", "assessed_on": accepted.isoformat(), "tier": better, "passed": passed,
                                               "scores": {k: base + (12 if passed else 0) + rng.randint(-5, 5) for k in dims},
                                               "assessor": "县局验收组", "note": "" if passed else "未达到验收要求，限期整改后复验"})

    def _make_up_training(self, e: Enterprise, reported: dt.date, staff: int, takers: int, first_pass: int, posts: int,
                          certified: int) -> None:
        """补训补考: the staff missed at the first training are trained and examined a few weeks later,
        so that the "three ones" (全员培训考试, the whole staff) are met; P09 never does it.  From a
        stream of its own, so that the campaign's other draws are as they were."""
        rng = self.makeup_rng
        later = reported + dt.timedelta(days=rng.randint(20, 40))
        at = dt.datetime(later.year, later.month, later.day, rng.randint(9, 17), rng.randint(0, 59), tzinfo=CST)
        missed = staff - takers
        self._emit("campaign.training", e.enterprise_id, at, BUREAU, {
            "as_of": later.isoformat(), "staff_total": staff, "staff_trained": staff, "exam_takers": staff,
            "exam_first_pass": first_pass + rng.randint(max(0, missed - 1), missed), "key_posts": posts, "key_posts_certified": certified}, rng)

    # ------------------------------------------------------------------ enforcement (行政处罚) and interviews (约谈)

    def _enforcement(self, end: dt.date) -> None:
        """The bureau acts on two planted stories, from what the year's events already hold (each only
        when it falls before ``end``): P05's first unqualified sample brings a 行政处罚决定, P09's overdue
        rectification a 责任约谈 (食品安全法 第一百一十四条)."""
        rng = self.enforcement_rng

        def at(d: dt.date) -> dt.datetime:
            return dt.datetime(d.year, d.month, d.day, rng.randint(9, 17), rng.randint(0, 59), tzinfo=CST)

        docs = [doc for _, _, doc in self.events]
        p05, p09 = f"{self.county}P05", f"{self.county}P09"
        samples = [doc["payload"] for doc in docs if doc["enterprise_id"] == p05 and doc["event_type"] == "sampling.result"]
        # a failure its re-test (复检) overturned is no case
        overturned = {p["sample_no"] for p in samples if p.get("retest") and not _preservatives_over(p)}
        # (on the lab's conclusion: a sum the lab's report missed, which qrisk alone fails, is no ground for a penalty)
        failed = sorted((p for p in samples if not p.get("retest") and p["sample_no"] not in overturned and _lab_printed_sum_failing(p)),
                        key=lambda p: p["sampled_on"])
        if failed:
            first = failed[0]
            decided = dt.date.fromisoformat(first["sampled_on"]) + dt.timedelta(days=rng.randint(40, 55))
            if decided <= end:
                self._emit("enforcement.decided", p05, at(decided), BUREAU, {
                    "decision_no": f"示范县市监处罚〔{decided.year}〕{rng.randint(20, 60)}号", "decided_on": decided.isoformat(),
                    "authority": "示范县市场监督管理局",
                    "violation": f"生产的{first['product']}（批号 {first['batch']}）经监督抽检（抽样编号 {first['sample_no']}），"
                                 "山梨酸及其钾盐与丙酸及其钠盐、钙盐同时使用，其用量与最大使用量的比例之和大于 1，属超限量使用食品添加剂",
                    "legal_basis": "违反《中华人民共和国食品安全法》第三十四条第（四）项，依据第一百二十四条第一款第（三）项",
                    "penalties": [
                        {"kind": "confiscation", "amount_yuan": float(rng.randint(800, 3000)), "note": "没收违法所得"},
                        {"kind": "confiscation", "note": f"没收违法生产经营的{first['product']} {rng.randint(20, 80)} 千克"},
                        {"kind": "fine", "amount_yuan": 50000.0},
                    ],
                    "sample_nos": [first["sample_no"]],
                }, rng)
        order = next((doc for doc in docs if doc["enterprise_id"] == p09 and doc["event_type"] == "rectification.ordered"
                      and doc["payload"]["cause"].startswith("检查")), None)
        if order is not None:
            o = order["payload"]
            held = dt.date.fromisoformat(o["deadline"]) + dt.timedelta(days=rng.randint(10, 20))
            if held <= end:
                inspection = o["cause"].removeprefix("检查 ")
                found = next(doc for doc in docs if doc["event_type"] == "inspection.completed" and doc["payload"]["inspection_id"] == inspection)
                self._emit("interview.held", p09, at(held), BUREAU, {
                    "interview_id": f"YT-{held:%Y}-{rng.randint(1, 30):03d}", "held_on": held.isoformat(), "held_by": "示范县市场监督管理局",
                    "officials": ["分管副局长", found["payload"]["inspector"]], "interviewee": "法定代表人",
                    "reason": f"现场检查 {inspection} 结论为不符合，责令整改 {o['rectification_id']}（{o['what']}）逾期未完成，食品安全隐患未及时消除",
                    "related_event_ids": [found["event_id"], order["event_id"]],
                    "commitments": "10 日内清理全部过期原料，建立添加剂称量与使用台账，完成后报县局复查；法定代表人每周检查一次执行情况",
                    "follow_up_by": (held + dt.timedelta(days=15)).isoformat(),
                }, rng)

    # ------------------------------------------------------------------ sampling

    def _sample(self, e: Enterprise, day: dt.date, product: str, spec: str, items: list[dict[str, Any]], production: dt.date) -> str:
        lab = LABS[0] if self.rng.random() < 0.8 else LABS[1]
        sample_no = f"DC{day:%y}3301{self.rng.randint(10**7, 10**8 - 1)}"
        # the county's own sampling goes to the county lab; the provincial bureau's (省级抽检, the
        # campaign's KPI) to the provincial institute
        task_source = TASK_SOURCES[0] if lab is LABS[0] else TASK_SOURCES[1]
        self._last_sample = payload = {
            "sample_no": sample_no, "task_source": task_source, "lab": lab["name"], "product": product,
            "spec": spec, "brand": e.name[:2], "batch": production.strftime("%Y%m%d"), "production_date": production.isoformat(),
            "sampled_on": day.isoformat(), "sampled_business": e.name, "items": items,
        }
        at = self._at(day + dt.timedelta(days=self.rng.randint(8, 18)))
        at = self._turnaround(payload, day, at, lab)
        self._emit("sampling.result", e.enterprise_id, at, lab, payload)
        return sample_no

    def _turnaround(self, payload: dict[str, Any], day: dt.date, at: dt.datetime, lab: dict[str, str]) -> dt.datetime:
        """收样日期 and the report's time (检验时限): most samples reach their lab a day or three after sampling
        (a tenth of the reports leave the receipt date out); the provincial institute (SLOW_LAB) is often late,
        reporting some of its passing samples four to six weeks after receipt: 检验报告超时, which the summary
        names by lab.  A failure is never delayed (its story — alerts, re-tests, rectifications, penalties — is
        dated as it was), nor a report that would move past the sampled months (the clock's end, and so the
        number of daily ticks, stays as it was); the draws come from a stream of their own."""
        rng = self.turnaround_rng
        received = day + dt.timedelta(days=rng.randint(1, 3))
        if rng.random() < 0.9:
            payload["lab_received_on"] = received.isoformat()
        slow = rng.random() < 0.6 and rng.randint(20, 32)
        passing = all(i.get("lab_verdict") not in ("不合格", "fail") for i in payload["items"]) and not _preservatives_over(payload)
        if lab["name"] == SLOW_LAB and slow and passing:
            later = at + dt.timedelta(days=slow)
            # (the sampled months' end, computed: CountyGenerator.period draws from self.rng)
            months = self.start.month - 1 + self.months
            if later.date() < dt.date(self.start.year + months // 12, months % 12 + 1, 1):
                return later
        return at

    def _retest(self, e: Enterprise, day: dt.date, remeasure: dict[str, Any]) -> None:
        """复检 of the sample just emitted, requested by the enterprise after a chemical failure: the
        retained half goes to the other lab, whose results differ by measurement uncertainty (so a
        result at the limit may come out under it).  Microbiological failures admit no re-test."""
        rng = self.retest_rng
        first = self._last_sample
        lab = LABS[1] if first["lab"] == LABS[0]["name"] else LABS[0]
        items = []
        for item in first["items"]:
            item = dict(item)
            if item["item_code"] in remeasure:
                item["values"] = [round(v * (1 + rng.gauss(0, 0.04)), 2) if isinstance(v, (int, float)) else v for v in item["values"]]
                # (each preservative the re-test lab judges on its own: under its own limit, as the first lab found)
                item["lab_verdict"] = "合格" if item["item_code"] in _PRESERVATIVE_MAX else item.get("lab_verdict")
                if item["lab_verdict"] is None:
                    item.pop("lab_verdict")
            items.append(item)
        if any(i["item_code"] == "preservative_ratio_sum" for i in items):
            # the re-test lab reports the sum of what it measured, with its own verdict
            items = [i for i in items if i["item_code"] != "preservative_ratio_sum"] + [_sum_line(items)]
        back = day + dt.timedelta(days=rng.randint(30, 40))
        at = dt.datetime(back.year, back.month, back.day, rng.randint(8, 17), rng.randint(0, 59), tzinfo=CST)
        # (the first lab's receipt date is not the re-test lab's, which qrisk does not time: its clock is retest's)
        first = {k: v for k, v in first.items() if k != "lab_received_on"}
        self._emit("sampling.result", e.enterprise_id, at, lab, {**first, "lab": lab["name"], "items": items, "retest": True}, rng=rng)

    @staticmethod
    def _item(code: str, name: str, values: list[Any], unit: str, verdict: str | None = None, dl: float | None = None) -> dict[str, Any]:
        item: dict[str, Any] = {"item_code": code, "item_name": name, "values": values, "unit": unit}
        if dl is not None:
            item["detection_limit"] = dl
        if verdict:
            item["lab_verdict"] = verdict
        return item

    def _water_year(self, e: Enterprise) -> None:
        rng = self.rng
        drifting = e.enterprise_id == f"{self.county}W03"
        for m in range(self.months):
            if not drifting and rng.random() < 0.25:
                continue  # not every plant is sampled every month
            # W03 serves the most people and is sampled twice a month (重点监管)
            days = [self._month_day(m, 1, 14), self._month_day(m, 15, 28)] if drifting else [self._month_day(m)]
            for day in days:
                self._water_sample(e, m, day, drifting)

    def _water_sample(self, e: Enterprise, m: int, day: dt.date, drifting: bool) -> None:
        rng = self.rng
        production = day - dt.timedelta(days=rng.randint(1, 10))
        if drifting:
            # the process drifts from June: oxygen consumption climbs towards its 2.0 mg/L limit
            # months before 铜绿假单胞菌 breaks through in September
            oxygen = round(min(1.95, 0.8 + max(0, m - 4) * 0.15 + rng.gauss(0, 0.05)), 2)
        else:
            oxygen = round(max(0.2, rng.gauss(0.8, 0.15)), 2)
        if drifting and m >= 8:
            pa = [rng.choice([0, 0, 2, 8, 45, 59, 61]) for _ in range(5)]
            if max(pa) == 0:
                pa[rng.randrange(5)] = rng.randint(1, 20)
        else:
            # a rare stray positive elsewhere; the drifting plant's story is its drift
            pa = [0, 0, 0, 0, 0] if rng.random() > 0.01 or drifting else [0, 0, 3, 0, 0]
        coliform = [0] * 5
        chlorine = round(max(0.0, rng.gauss(0.015, 0.008)), 3)
        bromate = "ND" if rng.random() < 0.7 else round(rng.uniform(0.002, 0.006), 4)
        items = [
            self._item("free_chlorine", "余氯(游离氯)", [chlorine if chlorine >= 0.005 else "ND"], "mg/L", "合格", 0.005),
            self._item("bromate", "溴酸盐", [bromate], "mg/L", "合格", 0.002),
            self._item("oxygen_consumption", "耗氧量(以O₂计)", [oxygen], "mg/L", "合格"),
            self._item("chloroform", "三氯甲烷", [round(rng.uniform(0.001, 0.008), 4)], "mg/L", "合格"),
            self._item("conductivity", "电导率", [round(rng.uniform(1.5, 6.0), 1)], "µS/cm", "合格"),
            self._item("ph", "pH", [round(rng.uniform(5.6, 6.8), 1)], "pH", "合格"),
            self._item("lead", "铅(以Pb计)", ["ND"], "mg/L", "合格", 0.001),
            self._item("coliforms", "大肠菌群", coliform, "CFU/100mL", "合格"),
            self._item("pseudomonas_aeruginosa", "铜绿假单胞菌", pa, "CFU/250mL", "不合格" if max(pa) > 0 else "合格"),
        ]
        sample_no = self._sample(e, day, "饮用纯净水", "18.9L/桶", items, production)
        if max(pa) > 0:
            self._rectify_after_failure(e, day, sample_no, "铜绿假单胞菌不合格：清洗消毒水处理及灌装系统，排查滤芯与管路，整改后送检", complete=not drifting or m < 11)

    def _pastry_year(self, e: Enterprise) -> None:
        rng = self.rng
        creeping = e.enterprise_id == f"{self.county}P05"
        uses_dha = rng.random() < 0.3
        for m in range(self.months):
            if rng.random() < 0.35 and not creeping:
                continue
            day = self._month_day(m)
            production = day - dt.timedelta(days=rng.randint(1, 20))
            if creeping:
                sorbic = round(0.30 + 0.035 * m + rng.gauss(0, 0.01), 2)
                propionic = round(0.60 + 0.07 * m + rng.gauss(0, 0.02), 2)
            else:
                sorbic = round(max(0.0, rng.gauss(0.25, 0.08)), 2)
                propionic = round(max(0.0, rng.gauss(0.5, 0.2)), 2) if rng.random() < 0.5 else "ND"
            apc = [rng.choice([10, 20, 40, 80, 150, 300, 900]) for _ in range(5)]
            moulds = rng.choice([10, 10, 20, 30, 50]) if rng.random() > 0.03 else rng.choice([180, 260])
            items = [
                self._item("acid_value", "酸价(以脂肪计)(KOH)", [round(rng.uniform(0.5, 3.0), 1)], "mg/g", "合格"),
                self._item("peroxide_value", "过氧化值(以脂肪计)", [round(rng.uniform(0.02, 0.15), 3)], "g/100g", "合格"),
                self._item("aerobic_plate_count", "菌落总数", apc, "CFU/g", "合格"),
                # plate counts (GB 4789.3): the lowest dilution is 1:10, so one colony is 10 CFU/g and fewer is
                # reported as below the limit of 10 (未检出), never as 5 CFU/g
                self._item("coliforms", "大肠菌群", [rng.choice(["ND", "ND", "ND", 10]) for _ in range(5)], "CFU/g", "合格", 10),
                self._item("moulds", "霉菌", [moulds], "CFU/g", "合格" if moulds <= 150 else "不合格"),
                self._item("sorbic_acid", "山梨酸及其钾盐(以山梨酸计)", [sorbic], "g/kg", "合格", 0.005),
                self._item("propionic_acid", "丙酸及其钠盐、钙盐(以丙酸计)", [propionic], "g/kg", "合格", 0.01),
                self._item("benzoic_acid", "苯甲酸及其钠盐(以苯甲酸计)", ["ND"], "g/kg", "合格", 0.005),
                self._item("aluminium", "铝的残留量(干样品,以Al计)", [round(rng.uniform(5, 60), 1)], "mg/kg", "合格"),
            ]
            dha = 0.0
            if uses_dha and production < dt.date(2025, 2, 8):
                dha = round(rng.uniform(0.1, 0.4), 2)
                items.append(self._item("dehydroacetic_acid", "脱氢乙酸及其钠盐(以脱氢乙酸计)", [dha], "g/kg", "合格", 0.005))
            product = rng.choice(["蛋糕", "月饼", "桃酥", "蛋黄酥", "绿豆糕"])
            # (the sum GB 2760 sets for the preservatives used together: dehydroacetic acid counts too, so a maker
            # whose three each pass may still fail.  The lab reports the sum and its verdict when it is over 1 — but
            # P05's first report over it misses the sum: each preservative 合格, the report 合格.  qrisk's own check
            # finds it (系统复核不合格): not the legal conclusion, so no re-test, no rectification, no penalty follow)
            preservatives_over = _preservatives_over({"items": items})
            missed = preservatives_over and creeping and not self.sum_missed
            if missed:
                self.sum_missed = True
            elif preservatives_over:
                items.append(_sum_line(items))
            sample_no = self._sample(e, day, product, "散装称重", items, production)
            over = moulds > 150 or (preservatives_over and not missed)
            if preservatives_over and not missed and moulds <= 150 and self.retest_rng.random() < 0.6:
                self._retest(e, day, {"sorbic_acid", "propionic_acid", *(("dehydroacetic_acid",) if dha else ())})
            if over:
                self._rectify_after_failure(e, day, sample_no, "产品不合格：排查原辅料与添加剂使用记录，规范投料称量，召回同批次产品", complete=True)

    def _rectify_after_failure(self, e: Enterprise, day: dt.date, sample_no: str, what: str, complete: bool) -> None:
        rng = self.rng
        ordered = day + dt.timedelta(days=rng.randint(20, 25))
        deadline = ordered + dt.timedelta(days=30)
        rid = f"ZG-{e.enterprise_id}-{ordered:%m%d}"
        inspector = rng.choice(INSPECTORS)
        src = {"kind": "inspector", "id": inspector[0], "name": inspector[1]}
        self._emit("rectification.ordered", e.enterprise_id, self._at(ordered), src, {"rectification_id": rid, "what": what, "deadline": deadline.isoformat(), "cause": f"抽样编号 {sample_no}"})
        if complete:
            done = ordered + dt.timedelta(days=rng.randint(10, 25))
            self._emit("rectification.completed", e.enterprise_id, self._at(done), src, {"rectification_id": rid, "evidence": "整改报告及整改后委托检验报告（合格）"})
            self._emit("rectification.verified", e.enterprise_id, self._at(done + dt.timedelta(days=rng.randint(2, 6))), src, {"rectification_id": rid, "verifier": inspector[1], "accepted": True, "note": "复查合格"})

    # ------------------------------------------------------------------ inspections and complaints

    def _inspections(self, e: Enterprise) -> None:
        rng = self.rng
        months = sorted(rng.sample(range(self.months), rng.randint(1, 3)))
        if e.enterprise_id == f"{self.county}P09" and 5 not in months:
            months = sorted(set(months) | {5})
        for m in months:
            day = self._month_day(m)
            inspector = rng.choice(INSPECTORS)
            src = {"kind": "inspector", "id": inspector[0], "name": inspector[1]}
            iid = f"JC-{e.enterprise_id}-{day:%m%d}"
            if e.enterprise_id == f"{self.county}P09" and m == 5:
                findings = [
                    {"code": "3.4", "description": "原料库房未离地离墙存放，部分面粉超过保质期", "severity": "major"},
                    {"code": "6.2", "description": "添加剂使用无称量记录", "severity": "major"},
                ]
                result = "不符合"
            else:
                findings = [{"code": rng.choice(["2.1", "4.3", "5.1", "7.2"]), "description": rng.choice(["从业人员健康证明未及时更新", "出厂检验记录不完整", "清洁消毒记录缺页"]), "severity": "minor"}] if rng.random() < 0.4 else []
                result = "基本符合" if findings else "符合"
            self._emit("inspection.completed", e.enterprise_id, self._at(day), src, {"inspection_id": iid, "inspector": inspector[1], "kind": "routine", "findings": findings, "result": result})
            if e.enterprise_id == f"{self.county}P09" and m == 5:
                self._emit("rectification.ordered", e.enterprise_id, self._at(day, 17), src, {
                    "rectification_id": f"ZG-{e.enterprise_id}-{day:%m%d}", "what": "清理过期原料，建立添加剂称量与使用台账", "deadline": (day + dt.timedelta(days=30)).isoformat(), "cause": f"检查 {iid}",
                })

    def _complaints(self, e: Enterprise) -> None:
        rng = self.rng
        texts = {
            "taste_odour": "购买的产品有异味，口感不对。",
            "foreign_matter": "产品中发现异物（疑似塑料碎片）。",
            "labelling": "标签生产日期模糊不清。",
            "spoilage": "产品在保质期内发霉变质。",
        }
        n = rng.choice([0, 0, 0, 1, 1, 2])
        for _ in range(n):
            day = self._month_day(rng.randrange(self.months))
            self._complaint(e, day, rng.choice(list(texts)), texts, verified=rng.random() < 0.2)
        if e.enterprise_id == f"{self.county}W07":
            for offset in (2, 6, 11, 17):
                self._complaint(e, dt.date(self.start.year, 5, offset), rng.choice(["taste_odour", "foreign_matter"]), texts, verified=True,
                                plant=False)

    def _complaint(self, e: Enterprise, day: dt.date, category: str, texts: dict[str, str], verified: bool, plant: bool = True) -> None:
        """A complaint and its conclusion a few days later.  About a third are 举报 (a report of an offence); a 投诉 says
        when it was accepted (accepted_on), and half of them also come with the channel's acceptance decision the day after
        receipt (complaint.accepted, from a stream of its own).  The first unfounded one the county receives (and a few more) is a 举报
        concluded five to six weeks later, past its 15 working days (超期办结: the summary's 投诉举报超期) — never one
        that is verified (its story: clusters, grades, stays dated as it was), nor W07's planted cluster, nor one whose
        conclusion would move past the sampled months; the draws come from a stream of their own."""
        crng = self.complaint_rng
        cid = f"TS{day:%Y%m%d}{self.rng.randint(10000, 99999)}"
        kind = "report" if crng.random() < 0.3 else "complaint"
        late = plant and not verified and (not self.late_conclusion_planted or crng.random() < 0.1)
        delay = crng.randint(36, 44)
        months = self.start.month - 1 + self.months
        # (conclusions come at most 6 days after receipt: a late one still falls within the sampled months)
        if late and day + dt.timedelta(days=6 + delay + 1) < dt.date(self.start.year + months // 12, months % 12 + 1, 1):
            kind = "report"
            self.late_conclusion_planted = True
        else:
            delay = 0
        # (the main stream's draws in the order they always came)
        self._emit("complaint.received", e.enterprise_id, self._at(day), {"kind": "complaint_channel", "id": "12315"}, {
            "complaint_id": cid, "kind": kind, "channel": "12315", "category": category, "text": texts[category], "verified": False,
        })
        inspector = self.rng.choice(INSPECTORS)
        arng = self.acceptance_rng
        if kind == "complaint" and arng.random() < 0.5:
            # half the 投诉 come with the channel's acceptance the next day, before their conclusion (complaint.accepted)
            accepted_at = dt.datetime(day.year, day.month, day.day, 16, arng.randint(0, 59), tzinfo=CST) + dt.timedelta(days=1)
            self._emit("complaint.accepted", e.enterprise_id, accepted_at, {"kind": "complaint_channel", "id": "12315"}, {
                "complaint_id": cid, "decision": "accepted", "decided_on": (day + dt.timedelta(days=1)).isoformat(),
            }, rng=arng)
        at = self._at(day + dt.timedelta(days=self.rng.randint(2, 6))) + dt.timedelta(days=delay)
        self._emit("complaint.resolved", e.enterprise_id, at, {"kind": "inspector", "id": inspector[0], "name": inspector[1]}, {
            "complaint_id": cid, "verified": verified, "outcome": "经核查属实，已要求企业自查原因并书面反馈。" if verified else "经核查不属实。",
            **({"accepted_on": (day + dt.timedelta(days=1)).isoformat()} if kind == "complaint" else {}),
        })


_PRESERVATIVE_MAX = {"sorbic_acid": 1.0, "propionic_acid": 2.5, "dehydroacetic_acid": 0.5}
"""g/kg, GB 2760-2014 for 糕点: the preservatives the demo's pastries use (dehydroacetic acid made before 2025-02-08)."""


def _preservative_sum(items: list[dict[str, Any]]) -> float:
    """GB 2760's sum of ratios of those preservatives, as qrisk judges it (a non-detect adds nothing)."""
    values = {i["item_code"]: i["values"][0] for i in items}
    return sum(v / _PRESERVATIVE_MAX[code] for code, v in values.items() if code in _PRESERVATIVE_MAX and isinstance(v, float))


def _preservatives_over(sample: dict[str, Any]) -> bool:
    return _preservative_sum(sample["items"]) > 1


def _sum_line(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The sum as a lab reports it beside the preservatives (SAMR's item name, two decimals) with its verdict."""
    total = _preservative_sum(items)
    return CountyGenerator._item("preservative_ratio_sum", "防腐剂混合使用时各自用量占其最大使用量的比例之和", [round(total, 2)], "无量纲",
                                 "不合格" if total > 1 else "合格")


def _lab_printed_sum_failing(sample: dict[str, Any]) -> bool:
    return any(i["item_code"] == "preservative_ratio_sum" and i.get("lab_verdict") == "不合格" for i in sample["items"])


# --------------------------------------------------------------------------- summary

CATEGORY_ZH = {"packaged_water": "包装饮用水", "pastry": "糕点", "other": "其他"}


def _rate_zh(passed: int, judged: int) -> str:
    """A pass rate to one decimal from its counts: the JSON's four-decimal figure rounded again printed
    282/297 = 94.949 % as 95.0 %, where the enterprise list and its sheet say 94.9 %."""
    return f"{100 * passed / judged:.1f}%"


def summarise(state: CountyState, events: list[Envelope], effects: list[Effect], period: tuple[dt.date, dt.date],
              campaign_policy: Any = None, alerts: Any = None, store: Any = None) -> dict[str, Any]:
    """``period``: the months sampled (``CountyGenerator.period``); the summary's period is the span
    of the events themselves (registrations before, follow-ups after), and its grades and overdue
    marks are the state's, as of the last clock tick (the end of the last event's day).
    ``alerts``: the pipeline's ``AlertBook``, whose alerts are counted by state and by rule;
    ``store``: the pipeline's store, whose ``alerts`` table has those the book let go (its derived
    rows written: ``Pipeline.wait_derived``)."""
    from alerts.messages import message_zh
    from processors.campaign import county_progress
    from schemas.policy import CampaignPolicy

    names = {eid: (f.profile.name if f.profile else eid) for eid, f in state.files.items()}
    by_item: Counter[tuple[str, str]] = Counter()
    failed_samples = []
    for eid, f in sorted(state.files.items()):
        for s in f.final_samples():
            if s.judgement.counted != "fail":  # type: ignore[union-attr]
                continue  # (by the report's conclusion: a failure qrisk alone finds is counted apart)
            item_names = {i.item_code: i.item_name or i.item_code for i in s.judgement.items}  # type: ignore[union-attr]
            item_names.update({f"sum_of_ratios:{c.group}": _sum_name(c) for c in s.judgement.sum_checks})  # type: ignore[union-attr]
            items = [(code, item_names[code]) for code in s.judgement.counted_failed_codes()]  # type: ignore[union-attr]
            by_item.update(items)
            failed_samples.append({"enterprise_id": eid, "name": names[eid], "sample_no": s.sample_no, "product": s.product, "sampled_on": s.sampled_on.isoformat(), "items": [code for code, _ in items]})
    # the early warnings are the rules' decisions (warning.raised), the very ones the alerts are made of:
    # counting the fold's findings instead left out the grade and missing-data rules, which make alerts too
    raised = [e for e in effects if e.kind == ALERT_KIND]
    warnings = [
        {"rule": e.data["rule"], "title_zh": e.data.get("title_zh") or RULE_ZH.get(e.data["rule"], e.data["rule"]), "severity": e.data["severity"],
         "enterprise_id": e.enterprise_id, "name": names.get(e.enterprise_id, e.enterprise_id), "occurred_at": e.occurred_at.isoformat(),
         "message_zh": message_zh(e, names.get(e.enterprise_id)), "dedup_key": e.data["dedup_key"]}
        for e in raised
    ]
    titles = _rule_titles(warnings)
    warning_rules = []
    for rule, n in sorted(Counter(w["rule"] for w in warnings).items(), key=lambda kv: (-kv[1], kv[0])):
        # a decision may carry a title of its own (a re-test upholding a failure: 复检维持不合格)
        variants = Counter(w["title_zh"] for w in warnings if w["rule"] == rule and w["title_zh"] != titles[rule])
        warning_rules.append({"rule": rule, "title_zh": titles[rule], "count": n, "variants": dict(sorted(variants.items()))})
    from processors.risk import rank

    enterprises = []
    for eid, f in sorted(state.files.items()):
        enterprises.append({
            "enterprise_id": eid, "name": names[eid], "category": f.profile.category if f.profile else None,
            "risk_grade": f.risk.grade, "risk_score": f.risk.score,
            "town": f.profile.town if f.profile else None, "samples": f.counts.samples, "passed": f.counts.samples_passed,
            "failed": f.counts.samples_failed, "undetermined": f.counts.samples_undetermined, "unconfirmed": f.counts.samples_unconfirmed,
            "pass_rate": None if f.pass_rate is None else round(f.pass_rate, 4),
            "complaints_verified": f.counts.complaints_verified, "inspections": f.counts.inspections,
            "rectifications_open": f.counts.rectifications_open, "rectifications_overdue": f.counts.rectifications_overdue,
        })
    # 早发现: per series, when the charts first spoke, when that same item first failed (on its own, or
    # as a member of a failed sum of ratios), and when the enterprise first failed on anything; the
    # failures are the final ones (a re-test's verdict replaces the first lab's)
    first_failure: dict[str, tuple[str, list[str]]] = {}
    first_item_failure: dict[tuple[str, str], str] = {}
    for eid, f in sorted(state.files.items()):
        for s in sorted((s for s in f.final_samples() if s.judgement.verdict == "fail"), key=lambda s: s.sampled_on):  # type: ignore[union-attr]
            day = s.sampled_on.isoformat()
            items = [i for i in s.judgement.items if i.verdict == "fail"]  # type: ignore[union-attr]
            sums = [c for c in s.judgement.sum_checks if c.verdict == "fail"]  # type: ignore[union-attr]
            first_failure.setdefault(eid, (day, [i.item_name or i.item_code for i in items] + [_sum_name(c) for c in sums]))
            for code in [i.item_code for i in items] + [m.item_code for c in sums for m in c.members]:
                first_item_failure.setdefault((eid, code), day)
    fluctuations: dict[tuple[str, str], dict[str, Any]] = {}
    for e in effects:
        # a detection after a run of non-detects (rule nd_detected alone) is a note, "仅作提示": the credit
        # file's series do not count it as a signal (Series.signals), so neither does the summary
        if e.kind != "fluctuation.signal" or e.data.get("note"):
            continue
        d = e.data
        label = d.get("series") or f"{d['chart']}:{d.get('scope', '')}"
        first_signal = d.get("sampled_on") or e.occurred_at.date().isoformat()
        same = first_item_failure.get((e.enterprise_id, d["item_code"])) if d.get("item_code") else None
        entry = fluctuations.setdefault((e.enterprise_id, label), {
            "enterprise_id": e.enterprise_id, "name": names.get(e.enterprise_id, e.enterprise_id), "chart": d["chart"],
            "series": label, "item_name": d.get("item_name"), "first_signal": first_signal,
            "first_text_zh": d["text_zh"], "signals": 0,
            "first_failure": first_failure.get(e.enterprise_id, (None, []))[0],
            "first_failure_items": first_failure.get(e.enterprise_id, (None, []))[1],
            "first_item_failure": same,
            # a lead time is claimed only against the same item's failure
            "lead_days": (dt.date.fromisoformat(same) - dt.date.fromisoformat(first_signal)).days if same else None,
        })
        entry["signals"] += 1
    turnaround = _turnaround(state)
    samples = sum(x["samples"] for x in enterprises)
    passed = sum(x["passed"] for x in enterprises)
    failed = sum(x["failed"] for x in enterprises)
    undetermined = sum(x["undetermined"] for x in enterprises)
    unconfirmed = sum(x["unconfirmed"] for x in enterprises)
    span = _span(events)
    # the overdue marks are the state's as of the last event, clock ticks included: so are the days they count
    marked = max(e.occurred_at for e in events).astimezone(CST).date() if events else span[1]
    open_rect = [
        {"enterprise_id": eid, "name": names[eid], "rectification_id": r.rectification_id, "what": r.what, "deadline": r.deadline.isoformat(),
         # the day it ends (a deadline on a holiday runs to the next working day), as the fold judged lateness by it
         "due_on": r.ends(r.deadline)[0].isoformat(), "deadline_zh": r.deadline_zh(r.deadline) + (f"（重新限期 {r.deadline_zh(r.redo_deadline)}）" if r.redo_deadline else ""),
         "status": r.status, "overdue": r.overdue,
         # how late, as of the last event: 已逾期 alone does not tell a week from half a year; counted, as the alert's
         # are, from the day the deadline it is late by (a missed 重新限期 included) ended
         "days_overdue": (marked - r.overdue_from).days if r.overdue_from is not None else None}
        for eid, f in sorted(state.files.items()) for r in f.rectifications if r.status != "verified"
    ]
    from processors.warnings import penalties_text

    enforcement = {
        "decisions": [{"enterprise_id": eid, "name": names[eid], "decision_no": r.decision_no, "decided_on": r.decided_on.isoformat(),
                       "penalties_zh": penalties_text(r.penalties)[0], "serious_dishonesty": r.serious_dishonesty}
                      for eid, f in sorted(state.files.items()) for r in f.enforcements],
        "interviews": [{"enterprise_id": eid, "name": names[eid], "interview_id": i.interview_id, "held_on": i.held_on.isoformat(),
                        "reason": i.reason, "follow_up_by": i.follow_up_by.isoformat() if i.follow_up_by else None,
                        "follow_up_due_on": (i.follow_up_due_on or i.follow_up_by).isoformat() if i.follow_up_by else None,
                        "follow_up_zh": moved_deadline_zh(i.follow_up_by, i.follow_up_due_on, i.follow_up_due_estimate) if i.follow_up_by else None}
                       for eid, f in sorted(state.files.items()) for i in f.interviews],
    }
    return {
        "period": {"from": span[0].isoformat(), "to": span[1].isoformat()},
        "sampling_period": {"from": period[0].isoformat(), "to": period[1].isoformat()},
        "enterprises": enterprises,
        "riskiest": [r["enterprise_id"] for r in rank(state, span[1])],
        "events": {"total": len(events), "by_type": dict(sorted(Counter(e.event_type for e in events).items()))},
        # the rate over the judged samples, as each credit file's: an undetermined sample is no 合格
        # (unconfirmed: of the passed, those qrisk's own check fails on items the lab passed: SampleJudgement.counted)
        "samples": {"total": samples, "passed": passed, "failed": failed, "undetermined": undetermined, "unconfirmed": unconfirmed,
                    "pass_rate": round(passed / (passed + failed), 4) if passed + failed else None,
                    "retests": sum(1 for e in events if getattr(e.payload, "retest", False)),
                    # 改判合格 by a re-test; a lab correcting its own report is no overturn
                    "overturned": sum(1 for e in effects if e.kind == "sampling.overturned" and not e.data.get("corrected"))},
        "turnaround": turnaround,
        "complaint_deadlines": _complaint_deadlines(state, names),
        "failures": {
            "by_item": [{"item_code": code, "item_name": name, "count": n} for (code, name), n in sorted(by_item.items(), key=lambda kv: (-kv[1], kv[0]))],
            "samples": failed_samples,
        },
        "warnings": warnings,
        "warning_rules": warning_rules,
        "fluctuations": sorted(fluctuations.values(), key=lambda f: (f["first_signal"], f["enterprise_id"], f["series"])),
        "open_issues": {"rectifications": open_rect},
        "enforcement": enforcement,
        "campaign": _campaign(county_progress(state, campaign_policy or CampaignPolicy())),
        "alerts": _alert_states(_every_alert(alerts, store), titles),
    }


def _turnaround(state: CountyState) -> dict[str, Any]:
    """The labs' time limits (检验时限), lab by lab: each sample once, by its first original report's turnaround
    (``SampleRecord.turnaround``, which its corrections carry), for the bureau's oversight of its labs."""
    labs: dict[str, dict[str, Any]] = {}
    for _, f in sorted(state.files.items()):
        seen: set[str] = set()
        for s in f.samples:
            t = s.turnaround
            if s.retest or t is None or s.sample_no in seen:
                continue
            seen.add(s.sample_no)
            row = labs.setdefault(s.lab, {"lab": s.lab, "judged": 0, "report_late": 0, "sent_late": 0, "without_receipt": 0,
                                          "estimate": 0, "longest_late": None})
            row["judged"] += 1
            row["sent_late"] += t.sent_late
            row["without_receipt"] += t.from_sampling
            row["estimate"] += t.estimate
            if t.report_late:
                row["report_late"] += 1
                row["longest_late"] = max(row["longest_late"] or 0, t.report_days)
    rows = sorted(labs.values(), key=lambda r: (-r["report_late"], -r["judged"], r["lab"]))
    return {"judged": sum(r["judged"] for r in rows), "report_late": sum(r["report_late"] for r in rows),
            "sent_late": sum(r["sent_late"] for r in rows), "by_lab": rows}


def _complaint_deadlines(state: CountyState, names: dict[str, str]) -> dict[str, Any]:
    """The bureau's own time limits on complaints and reports (投诉举报办理时限, ``ComplaintRecord.limits``): how many
    are past one — concluded late (超期办结) or still open past it — by kind; withdrawn ones aside."""
    rows = [{"enterprise_id": eid, "name": names.get(eid, eid), "complaint_id": c.complaint_id, "kind": c.kind,
             "due_on": c.due_on.isoformat() if c.due_on else None, "concluded_on": c.concluded_on.isoformat() if c.concluded_on else None,
             "deadline_zh": c.deadline_zh()}
            for eid, f in sorted(state.files.items()) for c in f.complaints if c.overdue]
    judged = sum(1 for f in state.files.values() for c in f.complaints if c.limits)
    reports = sum(1 for f in state.files.values() for c in f.complaints if c.kind == "report")
    return {"judged": judged, "reports": reports, "overdue": len(rows),
            "concluded_late": sum(1 for r in rows if r["concluded_on"]), "open_overdue": sum(1 for r in rows if not r["concluded_on"]),
            "rows": rows}


def _complaint_deadlines_zh(t: dict[str, Any]) -> str:
    """投诉举报超期 N 件: the line the bureau's 12315 desk is examined on."""
    which = "，".join(f"{r['name']} {'举报' if r['kind'] == 'report' else '投诉'} {r['complaint_id']}（{r['deadline_zh']}）" for r in t["rows"])
    return (f"投诉举报超期 {t['overdue']} 件（已计时 {t['judged']} 件，其中举报 {t['reports']} 件；超期办结 {t['concluded_late']} 件、"
            f"超期未办结 {t['open_overdue']} 件；按工作日计，属监管部门办理时限，不计入企业风险分）" + (f"：{which}" if which else ""))


def _turnaround_zh(t: dict[str, Any]) -> str:
    """检验报告超时 by lab: the line the bureau's sampling section reads about its contracted labs."""
    labs = "，".join(f"{r['lab']} {r['report_late']}/{r['judged']} 批次" + (f"（最长 {r['longest_late']} 个工作日）" if r["longest_late"] else "")
                    for r in t["by_lab"])
    sent = f"；送样超时 {t['sent_late']} 批次" if t["sent_late"] else ""
    return (f"检验报告超时 {t['report_late']} 批次（按检验机构，超时/已计时批次；收样后 20 个工作日、未报收样日期的按抽样后 25 个工作日）："
            f"{labs or '—'}{sent}")


def _campaign(progress: dict[str, Any]) -> dict[str, Any]:
    """The county's summary, and the accepted enterprises the KPIs or their record give pause (须核实)."""
    return {**progress["summary"], "accepted_with_gaps_rows": [
        {"enterprise_id": r["enterprise_id"], "name": r["name"], "gaps": r["accepted_with_gaps"], "gaps_zh": r["acceptance_gaps_zh"],
         "checks": [c["code"] for c in r["acceptance_checks"]]}
        for r in progress["rows"] if r["accepted_with_gaps"]],
        # the enterprises whose last 检查验收 failed: behind, and why (the progress table's 滞后原因)
        "acceptance_failed_rows": [{"enterprise_id": r["enterprise_id"], "name": r["name"], "lag_reasons_zh": r["lag_reasons_zh"]}
                                   for r in progress["rows"] if r["last_acceptance_failed"]]}


def _span(events: list[Envelope]) -> tuple[dt.date, dt.date]:
    """The local days of the first and the last event (clock ticks aside: they only mark time)."""
    moments = [e.occurred_at for e in events if e.event_type != "clock.tick"] or [e.occurred_at for e in events]
    return min(moments).astimezone(CST).date(), max(moments).astimezone(CST).date()


def _rule_titles(warnings: list[dict[str, Any]]) -> dict[str, str]:
    """Each rule's title as its decisions carry it (the policy may retitle a rule): the most common
    one, the built-in title first on a tie."""
    out = {}
    for rule in {w["rule"] for w in warnings}:
        seen = Counter(w["title_zh"] for w in warnings if w["rule"] == rule)
        out[rule] = min(seen, key=lambda t: (-seen[t], t != RULE_ZH.get(rule), t))
    return out


def _every_alert(book: Any, store: Any = None) -> list[dict[str, Any]]:
    """Every alert the period raised, as ``GET /v1/alerts`` lists them: the book's, and the ones it let
    go.  The book drops alerts verified or closed over ``alerts.closed_kept_days`` (90) before its clock,
    so for a year it held 44 of 51 (抽检不合格 12 beside 16 failed batches); the ``alerts`` table keeps
    them all (the API reads both the same way)."""
    from qrisk.pipeline import stored_alert_views

    live = {a.alert_id: {"alert_id": a.alert_id, "state": a.state, "rule": a.rule, "rectifications": list(a.rectifications)}
            for a in (book.alerts.values() if book is not None else ())}
    stored = stored_alert_views(store) if store is not None else []
    return [*live.values(), *(v for v in stored if v["alert_id"] not in live)]


def _alert_states(alerts: list[dict[str, Any]], titles: dict[str, str] | None = None) -> dict[str, Any]:
    """The alerts by state, and by rule: the warnings of one problem (one dedup key) grouped into one alert."""
    from alerts.lifecycle import STATE_ZH, STATES

    by_state = Counter(a["state"] for a in alerts)
    by_rule = Counter(a["rule"] for a in alerts)
    return {"total": len(alerts), "by_state": [{"state": s, "state_zh": STATE_ZH[s], "count": by_state[s]} for s in STATES if by_state[s]],
            "by_rule": [{"rule": r, "title_zh": (titles or {}).get(r) or RULE_ZH.get(r, r), "count": n}
                        for r, n in sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0]))],
            "rectified": sum(1 for a in alerts if a.get("rectifications") and a["state"] == "verified")}


def _events_zh(events: dict[str, Any]) -> str:
    """The events by type; the daily clock ticks apart: the system's own end-of-day checks, not
    records a lab, a complainant or an inspector sent."""
    by_type = {k: v for k, v in events["by_type"].items() if k != "clock.tick"}
    ticks = events["by_type"].get("clock.tick", 0)
    line = f"事件 {sum(by_type.values())} 条：" + "，".join(f"{EVENT_TYPE_ZH.get(k, k)} {v}" for k, v in by_type.items())
    return line + (f"；另有系统每日定时核查（时钟事件）{ticks} 次" if ticks else "")


def render_text(summary: dict[str, Any]) -> str:
    ents = summary["enterprises"]
    by_cat = Counter(CATEGORY_ZH.get(e["category"], "未登记") for e in ents)
    lines = [
        f"qrisk 演示：示范县 {len(ents)} 家食品生产企业（" + "、".join(f"{k} {v} 家" for k, v in sorted(by_cat.items())) + "）",
        f"期间：{summary['period']['from']} 至 {summary['period']['to']}（首末记录日期；抽样日期 {summary['sampling_period']['from']} 至 "
        f"{summary['sampling_period']['to']}）",
        f"风险等级、整改逾期截至 {summary['period']['to']} 日终",
        "",
        _events_zh(summary["events"]),
        f"抽检 {summary['samples']['total']} 批次，不合格 {summary['samples']['failed']} 批次"
        + (f"，无法判定 {summary['samples']['undetermined']} 批次" if summary["samples"]["undetermined"] else "")
        + ("，合格率 —" if summary["samples"]["pass_rate"] is None
           else f"，合格率 {_rate_zh(summary['samples']['passed'], summary['samples']['passed'] + summary['samples']['failed'])}")
        + (f"（复检 {summary['samples']['retests']} 批次，改判合格 {summary['samples']['overturned']} 批次）" if summary["samples"]["retests"] else "")
        + (f"；其中 {summary['samples']['unconfirmed']} 批次检验报告结论为合格、系统按标准复核判定不合格，按检验报告计为合格，待与检验机构核实"
           if summary["samples"].get("unconfirmed") else ""),
        *([_turnaround_zh(summary["turnaround"])] if summary.get("turnaround", {}).get("judged") else []),
        *([_complaint_deadlines_zh(summary["complaint_deadlines"])] if summary.get("complaint_deadlines", {}).get("judged") else []),
        "",
        "不合格项目（不合格批次）：",
    ]
    # padded by the cells a terminal gives a name (str.ljust counts a Chinese character as one)
    cells = max([text_width(row["item_name"]) + 2 for row in summary["failures"]["by_item"]] + [24])
    for row in summary["failures"]["by_item"]:
        lines.append(f"  {pad(row['item_name'], cells)}{row['count']:>4} 批")
    # "风险最高" is the risk grade to a supervisor: ranked as processors.risk.rank does (grade, then score)
    lines += ["", "风险最高的企业（按风险等级、风险分）："]
    by_id = {e["enterprise_id"]: e for e in ents}
    for eid in summary["riskiest"][:5]:
        e = by_id[eid]
        rate = "—" if e["pass_rate"] is None else _rate_zh(e["passed"], e["passed"] + e["failed"])  # one decimal, as the credit file
        grade = f"{e['risk_grade']}级 {e['risk_score']:g} 分" if e["risk_grade"] else "未分级"
        undetermined = f"无法判定 {e['undetermined']} 批，" if e["undetermined"] else ""
        lines.append(f"  {e['enterprise_id']} {e['name']}（{CATEGORY_ZH.get(e['category'], '')}，{e['town']}）：{grade}；抽检 {e['samples']} 批，"
                     f"不合格 {e['failed']} 批，{undetermined}合格率 {rate}，核实投诉 {e['complaints_verified']} 件，逾期整改 {e['rectifications_overdue']} 项")
    # counted as the alerts are made: every rule's decisions, under the title its alerts carry
    lines += ["", f"预警 {len(summary['warnings'])} 条（按预警规则）：" + "，".join(
        f"{r['title_zh']} {r['count']}" + ("（含" + "、".join(f"{t} {n}" for t, n in r["variants"].items()) + "）" if r["variants"] else "")
        for r in summary["warning_rules"])]
    al = summary.get("alerts") or {}
    if al.get("total"):
        lines.append(f"  同一问题的预警归并为预警事项 {al['total']} 件：" + "，".join(f"{x['title_zh']} {x['count']}" for x in al["by_rule"])
                     + "；处置状态：" + "，".join(f"{x['state_zh']} {x['count']}" for x in al["by_state"])
                     + (f"（经责令整改并复查通过 {al['rectified']} 件）" if al["rectified"] else ""))
    # the rarer rules, one by one (unqualified samples, signals and grade changes are listed elsewhere or counted above)
    notable = [w for w in summary["warnings"] if w["rule"] not in ("sampling.unqualified", "fluctuation.signal", "risk.grade_worsened")]
    if notable:
        lines.append(f"  其他规则的预警 {len(notable)} 条" + ("，列出前 8 条：" if len(notable) > 8 else "："))
    for w in notable[:8]:
        # the local date (a midnight tick is the previous day in UTC)
        lines.append(f"    [{w['title_zh']}] {dt.datetime.fromisoformat(w['occurred_at']).astimezone(CST):%Y-%m-%d} {w['message_zh']}")
    series = [f for f in summary["fluctuations"] if f["chart"] not in ("p", "c")]
    lines += ["", f"质量波动（早发现）：{len(series)} 个检验项目序列出现失控信号，按首次信号排序"
                  + (f"（列出前 8 个）：" if len(series) > 8 else "：")]
    for f in series[:8]:
        lines.append(f"  {f['first_signal']} {f['name']} {f['series'].split('|')[0]}·{f['item_name']}：{f['signals']} 批次出现信号{_lead_zh(f)}")
    en = summary["enforcement"]
    lines += ["", f"行政处罚 {len(en['decisions'])} 件，约谈 {len(en['interviews'])} 次："]
    for d in en["decisions"]:
        listed = "；列入严重违法失信名单" if d["serious_dishonesty"] else ""
        lines.append(f"  {d['decided_on']} {d['name']} 行政处罚决定 {d['decision_no']}：{d['penalties_zh']}{listed}")
    for i in en["interviews"]:
        follow = f"，跟踪期限 {i.get('follow_up_zh') or i['follow_up_by']}" if i["follow_up_by"] else ""
        lines.append(f"  {i['held_on']} {i['name']} 约谈 {i['interview_id']}{follow}：{i['reason']}")
    cp = summary["campaign"]
    checked = [r for r in cp.get("accepted_with_gaps_rows", []) if r["checks"]]
    gaps = f"（其中 {cp['accepted_with_gaps']} 家须核实）" if cp.get("accepted_with_gaps") else ""
    lines += ["", f"提档升级：{cp['enterprises']} 家企业，验收通过 {cp['accepted']} 家{gaps}，提档 {cp['upgraded']} 家"
              f"（初始 {_tiers(cp['tiers_at_start'])} → 现 {_tiers(cp['tiers_now'])}）",
              *([f"  验收通过但须核实的事项：" + "，".join(f"{k} {v} 家" for k, v in cp["accepted_with_gaps_by"].items())] if cp.get("accepted_with_gaps_by") else []),
              # beyond a KPI short of its target: penalties, failures, the risk grade, complaints up to the acceptance
              *([f"  其中另有处罚、不合格、风险等级或投诉等记录须核实的 {len(checked)} 家："] if checked else []),
              # the record's checks only: the KPIs short of their target are counted on the line above
              *[f"    {r['enterprise_id']} {r['name']}：{'、'.join(CHECK_ZH.get(c, c) for c in r['checks'])}" for r in checked],
              # reached: the enterprises that completed the stage so far, not those at it now
              *([f"  最近一次检查验收未通过 {len(cp['acceptance_failed_rows'])} 家："
                 + "、".join(f"{r['enterprise_id']} {r['name']}" for r in cp["acceptance_failed_rows"])] if cp.get("acceptance_failed_rows") else []),
              "  各阶段已完成：" + "，".join(f"{s['stage_zh']} {s['reached']} 家" for s in cp["stages"]),
              # the county as a whole, from the counts of each enterprise's latest report
              *(["  全县指标：" + "；".join(f"{k['label_zh']} {k['figure_zh']}" for k in cp["kpi_rates"].values())] if cp.get("kpi_rates") else []),
              "  指标达标：" + "，".join(f"{k['label_zh']} {k['met']}/{k['known']} 家" + (f"（{k['basis_zh']}）" if k.get("basis_zh") else "")
                                     for k in cp["kpis"].values())]
    open_rect = summary["open_issues"]["rectifications"]
    lines += ["", f"待处理整改 {len(open_rect)} 项（逾期 {sum(1 for r in open_rect if r['overdue'])} 项）："]
    for r in open_rect:
        late = f"（已逾期 {r['days_overdue']} 天）" if r["overdue"] and r.get("days_overdue") is not None else "（已逾期）" if r["overdue"] else ""
        lines.append(f"  {r['name']} {r['rectification_id']} 期限 {r.get('deadline_zh') or r['deadline']}{late}：{r['what']}")
    return "\n".join(lines) + "\n"


def _tiers(counts: dict[str, int]) -> str:
    """"B档16家、C档16家": a tier with what it counts (a bare "B 16" reads as a grade or a score)."""
    return "、".join(f"{'未分档' if k == 'unrated' else k + '档'}{v}家" for k, v in counts.items())


def _sum_name(check: Any) -> str:
    """The failed item as SAMR names it, which the catalogue gives each group, as the credit file and
    the alerts print it; a judgement stored before the name was kept falls back on the group's function."""
    return check.item_name or f"{check.group_name}比例之和"


def _lead_zh(f: dict[str, Any]) -> str:
    """How the first signal stands to the failures: a lead time only against the same item's first
    failure; another item's failure is named as such, never passed off as what the chart foresaw."""
    if f["first_item_failure"]:
        days, first = f["lead_days"], f["first_item_failure"]
        return (f"，早于本项目首次不合格 {days} 天" if days > 0 else "，与本项目首次不合格同日" if days == 0
                else f"，本项目已于 {first} 首次不合格")
    if not f["first_failure"]:
        return ""
    other = "、".join(f["first_failure_items"])
    days = (dt.date.fromisoformat(f["first_failure"]) - dt.date.fromisoformat(f["first_signal"])).days
    if days > 0:
        return f"；本项目未出现不合格，早于该企业首次不合格（{other}，非同一项目）{days} 天"
    return f"；本项目未出现不合格（该企业已于 {f['first_failure']} 首次不合格：{other}，非同一项目）"

