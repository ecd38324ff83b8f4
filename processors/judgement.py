"""Judge a sampling result against the standards catalogue.

Pure: no I/O, no wall clock.  The same sample and catalogue always give the same
judgement, so it can live in replayable state.  Every verdict carries the rule,
the numbers and a sentence a supervisor can read (Chinese first).

What is never guessed: an item the catalogue does not know for the category, a
unit the units table does not know, a conversion the table does not list, a
plan with the wrong number of results.  Those are "undetermined" with a reason,
and listed in ``SampleJudgement.unknown``.

Numbers: lab values arrive as binary floats.  Unit conversion goes through the
decimal the lab wrote (``repr``) so that 50 µg/L becomes exactly the float 0.05
and compares equal to a 0.05 mg/L limit; the sum of ratios is computed with
exact fractions so that a sum of exactly 1 passes.
"""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict

from processors._build import builder, share_field_sets

from schemas.events import NOT_DETECTED, AsListed, SamplingResult, TestItem
from schemas.standards import ONE as _ONE
from schemas.standards import (Catalogue, CatalogueIndex, CatalogueItem, CategoryStandards, ExcludedProducts, ItemClass, Rule,
                              RuleKind, Unit, UnitTable)

Verdict = Literal["pass", "fail", "undetermined"]
"""A sample's verdict, a sum-of-ratios check's, and what a judged item comes to."""
ItemVerdict = Literal["pass", "fail", "undetermined", "not_applicable"]
"""An item's verdict: "not_applicable" when the item's limits are for other products of the
category (conductivity and pH of GB 17323 are for purified water only).  Such an item is
shown, with its values, but neither fails the sample nor leaves it undetermined, with one
exception: a product that falls under a standard the catalogue does not hold (a natural
mineral water, GB 8537) is not judged on the item either, but its sample is undetermined
(reason "uncatalogued_standard"; the standard is listed in ``SampleJudgement.unknown``)."""
Reason = Literal[
    # pass
    "within_limit",  # numbers within the limit / the plan accepted
    "not_detected",  # every value "ND" (or 0 for a not-permitted additive)
    "below_detection_limit",  # numbers below the method's detection limit, read as ND
    # fail
    "over_maximum",
    "out_of_range",
    "not_permitted_detected",
    "plan_exceeded_c",  # more than c results above m (two-class) or in (m, M] (three-class)
    "plan_over_M",  # a result above M (three-class)
    # undetermined
    "detection_limit_above_limit",  # "ND" but the detection limit is above the limit
    "detection_limit_unknown",  # "ND" against a range with a positive minimum, no detection limit given
    "unknown_category",  # the catalogue has no standards for the enterprise's category
    "unknown_item",
    "unknown_unit",  # the unit text is not in units.yaml
    "unit_mismatch",  # a known unit that does not convert to the catalogue unit
    "wrong_value_count",  # a plan needs exactly n results
    "no_rule_in_force",  # no catalogued edition covers the basis date
    "edition_uncertain",  # no production date, and the editions the product may fall under disagree
    "negative_value",
    # not_applicable
    "no_longer_limited",  # the edition in force no longer limits the item (rule kind no_longer_limited)
    "out_of_scope",  # the item's limits are for other products of the category (CatalogueItem.scope)
    "uncatalogued_standard",  # the product falls under a standard the catalogue lacks (scope excludes): sample undetermined
]
EditionBasis = Literal["production_date", "sampled_on"]
SampleReason = Literal[
    "no_applicable_item",  # no item was judged against a limit (all out of scope / no longer limited): undetermined
    "edition_uncertain",  # no production date, and the whole sample's verdict differs between the editions it may fall under
    "editions_agree",  # no production date, and every edition it may fall under gives the sample the same verdict
]
Value = Union[float, Literal["ND"]]

_DECIMAL = Context(prec=34)  # private context: a caller changing the global one cannot change a verdict


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ItemJudgement(_Result):
    item_code: str
    item_name: str
    item_class: ItemClass | None
    verdict: ItemVerdict
    reason: Reason
    message_zh: str
    message_en: str
    standard: str | None
    edition: str | None
    kind: RuleKind | None
    limit_text: str | None
    values: Annotated[tuple[Value, ...], AsListed]  # (the union serialiser is slow on "ND")
    unit: str
    detection_limit: float | None
    ratio: float | None
    lab_verdict: Literal["pass", "fail"] | None
    lab_standard: str | None
    agrees_with_lab: bool | None
    verified: bool | None


class SumOfRatiosMember(_Result):
    item_code: str
    item_name: str
    value: float  # in the member's catalogue unit, as is max
    max: float
    ratio: float
    unit: str = ""  # (default: judgements stored before the unit was kept)


class SumOfRatiosCheck(_Result):
    group: str
    group_name: str  # the function, e.g. 防腐剂
    members: tuple[SumOfRatiosMember, ...]
    pending: tuple[str, ...]  # members whose own result is undetermined, so the sum is incomplete
    total: float
    verdict: Verdict
    message_zh: str
    message_en: str
    # the check as SAMR names the failed item (防腐剂混合使用时各自用量占其最大使用量的比例之和), and the
    # edition(s) of GB 2760 its members were judged by (defaults: judgements stored before these were kept)
    item_name: str = ""
    standard: str | None = None


class UnknownEntry(_Result):
    kind: Literal["category", "item", "unit", "unit_mismatch", "standard"]  # standard: the product's own, not catalogued
    item_code: str | None
    text: str


class SampleJudgement(_Result):
    sample_no: str
    category: str
    verdict: Verdict
    items: tuple[ItemJudgement, ...]
    sum_checks: tuple[SumOfRatiosCheck, ...]
    disagreements: tuple[str, ...]
    unknown: tuple[UnknownEntry, ...]
    edition_basis: EditionBasis
    basis_date: dt.date
    basis_note_zh: str | None  # set when the sampling date had to choose the edition
    basis_note_en: str | None
    catalogue_digest: str
    # Why the sample's verdict is what no single item or sum says (None: it is read off them).  A
    # sample with nothing judged is not 合格: 合格 means judged against its standard and conforming.
    # (defaults: judgements stored before these were kept)
    verdict_reason: SampleReason | None = None
    verdict_note_zh: str | None = None
    verdict_note_en: str | None = None

    def failed_codes(self) -> list[str]:
        """What the sample fails on: its failing items, then its failing sums of ratios (``sum_of_ratios:<group>``).
        A sum the lab printed itself (a line named as the check is, preservative_ratio_sum) that gives qrisk's own
        figure for a failing sum is the same finding, listed once, as the sum; a printed figure that differs stays."""
        sums = [c for c in self.sum_checks if c.verdict == "fail"]
        echoed = {i.item_code for i in self.items if i.verdict == "fail" for c in sums
                  if c.item_name and i.item_name == c.item_name and same_figure(i.values, c.total)}
        return [i.item_code for i in self.items if i.verdict == "fail" and i.item_code not in echoed] + [f"sum_of_ratios:{c.group}" for c in sums]

    @property
    def unconfirmed(self) -> bool:
        """qrisk fails the sample only on items and sums of ratios the lab's report passed (each preservative within
        its own limit and the sum over 1, an item the lab misjudged), and the lab fails nothing itself: the report
        reads 合格.  (A lab that fails any item, one qrisk passes or cannot judge among them, issued 不合格.)"""
        if self.verdict != "fail" or not self.disagreements:
            return False
        failed = self.failed_codes()
        return (bool(failed) and set(failed) <= set(self.disagreements)
                and not any(i.lab_verdict == "fail" for i in self.items))

    def lab_failures_passed(self) -> list[ItemJudgement]:
        """The items the lab judged 不合格 that qrisk judges 合格 or not applicable (out of the item's scope, no longer
        limited): a limit the lab rounded to (0.05 mg/L against ≤ 0.05), a product whose name the scope fragments
        miss, a lab judging by a withdrawn edition.  The report reads 不合格 all the same — the mirror of
        ``unconfirmed``.  (A product whose own standard the catalogue lacks is one qrisk cannot judge instead.)"""
        return [i for i in self.items if i.lab_verdict == "fail" and i.verdict in _PASSED_OR_OUT
                and i.reason != "uncatalogued_standard"]

    def counted_failed_codes(self) -> list[str]:
        """The items and sums the sample's failure lists name — the judgements table's ``failed_items``, the registers'
        and the credit file's 不合格项目, the API's ``failed_items``, the Paretos and every failures-by-item count:
        qrisk's own (``failed_codes``), then the items the lab failed that qrisk passes or finds not applicable
        (``lab_failures_passed``: the report's 不合格 on them stands, as ``counted`` says).  For a sample counted 不合格
        these are what it fails on; free chlorine at 0.05 mg/L the lab failed is one of them beside qrisk's lead.  An
        ``unconfirmed`` sample (counted 合格) lists qrisk's findings all the same, so that its row says what qrisk
        found: a count of failures by item keeps to samples whose ``counted`` is "fail"."""
        codes = self.failed_codes()
        return codes + [c for c in dict.fromkeys(i.item_code for i in self.lab_failures_passed()) if c not in codes]

    @property
    def counted(self) -> Verdict:
        """The conclusion the sample counts with (the credit file's counts and pass rate, the pass-rate charts and
        Paretos, risk grading, the campaign's KPIs): the verdict, but 合格 where the failure is qrisk's alone
        (``unconfirmed``).  The lab's report is the legal conclusion (《食品安全抽样检验管理办法》): statistics
        that count qrisk's stricter reading would not match the sampling system's, and a grade or a penalty
        would rest on a failure nobody issued.  qrisk's finding stays in the judgement and raises its own
        alert (系统复核不合格), to be taken up with the lab.  Likewise 不合格 where the lab fails an item qrisk passes
        or finds not applicable (``lab_failures_passed``): the report's 不合格 stands and starts the follow-up;
        qrisk's figure stays beside it in the judgement and its own alert."""
        # (read on every count, chart and grade of every sample, ~4 times an event: plain dict reads, no list built)
        verdict = self.__dict__["verdict"]
        if verdict == "fail":
            return "pass" if self.unconfirmed else "fail"
        for item in self.__dict__["items"]:
            i = item.__dict__
            if i["lab_verdict"] == "fail" and i["verdict"] in _PASSED_OR_OUT and i["reason"] != "uncatalogued_standard":
                return "fail"
        return verdict


_PASSED_OR_OUT = frozenset({"pass", "not_applicable"})


def same_figure(values: Any, total: float) -> bool:
    """A printed sum of ratios that is qrisk's sum as a lab rounds it (two decimals)."""
    return len(values) == 1 and isinstance(values[0], (int, float)) and abs(values[0] - total) < 0.005 + 1e-9


# --------------------------------------------------------------------------- formatting


def _num(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


_FIGURES = Context(prec=60)


def ratio_figure(total: float) -> str:
    """A sum of ratios as the judgement's messages print it (against 1)."""
    return _figure(total)


def _figure(value: float | Decimal | Fraction, limit: float = 1, places: int = 2) -> str:
    """``value`` with ``places`` decimals, or as many more as it takes for the figure not to read
    as ``limit`` itself when the value is not the limit: a sum of ratios of 1.004 against 1 is
    "1.004" and 0.996 is "0.996" (both were "1.00", a failure and a pass that looked alike);
    exactly 1 stays "1.00".  Rounding half to even (GB/T 8170), on the exact decimal."""
    if isinstance(value, Fraction):
        exact = _FIGURES.divide(Decimal(value.numerator), Decimal(value.denominator))
    elif isinstance(value, Decimal):
        exact = value
    else:
        exact = Decimal(repr(value))
    bound = Decimal(repr(limit))
    if not exact.is_finite() or exact.adjusted() > 30:
        return format(exact, ".6g")  # a figure far beyond any limit (a unit or typing error): no decimals decide anything
    for p in range(places, 40):
        shown = exact.quantize(Decimal(1).scaleb(-p), rounding=ROUND_HALF_EVEN, context=_FIGURES)
        if shown != bound or exact == bound:
            return str(shown)
    return str(exact)


def _vals(values: tuple[Value, ...] | list[Value]) -> str:
    return ";".join(v if v == NOT_DETECTED else _num(v) for v in values)  # type: ignore[arg-type]


def _results(values: tuple[Value, ...], u: str) -> tuple[str, str]:
    """A plan's n results as the lab reported them, with unit: a non-detect is 未检出 / ND."""
    if NOT_DETECTED not in values:
        shown = f"{';'.join([_num(v) for v in values])}{u}"  # type: ignore[arg-type]
        return shown, shown
    if all(v == NOT_DETECTED for v in values):
        return "均未检出", "all ND"
    return (";".join(["未检出" if v == NOT_DETECTED else _num(v) for v in values]) + u,  # type: ignore[arg-type]
            _vals(values) + u)


def _suffix(label: str) -> str:
    return f" {label}" if label else ""


# --------------------------------------------------------------------------- one item


class _Outcome:
    """Internal: what the kind-specific judge found, before the result model is built."""

    __slots__ = ("verdict", "reason", "zh", "en", "ratio", "peak")

    def __init__(self, verdict: Verdict, reason: Reason, zh: str, en: str,
                 ratio: float | None = None, peak: float | None = None) -> None:
        self.verdict = verdict
        self.reason = reason
        self.zh = zh
        self.en = en
        self.ratio = ratio
        self.peak = peak  # largest value read as detected; feeds the sum of ratios


def _convert(value: float, factor: Decimal) -> float:
    return float(_DECIMAL.multiply(Decimal(repr(value)), factor))


def _ratio(value: float, limit: float) -> float:
    # Through decimals so that 1.2/2.5 is shown as 0.48, not 0.47999999999999998.
    return float(_DECIMAL.divide(Decimal(repr(value)), Decimal(repr(limit))))


def _split(values: tuple[Value, ...], dl: float | None) -> tuple[list[float], int, bool]:
    """Detected numbers, count of non-detects, and whether a number was below the detection limit."""
    numbers: list[float] = []
    nd = 0
    below = False
    for v in values:
        if v == NOT_DETECTED:
            nd += 1
        elif dl is not None and v < dl:  # type: ignore[operator]
            nd += 1
            below = True
        else:
            numbers.append(v)  # type: ignore[arg-type]
    return numbers, nd, below


def _judge_maximum(name: str, en: str, rule: Rule, values: tuple[Value, ...], dl: float | None, u: str) -> _Outcome:
    limit = rule.max
    numbers, nd, below = _split(values, dl)
    peak = max(numbers) if numbers else None
    ratio = _ratio(peak, limit) if peak is not None and limit else None  # type: ignore[arg-type]
    below_only = rule.max_exclusive  # 残留量<10: at the limit is over it
    sign = "<" if below_only else "≤"
    lim = f"{rule.standard} 限值{sign}{rule.max!r}{u}"
    lim_en = f"{rule.standard} limit {sign}{rule.max!r}{u}"
    if peak is not None and (peak >= limit if below_only else peak > limit):  # type: ignore[operator]
        # the multiple from the exact decimals, with the digits that tell it from 1
        times = _figure(_DECIMAL.divide(Decimal(repr(peak)), Decimal(repr(limit)))) if limit else None
        return _Outcome(
            "fail", "over_maximum",
            f"{name}：检测值{_num(peak)}{u}{'未低于' if below_only and peak == limit else '超过'}{lim}{f'（为限值的{times}倍）' if times and peak != limit else ''}，判定不合格",
            f"{en}: {_num(peak)}{u} {'is not below' if below_only and peak == limit else 'exceeds'} the {lim_en}{f' ({times} times the limit)' if times and peak != limit else ''}; fail",
            ratio, peak,
        )
    # not detected is strictly below the detection limit: a limit at or under it (≤ or <) passes, one above it leaves
    # the value unknown.  (A strict "<" limit equal to the detection limit was left undetermined, saying 高于 of equals.)
    if nd and dl is not None and dl > limit:  # type: ignore[operator]
        return _Outcome(
            "undetermined", "detection_limit_above_limit",
            f"{name}：未检出，但方法检出限{_num(dl)}{u}高于{lim}，无法判定是否合格",
            f"{en}: not detected, but the detection limit {_num(dl)}{u} is above the {lim_en}; undetermined",
            ratio, peak,
        )
    if peak is not None:
        return _Outcome(
            "pass", "within_limit",
            f"{name}：检测值{_num(peak)}{u}，{'低于' if below_only else '未超过'}{lim}，判定合格",
            f"{en}: {_num(peak)}{u} within the {lim_en}; pass",
            ratio, peak,
        )
    if below:
        return _Outcome(
            "pass", "below_detection_limit",
            f"{name}：检测值低于方法检出限{_num(dl)}{u}（按未检出计），{lim}，判定合格",  # type: ignore[arg-type]
            f"{en}: below the detection limit {_num(dl)}{u}, read as not detected ({lim_en}); pass",  # type: ignore[arg-type]
        )
    return _Outcome(
        "pass", "not_detected",
        f"{name}：未检出，{lim}，判定合格",
        f"{en}: not detected ({lim_en}); pass",
    )


def _judge_range(name: str, en: str, rule: Rule, values: tuple[Value, ...], dl: float | None, u: str) -> _Outcome:
    low, high = rule.min, rule.max
    numbers, nd, _ = _split(values, dl)
    lim = f"{rule.standard} 规定范围{rule.min!r}–{rule.max!r}{u}"
    lim_en = f"the {rule.standard} range {rule.min!r}–{rule.max!r}{u}"
    outside = [v for v in numbers if v < low or v > high]  # type: ignore[operator]
    if outside:
        return _Outcome(
            "fail", "out_of_range",
            f"{name}：检测值{_vals(outside)}{u}不在{lim}内，判定不合格",
            f"{en}: {_vals(outside)}{u} outside {lim_en}; fail",
        )
    if nd:
        # "ND" means "below the detection limit": against a positive minimum that is
        # only a verdict when the detection limit itself is at or below the minimum.
        if low > 0:  # type: ignore[operator]
            if dl is not None and dl <= low:  # type: ignore[operator]
                return _Outcome(
                    "fail", "out_of_range",
                    f"{name}：未检出（低于检出限{_num(dl)}{u}），低于{lim}下限，判定不合格",
                    f"{en}: not detected (below {_num(dl)}{u}), under the minimum of {lim_en}; fail",
                )
            if dl is None:
                return _Outcome(
                    "undetermined", "detection_limit_unknown",
                    f"{name}：未检出且未给出方法检出限，无法对照{lim}判定",
                    f"{en}: not detected and no detection limit given; cannot judge against {lim_en}",
                )
            return _Outcome(
                "undetermined", "detection_limit_above_limit",
                f"{name}：未检出，但方法检出限{_num(dl)}{u}高于{lim}下限，无法判定",
                f"{en}: not detected, but the detection limit {_num(dl)}{u} is above the minimum of {lim_en}; undetermined",
            )
        if dl is not None and dl > high:  # type: ignore[operator]
            return _Outcome(
                "undetermined", "detection_limit_above_limit",
                f"{name}：未检出，但方法检出限{_num(dl)}{u}高于{lim}上限，无法判定",
                f"{en}: not detected, but the detection limit {_num(dl)}{u} is above the maximum of {lim_en}; undetermined",
            )
    shown = _vals(numbers) if numbers else "未检出"
    return _Outcome(
        "pass", "within_limit",
        f"{name}：检测值{shown}{u}，在{lim}内，判定合格",
        f"{en}: {_vals(numbers) if numbers else 'not detected'}{u} within {lim_en}; pass",
    )


def _judge_not_permitted(name: str, en: str, rule: Rule, values: tuple[Value, ...], dl: float | None, u: str) -> _Outcome:
    # 0 is never a detection, whatever the detection limit says.
    detected = [v for v in values if v != NOT_DETECTED and v > 0 and (dl is None or v >= dl)]  # type: ignore[operator]
    if detected:
        peak: float = max(detected)  # type: ignore[type-var, assignment]
        return _Outcome(
            "fail", "not_permitted_detected",
            f"{name}：检出{_num(peak)}{u}，{rule.standard}规定不得使用，判定不合格",
            f"{en}: detected {_num(peak)}{u}; not permitted by {rule.standard}; fail",
            None, peak,
        )
    if any(v != NOT_DETECTED and v > 0 for v in values):  # type: ignore[operator]
        return _Outcome(
            "pass", "below_detection_limit",
            f"{name}：检测值低于方法检出限{_num(dl)}{u}，按未检出计，{rule.standard}规定不得使用，判定合格",  # type: ignore[arg-type]
            f"{en}: below the detection limit {_num(dl)}{u}, read as not detected (not permitted by {rule.standard}); pass",  # type: ignore[arg-type]
        )
    return _Outcome(
        "pass", "not_detected",
        f"{name}：未检出，{rule.standard}规定不得使用，判定合格",
        f"{en}: not detected (not permitted by {rule.standard}); pass",
    )


def _judge_plan(name: str, en: str, rule: Rule, values: tuple[Value, ...], dl: float | None, u: str) -> _Outcome:
    n, c, m, big_m = rule.n, rule.c, rule.m, rule.M
    if len(values) != n:
        return _Outcome(
            "undetermined", "wrong_value_count",
            f"{name}：采样方案要求n={n}个检测结果，实际收到{len(values)}个，无法判定",
            f"{en}: the sampling plan needs n={n} results, got {len(values)}; undetermined",
        )
    # A non-detect, or a count below the detection limit, is a count of 0.
    counts = [0.0 if v == NOT_DETECTED or (dl is not None and v < dl) else v for v in values]  # type: ignore[operator]
    # the results themselves and the standard's plan, as an announcement prints 检验结果 and 标准值:
    # the supervisor reading the failure sees its evidence, not only a count
    results_zh, results_en = _results(values, u)
    limit = rule.limit_text
    shown = f"检验结果 {results_zh}，标准值 {limit}{u}（{rule.standard}）"
    shown_en = f"results {results_en}; {rule.standard} plan {limit}{u}"
    if big_m is None:
        over = sum(1 for v in counts if v > m)  # type: ignore[operator]
        verdict: Verdict = "fail" if over > c else "pass"  # type: ignore[operator]
        zh_word, en_word = ("不合格", "fail") if verdict == "fail" else ("合格", "pass")
        return _Outcome(
            verdict, "plan_exceeded_c" if verdict == "fail" else "within_limit",
            f"{name}：{shown}，{n}个样品中{over}个超过m，判定{zh_word}",
            f"{en}: {shown_en}: {over} of {n} exceed m (c={c}); {en_word}",
        )
    above = sum(1 for v in counts if v > big_m)
    if above:
        return _Outcome(
            "fail", "plan_over_M",
            f"{name}：{shown}，{n}个样品中{above}个超过M，判定不合格",
            f"{en}: {shown_en}: {above} of {n} exceed M; fail",
        )
    marginal = sum(1 for v in counts if v > m)  # type: ignore[operator]
    verdict = "fail" if marginal > c else "pass"  # type: ignore[operator]
    zh_word, en_word = ("不合格", "fail") if verdict == "fail" else ("合格", "pass")
    more = f"，多于c={c}个" if verdict == "fail" else ""
    return _Outcome(
        verdict, "plan_exceeded_c" if verdict == "fail" else "within_limit",
        f"{name}：{shown}，{n}个样品中{marginal}个介于m与M之间{more}，无超过M的结果，判定{zh_word}",
        f"{en}: {shown_en}: {marginal} of {n} between m and M (c={c}), none above M; {en_word}",
    )


_JUDGES = {
    "maximum": _judge_maximum,
    "range": _judge_range,
    "not_permitted": _judge_not_permitted,
    "plan": _judge_plan,
}


def _undetermined(test: TestItem, item: CatalogueItem | None, rule: Rule | None, reason: Reason,
                  zh: str, en: str, values: tuple[Value, ...] | None = None, unit: str | None = None,
                  limit_text: str | None = None) -> ItemJudgement:
    return ItemJudgement(
        item_code=test.item_code,
        item_name=item.name_zh if item else (test.item_name or test.item_code),
        item_class=item.item_class if item else None,
        verdict="undetermined",
        reason=reason,
        message_zh=zh,
        message_en=en,
        standard=rule.standard if rule else None,
        edition=rule.edition if rule else None,
        kind=rule.kind if rule else None,
        limit_text=limit_text,
        values=tuple(test.values) if values is None else values,
        unit=test.unit if unit is None else unit,
        detection_limit=test.detection_limit,
        ratio=None,
        lab_verdict=test.lab_verdict,
        lab_standard=test.standard_ref,
        agrees_with_lab=None,
        verified=rule.verified if rule else None,
    )


def _not_applicable(test: TestItem, item: CatalogueItem, product: str) -> ItemJudgement:
    """An item whose limits are for other products of the category: shown, not judged."""
    scope = item.scope
    assert scope is not None
    standards = "、".join(dict.fromkeys(r.standard for r in item.rules))
    zh = f"{item.name_zh}：本项目限值仅适用于{scope.name_zh}（{standards}），本产品（{product}）不按此判定"
    en = f"{item.name_en}: the {standards} limit applies to {scope.name_en} only; {product!r} is not judged on it"
    lab = test.lab_verdict
    if lab == "fail":
        # the lab judged the product by a limit that is not its own, or the product is a purified
        # water under another name: either way the supervisor must look
        zh += "；检验机构判定不合格，请核实产品类别与判定依据"
        en += "; the lab judged it a failure: check the product's type and the lab's basis"
    return ItemJudgement(
        item_code=test.item_code,
        item_name=item.name_zh,
        item_class=item.item_class,
        verdict="not_applicable",
        reason="out_of_scope",
        message_zh=zh,
        message_en=en,
        standard=None,
        edition=None,
        kind=None,  # no rule applied (the charts skip it, as they skip every item without a kind)
        limit_text=None,
        values=tuple(v if v == NOT_DETECTED else float(v) for v in test.values),  # type: ignore[arg-type]
        unit=test.unit,
        detection_limit=test.detection_limit,
        ratio=None,
        lab_verdict=lab,
        lab_standard=test.standard_ref,
        agrees_with_lab=False if lab == "fail" else None,
        verified=None,
    )


def _uncatalogued(test: TestItem, item: CatalogueItem, excluded: ExcludedProducts, product: str,
                  unknown: list[UnknownEntry]) -> ItemJudgement:
    """A product of the category under a standard of its own the catalogue does not hold (a natural
    mineral water, GB 8537): not judged by the item's standard, and reported as unknown, so that
    the sample is undetermined rather than passed on the items nobody could judge."""
    unknown.append(UnknownEntry(kind="standard", item_code=test.item_code, text=excluded.standard))
    standards = "、".join(dict.fromkeys(r.standard for r in item.rules))
    zh = (f"{item.name_zh}：{excluded.name_zh}适用 {excluded.standard}（本目录未收录），不按 {standards} 判定；"
          f"本产品（{product}）此项目无法判定")
    en = (f"{item.name_en}: {excluded.name_en} falls under {excluded.standard}, which the catalogue does not hold; "
          f"{product!r} is not judged by {standards} on it; undetermined")
    lab = test.lab_verdict
    if lab == "fail":
        # the lab may well be right by the product's own standard: not a disagreement, but the supervisor must see it
        basis = test.standard_ref or "未注明"
        zh += f"；检验机构判定不合格（判定依据：{basis}），请按 {excluded.standard} 核实"
        en += f"; the lab judged it a failure (basis: {test.standard_ref or 'not given'}): check it against {excluded.standard}"
    return ItemJudgement(
        item_code=test.item_code,
        item_name=item.name_zh,
        item_class=item.item_class,
        verdict="not_applicable",
        reason="uncatalogued_standard",
        message_zh=zh,
        message_en=en,
        standard=None,
        edition=None,
        kind=None,  # no rule applied: the charts skip it
        limit_text=None,
        values=tuple(v if v == NOT_DETECTED else float(v) for v in test.values),  # type: ignore[arg-type]
        unit=test.unit,
        detection_limit=test.detection_limit,
        ratio=None,
        lab_verdict=lab,
        lab_standard=test.standard_ref,
        agrees_with_lab=None,
        verified=None,
    )


def _no_longer_limited(test: TestItem, item: CatalogueItem, rule: Rule) -> ItemJudgement:
    """An item the edition in force no longer limits (GB 19298-2014 dropped total plate count and
    moulds/yeasts): shown with its values, not judged, in whatever unit the lab printed it."""
    zh = f"{item.name_zh}：{rule.standard} 已不再规定该项目，不作判定"
    en = f"{item.name_en}: {rule.standard} no longer limits this item; not judged"
    lab = test.lab_verdict
    if lab == "fail":
        zh += "；检验机构判定不合格，请核实其判定依据"
        en += "; the lab judged it a failure: check the lab's basis"
    return ItemJudgement(
        item_code=test.item_code,
        item_name=item.name_zh,
        item_class=item.item_class,
        verdict="not_applicable",
        reason="no_longer_limited",
        message_zh=zh,
        message_en=en,
        standard=rule.standard,  # the standard that no longer limits it
        edition=rule.edition,
        kind=None,  # nothing measured against a limit: the charts skip it
        limit_text=None,
        values=tuple(v if v == NOT_DETECTED else float(v) for v in test.values),  # type: ignore[arg-type]
        unit=test.unit,
        detection_limit=test.detection_limit,
        ratio=None,
        lab_verdict=lab,
        lab_standard=test.standard_ref,
        agrees_with_lab=False if lab == "fail" else None,
        verified=rule.verified,
    )


def _judge_item(test: TestItem, category: str, category_zh: str, index: CatalogueIndex, basis: dt.date,
                unknown: list[UnknownEntry], product: str) -> tuple[ItemJudgement, float | None]:
    key = (category, test.item_code)
    item = index.items.get(key)
    if item is None:
        printed = test.item_name or test.item_code
        unknown.append(UnknownEntry(kind="item", item_code=test.item_code, text=printed))
        return _undetermined(
            test, None, None, "unknown_item",
            f"{printed}：{category_zh}标准目录中没有此检验项目（{test.item_code}），无法判定",
            f"{printed}: the {category} catalogue has no item {test.item_code!r}; undetermined",
        ), None
    scope = item.scope
    if scope is not None:
        excluded = scope.excluded_by(product)
        if excluded is not None:
            return _uncatalogued(test, item, excluded, product, unknown), None
        if not scope.covers(product):
            return _not_applicable(test, item, product), None
    name, en = item.name_zh, item.name_en
    rule = item.rule_on(basis)
    if rule is None:
        return _undetermined(
            test, item, None, "no_rule_in_force",
            f"{name}：目录中没有适用于{basis.isoformat()}的标准版本，无法判定",
            f"{en}: no catalogued edition applies on {basis.isoformat()}; undetermined",
        ), None
    if rule.kind == "no_longer_limited":
        return _no_longer_limited(test, item, rule), None

    target: Unit = index.item_units[key]
    source = index.units.resolve(test.unit)
    factor = UnitTable.factor(source, target) if source is not None else None
    if factor is None and source is not None:
        # a unit the standard itself reports the item in (大肠菌群 MPN/100mL besides CFU/100mL): the
        # same numbers, judged and shown in that unit
        for other in index.alternative_units.get(key, ()):
            factor = UnitTable.factor(source, other)
            if factor is not None:
                target = other
                break
    if factor is None:
        kind = "unit" if source is None else "unit_mismatch"
        unknown.append(UnknownEntry(kind=kind, item_code=test.item_code, text=test.unit))
        if rule.kind != "not_permitted":
            limit_text = f"{rule.limit_text}{_suffix(target.display)}" if rule.kind != "plan" else rule.limit_text
            if source is None:
                return _undetermined(
                    test, item, rule, "unknown_unit",
                    f"{name}：无法识别结果单位“{test.unit}”，无法与{rule.standard}限值（{target.unit}）比较，无法判定",
                    f"{en}: unit {test.unit!r} is not known; cannot compare with the {rule.standard} limit in {target.unit}; undetermined",
                    limit_text=limit_text,
                ), None
            return _undetermined(
                test, item, rule, "unit_mismatch",
                f"{name}：结果单位“{test.unit}”不能换算为标准单位{target.unit}，无法判定",
                f"{en}: unit {test.unit!r} does not convert to {target.unit}; undetermined",
                limit_text=limit_text,
            ), None
        # A detection of a not-permitted substance is a fact whatever the unit: judge
        # the values as printed (the detection limit is in the same unit).
        values: tuple[Value, ...] = tuple(test.values)
        dl = test.detection_limit
        unit_text, label = test.unit, test.unit
    elif factor is _ONE:
        values = tuple(test.values)
        dl = test.detection_limit
        unit_text, label = target.unit, target.display
    else:
        values = tuple(v if v == NOT_DETECTED else _convert(v, factor) for v in test.values)  # type: ignore[arg-type]
        dl = None if test.detection_limit is None else _convert(test.detection_limit, factor)
        unit_text, label = target.unit, target.display

    if any(v != NOT_DETECTED and v < 0 for v in values):  # type: ignore[operator]
        return _undetermined(
            test, item, rule, "negative_value",
            f"{name}：检测结果为负值（{_vals(values)}），无法判定",
            f"{en}: negative result ({_vals(values)}); undetermined",
            values=values, unit=unit_text,
        ), None

    u = _suffix(label)
    outcome = _JUDGES[rule.kind](name, en, rule, values, dl, u)
    if rule.kind == "not_permitted" or rule.kind == "plan":
        limit_text = rule.limit_text
    else:
        limit_text = f"{rule.limit_text}{u}"
    lab = test.lab_verdict
    agrees = None if lab is None or outcome.verdict == "undetermined" else lab == outcome.verdict
    zh, en_msg = outcome.zh, outcome.en
    if rule.caveat_zh and (not rule.verified or outcome.verdict == "fail"):
        # what is in doubt is not the number (its scope, whether the additive is permitted at all): said as such,
        # and on a failure of a limit for some products only, the condition a supervisor checks before acting
        zh += f"（注：{rule.caveat_zh}）"
        en_msg += f" (note: {rule.caveat_en or rule.caveat_zh})"
    elif not rule.verified:
        # The supervisor must see that the verdict rests on a limit nobody has confirmed.
        zh += "（注：该限值尚待核实）"
        en_msg += " (note: this limit is not yet verified)"
    judgement = _build_item_judgement(
        item_code=test.item_code,
        item_name=name,
        item_class=item.item_class,
        verdict=outcome.verdict,
        reason=outcome.reason,
        message_zh=zh,
        message_en=en_msg,
        standard=rule.standard,
        edition=rule.edition,
        kind=rule.kind,
        limit_text=limit_text,
        # as validation would store them: a lab's integer 5 is the number 5.0
        values=tuple(v if v == NOT_DETECTED else float(v) for v in values),  # type: ignore[arg-type]
        unit=unit_text,
        detection_limit=None if dl is None else float(dl),
        ratio=outcome.ratio,
        lab_verdict=lab,
        lab_standard=test.standard_ref,
        agrees_with_lab=agrees,
        verified=rule.verified,
    )
    # a float, as validation would store it: the sum-of-ratios members show it, and the memo
    # below serves a lab's 5 and 5.0 with one judgement
    peak = outcome.peak
    return judgement, None if peak is None else float(peak)


# --------------------------------------------------------------------------- sum of ratios


def _sum_checks(category: str, catalogue: Catalogue, index: CatalogueIndex, basis: dt.date,
                judged: dict[str, tuple[ItemJudgement, float | None]]) -> list[SumOfRatiosCheck]:
    standards = catalogue.standards_for(category)
    if standards is None or not standards.sum_of_ratios:
        return []
    checks: list[SumOfRatiosCheck] = []
    for group in standards.sum_of_ratios:
        members: list[SumOfRatiosMember] = []
        pending: list[str] = []
        editions: list[str] = []  # the standards the members were judged by, in member order
        unverified: list[str] = []  # members whose limit the catalogue marks unverified, by name
        total: float | Fraction = 0.0
        for item in index.group_members.get((category, group.group), ()):
            found = judged.get(item.code)
            if found is None:
                continue
            judgement, peak = found
            rule = item.rule_on(basis)
            # Only additives with a maximum take part: a not-permitted one fails on its own.
            if rule is None or rule.kind != "maximum":
                continue
            if judgement.verdict == "undetermined":
                pending.append(item.code)
                editions.append(rule.standard)
                continue
            if peak is None or peak == 0:
                continue
            ratio = peak / rule.max
            total += ratio
            if not rule.verified:
                unverified.append(item.name_zh)
            editions.append(rule.standard)
            members.append(SumOfRatiosMember(
                item_code=item.code, item_name=item.name_zh, value=peak, max=rule.max, ratio=ratio,
                unit=index.item_units[(category, item.code)].display,
            ))
        # One detected member is already judged by its own limit; the rule is about mixtures.
        if len(members) + len(pending) < 2:
            continue
        if abs(total - 1) < 1e-9:
            # at the boundary float rounding could decide: redo it exactly from the decimals the lab wrote
            total = sum((Fraction(Decimal(repr(m.value))) / Fraction(Decimal(repr(m.max))) for m in members), Fraction(0))
        standard = "、".join(dict.fromkeys(editions))
        names_zh = {item.code: item.name_zh for item in index.group_members.get((category, group.group), ())}
        names_en = {item.code: item.name_en for item in index.group_members.get((category, group.group), ())}
        # each member as value / maximum, both in the member's unit: 山梨酸… 0.6 g/kg / 1.0 g/kg
        terms = " + ".join(f"{m.item_name} {_num(m.value)}{_suffix(m.unit)} / {m.max!r}{_suffix(m.unit)}" for m in members)
        terms_en = " + ".join(f"{names_en[m.item_code]} {_num(m.value)}{_suffix(m.unit)} / {m.max!r}{_suffix(m.unit)}" for m in members)
        shown = _figure(total)
        name_zh, name_en = group.item_zh, group.item_en
        rule_zh = f"{standard}规定相同色泽着色剂、防腐剂、抗氧化剂混合使用时，各自用量占其最大使用量的比例之和不应超过1"
        if total > 1:
            verdict: Verdict = "fail"
            zh = f"{name_zh}：{terms} = {shown} > 1；{rule_zh}，判定不合格"
            en = f"{name_en}: {terms_en} = {shown} > 1 ({standard} sum-of-ratios rule: at most 1); fail"
        elif pending:
            verdict = "undetermined"
            zh = f"{name_zh}：已知部分比例之和{shown}，但{'、'.join(names_zh[c] for c in pending)}结果无法判定，故比例之和无法判定（{rule_zh}）"
            en = (f"{name_en}: known ratios sum to {shown}, but {', '.join(pending)} undetermined "
                  f"({standard} sum-of-ratios rule: at most 1); undetermined")
        else:
            verdict = "pass"
            zh = f"{name_zh}：{terms} = {shown} ≤ 1，符合{standard}比例之和规定，判定合格"
            en = f"{name_en}: {terms_en} = {shown} ≤ 1 ({standard} sum-of-ratios rule: at most 1); pass"
        if unverified:
            # a supervisor must know which limit to check before acting on the sum
            zh += f"（注：{'、'.join(unverified)}的限值尚待核实）"
            en += " (note: some limits are not yet verified)"
        checks.append(SumOfRatiosCheck(
            group=group.group, group_name=group.name_zh, members=tuple(members), pending=tuple(pending),
            total=float(total), verdict=verdict, message_zh=zh, message_en=en, item_name=name_zh, standard=standard or None,
        ))
    return checks


def _sum_checks_memo(category: str, catalogue: Catalogue, index: CatalogueIndex, basis: dt.date,
                     judged: dict[str, tuple[ItemJudgement, float | None]]) -> tuple[SumOfRatiosCheck, ...]:
    # The exact (Fraction) arithmetic is the costly part of a judgement; its inputs are
    # few: which group members were judged how, at which peak, under which rule.
    members = _GROUP_MEMBERS.get((catalogue.digest, category))
    if members is None:
        standards = catalogue.standards_for(category)
        groups = standards.sum_of_ratios if standards is not None else ()
        members = _GROUP_MEMBERS[(catalogue.digest, category)] = tuple(
            item for g in groups for item in index.group_members.get((category, g.group), ()))
    if not members:
        return ()
    timeless = index.timeless
    key = (category, tuple(
        (item.code, judged[item.code][0].verdict, repr(judged[item.code][1]),
         id(timeless.get((category, item.code)) or index.rule_on(category, item.code, basis)))
        for item in members if item.code in judged))
    memo = _memo_for(catalogue, index)
    hit = memo.get(key)
    if hit is None:
        checks = _sum_checks(category, catalogue, index, basis, judged)
        share_field_sets(checks)  # (validated, each would keep its own set of field names: see processors._build)
        hit = memo[key] = tuple(checks)
    return hit


# --------------------------------------------------------------------------- sample

# Item judgements are a pure function of the item, the category and the rule in
# force, and lab results repeat a lot (ND, all-zero plans, the same readings), so
# they are memoised per catalogue.  Bounded; a miss only costs the computation.
_MEMO: dict[str, tuple[CatalogueIndex, dict[tuple, tuple]]] = {}
_MEMO_LIMIT = 200_000


def _memo_for(catalogue: Catalogue, index: CatalogueIndex) -> dict[tuple, tuple]:
    """The memo of ``catalogue``'s judgements.  Its keys hold ``id(rule)``: kept beside the index whose
    rules those are, so that no rule of a catalogue since freed can lend its address to another (a
    reloaded catalogue's other edition was once judged by a stale entry: 0.3 g/kg dehydroacetic acid
    passed under GB 2760-2014 where the 2024 edition fails it).  A new catalogue object of the same
    digest starts a new memo; a running service loads its catalogue once."""
    entry = _MEMO.get(catalogue.digest)
    if entry is None or entry[0] is not index:
        entry = _MEMO[catalogue.digest] = (index, {})
    return entry[1]
_GROUP_MEMBERS: dict[tuple[str, str], tuple[CatalogueItem, ...]] = {}


# a verdict as the predicate of "按某版本…": never "判定无法判定"
_SAID_ZH = {"pass": "判定合格", "fail": "判定不合格", "undetermined": "无法判定", "not_applicable": "不作判定"}


# how a message says the production dates an edition covers: (from-to, from, to, open)
_MADE = {"zh": ("{0}至{1}前生产", "{0}起生产", "{1}前生产", "各生产日期"),
         "en": ("made {0} to before {1}", "made from {0}", "made before {1}", "any production date")}


def _made(rule: Rule, lang: str) -> str:
    start, end = rule.applies_from, rule.applies_to
    both, since, until, always = _MADE[lang]
    text = both if start and end else since if start else until if end else always
    return text.format(start and start.isoformat(), end and end.isoformat())


def _weigh_editions(pair: tuple[ItemJudgement, float | None], rule: Rule, span: tuple[Rule, ...], test: TestItem,
                    category: str, category_zh: str, index: CatalogueIndex, basis: dt.date,
                    product: str) -> tuple[ItemJudgement, float | None]:
    """No production date: the sampling date chose ``rule``, but the product may have been made
    under any edition of ``span`` (the category's look-back).  When their verdicts differ the
    item is undetermined and the message asks to verify the production date."""
    first = basis - index.lookback[category]
    verdicts: list[tuple[Rule, str]] = []
    for other in span:
        if other is rule:
            verdicts.append((other, pair[0].verdict))
        else:
            # judged as if made on a day of the look-back under that edition
            day = max(other.applies_from or first, first)
            verdicts.append((other, _judge_item(test, category, category_zh, index, day, [], product)[0].verdict))
    if len({v for _, v in verdicts}) == 1:
        return pair
    judgement = pair[0]
    days = index.lookback[category].days
    zh = (f"{judgement.item_name}：未提供生产日期，抽样日期{basis.isoformat()}前{days}天内生产的产品可能适用不同版本标准，判定结果不一："
          + "；".join(f"按{r.standard}（{_made(r, 'zh')}）{_SAID_ZH[v]}" for r, v in verdicts)
          + "。无法判定，请核实生产日期")
    en = (f"{index.items[(category, test.item_code)].name_en}: no production date; a product sampled on {basis.isoformat()} may have been made up to "
          f"{days} days earlier, under editions with different verdicts: "
          + "; ".join(f"{r.standard} ({_made(r, 'en')}): {v}" for r, v in verdicts)
          + ". Undetermined: verify the production date")
    unverified = list(dict.fromkeys(r.standard for r, _ in verdicts if not r.verified))
    if unverified:
        zh += f"（注：{'、'.join(unverified)}中的该项限值尚待核实）"
        en += " (note: some limits are not yet verified)"
    return judgement.model_copy(update={
        "verdict": "undetermined", "reason": "edition_uncertain", "message_zh": zh, "message_en": en,
        "agrees_with_lab": None,
    }), pair[1]


def judge_sample(sample: SamplingResult, category: str, catalogue: Catalogue) -> SampleJudgement:
    """Judge every test item of ``sample`` for an enterprise of ``category``.

    The edition is chosen by production date; when the lab gave none, by the
    sampling date, and ``edition_basis`` says so.  Then, if the product may have been
    made under an older edition (within the category's look-back), the whole sample is
    judged under each edition too, and its verdict is the one they share, or undetermined.
    """
    note_zh = note_en = None
    if sample.production_date is not None:
        basis, edition_basis = sample.production_date, "production_date"
    else:
        basis, edition_basis = sample.sampled_on, "sampled_on"
        note_zh = f"未提供生产日期，按抽样日期{basis.isoformat()}选择标准版本"
        note_en = f"no production date given; the sampling date {basis.isoformat()} chose the standard editions"
    index = catalogue.index
    reason: SampleReason | None = None
    reason_zh = reason_en = None

    block = catalogue.standards_for(category)
    if block is None:
        unknown = [UnknownEntry(kind="category", item_code=None, text=category)]
        judgements = [_undetermined(
            test, None, None, "unknown_category",
            f"{(test.item_name or test.item_code)}：标准目录中没有“{category}”类别的标准，无法判定",
            f"{(test.item_name or test.item_code)}: the catalogue has no standards for category {category!r}; undetermined",
        ) for test in sample.items]
        items = tuple(judgements)
        sums: tuple[SumOfRatiosCheck, ...] = ()
        disagreements = tuple(j.item_code for j in judgements if j.agrees_with_lab is False)
        verdict: Verdict = "undetermined"  # every item is
    else:
        lines = _judge_lines(sample, category, catalogue, index, block, basis, edition_basis == "sampled_on")
        judgements, judged, unknown, failed, undetermined, decided, disagreeing, doubtful = lines
        if doubtful:
            # the look-back spans more than one edition of some item: only now is the sample judged more than once
            items, sums, verdict, reason, reason_zh, reason_en = _across_editions(
                sample, category, catalogue, block, basis, doubtful, judgements)
            disagreements = tuple(j.item_code for j in items if j.agrees_with_lab is False) + _sums_disagreeing(sums, items)
        else:
            # (item codes are distinct in a validated sample: one judgement per code, in the sample's order)
            items = tuple(judgements)
            disagreements = tuple(disagreeing)
            sums = _sum_checks_memo(category, catalogue, index, basis, judged)
            if sums:
                disagreements += _sums_disagreeing(sums, items)
            verdict, no_item = _sample_verdict(failed, undetermined, decided, sums)
            if no_item:
                reason = "no_applicable_item"
                reason_zh, reason_en = _nothing_judged(items, sample.product)
    return _build_sample_judgement(
        sample_no=sample.sample_no,
        category=category,
        verdict=verdict,
        items=items,
        sum_checks=sums,
        disagreements=disagreements,
        unknown=tuple(unknown),
        edition_basis=edition_basis,
        basis_date=basis,
        basis_note_zh=note_zh,
        basis_note_en=note_en,
        catalogue_digest=catalogue.digest,
        verdict_reason=reason,
        verdict_note_zh=reason_zh,
        verdict_note_en=reason_en,
    )


def _sums_disagreeing(sums: tuple[SumOfRatiosCheck, ...], items: tuple[ItemJudgement, ...]) -> tuple[str, ...]:
    """Failing sums of ratios where the lab found every member 合格: the lab's report reads 合格 where qrisk
    fails the sample (each preservative within its own limit, the sum over 1) — the disagreement a penalty
    resting on the sum must check with the lab (``sum_of_ratios:<group>``)."""
    lab = {i.item_code: i.lab_verdict for i in items}
    # a lab that reported the sum itself (preservative_ratio_sum, named as SAMR names the check) and failed it agrees
    failed_by_lab = {i.item_name for i in items if i.lab_verdict == "fail"}
    return tuple(f"sum_of_ratios:{c.group}" for c in sums
                 if c.verdict == "fail" and c.members and all(lab.get(m.item_code) == "pass" for m in c.members)
                 and not (c.item_name and c.item_name in failed_by_lab))


def _sample_verdict(failed: bool, undetermined: bool, decided: bool,
                    sums: tuple[SumOfRatiosCheck, ...]) -> tuple[Verdict, bool]:
    """The sample's verdict from its items' and sums', and whether it is undetermined only because
    nothing was judged (合格 means judged and conforming, not "nothing found")."""
    for c in sums:
        v = c.verdict
        if v == "fail":
            failed = True
        elif v == "undetermined":
            undetermined = True
    if failed:
        return "fail", False
    if undetermined:
        return "undetermined", False
    if not decided:
        return "undetermined", True
    return "pass", False


def _judge_lines(sample: SamplingResult, category: str, catalogue: Catalogue, index: CatalogueIndex,
                 block: CategoryStandards, basis: dt.date, undated: bool) -> tuple:
    """Each result line judged by the rule in force on ``basis``, through the memo.  ``undated``: the
    sampling date is the basis, and an item whose look-back spans editions is weighed across them
    (``_weigh_editions``); the codes of such items are returned last: the sample is then judged per edition."""
    unknown: list[UnknownEntry] = []
    judged: dict[str, tuple[ItemJudgement, float | None]] = {}
    judgements: list[ItemJudgement] = []
    failed = undetermined = decided = False  # decided: some item was judged pass or fail against a limit
    disagreements: list[str] = []
    doubtful: list[str] = []
    memo = _memo_for(catalogue, index)
    if len(memo) > _MEMO_LIMIT:
        memo.clear()
    catalogued = index.items
    dated_get = index.dated.get
    # item code -> the rule needing no date for this product, or False: out of the item's scope
    fast_get = index.rules_for(category, sample.product).get
    product = sample.product
    for test in sample.items:
        # the fields straight from the model's dict: a pydantic attribute read costs a
        # __getattr__ hook, and this runs for every result line
        f = test.__dict__
        code = f["item_code"]
        # what the judgement depends on besides the result line: the rule in force; for an
        # item scoped to other products, the product's name (the judgement quotes it); with
        # no rule in force, the date (quoted likewise)
        rule = fast_get(code)
        if rule is False:
            rule = None
            decides: object = product
        elif rule is not None:
            decides = id(rule)
        else:
            rule = dated_get((category, code, basis))
            if rule is None:
                rule = index.rule_on(category, code, basis)
            decides = id(rule) if rule is not None else (basis if (category, code) in catalogued else None)
            if undated and rule is not None and len(index.rules_before(category, code, basis)) > 1:
                # the product may be older than the sampling date's edition: the verdict
                # weighs the editions of the look-back too, and its message quotes the date
                decides = (decides, basis)
                doubtful.append(code)
        # A judgement keeps numbers as floats, so 5 and 5.0 are judged alike and may share a
        # key; only a zero's sign survives float(): keys holding a zero are told apart by repr
        # (which also tells -0.0 from 0.0), so a hit is exactly what a fresh judgement gives.
        measured = (*f["values"], f["detection_limit"])
        if 0 in measured:
            measured = repr(measured)
        key = (category, code, f["item_name"], f["unit"], measured, f["lab_verdict"], f["standard_ref"], decides)
        hit = memo.get(key)
        if hit is None:
            found: list[UnknownEntry] = []
            pair = _judge_item(test, category, block.name_zh, index, basis, found, product)
            if undated and rule is not None:
                span = index.rules_before(category, code, basis)
                if len(span) > 1:
                    pair = _weigh_editions(pair, rule, span, test, category, block.name_zh, index, basis, product)
            # with what the sample's verdict needs of it, read once rather than per hit: an item not
            # applicable for want of the product's own standard leaves the sample undetermined
            v = pair[0].verdict
            if v == "not_applicable" and found:
                v = "undetermined"
            hit = memo[key] = (pair, tuple(found), v, pair[0].agrees_with_lab is False)
        pair, found_unknown, v, disagrees = hit
        judged[code] = pair
        judgements.append(pair[0])
        if v == "fail":
            failed = True
        elif v == "undetermined":
            undetermined = True
        elif v == "pass":
            decided = True
        if disagrees:
            disagreements.append(code)
        if found_unknown:
            unknown.extend(found_unknown)
    return judgements, judged, unknown, failed, undetermined, decided, disagreements, doubtful


def _nothing_judged(items: tuple[ItemJudgement, ...], product: str) -> tuple[str, str]:
    names = "、".join(j.item_name for j in items)
    return (f"无适用判定项目：本样品的检验项目（{names}）均不适用于本产品（{product}）的判定或现行标准已不再规定，"
            f"无法判定样品是否合格",
            f"no applicable item: none of the sample's items ({names}) applies to {product!r} or is still limited "
            f"by the standard in force; the sample is undetermined")


# --------------------------------------------------------------------------- no production date, editions apart


class _Edition:
    """The whole sample judged as if made in one span of the look-back, in which every item has one
    rule; ``label_zh``/``label_en`` name the editions that set the span apart and its production dates."""

    __slots__ = ("label_zh", "label_en", "items", "sums", "verdict", "nothing_judged")

    def __init__(self, label_zh: str, label_en: str, items: list[ItemJudgement],
                 sums: tuple[SumOfRatiosCheck, ...], verdict: Verdict, nothing_judged: bool) -> None:
        self.label_zh = label_zh
        self.label_en = label_en
        self.items = items
        self.sums = sums
        self.verdict = verdict
        self.nothing_judged = nothing_judged

    def failures(self, lang: str) -> list[str]:
        if lang == "zh":
            return [j.message_zh for j in self.items if j.verdict == "fail"] + [c.message_zh for c in self.sums if c.verdict == "fail"]
        return [j.message_en for j in self.items if j.verdict == "fail"] + [c.message_en for c in self.sums if c.verdict == "fail"]


def _editions(sample: SamplingResult, category: str, catalogue: Catalogue, block: CategoryStandards,
              basis: dt.date, doubtful: list[str]) -> list[_Edition]:
    """The look-back split where some item of the sample changes edition, oldest span first, the
    whole sample judged in each: items and sums of ratios alike, as a dated sample would be."""
    index = catalogue.index
    first = basis - index.lookback[category]
    spans = {code: index.rules_before(category, code, basis) for code in doubtful}
    starts = sorted({first} | {r.applies_from for span in spans.values() for r in span
                               if r.applies_from is not None and r.applies_from > first})
    zh_both, zh_since, zh_until, _ = _MADE["zh"]
    en_both, en_since, en_until, _ = _MADE["en"]
    editions: list[_Edition] = []
    for i, start in enumerate(starts):
        last = i == len(starts) - 1
        end = None if last else starts[i + 1]
        # the last span holds the sampling date: judged on it, it is the sampling date's judgement
        day = basis if last else start
        # an item may have no edition on some day of the look-back (its first starts within it, or
        # its editions leave a gap): that span is judged without it, and named by the others
        in_force = [rule for rule in (index.rule_on(category, code, day) for code in doubtful) if rule is not None]
        standards = "、".join(dict.fromkeys(rule.standard for rule in in_force)) or "（无适用标准）"
        if i == 0:
            made_zh, made_en = zh_until.format(None, end.isoformat()), en_until.format(None, end.isoformat())  # type: ignore[union-attr]
        elif last:
            made_zh, made_en = zh_since.format(start.isoformat()), en_since.format(start.isoformat())
        else:
            made_zh = zh_both.format(start.isoformat(), end.isoformat())  # type: ignore[union-attr]
            made_en = en_both.format(start.isoformat(), end.isoformat())  # type: ignore[union-attr]
        judgements, judged, _, failed, undetermined, decided, _, _ = _judge_lines(
            sample, category, catalogue, index, block, day, False)
        sums = _sum_checks_memo(category, catalogue, index, day, judged)
        verdict, nothing = _sample_verdict(failed, undetermined, decided, sums)
        standards_en = standards if in_force else "(no standard in force)"
        editions.append(_Edition(f"{standards}（{made_zh}）", f"{standards_en} ({made_en})", judgements, sums, verdict, nothing))
    return editions


def _across_editions(sample: SamplingResult, category: str, catalogue: Catalogue, block: CategoryStandards,
                     basis: dt.date, doubtful: list[str], weighed: list[ItemJudgement]) -> tuple:
    """No production date, and the look-back spans editions: 不合格 if the sample fails under every
    edition, 合格 if it passes under every one, otherwise undetermined (核实生产日期).  Items show
    their own verdict when the editions agree on it and are edition_uncertain when not (``weighed``);
    sums of ratios likewise.  A sample that fails under every edition, each for its own reason
    (脱氢乙酸: not permitted from GB 2760-2024, part of a sum over 1 under 2014), names its failure
    under the sampling date's edition and says why it fails under the others."""
    index = catalogue.index
    days = index.lookback[category].days
    editions = _editions(sample, category, catalogue, block, basis, doubtful)
    verdicts = {e.verdict for e in editions}
    verdict: Verdict = editions[0].verdict if len(verdicts) == 1 else "undetermined"
    items = list(weighed)
    sums = _weigh_sums(category, index, block, editions, basis, days, verdict)
    if verdict == "fail" and not any(j.verdict == "fail" for j in items) and not any(c.verdict == "fail" for c in sums):
        _name_the_failure(category, index, block, editions, basis, days, items, sums)
    doubt_zh = f"未提供生产日期，抽样日期{basis.isoformat()}前{days}天内生产的产品可能适用不同版本标准，已按各版本分别判定整个样品："
    doubt_en = (f"no production date; a product sampled on {basis.isoformat()} may have been made up to {days} days "
                f"earlier, so the whole sample was judged under each edition: ")
    each_zh = "；".join(f"按{e.label_zh}{_SAID_ZH[e.verdict]}" for e in editions)
    each_en = "; ".join(f"{e.label_en}: {e.verdict}" for e in editions)
    if len(verdicts) > 1:
        return (tuple(items), tuple(sums), verdict, "edition_uncertain",
                f"{doubt_zh}{each_zh}。判定结果不一，无法判定，请核实生产日期",
                f"{doubt_en}{each_en}. The verdicts differ: undetermined, verify the production date")
    if all(e.nothing_judged for e in editions):
        return (tuple(items), tuple(sums), verdict, "no_applicable_item", *_nothing_judged(tuple(items), sample.product))
    return (tuple(items), tuple(sums), verdict, "editions_agree",
            f"{doubt_zh}{each_zh}。按任一版本均{_SAID_ZH[verdict]}",
            f"{doubt_en}{each_en}. The same verdict under every edition: {verdict}")


def _weigh_sums(category: str, index: CatalogueIndex, block: CategoryStandards, editions: list[_Edition], basis: dt.date,
                days: int, verdict: Verdict) -> list[SumOfRatiosCheck]:
    """Each sum of ratios as the sampling date's edition gives it when every edition agrees on its
    verdict (no sum to check counts as within the rule), else undetermined with each edition's sum."""
    checks: list[SumOfRatiosCheck] = []
    for group in block.sum_of_ratios:
        per = [next((c for c in e.sums if c.group == group.group), None) for e in editions]
        seen = {"pass" if c is None else c.verdict for c in per}
        base = per[-1]
        if len(seen) == 1:
            if base is not None:
                checks.append(base)
            continue
        shown = base or next(c for c in per if c is not None)
        codes = {item.code for item in index.group_members.get((category, group.group), ())}
        zh_parts, en_parts = [], []
        for e, c in zip(editions, per):
            if c is not None:
                # the check's own message without its name: the terms, the sum and the verdict
                zh_parts.append(f"按{e.label_zh}，{c.message_zh.split('：', 1)[1]}")
                en_parts.append(f"{e.label_en}: {c.message_en.split(': ', 1)[1]}")
                continue
            banned = [j for j in e.items if j.kind == "not_permitted" and j.verdict == "fail" and j.item_code in codes]
            if banned:
                names = "、".join(j.item_name for j in banned)
                zh_parts.append(f"按{e.label_zh}，{names}不得使用（单独判定），不计入比例之和，可计入的{group.name_zh}不足两种，不计算比例之和")
                en_parts.append(f"{e.label_en}: {', '.join(index.items[(category, j.item_code)].name_en for j in banned)} "
                                f"not permitted (judged on its own), "
                                f"not summed; fewer than two {group.name_en} to sum")
            else:
                zh_parts.append(f"按{e.label_zh}，可计入的{group.name_zh}不足两种，不计算比例之和")
                en_parts.append(f"{e.label_en}: fewer than two {group.name_en} to sum")
        if verdict == "fail":
            tail_zh, tail_en = "。本项目无法判定，但按任一版本本样品均不合格", ". This check is undetermined; the sample fails under every edition"
        else:
            tail_zh, tail_en = "。无法判定，请核实生产日期", ". Undetermined: verify the production date"
        checks.append(SumOfRatiosCheck(
            group=group.group, group_name=group.name_zh, members=shown.members, pending=shown.pending, total=shown.total,
            verdict="undetermined",
            message_zh=(f"{group.item_zh}：未提供生产日期，抽样日期{basis.isoformat()}前{days}天内生产的产品可能适用不同版本标准，"
                        f"判定结果不一：{'；'.join(zh_parts)}{tail_zh}"),
            message_en=(f"{group.item_en}: no production date; a product sampled on {basis.isoformat()} may have been made up to "
                        f"{days} days earlier, under editions with different verdicts: {'; '.join(en_parts)}{tail_en}"),
            item_name=group.item_zh,
            standard="、".join(dict.fromkeys(s for c in per if c is not None and c.standard for s in c.standard.split("、"))) or None,
        ))
    return checks


def _name_the_failure(category: str, index: CatalogueIndex, block: CategoryStandards, editions: list[_Edition], basis: dt.date, days: int,
                      items: list[ItemJudgement], sums: list[SumOfRatiosCheck]) -> None:
    """Every edition fails the sample, but on no one item or sum that fails under all of them: the
    failures of the sampling date's edition are named (an alert lists what failed), and the first
    of them says why the sample fails under each edition."""
    base = editions[-1]
    why_zh = "".join(f"按{e.label_zh}：{'；'.join(e.failures('zh'))}。" for e in editions)[:-1]
    why_en = " ".join(f"{e.label_en}: {'; '.join(e.failures('en'))}." for e in editions)
    lead_zh = f"未提供生产日期，抽样日期{basis.isoformat()}前{days}天内生产的产品可能适用不同版本标准，按任一版本均判定不合格。"
    lead_en = (f"no production date; a product sampled on {basis.isoformat()} may have been made up to {days} days earlier, "
               f"under different editions, and fails under every one. ")
    also_zh = "（未提供生产日期；按其他可能适用的版本本样品亦不合格）"
    also_en = " (no production date; the sample fails under the other editions it may fall under too)"
    groups_en = {g.group: g.item_en for g in block.sum_of_ratios}
    told = False
    for k, j in enumerate(base.items):
        if j.verdict != "fail":
            continue
        if told:
            items[k] = j.model_copy(update={"message_zh": j.message_zh + also_zh, "message_en": j.message_en + also_en})
            continue
        name_en = index.items[(category, j.item_code)].name_en
        items[k] = j.model_copy(update={"message_zh": f"{j.item_name}：{lead_zh}{why_zh}",
                                        "message_en": f"{name_en}: {lead_en}{why_en}"})
        told = True
    for c in base.sums:
        if c.verdict != "fail":
            continue
        k = next((i for i, s in enumerate(sums) if s.group == c.group), len(sums))
        if told:
            c = c.model_copy(update={"message_zh": c.message_zh + also_zh, "message_en": c.message_en + also_en})
        else:
            c = c.model_copy(update={"message_zh": f"{c.item_name}：{lead_zh}{why_zh}",
                                     "message_en": f"{groups_en[c.group]}: {lead_en}{why_en}"})
            told = True
        sums[k:k + 1] = [c]


_build_item_judgement = builder(ItemJudgement)
# every field of a sample's judgement comes from the catalogue and the memoised item judgements
_build_sample_judgement = builder(SampleJudgement)
