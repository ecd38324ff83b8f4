"""Foreign CSV files → qrisk events, by a column mapping written in YAML.

A bureau has years of history in other systems (inspection records, sampling
announcements, the complaint hotline).  A mapping file says which event type a row
becomes, where each field comes from, how values are transformed, and how the
event id is derived — deterministically (uuid5 of a key), so importing the same
file twice adds nothing the second time.

Example (see ``ingest/mappings/`` for complete ones)::

    name: county-inspections            # also the id namespace: keep it once you have imported
    event_type: inspection.completed
    source: {kind: importer, id: legacy-inspection-system, name: 原监督检查系统}
    timezone: "+08:00"
    event_id: {key: [检查编号]}
    fields:
      enterprise_id: {column: 企业编号}
      occurred_at: {column: 检查日期, type: datetime, format: ["%Y-%m-%d", "%Y/%m/%d"], time: "10:00"}
      payload.inspection_id: {column: 检查编号}
      payload.result: {column: 检查结论, map: {合格: 符合, 基本合格: 基本符合, 不合格: 不符合}}
      payload.findings: {column: 发现问题, type: findings, required: false, default: []}

A field takes its value from ``column`` (a name, or a list: the first non-empty cell),
``const`` or ``template`` (``"{抽样编号}-{序号}"``; a list: the first whose columns are all
filled); then ``map`` / ``map_file`` (exact
text → value; ``unmapped: reject | keep``), then ``type``: ``str``, ``int``, ``float``,
``number``, ``bool`` (是/否, 属实/不属实, true/false, 1/0, …), ``date`` and ``datetime``
(``format``: strptime formats, tried in order; a date-only format takes ``time``; the
mapping's ``timezone`` unless the text has one), ``values`` ("45;59;8;61;10 CFU/250mL" →
[45, 59, 8, 61, 10]; 未检出/ND → "ND"), ``unit_suffix`` (the unit after such values),
``findings`` ("3.4 原料未离地存放（一般）；6.2 无称量记录（严重）" → findings with code,
description, severity), ``penalties`` ("警告；没收违法所得3,780元；罚款5万元" → penalties with kind,
amount in yuan and the text as note; 吊销 → licence revoked, 停产停业 → suspension), ``list`` (split on ``split``).  An empty cell (or values that name no
unit, for ``unit_suffix``) takes ``otherwise`` (another field spec), else ``default``; without
either a ``required`` field rejects the row.  ``blank`` (of the mapping, or of a field, which then replaces
it) lists cells that say there is nothing (an announcement's ``["/", "-", "—", "无", "不详"]``): read as empty cells, a
column list then moving on to its next column.  ``on_unreadable: absent``: a cell that does not convert leaves the
field absent, as an empty one, instead of refusing the row (生产日期/批号 holds a date or a batch number).  A file must have every column a field names (one of a list), unless the
field says ``column_optional: true`` (with ``required: false``: a column older exports lack, e.g. 12315's 诉求类型).  ``fallback_note`` is added to payload.remarks when
the value came from a column after the first of ``column`` (a stand-in the record must admit).

Announcements print the failed item as one cell, 不合格项目‖检验结果‖标准值: the mapping's
``split: {不合格项目‖检验结果‖标准值: [不合格项目, 检验结果, 标准值]}`` reads such a column (its
header and cells spelt with ‖, ∥, || or ｜｜) as the columns it stands for.

A row may give further events: ``also:`` lists them, each with its ``event_type``, ``event_id``, ``fields`` and, optionally,
``when`` and ``source`` — a 12315 export's concluded row is the complaint and its conclusion (``complaint.received``, then
``complaint.resolved``), and a row with its 受理时间 also the acceptance (``complaint.accepted``).  ``when`` is a condition on
one cell, or a list of them that must all hold: ``{column: 核查结果, in: [属实, 不属实]}`` (the cell is one of these),
``{column: 诉求类型, not_in: [举报]}`` (it is none of these, a blank cell included), ``{column: 受理时间, present: true}``
(it is filled; ``present: false``: blank); ``column`` a list reads the first non-blank cell of them; cells are compared
spaces aside, after NFKC.  The file must have the column (one of a list) unless the condition says ``column_optional:
true``, when a file without it reads as blank cells.  An ``also`` event's id is derived from its own event type and key,
so it never collides with the row's first event.

Sampling announcements list one row per failed item: ``group_by: [抽样编号]`` merges the
rows of one sample into one event, ``items:`` maps each row to a test item.  Rows of a
group must agree on every other field.

A row (or group) that does not map — or that the file spoils: cells past the header (an unquoted comma), bytes not in
the mapping's ``encoding`` — is yielded as a ``MappingError`` with the reason (in Chinese
and English, naming the field and the column) and its raw bytes, for dead letters.  Cells read as
numbers, dates, yes/no, result values and units are NFKC-normalised first: a report typed with
full-width characters (２．６ mg/L) reads as it looks.  Pure apart from reading the files it is given.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import io
import re
import string
import unicodedata
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterator, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ingest.files import CsvLines
from schemas.events import EVENT_TYPES, SCHEMA_VERSION

IMPORT_NAMESPACE = uuid.UUID("8a1d4b52-6c0e-5f3a-b7e9-3d2c1f0a9e84")
"""uuid5 namespace of imported event ids (with the mapping's namespace and the key inside the name)."""

KINDS = {"inspections": "inspection.completed", "sampling": "sampling.result", "complaints": "complaint.received",
         "enforcement": "enforcement.decided", "interviews": "interview.held"}
"""``qrisk import KIND FILE --mapping MAP``: the event type each kind expects."""

FieldType = Literal["str", "int", "float", "number", "bool", "date", "datetime", "values", "unit_suffix", "detection_limit", "findings",
                    "penalties", "list"]
Scalar = Union[str, int, float, bool, None]

_TRUE = {"是", "属实", "true", "True", "TRUE", "yes", "y", "Y", "1", "已核实", "核实"}
_FALSE = {"否", "不属实", "false", "False", "FALSE", "no", "n", "N", "0", "未核实", "不实"}
_ND = {"ND", "nd", "未检出", "<LOD", "N.D.", "n.d."}
_SEVERITY = {"轻微": "minor", "一般": "minor", "minor": "minor", "主要": "major", "较重": "major", "major": "major",
             "严重": "critical", "critical": "critical", "关键": "critical"}
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_FINDING = re.compile(r"^\s*(?P<code>[0-9A-Za-z][0-9A-Za-z.\-]*)\s*(?P<text>.*?)\s*(?:[（(](?P<sev>[^()（）]+)[)）])?\s*$")


class MappingError(ValueError):
    """A row that does not map: the reason names the column and the value.

    ``en``, ``zh``: the reason in English and in Chinese; ``str()`` gives both, Chinese first, as
    qrisk's command-line messages do.  ``field``: the mapping's target (``payload.result``,
    ``items.unit``) and ``column``: the file's column, when the reason is about one."""

    def __init__(self, en: str, zh: str | None = None, field: str | None = None, column: str | None = None, type: str = "mapping"):
        self.en, self.zh = en, zh if zh is not None else en
        self.field, self.column, self.type = field, column, type
        super().__init__(en if self.zh == en else f"{self.zh} / {en}")

    def error(self) -> dict[str, Any]:
        """As a dead letter's (and an HTTP 422's) errors list the reasons."""
        out: dict[str, Any] = {"field": self.field or "", "type": self.type, "reason": self.en, "reason_zh": self.zh}
        if self.column is not None:
            out["column"] = self.column
        return out


@dataclass(frozen=True)
class _Where:
    """The field, column and cell a reason is about."""

    target: str
    column: str | None = None
    value: str | None = None

    @property
    def en(self) -> str:
        return f"{self.target} (column {self.column}, value '{self.value}')" if self.column is not None else self.target

    @property
    def zh(self) -> str:
        return f"{self.target}（列“{self.column}”，值“{self.value}”）" if self.column is not None else self.target

    def error(self, en: str, zh: str, absent: bool = False) -> MappingError:
        kind = _Absent if absent else MappingError
        return kind(f"{self.en}: {en}", f"{self.zh}：{zh}", self.target, self.column)


def _where(where: "str | _Where") -> _Where:
    return where if isinstance(where, _Where) else _Where(where)


def _nfkc(text: str) -> str:
    # full-width digits and points (２．６), ｍｇ／Ｌ, ＮＤ: what a report typed in a Chinese input method
    # holds.  \d matches ２ but not ．, so without this "２．６ mg/L" read as 2 in the unit "．６ mg/L".
    # Units stay resolvable: the catalogue matches a unit after NFKC too (µ and μ alike).
    return unicodedata.normalize("NFKC", text)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Strict):
    column: str | list[str] | None = None
    const: Any = None
    template: str | list[str] | None = Field(default=None, description="a list: the first whose columns are all filled")
    type: FieldType = "str"
    format: str | list[str] | None = Field(default=None, description="strptime formats for date / datetime")
    time: str = Field(default="00:00", pattern=r"^\d{1,2}:\d{2}(:\d{2})?$", description="time of day when the format has none")
    map: dict[str, Any] | None = None
    map_file: str | None = Field(default=None, description="CSV (from,to) beside the mapping file")
    unmapped: Literal["reject", "keep"] = "reject"
    default: Any = None
    required: bool = True
    column_optional: bool = Field(default=False, description="the file may lack the column altogether (an older export): the field is "
                                                             "then absent, as for an empty cell; only with required false")
    split: str = Field(default=r"[;；,，、/\s]+", description="regex between the parts of values / list")
    severity: Literal["minor", "major", "critical"] = Field(default="minor", description="findings: when the text names none")
    otherwise: "FieldSpec | None" = Field(default=None, description="when the cell is empty or a unit_suffix finds no unit: this field instead")
    fallback_note: str | None = Field(default=None, max_length=200,
                                      description="added to payload.remarks when the value came from a column after the first of column")
    blank: list[str] | None = Field(default=None, description="cells that say 'not given' (/, —, 无): read as empty; default: the mapping's blank")
    on_unreadable: Literal["reject", "absent"] = Field(
        default="reject", description="absent: a cell that does not convert leaves the field absent (as an empty cell would) instead of "
                                      "refusing the row; for a column that holds either this value or something else (生产日期/批号)")

    @model_validator(mode="after")
    def _one_source(self) -> "FieldSpec":
        given = [k for k in ("column", "const", "template") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of column, const, template (got {', '.join(given) or 'none'})")
        if self.column_optional and self.required:
            raise ValueError("column_optional needs required: false (a field the row cannot lack needs its column)")
        return self

    @property
    def columns(self) -> list[str]:
        if self.column is not None:
            return [self.column] if isinstance(self.column, str) else list(self.column)
        return list(dict.fromkeys(c for t in self.templates for c in _template_columns(t)))

    @property
    def templates(self) -> list[str]:
        return [] if self.template is None else [self.template] if isinstance(self.template, str) else list(self.template)


def _template_columns(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


FieldSpec.model_rebuild()


class EventIdSpec(_Strict):
    key: list[str] = Field(min_length=1, description="columns whose values identify the record in the foreign system")
    namespace: str | None = Field(default=None, description="default: the mapping's name")


MappedType = Literal["inspection.completed", "sampling.result", "sampling.retracted", "complaint.received", "complaint.resolved",
                     "complaint.accepted", "complaint.withdrawn", "fluctuation.rebaselined",
                     "rectification.ordered", "rectification.completed", "rectification.verified",
                     "enterprise.registered", "enforcement.decided", "interview.held"]


class WhenSpec(_Strict):
    """A condition on a row: its cell in ``column`` (a list: the first non-blank of them), spaces aside and NFKC, is one of
    ``in``, is none of ``not_in``, or is filled (``present: true``) or blank (``present: false``) — exactly one of the three.
    ``column_optional: true``: the file may lack the column (an older export), read then as a blank cell."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    column: str | list[str] = Field(description="a list: the first non-blank cell of these columns")
    values: list[str] | None = Field(default=None, alias="in", min_length=1)
    not_in: list[str] | None = Field(default=None, min_length=1)
    present: bool | None = Field(default=None, description="true: the cell is filled; false: blank (or, column_optional, no column)")
    column_optional: bool = False

    @model_validator(mode="after")
    def _one_test(self) -> "WhenSpec":
        given = [k for k, v in (("in", self.values), ("not_in", self.not_in), ("present", self.present)) if v is not None]
        if len(given) != 1:
            raise ValueError(f"a when condition gives exactly one of in, not_in, present (got {', '.join(given) or 'none'})")
        if not self.columns or any(not c.strip() for c in self.columns):
            raise ValueError("a when condition names its column (a non-empty name, or a list of them)")
        return self

    @property
    def columns(self) -> list[str]:
        return [self.column] if isinstance(self.column, str) else list(self.column)

    def holds(self, row: dict[str, str], blank: frozenset[str] = frozenset()) -> bool:
        cell = next((row[c] for c in self.columns if not _empty(row.get(c), blank)), "")
        cell = "" if _empty(cell, blank) else _nfkc(cell).strip()
        if self.present is not None:
            return bool(cell) == self.present
        if self.values is not None:
            return cell in {_nfkc(v).strip() for v in self.values}
        return cell not in {_nfkc(v).strip() for v in self.not_in or []}


class AlsoSpec(_Strict):
    """A second event from the same row (a 12315 export's row is the complaint and, once concluded, its conclusion:
    ``complaint.received`` and ``complaint.resolved``), when ``when`` holds; ``source`` is the mapping's unless given."""

    event_type: MappedType
    when: list[WhenSpec] | None = Field(default=None, min_length=1, description="one condition, or a list: all must hold")
    source: dict[str, str] | None = None
    event_id: EventIdSpec
    fields: dict[str, FieldSpec]

    @field_validator("when", mode="before")
    @classmethod
    def _one_or_all(cls, value: Any) -> Any:
        # a single condition reads as a list of one: the 12315 mapping's `when: {column: 核查结果, in: [...]}` stays as written
        if value is None or isinstance(value, list):
            return value
        if isinstance(value, dict):
            return [value]
        raise ValueError(f"when is a condition {{column: …, in | not_in | present: …}} or a list of them (all must hold), not {value!r}")

    def given(self, row: dict[str, str], blank: frozenset[str] = frozenset()) -> bool:
        """Whether the row gives this event: every ``when`` condition holds (``blank``: cells that read as empty)."""
        return all(w.holds(row, blank) for w in self.when or [])

    @model_validator(mode="after")
    def _targets(self) -> "AlsoSpec":
        _check_targets(self.fields)
        return self


def _check_targets(fields: dict[str, FieldSpec]) -> None:
    for target in ("enterprise_id", "occurred_at"):
        if target not in fields:
            raise ValueError(f"fields must map {target}")
    bad = [t for t in fields if t not in ("enterprise_id", "occurred_at") and not t.startswith("payload.")]
    if bad:
        raise ValueError(f"field targets are enterprise_id, occurred_at or payload.<field>; not {', '.join(bad)}")


class Mapping(_Strict):
    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    event_type: MappedType
    encoding: str = "utf-8-sig"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    blank: list[str] = Field(default_factory=list, description="cells that say 'not given' (an announcement's /, —, 无): read as empty")
    timezone: str = Field(default="+08:00", pattern=r"^[+-]\d{2}:\d{2}$")
    source: dict[str, str] = Field(default_factory=lambda: {"kind": "importer", "id": "qrisk-import"})
    event_id: EventIdSpec
    group_by: list[str] | None = Field(default=None, description="rows with equal values here form one event (items from each row)")
    fields: dict[str, FieldSpec]
    items: dict[str, FieldSpec] | None = Field(default=None, description="per row: one test item of payload.items")
    split: dict[str, list[str]] = Field(
        default_factory=dict,
        description="a column whose cells join several values with ‖ (or ∥, ||, ｜｜) → the columns they stand for")
    also: list[AlsoSpec] = Field(default_factory=list, description="more events from the same row (not with group_by)")
    base_dir: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _targets(self) -> "Mapping":
        _check_targets(self.fields)
        if self.items is not None and self.event_type != "sampling.result":
            raise ValueError("items: only for event_type sampling.result")
        if self.group_by and self.items is None:
            raise ValueError("group_by needs items: (one test item per row)")
        if self.also and self.group_by:
            raise ValueError("also: one row's further events, not for rows grouped by group_by")
        return self

    @property
    def tz(self) -> dt.timezone:
        sign = -1 if self.timezone[0] == "-" else 1
        hours, minutes = int(self.timezone[1:3]), int(self.timezone[4:6])
        return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))

    def missing_columns(self, header: list[str]) -> list[str]:
        """Columns the file lacks; of a list of alternatives (or templates), one is enough; a
        combined column of ``split`` stands for its parts."""
        have = set(header)
        for combined in self.combined_columns(header).values():
            have.update(self.split[combined])
        missing = [c for c in list(self.event_id.key) + list(self.group_by or []) + [k for a in self.also for k in a.event_id.key]
                   if c not in have]
        for when in (w for a in self.also for w in a.when or []):
            if not when.column_optional and not any(c in have for c in when.columns):
                missing.append(" / ".join(when.columns))
        for spec in _specs(self):
            if spec.template is not None:
                if not any(all(c in have for c in _template_columns(t)) for t in spec.templates):
                    missing += [c for c in _template_columns(spec.templates[0]) if c not in have]
            elif spec.columns and not spec.column_optional and not any(c in have for c in spec.columns):
                missing.append(" / ".join(spec.columns))
        return sorted(set(missing))

    def combined_columns(self, header: list[str]) -> dict[str, str]:
        """The file's columns that ``split`` names (whatever separator the file spells), → its key."""
        wanted = {_joined(k): k for k in self.split}
        return {h: wanted[_joined(h)] for h in header if _joined(h) in wanted}


_SEPARATOR = re.compile(r"\s*(?:‖|∥|\|\||｜｜)\s*")
"""Between the parts of a combined announcement cell: 不合格项目‖检验结果‖标准值 (‖, ∥, || or ｜｜)."""


def _joined(name: str) -> str:
    return _SEPARATOR.sub("‖", name.strip())


def _specs(mapping: Mapping) -> Iterator[FieldSpec]:
    """Every field spec of the mapping, its ``otherwise`` fallbacks included."""
    for spec in list(mapping.fields.values()) + list((mapping.items or {}).values()) + [f for a in mapping.also for f in a.fields.values()]:
        while spec is not None:
            yield spec
            spec = spec.otherwise


def load_mapping(path: str | Path) -> Mapping:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{path}: cannot read the mapping: {exc}", f"无法读取映射文件 {path}：{exc}") from exc
    if not isinstance(doc, dict):
        raise MappingError(f"{path}: a mapping file is a YAML mapping (name, event_type, event_id, fields …)",
                           f"映射文件 {path} 应为 YAML 映射（name、event_type、event_id、fields …）")
    try:
        mapping = Mapping.model_validate({**doc, "base_dir": path.parent})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise MappingError(f"{path}: {problems}", f"映射文件 {path} 有误：{problems}") from exc
    for spec in _specs(mapping):
        if spec.map_file:
            _map_file(mapping, spec.map_file)  # fail now, not on row 1
    return mapping


_MAP_FILES: dict[Path, dict[str, str]] = {}


def _map_file(mapping: Mapping, name: str) -> dict[str, str]:
    path = (mapping.base_dir or Path(".")) / name
    hit = _MAP_FILES.get(path)
    if hit is None:
        try:
            with open(path, encoding="utf-8-sig", newline="") as fh:
                rows = list(csv.reader(fh))
        except OSError as exc:
            raise MappingError(f"map_file {path}: {exc}", f"无法读取对照表 map_file {path}：{exc.strerror or exc}") from exc
        hit = {r[0].strip(): r[1].strip() for r in rows[1:] if len(r) >= 2 and r[0].strip()}
        _MAP_FILES[path] = hit
    return hit


# --------------------------------------------------------------------------- values


def _empty(value: Any, blank: frozenset[str] = frozenset()) -> bool:
    """No value: no cell, a cell of spaces, or (``blank``, NFKC'd) one that says there is none, as an announcement's "/"."""
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    text = value.strip()
    return text == "" or (bool(blank) and _nfkc(text).strip() in blank)


@functools.lru_cache(maxsize=64)
def _blank_set(words: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_nfkc(w).strip() for w in words if w.strip())


def _blanks(spec: FieldSpec | None, mapping: Mapping) -> frozenset[str]:
    """The cells that read as empty for this field: its own ``blank``, else the mapping's."""
    words = spec.blank if spec is not None and spec.blank is not None else mapping.blank
    return _blank_set(tuple(words))


def _number(text: str, where: "str | _Where") -> int | float:
    # one full-width comma and no point is a decimal comma (2，6); NFKC would make it a plain one
    text = text.strip().replace("，", ".") if text.count("，") == 1 and "." not in text and "．" not in text else text.strip()
    text = _nfkc(text).strip()
    if not _NUMBER.fullmatch(text):
        raise _where(where).error(f"'{text}' is not a number", f"“{text}”不是数字")
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise _where(where).error(f"'{text}' is not a finite number", f"“{text}”不是有限数字")
    return int(value) if re.fullmatch(r"[-+]?\d+", text) else value


_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
# "2.4×10²": NFKC would make the exponent's superscript a plain digit (10² → 102), so it is spelt 10^2 first
_SUPERSCRIPT_POWER = re.compile(r"(10|１０)\s*([⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+)")
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)"
_SCIENTIFIC = re.compile(rf"({_NUM})\s*[×xX*]\s*10\s*\^\s*([-+]?\d+)")
# a detection limit, as a number or a power of ten ("<1.0×10² CFU/g": 100)
_LIMIT = rf"{_NUM}(?:\s*[×xX*]\s*10\s*\^\s*[-+]?\d+)?"
# not detected below a detection limit: "<10", "未检出(<0.005)", "ND(<0.01)", "N.D.(<0.01)", "nd(<0.01)" (the
# limit is the method's: detection_limit); full-width （＜ are NFKC'd first.  Read as a non-detect without its
# word, "ND(<0.01) mg/kg" kept "(<0.01) mg/kg" for its unit, and no limit could judge it
_BELOW = re.compile(rf"(?:未检出|[Nn]\.?[Dd]\.?)\s*\(\s*<\s*({_LIMIT})\s*\)|<\s*({_LIMIT})")
_VALUE = re.compile(rf"\s*({_SCIENTIFIC.pattern}|{_BELOW.pattern}|未检出|ND|N\.D\.|nd|{_NUM}(?:[eE][-+]?\d+)?)")


def _results_text(text: str) -> str:
    return _nfkc(_SUPERSCRIPT_POWER.sub(lambda m: "10^" + m.group(2).translate(_SUPERSCRIPT), text)).strip()


def _exact(mantissa: str, exponent: str, where: "str | _Where") -> int | float:
    """mantissa × 10^exponent, read exactly (4.4×10⁵ is 440000, not 440000.00000000006)."""
    try:
        value = Decimal(mantissa).scaleb(int(exponent))
    except (InvalidOperation, ValueError):
        raise _where(where).error(f"'{mantissa}×10^{exponent}' is not a number", f"“{mantissa}×10^{exponent}”不是数字") from None
    if not value.is_finite() or abs(int(exponent)) > 30:
        raise _where(where).error(f"'{mantissa}×10^{exponent}' is out of range", f"“{mantissa}×10^{exponent}”超出数值范围")
    return int(value) if value == value.to_integral_value() else float(value)


def _split_values(text: str, spec: FieldSpec, where: "str | _Where") -> tuple[list[int | float | str], str]:
    """'45;59;8;61;10 CFU/250mL' → ([45, 59, 8, 61, 10], 'CFU/250mL'); '2.4×10² CFU/g' → ([240], 'CFU/g');
    '<10 CFU/g', '未检出(<0.005) g/kg' → (['ND'], …): not detected, the detection limit read by ``_detection_limits``."""
    text = _results_text(text)
    if text in _ND:
        return ["ND"], ""
    values: list[int | float | str] = []
    rest = text
    while rest:
        m = _VALUE.match(rest)
        if not m:
            break
        token = m.group(1)
        if (sci := _SCIENTIFIC.fullmatch(token)) is not None:
            values.append(_exact(sci.group(1), sci.group(2), where))
        elif _BELOW.fullmatch(token) or token in _ND:
            values.append("ND")
        else:
            values.append(_number(token, where))
        rest = rest[m.end():]
        sep = re.match(spec.split, rest)
        if _PORTION_UNIT.fullmatch(rest):
            break  # "未检出/25g": the test portion the result is per, not a separator and a value 25
        if sep and sep.end() > 0 and re.match(r"(未检出|ND|N\.D\.|nd|<|[-+]?[\d.])", rest[sep.end():]):
            rest = rest[sep.end():]
        else:
            break
    if not values:
        raise _where(where).error(f"'{text}' holds no result values (numbers, or 未检出/ND)", f"“{text}”中没有检测结果（数字，或 未检出/ND）")
    if rest.strip()[:1].isdigit() or rest.strip()[:1] in (".", ","):
        # "2.6.1 mg/L", "2,,6": what follows the values is no unit; taking it for one would keep a wrong value
        raise _where(where).error(f"'{text}': '{rest.strip()}' after the values is neither a value nor a unit",
                                  f"“{text}”中数值之后的“{rest.strip()}”既不是数值也不是单位")
    if re.search(r"[×xX*]\s*10", rest):
        # "2.4×10(2)", "2.4 × 10 ^ a": a power of ten left in the unit would be read as another unit, or refused as one
        raise _where(where).error(f"'{text}': scientific notation not understood in '{rest.strip()}' (write 2.4×10^2, 2.4×10²)",
                                  f"“{text}”中“{rest.strip()}”科学计数法未能识别（应写作 2.4×10^2 或 2.4×10²）")
    return values, rest.strip()


def _detection_limits(text: str, where: "str | _Where") -> list[int | float]:
    """The detection limits a result cell gives with its non-detects: '<10 CFU/g' → [10], '<1.0×10² CFU/g' → [100]."""
    limits: list[int | float] = []
    for m in _BELOW.finditer(_results_text(text)):
        limit = m.group(1) or m.group(2)
        sci = _SCIENTIFIC.fullmatch(limit)
        limits.append(float(_exact(sci.group(1), sci.group(2), where) if sci is not None else limit))
    return limits


# a unit per test portion, as pathogens are reported (沙门氏菌 "未检出/25g", "0/25g"; units.yaml /25g)
_PORTION_UNIT = re.compile(r"\s*/\s*\d+(?:\.\d+)?\s*(?:g|kg|ml|l|克|千克|毫升|升)\s*", re.IGNORECASE)


_DEFAULT_FORMATS = ["%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y年%m月%d日", "%Y.%m.%d", "%Y%m%d"]


_WIDTHS = {"%Y": 4, "%m": 2, "%d": 2, "%H": 2, "%M": 2, "%S": 2}
_EXCEL_SERIAL = re.compile(r"[1-9]\d{4}(?:\.\d+)?")
"""An Excel date serial (days since 1899-12-30; 1973-10-18 to 2173-10-14), with a time as its fraction."""


def _digits_only(fmt: str) -> int | None:
    """The number of digits a format of digits only (%Y%m%d) reads; None for a format with anything else.
    strptime takes such a format's fields as 1 or 2 digits, so shorter text would read as another date."""
    parts = re.findall(r"%.", fmt)
    if not parts or "".join(parts) != fmt or any(p not in _WIDTHS for p in parts):
        return None
    return sum(_WIDTHS[p] for p in parts)


def _parse_datetime(text: str, spec: FieldSpec, mapping: Mapping, where: "str | _Where") -> str:
    """ISO text, or the first of ``format`` (default: common Chinese spellings) that fits."""
    formats = [spec.format] if isinstance(spec.format, str) else (spec.format or _DEFAULT_FORMATS)
    text = _nfkc(text).strip()
    value: dt.datetime | None = None
    date_only = False
    try:
        value = dt.datetime.fromisoformat(text)
        date_only = ":" not in text and "T" not in text  # 2025-03-02 or 20250302: a day, no time
    except ValueError:
        for fmt in formats:
            width = _digits_only(fmt)
            if width is not None and not (text.isascii() and text.isdigit() and len(text) == width):
                continue  # strptime reads "2025111" by %Y%m%d as 2025-11-01 and "202511" as 2025-01-01: a misread, not a date
            try:
                value = dt.datetime.strptime(text, fmt)
            except ValueError:
                continue
            date_only = not any(d in fmt for d in ("%H", "%I", "%M", "%S"))
            break
    if value is None:
        hint_en, hint_zh = ("", "")
        if _EXCEL_SERIAL.fullmatch(text):
            # what Excel saves for a date cell formatted as a number (45717 is 2025-03-01)
            hint_en, hint_zh = ("; an Excel date number? format the column as a date or as text in Excel and export again",
                                "；这像是 Excel 日期序号：请将该列设为日期或文本格式后重新导出")
        raise _where(where).error(f"'{text}' is neither ISO 8601 nor any of the formats {', '.join(formats)}{hint_en}",
                                  f"“{text}”既不是 ISO 8601 日期时间，也不符合映射给出的任何格式（{'、'.join(formats)}）{hint_zh}")
    if spec.type == "date":
        return value.date().isoformat()
    if date_only:
        parts = [int(p) for p in spec.time.split(":")]
        value = value.replace(hour=parts[0], minute=parts[1], second=parts[2] if len(parts) > 2 else 0)
    if value.tzinfo is None:
        value = value.replace(tzinfo=mapping.tz)
    return value.isoformat()


def _findings(text: str, spec: FieldSpec, where: "str | _Where") -> list[dict[str, str]]:
    out = []
    for part in re.split(r"[;；\n]+", text):
        if not part.strip():
            continue
        m = _FINDING.match(part)
        if not m or not m.group("text"):
            raise _where(where).error(f"finding '{part.strip()}' is not 'CLAUSE DESCRIPTION（SEVERITY）'",
                                      f"问题“{part.strip()}”不是“条款号 描述（严重程度）”的形式，如“3.4 原料未离地存放（一般）”")
        sev_text = (m.group("sev") or "").strip()
        severity = _SEVERITY.get(sev_text)
        text_ = m.group("text").strip()
        if sev_text and severity is None:
            text_ = f"{text_}（{sev_text}）"  # a remark in brackets, not a severity
        out.append({"code": m.group("code"), "description": text_, "severity": severity or spec.severity})
    return out


# 处罚内容 as a decision or its public notice (行政处罚信息公示) writes it: "警告；没收违法所得3,780元；罚款5万元"
_PENALTY_WORDS = (("吊销", "licence_revoked"), ("停产停业", "suspension"), ("罚款", "fine"), ("没收", "confiscation"), ("警告", "warning"))
_PENALTY_SPLIT = re.compile(r"[;；\n]+|[，,、]\s*(?:并处|并)?\s*(?=警告|罚款|没收|责令|吊销)|并处")
_YUAN = re.compile(r"(?P<n>\d+(?:\.\d+)?)\s*(?P<wan>万)?\s*元")
_BARE = {"警告", "罚款", "没收", "责令停产停业", "吊销许可证"}


def _penalties(text: str, where: "str | _Where") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in _PENALTY_SPLIT.split(text):
        part = re.sub(r"(?<=\d)[,，](?=\d{3})", "", part.strip(" \t。.，,"))  # 3,780 元
        if not part:
            continue
        kind = next((k for word, k in _PENALTY_WORDS if word in part), "other")
        # amounts read after NFKC (罚款５．５万元 is 55,000 yuan, not 5万); the note keeps the text as written
        amounts = _YUAN.findall(re.sub(r"(?<=\d),(?=\d{3})", "", _nfkc(part)))
        if len(amounts) > 1:
            raise _where(where).error(f"penalty '{part}' names {len(amounts)} amounts: give each penalty its own part (separate them with ；)",
                                      f"处罚“{part}”含 {len(amounts)} 个金额：每项处罚单列一项（用“；”分隔）")
        amount = None
        if amounts:
            n, wan = amounts[0]
            amount = float(Decimal(n) * (10_000 if wan else 1))
        if kind == "fine" and amount is None:
            raise _where(where).error(f"fine '{part}' names no amount in digits (e.g. 罚款50000元, 罚款5万元)",
                                      f"罚款“{part}”没有用数字写明金额（如 罚款50000元、罚款5万元）")
        entry: dict[str, Any] = {"kind": kind}
        if amount is not None and kind not in ("warning", "suspension", "licence_revoked"):
            entry["amount_yuan"] = amount
        if part not in _BARE:
            entry["note"] = part
        out.append(entry)
    if not out:
        raise _where(where).error(f"no penalty in '{text}'", f"“{text}”中没有处罚内容", absent=True)
    return out


def convert(value: Any, spec: FieldSpec, mapping: Mapping, where: "str | _Where") -> Any:
    """One cell (already mapped) to the field's type.  ``where``: the field (and column, cell) reasons name."""
    if not isinstance(value, str):
        return value  # const or a mapped value given in YAML with its type
    t = spec.type
    text = value.strip()
    if t == "str":
        return text
    if t in ("int", "float", "number"):
        n = _number(text, where)
        if t == "int":
            if isinstance(n, float) and not n.is_integer():
                raise _where(where).error(f"'{text}' is not a whole number", f"“{text}”不是整数")
            return int(n)
        return float(n) if t == "float" else n
    if t == "bool":
        flag = _nfkc(text).strip()
        if flag in _TRUE:
            return True
        if flag in _FALSE:
            return False
        raise _where(where).error(f"'{text}' is not yes/no (是/否, 属实/不属实, true/false, 1/0)",
                                  f"“{text}”不是是/否（可写 是/否、属实/不属实、true/false、1/0）")
    if t in ("date", "datetime"):
        return _parse_datetime(text, spec, mapping, where)
    if t == "values":
        return _split_values(text, spec, where)[0]
    if t == "detection_limit":
        _split_values(text, spec, where)  # (a cell that is no result is refused as such)
        limits = set(_detection_limits(text, where))
        if not limits:
            raise _where(where).error(f"'{text}' gives no detection limit (<X)", f"“{text}”中没有检出限（<X）", absent=True)
        if len(limits) > 1:
            raise _where(where).error(f"'{text}' gives different detection limits", f"“{text}”中的检出限不一致")
        return limits.pop()
    if t == "unit_suffix":
        unit = _split_values(text, spec, where)[1]
        if not unit:
            raise _where(where).error(f"'{text}' names no unit after the values", f"“{text}”在数值之后没有写单位", absent=True)
        return unit
    if t == "findings":
        return _findings(text, spec, where)
    if t == "penalties":
        return _penalties(text, where)
    if t == "list":
        return [p for p in re.split(spec.split, text) if p]
    raise _where(where).error(f"unknown type {t}", f"未知的类型 {t}")  # pragma: no cover - the model restricts it


class _Absent(MappingError):
    """The field has no value in this row: an empty cell, or values that name no unit."""


def field_value(row: dict[str, str], target: str, spec: FieldSpec, mapping: Mapping) -> tuple[bool, Any]:
    """(present, value) of one field for one row; raises MappingError with the reason."""
    present, value, _ = _field(row, target, spec, mapping)
    return present, value


def _field(row: dict[str, str], target: str, spec: FieldSpec, mapping: Mapping) -> tuple[bool, Any, str | None]:
    """(present, value, the column or template it came from); ``otherwise``, then ``default``,
    then ``required`` decide what an absent value becomes."""
    try:
        return _readable(row, target, spec, mapping)
    except _Absent as absent:
        if spec.otherwise is not None:
            try:
                return _field(row, target, spec.otherwise, mapping)
            except MappingError as other:
                raise MappingError(f"{absent.en}; and otherwise {other.en}", f"{absent.zh}；改用 otherwise 时：{other.zh}",
                                   other.field or absent.field, other.column or absent.column) from None
        if spec.default is not None:
            return True, spec.default, None
        if not spec.required:
            return False, None, None
        raise


def _readable(row: dict[str, str], target: str, spec: FieldSpec, mapping: Mapping) -> tuple[bool, Any, str | None]:
    try:
        return _cell(row, target, spec, mapping)
    except _Absent:
        raise
    except MappingError as unreadable:
        if spec.on_unreadable == "reject":
            raise
        # 生产日期/批号 holds a date or a batch number (批号：A2308): a batch number is no production date, and
        # no reason to refuse the sample it belongs to; the field is absent, as for an empty cell
        raise _Absent(unreadable.en, unreadable.zh, unreadable.field, unreadable.column) from None


def _cell(row: dict[str, str], target: str, spec: FieldSpec, mapping: Mapping) -> tuple[bool, Any, str | None]:
    if spec.const is not None:
        return True, spec.const, None
    blank = _blanks(spec, mapping)
    if spec.template is not None:
        filled = [t for t in spec.templates if not any(_empty(row.get(c), blank) for c in _template_columns(t))]
        if not filled:
            missing = [c for c in spec.columns if _empty(row.get(c), blank)]
            raise _Absent(f"{target}: column(s) {', '.join(missing)} empty (template {' / '.join(spec.templates)})",
                          f"{target}：列 {'、'.join(missing)} 为空（模板 {' / '.join(spec.templates)}）", target, missing[0] if missing else None)
        column = filled[0]
        raw = column.format_map({c: row.get(c, "").strip() for c in _template_columns(column)})
    else:
        column = next((c for c in spec.columns if not _empty(row.get(c), blank)), spec.columns[0])
        raw = row.get(column)
        if _empty(raw, blank):
            raise _Absent(f"{target}: column {'/'.join(spec.columns)} is empty", f"{target}：列“{'/'.join(spec.columns)}”为空", target, spec.columns[0])
        raw = raw.strip()
    where = _Where(target, column, raw)
    if spec.map is not None or spec.map_file is not None:
        table = dict(_map_file(mapping, spec.map_file)) if spec.map_file else {}
        table.update(spec.map or {})
        if raw in table:
            return True, convert(table[raw], spec, mapping, where), column
        if spec.unmapped == "reject":
            known = "、".join(list(table)[:8]) + (" …" if len(table) > 8 else "")
            raise MappingError(f"{target}: '{raw}' (column {column}) is not in the mapping's table ({known}); add it to map / map_file",
                               f"{target}：列“{column}”的值“{raw}”不在映射的对照表中（{known}）；请在 map / map_file 中补充", target, column)
    return True, convert(raw, spec, mapping, where), column


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        doc = doc.setdefault(p, {})
    doc[parts[-1]] = value


def event_id(mapping: Mapping, row: dict[str, str], also: AlsoSpec | None = None) -> str:
    spec, event_type = (also.event_id, also.event_type) if also is not None else (mapping.event_id, mapping.event_type)
    values = [row.get(c, "").strip() for c in spec.key]
    if any(v == "" for v in values):
        empty = [c for c, v in zip(spec.key, values) if not v]
        raise MappingError(f"event id: key column(s) {', '.join(empty)} empty", f"事件编号：键列 {'、'.join(empty)} 为空", "event_id", empty[0])
    namespace = spec.namespace or mapping.name
    return str(uuid.uuid5(IMPORT_NAMESPACE, "\x1f".join([namespace, event_type, *values])))


def map_row(row: dict[str, str], mapping: Mapping, also: AlsoSpec | None = None) -> dict[str, Any]:
    """One row → one event document (envelope + payload), or MappingError; ``also``: the row's further event of that spec."""
    row = split_cells(row, mapping)
    doc: dict[str, Any] = {
        "event_id": event_id(mapping, row, also), "event_type": also.event_type if also is not None else mapping.event_type,
        "schema_version": SCHEMA_VERSION,
        "source": dict(also.source if also is not None and also.source is not None else mapping.source), "payload": {},
    }
    notes: list[str] = []
    for target, spec in (also.fields if also is not None else mapping.fields).items():
        present, value, column = _field(row, target, spec, mapping)
        if present:
            _set(doc, target, value)
        if spec.fallback_note and column is not None and column != spec.columns[0]:
            notes.append(spec.fallback_note)
    if notes:
        remarks = doc["payload"].get("remarks")
        doc["payload"]["remarks"] = "；".join(([remarks] if remarks else []) + notes)
    if mapping.items is not None and also is None:
        doc["payload"]["items"] = [map_item(row, mapping)]
    return doc


def map_rows(row: dict[str, str], mapping: Mapping) -> list[dict[str, Any] | MappingError]:
    """One row → its event, then each ``also`` event whose ``when`` holds (a row that does not map gives its error only)."""
    out: list[dict[str, Any] | MappingError] = [map_row(row, mapping)]
    for also in mapping.also:
        if also.given(split_cells(row, mapping), _blanks(None, mapping)):
            try:
                out.append(map_row(row, mapping, also))
            except MappingError as exc:
                out.append(exc)
    return out


def split_cells(row: dict[str, str], mapping: Mapping) -> dict[str, str]:
    """The row with each combined cell of ``mapping.split`` (不合格项目‖检验结果‖标准值) also read as
    the columns it stands for; a column the file has itself, filled, is kept as it is."""
    combined = mapping.combined_columns(list(row))
    if not combined:
        return row
    row = dict(row)
    for column, key in combined.items():
        names, cell = mapping.split[key], (row.get(column) or "").strip()
        parts = _SEPARATOR.split(cell) if cell else [""] * len(names)
        if len(parts) != len(names):
            raise MappingError(f"column {column}: '{cell}' has {len(parts)} part(s); expected {len(names)} ({'‖'.join(names)})",
                               f"列“{column}”的值“{cell}”有 {len(parts)} 部分，应为 {len(names)} 部分（{'‖'.join(names)}）", None, column)
        for name, part in zip(names, parts):
            if _empty(row.get(name)):
                row[name] = part
    return row


def map_item(row: dict[str, str], mapping: Mapping) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for target, spec in (mapping.items or {}).items():
        present, value = field_value(row, f"items.{target}", spec, mapping)
        if present:
            item[target] = value
    return item


# --------------------------------------------------------------------------- files


def _row_bytes(header: list[str], row: dict[str, str], delimiter: str, extra: list[str] | None = None) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter).writerow([row.get(c, "") for c in header] + list(extra or ()))
    # surrogateescape: the bytes that did not decode come back as they were in the file
    return buf.getvalue().rstrip("\r\n").encode("utf-8", "surrogateescape")


def file_header(path: str | Path, mapping: Mapping) -> list[str]:
    """The column names of a file ``read_mapped`` reads (its records' bytes are the cells without them): a dead
    letter's preview masks the cell under 投诉人 as the name it is.  [] when the header cannot be read."""
    try:
        with open(path, encoding=mapping.encoding, errors="surrogateescape", newline="") as fh:
            return [h.strip() for h in next(csv.reader(fh, delimiter=mapping.delimiter), [])]
    except (OSError, LookupError, csv.Error):
        return []


def read_mapped(path: str | Path, mapping: Mapping) -> Iterator[tuple[str, bytes, Any]]:
    """Yield ``(position, raw_bytes, document | MappingError)`` per row (or per group of rows).

    A row the file itself spoils — cells past the header, bytes that are not the mapping's encoding, a record
    the csv module cannot read — is a MappingError at its line, as any row that does not map; only a file
    whose header cannot be read (or that cannot be opened) raises."""
    path = Path(path)
    try:
        # surrogateescape: one cell typed in another encoding is one bad row, not the end of the import
        fh = open(path, encoding=mapping.encoding, errors="surrogateescape", newline="")
    except OSError as exc:
        raise MappingError(f"{path}: {exc.strerror or exc}", f"无法打开 {path}：{exc.strerror or exc}") from exc
    except LookupError as exc:
        raise MappingError(f"{path}: unknown encoding {mapping.encoding!r} in the mapping", f"映射中的编码 {mapping.encoding!r} 无法识别") from exc
    with fh:
        lines = CsvLines(fh)
        try:
            reader = csv.DictReader(lines, delimiter=mapping.delimiter)
            header = [h.strip() for h in (reader.fieldnames or [])]
        except csv.Error as exc:
            raise MappingError(f"{path}: the header is not readable CSV ({exc})", f"{path}：表头不是可读的 CSV（{exc}）") from exc
        if any(_SURROGATE.search(h) for h in header):
            raise _not_encoded(path, mapping)
        reader.fieldnames = header
        missing = mapping.missing_columns(header)
        if missing:
            raise MappingError(f"{path}: the mapping {mapping.name} needs column(s) {', '.join(missing)}; the file has {', '.join(header)}",
                               f"{path}：映射 {mapping.name} 需要列 {'、'.join(missing)}；文件中的列为 {'、'.join(header)}")
        rows: list[tuple[int, dict[str, str], MappingError | None, bytes]] = []
        lines.record_read()
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # a cell over the csv module's size limit, a quote not closed
                refused = lines.refused(path.name, exc)
                if refused is None:
                    # ending here would drop every later row unsaid: the import stops, and says so
                    raise MappingError(f"{path}: unreadable as CSV after line {lines.line} ({exc})",
                                       f"{path}：第 {lines.line} 行之后的内容无法按 CSV 读取（{exc}）", type="csv_invalid") from exc
                position, raw, en, zh = refused
                if mapping.group_by:
                    # its sample cannot be told: the rows of that sample that were read are imported without it
                    cols = mapping.group_by
                    en += (f"; rows are grouped by {', '.join(cols)} into samples: the sample this record belongs to, if any, "
                           f"is imported from its other rows, without the item(s) of this one")
                    zh += f"；按 {'、'.join(cols)} 分组为样品：该记录所属的样品（如有）按其余行导入，缺少该记录中的检验项目"
                yield position, raw, MappingError(en, zh, type="csv_invalid")
                continue
            lines.record_read()
            extra = [c for c in row.get(None) or [] if c is not None]  # type: ignore[call-overload]
            clean = {k: (v if v is not None else "") for k, v in row.items() if k is not None}
            if not any(v.strip() for v in clean.values()) and not any(c.strip() for c in extra):
                continue
            error = _spoilt(header, clean, extra, mapping)
            if mapping.group_by:
                rows.append((reader.line_num, clean, error, _row_bytes(header, clean, mapping.delimiter, extra)))
            elif error is not None:
                yield f"{path.name}:{reader.line_num}", _row_bytes(header, clean, mapping.delimiter, extra), error
            else:
                yield from _one(path, reader.line_num, header, clean, mapping)
    if mapping.group_by:
        yield from _groups(path, header, rows, mapping)


_SURROGATE = re.compile("[\udc80-\udcff]")


def _spoilt(header: list[str], row: dict[str, str], extra: list[str], mapping: Mapping) -> MappingError | None:
    """Why the file spoils this row, if it does: cells past the header, bytes not in the mapping's encoding."""
    if extra:
        # csv.DictReader puts them aside: mapped without them, the row would lose what they hold (the findings
        # after a comma in 发现问题) and be imported as something else, silently
        return MappingError(f"record has {len(extra)} cell(s) more than the header's {len(header)} columns (a comma in a cell that is not quoted?)",
                            f"该记录比表头的 {len(header)} 列多 {len(extra)} 个单元格（某个单元格中的逗号没有加引号？）", type="csv_invalid")
    bad = [c for c in header if _SURROGATE.search(row.get(c) or "")]
    if not bad:
        return None
    raw = b"".join((row.get(c) or "").encode("utf-8", "surrogateescape") for c in bad)
    if _is_utf8(mapping.encoding):
        from ingest.files import _not_utf8

        said = _not_utf8(f"record (column {', '.join(bad)})", f"该记录（列 {'、'.join(bad)}）", raw)
        return MappingError(said.en, said.zh, None, bad[0], type=said.type)
    return MappingError(f"record (column {', '.join(bad)}) is not {mapping.encoding} text: check the mapping's encoding",
                        f"该记录（列 {'、'.join(bad)}）不是 {mapping.encoding} 编码的文本：请检查映射中的 encoding 是否与文件一致", None, bad[0],
                        type="body_encoding")


def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    except LookupError:
        return False


def _not_encoded(path: Path, mapping: Mapping) -> MappingError:
    if not _is_utf8(mapping.encoding):
        # the mapping already says a legacy encoding: suggesting gb18030 again would send the user round in a circle
        return MappingError(f"{path}: the header is not {mapping.encoding} text; set encoding: in the mapping to the file's (utf-8-sig for UTF-8)",
                            f"{path} 的表头不是 {mapping.encoding} 编码的文本；请在映射中把 encoding 设为文件的编码（UTF-8 文件为 utf-8-sig）")
    return MappingError(f"{path}: the header is not {mapping.encoding} text; set encoding: in the mapping (e.g. gb18030)",
                        f"{path} 的表头不是 {mapping.encoding} 编码的文本（如按 GBK 保存）；请在映射中设置 encoding（如 gb18030）")


def _one(path: Path, line: int, header: list[str], row: dict[str, str], mapping: Mapping) -> Iterator[tuple[str, bytes, Any]]:
    position = f"{path.name}:{line}"
    raw = _row_bytes(header, row, mapping.delimiter)
    try:
        docs = map_rows(row, mapping)
    except MappingError as exc:
        docs = [exc]
    for doc in docs:
        yield position, raw, doc


def _groups(path: Path, header: list[str], rows: list[tuple[int, dict[str, str], MappingError | None, bytes]],
            mapping: Mapping) -> Iterator[tuple[str, bytes, Any]]:
    groups: dict[tuple[str, ...], list[tuple[int, dict[str, str], MappingError | None, bytes]]] = {}
    for member in rows:
        groups.setdefault(tuple(member[1].get(c, "").strip() for c in mapping.group_by or []), []).append(member)
    for key, members in groups.items():
        lines = [line for line, *_ in members]
        position = f"{path.name}:{','.join(str(n) for n in lines)}"
        raw = b"\n".join(row_bytes for *_, row_bytes in members)
        try:
            spoilt = next(((line, error) for line, _, error, _ in members if error is not None), None)
            if spoilt is not None:
                # the sample whole or not at all: without the spoilt row it would lack one of its items
                line, error = spoilt
                if len(members) == 1:
                    raise error
                raise MappingError(f"row {line}: {error.en}", f"第 {line} 行：{error.zh}", error.field, error.column, error.type)
            if any(k == "" for k in key):
                raise MappingError(f"group_by column(s) {', '.join(mapping.group_by or [])} empty",
                                   f"分组列 {'、'.join(mapping.group_by or [])} 为空", None, (mapping.group_by or [None])[0])
            first = map_row(members[0][1], mapping)
            for line, row, *_ in members[1:]:
                other = map_row(row, mapping)
                for target in mapping.fields:
                    a, b = _get(first, target), _get(other, target)
                    if a != b:
                        raise MappingError(f"rows {lines[0]} and {line} of {'/'.join(key)} disagree on {target} ('{a}' vs '{b}')",
                                           f"{'/'.join(key)} 的第 {lines[0]} 行与第 {line} 行的 {target} 不一致（“{a}”与“{b}”）", target)
                first["payload"]["items"].extend(other["payload"]["items"])
            yield position, raw, first
        except MappingError as exc:
            yield position, raw, exc


def _get(doc: dict[str, Any], dotted: str) -> Any:
    for p in dotted.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(p)
    return doc


def event_type_for(kind: str) -> str:
    try:
        return KINDS[kind]
    except KeyError:
        raise MappingError(f"unknown kind {kind!r}: use {', '.join(KINDS)}", f"未知的导入种类 {kind!r}：应为 {'、'.join(KINDS)}") from None


assert set(KINDS.values()) <= set(EVENT_TYPES)
