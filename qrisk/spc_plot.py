"""Control-chart PNGs for reports and alert evidence (matplotlib, Agg, no pyplot).

A CJK font is used when one is installed (Noto Sans CJK, Source Han Sans,
WenQuanYi, SimHei, ...); otherwise the default font draws the Latin half of
the bilingual labels and the missing-glyph warnings are silenced: a chart
with boxes for the Chinese is better evidence than no chart.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

_CJK_FAMILIES = (
    "Noto Sans CJK SC", "Noto Sans SC", "Noto Sans CJK JP", "Noto Sans CJK TC",
    "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
    "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "Sarasa Gothic SC",
    "AR PL UMing CN", "AR PL UKai CN", "Droid Sans Fallback",
)

_CHART_LABEL = {
    "i": "单值 Individual", "mr": "移动极差 Moving range", "xbar": "均值 Mean",
    "r": "极差 Range", "s": "标准差 Std dev", "p": "不合格品率 Fraction nonconforming",
    "np": "不合格品数 Number nonconforming", "c": "缺陷数 Count", "u": "单位缺陷数 Count per unit",
    "ewma": "EWMA", "cusum": "累积和 CUSUM",
}


@lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """Name of an installed font family with Chinese glyphs, or None."""
    try:
        from matplotlib import font_manager
        installed = {f.name for f in font_manager.fontManager.ttflist}
    except Exception:   # a broken font cache must not stop a report
        return None
    for fam in _CJK_FAMILIES:
        if fam in installed:
            return fam
    for name in sorted(installed):
        if "CJK" in name or "WenQuanYi" in name or "Han Sans" in name:
            return name
    # matplotlib caches its font list; a CJK font installed after that cache was made
    # (scripts/test.sh installs one) is found on disk and added once
    try:
        for path in font_manager.findSystemFonts():
            if any(tag in path.lower() for tag in ("wqy", "notosanscjk", "notoserifcjk", "sourcehansans", "uming", "ukai", "droidsansfallback")):
                font_manager.fontManager.addfont(path)
                name = font_manager.FontProperties(fname=path).get_name()
                if name:
                    return name
    except Exception:   # a font that cannot be read must not stop a report
        return None
    return None


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def _varies(xs: Sequence[float]) -> bool:
    vals = [x for x in xs if not math.isnan(x)]
    return bool(vals) and (max(vals) - min(vals)) > 1e-12 * max(1.0, abs(vals[0]))


def render_chart_png(result: dict[str, Any], path: str | Path, title: str,
                     spec_limit: float | None = None) -> Path:
    """Draw a chart result (``ChartResult.to_dict()`` shape) to ``path`` as PNG."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    points = result.get("points") or []
    kind = result.get("chart", "")
    xs = [p["index"] for p in points]
    ys = [_num(p.get("value")) for p in points]
    ucl = [_num(p.get("ucl", result.get("ucl"))) for p in points]
    lcl = [_num(p.get("lcl", result.get("lcl"))) for p in points]
    cen = [_num(p.get("center", result.get("center"))) for p in points]

    font = find_cjk_font()
    rc: dict[str, Any] = {"axes.unicode_minus": False}
    if font:
        rc["font.family"] = "sans-serif"
        rc["font.sans-serif"] = [font, "DejaVu Sans"]

    with matplotlib.rc_context(rc), warnings.catch_warnings():
        warnings.simplefilter("ignore")   # missing CJK glyphs without a CJK font
        fig = Figure(figsize=(10, 4.8), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)

        if kind == "ewma" and any("x" in p for p in points):
            ax.plot(xs, [_num(p.get("x")) for p in points], linestyle="none", marker=".",
                    color="0.65", label="观测值 observation")
        ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.0, color="tab:blue",
                label=_CHART_LABEL.get(kind, kind) + (" C+" if kind == "cusum" else ""))
        if kind == "cusum":
            lower = [_num(p.get("lower")) for p in points]
            ax.plot(xs, lower, marker="o", markersize=3.5, linewidth=1.0, color="tab:purple",
                    label="累积和 CUSUM −C−")

        def line(values: list[float], style: str, color: str, label: str) -> None:
            if not values or all(math.isnan(v) for v in values):
                return
            if _varies(values):
                ax.step(xs, values, where="mid", linestyle=style, color=color,
                        linewidth=1.0, label=label)
            else:
                v = next(v for v in values if not math.isnan(v))
                ax.axhline(v, linestyle=style, color=color, linewidth=1.0, label=label)

        line(cen, "-", "tab:green", "中心线 CL")
        line(ucl, "--", "tab:red", "上控制限 UCL")
        line(lcl, "--", "tab:orange", "下控制限 LCL")
        if spec_limit is not None:
            ax.axhline(float(spec_limit), linestyle="-.", color="darkred", linewidth=1.4,
                       label="标准限值 legal limit")

        excluded = set((result.get("params") or {}).get("excluded") or [])
        if excluded:
            ex = [(p["index"], y) for p, y in zip(points, ys) if p["index"] in excluded]
            ax.scatter([a for a, _ in ex], [b for _, b in ex], s=70, marker="x",
                       color="0.35", zorder=6, label="剔除 excluded")

        sx, sy = [], []
        for p, y in zip(points, ys):
            if p.get("signals"):
                lower_sig = any(s.get("rule") == "cusum_lower" for s in p["signals"])
                sx.append(p["index"])
                sy.append(_num(p.get("lower")) if lower_sig and kind == "cusum" else y)
        if sx:
            ax.scatter(sx, sy, s=46, color="red", zorder=5, label="信号 signal")

        phases = [p.get("phase") for p in points]
        for a, b, pa, pb in zip(xs, xs[1:], phases, phases[1:]):
            if pa != pb:
                ax.axvline((a + b) / 2.0, color="0.5", linestyle=":", linewidth=1.0)

        ax.set_title(title)
        ax.set_xlabel("样本序号 sample")
        ax.set_ylabel(_CHART_LABEL.get(kind, kind))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8, framealpha=0.8)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    return path


def render_series_png(series: Any, path: str | Path, enterprise: str) -> Path:
    """The chart behind a fluctuation signal: one series of a credit file (``processors.fluctuation.Series``)
    with its frozen limits, the legal maximum and the signalling points, titled in Chinese."""
    from processors.fluctuation import POINT_FIELDS, finite_limits, phase_of

    limits = finite_limits(series.monitor.limits) or {}
    current = len(series.phases) + 1
    start = series.phases[-1].start if series.phases else 1
    baseline = series.monitor.config.baseline
    points = []
    for raw in series.recent:
        p = dict(zip(POINT_FIELDS, raw))
        phase = phase_of(series, p["index"])
        # the limits are the current baseline's: a point of an earlier phase was judged against its own, which the
        # series no longer keeps, so it is drawn without any (not against limits it never had); of the current
        # phase, its first ``baseline`` points set the limits (I), the rest are judged against them (II)
        now = phase == current and bool(limits)
        points.append({
            "index": p["index"], "value": p["value"], "center": limits.get("center") if now else None,
            "ucl": limits.get("ucl") if now else None, "lcl": limits.get("lcl") if now else None,
            "phase": (("I" if p["index"] < start + baseline else "II") if phase == current
                      else f"第{phase}段"),
            "signals": [{"rule": r} for r in p["rules"]],
        })
    first = dict(zip(POINT_FIELDS, series.recent[0]))["sampled_on"] if series.recent else ""
    last = dict(zip(POINT_FIELDS, series.recent[-1]))["sampled_on"] if series.recent else ""
    title = f"{enterprise} {series.product}·{series.item_name}（{series.unit}）单值控制图 {first}~{last}"
    result = {"chart": "i", "center": limits.get("center"), "ucl": limits.get("ucl"), "lcl": limits.get("lcl"), "points": points}
    return render_chart_png(result, path, title, spec_limit=series.usl)
