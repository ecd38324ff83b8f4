"""Who may do what: API keys, roles, per-event authorisation, and the audit trail.

Keys
----
A key is ``qrisk_<key id>_<secret>``: the id (12 hex digits) finds the record, the
secret is 32 random bytes (``secrets.token_urlsafe``).  Only ``sha256(key)`` is kept.
A slow, salted hash (scrypt, PBKDF2) protects *low-entropy* secrets such as passwords
from offline guessing; a 256-bit random token cannot be guessed however fast the hash
is, so one SHA-256 is enough and keeps the check per request at microseconds (scrypt
would cost tens of milliseconds on every request).  The comparison is constant-time.

The records live in a small JSON file (default ``<data dir>/keys.json``, mode 0600,
written atomically under a lock) rather than in ClickHouse: chdb admits one process per
data directory, so ``qrisk keys create`` must work while ``qrisk run`` holds the
directory.  The server re-reads the file when its mtime/size/inode change, so a
revocation takes effect on the next request.  The file also keeps the history of key
changes (created, revoked, with who did it); the server copies that history into the
``audit_log`` table.

Roles
-----
``ROLES`` below: which routes a role may call is declared on each route (``qrisk.api``);
which events a role may post, and as whom, is ``event_refusal``.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import queue
import re
import secrets
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from qrisk.threads import NamedThread

if TYPE_CHECKING:  # the CLI imports this module for every command: keep it light
    from schemas.events import Envelope

UTC = dt.timezone.utc
KEY_PREFIX = "qrisk_"
_TOKEN = re.compile(r"^qrisk_([0-9a-f]{12})_([A-Za-z0-9_\-]{43})$")
_NAME = re.compile(r"^[\w.@\-]{1,64}$")

ROLES: dict[str, str] = {
    "admin": "keys, audit, metrics, every read; may post any event (imports, back-fill)",
    "supervisor": "reads credit files and dead letters; optionally limited to towns",
    "bureau": "the bureau's registry, campaign office and enforcement: enterprise.*, campaign.*, enforcement.*, interview.*, "
              "sampling.retracted, complaint.withdrawn and fluctuation.rebaselined as source kind bureau",
    "lab": "a lab system: sampling.result only, as its own lab (source kind lab, id bound to the key)",
    "complaint": "the complaint channel: complaint.received, complaint.accepted, complaint.resolved as source kind complaint_channel",
    "inspector": "inspectors: inspection.*, rectification.*, complaint.accepted, complaint.resolved as source kind inspector",
    "monitor": "Prometheus: /metrics only",
}

POSTING_ROLES = ("admin", "bureau", "lab", "complaint", "inspector")


TRUSTED_ONLY = frozenset({"sampling.retracted", "complaint.withdrawn", "fluctuation.rebaselined"})
"""Event types only the bureau (and an admin key: imports, back-fill) may post, whatever family they belong to: a
retraction takes a report off a credit file, so a lab key may not send one, not even for its own report; a withdrawal
takes a complaint off one, which the complaint channel may not do either; a new baseline of a control chart is a
supervisor's recorded decision, never a lab's or an inspector's."""

RETRACTION_ZH = ("撤销报告（sampling.retracted）只能由监管部门（bureau 角色密钥）或管理员提交：检验机构不能撤销已报送的报告。"
                 "报告内容有误的，请以新的 event_id 报送更正后的报告；报告的企业填错的，请联系监管部门撤销")
"""Why a key of another role may not post a retraction, as its 403 says."""

WITHDRAWAL_ZH = ("撤回投诉登记（complaint.withdrawn）只能由监管部门（bureau 角色密钥）或管理员提交：投诉渠道不能撤回已登记的投诉。"
                 "核查结论请以 complaint.resolved 报送；企业填错或重复登记的，请联系监管部门撤回")
"""Why a key of another role may not post a withdrawal, as its 403 says."""

REBASELINE_ZH = ("控制限重新确定（fluctuation.rebaselined）只能由监管部门（bureau 角色密钥）或管理员提交：控制限的重新确定须由监管人员"
                 "确认整改后生产过程确已改变，检验机构、检查人员和投诉渠道不能提交")
"""Why a key of another role may not post a new baseline, as its 403 says."""

_TRUSTED_REFUSED = {
    "sampling.retracted": ("only a bureau or admin key may retract a report (a lab sends a corrected report instead, under a new event_id)",
                           RETRACTION_ZH),
    "complaint.withdrawn": ("only a bureau or admin key may withdraw a complaint (the channel sends the conclusion as complaint.resolved)",
                            WITHDRAWAL_ZH),
    "fluctuation.rebaselined": ("only a bureau or admin key may re-establish a control chart's baseline (a supervisor's recorded decision)",
                                REBASELINE_ZH),
}


@cache
def posting_rules() -> dict[str, tuple[frozenset[str], str | None]]:
    """role -> (the event types it may post, the source.kind those events must carry)."""
    from schemas.events import EVENT_TYPES

    return {
        # a lab sends results, never takes one back: a retraction (撤销报告) is the bureau's (RETRACTION_ZH)
        "lab": (frozenset(t for t in EVENT_TYPES if t.startswith("sampling.") and t not in TRUSTED_ONLY), "lab"),
        "complaint": (frozenset(t for t in EVENT_TYPES if t.startswith("complaint.") and t not in TRUSTED_ONLY), "complaint_channel"),
        "inspector": (frozenset(t for t in EVENT_TYPES if t.startswith(("inspection.", "rectification.")) or t in ("complaint.accepted", "complaint.resolved")), "inspector"),
        "bureau": (frozenset(t for t in EVENT_TYPES if t.startswith(("enterprise.", "campaign.", "enforcement.", "interview."))
                             or t in TRUSTED_ONLY), "bureau"),
        "admin": (frozenset(EVENT_TYPES), None),
    }


BINDABLE_ROLES = ("lab", "complaint", "inspector", "bureau")  # may be bound to one source.id
DEFAULT_DAYS = 365


class KeyFileError(ValueError):
    """A key file that does not parse, or holds a record qrisk cannot use: one line naming the file."""

    def __init__(self, path: Path, zh: str, en: str):
        self.path = path
        self.zh = f"密钥文件 {path}：{zh}"
        self.en = f"key file {path}: {en}"
        super().__init__(f"{self.zh} / {self.en}")


class AuthError(Exception):
    """401: no usable key."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason  # missing | malformed | unknown | revoked | expired
        self.detail = detail


def utc_now() -> dt.datetime:
    return dt.datetime.now(UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _parse(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass
class ApiKey:
    key_id: str
    name: str
    role: str
    hash: str
    created_at: str
    expires_at: str
    source_id: str | None = None  # the source.id this key posts as (lab id, channel id, inspector id)
    towns: list[str] = field(default_factory=list)  # supervisors: limited to these towns (empty: all)
    revoked_at: str | None = None
    created_by: str = ""

    def status(self, now: dt.datetime) -> str:
        if self.revoked_at:
            return "revoked"
        if _parse(self.expires_at) <= now:  # type: ignore[operator]
            return "expired"
        return "active"

    def public(self, now: dt.datetime | None = None) -> dict[str, Any]:
        """Everything but the hash."""
        out = {k: v for k, v in asdict(self).items() if k != "hash"}
        out["status"] = self.status(now or utc_now())
        return out

    @property
    def label(self) -> str:
        bound = f", bound to {self.source_id}" if self.source_id else ""
        return f"key {self.name!r} ({self.role}{bound})"

    def sees_town(self, town: str | None) -> bool:
        return not self.towns or (town is not None and town in self.towns)


def event_refusal(key: ApiKey, event: "Envelope") -> dict[str, Any] | None:
    """None if this key may post this event; else an error naming the field and the reason."""
    allowed = posting_rules().get(key.role)
    if allowed is None:
        return _refuse("", f"{key.label} may not post events", f"角色 {key.role} 不能提交事件")
    types, kind = allowed
    if event.event_type in TRUSTED_ONLY and event.event_type not in types:
        en, zh = _TRUSTED_REFUSED[event.event_type]
        return _refuse("event_type", f"{key.label} may not post {event.event_type}: {en}", zh)
    if event.event_type not in types:
        return _refuse("event_type", f"{key.label} may not post {event.event_type}; it may post {', '.join(sorted(types))}",
                       f"该密钥（{key.role}）无权提交 {event.event_type}，仅可提交 {'、'.join(sorted(types))}")
    if kind is not None and event.source.kind != kind:
        return _refuse("source.kind", f"{key.label} posts as source kind {kind!r}, not {event.source.kind!r}",
                       f"该密钥只能以来源类型 {kind} 提交，而不是 {event.source.kind}")
    if key.source_id is not None and event.source.id != key.source_id:
        return _refuse("source.id", f"{key.label} posts only as source id {key.source_id!r}, not {event.source.id!r}",
                       f"该密钥只能以来源 {key.source_id} 的身份提交，而不是 {event.source.id}")
    return None


def posted_as(key: ApiKey, event_type: str, source_kind: str, source_id: str) -> bool:
    """Whether a logged event with this envelope is one this key could have posted (its role's
    types, as its source kind and, when bound, as its source id): what a sender key may look up
    (``GET /v1/events/{id}``).  A lab sees its own results, never another lab's."""
    allowed = posting_rules().get(key.role)
    if allowed is None:
        return False
    types, kind = allowed
    return event_type in types and (kind is None or source_kind == kind) and (key.source_id is None or source_id == key.source_id)


def _refuse(field_path: str, reason: str, reason_zh: str) -> dict[str, Any]:
    return {"field": field_path, "type": "forbidden", "reason": reason, "reason_zh": reason_zh}


# --------------------------------------------------------------------------- the key file


class KeyStore:
    """The key file: records (hashes only) and the history of changes."""

    def __init__(self, path: str | os.PathLike[str], clock: Callable[[], dt.datetime] = utc_now):
        self.path = Path(path)
        self.clock = clock
        self._stamp: tuple[int, int, int] | None = None
        self._keys: dict[str, ApiKey] = {}
        self._history: list[dict[str, Any]] = []
        self._read_lock = threading.Lock()
        self._loaded = False  # a good reading was had: a damaged file later keeps it rather than locking everyone out
        self._bad_stamp: tuple[int, int, int] | None = None
        self.problem: str | None = None  # why the file on disk is not the one in use (it does not parse)

    # ---- reading (cached by stat: a change by `qrisk keys` is seen on the next request)

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            with self._read_lock:
                self._stamp, self._keys, self._history = None, {}, []
                self._loaded, self._bad_stamp = True, None
                self._parses_again()
            return
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp or (stamp == self._bad_stamp and self._loaded):
            return
        with self._read_lock:
            try:
                doc = self._read()
            except KeyFileError as exc:
                if not self._loaded:
                    raise  # (at start: nothing to keep, `qrisk run` refuses with this line)
                # a hand edit half done, a stray comma: refusing every request (500 with a traceback
                # each, /metrics included) would take the service down for a typo; the keys last read
                # stay in use (a revocation in the damaged file waits), and /healthz says why
                self._bad_stamp = stamp
                if self.problem != str(exc):
                    print(f"qrisk: 警告：{exc.zh}；继续使用上次读取的 {len(self._keys)} 个密钥，直到文件修好 / warning: {exc.en}; "
                          f"keeping the {len(self._keys)} keys last read until it is fixed", file=sys.stderr, flush=True)
                self.problem = str(exc)
                return
            self._keys = {k.key_id: k for k in doc[0]}
            self._history = doc[1]
            self._stamp, self._bad_stamp, self._loaded = stamp, None, True
            self._parses_again()

    def _parses_again(self) -> None:
        if self.problem is not None:
            self.problem = None
            print(f"qrisk: 密钥文件 {self.path} 已可正常读取，{len(self._keys)} 个密钥 / key file {self.path} parses again: "
                  f"{len(self._keys)} keys", file=sys.stderr, flush=True)

    def load(self) -> None:
        """Read the file now, raising ``KeyFileError`` when it is damaged (at start: the line to refuse with)."""
        self._refresh()

    def current_problem(self) -> str | None:
        """Why the file on disk is not in use (looked at now), or None: for /healthz."""
        try:
            self._refresh()
        except KeyFileError as exc:
            return str(exc)
        return self.problem

    def _read(self) -> tuple[list[ApiKey], list[dict[str, Any]]]:
        """The file's keys and history; ``KeyFileError`` naming the file and what is wrong with it."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return [], []
        except json.JSONDecodeError as exc:
            from ingest.validate import _JSON_PROBLEM_ZH  # (what the door says of a bad body, in Chinese: not json's English)

            raise KeyFileError(self.path, f"不是有效的 JSON（第 {exc.lineno} 行第 {exc.colno} 列：{_JSON_PROBLEM_ZH.get(exc.msg, '格式有误')}）",
                               f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        except UnicodeDecodeError as exc:
            raise KeyFileError(self.path, f"不是 UTF-8 文本（{exc.reason}）", f"not UTF-8 text: {exc.reason}") from None
        except OSError as exc:
            raise KeyFileError(self.path, f"无法读取（{exc.strerror}）", f"cannot be read: {exc.strerror}") from None
        if not isinstance(data, dict) or not isinstance(data.get("keys", []), list) or not isinstance(data.get("history", []), list):
            raise KeyFileError(self.path, "不是密钥文件（应为含 keys 与 history 列表的 JSON 对象）",
                               "not a key file (a JSON object with the lists keys and history)")
        keys = []
        for i, record in enumerate(data.get("keys", [])):
            try:
                key = ApiKey(**record)
                if not all(isinstance(v, str) for v in (key.key_id, key.name, key.role, key.hash, key.created_at, key.expires_at)):
                    raise TypeError("key_id, name, role, hash, created_at and expires_at must be text")
                _parse(key.expires_at)  # (checked here, not on the key's next request)
            except (TypeError, ValueError) as exc:
                raise KeyFileError(self.path, f"第 {i + 1} 个密钥记录无效（{exc}）", f"key record {i + 1} is not valid: {exc}") from None
            if key.role not in ROLES:
                # an unknown role would pass every guard's "not in roles" test only by luck: refuse the file
                raise KeyFileError(self.path, f"密钥 {key.key_id}（{key.name}）的角色 {key.role!r} 不存在（可用：{'、'.join(ROLES)}）",
                                   f"key {key.key_id} ({key.name}) has the role {key.role!r}, which is not one of {', '.join(ROLES)}")
            keys.append(key)
        return keys, list(data.get("history", []))

    def keys(self) -> list[ApiKey]:
        self._refresh()
        return sorted(self._keys.values(), key=lambda k: (k.created_at, k.key_id))

    def history(self) -> list[dict[str, Any]]:
        self._refresh()
        return list(self._history)

    def is_empty(self) -> bool:
        return not self.keys()

    def authenticate(self, token: str) -> ApiKey:
        m = _TOKEN.match(token)
        if not m:
            raise AuthError("malformed", "API key is malformed (expected qrisk_<id>_<secret>)")
        self._refresh()
        key = self._keys.get(m.group(1))
        # compare even when the id is unknown, so timing says nothing about which ids exist
        expected = key.hash if key else "0" * 64
        if not hmac.compare_digest(expected, hash_key(token)) or key is None:
            raise AuthError("unknown", "API key is not valid")
        status = key.status(self.clock())
        if status != "active":
            raise AuthError(status, f"API key {key.key_id} is {status}")
        return key

    # ---- writing (atomic replace under an exclusive lock, 0600)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[tuple[list[ApiKey], list[dict[str, Any]]]]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # (by default the data directory: see qrisk.runtime)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            keys, history = self._read()
            yield keys, history
            self._write(keys, history)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _write(self, keys: list[ApiKey], history: list[dict[str, Any]]) -> None:
        doc = {"version": 1, "keys": [asdict(k) for k in keys], "history": history}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, ensure_ascii=False, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def create(self, role: str, name: str, *, source_id: str | None = None, towns: Sequence[str] | None = None,
               days: int = DEFAULT_DAYS, actor: str = "") -> tuple[ApiKey, str]:
        """A new key; the token is returned once and never stored.  ``towns`` None: no limit (a supervisor
        sees every town); given, it must name at least one town."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
        if not _NAME.match(name):
            raise ValueError("name: 1–64 letters, digits, _ . @ -")
        if role == "lab" and not source_id:
            raise ValueError("a lab key must be bound to its lab: --lab LAB_ID (the source.id its results carry)")
        if source_id is not None and role not in BINDABLE_ROLES:
            raise ValueError(f"only {', '.join(BINDABLE_ROLES)} keys are bound to a source id")
        if source_id is not None and not (0 < len(source_id) <= 200):
            raise ValueError("source id: 1–200 characters")
        given = towns is not None
        towns = [t.strip() for t in towns or () if t.strip()]
        if given and not towns:
            # an empty list means every town: `--towns ' , '` or `--towns "$UNSET"` made a county-wide key
            raise ValueError("--towns 未列出任何乡镇：空的乡镇列表将得到可查看全县企业的密钥，未创建；要全县范围请不加 --towns / "
                             "--towns names no town: an empty list would make a key that sees every town's enterprises, "
                             "so none was created; for the whole county leave --towns out")
        if towns and role != "supervisor":
            raise ValueError("only supervisor keys are limited to towns")
        if not 1 <= days <= 3660:
            raise ValueError("days: 1–3660")
        now = self.clock()
        with self._locked() as (keys, history):
            if any(k.name == name and k.status(now) == "active" for k in keys):
                raise ValueError(f"an active key named {name!r} exists; revoke it first or choose another name")
            key_id = secrets.token_hex(6)
            token = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
            key = ApiKey(key_id=key_id, name=name, role=role, hash=hash_key(token), created_at=_iso(now),
                         expires_at=_iso(now + dt.timedelta(days=days)), source_id=source_id, towns=towns, created_by=actor)
            keys.append(key)
            history.append(_history_entry(now, "key.created", key, actor, {"expires_at": key.expires_at, "source_id": source_id, "towns": towns}))
        return key, token

    def revoke(self, key_id_or_name: str, actor: str = "") -> ApiKey:
        now = self.clock()
        with self._locked() as (keys, history):
            matches = [k for k in keys if k.key_id == key_id_or_name] or [k for k in keys if k.name == key_id_or_name and not k.revoked_at]
            if not matches:
                raise ValueError(f"no key with id or name {key_id_or_name!r}")
            if len(matches) > 1:
                raise ValueError(f"{len(matches)} keys are named {key_id_or_name!r}; revoke by id")
            key = matches[0]
            if key.revoked_at:
                raise ValueError(f"key {key.key_id} was revoked at {key.revoked_at}")
            key.revoked_at = _iso(now)
            history.append(_history_entry(now, "key.revoked", key, actor, {}))
        return key


def _history_entry(now: dt.datetime, action: str, key: ApiKey, actor: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {"audit_id": str(uuid.uuid4()), "at": _iso(now), "action": action, "key_id": key.key_id,
            "key_name": key.name, "role": key.role, "actor": actor, "detail": detail}


def cli_actor() -> str:
    try:
        import getpass

        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name is not a reason to refuse
        user = str(os.getuid())
    return f"cli:{user}@{os.uname().nodename}"


# --------------------------------------------------------------------------- audit


AUDIT_ANSWER_AFTER_S = 10.0
"""How long a request waits for its audit row while the store refuses writes, before it is answered anyway
(the row kept in memory and retried)."""
AUDIT_CLOSE_WAIT_S = 15.0
"""How long a stop waits for audit rows the store refuses, before it says how many are lost and goes on."""


class AuditLog:
    """Audit rows into ``audit_log``, grouped: one INSERT for everything queued meanwhile.

    ``record()`` returns a future that completes when the row is stored; the API awaits
    it before answering, so an answered request has its audit row.  A failed write is
    retried with backoff and nothing is dropped (like the derived-rows sink) — except that a
    store refusing writes for longer than ``AUDIT_ANSWER_AFTER_S`` (a full disk) no longer holds
    the requests (they are answered, the rows kept here), and a stop waits ``AUDIT_CLOSE_WAIT_S``
    for them before it says how many are lost: an operator's review saw a SIGTERM on a full disk
    take 392 s, every in-flight request waiting on a row the store would not take.
    """

    def __init__(self, store: Any, clock: Callable[[], dt.datetime] = utc_now):
        self.store = store
        self.clock = clock
        self._queue: "queue.Queue[tuple[dict[str, Any], Future] | None]" = queue.Queue()
        self._thread = NamedThread(target=self._run, name="qrisk-audit", daemon=True)
        self._thread.start()

    def record(self, action: str, outcome: str, key: ApiKey | None = None, detail: dict[str, Any] | None = None,
               *, actor: str = "", at: dt.datetime | None = None, audit_id: str | None = None) -> Future:
        moment = (at or self.clock()).astimezone(UTC)
        row = {
            "audit_id": audit_id or str(uuid.uuid4()),
            "recorded_at": moment.replace(microsecond=0), "recorded_ms": moment.microsecond // 1000,
            "key_id": key.key_id if key else "", "key_name": key.name if key else "", "role": key.role if key else "",
            "actor": actor or (f"key:{key.key_id}" if key else ""),
            "action": action, "outcome": outcome,
            "detail": json.dumps(detail or {}, ensure_ascii=False, sort_keys=True),
        }
        future: Future = Future()
        self._queue.put((row, future))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=AUDIT_CLOSE_WAIT_S + 5)

    def _run(self) -> None:
        pending: list[tuple[dict[str, Any], Future]] = []
        failures = 0
        failing_since: float | None = None
        stop_at: float | None = None
        said_answering = False
        while True:
            if not pending:
                job = self._queue.get()
                if job is None:
                    return
                pending.append(job)
            while stop_at is None:  # everything queued meanwhile goes in the same INSERT
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop_at = time.monotonic()
                    break
                pending.append(more)
            try:
                self.store.insert("audit_log", [row for row, _ in pending])
            except Exception as exc:  # noqa: BLE001 - keep the rows, try again
                failures += 1
                now = time.monotonic()
                failing_since = failing_since if failing_since is not None else now
                if now - failing_since >= AUDIT_ANSWER_AFTER_S:
                    # a store refusing writes (a full disk) must not hold every request, and a shutdown, for as
                    # long as it lasts: requests are answered, their rows kept here and written when it recovers
                    if not said_answering:
                        print(f"qrisk: 审计记录 {AUDIT_ANSWER_AFTER_S:.0f} 秒未能写入，请求不再等待审计记录（{len(pending)} 条暂存内存，继续重试）/ "
                              f"audit rows not written for {AUDIT_ANSWER_AFTER_S:.0f} s: requests are answered without waiting for them "
                              f"({len(pending)} rows held in memory, still retried)", file=sys.stderr, flush=True)
                        said_answering = True
                    for _, future in pending:
                        if not future.done():
                            future.set_result(None)
                if stop_at is not None and now - stop_at >= AUDIT_CLOSE_WAIT_S:
                    print(f"qrisk: 停止时仍有 {len(pending)} 条审计记录未能写入（{type(exc).__name__}），已丢弃 / "
                          f"{len(pending)} audit rows could not be written before the stop ({type(exc).__name__}: {exc}): lost",
                          file=sys.stderr, flush=True)
                    for _, future in pending:
                        if not future.done():
                            future.set_result(None)
                    return
                # at most 2 s: a request arriving meanwhile waits in the queue until the next attempt (one insert
                # every 2 s is nothing to a store that takes none), and a stop is seen at once
                delay = min(2.0, 0.1 * 2 ** min(failures, 9))
                if failures == 1 or failures % 20 == 0:
                    print(f"qrisk: audit rows not written ({type(exc).__name__}: {exc}); retrying in {delay:.1f}s "
                          f"(attempt {failures}, {len(pending)} rows)", file=sys.stderr, flush=True)
                time.sleep(delay)
                continue
            if failures:
                print(f"qrisk: 审计记录已恢复写入（{len(pending)} 条）/ audit rows written again ({len(pending)} rows, after "
                      f"{failures} failed attempts)", file=sys.stderr, flush=True)
            for _, future in pending:
                if not future.done():
                    future.set_result(None)
            pending, failures, failing_since, said_answering = [], 0, None, False
            if stop_at is not None:
                return

    def sync_key_history(self, keys: KeyStore, done: set[str]) -> list[Future]:
        """Copy key-file history not yet copied (by audit id) into the table.

        Re-copying after a restart is harmless: the table is a ReplacingMergeTree keyed by
        (time, audit id) and read with FINAL.
        """
        futures = []
        for entry in keys.history():
            if entry["audit_id"] in done:
                continue
            done.add(entry["audit_id"])
            fake = ApiKey(key_id=entry["key_id"], name=entry["key_name"], role=entry["role"], hash="", created_at="", expires_at="")
            futures.append(self.record(entry["action"], "ok", fake, entry.get("detail") or {}, actor=entry.get("actor") or "",
                                       at=_parse(entry["at"]), audit_id=entry["audit_id"]))
        return futures
