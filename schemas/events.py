"""The event contract: one envelope, a payload per event type.

Every event a lab system, the complaint hotline or an inspector sends is an
``Envelope`` whose ``event_type`` selects the payload model.  Payloads carry the
fields of the real records (see shared/domain.md, "Sampling records as
published").  Models are strict: unknown fields are rejected, numbers are never
coerced from strings, NaN and infinities are refused, text has length limits and
identifiers and short text are one line, so a lab integrator gets a precise error
instead of a silently mangled record.  Every field carries a description: the
exported JSON Schema (``schemas.export``) is the integrator's reference.
"""
from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
import uuid
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictFloat,
    StrictInt,
    TypeAdapter,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

SCHEMA_VERSION = 2
"""Current envelope version.  Version 1 is upcast on read (see ``schemas.upcast``)."""

ENTERPRISE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


def _at_door(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("door"))


REWRITTEN = "rewritten"
"""The validation context's key of a list the door appends a field's name to when it keeps a value other
than the one sent (a complaint's format characters taken out, an empty source name read as none).  A way
in that logs the bytes as sent (the Kafka worker's fast path) must log the event instead when it is not
empty: re-read without the door, the bytes give the sent value, and a successor, a refold or the sink
would hold another event than the live fold."""


def _rewritten(info: ValidationInfo, field: str) -> None:
    noted = info.context.get(REWRITTEN) if info.context else None
    if noted is not None:
        noted.append(field)


# Door-only checks that cost little on the common path: a union whose first branch carries the check as
# a constraint pydantic applies natively, and whose last branch, reached only when that one fails,
# refuses at the door and takes the value elsewhere (a log re-read, see DOOR) as it always did.  A
# Python validator on every short text cost a sampling result with nine items some 12 µs more to
# decode (of 40); this costs about 2 µs (the regex).  The door's reason alone is shown for the field
# (ingest.validate.describe drops the other branches' failures beside it).


def _door_only(first: Any, fallback: Any, schema: dict[str, Any]) -> Any:
    """``first``, else (outside the door) ``fallback``; ``schema``: what the exported schema shows,
    the first branch's form (a lab should send what the door accepts)."""
    return Annotated[Union[first, fallback], Field(union_mode="left_to_right"), WithJsonSchema(schema)]


# Control characters (C0, DEL, C1) in an identifier or a short text.  A NUL in a sample_no is a lab
# system's fixed-width buffer or a bad escape, not part of the number: stored, it makes an identifier
# that prints like another (a re-test would not pair with its original) and a cell that breaks the
# CSV/XLSX exports; a tab or a line break in a name is a spreadsheet cell's, not the name's.  Free
# text (a complaint, a note, an interview's reason) keeps whatever it holds (surrounding spaces aside).
#
# Nor a format character (Unicode category Cf): invisible, it changes what a reader sees of the rest.
# A right-to-left override (U+202E) or an isolate (U+2066–2069) in an enterprise's name or a sample_no
# reorders what a supervisor reads in a report or a robot message ("SC2026031" could show as another
# number); a zero-width space (U+200B) or a BOM makes a name that prints like another and pairs with
# nothing; a tag character (U+E0020–E007F) carries text no one sees.  Listed rather than read from
# unicodedata, so that the door (Python), the constraint (Rust's regex) and the exported schema agree
# whatever Unicode version each knows (Unicode 14's list; tests/test_security_door.py checks it).
FORMAT_CHARACTERS = ((0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891),
                     (0x08E2, 0x08E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F),
                     (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438),
                     (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F))
# (the characters themselves in the class: Python's re and Rust's regex spell a code point past U+FFFF differently)
_FORMAT_CLASS = "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in FORMAT_CHARACTERS)
# The exported schema (ECMA-262 without the u flag, read by other languages' regex too) names those of the
# Basic Multilingual Plane; the door refuses the others (tags, musical and shorthand format controls) all the same.
_FORMAT_PATTERN = "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in FORMAT_CHARACTERS if b <= 0xFFFF)
_FORMAT = re.compile(f"[{_FORMAT_CLASS}]")
_CONTROL = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_FORMAT_CLASS}]")
ONE_LINE_RE = f"^[^\\x00-\\x1f\\x7f-\\x9f{_FORMAT_CLASS}]*$"  # the constraint (pydantic's Rust regex)
_ONE_LINE_PATTERN = f"^[^\\u0000-\\u001f\\u007f-\\u009f{_FORMAT_PATTERN}]*$"  # the same, as the exported schema's (ECMA-262) pattern
# ... and holding something besides spaces, for a text that must not be empty: the door strips the
# spaces around a text (Model's str_strip_whitespace, Rust's trim: Unicode White_Space), then counts
# what is left, so "   " is refused as empty.  The class below is that White_Space set.
_SPACE_CLASS = "\\u0009-\\u000d\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
_HAS_TEXT_PATTERN = f"[^{_SPACE_CLASS}]"  # free text (line breaks allowed): somewhere a character that is no space
_NOT_BLANK_PATTERN = (f"^[^\\u0000-\\u001f\\u007f-\\u009f{_FORMAT_PATTERN}]*[^{_SPACE_CLASS}\\u0000-\\u001f\\u007f-\\u009f{_FORMAT_PATTERN}]"
                      f"[^\\u0000-\\u001f\\u007f-\\u009f{_FORMAT_PATTERN}]*$")
_CONTROL_NAMES = {0x00: ("NUL", "空字符 NUL"), 0x09: ("a tab", "制表符"), 0x0A: ("a line feed", "换行符"), 0x0D: ("a carriage return", "回车符"),
                  0x7F: ("DEL", "删除符 DEL")}


_FORMAT_NAMES_ZH = {0x00AD: "软连字符", 0x200B: "零宽空格", 0x200C: "零宽不连字", 0x200D: "零宽连字", 0x200E: "从左至右标记",
                    0x200F: "从右至左标记", 0x202A: "从左至右嵌入", 0x202B: "从右至左嵌入", 0x202C: "双向格式结束",
                    0x202D: "从左至右覆盖", 0x202E: "从右至左覆盖", 0x2060: "词连接符", 0x2066: "从左至右隔离",
                    0x2067: "从右至左隔离", 0x2068: "首强隔离", 0x2069: "双向隔离结束", 0xFEFF: "零宽不换行空格/BOM"}


def _one_line(value: str, info: ValidationInfo) -> str:
    if _at_door(info) and (found := _CONTROL.search(value)) is not None:
        code = ord(value[found.start()])
        if _FORMAT.match(value, found.start()):
            around = repr(value[max(0, found.start() - 12):found.start() + 12])  # (repr escapes it: shown, it would reorder this message)
            en_name = unicodedata.name(chr(code), "a format character")
            zh_name = _FORMAT_NAMES_ZH.get(code, "格式字符")
            raise FieldError(f"must be text without invisible format characters (bidirectional controls, zero-width spaces …): "
                             f"found U+{code:04X} ({en_name}) in {around}",
                             f"不得含有不可见的格式字符（双向文本控制符、零宽字符等），它们会改变文字的显示顺序或隐藏内容："
                             f"{around} 中含不可见格式字符 U+{code:04X}（{zh_name}）")
        en_name, zh_name = _CONTROL_NAMES.get(code, ("a control character", "控制字符"))
        around = repr(value[max(0, found.start() - 12):found.start() + 12])
        raise FieldError(f"must be one line of printable text, without control characters (NUL, tab, line break …): "
                         f"found U+{code:04X} ({en_name}) in {around}",
                         f"应为一行可打印文本，不得含有控制字符（空字符、制表符、换行等）：{around} 中含有 U+{code:04X}（{zh_name}）")
    return value


def _one_line_text(max_length: int, min_length: int = 0) -> Any:
    """Text of one line: an identifier or a short text.  No control character at the door."""
    bounds = {"min_length": min_length, "max_length": max_length}
    schema = {"type": "string", **({"minLength": min_length} if min_length else {}), "maxLength": max_length,
              "pattern": _NOT_BLANK_PATTERN if min_length else _ONE_LINE_PATTERN}
    return _door_only(Annotated[str, Field(**bounds, pattern=ONE_LINE_RE)], Annotated[str, Field(**bounds), AfterValidator(_one_line)], schema)


ShortText = _one_line_text(200, min_length=1)
OptionalShortText = Annotated[_one_line_text(200) | None, Field(default=None)]
LongText = Annotated[str, Field(max_length=4000)]
EnterpriseId = Annotated[str, Field(pattern=ENTERPRISE_ID_PATTERN, description="统一社会信用代码 or bureau id; the Kafka key")]


# allow_inf_nan=False refuses NaN and ±inf, including the inf that JSON like 1e999
# parses to.  Strict: a quoted "1.5" is text, not a number.  Integers are bounded to
# what a float holds exactly (2**53): a 400-digit integer is valid JSON but no measurement,
# and would otherwise pass the door and fail every later float() in the fold.  The number branch
# took an integer beyond 2**53 all the same, rounded (9007199254740993 became 9007199254740992.0):
# at the door a number is now bounded by 2**53 as well (no measurement comes near 9e15); a log
# holding such a value re-reads it as it did.
MAX_EXACT_INT = 2**53


def _inexact_refusal(value: float) -> "FieldError":
    # only the float is left to show: a validator seeing the value as sent would cost every value a call
    return FieldError(f"a number must lie within ±{MAX_EXACT_INT} (2^53): beyond it a number is not held exactly "
                      f"(an integer that large is rounded); got a number of magnitude {abs(value):.6g}",
                      f"数值须在 ±{MAX_EXACT_INT}（2^53）以内：超出则无法精确保存（如此大的整数会被舍入）；收到的数值约为 {value:.6g}")


def _held_exactly(value: Any, info: ValidationInfo) -> Any:
    """A number of a magnitude from 2**53 on, refused at the door; for a union's fallback branch, or a
    number field's ``field_validator`` (after the number is read)."""
    if type(value) is float and not -MAX_EXACT_INT < value < MAX_EXACT_INT and _at_door(info):
        raise _inexact_refusal(value)
    return value


_EXACT_INT = Annotated[StrictInt, Field(ge=-MAX_EXACT_INT, le=MAX_EXACT_INT)]
_EXACT_FLOAT = Annotated[StrictFloat, Field(allow_inf_nan=False, gt=-MAX_EXACT_INT, lt=MAX_EXACT_INT)]
_ANY_FLOAT = Annotated[StrictFloat, Field(allow_inf_nan=False), AfterValidator(_held_exactly)]
# (what the door refuses, for the exported schema; not a constraint: a log may hold such a number)
_WITHIN_EXACT = {"exclusiveMinimum": -MAX_EXACT_INT, "exclusiveMaximum": MAX_EXACT_INT}
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True, json_schema_extra=_WITHIN_EXACT)]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


def _quoted_at_door(value: Any, info: ValidationInfo) -> Any:
    # the lax branch of a number strict at the door, reached when the strict one refused the value: a
    # real number went on to fail a bound (said by both branches alike), anything else ("58", true) is
    # refused here.  Outside the door a log that took "58" before the door was strict re-reads it
    if _at_door(info) and type(value) not in (int, float):
        raise FieldError(f"must be a number, not quoted and not true/false: got {_shown(value)}",
                         f"应为数字（不加引号，也不能是 true/false）：收到 {_shown(value)}")
    return value


def _number_strict_at_door(schema: dict[str, Any], **bounds: Any) -> Any:
    """A float that the door takes only as a JSON number (a log re-reads what a lax one took before)."""
    return _door_only(Annotated[StrictFloat, Field(allow_inf_nan=False, **bounds)],
                      Annotated[float, BeforeValidator(_quoted_at_door), Field(allow_inf_nan=False, **bounds)], schema)


def _whole_number(value: Any) -> Any:
    # JSON has one number type: 40.0 is the number 40 (what a spreadsheet or a pandas export writes), and the
    # exported schema's "integer" takes it, so the door does too (in a log as well: the bytes are kept as
    # sent); 40.5 is no count
    if type(value) is float:
        if value.is_integer():
            return int(value)
        raise FieldError(f"must be a whole number (an integer such as 40), got {_shown(value)}",
                         f"应为整数（如 40），收到 {_shown(value)}")
    return value


WholeNumber = BeforeValidator(_whole_number)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


# What the stores hold (ClickHouse DateTime: 1970-01-01 … 2106-02-07 UTC): a timestamp or date
# outside is refused at the door rather than wrapped or clamped in a derived table.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
LATEST = dt.datetime(2106, 1, 1, tzinfo=dt.timezone.utc)


class FieldError(ValueError):
    """A refusal with its reason in Chinese as well: the door (``ingest.validate``) shows both.

    ``field``: for a check across fields, raised by the model holding them, the path (from that
    model) of the field the lab should correct, e.g. ``payload.sampled_on``: the door names it."""

    def __init__(self, en: str, zh: str, field: str | None = None):
        super().__init__(en)
        self.zh = zh
        self.field = field


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise FieldError("timestamp must carry a UTC offset, e.g. 2026-03-01T08:30:00+08:00",
                         "时间须带时区，如 2026-03-01T08:30:00+08:00")
    try:
        value = value.astimezone(dt.timezone.utc)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 and the like
        value = None  # type: ignore[assignment]
    if value is None or not EARLIEST <= value < LATEST:
        # (in UTC, as stored: 1970-01-01T00:00:00+08:00 is 1969-12-31T16:00Z, before the range)
        raise FieldError("timestamp must lie between 1970-01-01T00:00:00Z and 2105-12-31T23:59:59Z (in UTC)",
                         "时间须在 UTC 1970-01-01 00:00:00 至 2105-12-31 23:59:59 之间（北京时间 1970-01-01 08:00 起）")
    return value


def _in_range(value: dt.date) -> dt.date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise FieldError("date must lie between 1970-01-01 and 2105-12-31", "日期须在 1970-01-01 至 2105-12-31 之间")
    return value


DOOR = {"door": True}
"""Validation context of the ways in (HTTP, files, the Kafka ingress): checks added to the contract
after events were first accepted apply there only.  An event already in a log was valid when it
came and must re-read as it was, or a replay would lose it (``parse_event`` without context)."""

LOCAL_UTC_OFFSET_HOURS = 8
"""Beijing time, the policy's ``utc_offset_hours`` default: the offset of the local day a door check
compares a date with, unless the validation context says ``utc_offset_hours``."""

_DOORS: dict[float, dict[str, Any]] = {}


def door(utc_offset_hours: float) -> dict[str, Any]:
    """The validation context of a way in of a bureau whose local time is ``utc_offset_hours``
    (the policy's): a lab writes local dates, so the door's date checks compare local days."""
    if utc_offset_hours == LOCAL_UTC_OFFSET_HOURS:
        return DOOR
    context = _DOORS.get(utc_offset_hours)
    if context is None:
        context = _DOORS[utc_offset_hours] = {"door": True, "utc_offset_hours": utc_offset_hours}
    return context

# JSON has no date type: ISO-8601 text only (at the door).  Pydantic alone would also read
# "1741132800" (epoch seconds, as text) and a date given as a datetime at midnight: a lab system
# sending those has a bug that must show at the door, not a date in 1970 choosing the edition.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


DATE_FORM_EN = "must be an ISO-8601 date in extended form YYYY-MM-DD, such as 2026-03-01"
DATE_FORM_ZH = "应为 YYYY-MM-DD 格式的日期，如 2026-03-01"
DATETIME_FORM_EN = "must be an ISO-8601 timestamp with its UTC offset, YYYY-MM-DDThh:mm:ss±hh:mm, such as 2026-03-01T08:30:00+08:00"
DATETIME_FORM_ZH = "应为带时区的 ISO-8601 时间 YYYY-MM-DDThh:mm:ss±hh:mm，如 2026-03-01T08:30:00+08:00"


def _text_or_value(kind: type) -> Any:
    if kind is dt.date:
        def text_ok(text: str) -> bool:
            return _ISO_DATE.fullmatch(text) is not None
        # "20260305" is ISO-8601 too (the basic form): the reason shows the form qrisk reads
        en, zh = DATE_FORM_EN, DATE_FORM_ZH
    else:
        def text_ok(text: str) -> bool:
            return _ISO_DATETIME.match(text) is not None
        en, zh = DATETIME_FORM_EN, DATETIME_FORM_ZH

    def check(value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, kind):
            return value
        if isinstance(value, str) and (text_ok(value.strip()) or not (info.context and info.context.get("door"))):
            return value.strip()
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
        raise FieldError(f"{en}, got {shown}", f"{zh}，收到 {shown}")
    return BeforeValidator(check)


# The exported schema states the years the door accepts (format date-time alone allows 0001–9999): a
# payload the schema accepts is accepted.  (A time in the first hours of 1970 with a positive offset,
# before 1970 in UTC, is the one exception.)
_YEAR = r"(19[7-9][0-9]|20[0-9]{2}|210[0-5])"
_DAY = r"(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_DATE_PATTERN = f"^{_YEAR}-{_DAY}$"
_DATETIME_PATTERN = f"^{_YEAR}-{_DAY}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
AwareDatetime = Annotated[dt.datetime, _text_or_value(dt.datetime), AfterValidator(_aware),
                          Field(json_schema_extra={"pattern": _DATETIME_PATTERN})]
IsoDate = Annotated[dt.date, _text_or_value(dt.date), AfterValidator(_in_range), Field(json_schema_extra={"pattern": _DATE_PATTERN})]

# --------------------------------------------------------------------------- enums


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


# A lab system pads its table cells ("基本符合 ", " 12315"): str_strip_whitespace strips free text,
# _verdict_alias a lab's verdict, and this an enumerated value, whose spaces are no part of the
# word.  On each field rather than on the aliases below: those are also the policy's dict keys and
# get_args() sources.  Without it the refusal listed the allowed values, one of which looked exactly
# like what was sent.
Stripped = BeforeValidator(_stripped)

Category = Literal["packaged_water", "pastry", "other"]
"""包装饮用水 / 糕点 / 其他."""

Scale = Literal["micro", "small", "medium", "large"]
CampaignTier = Literal["A", "B", "C", "D", "unrated"]
"""提档升级 tier the bureau assigned at survey time (调查分档)."""
OperatingStatus = Literal["operating", "suspended", "deregistered"]
"""存续 / 停产 / 已注销."""

Verdict = Literal["pass", "fail"]

_VERDICT_ALIASES = {"合格": "pass", "不合格": "fail", "PASS": "pass", "FAIL": "fail", "Pass": "pass", "Fail": "fail"}


def _verdict_alias(value: Any) -> Any:
    # a lab system pads its table cells ("合格 "): the verdict is the word, not the spaces
    verdict = _VERDICT_ALIASES.get(value.strip(), value.strip()) if isinstance(value, str) else value
    if verdict not in ("pass", "fail"):
        # pydantic's literal_error would name pass and fail only, and a lab that sent 合格 would not
        # learn that 合格 is what it may send
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
        raise FieldError(f"must be pass or fail (or 合格/不合格, PASS/FAIL, Pass/Fail), got {shown}",
                         f"应为 pass/fail 或 合格/不合格（也接受 PASS/FAIL、Pass/Fail），收到 {shown}")
    return verdict


# The exported schema lists every spelling the model accepts: a lab system checking its payload
# against it must not be told that 合格 is wrong when qrisk takes it.
LabVerdict = Annotated[Verdict, BeforeValidator(_verdict_alias),
                       WithJsonSchema({"type": "string", "enum": ["pass", "fail", *_VERDICT_ALIASES]})]

NOT_DETECTED = "ND"
MeasuredValue = _door_only(
    Union[_EXACT_INT, _EXACT_FLOAT, Annotated[Literal["ND", "未检出"], Stripped]], _ANY_FLOAT,
    {"anyOf": [{"type": "integer", "minimum": -MAX_EXACT_INT, "maximum": MAX_EXACT_INT}, {"type": "number", **_WITHIN_EXACT},
               {"type": "string", "enum": ["ND", "未检出"]}]})


def _as_listed(values: Any) -> Any:
    return values


# Written out as the plain numbers and strings they are.  Pydantic's union serialiser probes the
# branches of number | "ND" for every value, and an "ND" cost it ~2 µs: most of the time spent
# writing a sampling event to the log.
AsListed = PlainSerializer(_as_listed, return_type=Any)
"""A number, or "ND" / "未检出" (not detected: below the method's detection limit), read as "ND"."""


# --------------------------------------------------------------------------- source


class Source(Model):
    """Who sent the event: a lab system, the complaint channel, an inspector, an importer."""

    kind: Annotated[Literal["lab", "complaint_channel", "inspector", "bureau", "importer", "system"], Stripped] = Field(
        description="lab: a testing laboratory's system; complaint_channel: 12315 and the like; inspector; bureau; "
                    "importer: a bulk load; system: qrisk itself")
    id: ShortText = Field(description="the sender's own id; a lab's API key requires its CMA number here, e.g. CMA-330100-0451")
    name: OptionalShortText = Field(default=None, description="the sender's name as people know it, e.g. 县食品检验检测中心; "
                                                              "empty (\"\") is no name, as an empty source_name cell of a CSV import")

    @field_validator("name")
    @classmethod
    def _empty_is_no_name(cls, name: str | None, info: ValidationInfo) -> str | None:
        # an empty CSV cell is read as no name (ingest.files); the same event posted with "name": ""
        # must read alike, or the back-filled copy and the live one are a conflict (409).  At the door:
        # a log holding "" re-reads as it was (and pipeline.content_digest takes "" for no name).
        if name == "" and _at_door(info):
            _rewritten(info, "source.name")
            return None
        return name


# --------------------------------------------------------------------------- payloads


_PROFILE = {
    "licence_no": "食品生产许可证编号, the production licence number, e.g. SC10633010200011.  A new number after a revocation "
                  "(吊销许可证, enforcement.decided) is a new licence: routine sampling and inspection are due again",
    "name": "企业名称, the enterprise's name as on its licence: what alerts, the credit file and the dashboards show",
    "address": "生产地址, the production address",
    "town": "乡镇/街道, the township or sub-district: alerts are routed by it (alerts.routes[].towns), silences may name it",
    "region": "县/区, the county or district (shown, not used in any decision)",
    "category": "食品类别: packaged_water = 包装饮用水, pastry = 糕点, other = 其他.  Selects the standards a result is judged "
                "against (a sample of an enterprise not yet registered waits for it), the reference failure rate of the "
                "control charts, and the risk grade's static points",
    "scale": "生产规模: micro = 微型, small = 小型, medium = 中型, large = 大型; a static factor of the risk grade",
    "population_served": "供应人群, the number of people the products reach (people, 0–100 000 000); a static factor of the risk "
                         "grade (absent: 未登记, no points)",
    "campaign_tier": "提档升级 tier the bureau assigned at the survey (调查分档): A, B, C, D, or unrated = 未分档; the credit term "
                     "of the risk grade.  A campaign.assessment's tier replaces it, also over a later registration or update",
}


# (the bounds inside: beside a validator, a field's own ge/le reached the door and not the exported schema)
_POPULATION = Annotated[StrictInt, Field(ge=0, le=100_000_000), WholeNumber]


class EnterpriseProfile(Model):
    """An enterprise's profile (企业登记信息): the credit file's head.  Results of its samples are judged once
    it is registered."""

    licence_no: ShortText = Field(description=_PROFILE["licence_no"])
    name: ShortText = Field(description=_PROFILE["name"])
    address: ShortText = Field(description=_PROFILE["address"])
    town: ShortText = Field(description=_PROFILE["town"])
    region: OptionalShortText = Field(default=None, description=_PROFILE["region"])
    category: Annotated[Category, Stripped] = Field(description=_PROFILE["category"])
    scale: Annotated[Scale, Stripped] = Field(description=_PROFILE["scale"])
    population_served: _POPULATION | None = Field(default=None, description=_PROFILE["population_served"])
    campaign_tier: Annotated[CampaignTier, Stripped] = Field(default="unrated", description=_PROFILE["campaign_tier"])


_UNCHANGED = " (absent or null: unchanged)"


class EnterpriseUpdate(Model):
    """A change of the profile (企业信息变更): only the fields given change; at least one must be given."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})  # as _something_changes: a schema the door agrees with

    licence_no: OptionalShortText = Field(default=None, description=_PROFILE["licence_no"] + _UNCHANGED)
    name: OptionalShortText = Field(default=None, description=_PROFILE["name"] + _UNCHANGED)
    address: OptionalShortText = Field(default=None, description=_PROFILE["address"] + _UNCHANGED)
    town: OptionalShortText = Field(default=None, description=_PROFILE["town"] + _UNCHANGED)
    region: OptionalShortText = Field(default=None, description=_PROFILE["region"] + _UNCHANGED)
    category: Annotated[Category, Stripped] | None = Field(default=None, description=_PROFILE["category"] + _UNCHANGED)
    scale: Annotated[Scale, Stripped] | None = Field(default=None, description=_PROFILE["scale"] + _UNCHANGED)
    population_served: _POPULATION | None = Field(default=None, description=_PROFILE["population_served"] + _UNCHANGED)
    campaign_tier: Annotated[CampaignTier, Stripped] | None = Field(default=None, description=_PROFILE["campaign_tier"] + _UNCHANGED)
    status: Annotated[OperatingStatus, Stripped] | None = Field(
        default=None, description="经营状态: deregistered (已注销: the enterprise closed and its registration was cancelled, from "
                                  "occurred_at; routine sampling and inspection are no longer due, and it leaves the campaign's "
                                  "counts; its credit file stays), suspended (停产: production stopped for a time, the licence kept, "
                                  "from occurred_at; routine sampling is not due, inspections stay due unless the policy's "
                                  "risk.inspect_while_suspended is false) or operating (存续: in business again — routine "
                                  "sampling falls due one interval from occurred_at — or a status recorded in error)" + _UNCHANGED)

    @model_validator(mode="after")
    def _something_changes(self) -> "EnterpriseUpdate":
        if not self.model_fields_set:
            raise FieldError("an update must change at least one field", "更新事件至少须修改一个字段")
        return self


def _above_zero(schema: dict[str, Any]) -> None:
    """detection_limit's exported schema: greater than 0, as the door checks (ge=0 stays the model's
    bound, for the logs written before; the door's check is _a_limit_detects_something)."""
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "number":
            branch.pop("minimum", None)
            branch["exclusiveMinimum"] = 0


class TestItem(Model):
    """One line of a lab report (检验项目): qrisk judges it itself against the catalogue (GET /v1/catalogue)."""

    item_code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")] = Field(
        description="the catalogue's item code, e.g. pseudomonas_aeruginosa (铜绿假单胞菌).  A code the catalogue lacks is "
                    "accepted and the item left undetermined (无法判定), with the warning unknown_item in the answer")
    item_name: OptionalShortText = Field(default=None, description="检验项目 as printed, e.g. 铜绿假单胞菌; shown as sent (the catalogue's "
                                                                   "name when absent)")
    values: Annotated[list[MeasuredValue], AsListed] = Field(
        min_length=1, max_length=50,
        description="检验结果: one value, or the n values of a sampling plan (n, c, m, M; e.g. the 5 of 铜绿假单胞菌), in unit.  Each "
                    "a number (not quoted, within ±2^53) or \"ND\" / \"未检出\" (not detected: "
                    "below the method's detection limit, charted at half of detection_limit).  Fewer or more than the plan's n "
                    "leave the item undetermined (warning wrong_value_count)")
    unit: _one_line_text(40, min_length=1) = Field(
        description="结果单位 of values and detection_limit, as printed, e.g. mg/L, CFU/250mL; converted to the catalogue's unit "
                    "(g/L to mg/L).  A unit qrisk cannot read or convert leaves the item undetermined (unknown_unit, unit_mismatch)")
    method: OptionalShortText = Field(default=None, description="检验依据, the test method, e.g. GB 8538-2022; kept, not judged")
    standard_ref: OptionalShortText = Field(
        default=None, description="判定依据, the standard the lab judged by, e.g. GB 19298-2014; kept and shown beside a "
                                  "disagreement (qrisk chooses the standard and edition itself)")
    detection_limit: FiniteFloat | None = Field(
        default=None, ge=0, json_schema_extra=_above_zero,
        description="方法检出限, the method's detection limit, in unit; greater than 0 (absent when not known).  An \"ND\" is charted "
                    "at half of it (not charted without it), and an \"ND\" whose limit is above the standard's limit is undetermined")
    lab_verdict: LabVerdict | None = Field(
        default=None, description="结果判定, the lab's own verdict: pass/fail, or 合格/不合格 (PASS/FAIL, Pass/Fail).  Kept; where "
                                  "qrisk's judgement differs, the sample's judgement lists the disagreement (judgement.disagrees); a 不合格 on "
                                  "an item qrisk cannot judge alerts all the same (judgement.lab_failed_unjudged)")

    @field_validator("detection_limit")
    @classmethod
    def _a_limit_detects_something(cls, limit: float | None, info: ValidationInfo) -> float | None:
        # a method detects down to some positive amount: 0 is a blank cell read as a number, and an
        # "ND" charted at half the detection limit (processors.fluctuation) would be drawn at 0.  At
        # the door only (ge=0 was the contract when logs were written; they must re-read as they were).
        if limit == 0 and info.context and info.context.get("door"):
            raise FieldError("a method's detection limit must be greater than 0 (leave detection_limit out when it is not known)",
                             "方法检出限须大于 0（未知时请省略 detection_limit）")
        return _held_exactly(limit, info)

    @field_validator("values")
    @classmethod
    def _one_spelling_of_not_detected(cls, values: list[Any]) -> list[Any]:
        # one C-level scan per item rather than a validator per value: this runs for every result line
        if "未检出" in values:
            return [NOT_DETECTED if v == "未检出" else v for v in values]
        return values

    __test__ = False  # not a pytest class


class SamplingResult(Model):
    """监督抽检 result for one sample (one 抽样编号): the lab's report, judged by qrisk item by item."""

    sample_no: ShortText = Field(
        description="抽样编号, the sample number.  A report under a number on file (same enterprise, same kind: original or "
                    "re-test) is that report again or its correction, not another sample; a re-test comes under the original's number")
    task_source: ShortText = Field(
        description="任务来源, who ordered the sampling, e.g. 县市场监管局; a provincial one (省…) counts toward the campaign's "
                    "sampling pass-rate KPI")
    lab: ShortText = Field(
        description="检验机构, the lab that tested the sample.  A re-test by the lab that did the first test is not admitted "
                    "(食品安全法 第八十八条); another lab's result under the number without retest is no correction")
    product: ShortText = Field(
        description="食品名称 as printed, e.g. 饮用纯净水: decides which limits apply (an item's scope, e.g. conductivity for "
                    "纯净水 only; 矿泉水 falls under GB 8537, not catalogued) and names the control-chart series")
    spec: OptionalShortText = Field(default=None, description="规格型号, e.g. 18.9L/桶; named in the alert of a failure")
    brand: OptionalShortText = Field(default=None, description="商标; named in the alert of a failure")
    batch: OptionalShortText = Field(default=None, description="批号, the batch (lot): what a supervisor seals or recalls; named first "
                                                               "in the alert of a failure")
    production_date: IsoDate | None = Field(
        default=None, description="生产日期 (YYYY-MM-DD): selects the standard's edition in force (e.g. GB 2760-2014 or -2024 for "
                                  "脱氢乙酸); not after sampled_on.  Absent: the sampling date selects it, and when the category's "
                                  "look-back before it (365 days) spans two editions, the sample is judged under each "
                                  "(undetermined where they disagree)")
    sampled_on: IsoDate = Field(
        description="抽样日期 (YYYY-MM-DD, the local date): places the sample in the credit file's history, the pass-rate "
                    "periods and the control charts; not after the report's local date (occurred_at) nor after tomorrow")
    lab_received_on: IsoDate | None = Field(
        default=None,
        description="收样日期 (样品接收日期, YYYY-MM-DD, the local date the lab received the sample): not before sampled_on, not "
                    "after the report's local date (occurred_at).  Splits the report's time into sampling → receipt (送样, at most "
                    "sampling_turnaround.to_lab_working_days, 5 working days) and receipt → report (检验, at most "
                    "report_working_days, 20: 《食品安全抽样检验管理办法》); absent, the report is judged from the sampling date "
                    "against the two together (25).  Judged on a sample's first original report; kept, not compared, when it is "
                    "resent or corrected")
    sampled_business: OptionalShortText = Field(default=None, description="被抽样单位名称, where the sample was taken (a shop, the "
                                                                           "factory); kept, not judged")
    announcement_no: OptionalShortText = Field(default=None, description="公告号 〔YYYY〕N号 of the published announcement; kept, "
                                                                          "not judged")
    retest: StrictBool = Field(
        default=False,
        description="复检: true for a re-test of the retained half of the sample, under the original's sample_no.  Its conclusion "
                    "is final, in whichever order the two arrive, unless it is not admitted: after a microbiological failure, of "
                    "a sample that passed, by the same lab, or reported more than retest.result_within_days (45) days after "
                    "the original (by occurred_at)")
    items: list[TestItem] = Field(min_length=1, max_length=200,
                                  description="检验项目, the report's result lines, one per item_code (1–200; an item_code at most once)")
    remarks: Annotated[str, Field(max_length=2000)] | None = Field(default=None, description="备注 as printed; kept, not judged "
                                                                                             "(nor compared when a report is resent)")

    @field_validator("items")
    @classmethod
    def _distinct_items(cls, items: list[TestItem]) -> list[TestItem]:
        seen: set[str] = set()
        for item in items:
            if item.item_code in seen:
                raise FieldError(f"item_code {item.item_code!r} appears twice in one sample", f"同一样品中检验项目 {item.item_code} 出现两次")
            seen.add(item.item_code)
        return items

    @field_validator("sampled_on")
    @classmethod
    def _produced_before_sampled(cls, sampled_on: dt.date, info: ValidationInfo) -> dt.date:
        # a product cannot be sampled before it was made: one of the two dates is mistyped, and
        # the production date would choose the standard's edition
        produced = info.data.get("production_date")
        if produced is not None and produced > sampled_on and info.context and info.context.get("door"):
            raise FieldError(f"sampled_on {sampled_on.isoformat()} is before production_date {produced.isoformat()}: one of the two is wrong",
                             f"抽样日期 {sampled_on.isoformat()} 早于生产日期 {produced.isoformat()}，两者必有一处有误")
        return sampled_on

    @field_validator("lab_received_on")
    @classmethod
    def _received_after_sampled(cls, received: dt.date | None, info: ValidationInfo) -> dt.date | None:
        # a lab cannot receive a sample before it was taken: one of the two dates is mistyped, and the time
        # limits would be counted from it
        sampled = info.data.get("sampled_on")
        if received is not None and sampled is not None and received < sampled and info.context and info.context.get("door"):
            raise FieldError(f"lab_received_on {received.isoformat()} is before sampled_on {sampled.isoformat()}: one of the two is wrong",
                             f"收样日期 {received.isoformat()} 早于抽样日期 {sampled.isoformat()}，两者必有一处有误")
        return received


def without_format_characters(text: str) -> str:
    """A complaint's text as the door keeps it: its format characters taken out, then the spaces they
    left around it.  Also what ``qrisk.pipeline.content_digest`` compares, so that a complaint logged with
    a BOM before the door took them out and its retry read at the door are one event."""
    return _FORMAT.sub("", text).strip() if _FORMAT.search(text) else text


def _has_text(value: Any, info: ValidationInfo) -> Any:
    # a complaint is what the complainant said: an empty (or all-blank: text is stripped) one is a
    # lost field, refused as the other texts a record rests on (violation, an interview's reason:
    # min_length 1) are, with their error.  At the door only: a log may hold one from before.
    if isinstance(value, str) and _at_door(info) and _FORMAT.search(value):
        # Format characters (see FORMAT_CHARACTERS) are taken out, not refused: a hotline system pastes
        # what the complainant typed or copied, BOMs and zero-width spaces included, and a complaint turned
        # away for what no one can see is a complaint lost.  They say nothing a supervisor reads; kept, a
        # right-to-left override would reorder the text in the credit report and the robot's message.
        # (Escaping them, "<U+202E>", would put noise in both for a BOM that meant nothing.)
        value = without_format_characters(value)
        _rewritten(info, "payload.text")
    if value == "" and _at_door(info):
        raise PydanticCustomError("string_too_short", "String should have at least {min_length} character", {"min_length": 1})
    return value


ComplaintText = Annotated[str, Field(max_length=4000, json_schema_extra={"minLength": 1, "pattern": _HAS_TEXT_PATTERN}), AfterValidator(_has_text)]


class ComplaintReceived(Model):
    """投诉举报 received (投诉登记): a consumer's complaint about the enterprise or its product."""

    complaint_id: ShortText = Field(description="投诉举报编号, e.g. the 12315 工单号; complaint.resolved names the complaint by it")
    kind: Annotated[Literal["complaint", "report"], Stripped] = Field(
        default="complaint",
        description="诉求类型: complaint = 投诉 (a consumer's own dispute with the enterprise, mediated: 《市场监督管理投诉举报处理暂行办法》, "
                    "accepted or not within 7 working days of receipt, mediation ended within 45 working days of acceptance); "
                    "report = 举报 (a report of an offence, investigated: 《市场监督管理行政处罚程序规定》, checked (核查) and the "
                    "decision whether to open a case (立案) made within 15 working days of receipt, 15 more with the head's "
                    "approval).  The time limits are complaint_deadlines' and run from occurred_at's local date on the "
                    "working-day calendar.  Absent: complaint")
    channel: Annotated[Literal["12315", "hotline", "online", "letter", "visit", "other"], Stripped] = Field(
        description="渠道 (how it came): 12315 = 全国12315平台, hotline = 热线, online = 网络, letter = 来信, visit = 来访, other = 其他")
    category: Annotated[Literal["foreign_matter", "spoilage", "illness", "labelling", "taste_odour", "hygiene", "other"], Stripped] = Field(
        description="投诉类别: foreign_matter = 异物, spoilage = 变质, illness = 食用后不适, labelling = 标签标识, taste_odour = 异味, "
                    "hygiene = 卫生, other = 其他.  A verified complaint of a category warnings.complaint_illness.categories names "
                    "(default illness) or warnings.complaint_hazard.categories names (default foreign_matter, spoilage) raises an "
                    "alert on its own")
    text: ComplaintText = Field(description="投诉内容, what the complainant said, kept as sent (line breaks included, surrounding "
                                            "spaces stripped); 1–4000 characters")
    product: OptionalShortText = Field(default=None, description="涉及产品, the product complained of, as the complainant named it")
    verified: StrictBool = Field(
        default=False,
        description="属实 at receipt: true when the complaint was already substantiated (核实属实) when received.  A verified "
                    "complaint of a quality category (not other: price, delivery, service) counts at once toward a complaint "
                    "cluster (complaint_cluster: k = 3 verified within 30 days by default) and the risk grade (verified "
                    "complaints); false: it counts once complaint.resolved says verified.  Every complaint of a quality category, "
                    "verified or not, counts in the complaints-per-month control chart and toward a burst of complaints "
                    "(complaint_burst: 3 within 7 days by default, 快速反应)")


class ComplaintResolved(Model):
    """投诉办结: the bureau's conclusion on a complaint it received."""

    complaint_id: ShortText = Field(description="投诉举报编号 of the complaint.received it concludes (an unknown one is kept and "
                                                "reported: complaint.unknown_resolved)")
    verified: StrictBool = Field(
        description="after investigation: was the complaint substantiated (属实)?  true: it counts as verified from now (clusters, "
                    "risk grade), if it did not already; false: a complaint verified at receipt no longer counts, and a "
                    "complaints-per-month signal whose complaints all prove unfounded is withdrawn")
    outcome: Annotated[str, Field(max_length=2000)] = Field(default="", description="处理结果, how it was handled, as the credit file "
                                                                                    "shows it")
    accepted_on: IsoDate | None = Field(
        default=None,
        description="受理日期 of a 投诉 (kind complaint; YYYY-MM-DD, the local date the bureau decided to accept it): the 45 working "
                    "days of mediation run from it, and it is judged against the 7 working days to accept.  Not after the "
                    "conclusion's local date (occurred_at).  Absent: the mediation limit runs from the latest lawful acceptance "
                    "(7 working days after receipt), and the acceptance is judged only when the conclusion itself came within "
                    "the 7.  Ignored for a 举报")
    extended: StrictBool = Field(
        default=False,
        description="延长核查期限 of a 举报 (kind report): true when the head of the bureau approved 15 more working days to "
                    "check it and decide whether to open a case (经负责人批准延长); the conclusion is then judged against 15 + 15.  "
                    "Ignored for a 投诉")


class ComplaintWithdrawn(Model):
    """撤回投诉登记: the bureau takes a complaint off an enterprise's credit file — filed under the wrong enterprise (the
    same complaint number under W07 and W08), or one complaint registered twice, through two channels under two numbers
    (12315 and 来信, the same words).  The log stays append-only: the complaint stays on file, marked withdrawn with the
    reason, and no longer counts — the complaint counts, the complaints-per-month chart (a signal it alone carried over
    the limit is withdrawn), the risk grade, a 投诉聚集 or 投诉集中 (whose alert closes when too few are left) and its
    食用后不适 alert.  A complaint filed under the wrong enterprise is sent again under the right one (a new event_id)."""

    complaint_id: ShortText = Field(description="投诉举报编号 of the complaint to withdraw, as on file under the envelope's enterprise_id.  "
                                                "A withdrawal whose complaint is not on file yet is kept and applies when it arrives")
    reason: Annotated[str, Field(min_length=1, max_length=1000, json_schema_extra={"pattern": _HAS_TEXT_PATTERN})] = Field(
        description="撤回原因, in Chinese, e.g. 被投诉企业填报错误（应为 W08） or 与投诉编号 TS2026032000451 为同一投诉，经不同渠道重复登记: "
                    "what the credit file and the alerts' closing notes quote")
    duplicate_of: OptionalShortText = Field(description="投诉举报编号 of the complaint of the same enterprise it repeats (a complaint "
                                                        "registered twice), when that is the reason; shown beside it")


class ComplaintAccepted(Model):
    """受理决定: the bureau's decision on a 投诉 (kind complaint) within 7 working days of receipt — accepted (受理: mediation
    follows, its 45 working days counted from decided_on) or refused (不予受理: no mediation follows, the complaint's
    clocks stop; it stays on file, counted as received, until a conclusion, if any, comes).  The same complaint decided
    twice keeps its earliest-dated decision in force, whatever order they arrive in; a decision before its complaint is
    kept and applies when it comes.  Ignored for a 举报 (its check runs from receipt).  A decision recorded wrong (its date,
    its reason) is corrected by sending the right one with ``corrects`` naming the wrong one's event_id: both kept, the
    corrected one never counts again; two decisions of the same date are one corrected by the other, the later logged in force."""

    complaint_id: ShortText = Field(description="投诉举报编号 of the complaint.received it decides on (an unknown one is kept until it "
                                                "arrives)")
    decision: Annotated[Literal["accepted", "refused"], Stripped] = Field(
        description="受理决定: accepted = 受理 (mediation follows), refused = 不予受理 (no mediation: reason says why)")
    decided_on: IsoDate = Field(
        description="决定日期 (YYYY-MM-DD, local): judged against the 7 working days to accept; an acceptance's 45 working days of "
                    "mediation run from it.  Not after occurred_at's local date; a date before the complaint's receipt is "
                    "answered with a warning (the door cannot see the complaint)")
    reason: Annotated[str, Field(max_length=1000, json_schema_extra={"pattern": _HAS_TEXT_PATTERN})] = Field(
        default="", description="不予受理的理由 (required when refused), e.g. 不属于本行政机关管辖 or 超过法定投诉时效: what the credit "
                                "file and the register quote")
    corrects: uuid.UUID | None = Field(
        default=None, description="更正: the event_id of an earlier complaint.accepted of this complaint recorded wrong (its date, "
                                  "decision or reason): kept on file, never counted again; this one takes its place")

    @model_validator(mode="after")
    def _refusal_says_why(self) -> "ComplaintAccepted":
        if self.decision == "refused" and not self.reason.strip():
            raise FieldError("a refusal (decision refused) needs its reason: why the complaint is not accepted",
                             "不予受理须说明理由（reason）", field="reason")
        return self


class Finding(Model):
    """A problem an inspection found (检查发现的问题)."""

    code: _one_line_text(40, min_length=1) = Field(description="the checklist clause (检查项目条款号), e.g. 4.2.1")
    description: LongText = Field(description="问题描述, what was found, e.g. 原料未离地存放")
    severity: Annotated[Literal["minor", "major", "critical"], Stripped] = Field(
        description="严重程度: minor = 一般, major = 主要, critical = 严重.  A major or critical finding raises "
                    "inspection.nonconforming even when the result is 符合 or 基本符合, and adds risk points (risk.dynamic.inspection)")


class InspectionCompleted(Model):
    """现场检查: an on-site inspection of the enterprise, with its result and findings."""

    inspection_id: ShortText = Field(description="检查编号; enforcement.decided's inspection_ids name inspections by it")
    inspector: ShortText = Field(description="检查人员, who inspected, e.g. 王某、李某")
    kind: Annotated[Literal["routine", "special", "follow_up", "acceptance"], Stripped] = Field(
        default="routine", description="检查类型: routine = 日常检查, special = 专项检查, follow_up = 跟踪检查, acceptance = 验收检查; "
                                       "shown in the credit file.  Any inspection on or after an interview's day is its follow-up")
    findings: list[Finding] = Field(default_factory=list, max_length=200, description="发现的问题 (none: an empty list); risk points "
                                                                                       "by severity (minor 0, major 2, critical 5 by default)")
    result: Annotated[Literal["符合", "基本符合", "不符合"], Stripped] = Field(
        description="检查结果: 符合 (conforming), 基本符合 (basically conforming), 不符合 (nonconforming).  不符合 raises "
                    "inspection.nonconforming; the result adds risk points (基本符合 2, 不符合 8 by default), and the "
                    "inspection is the last one the grade's inspection plan counts from")


class RectificationOrdered(Model):
    """责令整改: the bureau ordered the enterprise to put something right by a deadline."""

    rectification_id: ShortText = Field(description="整改编号 (e.g. 责令改正通知书文号); completion and verification name it.  An id "
                                                    "on file already: the same order again is a repeat (rectification.duplicate_order); "
                                                    "one that differs, dated on or after the order on file, corrects it (rectification."
                                                    "corrected: a 延期 or a mistyped deadline)")
    what: LongText = Field(description="整改内容, what must be put right; shown in the overdue alert")
    deadline: IsoDate = Field(description="整改期限 (YYYY-MM-DD, a local date): a rectification not completed by then is overdue "
                                          "(rectification.overdue: an alert, risk and credit points), by event time: a later "
                                          "event of the enterprise or a clock.tick notices it.  Not before occurred_at's local date (refused at the door)")
    cause: Annotated[str, Field(max_length=2000)] = Field(default="", description="what triggered it: sample no., inspection id …")


class RectificationCompleted(Model):
    """整改完成: the enterprise reports the rectification done (then awaiting 复查)."""

    rectification_id: ShortText = Field(description="整改编号 of the rectification.ordered (an unknown one is kept and "
                                                    "applied when the order comes: rectification.unknown, and the door warns "
                                                    "rectification_unknown)")
    evidence: LongText = Field(description="整改情况, what the enterprise did and the evidence it gives (records, photos referred "
                                           "to)")


class RectificationVerified(Model):
    """整改复查: the bureau checked the rectification."""

    rectification_id: ShortText = Field(description="整改编号 of the rectification.ordered (an unknown one waits for it, as a "
                                                    "completion does)")
    verifier: ShortText = Field(description="复查人员, who checked it")
    accepted: StrictBool = Field(
        default=True, description="复查结论: true = 通过 (the rectification is closed); false = 未通过: back to the enterprise, still "
                                  "open (and still due by its deadline), rectification.rejected raises an alert and credit points")
    note: Annotated[str, Field(max_length=2000)] = Field(default="", description="复查意见; quoted in the alert of a rejection")
    new_deadline: IsoDate | None = Field(
        default=None, description="重新限期 (YYYY-MM-DD, a local date), with accepted false: the deadline the bureau sets for the "
                                  "rectification to be done again, by which it is then overdue.  Without it, a rectification completed "
                                  "within its deadline is not made overdue by that deadline because the bureau rejected it later "
                                  "(the bureau's review time is not the enterprise's delay).  Not before occurred_at's local date, "
                                  "and not with accepted true (both refused at the door)")


# --------------------------------------------------------------------------- enforcement (行政处罚) and interviews (约谈)

PenaltyKind = Literal["warning", "fine", "confiscation", "suspension", "licence_revoked", "other"]
"""警告, 罚款, 没收 (违法所得 / 违法生产经营的食品、工具、设备、原料), 责令停产停业, 吊销许可证, 其他."""

PENALTY_ZH = {"warning": "警告", "fine": "罚款", "confiscation": "没收", "suspension": "责令停产停业", "licence_revoked": "吊销许可证",
              "other": "其他处罚"}

_PENALTY_WITHOUT_AMOUNT = ("warning", "suspension", "licence_revoked")
Yuan = Annotated[float, Field(gt=0, le=10**10, allow_inf_nan=False, strict=True)]


def _if_kind(kinds: tuple[str, ...], then: dict[str, Any]) -> dict[str, Any]:
    return {"if": {"properties": {"kind": {"enum": list(kinds)}}, "required": ["kind"]}, "then": then}


class Penalty(Model):
    """One penalty of a decision (处罚内容)."""

    # _amount's checks, in the exported schema: a body it accepts is accepted
    model_config = ConfigDict(json_schema_extra={"allOf": [
        _if_kind(("fine",), {"required": ["amount_yuan"], "properties": {"amount_yuan": {"type": "number"}}}),
        _if_kind(_PENALTY_WITHOUT_AMOUNT, {"properties": {"amount_yuan": {"type": "null"}}})]})

    kind: Annotated[PenaltyKind, Stripped] = Field(
        description="处罚种类: warning = 警告, fine = 罚款 (with amount_yuan), confiscation = 没收 (违法所得, 违法生产经营的食品、工具、设备、"
                    "原料), suspension = 责令停产停业, licence_revoked = 吊销许可证 (routine sampling and inspection are no longer "
                    "due), other = 其他处罚.  The decision's heaviest penalty gives its risk points")
    amount_yuan: Yuan | None = Field(default=None, validate_default=True,
                                     description="fine: the amount in yuan (required); confiscation: the value confiscated, if stated")
    note: OptionalShortText = Field(default=None, description="what exactly, e.g. 没收违法生产经营的桶装水 120 桶, 责令停产停业 15 日")

    @field_validator("amount_yuan")
    @classmethod
    def _amount(cls, amount: float | None, info: ValidationInfo) -> float | None:
        kind = info.data.get("kind")  # (absent when the kind itself was refused)
        if kind == "fine" and amount is None:
            raise FieldError("a fine needs amount_yuan, the amount in yuan", "罚款须注明金额 amount_yuan（元）")
        if kind in _PENALTY_WITHOUT_AMOUNT and amount is not None:
            raise FieldError(f"a penalty of kind {kind} carries no amount_yuan", f"处罚种类 {kind} 不应注明金额 amount_yuan")
        return amount


class EnforcementDecided(Model):
    """行政处罚决定: the bureau decided a penalty against the enterprise (决定书)."""

    decision_no: ShortText = Field(description="行政处罚决定书文号, e.g. 某市监处罚〔2025〕12号")
    decided_on: IsoDate = Field(description="决定日期 (YYYY-MM-DD, not after occurred_at's local date): a listing as 严重违法失信 runs "
                                            "from it (3 years by default), its risk points count from it (risk.dynamic.window_days); the "
                                            "campaign's acceptance checks count decisions by it")
    authority: OptionalShortText = Field(default=None, description="作出决定的机关, e.g. 示范县市场监督管理局")
    violation: Annotated[str, Field(min_length=1, max_length=4000, json_schema_extra={"pattern": _HAS_TEXT_PATTERN})] = Field(description="违法行为（违法事实）, the facts of the "
                                                                                      "violation; shown in the credit file and the alert")
    legal_basis: Annotated[str, Field(min_length=1, max_length=1000, json_schema_extra={"pattern": _HAS_TEXT_PATTERN})] = Field(
        description="the provisions cited (违反的条款与处罚依据), e.g. 《中华人民共和国食品安全法》第一百二十四条第一款第（三）项")
    penalties: list[Penalty] = Field(min_length=1, max_length=20, description="处罚内容, the penalties decided (1–20)")
    serious_dishonesty: StrictBool = Field(
        default=False, description="a 严重违法 case: the enterprise is listed as 严重违法失信 (serious dishonesty); its risk grade goes to D")
    sample_nos: list[ShortText] = Field(default_factory=list, max_length=50, description="抽样编号 of the samples the case rests on")
    inspection_ids: list[ShortText] = Field(default_factory=list, max_length=50, description="检查编号 of the inspections the case rests on")


RevokedBy = Literal["reconsideration", "litigation", "self_correction"]
REVOKED_BY_ZH = {"reconsideration": "行政复议", "litigation": "行政诉讼", "self_correction": "行政机关自行纠正"}


class EnforcementRevoked(Model):
    """撤销行政处罚决定: a decision on file is revoked — by 行政复议, by a court (行政诉讼), or corrected by the
    authority itself.  The decision stays on file, marked revoked with its reference; it no longer weighs in the
    risk grade, a listing as 严重违法失信 it made ends, a licence it revoked is the enterprise's again, and the
    campaign's checks no longer count it.  A decision varied (变更) is revoked and the new one posted as an
    enforcement.decided of its own number."""

    decision_no: ShortText = Field(description="行政处罚决定书文号 of the enforcement.decided being revoked, as on file")
    revoked_on: IsoDate = Field(description="撤销日期 (YYYY-MM-DD, not after occurred_at's local date): the date of the 复议决定 / "
                                            "判决 / 撤销决定")
    revoked_by: Annotated[RevokedBy, Stripped] = Field(description="how: reconsideration = 行政复议, litigation = 行政诉讼（判决撤销）, "
                                              "self_correction = 行政机关自行纠正")
    reference_no: ShortText = Field(description="文号 of what revoked it: 行政复议决定书, 判决书 or 撤销决定书, e.g. 某府复决〔2026〕8号")
    reason: Annotated[str, Field(min_length=1, max_length=2000, json_schema_extra={"pattern": _HAS_TEXT_PATTERN})] = Field(
        description="撤销理由, in Chinese: what the credit file and the alert's closing note quote")


class EnforcementListingRemoved(Model):
    """提前移出严重违法失信名单 (信用修复): the enterprise's listing made by a decision on file ends before its term, on
    removed_on.  Unlike a revocation the decision stands: its penalty keeps its risk points and stays on file; only the
    listing, which put the grade straight to D, ends."""

    decision_no: ShortText = Field(description="行政处罚决定书文号 of the enforcement.decided that made the listing, as on file")
    removed_on: IsoDate = Field(description="移出日期 (YYYY-MM-DD, not after occurred_at's local date): the listing holds no more from it")
    reference_no: ShortText = Field(description="文号 of the 信用修复 decision (准予信用修复决定书 / 移出决定书), e.g. 示范县市监信修〔2027〕3号")
    reason: Annotated[str, Field(min_length=1, max_length=2000, json_schema_extra={"pattern": _HAS_TEXT_PATTERN})] = Field(
        description="移出理由, in Chinese: what the credit file quotes (e.g. 已履行处罚决定并完成信用修复承诺)")


class InterviewHeld(Model):
    """约谈 (责任约谈, 食品安全法 第一百一十四条): the bureau called in the enterprise's legal representative or
    principal over a risk it did not remove; the enterprise committed to measures."""

    interview_id: ShortText = Field(description="约谈记录编号, the interview record's number")
    held_on: IsoDate = Field(description="约谈日期 (YYYY-MM-DD, not after occurred_at's local date): the first inspection on or after "
                                         "it is the interview's follow-up, and its risk points count from it")
    held_by: ShortText = Field(description="约谈单位, e.g. 示范县市场监督管理局")
    officials: list[ShortText] = Field(default_factory=list, max_length=20, description="约谈人, the officials who held it")
    interviewee: OptionalShortText = Field(default=None, description="被约谈人及职务, e.g. 法定代表人 张某")
    reason: Annotated[str, Field(min_length=1, max_length=4000, json_schema_extra={"pattern": _HAS_TEXT_PATTERN})] = Field(description="约谈事由, the risk the interview was about")
    related_event_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50, description="events the reason rests on")
    commitments: Annotated[str, Field(max_length=4000)] = Field(default="", description="what the enterprise committed to (整改承诺)")
    follow_up_by: IsoDate | None = Field(default=None, description="跟踪检查期限 (YYYY-MM-DD, not before held_on): the commitments "
                                                                   "are checked by then; no inspection by then raises "
                                                                   "interview.follow_up_overdue")

    @field_validator("follow_up_by")
    @classmethod
    def _after_held(cls, follow_up_by: dt.date | None, info: ValidationInfo) -> dt.date | None:
        held = info.data.get("held_on")
        if follow_up_by is not None and held is not None and follow_up_by < held:
            raise FieldError(f"follow_up_by {follow_up_by.isoformat()} is before held_on {held.isoformat()}",
                             f"跟踪期限 {follow_up_by.isoformat()} 早于约谈日期 {held.isoformat()}")
        return follow_up_by


class SamplingRetracted(Model):
    """撤销报告: the bureau takes a report off an enterprise's credit file, because it was filed under the wrong
    enterprise (a lab's mistake a correction cannot undo: a correction only replaces a report of the same
    enterprise).  The log stays append-only: the report stays on file, marked retracted with the reason, and no
    longer counts (counts, pass rate, charts, risk grade; its failure's alert closes).  Every report of the sample
    number under this enterprise is retracted — the original, its corrections and its re-test (复检), whether
    they are on file already or arrive later: a sample number is unique, so every one of its reports here is
    misfiled.  Send the report again under the right enterprise (a new event_id)."""

    sample_no: ShortText = Field(description="抽样编号 of the report(s) to retract, as on file under the envelope's enterprise_id.  "
                                             "A retraction whose report is not on file yet is kept and applies when it arrives")
    reason: Annotated[str, Field(min_length=1, max_length=1000, json_schema_extra={"pattern": _HAS_TEXT_PATTERN})] = Field(
        description="撤销原因, in Chinese, e.g. 报告企业名称填报错误（应为 E-330110-002）: what the credit file and the alert's "
                    "closing note quote")


# --------------------------------------------------------------------------- the upgrade campaign (提档升级)

CampaignDimension = Literal["staff", "control", "stability", "technology", "brand"]
"""What tiering looks at: staff quality, food-safety control capability, product-quality stability,
technology level, brand influence."""

Count = Annotated[int, Field(ge=0, le=1_000_000, strict=True), WholeNumber]


class CampaignCommitment(Model):
    """承诺书: the enterprise signed the campaign's commitment letter (宣传发动)."""

    signed_on: IsoDate = Field(description="签订日期 (YYYY-MM-DD); with it the enterprise reaches the campaign's first stage "
                                           "(宣传发动)")
    signatory: ShortText = Field(description="签字人（法定代表人或负责人）")
    document_no: OptionalShortText = Field(default=None, description="承诺书编号")


# a score and an uncertainty were lax floats ("58" and true read as numbers) where every other number is
# strict: strict at the door now, as the exported schema always said
_SCORE = _number_strict_at_door({"type": "number", "minimum": 0, "maximum": 100}, ge=0, le=100)
# (gt=0's exclusiveMinimum stays: _WITHIN_EXACT's lower bound would replace it)
_UNCERTAINTY = _number_strict_at_door({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": MAX_EXACT_INT}, gt=0)


class CampaignAssessment(Model):
    """调查分档 (kind tiering) or 检查验收 (kind acceptance): the tier the bureau assigns, with the
    scores behind it.  The tier becomes the enterprise's campaign tier (and the risk grade's credit term)."""

    kind: Annotated[Literal["tiering", "acceptance"], Stripped] = Field(
        description="tiering = 调查分档 (the first one gives the starting tier), acceptance = 检查验收 (with passed)")
    assessed_on: IsoDate = Field(description="评定日期 (YYYY-MM-DD): the newest assessment by this date decides the tier (one "
                                             "loaded late does not undo a later one)")
    tier: Annotated[Literal["A", "B", "C", "D"], Stripped] = Field(
        description="the tier assigned: A, B, C or D (A the best); becomes the enterprise's campaign_tier, except a failed acceptance's")
    scores: dict[Annotated[CampaignDimension, Stripped], _SCORE] = Field(
        default_factory=dict, description="0–100 per dimension: staff = 人员素质, control = 食品安全控制能力, stability = 产品质量稳定性, "
                                          "technology = 技术水平, brand = 品牌影响力")
    passed: StrictBool | None = Field(default=None, description="acceptance: 验收通过 (required for an acceptance).  A passed one the "
                                                                "KPIs or the record do not bear out raises campaign.accepted_with_gaps")
    assessor: ShortText = Field(description="评定人 or the assessing body")
    note: Annotated[str, Field(max_length=2000)] = Field(default="", description="备注")

    @field_validator("scores", mode="before")
    @classmethod
    def _scores_once(cls, value: Any) -> Any:
        # keys are read without surrounding spaces: "staff" and " staff " are one key given twice, which copy is
        # meant only the sender knows (the door refuses a key given twice, duplicate_key)
        if isinstance(value, dict):
            seen: dict[Any, Any] = {}
            for key in value:
                same = _stripped(key)
                if same in seen:
                    raise PydanticCustomError("duplicate_key", "key given twice in one object ('{first}' and '{second}' are one key): "
                                              "which copy is meant only the sender knows; send it once",
                                              {"first": seen[same], "second": key})
                seen[same] = key
        return value

    @model_validator(mode="after")
    def _acceptance_passed(self, info: ValidationInfo) -> "CampaignAssessment":
        if self.kind == "acceptance" and self.passed is None:
            raise FieldError("an acceptance (检查验收) must say passed: true or false",
                             "检查验收须注明是否通过（passed: true 或 false）", field="passed")
        # only an acceptance has a result: a tiering with one is a mistyped kind or a stray field, and which
        # only the sender knows (door only: a log that already holds one re-reads)
        if self.kind == "tiering" and self.passed is not None and _at_door(info):
            raise FieldError("only an acceptance has a result: a tiering (调查分档) carries no passed",
                             "只有检查验收有验收结论：调查分档不应注明 passed", field="passed")
        return self


class CampaignTraining(Model):
    """Staff training, the online food-safety exam and key-post certificates, as of a date
    (the latest report replaces earlier ones)."""

    as_of: IsoDate = Field(description="统计截至日期 (YYYY-MM-DD): the report with the latest date counts")
    staff_total: Count = Field(description="从业人员总数, the staff (at least 1)", json_schema_extra={"minimum": 1})
    staff_trained: Count = Field(description="已培训人数, staff trained (KPI: at least 90 % of staff_total)")
    exam_takers: Count = Field(default=0, description="参加线上食品安全考试人数, staff who took the online food-safety exam")
    exam_first_pass: Count = Field(default=0, description="passed at the first attempt (一次通过; KPI: at least 80 % of exam_takers)")
    key_posts: Count = Field(default=0, description="posts that require a certificate (持证上岗)")
    key_posts_certified: Count = Field(default=0, description="of those, posts held by a certified person (KPI: all)")

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> "CampaignTraining":
        # a part cannot exceed its whole: a rate over 100 % is a typing error.  Exam takers beyond the
        # staff are refused at the door only (a check added later: what a log already holds re-reads)
        door_only = {("exam_takers", "staff_total")}
        if self.staff_total == 0 and _at_door(info):
            # no staff, no rates: every KPI of the report would be "no data" and the report still count as the newest
            raise FieldError("staff_total must be at least 1: a training report of an enterprise without staff has no rates",
                             "从业人员总数须至少为 1：没有从业人员的培训考试报告无从计算培训率和考试通过率", field="staff_total")
        for part, whole in (("staff_trained", "staff_total"), ("exam_takers", "staff_total"), ("exam_first_pass", "exam_takers"),
                            ("key_posts_certified", "key_posts")):
            if (part, whole) in door_only and not _at_door(info):
                continue
            if getattr(self, part) > getattr(self, whole):
                raise FieldError(f"{part} ({getattr(self, part)}) cannot exceed {whole} ({getattr(self, whole)})",
                                 f"{_TRAINING_ZH[part]}（{getattr(self, part)}）不能多于{_TRAINING_ZH[whole]}（{getattr(self, whole)}）",
                                 field=part)
        return self


_TRAINING_ZH = {"staff_total": "从业人员总数", "staff_trained": "已培训人数", "exam_takers": "参加考试人数",
                "exam_first_pass": "一次通过人数", "key_posts": "关键岗位数", "key_posts_certified": "持证上岗岗位数"}


class CampaignActivity(Model):
    """What happened on the way: a visit (观摩), expert assistance (帮扶指导), a self-inspection
    (自查), a comparison test against an accredited lab (比对试验)."""

    # the door's checks of the fields each kind has (_complete, _consistent_at_door), in the exported schema
    model_config = ConfigDict(json_schema_extra=lambda schema: schema.update(allOf=_activity_kinds_schema()))

    kind: Annotated[Literal["visit", "expert_assistance", "self_inspection", "comparison_test"], Stripped] = Field(
        description="visit = 观摩, expert_assistance = 帮扶指导, self_inspection = 自查 (with findings, rectified), comparison_test = "
                    "比对试验 (with lab, item_code, enterprise_value, lab_value)")
    on: IsoDate = Field(description="the day of the activity (YYYY-MM-DD)")
    note: Annotated[str, Field(max_length=2000)] = Field(default="", description="说明")
    findings: Count | None = Field(default=None, description="self_inspection: problems found")
    rectified: Count | None = Field(default=None, description="self_inspection: of those, put right")
    lab: OptionalShortText = Field(default=None, description="comparison_test: the accredited lab")
    item_code: OptionalShortText = Field(default=None, description="comparison_test: the item compared, e.g. oxygen_consumption")
    enterprise_value: FiniteFloat | None = Field(
        default=None, json_schema_extra={"minimum": 0}, description="comparison_test: the enterprise's own result, in the catalogue's unit for item_code (the "
                                  "event carries no unit)")
    lab_value: FiniteFloat | None = Field(default=None, json_schema_extra={"minimum": 0}, description="comparison_test: the accredited lab's result, in the same unit")
    enterprise_uncertainty: _UNCERTAINTY | None = Field(
        default=None, description="comparison_test: expanded uncertainty U (k=2) of the enterprise's result")
    lab_uncertainty: _UNCERTAINTY | None = Field(
        default=None, description="comparison_test: expanded uncertainty U (k=2) of the lab's result.  With both uncertainties "
                                  "the comparison is judged by En (|En| ≤ 1 satisfactory), else by the relative deviation "
                                  "(≤ 10 % by default) or, for a colony count, the log10 difference")

    _values_held_exactly = field_validator("enterprise_value", "lab_value", "enterprise_uncertainty", "lab_uncertainty")(_held_exactly)

    @model_validator(mode="after")
    def _complete(self, info: ValidationInfo) -> "CampaignActivity":
        if self.kind == "comparison_test":
            missing = [f for f in ("lab", "item_code", "enterprise_value", "lab_value") if getattr(self, f) is None]
            if missing:
                raise FieldError(f"a comparison_test needs {', '.join(missing)}",
                                 f"比对试验须注明{'、'.join(_ACTIVITY_ZH[f] + f'（{f}）' for f in missing)}", field=missing[0])
        if self.rectified is not None and self.findings is not None and self.rectified > self.findings:
            raise FieldError(f"rectified ({self.rectified}) cannot exceed findings ({self.findings})",
                             f"已整改问题数（{self.rectified}）不能多于自查发现问题数（{self.findings}）", field="rectified")
        if _at_door(info):  # checks added later: a log that already holds such an event re-reads it
            self._consistent_at_door()
        return self

    def _consistent_at_door(self) -> None:
        # a field of another kind is a mistyped kind or a stray value: which one is meant only the sender knows
        for f in _ACTIVITY_FIELDS:
            if getattr(self, f) is not None and self.kind not in _ACTIVITY_FIELDS[f]:
                raise FieldError(f"{f} belongs to {' or '.join(_ACTIVITY_FIELDS[f])}, not to a {self.kind}",
                                 f"{_ACTIVITY_ZH[f]}（{f}）只适用于{'、'.join(_KIND_ZH[k] for k in _ACTIVITY_FIELDS[f])}，"
                                 f"不适用于{_KIND_ZH[self.kind]}（{self.kind}）", field=f)
        if self.kind != "comparison_test":
            return
        # En needs both uncertainties: with one, the test would quietly be judged by the deviation instead
        given = [f for f in ("enterprise_uncertainty", "lab_uncertainty") if getattr(self, f) is not None]
        if len(given) == 1:
            absent = "lab_uncertainty" if given == ["enterprise_uncertainty"] else "enterprise_uncertainty"
            raise FieldError(f"{given[0]} is given without {absent}: En needs both expanded uncertainties (or leave both out)",
                             f"只注明了{_ACTIVITY_ZH[given[0]]}，缺少{_ACTIVITY_ZH[absent]}（{absent}）：En 值须有双方的扩展不确定度（或两者都不填）",
                             field=absent)
        for f in ("enterprise_value", "lab_value"):
            value = getattr(self, f)
            if value is not None and value < 0:
                raise FieldError(f"{f} must not be negative, got {value:g}: a measured content or count is at least 0",
                                 f"{_ACTIVITY_ZH[f]}不能为负数（收到 {value:g}）：含量或菌落数至少为 0", field=f)


def _activity_kinds_schema() -> list[dict[str, Any]]:
    kinds = ("visit", "expert_assistance", "self_inspection", "comparison_test")
    needed = ("lab", "item_code", "enterprise_value", "lab_value")
    rules = [{"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
              "then": {"properties": {f: {"type": "null"} for f, of in _ACTIVITY_FIELDS.items() if kind not in of}}}
             for kind in kinds]
    rules.append({"if": {"properties": {"kind": {"const": "comparison_test"}}, "required": ["kind"]},
                  "then": {"required": list(needed), "properties": {f: {"not": {"type": "null"}} for f in needed}}})
    for one, other in (("enterprise_uncertainty", "lab_uncertainty"), ("lab_uncertainty", "enterprise_uncertainty")):
        rules.append({"if": {"properties": {one: {"type": "number"}}, "required": [one]},
                      "then": {"required": [other], "properties": {other: {"type": "number"}}}})
    return rules


_ACTIVITY_ZH = {"findings": "自查发现问题数", "rectified": "已整改问题数", "lab": "比对实验室", "item_code": "比对项目代码",
                "enterprise_value": "企业检验结果", "lab_value": "实验室检验结果", "enterprise_uncertainty": "企业结果的扩展不确定度",
                "lab_uncertainty": "实验室结果的扩展不确定度"}
_ACTIVITY_FIELDS = {"findings": ("self_inspection",), "rectified": ("self_inspection",),
                    **{f: ("comparison_test",) for f in ("lab", "item_code", "enterprise_value", "lab_value", "enterprise_uncertainty",
                                                         "lab_uncertainty")}}
"""The activity kinds each optional field belongs to (note and on belong to every kind)."""
_KIND_ZH = {"visit": "观摩", "expert_assistance": "帮扶指导", "self_inspection": "自查", "comparison_test": "比对试验"}


AlertAction = Literal["acknowledge", "assign", "start_rectification", "verify", "close", "reopen", "comment", "escalate"]
ALERT_ID_PATTERN = r"^AL-[0-9a-f]{16}$"


class AlertActionTaken(Model):
    """A supervisor's step on an alert (确认、指派、整改、复查、关闭、重新打开、备注、手动升级).  In the log like
    any event, so an alert's lifecycle replays with everything else."""

    alert_id: Annotated[str, Field(pattern=ALERT_ID_PATTERN)] = Field(description="预警编号, as qrisk gave it")
    action: Annotated[AlertAction, Stripped] = Field(
        description="acknowledge = 确认, assign = 指派 (with assignee), start_rectification = 责令整改, verify = 整改复查通过, "
                    "close = 关闭, reopen = 重新打开, comment = 备注, escalate = 手动升级 (with a note: the escalation "
                    "receivers are told)")
    actor: ShortText = Field(description="who took it (the API key's name when posted through /v1/alerts)")
    note: Annotated[str, Field(max_length=2000)] = Field(default="", description="处置说明; closing a 紧急/高 alert through "
                                                                                 "/v1/alerts needs one (alerts.close_note_min_severity)")
    assignee: OptionalShortText = Field(default=None, description="action assign: who owns the alert from now on")


class FluctuationRebaselined(Model):
    """控制限重新确定: a supervisor confirms that the process behind a control chart changed for good — a
    rectification put in a new filtration, a new recipe — so that its results from a sampling date on are a new
    process, judged against limits of their own.  The chart of each (product, item) it names starts a new baseline
    with the first result sampled on or after ``effective_from`` (no signal until the new limits exist, as at a
    series' start); the old phase's points and signals stay on file, and a result sampled before that date, however
    late it arrives, belongs to the old phase.  qrisk never re-estimates limits of its own accord: this event is the
    recorded decision of a person."""

    product: ShortText = Field(description="食品名称 as the sampling reports write it (sampling.result payload.product, e.g. 饮用纯净水): "
                                           "the charts of this product under the envelope's enterprise_id")
    item_code: OptionalShortText = Field(description="检验项目代码 of the one chart to restart (the catalogue's item_code, e.g. bromate); "
                                                     "absent or null: every item charted for the product")
    effective_from: IsoDate = Field(description="抽样日期 (YYYY-MM-DD, a local date) from which results begin the new baseline: a result "
                                                "sampled on or after it is the new process's, one sampled before it the old one's, "
                                                "whenever either arrives.  A chart with no result yet on or after it restarts when one comes")
    reason: Annotated[str, Field(min_length=1, max_length=1000, json_schema_extra={"pattern": _HAS_TEXT_PATTERN})] = Field(
        description="原因, in Chinese, e.g. 整改复查通过，更换过滤系统: what the credit file and the new phase's signals quote")
    confirmed_by: ShortText = Field(description="确认人: the supervisor who confirmed the change of process, e.g. 王某（食品生产监管科）")
    rectification_id: OptionalShortText = Field(description="整改编号 of the rectification the change of process came from, if any; "
                                                            "shown beside the reason")
    alert_id: Annotated[str | None, Field(default=None, pattern=ALERT_ID_PATTERN)] = Field(
        default=None, description="预警编号 (AL-…) of the fluctuation alert that led to it, if any; shown beside the reason")


class Tick(Model):
    """The runtime's clock, written to the log so that replay sees the same time."""


# --------------------------------------------------------------------------- envelopes


NIL_UUID = uuid.UUID(int=0)


def _not_nil(value: uuid.UUID, info: ValidationInfo) -> uuid.UUID:
    # the nil UUID is what a producer sends when it never set the id (a zeroed struct, a default):
    # as the idempotency key, every such event after the first would be a "duplicate" and dropped.
    # At the door only: a log may hold one from before.
    if value == NIL_UUID and _at_door(info):
        raise FieldError("must not be the nil UUID 00000000-0000-0000-0000-000000000000: each event needs its own id (e.g. a random UUID v4)",
                         "不能为全零 UUID 00000000-0000-0000-0000-000000000000：每个事件须有自己的编号（如随机生成的 UUID v4）")
    return value


EventId = Annotated[uuid.UUID, AfterValidator(_not_nil), Field(json_schema_extra={"not": {"const": str(NIL_UUID)}})]


OCCURRED_AT = ("event time, with its UTC offset (YYYY-MM-DDThh:mm:ss±hh:mm, e.g. 2026-03-12T15:20:00+08:00): qrisk folds by "
               "event time, never by arrival; at most an hour past the server's clock; local dates (deadlines, periods) are "
               "its date in the bureau's time")


class Envelope(Model):
    """Every event: who sent it, about which enterprise, when it happened, and its payload."""

    event_id: EventId = Field(
        description="producer-chosen UUID, the idempotency key: the same id again with the same content is accepted once "
                    "(answered duplicate), with other content refused (409), so a corrected report needs a new one; not the "
                    "nil UUID")
    event_type: str = Field(description="what the event is, e.g. sampling.result (抽检结果); selects the payload's model")
    schema_version: Literal[2] = Field(
        default=SCHEMA_VERSION, description="the contract's version: 2, the current one (the default).  Version 1 (a string "
                                            "source, one value per item) is read and upcast; any other is refused")
    enterprise_id: EnterpriseId = Field(
        description="the enterprise the event is about: its 统一社会信用代码 or the bureau's id for it (letters, digits, _ . -; up "
                    "to 64).  The ordering key (Kafka key): one enterprise's events are folded in order")
    occurred_at: AwareDatetime = Field(description=OCCURRED_AT)
    received_at: AwareDatetime | None = Field(default=None, description="set by qrisk when it accepts the event (UTC); a value sent "
                                                                        "is replaced")
    source: Source = Field(description="who sent the event")


def _event(occurred_at: str, payload: str) -> ConfigDict:
    """An event model's config: its exported schema says what occurred_at and the payload are for this type."""
    def extra(schema: dict[str, Any]) -> None:
        properties = schema["properties"]
        kind = properties["event_type"]["const"]
        properties["event_type"]["description"] = f"{kind} ({EVENT_TYPE_ZH[kind]}): selects the payload's model"
        properties["occurred_at"]["description"] = f"{OCCURRED_AT}.  For this event: {occurred_at}"
        properties["payload"]["description"] = payload
    return ConfigDict(json_schema_extra=extra)


class EnterpriseRegistered(Envelope):
    """enterprise.registered (企业登记): an enterprise enters qrisk with its profile; its samples are judged from then on
    (those that arrived before wait for it).  A registration again replaces the profile."""

    model_config = _event("when it was registered (登记时间); the credit file's registration time", "the enterprise's profile")
    event_type: Literal["enterprise.registered"]
    payload: EnterpriseProfile


class EnterpriseUpdated(Envelope):
    """enterprise.updated (企业信息变更): some fields of the profile change."""

    model_config = _event("when the change took effect", "the fields that change")
    event_type: Literal["enterprise.updated"]
    payload: EnterpriseUpdate


class SamplingResultEvent(Envelope):
    """sampling.result (抽检结果): a lab's report of one sample, original or re-test (复检), or its correction."""

    model_config = _event(
        "the report's issue time (报告签发时间).  Of two reports of one sample (the same sample_no, both originals or both "
        "re-tests) the later-dated one is the current one: one dated earlier that arrives later is filed as outdated (at "
        "equal times the later logged wins); a re-test is admitted only within retest.result_within_days (45) days of the "
        "original's; its local date must not be before sampled_on; a failure's risk points count from it",
        "the sample's report")
    event_type: Literal["sampling.result"]
    payload: SamplingResult

    @model_validator(mode="after")
    def _reported_after_sampled(self, info: ValidationInfo) -> "SamplingResultEvent":
        # a result cannot be reported before its sample was taken: the sampling date or the report
        # time is mistyped, and the sampling date places the sample in the credit file's history.
        # Dates are local (a lab writes the Beijing date), so the report's day is occurred_at's local one.
        if not (info.context and info.context.get("door")):
            return self
        offset = info.context.get("utc_offset_hours", LOCAL_UTC_OFFSET_HOURS)
        reported = (self.occurred_at + dt.timedelta(hours=offset)).date()
        sampled = self.payload.sampled_on
        if sampled > reported:
            raise FieldError(f"sampled_on {sampled.isoformat()} is after the result was reported (occurred_at, local date {reported.isoformat()}): "
                             "one of the two is wrong",
                             f"抽样日期 {sampled.isoformat()} 晚于结果报告时间 {reported.isoformat()}（occurred_at 的当地日期），两者必有一处有误",
                             field="payload.sampled_on")
        received = self.payload.lab_received_on
        if received is not None and received > reported:
            raise FieldError(f"lab_received_on {received.isoformat()} is after the result was reported (occurred_at, local date "
                             f"{reported.isoformat()}): a lab reports on a sample it has received",
                             f"收样日期 {received.isoformat()} 晚于结果报告时间 {reported.isoformat()}（occurred_at 的当地日期），两者必有一处有误",
                             field="payload.lab_received_on")
        return self


class SamplingRetractedEvent(Envelope):
    """sampling.retracted (撤销报告): the bureau retracts the report(s) of a sample number filed under this enterprise."""

    model_config = _event("when the bureau decided the retraction (撤销时间)", "the sample number and the reason")
    event_type: Literal["sampling.retracted"]
    payload: SamplingRetracted


class ComplaintReceivedEvent(Envelope):
    """complaint.received (投诉登记): a complaint about the enterprise was received."""

    model_config = _event("when the complaint was received (收到时间): the month it counts in on the complaints-per-month "
                          "chart, and where it falls in a cluster's window", "the complaint")
    event_type: Literal["complaint.received"]
    payload: ComplaintReceived


class ComplaintResolvedEvent(Envelope):
    """complaint.resolved (投诉办结): the conclusion on a complaint, substantiated (属实) or not."""

    model_config = _event("when it was concluded (办结时间); a complaint verified now counts in the risk grade from it",
                          "the conclusion")
    event_type: Literal["complaint.resolved"]
    payload: ComplaintResolved

    @model_validator(mode="after")
    def _accepted_before_concluded(self, info: ValidationInfo) -> "ComplaintResolvedEvent":
        # a complaint is accepted before it is concluded: one of the two dates is mistyped, and the mediation limit
        # would be counted from it
        accepted = self.payload.accepted_on
        if accepted is None or not (info.context and info.context.get("door")):
            return self
        offset = info.context.get("utc_offset_hours", LOCAL_UTC_OFFSET_HOURS)
        concluded = (self.occurred_at + dt.timedelta(hours=offset)).date()
        if accepted > concluded:
            raise FieldError(f"accepted_on {accepted.isoformat()} is after the conclusion (occurred_at, local date {concluded.isoformat()}): "
                             "one of the two is wrong",
                             f"受理日期 {accepted.isoformat()} 晚于办结时间 {concluded.isoformat()}（occurred_at 的当地日期），两者必有一处有误",
                             field="payload.accepted_on")
        return self


class ComplaintAcceptedEvent(Envelope):
    """complaint.accepted (受理决定): the bureau accepted a 投诉 (受理) or refused it (不予受理)."""

    model_config = _event("when the decision was recorded (登记时间); the decision's own date is decided_on", "the decision")
    event_type: Literal["complaint.accepted"]
    payload: ComplaintAccepted

    @model_validator(mode="after")
    def _corrects_another(self) -> "ComplaintAcceptedEvent":
        if self.payload.corrects is not None and self.payload.corrects == self.event_id:
            raise FieldError("corrects is this decision's own event_id: name the earlier decision it corrects",
                             "corrects 填写的是本决定自身的事件编号：请填写被更正的原受理决定的事件编号", field="payload.corrects")
        return self

    @model_validator(mode="after")
    def _decided_by_now(self, info: ValidationInfo) -> "ComplaintAcceptedEvent":
        # a decision is recorded after it is made: a decided_on after the record's own date is a mistyped date, and the
        # mediation limit would be counted from it
        if not (info.context and info.context.get("door")):
            return self
        offset = info.context.get("utc_offset_hours", LOCAL_UTC_OFFSET_HOURS)
        recorded = (self.occurred_at + dt.timedelta(hours=offset)).date()
        decided = self.payload.decided_on
        if decided > recorded:
            raise FieldError(f"decided_on {decided.isoformat()} is after the decision was recorded (occurred_at, local date "
                             f"{recorded.isoformat()}): one of the two is wrong",
                             f"决定日期 {decided.isoformat()} 晚于登记时间 {recorded.isoformat()}（occurred_at 的当地日期），两者必有一处有误",
                             field="payload.decided_on")
        return self


class ComplaintWithdrawnEvent(Envelope):
    """complaint.withdrawn (撤回投诉登记): the bureau withdraws a complaint filed under this enterprise by mistake, or twice."""

    model_config = _event("when the bureau decided the withdrawal (撤回时间)", "the complaint number and the reason")
    event_type: Literal["complaint.withdrawn"]
    payload: ComplaintWithdrawn


class FluctuationRebaselinedEvent(Envelope):
    """fluctuation.rebaselined (控制限重新确定): a supervisor confirms a new baseline for a product's control charts."""

    model_config = _event("when the supervisor confirmed it (确认时间)", "the product, the item, the sampling date the new baseline starts "
                          "from, the reason and who confirmed it")
    event_type: Literal["fluctuation.rebaselined"]
    payload: FluctuationRebaselined


class InspectionCompletedEvent(Envelope):
    """inspection.completed (现场检查): an on-site inspection and its result."""

    model_config = _event("when the inspection took place (检查时间): its local date is the inspection's day (an interview's "
                          "follow-up, the inspection plan's last inspection), and its risk points count from it",
                          "the inspection's result and findings")
    event_type: Literal["inspection.completed"]
    payload: InspectionCompleted


def _recorded_day(event: Envelope, info: ValidationInfo) -> dt.date:
    offset = info.context.get("utc_offset_hours", LOCAL_UTC_OFFSET_HOURS)  # type: ignore[union-attr]
    return (event.occurred_at + dt.timedelta(hours=offset)).date()


def _deadline_not_before(event: Envelope, field: str, zh: str, info: ValidationInfo) -> None:
    """A deadline before the day it was set is overdue the moment it is filed (a high 整改逾期 alert, risk and credit
    points): a typo, refused.  At the door only: a log that already holds one re-reads it."""
    if not _at_door(info):
        return
    day, due = _recorded_day(event, info), getattr(event.payload, field)
    if due is not None and due < day:
        raise FieldError(f"{field} {due.isoformat()} is before the day it was set (occurred_at, local date {day.isoformat()}): "
                         "a deadline is on or after that day",
                         f"{zh} {due.isoformat()} 早于下达日期 {day.isoformat()}（occurred_at 的当地日期）：期限不能早于下达之日，请核对",
                         field=f"payload.{field}")


class RectificationOrderedEvent(Envelope):
    """rectification.ordered (责令整改): the enterprise must put something right by a deadline."""

    model_config = _event("when the order was issued (下达时间); deadline is not before its local date", "the order")
    event_type: Literal["rectification.ordered"]
    payload: RectificationOrdered

    @model_validator(mode="after")
    def _deadline_ahead(self, info: ValidationInfo) -> "RectificationOrderedEvent":
        _deadline_not_before(self, "deadline", "整改期限", info)
        return self


class RectificationCompletedEvent(Envelope):
    """rectification.completed (整改完成): the enterprise reports a rectification done."""

    model_config = _event("when the enterprise completed it: its local date against the deadline decides whether it was in "
                          "time (one dated within the deadline withdraws an overdue mark set before it arrived)",
                          "the rectification and its evidence")
    event_type: Literal["rectification.completed"]
    payload: RectificationCompleted


class RectificationVerifiedEvent(Envelope):
    """rectification.verified (整改复查): the bureau checked a rectification, accepted or not."""

    model_config = _event("when it was checked (复查时间); new_deadline, with accepted false only, is not before its local date",
                          "the verification")
    event_type: Literal["rectification.verified"]
    payload: RectificationVerified

    @model_validator(mode="after")
    def _new_deadline_ahead(self, info: ValidationInfo) -> "RectificationVerifiedEvent":
        if _at_door(info) and self.payload.accepted and self.payload.new_deadline is not None:
            # (the fold ignores it: an accepted rectification has nothing to redo)
            raise FieldError("new_deadline is set with accepted true: a rectification accepted has nothing to redo; send accepted "
                             "false with a new deadline, or no new_deadline",
                             "复查通过（accepted 为 true）时不能重新限期（new_deadline）：未通过的请将 accepted 置为 false，通过的请去掉 new_deadline",
                             field="payload.new_deadline")
        _deadline_not_before(self, "new_deadline", "重新限期", info)
        return self


def _legal_date_by_then(event: Envelope, field: str, zh: str, info: ValidationInfo) -> None:
    """A decision, its revocation or an interview cannot be dated after it was recorded: its date is the legal one, from which its risk
    points count (a decision dated ahead of its record would weigh past its term).  The record's day is occurred_at's
    local one.  At the door only: a log that already holds such an event re-reads it."""
    if not _at_door(info):
        return
    offset = info.context.get("utc_offset_hours", LOCAL_UTC_OFFSET_HOURS)  # type: ignore[union-attr]
    recorded = (event.occurred_at + dt.timedelta(hours=offset)).date()
    dated = getattr(event.payload, field)
    if dated > recorded:
        raise FieldError(f"{field} {dated.isoformat()} is after the event was recorded (occurred_at, local date {recorded.isoformat()}): "
                         "send occurred_at as when it was recorded, on or after that date",
                         f"{zh} {dated.isoformat()} 晚于记录时间 {recorded.isoformat()}（occurred_at 的当地日期）：occurred_at 应为记录时间，"
                         f"不早于{zh}", field=f"payload.{field}")


class EnforcementDecidedEvent(Envelope):
    """enforcement.decided (行政处罚): a penalty decision against the enterprise."""

    model_config = _event("when the decision was recorded (decided_on is its own date, not after it); its risk points count from "
                          "decided_on", "the decision")
    event_type: Literal["enforcement.decided"]
    payload: EnforcementDecided

    @model_validator(mode="after")
    def _not_dated_ahead(self, info: ValidationInfo) -> "EnforcementDecidedEvent":
        _legal_date_by_then(self, "decided_on", "决定日期", info)
        return self


class EnforcementRevokedEvent(Envelope):
    """enforcement.revoked (撤销行政处罚决定): a decision on file is revoked (行政复议, 行政诉讼, 自行纠正)."""

    model_config = _event("when the revocation took effect (撤销时间; revoked_on is its date, not after it)",
                          "the decision number, how and by what it was revoked, why")
    event_type: Literal["enforcement.revoked"]
    payload: EnforcementRevoked

    @model_validator(mode="after")
    def _not_dated_ahead(self, info: ValidationInfo) -> "EnforcementRevokedEvent":
        # (a revocation typed years ahead would keep the decision weighing, and the enterprise off the inspection plan,
        # until then)
        _legal_date_by_then(self, "revoked_on", "撤销日期", info)
        return self


class EnforcementListingRemovedEvent(Envelope):
    """enforcement.listing_removed (提前移出严重违法失信名单): a listing ends early by 信用修复; the decision stands."""

    model_config = _event("when the removal was recorded (removed_on is its date, not after it)",
                          "the decision number, the removal's date, reference and reason")
    event_type: Literal["enforcement.listing_removed"]
    payload: EnforcementListingRemoved

    @model_validator(mode="after")
    def _not_dated_ahead(self, info: ValidationInfo) -> "EnforcementListingRemovedEvent":
        # (a removal typed years ahead would lift the grade's D before the bureau decided it)
        _legal_date_by_then(self, "removed_on", "移出日期", info)
        return self


class InterviewHeldEvent(Envelope):
    """interview.held (约谈): the bureau called in the enterprise's responsible person."""

    model_config = _event("when the interview was recorded (held_on is its day, not after it); its risk points count from held_on",
                          "the interview")
    event_type: Literal["interview.held"]
    payload: InterviewHeld

    @model_validator(mode="after")
    def _not_dated_ahead(self, info: ValidationInfo) -> "InterviewHeldEvent":
        _legal_date_by_then(self, "held_on", "约谈日期", info)
        return self


_CAMPAIGN_TIME = ("when it was recorded: its document's date (signed_on, assessed_on, as_of, on) must not be after its local "
                  "date")

_CAMPAIGN_DATE_ZH = {"signed_on": "承诺书签订日期", "assessed_on": "评定日期", "as_of": "统计截至日期", "on": "活动日期"}


def _campaign_dated_by_then(event: Envelope, field: str, info: ValidationInfo) -> None:
    """A campaign document cannot be dated after it was recorded (as a sample cannot be taken after its
    report): a future as_of would make one training report the newest over every real one to come, a
    future acceptance or letter date a stage reached in advance.  Dates are local, so the record's day is
    occurred_at's local one.  At the door only: a log that already holds such an event re-reads it."""
    if not _at_door(info):
        return
    offset = info.context.get("utc_offset_hours", LOCAL_UTC_OFFSET_HOURS)  # type: ignore[union-attr]
    recorded = (event.occurred_at + dt.timedelta(hours=offset)).date()
    dated = getattr(event.payload, field)
    if dated > recorded:
        raise FieldError(f"{field} {dated.isoformat()} is after the event was recorded (occurred_at, local date {recorded.isoformat()}): "
                         "a campaign document cannot be dated in the future",
                         f"{_CAMPAIGN_DATE_ZH[field]} {dated.isoformat()} 晚于记录时间 {recorded.isoformat()}（occurred_at 的当地日期）："
                         "提档升级材料的日期不能在将来", field=f"payload.{field}")


class CampaignRetracted(Model):
    """撤销提档升级记录: the bureau withdraws one campaign record from an enterprise's credit file — a letter, an
    assessment, a training report or an activity filed under the wrong enterprise, or recorded in error.  The log
    stays append-only: the record stays on file, marked retracted with the reason, and no longer counts (its stage,
    the tier, the three ones, the KPIs, the acceptance).  A record sent under the wrong enterprise is sent again
    under the right one (a new event_id).  A mistyped tier, result or report of the right enterprise needs no
    retraction: a same-day assessment, or a training report of the same as_of, sent again corrects it."""

    retracted_event_id: EventId = Field(
        description="event_id of the campaign.commitment, .assessment, .training or .activity to withdraw, as on file under the "
                    "envelope's enterprise_id.  A retraction whose record is not on file yet is kept and applies when it arrives")
    reason: Annotated[str, Field(min_length=1, max_length=1000, json_schema_extra={"pattern": _HAS_TEXT_PATTERN})] = Field(
        description="撤销原因, in Chinese, e.g. 承诺书误录入本企业名下（应为 E-330110-002）: what the credit file quotes")


class CampaignCommitmentEvent(Envelope):
    """campaign.commitment (承诺书): the enterprise signed the campaign's commitment letter."""

    model_config = _event(_CAMPAIGN_TIME, "the commitment letter")
    event_type: Literal["campaign.commitment"]
    payload: CampaignCommitment

    @model_validator(mode="after")
    def _not_dated_ahead(self, info: ValidationInfo) -> "CampaignCommitmentEvent":
        _campaign_dated_by_then(self, "signed_on", info)
        return self


class CampaignAssessmentEvent(Envelope):
    """campaign.assessment (分档与验收): a tiering (调查分档) or an acceptance (检查验收)."""

    model_config = _event(_CAMPAIGN_TIME, "the assessment")
    event_type: Literal["campaign.assessment"]
    payload: CampaignAssessment

    @model_validator(mode="after")
    def _not_dated_ahead(self, info: ValidationInfo) -> "CampaignAssessmentEvent":
        _campaign_dated_by_then(self, "assessed_on", info)
        return self


class CampaignTrainingEvent(Envelope):
    """campaign.training (培训考试): training, exam and certificate figures as of a date."""

    model_config = _event(_CAMPAIGN_TIME, "the figures")
    event_type: Literal["campaign.training"]
    payload: CampaignTraining

    @model_validator(mode="after")
    def _not_dated_ahead(self, info: ValidationInfo) -> "CampaignTrainingEvent":
        _campaign_dated_by_then(self, "as_of", info)
        return self


class CampaignActivityEvent(Envelope):
    """campaign.activity (提档升级活动): a visit, expert assistance, a self-inspection or a comparison test."""

    model_config = _event(_CAMPAIGN_TIME, "the activity")
    event_type: Literal["campaign.activity"]
    payload: CampaignActivity

    @model_validator(mode="after")
    def _not_dated_ahead(self, info: ValidationInfo) -> "CampaignActivityEvent":
        _campaign_dated_by_then(self, "on", info)
        return self


class CampaignRetractedEvent(Envelope):
    """campaign.retracted (撤销提档升级记录): the bureau withdraws one campaign record filed under this enterprise."""

    model_config = _event("when the bureau decided the retraction (撤销时间)", "the record's event id and the reason")
    event_type: Literal["campaign.retracted"]
    payload: CampaignRetracted

    @model_validator(mode="after")
    def _not_itself(self, info: ValidationInfo) -> "CampaignRetractedEvent":
        if self.payload.retracted_event_id == self.event_id:
            raise FieldError("retracted_event_id is this retraction's own event_id: name the campaign record to withdraw",
                             "retracted_event_id 不能是本撤销事件自身的 event_id：请填写要撤销的提档升级记录的 event_id",
                             field="payload.retracted_event_id")
        return self


class AlertActionEvent(Envelope):
    """alert.action (预警处置): a supervisor's step on an alert (written by POST /v1/alerts/{id}/actions)."""

    model_config = _event("when the supervisor took the step (the server's time when taken through /v1/alerts)", "the step")
    event_type: Literal["alert.action"]
    payload: AlertActionTaken


class ClockTick(Envelope):
    """clock.tick (时钟): the runtime's clock in the log, so that replay sees the same time.  enterprise_id "*" reaches
    every credit file (overdue checks by event time)."""

    model_config = _event("the runtime's clock: overdue rectifications and interview follow-ups, missing data and the risk "
                          "grade's window are checked as of it", "nothing (an empty object)")
    event_type: Literal["clock.tick"]
    enterprise_id: Annotated[Literal["*"], Stripped] = Field(description="\"*\": every enterprise")  # type: ignore[assignment]
    payload: Tick = Field(default_factory=Tick)


Event = Annotated[
    Union[
        EnterpriseRegistered,
        EnterpriseUpdated,
        SamplingResultEvent,
        SamplingRetractedEvent,
        ComplaintReceivedEvent,
        ComplaintResolvedEvent,
        ComplaintAcceptedEvent,
        ComplaintWithdrawnEvent,
        FluctuationRebaselinedEvent,
        InspectionCompletedEvent,
        RectificationOrderedEvent,
        RectificationCompletedEvent,
        RectificationVerifiedEvent,
        EnforcementDecidedEvent,
        EnforcementRevokedEvent,
        EnforcementListingRemovedEvent,
        InterviewHeldEvent,
        CampaignCommitmentEvent,
        CampaignAssessmentEvent,
        CampaignTrainingEvent,
        CampaignActivityEvent,
        CampaignRetractedEvent,
        AlertActionEvent,
        ClockTick,
    ],
    Field(discriminator="event_type"),
]

EVENT_TYPES: dict[str, type[Envelope]] = {
    cls.model_fields["event_type"].annotation.__args__[0]: cls  # type: ignore[union-attr]
    for cls in Event.__origin__.__args__  # type: ignore[attr-defined]
}

event_adapter: TypeAdapter[Any] = TypeAdapter(Event)


# what supervisors read for each event type (the demo's summary, the intake dashboard)
EVENT_TYPE_ZH = {
    "enterprise.registered": "企业登记", "enterprise.updated": "企业信息变更", "sampling.result": "抽检结果",
    "sampling.retracted": "撤销报告",
    "complaint.received": "投诉登记", "complaint.resolved": "投诉办结", "complaint.accepted": "受理决定",
    "complaint.withdrawn": "撤回投诉登记",
    "fluctuation.rebaselined": "控制限重新确定", "inspection.completed": "现场检查",
    "rectification.ordered": "责令整改", "rectification.completed": "整改完成", "rectification.verified": "整改复查",
    "enforcement.decided": "行政处罚", "enforcement.revoked": "撤销行政处罚",
    "enforcement.listing_removed": "提前移出严重违法失信名单", "interview.held": "约谈", "campaign.commitment": "承诺书", "campaign.assessment": "分档与验收", "campaign.training": "培训考试",
    "campaign.activity": "提档升级活动", "campaign.retracted": "撤销提档升级记录", "alert.action": "预警处置", "clock.tick": "时钟",
}
