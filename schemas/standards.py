"""The standards catalogue: GB limits as data (``schemas/standards/*.yaml``).

A supervisor corrects a limit by editing a YAML file, not code.  This module only
validates that data and builds the lookups the judgement needs, once, at load
time, so that judging a sample is a handful of dict look-ups.

Layout of the data directory: ``units.yaml`` (units and exact conversions) and
one file per category (``packaged_water.yaml``, ``pastry.yaml``, ...).  Rule
semantics and the other fields of an item are documented at the top of
``packaged_water.yaml``.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from schemas.events import Category

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

ITEM_CODE_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"
"""Same pattern as ``schemas.events.TestItem.item_code``."""

UNITS_FILE = "units.yaml"

ItemClass = Literal[
    "pathogen",
    "indicator_microbe",
    "additive_not_permitted",
    "additive",
    "contaminant",
    "chemical",
    "quality_index",
]
RuleKind = Literal["maximum", "range", "not_permitted", "plan", "no_longer_limited"]
"""``no_longer_limited``: the edition in force does not limit the item any more (GB 19298-2014 dropped
total plate count, moulds and yeasts): labs still report it, and it is shown as not judged."""

# Strict on purpose: PyYAML reads "1e5" as text, and a silently coerced string
# limit is exactly the kind of mistake a data file must not hide.
Number = Annotated[Union[StrictInt, StrictFloat], Field(allow_inf_nan=False)]
Code = Annotated[str, Field(pattern=ITEM_CODE_PATTERN)]
Text = Annotated[str, Field(min_length=1, max_length=200)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _fmt(value: int | float) -> str:
    # repr keeps the data file's own spelling (2.0 stays "2.0", 10000 stays "10000").
    return repr(value)


# --------------------------------------------------------------------------- rules


class Rule(_Model):
    """One edition's requirement for one item, valid for a production-date range."""

    standard: Text = Field(description="e.g. GB 19298-2014")
    edition: Annotated[str, Field(min_length=1, max_length=20)] = Field(description="e.g. 2014")
    applies_from: dt.date | None = Field(default=None, description="first production date (inclusive); null = open")
    applies_to: dt.date | None = Field(default=None, description="end production date (exclusive); null = open")
    kind: RuleKind
    max: Number | None = None
    max_exclusive: StrictBool = Field(default=False, description="maximum: the value must stay below max (GB 2760 natamycin: 残留量<10 mg/kg), not at or below it")
    min: Number | None = None
    n: StrictInt | None = Field(default=None, ge=1, le=50)
    c: StrictInt | None = Field(default=None, ge=0)
    m: Number | None = None
    M: Number | None = None
    verified: StrictBool
    note: Annotated[str, Field(max_length=1000)] = ""
    caveat_zh: Annotated[str, Field(max_length=200)] = Field(
        default="", description="what a verdict under this rule leaves to be confirmed, said in its message: on every verdict "
                                "of an unverified rule (instead of 该限值尚待核实, when the limit is not what is in doubt) and on "
                                "a failure of a verified one (a limit for some products only: 仅适用于蒸馏法加工的饮用纯净水…)")
    caveat_en: Annotated[str, Field(max_length=200)] = ""

    @model_validator(mode="after")
    def _consistent(self) -> "Rule":
        given = {name for name in ("max", "min", "n", "c", "m", "M") if getattr(self, name) is not None}
        allowed = {
            "maximum": {"max"},
            "range": {"min", "max"},
            "not_permitted": set(),
            "plan": {"n", "c", "m", "M"},
            "no_longer_limited": set(),
        }[self.kind]
        required = {"maximum": {"max"}, "range": {"min", "max"}, "not_permitted": set(), "plan": {"n", "c", "m"},
                    "no_longer_limited": set()}[self.kind]
        if given - allowed:
            raise ValueError(f"kind {self.kind!r} takes no {sorted(given - allowed)}")
        if required - given:
            raise ValueError(f"kind {self.kind!r} needs {sorted(required - given)}")
        if self.max_exclusive and self.kind != "maximum":
            raise ValueError(f"kind {self.kind!r} takes no max_exclusive (only a maximum)")
        if self.kind == "range" and self.min > self.max:  # type: ignore[operator]
            raise ValueError("range: min must not exceed max")
        if self.kind == "plan":
            if self.c > self.n:  # type: ignore[operator]
                raise ValueError("plan: c must not exceed n")
            if self.m < 0:  # type: ignore[operator]
                raise ValueError("plan: m must be >= 0")
            if self.M is not None and self.M <= self.m:  # type: ignore[operator]
                raise ValueError("plan: M must exceed m (use M: null for a two-class plan)")
        if self.applies_from and self.applies_to and self.applies_from >= self.applies_to:
            raise ValueError("applies_from must be before applies_to")
        return self

    def in_force_on(self, day: dt.date) -> bool:
        return (self.applies_from is None or self.applies_from <= day) and (
            self.applies_to is None or day < self.applies_to
        )

    @functools.cached_property
    def limit_text(self) -> str:
        """The limit as a supervisor reads it, without unit: "≤0.05", "5.0–7.0", "n=5,c=0,m=0"."""
        if self.kind == "maximum":
            return f"{'<' if self.max_exclusive else '≤'}{_fmt(self.max)}"  # type: ignore[arg-type]
        if self.kind == "range":
            return f"{_fmt(self.min)}–{_fmt(self.max)}"  # type: ignore[arg-type]
        if self.kind == "plan":
            text = f"n={self.n},c={self.c},m={_fmt(self.m)}"  # type: ignore[arg-type]
            return text if self.M is None else f"{text},M={_fmt(self.M)}"
        if self.kind == "no_longer_limited":
            return "不作判定（标准已不再规定）"
        # not_permitted is for additives (CatalogueItem checks): GB 2760 says 不得使用; 不得检出
        # is the wording for pathogens and contaminants
        return "不得使用"


# --------------------------------------------------------------------------- items


Fragment = Annotated[str, Field(min_length=1, max_length=40)]


class ExcludedProducts(_Model):
    """Products of the category that fall under a standard of their own, which the catalogue does
    not hold: GB 19298-2014 (包装饮用水) does not cover natural mineral water (饮用天然矿泉水), which
    GB 8537-2018 governs.  Such a product is not judged on the item ("not_applicable"), and its
    sample cannot be 合格 by it either: the sample is undetermined unless something else fails."""

    products: tuple[Fragment, ...] = Field(min_length=1, description="name fragments, e.g. 矿泉水")
    name_zh: Text = Field(description="the products as a supervisor names them, e.g. 饮用天然矿泉水")
    name_en: Text
    standard: Text = Field(description="the standard they fall under instead, not in the catalogue, e.g. GB 8537-2018")

    def covers(self, product: str) -> bool:
        return any(fragment in product for fragment in self.products)


class ProductScope(_Model):
    """The products of a category an item's limits apply to, recognised by their name.

    GB 17323's conductivity and pH are quality indices of purified water (饮用纯净水) only;
    a mineral or spring water in the same category is not judged on them.  GB 19298 asks
    the label to name the water's type, so a fragment of the product name decides.
    ``products`` lists the products the item applies to (none listed: every product of the
    category); ``excludes`` the products that fall under another, uncatalogued standard, and
    an exclusion wins over ``products``.
    """

    products: tuple[Fragment, ...] = Field(
        default=(), description="name fragments: the item applies when the sample's product name contains one of them; "
                                "empty = every product of the category not excluded")
    excludes: tuple[ExcludedProducts, ...] = Field(
        default=(), description="products under a standard the catalogue does not hold (not judged; the sample is undetermined)")
    name_zh: Text = Field(description="the products as a supervisor names them, e.g. 饮用纯净水")
    name_en: Text

    @model_validator(mode="after")
    def _names_something(self) -> "ProductScope":
        if not self.products and not self.excludes:
            raise ValueError("a scope names at least one of products (name fragments it applies to) or excludes")
        return self

    @functools.cached_property
    def key(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """What decides whether a product is in scope: the included and the excluded fragments."""
        return self.products, tuple(f for excluded in self.excludes for f in excluded.products)

    def excluded_by(self, product: str) -> ExcludedProducts | None:
        """The exclusion ``product`` falls under, if any."""
        return next((excluded for excluded in self.excludes if excluded.covers(product)), None)

    def covers(self, product: str) -> bool:
        return covers(self.key, product)


def covers(key: tuple[tuple[str, ...], tuple[str, ...]], product: str) -> bool:
    """Whether ``product`` is in the scope whose ``ProductScope.key`` is ``key``."""
    included, excluded = key
    return (not included or any(f in product for f in included)) and not any(f in product for f in excluded)


class CatalogueItem(_Model):
    code: Code
    name_zh: Text
    name_en: Text
    item_class: ItemClass
    unit: Annotated[str, Field(min_length=1, max_length=40)] = Field(description="canonical unit, a unit of units.yaml")
    alternative_units: tuple[Annotated[str, Field(min_length=1, max_length=40)], ...] = Field(
        default=(), description="other canonical units the standard itself reports the item in (GB 19298-2014 表3: 大肠菌群 "
                                "MPN/100mL, CFU/100mL by membrane filtration); a result in one is judged against the same "
                                "numbers, in that unit.  Not a conversion: the units table keeps them apart for every other item")
    function_group: Code | None = Field(default=None, description="e.g. preservative, sweetener (sum-of-ratios)")
    scope: ProductScope | None = Field(default=None, description="products the limits apply to; null = every product of the category")
    rules: tuple[Rule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _not_permitted_is_for_additives(self) -> "CatalogueItem":
        if self.item_class not in ("additive", "additive_not_permitted") and any(r.kind == "not_permitted" for r in self.rules):
            raise ValueError(f"{self.code}: kind not_permitted is for additives (不得使用); "
                             "a pathogen or contaminant that must not be detected is a plan or maximum with 0")
        return self

    @field_validator("rules")
    @classmethod
    def _editions_do_not_overlap(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        # Two rules in force on one day would make the verdict depend on list order.
        lo, hi = dt.date.min, dt.date.max
        spans = sorted(((r.applies_from or lo, r.applies_to or hi, r) for r in rules), key=lambda s: s[0])
        for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
            if start < end:
                raise ValueError(f"rules {a.standard} and {b.standard} overlap in production dates")
        return rules

    def rule_on(self, day: dt.date) -> Rule | None:
        """The rule in force for a product made on ``day`` (None: no catalogued edition)."""
        for rule in self.rules:
            if rule.in_force_on(day):
                return rule
        return None

    def rules_between(self, first: dt.date, last: dt.date) -> tuple[Rule, ...]:
        """The rules in force on some day from ``first`` to ``last`` (both inclusive), oldest first."""
        found = [r for r in self.rules
                 if (r.applies_from is None or r.applies_from <= last) and (r.applies_to is None or r.applies_to > first)]
        found.sort(key=lambda r: r.applies_from or dt.date.min)
        return tuple(found)


class SumOfRatiosGroup(_Model):
    group: Code = Field(description="the function_group whose members are summed")
    name_zh: Text = Field(description="the function, e.g. 防腐剂")
    name_en: Text
    item_name_zh: Text | None = Field(
        default=None, description="the check as SAMR announcements name the failed item, e.g. 防腐剂混合使用时各自用量占其最大使用量的比例之和; "
                                  "default: composed from name_zh")
    item_name_en: Text | None = None

    @property
    def item_zh(self) -> str:
        return self.item_name_zh or f"{self.name_zh}混合使用时各自用量占其最大使用量的比例之和"

    @property
    def item_en(self) -> str:
        return self.item_name_en or f"{self.name_en} used together, sum of each one's use over its maximum"


class CategoryStandards(_Model):
    category: Category
    name_zh: Text
    name_en: Text
    items: tuple[CatalogueItem, ...] = Field(min_length=1)
    sum_of_ratios: tuple[SumOfRatiosGroup, ...] = ()
    edition_lookback_days: StrictInt = Field(
        default=365, ge=0, le=3650,
        description="no production date given: how long before the sampling date the product may have been made; "
                    "an item whose verdict differs between the editions in force over that span is undetermined")

    @model_validator(mode="after")
    def _codes_unique(self) -> "CategoryStandards":
        seen: set[str] = set()
        for item in self.items:
            if item.code in seen:
                raise ValueError(f"{self.category}: item code {item.code!r} appears twice")
            seen.add(item.code)
        groups = {item.function_group for item in self.items}
        for group in self.sum_of_ratios:
            if group.group not in groups:
                raise ValueError(f"{self.category}: sum_of_ratios group {group.group!r} has no item")
        return self


# --------------------------------------------------------------------------- units


def _decimal(value: Any) -> Any:
    # Through str so that 0.001 written as a YAML float is still the decimal 0.001.
    if isinstance(value, bool):
        raise ValueError("factor must be a number")
    if isinstance(value, (int, float, str)):
        try:
            return Decimal(str(value))
        except InvalidOperation as exc:
            raise ValueError(f"not a number: {value!r}") from exc
    return value


def normalise_unit(text: str) -> str:
    """The matching key of a unit as printed: NFKC, whitespace removed, case kept."""
    return "".join(unicodedata.normalize("NFKC", text).split())


class Unit(_Model):
    unit: Annotated[str, Field(min_length=1, max_length=40)]
    dimension: Code
    factor: Annotated[Decimal, BeforeValidator(_decimal), Field(gt=0, allow_inf_nan=False)] = Field(
        description="how many of the dimension's base unit one of this unit is"
    )
    aliases: tuple[Annotated[str, Field(min_length=1, max_length=40)], ...] = ()
    label: str | None = Field(default=None, max_length=40, description="printed after numbers; default: unit")

    @property
    def display(self) -> str:
        return self.unit if self.label is None else self.label


class UnitTable(_Model):
    units: tuple[Unit, ...] = Field(min_length=1)
    _lookup: "_UnitLookup" = PrivateAttr()

    def model_post_init(self, __context: Any) -> None:
        by_key: dict[str, Unit] = {}
        for unit in self.units:
            for text in (unit.unit, *unit.aliases):
                key = normalise_unit(text)
                other = by_key.get(key)
                if other is not None and other is not unit:
                    raise ValueError(f"unit text {text!r} names both {other.unit!r} and {unit.unit!r}")
                by_key[key] = unit
        exact = {text: unit for unit in self.units for text in (unit.unit, *unit.aliases)}
        # counts of colonies, most probable numbers and test portions mean the same in any case (mpn/100ml, Cfu/G);
        # other units are matched as spelt: case is meaning in SI (mg, Mg; mS, MS)
        folded = {normalise_unit(text).casefold(): unit for unit in self.units if _COUNTED.match(unit.unit)
                  for text in (unit.unit, *unit.aliases)}
        self._lookup = _UnitLookup(by_key, exact, {unit.unit: unit for unit in self.units}, folded)

    def by_name(self, name: str) -> Unit | None:
        """The unit whose canonical spelling is ``name`` (aliases not accepted)."""
        return self.__pydantic_private__["_lookup"].canonical.get(name)  # type: ignore[index]

    def resolve(self, text: str) -> Unit | None:
        """The unit a lab's text names, or None when it is not in the table (never guessed)."""
        return self.__pydantic_private__["_lookup"].resolve(text)  # type: ignore[index]

    @staticmethod
    def factor(source: Unit, target: Unit) -> Decimal | None:
        """Multiply a value in ``source`` by this to express it in ``target``; None if not convertible."""
        if source is target:
            return ONE
        if source.dimension != target.dimension:
            return None
        if source.factor == target.factor:
            return ONE
        return source.factor / target.factor


ONE = Decimal(1)
"""The factor ``UnitTable.factor`` returns (this very object) when no conversion is needed."""


_COUNTED = re.compile(r"(CFU|MPN)?/", re.IGNORECASE)
"""Units that count (CFU/…, MPN/…, per test portion /25g): matched whatever their case."""


class _UnitLookup:
    # Plain object: pydantic's private-attribute access costs microseconds per call,
    # and the fold resolves a unit for every test item.
    __slots__ = ("by_key", "exact", "canonical", "folded")

    def __init__(self, by_key: dict[str, Unit], exact: dict[str, Unit], canonical: dict[str, Unit], folded: dict[str, Unit]) -> None:
        self.by_key = by_key  # normalised spelling -> unit
        self.exact = exact  # spelling as written in units.yaml -> unit (skips NFKC for the usual case)
        self.canonical = canonical
        self.folded = folded  # a counting unit's normalised spelling, case-folded -> unit

    def resolve(self, text: str) -> Unit | None:
        unit = self.exact.get(text)
        if unit is not None:
            return unit
        key = normalise_unit(text)
        unit = self.by_key.get(key)
        return unit if unit is not None else self.folded.get(key.casefold())


# --------------------------------------------------------------------------- catalogue


class CatalogueIndex:
    """Plain-dict lookups over a catalogue, built once at load.

    Hot paths (the event fold) take ``catalogue.index`` once per sample and use
    these dicts directly; pydantic private attributes are too slow per item.
    """

    __slots__ = ("items", "item_units", "alternative_units", "group_members", "units", "timeless", "scoped", "scope_keys",
                 "covers", "by_product", "dated", "lookback", "spans")

    def __init__(self, items: dict[tuple[str, str], CatalogueItem], item_units: dict[tuple[str, str], Unit],
                 group_members: dict[tuple[str, str], tuple[CatalogueItem, ...]], units: _UnitLookup,
                 lookback: dict[str, dt.timedelta],
                 alternative_units: dict[tuple[str, str], tuple[Unit, ...]] | None = None) -> None:
        self.items = items
        # (category, code) -> the other units the standard reports the item in (CatalogueItem.alternative_units)
        self.alternative_units = alternative_units or {}
        self.lookback = lookback  # category -> its edition_lookback_days
        self.item_units = item_units
        self.group_members = group_members
        self.units = units
        # items with one edition, no date bounds and no product scope: the rule needs neither
        # a date nor the product's name (most of the catalogue)
        self.timeless: dict[tuple[str, str], Rule] = {
            key: rule for key, item in items.items() if item.scope is None and (rule := self._undated(item)) is not None
        }
        # items scoped to some products: the number of their scope (items with equal scopes share
        # one: every GB 19298 item excludes mineral water alike) and the rule when it needs no date
        numbers: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
        self.scoped: dict[tuple[str, str], tuple[int, Rule | None]] = {
            key: (numbers.setdefault(item.scope.key, len(numbers)), self._undated(item))
            for key, item in items.items() if item.scope is not None
        }
        self.scope_keys = tuple(numbers)  # scope number -> ProductScope.key
        # (scope number, product name) -> whether the product is in that scope: filled as samples ask
        # (a county's product names are few, and every water sample asks)
        self.covers: dict[tuple[int, str], bool] = {}
        self.by_product: dict[tuple[str, str], dict[str, Rule | bool]] = {}  # rules_for, memoised

        # (category, code, day) -> the rule in force: filled as judgements ask (a county's
        # production dates are few), so that a dated item costs one look-up, not a scan
        self.dated: dict[tuple[str, str, dt.date], Rule | None] = {}
        self.spans: dict[tuple[str, str, dt.date], tuple[Rule, ...]] = {}  # rules_before, likewise

    def in_scope(self, number: int, product: str) -> bool:
        """Whether ``product`` is in the scope numbered ``number`` (see ``scoped``); memoised."""
        key = (number, product)
        hit = self.covers.get(key)
        if hit is None:
            if len(self.covers) > 100_000:
                self.covers.clear()
            hit = self.covers[key] = covers(self.scope_keys[number], product)
        return hit

    def rules_for(self, category: str, product: str) -> dict[str, Rule | bool]:
        """For a sample of ``product`` in ``category``: item code -> the rule that needs no date (one
        undated edition, and in scope for the product), or False for an item whose scope the product
        is outside of.  Items absent need the date (or are unknown).  Memoised per (category, product):
        the hot path then costs one look-up by item code."""
        key = (category, product)
        found = self.by_product.get(key)
        if found is None:
            if len(self.by_product) > 10_000:
                self.by_product.clear()
            found = {code: rule for (c, code), rule in self.timeless.items() if c == category}
            for (c, code), (number, rule) in self.scoped.items():
                if c != category:
                    continue
                if not self.in_scope(number, product):
                    found[code] = False
                elif rule is not None:
                    found[code] = rule
            self.by_product[key] = found
        return found

    def rules_before(self, category: str, code: str, day: dt.date) -> tuple[Rule, ...]:
        """The rules in force over the category's look-back up to ``day`` (a product sampled on
        ``day`` without a production date may have been made then), oldest first; memoised."""
        key = (category, code, day)
        found = self.spans.get(key)
        if found is None:
            if len(self.spans) > 100_000:
                self.spans.clear()
            item = self.items.get((category, code))
            found = self.spans[key] = () if item is None else item.rules_between(day - self.lookback[category], day)
        return found

    def rule_on(self, category: str, code: str, day: dt.date) -> Rule | None:
        """``CatalogueItem.rule_on`` through the ``dated`` memo (None also for an unknown item)."""
        key = (category, code, day)
        try:
            return self.dated[key]
        except KeyError:
            pass
        if len(self.dated) > 100_000:
            self.dated.clear()
        item = self.items.get((category, code))
        rule = self.dated[key] = None if item is None else item.rule_on(day)
        return rule

    @staticmethod
    def _undated(item: CatalogueItem) -> Rule | None:
        rule = item.rules[0]
        return rule if len(item.rules) == 1 and rule.applies_from is None and rule.applies_to is None else None


class Catalogue(_Model):
    """Every category's standards plus the units table, with lookups built once."""

    categories: dict[str, CategoryStandards]
    units: UnitTable
    digest: str = Field(default="", description="sha256 of the data files; record it next to derived state")

    _index: CatalogueIndex = PrivateAttr()

    @model_validator(mode="after")
    def _keys_match(self) -> "Catalogue":
        for key, standards in self.categories.items():
            if key != standards.category:
                raise ValueError(f"category key {key!r} holds standards for {standards.category!r}")
        return self

    def model_post_init(self, __context: Any) -> None:
        items: dict[tuple[str, str], CatalogueItem] = {}
        item_units: dict[tuple[str, str], Unit] = {}
        alternatives: dict[tuple[str, str], tuple[Unit, ...]] = {}
        members: dict[tuple[str, str], tuple[CatalogueItem, ...]] = {}
        for category, standards in self.categories.items():
            for item in standards.items:
                unit = self.units.by_name(item.unit)
                if unit is None:
                    raise ValueError(
                        f"{category}.{item.code}: unit {item.unit!r} is not a unit of {UNITS_FILE} "
                        "(use the canonical spelling, not an alias)"
                    )
                items[(category, item.code)] = item
                item_units[(category, item.code)] = unit
                others = []
                for name in item.alternative_units:
                    other = self.units.by_name(name)
                    if other is None:
                        raise ValueError(f"{category}.{item.code}: alternative unit {name!r} is not a unit of {UNITS_FILE} "
                                         "(use the canonical spelling, not an alias)")
                    if UnitTable.factor(other, unit) is not None:
                        raise ValueError(f"{category}.{item.code}: alternative unit {name!r} converts to {item.unit!r} already")
                    others.append(other)
                if others:
                    alternatives[(category, item.code)] = tuple(others)
            for group in standards.sum_of_ratios:
                members[(category, group.group)] = tuple(
                    item for item in standards.items if item.function_group == group.group
                )
        lookback = {category: dt.timedelta(days=standards.edition_lookback_days)
                    for category, standards in self.categories.items()}
        self._index = CatalogueIndex(items, item_units, members, self.units.__pydantic_private__["_lookup"], lookback,  # type: ignore[index]
                                     alternatives)

    @property
    def index(self) -> CatalogueIndex:
        return self.__pydantic_private__["_index"]  # type: ignore[index]

    def standards_for(self, category: str) -> CategoryStandards | None:
        return self.categories.get(category)

    def item(self, category: str, code: str) -> CatalogueItem | None:
        return self.index.items.get((category, code))

    def item_unit(self, category: str, code: str) -> Unit | None:
        return self.index.item_units.get((category, code))

    def accepted_units(self, category: str, code: str) -> tuple[Unit, ...]:
        """The units a result of the item is judged in: its own, then its alternative units (a unit
        converting to one of these is accepted too).  Empty for an unknown item."""
        unit = self.index.item_units.get((category, code))
        return () if unit is None else (unit, *self.index.alternative_units.get((category, code), ()))

    def group_members(self, category: str, group: str) -> tuple[CatalogueItem, ...]:
        return self.index.group_members.get((category, group), ())


# --------------------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a repeated mapping key instead of keeping the last one."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class CatalogueError(ValueError):
    """A data file is missing, unreadable or invalid; the message names the file."""


def _read(entry: Traversable) -> tuple[bytes, Any]:
    raw = entry.read_bytes()
    try:
        return raw, yaml.load(raw, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{entry.name}: {exc}") from exc


def _load(root: Traversable) -> Catalogue:
    entries = sorted((e for e in root.iterdir() if e.name.endswith(".yaml")), key=lambda e: e.name)
    units_entry = next((e for e in entries if e.name == UNITS_FILE), None)
    if units_entry is None:
        raise CatalogueError(f"{root}: no {UNITS_FILE}")
    digest = hashlib.sha256()
    categories: dict[str, Any] = {}
    units_doc: Any = None
    for entry in entries:
        raw, doc = _read(entry)
        digest.update(entry.name.encode() + b"\0" + raw + b"\0")
        if entry is units_entry:
            units_doc = doc
            continue
        if not isinstance(doc, dict) or "category" not in doc:
            raise CatalogueError(f"{entry.name}: expected a mapping with a 'category' key")
        try:
            standards = CategoryStandards.model_validate(doc)
        except ValueError as exc:
            raise CatalogueError(f"{entry.name}: {exc}") from exc
        if standards.category in categories:
            raise CatalogueError(f"{entry.name}: category {standards.category!r} is defined twice")
        categories[standards.category] = standards
    try:
        units = UnitTable.model_validate(units_doc)
    except ValueError as exc:
        raise CatalogueError(f"{UNITS_FILE}: {exc}") from exc
    try:
        return Catalogue(categories=categories, units=units, digest=digest.hexdigest())
    except ValueError as exc:
        raise CatalogueError(str(exc)) from exc


@functools.lru_cache(maxsize=1)
def _default_catalogue() -> Catalogue:
    return _load(resources.files("schemas").joinpath("standards"))


def load_catalogue(path: str | None = None) -> Catalogue:
    """Load and validate the catalogue in directory ``path`` (default: the packaged data, cached)."""
    if path is None:
        return _default_catalogue()
    root = Path(path)
    if not root.is_dir():
        raise CatalogueError(f"{path}: not a directory")
    return _load(root)
