"""For lab integrators: JSON Schema, one file per event type plus the whole union, and the
standards catalogue (item codes, units, limits) their results are judged with."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from schemas.events import EVENT_TYPES, SCHEMA_VERSION, Event
from schemas.standards import Catalogue, load_catalogue

EXAMPLES = Path(__file__).resolve().parent / "examples"


def event_json_schema(ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
    schema = TypeAdapter(Event).json_schema(ref_template=ref_template, mode="validation")
    schema["title"] = "qrisk event"
    schema["description"] = "Any qrisk event: an envelope whose event_type selects the event's model (one file per type)."
    return schema


def export(directory: str | Path, catalogue: Catalogue | None = None) -> list[Path]:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    whole = event_json_schema()
    whole["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    whole["$id"] = f"qrisk/event/v{SCHEMA_VERSION}"
    path = out / "event.schema.json"
    path.write_text(json.dumps(whole, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    written.append(path)
    for event_type, model in sorted(EVENT_TYPES.items()):
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"qrisk/{event_type}/v{SCHEMA_VERSION}"
        example = EXAMPLES / f"{event_type}.json"
        if example.exists():  # the golden payload the contract tests validate: what a valid event looks like
            schema["examples"] = [json.loads(example.read_text(encoding="utf-8"))]
        path = out / f"{event_type}.schema.json"
        path.write_text(json.dumps(schema, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    # the sequences a lab system has to get right beyond one valid event (a re-test, a correction, a CSV
    # import), each a body POST /v1/events or qrisk import takes as it is (README, "Scenarios")
    scenarios = out / "examples"
    scenarios.mkdir(exist_ok=True)
    for example in sorted((EXAMPLES / "scenarios").iterdir()):
        if example.suffix in (".json", ".csv"):
            path = scenarios / example.name
            path.write_bytes(example.read_bytes())
            written.append(path)
    path = out / "catalogue.json"
    path.write_text(json.dumps(catalogue_document(catalogue or load_catalogue()), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    written.append(path)
    return written


def catalogue_document(catalogue: Catalogue) -> dict[str, Any]:
    """Item codes, units and limits per category, as a lab system maps its own codes to them."""
    return {
        "digest": catalogue.digest,
        "categories": {
            name: {
                "name_zh": block.name_zh,
                "edition_lookback_days": block.edition_lookback_days,
                "items": [
                    {
                        "item_code": item.code, "name_zh": item.name_zh, "name_en": item.name_en, "item_class": item.item_class,
                        "unit": item.unit,
                        # other units the standard itself reports the item in (water coliforms: MPN/100mL beside CFU/100mL)
                        "alternative_units": list(item.alternative_units),
                        # products the limits apply to (name fragments of 食品名称); null = every product
                        "scope": None if item.scope is None else item.scope.model_dump(mode="json"),
                        "rules": [
                            {"standard": r.standard, "edition": r.edition, "kind": r.kind, "limit": r.limit_text,
                             **r.model_dump(mode="json", include={"max", "min", "n", "c", "m", "M"}, exclude_none=True),
                             **({"max_exclusive": True} if r.max_exclusive else {}),
                             "applies_from": r.applies_from.isoformat() if r.applies_from else None,
                             "applies_to": r.applies_to.isoformat() if r.applies_to else None, "verified": r.verified,
                             # what a verdict under the rule leaves to confirm, as its message says
                             **({"caveat_zh": r.caveat_zh, "caveat_en": r.caveat_en} if r.caveat_zh else {})}
                            for r in item.rules
                        ],
                    }
                    for item in block.items
                ],
            }
            for name, block in sorted(catalogue.categories.items())
        },
        "units": [{"unit": u.unit, "aliases": list(u.aliases), "dimension": u.dimension} for u in catalogue.units.units],
    }
