"""JSON Schema for lab integrators: one file per event type plus the whole union."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from schemas.events import EVENT_TYPES, SCHEMA_VERSION, Event


def event_json_schema(ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
    schema = TypeAdapter(Event).json_schema(ref_template=ref_template, mode="validation")
    schema["title"] = "qrisk event"
    return schema


def export(directory: str | Path) -> list[Path]:
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
        path = out / f"{event_type}.schema.json"
        path.write_text(json.dumps(schema, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
