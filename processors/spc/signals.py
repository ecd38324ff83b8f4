"""The signal an SPC check emits: small, explainable, JSON-ready.

Rule ids are strings so run rules ("rule1".."rule8") and chart-own limits
("ewma", "cusum_upper", ...) share one namespace for alert routing and
silences.  Point indexes are 1-based everywhere (they are what a supervisor
sees on the chart and in the CSV).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHART_NAMES = {
    "i": ("单值图", "individuals chart"),
    "mr": ("移动极差图", "moving range chart"),
    "xbar": ("均值图", "x-bar chart"),
    "r": ("极差图", "range chart"),
    "s": ("标准差图", "standard deviation chart"),
    "p": ("不合格品率图", "p chart"),
    "np": ("不合格品数图", "np chart"),
    "c": ("缺陷数图", "c chart"),
    "u": ("单位缺陷数图", "u chart"),
    "ewma": ("指数加权移动平均图", "EWMA chart"),
    "cusum": ("累积和图", "CUSUM chart"),
    "spec": ("标准限值", "specification limit"),
}

_SIDE_ZH = {"upper": "上", "lower": "下", None: ""}

# (zh, en) templates; {side_zh}/{side_en} fill in where the side matters.
_TEXT = {
    "rule1": ("1点超出{side_zh}控制限（3σ）", "1 point beyond the {side_en}3σ control limit"),
    "rule2": ("连续3点中有2点位于中心线{side_zh}侧2σ以外",
              "2 of 3 consecutive points beyond 2σ on the {side_en}side"),
    "rule3": ("连续5点中有4点位于中心线{side_zh}侧1σ以外",
              "4 of 5 consecutive points beyond 1σ on the {side_en}side"),
    # (the Western Electric count; GB/T 4091-2001 准则2 and Nelson count 9: fewer false alarms, later)
    "rule4": ("连续8点位于中心线同侧（{side_zh}方；按 Western Electric 准则，GB/T 4091 准则2 为连续9点）",
              "8 points in a row on the {side_en}side of the centre line (Western Electric; GB/T 4091 and Nelson: 9)"),
    "rule5": ("连续6点持续{trend_zh}", "6 points in a row steadily {trend_en}"),
    "rule6": ("连续14点上下交替", "14 points in a row alternating up and down"),
    "rule7": ("连续15点位于中心线两侧1σ以内", "15 points in a row within 1σ of the centre line"),
    "rule8": ("连续8点位于中心线两侧1σ以外", "8 points in a row beyond 1σ on either side"),
    "ewma": ("EWMA超出{side_zh}控制限", "EWMA beyond the {side_en}control limit"),
    "cusum_upper": ("CUSUM上侧累积和C+超过决策区间H", "upper CUSUM C+ exceeds the decision interval H"),
    "cusum_lower": ("CUSUM下侧累积和C-超过决策区间H", "lower CUSUM C- exceeds the decision interval H"),
    # a baseline point the revision left out of the estimate, beyond the limits the other points give
    "baseline_outlier": ("基线中该点超出由其余基线点估计的{side_zh}控制限，未用于估计控制限",
                         "baseline point beyond the {side_en}control limit estimated from the other baseline points; left out of the estimate"),
    "cpk_low": ("过程能力指数Cpk低于阈值", "process capability Cpk below the threshold"),
    "ewma_near_limit": ("EWMA已达标准限值的预警比例", "EWMA reached the warning fraction of the legal limit"),
    # not a control-chart rule: a series mostly "not detected" has no meaningful limits, and a
    # detection after a run of non-detects is reported as information
    "nd_detected": ("连续未检出后检出", "detected after a run of results not detected"),
    # and its detections' frequency against the baseline's (a p chart of detections)
    "nd_frequency": ("检出频次明显高于基线", "detections more frequent than in the baseline"),
    # the yardstick left to such a series: one result against the legal maximum
    "result_near_limit": ("单批结果已达标准限值的预警比例", "a result reached the warning fraction of the legal limit"),
}

# Every rule id a signal can carry (for policy validation and silences).
RULE_IDS = tuple(_TEXT)


def describe(rule: str, side: str | None = None, trend: str | None = None) -> tuple[str, str]:
    zh, en = _TEXT[rule]
    side_en = f"{side} " if side else ""
    trend_zh = {"increasing": "上升", "decreasing": "下降"}.get(trend or "", "上升或下降")
    trend_en = trend or "increasing or decreasing"
    fill = {"side_zh": _SIDE_ZH[side], "side_en": side_en,
            "trend_zh": trend_zh, "trend_en": trend_en}
    return zh.format(**fill), en.format(**fill)


@dataclass(slots=True)
class SpcSignal:
    rule: str
    chart: str
    index: int
    value: float
    center: float | None = None
    lcl: float | None = None
    ucl: float | None = None
    side: str | None = None
    text_zh: str = ""
    text_en: str = ""
    detail: dict[str, Any] | None = None

    @classmethod
    def make(cls, rule: str, chart: str, index: int, value: float, *,
             center: float | None = None, lcl: float | None = None,
             ucl: float | None = None, side: str | None = None,
             trend: str | None = None, detail: dict[str, Any] | None = None) -> "SpcSignal":
        zh, en = describe(rule, side, trend)
        return cls(rule, chart, index, value, center, lcl, ucl, side, zh, en, detail)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule, "chart": self.chart, "index": self.index,
            "value": self.value, "center": self.center, "lcl": self.lcl,
            "ucl": self.ucl, "side": self.side,
            "text_zh": self.text_zh, "text_en": self.text_en,
        }
        if self.detail:
            out["detail"] = dict(self.detail)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SpcSignal":
        return cls(d["rule"], d["chart"], d["index"], d["value"], d.get("center"),
                   d.get("lcl"), d.get("ucl"), d.get("side"), d.get("text_zh", ""),
                   d.get("text_en", ""), d.get("detail"))
