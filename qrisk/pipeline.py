"""The embedded pipeline: durable log append, then the pure fold, then derived tables.

Used by ``qrisk run`` (behind the HTTP API), ``qrisk import`` and ``qrisk demo``;
all three feed the same ``submit()``.  The order inside ``submit`` is the
durability contract: the log rows are written before the fold sees the events,
so a crash at any point is repaired by replaying the log at start-up.
"""
from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import json
import queue
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

from pydantic import ValidationError

from alerts.lifecycle import (ACTION_ZH, NO_CLOSE_REASON, STATUS_NOTICE_FRESH_HOURS, STATUS_NOTICES, AlertActionError, AlertBook,
                              SYSTEM, AlertChange, Enterprise, _local, actor_zh)
from processors._build import share_field_sets
from processors.personal_info import SURNAMES, mask_personal_info
from processors.credit_file import RESENT, ComplaintRecord, CountyState, CreditFile, SampleRecord
from processors.step import FOLD_VERSION, Effect, Rules, step
from ingest.validate import ERRORS_TRUNCATED, capped_errors
from schemas.events import AlertActionEvent, Envelope, event_adapter, without_format_characters
from schemas.upcast import parse_event

from qrisk.store import Store, migrate
from qrisk.threads import NamedThread

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class Outcome:
    event_id: str
    status: str  # accepted | duplicate | conflict | withheld (another event of its request is a conflict)
    seq: int | None = None


@dataclass
class DeadLetter:
    channel: str  # http | import | kafka | processing (the fold failed on a logged event) | sink
    position: str  # where it came from: request id and index, file:line, topic/partition/offset
    raw: bytes
    reason: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    dead_letter_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    event_id: str | None = None
    """The event it is about (``named_event``); None: read from ``raw`` when the letter is written."""
    columns: list[str] | None = None
    """An imported CSV record's header (``raw`` is the record, or a sample's rows, without it), and the file's
    ``delimiter``: the preview masks a cell under 投诉人 / 联系人 … as the name it is (``letter_preview``)."""
    delimiter: str = ","

    def named_event(self) -> str:
        """The refused document's own event_id as the log spells it, '' when the input names none: the
        column ``dead_letters.event_id``, by which a later accepted copy settles the letter."""
        if self.event_id is not None:
            return self.event_id
        try:
            doc = json.loads(self.raw)
        except (ValueError, RecursionError):  # (not UTF-8, not JSON, nested too deeply: it names nothing)
            doc = None
        self.event_id = named_event_id(doc)
        return self.event_id


EVENT_ID_KEPT = 200
"""The longest event_id text a dead letter keeps as the event it is about (the API's ``?event_id=`` takes no longer)."""


def named_event_id(doc: Any) -> str:
    """The event_id a document (one event's JSON object) gives itself, spelt as the log spells it
    (``processors.ids.event_key``: a UUID lower case with dashes, whichever spelling the sender used);
    text that is no UUID as sent, trimmed, as it can never be logged yet is what the sender named;
    '' for anything else (a batch, a body that is no object, a value that is no text)."""
    value = doc.get("event_id") if isinstance(doc, dict) else None
    if not isinstance(value, str) or not value.strip() or len(value) > EVENT_ID_KEPT:
        return ""
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return value.strip()


LETTER_ERRORS_KEPT = 50
"""The errors a kept dead letter lists; one ``errors_truncated`` entry counts the rest (``letter_errors``)."""
LETTER_TEXT_KEPT = 2000
"""The characters a kept dead letter's reason, and each text of its errors, keeps (``letter_text``)."""


def letter_text(text: str) -> str:
    return text if len(text) <= LETTER_TEXT_KEPT else text[:LETTER_TEXT_KEPT] + f"… ({len(text)} characters)"


LETTER_PREVIEW_CHARS = 300
"""The characters of a dead letter's input its masked preview (``dead_letters.raw_preview``) keeps: the intake board's 原始内容."""
PREVIEW_READ_CHARS = 2000
"""Of the input, what is read for the preview: masked whole before it is cut, so no number is cut in two and left showing."""
PREVIEW_PARSED_BYTES = 1 << 20
NO_RAW_ZH = "（无原始内容）"


def letter_preview(raw: str, encoding: str = "utf-8", columns: Sequence[str] | None = None, delimiter: str = ",") -> str:
    """The start of a dead letter's input with the personal information in it masked (``processors.personal_info``),
    for readers who may not read event bodies (the Grafana reader: a refused complaint's text names its caller).
    JSON is read as its text says (a sender's ``\\u738b`` escapes are a name all the same) and masked value by value,
    the value of a key naming a person (投诉人, 联系人, complainant …) as a name: 王小明 alone says nothing the free-text
    masking could know it by.  An imported CSV record (``columns``: the file's header) likewise, cell by cell.  Bytes
    that are no UTF-8 are not shown at all, and an empty input says so — an empty preview is a letter kept before
    migration 057."""
    if not raw:
        return NO_RAW_ZH
    if encoding != "utf-8":
        return f"（非 UTF-8 编码的原始数据，共 {len(raw) * 3 // 4} 字节左右：请经 GET /v1/dead-letters/{{编号}} 查看）"
    masked = None
    if len(raw) <= PREVIEW_PARSED_BYTES:
        masked = _masked_json(raw)
        if masked is None:
            masked = _masked_record(raw, columns, delimiter)
    if masked is None:
        masked = _NAME_BESIDE_NUMBER.sub(_name_beside_number, mask_personal_info(raw[:PREVIEW_READ_CHARS]))
    return masked[:LETTER_PREVIEW_CHARS]


# A key (or a CSV column) whose value is a person's name: the caller's, the writer's, a patient's (投诉人姓名, 联系人,
# payload.complainant, caller.name).  Not the party complained of (被投诉人 is an enterprise), and not a bare ``name``:
# in an event it is the enterprise's (enterprise.registered) or the sender's (source.name), which the duty desk
# reads a refused letter by — only a ``name`` under a person's key (complainant.name) is one
_PERSON_KEY = re.compile(r"(?<!被)(?:投诉|举报)人|姓名|联系人|来信人|来电人|当事人|患者|诉求人|反映人|申请人|受害人|病人"
                         r"|complainant|contact|reporter|caller|informant|whistleblower|patient|applicant|victim|person", re.IGNORECASE)
_NAME_KEY = re.compile(r"name|名", re.IGNORECASE)
# ... unless it holds the person's number, address or mail (联系人电话, contact_phone): masked as free text, as 138****5678
_PERSON_DETAIL_KEY = re.compile(r"电话|手机|号码|地址|住址|邮箱|证件|身份证|微信|qq|phone|tel|mobile|mail|addr|wechat|card", re.IGNORECASE)
# with no header (a record whose letter has none): a cell of a 2-4 character name beside a cell holding a phone number,
# masked already (…,王小明,138****5678), is the caller and their number, as a hotline's export lists them
_NAME_BESIDE_NUMBER = re.compile(r"(?:^|(?<=[,\t]))([\u4e00-\u9fff]{2,4})(?=[,\t][-+()（）0-9]*\*{4}\d{4}(?:[,\t]|$))"
                                 r"|(?<=\*\*\*\*\d\d\d\d[,\t])([\u4e00-\u9fff]{2,4})(?=[,\t]|$)", re.MULTILINE)
_PLACE_END = tuple("厂店司行部馆场站社局所院") + ("中心", "超市")


def _name_beside_number(m: re.Match[str]) -> str:
    name = m.group(1) or m.group(2)
    return _masked_name(name) if name[0] in SURNAMES and not name.endswith(_PLACE_END) else name


def _person_key(key: Any, under_person: bool) -> bool:
    key = str(key)
    if _PERSON_DETAIL_KEY.search(key):
        return False
    return bool(_PERSON_KEY.search(key)) or (under_person and bool(_NAME_KEY.search(key)))


def _masked_name(name: str) -> str:
    name = name.strip()
    return name[:1] + "*" * (len(name) - 1)


def _masked_value(value: Any, budget: list[int], person: bool = False, under_person: bool = False) -> Any:
    """``value`` (parsed JSON) with every text masked, a person's name (``person``) as 王**.  ``budget``: the
    characters still read; what comes after them in the document is past the preview's cut, and is left out unread."""
    if isinstance(value, str):
        if budget[0] <= 0:
            return ""
        text = value[:budget[0]]
        budget[0] -= len(text)
        return _masked_name(text) if person else mask_personal_info(text)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            named = _person_key(key, person or under_person)
            # (the key as sent: a field's name, which the free-text masking would read as 投诉人姓* )
            out[key] = _masked_value(item, budget, named, person or under_person)
        return out
    if isinstance(value, list):
        return [_masked_value(item, budget, person, under_person) for item in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # a mobile number sent as a JSON number (13812345678) is a number all the same
        shown = mask_personal_info(str(value))
        return value if shown == str(value) else shown
    return value


def _masked_json(raw: str) -> str | None:
    if not raw.lstrip().startswith(("{", "[", '"')):
        return None
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    try:
        return json.dumps(_masked_value(doc, [PREVIEW_READ_CHARS]), ensure_ascii=False)
    except RecursionError:  # (nested deeper than the walk goes: masked as text)
        return None


def _masked_record(raw: str, columns: Sequence[str] | None, delimiter: str) -> str | None:
    """An imported CSV record (or a sample's rows) masked cell by cell: a cell under a column naming a person
    as a name, a cell of JSON (the payload column of an events file) value by value, any other as free text.
    None without a header, or when ``raw`` is no CSV (then it is masked as free text)."""
    if columns is None:
        return None
    try:
        records = list(csv.reader(io.StringIO(raw), delimiter=delimiter, strict=True))
    except csv.Error:
        return None
    if not records:
        return None
    budget = [PREVIEW_READ_CHARS]
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    for cells in records:
        out = []
        for i, cell in enumerate(cells):
            column = columns[i] if i < len(columns) else ""  # (cells past the header: a comma not quoted)
            if budget[0] <= 0:
                out.append("")
            elif _person_key(column, False):
                out.append(_masked_value(cell, budget, person=True))
            elif cell.lstrip().startswith(("{", "[")) and (document := _masked_json(cell)) is not None:
                budget[0] -= len(cell)
                out.append(document)
            else:
                out.append(_masked_value(cell, budget))
        writer.writerow(out)
    return buf.getvalue().rstrip("\n")


def letter_errors(errors: list[Any]) -> list[Any]:
    """A dead letter's errors as the store and the dead-letter topic keep them: the first
    LETTER_ERRORS_KEPT, each text cut short, and one entry counting the rest (``errors_total``).
    One key's refused posts, each naming 100,000 unknown keys, filled the disk 25 MB at a time."""
    return [{k: letter_text(v) if isinstance(v, str) else v for k, v in e.items()} if isinstance(e, dict) else letter_text(str(e))
            for e in capped_errors(errors, LETTER_ERRORS_KEPT)]


def letter_errors_total(errors: list[Any]) -> int:
    """How many errors ``errors`` stands for, those an ``errors_truncated`` entry counts included."""
    truncated = next((e for e in errors if isinstance(e, dict) and e.get("type") == ERRORS_TRUNCATED), None)
    return truncated["errors_total"] if truncated is not None else len(errors)


def imported_letter(position: str, raw: bytes, reason: str, errors: list[dict[str, Any]], doc: Any = None,
                    columns: Sequence[str] | None = None, delimiter: str = ",") -> DeadLetter:
    """A dead letter of a file being imported, named by where it is and what it holds: importing the
    same file again (after fixing other lines) rewrites the same letter instead of adding a copy.
    ``doc``: the line's document where the file's format is no JSON (a CSV row mapped), for its event_id;
    ``columns``, ``delimiter``: a CSV file's header, which its record's preview masks by."""
    name = uuid.uuid5(uuid.NAMESPACE_URL, f"qrisk-import:{position}:{hashlib.sha256(raw).hexdigest()}")
    return DeadLetter("import", position, raw, reason, errors, dead_letter_id=str(name),
                      event_id=named_event_id(doc) if isinstance(doc, dict) else None,
                      columns=list(columns) if columns is not None else None, delimiter=delimiter)


def _split_ms(moment: dt.datetime) -> tuple[dt.datetime, int]:
    moment = moment.astimezone(dt.timezone.utc)
    return moment.replace(microsecond=0), moment.microsecond // 1000


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

SHUTDOWN_WAIT_SECONDS = 60.0
"""How long ``close()`` (SIGTERM) waits for derived rows that cannot be written (a full disk, a
server away).  Nothing is lost by stopping sooner: the log has the events, and the next start
re-derives whatever the checkpoint does not cover; waiting longer only delays a service manager's
restart, which would then kill -9 anyway."""


def _epoch_ms(moment: dt.datetime) -> tuple[int, int]:
    """(epoch seconds, milliseconds) of an aware datetime: what a DateTime column and its _ms
    column hold.  Integer arithmetic (no float timestamp), and the store sends ints as they are."""
    if moment.tzinfo is None:  # the store's convention: naive is UTC
        moment = moment.replace(tzinfo=dt.timezone.utc)
    delta = moment - _EPOCH
    return delta.days * 86400 + delta.seconds, delta.microseconds // 1000


try:  # ~5-10x faster than the json module for effect data and credit-file snapshots
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is optional; the json module gives the same values
    _orjson = None


def _json_bytes(value: Any, sort_keys: bool = False) -> bytes:
    if _orjson is not None:
        try:
            return _orjson.dumps(value, option=_orjson.OPT_SORT_KEYS if sort_keys else 0)
        except TypeError:  # what orjson refuses (non-str keys, >64-bit ints): the json module decides
            pass
    return json.dumps(value, ensure_ascii=False, sort_keys=sort_keys).encode("utf-8")


def _json_text(value: Any, sort_keys: bool = False) -> str:
    return _json_bytes(value, sort_keys).decode("utf-8")


def _parts(rows: list[dict[str, Any]], most: int) -> Iterator[list[dict[str, Any]]]:
    """``rows`` in order, in runs whose bodies hold at most ``most`` characters (a longer body alone)."""
    part: list[dict[str, Any]] = []
    size = 0
    for row in rows:
        if part and size + len(row["body"]) > most:
            yield part
            part, size = [], 0
        part.append(row)
        size += len(row["body"])
    if part:
        yield part


def _parse_logged(body: str) -> Envelope:
    """A log body back to its event.  Bodies are written by ``_log_row`` in the current version,
    which pydantic validates straight from JSON; anything else takes the upcasting path."""
    try:
        return event_adapter.validate_json(body)
    except ValidationError:
        return parse_event(json.loads(body))


_STAMPED = frozenset({"received_at"})
# an alert step's time is the server's too (the API stamps it when the supervisor acts): a retried
# POST …/actions under the same event_id is the same step, whenever the retry came
_STAMPED_STEP = frozenset({"received_at", "occurred_at"})


def content_digest(event: Envelope, items_as_sent: bool = False) -> str:
    """What makes two deliveries under one ``event_id`` the same event, for both runtimes: what the
    producer said (not the ``received_at`` the server stamps) as the model reads it, so that a retry
    spelt differently (keys reordered, 未检出 for ND, 45 as 45.0, a sample's test items or an
    inspection's findings listed in another order) is the same event and a correction is not.

    A digest, not the content, because a Kafka worker keeps one for every event it has folded, in
    its snapshots too: 16 bytes of BLAKE2b over canonical JSON (keys sorted, fields at their default
    left out, so that a later version adding a field with a default gives the events folded before
    it the digests they had).  Whatever else changes what goes in here changes stored digests, and
    a retry of an event folded before would be taken for a conflict: a Kafka worker holding a digest
    from before the order of items stopped counting compares a mismatch once more with
    ``items_as_sent`` (the digest as it was then)."""
    stamped = _STAMPED_STEP if event.event_type == "alert.action" else _STAMPED
    content = _numbers_alike(event.model_dump(mode="json", exclude=stamped, exclude_defaults=True))
    if not items_as_sent:
        _in_one_order(content.get("payload"))
    if content.get("source", {}).get("name") == "":
        # no name, as the door now reads it: an event logged with "" and its retry read at the door are one
        # event (a Kafka worker's digest of such an event, kept from before, differs: its retry is a conflict)
        del content["source"]["name"]
    if event.event_type == "complaint.received" and isinstance(text := content["payload"].get("text"), str):
        # as the door now keeps it (format characters taken out): a complaint logged with a BOM or a zero-width
        # space before, re-imported or retried, is the same event, not a conflict; a text without them keeps
        # its digest.  (A Kafka worker's snapshot digest of such a complaint, kept from before, differs: its
        # resend there is a conflict, as for the source name above)
        content["payload"]["text"] = without_format_characters(text)
    # (orjson's bytes, as every worker has it; only an embedded process without it, which compares
    # digests it makes itself, would take the json module's)
    return hashlib.blake2b(_json_bytes(content, sort_keys=True), digest_size=16).hexdigest()


# lists whose order says nothing: a lab system reading a sample's result lines from its database
# without an ORDER BY sends them in another order on a retry (item codes are distinct in a sample)
_UNORDERED = {"items": lambda item: item.get("item_code") or "", "findings": lambda finding: _json_bytes(finding, sort_keys=True)}


def _in_one_order(payload: Any) -> None:
    if isinstance(payload, dict):
        for name, key in _UNORDERED.items():
            listed = payload.get(name)
            if isinstance(listed, list) and len(listed) > 1:
                listed.sort(key=key)


def _numbers_alike(value: Any) -> Any:
    """45 and 45.0 are one reading: a lab whose retry goes through another JSON library must not be
    told its retry is a correction.  (bool is an int in Python, and stays a bool.)"""
    if isinstance(value, dict):
        return {k: _numbers_alike(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_alike(v) for v in value]
    if type(value) is int:
        return float(value)
    return value


def conflict_error(event_id: str, where_en: str, where_zh: str) -> dict[str, Any]:
    """The error of an event whose id already names another event (``where``): the 409 answer's,
    and the dead letter's wherever a conflict is found (the HTTP door, an import, a Kafka worker)."""
    return {"field": "event_id", "type": "event_id_conflict", "event_id": event_id,
            "reason": f"event_id {event_id} already names {where_en}, with different content",
            "reason_zh": f"event_id {event_id} 已用于{where_zh}，内容不同；更正请使用新的 event_id"}


FOLD_SNAPSHOT_EVERY = dt.timedelta(hours=1)
"""How often a running pipeline writes the fold's state (``fold_snapshots``) besides at a clean shutdown."""

SNAPSHOT_INSERT_CHARS = 4_000_000
"""Credit-file bodies (characters of JSON) per INSERT into ``credit_files``.  chdb holds several times a block's
size while it writes it, and after a replay or a long import every file is written at once: thirty years of a
demo county, 32 files and ~65 MB of JSON, made one INSERT that took 440 MB more resident (bench/bench_memory.py)."""

DERIVED_TABLES = ("effects", "judgements", "sampling_items", "complaints", "alerts", "alert_events", "outbox", "credit_files",
                  "checkpoints", "fold_snapshots")
"""What a rebuild empties and writes again from the log.  Not ``event_log`` (the truth), ``deliveries``
(what receivers were sent: kept, so that nothing already sent goes out again — outbox ids are
deterministic), ``dead_letters`` and ``audit_log`` (records of what arrived and who did what; a
processing failure's letter is keyed by its event and rewritten in place), the leases, nor the keys."""

# final by a delivery's latest attempt: a given-up notification an operator re-queued (`qrisk alerts redeliver`,
# a later `requeued` row) waits to be sent again
_FINAL_DELIVERIES = ("SELECT delivery_id FROM deliveries GROUP BY delivery_id "
                     "HAVING argMax(status, attempt) IN ('sent', 'failed')")
_WAITING = (
    "SELECT delivery_id, any(alert_id) AS alert_id, any(enterprise_id) AS enterprise_id, any(receiver) AS receiver, "
    "any(channel) AS channel, any(reason) AS reason, any(created_at) AS created_at, any(created_ms) AS created_ms, "
    "any(body) AS body FROM outbox WHERE delivery_id NOT IN (" + _FINAL_DELIVERIES + ") GROUP BY delivery_id"
)
_ATTEMPTS = "SELECT delivery_id, max(attempt) AS attempts FROM deliveries GROUP BY delivery_id"
_HISTORY = "重建派生表时由"  # (how a notification a rebuild withheld is recorded: its error begins so)
_ESCALATIONS = ("escalated", "handling_overdue", "escalated_by_hand")
# each alert's receivers an escalation of it was sent to, and when last (epoch seconds): read before a rebuild empties the outbox
_ESCALATIONS_SENT = (
    "SELECT o.alert_id AS alert_id, o.receiver AS receiver, toUnixTimestamp(max(d.at)) AS at FROM deliveries AS d "
    "INNER JOIN (SELECT DISTINCT delivery_id, alert_id, receiver FROM outbox WHERE reason IN ("
    + ", ".join(f"'{r}'" for r in _ESCALATIONS) + ")) AS o ON d.delivery_id = o.delivery_id "
    "WHERE d.status = 'sent' GROUP BY o.alert_id, o.receiver"
)


class RebuildRefused(RuntimeError):
    """A rebuild that would empty derived tables the log cannot write again (one line, Chinese and English)."""


def policy_digest(rules: Rules) -> str:
    """The policy as the fold reads it (validated, defaults filled in): a comment edited in the file is
    no change, a default a new version adds is one.  With the working-day calendar's digest: a year added
    moves the same time limits the policy sets, and a snapshot folded under the old one is not restored."""
    return hashlib.sha256(rules.policy.model_dump_json().encode("utf-8") + rules.calendar.digest.encode("ascii")).hexdigest()


@dataclass
class Derivation:
    """The newest ``derivations`` row: what derived the derived tables (migration 046)."""

    ver: int
    state: str  # complete | rebuilding
    fold_version: int
    catalogue: str
    policy: str
    pending: list[dict[str, Any]]
    written_at: str


@dataclass
class _Rebuild:
    """What a rebuild decides about the notifications it derives again (see ``Pipeline._rebuild_deliveries``)."""

    cutoff: int  # epoch seconds: a step before this is history (policy.alerts.live_within_hours before now)
    status_cutoff: int  # the same for a notice of a change of standing (alerts.lifecycle.STATUS_NOTICES): a day
    final: set[str]  # delivery ids already sent or given up
    waiting: dict[str, dict[str, Any]]  # id -> outbox row (and attempts made): waiting to be sent when the rebuild began
    derived: set[str] = field(default_factory=set)  # every id the rebuild's outbox holds
    earlier: set[str] = field(default_factory=set)  # withheld by the attempt a crash cut short (counted again)
    escalated: dict[tuple[str, str], int] = field(default_factory=dict)  # (alert, receiver) -> last escalation sent (epoch s)
    released: int = 0  # waiting again (or new and recent): the dispatcher sends them
    withheld: int = 0  # new, about past steps: recorded as not sent


class Pipeline:
    def __init__(self, store: Store, rules: Rules, clock: Clock = utc_now, snapshot_every: dt.timedelta = dt.timedelta(seconds=5)):
        self.store = store
        self.rules = rules
        self.clock = clock
        self.state = CountyState()
        self.seq = 0  # the last seq handed out (the log's max)
        self.events = 0  # events in the log (below seq when seqs are missing: see recover)
        self.lock = threading.RLock()  # the fold and readers of state take turns
        self.writer_lease: Any = None  # on a server: qrisk.writer_lease.WriterLease, checked before each log write
        self.listeners: list[Callable[[list[Effect]], None]] = []  # told of effects of new events, not of replays
        # credit-file snapshots are the costliest derived rows (the whole file as JSON):
        # written at most every `snapshot_every`, on close, and all of them after recovery.
        # The first interval starts now, not at the first write: under load the cost is one
        # view per changed file per interval, not one per event
        self.snapshot_every = snapshot_every
        self._dirty: dict[str, int] = {}
        self._snapshot_at: dt.datetime | None = clock()
        self._fold_snapshot_at: dt.datetime = clock()
        self._sink: _DerivedSink | None = None
        self.derived_seq = 0
        self._sample_rows = SampleRows()
        # alerts are a fold of the same log (warning decisions, supervisors' alert.action events)
        self.alerts = AlertBook()
        self.migrations_applied = migrate(store, clock())  # (the start-up line names them)
        self.recovery: dict[str, Any] = {}
        self._rebuild: _Rebuild | None = None  # while a rebuild derives the tables again
        # sample number -> enterprises with a report of it: built from the files when first asked (after a
        # restore or a replay), then kept up to date by the fold; the door tells a lab that a number is on file
        # under another enterprise (抽样编号 are unique: a report sent under the wrong enterprise)
        self._sample_index: dict[str, list[str]] | None = None
        # while the log refuses writes: since when, how many events were refused, the last error (/healthz, /readyz)
        self.log_failing_since: dt.datetime | None = None
        self.log_refused_events = 0
        self.log_last_error: str | None = None
        self.log_last_refusal: dt.datetime | None = None

    # ------------------------------------------------------------------ recovery

    def recover(self, progress: Callable[[int], None] | None = None, batch: int = 2000, rebuild: bool = False) -> int:
        """Rebuild the state by replaying the log; re-derive what the last run may not have written.

        The derived tables are rebuilt from the log instead (emptied, then written again) when they
        cannot be trusted: another fold version or standards catalogue derived them, none is on
        record (a version before migration 046 wrote them), a rebuild was cut short, or the
        checkpoint is past the log's end (a copy of a running data directory); or when ``rebuild``
        asks.  ``progress`` is called with each batch's size, and first with ``start(total)`` when
        it has one.  ``self.recovery`` says what was done, for the start-up log."""
        started = time.monotonic()
        extent = self.store.query("SELECT count() AS n, max(seq) AS last FROM event_log", {})
        total, log_end = (int(extent[0]["n"] or 0), int(extent[0]["last"] or 0)) if extent else (0, 0)
        checkpoint = self._checkpoint()
        derivation = self._derivation()
        if rebuild and log_end == 0 and self.store.query("SELECT count() AS n FROM alerts", {})[0]["n"]:
            # a database whose log is elsewhere (the Kafka mode's: its sink writes these tables)
            raise RebuildRefused("事件日志为空而派生表有数据（Kafka 模式的数据库？其日志在 Kafka 中）：不予重建，否则派生表将被清空 / "
                                 "the event log is empty but the derived tables are not (a Kafka-mode database, whose log is in "
                                 "Kafka?): not rebuilt, which would only empty them")
        why = ("qrisk rebuild", "asked for (qrisk rebuild)") if rebuild else self._untrusted(derivation, checkpoint, log_end)
        if why is not None:
            print(f"qrisk: 从事件日志重建派生表（{why[0]}）：重放 {total:,} 个事件并重新写入，保留发送记录、拒收记录与日志 / rebuilding the derived "
                  f"tables from the event log ({why[1]}): {total:,} events to replay and write again; deliveries, dead letters and "
                  "the log are kept", file=sys.stderr, flush=True)
            self._begin_rebuild(derivation)
            checkpoint = 0
        self.derived_seq = checkpoint
        # a clean shutdown left the fold's state at its seq: fold only the log after it
        note = getattr(progress, "note", None) or (lambda phase, zh, en: None)
        if why is None and checkpoint:
            note("snapshot", "正在读取状态快照", "reading the fold's snapshot")
        snapshot = self._fold_snapshot(checkpoint, log_end) if why is None and checkpoint else None
        restored = restored_at = 0
        last = 0
        if snapshot is not None:
            note("snapshot", f"正在从第 {int(snapshot['seq']):,} 号事件处的状态快照恢复（{int(snapshot['events']):,} 个事件）",
                 f"restoring the fold's state at seq {int(snapshot['seq']):,} ({int(snapshot['events']):,} events) from its snapshot")
            try:
                state, alerts = CountyState.restore(snapshot["state"].encode("utf-8")), AlertBook.model_validate_json(snapshot["alerts"])
                share_field_sets(alerts)  # (as CountyState.restore does: one field set per model class, not per alert)
            except Exception as exc:  # noqa: BLE001 - a snapshot that does not read back is no reason not to start
                print(f"qrisk: 状态快照无法读取（{type(exc).__name__}），改为重放全部日志 / the fold's snapshot does not read back "
                      f"({type(exc).__name__}: {str(exc)[:200]}): replaying the whole log", file=sys.stderr, flush=True)
            else:
                with self.lock:
                    self.state, self.alerts = state, alerts
                    last = self.seq = int(snapshot["seq"])
                restored, restored_at = int(snapshot["events"]), last
                print(f"qrisk: 从第 {last:,} 号事件处的状态快照恢复（{restored:,} 个事件），其后 {max(total - restored, 0):,} 个事件重放 / "
                      f"restored the fold's state at seq {last:,} ({restored:,} events) from its snapshot; "
                      f"{max(total - restored, 0):,} events after it to replay", file=sys.stderr, flush=True)
        start = getattr(progress, "start", None)
        if start is not None:
            start(max(total - restored, 0))
        elif progress is not None and getattr(progress, "total", 0) is None:
            progress.total = max(total - restored, 0)  # type: ignore[attr-defined]  # (a progress without start(): the total it shows)
        replayed = 0
        # another policy than the one the tables were derived under: the replay of earlier events follows it, but their
        # rows stay as they were — a deadline's escalation it makes there (a silence taken out of the policy) reaches nobody
        policy_changed = why is None and derivation is not None and derivation.policy != policy_digest(self.rules)
        escalated_in_history: dict[str, str] = {}  # alert → the escalation the replay made among events already derived
        gaps: list[tuple[int, int]] = []
        size = min(250, batch)  # small batches first, so that progress shows within a second or two
        while True:
            rows = self.store.query(
                # FINAL: a retried insert may show twice until the ReplacingMergeTree merges it
                "SELECT seq, body FROM event_log FINAL WHERE seq > %(after)s ORDER BY seq LIMIT %(limit)s",
                {"after": last, "limit": size},
            )
            if not rows:
                break
            size = min(size * 2, batch)
            derived: list[Folded] = []
            with self.lock:
                for row in rows:
                    seq = int(row["seq"])
                    if seq > last + 1:
                        gaps.append((last + 1, seq - 1))
                    event = _parse_logged(row["body"])
                    effects, changes = self._fold(event)
                    if seq > checkpoint:
                        derived.append((seq, event, effects, changes))
                    elif policy_changed and changes:
                        for c in changes:
                            if c.step.action in ("escalated", "handling_overdue"):
                                escalated_in_history[c.alert.alert_id] = c.step.action
                    last = seq
                self.seq = last
            if derived:
                self._write_derived(derived)
            replayed += len(rows)
            if progress:
                progress(len(rows))
        self.events = restored + replayed
        if replayed or restored:
            note("finishing", f"已重放 {replayed:,} 个事件，正在写入诚信档案快照", f"{replayed:,} events replayed; writing the credit-file snapshots")
            with self.lock:
                self._dirty = {eid: self.seq for eid in self.state.files}
            self.write_snapshots()
        rebuilt = None
        # logged before the new policy is marked complete: a crash in between (kill -9, a log write that fails) is a start
        # the next one still sees as a policy change, which escalates them then (the same ids: a repeat is a duplicate)
        unheard = self._escalate_unheard(escalated_in_history) if escalated_in_history else []
        if why is not None:
            rebuilt = {"why_zh": why[0], "why": why[1], "seconds": time.monotonic() - started, **self._end_rebuild()}
        elif derivation is None or derivation.policy != policy_digest(self.rules):
            self._mark("complete", [])  # (the first start of a data directory, or another policy: see below)
        # derived rows behind the log: the last run stopped (kill -9, a crash) before writing them
        behind = (checkpoint + 1, self.seq) if self.seq > checkpoint and why is None else None
        self.recovery = {
            "replayed": replayed, "seconds": time.monotonic() - started, "rederived": behind, "rebuilt": rebuilt,
            "events": restored + replayed, "last_seq": self.seq, "gaps": gaps, "missing": sum(b - a + 1 for a, b in gaps),
            "snapshot_seq": restored_at or None,  # (gaps are those of the log after it)
            # another policy than the one the tables were derived under: new events follow it, the rows
            # of earlier ones stay as they were (said once; `qrisk rebuild` re-derives them all)
            "policy_changed": policy_changed,
            "escalated_unheard": unheard,
        }
        note("finishing", "正在建立抽样编号索引", "indexing the sample numbers")
        with self.lock:
            self.index_samples()  # (now, before requests are served: built by the first one it held the event loop)
        return replayed

    def _escalate_unheard(self, escalated: dict[str, str]) -> list[str]:
        """Escalate now, in the log, what the replay under a new policy escalated among events whose rows were written
        under the old one, and nobody heard of: a silence taken out of the policy file before its end held the alert's
        escalation, and the replay made it at the deadline, as history.  Only an alert still waiting for it (unacknowledged,
        or acknowledged and not handled) whose escalation the alerts tables never recorded; the step is qrisk's own
        ``alert.action``, so a replay makes it again and its notifications keep their delivery ids.  Returns the alert ids."""
        events = []
        for alert_id, action in escalated.items():
            alert = self.alerts.alerts.get(alert_id)
            if alert is None or alert.state != ("open" if action == "escalated" else "acknowledged"):
                continue
            stored = stored_alert_views(self.store, alert_id)
            # escalated for the wait it is in now under the old policy too: told then (or recorded as telling nobody).  The row's
            # flag is the current wait's (a reopening clears escalated, an acknowledgement handling_escalated): an escalation of
            # an earlier wait, before the alert was closed and reopened, is no answer to this one
            if stored and stored[0].get("escalated" if action == "escalated" else "handling_escalated"):
                continue
            reason = stored[0].get("silenced") if stored else None
            policy = self.rules.policy
            if action == "escalated":
                missed = f"期间已超过确认期限（应于 {_local(alert.respond_by, policy)} 前确认）"  # type: ignore[arg-type]
            else:
                missed = f"期间已超过处置期限（应于 {_local(alert.handle_by, policy)} 前责令整改或关闭）"  # type: ignore[arg-type]
            note = (f"静默（{reason}）{missed}，静默已在策略文件中提前解除，升级通报" if reason else
                    f"原策略下{missed.removeprefix('期间')}时未升级；策略文件变更后升级通报")
            # the wait's start in the id: a later wait of the alert (reopened, acknowledged again) is another escalation
            since = alert.reopened_at if action == "escalated" else alert.acknowledged_at
            wait = f":{since.isoformat()}" if since is not None else ""
            events.append(AlertActionEvent(
                event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"qrisk:escalate-unheard:{alert_id}:{action}:{policy_digest(self.rules)}{wait}"),
                event_type="alert.action", enterprise_id=alert.enterprise_id, occurred_at=self.clock(),
                source={"kind": "system", "id": SYSTEM},
                payload={"alert_id": alert_id, "action": "escalate", "actor": SYSTEM, "note": note}))
        if events:
            print(f"qrisk: 策略变更后重放日志补作了 {len(events)} 个无人收到的超时升级，现予升级通报 / the replay under the changed policy "
                  f"escalated {len(events)} alert(s) among past events, which nobody heard of: escalated now", file=sys.stderr, flush=True)
            self.submit(events)
        return [str(e.payload.alert_id) for e in events]

    def _checkpoint(self) -> int:
        rows = self.store.query("SELECT max(seq) AS seq FROM checkpoints WHERE name = %(name)s", {"name": "derived"})
        return int(rows[0]["seq"]) if rows and rows[0]["seq"] is not None else 0

    def _derivation(self) -> Derivation | None:
        rows = self.store.query("SELECT ver, state, fold_version, catalogue, policy, pending, written_at FROM derivations "
                                "WHERE name = 'derived' ORDER BY ver DESC LIMIT 1", {})
        if not rows:
            return None
        r = rows[0]
        return Derivation(int(r["ver"]), r["state"], int(r["fold_version"]), r["catalogue"], r["policy"],
                          json.loads(r["pending"]) if r["pending"] else [], r["written_at"])

    def _untrusted(self, derivation: Derivation | None, checkpoint: int, log_end: int) -> tuple[str, str] | None:
        """Why the derived tables cannot be kept (Chinese, English), or None."""
        if checkpoint > log_end:
            # rows derived from events this log does not have, and a checkpoint that would let a
            # crash skip re-deriving the seqs below it: nothing in the tables can be trusted
            return (f"检查点 {checkpoint} 超过日志末尾 {log_end}：数据目录是运行中复制的，或日志被删除了一部分",
                    f"the checkpoint {checkpoint} is past the log's end {log_end}: a copy taken while qrisk ran, or part of the log deleted")
        if derivation is None:
            if log_end == 0:
                return None  # nothing derived yet
            return ("派生表没有记录由哪个版本生成（由 046 号迁移之前的版本写入）",
                    "no record of the code that derived them (written by a version before migration 046)")
        if derivation.state != "complete":
            return ("上次重建未完成", "the last rebuild did not finish")
        if derivation.fold_version != FOLD_VERSION:
            return (f"折叠版本由 {derivation.fold_version} 变为 {FOLD_VERSION}",
                    f"fold version {derivation.fold_version} derived them, this is {FOLD_VERSION}")
        if derivation.catalogue != self.rules.catalogue.digest:
            return (f"标准目录已更改（{derivation.catalogue[:12]} → {self.rules.catalogue.digest[:12]}）",
                    f"the standards catalogue changed ({derivation.catalogue[:12]} -> {self.rules.catalogue.digest[:12]})")
        return None

    def _mark(self, state: str, pending: list[dict[str, Any]]) -> None:
        previous = self._derivation()
        now = self.clock()
        self.store.insert("derivations", [{
            "name": "derived", "ver": max(previous.ver + 1 if previous else 1, int(now.timestamp() * 1000)), "state": state,
            "fold_version": FOLD_VERSION, "catalogue": self.rules.catalogue.digest, "policy": policy_digest(self.rules),
            "log_seq": self.seq, "written_at": now, "pending": json.dumps(pending, ensure_ascii=False) if pending else "",
        }])

    def _begin_rebuild(self, derivation: Derivation | None) -> None:
        """Note what waits to be sent, say a rebuild is under way, empty the derived tables."""
        earlier: set[str] = set()
        if derivation is not None and derivation.state == "rebuilding":
            waiting = derivation.pending  # (the outbox now holds the cut-short rebuild's rows, not the old ones)
            earlier = {r["delivery_id"] for r in self.store.query(
                "SELECT DISTINCT delivery_id FROM deliveries WHERE status = 'failed' AND position(error, %(why)s) = 1 "
                "AND at >= %(since)s", {"why": _HISTORY, "since": derivation.written_at})}
        else:
            attempts = {r["delivery_id"]: int(r["attempts"]) for r in self.store.query(_ATTEMPTS, {})}
            waiting = [{**r, "attempts": attempts.get(r["delivery_id"], 0)} for r in self.store.query(_WAITING, {})]
        escalated = {(r["alert_id"], r["receiver"]): int(r["at"]) for r in self.store.query(_ESCALATIONS_SENT, {})}
        # on record before anything is emptied: a crash from here on is a rebuild the next start does again
        self._mark("rebuilding", waiting)
        for table in DERIVED_TABLES:
            self.store.command(f"TRUNCATE TABLE {table}")
        now = _epoch_ms(self.clock())[0]
        self._rebuild = _Rebuild(
            cutoff=now - 3600 * self.rules.policy.alerts.live_within_hours,
            status_cutoff=now - 3600 * min(self.rules.policy.alerts.live_within_hours, STATUS_NOTICE_FRESH_HOURS),
            final={r["delivery_id"] for r in self.store.query(_FINAL_DELIVERIES, {})},
            waiting={r["delivery_id"]: r for r in waiting}, earlier=earlier, escalated=escalated)

    def _end_rebuild(self) -> dict[str, int]:
        """Settle the notifications that waited and that the rebuilt outbox no longer has; mark complete.

        One for a receiver the policy still names is one the current code no longer makes (its alert
        or its step is gone): recorded as not sent.  One for a receiver the policy does not name goes
        back into the outbox as it was: which receivers exist is the policy's say, not the fold's, and
        the dispatcher already settles such a notification (failed, receiver no longer configured) —
        or, with no receivers at all (a start with the wrong --policy?), nothing is sent and it waits
        for a policy that has them, as every notification then does."""
        rb = self._rebuild
        assert rb is not None
        gone = [r for did, r in rb.waiting.items() if did not in rb.derived and did not in rb.final]
        named = {r.name for r in self.rules.policy.alerts.receivers}
        withdrawn = [r for r in gone if r["receiver"] in named]
        kept = [{k: v for k, v in r.items() if k != "attempts"} for r in gone if r["receiver"] not in named]
        if withdrawn:
            self.store.insert("deliveries", [self._not_sent(
                r["delivery_id"], r["alert_id"], r["enterprise_id"], r["receiver"], r["channel"], int(r.get("attempts", 0)) + 1,
                "重建派生表后，当前版本不再产生此通知，未发送 / the derived tables were rebuilt and the current code no longer "
                "makes this notification: not sent") for r in withdrawn])
        if kept:
            self.store.insert("outbox", kept)
        self._rebuild = None
        self._mark("complete", [])
        return {"released": rb.released + len(kept), "withheld": rb.withheld, "withdrawn": len(withdrawn), "kept": len(kept)}

    def _not_sent(self, delivery_id: str, alert_id: str, enterprise_id: str, receiver: str, channel: str, attempt: int,
                  why: str) -> dict[str, Any]:
        at, at_ms = _split_ms(self.clock())
        return {"delivery_id": delivery_id, "alert_id": alert_id, "enterprise_id": enterprise_id, "receiver": receiver,
                "channel": channel, "attempt": attempt, "status": "failed", "at": at, "at_ms": at_ms, "response_code": 0,
                "error": why}

    def _rebuild_deliveries(self, alert_steps: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        """The notifications a rebuild derives again, decided before their outbox rows are written (a
        dispatcher on a server may be reading the outbox meanwhile).  One already sent or given up
        stays so (the dispatcher skips it); one that was waiting when the rebuild began goes out as
        it would have; one the old tables never had goes out when its step is recent (within
        ``alerts.live_within_hours``, the rule that keeps a back-fill quiet), and is otherwise
        recorded as not sent: a rebuild re-derives the past, it is no news to send a county's
        supervisors again (another fold may number an alert's steps differently, which changes ids)."""
        rb = self._rebuild
        assert rb is not None
        out: list[dict[str, Any]] = []
        for row in alert_steps:
            step = dict(zip(ALERT_STEP_COLUMNS, row))
            for did, receiver, channel, reason in zip(step["delivery_id"], step["receiver"], step["channel"], step["reason"]):
                rb.derived.add(did)
                if did in rb.final:
                    rb.withheld += did in rb.earlier
                    continue
                told = rb.escalated.get((step["alert_id"], receiver))
                if did not in rb.waiting and reason in _ESCALATIONS and told is not None and told >= step["at"]:
                    # an escalation the old tables had as history, whose receiver was told of one since (the escalation a
                    # start under a changed policy logged for it, qrisk.pipeline._escalate_unheard): a second would be news
                    # of nothing
                    rb.final.add(did)
                    rb.withheld += 1
                    out.append(self._not_sent(
                        did, step["alert_id"], step["enterprise_id"], receiver, channel, 1,
                        f"{_HISTORY}早先的超时升级步骤重新产生；此后已在策略变更后的启动时升级通报，未再发送 / derived again by a rebuild of the "
                        "derived tables: the receiver was sent an escalation of this alert since (at a start under a changed "
                        "policy), not sent again"))
                    continue
                if did in rb.waiting or step["at"] >= (rb.status_cutoff if reason in STATUS_NOTICES else rb.cutoff):
                    rb.released += 1
                    continue
                rb.final.add(did)
                rb.withheld += 1
                hours = self.rules.policy.alerts.live_within_hours
                out.append(self._not_sent(
                    did, step["alert_id"], step["enterprise_id"], receiver, channel, 1,
                    f"{_HISTORY} {hours} 小时之前的步骤重新产生，属历史数据，未发送 / derived again by a rebuild of the derived "
                    f"tables from a step over {hours} h old (history): not sent"))
        return out

    # ------------------------------------------------------------------ writes

    def submit(self, events: Sequence[Envelope], requests: Sequence[int] | None = None) -> list[Outcome]:
        """Append new events durably, fold them, write derived rows.

        A repeated ``event_id`` is a no-op (``duplicate``, with the seq its first delivery got) when
        it repeats the same event, and a ``conflict`` when it names a different one: a lab that
        corrects a result under the old id must not be told its correction landed.  ``requests``
        are the sizes of the requests ``events`` joins (group commit): a request with a conflict
        is written not at all (its other events are ``withheld``), as a request with a bad event is
        refused whole; the others go on.  Checked under the lock, so two requests racing with one
        id cannot both pass.
        """
        with self.lock:
            sizes = list(requests) if requests is not None else [len(events)]
            clashes, logged = self._repeats(events, sizes)
            outcomes: list[Outcome] = []
            fresh: list[tuple[int, Envelope]] = []
            batch_ids: set[str] = set()
            now = self.clock()
            start = 0
            for size in sizes:
                part = range(start, start + size)
                start += size
                if clashes and any(i in clashes for i in part):
                    outcomes += [Outcome(str(events[i].event_id), "conflict", clashes[i]) if i in clashes
                                 else Outcome(str(events[i].event_id), "withheld") for i in part]
                    continue
                for i in part:
                    event = events[i]
                    eid = str(event.event_id)
                    if eid in self.state.seen_event_ids or eid in batch_ids:
                        outcomes.append(Outcome(eid, "duplicate", logged.get(eid)))
                        continue
                    batch_ids.add(eid)
                    self.seq += 1
                    logged[eid] = self.seq  # a later copy in this batch: a duplicate of this one
                    fresh.append((self.seq, event.model_copy(update={"received_at": now})))
                    outcomes.append(Outcome(eid, "accepted", self.seq))
            if not fresh:
                return outcomes
            try:
                if self.writer_lease is not None:
                    self.writer_lease.check()
                self.store.insert("event_log", [self._log_row(seq, e) for seq, e in fresh])
            except Exception as exc:
                self._log_refused(exc, len(fresh))
                # Nothing is acknowledged, but the insert may have landed (a timeout after the server wrote
                # it): numbers the log holds are never handed out again, or a retry would replace what
                # landed.  The log says how far it got; unreadable, the numbers stay unused (a gap in seq
                # is harmless, and a copy that landed is a repeat the fold skips by its id).
                try:
                    rows = self.store.query("SELECT max(seq) AS seq FROM event_log", {})
                    self.seq = max(self.seq - len(fresh), int(rows[0]["seq"] or 0))
                except Exception:  # noqa: BLE001 - the store is down: keep the gap
                    pass
                raise
            if self.log_failing_since is not None:
                self._log_recovered()
            self.events += len(fresh)
            derived = [(seq, event, *self._fold(event)) for seq, event in fresh]
        self._write_derived(derived)
        produced = [eff for _, _, effects, _ in derived for eff in effects]
        for listener in self.listeners:
            listener(produced)
        return outcomes

    def conflicts(self, events: Sequence[Envelope]) -> dict[int, int | None]:
        """Which of one request's events would be a ``conflict`` if it were submitted now (``_repeats``),
        without writing anything: a request refused for other reasons names these too, so that one
        resend is enough.  (A request arriving meanwhile may change that; ``submit`` decides.)"""
        with self.lock:
            return self._repeats(events, [len(events)])[0]

    def _repeats(self, events: Sequence[Envelope], sizes: Sequence[int]) -> tuple[dict[int, int | None], dict[str, int]]:
        """Which events reuse an id for other content: index -> the seq of the logged one (None: another
        event received with it has the id); and the seq of every repeated id already logged.

        A retry repeats the same event and is no conflict (the ``received_at`` the server stamps
        aside).  A copy is compared with the logged event when there is one — never with another copy
        that arrived with it, which may itself be the wrong one — else with the first copy in a request
        that goes ahead (``sizes``: the requests these events join, in the order they arrived): a request
        that conflicts is written not at all, so its copies decide nothing.  Only repeated ids cost a
        digest, and only logged ones a log read.
        """
        seen = self.state.seen_event_ids
        ids = [str(event.event_id) for event in events]
        counts: dict[str, int] = {}
        for eid in ids:
            counts[eid] = counts.get(eid, 0) + 1
        logged_ids = [eid for eid in counts if eid in seen]
        logged: dict[str, tuple[int, Any]] = {}
        if logged_ids:
            rows = self.store.query("SELECT event_id, min(seq) AS seq, any(body) AS body FROM event_log "
                                    "WHERE has(%(ids)s, event_id) GROUP BY event_id", {"ids": logged_ids})
            logged = {r["event_id"]: (int(r["seq"]), content_digest(_parse_logged(r["body"]))) for r in rows}
        watched = [i for i, eid in enumerate(ids) if counts[eid] > 1 or eid in logged]
        if not watched:
            return {}, {}
        digests = {i: content_digest(events[i]) for i in watched}
        clashes: dict[int, int | None] = {}
        ahead: dict[str, str] = {}  # id -> digest of its copy in a request that goes ahead
        start = 0
        for size in sizes:  # in the order the requests arrived: the first that goes ahead decides
            mine: dict[str, str] = {}
            found: dict[int, int | None] = {}
            for i in range(start, start + size):
                if i not in digests:
                    continue
                eid, digest = ids[i], digests[i]
                hit = logged.get(eid)
                if hit is not None:
                    if digest != hit[1]:
                        found[i] = hit[0]
                    continue
                reference = ahead.get(eid) or mine.get(eid)
                if reference is None:
                    mine[eid] = digest
                elif reference != digest:
                    found[i] = None
            start += size
            if found:
                clashes.update(found)
            else:
                ahead.update(mine)
        return clashes, {eid: seq for eid, (seq, _) in logged.items()}

    def _fold(self, event: Envelope) -> tuple[list[Effect], list[AlertChange] | None]:
        """step(), then the alerts stage, with a processing error turned into a visible effect
        instead of a lost event.

        The event is already in the log; a replay meets the same error at the same
        point, so state stays deterministic, and the dead letter (keyed by event id)
        is written once.
        """
        state = self.state
        try:
            self.state, effects = step(state, event, self.rules)
        except Exception as exc:  # noqa: BLE001 - any bug in the fold must not stop the log
            return [self._failed(event, f"processing failed: {type(exc).__name__}: {exc}")], None
        index = self._sample_index
        if index is not None:
            if self.state is not state:
                self._sample_index = None  # (another state object: built again when next asked)
            elif event.event_type == "sampling.result":
                owners = index.setdefault(event.payload.sample_no, [])  # type: ignore[attr-defined]
                if event.enterprise_id not in owners:
                    owners.append(event.enterprise_id)
        try:
            changes = self.alerts.apply(event, effects, self.rules.policy, self._enterprise)
        except AlertActionError as exc:
            # an alert step the alert could not take (the API checks first; another writer may not):
            # kept as an effect with the reason, the alert unchanged
            p = event.payload  # type: ignore[attr-defined]
            return [*effects, Effect(kind="alert.action_rejected", enterprise_id=event.enterprise_id, event_id=str(event.event_id),
                                     occurred_at=event.occurred_at, data={"alert_id": p.alert_id, "action": p.action, "reason_zh": str(exc)})], None
        except Exception as exc:  # noqa: BLE001 - the credit file is folded: keep its effects, report the alerts stage
            return [*effects, self._failed(event, f"alerts stage failed: {type(exc).__name__}: {exc}")], None
        return effects, (changes or None)

    def _log_refused(self, exc: Exception, events: int) -> None:
        """The log refused a batch (a full disk, the server gone, the writer's lease lapsed): nothing of it is
        acknowledged (the API answers 503).  Said once per episode on stderr and kept for /healthz and /readyz,
        which said 'the event log is not affected' while every write failed."""
        self.log_refused_events += events
        self.log_last_error = f"{type(exc).__name__}: {exc}"[:300]
        self.log_last_refusal = self.clock()
        if self.log_failing_since is None:
            self.log_failing_since = self.clock()
            print(f"qrisk: 事件日志拒绝写入（{self.log_last_error}）：新事件不被接收（503），发送方应重发 / the event log refuses "
                  f"writes ({self.log_last_error}): new events are not accepted (503) until it takes them again",
                  file=sys.stderr, flush=True)

    def _log_recovered(self) -> None:
        since = self.log_failing_since
        print(f"qrisk: 事件日志已恢复写入（自 {since:%H:%M:%S} 起拒绝了 {self.log_refused_events} 个事件，发送方重发即可）/ the event log "
              f"takes writes again ({self.log_refused_events} events refused since {since:%H:%M:%S} UTC; senders resend them)",
              file=sys.stderr, flush=True)
        self.log_failing_since, self.log_refused_events = None, 0

    def index_samples(self) -> dict[str, list[str]]:
        """Build the sample-number index from the files (the caller holds the lock, or nothing folds yet)."""
        state, index = self.state, {}
        for enterprise_id, file in state.files.items():
            for record in file.samples:
                owners = index.setdefault(record.sample_no, [])
                if enterprise_id not in owners:
                    owners.append(enterprise_id)
        self._sample_index, self._indexed_state = index, state
        return index

    def _complaints_elsewhere(self, event: Envelope) -> list[tuple[str, Any]]:
        state = self.state
        number = event.payload.complaint_id  # type: ignore[attr-defined]
        own = state.files.get(event.enterprise_id)
        if event.event_type == "complaint.resolved" and own is not None and own.complaint(number) is not None:
            return []
        # (a scan of every file: a county's complaints are hundreds; a complaint received under a second enterprise
        # is said too — filed under the wrong one, it counts in both)
        return [(eid, record) for eid, file in list(state.files.items()) if eid != event.enterprise_id
                for record in [file.complaint(number)] if record is not None]

    def samples_elsewhere(self, event: Envelope) -> list[tuple[str, Any]]:
        """The reports of ``event``'s sample number (and kind: original or re-test) on file under other
        enterprises than its own, each with its enterprise id: the current ones (not replaced by a resend).
        For a complaint's resolution whose complaint is not on its enterprise's file, the complaints of that
        number on other enterprises' files: a resolution sent under the wrong enterprise waits for good."""
        if event.event_type in ("complaint.received", "complaint.resolved"):
            return self._complaints_elsewhere(event)
        if event.event_type != "sampling.result":
            return []
        index = self._sample_index
        state = self.state
        if index is None or getattr(self, "_indexed_state", None) is not state:
            # (built at the end of recover(), before requests are served: here only if the state was replaced since)
            with self.lock:
                index, state = self.index_samples(), self.state
        p = event.payload  # type: ignore[attr-defined]
        out = []
        for enterprise_id in list(index.get(p.sample_no, ())):
            if enterprise_id == event.enterprise_id:
                continue
            file = state.files.get(enterprise_id)
            for record in list(file.samples) if file is not None else ():
                if record.sample_no == p.sample_no and record.retest == p.retest and record.superseded_as not in RESENT:
                    out.append((enterprise_id, record))
        return out

    @staticmethod
    def _failed(event: Envelope, reason: str) -> Effect:
        return Effect(kind="processing.failed", enterprise_id=event.enterprise_id, event_id=str(event.event_id),
                      occurred_at=event.occurred_at, data={"reason": reason, "event_type": event.event_type})

    def _enterprise(self, enterprise_id: str) -> Enterprise | None:
        file = self.state.files.get(enterprise_id)
        if file is None or file.profile is None:
            return None
        p = file.profile
        return Enterprise(name=p.name, town=p.town, category=p.category)

    def dead_letter(self, letters: Iterable[DeadLetter]) -> list[str]:
        now, ms = _split_ms(self.clock())
        rows = []
        for dl in letters:
            try:
                raw, encoding = dl.raw.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                raw, encoding = base64.b64encode(dl.raw).decode("ascii"), "base64"
            rows.append({
                "dead_letter_id": dl.dead_letter_id, "received_at": now, "received_ms": ms,
                "channel": dl.channel, "position": dl.position, "raw": raw, "raw_encoding": encoding,
                # bounded as the dead-letter topic bounds them (qrisk.kafka_log): the raw bytes are the body's
                # (QRISK_MAX_BODY_BYTES), but the errors and the reason naming them grew with what was wrong
                "reason": letter_text(dl.reason), "errors": json.dumps(letter_errors(dl.errors), ensure_ascii=False),
                "event_id": dl.named_event(), "raw_preview": letter_preview(raw, encoding, dl.columns, dl.delimiter),
            })
        self.store.insert("dead_letters", rows)
        return [r["dead_letter_id"] for r in rows]

    @staticmethod
    def _log_row(seq: int, event: Envelope) -> dict[str, Any]:
        occurred, occurred_ms = _epoch_ms(event.occurred_at)
        received, received_ms = _epoch_ms(event.received_at)
        return {
            "seq": seq, "event_id": str(event.event_id), "event_type": event.event_type,
            "schema_version": event.schema_version, "enterprise_id": event.enterprise_id,
            "occurred_at": occurred, "occurred_ms": occurred_ms, "received_at": received, "received_ms": received_ms,
            "source_kind": event.source.kind, "source_id": event.source.id,
            # only what the producer set (plus received_at): a null never masquerades as a value.
            # As UTF-8 bytes (model_dump_json without its decode): chdb takes them as they are
            "body": type(event).__pydantic_serializer__.to_json(event, exclude_unset=True),
        }

    # ------------------------------------------------------------------ derived tables

    def _write_derived(self, derived: Sequence["Folded"]) -> None:
        batch = self._derive(derived)
        if self._sink is not None:
            self._sink.put(batch)
        else:
            self._store_derived([batch])

    def _derive(self, derived: Sequence["Folded"]) -> "DerivedRows":
        """Rows for the derived tables, built while the state is at these events.

        Rows are tuples in the column order of ``DerivedRows``: no dict per row.  A sample's
        test items go as one row of arrays (``sampling_items_in``), unfolded by ClickHouse.
        """
        rows = DerivedRows(last_seq=derived[-1][0])
        effects, samples, judgements = rows.effects, rows.samples, rows.judgements
        with self.lock:
            touched = self._dirty
            files = self.state.files
            changed: list[AlertChange] = []
            for seq, event, event_effects, changes in derived:
                if changes is not None:
                    changed += changes
                for idx, eff in enumerate(event_effects):
                    kind = eff.kind
                    effects.append((seq, idx, kind, eff.enterprise_id, eff.event_id, _epoch_ms(eff.occurred_at)[0],
                                    _json_text(eff.data, sort_keys=True)))
                    if kind == "sampling.judged":
                        file = files[eff.enterprise_id]
                        record = _find_sample(file, eff.data["sample_event_id"])
                        sample, judgement = self._sample_rows(file, record)
                        if sample is not None:
                            samples.append(sample)
                        judgements.append(judgement)
                        original = self._sample_rows.superseded(file, record)
                        if original is not None:
                            judgements.append(original)
                    elif kind == "processing.failed":
                        rows.letters.append(DeadLetter("processing", f"seq {seq}", event.model_dump_json(exclude_unset=True).encode(), eff.data["reason"], dead_letter_id=f"processing-{eff.event_id}", event_id=eff.event_id))
                    touched[eff.enterprise_id] = seq
                for eid, ids in complaints_changed(event, event_effects).items():
                    if eid in files:
                        rows.complaints += complaint_table_rows(files[eid], ids, seq)
                if event.enterprise_id != "*":
                    touched[event.enterprise_id] = seq
                else:
                    # a clock tick re-evaluates every file (grade as of, overdue checks) even where it
                    # has no effect: without this their snapshots would stay older than a recovery's
                    touched.update(dict.fromkeys(files, seq))
            if changed:
                rows.alert_steps = alert_step_rows(changed)
        return rows

    def _store_derived(self, batches: Sequence["DerivedRows"]) -> None:
        store_rows(self.store, "sampling_items_in", SAMPLE_COLUMNS, [r for b in batches for r in b.samples])
        store_rows(self.store, "judgements", JUDGEMENT_COLUMNS, [r for b in batches for r in b.judgements])
        store_rows(self.store, "effects", EFFECT_COLUMNS, [r for b in batches for r in b.effects])
        store_rows(self.store, "complaints", COMPLAINT_TABLE_COLUMNS, [r for b in batches for r in b.complaints])
        steps = [r for b in batches for r in b.alert_steps]
        if self._rebuild is not None and steps:
            unsent = self._rebuild_deliveries(steps)
            if unsent:
                self.store.insert("deliveries", unsent)
        # alert steps with their notifications, fanned out to alerts, alert_events and outbox by the
        # views of migration 041: a notification is stored (before it is sent) with the step that made it
        store_rows(self.store, "alert_steps_in", ALERT_STEP_COLUMNS, steps)
        letters = [dl for b in batches for dl in b.letters]
        if letters:
            self.dead_letter(letters)
        last = max(b.last_seq for b in batches)
        # the checkpoint goes last: a crash before it re-derives these rows at start-up
        self.store.insert("checkpoints", [{"name": "derived", "seq": last}])
        self.derived_seq = max(self.derived_seq, last)
        now = self.clock()
        if self._snapshot_at is None or now - self._snapshot_at >= self.snapshot_every:
            self.write_snapshots()
        if now - self._fold_snapshot_at >= FOLD_SNAPSHOT_EVERY:
            # (also while it runs: after a kill -9 the next start folds at most about this much of the log;
            # tried again at the next batch while the fold is ahead of the derived rows)
            try:
                if self.write_fold_snapshot():
                    self._fold_snapshot_at = now
            except Exception as exc:  # noqa: BLE001 - a snapshot is a shortcut for the next start, never a reason to stop
                self._fold_snapshot_at = now  # (said once an hour, not at every batch)
                print(f"qrisk: 状态快照未写入（{type(exc).__name__}）/ the fold's snapshot was not written ({type(exc).__name__}: "
                      f"{str(exc)[:200]}); the next start folds more of the log", file=sys.stderr, flush=True)

    def start_background_sink(self) -> None:
        """Write derived rows from a thread of their own, so an answer waits only for the log and the fold."""
        if self._sink is None:
            self._sink = _DerivedSink(self)

    def wait_derived(self, timeout: float = 60.0) -> bool:
        """True once every folded event's derived rows are written."""
        return self._sink.drain(timeout) if self._sink is not None else True

    def write_snapshots(self) -> None:
        """Write the credit files changed since the last snapshot."""
        with self.lock:
            dirty, self._dirty = self._dirty, {}
            rows = [
                {"enterprise_id": eid, "seq": seq, "body": _json_text(self.state.files[eid].view())}
                for eid, seq in dirty.items() if eid in self.state.files
            ]
            self._snapshot_at = self.clock()
        for part in _parts(rows, SNAPSHOT_INSERT_CHARS):
            self.store.insert("credit_files", part)

    def write_fold_snapshot(self) -> bool:
        """The fold's state (credit files, applied ids, the alerts book) at the log's end, for the next
        start to restore instead of replaying the whole log; older snapshots go.  Only when every
        folded event's derived rows are written (the next start re-derives past its checkpoint, which
        needs the fold from there): returns whether one was written."""
        with self.lock:
            if self.seq == 0 or self.derived_seq != self.seq or self._rebuild is not None:
                return False
            seq, events = self.seq, self.events
            state, alerts = self.state.snapshot().decode("utf-8"), self.alerts.model_dump_json()
        self.store.insert("fold_snapshots", [{
            "seq": seq, "events": events, "fold_version": FOLD_VERSION, "catalogue": self.rules.catalogue.digest,
            "policy": policy_digest(self.rules), "written_at": self.clock(), "state": state, "alerts": alerts,
        }])
        self.store.command("ALTER TABLE fold_snapshots DELETE WHERE seq < %(seq)s", {"seq": seq})
        return True

    def _fold_snapshot(self, checkpoint: int, log_end: int) -> dict[str, Any] | None:
        """The newest fold snapshot this code may restore: the same fold version, catalogue and policy
        folded it, and it lies within the log and at or before the derived tables' checkpoint."""
        rows = self.store.query(
            "SELECT seq, events, state, alerts FROM fold_snapshots FINAL WHERE fold_version = %(fold)s AND catalogue = %(catalogue)s "
            "AND policy = %(policy)s AND seq <= %(upto)s ORDER BY seq DESC LIMIT 1",
            {"fold": FOLD_VERSION, "catalogue": self.rules.catalogue.digest, "policy": policy_digest(self.rules),
             "upto": min(checkpoint, log_end)})
        if not rows:
            return None
        # the log up to it must be the log it was folded from: rows deleted since (a retention query run
        # too far, a bad restore) are a whole replay's to find and report as missing seqs
        held = self.store.query("SELECT count() AS n FROM event_log FINAL WHERE seq <= %(seq)s", {"seq": int(rows[0]["seq"])})
        return rows[0] if held and int(held[0]["n"]) == int(rows[0]["events"]) else None

    def close(self, wait: float = SHUTDOWN_WAIT_SECONDS) -> None:
        snapshots = True
        if self._sink is not None:
            sink = self._sink
            if (sink.failures or not sink.drain(2.0)) and max(self.seq - self.derived_seq, 0):
                behind = max(max(self.seq, sink.behind_seq) - self.derived_seq, 0)
                why_zh = f"（写入失败：{sink.last_error}）" if sink.last_error else ""
                why = f"; writing them fails: {sink.last_error}" if sink.last_error else ""
                print(f"qrisk: 正在等待写入 {behind} 个事件的派生数据，最多 {wait:.0f} 秒{why_zh}；kill -9 是安全的：下次启动时会从日志重新派生 / "
                      f"waiting to write the derived rows of {behind} events, at most {wait:.0f} s{why}; kill -9 is safe: "
                      f"they are re-derived from the log at start", file=sys.stderr, flush=True)
            if not sink.stop(wait):
                behind = max(max(self.seq, sink.behind_seq) - self.derived_seq, 0)
                print(f"qrisk: 等待 {wait:.0f} 秒后仍未写入 {behind} 个事件的派生数据，停止等待；下次启动时会从日志重新派生 / "
                      f"gave up after {wait:.0f} s: the derived rows of {behind} events are not written; the next start "
                      f"re-derives them from the log", file=sys.stderr, flush=True)
                snapshots = False  # (they would meet the same failure; the next start's replay writes every file)
            self._sink = None
        if snapshots:
            try:
                self.write_snapshots()
            except Exception as exc:  # noqa: BLE001 - at shutdown: say it, the next start writes them
                print(f"qrisk: 诚信档案快照未写入（{type(exc).__name__}）；下次启动重放后会写入 / credit-file snapshots not written "
                      f"({type(exc).__name__}: {str(exc)[:200]}); the next start writes them after its replay", file=sys.stderr, flush=True)
            try:
                self.write_fold_snapshot()
            except Exception as exc:  # noqa: BLE001 - at shutdown: the next start replays the whole log instead
                print(f"qrisk: 状态快照未写入（{type(exc).__name__}）；下次启动将重放全部日志 / the fold's snapshot was not written "
                      f"({type(exc).__name__}: {str(exc)[:200]}); the next start replays the whole log", file=sys.stderr, flush=True)
        if self.writer_lease is not None:
            self.writer_lease.release()
        self.store.close()

    # ------------------------------------------------------------------ reads

    def credit_file(self, enterprise_id: str) -> dict[str, Any] | None:
        with self.lock:
            file = self.state.files.get(enterprise_id)
            return None if file is None else file.view()


EFFECT_COLUMNS = ("seq", "idx", "kind", "enterprise_id", "event_id", "occurred_at", "data")
JUDGEMENT_COLUMNS = ("event_id", "enterprise_id", "category", "sample_no", "product", "verdict", "failed_items",
                     "disagreements", "unknown", "sampled_on", "occurred_at", "superseded_by", "counted", "lab",
                     "report_working_days", "report_limit", "turnaround_late", "turnaround_estimate")
SAMPLE_COLUMNS = ("event_id", "enterprise_id", "category", "sample_no", "product", "lab", "sampled_on", "production_date",
                  "occurred_at", "item_code", "item_name", "item_class", "unit", "limit_text", "standard", "verdict",
                  "reason", "lab_verdict", "item_values", "item_nd")
COMPLAINT_TABLE_COLUMNS = ("enterprise_id", "complaint_id", "version", "town", "kind", "channel", "category", "product", "received_at",
                           "verified", "state", "accepted_on", "acceptance", "resolved_at", "concluded_on", "withdrawn_at", "due_on",
                           "overdue", "estimate", "event_id")
_ITEM_CACHE_LIMIT = 100_000


def store_rows(store: Store, table: str, names: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Insert rows given as tuples in the order of ``names`` (transposed in C, no dict per row)."""
    if rows:
        store.insert_columns(table, dict(zip(names, map(list, zip(*rows)))))


@dataclass
class DerivedRows:
    last_seq: int
    samples: list[tuple[Any, ...]] = field(default_factory=list)  # SAMPLE_COLUMNS
    judgements: list[tuple[Any, ...]] = field(default_factory=list)  # JUDGEMENT_COLUMNS
    effects: list[tuple[Any, ...]] = field(default_factory=list)  # EFFECT_COLUMNS
    complaints: list[tuple[Any, ...]] = field(default_factory=list)  # COMPLAINT_TABLE_COLUMNS
    letters: list[DeadLetter] = field(default_factory=list)
    alert_steps: list[tuple[Any, ...]] = field(default_factory=list)  # ALERT_STEP_COLUMNS


@dataclass
class AlertRow:
    """One alert step as rows, built when it happened (the alert object moves on afterwards): the
    Kafka worker's form, one effect message per event."""

    alert: tuple[Any, ...]  # ALERT_COLUMNS
    step: tuple[Any, ...]  # ALERT_EVENT_COLUMNS
    outbox: list[tuple[Any, ...]]  # OUTBOX_COLUMNS


AlertRows = list[AlertRow]
Folded = tuple[int, Envelope, list[Effect], "list[AlertChange] | None"]
"""(seq, event, its effects, the alert steps it made)."""

ALERT_COLUMNS = ("alert_id", "enterprise_id", "kind", "severity", "state", "title", "group_key", "assignee",
                 "opened_at", "updated_at", "updated_ms", "version", "event_id", "evidence",
                 "closing_note", "closed_by", "handling_overdue")
"""(closing_note, closed_by, handling_overdue: migration 051, for the dashboards' reader, who is not granted `evidence`.)"""
ALERT_EVENT_COLUMNS = ("alert_id", "enterprise_id", "version", "at", "at_ms", "action", "from_state", "to_state", "actor", "note")
OUTBOX_COLUMNS = ("delivery_id", "alert_id", "enterprise_id", "receiver", "channel", "reason", "created_at", "created_ms", "body",
                  "received_at")


ALERT_STEP_COLUMNS = ALERT_COLUMNS + ("step_version", "at", "at_ms", "action", "from_state", "to_state", "actor", "note",
                                      "delivery_id", "receiver", "channel", "reason", "body")


def stored_alert_views(store: Store, alert_id: str | None = None, *, states: Iterable[str] | None = None,
                       enterprise_id: str | None = None, severity: str | None = None) -> list[dict[str, Any]]:
    """Alerts as the ``alerts`` table holds them (each one's newest version's view, without its steps).

    The filters are the newest version's, applied in the database: a listing of the alerts
    being handled reads none of the years of closed ones."""
    where, having, params = [], [], {}
    if alert_id is not None:
        where.append("alert_id = %(id)s")
        params["id"] = alert_id
    if enterprise_id is not None:
        where.append("enterprise_id = %(enterprise)s")
        params["enterprise"] = enterprise_id
    if states is not None:
        names = [f"s{i}" for i, _ in enumerate(sorted(states))]
        params.update(zip(names, sorted(states)))
        having.append(f"argMax(state, version) IN ({', '.join(f'%({n})s' for n in names)})" if names else "0")
    if severity is not None:
        having.append("argMax(severity, version) = %(severity)s")
        params["severity"] = severity
    rows = store.query("SELECT argMax(evidence, version) AS body FROM alerts "
                       + (f"WHERE {' AND '.join(where)} " if where else "")
                       + "GROUP BY enterprise_id, alert_id"
                       + (f" HAVING {' AND '.join(having)}" if having else ""), params)
    return [json.loads(r["body"]) for r in rows if r["body"]]


def _closing(alert: Any) -> tuple[str, str]:
    """Why and by whom a closed alert was closed (the note of the step that closed it and who took it, as 系统 for the system's
    own), for the ``alerts`` row: a supervisor's reason was only in its steps, which the dashboards' reader may not read."""
    if alert.state != "closed":
        return "", ""
    step = next((s for s in reversed(alert.steps) if s.to_state == "closed" and s.from_state != "closed"), None)
    return _closing_of(step) if step is not None else ("", "")


def _closing_of(step: Any) -> tuple[str, str]:
    # a close without a note has the action's name for one (关闭, marked 未填写关闭理由 where a reason was due): no reason
    note = NO_CLOSE_REASON.strip("（）") if step.note in (ACTION_ZH["close"], ACTION_ZH["close"] + NO_CLOSE_REASON) else step.note
    return note, actor_zh(step.actor)


def alert_step_rows(changes: list[AlertChange]) -> list[tuple[Any, ...]]:
    """One ``alert_steps_in`` row per step.  Only the newest row of each alert carries the alert as
    it is now (its view as JSON, its version); an earlier step's row keeps its own, lower, version
    and no view: the alerts table shows the highest version, so those are never read — and the
    view, the costliest part, is built once per alert and batch, not once per step."""
    last = {id(c.alert): i for i, c in enumerate(changes)}
    out = []
    for i, c in enumerate(changes):
        a, s = c.alert, c.step
        at, at_ms = _epoch_ms(s.at)
        if last[id(a)] == i:
            updated, updated_ms = _epoch_ms(a.updated_at)
            head = (a.alert_id, a.enterprise_id, a.rule, a.severity, a.state, a.title_zh, a.dedup_key, a.assignee or "",
                    _epoch_ms(a.opened_at)[0], updated, updated_ms, a.version, a.steps[-1].event_id,
                    _json_text(a.view(steps=False), sort_keys=True), *_closing(a), int(a.handling_overdue))
        else:
            closed = _closing_of(s) if s.to_state == "closed" and s.from_state != "closed" else ("", "")
            head = (a.alert_id, a.enterprise_id, a.rule, a.severity, s.to_state, a.title_zh, a.dedup_key, a.assignee or "",
                    _epoch_ms(a.opened_at)[0], at, at_ms, s.version, s.event_id, "", *closed, 0)
        notes = c.notifications
        out.append(head + (s.version, at, at_ms, s.action, s.from_state, s.to_state, s.actor, s.note,
                           [n.delivery_id for n in notes], [n.receiver for n in notes], [n.channel for n in notes],
                           [n.reason for n in notes], [n.to_json() for n in notes]))
    return out


def alert_rows(changes: list[AlertChange], received_at: dt.datetime | None = None) -> AlertRows:
    """The alert, step and outbox rows of ``changes``; ``received_at`` is when the event that made them was received
    (its outbox rows keep it: a Kafka refold tells the steps it derives again from live ones by it, not by their date)."""
    received = _epoch_ms(received_at)[0] if received_at is not None else 0
    out = []
    for c in changes:
        a, s = c.alert, c.step
        updated, updated_ms = _epoch_ms(a.updated_at)
        at, at_ms = _epoch_ms(s.at)
        view = a.view(steps=False)  # (its steps: the alert_events rows)
        out.append(AlertRow(
            alert=(a.alert_id, a.enterprise_id, a.rule, a.severity, a.state, a.title_zh, a.dedup_key, a.assignee or "",
                   _epoch_ms(a.opened_at)[0], updated, updated_ms, a.version, s.event_id, _json_text(view, sort_keys=True),
                   *_closing(a), int(a.handling_overdue)),
            step=(a.alert_id, a.enterprise_id, s.version, at, at_ms, s.action, s.from_state, s.to_state, s.actor, s.note),
            outbox=[(n.delivery_id, n.alert_id, n.enterprise_id, n.receiver, n.channel, n.reason, at, at_ms, n.to_json(), received)
                    for n in c.notifications],
        ))
    return out


DERIVED_WRITE_BATCHES = 20
"""At most this many queued batches' derived rows in one write (a backlog after an outage goes in parts)."""


class _DerivedSink:
    """One thread that writes derived rows, coalescing whatever queued up meanwhile.

    A failed write is retried with backoff and nothing is dropped: the rows stay
    queued, and the checkpoint does not move, so a crash meanwhile re-derives them
    from the log at start-up.
    """

    def __init__(self, pipeline: "Pipeline"):
        self.pipeline = pipeline
        self.queue: "queue.Queue[DerivedRows | None]" = queue.Queue()
        self.idle = threading.Event()
        self.idle.set()
        self.failures = 0
        self.behind_seq = 0  # the last seq of the rows queued while writes fail (the pipeline's seq may say less)
        self.last_error: str | None = None  # (for /healthz)
        self.thread = NamedThread(target=self._run, name="qrisk-derived-sink", daemon=True)
        self.thread.start()

    def put(self, rows: DerivedRows) -> None:
        self.idle.clear()
        self.queue.put(rows)

    def drain(self, timeout: float) -> bool:
        return self.idle.wait(timeout)

    def stop(self, timeout: float = SHUTDOWN_WAIT_SECONDS) -> bool:
        """True when every queued row was written within ``timeout``."""
        self.queue.put(None)
        self.thread.join(timeout=timeout)
        return not self.thread.is_alive()

    def _run(self) -> None:
        pending: list[DerivedRows] = []
        stopping = False
        while not (stopping and not pending):
            if not pending:
                first = self.queue.get()
                if first is None:
                    return
                pending.append(first)
            while True:
                try:
                    more = self.queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                pending.append(more)
            # a backlog goes in bounded writes, oldest first: merged into one, a long outage made an insert that
            # grew with it (on a full disk the space it reserved grew past what was freed, and it never went in)
            chunk = pending[:DERIVED_WRITE_BATCHES]
            try:
                self.pipeline._store_derived(chunk)
                del pending[:len(chunk)]
                if self.failures:
                    print(f"qrisk: 派生数据已恢复写入 / derived rows written again after {self.failures} failed attempts"
                          f"{f' ({len(pending)} batches still queued)' if pending else ''}", file=sys.stderr, flush=True)
                self.failures = 0
                self.behind_seq = 0
                if not pending and self.queue.empty():
                    self.idle.set()
            except Exception as exc:  # noqa: BLE001 - keep the rows, try again
                self.failures += 1
                self.behind_seq = max(b.last_seq for b in pending)
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                delay = min(30.0, 0.1 * 2 ** min(self.failures, 9))
                if self.failures <= 3 or self.failures % 10 == 0:  # (not a line a second through a long outage)
                    print(f"qrisk: derived rows not written ({type(exc).__name__}: {exc}); retrying in {delay:.1f}s "
                          f"(attempt {self.failures}, {len(pending)} batches queued)", file=sys.stderr, flush=True)
                time.sleep(delay)


def _find_sample(file: CreditFile, sample_event_id: str) -> SampleRecord:
    # the sample just folded is nearly always the newest; one judged on registration may be older
    samples = file.samples
    if samples and samples[-1].event_id == sample_event_id:
        return samples[-1]
    return next(s for s in reversed(samples) if s.event_id == sample_event_id)


class SampleRows:
    """The derived rows of a judged sample, for both runtimes (the embedded pipeline and the Kafka
    worker write the same ``sampling_items_in`` and ``judgements`` rows).  Holds the per-item
    column cache: item judgements are memoised by the fold and shared between samples."""

    def __init__(self) -> None:
        self._item_columns: dict[int, tuple[Any, tuple[Any, ...]]] = {}

    def __call__(self, file: CreditFile, record: SampleRecord) -> tuple[tuple[Any, ...] | None, tuple[Any, ...]]:
        """One sampling_items_in row (None without items) and one judgements row for a judged sample."""
        j = record.judgement
        category = file.profile.category if file.profile else ""
        occurred = _epoch_ms(record.occurred_at)[0]
        sampled_on = record.filed_on or _charted_on(file, record)
        items = j.items
        sample = None
        if items:
            # item judgements are memoised by the fold and shared between samples, so their
            # columns are worked out once per distinct judgement (a strong reference keeps
            # the id from being reused while it is cached)
            cache = self._item_columns
            entries = []
            for item in items:
                hit = cache.get(id(item))
                if hit is None or hit[0] is not item:
                    if len(cache) >= _ITEM_CACHE_LIMIT:
                        cache.clear()
                    hit = cache[id(item)] = (item, _item_columns(item))
                entries.append(hit[1])
            sample = (record.event_id, file.enterprise_id, category, record.sample_no, record.product, record.lab,
                      sampled_on, record.production_date, occurred, *map(list, zip(*entries)))
        judgement = (
            record.event_id, file.enterprise_id, category, record.sample_no, record.product, j.verdict,
            j.counted_failed_codes(),  # (the lab's 不合格 on an item qrisk passes too: the panels count by these)
            list(j.disagreements), [u.item_code or u.text or u.kind for u in j.unknown],
            sampled_on, occurred, record.superseded_by or "", j.counted, record.lab,
            *((t.report_days, t.report_limit, int(t.late), int(t.estimate)) if (t := record.turnaround) is not None
              else (None, None, 0, 0)),
        )
        return sample, judgement

    def superseded(self, file: CreditFile, record: SampleRecord) -> tuple[Any, ...] | None:
        """The judgements row of the sample that ``record`` has just superseded (an original by its
        re-test, a re-test that was not admitted by its original, or a report by its correction), written again with
        ``superseded_by`` set: the table keeps the later row.  None when it supersedes none."""
        if record.corrects is not None:
            # a corrected report: the row of the report it replaced, which no longer counts
            other = file.sample_by_event(record.corrects)
            return self(file, other)[1] if other is not None and other.judgement is not None else None
        if record.sample_no not in file.retests:
            return None  # no re-test of this sample on file: nothing to look for
        for other in reversed(file.samples):
            if other is not record and other.superseded_by == record.event_id and other.judgement is not None:
                return self(file, other)[1]
        return None


_COMPLAINT_EVENTS = ("complaint.received", "complaint.accepted", "complaint.resolved", "complaint.withdrawn")
_PROFILE_EVENTS = ("enterprise.registered", "enterprise.updated")


def complaints_changed(event: Envelope, effects: Iterable[Effect]) -> dict[str, set[str] | None]:
    """The complaints whose ``complaints`` row an event may have changed, by enterprise (None: every one of the
    file's): the complaint its own event names (received, decided on, concluded, withdrawn — or a decision, a
    conclusion or a withdrawal kept waiting for it, applied when it comes), one whose time limit the clock passed (``complaint.overdue``, on
    any event, a tick's included), and all of an enterprise whose profile (its town) the event set."""
    changed: dict[str, set[str] | None] = {}
    if event.event_type in _COMPLAINT_EVENTS:
        changed[event.enterprise_id] = {event.payload.complaint_id}  # type: ignore[attr-defined]
    elif event.event_type in _PROFILE_EVENTS:
        changed[event.enterprise_id] = None
    for eff in effects:
        if eff.kind == "complaint.overdue":
            ids = changed.setdefault(eff.enterprise_id, set())
            if ids is not None:
                ids.add(eff.data["complaint_id"])
    return changed


def complaint_table_rows(file: CreditFile, ids: set[str] | None, version: int) -> list[tuple[Any, ...]]:
    """The ``complaints`` rows (COMPLAINT_TABLE_COLUMNS) of the complaints ``ids`` of ``file`` (None: all), withdrawn
    ones included, as the register defines them (``qrisk.registers.complaint_rows``) — without the text and the
    outcome, which name complainants.  One not on file (a conclusion waiting for its complaint) has no row yet."""
    town = (file.profile.town if file.profile is not None else None) or ""
    rows = []
    for c in [*file.complaints, *file.complaints_withdrawn]:
        if ids is not None and c.complaint_id not in ids:
            continue
        rows.append((file.enterprise_id, c.complaint_id, version, town, *_complaint_columns(c)))
    return rows


def _complaint_columns(c: ComplaintRecord) -> tuple[Any, ...]:
    withdrawn = c.withdrawn
    decided = c.acceptance
    # (不予受理 is not 办结: no conclusion on the complaint itself, but nothing is being handled either)
    state = ("withdrawn" if withdrawn is not None else "resolved" if c.resolved_at is not None else "refused" if c.refused
             else "open")
    # (as the register and the credit report say it: not yet concluded is 核查中, not 不属实)
    verified = 1 if c.verified else 0 if c.resolved_at is not None else None
    # (as ComplaintRecord.deadline_zh judges it: a withdrawn or refused one's clocks stopped — a refused one has no 办结期限
    # to be in time or late by, concluded or not, but a refusal decided after the accept limit was late: 受理超期 —; open in
    # time is no verdict yet, nor is a late acceptance whose mediation runs in time)
    overdue = None
    if c.limits and withdrawn is None:
        if c.refused:
            overdue = "受理超期" if c.refused_late else None
        elif c.concluded_on is None:
            overdue = "超期未办结" if c.overdue else None
        else:
            overdue = "超期办结" if c.overdue else "按期办结"
    return (c.kind, c.channel, c.category, c.product or "", _epoch_ms(c.received_at)[0], verified, state, c.accepted_on,
            decided.decision if decided is not None else None, _epoch_ms(c.resolved_at)[0] if c.resolved_at is not None else None, c.concluded_on,
            _epoch_ms(withdrawn.withdrawn_at)[0] if withdrawn is not None else None, c.due_on, overdue,
            # (ComplaintRecord.estimate: the 估算 caveat its deadline line shows — due_on and overdue rest on an estimated count)
            int(c.estimate), c.event_id)


def _charted_on(file: CreditFile, record: SampleRecord) -> Any:
    """The sampling date of a report folded before the fold kept it (``SampleRecord.filed_on``: a Kafka worker's
    file from an older snapshot): its own, a re-test's its original's (retracted or not: a retraction writes the
    re-test's row again, and under another date it would be a second row, counting still)."""
    if not record.retest:
        return record.sampled_on
    for other in reversed(file.samples):
        if other.sample_no == record.sample_no and not other.retest and other.superseded_as in (None, "retest", "retracted"):
            return other.sampled_on
    return record.sampled_on


def _item_columns(item: Any) -> tuple[Any, ...]:
    """One item judgement's values for the array columns of sampling_items_in (SAMPLE_COLUMNS[9:])."""
    values = item.values
    return (
        item.item_code, item.item_name or "", item.item_class or "", item.unit or "", item.limit_text or "",
        item.standard or "", item.verdict, item.reason, item.lab_verdict or "",
        [None if v == "ND" else float(v) for v in values], [1 if v == "ND" else 0 for v in values],
    )
