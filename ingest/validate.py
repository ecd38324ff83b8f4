"""Turn raw bytes from any way in into events, or into precise errors.

Each error names the field as a path a lab integrator can follow
(``payload.items[0].values[1]``) and gives the reason in English and Chinese.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import typing
import unicodedata
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas.events import (DATE_FORM_EN, DATE_FORM_ZH, DATETIME_FORM_EN, DATETIME_FORM_ZH, DOOR, Envelope, Event,
                            SamplingResultEvent, event_adapter)
from schemas.upcast import BadVersion1Source, DuplicateKeys, UnsupportedVersion, load_json, load_json_once, parse_event

MAX_BATCH = 1000

_REASON_ZH = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段（字段名拼写错误或不属于该事件类型）",
    "string_type": "应为文本",
    "string_too_short": "文本过短",
    "string_too_long": "文本过长",
    "string_pattern_mismatch": "格式不符合要求",
    "float_type": "应为数字（不接受带引号的数字）",
    "int_type": "应为整数",
    "int_parsing": "应为整数（如 50）",
    "int_from_float": "应为整数，不带小数",
    "float_parsing": "应为数字",
    "bool_parsing": "应为 true 或 false",
    "enum": "取值不在允许范围内",
    "missing_argument": "缺少必填参数",
    "bool_type": "应为 true 或 false",
    "finite_number": "应为有限数字（不接受 NaN 或无穷大）",
    "measured_value": "应为数字（不加引号）或 \"ND\"/\"未检出\"",
    "literal_error": "取值不在允许范围内",
    "union_tag_invalid": "未知的事件类型",
    "union_tag_not_found": "缺少事件类型 event_type",
    "timezone_aware": "应带时区偏移（如 2026-03-05T09:30:00+08:00 或 …Z）",
    "uuid_parsing": "应为 UUID",
    "uuid_type": "应为 UUID",
    "datetime_parsing": DATETIME_FORM_ZH,
    "datetime_from_date_parsing": DATETIME_FORM_ZH,
    "date_from_datetime_inexact": "应为 YYYY-MM-DD 格式的日期（如 2026-03-01），不含时间",
    "greater_than": "数值过小",
    "less_than": "数值过大",
    "body_encoding": "请求体不是 UTF-8 编码（例如按 GBK 发送）；请以 UTF-8 编码发送 JSON",
    "date_parsing": DATE_FORM_ZH,
    "date_from_datetime_parsing": DATE_FORM_ZH,
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "too_short": "条目过少",
    "too_long": "条目过多",
    "list_type": "应为数组",
    "model_type": "应为对象",
    "dict_type": "应为对象",
    "model_attributes_type": "应为对象",
    "value_error": "取值无效",
    "json_invalid": "不是合法的 JSON",
    "batch_too_large": "批次超过上限",
    "batch_empty": "空批次",
    "unsupported_version": "不支持的 schema_version",
    "string_unicode": "文本含有无效的 Unicode 字符（如单独的代理项 \\ud800）",
    "recursion_loop": "嵌套过深",
    "forbidden": "该密钥无权提交此事件",
    "qrisk_own_step": "qrisk 自身的处置步骤不经接口提交",
    "in_the_future": "时间晚于接收时间",
    "duplicate_key": "同一对象中字段重复出现",
    "schema_version_type": "schema_version 应为整数 1 或 2（不加引号）",
    "v1_source": "版本 1 的 source 应为“类型:编号”",
}

# What one refused element's errors may list.  A body of 100,000 unknown or repeated keys is one
# mistake (a mapping gone wrong, a hostile sender): listed in full it made a 422 answer and a dead
# letter some 25 times the body, so the first ERRORS_KEPT are named and one entry counts the rest.
ERRORS_KEPT = 50
ERRORS_TRUNCATED = "errors_truncated"


def capped_errors(errors: list[dict[str, Any]], kept: int = ERRORS_KEPT) -> list[dict[str, Any]]:
    """``errors`` with at most ``kept`` listed and, when there were more, one ``errors_truncated`` entry
    counting them all (``errors_total``).  A list capped before is capped again by the same count."""
    listed = [e for e in errors if not (isinstance(e, dict) and e.get("type") == ERRORS_TRUNCATED)]
    unlisted = sum(e["errors_total"] - e["errors_listed"] for e in errors
                   if isinstance(e, dict) and e.get("type") == ERRORS_TRUNCATED)
    if len(listed) <= kept and not unlisted:
        return errors
    shown, total = listed[:kept], len(listed) + unlisted
    more = total - len(shown)
    return shown + [{"field": "", "type": ERRORS_TRUNCATED, "errors_total": total, "errors_listed": len(shown),
                     "reason": f"{more} more error(s) not listed ({total} in all): fix those above first, the rest are often the same mistake",
                     "reason_zh": f"另有 {more} 处错误未列出（共 {total} 处），请先修正以上各处，其余多为同一错误"}]


DUPLICATE_KEY_EN = "key given twice in one object: which copy is meant only the sender knows; send it once"
DUPLICATE_KEY_ZH = "同一对象中字段重复出现，无法确定以哪一个为准；请只写一次"


def duplicate_key_errors(paths: list[tuple[str | int, ...]]) -> list[dict[str, Any]]:
    """The errors of the keys ``schemas.upcast.DuplicateKeys`` found given twice, each path relative to its event."""
    return [_error(dotted(path), "duplicate_key", DUPLICATE_KEY_EN, DUPLICATE_KEY_ZH) for path in paths]


def dotted(path: tuple[str | int, ...]) -> str:
    """A path of keys and indices as ``describe`` writes one: ``payload.items[0].values``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class Rejection:
    index: int | None
    raw: bytes
    errors: list[dict[str, Any]] = field(default_factory=list)
    whole: tuple[str, str] | None = None
    """A refusal of the body as a whole (empty, too many events, not JSON …): what the answer's
    ``detail`` says, (Chinese, English); None for a refused event (``rejection_detail``)."""

    @property
    def reason(self) -> str:
        return "; ".join(f"{e['field'] or '(body)'}: {e['reason']}" for e in self.errors)


def _path(loc: tuple[Any, ...], event_type: Any, doc: Any = None) -> str:
    """The field an error is about, as a sender writes it: ``payload.items[0].values[1]``.

    ``doc``: the document sent.  A part of the location that is a key of the object sent at that
    point is the sender's own, whatever it looks like ("sample-no", "int"); other parts that are
    no identifier are pydantic's union branches and validator plumbing, not field names."""
    parts = list(loc)
    # pydantic puts the discriminator value first for tagged unions
    if parts and isinstance(event_type, str) and parts[0] == event_type:
        parts = parts[1:]
    out = ""
    node = doc
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and -len(node) <= part < len(node) else None
            continue
        part = str(part)
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif not part.isidentifier() or part in ("str", "float", "int", "bool"):
            continue  # union branches and validator plumbing (constrained-int, literal[...]), not field names
        else:
            node = None  # a field the sender left out (missing), or one of ours
        out += ("." if out else "") + part
    return out


_MEASURED_BRANCHES = {"int_type", "float_type", "literal_error", "finite_number"}


def describe(exc: ValidationError, doc: Any) -> list[dict[str, Any]]:
    event_type = doc.get("event_type") if isinstance(doc, dict) else None
    by_field: dict[str, list[dict[str, Any]]] = {}
    for err in exc.errors(include_url=False):
        field_path = "event_type" if err["type"].startswith("union_tag") else _path(err["loc"], event_type, doc)
        blamed = getattr((err.get("ctx") or {}).get("error"), "field", None)
        if blamed:  # a check across fields names the one to correct (schemas.events.FieldError)
            field_path = f"{field_path}.{blamed}" if field_path else blamed
        by_field.setdefault(field_path, []).append(err)
    errors = []
    for field_path, errs in by_field.items():
        ours = [e for e in errs if getattr((e.get("ctx") or {}).get("error"), "zh", None)]
        if ours:
            # a check at the door is a union's last branch (schemas.events._door_only): the other
            # branches' failures beside its reason (a pattern, a bound) say less than it does
            errs = ours
        types = {e["type"] for e in errs}
        if len(errs) > 1 and types <= _MEASURED_BRANCHES:
            # a measured value is a union (number | "ND"): one failure per branch says
            # less than one line that names what is accepted
            if "finite_number" in types:
                errors.append(_error(field_path, "finite_number", "must be a finite number"))
            else:
                # the number branches saw the value as sent (the "ND" branch strips it first)
                sent = next((e["input"] for e in errs if e["type"] != "literal_error"), errs[0].get("input"))
                errors.append(_error(field_path, "measured_value", *measured_value_reasons(sent)))
            continue
        seen = set()
        for e in errs:
            if e["type"] in seen:
                continue
            seen.add(e["type"])
            errors.append({"field": field_path, "type": e["type"], "reason": reason_en(e), "reason_zh": reason_zh(e)})
    return errors


# text that looks like a date or timestamp but is none ("2026-02-30"): pydantic's message says
# "a valid date or datetime", though the door reads one form only; the reason shows that form
_DATE_FORMS_EN = {"date_parsing": DATE_FORM_EN, "date_from_datetime_parsing": DATE_FORM_EN,
                  "datetime_parsing": DATETIME_FORM_EN, "datetime_from_date_parsing": DATETIME_FORM_EN}
_DATE_DETAIL_ZH = {"day value is outside expected range": "该月没有这一天", "month value is outside expected range of 1-12": "月份应为 01–12",
                   "input is too short": "位数不足（月、日须为两位）"}


def shown(value: Any) -> str:
    """A value as a reason quotes it: repr, so that spaces, a full-width letter or an invisible
    character (\u200b) show, cut at 40 characters (as schemas.events quotes a verdict)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


def reason_en(err: dict[str, Any]) -> str:
    """The English reason: pydantic's message, without the "Value error, " it puts before what a validator said."""
    if err["type"] == "value_error":
        return err["msg"].removeprefix("Value error, ")
    if err["type"] == "literal_error" and "input" in err:
        # the allowed values alone leave the sender comparing them with a value they cannot see
        return f"{err['msg']}, got {shown(err['input'])}"
    if err["type"] in _DATE_FORMS_EN:
        detail = (err.get("ctx") or {}).get("error")
        return _DATE_FORMS_EN[err["type"]] + (f": {detail}" if detail else "")
    if _blank(err):
        return f"blank (only spaces): {shown(err['input'])}; the text is stripped of surrounding spaces, and must hold something else"
    return err["msg"]


def _blank(err: dict[str, Any]) -> bool:
    """A text too short once its surrounding spaces are stripped (schemas.events.Model), though it was
    sent with some: "at least 1 character" of a 3-character value would read as a bug."""
    sent = err.get("input")
    return err["type"] == "string_too_short" and isinstance(sent, str) and sent != "" and sent.strip() == ""


def reason_zh(err: dict[str, Any]) -> str:
    """The Chinese reason, with the detail the English one carries (the bound, the allowed values)."""
    kind, ctx = err["type"], err.get("ctx") or {}
    base = _REASON_ZH.get(kind, err["msg"])
    if _blank(err):
        return f"不能只含空白字符：收到 {shown(err['input'])}（首尾空白会被去除）"
    if kind == "value_error":
        cause = ctx.get("error")
        zh = getattr(cause, "zh", None)  # schemas.events.FieldError says it in Chinese itself
        return zh if zh else f"{base}：{cause if cause is not None else err['msg']}"
    if kind in _DATE_FORMS_EN and ctx.get("error") in _DATE_DETAIL_ZH:
        return f"{base}：{_DATE_DETAIL_ZH[ctx['error']]}"
    if kind == "literal_error" and "expected" in ctx:
        # what arrived is quoted always: a lab system's log rarely shows the field as it went out
        zh = f"{base}，应为 {_listed_zh(ctx['expected'])}；收到 {shown(err.get('input'))}"
        twin = _lookalike(err.get("input"), ctx["expected"])
        if twin is not None:
            # what was sent reads as an allowed value: say where the difference lies
            zh += f"，与 '{twin}' 只差大小写、全角/半角或不可见字符"
        return zh
    if kind == "union_tag_invalid" and "tag" in ctx:
        tags = "、".join(f"'{tag}'" for tag in _QUOTED.findall(ctx.get("expected_tags", "")))
        return f"{base} {shown(ctx['tag'])}" + (f"，应为 {tags} 之一" if tags else "")
    if kind == "string_pattern_mismatch" and "pattern" in ctx:
        return f"{base}（应匹配 {ctx['pattern']}）"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = {"greater_than_equal": ("ge", "≥"), "less_than_equal": ("le", "≤"), "greater_than": ("gt", ">"), "less_than": ("lt", "<")}[kind]
        if bound[0] in ctx:
            limit = ctx[bound[0]]
            return f"{base}（应 {bound[1]} {limit:g}）" if isinstance(limit, float) else f"{base}（应 {bound[1]} {limit}）"
    if kind in ("string_too_short", "string_too_long", "too_short", "too_long"):
        limit = ctx.get("min_length") if kind.endswith("short") else ctx.get("max_length")
        if limit is not None:
            return f"{base}（{'至少' if kind.endswith('short') else '至多'} {limit} {'个字符' if kind.startswith('string') else '项'}）"
    return base


# what json.JSONDecodeError says (Python's decoder has these few messages), as a lab integrator reads it
_JSON_PROBLEM_ZH = {
    "Expecting value": "此处缺少值（或多了逗号）",
    "Expecting property name enclosed in double quotes": "此处应为双引号括起的字段名（或多了逗号）",
    "Expecting ':' delimiter": "此处应为冒号 :",
    "Expecting ',' delimiter": "此处应为逗号 ,",
    "Unterminated string starting at": "此处开始的字符串缺少结尾的双引号",
    "Invalid control character at": "字符串中有未转义的控制字符（如换行、制表符）",
    "Invalid \\escape": "无效的转义序列",
    "Invalid \\uXXXX escape": "无效的 \\uXXXX 转义",
    "Extra data": "JSON 已结束，其后还有多余内容",
}


def json_invalid_zh(exc: ValueError, one_line: bool = False) -> str:
    """The Chinese reason for a body json.loads refused, with the line and column the English one gives.

    ``one_line``: the text was one line of a file, which its file:line names; the column is enough."""
    if isinstance(exc, json.JSONDecodeError):
        what = _JSON_PROBLEM_ZH.get(exc.msg, "有误")
        if one_line:
            return f"不是合法的 JSON：第 {exc.colno} 列：{what}"
        return f"不是合法的 JSON：第 {exc.lineno} 行第 {exc.colno} 列（字符位置 {exc.pos}）：{what}"
    token = str(exc).removesuffix(" is not valid JSON")  # NaN, Infinity, -Infinity (schemas.upcast.load_json)
    return f"不是合法的 JSON：{token} 不是 JSON 的取值（数值须为有限数字）"


_QUOTED = re.compile(r"'([^']*)'")


def _folded(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", text).casefold() if not c.isspace() and unicodedata.category(c) != "Cf")


def _lookalike(received: Any, expected: str) -> str | None:
    """The allowed value (of pydantic's "'a', 'b' or 'c'") ``received`` differs from only in case, width
    or invisible characters, if any."""
    if not isinstance(received, str):
        return None
    folded = _folded(received)
    return next((v for v in _QUOTED.findall(expected) if _folded(v) == folded), None)


# "<0.01", "＜ 0.01 mg/L", "小于0.01": a result below the method's detection limit, written as a lab's
# report prints it; the reason's example then carries that limit.
# (a limit may have a decimal comma, "<0,01"; a unit starts with no digit, comma or point: "0,01" is no
# number 0 with the unit ",01")
_BELOW_LIMIT = re.compile(r"\s*(?:[<≤]=?|小于|低于)\s*(?P<limit>[-+]?(?:\d+[.,]?\d*|\.\d+)(?:e[-+]?\d+)?)?\s*(?P<unit>\S.*)?")
_NUMBER_AND_UNIT = re.compile(r"\s*(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>[^\d\s,.].*)?")
# "0,01", "1,5 mg/L": a decimal comma, as a European locale's export writes it (and "，" a Chinese one's,
# NFKC makes it ","); "12,345,678": thousands separators.  The regex above would read "0,01" as the
# number 0 with the unit ",01".
_COMMA_NUMBER = re.compile(r"\s*(?P<sign>[-+]?)(?P<head>\d+)(?P<rest>(?:,\d+)+)\s*(?P<unit>[^\d\s,.].*)?")
_ND_HINT_EN = ('a result below the detection limit is sent as "ND", with the method\'s limit in the item\'s detection_limit, '
               'e.g. "values": ["ND"], "detection_limit": {limit}')
_ND_HINT_ZH = '低于检出限的结果请写 "ND"，并把方法检出限写在该项目的 detection_limit 中，如 "values": ["ND"], "detection_limit": {limit}'


def measured_value_reasons(sent: Any) -> tuple[str, str]:
    """(English, Chinese) reasons for a result value that is neither a number nor "ND": what was
    received, and how to write it.  Labs print "<0.01", "nd" or "0.005mg/L" in their reports; each
    has one right spelling here, and "ND" with detection_limit is the one they most often need."""
    en, zh = f'must be a number (not quoted) or "ND" / "未检出", got {shown(sent)}', f'应为数字（不加引号）或 "ND"/"未检出"，收到 {shown(sent)}'
    limit = "0.005"
    if isinstance(sent, str):
        text = unicodedata.normalize("NFKC", sent).strip()
        comma = _comma_reasons(text, en, zh)
        if comma is not None:
            return comma
        below = _BELOW_LIMIT.fullmatch(text)
        number = _NUMBER_AND_UNIT.fullmatch(text)
        if below is not None and (below.group("limit") or below.group("unit")):
            limit = (below.group("limit") or limit).replace(",", ".")
        elif number is not None and number.group("unit"):
            return (f'{en}: the number goes in values and its unit in unit ({number.group("number")}, "unit": "{number.group("unit")}"); '
                    + _ND_HINT_EN.format(limit=limit),
                    f'{zh}：数值写在 values 中，单位写在 unit 中（{number.group("number")}，"unit": "{number.group("unit")}"）；'
                    + _ND_HINT_ZH.format(limit=limit))
        elif number is not None:
            return (f"{en}: send the number without quotes ({number.group('number')}); " + _ND_HINT_EN.format(limit=limit),
                    f"{zh}：数字不要加引号（{number.group('number')}）；" + _ND_HINT_ZH.format(limit=limit))
    return f"{en}; " + _ND_HINT_EN.format(limit=limit), f"{zh}；" + _ND_HINT_ZH.format(limit=limit)


def _comma_reasons(text: str, en: str, zh: str) -> tuple[str, str] | None:
    """The reasons for a number written with a comma (see ``_COMMA_NUMBER``), else None."""
    m = _COMMA_NUMBER.fullmatch(text)
    if m is None:
        return None
    sign, head, groups, unit = m.group("sign"), m.group("head"), m.group("rest")[1:].split(","), m.group("unit")
    unit_en = f', and its unit in unit ("unit": "{unit.strip()}")' if unit else ""
    unit_zh = f'，单位写在 unit 中（"unit": "{unit.strip()}"）' if unit else ""
    whole = sign + head + "".join(groups)
    if len(groups) == 1 and not (len(groups[0]) == 3 and head != "0" and len(head) <= 3):
        point = f"{sign}{head}.{groups[0]}"
        return f"{en}: use a decimal point: {point}{unit_en}", f"{zh}：小数点应为“.”：{point}{unit_zh}"
    if len(head) <= 3 and all(len(g) == 3 for g in groups):
        if len(groups) == 1:  # "1,200": a decimal comma or a thousands separator; the lab knows which
            point = f"{sign}{head}.{groups[0]}"
            return (f"{en}: use a decimal point: {point}, or, if the comma separates thousands, no separator: {whole}{unit_en}",
                    f"{zh}：小数点应为“.”：{point}；如逗号是千位分隔符，请去掉：{whole}{unit_zh}")
        return (f"{en}: write the number without thousands separators: {whole}{unit_en}",
                f"{zh}：数字不要加千位分隔符：{whole}{unit_zh}")
    return None  # "1,2,3": no number; the general reason


def _listed_zh(expected: str) -> str:
    """pydantic's "'a', 'b' or 'c'" as Chinese lists it: 'a'、'b' 或 'c' (the values are the codes to send, quoted)."""
    head, sep, last = expected.rpartition(" or ")
    if not sep:
        return expected
    return "、".join(head.split(", ")) + f" 或 {last}"


def _error(field: str, type_: str, reason: str, reason_zh: str | None = None) -> dict[str, Any]:
    return {"field": field, "type": type_, "reason": reason, "reason_zh": reason_zh or _REASON_ZH.get(type_, reason)}


def element_bytes(item: Any) -> bytes:
    """One element of a batch as bytes for dead letters: UTF-8 JSON, or ASCII-escaped JSON
    when it holds text UTF-8 cannot carry (a lone surrogate such as "\\ud800" sent as an escape)."""
    try:
        return json.dumps(item, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(item).encode("ascii")


def validate_document(doc: Any, index: int | None, raw: bytes, context: dict[str, Any] | None = DOOR) -> Envelope | Rejection:
    """``context``: ``DOOR`` for input arriving (the default), None to re-read what a log already holds."""
    event_type = doc.get("event_type") if isinstance(doc, dict) else None
    if isinstance(event_type, str) and event_type != event_type.strip():
        # a padded cell ("sampling.result "), as every enumerated field takes it (schemas.events.Stripped);
        # here, because pydantic picks the event's model by this tag before any validator of it runs
        doc = {**doc, "event_type": event_type.strip()}
    first: list[dict[str, Any]] = []
    sent = doc
    version = doc.get("schema_version") if isinstance(doc, dict) else None
    if isinstance(doc, dict) and "schema_version" in doc and not (type(version) is int or type(version) is float and version.is_integer()):
        # "1", "2", null: the version decides the shape the rest is read in; pydantic's "Input should be 2"
        # told a v1 sender of v2 fields it never sent.  The rest is read in the version the text names
        first.append(_error("schema_version", "schema_version_type", f"must be an integer: 1 or 2 (not quoted), got {shown(version)}",
                            f"schema_version 应为整数 1 或 2（不加引号），收到 {shown(version)}"))
        named = str(version).strip() if isinstance(version, str) else None
        doc = {**doc, "schema_version": int(named) if named in ("1", "2") else 2}
    try:
        event = parse_event(doc, context)
    except RecursionError:
        return Rejection(index, raw, [_error("", "recursion_loop", "document nested too deeply")])
    except UnsupportedVersion as exc:
        return Rejection(index, raw, first + [_error("schema_version", "unsupported_version", str(exc))])
    except BadVersion1Source as exc:
        first.append(_error("source", "v1_source", str(exc), exc.zh))
        try:  # the rest of the event, with a source that is no error of its own
            event = parse_event({**doc, "source": "system:-"}, context)
        except ValidationError as rest:
            return Rejection(index, raw, capped_errors(first + [e for e in _errors_as_sent(rest, doc, sent) if e["field"] != "source"]))
    except ValidationError as exc:
        return Rejection(index, raw, capped_errors(first + _errors_as_sent(exc, doc, sent)))
    if context and context.get("door"):
        first += qrisk_own_step_errors(event)
    return Rejection(index, raw, first) if first else event


# alerts.lifecycle.SYSTEM, the actor of qrisk's own steps (the door may not import the alert fold; a test keeps them equal)
SYSTEM = "qrisk"
_OWN_STEP_ZH = "qrisk 自身的处置步骤不经接口提交"
_OWN_STEP_EN = "qrisk's own steps are not posted"


def qrisk_own_step_errors(event: Envelope) -> list[dict[str, Any]]:
    """An ``alert.action`` that says it is qrisk's own (source kind ``system``, or actor ``qrisk``): refused at every door.
    qrisk logs such a step itself (the escalation a start under a changed policy owes, ``qrisk.pipeline``), and the fold
    takes it as one; posted by a key, it was an escalation without the hourly guard and a ``handling_overdue`` on demand."""
    if event.event_type != "alert.action":
        return []
    errors = []
    if event.source.kind == "system":
        errors.append(_error("source.kind", "qrisk_own_step", f"{_OWN_STEP_EN}: an alert step is posted as its supervisor's or "
                             "the bureau's source, not \"system\"", f"{_OWN_STEP_ZH}：预警处置步骤的来源类型不能为 system"))
    if event.payload.actor == SYSTEM:  # type: ignore[attr-defined]
        errors.append(_error("payload.actor", "qrisk_own_step", f"{_OWN_STEP_EN}: actor \"{SYSTEM}\" is qrisk itself; name the "
                             "supervisor who took the step", f"{_OWN_STEP_ZH}：处置人不能为 {SYSTEM}（qrisk 自身），请填写实际处置人"))
    return errors


_V1_ITEM_VALUE = re.compile(r"payload\.items\[(\d+)\]\.values(\[0\])?")


def _errors_as_sent(exc: ValidationError, doc: Any, sent: Any) -> list[dict[str, Any]]:
    """``describe``, its fields named as the sender wrote them: a version-1 event's item has ``value``
    and its source is a "kind:id" string, which the upcaster turned into ``values`` and an object."""
    errors = describe(exc, sent)
    if not (isinstance(doc, dict) and doc.get("schema_version") == 1):
        return errors
    items = (doc.get("payload") or {}).get("items") if isinstance(doc.get("payload"), dict) else None
    for e in errors:
        field_path = e["field"]
        if field_path.startswith("source.") and isinstance(doc.get("source"), str):
            e["field"] = "source"  # the kind or the id of "kind:id"
            continue
        found = _V1_ITEM_VALUE.match(field_path)
        if found and isinstance(items, list) and int(found[1]) < len(items):
            item = items[int(found[1])]
            if isinstance(item, dict) and "values" not in item and (found[2] or found.end() == len(field_path)):
                e["field"] = f"payload.items[{found[1]}].value" + field_path[found.end():]
    return errors


_batch_adapter: TypeAdapter[list[Any]] = TypeAdapter(list[Event])


def _decode_valid(raw: bytes, max_batch: int, context: dict[str, Any] = DOOR) -> list[Envelope] | None:
    """The events of a body in which every event is valid and current, straight from the bytes; else None.

    pydantic validates JSON in one pass without building the Python document first (about
    half the cost of json.loads + validate_python per event).  Anything else — invalid JSON,
    a bad or old-version event, the {"events": [...]} form, an oversized batch — returns None,
    and ``decode_body`` takes the general path, which names every error exactly as before.
    Only the verdict "all valid" is taken from here, and for valid current-version input both
    paths build the same events (tests/test_pipeline_decode.py checks that).
    """
    head = raw[:64].lstrip()
    try:
        if head.startswith(b"["):
            events = _batch_adapter.validate_json(raw, context=context)
            events = events if 0 < len(events) <= max_batch else None
        elif head.startswith(b"{"):
            events = [event_adapter.validate_json(raw, context=context)]
        else:
            return None
    except Exception:  # noqa: BLE001 - whatever the error, the general path decides and words it
        return None
    if events is not None and has_duplicate_keys(raw, events):
        # pydantic keeps the last copy of a key given twice; the general path finds and names it
        return None
    if events is not None and context.get("door") and any(e.event_type == "alert.action" and qrisk_own_step_errors(e) for e in events):
        return None  # (refused: the general path names the field)
    return events


# A key's closing quote before its colon.  Counted, it is at least the number of keys in the body
# (a quote and colon inside a string, "a\": b", only adds to it); the fields the events were built
# from are at most that many, and fewer only when some object gave a key twice (extra keys are
# refused: schemas.events.Model).  Two C scans of the bytes, a few µs a batch; the exact check
# (json.loads with an object_pairs_hook, about as dear as the validation) only when they disagree.
_SPACED_KEY_END = re.compile(rb'"[ \t\r\n]+:')


def has_duplicate_keys(raw: bytes, events: list[Envelope]) -> bool:
    """Whether some object of ``raw``, of which pydantic built ``events``, may have given a key twice
    (when True, ``schemas.upcast.load_json_once`` says for certain, and where)."""
    return _keys_at_most(raw) > sum(map(_fields_given, events))


def _keys_at_most(raw: bytes) -> int:
    n = raw.count(b'":')
    return n + len(_SPACED_KEY_END.findall(raw)) if _SPACED_KEY_END.search(raw) else n


_NESTED: dict[type, tuple[str, ...]] = {}


def _fields_given(model: BaseModel) -> int:
    """The keys ``model`` and the models (and dicts) inside it were built from."""
    given = model.__pydantic_fields_set__  # (model_fields_set, without the property: this runs for every event)
    n = len(given)
    cls = type(model)
    nested = _NESTED.get(cls)
    if nested is None:
        nested = _NESTED[cls] = tuple(name for name, f in cls.model_fields.items() if _may_hold_model(f.annotation))
    if not nested:
        return n
    values = model.__dict__
    for name in nested:
        if name in given:
            value = values[name]
            if isinstance(value, BaseModel):
                n += _fields_given(value)
            elif isinstance(value, (list, tuple)):
                for v in value:
                    if isinstance(v, BaseModel):
                        n += _fields_given(v)
            elif isinstance(value, dict):  # campaign.assessment's scores: its keys are the sender's too
                n += len(value) + sum(_fields_given(v) for v in value.values() if isinstance(v, BaseModel))
    return n


def _may_hold_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, (BaseModel, dict)) or typing.get_origin(annotation) in (dict, Mapping):
        return True
    return any(_may_hold_model(arg) for arg in typing.get_args(annotation) if arg is not annotation)


def decode_body(raw: bytes, max_batch: int = MAX_BATCH, context: dict[str, Any] = DOOR) -> tuple[list[Envelope], list[Rejection]]:
    """One event (a JSON object) or a batch (a JSON array, or {"events": [...]}).

    ``context``: the door's validation context (``schemas.events.door`` of the policy's local time)."""
    fast = _decode_valid(raw, max_batch, context)
    if fast is not None:
        return fast, []
    return _decode_general(raw, max_batch, context)


_NOT_JSON = ("请求体不是合法的 JSON，未写入任何内容；请按 errors 修正后重发", "the body is not valid JSON; nothing was written")
_NOT_UTF8 = ("请求体不是 UTF-8 编码，未写入任何内容；请以 UTF-8 编码发送 JSON", "the body is not UTF-8; nothing was written")
_NOT_A_BATCH = ('请求体格式有误：批量请求体应为事件数组，或 {"events": [...]}，不含其他字段；未写入任何内容',
                'the body is no batch: a batch is a JSON array of events, or {"events": [...]} and nothing else; nothing was written')


def rejection_detail(rejections: list[Rejection]) -> tuple[str, str]:
    """The ``detail`` (Chinese) and ``detail_en`` of a 422 for what ``decode_body`` and ``from_the_future``
    refused: what is wrong with the body when it is refused as a whole (an empty batch is no "1 event
    failed"), else how many of its events failed."""
    whole = next((r.whole for r in rejections if r.whole is not None), None)
    if whole is not None:
        return whole
    return (f"{len(rejections)} 个事件未通过校验，本批次未写入；请按 errors 修正后重发（重发同一 event_id 是安全的）",
            f"{len(rejections)} event(s) failed validation; nothing of this request was written")


def _decode_general(raw: bytes, max_batch: int, context: dict[str, Any] = DOOR) -> tuple[list[Envelope], list[Rejection]]:
    twice: list[tuple[str | int, ...]] = []
    try:
        try:
            doc = load_json_once(raw)
        except DuplicateKeys as exc:
            doc, twice = exc.doc, exc.paths
    except UnicodeDecodeError as exc:
        if raw[:2] == b"\x1f\x8b":  # gzip's magic number, sent without its Content-Encoding (the API refuses that with a 415)
            return [], [Rejection(None, raw, [_error("", "body_encoding", "body is gzip-compressed: compression is not supported; send the JSON uncompressed (UTF-8)",
                                                     "请求体是 gzip 压缩数据：不支持压缩；请发送未压缩的 UTF-8 JSON")],
                                  ("请求体是 gzip 压缩数据，未写入任何内容；请发送未压缩的 UTF-8 JSON", "the body is gzip-compressed; nothing was written: send the JSON uncompressed"))]
        return [], [Rejection(None, raw, [_error("", "body_encoding", f"body is not UTF-8 (byte {exc.start} cannot be decoded): send JSON as UTF-8")],
                              _NOT_UTF8)]
    except ValueError as exc:
        return [], [Rejection(None, raw, [_error("", "json_invalid", f"body is not valid JSON: {exc}", json_invalid_zh(exc))], _NOT_JSON)]
    except RecursionError:
        return [], [Rejection(None, raw, [_error("", "json_invalid", "body is not valid JSON: nested too deeply")], _NOT_JSON)]
    if isinstance(doc, dict) and "events" in doc and "event_type" not in doc:
        # the batch form {"events": [...]}: anything else in it is a mistake to name, not an event
        # missing its event_type (an event with a stray "events" is an event: pydantic names the key)
        errors = capped_errors([_error(str(key), "extra_forbidden", "unknown key beside events: a batch is {\"events\": [...]} and nothing else",
                                       "不允许的字段：批量请求体只能含 events，如 {\"events\": [...]}") for key in doc if key != "events"])
        if not isinstance(doc["events"], list):
            errors.append(_error("events", "list_type", "must be a list of events: {\"events\": [...]}",
                                 "应为事件数组，如 {\"events\": [...]}"))
        if errors:
            return [], [Rejection(None, raw, errors, _NOT_A_BATCH)]
        if ("events",) in twice:
            return [], [Rejection(None, raw, duplicate_key_errors([("events",)]), _NOT_A_BATCH)]
        doc = doc["events"]
        twice = [p[1:] for p in twice]
    docs = doc if isinstance(doc, list) else [doc]
    if not docs:
        # a sender whose batch came out empty has a bug to learn of, not a 200 that says nothing was wrong
        return [], [Rejection(None, raw, [_error("", "batch_empty", f"an empty batch: send 1 to {max_batch} events",
                                                 f"空批次：每批应含 1 至 {max_batch} 个事件")],
                              (f"空批次：请求中没有事件，未写入任何内容；每批应含 1 至 {max_batch} 个事件",
                               f"an empty batch: the request holds no event, nothing was written; send 1 to {max_batch} events"))]
    if len(docs) > max_batch:
        return [], [Rejection(None, raw, [_error("", "batch_too_large", f"a batch holds at most {max_batch} events, got {len(docs)}",
                                                 f"批次超过上限：每批至多 {max_batch} 个事件，收到 {len(docs)} 个；请分批发送")],
                              (f"批次超过上限 {max_batch} 个事件（收到 {len(docs)} 个），本批次未写入；请分批发送",
                               f"the batch holds {len(docs)} events, more than the {max_batch} allowed; nothing of it was written: send it in parts"))]
    twice_in: dict[int, list[tuple[str | int, ...]]] = {}
    for path in twice:
        at, rest = (path[0], path[1:]) if isinstance(doc, list) else (0, path)
        twice_in.setdefault(at, []).append(rest)
    events, rejections = [], []
    for i, item in enumerate(docs):
        result = validate_document(item, i if isinstance(doc, list) else None, raw, context)
        if i in twice_in:
            # refused whatever else it holds: the copy validated is only the last one sent
            errors = capped_errors(duplicate_key_errors(twice_in[i]) + (result.errors if isinstance(result, Rejection) else []))
            result = Rejection(i if isinstance(doc, list) else None, raw, errors)
        if isinstance(result, Rejection):
            if isinstance(doc, list):
                # keep the bad element itself, not the whole batch; serialised only when rejected
                result.raw = element_bytes(item)
            rejections.append(result)
        else:
            events.append(result)
    return events, rejections


FUTURE_TOLERANCE = dt.timedelta(hours=1)
"""How far past the server's clock an event time may lie: clocks drift, events do not come from the future."""


def from_the_future(events: list[Envelope], raw: bytes, now: dt.datetime, local_offset_hours: float = 8.0,
                    indices: list[int] | None = None) -> list[Rejection]:
    """Valid events whose times lie after they were received.  ``indices``: each event's place in the
    batch, when some elements of it were refused already (default: the events are the batch).

    The fold's clock is event time: one sample dated 2062 by a typo would move an enterprise's
    clock decades on and mark every rectification overdue.  A time eight hours ahead is the
    usual integration bug, a Beijing time sent with ``Z``; the reason says so.
    """
    out: list[Rejection] = []
    elements: list[Any] | None = None
    latest_day = (now + dt.timedelta(hours=local_offset_hours)).date() + dt.timedelta(days=1)
    for i, event in enumerate(events):
        errors = []
        if event.occurred_at > now + FUTURE_TOLERANCE:
            shown, received = event.occurred_at.isoformat().replace("+00:00", "Z"), now.isoformat(timespec="seconds").replace("+00:00", "Z")
            errors.append(_error("occurred_at", "in_the_future",
                                 f"occurred_at {shown} is after the event was received ({received}); was a local time sent as UTC (Z) or without its offset?",
                                 f"发生时间 {shown} 晚于接收时间 {received}，事件不能来自未来；是否把北京时间标成了 UTC（Z）或漏写了 +08:00？"))
        if isinstance(event, SamplingResultEvent) and event.payload.sampled_on > latest_day:
            day = event.payload.sampled_on.isoformat()
            errors.append(_error("payload.sampled_on", "in_the_future", f"sampled_on {day} lies in the future",
                                 f"抽样日期 {day} 晚于今天，请核对"))
        if errors:
            if elements is None:
                doc = load_json(raw)
                doc = doc["events"] if isinstance(doc, dict) and set(doc) == {"events"} else doc
                elements = doc if isinstance(doc, list) else []
            # a batch: the index and the element's own bytes; one event: the body
            at = indices[i] if indices is not None else i
            out.append(Rejection(at, element_bytes(elements[at]), errors) if elements else Rejection(None, raw, errors))
    return out
