"""The standards catalogue: the data agrees with shared/domain.md and loads safely."""
from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

import schemas.standards as standards
from schemas.events import TestItem
from schemas.standards import Catalogue, CatalogueError, UnitTable, load_catalogue

DATA = Path(standards.__file__).parent / "standards"
SWITCH_2760 = dt.date(2025, 2, 8)


@pytest.fixture(scope="module")
def cat() -> Catalogue:
    return load_catalogue()


def all_items(cat: Catalogue):
    for category, block in cat.categories.items():
        for item in block.items:
            yield category, item


def test_loads_both_categories(cat: Catalogue) -> None:
    assert set(cat.categories) == {"packaged_water", "pastry"}
    assert len(cat.digest) == 64


def test_default_catalogue_is_cached() -> None:
    assert load_catalogue() is load_catalogue()


def test_explicit_path_loads_fresh_and_has_same_digest(cat: Catalogue) -> None:
    other = load_catalogue(str(DATA))
    assert other is not cat
    assert other.digest == cat.digest


def test_every_item_has_a_rule(cat: Catalogue) -> None:
    for _, item in all_items(cat):
        assert len(item.rules) >= 1, item.code


def test_codes_are_valid_test_item_codes(cat: Catalogue) -> None:
    # Validate through the event contract itself, so the two patterns cannot drift apart.
    for _, item in all_items(cat):
        TestItem.model_validate({"item_code": item.code, "values": [1], "unit": item.unit})


def test_editions_of_one_item_do_not_overlap(cat: Catalogue) -> None:
    lo, hi = dt.date.min, dt.date.max
    for category, item in all_items(cat):
        spans = sorted((r.applies_from or lo, r.applies_to or hi) for r in item.rules)
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert end <= start, f"{category}.{item.code}"


def test_every_day_has_a_rule_for_every_item(cat: Catalogue) -> None:
    # The catalogue has no gaps between editions: a gap would make judgements undetermined.
    for day in (dt.date(2010, 1, 1), SWITCH_2760 - dt.timedelta(days=1), SWITCH_2760, dt.date(2030, 1, 1)):
        for category, item in all_items(cat):
            assert item.rule_on(day) is not None, (category, item.code, day)


# The items domain.md marks "check", as (category, code, edition).
UNVERIFIED = {
    # (the sum of ratios under GB 2760-2024 is verified: domain.md states the rule for GB 2760 without an edition,
    # and its "limit" is the rule itself, Σ ≤ 1 — a supervisor could not enforce on a rule qrisk called unverified)
    ("packaged_water", "volatile_phenols", "2014"),
    # GB 19298-2014 表2's radioactivity, as recalled: not in domain.md
    ("packaged_water", "gross_alpha", "2014"),
    ("packaged_water", "gross_beta", "2014"),
    ("packaged_water", "coliforms", "2014"),
    ("pastry", "coliforms", "2015"),
    ("pastry", "moulds", "2015"),  # supported by a news site's report of a provincial notice only
    ("pastry", "propionic_acid", "2024"),  # "check for 2024": the 2014 value is verified
    ("pastry", "saccharin_sodium", "2014"),
    ("pastry", "saccharin_sodium", "2024"),
    ("pastry", "cyclamate", "2014"),
    ("pastry", "cyclamate", "2024"),
    ("pastry", "acesulfame_k", "2014"),
    ("pastry", "acesulfame_k", "2024"),
    ("pastry", "lead", "2022"),
    # GB 2762-2017, before 2023-06-30: not checked against that edition's text
    ("packaged_water", "lead", "2017"),
    ("packaged_water", "total_arsenic", "2017"),
    ("pastry", "lead", "2017"),
    # added from the brief, not checked against GB 29921-2021 / GB 2760 here
    ("pastry", "salmonella", "2021"),
    ("pastry", "staphylococcus_aureus", "2021"),
    ("pastry", "natamycin", "2014"),
    ("pastry", "natamycin", "2024"),
}


def test_check_items_are_unverified_and_only_those(cat: Catalogue) -> None:
    found = {(c, item.code, r.edition) for c, item in all_items(cat) for r in item.rules if not r.verified}
    assert found == UNVERIFIED


def test_pastry_moulds_limit_stays_unverified_and_keeps_its_source(cat: Catalogue) -> None:
    """domain.md marks 霉菌 "check": a secondary source does not lift the flag, but the note keeps it
    for the supervisor who checks GB 7099-2015."""
    (rule,) = cat.item("pastry", "moulds").rules
    assert (rule.standard, rule.max, rule.verified) == ("GB 7099-2015", 150, False)
    assert "domain.md: check" in rule.note and "陕西省市场监督管理局" in rule.note


def test_the_sum_of_ratios_clause_is_cited_once_and_alike() -> None:
    """GB 2760-2014 附录A A.2 is the clause; the catalogue cited it as A.1.2 in one place."""
    text = (Path(standards.__file__).parent / "standards" / "pastry.yaml").read_text(encoding="utf-8")
    assert "A.1.2" not in text
    assert text.count("GB 2760-2014 附录A A.2") == 2  # the reported sum's rule and the sum_of_ratios block


def test_unverified_rules_say_why(cat: Catalogue) -> None:
    for category, item in all_items(cat):
        for rule in item.rules:
            if not rule.verified:
                assert rule.note.strip(), f"{category}.{item.code} {rule.edition}"


# domain.md, table by table: (category, code, kind, limits, unit)
DOMAIN_LIMITS = [
    ("packaged_water", "free_chlorine", "maximum", {"max": 0.05}, "mg/L"),
    ("packaged_water", "carbon_tetrachloride", "maximum", {"max": 0.002}, "mg/L"),
    ("packaged_water", "chloroform", "maximum", {"max": 0.02}, "mg/L"),
    ("packaged_water", "oxygen_consumption", "maximum", {"max": 2.0}, "mg/L"),
    ("packaged_water", "bromate", "maximum", {"max": 0.01}, "mg/L"),
    ("packaged_water", "volatile_phenols", "maximum", {"max": 0.002}, "mg/L"),
    ("packaged_water", "cyanide", "maximum", {"max": 0.05}, "mg/L"),
    ("packaged_water", "anionic_detergents", "maximum", {"max": 0.3}, "mg/L"),
    ("packaged_water", "coliforms", "plan", {"n": 5, "c": 0, "m": 0, "M": None}, "CFU/100mL"),
    ("packaged_water", "pseudomonas_aeruginosa", "plan", {"n": 5, "c": 0, "m": 0, "M": None}, "CFU/250mL"),
    ("packaged_water", "lead", "maximum", {"max": 0.01}, "mg/L"),
    ("packaged_water", "total_arsenic", "maximum", {"max": 0.01}, "mg/L"),
    ("packaged_water", "conductivity", "maximum", {"max": 10}, "µS/cm"),
    ("packaged_water", "ph", "range", {"min": 5.0, "max": 7.0}, "pH"),
    ("pastry", "acid_value", "maximum", {"max": 5}, "mg/g"),
    ("pastry", "peroxide_value", "maximum", {"max": 0.25}, "g/100g"),
    ("pastry", "aerobic_plate_count", "plan", {"n": 5, "c": 2, "m": 10_000, "M": 100_000}, "CFU/g"),
    ("pastry", "coliforms", "plan", {"n": 5, "c": 2, "m": 10, "M": 100}, "CFU/g"),
    ("pastry", "moulds", "maximum", {"max": 150}, "CFU/g"),
    ("pastry", "sorbic_acid", "maximum", {"max": 1.0}, "g/kg"),
    ("pastry", "propionic_acid", "maximum", {"max": 2.5}, "g/kg"),
    ("pastry", "benzoic_acid", "not_permitted", {}, "g/kg"),
    ("pastry", "saccharin_sodium", "not_permitted", {}, "g/kg"),
    ("pastry", "cyclamate", "maximum", {"max": 1.6}, "g/kg"),
    ("pastry", "acesulfame_k", "maximum", {"max": 0.3}, "g/kg"),
    ("pastry", "aluminium", "maximum", {"max": 100}, "mg/kg"),
    ("pastry", "lead", "maximum", {"max": 0.5}, "mg/kg"),
    ("pastry", "salmonella", "plan", {"n": 5, "c": 0, "m": 0, "M": None}, "/25g"),
    ("pastry", "staphylococcus_aureus", "plan", {"n": 5, "c": 1, "m": 100, "M": 1000}, "CFU/g"),
    ("pastry", "natamycin", "maximum", {"max": 10}, "mg/kg"),
]


@pytest.mark.parametrize("category,code,kind,limits,unit", DOMAIN_LIMITS, ids=lambda v: v if isinstance(v, str) else None)
def test_limits_match_domain(cat: Catalogue, category: str, code: str, kind: str, limits: dict, unit: str) -> None:
    item = cat.item(category, code)
    assert item is not None
    assert item.unit == unit
    for rule in item.rules:  # every edition carries the same limit, unless the test says otherwise
        assert rule.kind == kind
        for name, value in limits.items():
            assert getattr(rule, name) == value, (code, rule.edition, name)


def test_dehydroacetic_acid_changes_edition_on_2025_02_08(cat: Catalogue) -> None:
    item = cat.item("pastry", "dehydroacetic_acid")
    before, after = item.rule_on(SWITCH_2760 - dt.timedelta(days=1)), item.rule_on(SWITCH_2760)
    assert (before.standard, before.kind, before.max) == ("GB 2760-2014", "maximum", 0.5)
    assert (after.standard, after.kind) == ("GB 2760-2024", "not_permitted")


@pytest.mark.parametrize("category,code", [("packaged_water", "lead"), ("packaged_water", "total_arsenic"), ("pastry", "lead")])
def test_gb_2762_changes_edition_on_2023_06_30(cat: Catalogue, category: str, code: str) -> None:
    """GB 2762-2022 took effect on 2023-06-30: a product made before is judged by GB 2762-2017
    (same limit, not checked against that text here, so unverified)."""
    item = cat.item(category, code)
    switch = dt.date(2023, 6, 30)
    before, after = item.rule_on(switch - dt.timedelta(days=1)), item.rule_on(switch)
    assert (before.standard, before.verified) == ("GB 2762-2017", False) and "not checked" in before.note
    assert after.standard == "GB 2762-2022"
    assert before.max == after.max


def test_water_does_not_judge_plate_count_or_moulds(cat: Catalogue) -> None:
    """domain.md: dropped from GB 19298-2014, do not judge water on them.  The catalogue knows the
    items (so a lab reporting them is not told "unknown item") and says the standard no longer limits them."""
    for code, name in (("aerobic_plate_count", "菌落总数"), ("moulds", "霉菌"), ("yeasts", "酵母")):
        item = cat.item("packaged_water", code)
        assert item is not None and item.name_zh == name and item.item_class == "indicator_microbe"
        assert [(r.standard, r.kind, r.verified) for r in item.rules] == [("GB 19298-2014", "no_longer_limited", True)]
        assert item.rules[0].limit_text == "不作判定（标准已不再规定）"
        assert "dropped" in item.rules[0].note
    # pastries still are judged on them
    assert {r.kind for r in cat.item("pastry", "moulds").rules} == {"maximum"}


def test_no_longer_limited_takes_no_limit(data_copy: Path) -> None:
    edit(data_copy / "packaged_water.yaml", "kind: no_longer_limited,", "kind: no_longer_limited, max: 100,")
    with pytest.raises(CatalogueError, match="takes no"):
        load_catalogue(str(data_copy))


def test_water_additives_are_not_permitted(cat: Catalogue) -> None:
    codes = {"benzoic_acid", "sorbic_acid", "dehydroacetic_acid", "saccharin_sodium", "cyclamate", "acesulfame_k"}
    for code in codes:
        item = cat.item("packaged_water", code)
        assert item.item_class == "additive_not_permitted"
        assert {r.kind for r in item.rules} == {"not_permitted"}


def test_pseudomonas_is_the_pathogen(cat: Catalogue) -> None:
    assert cat.item("packaged_water", "pseudomonas_aeruginosa").item_class == "pathogen"
    for category, code in [("packaged_water", "coliforms"), ("pastry", "aerobic_plate_count"), ("pastry", "moulds")]:
        assert cat.item(category, code).item_class == "indicator_microbe"


def test_sum_of_ratios_groups(cat: Catalogue) -> None:
    assert {g.group for g in cat.categories["pastry"].sum_of_ratios} == {"preservative"}
    preservatives = {i.code for i in cat.group_members("pastry", "preservative")}
    assert {"sorbic_acid", "propionic_acid", "dehydroacetic_acid", "benzoic_acid"} <= preservatives
    # sweeteners keep their function group but are no sum-of-ratios group (GB 2760: colourants,
    # preservatives and antioxidants only)
    assert {i.code for i in cat.categories["pastry"].items if i.function_group == "sweetener"} == {"saccharin_sodium", "cyclamate", "acesulfame_k"}
    assert cat.group_members("pastry", "sweetener") == ()
    # the check is named as SAMR names the failed item, the name of the sum a lab reports itself
    (group,) = cat.categories["pastry"].sum_of_ratios
    assert group.item_zh == cat.item("pastry", "preservative_ratio_sum").name_zh


def test_limit_text_keeps_the_data_spelling(cat: Catalogue) -> None:
    assert cat.item("packaged_water", "oxygen_consumption").rules[0].limit_text == "≤2.0"
    assert cat.item("packaged_water", "ph").rules[0].limit_text == "5.0–7.0"
    assert cat.item("packaged_water", "pseudomonas_aeruginosa").rules[0].limit_text == "n=5,c=0,m=0"
    assert cat.item("pastry", "aerobic_plate_count").rules[0].limit_text == "n=5,c=2,m=10000,M=100000"


# --------------------------------------------------------------------------- units


def test_item_units_are_canonical_units(cat: Catalogue) -> None:
    for category, item in all_items(cat):
        assert cat.units.by_name(item.unit) is not None, (category, item.code)


@pytest.mark.parametrize(
    "source,target,factor",
    [
        ("µg/L", "mg/L", Decimal("0.001")),
        ("ug/L", "mg/L", Decimal("0.001")),
        ("mg/L", "µg/L", Decimal("1000")),
        ("mg/kg", "g/kg", Decimal("0.001")),
        ("g/kg", "mg/kg", Decimal("1000")),
        ("mg/l", "mg/L", Decimal("1")),
        ("uS/cm", "µS/cm", Decimal("1")),
        ("mS/cm", "µS/cm", Decimal("1000")),
    ],
)
def test_exact_conversions(cat: Catalogue, source: str, target: str, factor: Decimal) -> None:
    u = cat.units
    assert UnitTable.factor(u.resolve(source), u.resolve(target)) == factor


@pytest.mark.parametrize(
    "source,target",
    [("CFU/100mL", "CFU/250mL"), ("CFU/g", "CFU/mL"), ("mg/kg", "mg/L"), ("MPN/100mL", "CFU/100mL"), ("mg/g", "g/kg")],
)
def test_no_conversion_between_dimensions(cat: Catalogue, source: str, target: str) -> None:
    u = cat.units
    assert UnitTable.factor(u.resolve(source), u.resolve(target)) is None


def test_unit_spelling_variants(cat: Catalogue) -> None:
    u = cat.units
    micro = u.resolve("µS/cm")
    assert u.resolve("μS/cm") is micro  # Greek mu vs micro sign
    assert u.resolve(" CFU/250 mL ") is u.resolve("CFU/250mL")
    assert u.resolve("mg／L") is u.resolve("mg/L")  # full-width slash
    # 无量纲 is a unit of its own (a reported ratio sum carries it), in pH's dimension: a pH printed as 无量纲 converts
    assert u.resolve("无量纲").dimension == u.resolve("pH").dimension and u.resolve("pH值") is u.resolve("pH")


@pytest.mark.parametrize("text", ["ppm", "MS/CM", "CFU/25g", "mg/100g", ""])
def test_unknown_units_are_not_guessed(cat: Catalogue, text: str) -> None:
    assert cat.units.resolve(text) is None


# --------------------------------------------------------------------------- bad data is refused


@pytest.fixture()
def data_copy(tmp_path: Path) -> Path:
    target = tmp_path / "standards"
    shutil.copytree(DATA, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_overlapping_editions_are_refused(data_copy: Path) -> None:
    edit(data_copy / "pastry.yaml",
         "applies_from: 2025-02-08, applies_to: null,\n         kind: not_permitted, verified: true,\n         note: \"no longer",
         "applies_from: 2025-01-01, applies_to: null,\n         kind: not_permitted, verified: true,\n         note: \"no longer")
    with pytest.raises(CatalogueError, match="overlap"):
        load_catalogue(str(data_copy))


def test_duplicate_yaml_keys_are_refused(data_copy: Path) -> None:
    edit(data_copy / "pastry.yaml", "kind: maximum, max: 5,", "kind: maximum, max: 5, max: 6,")
    with pytest.raises(CatalogueError, match="duplicate key"):
        load_catalogue(str(data_copy))


def test_duplicate_item_codes_are_refused(data_copy: Path) -> None:
    edit(data_copy / "pastry.yaml", "- code: peroxide_value", "- code: acid_value")
    with pytest.raises(CatalogueError, match="appears twice"):
        load_catalogue(str(data_copy))


def test_exponent_written_as_text_is_refused(data_copy: Path) -> None:
    edit(data_copy / "pastry.yaml", "m: 10000, M: 100000", "m: 1e4, M: 100000")
    with pytest.raises(CatalogueError):
        load_catalogue(str(data_copy))


def test_item_unit_must_be_a_canonical_unit(data_copy: Path) -> None:
    edit(data_copy / "pastry.yaml", "unit: mg/kg\n    # from", "unit: ppm\n    # from")
    with pytest.raises(CatalogueError, match="ppm"):
        load_catalogue(str(data_copy))


def test_rule_fields_must_fit_the_kind(data_copy: Path) -> None:
    edit(data_copy / "pastry.yaml", "kind: maximum, max: 5,", "kind: plan, max: 5,")
    with pytest.raises(CatalogueError):
        load_catalogue(str(data_copy))


def test_ambiguous_unit_alias_is_refused(data_copy: Path) -> None:
    edit(data_copy / "units.yaml", "aliases: [mg/Kg, mg/KG, 毫克/千克", "aliases: [mg/Kg, mg/KG, mg/L, 毫克/千克")
    with pytest.raises(CatalogueError, match="names both"):
        load_catalogue(str(data_copy))


def test_missing_units_file_is_refused(data_copy: Path) -> None:
    (data_copy / "units.yaml").unlink()
    with pytest.raises(CatalogueError, match="units.yaml"):
        load_catalogue(str(data_copy))


def test_edited_data_changes_the_digest(cat: Catalogue, data_copy: Path) -> None:
    edit(data_copy / "pastry.yaml", "kind: maximum, max: 5,", "kind: maximum, max: 6,")
    assert load_catalogue(str(data_copy)).digest != cat.digest


def test_purified_water_indices_are_scoped_to_purified_water(cat: Catalogue) -> None:
    """domain.md: conductivity and pH are GB 17323 indices of purified water; cyanide is for
    distilled purified water.  Other items apply to every packaged water but natural mineral water."""
    scoped = {item.code: item.scope for _, item in all_items(cat) if item.scope is not None and item.scope.products}
    assert set(scoped) == {"conductivity", "ph", "cyanide"}
    assert all(set(s.products) == {"纯净水", "纯水", "蒸馏水"} for s in scoped.values())
    ph = cat.item("packaged_water", "ph")
    assert ph.scope.covers("饮用纯净水") and ph.scope.covers("饮用蒸馏水") and ph.scope.covers("饮用纯水")
    assert not ph.scope.covers("饮用天然矿泉水") and not ph.scope.covers("饮用天然泉水")
    # a scoped item needs the product's name: it is never served from the date-free shortcut
    assert ("packaged_water", "ph") not in cat.index.timeless and ("packaged_water", "ph") in cat.index.scoped


def test_natural_mineral_water_is_excluded_from_every_gb_19298_item(cat: Catalogue) -> None:
    """GB 19298-2014 does not cover 饮用天然矿泉水 (GB 8537-2018, not catalogued); GB 2762 and GB 2760
    do, and GB 17323's indices are out of a mineral water's scope already."""
    water = cat.categories["packaged_water"].items
    excluded = {i.code for i in water if i.scope is not None and i.scope.excludes}
    assert excluded == {i.code for i in water if any(r.standard == "GB 19298-2014" for r in i.rules)}
    assert {"bromate", "free_chlorine", "coliforms", "pseudomonas_aeruginosa", "cyanide"} <= excluded
    for code in excluded:
        scope = cat.item("packaged_water", code).scope
        (mineral,) = scope.excludes
        assert (mineral.products, mineral.name_zh, mineral.standard) == (("矿泉水",), "饮用天然矿泉水", "GB 8537-2018")
        assert scope.excluded_by("饮用天然矿泉水") is mineral and not scope.covers("饮用天然矿泉水")
        assert scope.excluded_by("饮用矿物质水") is None
        assert ("packaged_water", code) in cat.index.scoped and ("packaged_water", code) not in cat.index.timeless
    bromate = cat.item("packaged_water", "bromate").scope
    assert bromate.covers("饮用纯净水") and bromate.covers("饮用天然泉水") and bromate.covers("饮用矿物质水")
    for code in ("lead", "total_arsenic", "sorbic_acid", "benzoic_acid"):
        assert cat.item("packaged_water", code).scope is None, code


def test_an_exclusion_names_the_standard_the_products_fall_under(data_copy: Path) -> None:
    edit(data_copy / "packaged_water.yaml", ", standard: GB 8537-2018}", "}")
    with pytest.raises(CatalogueError, match="standard"):
        load_catalogue(str(data_copy))


def test_a_scope_names_at_least_one_product(data_copy: Path) -> None:
    edit(data_copy / "packaged_water.yaml", "{products: [纯净水, 纯水, 蒸馏水], name_zh: 饮用纯净水,", "{products: [], name_zh: 饮用纯净水,")
    with pytest.raises(CatalogueError, match="products"):
        load_catalogue(str(data_copy))


def test_the_edition_look_back_defaults_to_a_year(cat: Catalogue) -> None:
    assert {c: b.edition_lookback_days for c, b in cat.categories.items()} == {"packaged_water": 365, "pastry": 365}
    assert cat.index.lookback["pastry"] == dt.timedelta(days=365)
    item = cat.item("pastry", "dehydroacetic_acid")
    assert [r.edition for r in item.rules_between(dt.date(2024, 3, 1), dt.date(2025, 3, 1))] == ["2014", "2024"]
    assert [r.edition for r in item.rules_between(SWITCH_2760, dt.date(2026, 1, 1))] == ["2024"]
    assert [r.edition for r in cat.index.rules_before("pastry", "dehydroacetic_acid", SWITCH_2760)] == ["2014", "2024"]


def test_every_mapped_item_name_names_a_catalogued_item(cat: Catalogue) -> None:
    """ingest/mappings/items_zh.csv turns a SAMR announcement's 不合格项目 into an item code:
    a code the catalogue lacks would import as an item nobody can judge."""
    import csv

    codes = {item.code for _, item in all_items(cat)}
    path = Path(__file__).resolve().parent.parent / "ingest" / "mappings" / "items_zh.csv"
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    names = [r[0] for r in rows]
    assert len(names) == len(set(names)), "a name mapped twice"
    # (a sum of ratios the lab reports on its own maps to a code of its own, which the catalogue
    # does not judge: qrisk computes the sum from the members)
    assert {r[1] for r in rows if not r[1].endswith("_ratio_sum")} <= codes
    for name in ("沙门氏菌", "金黄色葡萄球菌", "纳他霉素", "苯甲酸", "甜蜜素", "安赛蜜（乙酰磺胺酸钾）"):
        assert name in names
    # every catalogued item can be named by its own Chinese name (but one no standard limits any more:
    # it is never a 不合格项目 of an announcement)
    judged = {item.name_zh for _, item in all_items(cat) if any(r.kind != "no_longer_limited" for r in item.rules)}
    assert judged <= set(names)


def test_not_permitted_is_for_additives_only(data_copy: Path) -> None:
    # the first such rule is carbon tetrachloride's, a chemical
    edit(data_copy / "packaged_water.yaml", "kind: maximum, max: 0.002, verified: true, note: \"\"}",
         "kind: not_permitted, verified: true, note: \"\"}")
    with pytest.raises(CatalogueError, match="not_permitted is for additives"):
        load_catalogue(str(data_copy))


def test_water_coliforms_accept_the_units_gb_19298_reports_them_in(cat: Catalogue) -> None:
    item = cat.item("packaged_water", "coliforms")
    assert item.alternative_units == ("MPN/100mL",)
    assert [u.unit for u in cat.accepted_units("packaged_water", "coliforms")] == ["CFU/100mL", "MPN/100mL"]
    assert "表3" in item.rules[0].note and "membrane-filter" in item.rules[0].note
    assert cat.accepted_units("pastry", "coliforms") == (cat.units.by_name("CFU/g"),)
    assert cat.accepted_units("packaged_water", "no_such_item") == ()
    # only that item: no other takes a unit besides its own
    assert {(c, i.code) for c, i in all_items(cat) if i.alternative_units} == {("packaged_water", "coliforms")}


@pytest.mark.parametrize("units,match", [("[mpn/100mL]", "canonical"), ("[CFU/100mL]", "converts"), ("[furlong]", "not a unit")])
def test_an_alternative_unit_must_be_a_distinct_canonical_unit(data_copy: Path, units: str, match: str) -> None:
    edit(data_copy / "packaged_water.yaml", "alternative_units: [MPN/100mL]", f"alternative_units: {units}")
    with pytest.raises(CatalogueError, match=match):
        load_catalogue(str(data_copy))


def test_the_exported_catalogue_tells_a_lab_what_is_not_judged(cat: Catalogue) -> None:
    import json

    from schemas.export import catalogue_document

    doc = json.loads(json.dumps(catalogue_document(cat), ensure_ascii=False))
    water = {i["item_code"]: i for i in doc["categories"]["packaged_water"]["items"]}
    assert water["bromate"]["scope"]["excludes"][0]["standard"] == "GB 8537-2018"
    assert water["bromate"]["scope"]["products"] == []
    assert water["aerobic_plate_count"]["rules"][0]["kind"] == "no_longer_limited"
    assert water["aerobic_plate_count"]["rules"][0]["limit"] == "不作判定（标准已不再规定）"


def test_the_rules_a_product_needs_no_date_for(cat: Catalogue) -> None:
    """The judgement's shortcut: per (category, product), each item's date-free rule, or False when
    the product is outside the item's scope; items with several editions are left to the date."""
    pure = cat.index.rules_for("packaged_water", "饮用纯净水")
    mineral = cat.index.rules_for("packaged_water", "饮用天然矿泉水")
    bromate = cat.item("packaged_water", "bromate").rules[0]
    assert pure["bromate"] is bromate and pure["ph"] is cat.item("packaged_water", "ph").rules[0]
    assert mineral["bromate"] is False and mineral["ph"] is False and mineral["cyanide"] is False
    assert "lead" not in pure and "lead" not in mineral  # GB 2762-2017 / -2022: by date
    assert cat.index.rules_for("packaged_water", "饮用纯净水") is pure
    assert "sorbic_acid" not in cat.index.rules_for("pastry", "蛋糕") and "acid_value" in cat.index.rules_for("pastry", "蛋糕")


def test_units_written_in_chinese_are_read(cat: Catalogue) -> None:
    # a Chinese LIMS prints 毫克/升, not mg/L: the same unit, never a guess at another
    for text, unit in (("毫克/升", "mg/L"), ("微克/升", "µg/L"), ("克/千克", "g/kg"), ("毫克/千克", "mg/kg"),
                       ("CFU/毫升", "CFU/mL"), ("微西门子/厘米", "µS/cm"), ("毫克 / 升", "mg/L")):
        resolved = cat.units.resolve(text)
        assert resolved is not None and resolved.unit == unit, text


@pytest.mark.parametrize("text, unit", [
    ("mpn/100ml", "MPN/100mL"), ("Mpn/100Ml", "MPN/100mL"), ("mpn/100 ML", "MPN/100mL"), ("mpn/G", "MPN/g"),
    ("cfu/100ml", "CFU/100mL"), ("Cfu/250Ml", "CFU/250mL"), ("cfu/G", "CFU/g"), ("/25G", "/25g"),
])
def test_a_counting_unit_resolves_in_any_case(text, unit):
    """A standards expert found "mpn/100ml" unknown while "cfu/100ml" was known: counts mean the same in any case."""
    from schemas.standards import load_catalogue

    resolved = load_catalogue().units.resolve(text)
    assert resolved is not None and resolved.unit == unit


def test_other_units_keep_their_case():
    from schemas.standards import load_catalogue

    units = load_catalogue().units
    assert units.resolve("Mg/kg") is None  # Mg is a megagram, never read as mg
