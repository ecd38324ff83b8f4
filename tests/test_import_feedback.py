"""What a lab integrator or an operator importing history learns about what they sent: units in
capitals, whitespace around enumerated values, results below the detection limit, warnings
reported by `qrisk import` as the HTTP answer reports them, and importer errors in Chinese
and English with the field or column they are about."""
from __future__ import annotations

import pytest

from schemas.standards import load_catalogue

# Units whose capitals name another unit as well: "MS/CM" is millisiemens or megasiemens
# per centimetre, a thousandfold apart; the catalogue leaves it unknown rather than guess.
CASE_MEANINGFUL = {"mS/cm"}


def test_every_unit_printed_in_capitals_resolves_to_itself_unless_case_names_another():
    units = load_catalogue().units
    for unit in units.units:
        spellings = [unit.unit, *unit.aliases]
        for text in spellings:
            capitals = text.upper()
            if unit.unit in CASE_MEANINGFUL:
                assert units.resolve(capitals) is None or capitals == text, (text, capitals)
                continue
            found = units.resolve(capitals)
            assert found is unit, f"{text!r} in capitals, {capitals!r}, resolves to {found and found.unit!r}, not {unit.unit!r}"
            if "µ" in text or "μ" in text:  # a lab system without the micro sign prints u, in capitals U
                ascii_form = capitals.replace("Μ", "U")
                assert units.resolve(ascii_form) is unit, (text, ascii_form)


@pytest.mark.parametrize("text", ["MS/CM", "ppm", "PPM", "mg/dL"])
def test_capitals_that_could_mean_another_unit_are_not_guessed(text):
    assert load_catalogue().units.resolve(text) is None
