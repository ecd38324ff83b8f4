"""What the door can tell a lab about a valid result qrisk will keep but cannot judge.

A misspelt item code, a unit nobody can read or convert, a negative reading: the event is a
fact and is accepted (the credit file shows the item as 无法判定 and says why), but the sender
should learn it in the answer, not months later from a supervisor.  The catalogue decides, the
same one the fold judges with (a lab integrator reads it at ``GET /v1/catalogue`` or in the
``catalogue.json`` of ``qrisk schema export``).
"""
from __future__ import annotations

from typing import Any

from schemas.events import CampaignActivityEvent, Envelope, SamplingResultEvent, TestItem
from schemas.standards import Catalogue, UnitTable


def event_warnings(event: Envelope, catalogue: Catalogue, category: str | None = None) -> list[dict[str, Any]]:
    """Warnings for the items of a ``sampling.result`` qrisk will leave undetermined (and a comparison test on an unknown item).

    ``category``: the enterprise's, when known; otherwise an item counts as known when any
    category has it (the registration may come later).  A campaign comparison test names an item
    too: the credit file reads its values in that item's unit."""
    if isinstance(event, CampaignActivityEvent) and event.payload.kind == "comparison_test" and event.payload.item_code:
        code = event.payload.item_code
        categories = [category] if category in catalogue.categories else sorted(catalogue.categories)
        if any(catalogue.item(c, code) is not None for c in categories):
            return []
        return [_warning("payload.item_code", "unknown_item", f"the catalogue has no item {code!r}: the comparison is kept without its item's name and unit",
                         f"标准目录中没有检验项目代码 {code}，比对试验照录，但无法给出项目名称和单位；可用代码见 GET /v1/catalogue")]
    if not isinstance(event, SamplingResultEvent):
        return []
    out: list[dict[str, Any]] = []
    product = event.payload.product
    excluded = _excluded(catalogue, category, product) if category is not None else None
    if excluded is not None:
        out.append(_warning("payload.product", "uncatalogued_standard",
                            f"{product} falls under {excluded.standard}, which the catalogue does not hold: the items it does not "
                            f"share with the catalogued standards will be not applicable and the sample undetermined",
                            f"{excluded.name_zh}适用 {excluded.standard}（标准目录未收录）：目录中按其他标准（如 GB 19298-2014）规定的项目不予判定，"
                            f"样品结论将为无法判定"))
    in_scope = catalogue.index.rules_for(category, product) if category is not None else {}
    for i, test in enumerate(event.payload.items):
        problem = _item_problem(catalogue, category, test.item_code, test.unit)
        field = f"payload.items[{i}]"
        if problem is None:
            pass
        elif problem[0] == "unknown_item":
            printed = _printed(catalogue, category, test)  # another category may know it (酸价 on a water plant's sample)
            scope = catalogue.categories[category].name_zh if category in catalogue.categories else "任何类别的"
            out.append(_warning(f"{field}.item_code", "unknown_item",
                                f"the catalogue has no item {test.item_code!r} ({printed}); it will be undetermined",
                                f"{scope}标准目录中没有检验项目代码 {test.item_code}（{printed}），该项目将无法判定；可用代码见 GET /v1/catalogue"))
        elif problem[0] == "unknown_unit":
            printed = _printed(catalogue, category, test)
            out.append(_warning(f"{field}.unit", "unknown_unit",
                                f"unit {test.unit!r} is not known; {test.item_code} will be undetermined",
                                f"无法识别单位“{test.unit}”，{printed}将无法判定；可用单位见 GET /v1/catalogue"))
        else:
            wanted, printed = problem[1], _printed(catalogue, category, test)
            out.append(_warning(f"{field}.unit", "unit_mismatch",
                                f"unit {test.unit!r} does not convert to {wanted}; {test.item_code} will be undetermined",
                                f"单位“{test.unit}”不能换算为{printed}的标准单位 {wanted}，该项目将无法判定"))
        if category is not None and problem is None and in_scope.get(test.item_code) is not False:
            n = _plan_size(catalogue, category, test.item_code, len(test.values), event.payload.production_date or event.payload.sampled_on)
            if n is not None:
                out.append(_warning(f"{field}.values", "wrong_value_count",
                                    f"the sampling plan needs n={n} results, got {len(test.values)}; {test.item_code} will be undetermined",
                                    f"{_printed(catalogue, category, test)}的采样方案要求 n={n} 个检测结果，收到 {len(test.values)} 个，该项目将无法判定"))
        for negative, value in enumerate(test.values):
            if value.__class__ is not str and value < 0:  # (a string is "ND")
                break
        else:
            continue
        out.append(_warning(f"{field}.values[{negative}]", "negative_value",
                            f"a negative result; {test.item_code} will be undetermined",
                            f"检测结果为负值，{_printed(catalogue, category, test)}将无法判定"))
    return out


_EXCLUSIONS: dict[tuple[int, str, str], tuple[Catalogue, Any]] = {}


def _excluded(catalogue: Catalogue, category: str, product: str) -> Any:
    """The exclusion (a standard the catalogue lacks, e.g. GB 8537-2018 for 矿泉水) the product falls
    under for some item of its category, if any; memoised per (catalogue, category, product)."""
    key = (id(catalogue), category, product)
    hit = _EXCLUSIONS.get(key)
    if hit is None or hit[0] is not catalogue:
        if len(_EXCLUSIONS) > _PROBLEMS_LIMIT:
            _EXCLUSIONS.clear()
        block = catalogue.categories.get(category)
        found = None
        for item in (block.items if block is not None else ()):
            if item.scope is not None and (found := item.scope.excluded_by(product)) is not None:
                break
        hit = _EXCLUSIONS[key] = (catalogue, found)
    return hit[1]


_PLAN_SIZES: dict[tuple[int, str, str], tuple[Catalogue, frozenset[int]]] = {}


def _plan_size(catalogue: Catalogue, category: str, code: str, got: int, basis: Any) -> int | None:
    """The n of the item's sampling plan in force when ``got`` results are not n; else None.  Most
    items have no plan, or get their n: asked from a memo of every edition's n first."""
    key = (id(catalogue), category, code)
    hit = _PLAN_SIZES.get(key)
    if hit is None or hit[0] is not catalogue:
        item = catalogue.item(category, code)
        sizes = frozenset(r.n for r in item.rules if r.kind == "plan" and r.n is not None) if item is not None else frozenset()
        hit = _PLAN_SIZES[key] = (catalogue, sizes)
    if not hit[1] or hit[1] == {got}:
        return None
    item = catalogue.item(category, code)
    rule = item.rule_on(basis) if item is not None else None
    return rule.n if rule is not None and rule.kind == "plan" and rule.n is not None and rule.n != got else None


def _printed(catalogue: Catalogue, category: str | None, test: TestItem) -> str:
    """The item as a Chinese sentence names it: as the lab printed it (item_name), else as the catalogue
    calls it (the enterprise's category's name first, else any category's); the code only when neither knows it."""
    if test.item_name:
        return test.item_name
    categories = [category] if category in catalogue.categories else []
    for c in categories + sorted(catalogue.categories):
        item = catalogue.item(c, test.item_code)
        if item is not None:
            return item.name_zh
    return test.item_code


# What a catalogue says of an (enterprise category, item code, unit) does not change while it is
# loaded: the answer to every accepted batch asks it for each result line, and a lab sends the
# same few dozen lines again and again.  Keyed by the catalogue's id, checked by identity.
_PROBLEMS: dict[tuple[int, str | None, str, str], tuple[Catalogue, tuple[str, ...] | None]] = {}
_PROBLEMS_LIMIT = 100_000


def _item_problem(catalogue: Catalogue, category: str | None, code: str, unit_text: str) -> tuple[str, ...] | None:
    """None, ("unknown_item",), ("unknown_unit",) or ("unit_mismatch", the units it should convert to)."""
    key = (id(catalogue), category, code, unit_text)
    hit = _PROBLEMS.get(key)
    if hit is not None and hit[0] is catalogue:
        return hit[1]
    if len(_PROBLEMS) > _PROBLEMS_LIMIT:
        _PROBLEMS.clear()
    categories = [category] if category in catalogue.categories else sorted(catalogue.categories)
    having = [c for c in categories if catalogue.item(c, code) is not None]
    problem: tuple[str, ...] | None = None
    if not having:
        problem = ("unknown_item",)
    else:
        unit = catalogue.units.resolve(unit_text)
        # a not-permitted substance is judged by any detection, whatever the unit, and an item the standard no
        # longer limits is not judged at all: no unit to read or match
        targets = [u for c in having if any(r.kind not in ("not_permitted", "no_longer_limited") for r in catalogue.item(c, code).rules)  # type: ignore[union-attr]
                   for u in catalogue.accepted_units(c, code)]
        if not targets:
            pass
        elif unit is None:
            problem = ("unknown_unit",)
        elif all(UnitTable.factor(unit, t) is None for t in targets):
            problem = ("unit_mismatch", "、".join(sorted({t.unit for t in targets})))
    _PROBLEMS[key] = (catalogue, problem)
    return problem


def _warning(field: str, kind: str, reason: str, reason_zh: str) -> dict[str, Any]:
    return {"field": field, "type": kind, "reason": reason, "reason_zh": reason_zh}
