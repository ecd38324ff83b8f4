"""Read events of any supported schema version as the current version.

Version 1 (the pilot lab feed) differed in two ways:
- ``source`` was a string ``"kind:id"`` (e.g. ``"lab:CMA-0451"``);
- a test item carried one ``value`` instead of the list ``values``.
Upcasters are pure dict -> dict steps, one per version, applied in order, so the
log keeps the bytes the producer sent and every reader sees the current shape.
"""
from __future__ import annotations

from typing import Any, Callable

import json

from pydantic import ValidationError

from schemas.events import SCHEMA_VERSION, event_adapter, Envelope


class UnsupportedVersion(ValueError):
    pass


class BadVersion1Source(ValueError):
    """A version-1 ``source`` string that is no ``kind:id``: which part is the kind only the sender knows."""

    def __init__(self, source: str):
        shown = repr(source) if len(repr(source)) <= 40 else repr(source)[:40] + "…"
        super().__init__(f"a version-1 source is \"kind:id\", such as \"lab:CMA-330100-0451\" (kind: lab, complaint_channel, "
                         f"inspector, bureau, importer, system), got {shown} without its kind")
        self.zh = (f"版本 1 的 source 应为“类型:编号”，如 \"lab:CMA-330100-0451\"（类型：lab、complaint_channel、inspector、"
                   f"bureau、importer、system），收到 {shown}，缺少类型")


def _v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    source = doc.get("source")
    if isinstance(source, str):
        if ":" not in source:
            raise BadVersion1Source(source)
        kind, _, ident = source.partition(":")
        doc["source"] = {"kind": kind, "id": ident}
    payload = doc.get("payload")
    if doc.get("event_type") == "sampling.result" and isinstance(payload, dict):
        items = payload.get("items")
        if isinstance(items, list):
            new_items = []
            for item in items:
                if isinstance(item, dict) and "value" in item and "values" not in item:
                    item = dict(item)
                    item["values"] = [item.pop("value")]
                new_items.append(item)
            doc["payload"] = {**payload, "items": new_items}
    doc["schema_version"] = 2
    return doc


UPCASTERS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


def upcast(doc: Any) -> Any:
    """Bring one event document to the current version; leaves non-dicts to the validator."""
    if not isinstance(doc, dict):
        return doc
    version = doc.get("schema_version", SCHEMA_VERSION)
    if type(version) is float and version.is_integer():
        # 2.0 is the number 2 in JSON (and to the exported schema's const); the log keeps the bytes as sent
        version = int(version)
        doc = {**doc, "schema_version": version}
    if not isinstance(version, int) or isinstance(version, bool):
        return doc  # the validator names the field
    if version > SCHEMA_VERSION or (version < SCHEMA_VERSION and version not in UPCASTERS):
        raise UnsupportedVersion(f"schema_version {version} is not supported (current {SCHEMA_VERSION})")
    while version < SCHEMA_VERSION:
        doc = UPCASTERS[version](doc)
        version = doc["schema_version"]
    return doc


def parse_event(doc: Any, context: dict[str, Any] | None = None) -> Envelope:
    """Validate one decoded JSON document (any supported version); ``context=DOOR`` at a way in."""
    return event_adapter.validate_python(upcast(doc), context=context)


def load_json(raw: bytes | str) -> Any:
    """json.loads, minus the NaN/Infinity tokens Python accepts but JSON does not have."""
    return json.loads(raw, parse_constant=_reject_constant)


class DuplicateKeys(ValueError):
    """A document in which some object gives a key twice.  ``doc`` is the document as the json
    module reads it (the last copy of each key kept); ``paths`` the keys given twice, each as the
    path of keys and list indices that leads to it."""

    def __init__(self, doc: Any, paths: list[tuple[str | int, ...]]):
        super().__init__("key given twice in one object")
        self.doc, self.paths = doc, paths


def load_json_once(raw: bytes | str) -> Any:
    """``load_json`` for input arriving: raises ``DuplicateKeys`` when an object gives a key twice.

    The json module keeps the last copy, so {"values": [0.5], "values": [0.01]} would be judged by
    0.01 while the lab's report may print 0.5: which copy is meant only the sender knows.  Not for
    re-reading a log, which may hold such events accepted before this check."""
    twice: dict[int, list[str]] = {}

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(items)
        if len(obj) != len(items):
            seen: set[str] = set()
            twice[id(obj)] = list(dict.fromkeys(k for k, _ in items if k in seen or seen.add(k)))
        return obj

    doc = json.loads(raw, parse_constant=_reject_constant, object_pairs_hook=pairs)
    if twice:
        paths: list[tuple[str | int, ...]] = []
        _find_twice(doc, (), twice, paths)
        raise DuplicateKeys(doc, paths)
    return doc


def _find_twice(node: Any, at: tuple[str | int, ...], twice: dict[int, list[str]], out: list[tuple[str | int, ...]]) -> None:
    # (a RecursionError here is json.loads' own for a document nested too deeply: the caller's to word)
    if isinstance(node, dict):
        out.extend(at + (key,) for key in twice.get(id(node), ()))
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                _find_twice(value, at + (key,), twice, out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, (dict, list)):
                _find_twice(value, at + (i,), twice, out)


def parse_event_json(raw: bytes | str) -> Envelope:
    return parse_event(load_json(raw))


def _reject_constant(name: str) -> Any:
    # json.loads accepts NaN/Infinity by default; they are not JSON and never a
    # valid measurement.
    raise ValueError(f"{name} is not valid JSON")


__all__ = ["BadVersion1Source", "upcast", "parse_event", "parse_event_json", "load_json", "load_json_once", "DuplicateKeys", "UnsupportedVersion", "ValidationError"]
