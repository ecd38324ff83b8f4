"""The HTTP API of the embedded runtime (FastAPI).

Every route declares the roles that may call it (``Access.allow``; shown in the OpenAPI
description as ``x-qrisk-roles``).  Only ``PUBLIC_ROUTES`` answer without a key:
liveness for orchestrators and the API description.  A missing, malformed, unknown,
expired or revoked key gets 401; a valid key whose role the route does not allow gets
403 (and an ``access.denied`` audit row).  Who posted what is written to ``audit_log``
before the answer.

The same routes serve both event logs: the embedded pipeline, or, with ``QRISK_EVENT_LOG=kafka``,
``qrisk.kafka_api.DistributedBackend`` (writes published to Kafka and acknowledged by the broker
before the answer; reads from the ClickHouse tables the sink writes).
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import hashlib
import json
import re
import sys
import time
import urllib.parse
import uuid
from types import SimpleNamespace
from typing import Annotated, Any, AsyncIterator, Callable, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from alerts.lifecycle import STATES as ALERT_STATES
from ingest.export import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, to_csv, to_xlsx
from ingest.lint import accepted_warnings, event_warnings
from ingest.validate import ERRORS_TRUNCATED, Rejection, capped_errors, decode_body, element_bytes, from_the_future, reason_en, reason_zh, rejection_detail
from schemas.events import _ONE_LINE_PATTERN, EVENT_TYPES, FieldError, door
from schemas.export import catalogue_document
from schemas.upcast import load_json
from qrisk.answers import Accepted, Refusal
from qrisk.auth import POSTING_ROLES, ApiKey, AuditLog, AuthError, KeyStore, event_refusal, posted_as, posting_rules
from qrisk.committer import GroupCommitter
from qrisk.pipeline import LETTER_ERRORS_KEPT, LETTER_TEXT_KEPT, DeadLetter, Pipeline, conflict_error, letter_errors_total

_BATCH_SCHEMA = {
    "oneOf": [
        {"$ref": "#/components/schemas/Event"},
        {"type": "array", "items": {"$ref": "#/components/schemas/Event"}, "maxItems": 1000},
    ]
}

PUBLIC_ROUTES = frozenset({"/healthz", "/readyz", "/v1/event-types", "/v1/catalogue", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
"""Routes that answer without a key: liveness (orchestrators probe it without credentials),
the event types and the API description (both public contract, no data)."""

READERS = ("admin", "supervisor")
ERRORS_PER_ANSWER = 1000
"""About the most errors a 422 lists: each refused element keeps an equal share of them (at least its first)."""
INLINE_DECODE_BYTES = 4 * 1024
"""A body up to this size is decoded on the event loop: one event (1–2 kB, about 0.15 ms), for which a thread's
hop (about 0.07 ms) would be half again; 4 kB of bad keys hold the loop some 20 ms.  A larger body is decoded in a
thread: a batch of 1,000 events took 40 ms of the loop, one of 100,000 unknown keys 3 s."""
POSTERS = POSTING_ROLES

_bearer = HTTPBearer(auto_error=False, scheme_name="apiKey",
                     description="qrisk API key (`qrisk keys create`): `Authorization: Bearer qrisk_<id>_<secret>`")
_ARCHIVED = ("verified", "closed")
"""States in which an alert may have left the fold's book (alerts.closed_kept_days) and be read from the table."""

_AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no key, or a malformed, unknown, expired or revoked key"},
    403: {"description": "the key's role may not do this"},
}
Format = Literal["json", "csv", "xlsx"]
ReportFormat = Literal["json", "text", "xlsx"]


# --------------------------------------------------------------------------- timestamps

UTC = dt.timezone.utc
_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")


def utc_text(value: Any, ms: int | None = None) -> str | None:
    """An instant as every answer of the API writes it: ISO 8601 in UTC, to the millisecond, with
    its zone — ``2026-11-26T21:25:17.077Z``.  The audit trail was written so; the alert's delivery
    attempts came as the store's ``2026-11-26 21:25:17`` (no zone) and the folded views as pydantic
    writes them (``….077398Z`` beside ``…16Z``), which a client parsing one format could not read.

    ``value``: the store's DateTime text (UTC, ``ms`` from its ``_ms`` column), a datetime (naive:
    UTC, the store's convention) or ISO text with a zone.  Milliseconds, because the store keeps
    no more: the same alert read from the fold and from ClickHouse gives the same text."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    elif isinstance(value, dt.datetime):
        moment = value
    else:
        raise TypeError(f"not an instant: {type(value).__name__}")
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    millis = moment.microsecond // 1000 if ms is None else int(ms)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def zoned(doc: Any) -> Any:
    """``doc`` with every instant in it (ISO text with a zone) written as ``utc_text`` does: a copy,
    never the fold's own objects.  Dates, local times in a report's text and other strings stay."""
    if isinstance(doc, dict):
        return {k: zoned(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [zoned(v) for v in doc]
    if isinstance(doc, str) and len(doc) >= 20 and doc[4:5] == "-" and _INSTANT.fullmatch(doc):
        return utc_text(doc)
    return doc


class ZonedJSONResponse(JSONResponse):
    """The API's JSON answers: every instant in them as ``utc_text`` writes it (``zoned``), whichever
    route built them — one place, so that a new route cannot bring back a second format."""

    def render(self, content: Any) -> bytes:
        return super().render(zoned(content))


# --------------------------------------------------------------------------- query parameters

Channel = Literal["http", "import", "kafka", "processing", "sink"]
"""Where a dead letter came from (``DeadLetter.channel``)."""


def _with_zone(moment: dt.datetime) -> dt.datetime:
    # (pydantic's AwareDatetime says why in English only)
    if moment.tzinfo is None:
        raise FieldError("needs its time zone (Z, +08:00): without one the instant is not known",
                         "须带时区（如 Z 或 +08:00）：不带时区无法确定是哪一时刻")
    return moment


def _not_a_number(value: Any) -> Any:
    # pydantic reads a number as epoch seconds (UTC): ?since=-1307 was 1969, not a refusal
    if isinstance(value, (int, float)) or (isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+(\.\d*)?\s*", value)):
        raise FieldError("must be an ISO 8601 instant with its time zone (2026-03-12T08:00:00+08:00), not a number",
                         "应为带时区的 ISO 8601 时间（如 2026-03-12T08:00:00+08:00），不能是数字")
    return value


ZonedTime = Annotated[dt.datetime, BeforeValidator(_not_a_number), AfterValidator(_with_zone)]
"""An instant a client gives in a query (``since``): ISO 8601 with its zone."""


def _epoch_ms(moment: dt.datetime) -> int:
    return (moment - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(milliseconds=1)  # exact: no float


_NOTE_REQUIRED = "x-qrisk-note-required"  # (marks a refusal for the lack of a note; never sent)


def _note_required(why_zh: str, severity: str) -> JSONResponse:
    """A close refused for want of its reason, answered as the other steps that lack a note are (the
    body's field, the reason in each language): it depends on the alert's severity, so the body alone
    cannot refuse it."""
    why_en = (f"action close needs a note on a {severity} alert: how it was handled (the outcome, the finding, "
              f"the re-inspection)")
    error = {"field": "body.note", "type": "note_required", "reason": why_en, "reason_zh": why_zh}
    return JSONResponse(status_code=422, content={"detail": f"请求无效：body.note：{why_zh}",
                                                  "detail_en": f"invalid request: body.note: {why_en}", "errors": [error]})


_DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
"""A day as a query parameter: YYYY-MM-DD, nothing pydantic would also read as a date (a number is a timestamp)."""


class LettersNotKept(Exception):
    """The dead letters of a refused input could not be written (the log refused them): answered 503, not 500."""


class UnknownParameters(Exception):
    """Query parameters refused (422), not ignored: ones the route does not take — a filter a route
    does not have (``/v1/dead-letters?event_id=…``) answered the unfiltered list, as if it had
    matched — and ones given twice (which of the two a layer uses should never be a question)."""

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__("; ".join(e["reason"] for e in errors))
        self.errors = errors


_ROUTE_PARAMETERS: dict[int, tuple[str, ...]] = {}


def _route_parameters(route: Any) -> tuple[str, ...]:
    """The query parameters a route declares (its handler's and its dependencies')."""
    names = _ROUTE_PARAMETERS.get(id(route))
    if names is None:
        found: list[str] = []

        def walk(dependant: Any) -> None:  # (the handler's own first, in the order declared)
            found.extend(p.alias for p in dependant.query_params if p.alias not in found)
            for sub in dependant.dependencies:
                walk(sub)

        walk(route.dependant)
        names = _ROUTE_PARAMETERS[id(route)] = tuple(found)
    return names


def _place_pattern(place: str) -> str:
    """A dead letter's ``position`` that names ``place`` (re2, ClickHouse's ``match``): the whole of
    it, a file:line or topic/partition/offset within it, or a file name before its ``:line`` —
    never a longer line number (``orders.csv:1`` is not ``orders.csv:12``).  Positions look like
    ``orders.csv:12``, ``qrisk.ingress.lab/0/17 (orders.csv:12)``, ``request <id> from orders.csv:12 index 3 key <id>``."""
    quoted = re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", place)  # ASCII punctuation escaped: a literal in re2
    return rf"(^|[ (/]){quoted}($|[ ):])"


def _same_event_id(value: Any, wanted: str) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return uuid.UUID(value) == uuid.UUID(wanted)  # any spelling of the same UUID (upper case, no dashes)
    except ValueError:
        return value.strip() == wanted.strip()


def _spellings(event_id: str) -> list[str]:
    """How an event id may be written in the bytes a sender sent: as asked, and, for a UUID, with
    and without dashes (case is ignored by the search)."""
    text = event_id.strip()
    try:
        value = uuid.UUID(text)
    except ValueError:
        return [text]
    return list(dict.fromkeys([text, str(value), value.hex]))


def _letter_names_event(row: dict[str, Any], wanted: str) -> bool:
    """Whether a dead letter found by the id's text in its raw bytes is that event: its event_id
    (or an element's, for a batch kept whole) — not another event that merely cites the id.  Bytes
    that are no JSON cannot say more than that they hold the id, and are kept."""
    if row.get("raw_encoding") != "utf-8":
        return False  # base64: the id's text in it is a coincidence
    try:
        doc = json.loads(row["raw"])
    except ValueError:
        return True
    if isinstance(doc, dict) and isinstance(doc.get("events"), list):
        doc = doc["events"]
    return any(isinstance(d, dict) and _same_event_id(d.get("event_id"), wanted) for d in (doc if isinstance(doc, list) else [doc]))


class LoggedEvent(BaseModel):
    seq: int = Field(description="its place in the log (Kafka: partition << 40 | offset, as events.seq and the POST answer's seq)")
    event_type: str
    enterprise_id: str
    occurred_at: str = Field(description="the event's own time, UTC")
    received_at: str = Field(description="when qrisk accepted it, UTC")
    source_kind: str
    source_id: str


class SettledBy(BaseModel):
    seq: int = Field(description="the accepted copy's place in the log (as LoggedEvent.seq)")
    received_at: str = Field(description="when qrisk accepted it, UTC")


SETTLED_DESCRIPTION = (
    "null while the letter is outstanding (待处理); else the logged event with the letter's event_id, which a fixed copy "
    "sent later (or the same event sent again) put in the log (已重新提交并接收): its seq and received_at.  Never for a "
    "processing letter (the fold failed on that very logged event), a sink's, an event_id_conflict (the log holds other "
    "content under the id: a correction needs a new event_id), or a letter without an event_id")


class LetterSummary(BaseModel):
    dead_letter_id: str = Field(description="GET /v1/dead-letters/{dead_letter_id} gives the raw bytes and every error")
    received_at: str
    channel: str
    position: str
    reason: str
    event_id: str = Field(description="the refused document's own event_id (a UUID lower case with dashes); '' when the input "
                                      "named none or did not parse, and for letters kept before the column")
    settled_by: SettledBy | None = Field(description=SETTLED_DESCRIPTION)


class EventFate(BaseModel):
    """What became of an event: for the integrator whose answer to POST /v1/events was lost."""

    event_id: str
    status: Literal["logged", "dead_lettered"] = Field(
        description="logged: in the event log (resending it is a harmless duplicate); dead_lettered: not in the log, "
                    "refused — fix it and send it again")
    logged: LoggedEvent | None = None
    dead_letters: list[LetterSummary] = Field(
        default_factory=list, description="refused copies of it, newest first (a logged event may have some too: a "
                                          "correction under its id, a copy from a key that may not send it)")
    judged: dict[str, Any] | None = Field(
        default=None, description="a logged sampling.result (embedded mode): what qrisk judged — verdict (pass / fail / undetermined, "
                                  "verdict_zh), the conclusion it counts with (counted), items failed (qrisk's, and those the lab failed "
                                  "that qrisk passes), items where qrisk's verdict differs from the lab's (disagreements), "
                                  "and, when the report does not count, why (superseded_as, superseded_zh); null until the "
                                  "enterprise is registered")


def sample_judged(record: Any, sender: bool = False) -> dict[str, Any] | None:
    """What a lab reads back of its result: qrisk's verdict and whether the report counts.  ``sender``: a
    lab's key, which sees its own lines only — not the first lab's results a re-test carries, nor another
    lab's event its report was filed beside."""
    j = record.judgement
    if j is None:
        return None
    carried = set(record.not_retested) if sender else set()
    failed = [code for code in j.counted_failed_codes() if code not in carried]
    out = {"sample_no": record.sample_no, "verdict": j.verdict, "verdict_zh": {"pass": "合格", "fail": "不合格"}.get(j.verdict, "无法判定"),
           # the conclusion the sample counts with (the report's: 合格 where the failure is qrisk's alone, 不合格 where the
           # lab failed an item qrisk passes), and the items it names failed — those too
           "counted": j.counted, "failed_items": failed, "disagreements": [c for c in j.disagreements if c not in carried],
           "undetermined_items": [i.item_code for i in j.items if i.verdict == "undetermined" and i.item_code not in carried],
           "superseded_as": record.superseded_as, "superseded_zh": record.superseded_zh(), "not_retested": list(record.not_retested)}
    if sender:
        out["superseded_zh"] = None  # (it names the other report's event id)
        out["not_retested"] = []
    return out


_FATE_EXAMPLES = {
    "logged": {"summary": "in the log", "value": {
        "event_id": "7c1b2a9e-0d4f-4c55-9a3e-2f6d8b1c0e11", "status": "logged",
        "logged": {"seq": 1042, "event_type": "sampling.result", "enterprise_id": "E-330110-001",
                   "occurred_at": "2026-03-12T07:20:00.000Z", "received_at": "2026-03-12T07:20:03.512Z",
                   "source_kind": "lab", "source_id": "CMA-330100-0451"},
        "dead_letters": []}},
    "dead_lettered": {"summary": "refused, kept in dead letters", "value": {
        "event_id": "7c1b2a9e-0d4f-4c55-9a3e-2f6d8b1c0e11", "status": "dead_lettered", "logged": None,
        "dead_letters": [{"dead_letter_id": "5b0e3f0c-9a51-4f6e-8d1e-3c2b7a9d4e10", "received_at": "2026-03-12T07:20:03.512Z",
                          "channel": "http", "position": "request 0f5e2d4c-1b3a-4e5f-8a7b-9c0d1e2f3a4b index 1 key 3fa2c1d0e9b8",
                          "reason": 'payload.items[0].values[1]: must be a number (not quoted) or "ND" / "未检出"',
                          "event_id": "7c1b2a9e-0d4f-4c55-9a3e-2f6d8b1c0e11", "settled_by": None}]}},
}
PLACE_DESCRIPTION = ("dead letters whose position names this place: a file:line of `qrisk import` / `qrisk produce` "
                     "(`orders.csv:12`), a file (`orders.csv`: all its lines), a topic/partition/offset (`qrisk.ingress.lab/0/17`)")
# (module level: the handlers' annotations are read here, from __future__ annotations)
_LETTERS_EXAMPLE = [{
    "dead_letter_id": "5b0e3f0c-9a51-4f6e-8d1e-3c2b7a9d4e10", "received_at": "2026-03-12T07:20:03.512Z", "channel": "http",
    "position": "request 0f5e2d4c-1b3a-4e5f-8a7b-9c0d1e2f3a4b index 1 key 3fa2c1d0e9b8",
    "reason": 'payload.items[0].values[1]: must be a number (not quoted) or "ND" / "未检出"',
    "errors": [{"field": "payload.items[0].values[1]", "type": "measured_value", "reason": 'must be a number (not quoted) or "ND" / "未检出"',
                "reason_zh": '应为数字（不加引号）或 "ND"/"未检出"'}],
    "raw": '{"event_id": "7c1b2a9e-0d4f-4c55-9a3e-2f6d8b1c0e11", …, "values": [45, "59", 8, 61, 10], …}', "raw_encoding": "utf-8",
    "raw_truncated": False, "event_id": "7c1b2a9e-0d4f-4c55-9a3e-2f6d8b1c0e11",
    "settled_by": {"seq": 1043, "received_at": "2026-03-12T07:41:19.207Z"}}]


class AlertActionRequest(BaseModel):
    """A supervisor's step on an alert.  The caller's key is the actor."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["acknowledge", "assign", "start_rectification", "verify", "close", "reopen", "comment", "escalate"] = Field(
        description="escalate (手动升级: the escalation receivers are told, as when an alert is not acknowledged in time), "
                    "comment and reopen need a note")
    note: str = Field(default="", max_length=2000, description="说明：处置情况、整改要求、复查结论……; line breaks and tabs "
                                                                "allowed, no other control character")
    # as the events' short texts (schemas.events.ShortText): one line, 1–200 characters, spaces around dropped
    assignee: str | None = Field(default=None, min_length=1, max_length=200, json_schema_extra={"pattern": _ONE_LINE_PATTERN},
                                 description="action assign: the new owner (one line, no control character)")
    event_id: uuid.UUID | None = Field(default=None, description="set it to retry safely: the same id is one step")

    @field_validator("assignee", mode="before")
    @classmethod
    def _assignee_stripped(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("assignee", mode="after")
    @classmethod
    def _assignee_one_line(cls, value: str | None) -> str | None:
        return _printable(value, "") if value is not None else None

    @field_validator("note", mode="after")
    @classmethod
    def _note_printable(cls, value: str) -> str:
        # a NUL or an ESC went into the log and out in the exports raw: a terminal reading the CSV ran the escape,
        # a spreadsheet cut the cell at the NUL.  Line breaks (CRLF too, a Windows form's) and tabs are a note's own
        return _printable(value, "\t\n")

    @model_validator(mode="after")
    def _needs(self) -> "AlertActionRequest":
        from schemas.events import FieldError

        if self.action == "assign" and not self.assignee:
            raise FieldError("action assign needs an assignee: who handles the alert from now on",
                             "指派须填写负责人（assignee），即此后负责处置该预警的人员", field="assignee")
        if self.action in NOTE_NEEDED and not self.note.strip():
            # a comment of nothing was stored as the bare word 备注; a reopening or an escalation tells its
            # receivers why, and without a reason they cannot tell what is to be done again
            en, zh = NOTE_NEEDED[self.action]
            raise FieldError(en, zh, field="note")
        return self


_CONTROL_CHAR = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(value: str, allowed: str) -> str:
    """``value`` when it holds no control character but those in ``allowed`` (and a carriage return just
    before a line feed when a line feed is allowed); else a FieldError naming the character and where."""
    for found in _CONTROL_CHAR.finditer(value):
        char = found.group()
        if char in allowed or (char == "\r" and "\n" in allowed and value[found.end():found.end() + 1] == "\n"):
            continue
        around = repr(value[max(0, found.start() - 12):found.start() + 12])
        kept_en = " (line breaks and tabs are allowed)" if allowed else ""
        kept_zh = "（换行、制表符除外）" if allowed else ""
        raise FieldError(f"must not contain control characters{kept_en}: found U+{ord(char):04X} in {around}",
                         f"不得含有控制字符{kept_zh}：{around} 中含有 U+{ord(char):04X}")
    return value


NOTE_NEEDED = {
    "comment": ("action comment needs a note: the remark itself", "备注须填写内容（note）"),
    "reopen": ("action reopen needs a note: why it is reopened — its receivers are told",
               "重新打开须填写理由（note）：接收人会收到通知，须说明为何重新打开、需要再做什么"),
    "escalate": ("action escalate needs a note: why it is escalated — the escalation receivers are told",
                 "手动升级须填写理由（note）：升级接收人会收到通知，须说明升级原因和需要上级协调处置的事项"),
}
"""Steps refused (422, naming ``note``) without a reason, beside closing a 紧急/高 alert (alerts.lifecycle.note_missing)."""


# Prometheus wants a HELP and a TYPE per metric; a name missing here is exposed as untyped
METRIC_HELP: dict[str, tuple[str, str]] = {
    "qrisk_events_accepted_total": ("counter", "Events accepted into the log (new)."),
    "qrisk_events_duplicate_total": ("counter", "Events answered as duplicates of logged ones (retries)."),
    "qrisk_events_rejected_total": ("counter", "Events refused as invalid (kept as dead letters)."),
    "qrisk_events_conflict_total": ("counter", "Events whose event_id already names other content (409, dead letters)."),
    "qrisk_events_forbidden_total": ("counter", "Events refused because the key may not post them."),
    "qrisk_events_warned_total": ("counter", "Accepted events answered with warnings (unknown item, unit …)."),
    "qrisk_auth_failures_total": ("counter", "Requests refused for a missing, unknown, expired or revoked key."),
    "qrisk_commit_seconds_total": ("counter", "Seconds spent in group commits (log write and fold)."),
    "qrisk_log_write_failures_total": ("counter", "Events of batches the event log could not take (503)."),
    "qrisk_publish_failures_total": ("counter", "Events of batches Kafka did not acknowledge (503)."),
    "qrisk_ticks_total": ("counter", "clock.tick events written to the log."),
    "qrisk_published_events_total": ("counter", "Events published to the Kafka log."),
    "qrisk_dead_lettered_total": ("counter", "Dead letters written."),
    "qrisk_group_commits_total": ("counter", "Group commits (log writes)."),
    "qrisk_alerts": ("gauge", "Alerts by state."),
    "qrisk_alert_deliveries_sent_total": ("counter", "Alert notifications sent."),
    "qrisk_alert_deliveries_retried_total": ("counter", "Alert notification attempts to retry."),
    "qrisk_alert_deliveries_failed_total": ("counter", "Alert notifications given up."),
    "qrisk_alert_deliveries_given_up": ("gauge", "Alert notifications given up and not re-sent (POST /v1/alerts/redeliver, qrisk alerts redeliver), from the store."),
    "qrisk_alert_dispatcher_active": ("gauge", "1 when this process's dispatcher sends the outbox."),
    "qrisk_log_seq": ("gauge", "The highest seq in the event log."),
    "qrisk_enterprises": ("gauge", "Enterprises with a credit file."),
    "qrisk_derived_lag_events": ("gauge", "Events folded but not yet in the derived tables."),
    "qrisk_derived_write_failures": ("gauge", "Consecutive failed writes of derived rows (0: writing)."),
}
# counters a dashboard or an alert rule reads from the first scrape, before anything happened, with
# the labels they are counted under (a series first seen at its first increment hides that increment
# from increase())
_ZERO_AT_START = (
    *(f'{name}{{channel="http"}}' for name in ("qrisk_events_accepted_total", "qrisk_events_duplicate_total",
                                               "qrisk_events_rejected_total", "qrisk_events_conflict_total")),
    *(f'qrisk_auth_failures_total{{reason="{r}"}}' for r in ("malformed", "missing", "role", "unknown", "revoked", "expired")),
    "qrisk_log_write_failures_total",
    "qrisk_ticks_total", "qrisk_commit_seconds_total", 'qrisk_events_warned_total{channel="http"}',
    # (admin may post any event: never forbidden; the other roles are refused at the route)
    *(f'qrisk_events_forbidden_total{{channel="http",role="{r}"}}' for r in ("bureau", "complaint", "inspector", "lab")),
)


def _sample_value(value: float) -> str:
    # whole numbers in full (a log position of 12,345,678 is not 1.23457e+07), others exactly
    v = float(value)
    return str(int(v)) if v.is_integer() and abs(v) < 2 ** 53 else repr(v)


class Metrics:
    def __init__(self) -> None:
        self.counters: dict[str, float] = {name: 0.0 for name in _ZERO_AT_START}

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        key = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
        self.counters[key] = self.counters.get(key, 0.0) + value

    def render(self, gauges: dict[str, float]) -> str:
        samples = sorted([*self.counters.items(), *gauges.items()], key=lambda kv: (kv[0].partition("{")[0], kv[0]))
        lines: list[str] = []
        named = ""
        for key, value in samples:
            name = key.partition("{")[0]
            if name != named:
                named = name
                kind, text = METRIC_HELP.get(name, ("untyped", name))
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            lines.append(f"{key} {_sample_value(value)}")
        return "\n".join(lines) + "\n"


class Access:
    """Route guards: ``allow(*roles)`` is a dependency that yields the caller's key."""

    def __init__(self, keys: KeyStore, audit: AuditLog, metrics: Metrics):
        self.keys = keys
        self.audit = audit
        self.metrics = metrics

    def allow(self, *roles: str) -> Callable[..., Any]:
        async def guard(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(_bearer)) -> ApiKey:
            if credentials is None:
                self.metrics.inc("qrisk_auth_failures_total", reason="missing")
                raise HTTPException(status_code=401, detail="需要 API 密钥 / an API key is required: Authorization: Bearer <key>",
                                    headers={"WWW-Authenticate": "Bearer"})
            try:
                key = self.keys.authenticate(credentials.credentials)
            except AuthError as exc:
                self.metrics.inc("qrisk_auth_failures_total", reason=exc.reason)
                raise HTTPException(status_code=401, detail=f"API 密钥无效 / {exc.detail}",
                                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
            if key.role not in roles:
                self.metrics.inc("qrisk_auth_failures_total", reason="role")
                await asyncio.wrap_future(self.audit.record(
                    "access.denied", "denied", key, {"method": request.method, "path": request.url.path, "allowed": list(roles)}))
                raise HTTPException(status_code=403, detail=(
                    f"角色 {key.role} 无权访问 {request.method} {request.url.path} / role {key.role} may not call this; "
                    f"allowed: {', '.join(roles)}"))
            check_query(request)
            return key

        guard.roles = roles  # type: ignore[attr-defined]  # read by the route-table test
        return guard


def check_query(request: Request) -> None:
    """Refuse (422) query parameters the route does not take and ones given twice: a filter a route does not
    have must not answer as if it had matched.  Run by every keyed route's guard and by the public /v1 routes."""
    _check_utf8(request)
    params = request.query_params
    if len(params.multi_items()) != len(params):
        # parameter pollution: which of two values a layer uses should never be a question
        repeated = sorted({k for k, _ in params.multi_items() if len(params.getlist(k)) > 1})
        raise UnknownParameters([
            {"field": f"query.{name}", "type": "repeated_parameter", "reason": f"query parameter {name!r} given more than once",
             "reason_zh": f"查询参数 {name} 重复出现，只能给一次"}
            for name in repeated])
    route = request.scope.get("route")
    if params and route is not None:
        known = _route_parameters(route)
        unknown = [name for name in params if name not in known]
        if unknown:
            takes_en = f"takes {', '.join(known)}" if known else "takes no query parameters"
            takes_zh = f"可用的参数为 {'、'.join(known)}" if known else "不接受查询参数"
            raise UnknownParameters([
                {"field": f"query.{name}", "type": "extra_forbidden",
                 "reason": f"unknown query parameter {name!r}: {request.method} {route.path} {takes_en}",
                 "reason_zh": f"未知的查询参数 {name}：{request.method} {route.path} {takes_zh}"}
                for name in unknown])


def _check_utf8(request: Request) -> None:
    """Refuse (422) a path or query whose percent-decoded bytes are not UTF-8 (GBK encoded by the client as
    %B1%B1…): Starlette reads them as replacement characters, and a free-text filter (?product=, ?lab=)
    matched nothing — an empty list answered 200, as if nothing were there."""
    bad: list[str] = []
    if not _utf8(urllib.parse.unquote_to_bytes(request.scope.get("raw_path") or b"")):
        bad.append("path")
    for pair in (request.scope.get("query_string") or b"").split(b"&"):
        name, _, value = pair.partition(b"=")
        if not (_utf8(urllib.parse.unquote_to_bytes(name)) and _utf8(urllib.parse.unquote_to_bytes(value))):
            shown = urllib.parse.unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace")
            bad.append(f"query.{shown}")
    if bad:
        raise UnknownParameters([
            {"field": field, "type": "url_encoding",
             "reason": f"{field} is not UTF-8 once percent-decoded (GBK?): the URL must be UTF-8 percent-encoded",
             "reason_zh": f"{field} 解码后不是 UTF-8（GBK？）：URL 须为 UTF-8 编码，中文按 UTF-8 经 URL 编码"}
            for field in dict.fromkeys(bad)])


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _declared(guard: Callable[..., Any], **openapi_extra: Any) -> dict[str, Any]:
    """Route keyword arguments that show the roles in the API description."""
    return {"openapi_extra": {"x-qrisk-roles": list(guard.roles), **openapi_extra}}  # type: ignore[attr-defined]


def _sheet(rows: list[dict[str, Any]], columns: list[str], name: str, sheet: str, headers: dict[str, str],
           number_formats: dict[str, str] | None = None, note: str | None = None) -> Response:
    """An XLSX for people (``qrisk.sheets``): Chinese headers and values, local dates and times as date cells; ``note``
    ends the sheet (that it does not hold every row that matched)."""
    return Response(to_xlsx(rows, columns, sheet=sheet, headers=headers, number_formats=number_formats, note=note, dates=True),
                    media_type=XLSX_MEDIA_TYPE,
                    headers={"content-disposition": f'attachment; filename="{name}.xlsx"'})


_DURATION = re.compile(r"\d+[smhd]", re.IGNORECASE)

# (module level: the routes' annotations are read in this module's namespace)
_SINCE_DOC = ("at or after: a date (2026-07-01, from its midnight in the bureau's time), an instant with its zone, "
              "or a duration back from now (7d)")
_UNTIL_DOC = "before: an instant with its zone, or a date (2026-09-30: that day included, in the bureau's time)"
EXPORT_MAX_ROWS = 5000
"""The most rows a list answers at once (``?limit=``), and what an export (csv, xlsx) gives when no limit is named."""
Limit = Annotated[int | None, Query(ge=1, le=EXPORT_MAX_ROWS, description=(
    "newest first; 200 by default, an export (csv, xlsx) 5,000; at most 5,000 (x-qrisk-total: how many matched; "
    "x-qrisk-truncated: true, with x-qrisk-next-offset, when more rows follow this page)"))]
Offset = Annotated[int, Query(ge=0, description="rows skipped first, in the same order: ?limit=100&offset=100 gives rows 101–200")]


def _page(rows: list[Any], limit: int | None, offset: int, fmt: str) -> tuple[list[Any], dict[str, str], str | None]:
    """The rows an answer holds, its headers and, when they are not all that matched, the note an XLSX ends with.
    An export with no limit named gives as many rows as any answer may: a quarter's register downloaded to print
    came out as its newest 200 rows, and nothing in the file said so."""
    if limit is None:
        limit = 200 if fmt == "json" else EXPORT_MAX_ROWS
    page = rows[offset:offset + limit]
    headers = {"x-qrisk-total": str(len(rows))}  # (how many matched, before the limit: a quarter's count)
    if len(page) == len(rows):
        return page, headers, None
    if offset + len(page) < len(rows):
        # more rows follow this page (a client pages until it is gone: sent on the last page too, it never stopped)
        headers["x-qrisk-truncated"] = "true"
        headers["x-qrisk-next-offset"] = str(offset + len(page))
    if offset == 0:
        said = f"本表列出最新 {len(page)} 条"
    elif page:
        said = f"本表列出按时间由新到旧的第 {offset + 1}–{offset + len(page)} 条"
    else:
        said = f"第 {offset + 1} 条起已无记录"
    return page, headers, f"共 {len(rows)} 条，{said}；请缩小时间范围分段导出"



def _instant(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _since(text: str, now: dt.datetime, utc_offset_hours: int) -> dt.datetime | None:
    """The instant ``?since=`` names, or None if it names none.  A date is a supervisor's day, which
    begins at midnight in the bureau's time (policy ``utc_offset_hours``), not in UTC; an instant
    without its zone is refused, as everywhere in this API (whose clock would it be read on?)."""
    import argparse

    from qrisk.cli_alerts import _duration

    text = text.strip()
    if _DURATION.fullmatch(text):
        try:
            return now - dt.timedelta(seconds=_duration(text))
        except (argparse.ArgumentTypeError, OverflowError):  # 0d, or further back than any calendar
            return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time(), dt.timezone(dt.timedelta(hours=utc_offset_hours)))
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _escalated_zh(alert: dict[str, Any]) -> str:
    """已超时升级, as a sheet says it: 否, 是, or 是（升级无人接收：未配置接收人）."""
    if not alert.get("escalated"):
        return "否"
    from qrisk.credit_report import escalation_reached

    reached, why = escalation_reached(alert)
    return "是" if reached else f"是（升级无人接收：{why}）"


def _printed(report: dict[str, Any], fmt: str) -> Any:
    """The credit report as ``qrisk credit-file`` writes it: ``qrisk credit-file`` cannot open a chdb
    data directory ``qrisk run`` holds, and a supervisor should not need the service stopped to print one."""
    if fmt == "json":
        return report
    from qrisk.credit_report import render_text, write_xlsx

    if fmt == "text":
        return PlainTextResponse(render_text(report), media_type="text/plain; charset=utf-8")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="qrisk-report-") as tmp:  # (openpyxl saves to a path; gone once read)
        body = write_xlsx(report, Path(tmp) / "report.xlsx").read_bytes()
    # an ASCII name every client keeps, and the Chinese one (RFC 6266 filename*) for those that read it
    eid = report["enterprise_id"]
    plain = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in eid)
    named = urllib.parse.quote(f"诚信档案_{report.get('name') or eid}_{eid}.xlsx", safe="")
    return Response(body, media_type=XLSX_MEDIA_TYPE, headers={
        "content-disposition": f"attachment; filename=\"credit-file-{plain}.xlsx\"; filename*=UTF-8''{named}"})


def _table(rows: list[dict[str, Any]], columns: list[str], fmt: str, name: str) -> Response:
    if fmt == "csv":
        return Response(to_csv(rows, columns), media_type=CSV_MEDIA_TYPE,
                        headers={"content-disposition": f'attachment; filename="{name}.csv"'})
    return Response(to_xlsx(rows, columns, sheet=name), media_type=XLSX_MEDIA_TYPE,
                    headers={"content-disposition": f'attachment; filename="{name}.xlsx"'})


def create_app(pipeline: Pipeline, max_body_bytes: int = 8 * 1024 * 1024, max_batch: int = 1000, *, keys: KeyStore,
               dispatcher: Any = None, tick_seconds: float = 0.0) -> FastAPI:
    """The API over a pipeline; ``keys`` is required: there is no anonymous mode.  ``dispatcher``
    (``alerts.outbox.Dispatcher``) sends alert notifications while the app runs."""
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if dispatcher is not None:
            dispatcher.start()
        ticker = asyncio.create_task(_tick_every(tick_seconds)) if tick_seconds > 0 and not distributed else None
        yield
        if ticker is not None:
            ticker.cancel()
        if dispatcher is not None:
            dispatcher.stop()
        # shutdown: what the group committer holds is written before the log closes
        committer.close()
        audit.close()
        pipeline.close()

    app = FastAPI(title="qrisk", version="0.1.0", description="食品质量风险监测 — event-sourced quality-risk monitoring",
                  lifespan=lifespan, default_response_class=ZonedJSONResponse)
    distributed = getattr(pipeline, "mode", "embedded") == "kafka"

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # a bad query parameter or action body answers as a bad event does: the field, the reason
        # in English and in Chinese (FastAPI's own answer is English only)
        errors = [{"field": ".".join(str(p) for p in e.get("loc", ())), "type": e["type"], "reason": reason_en(e),
                   "reason_zh": reason_zh(e)} for e in exc.errors()]
        return JSONResponse(status_code=422, content={
            "detail": "请求无效：" + "；".join(f"{e['field']}：{e['reason_zh']}" for e in errors),
            "detail_en": "invalid request: " + "; ".join(f"{e['field']}: {e['reason']}" for e in errors),
            "errors": errors,
        })

    @app.exception_handler(LettersNotKept)
    async def _letters_not_kept(request: Request, exc: LettersNotKept) -> JSONResponse:
        # a refusal is only answered once it is kept: the sender keeps its input and sends it again (a 500 said nothing)
        metrics.inc("qrisk_log_write_failures_total", 1)
        return JSONResponse(status_code=503, headers={"Retry-After": "5"}, content={
            "detail": "输入有误，但拒收记录未能写入（事件日志不可用），本请求未处理；请稍后重发，届时将说明错误所在",
            "detail_en": f"the input is refused, but its dead letter could not be kept (the event log is unavailable): nothing of this "
                         f"request was processed; send it again later to learn what is wrong: {exc}"[:1000]})

    @app.exception_handler(UnknownParameters)
    async def unknown_parameters(request: Request, exc: UnknownParameters) -> JSONResponse:
        # the shape of any other bad parameter's answer (invalid_request)
        return JSONResponse(status_code=422, content={
            "detail": "请求无效：" + "；".join(e["reason_zh"] for e in exc.errors),
            "detail_en": "invalid request: " + "; ".join(e["reason"] for e in exc.errors),
            "errors": exc.errors,
        })

    pipeline.start_background_sink()
    committer = GroupCommitter(pipeline)
    metrics = Metrics()
    audit = AuditLog(pipeline.store, pipeline.clock)
    access = Access(keys, audit, metrics)
    synced: set[str] = set()
    audit.sync_key_history(keys, synced)  # key changes made while the server was down
    app.state.pipeline = pipeline
    app.state.committer = committer
    app.state.keys = keys
    app.state.audit = audit
    app.state.dispatcher = dispatcher

    posters = access.allow(*POSTERS)
    readers = access.allow(*READERS)
    admins = access.allow("admin")
    letter_readers = access.allow(*dict.fromkeys(READERS + POSTERS))
    monitors = access.allow("admin", "monitor")
    handlers = access.allow("admin", "supervisor")

    async def _tick_every(seconds: float) -> None:
        """The log's clock: a clock.tick through the same durable path as any event (the Kafka
        runtime has `qrisk tick --every` for this)."""
        from schemas.events import ClockTick

        while True:
            await asyncio.sleep(seconds)
            tick = ClockTick(event_id=uuid.uuid4(), event_type="clock.tick", enterprise_id="*", occurred_at=pipeline.clock(),
                             source={"kind": "system", "id": "qrisk-ticker"})
            try:
                await asyncio.wrap_future(committer.submit([tick]))
                metrics.inc("qrisk_ticks_total")
            except Exception as exc:  # noqa: BLE001 - the next tick tries again; the log is unchanged
                print(f"qrisk: clock.tick not written ({type(exc).__name__}: {exc})", file=sys.stderr)

    async def dead_letter(letters: list[DeadLetter]) -> list[str]:
        try:
            return await asyncio.get_running_loop().run_in_executor(None, pipeline.dead_letter, letters)
        except Exception as exc:
            from qrisk.kafka_log import PublishError
            from qrisk.store import StoreError

            if isinstance(exc, (PublishError, StoreError)):
                raise LettersNotKept(str(exc)) from exc
            raise

    async def too_large_body(head: bytes, size: int, request_id: str, position: str, key: ApiKey) -> JSONResponse:
        """A body over QRISK_MAX_BODY_BYTES, refused as the door refuses any input: an answer with its request_id,
        a dead letter of its first bytes (the whole would be the very size refused), an audit row ``too_large``."""
        more = "" if size > max_body_bytes else " or more"  # (sent without a Content-Length, it was not read to its end)
        more_zh = "" if size > max_body_bytes else "以上"
        error = {"field": "", "type": "body_too_large", "raw_bytes": size,
                 "reason": f"the body is {size} bytes{more}, more than the {max_body_bytes} allowed (QRISK_MAX_BODY_BYTES): "
                           f"send the batch in parts",
                 "reason_zh": f"请求体为 {size} 字节{more_zh}，超过上限 {max_body_bytes} 字节（QRISK_MAX_BODY_BYTES）；请分批发送"}
        note = {"field": "", "type": "letter_truncated", "raw_bytes": size,
                "reason": f"dead letter truncated: only the first {len(head)} bytes of the body are kept",
                "reason_zh": f"拒收记录已截断：仅保留请求体的前 {len(head)} 字节"}
        ids = await dead_letter([DeadLetter("http", position, head, f"too_large: {error['reason']} [{note['reason']}]", [error, note])])
        metrics.inc("qrisk_events_rejected_total", 1, channel="http")
        await asyncio.wrap_future(audit.record("events.posted", "too_large", key, {"request_id": request_id, "body_bytes": size, "dead_letter_ids": ids}))
        return JSONResponse(status_code=413, content={
            "detail": f"请求体超过 {max_body_bytes} 字节，未写入任何内容；请分批发送",
            "detail_en": f"the body is larger than {max_body_bytes} bytes; nothing was written: send it in parts",
            "request_id": request_id,
            "errors": [{"index": None, **error, "dead_letter_id": ids[0]}],
        })

    @app.post(
        "/v1/events",
        summary="Post one event or a batch (JSON array)",
        **_declared(posters, requestBody={"required": True, "content": {"application/json": {"schema": _BATCH_SCHEMA}}}),
        # (the answers' bodies as models: what a client generated from /openapi.json reads)
        responses={200: {"description": "all events durable (accepted or duplicate)", "model": Accepted},
                   401: {**_AUTH_RESPONSES[401], "model": Refusal},
                   403: {"description": "the key's role may not post, or (with errors) events this key may not send: "
                                        "nothing of the batch was written; each such event kept in dead letters", "model": Refusal},
                   409: {"description": "an event_id already names a different event; nothing of the batch was written; "
                                        "each such event kept in dead letters", "model": Refusal},
                   413: {"description": "body too large, or (Kafka mode) one event too large for the log", "model": Refusal},
                   415: {"description": "a compressed body (Content-Encoding gzip, br …): send the JSON uncompressed; "
                                        "kept in dead letters", "model": Refusal},
                   422: {"description": "rejected; nothing of the batch was written; each bad event kept in dead letters "
                                        "(every problem of every element named at once)", "model": Refusal},
                   503: {"description": "the log did not confirm the write: nothing accepted; resend the whole batch "
                                        "(repeating an event_id is safe)", "model": Refusal}},
    )
    async def post_events(request: Request, key: ApiKey = Security(posters)) -> JSONResponse:
        raw, past_limit = await _read_bounded(request, max_body_bytes)
        request_id = str(uuid.uuid4())
        where = f"request {request_id}"
        # an importer posting a line it could not read (qrisk import --url) says where it came from and why
        origin = urllib.parse.unquote(request.headers.get("x-qrisk-position", ""))[:300]
        told = urllib.parse.unquote(request.headers.get("x-qrisk-client-reason", ""))[:1000]
        # its reason in Chinese beside it (an older importer sends one header: both fields take it)
        told_zh = urllib.parse.unquote(request.headers.get("x-qrisk-client-reason-zh", ""))[:1000] or told
        if origin:
            where += f" from {origin}"
        # an importer posting a file's lines as a batch says which line each element is (x-qrisk-lines:
        # orders.jsonl:1-4,6,8-1000): a refused element's letter is then found by its file:line too
        lines = _ElementLines.parse(urllib.parse.unquote(request.headers.get("x-qrisk-lines", "")), max_batch)

        def letter_at(i: int | None) -> str:
            """The dead letter's position of element ``i`` (None: the body as a whole)."""
            if i is None:
                return f"{where} key {key.key_id}"
            if lines is not None and lines.count == elements_posted and not origin:
                return f"request {request_id} from {lines.at(i)} index {i} key {key.key_id}"
            return f"{where} index {i} key {key.key_id}"
        async def conflicting(at: list[int], elements: list[Any], skip: set[int]) -> list[Rejection]:
            """The events (``events[j]`` is element ``at[j]``) whose id the log holds for other content, those
            in ``skip`` aside: named in a 422 or 403 beside the rest, or its resend would meet a 409 next."""
            check = getattr(pipeline, "conflicts", None)  # (the Kafka log's workers find them after publishing)
            if check is None:
                return []
            # (off the event loop: it waits for the pipeline's lock, which a commit holds while it folds)
            found = await asyncio.to_thread(check, [e for j, e in enumerate(events) if at[j] not in skip])
            kept = [j for j in range(len(events)) if at[j] not in skip]
            out = []
            for k, seq in sorted(found.items()):
                i = at[kept[k]]
                error = {f: v for f, v in _conflict_error(i, str(events[kept[k]].event_id), seq).items() if f != "index"}
                out.append(Rejection(i, element_bytes(elements[i]), [error]))
            return out

        if past_limit is not None:
            return await too_large_body(raw, past_limit, request_id, letter_at(None), key)
        encoding = request.headers.get("content-encoding", "").strip()
        if encoding.lower() not in ("", "identity"):
            # a gzip body read as JSON was named "not UTF-8 (例如按 GBK 发送)": the sender would look for the wrong fault
            error = {"field": "", "type": "content_encoding",
                     "reason": f"Content-Encoding {encoding!r}: compressed bodies are not supported; send the JSON uncompressed (UTF-8)",
                     "reason_zh": f"不支持压缩的请求体（Content-Encoding: {encoding}）；请发送未压缩的 UTF-8 JSON"}
            ids = await dead_letter([_whole_body_letter(letter_at(None), raw, f"content_encoding: {error['reason']}", [error])])
            metrics.inc("qrisk_events_rejected_total", 1, channel="http")
            await asyncio.wrap_future(audit.record("events.posted", "rejected", key, {"request_id": request_id, "rejected": 1, "dead_letter_ids": ids}))
            return JSONResponse(status_code=415, content={
                "detail": f"不支持压缩的请求体（Content-Encoding: {encoding}），未写入任何内容；请发送未压缩的 JSON",
                "detail_en": f"a compressed body (Content-Encoding: {encoding}) is not supported; nothing was written: send the JSON uncompressed",
                "request_id": request_id,
                "errors": [{"index": None, **error, "dead_letter_id": ids[0]}],
            })
        context = door(pipeline.rules.policy.utc_offset_hours)
        if len(raw) <= INLINE_DECODE_BYTES:
            events, rejections = decode_body(raw, max_batch, context)
        else:
            # off the event loop: a body of many bad keys took seconds to word, and /healthz, every other
            # request and the ticker waited on it; a small one decodes faster than a thread hop costs
            events, rejections = await asyncio.to_thread(decode_body, raw, max_batch, context)
        # (the batch's elements: those read, and those refused by their index; a header naming another number is not used)
        elements_posted = len(events) + sum(1 for r in rejections if r.index is not None)
        if not rejections:
            rejections = from_the_future(events, raw, pipeline.clock(), pipeline.rules.policy.utc_offset_hours)
            if rejections and all(r.index is not None for r in rejections):
                elements = _elements(raw)
                if elements is not None:
                    rejections += await conflicting(list(range(len(events))), elements, {r.index for r in rejections})
                    rejections.sort(key=lambda r: r.index)
        elif events and all(r.index is not None for r in rejections):
            # a batch with bad elements: its valid ones are checked too (the future, this key's right to send
            # them), so that one answer names everything to fix rather than one kind of error per resend
            rejected = {r.index for r in rejections}
            indices = [i for i in range(len(events) + len(rejected)) if i not in rejected]
            rejections += from_the_future(events, raw, pipeline.clock(), pipeline.rules.policy.utc_offset_hours, indices=indices)
            elements = _elements(raw)
            if elements is not None:
                for at, event in zip(indices, events):
                    err = event_refusal(key, event)
                    if err is not None:
                        rejections.append(Rejection(at, element_bytes(elements[at]), [err]))
                rejections += await conflicting(indices, elements, {r.index for r in rejections})
            rejections.sort(key=lambda r: r.index)
        if rejections:
            if told:
                for r in rejections:
                    r.errors.insert(0, {"field": "", "type": "client_reason", "reason": told, "reason_zh": told_zh})
            # (an element this key may not send, refused beside invalid ones, is kept and counted as a 403 keeps it)
            forbidden = [all(e.get("type") == "forbidden" for e in r.errors) for r in rejections]
            clashing = [all(e.get("type") == "event_id_conflict" for e in r.errors) for r in rejections]
            letters = [
                DeadLetter("http", letter_at(r.index), r.raw,
                           f"forbidden: {r.reason}" if denied else f"conflict: {r.reason}" if clash else r.reason, r.errors)
                if r.whole is None else _whole_body_letter(letter_at(r.index), r.raw, r.reason, r.errors)
                for r, denied, clash in zip(rejections, forbidden, clashing)
            ]
            ids = await dead_letter(letters)
            if sum(forbidden):
                metrics.inc("qrisk_events_forbidden_total", sum(forbidden), channel="http", role=key.role)
            if sum(clashing):
                metrics.inc("qrisk_events_conflict_total", sum(clashing), channel="http")
            if len(rejections) - sum(forbidden) - sum(clashing):
                metrics.inc("qrisk_events_rejected_total", len(rejections) - sum(forbidden) - sum(clashing), channel="http")
            errors = []
            # each element named, with its first errors: a batch of 1,000 elements each naming 50 errors made an
            # answer of 50,000; each dead letter keeps its own (up to ERRORS_KEPT) for the integrator to read
            share = max(1, ERRORS_PER_ANSWER // len(rejections))
            for r, dl_id in zip(rejections, ids):
                for e in capped_errors(r.errors, share):
                    errors.append({"index": r.index, **e, "dead_letter_id": dl_id})
            await asyncio.wrap_future(audit.record("events.posted", "rejected", key, {"request_id": request_id, "rejected": len(rejections), "dead_letter_ids": ids[:50]}))
            detail, detail_en = rejection_detail(rejections)
            if sum(clashing):
                detail += f"；其中 {sum(clashing)} 个事件的 event_id 已用于内容不同的事件，更正结果请以新的 event_id 发送"
                detail_en += f"; {sum(clashing)} of them reuse an event_id of a different event (send a correction under a new event_id)"
            return JSONResponse(status_code=422, content={
                "detail": detail,
                "detail_en": detail_en,
                "request_id": request_id,
                "errors": errors,
            })
        refused = [(i, err) for i, event in enumerate(events) if (err := event_refusal(key, event)) is not None]
        if refused:
            # the events are valid but this key may not send them: nothing written, each kept in dead letters
            elements = _elements(raw)
            clashes = [] if elements is None else await conflicting(list(range(len(events))), elements, {i for i, _ in refused})
            letters = [
                DeadLetter("http", letter_at(i if elements is not None else None),
                           element_bytes(elements[i]) if elements is not None else raw, f"forbidden: {err['reason']}", [err])
                for i, err in refused
            ] + [DeadLetter("http", letter_at(r.index), r.raw, f"conflict: {r.reason}", r.errors) for r in clashes]
            refused += [(r.index, r.errors[0]) for r in clashes]
            ids = await dead_letter(letters)
            if clashes:
                metrics.inc("qrisk_events_conflict_total", len(clashes), channel="http")
            metrics.inc("qrisk_events_forbidden_total", len(refused) - len(clashes), channel="http", role=key.role)
            await asyncio.wrap_future(audit.record("events.posted", "forbidden", key, {"request_id": request_id, "forbidden": len(refused), "dead_letter_ids": ids[:50]}))
            denied = len(refused) - len(clashes)
            also, also_en = (f"；另有 {len(clashes)} 个事件的 event_id 已用于内容不同的事件，更正结果请以新的 event_id 发送",
                             f"; {len(clashes)} other event(s) reuse an event_id of a different event (send a correction under a new event_id)") if clashes else ("", "")
            return JSONResponse(status_code=403, content={
                "detail": f"{denied} 个事件超出该密钥的权限，本批次未写入{also}",
                "detail_en": f"{denied} event(s) are not this key's to send ({key.label}); nothing of this request was written{also_en}",
                "request_id": request_id,
                "errors": [{"index": i if elements is not None else None, **err, "dead_letter_id": dl_id} for (i, err), dl_id in zip(refused, ids)],
            })
        if distributed:
            # one event past what a log message may hold: refused whole before anything is published
            # (the body limit is a batch's; each event is counted alone), each kept in dead letters
            from qrisk.kafka_log import EVENT_MAX_BYTES, event_value, too_large_error

            big = [(i, too_large_error(len(v))) for i, e in enumerate(events) if len(v := event_value(e)) > EVENT_MAX_BYTES]
            if big:
                elements = _elements(raw)
                letters = [
                    DeadLetter("http", letter_at(i if elements is not None else None),
                               element_bytes(elements[i]) if elements is not None else raw, f"too_large: {err['reason']}", [err])
                    for i, err in big
                ]
                ids = await dead_letter(letters)
                metrics.inc("qrisk_events_rejected_total", len(big), channel="http")
                await asyncio.wrap_future(audit.record("events.posted", "too_large", key, {"request_id": request_id, "too_large": len(big), "dead_letter_ids": ids[:50]}))
                return JSONResponse(status_code=413, content={
                    "detail": f"{len(big)} 个事件超过事件日志的单个事件上限（{EVENT_MAX_BYTES} 字节），本批次未写入；请拆分或缩短后重发",
                    "detail_en": f"{len(big)} event(s) larger than the {EVENT_MAX_BYTES} bytes one event may have in the log; nothing of this request was written",
                    "request_id": request_id,
                    "errors": [{"index": i if elements is not None else None, **err, "dead_letter_id": d} for (i, err), d in zip(big, ids)],
                })
        started = time.perf_counter()
        try:
            outcomes = await asyncio.wrap_future(committer.submit(events))
        except Exception as exc:  # noqa: BLE001 - only a publish failure is the client's to retry
            from qrisk.kafka_log import PublishError
            from qrisk.store import StoreError

            if isinstance(exc, StoreError):
                # the log insert failed (the server down, this writer's lease lapsed): nothing was acknowledged
                metrics.inc("qrisk_log_write_failures_total", len(events))
                # (as for Kafka: who was turned away, and why; the audit writer does not hold the answer long on a full disk)
                await asyncio.wrap_future(audit.record("events.posted", "unavailable", key, {"request_id": request_id, "error": str(exc)[:500]}))
                return JSONResponse(status_code=503, headers={"Retry-After": "5"}, content={
                    "detail": "事件日志未确认写入，本批次不能视为已接收；请稍后重发整批（重发同一 event_id 是安全的）",
                    "detail_en": f"the event log did not confirm the write; this batch is not accepted; resend it (repeating an event_id is safe): {exc}"[:1000],
                    "request_id": request_id,
                })
            if not isinstance(exc, PublishError):
                raise
            metrics.inc("qrisk_publish_failures_total", len(events), channel="http")
            await asyncio.wrap_future(audit.record("events.posted", "unavailable", key, {"request_id": request_id, "error": str(exc)[:500]}))
            return JSONResponse(status_code=503, headers={"Retry-After": "5"}, content={
                "detail": "事件日志（Kafka）未确认本批次，不能视为已接收；请稍后重发整批（重发同一 event_id 是安全的）",
                "detail_en": f"the event log (Kafka) did not acknowledge this batch; resend it (repeating an event_id is safe): {exc}",
                "request_id": request_id,
            })
        metrics.inc("qrisk_commit_seconds_total", time.perf_counter() - started)
        clashes = [(i, o.seq) for i, o in enumerate(outcomes) if o.status == "conflict"]
        if clashes:
            # an id already names a different event: a correction must come as a new event, and the
            # sender must learn that this one did not land (nothing of the request was written)
            elements = _elements(raw)
            errors = [_conflict_error(i if elements is not None else None, str(events[i].event_id), seq) for i, seq in clashes]
            letters = [
                DeadLetter("http", letter_at(i if elements is not None else None),
                           element_bytes(elements[i]) if elements is not None else raw, f"conflict: {err['reason']}", [err])
                for (i, _), err in zip(clashes, errors)
            ]
            ids = await dead_letter(letters)
            metrics.inc("qrisk_events_conflict_total", len(clashes), channel="http")
            await asyncio.wrap_future(audit.record("events.posted", "conflict", key, {"request_id": request_id, "conflicts": len(clashes), "dead_letter_ids": ids[:50]}))
            return JSONResponse(status_code=409, content={
                "detail": f"{len(clashes)} 个事件的 event_id 已用于内容不同的事件，本批次未写入；事件一经接收不可修改，更正结果请以新的 event_id 发送",
                "detail_en": f"{len(clashes)} event(s) reuse an event_id of a different event; nothing of this request was written. "
                             "An accepted event is immutable: send a correction as a new event with a new event_id",
                "request_id": request_id,
                "errors": [{**err, "dead_letter_id": dl_id} for err, dl_id in zip(errors, ids)],
            })
        accepted = sum(1 for o in outcomes if o.status == "accepted")
        metrics.inc("qrisk_events_accepted_total", accepted, channel="http")
        metrics.inc("qrisk_events_duplicate_total", len(outcomes) - accepted, channel="http")
        seqs = [o.seq for o in outcomes if o.seq is not None]
        await asyncio.wrap_future(audit.record("events.posted", "ok", key, {
            "request_id": request_id, "accepted": accepted, "duplicates": len(outcomes) - accepted,
            "types": dict(collections.Counter(e.event_type for e in events)),
            "first_seq": min(seqs) if seqs else None, "last_seq": max(seqs) if seqs else None,
        }))
        answered = []
        for event, o in zip(events, outcomes):
            entry: dict[str, Any] = {"event_id": o.event_id, "status": o.status, "seq": o.seq}
            # accepted as the lab's record, but qrisk cannot judge these items; a retry hears it again (its
            # first answer may be the one that was lost)
            if o.status in ("accepted", "duplicate") and (warned := _warnings(event)):
                entry["warnings"] = warned
            answered.append(entry)
        warned_total = sum(len(e.get("warnings", ())) for e in answered)
        if warned_total:
            metrics.inc("qrisk_events_warned_total", sum(1 for e in answered if "warnings" in e), channel="http")
        return JSONResponse(content={
            "accepted": accepted,
            "duplicates": len(outcomes) - accepted,
            **({"warnings": warned_total} if warned_total else {}),
            "events": answered,
        })

    def _warnings(event: Any) -> list[dict[str, Any]]:
        rules = getattr(pipeline, "rules", None)
        if rules is None:
            return []
        if distributed:
            return event_warnings(event, rules.catalogue, None)  # no fold here to ask
        # read without the lock, which would hold the event loop behind the next batch's fold: the
        # file is this event's, folded already, and a later event only adds to it
        return accepted_warnings(event, rules.catalogue, pipeline.state.files.get(event.enterprise_id), pipeline.samples_elsewhere(event),
                                 rules.policy)

    def _state_as_of(text: str) -> Any:
        """The county as it stood at the end of local ``day``: the log's events that occurred by then,
        folded again with that day's closing tick (what ``qrisk campaign --as-of`` and ``qrisk risk --as-of``
        fold).  A month-end cut is asked of a running service, whose data directory the CLI cannot open."""
        from qrisk.backtest import EARLIEST_CUT, state_as_of
        from schemas.upcast import parse_event

        try:
            # (a date as YYYY-MM-DD only: read as a date, pydantic took 4.6e-163 for a timestamp, 1970-01-01)
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise UnknownParameters([{"field": "query.as_of", "type": "date_from_datetime_parsing",
                                      "reason": f"not a date: {text!r} (YYYY-MM-DD)",
                                      "reason_zh": f"无效的日期：{text!r}，应为 YYYY-MM-DD"}]) from None

        if distributed:
            raise UnknownParameters([{
                "field": "query.as_of", "type": "value_error",
                "reason": "as_of needs the embedded log; with the Kafka log, export the events and run "
                          "`qrisk campaign --events FILE --as-of DATE` (or `qrisk risk`)",
                "reason_zh": "按日截止（as_of）需读取嵌入式事件日志；以 Kafka 为日志时，请导出事件后用 "
                             "`qrisk campaign --events FILE --as-of DATE`（或 `qrisk risk`）统计"}])
        if day < EARLIEST_CUT:
            raise UnknownParameters([{"field": "query.as_of", "type": "value_error",
                                      "reason": f"as_of {day.isoformat()} is before {EARLIEST_CUT.isoformat()}: no event is dated before it",
                                      "reason_zh": f"截止日期 {day.isoformat()} 早于 {EARLIEST_CUT.isoformat()}，不可能有事件"}])
        today = pipeline.rules.local_date(pipeline.clock())
        if day > today:
            # a cut after today would tick deadlines that have not passed: overdue work that is not overdue
            raise UnknownParameters([{"field": "query.as_of", "type": "value_error",
                                      "reason": f"as_of {day.isoformat()} is after today ({today.isoformat()})",
                                      "reason_zh": f"截止日期 {day.isoformat()} 晚于今天（{today.isoformat()}）"}])
        rows = pipeline.store.query("SELECT body FROM event_log FINAL ORDER BY seq", {})
        return state_as_of([parse_event(json.loads(r["body"])) for r in rows], day, pipeline.rules)

    @app.get("/v1/enterprises", summary="Every enterprise with its headline figures (supervisors: their towns)",
             responses=_AUTH_RESPONSES, **_declared(readers))
    def list_enterprises(format: Format = "json",
                         as_of: Annotated[str | None, Query(pattern=_DAY_PATTERN, examples=["2026-03-31"], description=(
                             "the list as it stood at the end of this local day (events that occurred by then, deadlines "
                             "ticked at its end); embedded log only"))] = None,
                         key: ApiKey = Security(readers)) -> Any:
        if distributed and as_of is None:
            rows = []
            for f in pipeline.credit_files():
                profile = f.get("profile") or {}
                if key.sees_town(profile.get("town")):
                    risk = f.get("risk") or {}
                    rows.append({"enterprise_id": f["enterprise_id"], "name": profile.get("name"), "category": profile.get("category"),
                                 "town": profile.get("town"), "grade": risk.get("grade"), "score": risk.get("score"),
                                 "next_inspection_due": risk.get("next_inspection_due"), "deregistered_on": f.get("deregistered_on"),
                                 "suspended_on": f.get("suspended_on"),
                                 "counts": f["counts"], "pass_rate": f.get("pass_rate")})
        else:
            with contextlib.nullcontext() if as_of is not None else pipeline.lock:
                state = _state_as_of(as_of) if as_of is not None else pipeline.state  # (a cut is its own state: no lock)
                rows = [
                    {
                        "enterprise_id": f.enterprise_id,
                        "name": f.profile.name if f.profile else None,
                        "category": f.profile.category if f.profile else None,
                        "town": f.profile.town if f.profile else None,
                        # the risk grade is what a supervisor sorts by: the list carries it, not only each file
                        "grade": f.risk.grade,
                        "score": f.risk.score,
                        "next_inspection_due": f.risk.next_inspection_due.isoformat() if f.risk.next_inspection_due else None,
                        # (closed: 注销, no inspection due; the file stays listed)
                        "deregistered_on": f.deregistered_on.isoformat() if f.deregistered_on else None,
                        # (停产: on the register, not sampled until it resumes)
                        "suspended_on": f.suspended_on.isoformat() if f.suspended_on else None,
                        "counts": f.counts.model_dump(),
                        "pass_rate": f.pass_rate,
                    }
                    for f in sorted(state.files.values(), key=lambda f: f.enterprise_id)
                    if key.sees_town(f.profile.town if f.profile else None)
                ]
        if format == "json":
            return rows
        flat = [{**{k: v for k, v in r.items() if k != "counts"}, **r["counts"]} for r in rows]
        if format != "xlsx":  # (the sheet formats its own percentages)
            for r in flat:
                if r["pass_rate"] is not None:
                    r["pass_rate"] = round(r["pass_rate"], 4)
        columns = ["enterprise_id", "name", "category", "town", "grade", "score", "next_inspection_due", "pass_rate", "deregistered_on",
                   "suspended_on", *(list(rows[0]["counts"]) if rows else [])]
        if format == "xlsx":
            from qrisk.sheets import enterprise_sheet

            people, headers, formats = enterprise_sheet(flat, columns)
            return _sheet(people, columns, "enterprises", "企业一览", headers, formats)
        return _table(flat, columns, format, "enterprises")

    @app.get("/v1/enterprises/{enterprise_id}", summary="The credit file (诚信档案) of one enterprise",
             responses={**_AUTH_RESPONSES, 404: {"description": "no such enterprise"}},
             **_declared(readers))
    def get_enterprise(enterprise_id: str, view: Literal["file", "report"] = "file",
                       format: Annotated[ReportFormat, Query(description=(
                           "view=report only: json (the sections), text (what `qrisk credit-file --format text` prints) "
                           "or xlsx (the workbook of `qrisk credit-file --format xlsx`)"))] = "json",
                       key: ApiKey = Security(readers)) -> Any:
        """``view=file``: the credit file as folded; ``view=report``: the same, readable, in Chinese
        (profile, grade and why, results, complaints, inspections, rectifications, signals, warnings),
        as JSON, text or a workbook to print."""
        if format != "json" and view != "report":
            # the folded file has no printable form; answered before the file is read, as any bad parameter
            raise UnknownParameters([{
                "field": "query.format", "type": "value_error",
                "reason": f"format={format} is a form of the report: add view=report (view=file is JSON only)",
                "reason_zh": f"format={format} 是诚信档案报告的格式，须同时给出 view=report（view=file 仅有 JSON）"}])
        file = pipeline.credit_file(enterprise_id)
        # another town's enterprise answers as a missing one, as alerts do: a town-limited key
        # learns nothing of what lies outside its towns, not even that it exists
        if file is None or not key.sees_town((file.get("profile") or {}).get("town")):
            later = "（或其事件尚未经 worker 与 sink 写入 ClickHouse）" if distributed and file is None else ""
            later_en = " (or its events have not reached ClickHouse through the workers and the sink yet)" if distributed and file is None else ""
            scope = f"（该密钥仅限 {'、'.join(key.towns)}）" if key.towns else ""
            raise HTTPException(status_code=404, detail=f"未找到企业 {enterprise_id}{later}{scope} / no such enterprise{later_en}")
        # the file holds complainants' words as received (names, phone numbers): who read which file is recorded,
        # as for personal information processed (PIPL art. 51); not awaited, a read need not wait for the audit row
        audit.record("credit_file.read", "ok", key, {"enterprise_id": enterprise_id, "view": view, "format": format})
        if view == "report":
            from qrisk.credit_report import build_report, report_from_view, unseen

            # how each warning was handled: as this key reads it at /v1/alerts/{id}; one it may not read (a
            # county-wide alert the enterprise's sample tipped has no town) says who handles it, not that none exists
            alerts = [a if key.sees_town(a["town"]) else unseen(a) for a in _with_steps(_alert_views(enterprise_id=enterprise_id), enterprise_id)]
            if distributed:  # from the sink's copy of the file (seconds behind the log)
                report = report_from_view(file, pipeline.rules, alerts=alerts)
            else:
                with pipeline.lock:
                    report = build_report(pipeline.state.files[enterprise_id], pipeline.rules, alerts=alerts)
            return _printed(report, format)
        return file

    def _alert_views(alert_id: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        """``filters`` (``states``, ``enterprise_id``, ``severity``) narrow what is read from the
        alerts table; the caller still filters what it gets (the fold's book is read whole)."""
        if distributed:  # as the workers folded them, through the sink (seconds behind the log)
            return pipeline.alert_views(alert_id, **filters)
        from qrisk.pipeline import stored_alert_views

        with pipeline.lock:
            if alert_id is not None:
                alert = pipeline.alerts.alerts.get(alert_id)
                if alert is not None:
                    return [alert.view()]
            else:
                live = {a.alert_id: a.view() for a in pipeline.alerts.alerts.values()}
            clock = pipeline.alerts.clock
        # (what the book pruned was handled and last changed over closed_kept_days before its clock)
        cutoff = clock - dt.timedelta(days=pipeline.rules.policy.alerts.closed_kept_days) if clock is not None else None
        # alerts verified or closed long ago leave the fold's book (alerts.closed_kept_days); the
        # alerts table keeps them, and a supervisor still finds them.  A row still being handled that the
        # book does not hold is no alert now: an earlier policy raised it, and the replay under today's
        # no longer does (its rows stay until `qrisk rebuild`): listed, it could only answer 409
        stored = [v for v in stored_alert_views(pipeline.store, alert_id, **filters)
                  if v["state"] in _ARCHIVED and (cutoff is None or dt.datetime.fromisoformat(v["updated_at"]) < cutoff)]
        if alert_id is not None:
            return stored
        return [*live.values(), *(v for v in stored if v["alert_id"] not in live)]

    def _with_steps(views: list[dict[str, Any]], enterprise_id: str) -> list[dict[str, Any]]:
        """Views of ``enterprise_id``'s alerts with their steps: those read from the alerts table (the Kafka mode's,
        and in embedded mode those the fold's book let go after alerts.closed_kept_days) have none, and the credit
        report said of an alert closed long ago only that it was closed, not by whom or why — where
        `qrisk credit-file`, replaying the log, said both.  The steps are the alert_events rows."""
        bare = {v["alert_id"] for v in views if "steps" not in v and not v.get("unseen")}
        if not bare:
            return views
        from alerts.lifecycle import step_view

        steps: dict[str, list[dict[str, Any]]] = {}
        for row in pipeline.store.query(
                "SELECT alert_id, version, at, at_ms, action, from_state, to_state, actor, note FROM alert_events FINAL "
                "WHERE enterprise_id = %(e)s ORDER BY alert_id, version", {"e": enterprise_id}):
            if row["alert_id"] in bare:
                steps.setdefault(row.pop("alert_id"), []).append(step_view(_at(row, "at", "at_ms")))
        return [{**v, "steps": steps.get(v["alert_id"], [])} if v["alert_id"] in bare else v for v in views]

    def _not_found(alert_id: str, key: ApiKey) -> HTTPException:
        from qrisk.pipeline import stored_alert_views

        stale = [] if distributed else stored_alert_views(pipeline.store, alert_id)
        if stale and key.sees_town(stale[0]["town"]):  # (another town's: "not found", as any other of its alerts)
            return HTTPException(status_code=404, detail=(
                f"预警 {alert_id} 由此前的预警策略产生，按本次启动所用的策略重放事件日志后已不再产生，无需也不能再处置；"
                f"派生表中的旧记录可停机后用 qrisk rebuild 按现行策略重写 / alert {alert_id} was raised under an earlier policy; "
                "replayed under the current one it is raised no more (qrisk rebuild re-derives the tables under it)"))
        return HTTPException(status_code=404, detail=f"未找到预警 {alert_id} / no such alert")

    def _alert_for(alert_id: str, key: ApiKey) -> dict[str, Any]:
        views = _alert_views(alert_id)
        view = views[0] if views else None
        # another town's alert is "not found": its id (a hash of the problem) must not confirm that it exists
        if view is None:
            raise _not_found(alert_id, key)
        if not key.sees_town(view["town"]):
            raise HTTPException(status_code=404, detail=f"未找到预警 {alert_id} / no such alert")
        return view

    @app.get("/v1/alerts", summary="Alerts, newest first (supervisors: their towns)", responses=_AUTH_RESPONSES, **_declared(readers))
    def list_alerts(state: Literal["open", "acknowledged", "rectifying", "verified", "closed", "active"] | None = None,
                    enterprise_id: str | None = None, severity: Literal["critical", "high", "medium", "low"] | None = None,
                    rule: Annotated[str | None, Query(description="the rule an alert carries (sampling.unqualified, fluctuation.signal …: "
                                                                  "the README's rule table)")] = None,
                    assignee: Annotated[str | None, Query(min_length=1, max_length=200, description="its current owner, as assigned")] = None,
                    since: Annotated[str | None, Query(description=(
                        "opened at or after: a date (2026-11-20, from its midnight in the bureau's time), an instant with its zone "
                        "(2026-11-20T08:00:00+08:00), or a duration back from now (12h, 7d)"))] = None,
                    until: Annotated[str | None, Query(description="opened " + _UNTIL_DOC)] = None,
                    town: Annotated[str | None, Query(min_length=1, max_length=200, description="the enterprise's town (县级预警 have none)")] = None,
                    limit: Limit = None, offset: Offset = 0,
                    format: Format = "json", key: ApiKey = Security(readers)) -> Any:
        """``state=active``: open, acknowledged or rectifying (still being handled).  The filters combine
        (all must hold), in the exports too."""
        from schemas.policy import WARNING_RULES

        refused = []
        if rule is not None and rule not in WARNING_RULES:
            listed = ", ".join(WARNING_RULES)
            refused.append({"field": "query.rule", "type": "literal_error", "reason": f"unknown alert rule {rule!r}; one of {listed}",
                            "reason_zh": f"未知的预警规则 {rule!r}，应为以下之一：{'、'.join(WARNING_RULES)}"})
        opened_from = opened_before = None
        if since is not None:
            opened_from = _since(since, pipeline.clock(), pipeline.rules.policy.utc_offset_hours)
            if opened_from is None:
                refused.append({"field": "query.since", "type": "value_error",
                                "reason": f"not a date, an instant with its zone or a duration: {since!r} "
                                          "(e.g. 2026-11-20, 2026-11-20T08:00:00+08:00, 12h, 7d)",
                                "reason_zh": f"无效的起始时间：{since!r}，应为日期（如 2026-11-20）、带时区的时间"
                                             "（如 2026-11-20T08:00:00+08:00）或时长（如 12h、7d）"})
        refused.extend(_unknown_town(town, key))
        if refused:
            raise UnknownParameters(refused)
        if until is not None:
            _, opened_before = _window(since, until)  # (a date: that whole day; refused when not after since)
        wanted = {"active": {"open", "acknowledged", "rectifying"}}.get(state or "", {state} if state else None)
        chosen = [a for a in _alert_views(states=wanted, enterprise_id=enterprise_id, severity=severity)
                  if (wanted is None or a["state"] in wanted) and (enterprise_id is None or a["enterprise_id"] == enterprise_id)
                  and (severity is None or a["severity"] == severity) and (rule is None or a["rule"] == rule)
                  and (assignee is None or a.get("assignee") == assignee)
                  and (opened_from is None or _instant(utc_text(a["opened_at"])) >= opened_from)
                  and (opened_before is None or _instant(utc_text(a["opened_at"])) < opened_before)
                  and (town is None or a["town"] == town) and key.sees_town(a["town"])]
        # ISO text sorts as time does only when written alike (utc_text): "…42Z" sorted after "…42.5Z"
        chosen.sort(key=lambda a: (utc_text(a["opened_at"]), a["alert_id"]), reverse=True)
        # (zoned here, not only in the JSON answer: the CSV and the sheet carry the same times)
        from qrisk.credit_report import escalation_reached

        page, total, note = _page(chosen, limit, offset, format)
        # whether an escalation reached anyone is read from the steps the rows leave out: "escalated" alone read as
        # "the county was told" where nobody was configured to hear it
        rows = [zoned({**{k: v for k, v in a.items() if k not in ("steps", "evidence")},
                       "escalation_reached": escalation_reached(a)[0] if a.get("escalated") else None,
                       "escalated_zh": _escalated_zh(a)}) for a in page]
        if format == "json":
            return ZonedJSONResponse(rows, headers=total)
        if format == "xlsx":
            from qrisk.sheets import alert_sheet

            people, columns, headers = alert_sheet(rows, pipeline.rules.policy.utc_offset_hours)
            answer = _sheet(people, columns, "alerts", "预警", headers, note=note)
            answer.headers.update(total)
            return answer
        columns = ["alert_id", "enterprise_id", "enterprise_name", "town", "rule", "title_zh", "severity", "severity_zh", "state", "state_zh", "assignee",
                   "opened_at", "respond_by", "acknowledged_at", "handle_by", "handling_overdue", "closed_at", "escalated",
                   "escalation_reached", "escalated_zh",
                   "occurrences", "refs", "message_zh", "silenced"]
        answer = _table([{**r, "refs": ";".join(r.get("refs") or [])} for r in rows], columns, format, "alerts")
        answer.headers.update(total)
        return answer

    @app.get("/v1/alerts/{alert_id}", summary="One alert: its evidence, every step, every delivery attempt",
             responses={**_AUTH_RESPONSES, 404: {"description": "no such alert"}}, **_declared(readers))
    def get_alert(alert_id: str, key: ApiKey = Security(readers)) -> dict[str, Any]:
        view = _alert_for(alert_id, key)
        if "steps" not in view:  # as the sink wrote it (Kafka mode): the steps are the alert_events rows
            from alerts.lifecycle import step_view

            view["steps"] = [step_view(_at(row, "at", "at_ms")) for row in pipeline.store.query(
                "SELECT version, at, at_ms, action, from_state, to_state, actor, note FROM alert_events FINAL "
                "WHERE alert_id = %(id)s ORDER BY version", {"id": alert_id})]
        # the store's DateTime and its _ms column, as one instant with its zone (utc_text)
        view["deliveries"] = [_at(row, "at", "at_ms") for row in pipeline.store.query(
            "SELECT delivery_id, receiver, channel, attempt, status, at, at_ms, response_code, error FROM deliveries FINAL "
            "WHERE alert_id = %(id)s ORDER BY at, at_ms, delivery_id, attempt", {"id": alert_id})]
        view["outbox"] = [_at(row, "created_at", "created_ms") for row in pipeline.store.query(
            "SELECT delivery_id, receiver, channel, reason, created_at, created_ms FROM outbox FINAL WHERE alert_id = %(id)s "
            "ORDER BY created_at, created_ms, delivery_id", {"id": alert_id})]
        return view

    @app.post("/v1/alerts/{alert_id}/actions", summary="A supervisor's step: acknowledge, assign, start_rectification, verify, close, reopen, comment, escalate",
              responses={**_AUTH_RESPONSES, 404: {"description": "no such alert"},
                         409: {"description": "the alert cannot take this step now"},
                         202: {"description": "with QRISK_EVENT_LOG=kafka: published; the worker takes the step shortly"},
                         413: {"description": f"body larger than {ACTION_BODY_BYTES} bytes"},
                         422: {"description": "not JSON, a bad field, comment, reopen or escalate without a note, or closing a 紧急/高 "
                                              "alert (alerts.close_note_min_severity) without one"}},
              **_declared(handlers, requestBody={"required": True, "content": {"application/json": {"schema": _ACTION_SCHEMA}}}))
    async def act_on_alert(alert_id: str, request: Request, key: ApiKey = Security(handlers)) -> Any:
        """The step goes into the event log as an ``alert.action`` event (so the alert's lifecycle
        replays with everything else) and is answered once durable.  Repeating a request with the
        same ``event_id`` is safe: the step is taken once.  With the Kafka log the answer is 202
        once the broker has the event (checked against the alert as ClickHouse last saw it)."""
        from types import SimpleNamespace

        from alerts.lifecycle import (ACTION_ZH, ACTIVE, TRANSITIONS, AlertActionError, AlertNoteRequired, escalation_too_soon,
                                      newer_alert_handles, note_missing)
        from schemas.events import AlertActionEvent

        try:
            body = await _action_body(request)
        except RequestValidationError as exc:
            # a step that lacks what it needs (a note, an assignee) is a refused step, audited as a close without
            # its reason is; a body that is no step at all is not
            needs = [e for e in exc.errors() if isinstance((e.get("ctx") or {}).get("error"), FieldError)]
            if needs:
                await asyncio.wrap_future(audit.record("alert.action", "refused", key, {
                    "alert_id": alert_id, "action": needs[0].get("input", {}).get("action") if isinstance(needs[0].get("input"), dict) else None,
                    "status": 422, "reason": "；".join(reason_zh(e) for e in needs)[:500]}))
            raise
        view = _alert_for(alert_id, key)
        event_id = body.event_id or uuid.uuid4()
        occurred_at = pipeline.clock()
        refusal: HTTPException | None = None
        if distributed:
            allowed, _ = TRANSITIONS[body.action]
            newer = None
            if TRANSITIONS[body.action][1] == "open" and view["state"] in allowed:
                # the fold's rule, asked of the sink's rows as the state is: a newer alert handles the problem now
                newer = next((a["alert_id"] for a in _alert_views(enterprise_id=view["enterprise_id"], states=ACTIVE)
                              if a.get("dedup_key") == view.get("dedup_key") and a["alert_id"] != alert_id), None)
            if view["state"] not in allowed:
                refusal = HTTPException(status_code=409, detail=f"预警 {alert_id} 当前状态为“{view['state_zh']}”，不能{ACTION_ZH[body.action]}")
            elif newer is not None:
                refusal = HTTPException(status_code=409, detail=newer_alert_handles(alert_id, newer))
            else:
                # a step that needs a reason is refused before it reaches the log, as in embedded mode
                why = note_missing(SimpleNamespace(alert_id=alert_id, severity=view["severity"]), body.action, body.note,
                                   pipeline.rules.policy.alerts)  # type: ignore[arg-type]
                if why is not None:
                    refusal = HTTPException(status_code=422, detail=why, headers={_NOTE_REQUIRED: view["severity"]})
                elif body.action == "escalate" and view.get("escalated_at"):
                    # (as the sink last saw it: one slipping past in the seconds it trails is recorded and tells nobody)
                    soon = escalation_too_soon(alert_id, _instant(view["escalated_at"]), occurred_at)
                    if soon is not None:
                        refusal = HTTPException(status_code=409, detail=soon)
        else:
            with pipeline.lock:
                repeated = str(event_id) in pipeline.state.seen_event_ids
                if repeated:
                    # a retry: the same step at the time it was first taken (the server stamps the time),
                    # so that it is a duplicate, and a different step under the id a conflict
                    alert = pipeline.alerts.alerts.get(alert_id)
                    first = next((st for st in alert.steps if st.event_id == str(event_id)), None) if alert is not None else None
                    occurred_at = first.at if first is not None else occurred_at
                elif alert_id not in pipeline.alerts.alerts:
                    # closed long ago, it left the fold's memory (alerts.closed_kept_days): on record, not to be acted on
                    # (as the bureau's clock reads: the raw UTC text, 2026-04-20T02:00:00Z, in a Chinese sentence read as 02:00)
                    ended = _instant(view.get("closed_at") or view.get("updated_at")) + dt.timedelta(hours=pipeline.rules.policy.utc_offset_hours)
                    refusal = HTTPException(status_code=409, detail=f"预警 {alert_id} 已于 {ended:%Y-%m-%d %H:%M} 结束并归档"
                                            f"（超过 {pipeline.rules.policy.alerts.closed_kept_days} 天），不能再操作；如问题复现，系统将生成新的预警")
                else:
                    try:
                        pipeline.alerts.check(alert_id, body.action, body.note, pipeline.rules.policy.alerts, at=occurred_at)
                    except AlertNoteRequired as exc:  # a request that lacks what it needs, not a conflict with the alert's state
                        refusal = HTTPException(status_code=422, detail=str(exc), headers={_NOTE_REQUIRED: view["severity"]})
                    except AlertActionError as exc:
                        refusal = HTTPException(status_code=409, detail=str(exc))
        if refusal is not None:
            # who tried what on which alert, and why it was refused: the audit keeps refused steps too
            await asyncio.wrap_future(audit.record("alert.action", "refused", key, {
                "alert_id": alert_id, "action": body.action, "event_id": str(event_id), "status": refusal.status_code,
                "reason": str(refusal.detail)[:500]}))
            if refusal.headers and _NOTE_REQUIRED in refusal.headers:
                return _note_required(str(refusal.detail), refusal.headers[_NOTE_REQUIRED])
            raise refusal
        event = AlertActionEvent(
            event_id=event_id, event_type="alert.action", enterprise_id=view["enterprise_id"], occurred_at=occurred_at,
            source={"kind": "bureau", "id": key.name or key.key_id},
            payload={"alert_id": alert_id, "action": body.action, "actor": key.name or key.key_id, "note": body.note, "assignee": body.assignee},
        )
        outcomes = await asyncio.wrap_future(committer.submit([event]))
        detail = {"alert_id": alert_id, "action": body.action, "event_id": str(event_id)}
        if outcomes[0].status == "conflict":
            await asyncio.wrap_future(audit.record("alert.action", "conflict", key, detail))
            raise HTTPException(status_code=409, detail=f"event_id {event_id} 已用于另一操作，本次操作未生效；新的操作请使用新的 event_id / "
                                                         f"event_id {event_id} already names another step; send a new step with a new event_id")
        if distributed:
            await asyncio.wrap_future(audit.record("alert.action", outcomes[0].status, key, detail))
            return ZonedJSONResponse(status_code=202, content={"event_id": str(event_id), "status": outcomes[0].status, "alert": view})
        with pipeline.lock:
            alert = pipeline.alerts.alerts[alert_id]
            taken = any(step.event_id == str(event_id) for step in alert.steps)
            after = alert.view()
        await asyncio.wrap_future(audit.record("alert.action", outcomes[0].status if taken else "rejected", key, detail))
        if not taken:
            # another step got in first and this one no longer fits: in the log, rejected by the fold
            raise HTTPException(status_code=409, detail=f"预警 {alert_id} 已被其他操作改变（当前状态“{after['state_zh']}”），本次操作未生效（事件 {event_id}）")
        return {"event_id": str(event_id), "status": outcomes[0].status, "alert": after}

    @app.get("/v1/campaign", summary="The upgrade campaign's progress table (提档升级进度; supervisors: their towns)",
             responses=_AUTH_RESPONSES, **_declared(readers))
    def campaign(format: Format = "json",
                 as_of: Annotated[str | None, Query(pattern=_DAY_PATTERN, examples=["2026-03-31"], description=(
                     "the month-end cut: what was recorded by the end of this local day (events by occurred_at: a document "
                     "dated by then but recorded later is not in it, so the cut is reproducible), said in the summary's "
                     "`cut` (统计截止日); embedded log only"))] = None,
                 key: ApiKey = Security(readers)) -> Any:
        """``{"summary", "rows"}``: per enterprise its stage, the "three ones", the KPIs against their targets.
        With the Kafka log, from the credit files as the sink last wrote them (seconds behind the log).
        ``?as_of=2026-03-31``: as ``qrisk campaign --as-of`` gives it, from the log of the running service."""
        from processors.campaign import TABLE_COLUMNS, county_progress, table_rows

        towns = list(key.towns) or None
        if as_of is not None:
            progress = county_progress(_state_as_of(as_of), pipeline.rules.policy.campaign, towns)
            progress["summary"]["cut"] = as_of
        elif distributed:
            files, unreadable = pipeline.campaign_files(towns)
            progress = county_progress(SimpleNamespace(files=files), pipeline.rules.policy.campaign, towns)
            if unreadable:
                progress["summary"]["unreadable"] = unreadable  # not in the table: said, not dropped
        else:
            with pipeline.lock:
                progress = county_progress(pipeline.state, pipeline.rules.policy.campaign, towns)
        if format == "json":
            return progress
        if format == "xlsx":  # sheets people print: Chinese headers and categories, rates as percentages
            from qrisk.sheets import campaign_workbook

            # the enterprise rows, and the county's totals (汇总) the JSON's summary has
            return Response(campaign_workbook(progress, pipeline.rules.policy.utc_offset_hours), media_type=XLSX_MEDIA_TYPE,
                            headers={"content-disposition": 'attachment; filename="campaign.xlsx"'})
        return _table(table_rows(progress), TABLE_COLUMNS, format, "campaign")

    # ---------------------------------------------------------------- the county's registers (台账)

    def _register_rows(key: ApiKey, section: str, build: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
                       unreadable: list[str] | None = None) -> list[dict[str, Any]]:
        """``build`` over the credit files of ``key``'s towns, each as its profile and ``section`` (samples as
        ``SampleRecord`` models, complaints and inspections as dicts).  In embedded mode under the lock: the fold
        changes a record in place (a re-test marks the report it replaces).  ``unreadable`` collects the ids of stored
        copies this version cannot read (Kafka mode)."""
        unreadable = unreadable if unreadable is not None else []
        if distributed:  # the sink's copies (seconds behind the log)
            files = [f for f in pipeline.credit_files() if key.sees_town((f.get("profile") or {}).get("town"))]
            if section == "samples":
                from pydantic import ValidationError

                from processors.credit_file import SampleRecord

                readable = []
                for f in files:
                    try:
                        readable.append({**f, "samples": [SampleRecord.model_validate(s) for s in f.get("samples") or []]})
                    except ValidationError:
                        unreadable.append(f.get("enterprise_id", "?"))  # a copy another version wrote: named, not a 500
                files = readable
            return build(files)
        with pipeline.lock:
            return build([{"enterprise_id": f.enterprise_id,
                           "profile": {"name": f.profile.name, "town": f.profile.town} if f.profile else {},
                           section: f.samples if section == "samples" else [r.model_dump(mode="json") for r in getattr(f, section)],
                           # (the complaints the bureau withdrew: listed, marked)
                           **({"complaints_withdrawn": [r.model_dump(mode="json") for r in f.complaints_withdrawn]}
                              if section == "complaints" else {})}
                          for f in pipeline.state.files.values() if key.sees_town(f.profile.town if f.profile else None)])

    def _window(since: str | None, until: str | None) -> tuple[dt.datetime | None, dt.datetime | None]:
        """``since`` (at or after) and ``until`` (before; a date: through its last minute, in the bureau's time)."""
        offset = pipeline.rules.policy.utc_offset_hours
        refused, bounds = [], []
        for name, text in (("since", since), ("until", until)):
            moment = None
            if text is not None:
                moment = _since(text, pipeline.clock(), offset)
                if moment is None:
                    refused.append({"field": f"query.{name}", "type": "value_error",
                                    "reason": f"not a date, an instant with its zone or a duration: {text!r} "
                                              "(e.g. 2026-07-01, 2026-07-01T08:00:00+08:00, 7d)",
                                    "reason_zh": f"无效的时间：{text!r}，应为日期（如 2026-07-01）、带时区的时间"
                                                 "（如 2026-07-01T08:00:00+08:00）或时长（如 7d）"})
                elif name == "until" and len(text.strip()) == 10:
                    try:
                        moment += dt.timedelta(days=1)  # a day named is a day included
                    except OverflowError:
                        # 9999-12-31, a supervisor's "until whenever": its end lies past every instant, so no bound
                        moment = None
            bounds.append(moment)
        if not refused and bounds[0] is not None and bounds[1] is not None and bounds[1] <= bounds[0]:
            refused.append({"field": "query.until", "type": "value_error", "reason": f"until {until!r} is not after since {since!r}",
                            "reason_zh": f"截止时间 {until!r} 不晚于起始时间 {since!r}"})
        if refused:
            raise UnknownParameters(refused)
        return bounds[0], bounds[1]

    def _unknown_town(town: str | None, key: ApiKey) -> list[dict[str, Any]]:
        """``?town=`` naming no town of the county's enterprises (北山 for 北山镇): an error listing the towns, not an
        empty list a supervisor reads as "none this quarter".  A town's key is told its own towns only."""
        if town is None:
            return []
        if distributed:
            known = {(f.get("profile") or {}).get("town") for f in pipeline.credit_files()}
        else:
            with pipeline.lock:
                known = {f.profile.town for f in pipeline.state.files.values() if f.profile is not None}
        if town in known:
            return []
        listed = sorted(t for t in known if t and key.sees_town(t))
        return [{"field": "query.town", "type": "value_error",
                 "reason": f"no enterprise on record is in town {town!r}; the towns: {', '.join(listed) or 'none'}",
                 "reason_zh": f"没有乡镇/街道为 {town!r} 的企业，可选：{'、'.join(listed) or '无'}（须与企业登记的乡镇/街道名称完全一致）"}]

    def _refuse_unknown_town(town: str | None, key: ApiKey) -> None:
        refused = _unknown_town(town, key)
        if refused:
            raise UnknownParameters(refused)

    def _within(value: str, start: dt.datetime | None, end: dt.datetime | None) -> bool:
        moment = _instant(value)
        return (start is None or moment >= start) and (end is None or moment < end)

    @app.get("/v1/samples", summary="The county's sampling reports (抽检台账), newest first (supervisors: their towns)",
             responses=_AUTH_RESPONSES, **_declared(readers))
    def list_samples(verdict: Annotated[Literal["pass", "fail", "undetermined"] | None, Query(description=(
                         "the conclusion the report counts with (counted): a failure qrisk alone finds counts as the lab's 合格"))] = None,
                     unconfirmed: Annotated[bool | None, Query(description="true: 系统复核不合格, qrisk fails what the lab's report passed")] = None,
                     final: Annotated[bool | None, Query(description=(
                         "true: the reports that count (not replaced by a re-test, corrected, repeated or retracted, and judged)"))] = None,
                     lab: Annotated[str | None, Query(min_length=1, max_length=200, description="the lab's name as its report prints it")] = None,
                     late: Annotated[bool | None, Query(description=(
                         "true: samples late against sampling_turnaround's working-day limits (送样超时 or 检验报告超时); false: on "
                         "time; neither matches a report not judged (a re-test)"))] = None,
                     product: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
                     enterprise_id: str | None = None, town: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
                     since: Annotated[str | None, Query(description="sampled " + _SINCE_DOC)] = None,
                     until: Annotated[str | None, Query(description="sampled " + _UNTIL_DOC)] = None,
                     limit: Limit = None, offset: Offset = 0,
                     format: Format = "json", key: ApiKey = Security(readers)) -> Any:
        """Every sampling report of the credit files a key may read, as the credit report lists it: qrisk's
        verdict in Chinese, the items failed, what was wrong or left open, and what it counts as.  A sample's day
        is its sampling date, in the bureau's time.  ``?final=true&since=2025-07-01&until=2025-09-30``: the third
        quarter's samples as the figures count them; ``x-qrisk-total`` says how many matched before ``limit``."""
        from qrisk.registers import SAMPLE_COLUMNS, sample_rows, sample_sheet

        start, end = _window(since, until)
        _refuse_unknown_town(town, key)
        zone = dt.timezone(dt.timedelta(hours=pipeline.rules.policy.utc_offset_hours))
        unreadable: list[str] = []
        rows = [r for r in _register_rows(key, "samples", sample_rows, unreadable)
                if (verdict is None or r["counted"] == verdict) and (unconfirmed is None or r["unconfirmed"] == unconfirmed)
                and (final is None or r["final"] == final) and (lab is None or r["lab"] == lab)
                and (late is None or (r["report_late"] is not None and (r["report_late"] or r["sent_late"]) == late))
                and (product is None or r["product"] == product)
                and (enterprise_id is None or r["enterprise_id"] == enterprise_id) and (town is None or r["town"] == town)
                and _within(dt.datetime.combine(dt.date.fromisoformat(r["sampled_on"]), dt.time(), zone), start, end)]
        rows.sort(key=lambda r: (r["sampled_on"], r["sample_no"], r["event_id"]), reverse=True)
        answer = _register(rows, limit, offset, format, "samples", SAMPLE_COLUMNS, sample_sheet, "抽检台账")
        if unreadable:  # (said, not dropped silently: as /v1/campaign's summary names them)
            answer.headers["x-qrisk-unreadable"] = ",".join(sorted(unreadable))
        return answer

    @app.get("/v1/complaints", summary="The county's complaints (投诉举报台账), newest first (supervisors: their towns)",
             responses=_AUTH_RESPONSES, **_declared(readers))
    def list_complaints(state: Annotated[Literal["open", "refused", "resolved", "withdrawn"] | None,
                                         Query(description="open: 办理中 (no complaint.resolved yet); refused: 不予受理 (complaint.accepted "
                                                           "refused it, no conclusion yet); withdrawn: 已撤回 (complaint.withdrawn)")] = None,
                        verified: Annotated[bool | None, Query(description=(
                            "true: 属实; false: concluded 不属实 (complaint.resolved); neither matches one not concluded "
                            "(核查中, 不予受理, 已撤回)"))] = None,
                        kind: Annotated[Literal["complaint", "report"] | None, Query(description="complaint: 投诉; report: 举报")] = None,
                        overdue: Annotated[bool | None, Query(description=(
                            "true: past a statutory time limit (complaint_deadlines, working days): 超期未办结 or 超期办结; false: "
                            "within them; neither matches a complaint whose limits were not judged"))] = None,
                        category: Literal["foreign_matter", "spoilage", "illness", "labelling", "taste_odour", "hygiene", "other"] | None = None,
                        channel: Literal["12315", "hotline", "online", "letter", "visit", "other"] | None = None,
                        enterprise_id: str | None = None, town: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
                        since: Annotated[str | None, Query(description="received " + _SINCE_DOC)] = None,
                        until: Annotated[str | None, Query(description="received " + _UNTIL_DOC)] = None,
                        limit: Limit = None, offset: Offset = 0,
                        format: Format = "json", key: ApiKey = Security(readers)) -> Any:
        """Every complaint of the credit files a key may read, with its enterprise, town, state and
        ``days``: local calendar days from the day of receipt to the day of resolution, or for one still open, to today; ``kind``
        (投诉 / 举报), ``due_on`` (办结期限), ``overdue`` and ``deadline_zh``: its statutory time limits in working days.  The filters
        combine (all must hold), in the exports too; ``x-qrisk-total`` says how many matched before ``limit``."""
        from qrisk.registers import COMPLAINT_COLUMNS, complaint_rows, complaint_sheet

        start, end = _window(since, until)
        _refuse_unknown_town(town, key)
        now = pipeline.clock()
        hours = pipeline.rules.policy.utc_offset_hours  # (not ``offset``: that is the page's)
        deadlines = pipeline.rules.policy.complaint_deadlines
        limits = (deadlines.complaint.accept_working_days, deadlines.report.extension_working_days)
        rows = [r for r in _register_rows(key, "complaints", lambda files: complaint_rows(files, now, hours, limits))
                if (state is None or r["state"] == state) and (verified is None or r["verified"] == verified)
                and (kind is None or r["kind"] == kind) and (overdue is None or (r["overdue"] is not None and r["overdue"] == overdue))
                and (category is None or r["category"] == category) and (channel is None or r["channel"] == channel)
                and (enterprise_id is None or r["enterprise_id"] == enterprise_id) and (town is None or r["town"] == town)
                and _within(r["received_at"], start, end)]
        rows.sort(key=lambda r: (r["received_at"], r["complaint_id"]), reverse=True)
        audit.record("complaints.listed", "ok", key, {"rows": len(rows), "format": format, "filters": {
            k: v for k, v in {"state": state, "verified": verified, "kind": kind, "overdue": overdue, "category": category, "channel": channel,
                              "enterprise_id": enterprise_id,
                              "town": town, "since": since, "until": until}.items() if v is not None}})
        return _register(rows, limit, offset, format, "complaints", COMPLAINT_COLUMNS, complaint_sheet, "投诉举报台账")

    @app.get("/v1/inspections", summary="The county's on-site inspections (现场检查台账), newest first (supervisors: their towns)",
             responses=_AUTH_RESPONSES, **_declared(readers))
    def list_inspections(result: Literal["符合", "基本符合", "不符合"] | None = None,
                         kind: Literal["routine", "special", "follow_up", "acceptance"] | None = None,
                         inspector: Annotated[str | None, Query(min_length=1, max_length=200, description="as recorded, e.g. 王某、李某")] = None,
                         enterprise_id: str | None = None, town: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
                         since: Annotated[str | None, Query(description="inspected " + _SINCE_DOC)] = None,
                         until: Annotated[str | None, Query(description="inspected " + _UNTIL_DOC)] = None,
                         limit: Limit = None, offset: Offset = 0,
                         format: Format = "json", key: ApiKey = Security(readers)) -> Any:
        """Every inspection of the credit files a key may read: result, findings counted (major and
        critical apart) and said.  The filters combine; ``x-qrisk-total`` says how many matched before ``limit``."""
        from qrisk.registers import INSPECTION_COLUMNS, inspection_rows, inspection_sheet

        start, end = _window(since, until)
        _refuse_unknown_town(town, key)
        rows = [r for r in _register_rows(key, "inspections", inspection_rows)
                if (result is None or r["result"] == result) and (kind is None or r["kind"] == kind)
                and (inspector is None or r["inspector"] == inspector)
                and (enterprise_id is None or r["enterprise_id"] == enterprise_id) and (town is None or r["town"] == town)
                and _within(r["occurred_at"], start, end)]
        rows.sort(key=lambda r: (r["occurred_at"], r["inspection_id"]), reverse=True)
        return _register(rows, limit, offset, format, "inspections", INSPECTION_COLUMNS, inspection_sheet, "现场检查台账")

    def _register(rows: list[dict[str, Any]], limit: int | None, offset: int, format: str, name: str, columns: list[str], sheet: Any,
                  title: str) -> Any:
        page, total, note = _page(rows, limit, offset, format)
        rows = [zoned(r) for r in page]  # (the CSV carries the JSON's instants)
        if format == "json":
            return ZonedJSONResponse(rows, headers=total)
        if format == "xlsx":
            people, sheet_columns, headers = sheet(rows, pipeline.rules.policy.utc_offset_hours)
            answer = _sheet(people, sheet_columns, name, title, headers, note=note)
        else:
            answer = _table(rows, columns, format, name)
        answer.headers.update(total)
        return answer

    def _own_letters(key: ApiKey) -> tuple[list[str], dict[str, Any]]:
        """A sender's key (a lab's) sees the dead letters of its own requests: the id a 422 names
        is of use to the integrator who must fix the input.  Readers see all."""
        if key.towns:
            # a rejected input need not name a (valid) enterprise, so it cannot be attributed to a town
            raise HTTPException(status_code=403, detail="仅限部分乡镇的密钥不能查看拒收记录 / dead letters are not for town-limited keys")
        if key.role in READERS:
            return [], {}
        # a letter's position names the key that posted it; keys expire (a year by default) and are
        # replaced, and a lab's letters are the lab's: a bound key sees those of every key bound as it is
        return ["arrayExists(own -> endsWith(position, own), %(own)s)"], {"own": [f" key {i}" for i in _bound_alike(key)]}

    def _bound_alike(key: ApiKey) -> list[str]:
        """The ids of the keys of ``key``'s role bound to its source id (its lab), past ones too: the keys
        file keeps revoked and expired keys, and its history every key it ever created."""
        if not key.source_id:
            return [key.key_id]
        ids = {k.key_id for k in keys.keys() if k.role == key.role and k.source_id == key.source_id}
        ids.update(h.get("key_id") for h in keys.history()
                   if h.get("action") == "key.created" and h.get("role") == key.role and (h.get("detail") or {}).get("source_id") == key.source_id)
        ids.add(key.key_id)
        return sorted(i for i in ids if i)

    def _letter(row: dict[str, Any]) -> dict[str, Any]:
        # errors are stored as JSON text; the answer gives them as JSON, and the time as every answer does (utc_text)
        out = {**row, "errors": json.loads(row["errors"] or "[]"), "received_at": utc_text(row["received_at"], row["received_ms"])}
        out.pop("received_ms", None)
        return out

    LETTER_COLUMNS = ["dead_letter_id", "received_at", "channel", "position", "event_id", "settled_seq", "settled_at", "reason", "errors",
                      "raw", "raw_encoding", "raw_truncated"]
    LOG_TABLE = "events" if distributed else "event_log"  # where an accepted copy is, as _logged reads it
    # The letters a logged copy of their event settles: those of an input its sender can fix and send again.  Not a
    # processing letter (the fold failed on the logged event itself: its copy is the problem, not the cure), not a
    # sink's (rows a table refused, whatever the log holds), not an event_id_conflict (the logged copy is what the
    # refused content clashes with; a correction is a new event under a new id, which nothing links to the letter).
    # The conflict is read from the errors' JSON text, where its type is a whole string ("event_id_conflict").
    SETTLEABLE = "event_id != '' AND channel NOT IN ('processing', 'sink') AND position(errors, '\"event_id_conflict\"') = 0"

    def _settleable(row: dict[str, Any]) -> bool:
        """SETTLEABLE for one row read (errors as stored: JSON text)."""
        return bool(row.get("event_id")) and row["channel"] not in ("processing", "sink") and '"event_id_conflict"' not in row["errors"]

    def _copies_seen(key: ApiKey) -> tuple[str, dict[str, Any]]:
        """The logged copies that may settle a letter for ``key``: a reader's, all; a sender's, the events it could
        have sent itself (``posted_as``), so that a lab learns nothing of another lab's event from its letters."""
        if key.role in READERS:
            return "1", {}
        allowed = posting_rules().get(key.role)
        if allowed is None:
            return "0", {}
        types, kind = allowed
        where, params = ["has(%(copy_types)s, event_type)"], {"copy_types": sorted(types)}
        if kind is not None:
            where.append("source_kind = %(copy_kind)s")
            params["copy_kind"] = kind
        if key.source_id is not None:
            where.append("source_id = %(copy_source)s")
            params["copy_source"] = key.source_id
        return " AND ".join(where), params

    def _settled_where(key: ApiKey, outstanding: bool) -> tuple[str, dict[str, Any]]:
        """A dead_letters condition: the letter is settled (or, ``outstanding``, not): a copy of its event logged at or
        after the letter was received.  A copy logged before it is what the letter's content was refused beside (a
        document reusing a logged id that failed validation before the conflict check): no cure.  The log is read for
        the ids some letter names only (its event_id column, not its bodies)."""
        seen, params = _copies_seen(key)
        settled = (f"({SETTLEABLE} AND dead_letter_id IN (SELECT d.dead_letter_id FROM dead_letters AS d INNER JOIN "
                   f"(SELECT event_id, max(toUInt64(received_at) * 1000 + received_ms) AS last_ms FROM {LOG_TABLE} WHERE {seen} "
                   "AND event_id IN (SELECT event_id FROM dead_letters WHERE event_id != '') GROUP BY event_id) AS copy "
                   "ON d.event_id = copy.event_id WHERE copy.last_ms >= toUInt64(d.received_at) * 1000 + d.received_ms))")
        return (f"NOT {settled}" if outstanding else settled), params

    def _settle(key: ApiKey, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows (as read: errors still JSON text) with ``settled_by``: the first logged copy of each one's event."""
        wanted = sorted({r["event_id"] for r in rows if _settleable(r)})
        if wanted and not distributed:
            with pipeline.lock:  # (every logged event is folded: the log is read only for ids it holds)
                wanted = [i for i in wanted if i in pipeline.state.seen_event_ids]
        copies: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        if wanted:
            seen, params = _copies_seen(key)
            # (every copy, in seq order: the Kafka archive may hold several, the embedded log one)
            for r in pipeline.store.query(
                    "SELECT event_id, seq, received_at, received_ms "
                    f"FROM {LOG_TABLE} WHERE has(%(ids)s, event_id) AND {seen} ORDER BY seq", {**params, "ids": wanted}):
                at = utc_text(r["received_at"], r["received_ms"])
                copies.setdefault(r["event_id"], []).append((at, {"seq": int(r["seq"]), "received_at": at}))

        def settled_by(r: dict[str, Any]) -> dict[str, Any] | None:
            # the first copy logged at or after the letter (as _settled_where: one logged before it is no cure)
            if not _settleable(r):
                return None
            # (utc_text's form, 2026-11-26T21:25:17.077Z, orders as the instants do)
            received = utc_text(r["received_at"], r["received_ms"])
            return next((copy for at, copy in copies.get(r["event_id"], ()) if at >= received), None)

        return [{**r, "settled_by": settled_by(r)} for r in rows]
    EVENT_MATCHES_MAX = 10_000  # dead letters holding one event id's text: a handful in practice; the bound keeps a bad case cheap
    # A letter keeps the whole body it was refused with (up to QRISK_MAX_BODY_BYTES), and any posting
    # key can make many: a list of them whole (1,000 allowed) grew to gigabytes in the server.  A list
    # shows each one's start, GET /v1/dead-letters/{id} one whole letter; the event-id search reads the
    # candidates whole a few megabytes at a time to confirm them.
    LIST_RAW_CHARS = 4096
    LIST_ERRORS_CHARS = 64 * 1024  # (a letter kept now: its 50 errors are a few kB, at most some 400 kB)
    _BETWEEN_ERRORS = re.compile(r"\s*,?\s*")
    CONFIRM_BYTES = 16 * 1024 * 1024

    def _find_letters(key: ApiKey, *, event_id: str | None = None, request_id: str | None = None, position: str | None = None,
                      channel: str | None = None, since: dt.datetime | None = None, until: dt.datetime | None = None,
                      outstanding: bool | None = None, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Dead letters this key may read, newest first, narrowed by what the rows hold: the event id
        in the raw bytes (confirmed against the document's own event_id), the HTTP request id and the
        place (file:line, topic/partition/offset) in ``position``, the channel, the time received, whether
        a logged copy of its event settles it (``outstanding``)."""
        if offset > MAX_PAGE_OFFSET:
            # no table holds so many rows: the page is empty, and the number never reaches the store, where
            # a value past Int64 wrapped (18446744073709551615 was -1, and the first page came back)
            return []
        where, params = _own_letters(key)
        if request_id is not None:
            # an HTTP letter's position: "request <id>[ from <file:line>][ index <i>] key <key id>"
            where.append("(position = %(request)s OR startsWith(position, %(request_more)s))")
            params.update(request=f"request {request_id}", request_more=f"request {request_id} ")
        if position is not None:
            where.append("match(position, %(place)s)")
            params["place"] = _place_pattern(position)
        if channel is not None:
            where.append("channel = %(channel)s")
            params["channel"] = channel
        # received_at is whole seconds, received_ms the rest: compared as milliseconds since the epoch
        if since is not None:
            where.append("toUInt64(received_at) * 1000 + received_ms >= %(since)s")
            params["since"] = _epoch_ms(since)
        if until is not None:
            where.append("toUInt64(received_at) * 1000 + received_ms < %(until)s")
            params["until"] = _epoch_ms(until)
        if outstanding is not None:
            condition, more = _settled_where(key, outstanding)
            where.append(condition)
            params.update(more)
        order = " ORDER BY received_at DESC, received_ms DESC, dead_letter_id"
        if event_id is not None:
            # no column holds it: the raw bytes do, as the sender spelt it (upper case, without dashes …); a
            # match is confirmed below, so paging happens after that
            spellings = _spellings(event_id)
            where.append("(" + " OR ".join(f"positionCaseInsensitive(raw, %(event_id{i})s) > 0" for i in range(len(spellings))) + ")")
            params.update({f"event_id{i}": text for i, text in enumerate(spellings)}, limit=EVENT_MATCHES_MAX)
            candidates = pipeline.store.query(
                "SELECT dead_letter_id, length(raw) AS size, raw_encoding FROM dead_letters FINAL"
                + (f" WHERE {' AND '.join(where)}" if where else "") + order + " LIMIT %(limit)s", params)
            wanted = _confirmed_letters(candidates, event_id, offset + limit)[offset:]
            if not wanted:
                return []
            where, params = ["has(%(wanted)s, dead_letter_id)"], {"wanted": wanted, "limit": limit, "offset": 0}
        else:
            params.update(limit=limit, offset=offset)
        rows = pipeline.store.query(
            "SELECT dead_letter_id, received_at, received_ms, channel, position, event_id, "
            # (not "AS raw", "AS reason" …: ClickHouse would read the alias for the column in lengthUTF8(raw))
            "substringUTF8(reason, 1, %(text_shown)s) AS reason_start, lengthUTF8(reason) AS reason_chars, "
            # (the errors' JSON text: its head, and how many errors it holds, each an object with a "type": the server
            # this runs on may be older than ClickHouse's JSON functions)
            "substringUTF8(errors, 1, %(errors_shown)s) AS errors_start, lengthUTF8(errors) AS errors_chars, "
            "if(lengthUTF8(errors) > %(errors_shown)s, length(extractAll(errors, '\"type\": \"')), 0) AS errors_count, "
            # (and the count its errors_truncated entry stored: the errors kept are 50 of it)
            "if(lengthUTF8(errors) > %(errors_shown)s, toUInt64OrZero(extract(errors, '\"errors_total\": (\\\\d+)')), 0) AS errors_stored_total, "
            "substringUTF8(raw, 1, %(shown)s) AS raw_start, raw_encoding, lengthUTF8(raw) > %(shown)s AS raw_truncated FROM dead_letters FINAL"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + order + " LIMIT %(limit)s OFFSET %(offset)s",
            {**params, "shown": LIST_RAW_CHARS, "text_shown": LETTER_TEXT_KEPT, "errors_shown": LIST_ERRORS_CHARS})
        return [_listed_letter(r) for r in _settle(key, [{**r, "errors": r["errors_start"]} for r in rows])]

    def _listed_letter(row: dict[str, Any]) -> dict[str, Any]:
        """A row of the list, cut as the store keeps letters now (``qrisk.pipeline.letter_errors``): one kept
        before that named 100,000 unknown keys was some 25 MB of errors and 4 MB of reason on every page."""
        out = _letter({**{k: v for k, v in row.items() if k not in ("raw_start", "reason_start", "reason_chars", "errors_start",
                                                                      "errors_chars", "errors_count", "errors_stored_total")},
                       "errors": "", "raw": row["raw_start"], "raw_encoding": row["raw_encoding"], "raw_truncated": bool(row["raw_truncated"]),
                       "reason": row["reason_start"] if row["reason_chars"] <= LETTER_TEXT_KEPT
                       else row["reason_start"] + f"… ({row['reason_chars']} characters)"})
        if row["errors_chars"] <= LIST_ERRORS_CHARS:
            errors = json.loads(row["errors_start"] or "[]")
            listed = [e for e in errors if not (isinstance(e, dict) and e.get("type") == ERRORS_TRUNCATED)]
            if len(listed) <= LETTER_ERRORS_KEPT:
                out["errors"] = errors  # as kept, its own errors_truncated entry (if any) with it
                return out
            kept, total = len(listed), max(len(listed), letter_errors_total(errors))
        else:  # the whole objects of the head, as many as the list shows
            listed, decoder, text = [], json.JSONDecoder(), row["errors_start"]
            at = _BETWEEN_ERRORS.match(text, 1).end()
            while len(listed) < LETTER_ERRORS_KEPT:
                try:
                    error, end = decoder.raw_decode(text, at)
                except ValueError:
                    break
                if not (isinstance(error, dict) and error.get("type") == ERRORS_TRUNCATED):
                    listed.append(error)
                at = _BETWEEN_ERRORS.match(text, end).end()
            # every object kept has a "type" (an errors_truncated entry too); that entry's count is of all the
            # errors, kept or not: 64 KiB of 50 long texts decodes some 40 of them and must still say 100
            stored_total = row["errors_stored_total"]
            kept = row["errors_count"] - (1 if stored_total else 0)
            total = max(row["errors_count"], stored_total, len(listed) + 1)
        listed = listed[:LETTER_ERRORS_KEPT]
        if total > len(listed):
            more, letter = total - len(listed), row["dead_letter_id"]
            where_en = f": GET /v1/dead-letters/{letter} lists {kept}" if kept > len(listed) else ""
            where_zh = f"，GET /v1/dead-letters/{letter} 列出其中 {kept} 处" if kept > len(listed) else ""
            listed.append({
                "field": "", "type": ERRORS_TRUNCATED, "errors_total": total, "errors_listed": len(listed),
                "reason": f"{more} more error(s) not listed ({total} in all){where_en}",
                "reason_zh": f"另有 {more} 处错误未列出（共 {total} 处）{where_zh}"})
        out["errors"] = listed
        return out

    def _confirmed_letters(candidates: list[dict[str, Any]], event_id: str, wanted: int) -> list[str]:
        """The ids of the first ``wanted`` candidates that are the event (``_letter_names_event``), in
        their order, their bytes read a few at a time."""
        confirmed: list[str] = []
        i = 0
        while i < len(candidates) and len(confirmed) < wanted:
            group, size = [], 0
            while i < len(candidates) and (not group or size + candidates[i]["size"] <= CONFIRM_BYTES):
                group.append(candidates[i])
                size += candidates[i]["size"]
                i += 1
            raws = {r["dead_letter_id"]: r["raw"] for r in pipeline.store.query(
                "SELECT dead_letter_id, raw FROM dead_letters FINAL WHERE has(%(ids)s, dead_letter_id)",
                {"ids": [c["dead_letter_id"] for c in group]})}
            confirmed += [c["dead_letter_id"] for c in group
                          if _letter_names_event({"raw": raws.get(c["dead_letter_id"], ""), "raw_encoding": c["raw_encoding"]}, event_id)]
        return confirmed[:wanted]

    @app.get("/v1/dead-letters", summary="Most recent rejected inputs with their reasons (a sender's key: its own)",
             responses={**_AUTH_RESPONSES, 200: {"content": {"application/json": {"example": _LETTERS_EXAMPLE}}},
                        422: {"description": "a bad value, or a query parameter this route does not take (named in errors[].field)"}},
             **_declared(letter_readers))
    def dead_letters(
        limit: Annotated[int, Query(ge=1, le=1000, description="at most 1,000")] = 100,
        offset: Annotated[int, Query(ge=0, description="page back: skip this many of the newest")] = 0,
        format: Format = "json",
        event_id: Annotated[str | None, Query(min_length=1, max_length=200, description=(
            "the refused copies of this event (its event_id; any spelling of the UUID); JSON kept as base64 is not searched"),
            openapi_examples={"an event": {"value": "7c1b2a9e-0d4f-4c55-9a3e-2f6d8b1c0e11"}})] = None,
        request_id: Annotated[str | None, Query(min_length=1, max_length=200, description=(
            "what one POST /v1/events refused (the request_id its 422/403/409 answer named)"),
            openapi_examples={"a request": {"value": "0f5e2d4c-1b3a-4e5f-8a7b-9c0d1e2f3a4b"}})] = None,
        position: Annotated[str | None, Query(min_length=1, max_length=500, description=PLACE_DESCRIPTION,
                                              openapi_examples={"a line of a file": {"value": "orders.csv:12"}})] = None,
        channel: Annotated[Channel | None, Query(description="where it came in: http, import (a file), kafka (an ingress or log "
                                                             "message), processing (the fold failed), sink")] = None,
        since: Annotated[ZonedTime | None, Query(description="received at or after this instant (ISO 8601 with its zone)",
                                                     openapi_examples={"UTC": {"value": "2026-03-12T00:00:00Z"},
                                                                       "Beijing time": {"value": "2026-03-12T08:00:00+08:00"}})] = None,
        until: Annotated[ZonedTime | None, Query(description="received before this instant (ISO 8601 with its zone)")] = None,
        outstanding: Annotated[bool | None, Query(description=(
            "true: only the letters still to act on (settled_by null: no copy of their event has been logged since, or "
            "none can settle them); false: only the settled ones (已重新提交并接收)"))] = None,
        key: ApiKey = Security(letter_readers),
    ) -> Any:
        """Newest first, ``limit`` (at most 1,000) from ``offset``: page back with ``offset`` to reach older ones.
        The filters combine (all must hold); a query parameter this route does not take is refused (422), never ignored."""
        rows = _find_letters(key, event_id=event_id, request_id=request_id, position=position, channel=channel, since=since,
                             until=until, outstanding=outstanding, limit=limit, offset=offset)
        if format == "json":
            return rows
        rows = [{**r, "errors": json.dumps(r["errors"], ensure_ascii=False),  # a cell holds text: JSON, as stored
                 "settled_seq": (r["settled_by"] or {}).get("seq"), "settled_at": (r["settled_by"] or {}).get("received_at")}
                for r in rows]
        return _table(rows, LETTER_COLUMNS, format, "dead_letters")

    @app.get("/v1/dead-letters/{dead_letter_id}", summary="One rejected input (the id a 409/422/403 answer names)",
             responses={**_AUTH_RESPONSES, 404: {"description": "no such dead letter"}}, **_declared(letter_readers))
    def dead_letter_by_id(dead_letter_id: str, key: ApiKey = Security(letter_readers)) -> dict[str, Any]:
        where, params = _own_letters(key)
        rows = pipeline.store.query(
            "SELECT dead_letter_id, received_at, received_ms, channel, position, event_id, reason, errors, raw, raw_encoding "
            f"FROM dead_letters FINAL WHERE {' AND '.join(['dead_letter_id = %(id)s', *where])} "
            "ORDER BY received_at DESC, received_ms DESC LIMIT 1",
            {"id": dead_letter_id, **params},
        )
        if not rows:
            raise HTTPException(status_code=404, detail=f"未找到拒收记录 {dead_letter_id} / no such dead letter")
        return {**_letter(_settle(key, rows)[0]), "raw_truncated": False}

    def _town_of(enterprise_id: str) -> str | None:
        if distributed:
            file = pipeline.credit_file(enterprise_id)
            return (file.get("profile") or {}).get("town") if file else None
        with pipeline.lock:
            file = pipeline.state.files.get(enterprise_id)
            return file.profile.town if file is not None and file.profile is not None else None

    def _logged(event_id: str) -> dict[str, Any] | None:
        """The event's row in the log (embedded: ``event_log``; Kafka: the ``events`` archive the sink
        writes, its first copy); None when it is not there."""
        if distributed:
            table = "events"
        else:
            with pipeline.lock:
                if event_id not in pipeline.state.seen_event_ids:
                    return None  # (every logged event is folded: no need to read the log)
            table = "event_log"
        rows = pipeline.store.query(
            "SELECT seq, event_type, enterprise_id, occurred_at, occurred_ms, received_at, received_ms, source_kind, source_id "
            f"FROM {table} FINAL WHERE event_id = %(id)s ORDER BY seq LIMIT 1", {"id": event_id})
        if not rows:
            return None
        r = rows[0]
        return {"seq": int(r["seq"]), "event_type": r["event_type"], "enterprise_id": r["enterprise_id"],
                "occurred_at": utc_text(r["occurred_at"], r["occurred_ms"]), "received_at": utc_text(r["received_at"], r["received_ms"]),
                "source_kind": r["source_kind"], "source_id": r["source_id"]}

    def _sees_logged(key: ApiKey, logged: dict[str, Any]) -> bool:
        if key.role in READERS:
            return not key.towns or key.sees_town(_town_of(logged["enterprise_id"]))
        # a sender sees what it could have sent itself: a lab its own results, not another lab's
        return posted_as(key, logged["event_type"], logged["source_kind"], logged["source_id"])

    @app.get("/v1/events/{event_id}", summary="What became of one event: logged (seq, received_at) or dead-lettered (with the ids)",
             response_model=EventFate,
             responses={**_AUTH_RESPONSES,
                        200: {"content": {"application/json": {"examples": _FATE_EXAMPLES}}},
                        404: {"description": "neither in the log nor in the dead letters this key may read: it never arrived, or "
                                             "was not written (a request refused whole) — send it again (repeating an event_id is safe)"}},
             **_declared(letter_readers))
    def event_fate(event_id: Annotated[str, PathParam(min_length=1, max_length=200, description="the event_id it was sent with")],
                   key: ApiKey = Security(letter_readers)) -> EventFate:
        """For the integrator whose answer to ``POST /v1/events`` was lost: ``logged`` with its ``seq`` and
        ``received_at`` (a resend is a harmless duplicate), or ``dead_lettered`` with the ids of the refused
        copies (``GET /v1/dead-letters/{id}`` says why).  A sender's key (a lab's) sees its own events and
        the dead letters of its own requests only; a town-limited supervisor the events of its towns.
        With the Kafka log this reads ClickHouse: an event published seconds ago may not be there yet."""
        try:
            canonical = str(uuid.UUID(event_id))
        except ValueError:
            canonical = None  # no event is logged under it; a refused input may still carry it
        logged = _logged(canonical) if canonical is not None else None
        if logged is not None and not _sees_logged(key, logged):
            logged = None  # as if it were not there: a key learns nothing of others' events
        letters = [] if key.towns else _find_letters(key, event_id=event_id, limit=100)
        if logged is None and not letters:
            later = ("（或尚未经 worker 与 sink 写入 ClickHouse）" if distributed else "")
            later_en = " (or not yet through the workers and the sink into ClickHouse)" if distributed else ""
            raise HTTPException(status_code=404, detail=f"未找到事件 {event_id}{later}：既不在事件日志中，也不在该密钥可见的拒收记录中，"
                                                        f"请重新发送（重发同一 event_id 是安全的） / no such event{later_en}: "
                                                        "neither logged nor dead-lettered as far as this key may see; send it again")
        judged = None
        if logged is not None and logged["event_type"] == "sampling.result" and not distributed:
            with pipeline.lock:
                file = pipeline.state.files.get(logged["enterprise_id"])
                record = file.sample_by_event(canonical) if file is not None else None
                judged = sample_judged(record, sender=key.role not in READERS) if record is not None else None
        return EventFate(event_id=canonical or event_id, status="logged" if logged is not None else "dead_lettered", logged=logged,
                         dead_letters=[{k: r[k] for k in LetterSummary.model_fields} for r in letters], judged=judged)

    @app.get("/v1/audit", summary="Who did what: posts, refusals, key changes (newest first)",
             responses=_AUTH_RESPONSES, **_declared(admins))
    async def audit_trail(limit: Annotated[int, Query(ge=1, le=1000, description="newest first; at most 1,000")] = 100,
                          action: str | None = None, format: Format = "json", key: ApiKey = Security(admins)) -> Any:
        pending = audit.sync_key_history(keys, synced)
        for future in pending:
            await asyncio.wrap_future(future)
        sql = ("SELECT recorded_at, recorded_ms, audit_id, key_id, key_name, role, actor, action, outcome, detail FROM audit_log FINAL"
               + (" WHERE action = %(action)s" if action is not None else "")
               + " ORDER BY recorded_at DESC, recorded_ms DESC, audit_id LIMIT %(limit)s")
        params: dict[str, Any] = {"limit": limit}
        if action is not None:
            params["action"] = action
        rows = await asyncio.get_running_loop().run_in_executor(None, pipeline.store.query, sql, params)
        # stored in UTC: said so, to the millisecond, as the other timestamps the API gives
        rows = [{**r, "recorded_at": utc_text(r["recorded_at"], r["recorded_ms"])} for r in rows]
        if format == "json":
            return [{**r, "detail": json.loads(r["detail"] or "{}")} for r in rows]
        return _table(rows, ["recorded_at", "recorded_ms", "audit_id", "key_id", "key_name", "role", "actor", "action", "outcome", "detail"], format, "audit")

    @app.post("/v1/alerts/redeliver", summary="Put given-up alert notifications back to be sent, each under its own delivery id (admin)",
              responses={**_AUTH_RESPONSES, 422: {"description": "neither or both of since and all, or a bad duration (named in errors[].field)"}},
              **_declared(admins))
    async def redeliver(
        since: Annotated[str | None, Query(description="those given up within this long: 90s, 30m, 12h, 7d")] = None,
        all: Annotated[bool, Query(description="every given-up notification, however old")] = False,  # noqa: A002 - the CLI's --all
        receiver: Annotated[str | None, Query(min_length=1, max_length=200, description="only those to this receiver (its name in the policy)")] = None,
        dry_run: Annotated[bool, Query(description="list what would be re-queued; write nothing")] = False,
        key: ApiKey = Security(admins),
    ) -> Any:
        """What ``qrisk alerts redeliver`` does, for a running service: the CLI cannot open a chdb data
        directory ``qrisk run`` holds, and an operator should not have to stop the service to re-send an alert.
        Each one goes again under its delivery id, so a receiver that did get it dedups it (Idempotency-Key);
        this process's dispatcher sends them at once.  Twice re-queues nothing more."""
        import argparse

        from alerts.outbox import requeue
        from qrisk.cli_alerts import _duration

        field, why_zh, why = None, "", ""
        if (since is None) == (not all):
            field, why_zh, why = "query.since", "须给出 since（如 12h）或 all=true 之一", "give exactly one of since (e.g. 12h) and all=true"
        elif since is not None:
            try:
                seconds = _duration(since)
            except argparse.ArgumentTypeError:
                field, why_zh, why = "query.since", f"时长无效：{since!r}（如 90s、30m、12h、7d）", f"not a duration: {since!r} (e.g. 90s, 30m, 12h, 7d)"
        if field is not None:
            return JSONResponse(status_code=422, content={"detail": f"请求无效：{field}：{why_zh}", "detail_en": f"invalid request: {field}: {why}",
                                                          "errors": [{"field": field, "type": "value_error", "reason": why, "reason_zh": why_zh}]})
        cutoff = None if all else pipeline.clock() - dt.timedelta(seconds=seconds)
        actor = f"key:{key.key_id} ({key.name})"
        found = await asyncio.get_running_loop().run_in_executor(None, lambda: requeue(
            pipeline.store, since=cutoff, receiver=receiver, dry_run=dry_run, actor=actor, clock=pipeline.clock,
            via="POST /v1/alerts/redeliver"))
        queued = [f for f in found if f.queued]
        if queued and not dry_run and dispatcher is not None:
            dispatcher.requeued()
        # every call, a dry run and one that found nothing too: who looked at the given-up notifications, and when
        await asyncio.wrap_future(audit.record("alerts.redeliver", "ok", key, {
            "requeued": 0 if dry_run else len(queued), "dry_run": dry_run, "found": len(found),
            "delivery_ids": [f.delivery_id for f in queued][:50], "receiver": receiver, "since": since, "all": all}))
        verb_zh, verb = ("将重新排队", "would re-queue") if dry_run else ("已重新排队", "re-queued")
        return {
            "dry_run": dry_run, "requeued": len(queued),
            "message": f"{verb_zh} {len(queued)} 条已放弃的预警通知 / {verb} {len(queued)} given-up notification(s)",
            "notifications": [{"delivery_id": f.delivery_id, "alert_id": f.alert_id, "receiver": f.receiver,
                               "given_up_at": utc_text(f.given_up_at), "error": f.error[:500], "queued": f.queued,
                               **({} if f.queued else {"note": "发件箱中已无此通知，无法重发 / no longer in the outbox: nothing to send"})}
                              for f in found],
        }

    @app.get("/v1/catalogue", summary="Item codes, units and limits per category, as qrisk judges them (public)",
             dependencies=[Depends(check_query)])
    def catalogue() -> dict[str, Any]:
        return catalogue_document(pipeline.rules.catalogue)

    @app.get("/v1/event-types", summary="Event types this service accepts (public); the headers x-qrisk-max-batch and "
                                         "x-qrisk-max-body-bytes say how much one POST /v1/events may carry",
             dependencies=[Depends(check_query)])
    def event_types() -> JSONResponse:
        # (the limits as headers: an importer sizes its batches before it sends one, instead of learning
        # them from a refusal that keeps the whole oversized batch in the dead letters)
        return JSONResponse(sorted(EVENT_TYPES), headers={"x-qrisk-max-batch": str(max_batch), "x-qrisk-max-body-bytes": str(max_body_bytes)})

    @app.get("/readyz", summary="Readiness: 200 once events are taken, 503 while starting or when no more can be written (public)",
             responses={503: {"description": "not ready: the writer lease lapsed (while the log replays at start, the start-up responder answers 503)"}})
    def readyz() -> Any:
        lease = getattr(pipeline, "writer_lease", None)
        if lease is not None and lease.lapsed:
            # another writer may have the log now: this process must not be sent events, and a restart is due
            return JSONResponse(status_code=503, headers={"Retry-After": "5"}, content={
                "status": "not_ready", "message": f"写入租约已失效，不再写入事件，请重启 qrisk / {lease.lapsed}: no more events are written; restart qrisk"})
        since = getattr(pipeline, "log_failing_since", None)
        last = getattr(pipeline, "log_last_refusal", None)
        if since is not None and last is not None and pipeline.clock() - last < dt.timedelta(seconds=LOG_REFUSAL_NOT_READY_S):
            # the log refuses writes (a full disk): a balancer should send events elsewhere, or hold them.  Only for a
            # while after the last refusal: a balancer that heeds it sends nothing more, and only a write would tell
            # that the log takes them again — after it, the next batch tries (and, refused, makes this 503 again)
            return JSONResponse(status_code=503, headers={"Retry-After": "5"}, content={
                "status": "not_ready", "message": f"事件日志拒绝写入，暂不接收事件 / the event log refuses writes since {since.isoformat()}"})
        return {"status": "ready"}

    def _sees_details(request: Request) -> bool:
        """Whether the caller of a public route showed an admin or monitor key: only they read what a
        problem is (receivers' addresses and answers, file paths); anyone reads that there is one."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        try:
            return keys.authenticate(token.strip()).role in ("admin", "monitor")
        except AuthError:
            return False

    @app.get("/healthz", summary="Liveness (public): 200 while the process works, \"degraded\" naming what to look at "
                                 "(what it is: with an admin or monitor key)")
    def healthz(request: Request) -> dict[str, Any]:
        # alive either way (200): "degraded" says what an operator should look at — derived rows not
        # being written (dashboards fall behind), the dispatcher's last pass failing
        problems = {}
        # a year the working-day calendar lacks, from today as far as the policy's longest limit runs (calendar_ahead_days):
        # said, not degraded (the limits still count, as estimates) — the operator adds the State Council's notice when out
        from qrisk.runtime import calendar_missing_years

        missing = calendar_missing_years(pipeline.rules, pipeline.clock())
        calendar = {"calendar": {"missing_years": missing}} if missing else {}
        failing_since = getattr(pipeline, "log_failing_since", None)  # (read once: a write that takes clears it meanwhile)
        if failing_since is not None:
            problems["event_log"] = (f"事件日志{'（Kafka）' if distributed else ''}拒绝写入，新事件不被接收（503），已拒绝 "
                                     f"{pipeline.log_refused_events} 个事件，发送方须重发 / the event log{' (Kafka)' if distributed else ''} "
                                     f"refuses writes since {failing_since.isoformat()} ({pipeline.log_refused_events} events "
                                     f"refused, answered 503): {pipeline.log_last_error}")
        if distributed:
            # reads trail the log by the workers' and the sink's lag, which Kafka's group offsets show; the
            # store is where every read comes from (it said "ok" with the broker and ClickHouse both away)
            store_problem = pipeline.store_problem()
            if store_problem is not None:
                problems["store"] = store_problem
            key_problem = keys.current_problem()
            if key_problem is not None:
                problems["keys_file"] = f"{key_problem}（沿用上次读取的密钥 / the keys last read stay in use）"
            if problems and not _sees_details(request):
                problems = {name: PROBLEM_SUMMARIES.get(name, "见带 admin 或 monitor 密钥的 /healthz / see /healthz with an admin or monitor key")
                            for name in problems}
            return {"status": "degraded" if problems else "ok", "event_log": "kafka", "published": pipeline.published,
                    "dead_lettered": pipeline.dead_lettered, **({"problems": problems} if problems else {}), **calendar}
        sink = pipeline._sink
        if sink is not None and sink.failures:
            problems["derived_rows"] = (f"派生表连续 {sink.failures} 次写入失败，看板数据滞后（写入会自动重试） / "
                                        f"{sink.failures} failed writes in a row: {sink.last_error}")
        if dispatcher is not None and dispatcher.last_error is not None:
            problems["alert_dispatcher"] = f"预警通知发送失败，将自动重试 / {dispatcher.last_error}"
        failing = dispatcher.receivers_problem() if dispatcher is not None else None
        if failing is not None:
            # attempts that fail are retried quietly for minutes: the supervisors they are for are not being told
            problems["alert_receivers"] = failing
        key_problem = keys.current_problem()
        if key_problem is not None:
            # the keys last read stay in use: a key added (or revoked) in the damaged file is not
            problems["keys_file"] = f"{key_problem}（沿用上次读取的密钥 / the keys last read stay in use）"
        # a listing in the policy naming no enterprise on file (a typo) grades nobody: said for as long as it lasts, not
        # only in the start-up log read once — a set difference over a few ids, cheap on every call
        unlisted = pipeline.rules.policy.risk.credit.unregistered_warning(pipeline.state.files)
        if unlisted is not None:
            problems["policy_listings"] = unlisted
        lease = getattr(pipeline, "writer_lease", None)
        if lease is not None and lease.lapsed:
            problems["writer_lease"] = f"写入租约已失效，不再写入事件，请重启 qrisk / {lease.lapsed}: no more events are written; restart qrisk"
        if problems and not _sees_details(request):
            problems = {name: PROBLEM_SUMMARIES.get(name, "见带 admin 或 monitor 密钥的 /healthz / see /healthz with an admin or monitor key")
                        for name in problems}
        return {
            "status": "degraded" if problems else "ok",
            # events in the log, counted; below log_seq when seqs are missing (a failed write leaves a gap)
            "events": getattr(pipeline, "events", pipeline.seq),
            "log_seq": pipeline.seq,
            "enterprises": len(pipeline.state.files),
            "derived_lag": pipeline.seq - pipeline.derived_seq,  # events folded but not yet in the derived tables
            **({"problems": problems} if problems else {}),
            **calendar,
        }

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics",
             responses=_AUTH_RESPONSES, **_declared(monitors))
    def prometheus(key: ApiKey = Security(monitors)) -> str:
        if distributed:
            return metrics.render({"qrisk_published_events_total": pipeline.published, "qrisk_group_commits_total": committer.batches,
                                   "qrisk_dead_lettered_total": pipeline.dead_lettered})
        with pipeline.lock:
            states = collections.Counter(a.state for a in pipeline.alerts.alerts.values())
        # every state, 0 included: a series that vanishes when its count drops to 0 reads as "no data"
        gauges = {f'qrisk_alerts{{state="{s}"}}': float(states.get(s, 0)) for s in sorted({*ALERT_STATES, *states})}
        gauges["qrisk_derived_write_failures"] = float(pipeline._sink.failures if pipeline._sink is not None else 0)
        if dispatcher is not None:
            gauges.update({"qrisk_alert_deliveries_sent_total": dispatcher.sent, "qrisk_alert_deliveries_retried_total": dispatcher.retried,
                           "qrisk_alert_deliveries_failed_total": dispatcher.failed,
                           "qrisk_alert_deliveries_given_up": dispatcher.given_up_count(),
                           "qrisk_alert_dispatcher_active": int(dispatcher.active)})
        return metrics.render({
            **gauges,
            "qrisk_log_seq": pipeline.seq,
            "qrisk_enterprises": len(pipeline.state.files),
            "qrisk_group_commits_total": committer.batches,
            "qrisk_derived_lag_events": pipeline.seq - pipeline.derived_seq,
        })

    _add_event_schema(app)
    return app


LOG_REFUSAL_NOT_READY_S = 30
"""How long /readyz answers 503 after the event log last refused a batch."""

_DETAILS = "（详情：带 admin 或 monitor 密钥请求 /healthz） / details: /healthz with an admin or monitor key"
PROBLEM_SUMMARIES = {
    "event_log": "事件日志拒绝写入，新事件不被接收" + _DETAILS,
    "derived_rows": "派生表写入失败，看板数据滞后" + _DETAILS,
    "alert_dispatcher": "预警通知发送失败，将自动重试" + _DETAILS,
    "alert_receivers": "预警通知接收端连续发送失败，或有已放弃的通知待重新发送（POST /v1/alerts/redeliver 或 qrisk alerts redeliver）" + _DETAILS,
    "keys_file": "密钥文件无法读取，沿用上次读取的密钥" + _DETAILS,
    "writer_lease": "写入租约已失效，不再写入事件，请重启 qrisk" + _DETAILS,
    "policy_listings": "策略中列入严重违法失信名单的企业编号在事件日志中没有登记，该列入不对任何企业生效" + _DETAILS,
    "store": "ClickHouse 无法读取，查询失败" + _DETAILS,
}
"""What the public /healthz says of each problem: that it is there, not what it is (a failing
receiver's error names its address and quotes its answer; the keys file's problem its path)."""


def _at(row: dict[str, Any], column: str, ms_column: str) -> dict[str, Any]:
    """A stored row with its DateTime and milliseconds as one instant (``utc_text``), the _ms column dropped."""
    out = {k: v for k, v in row.items() if k != ms_column}
    out[column] = utc_text(row[column], row[ms_column])
    return out


def _conflict_error(index: int | None, event_id: str, seq: int | None) -> dict[str, Any]:
    if seq is not None:
        error = conflict_error(event_id, f"the event logged as seq {seq}", f"日志序号 {seq} 的事件")
    else:
        error = conflict_error(event_id, "another event received with it (earlier in this batch, or in a request that arrived at the same moment)",
                               "同时收到的另一事件（本批次中前面的事件，或同一时刻到达的其他请求中的事件）")
    return {"index": index, **error, "logged_seq": seq}


class _ElementLines:
    """``x-qrisk-lines: orders.jsonl:1-4,6,8-10``: the file:line of each element of a batch, kept as its
    ranges (a header is the sender's text: a few hundred bytes of it, never a list it could make huge)."""

    NAME = re.compile(r"[^\x00-\x1f\x7f-\x9f:/ ()]{1,300}")  # a file's name: no control characters, nothing a position's syntax uses
    RANGES = re.compile(r"\d{1,9}(-\d{1,9})?(,\d{1,9}(-\d{1,9})?)*")

    def __init__(self, name: str, ranges: list[tuple[int, int]]):
        self.name, self.ranges = name, ranges
        self.count = sum(b - a + 1 for a, b in ranges)

    @classmethod
    def parse(cls, header: str, most: int) -> "_ElementLines | None":
        name, sep, text = header.rpartition(":")
        if not sep or not cls.NAME.fullmatch(name) or len(text) > 20_000 or not cls.RANGES.fullmatch(text):
            return None
        ranges = []
        for part in text.split(","):
            a, _, b = part.partition("-")
            lo, hi = int(a), int(b or a)
            if hi < lo:
                return None
            ranges.append((lo, hi))
        found = cls(name, ranges)
        return found if 0 < found.count <= most else None

    def at(self, i: int) -> str:
        for lo, hi in self.ranges:
            if i <= hi - lo:
                return f"{self.name}:{lo + i}"
            i -= hi - lo + 1
        raise IndexError(i)


def _elements(raw: bytes) -> list[Any] | None:
    """The elements of a batch body (to keep each refused event's own bytes); None for a single event."""
    doc = load_json(raw)
    if isinstance(doc, dict) and set(doc) == {"events"}:
        doc = doc["events"]
    return doc if isinstance(doc, list) else None


MAX_PAGE_OFFSET = 2**53
"""Past this a page's offset is answered empty without a query (and is still an exact integer in JSON)."""

ACTION_BODY_BYTES = 64 * 1024
"""An alert step's body: a note of at most 2,000 characters and a few short fields."""
_ACTION_SCHEMA = AlertActionRequest.model_json_schema()


async def _action_body(request: Request) -> AlertActionRequest:
    """The step, read only after the key was checked and only up to ``ACTION_BODY_BYTES``: a body
    parameter would have FastAPI read any body whole before the guard ran (an anonymous 300 MB
    body held ~590 MB, and was answered 422, not 401)."""
    raw = await _read_limited(request, ACTION_BODY_BYTES)
    try:
        return AlertActionRequest.model_validate_json(raw)
    except ValidationError as exc:
        # answered as FastAPI answers a bad body (invalid_request): fields under "body"; a check across
        # fields names the one to fill in (FieldError.field), as the event door does
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"], *_named_field(e))} for e in exc.errors()]) from None


def _named_field(error: Any) -> tuple[str, ...]:
    cause = (error.get("ctx") or {}).get("error")
    field = getattr(cause, "field", None)
    return (field,) if field and not error["loc"] else ()


BODY_HEAD_KEPT = 64 * 1024
"""What the dead letter of a body too large keeps of it (as a Kafka dead letter too large keeps its head)."""


async def _read_bounded(request: Request, limit: int) -> tuple[bytes, int | None]:
    """The body, and None; or, past ``limit``, its first ``BODY_HEAD_KEPT`` bytes (cut at a UTF-8 character's
    end) and its size (the Content-Length declared, else what was read before stopping: limit + 1 or more)."""
    declared = request.headers.get("content-length")
    over = declared is not None and declared.isdigit() and int(declared) > limit
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        chunks.append(chunk)
        if over and size >= BODY_HEAD_KEPT or size > limit:
            return _utf8_head(b"".join(chunks)[:BODY_HEAD_KEPT]), int(declared) if over else size
    raw = b"".join(chunks)
    return (raw[:BODY_HEAD_KEPT], int(declared)) if over else (raw, None)


def _utf8_head(head: bytes) -> bytes:
    """``head`` without a UTF-8 character cut at its end (the letter then keeps text, not base64); as it is
    when it is no UTF-8 anyway."""
    for cut in range(4):
        try:
            (head[:len(head) - cut] if cut else head).decode("utf-8")
        except UnicodeDecodeError:
            continue
        return head[:len(head) - cut] if cut else head
    return head


def _whole_body_letter(position: str, raw: bytes, reason: str, errors: list[dict[str, Any]]) -> DeadLetter:
    """The dead letter of a body refused as a whole (not JSON, not UTF-8, compressed, no batch): its first
    ``BODY_HEAD_KEPT`` bytes, its size and sha256, as the letter of a body too large keeps it.  Kept whole, a
    6 MB body that is not JSON sent 20 times stored 120 MB (150 MB/s from one key); what it holds is no event
    to replay, and the head shows what was sent, the digest tells one body from another.  (A batch's
    elements refused one by one are kept whole: each is an event its sender will correct and resend.)"""
    if len(raw) <= BODY_HEAD_KEPT:
        return DeadLetter("http", position, raw, reason, errors)
    head = _utf8_head(raw[:BODY_HEAD_KEPT])
    digest = hashlib.sha256(raw).hexdigest()
    note = {"field": "", "type": "letter_truncated", "raw_bytes": len(raw), "sha256": digest,
            "reason": f"dead letter truncated: only the first {len(head)} of the body's {len(raw)} bytes are kept (sha256 {digest})",
            "reason_zh": f"拒收记录已截断：仅保留请求体 {len(raw)} 字节中的前 {len(head)} 字节（sha256 {digest}）"}
    return DeadLetter("http", position, head, f"{reason} [{note['reason']}]", [*errors, note])


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status_code=413, detail=f"请求体超过 {limit} 字节 / body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(status_code=413, detail=f"请求体超过 {limit} 字节 / body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _add_event_schema(app: FastAPI) -> None:
    from schemas.export import event_json_schema

    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        event_schema = event_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(event_schema.pop("$defs", {}))
        components["Event"] = event_schema
        if "HTTPValidationError" in components:
            # what the handler of a bad parameter or body answers (invalid_request), not FastAPI's own shape
            components["HTTPValidationError"] = {
                "title": "HTTPValidationError", "type": "object", "required": ["detail", "errors"],
                "properties": {
                    "detail": {"type": "string", "description": "the reasons, in Chinese"},
                    "detail_en": {"type": "string"},
                    "errors": {"type": "array", "items": {"type": "object", "required": ["field", "type", "reason", "reason_zh"], "properties": {
                        "field": {"type": "string", "description": "e.g. query.format"}, "type": {"type": "string"},
                        "reason": {"type": "string"}, "reason_zh": {"type": "string"}}}},
                },
            }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
